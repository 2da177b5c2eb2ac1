/* test_ir.c — IR builder, IrSize, printer and verifier. Kernels are built
 * through the builder and their text is compared with text written by hand
 * here; the verifier must accept them and reject broken ones (in a forked
 * child, since a verifier failure is fe_die: exit status 3). */
#include "ir/ir.h"
#include "tests/unit/test.h"
#include "tests/unit/cgtest.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static Arena *A;

static char *print_to_string(const IrKernel *k)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ir_print_kernel(f, k);
    fclose(f);
    char *r = fe_strdup(A, buf);
    free(buf);
    return r;
}

static int check_text(const char *got, const char *want)
{
    if (strcmp(got, want) == 0) return 1;
    fprintf(stderr, "--- want\n%s--- got\n%s---\n", want, got);
    return 0;
}

static Loc L(int line, int col) { Loc l = {line, col, 1, 0}; return l; }

static int add_sym(IrKernel *k, const char *name)
{
    return ir_sym_add(k, A, name, 0, L(1, 1));
}

static int add_scalar(IrKernel *k, const char *name, ScalarType t)
{
    return ir_scalar_add(k, A, name, t, L(1, 1));
}

static int add_buffer(IrKernel *k, const char *name, ScalarType t, int rank, IrSize **dims, int flags)
{
    return ir_buffer_add(k, A, name, t, rank, dims, flags, L(1, 1));
}

static void verify_test(void *m) { ir_verify(m, "test"); }

/* Verifier outcome, in process (a rejection unwinds to fe_protect): 0
 * accepted, FE_FAIL_INTERNAL rejected with a message naming the pass. */
static int verify_status(const IrModule *m)
{
    FeFail f;
    FeFailKind k = fe_protect(verify_test, (void *)m, &f);
    if (k == FE_FAIL_INTERNAL && !strstr(f.msg, "IR verification failed after test")) return 100;
    return (int)k;
}

/* saxpy: y = a * x + y over N. */
static IrModule *build_saxpy(IrKernel **out)
{
    IrModule *m = ir_module_new(A, "t.px");
    IrKernel *k = ir_kernel_new(m, "saxpy", L(1, 1));
    int N = add_sym(k, "N");
    IrSize *dn[1] = {ir_size_sym(A, N)};
    int pa = add_scalar(k, "a", TY_FLOAT);
    int px = add_buffer(k, "x", TY_FLOAT, 1, dn, IR_P_READ);
    int py = add_buffer(k, "y", TY_FLOAT, 1, dn, IR_P_READ | IR_P_WRITTEN);
    IrStage *s = ir_stage_add(k, A, IR_STAGE_GRID, PRIM_MAP, L(5, 5));
    s->rank = 1;
    s->lo[0] = ir_size_const(A, 0);
    s->hi[0] = ir_size_sym(A, N);
    s->itype[0] = TY_UINT;
    s->elementwise = 1;
    s->body = ir_block_new(A);
    IrBuilder b = {A, k, s->body, L(5, 5)};
    int i = ir_barg(&b, s->body, TY_UINT);
    int va = ir_emit(&b, IR_PARAM, TY_FLOAT, 0, NULL);
    ir_inst(k, va)->param = pa;
    int vx = ir_emit(&b, IR_LOAD, TY_FLOAT, 1, &i);
    ir_inst(k, vx)->param = px;
    int m1[2] = {va, vx};
    int prod = ir_emit(&b, IR_MUL, TY_FLOAT, 2, m1);
    int vy = ir_emit(&b, IR_LOAD, TY_FLOAT, 1, &i);
    ir_inst(k, vy)->param = py;
    int a1[2] = {prod, vy};
    int sum = ir_emit(&b, IR_ADD, TY_FLOAT, 2, a1);
    int st[2] = {i, sum};
    int so = ir_emit(&b, IR_STORE, TY_VOID, 2, st);
    ir_inst(k, so)->param = py;
    *out = k;
    return m;
}

TEST(test_saxpy)
{
    IrKernel *k;
    IrModule *m = build_saxpy(&k);
    CHECK(check_text(print_to_string(k),
                     "kernel saxpy class=NONE\n"
                     "  param a: float\n"
                     "  param x: float[N] read\n"
                     "  param y: float[N] read written\n"
                     "  sym N\n"
                     "  stage 0 grid[N] elementwise strategy=none   # PARALLEL_MAP at 5:5\n"
                     "    ^(%0: uint):\n"
                     "      %1 = param a : float\n"
                     "      %2 = load.checked x[%0] : float\n"
                     "      %3 = mul %1, %2 : float\n"
                     "      %4 = load.checked y[%0] : float\n"
                     "      %5 = add %3, %4 : float\n"
                     "      store.checked y[%0], %5\n"));
    CHECK(verify_status(m) == 0);
}

/* PARALLEL_FOR i IN 1..N { var acc = 0.0; for k IN 0..K { acc = acc + a[i][k] }
 *   if acc > 0.0 { acc = acc * 2.0 }; out[i] = acc } */
static IrModule *build_for(IrKernel **out, int broken)
{
    IrModule *m = ir_module_new(A, "t.px");
    IrKernel *k = ir_kernel_new(m, "rows", L(1, 1));
    k->cls = CLASS_REALTIME;
    k->deadline_ns = 16000000;
    int N = add_sym(k, "N"), K = add_sym(k, "K");
    IrSize *d2[2] = {ir_size_sym(A, N), ir_size_sym(A, K)};
    int pa = add_buffer(k, "a", TY_FLOAT, 2, d2, IR_P_READ);
    int po = add_buffer(k, "out", TY_FLOAT, 1, d2, IR_P_WRITTEN);
    IrStage *s = ir_stage_add(k, A, IR_STAGE_GRID, PRIM_FOR, L(6, 5));
    s->rank = 1;
    s->lo[0] = ir_size_const(A, 1);
    s->hi[0] = ir_size_sym(A, N);
    s->itype[0] = TY_UINT;
    s->body = ir_block_new(A);
    IrBuilder b = {A, k, s->body, L(6, 5)};
    int i = ir_barg(&b, s->body, TY_UINT);
    int zero = ir_const_float(&b, TY_FLOAT, 0.0);
    int lo = ir_const_int(&b, TY_UINT, 0);
    int hi = ir_emit(&b, IR_SIZE, TY_UINT, 0, NULL);
    ir_inst(k, hi)->param = K;
    ScalarType ft = TY_FLOAT;
    int iv, acc, res;
    ir_for(&b, lo, hi, ir_size_sym(A, K), 1, &zero, &ft, &iv, &acc, &res);
    IrBlock *outer = b.blk;
    b.blk = ir_inst(k, outer->ins.v[outer->ins.n - 2])->body;
    int idx[2] = {i, iv};
    int ld = ir_emit(&b, IR_LOAD, TY_FLOAT, 2, idx);
    ir_inst(k, ld)->param = pa;
    int ad[2] = {acc, ld};
    int nacc = ir_emit(&b, IR_ADD, TY_FLOAT, 2, ad);
    ir_yield(&b, 1, &nacc);
    b.blk = outer;
    int cz[2] = {res, zero};
    int cond = ir_emit(&b, IR_GT, TY_BOOL, 2, cz);
    int ifres;
    int ifop = ir_if(&b, cond, 1, &ft, &ifres);
    b.blk = ir_inst(k, ifop)->body;
    int two = ir_const_float(&b, TY_FLOAT, 2.0);
    int mu[2] = {res, two};
    int dbl = ir_emit(&b, IR_MUL, TY_FLOAT, 2, mu);
    ir_yield(&b, 1, &dbl);
    b.blk = ir_inst(k, ifop)->els;
    /* broken: the else branch yields a value defined inside the then branch */
    ir_yield(&b, 1, broken ? &dbl : &res);
    b.blk = outer;
    int st[2] = {i, ifres};
    int so = ir_emit(&b, IR_STORE, TY_VOID, 2, st);
    ir_inst(k, so)->param = po;
    ir_inst(k, so)->flags = IR_F_INBOUNDS;
    *out = k;
    return m;
}

TEST(test_for_if)
{
    IrKernel *k;
    IrModule *m = build_for(&k, 0);
    CHECK(check_text(print_to_string(k),
                     "kernel rows class=REALTIME deadline=16000000ns\n"
                     "  param a: float[N][K] read\n"
                     "  param out: float[N] written\n"
                     "  sym N\n"
                     "  sym K\n"
                     "  stage 0 grid[1..N] strategy=none   # PARALLEL_FOR at 6:5\n"
                     "    ^(%0: uint):\n"
                     "      %1 = const 0.0 : float\n"
                     "      %2 = const 0 : uint\n"
                     "      %3 = size K : uint\n"
                     "      %4 = for %5 = %2 to %3 iter(%6 = %1) -> float trip=K {\n"
                     "        %7 = load.checked a[%0][%5] : float\n"
                     "        %8 = add %6, %7 : float\n"
                     "        yield %8\n"
                     "      }\n"
                     "      %9 = gt %4, %1 : bool\n"
                     "      %10 = if %9 -> float {\n"
                     "        %11 = const 2.0 : float\n"
                     "        %12 = mul %4, %11 : float\n"
                     "        yield %12\n"
                     "      } else {\n"
                     "        yield %4\n"
                     "      }\n"
                     "      store out[%0], %10\n"));
    CHECK(verify_status(m) == 0);
    IrModule *bad = build_for(&k, 1);
    CHECK(verify_status(bad) == FE_FAIL_INTERNAL);
}

TEST(test_matmul_stage)
{
    IrModule *m = ir_module_new(A, "t.px");
    IrKernel *k = ir_kernel_new(m, "mm", L(1, 1));
    int M = add_sym(k, "M"), K = add_sym(k, "K"), N = add_sym(k, "N");
    IrSize *da[2] = {ir_size_sym(A, M), ir_size_sym(A, K)};
    IrSize *db[2] = {ir_size_sym(A, K), ir_size_sym(A, N)};
    IrSize *dc[2] = {ir_size_sym(A, M), ir_size_const(A, 8)};
    int pa = add_buffer(k, "A", TY_FLOAT, 2, da, IR_P_READ);
    int pb = add_buffer(k, "B", TY_FLOAT, 2, db, IR_P_READ);
    int pc = add_buffer(k, "C", TY_FLOAT, 2, dc, IR_P_WRITTEN | IR_P_IMPLICIT);
    IrStage *s = ir_stage_add(k, A, IR_STAGE_MATMUL, PRIM_MATMUL, L(5, 5));
    s->in[0] = pa;
    s->in[1] = pb;
    s->nin = 2;
    s->out = pc;
    s->strategy = IR_STRAT_MATMUL_TILED;
    s->sp[0] = 64; s->sp[1] = 64; s->sp[2] = 16; s->sp[3] = 4;
    CHECK(check_text(print_to_string(k),
                     "kernel mm class=NONE\n"
                     "  param A: float[M][K] read\n"
                     "  param B: float[K][N] read\n"
                     "  param C: float[M][8] written implicit\n"
                     "  sym M\n"
                     "  sym K\n"
                     "  sym N\n"
                     "  stage 0 matmul A B -> C strategy=matmul-tiled(64,64,16,4)   # PARALLEL_MATMUL at 5:5\n"));
    CHECK(verify_status(m) == 0);
    /* output aliasing an input is rejected */
    k->stages.v[0].out = pa;
    CHECK(verify_status(m) == FE_FAIL_INTERNAL);
    k->stages.v[0].out = pc;
    /* a 1-D operand of a matmul is rejected */
    k->params.v[pb].rank = 1;
    CHECK(verify_status(m) == FE_FAIL_INTERNAL);
}

TEST(test_verify_rejects)
{
    IrKernel *k;
    IrModule *m = build_saxpy(&k);
    IrBlock *body = k->stages.v[0].body;
    /* use before definition: swap the mul in front of the load it uses */
    int t = body->ins.v[1];
    body->ins.v[1] = body->ins.v[2];
    body->ins.v[2] = t;
    CHECK(verify_status(m) == FE_FAIL_INTERNAL);
    body->ins.v[2] = body->ins.v[1];
    body->ins.v[1] = t;
    CHECK(verify_status(m) == 0);
    /* type mismatch: add of float and uint */
    IrInst *add = ir_inst(k, body->ins.v[4]);
    int saved = add->a.v[1];
    add->a.v[1] = body->args.v[0];
    CHECK(verify_status(m) == FE_FAIL_INTERNAL);
    add->a.v[1] = saved;
    /* load with the wrong number of indices */
    FE_PUSH(A, ir_inst(k, body->ins.v[1])->a, body->args.v[0]);
    CHECK(verify_status(m) == FE_FAIL_INTERNAL);
    ir_inst(k, body->ins.v[1])->a.n--;
    /* a value placed twice */
    FE_PUSH(A, body->ins, body->ins.v[4]);
    CHECK(verify_status(m) == FE_FAIL_INTERNAL);
    body->ins.n--;
    CHECK(verify_status(m) == 0);
}

TEST(test_size)
{
    IrKernel *k;
    build_saxpy(&k);
    add_sym(k, "M");
    IrSize *N = ir_size_sym(A, 0), *M = ir_size_sym(A, 1);
    IrSize *c3 = ir_size_const(A, 3), *c0 = ir_size_const(A, 0), *c1 = ir_size_const(A, 1);
    int64_t c;
    CHECK(ir_size_is_const(ir_size_bin(A, SZ_MUL, c3, ir_size_const(A, 4)), &c) && c == 12);
    CHECK(ir_size_is_const(ir_size_bin(A, SZ_DIV, c3, c0), &c) && c == 0);
    CHECK(ir_size_is_const(ir_size_bin(A, SZ_REM, ir_size_const(A, -7), c3), &c) && c == -1);
    CHECK(ir_size_is_const(ir_size_bin(A, SZ_DIV, ir_size_const(A, -7), c3), &c) && c == -2);
    CHECK(ir_size_is_const(ir_size_bin(A, SZ_CEILDIV, ir_size_const(A, 7), c3), &c) && c == 3);
    CHECK(ir_size_is_const(ir_size_bin(A, SZ_CEILDIV, ir_size_const(A, 6), c3), &c) && c == 2);
    CHECK(ir_size_is_const(ir_size_bin(A, SZ_CEILDIV, ir_size_const(A, -7), c3), &c) && c == -2);
    CHECK(ir_size_bin(A, SZ_ADD, N, c0) == N);
    CHECK(ir_size_bin(A, SZ_MUL, c1, N) == N);
    CHECK(ir_size_is_const(ir_size_bin(A, SZ_MUL, N, c0), &c) && c == 0);
    CHECK(ir_size_is_const(ir_size_bin(A, SZ_SUB, N, ir_size_sym(A, 0)), &c) && c == 0);
    IrSize *f = ir_size_bin(A, SZ_CEILDIV, ir_size_bin(A, SZ_MUL, M, ir_size_bin(A, SZ_ADD, N, c3)),
                            ir_size_const(A, 256));
    CHECK(check_text(ir_size_str(A, k, f), "ceildiv((M * (N + 3)), 256)"));
    IrSize *g = ir_size_bin(A, SZ_MIN, ir_size_bin(A, SZ_SUB, N, c1), ir_size_param(A, 0));
    CHECK(check_text(ir_size_str(A, k, g), "min((N - 1), a)"));
    int64_t syms[2] = {10, 1000}, params[1] = {5};
    CHECK(ir_size_eval(f, syms, params) == (1000 * 13 + 255) / 256);
    CHECK(ir_size_eval(g, syms, params) == 5);
    CHECK(ir_size_equal(f, ir_size_bin(A, SZ_CEILDIV,
                                       ir_size_bin(A, SZ_MUL, M, ir_size_bin(A, SZ_ADD, N, c3)),
                                       ir_size_const(A, 256))));
    CHECK(!ir_size_equal(f, g));
    CHECK(!ir_size_equal(N, M));
    CHECK(!ir_size_equal(ir_size_sym(A, 0), ir_size_param(A, 0)));
}

TEST(test_names)
{
    CHECK(strcmp(ir_op_names[IR_DIV], "div") == 0);
    CHECK(strcmp(ir_op_names[IR_YIELD], "yield") == 0);
    CHECK(strcmp(ir_stage_kind_names[IR_STAGE_TRANSPOSE], "transpose") == 0);
    CHECK(strcmp(ir_strategy_names[IR_STRAT_TRANSPOSE_TILED], "transpose-tiled") == 0);
}

static IrModule *compile(const char *src, int level) { return cgtest_ir(A, src, level, NULL); }

static int count_op(const IrKernel *k, const IrBlock *b, IrOp op)
{
    int n = 0;
    for (int i = 0; i < b->ins.n; i++) {
        const IrInst *in = &k->insts.v[b->ins.v[i]];
        n += in->op == op;
        if (in->body) n += count_op(k, in->body, op);
        if (in->els) n += count_op(k, in->els, op);
    }
    return n;
}

TEST(test_passes)
{
    const char *two_maps = "GPU_KERNEL f\nGPU_PARAM x float[N]\nGPU_PARAM t float[N]\nGPU_PARAM y float[N]\n"
                           "GPU_THREAD_CODE:\n    PARALLEL_MAP x -> t : x * 2.0\n"
                           "    PARALLEL_MAP t -> y : t + 1.0\nGPU_END\n";
    IrModule *m0 = compile(two_maps, 0), *m2 = compile(two_maps, 2);
    CHECK(m0 && m2);
    if (!m0 || !m2) return;
    CHECK(m0->kernels.v[0]->stages.n == 2);
    CHECK(m2->kernels.v[0]->stages.n == 1);
    /* t is stored and not reloaded once fused: one load (x), two stores */
    const IrKernel *k2 = m2->kernels.v[0];
    CHECK(count_op(k2, k2->stages.v[0].body, IR_LOAD) == 1);
    CHECK(count_op(k2, k2->stages.v[0].body, IR_STORE) == 2);
    /* a loop whose carried var is never used, and an unused let, vanish */
    const char *dead = "GPU_KERNEL g\nGPU_PARAM x float[N]\nGPU_THREAD_CODE:\n"
                       "    PARALLEL_FOR i IN 0..N {\n        var s = 0.0\n        let u = x[i] * 3.0\n"
                       "        for k IN 0..N { s += 1.0 }\n        x[i] = 1.0\n    }\nGPU_END\n";
    IrModule *md = compile(dead, 1), *mk = compile(dead, 0);
    CHECK(md && mk);
    if (!md || !mk) return;
    const IrKernel *kd = md->kernels.v[0], *kk = mk->kernels.v[0];
    CHECK(count_op(kk, kk->stages.v[0].body, IR_FOR) == 1);
    CHECK(count_op(kd, kd->stages.v[0].body, IR_FOR) == 0);
    CHECK(count_op(kd, kd->stages.v[0].body, IR_LOAD) == 0);
    CHECK(kd->stages.v[0].body->ins.n == 2); /* const 1.0, store */
    /* bounds: the store at the index is proved; at O0 it is not */
    const IrInst *st = &kd->insts.v[kd->stages.v[0].body->ins.v[1]];
    CHECK(st->op == IR_STORE && (st->flags & IR_F_INBOUNDS));
    CHECK(count_op(kk, kk->stages.v[0].body, IR_STORE) == 1);
}

int main(void)
{
    A = fe_arena_new();
    RUN(test_saxpy);
    RUN(test_for_if);
    RUN(test_matmul_stage);
    RUN(test_verify_rejects);
    RUN(test_size);
    RUN(test_names);
    RUN(test_passes);
    fe_arena_free(A);
    return TEST_DONE();
}
