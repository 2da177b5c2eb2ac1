/* api.c — the embedding API's thin layer (include/px.h): results and
 * element types, messages, contexts, modules and kernels, buffers. A
 * context opens one backend (RtBackendOps) and everything below reaches
 * the device through it; launches are launch.c's, prediction predict.c's.
 *
 * From px_module_compile to a device's code: cg_compile (codegen/compile.c,
 * the one pipeline: parse, check, lower, ir_optimize, cost, then SPIR-V or
 * the LLVM JIT, as the backend's RtCaps.emit says), then the backend's
 * code_create (vulkan.c keeps the SPIR-V module and makes pipelines at the
 * first prepare; cpu.c adopts the JIT module). */
#include "rt.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void px_free(void *p) { free(p); }

const char *px_version(void) { return PX_VERSION_STRING; }

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

PxDtype rt_dtype_of(ScalarType t)
{
    switch (t) {
    case TY_INT: return PX_I32;
    case TY_UINT: return PX_U32;
    case TY_HALF: return PX_F16;
    default: return PX_F32;
    }
}

/* ---- messages ---------------------------------------------------------------- */

void rt_log(RtLog *log, PxLogLevel lv, const char *fmt, ...)
{
    if (!log || !log->fn) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log->fn(log->user, lv, buf);
}

PxResult rt_fail(RtLog *log, PxResult r, const char *fmt, ...)
{
    if (!log) return r;
    /* through a copy: an argument may be log->last itself (a message that
     * wraps the one a callee left) */
    char buf[sizeof log->last];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(log->last, buf, sizeof buf);
    if (log->fn) log->fn(log->user, PX_LOG_ERROR, log->last);
    return r;
}

uint64_t rt_hash(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;
    if (!h) h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

int rt_ci_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return 1;
    }
    return n == 0;
}

/* ---- context ------------------------------------------------------------------ */

void px_limits_default(PxLimits *l)
{
    FeLimits f;
    fe_limits_default(&f); /* the compiler's defaults are the one source */
    l->source_bytes = f.source_bytes;
    l->kernels = f.kernels;
    l->statements = f.statements;
    l->stages = f.stages;
    l->stage_instructions = f.stage_insts;
    l->spirv_bytes = f.spirv_bytes;
    l->spirv_stage_bytes = f.spirv_stage_bytes;
    l->identifier_length = f.ident_len;
    l->loop_depth = f.loop_depth;
    l->launch_budget_ns = 600e9;
}

static void limits_to_fe(const PxLimits *l, FeLimits *f)
{
    f->source_bytes = l->source_bytes;
    f->kernels = l->kernels;
    f->statements = l->statements;
    f->stages = l->stages;
    f->stage_insts = l->stage_instructions;
    f->spirv_bytes = l->spirv_bytes;
    f->spirv_stage_bytes = l->spirv_stage_bytes;
    f->ident_len = l->identifier_length;
    f->loop_depth = l->loop_depth;
}

void px_config_default(PxConfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    px_limits_default(&cfg->limits);
    cfg->device_index = -1;
    cfg->opt_level = 2;
    cfg->timestamps = 1;
    /* PX_BACKEND=cpu|vulkan|auto: lets a whole test suite run per backend */
    const char *be = getenv("PX_BACKEND");
    if (be && !strcmp(be, "cpu")) cfg->backend = PX_BACKEND_CPU;
    else if (be && !strcmp(be, "vulkan")) cfg->backend = PX_BACKEND_VULKAN;
    /* PX_NO_SUBGROUPS (any value): test suites run both code paths */
    cfg->no_subgroups = getenv("PX_NO_SUBGROUPS") != NULL;
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
    c->timed = cfg.timestamps != 0;
    c->limits = cfg.limits;
    RtDeviceConfig dc = {.index = cfg.device_index, .name = cfg.device_name, .origin = "config",
                         .cpu_threads = cfg.cpu_threads, .no_subgroups = cfg.no_subgroups};
    const char *pick = getenv("PX_DEVICE");
    if (cfg.device_index < 0 && !cfg.device_name && pick && *pick) {
        /* an index (digits only) or a name substring */
        char *end;
        long v = strtol(pick, &end, 10);
        if (!*end && isdigit((unsigned char)*pick) && v < 1 << 20) dc.index = (int)v;
        else dc.name = pick;
        dc.origin = "PX_DEVICE";
    }
    /* auto falls back to the CPU when there is no Vulkan device at all,
     * never when a device the caller picked is missing */
    int fallback = cfg.backend == PX_BACKEND_AUTO && dc.index < 0 && !dc.name;
    c->ops = cfg.backend == PX_BACKEND_CPU ? &rt_cpu_ops : &rt_vulkan_ops;
    if (fallback) c->log.fn = NULL; /* not an error if the CPU takes over */
    PxResult r = c->ops->open(&c->log, &dc, &c->dev, &c->caps);
    c->log.fn = cfg.log;
    if (r == PX_ERR_NO_DEVICE && fallback) {
        rt_log(&c->log, PX_LOG_INFO, "backend: cpu (no Vulkan device: %s)", c->log.last);
        c->log.last[0] = 0;
        c->ops = &rt_cpu_ops;
        r = c->ops->open(&c->log, &dc, &c->dev, &c->caps);
    }
    if (r) {
        if (err) *err = xstrdup(c->log.last);
        free(c);
        return r;
    }
    c->dc = dc;
    if (dc.name) c->dc.name = c->dc_name, snprintf(c->dc_name, sizeof c->dc_name, "%s", dc.name);
    ir_profile_default(&c->profile);
    snprintf(c->profile_src, sizeof c->profile_src, "default");
    char path[1024];
    if (rt_profile_path(path, sizeof path, c->caps.info.name) && rt_profile_load(&c->profile, path) == 0) {
        rt_log(&c->log, PX_LOG_INFO, "px: device profile %s", path);
        snprintf(c->profile_src, sizeof c->profile_src, "%s", path);
    }
    *out = c;
    return PX_OK;
}

PxResult rt_context_reopen(PxContext *c)
{
    c->ops->close(c->dev);
    c->dev = NULL;
    c->inflight = 0;
    /* the same device again: c->caps stay (compiles read them without
     * c's lock, rt_module_build) */
    RtCaps caps;
    return c->ops->open(&c->log, &c->dc, &c->dev, &caps);
}

void px_context_destroy(PxContext *c)
{
    if (!c) return;
    c->ops->close(c->dev);
    free(c);
}

const char *px_last_error(const PxContext *c) { return c ? c->log.last : "no context"; }
const char *px_context_backend(const PxContext *c) { return c ? c->ops->name : "none"; }

void px_device_info(const PxContext *c, PxDeviceInfo *info) { *info = c->caps.info; }

/* ---- modules ------------------------------------------------------------------- */

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

/* The kernels' tables of a compiled module, in its arena (under the
 * compile's protection: an allocation failure unwinds like the compile's). */
typedef struct Tables {
    PxModule *m;
} Tables;

static void make_tables(void *ud)
{
    PxModule *m = ((Tables *)ud)->m;
    Arena *a = m->arena;
    const IrModule *mo = m->cc.opt;
    m->nk = mo->kernels.n;
    m->k = fe_alloc(a, sizeof *m->k * (size_t)(m->nk ? m->nk : 1));
    for (int i = 0; i < m->nk; i++) {
        PxKernel *k = &m->k[i];
        k->m = m;
        k->index = i;
        k->ir = mo->kernels.v[i];
        k->src = m->cc.src->kernels.v[i];
        k->cost = m->cc.cost[i];
        ir_correction_init(&k->corr);
        k->dimtext = fe_alloc(a, sizeof *k->dimtext * (size_t)(4 * k->ir->params.n + 1));
        for (int j = 0; j < k->ir->params.n; j++) {
            const IrParam *pp = &k->ir->params.v[j];
            if (!pp->is_buffer) continue;
            for (int r = 0; r < pp->rank; r++) k->dimtext[4 * j + r] = ir_size_str(a, k->ir, pp->dims[r]);
        }
        k->stage_names = fe_alloc(a, sizeof *k->stage_names * (size_t)(k->ir->stages.n + 1));
        for (int j = 0; j < k->ir->stages.n; j++) k->stage_names[j] = stage_name(a, &k->ir->stages.v[j]);
    }
}

typedef struct Render {
    const Diags *d;
    Arena *a;
    const char *text;
} Render;

static void render(void *ud)
{
    Render *r = ud;
    r->text = fe_diags_render(r->d, r->a);
}

PxResult rt_module_build(PxContext *c, RtLog *log, const char *src, size_t len, const char *file,
                         PxModule **out, char **diags)
{
    PxModule *m = calloc(1, sizeof *m);
    Arena *a = fe_arena_try_new();
    if (!m || !a) {
        free(m);
        fe_arena_free(a);
        return rt_fail(log, PX_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
    }
    m->ctx = c;
    m->arena = a;
    FeLimits lim;
    limits_to_fe(&c->limits, &lim);
    CgCompileOptions o = {
        .limits = &lim,
        .file = file,
        .opt_level = c->opt_level,
        .cost = 1,
        .emit = c->caps.emit,
        .target = c->caps.target,
        .jit = c->caps.jit,
    };
    CgCompileStatus st = cg_compile(a, src, len, &o, &m->cc);
    const Diags *d = &m->cc.diags;
    PxResult r = PX_OK;
    if (st == CG_COMPILE_FAILED) {
        r = rt_fail(log, m->cc.fail.kind == FE_FAIL_OOM ? PX_ERR_OUT_OF_MEMORY : PX_ERR_INTERNAL, "%s: %s", file,
                    m->cc.fail.msg);
    } else {
        if (diags && (d->nerrors || d->nwarnings)) {
            /* rendering allocates: under protection too */
            Render job = {d, a, NULL};
            FeFail f;
            if (fe_protect(render, &job, &f) || !(*diags = xstrdup(job.text)))
                r = rt_fail(log, PX_ERR_OUT_OF_MEMORY, "%s: out of memory for the diagnostics", file);
        }
        if (!r && st == CG_COMPILE_ERRORS)
            r = rt_fail(log, PX_ERR_COMPILE, "%s: compilation failed with %d error%s", file, d->nerrors,
                        d->nerrors == 1 ? "" : "s");
    }
    if (r) {
        px_module_destroy(m);
        return r;
    }
    *out = m;
    return PX_OK;
}

PxResult rt_module_adopt(PxModule *m)
{
    PxContext *c = m->ctx;
    PxResult r = c->ops->code_create(c->dev, &m->cc, &m->code);
    if (!r) {
        Tables t = {m};
        FeFail f;
        if (fe_protect(make_tables, &t, &f))
            r = rt_fail(&c->log, PX_ERR_OUT_OF_MEMORY, "%s: %s", m->cc.opt->file ? m->cc.opt->file : "?", f.msg);
    }
    return r;
}

PxResult px_module_compile(PxContext *c, const char *src, size_t len, const char *file,
                           PxModule **out, char **diags)
{
    if (out) *out = NULL;
    if (diags) *diags = NULL;
    if (!c || !src || !out) return c ? rt_fail(&c->log, PX_ERR_INVALID, "px_module_compile: NULL argument") : PX_ERR_INVALID;
    PxModule *m;
    PxResult r = rt_module_build(c, &c->log, src, len, file ? file : "<source>", &m, diags);
    if (!r && (r = rt_module_adopt(m))) px_module_destroy(m);
    if (!r) *out = m;
    return r;
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
    /* at most one byte past the limit: enough for the parser to refuse
     * it (located), and an endless file costs no more */
    size_t max = c->limits.source_bytes + 1;
    for (;;) {
        if (n >= max) break;
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            if (cap > max) cap = max;
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
    int bad = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (bad) {
        free(buf);
        return rt_fail(&c->log, PX_ERR_IO, "%s: cannot read: %s", path, strerror(bad));
    }
    PxResult r = px_module_compile(c, buf, n, path, out, diags);
    free(buf);
    return r;
}

void px_module_destroy(PxModule *m)
{
    if (!m) return;
    if (m->code) m->ctx->ops->code_destroy(m->ctx->dev, m->code);
    else cg_cpu_destroy(m->cc.cpu); /* compiled but never adopted */
    fe_arena_free(m->arena);
    free(m);
}

int px_module_kernel_count(const PxModule *m) { return m ? m->nk : 0; }

char *px_module_cost_json(const PxModule *m)
{
    if (!m || !m->cc.cost) return NULL;
    /* the printer pxcc --emit=cost-json uses, so the two never differ */
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    if (!f) return NULL;
    ir_cost_print_json(f, m->cc.cost, m->nk, NULL);
    if (fclose(f)) {
        free(text);
        return NULL;
    }
    return text;
}
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
    info->dtype = rt_dtype_of(p->type);
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
    return k ? k->m->ctx->ops->code_compile_ms(k->m->code, k->index) : -1;
}

const char *px_kernel_class(const PxKernel *k)
{
    FeClass c = k->ir->cls != CLASS_NONE ? k->ir->cls : k->cost ? k->cost->cls : CLASS_NONE;
    return fe_class_names[c];
}

/* ---- buffers ---------------------------------------------------------------------- */

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
    uint64_t lim = c->caps.max_buffer_bytes;
    if (bytes > lim)
        return rt_fail(&c->log, PX_ERR_TOO_LARGE,
                       "buffer of %lld %s elements needs %llu bytes but the device's storage-buffer "
                       "range is %llu bytes",
                       (long long)count, px_dtype_name(dtype), (unsigned long long)bytes,
                       (unsigned long long)lim);
    PxBuffer *b = calloc(1, sizeof *b);
    if (!b) return rt_fail(&c->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    PxResult r = c->ops->buffer_create(c->dev, bytes ? (size_t)bytes : 1, &b->rb);
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
    PxContext *c = b->ctx;
    if (c->inflight) c->ops->idle(c->dev);
    c->ops->buffer_destroy(c->dev, b->rb);
    free(b);
}

PxDtype px_buffer_dtype(const PxBuffer *b) { return b->dtype; }
int px_buffer_rank(const PxBuffer *b) { return b->rank; }
const int64_t *px_buffer_shape(const PxBuffer *b) { return b->shape; }
int64_t px_buffer_count(const PxBuffer *b) { return b->count; }
size_t px_buffer_bytes(const PxBuffer *b) { return b->bytes; }

/* A host copy into (to_device) or out of b; waits for launches still
 * running, since a copy must not race one on these buffers. */
static PxResult copy(PxBuffer *b, void *data, size_t bytes, int to_device)
{
    if (!b || (!data && bytes)) return PX_ERR_INVALID;
    PxContext *c = b->ctx;
    if (bytes != b->bytes)
        return rt_fail(&c->log, PX_ERR_INVALID, "px_buffer_%s: %zu bytes %s, the buffer holds %zu",
                       to_device ? "write" : "read", bytes, to_device ? "given" : "asked", b->bytes);
    PxResult r = c->inflight ? c->ops->idle(c->dev) : PX_OK;
    if (r || !bytes) return r;
    return to_device ? c->ops->buffer_write(c->dev, b->rb, data, bytes) : c->ops->buffer_read(c->dev, b->rb, data, bytes);
}

PxResult px_buffer_write(PxBuffer *b, const void *data, size_t bytes) { return copy(b, (void *)data, bytes, 1); }
PxResult px_buffer_read(PxBuffer *b, void *data, size_t bytes) { return copy(b, data, bytes, 0); }

PxResult px_buffer_map(PxBuffer *b, void **ptr)
{
    if (ptr) *ptr = NULL;
    if (!b || !ptr) return PX_ERR_INVALID;
    PxContext *c = b->ctx;
    void *p = c->ops->buffer_map ? c->ops->buffer_map(c->dev, b->rb) : NULL;
    if (!p)
        return rt_fail(&c->log, PX_ERR_UNSUPPORTED,
                       "px_buffer_map: this %s device's buffer memory is not host-visible and coherent; "
                       "use px_buffer_read and px_buffer_write", c->ops->name);
    /* the host's view must not race a launch still writing the buffer */
    PxResult r = c->inflight ? c->ops->idle(c->dev) : PX_OK;
    if (r) return r;
    *ptr = p;
    return PX_OK;
}
