/* pxbench: the PX side of the benchmark.  Compiles bench/px/NAME.px through
 * the embedding API (include/px.h), runs each kernel on the inputs vkbench
 * uses, verifies the result against the same C references (common.h), and
 * times a warm-up plus N runs from the runtime's per-launch GPU timestamps.
 * The launch-overhead figure is bench/px/tiny.px run and waited for N times
 * through px_launch_run, timed per iteration on the host.
 *
 *   pxbench --px DIR [--runs N] [--launch-iters N] [--device N]
 *           [--only NAME|launch] [--small] [--json FILE]
 *
 * A kernel PX cannot compile or run is reported with the runtime's message
 * and the others go on.  Exit status: 0 all verified, 1 otherwise, 2 usage
 * or no device.
 */
#include "include/px.h"

#include "common.h"

typedef struct PbCtx {
    PxContext *ctx;
    const BenchOpts *o;
    char errbuf[8][512];   /* messages kept for the report, one per benchmark */
    int nerr;
} PbCtx;

/* Records the runtime's message for r and returns 1 when rc is a failure. */
static int pb_fail(PbCtx *c, PxResult rc, const char *what, const char **error)
{
    if (rc == PX_OK)
        return 0;
    char *buf = c->errbuf[c->nerr < 7 ? c->nerr++ : 7];
    snprintf(buf, sizeof c->errbuf[0], "%s: %s: %s", what, px_result_string(rc),
             px_last_error(c->ctx));
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
    *error = buf;
    return 1;
}

/* Compiles DIR/NAME.px and creates a launch of its only kernel. */
static PxModule *pb_load(PbCtx *c, const char *name, PxLaunch **l, const char **error)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.px", c->o->dir, name);
    PxModule *m = NULL;
    char *diags = NULL;
    PxResult rc = px_module_compile_file(c->ctx, path, &m, &diags);
    if (diags) {
        fputs(diags, stderr);
        px_free(diags);
    }
    PxKernel *k = NULL;
    if (pb_fail(c, rc, "compile", error) ||
        pb_fail(c, px_module_kernel(m, NULL, &k), "kernel", error) ||
        pb_fail(c, px_launch_create(k, l), "launch", error)) {
        px_module_destroy(m);
        return NULL;
    }
    return m;
}

/* A device buffer holding host data (NULL: zeros). */
static PxBuffer *pb_buffer(PbCtx *c, PxDtype t, int rank, const int64_t *shape,
                           const void *data, const char **error)
{
    PxBuffer *b = NULL;
    if (pb_fail(c, px_buffer_create(c->ctx, t, rank, shape, &b), "buffer", error))
        return NULL;
    if (data && pb_fail(c, px_buffer_write(b, data, px_buffer_bytes(b)), "upload", error)) {
        px_buffer_destroy(b);
        return NULL;
    }
    return b;
}

/* One run: GPU time from the launch's timestamps (all stages), host wall
 * time around run-and-wait. */
static int pb_run(PbCtx *c, PxLaunch *l, double *gpu_ms, double *wall_ms, const char **error)
{
    double t0 = bench_now_ms();
    if (pb_fail(c, px_launch_run(l), "run", error))
        return -1;
    *wall_ms = bench_now_ms() - t0;
    double ns = px_launch_stage_time_ns(l, -1);
    if (ns < 0) {
        *error = "the runtime gave no GPU time (device without timestamps?)";
        return -1;
    }
    *gpu_ms = ns / 1e6;
    return 0;
}

/* The timed runs after the caller's verified warm-up. */
static int pb_time(PbCtx *c, PxLaunch *l, BenchResult *r)
{
    for (int i = 0; i < r->runs; i++)
        if (pb_run(c, l, &r->gpu_ms[i], &r->wall_ms[i], &r->error) < 0)
            return -1;
    bench_summarise(r);
    return 0;
}

/* Reads a parameter's buffer (bound or created by the launch). */
static int pb_read(PbCtx *c, PxLaunch *l, const char *param, void *out, size_t bytes,
                   const char **error)
{
    PxBuffer *b = px_launch_buffer(l, param);
    if (!b) {
        *error = "the launch has no output buffer";
        return -1;
    }
    if (px_buffer_bytes(b) != bytes) {
        *error = "the output buffer has the wrong size";
        return -1;
    }
    return pb_fail(c, px_buffer_read(b, out, bytes), "read", error) ? -1 : 0;
}

static void bench_saxpy(PbCtx *c, BenchResult *r)
{
    uint32_t n = BENCH_N(c->o->small);
    float a = 2.5f;
    float *x = bench_xmalloc(n * 4ull), *y = bench_xmalloc(n * 4ull),
          *out = bench_xmalloc(n * 4ull);
    snprintf(r->shape, sizeof r->shape, "%u float", n);
    bench_fill_uniform(x, n, -1, 1, 1);
    bench_fill_uniform(y, n, -1, 1, 2);
    int64_t shape[1] = {n};
    PxLaunch *l = NULL;
    PxModule *m = pb_load(c, "saxpy", &l, &r->error);
    PxBuffer *bx = m ? pb_buffer(c, PX_F32, 1, shape, x, &r->error) : NULL;
    PxBuffer *by = bx ? pb_buffer(c, PX_F32, 1, shape, y, &r->error) : NULL;
    double g, w;
    if (by && !pb_fail(c, px_launch_bind(l, "x", bx, NULL), "bind x", &r->error) &&
        !pb_fail(c, px_launch_bind(l, "y", by, NULL), "bind y", &r->error) &&
        !pb_fail(c, px_launch_set_float(l, "a", a), "set a", &r->error) &&
        pb_run(c, l, &g, &w, &r->error) == 0 &&
        pb_read(c, l, "y", out, n * 4ull, &r->error) == 0) {
        r->verified = bench_check_saxpy(a, x, y, out, n, &r->max_err);
        pb_time(c, l, r);
    }
    if (l)
        px_launch_destroy(l);
    px_buffer_destroy(bx);
    px_buffer_destroy(by);
    px_module_destroy(m);
    free(x), free(y), free(out);
}

static void bench_sum(PbCtx *c, BenchResult *r)
{
    uint32_t n = BENCH_N(c->o->small);
    float *x = bench_xmalloc(n * 4ull), got = 0;
    snprintf(r->shape, sizeof r->shape, "%u float", n);
    bench_fill_uniform(x, n, -1, 1, 3);
    int64_t shape[1] = {n};
    PxLaunch *l = NULL;
    PxModule *m = pb_load(c, "sum", &l, &r->error);
    PxBuffer *bx = m ? pb_buffer(c, PX_F32, 1, shape, x, &r->error) : NULL;
    double g, w;
    if (bx && !pb_fail(c, px_launch_bind(l, "x", bx, NULL), "bind x", &r->error) &&
        pb_run(c, l, &g, &w, &r->error) == 0 &&
        pb_read(c, l, "r", &got, 4, &r->error) == 0) {
        r->verified = bench_check_sum(x, n, got, &r->max_err);
        if (pb_time(c, l, r) == 0) {
            /* Coverage, as in vkbench: n ones sum exactly to n. */
            for (uint32_t i = 0; i < n; i++)
                x[i] = 1.0f;
            if (!pb_fail(c, px_buffer_write(bx, x, n * 4ull), "upload", &r->error) &&
                pb_run(c, l, &g, &w, &r->error) == 0 &&
                pb_read(c, l, "r", &got, 4, &r->error) == 0 && got != (float)n) {
                fprintf(stderr, "pxbench: sum of %u ones gave %.1f\n", n, got);
                r->verified = 0;
            }
        }
    }
    if (l)
        px_launch_destroy(l);
    px_buffer_destroy(bx);
    px_module_destroy(m);
    free(x);
}

static void bench_matmul(PbCtx *c, BenchResult *r)
{
    uint32_t n = BENCH_MM(c->o->small);
    size_t nn = (size_t)n * n;
    float *a = bench_xmalloc(nn * 4), *b = bench_xmalloc(nn * 4), *out = bench_xmalloc(nn * 4);
    snprintf(r->shape, sizeof r->shape, "%ux%ux%u", n, n, n);
    bench_fill_uniform(a, nn, -1, 1, 4);
    bench_fill_uniform(b, nn, -1, 1, 5);
    int64_t shape[2] = {n, n};
    PxLaunch *l = NULL;
    PxModule *m = pb_load(c, "matmul", &l, &r->error);
    PxBuffer *ba = m ? pb_buffer(c, PX_F32, 2, shape, a, &r->error) : NULL;
    PxBuffer *bb = ba ? pb_buffer(c, PX_F32, 2, shape, b, &r->error) : NULL;
    double g, w;
    if (bb && !pb_fail(c, px_launch_bind(l, "a", ba, NULL), "bind a", &r->error) &&
        !pb_fail(c, px_launch_bind(l, "b", bb, NULL), "bind b", &r->error) &&
        pb_run(c, l, &g, &w, &r->error) == 0 &&
        pb_read(c, l, "c", out, nn * 4, &r->error) == 0) {
        r->verified = bench_check_matmul(a, b, out, n, &r->max_err);
        pb_time(c, l, r);
    }
    if (l)
        px_launch_destroy(l);
    px_buffer_destroy(ba);
    px_buffer_destroy(bb);
    px_module_destroy(m);
    free(a), free(b), free(out);
}

static void bench_transpose(PbCtx *c, BenchResult *r)
{
    uint32_t m = BENCH_TR(c->o->small), n = m;
    size_t nn = (size_t)m * n;
    float *a = bench_xmalloc(nn * 4), *out = bench_xmalloc(nn * 4);
    snprintf(r->shape, sizeof r->shape, "%ux%u", m, n);
    bench_fill_uniform(a, nn, -1, 1, 8);
    int64_t shape[2] = {m, n};
    PxLaunch *l = NULL;
    PxModule *mod = pb_load(c, "transpose", &l, &r->error);
    PxBuffer *ba = mod ? pb_buffer(c, PX_F32, 2, shape, a, &r->error) : NULL;
    double g, w;
    if (ba && !pb_fail(c, px_launch_bind(l, "a", ba, NULL), "bind a", &r->error) &&
        pb_run(c, l, &g, &w, &r->error) == 0 &&
        pb_read(c, l, "b", out, nn * 4, &r->error) == 0) {
        r->verified = bench_check_transpose(a, out, m, n, &r->max_err);
        pb_time(c, l, r);
    }
    if (l)
        px_launch_destroy(l);
    px_buffer_destroy(ba);
    px_module_destroy(mod);
    free(a), free(out);
}

/* PARALLEL_MATMUL (bench/px/matmul.px) at any size, against matmul_any. */
static void bench_gemm(PbCtx *c, const BenchGemm *g, BenchResult *r)
{
    int sm = c->o->small;
    uint32_t m = sm ? g->sm : g->m, k = sm ? g->sk : g->k, n = sm ? g->sn : g->n;
    size_t na = (size_t)m * k, nb = (size_t)k * n, nc = (size_t)m * n;
    float *a = bench_xmalloc(na * 4), *b = bench_xmalloc(nb * 4), *out = bench_xmalloc(nc * 4);
    snprintf(r->shape, sizeof r->shape, "%ux%ux%u", m, k, n);
    bench_fill_uniform(a, na, -1, 1, 4);
    bench_fill_uniform(b, nb, -1, 1, 5);
    int64_t sa[2] = {m, k}, sb[2] = {k, n};
    PxLaunch *l = NULL;
    PxModule *mod = pb_load(c, "matmul", &l, &r->error);
    PxBuffer *ba = mod ? pb_buffer(c, PX_F32, 2, sa, a, &r->error) : NULL;
    PxBuffer *bb = ba ? pb_buffer(c, PX_F32, 2, sb, b, &r->error) : NULL;
    double gm, w;
    if (bb && !pb_fail(c, px_launch_bind(l, "a", ba, NULL), "bind a", &r->error) &&
        !pb_fail(c, px_launch_bind(l, "b", bb, NULL), "bind b", &r->error) &&
        pb_run(c, l, &gm, &w, &r->error) == 0 &&
        pb_read(c, l, "c", out, nc * 4, &r->error) == 0) {
        r->verified = bench_check_gemm(a, b, out, m, k, n, &r->max_err);
        pb_time(c, l, r);
    }
    if (l)
        px_launch_destroy(l);
    px_buffer_destroy(ba);
    px_buffer_destroy(bb);
    px_module_destroy(mod);
    free(a), free(b), free(out);
}

static void bench_softmax(PbCtx *c, BenchResult *r)
{
    uint32_t rows = BENCH_SM_ROWS(c->o->small), cols = BENCH_SM_COLS;
    size_t nn = (size_t)rows * cols;
    float *a = bench_xmalloc(nn * 4), *out = bench_xmalloc(nn * 4);
    snprintf(r->shape, sizeof r->shape, "%ux%u", rows, cols);
    bench_fill_uniform(a, nn, -10, 10, 6);
    int64_t shape[2] = {rows, cols};
    PxLaunch *l = NULL;
    PxModule *m = pb_load(c, "softmax", &l, &r->error);
    PxBuffer *ba = m ? pb_buffer(c, PX_F32, 2, shape, a, &r->error) : NULL;
    double g, w;
    if (ba && !pb_fail(c, px_launch_bind(l, "a", ba, NULL), "bind a", &r->error) &&
        pb_run(c, l, &g, &w, &r->error) == 0 &&
        pb_read(c, l, "b", out, nn * 4, &r->error) == 0) {
        r->verified = bench_check_softmax(a, out, rows, cols, &r->max_err);
        pb_time(c, l, r);
    }
    if (l)
        px_launch_destroy(l);
    px_buffer_destroy(ba);
    px_module_destroy(m);
    free(a), free(out);
}

static void bench_scan(PbCtx *c, BenchResult *r)
{
    uint32_t n = BENCH_N(c->o->small);
    int32_t *x = bench_xmalloc(n * 4ull), *out = bench_xmalloc(n * 4ull);
    snprintf(r->shape, sizeof r->shape, "%u int", n);
    bench_fill_ints(x, n, 7);
    int64_t shape[1] = {n};
    PxLaunch *l = NULL;
    PxModule *m = pb_load(c, "scan", &l, &r->error);
    PxBuffer *bx = m ? pb_buffer(c, PX_I32, 1, shape, x, &r->error) : NULL;
    double g, w;
    if (bx && !pb_fail(c, px_launch_bind(l, "x", bx, NULL), "bind x", &r->error) &&
        pb_run(c, l, &g, &w, &r->error) == 0 &&
        pb_read(c, l, "y", out, n * 4ull, &r->error) == 0) {
        r->verified = bench_check_scan(x, out, n, &r->max_err);
        pb_time(c, l, r);
    }
    if (l)
        px_launch_destroy(l);
    px_buffer_destroy(bx);
    px_module_destroy(m);
    free(x), free(out);
}

/* Per-launch overhead through the API: px_launch_run (submit + wait) of a
 * one-element kernel, per-iteration host time, after a warm-up. */
static void bench_launch(PbCtx *c, BenchLaunch *res)
{
    res->iters = c->o->launch_iters;
    PxLaunch *l = NULL;
    PxModule *m = pb_load(c, "tiny", &l, &res->error);
    if (!m)
        return;
    /* like the raw loop, which writes no timestamps: a run is then just a
     * submit and a fence wait (px.h, px_launch_set_timing) */
    if (pb_fail(c, px_launch_set_timing(l, 0), "timing", &res->error)) {
        px_launch_destroy(l);
        px_module_destroy(m);
        return;
    }
    int warm = res->iters / 10 + 1;
    double *t = bench_xmalloc(sizeof *t * (size_t)res->iters);
    int i;
    for (i = -warm; i < res->iters; i++) {
        double t0 = bench_now_ms();
        if (pb_fail(c, px_launch_run(l), "run", &res->error))
            break;
        if (i >= 0)
            t[i] = (bench_now_ms() - t0) * 1e3;
    }
    if (i == res->iters) {
        res->median_us = bench_median(t, res->iters);
        res->min_us = t[0];
        float got = 0;
        res->verified = pb_read(c, l, "o", &got, 4, &res->error) == 0 && got == 1.0f;
    }
    free(t);
    if (l)
        px_launch_destroy(l);
    px_module_destroy(m);
}

typedef struct PbBench {
    const char *name;
    void (*run)(PbCtx *, BenchResult *);
} PbBench;

/* Same set and order as vkbench. */
static const PbBench pb_benches[] = {
    {"saxpy", bench_saxpy},     /* PARALLEL_MAP */
    {"sum", bench_sum},         /* PARALLEL_REDUCE SUM */
    {"matmul", bench_matmul},   /* PARALLEL_MATMUL */
    {"softmax", bench_softmax}, /* PARALLEL_SOFTMAX */
    {"scan", bench_scan},       /* PARALLEL_SCAN SUM */
    {"transpose", bench_transpose}, /* PARALLEL_TRANSPOSE */
};
#define PB_NBENCH ((int)(sizeof pb_benches / sizeof pb_benches[0]))

int main(int argc, char **argv)
{
    BenchOpts o;
    if (bench_parse(argc, argv, "--px", &o) < 0)
        return 2;
    PxConfig cfg;
    px_config_default(&cfg);
    cfg.device_index = o.device;
    PbCtx c = {.o = &o};
    char *err = NULL;
    if (px_context_create(&cfg, &c.ctx, &err) != PX_OK) {
        fprintf(stderr, "pxbench: %s\n", err ? err : "no context");
        px_free(err);
        return 2;
    }
    PxDeviceInfo info;
    px_device_info(c.ctx, &info);
    printf("pxbench device: %s (subgroup %u)\n", info.name, info.subgroup_size);
    BenchResult res[PB_NBENCH + BENCH_NGEMM];
    int nr = 0, bad = 0;
    for (int i = 0; i < PB_NBENCH; i++) {
        if (!bench_selected(&o, pb_benches[i].name))
            continue;
        BenchResult *r = &res[nr++];
        memset(r, 0, sizeof *r);
        r->name = pb_benches[i].name;
        r->runs = o.runs;
        pb_benches[i].run(&c, r);
        bad |= r->error || !r->verified;
        bench_print(r);
    }
    for (int i = 0; i < BENCH_NGEMM; i++) {
        if (!bench_selected(&o, bench_gemms[i].name))
            continue;
        BenchResult *r = &res[nr++];
        memset(r, 0, sizeof *r);
        r->name = bench_gemms[i].name;
        r->runs = o.runs;
        bench_gemm(&c, &bench_gemms[i], r);
        bad |= r->error || !r->verified;
        bench_print(r);
    }
    BenchLaunch launch = {0};
    int have_launch = bench_selected(&o, "launch");
    if (have_launch) {
        bench_launch(&c, &launch);
        bad |= launch.error || !launch.verified;
        if (launch.error)
            printf("launch   FAILED: %s\n", launch.error);
        else
            printf("launch   %-16d median %9.3f us  min %9.3f us  %s\n", launch.iters,
                   launch.median_us, launch.min_us, launch.verified ? "verified" : "WRONG");
    }
    if (o.json && bench_write_json(o.json, "pxbench", info.name, info.subgroup_size, o.runs,
                                   res, nr, have_launch ? &launch : NULL) != 0) {
        fprintf(stderr, "pxbench: cannot write %s\n", o.json);
        bad = 1;
    }
    px_context_destroy(c.ctx);
    return bad ? 1 : 0;
}
