/* diag.c — collecting and rendering diagnostics (the one path for all
 * user-facing errors and warnings of the compiler). */
#include "base.h"

#include <stdlib.h>

/* Longest message kept whole, in bytes. */
enum { MSG_MAX = 400 };

void fe_diags_init(Diags *d, Arena *a, const char *file, const char *src, size_t len)
{
    memset(d, 0, sizeof *d);
    d->arena = a;
    d->file = file;
    d->src = src;
    d->srclen = len;
    fe_limits_default(&d->lim);
}

void fe_limits_default(FeLimits *l)
{
#define X(t, name, def) l->name = def;
    FE_LIMITS(X)
#undef X
}

static void diag_v(Diags *d, DiagLevel lv, Loc loc, const char *fmt, va_list ap) FE_PRINTF(4, 0);
static void diag_v(Diags *d, DiagLevel lv, Loc loc, const char *fmt, va_list ap)
{
    if (lv == DIAG_WARNING && d->werror) lv = DIAG_ERROR;
    int max = d->max_errors > 0 ? d->max_errors : 50;
    if (lv == DIAG_NOTE && d->dropping) return; /* it belongs to a dropped error */
    if (lv == DIAG_ERROR && d->nerrors >= max) {
        d->too_many = 1;
        d->dropping = 1;
        return;
    }
    if (lv != DIAG_NOTE) d->dropping = 0;
    char *msg = fe_vsprintf(d->arena, fmt, ap);
    int n = (int)strlen(msg);
    /* A message quoting a 100,000-character identifier stays readable: keep
     * its head and tail. Cut on UTF-8 character boundaries. */
    if (n > MSG_MAX) {
        int head = MSG_MAX / 2, tail = n - MSG_MAX / 2;
        while (head > 0 && (msg[head] & 0xC0) == 0x80) head--;
        while (tail < n && (msg[tail] & 0xC0) == 0x80) tail++;
        msg = fe_sprintf(d->arena, "%.*s[... %d bytes ...]%s", head, msg, tail - head, msg + tail);
    }
    Diag g = {lv, loc, msg};
    FE_PUSH(d->arena, d->v, g);
    if (lv == DIAG_ERROR) d->nerrors++;
    else if (lv == DIAG_WARNING) d->nwarnings++;
}

#define DIAG_FN(name, level)                                \
    void name(Diags *d, Loc loc, const char *fmt, ...)      \
    {                                                       \
        va_list ap;                                         \
        va_start(ap, fmt);                                  \
        diag_v(d, level, loc, fmt, ap);                     \
        va_end(ap);                                         \
    }
DIAG_FN(fe_error, DIAG_ERROR)
DIAG_FN(fe_warning, DIAG_WARNING)
DIAG_FN(fe_note, DIAG_NOTE)

Loc fe_loc_span(Loc a, Loc b)
{
    if (a.line != b.line || b.col + b.len < a.col) return a;
    a.len = b.col + b.len - a.col;
    return a;
}

/* A growable string for a source line and its caret line. */
typedef struct Buf {
    char *p;
    size_t n, cap;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            free(b->p); /* unwinding: the buffer would be lost */
            fe_oom(nc);
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

/* Lines longer than this are shown as a window around the column. */
enum { WINDOW = 100 };

static void render_one(const Diags *d, const Diag *g, FILE *out)
{
    static const char *const lvname[] = {"error", "warning", "note"};
    if (g->loc.line > 0)
        fprintf(out, "%s:%d:%d: %s: %s\n", d->file, g->loc.line, g->loc.col, lvname[g->level], g->msg);
    else
        fprintf(out, "%s: %s: %s\n", d->file, lvname[g->level], g->msg);
    if (g->loc.line <= 0 || !d->src || (size_t)g->loc.off > d->srclen) return;

    /* Find the line around off; off points at the located character. */
    size_t start = (size_t)g->loc.off, end = (size_t)g->loc.off;
    while (start > 0 && d->src[start - 1] != '\n') start--;
    while (end < d->srclen && d->src[end] != '\n' && d->src[end] != '\r') end++;

    /* Walk characters, keeping those in the window; tabs are kept in both
     * lines so the caret stays aligned. */
    int col = g->loc.col, len = g->loc.len > 0 ? g->loc.len : 1;
    if (len > WINDOW) len = WINDOW; /* the underline shows where a huge token starts */
    int first = col - WINDOW / 2 > 1 ? col - WINDOW / 2 : 1;
    int last = first + WINDOW + len;
    Buf src = {0}, mark = {0};
    buf_put(&src, " ", 1);
    buf_put(&mark, " ", 1);
    if (first > 1) { buf_put(&src, "...", 3); buf_put(&mark, "   ", 3); }
    int c = 1;
    size_t i = start;
    /* The lexer skips a UTF-8 byte-order mark and does not count it. */
    if (i == 0 && end >= 3 && memcmp(d->src, "\xEF\xBB\xBF", 3) == 0) i = 3;
    while (i < end) {
        uint32_t cp;
        int n = fe_utf8_decode(d->src + i, end - i, &cp);
        if (c >= first && c < last) {
            if (cp == '\t') buf_put(&src, "\t", 1);
            else if (cp == 0xFFFD && n == 1) buf_put(&src, "?", 1);
            else if (cp < 0x20 || cp == 0x7F) buf_put(&src, "?", 1);
            else buf_put(&src, d->src + i, (size_t)n);
            const char *m = c == col ? "^" : (c > col && c < col + len) ? "~" : " ";
            if (cp == '\t' && c < col) m = "\t";
            if (c <= col + len) buf_put(&mark, m, 1);
        }
        i += (size_t)n;
        c++;
    }
    if (c <= col) { /* the location is at end of line (e.g. a missing token) */
        while (c < col) { buf_put(&mark, " ", 1); c++; }
        buf_put(&mark, "^", 1);
    }
    if (end - start > 0 && c > last) buf_put(&src, "...", 3);
    fwrite(src.p, 1, src.n, out);
    fputc('\n', out);
    /* trim trailing spaces of the mark line */
    while (mark.n > 0 && mark.p[mark.n - 1] == ' ') mark.n--;
    fwrite(mark.p, 1, mark.n, out);
    fputc('\n', out);
    free(src.p);
    free(mark.p);
}

void fe_diags_print(const Diags *d, FILE *out)
{
    for (int i = 0; i < d->v.n; i++) render_one(d, &d->v.v[i], out);
    if (d->too_many) fprintf(out, "%s: note: too many errors; stopped reporting\n", d->file);
}

char *fe_diags_render(const Diags *d, Arena *a)
{
    FeStrOut o;
    fe_diags_print(d, fe_strout_open(&o));
    return fe_strout_arena(&o, a);
}
