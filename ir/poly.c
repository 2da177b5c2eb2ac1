/* poly.c — exact integer polynomials for the cost analysis (see ir.h).
 *
 * Invariants of every IrPoly built here: terms are in canonical order
 * (poly_term_cmp), no two terms have one monomial, no coefficient is 0,
 * and factors inside a term are sorted by atom with exponents >= 1. All
 * arithmetic is checked: an overflowing coefficient or exponent makes the
 * result `overflow`, which stays sticky through later operations. */
#include "ir.h"

#include <math.h>
#include <stdlib.h>

void ir_atoms_init(IrAtoms *at, Arena *a, const IrKernel *k)
{
    memset(at, 0, sizeof *at);
    at->arena = a;
    at->k = k;
}

static IrPoly *poly_new(Arena *a, int n)
{
    IrPoly *p = fe_alloc(a, sizeof *p);
    p->t = n ? fe_alloc(a, (size_t)n * sizeof *p->t) : NULL;
    return p;
}

static IrPoly *poly_overflow(Arena *a)
{
    IrPoly *p = poly_new(a, 0);
    p->overflow = 1;
    return p;
}

IrPoly *ir_poly_const(Arena *a, int64_t c)
{
    IrPoly *p = poly_new(a, c != 0);
    if (c) {
        p->n = 1;
        p->t[0].c = c;
    }
    return p;
}

IrPoly *ir_poly_atom(Arena *a, int atom)
{
    IrPoly *p = poly_new(a, 1);
    p->n = 1;
    p->t[0].c = 1;
    p->t[0].nf = 1;
    p->t[0].f = fe_alloc(a, sizeof(IrPolyFactor));
    p->t[0].f[0].atom = atom;
    p->t[0].f[0].exp = 1;
    return p;
}

static int term_degree(const IrPolyTerm *t)
{
    int d = 0;
    for (int i = 0; i < t->nf; i++) d += t->f[i].exp;
    return d;
}

/* Graded lex: higher total degree first; then, at the first atom where the
 * exponents differ (atoms in increasing id), the larger exponent first. */
static int term_cmp(const IrPolyTerm *x, const IrPolyTerm *y)
{
    int dx = term_degree(x), dy = term_degree(y);
    if (dx != dy) return dx > dy ? -1 : 1;
    int i = 0, j = 0;
    while (i < x->nf && j < y->nf) {
        if (x->f[i].atom != y->f[j].atom)
            return x->f[i].atom < y->f[j].atom ? -1 : 1; /* x has the earlier atom */
        if (x->f[i].exp != y->f[j].exp) return x->f[i].exp > y->f[j].exp ? -1 : 1;
        i++, j++;
    }
    if (i < x->nf) return -1;
    if (j < y->nf) return 1;
    return 0;
}

/* Merge of two canonical term lists, each scaled (sx, sy = +1 or -1). */
static IrPoly *poly_merge(Arena *a, const IrPoly *x, const IrPoly *y, int sy)
{
    if (x->overflow || y->overflow) return poly_overflow(a);
    IrPoly *p = poly_new(a, x->n + y->n);
    int i = 0, j = 0;
    while (i < x->n || j < y->n) {
        int c = i >= x->n ? 1 : j >= y->n ? -1 : term_cmp(&x->t[i], &y->t[j]);
        IrPolyTerm t;
        if (c < 0) {
            t = x->t[i++];
        } else if (c > 0) {
            t = y->t[j++];
            if (sy < 0) {
                if (t.c == INT64_MIN) return poly_overflow(a);
                t.c = -t.c;
            }
        } else {
            t = x->t[i];
            int64_t r;
            int ovf = sy > 0 ? __builtin_add_overflow(x->t[i].c, y->t[j].c, &r)
                             : __builtin_sub_overflow(x->t[i].c, y->t[j].c, &r);
            if (ovf) return poly_overflow(a);
            t.c = r;
            i++, j++;
        }
        if (t.c) p->t[p->n++] = t;
    }
    return p;
}

IrPoly *ir_poly_add(Arena *a, const IrPoly *x, const IrPoly *y) { return poly_merge(a, x, y, 1); }
IrPoly *ir_poly_sub(Arena *a, const IrPoly *x, const IrPoly *y) { return poly_merge(a, x, y, -1); }

/* Product of two monomials; 0 on exponent overflow. */
static int mono_mul(Arena *a, const IrPolyTerm *x, const IrPolyTerm *y, IrPolyTerm *out)
{
    out->nf = 0;
    out->f = (x->nf + y->nf) ? fe_alloc(a, (size_t)(x->nf + y->nf) * sizeof(IrPolyFactor)) : NULL;
    int i = 0, j = 0;
    while (i < x->nf || j < y->nf) {
        IrPolyFactor f;
        if (j >= y->nf || (i < x->nf && x->f[i].atom < y->f[j].atom)) {
            f = x->f[i++];
        } else if (i >= x->nf || y->f[j].atom < x->f[i].atom) {
            f = y->f[j++];
        } else {
            f = x->f[i];
            if (__builtin_add_overflow(x->f[i].exp, y->f[j].exp, &f.exp)) return 0;
            i++, j++;
        }
        out->f[out->nf++] = f;
    }
    return 1;
}

static int term_qsort_cmp(const void *x, const void *y) { return term_cmp(x, y); }

IrPoly *ir_poly_mul(Arena *a, const IrPoly *x, const IrPoly *y)
{
    if (x->overflow || y->overflow) return poly_overflow(a);
    if (!x->n || !y->n) return ir_poly_const(a, 0);
    if ((size_t)x->n * (size_t)y->n > (1u << 20)) return poly_overflow(a);
    int n = x->n * y->n;
    IrPolyTerm *t = fe_alloc(a, (size_t)n * sizeof *t);
    int k = 0;
    for (int i = 0; i < x->n; i++)
        for (int j = 0; j < y->n; j++) {
            if (__builtin_mul_overflow(x->t[i].c, y->t[j].c, &t[k].c)) return poly_overflow(a);
            if (!mono_mul(a, &x->t[i], &y->t[j], &t[k])) return poly_overflow(a);
            k++;
        }
    qsort(t, (size_t)n, sizeof *t, term_qsort_cmp);
    IrPoly *p = poly_new(a, n);
    for (int i = 0; i < n; i++) {
        if (p->n && term_cmp(&p->t[p->n - 1], &t[i]) == 0) {
            if (__builtin_add_overflow(p->t[p->n - 1].c, t[i].c, &p->t[p->n - 1].c))
                return poly_overflow(a);
        } else {
            p->t[p->n++] = t[i];
        }
    }
    /* drop terms that cancelled */
    int m = 0;
    for (int i = 0; i < p->n; i++)
        if (p->t[i].c) p->t[m++] = p->t[i];
    p->n = m;
    return p;
}

IrPoly *ir_poly_scale(Arena *a, const IrPoly *x, int64_t c)
{
    return ir_poly_mul(a, x, ir_poly_const(a, c));
}

IrPoly *ir_poly_max(Arena *a, const IrPoly *x, const IrPoly *y)
{
    if (x->overflow || y->overflow) return poly_overflow(a);
    IrPoly *p = poly_new(a, x->n + y->n);
    int i = 0, j = 0;
    while (i < x->n || j < y->n) {
        int c = i >= x->n ? 1 : j >= y->n ? -1 : term_cmp(&x->t[i], &y->t[j]);
        IrPolyTerm t;
        /* A term only one side has is compared with 0 there. */
        if (c < 0) {
            t = x->t[i++];
            if (t.c < 0) t.c = 0;
        } else if (c > 0) {
            t = y->t[j++];
            if (t.c < 0) t.c = 0;
        } else {
            t = x->t[i];
            if (y->t[j].c > t.c) t.c = y->t[j].c;
            i++, j++;
        }
        if (t.c) p->t[p->n++] = t;
    }
    return p;
}

int ir_poly_is_const(const IrPoly *p, int64_t *c)
{
    if (p->overflow) return 0;
    if (p->n == 0) {
        if (c) *c = 0;
        return 1;
    }
    if (p->n == 1 && p->t[0].nf == 0) {
        if (c) *c = p->t[0].c;
        return 1;
    }
    return 0;
}

int ir_poly_equal(const IrPoly *x, const IrPoly *y)
{
    if (x->overflow || y->overflow) return x->overflow == y->overflow;
    if (x->n != y->n) return 0;
    for (int i = 0; i < x->n; i++)
        if (x->t[i].c != y->t[i].c || term_cmp(&x->t[i], &y->t[i]) != 0) return 0;
    return 1;
}

int ir_poly_dominates(Arena *a, const IrPoly *x, const IrPoly *y)
{
    IrPoly *d = ir_poly_sub(a, x, y);
    if (d->overflow) return 0;
    for (int i = 0; i < d->n; i++)
        if (d->t[i].c < 0) return 0;
    return 1;
}

static int nsyms(const IrAtoms *at) { return at->k ? at->k->syms.n : 0; }
static int nparams(const IrAtoms *at) { return at->k ? at->k->params.n : 0; }

static int size_degree(const IrSize *s)
{
    int x, y;
    switch (s->op) {
    case SZ_CONST: return 0;
    case SZ_SYM:
    case SZ_PARAM: return 1;
    case SZ_MUL: return size_degree(s->a) + size_degree(s->b);
    case SZ_DIV:
    case SZ_CEILDIV: return size_degree(s->a);
    case SZ_REM: return size_degree(s->b);
    default:
        x = size_degree(s->a);
        y = size_degree(s->b);
        return x > y ? x : y;
    }
}

static int atom_degree(const IrAtoms *at, int atom)
{
    int o = atom - nsyms(at) - nparams(at);
    if (o < 0) return 1;
    FE_ASSERT(o < at->opaque.n);
    return size_degree(at->opaque.v[o]);
}

int ir_poly_degree(const IrAtoms *at, const IrPoly *p)
{
    int best = 0;
    for (int i = 0; i < p->n; i++) {
        int d = 0;
        for (int j = 0; j < p->t[i].nf; j++) d += p->t[i].f[j].exp * atom_degree(at, p->t[i].f[j].atom);
        if (d > best) best = d;
    }
    return best;
}

static int opaque_atom(IrAtoms *at, const IrSize *s)
{
    for (int i = 0; i < at->opaque.n; i++)
        if (ir_size_equal(at->opaque.v[i], s)) return nsyms(at) + nparams(at) + i;
    FE_PUSH(at->arena, at->opaque, s);
    return nsyms(at) + nparams(at) + at->opaque.n - 1;
}

IrPoly *ir_poly_from_size(IrAtoms *at, const IrSize *s)
{
    Arena *a = at->arena;
    int64_t c;
    switch (s->op) {
    case SZ_CONST: return ir_poly_const(a, s->c);
    case SZ_SYM: return ir_poly_atom(a, s->sym);
    case SZ_PARAM: return ir_poly_atom(a, nsyms(at) + s->sym);
    case SZ_ADD: return ir_poly_add(a, ir_poly_from_size(at, s->a), ir_poly_from_size(at, s->b));
    case SZ_SUB: return ir_poly_sub(a, ir_poly_from_size(at, s->a), ir_poly_from_size(at, s->b));
    case SZ_MUL: return ir_poly_mul(a, ir_poly_from_size(at, s->a), ir_poly_from_size(at, s->b));
    case SZ_MAX:
        /* max(x, 0) is how trip counts clamp empty ranges; costs assume
         * non-empty ranges (docs/COST.md), so the clamp is dropped. */
        if (ir_size_is_const(s->b, &c) && c == 0) return ir_poly_from_size(at, s->a);
        if (ir_size_is_const(s->a, &c) && c == 0) return ir_poly_from_size(at, s->b);
        return ir_poly_atom(a, opaque_atom(at, s));
    default: return ir_poly_atom(a, opaque_atom(at, s));
    }
}

static void atom_print(FILE *out, const IrAtoms *at, int atom)
{
    const IrKernel *k = at->k;
    if (atom < nsyms(at)) {
        fputs(k->syms.v[atom].name, out);
    } else if (atom < nsyms(at) + nparams(at)) {
        fputs(k->params.v[atom - nsyms(at)].name, out);
    } else {
        int o = atom - nsyms(at) - nparams(at);
        FE_ASSERT(o < at->opaque.n);
        ir_size_print(out, k, at->opaque.v[o]);
    }
}

void ir_poly_print(FILE *out, const IrAtoms *at, const IrPoly *p)
{
    if (p->overflow) {
        fputs("overflow", out);
        return;
    }
    if (p->n == 0) {
        fputc('0', out);
        return;
    }
    for (int i = 0; i < p->n; i++) {
        const IrPolyTerm *t = &p->t[i];
        /* |c| without negating INT64_MIN */
        uint64_t mag = t->c < 0 ? (uint64_t)0 - (uint64_t)t->c : (uint64_t)t->c;
        if (i == 0) {
            if (t->c < 0) fputc('-', out);
        } else {
            fputs(t->c < 0 ? " - " : " + ", out);
        }
        int first = 1;
        if (mag != 1 || t->nf == 0) {
            fprintf(out, "%llu", (unsigned long long)mag);
            first = 0;
        }
        for (int j = 0; j < t->nf; j++) {
            if (!first) fputc('*', out);
            first = 0;
            atom_print(out, at, t->f[j].atom);
            if (t->f[j].exp > 1) fprintf(out, "^%d", t->f[j].exp);
        }
    }
}

char *ir_poly_str(Arena *a, const IrAtoms *at, const IrPoly *p)
{
    FeStrOut o;
    ir_poly_print(fe_strout_open(&o), at, p);
    return fe_strout_arena(&o, a);
}

/* Whether every symbol and param the formula reads is bound. */
static int size_bound(const IrSize *s, const int64_t *syms, const unsigned char *syms_set,
                      const int64_t *params, const unsigned char *params_set)
{
    switch (s->op) {
    case SZ_CONST: return 1;
    case SZ_SYM: return syms && (!syms_set || syms_set[s->sym]);
    case SZ_PARAM: return params && (!params_set || params_set[s->sym]);
    default:
        return size_bound(s->a, syms, syms_set, params, params_set) &&
               size_bound(s->b, syms, syms_set, params, params_set);
    }
}

int ir_poly_eval(const IrAtoms *at, const IrPoly *p, const int64_t *syms,
                 const unsigned char *syms_set, const int64_t *params,
                 const unsigned char *params_set, long double *out)
{
    if (p->overflow) return 0;
    long double sum = 0;
    for (int i = 0; i < p->n; i++) {
        long double term = (long double)p->t[i].c;
        for (int j = 0; j < p->t[i].nf; j++) {
            int atom = p->t[i].f[j].atom;
            long double v;
            if (atom < nsyms(at)) {
                if (!syms || (syms_set && !syms_set[atom])) return 0;
                v = (long double)syms[atom];
            } else if (atom < nsyms(at) + nparams(at)) {
                int q = atom - nsyms(at);
                if (!params || (params_set && !params_set[q])) return 0;
                v = (long double)params[q];
            } else {
                const IrSize *s = at->opaque.v[atom - nsyms(at) - nparams(at)];
                if (!size_bound(s, syms, syms_set, params, params_set)) return 0;
                v = (long double)ir_size_eval(s, syms, params);
            }
            int e = p->t[i].f[j].exp;
            if (e > 64) term *= powl(v, (long double)e);
            else
                while (e--) term *= v;
        }
        sum += term;
    }
    *out = sum;
    return 1;
}
