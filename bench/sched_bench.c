/* sched_bench.c — the scheduler's figures on one device, in one run
 * (`make bench-sched`; docs/SCHEDULER.md and docs/PERFORMANCE.md):
 *
 *   shares    3 VMs at 50/30/20 keep BATCH and THROUGHPUT kernels queued
 *             for SECS seconds: each VM's share of the device time over the
 *             run and per 100 ms window (error median, p90, max), and
 *             Jain's index of achieved/target.
 *   lending   the same with VM 3 idle, then waking: the split of the other
 *             two while it sleeps, and how long after it wakes its share is
 *             within 5 points of its target.
 *   latency   a REALTIME VM submits a small kernel every 10 ms beside a
 *             BATCH VM running large matmuls back to back: the RT launch's
 *             p50/p99 (submit to done) against the same kernel alone, the
 *             switch latency (submit to its first slice) and the BATCH VM's
 *             device share against its own share.
 *   overhead  one VM alone: a small kernel through the scheduler against
 *             px_launch_run on the same context (medians, ratio).
 *             SCHED_ONLY=overhead runs only this part.
 *
 * Prints a table and writes JSON to argv[1] (default sched.json). No
 * figure here is a pass/fail: goals are reported. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pxsched.h"

static PxSched *S;
static PxContext *ctx;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double q)
{
    if (!n) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    int k = (int)ceil(q * n);
    return v[k < 1 ? 0 : k - 1];
}

static void die(const char *what)
{
    fprintf(stderr, "sched_bench: %s: %s\n", what, px_sched_last_error());
    exit(1);
}

static const char *MATMUL = "GPU_KERNEL mm\nGPU_CLASS BATCH\nGPU_PARAM a float[M][K]\nGPU_PARAM b float[K][N]\n"
                            "GPU_PARAM c float[M][N]\nGPU_THREAD_CODE:\n    PARALLEL_MATMUL a b -> c\nGPU_END\n";
static const char *SAXPY = "GPU_KERNEL saxpy\nGPU_CLASS THROUGHPUT\nGPU_PARAM a float\nGPU_PARAM x float[N]\n"
                           "GPU_PARAM y float[N]\nGPU_THREAD_CODE:\n    PARALLEL_MAP x y -> y : a * x + y\nGPU_END\n";
static const char *TICK = "GPU_KERNEL tick\nGPU_DEADLINE 10ms\nGPU_PARAM y float[N]\nGPU_THREAD_CODE:\n"
                          "    PARALLEL_MAP y -> y : y * 0.5 + 1.0\nGPU_END\n";

typedef struct Vm {
    uint32_t id, mod;
    PxArg args[4];
    int nargs;
    atomic_int stop;
    int inflight;
    long launches;
    pthread_t th;
} Vm;

static void vm_make(Vm *v, uint32_t id, double share)
{
    memset(v, 0, sizeof *v);
    v->id = id;
    PxVmConfig c;
    memset(&c, 0, sizeof c);
    c.id = id;
    c.share = share;
    c.mem_quota = 256ull << 20;
    if (px_sched_vm_create(S, &c)) die("vm");
}

static uint32_t buf2(uint32_t vm, int64_t r, int64_t c)
{
    uint32_t b;
    int64_t sh[2] = {r, c};
    if (px_vm_buffer_create(S, vm, PX_F32, 2, sh, &b)) die("buffer");
    return b;
}

static uint32_t buf1(uint32_t vm, int64_t n)
{
    uint32_t b;
    int64_t sh[1] = {n};
    if (px_vm_buffer_create(S, vm, PX_F32, 1, sh, &b)) die("buffer");
    return b;
}

static uint32_t compile(uint32_t vm, const char *src)
{
    uint32_t m;
    if (px_vm_compile(S, vm, src, strlen(src), "bench.px", &m, NULL)) die("compile");
    return m;
}

static void setup_matmul(Vm *v, int n)
{
    v->mod = compile(v->id, MATMUL);
    v->args[0] = (PxArg){.name = "a", .kind = PX_ARG_BUFFER, .buffer = buf2(v->id, n, n)};
    v->args[1] = (PxArg){.name = "b", .kind = PX_ARG_BUFFER, .buffer = buf2(v->id, n, n)};
    v->args[2] = (PxArg){.name = "c", .kind = PX_ARG_BUFFER, .buffer = buf2(v->id, n, n)};
    v->nargs = 3;
}

static void setup_saxpy(Vm *v, int n)
{
    v->mod = compile(v->id, SAXPY);
    v->args[0] = (PxArg){.name = "a", .kind = PX_ARG_FLOAT, .f = 0.5};
    v->args[1] = (PxArg){.name = "x", .kind = PX_ARG_BUFFER, .buffer = buf1(v->id, n)};
    v->args[2] = (PxArg){.name = "y", .kind = PX_ARG_BUFFER, .buffer = buf1(v->id, n)};
    v->nargs = 3;
}

/* Keeps `inflight` launches of v queued until v->stop. */
static void *saturate(void *arg)
{
    Vm *v = arg;
    uint64_t q[8];
    int n = v->inflight;
    for (int i = 0; i < n; i++)
        if (px_vm_submit(S, v->id, v->mod, NULL, v->args, v->nargs, &q[i])) die("submit");
    for (int i = 0; !atomic_load(&v->stop); i++) {
        PxTicketResult r;
        if (px_vm_wait(S, v->id, q[i % n], -1, &r) || r.result) die("wait");
        v->launches++;
        if (px_vm_submit(S, v->id, v->mod, NULL, v->args, v->nargs, &q[i % n])) die("submit");
    }
    for (int i = 0; i < n; i++) px_vm_wait(S, v->id, q[i], -1, NULL);
    return NULL;
}

static uint64_t gpu_ns(uint32_t id)
{
    PxVmStats st;
    return px_sched_vm_stats(S, id, &st) ? 0 : st.gpu_ns;
}

/* Samples the VMs' device time every 100 ms for secs seconds: frac[w][i] is
 * VM i's share of window w's device time. Returns the windows. */
static int sample(const uint32_t *ids, int n, double secs, double frac[][3], double *total)
{
    uint64_t g0[3], prev[3];
    for (int i = 0; i < n; i++) g0[i] = prev[i] = gpu_ns(ids[i]);
    int w = 0, nw = (int)(secs * 10);
    double t0 = now_s();
    for (; w < nw; w++) {
        double next = t0 + 0.1 * (w + 1);
        double dt = next - now_s();
        if (dt > 0) sleep_s(dt);
        uint64_t g[3];
        double sum = 0;
        for (int i = 0; i < n; i++) g[i] = gpu_ns(ids[i]), sum += (double)(g[i] - prev[i]);
        for (int i = 0; i < n; i++) frac[w][i] = sum > 0 ? (double)(g[i] - prev[i]) / sum : 0, prev[i] = g[i];
        if (getenv("SCHED_DEBUG")) {
            for (int i = 0; i < n; i++) {
                PxVmStats st;
                px_sched_vm_stats(S, ids[i], &st);
                fprintf(stderr, "%5.1f q%d ", frac[w][i] * 100, st.queued);
            }
            fprintf(stderr, "\n");
        }
    }
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (double)(prev[i] - g0[i]);
    for (int i = 0; i < n; i++) total[i] = sum > 0 ? (double)(prev[i] - g0[i]) / sum : 0;
    return w;
}

static void start(Vm *v, int inflight)
{
    v->inflight = inflight;
    atomic_store(&v->stop, 0);
    pthread_create(&v->th, NULL, saturate, v);
}

static void stop(Vm *v)
{
    atomic_store(&v->stop, 1);
    pthread_join(v->th, NULL);
}

/* The overhead part: VM 20 alone runs a 64K saxpy through the scheduler,
 * alternating with px_launch_run of the same kernel on a second context;
 * medians of both and their ratio. */
static void overhead(FILE *js, const PxConfig *cfg)
{
    char *err;
    /* ---- overhead: one VM alone against px_launch_run ---- */
    Vm one;
    vm_make(&one, 20, 100);
    setup_saxpy(&one, 1 << 16);
    enum { NOV = 400 };
    static double through[NOV], direct[NOV];
    PxModule *m;
    PxKernel *k;
    PxLaunch *l;
    PxBuffer *bx, *by;
    int64_t sh[1] = {1 << 16};
    /* the scheduler owns ctx: a second context for the direct side */
    PxContext *c2;
    if (px_context_create(cfg, &c2, &err)) die("context");
    if (px_module_compile(c2, SAXPY, strlen(SAXPY), "b.px", &m, NULL) || px_module_kernel(m, NULL, &k) ||
        px_launch_create(k, &l) || px_buffer_create(c2, PX_F32, 1, sh, &bx) || px_buffer_create(c2, PX_F32, 1, sh, &by) ||
        px_launch_bind(l, "x", bx, NULL) || px_launch_bind(l, "y", by, NULL) || px_launch_set_float(l, "a", 0.5f) ||
        px_launch_run(l))
        die("direct");
    for (int i = 0; i < 20; i++) { /* warm both */
        uint64_t t;
        px_vm_submit(S, 20, one.mod, NULL, one.args, one.nargs, &t);
        px_vm_wait(S, 20, t, -1, NULL);
    }
    for (int i = 0; i < NOV; i++) {
        double a = now_s();
        uint64_t t;
        PxTicketResult r;
        if (px_vm_submit(S, 20, one.mod, NULL, one.args, one.nargs, &t) || px_vm_wait(S, 20, t, -1, &r) || r.result)
            die("overhead");
        double b = now_s();
        if (px_launch_run(l)) die("direct run");
        double c = now_s();
        through[i] = (b - a) * 1e6;
        direct[i] = (c - b) * 1e6;
    }
    double tm = pct(through, NOV, 0.5), dm = pct(direct, NOV, 0.5);
    printf("overhead: saxpy 64K alone through the scheduler %.0f us vs px_launch_run %.0f us (median): ratio %.3f\n",
           tm, dm, tm / dm);
    fprintf(js, ",\n \"overhead\": {\"through_us\": %.1f, \"direct_us\": %.1f, \"ratio\": %.4f}}\n", tm, dm, tm / dm);
    px_launch_destroy(l);
    px_module_destroy(m);
    px_buffer_destroy(bx);
    px_buffer_destroy(by);
    px_context_destroy(c2);
    px_sched_vm_destroy(S, 20);
}

int main(int argc, char **argv)
{
    const char *out = argc > 1 ? argv[1] : "sched.json";
    double secs = getenv("SCHED_SECS") ? atof(getenv("SCHED_SECS")) : 10;
    PxConfig cfg;
    px_config_default(&cfg);
    char *err;
    if (px_context_create(&cfg, &ctx, &err)) {
        fprintf(stderr, "sched_bench: no device: %s\n", err ? err : "?");
        return 1;
    }
    PxDeviceInfo di;
    px_device_info(ctx, &di);
    PxSchedConfig sc;
    px_sched_config_default(&sc);
    sc.ndevices = 1;
    sc.devices[0] = ctx;
    sc.capacity[0] = 4ull << 30;
    if (px_sched_create(&sc, &S)) die("scheduler");
    FILE *js = fopen(out, "w");
    if (!js) {
        perror(out);
        return 1;
    }
    fprintf(js, "{\"device\": \"%s\", \"slice_us\": %d, \"secs\": %g", di.name, sc.slice_us, secs);
    printf("device: %s, slice %d us\n", di.name, sc.slice_us);

    /* SCHED_ONLY=overhead: only the overhead figure (seconds, not a minute) */
    if (getenv("SCHED_ONLY") && !strcmp(getenv("SCHED_ONLY"), "overhead")) {
        overhead(js, &cfg);
        fclose(js);
        px_sched_destroy(S);
        px_context_destroy(ctx);
        return 0;
    }

    /* ---- shares ---- */
    static double frac[1000][3];
    double target[3] = {0.5, 0.3, 0.2}, total[3];
    uint32_t ids[3] = {1, 2, 3};
    Vm v[3];
    for (int i = 0; i < 3; i++) vm_make(&v[i], ids[i], target[i] * 100);
    setup_matmul(&v[0], 256);
    setup_saxpy(&v[1], 1 << 20);
    setup_matmul(&v[2], 192);
    for (int i = 0; i < 3; i++) start(&v[i], 4);
    sleep_s(0.5); /* warm: pipelines made, queues full */
    int nw = sample(ids, 3, secs, frac, total);
    for (int i = 0; i < 3; i++) stop(&v[i]);
    double err_w[3000], maxe = 0, jain_n = 0, jain_d = 0;
    int ne = 0;
    for (int w = 0; w < nw; w++)
        for (int i = 0; i < 3; i++) {
            double e = fabs(frac[w][i] - target[i]) * 100;
            err_w[ne++] = e;
            if (e > maxe) maxe = e;
        }
    double worst_total = 0;
    for (int i = 0; i < 3; i++) {
        double x = total[i] / target[i];
        jain_n += x;
        jain_d += x * x;
        double e = fabs(total[i] - target[i]) * 100;
        if (e > worst_total) worst_total = e;
    }
    double jain = jain_n * jain_n / (3 * jain_d);
    double med = pct(err_w, ne, 0.5), p90 = pct(err_w, ne, 0.9);
    printf("shares 50/30/20 over %.0f s: achieved %.1f / %.1f / %.1f %%; worst error %.2f points over the run,\n"
           "  per 100 ms window median %.2f, p90 %.2f, max %.2f points; Jain %.4f\n",
           secs, total[0] * 100, total[1] * 100, total[2] * 100, worst_total, med, p90, maxe, jain);
    fprintf(js, ",\n \"shares\": {\"target\": [50, 30, 20], \"achieved\": [%.3f, %.3f, %.3f], \"worst_error_points\": %.3f, "
                "\"window_error_median\": %.3f, \"window_error_p90\": %.3f, \"window_error_max\": %.3f, \"jain\": %.5f}",
            total[0] * 100, total[1] * 100, total[2] * 100, worst_total, med, p90, maxe, jain);

    /* ---- lending: VM 3 idle, then waking ---- */
    start(&v[0], 4);
    start(&v[1], 4);
    sleep_s(0.3);
    int nw2 = sample(ids, 2, secs / 2, frac, total);
    (void)nw2;
    double idle_split[2] = {total[0] * 100, total[1] * 100};
    start(&v[2], 4);
    double t_wake = now_s(), back = -1;
    int nw3 = sample(ids, 3, secs / 2, frac, total);
    for (int w = 0; w < nw3 && back < 0; w++)
        if (fabs(frac[w][2] - target[2]) * 100 < 5) back = (w + 1) * 0.1;
    (void)t_wake;
    for (int i = 0; i < 3; i++) stop(&v[i]);
    printf("lending: VM 3 idle: %.1f / %.1f %% (target 62.5 / 37.5); awake: %.1f / %.1f / %.1f %%, share back within 5 points after %.1f s (first 100 ms window)\n",
           idle_split[0], idle_split[1], total[0] * 100, total[1] * 100, total[2] * 100, back);
    fprintf(js, ",\n \"lending\": {\"idle_split\": [%.3f, %.3f], \"awake_split\": [%.3f, %.3f, %.3f], \"share_back_s\": %.2f}",
            idle_split[0], idle_split[1], total[0] * 100, total[1] * 100, total[2] * 100, back);
    for (uint32_t i = 1; i <= 3; i++) px_sched_vm_destroy(S, i);

    /* ---- latency: REALTIME beside BATCH 1024^3 matmuls ---- */
    Vm rt, batch;
    vm_make(&batch, 10, 70);
    vm_make(&rt, 11, 30);
    setup_matmul(&batch, 1024);
    rt.mod = compile(11, TICK);
    rt.args[0] = (PxArg){.name = "y", .kind = PX_ARG_BUFFER, .buffer = buf1(11, 4096)};
    rt.nargs = 1;
    enum { NRT = 200 };
    static double solo[NRT], lat[NRT], sw[NRT];
    for (int i = 0; i < NRT; i++) { /* solo */
        uint64_t t;
        PxTicketResult r;
        if (px_vm_submit(S, 11, rt.mod, NULL, rt.args, 1, &t) || px_vm_wait(S, 11, t, -1, &r) || r.result) die("rt solo");
        solo[i] = r.latency_ns / 1e3;
        sleep_s(0.01);
    }
    start(&batch, 2);
    sleep_s(0.5);
    uint64_t b0 = gpu_ns(10);
    PxDeviceStats d0, d1;
    px_sched_device_stats(S, 0, &d0);
    long bl0 = batch.launches;
    double t0 = now_s();
    for (int i = 0; i < NRT; i++) {
        uint64_t t;
        PxTicketResult r;
        if (px_vm_submit(S, 11, rt.mod, NULL, rt.args, 1, &t) || px_vm_wait(S, 11, t, -1, &r) || r.result) die("rt");
        lat[i] = r.latency_ns / 1e3;
        sw[i] = r.wait_ns / 1e3;
        double next = t0 + 0.01 * (i + 1) - now_s();
        if (next > 0) sleep_s(next);
    }
    double wall = now_s() - t0;
    uint64_t b1 = gpu_ns(10);
    px_sched_device_stats(S, 0, &d1);
    long bl1 = batch.launches;
    stop(&batch);
    double solo50 = pct(solo, NRT, 0.5), solo99 = pct(solo, NRT, 0.99);
    double l50 = pct(lat, NRT, 0.5), l99 = pct(lat, NRT, 0.99);
    double s50 = pct(sw, NRT, 0.5), s99 = pct(sw, NRT, 0.99), smax = pct(sw, NRT, 1.0);
    double batch_share = (double)(b1 - b0) / ((double)(d1.busy_ns - d0.busy_ns) + 1e-9);
    double batch_busy = (double)(b1 - b0) * 1e-9 / wall;
    printf("latency: RT tick p50 %.0f us p99 %.0f us beside 1024^3 matmuls (alone: p50 %.0f p99 %.0f us); "
           "p99 / (solo p99 + slice) = %.2f\n  switch (submit -> first slice) p50 %.0f p99 %.0f max %.0f us; "
           "BATCH kept %.1f %% of the device time (%.1f %% of wall), %ld matmuls\n",
           l50, l99, solo50, solo99, l99 / (solo99 + sc.slice_us), s50, s99, smax, batch_share * 100,
           batch_busy * 100, bl1 - bl0);
    fprintf(js, ",\n \"latency\": {\"rt_p50_us\": %.1f, \"rt_p99_us\": %.1f, \"solo_p50_us\": %.1f, \"solo_p99_us\": %.1f, "
                "\"switch_p50_us\": %.1f, \"switch_p99_us\": %.1f, \"switch_max_us\": %.1f, \"batch_device_share\": %.4f, "
                "\"batch_wall_busy\": %.4f}",
            l50, l99, solo50, solo99, s50, s99, smax, batch_share, batch_busy);
    px_sched_vm_destroy(S, 10);
    px_sched_vm_destroy(S, 11);

    overhead(js, &cfg);
    fclose(js);
    px_sched_destroy(S);
    px_context_destroy(ctx);
    return 0;
}
