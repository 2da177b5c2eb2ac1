/* test_cpu.c — PX source -> ir_compile_source -> CPU backend -> thread
 * pool, for 1, 2 and 7 threads (more threads than cores is fine). Every
 * expected value is a plain C loop here; the pool results must also be
 * bit-identical across thread counts (fixed slice boundaries). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../codegen/cg.h"
#include "../../runtime/rt.h"
#include "cgtest.h"
#include "test.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}
static float rndf(void) { return (float)(rnd() % 2000001) / 1000000.0f - 1.0f; }

typedef struct Prog {
    Arena *a;
    IrModule *m;
    CgCpuModule *cm;
} Prog;

static int prog_compile(Prog *p, const char *src)
{
    p->a = fe_arena_new();
    p->m = cgtest_ir(p->a, src, 2, NULL);
    if (!p->m) {
        CHECK_MSG(0, "source does not compile");
        return 0;
    }
    char *err = NULL;
    p->cm = cg_cpu_compile(p->m, 3, &err);
    CHECK_MSG(p->cm != NULL, "cpu compile: %s", err ? err : "?");
    free(err);
    return p->cm != NULL;
}

static void prog_free(Prog *p)
{
    cg_cpu_destroy(p->cm);
    fe_arena_free(p->a);
}

static int param_index(const IrKernel *k, const char *name)
{
    for (int i = 0; i < k->params.n; i++)
        if (!strcmp(k->params.v[i].name, name)) return i;
    fe_die("test: no param %s", name);
}
static int sym_index(const IrKernel *k, const char *name)
{
    for (int i = 0; i < k->syms.n; i++)
        if (!strcmp(k->syms.v[i].name, name)) return i;
    fe_die("test: no size symbol %s", name);
}

/* Binding by name: buffers, scalar bits, size symbols. */
typedef struct Bind {
    void *buf[16];
    uint32_t scal[16];
    int64_t sym[16];
} Bind;

static void bind_buf(Bind *b, const IrKernel *k, const char *n, void *p) { b->buf[param_index(k, n)] = p; }
static void bind_sym(Bind *b, const IrKernel *k, const char *n, int64_t v) { b->sym[sym_index(k, n)] = v; }

static const int nthreads[] = {1, 2, 7};

static void run_on(RtCpuPool *pool, Prog *p, Bind *b)
{
    CgCpuArgs a = {b->buf, b->scal, b->sym, NULL, NULL};
    CHECK(rt_cpu_run(pool, &p->cm->kernels.v[0], &a, NULL) == 0);
}

TEST(saxpy_fused)
{
    Prog p;
    if (!prog_compile(&p, "GPU_KERNEL saxpy\nGPU_PARAM a float\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\n"
                          "GPU_PARAM z float[N]\nGPU_THREAD_CODE:\n"
                          "    PARALLEL_MAP x y -> y : a * x + y\n"
                          "    PARALLEL_MAP y -> z : max(y, 0.0) * 2.0\nGPU_END\n"))
        return;
    const IrKernel *k = p.m->kernels.v[0];
    int64_t n = 100003;
    float *x = malloc(4 * n), *y0 = malloc(4 * n), *y = malloc(4 * n), *z = malloc(4 * n);
    for (int64_t i = 0; i < n; i++) x[i] = rndf(), y0[i] = rndf();
    for (int t = 0; t < 3; t++) {
        RtCpuPool *pool = rt_cpu_pool_create(nthreads[t]);
        memcpy(y, y0, 4 * n);
        Bind b;
        memset(&b, 0, sizeof b);
        bind_buf(&b, k, "x", x);
        bind_buf(&b, k, "y", y);
        bind_buf(&b, k, "z", z);
        float a = 1.5f;
        memcpy(&b.scal[param_index(k, "a")], &a, 4);
        bind_sym(&b, k, "N", n);
        run_on(pool, &p, &b);
        int bad = 0;
        for (int64_t i = 0; i < n; i++) {
            float ry = a * x[i];
            ry = ry + y0[i];
            float rz = (ry > 0 ? ry : 0.0f) * 2.0f;
            bad += y[i] != ry || z[i] != rz;
        }
        CHECK_MSG(bad == 0, "saxpy %d threads: %d wrong", nthreads[t], bad);
        rt_cpu_pool_destroy(pool);
    }
    free(x), free(y0), free(y), free(z);
    prog_free(&p);
}

TEST(sum_and_scan)
{
    Prog p;
    if (!prog_compile(&p, "GPU_KERNEL s\nGPU_PARAM x float[N]\nGPU_PARAM r float[1]\nGPU_PARAM c float[N]\n"
                          "GPU_PARAM q int[N]\nGPU_PARAM qs int[N]\nGPU_PARAM qm int[1]\n"
                          "GPU_THREAD_CODE:\n    PARALLEL_REDUCE SUM x -> r\n    PARALLEL_SCAN SUM x -> c\n"
                          "    PARALLEL_SCAN SUM q -> qs\n    PARALLEL_REDUCE MIN q -> qm\nGPU_END\n"))
        return;
    const IrKernel *k = p.m->kernels.v[0];
    int64_t n = 5 * CG_CPU_CHUNK + 333;
    float *x = malloc(4 * n), *c = malloc(4 * n), r = 0, first_r = 0;
    int32_t *q = malloc(4 * n), *qs = malloc(4 * n), qm = 0;
    float *first_c = malloc(4 * n);
    for (int64_t i = 0; i < n; i++) x[i] = rndf(), q[i] = (int32_t)rnd();
    for (int t = 0; t < 3; t++) {
        RtCpuPool *pool = rt_cpu_pool_create(nthreads[t]);
        Bind b;
        memset(&b, 0, sizeof b);
        bind_buf(&b, k, "x", x);
        bind_buf(&b, k, "r", &r);
        bind_buf(&b, k, "c", c);
        bind_buf(&b, k, "q", q);
        bind_buf(&b, k, "qs", qs);
        bind_buf(&b, k, "qm", &qm);
        bind_sym(&b, k, "N", n);
        run_on(pool, &p, &b);
        double s = 0, mag = 0;
        int bad = 0;
        uint32_t is = 0;
        int32_t mn = INT32_MAX;
        for (int64_t i = 0; i < n; i++) {
            s += x[i], mag += fabs(x[i]);
            bad += !(fabs(c[i] - s) <= 1e-6 * mag + 1e-6);
            is += (uint32_t)q[i];
            bad += qs[i] != (int32_t)is;
            mn = q[i] < mn ? q[i] : mn;
        }
        CHECK_MSG(bad == 0, "scan %d threads: %d wrong", nthreads[t], bad);
        CHECK_MSG(fabs(r - s) <= 1e-6 * mag, "sum %d threads: %g vs %g", nthreads[t], r, s);
        CHECK(qm == mn);
        if (t == 0) {
            first_r = r;
            memcpy(first_c, c, 4 * n);
        } else {
            CHECK_MSG(r == first_r, "sum differs between 1 and %d threads", nthreads[t]);
            CHECK_MSG(memcmp(c, first_c, 4 * n) == 0, "scan differs between 1 and %d threads", nthreads[t]);
        }
        rt_cpu_pool_destroy(pool);
    }
    free(x), free(c), free(q), free(qs), free(first_c);
    prog_free(&p);
}

TEST(matmul_softmax_transpose)
{
    Prog p;
    if (!prog_compile(&p, "GPU_KERNEL mm\nGPU_PARAM a float[M][K]\nGPU_PARAM b float[K][N]\n"
                          "GPU_PARAM c float[M][N]\nGPU_PARAM s float[M][N]\nGPU_PARAM t float[N][M]\n"
                          "GPU_THREAD_CODE:\n    PARALLEL_MATMUL a b -> c\n    PARALLEL_SOFTMAX c -> s\n"
                          "    PARALLEL_TRANSPOSE s -> t\nGPU_END\n"))
        return;
    const IrKernel *k = p.m->kernels.v[0];
    int M = 67, K = 130, N = 301;
    float *a = malloc(4 * M * K), *b = malloc(4 * K * N), *c = malloc(4 * M * N), *s = malloc(4 * M * N),
          *t = malloc(4 * M * N);
    double *ref = malloc(8 * M * N);
    for (int i = 0; i < M * K; i++) a[i] = rndf();
    for (int i = 0; i < K * N; i++) b[i] = rndf();
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int q = 0; q < K; q++) acc += (double)a[i * K + q] * b[q * N + j];
            ref[i * N + j] = acc;
        }
    for (int th = 0; th < 3; th++) {
        RtCpuPool *pool = rt_cpu_pool_create(nthreads[th]);
        Bind bd;
        memset(&bd, 0, sizeof bd);
        bind_buf(&bd, k, "a", a);
        bind_buf(&bd, k, "b", b);
        bind_buf(&bd, k, "c", c);
        bind_buf(&bd, k, "s", s);
        bind_buf(&bd, k, "t", t);
        bind_sym(&bd, k, "M", M);
        bind_sym(&bd, k, "K", K);
        bind_sym(&bd, k, "N", N);
        run_on(pool, &p, &bd);
        int bad = 0, bads = 0, badt = 0;
        for (int i = 0; i < M; i++) {
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < N; j++) {
                bad += !(fabs(c[i * N + j] - ref[i * N + j]) <= 1e-5 * K);
                mx = fmax(mx, c[i * N + j]);
            }
            for (int j = 0; j < N; j++) sum += exp(c[i * N + j] - mx);
            for (int j = 0; j < N; j++) {
                double want = exp(c[i * N + j] - mx) / sum;
                bads += !(fabs(s[i * N + j] - want) <= 1e-5 * want + 1e-9);
                badt += t[j * M + i] != s[i * N + j];
            }
        }
        CHECK_MSG(bad == 0, "matmul %d threads: %d wrong", nthreads[th], bad);
        CHECK_MSG(bads == 0, "softmax %d threads: %d wrong", nthreads[th], bads);
        CHECK_MSG(badt == 0, "transpose %d threads: %d wrong", nthreads[th], badt);
        rt_cpu_pool_destroy(pool);
    }
    free(a), free(b), free(c), free(s), free(t), free(ref);
    prog_free(&p);
}

/* Thread code: a 3-point stencil with uint index arithmetic that wraps
 * below 0 (out of range: reads 0), a sequential for loop and an if. */
TEST(parallel_for)
{
    Prog p;
    if (!prog_compile(&p, "GPU_KERNEL st\nGPU_PARAM x float[M][N]\nGPU_PARAM y float[M][N]\n"
                          "GPU_PARAM lim float\nGPU_THREAD_CODE:\n"
                          "    PARALLEL_FOR i IN 0..M, j IN 0..N {\n"
                          "        var acc = 0.0\n"
                          "        for d IN 0..3 {\n"
                          "            acc += x[i][j + uint(d) - 1]\n"
                          "        }\n"
                          "        if acc > lim {\n"
                          "            acc = lim\n"
                          "        }\n"
                          "        y[i][j] = acc\n"
                          "    }\nGPU_END\n"))
        return;
    const IrKernel *k = p.m->kernels.v[0];
    int M = 45, N = 1031;
    float *x = malloc(4 * M * N), *y = malloc(4 * M * N), lim = 1.25f;
    for (int i = 0; i < M * N; i++) x[i] = rndf();
    for (int th = 0; th < 3; th++) {
        RtCpuPool *pool = rt_cpu_pool_create(nthreads[th]);
        Bind bd;
        memset(&bd, 0, sizeof bd);
        bind_buf(&bd, k, "x", x);
        bind_buf(&bd, k, "y", y);
        memcpy(&bd.scal[param_index(k, "lim")], &lim, 4);
        bind_sym(&bd, k, "M", M);
        bind_sym(&bd, k, "N", N);
        run_on(pool, &p, &bd);
        int bad = 0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float acc = 0.0f;
                for (int d = 0; d < 3; d++) {
                    int jj = j + d - 1;
                    acc = acc + (jj >= 0 && jj < N ? x[i * N + jj] : 0.0f);
                }
                if (acc > lim) acc = lim;
                bad += y[i * N + j] != acc;
            }
        CHECK_MSG(bad == 0, "parallel_for %d threads: %d wrong", nthreads[th], bad);
        rt_cpu_pool_destroy(pool);
    }
    free(x), free(y);
    prog_free(&p);
}

TEST(pool_basics)
{
    RtCpuPool *p = rt_cpu_pool_create(3);
    CHECK(p != NULL);
    CHECK(rt_cpu_pool_threads(p) == 3);
    rt_cpu_pool_destroy(p);
    rt_cpu_pool_destroy(NULL);
    CHECK(rt_cpu_default_threads() >= 1);
}

/* Runs kernel 0 of cm serially: y[i] = x[i] * scale for n elements. */
static void run_scale(CgCpuModule *cm, float *x, float *y, int64_t n)
{
    const IrKernel *k = cm->kernels.v[0].ir;
    Bind b;
    memset(&b, 0, sizeof b);
    bind_buf(&b, k, "x", x);
    bind_buf(&b, k, "y", y);
    bind_sym(&b, k, "N", n);
    CgCpuArgs a = {b.buf, b.scal, b.sym, NULL, NULL};
    CHECK(rt_cpu_run(NULL, &cm->kernels.v[0], &a, NULL) == 0);
}

/* Two modules with the same kernel name in one JIT keep their own code;
 * destroying one leaves the other working; a JIT destroyed before its
 * last module is freed by that module. */
TEST(shared_jit)
{
    const char *s2 = "GPU_KERNEL k\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\nGPU_THREAD_CODE:\n"
                     "    PARALLEL_MAP x -> y : x * 2.0\nGPU_END\n";
    const char *s3 = "GPU_KERNEL k\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\nGPU_THREAD_CODE:\n"
                     "    PARALLEL_MAP x -> y : x * 3.0\nGPU_END\n";
    Arena *A = fe_arena_new();
    IrModule *m2 = cgtest_ir(A, s2, 2, NULL);
    IrModule *m3 = cgtest_ir(A, s3, 2, NULL);
    CHECK(m2 && m3);
    if (!m2 || !m3) {
        fe_arena_free(A);
        return;
    }
    char *err = NULL;
    CgCpuJit *j = cg_cpu_jit_create(&err);
    CHECK_MSG(j != NULL, "jit: %s", err ? err : "?");
    if (!j) {
        free(err);
        fe_arena_free(A);
        return;
    }
    CgCpuModule *c2 = cg_cpu_compile_in(j, m2, 3, &err);
    CgCpuModule *c3 = cg_cpu_compile_in(j, m3, 3, &err);
    CHECK(c2 && c3);
    if (c2 && c3) {
        const CgCpuKernel *k2 = &c2->kernels.v[0];
        CHECK(k2->compile_ms > 0 && k2->gen_ms >= 0 && k2->opt_ms >= 0 && k2->codegen_ms >= 0);
        CHECK(k2->compile_ms >= k2->gen_ms + k2->opt_ms);
        CHECK(strcmp(k2->stages.v[0].steps.v[0].name, c3->kernels.v[0].stages.v[0].steps.v[0].name) != 0);
        enum { N = 1000 };
        float x[N], y[N];
        for (int i = 0; i < N; i++) x[i] = (float)i - 500.5f;
        run_scale(c2, x, y, N);
        int bad = 0;
        for (int i = 0; i < N; i++) bad += y[i] != x[i] * 2.0f;
        run_scale(c3, x, y, N);
        for (int i = 0; i < N; i++) bad += y[i] != x[i] * 3.0f;
        cg_cpu_destroy(c2);
        c2 = NULL;
        memset(y, 0, sizeof y);
        run_scale(c3, x, y, N);
        for (int i = 0; i < N; i++) bad += y[i] != x[i] * 3.0f;
        CHECK_MSG(bad == 0, "%d wrong", bad);
    }
    cg_cpu_destroy(c2);
    cg_cpu_jit_destroy(j); /* c3 is still alive: j goes with it */
    cg_cpu_destroy(c3);
    free(err);
    fe_arena_free(A);
}

/* The CPU backend through its operations table: host buffers come zeroed
 * and copy exactly; the device describes the host. */
TEST(host_buffers)
{
    RtLog log;
    memset(&log, 0, sizeof log);
    RtDeviceConfig cfg = {.index = -1, .cpu_threads = 3};
    RtDev *d = NULL;
    RtCaps caps;
    CHECK(rt_cpu_ops.open(&log, &cfg, &d, &caps) == PX_OK);
    if (!d) return;
    CHECK(caps.info.is_cpu && strstr(caps.info.name, "CPU (LLVM JIT, 3 threads)") && caps.max_buffer_bytes > 0);
    CHECK(caps.emit == CG_EMIT_CPU && caps.jit != NULL && !caps.target.subgroups);
    RtBuf *b = NULL;
    CHECK(rt_cpu_ops.buffer_create(d, 10, &b) == PX_OK && b);
    char src[10] = "abcdefghi", dst[10] = {1}, zero[10] = {0};
    CHECK(rt_cpu_ops.buffer_read(d, b, dst, 10) == PX_OK && !memcmp(dst, zero, 10));
    CHECK(rt_cpu_ops.buffer_write(d, b, src, 10) == PX_OK);
    CHECK(rt_cpu_ops.buffer_read(d, b, dst, 10) == PX_OK && !memcmp(src, dst, 10));
    CHECK(rt_cpu_ops.buffer_zero(d, b) == PX_OK);
    CHECK(rt_cpu_ops.buffer_read(d, b, dst, 10) == PX_OK && !memcmp(dst, zero, 10));
    rt_cpu_ops.buffer_destroy(d, b);
    cfg.index = 1;
    RtDev *d2 = NULL;
    CHECK(rt_cpu_ops.open(&log, &cfg, &d2, &caps) == PX_ERR_NO_DEVICE && !d2 && strstr(log.last, "one device"));
    rt_cpu_ops.close(d);
}

/* A rank-1 float sum combines its chunk partials in double: one chunk of
 * 2048s (partial 2^25) then three of 2^-14s (partials 1.0 each). In float
 * each 1.0 is lost against 2^25 (its ulp is 4); the exact 2^25 + 3 rounds
 * to 2^25 + 4. */
TEST(sum_partials_in_double)
{
    Prog p;
    if (!prog_compile(&p, "GPU_KERNEL s\nGPU_PARAM x float[N]\nGPU_PARAM r float[1]\n"
                          "GPU_THREAD_CODE:\n    PARALLEL_REDUCE SUM x -> r\nGPU_END\n"))
        return;
    const IrKernel *k = p.m->kernels.v[0];
    int64_t n = 4 * CG_CPU_CHUNK;
    float *x = malloc(4 * n), r = 0;
    double exact = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = i < CG_CPU_CHUNK ? 2048.0f : 1.0f / 16384.0f;
        exact += x[i];
    }
    CHECK(exact == 33554435.0);
    for (int t = 0; t < 3; t++) {
        RtCpuPool *pool = rt_cpu_pool_create(nthreads[t]);
        Bind b;
        memset(&b, 0, sizeof b);
        bind_buf(&b, k, "x", x);
        bind_buf(&b, k, "r", &r);
        bind_sym(&b, k, "N", n);
        run_on(pool, &p, &b);
        CHECK_MSG(r == (float)exact, "%d threads: %.1f, want %.1f", nthreads[t], r, (double)(float)exact);
        rt_cpu_pool_destroy(pool);
    }
    free(x);
    prog_free(&p);
}

int main(void)
{
    RUN(sum_partials_in_double);
    RUN(shared_jit);
    RUN(host_buffers);
    RUN(pool_basics);
    RUN(saxpy_fused);
    RUN(sum_and_scan);
    RUN(matmul_softmax_transpose);
    RUN(parallel_for);
    return TEST_DONE();
}
