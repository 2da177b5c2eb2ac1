/* test_npy.c — .npy reading and writing: images built byte by byte here
 * (as NumPy lays them out), round trips through files, and every defect
 * that must be a clear error rather than a crash. */
#include <stdlib.h>
#include <unistd.h>

#include "runtime/rt.h"
#include "test.h"

/* Builds a .npy image: magic, version, header dict padded to 64, data. */
static size_t image(unsigned char *out, int major, const char *dict, const void *data, size_t nbytes)
{
    size_t pre = major == 1 ? 10 : 12;
    size_t dl = strlen(dict);
    size_t total = pre + dl + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hl = dl + pad + 1;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    if (major == 1) {
        out[8] = (unsigned char)(hl & 255);
        out[9] = (unsigned char)(hl >> 8);
    } else {
        for (int i = 0; i < 4; i++) out[8 + i] = (unsigned char)(hl >> (8 * i));
    }
    memcpy(out + pre, dict, dl);
    memset(out + pre + dl, ' ', pad);
    out[pre + dl + pad] = '\n';
    memcpy(out + pre + hl, data, nbytes);
    return pre + hl + nbytes;
}

static unsigned char buf[1 << 16];
static char err[512];

TEST(parse_versions)
{
    float d[6] = {1, 2, 3, 4, 5, 6};
    for (int v = 1; v <= 3; v++) {
        size_t n = image(buf, v, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", d, sizeof d);
        RtNpy a;
        PxResult r = rt_npy_parse("t.npy", buf, n, &a, err, sizeof err);
        CHECK_MSG(r == PX_OK, "v%d: %s", v, err);
        if (r) continue;
        CHECK(a.dtype == PX_F32 && a.rank == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.count == 6);
        CHECK(!memcmp(a.data, d, sizeof d));
        rt_npy_free(&a);
    }
}

TEST(parse_dtypes_and_shapes)
{
    int32_t d[8] = {-1, 2, -3, 4};
    struct { const char *dict; PxDtype t; int rank; int64_t count; size_t bytes; } cases[] = {
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", PX_I32, 1, 4, 16},
        {"{'descr': '<u4', 'fortran_order': False, 'shape': (2, 2), }", PX_U32, 2, 4, 16},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2, 2, 2), }", PX_F16, 4, 8, 16},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", PX_F32, 0, 1, 4},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", PX_F32, 1, 0, 0},
        /* column-major with one non-trivial axis is the same bytes */
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (4, 1), }", PX_F32, 2, 4, 16},
        {"{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (4,)}", PX_I32, 1, 4, 16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = image(buf, 1, cases[i].dict, d, cases[i].bytes);
        RtNpy a;
        PxResult r = rt_npy_parse("t.npy", buf, n, &a, err, sizeof err);
        CHECK_MSG(r == PX_OK, "case %zu: %s", i, err);
        if (r) continue;
        CHECK_MSG(a.dtype == cases[i].t && a.rank == cases[i].rank && a.count == cases[i].count,
                  "case %zu: dtype %d rank %d count %lld", i, a.dtype, a.rank, (long long)a.count);
        rt_npy_free(&a);
    }
}

/* Each bad image gives an error whose text contains `want`. */
TEST(parse_errors)
{
    float d[16] = {0};
    struct { const char *dict; size_t bytes; const char *want; } cases[] = {
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", 32, "dtype '<f8' is not supported"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", 16, "big-endian"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 12, "truncated"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 20, "bytes of data follow"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, "Fortran"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }", 4, "rank above 4"},
        {"{'descr': '<f4', 'fortran_order': False, }", 16, "no 'shape'"},
        {"{'fortran_order': False, 'shape': (4,), }", 16, "no 'descr'"},
        {"{'descr': '<f4', 'shape': (4,), }", 16, "fortran_order"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (x,), }", 16, "malformed 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 16, "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576, 1048576), }", 16, "2^40"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = image(buf, 1, cases[i].dict, d, cases[i].bytes);
        RtNpy a;
        PxResult r = rt_npy_parse("bad.npy", buf, n, &a, err, sizeof err);
        CHECK_MSG(r != PX_OK && strstr(err, cases[i].want) && strstr(err, "bad.npy"),
                  "case %zu: got %d '%s', wanted '%s'", i, r, err, cases[i].want);
        if (!r) rt_npy_free(&a);
    }
    /* structural damage */
    RtNpy a;
    CHECK(rt_npy_parse("m.npy", (const unsigned char *)"hello", 5, &a, err, sizeof err) == PX_ERR_IO &&
          strstr(err, "not a .npy"));
    size_t n = image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", d, 16);
    buf[6] = 4;
    CHECK(rt_npy_parse("v.npy", buf, n, &a, err, sizeof err) == PX_ERR_UNSUPPORTED && strstr(err, "version 4.0"));
    n = image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", d, 16);
    CHECK(rt_npy_parse("h.npy", buf, 40, &a, err, sizeof err) == PX_ERR_IO && strstr(err, "truncated"));
    /* every prefix of a good file fails cleanly */
    int clean = 1;
    for (size_t k = 0; k < n; k++) {
        PxResult r = rt_npy_parse("p.npy", buf, k, &a, err, sizeof err);
        if (r == PX_OK) {
            clean = 0;
            rt_npy_free(&a);
        }
    }
    CHECK(clean);
}

TEST(file_round_trip)
{
    char path[] = "/tmp/px_test_npy_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    uint16_t h[15];
    for (int i = 0; i < 15; i++) h[i] = (uint16_t)(0x3c00 + i);
    int64_t shape[2] = {3, 5};
    CHECK(rt_npy_write(path, PX_F16, 2, shape, h, err, sizeof err) == PX_OK);
    RtNpy a;
    CHECK(rt_npy_read(path, &a, err, sizeof err) == PX_OK);
    CHECK(a.dtype == PX_F16 && a.rank == 2 && a.shape[0] == 3 && a.shape[1] == 5 && !memcmp(a.data, h, 30));
    rt_npy_free(&a);
    /* the header is 64-byte aligned as NumPy requires */
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(n > 30 && (n - 30) % 64 == 0 && buf[n - 31] == '\n');
    int64_t s1[1] = {4};
    uint32_t u[4] = {1, 2, 3, 0xffffffffu};
    CHECK(rt_npy_write(path, PX_U32, 1, s1, u, err, sizeof err) == PX_OK);
    CHECK(rt_npy_read(path, &a, err, sizeof err) == PX_OK && a.dtype == PX_U32 && a.rank == 1 && a.count == 4 &&
          ((uint32_t *)a.data)[3] == 0xffffffffu);
    rt_npy_free(&a);
    remove(path);
    CHECK(rt_npy_read("/nonexistent/x.npy", &a, err, sizeof err) == PX_ERR_NOT_FOUND && strstr(err, "cannot open"));
}

TEST(half_conversions)
{
    /* exact values and rounding, checked against IEEE binary16 bit patterns */
    CHECK(px_float_to_half(1.0f) == 0x3c00);
    CHECK(px_float_to_half(-2.0f) == 0xc000);
    CHECK(px_float_to_half(65504.0f) == 0x7bff);
    CHECK(px_float_to_half(1e6f) == 0x7c00);
    CHECK(px_float_to_half(5.9604645e-8f) == 0x0001); /* smallest subnormal */
    CHECK(px_float_to_half(1.0f + 1.0f / 2048) == 0x3c00); /* tie to even */
    CHECK(px_float_to_half(1.0f + 3.0f / 2048) == 0x3c02);
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float f = px_half_to_float((uint16_t)h);
        if (px_float_to_half(f) != h) {
            CHECK_MSG(0, "half 0x%04x does not round-trip", h);
            break;
        }
    }
    CHECK(px_half_to_float(0x3555) > 0.333f && px_half_to_float(0x3555) < 0.3334f);
}

int main(void)
{
    RUN(parse_versions);
    RUN(parse_dtypes_and_shapes);
    RUN(parse_errors);
    RUN(file_round_trip);
    RUN(half_conversions);
    return TEST_DONE();
}
