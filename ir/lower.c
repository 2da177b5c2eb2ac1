/* lower.c — checked AST to IR.
 *
 * Requires: fe_check succeeded on the Program (types, syms and shapes are
 * filled). Produces one IrKernel per kernel, verified by the caller.
 *
 * Extents: each canonical extent class (FeShapes union-find root) becomes
 * SZ_CONST when it holds a literal, else one IrSym, created in order of
 * first appearance over the params' dims; size symbols named only in
 * expressions get an IrSym by name when first read.
 *
 * Thread code becomes structured SSA: the environment maps each local Sym
 * to its current value; a `var` assigned inside an if/for body (and
 * declared outside it) becomes an IF result / FOR loop-carried value. The
 * set of such vars is computed from the AST before lowering the construct,
 * the standard construction for structured control flow. */
#include "ir.h"
#include "../frontend/fe.h"

typedef struct Binding {
    const Sym *sym;
    int val;
} Binding;

typedef struct Lower {
    Arena *a;
    Diags *d;
    Kernel *kast;
    FeShapes *sh;
    IrKernel *k;
    IrBuilder b;
    FE_VEC(Binding) env;
    int *class_sym; /* extent root -> IrSym index, -1 when none yet */
    /* elementwise stages: the index args and the stage's output buffer */
    int idx[4], nidx;
} Lower;

/* ---- extents and size symbols ---- */

static int sym_by_name(Lower *L, const char *name, int implicit, Loc loc)
{
    for (int i = 0; i < L->k->syms.n; i++)
        if (strcmp(L->k->syms.v[i].name, name) == 0) return i;
    return ir_sym_add(L->k, L->a, name, implicit, loc);
}

static IrSize *extent_size(Lower *L, int e)
{
    if (!L->sh || e < 0 || e >= L->sh->ext.n) return NULL;
    int r = fe_extent_find(L->sh, e);
    const FeExtent *x = &L->sh->ext.v[r];
    if (x->value >= 0) return ir_size_const(L->a, x->value);
    if (L->class_sym[r] < 0)
        L->class_sym[r] = sym_by_name(L, x->name ? x->name : fe_sprintf(L->a, "ext.%d", r), x->implicit, x->loc);
    return ir_size_sym(L->a, L->class_sym[r]);
}

/* A size symbol read by name: its class when some dimension uses it. */
static IrSize *named_size(Lower *L, const char *name, Loc loc)
{
    if (L->sh)
        for (int e = 0; e < L->sh->ext.n; e++)
            if (!L->sh->ext.v[e].implicit && L->sh->ext.v[e].name && strcmp(L->sh->ext.v[e].name, name) == 0)
                return extent_size(L, e);
    return ir_size_sym(L->a, sym_by_name(L, name, 0, loc));
}

/* Loop bound expressions as formulas: sema allows literals, size symbols,
 * int/uint scalar params and lets bound to such expressions, combined with
 * + - * / % min max. depth bounds recursion through lets. */
static IrSize *bound_size(Lower *L, const Expr *e, int depth)
{
    if (!e || depth > 200) return NULL;
    switch (e->kind) {
    case EX_INT:
        return ir_size_const(L->a, e->type == TY_INT ? (int64_t)(int32_t)(uint32_t)e->ival
                                                     : (int64_t)(uint32_t)e->ival);
    case EX_NAME:
        if (!e->sym) return NULL;
        switch (e->sym->kind) {
        case SYM_SIZE: return named_size(L, e->sym->name, e->loc);
        case SYM_SCALAR: return ir_size_param(L->a, e->sym->id);
        case SYM_LET: return bound_size(L, e->sym->bound_value, depth + 1);
        default: return NULL;
        }
    case EX_UNARY:
        /* sema's is_bound admits `-literal` (a negative bound) */
        if (e->op == OP_NEG && e->a && e->a->kind == EX_INT) {
            /* the literal alone may be 2^31 (sema checked the range) */
            int64_t v = -(int64_t)(uint32_t)e->a->ival;
            return ir_size_const(L->a, e->type == TY_INT ? (int64_t)(int32_t)(uint32_t)v
                                                         : (int64_t)(uint32_t)v);
        }
        return NULL;
    case EX_BINARY: {
        IrSizeOp op;
        switch (e->op) {
        case OP_ADD: op = SZ_ADD; break;
        case OP_SUB: op = SZ_SUB; break;
        case OP_MUL: op = SZ_MUL; break;
        case OP_DIV: op = SZ_DIV; break;
        case OP_REM: op = SZ_REM; break;
        default: return NULL;
        }
        IrSize *l = bound_size(L, e->a, depth + 1), *r = bound_size(L, e->b, depth + 1);
        return l && r ? ir_size_bin(L->a, op, l, r) : NULL;
    }
    case EX_CALL:
        if ((e->builtin == BI_MIN || e->builtin == BI_MAX) && e->args.n == 2) {
            IrSize *l = bound_size(L, e->args.v[0], depth + 1), *r = bound_size(L, e->args.v[1], depth + 1);
            return l && r ? ir_size_bin(L->a, e->builtin == BI_MIN ? SZ_MIN : SZ_MAX, l, r) : NULL;
        }
        return NULL;
    default: return NULL;
    }
}

static IrSize *range_size(Lower *L, const Expr *e)
{
    IrSize *s = bound_size(L, e, 0);
    if (!s) {
        fe_error(L->d, e ? e->loc : L->kast->loc,
                 "range bound must be built from literals, size symbols, int/uint params and lets");
        s = ir_size_const(L->a, 0);
    }
    return s;
}

/* Trip count of lo..hi: max(hi - lo, 0), folded where the bounds allow. */
static IrSize *trip_size(Lower *L, IrSize *lo, IrSize *hi)
{
    int64_t c;
    if (ir_size_is_const(lo, &c) && c == 0 && (hi->op == SZ_SYM || hi->op == SZ_CONST) &&
        !(hi->op == SZ_CONST && hi->c < 0))
        return hi;
    return ir_size_bin(L->a, SZ_MAX, ir_size_bin(L->a, SZ_SUB, hi, lo), ir_size_const(L->a, 0));
}

/* ---- environment ---- */

static int env_find(Lower *L, const Sym *s)
{
    for (int i = L->env.n - 1; i >= 0; i--)
        if (L->env.v[i].sym == s) return i;
    return -1;
}

static void env_bind(Lower *L, const Sym *s, int v)
{
    Binding b = {s, v};
    FE_PUSH(L->a, L->env, b);
}

/* ---- expressions ---- */

static ScalarType vtype(Lower *L, int v) { return ir_inst(L->k, v)->type; }

static int is_floatish(ScalarType t) { return t == TY_FLOAT || t == TY_HALF; }

/* Converts v to t. Sema gives every operand its final type, so this only
 * acts on literals typed by context and on explicit conversions. */
static int coerce(Lower *L, int v, ScalarType t)
{
    if (t == TY_VOID || vtype(L, v) == t) return v;
    const IrInst *in = ir_inst(L->k, v);
    if (in->op == IR_CONST) {
        if (is_floatish(t)) {
            double f = is_floatish(in->type) ? in->imm.f
                     : in->type == TY_INT ? (double)in->imm.i : (double)(uint32_t)in->imm.u;
            return ir_const_float(&L->b, t, f);
        }
        if (!is_floatish(in->type)) return ir_const_int(&L->b, t, in->imm.i);
    }
    return ir_emit(&L->b, IR_CONV, t, 1, &v);
}

static int lower_expr(Lower *L, const Expr *e);

static IrOp binop_of(FeOp op)
{
    switch (op) {
    case OP_ADD: return IR_ADD;
    case OP_SUB: return IR_SUB;
    case OP_MUL: return IR_MUL;
    case OP_DIV: return IR_DIV;
    case OP_REM: return IR_REM;
    case OP_SHL: return IR_SHL;
    case OP_SHR: return IR_SHR;
    case OP_BAND: case OP_LAND: return IR_AND;
    case OP_BOR: case OP_LOR: return IR_OR;
    case OP_BXOR: return IR_XOR;
    case OP_EQ: return IR_EQ;
    case OP_NE: return IR_NE;
    case OP_LT: return IR_LT;
    case OP_LE: return IR_LE;
    case OP_GT: return IR_GT;
    case OP_GE: return IR_GE;
    default: fe_unreachable();
    }
}

/* l op r with result type t; comparison operands share the type of the
 * typed side (an untyped literal follows it). */
static int emit_binary(Lower *L, FeOp op, ScalarType t, int l, int r)
{
    IrOp iop = binop_of(op);
    if (iop >= IR_EQ && iop <= IR_GE) {
        ScalarType ot = vtype(L, l);
        if (ir_inst(L->k, l)->op == IR_CONST && ir_inst(L->k, r)->op != IR_CONST) ot = vtype(L, r);
        l = coerce(L, l, ot);
        r = coerce(L, r, ot);
        int args[2] = {l, r};
        return ir_emit(&L->b, iop, TY_BOOL, 2, args);
    }
    l = coerce(L, l, t);
    if (iop != IR_SHL && iop != IR_SHR) r = coerce(L, r, t);
    int args[2] = {l, r};
    return ir_emit(&L->b, iop, t, 2, args);
}

static int load_elem(Lower *L, const Sym *buf)
{
    int args[4];
    int n = buf->rank < 1 ? 1 : buf->rank;
    if (n > L->nidx) n = L->nidx;
    for (int i = 0; i < n; i++) args[i] = L->idx[i];
    int v = ir_emit(&L->b, IR_LOAD, buf->type, n, args);
    ir_inst(L->k, v)->param = buf->id;
    return v;
}

static int lower_name(Lower *L, const Expr *e)
{
    const Sym *s = e->sym;
    if (!s) fe_die("lower: name '%s' has no symbol", e->name ? e->name : "?");
    switch (s->kind) {
    case SYM_SCALAR: {
        int v = ir_emit(&L->b, IR_PARAM, s->type, 0, NULL);
        ir_inst(L->k, v)->param = s->id;
        return v;
    }
    case SYM_SIZE: {
        IrSize *z = named_size(L, s->name, e->loc);
        if (z->op == SZ_CONST) return ir_const_int(&L->b, TY_UINT, z->c);
        int v = ir_emit(&L->b, IR_SIZE, TY_UINT, 0, NULL);
        ir_inst(L->k, v)->param = z->sym;
        return v;
    }
    case SYM_ELEM: {
        /* the input's element at the stage index, loaded once at first use
         * (MAP expressions have no control flow, so it dominates the rest) */
        int i = env_find(L, s->elem_of);
        if (i >= 0) return L->env.v[i].val;
        int v = load_elem(L, s->elem_of);
        env_bind(L, s->elem_of, v);
        return v;
    }
    case SYM_BUFFER: {
        /* a flexible buffer named alone inside a MAP expression: the same */
        int i = env_find(L, s);
        if (i >= 0) return L->env.v[i].val;
        if (!L->nidx) fe_die("lower: buffer '%s' used as a value", s->name);
        int v = load_elem(L, s);
        env_bind(L, s, v);
        return v;
    }
    default: {
        int i = env_find(L, s);
        if (i < 0) fe_die("lower: local '%s' has no value", s->name);
        return L->env.v[i].val;
    }
    }
}

static int lower_index_args(Lower *L, const Expr *e, int *args)
{
    int n = e->args.n > 4 ? 4 : e->args.n;
    for (int i = 0; i < n; i++) {
        const Expr *x = e->args.v[i];
        int v = lower_expr(L, x);
        /* an untyped literal index is int unless sema said otherwise */
        if (vtype(L, v) != TY_INT && vtype(L, v) != TY_UINT) v = coerce(L, v, TY_INT);
        args[i] = v;
    }
    return n;
}

static int lower_expr(Lower *L, const Expr *e)
{
    Loc saved = L->b.loc;
    L->b.loc = e->loc;
    ScalarType t = e->type;
    int v = -1;
    switch (e->kind) {
    case EX_INT:
        if (is_floatish(t)) v = ir_const_float(&L->b, t, (double)e->ival);
        else v = ir_const_int(&L->b, t == TY_VOID ? (e->is_unsigned ? TY_UINT : TY_INT) : t, (int64_t)e->ival);
        break;
    case EX_FLOAT:
        v = ir_const_float(&L->b, is_floatish(t) ? t : (e->is_half ? TY_HALF : TY_FLOAT), e->fval);
        break;
    case EX_NAME: v = lower_name(L, e); break;
    case EX_UNARY: {
        int x = lower_expr(L, e->a);
        L->b.loc = e->oploc;
        IrOp op = e->op == OP_NEG ? IR_NEG : e->op == OP_NOT ? IR_NOT : IR_BNOT;
        if (op != IR_NOT) x = coerce(L, x, t);
        v = ir_emit(&L->b, op, op == IR_NOT ? TY_BOOL : t, 1, &x);
        break;
    }
    case EX_BINARY: {
        int l = lower_expr(L, e->a), r = lower_expr(L, e->b);
        L->b.loc = e->oploc;
        v = emit_binary(L, e->op, e->op == OP_LAND || e->op == OP_LOR ? TY_BOOL : t, l, r);
        break;
    }
    case EX_TERNARY: {
        int args[3] = {lower_expr(L, e->a), lower_expr(L, e->b), lower_expr(L, e->c)};
        L->b.loc = e->oploc;
        args[1] = coerce(L, args[1], t);
        args[2] = coerce(L, args[2], t);
        v = ir_emit(&L->b, IR_SELECT, t, 3, args);
        break;
    }
    case EX_INDEX: {
        int args[4];
        int n = lower_index_args(L, e, args);
        L->b.loc = e->loc;
        v = ir_emit(&L->b, IR_LOAD, e->sym->type, n, args);
        ir_inst(L->k, v)->param = e->sym->id;
        break;
    }
    case EX_CALL: {
        int args[3];
        int n = e->args.n > 3 ? 3 : e->args.n;
        for (int i = 0; i < n; i++) args[i] = lower_expr(L, e->args.v[i]);
        L->b.loc = e->loc;
        switch (e->builtin) {
        case BI_FLOATCONV: case BI_INTCONV: case BI_UINTCONV: case BI_HALFCONV:
            if (ir_inst(L->k, args[0])->op == IR_CONST && !is_floatish(t) &&
                is_floatish(vtype(L, args[0])))
                v = ir_emit(&L->b, IR_CONV, t, 1, args); /* truncation: fold.c's job */
            else
                v = coerce(L, args[0], t);
            break;
        case BI_SELECT:
            args[1] = coerce(L, args[1], t);
            args[2] = coerce(L, args[2], t);
            v = ir_emit(&L->b, IR_CALL, t, 3, args);
            ir_inst(L->k, v)->param = BI_SELECT;
            break;
        default:
            for (int i = 0; i < n; i++) args[i] = coerce(L, args[i], t);
            v = ir_emit(&L->b, IR_CALL, t, n, args);
            ir_inst(L->k, v)->param = e->builtin;
            break;
        }
        break;
    }
    }
    L->b.loc = saved;
    return v;
}

/* ---- thread code ---- */

static void lower_stmts(Lower *L, const StmtList *sl);

typedef FE_VEC(const Sym *) SymList;

static void add_unique(Lower *L, SymList *out, const Sym *s)
{
    for (int i = 0; i < out->n; i++)
        if (out->v[i] == s) return;
    FE_PUSH(L->a, *out, s);
}

/* Vars assigned anywhere in sl that are bound in the environment now
 * (declared outside the construct being lowered). */
static void assigned_vars(Lower *L, const StmtList *sl, SymList *out)
{
    for (int i = 0; i < sl->n; i++) {
        const Stmt *s = sl->v[i];
        switch (s->kind) {
        case ST_ASSIGN:
            if (s->target && s->target->kind == EX_NAME && s->target->sym &&
                s->target->sym->kind == SYM_VAR && env_find(L, s->target->sym) >= 0)
                add_unique(L, out, s->target->sym);
            break;
        case ST_IF:
            assigned_vars(L, &s->body, out);
            assigned_vars(L, &s->els, out);
            break;
        case ST_FOR: assigned_vars(L, &s->body, out); break;
        default: break;
        }
    }
}

static void set_var(Lower *L, const Sym *s, int v)
{
    int i = env_find(L, s);
    if (i < 0) fe_die("lower: assignment to unbound '%s'", s->name);
    L->env.v[i].val = v;
}

static int get_var(Lower *L, const Sym *s)
{
    int i = env_find(L, s);
    if (i < 0) fe_die("lower: '%s' has no value", s->name);
    return L->env.v[i].val;
}

static void yield_vars(Lower *L, const SymList *vars)
{
    int *vals = fe_alloc(L->a, sizeof(int) * (size_t)(vars->n + 1));
    for (int i = 0; i < vars->n; i++) vals[i] = coerce(L, get_var(L, vars->v[i]), vars->v[i]->type);
    ir_yield(&L->b, vars->n, vals);
}

static void lower_if(Lower *L, const Stmt *s)
{
    SymList vars = {0};
    assigned_vars(L, &s->body, &vars);
    assigned_vars(L, &s->els, &vars);
    int cond = lower_expr(L, s->a);
    L->b.loc = s->loc;
    int nv = vars.n;
    ScalarType *rt = fe_alloc(L->a, sizeof(ScalarType) * (size_t)(nv + 1));
    int *saved = fe_alloc(L->a, sizeof(int) * (size_t)(nv + 1));
    int *res = fe_alloc(L->a, sizeof(int) * (size_t)(nv + 1));
    for (int i = 0; i < nv; i++) {
        rt[i] = vars.v[i]->type;
        saved[i] = get_var(L, vars.v[i]);
    }
    int op = ir_if(&L->b, cond, nv, rt, res);
    IrBlock *outer = L->b.blk;
    int env_n = L->env.n;
    for (int br = 0; br < 2; br++) {
        L->b.blk = br ? ir_inst(L->k, op)->els : ir_inst(L->k, op)->body;
        lower_stmts(L, br ? &s->els : &s->body);
        L->b.loc = s->loc;
        yield_vars(L, &vars);
        L->env.n = env_n;
        for (int i = 0; i < nv; i++) set_var(L, vars.v[i], saved[i]);
    }
    L->b.blk = outer;
    for (int i = 0; i < nv; i++) set_var(L, vars.v[i], res[i]);
}

static void lower_for(Lower *L, const Stmt *s)
{
    const Range *r = &s->ranges.v[0];
    ScalarType it = r->sym ? r->sym->type : TY_INT;
    if (it != TY_INT && it != TY_UINT) it = TY_INT;
    SymList vars = {0};
    assigned_vars(L, &s->body, &vars);
    int lo = coerce(L, lower_expr(L, r->lo), it);
    int hi = coerce(L, lower_expr(L, r->hi), it);
    IrSize *trip = trip_size(L, range_size(L, r->lo), range_size(L, r->hi));
    L->b.loc = s->loc;
    int nv = vars.n;
    ScalarType *ct = fe_alloc(L->a, sizeof(ScalarType) * (size_t)(nv + 1));
    int *inits = fe_alloc(L->a, sizeof(int) * (size_t)(nv + 1));
    int *cargs = fe_alloc(L->a, sizeof(int) * (size_t)(nv + 1));
    int *res = fe_alloc(L->a, sizeof(int) * (size_t)(nv + 1));
    for (int i = 0; i < nv; i++) {
        ct[i] = vars.v[i]->type;
        inits[i] = coerce(L, get_var(L, vars.v[i]), ct[i]);
    }
    int iv;
    int op = ir_for(&L->b, lo, hi, trip, nv, inits, ct, &iv, cargs, res);
    IrBlock *outer = L->b.blk;
    int env_n = L->env.n;
    L->b.blk = ir_inst(L->k, op)->body;
    if (r->sym) env_bind(L, r->sym, iv);
    for (int i = 0; i < nv; i++) set_var(L, vars.v[i], cargs[i]);
    lower_stmts(L, &s->body);
    L->b.loc = s->loc;
    yield_vars(L, &vars);
    L->env.n = env_n;
    L->b.blk = outer;
    for (int i = 0; i < nv; i++) set_var(L, vars.v[i], res[i]);
}

static void lower_assign(Lower *L, const Stmt *s)
{
    const Expr *t = s->target;
    int rhs = lower_expr(L, s->a);
    L->b.loc = s->loc;
    if (t->kind == EX_NAME) {
        const Sym *v = t->sym;
        int val = s->op == OP_ASSIGN ? coerce(L, rhs, v->type)
                                     : emit_binary(L, s->op, v->type, get_var(L, v), rhs);
        set_var(L, v, val);
        return;
    }
    if (t->kind != EX_INDEX || !t->sym) fe_die("lower: bad assignment target");
    int args[5];
    int n = lower_index_args(L, t, args);
    L->b.loc = s->loc;
    ScalarType et = t->sym->type;
    int val;
    if (s->op == OP_ASSIGN) {
        val = coerce(L, rhs, et);
    } else {
        int old = ir_emit(&L->b, IR_LOAD, et, n, args);
        ir_inst(L->k, old)->param = t->sym->id;
        val = emit_binary(L, s->op, et, old, rhs);
    }
    args[n] = val;
    int st = ir_emit(&L->b, IR_STORE, TY_VOID, n + 1, args);
    ir_inst(L->k, st)->param = t->sym->id;
}

static void lower_stmts(Lower *L, const StmtList *sl)
{
    for (int i = 0; i < sl->n; i++) {
        const Stmt *s = sl->v[i];
        L->b.loc = s->loc;
        switch (s->kind) {
        case ST_LET:
        case ST_VAR: {
            int v = lower_expr(L, s->a);
            if (s->sym) env_bind(L, s->sym, coerce(L, v, s->sym->type));
            break;
        }
        case ST_ASSIGN: lower_assign(L, s); break;
        case ST_IF: lower_if(L, s); break;
        case ST_FOR: lower_for(L, s); break;
        case ST_PARALLEL: fe_die("lower: parallel statement inside thread code");
        }
    }
}

/* ---- parallel statements ---- */

static const Sym *operand_buf(Lower *L, const Operand *o)
{
    if (!o->sym || o->sym->kind != SYM_BUFFER) fe_die("lower: operand '%s' is not a buffer", o->name ? o->name : "?");
    return o->sym;
}

/* A grid stage over out's shape, with L->idx[] set to the index args.
 * A rank-4 output is indexed by a rank-3 grid whose first dimension runs
 * over d0*d1 and is split by div/rem. */
static int elementwise_stage(Lower *L, const Stmt *st, const Sym *out)
{
    IrParam *po = &L->k->params.v[out->id];
    int rank = po->rank;
    IrStage *s = ir_stage_add(L->k, L->a, IR_STAGE_GRID, st->prim, st->loc);
    int si = L->k->stages.n - 1;
    s->elementwise = 1;
    s->body = ir_block_new(L->a);
    s->rank = rank > 3 ? 3 : rank;
    for (int d = 0; d < s->rank; d++) {
        s->lo[d] = ir_size_const(L->a, 0);
        s->itype[d] = TY_UINT;
    }
    if (rank == 4) {
        s->hi[0] = ir_size_bin(L->a, SZ_MUL, po->dims[0], po->dims[1]);
        s->hi[1] = po->dims[2];
        s->hi[2] = po->dims[3];
    } else {
        for (int d = 0; d < rank; d++) s->hi[d] = po->dims[d];
    }
    L->b.blk = s->body;
    L->b.loc = st->loc;
    int g[3];
    for (int d = 0; d < s->rank; d++) g[d] = ir_barg(&L->b, s->body, TY_UINT);
    if (rank == 4) {
        /* d1 as a uint value: a constant or the size symbol */
        int d1;
        if (po->dims[1]->op == SZ_CONST) d1 = ir_const_int(&L->b, TY_UINT, po->dims[1]->c);
        else {
            d1 = ir_emit(&L->b, IR_SIZE, TY_UINT, 0, NULL);
            ir_inst(L->k, d1)->param = po->dims[1]->sym;
        }
        int qa[2] = {g[0], d1};
        L->idx[0] = ir_emit(&L->b, IR_DIV, TY_UINT, 2, qa);
        L->idx[1] = ir_emit(&L->b, IR_REM, TY_UINT, 2, qa);
        L->idx[2] = g[1];
        L->idx[3] = g[2];
        /* the accesses are not at the grid index itself */
        L->k->stages.v[si].elementwise = 0;
    } else {
        for (int d = 0; d < rank; d++) L->idx[d] = g[d];
    }
    L->nidx = rank;
    return si;
}

static void store_elem(Lower *L, const Sym *out, int v)
{
    int args[5];
    for (int i = 0; i < L->nidx; i++) args[i] = L->idx[i];
    args[L->nidx] = coerce(L, v, out->type);
    int st = ir_emit(&L->b, IR_STORE, TY_VOID, L->nidx + 1, args);
    ir_inst(L->k, st)->param = out->id;
}

static void check_ranks(Lower *L, const Stmt *st, const Sym *out)
{
    for (int i = 0; i < st->in.n; i++) {
        const Sym *in = st->in.v[i].sym;
        if (in && in->kind == SYM_BUFFER && L->k->params.v[in->id].rank != L->k->params.v[out->id].rank)
            fe_error(L->d, st->in.v[i].loc, "'%s' and '%s' must have one shape in %s", in->name, out->name,
                     fe_prim_names[st->prim]);
    }
}

static void lower_parallel(Lower *L, const Stmt *st)
{
    int env_n = L->env.n;
    L->nidx = 0;
    switch (st->prim) {
    case PRIM_MAP:
    case PRIM_FILL:
    case PRIM_COPY:
    case PRIM_ADD: case PRIM_SUB: case PRIM_MUL: case PRIM_DIV: {
        const Sym *out = operand_buf(L, &st->out);
        check_ranks(L, st, out);
        elementwise_stage(L, st, out);
        int v;
        if (st->prim == PRIM_MAP || st->prim == PRIM_FILL) {
            v = lower_expr(L, st->a);
        } else if (st->prim == PRIM_COPY) {
            v = load_elem(L, operand_buf(L, &st->in.v[0]));
        } else {
            static const FeOp ops[] = {[PRIM_ADD] = OP_ADD, [PRIM_SUB] = OP_SUB, [PRIM_MUL] = OP_MUL,
                                       [PRIM_DIV] = OP_DIV};
            int x = load_elem(L, operand_buf(L, &st->in.v[0]));
            int y = load_elem(L, operand_buf(L, &st->in.v[1]));
            L->b.loc = st->loc;
            v = emit_binary(L, ops[st->prim], out->type, x, y);
        }
        L->b.loc = st->loc;
        store_elem(L, out, v);
        break;
    }
    case PRIM_FOR: {
        IrStage *s = ir_stage_add(L->k, L->a, IR_STAGE_GRID, PRIM_FOR, st->loc);
        int n = st->ranges.n > 3 ? 3 : st->ranges.n;
        s->rank = n;
        s->body = ir_block_new(L->a);
        L->b.blk = s->body;
        L->b.loc = st->loc;
        int si = L->k->stages.n - 1;
        for (int d = 0; d < n; d++) {
            const Range *r = &st->ranges.v[d];
            ScalarType it = r->sym && (r->sym->type == TY_INT || r->sym->type == TY_UINT) ? r->sym->type : TY_INT;
            IrStage *sd = &L->k->stages.v[si];
            sd->lo[d] = range_size(L, r->lo);
            sd->hi[d] = range_size(L, r->hi);
            sd->itype[d] = it;
            L->b.loc = r->varloc;
            int a = ir_barg(&L->b, sd->body, it);
            if (r->sym) env_bind(L, r->sym, a);
        }
        lower_stmts(L, &st->body);
        break;
    }
    default: {
        static const IrStageKind kinds[] = {
            [PRIM_MATMUL] = IR_STAGE_MATMUL, [PRIM_TRANSPOSE] = IR_STAGE_TRANSPOSE,
            [PRIM_REDUCE] = IR_STAGE_REDUCE, [PRIM_SCAN] = IR_STAGE_SCAN, [PRIM_SOFTMAX] = IR_STAGE_SOFTMAX};
        IrStage *s = ir_stage_add(L->k, L->a, kinds[st->prim], st->prim, st->loc);
        s->nin = st->in.n > 2 ? 2 : st->in.n;
        for (int i = 0; i < s->nin; i++) s->in[i] = operand_buf(L, &st->in.v[i])->id;
        s->out = operand_buf(L, &st->out)->id;
        s->rop = st->rop;
        break;
    }
    }
    L->env.n = env_n;
    L->nidx = 0;
}

/* READ/WRITTEN from what the stages do, plus sema's operand use. */
static void mark_access(IrKernel *k, const IrBlock *b)
{
    for (int i = 0; i < b->ins.n; i++) {
        const IrInst *in = &k->insts.v[b->ins.v[i]];
        if (in->op == IR_LOAD) k->params.v[in->param].flags |= IR_P_READ;
        if (in->op == IR_STORE) k->params.v[in->param].flags |= IR_P_WRITTEN;
        if (in->body) mark_access(k, in->body);
        if (in->els) mark_access(k, in->els);
    }
}

static void lower_kernel(Lower *L, Kernel *ka)
{
    IrKernel *k = L->k;
    k->cls = ka->cls;
    k->deadline_ns = ka->deadline_ns;
    if (k->deadline_ns) k->cls = CLASS_REALTIME; /* a deadline implies REALTIME */
    int next = L->sh ? L->sh->ext.n : 0;
    L->class_sym = fe_alloc(L->a, sizeof(int) * (size_t)(next + 1));
    for (int i = 0; i < next; i++) L->class_sym[i] = -1;
    for (int i = 0; i < ka->params.n; i++) {
        const Param *pa = &ka->params.v[i];
        const Sym *s = pa->sym;
        IrParam p;
        memset(&p, 0, sizeof p);
        p.name = pa->name;
        p.loc = pa->loc;
        p.type = s ? s->type : pa->type.elem;
        p.is_buffer = s ? s->kind == SYM_BUFFER : pa->type.is_buffer;
        if (pa->implicit) p.flags |= IR_P_IMPLICIT;
        if (p.is_buffer) {
            if (p.type == TY_VOID) p.type = TY_FLOAT;
            p.rank = s && s->rank >= 1 && s->rank <= 4 ? s->rank : 1;
            if (s && s->flex) p.flags |= IR_P_FLEX;
            if (s && s->read) p.flags |= IR_P_READ;
            if (s && s->written) p.flags |= IR_P_WRITTEN;
            for (int d = 0; d < p.rank; d++) {
                IrSize *z = s && s->rank >= 1 ? extent_size(L, s->ext[d]) : NULL;
                if (!z) z = ir_size_sym(L->a, sym_by_name(L, fe_sprintf(L->a, "%s.%d", pa->name, d), 1, pa->loc));
                p.dims[d] = z;
            }
        }
        ir_param_add(k, L->a, &p);
    }
    for (int i = 0; i < ka->body.n; i++) {
        const Stmt *st = ka->body.v[i];
        if (st->kind != ST_PARALLEL) fe_die("lower: thread code outside PARALLEL_FOR");
        lower_parallel(L, st);
    }
    for (int i = 0; i < k->stages.n; i++) {
        IrStage *s = &k->stages.v[i];
        if (s->kind == IR_STAGE_GRID) {
            mark_access(k, s->body);
            continue;
        }
        for (int j = 0; j < s->nin; j++) k->params.v[s->in[j]].flags |= IR_P_READ;
        k->params.v[s->out].flags |= IR_P_WRITTEN;
    }
}

IrModule *ir_lower(Arena *a, Diags *d, Program *p, const char *only)
{
    IrModule *m = ir_module_new(a, d ? d->file : NULL);
    int found = 0;
    for (int i = 0; i < p->kernels.n; i++) {
        Kernel *ka = p->kernels.v[i];
        if (only && strcmp(ka->name, only) != 0) continue;
        found = 1;
        Lower L;
        memset(&L, 0, sizeof L);
        L.a = a;
        L.d = d;
        L.kast = ka;
        L.sh = ka->shapes;
        L.k = ir_kernel_new(m, ka->name, ka->loc);
        L.b.arena = a;
        L.b.k = L.k;
        lower_kernel(&L, ka);
    }
    if (only && !found) {
        Loc none = {0, 0, 0, 0};
        fe_error(d, none, "no kernel named '%s' in this file", only);
        return NULL;
    }
    return m;
}
