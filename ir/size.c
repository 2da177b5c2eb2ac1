/* size.c — IrSize: integer formulas over size symbols and int/uint scalar
 * params. Constructors fold constants so that equal shapes written with
 * literals compare equal structurally; evaluation follows PX integer rules
 * (truncating division, x/0 = 0, x%0 = 0) in int64. */
#include "ir.h"

#include <stdlib.h>

static IrSize *size_new(Arena *a, IrSizeOp op)
{
    IrSize *s = fe_alloc(a, sizeof *s);
    s->op = op;
    s->sym = -1;
    return s;
}

IrSize *ir_size_const(Arena *a, int64_t c)
{
    IrSize *s = size_new(a, SZ_CONST);
    s->c = c;
    return s;
}

IrSize *ir_size_sym(Arena *a, int sym)
{
    IrSize *s = size_new(a, SZ_SYM);
    s->sym = sym;
    return s;
}

IrSize *ir_size_param(Arena *a, int param)
{
    IrSize *s = size_new(a, SZ_PARAM);
    s->sym = param;
    return s;
}

int ir_size_is_const(const IrSize *s, int64_t *c)
{
    if (!s || s->op != SZ_CONST) return 0;
    if (c) *c = s->c;
    return 1;
}

/* Wrapping int64 arithmetic: formulas come from user bounds and must not
 * invoke C undefined behaviour whatever their values. */
static int64_t wrap_add(int64_t x, int64_t y) { return (int64_t)((uint64_t)x + (uint64_t)y); }
static int64_t wrap_sub(int64_t x, int64_t y) { return (int64_t)((uint64_t)x - (uint64_t)y); }
static int64_t wrap_mul(int64_t x, int64_t y) { return (int64_t)((uint64_t)x * (uint64_t)y); }

static int64_t size_apply(IrSizeOp op, int64_t x, int64_t y)
{
    switch (op) {
    case SZ_ADD: return wrap_add(x, y);
    case SZ_SUB: return wrap_sub(x, y);
    case SZ_MUL: return wrap_mul(x, y);
    case SZ_DIV:
        if (y == 0) return 0;
        if (x == INT64_MIN && y == -1) return INT64_MIN;
        return x / y;
    case SZ_REM:
        if (y == 0 || y == -1) return 0;
        return x % y;
    case SZ_CEILDIV: {
        if (y == 0) return 0;
        if (x == INT64_MIN && y == -1) return INT64_MIN;
        int64_t q = x / y;
        /* round toward +infinity: bump when there is a remainder and the
         * exact quotient is positive */
        if (x % y != 0 && ((x < 0) == (y < 0))) q++;
        return q;
    }
    case SZ_MIN: return x < y ? x : y;
    case SZ_MAX: return x > y ? x : y;
    default: fe_unreachable();
    }
}

IrSize *ir_size_bin(Arena *a, IrSizeOp op, IrSize *l, IrSize *r)
{
    FE_ASSERT(l && r && op >= SZ_ADD);
    int64_t x = 0, y = 0;
    int lc = ir_size_is_const(l, &x), rc = ir_size_is_const(r, &y);
    if (lc && rc) return ir_size_const(a, size_apply(op, x, y));
    /* Identities that hold for every value of the other operand. */
    switch (op) {
    case SZ_ADD:
        if (lc && x == 0) return r;
        if (rc && y == 0) return l;
        break;
    case SZ_SUB:
        if (rc && y == 0) return l;
        if (ir_size_equal(l, r)) return ir_size_const(a, 0);
        break;
    case SZ_MUL:
        if ((lc && x == 0) || (rc && y == 0)) return ir_size_const(a, 0);
        if (lc && x == 1) return r;
        if (rc && y == 1) return l;
        break;
    case SZ_DIV:
    case SZ_CEILDIV:
        if (rc && y == 1) return l;
        if ((rc && y == 0) || (lc && x == 0)) return ir_size_const(a, 0);
        break;
    case SZ_REM:
        if (rc && (y == 1 || y == 0 || y == -1)) return ir_size_const(a, 0);
        break;
    case SZ_MIN:
    case SZ_MAX:
        if (ir_size_equal(l, r)) return l;
        break;
    default: break;
    }
    IrSize *s = size_new(a, op);
    s->a = l;
    s->b = r;
    return s;
}

int ir_size_equal(const IrSize *x, const IrSize *y)
{
    if (x == y) return 1;
    if (!x || !y || x->op != y->op) return 0;
    switch (x->op) {
    case SZ_CONST: return x->c == y->c;
    case SZ_SYM:
    case SZ_PARAM: return x->sym == y->sym;
    default: return ir_size_equal(x->a, y->a) && ir_size_equal(x->b, y->b);
    }
}

int64_t ir_size_eval(const IrSize *s, const int64_t *syms, const int64_t *params)
{
    FE_ASSERT(s);
    switch (s->op) {
    case SZ_CONST: return s->c;
    case SZ_SYM: FE_ASSERT(syms); return syms[s->sym];
    case SZ_PARAM: FE_ASSERT(params); return params[s->sym];
    default:
        return size_apply(s->op, ir_size_eval(s->a, syms, params), ir_size_eval(s->b, syms, params));
    }
}

static const char *const size_op_text[] = {
#define X(e, s) s,
    IR_SIZE_OPS(X)
#undef X
};

static void size_print(FILE *out, const IrKernel *k, const IrSize *s)
{
    switch (s->op) {
    case SZ_CONST: fprintf(out, "%lld", (long long)s->c); return;
    case SZ_SYM:
        if (k && s->sym >= 0 && s->sym < k->syms.n) fputs(k->syms.v[s->sym].name, out);
        else fprintf(out, "sym%d", s->sym);
        return;
    case SZ_PARAM:
        if (k && s->sym >= 0 && s->sym < k->params.n) fputs(k->params.v[s->sym].name, out);
        else fprintf(out, "param%d", s->sym);
        return;
    case SZ_CEILDIV:
    case SZ_MIN:
    case SZ_MAX:
        fprintf(out, "%s(", size_op_text[s->op]);
        size_print(out, k, s->a);
        fputs(", ", out);
        size_print(out, k, s->b);
        fputc(')', out);
        return;
    default:
        /* Infix operators are always parenthesised, so the text never
         * depends on precedence rules. */
        fputc('(', out);
        size_print(out, k, s->a);
        fprintf(out, " %s ", size_op_text[s->op]);
        size_print(out, k, s->b);
        fputc(')', out);
        return;
    }
}

void ir_size_print(FILE *out, const IrKernel *k, const IrSize *s)
{
    if (!s) { fputs("?", out); return; }
    size_print(out, k, s);
}

char *ir_size_str(Arena *a, const IrKernel *k, const IrSize *s)
{
    FeStrOut o;
    ir_size_print(fe_strout_open(&o), k, s);
    return fe_strout_arena(&o, a);
}
