/* common.h: what both benchmark hosts share (vkbench.c, the hand-written
 * GLSL baselines on raw Vulkan, and pxbench.c, the PX kernels through
 * px.h): deterministic inputs, the plain C references every result is
 * verified against, medians, and the JSON result file.  Header-only so that
 * bench/run.sh can build each host with one gcc line. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_RUNS 64

/* Benchmark sizes; --small shrinks them for a quick correctness pass. */
#define BENCH_N(small) ((small) ? 1u << 16 : 16u << 20)        /* saxpy, sum, scan */
#define BENCH_MM(small) ((small) ? 256u : 1024u)                /* M = N = K */
#define BENCH_SM_ROWS(small) ((small) ? 256u : 4096u)
#define BENCH_SM_COLS 1024u
#define BENCH_TR(small) ((small) ? 300u : 4096u)              /* M = N */

/* Matmul at any size: PX's PARALLEL_MATMUL against bench/glsl/matmul_any.comp
 * (one kernel for any M, N, K), at sizes that are not multiples of the
 * 128x128x8 tile beside the multiples nearest them (640 and 768 around 700,
 * 1024 above 1000, 256x200x512 beside 300x200x500), so that a cliff at odd
 * sizes shows as a per-flop ratio within one run. */
typedef struct BenchGemm {
    const char *name;
    uint32_t m, k, n;        /* C[M][N] = A[M][K] x B[K][N] */
    uint32_t sm, sk, sn;     /* --small */
} BenchGemm;
static const BenchGemm bench_gemms[] = {
    {"gemm640", 640, 640, 640, 128, 128, 128},
    {"gemm700", 700, 700, 700, 100, 100, 100},
    {"gemm768", 768, 768, 768, 256, 256, 256},
    {"gemm1000", 1000, 1000, 1000, 129, 129, 129},
    {"gemm1024", 1024, 1024, 1024, 256, 8, 256},
    {"gemm300x200x500", 300, 200, 500, 30, 7, 50},
    {"gemm256x200x512", 256, 200, 512, 128, 8, 128},   /* the multiple nearest 300x200x500 */
};
#define BENCH_NGEMM ((int)(sizeof bench_gemms / sizeof bench_gemms[0]))

static inline double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (mean of the middle two for even n); sorts v. */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Deterministic inputs: xorshift32, identical on every run and machine.
 * Each benchmark reseeds, so both hosts see the same data. */
static uint32_t bench_rng_state = 2463534242u;
static inline void bench_seed(uint32_t s) { bench_rng_state = s ? s : 2463534242u; }
static inline uint32_t bench_rand(void)
{
    bench_rng_state ^= bench_rng_state << 13;
    bench_rng_state ^= bench_rng_state >> 17;
    bench_rng_state ^= bench_rng_state << 5;
    return bench_rng_state;
}
/* Uniform in [lo, hi). */
static inline float bench_randf(float lo, float hi)
{
    return lo + (hi - lo) * (float)((bench_rand() >> 8) * (1.0 / 16777216.0));
}

static inline void *bench_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "bench: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

/* ---- inputs ------------------------------------------------------------- */

static inline void bench_fill_uniform(float *v, size_t n, float lo, float hi, uint32_t seed)
{
    bench_seed(seed);
    for (size_t i = 0; i < n; i++)
        v[i] = bench_randf(lo, hi);
}

static inline void bench_fill_ints(int32_t *v, size_t n, uint32_t seed)
{
    bench_seed(seed);
    for (size_t i = 0; i < n; i++)
        v[i] = (int32_t)(bench_rand() % 201) - 100;
}

/* ---- references: each returns 1 when `out` is right; *max_err gets the
 * largest deviation seen ---------------------------------------------------- */

/* y = a*x + y; the device may contract to an fma, so allow a rounding. */
static inline int bench_check_saxpy(float a, const float *x, const float *y, const float *out,
                                    size_t n, double *max_err)
{
    int ok = 1;
    *max_err = 0;
    for (size_t i = 0; i < n; i++) {
        double ref = (double)a * x[i] + y[i];
        double e = fabs((double)out[i] - ref);
        if (e > *max_err)
            *max_err = e;
        if (e > 1e-6 * (fabs(ref) + 1.0))
            ok = 0;
    }
    return ok;
}

/* Any summation order errs by at most ~n*eps*sum|x| and a tree sum by far
 * less, so 1e-5 of sum|x| checks the value.  A single missing or doubled
 * element is below that: callers also sum all ones, which must be exact. */
static inline int bench_check_sum(const float *x, size_t n, float got, double *max_err)
{
    double ref = 0, mag = 0;
    for (size_t i = 0; i < n; i++) {
        ref += x[i];
        mag += fabs(x[i]);
    }
    *max_err = fabs(got - ref);
    return *max_err <= 1e-5 * mag;
}

/* C = A*B with A M x K, B K x N.  A full reference is M*N*K host FMAs;
 * 4096 random entries plus the four corners of every 128x128 tile (the
 * last tiles clipped to the matrix) catch indexing and edge errors just as
 * well, checked against a double sum within 1e-5 of sum |a*b|. */
static inline int bench_check_gemm(const float *a, const float *b, const float *c, uint32_t m,
                                   uint32_t k, uint32_t n, double *max_err)
{
    int ok = 1;
    uint32_t tm = (m + 127) / 128, tn = (n + 127) / 128, nsample = 4096 + tm * tn * 4;
    *max_err = 0;
    bench_seed(99);
    for (uint32_t s = 0; s < nsample; s++) {
        uint32_t i, j;
        if (s < 4096) {
            i = bench_rand() % m;
            j = bench_rand() % n;
        } else {
            uint32_t t = (s - 4096) / 4, corner = (s - 4096) % 4;
            uint32_t r0 = (t / tn) * 128, c0 = (t % tn) * 128;
            uint32_t r1 = r0 + 127 < m ? r0 + 127 : m - 1, c1 = c0 + 127 < n ? c0 + 127 : n - 1;
            i = corner & 1 ? r1 : r0;
            j = corner & 2 ? c1 : c0;
        }
        double ref = 0, mag = 0;
        for (uint32_t x = 0; x < k; x++) {
            double p = (double)a[(size_t)i * k + x] * b[(size_t)x * n + j];
            ref += p;
            mag += fabs(p);
        }
        double e = fabs(c[(size_t)i * n + j] - ref);
        if (e > *max_err)
            *max_err = e;
        if (e > 1e-5 * mag + 1e-6)
            ok = 0;
    }
    return ok;
}

static inline int bench_check_matmul(const float *a, const float *b, const float *c,
                                     uint32_t n, double *max_err)
{
    return bench_check_gemm(a, b, c, n, n, n, max_err);
}

/* Row softmax against a double reference, within 1e-5 relative. */
static inline int bench_check_softmax(const float *a, const float *out, uint32_t rows,
                                      uint32_t cols, double *max_err)
{
    int ok = 1;
    *max_err = 0;
    for (uint32_t i = 0; i < rows; i++) {
        const float *x = a + (size_t)i * cols;
        double m = x[0], s = 0;
        for (uint32_t j = 1; j < cols; j++)
            m = x[j] > m ? x[j] : m;
        for (uint32_t j = 0; j < cols; j++)
            s += exp(x[j] - m);
        for (uint32_t j = 0; j < cols; j++) {
            double ref = exp(x[j] - m) / s;
            double e = fabs(out[(size_t)i * cols + j] - ref);
            if (e > *max_err)
                *max_err = e;
            if (e > 1e-5 * ref + 1e-9)
                ok = 0;
        }
    }
    return ok;
}

/* out[N][M] = in[M][N]^T, exact. */
static inline int bench_check_transpose(const float *in, const float *out, uint32_t m, uint32_t n,
                                        double *max_err)
{
    *max_err = 0;
    for (uint32_t i = 0; i < m; i++)
        for (uint32_t j = 0; j < n; j++)
            if (out[(size_t)j * m + i] != in[(size_t)i * n + j]) {
                fprintf(stderr, "bench: transpose[%u][%u] = %g, expected %g\n", j, i,
                        out[(size_t)j * m + i], in[(size_t)i * n + j]);
                *max_err = 1;
                return 0;
            }
    return 1;
}

/* Inclusive int prefix sum, exact (wrapping like the device's adds). */
static inline int bench_check_scan(const int32_t *x, const int32_t *out, size_t n,
                                   double *max_err)
{
    uint32_t acc = 0;
    *max_err = 0;
    for (size_t i = 0; i < n; i++) {
        acc += (uint32_t)x[i];
        if ((uint32_t)out[i] != acc) {
            fprintf(stderr, "bench: scan[%zu] = %d, expected %d\n", i, out[i], (int32_t)acc);
            *max_err = 1;
            return 0;
        }
    }
    return 1;
}

/* ---- results ----------------------------------------------------------- */

typedef struct BenchResult {
    const char *name;
    char shape[32];
    int runs;
    double gpu_ms[BENCH_MAX_RUNS];   /* timestamps around the kernel's dispatches */
    double wall_ms[BENCH_MAX_RUNS];  /* host: submit to wait returning */
    double median_ms, min_ms, wall_median_ms;
    int verified;
    double max_err;
    const char *error;               /* set when the kernel could not run */
} BenchResult;

static inline void bench_summarise(BenchResult *r)
{
    double tmp[BENCH_MAX_RUNS];
    memcpy(tmp, r->gpu_ms, sizeof tmp);
    r->median_ms = bench_median(tmp, r->runs);
    r->min_ms = tmp[0];
    memcpy(tmp, r->wall_ms, sizeof tmp);
    r->wall_median_ms = bench_median(tmp, r->runs);
}

static inline void bench_print(const BenchResult *r)
{
    if (r->error)
        printf("%-8s %-16s FAILED: %s\n", r->name, r->shape, r->error);
    else
        printf("%-8s %-16s median %9.3f ms  min %9.3f ms  wall %9.3f ms  %s (max err %.3g)\n",
               r->name, r->shape, r->median_ms, r->min_ms, r->wall_median_ms,
               r->verified ? "verified" : "WRONG", r->max_err);
    fflush(stdout);
}

typedef struct BenchLaunch {
    int iters;
    double median_us, min_us;
    int verified;
    const char *error;
} BenchLaunch;

static inline void bench_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++)
        if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20)
            fputc(*s, f);
    fputc('"', f);
}

/* The file both hosts write; bench/report.py merges the two. */
static inline int bench_write_json(const char *path, const char *host, const char *device,
                                   unsigned subgroup, int runs, const BenchResult *rs, int nr,
                                   const BenchLaunch *launch)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "{\n  \"host\": ");
    bench_json_str(f, host);
    fprintf(f, ",\n  \"device\": ");
    bench_json_str(f, device);
    fprintf(f, ",\n  \"subgroup_size\": %u,\n  \"runs\": %d,\n  \"kernels\": {", subgroup, runs);
    for (int i = 0; i < nr; i++) {
        const BenchResult *r = &rs[i];
        fprintf(f, "%s\n    ", i ? "," : "");
        bench_json_str(f, r->name);
        fprintf(f, ": {\"shape\": ");
        bench_json_str(f, r->shape);
        if (r->error) {
            fprintf(f, ", \"error\": ");
            bench_json_str(f, r->error);
            fprintf(f, "}");
            continue;
        }
        fprintf(f, ", \"verified\": %s, \"max_err\": %.6g, \"median_ms\": %.6f, "
                   "\"min_ms\": %.6f, \"wall_median_ms\": %.6f, \"gpu_ms\": [",
                r->verified ? "true" : "false", r->max_err, r->median_ms, r->min_ms,
                r->wall_median_ms);
        for (int j = 0; j < r->runs; j++)
            fprintf(f, "%s%.6f", j ? ", " : "", r->gpu_ms[j]);
        fprintf(f, "]}");
    }
    fprintf(f, "\n  }");
    if (launch) {
        fprintf(f, ",\n  \"launch\": {\"iters\": %d", launch->iters);
        if (launch->error) {
            fprintf(f, ", \"error\": ");
            bench_json_str(f, launch->error);
        } else {
            fprintf(f, ", \"verified\": %s, \"median_us\": %.3f, \"min_us\": %.3f",
                    launch->verified ? "true" : "false", launch->median_us, launch->min_us);
        }
        fprintf(f, "}");
    }
    fprintf(f, "\n}\n");
    return fclose(f);
}

/* ---- command line --------------------------------------------------------- */

typedef struct BenchOpts {
    const char *dir;        /* vkbench: SPIR-V folder; pxbench: .px folder */
    const char *only;       /* one benchmark name, or "launch" */
    const char *json;
    int runs;
    int launch_iters;
    int small;
    int device;             /* -1: the host's default choice */
} BenchOpts;

/* Returns 0, or prints usage and returns -1. */
static inline int bench_parse(int argc, char **argv, const char *dirflag, BenchOpts *o)
{
    *o = (BenchOpts){.runs = 5, .launch_iters = 2000, .device = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--small")) {
            o->small = 1;
            continue;
        }
        if (!v)
            goto usage;
        i++;
        if (!strcmp(a, dirflag))
            o->dir = v;
        else if (!strcmp(a, "--runs"))
            o->runs = atoi(v);
        else if (!strcmp(a, "--launch-iters"))
            o->launch_iters = atoi(v);
        else if (!strcmp(a, "--device"))
            o->device = atoi(v);
        else if (!strcmp(a, "--only"))
            o->only = v;
        else if (!strcmp(a, "--json"))
            o->json = v;
        else
            goto usage;
    }
    if (o->dir && o->runs >= 1 && o->runs <= BENCH_MAX_RUNS && o->launch_iters >= 1 &&
        o->launch_iters <= 1000000)
        return 0;
usage:
    fprintf(stderr, "usage: %s %s DIR [--runs 1..%d] [--launch-iters N] [--device N] "
                    "[--only NAME|launch] [--small] [--json FILE]\n",
            argv[0], dirflag, BENCH_MAX_RUNS);
    return -1;
}

/* Whether benchmark `name` is selected by --only. */
static inline int bench_selected(const BenchOpts *o, const char *name)
{
    return !o->only || !strcmp(o->only, name);
}

#endif
