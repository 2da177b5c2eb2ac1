/*
 * test_spirv_run.c — runs the SPIR-V backend's stage variants on the
 * Vulkan device through include/px.h, at awkward sizes, against plain C
 * loops: elementwise (the vec4 variant when N % 4 == 0, else the scalar
 * one), 1-D and row reductions, scans (vec4 and scalar rows, one block and
 * many), softmax (float, half) — each twice: with the device's subgroup
 * arithmetic, then with PX_NO_SUBGROUPS set so the shared-memory fallbacks
 * run. Needs a Vulkan device (lavapipe will do); without one it fails.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "pxtest.h"
#include "test.h"

static PxLaunch *launches[64]; /* destroyed with the modules, at the end of a pass */
static int nlaunches;
static const char *mode = "";

static PxLaunch *launch(const char *src, const char *kernel)
{
    PxLaunch *l = compile_launch(src, kernel, "run.px");
    if (l) launches[nlaunches++] = l;
    return l;
}

static int run(PxLaunch *l)
{
    PxResult r = px_launch_run(l);
    CHECK_MSG(r == PX_OK, "[%s] run: %s", mode, px_last_error(ctx));
    return r == PX_OK;
}

/* deterministic pseudo-random values in [-1, 1) */
static uint32_t rng = 12345;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
    return (float)(rng >> 8) / (float)(1 << 23) - 1.0f;
}

/* MAP over float and int buffers: vec4 variant at multiples of 4 */
TEST(elementwise_sizes)
{
    PxLaunch *l = launch("GPU_KERNEL ew\nGPU_PARAM a float\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\n"
                         "GPU_PARAM i int[N]\nGPU_PARAM j int[N]\nGPU_THREAD_CODE:\n"
                         "  PARALLEL_MAP x y -> y : a * x + y\n"
                         "  PARALLEL_MAP i -> j : i * 3 - 7\nGPU_END\n",
                         "ew");
    CHECK(l != NULL);
    if (!l) return;
    int64_t sizes[] = {1, 3, 4, 5, 8, 1020, 1023, 1024, 4097, 65536, 65540, (1 << 20) + 12};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t n = sizes[s];
        float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
        int32_t *iv = malloc((size_t)n * 4);
        for (int64_t k = 0; k < n; k++) {
            x[k] = frand() * 100;
            y[k] = frand();
            iv[k] = (int32_t)(k * 2654435761u);
        }
        PxBuffer *bx = buf(PX_F32, 1, &n, x), *by = buf(PX_F32, 1, &n, y), *bi = buf(PX_I32, 1, &n, iv);
        px_launch_set_float(l, "a", -2.5f);
        px_launch_bind(l, "x", bx, NULL);
        px_launch_bind(l, "y", by, NULL);
        px_launch_bind(l, "i", bi, NULL);
        if (run(l)) {
            float *gy = readback(l, "y");
            int32_t *gj = readback(l, "j");
            int bad = 0, badi = 0;
            for (int64_t k = 0; gy && k < n; k++) {
                float want = -2.5f * x[k] + y[k];
                bad += fabsf(gy[k] - want) > 1e-5f * (fabsf(want) + 1);
            }
            for (int64_t k = 0; gj && k < n; k++)
                badi += gj[k] != (int32_t)((uint32_t)iv[k] * 3u - 7u);
            CHECK_MSG(gy && gj && bad == 0 && badi == 0, "[%s] N=%lld: %d float, %d int wrong", mode,
                      (long long)n, bad, badi);
            free(gy);
            free(gj);
        }
        px_launch_bind(l, "x", NULL, NULL);
        px_launch_bind(l, "y", NULL, NULL);
        px_launch_bind(l, "i", NULL, NULL);
        px_buffer_destroy(bx), px_buffer_destroy(by), px_buffer_destroy(bi);
        free(x), free(y), free(iv);
    }
}

/* 1-D reductions: float SUM and MAX, int SUM (wrapping), uint MIN */
TEST(reduce_1d_sizes)
{
    PxLaunch *l = launch("GPU_KERNEL r\nGPU_PARAM x float[N]\nGPU_PARAM s float[1]\nGPU_PARAM m float[1]\n"
                         "GPU_PARAM i int[N]\nGPU_PARAM si int[1]\nGPU_PARAM u uint[N]\nGPU_PARAM mu uint[1]\n"
                         "GPU_THREAD_CODE:\n  PARALLEL_REDUCE SUM x -> s\n  PARALLEL_REDUCE MAX x -> m\n"
                         "  PARALLEL_REDUCE SUM i -> si\n  PARALLEL_REDUCE MIN u -> mu\nGPU_END\n",
                         "r");
    CHECK(l != NULL);
    if (!l) return;
    int64_t sizes[] = {1, 2, 3, 4, 7, 255, 1000, 4097, 16385, 100003, (1 << 20) + 3, 1 << 22};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        int64_t n = sizes[t];
        float *x = malloc((size_t)n * 4);
        int32_t *iv = malloc((size_t)n * 4);
        uint32_t *uv = malloc((size_t)n * 4);
        for (int64_t k = 0; k < n; k++) {
            x[k] = frand();
            iv[k] = (int32_t)(k * 2654435761u);
            uv[k] = (uint32_t)(k * 40503u + 977u) | 0x1000u;
        }
        if (n > 5) uv[n - 3] = 17; /* the minimum near the end (a tail element) */
        PxBuffer *bx = buf(PX_F32, 1, &n, x), *bi = buf(PX_I32, 1, &n, iv), *bu = buf(PX_U32, 1, &n, uv);
        px_launch_bind(l, "x", bx, NULL);
        px_launch_bind(l, "i", bi, NULL);
        px_launch_bind(l, "u", bu, NULL);
        if (run(l)) {
            double ws = 0, wa = 0, wm = -INFINITY;
            uint32_t wsi = 0, wmu = UINT32_MAX;
            for (int64_t k = 0; k < n; k++) {
                ws += x[k], wa += fabs(x[k]);
                if (x[k] > wm) wm = x[k];
                wsi += (uint32_t)iv[k];
                if (uv[k] < wmu) wmu = uv[k];
            }
            float *gs = readback(l, "s"), *gm = readback(l, "m");
            int32_t *gsi = readback(l, "si");
            uint32_t *gmu = readback(l, "mu");
            CHECK_MSG(gs && fabs(gs[0] - ws) <= 1e-5 * wa + 1e-6, "[%s] N=%lld sum %g want %g", mode,
                      (long long)n, gs ? gs[0] : 0.0, ws);
            CHECK_MSG(gm && gm[0] == (float)wm, "[%s] N=%lld max %g want %g", mode, (long long)n,
                      gm ? gm[0] : 0.0, wm);
            CHECK_MSG(gsi && (uint32_t)gsi[0] == wsi, "[%s] N=%lld int sum", mode, (long long)n);
            CHECK_MSG(gmu && gmu[0] == wmu, "[%s] N=%lld uint min %u want %u", mode, (long long)n,
                      gmu ? gmu[0] : 0u, wmu);
            free(gs), free(gm), free(gsi), free(gmu);
        }
        px_launch_bind(l, "x", NULL, NULL);
        px_launch_bind(l, "i", NULL, NULL);
        px_launch_bind(l, "u", NULL, NULL);
        px_buffer_destroy(bx), px_buffer_destroy(bi), px_buffer_destroy(bu);
        free(x), free(iv), free(uv);
    }
}

/* Row reductions (one group per row) of floats */
TEST(reduce_rows)
{
    PxLaunch *l = launch("GPU_KERNEL rr\nGPU_PARAM a float[M][N]\nGPU_PARAM s float[M]\nGPU_THREAD_CODE:\n"
                         "  PARALLEL_REDUCE SUM a -> s\nGPU_END\n",
                         "rr");
    CHECK(l != NULL);
    if (!l) return;
    int64_t shapes[][2] = {{1, 1}, {5, 3}, {3, 1000}, {129, 65}, {2, 70001}};
    for (int t = 0; t < 5; t++) {
        int64_t M = shapes[t][0], N = shapes[t][1];
        float *a = malloc(4 * (size_t)(M * N));
        for (int64_t k = 0; k < M * N; k++) a[k] = frand();
        PxBuffer *ba = buf(PX_F32, 2, shapes[t], a);
        px_launch_bind(l, "a", ba, NULL);
        if (run(l)) {
            float *s = readback(l, "s");
            int bad = 0;
            for (int64_t i = 0; s && i < M; i++) {
                double w = 0, wa = 0;
                for (int64_t j = 0; j < N; j++) w += a[i * N + j], wa += fabs(a[i * N + j]);
                bad += fabs(s[i] - w) > 1e-5 * wa + 1e-6;
            }
            CHECK_MSG(s && bad == 0, "[%s] %lldx%lld: %d rows wrong", mode, (long long)M, (long long)N, bad);
            free(s);
        }
        px_launch_bind(l, "a", NULL, NULL);
        px_buffer_destroy(ba);
        free(a);
    }
}

/* Inclusive int scans of rows (1-D: one row): exact, wrapping. Sizes cover
 * one partial block, exactly one block (4096), one more, many blocks and
 * several blocks per chunk (the looped variants), the most blocks with one
 * per chunk (4096^2), more rows than the group cap (looped), rows of a
 * multiple of 4 (vec4) and not. */
TEST(scan_sizes)
{
    PxLaunch *l1 = launch("GPU_KERNEL s1\nGPU_PARAM x int[N]\nGPU_PARAM y int[N]\nGPU_THREAD_CODE:\n"
                          "  PARALLEL_SCAN SUM x -> y\nGPU_END\n",
                          "s1");
    PxLaunch *l2 = launch("GPU_KERNEL s2\nGPU_PARAM x int[M][N]\nGPU_PARAM y int[M][N]\nGPU_THREAD_CODE:\n"
                          "  PARALLEL_SCAN SUM x -> y\nGPU_END\n",
                          "s2");
    CHECK(l1 && l2);
    if (!l1 || !l2) return;
    int64_t shapes[][2] = {{1, 1},    {1, 3},    {1, 4},     {1, 4095},    {1, 4096},
                           {1, 4097}, {1, 8192}, {1, 70001}, {1, 4096 * 4096 + 4}, {3, 5},
                           {7, 4096}, {4, 10001}, {65, 12},  {1, 127},     {1, 129},
                           {1, 4096 * 4096}, {70000, 4}, {65536, 3}};
    for (int t = 0; t < (int)(sizeof shapes / sizeof shapes[0]); t++) {
        int64_t M = shapes[t][0], N = shapes[t][1];
        PxLaunch *l = M == 1 ? l1 : l2;
        int32_t *x = malloc(4 * (size_t)(M * N));
        for (int64_t k = 0; k < M * N; k++) x[k] = (int32_t)(k * 2654435761u % 2001) - 1000;
        PxBuffer *bx = M == 1 ? buf(PX_I32, 1, &N, x) : buf(PX_I32, 2, shapes[t], x);
        px_launch_bind(l, "x", bx, NULL);
        if (run(l)) {
            int32_t *y = readback(l, "y");
            int64_t bad = 0, first = -1;
            for (int64_t i = 0; y && i < M; i++) {
                uint32_t acc = 0;
                for (int64_t j = 0; j < N; j++) {
                    acc += (uint32_t)x[i * N + j];
                    if ((uint32_t)y[i * N + j] != acc) {
                        if (first < 0) first = i * N + j;
                        bad++;
                    }
                }
            }
            CHECK_MSG(y && bad == 0, "[%s] scan %lldx%lld: %lld wrong, first at %lld", mode, (long long)M,
                      (long long)N, (long long)bad, (long long)first);
            free(y);
        }
        px_launch_bind(l, "x", NULL, NULL);
        px_buffer_destroy(bx);
        free(x);
    }
}

/* Float softmax rows, cols a multiple of 4 (vec4 rows) and not */
TEST(softmax_float)
{
    PxLaunch *l = launch("GPU_KERNEL sm\nGPU_PARAM a float[R][C]\nGPU_PARAM p float[R][C]\nGPU_THREAD_CODE:\n"
                         "  PARALLEL_SOFTMAX a -> p\nGPU_END\n",
                         "sm");
    CHECK(l != NULL);
    if (!l) return;
    int64_t shapes[][2] = {{1, 1}, {3, 37}, {5, 64}, {17, 3}, {2, 1000}, {9, 1001}};
    for (int t = 0; t < 6; t++) {
        int64_t R = shapes[t][0], C = shapes[t][1];
        float *a = malloc(4 * (size_t)(R * C));
        for (int64_t k = 0; k < R * C; k++) a[k] = frand() * 8;
        PxBuffer *ba = buf(PX_F32, 2, shapes[t], a);
        px_launch_bind(l, "a", ba, NULL);
        if (run(l)) {
            float *p = readback(l, "p");
            int bad = 0;
            for (int64_t i = 0; p && i < R; i++) {
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < C; j++) mx = fmax(mx, a[i * C + j]);
                for (int64_t j = 0; j < C; j++) sum += exp(a[i * C + j] - mx);
                for (int64_t j = 0; j < C; j++) {
                    double w = exp(a[i * C + j] - mx) / sum;
                    bad += fabs(p[i * C + j] - w) > 1e-5 * w + 1e-7;
                }
            }
            CHECK_MSG(p && bad == 0, "[%s] softmax %lldx%lld: %d wrong", mode, (long long)R, (long long)C, bad);
            free(p);
        }
        px_launch_bind(l, "a", NULL, NULL);
        px_buffer_destroy(ba);
        free(a);
    }
}

/* tests/golden/user_softmax_half.px: half softmax then a half scan of its
 * result (the backend once emitted an invalid half->half conversion here) */
TEST(softmax_scan_half)
{
    PxLaunch *l = launch("GPU_KERNEL sh\nGPU_PARAM a half[B][T]\nGPU_PARAM p half[B][T]\n"
                         "GPU_PARAM s half[B][T]\nGPU_THREAD_CODE:\n    PARALLEL_SOFTMAX a → p\n"
                         "    PARALLEL_SCAN SUM p → s\nGPU_END\n",
                         "sh");
    CHECK(l != NULL);
    if (!l) return;
    int64_t shapes[][2] = {{1, 1}, {3, 37}, {4, 64}, {2, 4100}};
    for (int t = 0; t < 4; t++) {
        int64_t B = shapes[t][0], T = shapes[t][1], n = B * T;
        uint16_t *a = malloc(2 * (size_t)n);
        for (int64_t k = 0; k < n; k++) a[k] = to_half(frand() * 4);
        PxBuffer *ba = buf(PX_F16, 2, shapes[t], a);
        px_launch_bind(l, "a", ba, NULL);
        if (run(l)) {
            uint16_t *p = readback(l, "p"), *s = readback(l, "s");
            int badp = 0, bads = 0;
            for (int64_t i = 0; p && s && i < B; i++) {
                double mx = -INFINITY, sum = 0, run_ = 0;
                for (int64_t j = 0; j < T; j++) mx = fmax(mx, from_half(a[i * T + j]));
                for (int64_t j = 0; j < T; j++) sum += exp(from_half(a[i * T + j]) - mx);
                for (int64_t j = 0; j < T; j++) {
                    double w = exp(from_half(a[i * T + j]) - mx) / sum;
                    badp += !(fabs(from_half(p[i * T + j]) - w) <= 1e-3 * w + 1e-7);
                    /* the scan of the half values the device wrote, in f32,
                     * rounded to half once */
                    run_ += from_half(p[i * T + j]);
                    bads += !(fabs(from_half(s[i * T + j]) - run_) <= 1e-3 * run_ + 1e-6);
                }
            }
            CHECK_MSG(p && s && badp == 0 && bads == 0, "[%s] half %lldx%lld: %d softmax, %d scan wrong",
                      mode, (long long)B, (long long)T, badp, bads);
            free(p), free(s);
        }
        px_launch_bind(l, "a", NULL, NULL);
        px_buffer_destroy(ba);
        free(a);
    }
}

static void quiet(void *u, PxLogLevel lv, const char *msg)
{
    (void)u, (void)lv, (void)msg;
}

int main(void)
{
    /* pass 0: the device's subgroup arithmetic (when it has it); pass 1:
     * PX_NO_SUBGROUPS, the shared-memory fallbacks */
    for (int pass = 0; pass < 2; pass++) {
        if (pass) setenv("PX_NO_SUBGROUPS", "1", 1);
        else unsetenv("PX_NO_SUBGROUPS");
        mode = pass ? "no subgroups" : "subgroups";
        PxConfig cfg;
        px_config_default(&cfg);
        cfg.log = quiet;
        cfg.backend = PX_BACKEND_VULKAN;
        char *err = NULL;
        if (px_context_create(&cfg, &ctx, &err)) {
            printf("no Vulkan device: %s\n0 passed, 1 failed\n", err ? err : "?");
            return 1;
        }
        RUN(elementwise_sizes);
        RUN(reduce_1d_sizes);
        RUN(reduce_rows);
        RUN(scan_sizes);
        RUN(softmax_float);
        PxDeviceInfo info;
        px_device_info(ctx, &info);
        if (info.has_half) RUN(softmax_scan_half);
        else printf("[%s] no half support: softmax_scan_half skipped\n", mode);
        for (int i = 0; i < nlaunches; i++) px_launch_destroy(launches[i]);
        nlaunches = 0;
        for (int i = 0; i < nmods; i++) px_module_destroy(mods[i]);
        nmods = 0;
        px_context_destroy(ctx);
    }
    return TEST_DONE();
}
