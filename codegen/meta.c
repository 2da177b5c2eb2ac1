/*
 * meta.c — the launch metadata of a CgModule as JSON (pxcc --emit=meta);
 * the schema is in cg.h's header comment. Built with jansson; output is
 * deterministic: fields in a fixed order (jansson keeps insertion order),
 * two-space indented, formulas as ir_size_print text.
 */
#include "cg.h"

#include <jansson.h>
#include <stdlib.h>

/* A size formula as its ir_size_print text. */
static json_t *json_size(const IrKernel *k, const IrSize *z) {
    FeStrOut o;
    ir_size_print(fe_strout_open(&o), k, z);
    char *text = fe_strout_take(&o);
    json_t *j = json_string(text);
    free(text);
    return j;
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

static json_t *param_json(const IrKernel *k, int i) {
    const IrParam *p = &k->params.v[i];
    json_t *o = json_pack("{s:i, s:s, s:s, s:s}", "index", i, "name", p->name, "kind",
                          p->is_buffer ? "buffer" : "scalar", "type", fe_type_name(p->type));
    if (o && p->is_buffer) {
        json_t *dims = json_array();
        for (int d = 0; d < p->rank; d++) json_array_append_new(dims, json_size(k, p->dims[d]));
        json_object_set_new(o, "dims", dims);
        json_object_set_new(o, "flexible", json_boolean(p->flags & IR_P_FLEX));
    }
    return o;
}

static json_t *push_json(const IrKernel *k, const CgPush *p) {
    static const char *const groups[3] = {"groups.x", "groups.y", "groups.z"};
    return json_pack("{s:i, s:s, s:i, s:s, s:s}", "offset", p->offset, "kind",
                     p->kind == CG_PUSH_PARAM ? "param" : p->kind == CG_PUSH_SYM ? "sym" : "groups", "index",
                     p->index, "name",
                     p->kind == CG_PUSH_PARAM ? k->params.v[p->index].name
                     : p->kind == CG_PUSH_SYM ? k->syms.v[p->index].name
                                              : groups[p->index],
                     "type", fe_type_name(p->type));
}

static json_t *dispatch_json(const IrKernel *k, const CgDispatch *d) {
    json_t *g = json_array();
    for (int c = 0; c < 3; c++) json_array_append_new(g, json_size(k, d->groups[c]));
    return json_pack("{s:s, s:i, s:[i, i, i], s:o, s:b, s:o}", "entry", d->entry, "stage", d->stage, "local_size",
                     d->local[0], d->local[1], d->local[2], "groups", g, "barrier_before", d->barrier_before,
                     "loop_iters", d->loop_iters ? json_size(k, d->loop_iters) : json_null());
}

static json_t *launch_json(const CgLaunch *l) {
    const IrKernel *k = l->kernel;
    json_t *params = json_array(), *syms = json_array(), *binds = json_array(), *scratch = json_array(),
           *push = json_array(), *disp = json_array();
    for (int i = 0; i < k->params.n; i++) json_array_append_new(params, param_json(k, i));
    for (int i = 0; i < k->syms.n; i++) json_array_append_new(syms, json_string(k->syms.v[i].name));
    for (int i = 0; i < l->bindings.n; i++) {
        const CgBinding *b = &l->bindings.v[i];
        json_array_append_new(binds, json_pack("{s:i, s:s, s:i, s:b, s:s, s:i}", "binding", b->binding, "kind",
                                               b->kind == CG_BIND_PARAM ? "param" : "scratch", "index", b->index,
                                               "readonly", b->readonly, "elem", fe_type_name(b->elem), "elem_size",
                                               b->elem_size));
    }
    for (int i = 0; i < l->scratch.n; i++)
        json_array_append_new(scratch, json_pack("{s:i, s:o, s:s}", "index", i, "bytes",
                                                 json_size(k, l->scratch.v[i].bytes), "elem",
                                                 fe_type_name(l->scratch.v[i].elem)));
    for (int i = 0; i < l->push.n; i++) json_array_append_new(push, push_json(k, &l->push.v[i]));
    for (int i = 0; i < l->dispatches.n; i++) json_array_append_new(disp, dispatch_json(k, &l->dispatches.v[i]));
    return json_pack("{s:s, s:o, s:o, s:o, s:o, s:{s:i, s:o}, s:o}", "name", k->name, "params", params,
                     "size_symbols", syms, "bindings", binds, "scratch", scratch, "push_constants", "size",
                     l->push_size, "members", push, "dispatches", disp);
}

void cg_meta_print(FILE *out, const CgModule *m) {
    json_t *ks = json_array();
    for (int i = 0; i < m->kernels.n; i++) json_array_append_new(ks, launch_json(&m->kernels.v[i]));
    json_t *root = json_pack("{s:s, s:s, s:o}", "spirv_version", version_text(m->target.env), "target_env",
                             cg_target_env_names[m->target.env], "kernels", ks);
    if (!root || json_dumpf(root, out, JSON_INDENT(2))) fputs("null", out);
    fputc('\n', out);
    json_decref(root);
}
