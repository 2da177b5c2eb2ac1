/* limits.c — the limits on a compiled kernel that only the optimised IR
 * can state (Diags.lim; docs/LANGUAGE.md, "Limits"). The front end checks
 * the others where they occur in the source. */
#include "ir.h"

int ir_check_limits(const IrModule *m, Diags *d)
{
    int bad = 0;
    for (int i = 0; i < m->kernels.n; i++) {
        const IrKernel *k = m->kernels.v[i];
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
