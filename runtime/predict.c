/* predict.c — cost figures at a launch's sizes, the roofline prediction
 * from the device profile, measured times and the per-kernel correction
 * learned from them (docs/COST.md). The cost analysis is the compiler's
 * (ir/cost.c); what the code as generated for this device does (its
 * workgroups, vec4 accesses, dispatches) comes from the backend
 * (RtBackendOps.stage_shape). */
#include "rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the last run's times and lets the run teach the kernel's
 * correction, once per run. A submit drops times nobody read: reading them
 * on every run would put a read-back and a cost evaluation on the
 * repeat-run path. */
void rt_read_times(PxLaunch *l)
{
    if (!l->unread) return;
    l->unread = 0;
    l->c->ops->times(l->c->dev, l->prog, l->k->ir->stages.n, l->stage_ns, &l->total_ns);
    if (!l->unread_cold) rt_learn(l);
}

/* v as the device runs stage `stage` of the optimised kernel: its
 * workgroups, and accesses counted as executed: a uniform load once per
 * subgroup, a vec4 access as its class's lib_vec4_access element accesses
 * (1 until calibrated; always 1 for maps). *nd gets its dispatches. Returns 0 when
 * the device has no workgroups (PxCost.groups is then -1). */
static int as_run(const PxLaunch *l, int stage, IrCostValues *v, int *nd)
{
    RtStageShape sh;
    /* A CPU device (lavapipe) runs parallel_groups workgroups at once, one
     * per core, and a dispatch ends with its slowest wave: one matmul tile
     * of 128x128 takes one core while the other idles, so a 384x128x128
     * matmul (three tiles, one dispatch) takes two tile times on two
     * cores, not 1.5. The stage's work is scaled by its groups rounded
     * up to whole waves over its groups. A GPU's waves are many and
     * unknown to Vulkan (parallel_groups is a guess there): not modelled. */
    sh.wave = l->c->caps.info.is_cpu ? l->c->caps.parallel_groups : 0;
    l->c->ops->stage_shape(l->k->m->code, l->k->index, stage, l->symv, l->paramv, &sh);
    int sg = l->c->caps.target.subgroup_size;
    v->groups = sh.groups > 0 ? sh.groups : 0;
    if (sh.groups > 0 && sh.wave_groups > sh.groups) {
        static const IrCostMetric work[] = {IR_COST_FLOPS,      IR_COST_INTOPS,   IR_COST_BYTES_READ,
                                            IR_COST_BYTES_WRITTEN, IR_COST_ACCESSES, IR_COST_CHECKED,
                                            IR_COST_UNIFORM};
        for (size_t i = 0; i < sizeof work / sizeof work[0]; i++) v->v[work[i]] *= sh.wave_groups / sh.groups;
    }
    if (sg > 1) v->v[IR_COST_ACCESSES] -= v->v[IR_COST_UNIFORM] * (1 - 1.0 / sg);
    /* an elementwise map's accesses stream: charged at the stream rate,
     * in the gather accesses the roofline prices */
    const IrDeviceProfile *pf = &l->c->profile;
    if (l->k->ir->stages.v[stage].strategy == IR_STRAT_ELEMWISE && pf->stream_accesses_per_s > 0) {
        v->v[IR_COST_ACCESSES] *= pf->accesses_per_s / pf->stream_accesses_per_s;
        v->v[IR_COST_CHECKED] *= pf->accesses_per_s / pf->stream_accesses_per_s;
    }
    if (sh.vec_width > 1) {
        IrLibClass c = (unsigned)v->lib < IR_LIB_N ? v->lib : IR_LIB_NONE;
        double per = sh.vec_width / l->c->profile.lib_vec4_access[c]; /* elements per access's cost */
        v->v[IR_COST_ACCESSES] /= per;
        v->v[IR_COST_CHECKED] /= per;
    }
    if (nd) *nd = sh.dispatches;
    return sh.groups >= 0;
}

int rt_launch_run_values(PxLaunch *l, IrCostValues *out)
{
    const IrKernelCost *kc = l->k->cost;
    if (!kc || !kc->run.n || (!l->prepared && px_launch_prepare(l))) return 0;
    IrCostValues sum = {{0}, IR_LIB_NONE, 0};
    for (int i = 0; i < kc->run.n; i++) {
        IrCostValues v;
        if (!ir_cost_run_values(kc, i, l->symv, NULL, l->paramv, NULL, &v)) return 0;
        as_run(l, i, &v, NULL);
        for (int m = 0; m < IR_COST_N; m++) sum.v[m] += v.v[m];
        sum.groups += v.groups;
        if (v.lib != IR_LIB_NONE) sum.lib = v.lib;
    }
    *out = sum;
    return 1;
}

PxResult px_launch_cost(PxLaunch *l, int stage, PxCost *cost)
{
    if (!l || !cost) return PX_ERR_INVALID;
    cost->flops = cost->int_ops = cost->bytes_read = cost->bytes_written = cost->predicted_ns = -1;
    cost->accesses = cost->checked_accesses = cost->uniform_accesses = cost->groups = -1;
    cost->dispatches = -1;
    PxKernel *k = l->k;
    if (!k->cost) return rt_fail(&l->c->log, PX_ERR_UNSUPPORTED, "no cost figures for %s", k->ir->name);
    if (!l->prepared) {
        PxResult r = px_launch_prepare(l);
        if (r) return r;
    }
    if (stage >= k->ir->stages.n) return PX_ERR_INVALID;
    /* Cost figures describe source statements (the kernel before fusion); a
     * stage that runs several fused statements sums theirs. */
    IrCostValues sum = {{0}, IR_LIB_NONE, 0};
    int found = 0, grouped = 1;
    if (stage < 0) {
        if (!ir_cost_values(k->cost, -1, l->symv, NULL, l->paramv, NULL, &sum)) return PX_ERR_UNBOUND;
        found = 1;
        /* predict from the stages as they run (after fusion) when the
         * analysis has them, else from the source statements */
        int run = k->cost->run.n > 0;
        int nst = run ? k->cost->run.n : k->src->stages.n;
        IrCostValues *sv = calloc((size_t)nst + 1, sizeof *sv);
        if (!sv) return PX_ERR_OUT_OF_MEMORY;
        int ok = 1, nd = 0;
        for (int i = 0; i < nst && ok; i++) {
            ok = run ? ir_cost_run_values(k->cost, i, l->symv, NULL, l->paramv, NULL, &sv[i])
                     : ir_cost_values(k->cost, i, l->symv, NULL, l->paramv, NULL, &sv[i]);
            int d = 0;
            if (ok && run) grouped &= as_run(l, i, &sv[i], &d);
            if (ok && run) sum.groups += sv[i].groups, nd += d;
        }
        /* the dispatches that run at these sizes (a variant that is not
         * selected none), not the strategy's constant */
        if (ok && run) sum.v[IR_COST_DISPATCHES] = nd;
        if (ok) cost->predicted_ns = ir_predict_kernel_s(&sum, sv, nst, &l->c->profile) * 1e9;
        free(sv);
    } else {
        const IrStage *st = &k->ir->stages.v[stage];
        for (int i = 0; i < k->src->stages.n; i++) {
            const IrStage *ss = &k->src->stages.v[i];
            int in = 0;
            for (int j = 0; j < st->locs.n && ss->locs.n; j++) in |= st->locs.v[j].off == ss->locs.v[0].off;
            if (!in) continue;
            IrCostValues v;
            if (!ir_cost_values(k->cost, i, l->symv, NULL, l->paramv, NULL, &v)) return PX_ERR_UNBOUND;
            for (int m = 0; m < IR_COST_N; m++) sum.v[m] += v.v[m];
            if (v.lib != IR_LIB_NONE) sum.lib = v.lib; /* library stages never fuse */
            found = 1;
        }
        if (found) {
            /* dispatches: what really runs for this stage */
            int nd;
            IrCostValues r = sum;
            grouped = as_run(l, stage, &r, &nd);
            sum.v[IR_COST_DISPATCHES] = nd;
            r.v[IR_COST_DISPATCHES] = nd;
            sum.groups = r.groups;
            cost->predicted_ns = ir_predict_stage_s(&r, &l->c->profile) * 1e9;
        }
    }
    if (!found) return PX_OK;
    cost->flops = sum.v[IR_COST_FLOPS];
    cost->int_ops = sum.v[IR_COST_INTOPS];
    cost->bytes_read = sum.v[IR_COST_BYTES_READ];
    cost->bytes_written = sum.v[IR_COST_BYTES_WRITTEN];
    cost->accesses = sum.v[IR_COST_ACCESSES];
    cost->checked_accesses = sum.v[IR_COST_CHECKED];
    cost->uniform_accesses = sum.v[IR_COST_UNIFORM];
    cost->groups = grouped ? sum.groups : -1;
    cost->dispatches = (int)sum.v[IR_COST_DISPATCHES];
    return PX_OK;
}

/* ---- prediction, measurement and correction ------------------------------------------- */

void rt_profile_export(const IrDeviceProfile *p, const char *source, PxProfile *out)
{
    memset(out, 0, sizeof *out);
    out->bytes_per_s = p->bytes_per_s;
    out->flops_per_s = p->flops_per_s;
    out->intops_per_s = p->intops_per_s;
    out->accesses_per_s = p->accesses_per_s;
    out->checked_per_s = p->checked_per_s;
    out->group_s = p->group_s;
    out->dispatch_s = p->dispatch_s;
    out->barrier_s = p->barrier_s;
    out->calibrated = p->calibrated;
    snprintf(out->source, sizeof out->source, "%s", source);
}

void px_context_profile(const PxContext *c, PxProfile *out)
{
    memset(out, 0, sizeof *out);
    if (c) rt_profile_export(&c->profile, c->profile_src, out);
}

/* A completed run teaches its kernel's correction the ratio of the measured
 * whole-launch time to the uncorrected roofline prediction at its sizes,
 * when its times are read (rt_read_times). Runs without a measured time (no
 * timestamps, timing off, times never read) teach nothing, nor does a
 * launch's first run: it is cold (lavapipe compiles shader variants and
 * touches fresh memory on first use; 100x a warm run is common), and the
 * correction is meant for the steady state. */
void rt_learn(PxLaunch *l)
{
    if (!l->k->cost || !(l->total_ns > 0)) return;
    if (l->pred_ns < 0) {
        /* sizes are fixed until the next prepare, so is the prediction */
        PxCost c;
        l->pred_ns = px_launch_cost(l, -1, &c) == PX_OK && c.predicted_ns > 0 ? c.predicted_ns : 0;
    }
    if (l->pred_ns > 0) ir_correction_update(&l->k->corr, l->pred_ns * 1e-9, l->total_ns * 1e-9);
}

PxResult px_launch_predict_ns(PxLaunch *l, int i, double *ns)
{
    if (!l || !ns) return PX_ERR_INVALID;
    *ns = -1;
    if (l->ran) rt_read_times(l); /* the last run teaches the correction first */
    PxCost c;
    PxResult r = px_launch_cost(l, i, &c);
    if (r) return r;
    if (c.predicted_ns < 0) return rt_fail(&l->c->log, PX_ERR_UNSUPPORTED, "no prediction for stage %d of %s", i, l->k->ir->name);
    *ns = ir_correction_apply(&l->k->corr, c.predicted_ns * 1e-9) * 1e9;
    return PX_OK;
}

double px_kernel_correction(const PxKernel *k, int *samples)
{
    if (samples) *samples = k ? k->corr.samples : 0;
    return k ? k->corr.factor : 1.0;
}

void px_kernel_correction_reset(PxKernel *k)
{
    if (k) ir_correction_init(&k->corr);
}
