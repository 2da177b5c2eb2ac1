/* calibrate.c — measures a device for the roofline prediction (docs/COST.md,
 * "Calibration"): runs each micro-kernel of ir_calib_kernels through the
 * public embedding API, takes the best device time of `runs` runs, and fits
 * and saves the profile. Pure client of px.h plus the cost library; it
 * changes nothing in the context (the next context loads the file). */
#include "ir/ir.h"
#include "rt.h"

#include <stdio.h>
#include <string.h>

/* Best measured seconds of one micro-kernel and its cost at the size run.
 * Returns PX_OK, or the failing call's result. */
static PxResult measure(PxContext *ctx, const IrCalibKernel *ck, int64_t size, int runs, IrCalibSample *out)
{
    PxModule *m = NULL;
    PxKernel *k = NULL;
    PxLaunch *l = NULL;
    PxResult r = px_module_compile(ctx, ck->source, strlen(ck->source), ck->name, &m, NULL);
    if (r == PX_OK) r = px_module_kernel(m, ck->name, &k);
    if (r == PX_OK) r = px_launch_create(k, &l);
    if (r == PX_OK) r = px_launch_set_size(l, ck->sym, size, "calibration");
    double best = -1;
    /* the first run pays pipeline creation and first-touch costs */
    for (int i = 0; r == PX_OK && i <= runs; i++) {
        r = px_launch_run(l);
        double ns = r == PX_OK ? px_launch_stage_time_ns(l, -1) : -1;
        if (i > 0 && ns > 0 && (best < 0 || ns < best)) best = ns;
    }
    PxCost c;
    if (r == PX_OK) r = px_launch_cost(l, -1, &c);
    if (r == PX_OK && best <= 0) r = PX_ERR_UNSUPPORTED;
    if (r == PX_OK) {
        memset(out, 0, sizeof *out);
        out->what = ck->what;
        out->size = size;
        out->seconds = best * 1e-9;
        out->cost.v[IR_COST_FLOPS] = c.flops;
        out->cost.v[IR_COST_INTOPS] = c.int_ops;
        out->cost.v[IR_COST_BYTES_READ] = c.bytes_read;
        out->cost.v[IR_COST_BYTES_WRITTEN] = c.bytes_written;
        out->cost.v[IR_COST_DISPATCHES] = c.dispatches;
    }
    px_launch_destroy(l);
    px_module_destroy(m);
    return r;
}

PxResult rt_calibrate(PxContext *ctx, int runs, PxProfile *out)
{
    if (!ctx || !out || runs < 1) return PX_ERR_INVALID;
    PxDeviceInfo di;
    px_device_info(ctx, &di);
    IrCalibSample s[2 * IR_CALIB_N];
    int n = 0;
    for (int i = 0; i < IR_CALIB_N; i++) {
        const IrCalibKernel *ck = &ir_calib_kernels[i];
        for (int big = 0; big < 2; big++) {
            if (!big && !ck->small) continue;
            PxResult r = measure(ctx, ck, big ? ck->size : ck->small, runs, &s[n]);
            if (r == PX_ERR_UNSUPPORTED) continue; /* no timestamps: nothing to fit */
            if (r != PX_OK) return r;
            n++;
        }
    }
    IrDeviceProfile p;
    ir_profile_default(&p);
    if (ir_profile_fit(&p, di.name, s, n) == 0) return PX_ERR_UNSUPPORTED;
    char path[1024];
    if (!ir_profile_path(path, sizeof path, di.name) || ir_profile_save(&p, path) != 0) return PX_ERR_IO;
    memset(out, 0, sizeof *out);
    out->bytes_per_s = p.bytes_per_s;
    out->flops_per_s = p.flops_per_s;
    out->intops_per_s = p.intops_per_s;
    out->dispatch_s = p.dispatch_s;
    out->barrier_s = p.barrier_s;
    out->calibrated = p.calibrated;
    snprintf(out->source, sizeof out->source, "%s", path);
    return PX_OK;
}
