/*
 * spirv_int.h — internals of the SPIR-V backend shared by spirv.c (word
 * emitter, types, constants, structured-control-flow builder), spirv_grid.c
 * (GRID stage bodies) and spirv_lib.c (library stages). Not for other layers.
 *
 * Sb (SPIR-V builder) invariants:
 *  - module sections are separate word vectors, concatenated in the order
 *    the SPIR-V spec requires by sb_finish;
 *  - types and constants are deduplicated through a cache keyed by opcode
 *    and operands (block structs are created uncached: they carry their own
 *    decorations);
 *  - code goes into the current function's body; OpVariables of the
 *    Function storage class go to a separate list placed at the top of the
 *    first block, as the spec requires;
 *  - all mutable state of generated code (vars, IF results, FOR carried
 *    values) lives in Function variables; drivers promote them to SSA.
 */
#ifndef PX_SPIRV_INT_H
#define PX_SPIRV_INT_H

#include "cg.h"
#include <spirv/unified1/GLSL.std.450.h>
#include <spirv/unified1/spirv.h>

typedef FE_VEC(uint32_t) SbWords;

typedef struct SbKey {
    uint32_t hash;
    int off, n;        /* the key words in Sb.keywords */
    uint32_t id;
} SbKey;

/* Where each function's words start in the funcs section and which entry
 * it is: maps a validator position back to a stage. */
typedef struct SbFnRec { size_t off; const char *name; } SbFnRec;

typedef struct Sb {
    Arena *a;
    const CgTarget *t;
    uint32_t next_id;
    SbWords caps, exts, imports, mem, entries, modes, names, annots, globals, funcs;
    SbWords fvars, fbody;      /* the function being built */
    SbWords keywords;
    FE_VEC(SbKey) cache;
    FE_VEC(uint32_t) iface;    /* globals the current entry point references */
    uint32_t glsl;             /* GLSL.std.450 import */
    uint32_t t_void, t_bool, t_f32, t_i32, t_u32, t_f16, t_uvec3;
    uint32_t builtin_gid, builtin_lid, builtin_wg; /* lazily made */
    /* scalar u32 subgroup builtins (SubgroupId, NumSubgroups,
     * SubgroupLocalInvocationId), made only when CgTarget.subgroups */
    uint32_t builtin_sgid, builtin_nsg, builtin_sglid, builtin_sgsize;
    int used_f16, used_f16_storage, used_group_ops;
    /* the kernel being lowered */
    const IrKernel *k;
    CgLaunch *launch;
    uint32_t push_var;         /* 0: the kernel has no push constants */
    uint32_t *push_member;     /* by CgLaunch.push index: the member type */
    int groups_push;           /* push index of the group count x (y, z
                                * follow); -1: the kernel has no stage */
    int *param_push;           /* params index -> push index, -1 */
    int *sym_push;             /* syms index -> push index */
    uint32_t *buf_var;         /* bindings index -> variable */
    uint32_t *buf_elem;        /* bindings index -> element type id */
    uint32_t *buf_struct;      /* bindings index -> its Block struct */
    /* bindings index -> a second variable on the same binding viewing it as
     * 4-vectors of the element (ArrayStride 16), and its Block struct; 0
     * until first used. Vulkan lets variables alias one descriptor. */
    uint32_t *buf_var4, *buf_struct4;
    int max_bindings;
    int *binding_written;      /* bindings index -> some entry writes it */
    FE_VEC(SbFnRec) fnrecs;
    /* spirv_grid.c: per-instruction tables of the kernel being emitted,
     * made once per kernel and shared by its stages (an instruction is in
     * one stage), so emitting S stages of N instructions is O(N), not
     * O(S * N); NULL until its first grid stage */
    struct SbGridScratch *grid;
} Sb;

/* ---- words ---- */
uint32_t sb_id(Sb *s);
void sb_ins(Sb *s, SbWords *w, SpvOp op, const uint32_t *ops, int n);
#define SB_N(...) (int)(sizeof((uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t))
#define SB_INS(s, w, op, ...) sb_ins((s), (w), (op), (uint32_t[]){__VA_ARGS__}, SB_N(__VA_ARGS__))
void sb_ins_str(Sb *s, SbWords *w, SpvOp op, const uint32_t *pre, int npre, const char *str,
                const uint32_t *post, int npost);
void sb_name(Sb *s, uint32_t id, const char *name);
void sb_decorate(Sb *s, uint32_t id, SpvDecoration d, int nlit, uint32_t lit);
void sb_member_decorate(Sb *s, uint32_t id, uint32_t member, SpvDecoration d, int nlit,
                        uint32_t lit);

/* ---- types and constants ---- */
uint32_t sb_type(Sb *s, SpvOp op, const uint32_t *ops, int n);
#define SB_TYPE(s, op, ...) sb_type((s), (op), (uint32_t[]){__VA_ARGS__}, SB_N(__VA_ARGS__))
uint32_t sb_ptr(Sb *s, SpvStorageClass sc, uint32_t type);
uint32_t sb_scalar(Sb *s, ScalarType t);  /* bool, i32, u32, f32, f16 */
uint32_t sb_const_u(Sb *s, uint32_t v);
uint32_t sb_const_i(Sb *s, int32_t v);
uint32_t sb_const_f(Sb *s, float v);
uint32_t sb_const_typed(Sb *s, ScalarType t, double f, int64_t i); /* f for float/half, i else */
uint32_t sb_const_bool(Sb *s, int v);
uint32_t sb_array(Sb *s, uint32_t elem, uint32_t len); /* OpTypeArray, length constant */
uint32_t sb_vec4(Sb *s, uint32_t elem);                /* OpTypeVector elem 4 */

/* ---- globals of the kernel ---- */
uint32_t sb_builtin(Sb *s, SpvBuiltIn b);   /* uvec3 Input variable; recorded in iface */
uint32_t sb_builtin_x(Sb *s, SpvBuiltIn b, int comp); /* one u32 component of it */
/* A scalar u32 subgroup builtin (SubgroupId, NumSubgroups, SubgroupSize,
 * SubgroupLocalInvocationId); only when s->t->subgroups. */
uint32_t sb_builtin_sg(Sb *s, SpvBuiltIn b);
/* OpGroupNonUniform<op> over the subgroup with group operation gop
 * (Reduce, InclusiveScan, ExclusiveScan); only when s->t->subgroups. */
uint32_t sb_group_op(Sb *s, SpvOp op, uint32_t type, SpvGroupOperation gop, uint32_t v);
uint32_t sb_shared(Sb *s, uint32_t elem, uint32_t len, const char *name); /* Workgroup array */
void sb_use_global(Sb *s, uint32_t var);

/* ---- functions and code ---- */
uint32_t sb_op(Sb *s, SpvOp op, uint32_t type, const uint32_t *ops, int n);
#define SB_OP(s, op, type, ...) sb_op((s), (op), (type), (uint32_t[]){__VA_ARGS__}, SB_N(__VA_ARGS__))
uint32_t sb_ext(Sb *s, enum GLSLstd450 f, uint32_t type, const uint32_t *ops, int n);
#define SB_EXT(s, f, type, ...) sb_ext((s), (f), (type), (uint32_t[]){__VA_ARGS__}, SB_N(__VA_ARGS__))
uint32_t sb_var(Sb *s, uint32_t type);          /* Function variable of value type */
uint32_t sb_load(Sb *s, uint32_t type, uint32_t ptr);
void sb_store(Sb *s, uint32_t ptr, uint32_t val);
void sb_label(Sb *s, uint32_t id);
void sb_branch(Sb *s, uint32_t target);
void sb_barrier(Sb *s);                          /* workgroup execution + memory barrier */

typedef struct SbIf { uint32_t merge, els; int has_else; } SbIf;
SbIf sb_if_begin(Sb *s, uint32_t cond, int has_else);
void sb_if_else(Sb *s, SbIf *f);
void sb_if_end(Sb *s, SbIf *f);

typedef struct SbLoop { uint32_t header, check, body, cont, merge; } SbLoop;
SbLoop sb_loop_begin(Sb *s);                 /* now in the check block */
void sb_loop_test(Sb *s, SbLoop *l, uint32_t cond); /* leaves when !cond; now in the body */
void sb_loop_continue(Sb *s, SbLoop *l);     /* now in the continue block */
void sb_loop_end(Sb *s, SbLoop *l);          /* back edge; now after the loop */

/* A simple counted loop `for (v = lo; v < hi; v += step)` over u32 whose
 * counter lives in a Function variable. Between begin and end the caller
 * emits the body; sb_for_iv gives the counter's current value. */
typedef struct SbFor { SbLoop l; uint32_t var, step, iv; } SbFor;
SbFor sb_for_begin(Sb *s, uint32_t lo, uint32_t hi, uint32_t step);
void sb_for_end(Sb *s, SbFor *f);

/* Entry point: begin a void() function; end it and register it as entry
 * `name` (the caller's, e.g. from sb_entry_name) with its LocalSize and
 * interface. */
void sb_fn_begin(Sb *s);
void sb_fn_end_entry(Sb *s, const char *name, const int local[3]);

/* ---- kernel resources ---- */
uint32_t sb_push_load(Sb *s, int push_index);       /* value as passed */
uint32_t sb_param_value(Sb *s, int param);          /* scalar param in its IR type */
uint32_t sb_sym_value(Sb *s, int sym);              /* u32 */
/* The running dispatch's whole group count in component comp (u32), for
 * grid-stride strides: a push constant the host sets per dispatch
 * (CG_PUSH_GROUPS), never NumWorkgroups, which a sliced launch (part of
 * the groups, vkCmdDispatchBase) would give as the slice's count. */
uint32_t sb_num_groups(Sb *s, int comp);
/* IrSize as device code in u32 (two's complement: int results bitcast). */
uint32_t sb_size_u32(Sb *s, const IrSize *z);
/* Pointer to element `flat` (u32) of binding b. */
uint32_t sb_buf_ptr(Sb *s, int binding, uint32_t flat);
uint32_t sb_buf_load(Sb *s, int binding, uint32_t flat);
void sb_buf_store(Sb *s, int binding, uint32_t flat, uint32_t val);
/* Element i4 of binding b viewed as 4-vectors (elements 4*i4 .. 4*i4+3);
 * 32-bit element types only. The caller guarantees 4*i4+3 is in range. */
uint32_t sb_buf4_load(Sb *s, int binding, uint32_t i4);
void sb_buf4_store(Sb *s, int binding, uint32_t i4, uint32_t val);
int sb_param_binding(Sb *s, int param);
/* Extent of dimension d of buffer param p as u32. */
uint32_t sb_dim(Sb *s, int param, int d);

/* u32 helpers */
uint32_t sb_umin(Sb *s, uint32_t a, uint32_t b);
uint32_t sb_uadd(Sb *s, uint32_t a, uint32_t b);
uint32_t sb_umul(Sb *s, uint32_t a, uint32_t b);
uint32_t sb_ult(Sb *s, uint32_t a, uint32_t b);

/* ---- spirv_grid.c / spirv_lib.c: one stage -> dispatches ---- */
void cg_spirv_grid_stage(Sb *s, int stage);
void cg_spirv_lib_stage(Sb *s, int stage);
/* Register a dispatch for the entry just finished. */
void sb_add_dispatch(Sb *s, const char *entry, int stage, const int local[3], IrSize *gx,
                     IrSize *gy, IrSize *gz);
/* Register a dispatch that is the alternative of the one before it: their
 * group counts are such that at most one of the two is nonzero for any
 * sizes, so no barrier separates them. */
void sb_add_dispatch_alt(Sb *s, const char *entry, int stage, const int local[3], IrSize *gx,
                         IrSize *gy, IrSize *gz);
int sb_add_scratch(Sb *s, IrSize *bytes, ScalarType elem); /* returns its binding */
const char *sb_entry_name(Sb *s, int stage, const char *pass);

#endif
