/* test_embed.c — the library as a guest in its host's process: every
 * failure inside px_module_compile (out of memory at any allocation, an IR
 * verifier rejection, a SPIR-V validation failure) comes back as a result
 * with a message, and the same context then compiles and runs another
 * kernel correctly. Runs on the context's backend (PX_BACKEND=cpu runs it
 * on the CPU backend). Expected values are plain C loops. */
#include <stdlib.h>

#include "base/base.h"
#include "pxtest.h"
#include "test.h"

static const char *SAXPY = "GPU_KERNEL saxpy\nGPU_PARAM a float\nGPU_PARAM x float[N]\n"
                           "GPU_PARAM y float[N]\nGPU_THREAD_CODE:\n"
                           "    PARALLEL_MAP x y -> y : a * x + y\nGPU_END\n";
/* several stages and primitives, so the pipeline allocates a lot */
static const char *BIG = "GPU_KERNEL big\nGPU_PARAM a float[M][K]\nGPU_PARAM b float[K][N]\n"
                         "GPU_PARAM c float[M][N]\nGPU_PARAM r float[M]\nGPU_PARAM t float[N][M]\n"
                         "GPU_THREAD_CODE:\n"
                         "    PARALLEL_MATMUL a b -> c\n"
                         "    PARALLEL_MAP c -> c : max(c, 0.0)\n"
                         "    PARALLEL_REDUCE SUM c -> r\n"
                         "    PARALLEL_TRANSPOSE c -> t\n"
                         "    PARALLEL_FOR i IN 0..M { var s = 0.0\n for j IN 0..N { s += c[i][j] }\n r[i] = r[i] - s }\n"
                         "GPU_END\n";

/* saxpy on this context at N = 1000 matches a C loop: the context works */
static int saxpy_works(void)
{
    PxModule *m = NULL;
    PxKernel *k;
    PxLaunch *l = NULL;
    enum { N = 1000 };
    float x[N], y[N], want[N];
    for (int i = 0; i < N; i++) x[i] = (float)i * 0.5f - 7, y[i] = (float)(i % 13), want[i] = 3.0f * x[i] + y[i];
    int64_t sh[1] = {N};
    PxBuffer *bx = buf(PX_F32, 1, sh, x), *by = buf(PX_F32, 1, sh, y);
    int ok = bx && by && !px_module_compile(ctx, SAXPY, strlen(SAXPY), "saxpy.px", &m, NULL) &&
             !px_module_kernel(m, NULL, &k) && !px_launch_create(k, &l) && !px_launch_bind(l, "x", bx, NULL) &&
             !px_launch_bind(l, "y", by, NULL) && !px_launch_set_float(l, "a", 3.0f) && !px_launch_run(l) &&
             !px_buffer_read(by, y, sizeof y);
    for (int i = 0; ok && i < N; i++) ok = y[i] == want[i];
    px_launch_destroy(l);
    px_module_destroy(m);
    px_buffer_destroy(bx);
    px_buffer_destroy(by);
    return ok;
}

/* The n-th arena allocation of a compile fails, for every n until a compile
 * gets through: each is PX_ERR_OUT_OF_MEMORY (never a crash or exit), and
 * the context still works after each. ASan checks nothing leaks. */
TEST(oom_everywhere)
{
    int n, ooms = 0, bad = 0, broken = 0;
    for (n = 1; n < 100000; n += n < 400 ? 1 : 13) {
        PxModule *m = NULL;
        char *diags = NULL;
        fe_fail_alloc_after(n);
        PxResult r = px_module_compile(ctx, BIG, strlen(BIG), "big.px", &m, &diags);
        fe_fail_alloc_after(0);
        px_free(diags);
        px_module_destroy(m);
        if (r == PX_OK) break;
        ooms++;
        if (r != PX_ERR_OUT_OF_MEMORY || !strstr(px_last_error(ctx), "out of memory")) {
            if (!bad) fprintf(stderr, "allocation %d: result %d: %s\n", n, r, px_last_error(ctx));
            bad++;
        }
        /* every so often, the whole context: compile and run */
        if (n % 64 == 1 && !saxpy_works()) broken++;
    }
    CHECK_MSG(n < 100000, "the compile never got through (%d failures)", ooms);
    CHECK_MSG(ooms >= 400, "only %d allocation points failed", ooms);
    CHECK_MSG(bad == 0, "%d failed allocations gave another result", bad);
    CHECK_MSG(broken == 0, "the context broke %d times", broken);
    CHECK(saxpy_works());
}

/* An IR verifier rejection (a compiler bug) is PX_ERR_INTERNAL naming the
 * pass, not an exit; the next compile works. */
TEST(verifier_failure)
{
    PxModule *m = NULL;
    fe_inject_failure("verify");
    PxResult r = px_module_compile(ctx, SAXPY, strlen(SAXPY), "saxpy.px", &m, NULL);
    fe_inject_failure(NULL);
    CHECK(r == PX_ERR_INTERNAL && m == NULL);
    CHECK_MSG(strstr(px_last_error(ctx), "saxpy.px: internal compiler error: IR verification failed after"),
              "%s", px_last_error(ctx));
    CHECK(saxpy_works());
}

/* A SPIR-V module the validator rejects is PX_ERR_INTERNAL with the
 * validator's word; the next compile works. (The CPU backend makes no
 * SPIR-V: there the compile succeeds.) */
TEST(spirv_validation_failure)
{
    PxModule *m = NULL;
    fe_inject_failure("spirv");
    PxResult r = px_module_compile(ctx, SAXPY, strlen(SAXPY), "saxpy.px", &m, NULL);
    fe_inject_failure(NULL);
    if (!strcmp(px_context_backend(ctx), "cpu")) {
        CHECK(r == PX_OK);
    } else {
        CHECK(r == PX_ERR_INTERNAL && m == NULL);
        CHECK_MSG(strstr(px_last_error(ctx), "internal compiler error: SPIR-V validation failed"), "%s",
                  px_last_error(ctx));
    }
    px_module_destroy(m);
    CHECK(saxpy_works());
}

/* A source error is still PX_ERR_COMPILE with located diagnostics. */
TEST(source_errors_unchanged)
{
    PxModule *m = NULL;
    char *diags = NULL;
    const char *bad = "GPU_KERNEL k\nGPU_THREAD_CODE:\n    PARALLEL_ADD a b -> \nGPU_END\n";
    CHECK(px_module_compile(ctx, bad, strlen(bad), "bad.px", &m, &diags) == PX_ERR_COMPILE);
    CHECK_MSG(diags && strstr(diags, "bad.px:3:"), "%s", diags ? diags : "(none)");
    px_free(diags);
    CHECK(saxpy_works());
}

TEST(version)
{
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", PX_VERSION_MAJOR, PX_VERSION_MINOR, PX_VERSION_PATCH);
    CHECK(!strcmp(px_version(), v) && !strcmp(PX_VERSION_STRING, v));
}

int main(void)
{
    if (!pxtest_open()) return 1;
    RUN(version);
    RUN(verifier_failure);
    RUN(spirv_validation_failure);
    RUN(source_errors_unchanged);
    RUN(oom_everywhere);
    px_context_destroy(ctx);
    return TEST_DONE();
}
