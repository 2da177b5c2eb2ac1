/*
 * spirv.c — the SPIR-V word emitter, type/constant cache, structured
 * control-flow builder, kernel resources (storage buffers, push constants,
 * builtins), module assembly, and in-process validation/disassembly with
 * SPIRV-Tools. Stage bodies are lowered by spirv_grid.c and spirv_lib.c.
 */
#include "spirv_int.h"

#include <math.h>
#include <spirv-tools/libspirv.h>
#include <stdlib.h>

const char *const cg_target_env_names[] = {
#define X(e, s) s,
    CG_TARGET_ENVS(X)
#undef X
};

void cg_target_default(CgTarget *t, CgTargetEnv env) {
    memset(t, 0, sizeof *t);
    t->env = env;
    t->float16 = 1;
    t->subgroups = 0;       /* the generic path uses shared memory only */
    t->subgroup_size = 0;
    t->shared_bytes = 16384; /* Vulkan's guaranteed minimum */
    t->max_groups = 65535;
}

int cg_target_env_parse(const char *s, CgTargetEnv *out) {
    for (int i = 0; i <= CG_ENV_VULKAN_1_3; i++)
        if (!strcmp(s, cg_target_env_names[i])) {
            *out = (CgTargetEnv)i;
            return 1;
        }
    return 0;
}

uint32_t cg_spirv_version(CgTargetEnv env) {
    switch (env) {
    case CG_ENV_VULKAN_1_1: return 0x00010300;
    case CG_ENV_VULKAN_1_2: return 0x00010500;
    case CG_ENV_VULKAN_1_3: return 0x00010600;
    }
    fe_unreachable();
}

static spv_target_env spv_env(CgTargetEnv env) {
    switch (env) {
    case CG_ENV_VULKAN_1_1: return SPV_ENV_VULKAN_1_1;
    case CG_ENV_VULKAN_1_2: return SPV_ENV_VULKAN_1_2;
    case CG_ENV_VULKAN_1_3: return SPV_ENV_VULKAN_1_3;
    }
    fe_unreachable();
}

/* ===== words ===== */

uint32_t sb_id(Sb *s) { return s->next_id++; }

void sb_ins(Sb *s, SbWords *w, SpvOp op, const uint32_t *ops, int n) {
    FE_PUSH(s->a, *w, ((uint32_t)(n + 1) << 16) | (uint32_t)op);
    for (int i = 0; i < n; i++) FE_PUSH(s->a, *w, ops[i]);
}

void sb_ins_str(Sb *s, SbWords *w, SpvOp op, const uint32_t *pre, int npre, const char *str,
                const uint32_t *post, int npost) {
    size_t len = strlen(str);
    int nstr = (int)(len / 4 + 1); /* always room for the NUL */
    FE_PUSH(s->a, *w, ((uint32_t)(1 + npre + nstr + npost) << 16) | (uint32_t)op);
    for (int i = 0; i < npre; i++) FE_PUSH(s->a, *w, pre[i]);
    for (int i = 0; i < nstr; i++) {
        uint32_t word = 0;
        for (int b = 0; b < 4; b++) {
            size_t k = (size_t)i * 4 + (size_t)b;
            if (k < len) word |= (uint32_t)(unsigned char)str[k] << (8 * b);
        }
        FE_PUSH(s->a, *w, word);
    }
    for (int i = 0; i < npost; i++) FE_PUSH(s->a, *w, post[i]);
}

void sb_name(Sb *s, uint32_t id, const char *name) {
    sb_ins_str(s, &s->names, SpvOpName, &id, 1, name, NULL, 0);
}

void sb_decorate(Sb *s, uint32_t id, SpvDecoration d, int nlit, uint32_t lit) {
    if (nlit) SB_INS(s, &s->annots, SpvOpDecorate, id, d, lit);
    else SB_INS(s, &s->annots, SpvOpDecorate, id, d);
}

void sb_member_decorate(Sb *s, uint32_t id, uint32_t member, SpvDecoration d, int nlit,
                        uint32_t lit) {
    if (nlit) SB_INS(s, &s->annots, SpvOpMemberDecorate, id, member, d, lit);
    else SB_INS(s, &s->annots, SpvOpMemberDecorate, id, member, d);
}

/* ===== types and constants ===== */

/* Finds or makes the global instruction `op <result> ops...` where the
 * result id sits at position `respos` of the operands (0 for types, 1 for
 * constants, after the result type). */
static uint32_t sb_cached(Sb *s, SpvOp op, const uint32_t *ops, int n, int respos) {
    uint32_t h = 2166136261u ^ (uint32_t)op;
    for (int i = 0; i < n; i++) h = (h ^ ops[i]) * 16777619u;
    for (int i = 0; i < s->cache.n; i++) {
        SbKey *k = &s->cache.v[i];
        if (k->hash != h || k->n != n + 1) continue;
        if (s->keywords.v[k->off] != (uint32_t)op) continue;
        if (n && memcmp(&s->keywords.v[k->off + 1], ops, (size_t)n * 4)) continue;
        return k->id;
    }
    SbKey k = {h, s->keywords.n, n + 1, sb_id(s)};
    FE_PUSH(s->a, s->keywords, (uint32_t)op);
    for (int i = 0; i < n; i++) FE_PUSH(s->a, s->keywords, ops[i]);
    FE_PUSH(s->a, s->cache, k);
    uint32_t buf[16];
    FE_ASSERT(n < 15);
    for (int i = 0, j = 0; i <= n; i++) {
        if (i == respos) buf[i] = k.id;
        else buf[i] = ops[j++];
    }
    sb_ins(s, &s->globals, op, buf, n + 1);
    return k.id;
}

uint32_t sb_type(Sb *s, SpvOp op, const uint32_t *ops, int n) { return sb_cached(s, op, ops, n, 0); }

uint32_t sb_ptr(Sb *s, SpvStorageClass sc, uint32_t type) {
    return SB_TYPE(s, SpvOpTypePointer, sc, type);
}

uint32_t sb_scalar(Sb *s, ScalarType t) {
    switch (t) {
    case TY_BOOL: return s->t_bool;
    case TY_INT: return s->t_i32;
    case TY_UINT: return s->t_u32;
    case TY_FLOAT: return s->t_f32;
    case TY_HALF:
        s->used_f16 = 1;
        if (!s->t_f16) s->t_f16 = SB_TYPE(s, SpvOpTypeFloat, 16);
        return s->t_f16;
    case TY_VOID: break;
    }
    fe_die("spirv: no SPIR-V type for %s", fe_type_name(t));
}

static uint32_t sb_constant(Sb *s, uint32_t type, uint32_t bits) {
    uint32_t ops[2] = {type, bits};
    return sb_cached(s, SpvOpConstant, ops, 2, 1);
}

uint32_t sb_const_u(Sb *s, uint32_t v) { return sb_constant(s, s->t_u32, v); }
uint32_t sb_const_i(Sb *s, int32_t v) { return sb_constant(s, s->t_i32, (uint32_t)v); }
uint32_t sb_const_f(Sb *s, float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return sb_constant(s, s->t_f32, bits);
}

/* IEEE binary16 bits of f, round to nearest even. */
static uint32_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xFFu, man = x & 0x7FFFFFu;
    if (exp == 0xFF) return sign | 0x7C00u | (man ? 0x200u : 0);
    int e = (int)exp - 127 + 15;
    if (e >= 31) return sign | 0x7C00u;
    if (e <= 0) {
        if (e < -10) return sign;
        man |= 0x800000u;
        int shift = 14 - e;
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return sign | h;
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* may carry into inf: correct */
    return sign | h;
}

uint32_t sb_const_bool(Sb *s, int v) {
    return sb_cached(s, v ? SpvOpConstantTrue : SpvOpConstantFalse, &s->t_bool, 1, 1);
}

uint32_t sb_const_typed(Sb *s, ScalarType t, double f, int64_t i) {
    switch (t) {
    case TY_BOOL: return sb_const_bool(s, i != 0);
    case TY_INT: return sb_const_i(s, (int32_t)i);
    case TY_UINT: return sb_const_u(s, (uint32_t)i);
    case TY_FLOAT: return sb_const_f(s, (float)f);
    case TY_HALF: return sb_constant(s, sb_scalar(s, TY_HALF), f32_to_f16((float)f));
    case TY_VOID: break;
    }
    fe_unreachable();
}

uint32_t sb_vec4(Sb *s, uint32_t elem) { return SB_TYPE(s, SpvOpTypeVector, elem, 4); }

uint32_t sb_array(Sb *s, uint32_t elem, uint32_t len) {
    return SB_TYPE(s, SpvOpTypeArray, elem, sb_const_u(s, len));
}

/* ===== globals ===== */

void sb_use_global(Sb *s, uint32_t var) {
    for (int i = 0; i < s->iface.n; i++)
        if (s->iface.v[i] == var) return;
    FE_PUSH(s->a, s->iface, var);
}

uint32_t sb_builtin(Sb *s, SpvBuiltIn b) {
    uint32_t *slot;
    const char *name;
    switch (b) {
    case SpvBuiltInGlobalInvocationId: slot = &s->builtin_gid; name = "gl_GlobalInvocationID"; break;
    case SpvBuiltInLocalInvocationId: slot = &s->builtin_lid; name = "gl_LocalInvocationID"; break;
    case SpvBuiltInWorkgroupId: slot = &s->builtin_wg; name = "gl_WorkGroupID"; break;
    /* no NumWorkgroups: a sliced launch (vkCmdDispatchBase over part of a
     * dispatch) would see the slice's count; sb_num_groups instead */
    default: fe_unreachable();
    }
    if (!*slot) {
        *slot = sb_id(s);
        SB_INS(s, &s->globals, SpvOpVariable, sb_ptr(s, SpvStorageClassInput, s->t_uvec3), *slot,
               SpvStorageClassInput);
        sb_decorate(s, *slot, SpvDecorationBuiltIn, 1, b);
        sb_name(s, *slot, name);
    }
    sb_use_global(s, *slot);
    return *slot;
}

uint32_t sb_builtin_x(Sb *s, SpvBuiltIn b, int comp) {
    uint32_t var = sb_builtin(s, b);
    uint32_t p = SB_OP(s, SpvOpAccessChain, sb_ptr(s, SpvStorageClassInput, s->t_u32), var,
                       sb_const_u(s, (uint32_t)comp));
    return sb_load(s, s->t_u32, p);
}

uint32_t sb_builtin_sg(Sb *s, SpvBuiltIn b) {
    uint32_t *slot;
    const char *name;
    FE_ASSERT(s->t->subgroups);
    switch (b) {
    case SpvBuiltInSubgroupId: slot = &s->builtin_sgid; name = "gl_SubgroupID"; break;
    case SpvBuiltInNumSubgroups: slot = &s->builtin_nsg; name = "gl_NumSubgroups"; break;
    case SpvBuiltInSubgroupSize: slot = &s->builtin_sgsize; name = "gl_SubgroupSize"; break;
    case SpvBuiltInSubgroupLocalInvocationId:
        slot = &s->builtin_sglid;
        name = "gl_SubgroupInvocationID";
        break;
    default: fe_unreachable();
    }
    s->used_group_ops = 1;
    if (!*slot) {
        *slot = sb_id(s);
        SB_INS(s, &s->globals, SpvOpVariable, sb_ptr(s, SpvStorageClassInput, s->t_u32), *slot,
               SpvStorageClassInput);
        sb_decorate(s, *slot, SpvDecorationBuiltIn, 1, b);
        sb_name(s, *slot, name);
    }
    sb_use_global(s, *slot);
    return sb_load(s, s->t_u32, *slot);
}

uint32_t sb_group_op(Sb *s, SpvOp op, uint32_t type, SpvGroupOperation gop, uint32_t v) {
    FE_ASSERT(s->t->subgroups);
    s->used_group_ops = 1;
    return SB_OP(s, op, type, sb_const_u(s, SpvScopeSubgroup), gop, v);
}

uint32_t sb_shared(Sb *s, uint32_t elem, uint32_t len, const char *name) {
    uint32_t arr = sb_array(s, elem, len);
    uint32_t var = sb_id(s);
    SB_INS(s, &s->globals, SpvOpVariable, sb_ptr(s, SpvStorageClassWorkgroup, arr), var,
           SpvStorageClassWorkgroup);
    if (name) sb_name(s, var, name);
    sb_use_global(s, var);
    return var;
}

/* ===== code ===== */

uint32_t sb_op(Sb *s, SpvOp op, uint32_t type, const uint32_t *ops, int n) {
    uint32_t id = sb_id(s);
    FE_PUSH(s->a, s->fbody, ((uint32_t)(n + 3) << 16) | (uint32_t)op);
    FE_PUSH(s->a, s->fbody, type);
    FE_PUSH(s->a, s->fbody, id);
    for (int i = 0; i < n; i++) FE_PUSH(s->a, s->fbody, ops[i]);
    return id;
}

uint32_t sb_ext(Sb *s, enum GLSLstd450 f, uint32_t type, const uint32_t *ops, int n) {
    uint32_t buf[8];
    FE_ASSERT(n <= 6);
    buf[0] = s->glsl;
    buf[1] = (uint32_t)f;
    memcpy(buf + 2, ops, (size_t)n * 4);
    return sb_op(s, SpvOpExtInst, type, buf, n + 2);
}

uint32_t sb_var(Sb *s, uint32_t type) {
    uint32_t id = sb_id(s);
    SB_INS(s, &s->fvars, SpvOpVariable, sb_ptr(s, SpvStorageClassFunction, type), id,
           SpvStorageClassFunction);
    return id;
}

uint32_t sb_load(Sb *s, uint32_t type, uint32_t ptr) { return SB_OP(s, SpvOpLoad, type, ptr); }
void sb_store(Sb *s, uint32_t ptr, uint32_t val) { SB_INS(s, &s->fbody, SpvOpStore, ptr, val); }
void sb_label(Sb *s, uint32_t id) { SB_INS(s, &s->fbody, SpvOpLabel, id); }
void sb_branch(Sb *s, uint32_t target) { SB_INS(s, &s->fbody, SpvOpBranch, target); }

void sb_barrier(Sb *s) {
    SB_INS(s, &s->fbody, SpvOpControlBarrier, sb_const_u(s, SpvScopeWorkgroup),
           sb_const_u(s, SpvScopeWorkgroup),
           sb_const_u(s, SpvMemorySemanticsAcquireReleaseMask |
                             SpvMemorySemanticsWorkgroupMemoryMask));
}

SbIf sb_if_begin(Sb *s, uint32_t cond, int has_else) {
    SbIf f = {sb_id(s), 0, has_else};
    uint32_t then = sb_id(s);
    f.els = has_else ? sb_id(s) : f.merge;
    SB_INS(s, &s->fbody, SpvOpSelectionMerge, f.merge, SpvSelectionControlMaskNone);
    SB_INS(s, &s->fbody, SpvOpBranchConditional, cond, then, f.els);
    sb_label(s, then);
    return f;
}

void sb_if_else(Sb *s, SbIf *f) {
    FE_ASSERT(f->has_else);
    sb_branch(s, f->merge);
    sb_label(s, f->els);
}

void sb_if_end(Sb *s, SbIf *f) {
    sb_branch(s, f->merge);
    sb_label(s, f->merge);
}

SbLoop sb_loop_begin(Sb *s) {
    SbLoop l = {sb_id(s), sb_id(s), sb_id(s), sb_id(s), sb_id(s)};
    sb_branch(s, l.header);
    sb_label(s, l.header);
    SB_INS(s, &s->fbody, SpvOpLoopMerge, l.merge, l.cont, SpvLoopControlMaskNone);
    sb_branch(s, l.check);
    sb_label(s, l.check);
    return l;
}

void sb_loop_test(Sb *s, SbLoop *l, uint32_t cond) {
    SB_INS(s, &s->fbody, SpvOpBranchConditional, cond, l->body, l->merge);
    sb_label(s, l->body);
}

void sb_loop_continue(Sb *s, SbLoop *l) {
    sb_branch(s, l->cont);
    sb_label(s, l->cont);
}

void sb_loop_end(Sb *s, SbLoop *l) {
    sb_branch(s, l->header);
    sb_label(s, l->merge);
}

SbFor sb_for_begin(Sb *s, uint32_t lo, uint32_t hi, uint32_t step) {
    SbFor f;
    f.var = sb_var(s, s->t_u32);
    f.step = step;
    sb_store(s, f.var, lo);
    f.l = sb_loop_begin(s);
    f.iv = sb_load(s, s->t_u32, f.var);
    sb_loop_test(s, &f.l, sb_ult(s, f.iv, hi));
    return f;
}

void sb_for_end(Sb *s, SbFor *f) {
    sb_loop_continue(s, &f->l);
    uint32_t v = sb_load(s, s->t_u32, f->var);
    sb_store(s, f->var, sb_uadd(s, v, f->step));
    sb_loop_end(s, &f->l);
}

void sb_fn_begin(Sb *s) {
    s->fvars.n = 0;
    s->fbody.n = 0;
    s->iface.n = 0;
}

void sb_fn_end_entry(Sb *s, const char *name, const int local[3]) {
    uint32_t fn = sb_id(s), lbl = sb_id(s);
    uint32_t fnty = SB_TYPE(s, SpvOpTypeFunction, s->t_void);
    SbFnRec r = {(size_t)s->funcs.n, name};
    FE_PUSH(s->a, s->fnrecs, r);
    SB_INS(s, &s->funcs, SpvOpFunction, s->t_void, fn, SpvFunctionControlMaskNone, fnty);
    SB_INS(s, &s->funcs, SpvOpLabel, lbl);
    for (int i = 0; i < s->fvars.n; i++) FE_PUSH(s->a, s->funcs, s->fvars.v[i]);
    for (int i = 0; i < s->fbody.n; i++) FE_PUSH(s->a, s->funcs, s->fbody.v[i]);
    SB_INS(s, &s->funcs, SpvOpReturn);
    SB_INS(s, &s->funcs, SpvOpFunctionEnd);
    /* Before SPIR-V 1.4 the interface lists only Input/Output variables
     * (here: the builtins); from 1.4 on, every global the entry uses. */
    uint32_t pre[2] = {SpvExecutionModelGLCompute, fn};
    uint32_t *post = fe_alloc(s->a, sizeof *post * (size_t)(s->iface.n ? s->iface.n : 1));
    int np = 0;
    int v14 = cg_spirv_version(s->t->env) >= 0x00010400;
    for (int i = 0; i < s->iface.n; i++) {
        uint32_t g = s->iface.v[i];
        int is_in = g == s->builtin_gid || g == s->builtin_lid || g == s->builtin_wg ||
                    g == s->builtin_sgid || g == s->builtin_nsg ||
                    g == s->builtin_sglid || g == s->builtin_sgsize;
        if (v14 || is_in) post[np++] = g;
    }
    sb_ins_str(s, &s->entries, SpvOpEntryPoint, pre, 2, name, post, np);
    SB_INS(s, &s->modes, SpvOpExecutionMode, fn, SpvExecutionModeLocalSize, (uint32_t)local[0],
           (uint32_t)local[1], (uint32_t)local[2]);
}

/* ===== kernel resources ===== */

uint32_t sb_push_load(Sb *s, int pi) {
    FE_ASSERT(s->push_var && pi >= 0 && pi < s->launch->push.n);
    sb_use_global(s, s->push_var);
    uint32_t ty = s->push_member[pi];
    uint32_t p = SB_OP(s, SpvOpAccessChain, sb_ptr(s, SpvStorageClassPushConstant, ty),
                       s->push_var, sb_const_u(s, (uint32_t)pi));
    return sb_load(s, ty, p);
}

uint32_t sb_num_groups(Sb *s, int comp) {
    FE_ASSERT(s->groups_push >= 0 && comp >= 0 && comp < 3);
    return sb_push_load(s, s->groups_push + comp);
}

uint32_t sb_param_value(Sb *s, int param) {
    int pi = s->param_push[param];
    FE_ASSERT(pi >= 0);
    uint32_t v = sb_push_load(s, pi);
    if (s->k->params.v[param].type == TY_HALF)
        v = SB_OP(s, SpvOpFConvert, sb_scalar(s, TY_HALF), v);
    return v;
}

uint32_t sb_sym_value(Sb *s, int sym) {
    FE_ASSERT(sym >= 0 && sym < s->k->syms.n);
    return sb_push_load(s, s->sym_push[sym]);
}

uint32_t sb_uadd(Sb *s, uint32_t a, uint32_t b) { return SB_OP(s, SpvOpIAdd, s->t_u32, a, b); }
uint32_t sb_umul(Sb *s, uint32_t a, uint32_t b) { return SB_OP(s, SpvOpIMul, s->t_u32, a, b); }
uint32_t sb_ult(Sb *s, uint32_t a, uint32_t b) { return SB_OP(s, SpvOpULessThan, s->t_bool, a, b); }
uint32_t sb_umin(Sb *s, uint32_t a, uint32_t b) { return SB_EXT(s, GLSLstd450UMin, s->t_u32, a, b); }

/* Size formulas use the host's signed int64 semantics (ir_size_eval); on
 * the device they are evaluated in 32-bit two's complement with signed
 * division and min/max, which agree for every value below 2^31. */
uint32_t sb_size_u32(Sb *s, const IrSize *z) {
    uint32_t u = s->t_u32;
    switch (z->op) {
    case SZ_CONST: return sb_const_u(s, (uint32_t)z->c);
    case SZ_SYM: return sb_sym_value(s, z->sym);
    case SZ_PARAM: {
        uint32_t v = sb_push_load(s, s->param_push[z->sym]);
        return s->k->params.v[z->sym].type == TY_INT ? SB_OP(s, SpvOpBitcast, u, v) : v;
    }
    default: break;
    }
    uint32_t a = sb_size_u32(s, z->a), b = sb_size_u32(s, z->b);
    switch (z->op) {
    case SZ_ADD: return SB_OP(s, SpvOpIAdd, u, a, b);
    case SZ_SUB: return SB_OP(s, SpvOpISub, u, a, b);
    case SZ_MUL: return SB_OP(s, SpvOpIMul, u, a, b);
    case SZ_MIN: return SB_EXT(s, GLSLstd450SMin, u, a, b);
    case SZ_MAX: return SB_EXT(s, GLSLstd450SMax, u, a, b);
    case SZ_DIV:
    case SZ_REM:
    case SZ_CEILDIV: {
        uint32_t zero = sb_const_u(s, 0);
        uint32_t isz = SB_OP(s, SpvOpIEqual, s->t_bool, b, zero);
        uint32_t bb = SB_OP(s, SpvOpSelect, u, isz, sb_const_u(s, 1), b);
        uint32_t r;
        if (z->op == SZ_DIV) r = SB_OP(s, SpvOpSDiv, u, a, bb);
        else if (z->op == SZ_REM) r = SB_OP(s, SpvOpSRem, u, a, bb);
        else {
            /* ceildiv for a >= 0, b > 0: (a + b - 1) / b; a <= 0 gives 0 */
            uint32_t t = SB_OP(s, SpvOpISub, u, SB_OP(s, SpvOpIAdd, u, a, bb), sb_const_u(s, 1));
            r = SB_OP(s, SpvOpSDiv, u, t, bb);
            uint32_t neg = SB_OP(s, SpvOpSLessThanEqual, s->t_bool, a, zero);
            r = SB_OP(s, SpvOpSelect, u, neg, zero, r);
        }
        return SB_OP(s, SpvOpSelect, u, isz, zero, r);
    }
    default: break;
    }
    fe_unreachable();
}

int sb_param_binding(Sb *s, int param) {
    int b = cg_launch_param_binding(s->launch, param);
    FE_ASSERT(b >= 0);
    return b;
}

uint32_t sb_dim(Sb *s, int param, int d) {
    const IrParam *p = &s->k->params.v[param];
    FE_ASSERT(d >= 0 && d < p->rank && p->dims[d]);
    return sb_size_u32(s, p->dims[d]);
}

uint32_t sb_buf_ptr(Sb *s, int b, uint32_t flat) {
    sb_use_global(s, s->buf_var[b]);
    return SB_OP(s, SpvOpAccessChain, sb_ptr(s, SpvStorageClassStorageBuffer, s->buf_elem[b]),
                 s->buf_var[b], sb_const_u(s, 0), flat);
}

uint32_t sb_buf_load(Sb *s, int b, uint32_t flat) {
    return sb_load(s, s->buf_elem[b], sb_buf_ptr(s, b, flat));
}

void sb_buf_store(Sb *s, int b, uint32_t flat, uint32_t val) {
    s->binding_written[b] = 1;
    sb_store(s, sb_buf_ptr(s, b, flat), val);
}

/* A storage-buffer variable `struct { elem data[]; }` at descriptor set 0,
 * binding b: the Block struct is its own per binding, so NonWritable can be
 * decided per binding once all stages are lowered; the runtime array of a
 * given element type is shared, and its ArrayStride decorated once. */
static uint32_t sb_block_var(Sb *s, uint32_t elem, uint32_t stride, int b, uint32_t *st_out) {
    int ncached = s->cache.n;
    uint32_t rta = SB_TYPE(s, SpvOpTypeRuntimeArray, elem);
    /* the cache grew: the type is new, decorate it (once) */
    if (s->cache.n > ncached) sb_decorate(s, rta, SpvDecorationArrayStride, 1, stride);
    uint32_t st = sb_id(s);
    SB_INS(s, &s->globals, SpvOpTypeStruct, st, rta);
    sb_decorate(s, st, SpvDecorationBlock, 0, 0);
    sb_member_decorate(s, st, 0, SpvDecorationOffset, 1, 0);
    uint32_t var = sb_id(s);
    SB_INS(s, &s->globals, SpvOpVariable, sb_ptr(s, SpvStorageClassStorageBuffer, st), var,
           SpvStorageClassStorageBuffer);
    sb_decorate(s, var, SpvDecorationDescriptorSet, 1, 0);
    sb_decorate(s, var, SpvDecorationBinding, 1, (uint32_t)b);
    *st_out = st;
    return var;
}

/* The vec4 view of binding b, made on first use (see Sb.buf_var4). */
static uint32_t sb_buf4_var(Sb *s, int b) {
    if (!s->buf_var4[b]) {
        uint32_t v4 = sb_vec4(s, s->buf_elem[b]);
        FE_ASSERT(s->buf_elem[b] != s->t_f16);
        /* one runtime array per vector type; its ArrayStride once */
        s->buf_var4[b] = sb_block_var(s, v4, 16, b, &s->buf_struct4[b]);
    }
    sb_use_global(s, s->buf_var4[b]);
    return s->buf_var4[b];
}

uint32_t sb_buf4_load(Sb *s, int b, uint32_t i4) {
    uint32_t var = sb_buf4_var(s, b), v4 = sb_vec4(s, s->buf_elem[b]);
    uint32_t p = SB_OP(s, SpvOpAccessChain, sb_ptr(s, SpvStorageClassStorageBuffer, v4), var,
                       sb_const_u(s, 0), i4);
    return sb_load(s, v4, p);
}

void sb_buf4_store(Sb *s, int b, uint32_t i4, uint32_t val) {
    uint32_t var = sb_buf4_var(s, b), v4 = sb_vec4(s, s->buf_elem[b]);
    s->binding_written[b] = 1;
    uint32_t p = SB_OP(s, SpvOpAccessChain, sb_ptr(s, SpvStorageClassStorageBuffer, v4), var,
                       sb_const_u(s, 0), i4);
    sb_store(s, p, val);
}

/* The scalar view of binding b (see sb_block_var). */
static void sb_make_binding(Sb *s, int b, ScalarType elem, const char *name) {
    FE_ASSERT(b < s->max_bindings);
    uint32_t et = sb_scalar(s, elem);
    if (elem == TY_HALF) s->used_f16_storage = 1;
    uint32_t stride = elem == TY_HALF ? 2 : 4;
    uint32_t var = sb_block_var(s, et, stride, b, &s->buf_struct[b]);
    if (name) sb_name(s, var, name);
    s->buf_var[b] = var;
    s->buf_elem[b] = et;
}

int sb_add_scratch(Sb *s, IrSize *bytes, ScalarType elem) {
    CgScratch sc = {bytes, elem};
    FE_PUSH(s->a, s->launch->scratch, sc);
    CgBinding bd = {s->launch->bindings.n, CG_BIND_SCRATCH, s->launch->scratch.n - 1, 0, elem,
                    elem == TY_HALF ? 2 : 4};
    FE_PUSH(s->a, s->launch->bindings, bd);
    sb_make_binding(s, bd.binding, elem,
                    fe_sprintf(s->a, "%s.scratch%d", s->k->name, s->launch->scratch.n - 1));
    return bd.binding;
}

const char *sb_entry_name(Sb *s, int stage, const char *pass) {
    return fe_sprintf(s->a, "%s__s%d_%s", s->k->name, stage, pass);
}

void sb_add_dispatch(Sb *s, const char *entry, int stage, const int local[3], IrSize *gx,
                     IrSize *gy, IrSize *gz) {
    CgDispatch d = {entry, stage, {local[0], local[1], local[2]}, {gx, gy, gz},
                    s->launch->dispatches.n > 0, NULL, 0};
    FE_PUSH(s->a, s->launch->dispatches, d);
}

void sb_add_dispatch_alt(Sb *s, const char *entry, int stage, const int local[3], IrSize *gx,
                         IrSize *gy, IrSize *gz) {
    FE_ASSERT(s->launch->dispatches.n > 0);
    CgDispatch d = {entry, stage, {local[0], local[1], local[2]}, {gx, gy, gz}, 0, NULL, 0};
    FE_PUSH(s->a, s->launch->dispatches, d);
}

int cg_launch_param_binding(const CgLaunch *l, int param) {
    for (int i = 0; i < l->bindings.n; i++)
        if (l->bindings.v[i].kind == CG_BIND_PARAM && l->bindings.v[i].index == param) return i;
    return -1;
}

/* ===== kernels and the module ===== */

static int kernel_uses_half(const IrKernel *k, Loc *where) {
    for (int i = 0; i < k->params.n; i++)
        if (k->params.v[i].type == TY_HALF) {
            *where = k->params.v[i].loc;
            return 1;
        }
    for (int i = 0; i < k->insts.n; i++)
        if (k->insts.v[i].type == TY_HALF) {
            *where = k->insts.v[i].loc;
            return 1;
        }
    return 0;
}

/* big_stage, big_bytes: the grid stage of k whose functions take the most
 * SPIR-V bytes, and how many (cg_spirv checks them against the limit); the
 * first stage past stage_limit ends the kernel there, so nothing more is
 * generated for a kernel that will be refused. */
static void sb_kernel(Sb *s, const IrKernel *k, CgLaunch *l, size_t stage_limit, int *big_stage, size_t *big_bytes) {
    s->k = k;
    s->launch = l;
    l->kernel = k;
    s->max_bindings = k->params.n + 8 * k->stages.n + 8;
    s->buf_var = fe_alloc(s->a, sizeof(uint32_t) * (size_t)s->max_bindings);
    s->buf_elem = fe_alloc(s->a, sizeof(uint32_t) * (size_t)s->max_bindings);
    s->buf_struct = fe_alloc(s->a, sizeof(uint32_t) * (size_t)s->max_bindings);
    s->buf_var4 = fe_alloc(s->a, sizeof(uint32_t) * (size_t)s->max_bindings);
    s->buf_struct4 = fe_alloc(s->a, sizeof(uint32_t) * (size_t)s->max_bindings);
    s->binding_written = fe_alloc(s->a, sizeof(int) * (size_t)s->max_bindings);
    s->param_push = fe_alloc(s->a, sizeof(int) * (size_t)(k->params.n + 1));
    s->sym_push = fe_alloc(s->a, sizeof(int) * (size_t)(k->syms.n + 1));

    /* Push constants: scalar params, then size symbols, then (a kernel
     * with stages) the running dispatch's group counts x, y, z, which the
     * shaders read instead of NumWorkgroups (sb_num_groups); 4 bytes each. */
    for (int i = 0; i < k->params.n; i++) {
        s->param_push[i] = -1;
        const IrParam *p = &k->params.v[i];
        if (p->is_buffer) continue;
        CgPush pu = {4 * l->push.n, CG_PUSH_PARAM, i, p->type == TY_HALF ? TY_FLOAT : p->type};
        s->param_push[i] = l->push.n;
        FE_PUSH(s->a, l->push, pu);
    }
    for (int i = 0; i < k->syms.n; i++) {
        CgPush pu = {4 * l->push.n, CG_PUSH_SYM, i, TY_UINT};
        s->sym_push[i] = l->push.n;
        FE_PUSH(s->a, l->push, pu);
    }
    s->groups_push = -1;
    if (k->stages.n) {
        s->groups_push = l->push.n;
        for (int c = 0; c < 3; c++) {
            CgPush pu = {4 * l->push.n, CG_PUSH_GROUPS, c, TY_UINT};
            FE_PUSH(s->a, l->push, pu);
        }
    }
    l->push_size = 4 * l->push.n;
    s->push_var = 0;
    if (l->push.n) {
        static const char *const gname[3] = {"groups.x", "groups.y", "groups.z"};
        s->push_member = fe_alloc(s->a, sizeof(uint32_t) * (size_t)l->push.n);
        uint32_t st = sb_id(s);
        FE_VEC(uint32_t) mem = {0};
        for (int i = 0; i < l->push.n; i++) {
            s->push_member[i] = sb_scalar(s, l->push.v[i].type);
            FE_PUSH(s->a, mem, s->push_member[i]);
        }
        FE_PUSH(s->a, s->globals, ((uint32_t)(mem.n + 2) << 16) | SpvOpTypeStruct);
        FE_PUSH(s->a, s->globals, st);
        for (int i = 0; i < mem.n; i++) FE_PUSH(s->a, s->globals, mem.v[i]);
        sb_decorate(s, st, SpvDecorationBlock, 0, 0);
        for (int i = 0; i < l->push.n; i++) {
            sb_member_decorate(s, st, (uint32_t)i, SpvDecorationOffset, 1,
                               (uint32_t)l->push.v[i].offset);
            const CgPush *pu = &l->push.v[i];
            const char *nm = pu->kind == CG_PUSH_PARAM ? k->params.v[pu->index].name
                             : pu->kind == CG_PUSH_SYM ? k->syms.v[pu->index].name
                                                       : gname[pu->index];
            sb_ins_str(s, &s->names, SpvOpMemberName, (uint32_t[]){st, (uint32_t)i}, 2, nm, NULL, 0);
        }
        sb_name(s, st, fe_sprintf(s->a, "%s.push", k->name));
        s->push_var = sb_id(s);
        SB_INS(s, &s->globals, SpvOpVariable, sb_ptr(s, SpvStorageClassPushConstant, st),
               s->push_var, SpvStorageClassPushConstant);
        sb_name(s, s->push_var, fe_sprintf(s->a, "%s.args", k->name));
    }

    /* Bindings: buffer params in order. */
    for (int i = 0; i < k->params.n; i++) {
        const IrParam *p = &k->params.v[i];
        if (!p->is_buffer) continue;
        CgBinding bd = {l->bindings.n, CG_BIND_PARAM, i, 0, p->type, p->type == TY_HALF ? 2 : 4};
        FE_PUSH(s->a, l->bindings, bd);
        sb_make_binding(s, bd.binding, p->type, p->name);
    }

    *big_stage = -1;
    *big_bytes = 0;
    for (int i = 0; i < k->stages.n; i++) {
        int first = l->dispatches.n;
        size_t words_before = (size_t)s->funcs.n;
        if (k->stages.v[i].kind == IR_STAGE_GRID) {
            cg_spirv_grid_stage(s, i);
            cg_loops_grid_stage(s->a, k, i, l, first); /* loop budget (loops.c) */
        } else {
            cg_spirv_lib_stage(s, i);
        }
        for (int j = first; j < l->dispatches.n; j++)
            if (!l->dispatches.v[j].loop_iters) fe_die("spirv: dispatch %s has no loop bound", l->dispatches.v[j].entry);
        /* thread code and maps grow with the source; a library stage's
         * code is PX's own, of fixed size whatever the source says */
        size_t bytes = 4 * ((size_t)s->funcs.n - words_before);
        if (k->stages.v[i].kind == IR_STAGE_GRID && bytes > *big_bytes) *big_bytes = bytes, *big_stage = i;
        if (*big_bytes > stage_limit) return;
    }

    for (int b = 0; b < l->bindings.n; b++) {
        l->bindings.v[b].readonly = !s->binding_written[b];
        if (!s->binding_written[b]) {
            sb_member_decorate(s, s->buf_struct[b], 0, SpvDecorationNonWritable, 0, 0);
            if (s->buf_struct4[b])
                sb_member_decorate(s, s->buf_struct4[b], 0, SpvDecorationNonWritable, 0, 0);
        }
    }
}

static void cat(Sb *s, SbWords *dst, const SbWords *src) {
    for (int i = 0; i < src->n; i++) FE_PUSH(s->a, *dst, src->v[i]);
}

/* SPIRV-Tools' validator on w[0..n) for env. Returns 1 when valid; else 0
 * with *err the diagnostic's text (arena; NULL when it has none) and, when
 * pos is given, *pos its position index (see spv_inst_word). */
static int spv_validate(Arena *a, const uint32_t *w, size_t n, CgTargetEnv env, const char **err,
                        size_t *pos) {
    spv_context ctx = spvContextCreate(spv_env(env));
    spv_validator_options vo = spvValidatorOptionsCreate();
    spv_const_binary_t bin = {w, n};
    spv_diagnostic diag = NULL;
    spv_result_t r = spvValidateWithOptions(ctx, vo, &bin, &diag);
    if (r != SPV_SUCCESS) {
        *err = diag && diag->error ? fe_strdup(a, diag->error) : NULL;
        if (pos) *pos = diag ? diag->position.index : 0;
    }
    spvDiagnosticDestroy(diag);
    spvValidatorOptionsDestroy(vo);
    spvContextDestroy(ctx);
    return r == SPV_SUCCESS;
}

/* Word offset in w[0..n) of the instruction a validator diagnostic names.
 * Its position index counts instructions, not words: the validator numbers
 * them 1, 2, ... in module order (ValidationState_t::AddOrderedInstruction)
 * and gives 0 when no instruction is to blame. Walks the instructions from
 * word 5 (after the header); each one's word count is the high 16 bits of
 * its first word. Returns 0 for no instruction or an index out of range. */
static size_t spv_inst_word(const uint32_t *w, size_t n, size_t index) {
    if (index == 0) return 0;
    size_t at = 5;
    for (size_t i = 1; i < index && at < n; i++) {
        uint32_t wc = w[at] >> 16;
        if (wc == 0) return 0; /* malformed: no way on */
        at += wc;
    }
    return at < n ? at : 0;
}

CgModule *cg_spirv(Arena *a, Diags *d, const IrModule *m, const CgOptions *o) {
    int bad = 0;
    for (int i = 0; i < m->kernels.n; i++) {
        Loc where;
        if (!o->target.float16 && kernel_uses_half(m->kernels.v[i], &where)) {
            fe_error(d, where,
                     "kernel '%s' uses half, which needs 16-bit float support (SPIR-V Float16 "
                     "and 16-bit storage); the target has none",
                     m->kernels.v[i]->name);
            bad = 1;
        }
    }
    if (bad) return NULL;

    CgModule *cm = fe_alloc(a, sizeof *cm);
    cm->ir = m;
    cm->target = o->target;
    Sb sbv, *s = &sbv;
    memset(s, 0, sizeof *s);
    s->a = a;
    s->t = &cm->target;
    s->next_id = 1;
    s->glsl = sb_id(s);
    s->t_void = SB_TYPE(s, SpvOpTypeVoid);
    s->t_bool = SB_TYPE(s, SpvOpTypeBool);
    s->t_i32 = SB_TYPE(s, SpvOpTypeInt, 32, 1);
    s->t_u32 = SB_TYPE(s, SpvOpTypeInt, 32, 0);
    s->t_f32 = SB_TYPE(s, SpvOpTypeFloat, 32);
    s->t_uvec3 = SB_TYPE(s, SpvOpTypeVector, s->t_u32, 3);

    for (int i = 0; i < m->kernels.n; i++) {
        CgLaunch l;
        memset(&l, 0, sizeof l);
        FE_PUSH(a, cm->kernels, l);
    }
    for (int i = 0; i < m->kernels.n; i++) {
        int big;
        size_t big_bytes;
        sb_kernel(s, m->kernels.v[i], &cm->kernels.v[i], d->lim.spirv_stage_bytes, &big, &big_bytes);
        /* checked per kernel so a module past the limit is not finished,
         * validated or handed to a driver (docs/LANGUAGE.md, "Limits") */
        if (big_bytes > d->lim.spirv_stage_bytes) {
            const IrStage *st = &m->kernels.v[i]->stages.v[big];
            fe_error(d, st->locs.n ? st->locs.v[0] : m->kernels.v[i]->loc,
                     "generated SPIR-V of a stage is too large: %zu bytes for stage %d of kernel '%s' (limit %zu)",
                     big_bytes, big, m->kernels.v[i]->name, d->lim.spirv_stage_bytes);
            return NULL;
        }
        size_t bytes = 4 * ((size_t)s->entries.n + s->modes.n + s->names.n + s->annots.n + s->globals.n + s->funcs.n);
        if (bytes > d->lim.spirv_bytes) {
            fe_error(d, m->kernels.v[i]->loc,
                     "generated SPIR-V is too large: %zu bytes with kernel '%s' (limit %zu)", bytes,
                     m->kernels.v[i]->name, d->lim.spirv_bytes);
            return NULL;
        }
    }
    if (s->entries.n == 0) {
        /* No kernel has a stage: SPIR-V without an entry point is invalid for
         * Vulkan, so there is no module (nwords 0); every launch has zero
         * dispatches and the runtime runs it as a no-op. */
        cm->words = fe_alloc(a, sizeof *cm->words);
        cm->nwords = 0;
        return cm;
    }

    SbWords out = {0};
    uint32_t hdr[5] = {SpvMagicNumber, cg_spirv_version(o->target.env), 0, s->next_id, 0};
    for (int i = 0; i < 5; i++) FE_PUSH(a, out, hdr[i]);
    SB_INS(s, &out, SpvOpCapability, SpvCapabilityShader);
    if (s->used_f16) SB_INS(s, &out, SpvOpCapability, SpvCapabilityFloat16);
    if (s->used_f16_storage) SB_INS(s, &out, SpvOpCapability, SpvCapabilityStorageBuffer16BitAccess);
    if (s->used_group_ops) {
        SB_INS(s, &out, SpvOpCapability, SpvCapabilityGroupNonUniform);
        SB_INS(s, &out, SpvOpCapability, SpvCapabilityGroupNonUniformArithmetic);
    }
    sb_ins_str(s, &out, SpvOpExtInstImport, &s->glsl, 1, "GLSL.std.450", NULL, 0);
    SB_INS(s, &out, SpvOpMemoryModel, SpvAddressingModelLogical, SpvMemoryModelGLSL450);
    cat(s, &out, &s->entries);
    cat(s, &out, &s->modes);
    cat(s, &out, &s->names);
    cat(s, &out, &s->annots);
    cat(s, &out, &s->globals);
    size_t funcs_at = (size_t)out.n;
    cat(s, &out, &s->funcs);
    cm->words = out.v;
    cm->nwords = (size_t)out.n;

    if (!o->no_validate) {
        const char *err = NULL;
        size_t pos = 0;
        if (fe_inject_at("spirv") && cm->nwords > 5) cm->words[5] = 0; /* no such instruction */
        if (!spv_validate(a, cm->words, cm->nwords, o->target.env, &err, &pos)) {
            const char *where = "module-level declarations";
            size_t at = spv_inst_word(cm->words, cm->nwords, pos);
            for (int i = 0; at && i < s->fnrecs.n; i++)
                if (at >= funcs_at + s->fnrecs.v[i].off) where = s->fnrecs.v[i].name;
            fe_die("SPIR-V validation failed in %s (entry point %s): %s", m->file ? m->file : "?",
                   where, err ? err : "unknown error");
        }
    }
    return cm;
}

int cg_spirv_validate(Arena *a, const uint32_t *w, size_t n, CgTargetEnv env, char **msg) {
    const char *err = NULL;
    if (spv_validate(a, w, n, env, &err, NULL)) return 1;
    if (msg) *msg = fe_strdup(a, err ? err : "invalid SPIR-V");
    return 0;
}

char *cg_spirv_disasm(Arena *a, const uint32_t *w, size_t n, CgTargetEnv env) {
    if (n == 0) return fe_strndup(a, "", 0); /* no module: nothing to show */
    spv_context ctx = spvContextCreate(spv_env(env));
    spv_text text = NULL;
    spv_diagnostic diag = NULL;
    spv_result_t r = spvBinaryToText(ctx, w, n,
                                     SPV_BINARY_TO_TEXT_OPTION_FRIENDLY_NAMES |
                                         SPV_BINARY_TO_TEXT_OPTION_INDENT,
                                     &text, &diag);
    char *res = NULL;
    if (r == SPV_SUCCESS && text) res = fe_strndup(a, text->str, text->length);
    spvTextDestroy(text);
    spvDiagnosticDestroy(diag);
    spvContextDestroy(ctx);
    return res;
}
