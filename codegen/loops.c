/*
 * loops.c — upper bounds on the loop back-edges one invocation of a
 * dispatch executes (CgDispatch.loop_iters), for drivers that cap them
 * (Mesa lavapipe: one 65535 budget per invocation for all loops; see
 * docs/RUNTIME.md, "Loop limits").
 *
 * Counting model, measured on lavapipe 22.3: a SIMD vector of lanes runs a
 * loop until every lane has left it, and every pass through the loop's end
 * costs one unit, the last pass (where the lanes leave) included. So a loop
 * entered once and running t iterations costs t + 1, plus t times what its
 * body costs; both arms of an IF may run (lanes diverge), so an IF costs
 * the sum of its arms. All formulas here are upper bounds under that model.
 */
#include "cg.h"

#include <math.h>

/* x op y for op ADD or MUL; ir_size_bin folds constants with wrapping, so
 * constant operands (nested constant trip counts can pass 2^63) are folded
 * here instead, saturating at INT64_MAX (bounds are never negative). */
static IrSize *sat(Arena *a, IrSizeOp op, IrSize *x, IrSize *y) {
    int64_t cx, cy, r;
    if (ir_size_is_const(x, &cx) && ir_size_is_const(y, &cy) && cx >= 0 && cy >= 0) {
        int ovf = op == SZ_MUL ? __builtin_mul_overflow(cx, cy, &r) : __builtin_add_overflow(cx, cy, &r);
        return ir_size_const(a, ovf ? INT64_MAX : r);
    }
    return ir_size_bin(a, op, x, y);
}

IrSize *cg_loops_for(Arena *a, IrSize *trips, IrSize *body) {
    IrSize *one = ir_size_const(a, 1);
    IrSize *per = body ? sat(a, SZ_ADD, one, body) : one;
    return sat(a, SZ_ADD, sat(a, SZ_MUL, trips, per), one);
}

IrSize *cg_loops_strided(Arena *a, IrSize *extent, IrSize *groups, int per_group) {
    IrSize *stride = ir_size_bin(a, SZ_MUL, groups, ir_size_const(a, per_group));
    return ir_size_bin(a, SZ_CEILDIV, extent, stride);
}

IrSize *cg_loops_sum(Arena *a, IrSize *x, IrSize *y) {
    if (!x) return y;
    if (!y) return x;
    return sat(a, SZ_ADD, x, y);
}

IrSize *cg_loops_group_fold(Arena *a, const CgTarget *t, int group) {
    if (!t->subgroups) return ir_size_const(a, 0);
    /* NumSubgroups <= ceil(group / subgroup size); unknown size: 1 lane */
    int sgs = t->subgroup_size > 0 ? t->subgroup_size : 1;
    return ir_size_const(a, (group + sgs - 1) / sgs + 1);
}

/* Sum of terms[lo, hi) as a balanced tree, so a block of many sequential
 * loops gives a formula of logarithmic depth (printers and evaluators
 * recurse over it). */
static IrSize *sum_range(Arena *a, IrSize **terms, int lo, int hi) {
    if (hi - lo == 0) return ir_size_const(a, 0);
    if (hi - lo == 1) return terms[lo];
    int mid = lo + (hi - lo) / 2;
    return sat(a, SZ_ADD, sum_range(a, terms, lo, mid), sum_range(a, terms, mid, hi));
}

/* Recursion depth is the IR's nesting depth, which the front end bounds. */
static IrSize *block_iters(Arena *a, const IrKernel *k, const IrBlock *b, int depth) {
    if (depth > 10000) fe_die("loops: nesting too deep");
    FE_VEC(IrSize *) terms = {0};
    for (int i = 0; b && i < b->ins.n; i++) {
        const IrInst *in = &k->insts.v[b->ins.v[i]];
        if (in->op == IR_FOR) {
            if (!in->trip) fe_die("loops: FOR %%%d without a trip-count formula", b->ins.v[i]);
            /* the trip formula is max(hi - lo, 0): never negative */
            IrSize *body = block_iters(a, k, in->body, depth + 1);
            FE_PUSH(a, terms, cg_loops_for(a, in->trip, body));
        } else if (in->op == IR_IF) {
            IrSize *t = block_iters(a, k, in->body, depth + 1);
            IrSize *e = block_iters(a, k, in->els, depth + 1);
            if (!ir_size_is_const(t, NULL) || t->c) FE_PUSH(a, terms, t);
            if (!ir_size_is_const(e, NULL) || e->c) FE_PUSH(a, terms, e);
        }
    }
    return sum_range(a, terms.v, 0, terms.n);
}

IrSize *cg_loops_block(Arena *a, const IrKernel *k, const IrBlock *b) {
    return block_iters(a, k, b, 0);
}

void cg_dispatch_set_loops(CgLaunch *l, IrSize *iters) {
    FE_ASSERT(l->dispatches.n > 0 && iters);
    l->dispatches.v[l->dispatches.n - 1].loop_iters = iters;
}

/* Exact below 2^64 (long double has a 64-bit mantissa); beyond that only
 * the magnitude matters, and HUGE_VALL saturates instead of wrapping. */
static long double eval_ld(const IrSize *s, const int64_t *syms, const int64_t *params, int depth) {
    if (depth > 20000) return HUGE_VALL;
    switch (s->op) {
    case SZ_CONST: return (long double)s->c;
    case SZ_SYM: return (long double)syms[s->sym];
    case SZ_PARAM: return (long double)params[s->sym];
    default: break;
    }
    long double x = eval_ld(s->a, syms, params, depth + 1), y = eval_ld(s->b, syms, params, depth + 1);
    switch (s->op) {
    case SZ_ADD: return x + y;
    case SZ_SUB: return x - y;
    case SZ_MUL: return (x == 0 || y == 0) ? 0 : x * y;
    case SZ_DIV: return y == 0 ? 0 : truncl(x / y);
    case SZ_REM: return y == 0 || isinf(x) || isinf(y) ? 0 : fmodl(x, y);
    case SZ_CEILDIV: return y == 0 ? 0 : ceill(x / y);
    case SZ_MIN: return x < y ? x : y;
    case SZ_MAX: return x > y ? x : y;
    default: break;
    }
    fe_unreachable();
}

int64_t cg_loops_eval(const IrSize *s, const int64_t *syms, const int64_t *params) {
    if (!s) return 0;
    long double v = eval_ld(s, syms, params, 0);
    if (v != v) return INT64_MAX; /* inf - inf: something overflowed */
    if (v <= 0) return 0;
    if (v >= 9.2e18L) return INT64_MAX;
    return (int64_t)v;
}

/* Every entry point of a grid stage is a grid-stride walk (spirv_grid.c):
 * strategy grid, one loop per index dimension, component c (x, y, z)
 * walking dimension rank-1-c with stride groups[c] * local[c], x the
 * innermost; elementwise, one loop over the linearised space with stride
 * groups[0] * local[0] (a vec4 variant walks a quarter as many steps, so
 * this bounds it too). The body runs once per step. */
void cg_loops_grid_stage(Arena *a, const IrKernel *k, int stage, CgLaunch *l, int first) {
    const IrStage *st = &k->stages.v[stage];
    FE_ASSERT(st->kind == IR_STAGE_GRID && st->rank >= 1 && st->rank <= 3);
    IrSize *body = cg_loops_block(a, k, st->body);
    IrSize *ext[3], *total = NULL;
    for (int d = 0; d < st->rank; d++) {
        ext[d] = ir_size_bin(a, SZ_MAX, ir_size_bin(a, SZ_SUB, st->hi[d], st->lo[d]),
                             ir_size_const(a, 0));
        total = d ? ir_size_bin(a, SZ_MUL, total, ext[d]) : ext[d];
    }
    for (int i = first; i < l->dispatches.n; i++) {
        CgDispatch *cd = &l->dispatches.v[i];
        if (cd->loop_iters || cd->stage != stage) continue;
        IrSize *it = body;
        if (st->strategy == IR_STRAT_GRID)
            for (int c = 0; c < st->rank; c++)
                it = cg_loops_for(a, cg_loops_strided(a, ext[st->rank - 1 - c], cd->groups[c],
                                                      cd->local[c]), it);
        else
            it = cg_loops_for(a, cg_loops_strided(a, total, cd->groups[0], cd->local[0]), it);
        cd->loop_iters = it;
    }
}
