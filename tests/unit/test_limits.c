/* test_limits.c — issue 16: untrusted input at hypervisor scale. The
 * compile limits (PxLimits / FeLimits) give located errors with the
 * documented text; a 10,000-statement kernel compiles (every pass linear);
 * the launch budget refuses a launch that would cost too much or whose
 * cost cannot be stated, before it runs; px_launch_cancel stops a CPU run
 * of 2^32 - 1 loop iterations. Expected values are written by hand from
 * the limits' definitions (docs/LANGUAGE.md, "Limits"). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codegen/cg.h"
#include "pxtest.h"
#include "test.h"

/* Source text grown in a malloc'd buffer. */
typedef struct Src {
    char *s;
    size_t n, cap;
} Src;

static void put(Src *b, const char *t)
{
    size_t l = strlen(t);
    if (b->n + l + 1 > b->cap) {
        b->cap = 2 * (b->n + l + 1);
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, t, l + 1);
    b->n += l;
}

/* Compiles with the front end and the -O2 pipeline, limits as given
 * (NULL: defaults), then the stage limit; the diagnostics of d. */
static Diags d;
static Arena *arena;
static IrModule *compile(const char *src, const FeLimits *lim)
{
    if (arena) fe_arena_free(arena);
    arena = fe_arena_new();
    CgCompileOptions o = {.file = "t.px", .opt_level = 2, .emit = CG_EMIT_IR, .limits = lim};
    cg_target_default(&o.target, CG_ENV_VULKAN_1_1);
    CgCompiled r;
    CgCompileStatus st = cg_compile(arena, src, strlen(src), &o, &r);
    d = r.diags;
    IrModule *m = st == CG_COMPILE_OK ? r.opt : NULL;
    if (m && ir_check_limits(m, &d)) m = NULL;
    return m;
}

static int has_error(int line, int col, const char *msg)
{
    for (int i = 0; i < d.v.n; i++)
        if (d.v.v[i].level == DIAG_ERROR && d.v.v[i].loc.line == line && d.v.v[i].loc.col == col &&
            !strcmp(d.v.v[i].msg, msg))
            return 1;
    return 0;
}

static void dump(void)
{
    for (int i = 0; i < d.v.n; i++) fprintf(stderr, "  %d:%d: %s\n", d.v.v[i].loc.line, d.v.v[i].loc.col, d.v.v[i].msg);
}

/* A kernel of n top-level `PARALLEL_ADD a b -> a` lines (line 5 on). */
static char *adds(int n)
{
    Src b = {0};
    put(&b, "GPU_KERNEL k\nGPU_PARAM a float[N]\nGPU_PARAM b float[N]\nGPU_THREAD_CODE:\n");
    for (int i = 0; i < n; i++) put(&b, "    PARALLEL_ADD a b -> a\n");
    put(&b, "GPU_END\n");
    return b.s;
}

/* A PARALLEL_FOR (line 4) of n lines `y[i] = y[i] + 1.0`. */
static char *pfor_lines(int n)
{
    Src b = {0};
    put(&b, "GPU_KERNEL k\nGPU_PARAM y float[N]\nGPU_THREAD_CODE:\n    PARALLEL_FOR i IN 0..N {\n");
    for (int i = 0; i < n; i++) put(&b, "        y[i] = y[i] + 1.0\n");
    put(&b, "    }\nGPU_END\n");
    return b.s;
}

TEST(ten_thousand_statements)
{
    char *s = adds(10000);
    IrModule *m = compile(s, NULL);
    CHECK_MSG(m && d.nerrors == 0, "errors: %d", d.nerrors);
    /* fusion stops at IR_FUSE_MAX_INSTS (512) instructions a body: a
     * PARALLEL_ADD is 4 (load, load, add, store), so 128 statements a
     * stage: 78 full stages and one of the remaining 16 */
    CHECK(IR_FUSE_MAX_INSTS == 512);
    int ok = m && m->kernels.n == 1 && m->kernels.v[0]->stages.n == 79;
    for (int i = 0; ok && i < 79; i++) ok = m->kernels.v[0]->stages.v[i].prims.n == (i < 78 ? 128 : 16);
    CHECK(ok);
    free(s);
}

TEST(statements_limit)
{
    FeLimits lim;
    fe_limits_default(&lim);
    CHECK(lim.statements == 100000 && lim.stages == 128 && lim.stage_insts == 4096 && lim.ident_len == 255 && lim.loop_depth == 32 &&
          lim.kernels == 1024 && lim.source_bytes == 16u << 20 && lim.spirv_bytes == 1u << 20 &&
          lim.spirv_stage_bytes == 64u << 10);
    lim.statements = 10; /* statement 11 is on line 4 + 11 */
    char *s = adds(11);
    compile(s, &lim);
    CHECK(d.nerrors == 1 && has_error(15, 5, "too many statements in kernel 'k' (limit 10)"));
    free(s);
    s = adds(10);
    compile(s, &lim);
    CHECK(d.nerrors == 0);
    free(s);
    /* statements inside a PARALLEL_FOR count too: the 5th is `let e` */
    lim.statements = 4;
    compile("GPU_KERNEL k\nGPU_PARAM y float[N]\nGPU_THREAD_CODE:\n"
            "    PARALLEL_FOR i IN 0..N {\n        let a = 1.0\n        let b = a\n        let c = b\n"
            "        let e = c\n        y[i] = e\n    }\nGPU_END\n",
            &lim);
    CHECK(d.nerrors == 1 && has_error(8, 9, "too many statements in kernel 'k' (limit 4)"));
}

TEST(stages_limit)
{
    /* -O2 fuses elementwise neighbours; a reduction between them does not
     * fuse: 2 * 70 + 1 stages alternate map, reduce */
    Src b = {0};
    put(&b, "GPU_KERNEL k\nGPU_PARAM a float[N]\nGPU_PARAM s float[1]\nGPU_THREAD_CODE:\n");
    for (int i = 0; i < 70; i++) put(&b, "    PARALLEL_MAP a -> a : a + 1.0\n    PARALLEL_REDUCE SUM a -> s\n");
    put(&b, "GPU_END\n");
    compile(b.s, NULL);
    /* stage 128 (0-based) is the 65th map, line 4 + 129 */
    CHECK(d.nerrors == 1 && has_error(133, 5, "too many stages in kernel 'k': 140 after fusion (limit 128)"));
    if (d.nerrors != 1) dump();
    free(b.s);
}

TEST(identifier_and_nesting_limits)
{
    Src b = {0};
    put(&b, "GPU_KERNEL ");
    for (int i = 0; i < 256; i++) put(&b, "k");
    put(&b, "\nGPU_PARAM y float[N]\nGPU_THREAD_CODE:\n    PARALLEL_MAP y -> y : y\nGPU_END\n");
    compile(b.s, NULL);
    CHECK(d.nerrors == 1 && has_error(1, 12, "identifier is too long: 256 bytes (limit 255)"));
    free(b.s);
    b = (Src){0};
    put(&b, "GPU_KERNEL k\nGPU_PARAM y float[N]\nGPU_THREAD_CODE:\n    PARALLEL_FOR i IN 0..N {\n");
    for (int i = 0; i < 33; i++) {
        char l[64];
        snprintf(l, sizeof l, "for j%d in 0..2 {\n", i);
        put(&b, l);
    }
    put(&b, "y[i] = 1.0\n");
    for (int i = 0; i < 33; i++) put(&b, "}\n");
    put(&b, "    }\nGPU_END\n");
    compile(b.s, NULL);
    /* the 33rd `for` is on line 4 + 33 */
    CHECK(d.nerrors == 1 && has_error(37, 1, "loops nested too deeply (limit 32)"));
    if (d.nerrors != 1) dump();
    free(b.s);
}

TEST(kernels_and_source_limits)
{
    FeLimits lim;
    fe_limits_default(&lim);
    lim.kernels = 2;
    compile("GPU_KERNEL a\nGPU_THREAD_CODE:\nGPU_END\nGPU_KERNEL b\nGPU_THREAD_CODE:\nGPU_END\n"
            "GPU_KERNEL c\nGPU_THREAD_CODE:\nGPU_END\n",
            &lim);
    CHECK(d.nerrors == 1 && has_error(7, 12, "too many kernels in one source (limit 2)"));
    fe_limits_default(&lim);
    const char *src = "GPU_KERNEL a\nGPU_THREAD_CODE:\nGPU_END\n"; /* 38 bytes */
    lim.source_bytes = 38;
    compile(src, &lim);
    CHECK(d.nerrors == 0);
    lim.source_bytes = 37;
    compile(src, &lim);
    CHECK(d.nerrors == 1 && has_error(1, 1, "source is larger than the limit of 37 bytes"));
}

/* ---- the library: limits from PxConfig, the launch budget, cancel ---- */

static PxContext *make_ctx(PxBackend be, const PxLimits *lim)
{
    PxConfig cfg;
    px_config_default(&cfg);
    cfg.backend = be;
    if (lim) cfg.limits = *lim;
    PxContext *ctx = NULL;
    char *err = NULL;
    if (px_context_create(&cfg, &ctx, &err)) fprintf(stderr, "context: %s\n", err ? err : "?");
    px_free(err);
    return ctx;
}

TEST(library_limits)
{
    PxLimits lim;
    px_limits_default(&lim);
    CHECK(lim.launch_budget_ns == 600e9 && lim.identifier_length == 255);
    lim.spirv_bytes = 1000;
    PxContext *ctx = make_ctx(PX_BACKEND_VULKAN, &lim);
    CHECK(ctx != NULL);
    if (!ctx) return;
    const char *src = "GPU_KERNEL k\nGPU_PARAM y float[N]\nGPU_THREAD_CODE:\n    PARALLEL_MAP y -> y : y * 2.0\nGPU_END\n";
    PxModule *m = NULL;
    char *diags = NULL;
    PxResult r = px_module_compile(ctx, src, strlen(src), "k.px", &m, &diags);
    CHECK(r == PX_ERR_COMPILE && diags && strstr(diags, "k.px:1:12: error: generated SPIR-V is too large: ") &&
          strstr(diags, "bytes with kernel 'k' (limit 1000)"));
    px_free(diags);
    px_context_destroy(ctx);
    /* a PARALLEL_FOR of 1000 `y[i] = y[i] + 1.0` is 4000 IR instructions
     * (within 4096) but about 96 bytes of SPIR-V each line: past the stage's
     * 64 KiB; 1100 lines are 4400 instructions, past the IR limit, which
     * is checked first (for both backends) */
    ctx = make_ctx(PX_BACKEND_VULKAN, NULL);
    if (!ctx) return;
    char *s = pfor_lines(1000);
    diags = NULL;
    r = px_module_compile(ctx, s, strlen(s), "k.px", &m, &diags);
    CHECK_MSG(r == PX_ERR_COMPILE && diags &&
                  strstr(diags, "k.px:4:5: error: generated SPIR-V of a stage is too large: ") &&
                  strstr(diags, "bytes for stage 0 of kernel 'k' (limit 65536)"),
              "%s", diags ? diags : "(no diagnostics)");
    px_free(diags);
    free(s);
    s = pfor_lines(1100);
    diags = NULL;
    r = px_module_compile(ctx, s, strlen(s), "k.px", &m, &diags);
    CHECK_MSG(r == PX_ERR_COMPILE && diags &&
                  strstr(diags, "k.px:4:5: error: stage 0 of kernel 'k' is too large: 4400 instructions (limit 4096)"),
              "%s", diags ? diags : "(no diagnostics)");
    px_free(diags);
    free(s);
    /* 200 elementwise statements fuse into two stages (128 + 72), each
     * within the limits */
    s = adds(200);
    diags = NULL;
    CHECK(px_module_compile(ctx, s, strlen(s), "k.px", &m, &diags) == PX_OK && m &&
          px_kernel_stage_count(px_module_kernel_at(m, 0)) == 2);
    px_free(diags);
    px_module_destroy(m);
    free(s);
    px_context_destroy(ctx);
}

/* `for` of T trips in each invocation of a 1-point grid */
static const char *loop_src =
    "GPU_KERNEL spin\nGPU_PARAM t uint\nGPU_PARAM y uint[1]\nGPU_THREAD_CODE:\n"
    "    PARALLEL_FOR i IN 0..1 {\n        var s = 0u\n        for j in 0u..t {\n            s = s + 1u\n"
    "        }\n        y[i] = s\n    }\nGPU_END\n";

static PxLaunch *spin_launch(PxContext *ctx, PxModule **m, uint32_t trips)
{
    char *diags = NULL;
    PxKernel *k = NULL;
    PxLaunch *l = NULL;
    if (px_module_compile(ctx, loop_src, strlen(loop_src), "spin.px", m, &diags)) {
        fprintf(stderr, "%s", diags ? diags : "compile failed\n");
        px_free(diags);
        return NULL;
    }
    px_free(diags);
    if (px_module_kernel(*m, NULL, &k) || px_launch_create(k, &l)) return NULL;
    if (px_launch_set_uint(l, "t", trips)) return NULL;
    return l;
}

TEST(launch_budget)
{
    PxLimits lim;
    px_limits_default(&lim);
    lim.launch_budget_ns = 1e6; /* 1 ms */
    PxContext *ctx = make_ctx(PX_BACKEND_CPU, &lim);
    CHECK(ctx != NULL);
    if (!ctx) return;
    PxModule *m = NULL;
    PxLaunch *l = spin_launch(ctx, &m, 0xffffffffu);
    CHECK(l != NULL);
    if (l) {
        PxResult r = px_launch_run(l);
        CHECK_MSG(r == PX_ERR_LIMIT && strstr(px_last_error(ctx), "kernel 'spin': predicted ") &&
                      strstr(px_last_error(ctx), "more than the launch budget of 0.001 s"),
                  "%d %s", r, px_last_error(ctx));
        /* a small trip count is within it: s counts the trips */
        CHECK(px_launch_set_uint(l, "t", 10) == PX_OK && px_launch_run(l) == PX_OK);
        uint32_t y = 0;
        CHECK(px_buffer_read(px_launch_buffer(l, "y"), &y, 4) == PX_OK && y == 10);
    }
    px_launch_destroy(l);
    px_module_destroy(m);
    /* a cost too large to state: four nested loops of 2^20 trips each
     * (2^80 iterations) overflow the analysis; refused before running */
    const char *big = "GPU_KERNEL big\nGPU_PARAM y uint[1]\nGPU_THREAD_CODE:\n    PARALLEL_FOR i IN 0..1 {\n"
                      "        var s = 0u\n        for a in 0..1048576 {\n         for b in 0..1048576 {\n"
                      "          for c in 0..1048576 {\n           for e in 0..1048576 {\n             s = s + 1u\n"
                      "        } } } }\n        y[i] = s\n    }\nGPU_END\n";
    char *diags = NULL;
    PxKernel *k = NULL;
    l = NULL;
    m = NULL;
    CHECK(px_module_compile(ctx, big, strlen(big), "big.px", &m, &diags) == PX_OK);
    px_free(diags);
    if (m && !px_module_kernel(m, NULL, &k) && !px_launch_create(k, &l)) {
        PxResult r = px_launch_run(l);
        CHECK_MSG(r == PX_ERR_LIMIT && strstr(px_last_error(ctx), "kernel 'big': its cost at these sizes is too large to state"),
                  "%d %s", r, px_last_error(ctx));
    }
    px_launch_destroy(l);
    px_module_destroy(m);
    px_context_destroy(ctx);
}

typedef struct RunArg {
    PxLaunch *l;
    PxResult r;
} RunArg;

static void *runner(void *p)
{
    RunArg *a = p;
    a->r = px_launch_run(a->l);
    return NULL;
}

TEST(cancel_cpu)
{
    PxLimits lim;
    px_limits_default(&lim);
    lim.launch_budget_ns = 0; /* no budget: only cancel stops it */
    PxContext *ctx = make_ctx(PX_BACKEND_CPU, &lim);
    CHECK(ctx != NULL);
    if (!ctx) return;
    PxModule *m = NULL;
    PxLaunch *l = spin_launch(ctx, &m, 0xffffffffu);
    CHECK(l != NULL);
    if (l) {
        CHECK(px_launch_prepare(l) == PX_OK);
        RunArg a = {l, PX_OK};
        pthread_t th;
        CHECK(pthread_create(&th, NULL, runner, &a) == 0);
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        CHECK(px_launch_cancel(l) == PX_OK);
        pthread_join(th, NULL); /* a hang here is the failure: alarm() below ends it */
        CHECK_MSG(a.r == PX_ERR_CANCELLED && strstr(px_last_error(ctx), "kernel 'spin': the run was cancelled"),
                  "%d %s", a.r, px_last_error(ctx));
        /* the flag is consumed: the next run completes */
        CHECK(px_launch_set_uint(l, "t", 1000) == PX_OK && px_launch_run(l) == PX_OK);
        uint32_t y = 0;
        CHECK(px_buffer_read(px_launch_buffer(l, "y"), &y, 4) == PX_OK && y == 1000);
    }
    px_launch_destroy(l);
    px_module_destroy(m);
    px_context_destroy(ctx);
    /* Vulkan cannot stop a submitted dispatch: said, not pretended */
    ctx = make_ctx(PX_BACKEND_VULKAN, NULL);
    if (ctx) {
        m = NULL;
        l = spin_launch(ctx, &m, 4);
        CHECK(l && px_launch_cancel(l) == PX_ERR_UNSUPPORTED);
        px_launch_destroy(l);
        px_module_destroy(m);
        px_context_destroy(ctx);
    }
}

TEST(number_text)
{
    int64_t v = 0;
    double f = 0;
    CHECK(px_parse_int("010", 0, 100, &v) == 0 && v == 10); /* not octal */
    CHECK(px_parse_int("0x10", 0, 100, &v) == 0 && v == 16);
    CHECK(px_parse_int("0X1f", 0, 100, &v) == 0 && v == 31);
    CHECK(px_parse_int("-0x10", -100, 100, &v) == 0 && v == -16);
    CHECK(px_parse_int("-9223372036854775808", INT64_MIN, INT64_MAX, &v) == 0 && v == INT64_MIN);
    CHECK(px_parse_int("9223372036854775808", INT64_MIN, INT64_MAX, &v) == 2);
    CHECK(px_parse_int("99999999999999999999999", INT64_MIN, INT64_MAX, &v) == 2);
    CHECK(px_parse_int("3000000000", INT32_MIN, INT32_MAX, &v) == 2);
    CHECK(px_parse_int("4294967295", 0, UINT32_MAX, &v) == 0 && v == 4294967295);
    v = 7;
    CHECK(px_parse_int("", 0, 1, &v) == 1 && px_parse_int("-", 0, 1, &v) == 1 && px_parse_int("0x", 0, 1, &v) == 1 &&
          px_parse_int(" 1", 0, 1, &v) == 1 && px_parse_int("+1", 0, 1, &v) == 1 && px_parse_int("1.0", 0, 1, &v) == 1 &&
          px_parse_int("12abc", 0, 100, &v) == 1 && px_parse_int("0x1g", 0, 100, &v) == 1 && v == 7);
    CHECK(px_parse_float("2.5", PX_FLOAT_MAX, &f) == 0 && f == 2.5);
    CHECK(px_parse_float("1e39", PX_FLOAT_MAX, &f) == 2 && px_parse_float("-1e39", PX_FLOAT_MAX, &f) == 2);
    CHECK(px_parse_float("1e999", 1e300, &f) == 2);
    CHECK(px_parse_float("65505", PX_HALF_MAX, &f) == 2 && px_parse_float("65504", PX_HALF_MAX, &f) == 0);
    CHECK(px_parse_float("inf", PX_FLOAT_MAX, &f) == 0 && isinf(f) && px_parse_float("nan", PX_FLOAT_MAX, &f) == 0 &&
          isnan(f));
    CHECK(px_parse_float("1e-50", PX_FLOAT_MAX, &f) == 0 && f > 0 && f < 1e-49); /* underflow is not overflow */
    CHECK(px_parse_float("", 1, &f) == 1 && px_parse_float(" 1", 1, &f) == 1 && px_parse_float("1x", 1, &f) == 1);
}

int main(void)
{
    alarm(300); /* a cancel that does not stop the run fails, not hangs */
    RUN(number_text);
    RUN(ten_thousand_statements);
    RUN(statements_limit);
    RUN(stages_limit);
    RUN(identifier_and_nesting_limits);
    RUN(kernels_and_source_limits);
    RUN(library_limits);
    RUN(launch_budget);
    RUN(cancel_cpu);
    if (arena) fe_arena_free(arena);
    return TEST_DONE();
}
