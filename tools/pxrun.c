/* pxrun — compile a PX kernel and run it on a Vulkan device (contract
 * section 7): buffers from .npy files or fills, scalars from text, size
 * symbols from shapes or --size, results to .npy or a summary, per-stage
 * predicted and measured times. Every user error ends with exit status 1
 * and one `pxrun: error: ...` line. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv/hv.h"
#include "px.h"

#include "tools/first_calibration.h"
#include "tools/pxrun_args.h"

static void usage(FILE *f)
{
    fputs("usage: pxrun [--vm N] kernel.px [--kernel NAME]\n"
          "             [--arg NAME=FILE.npy | --arg NAME=VALUE]... [--size SYM=N]...\n"
          "             [--fill NAME=zeros|ones|iota|random[:SEED]|VALUE]...\n"
          "             [--out NAME=FILE.npy]... [--backend vulkan|cpu|auto] [--device N|NAME]\n"
          "             [--repeat N] [--budget MS] [--stats] [--json] [-O0|-O1|-O2] [-Werror] [-v]\n"
          "       pxrun --calibrate [--repeat N] [--backend vulkan|cpu|auto] [--device N|NAME]\n",
          f);
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pxrun: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void say_line(void *user, const char *msg) { fprintf(stderr, "pxrun: %s\n", msg); }

static void on_log(void *user, PxLogLevel lv, const char *msg)
{
    const Opts *o = user;
    /* errors reach the user once, through die() and px_last_error */
    if (lv == PX_LOG_WARN || o->verbose) fprintf(stderr, "pxrun: %s\n", msg);
}

/* ---- fills ---------------------------------------------------------------- */

static void fill_buffer(PxBuffer *b, const Pair *f)
{
    PxDtype t = px_buffer_dtype(b);
    int64_t n = px_buffer_count(b);
    size_t es = px_dtype_size(t);
    unsigned char *d = malloc((size_t)n * es + 1);
    if (!d) die("out of memory for --fill %s", f->text);
    FillSpec fs;
    char e[512];
    if (pxrun_parse_fill(f, t, &fs, e, sizeof e)) {
        free(d);
        die("%s", e);
    }
    pxrun_fill(&fs, t, n, d);
    if (px_buffer_write(b, d, (size_t)n * es)) die("--fill %s: could not write the buffer", f->text);
    free(d);
}

/* ---- output ---------------------------------------------------------------- */

static void *read_all(PxBuffer *b, const char *name)
{
    size_t bytes = px_buffer_bytes(b);
    void *d = malloc(bytes + 1);
    if (!d) die("out of memory reading %s", name);
    if (px_buffer_read(b, d, bytes)) die("could not read buffer %s back from the device", name);
    return d;
}

static void summary(FILE *f, const char *name, PxBuffer *b)
{
    void *d = read_all(b, name);
    pxrun_summary(f, name, px_buffer_dtype(b), px_buffer_rank(b), px_buffer_shape(b), d);
    free(d);
}

static json_t *summary_json(const char *name, PxBuffer *b)
{
    void *d = read_all(b, name);
    json_t *o = pxrun_summary_json(name, px_buffer_dtype(b), px_buffer_rank(b), px_buffer_shape(b), d);
    free(d);
    return o;
}

/* --json's object for stage i (-1: the whole kernel), measured t ns. */
static json_t *stage_json(PxLaunch *l, int i, double t)
{
    PxCost c;
    int have = px_launch_cost(l, i, &c) == PX_OK;
    double bytes = have && c.bytes_read >= 0 ? c.bytes_read + c.bytes_written : -1;
    return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "name", i < 0 ? "total" : px_launch_stage_name(l, i),
                     "predicted_ns", pxrun_json_num(have ? c.predicted_ns : -1), "measured_ns", pxrun_json_num(t),
                     "flops", pxrun_json_num(have ? c.flops : -1), "bytes", pxrun_json_num(bytes), "gb_per_s",
                     pxrun_json_num(bytes >= 0 && t > 0 ? bytes / t : -1), "gflop_per_s",
                     pxrun_json_num(have && c.flops >= 0 && t > 0 ? c.flops / t : -1));
}

static void fmt_rate(char *buf, size_t n, double amount, double ns)
{
    if (amount < 0 || ns <= 0) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.2f", amount / ns); /* per ns = G per s */
}


/* Every --out goes to a temporary file beside its target (same file
 * system, so rename is atomic), and only when all are written are they
 * renamed into place: a failure (disk full) leaves no corrupt file and no
 * earlier --out half of a set. */
static void write_outs(Opts *o, PxLaunch *l)
{
    char *tmp[MAXP] = {0};
    const char *fail = NULL;
    char e[600] = "";
    mode_t mask = umask(0);
    umask(mask);
    for (int i = 0; i < o->nouts && !fail; i++) {
        const Pair *ou = &o->outs[i];
        for (int j = 0; j < i; j++)
            if (!strcmp(o->outs[j].value, ou->value)) {
                snprintf(e, sizeof e, "the file is also given by --out %s", o->outs[j].text);
                fail = ou->text;
            }
        if (fail) break;
        size_t n = strlen(ou->value) + 16;
        tmp[i] = malloc(n);
        if (!tmp[i]) die("out of memory");
        snprintf(tmp[i], n, "%s.pxrun-XXXXXX", ou->value);
        int fd = mkstemp(tmp[i]);
        if (fd < 0) {
            snprintf(e, sizeof e, "%s: cannot create: %s", ou->value, strerror(errno));
            free(tmp[i]);
            tmp[i] = NULL;
            fail = ou->text;
            break;
        }
        fchmod(fd, 0666 & ~mask); /* mkstemp makes 0600; a new file gets the umask's mode */
        close(fd);
        PxBuffer *b = px_launch_buffer(l, ou->name);
        void *d = read_all(b, ou->name);
        if (px_npy_write(tmp[i], px_buffer_dtype(b), px_buffer_rank(b), px_buffer_shape(b), d, e, sizeof e)) {
            /* name the target in the message, not the temporary */
            char m[600];
            const char *why = strstr(e, ": write failed: ");
            snprintf(m, sizeof m, "%s: write failed: %s", ou->value, why ? why + 16 : e);
            snprintf(e, sizeof e, "%s", m);
            fail = ou->text;
        }
        free(d);
    }
    for (int i = 0; i < o->nouts && !fail; i++)
        if (rename(tmp[i], o->outs[i].value)) {
            snprintf(e, sizeof e, "%s: cannot rename into place: %s", o->outs[i].value, strerror(errno));
            fail = o->outs[i].text;
        }
    for (int i = 0; i < o->nouts; i++) {
        if (tmp[i] && fail) remove(tmp[i]);
        free(tmp[i]);
    }
    if (fail) die("--out %s: %s", fail, e);
}

/* pxrun --calibrate: measure the device, save its profile (which later
 * contexts on this device load) and show it. */
static int calibrate(PxContext *ctx, const Opts *o)
{
    PxDeviceInfo di;
    px_device_info(ctx, &di);
    PxProfile p;
    fprintf(stderr, "pxrun: calibrating %s ...\n", di.name);
    PxResult r = px_calibrate(ctx, o->repeat ? o->repeat : 5, &p);
    if (r) die("calibrating %s: %s", di.name, px_last_error(ctx));
    printf("device %s\n", di.name);
    printf("bandwidth      %10.3f GB/s\n", p.bytes_per_s * 1e-9);
    printf("float ops      %10.3f Gop/s\n", p.flops_per_s * 1e-9);
    printf("int ops        %10.3f Gop/s\n", p.intops_per_s * 1e-9);
    printf("accesses       %10.3f G/s\n", p.accesses_per_s * 1e-9);
    if (p.checked_per_s >= 1e17) printf("checks         %10s (no cost beyond their accesses)\n", "free");
    else printf("checks         %10.3f G/s\n", p.checked_per_s * 1e-9);
    printf("workgroup      %10.3f us\n", p.group_s * 1e6);
    printf("dispatch       %10.3f us\n", p.dispatch_s * 1e6);
    printf("barrier        %10.3f us\n", p.barrier_s * 1e6);
    printf("saved to %s\n", p.source);
    px_context_destroy(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    /* --vm N: the run goes through the hypervisor (hv/client.c) */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--vm")) return hv_client_main(argc, argv);
    Opts o = {0};
    char perr[1024];
    int pr = pxrun_parse_args(argc, argv, &o, perr, sizeof perr);
    if (pr == PXRUN_HELP) {
        usage(stdout);
        pxrun_free_opts(&o);
        return 0;
    }
    if (pr) {
        if (pr == PXRUN_USAGE) usage(stderr);
        pxrun_free_opts(&o);
        die("%s", perr);
    }
    if (!o.calibrate && !o.repeat) o.repeat = 1;

    PxConfig cfg;
    px_config_default(&cfg);
    cfg.log = on_log;
    cfg.log_user = &o;
    cfg.opt_level = o.opt;
    if (o.budget_ms >= 0) cfg.limits.launch_budget_ns = o.budget_ms * 1e6;
    if (o.backend && !strcmp(o.backend, "cpu")) cfg.backend = PX_BACKEND_CPU;
    if (o.backend && !strcmp(o.backend, "vulkan")) cfg.backend = PX_BACKEND_VULKAN;
    if (o.backend && !strcmp(o.backend, "auto")) cfg.backend = PX_BACKEND_AUTO;
    if (o.device && !o.backend) cfg.backend = PX_BACKEND_VULKAN; /* a device is a Vulkan pick */
    if (o.device) {
        const char *p = o.device;
        int num = *p != 0;
        for (; *p; p++) num &= isdigit((unsigned char)*p) != 0;
        if (num) cfg.device_index = atoi(o.device);
        else cfg.device_name = o.device;
    }
    PxContext *ctx;
    char *err;
    PxResult r = px_context_create(&cfg, &ctx, &err);
    if (r) die("%s", err ? err : px_result_string(r));
    /* auto on the CPU means there was no Vulkan device: always say so */
    int fell_back = cfg.backend == PX_BACKEND_AUTO && !strcmp(px_context_backend(ctx), "cpu");
    if (o.verbose || (o.backend && !strcmp(o.backend, "auto")) || fell_back)
        fprintf(stderr, "pxrun: backend: %s%s\n", px_context_backend(ctx), fell_back ? " (no Vulkan device)" : "");

    if (o.calibrate) return calibrate(ctx, &o);
    char cerr[1200];
    if (px_first_calibration(&ctx, &cfg, say_line, NULL, cerr, sizeof cerr)) die("%s", cerr);

    PxModule *m;
    char *diags;
    r = px_module_compile_file(ctx, o.file, &m, &diags);
    if (diags) fputs(diags, stderr);
    int had_warn = diags != NULL;
    px_free(diags);
    if (r == PX_ERR_COMPILE) {
        fprintf(stderr, "pxrun: error: %s\n", px_last_error(ctx));
        px_context_destroy(ctx);
        pxrun_free_opts(&o);
        return 1;
    }
    if (r) die("%s", px_last_error(ctx));
    if (o.werror && had_warn) die("warnings treated as errors (-Werror)");
    PxKernel *k;
    if ((r = px_module_kernel(m, o.kernel, &k))) die("%s", px_last_error(ctx));
    PxLaunch *l;
    if ((r = px_launch_create(k, &l))) die("%s", px_last_error(ctx));

    int np = px_kernel_param_count(k);
    PxBuffer *owned[MAXP] = {0};
    int nowned = 0;
    for (int i = 0; i < o.nargs; i++) {
        const Pair *a = &o.args[i];
        int pi = -1;
        PxParamInfo pin;
        for (int j = 0; j < np && pi < 0; j++) {
            px_kernel_param(k, j, &pin);
            if (!strcmp(pin.name, a->name)) pi = j;
        }
        if (pi < 0) die("--arg %s: kernel %s has no parameter named %s", a->text, px_kernel_name(k), a->name);
        if (!pin.is_buffer) {
            if (px_launch_set_scalar_text(l, a->name, a->value)) die("--arg %s: %s", a->text, px_last_error(ctx));
            continue;
        }
        PxNpy npy;
        char e[512];
        if (px_npy_read(a->value, &npy, e, sizeof e)) die("--arg %s: %s", a->text, e);
        char decl[128] = "";
        size_t dl = (size_t)snprintf(decl, sizeof decl, "%s", px_dtype_name(pin.dtype));
        if (pin.flexible) snprintf(decl + dl, sizeof decl - dl, "[]");
        else
            for (int d = 0; d < pin.rank && dl < sizeof decl; d++)
                dl += (size_t)snprintf(decl + dl, sizeof decl - dl, "[%s]", pin.dims[d]);
        if (npy.dtype != pin.dtype)
            die("--arg %s: %s has dtype %s (%s) but parameter %s is %s", a->text, a->value, px_npy_descr(npy.dtype),
                px_dtype_name(npy.dtype), a->name, decl);
        PxBuffer *b;
        if ((r = px_buffer_create(ctx, npy.dtype, npy.rank, npy.shape, &b))) die("--arg %s: %s", a->text, px_last_error(ctx));
        if ((r = px_buffer_write(b, npy.data, (size_t)npy.count * px_dtype_size(npy.dtype))))
            die("--arg %s: %s", a->text, px_last_error(ctx));
        px_npy_free(&npy);
        owned[nowned++] = b;
        char origin[300];
        snprintf(origin, sizeof origin, "--arg %s", a->text);
        if (px_launch_bind(l, a->name, b, origin)) die("%s", px_last_error(ctx));
    }
    for (int i = 0; i < o.nsizes; i++) {
        const Pair *s = &o.sizes[i];
        int64_t v;
        if (px_parse_int(s->value, 0, INT64_MAX, &v))
            die("--size %s: expected a whole number >= 0 (decimal or 0x hex)", s->text);
        char origin[300];
        snprintf(origin, sizeof origin, "--size %s", s->text);
        if (px_launch_set_size(l, s->name, v, origin)) die("--size %s: %s", s->text, px_last_error(ctx));
    }
    for (int i = 0; i < o.nfills; i++) {
        const Pair *f = &o.fills[i];
        PxParamInfo pin;
        int pi = -1;
        for (int j = 0; j < np && pi < 0; j++) {
            px_kernel_param(k, j, &pin);
            if (!strcmp(pin.name, f->name)) pi = j;
        }
        if (pi < 0) die("--fill %s: kernel %s has no parameter named %s", f->text, px_kernel_name(k), f->name);
        if (!pin.is_buffer) die("--fill %s: %s is a scalar; give it with --arg %s=VALUE", f->text, f->name, f->name);
        for (int j = 0; j < o.nargs; j++)
            if (!strcmp(o.args[j].name, f->name)) die("--fill %s: %s is already given by --arg %s", f->text, f->name, o.args[j].text);
    }
    if ((r = px_launch_prepare(l))) die("%s", px_last_error(ctx));
    for (int i = 0; i < o.nfills; i++) fill_buffer(px_launch_buffer(l, o.fills[i].name), &o.fills[i]);
    for (int i = 0; i < o.nouts; i++) {
        const Pair *ou = &o.outs[i];
        if (!px_launch_buffer(l, ou->name)) {
            int scalar = 0;
            for (int j = 0; j < np; j++) {
                PxParamInfo pin;
                px_kernel_param(k, j, &pin);
                if (!strcmp(pin.name, ou->name)) scalar = !pin.is_buffer;
            }
            die("--out %s: %s", ou->text, scalar ? "that parameter is a scalar, not a buffer" : "the kernel has no such buffer");
        }
    }

    int ns = px_launch_stage_count(l);
    double *best = calloc((size_t)ns + 1, sizeof *best);
    double best_total = -1;
    if (!best) die("out of memory");
    for (int i = 0; i < ns; i++) best[i] = -1;
    for (int rep = 0; rep < o.repeat; rep++) {
        if ((r = px_launch_run(l))) die("running %s: %s", px_kernel_name(k), px_last_error(ctx));
        /* best of the repeats: the run least disturbed by the host */
        double t = px_launch_stage_time_ns(l, -1);
        if (t >= 0 && (best_total < 0 || t < best_total)) {
            best_total = t;
            for (int i = 0; i < ns; i++) best[i] = px_launch_stage_time_ns(l, i);
        }
    }

    write_outs(&o, l);

    PxDeviceInfo di;
    px_device_info(ctx, &di);
    FILE *f = stdout;
    if (o.json) {
        json_t *j = json_pack("{s:s, s:s, s:s}", "kernel", px_kernel_name(k), "class", px_kernel_class(k), "device", di.name);
        if (px_kernel_jit_ms(k) >= 0) json_object_set_new(j, "jit_ms", json_real(px_kernel_jit_ms(k)));
        json_object_set_new(j, "vm", o.vm >= 0 ? json_integer(o.vm) : json_null());
        json_object_set_new(j, "repeat", json_integer(o.repeat));
        PxProfile pp;
        px_context_profile(ctx, &pp);
        json_object_set_new(j, "profile", json_pack("{s:b, s:s}", "calibrated", pp.calibrated, "source", pp.source));
        json_object_set_new(j, "correction", pxrun_json_num(px_kernel_correction(k, NULL)));
        json_t *sizes = json_object(), *bufs = json_array(), *stages = json_array();
        for (int i = 0; i < px_kernel_size_count(k); i++) {
            int64_t v;
            if (!px_launch_size(l, px_kernel_size_name(k, i), &v))
                json_object_set_new(sizes, px_kernel_size_name(k, i), json_integer(v));
        }
        for (int j = 0; j < np; j++) {
            PxParamInfo pin;
            px_kernel_param(k, j, &pin);
            if (pin.is_buffer && pin.written) json_array_append_new(bufs, summary_json(pin.name, px_launch_buffer(l, pin.name)));
        }
        for (int i = 0; i < ns; i++) json_array_append_new(stages, stage_json(l, i, best[i]));
        json_object_set_new(j, "sizes", sizes);
        json_object_set_new(j, "buffers", bufs);
        json_object_set_new(j, "stages", stages);
        json_object_set_new(j, "total", stage_json(l, -1, best_total));
        pxrun_json_print(f, j);
    } else {
        fprintf(f, "kernel %s (%s) on %s", px_kernel_name(k), px_kernel_class(k), di.name);
        if (o.vm >= 0) fprintf(f, ", vm %d", o.vm);
        fputc('\n', f);
        if (!o.nouts) {
            for (int j = 0; j < np; j++) {
                PxParamInfo pin;
                px_kernel_param(k, j, &pin);
                if (!pin.is_buffer || !pin.written) continue;
                summary(f, pin.name, px_launch_buffer(l, pin.name));
            }
        } else {
            for (int i = 0; i < o.nouts; i++) fprintf(f, "wrote %s\n", o.outs[i].text);
        }
        if (o.stats) {
            fprintf(f, "%-24s %12s %12s %10s %10s\n", "stage", "predicted", "measured", "GB/s", "GFLOP/s");
            for (int i = 0; i <= ns; i++) {
                int si = i < ns ? i : -1;
                PxCost c;
                int have = px_launch_cost(l, si, &c) == PX_OK;
                double t = si < 0 ? best_total : best[si];
                char pt[32], mt[32], gb[32], gf[32];
                pxrun_fmt_time(pt, sizeof pt, have ? c.predicted_ns : -1);
                pxrun_fmt_time(mt, sizeof mt, t);
                fmt_rate(gb, sizeof gb, have && c.bytes_read >= 0 ? c.bytes_read + c.bytes_written : -1, t);
                fmt_rate(gf, sizeof gf, have ? c.flops : -1, t);
                char nm[64];
                if (si < 0) snprintf(nm, sizeof nm, "total");
                else snprintf(nm, sizeof nm, "%d %s", i, px_launch_stage_name(l, i));
                fprintf(f, "%-24s %12s %12s %10s %10s\n", nm, pt, mt, gb, gf);
            }
            if (o.repeat > 1) fprintf(f, "(measured: best of %d runs)\n", o.repeat);
            PxProfile pp;
            px_context_profile(ctx, &pp);
            int ncorr;
            double corr = px_kernel_correction(k, &ncorr);
            fprintf(f, "(predicted: %s profile%s%s; roofline without correction; learned correction x%.3g from %d runs)\n",
                    pp.calibrated ? "calibrated" : "default", pp.calibrated ? " " : "",
                    pp.calibrated ? pp.source : "", corr, ncorr);
            if (px_kernel_jit_ms(k) >= 0) fprintf(f, "JIT compile: %.1f ms\n", px_kernel_jit_ms(k));
        }
    }
    free(best);
    px_launch_destroy(l);
    for (int i = 0; i < nowned; i++) px_buffer_destroy(owned[i]);
    px_module_destroy(m);
    px_context_destroy(ctx);
    pxrun_free_opts(&o);
    return 0;
}
