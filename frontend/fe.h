/*
 * fe.h — the PX front end: base utilities, diagnostics, lexer, parser, AST
 * and semantic analysis. One header for the layer; its sections are named
 * after the .c files that implement them. Everything here is internal to the
 * compiler library (libpxc); the public embedding API is include/px.h.
 *
 * Ownership: every AST node, string and diagnostic of a compilation lives in
 * that compilation's Arena and is freed with it (fe_arena_free).
 */
#ifndef PX_FE_H
#define PX_FE_H

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

/* ===== base.c: arena, vectors, internal errors ===== */

typedef struct Arena Arena;

Arena *fe_arena_new(void);
void fe_arena_free(Arena *a);               /* frees everything allocated in a */
void *fe_alloc(Arena *a, size_t n);         /* zeroed, 16-byte aligned; never NULL */
char *fe_strndup(Arena *a, const char *s, size_t n);
char *fe_strdup(Arena *a, const char *s);
char *fe_sprintf(Arena *a, const char *fmt, ...) FE_PRINTF(2, 3);
char *fe_vsprintf(Arena *a, const char *fmt, va_list ap) FE_PRINTF(2, 0); /* uses up ap, as vsnprintf */

/* A FILE that writes into memory, for printers whose text is wanted as a
 * string: open, print into the FILE, then take the text, closing it. Out of
 * memory is fatal (fe_die), so the FILE is never NULL. */
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

/* Internal compiler bugs: message to stderr, exit status 3. Never for bad input. */
FE_NORETURN void fe_die(const char *fmt, ...) FE_PRINTF(1, 2);
#define fe_unreachable() fe_die("unreachable code reached at %s:%d", __FILE__, __LINE__)
#define FE_ASSERT(c) ((c) ? (void)0 : fe_die("assertion '%s' failed at %s:%d", #c, __FILE__, __LINE__))

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

/* ===== ast.c: syntax tree and the constructors the grammar calls ===== */

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

typedef struct Sym Sym;
typedef struct Expr Expr;
typedef struct Stmt Stmt;

typedef enum {
    EX_INT,     /* ival; suffix 'u' sets is_unsigned */
    EX_FLOAT,   /* fval; suffix 'h' sets is_half */
    EX_NAME,    /* name */
    EX_UNARY,   /* op a */
    EX_BINARY,  /* a op b */
    EX_TERNARY, /* a ? b : c */
    EX_INDEX,   /* name[args...] */
    EX_CALL,    /* name(args...) */
} ExprKind;

struct Expr {
    ExprKind kind;
    Loc loc;        /* the whole expression's range where it fits on a line */
    Loc oploc;      /* the operator token (binary/unary/ternary) */
    FeOp op;
    Expr *a, *b, *c;
    FE_VEC(Expr *) args;
    const char *name;
    uint64_t ival;
    double fval;
    int is_unsigned, is_half;
    int depth;      /* tree height (1 for a leaf); the parser keeps it <= FE_MAX_NEST */
    /* --- filled by sema --- */
    ScalarType type; /* TY_VOID until checked */
    Sym *sym;        /* EX_NAME, EX_INDEX */
    int builtin;     /* EX_CALL: FeBuiltin */
};

/* Extents of a buffer dimension as written: a literal or a size symbol. */
typedef struct DimSpec {
    int is_sym;
    uint64_t value;
    const char *name;
    Loc loc;
} DimSpec;

typedef struct TypeSpec {
    ScalarType elem;
    int is_buffer;
    int unranked;       /* T[] */
    int rank;           /* when !unranked */
    DimSpec dims[4];
    Loc loc;
} TypeSpec;

typedef struct Param {
    const char *name;
    TypeSpec type;
    Loc loc;            /* the name */
    int implicit;       /* implicitly declared float[] (warning given) */
    Sym *sym;           /* filled by sema */
} Param;

/* One `lo..hi` range of PARALLEL_FOR or for. */
typedef struct Range {
    const char *var;
    Loc varloc;
    Expr *lo, *hi;
    Sym *sym;           /* the index variable, filled by sema */
} Range;

typedef enum {
    /* thread code */
    ST_LET,     /* let name = a */
    ST_VAR,     /* var name = a */
    ST_ASSIGN,  /* target op= a: target is EX_NAME or EX_INDEX; op OP_ASSIGN or OP_ADD.. */
    ST_IF,      /* if a { body } else { els }; else-if is an els holding one ST_IF */
    ST_FOR,     /* for ranges.v[0] { body } */
    /* parallel statements of GPU_THREAD_CODE */
    ST_PARALLEL,
} StmtKind;

typedef FE_VEC(Stmt *) StmtList;

typedef struct Operand {
    const char *name;
    Loc loc;
    Sym *sym;           /* filled by sema */
} Operand;

struct Stmt {
    StmtKind kind;
    Loc loc;            /* the statement's first token (or keyword) */
    /* thread code */
    const char *name;   /* let/var */
    Loc nameloc;        /* let/var: the name */
    Expr *target;
    FeOp op;
    Expr *a;
    StmtList body, els;
    int has_else;
    /* parallel statements */
    FePrim prim;
    FeReduceOp rop;     /* REDUCE/SCAN */
    FE_VEC(Operand) in; /* operands before the arrow */
    Operand out;        /* after the arrow (not PRIM_FOR) */
    /* `a` is the MAP element expression or the FILL value */
    FE_VEC(Range) ranges; /* PRIM_FOR: up to 3; ST_FOR: exactly 1 */
    Sym *sym;           /* let/var: the local, filled by sema */
    int depth;          /* statement nesting height (1: no nested block); <= FE_MAX_NEST */
};

typedef struct Kernel {
    const char *name;
    Loc loc;
    FE_VEC(Param) params;
    FeClass cls;
    Loc clsloc;
    uint64_t deadline_ns; /* 0: none */
    Loc deadlineloc;
    StmtList body;
    Loc endloc;
    struct Scope *scope;  /* sema: the kernel's names */
    struct FeShapes *shapes; /* sema: extents and size symbols */
} Kernel;

typedef struct Program {
    FE_VEC(Kernel *) kernels;
} Program;

/* Constructors: each grammar action is one call to one of these. */
Expr *fe_int_lit(Arena *a, Loc loc, uint64_t v, int is_unsigned);
Expr *fe_float_lit(Arena *a, Loc loc, double v, int is_half);
Expr *fe_name(Arena *a, Loc loc, const char *name);
Expr *fe_unary(Arena *a, Loc oploc, FeOp op, Expr *x);
Expr *fe_binary(Arena *a, Loc oploc, FeOp op, Expr *l, Expr *r);
Expr *fe_ternary(Arena *a, Loc qloc, Expr *c, Expr *t, Expr *f);
Expr *fe_index(Arena *a, Expr *base, Expr *idx); /* base: EX_NAME or EX_INDEX; appends */
Expr *fe_call(Arena *a, Expr *callee, Expr *firstarg); /* callee: EX_NAME */
Expr *fe_call_arg(Arena *a, Expr *call, Expr *arg);
Expr *fe_paren(Arena *a, Loc loc, Expr *e); /* `( e )`: widens e->loc, no node */

/* Nesting limit of the syntax: brackets and blocks open at once (counted by
 * the lexer), expression tree height and statement nesting (an `else if`
 * counts as one level). Deeper input is a clean error, so every recursive
 * walker after the parser is bounded by FE_MAX_NEST levels of statements
 * and FE_MAX_NEST levels of expression. */
enum { FE_MAX_NEST = 256 };

/* What the grammar's statement and kernel constructors share: where nodes
 * go and the kernel being parsed. The parser's state embeds one. The
 * constructors check what the grammar alone cannot (operand counts, at
 * most 3 PARALLEL_FOR ranges, up to 4 dims, order of kernel header lines,
 * statements allowed where they appear, nesting limits), so sema may rely
 * on: in.n matches FE_PRIMS' count (MAP: >= 1), MAP has `a`, FILL has `a`
 * and no inputs, PRIM_FOR has 1..3 ranges, ST_FOR exactly 1, TypeSpec.rank
 * <= 4, every extent literal >= 1, kernels' bodies hold only ST_PARALLEL
 * and PARALLEL_FOR bodies hold no ST_PARALLEL. */
typedef struct FeBuild {
    Arena *arena;
    Diags *d;
    Program *prog;
    Kernel *k;          /* the open kernel (GPU_KERNEL seen, GPU_END not yet), or NULL */
    int in_code;        /* k's GPU_THREAD_CODE: seen (or implied after an error) */
    int deep_reported;  /* a nesting-limit error was given; later ones are dropped */
} FeBuild;

void fe_build_init(FeBuild *b, Arena *a, Diags *d);
void fe_nest_error(FeBuild *b, Loc loc, const char *what); /* once per parse */

TypeSpec *fe_type_scalar(FeBuild *b, Loc loc, ScalarType t);
TypeSpec *fe_type_unranked(FeBuild *b, TypeSpec *t, Loc loc);          /* T[] */
TypeSpec *fe_type_dim(FeBuild *b, TypeSpec *t, Loc loc, uint64_t v, const char *sym); /* T[v] or T[sym] */

void fe_kernel_begin(FeBuild *b, Loc kwloc, Loc nameloc, const char *name);
void fe_param_add(FeBuild *b, Loc nameloc, const char *name, TypeSpec *t);
void fe_kernel_class(FeBuild *b, Loc loc, FeClass c);
void fe_kernel_deadline(FeBuild *b, Loc loc, double ns);
void fe_kernel_code(FeBuild *b, Loc loc);   /* GPU_THREAD_CODE: */
void fe_kernel_stmt(FeBuild *b, Stmt *s);   /* a statement of the open kernel's body */
void fe_kernel_end(FeBuild *b, Loc loc);    /* GPU_END */
void fe_program_finish(FeBuild *b, Loc eofloc); /* end of input: unclosed kernel, empty file */

Range *fe_range(FeBuild *b, Loc varloc, const char *var, Expr *lo, Expr *hi);
void fe_range_word(FeBuild *b, Loc loc, const char *word); /* a lower-case `in`; other words are errors */
StmtList *fe_block_new(FeBuild *b);
StmtList *fe_block_add(FeBuild *b, StmtList *l, Stmt *s);
Stmt *fe_stmt_let(FeBuild *b, Loc kwloc, Loc nameloc, const char *name, Expr *e, int is_var);
Stmt *fe_stmt_assign(FeBuild *b, Expr *target, FeOp op, Expr *e);
/* if cond { then } [else { els } | else elif] */
Stmt *fe_stmt_if(FeBuild *b, Loc kwloc, Expr *cond, StmtList *then, StmtList *els, Stmt *elif);
Stmt *fe_stmt_for(FeBuild *b, Loc kwloc, Range *r, StmtList *body);
Stmt *fe_stmt_prim(FeBuild *b, Loc kwloc, FePrim p, FeReduceOp rop); /* operands follow */
Stmt *fe_stmt_operand(FeBuild *b, Stmt *s, Loc loc, const char *name);
/* `→ out` and, for PARALLEL_MAP, `: e` (NULL when absent); checks the counts */
Stmt *fe_stmt_output(FeBuild *b, Stmt *s, Loc loc, const char *name, Expr *e);
Stmt *fe_stmt_fill(FeBuild *b, Loc kwloc, Expr *e, Loc outloc, const char *out);
Stmt *fe_stmt_pfor(FeBuild *b, Loc kwloc, Range *r);
Stmt *fe_stmt_pfor_range(FeBuild *b, Stmt *s, Range *r);
Stmt *fe_stmt_pfor_body(FeBuild *b, Stmt *s, StmtList *body);

/* ===== lex.c (grammar/px.re) and parse.c (grammar/px.y) ===== */

/* Parse a whole source text into a Program. Syntax errors go to d; the
 * parser recovers at statement boundaries and goes on. Never crashes,
 * whatever the bytes: invalid UTF-8, NUL bytes, deep nesting (bounded; a
 * too-deep expression is an error, not a stack overflow), huge tokens. */
Program *fe_parse(Arena *a, Diags *d);

/* ===== sema.c: names, types, shapes, size symbols ===== */

typedef enum {
    SYM_SCALAR,   /* scalar GPU_PARAM (input only) */
    SYM_BUFFER,   /* buffer GPU_PARAM, declared or implicit */
    SYM_SIZE,     /* size symbol: uint */
    SYM_LET,      /* immutable local */
    SYM_VAR,      /* mutable local */
    SYM_INDEX,    /* PARALLEL_FOR / for index variable */
    SYM_ELEM,     /* inside a MAP expression: an input's element */
} SymKind;

struct Sym {
    SymKind kind;
    const char *name;
    ScalarType type;   /* scalar, local and index type; element type of buffers */
    Loc loc;           /* where declared (or first used, when implicit) */
    int id;            /* per-kind index in declaration order (params: param index) */
    /* buffers */
    int rank;          /* -1 while unknown */
    int ext[4];        /* extent ids, see FeShapes; SYM_SIZE: ext[0] is the
                          symbol's own extent */
    int flex;          /* rank never fixed by use: elementwise only, any rank at launch */
    int read, written; /* used as input / output somewhere */
    Param *param;
    Sym *elem_of;      /* SYM_ELEM: the buffer */
    Expr *bound_value; /* SYM_LET whose value is a loop-bound expression, else NULL */
};

/* Extents: a union-find over every buffer dimension. A class holds at most
 * one literal value; its representative is the literal if any, else the
 * first user-named size symbol, else an implicit one named `buf.k`. */
typedef struct FeExtent {
    int parent;
    int64_t value;     /* >= 0: literal extent; -1: symbolic */
    const char *name;  /* symbol name (user or implicit `x.0`) */
    int implicit;
    Loc loc;
} FeExtent;

typedef struct FeShapes {
    FE_VEC(FeExtent) ext;
} FeShapes;

int fe_extent_find(FeShapes *s, int e);

/* A lexical scope: the kernel's (params and size symbols, in declaration
 * order, implicit buffers appended as they are declared), a MAP
 * expression's element names, a PARALLEL_FOR/for's index variables, or a
 * block's locals. Lookups walk to the parent. */
typedef struct Scope {
    struct Scope *parent;
    FE_VEC(Sym *) syms;
    int *tab;          /* sema's name index once syms grows (sema.c); NULL before */
    size_t cap;
} Scope;

/* Check every kernel: fills Expr.type/sym, Param.sym, Kernel.scope/shapes.
 * Returns the number of errors reported (d->nerrors grows). */
int fe_check(Arena *a, Diags *d, Program *p);

#endif
