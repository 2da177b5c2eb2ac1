/* cost_print.c — the text and JSON forms of the cost figures (pxcc
 * --emit=cost and --emit=cost-json; docs/COST.md). */
#include "ir.h"

#include <math.h>
#include <stdlib.h>

/* Values bound for kernel k by names; *_set marks which. */
typedef struct Bound {
    int64_t *syms, *params;
    unsigned char *syms_set, *params_set;
    int any;
} Bound;

static Bound bind_kernel(Arena *a, const IrKernel *k, const IrCostBind *b)
{
    Bound r;
    r.syms = fe_alloc(a, (size_t)(k->syms.n + 1) * sizeof(int64_t));
    r.params = fe_alloc(a, (size_t)(k->params.n + 1) * sizeof(int64_t));
    r.syms_set = fe_alloc(a, (size_t)k->syms.n + 1);
    r.params_set = fe_alloc(a, (size_t)k->params.n + 1);
    r.any = 0;
    for (int i = 0; b && i < b->n; i++) {
        for (int s = 0; s < k->syms.n; s++)
            if (!strcmp(k->syms.v[s].name, b->names[i])) {
                r.syms[s] = b->vals[i];
                r.syms_set[s] = 1;
                r.any = 1;
            }
        for (int p = 0; p < k->params.n; p++) {
            const IrParam *q = &k->params.v[p];
            if (!q->is_buffer && (q->type == TY_INT || q->type == TY_UINT) && !strcmp(q->name, b->names[i])) {
                r.params[p] = b->vals[i];
                r.params_set[p] = 1;
                r.any = 1;
            }
        }
    }
    return r;
}

static void print_value(FILE *out, double v)
{
    if (fabs(v) < 9.007199254740992e15 && v == floor(v)) fprintf(out, "%.0f", v);
    else fprintf(out, "%.17g", v);
}

static void text_metrics(FILE *out, const IrKernelCost *c, const IrCost *cost, const Bound *b, const char *indent)
{
    for (int m = 0; m < IR_COST_N; m++) {
        fprintf(out, "%s%-14s ", indent, ir_cost_metric_names[m]);
        ir_poly_print(out, &c->atoms, cost->m[m]);
        long double x;
        if (b->any && !ir_poly_is_const(cost->m[m], NULL) &&
            ir_poly_eval(&c->atoms, cost->m[m], b->syms, b->syms_set, b->params, b->params_set, &x)) {
            fputs(" = ", out);
            print_value(out, (double)x);
        }
        fputc('\n', out);
    }
}

void ir_cost_print_text(FILE *out, IrKernelCost *const *cs, int n, const IrCostBind *bind)
{
    for (int i = 0; i < n; i++) {
        const IrKernelCost *c = cs[i];
        Arena *a = c->atoms.arena;
        Bound b = bind_kernel(a, c->k, bind);
        if (i) fputc('\n', out);
        fprintf(out, "kernel %s\n", c->k->name);
        fprintf(out, "  class          %s (%s)\n", fe_class_names[c->cls], c->class_reason);
        text_metrics(out, c, &c->total, &b, "  ");
        for (int s = 0; s < c->stages.n; s++) {
            const IrStageCost *sc = &c->stages.v[s];
            fprintf(out, "  stage %d: %s at %d:%d (%s)\n", s, fe_prim_names[sc->prim], sc->loc.line, sc->loc.col,
                     ir_stage_kind_names[sc->kind]);
            text_metrics(out, c, &sc->c, &b, "    ");
        }
    }
}

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(out, "\\%c", ch);
        else if (ch < 0x20) fprintf(out, "\\u%04x", ch);
        else fputc(ch, out);
    }
    fputc('"', out);
}

static void json_metrics(FILE *out, const IrKernelCost *c, const IrCost *cost, const Bound *b)
{
    Arena *a = c->atoms.arena;
    for (int m = 0; m < IR_COST_N; m++) {
        fprintf(out, ", \"%s\": ", ir_cost_metric_names[m]);
        json_str(out, ir_poly_str(a, &c->atoms, cost->m[m]));
    }
    long double x[IR_COST_N];
    for (int m = 0; m < IR_COST_N; m++)
        if (!ir_poly_eval(&c->atoms, cost->m[m], b->syms, b->syms_set, b->params, b->params_set, &x[m])) return;
    fputs(", \"values\": {", out);
    for (int m = 0; m < IR_COST_N; m++) {
        fprintf(out, "%s\"%s\": ", m ? ", " : "", ir_cost_metric_names[m]);
        print_value(out, (double)x[m]);
    }
    fputc('}', out);
}

void ir_cost_print_json(FILE *out, IrKernelCost *const *cs, int n, const IrCostBind *bind)
{
    fputs("{\"kernels\": [", out);
    for (int i = 0; i < n; i++) {
        const IrKernelCost *c = cs[i];
        Bound b = bind_kernel(c->atoms.arena, c->k, bind);
        fputs(i ? ",\n  {" : "\n  {", out);
        fputs("\"name\": ", out);
        json_str(out, c->k->name);
        fputs(", \"class\": ", out);
        json_str(out, fe_class_names[c->cls]);
        fputs(", \"class_reason\": ", out);
        json_str(out, c->class_reason);
        json_metrics(out, c, &c->total, &b);
        fputs(", \"stages\": [", out);
        for (int s = 0; s < c->stages.n; s++) {
            const IrStageCost *sc = &c->stages.v[s];
            fprintf(out, "%s\n    {\"index\": %d, \"prim\": ", s ? "," : "", s);
            json_str(out, fe_prim_names[sc->prim]);
            fputs(", \"kind\": ", out);
            json_str(out, ir_stage_kind_names[sc->kind]);
            fprintf(out, ", \"line\": %d", sc->loc.line);
            json_metrics(out, c, &sc->c, &b);
            fputc('}', out);
        }
        fputs(c->stages.n ? "\n  ]}" : "]}", out);
    }
    fputs(n ? "\n]}\n" : "]}\n", out);
}
