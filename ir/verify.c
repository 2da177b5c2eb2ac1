/* verify.c — the IR verifier. Run after lowering and after every pass when
 * verification is on; a failure is a compiler bug, reported with fe_die
 * naming the pass that ran last, the kernel, the stage and the value.
 *
 * Checks: every instruction placed at most once; operands defined earlier
 * in the same or an enclosing block (dominance for structured SSA);
 * operand types per op; IF/FOR followed by exactly nres RESULTs of
 * matching types, their blocks ending in a YIELD of the right arity and
 * types; LOAD/STORE index counts equal the buffer's rank; stage operands
 * name buffers of the right rank; params well formed. */
#include "ir.h"

#include <stdlib.h>

typedef struct Verifier {
    const IrKernel *k;
    const char *pass;
    int stage;
    unsigned char *visible; /* value id is in scope at this point */
    unsigned char *placed;  /* id already seen in some block */
    Arena *tmp;             /* the verifier's own memory (verify_kernel frees it) */
} Verifier;

FE_PRINTF(3, 4) FE_NORETURN static void fail(Verifier *v, int id, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fe_die("IR verification failed after %s: kernel %s, stage %d, value %d: %s", v->pass,
           v->k->name, v->stage, id, msg);
}


static const IrInst *inst(Verifier *v, int id) { return &v->k->insts.v[id]; }

static int is_int(ScalarType t) { return t == TY_INT || t == TY_UINT; }
static int is_float(ScalarType t) { return t == TY_FLOAT || t == TY_HALF; }
static int is_num(ScalarType t) { return is_int(t) || is_float(t); }

static ScalarType opnd(Verifier *v, int id, int i)
{
    const IrInst *in = inst(v, id);
    if (i >= in->a.n) fail(v, id, "%s has %d operands, needs operand %d", ir_op_names[in->op], in->a.n, i);
    int x = in->a.v[i];
    if (x < 0 || x >= v->k->insts.n) fail(v, id, "operand %d is not a value (%d)", i, x);
    if (!v->visible[x]) fail(v, id, "operand %d (value %d) is not defined before its use", i, x);
    ScalarType t = inst(v, x)->type;
    if (t == TY_VOID) fail(v, id, "operand %d (value %d, %s) has no value", i, x, ir_op_names[inst(v, x)->op]);
    return t;
}

static void nargs(Verifier *v, int id, int n)
{
    if (inst(v, id)->a.n != n)
        fail(v, id, "%s takes %d operands, has %d", ir_op_names[inst(v, id)->op], n, inst(v, id)->a.n);
}

static const IrParam *buffer(Verifier *v, int id, int p)
{
    if (p < 0 || p >= v->k->params.n || !v->k->params.v[p].is_buffer)
        fail(v, id, "param %d is not a buffer", p);
    return &v->k->params.v[p];
}

static void block(Verifier *v, const IrBlock *b, int parent, int nyield, const ScalarType *yt);

/* The RESULTs after IF/FOR `id` at ins[at]; returns their types in rt. */
/* Room for the result types of IF/FOR `id`: as many as it has (a kernel
 * may carry any number of vars through a branch or loop). */
static ScalarType *result_types(Verifier *v, int id, int n)
{
    (void)id;
    return fe_alloc(v->tmp, sizeof(ScalarType) * (size_t)(n + 1));
}

static void results(Verifier *v, const IrBlock *b, int at, int id, ScalarType *rt)
{
    int nres = inst(v, id)->nres;
    for (int r = 0; r < nres; r++) {
        if (at + 1 + r >= b->ins.n) fail(v, id, "missing RESULT %d", r);
        int rid = b->ins.v[at + 1 + r];
        const IrInst *ri = inst(v, rid);
        if (ri->op != IR_RESULT || ri->a.n != 1 || ri->a.v[0] != id || ri->imm.i != r)
            fail(v, id, "instruction %d after it is not its RESULT %d", rid, r);
        if (ri->type == TY_VOID) fail(v, rid, "RESULT of type void");
        rt[r] = ri->type;
    }
}

static void check_inst(Verifier *v, const IrBlock *b, int at)
{
    int id = b->ins.v[at];
    const IrInst *in = inst(v, id);
    ScalarType t = in->type;
    switch (in->op) {
    case IR_CONST:
        nargs(v, id, 0);
        if (t == TY_VOID) fail(v, id, "void constant");
        break;
    case IR_PARAM:
        nargs(v, id, 0);
        if (in->param < 0 || in->param >= v->k->params.n || v->k->params.v[in->param].is_buffer)
            fail(v, id, "param %d is not a scalar param", in->param);
        if (v->k->params.v[in->param].type != t) fail(v, id, "param type mismatch");
        break;
    case IR_SIZE:
        nargs(v, id, 0);
        if (in->param < 0 || in->param >= v->k->syms.n) fail(v, id, "size symbol %d does not exist", in->param);
        if (t != TY_UINT) fail(v, id, "size symbol read as %s, not uint", fe_type_name(t));
        break;
    case IR_BARG: fail(v, id, "block argument placed in a block's instruction list");
    case IR_RESULT:
        /* checked and defined by the IF/FOR in front of it; reaching one
         * here means it is not right behind its op */
        if (in->a.n != 1 || at == 0) fail(v, id, "stray RESULT");
        {
            int op = in->a.v[0], k = at;
            while (k > 0 && inst(v, b->ins.v[k - 1])->op == IR_RESULT) k--;
            if (k == 0 || b->ins.v[k - 1] != op) fail(v, id, "stray RESULT");
        }
        break;
    case IR_NEG:
        nargs(v, id, 1);
        if (!is_num(t) || opnd(v, id, 0) != t) fail(v, id, "neg needs a numeric operand of its type");
        break;
    case IR_NOT:
        nargs(v, id, 1);
        if (t != TY_BOOL || opnd(v, id, 0) != TY_BOOL) fail(v, id, "not needs bool");
        break;
    case IR_BNOT:
        nargs(v, id, 1);
        if (!is_int(t) || opnd(v, id, 0) != t) fail(v, id, "bnot needs int/uint of its type");
        break;
    case IR_ADD: case IR_SUB: case IR_MUL: case IR_DIV: case IR_REM:
        nargs(v, id, 2);
        if (!is_num(t) || opnd(v, id, 0) != t || opnd(v, id, 1) != t)
            fail(v, id, "%s needs two numeric operands of its type %s", ir_op_names[in->op], fe_type_name(t));
        break;
    case IR_AND: case IR_OR: case IR_XOR:
        nargs(v, id, 2);
        if (!(is_int(t) || t == TY_BOOL) || opnd(v, id, 0) != t || opnd(v, id, 1) != t)
            fail(v, id, "%s needs int/uint/bool operands of its type", ir_op_names[in->op]);
        break;
    case IR_SHL: case IR_SHR:
        nargs(v, id, 2);
        if (!is_int(t) || opnd(v, id, 0) != t || !is_int(opnd(v, id, 1)))
            fail(v, id, "shift needs int/uint operands");
        break;
    case IR_EQ: case IR_NE: case IR_LT: case IR_LE: case IR_GT: case IR_GE: {
        nargs(v, id, 2);
        ScalarType x = opnd(v, id, 0);
        if (t != TY_BOOL || x != opnd(v, id, 1)) fail(v, id, "comparison of mismatched types or not bool");
        if (x == TY_BOOL && in->op != IR_EQ && in->op != IR_NE) fail(v, id, "ordered comparison of bool");
        break;
    }
    case IR_SELECT:
        nargs(v, id, 3);
        if (opnd(v, id, 0) != TY_BOOL || opnd(v, id, 1) != t || opnd(v, id, 2) != t)
            fail(v, id, "select needs bool, T, T");
        break;
    case IR_CONV:
        nargs(v, id, 1);
        if (!is_num(t) || !is_num(opnd(v, id, 0))) fail(v, id, "conversion between non-numeric types");
        break;
    case IR_CALL: {
        if (in->param < 0 || in->param >= BI_FLOATCONV) fail(v, id, "call of builtin %d", in->param);
        nargs(v, id, fe_builtin_arity[in->param]);
        int first = in->param == BI_SELECT ? 1 : 0;
        if (in->param == BI_SELECT && opnd(v, id, 0) != TY_BOOL) fail(v, id, "select needs bool");
        for (int i = first; i < in->a.n; i++)
            if (opnd(v, id, i) != t) fail(v, id, "call %s operand %d is not %s", fe_builtin_names[in->param], i, fe_type_name(t));
        break;
    }
    case IR_LOAD: {
        const IrParam *p = buffer(v, id, in->param);
        nargs(v, id, p->rank);
        for (int i = 0; i < p->rank; i++)
            if (!is_int(opnd(v, id, i))) fail(v, id, "index %d is not int/uint", i);
        if (t != p->type) fail(v, id, "load of %s as %s", fe_type_name(p->type), fe_type_name(t));
        break;
    }
    case IR_STORE: {
        const IrParam *p = buffer(v, id, in->param);
        nargs(v, id, p->rank + 1);
        for (int i = 0; i < p->rank; i++)
            if (!is_int(opnd(v, id, i))) fail(v, id, "index %d is not int/uint", i);
        if (opnd(v, id, p->rank) != p->type) fail(v, id, "store of a mismatched type");
        if (t != TY_VOID) fail(v, id, "store has a type");
        break;
    }
    case IR_IF: {
        nargs(v, id, 1);
        if (opnd(v, id, 0) != TY_BOOL) fail(v, id, "if condition is not bool");
        if (!in->body || !in->els) fail(v, id, "if without both blocks");
        if (in->nres < 0) fail(v, id, "bad result count %d", in->nres);
        ScalarType *rt = result_types(v, id, in->nres);
        results(v, b, at, id, rt);
        block(v, in->body, id, in->nres, rt);
        block(v, in->els, id, in->nres, rt);
        break;
    }
    case IR_FOR: {
        if (in->a.n < 2) fail(v, id, "for without bounds");
        ScalarType it = opnd(v, id, 0);
        if (!is_int(it) || opnd(v, id, 1) != it) fail(v, id, "for bounds are not one int/uint type");
        int nc = in->a.n - 2;
        if (in->nres != nc) fail(v, id, "for has %d carried values but %d results", nc, in->nres);
        ScalarType *rt = result_types(v, id, nc);
        results(v, b, at, id, rt);
        if (!in->body || in->els) fail(v, id, "for needs exactly a body");
        if (in->body->args.n != nc + 1) fail(v, id, "for body has %d args, needs %d", in->body->args.n, nc + 1);
        if (inst(v, in->body->args.v[0])->type != it) fail(v, id, "induction variable type");
        for (int i = 0; i < nc; i++) {
            if (opnd(v, id, 2 + i) != rt[i]) fail(v, id, "init %d type differs from result", i);
            if (inst(v, in->body->args.v[1 + i])->type != rt[i]) fail(v, id, "carried arg %d type", i);
        }
        block(v, in->body, id, nc, rt);
        break;
    }
    case IR_YIELD:
        fail(v, id, "yield in the middle of a block");
    default: fail(v, id, "unknown op %d", in->op);
    }
}

/* parent: the IF/FOR owning b, or -1 for a stage body (no yield needed). */
static void block(Verifier *v, const IrBlock *b, int parent, int nyield, const ScalarType *yt)
{
    const IrKernel *k = v->k;
    for (int i = 0; i < b->args.n; i++) {
        int a = b->args.v[i];
        if (a < 0 || a >= k->insts.n || inst(v, a)->op != IR_BARG) fail(v, a, "block argument is not an arg");
        if (v->placed[a]) fail(v, a, "value placed twice");
        v->placed[a] = v->visible[a] = 1;
    }
    int n = b->ins.n;
    if (parent >= 0) {
        if (n == 0 || inst(v, b->ins.v[n - 1])->op != IR_YIELD)
            fail(v, parent, "a block of %s does not end with yield", ir_op_names[inst(v, parent)->op]);
    } else if (n && inst(v, b->ins.v[n - 1])->op == IR_YIELD && inst(v, b->ins.v[n - 1])->a.n) {
        fail(v, b->ins.v[n - 1], "stage body yields values");
    }
    for (int i = 0; i < n; i++) {
        int id = b->ins.v[i];
        if (id < 0 || id >= k->insts.n) fail(v, id, "instruction id out of range");
        if (v->placed[id]) fail(v, id, "value placed twice");
        v->placed[id] = 1;
        if (inst(v, id)->op == IR_YIELD && i == n - 1) {
            const IrInst *y = inst(v, id);
            if (parent >= 0 && y->a.n != nyield) fail(v, id, "yield of %d values, needs %d", y->a.n, nyield);
            for (int j = 0; j < y->a.n; j++)
                if (opnd(v, id, j) != yt[j]) fail(v, id, "yield value %d has the wrong type", j);
            continue;
        }
        check_inst(v, b, i);
        v->visible[id] = 1;
    }
    /* Leaving the block: its definitions go out of scope. */
    for (int i = 0; i < b->args.n; i++) v->visible[b->args.v[i]] = 0;
    for (int i = 0; i < n; i++) v->visible[b->ins.v[i]] = 0;
}

static void check_size(Verifier *v, const IrSize *s)
{
    if (!s) fail(v, -1, "missing size formula");
    switch (s->op) {
    case SZ_CONST: return;
    case SZ_SYM:
        if (s->sym < 0 || s->sym >= v->k->syms.n) fail(v, -1, "size formula names symbol %d", s->sym);
        return;
    case SZ_PARAM:
        if (s->sym < 0 || s->sym >= v->k->params.n || v->k->params.v[s->sym].is_buffer ||
            !is_int(v->k->params.v[s->sym].type))
            fail(v, -1, "size formula names param %d, not an int/uint scalar", s->sym);
        return;
    default:
        check_size(v, s->a);
        check_size(v, s->b);
    }
}

static void verify_kernel(void *ud)
{
    Verifier *v = ud;
    const IrKernel *k = v->k;
    v->visible = fe_alloc(v->tmp, (size_t)k->insts.n + 1);
    v->placed = fe_alloc(v->tmp, (size_t)k->insts.n + 1);
    if (fe_inject_at("verify")) fail(v, -1, "injected failure (fe_inject_failure)");
    for (int i = 0; i < k->params.n; i++) {
        const IrParam *p = &k->params.v[i];
        if (p->type == TY_VOID || p->type == TY_BOOL) fail(v, -1, "param %s has type %s", p->name, fe_type_name(p->type));
        if (!p->is_buffer) continue;
        if (p->rank < 1 || p->rank > 4) fail(v, -1, "buffer %s has rank %d", p->name, p->rank);
        for (int d = 0; d < p->rank; d++) {
            check_size(v, p->dims[d]);
            if (p->dims[d]->op != SZ_CONST && p->dims[d]->op != SZ_SYM)
                fail(v, -1, "buffer %s extent %d is not a constant or symbol", p->name, d);
        }
    }
    for (int si = 0; si < k->stages.n; si++) {
        const IrStage *s = &k->stages.v[si];
        v->stage = si;
        if (s->prims.n < 1) fail(v, -1, "stage from no primitive");
        if (s->kind == IR_STAGE_GRID) {
            if (s->rank < 1 || s->rank > 3) fail(v, -1, "grid of rank %d", s->rank);
            if (!s->body || s->body->args.n != s->rank) fail(v, -1, "grid body needs %d index args", s->rank);
            for (int d = 0; d < s->rank; d++) {
                check_size(v, s->lo[d]);
                check_size(v, s->hi[d]);
                if (!is_int(s->itype[d]) || inst(v, s->body->args.v[d])->type != s->itype[d])
                    fail(v, -1, "index variable %d type", d);
            }
            block(v, s->body, -1, 0, NULL);
            continue;
        }
        if (s->nin < 1 || s->nin > 2) fail(v, -1, "library stage with %d inputs", s->nin);
        const IrParam *out = buffer(v, -1, s->out);
        int need_in = s->kind == IR_STAGE_MATMUL ? 2 : 1;
        if (s->nin != need_in) fail(v, -1, "%s needs %d inputs", ir_stage_kind_names[s->kind], need_in);
        for (int i = 0; i < s->nin; i++) {
            const IrParam *in = buffer(v, -1, s->in[i]);
            if (s->in[i] == s->out) fail(v, -1, "output %s is also an input", out->name);
            if ((s->kind == IR_STAGE_MATMUL || s->kind == IR_STAGE_TRANSPOSE) && in->rank != 2)
                fail(v, -1, "%s operand %s has rank %d", ir_stage_kind_names[s->kind], in->name, in->rank);
            if ((s->kind == IR_STAGE_REDUCE || s->kind == IR_STAGE_SCAN || s->kind == IR_STAGE_SOFTMAX) &&
                in->rank > 2)
                fail(v, -1, "%s operand %s has rank %d", ir_stage_kind_names[s->kind], in->name, in->rank);
        }
        if ((s->kind == IR_STAGE_MATMUL || s->kind == IR_STAGE_TRANSPOSE) && out->rank != 2)
            fail(v, -1, "%s output has rank %d", ir_stage_kind_names[s->kind], out->rank);
    }
}

void ir_verify(const IrModule *m, const char *after_pass)
{
    for (int i = 0; i < m->kernels.n; i++) {
        /* the verifier's memory is its own: freed on every way out */
        Verifier v = {m->kernels.v[i], after_pass ? after_pass : "?", -1, NULL, NULL, fe_arena_new()};
        FeFail f;
        FeFailKind r = fe_protect(verify_kernel, &v, &f);
        fe_arena_free(v.tmp);
        if (r) fe_rethrow(&f);
    }
}
