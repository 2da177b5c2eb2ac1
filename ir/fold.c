/* fold.c — constant folding and algebraic identities.
 *
 * Requires: a verified module. Preserves: stages, params, instruction ids
 * of everything it keeps (a folded instruction becomes IR_CONST in place;
 * an identity forwards the uses of x+0 to x, leaving x+0 unused for dce).
 * Invalidates: nothing (run dce after it to drop what became unused).
 *
 * PX semantics are exact: 32-bit wraparound, integer x/0 = x%0 = 0,
 * INT_MIN/-1 = INT_MIN, shift counts modulo 32, >> of int arithmetic.
 * Floats: only operations whose float result is exactly what the device
 * computes are folded (+ - * / on float in float arithmetic, neg,
 * comparisons, int->float); half, transcendental calls and float->int
 * conversion out of range are left alone. Identities x+0, x-0, x*1, x*0,
 * x/1 are applied to integers only (x*0 is not 0 for a float NaN/inf, and
 * x+0 is not x for x = -0.0). An IF with a constant condition is replaced
 * by the taken block. */
#include "ir.h"

#include <math.h>

typedef struct Fold {
    IrModule *m;
    IrKernel *k;
    int *repl; /* value id -> the value that replaces it (itself if none) */
} Fold;

static int R(Fold *f, int v)
{
    while (v >= 0 && f->repl[v] != v) v = f->repl[v];
    return v;
}

static IrInst *I(Fold *f, int id) { return &f->k->insts.v[id]; }

static int is_const(Fold *f, int v) { return I(f, v)->op == IR_CONST; }

/* The 32-bit pattern of an int/uint/bool constant. */
static uint32_t bits(Fold *f, int v) { return (uint32_t)I(f, v)->imm.u; }

static void make_int(IrInst *in, ScalarType t, uint32_t b)
{
    in->op = IR_CONST;
    in->a.n = 0;
    in->flags = 0;
    in->imm.i = t == TY_INT ? (int64_t)(int32_t)b : t == TY_BOOL ? (int64_t)(b != 0) : (int64_t)b;
}

static void make_float(IrInst *in, float x)
{
    in->op = IR_CONST;
    in->a.n = 0;
    in->flags = 0;
    in->imm.f = (double)x;
}

static int fold_int(Fold *f, IrInst *in)
{
    ScalarType t = in->type;
    int n = in->a.n;
    for (int i = 0; i < n; i++)
        if (!is_const(f, in->a.v[i])) return 0;
    ScalarType ot = n ? I(f, in->a.v[0])->type : t;
    if (ot != TY_INT && ot != TY_UINT && ot != TY_BOOL) return 0;
    uint32_t x = n > 0 ? bits(f, in->a.v[0]) : 0, y = n > 1 ? bits(f, in->a.v[1]) : 0;
    int32_t sx = (int32_t)x, sy = (int32_t)y;
    int sgn = ot == TY_INT;
    uint32_t r;
    switch (in->op) {
    case IR_NEG: r = 0u - x; break;
    case IR_NOT: r = !x; break;
    case IR_BNOT: r = ~x; break;
    case IR_ADD: r = x + y; break;
    case IR_SUB: r = x - y; break;
    case IR_MUL: r = x * y; break;
    case IR_DIV:
        if (y == 0) r = 0;
        else if (sgn) r = (sx == INT32_MIN && sy == -1) ? x : (uint32_t)(sx / sy);
        else r = x / y;
        break;
    case IR_REM:
        if (y == 0) r = 0;
        else if (sgn) r = (sy == -1) ? 0 : (uint32_t)(sx % sy);
        else r = x % y;
        break;
    case IR_AND: r = x & y; break;
    case IR_OR: r = x | y; break;
    case IR_XOR: r = x ^ y; break;
    case IR_SHL: r = x << (y & 31); break;
    case IR_SHR:
        /* arithmetic for int, written without relying on >> of negatives */
        if (sgn && sx < 0) r = ~(~x >> (y & 31));
        else r = x >> (y & 31);
        break;
    case IR_EQ: r = x == y; break;
    case IR_NE: r = x != y; break;
    case IR_LT: r = sgn ? sx < sy : x < y; break;
    case IR_LE: r = sgn ? sx <= sy : x <= y; break;
    case IR_GT: r = sgn ? sx > sy : x > y; break;
    case IR_GE: r = sgn ? sx >= sy : x >= y; break;
    default: return 0;
    }
    make_int(in, t, r);
    return 1;
}

static int fold_float(Fold *f, IrInst *in)
{
    int n = in->a.n;
    for (int i = 0; i < n; i++)
        if (!is_const(f, in->a.v[i])) return 0;
    if (n == 0 || I(f, in->a.v[0])->type != TY_FLOAT) return 0;
    float x = (float)I(f, in->a.v[0])->imm.f, y = n > 1 ? (float)I(f, in->a.v[1])->imm.f : 0.0f;
    switch (in->op) {
    case IR_NEG: make_float(in, -x); return 1;
    case IR_ADD: make_float(in, x + y); return 1;
    case IR_SUB: make_float(in, x - y); return 1;
    case IR_MUL: make_float(in, x * y); return 1;
    case IR_DIV: make_float(in, x / y); return 1;
    case IR_EQ: make_int(in, TY_BOOL, x == y); return 1;
    case IR_NE: make_int(in, TY_BOOL, x != y); return 1;
    case IR_LT: make_int(in, TY_BOOL, x < y); return 1;
    case IR_LE: make_int(in, TY_BOOL, x <= y); return 1;
    case IR_GT: make_int(in, TY_BOOL, x > y); return 1;
    case IR_GE: make_int(in, TY_BOOL, x >= y); return 1;
    default: return 0;
    }
}

static int fold_conv(Fold *f, IrInst *in)
{
    int v = in->a.v[0];
    if (!is_const(f, v)) return 0;
    const IrInst *x = I(f, v);
    ScalarType from = x->type, to = in->type;
    if (from == to) { /* a no-op conversion: the value itself */
        in->imm = x->imm;
        in->op = IR_CONST;
        in->a.n = 0;
        return 1;
    }
    if ((from == TY_INT || from == TY_UINT) && (to == TY_INT || to == TY_UINT)) {
        make_int(in, to, (uint32_t)x->imm.u); /* keeps the bits */
        return 1;
    }
    if (from == TY_INT && to == TY_FLOAT) { make_float(in, (float)(int32_t)x->imm.i); return 1; }
    if (from == TY_UINT && to == TY_FLOAT) { make_float(in, (float)(uint32_t)x->imm.u); return 1; }
    if (from == TY_FLOAT && (to == TY_INT || to == TY_UINT)) {
        double d = trunc(x->imm.f);
        /* out of range: device-defined, not folded */
        if (isnan(d) || (to == TY_INT && (d < -2147483648.0 || d > 2147483647.0)) ||
            (to == TY_UINT && (d < 0 || d > 4294967295.0)))
            return 0;
        make_int(in, to, to == TY_INT ? (uint32_t)(int32_t)d : (uint32_t)d);
        return 1;
    }
    return 0;
}

/* Integer identities: returns the value that replaces in, or -1. */
static int identity(Fold *f, int id)
{
    IrInst *in = I(f, id);
    if (in->type != TY_INT && in->type != TY_UINT) return -1;
    if (in->a.n != 2) return -1;
    int x = in->a.v[0], y = in->a.v[1];
    int xc = is_const(f, x), yc = is_const(f, y);
    uint32_t xv = xc ? bits(f, x) : 1234567u, yv = yc ? bits(f, y) : 1234567u;
    switch (in->op) {
    case IR_ADD:
        if (yc && yv == 0) return x;
        if (xc && xv == 0) return y;
        return -1;
    case IR_SUB:
    case IR_SHL:
    case IR_SHR:
        if (yc && (in->op == IR_SUB ? yv == 0 : (yv & 31) == 0)) return x;
        return -1;
    case IR_MUL:
        if (yc && yv == 1) return x;
        if (xc && xv == 1) return y;
        if ((yc && yv == 0) || (xc && xv == 0)) {
            make_int(in, in->type, 0);
            return id;
        }
        return -1;
    case IR_DIV:
        if (yc && yv == 1) return x;
        return -1;
    default: return -1;
    }
}

static void fold_block(Fold *f, IrBlock *b, Arena *a);

/* Rebuilds b's instruction list, splicing taken branches of constant IFs. */
static void fold_block(Fold *f, IrBlock *b, Arena *a)
{
    FE_VEC(int) out = {0};
    for (int i = 0; i < b->ins.n; i++) {
        int id = b->ins.v[i];
        IrInst *in = I(f, id);
        for (int j = 0; j < in->a.n; j++) in->a.v[j] = R(f, in->a.v[j]);
        if (in->op == IR_IF && is_const(f, in->a.v[0])) {
            IrBlock *taken = bits(f, in->a.v[0]) ? in->body : in->els;
            fold_block(f, taken, a);
            int nres = I(f, id)->nres;
            const IrInst *y = NULL;
            for (int j = 0; j < taken->ins.n; j++) {
                int t = taken->ins.v[j];
                if (j == taken->ins.n - 1 && I(f, t)->op == IR_YIELD) y = I(f, t);
                else FE_PUSH(a, out, t);
            }
            /* the RESULTs standing after the IF forward to the yielded values */
            for (int r = 0; r < nres && i + 1 < b->ins.n; r++) {
                int rid = b->ins.v[++i];
                FE_ASSERT(I(f, rid)->op == IR_RESULT && y && r < y->a.n);
                f->repl[rid] = R(f, y->a.v[r]);
            }
            continue;
        }
        if (in->body) fold_block(f, in->body, a);
        if (in->els) fold_block(f, I(f, id)->els, a);
        in = I(f, id);
        switch (in->op) {
        case IR_CONV: fold_conv(f, in); break;
        case IR_SELECT:
            if (is_const(f, in->a.v[0])) f->repl[id] = R(f, in->a.v[bits(f, in->a.v[0]) ? 1 : 2]);
            break;
        case IR_CALL:
            if (in->param == BI_SELECT && is_const(f, in->a.v[0]))
                f->repl[id] = R(f, in->a.v[bits(f, in->a.v[0]) ? 1 : 2]);
            break;
        case IR_NEG: case IR_NOT: case IR_BNOT:
        case IR_ADD: case IR_SUB: case IR_MUL: case IR_DIV: case IR_REM:
        case IR_AND: case IR_OR: case IR_XOR: case IR_SHL: case IR_SHR:
        case IR_EQ: case IR_NE: case IR_LT: case IR_LE: case IR_GT: case IR_GE: {
            if (fold_int(f, in) || fold_float(f, in)) break;
            int r = identity(f, id);
            if (r >= 0 && r != id) f->repl[id] = R(f, r);
            break;
        }
        default: break;
        }
        FE_PUSH(a, out, id);
    }
    b->ins.v = out.v;
    b->ins.n = out.n;
    b->ins.cap = out.cap;
}

void ir_pass_fold(IrModule *m)
{
    for (int ki = 0; ki < m->kernels.n; ki++) {
        IrKernel *k = m->kernels.v[ki];
        Fold f = {m, k, fe_alloc(m->arena, sizeof(int) * ((size_t)k->insts.n + 1))};
        for (int i = 0; i < k->insts.n; i++) f.repl[i] = i;
        for (int s = 0; s < k->stages.n; s++)
            if (k->stages.v[s].kind == IR_STAGE_GRID) fold_block(&f, k->stages.v[s].body, m->arena);
    }
}
