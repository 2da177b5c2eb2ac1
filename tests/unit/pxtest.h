/* pxtest.h — helpers shared by the unit tests that drive the embedding API
 * (include/px.h): one context per test program, modules kept until the
 * program destroys them, buffers made from host data and read back. */
#ifndef PX_PXTEST_H
#define PX_PXTEST_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "px.h"

static PxContext *ctx;
static PxModule *mods[256];
static int nmods;

/* Compiles src as `file` and makes a launch of kernel; NULL (with the
 * diagnostics on stderr) when either fails. The module goes to mods[]. */
static PxLaunch *compile_launch(const char *src, const char *kernel, const char *file)
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

static PxBuffer *buf(PxDtype t, int rank, const int64_t *shape, const void *data)
{
    PxBuffer *b;
    if (px_buffer_create(ctx, t, rank, shape, &b)) return NULL;
    if (data && px_buffer_write(b, data, px_buffer_bytes(b))) return NULL;
    return b;
}

/* A malloc'd copy of the launch's buffer `name` (4 spare bytes), or NULL. */
static void *readback(PxLaunch *l, const char *name)
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
