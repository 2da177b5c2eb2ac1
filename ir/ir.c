/* ir.c — IR name tables, module/kernel/stage constructors and the builder.
 *
 * Invariant kept by the builder: every instruction id is placed in at most
 * one block (ir_inst_new creates an unplaced one, for passes that build
 * replacement code), IF/FOR are immediately followed by their RESULTs, and
 * block arguments are IR_BARG instructions listed in IrBlock.args only. */
#include "ir.h"

const char *const ir_op_names[IR_OP_COUNT] = {
#define X(e, s) s,
    IR_OPS(X)
#undef X
};

const char *const ir_stage_kind_names[] = {
#define X(e, s) s,
    IR_STAGE_KINDS(X)
#undef X
};

const char *const ir_strategy_names[] = {
#define X(e, s) s,
    IR_STRATEGIES(X)
#undef X
};

IrModule *ir_module_new(Arena *a, const char *file)
{
    IrModule *m = fe_alloc(a, sizeof *m);
    m->arena = a;
    m->file = file;
    return m;
}

IrKernel *ir_kernel_new(IrModule *m, const char *name, Loc loc)
{
    IrKernel *k = fe_alloc(m->arena, sizeof *k);
    k->name = name;
    k->loc = loc;
    k->cls = CLASS_NONE;
    FE_PUSH(m->arena, m->kernels, k);
    return k;
}

/* The returned pointer is valid until the next ir_stage_add on k. */
IrStage *ir_stage_add(IrKernel *k, Arena *a, IrStageKind kind, FePrim prim, Loc loc)
{
    IrStage st;
    memset(&st, 0, sizeof st);
    st.kind = kind;
    st.in[0] = st.in[1] = -1;
    st.out = -1;
    st.strategy = IR_STRAT_NONE;
    FE_PUSH(a, st.prims, prim);
    FE_PUSH(a, st.locs, loc);
    FE_PUSH(a, k->stages, st);
    return &k->stages.v[k->stages.n - 1];
}

IrBlock *ir_block_new(Arena *a) { return fe_alloc(a, sizeof(IrBlock)); }

int ir_inst_new(IrKernel *k, Arena *a, IrOp op, ScalarType t)
{
    IrInst in;
    memset(&in, 0, sizeof in);
    in.op = op;
    in.type = t;
    in.param = -1;
    FE_PUSH(a, k->insts, in);
    return k->insts.n - 1;
}

static void place(IrBuilder *b, int id)
{
    FE_ASSERT(b->blk);
    FE_PUSH(b->arena, b->blk->ins, id);
}

/* Creates the instruction with operands and the builder's location, not
 * placed. */
static int make(IrBuilder *b, IrOp op, ScalarType t, int n, const int *args)
{
    int id = ir_inst_new(b->k, b->arena, op, t);
    IrInst *in = ir_inst(b->k, id);
    in->loc = b->loc;
    for (int i = 0; i < n; i++) FE_PUSH(b->arena, in->a, args[i]);
    return id;
}

int ir_emit(IrBuilder *b, IrOp op, ScalarType t, int n, const int *args)
{
    int id = make(b, op, t, n, args);
    place(b, id);
    return id;
}

int ir_const_int(IrBuilder *b, ScalarType t, int64_t v)
{
    int id = ir_emit(b, IR_CONST, t, 0, NULL);
    IrInst *in = ir_inst(b->k, id);
    /* Stored canonically: int as its sign-extended 32-bit value, uint and
     * bool zero-extended, so equal constants compare equal. */
    if (t == TY_INT) in->imm.i = (int32_t)(uint32_t)v;
    else if (t == TY_BOOL) in->imm.i = v != 0;
    else in->imm.i = (int64_t)(uint32_t)v;
    return id;
}

int ir_const_float(IrBuilder *b, ScalarType t, double v)
{
    int id = ir_emit(b, IR_CONST, t, 0, NULL);
    /* float constants hold the value rounded to float (half values are
     * rounded by the backends; the lexer gave them as written). */
    ir_inst(b->k, id)->imm.f = t == TY_FLOAT ? (double)(float)v : v;
    return id;
}

int ir_barg(IrBuilder *b, IrBlock *blk, ScalarType t)
{
    int id = ir_inst_new(b->k, b->arena, IR_BARG, t);
    IrInst *in = ir_inst(b->k, id);
    in->loc = b->loc;
    in->imm.i = blk->args.n;
    FE_PUSH(b->arena, blk->args, id);
    return id;
}

static void add_results(IrBuilder *b, int op, int nres, const ScalarType *rt, int *results)
{
    for (int i = 0; i < nres; i++) {
        int r = ir_emit(b, IR_RESULT, rt[i], 1, &op);
        ir_inst(b->k, r)->imm.i = i;
        if (results) results[i] = r;
    }
}

int ir_if(IrBuilder *b, int cond, int nres, const ScalarType *rt, int *results)
{
    int id = ir_emit(b, IR_IF, TY_VOID, 1, &cond);
    IrInst *in = ir_inst(b->k, id);
    in->nres = nres;
    in->body = ir_block_new(b->arena);
    in->els = ir_block_new(b->arena);
    add_results(b, id, nres, rt, results);
    return id;
}

int ir_for(IrBuilder *b, int lo, int hi, IrSize *trip, int ncarried, const int *inits,
           const ScalarType *ct, int *iv, int *carried_args, int *results)
{
    int id = ir_emit(b, IR_FOR, TY_VOID, 0, NULL);
    FE_PUSH(b->arena, ir_inst(b->k, id)->a, lo);
    FE_PUSH(b->arena, ir_inst(b->k, id)->a, hi);
    for (int i = 0; i < ncarried; i++) FE_PUSH(b->arena, ir_inst(b->k, id)->a, inits[i]);
    IrBlock *body = ir_block_new(b->arena);
    int v = ir_barg(b, body, ir_inst(b->k, lo)->type);
    if (iv) *iv = v;
    for (int i = 0; i < ncarried; i++) {
        int c = ir_barg(b, body, ct[i]);
        if (carried_args) carried_args[i] = c;
    }
    IrInst *in = ir_inst(b->k, id);
    in->nres = ncarried;
    in->body = body;
    in->trip = trip;
    add_results(b, id, ncarried, ct, results);
    return id;
}

void ir_yield(IrBuilder *b, int n, const int *vals) { ir_emit(b, IR_YIELD, TY_VOID, n, vals); }

int ir_sym_add(IrKernel *k, Arena *a, const char *name, int implicit, Loc loc)
{
    IrSym s = {name, implicit, loc};
    FE_PUSH(a, k->syms, s);
    return k->syms.n - 1;
}

int ir_param_add(IrKernel *k, Arena *a, const IrParam *p)
{
    FE_PUSH(a, k->params, *p);
    return k->params.n - 1;
}

int ir_scalar_add(IrKernel *k, Arena *a, const char *name, ScalarType t, Loc loc)
{
    IrParam p = {.name = name, .type = t, .loc = loc};
    return ir_param_add(k, a, &p);
}

int ir_buffer_add(IrKernel *k, Arena *a, const char *name, ScalarType elem, int rank,
                  IrSize *const *dims, int flags, Loc loc)
{
    FE_ASSERT(rank >= 1 && rank <= 4);
    IrParam p = {.name = name, .is_buffer = 1, .type = elem, .rank = rank, .flags = flags, .loc = loc};
    for (int i = 0; i < rank; i++) p.dims[i] = dims[i];
    return ir_param_add(k, a, &p);
}
