/* pxcc — the PX compiler driver.
 *
 *   pxcc [options] file.px
 *
 * Exit status: 0 success; 1 the input has errors (diagnostics on stderr,
 * warnings too) or cannot be read; 2 usage error; 3 internal compiler
 * error or out of memory (the compile driver's CG_COMPILE_FAILED).
 *
 * Output modes are one table, PXCC_EMITS: to add one, write a function
 * `static int emit_X(PxccCtx *c, const CgCompiled *r, FILE *out)` returning
 * an exit status and add a line to the table, with what it needs the
 * compile driver to produce. A mode with a suffix is chosen by
 * `-o FILE.suffix` when no --emit is given. Options a mode needs go in
 * PxccCtx and parse_option(). */
#include "codegen/cg.h"
#include "ir/ir.h"

#include <errno.h>
#include <stdlib.h>

#define PXCC_VERSION "0.1"

typedef struct PxccSize {
    const char *name;
    int64_t value;
} PxccSize;

typedef struct PxccCtx {
    const char *input;      /* path, or "-" for standard input */
    const char *output;     /* NULL or "-": standard output */
    const char *emit;       /* mode name; NULL until chosen */
    const char *kernel;     /* --kernel NAME */
    int werror;
    int opt_level;
    int verify;
    CgTargetEnv target_env; /* --target-env (SPIR-V modes) */
    FE_VEC(PxccSize) sizes; /* --size SYM=N (for modes that evaluate costs) */
    Arena *arena;
} PxccCtx;

typedef int (*PxccEmitFn)(PxccCtx *c, const CgCompiled *r, FILE *out);

static int emit_ir(PxccCtx *c, const CgCompiled *r, FILE *out)
{
    (void)c;
    ir_print_module(out, r->opt);
    return 0;
}

/* The CPU backend's optimised LLVM IR (at cg_llvm_level of -O: -O2 runs
 * LLVM's default<O3>, as the CPU runtime does). */
static int emit_llvm(PxccCtx *c, const CgCompiled *r, FILE *out)
{
    (void)c;
    fputs(r->llvm_text, out);
    return 0;
}

/* --emit=cost and cost-json (ir/cost.c, docs/COST.md): formulas of the
 * kernel as lowered, dispatches after this -O level's fusion; values where
 * --size binds every symbol a formula uses. */
static int emit_cost_as(PxccCtx *c, const CgCompiled *r, FILE *out, int json)
{
    IrKernelCost *const *cs = r->cost;
    const IrModule *m = r->opt;
    IrCostBind bind = {fe_alloc(c->arena, (size_t)(c->sizes.n + 1) * sizeof(char *)),
                       fe_alloc(c->arena, (size_t)(c->sizes.n + 1) * sizeof(int64_t)), c->sizes.n};
    for (int i = 0; i < c->sizes.n; i++) {
        bind.names[i] = c->sizes.v[i].name;
        ((int64_t *)bind.vals)[i] = c->sizes.v[i].value;
    }
    const char *unused = ir_cost_bind_unused(cs, m->kernels.n, &bind);
    if (unused) fprintf(stderr, "pxcc: warning: --size %s: no kernel has a size symbol of that name\n", unused);
    if (json) ir_cost_print_json(out, cs, m->kernels.n, &bind);
    else ir_cost_print_text(out, cs, m->kernels.n, &bind);
    return 0;
}
static int emit_cost(PxccCtx *c, const CgCompiled *r, FILE *out) { return emit_cost_as(c, r, out, 0); }
static int emit_cost_json(PxccCtx *c, const CgCompiled *r, FILE *out) { return emit_cost_as(c, r, out, 1); }

/* SPIR-V modes (codegen/cg.h). The module is built and validated by the
 * compile driver before the output file is opened, so a failure never
 * leaves a file behind. */
static int emit_spirv(PxccCtx *c, const CgCompiled *r, FILE *out)
{
    (void)c;
    return fwrite(r->spirv->words, 4, r->spirv->nwords, out) == r->spirv->nwords ? 0 : 1;
}

static int emit_spvasm(PxccCtx *c, const CgCompiled *r, FILE *out)
{
    char *txt = cg_spirv_disasm(c->arena, r->spirv->words, r->spirv->nwords, c->target_env);
    if (!txt) {
        fprintf(stderr, "pxcc: internal compiler error: SPIR-V disassembly failed\n");
        return 3;
    }
    fputs(txt, out);
    return 0;
}

static int emit_meta(PxccCtx *c, const CgCompiled *r, FILE *out)
{
    (void)c;
    cg_meta_print(out, r->spirv);
    return 0;
}

/* name, function, binary output, suffix that selects it from -o (or NULL),
 * what the compile driver must produce (CgEmit, cost analysis), help text. */
#define PXCC_EMITS(X)                                                        \
    X("ir", emit_ir, 0, NULL, CG_EMIT_IR, 0, "the optimised IR as text (the default)") \
    X("llvm", emit_llvm, 0, "ll", CG_EMIT_LLVM_TEXT, 0, "the CPU backend's optimised LLVM IR") \
    X("cost", emit_cost, 0, NULL, CG_EMIT_IR, 1, "cost formulas and workload class (docs/COST.md)") \
    X("cost-json", emit_cost_json, 0, NULL, CG_EMIT_IR, 1, "the same as JSON") \
    X("spirv", emit_spirv, 1, "spv", CG_EMIT_SPIRV, 0, "the SPIR-V module for Vulkan (binary)") \
    X("spvasm", emit_spvasm, 0, "spvasm", CG_EMIT_SPIRV, 0, "the SPIR-V module as text (SPIRV-Tools)") \
    X("meta", emit_meta, 0, NULL, CG_EMIT_SPIRV, 0, "launch metadata as JSON (codegen/cg.h)")

typedef struct PxccEmit {
    const char *name;
    PxccEmitFn fn;
    int binary;
    const char *suffix;
    CgEmit needs;
    int cost;
    const char *help;
} PxccEmit;

static const PxccEmit emits[] = {
#define X(n, f, b, s, e, k, h) {n, f, b, s, e, k, h},
    PXCC_EMITS(X)
#undef X
};
enum { NEMITS = sizeof emits / sizeof emits[0] };

static const PxccEmit *find_emit(const char *name)
{
    for (int i = 0; i < NEMITS; i++)
        if (strcmp(emits[i].name, name) == 0) return &emits[i];
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pxcc [options] file.px\n"
            "  --emit=MODE     what to write (default: ir)\n");
    for (int i = 0; i < NEMITS; i++) fprintf(out, "      %-12s %s\n", emits[i].name, emits[i].help);
    fprintf(out,
            "  -o FILE         write to FILE ('-' or none: standard output)\n"
            "  --kernel NAME   compile only the kernel NAME\n"
            "  -O0 -O1 -O2     optimisation level (default -O2)\n"
            "  -Werror         treat warnings as errors\n"
            "  --target-env E  SPIR-V target: vulkan1.1 (default), vulkan1.2, vulkan1.3\n"
            "  --size SYM=N    bind a size symbol (modes that evaluate formulas)\n"
            "  --verify        run the IR verifier after every pass\n"
            "  --help          this text\n"
            "  --version       the version\n"
            "exit status: 0 ok, 1 errors in the input, 2 usage error, 3 internal error\n");
}

FE_PRINTF(1, 2) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pxcc: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n(pxcc --help lists the options)\n", stderr);
    va_end(ap);
    return 2;
}

/* Reads all of f up to the cap. Returns NULL with errno set on failure;
 * errno EFBIG when the cap is exceeded. */
/* Reads at most max + 1 bytes: a source one byte over the limit is enough
 * for the parser to refuse it (located, "source is larger than ..."), and
 * an endless input (/dev/zero) costs no more than that. */
static char *read_all(FILE *f, size_t max, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return NULL;
    for (;;) {
        if (n > max) break;
        if (n == cap) {
            cap = 2 * cap < max + 1 ? 2 * cap : max + 1;
            char *nb = realloc(buf, cap + 1);
            if (!nb) { free(buf); return NULL; }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) { int e = errno ? errno : EIO; free(buf); errno = e; return NULL; }
            break;
        }
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Returns -1 when arg was consumed (possibly with *i advanced), else an
 * exit status to stop with. */
static int parse_option(PxccCtx *c, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(a, "--version") == 0) {
        printf("pxcc %s (PX language version 1)\n", PXCC_VERSION);
        return 0;
    }
    if (strncmp(a, "--emit=", 7) == 0) {
        if (!find_emit(a + 7)) return usage_error("unknown output mode '%s'", a + 7);
        c->emit = a + 7;
        return -1;
    }
    if (strcmp(a, "--emit") == 0 || strcmp(a, "-o") == 0 || strcmp(a, "--kernel") == 0 ||
        strcmp(a, "--size") == 0) {
        if (*i + 1 >= argc) return usage_error("option '%s' needs a value", a);
        const char *v = argv[++*i];
        if (strcmp(a, "-o") == 0) c->output = v;
        else if (strcmp(a, "--kernel") == 0) c->kernel = v;
        else if (strcmp(a, "--emit") == 0) {
            if (!find_emit(v)) return usage_error("unknown output mode '%s'", v);
            c->emit = v;
        } else {
            const char *eq = strchr(v, '=');
            char *end = NULL;
            errno = 0;
            long long n = eq ? strtoll(eq + 1, &end, 0) : 0;
            if (!eq || eq == v || !end || *end || end == eq + 1 || errno || n < 0)
                return usage_error("--size needs SYM=N with N >= 0, not '%s'", v);
            PxccSize s = {fe_strndup(c->arena, v, (size_t)(eq - v)), n};
            FE_PUSH(c->arena, c->sizes, s);
        }
        return -1;
    }
    if (strncmp(a, "--kernel=", 9) == 0) { c->kernel = a + 9; return -1; }
    if (strncmp(a, "--target-env", 12) == 0 && (a[12] == '=' || !a[12])) {
        const char *v = a[12] ? a + 13 : (*i + 1 < argc ? argv[++*i] : NULL);
        if (!v) return usage_error("option '%s' needs a value", a);
        if (!cg_target_env_parse(v, &c->target_env))
            return usage_error("unknown target environment '%s' (vulkan1.1, vulkan1.2, vulkan1.3)", v);
        return -1;
    }
    if (strncmp(a, "-o", 2) == 0 && a[2]) { c->output = a + 2; return -1; }
    if (strcmp(a, "-Werror") == 0) { c->werror = 1; return -1; }
    if (strcmp(a, "--verify") == 0) { c->verify = 1; return -1; }
    if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '2' && !a[3]) {
        c->opt_level = a[2] - '0';
        return -1;
    }
    if (strcmp(a, "-") == 0 || a[0] != '-') {
        if (c->input) return usage_error("more than one input file ('%s' and '%s')", c->input, a);
        c->input = a;
        return -1;
    }
    return usage_error("unknown option '%s'", a);
}

static int run(PxccCtx *c, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        int st = parse_option(c, argc, argv, &i);
        if (st >= 0) return st;
    }
    if (!c->input) return usage_error("no input file");
    if (!c->emit && c->output) {
        const char *dot = strrchr(c->output, '.');
        for (int i = 0; dot && i < NEMITS; i++)
            if (emits[i].suffix && strcmp(emits[i].suffix, dot + 1) == 0) c->emit = emits[i].name;
    }
    if (!c->emit) c->emit = "ir";
    const PxccEmit *mode = find_emit(c->emit);

    int from_stdin = strcmp(c->input, "-") == 0;
    FILE *f = from_stdin ? stdin : fopen(c->input, "rb");
    size_t len = 0;
    FeLimits lim;
    fe_limits_default(&lim);
    char *src = f ? read_all(f, lim.source_bytes, &len) : NULL;
    int err = errno;
    if (f && !from_stdin) fclose(f);
    if (!src) {
        fprintf(stderr, "pxcc: error: cannot read '%s': %s\n", c->input, strerror(err));
        return 1;
    }
    CgCompileOptions o = {
        .file = from_stdin ? "<stdin>" : c->input,
        .only_kernel = c->kernel,
        .opt_level = c->opt_level,
        .werror = c->werror,
        .verify = c->verify,
        .cost = mode->cost,
        .emit = mode->needs,
        .limits = &lim,
    };
    cg_target_default(&o.target, c->target_env);
    CgCompiled r;
    CgCompileStatus cs = cg_compile(c->arena, src, len, &o, &r);
    free(src);
    if (r.diags.arena) fe_diags_print(&r.diags, stderr);
    if (cs == CG_COMPILE_FAILED) {
        fprintf(stderr, "pxcc: %s\n", r.fail.msg);
        return 3;
    }
    int status = 1;
    if (cs == CG_COMPILE_OK) {
        int to_stdout = !c->output || strcmp(c->output, "-") == 0;
        FILE *out = to_stdout ? stdout : fopen(c->output, mode->binary ? "wb" : "w");
        if (!out) {
            fprintf(stderr, "pxcc: error: cannot write '%s': %s\n", c->output, strerror(errno));
        } else {
            status = mode->fn(c, &r, out);
            if (fflush(out) != 0 || ferror(out)) {
                fprintf(stderr, "pxcc: error: cannot write '%s': %s\n", to_stdout ? "<stdout>" : c->output,
                        strerror(errno));
                status = 1;
            }
            if (!to_stdout) fclose(out);
        }
    }
    return status;
}

int main(int argc, char **argv)
{
    PxccCtx c;
    memset(&c, 0, sizeof c);
    c.opt_level = 2;
    c.arena = fe_arena_try_new();
    if (!c.arena) {
        fputs("pxcc: error: out of memory\n", stderr);
        return 1;
    }
    int st = run(&c, argc, argv);
    fe_arena_free(c.arena);
    return st;
}
