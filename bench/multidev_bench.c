/* multidev_bench.c — many devices in one scheduler (`make bench-multidev`;
 * docs/PERFORMANCE.md, "Migration and balance"): lavapipe opened twice
 * (two logical devices) and the CPU backend.
 *
 *   migrate   an idle VM holding 1 MiB .. 1 GiB (buffers of at most 128
 *             MiB: lavapipe's limit) moves between the two lavapipe devices,
 *             REPS times each way: median downtime (no launch of the VM can
 *             run) and total, against a memcpy of the same bytes measured
 *             in the same run; the goal is downtime <= 50 ms + that memcpy.
 *   backends  the same at 128 MiB between lavapipe and cpu, both ways.
 *   busy      a VM whose launches run back to back while it moves (768 KiB,
 *             and with 128 MiB more data): downtime against memcpy, and its
 *             launches' results (checked against a C loop).
 *   balance   four VMs with duty-cycled load (100/60/30/20 % of a device)
 *             start on device 0 of two; px_sched_balance every PERIOD: the
 *             busy fraction of both devices per period, the moves, when it
 *             settled and whether anything moved after that.
 *
 * Prints a table and writes JSON to argv[1] (default multidev.json). No
 * figure here is a pass/fail: goals are reported. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/common.h"
#include "pxsched.h"

static PxSched *S;
enum { VK0, VK1, CPU, NDEV };
static const char *devname[NDEV] = {"lavapipe#0", "lavapipe#1", "cpu"};

static const char *TWO = "GPU_KERNEL two\nGPU_PARAM reps uint\nGPU_PARAM a uint[N]\nGPU_PARAM b uint[N]\n"
                         "GPU_PARAM c uint[N]\nGPU_THREAD_CODE:\n"
                         "    PARALLEL_FOR i IN 0..N {\n        var v = a[i]\n"
                         "        for r in 0u..reps {\n            v = v * 1664525u + 1013904223u\n        }\n"
                         "        b[i] = v\n    }\n    PARALLEL_SCAN SUM b -> c\nGPU_END\n";

static void die(const char *what)
{
    fprintf(stderr, "multidev_bench: %s: %s\n", what, px_sched_last_error());
    exit(1);
}

static void sleep_ms(double ms)
{
    struct timespec t = {(time_t)(ms / 1000), (long)((ms - 1000 * (double)(time_t)(ms / 1000)) * 1e6)};
    nanosleep(&t, NULL);
}

static void vm_make(uint32_t id, int device, double share, uint64_t quota)
{
    PxVmConfig c;
    memset(&c, 0, sizeof c);
    c.id = id;
    c.share = share;
    c.mem_quota = quota;
    c.device = device;
    if (px_sched_vm_create(S, &c)) die("vm create");
}

static uint32_t vm_compile(uint32_t vm)
{
    uint32_t m;
    char *diags = NULL;
    if (px_vm_compile(S, vm, TWO, strlen(TWO), "two.px", &m, &diags)) die("compile");
    px_free(diags);
    return m;
}

static uint32_t vm_buf(uint32_t vm, int64_t n, const void *data)
{
    uint32_t b;
    if (px_vm_buffer_create(S, vm, PX_U32, 1, &n, &b)) die("buffer");
    if (data && px_vm_buffer_write(S, vm, b, data, (size_t)n * 4)) die("write");
    return b;
}

/* median ms of a memcpy of `bytes` (buffers touched first) */
static double memcpy_ms(size_t bytes, int reps)
{
    char *a = bench_xmalloc(bytes), *b = bench_xmalloc(bytes);
    memset(a, 1, bytes);
    memset(b, 2, bytes);
    double t[BENCH_MAX_RUNS];
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now_ms();
        memcpy(b, a, bytes);
        t[r] = bench_now_ms() - t0;
        a[r] ^= b[bytes - 1 - (size_t)r]; /* the copy is used */
    }
    free(a);
    free(b);
    return bench_median(t, reps);
}

typedef struct MigFig {
    const char *path;
    uint64_t bytes;
    double down_ms, total_ms, memcpy_ms;
} MigFig;

/* VM `id` holding `bytes` in buffers of at most 128 MiB, moved between
 * devices a and b reps times each way. */
static MigFig migrate_sizes(uint32_t id, uint64_t bytes, int a, int b, int reps)
{
    MigFig f = {.bytes = bytes};
    f.memcpy_ms = memcpy_ms((size_t)bytes, 3);
    vm_make(id, a, 10, bytes + (1 << 20));
    vm_compile(id);
    const uint64_t chunk = 128ull << 20;
    uint32_t *fill = bench_xmalloc((size_t)(bytes < chunk ? bytes : chunk));
    for (uint64_t i = 0; i < (bytes < chunk ? bytes : chunk) / 4; i++) fill[i] = (uint32_t)(i * 2654435761u);
    for (uint64_t left = bytes; left; left -= left < chunk ? left : chunk)
        vm_buf(id, (int64_t)((left < chunk ? left : chunk) / 4), fill);
    free(fill);
    double down[BENCH_MAX_RUNS], total[BENCH_MAX_RUNS];
    int n = 0;
    for (int r = 0; r < 2 * reps; r++) {
        PxMigrateStats ms;
        if (px_vm_migrate(S, id, r % 2 ? a : b, &ms)) die("migrate");
        if (ms.bytes != bytes) fprintf(stderr, "multidev_bench: moved %llu bytes, not %llu\n", (unsigned long long)ms.bytes, (unsigned long long)bytes);
        down[n] = ms.downtime_ns * 1e-6;
        total[n++] = ms.total_ns * 1e-6;
    }
    f.down_ms = bench_median(down, n);
    f.total_ms = bench_median(total, n);
    if (px_sched_vm_destroy(S, id)) die("vm destroy");
    return f;
}

/* ---- busy: launches running while the VM moves ---------------------------------------- */

typedef struct Load {
    uint32_t vm, m, a, b, c;
    int64_t n;
    uint32_t reps;
    double demand;             /* fraction of a device it asks for; 1: back to back */
    atomic_int stop;
    int launches, errors;
} Load;

static void *load_thread(void *arg)
{
    Load *l = arg;
    PxArg args[4] = {{.name = "reps", .kind = PX_ARG_UINT, .i = l->reps}, {.name = "a", .kind = PX_ARG_BUFFER, .buffer = l->a},
                     {.name = "b", .kind = PX_ARG_BUFFER, .buffer = l->b}, {.name = "c", .kind = PX_ARG_BUFFER, .buffer = l->c}};
    while (!atomic_load(&l->stop)) {
        uint64_t t;
        PxTicketResult res = {0};
        if (px_vm_submit(S, l->vm, l->m, NULL, args, 4, &t) || px_vm_wait(S, l->vm, t, -1, &res) || res.result) l->errors++;
        l->launches++;
        /* idle so that its device time is `demand` of its wall time alone
         * (not of the wall time it waited behind others) */
        if (l->demand < 1) sleep_ms(res.gpu_ns * 1e-6 * (1 / l->demand - 1));
    }
    return NULL;
}

static void load_start(Load *l, pthread_t *th, uint32_t vm, int device, double share, uint32_t reps, double demand,
                       int64_t n, int64_t extra)
{
    memset(l, 0, sizeof *l);
    l->vm = vm;
    l->n = n;
    l->reps = reps;
    l->demand = demand;
    vm_make(vm, device, share, (uint64_t)(3 * n + extra) * 4 + (1 << 20));
    l->m = vm_compile(vm);
    if (extra) vm_buf(vm, extra, NULL); /* data the VM holds, not used by its launches */
    uint32_t *a = bench_xmalloc((size_t)l->n * 4);
    for (int64_t i = 0; i < l->n; i++) a[i] = (uint32_t)(i * 40503u + 7u);
    l->a = vm_buf(vm, l->n, a);
    l->b = vm_buf(vm, l->n, NULL);
    l->c = vm_buf(vm, l->n, NULL);
    free(a);
    pthread_create(th, NULL, load_thread, l);
}

/* the C loop's c for Load l; 1 when the VM's buffer c holds it */
static int load_check(const Load *l)
{
    uint32_t *got = bench_xmalloc((size_t)l->n * 4);
    int ok = px_vm_buffer_read(S, l->vm, l->c, got, (size_t)l->n * 4) == PX_OK;
    uint32_t acc = 0;
    for (int64_t i = 0; ok && i < l->n; i++) {
        uint32_t v = (uint32_t)(i * 40503u + 7u);
        for (uint32_t r = 0; r < l->reps; r++) v = v * 1664525u + 1013904223u;
        acc += v;
        ok = got[i] == acc;
    }
    free(got);
    return ok;
}

int main(int argc, char **argv)
{
    const char *out = argc > 1 ? argv[1] : "multidev.json";
    PxSchedConfig sc;
    px_sched_config_default(&sc);
    sc.ndevices = NDEV;
    for (int d = 0; d < NDEV; d++) {
        PxConfig cfg;
        px_config_default(&cfg);
        cfg.backend = d == CPU ? PX_BACKEND_CPU : PX_BACKEND_VULKAN;
        char *err = NULL;
        if (px_context_create(&cfg, &sc.devices[d], &err)) {
            fprintf(stderr, "multidev_bench: device %d: %s\n", d, err ? err : "?");
            return 1;
        }
        sc.capacity[d] = 4ull << 30;
    }
    if (px_sched_create(&sc, &S)) die("scheduler");
    FILE *js = fopen(out, "w");
    if (!js) {
        perror(out);
        return 1;
    }
    fprintf(js, "{\"migrate\": [");

    printf("migration of an idle VM (median of both directions; memcpy of the same bytes in this run)\n");
    printf("%-22s %10s %12s %12s %12s %14s %6s %12s\n", "path", "bytes", "downtime ms", "total ms", "memcpy ms",
           "goal down ms", "met", "total/memcpy");
    static const uint64_t sizes[] = {1ull << 20, 16ull << 20, 128ull << 20, 1ull << 30};
    MigFig figs[8];
    int nf = 0;
    for (int i = 0; i < 4; i++) {
        figs[nf] = migrate_sizes(10 + (uint32_t)i, sizes[i], VK0, VK1, sizes[i] >= (128ull << 20) ? 2 : 4);
        figs[nf++].path = "lavapipe <-> lavapipe";
    }
    figs[nf] = migrate_sizes(20, 128ull << 20, VK0, CPU, 2);
    figs[nf++].path = "lavapipe <-> cpu";
    for (int i = 0; i < nf; i++) {
        MigFig *f = &figs[i];
        double goal = 50 + f->memcpy_ms;
        printf("%-22s %10llu %12.2f %12.2f %12.2f %14.2f %6s %12.1f\n", f->path, (unsigned long long)f->bytes, f->down_ms,
               f->total_ms, f->memcpy_ms, goal, f->down_ms <= goal ? "yes" : "NO", f->total_ms / f->memcpy_ms);
        fprintf(js, "%s\n  {\"path\": \"%s\", \"bytes\": %llu, \"downtime_ms\": %.3f, \"total_ms\": %.3f, \"memcpy_ms\": %.3f, "
                "\"total_over_memcpy\": %.2f, \"goal_downtime_ms\": %.3f}", i ? "," : "", f->path,
                (unsigned long long)f->bytes, f->down_ms, f->total_ms, f->memcpy_ms, f->total_ms / f->memcpy_ms, goal);
    }
    fprintf(js, "],\n");

    /* busy: launches back to back while the VM moves 6 times: 768 KiB
     * bound to them; the same and 128 MiB not bound (copied before the
     * pause); 96 MiB bound, of which the 64 MiB the launches write are
     * copied in the pause (the worst case: every byte written) */
    fprintf(js, " \"busy\": [");
    printf("\nbusy VM (launches back to back while it moves 6 times between the lavapipes)\n");
    printf("%12s %12s %14s %12s %14s %8s %8s %s\n", "bytes", "in pause", "downtime ms", "memcpy ms", "goal down ms",
           "moved", "errors", "results");
    static const int64_t extra[3] = {0, (128ll << 20) / 4, 0}, elems[3] = {1 << 16, 1 << 16, 8 << 20};
    static const uint32_t breps[3] = {1200, 1200, 4};
    for (int x = 0; x < 3; x++) {
        Load bl;
        pthread_t bth;
        load_start(&bl, &bth, 30 + (uint32_t)x, VK0, 50, breps[x], 1, elems[x], extra[x]);
        double bdown[6];
        int nmoved = 0;
        PxMigrateStats ms = {0};
        for (int r = 0; r < 6; r++) {
            sleep_ms(150);
            if (px_vm_migrate(S, 30 + (uint32_t)x, r % 2 ? VK0 : VK1, &ms)) die("migrate busy");
            bdown[r] = ms.downtime_ns * 1e-6;
            nmoved += ms.launches_moved;
        }
        atomic_store(&bl.stop, 1);
        pthread_join(bth, NULL);
        int bok = load_check(&bl) && bl.errors == 0;
        double bmed = bench_median(bdown, 6), mc = memcpy_ms((size_t)ms.bytes, 3);
        printf("%12llu %12llu %14.2f %12.2f %14.2f %8d %8d %s\n", (unsigned long long)ms.bytes,
               (unsigned long long)ms.bytes_in_pause, bmed, mc, 50 + mc, nmoved, bl.errors, bok ? "exact" : "WRONG");
        fprintf(js, "%s{\"bytes\": %llu, \"bytes_in_pause\": %llu, \"downtime_ms\": %.3f, \"memcpy_ms\": %.3f, "
                "\"launches_moved\": %d, \"launches\": %d, \"errors\": %d, \"exact\": %d}", x ? ", " : "",
                (unsigned long long)ms.bytes, (unsigned long long)ms.bytes_in_pause, bmed, mc, nmoved, bl.launches,
                bl.errors, bok);
        px_sched_vm_destroy(S, 30 + (uint32_t)x);
    }
    fprintf(js, "],\n");

    /* balance: a scheduler over the two lavapipes only (the contexts are
     * the caller's: they outlive the first scheduler) */
    px_sched_destroy(S);
    sc.ndevices = 2;
    if (px_sched_create(&sc, &S)) die("scheduler");
    /* four duty-cycled VMs on device 0 */
    static const double demand[4] = {1.0, 0.60, 0.30, 0.20};
    Load ld[4];
    pthread_t lth[4];
    for (int v = 0; v < 4; v++) load_start(&ld[v], &lth[v], 40 + (uint32_t)v, VK0, 20, 600, demand[v], 1 << 16, 0);
    PxBalanceConfig bc;
    px_balance_config_default(&bc);
    const double period_ms = 400;
    const int periods = 10;
    px_sched_balance(S, &bc, NULL); /* starts the first period */
    uint64_t busy_prev[2];
    for (int d = 0; d < 2; d++) {
        PxDeviceStats ds;
        px_sched_device_stats(S, d, &ds);
        busy_prev[d] = ds.busy_ns;
    }
    int last_move = 0, moves = 0;
    printf("\nauto-balance: 4 VMs (100/60/30/20 %% duty) start on device 0 of 2; period %.0f ms\n", period_ms);
    printf("%7s %10s %10s  %s\n", "period", "busy 0", "busy 1", "move");
    fprintf(js, " \"balance\": {\"period_ms\": %.0f, \"periods\": [", period_ms);
    for (int p = 1; p <= periods; p++) {
        double t0 = bench_now_ms();
        sleep_ms(period_ms);
        double busy[2];
        for (int d = 0; d < 2; d++) {
            PxDeviceStats ds;
            px_sched_device_stats(S, d, &ds);
            busy[d] = (double)(ds.busy_ns - busy_prev[d]) * 1e-6 / (bench_now_ms() - t0);
            busy_prev[d] = ds.busy_ns;
        }
        PxBalanceMove mv;
        if (px_sched_balance(S, &bc, &mv)) fprintf(stderr, "multidev_bench: balance: %s\n", px_sched_last_error());
        char what[128] = "-";
        if (mv.moved) {
            snprintf(what, sizeof what, "VM %u %d -> %d (downtime %.2f ms)", mv.vm, mv.from, mv.to, mv.stats.downtime_ns * 1e-6);
            last_move = p;
            moves++;
        }
        printf("%7d %9.0f%% %9.0f%%  %s\n", p, 100 * busy[0], 100 * busy[1], what);
        fprintf(js, "%s{\"busy\": [%.3f, %.3f], \"moved\": %d}", p > 1 ? ", " : "", busy[0], busy[1], mv.moved);
    }
    for (int v = 0; v < 4; v++) atomic_store(&ld[v].stop, 1);
    int lerr = 0, lok = 1;
    for (int v = 0; v < 4; v++) {
        pthread_join(lth[v], NULL);
        lerr += ld[v].errors;
        lok &= load_check(&ld[v]);
    }
    printf("moves: %d, the last in period %d (goal: settled within 3, none after); launches: %d errors, results %s\n", moves,
           last_move, lerr, lok ? "exact" : "WRONG");
    fprintf(js, "], \"moves\": %d, \"last_move_period\": %d, \"errors\": %d, \"exact\": %d}}\n", moves, last_move, lerr, lok);
    fclose(js);
    printf("(devices: %s, %s, %s; JSON in %s)\n", devname[0], devname[1], devname[2], out);
    px_sched_destroy(S);
    for (int d = 0; d < NDEV; d++) px_context_destroy(sc.devices[d]);
    return 0;
}
