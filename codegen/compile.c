/* compile.c — the compile driver: the one path from source text to what
 * every caller needs (pxcc, the runtime, the cost analysis, tests).
 *
 *   parse ─ check ─ lower ─┬─ ir_optimize(-O0) ─ bounds ─ cost  (src: figures of the source)
 *                          └─ ir_optimize(-On) ──────────────── opt ─ SPIR-V | LLVM JIT | LLVM text
 *
 * The whole pipeline runs under fe_protect: an internal error or a failed
 * allocation anywhere below comes back as CG_COMPILE_FAILED with the
 * message in CgCompiled.fail, never as an exit. Everything but the JIT
 * module lives in the caller's arena. */
#include "cg.h"

#include "../frontend/fe.h"

#include <stdlib.h>

int cg_llvm_level(int px_opt_level)
{
    /* -O2 is the runtime's level: LLVM's default<O3> */
    return px_opt_level <= 0 ? 0 : px_opt_level == 1 ? 1 : 3;
}

typedef struct Job {
    Arena *a;
    const char *src;
    size_t len;
    const CgCompileOptions *o;
    CgCompiled *out;
} Job;

static IrOptions ir_options(const CgCompileOptions *o, int level)
{
    IrOptions io = {
        .opt_level = level,
        .verify = o->verify,
        .has_subgroups = o->target.subgroups,
        .subgroup_size = o->target.subgroup_size,
        .shared_bytes = o->target.shared_bytes,
    };
    return io;
}

static void run(void *ud)
{
    Job *j = ud;
    const CgCompileOptions *o = j->o;
    CgCompiled *c = j->out;
    Arena *a = j->a;
    Diags *d = &c->diags;
    const char *file = o->file ? o->file : "<source>";
    char *text = fe_strndup(a, j->src, j->len);
    fe_diags_init(d, a, fe_strdup(a, file), text, j->len);
    if (o->limits) d->lim = *o->limits;
    d->werror = o->werror;
    Program *p = fe_parse(a, d);
    if (!p || d->nerrors) return;
    fe_check(a, d, p);
    if (d->nerrors) return; /* a file without a kernel is the parser's error */
    IrModule *m = ir_lower(a, d, p, o->only_kernel);
    if (!m || d->nerrors) return;
    if (o->cost) {
        /* the figures describe the source: a second lowering at -O0, so they
         * do not depend on the -O level (docs/COST.md) */
        IrModule *s = ir_lower(a, d, p, o->only_kernel);
        IrOptions o0 = ir_options(o, 0);
        ir_optimize(s, &o0);
        c->src = s;
    }
    IrOptions io = ir_options(o, o->opt_level);
    ir_optimize(m, &io);
    /* the stage limits bound code generation and the driver: checked on
     * the module that gets code (not the cost analysis' -O0 twin) */
    if (o->emit != CG_EMIT_IR && ir_check_limits(m, d)) return;
    c->opt = m;
    if (o->cost) {
        c->cost = ir_cost_lowered(a, c->src, m);
        if (!c->cost) fe_die("cost analysis: the -O0 and -O%d modules differ", o->opt_level);
    }
    switch (o->emit) {
    case CG_EMIT_IR: break;
    case CG_EMIT_SPIRV: {
        CgOptions co = {.target = o->target, .opt_level = o->opt_level};
        c->spirv = cg_spirv(a, d, m, &co); /* NULL with errors in d (half without float16) */
        break;
    }
    case CG_EMIT_CPU:
    case CG_EMIT_LLVM_TEXT: {
        char *err = NULL;
        int lv = cg_llvm_level(o->opt_level);
        if (o->emit == CG_EMIT_CPU) c->cpu = o->jit ? cg_cpu_compile_in(o->jit, m, lv, &err) : NULL;
        else c->llvm_text = cg_llvm_emit(a, m, lv, &err);
        if (!c->cpu && !c->llvm_text) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", err ? err : o->jit || o->emit != CG_EMIT_CPU ? "?" : "no JIT");
            free(err);
            fe_die("LLVM code generation failed: %s", msg);
        }
        break;
    }
    }
}

CgCompileStatus cg_compile(Arena *a, const char *src, size_t len, const CgCompileOptions *o,
                           CgCompiled *out)
{
    memset(out, 0, sizeof *out);
    Job j = {a, src, len, o, out};
    if (fe_protect(run, &j, &out->fail) != FE_FAIL_NONE) {
        /* a JIT module made before the failure is not the caller's yet */
        cg_cpu_destroy(out->cpu);
        out->cpu = NULL;
        return CG_COMPILE_FAILED;
    }
    if (out->diags.nerrors || !out->opt) return CG_COMPILE_ERRORS;
    return CG_COMPILE_OK;
}
