/* cpu.c — the CPU device: a fixed pool of worker threads that runs the
 * steps of JIT-compiled kernels (codegen/llvm.c) slice by slice.
 *
 * Scheduling: a step's domain [0, count) is cut into at most 4 slices per
 * thread and no slice smaller than the step's grain; workers and the
 * calling thread take slices from an atomic counter. Steps of a kernel run
 * in order: the call returns only when every slice of a step is done and
 * every worker has left it, so the next step (and the job fields) can be
 * reused safely. Results never depend on the slicing (cg.h), so they are
 * the same for every thread count.
 */
#include "rt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../codegen/cg.h"

struct RtCpuPool {
    int n;                      /* threads including the caller */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t wake, idle;
    uint64_t gen;               /* bumped per job */
    int quit;
    int busy;                   /* workers still inside the current job */
    /* the current job (constant while busy > 0) */
    const CgCpuStep *st;
    const CgCpuArgs *args;
    int64_t count, per, nslices;
    atomic_llong next;
};

/* Items [b, e) of a step, at most RT_CPU_POLL per call, with the cancel
 * flag checked between calls: a slice of many cheap items (no FOR to poll
 * at) still stops soon after px_launch_cancel. */
enum { RT_CPU_POLL = 1 << 16 };
static void run_range(const CgCpuStep *st, const CgCpuArgs *a, int64_t b, int64_t e)
{
    while (b < e) {
        if (a->cancel && *a->cancel) return;
        int64_t m = e - b > RT_CPU_POLL ? b + RT_CPU_POLL : e;
        st->fn(a, b, m);
        b = m;
    }
}

static void run_slices(RtCpuPool *p)
{
    for (;;) {
        long long s = atomic_fetch_add(&p->next, 1);
        if (s >= p->nslices) return;
        int64_t b = s * p->per, e = b + p->per;
        if (e > p->count) e = p->count;
        run_range(p->st, p->args, b, e);
    }
}

static void *worker(void *arg)
{
    RtCpuPool *p = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->gen == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit) break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        run_slices(p);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int rt_cpu_default_threads(void)
{
    const char *e = getenv("PX_CPU_THREADS");
    if (e && *e) {
        int n = atoi(e);
        if (n > 0 && n <= 1024) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

RtCpuPool *rt_cpu_pool_create(int nthreads)
{
    if (nthreads <= 0) nthreads = rt_cpu_default_threads();
    RtCpuPool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->th = calloc((size_t)nthreads, sizeof *p->th);
    if (!p->th) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->idle, NULL);
    p->n = 1;
    for (int i = 1; i < nthreads; i++) {
        if (pthread_create(&p->th[i], NULL, worker, p) != 0) break; /* run with fewer */
        p->n++;
    }
    return p;
}

void rt_cpu_pool_destroy(RtCpuPool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p->th);
    free(p);
}

int rt_cpu_pool_threads(const RtCpuPool *p) { return p ? p->n : 1; }

/* CgCpuParallelFor of the pool. */
static void pool_for(void *pool, const CgCpuStep *st, const CgCpuArgs *a, int64_t count)
{
    RtCpuPool *p = pool;
    int64_t grain = st->grain > 0 ? st->grain : 1;
    int64_t want = (count + grain - 1) / grain, cap = 4 * (int64_t)p->n;
    int64_t ns = want < cap ? want : cap;
    if (p->n == 1 || ns <= 1) {
        run_range(st, a, 0, count);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->st = st;
    p->args = a;
    p->count = count;
    p->per = (count + ns - 1) / ns;
    p->nslices = (count + p->per - 1) / p->per;
    atomic_store(&p->next, 0);
    p->busy = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_slices(p);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

int rt_cpu_run(RtCpuPool *p, const CgCpuKernel *k, const CgCpuArgs *a, double *stage_ns)
{
    return cg_cpu_run(k, a, p ? pool_for : NULL, p, stage_ns);
}

/* The host CPU's model name from /proc/cpuinfo; "host CPU" when unknown. */
static void cpu_model(char *out, size_t n)
{
    snprintf(out, n, "host CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10)) continue;
        const char *v = strchr(line, ':');
        if (!v) break;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        size_t len = strcspn(v, "\n");
        snprintf(out, n, "%.*s", (int)len, v);
        break;
    }
    fclose(f);
}

void rt_cpu_describe(RtDevice *d, int threads)
{
    char model[200];
    cpu_model(model, sizeof model);
    PxDeviceInfo *i = &d->info;
    memset(i, 0, sizeof *i);
    snprintf(i->name, sizeof i->name, "CPU (LLVM JIT, %d thread%s): %s", threads, threads == 1 ? "" : "s", model);
    i->index = 0;
    i->is_cpu = 1;
    i->has_half = 1;          /* half is stored as binary16, computed in float */
    i->has_timestamps = 1;    /* wall clock */
    i->timestamp_period_ns = 1;
    /* buffers are indexed with 32-bit element indices, like on Vulkan */
    i->max_storage_buffer_range = UINT32_MAX;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    i->device_local_bytes = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
    VkPhysicalDeviceLimits *lim = &d->props.limits;
    lim->maxStorageBufferRange = UINT32_MAX;
    /* the SPIR-V launch metadata is still computed (px.c uses its
     * bindings and scratch lists): describe a generic device to it */
    lim->maxComputeWorkGroupCount[0] = lim->maxComputeWorkGroupCount[1] = lim->maxComputeWorkGroupCount[2] = 65535;
    lim->maxComputeSharedMemorySize = 32768;
    snprintf(d->props.deviceName, sizeof d->props.deviceName, "%s", i->name);
    d->props.deviceType = VK_PHYSICAL_DEVICE_TYPE_CPU;
}

void *rt_cpu_alloc(size_t bytes)
{
    /* 64: a cache line and a full AVX-512 vector; rounded up so the
     * size is a multiple of the alignment (aligned_alloc's rule) */
    size_t n = (bytes + 63) & ~(size_t)63;
    if (n < bytes) return NULL;
    void *p = aligned_alloc(64, n ? n : 64);
    if (p) memset(p, 0, n ? n : 64);
    return p;
}

int rt_cpu_buffer_create(RtBuffer *b, size_t bytes)
{
    memset(b, 0, sizeof *b);
    size_t n = bytes < 16 ? 16 : bytes; /* RtBuffer.size is >= 16 */
    n = (n + 63) & ~(size_t)63;
    if (n < bytes || !(b->map = rt_cpu_alloc(n))) return -1;
    b->size = n;
    b->coherent = 1; /* rt_buffer_zero/read/write then only memset/memcpy */
    return 0;
}

void rt_cpu_buffer_destroy(RtBuffer *b)
{
    free(b->map);
    memset(b, 0, sizeof *b);
}
