/* px.c — the embedding API (include/px.h) over the device layer (vk.c),
 * the compiler (frontend, ir) and the SPIR-V backend's launch metadata.
 *
 * A launch keeps everything a run needs — resolved sizes, its own output
 * and scratch buffers, push-constant bytes and one recorded command buffer
 * — and rebuilds it only when a binding changes (dirty), so repeated runs
 * are a submit and a fence wait with no allocation. */
#include "rt.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/cg.h"
#include "ir/ir.h"

/* ---- small things ---------------------------------------------------------- */

const char *px_result_string(PxResult r)
{
    switch (r) {
#define X(e, s) case e: return s;
        PX_RESULTS(X)
#undef X
    }
    return "unknown result";
}

size_t px_dtype_size(PxDtype t) { return t == PX_F16 ? 2 : 4; }

const char *px_dtype_name(PxDtype t)
{
    switch (t) {
    case PX_F32: return "float";
    case PX_I32: return "int";
    case PX_U32: return "uint";
    case PX_F16: return "half";
    }
    return "?";
}

float px_half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, bits;
    if (e == 0) {
        if (m == 0) bits = s;
        else { /* subnormal: normalise */
            e = 113;
            while (!(m & 1024)) {
                m <<= 1;
                e--;
            }
            bits = s | (e << 23) | ((m & 1023) << 13);
        }
    } else if (e == 31) bits = s | 0x7f800000u | (m << 13);
    else bits = s | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t px_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t s = (x >> 16) & 0x8000, e = (x >> 23) & 255, m = x & 0x7fffff;
    if (e == 255) return (uint16_t)(s | 0x7c00 | (m ? 0x200 | (m >> 13) : 0));
    int ee = (int)e - 127 + 15;
    if (ee >= 31) return (uint16_t)(s | 0x7c00);
    if (ee <= 0) {
        if (ee < -10) return (uint16_t)s;
        m |= 0x800000;
        int shift = 14 - ee;
        uint32_t hm = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (hm & 1))) hm++;
        return (uint16_t)(s | hm);
    }
    uint32_t hm = m >> 13, rem = m & 0x1fff;
    uint32_t h = s | ((uint32_t)ee << 10) | hm;
    if (rem > 0x1000 || (rem == 0x1000 && (hm & 1))) h++; /* may carry into the exponent: right */
    return (uint16_t)h;
}

void px_free(void *p) { free(p); }

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static char *dup_msg2(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s", a, b);
    return p;
}

static PxDtype dtype_of(ScalarType t)
{
    switch (t) {
    case TY_INT: return PX_I32;
    case TY_UINT: return PX_U32;
    case TY_HALF: return PX_F16;
    default: return PX_F32;
    }
}

/* ---- context ------------------------------------------------------------------ */

struct PxContext {
    RtLog log;
    RtDevice dev;
    int opt_level;
    int inflight;               /* launches submitted and not waited for */
    CgTarget target;
    IrDeviceProfile profile;
    char profile_src[1024];     /* file the profile came from, or "default" */
    RtCpuPool *cpu;             /* CPU backend (cpu.c): kernels run here when set */
    CgCpuJit *jit;              /* CPU backend: one LLJIT for all modules (llvm.c) */
    uint64_t buffers_made;      /* PxBuffer ids: a freed buffer's address may come back */
    int timed;                  /* PxConfig.timestamps: launches start with timing on */
};

void px_config_default(PxConfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->device_index = -1;
    cfg->opt_level = 2;
    cfg->timestamps = 1;
    /* PX_BACKEND=cpu|vulkan|auto: lets a whole test suite run per backend */
    const char *be = getenv("PX_BACKEND");
    if (be && !strcmp(be, "cpu")) cfg->backend = PX_BACKEND_CPU;
    else if (be && !strcmp(be, "vulkan")) cfg->backend = PX_BACKEND_VULKAN;
}

PxResult px_context_create(const PxConfig *cfg_in, PxContext **out, char **err)
{
    PxConfig cfg;
    if (cfg_in) cfg = *cfg_in;
    else px_config_default(&cfg);
    if (out) *out = NULL;
    if (err) *err = NULL;
    if (!out) return PX_ERR_INVALID;
    PxContext *c = calloc(1, sizeof *c);
    if (!c) {
        if (err) *err = xstrdup("out of host memory");
        return PX_ERR_OUT_OF_MEMORY;
    }
    c->log.fn = cfg.log;
    c->log.user = cfg.log_user;
    c->opt_level = cfg.opt_level < 0 ? 0 : cfg.opt_level > 2 ? 2 : cfg.opt_level;
    RtDeviceConfig dc = {.index = cfg.device_index, .name = cfg.device_name};
    int use_cpu = cfg.backend == PX_BACKEND_CPU;
    if (!use_cpu) {
        /* auto falls back to the CPU when there is no Vulkan device at all,
         * never when a device the caller picked is missing */
        const char *pick = getenv("PX_DEVICE");
        int fallback = cfg.backend == PX_BACKEND_AUTO && cfg.device_index < 0 && !cfg.device_name &&
                       !(pick && *pick);
        if (fallback) c->log.fn = NULL; /* not an error if the CPU takes over */
        PxResult r = rt_device_create(&c->dev, &c->log, &dc);
        c->log.fn = cfg.log;
        if (r == PX_ERR_NO_DEVICE && fallback) {
            use_cpu = 1;
            rt_log(&c->log, PX_LOG_INFO, "backend: cpu (no Vulkan device: %s)", c->log.last);
            c->log.last[0] = 0;
        } else if (r) {
            if (err) *err = xstrdup(c->log.last);
            free(c);
            return r;
        }
    }
    c->timed = cfg.timestamps != 0;
    if (use_cpu) {
        /* no Vulkan at all: host-memory buffers, a thread pool, one JIT */
        char *jerr = NULL;
        c->cpu = rt_cpu_pool_create(cfg.cpu_threads);
        c->jit = c->cpu ? cg_cpu_jit_create(&jerr) : NULL;
        if (!c->jit) {
            PxResult r = c->cpu ? PX_ERR_UNSUPPORTED : PX_ERR_OUT_OF_MEMORY;
            if (err) *err = c->cpu ? dup_msg2("CPU backend: ", jerr ? jerr : "?")
                                   : xstrdup("out of host memory (CPU thread pool)");
            free(jerr);
            rt_cpu_pool_destroy(c->cpu);
            rt_device_destroy(&c->dev);
            free(c);
            return r;
        }
        rt_cpu_describe(&c->dev, rt_cpu_pool_threads(c->cpu));
        /* the CPU backend has one device, index 0: the host */
        const char *why = NULL;
        char msg[512];
        if (cfg.device_index > 0) {
            snprintf(msg, sizeof msg, "device %d requested but the CPU backend has one device (0: %s)",
                     cfg.device_index, c->dev.info.name);
            why = msg;
        } else if (cfg.device_index < 0 && cfg.device_name && !rt_ci_contains(c->dev.info.name, cfg.device_name)) {
            snprintf(msg, sizeof msg, "no device matches '%s' (the CPU backend has one device: %s)",
                     cfg.device_name, c->dev.info.name);
            why = msg;
        }
        if (why) {
            rt_fail(&c->log, PX_ERR_NO_DEVICE, "%s", why);
            if (err) *err = xstrdup(why);
            cg_cpu_jit_destroy(c->jit);
            rt_cpu_pool_destroy(c->cpu);
            free(c);
            return PX_ERR_NO_DEVICE;
        }
    }
    const VkPhysicalDeviceLimits *lim = &c->dev.props.limits;
    cg_target_default(&c->target, CG_ENV_VULKAN_1_1);
    c->target.float16 = c->dev.info.has_half;
    c->target.subgroups = (c->dev.subgroup_ops & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) != 0;
    /* PX_NO_SUBGROUPS (any value): compile the shared-memory fallbacks, as
     * for a device without subgroup arithmetic (tests run both paths) */
    if (getenv("PX_NO_SUBGROUPS")) c->target.subgroups = 0;
    c->target.subgroup_size = (int)c->dev.info.subgroup_size;
    c->target.shared_bytes = (int)lim->maxComputeSharedMemorySize;
    uint32_t mg = lim->maxComputeWorkGroupCount[0];
    if (lim->maxComputeWorkGroupCount[1] < mg) mg = lim->maxComputeWorkGroupCount[1];
    if (lim->maxComputeWorkGroupCount[2] < mg) mg = lim->maxComputeWorkGroupCount[2];
    c->target.max_groups = mg > 0x7fffffff ? 0x7fffffff : (int)mg;
    ir_profile_default(&c->profile);
    snprintf(c->profile_src, sizeof c->profile_src, "default");
    char path[1024];
    if (ir_profile_path(path, sizeof path, c->dev.info.name) && ir_profile_load(&c->profile, path) == 0) {
        rt_log(&c->log, PX_LOG_INFO, "px: device profile %s", path);
        snprintf(c->profile_src, sizeof c->profile_src, "%s", path);
    }
    *out = c;
    return PX_OK;
}

void px_context_destroy(PxContext *c)
{
    if (!c) return;
    rt_cpu_pool_destroy(c->cpu);
    cg_cpu_jit_destroy(c->jit);
    rt_device_destroy(&c->dev);
    free(c);
}

const char *px_last_error(const PxContext *c) { return c ? c->log.last : "no context"; }
const char *px_context_backend(const PxContext *c) { return c && c->cpu ? "cpu" : "vulkan"; }

void px_device_info(const PxContext *c, PxDeviceInfo *info) { *info = c->dev.info; }

/* ---- modules ------------------------------------------------------------------- */

struct PxKernel {
    PxModule *m;
    int index;
    const IrKernel *ir;         /* optimised: what runs */
    const IrKernel *src;        /* as lowered: cost per source statement */
    const CgLaunch *cl;
    IrKernelCost *cost;
    IrCorrection corr;          /* learned from this kernel's measured runs */
    RtPipeline **pipes;         /* per dispatch; made at first prepare */
    char **dimtext;             /* [param*4 + d] */
    char **stage_names;
};

struct PxModule {
    PxContext *ctx;
    Arena *arena;
    IrModule *src, *opt;
    CgModule *cg;
    CgCpuModule *cpu;           /* JIT code when the context is CPU (llvm.c) */
    int nk;
    PxKernel *k;
};

static char *stage_name(Arena *a, const IrStage *st)
{
    char buf[256] = "";
    size_t o = 0;
    for (int i = 0; i < st->prims.n && o < sizeof buf - 40; i++) {
        const char *n = fe_prim_names[st->prims.v[i]];
        if (!strncmp(n, "PARALLEL_", 9)) n += 9;
        if (i) buf[o++] = '+';
        for (; *n && o < sizeof buf - 1; n++) buf[o++] = (char)tolower((unsigned char)*n);
        buf[o] = 0;
    }
    if (!st->prims.n) snprintf(buf, sizeof buf, "%s", ir_stage_kind_names[st->kind]);
    return fe_strdup(a, buf);
}

PxResult px_module_compile(PxContext *c, const char *src, size_t len, const char *file,
                           PxModule **out, char **diags)
{
    if (out) *out = NULL;
    if (diags) *diags = NULL;
    if (!c || !src || !out) return c ? rt_fail(&c->log, PX_ERR_INVALID, "px_module_compile: NULL argument") : PX_ERR_INVALID;
    if (!file) file = "<source>";
    Arena *a = fe_arena_new();
    char *text = fe_strndup(a, src, len);
    Diags d;
    fe_diags_init(&d, a, fe_strdup(a, file), text, len);
    Program *p = fe_parse(a, &d);
    if (!d.nerrors && p) fe_check(a, &d, p);
    /* an empty file is an error of the parser's (fe_program_finish) */
    IrModule *ms = NULL, *mo = NULL;
    CgModule *cg = NULL;
    if (!d.nerrors && p) ms = ir_lower(a, &d, p, NULL);
    if (!d.nerrors && ms) mo = ir_lower(a, &d, p, NULL);
    if (!d.nerrors && mo) {
        IrOptions io = {
            .opt_level = c->opt_level,
            .has_subgroups = c->target.subgroups,
            .subgroup_size = c->target.subgroup_size,
            .shared_bytes = c->target.shared_bytes,
        };
#ifdef PX_DEBUG
        io.verify = 1;
#endif
        ir_optimize(mo, &io);
        CgOptions co = {.target = c->target, .opt_level = c->opt_level};
        if (c->cpu) {
            /* no SPIR-V on the CPU: empty launch metadata (no dispatches,
             * bindings or scratch) keeps the shared launch code uniform */
            cg = fe_alloc(a, sizeof *cg);
            cg->ir = mo;
            cg->target = c->target;
            for (int i = 0; i < mo->kernels.n; i++) {
                CgLaunch cl = {.kernel = mo->kernels.v[i]};
                FE_PUSH(a, cg->kernels, cl);
            }
        } else {
            cg = cg_spirv(a, &d, mo, &co);
        }
    }
    if (diags && (d.nerrors || d.nwarnings)) *diags = xstrdup(fe_diags_render(&d, a));
    if (d.nerrors || !cg) {
        PxResult r = rt_fail(&c->log, PX_ERR_COMPILE, "%s: compilation failed with %d error%s", file,
                             d.nerrors, d.nerrors == 1 ? "" : "s");
        fe_arena_free(a);
        return r;
    }
    PxModule *m = calloc(1, sizeof *m);
    if (!m) {
        fe_arena_free(a);
        return rt_fail(&c->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    m->ctx = c;
    m->arena = a;
    m->src = ms;
    m->opt = mo;
    m->cg = cg;
    if (c->cpu) {
        char *jerr = NULL;
        m->cpu = cg_cpu_compile_in(c->jit, mo, 3, &jerr);
        if (!m->cpu) {
            PxResult r = rt_fail(&c->log, PX_ERR_COMPILE, "%s: CPU code generation failed: %s", file,
                                 jerr ? jerr : "?");
            free(jerr);
            free(m);
            fe_arena_free(a);
            return r;
        }
        rt_log(&c->log, PX_LOG_INFO, "px: %s: JIT compiled for the CPU in %.1f ms (%d threads)", file,
               m->cpu->compile_ms, rt_cpu_pool_threads(c->cpu));
        for (int i = 0; i < m->cpu->kernels.n; i++) {
            const CgCpuKernel *ck = &m->cpu->kernels.v[i];
            rt_log(&c->log, PX_LOG_INFO, "px: kernel %s: JIT %.1f ms (LLVM IR %.1f, passes %.1f, native code %.1f)",
                   ck->ir->name, ck->compile_ms, ck->gen_ms, ck->opt_ms, ck->codegen_ms);
        }
    }
    m->nk = mo->kernels.n;
    IrKernelCost **costs = ir_cost_lowered(a, ms, mo);
    m->k = fe_alloc(a, sizeof *m->k * (size_t)(m->nk ? m->nk : 1));
    for (int i = 0; i < m->nk; i++) {
        PxKernel *k = &m->k[i];
        k->m = m;
        k->index = i;
        k->ir = mo->kernels.v[i];
        k->src = ms->kernels.v[i];
        k->cl = &cg->kernels.v[i];
        k->cost = costs ? costs[i] : NULL;
        ir_correction_init(&k->corr);
        k->pipes = fe_alloc(a, sizeof *k->pipes * (size_t)(k->cl->dispatches.n + 1));
        k->dimtext = fe_alloc(a, sizeof *k->dimtext * (size_t)(4 * k->ir->params.n + 1));
        for (int j = 0; j < k->ir->params.n; j++) {
            const IrParam *pp = &k->ir->params.v[j];
            if (!pp->is_buffer) continue;
            for (int r = 0; r < pp->rank; r++) k->dimtext[4 * j + r] = ir_size_str(a, k->ir, pp->dims[r]);
        }
        k->stage_names = fe_alloc(a, sizeof *k->stage_names * (size_t)(k->ir->stages.n + 1));
        for (int j = 0; j < k->ir->stages.n; j++) k->stage_names[j] = stage_name(a, &k->ir->stages.v[j]);
    }
    *out = m;
    return PX_OK;
}

PxResult px_module_compile_file(PxContext *c, const char *path, PxModule **out, char **diags)
{
    if (out) *out = NULL;
    if (diags) *diags = NULL;
    if (!c || !path) return PX_ERR_INVALID;
    FILE *f = fopen(path, "rb");
    if (!f)
        return rt_fail(&c->log, errno == ENOENT ? PX_ERR_NOT_FOUND : PX_ERR_IO, "%s: cannot open: %s",
                       path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return rt_fail(&c->log, PX_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (!k) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return rt_fail(&c->log, PX_ERR_IO, "%s: read error", path);
    }
    PxResult r = px_module_compile(c, buf, n, path, out, diags);
    free(buf);
    return r;
}

void px_module_destroy(PxModule *m)
{
    if (!m) return;
    /* pipelines belong to the device cache; nothing else is Vulkan here */
    cg_cpu_destroy(m->cpu);
    fe_arena_free(m->arena);
    free(m);
}

int px_module_kernel_count(const PxModule *m) { return m ? m->nk : 0; }
PxKernel *px_module_kernel_at(PxModule *m, int i) { return m && i >= 0 && i < m->nk ? &m->k[i] : NULL; }

PxResult px_module_kernel(PxModule *m, const char *name, PxKernel **out)
{
    if (out) *out = NULL;
    if (!m || !out) return PX_ERR_INVALID;
    if (!name) {
        if (m->nk == 1) {
            *out = &m->k[0];
            return PX_OK;
        }
        if (m->nk == 0) return rt_fail(&m->ctx->log, PX_ERR_NOT_FOUND, "the module has no kernels");
        char names[512] = "";
        size_t o = 0;
        for (int i = 0; i < m->nk && o < sizeof names - 1; i++)
            o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "", m->k[i].ir->name);
        return rt_fail(&m->ctx->log, PX_ERR_INVALID, "the module has %d kernels (%s): choose one by name",
                       m->nk, names);
    }
    for (int i = 0; i < m->nk; i++)
        if (!strcmp(m->k[i].ir->name, name)) {
            *out = &m->k[i];
            return PX_OK;
        }
    return rt_fail(&m->ctx->log, PX_ERR_NOT_FOUND, "no kernel named %s in the module", name);
}

const char *px_kernel_name(const PxKernel *k) { return k->ir->name; }
int px_kernel_param_count(const PxKernel *k) { return k->ir->params.n; }

void px_kernel_param(const PxKernel *k, int i, PxParamInfo *info)
{
    memset(info, 0, sizeof *info);
    if (i < 0 || i >= k->ir->params.n) return;
    const IrParam *p = &k->ir->params.v[i];
    info->name = p->name;
    info->is_buffer = p->is_buffer;
    info->dtype = dtype_of(p->type);
    info->rank = p->is_buffer ? p->rank : 0;
    for (int d = 0; d < info->rank && d < 4; d++) info->dims[d] = k->dimtext[4 * i + d];
    info->read = (p->flags & IR_P_READ) != 0;
    info->written = (p->flags & IR_P_WRITTEN) != 0;
    info->flexible = (p->flags & IR_P_FLEX) != 0;
}

int px_kernel_size_count(const PxKernel *k) { return k->ir->syms.n; }
const char *px_kernel_size_name(const PxKernel *k, int i)
{
    return i >= 0 && i < k->ir->syms.n ? k->ir->syms.v[i].name : NULL;
}
int px_kernel_stage_count(const PxKernel *k) { return k->ir->stages.n; }
const char *px_kernel_stage_name(const PxKernel *k, int i)
{
    return i >= 0 && i < k->ir->stages.n ? k->stage_names[i] : NULL;
}
double px_kernel_jit_ms(const PxKernel *k)
{
    return k && k->m->cpu ? k->m->cpu->kernels.v[k->index].compile_ms : -1;
}

const char *px_kernel_class(const PxKernel *k)
{
    FeClass c = k->ir->cls != CLASS_NONE ? k->ir->cls : k->cost ? k->cost->cls : CLASS_NONE;
    return fe_class_names[c];
}

/* ---- buffers ---------------------------------------------------------------------- */

struct PxBuffer {
    PxContext *ctx;
    RtBuffer rb;
    PxDtype dtype;
    int rank;
    int64_t shape[4];
    int64_t count;
    size_t bytes;
    uint64_t id;                /* unique in its context */
};

PxResult px_buffer_create(PxContext *c, PxDtype dtype, int rank, const int64_t *shape, PxBuffer **out)
{
    if (out) *out = NULL;
    if (!c || !out || rank < 0 || rank > 4 || (rank && !shape) || (unsigned)dtype > PX_F16)
        return c ? rt_fail(&c->log, PX_ERR_INVALID, "px_buffer_create: bad arguments") : PX_ERR_INVALID;
    int64_t count = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0 || (shape[i] && count > (INT64_C(1) << 50) / shape[i]))
            return rt_fail(&c->log, PX_ERR_INVALID, "buffer extent %lld is out of range", (long long)shape[i]);
        count *= shape[i];
    }
    uint64_t bytes = (uint64_t)count * px_dtype_size(dtype);
    uint64_t lim = c->dev.props.limits.maxStorageBufferRange;
    if (bytes > lim)
        return rt_fail(&c->log, PX_ERR_TOO_LARGE,
                       "buffer of %lld %s elements needs %llu bytes but the device's storage-buffer "
                       "range (maxStorageBufferRange) is %llu bytes",
                       (long long)count, px_dtype_name(dtype), (unsigned long long)bytes,
                       (unsigned long long)lim);
    PxBuffer *b = calloc(1, sizeof *b);
    if (!b) return rt_fail(&c->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    PxResult r = !c->cpu ? rt_buffer_create(&c->dev, bytes, &b->rb)
                 : rt_cpu_buffer_create(&b->rb, (size_t)bytes)
                     ? rt_fail(&c->log, PX_ERR_OUT_OF_MEMORY, "out of host memory for a buffer of %llu bytes",
                               (unsigned long long)bytes)
                     : PX_OK;
    if (r) {
        free(b);
        return r;
    }
    b->ctx = c;
    b->id = ++c->buffers_made;
    b->dtype = dtype;
    b->rank = rank;
    for (int i = 0; i < rank; i++) b->shape[i] = shape[i];
    b->count = count;
    b->bytes = (size_t)bytes;
    *out = b;
    return PX_OK;
}

void px_buffer_destroy(PxBuffer *b)
{
    if (!b) return;
    if (b->ctx->inflight) vkQueueWaitIdle(b->ctx->dev.queue);
    if (b->ctx->cpu) rt_cpu_buffer_destroy(&b->rb);
    else rt_buffer_destroy(&b->ctx->dev, &b->rb);
    free(b);
}

PxDtype px_buffer_dtype(const PxBuffer *b) { return b->dtype; }
int px_buffer_rank(const PxBuffer *b) { return b->rank; }
const int64_t *px_buffer_shape(const PxBuffer *b) { return b->shape; }
int64_t px_buffer_count(const PxBuffer *b) { return b->count; }
size_t px_buffer_bytes(const PxBuffer *b) { return b->bytes; }

static PxResult settle(PxContext *c)
{
    /* a host copy must not race a launch still running on these buffers */
    if (c->inflight) {
        VkResult vr = vkQueueWaitIdle(c->dev.queue);
        if (vr != VK_SUCCESS) return rt_vk_fail(&c->log, vr, "waiting for the device");
    }
    return PX_OK;
}

PxResult px_buffer_write(PxBuffer *b, const void *data, size_t bytes)
{
    if (!b || (!data && bytes)) return PX_ERR_INVALID;
    if (bytes != b->bytes)
        return rt_fail(&b->ctx->log, PX_ERR_INVALID, "px_buffer_write: %zu bytes given, the buffer holds %zu",
                       bytes, b->bytes);
    PxResult r = settle(b->ctx);
    return r ? r : bytes ? rt_buffer_write(&b->ctx->dev, &b->rb, data, bytes) : PX_OK;
}

PxResult px_buffer_read(PxBuffer *b, void *data, size_t bytes)
{
    if (!b || (!data && bytes)) return PX_ERR_INVALID;
    if (bytes != b->bytes)
        return rt_fail(&b->ctx->log, PX_ERR_INVALID, "px_buffer_read: %zu bytes asked, the buffer holds %zu",
                       bytes, b->bytes);
    PxResult r = settle(b->ctx);
    return r ? r : bytes ? rt_buffer_read(&b->ctx->dev, &b->rb, data, bytes) : PX_OK;
}

/* ---- launches ------------------------------------------------------------------------ */

typedef struct LParam {
    PxBuffer *bound;            /* caller's */
    uint64_t bound_id;          /* its id: a new buffer at a freed one's address differs */
    PxBuffer *own;              /* created by prepare for an unbound buffer param */
    char origin[160];
    uint32_t bits;              /* scalar value as pushed */
    int set;
} LParam;

typedef struct LSym {
    int64_t given;              /* px_launch_set_size */
    int has_given;
    char given_origin[160];
    int64_t val;                /* resolved */
    int has_val;
    char origin[200];           /* where val came from, for messages */
    int flex_rank;              /* a flexible buffer bound it: its data's shape */
    int64_t flex_shape[4];
} LSym;

struct PxLaunch {
    PxKernel *k;
    PxContext *c;
    LParam *p;
    LSym *s;
    int64_t *symv, *paramv;     /* for ir_size_eval */
    RtBuffer *scratch;
    VkDeviceSize *scratch_size;
    uint32_t push[32];          /* <= 128 bytes */
    RtDispatch *disp;
    RtProgram prog;
    int prepared, recorded;
    int ran;
    double *stage_ns;
    double total_ns;
    int nruns;                  /* completed runs since the last (re)record */
    /* Times are read back lazily: a wait leaves the last run's timestamps
     * in the query pool (unread), and px_launch_stage_time_ns or a
     * prediction reads them and teaches the correction, once. */
    int unread;                 /* the last run's times are not read yet */
    int unread_cold;            /* ... and it was the first run after a record */
    int untimed;                /* px_launch_set_timing(l, 0) */
    double pred_ns;             /* uncorrected whole-kernel prediction; < 0: not known */
};

/* The host arrays of a launch and the launch itself (l may be NULL or
 * partly allocated). Device objects are released by px_launch_destroy. */
static void launch_free(PxLaunch *l)
{
    if (!l) return;
    free(l->p);
    free(l->s);
    free(l->symv);
    free(l->paramv);
    free(l->scratch);
    free(l->scratch_size);
    free(l->disp);
    free(l->stage_ns);
    free(l);
}

PxResult px_launch_create(PxKernel *k, PxLaunch **out)
{
    if (out) *out = NULL;
    if (!k || !out) return PX_ERR_INVALID;
    PxContext *c = k->m->ctx;
    PxLaunch *l = calloc(1, sizeof *l);
    int np = k->ir->params.n, ns = k->ir->syms.n, nd = k->cl->dispatches.n, nsc = k->cl->scratch.n,
        nst = k->ir->stages.n;
    if (l) {
        l->p = calloc((size_t)np + 1, sizeof *l->p);
        l->s = calloc((size_t)ns + 1, sizeof *l->s);
        l->symv = calloc((size_t)ns + 1, sizeof *l->symv);
        l->paramv = calloc((size_t)np + 1, sizeof *l->paramv);
        l->scratch = calloc((size_t)nsc + 1, sizeof *l->scratch);
        l->scratch_size = calloc((size_t)nsc + 1, sizeof *l->scratch_size);
        l->disp = calloc((size_t)nd + 1, sizeof *l->disp);
        l->stage_ns = calloc((size_t)nst + 1, sizeof *l->stage_ns);
    }
    if (!l || !l->p || !l->s || !l->symv || !l->paramv || !l->scratch || !l->scratch_size || !l->disp ||
        !l->stage_ns) {
        launch_free(l);
        return rt_fail(&c->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    l->k = k;
    l->untimed = !c->timed;
    l->c = c;
    l->total_ns = -1;
    l->pred_ns = -1;
    for (int i = 0; i < nst; i++) l->stage_ns[i] = -1;
    *out = l;
    return PX_OK;
}

void px_launch_destroy(PxLaunch *l)
{
    if (!l) return;
    PxContext *c = l->c;
    if (l->prog.pending) {
        rt_program_wait(&c->dev, &l->prog);
        c->inflight--;
    }
    rt_program_destroy(&c->dev, &l->prog);
    for (int i = 0; i < l->k->ir->params.n; i++) px_buffer_destroy(l->p[i].own);
    for (int i = 0; i < l->k->cl->scratch.n; i++) rt_buffer_destroy(&c->dev, &l->scratch[i]);
    launch_free(l);
}

static int find_param(const PxLaunch *l, const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < l->k->ir->params.n; i++)
        if (!strcmp(l->k->ir->params.v[i].name, name)) return i;
    return -1;
}

static PxResult no_param(PxLaunch *l, const char *name)
{
    return rt_fail(&l->c->log, PX_ERR_NOT_FOUND, "kernel %s has no parameter named %s", l->k->ir->name,
                   name ? name : "(null)");
}

PxResult px_launch_bind(PxLaunch *l, const char *param, PxBuffer *b, const char *origin)
{
    if (!l) return PX_ERR_INVALID;
    int i = find_param(l, param);
    if (i < 0) return no_param(l, param);
    if (!l->k->ir->params.v[i].is_buffer)
        return rt_fail(&l->c->log, PX_ERR_INVALID, "%s is a scalar parameter of %s, not a buffer", param,
                       l->k->ir->name);
    LParam *p = &l->p[i];
    uint64_t id = b ? b->id : 0;
    if (p->bound != b || p->bound_id != id) l->prepared = l->recorded = 0;
    p->bound = b;
    p->bound_id = id;
    if (origin) snprintf(p->origin, sizeof p->origin, "%s", origin);
    else snprintf(p->origin, sizeof p->origin, "buffer bound to %s", param);
    return PX_OK;
}

static PxResult set_scalar(PxLaunch *l, const char *param, ScalarType t, uint32_t bits)
{
    if (!l) return PX_ERR_INVALID;
    int i = find_param(l, param);
    if (i < 0) return no_param(l, param);
    const IrParam *ip = &l->k->ir->params.v[i];
    if (ip->is_buffer)
        return rt_fail(&l->c->log, PX_ERR_INVALID, "%s is a buffer parameter of %s, not a scalar", param,
                       l->k->ir->name);
    if (ip->type != t)
        return rt_fail(&l->c->log, PX_ERR_SHAPE, "scalar parameter %s is %s, not %s", param,
                       fe_type_name(ip->type), fe_type_name(t));
    LParam *p = &l->p[i];
    if (!p->set || p->bits != bits) {
        /* int/uint scalars may enter group counts, so they re-prepare */
        if (t == TY_INT || t == TY_UINT) l->prepared = 0;
        l->recorded = 0;
    }
    p->bits = bits;
    p->set = 1;
    return PX_OK;
}

PxResult px_launch_set_float(PxLaunch *l, const char *param, float v)
{
    uint32_t b;
    memcpy(&b, &v, 4);
    return set_scalar(l, param, TY_FLOAT, b);
}

PxResult px_launch_set_half(PxLaunch *l, const char *param, float v)
{
    /* half scalars travel as a float (cg.h), rounded to half here so the
     * kernel sees exactly the half value */
    float r = px_half_to_float(px_float_to_half(v));
    uint32_t b;
    memcpy(&b, &r, 4);
    return set_scalar(l, param, TY_HALF, b);
}

PxResult px_launch_set_int(PxLaunch *l, const char *param, int32_t v)
{
    return set_scalar(l, param, TY_INT, (uint32_t)v);
}

PxResult px_launch_set_uint(PxLaunch *l, const char *param, uint32_t v)
{
    return set_scalar(l, param, TY_UINT, v);
}

PxResult px_launch_set_scalar_text(PxLaunch *l, const char *param, const char *text)
{
    if (!l || !text) return PX_ERR_INVALID;
    int i = find_param(l, param);
    if (i < 0) return no_param(l, param);
    const IrParam *ip = &l->k->ir->params.v[i];
    if (ip->is_buffer)
        return rt_fail(&l->c->log, PX_ERR_INVALID,
                       "%s is a buffer parameter: give it a .npy file, not the value '%s'", param, text);
    char *end;
    errno = 0;
    switch (ip->type) {
    case TY_FLOAT:
    case TY_HALF: {
        float v = strtof(text, &end);
        if (end == text || *end)
            return rt_fail(&l->c->log, PX_ERR_INVALID, "scalar %s is %s but '%s' is not a number", param,
                           fe_type_name(ip->type), text);
        if (ip->type == TY_HALF && isfinite(v) && fabsf(v) > 65504.0f)
            return rt_fail(&l->c->log, PX_ERR_INVALID, "scalar %s is half but %s is beyond its range (65504)",
                           param, text);
        return ip->type == TY_HALF ? px_launch_set_half(l, param, v) : px_launch_set_float(l, param, v);
    }
    case TY_INT: {
        long long v = strtoll(text, &end, 0);
        if (end == text || *end)
            return rt_fail(&l->c->log, PX_ERR_INVALID, "scalar %s is int but '%s' is not an integer", param, text);
        if (errno || v < INT32_MIN || v > INT32_MAX)
            return rt_fail(&l->c->log, PX_ERR_INVALID, "scalar %s is int but %s does not fit in 32 bits", param,
                           text);
        return px_launch_set_int(l, param, (int32_t)v);
    }
    case TY_UINT: {
        const char *t = text;
        while (isspace((unsigned char)*t)) t++;
        unsigned long long v = strtoull(text, &end, 0);
        if (end == text || *end || *t == '-')
            return rt_fail(&l->c->log, PX_ERR_INVALID, "scalar %s is uint but '%s' is not an unsigned integer",
                           param, text);
        if (errno || v > UINT32_MAX)
            return rt_fail(&l->c->log, PX_ERR_INVALID, "scalar %s is uint but %s does not fit in 32 bits", param,
                           text);
        return px_launch_set_uint(l, param, (uint32_t)v);
    }
    default: return rt_fail(&l->c->log, PX_ERR_INVALID, "scalar %s has no settable type", param);
    }
}

PxResult px_launch_set_size(PxLaunch *l, const char *sym, int64_t value, const char *origin)
{
    if (!l || !sym) return PX_ERR_INVALID;
    for (int i = 0; i < l->k->ir->syms.n; i++) {
        if (strcmp(l->k->ir->syms.v[i].name, sym)) continue;
        if (value < 0 || value > UINT32_MAX)
            return rt_fail(&l->c->log, PX_ERR_INVALID, "size %s = %lld is out of range (0 to 4294967295)", sym,
                           (long long)value);
        LSym *s = &l->s[i];
        if (!s->has_given || s->given != value) l->prepared = l->recorded = 0;
        s->given = value;
        s->has_given = 1;
        if (origin) snprintf(s->given_origin, sizeof s->given_origin, "%s", origin);
        else snprintf(s->given_origin, sizeof s->given_origin, "size %s set to %lld", sym, (long long)value);
        return PX_OK;
    }
    return rt_fail(&l->c->log, PX_ERR_NOT_FOUND, "kernel %s has no size symbol named %s", l->k->ir->name, sym);
}

/* Binds symbol si to v from `origin`; an earlier different value is an
 * error naming both places. */
static PxResult bind_sym(PxLaunch *l, int si, int64_t v, const char *origin)
{
    LSym *s = &l->s[si];
    const char *name = l->k->ir->syms.v[si].name;
    if (s->has_val && s->val != v)
        return rt_fail(&l->c->log, PX_ERR_SHAPE, "size %s is %lld from %s but %lld from %s", name,
                       (long long)s->val, s->origin, (long long)v, origin);
    if (!s->has_val) {
        if (v > UINT32_MAX)
            return rt_fail(&l->c->log, PX_ERR_TOO_LARGE, "size %s = %lld from %s does not fit in a uint", name,
                           (long long)v, origin);
        s->val = v;
        s->has_val = 1;
        snprintf(s->origin, sizeof s->origin, "%s", origin);
    }
    return PX_OK;
}

static void shape_text(char *buf, size_t n, int rank, const int64_t *shape)
{
    size_t o = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < rank && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%lld%s", (long long)shape[i], rank == 1 ? "," : i + 1 < rank ? ", " : "");
    if (o < n) snprintf(buf + o, n - o, ")");
}

static PxResult prepare_sizes(PxLaunch *l)
{
    const IrKernel *k = l->k->ir;
    for (int i = 0; i < k->syms.n; i++) {
        LSym *s = &l->s[i];
        s->has_val = 0;
        s->flex_rank = 0;
        if (s->has_given) {
            s->val = s->given;
            s->has_val = 1;
            snprintf(s->origin, sizeof s->origin, "%s", s->given_origin);
        }
    }
    PxResult r;
    for (int i = 0; i < k->params.n; i++) {
        const IrParam *p = &k->params.v[i];
        PxBuffer *b = l->p[i].bound;
        if (!p->is_buffer || !b) continue;
        const char *org = l->p[i].origin;
        char sh[96];
        shape_text(sh, sizeof sh, b->rank, b->shape);
        if (b->dtype != dtype_of(p->type))
            return rt_fail(&l->c->log, PX_ERR_SHAPE, "%s holds %s data but parameter %s is %s", org,
                           px_dtype_name(b->dtype), p->name, fe_type_name(p->type));
        if (p->flags & IR_P_FLEX) {
            /* any rank: the one extent is the element count */
            char where[200];
            snprintf(where, sizeof where, "%s (all %lld elements)", org, (long long)b->count);
            const IrSize *d0 = p->dims[0];
            int64_t c;
            if (ir_size_is_const(d0, &c)) {
                if (c != b->count)
                    return rt_fail(&l->c->log, PX_ERR_SHAPE, "parameter %s has %lld elements but %s has shape %s",
                                   p->name, (long long)c, org, sh);
            } else if (d0->op == SZ_SYM) {
                if ((r = bind_sym(l, d0->sym, b->count, where))) return r;
                LSym *s = &l->s[d0->sym];
                if (!s->flex_rank) {
                    s->flex_rank = b->rank ? b->rank : 1;
                    for (int d = 0; d < b->rank; d++) s->flex_shape[d] = b->shape[d];
                    if (!b->rank) s->flex_shape[0] = 1;
                }
            }
            continue;
        }
        if (b->rank != p->rank)
            return rt_fail(&l->c->log, PX_ERR_SHAPE, "parameter %s is %d-D but %s has shape %s (%d-D)", p->name,
                           p->rank, org, sh, b->rank);
        for (int d = 0; d < p->rank; d++) {
            int64_t c;
            if (ir_size_is_const(p->dims[d], &c)) {
                if (c != b->shape[d])
                    return rt_fail(&l->c->log, PX_ERR_SHAPE,
                                   "dim %d of parameter %s is %lld but %s has shape %s", d, p->name,
                                   (long long)c, org, sh);
            } else if (p->dims[d]->op == SZ_SYM) {
                char where[200];
                snprintf(where, sizeof where, "%s (dim %d)", org, d);
                if ((r = bind_sym(l, p->dims[d]->sym, b->shape[d], where))) return r;
            }
        }
    }
    /* every size symbol some unbound buffer needs must now have a value */
    for (int si = 0; si < k->syms.n; si++) {
        if (l->s[si].has_val) continue;
        char users[400] = "";
        size_t o = 0;
        int nu = 0;
        for (int i = 0; i < k->params.n; i++) {
            const IrParam *p = &k->params.v[i];
            if (!p->is_buffer) continue;
            for (int d = 0; d < p->rank; d++)
                if (p->dims[d]->op == SZ_SYM && p->dims[d]->sym == si) {
                    if (o < sizeof users - 1)
                        o += (size_t)snprintf(users + o, sizeof users - o, "%s%s", nu ? ", " : "", p->name);
                    nu++;
                    break;
                }
        }
        const IrSym *sy = &k->syms.v[si];
        if (sy->implicit)
            return rt_fail(&l->c->log, PX_ERR_UNBOUND,
                           "the shape of %s is not known: bind data to it or to a buffer of the same shape",
                           nu ? users : sy->name);
        return rt_fail(&l->c->log, PX_ERR_UNBOUND,
                       "size %s is not bound: %s need%s it (bind a buffer with that extent or set it, e.g. "
                       "--size %s=...)",
                       sy->name, nu ? users : "the kernel", nu == 1 ? "s" : "", sy->name);
    }
    for (int i = 0; i < k->syms.n; i++) l->symv[i] = l->s[i].val;
    /* scalars */
    for (int i = 0; i < k->params.n; i++) {
        const IrParam *p = &k->params.v[i];
        if (p->is_buffer) continue;
        if (!l->p[i].set)
            return rt_fail(&l->c->log, PX_ERR_UNBOUND, "scalar parameter %s (%s) has no value (e.g. --arg %s=1)",
                           p->name, fe_type_name(p->type), p->name);
        l->paramv[i] = p->type == TY_INT ? (int64_t)(int32_t)l->p[i].bits
                       : p->type == TY_UINT ? (int64_t)l->p[i].bits : 0;
    }
    return PX_OK;
}

/* Creates (or keeps, when the shape is unchanged) buffers of unbound params. */
static PxResult prepare_buffers(PxLaunch *l)
{
    const IrKernel *k = l->k->ir;
    PxResult r;
    for (int i = 0; i < k->params.n; i++) {
        const IrParam *p = &k->params.v[i];
        LParam *lp = &l->p[i];
        if (!p->is_buffer || lp->bound) {
            if (lp->own) {
                px_buffer_destroy(lp->own);
                lp->own = NULL;
            }
            continue;
        }
        int rank = p->rank;
        int64_t shape[4];
        const LSym *fs = NULL;
        if ((p->flags & IR_P_FLEX) && p->dims[0]->op == SZ_SYM && l->s[p->dims[0]->sym].flex_rank)
            fs = &l->s[p->dims[0]->sym];
        if (fs) {
            rank = fs->flex_rank;
            memcpy(shape, fs->flex_shape, sizeof shape);
        } else {
            for (int d = 0; d < rank; d++) shape[d] = ir_size_eval(p->dims[d], l->symv, l->paramv);
        }
        PxBuffer *o = lp->own;
        int same = o && o->dtype == dtype_of(p->type) && o->rank == rank;
        for (int d = 0; same && d < rank; d++) same = o->shape[d] == shape[d];
        /* an unbound buffer starts zero-filled on every prepare */
        if (same && (r = rt_buffer_zero(&l->c->dev, &o->rb))) return r;
        if (!same) {
            px_buffer_destroy(lp->own);
            lp->own = NULL;
            if ((r = px_buffer_create(l->c, dtype_of(p->type), rank, shape, &lp->own))) {
                char sh[96];
                shape_text(sh, sizeof sh, rank, shape);
                return rt_fail(&l->c->log, r, "buffer %s of shape %s: %s", p->name, sh, l->c->log.last);
            }
        }
    }
    const CgLaunch *cl = l->k->cl;
    if (l->c->cpu) return PX_OK; /* cg_cpu_run allocates its own scratch */
    for (int i = 0; i < cl->scratch.n; i++) {
        int64_t bytes = ir_size_eval(cl->scratch.v[i].bytes, l->symv, l->paramv);
        if (bytes < 4) bytes = 4;
        if ((VkDeviceSize)bytes <= l->scratch_size[i] && l->scratch[i].buf) continue;
        rt_buffer_destroy(&l->c->dev, &l->scratch[i]);
        l->scratch_size[i] = 0;
        if ((VkDeviceSize)bytes > l->c->dev.props.limits.maxStorageBufferRange)
            return rt_fail(&l->c->log, PX_ERR_TOO_LARGE,
                           "scratch buffer of %lld bytes exceeds the device's storage-buffer range (%u bytes)",
                           (long long)bytes, l->c->dev.props.limits.maxStorageBufferRange);
        if ((r = rt_buffer_create(&l->c->dev, (VkDeviceSize)bytes, &l->scratch[i]))) return r;
        l->scratch_size[i] = (VkDeviceSize)bytes;
    }
    return PX_OK;
}

PxResult px_launch_prepare(PxLaunch *l)
{
    if (!l) return PX_ERR_INVALID;
    if (l->prog.pending) {
        PxResult r = px_launch_wait(l);
        if (r) return r;
    }
    /* the last run's times stay readable but teach nothing: the prediction
     * to learn against is at the sizes being replaced */
    if (l->unread) l->unread_cold = 1;
    PxResult r = prepare_sizes(l);
    if (!r) r = prepare_buffers(l);
    l->prepared = r == PX_OK;
    l->recorded = 0;
    l->pred_ns = -1;
    return r;
}

PxBuffer *px_launch_buffer(PxLaunch *l, const char *param)
{
    if (!l) return NULL;
    int i = find_param(l, param);
    if (i < 0 || !l->prepared) return NULL;
    return l->p[i].bound ? l->p[i].bound : l->p[i].own;
}

PxResult px_launch_size(PxLaunch *l, const char *sym, int64_t *value)
{
    if (!l || !sym || !value) return PX_ERR_INVALID;
    for (int i = 0; i < l->k->ir->syms.n; i++)
        if (!strcmp(l->k->ir->syms.v[i].name, sym)) {
            if (!l->prepared || !l->s[i].has_val) return PX_ERR_UNBOUND;
            *value = l->s[i].val;
            return PX_OK;
        }
    return PX_ERR_NOT_FOUND;
}

static PxResult record(PxLaunch *l)
{
    PxKernel *k = l->k;
    const CgLaunch *cl = k->cl;
    PxContext *c = l->c;
    PxResult r;
    memset(l->push, 0, sizeof l->push);
    for (int i = 0; i < cl->push.n; i++) {
        const CgPush *pu = &cl->push.v[i];
        if (pu->offset < 0 || pu->offset + 4 > (int)sizeof l->push) fe_die("push constant offset %d out of range", pu->offset);
        uint32_t v = pu->kind == CG_PUSH_PARAM ? l->p[pu->index].bits : (uint32_t)l->symv[pu->index];
        memcpy((char *)l->push + pu->offset, &v, 4);
    }
    int nb = cl->bindings.n;
    if (nb > 16) return rt_fail(&c->log, PX_ERR_UNSUPPORTED, "kernel %s uses %d buffers (at most 16)", k->ir->name, nb);
    uint32_t maxg[3] = {c->dev.props.limits.maxComputeWorkGroupCount[0], c->dev.props.limits.maxComputeWorkGroupCount[1],
                        c->dev.props.limits.maxComputeWorkGroupCount[2]};
    /* driver loop budgets (limits.c): refuse before a wrong answer */
    RtLimits lim;
    rt_limits_device(&c->dev, &lim);
    for (int i = 0; i < cl->dispatches.n; i++) {
        const CgDispatch *cd = &cl->dispatches.v[i];
        int runs = 1; /* a dispatch with no groups is skipped */
        for (int d = 0; d < 3; d++) runs &= ir_size_eval(cd->groups[d], l->symv, l->paramv) > 0;
        if (runs && (r = rt_limits_check(&c->log, &lim, k->ir, cd, l->symv, l->paramv))) return r;
    }
    const uint32_t *words = k->m->cg->words;
    size_t nwords = k->m->cg->nwords;
    for (int i = 0; i < cl->dispatches.n; i++) {
        const CgDispatch *cd = &cl->dispatches.v[i];
        RtDispatch *x = &l->disp[i];
        if (!k->pipes[i] &&
            (r = rt_pipeline_get(&c->dev, words, nwords, cd->entry, nb, (uint32_t)cl->push_size, &k->pipes[i])))
            return r;
        x->pipe = k->pipes[i];
        x->nbind = nb;
        for (int j = 0; j < nb; j++) {
            const CgBinding *bd = &cl->bindings.v[j];
            if (bd->kind == CG_BIND_PARAM) {
                LParam *lp = &l->p[bd->index];
                x->bind[j] = &(lp->bound ? lp->bound : lp->own)->rb;
            } else {
                x->bind[j] = &l->scratch[bd->index];
            }
        }
        x->push = l->push;
        for (int d = 0; d < 3; d++) {
            int64_t g = ir_size_eval(cd->groups[d], l->symv, l->paramv);
            if (g < 0) g = 0;
            if (g > maxg[d])
                return rt_fail(&c->log, PX_ERR_TOO_LARGE, "dispatch %s needs %lld groups in dimension %d (device limit %u)",
                               cd->entry, (long long)g, d, maxg[d]);
            x->groups[d] = (uint32_t)g;
        }
        x->stage = cd->stage;
        x->barrier_after = i + 1 < cl->dispatches.n && cl->dispatches.v[i + 1].barrier_before;
    }
    l->prog.untimed = l->untimed;
    if ((r = rt_program_record(&c->dev, &l->prog, l->disp, cl->dispatches.n))) return r;
    l->recorded = 1;
    l->nruns = 0; /* the next run is cold again (learn) */
    return PX_OK;
}

/* The CPU backend: runs to completion here, on the host-visible mappings
 * of the launch's buffers; stage times are wall-clock. */
static void learn(PxLaunch *l);

static PxResult cpu_run(PxLaunch *l)
{
    const IrKernel *ir = l->k->ir;
    int np = ir->params.n;
    void **bufs = calloc((size_t)np + 1, sizeof *bufs);
    uint32_t *scal = calloc((size_t)np + 1, sizeof *scal);
    if (!bufs || !scal) {
        free(bufs);
        free(scal);
        return rt_fail(&l->c->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    PxResult r = PX_OK;
    for (int i = 0; i < np && !r; i++) {
        LParam *lp = &l->p[i];
        if (!ir->params.v[i].is_buffer) {
            scal[i] = lp->bits;
            continue;
        }
        PxBuffer *b = lp->bound ? lp->bound : lp->own;
        if (b && b->bytes && !b->rb.map)
            r = rt_fail(&l->c->log, PX_ERR_UNSUPPORTED, "CPU backend: buffer %s is not host-visible",
                        ir->params.v[i].name);
        bufs[i] = b ? b->rb.map : NULL;
    }
    if (!r) {
        CgCpuArgs a = {bufs, scal, l->symv, NULL};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (rt_cpu_run(l->c->cpu, &l->k->m->cpu->kernels.v[l->k->index], &a, l->stage_ns))
            r = rt_fail(&l->c->log, PX_ERR_OUT_OF_MEMORY, "out of host memory (CPU scratch)");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        l->total_ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
        l->ran = !r;
        if (l->ran && l->untimed) {
            l->total_ns = -1;
            for (int i = 0; i < ir->stages.n; i++) l->stage_ns[i] = -1;
        } else if (l->ran) {
            /* stage_ns is already filled in; learn when it is read */
            l->unread = 1;
            l->unread_cold = l->nruns++ == 0;
        }
    }
    free(bufs);
    free(scal);
    return r;
}

PxResult px_launch_submit(PxLaunch *l)
{
    if (!l) return PX_ERR_INVALID;
    PxResult r;
    if (l->prog.pending && (r = px_launch_wait(l))) return r;
    if (!l->prepared && (r = px_launch_prepare(l))) return r;
    if (l->unread) {
        l->unread = 0;
        l->total_ns = -1;
        for (int i = 0; i < l->k->ir->stages.n; i++) l->stage_ns[i] = -1;
    }
    if (l->c->cpu) return cpu_run(l);
    if (l->k->cl->dispatches.n == 0) {
        /* a kernel with no statements has no SPIR-V module: a no-op */
        l->ran = 1;
        return PX_OK;
    }
    if (!l->recorded && (r = record(l))) return r;
    if ((r = rt_program_submit(&l->c->dev, &l->prog))) return r;
    l->c->inflight++;
    return PX_OK;
}

PxResult px_launch_wait(PxLaunch *l)
{
    if (!l) return PX_ERR_INVALID;
    if (!l->prog.pending) {
        if (l->ran) return PX_OK;
        return rt_fail(&l->c->log, PX_ERR_NOT_READY, "px_launch_wait: nothing was submitted");
    }
    l->c->inflight--;
    PxResult r = rt_program_wait(&l->c->dev, &l->prog);
    if (r) return r;
    l->ran = 1;
    /* the repeat-run path ends here: timestamps stay unread until asked for */
    l->unread = 1;
    l->unread_cold = l->nruns++ == 0;
    return PX_OK;
}

PxResult px_launch_set_timing(PxLaunch *l, int on)
{
    if (!l) return PX_ERR_INVALID;
    if (l->untimed != !on) {
        /* re-recorded, so the next run is cold (learn) on either backend */
        l->recorded = 0;
        l->nruns = 0;
    }
    l->untimed = !on;
    return PX_OK;
}

PxResult px_launch_run(PxLaunch *l)
{
    PxResult r = px_launch_submit(l);
    return r ? r : px_launch_wait(l);
}

int px_launch_stage_count(const PxLaunch *l) { return l ? l->k->ir->stages.n : 0; }
const char *px_launch_stage_name(const PxLaunch *l, int i) { return l ? px_kernel_stage_name(l->k, i) : NULL; }

/* Reads the last run's timestamps (Vulkan) and lets the run teach the
 * kernel's correction, once per run. A submit drops times nobody read: the
 * command buffer resets the queries, and reading them on every run would
 * put a query read-back and a cost evaluation on the repeat-run path. */
static void read_times(PxLaunch *l)
{
    if (!l->unread) return;
    l->unread = 0;
    if (!l->c->cpu)
        rt_program_times(&l->c->dev, &l->prog, l->k->ir->stages.n, l->stage_ns, &l->total_ns);
    if (!l->unread_cold) learn(l);
}

/* l is logically const: reading the times only fills in what the last run
 * measured. */
double px_launch_stage_time_ns(const PxLaunch *cl, int i)
{
    PxLaunch *l = (PxLaunch *)cl;
    if (!l || !l->ran) return -1;
    read_times(l);
    if (i < 0) return l->total_ns;
    return i < l->k->ir->stages.n ? l->stage_ns[i] : -1;
}

/* Workgroups the dispatches of stage `stage` (of the optimised kernel)
 * launch at l's sizes, and *width the elements one access moves in the
 * variant that runs (codegen's vec_width); no groups on the CPU. */
static double stage_groups(const PxLaunch *l, int stage, int *width)
{
    const PxKernel *k = l->k;
    double g = 0;
    *width = 1;
    if (k->m->cpu) return 0;
    for (int i = 0; i < k->cl->dispatches.n; i++) {
        const CgDispatch *cd = &k->cl->dispatches.v[i];
        if (cd->stage != stage) continue;
        double n = 1;
        for (int d = 0; d < 3; d++) {
            int64_t x = ir_size_eval(cd->groups[d], l->symv, l->paramv);
            n *= x > 0 ? (double)x : 0;
        }
        if (n > 0 && cd->vec_width > 1) *width = cd->vec_width;
        g += n;
    }
    return g;
}

/* v as the device runs stage `stage`: its workgroups, and accesses counted
 * as executed: a uniform load once per subgroup, a vec4 access as one. */
static void as_run(const PxLaunch *l, int stage, IrCostValues *v)
{
    int w, sg = l->c->target.subgroup_size;
    v->groups = stage_groups(l, stage, &w);
    if (sg > 1 && !l->k->m->cpu) v->v[IR_COST_ACCESSES] -= v->v[IR_COST_UNIFORM] * (1 - 1.0 / sg);
    v->v[IR_COST_ACCESSES] /= w;
    v->v[IR_COST_CHECKED] /= w;
}

PxResult px_launch_cost(PxLaunch *l, int stage, PxCost *cost)
{
    if (!l || !cost) return PX_ERR_INVALID;
    cost->flops = cost->int_ops = cost->bytes_read = cost->bytes_written = cost->predicted_ns = -1;
    cost->accesses = cost->checked_accesses = cost->uniform_accesses = cost->groups = -1;
    cost->dispatches = -1;
    PxKernel *k = l->k;
    if (!k->cost) return rt_fail(&l->c->log, PX_ERR_UNSUPPORTED, "no cost figures for %s", k->ir->name);
    if (!l->prepared) {
        PxResult r = px_launch_prepare(l);
        if (r) return r;
    }
    if (stage >= k->ir->stages.n) return PX_ERR_INVALID;
    /* Cost figures describe source statements (the kernel before fusion); a
     * stage that runs several fused statements sums theirs. */
    IrCostValues sum = {{0}, IR_LIB_NONE, 0};
    int found = 0;
    if (stage < 0) {
        if (!ir_cost_values(k->cost, -1, l->symv, NULL, l->paramv, NULL, &sum)) return PX_ERR_UNBOUND;
        found = 1;
        /* predict from the stages as they run (after fusion) when the
         * analysis has them, else from the source statements */
        int run = k->cost->run.n > 0;
        int nst = run ? k->cost->run.n : k->src->stages.n;
        IrCostValues *sv = calloc((size_t)nst + 1, sizeof *sv);
        if (!sv) return PX_ERR_OUT_OF_MEMORY;
        int ok = 1;
        for (int i = 0; i < nst && ok; i++) {
            ok = run ? ir_cost_run_values(k->cost, i, l->symv, NULL, l->paramv, NULL, &sv[i])
                     : ir_cost_values(k->cost, i, l->symv, NULL, l->paramv, NULL, &sv[i]);
            if (ok && run) as_run(l, i, &sv[i]);
            if (ok && run) sum.groups += sv[i].groups;
        }
        if (ok) cost->predicted_ns = ir_predict_kernel_s(&sum, sv, nst, &l->c->profile) * 1e9;
        free(sv);
    } else {
        const IrStage *st = &k->ir->stages.v[stage];
        for (int i = 0; i < k->src->stages.n; i++) {
            const IrStage *ss = &k->src->stages.v[i];
            int in = 0;
            for (int j = 0; j < st->locs.n && ss->locs.n; j++) in |= st->locs.v[j].off == ss->locs.v[0].off;
            if (!in) continue;
            IrCostValues v;
            if (!ir_cost_values(k->cost, i, l->symv, NULL, l->paramv, NULL, &v)) return PX_ERR_UNBOUND;
            for (int m = 0; m < IR_COST_N; m++) sum.v[m] += v.v[m];
            if (v.lib != IR_LIB_NONE) sum.lib = v.lib; /* library stages never fuse */
            found = 1;
        }
        if (found) {
            /* dispatches: what really runs for this stage */
            int nd = 0;
            for (int i = 0; i < k->cl->dispatches.n; i++) nd += k->cl->dispatches.v[i].stage == stage;
            if (k->m->cpu) nd = k->m->cpu->kernels.v[k->index].stages.v[stage].steps.n; /* CPU steps */
            sum.v[IR_COST_DISPATCHES] = nd;
            IrCostValues r = sum;
            as_run(l, stage, &r);
            sum.groups = r.groups;
            cost->predicted_ns = ir_predict_stage_s(&r, &l->c->profile) * 1e9;
        }
    }
    if (!found) return PX_OK;
    cost->flops = sum.v[IR_COST_FLOPS];
    cost->int_ops = sum.v[IR_COST_INTOPS];
    cost->bytes_read = sum.v[IR_COST_BYTES_READ];
    cost->bytes_written = sum.v[IR_COST_BYTES_WRITTEN];
    cost->accesses = sum.v[IR_COST_ACCESSES];
    cost->checked_accesses = sum.v[IR_COST_CHECKED];
    cost->uniform_accesses = sum.v[IR_COST_UNIFORM];
    cost->groups = k->m->cpu ? -1 : sum.groups;
    cost->dispatches = (int)sum.v[IR_COST_DISPATCHES];
    return PX_OK;
}

/* ---- prediction, measurement and correction ------------------------------------------- */

void rt_profile_export(const IrDeviceProfile *p, const char *source, PxProfile *out)
{
    memset(out, 0, sizeof *out);
    out->bytes_per_s = p->bytes_per_s;
    out->flops_per_s = p->flops_per_s;
    out->intops_per_s = p->intops_per_s;
    out->accesses_per_s = p->accesses_per_s;
    out->checked_per_s = p->checked_per_s;
    out->group_s = p->group_s;
    out->dispatch_s = p->dispatch_s;
    out->barrier_s = p->barrier_s;
    out->calibrated = p->calibrated;
    snprintf(out->source, sizeof out->source, "%s", source);
}

RtLog *rt_context_log(PxContext *c) { return &c->log; }

int rt_launch_run_values(PxLaunch *l, IrCostValues *out)
{
    const IrKernelCost *kc = l->k->cost;
    if (!kc || !kc->run.n || (!l->prepared && px_launch_prepare(l))) return 0;
    IrCostValues sum = {{0}, IR_LIB_NONE, 0};
    for (int i = 0; i < kc->run.n; i++) {
        IrCostValues v;
        if (!ir_cost_run_values(kc, i, l->symv, NULL, l->paramv, NULL, &v)) return 0;
        as_run(l, i, &v);
        for (int m = 0; m < IR_COST_N; m++) sum.v[m] += v.v[m];
        sum.groups += v.groups;
        if (v.lib != IR_LIB_NONE) sum.lib = v.lib;
    }
    *out = sum;
    return 1;
}

void px_context_profile(const PxContext *c, PxProfile *out)
{
    memset(out, 0, sizeof *out);
    if (c) rt_profile_export(&c->profile, c->profile_src, out);
}

/* A completed run teaches its kernel's correction the ratio of the measured
 * whole-launch time to the uncorrected roofline prediction at its sizes,
 * when its times are read (read_times). Runs without a measured time (no
 * timestamps, timing off, times never read) teach nothing, nor does a
 * launch's first run: it is cold (lavapipe compiles shader variants and
 * touches fresh memory on first use; 100x a warm run is common), and the
 * correction is meant for the steady state. */
static void learn(PxLaunch *l)
{
    if (!l->k->cost || !(l->total_ns > 0)) return;
    if (l->pred_ns < 0) {
        /* sizes are fixed until the next prepare, so is the prediction */
        PxCost c;
        l->pred_ns = px_launch_cost(l, -1, &c) == PX_OK && c.predicted_ns > 0 ? c.predicted_ns : 0;
    }
    if (l->pred_ns > 0) ir_correction_update(&l->k->corr, l->pred_ns * 1e-9, l->total_ns * 1e-9);
}

PxResult px_launch_predict_ns(PxLaunch *l, int i, double *ns)
{
    if (!l || !ns) return PX_ERR_INVALID;
    *ns = -1;
    if (l->ran) read_times(l); /* the last run teaches the correction first */
    PxCost c;
    PxResult r = px_launch_cost(l, i, &c);
    if (r) return r;
    if (c.predicted_ns < 0) return rt_fail(&l->c->log, PX_ERR_UNSUPPORTED, "no prediction for stage %d of %s", i, l->k->ir->name);
    *ns = ir_correction_apply(&l->k->corr, c.predicted_ns * 1e-9) * 1e9;
    return PX_OK;
}

double px_kernel_correction(const PxKernel *k, int *samples)
{
    if (samples) *samples = k ? k->corr.samples : 0;
    return k ? k->corr.factor : 1.0;
}

void px_kernel_correction_reset(PxKernel *k)
{
    if (k) ir_correction_init(&k->corr);
}
