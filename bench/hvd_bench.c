/* hvd_bench.c — the hypervisor daemon's figures (`make bench-hvd`;
 * docs/PERFORMANCE.md, "Hypervisor"):
 *
 *   launch    a tiny kernel (saxpy over 64 floats, buffers bound) launched
 *             and waited for, one at a time: in-process through the
 *             scheduler (px_vm_submit + px_vm_wait) against through pxhvd's
 *             service layer over a local Unix socket (a RUN frame: launch
 *             and wait in one round trip, as pxrun --vm sends),
 *             medians of ITER launches each, and their ratio (goal <= 1.5).
 *   data      a 16 MiB buffer written and read back: through the socket
 *             (BUF_WRITE / BUF_READ frames), through shared memory (a
 *             sealed memfd passed with BUF_WRITE_SHM / BUF_READ_SHM, the
 *             data already in it: what a producer writing into shared
 *             memory pays), in-process (px_vm_buffer_write / _read), and
 *             memcpy of the same bytes, in GB/s (best of 20). Goal: shared
 *             memory >= 80 % of memcpy.
 *
 * The daemon runs in this process (hv_server_run in a thread) with the
 * same scheduler and device as the in-process figures, so the difference
 * is the protocol, the socket and the daemon's thread. Prints a table and
 * writes JSON to argv[1] (default build/release/hvd.json). No figure here
 * is a pass/fail: goals are reported. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hv/hv.h"
#include "pxsched.h"

#define ITER 2000
#define BULK (16u << 20)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

static const char *SAXPY = "GPU_KERNEL saxpy\nGPU_PARAM a float\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\n"
                           "GPU_THREAD_CODE:\n    PARALLEL_MAP x y -> y : a * x + y\nGPU_END\n";

static int fd;
static HvIn in;

/* One request; the reply's payload (free it) or exit. */
static unsigned char *call(HvMsg *m, uint16_t want, uint32_t *n)
{
    uint16_t type;
    unsigned char *p;
    char err[256];
    if (hv_call(fd, &in, m, &type, &p, n, 60000, err, sizeof err)) {
        fprintf(stderr, "hvd_bench: %s\n", err);
        exit(1);
    }
    hv_msg_free(m);
    if (type != (want | HV_REPLY)) {
        HvRd rd = {.p = p, .n = *n};
        hv_get_u32(&rd);
        char msg[600];
        hv_get_str(&rd, msg, sizeof msg);
        fprintf(stderr, "hvd_bench: request %u: %s\n", want, msg);
        exit(1);
    }
    return p;
}

static uint32_t get_id(HvMsg *m, uint16_t want)
{
    uint32_t n;
    unsigned char *p = call(m, want, &n);
    HvRd rd = {.p = p, .n = n};
    uint32_t id = hv_get_u32(&rd);
    free(p);
    return id;
}

static void *serve(void *sv)
{
    hv_server_run(sv);
    return NULL;
}

static void quiet(void *u, PxLogLevel lv, const char *m) {}

int main(int argc, char **argv)
{
    const char *json = argc > 1 ? argv[1] : "build/release/hvd.json";
    PxConfig cfg;
    px_config_default(&cfg);
    cfg.log = quiet;
    PxContext *ctx;
    char *err;
    if (px_context_create(&cfg, &ctx, &err)) {
        fprintf(stderr, "hvd_bench: %s\n", err ? err : "no device");
        return 1;
    }
    PxDeviceInfo di;
    px_device_info(ctx, &di);
    PxSchedConfig sc;
    px_sched_config_default(&sc);
    sc.ndevices = 1;
    sc.devices[0] = ctx;
    sc.capacity[0] = 1ull << 30;
    PxSched *s;
    if (px_sched_create(&sc, &s)) return 1;
    PxVmConfig v1 = {.id = 1, .share = 50, .mem_quota = 256u << 20, .device = 0};
    PxVmConfig v2 = v1;
    v2.id = 2;
    px_sched_vm_create(s, &v1);
    px_sched_vm_create(s, &v2);
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/px-hvd-bench.%d", (int)getpid());
    HvServerConfig hc = {.dir = dir};
    char e[256];
    HvServer *sv = hv_server_create(&hc, s, e, sizeof e);
    if (!sv) {
        fprintf(stderr, "hvd_bench: %s\n", e);
        return 1;
    }
    pthread_t th;
    pthread_create(&th, NULL, serve, sv);

    /* ---- in-process: VM 1 ---- */
    uint32_t mod, bx, by;
    char *diags = NULL;
    int64_t sh[1] = {64};
    px_vm_compile(s, 1, SAXPY, strlen(SAXPY), "b.px", &mod, &diags);
    free(diags);
    px_vm_buffer_create(s, 1, PX_F32, 1, sh, &bx);
    px_vm_buffer_create(s, 1, PX_F32, 1, sh, &by);
    PxArg args[3] = {{.name = "a", .kind = PX_ARG_FLOAT, .f = 1.0},
                     {.name = "x", .kind = PX_ARG_BUFFER, .buffer = bx},
                     {.name = "y", .kind = PX_ARG_BUFFER, .buffer = by}};
    static double t_in[ITER], t_hv[ITER];
    for (int i = -100; i < ITER; i++) { /* 100 to warm up */
        double t0 = now_s();
        uint64_t t;
        if (px_vm_submit(s, 1, mod, NULL, args, 3, &t) || px_vm_wait(s, 1, t, -1, NULL)) {
            fprintf(stderr, "hvd_bench: %s\n", px_sched_last_error());
            return 1;
        }
        if (i >= 0) t_in[i] = now_s() - t0;
    }

    /* ---- through the daemon: VM 2 over vm2.sock ---- */
    char path[128], dev[256];
    snprintf(path, sizeof path, "%s/vm2.sock", dir);
    uint32_t vm;
    if (hv_connect(path, &fd, &vm, dev, sizeof dev, e, sizeof e)) {
        fprintf(stderr, "hvd_bench: %s\n", e);
        return 1;
    }
    in.fd = fd;
    HvMsg m = {0};
    hv_msg_begin(&m, HV_COMPILE, 0);
    hv_put_str(&m, "b.px");
    hv_put_str(&m, "");
    hv_put_bytes(&m, SAXPY, strlen(SAXPY));
    uint32_t hmod = get_id(&m, HV_COMPILE);
    uint32_t hb[2];
    for (int k = 0; k < 2; k++) {
        hv_msg_begin(&m, HV_BUF_CREATE, 0);
        hv_put_u32(&m, PX_F32);
        hv_put_u32(&m, 1);
        hv_put_u64(&m, 64);
        hb[k] = get_id(&m, HV_BUF_CREATE);
    }
    for (int i = -100; i < ITER; i++) {
        double t0 = now_s();
        /* RUN: launch and wait in one round trip, as pxrun --vm does */
        hv_msg_begin(&m, HV_RUN, 0);
        hv_put_u32(&m, hmod);
        hv_put_str(&m, "");
        hv_put_u32(&m, 3);
        const char *names[3] = {"a", "x", "y"};
        uint32_t kinds[3] = {PX_ARG_FLOAT, PX_ARG_BUFFER, PX_ARG_BUFFER}, bufs[3] = {0, hb[0], hb[1]};
        for (int k = 0; k < 3; k++) {
            hv_put_str(&m, names[k]);
            hv_put_u32(&m, kinds[k]);
            hv_put_u32(&m, bufs[k]);
            hv_put_f64(&m, 1.0);
            hv_put_u64(&m, 0);
        }
        hv_put_u32(&m, 1000);
        uint32_t n;
        unsigned char *p = call(&m, HV_RUN, &n);
        HvRd rd = {.p = p, .n = n};
        uint64_t t = hv_get_u64(&rd);
        uint32_t finished = hv_get_u32(&rd), res = finished ? hv_get_u32(&rd) : 0;
        free(p);
        while (!finished) { /* not within the second: WAIT */
            hv_msg_begin(&m, HV_WAIT, 0);
            hv_put_u64(&m, t);
            hv_put_u32(&m, 1000);
            uint16_t type;
            char er[256];
            if (hv_call(fd, &in, &m, &type, &p, &n, 60000, er, sizeof er)) return 1;
            hv_msg_free(&m);
            rd = (HvRd){.p = p, .n = n};
            if (type == (HV_WAIT | HV_REPLY)) finished = 1, res = hv_get_u32(&rd);
            free(p);
        }
        if (res) {
            fprintf(stderr, "hvd_bench: launch failed (%u)\n", res);
            return 1;
        }
        if (i >= 0) t_hv[i] = now_s() - t0;
    }
    double med_in = median(t_in, ITER) * 1e6, med_hv = median(t_hv, ITER) * 1e6;

    /* ---- bulk data: 16 MiB ---- */
    unsigned char *src = malloc(BULK), *dst = malloc(BULK);
    for (size_t i = 0; i < BULK; i++) src[i] = (unsigned char)(i * 131);
    memcpy(dst, src, BULK);
    double best_memcpy = 1e9, best_sw = 1e9, best_sr = 1e9, best_iw = 1e9, best_ir = 1e9, best_mw = 1e9, best_mr = 1e9;
    void *shm;
    int mfd = hv_shm_create(BULK, &shm);
    if (mfd < 0) {
        fprintf(stderr, "hvd_bench: memfd\n");
        return 1;
    }
    memcpy(shm, src, BULK);
    int64_t bsh[1] = {BULK / 4};
    uint32_t ib;
    px_vm_buffer_create(s, 1, PX_F32, 1, bsh, &ib);
    hv_msg_begin(&m, HV_BUF_CREATE, 0);
    hv_put_u32(&m, PX_F32);
    hv_put_u32(&m, 1);
    hv_put_u64(&m, BULK / 4);
    uint32_t sb = get_id(&m, HV_BUF_CREATE);
    int same = 1;
    for (int r = 0; r < 20; r++) {
        double t0 = now_s();
        memcpy(dst, src, BULK);
        double t1 = now_s();
        if (t1 - t0 < best_memcpy) best_memcpy = t1 - t0;
        px_vm_buffer_write(s, 1, ib, src, BULK);
        double t2 = now_s();
        px_vm_buffer_read(s, 1, ib, dst, BULK);
        double t3 = now_s();
        if (t2 - t1 < best_iw) best_iw = t2 - t1;
        if (t3 - t2 < best_ir) best_ir = t3 - t2;
        hv_msg_begin(&m, HV_BUF_WRITE, 0);
        uint32_t n;
        double t4 = now_s();
        hv_put_u32(&m, sb);
        memcpy(hv_put_space(&m, BULK), src, BULK); /* the client's one copy */
        free(call(&m, HV_BUF_WRITE, &n));
        double t5 = now_s();
        hv_msg_begin(&m, HV_BUF_READ, 0);
        hv_put_u32(&m, sb);
        unsigned char *p = call(&m, HV_BUF_READ, &n);
        double t6 = now_s();
        HvRd rd = {.p = p, .n = n};
        hv_get_u32(&rd), hv_get_u32(&rd), hv_get_u64(&rd);
        size_t len;
        const void *d = hv_get_bytes(&rd, HV_MAX_FRAME, &len);
        same &= len == BULK && !memcmp(d, src, BULK);
        free(p);
        if (t5 - t4 < best_sw) best_sw = t5 - t4;
        if (t6 - t5 < best_sr) best_sr = t6 - t5;
        for (int k = 0; k < 2; k++) {
            uint16_t type = k ? HV_BUF_READ_SHM : HV_BUF_WRITE_SHM, rt;
            hv_msg_begin(&m, type, 0);
            hv_put_u32(&m, sb);
            hv_put_u64(&m, BULK);
            char er[256];
            double t7 = now_s();
            if (hv_call_fd(fd, &in, &m, mfd, &rt, &p, &n, 60000, er, sizeof er) || rt != (type | HV_REPLY)) {
                fprintf(stderr, "hvd_bench: shared memory path failed\n");
                return 1;
            }
            double t8 = now_s();
            hv_msg_free(&m);
            free(p);
            if (k) best_mr = fmin(best_mr, t8 - t7);
            else best_mw = fmin(best_mw, t8 - t7);
        }
        same &= !memcmp(shm, src, BULK);
    }
    double gb = BULK / 1e9;
    printf("device: %s\n", di.name);
    printf("launch  tiny kernel, launch + wait, median of %d:\n", ITER);
    printf("        in-process (px_vm_submit + px_vm_wait)  %8.1f us\n", med_in);
    printf("        through pxhvd (Unix socket)             %8.1f us\n", med_hv);
    printf("        ratio                                   %8.3f   (goal <= 1.5)\n", med_hv / med_in);
    printf("data    16 MiB, best of 20, GB/s:\n");
    printf("        memcpy                                  %8.2f\n", gb / best_memcpy);
    printf("        in-process write / read                 %8.2f / %.2f\n", gb / best_iw, gb / best_ir);
    printf("        stream (socket) write / read            %8.2f / %.2f%s\n", gb / best_sw, gb / best_sr,
           same ? "" : "   (DATA MISMATCH)");
    printf("        shared memory (memfd) write / read      %8.2f / %.2f\n", gb / best_mw, gb / best_mr);
    printf("        stream write / memcpy                   %8.3f\n", best_memcpy / best_sw);
    printf("        shared memory write, read / memcpy      %8.3f, %.3f   (goal >= 0.8)\n", best_memcpy / best_mw,
           best_memcpy / best_mr);
    FILE *f = fopen(json, "w");
    if (f) {
        fprintf(f,
                "{\"device\": \"%s\", \"launch_us_in_process\": %.2f, \"launch_us_hvd\": %.2f, \"ratio\": %.4f,\n"
                " \"memcpy_gbs\": %.3f, \"in_process_write_gbs\": %.3f, \"in_process_read_gbs\": %.3f,\n"
                " \"stream_write_gbs\": %.3f, \"stream_read_gbs\": %.3f, \"shm_write_gbs\": %.3f, \"shm_read_gbs\": %.3f,\n"
                " \"data_ok\": %s}\n",
                di.name, med_in, med_hv, med_hv / med_in, gb / best_memcpy, gb / best_iw, gb / best_ir, gb / best_sw,
                gb / best_sr, gb / best_mw, gb / best_mr, same ? "true" : "false");
        fclose(f);
    }
    free(src);
    free(dst);
    munmap(shm, BULK);
    close(mfd);
    close(fd);
    hv_server_stop(sv);
    pthread_join(th, NULL);
    hv_server_destroy(sv);
    rmdir(dir);
    px_context_destroy(ctx);
    return same ? 0 : 1;
}
