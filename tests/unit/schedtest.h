/* schedtest.h — helpers shared by the unit tests that drive the scheduler
 * (include/pxsched.h) through one scheduler per program, S: VMs made on a
 * device or placed, modules compiled, 1-D buffers of 4-byte elements made
 * and written, the statistics read, short sleeps. A failure says why on
 * stderr and returns 0 (an id of 0 is never a valid module or buffer), so
 * that a test CHECKs the result and goes on.
 *
 * The functions are static inline so that a test using only some of them
 * compiles without unused warnings. The file name compile() gives a source
 * is SCHEDTEST_FILE, which a test may define before including this. */
#ifndef PX_SCHEDTEST_H
#define PX_SCHEDTEST_H
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pxsched.h"

#ifndef SCHEDTEST_FILE
#define SCHEDTEST_FILE "t.px"
#endif

static PxSched *S;

static inline void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&t, NULL);
}

/* Creates S from sc; 0 after printing the suite's closing line (one
 * failure) when it cannot. */
static inline int schedtest_start(const PxSchedConfig *sc)
{
    if (px_sched_create(sc, &S)) {
        printf("scheduler: %s\n0 passed, 1 failed\n", px_sched_last_error());
        return 0;
    }
    return 1;
}

/* The defaults but for one device, dev, of 1 GiB. */
static inline void schedtest_config1(PxSchedConfig *sc, PxContext *dev)
{
    px_sched_config_default(sc);
    sc->ndevices = 1;
    sc->devices[0] = dev;
    sc->capacity[0] = 1ull << 30;
}

/* VM id on `device` (-1: the scheduler places it) with share and quota:
 * the scheduler's result, and nothing printed, since tests expect some
 * refusals. */
static inline PxResult vm_create(uint32_t id, int device, double share, uint64_t quota)
{
    PxVmConfig c;
    memset(&c, 0, sizeof c);
    c.id = id;
    c.share = share;
    c.mem_quota = quota;
    c.device = device;
    return px_sched_vm_create(S, &c);
}

/* vm_create where a refusal is a failure: 1 when made, else 0 with the
 * reason on stderr. */
static inline int vm_on(uint32_t id, int device, double share, uint64_t quota)
{
    PxResult r = vm_create(id, device, share, quota);
    if (r) fprintf(stderr, "vm %u: %s\n", id, px_sched_last_error());
    return r == PX_OK;
}

/* src compiled for vm as SCHEDTEST_FILE: the module id, 0 on error. */
static inline uint32_t compile(uint32_t vm, const char *src)
{
    uint32_t m = 0;
    char *diags = NULL;
    if (px_vm_compile(S, vm, src, strlen(src), SCHEDTEST_FILE, &m, &diags))
        fprintf(stderr, "compile: %s\n%s", px_sched_last_error(), diags ? diags : "");
    px_free(diags);
    return m;
}

/* A buffer of n elements of t, a 4-byte type, written from data unless it
 * is NULL: the buffer id, 0 on error. */
static inline uint32_t vm_buf4(uint32_t vm, PxDtype t, int64_t n, const void *data)
{
    uint32_t b = 0;
    if (px_vm_buffer_create(S, vm, t, 1, &n, &b)) {
        fprintf(stderr, "buffer: %s\n", px_sched_last_error());
        return 0;
    }
    if (data && px_vm_buffer_write(S, vm, b, data, (size_t)n * 4)) return 0;
    return b;
}
static inline uint32_t fbuf(uint32_t vm, int64_t n, const float *data) { return vm_buf4(vm, PX_F32, n, data); }
static inline uint32_t ubuf(uint32_t vm, int64_t n, const uint32_t *data) { return vm_buf4(vm, PX_U32, n, data); }

/* The statistics of vm; all zero when there is no such VM. */
static inline PxVmStats vstats(uint32_t vm)
{
    PxVmStats v;
    memset(&v, 0, sizeof v);
    px_sched_vm_stats(S, vm, &v);
    return v;
}

/* Bytes resident on device dev. */
static inline uint64_t resident(int dev)
{
    PxDeviceStats ds;
    memset(&ds, 0, sizeof ds);
    px_sched_device_stats(S, dev, &ds);
    return ds.memory_resident_bytes;
}
#endif
