/*
 * spirv_grid.c — GRID stages (MAP/ADD../FILL/COPY after fusion, and
 * PARALLEL_FOR): the index-space walk and the SSA body with structured
 * control flow, with PX semantics (contract sections 4 and 5).
 *
 * Index space -> invocations:
 *  - elementwise strategy: the space is linearised (row-major) and walked
 *    by a 1-D grid-stride loop; local size sp[0] (default 256), group count
 *    min(ceildiv(total, sp[0]*sp[1]), max_groups) so each invocation handles
 *    about sp[1] (default 4) points. Rank-1 bodies that access memory only
 *    at the index also get a vec4 variant (entry "map4", sp[1] vec4s per
 *    invocation; see elem4_ok), run instead when N % 4 == 0.
 *  - grid strategy: index dimension rank-1 (the innermost, contiguous one)
 *    maps to x, rank-2 to y, rank-3 to z; local size sp[0], sp[1], sp[2]
 *    for x, y, z; one grid-stride loop per dimension, group counts
 *    min(ceildiv(extent, local), max_groups).
 * Extents are max(hi - lo, 0) in signed 32-bit arithmetic.
 */
#include "spirv_int.h"

typedef struct Gx {
    Sb *s;
    const IrKernel *k;
    uint32_t *val;     /* IR value id -> SPIR-V id */
    uint32_t **vars;   /* IF/FOR instruction id -> Function variables of its results */
    int **res;         /* IF instruction id -> its RESULT ids in order */
    int depth;
} Gx;

/* Sb.grid: the kernel's tables. Entries are written only for the
 * instructions of the stage being emitted and read only for its values
 * (SSA within a stage), so they need no clearing between stages. */
typedef struct SbGridScratch {
    const IrKernel *k;
    uint32_t *val, **vars;
    int **res;          /* IF -> its RESULT ids, for the whole kernel */
    char *uni;          /* elemwise4_entry: value is lane-uniform */
    uint32_t *lane[4];  /* elemwise4_entry: each lane's values */
} SbGridScratch;

static SbGridScratch *grid_scratch(Sb *s, const IrKernel *k)
{
    if (s->grid && s->grid->k == k) return s->grid;
    SbGridScratch *x = fe_alloc(s->a, sizeof *x);
    size_t n = (size_t)k->insts.n + 1;
    x->k = k;
    x->val = fe_alloc(s->a, sizeof(uint32_t) * n);
    x->vars = fe_alloc(s->a, sizeof(uint32_t *) * n);
    x->res = fe_alloc(s->a, sizeof(int *) * n);
    for (int i = 0; i < k->insts.n; i++) {
        const IrInst *r = &k->insts.v[i];
        if (r->op != IR_RESULT || r->a.n < 1) continue;
        int op = r->a.v[0];
        const IrInst *p = ir_inst((IrKernel *)k, op);
        if (p->op != IR_IF || r->imm.i < 0 || r->imm.i >= p->nres) continue;
        if (!x->res[op]) {
            x->res[op] = fe_alloc(s->a, sizeof(int) * (size_t)p->nres);
            for (int j = 0; j < p->nres; j++) x->res[op][j] = -1;
        }
        x->res[op][r->imm.i] = i;
    }
    s->grid = x;
    return x;
}

static void gen_block(Gx *g, const IrBlock *b, const uint32_t *yield_vars);

static uint32_t ty(Gx *g, ScalarType t) { return sb_scalar(g->s, t); }
static int is_float(ScalarType t) { return t == TY_FLOAT || t == TY_HALF; }
static uint32_t to_u32(Gx *g, ScalarType t, uint32_t v) {
    return t == TY_UINT ? v : SB_OP(g->s, SpvOpBitcast, g->s->t_u32, v);
}

/* The in-range condition and flat offset of a buffer access. */
static uint32_t access(Gx *g, const IrInst *in, uint32_t *cond) {
    Sb *s = g->s;
    const IrParam *p = &g->k->params.v[in->param];
    uint32_t flat = 0, ok = 0;
    for (int d = 0; d < p->rank; d++) {
        const IrInst *ix = ir_inst((IrKernel *)g->k, in->a.v[d]);
        uint32_t i = to_u32(g, ix->type, g->val[in->a.v[d]]);
        int checked = !(in->flags & IR_F_INBOUNDS);
        /* the outermost extent matters only to the check */
        uint32_t dim = (d > 0 || checked) ? sb_dim(s, in->param, d) : 0;
        if (checked) {
            uint32_t c = sb_ult(s, i, dim);
            ok = ok ? SB_OP(s, SpvOpLogicalAnd, s->t_bool, ok, c) : c;
        }
        flat = d ? sb_uadd(s, sb_umul(s, flat, dim), i) : i;
    }
    *cond = ok;
    return flat;
}

/* Integer / and % with PX semantics: x/0 = x%0 = 0, INT_MIN/-1 = INT_MIN,
 * INT_MIN%-1 = 0 (the divisor is replaced by 1 in both special cases). */
static uint32_t int_divrem(Gx *g, const IrInst *in, uint32_t a, uint32_t b) {
    Sb *s = g->s;
    uint32_t t = ty(g, in->type);
    int sgn = in->type == TY_INT;
    uint32_t zero = sb_const_typed(s, in->type, 0, 0), one = sb_const_typed(s, in->type, 0, 1);
    uint32_t isz = 0, bb = b;
    if (!(in->flags & IR_F_NONZERO)) {
        isz = SB_OP(s, SpvOpIEqual, s->t_bool, b, zero);
        bb = SB_OP(s, SpvOpSelect, t, isz, one, bb);
    }
    if (sgn) {
        uint32_t ovf = SB_OP(s, SpvOpLogicalAnd, s->t_bool,
                             SB_OP(s, SpvOpIEqual, s->t_bool, a, sb_const_i(s, INT32_MIN)),
                             SB_OP(s, SpvOpIEqual, s->t_bool, b, sb_const_i(s, -1)));
        bb = SB_OP(s, SpvOpSelect, t, ovf, one, bb);
    }
    SpvOp op = in->op == IR_DIV ? (sgn ? SpvOpSDiv : SpvOpUDiv) : (sgn ? SpvOpSRem : SpvOpUMod);
    uint32_t r = SB_OP(s, op, t, a, bb);
    if (isz) r = SB_OP(s, SpvOpSelect, t, isz, zero, r);
    return r;
}

static uint32_t gen_conv(Gx *g, ScalarType from, ScalarType to, uint32_t v) {
    Sb *s = g->s;
    uint32_t t = ty(g, to);
    if (from == to) return v;
    if (from == TY_BOOL)
        return SB_OP(s, SpvOpSelect, t, v, sb_const_typed(s, to, 1, 1), sb_const_typed(s, to, 0, 0));
    if (is_float(from) && is_float(to)) return SB_OP(s, SpvOpFConvert, t, v);
    if (is_float(from)) return SB_OP(s, to == TY_INT ? SpvOpConvertFToS : SpvOpConvertFToU, t, v);
    if (is_float(to)) return SB_OP(s, from == TY_INT ? SpvOpConvertSToF : SpvOpConvertUToF, t, v);
    if (to == TY_BOOL) return SB_OP(s, SpvOpINotEqual, t, v, sb_const_typed(s, from, 0, 0));
    return SB_OP(s, SpvOpBitcast, t, v); /* int <-> uint keep the bits */
}

static uint32_t gen_minmax(Gx *g, ScalarType t, int is_max, uint32_t a, uint32_t b) {
    enum GLSLstd450 f = is_float(t) ? (is_max ? GLSLstd450FMax : GLSLstd450FMin)
                        : t == TY_INT ? (is_max ? GLSLstd450SMax : GLSLstd450SMin)
                                      : (is_max ? GLSLstd450UMax : GLSLstd450UMin);
    return SB_EXT(g->s, f, ty(g, t), a, b);
}

static uint32_t gen_call(Gx *g, const IrInst *in) {
    Sb *s = g->s;
    uint32_t t = ty(g, in->type);
    uint32_t a = in->a.n > 0 ? g->val[in->a.v[0]] : 0, b = in->a.n > 1 ? g->val[in->a.v[1]] : 0,
             c = in->a.n > 2 ? g->val[in->a.v[2]] : 0;
    ScalarType at = in->a.n > 0 ? ir_inst((IrKernel *)g->k, in->a.v[0])->type : in->type;
    switch ((FeBuiltin)in->param) {
    case BI_SQRT: return SB_EXT(s, GLSLstd450Sqrt, t, a);
    case BI_RSQRT: return SB_EXT(s, GLSLstd450InverseSqrt, t, a);
    case BI_EXP: return SB_EXT(s, GLSLstd450Exp, t, a);
    case BI_EXP2: return SB_EXT(s, GLSLstd450Exp2, t, a);
    case BI_LOG: return SB_EXT(s, GLSLstd450Log, t, a);
    case BI_LOG2: return SB_EXT(s, GLSLstd450Log2, t, a);
    case BI_SIN: return SB_EXT(s, GLSLstd450Sin, t, a);
    case BI_COS: return SB_EXT(s, GLSLstd450Cos, t, a);
    case BI_TAN: return SB_EXT(s, GLSLstd450Tan, t, a);
    case BI_TANH: return SB_EXT(s, GLSLstd450Tanh, t, a);
    case BI_POW: return SB_EXT(s, GLSLstd450Pow, t, a, b);
    case BI_ABS:
        if (is_float(in->type)) return SB_EXT(s, GLSLstd450FAbs, t, a);
        if (in->type == TY_INT) return SB_EXT(s, GLSLstd450SAbs, t, a); /* abs(INT_MIN) wraps */
        return a;
    case BI_MIN: return gen_minmax(g, in->type, 0, a, b);
    case BI_MAX: return gen_minmax(g, in->type, 1, a, b);
    case BI_CLAMP: return gen_minmax(g, in->type, 0, gen_minmax(g, in->type, 1, a, b), c);
    case BI_FMA: return SB_EXT(s, GLSLstd450Fma, t, a, b, c);
    case BI_FLOOR: return SB_EXT(s, GLSLstd450Floor, t, a);
    case BI_CEIL: return SB_EXT(s, GLSLstd450Ceil, t, a);
    case BI_ROUND: {
        /* half away from zero: x - trunc(x) is exact, so compare it with 0.5 */
        uint32_t tr = SB_EXT(s, GLSLstd450Trunc, t, a);
        uint32_t fr = SB_EXT(s, GLSLstd450FAbs, t, SB_OP(s, SpvOpFSub, t, a, tr));
        uint32_t up = SB_OP(s, SpvOpFOrdGreaterThanEqual, s->t_bool, fr,
                            sb_const_typed(s, in->type, 0.5, 0));
        uint32_t away = SB_OP(s, SpvOpFAdd, t, tr, SB_EXT(s, GLSLstd450FSign, t, a));
        return SB_OP(s, SpvOpSelect, t, up, away, tr);
    }
    case BI_MIX:
        return SB_OP(s, SpvOpFAdd, t, a, SB_OP(s, SpvOpFMul, t, SB_OP(s, SpvOpFSub, t, b, a), c));
    case BI_SELECT: return SB_OP(s, SpvOpSelect, t, a, b, c);
    case BI_FLOATCONV:
    case BI_INTCONV:
    case BI_UINTCONV:
    case BI_HALFCONV: return gen_conv(g, at, in->type, a);
    case BI_COUNT: break;
    }
    fe_die("spirv: unknown builtin %d", in->param);
}

static uint32_t gen_cmp(Gx *g, const IrInst *in, uint32_t a, uint32_t b) {
    ScalarType t = ir_inst((IrKernel *)g->k, in->a.v[0])->type;
    static const SpvOp fops[] = {SpvOpFOrdEqual, SpvOpFUnordNotEqual, SpvOpFOrdLessThan,
                                 SpvOpFOrdLessThanEqual, SpvOpFOrdGreaterThan,
                                 SpvOpFOrdGreaterThanEqual};
    static const SpvOp sops[] = {SpvOpIEqual, SpvOpINotEqual, SpvOpSLessThan,
                                 SpvOpSLessThanEqual, SpvOpSGreaterThan, SpvOpSGreaterThanEqual};
    static const SpvOp uops[] = {SpvOpIEqual, SpvOpINotEqual, SpvOpULessThan,
                                 SpvOpULessThanEqual, SpvOpUGreaterThan, SpvOpUGreaterThanEqual};
    int i = (int)in->op - (int)IR_EQ;
    SpvOp op;
    if (t == TY_BOOL) {
        if (i > 1) fe_die("spirv: ordered comparison of bool");
        op = i == 0 ? SpvOpLogicalEqual : SpvOpLogicalNotEqual;
    } else op = is_float(t) ? fops[i] : t == TY_INT ? sops[i] : uops[i];
    return SB_OP(g->s, op, g->s->t_bool, a, b);
}

static void gen_inst(Gx *g, int id, const uint32_t *yield_vars) {
    Sb *s = g->s;
    const IrInst *in = ir_inst((IrKernel *)g->k, id);
    uint32_t t = (in->type == TY_VOID) ? 0 : ty(g, in->type);
    uint32_t a = in->a.n > 0 && in->op != IR_RESULT ? g->val[in->a.v[0]] : 0;
    uint32_t b = in->a.n > 1 ? g->val[in->a.v[1]] : 0;
    int fl = is_float(in->type);
    uint32_t r = 0;
    switch (in->op) {
    case IR_CONST:
        r = sb_const_typed(s, in->type, in->imm.f,
                           in->type == TY_UINT ? (int64_t)in->imm.u : in->imm.i);
        break;
    case IR_PARAM: r = sb_param_value(s, in->param); break;
    case IR_SIZE: r = sb_sym_value(s, in->param); break;
    case IR_BARG: fe_die("spirv: block argument %d outside its block", id);
    case IR_RESULT: r = sb_load(s, t, g->vars[in->a.v[0]][in->imm.i]); break;
    case IR_NEG: r = SB_OP(s, fl ? SpvOpFNegate : SpvOpSNegate, t, a); break;
    case IR_NOT: r = SB_OP(s, SpvOpLogicalNot, t, a); break;
    case IR_BNOT: r = SB_OP(s, SpvOpNot, t, a); break;
    case IR_ADD: r = SB_OP(s, fl ? SpvOpFAdd : SpvOpIAdd, t, a, b); break;
    case IR_SUB: r = SB_OP(s, fl ? SpvOpFSub : SpvOpISub, t, a, b); break;
    case IR_MUL: r = SB_OP(s, fl ? SpvOpFMul : SpvOpIMul, t, a, b); break;
    case IR_DIV:
    case IR_REM:
        if (fl) r = SB_OP(s, in->op == IR_DIV ? SpvOpFDiv : SpvOpFRem, t, a, b);
        else r = int_divrem(g, in, a, b);
        break;
    case IR_AND:
    case IR_OR:
    case IR_XOR:
        if (in->type == TY_BOOL)
            r = SB_OP(s, in->op == IR_AND ? SpvOpLogicalAnd
                         : in->op == IR_OR ? SpvOpLogicalOr : SpvOpLogicalNotEqual, t, a, b);
        else
            r = SB_OP(s, in->op == IR_AND ? SpvOpBitwiseAnd
                         : in->op == IR_OR ? SpvOpBitwiseOr : SpvOpBitwiseXor, t, a, b);
        break;
    case IR_SHL:
    case IR_SHR: {
        ScalarType ct = ir_inst((IrKernel *)g->k, in->a.v[1])->type;
        uint32_t cnt = SB_OP(s, SpvOpBitwiseAnd, ty(g, ct), b, sb_const_typed(s, ct, 0, 31));
        SpvOp op = in->op == IR_SHL ? SpvOpShiftLeftLogical
                   : in->type == TY_INT ? SpvOpShiftRightArithmetic : SpvOpShiftRightLogical;
        r = SB_OP(s, op, t, a, cnt);
        break;
    }
    case IR_EQ: case IR_NE: case IR_LT: case IR_LE: case IR_GT: case IR_GE:
        r = gen_cmp(g, in, a, b);
        break;
    case IR_SELECT: r = SB_OP(s, SpvOpSelect, t, a, b, g->val[in->a.v[2]]); break;
    case IR_CONV: r = gen_conv(g, ir_inst((IrKernel *)g->k, in->a.v[0])->type, in->type, a); break;
    case IR_CALL: r = gen_call(g, in); break;
    case IR_LOAD: {
        int bd = sb_param_binding(s, in->param);
        uint32_t cond, flat = access(g, in, &cond);
        if (!cond) {
            r = sb_buf_load(s, bd, flat);
        } else {
            /* out of range reads 0: no load is issued at all */
            uint32_t tmp = sb_var(s, t);
            sb_store(s, tmp, sb_const_typed(s, in->type, 0, 0));
            SbIf f = sb_if_begin(s, cond, 0);
            sb_store(s, tmp, sb_buf_load(s, bd, flat));
            sb_if_end(s, &f);
            r = sb_load(s, t, tmp);
        }
        break;
    }
    case IR_STORE: {
        int bd = sb_param_binding(s, in->param);
        const IrParam *p = &g->k->params.v[in->param];
        uint32_t cond, flat = access(g, in, &cond);
        uint32_t v = g->val[in->a.v[p->rank]];
        if (!cond) sb_buf_store(s, bd, flat, v);
        else {
            SbIf f = sb_if_begin(s, cond, 0);
            sb_buf_store(s, bd, flat, v);
            sb_if_end(s, &f);
        }
        break;
    }
    case IR_IF: {
        uint32_t *vars = fe_alloc(s->a, sizeof(uint32_t) * (size_t)(in->nres + 1));
        for (int i = 0; i < in->nres; i++) {
            int rid = g->res[id] ? g->res[id][i] : -1;
            if (rid < 0) fe_die("spirv: result %d of if %%%d is missing", i, id);
            vars[i] = sb_var(s, ty(g, ir_inst((IrKernel *)g->k, rid)->type));
        }
        g->vars[id] = vars;
        int has_else = in->els && in->els->ins.n > 0;
        SbIf f = sb_if_begin(s, a, has_else);
        if (++g->depth > 10000) fe_die("spirv: nesting too deep");
        gen_block(g, in->body, vars);
        if (has_else) {
            sb_if_else(s, &f);
            gen_block(g, in->els, vars);
        }
        g->depth--;
        sb_if_end(s, &f);
        break;
    }
    case IR_FOR: {
        const IrInst *lo = ir_inst((IrKernel *)g->k, in->a.v[0]);
        ScalarType it = lo->type;
        uint32_t itt = ty(g, it);
        int nc = in->a.n - 2;
        uint32_t *vars = fe_alloc(s->a, sizeof(uint32_t) * (size_t)(nc + 1));
        for (int i = 0; i < nc; i++) {
            const IrInst *iv = ir_inst((IrKernel *)g->k, in->a.v[2 + i]);
            vars[i] = sb_var(s, ty(g, iv->type));
            sb_store(s, vars[i], g->val[in->a.v[2 + i]]);
        }
        g->vars[id] = vars;
        uint32_t ivar = sb_var(s, itt);
        sb_store(s, ivar, a);
        SbLoop l = sb_loop_begin(s);
        uint32_t iv = sb_load(s, itt, ivar);
        sb_loop_test(s, &l, SB_OP(s, it == TY_INT ? SpvOpSLessThan : SpvOpULessThan, s->t_bool,
                                   iv, b));
        const IrBlock *body = in->body;
        FE_ASSERT(body->args.n == nc + 1);
        g->val[body->args.v[0]] = iv;
        for (int i = 0; i < nc; i++)
            g->val[body->args.v[1 + i]] =
                sb_load(s, ty(g, ir_inst((IrKernel *)g->k, body->args.v[1 + i])->type), vars[i]);
        if (++g->depth > 10000) fe_die("spirv: nesting too deep");
        gen_block(g, body, vars);
        g->depth--;
        sb_loop_continue(s, &l);
        uint32_t cur = sb_load(s, itt, ivar);
        sb_store(s, ivar, SB_OP(s, SpvOpIAdd, itt, cur, sb_const_typed(s, it, 0, 1)));
        sb_loop_end(s, &l);
        break;
    }
    case IR_YIELD:
        if (yield_vars)
            for (int i = 0; i < in->a.n; i++) sb_store(s, yield_vars[i], g->val[in->a.v[i]]);
        break;
    case IR_OP_COUNT: fe_unreachable();
    }
    g->val[id] = r;
}

static void gen_block(Gx *g, const IrBlock *b, const uint32_t *yield_vars) {
    for (int i = 0; i < b->ins.n; i++) gen_inst(g, b->ins.v[i], yield_vars);
}

/* max(hi - lo, 0) on the device, u32 */
static uint32_t extent_dev(Sb *s, const IrStage *st, int d) {
    uint32_t hi = sb_size_u32(s, st->hi[d]), lo = sb_size_u32(s, st->lo[d]);
    uint32_t e = SB_OP(s, SpvOpISub, s->t_u32, hi, lo);
    return SB_EXT(s, GLSLstd450SMax, s->t_u32, e, sb_const_u(s, 0));
}

static IrSize *extent_host(Arena *a, const IrStage *st, int d) {
    return ir_size_bin(a, SZ_MAX, ir_size_bin(a, SZ_SUB, st->hi[d], st->lo[d]), ir_size_const(a, 0));
}

static IrSize *groups_host(Sb *s, IrSize *ext, int per_group) {
    Arena *a = s->a;
    return ir_size_bin(a, SZ_MIN, ir_size_bin(a, SZ_CEILDIV, ext, ir_size_const(a, per_group)),
                       ir_size_const(a, s->t->max_groups));
}

static void bind_index(Gx *g, const IrStage *st, int d, uint32_t t) {
    Sb *s = g->s;
    uint32_t v = sb_uadd(s, sb_size_u32(s, st->lo[d]), t);
    if (st->itype[d] == TY_INT) v = SB_OP(s, SpvOpBitcast, s->t_i32, v);
    g->val[st->body->args.v[d]] = v;
}

/* ---- vec4 variant of rank-1 elementwise stages ----
 *
 * A rank-1 elementwise stage over [0, N) whose body is straight-line code
 * and touches memory only at the iteration index (LOAD/STORE of rank-1
 * buffers of 32-bit elements indexed by the body's argument) can run four
 * consecutive iterations at once: one 16-byte load or store per access
 * through the binding's vec4 view, the rest of the body emitted once per
 * lane. Per instruction all four lanes are emitted together, so for each
 * element the accesses keep their order (a store then a load of the same
 * buffer still reads the stored value): element e is only ever touched by
 * iteration e. The variant runs when N and the extent of every checked
 * buffer are multiples of 4 (then a 4-run is all in or all out of range);
 * else the scalar variant runs (group-count factor sel / 1 - sel). */

static int is32(ScalarType t) { return t == TY_FLOAT || t == TY_INT || t == TY_UINT; }

static int elem4_ok(const IrKernel *k, const IrStage *st) {
    int64_t lo;
    if (st->rank != 1 || !ir_size_is_const(st->lo[0], &lo) || lo != 0) return 0;
    int arg = st->body->args.v[0], mem = 0;
    for (int i = 0; i < st->body->ins.n; i++) {
        const IrInst *in = ir_inst((IrKernel *)k, st->body->ins.v[i]);
        switch (in->op) {
        case IR_IF: case IR_FOR: case IR_RESULT: case IR_BARG: return 0;
        case IR_YIELD:
            if (in->a.n) return 0;
            break;
        case IR_LOAD: case IR_STORE: {
            const IrParam *p = &k->params.v[in->param];
            if (p->rank != 1 || !is32(p->type) || in->a.v[0] != arg) return 0;
            mem = 1;
            break;
        }
        default: break;
        }
    }
    return mem;
}

/* 1 when x % 4 == 0, else 0 */
static IrSize *div4(Arena *a, IrSize *x) {
    return ir_size_bin(a, SZ_SUB, ir_size_const(a, 1),
                       ir_size_bin(a, SZ_MIN, ir_size_bin(a, SZ_REM, x, ir_size_const(a, 4)),
                                   ir_size_const(a, 1)));
}

/* Host factor: 1 when the vec4 variant may run (see above), else 0. */
static IrSize *elem4_sel(Sb *s, const IrStage *st) {
    const IrKernel *k = s->k;
    IrSize *sel = div4(s->a, extent_host(s->a, st, 0));
    for (int i = 0; i < st->body->ins.n; i++) {
        const IrInst *in = ir_inst((IrKernel *)k, st->body->ins.v[i]);
        if ((in->op == IR_LOAD || in->op == IR_STORE) && !(in->flags & IR_F_INBOUNDS))
            sel = ir_size_bin(s->a, SZ_MUL, sel, div4(s->a, k->params.v[in->param].dims[0]));
    }
    return sel;
}

static void elemwise4_entry(Gx *g, int stage, IrSize *sel) {
    Sb *s = g->s;
    const IrKernel *k = g->k;
    const IrStage *st = &k->stages.v[stage];
    int L = st->sp[0] > 0 && st->sp[0] <= 1024 ? st->sp[0] : 256;
    int items = st->sp[1] > 0 ? st->sp[1] : 4; /* vec4s per invocation */
    int local[3] = {L, 1, 1};
    sb_fn_begin(s);
    uint32_t n4 = SB_OP(s, SpvOpShiftRightLogical, s->t_u32, extent_dev(s, st, 0), sb_const_u(s, 2));
    uint32_t start = sb_builtin_x(s, SpvBuiltInGlobalInvocationId, 0);
    uint32_t stride = sb_umul(s, sb_num_groups(s, 0),
                              sb_const_u(s, (uint32_t)L));
    SbFor f = sb_for_begin(s, start, n4, stride);
    uint32_t i4 = f.iv, base = SB_OP(s, SpvOpShiftLeftLogical, s->t_u32, i4, sb_const_u(s, 2));
    uint32_t *lane[4], *scalar = g->val;
    SbGridScratch *gs = grid_scratch(s, k);
    if (!gs->uni) {
        gs->uni = fe_alloc(s->a, (size_t)k->insts.n + 1);
        for (int c = 0; c < 4; c++) gs->lane[c] = fe_alloc(s->a, sizeof(uint32_t) * (size_t)(k->insts.n + 1));
    }
    char *uni = gs->uni; /* set per instruction below; 0 for the index arg (never set) */
    /* the lanes' index values, only when the body computes with the index
     * (accesses use i4 directly) */
    int arg = st->body->args.v[0], idx_used = 0;
    for (int i = 0; i < st->body->ins.n; i++) {
        const IrInst *in = ir_inst((IrKernel *)k, st->body->ins.v[i]);
        int first = in->op == IR_LOAD || in->op == IR_STORE; /* a.v[0] is the access index */
        for (int j = first; j < in->a.n; j++) idx_used |= in->a.v[j] == arg;
    }
    for (int c = 0; c < 4; c++) {
        lane[c] = gs->lane[c];
        g->val = lane[c];
        if (idx_used) bind_index(g, st, 0, sb_uadd(s, base, sb_const_u(s, (uint32_t)c)));
    }
    for (int i = 0; i < st->body->ins.n; i++) {
        int id = st->body->ins.v[i];
        const IrInst *in = ir_inst((IrKernel *)k, id);
        if (in->op != IR_LOAD && in->op != IR_STORE) {
            /* a value computed from params, sizes and constants only is
             * the same in every lane: emitted once */
            int u = 1;
            for (int j = 0; j < in->a.n; j++) u &= uni[in->a.v[j]];
            uni[id] = (char)u;
            for (int c = 0; c < (u ? 1 : 4); c++) {
                g->val = lane[c];
                gen_inst(g, id, NULL);
            }
            for (int c = 1; u && c < 4; c++) lane[c][id] = lane[0][id];
            continue;
        }
        int bd = sb_param_binding(s, in->param);
        uint32_t et = s->buf_elem[bd], vt = sb_vec4(s, et);
        /* 4*i4 < dim: the whole run is in range (dim % 4 == 0, see sel) */
        uint32_t cond = in->flags & IR_F_INBOUNDS ? 0 : sb_ult(s, base, sb_dim(s, in->param, 0));
        if (in->op == IR_LOAD) {
            uint32_t v;
            if (!cond) {
                v = sb_buf4_load(s, bd, i4);
            } else {
                uint32_t z = sb_const_typed(s, in->type, 0, 0), tmp = sb_var(s, vt);
                sb_store(s, tmp, SB_OP(s, SpvOpCompositeConstruct, vt, z, z, z, z));
                SbIf fi = sb_if_begin(s, cond, 0);
                sb_store(s, tmp, sb_buf4_load(s, bd, i4));
                sb_if_end(s, &fi);
                v = sb_load(s, vt, tmp);
            }
            for (int c = 0; c < 4; c++)
                lane[c][id] = SB_OP(s, SpvOpCompositeExtract, et, v, (uint32_t)c);
        } else {
            int vi = in->a.v[1];
            uint32_t v = SB_OP(s, SpvOpCompositeConstruct, vt, lane[0][vi], lane[1][vi],
                               lane[2][vi], lane[3][vi]);
            if (!cond) sb_buf4_store(s, bd, i4, v);
            else {
                SbIf fi = sb_if_begin(s, cond, 0);
                sb_buf4_store(s, bd, i4, v);
                sb_if_end(s, &fi);
            }
        }
    }
    g->val = scalar;
    sb_for_end(s, &f);
    const char *name = sb_entry_name(s, stage, "map4");
    sb_fn_end_entry(s, name, local);
    IrSize *gx = ir_size_bin(s->a, SZ_MUL, groups_host(s, extent_host(s->a, st, 0), 4 * L * items), sel);
    sb_add_dispatch(s, name, stage, local, gx, ir_size_const(s->a, 1), ir_size_const(s->a, 1));
    s->launch->dispatches.v[s->launch->dispatches.n - 1].vec_width = 4;
}

void cg_spirv_grid_stage(Sb *s, int stage) {
    const IrKernel *k = s->k;
    const IrStage *st = &k->stages.v[stage];
    FE_ASSERT(st->rank >= 1 && st->rank <= 3 && st->body && st->body->args.n == st->rank);
    SbGridScratch *gs = grid_scratch(s, k);
    Gx g = {s, k, gs->val, gs->vars, gs->res, 0};
    int local[3] = {1, 1, 1};
    IrSize *gr[3];
    if (st->strategy == IR_STRAT_GRID) {
        sb_fn_begin(s);
        static const int defaults[3][3] = {{256, 1, 1}, {16, 16, 1}, {8, 8, 4}};
        for (int c = 0; c < 3; c++) {
            int v = st->sp[c] > 0 ? st->sp[c] : defaults[st->rank - 1][c];
            local[c] = c < st->rank ? v : 1;
        }
        if (local[0] * local[1] * local[2] > 1024)
            for (int c = 0; c < 3; c++) local[c] = defaults[st->rank - 1][c];
        /* component c walks index dimension rank-1-c */
        SbFor loops[3];
        for (int c = st->rank - 1; c >= 0; c--) {
            int d = st->rank - 1 - c;
            uint32_t ext = extent_dev(s, st, d);
            uint32_t start = sb_builtin_x(s, SpvBuiltInGlobalInvocationId, c);
            uint32_t stride = sb_umul(s, sb_num_groups(s, c),
                                      sb_const_u(s, (uint32_t)local[c]));
            loops[c] = sb_for_begin(s, start, ext, stride);
            bind_index(&g, st, d, loops[c].iv);
        }
        gen_block(&g, st->body, NULL);
        for (int c = 0; c < st->rank; c++) sb_for_end(s, &loops[c]);
        for (int c = 0; c < 3; c++)
            gr[c] = c < st->rank ? groups_host(s, extent_host(s->a, st, st->rank - 1 - c), local[c])
                                 : ir_size_const(s->a, 1);
    } else {
        int v4 = elem4_ok(k, st);
        IrSize *sel = v4 ? elem4_sel(s, st) : NULL;
        if (v4) elemwise4_entry(&g, stage, sel);
        /* scalar: the only variant, or the alternative when sel is 0 */
        sb_fn_begin(s);
        int L = st->sp[0] > 0 && st->sp[0] <= 1024 ? st->sp[0] : 256;
        int items = st->sp[1] > 0 ? st->sp[1] : 4;
        local[0] = L;
        uint32_t ext[3], total = 0;
        IrSize *total_h = NULL;
        for (int d = 0; d < st->rank; d++) {
            ext[d] = extent_dev(s, st, d);
            total = d ? sb_umul(s, total, ext[d]) : ext[d];
            IrSize *e = extent_host(s->a, st, d);
            total_h = d ? ir_size_bin(s->a, SZ_MUL, total_h, e) : e;
        }
        uint32_t start = sb_builtin_x(s, SpvBuiltInGlobalInvocationId, 0);
        uint32_t stride = sb_umul(s, sb_num_groups(s, 0),
                                  sb_const_u(s, (uint32_t)L));
        SbFor f = sb_for_begin(s, start, total, stride);
        uint32_t rest = f.iv;
        for (int d = st->rank - 1; d >= 0; d--) {
            if (d == 0) {
                bind_index(&g, st, d, rest);
                break;
            }
            uint32_t q = SB_OP(s, SpvOpUDiv, s->t_u32, rest, ext[d]); /* ext > 0 inside the loop */
            uint32_t i = SB_OP(s, SpvOpISub, s->t_u32, rest, sb_umul(s, q, ext[d]));
            bind_index(&g, st, d, i);
            rest = q;
        }
        gen_block(&g, st->body, NULL);
        sb_for_end(s, &f);
        gr[0] = groups_host(s, total_h, L * items);
        gr[1] = gr[2] = ir_size_const(s->a, 1);
        const char *name = sb_entry_name(s, stage, "map");
        sb_fn_end_entry(s, name, local);
        if (v4) {
            gr[0] = ir_size_bin(s->a, SZ_MUL, gr[0],
                                ir_size_bin(s->a, SZ_SUB, ir_size_const(s->a, 1), sel));
            sb_add_dispatch_alt(s, name, stage, local, gr[0], gr[1], gr[2]);
        } else {
            sb_add_dispatch(s, name, stage, local, gr[0], gr[1], gr[2]);
        }
        return;
    }
    const char *name = sb_entry_name(s, stage, "grid");
    sb_fn_end_entry(s, name, local);
    sb_add_dispatch(s, name, stage, local, gr[0], gr[1], gr[2]);
}
