/* test_slice.c — sliced execution (runtime/rt.h, RtUnit): every launch is
 * run once whole (ops->submit) and then as slices of its linear group
 * sequence under several schedules (every group alone, fixed slice sizes
 * of 1, 7, 64 and 1000 groups, random cut points from a fixed seed, one
 * slice over everything), and the bytes of every buffer must be identical
 * to the whole run's. That comparison is of the code with itself, which
 * is what slicing promises (bit-identical results); a few launches are
 * also checked against plain C loops. Both backends (Vulkan on lavapipe,
 * with and without subgroup arithmetic, and the CPU JIT) run every case.
 *
 * The scheduler drives slices through the backend table, so the test does
 * too: a launch is prepared and recorded by px_launch_run, then its
 * program (PxLaunch.prog) is sliced with ops->prog_units / submit_slice /
 * wait / slice_ns. */
#include "test.h"
#include "pxtest.h"
#include "runtime/rt.h"

static const char *backend_name = "";
static int has_half;

/* ---- deterministic data ---------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
/* [0, n) */
static int64_t rand_below(int64_t n) { return n > 0 ? (int64_t)(next_rand() % (uint64_t)n) : 0; }

typedef enum { INIT_SIGNED, INIT_NEAR_ONE } Init;

typedef struct Arg {
    const char *name;
    PxDtype t;
    int rank;
    int64_t shape[4];
    Init init;
} Arg;

#define MAXARGS 16

/* One launch with its buffers: their initial contents and what the whole
 * run left in them. */
typedef struct Case {
    const char *what;
    PxLaunch *l;
    int n;
    const Arg *args;
    PxBuffer *b[MAXARGS];
    void *init[MAXARGS], *whole[MAXARGS], *got[MAXARGS];
    size_t bytes[MAXARGS];
} Case;

static void fill(const Arg *a, void *p, int64_t count)
{
    for (int64_t i = 0; i < count; i++) {
        /* multiples of 1/64: exact in float and half */
        double v = a->init == INIT_NEAR_ONE ? 1.0 + (double)(rand_below(9) - 4) / 1024.0
                                            : (double)(rand_below(257) - 128) / 64.0;
        switch (a->t) {
        case PX_F32: ((float *)p)[i] = (float)v; break;
        case PX_F16: ((uint16_t *)p)[i] = to_half((float)v); break;
        case PX_I32: ((int32_t *)p)[i] = a->init == INIT_NEAR_ONE ? (rand_below(2) ? 1 : -1)
                                                                  : (int32_t)rand_below(201) - 100;
            break;
        case PX_U32: ((uint32_t *)p)[i] = (uint32_t)rand_below(1000); break;
        }
    }
}

static int reset_buffers(Case *c)
{
    for (int i = 0; i < c->n; i++)
        if (px_buffer_write(c->b[i], c->init[i], c->bytes[i])) return 0;
    return 1;
}

static int read_buffers(Case *c, void **dst)
{
    for (int i = 0; i < c->n; i++)
        if (px_buffer_read(c->b[i], dst[i], c->bytes[i])) return 0;
    return 1;
}

static void case_free(Case *c)
{
    if (c->l) {
        for (int i = 0; i < c->n; i++) px_launch_bind(c->l, c->args[i].name, NULL, NULL);
        px_launch_destroy(c->l);
    }
    for (int i = 0; i < c->n; i++) {
        px_buffer_destroy(c->b[i]);
        free(c->init[i]);
        free(c->whole[i]);
        free(c->got[i]);
    }
    memset(c, 0, sizeof *c);
}

/* Scalar arguments of the next case_make, NULL: none. */
static void (*case_setup)(PxLaunch *l);

/* Compiles src, makes its buffers with fresh data, runs it whole. 0 when
 * something failed (recorded as a failure). */
static int case_make(Case *c, const char *what, const char *src, const char *kernel, const Arg *args, int n)
{
    memset(c, 0, sizeof *c);
    c->what = what;
    c->args = args;
    c->n = n;
    c->l = compile_launch(src, kernel, what);
    CHECK_MSG(c->l != NULL, "%s %s: compile: %s", backend_name, what, px_last_error(ctx));
    if (!c->l) return 0;
    for (int i = 0; i < n; i++) {
        int64_t count = 1;
        for (int d = 0; d < args[i].rank; d++) count *= args[i].shape[d];
        c->bytes[i] = (size_t)count * px_dtype_size(args[i].t);
        c->init[i] = malloc(c->bytes[i] + 4);
        c->whole[i] = malloc(c->bytes[i] + 4);
        c->got[i] = malloc(c->bytes[i] + 4);
        fill(&args[i], c->init[i], count);
        c->b[i] = buf(args[i].t, args[i].rank, args[i].shape, c->init[i]);
        CHECK_MSG(c->b[i] != NULL, "%s %s: buffer %s", backend_name, what, args[i].name);
        if (!c->b[i] || px_launch_bind(c->l, args[i].name, c->b[i], NULL)) return 0;
    }
    if (case_setup) case_setup(c->l);
    PxResult r = px_launch_run(c->l);
    CHECK_MSG(r == PX_OK, "%s %s: whole run: %s", backend_name, what, px_last_error(ctx));
    return r == PX_OK && read_buffers(c, c->whole);
}

/* The launch's units; their groups add up to *total. */
static int units_of(Case *c, const RtUnit **u, int64_t *total)
{
    PxContext *x = c->l->c;
    int n = x->ops->prog_units(x->dev, c->l->prog, u);
    *total = 0;
    int ok = n >= 0, last = 0;
    for (int i = 0; i < n; i++) {
        ok &= (*u)[i].groups >= 0 && (*u)[i].stage >= last && (*u)[i].stage < c->l->k->ir->stages.n;
        last = (*u)[i].stage;
        *total += (*u)[i].groups;
    }
    CHECK_MSG(ok, "%s %s: units out of order or negative", backend_name, c->what);
    return n;
}

/* Runs cuts[0] = 0 < ... <= cuts[n-1] = total as slices [cuts[i], cuts[i+1])
 * (repeated cuts: empty slices) and compares every buffer with the whole
 * run. 1 when identical. */
static int run_schedule(Case *c, const int64_t *cuts, int ncuts, const char *sched)
{
    PxContext *x = c->l->c;
    if (!reset_buffers(c)) {
        CHECK_MSG(0, "%s %s: reset", backend_name, c->what);
        return 0;
    }
    for (int i = 0; i + 1 < ncuts; i++) {
        RtSlice s = {cuts[i], cuts[i + 1]};
        PxResult r = x->ops->submit_slice(x->dev, c->l->prog, s);
        if (!r) r = x->ops->wait(x->dev, c->l->prog);
        if (r) {
            CHECK_MSG(0, "%s %s (%s): slice [%lld, %lld): %s", backend_name, c->what, sched, (long long)s.begin,
                      (long long)s.end, px_last_error(ctx));
            return 0;
        }
    }
    if (!read_buffers(c, c->got)) return 0;
    for (int i = 0; i < c->n; i++) {
        if (!memcmp(c->got[i], c->whole[i], c->bytes[i])) continue;
        size_t at = 0;
        while (((unsigned char *)c->got[i])[at] == ((unsigned char *)c->whole[i])[at]) at++;
        CHECK_MSG(0, "%s %s (%s): buffer %s differs from the whole run at byte %zu of %zu", backend_name, c->what,
                  sched, c->args[i].name, at, c->bytes[i]);
        return 0;
    }
    return 1;
}

/* Every schedule of the header comment; one CHECK per schedule. */
static void check_slices(Case *c)
{
    const RtUnit *u;
    int64_t total;
    int nu = units_of(c, &u, &total);
    if (nu < 0) return;
    int64_t *cuts = malloc(sizeof(int64_t) * 2100);
    char name[64];
    /* fixed slice sizes; 1 is "every group alone" (small programs only) */
    static const int64_t sizes[] = {1, 7, 64, 1000};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int64_t sz = sizes[k];
        if ((total + sz - 1) / sz > 2000) continue;
        int n = 0;
        for (int64_t b = 0; b < total; b += sz) cuts[n++] = b;
        cuts[n++] = total;
        if (n == 1) cuts[n++] = total; /* no groups: one empty slice */
        snprintf(name, sizeof name, "slices of %lld", (long long)sz);
        CHECK(run_schedule(c, cuts, n, name));
    }
    /* random cut points, repeats allowed (empty slices) */
    for (int rep = 0; rep < 3; rep++) {
        int n = 1 + (int)rand_below(12);
        cuts[0] = 0;
        for (int i = 1; i <= n; i++) cuts[i] = rand_below(total + 1);
        cuts[n + 1] = total;
        for (int i = 1; i <= n; i++) /* sort the inner cuts */
            for (int j = i + 1; j <= n; j++)
                if (cuts[j] < cuts[i]) {
                    int64_t t = cuts[i];
                    cuts[i] = cuts[j];
                    cuts[j] = t;
                }
        snprintf(name, sizeof name, "random cuts #%d", rep);
        CHECK(run_schedule(c, cuts, n + 2, name));
    }
    /* one slice over every unit */
    cuts[0] = 0;
    cuts[1] = total;
    CHECK(run_schedule(c, cuts, 2, "one slice"));
    free(cuts);
}

/* Makes, runs whole and sliced; the case stays for reference checks. */
static int sliced(Case *c, const char *what, const char *src, const char *kernel, const Arg *args, int n)
{
    if (!case_make(c, what, src, kernel, args, n)) {
        case_free(c);
        return 0;
    }
    check_slices(c);
    return 1;
}

static int find_arg(const Case *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->args[i].name, name)) return i;
    return -1;
}
#define IN(c, nm, T) ((const T *)(c)->init[find_arg((c), (nm))])
#define OUT(c, nm, T) ((const T *)(c)->got[find_arg((c), (nm))])

/* ---- elementwise ------------------------------------------------------------------ */

static void set_a_int(PxLaunch *l) { px_launch_set_int(l, "a", 3); }
static void set_a_float(PxLaunch *l) { px_launch_set_float(l, "a", 2.5f); }

TEST(slice_map)
{
    /* y = a*x + y in place: a group run twice or not at all changes y */
    static const char *src = "GPU_KERNEL saxpy\nGPU_PARAM a %s\nGPU_PARAM x %s[N]\nGPU_PARAM y %s[N]\n"
                             "GPU_THREAD_CODE:\n  PARALLEL_MAP x y -> y : a * x + y\nGPU_END\n";
    static const int64_t ns[] = {1003, 100003, 200000}; /* scalar, scalar, vec4 variant */
    for (int t = 0; t < 2; t++) {
        const char *ty = t ? "int" : "float";
        char text[512];
        snprintf(text, sizeof text, src, ty, ty, ty);
        for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
            Arg args[] = {{"x", t ? PX_I32 : PX_F32, 1, {ns[k]}, 0}, {"y", t ? PX_I32 : PX_F32, 1, {ns[k]}, 0}};
            Case c;
            case_setup = t ? set_a_int : set_a_float;
            int ok = sliced(&c, "map", text, "saxpy", args, 2);
            case_setup = NULL;
            if (!ok) continue;
            /* plain C: the last schedule's result (one slice) */
            int bad = 0;
            for (int64_t i = 0; i < ns[k]; i++) {
                if (t) {
                    int32_t want = 3 * IN(&c, "x", int32_t)[i] + IN(&c, "y", int32_t)[i];
                    bad += OUT(&c, "y", int32_t)[i] != want;
                } else {
                    float want = 2.5f * IN(&c, "x", float)[i] + IN(&c, "y", float)[i];
                    bad += OUT(&c, "y", float)[i] != want; /* exact: multiples of 1/64 */
                }
            }
            CHECK_MSG(bad == 0, "%s map %s n=%lld: %d differ from plain C", backend_name, ty, (long long)ns[k], bad);
            case_free(&c);
        }
    }
}

TEST(slice_add_fill_copy)
{
    static const char *src = "GPU_KERNEL k\nGPU_PARAM a %s[N]\nGPU_PARAM b %s[N]\nGPU_PARAM c %s[N]\n"
                             "GPU_PARAM f %s[N]\nGPU_PARAM g %s[N]\nGPU_THREAD_CODE:\n"
                             "  PARALLEL_ADD a b -> c\n  PARALLEL_FILL 3 -> f\n  PARALLEL_COPY c -> g\n"
                             "  PARALLEL_ADD g a -> a\nGPU_END\n";
    for (int t = 0; t < 3; t++) {
        if (t == 2 && !has_half) continue;
        const char *ty = t == 0 ? "float" : t == 1 ? "int" : "half";
        PxDtype dt = t == 0 ? PX_F32 : t == 1 ? PX_I32 : PX_F16;
        char text[600];
        snprintf(text, sizeof text, src, ty, ty, ty, ty, ty);
        int64_t n = 70001;
        Arg args[] = {{"a", dt, 1, {n}, 0}, {"b", dt, 1, {n}, 0}, {"c", dt, 1, {n}, 0},
                      {"f", dt, 1, {n}, 0}, {"g", dt, 1, {n}, 0}};
        Case c;
        if (sliced(&c, "add/fill/copy", text, "k", args, 5)) case_free(&c);
    }
}

TEST(slice_transpose)
{
    static const int64_t shapes[][2] = {{37, 53}, {300, 200}};
    for (int t = 0; t < 2; t++)
        for (int s = 0; s < 2; s++) {
            char text[300];
            const char *ty = t ? "int" : "float";
            snprintf(text, sizeof text,
                     "GPU_KERNEL tr\nGPU_PARAM a %s[R][C]\nGPU_PARAM b %s[C][R]\nGPU_THREAD_CODE:\n"
                     "  PARALLEL_TRANSPOSE a -> b\nGPU_END\n", ty, ty);
            int64_t R = shapes[s][0], C = shapes[s][1];
            Arg args[] = {{"a", t ? PX_I32 : PX_F32, 2, {R, C}, 0}, {"b", t ? PX_I32 : PX_F32, 2, {C, R}, 0}};
            Case c;
            if (!sliced(&c, "transpose", text, "tr", args, 2)) continue;
            int bad = 0; /* 4-byte elements either way: compare bits */
            for (int64_t i = 0; i < R; i++)
                for (int64_t j = 0; j < C; j++)
                    bad += OUT(&c, "b", uint32_t)[j * R + i] != IN(&c, "a", uint32_t)[i * C + j];
            CHECK_MSG(bad == 0, "%s transpose %lldx%lld: %d differ from plain C", backend_name, (long long)R,
                      (long long)C, bad);
            case_free(&c);
        }
}

/* ---- reductions, scans, softmax ------------------------------------------------------- */

TEST(slice_reduce)
{
    static const char *ops[] = {"SUM", "MIN", "MAX", "PROD"};
    for (int t = 0; t < 3; t++) {
        if (t == 2 && !has_half) continue;
        const char *ty = t == 0 ? "float" : t == 1 ? "int" : "half";
        PxDtype dt = t == 0 ? PX_F32 : t == 1 ? PX_I32 : PX_F16;
        for (int o = 0; o < 4; o++) {
            char text[600];
            snprintf(text, sizeof text,
                     "GPU_KERNEL red\nGPU_PARAM v %s[N]\nGPU_PARAM s %s[1]\nGPU_PARAM m %s[R][C]\n"
                     "GPU_PARAM r %s[R]\nGPU_THREAD_CODE:\n  PARALLEL_REDUCE %s v -> s\n"
                     "  PARALLEL_REDUCE %s m -> r\nGPU_END\n",
                     ty, ty, ty, ty, ops[o], ops[o]);
            Init in = o == 3 ? INIT_NEAR_ONE : INIT_SIGNED;
            Arg args[] = {{"v", dt, 1, {100003}, in}, {"s", dt, 1, {1}, 0},
                          {"m", dt, 2, {45, 1001}, in}, {"r", dt, 1, {45}, 0}};
            Case c;
            if (!sliced(&c, "reduce", text, "red", args, 4)) continue;
            if (t == 1 && o == 0) { /* int SUM: exact, plain C */
                int64_t want = 0;
                for (int64_t i = 0; i < 100003; i++) want += IN(&c, "v", int32_t)[i];
                CHECK_MSG(OUT(&c, "s", int32_t)[0] == (int32_t)want, "%s reduce SUM int: %d, C says %lld",
                          backend_name, OUT(&c, "s", int32_t)[0], (long long)want);
                int bad = 0;
                for (int64_t i = 0; i < 45; i++) {
                    int64_t w = 0;
                    for (int64_t j = 0; j < 1001; j++) w += IN(&c, "m", int32_t)[i * 1001 + j];
                    bad += OUT(&c, "r", int32_t)[i] != (int32_t)w;
                }
                CHECK_MSG(bad == 0, "%s reduce SUM rows int: %d rows differ from plain C", backend_name, bad);
            }
            case_free(&c);
        }
    }
}

TEST(slice_scan_softmax)
{
    for (int t = 0; t < 3; t++) {
        if (t == 2 && !has_half) continue;
        const char *ty = t == 0 ? "float" : t == 1 ? "int" : "half";
        PxDtype dt = t == 0 ? PX_F32 : t == 1 ? PX_I32 : PX_F16;
        char text[600];
        snprintf(text, sizeof text,
                 "GPU_KERNEL sc\nGPU_PARAM v %s[N]\nGPU_PARAM sv %s[N]\nGPU_PARAM m %s[R][C]\n"
                 "GPU_PARAM sm %s[R][C]\nGPU_THREAD_CODE:\n  PARALLEL_SCAN SUM v -> sv\n"
                 "  PARALLEL_SCAN SUM m -> sm\nGPU_END\n",
                 ty, ty, ty, ty);
        /* half sums of 1/64 steps stay small enough: fewer elements */
        int64_t n = t == 2 ? 3001 : 100003;
        Arg args[] = {{"v", dt, 1, {n}, 0}, {"sv", dt, 1, {n}, 0}, {"m", dt, 2, {50, 301}, 0},
                      {"sm", dt, 2, {50, 301}, 0}};
        Case c;
        if (!sliced(&c, "scan", text, "sc", args, 4)) continue;
        if (t == 1) { /* int: exact, plain C */
            int bad = 0;
            int32_t acc = 0;
            for (int64_t i = 0; i < n; i++) {
                acc += IN(&c, "v", int32_t)[i];
                bad += OUT(&c, "sv", int32_t)[i] != acc;
            }
            for (int64_t i = 0; i < 50; i++) {
                acc = 0;
                for (int64_t j = 0; j < 301; j++) {
                    acc += IN(&c, "m", int32_t)[i * 301 + j];
                    bad += OUT(&c, "sm", int32_t)[i * 301 + j] != acc;
                }
            }
            CHECK_MSG(bad == 0, "%s scan int: %d elements differ from plain C", backend_name, bad);
        }
        case_free(&c);
        if (t == 1) continue; /* softmax is float and half only */
        snprintf(text, sizeof text,
                 "GPU_KERNEL sx\nGPU_PARAM v %s[N]\nGPU_PARAM sv %s[N]\nGPU_PARAM m %s[R][C]\n"
                 "GPU_PARAM sm %s[R][C]\nGPU_THREAD_CODE:\n  PARALLEL_SOFTMAX v -> sv\n"
                 "  PARALLEL_SOFTMAX m -> sm\nGPU_END\n",
                 ty, ty, ty, ty);
        Arg sargs[] = {{"v", dt, 1, {5003}, 0}, {"sv", dt, 1, {5003}, 0}, {"m", dt, 2, {64, 100}, 0},
                       {"sm", dt, 2, {64, 100}, 0}};
        if (sliced(&c, "softmax", text, "sx", sargs, 4)) case_free(&c);
    }
}

/* ---- matmul ----------------------------------------------------------------------------- */

TEST(slice_matmul)
{
    /* 256x64 * 64x256: float takes the interior fast path (M, N multiples
     * of 128, K of 8); 37x29 * 29x41 the general one */
    static const int64_t shapes[][3] = {{256, 64, 256}, {37, 29, 41}, {130, 8, 300}};
    for (int t = 0; t < 2; t++)
        for (int s = 0; s < 3; s++) {
            if (t && !has_half) continue;
            const char *ty = t ? "half" : "float";
            char text[300];
            snprintf(text, sizeof text,
                     "GPU_KERNEL mm\nGPU_PARAM a %s[M][K]\nGPU_PARAM b %s[K][N]\nGPU_PARAM c %s[M][N]\n"
                     "GPU_THREAD_CODE:\n  PARALLEL_MATMUL a b -> c\nGPU_END\n", ty, ty, ty);
            int64_t M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
            PxDtype dt = t ? PX_F16 : PX_F32;
            Arg args[] = {{"a", dt, 2, {M, K}, 0}, {"b", dt, 2, {K, N}, 0}, {"c", dt, 2, {M, N}, 0}};
            Case c;
            if (!sliced(&c, "matmul", text, "mm", args, 3)) continue;
            if (!t) {
                /* plain C: inputs are multiples of 1/64 up to 2 in size, so
                 * every product and partial sum (K <= 64) is exact in float
                 * and the order of the sum does not matter */
                int bad = 0;
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double w = 0;
                        for (int64_t k = 0; k < K; k++)
                            w += (double)IN(&c, "a", float)[i * K + k] * IN(&c, "b", float)[k * N + j];
                        bad += OUT(&c, "c", float)[i * N + j] != (float)w;
                    }
                CHECK_MSG(bad == 0, "%s matmul float %lldx%lldx%lld: %d differ from plain C", backend_name,
                          (long long)M, (long long)K, (long long)N, bad);
            }
            case_free(&c);
        }
}

/* ---- PARALLEL_FOR ------------------------------------------------------------------------- */

TEST(slice_parallel_for)
{
    /* in-place accumulations, so a group run twice shows */
    static const char *src1 =
        "GPU_KERNEL f1\nGPU_PARAM A float[M][K]\nGPU_PARAM v float[K]\nGPU_PARAM out float[M]\n"
        "GPU_PARAM iv int[M]\nGPU_THREAD_CODE:\n"
        "  PARALLEL_FOR i IN 0..M {\n    var acc = 0.0\n    for k IN 0..K {\n      acc += A[i][k] * v[k]\n    }\n"
        "    out[i] = out[i] + acc\n    iv[i] = iv[i] * 3 + int(i)\n  }\nGPU_END\n";
    static const char *src2 =
        "GPU_KERNEL f2\nGPU_PARAM x float[H][W]\nGPU_PARAM y float[H][W]\nGPU_PARAM n int[H][W]\nGPU_THREAD_CODE:\n"
        "  PARALLEL_FOR i IN 0..H, j IN 0..W {\n"
        "    y[i][j] = y[i][j] + x[i - 1][j] + x[i + 1][j] + x[i][j - 1] + x[i][j + 1] - 4.0 * x[i][j]\n"
        "    var s = 0\n    for k IN 0..3 {\n      s += n[i][j] + k\n    }\n    n[i][j] = s\n  }\nGPU_END\n";
    static const char *src3 =
        "GPU_KERNEL f3\nGPU_PARAM u int[P][Q][S]\nGPU_PARAM w float[P][Q][S]\nGPU_THREAD_CODE:\n"
        "  PARALLEL_FOR i IN 0..P, j IN 0..Q, k IN 0..S {\n    u[i][j][k] = u[i][j][k] * 2 + int(i * 100 + j * 10 + k)\n"
        "    w[i][j][k] = w[i][j][k] + 0.5\n  }\nGPU_END\n";
    Case c;
    {
        int64_t M = 3001, K = 20;
        Arg args[] = {{"A", PX_F32, 2, {M, K}, 0}, {"v", PX_F32, 1, {K}, 0}, {"out", PX_F32, 1, {M}, 0},
                      {"iv", PX_I32, 1, {M}, 0}};
        if (sliced(&c, "for 1-D", src1, "f1", args, 4)) {
            int bad = 0;
            for (int64_t i = 0; i < M; i++)
                bad += OUT(&c, "iv", int32_t)[i] != IN(&c, "iv", int32_t)[i] * 3 + (int32_t)i;
            CHECK_MSG(bad == 0, "%s for 1-D: %d differ from plain C", backend_name, bad);
            case_free(&c);
        }
    }
    {
        int64_t H = 45, W = 70;
        Arg args[] = {{"x", PX_F32, 2, {H, W}, 0}, {"y", PX_F32, 2, {H, W}, 0}, {"n", PX_I32, 2, {H, W}, 0}};
        if (sliced(&c, "for 2-D", src2, "f2", args, 3)) {
            int bad = 0;
            for (int64_t i = 0; i < H * W; i++)
                bad += OUT(&c, "n", int32_t)[i] != 3 * IN(&c, "n", int32_t)[i] + 3;
            CHECK_MSG(bad == 0, "%s for 2-D: %d differ from plain C", backend_name, bad);
            case_free(&c);
        }
    }
    {
        int64_t P = 9, Q = 17, S = 20;
        Arg args[] = {{"u", PX_I32, 3, {P, Q, S}, 0}, {"w", PX_F32, 3, {P, Q, S}, 0}};
        if (sliced(&c, "for 3-D", src3, "f3", args, 2)) {
            int bad = 0;
            for (int64_t i = 0; i < P; i++)
                for (int64_t j = 0; j < Q; j++)
                    for (int64_t k = 0; k < S; k++) {
                        int64_t at = (i * Q + j) * S + k;
                        bad += OUT(&c, "u", int32_t)[at] !=
                               IN(&c, "u", int32_t)[at] * 2 + (int32_t)(i * 100 + j * 10 + k);
                    }
            CHECK_MSG(bad == 0, "%s for 3-D: %d differ from plain C", backend_name, bad);
            case_free(&c);
        }
    }
}

/* ---- the operations themselves ---------------------------------------------------------- */

TEST(slice_units_and_errors)
{
    /* a rank-1 SUM then a map: two stages; the units follow the documented
     * shapes (cg.h). Vulkan: the map's dispatches are a vec4 variant (N %
     * 4 == 0: ceildiv(N, 4096) groups) and an empty scalar one. CPU: the
     * reduce's chunks (ceildiv(N, CG_CPU_CHUNK)) and one combine, then the
     * map's N points. */
    static const char *src = "GPU_KERNEL k\nGPU_PARAM v float[N]\nGPU_PARAM s float[1]\nGPU_PARAM y float[N]\n"
                             "GPU_THREAD_CODE:\n  PARALLEL_REDUCE SUM v -> s\n  PARALLEL_MAP v -> y : v * 2.0\nGPU_END\n";
    int64_t N = 200000;
    Arg args[] = {{"v", PX_F32, 1, {N}, 0}, {"s", PX_F32, 1, {1}, 0}, {"y", PX_F32, 1, {N}, 0}};
    Case c;
    if (!case_make(&c, "units", src, "k", args, 3)) {
        case_free(&c);
        return;
    }
    PxContext *x = c.l->c;
    const RtUnit *u;
    int64_t total;
    int nu = units_of(&c, &u, &total);
    if (!strcmp(backend_name, "cpu")) {
        CHECK(nu == 3);
        if (nu == 3) {
            CHECK(u[0].stage == 0 && u[0].groups == (N + CG_CPU_CHUNK - 1) / CG_CPU_CHUNK);
            CHECK(u[1].stage == 0 && u[1].groups == 1);
            CHECK(u[2].stage == 1 && u[2].groups == N);
        }
    } else {
        CHECK(nu >= 2 && u[nu - 2].stage == 1 && u[nu - 2].groups == (N + 4095) / 4096 && u[nu - 1].groups == 0);
    }
    /* ranges outside the sequence are refused; nothing is left in flight */
    CHECK(x->ops->submit_slice(x->dev, c.l->prog, (RtSlice){-1, 1}) == PX_ERR_INVALID);
    CHECK(x->ops->submit_slice(x->dev, c.l->prog, (RtSlice){0, total + 1}) == PX_ERR_INVALID);
    CHECK(x->ops->submit_slice(x->dev, c.l->prog, (RtSlice){3, 2}) == PX_ERR_INVALID);
    CHECK(strstr(px_last_error(ctx), "slice") != NULL);
    /* timed: each slice has a time; an empty slice has none */
    CHECK(reset_buffers(&c));
    int timed_ok = 1;
    for (int64_t b = 0; b < total; b += 3) {
        RtSlice s = {b, b + 3 < total ? b + 3 : total};
        timed_ok &= x->ops->submit_slice(x->dev, c.l->prog, s) == PX_OK && x->ops->wait(x->dev, c.l->prog) == PX_OK;
        timed_ok &= x->ops->slice_ns(x->dev, c.l->prog) >= 0;
    }
    CHECK(timed_ok);
    CHECK(read_buffers(&c, c.got) && !memcmp(c.got[1], c.whole[1], 4) && !memcmp(c.got[2], c.whole[2], c.bytes[2]));
    CHECK(x->ops->submit_slice(x->dev, c.l->prog, (RtSlice){2, 2}) == PX_OK && x->ops->wait(x->dev, c.l->prog) == PX_OK);
    CHECK(x->ops->slice_ns(x->dev, c.l->prog) < 0 || !strcmp(backend_name, "cpu"));
    /* a whole run after slices: its own times again, and the same bytes */
    CHECK(reset_buffers(&c) && px_launch_run(c.l) == PX_OK && read_buffers(&c, c.got));
    CHECK(!memcmp(c.got[1], c.whole[1], 4) && !memcmp(c.got[2], c.whole[2], c.bytes[2]));
    CHECK(px_launch_stage_time_ns(c.l, -1) >= 0);
    /* untimed: slices measure nothing */
    px_launch_set_timing(c.l, 0);
    CHECK(px_launch_run(c.l) == PX_OK);
    CHECK(x->ops->submit_slice(x->dev, c.l->prog, (RtSlice){0, total}) == PX_OK &&
          x->ops->wait(x->dev, c.l->prog) == PX_OK);
    CHECK(x->ops->slice_ns(x->dev, c.l->prog) == -1);
    case_free(&c);

    /* a kernel with no statements: no units, only the empty slice */
    PxLaunch *l = compile_launch("GPU_KERNEL e\nGPU_PARAM v float[4]\nGPU_THREAD_CODE:\nGPU_END\n", "e", "empty");
    CHECK(l != NULL);
    if (!l) return;
    CHECK(px_launch_run(l) == PX_OK);
    x = l->c;
    CHECK(x->ops->prog_units(x->dev, l->prog, &u) == 0);
    CHECK(x->ops->submit_slice(x->dev, l->prog, (RtSlice){0, 0}) == PX_OK && x->ops->wait(x->dev, l->prog) == PX_OK);
    CHECK(x->ops->submit_slice(x->dev, l->prog, (RtSlice){0, 1}) == PX_ERR_INVALID);
    px_launch_destroy(l);
}

static void quiet(void *u, PxLogLevel lv, const char *msg)
{
    (void)u;
    (void)lv;
    (void)msg;
}

static void run_all(void)
{
    RUN(slice_units_and_errors);
    RUN(slice_map);
    RUN(slice_add_fill_copy);
    RUN(slice_transpose);
    RUN(slice_reduce);
    RUN(slice_scan_softmax);
    RUN(slice_matmul);
    RUN(slice_parallel_for);
}

int main(void)
{
    /* Vulkan with subgroup arithmetic where the device has it, Vulkan with
     * the shared-memory fallbacks, the CPU backend */
    for (int pass = 0; pass < 3; pass++) {
        PxConfig cfg;
        px_config_default(&cfg);
        cfg.log = quiet;
        cfg.backend = pass == 2 ? PX_BACKEND_CPU : PX_BACKEND_VULKAN;
        cfg.no_subgroups = pass == 1 || getenv("PX_NO_SUBGROUPS");
        if (pass == 1 && getenv("PX_NO_SUBGROUPS")) continue; /* pass 0 already was */
        char *err = NULL;
        if (px_context_create(&cfg, &ctx, &err)) {
            printf("no %s device: %s\n", pass == 2 ? "cpu" : "vulkan", err ? err : "?");
            px_free(err);
            CHECK(0);
            continue;
        }
        backend_name = pass == 0 ? (cfg.no_subgroups ? "vulkan(no subgroups)" : "vulkan")
                       : pass == 1 ? "vulkan(no subgroups)" : "cpu";
        PxDeviceInfo info;
        px_device_info(ctx, &info);
        has_half = info.has_half;
        rng = 0x9e3779b97f4a7c15ull; /* the same data on every backend */
        run_all();
        for (int i = 0; i < nmods; i++) px_module_destroy(mods[i]);
        nmods = 0;
        px_context_destroy(ctx);
        ctx = NULL;
    }
    return TEST_DONE();
}
