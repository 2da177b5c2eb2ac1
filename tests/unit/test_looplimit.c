/* test_looplimit.c — CgDispatch.loop_iters (codegen/loops.c), the bound on
 * the loop back-edges one invocation executes, for every library dispatch
 * and for grid stages, against numbers worked out by hand from the
 * strategies' loop structure (spirv_lib.c / spirv_grid.c headers) and the
 * counting model (a loop entered once and running t times costs t + 1,
 * plus t times its body); the driver table (runtime/limits.c); and the
 * saturating evaluator. */
#include "codegen/cg.h"
#include "runtime/vk.h"
#include "tests/unit/test.h"
#include "tests/unit/cgtest.h"

#include <stdarg.h>
#include <stdint.h>

static Arena *A;

static const char *SRC =
    "GPU_KERNEL mm\n"
    "GPU_PARAM a float[M][K]\n"
    "GPU_PARAM b float[K][N]\n"
    "GPU_PARAM c float[M][N]\n"
    "GPU_THREAD_CODE:\n"
    "    PARALLEL_MATMUL a b → c\n"
    "GPU_END\n"
    "GPU_KERNEL red\n"
    "GPU_PARAM x float[N]\n"
    "GPU_PARAM s float[1]\n"
    "GPU_THREAD_CODE:\n"
    "    PARALLEL_REDUCE SUM x → s\n"
    "GPU_END\n"
    "GPU_KERNEL rows\n"
    "GPU_PARAM x float[M][N]\n"
    "GPU_PARAM r float[M]\n"
    "GPU_THREAD_CODE:\n"
    "    PARALLEL_REDUCE SUM x → r\n"
    "GPU_END\n"
    "GPU_KERNEL scan\n"
    "GPU_PARAM x float[N]\n"
    "GPU_PARAM y float[N]\n"
    "GPU_THREAD_CODE:\n"
    "    PARALLEL_SCAN SUM x → y\n"
    "GPU_END\n"
    "GPU_KERNEL smax\n"
    "GPU_PARAM x float[M][N]\n"
    "GPU_PARAM y float[M][N]\n"
    "GPU_THREAD_CODE:\n"
    "    PARALLEL_SOFTMAX x → y\n"
    "GPU_END\n"
    "GPU_KERNEL tr\n"
    "GPU_PARAM x float[M][N]\n"
    "GPU_PARAM y float[N][M]\n"
    "GPU_THREAD_CODE:\n"
    "    PARALLEL_TRANSPOSE x → y\n"
    "GPU_END\n"
    "GPU_KERNEL add\n"
    "GPU_PARAM a float[N]\n"
    "GPU_PARAM b float[N]\n"
    "GPU_PARAM c float[N]\n"
    "GPU_THREAD_CODE:\n"
    "    PARALLEL_ADD a b → c\n"
    "GPU_END\n"
    "GPU_KERNEL branchy\n"
    "GPU_PARAM out float[R][C]\n"
    "GPU_PARAM n int\n"
    "GPU_PARAM m int\n"
    "GPU_THREAD_CODE:\n"
    "    PARALLEL_FOR i IN 0..R, j IN 0..C {\n"
    "        var acc = 0.0\n"
    "        if i > j {\n"
    "            for k IN 0..n { acc += 1.0 }\n"
    "        } else {\n"
    "            for k IN 0..m {\n"
    "                for q IN 0..2 { acc += 1.0 }\n"
    "            }\n"
    "        }\n"
    "        out[i][j] = acc\n"
    "    }\n"
    "GPU_END\n";

/* The module for a target with subgroup arithmetic of 8 lanes (lavapipe)
 * or without any (pxcc's default). */
static CgModule *compile(int subgroups) {
    CgOptions o;
    memset(&o, 0, sizeof o);
    cg_target_default(&o.target, CG_ENV_VULKAN_1_1);
    if (subgroups) o.target.subgroups = 1, o.target.subgroup_size = 8;
    IrModule *m = cgtest_ir(A, SRC, 2, &o.target);
    if (!m) return NULL;
    o.opt_level = 2;
    Diags d2;
    memset(&d2, 0, sizeof d2);
    fe_diags_init(&d2, A, "t.px", SRC, strlen(SRC));
    return cg_spirv(A, &d2, m, &o);
}

static const CgLaunch *launch(const CgModule *cm, const char *kernel) {
    for (int i = 0; i < cm->kernels.n; i++)
        if (!strcmp(cm->kernels.v[i].kernel->name, kernel)) return &cm->kernels.v[i];
    return NULL;
}

/* Sizes and params by name: "M", 4, "N", 8, ..., NULL. Unnamed ones are 0. */
static void bind(const IrKernel *k, int64_t *syms, int64_t *params, va_list ap) {
    for (int i = 0; i < 16; i++) syms[i] = params[i] = 0;
    for (const char *n; (n = va_arg(ap, const char *));) {
        int64_t v = va_arg(ap, int64_t);
        for (int i = 0; i < k->syms.n; i++)
            if (!strcmp(k->syms.v[i].name, n)) syms[i] = v;
        for (int i = 0; i < k->params.n; i++)
            if (!strcmp(k->params.v[i].name, n)) params[i] = v;
    }
}

/* loop_iters of kernel's dispatch named `<kernel>__s0_<pass>` at the given
 * values; -1 when there is no such dispatch or its groups are 0 (a host
 * skips it). */
static int64_t iters(const CgModule *cm, const char *kernel, const char *pass, ...) {
    const CgLaunch *l = launch(cm, kernel);
    if (!l) return -2;
    char entry[128];
    snprintf(entry, sizeof entry, "%s__s0_%s", kernel, pass);
    int64_t syms[16], params[16];
    va_list ap;
    va_start(ap, pass);
    bind(l->kernel, syms, params, ap);
    va_end(ap);
    for (int i = 0; i < l->dispatches.n; i++) {
        const CgDispatch *d = &l->dispatches.v[i];
        if (strcmp(d->entry, entry)) continue;
        for (int c = 0; c < 3; c++)
            if (ir_size_eval(d->groups[c], syms, params) <= 0) return -1;
        if (!d->loop_iters) return -3;
        return cg_loops_eval(d->loop_iters, syms, params);
    }
    return -2;
}

#define EQ(got, want)                                                                         \
    do {                                                                                      \
        int64_t g_ = (got), w_ = (want);                                                      \
        CHECK_MSG(g_ == w_, "%s: got %lld, want %lld", #got, (long long)g_, (long long)w_);   \
    } while (0)

TEST(test_every_dispatch_bounded) {
    for (int sg = 0; sg < 2; sg++) {
        CgModule *cm = compile(sg);
        CHECK(cm != NULL);
        if (!cm) continue;
        for (int i = 0; i < cm->kernels.n; i++)
            for (int j = 0; j < cm->kernels.v[i].dispatches.n; j++)
                CHECK_MSG(cm->kernels.v[i].dispatches.v[j].loop_iters != NULL, "%s has no loop_iters",
                          cm->kernels.v[i].dispatches.v[j].entry);
    }
}

/* MATMUL 128x128x8, 8x8 per invocation: one group per tile. Without edge
 * tiles (M, N multiples of 128) tiles128 (vec4) or tiles128s (scalar)
 * walks the tiles x the interior's K/8 full slices then a loop of
 * min(K % 8, 1) partial ones (I). With edge tiles edges128 / edges128s
 * walks every tile x either I or the edge's ceil(K/8) checked slices (E):
 * the branch is uniform in a group, so max(I, E) + 2 (the other arm's
 * leaving passes). Every loop level adds 1 per entry. */
TEST(test_matmul) {
    CgModule *cm = compile(0);
    if (!cm) { CHECK(0); return; }
    /* M = N = 256: 4 tiles, one per group; K = 2^20: 131072 full slices,
     * no partial one. I = 131073 + 1; tiles: 1 * (1 + 131074) + 1 */
    EQ(iters(cm, "mm", "tiles128", "M", (int64_t)256, "N", (int64_t)256, "K", (int64_t)1 << 20, NULL), 131076);
    EQ(iters(cm, "mm", "tiles128s", "M", (int64_t)256, "N", (int64_t)256, "K", (int64_t)1 << 20, NULL), -1);
    EQ(iters(cm, "mm", "edges128", "M", (int64_t)256, "N", (int64_t)256, "K", (int64_t)1 << 20, NULL), -1);
    /* K = 2^20 + 1 is not a multiple of 4: the scalar variant, one partial
     * slice. I = 131073 + 2; tiles: 131077 */
    EQ(iters(cm, "mm", "tiles128s", "M", (int64_t)256, "N", (int64_t)256, "K", (int64_t)(1 << 20) + 1, NULL),
       131077);
    EQ(iters(cm, "mm", "tiles128", "M", (int64_t)256, "N", (int64_t)256, "K", (int64_t)(1 << 20) + 1, NULL), -1);
    /* without edge tiles K/8 + 4 <= 65535: K <= 524248 */
    EQ(iters(cm, "mm", "tiles128", "M", (int64_t)128, "N", (int64_t)128, "K", (int64_t)524248, NULL), 65535);
    /* with them K/8 + 6 <= 65535: K <= 524232. M = 129: 2 tiles, one an
     * edge. I = 65529 + 1 + 1, E = 65530: 65531 + 2; tiles: 65535 */
    EQ(iters(cm, "mm", "edges128", "M", (int64_t)129, "N", (int64_t)128, "K", (int64_t)524232, NULL), 65535);
    /* M = 2 * 128 * 65535 rows: 131070 tiles, the group count caps at
     * 65535, so each invocation walks 2 tiles; K = 8: one slice.
     * I = 2 + 1; tiles: 2 * (1 + 3) + 1 = 9 */
    EQ(iters(cm, "mm", "tiles128", "M", (int64_t)2 * 128 * 65535, "N", (int64_t)128, "K", (int64_t)8, NULL), 9);
    /* M = N = 300, K = 9 (scalar, K % 4 != 0): 3 x 3 tiles, 2 x 2 of them
     * interior. I = (1 + 1) + (1 + 1) = 4, E = 2 + 1 = 3: 4 + 2; tiles:
     * 1 * (1 + 6) + 1 = 8 */
    EQ(iters(cm, "mm", "edges128s", "M", (int64_t)300, "N", (int64_t)300, "K", (int64_t)9, NULL), 8);
    EQ(iters(cm, "mm", "edges128", "M", (int64_t)300, "N", (int64_t)300, "K", (int64_t)9, NULL), -1);
    EQ(iters(cm, "mm", "tiles128s", "M", (int64_t)300, "N", (int64_t)300, "K", (int64_t)9, NULL), -1);
    /* M = 100: no interior tile at all; N = 128 * 65536: the last tile row
     * is 65536 edge tiles, so groups cap at 65535 and an invocation walks
     * 2. K = 16: 2 slices. I = 3 + 1, E = 3: 4 + 2; tiles: 2 * (1 + 6) + 1
     * = 15 */
    EQ(iters(cm, "mm", "edges128", "M", (int64_t)100, "N", (int64_t)128 * 65536, "K", (int64_t)16, NULL), 15);
    EQ(iters(cm, "mm", "tiles128", "M", (int64_t)100, "N", (int64_t)128 * 65536, "K", (int64_t)16, NULL), -1);
}

/* REDUCE 1-D: reduce-tree(256, 1024, 16); partial groups
 * min(ceil(N / 16384), 1024), each invocation folding N/4 vec4s with
 * stride groups * 256; final folds the partials with stride 256. With
 * subgroups, each also folds 256 / 8 = 32 slots (33 with the leaving pass). */
TEST(test_reduce) {
    for (int sg = 0; sg < 2; sg++) {
        CgModule *cm = compile(sg);
        if (!cm) { CHECK(0); continue; }
        int64_t fold = sg ? 33 : 0;
        /* N = 2^24: 1024 groups, 2^22 vec4s / 262144 = 16 steps */
        EQ(iters(cm, "red", "partial", "N", (int64_t)1 << 24, NULL), 17 + fold);
        EQ(iters(cm, "red", "final", "N", (int64_t)1 << 24, NULL), 5 + fold); /* 1024 / 256 = 4 */
        /* N = 4294967295 (the largest size): (2^30 - 1) vec4s / 262144 -> 4096 */
        EQ(iters(cm, "red", "partial", "N", (int64_t)4294967295, NULL), 4097 + fold);
        /* N = 1000: one group, 250 vec4s over 256 invocations: one step */
        EQ(iters(cm, "red", "partial", "N", (int64_t)1000, NULL), 2 + fold);
    }
}

/* REDUCE rows: reduce-rows(64), one group per row (at most 65535 groups),
 * each row folded with stride 64, then (subgroups) 64 / 8 = 8 slots. */
TEST(test_reduce_rows) {
    for (int sg = 0; sg < 2; sg++) {
        CgModule *cm = compile(sg);
        if (!cm) { CHECK(0); continue; }
        int64_t fold = sg ? 9 : 0;
        /* 3 rows of 1000: one row each; 16 steps + 1 */
        EQ(iters(cm, "rows", "rows", "M", (int64_t)3, "N", (int64_t)1000, NULL), 1 + 17 + fold + 1);
        /* 100000 rows: 2 per group */
        EQ(iters(cm, "rows", "rows", "M", (int64_t)100000, "N", (int64_t)1000, NULL), 2 * (1 + 17 + fold) + 1);
        /* the largest row under 65535 with subgroups: ceil(N/64) + 12 -> N = 64 * 65523 */
        if (sg) EQ(iters(cm, "rows", "rows", "M", (int64_t)2, "N", (int64_t)64 * 65523, NULL), 65535);
    }
}

/* SCAN: scan-3pass(256, 16), blocks of 4096, bpc = max(ceil(nblocks / 4096), 1)
 * blocks per chunk; "partials" has no loop but the row walk (and the slot
 * fold of its group scan with subgroups). With bpc 1 and rows within the
 * group cap, passes 1 and 3 run their one-block variants ("…1"): no loop
 * but the slot fold. */
TEST(test_scan) {
    for (int sg = 0; sg < 2; sg++) {
        CgModule *cm = compile(sg);
        if (!cm) { CHECK(0); continue; }
        int64_t fold = sg ? 33 : 0;
        /* N = 2^20: 256 blocks, bpc 1; one row */
        EQ(iters(cm, "scan", "reduce41", "N", (int64_t)1 << 20, NULL), fold);
        EQ(iters(cm, "scan", "reduce4", "N", (int64_t)1 << 20, NULL), -1);
        EQ(iters(cm, "scan", "partials", "N", (int64_t)1 << 20, NULL), 1 * (1 + fold) + 1);
        EQ(iters(cm, "scan", "propagate41", "N", (int64_t)1 << 20, NULL), fold);
        EQ(iters(cm, "scan", "reduce41", "N", (int64_t)(1 << 20) + 1, NULL), -1); /* the scalar one runs */
        EQ(iters(cm, "scan", "reduce1", "N", (int64_t)(1 << 20) + 1, NULL), fold);
        /* N = 4096 * 4096 + 4: 4097 blocks, bpc 2: the looped variants */
        EQ(iters(cm, "scan", "reduce41", "N", (int64_t)4096 * 4096 + 4, NULL), -1);
        EQ(iters(cm, "scan", "reduce4", "N", (int64_t)4096 * 4096 + 4, NULL), 1 * (1 + 3 + fold) + 1);
        /* N = 2^32 - 1: 2^20 blocks, bpc 256 */
        EQ(iters(cm, "scan", "propagate", "N", (int64_t)4294967295, NULL),
           1 * (1 + (256 * (1 + fold) + 1)) + 1);
    }
}

/* SOFTMAX: softmax-row(64). Subgroups: a subgroup of 8 per row (8 rows per
 * group), two lane loops over the columns (vec4s when N % 4 == 0) with
 * stride 8. Without: a group per row, three loops with stride 64. */
TEST(test_softmax) {
    CgModule *cm = compile(1);
    if (cm) {
        /* 10 rows: 2 groups, one row per subgroup; 250 vec4s: 32 steps */
        EQ(iters(cm, "smax", "rows4", "M", (int64_t)10, "N", (int64_t)1000, NULL), 1 * (1 + 2 * 33) + 1);
        EQ(iters(cm, "smax", "rows", "M", (int64_t)10, "N", (int64_t)1000, NULL), -1);
        /* 1001 columns: scalar lanes, 126 steps */
        EQ(iters(cm, "smax", "rows", "M", (int64_t)10, "N", (int64_t)1001, NULL), 1 * (1 + 2 * 127) + 1);
        /* the largest vec4 row under 65535: 2 (ceil(N/32) + 1) + 2 -> N = 32 * 32765 */
        EQ(iters(cm, "smax", "rows4", "M", (int64_t)1, "N", (int64_t)32 * 32765, NULL), 65534);
        EQ(iters(cm, "smax", "rows4", "M", (int64_t)1, "N", (int64_t)32 * 32765 + 4, NULL), 65536);
    } else CHECK(0);
    cm = compile(0);
    if (cm) {
        EQ(iters(cm, "smax", "rows", "M", (int64_t)10, "N", (int64_t)1000, NULL), 1 * (1 + 3 * 17) + 1);
    } else CHECK(0);
}

/* TRANSPOSE, transpose-block with 16x16 groups: row steps x column steps,
 * of 4x4 blocks (block4, both extents multiples of 4) or elements (direct). */
TEST(test_transpose) {
    CgModule *cm = compile(0);
    if (!cm) { CHECK(0); return; }
    /* 250 x 250 blocks over 16 x 16 groups of 16 x 16: one step each way */
    EQ(iters(cm, "tr", "block4", "M", (int64_t)1000, "N", (int64_t)1000, NULL), 1 * (1 + 2) + 1);
    EQ(iters(cm, "tr", "direct", "M", (int64_t)1000, "N", (int64_t)1000, NULL), -1);
    EQ(iters(cm, "tr", "direct", "M", (int64_t)1001, "N", (int64_t)1000, NULL), 1 * (1 + 2) + 1);
    /* 3 * 16 * 65535 rows of 15: the y groups cap, 3 row steps each */
    EQ(iters(cm, "tr", "direct", "M", (int64_t)3 * 16 * 65535, "N", (int64_t)15, NULL), 3 * (1 + 2) + 1);
    /* 4 * 3 * 16 * 65535 rows of 16: 3 * 16 * 65535 block rows, the same */
    EQ(iters(cm, "tr", "block4", "M", (int64_t)4 * 3 * 16 * 65535, "N", (int64_t)16, NULL), 3 * (1 + 2) + 1);
}

/* Grid stages: the elementwise walk and a 2-D grid whose body has loops in
 * both arms of an if (both are counted: lanes may diverge). */
TEST(test_grid) {
    CgModule *cm = compile(0);
    if (!cm) { CHECK(0); return; }
    /* N = 2^25 + 1 (odd: the scalar variant runs): min(ceil(N/1024), 65535)
     * = 32769 groups of 256, ceil(N / 8388864) = 4 steps */
    EQ(iters(cm, "add", "map", "N", (int64_t)(1 << 25) + 1, NULL), 5);
    /* even the largest N stays tiny: 65535 groups, ceil((2^32-1)/(65535*256)) = 257 */
    EQ(iters(cm, "add", "map", "N", (int64_t)4294967295, NULL), 258);
    /* body: (n + 1) + (m * (1 + 3) + 1) = 32 for n = 10, m = 5;
     * 32x32 points, 2x2 groups of 16x16: one step per dim: x (32 + 2), y + 2 */
    EQ(iters(cm, "branchy", "grid", "R", (int64_t)32, "C", (int64_t)32, "n", (int64_t)10, "m", (int64_t)5, NULL),
       36);
    /* 3 * 16 * 65535 rows: 3 y steps: 3 * (1 + 34) + 1 */
    EQ(iters(cm, "branchy", "grid", "R", (int64_t)3 * 16 * 65535, "C", (int64_t)32, "n", (int64_t)10, "m",
             (int64_t)5, NULL),
       106);
    /* a negative trip count is 0 iterations: body (0 + 1) + (0 + 1) = 2 */
    EQ(iters(cm, "branchy", "grid", "R", (int64_t)32, "C", (int64_t)32, "n", (int64_t)-7, "m", (int64_t)-1, NULL),
       6);
}

TEST(test_eval_saturates) {
    /* symbols, so that nothing is folded when the formula is built */
    IrSize *x = ir_size_sym(A, 0), *y = ir_size_sym(A, 1);
    int64_t v[2] = {INT64_MAX / 2, 4}, none[1] = {0};
    IrSize *p = ir_size_bin(A, SZ_MUL, x, y); /* wraps in ir_size_eval */
    EQ(cg_loops_eval(p, v, none), INT64_MAX);
    EQ(cg_loops_eval(ir_size_bin(A, SZ_MUL, p, p), v, none), INT64_MAX);
    EQ(cg_loops_eval(ir_size_bin(A, SZ_SUB, y, x), v, none), 0); /* negative */
    EQ(cg_loops_eval(NULL, v, none), 0);
    EQ(cg_loops_eval(ir_size_bin(A, SZ_CEILDIV, y, ir_size_bin(A, SZ_SUB, x, x)), v, none), 0);
    EQ(cg_loops_eval(ir_size_bin(A, SZ_CEILDIV, ir_size_const(A, 7), y), v, none), 2);
    /* three nested loops of 2^32 - 1 trips: far beyond int64 */
    int64_t w[2] = {4294967295LL, 0};
    EQ(cg_loops_eval(cg_loops_for(A, x, cg_loops_for(A, x, cg_loops_for(A, x, NULL))), w, none), INT64_MAX);
    /* the same with constant trips is folded when built: it saturates too */
    IrSize *t = ir_size_const(A, 4294967295LL);
    EQ(cg_loops_eval(cg_loops_for(A, t, cg_loops_for(A, t, cg_loops_for(A, t, NULL))), none, none),
       INT64_MAX);
    /* two nested loops of 1000 and 3: 1000 * (1 + 3 * 1 + 1) + 1 */
    EQ(cg_loops_eval(cg_loops_for(A, ir_size_const(A, 1000), cg_loops_for(A, ir_size_const(A, 3), NULL)),
                     none, none),
       5001);
}

TEST(test_driver_table) {
    RtLimits l;
    rt_limits_for("llvmpipe (LLVM 15.0.6, 256 bits)", 0, (VkDriverId)0, &l);
    EQ(l.max_loop_iters, 65535);
    CHECK(l.driver && !strcmp(l.driver, "llvmpipe"));
    rt_limits_for("Some GPU", 1, VK_DRIVER_ID_MESA_LLVMPIPE, &l);
    EQ(l.max_loop_iters, 65535);
    rt_limits_for("NVIDIA H100 80GB HBM3", 1, VK_DRIVER_ID_NVIDIA_PROPRIETARY, &l);
    EQ(l.max_loop_iters, 0);
    rt_limits_for(NULL, 0, (VkDriverId)0, &l);
    EQ(l.max_loop_iters, 0);
}

int main(void) {
    A = fe_arena_new();
    RUN(test_every_dispatch_bounded);
    RUN(test_matmul);
    RUN(test_reduce);
    RUN(test_reduce_rows);
    RUN(test_scan);
    RUN(test_softmax);
    RUN(test_transpose);
    RUN(test_grid);
    RUN(test_eval_saturates);
    RUN(test_driver_table);
    return TEST_DONE();
}
