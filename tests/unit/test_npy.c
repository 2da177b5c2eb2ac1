/* test_npy.c — .npy reading and writing: images built byte by byte here
 * (as NumPy lays them out), round trips through files, and every defect
 * that must be a clear error rather than a crash; the half conversions
 * against the reference ones of pxtest.h. */
#include <stdlib.h>
#include <unistd.h>

#include "pxtest.h"
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

static unsigned char img[1 << 16];
static char err[512];

TEST(parse_versions)
{
    float d[6] = {1, 2, 3, 4, 5, 6};
    for (int v = 1; v <= 3; v++) {
        size_t n = image(img, v, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", d, sizeof d);
        PxNpy a;
        PxResult r = px_npy_parse("t.npy", img, n, &a, err, sizeof err);
        CHECK_MSG(r == PX_OK, "v%d: %s", v, err);
        if (r) continue;
        CHECK(a.dtype == PX_F32 && a.rank == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.count == 6);
        CHECK(!memcmp(a.data, d, sizeof d));
        px_npy_free(&a);
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
        size_t n = image(img, 1, cases[i].dict, d, cases[i].bytes);
        PxNpy a;
        PxResult r = px_npy_parse("t.npy", img, n, &a, err, sizeof err);
        CHECK_MSG(r == PX_OK, "case %zu: %s", i, err);
        if (r) continue;
        CHECK_MSG(a.dtype == cases[i].t && a.rank == cases[i].rank && a.count == cases[i].count,
                  "case %zu: dtype %d rank %d count %lld", i, a.dtype, a.rank, (long long)a.count);
        px_npy_free(&a);
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
        size_t n = image(img, 1, cases[i].dict, d, cases[i].bytes);
        PxNpy a;
        PxResult r = px_npy_parse("bad.npy", img, n, &a, err, sizeof err);
        CHECK_MSG(r != PX_OK && strstr(err, cases[i].want) && strstr(err, "bad.npy"),
                  "case %zu: got %d '%s', wanted '%s'", i, r, err, cases[i].want);
        if (!r) px_npy_free(&a);
    }
    /* structural damage */
    PxNpy a;
    CHECK(px_npy_parse("m.npy", (const unsigned char *)"hello", 5, &a, err, sizeof err) == PX_ERR_IO &&
          strstr(err, "not a .npy"));
    size_t n = image(img, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", d, 16);
    img[6] = 4;
    CHECK(px_npy_parse("v.npy", img, n, &a, err, sizeof err) == PX_ERR_UNSUPPORTED && strstr(err, "version 4.0"));
    n = image(img, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", d, 16);
    CHECK(px_npy_parse("h.npy", img, 40, &a, err, sizeof err) == PX_ERR_IO && strstr(err, "truncated"));
    /* every prefix of a good file fails cleanly */
    int clean = 1;
    for (size_t k = 0; k < n; k++) {
        PxResult r = px_npy_parse("p.npy", img, k, &a, err, sizeof err);
        if (r == PX_OK) {
            clean = 0;
            px_npy_free(&a);
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
    CHECK(px_npy_write(path, PX_F16, 2, shape, h, err, sizeof err) == PX_OK);
    PxNpy a;
    CHECK(px_npy_read(path, &a, err, sizeof err) == PX_OK);
    CHECK(a.dtype == PX_F16 && a.rank == 2 && a.shape[0] == 3 && a.shape[1] == 5 && !memcmp(a.data, h, 30));
    px_npy_free(&a);
    /* the header is 64-byte aligned as NumPy requires */
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(img, 1, sizeof img, f) : 0;
    if (f) fclose(f);
    CHECK(n > 30 && (n - 30) % 64 == 0 && img[n - 31] == '\n');
    int64_t s1[1] = {4};
    uint32_t u[4] = {1, 2, 3, 0xffffffffu};
    CHECK(px_npy_write(path, PX_U32, 1, s1, u, err, sizeof err) == PX_OK);
    CHECK(px_npy_read(path, &a, err, sizeof err) == PX_OK && a.dtype == PX_U32 && a.rank == 1 && a.count == 4 &&
          ((uint32_t *)a.data)[3] == 0xffffffffu);
    px_npy_free(&a);
    remove(path);
    CHECK(px_npy_read("/nonexistent/x.npy", &a, err, sizeof err) == PX_ERR_NOT_FOUND && strstr(err, "cannot open"));
}

/* The value a half bit pattern means is the same either way: NaN-ness
 * for NaNs, else equal (every half is exact as a float and a double). */
static int same_value(double got, double want)
{
    return isnan(want) ? isnan(got) : got == want && signbit(got) == signbit(want);
}
static int is_half_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }

TEST(half_conversions)
{
    /* a few fixed IEEE binary16 bit patterns, so the reference itself is
     * pinned down too */
    CHECK(px_float_to_half(1.0f) == 0x3c00 && to_half(1.0f) == 0x3c00);
    CHECK(px_float_to_half(-2.0f) == 0xc000 && to_half(-2.0f) == 0xc000);
    CHECK(px_float_to_half(65504.0f) == 0x7bff && to_half(65504.0f) == 0x7bff);
    CHECK(px_float_to_half(5.9604645e-8f) == 0x0001 && to_half(5.9604645e-8f) == 0x0001);
    CHECK(from_half(0x3555) > 0.333 && from_half(0x3555) < 0.3334);

    /* every half to float, and back from the reference's value (not the
     * runtime's): exact, NaN to some NaN */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        double want = from_half((uint16_t)h);
        float got = px_half_to_float((uint16_t)h);
        uint16_t back = px_float_to_half((float)want);
        if (!same_value(got, want) || (is_half_nan((uint16_t)h) ? !is_half_nan(back) : back != h)) {
            if (!bad++)
                CHECK_MSG(0, "half 0x%04x: px_half_to_float %.9g, want %.9g; px_float_to_half of it 0x%04x", h,
                          (double)got, want, back);
        }
    }
    CHECK_MSG(bad == 0, "%d half patterns wrong", bad);

    /* floats between halves: ties (to even, both ways), just off a tie,
     * subnormal halves and their ties, below half the smallest subnormal,
     * float denormals, the overflow edge (65520 is the tie between 65504
     * and infinity), infinities and NaNs */
    const float fs[] = {
        0.0f, -0.0f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 1.0f + 5.0f / 2048,
        nextafterf(1.0f + 1.0f / 2048, 2.0f), nextafterf(1.0f + 3.0f / 2048, 0.0f), -(1.0f + 1.0f / 2048),
        2049.0f, 2051.0f, 0.1f, 1.0f / 3, 3.14159265f, -1e-3f,
        ldexpf(1.0f, -24), ldexpf(1.0f, -25), nextafterf(ldexpf(1.0f, -25), 1.0f), ldexpf(3.0f, -25),
        ldexpf(5.0f, -25), ldexpf(1.0f, -26), ldexpf(1023.5f, -24), ldexpf(1023.0f, -24), ldexpf(2047.0f, -25),
        ldexpf(1.0f, -14), ldexpf(1.0f, -15), -ldexpf(3.0f, -25), 1e-40f, -1e-45f, 1.17549435e-38f,
        65504.0f, 65519.0f, 65519.996f, 65520.0f, -65520.0f, 65536.0f, 1e6f, 3.4e38f, -3.4e38f,
        INFINITY, -INFINITY, NAN, -NAN,
    };
    for (size_t i = 0; i < sizeof fs / sizeof *fs; i++) {
        uint16_t got = px_float_to_half(fs[i]), want = to_half(fs[i]);
        CHECK_MSG(is_half_nan(want) ? is_half_nan(got) && (got & 0x8000) == (want & 0x8000) : got == want,
                  "px_float_to_half(%.9g) = 0x%04x, want 0x%04x", (double)fs[i], got, want);
    }

    /* and a sweep over the float bit patterns (a stride prime to every
     * power of two, so all low mantissa bits vary) */
    bad = 0;
    for (uint64_t x = 0; x < 0x100000000u; x += 4099) {
        uint32_t u = (uint32_t)x;
        float f;
        memcpy(&f, &u, 4);
        uint16_t got = px_float_to_half(f), want = to_half(f);
        if (is_half_nan(want) ? !is_half_nan(got) : got != want) {
            if (!bad++) CHECK_MSG(0, "px_float_to_half(0x%08x) = 0x%04x, want 0x%04x", u, got, want);
        }
    }
    CHECK_MSG(bad == 0, "%d of the swept floats wrong", bad);
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
