/* sema.c — semantic analysis: names and scopes, types (with Go-style
 * untyped literals), buffer ranks and extents, thread-code rules.
 *
 * Per kernel, in this order:
 *  1. the header: params, size symbols (from the extents of GPU_PARAM
 *     types); class/deadline rules are checked by the parser (ast.c);
 *  2. the statements in source order: operand names (implicit float[]
 *     declarations), element types, expressions, thread code; ranks are
 *     gathered in a union-find over buffers ("shape groups": buffers that an
 *     elementwise statement, COPY, SCAN or SOFTMAX says have one shape) and
 *     every extent equation is recorded as a ShapeCons;
 *  3. ranks are fixed (a group with no rank from any use is flexible);
 *  4. extents are created and the recorded equations are unified in source
 *     order (FeShapes), strictly for declared extents.
 * Every error goes through fe_error with the location of the offending
 * token or subexpression; an expression already in error has type T_ERR and
 * produces no further messages (no cascades).
 *
 * Invariants for ir/lower.c after fe_check returned 0: every checked Expr
 * has a type other than TY_VOID; Expr.sym is set for EX_NAME and EX_INDEX;
 * Expr.builtin for EX_CALL; every buffer Sym has rank 1..4 and ext[0..rank)
 * valid extent ids; Sym.param points into Kernel.params (refreshed after
 * implicit params were appended). */
#include "fe.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

/* ===== names ===== */

static const char *const sym_kind_desc[] = {
    [SYM_SCALAR] = "scalar parameter",
    [SYM_BUFFER] = "buffer",
    [SYM_SIZE] = "size symbol",
    [SYM_LET] = "let local",
    [SYM_VAR] = "var local",
    [SYM_INDEX] = "index variable",
    [SYM_ELEM] = "element name",
};

/* ===== the checker's type lattice ===== */

/* ScalarTypes, plus untyped literal kinds and the poison type. An untyped
 * subexpression keeps Expr.type == TY_VOID until resolve() gives it the
 * type its context needs. */
typedef enum {
    T_UNTYPED_INT = 16, /* unsuffixed integer literal (or an expression of them) */
    T_UNTYPED_FLOAT,    /* unsuffixed float literal (...) */
    T_UNTYPED_BITS,     /* untyped integers under ~ & | ^ << >>: int or uint only */
    T_ERR,              /* already reported */
} TyExtra;
typedef int Ty;

static int is_untyped(Ty t) { return t == T_UNTYPED_INT || t == T_UNTYPED_FLOAT || t == T_UNTYPED_BITS; }
static int is_numeric(Ty t) { return t == TY_INT || t == TY_UINT || t == TY_FLOAT || t == TY_HALF || is_untyped(t); }
static int is_integer(Ty t) { return t == TY_INT || t == TY_UINT || t == T_UNTYPED_INT || t == T_UNTYPED_BITS; }
static int is_floating(Ty t) { return t == TY_FLOAT || t == TY_HALF || t == T_UNTYPED_FLOAT; }

static const char *tydesc(Ty t)
{
    if (t == T_UNTYPED_INT) return "an integer literal";
    if (t == T_UNTYPED_FLOAT) return "a float literal";
    if (t == T_UNTYPED_BITS) return "an integer expression";
    return fe_type_name((ScalarType)t);
}

/* ===== per-kernel state ===== */

/* One per buffer param (indexed by param index): the shape-group union-find. */
typedef struct BufInfo {
    int parent;
    int rank;          /* group root: -1 while unknown */
    int fixed;         /* group root: never flexible (REDUCE/SCAN/SOFTMAX input) */
    int flex;          /* group root: rank fixed by no use (set at the end) */
    const char *why;   /* group root: how its rank became known */
} BufInfo;

typedef enum { SC_SAME, SC_MATMUL, SC_TRANSPOSE, SC_REDUCE, SC_RANK12 } ShapeConsKind;

/* An extent equation, checked after ranks are fixed. SC_SAME: b has a's
 * shape; SC_MATMUL: a x b -> c; SC_TRANSPOSE: b = a^T; SC_REDUCE: c = rows
 * of a; SC_RANK12: a (REDUCE/SCAN/SOFTMAX input) must be 1-D or 2-D. */
typedef struct ShapeCons {
    ShapeConsKind kind;
    FePrim prim;
    Sym *a, *b, *c;
    Loc loc;
} ShapeCons;

typedef enum { CTX_THREAD, CTX_MAP, CTX_FILL, CTX_BOUND } ExprCtx;

typedef struct Sema {
    Arena *arena;
    Diags *d;
    Kernel *k;
    Scope *kscope;
    FeShapes *sh;
    FE_VEC(BufInfo) buf;
    FE_VEC(ShapeCons) cons;
    int nid[SYM_ELEM + 1];
    ExprCtx ctx;
    FePrim prim;       /* the statement being checked (messages) */
} Sema;

/* ===== helpers: scopes, text ===== */

/* 'int' for a type, "an integer literal" for an untyped kind */
static const char *tyq(Sema *S, Ty t)
{
    if (is_untyped(t) || t == T_ERR) return tydesc(t);
    return fe_sprintf(S->arena, "'%s'", tydesc(t));
}

static Scope *scope_new(Sema *S, Scope *parent)
{
    Scope *s = fe_alloc(S->arena, sizeof *s);
    s->parent = parent;
    return s;
}

static size_t name_hash(const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (; *name; name++) h = (h ^ (unsigned char)*name) * 1099511628211ull;
    return (size_t)h;
}

/* A scope of more than SCOPE_LINEAR names keeps an open-addressing index
 * (tab: sym index + 1, 0 empty; at most half full), so declaring and
 * looking up n names costs O(n), not O(n^2): a kernel may declare 100,000
 * parameters or one block 100,000 locals (docs/LANGUAGE.md, "Limits"). */
enum { SCOPE_LINEAR = 8 };

static void scope_index(Arena *a, Scope *s, int i)
{
    size_t m = s->cap - 1, h = name_hash(s->syms.v[i]->name) & m;
    while (s->tab[h]) h = (h + 1) & m;
    s->tab[h] = i + 1;
}

static void scope_added(Arena *a, Scope *s)
{
    if (s->syms.n <= SCOPE_LINEAR) return;
    if (2 * (size_t)s->syms.n <= s->cap) {
        scope_index(a, s, s->syms.n - 1);
        return;
    }
    size_t cap = 64;
    while (cap < 4 * (size_t)s->syms.n) cap *= 2;
    s->tab = fe_alloc(a, cap * sizeof *s->tab);
    s->cap = cap;
    for (int i = 0; i < s->syms.n; i++) scope_index(a, s, i);
}

/* The first symbol of that name declared in s (declaration order decides
 * between duplicates, as the linear search did). */
static Sym *scope_find_local(Scope *s, const char *name)
{
    if (!s->cap) {
        for (int i = 0; i < s->syms.n; i++)
            if (strcmp(s->syms.v[i]->name, name) == 0) return s->syms.v[i];
        return NULL;
    }
    Sym *best = NULL;
    int besti = 0;
    size_t m = s->cap - 1;
    for (size_t h = name_hash(name) & m; s->tab[h]; h = (h + 1) & m) {
        int i = s->tab[h] - 1;
        if (strcmp(s->syms.v[i]->name, name) == 0 && (!best || i < besti)) best = s->syms.v[i], besti = i;
    }
    return best;
}

static Sym *lookup(Scope *s, const char *name)
{
    for (; s; s = s->parent) {
        Sym *r = scope_find_local(s, name);
        if (r) return r;
    }
    return NULL;
}

static Sym *sym_new(Sema *S, Scope *sc, SymKind kind, const char *name, ScalarType t, Loc loc)
{
    Sym *s = fe_alloc(S->arena, sizeof *s);
    s->kind = kind;
    s->name = name;
    s->type = t;
    s->loc = loc;
    s->rank = -1;
    s->id = S->nid[kind]++;
    if (sc) {
        FE_PUSH(S->arena, sc->syms, s);
        scope_added(S->arena, sc);
    }
    return s;
}

/* The source text of a one-line range, or NULL (too long, or no source). */
static const char *src_text(Sema *S, Loc l)
{
    const Diags *d = S->d;
    if (!d->src || l.line <= 0 || l.len <= 0 || l.len > 32 || (size_t)l.off >= d->srclen) return NULL;
    size_t i = (size_t)l.off;
    for (int c = 0; c < l.len && i < d->srclen; c++) {
        uint32_t cp;
        int n = fe_utf8_decode(d->src + i, d->srclen - i, &cp);
        if (cp == '\n' || cp == '\r') return NULL;
        i += (size_t)n;
    }
    return fe_strndup(S->arena, d->src + l.off, i - (size_t)l.off);
}

/* `float(x)` for the operand e, or `float(...)` when its text is unknown. */
static const char *conv_hint(Sema *S, ScalarType to, Expr *e)
{
    const char *t = e ? src_text(S, e->loc) : NULL;
    /* `float(a + b)` for the operand `(a + b)`: the call has parentheses */
    size_t n = t ? strlen(t) : 0;
    if (n >= 2 && t[0] == '(' && t[n - 1] == ')') {
        int depth = 0;
        size_t i = 0;
        for (; i < n; i++) {
            depth += t[i] == '(' ? 1 : t[i] == ')' ? -1 : 0;
            if (depth == 0) break;
        }
        if (i == n - 1) t = fe_strndup(S->arena, t + 1, n - 2);
    }
    return fe_sprintf(S->arena, "%s(%s)", fe_type_name(to), t ? t : "...");
}

static int edit_distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 40 || lb > 40) return 99;
    int row[41];
    for (int j = 0; j <= lb; j++) row[j] = j;
    for (int i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int cur = row[j];
            int best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

/* A close name for "did you mean": the nearest within distance 1 (names of
 * 3 or 4 characters) or 2 (longer names); none for shorter names. */
static const char *suggest(Scope *sc, const char *name, int builtins)
{
    const char *best = NULL;
    size_t len = strlen(name);
    int bd = len <= 2 ? 0 : len <= 4 ? 2 : 3; /* one-letter names are too close to everything */
    for (Scope *s = sc; s; s = s->parent)
        for (int i = 0; i < s->syms.n; i++) {
            int dd = edit_distance(name, s->syms.v[i]->name);
            if (dd < bd) { bd = dd; best = s->syms.v[i]->name; }
        }
    if (builtins)
        for (int i = 0; i < BI_COUNT; i++) {
            int dd = edit_distance(name, fe_builtin_names[i]);
            if (dd < bd) { bd = dd; best = fe_builtin_names[i]; }
        }
    return best;
}

static void undeclared(Sema *S, Loc loc, Scope *sc, const char *name)
{
    const char *s = suggest(sc, name, 0);
    if (s) fe_error(S->d, loc, "use of undeclared identifier '%s'; did you mean '%s'?", name, s);
    else fe_error(S->d, loc, "use of undeclared identifier '%s'", name);
}

/* ===== untyped literals ===== */

static void lit_range(Sema *S, Expr *e, Loc loc, ScalarType t, int negated)
{
    if (e->kind == EX_INT) {
        uint64_t v = e->ival;
        if (t == TY_INT && v > (negated ? 2147483648u : 2147483647u))
            fe_error(S->d, loc, "integer literal %s%llu does not fit 'int'", negated ? "-" : "",
                     (unsigned long long)v);
        else if (t == TY_UINT && negated && v != 0)
            fe_error(S->d, loc, "integer literal -%llu does not fit 'uint'", (unsigned long long)v);
        else if (t == TY_HALF && v > 65504)
            fe_error(S->d, loc, "integer literal %llu does not fit 'half' (largest 65504)", (unsigned long long)v);
    } else if (e->kind == EX_FLOAT) {
        double lim = t == TY_HALF ? 65504.0 : FLT_MAX;
        if (fabs(e->fval) > lim * (1 + 1e-7))
            fe_error(S->d, loc, "float literal does not fit '%s'", fe_type_name(t));
    }
}

/* Give the untyped subtree e the type t (nodes with a type already are
 * left alone: they were typed when checked). */
static void resolve(Sema *S, Expr *e, ScalarType t)
{
    if (!e || e->type != TY_VOID) return;
    e->type = t;
    switch (e->kind) {
    case EX_INT:
    case EX_FLOAT: lit_range(S, e, e->loc, t, 0); break;
    case EX_UNARY:
        if (e->op == OP_NEG && e->a && (e->a->kind == EX_INT || e->a->kind == EX_FLOAT) && e->a->type == TY_VOID) {
            e->a->type = t;
            lit_range(S, e->a, e->loc, t, 1);
        } else {
            FE_ASSERT(e->op != OP_BNOT || t == TY_INT || t == TY_UINT);
            resolve(S, e->a, t);
        }
        break;
    case EX_BINARY:
        /* integer-only operators are T_UNTYPED_BITS, which never becomes
         * float or half (untyped_fits) */
        FE_ASSERT(t == TY_INT || t == TY_UINT ||
                  (e->op != OP_BAND && e->op != OP_BOR && e->op != OP_BXOR && e->op != OP_SHL && e->op != OP_SHR));
        resolve(S, e->a, t);
        if (e->op != OP_SHL && e->op != OP_SHR) resolve(S, e->b, t);
        break;
    case EX_TERNARY:
        resolve(S, e->b, t);
        resolve(S, e->c, t);
        break;
    case EX_CALL:
        /* only min/max/clamp/abs/select stay untyped */
        for (int i = e->builtin == BI_SELECT ? 1 : 0; i < e->args.n; i++) resolve(S, e->args.v[i], t);
        break;
    default: break;
    }
}

/* An untyped value with no context: int or float. */
static Ty finish(Sema *S, Expr *e, Ty t)
{
    if (t == T_UNTYPED_INT || t == T_UNTYPED_BITS) { resolve(S, e, TY_INT); return TY_INT; }
    if (t == T_UNTYPED_FLOAT) { resolve(S, e, TY_FLOAT); return TY_FLOAT; }
    return t;
}

/* Whether an untyped kind u can become the type t. */
static int untyped_fits(Ty u, Ty t)
{
    if (u == T_UNTYPED_INT) return t == TY_INT || t == TY_UINT || t == TY_FLOAT || t == TY_HALF;
    if (u == T_UNTYPED_BITS) return t == TY_INT || t == TY_UINT;
    return t == TY_FLOAT || t == TY_HALF;
}

/* `integer expression '1 << n'` for an untyped integer-only expression,
 * `float literal '0.5'` for a float one (`'...'` when the text is unknown). */
static const char *untyped_text(Sema *S, Expr *e, Ty u)
{
    const char *t = src_text(S, e->loc);
    const char *what = u == T_UNTYPED_BITS ? "integer expression" : "float literal";
    return fe_sprintf(S->arena, "%s '%s'", what, t ? t : "...");
}

/* The common type of two operands of `what` (an operator or builtin name),
 * resolving an untyped side; T_ERR after reporting a mix. */
static Ty unify2(Sema *S, Loc loc, const char *what, Expr *x, Ty tx, Expr *y, Ty ty)
{
    if (tx == T_ERR || ty == T_ERR) return T_ERR;
    if (tx == ty) return tx;
    if (is_untyped(tx) && is_untyped(ty)) {
        if (tx == T_UNTYPED_FLOAT || ty == T_UNTYPED_FLOAT) {
            if (tx != T_UNTYPED_BITS && ty != T_UNTYPED_BITS) return T_UNTYPED_FLOAT;
            /* `(1 << 2) * 0.5`: the integer-only side cannot become float */
            Expr *be = tx == T_UNTYPED_BITS ? x : y, *fe = tx == T_UNTYPED_BITS ? y : x;
            fe_error(S->d, loc, "cannot mix %s and %s in '%s': write %s", untyped_text(S, be, T_UNTYPED_BITS),
                     untyped_text(S, fe, T_UNTYPED_FLOAT), what, conv_hint(S, TY_FLOAT, be));
            return T_ERR;
        }
        return T_UNTYPED_BITS; /* one side is an integer literal, the other integer-only */
    }
    if (is_untyped(tx) || is_untyped(ty)) {
        Expr *ue = is_untyped(tx) ? x : y, *te = is_untyped(tx) ? y : x;
        Ty u = is_untyped(tx) ? tx : ty, t = is_untyped(tx) ? ty : tx;
        if (untyped_fits(u, t)) {
            resolve(S, ue, (ScalarType)t);
            return t;
        }
        if (t == TY_BOOL)
            fe_error(S->d, loc, "cannot mix 'bool' and %s in '%s'", tydesc(u), what);
        else if (u == T_UNTYPED_BITS) /* float or half: convert the integer side */
            fe_error(S->d, loc, "cannot mix '%s' and %s in '%s': write %s", fe_type_name((ScalarType)t),
                     untyped_text(S, ue, u), what, conv_hint(S, (ScalarType)t, ue));
        else
            fe_error(S->d, loc, "cannot mix '%s' and %s in '%s': write %s", fe_type_name((ScalarType)t),
                     untyped_text(S, ue, u), what, conv_hint(S, TY_FLOAT, te));
        return T_ERR;
    }
    if (tx == TY_BOOL || ty == TY_BOOL)
        fe_error(S->d, loc, "cannot mix '%s' and '%s' in '%s'", fe_type_name((ScalarType)tx), fe_type_name((ScalarType)ty), what);
    else
        fe_error(S->d, loc, "cannot mix '%s' and '%s' in '%s': write %s or %s", fe_type_name((ScalarType)tx),
                 fe_type_name((ScalarType)ty), what, conv_hint(S, (ScalarType)tx, y), conv_hint(S, (ScalarType)ty, x));
    return T_ERR;
}

/* Make e (of checked type t) a value of type want; 0 after an error is
 * reported with the message prefix `what`. */
static int coerce(Sema *S, Expr *e, Ty t, ScalarType want, const char *what)
{
    if (t == T_ERR) return 0;
    if (t == (Ty)want) return 1;
    if (is_untyped(t) && untyped_fits(t, want)) {
        resolve(S, e, want);
        return 1;
    }
    if (t == T_UNTYPED_BITS && (want == TY_FLOAT || want == TY_HALF))
        fe_error(S->d, e->loc, "%s: expected '%s', got %s: write %s", what, fe_type_name(want), tyq(S, t),
                 conv_hint(S, want, e));
    else if (is_untyped(t) || t == TY_BOOL || want == TY_BOOL)
        fe_error(S->d, e->loc, "%s: expected '%s', got %s", what, fe_type_name(want), tyq(S, t));
    else
        fe_error(S->d, e->loc, "%s: expected '%s', got '%s': write %s", what, fe_type_name(want), tydesc(t),
                 conv_hint(S, want, e));
    return 0;
}

/* ===== buffer ranks (shape groups) ===== */

static int bfind(Sema *S, int i)
{
    while (S->buf.v[i].parent != i) {
        S->buf.v[i].parent = S->buf.v[S->buf.v[i].parent].parent;
        i = S->buf.v[i].parent;
    }
    return i;
}

static BufInfo *broot(Sema *S, Sym *b) { return &S->buf.v[bfind(S, b->id)]; }

/* Require rank r of b's group; on a conflict returns 0 and leaves the
 * group's rank and reason in place for the caller's message. */
static int demand_rank(Sema *S, Sym *b, int r, const char *why)
{
    BufInfo *g = broot(S, b);
    if (g->rank < 0) {
        g->rank = r;
        g->why = why;
        return 1;
    }
    return g->rank == r;
}

static const char *type_text(Sema *S, const TypeSpec *t)
{
    const char *s = fe_type_name(t->elem);
    if (!t->is_buffer) return s;
    if (t->unranked) return fe_sprintf(S->arena, "%s[]", s);
    for (int i = 0; i < t->rank && i < 4; i++) {
        if (t->dims[i].is_sym) s = fe_sprintf(S->arena, "%s[%s]", s, t->dims[i].name);
        else s = fe_sprintf(S->arena, "%s[%llu]", s, (unsigned long long)t->dims[i].value);
    }
    return s;
}

static int is_declared_shape(Sym *b) { return b->param && !b->param->type.unranked; }

/* Put a and b in one shape group (elementwise statement); reports a rank
 * conflict at loc. */
static void same_shape(Sema *S, Sym *a, Sym *b, Loc loc)
{
    int ra = bfind(S, a->id), rb = bfind(S, b->id);
    if (ra == rb) return;
    BufInfo *ga = &S->buf.v[ra], *gb = &S->buf.v[rb];
    if (ga->rank >= 0 && gb->rank >= 0 && ga->rank != gb->rank) {
        if (is_declared_shape(a) && is_declared_shape(b))
            fe_error(S->d, loc, "%s: '%s' is %s but '%s' is %s; operands of an elementwise primitive need one shape",
                     fe_prim_names[S->prim], b->name, type_text(S, &b->param->type), a->name, type_text(S, &a->param->type));
        else
            fe_error(S->d, loc, "%s: '%s' is %d-D but '%s' is %d-D (%s; %s); operands of an elementwise primitive need one shape",
                     fe_prim_names[S->prim], b->name, gb->rank, a->name, ga->rank, gb->why, ga->why);
        return;
    }
    /* the root keeps a known rank */
    if (ga->rank < 0) { BufInfo *t = ga; ga = gb; gb = t; int ti = ra; ra = rb; rb = ti; }
    gb->parent = ra;
    ga->fixed |= gb->fixed;
}

static void need_rank(Sema *S, Sym *b, int r, Loc loc, const char *role)
{
    const char *why = fe_sprintf(S->arena, "'%s' is %s at line %d", b->name, role, loc.line);
    if (!demand_rank(S, b, r, why)) {
        BufInfo *g = broot(S, b);
        fe_error(S->d, loc, "%s: '%s' must be %d-D but it is %d-D (%s)", fe_prim_names[S->prim], b->name, r, g->rank, g->why);
    }
}

static void add_cons(Sema *S, ShapeConsKind k, Sym *a, Sym *b, Sym *c, Loc loc)
{
    ShapeCons sc = {k, S->prim, a, b, c, loc};
    FE_PUSH(S->arena, S->cons, sc);
}

/* ===== expressions ===== */

static Ty check_expr(Sema *S, Scope *sc, Expr *e);

static Ty set_type(Expr *e, Ty t)
{
    if (t < T_UNTYPED_INT) e->type = (ScalarType)t;
    return t;
}

static Ty check_name(Sema *S, Scope *sc, Expr *e)
{
    Sym *s = lookup(sc, e->name);
    if (!s) {
        undeclared(S, e->loc, sc, e->name);
        return T_ERR;
    }
    e->sym = s;
    switch (s->kind) {
    case SYM_BUFFER:
        if (S->ctx == CTX_MAP)
            fe_error(S->d, e->loc, "'%s' is a buffer but not an input of this PARALLEL_MAP: list it before the arrow",
                     e->name);
        else if (S->ctx == CTX_FILL)
            fe_error(S->d, e->loc, "the PARALLEL_FILL value cannot use the buffer '%s'", e->name);
        else
            fe_error(S->d, e->loc, "buffer '%s' used without an index: write %s[...]", e->name, e->name);
        return T_ERR;
    default:
        s->read = 1;
        if (s->type == TY_VOID) return T_ERR; /* declared from an erroneous value */
        return set_type(e, s->type);
    }
}

/* Indexed buffer access in thread code; is_store: the target of a store. */
static Ty check_index(Sema *S, Scope *sc, Expr *e, int is_store)
{
    if (S->ctx == CTX_MAP) {
        fe_error(S->d, e->loc, "a PARALLEL_MAP expression cannot index buffers: each input name stands for its element");
        return T_ERR;
    }
    if (S->ctx == CTX_FILL) {
        fe_error(S->d, e->loc, "the PARALLEL_FILL value cannot index buffers");
        return T_ERR;
    }
    Sym *s = lookup(sc, e->name);
    if (!s) {
        undeclared(S, e->loc, sc, e->name);
        return T_ERR;
    }
    e->sym = s;
    if (s->kind != SYM_BUFFER) {
        fe_error(S->d, e->loc, "'%s' is a %s, not a buffer; it cannot be indexed", e->name, sym_kind_desc[s->kind]);
        return T_ERR;
    }
    int bad = 0;
    for (int i = 0; i < e->args.n; i++) {
        Expr *x = e->args.v[i];
        Ty t = finish(S, x, check_expr(S, sc, x));
        if (t == T_ERR) { bad = 1; continue; }
        if (t != TY_INT && t != TY_UINT) {
            fe_error(S->d, x->loc, "a buffer index must be int or uint, not '%s'", fe_type_name((ScalarType)t));
            bad = 1;
        }
    }
    int n = e->args.n;
    if (n < 1 || n > 4) {
        fe_error(S->d, e->loc, "'%s' is indexed with %d indices; buffers have 1 to 4 dimensions", e->name, n);
        return T_ERR;
    }
    const char *why = fe_sprintf(S->arena, "'%s' is indexed with %d ind%s at line %d", e->name, n,
                                 n == 1 ? "ex" : "ices", e->loc.line);
    if (!demand_rank(S, s, n, why)) {
        BufInfo *g = broot(S, s);
        fe_error(S->d, e->loc, "'%s' is indexed with %d ind%s but it is %d-D (%s)", e->name, n,
                 n == 1 ? "ex" : "ices", g->rank, g->why);
        return T_ERR;
    }
    if (is_store) s->written = 1;
    else s->read = 1;
    if (bad) return T_ERR;
    return set_type(e, s->type);
}

static Ty check_call(Sema *S, Scope *sc, Expr *e)
{
    int bi = fe_builtin_lookup(e->name);
    if (bi < 0) {
        const char *s = suggest(NULL, e->name, 1);
        if (s) fe_error(S->d, e->loc, "unknown function '%s'; did you mean '%s'?", e->name, s);
        else fe_error(S->d, e->loc, "unknown function '%s'", e->name);
        return T_ERR;
    }
    e->builtin = bi;
    if (e->args.n != fe_builtin_arity[bi]) {
        fe_error(S->d, e->loc, "'%s' takes %d argument%s, not %d", e->name, fe_builtin_arity[bi], fe_builtin_arity[bi] == 1 ? "" : "s",
                 e->args.n);
        return T_ERR;
    }
    Ty t[3];
    int bad = 0;
    for (int i = 0; i < e->args.n; i++) {
        t[i] = check_expr(S, sc, e->args.v[i]);
        if (t[i] == T_ERR) bad = 1;
    }
    if (bad) return T_ERR;
    Expr **a = e->args.v;
    switch (bi) {
    case BI_FLOATCONV:
    case BI_INTCONV:
    case BI_UINTCONV:
    case BI_HALFCONV: {
        ScalarType to = bi == BI_FLOATCONV ? TY_FLOAT : bi == BI_INTCONV ? TY_INT : bi == BI_UINTCONV ? TY_UINT : TY_HALF;
        if (t[0] == TY_BOOL) {
            fe_error(S->d, e->loc, "cannot convert 'bool' to '%s': write select(c, 1, 0)", fe_type_name(to));
            return T_ERR;
        }
        if (is_untyped(t[0])) {
            if (untyped_fits(t[0], to)) resolve(S, a[0], to);
            else finish(S, a[0], t[0]);
        }
        return set_type(e, to);
    }
    case BI_SELECT: {
        if (t[0] != TY_BOOL) {
            fe_error(S->d, a[0]->loc, "the condition of 'select' must be bool, not %s", tyq(S, t[0]));
            return T_ERR;
        }
        return set_type(e, unify2(S, e->loc, "select", a[1], t[1], a[2], t[2]));
    }
    default: break;
    }
    /* one common type for all arguments */
    Ty c = t[0];
    Expr *ce = a[0];
    for (int i = 1; i < e->args.n; i++) {
        Ty n = unify2(S, e->loc, e->name, ce, c, a[i], t[i]);
        if (n == T_ERR) return T_ERR;
        if (!is_untyped(n) || is_untyped(c)) ce = is_untyped(t[i]) ? ce : a[i];
        c = n;
    }
    /* an untyped argument left behind an earlier typed one */
    if (!is_untyped(c))
        for (int i = 0; i < e->args.n; i++) resolve(S, a[i], (ScalarType)c);
    int ok;
    const char *need;
    switch (bi) {
    case BI_MIN:
    case BI_MAX:
    case BI_CLAMP: ok = is_numeric(c); need = "numbers"; break;
    case BI_ABS: ok = is_numeric(c) && c != TY_UINT; need = "float, half or int arguments"; break;
    default: /* F */
        if (c == T_UNTYPED_INT || c == T_UNTYPED_FLOAT) {
            for (int i = 0; i < e->args.n; i++) resolve(S, a[i], TY_FLOAT);
            c = TY_FLOAT;
        } else if (c == T_UNTYPED_BITS) { /* integer-only: it is an int, reported below */
            for (int i = 0; i < e->args.n; i++) finish(S, a[i], c);
            c = TY_INT;
        }
        ok = is_floating(c);
        need = "float or half arguments";
        break;
    }
    if (!ok) {
        if (bi == BI_ABS && c == TY_UINT)
            fe_error(S->d, e->loc, "'abs' needs %s, not 'uint': a uint is never negative", need);
        else if (c == TY_INT || c == TY_UINT)
            fe_error(S->d, e->loc, "'%s' needs %s, not '%s'%s%s%s", e->name, need, tydesc(c),
                     e->args.n == 1 ? ": write " : "", e->args.n == 1 ? e->name : "",
                     e->args.n == 1 ? fe_sprintf(S->arena, "(%s)", conv_hint(S, TY_FLOAT, a[0])) : "");
        else
            fe_error(S->d, e->loc, "'%s' needs %s, not %s", e->name, need, tyq(S, c));
        return T_ERR;
    }
    return set_type(e, c);
}

static Ty check_unary(Sema *S, Scope *sc, Expr *e)
{
    Ty t = check_expr(S, sc, e->a);
    if (t == T_ERR) return T_ERR;
    switch (e->op) {
    case OP_NEG:
        if (!is_numeric(t)) {
            fe_error(S->d, e->oploc, "unary '-' needs a number, not %s", tyq(S, t));
            return T_ERR;
        }
        return set_type(e, t);
    case OP_NOT:
        if (t != TY_BOOL) {
            fe_error(S->d, e->oploc, "'!' needs a bool operand, not %s", tyq(S, t));
            return T_ERR;
        }
        return set_type(e, TY_BOOL);
    case OP_BNOT:
        if (!is_integer(t)) {
            fe_error(S->d, e->oploc, "'~' needs an int or uint operand, not %s", tyq(S, t));
            return T_ERR;
        }
        return set_type(e, is_untyped(t) ? T_UNTYPED_BITS : t);
    default: fe_unreachable();
    }
}

/* The operand rule of binary operator op on the common type t. */
static int op_accepts(FeOp op, Ty t)
{
    switch (op) {
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_REM:
    case OP_LT: case OP_LE: case OP_GT: case OP_GE:
        return is_numeric(t);
    case OP_BAND: case OP_BOR: case OP_BXOR: case OP_SHL: case OP_SHR:
        return is_integer(t);
    case OP_EQ: case OP_NE: return is_numeric(t) || t == TY_BOOL;
    case OP_LAND: case OP_LOR: return t == TY_BOOL;
    default: return 0;
    }
}

static const char *op_need(FeOp op)
{
    switch (op) {
    case OP_BAND: case OP_BOR: case OP_BXOR: case OP_SHL: case OP_SHR: return "int or uint operands";
    case OP_LAND: case OP_LOR: return "bool operands";
    case OP_EQ: case OP_NE: return "numbers or bools";
    default: return "numbers";
    }
}

static void op_reject(Sema *S, Expr *e, Ty t)
{
    const char *hint = "";
    if ((e->op == OP_LAND || e->op == OP_LOR) && is_numeric(t)) hint = ": compare with 0 first, e.g. x != 0";
    fe_error(S->d, e->oploc, "'%s' needs %s, not %s%s", fe_op_name(e->op), op_need(e->op), tyq(S, t), hint);
}

static Ty check_binary(Sema *S, Scope *sc, Expr *e)
{
    Ty ta = check_expr(S, sc, e->a);
    Ty tb = check_expr(S, sc, e->b);
    if (ta == T_ERR || tb == T_ERR) return T_ERR;
    const char *on = fe_op_name(e->op);
    if (e->op == OP_SHL || e->op == OP_SHR) {
        /* the count's type is independent of the shifted value's */
        if (!is_integer(ta)) { op_reject(S, e, ta); return T_ERR; }
        if (!is_integer(tb)) { op_reject(S, e, tb); return T_ERR; }
        finish(S, e->b, tb);
        return set_type(e, is_untyped(ta) ? T_UNTYPED_BITS : ta);
    }
    Ty t = unify2(S, e->oploc, on, e->a, ta, e->b, tb);
    if (t == T_ERR) return T_ERR;
    if (!op_accepts(e->op, t)) { op_reject(S, e, t); return T_ERR; }
    switch (e->op) {
    case OP_EQ: case OP_NE: case OP_LT: case OP_LE: case OP_GT: case OP_GE:
        /* both sides untyped: they default, the result is a bool */
        if (is_untyped(t)) { finish(S, e->a, t); finish(S, e->b, t); }
        return set_type(e, TY_BOOL);
    case OP_BAND: case OP_BOR: case OP_BXOR:
        /* an untyped result may become int or uint, never float or half */
        return set_type(e, is_untyped(t) ? T_UNTYPED_BITS : t);
    default: return set_type(e, t);
    }
}

static Ty check_ternary(Sema *S, Scope *sc, Expr *e)
{
    Ty tc = check_expr(S, sc, e->a);
    Ty tb = check_expr(S, sc, e->b);
    Ty tt = check_expr(S, sc, e->c);
    if (tc == T_ERR || tb == T_ERR || tt == T_ERR) return T_ERR;
    if (tc != TY_BOOL) {
        fe_error(S->d, e->a->loc, "the condition of '?:' must be bool, not %s", tyq(S, tc));
        return T_ERR;
    }
    return set_type(e, unify2(S, e->oploc, "?:", e->b, tb, e->c, tt));
}

static Ty check_expr(Sema *S, Scope *sc, Expr *e)
{
    if (!e) fe_die("sema: missing expression");
    switch (e->kind) {
    case EX_INT:
        if (e->ival > 4294967295u) {
            fe_error(S->d, e->loc, "integer literal %llu is too large (the largest is 4294967295)",
                     (unsigned long long)e->ival);
            return T_ERR;
        }
        if (e->is_unsigned) return set_type(e, TY_UINT);
        return T_UNTYPED_INT;
    case EX_FLOAT:
        if (e->is_half) {
            lit_range(S, e, e->loc, TY_HALF, 0);
            return set_type(e, TY_HALF);
        }
        if (!(fabs(e->fval) <= FLT_MAX)) {
            fe_error(S->d, e->loc, "float literal does not fit 'float'");
            return T_ERR;
        }
        return T_UNTYPED_FLOAT;
    case EX_NAME: return check_name(S, sc, e);
    case EX_INDEX: return check_index(S, sc, e, 0);
    case EX_CALL: return check_call(S, sc, e);
    case EX_UNARY: return check_unary(S, sc, e);
    case EX_BINARY: return check_binary(S, sc, e);
    case EX_TERNARY: return check_ternary(S, sc, e);
    }
    fe_unreachable();
}

/* ===== loop bounds ===== */

/* Whether e is a loop-bound expression (DECISIONS.md): literals, size
 * symbols, int/uint scalar params, lets with a bound value, + - * / % min
 * max. report: say what is not allowed (once). Undeclared names pass here;
 * the type check reports them. */
static int is_bound(Sema *S, Scope *sc, Expr *e, int report)
{
    switch (e->kind) {
    case EX_INT:
    case EX_FLOAT: return 1;
    case EX_NAME: {
        Sym *s = lookup(sc, e->name);
        const char *why = NULL;
        if (!s) return 1;
        switch (s->kind) {
        case SYM_SIZE: return 1;
        case SYM_SCALAR:
            if (s->type == TY_INT || s->type == TY_UINT) return 1;
            why = fe_sprintf(S->arena, "it is a %s parameter", fe_type_name(s->type));
            break;
        case SYM_LET:
            if (s->bound_value) return 1;
            why = "it is a let whose value is not made of literals, size symbols and int/uint params";
            break;
        case SYM_VAR: why = "it is a var the loop body can change"; break;
        case SYM_INDEX: why = "it is an index variable"; break;
        case SYM_BUFFER: why = "it is a buffer"; break;
        case SYM_ELEM: why = "it is an element name"; break;
        }
        if (report) fe_error(S->d, e->loc, "loop bound cannot use '%s': %s", e->name, why);
        return 0;
    }
    case EX_INDEX:
        if (report) fe_error(S->d, e->loc, "loop bound cannot read the buffer '%s'", e->name);
        return 0;
    case EX_UNARY:
        if (e->op == OP_NEG && (e->a->kind == EX_INT)) return 1;
        if (report) fe_error(S->d, e->oploc, "loop bound cannot use unary '%s': only + - * / %% min max", fe_op_name(e->op));
        return 0;
    case EX_BINARY:
        switch (e->op) {
        case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_REM:
            return is_bound(S, sc, e->a, report) && is_bound(S, sc, e->b, report);
        default:
            if (report) fe_error(S->d, e->oploc, "loop bound cannot use '%s': only + - * / %% min max", fe_op_name(e->op));
            return 0;
        }
    case EX_TERNARY:
        if (report) fe_error(S->d, e->oploc, "loop bound cannot use '?:': only + - * / %% min max");
        return 0;
    case EX_CALL:
        if (strcmp(e->name, "min") == 0 || strcmp(e->name, "max") == 0) {
            for (int i = 0; i < e->args.n; i++)
                if (!is_bound(S, sc, e->args.v[i], report)) return 0;
            return 1;
        }
        if (report) fe_error(S->d, e->loc, "loop bound cannot call '%s': only min and max", e->name);
        return 0;
    }
    return 0;
}

/* Checks lo..hi in scope sc; returns the index type or T_ERR. */
static Ty check_range(Sema *S, Scope *sc, Range *r)
{
    ExprCtx save = S->ctx;
    S->ctx = CTX_BOUND;
    int okl = is_bound(S, sc, r->lo, 1);
    int okh = is_bound(S, sc, r->hi, 1);
    Ty tl = okl ? check_expr(S, sc, r->lo) : T_ERR;
    Ty th = okh ? check_expr(S, sc, r->hi) : T_ERR;
    S->ctx = save;
    if (tl == T_ERR || th == T_ERR) return T_ERR;
    Ty t = unify2(S, fe_loc_span(r->lo->loc, r->hi->loc), "..", r->lo, tl, r->hi, th);
    if (t == T_ERR) return T_ERR;
    if (is_untyped(t)) {
        finish(S, r->lo, t);
        t = finish(S, r->hi, t);
    }
    if (t != TY_INT && t != TY_UINT) {
        fe_error(S->d, fe_loc_span(r->lo->loc, r->hi->loc), "loop bounds must be int or uint, not '%s'",
                 fe_type_name((ScalarType)t));
        return T_ERR;
    }
    return t;
}

/* ===== thread code ===== */

/* Declares a local/index name in sc unless it clashes. */
static Sym *declare(Sema *S, Scope *sc, SymKind kind, const char *name, Loc loc, ScalarType t)
{
    Sym *prev = scope_find_local(sc, name);
    if (prev) {
        fe_error(S->d, loc, "'%s' is already declared in this block", name);
        fe_note(S->d, prev->loc, "'%s' was declared here", name);
        return NULL;
    }
    Sym *k = scope_find_local(S->kscope, name);
    if (k) {
        fe_error(S->d, loc, "'%s' is a %s of the kernel and cannot be redeclared", name, sym_kind_desc[k->kind]);
        return NULL;
    }
    return sym_new(S, sc, kind, name, t, loc);
}

static void check_block(Sema *S, Scope *parent, StmtList *l);

static void check_assign(Sema *S, Scope *sc, Stmt *st)
{
    Expr *tg = st->target;
    Ty tt;
    const char *tname = tg->name;
    if (tg->kind == EX_INDEX) {
        tt = check_index(S, sc, tg, 1);
        if (tt != T_ERR && st->op != OP_ASSIGN) tg->sym->read = 1;
    } else if (tg->kind == EX_NAME) {
        Sym *s = lookup(sc, tg->name);
        tt = T_ERR;
        if (!s) undeclared(S, tg->loc, sc, tg->name);
        else {
            tg->sym = s;
            switch (s->kind) {
            case SYM_VAR: tt = s->type == TY_VOID ? T_ERR : set_type(tg, s->type); break;
            case SYM_LET: fe_error(S->d, tg->loc, "cannot assign to '%s': it is declared with let", tg->name); break;
            case SYM_INDEX: fe_error(S->d, tg->loc, "cannot assign to '%s': it is an index variable", tg->name); break;
            case SYM_SCALAR: fe_error(S->d, tg->loc, "cannot assign to '%s': scalar parameters are read-only", tg->name); break;
            case SYM_SIZE: fe_error(S->d, tg->loc, "cannot assign to '%s': it is a size symbol", tg->name); break;
            case SYM_BUFFER:
                fe_error(S->d, tg->loc, "cannot assign to the buffer '%s' as a whole: store to an element, %s[...] = ...",
                         tg->name, tg->name);
                break;
            case SYM_ELEM: fe_unreachable();
            }
        }
    } else {
        fe_error(S->d, tg->loc, "the target of an assignment must be a var or a buffer element");
        tt = T_ERR;
    }
    Ty tv = check_expr(S, sc, st->a);
    if (tt == T_ERR || tv == T_ERR) return;
    if (st->op != OP_ASSIGN) {
        if (!op_accepts(st->op, tt)) {
            fe_error(S->d, st->loc, "'%s=' needs %s, not '%s'", fe_op_name(st->op), op_need(st->op), fe_type_name((ScalarType)tt));
            return;
        }
        if (st->op == OP_SHL || st->op == OP_SHR) {
            if (!is_integer(tv)) {
                fe_error(S->d, st->a->loc, "a shift count must be int or uint, not %s", tyq(S, tv));
                return;
            }
            finish(S, st->a, tv);
            return;
        }
    }
    coerce(S, st->a, tv, (ScalarType)tt, fe_sprintf(S->arena, "cannot assign to '%s'", tname));
}

static void check_tstmt(Sema *S, Scope *sc, Stmt *st)
{
    switch (st->kind) {
    case ST_LET:
    case ST_VAR: {
        Ty t = finish(S, st->a, check_expr(S, sc, st->a));
        ScalarType ty = t == T_ERR ? TY_VOID : (ScalarType)t;
        Sym *s = declare(S, sc, st->kind == ST_LET ? SYM_LET : SYM_VAR, st->name, st->nameloc, ty);
        st->sym = s;
        if (s && st->kind == ST_LET && (ty == TY_INT || ty == TY_UINT) && is_bound(S, sc, st->a, 0))
            s->bound_value = st->a;
        break;
    }
    case ST_ASSIGN: check_assign(S, sc, st); break;
    case ST_IF: {
        Ty t = check_expr(S, sc, st->a);
        if (t != T_ERR && t != TY_BOOL)
            fe_error(S->d, st->a->loc, "an if condition must be bool, not %s%s", tyq(S, t), is_numeric(t) ? ": compare, e.g. x != 0" : "");
        check_block(S, sc, &st->body);
        check_block(S, sc, &st->els);
        break;
    }
    case ST_FOR: {
        if (st->ranges.n != 1) fe_die("sema: for with %d ranges", st->ranges.n);
        Range *r = &st->ranges.v[0];
        Ty t = check_range(S, sc, r);
        Scope *is = scope_new(S, sc);
        r->sym = declare(S, is, SYM_INDEX, r->var, r->varloc, t == T_ERR ? TY_VOID : (ScalarType)t);
        check_block(S, is, &st->body);
        break;
    }
    case ST_PARALLEL: fe_die("sema: %s nested in a block", fe_prim_names[st->prim]); /* the parser's rule */
    }
}

static void check_block(Sema *S, Scope *parent, StmtList *l)
{
    Scope *sc = scope_new(S, parent);
    for (int i = 0; i < l->n; i++) check_tstmt(S, sc, l->v[i]);
}

/* ===== parallel statements ===== */

static void implicit_buffer(Sema *S, Operand *op)
{
    Param p = {0};
    p.name = op->name;
    p.type.elem = TY_FLOAT;
    p.type.is_buffer = 1;
    p.type.unranked = 1;
    p.type.loc = op->loc;
    p.loc = op->loc;
    p.implicit = 1;
    Sym *s = sym_new(S, S->kscope, SYM_BUFFER, op->name, TY_FLOAT, op->loc);
    s->id = S->k->params.n; /* the param index, not the per-kind count */
    p.sym = s;
    FE_PUSH(S->arena, S->k->params, p);
    /* the vector may have moved: Sym.param must follow */
    for (int i = 0; i < S->k->params.n; i++)
        if (S->k->params.v[i].sym && S->k->params.v[i].sym->id == i) S->k->params.v[i].sym->param = &S->k->params.v[i];
    BufInfo bi = {s->id, -1, 0, 0, NULL};
    FE_PUSH(S->arena, S->buf, bi);
    fe_warning(S->d, op->loc, "'%s' is not declared; implicitly declared as float[]", op->name);
}

static Sym *operand(Sema *S, Operand *op, int is_out)
{
    Sym *s = lookup(S->kscope, op->name);
    if (!s) {
        implicit_buffer(S, op);
        s = lookup(S->kscope, op->name);
    } else if (s->kind != SYM_BUFFER) {
        fe_error(S->d, op->loc, "%s: '%s' is a %s, not a buffer", fe_prim_names[S->prim], op->name, sym_kind_desc[s->kind]);
        return NULL;
    }
    op->sym = s;
    if (is_out) s->written = 1;
    else s->read = 1;
    return s;
}

static const char *elem_desc(Sema *S, Sym *b)
{
    return b->param ? type_text(S, &b->param->type) : fe_type_name(b->type);
}

/* All of bufs[0..n) have one element type; reports the first that differs. */
static int same_elem(Sema *S, Sym **bufs, Loc *locs, int n)
{
    for (int i = 1; i < n; i++)
        if (bufs[i]->type != bufs[0]->type) {
            fe_error(S->d, locs[i], "%s: '%s' is %s but '%s' is %s; the operands need one element type",
                     fe_prim_names[S->prim], bufs[i]->name, elem_desc(S, bufs[i]), bufs[0]->name, elem_desc(S, bufs[0]));
            return 0;
        }
    return 1;
}

static int out_differs(Sema *S, Stmt *st)
{
    for (int i = 0; i < st->in.n; i++)
        if (st->in.v[i].sym == st->out.sym) {
            fe_error(S->d, st->out.loc, "%s: the output '%s' must differ from the inputs", fe_prim_names[S->prim],
                     st->out.name);
            return 0;
        }
    return 1;
}

static int is_float_elem(Sym *b) { return b->type == TY_FLOAT || b->type == TY_HALF; }

static void check_parallel(Sema *S, Stmt *st)
{
    S->prim = st->prim;
    const char *pn = fe_prim_names[st->prim];
    int nin = fe_prim_arity[st->prim];
    /* the parser guarantees the operand counts (fe.h, FeBuild) */
    if ((nin >= 0 && st->in.n != nin) || (nin < 0 && st->in.n < 1))
        fe_die("sema: %s with %d inputs", pn, st->in.n);
    if (st->prim == PRIM_FOR) {
        if (st->ranges.n < 1) fe_die("sema: PARALLEL_FOR without ranges");
        if (st->ranges.n > 3) fe_die("sema: PARALLEL_FOR with %d ranges", st->ranges.n);
        Scope *is = scope_new(S, S->kscope);
        for (int i = 0; i < st->ranges.n; i++) {
            Range *r = &st->ranges.v[i];
            Ty t = check_range(S, S->kscope, r);
            r->sym = declare(S, is, SYM_INDEX, r->var, r->varloc, t == T_ERR ? TY_VOID : (ScalarType)t);
        }
        S->ctx = CTX_THREAD;
        check_block(S, is, &st->body);
        return;
    }

    Sym *bufs[16];
    Loc locs[16];
    Sym **in = st->in.n + 1 <= 16 ? bufs : fe_alloc(S->arena, sizeof(Sym *) * (size_t)(st->in.n + 1));
    Loc *lc = st->in.n + 1 <= 16 ? locs : fe_alloc(S->arena, sizeof(Loc) * (size_t)(st->in.n + 1));
    int bad = 0;
    for (int i = 0; i < st->in.n; i++) {
        in[i] = operand(S, &st->in.v[i], 0);
        lc[i] = st->in.v[i].loc;
        if (!in[i]) bad = 1;
    }
    Sym *out = operand(S, &st->out, 1);
    if (!out) bad = 1;
    if (bad) return;
    in[st->in.n] = out;
    lc[st->in.n] = st->out.loc;
    int n = st->in.n + 1; /* in[] holds inputs and the output */

    switch (st->prim) {
    case PRIM_MATMUL:
        if (!out_differs(S, st)) return;
        for (int i = 0; i < 3; i++)
            if (!is_float_elem(in[i])) {
                fe_error(S->d, lc[i], "PARALLEL_MATMUL needs float or half buffers; '%s' is %s", in[i]->name,
                         elem_desc(S, in[i]));
                return;
            }
        if (!same_elem(S, in, lc, 3)) return;
        need_rank(S, in[0], 2, lc[0], "a PARALLEL_MATMUL operand");
        need_rank(S, in[1], 2, lc[1], "a PARALLEL_MATMUL operand");
        need_rank(S, in[2], 2, lc[2], "the output of PARALLEL_MATMUL");
        add_cons(S, SC_MATMUL, in[0], in[1], in[2], st->loc);
        break;
    case PRIM_TRANSPOSE:
        if (!out_differs(S, st)) return;
        if (!same_elem(S, in, lc, 2)) return;
        need_rank(S, in[0], 2, lc[0], "a PARALLEL_TRANSPOSE operand");
        need_rank(S, in[1], 2, lc[1], "the output of PARALLEL_TRANSPOSE");
        add_cons(S, SC_TRANSPOSE, in[0], in[1], NULL, lc[1]);
        break;
    case PRIM_REDUCE:
        if (!out_differs(S, st)) return;
        if (!same_elem(S, in, lc, 2)) return;
        need_rank(S, in[1], 1, lc[1], "the output of PARALLEL_REDUCE");
        broot(S, in[0])->fixed = 1;
        add_cons(S, SC_RANK12, in[0], NULL, NULL, lc[0]);
        add_cons(S, SC_REDUCE, in[0], NULL, in[1], lc[1]);
        break;
    case PRIM_SCAN:
    case PRIM_SOFTMAX:
        if (st->prim == PRIM_SCAN && st->rop != RED_SUM) {
            fe_error(S->d, st->loc, "PARALLEL_SCAN supports only SUM");
            return;
        }
        if (!out_differs(S, st)) return;
        if (st->prim == PRIM_SOFTMAX && !is_float_elem(in[0])) {
            fe_error(S->d, lc[0], "PARALLEL_SOFTMAX needs a float or half buffer; '%s' is %s", in[0]->name,
                     elem_desc(S, in[0]));
            return;
        }
        if (!same_elem(S, in, lc, 2)) return;
        broot(S, in[0])->fixed = 1;
        same_shape(S, in[0], in[1], lc[1]);
        add_cons(S, SC_RANK12, in[0], NULL, NULL, lc[0]);
        add_cons(S, SC_SAME, in[0], in[1], NULL, lc[1]);
        break;
    case PRIM_COPY:
    case PRIM_ADD:
    case PRIM_SUB:
    case PRIM_MUL:
    case PRIM_DIV:
        if (!same_elem(S, in, lc, n)) return;
        for (int i = 1; i < n; i++) {
            same_shape(S, in[0], in[i], lc[i]);
            add_cons(S, SC_SAME, in[0], in[i], NULL, lc[i]);
        }
        break;
    case PRIM_MAP: {
        for (int i = 1; i < n; i++) {
            same_shape(S, in[0], in[i], lc[i]);
            add_cons(S, SC_SAME, in[0], in[i], NULL, lc[i]);
        }
        Scope *es = scope_new(S, S->kscope);
        for (int i = 0; i < st->in.n; i++) {
            if (scope_find_local(es, in[i]->name)) continue;
            Sym *e = sym_new(S, es, SYM_ELEM, in[i]->name, in[i]->type, lc[i]);
            e->elem_of = in[i];
        }
        S->ctx = CTX_MAP;
        Ty t = check_expr(S, es, st->a);
        S->ctx = CTX_THREAD;
        coerce(S, st->a, t, out->type,
               fe_sprintf(S->arena, "PARALLEL_MAP: the value stored to '%s' (%s)", out->name, elem_desc(S, out)));
        break;
    }
    case PRIM_FILL: {
        S->ctx = CTX_FILL;
        Ty t = check_expr(S, S->kscope, st->a);
        S->ctx = CTX_THREAD;
        coerce(S, st->a, t, out->type,
               fe_sprintf(S->arena, "PARALLEL_FILL: the value stored to '%s' (%s)", out->name, elem_desc(S, out)));
        break;
    }
    case PRIM_FOR:
    case PRIM_COUNT: fe_unreachable();
    }
}

/* ===== extents ===== */

int fe_extent_find(FeShapes *s, int e)
{
    FE_ASSERT(e >= 0 && e < s->ext.n);
    while (s->ext.v[e].parent != e) {
        s->ext.v[e].parent = s->ext.v[s->ext.v[e].parent].parent;
        e = s->ext.v[e].parent;
    }
    return e;
}

static int extent_new(Sema *S, int64_t value, const char *name, int implicit, Loc loc)
{
    FeExtent x = {S->sh->ext.n, value, name, implicit, loc};
    FE_PUSH(S->arena, S->sh->ext, x);
    return S->sh->ext.n - 1;
}

static int literal_extent(Sema *S, int64_t v, Loc loc)
{
    for (int i = 0; i < S->sh->ext.n; i++)
        if (S->sh->ext.v[i].value == v) return i;
    return extent_new(S, v, NULL, 0, loc);
}

/* Strict union: a class holds at most one literal or one user symbol. */
static int unify_ext(Sema *S, int x, int y)
{
    FeShapes *sh = S->sh;
    int rx = fe_extent_find(sh, x), ry = fe_extent_find(sh, y);
    if (rx == ry) return 1;
    FeExtent *a = &sh->ext.v[rx], *b = &sh->ext.v[ry];
    int ka = a->value >= 0 ? 2 : !a->implicit, kb = b->value >= 0 ? 2 : !b->implicit;
    if (ka && kb) return 0; /* two literals (different: one class per value), two symbols, or both */
    /* the representative: literal, else user symbol, else the older implicit */
    int keep = ka > kb ? rx : kb > ka ? ry : (rx < ry ? rx : ry);
    int drop = keep == rx ? ry : rx;
    sh->ext.v[drop].parent = keep;
    return 1;
}

static const char *ext_name(Sema *S, int e)
{
    FeExtent *x = &S->sh->ext.v[fe_extent_find(S->sh, e)];
    if (x->value >= 0) return fe_sprintf(S->arena, "%lld", (long long)x->value);
    return x->name;
}

static const char *shape_text(Sema *S, Sym *b)
{
    if (is_declared_shape(b)) return type_text(S, &b->param->type);
    const char *s = fe_sprintf(S->arena, "%s[] with shape ", fe_type_name(b->type));
    for (int i = 0; i < b->rank; i++) s = fe_sprintf(S->arena, "%s[%s]", s, ext_name(S, b->ext[i]));
    return s;
}

static void check_cons(Sema *S, ShapeCons *c)
{
    const char *pn = fe_prim_names[c->prim];
    Sym *a = c->a, *b = c->b, *r = c->c;
    switch (c->kind) {
    case SC_RANK12:
        if (a->rank != 1 && a->rank != 2) {
            BufInfo *g = broot(S, a);
            fe_error(S->d, c->loc, "%s: '%s' is %d-D (%s); the input must be 1-D or 2-D", pn, a->name, a->rank, g->why);
        }
        break;
    case SC_SAME:
        if (a->rank != b->rank) return; /* reported with the ranks */
        for (int i = 0; i < a->rank; i++)
            if (!unify_ext(S, a->ext[i], b->ext[i])) {
                if (c->prim == PRIM_SCAN || c->prim == PRIM_SOFTMAX || c->prim == PRIM_COPY)
                    fe_error(S->d, c->loc, "%s: '%s' is %s but '%s' is %s; the output needs the input's shape", pn,
                             b->name, shape_text(S, b), a->name, shape_text(S, a));
                else
                    fe_error(S->d, c->loc,
                             "%s: '%s' is %s but '%s' is %s; operands of an elementwise primitive need one shape", pn,
                             b->name, shape_text(S, b), a->name, shape_text(S, a));
                return;
            }
        break;
    case SC_MATMUL:
        if (a->rank != 2 || b->rank != 2 || r->rank != 2) return;
        if (!unify_ext(S, a->ext[1], b->ext[0])) {
            fe_error(S->d, c->loc, "PARALLEL_MATMUL: '%s' is %s and '%s' is %s; the columns of '%s' must equal the rows of '%s'",
                     a->name, shape_text(S, a), b->name, shape_text(S, b), a->name, b->name);
            return;
        }
        if (!unify_ext(S, a->ext[0], r->ext[0]) || !unify_ext(S, b->ext[1], r->ext[1]))
            fe_error(S->d, c->loc, "PARALLEL_MATMUL: '%s' is %s but the product of '%s' and '%s' is [%s][%s]", r->name,
                     shape_text(S, r), a->name, b->name, ext_name(S, a->ext[0]), ext_name(S, b->ext[1]));
        break;
    case SC_TRANSPOSE:
        if (a->rank != 2 || b->rank != 2) return;
        if (!unify_ext(S, a->ext[0], b->ext[1]) || !unify_ext(S, a->ext[1], b->ext[0]))
            fe_error(S->d, c->loc, "PARALLEL_TRANSPOSE: '%s' is %s but the transpose of '%s' is [%s][%s]", b->name,
                     shape_text(S, b), a->name, ext_name(S, a->ext[1]), ext_name(S, a->ext[0]));
        break;
    case SC_REDUCE: {
        if (r->rank != 1 || (a->rank != 1 && a->rank != 2)) return;
        int want = a->rank == 1 ? literal_extent(S, 1, c->loc) : a->ext[0];
        if (!unify_ext(S, r->ext[0], want))
            fe_error(S->d, c->loc, "%s: '%s' is %s but reducing '%s' gives [%s]", pn, r->name, shape_text(S, r), a->name,
                     ext_name(S, want));
        break;
    }
    }
}

/* ===== kernels ===== */

static void check_header(Sema *S)
{
    Kernel *k = S->k;
    for (int i = 0; i < k->params.n; i++) {
        Param *p = &k->params.v[i];
        Sym *prev = scope_find_local(S->kscope, p->name);
        if (prev) {
            fe_error(S->d, p->loc, "parameter '%s' is already declared", p->name);
            fe_note(S->d, prev->loc, "'%s' was declared here", p->name);
        }
        Sym *s = sym_new(S, prev ? NULL : S->kscope, p->type.is_buffer ? SYM_BUFFER : SYM_SCALAR, p->name, p->type.elem,
                         p->loc);
        s->id = i;
        s->param = p;
        p->sym = s;
        BufInfo bi = {i, -1, 0, 0, NULL};
        if (p->type.is_buffer && !p->type.unranked) {
            bi.rank = p->type.rank;
            bi.why = fe_sprintf(S->arena, "'%s' is declared %s", p->name, type_text(S, &p->type));
        }
        FE_PUSH(S->arena, S->buf, bi);
    }
    S->nid[SYM_SCALAR] = S->nid[SYM_BUFFER] = 0;
    /* size symbols, in order of first appearance */
    for (int i = 0; i < k->params.n; i++) {
        TypeSpec *t = &k->params.v[i].type;
        if (!t->is_buffer || t->unranked) continue;
        if (t->rank < 1 || t->rank > 4) fe_die("sema: buffer rank %d", t->rank);
        for (int j = 0; j < t->rank; j++) {
            DimSpec *dm = &t->dims[j];
            if (!dm->is_sym) continue; /* 1..INT32_MAX, checked by the parser */
            Sym *s = scope_find_local(S->kscope, dm->name);
            if (s && s->kind != SYM_SIZE) {
                fe_error(S->d, dm->loc, "'%s' is a %s; an extent must be a literal or a size symbol (an undeclared name)",
                         dm->name, sym_kind_desc[s->kind]);
                continue;
            }
            if (!s) {
                s = sym_new(S, S->kscope, SYM_SIZE, dm->name, TY_UINT, dm->loc);
                s->ext[0] = extent_new(S, -1, dm->name, 0, dm->loc);
            }
        }
    }
    /* class/deadline rules are the parser's (ast.c: fe_kernel_class/deadline) */
}

/* Fixes every buffer's rank (step 3) and creates its extents (step 4). */
static void finish_shapes(Sema *S)
{
    Kernel *k = S->k;
    for (int i = 0; i < k->params.n; i++) {
        Param *p = &k->params.v[i];
        Sym *b = p->sym;
        if (!p->type.is_buffer || !b || b->param != p) continue;
        BufInfo *g = broot(S, b);
        if (g->rank < 0) {
            /* no use fixed the group's rank: flexible, unless a REDUCE/SCAN/
             * SOFTMAX input is in it (then 1-D) */
            g->rank = 1;
            g->flex = !g->fixed;
            g->why = fe_sprintf(S->arena, "'%s' is 1-D by default", b->name);
        }
        b->rank = g->rank;
        b->flex = g->flex;
        if (!p->type.unranked) {
            for (int j = 0; j < p->type.rank; j++) {
                DimSpec *dm = &p->type.dims[j];
                if (dm->is_sym) {
                    Sym *s = scope_find_local(S->kscope, dm->name);
                    b->ext[j] = s && s->kind == SYM_SIZE ? s->ext[0]
                                                         : extent_new(S, -1, fe_sprintf(S->arena, "%s.%d", b->name, j), 1, dm->loc);
                } else {
                    b->ext[j] = literal_extent(S, (int64_t)(dm->value ? dm->value : 1), dm->loc);
                }
            }
        } else if (b->rank >= 1 && b->rank <= 4) {
            for (int j = 0; j < b->rank; j++)
                b->ext[j] = extent_new(S, -1, fe_sprintf(S->arena, "%s.%d", b->name, j), 1, b->loc);
        }
    }
}

/* Limits on a kernel's size (Diags.lim; docs/LANGUAGE.md, "Limits"), each
 * reported once per kernel at the statement that goes past it. The walk
 * is bounded by FE_MAX_NEST levels, which the parser enforces. */
typedef struct LimitWalk {
    int count, loops;          /* statements so far; `for`s in this parallel statement */
    int said_count, said_depth, said_loops;
} LimitWalk;

static void limit_walk(Sema *S, LimitWalk *w, const StmtList *l, int depth)
{
    const FeLimits *lim = &S->d->lim;
    for (int i = 0; i < l->n; i++) {
        const Stmt *st = l->v[i];
        if (++w->count > lim->statements && !w->said_count) {
            w->said_count = 1;
            fe_error(S->d, st->loc, "too many statements in kernel '%s' (limit %d)", S->k->name, lim->statements);
        }
        int d = depth;
        if (st->kind == ST_FOR) {
            d++;
            if (d > lim->loop_depth && !w->said_depth) {
                w->said_depth = 1;
                fe_error(S->d, st->loc, "loops nested too deeply (limit %d)", lim->loop_depth);
            }
            if (++w->loops > FE_MAX_LOOPS_PER_STMT && !w->said_loops) {
                w->said_loops = 1;
                fe_error(S->d, st->loc, "too many loops in one parallel statement (limit %d)", FE_MAX_LOOPS_PER_STMT);
            }
        }
        if (st->kind == ST_PARALLEL) w->loops = 0;
        limit_walk(S, w, &st->body, d);
        limit_walk(S, w, &st->els, d);
    }
}

static void check_kernel(Sema *S)
{
    Kernel *k = S->k;
    LimitWalk w = {0};
    limit_walk(S, &w, &k->body, 0);
    check_header(S);
    for (int i = 0; i < k->body.n; i++) {
        Stmt *st = k->body.v[i];
        S->ctx = CTX_THREAD;
        if (st->kind != ST_PARALLEL) fe_die("sema: thread code at the top of a kernel"); /* the parser's rule */
        check_parallel(S, st);
    }
    finish_shapes(S);
    for (int i = 0; i < S->cons.n; i++) check_cons(S, &S->cons.v[i]);
}

/* Diagnostics in source order: shape errors are found after the statement
 * walk, but belong where their statement is. A note stays behind the
 * message it belongs to; equal positions keep their order (the group index
 * breaks ties, which makes qsort stable). */
typedef struct DiagGroup {
    int line, col, idx, start, end;
} DiagGroup;

static int group_cmp(const void *x, const void *y)
{
    const DiagGroup *a = x, *b = y;
    if (a->line != b->line) return a->line < b->line ? -1 : 1;
    if (a->col != b->col) return a->col < b->col ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static void sort_diags(Diags *d, int from)
{
    int n = d->v.n - from;
    if (n < 2) return;
    Diag *v = d->v.v + from;
    DiagGroup *g = fe_alloc(d->arena, sizeof *g * (size_t)n);
    int ng = 0;
    for (int i = 0; i < n; i++) {
        if (i == 0 || v[i].level != DIAG_NOTE) {
            g[ng] = (DiagGroup){v[i].loc.line, v[i].loc.col, ng, i, i + 1};
            ng++;
        } else g[ng - 1].end = i + 1;
    }
    qsort(g, (size_t)ng, sizeof *g, group_cmp);
    Diag *tmp = fe_alloc(d->arena, sizeof(Diag) * (size_t)n);
    int k = 0;
    for (int i = 0; i < ng; i++)
        for (int j = g[i].start; j < g[i].end; j++) tmp[k++] = v[j];
    memcpy(v, tmp, sizeof(Diag) * (size_t)n);
}

int fe_check(Arena *a, Diags *d, Program *p)
{
    int before = d->nerrors;
    for (int i = 0; i < p->kernels.n; i++) {
        Kernel *k = p->kernels.v[i];
        if (i == d->lim.kernels) {
            /* also bounds the duplicate-name check below */
            fe_error(d, k->loc, "too many kernels in one source (limit %d)", d->lim.kernels);
            break;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(p->kernels.v[j]->name, k->name) == 0) {
                fe_error(d, k->loc, "kernel '%s' is already defined", k->name);
                fe_note(d, p->kernels.v[j]->loc, "the first definition of '%s' is here", k->name);
                break;
            }
        int first = d->v.n;
        Sema S = {0};
        S.arena = a;
        S.d = d;
        S.k = k;
        S.kscope = scope_new(&S, NULL);
        S.sh = fe_alloc(a, sizeof *S.sh);
        k->scope = S.kscope;
        k->shapes = S.sh;
        check_kernel(&S);
        sort_diags(d, first);
    }
    return d->nerrors - before;
}
