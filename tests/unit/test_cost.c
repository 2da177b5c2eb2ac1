/* test_cost.c — the cost polynomials, the per-stage analysis on IR built
 * with the builder, the workload class, the device profile and prediction.
 * Expected figures are worked out by hand from the definitions in
 * docs/COST.md (or by a plain loop here), never taken from cost.c. */
#include "codegen/cg.h"
#include "px.h"
#include "runtime/rt.h"
#include "test.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

static Arena *A;
static Loc L0;

/* ---- building kernels ---------------------------------------------------- */

static IrModule *M;

static IrKernel *kernel(const char *name)
{
    if (!M) M = ir_module_new(A, "test.px");
    return ir_kernel_new(M, name, L0);
}

static int sym(IrKernel *k, const char *name)
{
    for (int i = 0; i < k->syms.n; i++)
        if (!strcmp(k->syms.v[i].name, name)) return i;
    return ir_sym_add(k, A, name, 0, L0);
}

/* A buffer with dims given as "N", "M", or numbers; NULL ends the list. */
static int buffer(IrKernel *k, const char *name, ScalarType t, const char *d0, const char *d1)
{
    const char *ds[2] = {d0, d1};
    IrSize *dims[2];
    int rank = 0;
    for (; rank < 2 && ds[rank]; rank++)
        dims[rank] = ds[rank][0] >= '0' && ds[rank][0] <= '9' ? ir_size_const(A, atoll(ds[rank]))
                                                              : ir_size_sym(A, sym(k, ds[rank]));
    return ir_buffer_add(k, A, name, t, rank, dims, 0, L0);
}

static int scalar(IrKernel *k, const char *name, ScalarType t)
{
    return ir_scalar_add(k, A, name, t, L0);
}

/* A grid stage over lo..hi per dimension; returns the builder positioned
 * in the body and the index variables in iv[]. */
static IrStage *grid(IrKernel *k, FePrim prim, int rank, IrSize **lo, IrSize **hi, IrBuilder *b, int *iv)
{
    IrStage *st = ir_stage_add(k, A, IR_STAGE_GRID, prim, L0);
    st->rank = rank;
    st->body = ir_block_new(A);
    b->arena = A;
    b->k = k;
    b->blk = st->body;
    b->loc = L0;
    for (int d = 0; d < rank; d++) {
        st->lo[d] = lo ? lo[d] : ir_size_const(A, 0);
        st->hi[d] = hi[d];
        st->itype[d] = TY_UINT;
        iv[d] = ir_barg(b, st->body, TY_UINT);
    }
    return st;
}

static int load(IrBuilder *b, int buf, int n, const int *idx)
{
    int v = ir_emit(b, IR_LOAD, b->k->params.v[buf].type, n, idx);
    ir_inst(b->k, v)->param = buf;
    return v;
}

static void store(IrBuilder *b, int buf, int n, const int *idx, int val)
{
    int args[5];
    for (int i = 0; i < n; i++) args[i] = idx[i];
    args[n] = val;
    int v = ir_emit(b, IR_STORE, TY_VOID, n + 1, args);
    ir_inst(b->k, v)->param = buf;
}

static int bin(IrBuilder *b, IrOp op, ScalarType t, int x, int y)
{
    int a[2] = {x, y};
    return ir_emit(b, op, t, 2, a);
}

static int param(IrBuilder *b, int p)
{
    int v = ir_emit(b, IR_PARAM, b->k->params.v[p].type, 0, NULL);
    ir_inst(b->k, v)->param = p;
    return v;
}

static int size_val(IrBuilder *b, int s)
{
    int v = ir_emit(b, IR_SIZE, TY_UINT, 0, NULL);
    ir_inst(b->k, v)->param = s;
    return v;
}

static const char *f(IrKernelCost *c, int stage, IrCostMetric m)
{
    const IrCost *cost = stage < 0 ? &c->total : &c->stages.v[stage].c;
    return ir_poly_str(A, &c->atoms, cost->m[m]);
}

#define CHECK_STR(got, want)                                                         \
    do {                                                                             \
        const char *g_ = (got), *w_ = (want);                                        \
        CHECK_MSG(!strcmp(g_, w_), "%s: got \"%s\", want \"%s\"", #got, g_, w_);     \
    } while (0)

/* ---- polynomials ---------------------------------------------------------- */

TEST(poly_canonical)
{
    IrKernel *k = kernel("p");
    sym(k, "M");
    sym(k, "K");
    sym(k, "N");
    IrAtoms at;
    ir_atoms_init(&at, A, k);
    IrPoly *m = ir_poly_atom(A, 0), *kk = ir_poly_atom(A, 1), *n = ir_poly_atom(A, 2);
    /* (N + 1) * (M - 1) = M*N - N + M - 1: degree 2 first, then M before N */
    IrPoly *p = ir_poly_mul(A, ir_poly_add(A, n, ir_poly_const(A, 1)), ir_poly_sub(A, m, ir_poly_const(A, 1)));
    CHECK_STR(ir_poly_str(A, &at, p), "M*N + M - N - 1");
    /* the same built in another order is the same polynomial */
    IrPoly *q = ir_poly_sub(A, ir_poly_add(A, ir_poly_mul(A, n, m), m), ir_poly_add(A, n, ir_poly_const(A, 1)));
    CHECK(ir_poly_equal(p, q));
    CHECK_STR(ir_poly_str(A, &at, ir_poly_scale(A, ir_poly_mul(A, ir_poly_mul(A, m, n), kk), 2)), "2*M*K*N");
    CHECK_STR(ir_poly_str(A, &at, ir_poly_mul(A, n, n)), "N^2");
    CHECK_STR(ir_poly_str(A, &at, ir_poly_sub(A, p, q)), "0");
    CHECK_STR(ir_poly_str(A, &at, ir_poly_const(A, -7)), "-7");
    CHECK_STR(ir_poly_str(A, &at, ir_poly_sub(A, ir_poly_const(A, 0), ir_poly_mul(A, kk, n))), "-K*N");
    /* squares before mixed terms of the same degree when their atom is earlier */
    IrPoly *r = ir_poly_add(A, ir_poly_mul(A, n, n), ir_poly_add(A, ir_poly_mul(A, m, n), ir_poly_mul(A, m, m)));
    CHECK_STR(ir_poly_str(A, &at, r), "M^2 + M*N + N^2");
    int64_t c = 0;
    CHECK(ir_poly_is_const(ir_poly_const(A, 5), &c) && c == 5);
    CHECK(!ir_poly_is_const(m, NULL));
    CHECK(ir_poly_degree(&at, r) == 2 && ir_poly_degree(&at, ir_poly_const(A, 3)) == 0);
}

TEST(poly_max_dominates_overflow)
{
    IrKernel *k = kernel("q");
    sym(k, "N");
    IrAtoms at;
    ir_atoms_init(&at, A, k);
    IrPoly *n = ir_poly_atom(A, 0);
    IrPoly *x = ir_poly_sub(A, n, ir_poly_const(A, 1)); /* N - 1 */
    IrPoly *y = ir_poly_const(A, 2);
    CHECK_STR(ir_poly_str(A, &at, ir_poly_max(A, x, y)), "N + 2");
    CHECK_STR(ir_poly_str(A, &at, ir_poly_max(A, ir_poly_scale(A, n, 3), ir_poly_scale(A, n, 5))), "5*N");
    CHECK(ir_poly_dominates(A, ir_poly_scale(A, n, 2), n));
    CHECK(!ir_poly_dominates(A, n, ir_poly_scale(A, n, 2)));
    CHECK(!ir_poly_dominates(A, x, n)); /* N - 1 - N = -1 */
    IrPoly *big = ir_poly_const(A, INT64_MAX);
    IrPoly *o = ir_poly_add(A, big, ir_poly_const(A, 1));
    CHECK(o->overflow);
    CHECK(ir_poly_mul(A, o, n)->overflow); /* sticky */
    CHECK(ir_poly_mul(A, ir_poly_scale(A, n, INT64_MAX), ir_poly_const(A, 2))->overflow);
    CHECK_STR(ir_poly_str(A, &at, o), "overflow");
    long double v;
    int64_t nv = 3;
    CHECK(!ir_poly_eval(&at, o, &nv, NULL, NULL, NULL, &v));
    CHECK_STR(ir_poly_str(A, &at, ir_poly_sub(A, ir_poly_const(A, 0), ir_poly_const(A, INT64_MIN))), "overflow");
}

TEST(poly_from_size_and_eval)
{
    IrKernel *k = kernel("s");
    int N = sym(k, "N"), Mx = sym(k, "M");
    scalar(k, "steps", TY_INT);
    IrAtoms at;
    ir_atoms_init(&at, A, k);
    IrSize *n = ir_size_sym(A, N), *m = ir_size_sym(A, Mx), *steps = ir_size_param(A, 0);
    /* max(N - 1, 0): the clamp of an empty range is dropped */
    IrSize *trip = ir_size_bin(A, SZ_MAX, ir_size_bin(A, SZ_SUB, n, ir_size_const(A, 1)), ir_size_const(A, 0));
    CHECK_STR(ir_poly_str(A, &at, ir_poly_from_size(&at, trip)), "N - 1");
    IrSize *cd = ir_size_bin(A, SZ_CEILDIV, n, ir_size_const(A, 256));
    IrPoly *p = ir_poly_add(A, ir_poly_mul(A, ir_poly_from_size(&at, cd), ir_poly_from_size(&at, steps)),
                            ir_poly_from_size(&at, ir_size_bin(A, SZ_MUL, m, ir_size_const(A, 4))));
    CHECK_STR(ir_poly_str(A, &at, p), "steps*ceildiv(N, 256) + 4*M");
    /* the same opaque formula is one atom */
    IrPoly *p2 = ir_poly_from_size(&at, ir_size_bin(A, SZ_CEILDIV, n, ir_size_const(A, 256)));
    CHECK(at.opaque.n == 1);
    CHECK_STR(ir_poly_str(A, &at, ir_poly_add(A, p2, p2)), "2*ceildiv(N, 256)");
    CHECK(ir_poly_degree(&at, p) == 2);
    int64_t sv[2] = {1000, 7}, pv[1] = {3};
    long double v = -1;
    CHECK(ir_poly_eval(&at, p, sv, NULL, pv, NULL, &v) && v == 3 * 4 + 28); /* ceil(1000/256) = 4 */
    unsigned char sset[2] = {1, 1}, pset[1] = {0};
    v = -1;
    CHECK(!ir_poly_eval(&at, p, sv, sset, pv, pset, &v) && v == -1);
    sset[0] = 0;
    pset[0] = 1;
    CHECK(!ir_poly_eval(&at, p2, sv, sset, pv, pset, &v)); /* the atom needs N */
    CHECK(ir_poly_eval(&at, ir_poly_from_size(&at, m), sv, sset, pv, pset, &v) && v == 7);
    CHECK(!ir_poly_eval(&at, p, NULL, NULL, NULL, NULL, &v)); /* nothing given */
}

/* ---- stages ------------------------------------------------------------------ */

/* saxpy: y = a*x + y over N floats. */
TEST(cost_saxpy)
{
    IrKernel *k = kernel("saxpy");
    int a = scalar(k, "a", TY_FLOAT);
    int x = buffer(k, "x", TY_FLOAT, "N", NULL), y = buffer(k, "y", TY_FLOAT, "N", NULL);
    IrBuilder b;
    int i;
    IrSize *hi = ir_size_sym(A, 0);
    IrStage *st = grid(k, PRIM_MAP, 1, NULL, &hi, &b, &i);
    st->elementwise = 1;
    int lx = load(&b, x, 1, &i), ly = load(&b, y, 1, &i);
    int s = bin(&b, IR_ADD, TY_FLOAT, bin(&b, IR_MUL, TY_FLOAT, param(&b, a), lx), ly);
    store(&b, y, 1, &i, s);
    IrKernelCost *c = ir_cost_kernel(A, k, NULL);
    CHECK_STR(f(c, -1, IR_COST_FLOPS), "2*N");
    CHECK_STR(f(c, -1, IR_COST_INTOPS), "0");
    CHECK_STR(f(c, -1, IR_COST_BYTES_READ), "8*N");
    CHECK_STR(f(c, -1, IR_COST_BYTES_WRITTEN), "4*N");
    CHECK_STR(f(c, -1, IR_COST_DISPATCHES), "1");
    CHECK(c->stages.n == 1);
    CHECK(c->cls == CLASS_THROUGHPUT);
    CHECK(strstr(c->class_reason, "memory-bound") != NULL);
    int64_t nv = 1000;
    IrCostValues v;
    CHECK(ir_cost_values(c, -1, &nv, NULL, NULL, NULL, &v));
    CHECK(v.v[IR_COST_FLOPS] == 2000 && v.v[IR_COST_BYTES_READ] == 8000 && v.v[IR_COST_BYTES_WRITTEN] == 4000);
    CHECK(!ir_cost_values(c, 1, &nv, NULL, NULL, NULL, &v));
}

TEST(cost_library_stages)
{
    IrKernel *k = kernel("lib");
    int A_ = buffer(k, "A", TY_FLOAT, "M", "K"), B_ = buffer(k, "B", TY_FLOAT, "K", "N");
    int C_ = buffer(k, "C", TY_FLOAT, "M", "N"), r = buffer(k, "r", TY_FLOAT, "M", NULL);
    int v = buffer(k, "v", TY_INT, "L", NULL), s = buffer(k, "s", TY_INT, "1", NULL);
    int h = buffer(k, "h", TY_HALF, "L", NULL), hs = buffer(k, "hs", TY_HALF, "L", NULL);
    int T = buffer(k, "T", TY_FLOAT, "N", "M"), S = buffer(k, "S", TY_FLOAT, "M", "N");
    IrStage *st = ir_stage_add(k, A, IR_STAGE_MATMUL, PRIM_MATMUL, L0);
    st->in[0] = A_, st->in[1] = B_, st->nin = 2, st->out = C_;
    st = ir_stage_add(k, A, IR_STAGE_REDUCE, PRIM_REDUCE, L0);
    st->in[0] = C_, st->nin = 1, st->out = r, st->rop = RED_MAX;
    st = ir_stage_add(k, A, IR_STAGE_REDUCE, PRIM_REDUCE, L0);
    st->in[0] = v, st->nin = 1, st->out = s, st->rop = RED_SUM;
    st = ir_stage_add(k, A, IR_STAGE_SCAN, PRIM_SCAN, L0);
    st->in[0] = h, st->nin = 1, st->out = hs;
    st = ir_stage_add(k, A, IR_STAGE_SOFTMAX, PRIM_SOFTMAX, L0);
    st->in[0] = C_, st->nin = 1, st->out = S;
    st = ir_stage_add(k, A, IR_STAGE_TRANSPOSE, PRIM_TRANSPOSE, L0);
    st->in[0] = C_, st->nin = 1, st->out = T;
    IrKernelCost *c = ir_cost_kernel(A, k, NULL);
    CHECK(c->stages.n == 6);
    /* matmul: 2*M*N*K flops, reads both operands once, writes C */
    CHECK_STR(f(c, 0, IR_COST_FLOPS), "2*M*K*N");
    CHECK_STR(f(c, 0, IR_COST_BYTES_READ), "4*M*K + 4*K*N");
    CHECK_STR(f(c, 0, IR_COST_BYTES_WRITTEN), "4*M*N");
    CHECK_STR(f(c, 0, IR_COST_DISPATCHES), "1");
    /* 2-D reduce: one op per element, one result per row, one pass */
    CHECK_STR(f(c, 1, IR_COST_FLOPS), "M*N");
    CHECK_STR(f(c, 1, IR_COST_BYTES_READ), "4*M*N");
    CHECK_STR(f(c, 1, IR_COST_BYTES_WRITTEN), "4*M");
    CHECK_STR(f(c, 1, IR_COST_DISPATCHES), "1");
    /* 1-D int reduce: intops, two passes, one element written */
    CHECK_STR(f(c, 2, IR_COST_FLOPS), "0");
    CHECK_STR(f(c, 2, IR_COST_INTOPS), "L");
    CHECK_STR(f(c, 2, IR_COST_BYTES_WRITTEN), "4");
    CHECK_STR(f(c, 2, IR_COST_DISPATCHES), "2");
    /* half scan: 2 bytes per element, three passes */
    CHECK_STR(f(c, 3, IR_COST_FLOPS), "L");
    CHECK_STR(f(c, 3, IR_COST_BYTES_READ), "2*L");
    CHECK_STR(f(c, 3, IR_COST_BYTES_WRITTEN), "2*L");
    CHECK_STR(f(c, 3, IR_COST_DISPATCHES), "3");
    CHECK_STR(f(c, 4, IR_COST_FLOPS), "5*M*N");
    CHECK_STR(f(c, 4, IR_COST_BYTES_READ), "4*M*N");
    CHECK_STR(f(c, 5, IR_COST_FLOPS), "0");
    CHECK_STR(f(c, 5, IR_COST_BYTES_WRITTEN), "4*M*N");
    CHECK_STR(f(c, -1, IR_COST_DISPATCHES), "9");
    CHECK_STR(f(c, -1, IR_COST_FLOPS), "2*M*K*N + 6*M*N + L");
    CHECK(c->cls == CLASS_BATCH); /* degree 3 ops, degree 2 bytes */
    CHECK(strstr(c->class_reason, "degree 3") != NULL);
    /* an explicit strategy decides the dispatches */
    k->stages.v[2].strategy = IR_STRAT_REDUCE_ROWS;
    CHECK(ir_stage_dispatches(k, &k->stages.v[2]) == 1);
}

/* C[i][j] = sum_k A[i][k] * B[k][j] as a PARALLEL_FOR with a carried acc. */
/* Opens `for k IN 0..K` (symbol 1) carrying a float sum from 0 inside the
 * grid body b is at: b is left in the loop body, *kv the trip variable,
 * *acc the carried sum; *res its value after the loop, *outer the block to
 * go back to once the body has yielded. */
static void sum_loop(IrBuilder *b, IrKernel *k, int *kv, int *acc, int *res, IrBlock **outer)
{
    int zero = ir_const_float(b, TY_FLOAT, 0.0);
    int lo = ir_const_int(b, TY_UINT, 0), kh = size_val(b, 1);
    ScalarType ft = TY_FLOAT;
    IrSize *trip = ir_size_bin(A, SZ_MAX, ir_size_sym(A, 1), ir_size_const(A, 0));
    int fo = ir_for(b, lo, kh, trip, 1, &zero, &ft, kv, acc, res);
    *outer = b->blk;
    b->blk = ir_inst(k, fo)->body;
}

static IrKernel *for_matmul(void)
{
    IrKernel *k = kernel("mm");
    int A_ = buffer(k, "A", TY_FLOAT, "M", "K"), B_ = buffer(k, "B", TY_FLOAT, "K", "N");
    int C_ = buffer(k, "C", TY_FLOAT, "M", "N");
    IrBuilder b;
    int iv[2], kv, acc, res;
    IrSize *hi[2] = {ir_size_sym(A, 0), ir_size_sym(A, 2)};
    grid(k, PRIM_FOR, 2, NULL, hi, &b, iv);
    IrBlock *outer;
    sum_loop(&b, k, &kv, &acc, &res, &outer);
    int ia[2] = {iv[0], kv}, ib[2] = {kv, iv[1]};
    int prod = bin(&b, IR_MUL, TY_FLOAT, load(&b, A_, 2, ia), load(&b, B_, 2, ib));
    int nacc = bin(&b, IR_ADD, TY_FLOAT, acc, prod);
    ir_yield(&b, 1, &nacc);
    b.blk = outer;
    store(&b, C_, 2, iv, res);
    return k;
}

TEST(cost_for_matmul)
{
    IrKernel *k = for_matmul();
    IrKernelCost *c = ir_cost_kernel(A, k, NULL);
    CHECK_STR(f(c, -1, IR_COST_FLOPS), "2*M*K*N");
    CHECK_STR(f(c, -1, IR_COST_INTOPS), "0");
    CHECK_STR(f(c, -1, IR_COST_BYTES_READ), "4*M*K + 4*K*N");
    CHECK_STR(f(c, -1, IR_COST_BYTES_WRITTEN), "4*M*N");
    CHECK(c->cls == CLASS_BATCH);
    /* a plain loop computing the same count */
    int64_t sv[3] = {3, 5, 7}; /* M, K, N in symbol order */
    double flops = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 7; j++)
            for (int kk = 0; kk < 5; kk++) flops += 2;
    IrCostValues v;
    CHECK(ir_cost_values(c, 0, sv, NULL, NULL, NULL, &v) && v.v[IR_COST_FLOPS] == flops);
    CHECK(v.v[IR_COST_BYTES_READ] == 4 * (3 * 5 + 5 * 7));
}

/* o[i] = sum over k of A[i][k] * v[k] + v[ix[i]]: v[k] is at one address
 * for every invocation (uniform); A[i][k] depends on i, and v[ix[i]]
 * depends on i through the loaded ix[i], so neither is. */
TEST(cost_uniform)
{
    IrKernel *k = kernel("mv");
    int A_ = buffer(k, "A", TY_FLOAT, "M", "K"), v_ = buffer(k, "v", TY_FLOAT, "K", NULL);
    int ix_ = buffer(k, "ix", TY_UINT, "M", NULL), o_ = buffer(k, "o", TY_FLOAT, "M", NULL);
    IrBuilder b;
    int iv[1], kv, acc, res;
    IrSize *hi[1] = {ir_size_sym(A, 0)};
    grid(k, PRIM_FOR, 1, NULL, hi, &b, iv);
    IrBlock *outer;
    sum_loop(&b, k, &kv, &acc, &res, &outer);
    int ia[2] = {iv[0], kv};
    int prod = bin(&b, IR_MUL, TY_FLOAT, load(&b, A_, 2, ia), load(&b, v_, 1, &kv));
    int gx = load(&b, v_, 1, (int[]){load(&b, ix_, 1, iv)});
    int nacc = bin(&b, IR_ADD, TY_FLOAT, acc, bin(&b, IR_ADD, TY_FLOAT, prod, gx));
    ir_yield(&b, 1, &nacc);
    b.blk = outer;
    store(&b, o_, 1, iv, res);
    IrKernelCost *c = ir_cost_kernel(A, k, NULL);
    CHECK_STR(f(c, -1, IR_COST_ACCESSES), "4*M*K + M");
    CHECK_STR(f(c, -1, IR_COST_UNIFORM), "M*K");
    /* the 2-D matmul's lanes run along j (the last grid dimension): its
     * A[i][k] is one address per subgroup (uniform), B[k][j] is not */
    CHECK_STR(f(ir_cost_kernel(A, for_matmul(), NULL), -1, IR_COST_UNIFORM), "M*K*N");
}

/* if (x > 0) { x*x*x*x } else { -x }, dead code, constant expressions,
 * int ops, builtins. */
TEST(cost_branches_dead_const)
{
    IrKernel *k = kernel("br");
    int x = buffer(k, "x", TY_FLOAT, "N", NULL), y = buffer(k, "y", TY_FLOAT, "N", NULL);
    int w = buffer(k, "w", TY_INT, "N", NULL);
    IrBuilder b;
    int i;
    IrSize *hi = ir_size_sym(A, 0);
    grid(k, PRIM_FOR, 1, NULL, &hi, &b, &i);
    int lx = load(&b, x, 1, &i);
    int zero = ir_const_float(&b, TY_FLOAT, 0.0);
    int cond = bin(&b, IR_GT, TY_BOOL, lx, zero); /* 1 flop */
    ScalarType ft = TY_FLOAT;
    int res;
    int fi = ir_if(&b, cond, 1, &ft, &res);
    IrBlock *outer = b.blk;
    b.blk = ir_inst(k, fi)->body;
    int x2 = bin(&b, IR_MUL, TY_FLOAT, lx, lx);
    int x4 = bin(&b, IR_MUL, TY_FLOAT, x2, x2);
    int fa[3] = {x4, lx, lx};
    int fm = ir_emit(&b, IR_CALL, TY_FLOAT, 3, fa); /* fma: 2 */
    ir_inst(k, fm)->param = BI_FMA;
    ir_yield(&b, 1, &fm);
    b.blk = ir_inst(k, fi)->els;
    int ng = ir_emit(&b, IR_NEG, TY_FLOAT, 1, &lx);
    ir_yield(&b, 1, &ng);
    b.blk = outer;
    /* dead: computed, never stored */
    bin(&b, IR_MUL, TY_FLOAT, lx, lx);
    load(&b, w, 1, &i);
    /* constant: 2.0 * 3.0 is folded */
    int c6 = bin(&b, IR_MUL, TY_FLOAT, ir_const_float(&b, TY_FLOAT, 2.0), ir_const_float(&b, TY_FLOAT, 3.0));
    store(&b, y, 1, &i, bin(&b, IR_ADD, TY_FLOAT, res, c6)); /* 1 flop */
    /* integer work: w[i] = int(i) * 3 + 1 -> conv, mul, add */
    int ci = ir_emit(&b, IR_CONV, TY_INT, 1, &i);
    int im = bin(&b, IR_ADD, TY_INT, bin(&b, IR_MUL, TY_INT, ci, ir_const_int(&b, TY_INT, 3)),
                 ir_const_int(&b, TY_INT, 1));
    store(&b, w, 1, &i, im);
    IrKernelCost *c = ir_cost_kernel(A, k, NULL);
    /* compare 1 + max(then 2 muls + fma 2, else neg 1) + add 1 = 6 */
    CHECK_STR(f(c, -1, IR_COST_FLOPS), "6*N");
    CHECK_STR(f(c, -1, IR_COST_INTOPS), "3*N");
    CHECK_STR(f(c, -1, IR_COST_BYTES_READ), "4*N"); /* the dead load of w does not count */
    CHECK_STR(f(c, -1, IR_COST_BYTES_WRITTEN), "8*N");
}

/* Footprints: a stencil, a small lookup table, an indirect gather, a
 * reversal, and an access invariant in an inner loop. */
TEST(cost_footprints)
{
    IrKernel *k = kernel("fp");
    int x = buffer(k, "x", TY_FLOAT, "N", NULL), y = buffer(k, "y", TY_FLOAT, "N", NULL);
    int t = buffer(k, "t", TY_FLOAT, "16", NULL), ix = buffer(k, "ix", TY_UINT, "N", NULL);
    int g = buffer(k, "g", TY_FLOAT, "N", NULL), z = buffer(k, "z", TY_FLOAT, "N", NULL);
    IrBuilder b;
    int i;
    IrSize *lo = ir_size_const(A, 1);
    IrSize *hi = ir_size_bin(A, SZ_SUB, ir_size_sym(A, 0), ir_size_const(A, 1));
    grid(k, PRIM_FOR, 1, &lo, &hi, &b, &i);
    int one = ir_const_int(&b, TY_UINT, 1);
    int im1 = bin(&b, IR_SUB, TY_UINT, i, one), ip1 = bin(&b, IR_ADD, TY_UINT, i, one);
    int s = bin(&b, IR_ADD, TY_FLOAT, load(&b, x, 1, &im1), load(&b, x, 1, &i));
    s = bin(&b, IR_ADD, TY_FLOAT, s, load(&b, x, 1, &ip1));
    store(&b, y, 1, &i, s);
    IrKernelCost *c = ir_cost_kernel(A, k, NULL);
    /* three windows of N-2 elements: an upper bound (docs/COST.md) */
    CHECK_STR(f(c, 0, IR_COST_BYTES_READ), "12*N - 24");
    CHECK_STR(f(c, 0, IR_COST_FLOPS), "2*N - 4");
    CHECK_STR(f(c, 0, IR_COST_INTOPS), "2*N - 4");

    /* stage 2: z[i] = t[i % 16] + g[ix[i]] + x[N-1-i] + x[i], i in 0..N;
     * an inner loop re-reading y[i] K times */
    IrSize *hn = ir_size_sym(A, 0);
    grid(k, PRIM_FOR, 1, NULL, &hn, &b, &i);
    int ti = bin(&b, IR_REM, TY_UINT, i, ir_const_int(&b, TY_UINT, 16));
    int v = load(&b, t, 1, &ti);
    int gi = load(&b, ix, 1, &i);
    v = bin(&b, IR_ADD, TY_FLOAT, v, load(&b, g, 1, &gi));
    int rev = bin(&b, IR_SUB, TY_UINT, bin(&b, IR_SUB, TY_UINT, size_val(&b, 0), one), i);
    v = bin(&b, IR_ADD, TY_FLOAT, v, load(&b, x, 1, &rev));
    v = bin(&b, IR_ADD, TY_FLOAT, v, load(&b, x, 1, &i));
    int lo0 = ir_const_int(&b, TY_UINT, 0), kh = size_val(&b, 0);
    int kv, acc, res;
    ScalarType ft = TY_FLOAT;
    int fo = ir_for(&b, lo0, kh, ir_size_sym(A, 0), 1, &v, &ft, &kv, &acc, &res);
    IrBlock *outer = b.blk;
    b.blk = ir_inst(k, fo)->body;
    int nacc = bin(&b, IR_ADD, TY_FLOAT, acc, load(&b, y, 1, &i));
    ir_yield(&b, 1, &nacc);
    b.blk = outer;
    store(&b, z, 1, &i, res);
    c = ir_cost_kernel(A, k, NULL);
    /* t: 16 elements (capped by the fixed-size buffer); ix, g: N each;
     * x: two accesses of N capped at the buffer's N; y: N */
    CHECK_STR(f(c, 1, IR_COST_BYTES_READ), "16*N + 64");
    CHECK_STR(f(c, 1, IR_COST_BYTES_WRITTEN), "4*N");
    /* 3 adds + N adds in the loop */
    CHECK_STR(f(c, 1, IR_COST_FLOPS), "N^2 + 3*N");
    CHECK_STR(f(c, 1, IR_COST_INTOPS), "3*N"); /* rem, sub, sub */
}

TEST(cost_dispatches_after_fusion)
{
    IrKernel *src = kernel("fu");
    int x = buffer(src, "x", TY_FLOAT, "N", NULL), y = buffer(src, "y", TY_FLOAT, "N", NULL);
    IrBuilder b;
    int i;
    IrSize *hi = ir_size_sym(A, 0);
    for (int s = 0; s < 2; s++) {
        IrStage *st = grid(src, PRIM_COPY, 1, NULL, &hi, &b, &i);
        st->elementwise = 1;
        store(&b, s ? x : y, 1, &i, load(&b, s ? y : x, 1, &i));
    }
    /* the optimised kernel: one stage */
    IrKernel *opt = kernel("fu");
    buffer(opt, "x", TY_FLOAT, "N", NULL);
    buffer(opt, "y", TY_FLOAT, "N", NULL);
    IrStage *st = grid(opt, PRIM_COPY, 1, NULL, &hi, &b, &i);
    st->strategy = IR_STRAT_ELEMWISE;
    IrKernelCost *c = ir_cost_kernel(A, src, opt);
    CHECK_STR(f(c, -1, IR_COST_DISPATCHES), "1");
    CHECK_STR(f(c, 0, IR_COST_DISPATCHES), "1");
    CHECK_STR(f(c, 1, IR_COST_DISPATCHES), "1");
    CHECK_STR(f(c, -1, IR_COST_BYTES_READ), "8*N"); /* per source stage */
    c = ir_cost_kernel(A, src, NULL);
    CHECK_STR(f(c, -1, IR_COST_DISPATCHES), "2");
}

/* ---- class ------------------------------------------------------------------------ */

TEST(class_rules)
{
    IrKernel *k = kernel("cl");
    IrKernelCost *c = ir_cost_kernel(A, k, NULL);
    CHECK(c->cls == CLASS_INTERACTIVE && strstr(c->class_reason, "no stages"));
    k->cls = CLASS_BATCH;
    c = ir_cost_kernel(A, k, NULL);
    CHECK(c->cls == CLASS_BATCH);
    CHECK_STR(c->class_reason, "GPU_CLASS BATCH as written");
    k->cls = CLASS_REALTIME;
    k->deadline_ns = 16000000;
    c = ir_cost_kernel(A, k, NULL);
    CHECK(c->cls == CLASS_REALTIME);
    CHECK_STR(c->class_reason, "GPU_DEADLINE 16ms implies REALTIME");
    k->deadline_ns = 500000;
    CHECK_STR(ir_cost_kernel(A, k, NULL)->class_reason, "GPU_DEADLINE 500us implies REALTIME");

    /* small fixed size: INTERACTIVE; the same over 2^20 floats: THROUGHPUT */
    for (int big = 0; big < 2; big++) {
        IrKernel *q = kernel("fixed");
        int x = buffer(q, "x", TY_FLOAT, big ? "1048576" : "64", NULL);
        int y = buffer(q, "y", TY_FLOAT, big ? "1048576" : "64", NULL);
        IrBuilder b;
        int i;
        IrSize *hi = ir_size_const(A, big ? 1048576 : 64);
        grid(q, PRIM_MAP, 1, NULL, &hi, &b, &i);
        int l = load(&b, x, 1, &i);
        store(&b, y, 1, &i, bin(&b, IR_MUL, TY_FLOAT, l, l));
        IrKernelCost *qc = ir_cost_kernel(A, q, NULL);
        CHECK(qc->cls == (big ? CLASS_THROUGHPUT : CLASS_INTERACTIVE));
        CHECK_STR(f(qc, -1, IR_COST_BYTES_READ), big ? "4194304" : "256");
    }
    /* equal degree, high intensity: 64 fmas per element read -> BATCH */
    IrKernel *q = kernel("dense");
    int x = buffer(q, "x", TY_FLOAT, "N", NULL), y = buffer(q, "y", TY_FLOAT, "N", NULL);
    IrBuilder b;
    int i;
    IrSize *hi = ir_size_sym(A, 0);
    grid(q, PRIM_FOR, 1, NULL, &hi, &b, &i);
    int v = load(&b, x, 1, &i);
    int lo = ir_const_int(&b, TY_UINT, 0), kh = ir_const_int(&b, TY_UINT, 64);
    int kv, acc, res;
    ScalarType ft = TY_FLOAT;
    int fo = ir_for(&b, lo, kh, ir_size_const(A, 64), 1, &v, &ft, &kv, &acc, &res);
    IrBlock *outer = b.blk;
    b.blk = ir_inst(q, fo)->body;
    int fa[3] = {acc, acc, acc};
    int fm = ir_emit(&b, IR_CALL, TY_FLOAT, 3, fa);
    ir_inst(q, fm)->param = BI_FMA;
    ir_yield(&b, 1, &fm);
    b.blk = outer;
    store(&b, y, 1, &i, res);
    IrKernelCost *qc = ir_cost_kernel(A, q, NULL);
    CHECK_STR(f(qc, -1, IR_COST_FLOPS), "128*N");
    CHECK(qc->cls == CLASS_BATCH); /* 128 flops per 8 bytes = 16 */
    CHECK(strstr(qc->class_reason, "16 operations per byte") != NULL);
}

/* ---- printing ---------------------------------------------------------------------- */

static char *capture(void (*fn)(FILE *, IrKernelCost *const *, int, const IrCostBind *), IrKernelCost **cs, int n,
                     const IrCostBind *bind)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    fn(o, cs, n, bind);
    fclose(o);
    char *r = fe_strdup(A, buf);
    free(buf);
    return r;
}

TEST(print_text_json)
{
    IrKernel *k = for_matmul();
    IrKernelCost *c = ir_cost_kernel(A, k, NULL);
    const char *names[] = {"M", "K", "N", "unused"};
    int64_t vals[] = {2, 3, 4, 9};
    IrCostBind bind = {names, vals, 4};
    char *t = capture(ir_cost_print_text, &c, 1, &bind);
    CHECK(strstr(t, "kernel mm\n") == t);
    CHECK(strstr(t, "  flops          2*M*K*N = 48\n") != NULL);
    CHECK(strstr(t, "  bytes_read     4*M*K + 4*K*N = 72\n") != NULL);
    CHECK(strstr(t, "  dispatches     1\n") != NULL);
    CHECK(strstr(t, "  stage 0: PARALLEL_FOR at ") != NULL);
    char *j = capture(ir_cost_print_json, &c, 1, &bind);
    CHECK(strstr(j, "\"flops\": \"2*M*K*N\"") != NULL);
    /* 2 loads per trip, M*N*K trips, and M*N stores: 56 accesses; the kernel
     * has not been through ir_pass_bounds, so every one counts as checked;
     * A[i][k], one per trip, is uniform across a subgroup (lanes along j) */
    json_error_t je;
    json_t *root = json_loads(j, 0, &je);
    json_t *want = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "flops", 48, "intops", 0, "bytes_read", 72,
                             "bytes_written", 32, "accesses", 56, "checked", 56, "uniform", 24, "dispatches", 1);
    CHECK(json_equal(json_object_get(json_array_get(json_object_get(root, "kernels"), 0), "values"), want));
    json_decref(want);
    json_decref(root);
    CHECK(strstr(j, "\"class\": \"BATCH\"") != NULL);
    /* values appear only when every symbol is bound */
    IrCostBind part = {names, vals, 2};
    j = capture(ir_cost_print_json, &c, 1, &part);
    CHECK(strstr(j, "\"values\"") == NULL);
    t = capture(ir_cost_print_text, &c, 1, NULL);
    CHECK(strstr(t, " = ") == NULL);
    /* the JSON parses (checked by Python's json module when it is there) */
    FILE *o = fopen("/tmp/px_test_cost.json", "w");
    if (o) {
        fputs(capture(ir_cost_print_json, &c, 1, &bind), o);
        fclose(o);
        int rc = system("/usr/bin/python3 -c 'import json,sys; d=json.load(open(\"/tmp/px_test_cost.json\")); "
                        "sys.exit(0 if d[\"kernels\"][0][\"values\"][\"flops\"]==48 and "
                        "d[\"kernels\"][0][\"stages\"][0][\"bytes_written\"]==\"4*M*N\" else 1)' 2>/dev/null");
        CHECK(rc == 0);
        remove("/tmp/px_test_cost.json");
    }
}

/* ---- profile and prediction ----------------------------------------------------------- */

TEST(profile_files)
{
    char dir[] = "/tmp/px_cost_testXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char xdg[256];
    snprintf(xdg, sizeof xdg, "%s/cache", dir);
    setenv("XDG_CACHE_HOME", xdg, 1);
    char path[512];
    CHECK(rt_profile_path(path, sizeof path, "llvmpipe (LLVM 15.0.6, 256 bits)"));
    char want[512];
    snprintf(want, sizeof want, "%s/px/llvmpipe__LLVM_15.0.6__256_bits_.profile", xdg);
    CHECK_STR(path, want);
    IrDeviceProfile p, q;
    ir_profile_default(&p);
    CHECK(!p.calibrated && p.bytes_per_s > 0 && p.flops_per_s > 0 && p.dispatch_s > 0);
    snprintf(p.device, sizeof p.device, "llvmpipe (LLVM 15.0.6, 256 bits)");
    p.bytes_per_s = 12.5e9;
    p.flops_per_s = 3e11;
    p.intops_per_s = 1.5e11;
    p.accesses_per_s = 2.5e10;
    p.checked_per_s = 5e10;
    p.group_s = 3e-7;
    p.dispatch_s = 7e-6;
    p.barrier_s = 1.25e-6;
    p.calibrated = 1;
    CHECK(rt_profile_save(&p, path) == 0);
    memset(&q, 0, sizeof q);
    CHECK(rt_profile_load(&q, path) == 0);
    CHECK(q.bytes_per_s == 12.5e9 && q.flops_per_s == 3e11 && q.intops_per_s == 1.5e11);
    CHECK(q.accesses_per_s == 2.5e10 && q.checked_per_s == 5e10 && q.group_s == 3e-7);
    CHECK(q.dispatch_s == 7e-6 && q.barrier_s == 1.25e-6 && q.calibrated == 1);
    CHECK_STR(q.device, "llvmpipe (LLVM 15.0.6, 256 bits)");
    /* refused: missing figures, negative rates, garbage; q untouched */
    CHECK(ir_profile_parse(&q, "bytes_per_s 1e9\n") == -1);
#define RATES "accesses_per_s 1\nchecked_per_s 1\ngroup_s 0\n"
    CHECK(ir_profile_parse(&q, "bytes_per_s -1\nflops_per_s 1\nintops_per_s 1\n" RATES "dispatch_s 0\nbarrier_s 0\n") ==
          -1);
    CHECK(ir_profile_parse(&q, "bytes_per_s nan\nflops_per_s 1\nintops_per_s 1\n" RATES "dispatch_s 0\nbarrier_s 0\n") ==
          -1);
    /* a profile from before the access figures (version 1) is refused, so
     * that a stale calibration is not mixed with default rates */
    CHECK(ir_profile_parse(&q, "bytes_per_s 1\nflops_per_s 1\nintops_per_s 1\ndispatch_s 0\nbarrier_s 0\n") == -1);
    CHECK(ir_profile_parse(&q, "\x01\x02 garbage\n\n") == -1);
    CHECK(q.bytes_per_s == 12.5e9);
    CHECK(ir_profile_parse(&q, "# c\nbytes_per_s 1e9\nflops_per_s 2e9\nintops_per_s 3e9\n" RATES "dispatch_s 0\n"
                               "barrier_s 0\nfuture_key 5\n") == 0);
    CHECK(q.bytes_per_s == 1e9 && q.intops_per_s == 3e9 && q.dispatch_s == 0);
    CHECK(rt_profile_load(&q, "/nonexistent/px.profile") == -1);
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", dir, 1);
    CHECK(rt_profile_path(path, sizeof path, ""));
    snprintf(want, sizeof want, "%s/.cache/px/_.profile", dir);
    CHECK_STR(path, want);
    char small[8];
    CHECK(!rt_profile_path(small, sizeof small, "x"));
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

TEST(prediction)
{
    IrDeviceProfile p;
    ir_profile_default(&p);
    p.bytes_per_s = 1e9;
    p.flops_per_s = 2e9;
    p.intops_per_s = 1e9;
    p.dispatch_s = 1e-5;
    p.barrier_s = 2e-6;
    p.accesses_per_s = 1e12; /* 1e6 accesses: 1 us, under the memory bound */
    IrCostValues mem = {{[IR_COST_FLOPS] = 1e6,
                         [IR_COST_BYTES_READ] = 8e6,
                         [IR_COST_BYTES_WRITTEN] = 4e6,
                         [IR_COST_ACCESSES] = 1e6,
                         [IR_COST_DISPATCHES] = 1},
                        IR_LIB_NONE,
                        0}; /* 12 MB at 1 GB/s: 12 ms; ops 0.5 ms */
    IrCostValues ops = {{[IR_COST_FLOPS] = 4e9,
                         [IR_COST_INTOPS] = 1e9,
                         [IR_COST_BYTES_READ] = 8e3,
                         [IR_COST_BYTES_WRITTEN] = 4e3,
                         [IR_COST_DISPATCHES] = 2},
                        IR_LIB_NONE,
                        0}; /* 2 s + 1 s of ops */
    CHECK(fabs(ir_predict_stage_s(&mem, &p) - (0.012 + 1e-5)) < 1e-12);
    CHECK(fabs(ir_predict_stage_s(&ops, &p) - (3.0 + 2e-5 + 2e-6)) < 1e-9);
    IrCostValues st[2] = {mem, ops};
    IrCostValues tot = {{[IR_COST_FLOPS] = 5e9 + 1e6,
                         [IR_COST_INTOPS] = 1e9,
                         [IR_COST_BYTES_READ] = 8e6 + 8e3,
                         [IR_COST_BYTES_WRITTEN] = 4e6 + 4e3,
                         [IR_COST_ACCESSES] = 1e6,
                         [IR_COST_DISPATCHES] = 3},
                        IR_LIB_NONE,
                        0};
    double want = 0.012 + 3.0 + 3 * 1e-5 + 2 * 2e-6;
    CHECK(fabs(ir_predict_kernel_s(&tot, st, 2, &p) - want) < 1e-9);
    /* without stages: the roofline of the total */
    CHECK(fabs(ir_predict_kernel_s(&tot, NULL, 0, &p) -
               ((5e9 + 1e6) / 2e9 + 1.0 + 1e-6 + 3e-5 + 4e-6)) < 1e-9);
    /* accesses and checks add to the operations; workgroups add after the
     * bound, per group of the stage's class */
    p.accesses_per_s = 1e9;
    p.checked_per_s = 2e9;
    p.group_s = 1e-6;
    IrCostValues acc = {{[IR_COST_BYTES_READ] = 4e3,
                         [IR_COST_BYTES_WRITTEN] = 4e3,
                         [IR_COST_ACCESSES] = 2e6,
                         [IR_COST_CHECKED] = 1e6,
                         [IR_COST_DISPATCHES] = 1},
                        IR_LIB_NONE,
                        100};
    CHECK(fabs(ir_predict_stage_s(&acc, &p) -
               (2e-3 + 0.5e-3 + 100 * 1e-6 + 1e-5)) < 1e-12);
    acc.groups = 0; /* unknown: no term */
    CHECK(fabs(ir_predict_stage_s(&acc, &p) - (2.5e-3 + 1e-5)) < 1e-12);
    acc.groups = 100; /* library stages: their fixed part covers their groups */
    acc.lib = IR_LIB_REDUCE;
    CHECK(fabs(ir_predict_stage_s(&acc, &p) - (2.5e-3 + 1e-5)) < 1e-12);

    IrCorrection c;
    ir_correction_init(&c);
    CHECK(ir_correction_apply(&c, 2.0) == 2.0);
    ir_correction_update(&c, 1.0, 2.0);
    CHECK(c.samples == 1 && fabs(c.factor - 2.0) < 1e-12);
    ir_correction_update(&c, 1.0, 2.0);
    CHECK(fabs(c.factor - 2.0) < 1e-12); /* a steady ratio stays */
    ir_correction_update(&c, 1.0, 0.5);
    /* median of {2, 2, 0.5}: one wild sample does not move it */
    CHECK(fabs(c.factor - 2.0) < 1e-12);
    ir_correction_update(&c, 0.0, 1.0); /* ignored */
    ir_correction_update(&c, 1.0, NAN);
    CHECK(c.samples == 3);
    ir_correction_update(&c, 1.0, 0.5);
    /* {2, 2, 0.5, 0.5}: the geometric mean of the middle two, 2 and 0.5 */
    CHECK(fabs(c.factor - 1.0) < 1e-12);
    /* 8 samples of 3: the window of 9 holds them and the last 0.5 */
    for (int n = 0; n < 8; n++) ir_correction_update(&c, 1.0, 3.0);
    CHECK(c.samples == 12 && fabs(c.factor - 3.0) < 1e-12);
    ir_correction_update(&c, 1.0, 3.0); /* now 9 threes */
    CHECK(fabs(c.factor - 3.0) < 1e-12);
    /* 5 of the window's 9 at 1.5 make 1.5 the median */
    for (int n = 0; n < 5; n++) ir_correction_update(&c, 1.0, 1.5);
    CHECK(fabs(c.factor - 1.5) < 1e-12);
    CHECK(fabs(ir_correction_apply(&c, 2.0) - 3.0) < 1e-12);
}

/* A calibration sample of one dispatch doing `work` of metric m. */
static IrCalibSample one_dispatch(IrCalibMeasure what, IrCostMetric m, double work, double seconds)
{
    IrCalibSample x;
    memset(&x, 0, sizeof x);
    x.what = what;
    x.cost.v[m] = work;
    x.cost.v[IR_COST_DISPATCHES] = 1;
    x.seconds = seconds;
    return x;
}

TEST(calibration_fit)
{
    /* synthetic device; the times follow the roofline model by hand */
    const double bw = 5e9, fl = 4e10, io = 2e10, disp = 2e-5, bar = 3e-6;
    IrCalibSample s[6];
    memset(s, 0, sizeof s);
    s[0].what = IR_CALIB_DISPATCH;
    s[0].cost.v[IR_COST_DISPATCHES] = 1;
    s[0].seconds = disp;
    s[1] = s[0];
    s[1].seconds = 5 * disp; /* a slower repeat: the best one counts */
    s[2].what = IR_CALIB_BARRIER;
    s[2].cost.v[IR_COST_DISPATCHES] = 2;
    s[2].seconds = 2 * disp + bar;
    s[3] = one_dispatch(IR_CALIB_BANDWIDTH, IR_COST_BYTES_READ, 64e6, 128e6 / bw + disp);
    s[3].cost.v[IR_COST_BYTES_WRITTEN] = 64e6;
    s[4] = one_dispatch(IR_CALIB_FLOPS, IR_COST_FLOPS, 1e9, 1e9 / fl + disp);
    s[5] = one_dispatch(IR_CALIB_INTOPS, IR_COST_INTOPS, 1e9, 1e9 / io + disp);
    IrDeviceProfile p;
    ir_profile_default(&p);
    CHECK(ir_profile_fit(&p, "dev", s, 6) == 5);
    CHECK(p.calibrated);
    CHECK(fabs(p.dispatch_s - disp) < 1e-15 && fabs(p.barrier_s - bar) < 1e-15);
    CHECK(fabs(p.bytes_per_s / bw - 1) < 1e-9 && fabs(p.flops_per_s / fl - 1) < 1e-9);
    CHECK(fabs(p.intops_per_s / io - 1) < 1e-9);
    CHECK_STR(p.device, "dev");
    /* nothing measured: the defaults stay */
    IrDeviceProfile d, e;
    ir_profile_default(&d);
    e = d;
    CHECK(ir_profile_fit(&e, "x", s, 0) == 0 && !e.calibrated && e.bytes_per_s == d.bytes_per_s);
    /* the table covers every measure, in order, with source text */
    for (int i = 0; i < IR_CALIB_N; i++) {
        CHECK(rt_calib_kernels[i].what == (IrCalibMeasure)i);
        CHECK(rt_calib_kernels[i].source && strstr(rt_calib_kernels[i].source, rt_calib_kernels[i].name));
        CHECK(rt_calib_kernels[i].size >= 1);
    }
}

/* The access, check and group figures from kernels that mix every term,
 * as the real micro-kernels do: the fit recovers a known profile. */
TEST(calibration_fit_accesses)
{
    IrDeviceProfile truth;
    ir_profile_default(&truth);
    truth.dispatch_s = 3e-5;
    truth.barrier_s = 0;
    truth.flops_per_s = 2e10;
    truth.intops_per_s = 1e10;
    truth.accesses_per_s = 5e8;
    truth.checked_per_s = 2e9;
    truth.group_s = 2e-7;
    truth.bytes_per_s = 6e9;
    /* what, flops, intops, accesses, checked, bytes, groups */
    const double k[][7] = {
        {IR_CALIB_FLOPS, 1e9, 2e6, 1e6, 0, 8e6, 4096},
        {IR_CALIB_INTOPS, 0, 1e9, 1e6, 0, 8e6, 4096},
        {IR_CALIB_ACCESS, 1.2e7, 0, 1.25e7, 0, 8e5, 750},
        {IR_CALIB_CHECKED, 1.2e7, 0, 1.27e7, 1.2e7, 8e5, 750},
        {IR_CALIB_GROUPS, 0, 0, 8e5, 0, 3e6, 12288},
        {IR_CALIB_BANDWIDTH, 3e6, 0, 2.4e6, 0, 3.6e7, 768},
    };
    IrCalibSample s[8];
    memset(s, 0, sizeof s);
    s[0].what = IR_CALIB_DISPATCH;
    s[0].cost.v[IR_COST_DISPATCHES] = 1;
    s[0].seconds = truth.dispatch_s;
    for (int i = 0; i < 6; i++) {
        IrCalibSample *x = &s[i + 1];
        x->what = (IrCalibMeasure)k[i][0];
        x->cost.v[IR_COST_FLOPS] = k[i][1];
        x->cost.v[IR_COST_INTOPS] = k[i][2];
        x->cost.v[IR_COST_ACCESSES] = k[i][3];
        x->cost.v[IR_COST_CHECKED] = k[i][4];
        x->cost.v[IR_COST_BYTES_READ] = k[i][5];
        x->cost.v[IR_COST_DISPATCHES] = 1;
        x->cost.groups = k[i][6];
        x->cost.lib = IR_LIB_NONE;
        double ops = k[i][1] / truth.flops_per_s + k[i][2] / truth.intops_per_s + k[i][3] / truth.accesses_per_s +
                     k[i][4] / truth.checked_per_s;
        /* the bandwidth map is memory-bound by construction */
        double t = x->what == IR_CALIB_BANDWIDTH ? k[i][5] / truth.bytes_per_s : ops;
        x->seconds = t + k[i][6] * truth.group_s + truth.dispatch_s;
    }
    IrDeviceProfile p;
    ir_profile_default(&p);
    CHECK(ir_profile_fit(&p, "dev", s, 7) == 7);
    CHECK_MSG(fabs(p.accesses_per_s / truth.accesses_per_s - 1) < 1e-3, "accesses %g", p.accesses_per_s);
    CHECK_MSG(fabs(p.checked_per_s / truth.checked_per_s - 1) < 1e-3, "checks %g", p.checked_per_s);
    CHECK_MSG(fabs(p.group_s / truth.group_s - 1) < 1e-3, "group %g", p.group_s);
    CHECK_MSG(fabs(p.flops_per_s / truth.flops_per_s - 1) < 1e-3, "flops %g", p.flops_per_s);
    CHECK_MSG(fabs(p.intops_per_s / truth.intops_per_s - 1) < 1e-3, "intops %g", p.intops_per_s);
    CHECK_MSG(fabs(p.bytes_per_s / truth.bytes_per_s - 1) < 1e-3, "bytes %g", p.bytes_per_s);
    /* checks that cost nothing measurable are free, not negative */
    s[4].seconds = s[3].seconds * 0.9;
    CHECK(ir_profile_fit(&p, "dev", s, 7) == 7 && p.checked_per_s >= 1e18);
}

/* Prediction uses the stages as they run: a fused stage reads x once, where
 * the source statements read it once each. */
TEST(cost_run_stages)
{
    IrKernel *src = kernel("rs");
    int x = buffer(src, "x", TY_FLOAT, "N", NULL), y = buffer(src, "y", TY_FLOAT, "N", NULL),
        z = buffer(src, "z", TY_FLOAT, "N", NULL);
    IrBuilder b;
    int i;
    IrSize *hi = ir_size_sym(A, 0);
    for (int s = 0; s < 2; s++) {
        IrStage *st = grid(src, PRIM_COPY, 1, NULL, &hi, &b, &i);
        st->elementwise = 1;
        store(&b, s ? z : y, 1, &i, load(&b, x, 1, &i));
    }
    IrKernel *opt = kernel("rs");
    buffer(opt, "x", TY_FLOAT, "N", NULL);
    buffer(opt, "y", TY_FLOAT, "N", NULL);
    buffer(opt, "z", TY_FLOAT, "N", NULL);
    IrStage *st = grid(opt, PRIM_COPY, 1, NULL, &hi, &b, &i);
    st->elementwise = 1;
    st->strategy = IR_STRAT_ELEMWISE;
    int v = load(&b, x, 1, &i);
    store(&b, y, 1, &i, v);
    store(&b, z, 1, &i, load(&b, x, 1, &i));
    IrKernelCost *c = ir_cost_kernel(A, src, opt);
    CHECK_STR(f(c, -1, IR_COST_BYTES_READ), "8*N"); /* the printed figures: per statement */
    CHECK(c->run.n == 1);
    int64_t n = 1000;
    IrCostValues rv, sv;
    CHECK(ir_cost_run_values(c, 0, &n, NULL, NULL, NULL, &rv));
    CHECK(rv.v[IR_COST_BYTES_READ] == 4000 && rv.v[IR_COST_BYTES_WRITTEN] == 8000);
    CHECK(rv.v[IR_COST_DISPATCHES] == 1 && rv.lib == IR_LIB_NONE);
    CHECK(!ir_cost_run_values(c, 1, &n, NULL, NULL, NULL, &rv));
    CHECK(ir_cost_values(c, 0, &n, NULL, NULL, NULL, &sv) && sv.v[IR_COST_BYTES_READ] == 4000);
    /* without opt there is nothing run-time to predict from */
    CHECK(ir_cost_kernel(A, src, NULL)->run.n == 0);
}

/* MATMUL as it runs (128x128x8 tiles): whole K-slices; in the edge tiles
 * only the invocations whose 8x8 outputs start inside C compute
 * (codegen/spirv_lib.c), but every one loads, so the operations count half
 * at whole tiles and half at M and N padded to 8; the source statement
 * stays 2*M*N*K. Expected values by hand. */
TEST(cost_run_matmul_tiles)
{
    static const char *src = "GPU_KERNEL mm\nGPU_PARAM a float[M][K]\nGPU_PARAM b float[K][N]\n"
                             "GPU_PARAM c float[M][N]\nGPU_THREAD_CODE:\n  PARALLEL_MATMUL a b -> c\nGPU_END\n";
    CgCompileOptions o = {.file = "t.px", .opt_level = 2, .cost = 1, .emit = CG_EMIT_IR};
    cg_target_default(&o.target, CG_ENV_VULKAN_1_1);
    CgCompiled r;
    CHECK(cg_compile(A, src, strlen(src), &o, &r) == CG_COMPILE_OK);
    IrKernelCost **cs = r.cost;
    CHECK(cs && cs[0] && cs[0]->run.n == 1);
    if (!cs || !cs[0] || cs[0]->run.n != 1) return;
    const IrKernel *k = cs[0]->k;
    int im = -1, ik = -1, in = -1;
    for (int i = 0; i < k->syms.n; i++) {
        if (!strcmp(k->syms.v[i].name, "M")) im = i;
        if (!strcmp(k->syms.v[i].name, "K")) ik = i;
        if (!strcmp(k->syms.v[i].name, "N")) in = i;
    }
    CHECK(im >= 0 && ik >= 0 && in >= 0 && k->syms.n == 3);
    if (im < 0 || ik < 0 || in < 0) return;
    /* {M, K, N, source flops, run flops} */
    static const double t[][5] = {
        {700, 700, 700, 2.0 * 700 * 700 * 700, 704 * (768.0 * 768 + 704 * 704)},
        {256, 256, 256, 2.0 * 256 * 256 * 256, 2.0 * 256 * 256 * 256},
        {1, 1, 1, 2.0, 8 * (128.0 * 128 + 8 * 8)},
        {300, 200, 500, 2.0 * 300 * 200 * 500, 200 * (384.0 * 512 + 304 * 504)},
        {7, 13, 5, 2.0 * 7 * 13 * 5, 16 * (128.0 * 128 + 8 * 8)},
    };
    for (int i = 0; i < 5; i++) {
        int64_t v[3];
        v[im] = (int64_t)t[i][0], v[ik] = (int64_t)t[i][1], v[in] = (int64_t)t[i][2];
        IrCostValues sv, rv;
        CHECK(ir_cost_values(cs[0], 0, v, NULL, NULL, NULL, &sv) && sv.v[IR_COST_FLOPS] == t[i][3]);
        CHECK_MSG(ir_cost_run_values(cs[0], 0, v, NULL, NULL, NULL, &rv) && rv.v[IR_COST_FLOPS] == t[i][4],
                  "%gx%gx%g: run flops %g, want %g", t[i][0], t[i][1], t[i][2], rv.v[IR_COST_FLOPS], t[i][4]);
        /* the compulsory traffic is the same either way */
        CHECK(rv.v[IR_COST_BYTES_READ] == sv.v[IR_COST_BYTES_READ]);
    }
}

/* The library terms: the line through two sizes, by hand. */
TEST(calibration_fit_library)
{
    IrDeviceProfile p;
    ir_profile_default(&p);
    const double disp = 2e-5, bw = 1e9, fl = 1e10;
    IrCalibSample s[5];
    memset(s, 0, sizeof s);
    s[0].what = IR_CALIB_DISPATCH;
    s[0].cost.v[IR_COST_DISPATCHES] = 1;
    s[0].seconds = disp;
    s[1] = one_dispatch(IR_CALIB_BANDWIDTH, IR_COST_BYTES_READ, 2e8, 2e8 / bw + disp);
    s[2] = one_dispatch(IR_CALIB_FLOPS, IR_COST_FLOPS, 1e10, 1e10 / fl + disp);
    /* scan of rows: 3 ms fixed, 5x the roofline, one dispatch */
    const RtCalibKernel *ck = &rt_calib_kernels[IR_CALIB_SCAN_ROWS];
    CHECK(ir_calib_lib[IR_CALIB_SCAN_ROWS] == IR_LIB_SCAN_ROWS && ck->small > 0 && ck->small < ck->size);
    for (int k = 3; k < 5; k++) {
        s[k].what = IR_CALIB_SCAN_ROWS;
        s[k].size = k == 3 ? ck->small : ck->size;
        s[k].at = k == 3 ? IR_CALIB_AT_SMALL : IR_CALIB_AT_SIZE;
        double bytes = k == 3 ? 1e4 : 1e8;
        s[k].cost.v[IR_COST_BYTES_READ] = bytes;
        s[k].cost.v[IR_COST_FLOPS] = bytes / 4; /* under the memory bound */
        s[k].cost.v[IR_COST_DISPATCHES] = 1;
        s[k].cost.groups = 64; /* no groups term for library stages */
        s[k].seconds = 3e-3 + 5 * bytes / bw + disp;
    }
    CHECK(ir_profile_fit(&p, "dev", s, 5) == 4);
    CHECK(fabs(p.lib_slowdown[IR_LIB_SCAN_ROWS] - 5) < 1e-9);
    CHECK(fabs(p.lib_fixed_s[IR_LIB_SCAN_ROWS] - 3e-3) < 1e-12);
    CHECK(p.lib_slowdown[IR_LIB_MATMUL] == 1 &&
          p.lib_fixed_s[IR_LIB_MATMUL] == 0); /* not measured */
    /* the prediction of a scan-of-rows stage uses them */
    IrCostValues v = {{[IR_COST_BYTES_READ] = 1e6, [IR_COST_DISPATCHES] = 1},
                      IR_LIB_SCAN_ROWS,
                      1000};
    CHECK(fabs(ir_predict_stage_s(&v, &p) - (5 * 1e6 / bw + 3e-3 + disp)) <
          1e-12);
    v.lib = IR_LIB_NONE;
    v.groups = 0;
    CHECK(fabs(ir_predict_stage_s(&v, &p) - (1e6 / bw + disp)) < 1e-12);
    /* a small run slower than the large one (noise): no fixed part */
    s[3].seconds = 1.0;
    CHECK(ir_profile_fit(&p, "dev", s, 5) == 4);
    CHECK(p.lib_fixed_s[IR_LIB_SCAN_ROWS] == 0 && p.lib_slowdown[IR_LIB_SCAN_ROWS] > 0);
    CHECK(p.lib_group_s[IR_LIB_SCAN_ROWS] == 0); /* no many-rows sample: no group figure */

    /* With the many-rows sample, the per-group cost too: a scan of rows of
     * 1 ms fixed, 20 us per group and 2x the roofline, whose long rows
     * launch extra, cheaper groups that the fit must not mistake for the
     * per-group figure (hi: 320 groups at 1 us beyond its 64 rows' 192) */
    CHECK(ck->rows_sym && ck->many_rows > ck->rows && ck->rows > 0);
    IrCalibSample r[6];
    memcpy(r, s, 3 * sizeof *s);
    const double rows_g[3] = {192, 192, 1152}, extra_g[3] = {0, 128, 0}, rbytes[3] = {1e4, 1e8, 6e4};
    for (int k = 0; k < 3; k++) {
        IrCalibSample *x = &r[3 + k];
        memset(x, 0, sizeof *x);
        x->what = IR_CALIB_SCAN_ROWS;
        x->size = k == 1 ? ck->size : ck->small;
        x->rows = k == 2 ? ck->many_rows : ck->rows;
        x->at = k == 2 ? IR_CALIB_AT_MANY_ROWS : k == 0 ? IR_CALIB_AT_SMALL : IR_CALIB_AT_SIZE;
        x->cost.v[IR_COST_BYTES_READ] = rbytes[k];
        x->cost.v[IR_COST_DISPATCHES] = 1;
        x->cost.groups = rows_g[k] + extra_g[k];
        x->seconds = 1e-3 + 20e-6 * rows_g[k] + 1e-6 * extra_g[k] + 2 * rbytes[k] / bw + disp;
    }
    ir_profile_default(&p);
    CHECK(ir_profile_fit(&p, "dev", r, 6) == 4);
    /* the extra groups are charged at the per-group figure, so the fit
     * lands near, not on, the figures; what matters is that it predicts
     * a square shape (1024 rows of short rows) close to the truth */
    CHECK(p.lib_group_s[IR_LIB_SCAN_ROWS] > 15e-6 &&
          p.lib_group_s[IR_LIB_SCAN_ROWS] < 25e-6);
    CHECK(p.lib_slowdown[IR_LIB_SCAN_ROWS] > 0 &&
          p.lib_fixed_s[IR_LIB_SCAN_ROWS] >= 0);
    IrCostValues sq = {{[IR_COST_BYTES_READ] = 4e6, [IR_COST_DISPATCHES] = 1},
                       IR_LIB_SCAN_ROWS,
                       3 * 1024};
    double truth = 1e-3 + 20e-6 * 3 * 1024 + 2 * 4e6 / bw + disp;
    CHECK(fabs(ir_predict_stage_s(&sq, &p) - truth) < 0.05 * truth);
    /* exact when every group costs the same */
    for (int k = 0; k < 3; k++) {
        IrCalibSample *x = &r[3 + k];
        x->seconds = 1e-3 + 20e-6 * x->cost.groups + 2 * rbytes[k] / bw + disp;
    }
    ir_profile_default(&p);
    CHECK(ir_profile_fit(&p, "dev", r, 6) == 4);
    CHECK(fabs(p.lib_group_s[IR_LIB_SCAN_ROWS] - 20e-6) < 1e-9);
    CHECK(fabs(p.lib_fixed_s[IR_LIB_SCAN_ROWS] - 1e-3) < 1e-9);
    CHECK(fabs(p.lib_slowdown[IR_LIB_SCAN_ROWS] - 2) < 1e-6);

    /* saved and loaded with the rest; bad figures refuse the file */
    char dir[] = "/tmp/px_test_lib_XXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/x.profile", dir);
    p.lib_slowdown[IR_LIB_MATMUL] = 12.5;
    p.lib_fixed_s[IR_LIB_MATMUL] = 4e-4;
    p.lib_group_s[IR_LIB_SOFTMAX] = 3e-6;
    IrDeviceProfile q;
    CHECK(rt_profile_save(&p, path) == 0 && rt_profile_load(&q, path) == 0);
    CHECK(q.lib_slowdown[IR_LIB_MATMUL] == 12.5 && q.lib_fixed_s[IR_LIB_MATMUL] == 4e-4);
    CHECK(q.lib_group_s[IR_LIB_SOFTMAX] == 3e-6 && q.lib_group_s[IR_LIB_SCAN_ROWS] == p.lib_group_s[IR_LIB_SCAN_ROWS]);
    CHECK(q.lib_slowdown[IR_LIB_SCAN_ROWS] == p.lib_slowdown[IR_LIB_SCAN_ROWS]);
    const char *base = "bytes_per_s 1e9\nflops_per_s 1\nintops_per_s 1\n" RATES "dispatch_s 0\nbarrier_s 0\n";
    char text[512];
    snprintf(text, sizeof text, "%sslowdown_matmul 0\n", base);
    CHECK(ir_profile_parse(&q, text) == -1);
    snprintf(text, sizeof text, "%sfixed_s_scan -1\n", base);
    CHECK(ir_profile_parse(&q, text) == -1);
    snprintf(text, sizeof text, "%sgroup_s_softmax -1\n", base);
    CHECK(ir_profile_parse(&q, text) == -1);
    snprintf(text, sizeof text, "%sgroup_s_softmax 2e-6\n", base); /* optional: 0 when absent */
    CHECK(ir_profile_parse(&q, text) == 0 && q.lib_group_s[IR_LIB_SOFTMAX] == 2e-6 &&
          q.lib_group_s[IR_LIB_SCAN_ROWS] == 0);
    snprintf(text, sizeof text, "%sslowdown_future_class 3\n", base); /* newer file: skipped */
    CHECK(ir_profile_parse(&q, text) == 0 && q.lib_slowdown[IR_LIB_MATMUL] == 1);
    /* the vec4 access of a class: optional, 1 when absent, within [1, 4] */
    snprintf(text, sizeof text, "%svec4_access_scan 2.5\n", base);
    CHECK(ir_profile_parse(&q, text) == 0 && q.lib_vec4_access[IR_LIB_SCAN] == 2.5 &&
          q.lib_vec4_access[IR_LIB_SOFTMAX] == 1 && q.lib_vec4_access[IR_LIB_NONE] == 1);
    snprintf(text, sizeof text, "%svec4_access_scan 0.5\n", base);
    CHECK(ir_profile_parse(&q, text) == -1);
    snprintf(text, sizeof text, "%svec4_access_transpose 5\n", base);
    CHECK(ir_profile_parse(&q, text) == -1);
    p.lib_vec4_access[IR_LIB_TRANSPOSE] = 2.75;
    CHECK(rt_profile_save(&p, path) == 0 && rt_profile_load(&q, path) == 0);
    CHECK(q.lib_vec4_access[IR_LIB_TRANSPOSE] == 2.75 && q.lib_vec4_access[IR_LIB_SCAN] == 1);

    /* the stream access rate of maps: optional, 0 (the gather rate) when
     * absent; fitted from the scalar bandwidth map: 3e6 accesses in 6 ms
     * beyond its dispatch (bytes do not bound it) */
    snprintf(text, sizeof text, "%sstream_accesses_per_s 5e8\n", base);
    CHECK(ir_profile_parse(&q, text) == 0 && q.stream_accesses_per_s == 5e8);
    CHECK(ir_profile_parse(&q, base) == 0 && q.stream_accesses_per_s == 0);
    snprintf(text, sizeof text, "%sstream_accesses_per_s -1\n", base);
    CHECK(ir_profile_parse(&q, text) == -1);
    IrCalibSample sm[2];
    memset(sm, 0, sizeof sm);
    sm[0].what = IR_CALIB_DISPATCH;
    sm[0].cost.v[IR_COST_DISPATCHES] = 1;
    sm[0].seconds = 2e-5;
    sm[1].what = IR_CALIB_BANDWIDTH;
    sm[1].at = IR_CALIB_AT_SCALAR;
    sm[1].cost.v[IR_COST_ACCESSES] = 3e6;
    sm[1].cost.v[IR_COST_BYTES_READ] = 1.2e7;
    sm[1].cost.v[IR_COST_DISPATCHES] = 1;
    sm[1].seconds = 6e-3 + 2e-5;
    ir_profile_default(&p);
    CHECK(ir_profile_fit(&p, "dev", sm, 2) == 2 && fabs(p.stream_accesses_per_s - 5e8) < 1);
    CHECK(rt_profile_save(&p, path) == 0 && rt_profile_load(&q, path) == 0 && q.stream_accesses_per_s == p.stream_accesses_per_s);

    /* fitted from the small, vec4 and scalar runs of a class: 1 ms fixed,
     * 4 ms of vec4 work, 8 ms of scalar work over the same elements: a
     * vector access costs 4 * 4 / 8 = 2 element accesses */
    CHECK(fabs(ir_calib_vec4_access(1e-3, 5e-3, 9e-3) - 2) < 1e-12);
    CHECK(ir_calib_vec4_access(1e-3, 2e-3, 1.5e-3) == 4); /* scalar faster: clamped */
    CHECK(ir_calib_vec4_access(1e-3, 9e-3, 40e-3) == 1);  /* more than 4x: clamped */
    CHECK(ir_calib_vec4_access(1e-3, 0.5e-3, 9e-3) == 1); /* no work measured: 1 */
    IrCalibSample vs[3];
    memset(vs, 0, sizeof vs);
    const IrCalibPoint at[3] = {IR_CALIB_AT_SMALL, IR_CALIB_AT_SIZE, IR_CALIB_AT_SCALAR};
    const double secs[3] = {1e-3, 5e-3, 1e-3 + 1.6 * 4e-3}; /* 4 / 1.6 = 2.5 */
    for (int k = 0; k < 3; k++) {
        vs[k].what = IR_CALIB_SCAN;
        vs[k].at = at[k];
        vs[k].size = k ? 4096 + (k == 2) : 64;
        vs[k].cost.v[IR_COST_BYTES_READ] = k ? 8 * 4096 : 8 * 64;
        vs[k].cost.v[IR_COST_DISPATCHES] = 3;
        vs[k].seconds = secs[k];
    }
    ir_profile_default(&p);
    CHECK(ir_profile_fit(&p, "dev", vs, 3) >= 2);
    CHECK(fabs(p.lib_vec4_access[IR_LIB_SCAN] - 2.5) < 1e-9 && p.lib_vec4_access[IR_LIB_NONE] == 1);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* A launch of the one kernel of `src`, compiled in ctx (*m and *k set as
 * far as they got); NULL when a step fails, which is a failed check. */
static PxLaunch *compiled_launch(PxContext *ctx, const char *src, PxModule **m, PxKernel **k)
{
    PxLaunch *l = NULL;
    CHECK(px_module_compile(ctx, src, strlen(src), "test.px", m, NULL) == PX_OK);
    CHECK(*m && px_module_kernel(*m, NULL, k) == PX_OK);
    CHECK(*k && px_launch_create(*k, &l) == PX_OK);
    return l;
}

/* What calibration fits the library classes on (rt_launch_run_values): the
 * figures the stage runs, as predictions use them. A 700^3 matmul runs 5x5
 * interior and 6+5 edge tiles of 128x128 over 88 K-slices of 8 (vec4
 * variants: K, N % 4 == 0, so each access moves 4 elements); K = 701 runs
 * the scalar variants; on a CPU device each dispatch's work counts whole
 * waves of its cores. Expected values by hand. */
/* Groups rounded up to whole waves of p (p 0: not modelled). */
static double waves(double g, int p) { return p > 0 ? ceil(g / p) * p : g; }
/* The groups a CPU device runs at once on Vulkan (lavapipe: one per core),
 * 0 elsewhere: the work of a stage there counts whole waves of them per
 * dispatch (runtime/predict.c, as_run). */
static int cpu_waves(const PxContext *ctx)
{
    return ctx->caps.info.is_cpu && !strcmp(px_context_backend(ctx), "vulkan") ? ctx->caps.parallel_groups : 0;
}

TEST(runtime_run_values)
{
    PxContext *ctx = NULL;
    char *err = NULL;
    if (px_context_create(NULL, &ctx, &err) != PX_OK) {
        CHECK_MSG(0, "no context: %s", err ? err : "?");
        px_free(err);
        return;
    }
    /* the work of a stage on a CPU device counts whole waves of its
     * parallel groups (one per core) per dispatch */
    int P = cpu_waves(ctx);
    PxModule *m = NULL;
    PxKernel *k = NULL;
    PxLaunch *l = compiled_launch(ctx, "GPU_KERNEL mm\nGPU_PARAM a float[M][K]\nGPU_PARAM b float[K][N]\n"
                                       "GPU_PARAM c float[M][N]\nGPU_THREAD_CODE:\n  PARALLEL_MATMUL a b -> c\n"
                                       "GPU_END\n", &m, &k);
    /* tiles, vec4 variants and groups are the Vulkan code's (the CPU
     * backend runs loops: no groups, no vec4) */
    int vk = !strcmp(px_context_backend(ctx), "vulkan");
    for (int t = 0; l && t < 2 && vk; t++) {
        int64_t K = t ? 701 : 700;
        CHECK(px_launch_set_size(l, "M", 700, "test") == PX_OK && px_launch_set_size(l, "N", 700, "test") == PX_OK &&
              px_launch_set_size(l, "K", K, "test") == PX_OK);
        IrCostValues v;
        CHECK(rt_launch_run_values(l, &v));
        double wf = waves(36, P) / 36; /* interior and edge tiles, one dispatch */
        CHECK(fabs(v.v[IR_COST_FLOPS] - 704 * (768.0 * 768 + 704 * 704) * wf) < 1e-3);
        double acc = 700.0 * K + K * 700.0 + 700.0 * 700;
        CHECK_MSG(fabs(v.v[IR_COST_ACCESSES] - (t ? acc : acc / 4) * wf) < 1e-6, "K %lld: accesses %g",
                  (long long)K, v.v[IR_COST_ACCESSES]);
        CHECK(v.groups == 25 + 11 && v.lib == IR_LIB_MATMUL);
        PxCost c; /* the statement's figures stay per element, unpadded */
        CHECK(px_launch_cost(l, -1, &c) == PX_OK && c.flops == 2.0 * 700 * 700 * K && c.accesses == acc);
        /* on Vulkan the dispatches that run: one, of every tile */
        CHECK(strcmp(px_context_backend(ctx), "vulkan") || c.dispatches == 1);
    }
    /* sizes that are multiples of the tile: the interior dispatch alone */
    CHECK(l && px_launch_set_size(l, "M", 256, "test") == PX_OK && px_launch_set_size(l, "N", 128, "test") == PX_OK &&
          px_launch_set_size(l, "K", 64, "test") == PX_OK);
    PxCost c1;
    CHECK(px_launch_cost(l, -1, &c1) == PX_OK && (strcmp(px_context_backend(ctx), "vulkan") || c1.dispatches == 1));
    if (l) px_launch_destroy(l);
    px_module_destroy(m);
    /* a scan's vec4 variant (N a multiple of 4) is charged its class's
     * vec4_access per 4 elements; the scalar one (N + 1) 1 per element */
    l = compiled_launch(ctx, "GPU_KERNEL sc\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\n"
                             "GPU_THREAD_CODE:\n  PARALLEL_SCAN SUM x -> y\nGPU_END\n", &m, &k);
    ctx->profile.lib_vec4_access[IR_LIB_SCAN] = 2.5;
    for (int t = 0; l && t < 2 && !strcmp(px_context_backend(ctx), "vulkan"); t++) { /* the CPU has no vec4 */
        int64_t N = t ? 4097 : 4096;
        CHECK(px_launch_set_size(l, "N", N, "test") == PX_OK);
        IrCostValues v;
        PxCost c;
        CHECK(rt_launch_run_values(l, &v) && px_launch_cost(l, -1, &c) == PX_OK && c.accesses > 0);
        /* one block of 4096: one group per pass; 4097: two blocks, so
         * two groups in the data passes, one in the partials pass */
        double wf = t ? (2 * waves(2, P) + waves(1, P)) / 5 : waves(1, P);
        CHECK_MSG(fabs(v.v[IR_COST_ACCESSES] - (t ? c.accesses : c.accesses / 4 * 2.5) * wf) < 1e-6,
                  "N %lld: accesses %g of %g", (long long)N, v.v[IR_COST_ACCESSES], c.accesses);
        /* three passes run, one variant of each */
        CHECK_MSG(strcmp(px_context_backend(ctx), "vulkan") || c.dispatches == 3, "dispatches %d", c.dispatches);
    }
    if (l) px_launch_destroy(l);
    px_module_destroy(m);
    /* an elementwise map's accesses at the stream rate, in gather
     * accesses: N % 4 != 0 runs the scalar variant, one per element */
    l = compiled_launch(ctx, "GPU_KERNEL mp\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\n"
                             "GPU_THREAD_CODE:\n  PARALLEL_MAP x -> y : x * 2.0\nGPU_END\n", &m, &k);
    ctx->profile.accesses_per_s = 2e8;
    ctx->profile.stream_accesses_per_s = 5e8;
    if (l && vk) {
        CHECK(px_launch_set_size(l, "N", 4097, "test") == PX_OK);
        IrCostValues v;
        PxCost c;
        CHECK(rt_launch_run_values(l, &v) && px_launch_cost(l, -1, &c) == PX_OK && c.accesses == 2 * 4097);
        double wf = c.groups > 0 ? waves(c.groups, P) / c.groups : 1;
        CHECK_MSG(fabs(v.v[IR_COST_ACCESSES] - 2 * 4097 * wf * 2e8 / 5e8) < 1e-6, "accesses %g", v.v[IR_COST_ACCESSES]);
    }
    if (l) px_launch_destroy(l);
    px_module_destroy(m);
    px_context_destroy(ctx);
}

/* The runtime's side (px.h): the profile a context loads, prediction before a
 * run, and the per-kernel correction learned from measured runs. The
 * expected factor is recomputed here from the measured times by the rule of
 * docs/COST.md (the first run of a launch is cold and teaches nothing). */
TEST(runtime_prediction_correction)
{
    char dir[] = "/tmp/px_test_rtcost_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    setenv("XDG_CACHE_HOME", dir, 1);
    PxContext *ctx = NULL;
    char *err = NULL;
    if (px_context_create(NULL, &ctx, &err) != PX_OK) {
        CHECK_MSG(0, "no context: %s", err ? err : "?");
        px_free(err);
        return;
    }
    PxProfile pp;
    px_context_profile(ctx, &pp);
    IrDeviceProfile d;
    ir_profile_default(&d);
    CHECK(!pp.calibrated && !strcmp(pp.source, "default") && pp.bytes_per_s == d.bytes_per_s &&
          pp.dispatch_s == d.dispatch_s);

    const char *src = "GPU_KERNEL sx\nGPU_PARAM a float\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\n"
                      "GPU_THREAD_CODE:\n    PARALLEL_MAP x y -> y : a * x + y\nGPU_END\n";
    PxModule *m = NULL;
    PxKernel *k = NULL;
    PxLaunch *l = compiled_launch(ctx, src, &m, &k);
    if (!l) goto out;
    CHECK(px_launch_set_size(l, "N", 4096, "test") == PX_OK);
    CHECK(px_launch_set_float(l, "a", 2.0f) == PX_OK);
    int n = -1;
    CHECK(px_kernel_correction(k, &n) == 1.0 && n == 0);
    PxCost c;
    CHECK(px_launch_cost(l, -1, &c) == PX_OK);
    /* 2N flops, 12N bytes, 3N accesses (none checked), one dispatch, on
     * the default profile by hand: memory-bound */
    CHECK(c.accesses == 3 * 4096 && c.checked_accesses == 0 && c.uniform_accesses == 0 && c.dispatches == 1);
    double wf = c.groups > 0 ? waves(c.groups, cpu_waves(ctx)) / c.groups : 1; /* one dispatch */
    double want = fmax(2 * 4096 / d.flops_per_s, 12 * 4096 / d.bytes_per_s) * wf + d.dispatch_s;
    CHECK(fabs(c.predicted_ns - want * 1e9) < 1e-3);
    double pred;
    CHECK(px_launch_predict_ns(l, -1, &pred) == PX_OK && pred == c.predicted_ns);
    CHECK(px_launch_predict_ns(l, 5, &pred) == PX_ERR_INVALID);
    double t[4], factor = 1;
    for (int i = 0; i < 4; i++) {
        CHECK(px_launch_run(l) == PX_OK);
        t[i] = px_launch_stage_time_ns(l, -1);
    }
    /* Whether to check the correction is the device's to say, not the
     * measured time's: a device with timestamps that measures nothing is
     * a failure, not a skip. */
    PxDeviceInfo di;
    px_device_info(ctx, &di);
    if (di.has_timestamps) {
        /* every warm run is measured and enters the factor: the median
         * of the three ratios */
        CHECK_MSG(t[1] > 0 && t[2] > 0 && t[3] > 0, "stage times %g %g %g ns", t[1], t[2], t[3]);
        double lo = fmin(t[1], fmin(t[2], t[3])), hi = fmax(t[1], fmax(t[2], t[3]));
        factor = (t[1] + t[2] + t[3] - lo - hi) / c.predicted_ns;
        double f = px_kernel_correction(k, &n);
        CHECK_MSG(n == 3 && fabs(f / factor - 1) < 1e-9, "factor %g (%d samples), want %g", f, n, factor);
        CHECK(px_launch_predict_ns(l, -1, &pred) == PX_OK && fabs(pred / (c.predicted_ns * factor) - 1) < 1e-9);
        /* a second launch of the same kernel shares the correction */
        PxLaunch *l2 = NULL;
        CHECK(px_launch_create(k, &l2) == PX_OK);
        CHECK(px_launch_set_size(l2, "N", 64, "test") == PX_OK && px_launch_set_float(l2, "a", 1.0f) == PX_OK);
        PxCost c2;
        CHECK(px_launch_cost(l2, -1, &c2) == PX_OK && px_launch_predict_ns(l2, -1, &pred) == PX_OK);
        CHECK(fabs(pred / (c2.predicted_ns * factor) - 1) < 1e-9);
        px_launch_destroy(l2);
    } else {
        printf("runtime_prediction_correction: no timestamps on this device; correction not checked\n");
    }
    px_kernel_correction_reset(k);
    CHECK(px_kernel_correction(k, &n) == 1.0 && n == 0);

    /* a mat-vec's v[k] is uniform: the device loads it once per subgroup,
     * so the prediction charges 1/subgroup of it (default profile: the
     * ops side decides) */
    {
        const char *mv = "GPU_KERNEL mv\nGPU_PARAM A float[M][K]\nGPU_PARAM v float[K]\nGPU_PARAM o float[M]\n"
                         "GPU_THREAD_CODE:\n    PARALLEL_FOR i IN 0..M {\n        var acc = 0.0\n"
                         "        for k IN 0..K {\n            acc += A[i][k] * v[k]\n        }\n"
                         "        o[i] = acc\n    }\nGPU_END\n";
        PxModule *m2 = NULL;
        PxKernel *k2 = NULL;
        PxLaunch *l2 = compiled_launch(ctx, mv, &m2, &k2);
        if (l2) {
            CHECK(px_launch_set_size(l2, "M", 256, "test") == PX_OK && px_launch_set_size(l2, "K", 64, "test") == PX_OK);
            PxCost cm;
            PxDeviceInfo di;
            px_device_info(ctx, &di);
            CHECK(px_launch_cost(l2, -1, &cm) == PX_OK);
            CHECK(cm.accesses == 2 * 256 * 64 + 256 && cm.uniform_accesses == 256 * 64 && cm.checked_accesses == 0);
            double sg = di.subgroup_size > 1 ? di.subgroup_size : 1;
            double acc = cm.accesses - cm.uniform_accesses * (1 - 1 / sg);
            double ops = cm.flops / d.flops_per_s + cm.int_ops / d.intops_per_s + acc / d.accesses_per_s;
            double mem = (cm.bytes_read + cm.bytes_written) / d.bytes_per_s;
            double w = fmax(ops, mem) + cm.groups * d.group_s + d.dispatch_s;
            CHECK_MSG(fabs(cm.predicted_ns - w * 1e9) < 1e-3, "predicted %g ns, want %g", cm.predicted_ns, w * 1e9);
        }
        px_launch_destroy(l2);
        px_module_destroy(m2);
    }
out:
    px_launch_destroy(l);
    px_module_destroy(m);
    px_context_destroy(ctx);

    /* a saved profile for the device is what the next context uses */
    PxContext *c1 = NULL;
    CHECK(px_context_create(NULL, &c1, NULL) == PX_OK);
    if (c1) {
        PxDeviceInfo di;
        px_device_info(c1, &di);
        px_context_destroy(c1);
        IrDeviceProfile p = d;
        p.bytes_per_s = 3e9;
        p.dispatch_s = 5e-6;
        p.accesses_per_s = 1e6; /* slow enough to decide the prediction */
        p.group_s = 1e-6;
        p.calibrated = 1;
        char path[1024];
        CHECK(rt_profile_path(path, sizeof path, di.name) && rt_profile_save(&p, path) == 0);
        CHECK(px_context_create(NULL, &c1, NULL) == PX_OK);
        if (c1) {
            px_context_profile(c1, &pp);
            CHECK(pp.calibrated && !strcmp(pp.source, path) && pp.bytes_per_s == 3e9 && pp.dispatch_s == 5e-6);
            CHECK(pp.accesses_per_s == 1e6);
            /* access-bound now; on Vulkan the map runs its vec4 variant
             * (4096 is a multiple of 4), where one access moves four
             * elements, and its groups pay group_s each */
            PxModule *m1 = NULL;
            PxKernel *k1 = NULL;
            PxLaunch *l1 = NULL;
            CHECK(px_module_compile(c1, src, strlen(src), "sx.px", &m1, NULL) == PX_OK);
            CHECK(m1 && px_module_kernel(m1, NULL, &k1) == PX_OK && px_launch_create(k1, &l1) == PX_OK);
            if (l1) {
                CHECK(px_launch_set_size(l1, "N", 4096, "test") == PX_OK && px_launch_set_float(l1, "a", 2.0f) == PX_OK);
                PxCost c1c;
                CHECK(px_launch_cost(l1, -1, &c1c) == PX_OK);
                int gpu = c1c.groups >= 0; /* -1 on the CPU backend */
                CHECK(!gpu || c1c.groups >= 1);
                double acc = gpu ? 3 * 4096 / 4.0 : 3 * 4096;
                double wf1 = gpu ? waves(c1c.groups, cpu_waves(c1)) / c1c.groups : 1;
                double w = fmax(2 * 4096 / p.flops_per_s + acc / 1e6, 12 * 4096 / 3e9) * wf1 +
                           (gpu ? c1c.groups * 1e-6 : 0) + 5e-6;
                CHECK_MSG(fabs(c1c.predicted_ns / (w * 1e9) - 1) < 1e-9, "predicted %g ns, want %g", c1c.predicted_ns,
                          w * 1e9);
                px_launch_destroy(l1);
            }
            px_module_destroy(m1);
            px_context_destroy(c1);
        }
    }
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    A = fe_arena_new();
    RUN(poly_canonical);
    RUN(calibration_fit_accesses);
    RUN(poly_max_dominates_overflow);
    RUN(poly_from_size_and_eval);
    RUN(cost_saxpy);
    RUN(cost_library_stages);
    RUN(cost_for_matmul);
    RUN(cost_branches_dead_const);
    RUN(cost_footprints);
    RUN(cost_dispatches_after_fusion);
    RUN(class_rules);
    RUN(print_text_json);
    RUN(profile_files);
    RUN(prediction);
    RUN(calibration_fit);
    RUN(cost_run_stages);
    RUN(cost_run_matmul_tiles);
    RUN(calibration_fit_library);
    RUN(cost_uniform);
    RUN(runtime_prediction_correction);
    RUN(runtime_run_values);
    fe_arena_free(A);
    return TEST_DONE();
}
