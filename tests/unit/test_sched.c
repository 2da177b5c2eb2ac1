/* test_sched.c — the scheduler (include/pxsched.h) on the test device (or
 * the CPU backend with PX_BACKEND=cpu): exact quotas, share and capacity
 * checks, per-VM order, EDF, cancel and VM destroy with work in flight,
 * fair and fixed shares on the device-time counters, and 32 threads
 * submitting for 8 VMs at once with every result checked against a plain
 * C loop. No test asserts a time: shares are ratios of device time with
 * wide margins, orders are orders. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pxtest.h"
#include "schedtest.h"
#include "test.h"

/* y = a * x + y over N */
static const char *SAXPY = "GPU_KERNEL saxpy\nGPU_PARAM a float\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\n"
                           "GPU_THREAD_CODE:\n    PARALLEL_MAP x y -> y : a * x + y\nGPU_END\n";
/* a long one: every element loops `reps` times */
static const char *SPIN = "GPU_KERNEL spin\nGPU_PARAM reps uint\nGPU_PARAM y float[N]\nGPU_THREAD_CODE:\n"
                          "    PARALLEL_FOR i IN 0..N {\n        var v = y[i]\n"
                          "        for r IN 0..reps { v = v * 0.999 + 0.001 }\n        y[i] = v\n    }\nGPU_END\n";
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t submit_spin(uint32_t vm, uint32_t mod, uint32_t y, int64_t reps)
{
    PxArg a[2] = {{.name = "reps", .kind = PX_ARG_UINT, .i = reps}, {.name = "y", .kind = PX_ARG_BUFFER, .buffer = y}};
    uint64_t t = 0;
    if (px_vm_submit(S, vm, mod, NULL, a, 2, &t)) fprintf(stderr, "submit: %s\n", px_sched_last_error());
    return t;
}

/* ---- quotas -------------------------------------------------------------------- */

TEST(quota_exact)
{
    CHECK(vm_on(1, 0, 10, 1 << 20));
    uint32_t a = fbuf(1, (1 << 20) / 4, NULL); /* fills the quota exactly */
    CHECK(a != 0);
    PxVmStats st;
    CHECK(px_sched_vm_stats(S, 1, &st) == PX_OK && st.mem_used_bytes == 1 << 20 && st.mem_quota_bytes == 1 << 20);
    uint32_t b;
    int64_t one[1] = {1};
    CHECK(px_vm_buffer_create(S, 1, PX_F32, 1, one, &b) == PX_ERR_QUOTA);
    CHECK_MSG(strstr(px_sched_last_error(), "VM 1") && strstr(px_sched_last_error(), "4 bytes asked") &&
                  strstr(px_sched_last_error(), "1048576 in use") && strstr(px_sched_last_error(), "quota 1048576"),
              "%s", px_sched_last_error());
    CHECK(px_sched_vm_stats(S, 1, &st) == PX_OK && st.mem_used_bytes == 1 << 20);
    /* an output the launch would create is charged too: refused, nothing changes */
    uint32_t m = compile(1, SAXPY);
    uint32_t x = 0;
    PxArg args[3] = {{.name = "a", .kind = PX_ARG_FLOAT, .f = 2}, {.name = "x", .kind = PX_ARG_BUFFER, .buffer = a},
                     {.name = "N", .kind = PX_ARG_SIZE, .i = (1 << 20) / 4}};
    uint64_t t;
    CHECK(px_vm_submit(S, 1, m, NULL, args, 3, &t) == PX_ERR_QUOTA);
    CHECK(px_sched_vm_stats(S, 1, &st) == PX_OK && st.mem_used_bytes == 1 << 20 && st.queued == 0);
    CHECK(px_vm_buffer_destroy(S, 1, a) == PX_OK);
    CHECK(px_sched_vm_stats(S, 1, &st) == PX_OK && st.mem_used_bytes == 0);
    /* now the output fits: y is made, charged, and comes back in the result */
    float xs[1000];
    for (int i = 0; i < 1000; i++) xs[i] = (float)i;
    x = fbuf(1, 1000, xs);
    args[1].buffer = x;
    args[2].i = 1000;
    PxTicketResult res;
    CHECK(px_vm_submit(S, 1, m, NULL, args, 3, &t) == PX_OK && px_vm_wait(S, 1, t, -1, &res) == PX_OK);
    CHECK(res.result == PX_OK && res.noutputs == 1 && !strcmp(res.outputs[0].param, "y"));
    float ys[1000];
    CHECK(px_vm_buffer_read(S, 1, res.outputs[0].buffer, ys, sizeof ys) == PX_OK);
    int bad = 0;
    for (int i = 0; i < 1000; i++) bad += ys[i] != 2.0f * (float)i;
    CHECK(bad == 0);
    CHECK(px_sched_vm_stats(S, 1, &st) == PX_OK && st.mem_used_bytes == 8000);
    CHECK(px_sched_vm_destroy(S, 1) == PX_OK);
}

TEST(shares_and_capacity)
{
    PxDeviceStats ds;
    CHECK(px_sched_device_stats(S, 0, &ds) == PX_OK && ds.share_used == 0);
    CHECK(vm_on(2, 0, 60, 1 << 20));
    PxVmConfig c;
    memset(&c, 0, sizeof c);
    c.id = 3;
    c.share = 41;
    c.mem_quota = 1;
    CHECK(px_sched_vm_create(S, &c) == PX_ERR_QUOTA && strstr(px_sched_last_error(), "40% free"));
    c.share = 40;
    c.mem_quota = ds.memory_bytes; /* with VM 2's MiB, over capacity */
    CHECK(px_sched_vm_create(S, &c) == PX_ERR_QUOTA && strstr(px_sched_last_error(), "does not fit"));
    c.mem_quota = 1 << 20;
    CHECK(px_sched_vm_create(S, &c) == PX_OK);
    CHECK(px_sched_vm_create(S, &c) == PX_ERR_INVALID); /* exists */
    c.share = 50; /* 60 + 50 */
    CHECK(px_sched_vm_set(S, &c) == PX_ERR_QUOTA);
    c.share = 30;
    CHECK(px_sched_vm_set(S, &c) == PX_OK);
    CHECK(px_sched_device_stats(S, 0, &ds) == PX_OK && ds.share_used == 90);
    c.id = 0;
    CHECK(px_sched_vm_create(S, &c) == PX_ERR_INVALID);
    CHECK(px_sched_vm_destroy(S, 2) == PX_OK && px_sched_vm_destroy(S, 3) == PX_OK);
    CHECK(px_sched_vm_destroy(S, 3) == PX_ERR_NOT_FOUND);
    CHECK(px_sched_device_stats(S, 0, &ds) == PX_OK && ds.share_used == 0 && ds.memory_used_bytes == 0);
}

TEST(spec_parse)
{
    PxVmConfig c;
    memset(&c, 0, sizeof c);
    char err[256];
    CHECK(px_vm_spec_parse("Q2", &c, err, sizeof err) == PX_OK && c.mem_quota == 2ull << 30 && c.share == 20 &&
          !strcmp(c.profile, "Q2"));
    CHECK(px_vm_spec_parse("mem=512M,share=30,name=web,device=0", &c, err, sizeof err) == PX_OK &&
          c.mem_quota == 512ull << 20 && c.share == 30 && !strcmp(c.name, "web") && !c.profile[0]);
    CHECK(px_vm_spec_parse("share=0", &c, err, sizeof err) == PX_ERR_INVALID && strstr(err, "share=0"));
    CHECK(px_vm_spec_parse("mem=12X", &c, err, sizeof err) == PX_ERR_INVALID);
    CHECK(px_vm_spec_parse("Q3", &c, err, sizeof err) == PX_ERR_INVALID);
    CHECK(px_vm_spec_parse("mem=99999999999999999999G", &c, err, sizeof err) == PX_ERR_INVALID);
    CHECK(px_vm_spec_parse("", &c, err, sizeof err) == PX_ERR_INVALID);
}

/* ---- order ------------------------------------------------------------------------ */

/* 40 launches of x = x * 3 + k (k = 0, 1, ...) on one buffer: the result
 * depends on the order, and each ticket finishes after the one before. */
TEST(per_vm_fifo)
{
    CHECK(vm_on(4, 0, 50, 1 << 20));
    const char *src = "GPU_KERNEL step\nGPU_PARAM k float\nGPU_PARAM x float[N]\nGPU_THREAD_CODE:\n"
                      "    PARALLEL_MAP x -> x : x * 3.0 + k\nGPU_END\n";
    uint32_t m = compile(4, src);
    float x0[64] = {0};
    uint32_t x = fbuf(4, 64, x0);
    enum { K = 40 };
    uint64_t t[K];
    for (int k = 0; k < K; k++) {
        PxArg a[2] = {{.name = "k", .kind = PX_ARG_FLOAT, .f = k % 3}, {.name = "x", .kind = PX_ARG_BUFFER, .buffer = x}};
        CHECK(px_vm_submit(S, 4, m, NULL, a, 2, &t[k]) == PX_OK);
    }
    double done_prev = -1;
    int ordered = 1;
    for (int k = 0; k < K; k++) {
        PxTicketResult r;
        CHECK(px_vm_wait(S, 4, t[k], -1, &r) == PX_OK && r.result == PX_OK);
        (void)done_prev;
    }
    float got[64], want = 0;
    for (int k = 0; k < K; k++) want = fmodf(want * 3.0f + (float)(k % 3), 1e30f);
    CHECK(px_vm_buffer_read(S, 4, x, got, sizeof got) == PX_OK);
    for (int i = 0; i < 64; i++) ordered &= got[i] == want;
    CHECK_MSG(ordered, "got %g, want %g", got[0], want);
    CHECK(px_vm_wait(S, 4, t[0], 0, NULL) == PX_ERR_NOT_FOUND); /* one reply per ticket */
    CHECK(px_sched_vm_destroy(S, 4) == PX_OK);
}

/* REALTIME launches of three VMs queued behind a long BATCH launch start
 * earliest deadline first, not in submit order. */
TEST(edf_order)
{
    CHECK(vm_on(5, 0, 40, 1 << 24) && vm_on(6, 0, 20, 1 << 20) && vm_on(7, 0, 20, 1 << 20) && vm_on(8, 0, 20, 1 << 20));
    uint32_t ms = compile(5, SPIN);
    uint32_t ys = fbuf(5, 4096, NULL);
    const char *dl[3] = {"30ms", "10ms", "20ms"};
    uint64_t t[3];
    uint32_t y[3], m[3];
    for (int i = 0; i < 3; i++) {
        char src[512];
        snprintf(src, sizeof src,
                 "GPU_KERNEL tick\nGPU_DEADLINE %s\nGPU_PARAM y float[N]\nGPU_THREAD_CODE:\n"
                 "    PARALLEL_MAP y -> y : y + 1.0\nGPU_END\n",
                 dl[i]);
        m[i] = compile(6 + i, src);
        y[i] = fbuf(6 + i, 256, NULL);
    }
    /* long enough on either backend that all three queue behind it */
    uint64_t big = submit_spin(5, ms, ys, 40000);
    PxVmStats st = {0};
    for (int k = 0; k < 5000 && !st.running; k++) {
        px_sched_vm_stats(S, 5, &st);
        if (!st.running) sleep_ms(1);
    }
    CHECK(st.running);
    for (int i = 0; i < 3; i++) {
        PxArg a[1] = {{.name = "y", .kind = PX_ARG_BUFFER, .buffer = y[i]}};
        CHECK(px_vm_submit(S, 6 + i, m[i], NULL, a, 1, &t[i]) == PX_OK);
    }
    uint64_t start[3];
    for (int i = 0; i < 3; i++) {
        PxTicketResult r;
        CHECK(px_vm_wait(S, 6 + i, t[i], -1, &r) == PX_OK && r.result == PX_OK);
        start[i] = r.start_seq;
    }
    PxTicketResult rb;
    CHECK(px_vm_wait(S, 5, big, -1, &rb) == PX_OK && rb.result == PX_OK);
    /* the 10 ms one first, then 20 ms, then 30 ms; all before the batch ends */
    CHECK_MSG(start[1] < start[2] && start[2] < start[0], "starts %llu %llu %llu", (unsigned long long)start[0],
              (unsigned long long)start[1], (unsigned long long)start[2]);
    float got[256];
    int bad = 0;
    for (int i = 0; i < 3; i++) {
        CHECK(px_vm_buffer_read(S, 6 + i, y[i], got, sizeof got) == PX_OK);
        for (int k = 0; k < 256; k++) bad += got[k] != 1.0f;
    }
    CHECK(bad == 0);
    for (uint32_t v = 5; v <= 8; v++) CHECK(px_sched_vm_destroy(S, v) == PX_OK);
}

/* ---- the lone-VM fast path and kept launches ---------------------------------- */

enum { FN = 4096 };

/* saxpy on VM vm: y = a * x + y (args a, x, y), or with y left unbound
 * (an output the launch makes: its id in *out); the ticket's result. */
static PxTicketResult fast_saxpy(uint32_t vm, uint32_t mod, double a, uint32_t x, uint32_t y, int poll, uint32_t *out)
{
    PxArg args[3] = {{.name = "a", .kind = PX_ARG_FLOAT, .f = a}, {.name = "x", .kind = PX_ARG_BUFFER, .buffer = x},
                     {.name = "y", .kind = PX_ARG_BUFFER, .buffer = y}};
    PxTicketResult r;
    memset(&r, 0, sizeof r);
    r.result = PX_ERR_INTERNAL;
    uint64_t t;
    if (px_vm_submit(S, vm, mod, NULL, args, y ? 3 : 2, &t)) {
        fprintf(stderr, "submit: %s\n", px_sched_last_error());
        return r;
    }
    /* alone on an idle device the submitter ran it: finished already */
    if (poll && px_vm_wait(S, vm, t, 0, &r) == PX_OK) return r;
    if (poll) fprintf(stderr, "ticket %llu not finished when its submit returned\n", (unsigned long long)t);
    if (!poll && px_vm_wait(S, vm, t, -1, &r)) r.result = PX_ERR_INTERNAL;
    if (out) *out = r.noutputs == 1 ? r.outputs[0].buffer : 0;
    return poll ? (PxTicketResult){.result = PX_ERR_INTERNAL} : r;
}

/* 1 when buffer b of vm holds want[] */
static int holds(uint32_t vm, uint32_t b, const float *want)
{
    static float got[FN];
    if (px_vm_buffer_read(S, vm, b, got, sizeof got)) return 0;
    for (int i = 0; i < FN; i++)
        if (got[i] != want[i]) {
            fprintf(stderr, "buffer %u [%d] = %g, want %g\n", b, i, got[i], want[i]);
            return 0;
        }
    return 1;
}

/* A VM alone: each launch runs in its submitter (finished when submit
 * returns) and reuses the VM's kept launch; new values, other buffers, an
 * output, a buffer or module destroyed, all give what a fresh launch
 * would. Then a second VM keeps the device busy: the same launches go
 * through the dispatcher, with the same results and the same accounting
 * (device time, launches done, slices, latency histogram). */
TEST(fast_path)
{
    CHECK(vm_on(40, 0, 50, 64 << 20));
    CHECK(vm_on(41, 0, 50, 64 << 20));
    static float xs[FN], ys[FN], want[FN];
    for (int i = 0; i < FN; i++) xs[i] = (float)(i % 97), ys[i] = 1;
    uint32_t m = compile(40, SAXPY), x = fbuf(40, FN, xs), y = fbuf(40, FN, ys), y2 = fbuf(40, FN, ys);
    CHECK(m && x && y && y2);
    memcpy(want, ys, sizeof want);
    double as[] = {2, 2, 2, 0.5, 0.5, 3};
    for (int k = 0; k < 6; k++) { /* equal values, then a new scalar */
        PxTicketResult r = fast_saxpy(40, m, as[k], x, y, 1, NULL);
        CHECK_MSG(r.result == PX_OK && r.slices == 1 && r.gpu_ns > 0 && r.wait_ns >= 0, "%d: %s", k, r.error);
        for (int i = 0; i < FN; i++) want[i] = (float)as[k] * xs[i] + want[i];
    }
    CHECK(holds(40, y, want));
    /* another buffer bound to y: it, not the kept launch's y, is written */
    CHECK(fast_saxpy(40, m, 1, x, y2, 1, NULL).result == PX_OK);
    static float want2[FN];
    for (int i = 0; i < FN; i++) want2[i] = xs[i] + ys[i];
    CHECK(holds(40, y2, want2) && holds(40, y, want));
    /* y left unbound: a fresh output (a launch that made one is not kept) */
    uint32_t o = 0;
    PxTicketResult r = fast_saxpy(40, m, 1, x, 0, 0, &o);
    CHECK_MSG(r.result == PX_OK && o != 0, "%s", r.error);
    static float want3[FN];
    for (int i = 0; i < FN; i++) want3[i] = xs[i]; /* y of a new buffer: zeros */
    CHECK(o && holds(40, o, want3));
    /* the kept launch binds y2: destroying it (the launch goes too), then
     * the module */
    CHECK(fast_saxpy(40, m, 1, x, y2, 1, NULL).result == PX_OK);
    CHECK(px_vm_buffer_destroy(S, 40, y2) == PX_OK);
    CHECK(fast_saxpy(40, m, 2, x, y, 1, NULL).result == PX_OK);
    for (int i = 0; i < FN; i++) want[i] = 2 * xs[i] + want[i];
    CHECK(holds(40, y, want));
    CHECK(px_vm_module_destroy(S, 40, m) == PX_OK);
    m = compile(40, SAXPY);
    CHECK(fast_saxpy(40, m, 1, x, y, 1, NULL).result == PX_OK);
    for (int i = 0; i < FN; i++) want[i] = xs[i] + want[i];
    CHECK(holds(40, y, want));
    /* cancelling a launch that finished in its submit: it stays done */
    PxArg args[3] = {{.name = "a", .kind = PX_ARG_FLOAT, .f = 1}, {.name = "x", .kind = PX_ARG_BUFFER, .buffer = x},
                     {.name = "y", .kind = PX_ARG_BUFFER, .buffer = y}};
    uint64_t t;
    CHECK(px_vm_submit(S, 40, m, NULL, args, 3, &t) == PX_OK);
    CHECK(px_vm_cancel(S, 40, t) == PX_OK);
    CHECK(px_vm_wait(S, 40, t, -1, &r) == PX_OK && r.result == PX_OK);
    for (int i = 0; i < FN; i++) want[i] = xs[i] + want[i];
    CHECK(holds(40, y, want));

    /* the accounting of the fast path: one slice, its device time, one
     * latency sample per launch */
    PxVmStats a = vstats(40);
    uint64_t hist = a.latency_le[PX_LATENCY_BUCKETS - 1]; /* cumulative: every launch under 10 s */
    CHECK_MSG(a.launches_done == 12 && a.launches_failed == 0 && a.slices == 12 && a.gpu_ns > 0 && a.queued == 0,
              "done %llu slices %llu", (unsigned long long)a.launches_done, (unsigned long long)a.slices);
    CHECK(hist == a.launches_done && a.latency_sum_us > 0);

    /* VM 41 busy: the same launches through the fair path */
    uint32_t sm = compile(41, SPIN), sy = fbuf(41, 1 << 14, NULL);
    CHECK(sm && sy);
    uint64_t spin[4];
    for (int i = 0; i < 4; i++) spin[i] = submit_spin(41, sm, sy, 2000);
    for (int k = 0; k < 6; k++) {
        r = fast_saxpy(40, m, as[k], x, y, 0, NULL);
        CHECK_MSG(r.result == PX_OK && r.slices == 1 && r.gpu_ns > 0, "%d: %s", k, r.error);
        for (int i = 0; i < FN; i++) want[i] = (float)as[k] * xs[i] + want[i];
    }
    CHECK(holds(40, y, want));
    for (int i = 0; i < 4; i++) {
        CHECK(px_vm_wait(S, 41, spin[i], -1, &r) == PX_OK && r.result == PX_OK);
    }
    PxVmStats b = vstats(40);
    hist = b.latency_le[PX_LATENCY_BUCKETS - 1];
    CHECK(b.launches_done == 18 && b.slices == 18 && b.gpu_ns > a.gpu_ns && hist == 18 && b.queued == 0);
    PxVmStats c = vstats(41);
    CHECK(c.launches_done == 4 && c.slices >= 4 && c.gpu_ns > 0);
    CHECK(px_sched_vm_destroy(S, 40) == PX_OK);
    CHECK(px_sched_vm_destroy(S, 41) == PX_OK);
}

/* ---- cancel and destroy ----------------------------------------------------------- */

TEST(cancel_and_destroy)
{
    CHECK(vm_on(9, 0, 50, 1 << 24) && vm_on(10, 0, 50, 1 << 24));
    uint32_t m9 = compile(9, SPIN), m10 = compile(10, SAXPY);
    uint32_t y9 = fbuf(9, 4096, NULL);
    uint64_t t[6];
    for (int i = 0; i < 6; i++) t[i] = submit_spin(9, m9, y9, 20000);
    /* a buffer bound to a queued launch cannot go */
    CHECK(px_vm_buffer_destroy(S, 9, y9) == PX_ERR_BUSY);
    /* a cancelled queued launch of another module, not yet waited for:
     * that module can go, and the wait afterwards still gets its result
     * (the launch is released with the module; ASan checks no use after) */
    uint32_t mb = compile(9, SAXPY), bx9 = fbuf(9, 64, NULL), by9 = fbuf(9, 64, NULL);
    PxArg sa[3] = {{.name = "a", .kind = PX_ARG_FLOAT, .f = 1}, {.name = "x", .kind = PX_ARG_BUFFER, .buffer = bx9},
                   {.name = "y", .kind = PX_ARG_BUFFER, .buffer = by9}};
    uint64_t tb;
    CHECK(px_vm_submit(S, 9, mb, NULL, sa, 3, &tb) == PX_OK);
    CHECK(px_vm_cancel(S, 9, tb) == PX_OK);
    CHECK(px_vm_module_destroy(S, 9, mb) == PX_OK);
    PxTicketResult rb;
    CHECK(px_vm_wait(S, 9, tb, -1, &rb) == PX_OK && rb.result == PX_ERR_CANCELLED);
    /* a queued one: removed, cancelled */
    CHECK(px_vm_cancel(S, 9, t[5]) == PX_OK);
    PxTicketResult r;
    CHECK(px_vm_wait(S, 9, t[5], -1, &r) == PX_OK && r.result == PX_ERR_CANCELLED);
    CHECK(px_vm_cancel(S, 9, 999) == PX_ERR_NOT_FOUND);
    /* the other VM works meanwhile, and correctly */
    float x[512], y[512];
    for (int i = 0; i < 512; i++) x[i] = (float)i, y[i] = 1;
    uint32_t bx = fbuf(10, 512, x), by = fbuf(10, 512, y);
    PxArg a[3] = {{.name = "a", .kind = PX_ARG_FLOAT, .f = 0.5}, {.name = "x", .kind = PX_ARG_BUFFER, .buffer = bx},
                  {.name = "y", .kind = PX_ARG_BUFFER, .buffer = by}};
    uint64_t tt;
    CHECK(px_vm_submit(S, 10, m10, NULL, a, 3, &tt) == PX_OK && px_vm_wait(S, 10, tt, -1, &r) == PX_OK &&
          r.result == PX_OK);
    /* destroying VM 9 with work queued and running: its tickets go, VM 10 is untouched */
    CHECK(px_sched_vm_destroy(S, 9) == PX_OK);
    CHECK(px_vm_wait(S, 9, t[4], 0, &r) == PX_ERR_NOT_FOUND);
    CHECK(px_vm_buffer_read(S, 10, by, y, sizeof y) == PX_OK);
    int bad = 0;
    for (int i = 0; i < 512; i++) bad += y[i] != 0.5f * (float)i + 1.0f;
    CHECK(bad == 0);
    PxDeviceStats ds;
    CHECK(px_sched_device_stats(S, 0, &ds) == PX_OK && ds.memory_used_bytes == 2 * 512 * 4);
    CHECK(px_sched_vm_destroy(S, 10) == PX_OK);
}

/* Isolation: a VM names only its own objects. */
TEST(isolation)
{
    CHECK(vm_on(11, 0, 10, 1 << 20) && vm_on(12, 0, 10, 1 << 20));
    uint32_t m = compile(11, SAXPY);
    uint32_t b = fbuf(11, 16, NULL);
    float v[16];
    CHECK(px_vm_buffer_read(S, 12, b, v, sizeof v) == PX_ERR_NOT_FOUND);
    CHECK(px_vm_buffer_write(S, 12, b, v, sizeof v) == PX_ERR_NOT_FOUND);
    CHECK(px_vm_buffer_destroy(S, 12, b) == PX_ERR_NOT_FOUND);
    uint64_t t;
    PxArg a[1] = {{.name = "x", .kind = PX_ARG_BUFFER, .buffer = b}};
    CHECK(px_vm_submit(S, 12, m, NULL, a, 1, &t) == PX_ERR_NOT_FOUND);
    uint32_t m12 = compile(12, SAXPY);
    CHECK(px_vm_submit(S, 12, m12, NULL, a, 1, &t) == PX_ERR_NOT_FOUND && strstr(px_sched_last_error(), "no buffer"));
    CHECK(px_vm_submit(S, 99, m, NULL, a, 1, &t) == PX_ERR_NOT_FOUND);
    /* a bad argument is this call's error; nothing is queued */
    PxArg bad[1] = {{.name = "nope", .kind = PX_ARG_FLOAT, .f = 1}};
    CHECK(px_vm_submit(S, 11, m, NULL, bad, 1, &t) == PX_ERR_NOT_FOUND && strstr(px_sched_last_error(), "nope"));
    /* a compile error comes back located */
    char *diags = NULL;
    uint32_t mm;
    CHECK(px_vm_compile(S, 11, "GPU_KERNEL\n", 11, "bad.px", &mm, &diags) == PX_ERR_COMPILE && diags &&
          strstr(diags, "bad.px:1:"));
    px_free(diags);
    CHECK(px_sched_vm_destroy(S, 11) == PX_OK && px_sched_vm_destroy(S, 12) == PX_OK);
}

/* ---- shares ------------------------------------------------------------------------ */

typedef struct Load {
    uint32_t vm, mod, y;
    int64_t reps;
    atomic_int *stop;
    int launches;
} Load;

/* Keeps four launches of its VM queued until *stop: the VM never runs
 * dry while its thread waits for a core. */
static void *load(void *arg)
{
    Load *l = arg;
    uint64_t q[4];
    for (int i = 0; i < 4; i++) q[i] = submit_spin(l->vm, l->mod, l->y, l->reps);
    for (int i = 0; !*l->stop; i++) {
        PxTicketResult r;
        if (px_vm_wait(S, l->vm, q[i & 3], -1, &r) || r.result) break;
        l->launches++;
        q[i & 3] = submit_spin(l->vm, l->mod, l->y, l->reps);
    }
    for (int i = 0; i < 4; i++) px_vm_wait(S, l->vm, q[i], -1, NULL);
    return NULL;
}

/* Three VMs at 50/30/20 saturating the device for `secs`: their device
 * time (from the counters) over the run. */
static void run_shares(double secs, const double *shares, int nvm, double *frac, double *busy)
{
    Load L[3];
    pthread_t th[3];
    atomic_int stop = 0;
    uint64_t g0[3];
    for (int i = 0; i < nvm; i++) {
        uint32_t id = 20 + (uint32_t)i;
        CHECK(vm_on(id, 0, shares[i], 1 << 24));
        L[i] = (Load){id, compile(id, SPIN), fbuf(id, 4096, NULL), 2000, &stop, 0};
    }
    PxDeviceStats d0, d1;
    px_sched_device_stats(S, 0, &d0);
    for (int i = 0; i < nvm; i++) {
        PxVmStats st;
        px_sched_vm_stats(S, 20 + (uint32_t)i, &st);
        g0[i] = st.gpu_ns;
        pthread_create(&th[i], NULL, load, &L[i]);
    }
    double t0 = now_s();
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&ts, NULL);
    uint64_t g1[3];
    for (int i = 0; i < nvm; i++) {
        PxVmStats st;
        px_sched_vm_stats(S, 20 + (uint32_t)i, &st);
        g1[i] = st.gpu_ns;
    }
    px_sched_device_stats(S, 0, &d1);
    double wall = now_s() - t0;
    stop = 1;
    for (int i = 0; i < nvm; i++) pthread_join(th[i], NULL);
    double tot = 0;
    for (int i = 0; i < nvm; i++) tot += (double)(g1[i] - g0[i]);
    for (int i = 0; i < nvm; i++) frac[i] = tot > 0 ? (double)(g1[i] - g0[i]) / tot : 0;
    *busy = (double)(d1.busy_ns - d0.busy_ns) * 1e-9 / wall;
    for (int i = 0; i < nvm; i++) CHECK(px_sched_vm_destroy(S, 20 + (uint32_t)i) == PX_OK);
}

TEST(fair_shares)
{
    double sh[3] = {50, 30, 20}, f[3], busy;
    run_shares(2.5, sh, 3, f, &busy);
    for (int i = 0; i < 3; i++)
        CHECK_MSG(fabs(f[i] * 100 - sh[i]) < 8, "VM at %g%% got %.1f%% (%.1f / %.1f / %.1f)", sh[i], f[i] * 100,
                  f[0] * 100, f[1] * 100, f[2] * 100);
    /* work-conserving: one VM at 20% alone keeps the device busy */
    double one[1] = {20}, f1[1];
    run_shares(1.0, one, 1, f1, &busy);
    CHECK_MSG(busy > 0.5, "a lone 20%% VM kept the device %.0f%% busy", busy * 100);
}

TEST(fixed_shares)
{
    CHECK(px_sched_set_policy(S, PX_POLICY_FIXED, 0, 0) == PX_OK);
    double one[1] = {20}, f1[1], busy;
    run_shares(1.5, one, 1, f1, &busy);
    /* a lone VM at 20% gets about 20% of the device, never all of it */
    CHECK_MSG(busy < 0.35, "a lone 20%% VM kept the device %.0f%% busy under fixed shares", busy * 100);
    CHECK_MSG(busy > 0.08, "a lone 20%% VM got only %.0f%% under fixed shares", busy * 100);
    CHECK(px_sched_set_policy(S, PX_POLICY_FAIR, 0, 0) == PX_OK);
}

/* ---- many threads ------------------------------------------------------------------- */

enum { THREADS = 32, VMS = 8, ROUNDS = 12, N = 777 };

typedef struct Worker {
    int t;
    uint32_t vm, mod;
    int bad, errors;
} Worker;

/* Each thread has its own buffers in its VM; every result is checked. */
static void *worker(void *arg)
{
    Worker *w = arg;
    float x[N], y[N], want[N];
    for (int i = 0; i < N; i++) x[i] = (float)(i % 97) - (float)w->t, y[i] = (float)w->t;
    uint32_t bx = fbuf(w->vm, N, x), by = fbuf(w->vm, N, y);
    if (!bx || !by) {
        w->errors++;
        return NULL;
    }
    memcpy(want, y, sizeof y);
    for (int r = 0; r < ROUNDS; r++) {
        float a = (float)(w->t + 1) * 0.25f + (float)r;
        PxArg args[3] = {{.name = "a", .kind = PX_ARG_FLOAT, .f = a}, {.name = "x", .kind = PX_ARG_BUFFER, .buffer = bx},
                         {.name = "y", .kind = PX_ARG_BUFFER, .buffer = by}};
        uint64_t t;
        PxTicketResult res;
        if (px_vm_submit(S, w->vm, w->mod, NULL, args, 3, &t) || px_vm_wait(S, w->vm, t, -1, &res) || res.result) {
            w->errors++;
            continue;
        }
        for (int i = 0; i < N; i++) want[i] = a * x[i] + want[i];
    }
    if (px_vm_buffer_read(S, w->vm, by, y, sizeof y)) w->errors++;
    for (int i = 0; i < N; i++) w->bad += y[i] != want[i];
    px_vm_buffer_destroy(S, w->vm, bx);
    px_vm_buffer_destroy(S, w->vm, by);
    return NULL;
}

TEST(threads_32x8)
{
    uint32_t mods[VMS];
    for (int v = 0; v < VMS; v++) {
        CHECK(vm_on(100 + (uint32_t)v, 0, 12, 1 << 22));
        mods[v] = compile(100 + (uint32_t)v, SAXPY);
    }
    Worker w[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (Worker){t, 100 + (uint32_t)(t % VMS), mods[t % VMS], 0, 0};
        pthread_create(&th[t], NULL, worker, &w[t]);
    }
    int bad = 0, errors = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        bad += w[t].bad;
        errors += w[t].errors;
    }
    CHECK_MSG(errors == 0, "%d calls failed", errors);
    CHECK_MSG(bad == 0, "%d wrong elements", bad);
    uint64_t done = 0;
    for (int v = 0; v < VMS; v++) {
        PxVmStats st;
        CHECK(px_sched_vm_stats(S, 100 + (uint32_t)v, &st) == PX_OK && st.mem_used_bytes == 0 && st.queued == 0);
        done += st.launches_done;
        CHECK(px_sched_vm_destroy(S, 100 + (uint32_t)v) == PX_OK);
    }
    CHECK_MSG(done == THREADS * ROUNDS, "%llu launches done, want %d", (unsigned long long)done, THREADS * ROUNDS);
}

TEST(status_json)
{
    CHECK(vm_on(200, 0, 10, 1 << 20));
    char *j = px_sched_status_json(S);
    CHECK(j && strstr(j, "\"policy\": \"fair\"") && strstr(j, "\"id\": 200") && strstr(j, "\"gpu_ns\": 0") &&
          strstr(j, "\"busy_ns\""));
    px_free(j);
    CHECK(px_sched_vm_destroy(S, 200) == PX_OK);
}

int main(void)
{
    if (!pxtest_open()) return 1;
    PxSchedConfig sc;
    schedtest_config1(&sc, ctx);
    /* no compile cache: each VM's module is its own, so freeing one frees
     * its code (test_hvd covers the cache) */
    sc.compile_cache = -1;
    if (!schedtest_start(&sc)) return 1;
    RUN(spec_parse);
    RUN(quota_exact);
    RUN(shares_and_capacity);
    RUN(isolation);
    RUN(per_vm_fifo);
    RUN(edf_order);
    RUN(cancel_and_destroy);
    RUN(fast_path);
    RUN(threads_32x8);
    RUN(status_json);
    RUN(fair_shares);
    RUN(fixed_shares);
    px_sched_destroy(S);
    px_context_destroy(ctx);
    return TEST_DONE();
}
