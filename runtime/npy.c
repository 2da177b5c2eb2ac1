/* npy.c — NumPy .npy files: format 1.0-3.0, little-endian, C order, the
 * four PX element types. Every defect of a file gets a message naming the
 * file and what is wrong; nothing a file says is trusted before it is
 * checked against the bytes that are really there. */
#include "px.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- numbers as text (px.h) ---------------------------------------------- */

int px_parse_int(const char *text, int64_t lo, int64_t hi, int64_t *out)
{
    if (!text) return 1;
    const char *p = text;
    int neg = *p == '-';
    if (neg) p++;
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) base = 16, p += 2;
    if (!*p) return 1;
    uint64_t v = 0;
    int over = 0;
    for (; *p; p++) {
        int d = isdigit((unsigned char)*p) ? *p - '0'
                : base == 16 && isxdigit((unsigned char)*p) ? tolower((unsigned char)*p) - 'a' + 10
                                                              : -1;
        if (d < 0) return 1;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) over = 1;
        else v = v * (uint64_t)base + (uint64_t)d;
    }
    /* within int64 first, then the caller's range */
    if (over || v > (uint64_t)INT64_MAX + (uint64_t)neg) return 2;
    int64_t s = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    if (s < lo || s > hi) return 2;
    *out = s;
    return 0;
}

int px_parse_float(const char *text, double max, double *out)
{
    if (!text || !*text || isspace((unsigned char)*text)) return 1;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end) return 1;
    /* an overflow gives ERANGE and +-HUGE_VAL; written "inf" does not */
    if ((errno == ERANGE && fabs(v) > 1.0) || (isfinite(v) && fabs(v) > max)) return 2;
    *out = v;
    return 0;
}

#define NPY_DTYPES(X)                   \
    X(PX_F32, "<f4") /* float */        \
    X(PX_I32, "<i4") /* int */          \
    X(PX_U32, "<u4") /* uint */         \
    X(PX_F16, "<f2") /* half */

const char *px_npy_descr(PxDtype t)
{
    switch (t) {
#define X(e, s) case e: return s;
        NPY_DTYPES(X)
#undef X
    }
    return "?";
}

void px_npy_free(PxNpy *n)
{
    if (!n) return;
    free(n->data);
    memset(n, 0, sizeof *n);
}

/* The header is a Python dict literal. Finds the value text after 'key':. */
static const char *dict_value(const char *h, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = h; (p = strpbrk(p, "'\"")) != NULL; p++) {
        if (!strncmp(p + 1, key, kl) && p[1 + kl] == *p) {
            const char *q = p + 2 + kl;
            while (*q == ' ') q++;
            if (*q != ':') return NULL;
            q++;
            while (*q == ' ') q++;
            return q;
        }
    }
    return NULL;
}

/* The magic, version, header length and header dict of the image p[0..n),
 * which needs to hold no data: out gets dtype, rank, shape and count,
 * *data_at where the data starts. A file is checked this far before any
 * of its data is read (px_npy_read). */
static PxResult npy_header(const char *name, const unsigned char *p, size_t n, PxNpy *out, size_t *data_at,
                           char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    if (n < 10 || memcmp(p, "\x93NUMPY", 6) != 0) {
        snprintf(err, errsz, "%s: not a .npy file (no \\x93NUMPY magic)", name);
        return PX_ERR_IO;
    }
    int major = p[6], minor = p[7];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = (size_t)p[8] | (size_t)p[9] << 8;
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (n < 12) {
            snprintf(err, errsz, "%s: truncated .npy header", name);
            return PX_ERR_IO;
        }
        hlen = (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24;
        hstart = 12;
    } else {
        snprintf(err, errsz, "%s: .npy format version %d.%d is not supported (1.0 to 3.0 are)", name,
                 major, minor);
        return PX_ERR_UNSUPPORTED;
    }
    if (hlen > n - hstart) {
        snprintf(err, errsz, "%s: truncated: header of %zu bytes but the file has %zu bytes", name,
                 hlen, n);
        return PX_ERR_IO;
    }
    if (hlen > 1 << 20) {
        snprintf(err, errsz, "%s: .npy header of %zu bytes is too long", name, hlen);
        return PX_ERR_IO;
    }
    char *h = malloc(hlen + 1);
    if (!h) {
        snprintf(err, errsz, "%s: out of memory", name);
        return PX_ERR_OUT_OF_MEMORY;
    }
    memcpy(h, p + hstart, hlen);
    h[hlen] = 0;
    for (size_t i = 0; i < hlen; i++)
        if (!h[i]) h[i] = ' '; /* a NUL inside would hide the rest from strchr */
    PxResult r = PX_ERR_IO;

    const char *v = dict_value(h, "descr");
    if (!v || (*v != '\'' && *v != '"')) {
        snprintf(err, errsz, "%s: .npy header has no 'descr'", name);
        goto out;
    }
    char q = *v++;
    const char *e = strchr(v, q);
    if (!e || e - v > 32) {
        snprintf(err, errsz, "%s: .npy header has a malformed 'descr'", name);
        goto out;
    }
    char descr[40];
    snprintf(descr, sizeof descr, "%.*s", (int)(e - v), v);
    int found = 0;
#define X(t, s) if (!found && !strcmp(descr, s)) { out->dtype = t; found = 1; }
    NPY_DTYPES(X)
#undef X
    if (!found) {
        /* '|' and '=' prefixes on 4-byte types mean native order: fine on
         * little-endian hosts only, so name the fix instead */
        snprintf(err, errsz,
                 "%s: dtype '%s' is not supported (PX reads <f4 float, <i4 int, <u4 uint, <f2 half%s)",
                 name, descr, descr[0] == '>' ? "; this file is big-endian: save with arr.astype(arr.dtype.newbyteorder('<'))" : "");
        r = PX_ERR_UNSUPPORTED;
        goto out;
    }

    v = dict_value(h, "fortran_order");
    if (!v) {
        snprintf(err, errsz, "%s: .npy header has no 'fortran_order'", name);
        goto out;
    }
    int fortran = !strncmp(v, "True", 4);
    if (!fortran && strncmp(v, "False", 5)) {
        snprintf(err, errsz, "%s: .npy header has a malformed 'fortran_order'", name);
        goto out;
    }

    v = dict_value(h, "shape");
    if (!v || *v != '(') {
        snprintf(err, errsz, "%s: .npy header has no 'shape' tuple", name);
        goto out;
    }
    v++;
    int rank = 0;
    int64_t count = 1;
    for (;;) {
        while (*v == ' ' || *v == ',') v++;
        if (*v == ')') break;
        if (!isdigit((unsigned char)*v)) {
            snprintf(err, errsz, "%s: .npy header has a malformed 'shape'", name);
            goto out;
        }
        char *end;
        errno = 0;
        unsigned long long d = strtoull(v, &end, 10);
        while (*end == 'L') end++; /* Python 2 longs */
        if (errno || d > (1ull << 40)) {
            snprintf(err, errsz, "%s: extent %.20s is too large", name, v);
            goto out;
        }
        if (rank == 4) {
            snprintf(err, errsz, "%s: arrays of rank above 4 are not supported", name);
            r = PX_ERR_UNSUPPORTED;
            goto out;
        }
        out->shape[rank++] = (int64_t)d;
        if (d && count > (INT64_C(1) << 40) / (int64_t)d) {
            snprintf(err, errsz, "%s: array of more than 2^40 elements", name);
            goto out;
        }
        count *= (int64_t)d;
        v = end;
    }
    if (fortran && rank > 1) {
        int many = 0;
        for (int i = 0; i < rank; i++) many += out->shape[i] > 1;
        if (many > 1) {
            snprintf(err, errsz,
                     "%s: Fortran-order (column-major) data is not supported: save it with "
                     "np.save(f, np.ascontiguousarray(a))",
                     name);
            r = PX_ERR_UNSUPPORTED;
            goto out;
        }
    }
    out->rank = rank;
    out->count = count;
    *data_at = hstart + hlen;
    r = PX_OK;
out:
    free(h);
    return r;
}

PxResult px_npy_parse(const char *name, const unsigned char *p, size_t n, PxNpy *out, char *err,
                      size_t errsz)
{
    size_t at;
    PxResult r = npy_header(name, p, n, out, &at, err, errsz);
    if (r) return r;
    r = PX_ERR_IO;
    size_t es = px_dtype_size(out->dtype);
    int64_t count = out->count;
    size_t need = (size_t)count * es, have = n - at;
    if (have < need) {
        snprintf(err, errsz,
                 "%s: truncated: header says %lld elements (%zu bytes) but only %zu bytes of data follow",
                 name, (long long)count, need, have);
        goto out;
    }
    if (have > need) {
        snprintf(err, errsz, "%s: %zu bytes of data follow but the header's shape needs %zu", name,
                 have, need);
        goto out;
    }
    out->data = malloc(need ? need : 1);
    if (!out->data) {
        snprintf(err, errsz, "%s: out of memory for %zu bytes", name, need);
        r = PX_ERR_OUT_OF_MEMORY;
        goto out;
    }
    memcpy(out->data, p + at, need);
    return PX_OK;
out:
    return r;
}

/* Reads up to n bytes; the count read (less only at end of file or on an
 * error, which *bad then says). */
static size_t read_some(int fd, void *buf, size_t n, int *bad)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            *bad = errno;
            break;
        }
        if (k == 0) break;
        got += (size_t)k;
    }
    return got;
}

PxResult px_npy_read(const char *path, PxNpy *out, char *err, size_t errsz)
{
    /* Nothing the file says is read past before it is checked: the magic
     * (6 bytes) and the header come first, then the data's size is known
     * and compared with the file's before it is allocated, so /dev/zero or
     * a huge wrong file fails after a few bytes. */
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errsz, "%s: cannot open: %s", path, strerror(errno));
        return errno == ENOENT ? PX_ERR_NOT_FOUND : PX_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        snprintf(err, errsz, "%s: is a directory, not a .npy file", path);
        return PX_ERR_IO;
    }
    int bad = 0;
    unsigned char pre[12];
    size_t got = read_some(fd, pre, 10, &bad);
    unsigned char *h = NULL;
    PxResult r = PX_ERR_IO;
    size_t hstart = 10, hlen = 0;
    if (bad) goto ioerr;
    if (got < 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        /* npy_header says what is wrong with these bytes */
        r = npy_header(path, pre, got, out, &hstart, err, errsz);
        close(fd);
        return r ? r : PX_ERR_IO;
    }
    if (pre[6] == 2 || pre[6] == 3) {
        got += read_some(fd, pre + 10, 2, &bad);
        if (bad) goto ioerr;
        hstart = 12;
    }
    if (got < hstart) {
        snprintf(err, errsz, "%s: truncated .npy header", path);
        goto fail;
    }
    if (pre[6] == 1) hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    else if (pre[6] == 2 || pre[6] == 3)
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    if (hlen > 1 << 20) hlen = (1 << 20) + 1; /* npy_header refuses it; read no more */
    h = malloc(hstart + hlen + 1);
    if (!h) {
        snprintf(err, errsz, "%s: out of memory", path);
        r = PX_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    memcpy(h, pre, hstart);
    got = hstart + read_some(fd, h + hstart, hlen, &bad);
    if (bad) goto ioerr;
    size_t at;
    if ((r = npy_header(path, h, got, out, &at, err, errsz))) goto fail;
    r = PX_ERR_IO;
    size_t need = (size_t)out->count * px_dtype_size(out->dtype);
    if (S_ISREG(st.st_mode) && st.st_size >= 0) {
        size_t have = (size_t)st.st_size > at ? (size_t)st.st_size - at : 0;
        if (have < need) {
            snprintf(err, errsz,
                     "%s: truncated: header says %lld elements (%zu bytes) but only %zu bytes of data follow", path,
                     (long long)out->count, need, have);
            goto fail;
        }
        if (have > need) {
            snprintf(err, errsz, "%s: %zu bytes of data follow but the header's shape needs %zu", path, have, need);
            goto fail;
        }
    }
    out->data = malloc(need ? need : 1);
    if (!out->data) {
        snprintf(err, errsz, "%s: out of memory for %zu bytes", path, need);
        r = PX_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    got = read_some(fd, out->data, need, &bad);
    if (bad) goto ioerr;
    if (got < need) {
        snprintf(err, errsz, "%s: truncated: header says %lld elements (%zu bytes) but only %zu bytes of data follow",
                 path, (long long)out->count, need, got);
        goto fail;
    }
    unsigned char extra;
    if (read_some(fd, &extra, 1, &bad) == 1) {
        snprintf(err, errsz, "%s: more data follows than the header's shape needs (%zu bytes)", path, need);
        goto fail;
    }
    if (bad) goto ioerr;
    free(h);
    close(fd);
    return PX_OK;
ioerr:
    snprintf(err, errsz, "%s: read error: %s", path, strerror(bad));
fail:
    free(h);
    close(fd);
    px_npy_free(out);
    return r;
}

PxResult px_npy_write(const char *path, PxDtype dtype, int rank, const int64_t *shape,
                      const void *data, char *err, size_t errsz)
{
    char dict[256], sh[160] = "";
    int64_t count = 1;
    size_t o = 0;
    for (int i = 0; i < rank; i++) {
        o += (size_t)snprintf(sh + o, sizeof sh - o, "%lld,%s", (long long)shape[i],
                              i + 1 < rank ? " " : "");
        count *= shape[i];
    }
    if (rank > 1) sh[o - 1] = 0; /* "(3, 4)" not "(3, 4,)" */
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                      px_npy_descr(dtype), sh);
    /* total header (10 + dict + pad + '\n') is a multiple of 64 */
    int total = 10 + dl + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errsz, "%s: cannot create: %s", path, strerror(errno));
        return PX_ERR_IO;
    }
    unsigned hl = (unsigned)(dl + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 255),
                             (unsigned char)(hl >> 8)};
    size_t bytes = (size_t)count * px_dtype_size(dtype);
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)dl, f) == (size_t)dl;
    for (int i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && (bytes == 0 || fwrite(data, 1, bytes, f) == bytes);
    ok = (fflush(f) == 0) && ok;
    int e = errno;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        if (!e) e = errno;
        /* no corrupt file stays behind (a header over missing data) */
        remove(path);
        snprintf(err, errsz, "%s: write failed: %s", path, strerror(e ? e : EIO));
        return PX_ERR_IO;
    }
    return PX_OK;
}
