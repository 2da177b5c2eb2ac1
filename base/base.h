/*
 * base.h — what every layer of the compiler and runtime shares: arenas and
 * growable vectors, protected calls (internal errors and out of memory
 * unwind to the caller instead of ending the process), source locations
 * and diagnostics, and the language's vocabulary (scalar types, operators,
 * built-ins, primitives, workload classes). Sections are named after the
 * .c files that implement them. The front end's syntax tree is not here:
 * it is fe.h's, and only the front end and lowering see it.
 *
 * Ownership: what a compilation allocates lives in its Arena and is freed
 * with it (fe_arena_free).
 */
#ifndef PX_BASE_H
#define PX_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__GNUC__)
#define FE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define FE_NORETURN __attribute__((noreturn))
#else
#define FE_PRINTF(f, a)
#define FE_NORETURN
#endif

/* ===== base.c: arenas, vectors, protected calls ===== */

typedef struct Arena Arena;

Arena *fe_arena_new(void);                  /* never NULL (fe_oom) */
Arena *fe_arena_try_new(void);              /* NULL when out of memory */
void fe_arena_free(Arena *a);               /* frees everything allocated in a */
void *fe_alloc(Arena *a, size_t n);         /* zeroed, 16-byte aligned; never NULL (fe_oom) */
char *fe_strndup(Arena *a, const char *s, size_t n);
char *fe_strdup(Arena *a, const char *s);
char *fe_sprintf(Arena *a, const char *fmt, ...) FE_PRINTF(2, 3);
char *fe_vsprintf(Arena *a, const char *fmt, va_list ap) FE_PRINTF(2, 0); /* uses up ap, as vsnprintf */

/* A FILE that writes into memory, for printers whose text is wanted as a
 * string: open, print into the FILE, then take the text, closing it. Out of
 * memory unwinds (fe_oom), so the FILE is never NULL. */
typedef struct FeStrOut {
    char *buf;
    size_t len;
    FILE *f;
} FeStrOut;
FILE *fe_strout_open(FeStrOut *o);
char *fe_strout_take(FeStrOut *o);            /* malloc'd: the caller frees it */
char *fe_strout_arena(FeStrOut *o, Arena *a); /* copied into a */

/* Growable array in an arena: `FE_VEC(Expr *) args;` then FE_PUSH(arena, args, e).
 * Growth copies into a fresh arena block; the old block is left to the arena. */
#define FE_VEC(T) struct { T *v; int n, cap; }
#define FE_PUSH(arena, vec, x)                                                  \
    do {                                                                        \
        if ((vec).n == (vec).cap) {                                             \
            int nc_ = (vec).cap ? 2 * (vec).cap : 4;                            \
            void *nv_ = fe_alloc((arena), (size_t)nc_ * sizeof *(vec).v);       \
            if ((vec).n) memcpy(nv_, (vec).v, (size_t)(vec).n * sizeof *(vec).v); \
            (vec).v = nv_;                                                      \
            (vec).cap = nc_;                                                    \
        }                                                                       \
        (vec).v[(vec).n++] = (x);                                               \
    } while (0)

/* Protected calls (as Lua's lua_pcall): a library is a guest in its host's
 * process, so an internal compiler error or an allocation failure anywhere
 * below fe_protect unwinds (longjmp) to it instead of ending the process.
 * What was allocated in arenas is freed by whoever owns the arena; code
 * that holds other resources (a malloc'd array, an LLVM context) across a
 * call that may fail frees them on its own failure path, or protects
 * itself, cleans up and calls fe_rethrow. Handlers are per thread and
 * nest. fe_die with no handler on the thread calls abort(): an unprotected
 * internal error is a bug of the caller, and abort leaves a core. */
typedef enum FeFailKind {
    FE_FAIL_NONE,          /* fn returned normally */
    FE_FAIL_INTERNAL,      /* fe_die: a compiler bug; never for bad input */
    FE_FAIL_OOM,           /* fe_oom: an allocation failed */
} FeFailKind;
typedef struct FeFail {
    FeFailKind kind;
    char msg[512];         /* "internal compiler error: ..." or "out of memory ..." */
} FeFail;
/* Runs fn(ud); returns fail->kind (FE_FAIL_NONE when fn returned). */
FeFailKind fe_protect(void (*fn)(void *), void *ud, FeFail *fail);
FE_NORETURN void fe_die(const char *fmt, ...) FE_PRINTF(1, 2);
FE_NORETURN void fe_oom(size_t bytes);        /* bytes: what was asked (0: unknown) */
FE_NORETURN void fe_rethrow(const FeFail *f); /* the same failure, one handler out */
#define fe_unreachable() fe_die("unreachable code reached at %s:%d", __FILE__, __LINE__)
#define FE_ASSERT(c) ((c) ? (void)0 : fe_die("assertion '%s' failed at %s:%d", #c, __FILE__, __LINE__))
/* Fault injection for tests: the n-th arena allocation (fe_alloc or a new
 * arena) this thread makes from now on fails as if malloc had returned
 * NULL (n = 0: off). */
void fe_fail_alloc_after(long n);
/* Fault injection for tests: fe_inject_at(name) is 1 when name equals the
 * string set here (NULL: off; per thread), and the code at that point then
 * takes its real failure path: "verify" (the IR verifier rejects the
 * module) and "spirv" (the SPIR-V module is corrupted before validation).
 * A test forces each kind of failure through the public API this way. */
void fe_inject_failure(const char *name);
int fe_inject_at(const char *name);

/* Decode one UTF-8 code point at s (n bytes left). Returns its length in
 * bytes (1 for an invalid byte, with *cp = 0xFFFD). */
int fe_utf8_decode(const char *s, size_t n, uint32_t *cp);

/* ===== diag.c: the one diagnostics path ===== */

/* A source range on one line. Lines and columns are 1-based; columns and
 * len count characters (code points), not bytes. off is the byte offset of
 * the first character, so a renderer finds the line without rescanning. */
typedef struct Loc {
    int line, col, len;
    int off;
} Loc;

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

typedef struct Diag {
    DiagLevel level;
    Loc loc;
    char *msg;
} Diag;

/* Limits on one compile of untrusted source (docs/LANGUAGE.md, "Limits").
 * Each is checked where the excess can be located, and the error names the
 * limit; every pass after them is linear (or n log n) in the source, so
 * within them a compile is bounded in time and memory. fe_diags_init sets
 * the defaults; a host changes Diags.lim before parsing (PxLimits). */
#define FE_LIMITS(X)                                                                   \
    X(size_t, source_bytes, 16u << 20) /* bytes of one source text */              \
    X(int, kernels, 1024)              /* kernels in one source */                 \
    X(int, statements, 100000)         /* per kernel, at any depth */              \
    X(int, stages, 128)                /* per kernel, after fusion (-O) */         \
    X(int, stage_insts, 4096)          /* IR instructions of one stage, after
                                          optimisation, at any depth */             \
    X(size_t, spirv_bytes, 1u << 20)   /* the generated SPIR-V module */           \
    X(size_t, spirv_stage_bytes, 64u << 10) /* the SPIR-V functions of one stage:
                                          a driver's compile time grows faster
                                          than linearly with a function's size */  \
    X(int, ident_len, 255)             /* bytes of one identifier */               \
    X(int, loop_depth, 32)             /* `for` loops nested in one another */
typedef struct FeLimits {
#define X(t, name, def) t name;
    FE_LIMITS(X)
#undef X
} FeLimits;
void fe_limits_default(FeLimits *l);
/* Fixed, not a setting: the cost analysis tracks index variables in 64-bit
 * words, at most 64 of them (ir/cost.c), so one parallel statement holds at
 * most this many `for` loops. */
enum { FE_MAX_LOOPS_PER_STMT = 4096 };

/* Collects diagnostics for one source text; compilation goes on after an
 * error so one run reports several. werror turns warnings into errors as
 * they are reported. After max_errors errors, further ones are dropped,
 * with the notes that follow them, and `too_many` is set (the parser then
 * stops early). */
typedef struct Diags {
    Arena *arena;
    const char *file;   /* name printed in front of every message */
    const char *src;    /* the source text (not necessarily NUL-terminated) */
    size_t srclen;
    FE_VEC(Diag) v;
    int nerrors, nwarnings;
    int werror;
    int max_errors;     /* 0: default (50) */
    int too_many;
    int dropping;       /* the last error was dropped: so are its notes */
    FeLimits lim;       /* fe_limits_default unless the host changed them */
} Diags;

void fe_diags_init(Diags *d, Arena *a, const char *file, const char *src, size_t len);
void fe_error(Diags *d, Loc loc, const char *fmt, ...) FE_PRINTF(3, 4);
void fe_warning(Diags *d, Loc loc, const char *fmt, ...) FE_PRINTF(3, 4);
void fe_note(Diags *d, Loc loc, const char *fmt, ...) FE_PRINTF(3, 4);
/* `file:line:col: error: msg`, the source line, a caret with ~~~ under the
 * rest of the range. Long lines are shown as a window around the column. */
void fe_diags_print(const Diags *d, FILE *out);
char *fe_diags_render(const Diags *d, Arena *a); /* the same text as one string */
Loc fe_loc_span(Loc a, Loc b);                   /* a..b when on one line, else a */

/* ===== lang.c: the language's vocabulary ===== */


typedef enum { TY_VOID, TY_BOOL, TY_INT, TY_UINT, TY_FLOAT, TY_HALF } ScalarType;
const char *fe_type_name(ScalarType t);

/* Operators of expressions (binary, unary) and of compound assignment. */
#define FE_OPS(X)                                   \
    X(OP_ADD, "+")  X(OP_SUB, "-")  X(OP_MUL, "*")  \
    X(OP_DIV, "/")  X(OP_REM, "%")                  \
    X(OP_SHL, "<<") X(OP_SHR, ">>")                 \
    X(OP_BAND, "&") X(OP_BOR, "|")  X(OP_BXOR, "^") \
    X(OP_EQ, "==")  X(OP_NE, "!=")                  \
    X(OP_LT, "<")   X(OP_LE, "<=")                  \
    X(OP_GT, ">")   X(OP_GE, ">=")                  \
    X(OP_LAND, "&&") X(OP_LOR, "||")                \
    X(OP_NEG, "-")  X(OP_NOT, "!")  X(OP_BNOT, "~") \
    X(OP_ASSIGN, "=")
typedef enum {
#define X(e, s) e,
    FE_OPS(X)
#undef X
} FeOp;
const char *fe_op_name(FeOp op);

/* Built-in functions and conversions: name, arity, and the operand rule
 * (F: float/half; N: any numeric, same type; FI: float/half or int). */
#define FE_BUILTINS(X)                                                          \
    X(BI_SQRT, "sqrt", 1)   /* F */                                             \
    X(BI_RSQRT, "rsqrt", 1) /* F: 1/sqrt(x) */                                  \
    X(BI_EXP, "exp", 1)     /* F */                                             \
    X(BI_EXP2, "exp2", 1)   /* F */                                             \
    X(BI_LOG, "log", 1)     /* F: natural log */                                \
    X(BI_LOG2, "log2", 1)   /* F */                                             \
    X(BI_SIN, "sin", 1)     /* F */                                             \
    X(BI_COS, "cos", 1)     /* F */                                             \
    X(BI_TAN, "tan", 1)     /* F */                                             \
    X(BI_TANH, "tanh", 1)   /* F */                                             \
    X(BI_POW, "pow", 2)     /* F, F */                                          \
    X(BI_ABS, "abs", 1)     /* F or int */                                      \
    X(BI_MIN, "min", 2)     /* N, N */                                          \
    X(BI_MAX, "max", 2)     /* N, N */                                          \
    X(BI_CLAMP, "clamp", 3) /* N, N, N: min(max(x, lo), hi) */                  \
    X(BI_FMA, "fma", 3)     /* F, F, F: a*b+c */                                \
    X(BI_FLOOR, "floor", 1) /* F */                                             \
    X(BI_CEIL, "ceil", 1)   /* F */                                             \
    X(BI_ROUND, "round", 1) /* F: half away from zero */                        \
    X(BI_MIX, "mix", 3)     /* F, F, F: a + (b-a)*t */                          \
    X(BI_SELECT, "select", 3) /* bool, T, T: c ? a : b, both evaluated */       \
    X(BI_FLOATCONV, "float", 1) /* conversion to float */                       \
    X(BI_INTCONV, "int", 1)     /* conversion to int (float: toward zero) */    \
    X(BI_UINTCONV, "uint", 1)   /* conversion to uint (int: keeps the bits) */  \
    X(BI_HALFCONV, "half", 1)   /* conversion to half */
typedef enum {
#define X(e, s, n) e,
    FE_BUILTINS(X)
#undef X
    BI_COUNT
} FeBuiltin;
extern const char *const fe_builtin_names[BI_COUNT];
extern const int fe_builtin_arity[BI_COUNT];
int fe_builtin_lookup(const char *name); /* -1 when not a builtin */

/* The parallel primitives: statement keyword, operand count before the
 * arrow (-1: one or more), and what it computes. */
#define FE_PRIMS(X)                                                             \
    X(PRIM_MATMUL, "PARALLEL_MATMUL", 2)       /* C[M][N] = A[M][K] x B[K][N] */ \
    X(PRIM_MAP, "PARALLEL_MAP", -1)            /* z[i] = expr over inputs' elements */ \
    X(PRIM_ADD, "PARALLEL_ADD", 2)             /* c = a + b elementwise */      \
    X(PRIM_SUB, "PARALLEL_SUB", 2)             /* c = a - b */                  \
    X(PRIM_MUL, "PARALLEL_MUL", 2)             /* c = a * b */                  \
    X(PRIM_DIV, "PARALLEL_DIV", 2)             /* c = a / b */                  \
    X(PRIM_FILL, "PARALLEL_FILL", 0)           /* out[i] = expr (the expr is the operand) */ \
    X(PRIM_COPY, "PARALLEL_COPY", 1)           /* b = a */                      \
    X(PRIM_TRANSPOSE, "PARALLEL_TRANSPOSE", 1) /* b[j][i] = a[i][j] */          \
    X(PRIM_REDUCE, "PARALLEL_REDUCE", 1)       /* SUM|MIN|MAX|PROD over last axis */ \
    X(PRIM_SCAN, "PARALLEL_SCAN", 1)           /* inclusive prefix SUM, last axis */ \
    X(PRIM_SOFTMAX, "PARALLEL_SOFTMAX", 1)     /* stable softmax, last axis */  \
    X(PRIM_FOR, "PARALLEL_FOR", 0)             /* explicit thread code */
typedef enum {
#define X(e, s, n) e,
    FE_PRIMS(X)
#undef X
    PRIM_COUNT
} FePrim;
extern const char *const fe_prim_names[PRIM_COUNT];
extern const int fe_prim_arity[PRIM_COUNT]; /* operands before the arrow; -1: one or more */

#define FE_REDUCE_OPS(X) \
    X(RED_SUM, "SUM") X(RED_MIN, "MIN") X(RED_MAX, "MAX") X(RED_PROD, "PROD")
typedef enum {
#define X(e, s) e,
    FE_REDUCE_OPS(X)
#undef X
} FeReduceOp;
extern const char *const fe_reduce_names[];

#define FE_CLASSES(X)                                                     \
    X(CLASS_NONE, "NONE")               /* not given: derived by analysis */ \
    X(CLASS_REALTIME, "REALTIME")       /* deadline; earliest deadline first */ \
    X(CLASS_INTERACTIVE, "INTERACTIVE") /* short, latency first */          \
    X(CLASS_THROUGHPUT, "THROUGHPUT")   /* streaming, memory-bound */       \
    X(CLASS_BATCH, "BATCH")             /* long, compute-bound, sliceable */
typedef enum {
#define X(e, s) e,
    FE_CLASSES(X)
#undef X
} FeClass;
extern const char *const fe_class_names[];

#endif
