/* limits.c — the limits on a compiled kernel that only the optimised IR
 * can state (Diags.lim; docs/LANGUAGE.md, "Limits"). The front end checks
 * the others where they occur in the source. */
#include "ir.h"

/* Instructions of b at any depth (nesting is bounded by FE_MAX_NEST). */
static int64_t count_insts(const IrKernel *k, const IrBlock *b)
{
    if (!b) return 0;
    int64_t n = b->ins.n;
    for (int i = 0; i < b->ins.n; i++) {
        const IrInst *in = &k->insts.v[b->ins.v[i]];
        n += count_insts(k, in->body) + count_insts(k, in->els);
    }
    return n;
}

int ir_check_limits(const IrModule *m, Diags *d)
{
    int bad = 0;
    for (int i = 0; i < m->kernels.n; i++) {
        const IrKernel *k = m->kernels.v[i];
        /* one stage is one function for a backend to compile: bounded,
         * since its compile time grows faster than linearly */
        for (int s = 0; s < k->stages.n; s++) {
            const IrStage *st = &k->stages.v[s];
            int64_t n = count_insts(k, st->body);
            if (n <= d->lim.stage_insts) continue;
            fe_error(d, st->locs.n ? st->locs.v[0] : k->loc,
                     "stage %d of kernel '%s' is too large: %lld instructions (limit %d)", s, k->name, (long long)n,
                     d->lim.stage_insts);
            bad = 1;
            break;
        }
        if (k->stages.n <= d->lim.stages) continue;
        /* at the first statement that starts a stage past the limit */
        const IrStage *st = &k->stages.v[d->lim.stages];
        fe_error(d, st->locs.n ? st->locs.v[0] : k->loc,
                 "too many stages in kernel '%s': %d after fusion (limit %d)", k->name, k->stages.n,
                 d->lim.stages);
        bad = 1;
    }
    return bad;
}
