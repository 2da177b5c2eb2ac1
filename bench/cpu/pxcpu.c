/* pxcpu.c — the PX side of the CPU benchmark: bench/px/{saxpy,sum,matmul}.px
 * on the CPU backend through the embedding API, same sizes, inputs and
 * thread count as cloops.c.
 *
 *   pxcpu KERNEL THREADS RUNS SIZE...   (saxpy N | sum N | matmul M N K)
 *
 * Prints `KERNEL median_ms min_ms checksum jit_ms`: wall time of
 * px_launch_run (everything a caller waits for) over RUNS timed runs after
 * one warm-up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "px.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define TRY(e)                                                                   \
    do {                                                                         \
        if ((e) != PX_OK) {                                                      \
            fprintf(stderr, "pxcpu: %s: %s\n", #e, ctx ? px_last_error(ctx) : "?"); \
            return 1;                                                            \
        }                                                                        \
    } while (0)

static PxBuffer *buf(PxContext *ctx, int rank, int64_t d0, int64_t d1, const float *data)
{
    int64_t sh[2] = {d0, d1};
    PxBuffer *b = NULL;
    if (px_buffer_create(ctx, PX_F32, rank, sh, &b)) return NULL;
    if (data && px_buffer_write(b, data, px_buffer_bytes(b))) return NULL;
    return b;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: pxcpu saxpy|sum|matmul THREADS RUNS SIZE...\n");
        return 2;
    }
    const char *k = argv[1];
    int nt = atoi(argv[2]), runs = atoi(argv[3]);
    int mm = !strcmp(k, "matmul");
    if (nt < 1 || runs < 1 || runs > 1000 || (mm && argc < 7)) return 2;
    int64_t n = atoll(argv[4]), m = 0, kk = 0;
    if (mm) m = atoll(argv[4]), n = atoll(argv[5]), kk = atoll(argv[6]);
    PxConfig cfg;
    px_config_default(&cfg);
    cfg.backend = PX_BACKEND_CPU;
    cfg.cpu_threads = nt;
    PxContext *ctx = NULL;
    char *err = NULL;
    if (px_context_create(&cfg, &ctx, &err)) {
        fprintf(stderr, "pxcpu: %s\n", err ? err : "no context");
        return 1;
    }
    char path[256];
    snprintf(path, sizeof path, "bench/px/%s.px", k);
    PxModule *mod;
    char *diags = NULL;
    TRY(px_module_compile_file(ctx, path, &mod, &diags));
    px_free(diags);
    PxKernel *kern;
    TRY(px_module_kernel(mod, NULL, &kern));
    PxLaunch *l;
    TRY(px_launch_create(kern, &l));
    int64_t nx = mm ? m * kk : n, ny = mm ? kk * n : n;
    float *x = malloc(4 * nx), *y = malloc(4 * ny), *out = malloc(4 * (mm ? m * n : n));
    if (!x || !y || !out) return 3;
    for (int64_t i = 0; i < nx; i++) x[i] = (float)(i % 1000) * 0.001f;
    for (int64_t i = 0; i < ny; i++) y[i] = (float)(i % 777) * 0.002f - 0.5f;
    PxBuffer *bx = mm ? buf(ctx, 2, m, kk, x) : buf(ctx, 1, n, 0, x);
    PxBuffer *by = mm ? buf(ctx, 2, kk, n, y) : !strcmp(k, "saxpy") ? buf(ctx, 1, n, 0, y) : buf(ctx, 1, 1, 0, NULL);
    PxBuffer *bc = mm ? buf(ctx, 2, m, n, NULL) : NULL;
    if (!bx || !by || (mm && !bc)) {
        fprintf(stderr, "pxcpu: buffers: %s\n", px_last_error(ctx));
        return 1;
    }
    if (mm) {
        TRY(px_launch_bind(l, "a", bx, NULL));
        TRY(px_launch_bind(l, "b", by, NULL));
        TRY(px_launch_bind(l, "c", bc, NULL));
    } else if (!strcmp(k, "saxpy")) {
        TRY(px_launch_set_float(l, "a", 2.5f));
        TRY(px_launch_bind(l, "x", bx, NULL));
        TRY(px_launch_bind(l, "y", by, NULL));
    } else {
        TRY(px_launch_bind(l, "x", bx, NULL));
        TRY(px_launch_bind(l, "r", by, NULL));
    }
    TRY(px_launch_prepare(l));
    double *t = malloc(sizeof(double) * runs), check = 0;
    for (int r = -1; r < runs; r++) {
        if (!strcmp(k, "saxpy")) TRY(px_buffer_write(by, y, 4 * n)); /* the same work every run */
        double t0 = now_ms();
        TRY(px_launch_run(l));
        double t1 = now_ms();
        if (r >= 0) t[r] = t1 - t0;
    }
    if (mm) {
        TRY(px_buffer_read(bc, out, 4 * m * n));
        check = out[(m / 2) * n + n / 3];
    } else if (!strcmp(k, "saxpy")) {
        TRY(px_buffer_read(by, out, 4 * n));
        check = out[n / 3];
    } else {
        TRY(px_buffer_read(by, out, 4));
        check = out[0];
    }
    qsort(t, runs, sizeof *t, cmp);
    printf("%s %.4f %.4f %.6g %.1f\n", k, t[runs / 2], t[0], check, px_kernel_jit_ms(kern));
    px_launch_destroy(l);
    px_buffer_destroy(bx);
    px_buffer_destroy(by);
    px_buffer_destroy(bc);
    px_module_destroy(mod);
    px_context_destroy(ctx);
    free(x), free(y), free(out), free(t);
    return 0;
}
