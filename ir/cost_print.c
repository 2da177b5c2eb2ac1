/* cost_print.c — the text and JSON forms of the cost figures (pxcc
 * --emit=cost and --emit=cost-json; docs/COST.md). */
#include "ir.h"

#include <jansson.h>
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

/* A value as JSON: whole numbers as integers (print_value's rule), others
 * as reals written with JSON_REAL_PRECISION(17). */
static json_t *json_value(double v)
{
    if (fabs(v) < 9.007199254740992e15 && v == floor(v)) return json_integer((json_int_t)v);
    return json_real(v);
}

/* The metrics of one cost into o: formulas as text, and their values
 * when every symbol they use is bound. */
static void json_metrics(json_t *o, const IrKernelCost *c, const IrCost *cost, const Bound *b)
{
    Arena *a = c->atoms.arena;
    for (int m = 0; m < IR_COST_N; m++)
        json_object_set_new(o, ir_cost_metric_names[m], json_string(ir_poly_str(a, &c->atoms, cost->m[m])));
    long double x[IR_COST_N];
    for (int m = 0; m < IR_COST_N; m++)
        if (!ir_poly_eval(&c->atoms, cost->m[m], b->syms, b->syms_set, b->params, b->params_set, &x[m])) return;
    json_t *v = json_object();
    for (int m = 0; m < IR_COST_N; m++) json_object_set_new(v, ir_cost_metric_names[m], json_value((double)x[m]));
    json_object_set_new(o, "values", v);
}

void ir_cost_print_json(FILE *out, IrKernelCost *const *cs, int n, const IrCostBind *bind)
{
    json_t *ks = json_array();
    for (int i = 0; i < n; i++) {
        const IrKernelCost *c = cs[i];
        Bound b = bind_kernel(c->atoms.arena, c->k, bind);
        json_t *k = json_pack("{s:s, s:s, s:s}", "name", c->k->name, "class", fe_class_names[c->cls], "class_reason",
                              c->class_reason);
        json_metrics(k, c, &c->total, &b);
        json_t *stages = json_array();
        for (int s = 0; s < c->stages.n; s++) {
            const IrStageCost *sc = &c->stages.v[s];
            json_t *o = json_pack("{s:i, s:s, s:s, s:i}", "index", s, "prim", fe_prim_names[sc->prim], "kind",
                                  ir_stage_kind_names[sc->kind], "line", sc->loc.line);
            json_metrics(o, c, &sc->c, &b);
            json_array_append_new(stages, o);
        }
        json_object_set_new(k, "stages", stages);
        json_array_append_new(ks, k);
    }
    json_t *root = json_pack("{s:o}", "kernels", ks);
    if (!root || json_dumpf(root, out, JSON_INDENT(2) | JSON_REAL_PRECISION(17))) fputs("null", out);
    fputc('\n', out);
    json_decref(root);
}
