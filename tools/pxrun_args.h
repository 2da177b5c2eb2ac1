/* pxrun_args.h — pxrun's command line, apart from anything that runs:
 * flags into Opts, NAME=VALUE pairs, and the values of --fill. Included by
 * tools/pxrun.c and by the fuzz target tests/fuzz/fuzz_pxrun.c, so the
 * fuzzer drives the code pxrun runs. Nothing here prints or exits: an
 * error is a message in err (errsz bytes) and a non-zero return, and what
 * was allocated is freed by pxrun_free_opts whatever happened. Numbers are
 * read by px_parse_int / px_parse_float (px.h), as --arg's are by the
 * library. */
#ifndef PXRUN_ARGS_H
#define PXRUN_ARGS_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "px.h"

typedef struct Pair {
    const char *name, *value, *text; /* name malloc'd; text: the whole NAME=VALUE for messages */
} Pair;

#define MAXP 64
typedef struct Opts {
    const char *file, *kernel, *device, *backend;
    Pair args[MAXP], sizes[MAXP], fills[MAXP], outs[MAXP];
    int nargs, nsizes, nfills, nouts;
    int vm, repeat, stats, json, opt, werror, verbose, calibrate;
    double budget_ms;  /* --budget MS; < 0: not given (the library's default) */
} Opts;

/* pxrun_parse_args results */
enum { PXRUN_OK, PXRUN_ERROR, PXRUN_HELP, PXRUN_USAGE /* an error; show the usage too */ };

static inline int pxrun_fail(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int pxrun_fail(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    return PXRUN_ERROR;
}

static inline void pxrun_free_opts(Opts *o)
{
    for (int i = 0; i < o->nargs; i++) free((void *)o->args[i].name);
    for (int i = 0; i < o->nsizes; i++) free((void *)o->sizes[i].name);
    for (int i = 0; i < o->nfills; i++) free((void *)o->fills[i].name);
    for (int i = 0; i < o->nouts; i++) free((void *)o->outs[i].name);
    o->nargs = o->nsizes = o->nfills = o->nouts = 0;
}

/* Appends NAME=VALUE of `flag` to v[*n]; a NAME given twice for one flag
 * is an error (the last would silently win otherwise). */
static inline int pxrun_pair(const char *flag, const char *s, Pair *v, int *n, char *err, size_t errsz)
{
    if (*n == MAXP) return pxrun_fail(err, errsz, "too many %s (at most %d)", flag, MAXP);
    const char *eq = strchr(s, '=');
    if (!eq || eq == s) return pxrun_fail(err, errsz, "%s %s: expected NAME=VALUE", flag, s);
    for (int i = 0; i < *n; i++)
        if (strlen(v[i].name) == (size_t)(eq - s) && !strncmp(v[i].name, s, (size_t)(eq - s)))
            return pxrun_fail(err, errsz, "%s %s: %s is already given by %s %s", flag, s, v[i].name, flag,
                              v[i].text);
    char *name = strndup(s, (size_t)(eq - s));
    if (!name) return pxrun_fail(err, errsz, "out of memory");
    v[(*n)++] = (Pair){name, eq + 1, s};
    return PXRUN_OK;
}

static inline int pxrun_count(const char *flag, const char *v, long lo, long hi, long *out, char *err, size_t errsz)
{
    int64_t n;
    if (px_parse_int(v, lo, hi, &n))
        return pxrun_fail(err, errsz, "%s %s: expected a whole number from %ld to %ld", flag, v, lo, hi);
    *out = (long)n;
    return PXRUN_OK;
}

/* Fills o from argv (o zeroed by the caller). */
static inline int pxrun_parse_args(int argc, char **argv, Opts *o, char *err, size_t errsz)
{
    o->repeat = 0; /* not given: 1 run, or 5 per micro-kernel with --calibrate */
    o->vm = -1;
    o->opt = 2;
    o->budget_ms = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = PXRUN_OK;
        long n = 0;
#define NEXT(v)                                                                  \
    do {                                                                         \
        if (i + 1 >= argc) return pxrun_fail(err, errsz, "%s needs a value", a); \
        v = argv[++i];                                                           \
    } while (0)
        const char *val = NULL;
        if (!strcmp(a, "--arg")) {
            NEXT(val);
            r = pxrun_pair(a, val, o->args, &o->nargs, err, errsz);
        } else if (!strcmp(a, "--size")) {
            NEXT(val);
            r = pxrun_pair(a, val, o->sizes, &o->nsizes, err, errsz);
        } else if (!strcmp(a, "--fill")) {
            NEXT(val);
            r = pxrun_pair(a, val, o->fills, &o->nfills, err, errsz);
        } else if (!strcmp(a, "--out")) {
            NEXT(val);
            r = pxrun_pair(a, val, o->outs, &o->nouts, err, errsz);
        } else if (!strcmp(a, "--kernel")) NEXT(o->kernel);
        else if (!strcmp(a, "--device")) NEXT(o->device);
        else if (!strcmp(a, "--backend")) NEXT(o->backend);
        else if (!strcmp(a, "--vm")) {
            NEXT(val);
            if (!(r = pxrun_count(a, val, 0, 1 << 20, &n, err, errsz))) o->vm = (int)n;
        } else if (!strcmp(a, "--repeat")) {
            NEXT(val);
            if (!(r = pxrun_count(a, val, 1, 1000000, &n, err, errsz))) o->repeat = (int)n;
        } else if (!strcmp(a, "--budget")) {
            /* whole milliseconds, 0: no budget; a day at most */
            NEXT(val);
            if (!(r = pxrun_count(a, val, 0, 86400000, &n, err, errsz))) o->budget_ms = (double)n;
        } else if (!strcmp(a, "--stats")) o->stats = 1;
        else if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--calibrate")) o->calibrate = 1;
        else if (!strcmp(a, "-v")) o->verbose = 1;
        else if (!strcmp(a, "-Werror")) o->werror = 1;
        else if (!strcmp(a, "-O0") || !strcmp(a, "-O1") || !strcmp(a, "-O2")) o->opt = a[2] - '0';
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) return PXRUN_HELP;
        else if (a[0] == '-' && a[1]) {
            pxrun_fail(err, errsz, "unknown option %s", a);
            return PXRUN_USAGE;
        } else if (o->file) return pxrun_fail(err, errsz, "more than one kernel file (%s and %s)", o->file, a);
        else o->file = a;
#undef NEXT
        if (r) return r;
    }
    if (o->calibrate && o->file)
        return pxrun_fail(err, errsz, "--calibrate measures the device and takes no kernel file (%s)", o->file);
    if (!o->file && !o->calibrate) {
        pxrun_fail(err, errsz, "no kernel file given");
        return PXRUN_USAGE;
    }
    if (o->backend && strcmp(o->backend, "vulkan") && strcmp(o->backend, "cpu") && strcmp(o->backend, "auto"))
        return pxrun_fail(err, errsz, "--backend %s: expected vulkan, cpu or auto", o->backend);
    return PXRUN_OK;
}

/* What --fill NAME=VALUE puts in a buffer of type t. */
typedef struct FillSpec {
    int mode;          /* 0 every element val, 1 iota, 2 random */
    double val;        /* mode 0: within t's range, an integer for int/uint */
    uint64_t seed;     /* mode 2 */
} FillSpec;

static inline int pxrun_parse_fill(const Pair *f, PxDtype t, FillSpec *out, char *err, size_t errsz)
{
    const char *v = f->value;
    *out = (FillSpec){0, 0, 1};
    if (!strcmp(v, "zeros")) return PXRUN_OK;
    if (!strcmp(v, "ones")) {
        out->val = 1;
        return PXRUN_OK;
    }
    if (!strcmp(v, "iota")) {
        out->mode = 1;
        return PXRUN_OK;
    }
    if (!strncmp(v, "random", 6) && (v[6] == 0 || v[6] == ':')) {
        out->mode = 2;
        int64_t sv;
        if (v[6] == ':' && px_parse_int(v + 7, 0, INT64_MAX, &sv))
            return pxrun_fail(err, errsz, "--fill %s: the seed must be a whole number", f->text);
        if (v[6] == ':') out->seed = (uint64_t)sv;
        return PXRUN_OK;
    }
    /* integers for int and uint, in their range; floats within the type's */
    int e;
    if (t == PX_I32 || t == PX_U32) {
        int64_t iv = 0;
        double dv;
        e = px_parse_int(v, t == PX_I32 ? INT32_MIN : 0, t == PX_I32 ? INT32_MAX : UINT32_MAX, &iv);
        if (e == 1 && px_parse_float(v, INFINITY, &dv) != 1)
            return pxrun_fail(err, errsz, "--fill %s: %s is %s, so the value must be a whole number (decimal or 0x hex)",
                              f->text, f->name, px_dtype_name(t));
        out->val = (double)iv;
    } else {
        e = px_parse_float(v, t == PX_F16 ? PX_HALF_MAX : PX_FLOAT_MAX, &out->val);
    }
    if (e == 1) return pxrun_fail(err, errsz, "--fill %s: expected zeros, ones, iota, random[:SEED] or a number", f->text);
    if (e)
        return pxrun_fail(err, errsz, "--fill %s: %s is beyond the range of %s, the type of %s", f->text, v,
                          px_dtype_name(t), f->name);
    return PXRUN_OK;
}

/* ---- values and output, the same for a local and a --vm run ---------------- */

static inline uint64_t pxrun_rng_next(uint64_t *s)
{
    /* splitmix64: reproducible across platforms for a seed */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The n elements of type t that fill spec fs gives, into d. */
static inline void pxrun_fill(const FillSpec *fs, PxDtype t, int64_t n, void *data)
{
    unsigned char *d = data;
    size_t es = px_dtype_size(t);
    uint64_t seed = fs->seed;
    for (int64_t i = 0; i < n; i++) {
        double x = fs->mode == 0 ? fs->val : fs->mode == 1 ? (double)i : 0;
        if (fs->mode == 2) {
            uint64_t r = pxrun_rng_next(&seed);
            /* floats uniform in [0, 1); integers in 0..99 */
            x = (t == PX_F32 || t == PX_F16) ? (double)(r >> 11) * (1.0 / 9007199254740992.0) : (double)(r % 100);
        }
        unsigned char *p = d + (size_t)i * es;
        switch (t) {
        case PX_F32: { float y = (float)x; memcpy(p, &y, 4); break; }
        /* x is an integer here (a checked value, iota's index or 0..99);
         * through uint64 it wraps modulo 2^32 with no undefined cast */
        case PX_I32: { uint32_t y = (uint32_t)(uint64_t)(int64_t)x; memcpy(p, &y, 4); break; }
        case PX_U32: { uint32_t y = (uint32_t)(uint64_t)(int64_t)x; memcpy(p, &y, 4); break; }
        case PX_F16: { uint16_t y = px_float_to_half((float)x); memcpy(p, &y, 2); break; }
        }
    }
}

static inline double pxrun_elem(const void *d, PxDtype t, int64_t i)
{
    switch (t) {
    case PX_F32: return ((const float *)d)[i];
    case PX_I32: return ((const int32_t *)d)[i];
    case PX_U32: return ((const uint32_t *)d)[i];
    case PX_F16: return px_half_to_float(((const uint16_t *)d)[i]);
    }
    return 0;
}

static inline void pxrun_print_num(FILE *f, double x, PxDtype t)
{
    if (t == PX_I32 || t == PX_U32) fprintf(f, "%.0f", x);
    else fprintf(f, "%.7g", x);
}

/* The same number as JSON: whole for integer types, a string for NaN and
 * the infinities (JSON has none); printed with JSON_REAL_PRECISION(7). */
static inline json_t *pxrun_json_value(double x, PxDtype t)
{
    if (!isfinite(x)) return json_string(isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
    if (t == PX_I32 || t == PX_U32) return json_integer((json_int_t)x);
    return json_real(x);
}

/* min and max of the values that are not NaN (NaN when all are), and sum */
static inline void pxrun_minmax(PxDtype t, int64_t n, const void *d, double *mn, double *mx, double *sum)
{
    *mn = INFINITY, *mx = -INFINITY, *sum = 0;
    int64_t nums = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = pxrun_elem(d, t, i);
        if (x < *mn) *mn = x;
        if (x > *mx) *mx = x;
        nums += !isnan(x);
        *sum += x;
    }
    if (!nums) *mn = *mx = NAN;
}

static inline int64_t pxrun_count_elems(int rank, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= shape[i];
    return n;
}

/* The summary of a buffer's data: `name: type (shape) [first...] min max
 * sum`. */
static inline void pxrun_summary(FILE *f, const char *name, PxDtype t, int rank, const int64_t *shape, const void *d)
{
    int64_t n = pxrun_count_elems(rank, shape);
    double mn, mx, sum;
    pxrun_minmax(t, n, d, &mn, &mx, &sum);
    int nf = n < 8 ? (int)n : 8;
    char sh[128];
    size_t o = (size_t)snprintf(sh, sizeof sh, "(");
    for (int i = 0; i < rank && o < sizeof sh; i++)
        o += (size_t)snprintf(sh + o, sizeof sh - o, "%lld%s", (long long)shape[i],
                              rank == 1 ? "," : i + 1 < rank ? ", " : "");
    if (o < sizeof sh) snprintf(sh + o, sizeof sh - o, ")");
    fprintf(f, "%s: %s %s [", name, px_dtype_name(t), sh);
    for (int i = 0; i < nf; i++) {
        if (i) fputs(", ", f);
        pxrun_print_num(f, pxrun_elem(d, t, i), t);
    }
    fputs(n > nf ? ", ...]" : "]", f);
    if (n) {
        fputs(" min ", f);
        pxrun_print_num(f, mn, t);
        fputs(" max ", f);
        pxrun_print_num(f, mx, t);
        fputs(" sum ", f);
        pxrun_print_num(f, sum, PX_F32);
    }
    fputc('\n', f);
}

/* The same as one object of --json's "buffers" list. */
static inline json_t *pxrun_summary_json(const char *name, PxDtype t, int rank, const int64_t *shape, const void *d)
{
    int64_t n = pxrun_count_elems(rank, shape);
    double mn, mx, sum;
    pxrun_minmax(t, n, d, &mn, &mx, &sum);
    json_t *sh = json_array(), *first = json_array();
    for (int i = 0; i < rank; i++) json_array_append_new(sh, json_integer(shape[i]));
    for (int64_t i = 0; i < n && i < 8; i++) json_array_append_new(first, pxrun_json_value(pxrun_elem(d, t, i), t));
    json_t *o = json_pack("{s:s, s:s, s:o, s:o}", "name", name, "dtype", px_npy_descr(t), "shape", sh, "first", first);
    if (o && n) {
        json_object_set_new(o, "min", pxrun_json_value(mn, t));
        json_object_set_new(o, "max", pxrun_json_value(mx, t));
        json_object_set_new(o, "sum", pxrun_json_value(sum, PX_F32));
    }
    return o;
}

static inline void pxrun_fmt_time(char *buf, size_t n, double ns)
{
    if (ns < 0) snprintf(buf, n, "-");
    else if (ns < 1e3) snprintf(buf, n, "%.0f ns", ns);
    else if (ns < 1e6) snprintf(buf, n, "%.1f us", ns / 1e3);
    else if (ns < 1e9) snprintf(buf, n, "%.2f ms", ns / 1e6);
    else snprintf(buf, n, "%.2f s", ns / 1e9);
}

/* A measured or predicted figure: null when absent (< 0) or not finite,
 * else rounded to 6 significant digits (what --stats shows). */
static inline json_t *pxrun_json_num(double x)
{
    if (x < 0 || !isfinite(x)) return json_null();
    char b[32];
    snprintf(b, sizeof b, "%.6g", x);
    return json_real(strtod(b, NULL));
}

/* --json's object on f, two-space indented, and a newline; consumed. */
static inline void pxrun_json_print(FILE *f, json_t *o)
{
    if (!o || json_dumpf(o, f, JSON_INDENT(2) | JSON_REAL_PRECISION(7))) fputs("null", f);
    fputc('\n', f);
    json_decref(o);
}

#endif
