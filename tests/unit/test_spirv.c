/* test_spirv.c — the SPIR-V backend on IR built through the ir.h builder:
 * every module must pass SPIRV-Tools' validator for every target env, the
 * launch metadata must describe it (bindings, push constants, dispatch
 * formulas evaluated against hand-computed numbers), half needs Float16,
 * and the validator really rejects broken words. */
#include "codegen/cg.h"
#include "tests/unit/test.h"

#include <jansson.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static Arena *A;

static Loc L(int line, int col) { Loc l = {line, col, 1, 0}; return l; }

static int add_sym(IrKernel *k, const char *name) {
    return ir_sym_add(k, A, name, 0, L(1, 1));
}

static int add_scalar(IrKernel *k, const char *name, ScalarType t) {
    return ir_scalar_add(k, A, name, t, L(2, 11));
}

static int add_buffer(IrKernel *k, const char *name, ScalarType t, int rank, IrSize **dims) {
    return ir_buffer_add(k, A, name, t, rank, dims, 0, L(3, 11));
}

static int emitp(IrBuilder *b, IrOp op, ScalarType t, int param, int n, const int *args) {
    int id = ir_emit(b, op, t, n, args);
    ir_inst(b->k, id)->param = param;
    return id;
}
static int bin(IrBuilder *b, IrOp op, ScalarType t, int x, int y) {
    int a[2] = {x, y};
    return ir_emit(b, op, t, 2, a);
}

static IrStage *grid(IrKernel *k, int rank, IrSize **hi, ScalarType it, IrStrategy strat) {
    IrStage *s = ir_stage_add(k, A, IR_STAGE_GRID, rank == 1 ? PRIM_MAP : PRIM_FOR, L(5, 5));
    s->rank = rank;
    for (int d = 0; d < rank; d++) {
        s->lo[d] = ir_size_const(A, 0);
        s->hi[d] = hi[d];
        s->itype[d] = it;
    }
    s->body = ir_block_new(A);
    s->strategy = strat;
    return s;
}

/* saxpy: y = a * x + y over N, elementwise, checked loads and stores */
static IrModule *build_saxpy(int inbounds) {
    IrModule *m = ir_module_new(A, "t.px");
    IrKernel *k = ir_kernel_new(m, "saxpy", L(1, 1));
    int N = add_sym(k, "N");
    IrSize *dn[1] = {ir_size_sym(A, N)};
    int pa = add_scalar(k, "a", TY_FLOAT);
    int px = add_buffer(k, "x", TY_FLOAT, 1, dn);
    int py = add_buffer(k, "y", TY_FLOAT, 1, dn);
    IrStage *s = grid(k, 1, dn, TY_UINT, IR_STRAT_ELEMWISE);
    s->sp[0] = 256;
    s->sp[1] = 4;
    IrBuilder b = {A, k, s->body, L(5, 5)};
    int i = ir_barg(&b, s->body, TY_UINT);
    int va = emitp(&b, IR_PARAM, TY_FLOAT, pa, 0, NULL);
    int vx = emitp(&b, IR_LOAD, TY_FLOAT, px, 1, &i);
    int vy = emitp(&b, IR_LOAD, TY_FLOAT, py, 1, &i);
    int sum = bin(&b, IR_ADD, TY_FLOAT, bin(&b, IR_MUL, TY_FLOAT, va, vx), vy);
    int st[2] = {i, sum};
    int so = emitp(&b, IR_STORE, TY_VOID, py, 2, st);
    if (inbounds) {
        ir_inst(k, vx)->flags |= IR_F_INBOUNDS;
        ir_inst(k, vy)->flags |= IR_F_INBOUNDS;
        ir_inst(k, so)->flags |= IR_F_INBOUNDS;
    }
    return m;
}

/* PARALLEL_FOR i IN 0..M, j IN 0..N over int data: a loop with a carried
 * accumulator, an if with a result, int / and %, shifts, conversions,
 * round, clamp, select; out[i][j] = ... */
static IrModule *build_for(ScalarType ft) {
    IrModule *m = ir_module_new(A, "t.px");
    IrKernel *k = ir_kernel_new(m, "loops", L(1, 1));
    int M = add_sym(k, "M"), N = add_sym(k, "N"), K = add_sym(k, "K");
    IrSize *dmk[2] = {ir_size_sym(A, M), ir_size_sym(A, K)};
    IrSize *dmn[2] = {ir_size_sym(A, M), ir_size_sym(A, N)};
    int pdiv = add_scalar(k, "d", TY_INT);
    int ps = add_scalar(k, "s", ft);
    int pa = add_buffer(k, "a", TY_INT, 2, dmk);
    int po = add_buffer(k, "out", ft, 2, dmn);
    IrStage *s = grid(k, 2, dmn, TY_UINT, IR_STRAT_GRID);
    s->sp[0] = 16;
    s->sp[1] = 8;
    IrBuilder b = {A, k, s->body, L(6, 5)};
    int i = ir_barg(&b, s->body, TY_UINT);
    int j = ir_barg(&b, s->body, TY_UINT);
    int zero = ir_const_int(&b, TY_UINT, 0);
    int kk = ir_emit(&b, IR_SIZE, TY_UINT, 0, NULL);
    ir_inst(k, kk)->param = K;
    int init = ir_const_int(&b, TY_INT, 0);
    ScalarType ct[1] = {TY_INT};
    int iv, carried, res;
    int forid = ir_for(&b, zero, kk, ir_size_sym(A, K), 1, &init, ct, &iv, &carried, &res);
    IrBlock *outer = b.blk;
    b.blk = ir_inst(k, forid)->body;
    int idx[2] = {i, iv};
    int v = emitp(&b, IR_LOAD, TY_INT, pa, 2, idx);
    int dv = emitp(&b, IR_PARAM, TY_INT, pdiv, 0, NULL);
    int q = bin(&b, IR_DIV, TY_INT, v, dv);
    int r = bin(&b, IR_REM, TY_INT, v, dv);
    int sh = bin(&b, IR_SHL, TY_INT, q, ir_const_int(&b, TY_UINT, 33));
    int sr = bin(&b, IR_SHR, TY_INT, sh, ir_const_int(&b, TY_INT, 1));
    int nx = bin(&b, IR_ADD, TY_INT, carried, bin(&b, IR_XOR, TY_INT, sr, r));
    ir_yield(&b, 1, &nx);
    b.blk = outer;
    int cond = bin(&b, IR_GT, TY_BOOL, res, ir_const_int(&b, TY_INT, 0));
    ScalarType rt[1] = {ft};
    int ifres;
    int ifid = ir_if(&b, cond, 1, rt, &ifres);
    b.blk = ir_inst(k, ifid)->body;
    int f1 = ir_emit(&b, IR_CONV, ft, 1, &res);
    int call_args[1] = {f1};
    int rounded = emitp(&b, IR_CALL, ft, BI_ROUND, 1, call_args);
    ir_yield(&b, 1, &rounded);
    b.blk = ir_inst(k, ifid)->els;
    int sv = emitp(&b, IR_PARAM, ft, ps, 0, NULL);
    int cl[3] = {sv, ir_const_float(&b, ft, -1.0), ir_const_float(&b, ft, 1.0)};
    int clamped = emitp(&b, IR_CALL, ft, BI_CLAMP, 3, cl);
    ir_yield(&b, 1, &clamped);
    b.blk = outer;
    int neg = ir_emit(&b, IR_NEG, ft, 1, &ifres);
    int isel[3] = {bin(&b, IR_LT, TY_BOOL, i, j), ifres, neg};
    int selv = ir_emit(&b, IR_SELECT, ft, 3, isel);
    int st[3] = {i, j, selv};
    emitp(&b, IR_STORE, TY_VOID, po, 3, st);
    return m;
}

/* target with subgroup arithmetic (subgroup size 8, as lavapipe) when set */
static int use_subgroups;

static CgModule *compile(IrModule *m, CgTargetEnv env, int f16, Diags *d) {
    CgOptions o;
    memset(&o, 0, sizeof o);
    cg_target_default(&o.target, env);
    o.target.float16 = f16;
    if (use_subgroups) o.target.subgroups = 1, o.target.subgroup_size = 8;
    o.opt_level = 2;
    return cg_spirv(A, d, m, &o);
}

static Diags *diags(void) {
    Diags *d = fe_alloc(A, sizeof *d);
    fe_diags_init(d, A, "t.px", "", 0);
    return d;
}

static char *meta_text(const CgModule *cm) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cg_meta_print(f, cm);
    fclose(f);
    char *r = fe_strdup(A, buf);
    free(buf);
    return r;
}

static int64_t groups(const CgDispatch *d, int c, int64_t *syms, int64_t *params) {
    return ir_size_eval(d->groups[c], syms, params);
}

TEST(test_saxpy_valid) {
    for (int env = 0; env <= CG_ENV_VULKAN_1_3; env++)
        for (int inb = 0; inb < 2; inb++) {
            Diags *d = diags();
            CgModule *cm = compile(build_saxpy(inb), (CgTargetEnv)env, 1, d);
            CHECK(cm != NULL && d->nerrors == 0);
            if (!cm) continue;
            char *msg = NULL;
            CHECK_MSG(cg_spirv_validate(A, cm->words, cm->nwords, (CgTargetEnv)env, &msg),
                      "%s", msg);
            CHECK(cm->words[1] == cg_spirv_version((CgTargetEnv)env));
        }
}

TEST(test_saxpy_meta) {
    CgModule *cm = compile(build_saxpy(0), CG_ENV_VULKAN_1_1, 1, diags());
    CHECK(cm && cm->kernels.n == 1);
    if (!cm) return;
    const CgLaunch *l = &cm->kernels.v[0];
    /* bindings: x (read only), y (written); push: a then N, then the
     * running dispatch's group counts x, y, z (grid-stride strides) */
    CHECK(l->bindings.n == 2);
    CHECK(l->bindings.v[0].index == 1 && l->bindings.v[0].readonly == 1);
    CHECK(l->bindings.v[1].index == 2 && l->bindings.v[1].readonly == 0);
    CHECK(l->push.n == 5 && l->push_size == 20);
    CHECK(l->push.v[0].kind == CG_PUSH_PARAM && l->push.v[0].index == 0 && l->push.v[0].offset == 0);
    CHECK(l->push.v[1].kind == CG_PUSH_SYM && l->push.v[1].index == 0 && l->push.v[1].offset == 4);
    for (int c = 0; c < 3; c++)
        CHECK(l->push.v[2 + c].kind == CG_PUSH_GROUPS && l->push.v[2 + c].index == c &&
              l->push.v[2 + c].offset == 8 + 4 * c);
    /* two variants: vec4 (map4) when N % 4 == 0, else scalar (map); never both */
    CHECK(l->dispatches.n == 2 && !l->dispatches.v[0].barrier_before &&
          !l->dispatches.v[1].barrier_before);
    CHECK(l->dispatches.v[0].local[0] == 256 && l->dispatches.v[1].local[0] == 256);
    /* vec4: N / (256 threads * 4 vec4 * 4) per group: 1024 -> 1, 16M ->
     * 4096, 2^30 -> capped at 65535; 1025 (not a multiple of 4) -> 0.
     * scalar: 256 * 4 per group, only when N % 4 != 0: 1025 -> 2,
     * 1027 -> 2, 4097 -> 5; multiples of 4 -> 0 */
    int64_t params[3] = {0, 0, 0};
    int64_t n1[1] = {1024}, n2[1] = {16 << 20}, n3[1] = {1 << 30}, n0[1] = {0}, n5[1] = {1025};
    int64_t n7[1] = {1027}, n9[1] = {4097}, n4[1] = {4};
    const CgDispatch *dv = &l->dispatches.v[0], *dd = &l->dispatches.v[1];
    CHECK(groups(dv, 0, n1, params) == 1 && groups(dd, 0, n1, params) == 0);
    CHECK(groups(dv, 0, n4, params) == 1 && groups(dd, 0, n4, params) == 0);
    CHECK(groups(dv, 0, n5, params) == 0 && groups(dd, 0, n5, params) == 2);
    CHECK(groups(dv, 0, n7, params) == 0 && groups(dd, 0, n7, params) == 2);
    CHECK(groups(dv, 0, n9, params) == 0 && groups(dd, 0, n9, params) == 5);
    CHECK(groups(dv, 0, n2, params) == 4096 && groups(dd, 0, n2, params) == 0);
    CHECK(groups(dv, 0, n3, params) == 65535 && groups(dd, 0, n3, params) == 0);
    CHECK(groups(dv, 0, n0, params) == 0 && groups(dd, 0, n0, params) == 0);
    CHECK(groups(dv, 1, n2, params) == 1 && groups(dv, 2, n2, params) == 1);
    CHECK(groups(dd, 1, n5, params) == 1 && groups(dd, 2, n5, params) == 1);
    char *js = meta_text(cm);
    CHECK(strstr(js, "\"entry\": \"saxpy__s0_map\"") != NULL);
    CHECK(strstr(js, "\"entry\": \"saxpy__s0_map4\"") != NULL);
    CHECK(strstr(js, "\"readonly\": true") != NULL);
    json_error_t je;
    json_t *root = json_loads(js, 0, &je);
    json_t *members = json_object_get(
        json_object_get(json_array_get(json_object_get(root, "kernels"), 0), "push_constants"), "members");
    json_t *sym = json_pack("{s:i, s:s, s:i, s:s, s:s}", "offset", 4, "kind", "sym", "index", 0, "name", "N", "type", "uint");
    json_t *gz = json_pack("{s:i, s:s, s:i, s:s, s:s}", "offset", 16, "kind", "groups", "index", 2, "name", "groups.z",
                           "type", "uint");
    int has_sym = 0, has_gz = 0;
    size_t mi;
    json_t *mv;
    json_array_foreach(members, mi, mv) {
        has_sym |= json_equal(mv, sym);
        has_gz |= json_equal(mv, gz);
    }
    CHECK(has_sym && has_gz);
    json_decref(sym);
    json_decref(gz);
    json_decref(root);
    /* no entry point reads NumWorkgroups (a sliced dispatch would see its slice's count) */
    char *txt = cg_spirv_disasm(A, cm->words, cm->nwords, CG_ENV_VULKAN_1_1);
    CHECK(txt && !strstr(txt, "NumWorkgroups"));
}

TEST(test_loops_valid) {
    for (int env = 0; env <= CG_ENV_VULKAN_1_3; env++) {
        CgModule *cm = compile(build_for(TY_FLOAT), (CgTargetEnv)env, 1, diags());
        CHECK(cm != NULL);
        if (!cm) continue;
        const CgLaunch *l = &cm->kernels.v[0];
        CHECK(l->dispatches.n == 1);
        const CgDispatch *dd = &l->dispatches.v[0];
        /* x walks N (innermost, 16 wide), y walks M (8 high) */
        CHECK(dd->local[0] == 16 && dd->local[1] == 8 && dd->local[2] == 1);
        int64_t syms[3] = {100, 1000, 7}, params[4] = {0};
        CHECK(groups(dd, 0, syms, params) == 63);  /* ceil(1000/16) */
        CHECK(groups(dd, 1, syms, params) == 13);  /* ceil(100/8) */
        CHECK(groups(dd, 2, syms, params) == 1);
        /* d (int) and s (float) pushed, then M N K, then the group counts */
        CHECK(l->push.n == 8 && l->push_size == 32);
        CHECK(l->push.v[5].kind == CG_PUSH_GROUPS && l->push.v[7].index == 2);
        CHECK(l->bindings.n == 2 && l->bindings.v[0].readonly && !l->bindings.v[1].readonly);
    }
}

TEST(test_half) {
    Diags *d = diags();
    CgModule *cm = compile(build_for(TY_HALF), CG_ENV_VULKAN_1_1, 0, d);
    CHECK(cm == NULL && d->nerrors == 1);
    CHECK(d->nerrors == 1 && strstr(d->v.v[0].msg, "half") != NULL);
    d = diags();
    cm = compile(build_for(TY_HALF), CG_ENV_VULKAN_1_1, 1, d);
    CHECK(cm != NULL && d->nerrors == 0);
    if (!cm) return;
    const CgLaunch *l = &cm->kernels.v[0];
    CHECK(l->bindings.v[1].elem == TY_HALF && l->bindings.v[1].elem_size == 2);
    CHECK(l->push.v[1].type == TY_FLOAT); /* the half scalar travels as f32 */
    char *txt = cg_spirv_disasm(A, cm->words, cm->nwords, CG_ENV_VULKAN_1_1);
    CHECK(txt && strstr(txt, "OpCapability Float16") && strstr(txt, "StorageBuffer16BitAccess"));
}

TEST(test_validator_rejects) {
    CgModule *cm = compile(build_saxpy(0), CG_ENV_VULKAN_1_1, 1, diags());
    CHECK(cm != NULL);
    if (!cm) return;
    uint32_t *w = malloc(cm->nwords * 4);
    memcpy(w, cm->words, cm->nwords * 4);
    w[3] = 2; /* id bound far too small */
    char *msg = NULL;
    CHECK(!cg_spirv_validate(A, w, cm->nwords, CG_ENV_VULKAN_1_1, &msg) && msg);
    CHECK(!cg_spirv_validate(A, w, 3, CG_ENV_VULKAN_1_1, &msg));
    free(w);
}

TEST(test_disasm) {
    CgModule *cm = compile(build_saxpy(0), CG_ENV_VULKAN_1_1, 1, diags());
    CHECK(cm != NULL);
    if (!cm) return;
    char *txt = cg_spirv_disasm(A, cm->words, cm->nwords, CG_ENV_VULKAN_1_1);
    CHECK(txt != NULL);
    if (!txt) return;
    CHECK(strstr(txt, "OpEntryPoint GLCompute") && strstr(txt, "\"saxpy__s0_map\""));
    CHECK(strstr(txt, "LocalSize 256 1 1") != NULL);
    CHECK(strstr(txt, "NonWritable") != NULL);
    /* checked accesses branch around the load: out of range reads 0 */
    CHECK(strstr(txt, "OpSelectionMerge") != NULL);
    CgModule *cm2 = compile(build_saxpy(1), CG_ENV_VULKAN_1_1, 1, diags());
    char *t2 = cm2 ? cg_spirv_disasm(A, cm2->words, cm2->nwords, CG_ENV_VULKAN_1_1) : NULL;
    CHECK(t2 && !strstr(t2, "OpSelectionMerge")); /* in bounds: no checks */
}


/* 70 buffer params, all read or written by one grid stage: from SPIR-V 1.4
 * (vulkan1.2, 1.3) the entry point's interface lists every global it uses,
 * here 70 storage buffers, the push constants and the builtins. Compiled
 * in a child: an interface cut short fails validation inside cg_spirv,
 * which exits (internal error). */
#define MANY_BUFS 70
static IrModule *build_many_buffers(void) {
    IrModule *m = ir_module_new(A, "t.px");
    IrKernel *k = ir_kernel_new(m, "many", L(1, 1));
    int N = add_sym(k, "N");
    IrSize *dn[1] = {ir_size_sym(A, N)};
    int p[MANY_BUFS];
    for (int j = 0; j < MANY_BUFS; j++)
        p[j] = add_buffer(k, fe_sprintf(A, "b%d", j), TY_FLOAT, 1, dn);
    IrStage *s = grid(k, 1, dn, TY_UINT, IR_STRAT_ELEMWISE);
    s->sp[0] = 64;
    s->sp[1] = 1;
    IrBuilder b = {A, k, s->body, L(5, 5)};
    int i = ir_barg(&b, s->body, TY_UINT);
    int sum = emitp(&b, IR_LOAD, TY_FLOAT, p[0], 1, &i);
    for (int j = 1; j < MANY_BUFS - 1; j++)
        sum = bin(&b, IR_ADD, TY_FLOAT, sum, emitp(&b, IR_LOAD, TY_FLOAT, p[j], 1, &i));
    int st[2] = {i, sum};
    emitp(&b, IR_STORE, TY_VOID, p[MANY_BUFS - 1], 2, st);
    return m;
}

TEST(test_many_buffers) {
    for (int env = 0; env <= CG_ENV_VULKAN_1_3; env++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            Diags *d = diags();
            CgModule *cm = compile(build_many_buffers(), (CgTargetEnv)env, 1, d);
            if (!cm || d->nerrors) _exit(10);
            char *msg = NULL;
            if (!cg_spirv_validate(A, cm->words, cm->nwords, (CgTargetEnv)env, &msg)) _exit(11);
            if (cm->kernels.v[0].bindings.n != MANY_BUFS) _exit(12);
            /* the longest entry point interface: from 1.4 the 70 buffers
             * (or their vec4 views) and the push constants, at least;
             * before, the builtins only */
            size_t most = 0;
            for (size_t at = 5; at < cm->nwords && cm->words[at] >> 16; at += cm->words[at] >> 16) {
                if ((cm->words[at] & 0xffff) != 15 /* OpEntryPoint */) continue;
                size_t len = strlen((const char *)&cm->words[at + 3]) / 4 + 1;
                size_t nif = (cm->words[at] >> 16) - 3 - len;
                if (nif > most) most = nif;
            }
            int v14 = cg_spirv_version((CgTargetEnv)env) >= 0x00010400;
            _exit((v14 ? most >= MANY_BUFS + 1 : most <= 8) ? 0 : 14);
        }
        int st = 0;
        CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "env %d: child status %d", env, st);
    }
}

/* One library stage over fresh params: in (and in2 for matmul) -> out. */
static IrModule *build_lib(IrStageKind kind, ScalarType et, int rank, FeReduceOp rop, IrStrategy strat,
                           int sp0, int sp1) {
    IrModule *m = ir_module_new(A, "t.px");
    IrKernel *k = ir_kernel_new(m, "lib", L(1, 1));
    int M = add_sym(k, "M"), N = add_sym(k, "N"), K = add_sym(k, "K");
    IrSize *sm = ir_size_sym(A, M), *sn = ir_size_sym(A, N), *sk = ir_size_sym(A, K);
    IrStage *s;
    FePrim prim = kind == IR_STAGE_MATMUL ? PRIM_MATMUL : kind == IR_STAGE_REDUCE ? PRIM_REDUCE
                  : kind == IR_STAGE_SCAN ? PRIM_SCAN : kind == IR_STAGE_SOFTMAX ? PRIM_SOFTMAX
                                                                 : PRIM_TRANSPOSE;
    if (kind == IR_STAGE_MATMUL) {
        IrSize *da[2] = {sm, sk}, *db[2] = {sk, sn}, *dc[2] = {sm, sn};
        int a = add_buffer(k, "a", et, 2, da), b = add_buffer(k, "b", et, 2, db);
        int c = add_buffer(k, "c", et, 2, dc);
        s = ir_stage_add(k, A, kind, prim, L(4, 5));
        s->in[0] = a, s->in[1] = b, s->nin = 2, s->out = c;
        s->sp[0] = 64, s->sp[1] = 64, s->sp[2] = 16, s->sp[3] = 4;
    } else {
        IrSize *din[2] = {sm, sn};
        IrSize **dinp = rank == 2 ? din : &din[1];
        int a = add_buffer(k, "a", et, rank, dinp);
        IrSize *dout[2] = {sn, sm}, *one = ir_size_const(A, 1);
        int o;
        if (kind == IR_STAGE_REDUCE) o = add_buffer(k, "r", et, 1, rank == 2 ? &sm : &one);
        else if (kind == IR_STAGE_TRANSPOSE) o = add_buffer(k, "b", et, 2, dout);
        else o = add_buffer(k, "b", et, rank, dinp);
        s = ir_stage_add(k, A, kind, prim, L(4, 5));
        s->in[0] = a, s->nin = 1, s->out = o;
        s->sp[0] = sp0, s->sp[1] = sp1;
    }
    s->rop = rop;
    s->strategy = strat;
    (void)sk;
    return m;
}

static const CgLaunch *lib_ok(IrModule *m, int ndisp) {
    for (int env = 0; env <= CG_ENV_VULKAN_1_3; env++) {
        Diags *d = diags();
        CgModule *cm = compile(m, (CgTargetEnv)env, 1, d);
        CHECK(cm != NULL && d->nerrors == 0);
        if (!cm) return NULL;
        CHECK_MSG(cm->kernels.v[0].dispatches.n == ndisp, "dispatches %d, want %d",
                  cm->kernels.v[0].dispatches.n, ndisp);
        if (env == CG_ENV_VULKAN_1_3) return &cm->kernels.v[0];
    }
    return NULL;
}

/* Every library stage validates for every env, with and without subgroup
 * arithmetic. Dispatch counts: scans have one-block and looped variants
 * of their data passes, 32-bit ones each in vec4 and scalar (9), half ones
 * not (5); subgroup softmax has a vec4 and a scalar variant for float; a
 * 128x128x8x8 float matmul has the interior and the edge tile kernels,
 * each in a vec4 and a scalar variant. */
TEST(test_lib_valid) {
    static const ScalarType ts[] = {TY_FLOAT, TY_INT, TY_UINT, TY_HALF};
    for (use_subgroups = 0; use_subgroups < 2; use_subgroups++)
        for (int ti = 0; ti < 4; ti++) {
            ScalarType t = ts[ti];
            int nscan = t == TY_HALF ? 5 : 9;
            for (int rop = RED_SUM; rop <= RED_PROD; rop++) {
                lib_ok(build_lib(IR_STAGE_REDUCE, t, 1, (FeReduceOp)rop, IR_STRAT_REDUCE_TREE, 256, 64), 2);
                lib_ok(build_lib(IR_STAGE_REDUCE, t, 2, (FeReduceOp)rop, IR_STRAT_REDUCE_ROWS, 64, 0), 1);
            }
            lib_ok(build_lib(IR_STAGE_SCAN, t, 1, RED_SUM, IR_STRAT_SCAN_3PASS, 256, 0), nscan);
            lib_ok(build_lib(IR_STAGE_SCAN, t, 2, RED_SUM, IR_STRAT_SCAN_3PASS, 128, 0), nscan);
            lib_ok(build_lib(IR_STAGE_SCAN, t, 1, RED_SUM, IR_STRAT_SCAN_3PASS, 64, 8), nscan);
            lib_ok(build_lib(IR_STAGE_TRANSPOSE, t, 2, RED_SUM, IR_STRAT_TRANSPOSE_TILED, 16, 0), 1);
            /* transpose-block: block4 and direct, direct only for half */
            lib_ok(build_lib(IR_STAGE_TRANSPOSE, t, 2, RED_SUM, IR_STRAT_TRANSPOSE_BLOCK, 16, 0),
                   t == TY_HALF ? 1 : 2);
            lib_ok(build_lib(IR_STAGE_TRANSPOSE, t, 2, RED_SUM, IR_STRAT_TRANSPOSE_BLOCK, 8, 0),
                   t == TY_HALF ? 1 : 2);
            if (t == TY_FLOAT || t == TY_HALF) {
                int nsm = use_subgroups && t == TY_FLOAT ? 2 : 1;
                lib_ok(build_lib(IR_STAGE_SOFTMAX, t, 2, RED_SUM, IR_STRAT_SOFTMAX_ROW, 64, 0), nsm);
                lib_ok(build_lib(IR_STAGE_SOFTMAX, t, 1, RED_SUM, IR_STRAT_SOFTMAX_ROW, 64, 0), nsm);
                lib_ok(build_lib(IR_STAGE_MATMUL, t, 2, RED_SUM, IR_STRAT_MATMUL_TILED, 0, 0), 1);
                IrModule *mm = build_lib(IR_STAGE_MATMUL, t, 2, RED_SUM, IR_STRAT_MATMUL_TILED, 0, 0);
                IrStage *ms = &mm->kernels.v[0]->stages.v[0];
                ms->sp[0] = 128, ms->sp[1] = 128, ms->sp[2] = 8, ms->sp[3] = 8;
                lib_ok(mm, t == TY_FLOAT ? 4 : 1);
            }
        }
    use_subgroups = 0;
}

TEST(test_lib_meta) {
    /* reduce-tree: partial groups min(ceil(N/(4*256*16)), 64) (16 vec4 per
     * invocation), one final group, scratch of one partial per group,
     * barrier between the passes */
    const CgLaunch *l = lib_ok(build_lib(IR_STAGE_REDUCE, TY_FLOAT, 1, RED_SUM, IR_STRAT_REDUCE_TREE, 256, 64), 2);
    if (l) {
        int64_t p[1] = {0}, n1[3] = {0, 1000, 0}, n2[3] = {0, 1 << 24, 0}, n3[3] = {0, 100000, 0};
        CHECK(ir_size_eval(l->dispatches.v[0].groups[0], n1, p) == 1);
        CHECK(ir_size_eval(l->dispatches.v[0].groups[0], n3, p) == 7);
        CHECK(ir_size_eval(l->dispatches.v[0].groups[0], n2, p) == 64);
        CHECK(ir_size_eval(l->dispatches.v[1].groups[0], n2, p) == 1);
        CHECK(!l->dispatches.v[0].barrier_before && l->dispatches.v[1].barrier_before);
        CHECK(l->scratch.n == 1 && ir_size_eval(l->scratch.v[0].bytes, n2, p) == 256);
        CHECK(ir_size_eval(l->scratch.v[0].bytes, n3, p) == 28);
        CHECK(l->bindings.n == 3 && l->bindings.v[2].kind == CG_BIND_SCRATCH);
        CHECK(l->bindings.v[0].readonly && !l->bindings.v[1].readonly && !l->bindings.v[2].readonly);
    }
    /* matmul 64x64 tiles, 16x16 invocations: C[M][N] groups (ceil(N/64), ceil(M/64)) */
    l = lib_ok(build_lib(IR_STAGE_MATMUL, TY_FLOAT, 2, RED_SUM, IR_STRAT_MATMUL_TILED, 0, 0), 1);
    if (l) {
        int64_t p[1] = {0}, sz[3] = {100, 1000, 7};
        const CgDispatch *d = &l->dispatches.v[0];
        CHECK(d->local[0] == 16 && d->local[1] == 16);
        CHECK(ir_size_eval(d->groups[0], sz, p) == 16 && ir_size_eval(d->groups[1], sz, p) == 2);
    }
    /* matmul 128x128x8, 8x8 per invocation: one 1-D group per tile in one
     * dispatch: the interior kernel alone when M and N are multiples of
     * 128, else the one with the edge body too; vec4 variant when K and N
     * are multiples of 4, scalar one else. Sizes are {M, N, K}. */
    IrModule *mm = build_lib(IR_STAGE_MATMUL, TY_FLOAT, 2, RED_SUM, IR_STRAT_MATMUL_TILED, 0, 0);
    IrStage *ms = &mm->kernels.v[0]->stages.v[0];
    ms->sp[0] = 128, ms->sp[1] = 128, ms->sp[2] = 8, ms->sp[3] = 8;
    l = lib_ok(mm, 4);
    if (l) {
        int64_t p[1] = {0}, fit[3] = {256, 384, 64}, odd[3] = {300, 1000, 700}, oddk[3] = {256, 384, 7};
        const CgDispatch *d[4];
        static const char *const names[4] = {"lib__s0_tiles128", "lib__s0_tiles128s", "lib__s0_edges128",
                                             "lib__s0_edges128s"};
        for (int i = 0; i < 4; i++) {
            d[i] = &l->dispatches.v[i];
            CHECK_MSG(!strcmp(d[i]->entry, names[i]), "%s, want %s", d[i]->entry, names[i]);
            CHECK(!d[i]->barrier_before);
            CHECK(d[i]->vec_width == (i % 2 ? 0 : 4)); /* vec4 loads and stores, or scalar */
            CHECK(ir_size_eval(d[i]->groups[1], odd, p) == 1 && ir_size_eval(d[i]->groups[2], odd, p) == 1);
        }
        /* 256 x 384, K = 64: 2 x 3 full tiles, no edge */
        CHECK(ir_size_eval(d[0]->groups[0], fit, p) == 6);
        for (int i = 1; i < 4; i++) CHECK(ir_size_eval(d[i]->groups[0], fit, p) == 0);
        /* 300 x 1000, K = 700: 2 x 7 full tiles, the last column (3 tiles)
         * and the last row (7 tiles): 3 x 8 */
        CHECK(ir_size_eval(d[2]->groups[0], odd, p) == 24);
        for (int i = 0; i < 4; i++) CHECK(i == 2 || ir_size_eval(d[i]->groups[0], odd, p) == 0);
        /* K = 7: the scalar interior variant */
        CHECK(ir_size_eval(d[1]->groups[0], oddk, p) == 6);
        for (int i = 0; i < 4; i++) CHECK(i == 1 || ir_size_eval(d[i]->groups[0], oddk, p) == 0);
    }
    /* scan of a 2-D M x N, G = 128, 16 per invocation: blocks of 2048,
     * chunks = blocks while at most 2048. Dispatches: pass 1 one-block
     * vec4 (0), scalar (1), looped vec4 (2), scalar (3); pass 2 (4);
     * pass 3 likewise (5..8). One-block variants when bpc is 1 and the
     * rows fit the group cap; vec4 ones for rows of a multiple of 4. */
    l = lib_ok(build_lib(IR_STAGE_SCAN, TY_INT, 2, RED_SUM, IR_STRAT_SCAN_3PASS, 128, 0), 9);
    if (l) {
        int64_t p[1] = {0}, sz[3] = {70000, 10000, 0}, so[3] = {3, 10001, 0};
        int64_t big[3] = {1, 2048LL * 2048 * 3 + 1, 0};
        const CgDispatch *d = l->dispatches.v;
        /* 70000 rows (over the cap) of 10000: looped vec4, 5 chunks */
        for (int i = 0; i < 9; i++)
            CHECK_MSG(ir_size_eval(d[i].groups[0], sz, p) == (i == 2 || i == 7 ? 5 : i == 4 ? 1 : 0),
                      "dispatch %d: %lld groups", i, (long long)ir_size_eval(d[i].groups[0], sz, p));
        CHECK(ir_size_eval(d[2].groups[1], sz, p) == 65535);
        CHECK(ir_size_eval(l->scratch.v[0].bytes, sz, p) == 70000LL * 5 * 4);
        /* 3 rows of 10001: one-block scalar */
        for (int i = 0; i < 9; i++)
            CHECK_MSG(ir_size_eval(d[i].groups[0], so, p) == (i == 1 || i == 6 ? 5 : i == 4 ? 1 : 0),
                      "dispatch %d: %lld groups", i, (long long)ir_size_eval(d[i].groups[0], so, p));
        CHECK(ir_size_eval(d[1].groups[1], so, p) == 3);
        /* 6145 blocks: 4 per chunk, 1537 chunks (<= 2048): looped scalar */
        CHECK(ir_size_eval(d[3].groups[0], big, p) == 1537 && ir_size_eval(d[8].groups[0], big, p) == 1537);
        CHECK(ir_size_eval(d[1].groups[0], big, p) == 0 && ir_size_eval(d[6].groups[0], big, p) == 0);
        for (int i = 0; i < 9; i++) {
            CHECK_MSG(d[i].barrier_before == (i == 4 || i == 5), "dispatch %d barrier_before", i);
            CHECK_MSG(d[i].vec_width == (i == 0 || i == 2 || i == 5 || i == 7 ? 4 : 0), "dispatch %d vec_width", i);
        }
    }
}

int main(void) {
    A = fe_arena_new();
    RUN(test_saxpy_valid);
    RUN(test_saxpy_meta);
    RUN(test_loops_valid);
    RUN(test_half);
    RUN(test_validator_rejects);
    RUN(test_disasm);
    RUN(test_many_buffers);
    RUN(test_lib_valid);
    RUN(test_lib_meta);
    int r = TEST_DONE();
    fe_arena_free(A);
    return r;
}
