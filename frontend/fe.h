/*
 * fe.h — the PX front end: lexer, parser, syntax tree and semantic
 * analysis, over base.h (arenas, diagnostics, the language's vocabulary).
 * One header for the layer; its sections are named after the .c files that
 * implement them. Everything here is internal to the
 * compiler library (libpxc); the public embedding API is include/px.h.
 *
 * Ownership: every AST node, string and diagnostic of a compilation lives in
 * that compilation's Arena and is freed with it (fe_arena_free).
 */
#ifndef PX_FE_H
#define PX_FE_H

#include "../base/base.h"

/* ===== ast.c: syntax tree and the constructors the grammar calls ===== */

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
