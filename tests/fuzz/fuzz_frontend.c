/* fuzz_frontend.c — libFuzzer target for the front end: the bytes are a
 * .px file; parse it, check it (sema), render the diagnostics. Each run has
 * a fresh arena, so a crash, a leak or a sanitizer report points at the
 * input alone. Built and run by tests/fuzz/run.sh. */
#include "frontend/fe.h"

/* Weak: the target builds whether or not sema is linked in. */
extern int fe_check(Arena *a, Diags *d, Program *p) __attribute__((weak));

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Arena *a = fe_arena_new();
    Diags d;
    fe_diags_init(&d, a, "fuzz.px", (const char *)data, size);
    Program *p = fe_parse(a, &d);
    if (!p) fe_die("fe_parse returned NULL");
    /* Sema also sees the partial program left by syntax errors. */
    if (fe_check) fe_check(a, &d, p);
    char *text = fe_diags_render(&d, a);
    if (d.nerrors && !*text) fe_die("errors rendered as nothing");
    fe_arena_free(a);
    return 0;
}
