/* ast.c — the syntax tree's name tables and the constructors the grammar
 * calls (one call per grammar action). Constructors never recurse, so
 * building a tree of any depth costs constant stack; they also enforce the
 * structural rules the grammar leaves open (see FeBuild in fe.h), so every
 * tree handed to sema is within FE_MAX_NEST and has the documented shape. */
#include "fe.h"

/* ===== expressions ===== */

static Expr *expr_new(Arena *a, ExprKind k, Loc loc)
{
    Expr *e = fe_alloc(a, sizeof *e);
    e->kind = k;
    e->loc = loc;
    e->oploc = loc;
    e->depth = 1;
    return e;
}

static int max2(int a, int b) { return a > b ? a : b; }

Expr *fe_int_lit(Arena *a, Loc loc, uint64_t v, int is_unsigned)
{
    Expr *e = expr_new(a, EX_INT, loc);
    e->ival = v;
    e->is_unsigned = is_unsigned;
    return e;
}

Expr *fe_float_lit(Arena *a, Loc loc, double v, int is_half)
{
    Expr *e = expr_new(a, EX_FLOAT, loc);
    e->fval = v;
    e->is_half = is_half;
    return e;
}

Expr *fe_name(Arena *a, Loc loc, const char *name)
{
    Expr *e = expr_new(a, EX_NAME, loc);
    e->name = name;
    return e;
}

Expr *fe_unary(Arena *a, Loc oploc, FeOp op, Expr *x)
{
    Expr *e = expr_new(a, EX_UNARY, fe_loc_span(oploc, x->loc));
    e->oploc = oploc;
    e->op = op;
    e->a = x;
    e->depth = x->depth + 1;
    return e;
}

Expr *fe_binary(Arena *a, Loc oploc, FeOp op, Expr *l, Expr *r)
{
    Expr *e = expr_new(a, EX_BINARY, fe_loc_span(l->loc, r->loc));
    e->oploc = oploc;
    e->op = op;
    e->a = l;
    e->b = r;
    e->depth = max2(l->depth, r->depth) + 1;
    return e;
}

Expr *fe_ternary(Arena *a, Loc qloc, Expr *c, Expr *t, Expr *f)
{
    Expr *e = expr_new(a, EX_TERNARY, fe_loc_span(c->loc, f->loc));
    e->oploc = qloc;
    e->a = c;
    e->b = t;
    e->c = f;
    e->depth = max2(c->depth, max2(t->depth, f->depth)) + 1;
    return e;
}

/* a[i][j] is one EX_INDEX holding every index, so `base` is the name or an
 * index node still being extended. */
Expr *fe_index(Arena *a, Expr *base, Expr *idx)
{
    Expr *e = base;
    if (base->kind == EX_NAME) {
        e = expr_new(a, EX_INDEX, base->loc);
        e->name = base->name;
        e->oploc = base->loc;
        e->depth = 1;
    } else if (base->kind != EX_INDEX) {
        fe_unreachable();
    }
    FE_PUSH(a, e->args, idx);
    e->loc = fe_loc_span(e->loc, idx->loc);
    e->depth = max2(e->depth, idx->depth + 1);
    return e;
}

Expr *fe_call(Arena *a, Expr *callee, Expr *firstarg)
{
    FE_ASSERT(callee->kind == EX_NAME);
    Expr *e = expr_new(a, EX_CALL, callee->loc);
    e->name = callee->name;
    e->oploc = callee->loc;
    return firstarg ? fe_call_arg(a, e, firstarg) : e;
}

Expr *fe_call_arg(Arena *a, Expr *call, Expr *arg)
{
    FE_PUSH(a, call->args, arg);
    call->loc = fe_loc_span(call->loc, arg->loc);
    call->depth = max2(call->depth, arg->depth + 1);
    return call;
}

Expr *fe_paren(Arena *a, Loc loc, Expr *e)
{
    (void)a;
    /* only ever widen: a range over several lines is just its first token */
    if (loc.line == e->loc.line && loc.col <= e->loc.col &&
        loc.col + loc.len >= e->loc.col + e->loc.len)
        e->loc = loc;
    return e;
}

/* ===== limits ===== */

void fe_build_init(FeBuild *b, Arena *a, Diags *d)
{
    memset(b, 0, sizeof *b);
    b->arena = a;
    b->d = d;
    b->prog = fe_alloc(a, sizeof *b->prog);
}

void fe_nest_error(FeBuild *b, Loc loc, const char *what)
{
    if (b->deep_reported) return;
    b->deep_reported = 1;
    fe_error(b->d, loc, "%s nested too deeply (limit %d)", what, FE_MAX_NEST);
}

/* Every expression reaches the tree through here: one that is too tall is
 * replaced by a literal, so later recursive walkers stay bounded. */
static Expr *expr_limit(FeBuild *b, Expr *e)
{
    if (!e || e->depth <= FE_MAX_NEST) return e;
    fe_nest_error(b, e->loc, "expression");
    return fe_int_lit(b->arena, e->loc, 0, 0);
}

static int list_depth(const StmtList *l)
{
    int d = 0;
    for (int i = 0; l && i < l->n; i++) d = max2(d, l->v[i]->depth);
    return d;
}

/* A statement holding blocks: its depth is one more than theirs; beyond the
 * limit its blocks are dropped (after one error) to keep the tree bounded. */
static void stmt_limit(FeBuild *b, Stmt *s)
{
    s->depth = max2(list_depth(&s->body), list_depth(&s->els)) + 1;
    if (s->depth <= FE_MAX_NEST) return;
    fe_nest_error(b, s->loc, "statements");
    memset(&s->body, 0, sizeof s->body);
    memset(&s->els, 0, sizeof s->els);
    s->depth = 1;
}

/* ===== types ===== */

TypeSpec *fe_type_scalar(FeBuild *b, Loc loc, ScalarType t)
{
    TypeSpec *ts = fe_alloc(b->arena, sizeof *ts);
    ts->elem = t;
    ts->loc = loc;
    return ts;
}

TypeSpec *fe_type_unranked(FeBuild *b, TypeSpec *t, Loc loc)
{
    if (t->is_buffer) {
        fe_error(b->d, loc, "'[]' must be the only dimension of a buffer type");
        return t;
    }
    t->is_buffer = 1;
    t->unranked = 1;
    t->loc = fe_loc_span(t->loc, loc);
    return t;
}

TypeSpec *fe_type_dim(FeBuild *b, TypeSpec *t, Loc loc, uint64_t v, const char *sym)
{
    t->loc = fe_loc_span(t->loc, loc);
    if (t->unranked) {
        fe_error(b->d, loc, "'[]' must be the only dimension of a buffer type");
        return t;
    }
    if (t->rank == 4) {
        fe_error(b->d, loc, "a buffer has at most 4 dimensions");
        t->rank = 5; /* report once per type */
        return t;
    }
    if (t->rank > 4) return t;
    if (!sym && v == 0) {
        fe_error(b->d, loc, "a buffer extent must be at least 1");
        v = 1;
    } else if (!sym && v > INT32_MAX) {
        fe_error(b->d, loc, "buffer extent %llu is too large (limit %d)",
                 (unsigned long long)v, INT32_MAX);
        v = 1;
    }
    DimSpec *ds = &t->dims[t->rank++];
    ds->is_sym = sym != NULL;
    ds->value = sym ? 0 : v;
    ds->name = sym;
    ds->loc = loc;
    t->is_buffer = 1;
    return t;
}

/* ===== kernels ===== */

static void kernel_close(FeBuild *b)
{
    b->k = NULL;
    b->in_code = 0;
}

void fe_kernel_begin(FeBuild *b, Loc kwloc, Loc nameloc, const char *name)
{
    if (b->k) {
        fe_error(b->d, kwloc, "missing GPU_END before GPU_KERNEL");
        fe_note(b->d, b->k->loc, "kernel '%s' starts here", b->k->name);
    }
    Kernel *k = fe_alloc(b->arena, sizeof *k);
    k->name = name;
    k->loc = nameloc;
    k->cls = CLASS_NONE;
    FE_PUSH(b->arena, b->prog->kernels, k);
    b->k = k;
    b->in_code = 0;
}

/* Header lines need an open kernel whose GPU_THREAD_CODE: has not come. */
static int header_ok(FeBuild *b, Loc loc, const char *what)
{
    if (!b->k) {
        fe_error(b->d, loc, "%s outside a kernel (missing GPU_KERNEL)", what);
        return 0;
    }
    if (b->in_code) {
        fe_error(b->d, loc, "%s must come before GPU_THREAD_CODE:", what);
        return 0;
    }
    return 1;
}

void fe_param_add(FeBuild *b, Loc nameloc, const char *name, TypeSpec *t)
{
    if (!header_ok(b, nameloc, "GPU_PARAM")) return;
    Param p = {0};
    p.name = name;
    p.type = *t;
    if (p.type.rank > 4) p.type.rank = 4;
    p.loc = nameloc;
    FE_PUSH(b->arena, b->k->params, p);
}

void fe_kernel_class(FeBuild *b, Loc loc, FeClass c)
{
    if (!header_ok(b, loc, "GPU_CLASS")) return;
    Kernel *k = b->k;
    if (k->cls != CLASS_NONE && k->clsloc.line) {
        fe_error(b->d, loc, "GPU_CLASS given twice");
        return;
    }
    if (k->deadline_ns && c != CLASS_REALTIME) {
        fe_error(b->d, loc, "GPU_CLASS %s contradicts GPU_DEADLINE (a deadline implies REALTIME)",
                 fe_class_names[c]);
        return;
    }
    k->cls = c;
    k->clsloc = loc;
}

void fe_kernel_deadline(FeBuild *b, Loc loc, double ns)
{
    if (!header_ok(b, loc, "GPU_DEADLINE")) return;
    Kernel *k = b->k;
    if (k->deadline_ns) {
        fe_error(b->d, loc, "GPU_DEADLINE given twice");
        return;
    }
    if (k->cls != CLASS_NONE && k->cls != CLASS_REALTIME) {
        fe_error(b->d, loc, "GPU_DEADLINE contradicts GPU_CLASS %s (a deadline implies REALTIME)",
                 fe_class_names[k->cls]);
        return;
    }
    /* 1e18 ns is about 31 years: far beyond any deadline, well inside uint64. */
    if (!(ns >= 0.5)) {
        fe_error(b->d, loc, "a deadline must be at least 1ns");
        return;
    }
    if (ns > 1e18) {
        fe_error(b->d, loc, "deadline too large");
        return;
    }
    k->deadline_ns = (uint64_t)(ns + 0.5);
    k->deadlineloc = loc;
}

void fe_kernel_code(FeBuild *b, Loc loc)
{
    if (!b->k) {
        fe_error(b->d, loc, "GPU_THREAD_CODE: outside a kernel (missing GPU_KERNEL)");
        return;
    }
    if (b->in_code) {
        fe_error(b->d, loc, "GPU_THREAD_CODE: given twice");
        return;
    }
    b->in_code = 1;
}

static const char *stmt_word(const Stmt *s)
{
    switch (s->kind) {
    case ST_LET: return "'let'";
    case ST_VAR: return "'var'";
    case ST_ASSIGN: return "an assignment";
    case ST_IF: return "'if'";
    case ST_FOR: return "'for'";
    case ST_PARALLEL: return fe_prim_names[s->prim];
    }
    return "?";
}

void fe_kernel_stmt(FeBuild *b, Stmt *s)
{
    if (!b->k) {
        fe_error(b->d, s->loc, "statement outside a kernel (missing GPU_KERNEL)");
        return;
    }
    if (!b->in_code) {
        fe_error(b->d, s->loc, "statement before GPU_THREAD_CODE:");
        b->in_code = 1; /* one error, not one per statement */
    }
    if (s->kind != ST_PARALLEL) {
        fe_error(b->d, s->loc, "%s is thread code: it belongs inside a PARALLEL_FOR block",
                 stmt_word(s));
        return;
    }
    FE_PUSH(b->arena, b->k->body, s);
}

void fe_kernel_end(FeBuild *b, Loc loc)
{
    if (!b->k) {
        fe_error(b->d, loc, "GPU_END without GPU_KERNEL");
        return;
    }
    if (!b->in_code) fe_error(b->d, loc, "kernel '%s' has no GPU_THREAD_CODE: section", b->k->name);
    b->k->endloc = loc;
    kernel_close(b);
}

void fe_program_finish(FeBuild *b, Loc eofloc)
{
    /* A syntax error at end of file already said what is missing. */
    int said = b->d->v.n > 0 && b->d->v.v[b->d->v.n - 1].loc.off == eofloc.off &&
               b->d->v.v[b->d->v.n - 1].loc.line == eofloc.line;
    if (b->k) {
        if (!said) fe_error(b->d, eofloc, "missing GPU_END at end of file");
        if (!said) fe_note(b->d, b->k->loc, "kernel '%s' starts here", b->k->name);
        kernel_close(b);
    }
    if (b->prog->kernels.n == 0 && b->d->nerrors == 0) {
        Loc first = {1, 1, 0, 0}; /* every diagnostic has file:line:col */
        fe_error(b->d, first, "no GPU_KERNEL in file");
    }
}

/* ===== statements ===== */

static Stmt *stmt_new(FeBuild *b, StmtKind k, Loc loc)
{
    Stmt *s = fe_alloc(b->arena, sizeof *s);
    s->kind = k;
    s->loc = loc;
    s->depth = 1;
    return s;
}

Range *fe_range(FeBuild *b, Loc varloc, const char *var, Expr *lo, Expr *hi)
{
    Range *r = fe_alloc(b->arena, sizeof *r);
    r->var = var;
    r->varloc = varloc;
    r->lo = expr_limit(b, lo);
    r->hi = expr_limit(b, hi);
    return r;
}

void fe_range_word(FeBuild *b, Loc loc, const char *word)
{
    if (strcmp(word, "in") != 0)
        fe_error(b->d, loc, "expected 'IN' in a range, found '%.40s'", word);
}

StmtList *fe_block_new(FeBuild *b) { return fe_alloc(b->arena, sizeof(StmtList)); }

StmtList *fe_block_add(FeBuild *b, StmtList *l, Stmt *s)
{
    if (s->kind == ST_PARALLEL) {
        fe_error(b->d, s->loc, "%s cannot be nested in a block: parallel statements stand "
                 "at the top of GPU_THREAD_CODE:", fe_prim_names[s->prim]);
        return l;
    }
    FE_PUSH(b->arena, *l, s);
    return l;
}

Stmt *fe_stmt_let(FeBuild *b, Loc kwloc, Loc nameloc, const char *name, Expr *e, int is_var)
{
    Stmt *s = stmt_new(b, is_var ? ST_VAR : ST_LET, kwloc);
    s->name = name;
    s->nameloc = nameloc;
    s->a = expr_limit(b, e);
    return s;
}

Stmt *fe_stmt_assign(FeBuild *b, Expr *target, FeOp op, Expr *e)
{
    Stmt *s = stmt_new(b, ST_ASSIGN, target->loc);
    s->target = expr_limit(b, target);
    s->op = op;
    s->a = expr_limit(b, e);
    return s;
}

Stmt *fe_stmt_if(FeBuild *b, Loc kwloc, Expr *cond, StmtList *then, StmtList *els, Stmt *elif)
{
    Stmt *s = stmt_new(b, ST_IF, kwloc);
    s->a = expr_limit(b, cond);
    if (then) s->body = *then;
    if (els) {
        s->els = *els;
        s->has_else = 1;
    } else if (elif) {
        FE_PUSH(b->arena, s->els, elif);
        s->has_else = 1;
    }
    stmt_limit(b, s);
    return s;
}

Stmt *fe_stmt_for(FeBuild *b, Loc kwloc, Range *r, StmtList *body)
{
    Stmt *s = stmt_new(b, ST_FOR, kwloc);
    FE_PUSH(b->arena, s->ranges, *r);
    if (body) s->body = *body;
    stmt_limit(b, s);
    return s;
}

Stmt *fe_stmt_prim(FeBuild *b, Loc kwloc, FePrim p, FeReduceOp rop)
{
    Stmt *s = stmt_new(b, ST_PARALLEL, kwloc);
    s->prim = p;
    s->rop = rop;
    return s;
}

Stmt *fe_stmt_operand(FeBuild *b, Stmt *s, Loc loc, const char *name)
{
    Operand o = {name, loc, NULL};
    FE_PUSH(b->arena, s->in, o);
    return s;
}

Stmt *fe_stmt_output(FeBuild *b, Stmt *s, Loc loc, const char *name, Expr *e)
{
    const char *pn = fe_prim_names[s->prim];
    int want = fe_prim_arity[s->prim];
    s->out.name = name;
    s->out.loc = loc;
    if (want < 0 && s->in.n == 0) {
        fe_error(b->d, s->loc, "%s needs at least one input before the arrow", pn);
    } else if (want >= 0 && s->in.n != want) {
        fe_error(b->d, s->in.n > want ? s->in.v[want].loc : s->loc,
                 "%s takes %d operand%s before the arrow, found %d", pn, want,
                 want == 1 ? "" : "s", s->in.n);
        if (s->in.n > want) s->in.n = want;
    }
    if (s->prim == PRIM_MAP) {
        if (!e) {
            fe_error(b->d, loc, "PARALLEL_MAP needs ': expr' after its output");
            e = fe_float_lit(b->arena, loc, 0.0, 0);
        }
        s->a = expr_limit(b, e);
    } else if (e) {
        fe_error(b->d, e->loc, "only PARALLEL_MAP takes ': expr'");
    }
    /* Keep the promised shape when inputs were missing: sema sees the
     * right count, the output standing in for absent inputs. */
    while (want >= 0 && s->in.n < want) FE_PUSH(b->arena, s->in, s->out);
    if (want < 0 && s->in.n == 0) FE_PUSH(b->arena, s->in, s->out);
    return s;
}

Stmt *fe_stmt_fill(FeBuild *b, Loc kwloc, Expr *e, Loc outloc, const char *out)
{
    Stmt *s = stmt_new(b, ST_PARALLEL, kwloc);
    s->prim = PRIM_FILL;
    s->a = expr_limit(b, e);
    s->out.name = out;
    s->out.loc = outloc;
    return s;
}

Stmt *fe_stmt_pfor(FeBuild *b, Loc kwloc, Range *r)
{
    Stmt *s = stmt_new(b, ST_PARALLEL, kwloc);
    s->prim = PRIM_FOR;
    FE_PUSH(b->arena, s->ranges, *r);
    return s;
}

Stmt *fe_stmt_pfor_range(FeBuild *b, Stmt *s, Range *r)
{
    if (s->ranges.n == 3) {
        fe_error(b->d, r->varloc, "PARALLEL_FOR has at most 3 ranges");
        return s;
    }
    FE_PUSH(b->arena, s->ranges, *r);
    return s;
}

Stmt *fe_stmt_pfor_body(FeBuild *b, Stmt *s, StmtList *body)
{
    if (body) s->body = *body;
    stmt_limit(b, s);
    return s;
}
