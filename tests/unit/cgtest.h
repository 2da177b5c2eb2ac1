/* cgtest.h — unit-test helper: source text to optimised IR through the
 * compile driver (codegen/compile.c), the one pipeline every caller uses. */
#ifndef PX_CGTEST_H
#define PX_CGTEST_H

#include <stdio.h>
#include <string.h>

#include "codegen/cg.h"

/* Optimised IR of src at -O`level` (the verifier after every pass), for
 * target t (NULL: the generic default); NULL with the diagnostics printed
 * when it does not compile. */
static inline IrModule *cgtest_ir(Arena *a, const char *src, int level, const CgTarget *t)
{
    CgCompileOptions o = {.file = "t.px", .opt_level = level, .verify = 1, .emit = CG_EMIT_IR};
    if (t) o.target = *t;
    else cg_target_default(&o.target, CG_ENV_VULKAN_1_1);
    CgCompiled r;
    CgCompileStatus st = cg_compile(a, src, strlen(src), &o, &r);
    if (st == CG_COMPILE_ERRORS) fe_diags_print(&r.diags, stderr);
    if (st == CG_COMPILE_FAILED) fprintf(stderr, "%s\n", r.fail.msg);
    return st == CG_COMPILE_OK ? r.opt : NULL;
}

#endif
