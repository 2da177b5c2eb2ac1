/* fuzz_frontend.c — libFuzzer target for the compiler's front half: the
 * bytes are a .px file; parse it, check it (sema), render the diagnostics,
 * and when it is valid lower it to IR and run the whole -O2 pipeline with
 * the verifier after every pass. An internal compiler error (fe_die exits
 * with status 3) ends the process, which libFuzzer reports as a crash. Each
 * run has a fresh arena, so a crash, a leak or a sanitizer report points at
 * the input alone. Built and run by tests/fuzz/run.sh. */
#include "frontend/fe.h"
#include "ir/ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Arena *a = fe_arena_new();
    Diags d;
    fe_diags_init(&d, a, "fuzz.px", (const char *)data, size);
    Program *p = fe_parse(a, &d);
    if (!p) fe_die("fe_parse returned NULL");
    /* Sema also sees the partial program left by syntax errors. */
    fe_check(a, &d, p);
    char *text = fe_diags_render(&d, a);
    if (d.nerrors && !*text) fe_die("errors rendered as nothing");
    if (!d.nerrors) {
        IrModule *m = ir_lower(a, &d, p, NULL);
        if (m && !d.nerrors) {
            IrOptions o = {.opt_level = 2, .verify = 1};
            ir_optimize(m, &o);
        }
    }
    fe_arena_free(a);
    return 0;
}
