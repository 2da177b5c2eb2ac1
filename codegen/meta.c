/*
 * meta.c — the launch metadata of a CgModule as JSON (pxcc --emit=meta);
 * the schema is in cg.h's header comment. Output is deterministic: fields
 * in a fixed order, formulas as ir_size_print text.
 */
#include "cg.h"

#include <stdlib.h>

static void json_str(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c < 0x20) fprintf(out, "\\u%04x", c);
        else fputc(c, out);
    }
    fputc('"', out);
}

static void json_size(FILE *out, const IrKernel *k, const IrSize *z) {
    FeStrOut o;
    ir_size_print(fe_strout_open(&o), k, z);
    char *text = fe_strout_take(&o);
    json_str(out, text);
    free(text);
}

static const char *version_text(CgTargetEnv env) {
    uint32_t v = cg_spirv_version(env);
    switch (v) {
    case 0x00010300: return "1.3";
    case 0x00010500: return "1.5";
    case 0x00010600: return "1.6";
    }
    return "?";
}

static void print_launch(FILE *out, const CgLaunch *l) {
    const IrKernel *k = l->kernel;
    fprintf(out, "    {\n      \"name\": ");
    json_str(out, k->name);
    fprintf(out, ",\n      \"params\": [");
    for (int i = 0; i < k->params.n; i++) {
        const IrParam *p = &k->params.v[i];
        fprintf(out, "%s\n        {\"index\": %d, \"name\": ", i ? "," : "", i);
        json_str(out, p->name);
        fprintf(out, ", \"kind\": \"%s\", \"type\": \"%s\"", p->is_buffer ? "buffer" : "scalar",
                fe_type_name(p->type));
        if (p->is_buffer) {
            fprintf(out, ", \"dims\": [");
            for (int d = 0; d < p->rank; d++) {
                if (d) fprintf(out, ", ");
                json_size(out, k, p->dims[d]);
            }
            fprintf(out, "], \"flexible\": %s", p->flags & IR_P_FLEX ? "true" : "false");
        }
        fputc('}', out);
    }
    fprintf(out, "%s],\n      \"size_symbols\": [", k->params.n ? "\n      " : "");
    for (int i = 0; i < k->syms.n; i++) {
        if (i) fprintf(out, ", ");
        json_str(out, k->syms.v[i].name);
    }
    fprintf(out, "],\n      \"bindings\": [");
    for (int i = 0; i < l->bindings.n; i++) {
        const CgBinding *b = &l->bindings.v[i];
        fprintf(out,
                "%s\n        {\"binding\": %d, \"kind\": \"%s\", \"index\": %d, \"readonly\": %s, "
                "\"elem\": \"%s\", \"elem_size\": %d}",
                i ? "," : "", b->binding, b->kind == CG_BIND_PARAM ? "param" : "scratch", b->index,
                b->readonly ? "true" : "false", fe_type_name(b->elem), b->elem_size);
    }
    fprintf(out, "%s],\n      \"scratch\": [", l->bindings.n ? "\n      " : "");
    for (int i = 0; i < l->scratch.n; i++) {
        fprintf(out, "%s\n        {\"index\": %d, \"bytes\": ", i ? "," : "", i);
        json_size(out, k, l->scratch.v[i].bytes);
        fprintf(out, ", \"elem\": \"%s\"}", fe_type_name(l->scratch.v[i].elem));
    }
    fprintf(out, "%s],\n      \"push_constants\": {\"size\": %d, \"members\": [",
            l->scratch.n ? "\n      " : "", l->push_size);
    for (int i = 0; i < l->push.n; i++) {
        const CgPush *p = &l->push.v[i];
        fprintf(out, "%s\n        {\"offset\": %d, \"kind\": \"%s\", \"index\": %d, \"name\": ",
                i ? "," : "", p->offset,
                p->kind == CG_PUSH_PARAM ? "param" : p->kind == CG_PUSH_SYM ? "sym" : "groups", p->index);
        json_str(out, p->kind == CG_PUSH_PARAM ? k->params.v[p->index].name
                      : p->kind == CG_PUSH_SYM ? k->syms.v[p->index].name
                                               : (const char *[]){"groups.x", "groups.y", "groups.z"}[p->index]);
        fprintf(out, ", \"type\": \"%s\"}", fe_type_name(p->type));
    }
    fprintf(out, "%s]},\n      \"dispatches\": [", l->push.n ? "\n      " : "");
    for (int i = 0; i < l->dispatches.n; i++) {
        const CgDispatch *d = &l->dispatches.v[i];
        fprintf(out, "%s\n        {\"entry\": ", i ? "," : "");
        json_str(out, d->entry);
        fprintf(out, ", \"stage\": %d, \"local_size\": [%d, %d, %d], \"groups\": [", d->stage,
                d->local[0], d->local[1], d->local[2]);
        for (int c = 0; c < 3; c++) {
            if (c) fprintf(out, ", ");
            json_size(out, k, d->groups[c]);
        }
        fprintf(out, "], \"barrier_before\": %s, \"loop_iters\": ", d->barrier_before ? "true" : "false");
        if (d->loop_iters) json_size(out, k, d->loop_iters);
        else fprintf(out, "null");
        fputc('}', out);
    }
    fprintf(out, "%s]\n    }", l->dispatches.n ? "\n      " : "");
}

void cg_meta_print(FILE *out, const CgModule *m) {
    fprintf(out, "{\n  \"spirv_version\": \"%s\",\n  \"target_env\": \"%s\",\n  \"kernels\": [",
            version_text(m->target.env), cg_target_env_names[m->target.env]);
    for (int i = 0; i < m->kernels.n; i++) {
        fprintf(out, "%s\n", i ? "," : "");
        print_launch(out, &m->kernels.v[i]);
    }
    fprintf(out, "%s]\n}\n", m->kernels.n ? "\n  " : "");
}
