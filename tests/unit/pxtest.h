/* pxtest.h — helpers shared by the unit tests that drive the embedding API
 * (include/px.h): one context per test program, modules kept until the
 * program destroys them, buffers made from host data and read back; and
 * reference IEEE binary16 conversions written apart from the runtime's.
 * The functions are static inline so that a test using only some of them
 * (test_npy.c: the half references) compiles without unused warnings. */
#ifndef PX_PXTEST_H
#define PX_PXTEST_H
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "px.h"

/* IEEE binary16 <-> float, the test's own reference, from the format's
 * definition rather than from bit manipulation like the runtime's:
 * from_half is the value a pattern denotes (ldexp); to_half searches the
 * finite halves for the nearest value, ties to the even pattern, and
 * gives infinity from 65520 (half an ulp past 65504) on and a quiet NaN
 * of the same sign for a NaN. */
static inline double from_half(uint16_t h)
{
    int e = (h >> 10) & 0x1f;
    double m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
    return (h & 0x8000) ? -v : v;
}
static inline uint16_t to_half(float f)
{
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    if (isnan(f)) return (uint16_t)(sign | 0x7e00);
    double a = fabs((double)f);
    if (a >= 65520.0) return (uint16_t)(sign | 0x7c00);
    /* the largest finite pattern whose value is <= a (values grow with
     * the pattern), then the nearer of it and the next */
    int lo = 0, hi = 0x7bff;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (from_half((uint16_t)mid) <= a) lo = mid;
        else hi = mid - 1;
    }
    if (lo < 0x7bff) {
        double below = a - from_half((uint16_t)lo), above = from_half((uint16_t)(lo + 1)) - a;
        if (above < below || (above == below && (lo & 1))) lo++;
    }
    return (uint16_t)(sign | lo);
}

static PxContext *ctx;
static PxModule *mods[256];
static int nmods;

static void pxtest_quiet(void *u, PxLogLevel lv, const char *msg)
{
    (void)u, (void)lv, (void)msg;
}

/* Opens *c on the default backend (PX_BACKEND selects it) with messages
 * dropped; 0 after printing `what: why` and the suite's closing line when
 * it cannot. */
static inline int pxtest_open_as(PxContext **c, const char *what)
{
    PxConfig cfg;
    px_config_default(&cfg);
    cfg.log = pxtest_quiet;
    char *err = NULL;
    if (px_context_create(&cfg, c, &err)) {
        printf("%s: %s\n0 passed, 1 failed\n", what, err ? err : "?");
        px_free(err);
        return 0;
    }
    return 1;
}

/* ctx, the suite's context (pxtest_open_as). */
static inline int pxtest_open(void)
{
    return pxtest_open_as(&ctx, "no device");
}

/* Compiles src as `file` and makes a launch of kernel; NULL (with the
 * diagnostics on stderr) when either fails. The module goes to mods[]. */
static inline PxLaunch *compile_launch(const char *src, const char *kernel, const char *file)
{
    PxModule *m;
    char *diags;
    if (px_module_compile(ctx, src, strlen(src), file, &m, &diags)) {
        fprintf(stderr, "compile failed: %s\n%s", px_last_error(ctx), diags ? diags : "");
        px_free(diags);
        return NULL;
    }
    px_free(diags);
    if (nmods < (int)(sizeof mods / sizeof *mods)) mods[nmods++] = m;
    PxKernel *k;
    PxLaunch *l;
    if (px_module_kernel(m, kernel, &k) || px_launch_create(k, &l)) return NULL;
    return l;
}

static inline PxBuffer *buf(PxDtype t, int rank, const int64_t *shape, const void *data)
{
    PxBuffer *b;
    if (px_buffer_create(ctx, t, rank, shape, &b)) return NULL;
    if (data && px_buffer_write(b, data, px_buffer_bytes(b))) return NULL;
    return b;
}

/* A malloc'd copy of the launch's buffer `name` (4 spare bytes), or NULL. */
static inline void *readback(PxLaunch *l, const char *name)
{
    PxBuffer *b = px_launch_buffer(l, name);
    if (!b) return NULL;
    void *d = malloc(px_buffer_bytes(b) + 4);
    if (px_buffer_read(b, d, px_buffer_bytes(b))) {
        free(d);
        return NULL;
    }
    return d;
}
#endif
