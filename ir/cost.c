/* cost.c — static cost analysis and workload class. docs/COST.md is the
 * user-facing definition of every figure; this file implements exactly
 * that text (printing: cost_print.c; prediction from a device profile:
 * predict.c).
 *
 * What is analysed: the kernel as lowered (before ir_optimize), so that
 * operation counts and bytes do not depend on -O; only dispatches follow
 * the optimised kernel (fusion). Within a stage:
 *  - an instruction counts when it is live (its value can reach a STORE)
 *    and not a compile-time constant (all operands literals, recursively);
 *  - FOR bodies count trip-count times; IF counts the costlier side of
 *    each metric (coefficient-wise maximum, an upper bound);
 *  - bytes are distinct-element footprints (see access_footprint);
 *  - accesses count every live LOAD and STORE executed, like operations,
 *    and checked those without IR_F_INBOUNDS: the analysed kernel has been
 *    through ir_pass_bounds (ir_cost_lowered), which only sets flags. */
#include "ir.h"

#include <math.h>
#include <stdlib.h>

const char *const ir_cost_metric_names[IR_COST_N] = {
#define X(e, s) s,
    IR_COST_METRICS(X)
#undef X
};

/* ---- what one instruction costs ------------------------------------------ */

/* Whose type decides the domain (float/half: flops, else intops). */
enum { DOM_NONE, DOM_RESULT, DOM_OPERAND };

typedef struct OpCost {
    unsigned char weight, domain;
} OpCost;

/* Unlisted ops cost nothing: constants, params, block structure, and the
 * memory ops (which are bytes, and accesses: count_block). */
static const OpCost op_cost[IR_OP_COUNT] = {
    [IR_NEG] = {1, DOM_RESULT},     /* a negation is one operation */
    [IR_NOT] = {1, DOM_RESULT},     /* bool: intops */
    [IR_BNOT] = {1, DOM_RESULT},
    [IR_ADD] = {1, DOM_RESULT},
    [IR_SUB] = {1, DOM_RESULT},
    [IR_MUL] = {1, DOM_RESULT},
    [IR_DIV] = {1, DOM_RESULT},
    [IR_REM] = {1, DOM_RESULT},     /* float % (fmod) counts 1 like divide */
    [IR_AND] = {1, DOM_RESULT},
    [IR_OR] = {1, DOM_RESULT},
    [IR_XOR] = {1, DOM_RESULT},
    [IR_SHL] = {1, DOM_RESULT},
    [IR_SHR] = {1, DOM_RESULT},
    [IR_EQ] = {1, DOM_OPERAND},     /* compares: domain of what is compared */
    [IR_NE] = {1, DOM_OPERAND},
    [IR_LT] = {1, DOM_OPERAND},
    [IR_LE] = {1, DOM_OPERAND},
    [IR_GT] = {1, DOM_OPERAND},
    [IR_GE] = {1, DOM_OPERAND},
    [IR_SELECT] = {1, DOM_RESULT},  /* `c ? a : b`: one operation of a's type */
    [IR_CONV] = {1, DOM_RESULT},    /* float(i) is a flop, int(f) an intop */
    [IR_CALL] = {1, DOM_RESULT},    /* weight from builtin_cost */
};

/* Operations per call of each builtin, in the domain of its result. */
static const unsigned char builtin_cost[BI_COUNT] = {
    [BI_SQRT] = 1,      /* each elementary function counts 1 */
    [BI_RSQRT] = 1,
    [BI_EXP] = 1,
    [BI_EXP2] = 1,
    [BI_LOG] = 1,
    [BI_LOG2] = 1,
    [BI_SIN] = 1,
    [BI_COS] = 1,
    [BI_TAN] = 1,
    [BI_TANH] = 1,
    [BI_POW] = 1,
    [BI_ABS] = 1,
    [BI_MIN] = 1,       /* one compare-and-pick */
    [BI_MAX] = 1,
    [BI_CLAMP] = 2,     /* min(max(x, lo), hi) */
    [BI_FMA] = 2,       /* a multiply and an add */
    [BI_FLOOR] = 1,
    [BI_CEIL] = 1,
    [BI_ROUND] = 1,
    [BI_MIX] = 3,       /* a + (b - a) * t */
    [BI_SELECT] = 1,    /* as `? :` */
    [BI_FLOATCONV] = 1, /* conversions as IR_CONV */
    [BI_INTCONV] = 1,
    [BI_UINTCONV] = 1,
    [BI_HALFCONV] = 1,
};

static int is_float(ScalarType t) { return t == TY_FLOAT || t == TY_HALF; }
static int elem_size(ScalarType t) { return t == TY_HALF ? 2 : 4; }

/* ---- dispatches per strategy -------------------------------------------- */

/* Must agree with the entry points codegen/spirv*.c emits per stage. */
#define COST_STRATEGY_DISPATCHES(X)                                          \
    X(IR_STRAT_ELEMWISE, 1)        /* one grid-stride pass */                 \
    X(IR_STRAT_GRID, 1)            /* one pass over the index space */        \
    X(IR_STRAT_MATMUL_TILED, 1)    /* one tiled pass */                       \
    X(IR_STRAT_REDUCE_TREE, 2)     /* partials, then the final combine */     \
    X(IR_STRAT_REDUCE_ROWS, 1)     /* one group per row */                    \
    X(IR_STRAT_SCAN_3PASS, 3)      /* reduce, scan partials, propagate */     \
    X(IR_STRAT_SOFTMAX_ROW, 1)     /* one group per row */                    \
    X(IR_STRAT_TRANSPOSE_TILED, 1) /* one tiled pass */                       \
    X(IR_STRAT_TRANSPOSE_BLOCK, 1) /* one pass, 4x4 blocks or elements */

static int strategy_dispatches(IrStrategy s)
{
    switch (s) {
#define X(e, n) \
    case e: return n;
        COST_STRATEGY_DISPATCHES(X)
#undef X
    default: return -1;
    }
}

/* The strategy ir_pass_strategy gives a stage by default. */
static IrStrategy default_strategy(const IrKernel *k, const IrStage *st)
{
    switch (st->kind) {
    case IR_STAGE_GRID: return st->elementwise ? IR_STRAT_ELEMWISE : IR_STRAT_GRID;
    case IR_STAGE_MATMUL: return IR_STRAT_MATMUL_TILED;
    case IR_STAGE_REDUCE:
        return (st->nin > 0 && st->in[0] >= 0 && k->params.v[st->in[0]].rank >= 2)
                   ? IR_STRAT_REDUCE_ROWS
                   : IR_STRAT_REDUCE_TREE;
    case IR_STAGE_SCAN: return IR_STRAT_SCAN_3PASS;
    case IR_STAGE_SOFTMAX: return IR_STRAT_SOFTMAX_ROW;
    case IR_STAGE_TRANSPOSE: return IR_STRAT_TRANSPOSE_BLOCK;
    }
    fe_unreachable();
}

const char *const ir_lib_class_names[IR_LIB_N] = {
#define X(e, n) n,
    IR_LIB_CLASSES(X)
#undef X
};

/* How a stage runs, for the library terms of the prediction. */
static IrLibClass lib_class(const IrKernel *k, const IrStage *st)
{
    int rows = st->nin > 0 && st->in[0] >= 0 && k->params.v[st->in[0]].rank >= 2;
    switch (st->kind) {
    /* Thread code stays on the plain roofline. One calibrated slowdown for
     * all of it (from a stencil micro-kernel) was tried twice: it fixes
     * stencils (blur: 10x the roofline on lavapipe, bounds-checked loads
     * the operation counts do not see) but over-predicts mat-vec loops and
     * maps with conversions 2-4x, so the benchmark's p90 error doubled and
     * its median moved from run to run. What would fix it is a count of
     * loads, which the metrics do not have yet. */
    case IR_STAGE_GRID: return IR_LIB_NONE;
    case IR_STAGE_MATMUL: return IR_LIB_MATMUL;
    case IR_STAGE_REDUCE: return rows ? IR_LIB_REDUCE_ROWS : IR_LIB_REDUCE;
    case IR_STAGE_SCAN: return rows ? IR_LIB_SCAN_ROWS : IR_LIB_SCAN;
    case IR_STAGE_SOFTMAX: return IR_LIB_SOFTMAX;
    case IR_STAGE_TRANSPOSE: return IR_LIB_TRANSPOSE;
    }
    fe_unreachable();
}

int ir_stage_dispatches(const IrKernel *k, const IrStage *st)
{
    IrStrategy s = st->strategy == IR_STRAT_NONE ? default_strategy(k, st) : st->strategy;
    /* the backend folds a multi-dimensional input row by row in one pass,
     * whatever the strategy says */
    if (s == IR_STRAT_REDUCE_TREE && st->nin > 0 && st->in[0] >= 0 && k->params.v[st->in[0]].rank >= 2)
        s = IR_STRAT_REDUCE_ROWS;
    int n = strategy_dispatches(s);
    FE_ASSERT(n >= 0);
    return n;
}

/* ---- the analysis of one stage ------------------------------------------- */

/* Per-instruction scratch of one kernel, allocated once and shared by its
 * stages: a stage sets entries of its own instructions only and puts them
 * back before the next (cost_stage_reset), so a kernel of S stages and N
 * instructions costs O(N) here, not O(S * N). */
typedef struct CostScratch {
    int *parent, *carried_for, *var; /* -1 when unset */
    int *loc;                        /* row in CostCx.deps; -1 when unset */
    int *slot;                       /* per param: -1 when unset */
    unsigned char *live, *isconst;   /* 0 when unset */
} CostScratch;

typedef struct CostCx {
    Arena *a;
    IrAtoms *at;
    const IrKernel *k;
    const IrStage *st;
    FE_VEC(int) order;      /* every instruction of the stage, program order */
    FE_VEC(int) bargs;      /* every block argument of the stage */
    int *loc;               /* per inst: its row in deps (order, then bargs) */
    int *slot;              /* per param: scratch for buffer_traffic */
    int *parent;            /* per inst: enclosing IF/FOR, -1 at top level */
    int *carried_for;       /* per BARG: its FOR when loop-carried, else -1 */
    int *var;               /* per BARG index var and per FOR: its var, else -1 */
    unsigned char *live, *isconst;
    int source_indices;     /* PARALLEL_FOR: index expressions are the user's */
    int as_run;             /* figures of the stage as it runs (IrKernelCost.run),
                             * not of the source statement */
    /* Index variables: grid dimensions, then one per FOR. */
    int nvars, words;
    FE_VEC(IrPoly *) range; /* per var: how many values it takes */
    uint64_t *deps;         /* per row (loc): words bits, the vars its value
                               depends on; the last row stays zero for values
                               from outside the stage */
    int rows;
    FE_VEC(int) work;
} CostCx;

static const IrInst *cinst(const CostCx *cx, int id)
{
    FE_ASSERT(id >= 0 && id < cx->k->insts.n);
    return &cx->k->insts.v[id];
}

static int block_yield(const CostCx *cx, const IrBlock *b)
{
    if (!b || !b->ins.n) return -1;
    int y = b->ins.v[b->ins.n - 1];
    return cinst(cx, y)->op == IR_YIELD ? y : -1;
}

/* Operand i of block b's YIELD, or -1. */
static int yield_arg(const CostCx *cx, const IrBlock *b, int i)
{
    int y = block_yield(cx, b);
    if (y < 0 || i < 0 || i >= cinst(cx, y)->a.n) return -1;
    return cinst(cx, y)->a.v[i];
}

static void scan_block(CostCx *cx, const IrBlock *b, int parent, int depth)
{
    /* The parser bounds nesting; this guards a malformed IR. */
    if (depth > 10000) fe_die("cost: blocks nested too deeply");
    for (int i = 0; i < b->args.n; i++) {
        cx->parent[b->args.v[i]] = parent;
        FE_PUSH(cx->a, cx->bargs, b->args.v[i]);
    }
    for (int i = 0; i < b->ins.n; i++) {
        int id = b->ins.v[i];
        const IrInst *in = cinst(cx, id);
        cx->parent[id] = parent;
        FE_PUSH(cx->a, cx->order, id);
        if (in->op == IR_IF) {
            if (in->body) scan_block(cx, in->body, id, depth + 1);
            if (in->els) scan_block(cx, in->els, id, depth + 1);
        } else if (in->op == IR_FOR) {
            FE_ASSERT(in->body && in->body->args.n >= 1);
            cx->var[id] = cx->nvars++;
            cx->var[in->body->args.v[0]] = cx->var[id];
            if (!in->trip) fe_die("cost: FOR without a trip-count formula");
            FE_PUSH(cx->a, cx->range, ir_poly_from_size(cx->at, in->trip));
            for (int j = 1; j < in->body->args.n; j++) cx->carried_for[in->body->args.v[j]] = id;
            scan_block(cx, in->body, id, depth + 1);
        }
    }
}

static void mark(CostCx *cx, int v)
{
    if (v < 0 || cx->live[v]) return;
    cx->live[v] = 1;
    FE_PUSH(cx->a, cx->work, v);
}

/* Liveness from the stores backwards through operands, block results,
 * loop-carried values and enclosing control flow. */
static void liveness(CostCx *cx)
{
    for (int i = 0; i < cx->order.n; i++)
        if (cinst(cx, cx->order.v[i])->op == IR_STORE) mark(cx, cx->order.v[i]);
    while (cx->work.n) {
        int v = cx->work.v[--cx->work.n];
        const IrInst *in = cinst(cx, v);
        if (cx->parent[v] >= 0) mark(cx, cx->parent[v]);
        switch (in->op) {
        case IR_RESULT: {
            int ctl = in->a.v[0], idx = (int)in->imm.i;
            const IrInst *c = cinst(cx, ctl);
            mark(cx, ctl);
            if (c->op == IR_IF) {
                mark(cx, yield_arg(cx, c->body, idx));
                mark(cx, yield_arg(cx, c->els, idx));
            } else {
                if (2 + idx < c->a.n) mark(cx, c->a.v[2 + idx]);
                mark(cx, yield_arg(cx, c->body, idx));
                if (1 + idx < c->body->args.n) mark(cx, c->body->args.v[1 + idx]);
            }
            break;
        }
        case IR_BARG: {
            int f = cx->carried_for[v];
            if (f >= 0) {
                const IrInst *c = cinst(cx, f);
                int idx = (int)in->imm.i - 1; /* arg 0 is the index variable */
                if (2 + idx < c->a.n) mark(cx, c->a.v[2 + idx]);
                mark(cx, yield_arg(cx, c->body, idx));
            }
            break;
        }
        case IR_IF: mark(cx, in->a.v[0]); break;
        case IR_FOR:
            mark(cx, in->a.v[0]);
            mark(cx, in->a.v[1]);
            break;
        case IR_YIELD: break;
        case IR_LOAD:
        case IR_STORE:
            /* Index arithmetic of an elementwise primitive is the
             * lowering's (rank-4 div/rem), not the source's. */
            for (int i = 0; i < in->a.n; i++)
                if (cx->source_indices || (in->op == IR_STORE && i == in->a.n - 1)) mark(cx, in->a.v[i]);
            break;
        default:
            for (int i = 0; i < in->a.n; i++) mark(cx, in->a.v[i]);
            break;
        }
    }
}

static void constness(CostCx *cx)
{
    for (int i = 0; i < cx->order.n; i++) {
        int v = cx->order.v[i];
        const IrInst *in = cinst(cx, v);
        if (in->op == IR_CONST) {
            cx->isconst[v] = 1;
            continue;
        }
        if (!op_cost[in->op].weight) continue;
        int all = in->a.n > 0;
        for (int j = 0; j < in->a.n && all; j++) all = in->a.v[j] >= 0 && cx->isconst[in->a.v[j]];
        cx->isconst[v] = (unsigned char)all;
    }
}

static uint64_t *deps_of(const CostCx *cx, int v)
{
    int r = cx->loc[v] >= 0 ? cx->loc[v] : cx->rows;
    return &cx->deps[(size_t)r * (size_t)cx->words];
}

/* d |= deps(v); returns whether d changed. */
static int deps_or(CostCx *cx, uint64_t *d, int v)
{
    if (v < 0) return 0;
    const uint64_t *s = deps_of(cx, v);
    int ch = 0;
    for (int w = 0; w < cx->words; w++)
        if ((d[w] | s[w]) != d[w]) {
            d[w] |= s[w];
            ch = 1;
        }
    return ch;
}

static int deps_setbit(CostCx *cx, uint64_t *d, int var)
{
    uint64_t bit = (uint64_t)1 << (var % 64);
    if (d[var / 64] & bit) return 0;
    d[var / 64] |= bit;
    return 1;
}

/* Which index variables each value depends on (data, loads included), to a
 * fixed point because loop-carried values feed themselves. */
static void dependences(CostCx *cx)
{
    int changed = 1;
    while (changed) {
        changed = 0;
        for (int i = 0; i < cx->order.n; i++) {
            int v = cx->order.v[i];
            const IrInst *in = cinst(cx, v);
            uint64_t *d = deps_of(cx, v);
            switch (in->op) {
            case IR_CONST:
            case IR_PARAM:
            case IR_SIZE:
            case IR_IF:
            case IR_FOR:
            case IR_YIELD:
            case IR_STORE: break;
            case IR_RESULT: {
                const IrInst *c = cinst(cx, in->a.v[0]);
                int idx = (int)in->imm.i;
                if (c->op == IR_IF) {
                    changed |= deps_or(cx, d, c->a.v[0]);
                    changed |= deps_or(cx, d, yield_arg(cx, c->body, idx));
                    changed |= deps_or(cx, d, yield_arg(cx, c->els, idx));
                } else if (1 + idx < c->body->args.n) {
                    changed |= deps_or(cx, d, c->body->args.v[1 + idx]);
                }
                break;
            }
            default:
                for (int j = 0; j < in->a.n; j++) changed |= deps_or(cx, d, in->a.v[j]);
                break;
            }
            /* Block arguments are not in `order`; FOR bodies' are updated
             * here, at their FOR. */
            if (in->op == IR_FOR) {
                const IrBlock *b = in->body;
                for (int j = 1; j < b->args.n; j++) {
                    uint64_t *ad = deps_of(cx, b->args.v[j]);
                    changed |= deps_setbit(cx, ad, cx->var[v]);
                    if (2 + j - 1 < in->a.n) changed |= deps_or(cx, ad, in->a.v[2 + j - 1]);
                    changed |= deps_or(cx, ad, yield_arg(cx, b, j - 1));
                }
            }
        }
    }
}

/* Whether access `in` has the same index in every invocation of a
 * subgroup: no index depends on the last grid dimension (variable
 * rank-1), directly or through a loaded value. The backends run the last
 * dimension along consecutive invocations (the x of a PARALLEL_FOR's
 * group, spirv_grid.c; the fastest-varying part of an elementwise walk),
 * so a subgroup's lanes share every other grid index: A[i][k] in a loop
 * over k is one address per subgroup of a 2-D PARALLEL_FOR over (i, j). A
 * SIMD or SIMT device then loads it once for the subgroup instead of lane
 * by lane. */
static int uniform_index(const CostCx *cx, const IrInst *in)
{
    const IrParam *p = &cx->k->params.v[in->param];
    int v = cx->st->rank - 1;
    for (int j = 0; v >= 0 && j < p->rank && j < in->a.n; j++) {
        if (in->a.v[j] < 0) continue;
        const uint64_t *d = deps_of(cx, in->a.v[j]);
        if (d[v / 64] >> (v % 64) & 1) return 0;
    }
    return 1;
}

/* The metrics count_block counts per execution (the rest are footprints
 * and dispatches, per stage). */
static const IrCostMetric counted[] = {IR_COST_FLOPS, IR_COST_INTOPS, IR_COST_ACCESSES, IR_COST_CHECKED,
                                        IR_COST_UNIFORM};
#define NCOUNTED (int)(sizeof counted / sizeof counted[0])

/* The counted metrics of one execution of block b (others left NULL). */
static IrCost count_block(CostCx *cx, const IrBlock *b)
{
    Arena *a = cx->a;
    IrCost r;
    int64_t line[IR_COST_N] = {0}; /* straight-line counts, added at the end */
    memset(&r, 0, sizeof r);
    for (int m = 0; m < NCOUNTED; m++) r.m[counted[m]] = ir_poly_const(a, 0);
    if (!b) return r;
    for (int n = 0; n < b->ins.n; n++) {
        int id = b->ins.v[n];
        const IrInst *in = cinst(cx, id);
        if (in->op == IR_IF) {
            IrCost t = count_block(cx, in->body), e = count_block(cx, in->els);
            for (int m = 0; m < NCOUNTED; m++) {
                IrCostMetric c = counted[m];
                r.m[c] = ir_poly_add(a, r.m[c], ir_poly_max(a, t.m[c], e.m[c]));
            }
        } else if (in->op == IR_FOR) {
            IrCost body = count_block(cx, in->body);
            IrPoly *trip = cx->range.v[cx->var[id]];
            for (int m = 0; m < NCOUNTED; m++) {
                IrCostMetric c = counted[m];
                r.m[c] = ir_poly_add(a, r.m[c], ir_poly_mul(a, trip, body.m[c]));
            }
        } else if (in->op == IR_LOAD || in->op == IR_STORE) {
            /* stores are live; a dead load is never executed by a backend
             * worth the name */
            if (cx->live[id]) {
                line[IR_COST_ACCESSES]++;
                line[IR_COST_CHECKED] += !(in->flags & IR_F_INBOUNDS);
                line[IR_COST_UNIFORM] += in->op == IR_LOAD && uniform_index(cx, in);
            }
        } else if (cx->live[id] && !cx->isconst[id] && op_cost[in->op].weight) {
            int w = op_cost[in->op].weight;
            if (in->op == IR_CALL) w = (in->param >= 0 && in->param < BI_COUNT) ? builtin_cost[in->param] : 1;
            ScalarType t = in->type;
            if (op_cost[in->op].domain == DOM_OPERAND && in->a.n && in->a.v[0] >= 0)
                t = cinst(cx, in->a.v[0])->type;
            line[is_float(t) ? IR_COST_FLOPS : IR_COST_INTOPS] += w;
        }
    }
    for (int m = 0; m < NCOUNTED; m++)
        r.m[counted[m]] = ir_poly_add(a, r.m[counted[m]], ir_poly_const(a, line[counted[m]]));
    return r;
}

static IrPoly *buffer_elems(CostCx *cx, int param)
{
    const IrParam *p = &cx->k->params.v[param];
    IrPoly *s = ir_poly_const(cx->a, 1);
    for (int d = 0; d < p->rank; d++) s = ir_poly_mul(cx->a, s, ir_poly_from_size(cx->at, p->dims[d]));
    return s;
}

/* The smaller of two upper bounds where one is provably (or by degree)
 * smaller: the buffer's whole size `s` caps a footprint `f`. */
static IrPoly *cap_by_buffer(CostCx *cx, IrPoly *f, IrPoly *s)
{
    if (f->overflow) return s;
    int64_t c;
    if (ir_poly_is_const(s, &c) && !ir_poly_is_const(f, NULL)) return s;
    if (ir_poly_degree(cx->at, s) < ir_poly_degree(cx->at, f)) return s;
    if (ir_poly_dominates(cx->a, f, s)) return s;
    return f;
}

/* Distinct elements one access can touch over the whole stage: the
 * product of the ranges of the index variables its indices depend on
 * (any function of those variables takes at most that many values). */
static IrPoly *access_footprint(CostCx *cx, const IrInst *in, int rank)
{
    uint64_t d[64];
    FE_ASSERT(cx->words <= 64);
    memset(d, 0, sizeof d);
    for (int j = 0; j < rank && j < in->a.n; j++) deps_or(cx, d, in->a.v[j]);
    IrPoly *f = ir_poly_const(cx->a, 1);
    for (int w = 0; w < cx->words; w++)
        for (uint64_t bits = d[w]; bits; bits &= bits - 1)
            f = ir_poly_mul(cx->a, f, cx->range.v[w * 64 + __builtin_ctzll(bits)]);
    return f;
}

/* Whether accesses x and y (same buffer, rank indices) use the same index
 * values: then they touch the same elements. */
static int same_index(const IrInst *x, const IrInst *y, int rank)
{
    if (x->a.n < rank || y->a.n < rank) return 0;
    for (int r = 0; r < rank; r++)
        if (x->a.v[r] != y->a.v[r]) return 0;
    return 1;
}

static uint64_t index_hash(const IrInst *in, int rank)
{
    uint64_t h = 1469598103934665603ull;
    for (int r = 0; r < rank && r < in->a.n; r++) h = (h ^ (uint64_t)(uint32_t)in->a.v[r]) * 1099511628211ull;
    return h;
}

/* Bytes of buffer `param` touched by its live LOADs or STOREs acc[0..n)
 * (program order, one op): distinct index tuples summed, capped by the
 * buffer. Duplicates are found through a hash table (linear, not the
 * pairwise comparison a fused stage of many statements would make
 * quadratic). */
static IrPoly *buffer_traffic(CostCx *cx, int param, const int *acc, int n)
{
    const IrParam *p = &cx->k->params.v[param];
    IrPoly *sum = ir_poly_const(cx->a, 0);
    if (!n) return sum;
    IrPoly *whole = buffer_elems(cx, param);
    size_t cap = 16;
    while (cap < 2 * (size_t)n) cap *= 2;
    int *tab = fe_alloc(cx->a, cap * sizeof(int)); /* access id + 1; 0 empty */
    for (int i = 0; i < n; i++) {
        const IrInst *in = cinst(cx, acc[i]);
        size_t h = (size_t)index_hash(in, p->rank) & (cap - 1);
        int dup = 0;
        for (; tab[h] && !dup; h = (h + 1) & (cap - 1)) dup = same_index(cinst(cx, tab[h] - 1), in, p->rank);
        if (dup) continue;
        tab[h] = acc[i] + 1;
        sum = ir_poly_add(cx->a, sum, cap_by_buffer(cx, access_footprint(cx, in, p->rank), whole));
    }
    return ir_poly_scale(cx->a, cap_by_buffer(cx, sum, whole), elem_size(p->type));
}

/* Puts back the scratch entries this stage set (CostScratch). */
static void cost_stage_reset(CostCx *cx)
{
    for (int pass = 0; pass < 2; pass++) {
        const int *ids = pass ? cx->bargs.v : cx->order.v;
        int n = pass ? cx->bargs.n : cx->order.n;
        for (int i = 0; i < n; i++) {
            int v = ids[i];
            cx->parent[v] = cx->carried_for[v] = cx->var[v] = cx->loc[v] = -1;
            cx->live[v] = cx->isconst[v] = 0;
        }
    }
}

static void grid_stage_cost(CostCx *cx, IrCost *c)
{
    const IrStage *st = cx->st;
    Arena *a = cx->a;

    IrPoly *invocations = ir_poly_const(a, 1);
    for (int d = 0; d < st->rank; d++) {
        IrPoly *r = ir_poly_sub(a, ir_poly_from_size(cx->at, st->hi[d]), ir_poly_from_size(cx->at, st->lo[d]));
        FE_PUSH(a, cx->range, r);
        invocations = ir_poly_mul(a, invocations, r);
        if (st->body && d < st->body->args.n) cx->var[st->body->args.v[d]] = d;
    }
    cx->nvars = st->rank;
    if (st->body) scan_block(cx, st->body, -1, 0);
    /* Dependence bitsets are bounded to 64 words (4096 variables); the
     * front end refuses a statement with more loops (LIMIT_LOOPS_PER_STMT) */
    if (cx->nvars > 64 * 64) fe_die("cost: too many loops in one stage");
    cx->words = (cx->nvars + 63) / 64;
    cx->rows = cx->order.n + cx->bargs.n;
    for (int i = 0; i < cx->order.n; i++) cx->loc[cx->order.v[i]] = i;
    for (int i = 0; i < cx->bargs.n; i++) cx->loc[cx->bargs.v[i]] = cx->order.n + i;
    cx->deps = fe_alloc(a, ((size_t)cx->rows + 1) * (size_t)cx->words * sizeof(uint64_t));
    for (int i = 0; i < cx->bargs.n; i++) {
        int v = cx->bargs.v[i];
        if (cx->var[v] >= 0) deps_setbit(cx, deps_of(cx, v), cx->var[v]);
    }

    cx->source_indices = st->prims.n && st->prims.v[0] == PRIM_FOR;
    liveness(cx);
    constness(cx);
    dependences(cx);

    IrCost ops = count_block(cx, st->body);
    for (int m = 0; m < NCOUNTED; m++) c->m[counted[m]] = ir_poly_mul(a, invocations, ops.m[counted[m]]);
    c->m[IR_COST_BYTES_READ] = ir_poly_const(a, 0);
    c->m[IR_COST_BYTES_WRITTEN] = ir_poly_const(a, 0);
    /* the live accesses of each buffer the stage touches, grouped by
     * buffer in order of first access, each group in program order */
    FE_VEC(int) bufs = {0};
    int *cnt = NULL;
    for (int i = 0; i < cx->order.n; i++) {
        const IrInst *in = cinst(cx, cx->order.v[i]);
        if ((in->op != IR_LOAD && in->op != IR_STORE) || !cx->live[cx->order.v[i]]) continue;
        if (cx->slot[in->param] < 0) {
            cx->slot[in->param] = bufs.n;
            FE_PUSH(a, bufs, in->param);
        }
    }
    cnt = fe_alloc(a, ((size_t)bufs.n + 1) * 2 * sizeof(int));
    for (int i = 0; i < cx->order.n; i++) {
        const IrInst *in = cinst(cx, cx->order.v[i]);
        if ((in->op != IR_LOAD && in->op != IR_STORE) || !cx->live[cx->order.v[i]]) continue;
        cnt[2 * cx->slot[in->param] + (in->op == IR_STORE)]++;
    }
    int **acc = fe_alloc(a, ((size_t)bufs.n + 1) * 2 * sizeof(int *));
    for (int b = 0; b < 2 * bufs.n; b++) {
        acc[b] = fe_alloc(a, ((size_t)cnt[b] + 1) * sizeof(int));
        cnt[b] = 0;
    }
    for (int i = 0; i < cx->order.n; i++) {
        const IrInst *in = cinst(cx, cx->order.v[i]);
        if ((in->op != IR_LOAD && in->op != IR_STORE) || !cx->live[cx->order.v[i]]) continue;
        int b = 2 * cx->slot[in->param] + (in->op == IR_STORE);
        acc[b][cnt[b]++] = cx->order.v[i];
    }
    for (int b = 0; b < bufs.n; b++) {
        int p = bufs.v[b];
        c->m[IR_COST_BYTES_READ] = ir_poly_add(a, c->m[IR_COST_BYTES_READ], buffer_traffic(cx, p, acc[2 * b], cnt[2 * b]));
        c->m[IR_COST_BYTES_WRITTEN] =
            ir_poly_add(a, c->m[IR_COST_BYTES_WRITTEN], buffer_traffic(cx, p, acc[2 * b + 1], cnt[2 * b + 1]));
        cx->slot[p] = -1;
    }
    cost_stage_reset(cx);
}

static IrPoly *dim(CostCx *cx, int param, int d)
{
    const IrParam *p = &cx->k->params.v[param];
    if (d < 0) d += p->rank;
    FE_ASSERT(d >= 0 && d < p->rank);
    return ir_poly_from_size(cx->at, p->dims[d]);
}

/* Rows of a last-axis primitive: every dimension but the last. */
static IrPoly *rows(CostCx *cx, int param)
{
    const IrParam *p = &cx->k->params.v[param];
    IrPoly *r = ir_poly_const(cx->a, 1);
    for (int d = 0; d + 1 < p->rank; d++) r = ir_poly_mul(cx->a, r, dim(cx, param, d));
    return r;
}

/* Extent d of param p rounded up to a multiple of t (what a tiled lowering
 * computes over: its edge tiles are whole tiles, masked or zero-padded). */
static IrPoly *dim_padded(CostCx *cx, int param, int d, int t)
{
    const IrParam *p = &cx->k->params.v[param];
    Arena *a = cx->a;
    IrSize *x = ir_size_bin(a, SZ_MUL, ir_size_bin(a, SZ_CEILDIV, p->dims[d], ir_size_const(a, t)),
                            ir_size_const(a, t));
    return ir_poly_from_size(cx->at, x);
}

static void library_stage_cost(CostCx *cx, IrCost *c)
{
    const IrStage *st = cx->st;
    Arena *a = cx->a;
    FE_ASSERT(st->nin >= 1 && st->in[0] >= 0 && st->out >= 0);
    int in0 = st->in[0];
    const IrParam *p0 = &cx->k->params.v[in0];
    int es = elem_size(p0->type);
    IrPoly *ops = ir_poly_const(a, 0);
    IrPoly *rd, *wr;
    switch (st->kind) {
    case IR_STAGE_MATMUL: {
        FE_ASSERT(st->nin == 2 && st->in[1] >= 0);
        /* A[M][K] x B[K][N]: K multiplies and K adds per output element.
         * As the stage runs (IrKernelCost.run: the figures that predict
         * its time), the operations are those of whole TM x TN tiles over
         * whole TK slices: the edge tiles of sizes that are not multiples
         * of the tile compute their padding too (codegen/spirv_lib.c,
         * lower_matmul; sp[] <= 0 means its 64x64x16 fallback). The float
         * 128x128x8 kernel's edge tiles skip the products of invocations
         * whose 8x8 outputs lie wholly outside C, but not the loads and
         * barriers of each K-slice: on llvmpipe (K = 512) an edge tile
         * with 1/16 of its invocations live took 0.6-0.7 of one with all
         * live. So there the operations count half at whole tiles and half
         * at M and N padded to the invocation's 8:
         * 2 Kp (Mt Nt / 2 + M8 N8 / 2). The source statement's figures
         * stay 2*M*N*K. */
        IrPoly *M = dim(cx, in0, 0), *K = dim(cx, in0, 1), *N = dim(cx, st->in[1], 1);
        rd = ir_poly_add(a, ir_poly_mul(a, M, K), ir_poly_mul(a, K, N));
        wr = ir_poly_mul(a, M, N);
        if (cx->as_run && st->strategy == IR_STRAT_MATMUL_TILED) {
            int ok = st->sp[0] > 0 && st->sp[1] > 0 && st->sp[2] > 0;
            int skip = p0->type == TY_FLOAT && st->sp[0] == 128 && st->sp[1] == 128 && st->sp[2] == 8 &&
                       st->sp[3] == 8;
            IrPoly *Mt = dim_padded(cx, in0, 0, ok ? st->sp[0] : 64);
            IrPoly *Nt = dim_padded(cx, st->in[1], 1, ok ? st->sp[1] : 64);
            K = dim_padded(cx, in0, 1, ok ? st->sp[2] : 16);
            IrPoly *tiles = ir_poly_mul(a, Mt, Nt);
            if (skip)
                ops = ir_poly_mul(a, ir_poly_add(a, tiles, ir_poly_mul(a, dim_padded(cx, in0, 0, 8),
                                                                          dim_padded(cx, st->in[1], 1, 8))), K);
            else
                ops = ir_poly_scale(a, ir_poly_mul(a, tiles, K), 2);
        } else {
            ops = ir_poly_scale(a, ir_poly_mul(a, ir_poly_mul(a, M, N), K), 2);
        }
        break;
    }
    case IR_STAGE_REDUCE:
        /* One operation per element: accumulation from the identity, the
         * convention that makes MATMUL 2*M*N*K. */
        ops = buffer_elems(cx, in0);
        rd = ops;
        wr = rows(cx, in0);
        break;
    case IR_STAGE_SCAN:
        ops = buffer_elems(cx, in0);
        rd = wr = ops;
        break;
    case IR_STAGE_SOFTMAX:
        /* Per element: a compare (row max), a subtract, an exp, an add
         * (row sum) and a divide. */
        ops = ir_poly_scale(a, buffer_elems(cx, in0), 5);
        rd = wr = buffer_elems(cx, in0);
        break;
    case IR_STAGE_TRANSPOSE:
        rd = wr = buffer_elems(cx, in0);
        break;
    default: fe_unreachable();
    }
    c->m[IR_COST_FLOPS] = is_float(p0->type) ? ops : ir_poly_const(a, 0);
    c->m[IR_COST_INTOPS] = is_float(p0->type) ? ir_poly_const(a, 0) : ops;
    c->m[IR_COST_BYTES_READ] = ir_poly_scale(a, rd, es);
    c->m[IR_COST_BYTES_WRITTEN] = ir_poly_scale(a, wr, elem_size(cx->k->params.v[st->out].type));
    /* Library code is in range by construction; its accesses are its
     * compulsory elements (how it stages them is its class's calibrated
     * slowdown, docs/COST.md). */
    c->m[IR_COST_ACCESSES] = ir_poly_add(a, rd, wr);
    c->m[IR_COST_CHECKED] = ir_poly_const(a, 0);
    c->m[IR_COST_UNIFORM] = ir_poly_const(a, 0);
}

/* ---- kernels and class ---------------------------------------------------- */

/* The figures of stage st of kernel k (whose atoms are at). */
static IrStageCost stage_cost(Arena *a, IrAtoms *at, const IrKernel *k, const IrStage *st, CostScratch *sx,
                              int as_run)
{
    IrStageCost sc;
    memset(&sc, 0, sizeof sc);
    sc.kind = st->kind;
    sc.prim = st->prims.n ? st->prims.v[0] : PRIM_FOR;
    if (st->locs.n) sc.loc = st->locs.v[0];
    sc.lib = lib_class(k, st);
    CostCx cx;
    memset(&cx, 0, sizeof cx);
    cx.a = a;
    cx.at = at;
    cx.k = k;
    cx.st = st;
    cx.parent = sx->parent;
    cx.carried_for = sx->carried_for;
    cx.var = sx->var;
    cx.loc = sx->loc;
    cx.slot = sx->slot;
    cx.live = sx->live;
    cx.isconst = sx->isconst;
    cx.as_run = as_run;
    if (st->kind == IR_STAGE_GRID) grid_stage_cost(&cx, &sc.c);
    else library_stage_cost(&cx, &sc.c);
    sc.c.m[IR_COST_DISPATCHES] = ir_poly_const(a, ir_stage_dispatches(k, st));
    return sc;
}

static CostScratch *scratch_new(Arena *a, const IrKernel *k)
{
    CostScratch *sx = fe_alloc(a, sizeof *sx);
    size_t n = (size_t)k->insts.n + 1;
    sx->parent = fe_alloc(a, n * sizeof(int));
    sx->carried_for = fe_alloc(a, n * sizeof(int));
    sx->var = fe_alloc(a, n * sizeof(int));
    sx->loc = fe_alloc(a, n * sizeof(int));
    sx->live = fe_alloc(a, n);
    sx->isconst = fe_alloc(a, n);
    for (size_t i = 0; i < n; i++) sx->parent[i] = sx->carried_for[i] = sx->var[i] = sx->loc[i] = -1;
    sx->slot = fe_alloc(a, ((size_t)k->params.n + 1) * sizeof(int));
    for (int i = 0; i <= k->params.n; i++) sx->slot[i] = -1;
    return sx;
}

IrKernelCost *ir_cost_kernel(Arena *a, const IrKernel *src, const IrKernel *opt)
{
    IrKernelCost *kc = fe_alloc(a, sizeof *kc);
    kc->k = src;
    ir_atoms_init(&kc->atoms, a, src);
    for (int m = 0; m < IR_COST_N; m++) kc->total.m[m] = ir_poly_const(a, 0);
    CostScratch *sx = scratch_new(a, src);
    for (int s = 0; s < src->stages.n; s++) {
        IrStageCost sc = stage_cost(a, &kc->atoms, src, &src->stages.v[s], sx, 0);
        for (int m = 0; m < IR_COST_N; m++) kc->total.m[m] = ir_poly_add(a, kc->total.m[m], sc.c.m[m]);
        FE_PUSH(a, kc->stages, sc);
    }
    if (opt) {
        int64_t n = 0;
        for (int s = 0; s < opt->stages.n; s++) n += ir_stage_dispatches(opt, &opt->stages.v[s]);
        kc->total.m[IR_COST_DISPATCHES] = ir_poly_const(a, n);
        /* The atoms are src's: size symbols and params are the same objects
         * in the same order after ir_optimize, which only rewrites stages. */
        int same = opt->syms.n == src->syms.n && opt->params.n == src->params.n;
        CostScratch *ox = same ? scratch_new(a, opt) : NULL;
        for (int s = 0; same && s < opt->stages.n; s++)
            FE_PUSH(a, kc->run, stage_cost(a, &kc->atoms, opt, &opt->stages.v[s], ox, 1));
    }
    kc->cls = ir_cost_class(a, kc, &kc->class_reason);
    return kc;
}

IrKernelCost **ir_cost_lowered(Arena *a, IrModule *src, const IrModule *opt)
{
    if (opt && src->kernels.n != opt->kernels.n) return NULL;
    for (int i = 0; opt && i < src->kernels.n; i++)
        if (strcmp(src->kernels.v[i]->name, opt->kernels.v[i]->name)) return NULL;
    /* an analysis, not a rewrite: it only marks the accesses and divisions
     * it proves safe, which `checked` counts (the figures stay those of
     * the kernel as lowered) */
    ir_pass_bounds(src);
    IrKernelCost **cs = fe_alloc(a, (size_t)(src->kernels.n + 1) * sizeof *cs);
    for (int i = 0; i < src->kernels.n; i++)
        cs[i] = ir_cost_kernel(a, src->kernels.v[i], opt ? opt->kernels.v[i] : NULL);
    return cs;
}

static int binds_kernel(const IrKernel *k, const char *name)
{
    for (int s = 0; s < k->syms.n; s++)
        if (!strcmp(k->syms.v[s].name, name)) return 1;
    for (int p = 0; p < k->params.n; p++) {
        const IrParam *q = &k->params.v[p];
        if (!q->is_buffer && (q->type == TY_INT || q->type == TY_UINT) && !strcmp(q->name, name)) return 1;
    }
    return 0;
}

const char *ir_cost_bind_unused(IrKernelCost *const *cs, int n, const IrCostBind *bind)
{
    for (int i = 0; bind && i < bind->n; i++) {
        int used = 0;
        for (int k = 0; k < n && !used; k++) used = binds_kernel(cs[k]->k, bind->names[i]);
        if (!used) return bind->names[i];
    }
    return NULL;
}

/* Class rules (docs/COST.md, "Workload class"); thresholds in one place. */
#define COST_SMALL_OPS (1 << 20)    /* a fixed-size kernel at most this... */
#define COST_SMALL_BYTES (1 << 22)  /* ...and this is INTERACTIVE */
#define COST_BATCH_INTENSITY 8.0    /* ops per byte from which work is compute-bound */
#define COST_REFERENCE_SIZE 1024    /* every symbol's value for the intensity */

static const char *deadline_text(Arena *a, uint64_t ns)
{
    if (ns % 1000000000u == 0) return fe_sprintf(a, "%llus", (unsigned long long)(ns / 1000000000u));
    if (ns % 1000000u == 0) return fe_sprintf(a, "%llums", (unsigned long long)(ns / 1000000u));
    if (ns % 1000u == 0) return fe_sprintf(a, "%lluus", (unsigned long long)(ns / 1000u));
    return fe_sprintf(a, "%lluns", (unsigned long long)ns);
}

FeClass ir_cost_class(Arena *a, const IrKernelCost *c, const char **reason)
{
    const IrKernel *k = c->k;
    if (k->deadline_ns) {
        *reason = fe_sprintf(a, "GPU_DEADLINE %s implies REALTIME", deadline_text(a, k->deadline_ns));
        return CLASS_REALTIME;
    }
    if (k->cls != CLASS_NONE) {
        *reason = fe_sprintf(a, "GPU_CLASS %s as written", fe_class_names[k->cls]);
        return k->cls;
    }
    if (!k->stages.n) {
        *reason = "no stages: nothing to run";
        return CLASS_INTERACTIVE;
    }
    const IrCost *t = &c->total;
    IrPoly *ops = ir_poly_add(a, t->m[IR_COST_FLOPS], t->m[IR_COST_INTOPS]);
    IrPoly *bytes = ir_poly_add(a, t->m[IR_COST_BYTES_READ], t->m[IR_COST_BYTES_WRITTEN]);
    if (ops->overflow || bytes->overflow) {
        *reason = "cost too large to state (overflow): long work";
        return CLASS_BATCH;
    }
    int64_t co, cb;
    int fixed = ir_poly_is_const(ops, &co) && ir_poly_is_const(bytes, &cb);
    if (fixed && co <= COST_SMALL_OPS && cb <= COST_SMALL_BYTES) {
        *reason = fe_sprintf(a, "fixed size and small: %lld operations, %lld bytes (at most %d and %d)",
                             (long long)co, (long long)cb, COST_SMALL_OPS, COST_SMALL_BYTES);
        return CLASS_INTERACTIVE;
    }
    int dops = ir_poly_degree(&c->atoms, ops), dbytes = ir_poly_degree(&c->atoms, bytes);
    if (dops > dbytes) {
        *reason = fe_sprintf(a,
                             "operations grow as degree %d of the sizes, memory traffic as degree %d: "
                             "compute-bound as sizes grow",
                             dops, dbytes);
        return CLASS_BATCH;
    }
    int64_t ref[64 + 1];
    int nsyms = k->syms.n, nparams = k->params.n;
    int64_t *sv = nsyms ? fe_alloc(a, (size_t)nsyms * sizeof *sv) : ref;
    int64_t *pv = nparams ? fe_alloc(a, (size_t)nparams * sizeof *pv) : ref;
    for (int i = 0; i < nsyms; i++) sv[i] = COST_REFERENCE_SIZE;
    for (int i = 0; i < nparams; i++) pv[i] = COST_REFERENCE_SIZE;
    long double vo = 0, vb = 0;
    if (!ir_poly_eval(&c->atoms, ops, sv, NULL, pv, NULL, &vo) ||
        !ir_poly_eval(&c->atoms, bytes, sv, NULL, pv, NULL, &vb)) {
        *reason = "cost cannot be evaluated: long work";
        return CLASS_BATCH;
    }
    const char *where = fixed ? "at its fixed size" : "with every size symbol 1024";
    if (vb <= 0) {
        *reason = fe_sprintf(a, "no memory traffic %s: compute-bound", where);
        return vo > 0 ? CLASS_BATCH : CLASS_INTERACTIVE;
    }
    double in = (double)(vo / vb);
    if (in >= COST_BATCH_INTENSITY) {
        *reason = fe_sprintf(a, "compute-bound: %.3g operations per byte (at least %g) %s", in,
                             COST_BATCH_INTENSITY, where);
        return CLASS_BATCH;
    }
    *reason = fe_sprintf(a, "memory-bound streaming: %.3g operations per byte (below %g) %s", in,
                         COST_BATCH_INTENSITY, where);
    return CLASS_THROUGHPUT;
}

/* The figures of `cost` (a stage of class lib) at the bound values; no
 * groups (the runtime supplies those from launch metadata). */
static int cost_eval(const IrKernelCost *c, const IrCost *cost, IrLibClass lib, const int64_t *syms,
                     const unsigned char *syms_set, const int64_t *params, const unsigned char *params_set,
                     IrCostValues *out)
{
    IrCostValues v = {.lib = lib, .groups = 0};
    for (int m = 0; m < IR_COST_N; m++) {
        long double x;
        if (!ir_poly_eval(&c->atoms, cost->m[m], syms, syms_set, params, params_set, &x)) return 0;
        v.v[m] = (double)x;
    }
    *out = v;
    return 1;
}

int ir_cost_values(const IrKernelCost *c, int stage, const int64_t *syms,
                   const unsigned char *syms_set, const int64_t *params,
                   const unsigned char *params_set, IrCostValues *out)
{
    if (stage < -1 || stage >= c->stages.n) return 0;
    if (stage < 0) return cost_eval(c, &c->total, IR_LIB_NONE, syms, syms_set, params, params_set, out);
    const IrStageCost *sc = &c->stages.v[stage];
    return cost_eval(c, &sc->c, sc->lib, syms, syms_set, params, params_set, out);
}

int ir_cost_run_values(const IrKernelCost *c, int stage, const int64_t *syms,
                       const unsigned char *syms_set, const int64_t *params,
                       const unsigned char *params_set, IrCostValues *out)
{
    if (stage < 0 || stage >= c->run.n) return 0;
    const IrStageCost *sc = &c->run.v[stage];
    return cost_eval(c, &sc->c, sc->lib, syms, syms_set, params, params_set, out);
}
