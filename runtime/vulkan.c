/* vulkan.c — the Vulkan backend: RtBackendOps over the device layer
 * (vk.c). Code is one SPIR-V module with codegen's launch metadata; a
 * program is one recorded command buffer with its descriptor sets, scratch
 * buffers and push constants, rebuilt only when its arguments change. */
#include "vk.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct RtDev {
    RtLog *log;
    RtDevice vk;
    RtLimits lim;               /* driver loop budgets (limits.c) */
};

struct RtBuf {
    RtBuffer b;
};

struct RtCode {
    const CgModule *cg;         /* in the module's arena */
    RtPipeline ***pipes;        /* [kernel][dispatch]; made at first prepare, owned by the device cache */
};

struct RtProg {
    const CgLaunch *cl;
    RtProgram prog;
    RtDispatch *disp;           /* [dispatch] */
    RtBuffer *scratch;          /* [scratch] */
    VkDeviceSize *scratch_size;
    uint32_t push[32];          /* <= 128 bytes (cg.h): params and symbols */
    uint32_t (*dpush)[32];      /* [dispatch]: push plus its group counts */
    RtUnit *units;              /* [dispatch]: sliced execution (rt.h) */
    int nunits;
    uint64_t total;             /* groups of all units */
};

static PxResult vk_open(RtLog *log, const RtDeviceConfig *cfg, RtDev **out, RtCaps *caps)
{
    *out = NULL;
    RtDev *d = calloc(1, sizeof *d);
    if (!d) return rt_fail(log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    d->log = log;
    PxResult r = rt_device_create(&d->vk, log, cfg);
    if (r) {
        free(d);
        return r;
    }
    rt_limits_device(&d->vk, &d->lim);
    memset(caps, 0, sizeof *caps);
    caps->info = d->vk.info;
    caps->emit = CG_EMIT_SPIRV;
    const VkPhysicalDeviceLimits *lim = &d->vk.props.limits;
    CgTarget *t = &caps->target;
    cg_target_default(t, CG_ENV_VULKAN_1_1);
    t->float16 = d->vk.info.has_half;
    t->subgroups = (d->vk.subgroup_ops & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) && !cfg->no_subgroups;
    t->subgroup_size = (int)d->vk.info.subgroup_size;
    t->shared_bytes = (int)lim->maxComputeSharedMemorySize;
    uint32_t mg = lim->maxComputeWorkGroupCount[0];
    if (lim->maxComputeWorkGroupCount[1] < mg) mg = lim->maxComputeWorkGroupCount[1];
    if (lim->maxComputeWorkGroupCount[2] < mg) mg = lim->maxComputeWorkGroupCount[2];
    t->max_groups = mg > 0x7fffffff ? 0x7fffffff : (int)mg;
    caps->max_buffer_bytes = lim->maxStorageBufferRange;
    /* Vulkan does not say how many groups run at once. A CPU device
     * (lavapipe) runs one per thread, one thread per core; a GPU runs
     * many per multiprocessor: 1024 is of the order of a large one's. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    caps->parallel_groups = d->vk.info.is_cpu ? (cores > 0 ? (int)cores : 1) : 1024;
    *out = d;
    return PX_OK;
}

static void vk_close(RtDev *d)
{
    if (!d) return;
    rt_device_destroy(&d->vk);
    free(d);
}

static PxResult vk_idle(RtDev *d)
{
    VkResult vr = vkQueueWaitIdle(d->vk.queue);
    return vr == VK_SUCCESS ? PX_OK : rt_vk_fail(d->log, vr, "waiting for the device");
}

/* ---- buffers ------------------------------------------------------------------ */

static PxResult vk_buffer_create(RtDev *d, size_t bytes, RtBuf **out)
{
    RtBuf *b = calloc(1, sizeof *b);
    if (!b) return rt_fail(d->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    PxResult r = rt_buffer_create(&d->vk, bytes, &b->b);
    if (r) {
        free(b);
        return r;
    }
    *out = b;
    return PX_OK;
}

static void vk_buffer_destroy(RtDev *d, RtBuf *b)
{
    if (!b) return;
    rt_buffer_destroy(&d->vk, &b->b);
    free(b);
}

static PxResult vk_buffer_write(RtDev *d, RtBuf *b, const void *src, size_t n)
{
    return rt_buffer_write(&d->vk, &b->b, src, n);
}

static PxResult vk_buffer_read(RtDev *d, RtBuf *b, void *dst, size_t n)
{
    return rt_buffer_read(&d->vk, &b->b, dst, n);
}

static PxResult vk_buffer_zero(RtDev *d, RtBuf *b) { return rt_buffer_zero(&d->vk, &b->b); }

/* Only coherent memory: a mapping that needs flushes would make the
 * caller's plain loads and stores wrong. */
static void *vk_buffer_map(RtDev *d, RtBuf *b)
{
    (void)d;
    return b->b.map && b->b.coherent ? b->b.map : NULL;
}

/* ---- code ------------------------------------------------------------------------ */

static PxResult vk_code_create(RtDev *d, CgCompiled *c, RtCode **out)
{
    *out = NULL;
    const CgModule *cg = c->spirv;
    if (!cg) return rt_fail(d->log, PX_ERR_INTERNAL, "no SPIR-V module to run");
    RtCode *code = calloc(1, sizeof *code);
    if (code) code->pipes = calloc((size_t)cg->kernels.n + 1, sizeof *code->pipes);
    for (int i = 0; code && code->pipes && i < cg->kernels.n; i++)
        if (!(code->pipes[i] = calloc((size_t)cg->kernels.v[i].dispatches.n + 1, sizeof **code->pipes))) {
            for (int j = 0; j < i; j++) free(code->pipes[j]);
            free(code->pipes);
            code->pipes = NULL;
        }
    if (!code || !code->pipes) {
        free(code);
        return rt_fail(d->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    code->cg = cg;
    *out = code;
    return PX_OK;
}

static void vk_code_destroy(RtDev *d, RtCode *code)
{
    (void)d; /* pipelines belong to the device cache */
    if (!code) return;
    for (int i = 0; i < code->cg->kernels.n; i++) free(code->pipes[i]);
    free(code->pipes);
    free(code);
}

static double vk_code_compile_ms(const RtCode *code, int k)
{
    (void)code, (void)k;
    return -1; /* lavapipe and GPU drivers compile at pipeline creation or first dispatch */
}

static void vk_stage_shape(const RtCode *code, int k, int stage, const int64_t *syms, const int64_t *params,
                           RtStageShape *out)
{
    const CgLaunch *cl = &code->cg->kernels.v[k];
    out->groups = out->wave_groups = 0;
    out->vec_width = 1;
    out->dispatches = 0;
    for (int i = 0; i < cl->dispatches.n; i++) {
        const CgDispatch *cd = &cl->dispatches.v[i];
        if (cd->stage != stage) continue;
        double n = 1;
        for (int dd = 0; dd < 3; dd++) {
            int64_t x = ir_size_eval(cd->groups[dd], syms, params);
            n *= x > 0 ? (double)x : 0;
        }
        out->dispatches += n > 0; /* a dispatch with no groups is skipped (vk_prog_bind) */
        /* of a stage's variants exactly one runs (cg.h): its width counts */
        if (n > 0 && cd->vec_width > 1) out->vec_width = cd->vec_width;
        out->groups += n;
        out->wave_groups += out->wave > 0 ? ceil(n / out->wave) * out->wave : n;
    }
}

/* ---- programs ------------------------------------------------------------------------ */

static void prog_free(RtDev *d, RtProg *p)
{
    if (!p) return;
    rt_program_destroy(&d->vk, &p->prog);
    for (int i = 0; p->scratch && i < p->cl->scratch.n; i++) rt_buffer_destroy(&d->vk, &p->scratch[i]);
    free(p->scratch);
    free(p->scratch_size);
    free(p->disp);
    free(p->dpush);
    free(p->units);
    free(p);
}

static void vk_prog_destroy(RtDev *d, RtProg *p)
{
    if (p && p->prog.pending) rt_program_wait(&d->vk, &p->prog);
    prog_free(d, p);
}

/* Scratch buffers at the sizes a's symbols give; kept when big enough. */
static PxResult prepare_scratch(RtDev *d, RtProg *p, const RtArgs *a)
{
    const CgLaunch *cl = p->cl;
    PxResult r;
    for (int i = 0; i < cl->scratch.n; i++) {
        int64_t bytes = ir_size_eval(cl->scratch.v[i].bytes, a->syms, a->params);
        if (bytes < 4) bytes = 4;
        if ((VkDeviceSize)bytes <= p->scratch_size[i] && p->scratch[i].buf) continue;
        rt_buffer_destroy(&d->vk, &p->scratch[i]);
        p->scratch_size[i] = 0;
        if ((VkDeviceSize)bytes > d->vk.props.limits.maxStorageBufferRange)
            return rt_fail(d->log, PX_ERR_TOO_LARGE,
                           "scratch buffer of %lld bytes exceeds the device's storage-buffer range (%u bytes)",
                           (long long)bytes, d->vk.props.limits.maxStorageBufferRange);
        if ((r = rt_buffer_create(&d->vk, (VkDeviceSize)bytes, &p->scratch[i]))) return r;
        p->scratch_size[i] = (VkDeviceSize)bytes;
    }
    return PX_OK;
}

static PxResult record(RtDev *d, RtCode *code, int k, const RtArgs *a, RtProg *p)
{
    const CgLaunch *cl = p->cl;
    const IrKernel *ir = cl->kernel;
    PxResult r;
    p->nunits = 0; /* until recorded */
    p->total = 0;
    if (cl->dispatches.n == 0) return PX_OK; /* no statements: no SPIR-V, a no-op */
    memset(p->push, 0, sizeof p->push);
    for (int i = 0; i < cl->push.n; i++) {
        const CgPush *pu = &cl->push.v[i];
        if (pu->offset < 0 || pu->offset + 4 > (int)sizeof p->push)
            return rt_fail(d->log, PX_ERR_INTERNAL, "push constant offset %d out of range", pu->offset);
        if (pu->kind == CG_PUSH_GROUPS) continue; /* per dispatch, below */
        uint32_t v = pu->kind == CG_PUSH_PARAM ? a->scalars[pu->index] : (uint32_t)a->syms[pu->index];
        memcpy((char *)p->push + pu->offset, &v, 4);
    }
    int nb = cl->bindings.n;
    if (nb > 16) return rt_fail(d->log, PX_ERR_UNSUPPORTED, "kernel %s uses %d buffers (at most 16)", ir->name, nb);
    const uint32_t *maxg = d->vk.props.limits.maxComputeWorkGroupCount;
    /* driver loop budgets (limits.c): refuse before a wrong answer */
    for (int i = 0; i < cl->dispatches.n; i++) {
        const CgDispatch *cd = &cl->dispatches.v[i];
        int runs = 1; /* a dispatch with no groups is skipped */
        for (int dd = 0; dd < 3; dd++) runs &= ir_size_eval(cd->groups[dd], a->syms, a->params) > 0;
        if (runs && (r = rt_limits_check(d->log, &d->lim, ir, cd, a->syms, a->params))) return r;
    }
    for (int i = 0; i < cl->dispatches.n; i++) {
        const CgDispatch *cd = &cl->dispatches.v[i];
        RtDispatch *x = &p->disp[i];
        x->nbind = nb;
        for (int j = 0; j < nb; j++) {
            const CgBinding *bd = &cl->bindings.v[j];
            x->bind[j] = bd->kind == CG_BIND_PARAM ? &a->bufs[bd->index]->b : &p->scratch[bd->index];
        }
        for (int dd = 0; dd < 3; dd++) {
            int64_t g = ir_size_eval(cd->groups[dd], a->syms, a->params);
            if (g < 0) g = 0;
            if (g > maxg[dd])
                return rt_fail(d->log, PX_ERR_TOO_LARGE, "dispatch %s needs %lld groups in dimension %d (device limit %u)",
                               cd->entry, (long long)g, dd, maxg[dd]);
            x->groups[dd] = (uint32_t)g;
        }
        /* Only the dispatches that run at these sizes get a pipeline: of a
         * stage's variants one runs (cg.h), and each pipeline costs a
         * driver compile (llvmpipe: 0.5 s for a matmul kernel). A variant
         * is made when sizes first select it; dispatches without groups
         * are never recorded. */
        RtPipeline **pipe = &code->pipes[k][i];
        if (x->groups[0] && x->groups[1] && x->groups[2] && !*pipe &&
            (r = rt_pipeline_get(&d->vk, code->cg->words, code->cg->nwords, cd->entry, nb, (uint32_t)cl->push_size,
                                 pipe)))
            return r;
        x->pipe = *pipe;
        /* the dispatch's own copy of the block: its whole group counts
         * (CG_PUSH_GROUPS), whatever part of it a slice runs */
        memcpy(p->dpush[i], p->push, sizeof p->push);
        for (int j = 0; j < cl->push.n; j++)
            if (cl->push.v[j].kind == CG_PUSH_GROUPS)
                memcpy((char *)p->dpush[i] + cl->push.v[j].offset, &x->groups[cl->push.v[j].index], 4);
        x->push = p->dpush[i];
        x->stage = cd->stage;
        x->barrier_after = i + 1 < cl->dispatches.n && cl->dispatches.v[i + 1].barrier_before;
    }
    p->prog.untimed = a->untimed;
    if ((r = rt_program_record(&d->vk, &p->prog, p->disp, cl->dispatches.n))) return r;
    for (int i = 0; i < cl->dispatches.n; i++) {
        const RtDispatch *x = &p->disp[i];
        p->units[i].stage = x->stage;
        p->units[i].groups = (int64_t)x->groups[0] * x->groups[1] * x->groups[2];
        p->total += (uint64_t)p->units[i].groups;
    }
    p->nunits = cl->dispatches.n;
    return PX_OK;
}

static PxResult vk_prog_prepare(RtDev *d, RtCode *code, int k, const RtArgs *a, RtProg **pp)
{
    RtProg *p = *pp;
    if (!p) {
        const CgLaunch *cl = &code->cg->kernels.v[k];
        p = calloc(1, sizeof *p);
        if (p) {
            p->cl = cl;
            p->disp = calloc((size_t)cl->dispatches.n + 1, sizeof *p->disp);
            p->dpush = calloc((size_t)cl->dispatches.n + 1, sizeof *p->dpush);
            p->units = calloc((size_t)cl->dispatches.n + 1, sizeof *p->units);
            p->scratch = calloc((size_t)cl->scratch.n + 1, sizeof *p->scratch);
            p->scratch_size = calloc((size_t)cl->scratch.n + 1, sizeof *p->scratch_size);
        }
        if (!p || !p->disp || !p->dpush || !p->units || !p->scratch || !p->scratch_size) {
            prog_free(d, p);
            return rt_fail(d->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
        }
        *pp = p;
    }
    PxResult r = prepare_scratch(d, p, a);
    return r ? r : record(d, code, k, a, p);
}

static PxResult vk_submit(RtDev *d, RtProg *p)
{
    /* a kernel with no statements has no dispatches: nothing to submit */
    return p->cl->dispatches.n ? rt_program_submit(&d->vk, &p->prog) : PX_OK;
}

static PxResult vk_wait(RtDev *d, RtProg *p)
{
    if (p->cl->dispatches.n == 0) return PX_OK;
    return rt_program_wait(&d->vk, &p->prog);
}

static void vk_times(RtDev *d, RtProg *p, int nstages, double *stage_ns, double *total_ns)
{
    if (p->cl->dispatches.n == 0) {
        for (int i = 0; i < nstages; i++) stage_ns[i] = -1;
        *total_ns = -1;
        return;
    }
    rt_program_times(&d->vk, &p->prog, nstages, stage_ns, total_ns);
}

/* ---- sliced execution (rt.h, RtUnit) ------------------------------------------------ */

static int vk_prog_units(RtDev *d, RtProg *p, const RtUnit **units)
{
    (void)d;
    *units = p->units;
    return p->nunits;
}

static PxResult vk_submit_slice(RtDev *d, RtProg *p, RtSlice s)
{
    if (s.begin < 0 || s.begin > s.end || (uint64_t)s.end > p->total)
        return rt_fail(d->log, PX_ERR_INVALID, "slice [%lld, %lld) outside the program's %llu groups",
                       (long long)s.begin, (long long)s.end, (unsigned long long)p->total);
    if (p->cl->dispatches.n == 0) return PX_OK; /* no groups: only [0, 0) gets here */
    return rt_program_submit_slice(&d->vk, &p->prog, p->disp, p->cl->dispatches.n, (uint64_t)s.begin,
                                   (uint64_t)s.end);
}

static double vk_slice_ns(RtDev *d, RtProg *p)
{
    if (p->cl->dispatches.n == 0) return -1;
    return rt_program_slice_ns(&d->vk, &p->prog);
}

const RtBackendOps rt_vulkan_ops = {
    .name = "vulkan",
    .open = vk_open,
    .close = vk_close,
    .idle = vk_idle,
    .buffer_create = vk_buffer_create,
    .buffer_destroy = vk_buffer_destroy,
    .buffer_write = vk_buffer_write,
    .buffer_read = vk_buffer_read,
    .buffer_zero = vk_buffer_zero,
    .buffer_map = vk_buffer_map,
    .code_create = vk_code_create,
    .code_destroy = vk_code_destroy,
    .code_compile_ms = vk_code_compile_ms,
    .stage_shape = vk_stage_shape,
    .prog_prepare = vk_prog_prepare,
    .prog_destroy = vk_prog_destroy,
    .submit = vk_submit,
    .wait = vk_wait,
    .times = vk_times,
    .prog_units = vk_prog_units,
    .submit_slice = vk_submit_slice,
    .slice_ns = vk_slice_ns,
};
