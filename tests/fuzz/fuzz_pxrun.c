/* fuzz_pxrun.c — libFuzzer target for what pxrun reads from the command
 * line and from .npy files, with no device: the bytes are
 *  - an argv (arguments separated by NUL bytes) for pxrun_parse_args, the
 *    code pxrun runs (tools/pxrun_args.h), then every --fill value read for
 *    each element type by pxrun_parse_fill;
 *  - a .npy image, parsed in memory (px_npy_parse) and read from a file
 *    (px_npy_read, which checks the header before reading data): both must
 *    agree, to the byte;
 *  - text for px_parse_int and px_parse_float.
 * Each result is checked against what the functions promise (values in
 * range, integers whole, names unique); a broken promise traps, which
 * libFuzzer reports as a crash. Built and run by tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/pxrun_args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Links runtime/npy.c and runtime/dtype.c only (libc): no Vulkan runtime. */

#define PROMISE(c)                  \
    do {                            \
        if (!(c)) __builtin_trap(); \
    } while (0)

static void check_args(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf) return;
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[130];
    int argc = 0;
    argv[argc++] = "pxrun";
    for (size_t i = 0; i <= size && argc < 129;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;
    Opts o;
    memset(&o, 0, sizeof o);
    char err[1024];
    int r = pxrun_parse_args(argc, argv, &o, err, sizeof err);
    PROMISE(r >= PXRUN_OK && r <= PXRUN_USAGE);
    if (r == PXRUN_ERROR || r == PXRUN_USAGE) PROMISE(err[0] && memchr(err, 0, sizeof err));
    if (r == PXRUN_OK) {
        PROMISE(o.file || o.calibrate);
        PROMISE(o.repeat >= 0 && o.repeat <= 1000000 && o.opt >= 0 && o.opt <= 2);
        const Pair *sets[4] = {o.args, o.sizes, o.fills, o.outs};
        int ns[4] = {o.nargs, o.nsizes, o.nfills, o.nouts};
        for (int s = 0; s < 4; s++)
            for (int i = 0; i < ns[s]; i++) {
                PROMISE(sets[s][i].name[0] && !strchr(sets[s][i].name, '='));
                for (int j = 0; j < i; j++) PROMISE(strcmp(sets[s][i].name, sets[s][j].name));
            }
        for (int i = 0; i < o.nfills; i++)
            for (int t = PX_F32; t <= PX_F16; t++) {
                FillSpec fs;
                if (pxrun_parse_fill(&o.fills[i], (PxDtype)t, &fs, err, sizeof err)) continue;
                PROMISE(fs.mode >= 0 && fs.mode <= 2);
                if (fs.mode) continue;
                double v = fs.val;
                if (t == PX_I32) PROMISE(v == floor(v) && v >= INT32_MIN && v <= INT32_MAX);
                if (t == PX_U32) PROMISE(v == floor(v) && v >= 0 && v <= UINT32_MAX);
                if (t == PX_F32 && isfinite(v)) PROMISE(fabs(v) <= PX_FLOAT_MAX);
                if (t == PX_F16 && isfinite(v)) PROMISE(fabs(v) <= PX_HALF_MAX);
            }
    }
    pxrun_free_opts(&o);
    free(buf);
}

static char npy_path[64];
static int npy_fd = -1;

static void check_npy(const uint8_t *data, size_t size)
{
    PxNpy a, b;
    char ea[512], eb[512];
    PxResult ra = px_npy_parse("f.npy", data, size, &a, ea, sizeof ea);
    if (ra == PX_OK) {
        PROMISE(a.rank >= 0 && a.rank <= 4 && a.count >= 0);
        int64_t c = 1;
        for (int i = 0; i < a.rank; i++) c *= a.shape[i];
        PROMISE(c == a.count && (size_t)a.count * px_dtype_size(a.dtype) <= size);
    }
    if (npy_fd < 0) {
        snprintf(npy_path, sizeof npy_path, "/tmp/fuzz_pxrun.XXXXXX");
        npy_fd = mkstemp(npy_path);
    }
    if (npy_fd >= 0 && ftruncate(npy_fd, 0) == 0 && pwrite(npy_fd, data, size, 0) == (ssize_t)size) {
        PxResult rb = px_npy_read(npy_path, &b, eb, sizeof eb);
        PROMISE((ra == PX_OK) == (rb == PX_OK));
        if (ra == PX_OK && rb == PX_OK) {
            PROMISE(a.dtype == b.dtype && a.rank == b.rank && a.count == b.count);
            PROMISE(!memcmp(a.shape, b.shape, sizeof a.shape));
            PROMISE(!memcmp(a.data, b.data, (size_t)a.count * px_dtype_size(a.dtype)));
        }
        px_npy_free(&b);
    }
    px_npy_free(&a);
}

static void check_numbers(const uint8_t *data, size_t size)
{
    char t[64];
    size_t n = size < sizeof t - 1 ? size : sizeof t - 1;
    memcpy(t, data, n);
    t[n] = 0;
    int64_t v = 0, w = 0;
    if (!px_parse_int(t, -1000, 1000000, &v)) {
        PROMISE(v >= -1000 && v <= 1000000);
        char back[32];
        snprintf(back, sizeof back, "%lld", (long long)v);
        PROMISE(!px_parse_int(back, INT64_MIN, INT64_MAX, &w) && w == v);
    }
    double d = 0;
    if (!px_parse_float(t, PX_FLOAT_MAX, &d)) PROMISE(!isfinite(d) || fabs(d) <= PX_FLOAT_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_args(data, size);
    check_npy(data, size);
    check_numbers(data, size);
    return 0;
}
