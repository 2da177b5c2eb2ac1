/* test_oversub.c — oversubscription (eviction to host memory, restore
 * before a launch) and device loss (fault injection, recovery in place) of
 * the scheduler, on the test device or the CPU backend (PX_BACKEND=cpu).
 * Expected values come from plain C loops over exact integers in floats;
 * residency is checked against the device's capacity after every step. No
 * timing is asserted. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCHEDTEST_FILE "saxpy.px"
#include "pxtest.h"
#include "schedtest.h"
#include "sched/sched.h"
#include "test.h"

/* y = a * x + y over N */
static const char *SAXPY = "GPU_KERNEL saxpy\nGPU_PARAM a float\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\n"
                           "GPU_THREAD_CODE:\n    PARALLEL_MAP x y -> y : a * x + y\nGPU_END\n";

static PxContext *ctx2; /* a second context on the same backend: device 1 */
static int host_copies;  /* PxSchedConfig.host_copies of the next mk */

static int mk(double ratio, uint64_t cap, int ndev, int slice_us)
{
    PxSchedConfig sc;
    px_sched_config_default(&sc);
    sc.ndevices = ndev;
    sc.devices[0] = ctx;
    sc.devices[1] = ctx2;
    sc.capacity[0] = sc.capacity[1] = cap;
    sc.oversubscribe = ratio;
    sc.host_copies = host_copies;
    sc.compile_cache = -1;
    if (slice_us) sc.slice_us = sc.long_slice_us = slice_us;
    S = NULL;
    PxResult r = px_sched_create(&sc, &S);
    if (r) fprintf(stderr, "scheduler: %s\n", px_sched_last_error());
    return r == PX_OK;
}

/* A buffer of n floats, v[i] = base + i % 97 (exact in a float). */
static uint32_t fbuf_seq(uint32_t vm, int64_t n, float base)
{
    float *v = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) v[i] = base + (float)(i % 97);
    uint32_t b = fbuf(vm, n, v);
    free(v);
    return b;
}

static uint64_t submit_saxpy(uint32_t vm, uint32_t mod, float a, uint32_t x, uint32_t y, PxResult *r)
{
    PxArg args[3] = {{.name = "a", .kind = PX_ARG_FLOAT, .f = a},
                     {.name = "x", .kind = PX_ARG_BUFFER, .buffer = x},
                     {.name = "y", .kind = PX_ARG_BUFFER, .buffer = y}};
    uint64_t t = 0;
    *r = px_vm_submit(S, vm, mod, NULL, args, 3, &t);
    return t;
}

/* Runs y = a*x + y and waits; the ticket's result. */
static PxResult run_saxpy(uint32_t vm, uint32_t mod, float a, uint32_t x, uint32_t y, PxTicketResult *res)
{
    PxResult r;
    uint64_t t = submit_saxpy(vm, mod, a, x, y, &r);
    if (r) return r;
    if (px_vm_wait(S, vm, t, 60000, res)) return PX_ERR_NOT_READY;
    return res->result;
}

/* Buffer y of vm holds, at i, base_y + i%97 + k * a * (base_x + i%97). */
static int holds(uint32_t vm, uint32_t y, int64_t n, float base_x, float base_y, float a, int k)
{
    float *v = malloc((size_t)n * 4);
    int ok = px_vm_buffer_read(S, vm, y, v, (size_t)n * 4) == PX_OK;
    for (int64_t i = 0; ok && i < n; i++) {
        float x = base_x + (float)(i % 97), want = base_y + (float)(i % 97);
        for (int j = 0; j < k; j++) want = a * x + want;
        if (v[i] != want) {
            fprintf(stderr, "vm %u buffer %u [%lld] = %g, want %g\n", vm, y, (long long)i, v[i], want);
            ok = 0;
        }
    }
    free(v);
    return ok;
}

#define MIB (1ull << 20)

/* ---- oversubscription ------------------------------------------------------ */

TEST(off_refuses_over_capacity)
{
    CHECK(mk(0, 4 * MIB, 1, 0));
    if (!S) return;
    CHECK(vm_create(1, 0, 10, 3 * MIB) == PX_OK);
    CHECK(vm_create(2, 0, 10, 2 * MIB) == PX_ERR_QUOTA);
    CHECK(strstr(px_sched_last_error(), "does not fit") != NULL);
    CHECK(vm_create(2, 0, 10, 1 * MIB) == PX_OK);
    px_sched_destroy(S);
    /* a ratio below 1 (or absurd) is refused */
    PxSchedConfig sc;
    px_sched_config_default(&sc);
    sc.ndevices = 1;
    sc.devices[0] = ctx;
    sc.oversubscribe = 0.5;
    CHECK(px_sched_create(&sc, &S) == PX_ERR_INVALID);
}

TEST(quotas_past_capacity)
{
    CHECK(mk(1.5, 4 * MIB, 1, 0));
    if (!S) return;
    CHECK(vm_create(1, 0, 10, 3 * MIB) == PX_OK);
    CHECK(vm_create(2, 0, 10, 3 * MIB) == PX_OK); /* 6 MiB of quotas on 4 MiB */
    CHECK(vm_create(3, 0, 10, 1) == PX_ERR_QUOTA);
    CHECK(strstr(px_sched_last_error(), "oversubscribed") != NULL);
    /* quotas stay exact per VM */
    int64_t sh[1] = {(int64_t)(3 * MIB / 4) + 1};
    uint32_t b;
    CHECK(px_vm_buffer_create(S, 1, PX_F32, 1, sh, &b) == PX_ERR_QUOTA);
    px_sched_destroy(S);
}

/* Two VMs whose buffers together pass the capacity take turns: each
 * launch restores its own buffers and evicts the other's; every result
 * and every host read is right, and residency never passes capacity. */
TEST(evict_restore_turns)
{
    const uint64_t cap = 4 * MIB;
    const int64_t n = (int64_t)(cap * 35 / 100 / 4); /* x and y: 70% of the capacity per VM */
    CHECK(mk(1.5, cap, 1, 0));
    if (!S) return;
    CHECK(vm_create(1, 0, 10, 3 * MIB) == PX_OK && vm_create(2, 0, 10, 3 * MIB) == PX_OK);
    uint32_t m1 = compile(1, SAXPY), m2 = compile(2, SAXPY);
    uint32_t x1 = fbuf_seq(1, n, 1), y1 = fbuf_seq(1, n, 5);
    CHECK(resident(0) == 2 * (uint64_t)n * 4);
    uint32_t x2 = fbuf_seq(2, n, 2), y2 = fbuf_seq(2, n, 7);
    CHECK(m1 && m2 && x1 && y1 && x2 && y2);
    CHECK(resident(0) <= cap);
    CHECK(vstats(1).evictions >= 1); /* VM 2's buffers pushed VM 1's out */
    /* a read of an evicted buffer comes from its host copy */
    CHECK(holds(1, y1, n, 1, 5, 0, 0));
    for (int k = 1; k <= 3; k++) {
        PxTicketResult res;
        PxResult r1 = run_saxpy(1, m1, 2, x1, y1, &res);
        CHECK_MSG(r1 == PX_OK, "vm 1 round %d: %s", k, res.error);
        CHECK(resident(0) <= cap);
        PxResult r2 = run_saxpy(2, m2, 3, x2, y2, &res);
        CHECK_MSG(r2 == PX_OK, "vm 2 round %d: %s", k, res.error);
        CHECK(resident(0) <= cap);
        CHECK(holds(1, y1, n, 1, 5, 2, k));
        CHECK(holds(2, y2, n, 2, 7, 3, k));
    }
    PxVmStats v1 = vstats(1), v2 = vstats(2);
    CHECK(v1.evictions >= 3 && v2.evictions >= 2);
    CHECK(v1.bytes_restored >= 3 * 2 * (uint64_t)n * 4);
    PxDeviceStats ds;
    px_sched_device_stats(S, 0, &ds);
    CHECK(ds.evictions == v1.evictions + v2.evictions);
    CHECK(ds.memory_used_bytes == 4 * (uint64_t)n * 4);
    char *j = px_sched_status_json(S);
    CHECK(j && strstr(j, "\"memory_resident_bytes\"") && strstr(j, "\"bytes_evicted\"") &&
          strstr(j, "\"device_losses\": 0"));
    px_free(j);
    /* a write to an evicted buffer lands in its host copy and is used */
    float *v = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) v[i] = 5 + (float)(i % 97);
    CHECK(px_vm_buffer_write(S, 1, y1, v, (size_t)n * 4) == PX_OK);
    free(v);
    PxTicketResult res;
    CHECK(run_saxpy(1, m1, 2, x1, y1, &res) == PX_OK);
    CHECK(holds(1, y1, n, 1, 5, 2, 1));
    px_sched_destroy(S);
}

/* Short slices and both VMs submitting at once: launches are evicted and
 * restored between their own slices (their programs recorded again), and
 * the outputs are still exact. */
TEST(evict_between_slices)
{
    const uint64_t cap = 4 * MIB;
    const int64_t n = (int64_t)(cap * 30 / 100 / 4);
    CHECK(mk(1.5, cap, 1, 20));
    if (!S) return;
    CHECK(vm_create(1, 0, 10, 3 * MIB) == PX_OK && vm_create(2, 0, 10, 3 * MIB) == PX_OK);
    uint32_t m[3] = {0, compile(1, SAXPY), compile(2, SAXPY)};
    uint32_t x[3] = {0, fbuf_seq(1, n, 1), fbuf_seq(2, n, 2)}, y[3] = {0, fbuf_seq(1, n, 3), fbuf_seq(2, n, 4)};
    enum { K = 6 };
    uint64_t t[3][K];
    for (int k = 0; k < K; k++)
        for (uint32_t vm = 1; vm <= 2; vm++) {
            PxResult r;
            t[vm][k] = submit_saxpy(vm, m[vm], (float)vm, x[vm], y[vm], &r);
            CHECK(r == PX_OK);
        }
    int slices = 0;
    for (int k = 0; k < K; k++)
        for (uint32_t vm = 1; vm <= 2; vm++) {
            PxTicketResult res;
            CHECK(px_vm_wait(S, vm, t[vm][k], 60000, &res) == PX_OK);
            CHECK_MSG(res.result == PX_OK, "vm %u launch %d: %s", vm, k, res.error);
            slices += res.slices;
        }
    CHECK(slices > 2 * K); /* they were sliced */
    CHECK(resident(0) <= cap);
    CHECK(holds(1, y[1], n, 1, 3, 1, K));
    CHECK(holds(2, y[2], n, 2, 4, 2, K));
    CHECK(vstats(1).evictions + vstats(2).evictions >= 2);
    px_sched_destroy(S);
}

/* A launch whose own buffers pass the capacity can never run: a clear
 * error at submit, naming the bytes and the capacity; nothing else breaks. */
TEST(own_launch_too_large)
{
    const uint64_t cap = 4 * MIB;
    const int64_t n = (int64_t)(cap * 60 / 100 / 4);
    CHECK(mk(2, cap, 1, 0));
    if (!S) return;
    CHECK(vm_create(1, 0, 10, 6 * MIB) == PX_OK);
    uint32_t m = compile(1, SAXPY), x = fbuf_seq(1, n, 1), y = fbuf_seq(1, n, 2); /* each fits alone */
    CHECK(m && x && y);
    PxResult r;
    submit_saxpy(1, m, 2, x, y, &r);
    CHECK(r == PX_ERR_QUOTA);
    char want[64];
    snprintf(want, sizeof want, "%llu bytes", (unsigned long long)(2 * (uint64_t)n * 4));
    CHECK_MSG(strstr(px_sched_last_error(), want) && strstr(px_sched_last_error(), "capacity of 4194304"),
              "message: %s", px_sched_last_error());
    /* the same kernel on buffers that fit runs */
    uint32_t z = fbuf_seq(1, n / 4, 3), w = fbuf_seq(1, n / 4, 4);
    PxTicketResult res;
    CHECK(run_saxpy(1, m, 2, z, w, &res) == PX_OK);
    CHECK(holds(1, w, n / 4, 3, 4, 2, 1));
    CHECK(holds(1, y, n, 1, 2, 0, 0));
    px_sched_destroy(S);
}

/* ---- device loss ------------------------------------------------------------- */

/* Device 0 is lost during VM 1's launch: that launch fails with
 * PX_ERR_DEVICE_LOST naming the device; the launch queued behind it runs
 * on the recreated device; a host-written buffer survives, a buffer a
 * launch wrote is lost until written again; VM 2 on device 1 never sees
 * anything. */
TEST(device_loss_recovery)
{
    if (!strcmp(px_context_backend(ctx), "cpu")) {
        CHECK(mk(0, 64 * MIB, 1, 0));
    if (!S) return;
        CHECK(sched_inject_loss(S, 0) == PX_ERR_UNSUPPORTED);
        px_sched_destroy(S);
        return;
    }
    const int64_t n = 4096;
    host_copies = 1;
    CHECK(mk(0, 64 * MIB, 2, 0));
    host_copies = 0;
    if (!S) return;
    CHECK(vm_create(1, 0, 10, 8 * MIB) == PX_OK && vm_create(2, 1, 10, 8 * MIB) == PX_OK);
    uint32_t m1 = compile(1, SAXPY), m2 = compile(2, SAXPY);
    uint32_t x = fbuf_seq(1, n, 1), y = fbuf_seq(1, n, 2), z = fbuf_seq(1, n, 3);
    uint32_t x2 = fbuf_seq(2, n, 4), y2 = fbuf_seq(2, n, 5);
    PxTicketResult res;
    CHECK(run_saxpy(1, m1, 2, x, y, &res) == PX_OK); /* y now written by a launch */
    CHECK(run_saxpy(2, m2, 3, x2, y2, &res) == PX_OK);

    CHECK(sched_inject_loss(S, 0) == PX_OK);
    PxResult r;
    uint64_t lost = submit_saxpy(1, m1, 2, x, y, &r);
    uint64_t queued = submit_saxpy(1, m1, 2, x, z, &r);
    uint64_t other = submit_saxpy(2, m2, 3, x2, y2, &r);
    CHECK(px_vm_wait(S, 1, lost, 60000, &res) == PX_OK);
    CHECK(res.result == PX_ERR_DEVICE_LOST);
    CHECK_MSG(strstr(res.error, "device 0") && strstr(res.error, "lost"), "message: %s", res.error);
    CHECK(px_vm_wait(S, 1, queued, 60000, &res) == PX_OK);
    CHECK_MSG(res.result == PX_OK, "queued launch: %s", res.error);
    CHECK(holds(1, z, n, 1, 3, 2, 1));
    CHECK(holds(1, x, n, 1, 1, 0, 0)); /* host-written: kept */
    float *v = malloc((size_t)n * 4);
    CHECK(px_vm_buffer_read(S, 1, y, v, (size_t)n * 4) == PX_ERR_DEVICE_LOST);
    CHECK(run_saxpy(1, m1, 2, x, y, &res) == PX_ERR_DEVICE_LOST);
    CHECK_MSG(strstr(res.error, "write it again"), "message: %s", res.error);
    for (int64_t i = 0; i < n; i++) v[i] = 2 + (float)(i % 97);
    CHECK(px_vm_buffer_write(S, 1, y, v, (size_t)n * 4) == PX_OK);
    free(v);
    CHECK(run_saxpy(1, m1, 2, x, y, &res) == PX_OK);
    CHECK(holds(1, y, n, 1, 2, 2, 1));
    /* the other device: untouched */
    CHECK(px_vm_wait(S, 2, other, 60000, &res) == PX_OK && res.result == PX_OK);
    CHECK(holds(2, y2, n, 4, 5, 3, 2));
    PxDeviceStats d0, d1;
    px_sched_device_stats(S, 0, &d0);
    px_sched_device_stats(S, 1, &d1);
    CHECK(d0.losses == 1 && d0.launches_lost == 1 && d1.losses == 0 && d1.launches_lost == 0);
    CHECK(vstats(1).launches_lost == 1 && vstats(2).launches_lost == 0 && vstats(2).launches_failed == 0);
    /* a new module compiles and runs on the recreated device */
    uint32_t m3 = compile(1, SAXPY);
    CHECK(m3 && run_saxpy(1, m3, 1, x, z, &res) == PX_OK);
    CHECK(holds(1, z, n, 1, 3, 1, 3)); /* 3 + x + 2x */
    px_sched_destroy(S);
}

/* Two VMs' long launches run slices in turn on device 0 when it is lost:
 * both fail (the one on the device and the one half done), VM 1's launch
 * queued behind its own runs on the recreated device. */
TEST(device_loss_fails_started)
{
    if (!strcmp(px_context_backend(ctx), "cpu")) return; /* device_loss_recovery checks the refusal */
    const int64_t n = 1 << 22;
    host_copies = 1;
    CHECK(mk(0, 256 * MIB, 1, 20));
    host_copies = 0;
    if (!S) return;
    CHECK(vm_create(1, 0, 10, 64 * MIB) == PX_OK && vm_create(2, 0, 10, 64 * MIB) == PX_OK);
    uint32_t m[3] = {0, compile(1, SAXPY), compile(2, SAXPY)};
    uint32_t x[3] = {0, fbuf_seq(1, n, 1), fbuf_seq(2, n, 2)}, y[3] = {0, fbuf_seq(1, n, 3), fbuf_seq(2, n, 4)};
    uint32_t z = fbuf_seq(1, 1024, 5), w = fbuf_seq(1, 1024, 6);
    PxResult r;
    uint64_t t1 = submit_saxpy(1, m[1], 1, x[1], y[1], &r), t2 = submit_saxpy(2, m[2], 1, x[2], y[2], &r);
    uint64_t t3 = submit_saxpy(1, m[1], 2, z, w, &r);
    /* both started: each has run a slice (bounded poll; no time is asserted) */
    for (int i = 0; i < 20000 && !(vstats(1).slices && vstats(2).slices); i++) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    CHECK(vstats(1).slices > 0 && vstats(2).slices > 0);
    CHECK(sched_inject_loss(S, 0) == PX_OK);
    PxTicketResult a, b, c;
    CHECK(px_vm_wait(S, 1, t1, 60000, &a) == PX_OK && px_vm_wait(S, 2, t2, 60000, &b) == PX_OK);
    CHECK_MSG(a.result == PX_ERR_DEVICE_LOST && b.result == PX_ERR_DEVICE_LOST, "results %d %d: %s / %s", a.result,
              b.result, a.error, b.error);
    CHECK(px_vm_wait(S, 1, t3, 60000, &c) == PX_OK && c.result == PX_OK);
    CHECK(holds(1, w, 1024, 5, 6, 2, 1));
    PxDeviceStats ds;
    px_sched_device_stats(S, 0, &ds);
    CHECK(ds.losses == 1 && ds.launches_lost == 2);
    px_sched_destroy(S);
}

/* Without host copies (and not oversubscribed) a host-written buffer is
 * lost with the device too; the VM goes on once it writes it again. */
TEST(device_loss_without_host_copies)
{
    if (!strcmp(px_context_backend(ctx), "cpu")) return; /* device_loss_recovery checks the refusal */
    const int64_t n = 1024;
    CHECK(mk(0, 64 * MIB, 1, 0));
    if (!S) return;
    CHECK(vm_create(1, 0, 10, 8 * MIB) == PX_OK);
    uint32_t m = compile(1, SAXPY), x = fbuf_seq(1, n, 1), y = fbuf_seq(1, n, 2);
    PxTicketResult res;
    CHECK(sched_inject_loss(S, 0) == PX_OK);
    CHECK(run_saxpy(1, m, 2, x, y, &res) == PX_ERR_DEVICE_LOST);
    float *v = calloc((size_t)n, 4);
    CHECK(px_vm_buffer_read(S, 1, x, v, (size_t)n * 4) == PX_ERR_DEVICE_LOST);
    for (int64_t i = 0; i < n; i++) v[i] = 1 + (float)(i % 97);
    CHECK(px_vm_buffer_write(S, 1, x, v, (size_t)n * 4) == PX_OK);
    for (int64_t i = 0; i < n; i++) v[i] = 2 + (float)(i % 97);
    CHECK(px_vm_buffer_write(S, 1, y, v, (size_t)n * 4) == PX_OK);
    free(v);
    CHECK(run_saxpy(1, m, 2, x, y, &res) == PX_OK);
    CHECK(holds(1, y, n, 1, 2, 2, 1));
    px_sched_destroy(S);
}

/* An evicted buffer's host copy survives a loss too. */
TEST(device_loss_keeps_evicted)
{
    if (!strcmp(px_context_backend(ctx), "cpu")) return; /* device_loss_recovery checks the refusal */
    const uint64_t cap = 4 * MIB;
    const int64_t n = (int64_t)(cap * 35 / 100 / 4);
    CHECK(mk(1.5, cap, 1, 0));
    if (!S) return;
    CHECK(vm_create(1, 0, 10, 3 * MIB) == PX_OK && vm_create(2, 0, 10, 3 * MIB) == PX_OK);
    uint32_t m1 = compile(1, SAXPY), m2 = compile(2, SAXPY);
    uint32_t x1 = fbuf_seq(1, n, 1), y1 = fbuf_seq(1, n, 2);
    PxTicketResult res;
    CHECK(run_saxpy(1, m1, 2, x1, y1, &res) == PX_OK);
    uint32_t x2 = fbuf_seq(2, n, 3), y2 = fbuf_seq(2, n, 4); /* evicts VM 1's: y1's launch result goes to the host */
    CHECK(vstats(1).evictions >= 2);
    CHECK(sched_inject_loss(S, 0) == PX_OK);
    CHECK(run_saxpy(2, m2, 1, x2, y2, &res) == PX_ERR_DEVICE_LOST);
    CHECK(run_saxpy(1, m1, 2, x1, y1, &res) == PX_OK);
    CHECK(holds(1, y1, n, 1, 2, 2, 2));
    px_sched_destroy(S);
}

/* A VM whose buffers were evicted migrates to the other device: their
 * bytes come from the host copies, they are resident there (and counted
 * there, no longer here), and its launches run on with the right results.
 * Moving it back while the other VM's buffers crowd device 0 evicts
 * those to make room. */
TEST(migrate_evicted)
{
    const uint64_t cap = 4 * MIB;
    const int64_t n = (int64_t)(cap * 35 / 100 / 4);
    CHECK(mk(1.5, cap, 2, 0));
    if (!S) return;
    CHECK(vm_create(1, 0, 10, 3 * MIB) == PX_OK && vm_create(2, 0, 10, 3 * MIB) == PX_OK);
    uint32_t m1 = compile(1, SAXPY), m2 = compile(2, SAXPY);
    uint32_t x1 = fbuf_seq(1, n, 1), y1 = fbuf_seq(1, n, 5);
    uint32_t x2 = fbuf_seq(2, n, 2), y2 = fbuf_seq(2, n, 7);
    CHECK(m1 && m2 && x1 && y1 && x2 && y2);
    PxTicketResult res;
    CHECK(run_saxpy(1, m1, 2, x1, y1, &res) == PX_OK);
    CHECK(run_saxpy(2, m2, 3, x2, y2, &res) == PX_OK); /* VM 1's buffers out */
    uint64_t ev = vstats(1).evictions;
    CHECK(ev >= 1);
    PxMigrateStats ms;
    PxResult r = px_vm_migrate(S, 1, 1, &ms);
    CHECK_MSG(r == PX_OK, "migrate: %s", px_sched_last_error());
    CHECK(ms.bytes == 2 * (uint64_t)n * 4);
    CHECK(vstats(1).device == 1);
    CHECK(resident(1) == 2 * (uint64_t)n * 4);
    CHECK(resident(0) == 2 * (uint64_t)n * 4); /* VM 2's alone */
    CHECK(holds(1, y1, n, 1, 5, 2, 1));
    CHECK(run_saxpy(1, m1, 2, x1, y1, &res) == PX_OK);
    CHECK(holds(1, y1, n, 1, 5, 2, 2));
    CHECK(vstats(1).evictions == ev); /* nothing crowds it on device 1 */
    /* back to device 0, where VM 2 holds 70%: VM 2's buffers make room */
    r = px_vm_migrate(S, 1, 0, &ms);
    CHECK_MSG(r == PX_OK, "migrate back: %s", px_sched_last_error());
    CHECK(resident(0) <= cap && resident(1) == 0);
    CHECK(vstats(2).evictions >= 1);
    CHECK(run_saxpy(1, m1, 2, x1, y1, &res) == PX_OK);
    CHECK(holds(1, y1, n, 1, 5, 2, 3));
    CHECK(run_saxpy(2, m2, 3, x2, y2, &res) == PX_OK);
    CHECK(holds(2, y2, n, 2, 7, 3, 2));
    CHECK(resident(0) <= cap);
    px_sched_destroy(S);
}

int main(void)
{
    if (!pxtest_open() || !pxtest_open_as(&ctx2, "second context")) return 1;
    RUN(off_refuses_over_capacity);
    RUN(quotas_past_capacity);
    RUN(evict_restore_turns);
    RUN(evict_between_slices);
    RUN(own_launch_too_large);
    RUN(migrate_evicted);
    RUN(device_loss_recovery);
    RUN(device_loss_fails_started);
    RUN(device_loss_without_host_copies);
    RUN(device_loss_keeps_evicted);
    px_context_destroy(ctx2);
    px_context_destroy(ctx);
    return TEST_DONE();
}
