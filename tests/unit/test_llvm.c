/* test_llvm.c — the CPU backend on IR built with the ir.h builder: every
 * result is compared with a plain C loop in this file that implements the
 * PX rule independently (never with the backend's own output). Steps are
 * run both in one call and cut into uneven slices, which must agree. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../codegen/cg.h"
#include "test.h"

static Arena *A;
static Loc L0;

/* ---- building kernels ---- */

static int add_sym(IrKernel *k, const char *name)
{
    return ir_sym_add(k, A, name, 0, L0);
}

static int add_buf(IrKernel *k, const char *name, ScalarType t, int rank, IrSize *d0, IrSize *d1)
{
    IrSize *dims[2] = {d0, d1};
    return ir_buffer_add(k, A, name, t, rank, dims, IR_P_READ | IR_P_WRITTEN, L0);
}

static int add_scalar(IrKernel *k, const char *name, ScalarType t)
{
    return ir_scalar_add(k, A, name, t, L0);
}

static IrSize *S(int sym) { return ir_size_sym(A, sym); }
static IrSize *C(int64_t c) { return ir_size_const(A, c); }

/* A grid stage of rank r over lo..hi (itype per dim), with a builder
 * positioned in its body; idx[] gets the index variables. */
static IrStage *grid(IrKernel *k, IrBuilder *b, int r, IrSize **lo, IrSize **hi, ScalarType it, int *idx)
{
    IrStage *st = ir_stage_add(k, A, IR_STAGE_GRID, PRIM_FOR, L0);
    st->rank = r;
    st->body = ir_block_new(A);
    b->arena = A;
    b->k = k;
    b->blk = st->body;
    b->loc = L0;
    for (int d = 0; d < r; d++) {
        st->lo[d] = lo[d];
        st->hi[d] = hi[d];
        st->itype[d] = it;
        idx[d] = ir_barg(b, st->body, it);
    }
    return st;
}

static int E2(IrBuilder *b, IrOp op, ScalarType t, int x, int y)
{
    int a[2] = {x, y};
    return ir_emit(b, op, t, 2, a);
}
static int E1(IrBuilder *b, IrOp op, ScalarType t, int x) { return ir_emit(b, op, t, 1, &x); }
static int LOAD(IrBuilder *b, IrKernel *k, int p, int n, const int *ix)
{
    int id = ir_emit(b, IR_LOAD, k->params.v[p].type, n, ix);
    ir_inst(k, id)->param = p;
    return id;
}
static void STORE(IrBuilder *b, int p, int n, const int *ix, int v)
{
    int a[5];
    for (int i = 0; i < n; i++) a[i] = ix[i];
    a[n] = v;
    int id = ir_emit(b, IR_STORE, TY_VOID, n + 1, a);
    ir_inst(b->k, id)->param = p;
}
static int CALL(IrBuilder *b, FeBuiltin f, ScalarType t, int n, const int *a)
{
    int id = ir_emit(b, IR_CALL, t, n, a);
    ir_inst(b->k, id)->param = f;
    return id;
}

/* ---- running ---- */

static CgCpuModule *compile(IrModule *m, int opt)
{
    ir_verify(m, "test_llvm builder");
    char *err = NULL;
    CgCpuModule *cm = cg_cpu_compile(m, opt, &err);
    CHECK_MSG(cm != NULL, "compile: %s", err ? err : "?");
    free(err);
    return cm;
}

/* Slices of uneven, growing sizes: 1, 2, 3, ... items. */
static void uneven(void *pool, const CgCpuStep *st, const CgCpuArgs *a, int64_t count)
{
    (void)pool;
    int64_t s = 1;
    for (int64_t i = 0; i < count; i += s, s++) st->fn(a, i, i + s < count ? i + s : count);
}

static int run(CgCpuModule *cm, void **bufs, const uint32_t *scal, const int64_t *syms, int sliced)
{
    CgCpuArgs a = {bufs, scal, syms, NULL, NULL};
    return cg_cpu_run(&cm->kernels.v[0], &a, sliced ? uneven : NULL, NULL, NULL);
}

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}
static float rndf(void) { return (float)(rnd() % 2000001) / 1000000.0f - 1.0f; }

static int close_rel(double x, double y, double tol)
{
    return fabs(x - y) <= tol * (1.0 + fabs(y));
}

/* ---- tests ---- */

/* y[i] = a * x[i] + y[i] over N (not a multiple of any vector width). */
TEST(saxpy)
{
    IrModule *m = ir_module_new(A, "t.px");
    IrKernel *k = ir_kernel_new(m, "saxpy", L0);
    int N = add_sym(k, "N");
    int pa = add_scalar(k, "a", TY_FLOAT);
    int px = add_buf(k, "x", TY_FLOAT, 1, S(N), NULL);
    int py = add_buf(k, "y", TY_FLOAT, 1, S(N), NULL);
    IrBuilder b;
    int i;
    IrSize *lo[1] = {C(0)}, *hi[1] = {S(N)};
    grid(k, &b, 1, lo, hi, TY_UINT, &i);
    int av = ir_emit(&b, IR_PARAM, TY_FLOAT, 0, NULL);
    ir_inst(k, av)->param = pa;
    int xv = LOAD(&b, k, px, 1, &i), yv = LOAD(&b, k, py, 1, &i);
    int r = E2(&b, IR_ADD, TY_FLOAT, E2(&b, IR_MUL, TY_FLOAT, av, xv), yv);
    STORE(&b, py, 1, &i, r);
    CgCpuModule *cm = compile(m, 3);
    if (!cm) return;
    for (int sliced = 0; sliced < 2; sliced++) {
        int64_t n = 1003;
        float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n), *ref = malloc(sizeof(float) * n);
        for (int j = 0; j < n; j++) {
            x[j] = rndf();
            y[j] = rndf();
            ref[j] = 2.5f * x[j];
            ref[j] = ref[j] + y[j];
        }
        void *bufs[4] = {NULL, x, y};
        uint32_t sc[4] = {fbits(2.5f)};
        int64_t syms[1] = {n};
        CHECK(run(cm, bufs, sc, syms, sliced) == 0);
        int bad = 0;
        for (int j = 0; j < n; j++) bad += y[j] != ref[j];
        CHECK_MSG(bad == 0, "saxpy sliced=%d: %d wrong", sliced, bad);
        free(x), free(y), free(ref);
    }
    CHECK(cm->compile_ms > 0);
    cg_cpu_destroy(cm);

    /* the optimised IR is vectorised for the host */
    char *err = NULL;
    char *txt = cg_llvm_emit(A, m, 3, &err);
    CHECK_MSG(txt != NULL, "emit: %s", err ? err : "?");
    CHECK(txt && strstr(txt, "define void @k0_saxpy__s0_grid"));
    CHECK(txt && strstr(txt, "x float>"));
    free(err);
}

/* PX integer rules: x/0 = 0, x%0 = 0, INT_MIN/-1 = INT_MIN, INT_MIN%-1 = 0,
 * shift counts mod 32, arithmetic >> of int, uint division unsigned. */
static int32_t ref_div(int32_t x, int32_t y)
{
    if (y == 0) return 0;
    if (x == INT32_MIN && y == -1) return INT32_MIN;
    return x / y;
}
static int32_t ref_rem(int32_t x, int32_t y)
{
    if (y == 0 || y == -1) return 0;
    return x % y;
}

TEST(int_semantics)
{
    IrModule *m = ir_module_new(A, "t.px");
    IrKernel *k = ir_kernel_new(m, "ints", L0);
    int N = add_sym(k, "N");
    int px = add_buf(k, "x", TY_INT, 1, S(N), NULL);
    int py = add_buf(k, "y", TY_INT, 1, S(N), NULL);
    enum { NOUT = 8 };
    int po[NOUT];
    for (int j = 0; j < NOUT; j++) po[j] = add_buf(k, "o", TY_INT, 1, S(N), NULL);
    IrBuilder b;
    int i;
    IrSize *lo[1] = {C(0)}, *hi[1] = {S(N)};
    grid(k, &b, 1, lo, hi, TY_UINT, &i);
    int x = LOAD(&b, k, px, 1, &i), y = LOAD(&b, k, py, 1, &i);
    int xu = E1(&b, IR_CONV, TY_UINT, x), yu = E1(&b, IR_CONV, TY_UINT, y);
    int v[NOUT];
    v[0] = E2(&b, IR_DIV, TY_INT, x, y);
    v[1] = E2(&b, IR_REM, TY_INT, x, y);
    v[2] = E1(&b, IR_CONV, TY_INT, E2(&b, IR_DIV, TY_UINT, xu, yu));
    v[3] = E1(&b, IR_CONV, TY_INT, E2(&b, IR_REM, TY_UINT, xu, yu));
    v[4] = E2(&b, IR_SHL, TY_INT, x, y);
    v[5] = E2(&b, IR_SHR, TY_INT, x, y);
    v[6] = E1(&b, IR_CONV, TY_INT, E2(&b, IR_SHR, TY_UINT, xu, y));
    v[7] = CALL(&b, BI_ABS, TY_INT, 1, &x);
    for (int j = 0; j < NOUT; j++) STORE(&b, po[j], 1, &i, v[j]);
    CgCpuModule *cm = compile(m, 2);
    if (!cm) return;
    static const int32_t special[] = {0, 1, -1, 2, -2, 7, -7, 31, 32, 33, -33, 64, INT32_MIN, INT32_MAX};
    enum { NS = sizeof special / sizeof special[0] };
    int64_t n = NS * NS + 500;
    int32_t *in[2], *out[NOUT];
    in[0] = malloc(4 * n), in[1] = malloc(4 * n);
    for (int j = 0; j < NOUT; j++) out[j] = calloc(n, 4);
    for (int j = 0; j < n; j++) {
        if (j < NS * NS) in[0][j] = special[j / NS], in[1][j] = special[j % NS];
        else in[0][j] = (int32_t)rnd(), in[1][j] = (int32_t)(rnd() % 5 ? rnd() % 100 - 50 : rnd());
    }
    void *bufs[2 + NOUT] = {in[0], in[1]};
    for (int j = 0; j < NOUT; j++) bufs[2 + j] = out[j];
    int64_t syms[1] = {n};
    CHECK(run(cm, bufs, NULL, syms, 1) == 0);
    int bad[NOUT] = {0};
    for (int j = 0; j < n; j++) {
        int32_t a = in[0][j], c = in[1][j];
        uint32_t au = (uint32_t)a, cu = (uint32_t)c;
        int32_t ref[NOUT] = {
            ref_div(a, c), ref_rem(a, c), (int32_t)(cu ? au / cu : 0), (int32_t)(cu ? au % cu : 0),
            (int32_t)(au << (cu & 31)),
            /* arithmetic shift of a negative written without relying on C's >> of negatives */
            a < 0 ? (int32_t)~(~au >> (cu & 31)) : (int32_t)(au >> (cu & 31)), (int32_t)(au >> (cu & 31)),
            a < 0 ? (int32_t)(0u - au) : a};
        for (int o = 0; o < NOUT; o++)
            if (out[o][j] != ref[o]) {
                if (!bad[o]) fprintf(stderr, "op %d: %d, %d -> %d, want %d\n", o, a, c, out[o][j], ref[o]);
                bad[o]++;
            }
    }
    for (int o = 0; o < NOUT; o++) CHECK_MSG(bad[o] == 0, "int op %d: %d wrong", o, bad[o]);
    free(in[0]), free(in[1]);
    for (int j = 0; j < NOUT; j++) free(out[j]);
    cg_cpu_destroy(cm);
}

/* float -> int saturates (NaN -> 0), uint likewise; round half away from
 * zero; float % is fmod; comparisons are IEEE. */
TEST(float_semantics)
{
    IrModule *m = ir_module_new(A, "t.px");
    IrKernel *k = ir_kernel_new(m, "floats", L0);
    int N = add_sym(k, "N");
    int px = add_buf(k, "x", TY_FLOAT, 1, S(N), NULL);
    int py = add_buf(k, "y", TY_FLOAT, 1, S(N), NULL);
    int oi = add_buf(k, "oi", TY_INT, 1, S(N), NULL);
    int ou = add_buf(k, "ou", TY_UINT, 1, S(N), NULL);
    int orr = add_buf(k, "or", TY_FLOAT, 1, S(N), NULL);
    int om = add_buf(k, "om", TY_FLOAT, 1, S(N), NULL);
    int oc = add_buf(k, "oc", TY_INT, 1, S(N), NULL);
    IrBuilder b;
    int i;
    IrSize *lo[1] = {C(0)}, *hi[1] = {S(N)};
    grid(k, &b, 1, lo, hi, TY_UINT, &i);
    int x = LOAD(&b, k, px, 1, &i), y = LOAD(&b, k, py, 1, &i);
    STORE(&b, oi, 1, &i, E1(&b, IR_CONV, TY_INT, x));
    STORE(&b, ou, 1, &i, E1(&b, IR_CONV, TY_UINT, x));
    STORE(&b, orr, 1, &i, CALL(&b, BI_ROUND, TY_FLOAT, 1, &x));
    STORE(&b, om, 1, &i, E2(&b, IR_REM, TY_FLOAT, x, y));
    /* bits: eq ne lt ge as 1 2 4 8 */
    int one = ir_const_int(&b, TY_INT, 1), zero = ir_const_int(&b, TY_INT, 0);
    int acc = zero;
    IrOp ops[4] = {IR_EQ, IR_NE, IR_LT, IR_GE};
    for (int j = 0; j < 4; j++) {
        int c = E2(&b, ops[j], TY_BOOL, x, y);
        int s[3] = {c, E2(&b, IR_SHL, TY_INT, one, ir_const_int(&b, TY_INT, j)), zero};
        acc = E2(&b, IR_OR, TY_INT, acc, ir_emit(&b, IR_SELECT, TY_INT, 3, s));
    }
    STORE(&b, oc, 1, &i, acc);
    CgCpuModule *cm = compile(m, 2);
    if (!cm) return;
    static const float sp[] = {0.0f, -0.0f, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 0.49999997f, 1e10f, -1e10f,
                               3e9f, 4294967295.0f, 2147483520.0f, -2147483648.0f, NAN, INFINITY,
                               -INFINITY, 7.25f, -7.25f, 3.0f};
    enum { NS = sizeof sp / sizeof sp[0] };
    int64_t n = NS * NS;
    float *xs = malloc(4 * n), *ys = malloc(4 * n), *rr = malloc(4 * n), *mm = malloc(4 * n);
    int32_t *ii = malloc(4 * n), *cc = malloc(4 * n);
    uint32_t *uu = malloc(4 * n);
    for (int j = 0; j < n; j++) xs[j] = sp[j / NS], ys[j] = sp[j % NS];
    void *bufs[7] = {xs, ys, ii, uu, rr, mm, cc};
    int64_t syms[1] = {n};
    CHECK(run(cm, bufs, NULL, syms, 0) == 0);
    int bad = 0;
    for (int j = 0; j < n; j++) {
        double v = xs[j];
        int32_t ri = isnan(v) ? 0 : v >= 2147483647.0 ? INT32_MAX : v <= -2147483648.0 ? INT32_MIN : (int32_t)v;
        uint32_t ru = isnan(v) || v <= 0 ? 0 : v >= 4294967295.0 ? UINT32_MAX : (uint32_t)v;
        /* half away from zero, by hand */
        double fl = floor(fabs(v));
        double rv = isnan(v) || isinf(v) ? v : (fabs(v) - fl >= 0.5 ? fl + 1 : fl) * (v < 0 ? -1 : 1);
        if (v == 0) rv = v;
        float rm = fmodf(xs[j], ys[j]);
        int rc = (xs[j] == ys[j]) | (xs[j] != ys[j]) << 1 | (xs[j] < ys[j]) << 2 | (xs[j] >= ys[j]) << 3;
        int ok = ii[j] == ri && uu[j] == ru && ((isnan(rr[j]) && isnan(rv)) || rr[j] == (float)rv) &&
                 ((isnan(mm[j]) && isnan(rm)) || memcmp(&mm[j], &rm, 4) == 0) && cc[j] == rc;
        if (!ok && bad++ < 5)
            fprintf(stderr, "x=%g y=%g: int %d/%d uint %u/%u round %g/%g fmod %g/%g cmp %d/%d\n", v, ys[j], ii[j],
                    ri, uu[j], ru, rr[j], rv, mm[j], rm, cc[j], rc);
    }
    CHECK_MSG(bad == 0, "%d float results wrong", bad);
    free(xs), free(ys), free(rr), free(mm), free(ii), free(cc), free(uu);
    cg_cpu_destroy(cm);
}

/* Bounds: a grid wider than the buffers reads 0 beyond x and writes
 * nothing beyond y; negative int indices are out of range. Rank 2 with a
 * nonzero lower bound; the slicing must not matter. */
TEST(bounds_rank2)
{
    IrModule *m = ir_module_new(A, "t.px");
    IrKernel *k = ir_kernel_new(m, "oob", L0);
    int R = add_sym(k, "R"), Cc = add_sym(k, "C");
    int px = add_buf(k, "x", TY_FLOAT, 2, S(R), S(Cc));
    int py = add_buf(k, "y", TY_FLOAT, 2, S(R), S(Cc));
    IrBuilder b;
    int ix[2];
    IrSize *lo[2] = {C(-2), C(-1)}, *hi[2] = {ir_size_bin(A, SZ_ADD, S(R), C(3)), ir_size_bin(A, SZ_ADD, S(Cc), C(2))};
    grid(k, &b, 2, lo, hi, TY_INT, ix);
    /* y[i][j] = x[i][j-1]... stores go to y[i][j] + 1000 */
    int one = ir_const_int(&b, TY_INT, 1);
    int src[2] = {ix[0], E2(&b, IR_SUB, TY_INT, ix[1], one)};
    int v = LOAD(&b, k, px, 2, src);
    int c1000 = ir_const_float(&b, TY_FLOAT, 1000.0);
    STORE(&b, py, 2, ix, E2(&b, IR_ADD, TY_FLOAT, v, c1000));
    CgCpuModule *cm = compile(m, 3);
    if (!cm) return;
    for (int sliced = 0; sliced < 2; sliced++) {
        int r = 37, c = 29;
        /* guard zones around both buffers must stay untouched */
        float *xg = malloc(sizeof(float) * (r * c + 64)), *yg = malloc(sizeof(float) * (r * c + 64));
        for (int j = 0; j < r * c + 64; j++) xg[j] = rndf(), yg[j] = -5.0f;
        float *x = xg + 32, *y = yg + 32;
        void *bufs[2] = {x, y};
        int64_t syms[2] = {r, c};
        CHECK(run(cm, bufs, NULL, syms, sliced) == 0);
        int bad = 0;
        for (int j = 0; j < r * c + 64; j++) {
            int e = j - 32;
            float want;
            if (e < 0 || e >= r * c) want = -5.0f;
            else {
                int ii = e / c, jj = e % c;
                want = (jj - 1 >= 0 ? x[ii * c + jj - 1] : 0.0f) + 1000.0f;
            }
            bad += yg[j] != want;
        }
        CHECK_MSG(bad == 0, "oob sliced=%d: %d wrong", sliced, bad);
        free(xg), free(yg);
    }
    cg_cpu_destroy(cm);
}

/* Structured control flow: out[i] = sum over k of (x[i][k] > 0 ? x : -1),
 * as a FOR with one carried value and an IF with one result; plus a
 * uint loop bound from an int scalar param via IR_SIZE. */
TEST(control_flow)
{
    IrModule *m = ir_module_new(A, "t.px");
    IrKernel *k = ir_kernel_new(m, "cf", L0);
    int M = add_sym(k, "M"), K = add_sym(k, "K");
    int px = add_buf(k, "x", TY_FLOAT, 2, S(M), S(K));
    int po = add_buf(k, "o", TY_FLOAT, 1, S(M), NULL);
    IrBuilder b;
    int i;
    IrSize *lo[1] = {C(0)}, *hi[1] = {S(M)};
    grid(k, &b, 1, lo, hi, TY_UINT, &i);
    int z = ir_const_int(&b, TY_UINT, 0);
    int kk = ir_emit(&b, IR_SIZE, TY_UINT, 0, NULL);
    ir_inst(k, kk)->param = K;
    int init = ir_const_float(&b, TY_FLOAT, 0.0);
    ScalarType ct = TY_FLOAT;
    int iv, carried, res;
    ir_for(&b, z, kk, S(K), 1, &init, &ct, &iv, &carried, &res);
    IrBlock *outer = b.blk;
    int fid = ir_inst(k, res)->a.v[0];
    b.blk = ir_inst(k, fid)->body;
    int ld[2] = {i, iv};
    int xv = LOAD(&b, k, px, 2, ld);
    int cond = E2(&b, IR_GT, TY_BOOL, xv, ir_const_float(&b, TY_FLOAT, 0.0));
    int ires;
    int ifid = ir_if(&b, cond, 1, &ct, &ires);
    IrBlock *fb = b.blk;
    b.blk = ir_inst(k, ifid)->body;
    ir_yield(&b, 1, &xv);
    b.blk = ir_inst(k, ifid)->els;
    int m1 = ir_const_float(&b, TY_FLOAT, -1.0);
    ir_yield(&b, 1, &m1);
    b.blk = fb;
    int nxt = E2(&b, IR_ADD, TY_FLOAT, carried, ires);
    ir_yield(&b, 1, &nxt);
    b.blk = outer;
    STORE(&b, po, 1, &i, res);
    CgCpuModule *cm = compile(m, 2);
    if (!cm) return;
    int mm = 13, kq = 57;
    float *x = malloc(4 * mm * kq), *o = calloc(mm, 4);
    for (int j = 0; j < mm * kq; j++) x[j] = rndf();
    void *bufs[2] = {x, o};
    int64_t syms[2] = {mm, kq};
    CHECK(run(cm, bufs, NULL, syms, 1) == 0);
    int bad = 0;
    for (int r = 0; r < mm; r++) {
        float s = 0;
        for (int c = 0; c < kq; c++) s = s + (x[r * kq + c] > 0 ? x[r * kq + c] : -1.0f);
        bad += o[r] != s;
    }
    CHECK_MSG(bad == 0, "control flow: %d wrong", bad);
    /* K = 0: the loop runs zero times */
    syms[1] = 0;
    CHECK(run(cm, bufs, NULL, syms, 0) == 0);
    bad = 0;
    for (int r = 0; r < mm; r++) bad += o[r] != 0.0f;
    CHECK_MSG(bad == 0, "empty loop: %d wrong", bad);
    free(x), free(o);
    cg_cpu_destroy(cm);
}

/* ---- library stages ---- */

static IrKernel *lib_kernel(IrModule *m, IrStageKind kind, int in0, int in1, int out, FeReduceOp rop)
{
    IrKernel *k = m->kernels.v[m->kernels.n - 1];
    IrStage *st = ir_stage_add(k, A, kind, PRIM_MATMUL, L0);
    st->in[0] = in0;
    st->in[1] = in1;
    st->nin = in1 >= 0 ? 2 : 1;
    st->out = out;
    st->rop = rop;
    return k;
}

TEST(matmul)
{
    for (int half = 0; half < 2; half++) {
        IrModule *m = ir_module_new(A, "t.px");
        IrKernel *k = ir_kernel_new(m, "mm", L0);
        int M = add_sym(k, "M"), K = add_sym(k, "K"), N = add_sym(k, "N");
        ScalarType t = half ? TY_HALF : TY_FLOAT;
        int a = add_buf(k, "a", t, 2, S(M), S(K));
        int bb = add_buf(k, "b", t, 2, S(K), S(N));
        int c = add_buf(k, "c", t, 2, S(M), S(N));
        lib_kernel(m, IR_STAGE_MATMUL, a, bb, c, RED_SUM);
        CgCpuModule *cm = compile(m, 3);
        if (!cm) return;
        static const int shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 70, 300}, {64, 129, 257}, {5, 0, 4}};
        for (int s = 0; s < 5; s++) {
            int mm = shapes[s][0], kk = shapes[s][1], nn = shapes[s][2];
            float *af = malloc(4 * (mm * kk + 1)), *bf = malloc(4 * (kk * nn + 1)), *cf = malloc(4 * (mm * nn + 1));
            _Float16 *ah = malloc(2 * (mm * kk + 1)), *bh = malloc(2 * (kk * nn + 1)), *ch = malloc(2 * (mm * nn + 1));
            for (int j = 0; j < mm * kk; j++) af[j] = rndf(), ah[j] = (_Float16)af[j], af[j] = half ? (float)ah[j] : af[j];
            for (int j = 0; j < kk * nn; j++) bf[j] = rndf(), bh[j] = (_Float16)bf[j], bf[j] = half ? (float)bh[j] : bf[j];
            for (int j = 0; j < mm * nn; j++) cf[j] = 99.0f, ch[j] = (_Float16)99.0f;
            void *bufs[3] = {half ? (void *)ah : af, half ? (void *)bh : bf, half ? (void *)ch : cf};
            int64_t syms[3] = {mm, kk, nn};
            CHECK(run(cm, bufs, NULL, syms, s & 1) == 0);
            int bad = 0;
            for (int i = 0; i < mm; i++)
                for (int j = 0; j < nn; j++) {
                    double ref = 0;
                    for (int q = 0; q < kk; q++) ref += (double)af[i * kk + q] * bf[q * nn + j];
                    double got = half ? (double)ch[i * nn + j] : cf[i * nn + j];
                    /* float: k-term sums, rel 1e-5 of sum |terms|; half: one final rounding */
                    double tol = half ? 2e-3 * (1 + fabs(ref)) : 1e-5 * (1 + kk);
                    bad += !(fabs(got - ref) <= tol);
                }
            CHECK_MSG(bad == 0, "matmul half=%d %dx%dx%d: %d wrong", half, mm, kk, nn, bad);
            free(af), free(bf), free(cf), free(ah), free(bh), free(ch);
        }
        cg_cpu_destroy(cm);
    }
}

/* Reduce rank 1 across several chunks and rank 2, all ops, int and float;
 * the rank-1 float sum must not depend on the slicing. */
TEST(reduce)
{
    for (int ty = 0; ty < 3; ty++) {
        ScalarType t = ty == 0 ? TY_FLOAT : ty == 1 ? TY_INT : TY_UINT;
        for (int op = RED_SUM; op <= RED_PROD; op++) {
            IrModule *m = ir_module_new(A, "t.px");
            IrKernel *k = ir_kernel_new(m, "red", L0);
            int N = add_sym(k, "N"), R = add_sym(k, "R");
            int a = add_buf(k, "a", t, 1, S(N), NULL);
            int r = add_buf(k, "r", t, 1, C(1), NULL);
            int a2 = add_buf(k, "a2", t, 2, S(R), S(N));
            int r2 = add_buf(k, "r2", t, 1, S(R), NULL);
            lib_kernel(m, IR_STAGE_REDUCE, a, -1, r, (FeReduceOp)op);
            lib_kernel(m, IR_STAGE_REDUCE, a2, -1, r2, (FeReduceOp)op);
            CgCpuModule *cm = compile(m, 3);
            if (!cm) return;
            int64_t n = 3 * CG_CPU_CHUNK + 77, rows = 5;
            uint32_t *av = malloc(4 * n), *a2v = malloc(4 * n * rows), rv[2] = {0}, r2v[5];
            for (int64_t j = 0; j < n * rows; j++) {
                uint32_t v;
                if (t == TY_FLOAT) {
                    float f = op == RED_PROD ? 1.0f + rndf() * 1e-4f : rndf();
                    memcpy(&v, &f, 4);
                } else v = op == RED_PROD ? (rnd() % 7 == 0 ? 3u : 1u) : rnd() % 100000;
                if (t == TY_INT && op != RED_PROD && (rnd() & 1)) v = 0u - v;
                a2v[j] = v;
                if (j < n) av[j] = v;
            }
            void *bufs[4] = {av, rv, a2v, r2v};
            int64_t syms[2] = {n, rows};
            double first = 0;
            for (int sliced = 0; sliced < 2; sliced++) {
                CHECK(run(cm, bufs, NULL, syms, sliced) == 0);
                for (int row = -1; row < rows; row++) {
                    const uint32_t *src = row < 0 ? av : a2v + row * n;
                    uint32_t got = row < 0 ? rv[0] : r2v[row];
                    if (t == TY_FLOAT) {
                        double ref = op == RED_SUM ? 0 : op == RED_PROD ? 1 : op == RED_MIN ? INFINITY : -INFINITY;
                        double mag = 0;
                        for (int64_t j = 0; j < n; j++) {
                            float f;
                            memcpy(&f, &src[j], 4);
                            if (op == RED_SUM) ref += f, mag += fabs(f);
                            else if (op == RED_PROD) ref *= f;
                            else if (op == RED_MIN) ref = f < ref ? f : ref;
                            else ref = f > ref ? f : ref;
                        }
                        float g;
                        memcpy(&g, &got, 4);
                        /* sum: partial sums keep the error far below this; product: the
                         * worst-case bound of n roundings of 2^-24 */
                        double tol = op == RED_SUM ? 1e-6 * mag : op == RED_PROD ? n * 6e-8 * fabs(ref) : 0;
                        CHECK_MSG(fabs(g - ref) <= tol, "reduce float op %d row %d: %g vs %g", op, row, g, ref);
                        if (row < 0 && sliced == 0) first = g;
                        if (row < 0 && sliced == 1) CHECK_MSG(g == first, "rank-1 float reduce depends on slicing");
                    } else {
                        uint32_t ref = op == RED_SUM ? 0 : op == RED_PROD ? 1 : op == RED_MIN ? (t == TY_INT ? INT32_MAX : UINT32_MAX) : (t == TY_INT ? (uint32_t)INT32_MIN : 0);
                        for (int64_t j = 0; j < n; j++) {
                            uint32_t v = src[j];
                            if (op == RED_SUM) ref += v;
                            else if (op == RED_PROD) ref *= v;
                            else if (t == TY_INT) {
                                int32_t x = (int32_t)v, y = (int32_t)ref;
                                ref = (uint32_t)(op == RED_MIN ? (x < y ? x : y) : (x > y ? x : y));
                            } else ref = op == RED_MIN ? (v < ref ? v : ref) : (v > ref ? v : ref);
                        }
                        CHECK_MSG(got == ref, "reduce %s op %d row %d: %u vs %u", t == TY_INT ? "int" : "uint", op, row, got, ref);
                    }
                }
            }
            free(av), free(a2v);
            cg_cpu_destroy(cm);
        }
    }
}

TEST(scan_softmax_transpose)
{
    IrModule *m = ir_module_new(A, "t.px");
    IrKernel *k = ir_kernel_new(m, "lib", L0);
    int N = add_sym(k, "N"), R = add_sym(k, "R");
    int si = add_buf(k, "si", TY_INT, 1, S(N), NULL), so = add_buf(k, "so", TY_INT, 1, S(N), NULL);
    int fi = add_buf(k, "fi", TY_FLOAT, 2, S(R), S(N)), fo = add_buf(k, "fo", TY_FLOAT, 2, S(R), S(N));
    int xi = add_buf(k, "xi", TY_FLOAT, 2, S(R), S(N)), xo = add_buf(k, "xo", TY_FLOAT, 2, S(R), S(N));
    int ti = add_buf(k, "ti", TY_UINT, 2, S(R), S(N)), to = add_buf(k, "to", TY_UINT, 2, S(N), S(R));
    int hi = add_buf(k, "hi", TY_HALF, 1, S(N), NULL), ho = add_buf(k, "ho", TY_HALF, 1, S(N), NULL);
    lib_kernel(m, IR_STAGE_SCAN, si, -1, so, RED_SUM);
    lib_kernel(m, IR_STAGE_SCAN, fi, -1, fo, RED_SUM);
    lib_kernel(m, IR_STAGE_SOFTMAX, xi, -1, xo, RED_SUM);
    lib_kernel(m, IR_STAGE_TRANSPOSE, ti, -1, to, RED_SUM);
    lib_kernel(m, IR_STAGE_SOFTMAX, hi, -1, ho, RED_SUM);
    CgCpuModule *cm = compile(m, 3);
    if (!cm) return;
    int64_t n = 2 * CG_CPU_CHUNK + 1000, rows = 3;
    int32_t *siv = malloc(4 * n), *sov = malloc(4 * n);
    float *fiv = malloc(4 * n * rows), *fov = malloc(4 * n * rows), *xiv = malloc(4 * n * rows), *xov = malloc(4 * n * rows);
    uint32_t *tiv = malloc(4 * n * rows), *tov = malloc(4 * n * rows);
    _Float16 *hiv = malloc(2 * n), *hov = malloc(2 * n);
    for (int64_t j = 0; j < n; j++) siv[j] = (int32_t)rnd(), hiv[j] = (_Float16)(rndf() * 4);
    for (int64_t j = 0; j < n * rows; j++) fiv[j] = rndf(), xiv[j] = rndf() * 20, tiv[j] = rnd();
    void *bufs[10] = {siv, sov, fiv, fov, xiv, xov, tiv, tov, hiv, hov};
    int64_t syms[2] = {n, rows};
    CHECK(run(cm, bufs, NULL, syms, 1) == 0);
    int bad = 0;
    uint32_t acc = 0;
    for (int64_t j = 0; j < n; j++) acc += (uint32_t)siv[j], bad += (uint32_t)sov[j] != acc;
    CHECK_MSG(bad == 0, "int scan: %d wrong", bad);
    bad = 0;
    for (int r = 0; r < rows; r++) {
        double s = 0, mag = 0;
        for (int64_t j = 0; j < n; j++) {
            s += fiv[r * n + j], mag += fabs(fiv[r * n + j]);
            bad += !(fabs(fov[r * n + j] - s) <= 1e-6 * mag + 1e-6);
        }
    }
    CHECK_MSG(bad == 0, "float scan rows: %d wrong", bad);
    bad = 0;
    for (int r = 0; r < rows; r++) {
        double mx = -INFINITY, s = 0;
        for (int64_t j = 0; j < n; j++) mx = fmax(mx, xiv[r * n + j]);
        for (int64_t j = 0; j < n; j++) s += exp(xiv[r * n + j] - mx);
        for (int64_t j = 0; j < n; j++) bad += !close_rel(xov[r * n + j], exp(xiv[r * n + j] - mx) / s, 1e-4);
    }
    CHECK_MSG(bad == 0, "softmax: %d wrong", bad);
    bad = 0;
    for (int r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) bad += tov[j * rows + r] != tiv[r * n + j];
    CHECK_MSG(bad == 0, "transpose: %d wrong", bad);
    {
        double mx = -INFINITY, s = 0;
        for (int64_t j = 0; j < n; j++) mx = fmax(mx, (double)hiv[j]);
        for (int64_t j = 0; j < n; j++) s += exp((double)hiv[j] - mx);
        bad = 0;
        for (int64_t j = 0; j < n; j++) {
            double ref = exp((double)hiv[j] - mx) / s;
            bad += !(fabs((double)hov[j] - ref) <= 1e-3 * ref + 1e-7);
        }
        CHECK_MSG(bad == 0, "half softmax: %d wrong", bad);
    }
    free(siv), free(sov), free(fiv), free(fov), free(xiv), free(xov), free(tiv), free(tov), free(hiv), free(hov);
    cg_cpu_destroy(cm);
}

/* half elementwise: arithmetic rounds to half per op; builtins on half. */
TEST(half_grid)
{
    IrModule *m = ir_module_new(A, "t.px");
    IrKernel *k = ir_kernel_new(m, "h", L0);
    int N = add_sym(k, "N");
    int ph = add_scalar(k, "s", TY_HALF);
    int px = add_buf(k, "x", TY_HALF, 1, S(N), NULL);
    int py = add_buf(k, "y", TY_HALF, 1, S(N), NULL);
    int pz = add_buf(k, "z", TY_FLOAT, 1, S(N), NULL);
    IrBuilder b;
    int i;
    IrSize *lo[1] = {C(0)}, *hi[1] = {S(N)};
    grid(k, &b, 1, lo, hi, TY_UINT, &i);
    int s = ir_emit(&b, IR_PARAM, TY_HALF, 0, NULL);
    ir_inst(k, s)->param = ph;
    int x = LOAD(&b, k, px, 1, &i);
    int prod = E2(&b, IR_MUL, TY_HALF, x, s);
    STORE(&b, py, 1, &i, CALL(&b, BI_SQRT, TY_HALF, 1, &prod));
    STORE(&b, pz, 1, &i, E1(&b, IR_CONV, TY_FLOAT, x));
    CgCpuModule *cm = compile(m, 2);
    if (!cm) return;
    int64_t n = 300;
    _Float16 *x_ = malloc(2 * n), *y_ = malloc(2 * n);
    float *z_ = malloc(4 * n);
    for (int j = 0; j < n; j++) x_[j] = (_Float16)(j * 0.37f);
    void *bufs[4] = {NULL, x_, y_, z_};
    uint32_t sc[4] = {fbits(1.7f)};
    int64_t syms[1] = {n};
    CHECK(run(cm, bufs, sc, syms, 0) == 0);
    int bad = 0;
    _Float16 sh = (_Float16)1.7f;
    for (int j = 0; j < n; j++) {
        _Float16 p = (_Float16)((float)x_[j] * (float)sh); /* one half rounding */
        _Float16 ref = (_Float16)sqrtf((float)p);
        bad += y_[j] != ref || z_[j] != (float)x_[j];
    }
    CHECK_MSG(bad == 0, "half grid: %d wrong", bad);
    free(x_), free(y_), free(z_);
    cg_cpu_destroy(cm);
}

int main(void)
{
    A = fe_arena_new();
    RUN(saxpy);
    RUN(int_semantics);
    RUN(float_semantics);
    RUN(bounds_rank2);
    RUN(control_flow);
    RUN(matmul);
    RUN(reduce);
    RUN(scan_softmax_transpose);
    RUN(half_grid);
    fe_arena_free(A);
    return TEST_DONE();
}
