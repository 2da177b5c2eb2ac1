/* cpu.c — the CPU backend: RtBackendOps over host memory, kernels
 * JIT-compiled by LLVM (codegen/llvm.c) and a fixed pool of worker threads
 * that runs their steps slice by slice. Needs no Vulkan driver.
 *
 * Scheduling: a step's domain [0, count) is cut into at most 4 slices per
 * thread and no slice smaller than the step's grain; workers and the
 * calling thread take slices from an atomic counter. Steps of a kernel run
 * in order: the call returns only when every slice of a step is done and
 * every worker has left it, so the next step (and the job fields) can be
 * reused safely. Results never depend on the slicing (cg.h), so they are
 * the same for every thread count.
 *
 * Sliced execution (rt.h, RtUnit): a unit is one step of one stage, its
 * groups the step's items; a slice runs the items it covers of each step,
 * in order, through the same pool, with scratch made at prepare so a
 * stage's partials outlive the slices between its steps.
 */
#include "rt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <time.h>

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
    int64_t base, end, per, nslices; /* items [base, end) */
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
        int64_t b = p->base + s * p->per, e = b + p->per;
        if (e > p->end) e = p->end;
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

/* Items [begin, end) of step st on the pool (NULL: serially, here). */
static void pool_range(RtCpuPool *p, const CgCpuStep *st, const CgCpuArgs *a, int64_t begin, int64_t end)
{
    int64_t count = end - begin;
    int64_t grain = st->grain > 0 ? st->grain : 1;
    int64_t want = (count + grain - 1) / grain, cap = 4 * (int64_t)(p ? p->n : 1);
    int64_t ns = want < cap ? want : cap;
    if (!p || p->n == 1 || ns <= 1) {
        run_range(st, a, begin, end);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->st = st;
    p->args = a;
    p->base = begin;
    p->end = end;
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

/* CgCpuParallelFor of the pool. */
static void pool_for(void *pool, const CgCpuStep *st, const CgCpuArgs *a, int64_t count)
{
    pool_range(pool, st, a, 0, count);
}

int rt_cpu_run(RtCpuPool *p, const CgCpuKernel *k, const CgCpuArgs *a, double *stage_ns)
{
    return cg_cpu_run(k, a, p ? pool_for : NULL, p, stage_ns);
}

/* Zero-filled host memory, 64-byte aligned (a cache line and a full
 * AVX-512 vector); free() it. NULL when out of memory. */
static void *host_alloc(size_t bytes)
{
    /* rounded up so the size is a multiple of the alignment (aligned_alloc's rule) */
    size_t n = (bytes + 63) & ~(size_t)63;
    if (n < bytes) return NULL;
    void *p = aligned_alloc(64, n ? n : 64);
    if (p) memset(p, 0, n ? n : 64);
    return p;
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

/* ---- the backend ------------------------------------------------------------ */

struct RtDev {
    RtLog *log;
    RtCpuPool *pool;
    CgCpuJit *jit;              /* one LLJIT for every module of the device */
    /* Submitted programs run in submit order, like a device queue: a
     * wait runs every program submitted up to the one waited for, idle
     * runs all. run_mu guards the queue and serialises the runs, so a
     * thread that waits for a program another thread is running waits
     * for that run. */
    pthread_mutex_t run_mu;
    RtProg *first, *last;       /* submitted, not yet run */
};

struct RtBuf {
    void *p;                    /* 64-byte aligned, zero-filled */
    size_t bytes;
};

struct RtCode {
    CgCpuModule *cm;            /* owned */
};

struct RtProg {
    const CgCpuKernel *k;
    RtArgs a;                   /* the launch's arrays (rt.h: live until its next prepare) */
    void **bufs;                /* [param] host base of each buffer */
    int np;
    double *stage_ns;           /* wall time of each stage of the last run */
    double total_ns;
    int pending;                /* in the device's queue (RtDev.first) */
    RtProg *next;
    PxResult result;            /* of its last run or slice */
    int is_slice;               /* the queued work is `slice`, not a whole run */
    RtSlice slice;
    /* Sliced execution (rt.h, RtUnit): one unit per step of every stage,
     * in order, with its item count at the prepared sizes. */
    RtUnit *units;
    const CgCpuStep **ustep;    /* [unit]: its step */
    int nunits;
    int64_t total;              /* items of all units */
    /* Scratch of the sliced runs, the largest of any stage's: a stage's
     * partials must outlive its slices (scratch is dead after a stage, and
     * stages run one after another, so they share it). */
    void *scratch;
    size_t scratch_bytes;
    double slice_ns;            /* wall ns of the last slice; -1: none */
};

static PxResult cpu_idle(RtDev *d);
static PxResult cpu_wait(RtDev *d, RtProg *p);

static PxResult cpu_open(RtLog *log, const RtDeviceConfig *cfg, RtDev **out, RtCaps *caps)
{
    *out = NULL;
    RtDev *d = calloc(1, sizeof *d);
    if (!d) return rt_fail(log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    d->log = log;
    char *jerr = NULL;
    d->pool = rt_cpu_pool_create(cfg->cpu_threads);
    d->jit = d->pool ? cg_cpu_jit_create(&jerr) : NULL;
    if (!d->jit) {
        PxResult r = d->pool ? rt_fail(log, PX_ERR_UNSUPPORTED, "CPU backend: %s", jerr ? jerr : "?")
                             : rt_fail(log, PX_ERR_OUT_OF_MEMORY, "out of host memory (CPU thread pool)");
        free(jerr);
        rt_cpu_pool_destroy(d->pool);
        free(d);
        return r;
    }
    pthread_mutex_init(&d->run_mu, NULL);
    int threads = rt_cpu_pool_threads(d->pool);
    memset(caps, 0, sizeof *caps);
    PxDeviceInfo *i = &caps->info;
    char model[200];
    cpu_model(model, sizeof model);
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
    caps->emit = CG_EMIT_CPU;
    caps->jit = d->jit;
    caps->max_buffer_bytes = UINT32_MAX;
    caps->parallel_groups = threads;
    caps->can_cancel = 1;
    /* strategies read the target: a generic device without subgroups */
    cg_target_default(&caps->target, CG_ENV_VULKAN_1_1);
    caps->target.subgroups = 0;
    caps->target.subgroup_size = 0;
    caps->target.shared_bytes = 32768;
    caps->target.max_groups = 65535;
    /* the CPU backend has one device, index 0: the host */
    PxResult r = PX_OK;
    if (cfg->index > 0)
        r = rt_fail(log, PX_ERR_NO_DEVICE, "device %d requested but the CPU backend has one device (0: %s)",
                    cfg->index, i->name);
    else if (cfg->index < 0 && cfg->name && !rt_ci_contains(i->name, cfg->name))
        r = rt_fail(log, PX_ERR_NO_DEVICE, "no device matches '%s' (the CPU backend has one device: %s)",
                    cfg->name, i->name);
    if (r) {
        cg_cpu_jit_destroy(d->jit);
        rt_cpu_pool_destroy(d->pool);
        pthread_mutex_destroy(&d->run_mu);
        free(d);
        return r;
    }
    *out = d;
    return PX_OK;
}

static void cpu_close(RtDev *d)
{
    if (!d) return;
    cpu_idle(d);
    pthread_mutex_destroy(&d->run_mu);
    rt_cpu_pool_destroy(d->pool);
    cg_cpu_jit_destroy(d->jit);
    free(d);
}


static PxResult cpu_buffer_create(RtDev *d, size_t bytes, RtBuf **out)
{
    RtBuf *b = calloc(1, sizeof *b);
    if (b && !(b->p = host_alloc(bytes))) {
        free(b);
        b = NULL;
    }
    if (!b)
        return rt_fail(d->log, PX_ERR_OUT_OF_MEMORY, "out of host memory for a buffer of %zu bytes", bytes);
    b->bytes = bytes;
    *out = b;
    return PX_OK;
}

static void cpu_buffer_destroy(RtDev *d, RtBuf *b)
{
    (void)d;
    if (!b) return;
    free(b->p);
    free(b);
}

static PxResult cpu_buffer_write(RtDev *d, RtBuf *b, const void *src, size_t n)
{
    (void)d;
    memcpy(b->p, src, n);
    return PX_OK;
}

static PxResult cpu_buffer_read(RtDev *d, RtBuf *b, void *dst, size_t n)
{
    (void)d;
    memcpy(dst, b->p, n);
    return PX_OK;
}

/* buffers are host memory */
static void *cpu_buffer_map(RtDev *d, RtBuf *b)
{
    (void)d;
    return b->p;
}

static PxResult cpu_buffer_zero(RtDev *d, RtBuf *b)
{
    (void)d;
    memset(b->p, 0, b->bytes);
    return PX_OK;
}

static PxResult cpu_code_create(RtDev *d, CgCompiled *c, RtCode **out)
{
    *out = NULL;
    if (!c->cpu) return rt_fail(d->log, PX_ERR_INTERNAL, "no native code to run");
    RtCode *code = calloc(1, sizeof *code);
    if (!code) return rt_fail(d->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    code->cm = c->cpu;
    c->cpu = NULL; /* adopted */
    rt_log(d->log, PX_LOG_INFO, "px: %s: JIT compiled for the CPU in %.1f ms (%d threads)",
           c->opt->file ? c->opt->file : "?", code->cm->compile_ms, rt_cpu_pool_threads(d->pool));
    for (int i = 0; i < code->cm->kernels.n; i++) {
        const CgCpuKernel *ck = &code->cm->kernels.v[i];
        rt_log(d->log, PX_LOG_INFO, "px: kernel %s: JIT %.1f ms (LLVM IR %.1f, passes %.1f, native code %.1f)",
               ck->ir->name, ck->compile_ms, ck->gen_ms, ck->opt_ms, ck->codegen_ms);
    }
    *out = code;
    return PX_OK;
}

static void cpu_code_destroy(RtDev *d, RtCode *code)
{
    (void)d;
    if (!code) return;
    cg_cpu_destroy(code->cm);
    free(code);
}

static double cpu_code_compile_ms(const RtCode *code, int k) { return code->cm->kernels.v[k].compile_ms; }

static void cpu_stage_shape(const RtCode *code, int k, int stage, const int64_t *syms, const int64_t *params,
                            RtStageShape *out)
{
    (void)syms, (void)params;
    out->groups = out->wave_groups = -1; /* slices of a thread pool, not workgroups */
    out->vec_width = 1;
    out->dispatches = code->cm->kernels.v[k].stages.v[stage].steps.n;
}

static void cpu_prog_destroy(RtDev *d, RtProg *p)
{
    if (!p) return;
    cpu_wait(d, p); /* it leaves the queue */
    free(p->bufs);
    free(p->stage_ns);
    free(p->units);
    free(p->ustep);
    free(p->scratch);
    free(p);
}

static PxResult cpu_prog_prepare(RtDev *d, RtCode *code, int k, const RtArgs *a, RtProg **pp)
{
    RtProg *p = *pp;
    if (!p) {
        const CgCpuKernel *ck = &code->cm->kernels.v[k];
        int nsteps = 0;
        for (int si = 0; si < ck->stages.n; si++) nsteps += ck->stages.v[si].steps.n;
        p = calloc(1, sizeof *p);
        if (p) {
            p->k = ck;
            p->np = ck->ir->params.n;
            p->bufs = calloc((size_t)p->np + 1, sizeof *p->bufs);
            p->stage_ns = calloc((size_t)ck->ir->stages.n + 1, sizeof *p->stage_ns);
            p->units = calloc((size_t)nsteps + 1, sizeof *p->units);
            p->ustep = calloc((size_t)nsteps + 1, sizeof *p->ustep);
        }
        if (!p || !p->bufs || !p->stage_ns || !p->units || !p->ustep) {
            cpu_prog_destroy(d, p);
            return rt_fail(d->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
        }
        *pp = p;
    }
    p->a = *a;
    for (int i = 0; i < p->np; i++) p->bufs[i] = a->bufs[i] ? a->bufs[i]->p : NULL;
    /* units and scratch at these sizes (the formulas cg_cpu_run reads) */
    int64_t sb = 0;
    p->nunits = 0;
    p->total = 0;
    p->slice_ns = -1;
    for (int si = 0; si < p->k->stages.n; si++) {
        const CgCpuStage *cs = &p->k->stages.v[si];
        int64_t b = ir_size_eval(cs->scratch, a->syms, a->params);
        if (b > sb) sb = b;
        for (int j = 0; j < cs->steps.n; j++) {
            int64_t n = ir_size_eval(cs->steps.v[j].count, a->syms, a->params);
            p->ustep[p->nunits] = &cs->steps.v[j];
            p->units[p->nunits++] = (RtUnit){si, n > 0 ? n : 0};
            p->total += n > 0 ? n : 0;
        }
    }
    if ((size_t)sb > p->scratch_bytes) {
        free(p->scratch);
        p->scratch_bytes = 0;
        if (!(p->scratch = host_alloc((size_t)sb)))
            return rt_fail(d->log, PX_ERR_OUT_OF_MEMORY, "out of host memory for %lld bytes of CPU scratch",
                           (long long)sb);
        p->scratch_bytes = (size_t)sb;
    }
    return PX_OK;
}

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Submitting only queues the work (a whole run or a slice); a wait runs
 * it, on the pool with the waiting thread as one of its workers. So a
 * submitter never computes (the scheduler submits under a lock and waits
 * outside it), and the work happens where Vulkan's would: between submit
 * and wait. A program is queued at most once (rt.h: one submission in
 * flight). */
static PxResult enqueue(RtDev *d, RtProg *p, int is_slice, RtSlice s)
{
    pthread_mutex_lock(&d->run_mu);
    if (!p->pending) {
        p->pending = 1;
        p->is_slice = is_slice;
        p->slice = s;
        p->next = NULL;
        if (d->last) d->last->next = p;
        else d->first = p;
        d->last = p;
    }
    pthread_mutex_unlock(&d->run_mu);
    return PX_OK;
}

static PxResult cpu_submit(RtDev *d, RtProg *p) { return enqueue(d, p, 0, (RtSlice){0, 0}); }

static void run_slice(RtDev *d, RtProg *p);

/* After a run or slice: PX_ERR_CANCELLED when px_launch_cancel stopped it
 * (the flag is cleared: the next run goes whole). */
static PxResult cancelled(RtDev *d, RtProg *p)
{
    if (!p->a.cancel || !__atomic_exchange_n(p->a.cancel, 0, __ATOMIC_SEQ_CST)) return PX_OK;
    return rt_fail(d->log, PX_ERR_CANCELLED, "kernel '%s': the run was cancelled (px_launch_cancel)", p->k->ir->name);
}

/* Under run_mu: runs the queue's first program. */
static void run_first(RtDev *d)
{
    RtProg *p = d->first;
    d->first = p->next;
    if (!d->first) d->last = NULL;
    p->pending = 0;
    if (p->is_slice) {
        run_slice(d, p);
        return;
    }
    CgCpuArgs a = {p->bufs, p->a.scalars, p->a.syms, NULL, p->a.cancel};
    p->slice_ns = -1; /* not a slice */
    double t0 = now_ns();
    p->result = rt_cpu_run(d->pool, p->k, &a, p->stage_ns)
                    ? rt_fail(d->log, PX_ERR_OUT_OF_MEMORY, "out of host memory (CPU scratch)")
                    : cancelled(d, p);
    p->total_ns = now_ns() - t0;
}

static PxResult cpu_wait(RtDev *d, RtProg *p)
{
    pthread_mutex_lock(&d->run_mu);
    while (p->pending) run_first(d);
    PxResult r = p->result;
    pthread_mutex_unlock(&d->run_mu);
    return r;
}

static PxResult cpu_idle(RtDev *d)
{
    pthread_mutex_lock(&d->run_mu);
    while (d->first) run_first(d);
    pthread_mutex_unlock(&d->run_mu);
    return PX_OK;
}

static void cpu_times(RtDev *d, RtProg *p, int nstages, double *stage_ns, double *total_ns)
{
    (void)d;
    for (int i = 0; i < nstages; i++) stage_ns[i] = p->a.untimed ? -1 : p->stage_ns[i];
    *total_ns = p->a.untimed ? -1 : p->total_ns;
}

/* ---- sliced execution (rt.h, RtUnit) ------------------------------------------ */

static int cpu_prog_units(RtDev *d, RtProg *p, const RtUnit **units)
{
    (void)d;
    *units = p->units;
    return p->nunits;
}

static PxResult cpu_submit_slice(RtDev *d, RtProg *p, RtSlice s)
{
    if (s.begin < 0 || s.begin > s.end || s.end > p->total)
        return rt_fail(d->log, PX_ERR_INVALID, "slice [%lld, %lld) outside the program's %lld items",
                       (long long)s.begin, (long long)s.end, (long long)p->total);
    return enqueue(d, p, 1, s);
}

/* Under run_mu, from a wait: the items of each step the slice covers, in
 * order, each step on the pool; a step finishes on every thread before
 * the next starts, as in a whole run. */
static void run_slice(RtDev *d, RtProg *p)
{
    RtSlice s = p->slice;
    CgCpuArgs a = {p->bufs, p->a.scalars, p->a.syms, p->scratch, p->a.cancel};
    double t0 = now_ns();
    int64_t pos = 0;
    for (int i = 0; i < p->nunits && pos < s.end; i++) {
        int64_t g = p->units[i].groups;
        int64_t lo = s.begin > pos ? s.begin - pos : 0, hi = s.end - pos < g ? s.end - pos : g;
        if (lo < hi) pool_range(d->pool, p->ustep[i], &a, lo, hi);
        pos += g;
    }
    p->slice_ns = p->a.untimed ? -1 : now_ns() - t0;
    p->result = cancelled(d, p);
}

static double cpu_slice_ns(RtDev *d, RtProg *p)
{
    (void)d;
    return p->slice_ns;
}

const RtBackendOps rt_cpu_ops = {
    .name = "cpu",
    .open = cpu_open,
    .close = cpu_close,
    .idle = cpu_idle,
    .buffer_create = cpu_buffer_create,
    .buffer_destroy = cpu_buffer_destroy,
    .buffer_write = cpu_buffer_write,
    .buffer_read = cpu_buffer_read,
    .buffer_zero = cpu_buffer_zero,
    .buffer_map = cpu_buffer_map,
    .code_create = cpu_code_create,
    .code_destroy = cpu_code_destroy,
    .code_compile_ms = cpu_code_compile_ms,
    .stage_shape = cpu_stage_shape,
    .prog_prepare = cpu_prog_prepare,
    .prog_destroy = cpu_prog_destroy,
    .submit = cpu_submit,
    .wait = cpu_wait,
    .times = cpu_times,
    .prog_units = cpu_prog_units,
    .submit_slice = cpu_submit_slice,
    .slice_ns = cpu_slice_ns,
};
