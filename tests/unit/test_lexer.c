/* test_lexer.c — the re2c lexer alone: tokens, arrow forms, locations in
 * characters, literals and their values, newline rules, bad bytes. Every
 * expected value is written out by hand here. */
#include "frontend/fe.h"
#include "parse.h"
#include "tests/unit/test.h"

#include <math.h>
#include <stdlib.h>

enum { MAXTOK = 64 };

typedef struct Tok {
    int kind;
    Loc loc;
    FE_YYSTYPE v;
} Tok;

static Tok toks[MAXTOK];
static int ntoks;
static Arena *arena;
static Diags diags;

/* Lex all of src (n bytes); the last token is EOF. */
static void lexn(const char *src, size_t n)
{
    if (arena) fe_arena_free(arena);
    arena = fe_arena_new();
    fe_diags_init(&diags, arena, "t.px", src, n);
    FeParser *P = fe_alloc(arena, sizeof *P);
    fe_lexer_init(P, arena, &diags);
    ntoks = 0;
    for (;;) {
        Tok t;
        memset(&t, 0, sizeof t);
        t.kind = fe_yylex(&t.v, &t.loc, P);
        if (ntoks < MAXTOK) toks[ntoks++] = t;
        if (t.kind == TK_YYEOF) break;
    }
}
static void lex(const char *src) { lexn(src, strlen(src)); }

static int kinds_are(const int *want, int n)
{
    if (ntoks != n) return 0;
    for (int i = 0; i < n; i++)
        if (toks[i].kind != want[i]) return 0;
    return 1;
}
#define KINDS(...) kinds_are((const int[]){__VA_ARGS__}, (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)))

static int loc_is(Loc l, int line, int col, int len, int off)
{
    return l.line == line && l.col == col && l.len == len && l.off == off;
}

static int has_error(const char *msg)
{
    for (int i = 0; i < diags.v.n; i++)
        if (strstr(diags.v.v[i].msg, msg)) return 1;
    return 0;
}

TEST(arrows)
{
    lex("a → b -> c");
    CHECK(KINDS(TK_IDENT, TK_ARROW, TK_IDENT, TK_ARROW, TK_IDENT, TK_NL, TK_YYEOF));
    /* `→` is 3 bytes and 1 character */
    CHECK(loc_is(toks[1].loc, 1, 3, 1, 2));
    CHECK(loc_is(toks[2].loc, 1, 5, 1, 6));
    CHECK(loc_is(toks[3].loc, 1, 7, 2, 8));
    CHECK(loc_is(toks[4].loc, 1, 10, 1, 11));
    CHECK(strcmp(toks[4].v.s, "c") == 0);
    CHECK(diags.nerrors == 0);
    lex("a→b");
    CHECK(KINDS(TK_IDENT, TK_ARROW, TK_IDENT, TK_NL, TK_YYEOF));
    CHECK(loc_is(toks[2].loc, 1, 3, 1, 4));
}

TEST(columns_in_characters)
{
    /* a comment with multibyte characters does not shift later lines, and
     * on one line each code point is one column */
    lex("# ééé →\nxé");
    CHECK(toks[0].kind == TK_IDENT && loc_is(toks[0].loc, 2, 1, 1, 13));
    CHECK(has_error("invalid character 'é'"));
    CHECK(diags.v.n == 1 && diags.v.v[0].loc.line == 2 && diags.v.v[0].loc.col == 2 &&
          diags.v.v[0].loc.len == 1 && diags.v.v[0].loc.off == 14);
    lex("→→ x");
    CHECK(loc_is(toks[2].loc, 1, 4, 1, 7));
    /* tabs count as one column */
    lex("\t\tx");
    CHECK(loc_is(toks[0].loc, 1, 3, 1, 2));
    /* CRLF line ends */
    lex("a\r\nb");
    CHECK(KINDS(TK_IDENT, TK_NL, TK_IDENT, TK_NL, TK_YYEOF));
    CHECK(loc_is(toks[2].loc, 2, 1, 1, 3));
}

TEST(keywords)
{
    lex("GPU_KERNEL GPU_PARAM GPU_CLASS GPU_DEADLINE GPU_THREAD_CODE: GPU_END");
    CHECK(KINDS(TK_KERNEL, TK_PARAM, TK_CLASS, TK_DEADLINE, TK_THREAD_CODE, TK_END, TK_NL, TK_YYEOF));
    CHECK(toks[4].loc.len == 16);
    lex("GPU_THREAD_CODE :");
    CHECK(KINDS(TK_THREAD_CODE, TK_NL, TK_YYEOF) && diags.nerrors == 0);
    lex("GPU_THREAD_CODE\n");
    CHECK(toks[0].kind == TK_THREAD_CODE && has_error("expected ':' after GPU_THREAD_CODE"));
    lex("PARALLEL_MATMUL PARALLEL_SOFTMAX PARALLEL_MAP PARALLEL_FILL PARALLEL_REDUCE PARALLEL_SCAN PARALLEL_FOR");
    CHECK(KINDS(TK_PRIM, TK_PRIM, TK_PMAP, TK_PFILL, TK_PREDUCE, TK_PSCAN, TK_PFOR, TK_NL, TK_YYEOF));
    CHECK(toks[0].v.k == PRIM_MATMUL && toks[1].v.k == PRIM_SOFTMAX);
    lex("SUM PROD BATCH REALTIME half uint IN in let var if else for");
    CHECK(KINDS(TK_REDOP, TK_REDOP, TK_CLASSNAME, TK_CLASSNAME, TK_TYPE, TK_TYPE, TK_IN, TK_IDENT,
                TK_LET, TK_VAR, TK_IF, TK_ELSE, TK_FOR, TK_NL, TK_YYEOF));
    CHECK(toks[1].v.k == RED_PROD && toks[2].v.k == CLASS_BATCH && toks[3].v.k == CLASS_REALTIME);
    CHECK(toks[4].v.k == TY_HALF && toks[5].v.k == TY_UINT);
    /* near-keywords are identifiers */
    lex("PARALLEL_FOO Let sum lets");
    CHECK(KINDS(TK_IDENT, TK_IDENT, TK_IDENT, TK_IDENT, TK_NL, TK_YYEOF));
}

TEST(integers)
{
    lex("12 0x1F 12u 0XffU 0");
    CHECK(toks[0].kind == TK_INT && toks[0].v.i.v == 12 && !toks[0].v.i.is_unsigned);
    CHECK(toks[1].kind == TK_INT && toks[1].v.i.v == 31);
    CHECK(toks[2].kind == TK_INT && toks[2].v.i.v == 12 && toks[2].v.i.is_unsigned);
    CHECK(diags.nerrors == 1 && has_error("invalid number '0XffU'")); /* suffix is lower-case u */
    lex("18446744073709551615 0xFFFFFFFFFFFFFFFF");
    CHECK(toks[0].v.i.v == UINT64_MAX && toks[1].v.i.v == UINT64_MAX && diags.nerrors == 0);
    lex("18446744073709551616");
    CHECK(toks[0].kind == TK_INT && has_error("does not fit in 64 bits"));
    lex("0x10000000000000000");
    CHECK(has_error("does not fit in 64 bits"));
    lex("0x00000000000000000001");
    CHECK(toks[0].v.i.v == 1 && diags.nerrors == 0);
    lex("12abc 0x 1e");
    CHECK(KINDS(TK_INT, TK_INT, TK_INT, TK_NL, TK_YYEOF));
    CHECK(diags.nerrors == 3 && has_error("invalid number '12abc'") && has_error("invalid number '0x'"));
}

TEST(floats)
{
    lex("1.5 1e-3 2.0h .5 1. 3.25f 1E+2");
    CHECK(KINDS(TK_FLOAT, TK_FLOAT, TK_FLOAT, TK_FLOAT, TK_FLOAT, TK_FLOAT, TK_FLOAT, TK_NL, TK_YYEOF));
    CHECK(toks[0].v.f.v == 1.5 && !toks[0].v.f.is_half);
    CHECK(toks[1].v.f.v == 1e-3);
    CHECK(toks[2].v.f.v == 2.0 && toks[2].v.f.is_half);
    CHECK(toks[3].v.f.v == 0.5);
    CHECK(toks[4].v.f.v == 1.0);
    CHECK(toks[5].v.f.v == 3.25 && !toks[5].v.f.is_half);
    CHECK(toks[6].v.f.v == 100.0);
    CHECK(diags.nerrors == 0);
    lex("1e999");
    CHECK(toks[0].kind == TK_FLOAT && has_error("out of range"));
    /* a range is not a float: 0..N */
    lex("0..N 1 ..2");
    CHECK(KINDS(TK_INT, TK_DOTDOT, TK_IDENT, TK_INT, TK_DOTDOT, TK_INT, TK_NL, TK_YYEOF));
}

TEST(durations)
{
    lex("16ms 0.5us 2s 100us 1.25s");
    CHECK(KINDS(TK_DURATION, TK_DURATION, TK_DURATION, TK_DURATION, TK_DURATION, TK_NL, TK_YYEOF));
    CHECK(toks[0].v.ns == 16e6);
    CHECK(toks[1].v.ns == 500.0);
    CHECK(toks[2].v.ns == 2e9);
    CHECK(toks[3].v.ns == 1e5);
    CHECK(toks[4].v.ns == 1.25e9);
    lex("16 ms");
    CHECK(KINDS(TK_INT, TK_IDENT, TK_NL, TK_YYEOF));
    lex("16msx");
    CHECK(has_error("invalid number '16msx'"));
}

TEST(operators)
{
    lex("+ - * / % << >> & | ^ ~ ! && || == != < <= > >= = ? : ( ) [ ] { } , .. ;");
    int want[] = {'+', '-', '*', '/', '%', TK_SHL, TK_SHR, '&', '|', '^', '~', '!', TK_ANDAND,
                  TK_OROR, TK_EQ, TK_NE, '<', TK_LE, '>', TK_GE, '=', '?', ':', '(', ')', '[',
                  ']', '{', '}', ',', TK_DOTDOT, ';', TK_NL, TK_YYEOF};
    CHECK(kinds_are(want, (int)(sizeof want / sizeof *want)));
    lex("+= -= *= /= %= &= |= ^= <<= >>=");
    FeOp ops[] = {OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_REM, OP_BAND, OP_BOR, OP_BXOR, OP_SHL, OP_SHR};
    for (int i = 0; i < 10; i++) CHECK(toks[i].kind == TK_OPASSIGN && toks[i].v.k == (int)ops[i]);
    CHECK(toks[8].loc.len == 3);
    CHECK(diags.nerrors == 0);
}

TEST(newlines)
{
    /* blank lines and comments collapse; leading newlines vanish */
    lex("\n\n a # x\n\n// y\n b ; c\n");
    CHECK(KINDS(TK_IDENT, TK_NL, TK_IDENT, ';', TK_IDENT, TK_NL, TK_YYEOF));
    CHECK(toks[2].loc.line == 6);
    /* inside ( ) and [ ] newlines are white space, inside { } they are not */
    lex("f(a,\n b)[\n1] {\nx\n}");
    CHECK(KINDS(TK_IDENT, '(', TK_IDENT, ',', TK_IDENT, ')', '[', TK_INT, ']', '{', TK_NL, TK_IDENT,
                TK_NL, '}', TK_NL, TK_YYEOF));
    CHECK(toks[7].loc.line == 3);
    /* `}` newline `else` */
    lex("}\n\n  # c\n else {");
    CHECK(KINDS('}', TK_ELSE, '{', TK_NL, TK_YYEOF));
    CHECK(toks[1].loc.line == 4 && toks[1].loc.col == 2);
    lex("}\nelsewhere");
    CHECK(KINDS('}', TK_NL, TK_IDENT, TK_NL, TK_YYEOF));
    /* a statement word inside an open bracket ends the line there */
    lex("x = (a\nlet");
    CHECK(KINDS(TK_IDENT, '=', '(', TK_IDENT, TK_NL, TK_LET, TK_NL, TK_YYEOF));
    CHECK(toks[4].loc.line == 1 && toks[4].loc.col == 7);
    /* the made-up newline at end of file sits after the last character */
    lex("ab");
    CHECK(toks[1].kind == TK_NL && loc_is(toks[1].loc, 1, 3, 0, 2));
    lex("");
    CHECK(KINDS(TK_YYEOF));
}

TEST(bad_bytes)
{
    static const char src[] = "a \xff b \x00 c \xc3 d @ e \xe2\x86 f";
    lexn(src, sizeof src - 1);
    CHECK(KINDS(TK_IDENT, TK_IDENT, TK_IDENT, TK_IDENT, TK_IDENT, TK_IDENT, TK_NL, TK_YYEOF));
    CHECK(diags.nerrors == 6);
    CHECK(has_error("invalid UTF-8 byte 0xFF"));
    CHECK(has_error("invalid character U+0000"));
    CHECK(has_error("invalid UTF-8 byte 0xC3"));
    CHECK(has_error("invalid character '@'"));
    CHECK(has_error("invalid UTF-8 byte 0xE2"));
    CHECK(has_error("invalid UTF-8 byte 0x86"));
    /* each bad byte is one column: b is at column 5 */
    CHECK(loc_is(toks[1].loc, 1, 5, 1, 4));
    /* comments may hold anything */
    static const char com[] = "# \xff\x00\xc3\nx";
    lexn(com, sizeof com - 1);
    CHECK(KINDS(TK_IDENT, TK_NL, TK_YYEOF) && diags.nerrors == 0);
    /* a NUL at the very end is a character, not the end */
    static const char nul[] = "x\0";
    lexn(nul, 2);
    CHECK(KINDS(TK_IDENT, TK_NL, TK_YYEOF) && has_error("U+0000"));
}

TEST(long_identifier)
{
    size_t n = 100000;
    char *s = malloc(n + 3);
    memset(s, 'q', n);
    memcpy(s + n, " 1", 3);
    lex(s);
    CHECK(toks[0].kind == TK_IDENT && strlen(toks[0].v.s) == n && toks[0].loc.len == (int)n);
    CHECK(toks[1].kind == TK_INT && toks[1].loc.col == (int)n + 2);
    free(s);
}

int main(void)
{
    RUN(arrows);
    RUN(columns_in_characters);
    RUN(keywords);
    RUN(integers);
    RUN(floats);
    RUN(durations);
    RUN(operators);
    RUN(newlines);
    RUN(bad_bytes);
    RUN(long_identifier);
    fe_arena_free(arena);
    return TEST_DONE();
}
