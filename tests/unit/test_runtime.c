/* test_runtime.c — the embedding API on the default Vulkan device
 * (lavapipe in make check): every primitive on sizes that stress edges,
 * against references computed here with plain C loops; the bounds and
 * division-by-zero rules on the device; size binding and its errors;
 * async runs, timings, several contexts. */
#include <math.h>
#include <stdlib.h>

#include "pxtest.h"
#include "test.h"


static PxLaunch *launch(const char *src, const char *kernel)
{
    return compile_launch(src, kernel, "test.px");
}

static int close_to(double got, double want, double rel)
{
    return fabs(got - want) <= rel * (fabs(want) + 1e-6) || (isnan(got) && isnan(want));
}

/* ---- elementwise ------------------------------------------------------------ */

TEST(map_saxpy_sizes)
{
    PxLaunch *l = launch("GPU_KERNEL saxpy\nGPU_PARAM a float\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\n"
                         "GPU_PARAM z float[N]\nGPU_THREAD_CODE:\n  PARALLEL_MAP x y -> z : a * x + y\nGPU_END\n",
                         "saxpy");
    CHECK(l != NULL);
    if (!l) return;
    int64_t sizes[] = {1, 255, 256, 257, 1009, 65537, (1 << 20) + 3};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t n = sizes[s];
        float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
        for (int64_t i = 0; i < n; i++) {
            x[i] = (float)(i % 1000) * 0.5f;
            y[i] = (float)(i % 7) - 3.0f;
        }
        PxBuffer *bx = buf(PX_F32, 1, &n, x), *by = buf(PX_F32, 1, &n, y);
        px_launch_bind(l, "x", bx, NULL);
        px_launch_bind(l, "y", by, NULL);
        px_launch_set_float(l, "a", 2.5f);
        PxResult r = px_launch_run(l);
        CHECK_MSG(r == PX_OK, "n=%lld: %s", (long long)n, px_last_error(ctx));
        float *z = readback(l, "z");
        int bad = 0;
        for (int64_t i = 0; z && i < n; i++) bad += !close_to(z[i], 2.5 * x[i] + y[i], 1e-6);
        CHECK_MSG(z && bad == 0, "n=%lld: %d wrong", (long long)n, bad);
        CHECK(px_buffer_count(px_launch_buffer(l, "z")) == n);
        free(z);
        free(x);
        free(y);
        px_launch_bind(l, "x", NULL, NULL);
        px_launch_bind(l, "y", NULL, NULL);
        px_buffer_destroy(bx);
        px_buffer_destroy(by);
    }
    px_launch_destroy(l);
}

TEST(arith_prims_int_div_zero)
{
    /* integer / and % by zero give 0; INT_MIN / -1 is INT_MIN (DECISIONS) */
    PxLaunch *l = launch("GPU_KERNEL k\nGPU_PARAM a int[N]\nGPU_PARAM b int[N]\nGPU_PARAM q int[N]\n"
                         "GPU_PARAM r int[N]\nGPU_PARAM s int[N]\nGPU_THREAD_CODE:\n"
                         "  PARALLEL_DIV a b -> q\n  PARALLEL_MAP a b -> r : a % b\n  PARALLEL_SUB a b -> s\nGPU_END\n",
                         "k");
    CHECK(l != NULL);
    if (!l) return;
    int64_t n = 1001;
    int32_t *a = malloc(4 * (size_t)n), *b = malloc(4 * (size_t)n);
    for (int i = 0; i < n; i++) {
        a[i] = i * 37 - 5000;
        b[i] = (i % 5) - 2; /* includes zeros */
    }
    a[0] = INT32_MIN;
    b[0] = -1;
    a[1] = INT32_MIN;
    b[1] = 0;
    px_launch_bind(l, "a", buf(PX_I32, 1, &n, a), NULL);
    px_launch_bind(l, "b", buf(PX_I32, 1, &n, b), NULL);
    CHECK_MSG(px_launch_run(l) == PX_OK, "%s", px_last_error(ctx));
    int32_t *q = readback(l, "q"), *r = readback(l, "r"), *s = readback(l, "s");
    int bad = 0;
    for (int i = 0; q && r && s && i < n; i++) {
        int64_t wq, wr;
        if (b[i] == 0) wq = wr = 0;
        else if (a[i] == INT32_MIN && b[i] == -1) wq = INT32_MIN, wr = 0;
        else wq = a[i] / b[i], wr = a[i] % b[i];
        int32_t ws = (int32_t)((uint32_t)a[i] - (uint32_t)b[i]);
        if (q[i] != wq || r[i] != wr || s[i] != ws) {
            if (bad++ < 3) fprintf(stderr, "i=%d a=%d b=%d: q %d r %d s %d\n", i, a[i], b[i], q[i], r[i], s[i]);
        }
    }
    CHECK(q && r && s && bad == 0);
    free(q);
    free(r);
    free(s);
    free(a);
    free(b);
    px_buffer_destroy(px_launch_buffer(l, "a"));
    px_buffer_destroy(px_launch_buffer(l, "b"));
    px_launch_destroy(l);
}

TEST(float_arith_fill_copy)
{
    PxLaunch *l = launch("GPU_KERNEL k\nGPU_PARAM a float[M][N]\nGPU_PARAM b float[M][N]\nGPU_PARAM c float[M][N]\n"
                         "GPU_PARAM d float[M][N]\nGPU_PARAM e float[M][N]\nGPU_PARAM f float[M][N]\n"
                         "GPU_PARAM g float[M][N]\nGPU_THREAD_CODE:\n"
                         "  PARALLEL_ADD a b -> c\n  PARALLEL_MUL a b -> d\n  PARALLEL_DIV a b -> e\n"
                         "  PARALLEL_FILL 1.5 -> f\n  PARALLEL_COPY c -> g\nGPU_END\n",
                         "k");
    CHECK(l != NULL);
    if (!l) return;
    int64_t shapes[][2] = {{1, 1}, {3, 257}, {129, 65}};
    for (int s = 0; s < 3; s++) {
        int64_t n = shapes[s][0] * shapes[s][1];
        float *a = malloc(4 * (size_t)n), *b = malloc(4 * (size_t)n);
        for (int i = 0; i < n; i++) {
            a[i] = (float)(i % 13) - 6;
            b[i] = (float)(i % 5) + 1;
        }
        PxBuffer *ba = buf(PX_F32, 2, shapes[s], a), *bb = buf(PX_F32, 2, shapes[s], b);
        px_launch_bind(l, "a", ba, NULL);
        px_launch_bind(l, "b", bb, NULL);
        CHECK_MSG(px_launch_run(l) == PX_OK, "%s", px_last_error(ctx));
        float *c = readback(l, "c"), *d = readback(l, "d"), *e = readback(l, "e"), *f = readback(l, "f"),
              *g = readback(l, "g");
        int bad = 0;
        for (int i = 0; c && d && e && f && g && i < n; i++)
            bad += c[i] != a[i] + b[i] || d[i] != a[i] * b[i] || !close_to(e[i], a[i] / b[i], 1e-6) || f[i] != 1.5f ||
                   g[i] != a[i] + b[i];
        CHECK_MSG(c && bad == 0, "shape %lld x %lld: %d wrong", (long long)shapes[s][0], (long long)shapes[s][1], bad);
        free(c);
        free(d);
        free(e);
        free(f);
        free(g);
        free(a);
        free(b);
        px_launch_bind(l, "a", NULL, NULL);
        px_launch_bind(l, "b", NULL, NULL);
        px_buffer_destroy(ba);
        px_buffer_destroy(bb);
    }
    px_launch_destroy(l);
}

/* ---- library primitives ------------------------------------------------------------ */

TEST(transpose_shapes)
{
    PxLaunch *l = launch("GPU_KERNEL t\nGPU_PARAM a float[M][N]\nGPU_PARAM b float[N][M]\nGPU_THREAD_CODE:\n"
                         "  PARALLEL_TRANSPOSE a -> b\nGPU_END\n",
                         "t");
    CHECK(l != NULL);
    if (!l) return;
    /* the vec4 4x4-block variant (both extents multiples of 4) and the
     * direct one (either not), down to one element and one block */
    int64_t shapes[][2] = {{1, 1},   {1, 77},   {17, 33},  {255, 257}, {64, 64},   {4, 4},
                           {4, 8},   {12, 4},   {4, 7},    {7, 4},     {300, 200}, {129, 127},
                           {128, 132}, {1000, 12}, {3, 1024}};
    for (int s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
        int64_t M = shapes[s][0], N = shapes[s][1];
        float *a = malloc(4 * (size_t)(M * N));
        for (int64_t i = 0; i < M * N; i++) a[i] = (float)i;
        PxBuffer *ba = buf(PX_F32, 2, shapes[s], a);
        px_launch_bind(l, "a", ba, NULL);
        CHECK_MSG(px_launch_run(l) == PX_OK, "%s", px_last_error(ctx));
        float *b = readback(l, "b");
        int bad = 0;
        for (int64_t i = 0; b && i < M; i++)
            for (int64_t j = 0; j < N; j++) bad += b[j * M + i] != a[i * N + j];
        CHECK_MSG(b && bad == 0, "%lldx%lld: %d wrong", (long long)M, (long long)N, bad);
        const int64_t *sh = px_buffer_shape(px_launch_buffer(l, "b"));
        CHECK(sh[0] == N && sh[1] == M);
        free(a);
        free(b);
        px_launch_bind(l, "a", NULL, NULL);
        px_buffer_destroy(ba);
    }
    px_launch_destroy(l);
}

TEST(reduce_1d)
{
    static const char *ops[] = {"SUM", "MIN", "MAX", "PROD"};
    int64_t sizes[] = {1, 255, 257, 4097, 1000003};
    for (int o = 0; o < 4; o++) {
        char src[256];
        snprintf(src, sizeof src,
                 "GPU_KERNEL r\nGPU_PARAM a float[N]\nGPU_PARAM s float[1]\nGPU_THREAD_CODE:\n"
                 "  PARALLEL_REDUCE %s a -> s\nGPU_END\n", ops[o]);
        PxLaunch *l = launch(src, "r");
        CHECK(l != NULL);
        if (!l) continue;
        for (int z = 0; z < 5; z++) {
            int64_t n = sizes[z];
            if (o == 3 && n > 4097) continue;
            float *a = malloc(4 * (size_t)n);
            /* quarter multiples: every partial sum is exact in float, so
             * the device's order of summation cannot matter */
            for (int64_t i = 0; i < n; i++) a[i] = (float)((i * 7919) % 13) * 0.25f - 1.0f;
            if (o == 3)
                for (int64_t i = 0; i < n; i++) a[i] = i % 97 == 3 ? 2.0f : i % 89 == 5 ? 0.5f : 1.0f;
            double want = o == 0 ? 0 : o == 1 ? INFINITY : o == 2 ? -INFINITY : 1;
            for (int64_t i = 0; i < n; i++)
                want = o == 0 ? want + a[i] : o == 1 ? fmin(want, a[i]) : o == 2 ? fmax(want, a[i]) : want * a[i];
            PxBuffer *ba = buf(PX_F32, 1, &n, a);
            px_launch_bind(l, "a", ba, NULL);
            CHECK_MSG(px_launch_run(l) == PX_OK, "%s", px_last_error(ctx));
            float *s = readback(l, "s");
            CHECK_MSG(s && s[0] == (float)want, "%s n=%lld: got %g want %g", ops[o], (long long)n, s ? s[0] : 0, want);
            free(s);
            free(a);
            px_launch_bind(l, "a", NULL, NULL);
            px_buffer_destroy(ba);
        }
        px_launch_destroy(l);
    }
}

TEST(reduce_rows_int)
{
    PxLaunch *l = launch("GPU_KERNEL r\nGPU_PARAM a int[M][N]\nGPU_PARAM s int[M]\nGPU_PARAM m int[M]\nGPU_THREAD_CODE:\n"
                         "  PARALLEL_REDUCE SUM a -> s\n  PARALLEL_REDUCE MAX a -> m\nGPU_END\n",
                         "r");
    CHECK(l != NULL);
    if (!l) return;
    int64_t shapes[][2] = {{1, 1}, {3, 1000}, {257, 31}, {2, 70001}};
    for (int t = 0; t < 4; t++) {
        int64_t M = shapes[t][0], N = shapes[t][1];
        int32_t *a = malloc(4 * (size_t)(M * N));
        for (int64_t i = 0; i < M * N; i++) a[i] = (int32_t)((i * 2654435761u) % 2001) - 1000;
        PxBuffer *ba = buf(PX_I32, 2, shapes[t], a);
        px_launch_bind(l, "a", ba, NULL);
        CHECK_MSG(px_launch_run(l) == PX_OK, "%s", px_last_error(ctx));
        int32_t *s = readback(l, "s"), *m = readback(l, "m");
        int bad = 0;
        for (int64_t i = 0; s && m && i < M; i++) {
            int64_t ws = 0;
            int32_t wm = INT32_MIN;
            for (int64_t j = 0; j < N; j++) {
                ws += a[i * N + j];
                if (a[i * N + j] > wm) wm = a[i * N + j];
            }
            bad += s[i] != ws || m[i] != wm;
        }
        CHECK_MSG(s && m && bad == 0, "%lldx%lld: %d rows wrong", (long long)M, (long long)N, bad);
        free(s);
        free(m);
        free(a);
        px_launch_bind(l, "a", NULL, NULL);
        px_buffer_destroy(ba);
    }
    px_launch_destroy(l);
}

TEST(scan_sizes)
{
    PxLaunch *l = launch("GPU_KERNEL s\nGPU_PARAM a float[N]\nGPU_PARAM b float[N]\nGPU_THREAD_CODE:\n"
                         "  PARALLEL_SCAN SUM a -> b\nGPU_END\n",
                         "s");
    PxLaunch *l2 = launch("GPU_KERNEL s2\nGPU_PARAM a uint[M][N]\nGPU_PARAM b uint[M][N]\nGPU_THREAD_CODE:\n"
                          "  PARALLEL_SCAN SUM a -> b\nGPU_END\n",
                          "s2");
    CHECK(l && l2);
    if (!l || !l2) return;
    int64_t sizes[] = {1, 256, 257, 4099, 1000003};
    for (int z = 0; z < 5; z++) {
        int64_t n = sizes[z];
        float *a = malloc(4 * (size_t)n);
        for (int64_t i = 0; i < n; i++) a[i] = (float)(i % 3); /* prefixes stay exact */
        PxBuffer *ba = buf(PX_F32, 1, &n, a);
        px_launch_bind(l, "a", ba, NULL);
        CHECK_MSG(px_launch_run(l) == PX_OK, "%s", px_last_error(ctx));
        float *b = readback(l, "b");
        double acc = 0;
        int64_t bad = 0;
        for (int64_t i = 0; b && i < n; i++) {
            acc += a[i];
            bad += b[i] != (float)acc;
        }
        CHECK_MSG(b && bad == 0, "scan n=%lld: %lld wrong", (long long)n, (long long)bad);
        free(a);
        free(b);
        px_launch_bind(l, "a", NULL, NULL);
        px_buffer_destroy(ba);
    }
    int64_t sh[2] = {5, 777};
    uint32_t *a = malloc(4 * 5 * 777);
    for (int i = 0; i < 5 * 777; i++) a[i] = (uint32_t)(i * 31 % 101);
    PxBuffer *ba = buf(PX_U32, 2, sh, a);
    px_launch_bind(l2, "a", ba, NULL);
    CHECK_MSG(px_launch_run(l2) == PX_OK, "%s", px_last_error(ctx));
    uint32_t *b = readback(l2, "b");
    int bad = 0;
    for (int r = 0; b && r < 5; r++) {
        uint32_t acc = 0;
        for (int j = 0; j < 777; j++) {
            acc += a[r * 777 + j];
            bad += b[r * 777 + j] != acc;
        }
    }
    CHECK(b && bad == 0);
    free(a);
    free(b);
    px_launch_bind(l2, "a", NULL, NULL);
    px_buffer_destroy(ba);
    px_launch_destroy(l);
    px_launch_destroy(l2);
}

TEST(softmax_rows)
{
    PxLaunch *l = launch("GPU_KERNEL s\nGPU_PARAM a float[M][N]\nGPU_PARAM b float[M][N]\nGPU_THREAD_CODE:\n"
                         "  PARALLEL_SOFTMAX a -> b\nGPU_END\n",
                         "s");
    CHECK(l != NULL);
    if (!l) return;
    int64_t shapes[][2] = {{1, 1}, {7, 1000}, {3, 257}, {33, 3}};
    for (int t = 0; t < 4; t++) {
        int64_t M = shapes[t][0], N = shapes[t][1];
        float *a = malloc(4 * (size_t)(M * N));
        /* large values: only a max-subtracting softmax stays finite */
        for (int64_t i = 0; i < M * N; i++) a[i] = (float)((i * 37) % 101) * 0.1f + (i % 2 ? 100.0f : 0.0f);
        PxBuffer *ba = buf(PX_F32, 2, shapes[t], a);
        px_launch_bind(l, "a", ba, NULL);
        CHECK_MSG(px_launch_run(l) == PX_OK, "%s", px_last_error(ctx));
        float *b = readback(l, "b");
        int bad = 0;
        for (int64_t r = 0; b && r < M; r++) {
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < N; j++) mx = fmax(mx, a[r * N + j]);
            for (int64_t j = 0; j < N; j++) sum += exp(a[r * N + j] - mx);
            for (int64_t j = 0; j < N; j++) bad += !close_to(b[r * N + j], exp(a[r * N + j] - mx) / sum, 1e-4);
        }
        CHECK_MSG(b && bad == 0, "softmax %lldx%lld: %d wrong", (long long)M, (long long)N, bad);
        free(a);
        free(b);
        px_launch_bind(l, "a", NULL, NULL);
        px_buffer_destroy(ba);
    }
    px_launch_destroy(l);
}

TEST(matmul_shapes)
{
    PxLaunch *l = launch("GPU_KERNEL mm\nGPU_PARAM A float[M][K]\nGPU_PARAM B float[K][N]\nGPU_PARAM C float[M][N]\n"
                         "GPU_THREAD_CODE:\n  PARALLEL_MATMUL A B -> C\nGPU_END\n",
                         "mm");
    CHECK(l != NULL);
    if (!l) return;
    /* M x K x N: every variant of the 128x128 float kernels (interior and
     * edge tiles, vec4 when K and N are multiples of 4, else scalar; a
     * partial K-slice or none), alone and together */
    int64_t dims[][3] = {{1, 1, 1},       {17, 33, 9},      {64, 64, 64},     {65, 31, 129},
                         {1, 200, 3},     {7, 13, 5},       {128, 128, 128},  {128, 4, 256},
                         {300, 200, 500}, {256, 132, 260},  {257, 130, 259},  {127, 129, 131},
                         {129, 8, 384},   {384, 12, 127},   {700, 700, 700}};
    for (int t = 0; t < (int)(sizeof dims / sizeof dims[0]); t++) {
        int64_t M = dims[t][0], K = dims[t][1], N = dims[t][2];
        float *A = malloc(4 * (size_t)(M * K)), *B = malloc(4 * (size_t)(K * N));
        /* small integers that vary along rows and columns (so a wrong
         * index shows), and every product and sum is exact */
        for (int64_t i = 0; i < M * K; i++) A[i] = (float)(i % 7) - 3;
        for (int64_t i = 0; i < K * N; i++) B[i] = (float)((i * 5) % 9) - 4;
        int64_t sa[2] = {M, K}, sb[2] = {K, N};
        PxBuffer *ba = buf(PX_F32, 2, sa, A), *bb = buf(PX_F32, 2, sb, B);
        px_launch_bind(l, "A", ba, NULL);
        px_launch_bind(l, "B", bb, NULL);
        CHECK_MSG(px_launch_run(l) == PX_OK, "%s", px_last_error(ctx));
        float *C = readback(l, "C");
        int bad = 0;
        for (int64_t i = 0; C && i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0;
                for (int64_t k = 0; k < K; k++) acc += (double)A[i * K + k] * B[k * N + j];
                bad += C[i * N + j] != (float)acc;
            }
        CHECK_MSG(C && bad == 0, "matmul %lldx%lldx%lld: %d wrong", (long long)M, (long long)K, (long long)N, bad);
        free(A);
        free(B);
        free(C);
        px_launch_bind(l, "A", NULL, NULL);
        px_launch_bind(l, "B", NULL, NULL);
        px_buffer_destroy(ba);
        px_buffer_destroy(bb);
    }
    px_launch_destroy(l);
}

/* The seed kernel of contract section 1: outputs is implicit and takes the
 * MATMUL's M x N shape. */
TEST(seed_kernel)
{
    PxLaunch *l = launch("GPU_KERNEL train_model\nGPU_PARAM weights float[]\nGPU_THREAD_CODE:\n"
                         "    PARALLEL_MATMUL weights inputs \xe2\x86\x92 outputs\nGPU_END\n",
                         "train_model");
    CHECK(l != NULL);
    if (!l) return;
    int64_t sw[2] = {3, 4}, si[2] = {4, 5};
    float w[12], in[20];
    for (int i = 0; i < 12; i++) w[i] = (float)i - 5;
    for (int i = 0; i < 20; i++) in[i] = (float)(i % 4);
    PxBuffer *bw = buf(PX_F32, 2, sw, w), *bi = buf(PX_F32, 2, si, in);
    px_launch_bind(l, "weights", bw, NULL);
    px_launch_bind(l, "inputs", bi, NULL);
    CHECK_MSG(px_launch_run(l) == PX_OK, "%s", px_last_error(ctx));
    PxBuffer *bo = px_launch_buffer(l, "outputs");
    CHECK(bo && px_buffer_rank(bo) == 2 && px_buffer_shape(bo)[0] == 3 && px_buffer_shape(bo)[1] == 5);
    float *o = readback(l, "outputs");
    int bad = 0;
    for (int i = 0; o && i < 3; i++)
        for (int j = 0; j < 5; j++) {
            float acc = 0;
            for (int k = 0; k < 4; k++) acc += w[i * 4 + k] * in[k * 5 + j];
            bad += o[i * 5 + j] != acc;
        }
    CHECK(o && bad == 0);
    free(o);
    px_launch_destroy(l);
    px_buffer_destroy(bw);
    px_buffer_destroy(bi);
}

/* ---- thread code: bounds rule ------------------------------------------------------------ */

TEST(parallel_for_bounds)
{
    /* reads outside the buffer give 0, writes outside do nothing */
    PxLaunch *l = launch("GPU_KERNEL st\nGPU_PARAM x float[H][W]\nGPU_PARAM y float[H][W]\nGPU_PARAM z float[N]\n"
                         "GPU_THREAD_CODE:\n"
                         "  PARALLEL_FOR i IN 0..H, j IN 0..W {\n"
                         "    y[i][j] = x[i - 1][j] + x[i + 1][j] + x[i][j - 1] + x[i][j + 1] - 4.0 * x[i][j]\n"
                         "  }\n"
                         "  PARALLEL_FOR i IN 0..N + 5 {\n"
                         "    z[i + 3] = float(i)\n"
                         "  }\n"
                         "GPU_END\n",
                         "st");
    CHECK(l != NULL);
    if (!l) return;
    int64_t shapes[][2] = {{1, 1}, {7, 13}, {33, 65}};
    for (int t = 0; t < 3; t++) {
        int64_t H = shapes[t][0], W = shapes[t][1];
        float *x = malloc(4 * (size_t)(H * W));
        for (int64_t i = 0; i < H * W; i++) x[i] = (float)(i % 10) + 1;
        PxBuffer *bx = buf(PX_F32, 2, shapes[t], x);
        px_launch_bind(l, "x", bx, NULL);
        px_launch_set_size(l, "N", 10, NULL);
        CHECK_MSG(px_launch_run(l) == PX_OK, "%s", px_last_error(ctx));
        float *y = readback(l, "y"), *z = readback(l, "z");
#define X(i, j) ((i) < 0 || (i) >= H || (j) < 0 || (j) >= W ? 0.0f : x[(i) * W + (j)])
        int bad = 0;
        for (int64_t i = 0; y && i < H; i++)
            for (int64_t j = 0; j < W; j++)
                bad += y[i * W + j] != X(i - 1, j) + X(i + 1, j) + X(i, j - 1) + X(i, j + 1) - 4.0f * X(i, j);
#undef X
        CHECK_MSG(y && bad == 0, "stencil %lldx%lld: %d wrong", (long long)H, (long long)W, bad);
        for (int i = 0; z && i < 10; i++) bad += z[i] != (i < 3 ? 0.0f : (float)(i - 3));
        CHECK(z && bad == 0);
        free(x);
        free(y);
        free(z);
        px_launch_bind(l, "x", NULL, NULL);
        px_buffer_destroy(bx);
    }
    px_launch_destroy(l);
}

/* ---- binding and errors ------------------------------------------------------------ */

TEST(binding_errors)
{
    PxLaunch *l = launch("GPU_KERNEL k\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\nGPU_PARAM z float[N]\n"
                         "GPU_PARAM c float[4]\nGPU_PARAM s int\nGPU_THREAD_CODE:\n  PARALLEL_ADD x y -> z\nGPU_END\n",
                         "k");
    CHECK(l != NULL);
    if (!l) return;
    int64_t n1 = 1000, n2 = 999, n4 = 5;
    PxBuffer *a = buf(PX_F32, 1, &n1, NULL), *b = buf(PX_F32, 1, &n2, NULL), *ci = buf(PX_I32, 1, &n1, NULL),
             *c5 = buf(PX_F32, 1, &n4, NULL);
    px_launch_set_int(l, "s", 1);
    px_launch_bind(l, "x", a, "--arg x=x.npy");
    px_launch_bind(l, "y", b, "--arg y=y.npy");
    CHECK(px_launch_prepare(l) == PX_ERR_SHAPE);
    CHECK_MSG(strstr(px_last_error(ctx), "size N is 1000 from --arg x=x.npy (dim 0) but 999 from --arg y=y.npy (dim 0)"),
              "%s", px_last_error(ctx));
    px_launch_bind(l, "y", ci, "--arg y=yi.npy");
    CHECK(px_launch_prepare(l) == PX_ERR_SHAPE && strstr(px_last_error(ctx), "int") &&
          strstr(px_last_error(ctx), "parameter y is float"));
    px_launch_bind(l, "y", a, NULL);
    px_launch_bind(l, "c", c5, "--arg c=c.npy");
    CHECK(px_launch_prepare(l) == PX_ERR_SHAPE && strstr(px_last_error(ctx), "dim 0 of parameter c is 4"));
    px_launch_bind(l, "c", NULL, NULL);
    CHECK_MSG(px_launch_prepare(l) == PX_OK, "%s", px_last_error(ctx));
    int64_t v = 0;
    CHECK(px_launch_size(l, "N", &v) == PX_OK && v == 1000);
    px_launch_set_size(l, "N", 7, "--size N=7");
    CHECK(px_launch_prepare(l) == PX_ERR_SHAPE && strstr(px_last_error(ctx), "--size N=7"));
    /* unbound symbol: names the symbol and who needs it */
    px_launch_bind(l, "x", NULL, NULL);
    px_launch_bind(l, "y", NULL, NULL);
    PxLaunch *l2;
    PxKernel *k;
    px_module_kernel(mods[nmods - 1], "k", &k);
    px_launch_create(k, &l2);
    px_launch_set_int(l2, "s", 1);
    CHECK(px_launch_prepare(l2) == PX_ERR_UNBOUND);
    CHECK_MSG(strstr(px_last_error(ctx), "size N is not bound") && strstr(px_last_error(ctx), "x, y, z"), "%s",
              px_last_error(ctx));
    px_launch_set_size(l2, "N", 3, NULL);
    PxLaunch *l3;
    px_launch_create(k, &l3);
    px_launch_set_size(l3, "N", 3, NULL);
    CHECK(px_launch_prepare(l3) == PX_ERR_UNBOUND && strstr(px_last_error(ctx), "scalar parameter s"));
    CHECK(px_launch_prepare(l2) == PX_OK);
    CHECK(px_launch_set_scalar_text(l2, "s", "2.5") == PX_ERR_INVALID && strstr(px_last_error(ctx), "not an integer"));
    CHECK(px_launch_set_scalar_text(l2, "s", "0x10") == PX_OK);
    CHECK(px_launch_set_scalar_text(l2, "s", "99999999999") == PX_ERR_INVALID);
    CHECK(px_launch_set_float(l2, "s", 1.0f) == PX_ERR_SHAPE);
    CHECK(px_launch_bind(l2, "nope", a, NULL) == PX_ERR_NOT_FOUND && strstr(px_last_error(ctx), "nope"));
    CHECK(px_launch_set_size(l2, "Q", 1, NULL) == PX_ERR_NOT_FOUND);
    px_launch_destroy(l);
    px_launch_destroy(l2);
    px_launch_destroy(l3);
    px_buffer_destroy(a);
    px_buffer_destroy(b);
    px_buffer_destroy(ci);
    px_buffer_destroy(c5);
}

TEST(flexible_and_async)
{
    /* a, b implicit float[]: any rank binds; c takes a's shape */
    PxLaunch *l = launch("GPU_KERNEL k\nGPU_THREAD_CODE:\n  PARALLEL_ADD a b -> c\nGPU_END\n", "k");
    CHECK(l != NULL);
    if (!l) return;
    int64_t sh[3] = {3, 5, 7};
    float a[105], b[105];
    for (int i = 0; i < 105; i++) a[i] = (float)i, b[i] = 0.5f;
    PxBuffer *ba = buf(PX_F32, 3, sh, a), *bb = buf(PX_F32, 3, sh, b);
    px_launch_bind(l, "a", ba, NULL);
    px_launch_bind(l, "b", bb, NULL);
    CHECK(px_launch_wait(l) == PX_ERR_NOT_READY);
    CHECK_MSG(px_launch_submit(l) == PX_OK, "%s", px_last_error(ctx));
    CHECK(px_launch_wait(l) == PX_OK);
    PxBuffer *bc = px_launch_buffer(l, "c");
    CHECK(bc && px_buffer_rank(bc) == 3 && px_buffer_shape(bc)[2] == 7);
    float *c = readback(l, "c");
    int bad = 0;
    for (int i = 0; c && i < 105; i++) bad += c[i] != a[i] + 0.5f;
    CHECK(c && bad == 0);
    free(c);
    /* rerun after a host write: no re-prepare needed, new data seen */
    for (int i = 0; i < 105; i++) b[i] = 2.0f;
    px_buffer_write(bb, b, sizeof b);
    for (int rep = 0; rep < 3; rep++) CHECK(px_launch_run(l) == PX_OK);
    c = readback(l, "c");
    for (int i = 0; c && i < 105; i++) bad += c[i] != a[i] + 2.0f;
    CHECK(c && bad == 0);
    free(c);
    /* timings: per stage and total, or -1 without timestamps */
    PxDeviceInfo di;
    px_device_info(ctx, &di);
    double t = px_launch_stage_time_ns(l, -1), t0 = px_launch_stage_time_ns(l, 0);
    CHECK(di.has_timestamps ? (t >= 0 && t0 >= 0) : (t == -1 && t0 == -1));
    CHECK(px_launch_stage_count(l) == 1 && !strcmp(px_launch_stage_name(l, 0), "add"));
    PxCost cost;
    CHECK(px_launch_cost(l, -1, &cost) == PX_OK);
    CHECK_MSG(cost.bytes_read == 105 * 8 && cost.bytes_written == 105 * 4, "read %g written %g", cost.bytes_read,
              cost.bytes_written);
    CHECK(cost.predicted_ns > 0);
    px_launch_destroy(l);
    px_buffer_destroy(ba);
    px_buffer_destroy(bb);
}

/* Timing is lazy: a run leaves its timestamps unread; reading them (once)
 * also teaches the kernel's correction, and a run nobody read teaches
 * nothing. Timing off: no times at all. Expected sample counts follow the
 * rule in px.h (the first run after recording is cold and teaches nothing). */
TEST(timing_lazy_and_off)
{
    PxLaunch *l = launch("GPU_KERNEL t\nGPU_PARAM x float[N]\nGPU_THREAD_CODE:\n"
                         "    PARALLEL_MAP x -> y : x * 2.0\nGPU_END\n", NULL);
    CHECK(l != NULL);
    if (!l) return;
    PxDeviceInfo di;
    px_device_info(ctx, &di);
    CHECK(px_launch_set_size(l, "N", 1000, "test") == PX_OK);
    CHECK(px_launch_set_timing(NULL, 0) == PX_ERR_INVALID);
    CHECK(px_launch_set_timing(l, 0) == PX_OK);
    CHECK(px_launch_run(l) == PX_OK && px_launch_run(l) == PX_OK);
    CHECK(px_launch_stage_time_ns(l, -1) == -1 && px_launch_stage_time_ns(l, 0) == -1);
    CHECK(px_launch_set_timing(l, 1) == PX_OK);
    const PxKernel *k = NULL;
    PxKernel *kk = NULL;
    CHECK(px_module_kernel(mods[nmods - 1], NULL, &kk) == PX_OK);
    k = kk;
    int n0 = -1, n = -1;
    px_kernel_correction(k, &n0);
    for (int i = 0; i < 3; i++) {
        CHECK(px_launch_run(l) == PX_OK);
        double t = px_launch_stage_time_ns(l, -1);
        /* a second read gives the same run's time and teaches nothing more */
        CHECK(px_launch_stage_time_ns(l, -1) == t);
        CHECK(di.has_timestamps ? t >= 0 : t == -1);
    }
    px_kernel_correction(k, &n);
    int want = di.has_timestamps ? 2 : 0; /* run 1 after the re-record is cold */
    CHECK_MSG(n - n0 == want, "%d samples learned, want %d", n - n0, want);
    /* two runs nobody reads, then one read: one sample */
    CHECK(px_launch_run(l) == PX_OK && px_launch_run(l) == PX_OK);
    px_kernel_correction(k, &n0);
    CHECK(n0 == n);
    double t = px_launch_stage_time_ns(l, 0);
    CHECK(di.has_timestamps ? t >= 0 : t == -1);
    px_kernel_correction(k, &n);
    CHECK(n - n0 == (di.has_timestamps ? 1 : 0));
    /* a submitted run that is not waited for has no times yet */
    CHECK(px_launch_submit(l) == PX_OK);
    CHECK(px_launch_wait(l) == PX_OK);
    CHECK(di.has_timestamps ? px_launch_stage_time_ns(l, -1) >= 0 : 1);
    float *y = readback(l, "y");
    CHECK(y && y[0] == 0 && y[999] == 0);
    free(y);
    px_launch_destroy(l);
}

/* Rebinding, re-sizing and context defaults:
 * - a buffer destroyed while bound and a new one bound in its place re-
 *   prepare the launch even when the new one lands at the old address;
 * - a run whose times are read after the sizes changed teaches nothing
 *   (its prediction was at the old sizes);
 * - PxConfig.timestamps = 0 starts launches untimed, the device still says
 *   it has timestamps, and px_launch_set_timing turns them on;
 * - a message that wraps the callee's (a buffer too large for an unbound
 *   param) says each part once. */
TEST(rebind_resize_config)
{
    const char *src = "GPU_KERNEL d\nGPU_PARAM x float[N]\nGPU_THREAD_CODE:\n"
                      "    PARALLEL_MAP x -> y : x * 2.0\nGPU_END\n";
    PxLaunch *l = launch(src, NULL);
    CHECK(l != NULL);
    if (!l) return;
    float in[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t n4 = 4, n8 = 8;
    PxBuffer *b4 = buf(PX_F32, 1, &n4, in);
    CHECK(b4 && px_launch_bind(l, "x", b4, NULL) == PX_OK && px_launch_run(l) == PX_OK);
    float *y = readback(l, "y");
    CHECK(y && y[0] == 2 && y[3] == 8);
    free(y);
    px_buffer_destroy(b4);
    PxBuffer *b8 = buf(PX_F32, 1, &n8, in);
    CHECK(b8 && px_launch_bind(l, "x", b8, NULL) == PX_OK && px_launch_run(l) == PX_OK);
    y = readback(l, "y");
    CHECK(y && px_buffer_count(px_launch_buffer(l, "y")) == 8);
    int bad = 0;
    for (int i = 0; y && i < 8; i++) bad += y[i] != 2 * in[i];
    CHECK_MSG(y && bad == 0, "%d of 8 wrong after rebinding (same address: %d)", bad, (void *)b8 == (void *)b4);
    free(y);
    px_launch_bind(l, "x", NULL, NULL);
    px_buffer_destroy(b8);

    PxKernel *k = NULL;
    CHECK(px_module_kernel(mods[nmods - 1], NULL, &k) == PX_OK);
    CHECK(px_launch_set_size(l, "N", 1000, "test") == PX_OK);
    CHECK(px_launch_run(l) == PX_OK && px_launch_run(l) == PX_OK);
    int n0 = -1, n1 = -1;
    px_kernel_correction(k, &n0);
    CHECK(px_launch_set_size(l, "N", 2000, "test") == PX_OK);
    PxCost c;
    CHECK(px_launch_cost(l, -1, &c) == PX_OK);
    px_launch_stage_time_ns(l, -1);
    px_kernel_correction(k, &n1);
    CHECK_MSG(n1 == n0, "learned %d samples from a run read after its sizes changed", n1 - n0);
    px_launch_destroy(l);

    PxDeviceInfo di;
    px_device_info(ctx, &di);
    PxConfig cfg;
    px_config_default(&cfg);
    cfg.timestamps = 0;
    PxContext *c2 = NULL;
    char *err = NULL;
    CHECK(px_context_create(&cfg, &c2, &err) == PX_OK);
    px_free(err);
    if (c2) {
        PxDeviceInfo d2;
        px_device_info(c2, &d2);
        CHECK(d2.has_timestamps == di.has_timestamps);
        PxModule *m;
        PxKernel *k2;
        PxLaunch *l2 = NULL;
        CHECK(px_module_compile(c2, src, strlen(src), "d.px", &m, NULL) == PX_OK &&
              px_module_kernel(m, NULL, &k2) == PX_OK && px_launch_create(k2, &l2) == PX_OK);
        if (l2) {
            CHECK(px_launch_set_size(l2, "N", 64, "test") == PX_OK && px_launch_run(l2) == PX_OK);
            CHECK(px_launch_stage_time_ns(l2, -1) == -1);
            CHECK(px_launch_set_timing(l2, 1) == PX_OK && px_launch_run(l2) == PX_OK);
            CHECK(d2.has_timestamps ? px_launch_stage_time_ns(l2, -1) >= 0 : 1);
            /* an unbound buffer too large for the device */
            int64_t big = (int64_t)(d2.max_storage_buffer_range / 4) + 1;
            CHECK(px_launch_set_size(l2, "N", big, "test") == PX_OK);
            CHECK(px_launch_prepare(l2) == PX_ERR_TOO_LARGE);
            const char *e = px_last_error(c2);
            char needs[64];
            snprintf(needs, sizeof needs, "needs %llu bytes", (unsigned long long)big * 4);
            CHECK_MSG(strstr(e, "buffer x of shape (") == e && !strstr(e + 10, "of shape (") && strstr(e, needs) &&
                          strstr(e, "storage-buffer range"),
                      "message: %s", e);
            px_launch_destroy(l2);
        }
        px_module_destroy(m);
        px_context_destroy(c2);
    }
}

/* A kernel with no statements has no SPIR-V module and runs as a no-op;
 * its output buffer is still created (zero-filled). */
TEST(empty_kernel)
{
    PxLaunch *l = launch("GPU_KERNEL e\nGPU_PARAM o float[N]\nGPU_THREAD_CODE:\nGPU_END\n", NULL);
    CHECK(l != NULL);
    if (!l) return;
    CHECK(px_launch_stage_count(l) == 0);
    CHECK(px_launch_run(l) == PX_ERR_UNBOUND);
    CHECK(px_launch_set_size(l, "N", 7, "test") == PX_OK);
    CHECK_MSG(px_launch_run(l) == PX_OK, "%s", px_last_error(ctx));
    CHECK(px_launch_run(l) == PX_OK);
    CHECK(px_launch_submit(l) == PX_OK && px_launch_wait(l) == PX_OK);
    PxBuffer *b = px_launch_buffer(l, "o");
    CHECK(b && px_buffer_count(b) == 7);
    float *o = readback(l, "o");
    int nz = 0;
    for (int i = 0; o && i < 7; i++) nz += o[i] != 0;
    CHECK(o && nz == 0);
    free(o);
    PxCost c;
    CHECK(px_launch_cost(l, -1, &c) == PX_OK && c.dispatches == 0 && c.flops == 0);
    px_launch_destroy(l);
}

TEST(buffer_limits_and_contexts)
{
    PxDeviceInfo di;
    px_device_info(ctx, &di);
    int64_t n = (int64_t)(di.max_storage_buffer_range / 4) + 1;
    PxBuffer *b = NULL;
    CHECK(px_buffer_create(ctx, PX_F32, 1, &n, &b) == PX_ERR_TOO_LARGE && b == NULL);
    CHECK(strstr(px_last_error(ctx), "storage-buffer range"));
    int64_t ok = 16;
    CHECK(px_buffer_create(ctx, PX_F32, 1, &ok, &b) == PX_OK);
    float w[16];
    CHECK(px_buffer_write(b, w, 8) == PX_ERR_INVALID);
    px_buffer_destroy(b);
    /* a second context alongside the first, with a device picked by name */
    PxConfig cfg;
    px_config_default(&cfg);
    cfg.device_name = di.name;
    PxContext *c2;
    char *err;
    CHECK(px_context_create(&cfg, &c2, &err) == PX_OK);
    if (c2) {
        PxDeviceInfo d2;
        px_device_info(c2, &d2);
        CHECK(!strcmp(d2.name, di.name));
        px_context_destroy(c2);
    }
    px_free(err);
    cfg.device_name = "no-such-device-xyz";
    CHECK(px_context_create(&cfg, &c2, &err) == PX_ERR_NO_DEVICE && c2 == NULL && err && strstr(err, "no-such-device"));
    px_free(err);
    cfg.device_name = NULL;
    cfg.device_index = 99;
    CHECK(px_context_create(&cfg, &c2, &err) == PX_ERR_NO_DEVICE && err && strstr(err, "device 99"));
    px_free(err);
}

TEST(compile_errors)
{
    PxModule *m;
    char *diags;
    const char *src = "GPU_KERNEL k\nGPU_PARAM x float[N]\nGPU_THREAD_CODE:\n  PARALLEL_MAP x -> y : x + q\nGPU_END\n";
    CHECK(px_module_compile(ctx, src, strlen(src), "bad.px", &m, &diags) == PX_ERR_COMPILE && m == NULL);
    CHECK_MSG(diags && strstr(diags, "bad.px:4:") && strstr(diags, "error"), "%s", diags ? diags : "(none)");
    px_free(diags);
    CHECK(px_module_compile_file(ctx, "/nonexistent/k.px", &m, &diags) == PX_ERR_NOT_FOUND);
    const char *two = "GPU_KERNEL a\nGPU_PARAM x float[4]\nGPU_THREAD_CODE:\n  PARALLEL_FILL 1.0 -> x\nGPU_END\n"
                      "GPU_KERNEL b\nGPU_PARAM x int[3]\nGPU_THREAD_CODE:\n  PARALLEL_FILL 7 -> x\nGPU_END\n";
    CHECK(px_module_compile(ctx, two, strlen(two), "two.px", &m, &diags) == PX_OK);
    px_free(diags);
    if (m) {
        PxKernel *k;
        CHECK(px_module_kernel(m, NULL, &k) == PX_ERR_INVALID && strstr(px_last_error(ctx), "a, b"));
        CHECK(px_module_kernel(m, "b", &k) == PX_OK && !strcmp(px_kernel_name(k), "b"));
        CHECK(px_module_kernel(m, "c", &k) == PX_ERR_NOT_FOUND && k == NULL);
        px_module_kernel(m, "b", &k);
        /* unbound buffers come from the declared shape */
        PxLaunch *l;
        CHECK(px_launch_create(k, &l) == PX_OK);
        CHECK_MSG(px_launch_run(l) == PX_OK, "%s", px_last_error(ctx));
        int32_t x[3] = {0};
        CHECK(px_buffer_read(px_launch_buffer(l, "x"), x, sizeof x) == PX_OK && x[0] == 7 && x[2] == 7);
        px_launch_destroy(l);
        px_module_destroy(m);
    }
}

int main(void)
{
    if (!pxtest_open()) return 1;
    RUN(map_saxpy_sizes);
    RUN(arith_prims_int_div_zero);
    RUN(float_arith_fill_copy);
    RUN(transpose_shapes);
    RUN(reduce_1d);
    RUN(reduce_rows_int);
    RUN(scan_sizes);
    RUN(softmax_rows);
    RUN(matmul_shapes);
    RUN(seed_kernel);
    RUN(parallel_for_bounds);
    RUN(binding_errors);
    RUN(flexible_and_async);
    RUN(timing_lazy_and_off);
    RUN(rebind_resize_config);
    RUN(empty_kernel);
    RUN(buffer_limits_and_contexts);
    RUN(compile_errors);
    for (int i = 0; i < nmods; i++) px_module_destroy(mods[i]);
    px_context_destroy(ctx);
    return TEST_DONE();
}
