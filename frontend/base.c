/* base.c — arena allocation, internal errors, UTF-8 decoding. */
#include "fe.h"

#include <stdlib.h>

/* Chunks are chained; big requests get a chunk of their own so a 100,000
 * character identifier does not waste a default-sized chunk. */
typedef struct Chunk {
    struct Chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} Chunk;

struct Arena {
    Chunk *head;
};

enum { CHUNK_SIZE = 64 * 1024 };

Arena *fe_arena_new(void)
{
    Arena *a = calloc(1, sizeof *a);
    if (!a) fe_die("out of memory");
    return a;
}

void fe_arena_free(Arena *a)
{
    if (!a) return;
    for (Chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(a);
}

void *fe_alloc(Arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    Chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t sz = n > CHUNK_SIZE / 4 ? n : CHUNK_SIZE;
        Chunk *nc = malloc(sizeof *nc + sz);
        if (!nc) fe_die("out of memory (%zu bytes)", n);
        nc->used = 0;
        nc->size = sz;
        if (sz == n && c) { /* keep the current chunk for small requests */
            nc->next = c->next;
            c->next = nc;
            nc->used = n;
            memset(nc->data, 0, n);
            return nc->data;
        }
        nc->next = c;
        a->head = c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *fe_strndup(Arena *a, const char *s, size_t n)
{
    char *p = fe_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *fe_strdup(Arena *a, const char *s) { return fe_strndup(a, s, strlen(s)); }

char *fe_vsprintf(Arena *a, const char *fmt, va_list ap)
{
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n < 0) n = 0; /* an encoding error: keep an empty message */
    char *p = fe_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *fe_sprintf(Arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = fe_vsprintf(a, fmt, ap);
    va_end(ap);
    return p;
}

FILE *fe_strout_open(FeStrOut *o)
{
    o->buf = NULL;
    o->len = 0;
    o->f = open_memstream(&o->buf, &o->len);
    if (!o->f) fe_die("out of memory");
    return o->f;
}

char *fe_strout_take(FeStrOut *o)
{
    if (fclose(o->f) || !o->buf) fe_die("out of memory");
    return o->buf;
}

char *fe_strout_arena(FeStrOut *o, Arena *a)
{
    char *buf = fe_strout_take(o);
    char *r = fe_strndup(a, buf, o->len);
    free(buf);
    return r;
}

void fe_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("px: internal compiler error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(3);
}

int fe_utf8_decode(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0) { *cp = 0; return 0; }
    unsigned c = u[0];
    int len;
    uint32_t v, min;
    if (c < 0x80) { *cp = c; return 1; }
    else if ((c & 0xE0) == 0xC0) { len = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; v = c & 0x07; min = 0x10000; }
    else goto bad;
    if ((size_t)len > n) goto bad;
    for (int i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) goto bad;
        v = (v << 6) | (u[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) goto bad;
    *cp = v;
    return len;
bad:
    *cp = 0xFFFD;
    return 1;
}
