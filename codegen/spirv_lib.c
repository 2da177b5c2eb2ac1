/*
 * spirv_lib.c — library stages: MATMUL, REDUCE, SCAN, SOFTMAX, TRANSPOSE,
 * expanded by strategy into compute entry points.
 *
 * Shapes: every operand is viewed as rows x cols where cols is the last
 * extent and rows the product of the others (1 for a 1-D buffer). All
 * group counts are capped at CgTarget.max_groups; the shaders loop
 * (grid-stride) over what the cap leaves out, so a count is a formula and
 * never data. Accumulation is in f32 for float and half, in the element
 * type for int/uint (wrapping). Reading past an operand's extent never
 * happens: every access is guarded by its row/column bounds.
 *
 * Strategies (sp[] as in ir.h; 0 or unusable values take the defaults).
 * Performance notes (lavapipe runs a subgroup of 8 lanes as one SIMD
 * vector and loops over the lanes for every buffer or shared access, a
 * vec4 access fetching 4 components in one such loop; both sides of a
 * branch run, masked; a barrier is a coroutine switch): vec4 accesses,
 * no per-element branches in hot loops (variants instead), subgroup
 * operations when CgTarget.subgroups. The same code is GPU-friendly.
 *  reduce-tree  (1-D) pass "partial": min(ceildiv(N, 4*G*E), P) groups of G
 *               invocations, vec4 grid-stride sums (32-bit types) plus the
 *               < 4 tail, a group reduction, one partial per group into
 *               scratch; pass "final": one group folds the partials.
 *               G = sp[0] (256), P = sp[1] (1024), E = sp[2] (16).
 *  reduce-rows  one group of sp[0] (64) per row, rows grid-strided.
 *  scan-3pass   rows x cols; each row is cut into blocks of B = G*E
 *               elements (G = sp[0] 256, E = sp[1] 16), the blocks into
 *               nch <= B chunks of bpc consecutive blocks; "reduce": chunk
 *               sums into scratch; "partials": each row's chunk sums
 *               scanned (exclusive) in place by one group, E per
 *               invocation; "propagate": each chunk's blocks in order from
 *               the chunk's prefix, invocation t scanning elements
 *               t*E..t*E+E-1 serially and the group scanning the
 *               invocations' totals. 32-bit element types get "…4"
 *               variants of the data passes for cols % 4 == 0 (vec4
 *               accesses); every data pass has a "…1" variant without
 *               the row and block loops for one block per chunk and rows
 *               within the group cap (16M elements a row at the
 *               defaults). Exact for integers (wrapping); integer group
 *               scans use one inclusive subgroup scan.
 *  softmax-row  with subgroups: one subgroup per row, online (max, sum of
 *               exp) per lane, subgroup max/add, no barriers, a vec4
 *               variant for float rows of a multiple of 4; without: one
 *               group of sp[0] (64) per row, max, sum of exp(x - max), then
 *               exp(x - max) / sum, through shared memory. Rows grid-strided.
 *  transpose-tiled  T x T tiles through shared memory (T = sp[0], 16).
 *  transpose-block  no shared memory: 4x4 blocks per invocation step with
 *               vec4 loads and stores (32-bit types, R, C % 4 == 0), else
 *               one element per step; groups of sp[0] x sp[0] (16).
 *  matmul-tiled TM x TN output tile per group, TK deep slices of A and B in
 *               shared memory, R x R outputs per invocation (sp = TM, TN,
 *               TK, R; default 128, 128, 8, 8); partial tiles are
 *               zero-padded. Float 128x128x8x8 runs matmul128 instead:
 *               one dispatch of one group per tile, the full tiles
 *               unchecked, the last tile row and column masked ("edges128"
 *               when there are such tiles, else "tiles128" with the
 *               interior body alone), vec4 global accesses when
 *               K, N % 4 == 0 (else the "…s" variants).
 * Group reductions and scans use one subgroup operation and one slot per
 * subgroup in shared memory (one barrier) when CgTarget.subgroups, else a
 * shared-memory tree / Hillis-Steele scan. A reduction whose result only
 * one invocation stores folds the slots in that invocation only
 * (group_reduce_in0); a scan folds only the slots of earlier subgroups.
 * The scans' element loads (passes 1 and 3, load_run) clamp the index and
 * select zero (no branch), except pass 3's vec4 loads, which branch
 * around each load as the twin does (measured faster there); pass 2's
 * loads of the chunk sums branch around the load (guarded_load).
 */
#include "spirv_int.h"

#include <math.h>

static int pow2(int x) { return x > 0 && (x & (x - 1)) == 0; }

static ScalarType acc_type(ScalarType t) { return t == TY_HALF ? TY_FLOAT : t; }

static uint32_t to_acc(Sb *s, ScalarType t, uint32_t v) {
    return t == TY_HALF ? SB_OP(s, SpvOpFConvert, s->t_f32, v) : v;
}
static uint32_t from_acc(Sb *s, ScalarType t, uint32_t v) {
    return t == TY_HALF ? SB_OP(s, SpvOpFConvert, sb_scalar(s, TY_HALF), v) : v;
}

/* rows (product of all but the last extent) and cols of buffer param p */
static uint32_t rows_dev(Sb *s, int p) {
    const IrParam *pr = &s->k->params.v[p];
    uint32_t r = sb_const_u(s, 1);
    for (int d = 0; d + 1 < pr->rank; d++) r = sb_umul(s, r, sb_dim(s, p, d));
    return r;
}
static uint32_t cols_dev(Sb *s, int p) {
    return sb_dim(s, p, s->k->params.v[p].rank - 1);
}
static IrSize *rows_host(Sb *s, int p) {
    const IrParam *pr = &s->k->params.v[p];
    IrSize *r = ir_size_const(s->a, 1);
    for (int d = 0; d + 1 < pr->rank; d++) r = ir_size_bin(s->a, SZ_MUL, r, pr->dims[d]);
    return r;
}
static IrSize *cols_host(Sb *s, int p) {
    const IrParam *pr = &s->k->params.v[p];
    return pr->dims[pr->rank - 1];
}
static IrSize *cap(Sb *s, IrSize *x) {
    return ir_size_bin(s->a, SZ_MIN, x, ir_size_const(s->a, s->t->max_groups));
}
static IrSize *hconst(Sb *s, int64_t c) { return ir_size_const(s->a, c); }
static IrSize *hceil(Sb *s, IrSize *x, int64_t d) {
    return ir_size_bin(s->a, SZ_CEILDIV, x, ir_size_const(s->a, d));
}

static uint32_t lid(Sb *s, int c) { return sb_builtin_x(s, SpvBuiltInLocalInvocationId, c); }
static uint32_t wgid(Sb *s, int c) { return sb_builtin_x(s, SpvBuiltInWorkgroupId, c); }
static uint32_t nwg(Sb *s, int c) { return sb_num_groups(s, c); } /* the whole dispatch's */

static uint32_t sh_ptr(Sb *s, uint32_t var, uint32_t elem, uint32_t idx) {
    return SB_OP(s, SpvOpAccessChain, sb_ptr(s, SpvStorageClassWorkgroup, elem), var, idx);
}
static uint32_t sh_load(Sb *s, uint32_t var, uint32_t elem, uint32_t idx) {
    return sb_load(s, elem, sh_ptr(s, var, elem, idx));
}
static void sh_store(Sb *s, uint32_t var, uint32_t elem, uint32_t idx, uint32_t v) {
    sb_store(s, sh_ptr(s, var, elem, idx), v);
}

/* binding[flat] when cond, else `other` (no load issued out of range) */
static uint32_t guarded_load(Sb *s, int b, uint32_t flat, uint32_t cond, uint32_t type,
                             uint32_t other) {
    uint32_t tmp = sb_var(s, type);
    sb_store(s, tmp, other);
    SbIf f = sb_if_begin(s, cond, 0);
    sb_store(s, tmp, sb_buf_load(s, b, flat));
    sb_if_end(s, &f);
    return sb_load(s, type, tmp);
}
static void guarded_store(Sb *s, int b, uint32_t flat, uint32_t cond, uint32_t v) {
    SbIf f = sb_if_begin(s, cond, 0);
    sb_buf_store(s, b, flat, v);
    sb_if_end(s, &f);
}

/* Host group-count factor selecting a variant: 1 when cols % 4 == 0 for
 * the vec4 variant (v4), 1 when not for the scalar one; so exactly one of
 * a pair of alternative dispatches runs (the other has 0 groups). */
static IrSize *variant_sel(Sb *s, IrSize *cols, int v4) {
    IrSize *r = ir_size_bin(s->a, SZ_MIN, ir_size_bin(s->a, SZ_REM, cols, hconst(s, 4)), hconst(s, 1));
    return v4 ? ir_size_bin(s->a, SZ_SUB, hconst(s, 1), r) : r;
}

/* Marks the dispatch just added as a vec4 variant (CgDispatch.vec_width:
 * the cost prediction counts its accesses as the device executes them,
 * four elements each), for library stages that also have a scalar one. */
static void mark_vec4(Sb *s) { s->launch->dispatches.v[s->launch->dispatches.n - 1].vec_width = 4; }

/* ---- reduction operators ---- */

static uint32_t red_identity(Sb *s, FeReduceOp op, ScalarType t) {
    switch (op) {
    case RED_SUM: return sb_const_typed(s, t, 0, 0);
    case RED_PROD: return sb_const_typed(s, t, 1, 1);
    case RED_MIN:
        return t == TY_FLOAT ? sb_const_f(s, INFINITY)
               : t == TY_INT ? sb_const_i(s, INT32_MAX) : sb_const_u(s, UINT32_MAX);
    case RED_MAX:
        return t == TY_FLOAT ? sb_const_f(s, -INFINITY)
               : t == TY_INT ? sb_const_i(s, INT32_MIN) : sb_const_u(s, 0);
    }
    fe_unreachable();
}

/* a op b on values of type ty: t itself or a vector of it */
static uint32_t red_combine_ty(Sb *s, FeReduceOp op, ScalarType t, uint32_t ty, uint32_t a,
                               uint32_t b) {
    int fl = t == TY_FLOAT;
    switch (op) {
    case RED_SUM: return SB_OP(s, fl ? SpvOpFAdd : SpvOpIAdd, ty, a, b);
    case RED_PROD: return SB_OP(s, fl ? SpvOpFMul : SpvOpIMul, ty, a, b);
    case RED_MIN:
        return SB_EXT(s, fl ? GLSLstd450FMin : t == TY_INT ? GLSLstd450SMin : GLSLstd450UMin, ty, a, b);
    case RED_MAX:
        return SB_EXT(s, fl ? GLSLstd450FMax : t == TY_INT ? GLSLstd450SMax : GLSLstd450UMax, ty, a, b);
    }
    fe_unreachable();
}

/* OpGroupNonUniform opcode of a reduction operator on type t */
static SpvOp sg_opcode(FeReduceOp op, ScalarType t) {
    int fl = t == TY_FLOAT;
    switch (op) {
    case RED_SUM: return fl ? SpvOpGroupNonUniformFAdd : SpvOpGroupNonUniformIAdd;
    case RED_PROD: return fl ? SpvOpGroupNonUniformFMul : SpvOpGroupNonUniformIMul;
    case RED_MIN:
        return fl ? SpvOpGroupNonUniformFMin
                  : t == TY_INT ? SpvOpGroupNonUniformSMin : SpvOpGroupNonUniformUMin;
    case RED_MAX:
        return fl ? SpvOpGroupNonUniformFMax
                  : t == TY_INT ? SpvOpGroupNonUniformSMax : SpvOpGroupNonUniformUMax;
    }
    fe_unreachable();
}

static uint32_t red_combine(Sb *s, FeReduceOp op, ScalarType t, uint32_t a, uint32_t b) {
    return red_combine_ty(s, op, t, sb_scalar(s, t), a, b);
}

/* Fold of sh[0 .. NumSubgroups) (the per-subgroup values), in every
 * invocation; `before` (when not NULL) also gets the fold of the entries
 * below this invocation's subgroup, seeded with *before. */
static uint32_t fold_subgroup_slots(Sb *s, uint32_t sh, FeReduceOp op, ScalarType t,
                                    uint32_t *before) {
    uint32_t ty = sb_scalar(s, t);
    uint32_t acc = sb_var(s, ty), bef = 0;
    sb_store(s, acc, red_identity(s, op, t));
    if (before) {
        bef = sb_var(s, ty);
        sb_store(s, bef, *before);
    }
    uint32_t sgid = before ? sb_builtin_sg(s, SpvBuiltInSubgroupId) : 0;
    SbFor f = sb_for_begin(s, sb_const_u(s, 0), sb_builtin_sg(s, SpvBuiltInNumSubgroups),
                           sb_const_u(s, 1));
    uint32_t x = sh_load(s, sh, ty, f.iv);
    sb_store(s, acc, red_combine(s, op, t, sb_load(s, ty, acc), x));
    if (before) {
        uint32_t y = SB_OP(s, SpvOpSelect, ty, sb_ult(s, f.iv, sgid), x, red_identity(s, op, t));
        sb_store(s, bef, red_combine(s, op, t, sb_load(s, ty, bef), y));
    }
    sb_for_end(s, &f);
    if (before) *before = sb_load(s, ty, bef);
    return sb_load(s, ty, acc);
}

/* First phase of a reduction of each invocation's v over a group of G (a
 * power of two) through shared array sh (G entries). With subgroup
 * arithmetic: one subgroup reduce, each subgroup's result in
 * sh[SubgroupId], one barrier; the caller folds the slots. Else a
 * shared-memory tree leaving the result in sh[0]; the barrier after its
 * last level only when last_barrier (invocation 0 wrote sh[0], so it alone
 * may read it without one). Returns LocalInvocationId.x as loaded. */
static uint32_t group_reduce_partial(Sb *s, uint32_t sh, int G, FeReduceOp op, ScalarType t,
                                 uint32_t v, int last_barrier) {
    uint32_t ty = sb_scalar(s, t), l = lid(s, 0);
    if (s->t->subgroups) {
        uint32_t r = sb_group_op(s, sg_opcode(op, t), ty, SpvGroupOperationReduce, v);
        uint32_t lane = sb_builtin_sg(s, SpvBuiltInSubgroupLocalInvocationId);
        SbIf f = sb_if_begin(s, SB_OP(s, SpvOpIEqual, s->t_bool, lane, sb_const_u(s, 0)), 0);
        sh_store(s, sh, ty, sb_builtin_sg(s, SpvBuiltInSubgroupId), r);
        sb_if_end(s, &f);
        sb_barrier(s);
        return l;
    }
    sh_store(s, sh, ty, l, v);
    sb_barrier(s);
    for (int h = G / 2; h > 0; h /= 2) {
        SbIf f = sb_if_begin(s, sb_ult(s, l, sb_const_u(s, (uint32_t)h)), 0);
        uint32_t x = sh_load(s, sh, ty, l);
        uint32_t y = sh_load(s, sh, ty, sb_uadd(s, l, sb_const_u(s, (uint32_t)h)));
        sh_store(s, sh, ty, l, red_combine(s, op, t, x, y));
        sb_if_end(s, &f);
        if (h > 1 || last_barrier) sb_barrier(s);
    }
    return l;
}

/* The group's result after group_reduce_partial, in the calling invocations. */
static uint32_t group_reduce_result(Sb *s, uint32_t sh, FeReduceOp op, ScalarType t) {
    if (s->t->subgroups) return fold_subgroup_slots(s, sh, op, t, NULL);
    return sh_load(s, sh, sb_scalar(s, t), sb_const_u(s, 0));
}

/* Reduction of each invocation's v over a group of G through sh; returns
 * the result, valid in every invocation. Ends with a barrier so sh can be
 * reused at once. */
static uint32_t group_reduce(Sb *s, uint32_t sh, int G, FeReduceOp op, ScalarType t, uint32_t v) {
    group_reduce_partial(s, sh, G, op, t, v, 1);
    uint32_t r = group_reduce_result(s, sh, op, t);
    sb_barrier(s);
    return r;
}

/* The same reduction when only invocation 0 needs the result: emits the
 * reduction, then opens `if (LocalInvocationId.x == 0)` and returns the
 * result computed inside it; the caller emits its use and closes *f with
 * sb_if_end. Unlike group_reduce, the other invocations do not fold the
 * subgroup slots (on lavapipe that fold, run by every subgroup, costs as
 * much as the whole vec4 grid-stride loop of a sum) and there is no
 * trailing barrier: a caller that reuses sh afterwards (a loop over rows)
 * needs one after sb_if_end. */
static uint32_t group_reduce_in0(Sb *s, uint32_t sh, int G, FeReduceOp op, ScalarType t,
                                 uint32_t v, SbIf *f) {
    uint32_t l = group_reduce_partial(s, sh, G, op, t, v, 0);
    *f = sb_if_begin(s, SB_OP(s, SpvOpIEqual, s->t_bool, l, sb_const_u(s, 0)), 0);
    return group_reduce_result(s, sh, op, t);
}

/* acc = fold over elements [start, end) with stride `stride` of binding b */
static uint32_t strided_fold(Sb *s, int b, ScalarType et, FeReduceOp op, uint32_t start,
                             uint32_t end, uint32_t stride) {
    ScalarType at = acc_type(et);
    uint32_t acc = sb_var(s, sb_scalar(s, at));
    sb_store(s, acc, red_identity(s, op, at));
    SbFor f = sb_for_begin(s, start, end, stride);
    uint32_t x = to_acc(s, et, sb_buf_load(s, b, f.iv));
    sb_store(s, acc, red_combine(s, op, at, sb_load(s, sb_scalar(s, at), acc), x));
    sb_for_end(s, &f);
    return sb_load(s, sb_scalar(s, at), acc);
}

/* ---- REDUCE ---- */

static void lower_reduce(Sb *s, int si, const IrStage *st) {
    int in = st->in[0], out = st->out;
    ScalarType et = s->k->params.v[in].type, at = acc_type(et);
    uint32_t aty = sb_scalar(s, at);
    int bin = sb_param_binding(s, in), bout = sb_param_binding(s, out);
    int G = pow2(st->sp[0]) && st->sp[0] <= 1024 ? st->sp[0] : 256;
    int local[3] = {G, 1, 1};
    if (st->strategy == IR_STRAT_REDUCE_TREE && s->k->params.v[in].rank == 1) {
        int P = st->sp[1] > 0 && st->sp[1] <= s->t->max_groups ? st->sp[1] : 1024;
        IrSize *N = cols_host(s, in);
        /* about 16 vec4 per invocation (E = sp[2]) before the cap */
        int E = st->sp[2] > 0 ? st->sp[2] : 16;
        IrSize *ng = ir_size_bin(s->a, SZ_MIN, hceil(s, N, 4 * G * E), hconst(s, P));
        int scr = sb_add_scratch(s, ir_size_bin(s->a, SZ_MUL, ng, hconst(s, 4)), at);
        /* pass 1: grid-stride partial folds, one value per group */
        sb_fn_begin(s);
        uint32_t sh = sb_shared(s, aty, (uint32_t)G, "red");
        uint32_t n = cols_dev(s, in);
        uint32_t start = sb_uadd(s, sb_umul(s, wgid(s, 0), sb_const_u(s, (uint32_t)G)), lid(s, 0));
        uint32_t stride = sb_umul(s, nwg(s, 0), sb_const_u(s, (uint32_t)G));
        uint32_t v;
        if (et != TY_HALF) {
            /* vec4 grid-stride over the first n/4*4 elements, then the
             * (< 4) tail by the first invocations */
            uint32_t vt = sb_vec4(s, aty);
            uint32_t idv = red_identity(s, st->rop, at);
            uint32_t acc = sb_var(s, vt);
            sb_store(s, acc, SB_OP(s, SpvOpCompositeConstruct, vt, idv, idv, idv, idv));
            uint32_t n4 = SB_OP(s, SpvOpShiftRightLogical, s->t_u32, n, sb_const_u(s, 2));
            SbFor f4 = sb_for_begin(s, start, n4, stride);
            sb_store(s, acc, red_combine_ty(s, st->rop, at, vt, sb_load(s, vt, acc),
                                            sb_buf4_load(s, bin, f4.iv)));
            sb_for_end(s, &f4);
            uint32_t a4 = sb_load(s, vt, acc), c[4];
            for (int i = 0; i < 4; i++) c[i] = SB_OP(s, SpvOpCompositeExtract, aty, a4, (uint32_t)i);
            v = red_combine(s, st->rop, at, red_combine(s, st->rop, at, c[0], c[1]),
                            red_combine(s, st->rop, at, c[2], c[3]));
            uint32_t ti = sb_uadd(s, SB_OP(s, SpvOpShiftLeftLogical, s->t_u32, n4, sb_const_u(s, 2)),
                                  start);
            v = red_combine(s, st->rop, at, v,
                            guarded_load(s, bin, ti, sb_ult(s, ti, n), aty, idv));
        } else {
            v = strided_fold(s, bin, et, st->rop, start, n, stride);
        }
        SbIf f;
        uint32_t r = group_reduce_in0(s, sh, G, st->rop, at, v, &f);
        sb_buf_store(s, scr, wgid(s, 0), r);
        sb_if_end(s, &f);
        const char *e1 = sb_entry_name(s, si, "partial");
        sb_fn_end_entry(s, e1, local);
        sb_add_dispatch(s, e1, si, local, ng, hconst(s, 1), hconst(s, 1));
        /* loop budget (loops.c): the grid-stride fold, the slot fold */
        cg_dispatch_set_loops(s->launch, cg_loops_sum(s->a, cg_loops_for(s->a, cg_loops_strided(
            s->a, et != TY_HALF ? ir_size_bin(s->a, SZ_DIV, N, hconst(s, 4)) : N, ng, G), NULL),
            cg_loops_group_fold(s->a, s->t, G)));
        /* pass 2: one group folds the partials (their count recomputed) */
        sb_fn_begin(s);
        sh = sb_shared(s, aty, (uint32_t)G, "red");
        n = cols_dev(s, in);
        uint32_t cnt = sb_size_u32(s, ng); /* the host's group count of pass 1 */
        (void)n;
        uint32_t acc = sb_var(s, aty);
        sb_store(s, acc, red_identity(s, st->rop, at));
        SbFor fl = sb_for_begin(s, lid(s, 0), cnt, sb_const_u(s, (uint32_t)G));
        sb_store(s, acc, red_combine(s, st->rop, at, sb_load(s, aty, acc), sb_buf_load(s, scr, fl.iv)));
        sb_for_end(s, &fl);
        r = group_reduce_in0(s, sh, G, st->rop, at, sb_load(s, aty, acc), &f);
        sb_buf_store(s, bout, sb_const_u(s, 0), from_acc(s, et, r));
        sb_if_end(s, &f);
        const char *e2 = sb_entry_name(s, si, "final");
        sb_fn_end_entry(s, e2, local);
        sb_add_dispatch(s, e2, si, local, hconst(s, 1), hconst(s, 1), hconst(s, 1));
        cg_dispatch_set_loops(s->launch, cg_loops_sum(s->a, cg_loops_for(s->a, hceil(s, ng, G), NULL),
                                                      cg_loops_group_fold(s->a, s->t, G)));
        return;
    }
    /* rows: one group per row */
    sb_fn_begin(s);
    uint32_t sh = sb_shared(s, aty, (uint32_t)G, "red");
    uint32_t R = rows_dev(s, in), C = cols_dev(s, in);
    SbFor rf = sb_for_begin(s, wgid(s, 0), R, nwg(s, 0));
    uint32_t base = sb_umul(s, rf.iv, C);
    uint32_t v = strided_fold(s, bin, et, st->rop, sb_uadd(s, base, lid(s, 0)), sb_uadd(s, base, C),
                              sb_const_u(s, (uint32_t)G));
    SbIf f;
    uint32_t r = group_reduce_in0(s, sh, G, st->rop, at, v, &f);
    sb_buf_store(s, bout, rf.iv, from_acc(s, et, r));
    sb_if_end(s, &f);
    sb_barrier(s); /* the next row reuses sh */
    sb_for_end(s, &rf);
    const char *e = sb_entry_name(s, si, "rows");
    sb_fn_end_entry(s, e, local);
    sb_add_dispatch(s, e, si, local, cap(s, rows_host(s, in)), hconst(s, 1), hconst(s, 1));
    /* loop budget: rows x (the column fold + the slot fold) */
    cg_dispatch_set_loops(s->launch, cg_loops_for(s->a,
        cg_loops_strided(s->a, rows_host(s, in), cap(s, rows_host(s, in)), 1),
        cg_loops_sum(s->a, cg_loops_for(s->a, hceil(s, cols_host(s, in), G), NULL),
                     cg_loops_group_fold(s->a, s->t, G))));
}

/* ---- SOFTMAX ---- */

/* Softmax with subgroup arithmetic: one subgroup per row and no barriers
 * (a barrier is a coroutine switch on CPU drivers); each lane keeps a
 * running (max, sum of exp) over its columns ("online softmax"), the
 * subgroup combines them, then each lane writes its columns. v4: columns
 * as vec4s (rows of a multiple of 4 floats). */
static void softmax_subgroup(Sb *s, int si, const IrStage *st, int G, int v4) {
    int in = st->in[0], out = st->out;
    ScalarType et = s->k->params.v[in].type;
    int bin = sb_param_binding(s, in), bout = sb_param_binding(s, out);
    int local[3] = {G, 1, 1};
    uint32_t f32 = s->t_f32, v4t = sb_vec4(s, f32);
    sb_fn_begin(s);
    uint32_t R = rows_dev(s, in), C = cols_dev(s, in);
    uint32_t nsg = sb_builtin_sg(s, SpvBuiltInNumSubgroups);
    uint32_t lane = sb_builtin_sg(s, SpvBuiltInSubgroupLocalInvocationId);
    uint32_t step = sb_builtin_sg(s, SpvBuiltInSubgroupSize);
    uint32_t first = sb_uadd(s, sb_umul(s, wgid(s, 0), nsg), sb_builtin_sg(s, SpvBuiltInSubgroupId));
    SbFor rf = sb_for_begin(s, first, R, sb_umul(s, nwg(s, 0), nsg));
    uint32_t n = v4 ? SB_OP(s, SpvOpShiftRightLogical, s->t_u32, C, sb_const_u(s, 2)) : C;
    uint32_t base = sb_umul(s, rf.iv, n);
    uint32_t m = sb_var(s, f32), sum = sb_var(s, f32);
    sb_store(s, m, sb_const_f(s, -INFINITY));
    sb_store(s, sum, sb_const_f(s, 0));
    SbFor f = sb_for_begin(s, lane, n, step);
    uint32_t mo = sb_load(s, f32, m), nm, part;
    if (v4) {
        uint32_t x = sb_buf4_load(s, bin, sb_uadd(s, base, f.iv));
        uint32_t c[4];
        for (int i = 0; i < 4; i++) c[i] = SB_OP(s, SpvOpCompositeExtract, f32, x, (uint32_t)i);
        uint32_t xm = SB_EXT(s, GLSLstd450FMax, f32, SB_EXT(s, GLSLstd450FMax, f32, c[0], c[1]),
                             SB_EXT(s, GLSLstd450FMax, f32, c[2], c[3]));
        nm = SB_EXT(s, GLSLstd450FMax, f32, mo, xm);
        uint32_t nv = SB_OP(s, SpvOpCompositeConstruct, v4t, nm, nm, nm, nm);
        uint32_t e = SB_EXT(s, GLSLstd450Exp, v4t, SB_OP(s, SpvOpFSub, v4t, x, nv));
        for (int i = 0; i < 4; i++) c[i] = SB_OP(s, SpvOpCompositeExtract, f32, e, (uint32_t)i);
        part = SB_OP(s, SpvOpFAdd, f32, SB_OP(s, SpvOpFAdd, f32, c[0], c[1]),
                     SB_OP(s, SpvOpFAdd, f32, c[2], c[3]));
    } else {
        uint32_t x = to_acc(s, et, sb_buf_load(s, bin, sb_uadd(s, base, f.iv)));
        nm = SB_EXT(s, GLSLstd450FMax, f32, mo, x);
        part = SB_EXT(s, GLSLstd450Exp, f32, SB_OP(s, SpvOpFSub, f32, x, nm));
    }
    uint32_t scale = SB_EXT(s, GLSLstd450Exp, f32, SB_OP(s, SpvOpFSub, f32, mo, nm));
    sb_store(s, sum, SB_EXT(s, GLSLstd450Fma, f32, sb_load(s, f32, sum), scale, part));
    sb_store(s, m, nm);
    sb_for_end(s, &f);
    uint32_t ml = sb_load(s, f32, m);
    uint32_t rm = sb_group_op(s, SpvOpGroupNonUniformFMax, f32, SpvGroupOperationReduce, ml);
    /* a lane that saw no column has sum 0 and max -inf: it adds 0 */
    uint32_t mine = SB_OP(s, SpvOpFMul, f32, sb_load(s, f32, sum),
                          SB_EXT(s, GLSLstd450Exp, f32, SB_OP(s, SpvOpFSub, f32, ml, rm)));
    uint32_t rs = sb_group_op(s, SpvOpGroupNonUniformFAdd, f32, SpvGroupOperationReduce, mine);
    uint32_t inv = SB_OP(s, SpvOpFDiv, f32, sb_const_f(s, 1), rs);
    f = sb_for_begin(s, lane, n, step);
    if (v4) {
        uint32_t x = sb_buf4_load(s, bin, sb_uadd(s, base, f.iv));
        uint32_t rv = SB_OP(s, SpvOpCompositeConstruct, v4t, rm, rm, rm, rm);
        uint32_t e = SB_EXT(s, GLSLstd450Exp, v4t, SB_OP(s, SpvOpFSub, v4t, x, rv));
        sb_buf4_store(s, bout, sb_uadd(s, base, f.iv), SB_OP(s, SpvOpVectorTimesScalar, v4t, e, inv));
    } else {
        uint32_t x = to_acc(s, et, sb_buf_load(s, bin, sb_uadd(s, base, f.iv)));
        uint32_t e = SB_EXT(s, GLSLstd450Exp, f32, SB_OP(s, SpvOpFSub, f32, x, rm));
        sb_buf_store(s, bout, sb_uadd(s, base, f.iv), from_acc(s, et, SB_OP(s, SpvOpFMul, f32, e, inv)));
    }
    sb_for_end(s, &f);
    sb_for_end(s, &rf);
    const char *e = sb_entry_name(s, si, v4 ? "rows4" : "rows");
    sb_fn_end_entry(s, e, local);
    /* rows per group: G / subgroup size; unknown size: assume 1 (the
     * extra groups find no row) */
    int sgs = s->t->subgroup_size > 0 && s->t->subgroup_size <= G ? s->t->subgroup_size : G;
    IrSize *gx = cap(s, hceil(s, rows_host(s, in), G / sgs));
    if (et == TY_FLOAT) gx = ir_size_bin(s->a, SZ_MUL, gx, variant_sel(s, cols_host(s, in), v4));
    if (v4 || et != TY_FLOAT) sb_add_dispatch(s, e, si, local, gx, hconst(s, 1), hconst(s, 1));
    else sb_add_dispatch_alt(s, e, si, local, gx, hconst(s, 1), hconst(s, 1));
    if (v4) mark_vec4(s);
    /* loop budget: rows (G / sgs per group) x two lane loops over the
     * columns (stride: the subgroup size; unknown: 1) */
    IrSize *cols = v4 ? ir_size_bin(s->a, SZ_DIV, cols_host(s, in), hconst(s, 4)) : cols_host(s, in);
    IrSize *lanes = cg_loops_for(s->a, hceil(s, cols, s->t->subgroup_size > 0 ? sgs : 1), NULL);
    cg_dispatch_set_loops(s->launch, cg_loops_for(s->a,
        cg_loops_strided(s->a, rows_host(s, in), gx, G / sgs), cg_loops_sum(s->a, lanes, lanes)));
}

static void lower_softmax(Sb *s, int si, const IrStage *st) {
    int in = st->in[0], out = st->out;
    ScalarType et = s->k->params.v[in].type;
    int bin = sb_param_binding(s, in), bout = sb_param_binding(s, out);
    int G = pow2(st->sp[0]) && st->sp[0] <= 1024 ? st->sp[0] : 64;
    int local[3] = {G, 1, 1};
    if (s->t->subgroups) {
        for (int v4 = et == TY_FLOAT; v4 >= 0; v4--) softmax_subgroup(s, si, st, G, v4);
        return;
    }
    sb_fn_begin(s);
    uint32_t f32 = s->t_f32;
    uint32_t sh = sb_shared(s, f32, (uint32_t)G, "red");
    uint32_t R = rows_dev(s, in), C = cols_dev(s, in);
    SbFor rf = sb_for_begin(s, wgid(s, 0), R, nwg(s, 0));
    uint32_t base = sb_umul(s, rf.iv, C), end = sb_uadd(s, base, C);
    uint32_t first = sb_uadd(s, base, lid(s, 0)), step = sb_const_u(s, (uint32_t)G);
    uint32_t mx = group_reduce(s, sh, G, RED_MAX, TY_FLOAT,
                               strided_fold(s, bin, et, RED_MAX, first, end, step));
    uint32_t acc = sb_var(s, f32);
    sb_store(s, acc, sb_const_f(s, 0));
    SbFor f = sb_for_begin(s, first, end, step);
    uint32_t x = to_acc(s, et, sb_buf_load(s, bin, f.iv));
    uint32_t ex = SB_EXT(s, GLSLstd450Exp, f32, SB_OP(s, SpvOpFSub, f32, x, mx));
    sb_store(s, acc, SB_OP(s, SpvOpFAdd, f32, sb_load(s, f32, acc), ex));
    sb_for_end(s, &f);
    uint32_t sum = group_reduce(s, sh, G, RED_SUM, TY_FLOAT, sb_load(s, f32, acc));
    uint32_t inv = SB_OP(s, SpvOpFDiv, f32, sb_const_f(s, 1), sum);
    f = sb_for_begin(s, first, end, step);
    x = to_acc(s, et, sb_buf_load(s, bin, f.iv));
    ex = SB_EXT(s, GLSLstd450Exp, f32, SB_OP(s, SpvOpFSub, f32, x, mx));
    sb_buf_store(s, bout, f.iv, from_acc(s, et, SB_OP(s, SpvOpFMul, f32, ex, inv)));
    sb_for_end(s, &f);
    sb_for_end(s, &rf);
    const char *e = sb_entry_name(s, si, "rows");
    sb_fn_end_entry(s, e, local);
    sb_add_dispatch(s, e, si, local, cap(s, rows_host(s, in)), hconst(s, 1), hconst(s, 1));
    /* loop budget: rows x (three column loops + two group reductions) */
    IrSize *col = cg_loops_for(s->a, hceil(s, cols_host(s, in), G), NULL);
    IrSize *red = cg_loops_group_fold(s->a, s->t, G);
    cg_dispatch_set_loops(s->launch, cg_loops_for(s->a,
        cg_loops_strided(s->a, rows_host(s, in), cap(s, rows_host(s, in)), 1),
        cg_loops_sum(s->a, cg_loops_sum(s->a, ir_size_bin(s->a, SZ_MUL, col, hconst(s, 3)), red), red)));
}

/* ---- SCAN ---- */

/* Exclusive prefix sum over the group (G a power of two) of each
 * invocation's v, through sh (G entries of t): *excl gets this
 * invocation's prefix, *total the group's sum, in every invocation. With
 * subgroup arithmetic: a subgroup exclusive scan and reduce, one slot per
 * subgroup, two barriers (sh has G + 1 entries: the last one passes the
 * total); else a shared-memory Hillis-Steele scan (2 log2 G barriers).
 * Ends with a barrier, or (subgroups) with only reads of sh[G] after the
 * last one, so a next call may reuse sh at once. total NULL: the caller
 * needs no total and makes no next call (subgroups: one barrier). */
static void group_exscan(Sb *s, uint32_t sh, int G, ScalarType t, uint32_t v, uint32_t *excl,
                         uint32_t *total) {
    uint32_t ty = sb_scalar(s, t), l = lid(s, 0);
    if (s->t->subgroups) {
        SpvOp op = sg_opcode(RED_SUM, t);
        uint32_t lane = sb_builtin_sg(s, SpvBuiltInSubgroupLocalInvocationId), ex, slot, writer;
        if (t == TY_FLOAT) {
            /* the exclusive scan itself (inclusive minus v is not exactly
             * it in float) and a reduce for the slot */
            ex = sb_group_op(s, op, ty, SpvGroupOperationExclusiveScan, v);
            slot = sb_group_op(s, op, ty, SpvGroupOperationReduce, v);
            writer = SB_OP(s, SpvOpIEqual, s->t_bool, lane, sb_const_u(s, 0));
        } else {
            /* integers (exact, wrapping): one inclusive scan, as the twin;
             * the exclusive prefix is it minus v and the subgroup's sum is
             * its last lane's: lane SubgroupSize-1 (G and the subgroup size
             * are powers of two, so with G >= SubgroupSize the group is
             * whole subgroups; this assumes the driver fills them, as the
             * twin and every driver at hand do, though Vulkan promises it
             * only with REQUIRE_FULL_SUBGROUPS) or invocation G-1 (G <
             * SubgroupSize: one subgroup) */
            slot = sb_group_op(s, op, ty, SpvGroupOperationInclusiveScan, v);
            ex = SB_OP(s, SpvOpISub, ty, slot, v);
            uint32_t last = SB_OP(s, SpvOpISub, s->t_u32, sb_builtin_sg(s, SpvBuiltInSubgroupSize),
                                  sb_const_u(s, 1));
            writer = SB_OP(s, SpvOpLogicalOr, s->t_bool, SB_OP(s, SpvOpIEqual, s->t_bool, lane, last),
                           SB_OP(s, SpvOpIEqual, s->t_bool, l, sb_const_u(s, (uint32_t)G - 1)));
        }
        SbIf f = sb_if_begin(s, writer, 0);
        sh_store(s, sh, ty, sb_builtin_sg(s, SpvBuiltInSubgroupId), slot);
        sb_if_end(s, &f);
        sb_barrier(s);
        /* the slots of the earlier subgroups only (not all NumSubgroups
         * slots in every invocation, with a select per slot) */
        uint32_t bef = sb_var(s, ty);
        sb_store(s, bef, ex);
        SbFor f2 = sb_for_begin(s, sb_const_u(s, 0), sb_builtin_sg(s, SpvBuiltInSubgroupId),
                                sb_const_u(s, 1));
        sb_store(s, bef, red_combine(s, RED_SUM, t, sb_load(s, ty, bef), sh_load(s, sh, ty, f2.iv)));
        sb_for_end(s, &f2);
        *excl = sb_load(s, ty, bef);
        if (!total) return;
        /* the last invocation's inclusive prefix is the total: it passes it
         * on in sh[G], which no slot uses */
        uint32_t gl = sb_const_u(s, (uint32_t)G);
        f = sb_if_begin(s, SB_OP(s, SpvOpIEqual, s->t_bool, l, sb_const_u(s, (uint32_t)G - 1)), 0);
        sh_store(s, sh, ty, gl, red_combine(s, RED_SUM, t, *excl, v));
        sb_if_end(s, &f);
        sb_barrier(s);
        *total = sh_load(s, sh, ty, gl);
        return;
    }
    sh_store(s, sh, ty, l, v);
    sb_barrier(s);
    for (int off = 1; off < G; off *= 2) {
        uint32_t o = sb_const_u(s, (uint32_t)off);
        uint32_t has = SB_OP(s, SpvOpUGreaterThanEqual, s->t_bool, l, o);
        uint32_t tmp = sb_var(s, ty);
        sb_store(s, tmp, red_identity(s, RED_SUM, t));
        SbIf f = sb_if_begin(s, has, 0);
        sb_store(s, tmp, sh_load(s, sh, ty, SB_OP(s, SpvOpISub, s->t_u32, l, o)));
        sb_if_end(s, &f);
        uint32_t add = sb_load(s, ty, tmp);
        sb_barrier(s);
        sh_store(s, sh, ty, l, red_combine(s, RED_SUM, t, sh_load(s, sh, ty, l), add));
        sb_barrier(s);
    }
    uint32_t inc = sh_load(s, sh, ty, l);
    if (total) *total = sh_load(s, sh, ty, sb_const_u(s, (uint32_t)G - 1));
    /* exact for integers; for float the inclusive prefix minus v */
    *excl = SB_OP(s, t == TY_FLOAT ? SpvOpFSub : SpvOpISub, ty, inc, v);
    sb_barrier(s);
}

/* Loads E (a multiple of 4) consecutive elements of binding b from `flat`
 * on into x[] (element type), zero at and beyond `lim` (a flat index
 * bound, lim > 0: the end of a non-empty row). v4: flat and lim are
 * multiples of 4 (the variant for rows of a multiple of 4 elements), so
 * each 4-run is all in or all out: one vec4 load per run; else one scalar
 * load per element. No branches: an out-of-range access loads the row's
 * last element or vec4 instead (the index is clamped, so no load leaves
 * the buffer) and a select gives zero (a branch costs both sides on a SIMD
 * driver such as lavapipe). branch (v4 only): each vec4 load is in a
 * branch on its bound instead, zero when out, as the twin's pass 3 does:
 * in the scan's pass 3 that measured 5-9 % faster on lavapipe (minima of
 * three A/B runs of 25; docs/PERFORMANCE.md), in pass 1 no difference. */
static void load_run(Sb *s, int b, ScalarType et, int E, uint32_t flat, uint32_t lim, int v4,
                     int branch, uint32_t *x) {
    uint32_t ety = s->buf_elem[b], zero = sb_const_typed(s, et, 0, 0);
    if (v4 && branch) {
        uint32_t q = SB_OP(s, SpvOpShiftRightLogical, s->t_u32, flat, sb_const_u(s, 2));
        uint32_t v4t = sb_vec4(s, ety), z4 = SB_OP(s, SpvOpCompositeConstruct, v4t, zero, zero, zero, zero);
        for (int k = 0; k < E / 4; k++) {
            uint32_t i = sb_uadd(s, flat, sb_const_u(s, (uint32_t)(4 * k))), tmp = sb_var(s, v4t);
            sb_store(s, tmp, z4);
            SbIf f = sb_if_begin(s, sb_ult(s, i, lim), 0);
            sb_store(s, tmp, sb_buf4_load(s, b, sb_uadd(s, q, sb_const_u(s, (uint32_t)k))));
            sb_if_end(s, &f);
            uint32_t v = sb_load(s, v4t, tmp);
            for (int c = 0; c < 4; c++) x[4 * k + c] = SB_OP(s, SpvOpCompositeExtract, ety, v, (uint32_t)c);
        }
        return;
    }
    if (v4) {
        uint32_t q = SB_OP(s, SpvOpShiftRightLogical, s->t_u32, flat, sb_const_u(s, 2));
        uint32_t last = SB_OP(s, SpvOpISub, s->t_u32,
                              SB_OP(s, SpvOpShiftRightLogical, s->t_u32, lim, sb_const_u(s, 2)),
                              sb_const_u(s, 1));
        for (int k = 0; k < E / 4; k++) {
            uint32_t i = sb_uadd(s, flat, sb_const_u(s, (uint32_t)(4 * k)));
            uint32_t in = sb_ult(s, i, lim);
            uint32_t v = sb_buf4_load(s, b, sb_umin(s, sb_uadd(s, q, sb_const_u(s, (uint32_t)k)), last));
            for (int c = 0; c < 4; c++)
                x[4 * k + c] = SB_OP(s, SpvOpSelect, ety, in,
                                     SB_OP(s, SpvOpCompositeExtract, ety, v, (uint32_t)c), zero);
        }
        return;
    }
    uint32_t last = SB_OP(s, SpvOpISub, s->t_u32, lim, sb_const_u(s, 1));
    for (int j = 0; j < E; j++) {
        uint32_t i = sb_uadd(s, flat, sb_const_u(s, (uint32_t)j));
        x[j] = SB_OP(s, SpvOpSelect, ety, sb_ult(s, i, lim), sb_buf_load(s, b, sb_umin(s, i, last)), zero);
    }
}

/* Stores x[0..E) (accumulator type) to binding b at flat .. flat+E-1,
 * skipping indices at or beyond lim; v4 as for load_run. */
static void store_run(Sb *s, int b, ScalarType et, int E, uint32_t flat, uint32_t lim, int v4,
                      const uint32_t *x) {
    uint32_t ety = s->buf_elem[b];
    if (v4) {
        uint32_t q = SB_OP(s, SpvOpShiftRightLogical, s->t_u32, flat, sb_const_u(s, 2));
        for (int k = 0; k < E / 4; k++) {
            uint32_t i = sb_uadd(s, flat, sb_const_u(s, (uint32_t)(4 * k)));
            uint32_t v = SB_OP(s, SpvOpCompositeConstruct, sb_vec4(s, ety), x[4 * k], x[4 * k + 1],
                               x[4 * k + 2], x[4 * k + 3]);
            SbIf f = sb_if_begin(s, sb_ult(s, i, lim), 0);
            sb_buf4_store(s, b, sb_uadd(s, q, sb_const_u(s, (uint32_t)k)), v);
            sb_if_end(s, &f);
        }
        return;
    }
    for (int j = 0; j < E; j++) {
        uint32_t i = sb_uadd(s, flat, sb_const_u(s, (uint32_t)j));
        guarded_store(s, b, i, sb_ult(s, i, lim), from_acc(s, et, x[j]));
    }
}

/* In-register inclusive scan of x[0..E) (accumulator type). Integers
 * (exact and associative, so any order gives the same bits): each run of
 * 4 is scanned on its own, then the previous runs' total is added to all
 * 4, as the twin does with its ivec4s: the dependency chain is 3 + E/4
 * adds instead of E - 1. Floats keep the left-to-right order (their
 * rounding, and so their results, depend on it). */
static void serial_scan(Sb *s, ScalarType at, int E, uint32_t *x) {
    if (at == TY_FLOAT || E % 4) {
        for (int j = 1; j < E; j++) x[j] = red_combine(s, RED_SUM, at, x[j - 1], x[j]);
        return;
    }
    for (int k = 0; k < E; k += 4) {
        for (int c = 1; c < 4; c++) x[k + c] = red_combine(s, RED_SUM, at, x[k + c - 1], x[k + c]);
        if (k == 0) continue;
        uint32_t run = x[k - 1];
        for (int c = 0; c < 4; c++) x[k + c] = red_combine(s, RED_SUM, at, run, x[k + c]);
    }
}

static void lower_scan(Sb *s, int si, const IrStage *st) {
    int in = st->in[0], out = st->out;
    ScalarType et = s->k->params.v[in].type, at = acc_type(et);
    uint32_t aty = sb_scalar(s, at);
    int bin = sb_param_binding(s, in), bout = sb_param_binding(s, out);
    int G = pow2(st->sp[0]) && st->sp[0] <= 1024 ? st->sp[0] : 256;
    int E = st->sp[1] >= 4 && st->sp[1] <= 32 && st->sp[1] % 4 == 0 ? st->sp[1] : 16;
    int B = G * E;          /* elements per block: one pass of the group */
    int local[3] = {G, 1, 1};
    /* Each row is cut into nbk blocks of B; blocks go to nch <= B chunks of
     * bpc consecutive blocks (so pass 2 scans every row's chunk sums in
     * one block pass). */
    IrSize *Rh = rows_host(s, in), *Ch = cols_host(s, in);
    IrSize *nbkh = hceil(s, Ch, B);
    IrSize *bpch = ir_size_bin(s->a, SZ_MAX, hceil(s, nbkh, B), hconst(s, 1));
    IrSize *nchh = ir_size_bin(s->a, SZ_CEILDIV, nbkh, bpch);
    int scr = sb_add_scratch(
        s, ir_size_bin(s->a, SZ_MUL, ir_size_bin(s->a, SZ_MUL, Rh, nchh), hconst(s, 4)), at);
    /* The shape on the device. A one-block variant (lp 0) runs only when
     * bpc == 1, so there bpc is the constant 1 and nch is nbk: no integer
     * division by a value known only at run time (nch = ceildiv(nbk, bpc)),
     * which a SIMD driver such as lavapipe runs lane by lane in every
     * invocation (a tenth of pass 1 on lavapipe at 16M ints). */
#define SCAN_SHAPE(lp)                                                                      \
    uint32_t R = rows_dev(s, in), C = cols_dev(s, in);                                      \
    uint32_t nbk = sb_size_u32(s, nbkh);                                                    \
    uint32_t bpc = (lp) ? sb_size_u32(s, bpch) : sb_const_u(s, 1);                          \
    uint32_t nch = (lp) ? sb_size_u32(s, nchh) : nbk;                                       \
    (void)R; (void)C; (void)nbk; (void)bpc
    /* Variants of passes 1 and 3: "…1" (one) when every group has one
     * block of one row (bpc == 1 and rows within the group-count cap, so
     * no loop at all: on lavapipe the row and block loops around a body
     * with barriers cost about as much as the body), else the looped one;
     * each with vec4 and scalar variants when the element is 32-bit. The
     * group-count factors (`one`, variant_sel) run exactly one. */
    IrSize *one = ir_size_bin(s->a, SZ_MUL,
        ir_size_bin(s->a, SZ_SUB, hconst(s, 1), ir_size_bin(s->a, SZ_MIN, ir_size_bin(s->a, SZ_SUB, bpch, hconst(s, 1)), hconst(s, 1))),
        ir_size_bin(s->a, SZ_SUB, hconst(s, 1), ir_size_bin(s->a, SZ_MIN,
            ir_size_bin(s->a, SZ_DIV, Rh, hconst(s, (int64_t)s->t->max_groups + 1)), hconst(s, 1))));
#define SCAN_VARIANT_SEL(lp, v4)                                                                        \
    ir_size_bin(s->a, SZ_MUL, (lp) ? ir_size_bin(s->a, SZ_SUB, hconst(s, 1), one) : one,                \
                et != TY_HALF ? variant_sel(s, Ch, v4) : hconst(s, 1))
    /* pass 1: chunk sums; groups (nch, rows). Invocation t reads elements
     * t*4 + k*4G .. +3 of each block (vec4s side by side). */
    for (int lp = 0; lp < 2; lp++)
    for (int v4 = et != TY_HALF; v4 >= 0; v4--) {
        sb_fn_begin(s);
        uint32_t sh = sb_shared(s, aty, (uint32_t)G, "red");
        SCAN_SHAPE(lp);
        SbFor rf = {0}, kf = {0};
        uint32_t row = wgid(s, 1), b = wgid(s, 0);
        if (lp) {
            rf = sb_for_begin(s, row, R, nwg(s, 1));
            row = rf.iv;
        }
        uint32_t base = sb_umul(s, row, C), rowend = sb_uadd(s, base, C);
        uint32_t acc = sb_var(s, aty);
        sb_store(s, acc, red_identity(s, RED_SUM, at));
        uint32_t blk = sb_umul(s, b, bpc);
        if (lp) {
            kf = sb_for_begin(s, blk, sb_umin(s, sb_uadd(s, blk, bpc), nbk), sb_const_u(s, 1));
            blk = kf.iv;
        }
        uint32_t e0 = sb_umul(s, blk, sb_const_u(s, (uint32_t)B));
        uint32_t v = sb_load(s, aty, acc);
        for (int k = 0; k < E / 4; k++) {
            uint32_t flat = sb_uadd(s, sb_uadd(s, base, e0),
                                    sb_uadd(s, sb_umul(s, lid(s, 0), sb_const_u(s, 4)),
                                            sb_const_u(s, (uint32_t)(k * 4 * G))));
            uint32_t x[4];
            load_run(s, bin, et, 4, flat, rowend, v4, 0, x);
            for (int c = 0; c < 4; c++) x[c] = to_acc(s, et, x[c]);
            v = red_combine(s, RED_SUM, at, v, red_combine(s, RED_SUM, at,
                                                         red_combine(s, RED_SUM, at, x[0], x[1]),
                                                         red_combine(s, RED_SUM, at, x[2], x[3])));
        }
        sb_store(s, acc, v);
        if (lp) sb_for_end(s, &kf);
        SbIf f;
        uint32_t r = group_reduce_in0(s, sh, G, RED_SUM, at, sb_load(s, aty, acc), &f);
        sb_buf_store(s, scr, sb_uadd(s, sb_umul(s, row, nch), b), r);
        sb_if_end(s, &f);
        if (lp) {
            sb_barrier(s); /* the next row reuses sh */
            sb_for_end(s, &rf);
        }
        const char *e = sb_entry_name(s, si, lp ? (v4 ? "reduce4" : "reduce") : (v4 ? "reduce41" : "reduce1"));
        sb_fn_end_entry(s, e, local);
        IrSize *gx = ir_size_bin(s->a, SZ_MUL, nchh, SCAN_VARIANT_SEL(lp, v4));
        if (!lp && (v4 || et == TY_HALF)) sb_add_dispatch(s, e, si, local, gx, cap(s, Rh), hconst(s, 1));
        else sb_add_dispatch_alt(s, e, si, local, gx, cap(s, Rh), hconst(s, 1));
        if (v4) mark_vec4(s);
        /* loop budget: rows x (bpc blocks + the slot fold); one: the fold */
        IrSize *fold = cg_loops_group_fold(s->a, s->t, G);
        cg_dispatch_set_loops(s->launch, !lp ? fold : cg_loops_for(s->a, cg_loops_strided(s->a, Rh, cap(s, Rh), 1),
            cg_loops_sum(s->a, cg_loops_for(s->a, bpch, NULL), fold)));
    }
    /* pass 2: exclusive scan of each row's nch <= B chunk sums in place;
     * invocation t owns sums t*E .. t*E+E-1 */
    {
        sb_fn_begin(s);
        uint32_t sh = sb_shared(s, aty, (uint32_t)G + 1, "scan"); /* + the total (group_exscan) */
        SCAN_SHAPE(1);
        SbFor rf = sb_for_begin(s, wgid(s, 1), R, nwg(s, 1));
        uint32_t rb = sb_umul(s, rf.iv, nch);
        uint32_t first = sb_umul(s, lid(s, 0), sb_const_u(s, (uint32_t)E));
        uint32_t x[64], run = red_identity(s, RED_SUM, at);
        for (int j = 0; j < E; j++) {
            uint32_t i = sb_uadd(s, first, sb_const_u(s, (uint32_t)j));
            x[j] = guarded_load(s, scr, sb_uadd(s, rb, i), sb_ult(s, i, nch), aty,
                                red_identity(s, RED_SUM, at));
            uint32_t ex = run;
            run = red_combine(s, RED_SUM, at, run, x[j]);
            x[j] = ex;
        }
        uint32_t before, total;
        group_exscan(s, sh, G, at, run, &before, &total);
        (void)total;
        for (int j = 0; j < E; j++) {
            uint32_t i = sb_uadd(s, first, sb_const_u(s, (uint32_t)j));
            guarded_store(s, scr, sb_uadd(s, rb, i), sb_ult(s, i, nch),
                          red_combine(s, RED_SUM, at, before, x[j]));
        }
        sb_for_end(s, &rf);
        const char *e = sb_entry_name(s, si, "partials");
        sb_fn_end_entry(s, e, local);
        sb_add_dispatch(s, e, si, local, hconst(s, 1), cap(s, Rh), hconst(s, 1));
        cg_dispatch_set_loops(s->launch, cg_loops_for(s->a, cg_loops_strided(s->a, Rh, cap(s, Rh), 1),
                                                      cg_loops_group_fold(s->a, s->t, G)));
    }
    /* pass 3: each chunk's blocks in order from the chunk's prefix;
     * invocation t scans elements t*E .. t*E+E-1 of a block serially, the
     * group scans the invocations' totals; variants as in pass 1 (the one-
     * block variant carries nothing to a next block: no group total) */
    for (int lp = 0; lp < 2; lp++)
    for (int v4 = et != TY_HALF; v4 >= 0; v4--) {
        sb_fn_begin(s);
        uint32_t sh = sb_shared(s, aty, (uint32_t)G + 1, "scan"); /* + the total (group_exscan) */
        SCAN_SHAPE(lp);
        SbFor rf = {0}, kf = {0};
        uint32_t row = wgid(s, 1), b = wgid(s, 0);
        if (lp) {
            rf = sb_for_begin(s, row, R, nwg(s, 1));
            row = rf.iv;
        }
        uint32_t base = sb_umul(s, row, C), rowend = sb_uadd(s, base, C);
        uint32_t carry = sb_var(s, aty);
        sb_store(s, carry, sb_buf_load(s, scr, sb_uadd(s, sb_umul(s, row, nch), b)));
        uint32_t blk = sb_umul(s, b, bpc);
        if (lp) {
            kf = sb_for_begin(s, blk, sb_umin(s, sb_uadd(s, blk, bpc), nbk), sb_const_u(s, 1));
            blk = kf.iv;
        }
        uint32_t e0 = sb_umul(s, blk, sb_const_u(s, (uint32_t)B));
        uint32_t flat = sb_uadd(s, sb_uadd(s, base, e0),
                                sb_umul(s, lid(s, 0), sb_const_u(s, (uint32_t)E)));
        uint32_t x[64];
        load_run(s, bin, et, E, flat, rowend, v4, 1, x);
        for (int j = 0; j < E; j++) x[j] = to_acc(s, et, x[j]);
        serial_scan(s, at, E, x);
        uint32_t before, total;
        group_exscan(s, sh, G, at, x[E - 1], &before, lp ? &total : NULL);
        uint32_t cv = sb_load(s, aty, carry);
        uint32_t off = red_combine(s, RED_SUM, at, cv, before);
        for (int j = 0; j < E; j++) x[j] = red_combine(s, RED_SUM, at, off, x[j]);
        store_run(s, bout, et, E, flat, rowend, v4, x);
        if (lp) {
            sb_store(s, carry, red_combine(s, RED_SUM, at, cv, total));
            sb_for_end(s, &kf);
            sb_for_end(s, &rf);
        }
        const char *e = sb_entry_name(s, si, lp ? (v4 ? "propagate4" : "propagate") : (v4 ? "propagate41" : "propagate1"));
        sb_fn_end_entry(s, e, local);
        IrSize *gx = ir_size_bin(s->a, SZ_MUL, nchh, SCAN_VARIANT_SEL(lp, v4));
        if (!lp && (v4 || et == TY_HALF)) sb_add_dispatch(s, e, si, local, gx, cap(s, Rh), hconst(s, 1));
        else sb_add_dispatch_alt(s, e, si, local, gx, cap(s, Rh), hconst(s, 1));
        if (v4) mark_vec4(s);
        /* loop budget: rows x bpc blocks x the group scan's slot fold; one:
         * the fold */
        IrSize *fold = cg_loops_group_fold(s->a, s->t, G);
        cg_dispatch_set_loops(s->launch, !lp ? fold : cg_loops_for(s->a, cg_loops_strided(s->a, Rh, cap(s, Rh), 1),
            cg_loops_for(s->a, bpch, fold)));
    }
#undef SCAN_VARIANT_SEL
#undef SCAN_SHAPE
}

/* ---- TRANSPOSE ---- */

/* transpose-block: no shared memory. Variant "block4" (32-bit element
 * types, R and C multiples of 4): each invocation moves 4x4 blocks, four
 * vec4 loads of consecutive input rows and four vec4 stores of the
 * transposed block, so every access fetches 16 bytes; "direct" (the
 * others): one element per invocation step, straight from in[r][c] to
 * out[c][r]. Groups of G x G (G = sp[0], 16) over block (element)
 * columns x rows, grid-strided past the cap; `sel` picks the variant. */
static void transpose_block(Sb *s, int si, const IrStage *st, int v4, IrSize *sel) {
    int in = st->in[0], out = st->out;
    int bin = sb_param_binding(s, in), bout = sb_param_binding(s, out);
    int G = st->sp[0] >= 1 && st->sp[0] <= 32 ? st->sp[0] : 16;
    int local[3] = {G, G, 1};
    uint32_t ety = s->buf_elem[bin];
    sb_fn_begin(s);
    uint32_t R = rows_dev(s, in), C = cols_dev(s, in), uG = sb_const_u(s, (uint32_t)G);
    /* loop extents: blocks of 4 in the vec4 variant, elements else */
    uint32_t RB = v4 ? SB_OP(s, SpvOpShiftRightLogical, s->t_u32, R, sb_const_u(s, 2)) : R;
    uint32_t CB = v4 ? SB_OP(s, SpvOpShiftRightLogical, s->t_u32, C, sb_const_u(s, 2)) : C;
    SbFor ry = sb_for_begin(s, sb_uadd(s, sb_umul(s, wgid(s, 1), uG), lid(s, 1)), RB, sb_umul(s, nwg(s, 1), uG));
    SbFor cx = sb_for_begin(s, sb_uadd(s, sb_umul(s, wgid(s, 0), uG), lid(s, 0)), CB, sb_umul(s, nwg(s, 0), uG));
    if (v4) {
        /* rows 4ry+i, vec4 column cx of in; rows 4cx+j, vec4 column ry of out */
        uint32_t v[4], r0 = sb_umul(s, ry.iv, sb_const_u(s, 4)), c0 = sb_umul(s, cx.iv, sb_const_u(s, 4));
        for (int i = 0; i < 4; i++)
            v[i] = sb_buf4_load(s, bin, sb_uadd(s, sb_umul(s, sb_uadd(s, r0, sb_const_u(s, (uint32_t)i)), CB), cx.iv));
        for (int j = 0; j < 4; j++) {
            uint32_t e[4];
            for (int i = 0; i < 4; i++) e[i] = SB_OP(s, SpvOpCompositeExtract, ety, v[i], (uint32_t)j);
            uint32_t w = SB_OP(s, SpvOpCompositeConstruct, sb_vec4(s, ety), e[0], e[1], e[2], e[3]);
            sb_buf4_store(s, bout, sb_uadd(s, sb_umul(s, sb_uadd(s, c0, sb_const_u(s, (uint32_t)j)), RB), ry.iv), w);
        }
    } else {
        uint32_t x = sb_buf_load(s, bin, sb_uadd(s, sb_umul(s, ry.iv, C), cx.iv));
        sb_buf_store(s, bout, sb_uadd(s, sb_umul(s, cx.iv, R), ry.iv), x);
    }
    sb_for_end(s, &cx);
    sb_for_end(s, &ry);
    const char *e = sb_entry_name(s, si, v4 ? "block4" : "direct");
    sb_fn_end_entry(s, e, local);
    IrSize *Rh = rows_host(s, in), *Ch = cols_host(s, in);
    if (v4) Rh = ir_size_bin(s->a, SZ_DIV, Rh, hconst(s, 4)), Ch = ir_size_bin(s->a, SZ_DIV, Ch, hconst(s, 4));
    IrSize *gx = cap(s, hceil(s, Ch, G)), *gy = cap(s, hceil(s, Rh, G));
    if (!sel) sb_add_dispatch(s, e, si, local, gx, gy, hconst(s, 1));
    else if (v4) sb_add_dispatch(s, e, si, local, ir_size_bin(s->a, SZ_MUL, gx, sel), gy, hconst(s, 1));
    else sb_add_dispatch_alt(s, e, si, local, ir_size_bin(s->a, SZ_MUL, gx, sel), gy, hconst(s, 1));
    if (v4) mark_vec4(s);
    /* loop budget: row steps x column steps */
    cg_dispatch_set_loops(s->launch, cg_loops_for(s->a, cg_loops_strided(s->a, Rh, gy, G),
        cg_loops_for(s->a, cg_loops_strided(s->a, Ch, gx, G), NULL)));
}

static void lower_transpose(Sb *s, int si, const IrStage *st) {
    int in = st->in[0], out = st->out;
    if (st->strategy == IR_STRAT_TRANSPOSE_BLOCK) {
        if (s->k->params.v[in].type == TY_HALF) {
            transpose_block(s, si, st, 0, NULL);
            return;
        }
        /* 1 when R and C are multiples of 4 */
        IrSize *R = rows_host(s, in), *C = cols_host(s, in);
        IrSize *r4 = ir_size_bin(s->a, SZ_MIN, ir_size_bin(s->a, SZ_ADD, ir_size_bin(s->a, SZ_REM, R, hconst(s, 4)),
                                                           ir_size_bin(s->a, SZ_REM, C, hconst(s, 4))), hconst(s, 1));
        transpose_block(s, si, st, 1, ir_size_bin(s->a, SZ_SUB, hconst(s, 1), r4));
        transpose_block(s, si, st, 0, r4);
        return;
    }
    int bin = sb_param_binding(s, in), bout = sb_param_binding(s, out);
    int T = st->sp[0] >= 4 && st->sp[0] <= 32 ? st->sp[0] : 16;
    int local[3] = {T, T, 1};
    uint32_t ety = s->buf_elem[bin];
    ScalarType et = s->k->params.v[in].type;
    sb_fn_begin(s);
    uint32_t sh = sb_shared(s, ety, (uint32_t)(T * (T + 1)), "tile");
    uint32_t R = rows_dev(s, in), C = cols_dev(s, in);
    uint32_t Tc = sb_const_u(s, (uint32_t)T), Tp = sb_const_u(s, (uint32_t)T + 1);
    uint32_t lx = lid(s, 0), ly = lid(s, 1);
    SbFor ty = sb_for_begin(s, sb_umul(s, wgid(s, 1), Tc), R, sb_umul(s, nwg(s, 1), Tc));
    SbFor tx = sb_for_begin(s, sb_umul(s, wgid(s, 0), Tc), C, sb_umul(s, nwg(s, 0), Tc));
    uint32_t r = sb_uadd(s, ty.iv, ly), c = sb_uadd(s, tx.iv, lx);
    uint32_t ok = SB_OP(s, SpvOpLogicalAnd, s->t_bool, sb_ult(s, r, R), sb_ult(s, c, C));
    uint32_t v = guarded_load(s, bin, sb_uadd(s, sb_umul(s, r, C), c), ok, ety,
                              sb_const_typed(s, et, 0, 0));
    sh_store(s, sh, ety, sb_uadd(s, sb_umul(s, ly, Tp), lx), v);
    sb_barrier(s);
    /* out[C][R]: this invocation writes out[tx + ly][ty + lx] = in[ty + lx][tx + ly] */
    uint32_t orow = sb_uadd(s, tx.iv, ly), ocol = sb_uadd(s, ty.iv, lx);
    uint32_t ok2 = SB_OP(s, SpvOpLogicalAnd, s->t_bool, sb_ult(s, orow, C), sb_ult(s, ocol, R));
    uint32_t w = sh_load(s, sh, ety, sb_uadd(s, sb_umul(s, lx, Tp), ly));
    guarded_store(s, bout, sb_uadd(s, sb_umul(s, orow, R), ocol), ok2, w);
    sb_barrier(s);
    sb_for_end(s, &tx);
    sb_for_end(s, &ty);
    const char *e = sb_entry_name(s, si, "tiles");
    sb_fn_end_entry(s, e, local);
    sb_add_dispatch(s, e, si, local, cap(s, hceil(s, cols_host(s, in), T)),
                    cap(s, hceil(s, rows_host(s, in), T)), hconst(s, 1));
    /* loop budget: row tiles x column tiles */
    cg_dispatch_set_loops(s->launch, cg_loops_for(s->a,
        cg_loops_strided(s->a, rows_host(s, in), cap(s, hceil(s, rows_host(s, in), T)), T),
        cg_loops_for(s->a, cg_loops_strided(s->a, cols_host(s, in), cap(s, hceil(s, cols_host(s, in), T)), T),
                     NULL)));
}

/* ---- MATMUL ---- */

/* 1 when x % m == 0, else 0 (host formula) */
static IrSize *hdivisible(Sb *s, IrSize *x, int64_t m) {
    return ir_size_bin(s->a, SZ_SUB, hconst(s, 1),
                       ir_size_bin(s->a, SZ_MIN, ir_size_bin(s->a, SZ_REM, x, hconst(s, m)), hconst(s, 1)));
}

/* Float SGEMM with 128x128 tiles, 16x16 invocations of 8x8 outputs each,
 * K-slices of 8 staged in shared memory as vec4 (A transposed so both
 * operands are read as vec4 along the tile edge), for any M, N, K. One
 * 1-D group per output tile, and two tile bodies, so that only the tiles
 * that need it pay for bounds checks:
 *  interior     the floor(M/128) x floor(N/128) full tiles, over the
 *               floor(K/8) full K-slices with no checks at all, then at
 *               most one K-slice checked along K only;
 *  edge         the last tile column and row when N or M is not a multiple
 *               of 128: every access checked (a masked tile), and the
 *               products only where an invocation's outputs start in C.
 * The branch between them is uniform in a group. As two dispatches
 * (interior, then edge) a product of one interior and one edge tile ran
 * them one after the other: on llvmpipe 128x512x200 took 5.6 ms as two,
 * 2.9-3.1 as one, 129^3 2.2 and 1.9; the tiles are dealt over the group
 * ids (below) so that one dispatch also balances larger products. When M
 * and N are multiples of 128 there is no edge tile, and a kernel with the
 * interior body alone runs ("tiles128"): llvmpipe compiles a kernel at
 * its first dispatch, and the one with both bodies took 944 ms there
 * against 466 (a 256^3 matmul's first run). Each comes in two variants: vec4 global loads and
 * stores when K and N are multiples of 4 (every row of A, B and C then
 * starts on a vec4, and a checked vec4 is either wholly in range or wholly
 * out), scalar ones ("tiles128s") otherwise; the group-count factor
 * `vsel` is 1 for the vec4 shapes; with `whole`, exactly one of the four
 * runs. A checked load
 * clamps its index to 0 and selects zero (no branch); a checked store
 * branches. Tiles grid-stride past the group-count cap. */
typedef struct Mm128 {
    int ba, bb, bc, vec;
    uint32_t As, Bs, M, K, N, K4, N4;
    uint32_t lx, ly, ar, ak, bk, bcol, ar4, arc, lx2, ly2;
    uint32_t acc[16];       /* Function vec4 accumulators: acc[2i + h] is row
                             * 8ly + i, columns 8lx + 4h .. 8lx + 4h + 3 */
} Mm128;

static uint32_t uand(Sb *s, uint32_t a, uint32_t b) {
    return SB_OP(s, SpvOpLogicalAnd, s->t_bool, a, b);
}
static uint32_t ushr(Sb *s, uint32_t a, uint32_t n) {
    return SB_OP(s, SpvOpShiftRightLogical, s->t_u32, a, sb_const_u(s, n));
}
/* idx when ok, else 0 (always in range: every operand has an element) */
static uint32_t clamp_idx(Sb *s, uint32_t ok, uint32_t idx) {
    return SB_OP(s, SpvOpSelect, s->t_u32, ok, idx, sb_const_u(s, 0));
}

/* Stages the K-slice at kt of the tile at (by, bx) into As/Bs, then adds
 * its products to the accumulators, between two barriers. `checked`: rows,
 * columns and K are checked (out of range reads as zero). */
static void mm128_slice(Sb *s, const Mm128 *m, uint32_t by, uint32_t bx, uint32_t kt, int checked, uint32_t live) {
    uint32_t f32 = s->t_f32, v4 = sb_vec4(s, f32), zero = sb_const_f(s, 0);
    uint32_t pf = sb_ptr(s, SpvStorageClassWorkgroup, f32);
    /* A: row by+ar, columns kt+ak .. kt+ak+3, into As[ak+c][ar] */
    uint32_t arow = sb_uadd(s, by, m->ar), acol = sb_uadd(s, kt, m->ak), a[4];
    if (m->vec) {
        uint32_t idx = sb_uadd(s, sb_umul(s, arow, m->K4), ushr(s, acol, 2)), ok = 0;
        if (checked) {
            ok = uand(s, sb_ult(s, arow, m->M), sb_ult(s, acol, m->K));
            idx = clamp_idx(s, ok, idx);
        }
        uint32_t av = sb_buf4_load(s, m->ba, idx);
        for (int c = 0; c < 4; c++) {
            a[c] = SB_OP(s, SpvOpCompositeExtract, f32, av, (uint32_t)c);
            if (checked) a[c] = SB_OP(s, SpvOpSelect, f32, ok, a[c], zero);
        }
    } else {
        uint32_t rowok = checked ? sb_ult(s, arow, m->M) : 0, base = sb_umul(s, arow, m->K);
        for (int c = 0; c < 4; c++) {
            uint32_t k = sb_uadd(s, acol, sb_const_u(s, (uint32_t)c)), idx = sb_uadd(s, base, k);
            uint32_t ok = checked ? uand(s, rowok, sb_ult(s, k, m->K)) : 0;
            a[c] = sb_buf_load(s, m->ba, checked ? clamp_idx(s, ok, idx) : idx);
            if (checked) a[c] = SB_OP(s, SpvOpSelect, f32, ok, a[c], zero);
        }
    }
    for (int c = 0; c < 4; c++) {
        uint32_t slot = sb_uadd(s, sb_umul(s, sb_uadd(s, m->ak, sb_const_u(s, (uint32_t)c)), sb_const_u(s, 32)), m->ar4);
        sb_store(s, SB_OP(s, SpvOpAccessChain, pf, m->As, slot, m->arc), a[c]);
    }
    /* B: row kt+bk, columns bx+4bcol .. bx+4bcol+3, into Bs[bk][bcol] */
    uint32_t brow = sb_uadd(s, kt, m->bk), bcol = sb_uadd(s, bx, sb_umul(s, m->bcol, sb_const_u(s, 4)));
    uint32_t bv;
    if (m->vec) {
        uint32_t idx = sb_uadd(s, sb_umul(s, brow, m->N4), ushr(s, bcol, 2)), ok = 0;
        if (checked) {
            ok = uand(s, sb_ult(s, brow, m->K), sb_ult(s, bcol, m->N));
            idx = clamp_idx(s, ok, idx);
        }
        bv = sb_buf4_load(s, m->bb, idx);
        if (checked) {
            uint32_t b[4];
            for (int c = 0; c < 4; c++)
                b[c] = SB_OP(s, SpvOpSelect, f32, ok, SB_OP(s, SpvOpCompositeExtract, f32, bv, (uint32_t)c), zero);
            bv = SB_OP(s, SpvOpCompositeConstruct, v4, b[0], b[1], b[2], b[3]);
        }
    } else {
        uint32_t rowok = checked ? sb_ult(s, brow, m->K) : 0, base = sb_umul(s, brow, m->N), b[4];
        for (int c = 0; c < 4; c++) {
            uint32_t col = sb_uadd(s, bcol, sb_const_u(s, (uint32_t)c)), idx = sb_uadd(s, base, col);
            uint32_t ok = checked ? uand(s, rowok, sb_ult(s, col, m->N)) : 0;
            b[c] = sb_buf_load(s, m->bb, checked ? clamp_idx(s, ok, idx) : idx);
            if (checked) b[c] = SB_OP(s, SpvOpSelect, f32, ok, b[c], zero);
        }
        bv = SB_OP(s, SpvOpCompositeConstruct, v4, b[0], b[1], b[2], b[3]);
    }
    sh_store(s, m->Bs, v4, sb_uadd(s, sb_umul(s, m->bk, sb_const_u(s, 32)), m->bcol), bv);
    sb_barrier(s);
    /* An edge tile's invocations whose 8x8 outputs lie wholly outside C
     * skip the products (`live` is the condition; no barrier inside). On
     * llvmpipe the time then follows the live invocations: 300x200x500,
     * whose edge tiles are 4 of 6, went from 6.7 to 6.2 ms (best of 40);
     * a 0-or-1-trip loop instead of the if was slower than no skip. */
    SbIf on = {0};
    if (live) on = sb_if_begin(s, live, 0);
    uint32_t cur[16];
    for (int i = 0; i < 16; i++) cur[i] = sb_load(s, v4, m->acc[i]);
    for (int k = 0; k < 8; k++) {
        uint32_t kb = sb_const_u(s, (uint32_t)(k * 32));
        uint32_t a0 = sh_load(s, m->As, v4, sb_uadd(s, kb, m->ly2));
        uint32_t a1 = sh_load(s, m->As, v4, sb_uadd(s, kb, sb_uadd(s, m->ly2, sb_const_u(s, 1))));
        uint32_t b0 = sh_load(s, m->Bs, v4, sb_uadd(s, kb, m->lx2));
        uint32_t b1 = sh_load(s, m->Bs, v4, sb_uadd(s, kb, sb_uadd(s, m->lx2, sb_const_u(s, 1))));
        for (int i = 0; i < 8; i++) {
            uint32_t ai = SB_OP(s, SpvOpCompositeExtract, f32, i < 4 ? a0 : a1, (uint32_t)(i & 3));
            cur[2 * i] = SB_OP(s, SpvOpFAdd, v4, cur[2 * i], SB_OP(s, SpvOpVectorTimesScalar, v4, b0, ai));
            cur[2 * i + 1] =
                SB_OP(s, SpvOpFAdd, v4, cur[2 * i + 1], SB_OP(s, SpvOpVectorTimesScalar, v4, b1, ai));
        }
    }
    for (int i = 0; i < 16; i++) sb_store(s, m->acc[i], cur[i]);
    if (live) sb_if_end(s, &on);
    sb_barrier(s);
}

/* One tile at (by, bx): zero the accumulators, the K-slices, the stores. */
static void mm128_tile(Sb *s, const Mm128 *m, uint32_t by, uint32_t bx, int edge) {
    uint32_t f32 = s->t_f32, v4 = sb_vec4(s, f32);
    uint32_t z = sb_const_f(s, 0), z4 = SB_OP(s, SpvOpCompositeConstruct, v4, z, z, z, z);
    for (int i = 0; i < 16; i++) sb_store(s, m->acc[i], z4);
    uint32_t u8 = sb_const_u(s, 8);
    /* interior: the full K-slices unchecked, then the partial one (K % 8
     * != 0: at most one trip) checked; edge: every slice checked */
    uint32_t kfull = edge ? sb_const_u(s, 0) : SB_OP(s, SpvOpBitwiseAnd, s->t_u32, m->K, sb_const_u(s, ~7u));
    if (!edge) {
        SbFor kt = sb_for_begin(s, sb_const_u(s, 0), kfull, u8);
        mm128_slice(s, m, by, bx, kt.iv, 0, 0);
        sb_for_end(s, &kt);
    }
    /* edge: whether this invocation's first output row and column are in C */
    uint32_t live = 0;
    if (edge) {
        uint32_t r0 = sb_uadd(s, by, sb_umul(s, m->ly, u8)), c0 = sb_uadd(s, bx, sb_umul(s, m->lx, u8));
        live = uand(s, sb_ult(s, r0, m->M), sb_ult(s, c0, m->N));
    }
    SbFor kt = sb_for_begin(s, kfull, m->K, u8);
    mm128_slice(s, m, by, bx, kt.iv, 1, live);
    sb_for_end(s, &kt);
    uint32_t col0 = sb_uadd(s, bx, sb_umul(s, m->lx, u8));
    for (int i = 0; i < 8; i++) {
        uint32_t r = sb_uadd(s, by, sb_uadd(s, sb_umul(s, m->ly, u8), sb_const_u(s, (uint32_t)i)));
        uint32_t rok = edge ? sb_ult(s, r, m->M) : 0;
        for (int h = 0; h < 2; h++) {
            uint32_t col = sb_uadd(s, col0, sb_const_u(s, (uint32_t)(4 * h)));
            uint32_t v = sb_load(s, v4, m->acc[2 * i + h]);
            if (m->vec) {
                uint32_t o = sb_uadd(s, sb_umul(s, r, m->N4), ushr(s, col, 2));
                SbIf f;
                if (edge) f = sb_if_begin(s, uand(s, rok, sb_ult(s, col, m->N)), 0);
                sb_buf4_store(s, m->bc, o, v);
                if (edge) sb_if_end(s, &f);
                continue;
            }
            uint32_t base = sb_umul(s, r, m->N);
            for (int c = 0; c < 4; c++) {
                uint32_t cc = sb_uadd(s, col, sb_const_u(s, (uint32_t)c));
                uint32_t x = SB_OP(s, SpvOpCompositeExtract, f32, v, (uint32_t)c);
                if (edge) guarded_store(s, m->bc, sb_uadd(s, base, cc), uand(s, rok, sb_ult(s, cc, m->N)), x);
                else sb_buf_store(s, m->bc, sb_uadd(s, base, cc), x);
            }
        }
    }
}

/* Emits one of the two entry points (vec or scalar) and its dispatch. */
static void matmul128(Sb *s, int si, const IrStage *st, int edges, int vec, IrSize *vsel) {
    int pa = st->in[0], pb = st->in[1], pc = st->out;
    int local[3] = {16, 16, 1};
    uint32_t v4 = sb_vec4(s, s->t_f32);
    Mm128 m;
    m.ba = sb_param_binding(s, pa), m.bb = sb_param_binding(s, pb), m.bc = sb_param_binding(s, pc);
    m.vec = vec;
    sb_fn_begin(s);
    m.As = sb_shared(s, v4, 8 * 32, "As"), m.Bs = sb_shared(s, v4, 8 * 32, "Bs");
    m.M = sb_dim(s, pa, 0), m.K = sb_dim(s, pa, 1), m.N = sb_dim(s, pb, 1);
    m.K4 = ushr(s, m.K, 2), m.N4 = ushr(s, m.N, 2);
    m.lx = lid(s, 0), m.ly = lid(s, 1);
    uint32_t tid = sb_uadd(s, sb_umul(s, m.ly, sb_const_u(s, 16)), m.lx);
    /* loader roles: 256 invocations move 128 rows x 8 of A and 8 rows x
     * 128 of B, four consecutive elements each */
    m.ar = ushr(s, tid, 1);
    m.ak = sb_umul(s, SB_OP(s, SpvOpBitwiseAnd, s->t_u32, tid, sb_const_u(s, 1)), sb_const_u(s, 4));
    m.bk = ushr(s, tid, 5);
    m.bcol = SB_OP(s, SpvOpBitwiseAnd, s->t_u32, tid, sb_const_u(s, 31));
    m.ar4 = ushr(s, m.ar, 2);
    m.arc = SB_OP(s, SpvOpBitwiseAnd, s->t_u32, m.ar, sb_const_u(s, 3));
    m.ly2 = sb_umul(s, m.ly, sb_const_u(s, 2)), m.lx2 = sb_umul(s, m.lx, sb_const_u(s, 2));
    for (int i = 0; i < 16; i++) m.acc[i] = sb_var(s, v4);
    uint32_t u128 = sb_const_u(s, 128), u127 = sb_const_u(s, 127);
    uint32_t nfx = ushr(s, m.N, 7), nfy = ushr(s, m.M, 7);
    /* tiles of each kind, numbered: the interior ones row-major; the edge
     * ones the last column (tile rows 0 .. ncy-1) when N % 128 != 0, then
     * the last row (tile columns 0 .. nfx-1) when M % 128 != 0 */
    uint32_t nint = sb_umul(s, nfx, nfy);
    uint32_t u1 = sb_const_u(s, 1);
    if (!edges) {
        /* no edge tiles at these sizes: the interior body alone */
        SbFor e = sb_for_begin(s, wgid(s, 0), nint, nwg(s, 0));
        uint32_t d = SB_EXT(s, GLSLstd450UMax, s->t_u32, nfx, u1);
        uint32_t ty = SB_OP(s, SpvOpUDiv, s->t_u32, e.iv, d), tx = SB_OP(s, SpvOpUMod, s->t_u32, e.iv, d);
        mm128_tile(s, &m, sb_umul(s, ty, u128), sb_umul(s, tx, u128), 0);
        sb_for_end(s, &e);
    } else {
        /* Group e runs tile e of the two kinds dealt evenly (Bresenham): e is
         * interior when floor((e+1) nint / n) > floor(e nint / n), and the
         * second is its index among its kind. llvmpipe hands each thread a
         * contiguous run of groups, so interior tiles first then edges gave
         * one core the interior ones: M x K x N = 256x512x200 took two interior tile times
         * where one interior and one edge fit. Past 65535 tiles the products
         * could wrap, and the order is plain (tiles there are many per core). */
        uint32_t ncx = ushr(s, sb_uadd(s, m.N, u127), 7), ncy = ushr(s, sb_uadd(s, m.M, u127), 7);
        uint32_t rc = sb_umul(s, SB_OP(s, SpvOpISub, s->t_u32, ncx, nfx), ncy);
        uint32_t ne = sb_uadd(s, rc, sb_umul(s, SB_OP(s, SpvOpISub, s->t_u32, ncy, nfy), nfx));
        uint32_t n = sb_uadd(s, nint, ne);
        uint32_t deal = sb_ult(s, n, sb_const_u(s, 65536));
        uint32_t nd = SB_EXT(s, GLSLstd450UMax, s->t_u32, n, u1);
        SbFor e = sb_for_begin(s, wgid(s, 0), n, nwg(s, 0));
        uint32_t c0 = SB_OP(s, SpvOpUDiv, s->t_u32, sb_umul(s, e.iv, nint), nd);
        uint32_t c1 = SB_OP(s, SpvOpUDiv, s->t_u32, sb_umul(s, sb_uadd(s, e.iv, u1), nint), nd);
        uint32_t isint = SB_OP(s, SpvOpSelect, s->t_bool, deal, sb_ult(s, c0, c1), sb_ult(s, e.iv, nint));
        uint32_t ii = SB_OP(s, SpvOpSelect, s->t_u32, deal, c0, e.iv);
        uint32_t ei = SB_OP(s, SpvOpISub, s->t_u32, e.iv, SB_OP(s, SpvOpSelect, s->t_u32, deal, c0, nint));
        SbIf f = sb_if_begin(s, isint, 1);
        {
            /* nint > 0 here, so nfx > 0; the max keeps a divide by zero out of
             * a driver that runs an untaken side under a mask */
            uint32_t d = SB_EXT(s, GLSLstd450UMax, s->t_u32, nfx, u1);
            uint32_t ty = SB_OP(s, SpvOpUDiv, s->t_u32, ii, d), tx = SB_OP(s, SpvOpUMod, s->t_u32, ii, d);
            mm128_tile(s, &m, sb_umul(s, ty, u128), sb_umul(s, tx, u128), 0);
        }
        sb_if_else(s, &f);
        {
            /* the last column's tiles (rc, the corner among them: wide) and
             * the last row's dealt the same way */
            uint32_t ned = SB_EXT(s, GLSLstd450UMax, s->t_u32, ne, u1);
            uint32_t d0 = SB_OP(s, SpvOpUDiv, s->t_u32, sb_umul(s, ei, rc), ned);
            uint32_t d1 = SB_OP(s, SpvOpUDiv, s->t_u32, sb_umul(s, sb_uadd(s, ei, u1), rc), ned);
            uint32_t incol = SB_OP(s, SpvOpSelect, s->t_bool, deal, sb_ult(s, d0, d1), sb_ult(s, ei, rc));
            uint32_t ci = SB_OP(s, SpvOpSelect, s->t_u32, deal, d0, ei); /* index in the column */
            uint32_t ri = SB_OP(s, SpvOpISub, s->t_u32, ei, SB_OP(s, SpvOpSelect, s->t_u32, deal, d0, rc));
            uint32_t ty = SB_OP(s, SpvOpSelect, s->t_u32, incol, ci, nfy);
            uint32_t tx = SB_OP(s, SpvOpSelect, s->t_u32, incol, nfx, ri);
            mm128_tile(s, &m, sb_umul(s, ty, u128), sb_umul(s, tx, u128), 1);
        }
        sb_if_end(s, &f);
        sb_for_end(s, &e);
    }
    const char *name = sb_entry_name(s, si, edges ? (vec ? "edges128" : "edges128s") : (vec ? "tiles128" : "tiles128s"));
    sb_fn_end_entry(s, name, local);
    const IrParam *A = &s->k->params.v[pa], *B = &s->k->params.v[pb];
    IrSize *M = A->dims[0], *K = A->dims[1], *N = B->dims[1];
    IrSize *sel = vec ? vsel : ir_size_bin(s->a, SZ_SUB, hconst(s, 1), vsel);
    /* 1 when M and N are multiples of 128: no edge tiles */
    IrSize *whole = ir_size_bin(s->a, SZ_MUL, hdivisible(s, M, 128), hdivisible(s, N, 128));
    sel = ir_size_bin(s->a, SZ_MUL, sel, edges ? ir_size_bin(s->a, SZ_SUB, hconst(s, 1), whole) : whole);
    IrSize *tiles = edges ? ir_size_bin(s->a, SZ_MUL, hceil(s, N, 128), hceil(s, M, 128))
                          : ir_size_bin(s->a, SZ_MUL, ir_size_bin(s->a, SZ_DIV, N, hconst(s, 128)),
                                        ir_size_bin(s->a, SZ_DIV, M, hconst(s, 128)));
    IrSize *gx = cap(s, tiles);
    /* the first of the stage's four dispatches (one runs): the barrier from
     * what came before goes here */
    if (vec && !edges) sb_add_dispatch(s, name, si, local, ir_size_bin(s->a, SZ_MUL, gx, sel), hconst(s, 1), hconst(s, 1));
    else sb_add_dispatch_alt(s, name, si, local, ir_size_bin(s->a, SZ_MUL, gx, sel), hconst(s, 1), hconst(s, 1));
    if (vec) mark_vec4(s);
    /* loop budget: tiles x (an interior tile's full K-slices then its
     * partial one, or an edge tile's checked ones). The branch is uniform
     * in the group, so one arm runs; the other meets at most its loops'
     * leaving passes (two), unlike a divergent IF's arms (cg_loops_block),
     * which both run. */
    IrSize *inner = cg_loops_sum(s->a, cg_loops_for(s->a, ir_size_bin(s->a, SZ_DIV, K, hconst(s, 8)), NULL),
        cg_loops_for(s->a, ir_size_bin(s->a, SZ_MIN, ir_size_bin(s->a, SZ_REM, K, hconst(s, 8)), hconst(s, 1)),
                     NULL));
    IrSize *kslices = !edges ? inner : cg_loops_sum(s->a,
        ir_size_bin(s->a, SZ_MAX, inner, cg_loops_for(s->a, hceil(s, K, 8), NULL)), hconst(s, 2));
    cg_dispatch_set_loops(s->launch, cg_loops_for(s->a, cg_loops_strided(s->a, tiles, gx, 1), kslices));
}

static void lower_matmul(Sb *s, int si, const IrStage *st) {
    int pa = st->in[0], pb = st->in[1], pc = st->out;
    ScalarType et = s->k->params.v[pa].type;
    int ba = sb_param_binding(s, pa), bb = sb_param_binding(s, pb), bc = sb_param_binding(s, pc);
    int TM = st->sp[0], TN = st->sp[1], TK = st->sp[2], R = st->sp[3];
    int ok = TM > 0 && TN > 0 && TK > 0 && R > 0 && TM % R == 0 && TN % R == 0 &&
             (TM / R) * (TN / R) <= 1024 && (TM * TK + TK * TN) * 4 <= s->t->shared_bytes &&
             R * R <= 64 && TK <= 32;
    if (ok) {
        int nt = (TM / R) * (TN / R);
        ok = (TM * TK) % nt == 0 && (TK * TN) % nt == 0;
    }
    if (!ok) TM = 64, TN = 64, TK = 16, R = 4;
    /* float 128x128x8 with 8x8 per invocation: the interior and edge
     * tile kernels (matmul128) replace the general one */
    if (et == TY_FLOAT && TM == 128 && TN == 128 && TK == 8 && R == 8) {
        const IrParam *A = &s->k->params.v[pa], *B = &s->k->params.v[pb];
        IrSize *vsel = ir_size_bin(s->a, SZ_MUL, hdivisible(s, A->dims[1], 4), hdivisible(s, B->dims[1], 4));
        for (int edges = 0; edges < 2; edges++)
            for (int vec = 1; vec >= 0; vec--) matmul128(s, si, st, edges, vec, vsel);
        return;
    }
    int NX = TN / R, NY = TM / R, NT = NX * NY;
    int local[3] = {NX, NY, 1};
    uint32_t f32 = s->t_f32;
    sb_fn_begin(s);
    uint32_t As = sb_shared(s, f32, (uint32_t)(TM * TK), "As");
    uint32_t Bs = sb_shared(s, f32, (uint32_t)(TK * TN), "Bs");
    uint32_t M = sb_dim(s, pa, 0), K = sb_dim(s, pa, 1), N = sb_dim(s, pb, 1);
    uint32_t lx = lid(s, 0), ly = lid(s, 1);
    uint32_t lin = sb_uadd(s, sb_umul(s, ly, sb_const_u(s, (uint32_t)NX)), lx);
    uint32_t zero = sb_const_typed(s, et, 0, 0);
    uint32_t uTM = sb_const_u(s, (uint32_t)TM), uTN = sb_const_u(s, (uint32_t)TN);
    SbFor by = sb_for_begin(s, sb_umul(s, wgid(s, 1), uTM), M, sb_umul(s, nwg(s, 1), uTM));
    SbFor bx = sb_for_begin(s, sb_umul(s, wgid(s, 0), uTN), N, sb_umul(s, nwg(s, 0), uTN));
    uint32_t acc[64];
    for (int i = 0; i < R * R; i++) {
        acc[i] = sb_var(s, f32);
        sb_store(s, acc[i], sb_const_f(s, 0));
    }
    SbFor kt = sb_for_begin(s, sb_const_u(s, 0), K, sb_const_u(s, (uint32_t)TK));
    for (int e = 0; e < TM * TK; e += NT) {
        uint32_t idx = sb_uadd(s, lin, sb_const_u(s, (uint32_t)e));
        uint32_t r = SB_OP(s, SpvOpUDiv, s->t_u32, idx, sb_const_u(s, (uint32_t)TK));
        uint32_t c = SB_OP(s, SpvOpUMod, s->t_u32, idx, sb_const_u(s, (uint32_t)TK));
        uint32_t gr = sb_uadd(s, by.iv, r), gc = sb_uadd(s, kt.iv, c);
        uint32_t okk = SB_OP(s, SpvOpLogicalAnd, s->t_bool, sb_ult(s, gr, M), sb_ult(s, gc, K));
        uint32_t v = guarded_load(s, ba, sb_uadd(s, sb_umul(s, gr, K), gc), okk, s->buf_elem[ba], zero);
        sh_store(s, As, f32, idx, to_acc(s, et, v));
    }
    for (int e = 0; e < TK * TN; e += NT) {
        uint32_t idx = sb_uadd(s, lin, sb_const_u(s, (uint32_t)e));
        uint32_t r = SB_OP(s, SpvOpUDiv, s->t_u32, idx, uTN);
        uint32_t c = SB_OP(s, SpvOpUMod, s->t_u32, idx, uTN);
        uint32_t gr = sb_uadd(s, kt.iv, r), gc = sb_uadd(s, bx.iv, c);
        uint32_t okk = SB_OP(s, SpvOpLogicalAnd, s->t_bool, sb_ult(s, gr, K), sb_ult(s, gc, N));
        uint32_t v = guarded_load(s, bb, sb_uadd(s, sb_umul(s, gr, N), gc), okk, s->buf_elem[bb], zero);
        sh_store(s, Bs, f32, idx, to_acc(s, et, v));
    }
    sb_barrier(s);
    uint32_t a_cur[64], cur[64];
    for (int i = 0; i < R * R; i++) cur[i] = sb_load(s, f32, acc[i]);
    /* rows of this invocation: ly + i*NY; columns lx + j*NX (strided so
     * neighbouring invocations touch neighbouring shared elements) */
    for (int kk = 0; kk < TK; kk++) {
        uint32_t bv[8];
        for (int i = 0; i < R; i++) {
            uint32_t row = sb_uadd(s, ly, sb_const_u(s, (uint32_t)(i * NY)));
            a_cur[i] = sh_load(s, As, f32,
                               sb_uadd(s, sb_umul(s, row, sb_const_u(s, (uint32_t)TK)),
                                       sb_const_u(s, (uint32_t)kk)));
        }
        for (int j = 0; j < R; j++)
            bv[j] = sh_load(s, Bs, f32,
                            sb_uadd(s, lx, sb_const_u(s, (uint32_t)(kk * TN + j * NX))));
        for (int i = 0; i < R; i++)
            for (int j = 0; j < R; j++)
                cur[i * R + j] = SB_EXT(s, GLSLstd450Fma, f32, a_cur[i], bv[j], cur[i * R + j]);
    }
    for (int i = 0; i < R * R; i++) sb_store(s, acc[i], cur[i]);
    sb_barrier(s);
    sb_for_end(s, &kt);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < R; j++) {
            uint32_t row = sb_uadd(s, by.iv, sb_uadd(s, ly, sb_const_u(s, (uint32_t)(i * NY))));
            uint32_t col = sb_uadd(s, bx.iv, sb_uadd(s, lx, sb_const_u(s, (uint32_t)(j * NX))));
            uint32_t okk = SB_OP(s, SpvOpLogicalAnd, s->t_bool, sb_ult(s, row, M), sb_ult(s, col, N));
            guarded_store(s, bc, sb_uadd(s, sb_umul(s, row, N), col), okk,
                          from_acc(s, et, sb_load(s, f32, acc[i * R + j])));
        }
    sb_for_end(s, &bx);
    sb_for_end(s, &by);
    const char *e = sb_entry_name(s, si, "tiles");
    sb_fn_end_entry(s, e, local);
    const IrParam *A = &s->k->params.v[pa], *B = &s->k->params.v[pb];
    IrSize *gx = cap(s, hceil(s, B->dims[1], TN)), *gy = cap(s, hceil(s, A->dims[0], TM));
    sb_add_dispatch(s, e, si, local, gx, gy, hconst(s, 1));
    /* loop budget: row tiles x column tiles x K slices of TK */
    cg_dispatch_set_loops(s->launch, cg_loops_for(s->a, cg_loops_strided(s->a, A->dims[0], gy, TM),
        cg_loops_for(s->a, cg_loops_strided(s->a, B->dims[1], gx, TN),
                     cg_loops_for(s->a, hceil(s, A->dims[1], TK), NULL))));
}

void cg_spirv_lib_stage(Sb *s, int stage) {
    const IrStage *st = &s->k->stages.v[stage];
    switch (st->kind) {
    case IR_STAGE_REDUCE: lower_reduce(s, stage, st); return;
    case IR_STAGE_SCAN: lower_scan(s, stage, st); return;
    case IR_STAGE_SOFTMAX: lower_softmax(s, stage, st); return;
    case IR_STAGE_TRANSPOSE: lower_transpose(s, stage, st); return;
    case IR_STAGE_MATMUL: lower_matmul(s, stage, st); return;
    case IR_STAGE_GRID: break;
    }
    fe_unreachable();
}
