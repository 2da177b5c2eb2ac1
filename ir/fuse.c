/* fuse.c — merges consecutive elementwise grid stages.
 *
 * Requires: a verified module. Two neighbouring GRID stages fuse when both
 * are elementwise (every load and store is at exactly the stage index, so
 * the thread that handles an index touches only that index of every
 * buffer) and their index spaces are structurally equal (rank, lo, hi,
 * index types). Running the second body right after the first in the same
 * thread then gives every element the same sequence of reads and writes as
 * two dispatches with a barrier between them.
 *
 * Inside a fused body a `load p[i]` that follows `store p[i], v` with no
 * other store to p in between is replaced by v (store-to-load forwarding);
 * the store stays, since p is a kernel buffer and observable.
 *
 * Preserves: the ids of all instructions (the second body's instructions
 * move into the first; its index args are replaced by the first's).
 * Invalidates: stage numbering (fewer stages); strategies (run after). */
#include "ir.h"

static int same_space(const IrStage *a, const IrStage *b)
{
    if (a->rank != b->rank) return 0;
    for (int d = 0; d < a->rank; d++)
        if (!ir_size_equal(a->lo[d], b->lo[d]) || !ir_size_equal(a->hi[d], b->hi[d]) || a->itype[d] != b->itype[d])
            return 0;
    return 1;
}

static int fusable(const IrStage *a, const IrStage *b)
{
    return a->kind == IR_STAGE_GRID && b->kind == IR_STAGE_GRID && a->elementwise && b->elementwise &&
           same_space(a, b);
}

/* Replaces operand uses through repl[] in the (flat or nested) block. */
static void remap(IrKernel *k, IrBlock *b, const int *repl)
{
    for (int i = 0; i < b->ins.n; i++) {
        IrInst *in = &k->insts.v[b->ins.v[i]];
        for (int j = 0; j < in->a.n; j++)
            if (in->a.v[j] >= 0) in->a.v[j] = repl[in->a.v[j]];
        if (in->body) remap(k, in->body, repl);
        if (in->els) remap(k, in->els, repl);
    }
}

static int same_indices(const IrInst *ld, const IrInst *st)
{
    if (ld->a.n + 1 != st->a.n) return 0;
    for (int i = 0; i < ld->a.n; i++)
        if (ld->a.v[i] != st->a.v[i]) return 0;
    return 1;
}

/* Store-to-load forwarding over the top level of an elementwise body. */
static void forward(IrKernel *k, IrBlock *b, int *repl)
{
    for (int i = 0; i < k->insts.n; i++) repl[i] = i;
    for (int i = 0; i < b->ins.n; i++) {
        IrInst *ld = &k->insts.v[b->ins.v[i]];
        for (int j = 0; j < ld->a.n; j++) ld->a.v[j] = repl[ld->a.v[j]];
        if (ld->body) remap(k, ld->body, repl);
        if (ld->els) remap(k, ld->els, repl);
        if (ld->op != IR_LOAD) continue;
        for (int j = i - 1; j >= 0; j--) {
            const IrInst *st = &k->insts.v[b->ins.v[j]];
            if (st->op != IR_STORE || st->param != ld->param) continue;
            /* the latest store to the buffer decides: same index forwards,
             * any other index stops the search */
            if (same_indices(ld, st) && k->insts.v[st->a.v[st->a.n - 1]].type == ld->type)
                repl[b->ins.v[i]] = st->a.v[st->a.n - 1];
            break;
        }
    }
}

void ir_pass_fuse(IrModule *m)
{
    for (int ki = 0; ki < m->kernels.n; ki++) {
        IrKernel *k = m->kernels.v[ki];
        int *repl = fe_alloc(m->arena, sizeof(int) * ((size_t)k->insts.n + 1));
        int n = 0;
        for (int s = 0; s < k->stages.n; s++) {
            IrStage *cur = &k->stages.v[s];
            if (n > 0 && fusable(&k->stages.v[n - 1], cur)) {
                IrStage *dst = &k->stages.v[n - 1];
                for (int i = 0; i < k->insts.n; i++) repl[i] = i;
                for (int d = 0; d < cur->rank; d++) repl[cur->body->args.v[d]] = dst->body->args.v[d];
                remap(k, cur->body, repl);
                for (int i = 0; i < cur->body->ins.n; i++) {
                    int id = cur->body->ins.v[i];
                    if (k->insts.v[id].op == IR_YIELD) continue;
                    FE_PUSH(m->arena, dst->body->ins, id);
                }
                for (int i = 0; i < cur->prims.n; i++) {
                    FE_PUSH(m->arena, dst->prims, cur->prims.v[i]);
                    FE_PUSH(m->arena, dst->locs, cur->locs.v[i]);
                }
                forward(k, dst->body, repl);
                continue;
            }
            k->stages.v[n++] = *cur;
        }
        k->stages.n = n;
    }
}
