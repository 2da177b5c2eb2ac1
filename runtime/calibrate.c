/* calibrate.c — measures a device for the roofline prediction (docs/COST.md,
 * "Calibration"): runs each micro-kernel of rt_calib_kernels (library
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

/* ---- the micro-kernels ------------------------------------------------------- */


/* The library classes, each as one statement over one size symbol, run at
 * `small` (where the fixed cost shows) and at `size` (where the work does).
 * The sizes are deliberately none of the points `make bench-cost` sweeps
 * (powers of 4, and 32..512 for matmul), so that the accuracy benchmark
 * never checks a prediction at a size its calibration ran; the large
 * matmul and transpose sizes are multiples of the tiles (384 = 3 x 128),
 * since a ragged edge measures the edge code, not the primitive. */
#define CAL_LIB(what, name, params, stmt, big, little)                   \
    [what] = {what, name,                                                     \
              "GPU_KERNEL " name "\n" params "GPU_THREAD_CODE:\n    " stmt "\nGPU_END\n", \
              "N", big, little, NULL, 0, 0}
/* A row class: 64 rows of N at both sizes, and 384 rows of the small size
 * (the benchmark sweeps powers of two and of four rows, never 384). */
#define CAL_ROWS(what, name, params, stmt, big, little)                  \
    [what] = {what, name,                                                     \
              "GPU_KERNEL " name "\n" params "GPU_THREAD_CODE:\n    " stmt "\nGPU_END\n", \
              "N", big, little, "R", 64, 384}

const RtCalibKernel rt_calib_kernels[IR_CALIB_N] = {
    [IR_CALIB_DISPATCH] = {IR_CALIB_DISPATCH, "px_cal_dispatch",
                           "GPU_KERNEL px_cal_dispatch\n"
                           "GPU_PARAM out float[N]\n"
                           "GPU_THREAD_CODE:\n"
                           "    PARALLEL_FILL 1.0 -> out\n"
                           "GPU_END\n",
                           "N", 1},
    /* Reversals are not elementwise, so the eight stages cannot fuse: seven
     * barriers, so that one noisy run does not decide the figure. */
    [IR_CALIB_BARRIER] = {IR_CALIB_BARRIER, "px_cal_barrier",
                          "GPU_KERNEL px_cal_barrier\n"
                          "GPU_PARAM a float[N]\n"
                          "GPU_PARAM b float[N]\n"
                          "GPU_THREAD_CODE:\n"
                          "    PARALLEL_FILL 1.0 -> a\n"
                          "    PARALLEL_FOR i IN 0..N {\n        b[N - 1 - i] = a[i]\n    }\n"
                          "    PARALLEL_FOR i IN 0..N {\n        a[N - 1 - i] = b[i]\n    }\n"
                          "    PARALLEL_FOR i IN 0..N {\n        b[N - 1 - i] = a[i]\n    }\n"
                          "    PARALLEL_FOR i IN 0..N {\n        a[N - 1 - i] = b[i]\n    }\n"
                          "    PARALLEL_FOR i IN 0..N {\n        b[N - 1 - i] = a[i]\n    }\n"
                          "    PARALLEL_FOR i IN 0..N {\n        a[N - 1 - i] = b[i]\n    }\n"
                          "    PARALLEL_FOR i IN 0..N {\n        b[N - 1 - i] = a[i]\n    }\n"
                          "GPU_END\n",
                          "N", 1},
    /* An elementwise map, the form most streaming kernels take (a plain
     * COPY lowers to a slower loop on lavapipe and understates the rate):
     * 36 MiB of traffic, beyond the caches of the devices we know. */
    [IR_CALIB_BANDWIDTH] = {IR_CALIB_BANDWIDTH, "px_cal_bandwidth",
                            "GPU_KERNEL px_cal_bandwidth\n"
                            "GPU_PARAM a float[N]\n"
                            "GPU_PARAM b float[N]\n"
                            "GPU_PARAM c float[N]\n"
                            "GPU_THREAD_CODE:\n"
                            "    PARALLEL_MAP a b -> c : a + b\n"
                            "GPU_END\n",
                            "N", 3 << 20},
    /* Two independent fma chains per invocation keep the ALUs busy. */
    [IR_CALIB_FLOPS] = {IR_CALIB_FLOPS, "px_cal_flops",
                        "GPU_KERNEL px_cal_flops\n"
                        "GPU_PARAM a float[N]\n"
                        "GPU_PARAM b float[N]\n"
                        "GPU_THREAD_CODE:\n"
                        "    PARALLEL_FOR i IN 0..N {\n"
                        "        var x = a[i]\n"
                        "        var y = a[i] + 1.0\n"
                        "        for k IN 0..256 {\n"
                        "            x = fma(x, 0.9999, 0.0001)\n"
                        "            y = fma(y, 0.9999, 0.0001)\n"
                        "        }\n"
                        "        b[i] = x + y\n"
                        "    }\n"
                        "GPU_END\n",
                        "N", 1 << 18},
    [IR_CALIB_INTOPS] = {IR_CALIB_INTOPS, "px_cal_intops",
                         "GPU_KERNEL px_cal_intops\n"
                         "GPU_PARAM a uint[N]\n"
                         "GPU_PARAM b uint[N]\n"
                         "GPU_THREAD_CODE:\n"
                         "    PARALLEL_FOR i IN 0..N {\n"
                         "        var x = a[i]\n"
                         "        var y = a[i] ^ 12345u\n"
                         "        for k IN 0..256 {\n"
                         "            x = x * 1664525u + 1013904223u\n"
                         "            y = y * 22695477u + 1u\n"
                         "        }\n"
                         "        b[i] = x ^ y\n"
                         "    }\n"
                         "GPU_END\n",
                         "N", 1 << 18},
    /* Loads whose indices vary across invocations, from tables small
     * enough to stay in cache: what an access costs apart from memory
     * traffic (on a CPU rasteriser, a lane-by-lane gather). Four loads per
     * trip keep loop control from deciding the figure; every index is
     * provably in range, so none is checked. */
    [IR_CALIB_ACCESS] = {IR_CALIB_ACCESS, "px_cal_access",
                         "GPU_KERNEL px_cal_access\n"
                         "GPU_PARAM t0 float[16][64]\n"
                         "GPU_PARAM t1 float[16][64]\n"
                         "GPU_PARAM t2 float[16][64]\n"
                         "GPU_PARAM t3 float[16][64]\n"
                         "GPU_PARAM out float[N][64]\n"
                         "GPU_THREAD_CODE:\n"
                         "    PARALLEL_FOR i IN 0..N, j IN 0..64 {\n"
                         "        var acc = 0.0\n"
                         "        for k IN 0..16 {\n"
                         "            acc += t0[k][j] + t1[k][j] + t2[k][j] + t3[k][j]\n"
                         "        }\n"
                         "        out[i][j] = acc\n"
                         "    }\n"
                         "GPU_END\n",
                         "N", 3000},
    /* The same loads through an index read from a buffer, which no range
     * analysis can prove in range: each carries its check. (The buffer is
     * zero-filled, so every check passes and every load happens.) */
    [IR_CALIB_CHECKED] = {IR_CALIB_CHECKED, "px_cal_checked",
                          "GPU_KERNEL px_cal_checked\n"
                          "GPU_PARAM t0 float[16][64]\n"
                          "GPU_PARAM t1 float[16][64]\n"
                          "GPU_PARAM t2 float[16][64]\n"
                          "GPU_PARAM t3 float[16][64]\n"
                          "GPU_PARAM ix uint[64]\n"
                          "GPU_PARAM out float[N][64]\n"
                          "GPU_THREAD_CODE:\n"
                          "    PARALLEL_FOR i IN 0..N, j IN 0..64 {\n"
                          "        let c = ix[j]\n"
                          "        var acc = 0.0\n"
                          "        for k IN 0..16 {\n"
                          "            acc += t0[k][c] + t1[k][c] + t2[k][c] + t3[k][c]\n"
                          "        }\n"
                          "        out[i][j] = acc\n"
                          "    }\n"
                          "GPU_END\n",
                          "N", 3000},
    /* One store per invocation: the cost of a workgroup of thread code
     * (start, invocation loop, finish) is what remains. */
    [IR_CALIB_GROUPS] = {IR_CALIB_GROUPS, "px_cal_groups",
                         "GPU_KERNEL px_cal_groups\n"
                         "GPU_PARAM out float[N]\n"
                         "GPU_THREAD_CODE:\n"
                         "    PARALLEL_FOR i IN 0..N {\n"
                         "        out[i] = 1.0\n"
                         "    }\n"
                         "GPU_END\n",
                         "N", 3 << 18},
    CAL_LIB(IR_CALIB_REDUCE, "px_cal_reduce", "GPU_PARAM x float[N]\nGPU_PARAM s float[1]\n",
            "PARALLEL_REDUCE SUM x -> s", 1 << 21, 1 << 9),
    CAL_ROWS(IR_CALIB_REDUCE_ROWS, "px_cal_reduce_rows",
             "GPU_PARAM x float[R][N]\nGPU_PARAM r float[R]\n", "PARALLEL_REDUCE SUM x -> r", 1 << 15, 8),
    CAL_LIB(IR_CALIB_SCAN, "px_cal_scan", "GPU_PARAM x float[N]\nGPU_PARAM y float[N]\n",
            "PARALLEL_SCAN SUM x -> y", 1 << 19, 1 << 9),
    CAL_ROWS(IR_CALIB_SCAN_ROWS, "px_cal_scan_rows",
             "GPU_PARAM x float[R][N]\nGPU_PARAM y float[R][N]\n", "PARALLEL_SCAN SUM x -> y", 1 << 13, 8),
    CAL_ROWS(IR_CALIB_SOFTMAX, "px_cal_softmax",
             "GPU_PARAM x float[R][N]\nGPU_PARAM y float[R][N]\n", "PARALLEL_SOFTMAX x -> y", 1 << 13, 8),
    CAL_LIB(IR_CALIB_TRANSPOSE, "px_cal_transpose",
            "GPU_PARAM x float[N][N]\nGPU_PARAM t float[N][N]\n", "PARALLEL_TRANSPOSE x -> t", 768, 16),
    CAL_LIB(IR_CALIB_MATMUL, "px_cal_matmul",
            "GPU_PARAM a float[N][N]\nGPU_PARAM b float[N][N]\nGPU_PARAM c float[N][N]\n",
            "PARALLEL_MATMUL a b -> c", 384, 16),
};

/* The measures also run at their size plus one (IR_CALIB_AT_SCALAR),
 * where their scalar variant runs: for lib_vec4_access a 1-D scan's data
 * passes, softmax rows of 8193, a 769 x 769 transpose, each spending most
 * of its time on accesses; for stream_accesses_per_s the bandwidth map. */
static int cal_has_scalar(IrCalibMeasure w)
{
    return w == IR_CALIB_SCAN || w == IR_CALIB_SOFTMAX || w == IR_CALIB_TRANSPOSE || w == IR_CALIB_BANDWIDTH;
}

/* One micro-kernel at one size, compiled and bound. */
typedef struct CalRun {
    const RtCalibKernel *ck;
    int64_t size;
    IrCalibPoint at;
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
    const RtCalibKernel *ck = c->ck;
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
/* The median of c's times (c->nt > 0), in ns. */
static double median(CalRun *c)
{
    qsort(c->t, (size_t)c->nt, sizeof *c->t, cmp_double);
    return c->nt % 2 ? c->t[c->nt / 2] : 0.5 * (c->t[c->nt / 2 - 1] + c->t[c->nt / 2]);
}

static PxResult sample(CalRun *c, IrCalibSample *out)
{
    if (!c->nt) return PX_ERR_UNSUPPORTED;
    double med = median(c);
    PxCost cost;
    PxResult r = px_launch_cost(c->l, -1, &cost);
    if (r) return r;
    memset(out, 0, sizeof *out);
    out->what = c->ck->what;
    out->size = c->size;
    out->rows = c->rows;
    out->at = c->at;
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
    if (ir_calib_lib[c->ck->what] != IR_LIB_NONE && rt_launch_run_values(c->l, &run))
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
    CalRun c[4 * IR_CALIB_N];
    int n = 0;
    memset(c, 0, sizeof c);
    for (int i = 0; i < IR_CALIB_N; i++) {
        const RtCalibKernel *ck = &rt_calib_kernels[i];
        if (ck->small) c[n].ck = ck, c[n].rows = ck->rows, c[n].at = IR_CALIB_AT_SMALL, c[n++].size = ck->small;
        c[n].ck = ck, c[n].rows = ck->rows, c[n].at = IR_CALIB_AT_SIZE, c[n++].size = ck->size;
        if (ck->many_rows)
            c[n].ck = ck, c[n].rows = ck->many_rows, c[n].at = IR_CALIB_AT_MANY_ROWS, c[n++].size = ck->small;
        if (cal_has_scalar(ck->what))
            c[n].ck = ck, c[n].rows = ck->rows, c[n].at = IR_CALIB_AT_SCALAR, c[n++].size = ck->size + 1;
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
    /* The library samples take their run figures (sample, as_run) with
     * the vec4 access this device is measured to have, as ir_profile_fit
     * will find it from the same times and as predictions will use it;
     * ctx's own profile is put back afterwards. */
    IrDeviceProfile keep = ctx->profile;
    double tv[IR_CALIB_N][3]; /* each measure at small, size, size + 1 */
    memset(tv, 0, sizeof tv);
    for (int i = 0; i < n; i++)
        if (cal_has_scalar(c[i].ck->what) && c[i].nt && c[i].at != IR_CALIB_AT_MANY_ROWS)
            tv[c[i].ck->what][c[i].at == IR_CALIB_AT_SMALL ? 0 : c[i].at == IR_CALIB_AT_SIZE ? 1 : 2] = median(&c[i]);
    for (int w = 0; w < IR_CALIB_N; w++)
        if (cal_has_scalar(w) && ir_calib_lib[w] != IR_LIB_NONE)
            ctx->profile.lib_vec4_access[ir_calib_lib[w]] = ir_calib_vec4_access(tv[w][0], tv[w][1], tv[w][2]);
    IrCalibSample s[4 * IR_CALIB_N];
    int ns = 0;
    for (int i = 0; i < n && r == PX_OK; i++) {
        PxResult q = sample(&c[i], &s[ns]);
        if (q == PX_OK) ns++;
        else if (q != PX_ERR_UNSUPPORTED) r = q; /* no times: nothing to fit */
    }
    ctx->profile = keep;
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
    if (!rt_profile_path(path, sizeof path, di.name))
        return rt_fail(log, PX_ERR_IO, "no place for the profile: set XDG_CACHE_HOME or HOME");
    if (rt_profile_save(&p, path) != 0) return rt_fail(log, PX_ERR_IO, "cannot write the profile %s", path);
    rt_profile_export(&p, path, out);
    return PX_OK;
}
