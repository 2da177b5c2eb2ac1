/* px.y — the PX grammar (Bison, LALR(1) with LAC; pure; Loc locations).
 *
 * The kernel level is a flat sequence of lines (GPU_KERNEL, GPU_PARAM, ...,
 * statements, GPU_END); their order is checked by the constructors in
 * frontend/ast.c, which give better messages than a syntax error would and
 * let one bad line cost one error. Thread code nests in { } blocks.
 * Every action is one call into a constructor (ast.c). Lists are
 * left-recursive; right recursion (prefix operators, else-if chains) uses
 * Bison's heap stack, and the constructors bound the tree's height.
 *
 * Error recovery: `error NL` at the kernel level and `error sep` inside a
 * block resynchronise at the end of the line, so one run reports one error
 * per bad line; the diagnostics cap (Diags.max_errors) stops the lexer.
 */
%define api.pure full
%define api.prefix {fe_yy}
%define api.token.prefix {TK_}
%define api.location.type {Loc}
%define parse.error custom
%define parse.lac full
%locations
%param {FeParser *P}
%expect 0

%code requires {
#include "frontend/fe.h"
typedef struct FeParser FeParser;
typedef struct FeIntTok { uint64_t v; int is_unsigned; } FeIntTok;
typedef struct FeFloatTok { double v; int is_half; } FeFloatTok;
}

%union {
    const char *s;
    FeIntTok i;
    FeFloatTok f;
    double ns;
    int k;          /* FeOp, FePrim, FeReduceOp, FeClass or ScalarType */
    Expr *e;
    Stmt *st;
    StmtList *sl;
    TypeSpec *ty;
    Range *r;
}

%code provides {
/* The parser's state: the constructors' FeBuild and the lexer's cursor.
 * The source is copied with a NUL after it: re2c's sentinel (a NUL inside
 * the text is told apart by the limit check). */
struct FeParser {
    FeBuild b;
    const char *src, *cur, *lim, *tok, *mark, *ctxmark;
    int line;
    const char *linestart;      /* first byte of the current line */
    const char *colpos;         /* column cache: colpos (on this line) is at column colnum */
    int colnum;
    FE_VEC(char) nest;          /* open brackets, innermost last: '(' '[' '{' */
    int last;                   /* the last token returned (0: none yet) */
    const char *tok_s, *tok_e;  /* its bytes (empty for EOF and a made-up newline) */
    int tok_made_up;            /* it is the newline added at end of file */
    Loc nlloc;                  /* the last newline character seen */
    Loc eofloc;                 /* where "end of file" is shown */
};

void fe_lexer_init(FeParser *P, Arena *a, Diags *d);
int fe_yylex(FE_YYSTYPE *lv, Loc *ll, FeParser *P);
}

%code {
#include <stdlib.h>

/* Bison's stack lives on the heap and grows to this many entries (~30 MB
 * at most): 20,000 nested parentheses or prefix operators parse (the
 * constructors then report the nesting), more is "nested too deeply". */
#define YYMAXDEPTH 1000000
#define YYINITDEPTH 256

#define YYLLOC_DEFAULT(Cur, Rhs, N)                                              \
    do {                                                                        \
        if (N) (Cur) = fe_loc_span(YYRHSLOC(Rhs, 1), YYRHSLOC(Rhs, N));         \
        else {                                                                  \
            (Cur) = YYRHSLOC(Rhs, 0);                                           \
            (Cur).len = 0;                                                      \
        }                                                                       \
    } while (0)

#define B (&P->b)
#define A (P->b.arena)

static void fe_yyerror(Loc *loc, FeParser *P, const char *msg);
}

%token NL "newline"
%token <s> IDENT "identifier"
%token <i> INT "integer"
%token <f> FLOAT "number"
%token <ns> DURATION "duration"
%token KERNEL "'GPU_KERNEL'" PARAM "'GPU_PARAM'" CLASS "'GPU_CLASS'"
%token DEADLINE "'GPU_DEADLINE'" THREAD_CODE "'GPU_THREAD_CODE:'" END "'GPU_END'"
%token <k> PRIM "parallel statement"
%token PMAP "'PARALLEL_MAP'" PFILL "'PARALLEL_FILL'" PREDUCE "'PARALLEL_REDUCE'"
%token PSCAN "'PARALLEL_SCAN'" PFOR "'PARALLEL_FOR'"
%token <k> REDOP "SUM, MIN, MAX or PROD"
%token <k> CLASSNAME "REALTIME, INTERACTIVE, THROUGHPUT or BATCH"
%token <k> TYPE "type name"
%token IN "'IN'" LET "'let'" VAR "'var'" IF "'if'" ELSE "'else'" FOR "'for'"
%token ARROW "'→'" DOTDOT "'..'"
%token OROR "'||'" ANDAND "'&&'" EQ "'=='" NE "'!='" LE "'<='" GE "'>='"
%token SHL "'<<'" SHR "'>>'"
%token <k> OPASSIGN "compound assignment"

%type <e> expr name indexed call_args lvalue
%type <st> stmt pstmt tstmt prim_ops pfor if_stmt
%type <sl> stmts block
%type <ty> type
%type <r> range

%right '?' ':'
%left OROR
%left ANDAND
%left EQ NE
%left '<' LE '>' GE
%left '|'
%left '^'
%left '&'
%left SHL SHR
%left '+' '-'
%left '*' '/' '%'
%precedence UNARY

%%

program:
      %empty
    | program line
    ;

sep: NL | ';' ;

line:
      sep
    | KERNEL IDENT sep          { fe_kernel_begin(B, @1, @2, $2); }
    | PARAM IDENT type sep      { fe_param_add(B, @2, $2, $3); }
    | CLASS CLASSNAME sep       { fe_kernel_class(B, @2, (FeClass)$2); }
    | DEADLINE DURATION sep     { fe_kernel_deadline(B, @2, $2); }
    | THREAD_CODE               { fe_kernel_code(B, @1); }
    | END sep                   { fe_kernel_end(B, @1); }
    | stmt sep                  { fe_kernel_stmt(B, $1); }
    | error NL                  { yyerrok; }
    ;

type:
      TYPE                      { $$ = fe_type_scalar(B, @1, (ScalarType)$1); }
    | type '[' ']'              { $$ = fe_type_unranked(B, $1, fe_loc_span(@2, @3)); }
    | type '[' INT ']'          { $$ = fe_type_dim(B, $1, @3, $3.v, NULL); }
    | type '[' IDENT ']'        { $$ = fe_type_dim(B, $1, @3, 0, $3); }
    ;

stmt: pstmt | tstmt ;

/* ---- parallel statements ---- */

pstmt:
      prim_ops ARROW IDENT             { $$ = fe_stmt_output(B, $1, @3, $3, NULL); }
    | prim_ops ARROW IDENT ':' expr    { $$ = fe_stmt_output(B, $1, @3, $3, $5); }
    | PFILL expr ARROW IDENT           { $$ = fe_stmt_fill(B, @1, $2, @4, $4); }
    | pfor block                       { $$ = fe_stmt_pfor_body(B, $1, $2); }
    ;

/* Operands are separated by white space or commas. */
prim_ops:
      PRIM                      { $$ = fe_stmt_prim(B, @1, (FePrim)$1, RED_SUM); }
    | PMAP                      { $$ = fe_stmt_prim(B, @1, PRIM_MAP, RED_SUM); }
    | PREDUCE REDOP             { $$ = fe_stmt_prim(B, @1, PRIM_REDUCE, (FeReduceOp)$2); }
    | PSCAN REDOP               { $$ = fe_stmt_prim(B, @1, PRIM_SCAN, (FeReduceOp)$2); }
    | prim_ops IDENT            { $$ = fe_stmt_operand(B, $1, @2, $2); }
    | prim_ops ',' IDENT        { $$ = fe_stmt_operand(B, $1, @3, $3); }
    ;

/* Ranges are separated by commas or white space; at most 3 (constructor). */
pfor:
      PFOR range                { $$ = fe_stmt_pfor(B, @1, $2); }
    | pfor ',' range            { $$ = fe_stmt_pfor_range(B, $1, $3); }
    | pfor range                { $$ = fe_stmt_pfor_range(B, $1, $2); }
    ;

range:
      IDENT IN expr DOTDOT expr     { $$ = fe_range(B, @1, $1, $3, $5); }
    | IDENT in_word expr DOTDOT expr { $$ = fe_range(B, @1, $1, $3, $5); }
    ;

/* Lower-case `in` is not reserved (a buffer may be called `in`). */
in_word: IDENT                  { fe_range_word(B, @1, $1); } ;

/* ---- thread code ---- */

block:
      '{' stmts '}'             { $$ = $2; }
    | '{' stmts stmt '}'        { $$ = fe_block_add(B, $2, $3); }
    | '{' stmts error '}'       { $$ = $2; yyerrok; }
    ;

stmts:
      %empty                    { $$ = fe_block_new(B); }
    | stmts sep                 { $$ = $1; }
    | stmts stmt sep            { $$ = fe_block_add(B, $1, $2); }
    | stmts error sep           { $$ = $1; yyerrok; }
    ;

tstmt:
      LET IDENT '=' expr        { $$ = fe_stmt_let(B, @1, @2, $2, $4, 0); }
    | VAR IDENT '=' expr        { $$ = fe_stmt_let(B, @1, @2, $2, $4, 1); }
    | lvalue '=' expr           { $$ = fe_stmt_assign(B, $1, OP_ASSIGN, $3); }
    | lvalue OPASSIGN expr      { $$ = fe_stmt_assign(B, $1, (FeOp)$2, $3); }
    | if_stmt
    | FOR range block           { $$ = fe_stmt_for(B, @1, $2, $3); }
    ;

/* The lexer drops the newline between `}` and `else`, so `}` newline
 * `else {` reads as `} else {`. */
if_stmt:
      IF expr block                 { $$ = fe_stmt_if(B, @1, $2, $3, NULL, NULL); }
    | IF expr block ELSE block      { $$ = fe_stmt_if(B, @1, $2, $3, $5, NULL); }
    | IF expr block ELSE if_stmt    { $$ = fe_stmt_if(B, @1, $2, $3, NULL, $5); }
    ;

lvalue: name | indexed ;

/* ---- expressions (contract section 4) ---- */

name: IDENT                     { $$ = fe_name(A, @1, $1); } ;

indexed:
      name '[' expr ']'         { $$ = fe_index(A, $1, $3); $$->loc = fe_loc_span($$->loc, @4); }
    | indexed '[' expr ']'      { $$ = fe_index(A, $1, $3); $$->loc = fe_loc_span($$->loc, @4); }
    ;

call_args:
      name '(' expr             { $$ = fe_call(A, $1, $3); }
    | TYPE '(' expr             { $$ = fe_call(A, fe_name(A, @1, fe_type_name((ScalarType)$1)), $3); }
    | call_args ',' expr        { $$ = fe_call_arg(A, $1, $3); }
    ;

expr:
      INT                       { $$ = fe_int_lit(A, @1, $1.v, $1.is_unsigned); }
    | FLOAT                     { $$ = fe_float_lit(A, @1, $1.v, $1.is_half); }
    | name
    | indexed
    | call_args ')'             { $$ = fe_paren(A, fe_loc_span($1->loc, @2), $1); }
    | name '(' ')'              { $$ = fe_call(A, $1, NULL); }
    | '(' expr ')'              { $$ = fe_paren(A, @$, $2); }
    | '-' expr %prec UNARY      { $$ = fe_unary(A, @1, OP_NEG, $2); }
    | '!' expr %prec UNARY      { $$ = fe_unary(A, @1, OP_NOT, $2); }
    | '~' expr %prec UNARY      { $$ = fe_unary(A, @1, OP_BNOT, $2); }
    | expr '*' expr             { $$ = fe_binary(A, @2, OP_MUL, $1, $3); }
    | expr '/' expr             { $$ = fe_binary(A, @2, OP_DIV, $1, $3); }
    | expr '%' expr             { $$ = fe_binary(A, @2, OP_REM, $1, $3); }
    | expr '+' expr             { $$ = fe_binary(A, @2, OP_ADD, $1, $3); }
    | expr '-' expr             { $$ = fe_binary(A, @2, OP_SUB, $1, $3); }
    | expr SHL expr             { $$ = fe_binary(A, @2, OP_SHL, $1, $3); }
    | expr SHR expr             { $$ = fe_binary(A, @2, OP_SHR, $1, $3); }
    | expr '&' expr             { $$ = fe_binary(A, @2, OP_BAND, $1, $3); }
    | expr '^' expr             { $$ = fe_binary(A, @2, OP_BXOR, $1, $3); }
    | expr '|' expr             { $$ = fe_binary(A, @2, OP_BOR, $1, $3); }
    | expr '<' expr             { $$ = fe_binary(A, @2, OP_LT, $1, $3); }
    | expr LE expr              { $$ = fe_binary(A, @2, OP_LE, $1, $3); }
    | expr '>' expr             { $$ = fe_binary(A, @2, OP_GT, $1, $3); }
    | expr GE expr              { $$ = fe_binary(A, @2, OP_GE, $1, $3); }
    | expr EQ expr              { $$ = fe_binary(A, @2, OP_EQ, $1, $3); }
    | expr NE expr              { $$ = fe_binary(A, @2, OP_NE, $1, $3); }
    | expr ANDAND expr          { $$ = fe_binary(A, @2, OP_LAND, $1, $3); }
    | expr OROR expr            { $$ = fe_binary(A, @2, OP_LOR, $1, $3); }
    | expr '?' expr ':' expr    { $$ = fe_ternary(A, @2, $1, $3, $5); }
    ;

%%

/* `unexpected X`: the lookahead as the user wrote it. */
static const char *describe_lookahead(FeParser *P, yysymbol_kind_t sym)
{
    Arena *a = P->b.arena;
    size_t n = (size_t)(P->tok_e - P->tok_s);
    int shown = n > 40 ? 40 : (int)n;
    const char *dots = n > 40 ? "..." : "";
    switch (sym) {
    case YYSYMBOL_YYEOF: return "end of file";
    case YYSYMBOL_NL: return P->tok_made_up ? "end of file" : "newline";
    case YYSYMBOL_IDENT: return fe_sprintf(a, "identifier '%.*s%s'", shown, P->tok_s, dots);
    case YYSYMBOL_INT:
    case YYSYMBOL_FLOAT: return fe_sprintf(a, "number '%.*s%s'", shown, P->tok_s, dots);
    case YYSYMBOL_DURATION: return fe_sprintf(a, "duration '%.*s%s'", shown, P->tok_s, dots);
    default:
        if (n == 0) return yysymbol_name(sym);
        return fe_sprintf(a, "'%.*s%s'", shown, P->tok_s, dots);
    }
}

static int yyreport_syntax_error(const yypcontext_t *ctx, FeParser *P)
{
    enum { MAXEXP = 4 };
    yysymbol_kind_t exp[MAXEXP];
    Loc loc = *yypcontext_location(ctx);
    const char *what = describe_lookahead(P, yypcontext_token(ctx));
    int n = yypcontext_expected_tokens(ctx, NULL, 0);
    if (n > MAXEXP || n <= 0) {
        fe_error(P->b.d, loc, "syntax error, unexpected %s", what);
        return 0;
    }
    n = yypcontext_expected_tokens(ctx, exp, MAXEXP);
    char *list = "";
    for (int i = 0; i < n; i++)
        list = fe_sprintf(P->b.arena, "%s%s%s", list, i == 0 ? "" : i == n - 1 ? " or " : ", ",
                          yysymbol_name(exp[i]));
    fe_error(P->b.d, loc, "syntax error, unexpected %s, expecting %s", what, list);
    return 0;
}

/* Bison calls this only for stack exhaustion. */
static void fe_yyerror(Loc *loc, FeParser *P, const char *msg)
{
    if (strcmp(msg, "memory exhausted") == 0) msg = "input nested too deeply";
    fe_error(P->b.d, *loc, "%s", msg);
}

Program *fe_parse(Arena *a, Diags *d)
{
    if (d->srclen > d->lim.source_bytes) {
        /* refused before a byte is lexed: the lexer copies the text */
        FeBuild b;
        fe_build_init(&b, a, d);
        Loc first = {1, 1, 0, 0};
        fe_error(d, first, "source is larger than the limit of %zu bytes", d->lim.source_bytes);
        return b.prog;
    }
    FeParser *P = fe_alloc(a, sizeof *P);
    fe_lexer_init(P, a, d);
    fe_yyparse(P);
    fe_program_finish(&P->b, P->eofloc);
    return P->b.prog;
}
