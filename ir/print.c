/* print.c — the text form of the IR (--emit=ir, golden tests).
 *
 * The form is stable: values are renumbered per stage in the order they
 * are printed (%0 is the first index variable), so passes that delete or
 * add instructions do not shift the numbers of unrelated stages. Rules:
 *   kernel NAME class=CLASS [deadline=Nns]
 *     param NAME: TYPE[DIMS] [read] [written] [implicit] [flex]
 *     sym NAME [implicit]
 *     stage I grid[HI, ...] or grid[LO..HI, ...] [elementwise] strategy=S(sp...)   # PRIM at L:C
 *       ^(%0: T, ...):
 *         %n = OP operands : TYPE
 *     stage I KIND [ROP] IN... -> OUT strategy=...   # PRIM at L:C
 * IF/FOR print their results on the left and block arguments inline;
 * a yield with no values is not printed. LOAD/STORE without IR_F_INBOUNDS
 * print as load.checked/store.checked; DIV/REM with IR_F_NONZERO as div.nz.
 * Floats print with %.9g (round-trips a float) and always show a '.', 'e'
 * or a non-finite name. */
#include "ir.h"

#include <math.h>
#include <stdlib.h>

typedef struct Printer {
    FILE *out;
    const IrKernel *k;
    /* inst id -> base + printed number; below base (-1 at first): not
     * defined in the stage being printed. base grows by each stage's
     * count, so no stage resets the array (linear in the kernel). */
    int *num;
    int base, next;
} Printer;

static void def(Printer *p, int id)
{
    if (id >= 0 && id < p->k->insts.n && p->num[id] < p->base) p->num[id] = p->base + p->next++;
}

static void val(Printer *p, int id)
{
    if (id >= 0 && id < p->k->insts.n && p->num[id] >= p->base) fprintf(p->out, "%%%d", p->num[id] - p->base);
    else fprintf(p->out, "%%?%d", id); /* undefined here: the verifier rejects it */
}

static void indent(Printer *p, int depth)
{
    for (int i = 0; i < depth; i++) fputs("  ", p->out);
}

static void print_float(FILE *out, double f)
{
    if (isnan(f)) { fputs("nan", out); return; }
    if (isinf(f)) { fputs(f < 0 ? "-inf" : "inf", out); return; }
    char buf[64];
    snprintf(buf, sizeof buf, "%.9g", f);
    fputs(buf, out);
    if (!strpbrk(buf, ".e")) fputs(".0", out);
}

static const char *param_name(const IrKernel *k, int i)
{
    return i >= 0 && i < k->params.n ? k->params.v[i].name : "?";
}

static void print_block(Printer *p, const IrBlock *b, int depth);

/* True when the block prints nothing (empty, or only an empty yield). */
static int block_empty(const IrKernel *k, const IrBlock *b)
{
    for (int i = 0; i < b->ins.n; i++) {
        const IrInst *in = &k->insts.v[b->ins.v[i]];
        if (!(in->op == IR_YIELD && in->a.n == 0)) return 0;
    }
    return 1;
}

/* Defines and prints the results that follow an IF/FOR at ins[at]. */
static void print_results(Printer *p, const IrInst *in, const IrBlock *b, int at)
{
    int n = 0;
    for (int j = at + 1; j < b->ins.n && n < in->nres; j++, n++) {
        int r = b->ins.v[j];
        if (p->k->insts.v[r].op != IR_RESULT) break;
        def(p, r);
        if (n) fputs(", ", p->out);
        val(p, r);
    }
    if (n) fputs(" = ", p->out);
}

static void print_result_types(Printer *p, const IrInst *in, const IrBlock *b, int at)
{
    int n = 0;
    for (int j = at + 1; j < b->ins.n && n < in->nres; j++, n++) {
        const IrInst *r = &p->k->insts.v[b->ins.v[j]];
        if (r->op != IR_RESULT) break;
        fputs(n ? ", " : " -> ", p->out);
        fputs(fe_type_name(r->type), p->out);
    }
}

static void print_inst(Printer *p, const IrBlock *b, int at, int depth)
{
    FILE *o = p->out;
    const IrKernel *k = p->k;
    int id = b->ins.v[at];
    const IrInst *in = &k->insts.v[id];
    if (in->op == IR_RESULT) return; /* printed with its IF/FOR */
    if (in->op == IR_YIELD && in->a.n == 0) return;
    indent(p, depth);
    switch (in->op) {
    case IR_IF:
        print_results(p, in, b, at);
        fputs("if ", o);
        val(p, in->a.n ? in->a.v[0] : -1);
        print_result_types(p, in, b, at);
        fputs(" {\n", o);
        if (in->body) print_block(p, in->body, depth + 1);
        if (in->els && !block_empty(k, in->els)) {
            indent(p, depth);
            fputs("} else {\n", o);
            print_block(p, in->els, depth + 1);
        }
        indent(p, depth);
        fputs("}\n", o);
        return;
    case IR_FOR: {
        print_results(p, in, b, at);
        const IrBlock *body = in->body;
        fputs("for ", o);
        if (body && body->args.n) {
            def(p, body->args.v[0]);
            val(p, body->args.v[0]);
        }
        fputs(" = ", o);
        val(p, in->a.n > 0 ? in->a.v[0] : -1);
        fputs(" to ", o);
        val(p, in->a.n > 1 ? in->a.v[1] : -1);
        if (in->a.n > 2) {
            fputs(" iter(", o);
            for (int i = 2; i < in->a.n; i++) {
                if (i > 2) fputs(", ", o);
                if (body && i - 1 < body->args.n) {
                    def(p, body->args.v[i - 1]);
                    val(p, body->args.v[i - 1]);
                }
                fputs(" = ", o);
                val(p, in->a.v[i]);
            }
            fputc(')', o);
        }
        print_result_types(p, in, b, at);
        if (in->trip) {
            fputs(" trip=", o);
            ir_size_print(o, k, in->trip);
        }
        fputs(" {\n", o);
        if (body) print_block(p, body, depth + 1);
        indent(p, depth);
        fputs("}\n", o);
        return;
    }
    case IR_STORE: {
        fputs(in->flags & IR_F_INBOUNDS ? "store " : "store.checked ", o);
        fputs(param_name(k, in->param), o);
        int n = in->a.n - 1;
        for (int i = 0; i < n; i++) {
            fputc('[', o);
            val(p, in->a.v[i]);
            fputc(']', o);
        }
        fputs(", ", o);
        val(p, n >= 0 ? in->a.v[n] : -1);
        fputc('\n', o);
        return;
    }
    case IR_YIELD:
        fputs("yield ", o);
        for (int i = 0; i < in->a.n; i++) {
            if (i) fputs(", ", o);
            val(p, in->a.v[i]);
        }
        fputc('\n', o);
        return;
    default: break;
    }
    def(p, id);
    val(p, id);
    fputs(" = ", o);
    switch (in->op) {
    case IR_CONST:
        fputs("const ", o);
        if (in->type == TY_FLOAT || in->type == TY_HALF) print_float(o, in->imm.f);
        else if (in->type == TY_BOOL) fputs(in->imm.i ? "true" : "false", o);
        else if (in->type == TY_UINT) fprintf(o, "%llu", (unsigned long long)(uint32_t)in->imm.u);
        else fprintf(o, "%lld", (long long)in->imm.i);
        break;
    case IR_PARAM: fprintf(o, "param %s", param_name(k, in->param)); break;
    case IR_SIZE:
        fprintf(o, "size %s", in->param >= 0 && in->param < k->syms.n ? k->syms.v[in->param].name : "?");
        break;
    case IR_CALL:
        fprintf(o, "call %s(", in->param >= 0 && in->param < BI_COUNT ? fe_builtin_names[in->param] : "?");
        for (int i = 0; i < in->a.n; i++) {
            if (i) fputs(", ", o);
            val(p, in->a.v[i]);
        }
        fputc(')', o);
        break;
    case IR_LOAD:
        fputs(in->flags & IR_F_INBOUNDS ? "load " : "load.checked ", o);
        fputs(param_name(k, in->param), o);
        for (int i = 0; i < in->a.n; i++) {
            fputc('[', o);
            val(p, in->a.v[i]);
            fputc(']', o);
        }
        break;
    default:
        fputs(ir_op_names[in->op], o);
        if ((in->op == IR_DIV || in->op == IR_REM) && (in->flags & IR_F_NONZERO)) fputs(".nz", o);
        for (int i = 0; i < in->a.n; i++) {
            fputs(i ? ", " : " ", o);
            val(p, in->a.v[i]);
        }
        break;
    }
    fprintf(o, " : %s\n", fe_type_name(in->type));
}

static void print_block(Printer *p, const IrBlock *b, int depth)
{
    for (int i = 0; i < b->ins.n; i++) print_inst(p, b, i, depth);
}

static void print_locs(FILE *o, const IrStage *s)
{
    fputs("   # ", o);
    for (int i = 0; i < s->prims.n; i++) {
        if (i) fputs(", ", o);
        fprintf(o, "%s", s->prims.v[i] >= 0 && s->prims.v[i] < PRIM_COUNT ? fe_prim_names[s->prims.v[i]] : "?");
        if (i < s->locs.n) fprintf(o, " at %d:%d", s->locs.v[i].line, s->locs.v[i].col);
    }
}

static void print_strategy(FILE *o, const IrStage *s)
{
    fprintf(o, " strategy=%s", ir_strategy_names[s->strategy]);
    int n = 4;
    while (n > 0 && s->sp[n - 1] == 0) n--;
    if (n) {
        fputc('(', o);
        for (int i = 0; i < n; i++) fprintf(o, "%s%d", i ? "," : "", s->sp[i]);
        fputc(')', o);
    }
}

static void print_stage(Printer *p, int si)
{
    FILE *o = p->out;
    const IrKernel *k = p->k;
    const IrStage *s = &k->stages.v[si];
    fprintf(o, "  stage %d %s", si, ir_stage_kind_names[s->kind]);
    if (s->kind == IR_STAGE_GRID) {
        fputc('[', o);
        for (int d = 0; d < s->rank; d++) {
            if (d) fputs(", ", o);
            int64_t c;
            if (!(ir_size_is_const(s->lo[d], &c) && c == 0)) {
                ir_size_print(o, k, s->lo[d]);
                fputs("..", o);
            }
            ir_size_print(o, k, s->hi[d]);
        }
        fputc(']', o);
        if (s->elementwise) fputs(" elementwise", o);
    } else {
        if (s->kind == IR_STAGE_REDUCE || s->kind == IR_STAGE_SCAN)
            fprintf(o, " %s", fe_reduce_names[s->rop]);
        for (int i = 0; i < s->nin; i++) fprintf(o, " %s", param_name(k, s->in[i]));
        fprintf(o, " -> %s", param_name(k, s->out));
    }
    print_strategy(o, s);
    print_locs(o, s);
    fputc('\n', o);
    if (s->kind != IR_STAGE_GRID || !s->body) return;
    p->base += p->next;
    p->next = 0;
    fputs("    ^(", o);
    for (int i = 0; i < s->body->args.n; i++) {
        int a = s->body->args.v[i];
        def(p, a);
        if (i) fputs(", ", o);
        val(p, a);
        fprintf(o, ": %s", fe_type_name(k->insts.v[a].type));
    }
    fputs("):\n", o);
    print_block(p, s->body, 3);
}

void ir_print_kernel(FILE *out, const IrKernel *k)
{
    fprintf(out, "kernel %s class=%s", k->name, fe_class_names[k->cls]);
    if (k->deadline_ns) fprintf(out, " deadline=%lluns", (unsigned long long)k->deadline_ns);
    fputc('\n', out);
    for (int i = 0; i < k->params.n; i++) {
        const IrParam *pa = &k->params.v[i];
        fprintf(out, "  param %s: %s", pa->name, fe_type_name(pa->type));
        if (pa->is_buffer) {
            for (int d = 0; d < pa->rank; d++) {
                fputc('[', out);
                ir_size_print(out, k, pa->dims[d]);
                fputc(']', out);
            }
        }
        if (pa->flags & IR_P_READ) fputs(" read", out);
        if (pa->flags & IR_P_WRITTEN) fputs(" written", out);
        if (pa->flags & IR_P_IMPLICIT) fputs(" implicit", out);
        if (pa->flags & IR_P_FLEX) fputs(" flex", out);
        fputc('\n', out);
    }
    for (int i = 0; i < k->syms.n; i++)
        fprintf(out, "  sym %s%s\n", k->syms.v[i].name, k->syms.v[i].implicit ? " implicit" : "");
    Printer p = {out, k, malloc(((size_t)k->insts.n + 1) * sizeof(int)), 0, 0};
    if (!p.num) fe_oom(0);
    for (int i = 0; i < k->insts.n; i++) p.num[i] = -1;
    for (int si = 0; si < k->stages.n; si++) print_stage(&p, si);
    free(p.num);
}

void ir_print_module(FILE *out, const IrModule *m)
{
    for (int i = 0; i < m->kernels.n; i++) {
        if (i) fputc('\n', out);
        ir_print_kernel(out, m->kernels.v[i]);
    }
}
