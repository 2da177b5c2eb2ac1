/* npy.c — NumPy .npy files: format 1.0-3.0, little-endian, C order, the
 * four PX element types. Every defect of a file gets a message naming the
 * file and what is wrong; nothing a file says is trusted before it is
 * checked against the bytes that are really there. */
#include "rt.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_DTYPES(X)                   \
    X(PX_F32, "<f4") /* float */        \
    X(PX_I32, "<i4") /* int */          \
    X(PX_U32, "<u4") /* uint */         \
    X(PX_F16, "<f2") /* half */

const char *rt_npy_descr(PxDtype t)
{
    switch (t) {
#define X(e, s) case e: return s;
        NPY_DTYPES(X)
#undef X
    }
    return "?";
}

void rt_npy_free(RtNpy *n)
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

PxResult rt_npy_parse(const char *name, const unsigned char *p, size_t n, RtNpy *out, char *err,
                      size_t errsz)
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
    size_t es = px_dtype_size(out->dtype);
    size_t need = (size_t)count * es, have = n - hstart - hlen;
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
    memcpy(out->data, p + hstart + hlen, need);
    r = PX_OK;
out:
    free(h);
    return r;
}

PxResult rt_npy_read(const char *path, RtNpy *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "%s: cannot open: %s", path, strerror(errno));
        return errno == ENOENT ? PX_ERR_NOT_FOUND : PX_ERR_IO;
    }
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                snprintf(err, errsz, "%s: out of memory", path);
                return PX_ERR_OUT_OF_MEMORY;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(err, errsz, "%s: read error", path);
        return PX_ERR_IO;
    }
    PxResult r = rt_npy_parse(path, buf, n, out, err, errsz);
    free(buf);
    return r;
}

PxResult rt_npy_write(const char *path, PxDtype dtype, int rank, const int64_t *shape,
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
                      rt_npy_descr(dtype), sh);
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
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        snprintf(err, errsz, "%s: write failed: %s", path, strerror(errno));
        return PX_ERR_IO;
    }
    return PX_OK;
}
