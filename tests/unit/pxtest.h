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

/* IEEE binary16 <-> float, the test's own reference: to_half rounds to
 * nearest even by integer arithmetic on the float's fields (infinity past
 * the largest half, a quiet NaN of the same sign for a NaN), from_half is
 * the value by the format's definition, with ldexp. */
static inline uint16_t to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int e = (int)((x >> 23) & 0xff) - 127 + 15;
    uint32_t m = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff && m) return (uint16_t)(sign | 0x7e00);
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        m |= 0x800000;
        int sh = 14 - e;
        uint32_t h = m >> sh, rem = m & ((1u << sh) - 1), half = 1u << (sh - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (m >> 13), rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}
static inline double from_half(uint16_t h)
{
    int e = (h >> 10) & 0x1f;
    double m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
    return (h & 0x8000) ? -v : v;
}

static PxContext *ctx;
static PxModule *mods[256];
static int nmods;

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
