/* base.c — arena allocation, protected calls, UTF-8 decoding. */
#include "base.h"

#include <setjmp.h>
#include <stdlib.h>

/* ---- protected calls --------------------------------------------------- */

typedef struct Handler {
    struct Handler *prev;
    FeFail *fail;
    jmp_buf jb;
} Handler;

/* Per thread: the innermost fe_protect and the fault-injection settings. */
static _Thread_local Handler *top;
static _Thread_local long alloc_countdown;
static _Thread_local const char *inject_name;

FeFailKind fe_protect(void (*fn)(void *), void *ud, FeFail *fail)
{
    Handler h = {.prev = top, .fail = fail};
    fail->kind = FE_FAIL_NONE;
    fail->msg[0] = 0;
    if (setjmp(h.jb) == 0) {
        top = &h;
        fn(ud);
        top = h.prev;
        return FE_FAIL_NONE;
    }
    /* the thrower already popped h (top = h.prev) before jumping */
    return fail->kind;
}

FE_NORETURN static void throw(FeFailKind kind)
{
    Handler *h = top;
    if (!h) abort();
    h->fail->kind = kind;
    top = h->prev;
    longjmp(h->jb, 1);
}

void fe_die(const char *fmt, ...)
{
    if (!top) abort();
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(top->fail->msg, sizeof top->fail->msg, "internal compiler error: ");
    vsnprintf(top->fail->msg + n, sizeof top->fail->msg - (size_t)n, fmt, ap);
    va_end(ap);
    throw(FE_FAIL_INTERNAL);
}

void fe_oom(size_t bytes)
{
    if (!top) abort();
    if (bytes) snprintf(top->fail->msg, sizeof top->fail->msg, "out of memory (%zu bytes)", bytes);
    else snprintf(top->fail->msg, sizeof top->fail->msg, "out of memory");
    throw(FE_FAIL_OOM);
}

void fe_rethrow(const FeFail *f)
{
    if (!top) abort();
    if (top->fail != f) memcpy(top->fail->msg, f->msg, sizeof f->msg);
    throw(f->kind == FE_FAIL_OOM ? FE_FAIL_OOM : FE_FAIL_INTERNAL);
}

void fe_fail_alloc_after(long n) { alloc_countdown = n > 0 ? n : 0; }
void fe_inject_failure(const char *name) { inject_name = name; }

int fe_inject_at(const char *name) { return inject_name && !strcmp(inject_name, name); }

/* The test countdown (fe_fail_alloc_after): 1 when this allocation fails. */
static int injected_oom(void) { return alloc_countdown > 0 && --alloc_countdown == 0; }

/* ---- arenas -------------------------------------------------------------- */

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

Arena *fe_arena_try_new(void) { return injected_oom() ? NULL : calloc(1, sizeof(Arena)); }

Arena *fe_arena_new(void)
{
    Arena *a = fe_arena_try_new();
    if (!a) fe_oom(sizeof *a);
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
    if (n > SIZE_MAX / 2 || injected_oom()) fe_oom(n);
    n = (n + 15) & ~(size_t)15;
    Chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t sz = n > CHUNK_SIZE / 4 ? n : CHUNK_SIZE;
        if (sz > SIZE_MAX - sizeof(Chunk)) fe_oom(n);
        Chunk *nc = malloc(sizeof *nc + sz);
        if (!nc) fe_oom(n);
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
    if (!o->f) fe_oom(0);
    return o->f;
}

char *fe_strout_take(FeStrOut *o)
{
    if (fclose(o->f) || !o->buf) {
        free(o->buf);
        fe_oom(o->len);
    }
    return o->buf;
}

typedef struct StrDup {
    Arena *a;
    const char *s;
    size_t n;
    char *r;
} StrDup;
static void strdup_job(void *ud)
{
    StrDup *j = ud;
    j->r = fe_strndup(j->a, j->s, j->n);
}

char *fe_strout_arena(FeStrOut *o, Arena *a)
{
    char *buf = fe_strout_take(o);
    /* buf is malloc'd and the arena copy may unwind (fe_oom): copy under a
     * protected call, free buf, then pass a failure on */
    StrDup j = {a, buf, o->len, NULL};
    FeFail f;
    FeFailKind k = fe_protect(strdup_job, &j, &f);
    free(buf);
    if (k != FE_FAIL_NONE) fe_rethrow(&f);
    return j.r;
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
