/* calibrate.c — measures a device for the roofline prediction (docs/COST.md,
 * "Calibration"): runs each micro-kernel of ir_calib_kernels (library
 * classes at two sizes, row classes also at many rows) through the public
 * embedding API, and fits and
 * saves the profile. Pure client of px.h plus the cost library; it changes
 * nothing in the context (the next context loads the file).
 *
 * Each figure is the median device time of `runs` runs after a cold one,
 * and the runs are interleaved (one untimed and one timed run of every
 * micro-kernel per round):
 * on a shared machine, load comes in bursts of seconds, and a burst then
 * slows one run of every kernel instead of every run of one kernel. The
 * median, not the best run, because predictions are for the runs people
 * get, and the accuracy benchmark measures medians too. */
#include "ir/ir.h"
#include "rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One micro-kernel at one size, compiled and bound. */
typedef struct CalRun {
    const IrCalibKernel *ck;
    int64_t size;
    int64_t rows;          /* row classes: the rows bound; else 0 */
    PxModule *m;
    PxLaunch *l;
    double *t;             /* measured ns of each round */
    int nt;
} CalRun;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static PxResult setup(PxContext *ctx, CalRun *c, int runs)
{
    PxKernel *k = NULL;
    const IrCalibKernel *ck = c->ck;
    PxResult r = px_module_compile(ctx, ck->source, strlen(ck->source), ck->name, &c->m, NULL);
    if (r == PX_OK) r = px_module_kernel(c->m, ck->name, &k);
    if (r == PX_OK) r = px_launch_create(k, &c->l);
    if (r == PX_OK) r = px_launch_set_size(c->l, ck->sym, c->size, "calibration");
    if (r == PX_OK && ck->rows_sym) r = px_launch_set_size(c->l, ck->rows_sym, c->rows, "calibration");
    if (r == PX_OK && !(c->t = malloc(sizeof *c->t * (size_t)runs)))
        r = rt_fail(&ctx->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    /* the cold run pays pipeline creation and first-touch costs */
    if (r == PX_OK) r = px_launch_run(c->l);
    return r;
}

/* The sample of a measured micro-kernel; PX_ERR_UNSUPPORTED when the device
 * gave no times. */
static PxResult sample(CalRun *c, IrCalibSample *out)
{
    if (!c->nt) return PX_ERR_UNSUPPORTED;
    qsort(c->t, (size_t)c->nt, sizeof *c->t, cmp_double);
    double med = c->nt % 2 ? c->t[c->nt / 2] : 0.5 * (c->t[c->nt / 2 - 1] + c->t[c->nt / 2]);
    PxCost cost;
    PxResult r = px_launch_cost(c->l, -1, &cost);
    if (r) return r;
    memset(out, 0, sizeof *out);
    out->what = c->ck->what;
    out->size = c->size;
    out->rows = c->rows;
    out->seconds = med * 1e-9;
    out->cost.v[IR_COST_FLOPS] = cost.flops;
    out->cost.v[IR_COST_INTOPS] = cost.int_ops;
    out->cost.v[IR_COST_BYTES_READ] = cost.bytes_read;
    out->cost.v[IR_COST_BYTES_WRITTEN] = cost.bytes_written;
    out->cost.v[IR_COST_ACCESSES] = cost.accesses;
    out->cost.v[IR_COST_CHECKED] = cost.checked_accesses;
    out->cost.v[IR_COST_UNIFORM] = cost.uniform_accesses;
    out->cost.groups = cost.groups > 0 ? cost.groups : 0;
    out->cost.v[IR_COST_DISPATCHES] = cost.dispatches;
    /* A library class is fitted on the figures its stage runs, which the
     * prediction then scales (whole matmul tiles, a vec4 variant's
     * accesses); the other micro-kernels keep the statement's figures
     * their rates are defined on. */
    IrCostValues run;
    if (c->ck->lib != IR_LIB_NONE && rt_launch_run_values(c->l, &run))
        for (int m = 0; m < IR_COST_N; m++)
            if (m != IR_COST_DISPATCHES) out->cost.v[m] = run.v[m];
    out->cost.lib = IR_LIB_NONE; /* the fit wants the plain roofline */
    return PX_OK;
}

PxResult px_calibrate(PxContext *ctx, int runs, PxProfile *out)
{
    if (!ctx || !out || runs < 1) return PX_ERR_INVALID;
    PxDeviceInfo di;
    px_device_info(ctx, &di);
    CalRun c[3 * IR_CALIB_N];
    int n = 0;
    memset(c, 0, sizeof c);
    for (int i = 0; i < IR_CALIB_N; i++) {
        const IrCalibKernel *ck = &ir_calib_kernels[i];
        if (ck->small) c[n].ck = ck, c[n].rows = ck->rows, c[n++].size = ck->small;
        c[n].ck = ck, c[n].rows = ck->rows, c[n++].size = ck->size;
        if (ck->many_rows) c[n].ck = ck, c[n].rows = ck->many_rows, c[n++].size = ck->small;
    }
    PxResult r = PX_OK;
    for (int i = 0; i < n && r == PX_OK; i++) r = setup(ctx, &c[i], runs);
    for (int round = 0; round < runs && r == PX_OK; round++)
        for (int i = 0; i < n && r == PX_OK; i++) {
            /* an untimed run first: right after another kernel, lavapipe's
             * workers and the caches are in that kernel's state, and a tiny
             * kernel then measures several times its steady-state time */
            r = px_launch_run(c[i].l);
            if (r == PX_OK) r = px_launch_run(c[i].l);
            double ns = r == PX_OK ? px_launch_stage_time_ns(c[i].l, -1) : -1;
            if (ns > 0) c[i].t[c[i].nt++] = ns;
        }
    IrCalibSample s[3 * IR_CALIB_N];
    int ns = 0;
    for (int i = 0; i < n && r == PX_OK; i++) {
        PxResult q = sample(&c[i], &s[ns]);
        if (q == PX_OK) ns++;
        else if (q != PX_ERR_UNSUPPORTED) r = q; /* no times: nothing to fit */
    }
    for (int i = 0; i < n; i++) {
        px_launch_destroy(c[i].l);
        px_module_destroy(c[i].m);
        free(c[i].t);
    }
    if (r) return r;
    IrDeviceProfile p;
    ir_profile_default(&p);
    RtLog *log = &ctx->log;
    if (ir_profile_fit(&p, di.name, s, ns) == 0)
        return rt_fail(log, PX_ERR_UNSUPPORTED, "%s gave no timestamps to measure with", di.name);
    char path[1024];
    if (!ir_profile_path(path, sizeof path, di.name))
        return rt_fail(log, PX_ERR_IO, "no place for the profile: set XDG_CACHE_HOME or HOME");
    if (ir_profile_save(&p, path) != 0) return rt_fail(log, PX_ERR_IO, "cannot write the profile %s", path);
    rt_profile_export(&p, path, out);
    return PX_OK;
}
