/* bounds.c — range analysis for accesses and divisions.
 *
 * Requires: a verified module. Preserves: everything but IR_F_INBOUNDS and
 * IR_F_NONZERO, which it sets (never clears: a flag set by an earlier run
 * stays proved). Invalidates: nothing.
 *
 * Each value gets at most an exclusive upper bound as an IrSize, valid
 * when the value is read as unsigned (the access check compares unsigned,
 * so a negative int index counts as huge):
 *   - a grid index variable: the stage's hi[d]; for an int index only when
 *     lo[d] is a constant >= 0 (uint indices are < hi whatever lo is, and
 *     a space with lo >= hi is empty);
 *   - a for induction variable: its hi operand when that is a constant, a
 *     size symbol or an int/uint param, with the same rule for lo;
 *   - a constant c >= 0: c + 1.
 * An index is proved in range when its bound is structurally the buffer's
 * extent, both are constants with bound <= extent, or the bound is a min
 * with the extent as one side. Anything else keeps its check: simple and
 * sound rather than clever.
 * IR_F_NONZERO: an int/uint DIV/REM whose divisor is a constant other than
 * 0 (and, for int, other than -1, so INT_MIN / -1 never needs care). */
#include "ir.h"

typedef struct Bounds {
    IrKernel *k;
    Arena *a;
    IrSize **hi; /* value id -> exclusive unsigned bound, NULL if unknown */
} Bounds;

static IrInst *I(Bounds *b, int id) { return &b->k->insts.v[id]; }

static int const_nonneg(Bounds *b, int v, int64_t *c)
{
    const IrInst *in = I(b, v);
    if (in->op != IR_CONST || (in->type != TY_INT && in->type != TY_UINT)) return 0;
    int64_t x = in->type == TY_INT ? in->imm.i : (int64_t)(uint32_t)in->imm.u;
    if (x < 0) return 0;
    if (c) *c = x;
    return 1;
}

/* A bound value as a formula: constant, size symbol or int/uint param. */
static IrSize *value_size(Bounds *b, int v)
{
    const IrInst *in = I(b, v);
    int64_t c;
    if (const_nonneg(b, v, &c)) return ir_size_const(b->a, c);
    if (in->op == IR_SIZE) return ir_size_sym(b->a, in->param);
    if (in->op == IR_PARAM) return ir_size_param(b->a, in->param);
    return NULL;
}

static int le_extent(const IrSize *hi, const IrSize *dim)
{
    int64_t x, y;
    if (!hi || !dim) return 0;
    if (ir_size_equal(hi, dim)) return 1;
    if (ir_size_is_const(hi, &x) && ir_size_is_const(dim, &y)) return x <= y;
    if (hi->op == SZ_MIN) return le_extent(hi->a, dim) || le_extent(hi->b, dim);
    return 0;
}

static IrSize *bound_of(Bounds *b, int v)
{
    int64_t c;
    if (b->hi[v]) return b->hi[v];
    if (const_nonneg(b, v, &c)) return ir_size_const(b->a, c + 1);
    return NULL;
}

static void access(Bounds *b, IrInst *in)
{
    const IrParam *p = &b->k->params.v[in->param];
    for (int d = 0; d < p->rank; d++)
        if (!le_extent(bound_of(b, in->a.v[d]), p->dims[d])) return;
    in->flags |= IR_F_INBOUNDS;
}

static void walk(Bounds *b, IrBlock *blk)
{
    for (int i = 0; i < blk->ins.n; i++) {
        int id = blk->ins.v[i];
        IrInst *in = I(b, id);
        switch (in->op) {
        case IR_LOAD:
        case IR_STORE: access(b, in); break;
        case IR_DIV:
        case IR_REM: {
            const IrInst *y = I(b, in->a.v[1]);
            if (y->op == IR_CONST && (in->type == TY_UINT ? (uint32_t)y->imm.u != 0
                                      : in->type == TY_INT ? y->imm.i != 0 && y->imm.i != -1 : 0))
                in->flags |= IR_F_NONZERO;
            break;
        }
        case IR_FOR: {
            int lo = in->a.v[0];
            ScalarType t = I(b, lo)->type;
            if (t == TY_UINT || const_nonneg(b, lo, NULL)) b->hi[in->body->args.v[0]] = value_size(b, in->a.v[1]);
            walk(b, in->body);
            break;
        }
        case IR_IF:
            walk(b, in->body);
            walk(b, in->els);
            break;
        default: break;
        }
    }
}

void ir_pass_bounds(IrModule *m)
{
    for (int ki = 0; ki < m->kernels.n; ki++) {
        IrKernel *k = m->kernels.v[ki];
        Bounds b = {k, m->arena, fe_alloc(m->arena, sizeof(IrSize *) * ((size_t)k->insts.n + 1))};
        for (int s = 0; s < k->stages.n; s++) {
            IrStage *st = &k->stages.v[s];
            if (st->kind != IR_STAGE_GRID) continue;
            for (int d = 0; d < st->rank; d++) {
                int64_t c;
                if (st->itype[d] == TY_UINT || (ir_size_is_const(st->lo[d], &c) && c >= 0))
                    b.hi[st->body->args.v[d]] = st->hi[d];
            }
            walk(&b, st->body);
        }
    }
}
