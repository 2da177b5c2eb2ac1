/* test_sema.c — semantic analysis on hand-built syntax trees: for bad
 * kernels, the one expected error (message text and line:col); for good
 * ones, the annotations lowering reads (types, symbols, index types,
 * implicit params, ranks, extents and their representatives, flex).
 *
 * Trees are built here, not parsed, so these tests do not depend on the
 * parser. Layout convention of the fake locations: a primitive's keyword is
 * at column 5, its inputs at columns 20, 30, 40, ... and its output at
 * column 60; expressions get the columns each test gives them. */
#include "frontend/fe.h"
#include "tests/unit/test.h"

#include <stdarg.h>
#include <stdlib.h>

static Arena *A;

static Loc L(int line, int col, int len)
{
    Loc l = {line, col, len, 0};
    return l;
}

/* ---- expressions ---- */

static Expr *ex(ExprKind k, Loc loc)
{
    Expr *e = fe_alloc(A, sizeof *e);
    e->kind = k;
    e->loc = loc;
    e->oploc = loc;
    return e;
}
static Expr *I(int line, int col, uint64_t v)
{
    Expr *e = ex(EX_INT, L(line, col, 1));
    e->ival = v;
    return e;
}
static Expr *IU(int line, int col, uint64_t v)
{
    Expr *e = I(line, col, v);
    e->is_unsigned = 1;
    return e;
}
static Expr *F(int line, int col, double v)
{
    Expr *e = ex(EX_FLOAT, L(line, col, 3));
    e->fval = v;
    return e;
}
static Expr *Nm(int line, int col, const char *name)
{
    Expr *e = ex(EX_NAME, L(line, col, (int)strlen(name)));
    e->name = name;
    return e;
}
static Expr *Bin(int line, int col, FeOp op, Expr *a, Expr *b)
{
    Expr *e = ex(EX_BINARY, fe_loc_span(a->loc, b->loc));
    e->oploc = L(line, col, 1);
    e->op = op;
    e->a = a;
    e->b = b;
    return e;
}
static Expr *Un(int line, int col, FeOp op, Expr *a)
{
    Expr *e = ex(EX_UNARY, fe_loc_span(L(line, col, 1), a->loc));
    e->oploc = L(line, col, 1);
    e->op = op;
    e->a = a;
    return e;
}
static Expr *Tern(int line, int col, Expr *c, Expr *t, Expr *f)
{
    Expr *e = ex(EX_TERNARY, fe_loc_span(c->loc, f->loc));
    e->oploc = L(line, col, 1);
    e->a = c;
    e->b = t;
    e->c = f;
    return e;
}
/* name[args] or name(args): n arguments follow */
static Expr *Args(ExprKind k, int line, int col, const char *name, int n, ...)
{
    Expr *e = ex(k, L(line, col, (int)strlen(name) + 2));
    e->name = name;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) FE_PUSH(A, e->args, va_arg(ap, Expr *));
    va_end(ap);
    return e;
}
#define Ix(line, col, name, ...) Args(EX_INDEX, line, col, name, __VA_ARGS__)
#define Call(line, col, name, ...) Args(EX_CALL, line, col, name, __VA_ARGS__)

/* ---- kernels and statements ---- */

static Program *prog;

static Kernel *K(const char *name, int line)
{
    Kernel *k = fe_alloc(A, sizeof *k);
    k->name = name;
    k->loc = L(line, 12, (int)strlen(name));
    FE_PUSH(A, prog->kernels, k);
    return k;
}

/* dims: NULL for a scalar, "" for T[], else comma-separated extents
 * ("N", "M,K", "4"). Params are declared on line 2, 3, ... in order. */
static void P(Kernel *k, const char *name, ScalarType t, const char *dims)
{
    Param p = {0};
    int line = 2 + k->params.n;
    p.name = name;
    p.loc = L(line, 11, (int)strlen(name));
    p.type.elem = t;
    if (dims) {
        p.type.is_buffer = 1;
        if (!*dims) p.type.unranked = 1;
        int col = 20;
        for (const char *s = dims; *s;) {
            const char *e = strchr(s, ',');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            DimSpec *d = &p.type.dims[p.type.rank++];
            d->loc = L(line, col, (int)n);
            if (*s >= '0' && *s <= '9') d->value = strtoull(s, NULL, 10);
            else {
                d->is_sym = 1;
                d->name = fe_strndup(A, s, n);
            }
            col += (int)n + 2;
            s += n + (e ? 1 : 0);
        }
    }
    FE_PUSH(A, k->params, p);
}

static Stmt *st(StmtKind kind, int line, int col)
{
    Stmt *s = fe_alloc(A, sizeof *s);
    s->kind = kind;
    s->loc = L(line, col, 1);
    return s;
}

/* A primitive with space-separated inputs; appended to k's body. */
static Stmt *Prim(Kernel *k, int line, FePrim p, const char *ins, const char *out)
{
    Stmt *s = st(ST_PARALLEL, line, 5);
    s->prim = p;
    int col = 20;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", ins);
    for (char *t = strtok(buf, " "); t; t = strtok(NULL, " ")) {
        Operand o = {fe_strdup(A, t), L(line, col, (int)strlen(t)), NULL};
        FE_PUSH(A, s->in, o);
        col += 10;
    }
    s->out.name = out;
    s->out.loc = L(line, 60, (int)strlen(out));
    FE_PUSH(A, k->body, s);
    return s;
}

static Range R(int line, int col, const char *var, Expr *lo, Expr *hi)
{
    Range r = {var, L(line, col, (int)strlen(var)), lo, hi, NULL};
    return r;
}

static Stmt *PFor(Kernel *k, int line, int n, Range *rs)
{
    Stmt *s = st(ST_PARALLEL, line, 5);
    s->prim = PRIM_FOR;
    for (int i = 0; i < n; i++) FE_PUSH(A, s->ranges, rs[i]);
    FE_PUSH(A, k->body, s);
    return s;
}

static Stmt *Decl(StmtKind kind, int line, const char *name, Expr *e)
{
    Stmt *s = st(kind, line, 9);
    s->name = name;
    s->nameloc = L(line, 13, (int)strlen(name));
    s->a = e;
    return s;
}
static Stmt *Asg(int line, Expr *target, FeOp op, Expr *e)
{
    Stmt *s = st(ST_ASSIGN, line, target->loc.col);
    s->target = target;
    s->op = op;
    s->a = e;
    return s;
}
static Stmt *If(int line, Expr *c)
{
    Stmt *s = st(ST_IF, line, 9);
    s->a = c;
    return s;
}
static Stmt *For(int line, Range r)
{
    Stmt *s = st(ST_FOR, line, 9);
    FE_PUSH(A, s->ranges, r);
    return s;
}
static void add(StmtList *l, Stmt *s) { FE_PUSH(A, *l, s); }

/* ---- running ---- */

static Diags D;

static void fresh(void)
{
    if (A) fe_arena_free(A);
    A = fe_arena_new();
    prog = fe_alloc(A, sizeof *prog);
    fe_diags_init(&D, A, "t.px", NULL, 0);
}

static int run(void) { return fe_check(A, &D, prog); }

/* Exactly one error, at line:col, containing msg. */
static void expect_error(int line, int col, const char *msg)
{
    run();
    int found = 0;
    for (int i = 0; i < D.v.n; i++)
        if (D.v.v[i].level == DIAG_ERROR && D.v.v[i].loc.line == line && D.v.v[i].loc.col == col &&
            strstr(D.v.v[i].msg, msg))
            found = 1;
    CHECK_MSG(found && D.nerrors == 1, "expected one error at %d:%d containing \"%s\"; got %d:", line, col, msg,
              D.nerrors);
    if (!(found && D.nerrors == 1))
        for (int i = 0; i < D.v.n; i++)
            fprintf(stderr, "   %d:%d: %s\n", D.v.v[i].loc.line, D.v.v[i].loc.col, D.v.v[i].msg);
}

static void expect_ok(void)
{
    run();
    CHECK_MSG(D.nerrors == 0, "expected no errors, got %d", D.nerrors);
    for (int i = 0; i < D.v.n; i++)
        if (D.v.v[i].level == DIAG_ERROR)
            fprintf(stderr, "   %d:%d: %s\n", D.v.v[i].loc.line, D.v.v[i].loc.col, D.v.v[i].msg);
}

static Param *param(Kernel *k, const char *name)
{
    for (int i = 0; i < k->params.n; i++)
        if (strcmp(k->params.v[i].name, name) == 0) return &k->params.v[i];
    return NULL;
}

static FeExtent *rep(Kernel *k, int e) { return &k->shapes->ext.v[fe_extent_find(k->shapes, e)]; }

/* The common test kernel: x y float[N], m float[M][K], w float[K][N],
 * ix int[N], a b float[], s float, n int, u uint (lines 2..11). */
static Kernel *base(void)
{
    fresh();
    Kernel *k = K("k", 1);
    P(k, "x", TY_FLOAT, "N");
    P(k, "y", TY_FLOAT, "N");
    P(k, "m", TY_FLOAT, "M,K");
    P(k, "w", TY_FLOAT, "K,N");
    P(k, "ix", TY_INT, "N");
    P(k, "a", TY_FLOAT, "");
    P(k, "b", TY_FLOAT, "");
    P(k, "s", TY_FLOAT, NULL);
    P(k, "n", TY_INT, NULL);
    P(k, "u", TY_UINT, NULL);
    return k;
}

/* A MAP x -> y : e on line 20. */
static void map_xy(Kernel *k, Expr *e) { Prim(k, 20, PRIM_MAP, "x", "y")->a = e; }

/* PARALLEL_FOR i IN 0..N on line 20; returns its body. */
static StmtList *pfor_i(Kernel *k)
{
    Range r = R(20, 18, "i", I(20, 23, 0), Nm(20, 26, "N"));
    return &PFor(k, 20, 1, &r)->body;
}

/* ===== good programs ===== */

TEST(seed_kernel)
{
    fresh();
    Kernel *k = K("train_model", 1);
    P(k, "weights", TY_FLOAT, "");
    Prim(k, 4, PRIM_MATMUL, "weights inputs", "outputs");
    run();
    CHECK(D.nerrors == 0);
    CHECK(D.nwarnings == 2);
    CHECK(D.v.n == 2 && strcmp(D.v.v[0].msg, "'inputs' is not declared; implicitly declared as float[]") == 0);
    CHECK(D.v.n == 2 && D.v.v[0].loc.line == 4 && D.v.v[0].loc.col == 30);
    CHECK(D.v.n == 2 && D.v.v[1].loc.col == 60 && strstr(D.v.v[1].msg, "'outputs'"));
    CHECK(k->params.n == 3);
    Param *w = param(k, "weights"), *in = param(k, "inputs"), *out = param(k, "outputs");
    CHECK(w && in && out && !w->implicit && in->implicit && out->implicit);
    if (!(w && in && out)) return;
    CHECK(in->type.is_buffer && in->type.unranked && in->type.elem == TY_FLOAT);
    CHECK(in->sym && in->sym->param == in && out->sym->param == out && w->sym->param == w);
    CHECK(in->sym->kind == SYM_BUFFER && in->sym->id == 1 && out->sym->id == 2);
    CHECK(w->sym->rank == 2 && in->sym->rank == 2 && out->sym->rank == 2);
    CHECK(!w->sym->flex && !in->sym->flex && !out->sym->flex);
    CHECK(w->sym->read && !w->sym->written && out->sym->written && !out->sym->read);
    FeShapes *sh = k->shapes;
    CHECK(fe_extent_find(sh, w->sym->ext[0]) == fe_extent_find(sh, out->sym->ext[0]));
    CHECK(fe_extent_find(sh, w->sym->ext[1]) == fe_extent_find(sh, in->sym->ext[0]));
    CHECK(fe_extent_find(sh, in->sym->ext[1]) == fe_extent_find(sh, out->sym->ext[1]));
    CHECK(fe_extent_find(sh, w->sym->ext[0]) != fe_extent_find(sh, w->sym->ext[1]));
    /* representatives: the first implicit extent of each class */
    CHECK(strcmp(rep(k, out->sym->ext[0])->name, "weights.0") == 0);
    CHECK(strcmp(rep(k, out->sym->ext[1])->name, "inputs.1") == 0);
    CHECK(strcmp(rep(k, in->sym->ext[0])->name, "weights.1") == 0);
    CHECK(rep(k, in->sym->ext[0])->implicit && rep(k, in->sym->ext[0])->value == -1);
    /* the operands point at the symbols */
    Stmt *s = k->body.v[0];
    CHECK(s->in.v[0].sym == w->sym && s->in.v[1].sym == in->sym && s->out.sym == out->sym);
}

TEST(werror_implicit)
{
    fresh();
    D.werror = 1;
    Kernel *k = K("k", 1);
    P(k, "x", TY_FLOAT, "N");
    Prim(k, 3, PRIM_COPY, "x", "z");
    run();
    CHECK(D.nerrors == 1 && D.v.n == 1 && D.v.v[0].level == DIAG_ERROR);
}

TEST(map_types)
{
    Kernel *k = base();
    /* y = x * 2 + s */
    Expr *two = I(20, 75, 2), *mul = Bin(20, 73, OP_MUL, Nm(20, 71, "x"), two);
    Expr *e = Bin(20, 77, OP_ADD, mul, Nm(20, 79, "s"));
    map_xy(k, e);
    expect_ok();
    CHECK(two->type == TY_FLOAT && mul->type == TY_FLOAT && e->type == TY_FLOAT);
    CHECK(mul->a->sym && mul->a->sym->kind == SYM_ELEM && mul->a->sym->elem_of == param(k, "x")->sym);
    CHECK(mul->a->sym->type == TY_FLOAT);
    CHECK(e->b->sym && e->b->sym->kind == SYM_SCALAR && e->b->sym == param(k, "s")->sym);
    Sym *xs = param(k, "x")->sym, *ys = param(k, "y")->sym;
    CHECK(xs->rank == 1 && fe_extent_find(k->shapes, xs->ext[0]) == fe_extent_find(k->shapes, ys->ext[0]));
    CHECK(strcmp(rep(k, xs->ext[0])->name, "N") == 0 && !rep(k, xs->ext[0])->implicit);
}

TEST(map_untyped_and_size)
{
    Kernel *k = base();
    /* PARALLEL_MAP ix -> ix : ix + N  is int + uint: an error; use a uint buffer */
    P(k, "iu", TY_UINT, "N");
    /* iu = iu * 3 + N ; literal becomes uint */
    Expr *three = I(20, 75, 3);
    Expr *e = Bin(20, 77, OP_ADD, Bin(20, 73, OP_MUL, Nm(20, 71, "iu"), three), Nm(20, 79, "N"));
    Prim(k, 20, PRIM_MAP, "iu", "iu")->a = e;
    /* FILL 1 -> a: the literal takes a's element type */
    Expr *one = I(21, 19, 1);
    Stmt *f = Prim(k, 21, PRIM_FILL, "", "a");
    f->a = one;
    /* MAP x -> y : -(1) alone becomes float via the output */
    Expr *neg = Un(22, 70, OP_NEG, I(22, 71, 1));
    map_xy(k, neg);
    k->body.v[2]->loc.line = 22;
    expect_ok();
    CHECK(three->type == TY_UINT && e->type == TY_UINT);
    CHECK(e->b->sym && e->b->sym->kind == SYM_SIZE && e->b->type == TY_UINT);
    CHECK(one->type == TY_FLOAT);
    CHECK(neg->type == TY_FLOAT && neg->a->type == TY_FLOAT);
    Sym *N = e->b->sym;
    CHECK(fe_extent_find(k->shapes, N->ext[0]) == fe_extent_find(k->shapes, param(k, "x")->sym->ext[0]));
    /* a is filled only: flexible */
    Sym *as = param(k, "a")->sym;
    CHECK(as->flex && as->rank == 1 && as->written);
}

TEST(thread_code)
{
    Kernel *k = base();
    /* PARALLEL_FOR i IN 0..N, j IN 0..10 {
     *   let h = N / 2          (bound value)
     *   var acc = 0.0
     *   for t IN 0..h { acc += m[j][t] }   -- j is int, t uint: both fine as indices
     *   if acc > s { y[i] = acc } else { y[i] = -acc }
     * } */
    Range rs[2] = {R(20, 18, "i", I(20, 23, 0), Nm(20, 26, "N")), R(20, 30, "j", I(20, 35, 0), I(20, 38, 10))};
    Stmt *pf = PFor(k, 20, 2, rs);
    Expr *hv = Bin(21, 19, OP_DIV, Nm(21, 17, "N"), I(21, 21, 2));
    Stmt *let = Decl(ST_LET, 21, "h", hv);
    Expr *zero = F(22, 19, 0.0);
    Stmt *var = Decl(ST_VAR, 22, "acc", zero);
    Range fr = R(23, 13, "t", I(23, 18, 0), Nm(23, 21, "h"));
    Stmt *fo = For(23, fr);
    Expr *load = Ix(24, 20, "m", 2, Nm(24, 22, "j"), Nm(24, 25, "t"));
    add(&fo->body, Asg(24, Nm(24, 13, "acc"), OP_ADD, load));
    Stmt *ifs = If(25, Bin(25, 16, OP_GT, Nm(25, 12, "acc"), Nm(25, 18, "s")));
    Expr *store = Ix(25, 22, "y", 1, Nm(25, 24, "i"));
    add(&ifs->body, Asg(25, store, OP_ASSIGN, Nm(25, 29, "acc")));
    Expr *negacc = Un(26, 29, OP_NEG, Nm(26, 30, "acc"));
    add(&ifs->els, Asg(26, Ix(26, 22, "y", 1, Nm(26, 24, "i")), OP_ASSIGN, negacc));
    ifs->has_else = 1;
    add(&pf->body, let);
    add(&pf->body, var);
    add(&pf->body, fo);
    add(&pf->body, ifs);
    expect_ok();
    CHECK(pf->ranges.v[0].sym && pf->ranges.v[0].sym->kind == SYM_INDEX && pf->ranges.v[0].sym->type == TY_UINT);
    CHECK(pf->ranges.v[1].sym && pf->ranges.v[1].sym->type == TY_INT);
    CHECK(pf->ranges.v[0].lo->type == TY_UINT && pf->ranges.v[1].hi->type == TY_INT);
    CHECK(let->sym && let->sym->kind == SYM_LET && let->sym->type == TY_UINT && let->sym->bound_value == hv);
    CHECK(var->sym && var->sym->kind == SYM_VAR && var->sym->type == TY_FLOAT && zero->type == TY_FLOAT);
    CHECK(fo->ranges.v[0].sym && fo->ranges.v[0].sym->type == TY_UINT);
    CHECK(load->type == TY_FLOAT && load->sym == param(k, "m")->sym);
    CHECK(store->sym == param(k, "y")->sym && param(k, "y")->sym->written);
    CHECK(param(k, "m")->sym->read && !param(k, "m")->sym->written);
    CHECK(negacc->type == TY_FLOAT && ifs->a->type == TY_BOOL);
    CHECK(ifs->a->a->sym == var->sym);
}

TEST(thread_code_ranks)
{
    Kernel *k = base();
    /* a[] indexed with 2 indices gets rank 2 (not flexible) */
    StmtList *b = pfor_i(k);
    add(b, Asg(21, Ix(21, 9, "a", 2, Nm(21, 11, "i"), IU(21, 14, 0)), OP_ASSIGN, F(21, 20, 1.0)));
    expect_ok();
    Sym *as = param(k, "a")->sym;
    CHECK(as->rank == 2 && !as->flex && as->written);
    CHECK(strcmp(rep(k, as->ext[1])->name, "a.1") == 0);
}

TEST(flex_groups)
{
    fresh();
    Kernel *k = K("k", 1);
    P(k, "p", TY_FLOAT, "");
    P(k, "q", TY_FLOAT, "");
    P(k, "x", TY_FLOAT, "N");
    Prim(k, 5, PRIM_ADD, "p q", "r");     /* all flexible */
    Prim(k, 6, PRIM_MUL, "c x", "d");     /* c, d: 1-D, extent N */
    run();
    CHECK(D.nerrors == 0 && D.nwarnings == 3);
    Sym *p = param(k, "p")->sym, *q = param(k, "q")->sym, *r = param(k, "r")->sym;
    Sym *c = param(k, "c")->sym, *d = param(k, "d")->sym;
    CHECK(p->flex && q->flex && r->flex && p->rank == 1);
    CHECK(fe_extent_find(k->shapes, p->ext[0]) == fe_extent_find(k->shapes, r->ext[0]));
    CHECK(strcmp(rep(k, r->ext[0])->name, "p.0") == 0);
    CHECK(!c->flex && !d->flex && c->rank == 1);
    CHECK(strcmp(rep(k, d->ext[0])->name, "N") == 0 && strcmp(rep(k, c->ext[0])->name, "N") == 0);
}

TEST(reduce_transpose_shapes)
{
    fresh();
    Kernel *k = K("k", 1);
    P(k, "m", TY_FLOAT, "M,K");
    P(k, "v", TY_INT, "8");
    Prim(k, 5, PRIM_REDUCE, "m", "r");       /* r[M] */
    Prim(k, 6, PRIM_REDUCE, "v", "s");       /* s[1]: int elements */
    Prim(k, 7, PRIM_TRANSPOSE, "m", "t");    /* t[K][M] */
    Prim(k, 8, PRIM_SCAN, "p", "q");         /* p q: 1-D by default, not flex */
    param(k, "v")->type.elem = TY_INT;
    run();
    /* r, s, t, p, q implicit; s is float[] but v is int: one error */
    CHECK(D.nerrors == 1);
    int found = 0;
    for (int i = 0; i < D.v.n; i++)
        if (D.v.v[i].level == DIAG_ERROR && D.v.v[i].loc.line == 6 && D.v.v[i].loc.col == 60 &&
            strcmp(D.v.v[i].msg, "PARALLEL_REDUCE: 's' is float[] but 'v' is int[8]; the operands need one element type") == 0)
            found = 1;
    CHECK(found);
    if (!found) for (int i = 0; i < D.v.n; i++) fprintf(stderr, "   %d:%d: %s\n", D.v.v[i].loc.line, D.v.v[i].loc.col, D.v.v[i].msg);
    Sym *r = param(k, "r")->sym, *t = param(k, "t")->sym, *m = param(k, "m")->sym;
    Sym *pp = param(k, "p")->sym, *qq = param(k, "q")->sym;
    CHECK(r->rank == 1 && fe_extent_find(k->shapes, r->ext[0]) == fe_extent_find(k->shapes, m->ext[0]));
    CHECK(t->rank == 2 && strcmp(rep(k, t->ext[0])->name, "K") == 0 && strcmp(rep(k, t->ext[1])->name, "M") == 0);
    CHECK(pp->rank == 1 && !pp->flex && !qq->flex);
    CHECK(fe_extent_find(k->shapes, pp->ext[0]) == fe_extent_find(k->shapes, qq->ext[0]));
}

TEST(reduce_1d)
{
    fresh();
    Kernel *k = K("k", 1);
    P(k, "v", TY_FLOAT, "N");
    P(k, "r", TY_FLOAT, "");
    Prim(k, 5, PRIM_REDUCE, "v", "r");
    expect_ok();
    Sym *r = param(k, "r")->sym;
    CHECK(r->rank == 1 && rep(k, r->ext[0])->value == 1);
}

TEST(literals)
{
    Kernel *k = base();
    StmtList *b = pfor_i(k);
    /* let lo = -2147483648 ; let big = 4294967295u ; let sh = 1 << 31 ; let f = 2.0h */
    Expr *mn = Un(21, 18, OP_NEG, I(21, 19, 2147483648u));
    Stmt *l1 = Decl(ST_LET, 21, "lo", mn);
    Stmt *l2 = Decl(ST_LET, 22, "big", IU(22, 19, 4294967295u));
    Expr *shl = Bin(23, 20, OP_SHL, I(23, 18, 1), I(23, 23, 31));
    Stmt *l3 = Decl(ST_LET, 23, "sh", shl);
    Expr *hv = F(24, 18, 2.0);
    hv->is_half = 1;
    Stmt *l4 = Decl(ST_LET, 24, "hh", hv);
    /* var c = u + 7 (uint); var cmp = 1 < 2 */
    Stmt *l5 = Decl(ST_VAR, 25, "c", Bin(25, 20, OP_ADD, Nm(25, 18, "u"), I(25, 22, 7)));
    Expr *cmp = Bin(26, 20, OP_LT, I(26, 18, 1), I(26, 22, 2));
    Stmt *l6 = Decl(ST_VAR, 26, "cmp", cmp);
    add(b, l1); add(b, l2); add(b, l3); add(b, l4); add(b, l5); add(b, l6);
    expect_ok();
    CHECK(l1->sym->type == TY_INT && mn->a->type == TY_INT);
    CHECK(l2->sym->type == TY_UINT);
    CHECK(l3->sym->type == TY_INT && shl->b->type == TY_INT);
    CHECK(l4->sym->type == TY_HALF);
    CHECK(l5->sym->type == TY_UINT && l5->a->b->type == TY_UINT);
    CHECK(l6->sym->type == TY_BOOL && cmp->a->type == TY_INT);
}

TEST(builtins_ok)
{
    Kernel *k = base();
    /* y = max(sqrt(x), 0) * select(x > 1, 2.0, s) + float(n) */
    Expr *sq = Call(20, 75, "sqrt", 1, Nm(20, 80, "x"));
    Expr *zero = I(20, 84, 0);
    Expr *mx = Call(20, 71, "max", 2, sq, zero);
    Expr *sel = Call(20, 90, "select", 3, Bin(20, 99, OP_GT, Nm(20, 97, "x"), I(20, 101, 1)), F(20, 104, 2.0),
                     Nm(20, 109, "s"));
    Expr *cv = Call(20, 115, "float", 1, Nm(20, 121, "n"));
    map_xy(k, Bin(20, 113, OP_ADD, Bin(20, 88, OP_MUL, mx, sel), cv));
    expect_ok();
    CHECK(sq->builtin == BI_SQRT && mx->builtin == BI_MAX && sel->builtin == BI_SELECT && cv->builtin == BI_FLOATCONV);
    CHECK(zero->type == TY_FLOAT && mx->type == TY_FLOAT && sel->type == TY_FLOAT && cv->type == TY_FLOAT);
    CHECK(sel->args.v[2]->type == TY_FLOAT && cv->args.v[0]->type == TY_INT);
}

TEST(shadowing_ok)
{
    Kernel *k = base();
    StmtList *b = pfor_i(k);
    Stmt *outer = Decl(ST_LET, 21, "t", F(21, 17, 1.0));
    Stmt *ifs = If(22, Bin(22, 14, OP_LT, Nm(22, 12, "i"), IU(22, 16, 4)));
    Stmt *inner = Decl(ST_LET, 23, "t", I(23, 17, 2));
    add(&ifs->body, inner);
    add(b, outer);
    add(b, ifs);
    expect_ok();
    CHECK(outer->sym && inner->sym && outer->sym != inner->sym && inner->sym->type == TY_INT);
}

TEST(multi_kernel_fine)
{
    fresh();
    Kernel *k1 = K("a", 1), *k2 = K("b", 5);
    P(k1, "x", TY_FLOAT, "N");
    P(k2, "x", TY_INT, "N");
    Prim(k1, 3, PRIM_FILL, "", "x")->a = F(3, 19, 1.0);
    Prim(k2, 7, PRIM_FILL, "", "x")->a = I(7, 19, 1);
    expect_ok();
    CHECK(k1->scope != k2->scope && k1->shapes != k2->shapes);
    CHECK(k2->body.v[0]->a->type == TY_INT);
}

/* ===== bad programs: one expected error each ===== */

TEST(err_names)
{
    Kernel *k = base();
    P(k, "weights", TY_FLOAT, "N");
    Prim(k, 20, PRIM_MAP, "x weights", "y")->a = Bin(20, 78, OP_MUL, Nm(20, 71, "wieghts"), I(20, 80, 2));
    expect_error(20, 71, "use of undeclared identifier 'wieghts'; did you mean 'weights'?");

    k = base();
    map_xy(k, Nm(20, 71, "xx"));
    expect_error(20, 71, "use of undeclared identifier 'xx'");
    CHECK(D.v.n == 1 && !strstr(D.v.v[0].msg, "did you mean"));

    k = base();
    map_xy(k, Nm(20, 71, "qwerty"));
    expect_error(20, 71, "use of undeclared identifier 'qwerty'");

    k = base();
    map_xy(k, Nm(20, 71, "m"));
    expect_error(20, 71, "'m' is a buffer but not an input of this PARALLEL_MAP");

    k = base();
    map_xy(k, Ix(20, 71, "x", 1, I(20, 73, 0)));
    expect_error(20, 71, "a PARALLEL_MAP expression cannot index buffers");

    k = base();
    Prim(k, 20, PRIM_FILL, "", "y")->a = Nm(20, 19, "x");
    expect_error(20, 19, "the PARALLEL_FILL value cannot use the buffer 'x'");

    k = base();
    Prim(k, 20, PRIM_ADD, "x s", "y");
    expect_error(20, 30, "PARALLEL_ADD: 's' is a scalar parameter, not a buffer");

    k = base();
    Prim(k, 20, PRIM_COPY, "x", "N");
    expect_error(20, 60, "PARALLEL_COPY: 'N' is a size symbol, not a buffer");

    k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "v", Nm(21, 17, "x")));
    expect_error(21, 17, "buffer 'x' used without an index: write x[...]");

    k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "v", Call(21, 17, "sqr", 1, Nm(21, 21, "s"))));
    expect_error(21, 17, "unknown function 'sqr'; did you mean 'sqrt'?");
}

TEST(err_decls)
{
    Kernel *k = base();
    P(k, "x", TY_FLOAT, NULL);
    expect_error(12, 11, "parameter 'x' is already declared");

    k = base();
    StmtList *b = pfor_i(k);
    add(b, Decl(ST_VAR, 21, "t", I(21, 17, 0)));
    add(b, Decl(ST_LET, 22, "t", I(22, 17, 0)));
    expect_error(22, 13, "'t' is already declared in this block");

    k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "n", I(21, 17, 0)));
    expect_error(21, 13, "'n' is a scalar parameter of the kernel and cannot be redeclared");

    k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "K", I(21, 17, 0)));
    expect_error(21, 13, "'K' is a size symbol of the kernel and cannot be redeclared");

    fresh();
    K("k", 1);
    K("k", 5);
    expect_error(5, 12, "kernel 'k' is already defined");

    fresh();
    k = K("k", 1);
    P(k, "n", TY_UINT, NULL);
    P(k, "x", TY_FLOAT, "n");
    expect_error(3, 20, "'n' is a scalar parameter; an extent must be a literal or a size symbol");
}

TEST(err_assign)
{
    Kernel *k = base();
    StmtList *b = pfor_i(k);
    add(b, Decl(ST_LET, 21, "t", F(21, 17, 0.0)));
    add(b, Asg(22, Nm(22, 9, "t"), OP_ASSIGN, F(22, 13, 1.0)));
    expect_error(22, 9, "cannot assign to 't': it is declared with let");

    k = base();
    add(pfor_i(k), Asg(21, Nm(21, 9, "i"), OP_ADD, I(21, 14, 1)));
    expect_error(21, 9, "cannot assign to 'i': it is an index variable");

    k = base();
    add(pfor_i(k), Asg(21, Nm(21, 9, "s"), OP_ASSIGN, F(21, 13, 1.0)));
    expect_error(21, 9, "cannot assign to 's': scalar parameters are read-only");

    k = base();
    add(pfor_i(k), Asg(21, Nm(21, 9, "N"), OP_ASSIGN, I(21, 13, 1)));
    expect_error(21, 9, "cannot assign to 'N': it is a size symbol");

    k = base();
    add(pfor_i(k), Asg(21, Nm(21, 9, "y"), OP_ASSIGN, F(21, 13, 1.0)));
    expect_error(21, 9, "cannot assign to the buffer 'y' as a whole");

    k = base();
    b = pfor_i(k);
    add(b, Decl(ST_VAR, 21, "c", I(21, 17, 0)));
    add(b, Asg(22, Nm(22, 9, "c"), OP_ASSIGN, F(22, 13, 1.5)));
    expect_error(22, 13, "cannot assign to 'c': expected 'int', got a float literal");

    k = base();
    add(pfor_i(k), Asg(21, Ix(21, 9, "y", 1, Nm(21, 11, "i")), OP_ASSIGN, Nm(21, 16, "n")));
    expect_error(21, 16, "cannot assign to 'y': expected 'float', got 'int': write float(");

    k = base();
    b = pfor_i(k);
    add(b, Decl(ST_VAR, 21, "f", F(21, 17, 0.0)));
    Stmt *s = Asg(22, Nm(22, 9, "f"), OP_BAND, I(22, 14, 1));
    s->loc = L(22, 9, 1);
    add(b, s);
    expect_error(22, 9, "'&=' needs int or uint operands, not 'float'");
}

TEST(err_types)
{
    Kernel *k = base();
    map_xy(k, Bin(20, 73, OP_ADD, Nm(20, 71, "x"), Nm(20, 75, "n")));
    expect_error(20, 73, "cannot mix 'float' and 'int' in '+': write float(");

    k = base();
    StmtList *b = pfor_i(k);
    add(b, Decl(ST_LET, 21, "t", Bin(21, 19, OP_ADD, Nm(21, 17, "n"), Nm(21, 21, "u"))));
    expect_error(21, 19, "cannot mix 'int' and 'uint' in '+'");

    k = base();
    map_xy(k, Bin(20, 73, OP_BAND, Nm(20, 71, "x"), I(20, 75, 1)));
    expect_error(20, 73, "'&' needs int or uint operands, not 'float'");

    k = base();
    map_xy(k, Bin(20, 73, OP_SHL, Nm(20, 71, "x"), I(20, 76, 1)));
    expect_error(20, 73, "'<<' needs int or uint operands, not 'float'");

    k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "t", Bin(21, 19, OP_LAND, Nm(21, 17, "n"), Nm(21, 22, "n"))));
    expect_error(21, 19, "'&&' needs bool operands, not 'int'");

    k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "t", Un(21, 17, OP_NOT, Nm(21, 18, "n"))));
    expect_error(21, 17, "'!' needs a bool operand, not 'int'");

    k = base();
    map_xy(k, Un(20, 71, OP_BNOT, Nm(20, 72, "x")));
    expect_error(20, 71, "'~' needs an int or uint operand, not 'float'");

    k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "t", Un(21, 17, OP_NEG, Bin(21, 20, OP_LT, Nm(21, 18, "n"), I(21, 22, 1)))));
    expect_error(21, 17, "unary '-' needs a number, not 'bool'");

    k = base();
    map_xy(k, Tern(20, 77, Nm(20, 71, "n"), Nm(20, 79, "x"), F(20, 83, 1.0)));
    expect_error(20, 71, "the condition of '?:' must be bool, not 'int'");

    k = base();
    map_xy(k, Tern(20, 77, Bin(20, 73, OP_LT, Nm(20, 71, "x"), Nm(20, 75, "s")), Nm(20, 79, "x"), Nm(20, 83, "n")));
    expect_error(20, 77, "cannot mix 'float' and 'int' in '?:'");

    k = base();
    add(pfor_i(k), If(21, Nm(21, 12, "n")));
    expect_error(21, 12, "an if condition must be bool, not 'int'");

    k = base();
    map_xy(k, Bin(20, 73, OP_EQ, Nm(20, 71, "x"), Bin(20, 78, OP_LT, Nm(20, 76, "x"), Nm(20, 80, "s"))));
    expect_error(20, 73, "cannot mix 'float' and 'bool' in '=='");

    k = base();
    Prim(k, 20, PRIM_MAP, "ix", "ix")->a = Bin(20, 74, OP_MUL, Nm(20, 71, "ix"), F(20, 76, 0.5));
    expect_error(20, 74, "cannot mix 'int' and float literal");
}

TEST(err_builtins)
{
    Kernel *k = base();
    map_xy(k, Call(20, 71, "pow", 1, Nm(20, 75, "x")));
    expect_error(20, 71, "'pow' takes 2 arguments, not 1");

    k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "t", Call(21, 17, "sqrt", 1, Nm(21, 22, "n"))));
    expect_error(21, 17, "'sqrt' needs float or half arguments, not 'int'");

    k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "t", Call(21, 17, "abs", 1, Nm(21, 21, "u"))));
    expect_error(21, 17, "'abs' needs float, half or int arguments, not 'uint': a uint is never negative");

    k = base();
    map_xy(k, Call(20, 71, "min", 2, Nm(20, 75, "x"), Nm(20, 78, "n")));
    expect_error(20, 71, "cannot mix 'float' and 'int' in 'min'");

    k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "t",
                        Call(21, 17, "int", 1, Bin(21, 23, OP_LT, Nm(21, 21, "n"), I(21, 25, 1)))));
    expect_error(21, 17, "cannot convert 'bool' to 'int'");

    k = base();
    map_xy(k, Call(20, 71, "select", 3, Nm(20, 78, "n"), Nm(20, 81, "x"), Nm(20, 84, "x")));
    expect_error(20, 78, "the condition of 'select' must be bool, not 'int'");
}

TEST(err_literals)
{
    Kernel *k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "t", I(21, 17, 3000000000u)));
    expect_error(21, 17, "integer literal 3000000000 does not fit 'int'");

    k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "t", I(21, 17, 5000000000u)));
    expect_error(21, 17, "integer literal 5000000000 is too large");

    k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "t", Bin(21, 19, OP_ADD, Nm(21, 17, "u"), Un(21, 21, OP_NEG, I(21, 22, 1)))));
    expect_error(21, 21, "integer literal -1 does not fit 'uint'");

    k = base();
    Expr *h = Bin(21, 20, OP_ADD, F(21, 17, 1.0), I(21, 22, 70000));
    h->a->is_half = 1;
    add(pfor_i(k), Decl(ST_LET, 21, "t", h));
    expect_error(21, 22, "integer literal 70000 does not fit 'half'");
}

TEST(err_indexing)
{
    Kernel *k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "t", Ix(21, 17, "m", 1, Nm(21, 19, "i"))));
    expect_error(21, 17, "'m' is indexed with 1 index but it is 2-D ('m' is declared float[M][K])");

    k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "t", Ix(21, 17, "x", 1, F(21, 19, 1.0))));
    expect_error(21, 19, "a buffer index must be int or uint, not 'float'");

    k = base();
    add(pfor_i(k), Decl(ST_LET, 21, "t", Ix(21, 17, "s", 1, Nm(21, 19, "i"))));
    expect_error(21, 17, "'s' is a scalar parameter, not a buffer; it cannot be indexed");

    /* a[] indexed 1-D, then a MATMUL operand */
    k = base();
    add(pfor_i(k), Asg(21, Ix(21, 9, "a", 1, Nm(21, 11, "i")), OP_ASSIGN, F(21, 16, 1.0)));
    Prim(k, 22, PRIM_MATMUL, "a w", "b");
    expect_error(22, 20, "PARALLEL_MATMUL: 'a' must be 2-D but it is 1-D ('a' is indexed with 1 index at line 21)");
}

TEST(err_bounds)
{
    Kernel *k = base();
    StmtList *b = pfor_i(k);
    add(b, Decl(ST_VAR, 21, "acc", I(21, 17, 0)));
    add(b, For(22, R(22, 13, "t", I(22, 18, 0), Nm(22, 21, "acc"))));
    expect_error(22, 21, "loop bound cannot use 'acc': it is a var the loop body can change");

    k = base();
    add(pfor_i(k), For(21, R(21, 13, "t", I(21, 18, 0), Nm(21, 21, "i"))));
    expect_error(21, 21, "loop bound cannot use 'i': it is an index variable");

    k = base();
    add(pfor_i(k), For(21, R(21, 13, "t", I(21, 18, 0), Nm(21, 21, "s"))));
    expect_error(21, 21, "loop bound cannot use 's': it is a float parameter");

    k = base();
    add(pfor_i(k), For(21, R(21, 13, "t", I(21, 18, 0), Ix(21, 21, "ix", 1, I(21, 24, 0)))));
    expect_error(21, 21, "loop bound cannot read the buffer 'ix'");

    k = base();
    add(pfor_i(k), For(21, R(21, 13, "t", I(21, 18, 0), Bin(21, 23, OP_SHL, Nm(21, 21, "N"), I(21, 26, 1)))));
    expect_error(21, 23, "loop bound cannot use '<<'");

    k = base();
    add(pfor_i(k), For(21, R(21, 13, "t", I(21, 18, 0), Call(21, 21, "sqrt", 1, Nm(21, 26, "N")))));
    expect_error(21, 21, "loop bound cannot call 'sqrt': only min and max");

    k = base();
    b = pfor_i(k);
    add(b, Decl(ST_LET, 21, "h", Bin(21, 19, OP_ADD, Nm(21, 17, "i"), IU(21, 21, 1))));
    add(b, For(22, R(22, 13, "t", I(22, 18, 0), Nm(22, 21, "h"))));
    expect_error(22, 21, "loop bound cannot use 'h': it is a let whose value is not");

    k = base();
    add(pfor_i(k), For(21, R(21, 13, "t", I(21, 18, 0), F(21, 21, 2.5))));
    expect_error(21, 18, "loop bounds must be int or uint, not 'float'");

    k = base();
    add(pfor_i(k), For(21, R(21, 13, "t", Nm(21, 18, "n"), Nm(21, 21, "N"))));
    expect_error(21, 18, "cannot mix 'int' and 'uint' in '..'");

    k = base();
    Range r = R(20, 18, "i", I(20, 23, 0), Nm(20, 26, "M"));
    Range r2 = R(20, 30, "i", I(20, 35, 0), Nm(20, 38, "N"));
    Range rs[2] = {r, r2};
    PFor(k, 20, 2, rs);
    expect_error(20, 30, "'i' is already declared in this block");
}

TEST(err_shapes)
{
    Kernel *k = base();
    P(k, "z", TY_FLOAT, "M");
    Prim(k, 20, PRIM_MAP, "x z", "y")->a = Bin(20, 73, OP_ADD, Nm(20, 71, "x"), Nm(20, 75, "z"));
    expect_error(20, 30,
                 "PARALLEL_MAP: 'z' is float[M] but 'x' is float[N]; operands of an elementwise primitive need one shape");

    k = base();
    P(k, "p4", TY_FLOAT, "4");
    P(k, "p8", TY_FLOAT, "8");
    Prim(k, 20, PRIM_ADD, "p4 p8", "a");
    expect_error(20, 30, "PARALLEL_ADD: 'p8' is float[8] but 'p4' is float[4]");

    k = base();
    P(k, "p4", TY_FLOAT, "4");
    Prim(k, 20, PRIM_COPY, "x", "p4");
    expect_error(20, 60, "PARALLEL_COPY: 'p4' is float[4] but 'x' is float[N]; the output needs the input's shape");

    k = base();
    Prim(k, 20, PRIM_SUB, "x m", "y");
    expect_error(20, 30, "PARALLEL_SUB: 'm' is float[M][K] but 'x' is float[N]; operands of an elementwise");

    k = base();
    Prim(k, 20, PRIM_MATMUL, "x w", "a");
    expect_error(20, 20, "PARALLEL_MATMUL: 'x' must be 2-D but it is 1-D ('x' is declared float[N])");

    k = base();
    Prim(k, 20, PRIM_MATMUL, "m m", "a");
    expect_error(20, 5, "PARALLEL_MATMUL: 'm' is float[M][K] and 'm' is float[M][K]; the columns of 'm' must equal the rows of 'm'");

    k = base();
    P(k, "o", TY_FLOAT, "M,M");
    Prim(k, 20, PRIM_MATMUL, "m w", "o");
    expect_error(20, 5, "PARALLEL_MATMUL: 'o' is float[M][M] but the product of 'm' and 'w' is [M][N]");

    k = base();
    Prim(k, 20, PRIM_MATMUL, "m w", "m");
    expect_error(20, 60, "PARALLEL_MATMUL: the output 'm' must differ from the inputs");

    k = base();
    P(k, "t", TY_FLOAT, "M,K");
    Prim(k, 20, PRIM_TRANSPOSE, "m", "t");
    expect_error(20, 60, "PARALLEL_TRANSPOSE: 't' is float[M][K] but the transpose of 'm' is [K][M]");

    k = base();
    Prim(k, 20, PRIM_REDUCE, "m", "w");
    expect_error(20, 60, "PARALLEL_REDUCE: 'w' must be 1-D but it is 2-D ('w' is declared float[K][N])");

    k = base();
    Prim(k, 20, PRIM_REDUCE, "m", "x");
    expect_error(20, 60, "PARALLEL_REDUCE: 'x' is float[N] but reducing 'm' gives [M]");

    k = base();
    P(k, "c3", TY_FLOAT, "2,3,4");
    Prim(k, 20, PRIM_SOFTMAX, "c3", "a");
    expect_error(20, 20, "PARALLEL_SOFTMAX: 'c3' is 3-D ('c3' is declared float[2][3][4]); the input must be 1-D or 2-D");

    /* an implicit extent meets two different symbols */
    k = base();
    P(k, "z", TY_FLOAT, "M");
    Prim(k, 20, PRIM_ADD, "a x", "b");
    Prim(k, 21, PRIM_ADD, "a z", "b");
    expect_error(21, 30, "PARALLEL_ADD: 'z' is float[M] but 'a' is float[] with shape [N]");

    /* a T[] group of rank 2 meets a declared 1-D buffer */
    k = base();
    Prim(k, 20, PRIM_MATMUL, "m w", "a");
    Prim(k, 21, PRIM_ADD, "a x", "b");
    expect_error(21, 30, "PARALLEL_ADD: 'x' is 1-D but 'a' is 2-D ('x' is declared float[N]; 'a' is the output of "
                         "PARALLEL_MATMUL at line 20)");
}

TEST(err_elem_types)
{
    Kernel *k = base();
    Prim(k, 20, PRIM_ADD, "x ix", "y");
    expect_error(20, 30, "PARALLEL_ADD: 'ix' is int[N] but 'x' is float[N]; the operands need one element type");

    k = base();
    P(k, "mi", TY_INT, "M,K");
    Prim(k, 20, PRIM_MATMUL, "mi w", "a");
    expect_error(20, 20, "PARALLEL_MATMUL needs float or half buffers; 'mi' is int[M][K]");

    k = base();
    Prim(k, 20, PRIM_SOFTMAX, "ix", "a");
    expect_error(20, 20, "PARALLEL_SOFTMAX needs a float or half buffer; 'ix' is int[N]");

    k = base();
    Prim(k, 20, PRIM_MAP, "x", "ix")->a = Nm(20, 71, "x");
    expect_error(20, 71, "PARALLEL_MAP: the value stored to 'ix' (int[N]): expected 'int', got 'float': write int(");

    k = base();
    Prim(k, 20, PRIM_FILL, "", "ix")->a = F(20, 19, 1.5);
    expect_error(20, 19, "PARALLEL_FILL: the value stored to 'ix' (int[N]): expected 'int', got a float literal");
}

TEST(no_cascade)
{
    /* one undeclared name inside a big expression: one error */
    Kernel *k = base();
    Expr *e = Nm(20, 71, "nope");
    for (int i = 0; i < 300; i++) e = Bin(20, 70, OP_ADD, Call(20, 70, "sqrt", 1, e), Nm(20, 70, "x"));
    map_xy(k, e);
    expect_error(20, 71, "use of undeclared identifier 'nope'");

    /* errors in two statements are both reported */
    k = base();
    map_xy(k, Nm(20, 71, "nope"));
    Prim(k, 21, PRIM_MAP, "x", "y")->a = Nm(21, 71, "nope2");
    run();
    CHECK(D.nerrors == 2);
}

int main(void)
{
    RUN(seed_kernel);
    RUN(werror_implicit);
    RUN(map_types);
    RUN(map_untyped_and_size);
    RUN(thread_code);
    RUN(thread_code_ranks);
    RUN(flex_groups);
    RUN(reduce_transpose_shapes);
    RUN(reduce_1d);
    RUN(literals);
    RUN(builtins_ok);
    RUN(shadowing_ok);
    RUN(multi_kernel_fine);
    RUN(err_names);
    RUN(err_decls);
    RUN(err_assign);
    RUN(err_types);
    RUN(err_builtins);
    RUN(err_literals);
    RUN(err_indexing);
    RUN(err_bounds);
    RUN(err_shapes);
    RUN(err_elem_types);
    RUN(no_cascade);
    if (A) fe_arena_free(A);
    return TEST_DONE();
}
