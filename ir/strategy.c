/* strategy.c — chooses how a backend lowers each stage (IrStage.strategy
 * and sp[]).
 *
 * Requires: a verified module. Preserves: everything but strategy/sp.
 * Invalidates: nothing. Deterministic: the choice depends only on the stage
 * and on the target facts in IrOptions, so --emit=ir golden files pin it.
 *
 * The table (backends read sp[] as documented at IR_STRATEGIES; tune the
 * numbers here, per target, not in the backends):
 *   grid, elementwise       elementwise(256 threads/group, 4 items/thread;
 *                           an item is a vec4 in the vec4 variant of rank-1
 *                           bodies, run when N % 4 == 0: 4 vec4 per thread,
 *                           as in the GLSL twin)
 *   grid, PARALLEL_FOR      grid(group size per dim): rank 1 64; rank 2
 *                           16x16; rank 3 8x8x4
 *   matmul                  matmul-tiled(TM 128, TN 128, TK 8, 8x8 per thread);
 *                           for float, the full 128x128 tiles run without
 *                           bounds checks (and full K-slices of 8), only the
 *                           last tile row and column are masked; vec4 global
 *                           accesses when K, N % 4 == 0
 *   reduce, 1-D input       reduce-tree(256 per group, at most 1024 groups,
 *                           ~16 vec4 per thread; the second pass folds the
 *                           partials)
 *   reduce, 2-D input       reduce-rows(64 threads per row)
 *   scan                    scan-3pass(256 per group, 16 elements per
 *                           thread: blocks of 4096)
 *   softmax                 softmax-row(64 threads per group; one subgroup
 *                           per row when the target has subgroups)
 *   transpose               transpose-block(16x16 groups; 4x4 blocks with
 *                           vec4 loads and stores when both extents are
 *                           multiples of 4): on lavapipe shared memory costs
 *                           the same per-lane loop as global memory and a
 *                           barrier a coroutine switch, so staging through
 *                           it only adds work (the tiled kernel ran 3.2x the
 *                           naive twin at 4096^2); a GPU table would pick
 *                           transpose-tiled(32)
 */
#include "ir.h"

#define IR_STRATEGY_TABLE(X)                                                       \
    X(IR_STAGE_MATMUL, IR_STRAT_MATMUL_TILED, 128, 128, 8, 8) /* matmul */          \
    X(IR_STAGE_SCAN, IR_STRAT_SCAN_3PASS, 256, 16, 0, 0)     /* G, E per thread */   \
    X(IR_STAGE_SOFTMAX, IR_STRAT_SOFTMAX_ROW, 64, 0, 0, 0)   /* one group per row */ \
    X(IR_STAGE_TRANSPOSE, IR_STRAT_TRANSPOSE_BLOCK, 16, 0, 0, 0) /* group edge */

static void set(IrStage *s, IrStrategy st, int a, int b, int c, int d)
{
    s->strategy = st;
    s->sp[0] = a;
    s->sp[1] = b;
    s->sp[2] = c;
    s->sp[3] = d;
}

static void choose(const IrKernel *k, IrStage *s, const IrOptions *o)
{
    switch (s->kind) {
    case IR_STAGE_GRID:
        if (s->elementwise) set(s, IR_STRAT_ELEMWISE, 256, 4, 0, 0);
        else if (s->rank == 1) set(s, IR_STRAT_GRID, 64, 1, 1, 0);
        else if (s->rank == 2) set(s, IR_STRAT_GRID, 16, 16, 1, 0);
        else set(s, IR_STRAT_GRID, 8, 8, 4, 0);
        return;
    case IR_STAGE_REDUCE:
        if (k->params.v[s->in[0]].rank >= 2) set(s, IR_STRAT_REDUCE_ROWS, 64, 0, 0, 0);
        else set(s, IR_STRAT_REDUCE_TREE, 256, 1024, 16, 0);
        return;
#define X(kind, st, a, b, c, d) \
    case kind: set(s, st, a, b, c, d); return;
    IR_STRATEGY_TABLE(X)
#undef X
    }
    fe_unreachable();
}

void ir_pass_strategy(IrModule *m, const IrOptions *o)
{
    for (int i = 0; i < m->kernels.n; i++) {
        IrKernel *k = m->kernels.v[i];
        for (int s = 0; s < k->stages.n; s++) choose(k, &k->stages.v[s], o);
    }
}
