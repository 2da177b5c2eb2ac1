/*
 * ir.h — the typed PX IR, its builder, printer, verifier, passes and
 * static analyses. Sections are named after the .c files.
 *
 * Shape of the IR
 * ---------------
 * An IrModule holds kernels. An IrKernel has parameters (scalars and
 * buffers), size symbols, and an ordered list of stages, one per parallel
 * statement of the source (fewer after fusion). Every stage sees all writes
 * of the stages before it; backends put a barrier between stages.
 *
 * Stages are of two sorts:
 *  - GRID stages (from MAP, ADD/SUB/MUL/DIV, FILL, COPY and PARALLEL_FOR):
 *    an index space of rank 1..3 with bounds lo..hi given as IrSize
 *    formulas, and a body block run once per point. The body's arguments
 *    are the index variables. Elementwise primitives are lowered to bodies
 *    that load the inputs at the index and store the output there.
 *  - Library stages (MATMUL, REDUCE, SCAN, SOFTMAX, TRANSPOSE): a primitive
 *    with buffer operands and no body; backends expand them by strategy.
 *
 * Code inside bodies is SSA with structured control flow (in the manner of
 * MLIR's scf dialect): every value is defined once by an instruction; IF
 * and FOR are instructions that own blocks and produce results, which are
 * IR_RESULT instructions standing right after them in the same block;
 * blocks end with IR_YIELD giving the values of those results (FOR: the
 * next values of the loop-carried arguments). Mutable `var` locals of the
 * source become IF results and FOR loop-carried values.
 *
 * Values are instruction ids (indices into IrKernel.insts), so a value is
 * an int; -1 is "none". Blocks list instruction ids in order.
 *
 * Semantics of ops are PX's (contract sections 4 and 5), so backends must
 * implement them exactly: integer division and remainder by zero give 0,
 * shifts take their count modulo 32, a LOAD out of range gives 0 and a
 * STORE out of range does nothing unless the instruction's IR_F_INBOUNDS
 * flag says range analysis proved it in range.
 */
#ifndef PX_IR_H
#define PX_IR_H

#include "../base/base.h"

/* ===== size.c: integer formulas of size symbols and scalar params ===== */

/* Extents, index-space bounds, trip counts and dispatch grids. Evaluated in
 * int64 on the host; backends also emit them as device code. */
#define IR_SIZE_OPS(X)                                 \
    X(SZ_CONST, "const")   /* c */                      \
    X(SZ_SYM, "sym")       /* size symbol `sym` (uint) */ \
    X(SZ_PARAM, "param")   /* int/uint scalar param `sym` */ \
    X(SZ_ADD, "+")                                      \
    X(SZ_SUB, "-")                                      \
    X(SZ_MUL, "*")                                      \
    X(SZ_DIV, "/")         /* truncating; x/0 = 0 as in PX */ \
    X(SZ_REM, "%")         /* x%0 = 0 */                \
    X(SZ_CEILDIV, "ceildiv")                            \
    X(SZ_MIN, "min")                                    \
    X(SZ_MAX, "max")
typedef enum {
#define X(e, s) e,
    IR_SIZE_OPS(X)
#undef X
} IrSizeOp;

typedef struct IrSize IrSize;
struct IrSize {
    IrSizeOp op;
    int64_t c;       /* SZ_CONST */
    int sym;         /* SZ_SYM: index into IrKernel.syms; SZ_PARAM: into params */
    IrSize *a, *b;
};

typedef struct IrKernel IrKernel;
IrSize *ir_size_const(Arena *a, int64_t c);
IrSize *ir_size_sym(Arena *a, int sym);
IrSize *ir_size_param(Arena *a, int param);
IrSize *ir_size_bin(Arena *a, IrSizeOp op, IrSize *l, IrSize *r); /* folds constants */
int ir_size_equal(const IrSize *x, const IrSize *y);             /* structural */
int ir_size_is_const(const IrSize *s, int64_t *c);
/* Evaluate with symbol values syms[] and integer param values params[]. */
int64_t ir_size_eval(const IrSize *s, const int64_t *syms, const int64_t *params);
/* Text form: `N`, `(M * 4)`, `ceildiv(N, 256)`; params printed by name. */
void ir_size_print(FILE *out, const IrKernel *k, const IrSize *s);
char *ir_size_str(Arena *a, const IrKernel *k, const IrSize *s);

/* ===== ir.c: the data structures and the builder ===== */

#define IR_OPS(X)                                                             \
    X(IR_CONST, "const")     /* imm (typed by .type) */                        \
    X(IR_PARAM, "param")     /* scalar parameter .param */                     \
    X(IR_SIZE, "size")       /* size symbol .param as uint */                  \
    X(IR_BARG, "arg")        /* block argument (index var or loop-carried) */  \
    X(IR_RESULT, "result")   /* result .imm.i of IF/FOR a[0], right after it */ \
    X(IR_NEG, "neg")                                                          \
    X(IR_NOT, "not")         /* bool */                                        \
    X(IR_BNOT, "bnot")       /* int/uint */                                    \
    X(IR_ADD, "add")  X(IR_SUB, "sub")  X(IR_MUL, "mul")                      \
    X(IR_DIV, "div")         /* int: x/0 = 0 unless IR_F_NONZERO */            \
    X(IR_REM, "rem")         /* int: x%0 = 0; float: fmod */                   \
    X(IR_AND, "and")  X(IR_OR, "or")  X(IR_XOR, "xor") /* int, uint, bool */   \
    X(IR_SHL, "shl")  X(IR_SHR, "shr") /* count mod 32; shr of int: arithmetic */ \
    X(IR_EQ, "eq")  X(IR_NE, "ne")  X(IR_LT, "lt")                            \
    X(IR_LE, "le")  X(IR_GT, "gt")  X(IR_GE, "ge") /* -> bool */               \
    X(IR_SELECT, "select")   /* a[0] bool ? a[1] : a[2] */                     \
    X(IR_CONV, "conv")       /* a[0] to .type */                               \
    X(IR_CALL, "call")       /* builtin .param (FeBuiltin, not conversions) */ \
    X(IR_LOAD, "load")       /* buffer .param at indices a[0..rank) */         \
    X(IR_STORE, "store")     /* buffer .param at a[0..rank) := a[rank] */      \
    X(IR_IF, "if")           /* a[0] cond; .body then, .els else; nres results */ \
    X(IR_FOR, "for")         /* a[0] lo, a[1] hi, a[2..] inits; .body args: iv, carried */ \
    X(IR_YIELD, "yield")     /* a[...] block's outgoing values */
typedef enum {
#define X(e, s) e,
    IR_OPS(X)
#undef X
    IR_OP_COUNT
} IrOp;
extern const char *const ir_op_names[IR_OP_COUNT];

enum {
    IR_F_INBOUNDS = 1 << 0, /* LOAD/STORE: proved in range, no check emitted */
    IR_F_NONZERO = 1 << 1,  /* DIV/REM: divisor proved non-zero */
};

typedef struct IrBlock {
    FE_VEC(int) args;  /* IR_BARG instruction ids */
    FE_VEC(int) ins;   /* instruction ids, in order; ends with IR_YIELD if the
                          parent needs values */
} IrBlock;

typedef struct IrInst {
    IrOp op;
    ScalarType type;   /* result type; TY_VOID for STORE/YIELD and for IF/FOR
                          themselves (their values are the RESULTs) */
    FE_VEC(int) a;     /* operands (value ids) */
    union { int64_t i; uint64_t u; double f; } imm;
    int param;         /* PARAM/LOAD/STORE: param index; SIZE: sym index;
                          CALL: FeBuiltin */
    int nres;          /* IF/FOR: number of results */
    IrBlock *body, *els;
    IrSize *trip;      /* FOR: trip count max(hi-lo, 0) as a formula (cost) */
    int flags;         /* IR_F_* */
    Loc loc;
} IrInst;

typedef struct IrSym {
    const char *name;  /* user's name, or `buf.k` for an implicit extent */
    int implicit;
    Loc loc;           /* first place it was used */
} IrSym;

enum {
    IR_P_READ = 1 << 0,     /* some stage reads it */
    IR_P_WRITTEN = 1 << 1,  /* some stage writes it */
    IR_P_IMPLICIT = 1 << 2, /* implicitly declared float[] */
    IR_P_FLEX = 1 << 3,     /* rank not fixed by use: any rank binds, flattened */
};

typedef struct IrParam {
    const char *name;
    int is_buffer;
    ScalarType type;   /* scalar type, or element type of a buffer */
    int rank;          /* buffers: 1..4 */
    IrSize *dims[4];   /* buffers: SZ_CONST or SZ_SYM, row-major */
    int flags;         /* IR_P_* */
    Loc loc;
} IrParam;

#define IR_STAGE_KINDS(X)                                                  \
    X(IR_STAGE_GRID, "grid")           /* body over an index space */         \
    X(IR_STAGE_MATMUL, "matmul")       /* out = in0 x in1 */                  \
    X(IR_STAGE_REDUCE, "reduce")       /* out[r] = rop over last axis of in0 */ \
    X(IR_STAGE_SCAN, "scan")           /* inclusive prefix sum, last axis */  \
    X(IR_STAGE_SOFTMAX, "softmax")     /* stable softmax, last axis */        \
    X(IR_STAGE_TRANSPOSE, "transpose") /* out[j][i] = in0[i][j] */
typedef enum {
#define X(e, s) e,
    IR_STAGE_KINDS(X)
#undef X
} IrStageKind;
extern const char *const ir_stage_kind_names[];

/* How a backend lowers a stage; chosen by ir_pass_strategy, printed by
 * --emit=ir so golden tests pin it. Parameters in IrStage.sp[]. */
#define IR_STRATEGIES(X)                                                       \
    X(IR_STRAT_NONE, "none")               /* not chosen yet */                  \
    X(IR_STRAT_ELEMWISE, "elementwise")    /* sp[0] threads/group, sp[1] items/thread */ \
    X(IR_STRAT_GRID, "grid")               /* PARALLEL_FOR: sp[0..2] group size per dim */ \
    X(IR_STRAT_MATMUL_TILED, "matmul-tiled") /* sp[0] TM, sp[1] TN, sp[2] TK, sp[3] per-thread */ \
    X(IR_STRAT_REDUCE_TREE, "reduce-tree") /* sp[0] group, sp[1] max groups (2 passes) */ \
    X(IR_STRAT_REDUCE_ROWS, "reduce-rows") /* 2-D: sp[0] group per row */        \
    X(IR_STRAT_SCAN_3PASS, "scan-3pass")   /* reduce, scan partials, propagate */ \
    X(IR_STRAT_SOFTMAX_ROW, "softmax-row") /* one group per row: sp[0] group */ \
    X(IR_STRAT_TRANSPOSE_TILED, "transpose-tiled") /* sp[0] tile */            \
    X(IR_STRAT_TRANSPOSE_BLOCK, "transpose-block") /* sp[0] group edge; 4x4 blocks */
typedef enum {
#define X(e, s) e,
    IR_STRATEGIES(X)
#undef X
} IrStrategy;
extern const char *const ir_strategy_names[];

typedef struct IrStage {
    IrStageKind kind;
    FE_VEC(FePrim) prims;  /* source primitives (several after fusion) */
    FE_VEC(Loc) locs;      /* their statement locations */
    /* library stages */
    int in[2], nin;        /* buffer param indices */
    int out;               /* buffer param index */
    FeReduceOp rop;
    /* grid stages */
    int rank;              /* 1..3 */
    IrSize *lo[3], *hi[3]; /* bounds of each index dimension, hi exclusive */
    ScalarType itype[3];   /* type of each index variable (int or uint) */
    IrBlock *body;         /* args: the index variables */
    int elementwise;       /* every access is at exactly the index: fusable */
    /* lowering */
    IrStrategy strategy;
    int sp[4];
} IrStage;

struct IrKernel {
    const char *name;
    Loc loc;
    FE_VEC(IrParam) params;
    FE_VEC(IrSym) syms;
    FE_VEC(IrStage) stages;
    FE_VEC(IrInst) insts;  /* all instructions of all stages */
    FeClass cls;           /* as written; CLASS_NONE: derived by cost.c */
    uint64_t deadline_ns;
};

typedef struct IrModule {
    Arena *arena;
    const char *file;
    FE_VEC(IrKernel *) kernels;
} IrModule;

/* Builder: append instructions to a block. Every function returns the new
 * value id. The builder does not check types; the verifier does. */
typedef struct IrBuilder {
    Arena *arena;
    IrKernel *k;
    IrBlock *blk;      /* insertion block */
    Loc loc;           /* location given to new instructions */
} IrBuilder;

IrBlock *ir_block_new(Arena *a);
int ir_inst_new(IrKernel *k, Arena *a, IrOp op, ScalarType t); /* not placed in a block */
int ir_emit(IrBuilder *b, IrOp op, ScalarType t, int n, const int *args);
int ir_const_int(IrBuilder *b, ScalarType t, int64_t v);   /* int, uint, bool */
int ir_const_float(IrBuilder *b, ScalarType t, double v);  /* float, half */
int ir_barg(IrBuilder *b, IrBlock *blk, ScalarType t);     /* appends an arg to blk */
/* IF and FOR: create the op, its blocks and nres RESULT instructions; the
 * caller fills the blocks (ending them with ir_yield). results[] gets the
 * RESULT ids. */
int ir_if(IrBuilder *b, int cond, int nres, const ScalarType *rt, int *results);
int ir_for(IrBuilder *b, int lo, int hi, IrSize *trip, int ncarried, const int *inits,
           const ScalarType *ct, int *iv, int *carried_args, int *results);
void ir_yield(IrBuilder *b, int n, const int *vals);
static inline IrInst *ir_inst(IrKernel *k, int id) { return &k->insts.v[id]; }

IrModule *ir_module_new(Arena *a, const char *file);
IrKernel *ir_kernel_new(IrModule *m, const char *name, Loc loc);
IrStage *ir_stage_add(IrKernel *k, Arena *a, IrStageKind kind, FePrim prim, Loc loc);
/* Append a size symbol or a parameter to k; each returns its index. */
int ir_sym_add(IrKernel *k, Arena *a, const char *name, int implicit, Loc loc);
int ir_param_add(IrKernel *k, Arena *a, const IrParam *p);
int ir_scalar_add(IrKernel *k, Arena *a, const char *name, ScalarType t, Loc loc);
int ir_buffer_add(IrKernel *k, Arena *a, const char *name, ScalarType elem, int rank,
                  IrSize *const *dims, int flags, Loc loc);

/* ===== lower.c: checked AST -> IR ===== */

/* Requires fe_check to have succeeded (no errors). Builds one IrKernel per
 * kernel; `only`, when not NULL, selects one kernel by name (NULL result
 * and an error in d when absent). */
struct Program;
IrModule *ir_lower(Arena *a, Diags *d, struct Program *p, const char *only);

/* ===== print.c: the text form that --emit=ir prints and golden tests diff ===== */

void ir_print_module(FILE *out, const IrModule *m);
void ir_print_kernel(FILE *out, const IrKernel *k);

/* ===== verify.c ===== */

/* Checks types, dominance (a use sees its definition earlier in the same or
 * an enclosing block), block structure, RESULT/YIELD arity, buffer ranks,
 * stage operands. On failure: fe_die naming the pass that broke it. */
void ir_verify(const IrModule *m, const char *after_pass);

/* ===== passes: each requires a verified module and leaves one ===== */

typedef struct IrOptions {
    int opt_level;     /* 0, 1, 2 */
    int verify;        /* run ir_verify after every pass (debug builds: always) */
    int has_subgroups; /* target facts used by strategy choice */
    int subgroup_size;
    int shared_bytes;
} IrOptions;

/* fold.c */
void ir_pass_fold(IrModule *m);        /* constant folding, algebraic identities */
/* dce.c */
void ir_pass_dce(IrModule *m);         /* removes unused pure instructions and results */
/* fuse.c */
void ir_pass_fuse(IrModule *m);        /* merges consecutive elementwise grid stages */
/* Instructions a fused body may reach (top level of an elementwise body,
 * before DCE; a PARALLEL_ADD is 4): about 128 statements per stage. */
enum { IR_FUSE_MAX_INSTS = 512 };
/* bounds.c */
void ir_pass_bounds(IrModule *m);      /* range analysis: sets IR_F_INBOUNDS, IR_F_NONZERO */
/* strategy.c */
void ir_pass_strategy(IrModule *m, const IrOptions *o);
/* pipeline.c: the one visible pipeline, NIR_PASS style */
void ir_optimize(IrModule *m, const IrOptions *o);

/* ===== limits.c ===== */

/* Errors in d for what ir_optimize left past d->lim (stages per kernel);
 * returns whether there were any. The backends' callers run it on the
 * module they compile (not cost analysis on its -O0 twin). */
int ir_check_limits(const IrModule *m, Diags *d);

/* ===== poly.c: cost polynomials over size symbols and params ===== */

/* Exact integer polynomials whose variables ("atoms") are a kernel's size
 * symbols, its int/uint scalar params, and opaque IrSize formulas that are
 * not polynomial (ceildiv, min, max, / and % by a non-constant). Atom ids
 * of a kernel: 0..nsyms-1 the size symbols, then nsyms+p for param p, then
 * the opaque atoms in the order first met. Polynomials are immutable and
 * canonical: like terms combined, no zero terms, terms ordered by falling
 * total degree then by exponents in atom order (graded lex), so printing
 * is stable. Coefficients are int64; an operation that would overflow
 * sets `overflow` (printed as `overflow`, never evaluated). */
typedef struct IrPolyFactor { int atom, exp; } IrPolyFactor;
typedef struct IrPolyTerm {
    int64_t c;
    int nf;               /* factors sorted by atom id, exp >= 1 */
    IrPolyFactor *f;
} IrPolyTerm;
typedef struct IrPoly {
    int n;
    IrPolyTerm *t;
    int overflow;
} IrPoly;

typedef struct IrAtoms {
    Arena *arena;
    const IrKernel *k;
    FE_VEC(const IrSize *) opaque; /* atom nsyms+nparams+i */
} IrAtoms;

void ir_atoms_init(IrAtoms *at, Arena *a, const IrKernel *k);
IrPoly *ir_poly_const(Arena *a, int64_t c);
IrPoly *ir_poly_atom(Arena *a, int atom);
IrPoly *ir_poly_add(Arena *a, const IrPoly *x, const IrPoly *y);
IrPoly *ir_poly_sub(Arena *a, const IrPoly *x, const IrPoly *y);
IrPoly *ir_poly_mul(Arena *a, const IrPoly *x, const IrPoly *y);
IrPoly *ir_poly_scale(Arena *a, const IrPoly *x, int64_t c);
/* Coefficient-wise maximum: an upper bound of both where every monomial is
 * >= 0 (size symbols are uint; params are assumed >= 0 for bounds). */
IrPoly *ir_poly_max(Arena *a, const IrPoly *x, const IrPoly *y);
int ir_poly_is_const(const IrPoly *p, int64_t *c);
int ir_poly_equal(const IrPoly *x, const IrPoly *y);
/* x - y has no negative coefficient: x >= y wherever monomials are >= 0. */
int ir_poly_dominates(Arena *a, const IrPoly *x, const IrPoly *y);
/* Total degree; an opaque atom's degree is that of its formula (x/y and
 * ceildiv(x, y): x's; min/max: the larger; x%y: y's). */
int ir_poly_degree(const IrAtoms *at, const IrPoly *p);
/* SZ_MAX(x, 0) becomes x (trip counts assume lo <= hi; documented in
 * docs/COST.md); other non-polynomial nodes become opaque atoms. */
IrPoly *ir_poly_from_size(IrAtoms *at, const IrSize *s);
/* `2*M*N*K + N^2 - 1`; atoms by name, opaque ones as ir_size_print text. */
void ir_poly_print(FILE *out, const IrAtoms *at, const IrPoly *p);
char *ir_poly_str(Arena *a, const IrAtoms *at, const IrPoly *p);
/* Evaluates in long double (exact below 2^64). syms_set/params_set (NULL:
 * all bound) say which values are given; returns 0, leaving *out alone,
 * when an atom the polynomial needs is unbound or it overflowed. */
int ir_poly_eval(const IrAtoms *at, const IrPoly *p, const int64_t *syms,
                 const unsigned char *syms_set, const int64_t *params,
                 const unsigned char *params_set, long double *out);

/* ===== cost.c: static cost analysis and workload class ===== */

/* Metrics of a stage and of a kernel (docs/COST.md defines each). */
#define IR_COST_METRICS(X)                                                   \
    X(IR_COST_FLOPS, "flops")                 /* float/half operations */     \
    X(IR_COST_INTOPS, "intops")               /* int/uint/bool operations */  \
    X(IR_COST_BYTES_READ, "bytes_read")       /* distinct elements read x size */ \
    X(IR_COST_BYTES_WRITTEN, "bytes_written") /* distinct elements written x size */ \
    X(IR_COST_ACCESSES, "accesses")           /* element loads and stores executed */ \
    X(IR_COST_CHECKED, "checked")             /* of those, the bounds-checked ones */ \
    X(IR_COST_UNIFORM, "uniform")             /* of those, loads at one address for all invocations */ \
    X(IR_COST_DISPATCHES, "dispatches")       /* device dispatches */
typedef enum {
#define X(e, s) e,
    IR_COST_METRICS(X)
#undef X
    IR_COST_N
} IrCostMetric;
extern const char *const ir_cost_metric_names[IR_COST_N];

typedef struct IrCost {
    IrPoly *m[IR_COST_N];
} IrCost;

/* Library stages, by how they run: each has its own calibrated slowdown
 * against the roofline and fixed cost (docs/COST.md, "Prediction"). */
#define IR_LIB_CLASSES(X)                                                    \
    X(IR_LIB_NONE, "none")               /* thread code, maps: roofline only */ \
    X(IR_LIB_REDUCE, "reduce")           /* 1-D REDUCE: two-pass tree */      \
    X(IR_LIB_REDUCE_ROWS, "reduce_rows") /* REDUCE of rows of a 2-D+ input */ \
    X(IR_LIB_SCAN, "scan")               /* 1-D SCAN: three passes */         \
    X(IR_LIB_SCAN_ROWS, "scan_rows")     /* SCAN of rows of a 2-D+ input */   \
    X(IR_LIB_SOFTMAX, "softmax")         /* SOFTMAX, any rank */              \
    X(IR_LIB_TRANSPOSE, "transpose")     /* TRANSPOSE */                      \
    X(IR_LIB_MATMUL, "matmul")           /* MATMUL */
typedef enum {
#define X(e, s) e,
    IR_LIB_CLASSES(X)
#undef X
    IR_LIB_N
} IrLibClass;
extern const char *const ir_lib_class_names[IR_LIB_N];

typedef struct IrStageCost {
    IrCost c;
    IrLibClass lib;
    IrStageKind kind;
    FePrim prim;           /* the source statement */
    Loc loc;
} IrStageCost;

typedef struct IrKernelCost {
    const IrKernel *k;
    IrAtoms atoms;
    IrCost total;
    FE_VEC(IrStageCost) stages; /* one per stage of the analysed IR */
    /* The stages as they run (of `opt`, after fusion; empty without opt):
     * what prediction uses, since a fused stage touches each element once
     * however many statements it runs. Not part of the printed figures. */
    FE_VEC(IrStageCost) run;
    FeClass cls;           /* never CLASS_NONE */
    const char *class_reason;
} IrKernelCost;

/* Dispatches a stage lowers to under its strategy (IR_STRAT_NONE: the
 * strategy ir_pass_strategy picks by default for its kind and rank). */
int ir_stage_dispatches(const IrKernel *k, const IrStage *st);
/* Analyses `src`, the kernel as lowered (before ir_optimize, so counts do
 * not depend on -O) and marked by ir_pass_bounds (without it every access
 * counts as checked). `opt`, when not NULL, is the same kernel after
 * ir_optimize: the kernel's dispatches are then those of its stages after
 * fusion; the per-stage figures always describe src's stages (one per
 * source statement). */
IrKernelCost *ir_cost_kernel(Arena *a, const IrKernel *src, const IrKernel *opt);
/* Values bound by name (pxcc --size NAME=N). */
typedef struct IrCostBind {
    const char **names;    /* size-symbol or int/uint param names */
    const int64_t *vals;
    int n;
} IrCostBind;

/* Costs of every kernel of a module the caller lowered at -O0 itself (`src`, which it
 * marks with ir_pass_bounds first) and its optimised twin `opt` (or NULL).
 * The array has src->kernels.n entries; NULL when the two modules' kernels
 * differ. */
IrKernelCost **ir_cost_lowered(Arena *a, IrModule *src, const IrModule *opt);
/* The first bound name that is neither a size symbol nor an int/uint
 * scalar param of any of the kernels, or NULL. */
const char *ir_cost_bind_unused(IrKernelCost *const *cs, int n, const IrCostBind *bind);
/* The workload class of a kernel from its cost (section 6 of the
 * contract); *reason gets a one-line arena string. */
FeClass ir_cost_class(Arena *a, const IrKernelCost *c, const char **reason);

/* Numbers of one stage (stage -1: the kernel) at bound values. */
typedef struct IrCostValues {
    double v[IR_COST_N];   /* indexed by IrCostMetric */
    IrLibClass lib;        /* of the stage (ir_cost_values); NONE for a kernel */
    /* Workgroups the stage's dispatches launch: not a formula of the
     * analysis but of the code generated for a device, so its caller (the
     * runtime, from launch metadata) fills it; 0 when unknown. */
    double groups;
} IrCostValues;
/* syms[]/params[] as for ir_size_eval; *_set NULL: all bound. Returns 0
 * when some symbol it needs is unbound (out is then untouched). */
int ir_cost_values(const IrKernelCost *c, int stage, const int64_t *syms,
                   const unsigned char *syms_set, const int64_t *params,
                   const unsigned char *params_set, IrCostValues *out);

/* The same for run stage i (IrKernelCost.run). */
int ir_cost_run_values(const IrKernelCost *c, int stage, const int64_t *syms,
                       const unsigned char *syms_set, const int64_t *params,
                       const unsigned char *params_set, IrCostValues *out);

/* ===== cost_print.c ===== */

/* --emit=cost and --emit=cost-json. bind: values to show (NULL: none);
 * both print every kernel's formulas, and values where all are bound. */
void ir_cost_print_text(FILE *out, IrKernelCost *const *cs, int n, const IrCostBind *bind);
void ir_cost_print_json(FILE *out, IrKernelCost *const *cs, int n, const IrCostBind *bind);

/* ===== predict.c: device profiles and prediction (pure computation) ===== */

/* What a device does per second; the roofline inputs. */
typedef struct IrDeviceProfile {
    char device[128];      /* the device name it was measured on */
    double bytes_per_s;    /* buffer memory bandwidth */
    double flops_per_s;    /* float operations */
    double intops_per_s;   /* integer operations */
    double accesses_per_s; /* element loads and stores (any address) */
    /* Those of elementwise maps, which stream consecutive elements (a
     * map's scalar variant on lavapipe: about twice the rate of the
     * gathers accesses_per_s is measured on); 0: accesses_per_s. The
     * runtime charges a map's accesses at this rate. */
    double stream_accesses_per_s;
    double checked_per_s;  /* bounds checks, on top of their accesses */
    double dispatch_s;     /* fixed cost of one dispatch */
    double barrier_s;      /* fixed cost of one barrier between dispatches */
    double group_s;        /* per workgroup of thread code and maps */
    /* Per library class (IR_LIB_NONE: 1, 0 and 0): its roofline work takes
     * slowdown times as long, plus fixed_s per stage and group_s per
     * workgroup its dispatches launch. Only the row classes measure a
     * group figure: a scan of rows runs one group per row and pass, and
     * its cost grows with the rows even when they are short. */
    double lib_slowdown[IR_LIB_N];
    double lib_fixed_s[IR_LIB_N];
    double lib_group_s[IR_LIB_N];
    /* Per library class, what one 16-byte access of its vec4 variant
     * costs in element accesses: 1 where a vector access costs a scalar
     * one (the default; a GPU's coalesced load), 2-3 on lavapipe, whose
     * lane loop fetches four components for about the price of two or
     * three loads. Such a stage's accesses are charged accesses / 4 *
     * lib_vec4_access. The class's slowdown is fitted on its vec4 variant,
     * so this is what sets the price of its scalar one. IR_LIB_NONE
     * (elementwise map4) keeps 1: maps are priced by the access rate and
     * the bandwidth, which the vec4 map of calibration measures. */
    double lib_vec4_access[IR_LIB_N];
    int calibrated;        /* 0: the conservative default */
} IrDeviceProfile;

/* A deliberately slow device (a CPU rasteriser's order of magnitude), so an
 * uncalibrated prediction errs long rather than short. */
void ir_profile_default(IrDeviceProfile *p);
/* The text form of a profile: `key value` lines (runtime/profile.c reads
 * and writes the files). 0, or -1 when a figure is missing, non-positive
 * or not finite (*p is then untouched). */
int ir_profile_parse(IrDeviceProfile *p, const char *text);

/* Roofline bound of one stage: max(flops/flop rate + intops/int rate +
 * accesses/access rate + checked/check rate, bytes/bandwidth) *
 * lib_slowdown + lib_fixed_s (of the stage's library class), plus
 * groups * group_s (thread code and maps) or groups * lib_group_s (a
 * library class), plus
 * dispatches * dispatch_s + (dispatches-1) * barrier_s. */
double ir_predict_stage_s(const IrCostValues *v, const IrDeviceProfile *p);
/* A kernel: the roofline work of each stage (stages[0..n), or the total
 * when stages is NULL) plus the overheads of total's dispatches, which
 * count after fusion. */
double ir_predict_kernel_s(const IrCostValues *total, const IrCostValues *stages, int n,
                           const IrDeviceProfile *p);

/* Per-kernel correction learned online: predicted * factor, factor the
 * median of the last IR_CORRECTION_WINDOW measured/predicted ratios (with
 * an even count, the geometric mean of the two middle ones). A median, not
 * a running mean: on a shared machine single runs are 2x off at random
 * (a preempted worker), and a mean weighted toward the newest samples
 * followed them (docs/COST.md, "correction"). */
#define IR_CORRECTION_WINDOW 9
typedef struct IrCorrection {
    double factor;         /* 1 until the first sample */
    int samples;           /* every sample taken; the window holds the last */
    double ratio[IR_CORRECTION_WINDOW]; /* ring: sample i at i % WINDOW */
} IrCorrection;
void ir_correction_init(IrCorrection *c);
double ir_correction_apply(const IrCorrection *c, double predicted_s);
/* predicted_s: the uncorrected roofline figure of the run measured. */
void ir_correction_update(IrCorrection *c, double predicted_s, double measured_s);

/* What calibration measures (the runtime's micro-kernels,
 * runtime/calibrate.c, one per measure) and the samples the fit takes. */
/* measure, name, the library class it fits (IR_LIB_NONE: a rate) */
#define IR_CALIB_MEASURES(X)                                                          \
    X(IR_CALIB_DISPATCH, "dispatch", IR_LIB_NONE)   /* one tiny dispatch: overhead */   \
    X(IR_CALIB_BARRIER, "barrier", IR_LIB_NONE)     /* 8 tiny stages: + 7 barriers */   \
    X(IR_CALIB_BANDWIDTH, "bandwidth", IR_LIB_NONE) /* a large copy: bytes/s */         \
    X(IR_CALIB_FLOPS, "flops", IR_LIB_NONE)         /* fma chains: float ops/s */       \
    X(IR_CALIB_INTOPS, "intops", IR_LIB_NONE)       /* integer chains: int ops/s */     \
    X(IR_CALIB_ACCESS, "access", IR_LIB_NONE)       /* loads from a cached table */     \
    X(IR_CALIB_CHECKED, "checked", IR_LIB_NONE)     /* the same loads, bounds-checked */ \
    X(IR_CALIB_GROUPS, "groups", IR_LIB_NONE)       /* many small workgroups */         \
    X(IR_CALIB_REDUCE, "reduce", IR_LIB_REDUCE)     /* the library classes, each at a */ \
    X(IR_CALIB_REDUCE_ROWS, "reduce_rows", IR_LIB_REDUCE_ROWS) /* small and a large size */ \
    X(IR_CALIB_SCAN, "scan", IR_LIB_SCAN)                                             \
    X(IR_CALIB_SCAN_ROWS, "scan_rows", IR_LIB_SCAN_ROWS)                              \
    X(IR_CALIB_SOFTMAX, "softmax", IR_LIB_SOFTMAX)                                    \
    X(IR_CALIB_TRANSPOSE, "transpose", IR_LIB_TRANSPOSE)                              \
    X(IR_CALIB_MATMUL, "matmul", IR_LIB_MATMUL)
typedef enum {
#define X(e, s, l) e,
    IR_CALIB_MEASURES(X)
#undef X
    IR_CALIB_N
} IrCalibMeasure;
extern const IrLibClass ir_calib_lib[IR_CALIB_N]; /* the class each measure fits */
/* A timed run of the micro-kernel of `what`: its cost values (ir_cost_values
 * at the size run) and the measured seconds (best of several runs). */
/* Where a sample was taken: the measure's main size, its small size
 * (library classes: where the fixed cost shows), or its many-rows run (row
 * classes: where the per-workgroup cost shows). */
/* IR_CALIB_AT_SCALAR: the main size plus one, which its scalar variant
 * runs (measures whose class has vec4 variants: lib_vec4_access). */
typedef enum IrCalibPoint { IR_CALIB_AT_SIZE, IR_CALIB_AT_SMALL, IR_CALIB_AT_MANY_ROWS, IR_CALIB_AT_SCALAR } IrCalibPoint;
typedef struct IrCalibSample {
    IrCalibMeasure what;
    IrCalibPoint at;
    int64_t size;          /* the size run (library classes: small or large) */
    int64_t rows;          /* row classes: the rows run; else 0 */
    IrCostValues cost;     /* .groups: the workgroups it launched */
    double seconds;
} IrCalibSample;
/* lib_vec4_access of a class from its micro-kernel at a small size (t_small: its
 * fixed part), at a large size run by its vec4 variant (t_vec4) and at a
 * size one larger, run by its scalar variant (t_scalar): both large runs
 * move the same elements, so their work beyond the small run is in the
 * ratio of their access costs, 4 / lib_vec4_access. Clamped to [1, 4] (a
 * vector access neither cheaper than one element nor dearer than four);
 * 1 when the times say nothing (non-positive work). */
double ir_calib_vec4_access(double t_small, double t_vec4, double t_scalar);
/* Fits a profile to samples (any order; missing measures keep the default
 * figure). Returns the number of figures set. */
int ir_profile_fit(IrDeviceProfile *p, const char *device, const IrCalibSample *s, int n);

#endif
