/* dce.c — dead code elimination for structured SSA.
 *
 * Requires: a verified module. Preserves: stages, params, the ids of what
 * it keeps. Invalidates: nothing; removed instructions stay in
 * IrKernel.insts unplaced.
 *
 * Liveness by worklist: STOREs are roots; a live instruction makes its
 * operands and its enclosing IF/FOR live; a live IF result makes the
 * matching yield operand of both branches live; a FOR carried value is
 * live when its result or its body argument is, and then its init and the
 * matching yield operand are live. Dead pure instructions, IF/FOR with
 * nothing live inside or after them, and dead IF results / FOR carried
 * values (result, body arg, init and yield operand together) are removed. */
#include "ir.h"

typedef struct Dce {
    IrKernel *k;
    Arena *a;
    int *parent;          /* id -> enclosing IF/FOR, -1 at stage level */
    unsigned char *live;
    FE_VEC(int) work;
} Dce;

static IrInst *I(Dce *d, int id) { return &d->k->insts.v[id]; }

static void mark(Dce *d, int id)
{
    if (id < 0 || d->live[id]) return;
    d->live[id] = 1;
    FE_PUSH(d->a, d->work, id);
}

static int last_yield(const IrKernel *k, const IrBlock *b)
{
    return b->ins.n && k->insts.v[b->ins.v[b->ins.n - 1]].op == IR_YIELD ? b->ins.v[b->ins.n - 1] : -1;
}

static void mark_yield_operand(Dce *d, IrBlock *b, int i)
{
    int y = last_yield(d->k, b);
    if (y >= 0 && i < I(d, y)->a.n) mark(d, I(d, y)->a.v[i]);
}

static void scan(Dce *d, IrBlock *b, int parent)
{
    for (int i = 0; i < b->args.n; i++) d->parent[b->args.v[i]] = parent;
    for (int i = 0; i < b->ins.n; i++) {
        int id = b->ins.v[i];
        d->parent[id] = parent;
        if (I(d, id)->op == IR_STORE) mark(d, id);
        if (I(d, id)->body) scan(d, I(d, id)->body, id);
        if (I(d, id)->els) scan(d, I(d, id)->els, id);
    }
}

static void propagate(Dce *d)
{
    while (d->work.n) {
        int id = d->work.v[--d->work.n];
        IrInst *in = I(d, id);
        mark(d, d->parent[id]);
        switch (in->op) {
        case IR_RESULT: {
            int op = in->a.v[0];
            int r = (int)in->imm.i;
            mark(d, op);
            if (I(d, op)->op == IR_IF) {
                mark_yield_operand(d, I(d, op)->body, r);
                mark_yield_operand(d, I(d, op)->els, r);
            } else {
                mark(d, I(d, op)->body->args.v[1 + r]);
            }
            break;
        }
        case IR_BARG: {
            int op = d->parent[id];
            int r = (int)in->imm.i - 1; /* arg 0 is the induction variable */
            if (op >= 0 && I(d, op)->op == IR_FOR && r >= 0) {
                mark(d, I(d, op)->a.v[2 + r]);
                mark_yield_operand(d, I(d, op)->body, r);
            }
            break;
        }
        case IR_IF: mark(d, in->a.v[0]); break;
        case IR_FOR:
            mark(d, in->a.v[0]);
            mark(d, in->a.v[1]);
            break;
        case IR_YIELD: break;
        default:
            for (int i = 0; i < in->a.n; i++) mark(d, in->a.v[i]);
            break;
        }
    }
}

/* Keeps entries i of vec where keep[i]. */
#define COMPACT(vec, keep)                                   \
    do {                                                     \
        int n_ = 0;                                          \
        for (int i_ = 0; i_ < (vec).n; i_++)                 \
            if (keep[i_]) (vec).v[n_++] = (vec).v[i_];       \
        (vec).n = n_;                                        \
    } while (0)

static void sweep(Dce *d, IrBlock *b);

/* Drops dead results of a live IF/FOR and renumbers the rest. */
static void trim_results(Dce *d, int op, IrBlock *b, int at)
{
    IrInst *in = I(d, op);
    int nres = in->nres;
    if (!nres) return;
    unsigned char *keep = fe_alloc(d->a, (size_t)nres + 1);
    for (int r = 0; r < nres; r++) {
        int rid = b->ins.v[at + 1 + r];
        keep[r] = in->op == IR_IF ? d->live[rid] : d->live[in->body->args.v[1 + r]];
    }
    IrBlock *blocks[2] = {in->body, in->op == IR_IF ? in->els : NULL};
    for (int k = 0; k < 2; k++) {
        if (!blocks[k]) continue;
        int y = last_yield(d->k, blocks[k]);
        if (y >= 0) COMPACT(I(d, y)->a, keep);
    }
    if (in->op == IR_FOR) {
        unsigned char *ka = fe_alloc(d->a, (size_t)nres + 3);
        unsigned char *kb = fe_alloc(d->a, (size_t)nres + 2);
        ka[0] = ka[1] = kb[0] = 1;
        for (int r = 0; r < nres; r++) ka[2 + r] = kb[1 + r] = keep[r];
        COMPACT(in->a, ka);
        COMPACT(in->body->args, kb);
        for (int i = 0; i < in->body->args.n; i++) I(d, in->body->args.v[i])->imm.i = i;
    }
    int n = 0;
    for (int r = 0; r < nres; r++) {
        int rid = b->ins.v[at + 1 + r];
        if (keep[r]) {
            /* a FOR keeps a slot its body needs even when nothing after
             * the loop reads the result; the RESULT stays with its slot */
            I(d, rid)->imm.i = n++;
            d->live[rid] = 1;
        } else {
            d->live[rid] = 0; /* dropped with the slot, even if a dead use named it */
        }
    }
    in->nres = n;
}

static void sweep(Dce *d, IrBlock *b)
{
    int n = 0;
    for (int i = 0; i < b->ins.n; i++) {
        int id = b->ins.v[i];
        IrInst *in = I(d, id);
        if (in->op == IR_YIELD) {
            b->ins.v[n++] = id;
            continue;
        }
        if ((in->op == IR_IF || in->op == IR_FOR) && d->live[id]) trim_results(d, id, b, i);
        if (!d->live[id]) continue;
        if (in->body) sweep(d, in->body);
        if (in->els) sweep(d, in->els);
        b->ins.v[n++] = id;
    }
    b->ins.n = n;
}

void ir_pass_dce(IrModule *m)
{
    for (int ki = 0; ki < m->kernels.n; ki++) {
        IrKernel *k = m->kernels.v[ki];
        Dce d = {k, m->arena, fe_alloc(m->arena, sizeof(int) * ((size_t)k->insts.n + 1)),
                 fe_alloc(m->arena, (size_t)k->insts.n + 1), {0}};
        for (int i = 0; i < k->insts.n; i++) d.parent[i] = -1;
        for (int s = 0; s < k->stages.n; s++) {
            IrStage *st = &k->stages.v[s];
            if (st->kind != IR_STAGE_GRID) continue;
            scan(&d, st->body, -1);
        }
        propagate(&d);
        for (int s = 0; s < k->stages.n; s++) {
            IrStage *st = &k->stages.v[s];
            if (st->kind == IR_STAGE_GRID) sweep(&d, st->body);
        }
    }
}
