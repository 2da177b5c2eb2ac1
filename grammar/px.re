/* px.re — the PX lexer (re2c over UTF-8; one call returns one token).
 *
 * Locations: Loc.off is a byte offset, Loc.col and Loc.len count code
 * points (an invalid byte counts as one, as the diagnostics renderer does).
 * Columns are found incrementally from a cache (the last located token's
 * start) on the current line, so a long line costs linear time.
 *
 * Newlines: a newline is a token (it ends declarations and statements)
 * except inside ( ) and [ ], after another newline or at the start of the
 * file, and between `}` and `else`. At end of file a newline is made up
 * when the last token was not one, so the last line needs none.
 *
 * Bad bytes (invalid UTF-8, NUL, stray characters) are reported and
 * skipped; lexing goes on. Comments may hold any bytes.
 */
#include "parse.h"

#include <math.h>
#include <stdlib.h>

/* Reserved words: text, token, value (FePrim, FeReduceOp, FeClass or
 * ScalarType for the tokens that carry one). */
#define FE_KEYWORDS(X)                                                              \
    X("GPU_KERNEL", TK_KERNEL, 0)                                                   \
    X("GPU_PARAM", TK_PARAM, 0)                                                     \
    X("GPU_CLASS", TK_CLASS, 0)                                                     \
    X("GPU_DEADLINE", TK_DEADLINE, 0)                                               \
    X("GPU_THREAD_CODE", TK_THREAD_CODE, 0) /* the ':' is read with it */          \
    X("GPU_END", TK_END, 0)                                                         \
    X("PARALLEL_MATMUL", TK_PRIM, PRIM_MATMUL)                                      \
    X("PARALLEL_MAP", TK_PMAP, PRIM_MAP)       /* has `: expr` */                   \
    X("PARALLEL_ADD", TK_PRIM, PRIM_ADD)                                            \
    X("PARALLEL_SUB", TK_PRIM, PRIM_SUB)                                            \
    X("PARALLEL_MUL", TK_PRIM, PRIM_MUL)                                            \
    X("PARALLEL_DIV", TK_PRIM, PRIM_DIV)                                            \
    X("PARALLEL_FILL", TK_PFILL, PRIM_FILL)    /* an expression, not operands */    \
    X("PARALLEL_COPY", TK_PRIM, PRIM_COPY)                                          \
    X("PARALLEL_TRANSPOSE", TK_PRIM, PRIM_TRANSPOSE)                                \
    X("PARALLEL_REDUCE", TK_PREDUCE, PRIM_REDUCE) /* takes SUM|MIN|MAX|PROD */     \
    X("PARALLEL_SCAN", TK_PSCAN, PRIM_SCAN)    /* takes SUM|... */                  \
    X("PARALLEL_SOFTMAX", TK_PRIM, PRIM_SOFTMAX)                                    \
    X("PARALLEL_FOR", TK_PFOR, PRIM_FOR)       /* ranges and a block */             \
    X("IN", TK_IN, 0)                          /* lower-case `in` is contextual */  \
    X("SUM", TK_REDOP, RED_SUM)                                                     \
    X("MIN", TK_REDOP, RED_MIN)                                                     \
    X("MAX", TK_REDOP, RED_MAX)                                                     \
    X("PROD", TK_REDOP, RED_PROD)                                                   \
    X("REALTIME", TK_CLASSNAME, CLASS_REALTIME)                                     \
    X("INTERACTIVE", TK_CLASSNAME, CLASS_INTERACTIVE)                               \
    X("THROUGHPUT", TK_CLASSNAME, CLASS_THROUGHPUT)                                 \
    X("BATCH", TK_CLASSNAME, CLASS_BATCH)                                           \
    X("let", TK_LET, 0)                                                             \
    X("var", TK_VAR, 0)                                                             \
    X("if", TK_IF, 0)                                                               \
    X("else", TK_ELSE, 0)                                                           \
    X("for", TK_FOR, 0)                                                             \
    X("float", TK_TYPE, TY_FLOAT)              /* also a conversion call */         \
    X("int", TK_TYPE, TY_INT)                                                       \
    X("uint", TK_TYPE, TY_UINT)                                                     \
    X("half", TK_TYPE, TY_HALF)

static const struct {
    const char *text;
    int tok, val;
} keywords[] = {
#define X(s, t, v) {s, t, v},
    FE_KEYWORDS(X)
#undef X
};

enum { KEYWORD_MAXLEN = 20 };

void fe_lexer_init(FeParser *P, Arena *a, Diags *d)
{
    memset(P, 0, sizeof *P);
    fe_build_init(&P->b, a, d);
    char *buf = fe_alloc(a, d->srclen + 1); /* zeroed: the NUL sentinel */
    if (d->srclen) memcpy(buf, d->src, d->srclen);
    P->src = P->cur = P->linestart = P->colpos = buf;
    /* a leading UTF-8 byte-order mark is skipped, as C compilers do
     * (DECISIONS.md, Lexical); columns count from after it */
    if (d->srclen >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) P->cur = P->linestart = P->colpos = buf + 3;
    P->lim = buf + d->srclen;
    P->line = 1;
    P->colnum = 1;
}

static int ncols(const char *s, const char *e)
{
    int n = 0;
    uint32_t cp;
    while (s < e) {
        s += fe_utf8_decode(s, (size_t)(e - s), &cp);
        n++;
    }
    return n;
}

/* Location of bytes [s, e) on the current line. */
static Loc loc_of(FeParser *P, const char *s, const char *e)
{
    Loc l;
    l.line = P->line;
    l.off = (int)(s - P->src);
    if (P->colpos < P->linestart || P->colpos > s) {
        P->colpos = P->linestart;
        P->colnum = 1;
    }
    l.col = P->colnum + ncols(P->colpos, s);
    l.len = ncols(s, e);
    /* Cache the start, not the end: a token's location may be asked twice. */
    P->colpos = s;
    P->colnum = l.col;
    return l;
}

static void new_line(FeParser *P, const char *next)
{
    P->line++;
    P->linestart = P->colpos = next;
    P->colnum = 1;
}

static int emit(FeParser *P, int tok, Loc *ll)
{
    *ll = loc_of(P, P->tok, P->cur);
    P->last = tok;
    P->tok_s = P->tok;
    P->tok_e = P->cur;
    P->tok_made_up = 0;
    return tok;
}

static int in_brackets(const FeParser *P)
{
    return P->nest.n > 0 && P->nest.v[P->nest.n - 1] != '{';
}

static void open_bracket(FeParser *P, char c, Loc loc)
{
    FE_PUSH(P->b.arena, P->nest, c);
    if (P->nest.n > FE_MAX_NEST) fe_nest_error(&P->b, loc, c == '{' ? "blocks" : "expression");
}

/* Mismatched closers pop what plausibly matches, so one missing bracket
 * does not make every later newline white space. Each entry is pushed and
 * popped once, so this is linear overall. */
static void close_bracket(FeParser *P, char c)
{
    int n = P->nest.n;
    char *v = P->nest.v;
    if (c == '}') {
        int i = n - 1;
        while (i >= 0 && v[i] != '{') i--;
        if (i >= 0) P->nest.n = i;
        return;
    }
    char open = c == ')' ? '(' : '[';
    if (n >= 1 && v[n - 1] == open) P->nest.n = n - 1;
    else if (n >= 2 && v[n - 1] != '{' && v[n - 2] == open) P->nest.n = n - 2;
}

static int is_ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* After a `}` and a newline: is the next word `else`? Then the newlines in
 * between are skipped (counted) and `}` newline `else` reads as `} else`. */
static int skip_to_else(FeParser *P)
{
    const char *p = P->cur, *ls = P->linestart;
    int lines = 0;
    while (p < P->lim) {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\f' || *p == '\v') p++;
        else if (*p == '\n') { p++; lines++; ls = p; }
        else if (*p == '#' || (*p == '/' && p + 1 < P->lim && p[1] == '/'))
            while (p < P->lim && *p != '\n') p++;
        else break;
    }
    if (P->lim - p < 4 || memcmp(p, "else", 4) != 0 || (p + 4 < P->lim && is_ident_char(p[4])))
        return 0;
    P->cur = p;
    if (lines) {
        P->line += lines;
        P->linestart = P->colpos = ls;
        P->colnum = 1;
    }
    return 1;
}

static int keyword(const char *s, size_t n, int *val)
{
    if (n > KEYWORD_MAXLEN) return TK_IDENT;
    for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
        if (strlen(keywords[i].text) == n && memcmp(keywords[i].text, s, n) == 0) {
            *val = keywords[i].val;
            return keywords[i].tok;
        }
    return TK_IDENT;
}

/* Words that only begin a line, never stand inside brackets. */
static int starts_line(int tok)
{
    switch (tok) {
    case TK_KERNEL: case TK_PARAM: case TK_CLASS: case TK_DEADLINE: case TK_THREAD_CODE:
    case TK_END: case TK_PRIM: case TK_PMAP: case TK_PFILL: case TK_PREDUCE: case TK_PSCAN:
    case TK_PFOR: case TK_LET: case TK_VAR: case TK_IF: case TK_FOR:
        return 1;
    default:
        return 0;
    }
}

/* Digits of [s, e) in base 10 or 16; 0 with an error past 64 bits. */
static uint64_t int_value(FeParser *P, const char *s, const char *e, int base, Loc loc)
{
    uint64_t v = 0;
    for (const char *p = s; p < e; p++) {
        unsigned d = *p <= '9' ? (unsigned)(*p - '0') : (unsigned)((*p | 0x20) - 'a' + 10);
        if (v > (UINT64_MAX - d) / (unsigned)base) {
            fe_error(P->b.d, loc, "integer literal does not fit in 64 bits");
            return 0;
        }
        v = v * (unsigned)base + d;
    }
    return v;
}

static double float_value(FeParser *P, const char *s, const char *e, Loc loc, int *ok)
{
    char *t = fe_strndup(P->b.arena, s, (size_t)(e - s));
    double v = strtod(t, NULL);
    *ok = 1;
    if (isinf(v)) {
        fe_error(P->b.d, loc, "float literal out of range");
        *ok = 0;
        return 0.0;
    }
    return v;
}

int fe_yylex(FE_YYSTYPE *lv, Loc *ll, FeParser *P)
{
    for (;;) {
        /* Past the error cap nothing more is reported: stop the parse. */
        if (P->b.d->too_many) P->cur = P->lim;
        P->tok = P->cur;
        /*!re2c
        re2c:define:YYCTYPE = "unsigned char";
        re2c:define:YYCURSOR = "P->cur";
        re2c:define:YYMARKER = "P->mark";
        re2c:define:YYCTXMARKER = "P->ctxmark";
        re2c:define:YYLIMIT = "P->lim";
        re2c:yyfill:enable = 0;
        re2c:eof = 0;

        dec  = [0-9]+;
        hex  = "0" [xX] [0-9a-fA-F]+;
        exp  = [eE] [+-]? [0-9]+;
        flt  = ([0-9]* "." [0-9]+ | [0-9]+ ".") exp? | [0-9]+ exp;
        id   = [A-Za-z_] [A-Za-z0-9_]*;

        $ {
            if (P->last != 0 && P->last != TK_NL && !P->tok_made_up) {
                /* end the last line; shown as "end of file" */
                if (P->lim > P->src && P->lim[-1] == '\n') P->eofloc = P->nlloc;
                else P->eofloc = loc_of(P, P->lim, P->lim);
                *ll = P->eofloc;
                P->last = TK_NL;
                P->tok_s = P->tok_e = P->lim;
                P->tok_made_up = 1;
                return TK_NL;
            }
            if (!P->eofloc.line) {
                if (P->lim > P->src && P->lim[-1] == '\n') P->eofloc = P->nlloc;
                else P->eofloc = loc_of(P, P->lim, P->lim);
            }
            *ll = P->eofloc;
            P->tok_s = P->tok_e = P->lim;
            return TK_YYEOF;
        }

        [ \t\r\f\v]+ { continue; }
        "#" | "//" {
            while (P->cur < P->lim && *P->cur != '\n') P->cur++;
            continue;
        }
        "\n" {
            Loc l = loc_of(P, P->tok, P->cur);
            P->nlloc = l;
            new_line(P, P->cur);
            if (in_brackets(P) || P->last == 0 || P->last == TK_NL) continue;
            if (P->last == '}' && skip_to_else(P)) continue;
            *ll = l;
            P->last = TK_NL;
            P->tok_s = P->tok;
            P->tok_e = P->cur;
            P->tok_made_up = 0;
            return TK_NL;
        }

        id {
            int val = 0;
            size_t n = (size_t)(P->cur - P->tok);
            int t = keyword(P->tok, n, &val);
            if (in_brackets(P) && starts_line(t) && P->last != TK_NL) {
                /* A line's first word inside ( or [: a bracket was left
                 * open. Close it and end the line before the word, so the
                 * error stays on its line; the word is read again. */
                while (in_brackets(P)) P->nest.n--;
                P->cur = P->tok;
                if (P->nlloc.off >= (int)(P->tok_e - P->src)) *ll = P->nlloc;
                else *ll = loc_of(P, P->tok, P->tok);
                P->last = TK_NL;
                P->tok_s = P->tok_e = P->tok;
                P->tok_made_up = 0;
                return TK_NL;
            }
            if (t == TK_THREAD_CODE) {
                const char *p = P->cur;
                while (p < P->lim && (*p == ' ' || *p == '\t')) p++;
                if (p < P->lim && *p == ':') P->cur = p + 1;
                else fe_error(P->b.d, loc_of(P, P->tok, P->cur), "expected ':' after GPU_THREAD_CODE");
            }
            if (t == TK_IDENT && n > (size_t)P->b.d->lim.ident_len)
                fe_error(P->b.d, loc_of(P, P->tok, P->cur), "identifier is too long: %zu bytes (limit %d)", n,
                         P->b.d->lim.ident_len);
            if (t == TK_IDENT) lv->s = fe_strndup(P->b.arena, P->tok, n);
            else lv->k = val;
            return emit(P, t, ll);
        }

        dec / ".." {
            Loc l = loc_of(P, P->tok, P->cur);
            lv->i.v = int_value(P, P->tok, P->cur, 10, l);
            lv->i.is_unsigned = 0;
            return emit(P, TK_INT, ll);
        }
        dec "u"? {
            const char *e = P->cur[-1] == 'u' ? P->cur - 1 : P->cur;
            Loc l = loc_of(P, P->tok, P->cur);
            lv->i.v = int_value(P, P->tok, e, 10, l);
            lv->i.is_unsigned = e != P->cur;
            return emit(P, TK_INT, ll);
        }
        hex "u"? {
            const char *e = P->cur[-1] == 'u' ? P->cur - 1 : P->cur;
            Loc l = loc_of(P, P->tok, P->cur);
            lv->i.v = int_value(P, P->tok + 2, e, 16, l);
            lv->i.is_unsigned = e != P->cur;
            return emit(P, TK_INT, ll);
        }
        flt [hf]? {
            /* `h` makes a half; `f` is accepted and ignored: the literal
             * stays untyped (DECISIONS.md, Lexical) */
            char suf = P->cur[-1];
            const char *e = (suf == 'h' || suf == 'f') ? P->cur - 1 : P->cur;
            int ok;
            Loc l = loc_of(P, P->tok, P->cur);
            lv->f.v = float_value(P, P->tok, e, l, &ok);
            lv->f.is_half = suf == 'h';
            return emit(P, TK_FLOAT, ll);
        }
        (dec | [0-9]+ "." [0-9]+) ("us" | "ms" | "s") {
            const char *e = P->cur - 1;
            double unit = 1e9;
            if (*e != 's') fe_unreachable();
            if (e[-1] == 'u') { unit = 1e3; e--; }
            else if (e[-1] == 'm') { unit = 1e6; e--; }
            int ok;
            Loc l = loc_of(P, P->tok, P->cur);
            double v = float_value(P, P->tok, e, l, &ok);
            lv->ns = ok ? v * unit : 1.0;
            return emit(P, TK_DURATION, ll);
        }
        (dec | hex | flt) [A-Za-z0-9_]+ {
            fe_error(P->b.d, loc_of(P, P->tok, P->cur), "invalid number '%.*s'",
                     P->cur - P->tok > 40 ? 40 : (int)(P->cur - P->tok), P->tok);
            lv->i.v = 0;
            lv->i.is_unsigned = 0;
            return emit(P, TK_INT, ll);
        }

        "->" | "→" { return emit(P, TK_ARROW, ll); }
        ".."  { return emit(P, TK_DOTDOT, ll); }
        "||"  { return emit(P, TK_OROR, ll); }
        "&&"  { return emit(P, TK_ANDAND, ll); }
        "=="  { return emit(P, TK_EQ, ll); }
        "!="  { return emit(P, TK_NE, ll); }
        "<="  { return emit(P, TK_LE, ll); }
        ">="  { return emit(P, TK_GE, ll); }
        "<<"  { return emit(P, TK_SHL, ll); }
        ">>"  { return emit(P, TK_SHR, ll); }
        "+="  { lv->k = OP_ADD; return emit(P, TK_OPASSIGN, ll); }
        "-="  { lv->k = OP_SUB; return emit(P, TK_OPASSIGN, ll); }
        "*="  { lv->k = OP_MUL; return emit(P, TK_OPASSIGN, ll); }
        "/="  { lv->k = OP_DIV; return emit(P, TK_OPASSIGN, ll); }
        "%="  { lv->k = OP_REM; return emit(P, TK_OPASSIGN, ll); }
        "&="  { lv->k = OP_BAND; return emit(P, TK_OPASSIGN, ll); }
        "|="  { lv->k = OP_BOR; return emit(P, TK_OPASSIGN, ll); }
        "^="  { lv->k = OP_BXOR; return emit(P, TK_OPASSIGN, ll); }
        "<<=" { lv->k = OP_SHL; return emit(P, TK_OPASSIGN, ll); }
        ">>=" { lv->k = OP_SHR; return emit(P, TK_OPASSIGN, ll); }
        [([{] {
            char c = *P->tok;
            int t = emit(P, c, ll);
            open_bracket(P, c, *ll);
            return t;
        }
        [)\]}] {
            close_bracket(P, *P->tok);
            return emit(P, *P->tok, ll);
        }
        [-+*/%<>&|^~!?:;,=] { return emit(P, *P->tok, ll); }

        [^] {
            uint32_t cp;
            fe_utf8_decode(P->tok, (size_t)(P->cur - P->tok), &cp);
            Loc l = loc_of(P, P->tok, P->cur);
            if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0))
                fe_error(P->b.d, l, "invalid character U+%04X", (unsigned)cp);
            else
                fe_error(P->b.d, l, "invalid character '%.*s'", (int)(P->cur - P->tok), P->tok);
            continue;
        }
        * {
            fe_error(P->b.d, loc_of(P, P->tok, P->cur), "invalid UTF-8 byte 0x%02X",
                     (unsigned)(unsigned char)*P->tok);
            continue;
        }
        */
    }
}
