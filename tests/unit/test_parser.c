/* test_parser.c — fe_parse: the AST shape of every statement form and
 * header line, operator precedence, syntax error messages and locations,
 * recovery, nesting limits and hostile input. Expected shapes and messages
 * are written by hand. */
#include "frontend/fe.h"
#include "tests/unit/test.h"

#include <stdlib.h>

static Arena *arena;
static Diags diags;

static Program *parsen(const char *src, size_t n)
{
    if (arena) fe_arena_free(arena);
    arena = fe_arena_new();
    fe_diags_init(&diags, arena, "t.px", src, n);
    return fe_parse(arena, &diags);
}
static Program *parse(const char *src) { return parsen(src, strlen(src)); }

/* A kernel around thread code, so statements are on line 3 onwards. */
static Program *parse_body(const char *body)
{
    char *s = malloc(strlen(body) + 64);
    sprintf(s, "GPU_KERNEL k\nGPU_THREAD_CODE:\n%s\nGPU_END\n", body);
    static char *keep;
    free(keep);
    keep = s; /* diags point into the source */
    return parse(s);
}

static int has_error(const char *msg)
{
    for (int i = 0; i < diags.v.n; i++)
        if (diags.v.v[i].level == DIAG_ERROR && strstr(diags.v.v[i].msg, msg)) return 1;
    return 0;
}

/* The rendered first line of diagnostic i: `t.px:L:C: error: msg`. */
static int first_is(int i, const char *want)
{
    if (i >= diags.v.n) return 0;
    Diag *g = &diags.v.v[i];
    char buf[512];
    snprintf(buf, sizeof buf, "t.px:%d:%d: %s: %s", g->loc.line, g->loc.col,
             g->level == DIAG_ERROR ? "error" : g->level == DIAG_WARNING ? "warning" : "note", g->msg);
    if (strcmp(buf, want) != 0) {
        fprintf(stderr, "  got  %s\n  want %s\n", buf, want);
        return 0;
    }
    return 1;
}

static Stmt *body0(Program *p, int i) { return p->kernels.v[0]->body.v[i]; }

/* The statement inside `PARALLEL_FOR i IN 0..4 { <s> }`. */
static Stmt *thread_stmt(const char *s)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "PARALLEL_FOR i IN 0..4 {\n%s\n}", s);
    Program *p = parse_body(buf);
    if (diags.nerrors || p->kernels.n != 1 || p->kernels.v[0]->body.n != 1) return NULL;
    Stmt *f = body0(p, 0);
    return f->body.n == 1 ? f->body.v[0] : NULL;
}

/* The expression of `let x = <e>` in thread code. */
static Expr *expr_of(const char *e)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "let x = %s", e);
    Stmt *s = thread_stmt(buf);
    return s && s->kind == ST_LET ? s->a : NULL;
}

static int is_bin(const Expr *e, FeOp op) { return e && e->kind == EX_BINARY && e->op == op; }
static int is_name(const Expr *e, const char *n) { return e && e->kind == EX_NAME && !strcmp(e->name, n); }
static int is_int(const Expr *e, uint64_t v) { return e && e->kind == EX_INT && e->ival == v; }

TEST(header)
{
    Program *p = parse("# comment\n\nGPU_KERNEL train_model\n"
                       "GPU_PARAM weights float[]\n"
                       "GPU_PARAM a float[N]\n"
                       "GPU_PARAM m half[M][16]\n"
                       "GPU_PARAM t int[1][2][3][4]\n"
                       "GPU_PARAM s uint\n"
                       "GPU_DEADLINE 0.5ms\n"
                       "GPU_CLASS REALTIME\n"
                       "GPU_THREAD_CODE:\n"
                       "    PARALLEL_MATMUL weights inputs → outputs\n"
                       "GPU_END\n"
                       "GPU_KERNEL second   // another\n"
                       "GPU_CLASS BATCH\n"
                       "GPU_THREAD_CODE :\n"
                       "GPU_END");
    CHECK(diags.nerrors == 0);
    CHECK(p->kernels.n == 2);
    if (p->kernels.n != 2) return;
    Kernel *k = p->kernels.v[0];
    CHECK(!strcmp(k->name, "train_model") && k->loc.line == 3 && k->loc.col == 12);
    CHECK(k->params.n == 5);
    CHECK(k->params.v[0].type.is_buffer && k->params.v[0].type.unranked && k->params.v[0].type.elem == TY_FLOAT);
    TypeSpec *a = &k->params.v[1].type;
    CHECK(a->is_buffer && !a->unranked && a->rank == 1 && a->dims[0].is_sym && !strcmp(a->dims[0].name, "N"));
    TypeSpec *m = &k->params.v[2].type;
    CHECK(m->elem == TY_HALF && m->rank == 2 && m->dims[0].is_sym && !m->dims[1].is_sym && m->dims[1].value == 16);
    TypeSpec *t = &k->params.v[3].type;
    CHECK(t->elem == TY_INT && t->rank == 4 && t->dims[3].value == 4);
    TypeSpec *s = &k->params.v[4].type;
    CHECK(s->elem == TY_UINT && !s->is_buffer);
    CHECK(!strcmp(k->params.v[4].name, "s") && k->params.v[4].loc.line == 8 && k->params.v[4].loc.col == 11);
    CHECK(k->deadline_ns == 500000 && k->cls == CLASS_REALTIME);
    CHECK(k->body.n == 1);
    Stmt *mm = k->body.v[0];
    CHECK(mm->kind == ST_PARALLEL && mm->prim == PRIM_MATMUL && mm->in.n == 2 &&
          !strcmp(mm->in.v[1].name, "inputs") && !strcmp(mm->out.name, "outputs"));
    CHECK(mm->out.loc.line == 12 && mm->out.loc.col == 38);
    CHECK(p->kernels.v[1]->cls == CLASS_BATCH && p->kernels.v[1]->body.n == 0);
}

TEST(header_errors)
{
    parse("GPU_KERNEL k\nGPU_PARAM a float[1][2][3][4][5]\nGPU_PARAM b float[0]\n"
          "GPU_PARAM c float[][3]\nGPU_CLASS BATCH\nGPU_CLASS BATCH\nGPU_DEADLINE 1ms\n"
          "GPU_THREAD_CODE:\nGPU_PARAM d float\nGPU_END\nGPU_END\n");
    CHECK(has_error("at most 4 dimensions"));
    CHECK(has_error("extent must be at least 1"));
    CHECK(has_error("'[]' must be the only dimension"));
    CHECK(has_error("GPU_CLASS given twice"));
    CHECK(has_error("GPU_DEADLINE contradicts GPU_CLASS BATCH"));
    CHECK(has_error("GPU_PARAM must come before GPU_THREAD_CODE:"));
    CHECK(has_error("GPU_END without GPU_KERNEL"));
    CHECK(diags.nerrors == 7);
    parse("GPU_KERNEL a\nGPU_THREAD_CODE:\nGPU_KERNEL b\nGPU_END\n");
    CHECK(first_is(0, "t.px:3:1: error: missing GPU_END before GPU_KERNEL"));
    CHECK(first_is(1, "t.px:1:12: note: kernel 'a' starts here"));
    parse("GPU_KERNEL a\nGPU_END\n");
    CHECK(has_error("kernel 'a' has no GPU_THREAD_CODE: section"));
    parse("GPU_KERNEL a\nGPU_THREAD_CODE:\nPARALLEL_COPY x → y\n");
    CHECK(first_is(0, "t.px:3:20: error: missing GPU_END at end of file"));
}

TEST(parallel_forms)
{
    Program *p = parse_body("PARALLEL_ADD a, b → c\n"
                            "PARALLEL_SUB a b -> c ; PARALLEL_MUL a b → c\n"
                            "PARALLEL_DIV a b → c\n"
                            "PARALLEL_MAP x y z → w : x * y + z\n"
                            "PARALLEL_FILL 1.5 → out\n"
                            "PARALLEL_COPY a → b\n"
                            "PARALLEL_TRANSPOSE a → b\n"
                            "PARALLEL_REDUCE MAX a → r\n"
                            "PARALLEL_SCAN SUM a → s\n"
                            "PARALLEL_SOFTMAX a → b\n"
                            "PARALLEL_FOR i IN 0..N, j in 1..M k IN 0..2 { }\n");
    CHECK(diags.nerrors == 0);
    Kernel *k = p->kernels.v[0];
    CHECK(k->body.n == 12);
    if (k->body.n != 12) return;
    FePrim want[] = {PRIM_ADD, PRIM_SUB, PRIM_MUL, PRIM_DIV, PRIM_MAP, PRIM_FILL, PRIM_COPY,
                     PRIM_TRANSPOSE, PRIM_REDUCE, PRIM_SCAN, PRIM_SOFTMAX, PRIM_FOR};
    int nin[] = {2, 2, 2, 2, 3, 0, 1, 1, 1, 1, 1, 0};
    for (int i = 0; i < 12; i++) {
        CHECK(body0(p, i)->kind == ST_PARALLEL && body0(p, i)->prim == want[i]);
        CHECK_MSG(body0(p, i)->in.n == nin[i], "stmt %d: %d inputs", i, body0(p, i)->in.n);
    }
    Stmt *map = body0(p, 4);
    CHECK(!strcmp(map->out.name, "w") && is_bin(map->a, OP_ADD) && is_bin(map->a->a, OP_MUL));
    Stmt *fill = body0(p, 5);
    CHECK(fill->a && fill->a->kind == EX_FLOAT && fill->a->fval == 1.5 && !strcmp(fill->out.name, "out"));
    CHECK(body0(p, 8)->rop == RED_MAX && !strcmp(body0(p, 8)->out.name, "r"));
    CHECK(body0(p, 9)->rop == RED_SUM);
    Stmt *f = body0(p, 11);
    CHECK(f->ranges.n == 3 && !strcmp(f->ranges.v[1].var, "j") && is_int(f->ranges.v[1].lo, 1) &&
          is_name(f->ranges.v[1].hi, "M") && !strcmp(f->ranges.v[2].var, "k"));
    CHECK(body0(p, 1)->loc.line == 4 && body0(p, 2)->loc.line == 4 && body0(p, 2)->loc.col == 25);
}

TEST(parallel_errors)
{
    parse_body("PARALLEL_MATMUL a → c\nPARALLEL_COPY a b → c\nPARALLEL_MAP → c : 1\n"
               "PARALLEL_MAP a → c\nPARALLEL_ADD a b → c : a\n"
               "PARALLEL_FOR i IN 0..1, j IN 0..1, k IN 0..1, l IN 0..1 { }\n"
               "let x = 1\nPARALLEL_FOR i IN 0..1 { PARALLEL_COPY a → b }\n"
               "PARALLEL_FOR i in2 0..1 { }");
    CHECK(first_is(0, "t.px:3:1: error: PARALLEL_MATMUL takes 2 operands before the arrow, found 1"));
    CHECK(first_is(1, "t.px:4:17: error: PARALLEL_COPY takes 1 operand before the arrow, found 2"));
    CHECK(has_error("PARALLEL_MAP needs at least one input"));
    CHECK(has_error("PARALLEL_MAP needs ': expr' after its output"));
    CHECK(has_error("only PARALLEL_MAP takes ': expr'"));
    CHECK(has_error("PARALLEL_FOR has at most 3 ranges"));
    CHECK(has_error("'let' is thread code"));
    CHECK(has_error("PARALLEL_COPY cannot be nested in a block"));
    CHECK(has_error("expected 'IN' in a range, found 'in2'"));
    CHECK(diags.nerrors == 9);
    /* the promised shapes hold even after errors */
    Program *p = parse_body("PARALLEL_MATMUL a → c\nPARALLEL_FOR i IN 0..1, j IN 0..1, k IN 0..1, l IN 0..1 { }");
    CHECK(body0(p, 0)->in.n == 2 && body0(p, 1)->ranges.n == 3);
}

TEST(thread_code)
{
    Program *p = parse_body(
        "PARALLEL_FOR i IN 0..M, j IN 0..N {\n"
        "    let v = a[i][j]  # comment\n"
        "    var acc = 0.0\n"
        "    for k in 0..K { acc += a[i][k] * b[k][j] }\n"
        "    acc = acc - 1.0; acc <<= 2\n"
        "    if acc > 1.0 {\n"
        "        out[i][j] = acc\n"
        "    } else if acc < 0.0 {\n"
        "        out[i][j] = -acc\n"
        "    }\n"
        "    else {\n"
        "        out[i][j] = float(v)\n"
        "    }\n"
        "    if v == 0.0 { }\n"
        "}");
    CHECK(diags.nerrors == 0);
    Stmt *f = body0(p, 0);
    CHECK(f->prim == PRIM_FOR && f->ranges.n == 2 && f->body.n == 7);
    if (f->body.n != 7) return;
    Stmt **s = f->body.v;
    CHECK(s[0]->kind == ST_LET && !strcmp(s[0]->name, "v") && s[0]->a->kind == EX_INDEX &&
          s[0]->a->args.n == 2 && !strcmp(s[0]->a->name, "a") && is_name(s[0]->a->args.v[1], "j"));
    CHECK(s[0]->nameloc.line == 4 && s[0]->nameloc.col == 9);
    CHECK(s[1]->kind == ST_VAR && s[1]->a->kind == EX_FLOAT);
    CHECK(s[2]->kind == ST_FOR && s[2]->ranges.n == 1 && !strcmp(s[2]->ranges.v[0].var, "k") &&
          s[2]->body.n == 1 && s[2]->body.v[0]->kind == ST_ASSIGN && s[2]->body.v[0]->op == OP_ADD);
    CHECK(s[3]->kind == ST_ASSIGN && s[3]->op == OP_ASSIGN && is_bin(s[3]->a, OP_SUB));
    CHECK(s[4]->kind == ST_ASSIGN && s[4]->op == OP_SHL && is_name(s[4]->target, "acc"));
    Stmt *ifs = s[5];
    CHECK(ifs->kind == ST_IF && is_bin(ifs->a, OP_GT) && ifs->body.n == 1 && ifs->has_else && ifs->els.n == 1);
    Stmt *st = ifs->body.v[0];
    CHECK(st->kind == ST_ASSIGN && st->target->kind == EX_INDEX && st->target->args.n == 2 &&
          !strcmp(st->target->name, "out"));
    Stmt *elif = ifs->els.v[0];
    CHECK(elif->kind == ST_IF && is_bin(elif->a, OP_LT) && elif->has_else && elif->els.n == 1);
    Expr *conv = elif->els.v[0]->a;
    CHECK(conv->kind == EX_CALL && !strcmp(conv->name, "float") && conv->args.n == 1);
    CHECK(f->body.v[6]->kind == ST_IF && !f->body.v[6]->has_else && f->body.v[6]->body.n == 0);
}

TEST(precedence)
{
    Expr *e = expr_of("a + b * c");
    CHECK(is_bin(e, OP_ADD) && is_name(e->a, "a") && is_bin(e->b, OP_MUL));
    e = expr_of("a - b - c");
    CHECK(is_bin(e, OP_SUB) && is_bin(e->a, OP_SUB) && is_name(e->b, "c"));
    e = expr_of("a ? b : c ? d : e");
    CHECK(e && e->kind == EX_TERNARY && is_name(e->b, "b") && e->c->kind == EX_TERNARY);
    e = expr_of("a || b && c");
    CHECK(is_bin(e, OP_LOR) && is_bin(e->b, OP_LAND));
    e = expr_of("a && b == c");
    CHECK(is_bin(e, OP_LAND) && is_bin(e->b, OP_EQ));
    e = expr_of("a == b < c");
    CHECK(is_bin(e, OP_EQ) && is_bin(e->b, OP_LT));
    e = expr_of("a < b | c");
    CHECK(is_bin(e, OP_LT) && is_bin(e->b, OP_BOR));
    e = expr_of("a | b ^ c & d");
    CHECK(is_bin(e, OP_BOR) && is_bin(e->b, OP_BXOR) && is_bin(e->b->b, OP_BAND));
    e = expr_of("a & b << c");
    CHECK(is_bin(e, OP_BAND) && is_bin(e->b, OP_SHL));
    e = expr_of("a << b + c");
    CHECK(is_bin(e, OP_SHL) && is_bin(e->b, OP_ADD));
    e = expr_of("a + b % c");
    CHECK(is_bin(e, OP_ADD) && is_bin(e->b, OP_REM));
    e = expr_of("-a * b");
    CHECK(is_bin(e, OP_MUL) && e->a->kind == EX_UNARY && e->a->op == OP_NEG);
    e = expr_of("!a == ~b");
    CHECK(is_bin(e, OP_EQ) && e->a->op == OP_NOT && e->b->op == OP_BNOT);
    e = expr_of("-a[i][j + 1]");
    CHECK(e && e->kind == EX_UNARY && e->a->kind == EX_INDEX && e->a->args.n == 2 && is_bin(e->a->args.v[1], OP_ADD));
    e = expr_of("(a + b) * c");
    CHECK(is_bin(e, OP_MUL) && is_bin(e->a, OP_ADD) && e->a->loc.col == 9 && e->a->loc.len == 7);
    e = expr_of("clamp(x, 0.0, max(y, 1.0)) >= 2u");
    CHECK(is_bin(e, OP_GE) && e->a->kind == EX_CALL && e->a->args.n == 3 && e->a->args.v[2]->kind == EX_CALL &&
          e->b->kind == EX_INT && e->b->is_unsigned);
    e = expr_of("a >> b >= c ? 1 : 2");
    CHECK(e && e->kind == EX_TERNARY && is_bin(e->a, OP_GE) && is_bin(e->a->a, OP_SHR));
    e = expr_of("a[i] + f(x)");
    CHECK(is_bin(e, OP_ADD) && e->a->loc.col == 9 && e->a->loc.len == 4 && e->b->loc.col == 16 &&
          e->b->loc.len == 4 && e->loc.len == 11);
    e = expr_of("(a\n + b)");
    CHECK(is_bin(e, OP_ADD));
    /* locations: the operator and the whole range */
    e = expr_of("ab + cd");
    CHECK(e && e->oploc.col == 12 && e->loc.col == 9 && e->loc.len == 7);
}

TEST(syntax_errors)
{
    parse("GPU_KERNEL k\nGPU_THREAD_CODE:\nPARALLEL_FOR i IN 0..N {\n  let x = (a + 1\n}\nGPU_END\n");
    /* the newline is inside ( ), so the error shows at the `}` */
    CHECK(first_is(0, "t.px:5:1: error: syntax error, unexpected '}'"));
    parse("GPU_KERNEL k\nGPU_PARAM a float[N\nGPU_THREAD_CODE:\nGPU_END\n");
    CHECK(first_is(0, "t.px:2:20: error: syntax error, unexpected newline, expecting ']'"));
    parse("GPU_KERNEL k\nGPU_THREAD_CODE:\nPARALLEL_COPY a b c\nGPU_END\n");
    CHECK(first_is(0, "t.px:3:20: error: syntax error, unexpected newline, expecting identifier, '→' or ','"));
    parse("GPU_KERNEL 12\n");
    CHECK(first_is(0, "t.px:1:12: error: syntax error, unexpected number '12', expecting identifier"));
    parse("GPU_KERNEL k\nGPU_CLASS FAST\n");
    CHECK(first_is(0, "t.px:2:11: error: syntax error, unexpected identifier 'FAST', expecting "
                      "REALTIME, INTERACTIVE, THROUGHPUT or BATCH"));
    parse("GPU_KERNEL k\nGPU_DEADLINE 16\n");
    CHECK(first_is(0, "t.px:2:14: error: syntax error, unexpected number '16', expecting duration"));
    parse("GPU_KERNEL k\nGPU_THREAD_CODE:\nPARALLEL_ADD a b →");
    CHECK(first_is(0, "t.px:3:19: error: syntax error, unexpected end of file, expecting identifier"));
    parse("GPU_KERNEL k\nGPU_THREAD_CODE:\nPARALLEL_FOR i IN 0..N\n{ }\nGPU_END");
    /* `{` must be on the line of its PARALLEL_FOR */
    CHECK(first_is(0, "t.px:3:23: error: syntax error, unexpected newline"));
    parse("GPU_KERNEL k\nGPU_THREAD_CODE:\nPARALLEL_FOR i IN 0..N {\n x = → 2\n}\nGPU_END");
    CHECK(first_is(0, "t.px:4:6: error: syntax error, unexpected '→'"));
}

TEST(recovery)
{
    /* one error per bad line, and the good lines around them still parse */
    Program *p = parse("GPU_KERNEL k\n"
                       "GPU_PARAM a float[\n"
                       "GPU_THREAD_CODE:\n"
                       "PARALLEL_ADD a b → → c\n"
                       "PARALLEL_COPY a → b\n"
                       "PARALLEL_FOR i IN 0..4 {\n"
                       "  let = 3\n"
                       "  x = 1 +\n"
                       "  y = 2\n"
                       "}\n"
                       ") garbage\n"
                       "GPU_END\n"
                       "GPU_KERNEL k2\n"
                       "GPU_THREAD_CODE:\n"
                       "PARALLEL_COPY a b\n"
                       "GPU_END\n");
    CHECK(diags.nerrors == 6);
    CHECK(diags.v.n >= 6 && diags.v.v[0].loc.line == 2 && diags.v.v[1].loc.line == 4 &&
          diags.v.v[2].loc.line == 7 && diags.v.v[3].loc.line == 8 && diags.v.v[4].loc.line == 11 &&
          diags.v.v[5].loc.line == 15);
    CHECK(p->kernels.n == 2);
    if (p->kernels.n == 2) {
        Kernel *k = p->kernels.v[0];
        CHECK(k->body.n == 2 && k->body.v[0]->prim == PRIM_COPY && k->body.v[1]->prim == PRIM_FOR &&
              k->body.v[1]->body.n == 1);
    }
    /* the error cap stops the parse */
    char *s = malloc(200 * 8 + 64);
    strcpy(s, "GPU_KERNEL k\nGPU_THREAD_CODE:\n");
    for (int i = 0; i < 200; i++) strcat(s, "] ] ]\n");
    parse(s);
    CHECK(diags.nerrors == 50 && diags.too_many);
    free(s);
}

TEST(nesting)
{
    int n = 20000;
    char *s = malloc((size_t)n * 24 + 256);
    const char *hdr = "GPU_KERNEL k\nGPU_THREAD_CODE:\nPARALLEL_FOR i IN 0..4 {\nlet x = ";
    /* parentheses */
    strcpy(s, hdr);
    char *p = s + strlen(s);
    for (int i = 0; i < n; i++) *p++ = '(';
    *p++ = '1';
    for (int i = 0; i < n; i++) *p++ = ')';
    strcpy(p, "\n}\nGPU_END\n");
    Program *prog = parse(s);
    /* the block's `{` counts: the 256th `(` (column 8 + 256) is the 257th open bracket */
    CHECK(diags.nerrors == 1 && first_is(0, "t.px:4:264: error: expression nested too deeply (limit 256)"));
    CHECK(prog->kernels.n == 1);
    /* prefix operators */
    strcpy(s, hdr);
    p = s + strlen(s);
    for (int i = 0; i < n; i++) *p++ = '-';
    strcpy(p, "x\n}\nGPU_END\n");
    prog = parse(s);
    CHECK(diags.nerrors == 1 && has_error("expression nested too deeply (limit 256)"));
    Stmt *let = prog->kernels.v[0]->body.v[0]->body.v[0];
    CHECK(let->a->depth <= FE_MAX_NEST);
    /* brackets */
    strcpy(s, hdr);
    p = s + strlen(s);
    for (int i = 0; i < n; i++) p += sprintf(p, "a[");
    *p++ = '0';
    for (int i = 0; i < n; i++) *p++ = ']';
    strcpy(p, "\n}\nGPU_END\n");
    parse(s);
    CHECK(diags.nerrors == 1 && has_error("expression nested too deeply (limit 256)"));
    /* long operator chains make a tall tree too */
    strcpy(s, hdr);
    p = s + strlen(s);
    for (int i = 0; i < n; i++) p += sprintf(p, "1+");
    strcpy(p, "1\n}\nGPU_END\n");
    parse(s);
    CHECK(diags.nerrors == 1 && has_error("expression nested too deeply (limit 256)"));
    /* nested if blocks */
    strcpy(s, "GPU_KERNEL k\nGPU_THREAD_CODE:\nPARALLEL_FOR i IN 0..4 {\n");
    p = s + strlen(s);
    for (int i = 0; i < n; i++) p += sprintf(p, "if c {\n");
    for (int i = 0; i < n; i++) p += sprintf(p, "}\n");
    strcpy(p, "}\nGPU_END\n");
    prog = parse(s);
    CHECK(diags.nerrors == 1 && has_error("blocks nested too deeply (limit 256)"));
    CHECK(prog->kernels.v[0]->body.n == 1 && prog->kernels.v[0]->body.v[0]->depth <= FE_MAX_NEST);
    /* else-if chains */
    strcpy(s, "GPU_KERNEL k\nGPU_THREAD_CODE:\nPARALLEL_FOR i IN 0..4 {\n");
    p = s + strlen(s);
    for (int i = 0; i < n; i++) p += sprintf(p, "if c { } else ");
    strcpy(p, "{ }\n}\nGPU_END\n");
    prog = parse(s);
    CHECK(diags.nerrors == 1 && has_error("statements nested too deeply (limit 256)"));
    CHECK(prog->kernels.v[0]->body.v[0]->depth <= FE_MAX_NEST);
    /* 256 levels are fine */
    strcpy(s, hdr);
    p = s + strlen(s);
    for (int i = 0; i < 200; i++) *p++ = '(';
    *p++ = '1';
    for (int i = 0; i < 200; i++) *p++ = ')';
    strcpy(p, "\n}\nGPU_END\n");
    parse(s);
    CHECK(diags.nerrors == 0);
    free(s);
}

TEST(long_identifier)
{
    size_t n = 100000;
    char *s = malloc(2 * n + 128);
    char *p = s + sprintf(s, "GPU_KERNEL ");
    memset(p, 'k', n);
    p += n;
    p += sprintf(p, "\nGPU_PARAM ");
    memset(p, 'b', n);
    p += n;
    strcpy(p, " float[]\nGPU_THREAD_CODE:\nGPU_END\n");
    Program *prog = parse(s);
    /* past the identifier limit (255 bytes): a located error for each,
     * and the parse goes on with the names as written */
    CHECK(diags.nerrors == 2 && diags.v.n == 2 && diags.v.v[0].loc.line == 1 && diags.v.v[0].loc.col == 12 &&
          !strcmp(diags.v.v[0].msg, "identifier is too long: 100000 bytes (limit 255)") &&
          diags.v.v[1].loc.line == 2 && diags.v.v[1].loc.col == 11);
    CHECK(prog->kernels.n == 1 && strlen(prog->kernels.v[0]->name) == n &&
          strlen(prog->kernels.v[0]->params.v[0].name) == n);
    /* in a message it is shortened */
    sprintf(s, "GPU_KERNEL k\nGPU_PARAM a ");
    p = s + strlen(s);
    memset(p, 'q', n);
    strcpy(p + n, " q\n");
    parse(s);
    int shortened = 0, all_short = 1;
    for (int i = 0; i < diags.v.n; i++) {
        shortened |= strstr(diags.v.v[i].msg, "qqq...', expecting type name") != NULL;
        all_short &= strlen(diags.v.v[i].msg) < 200;
    }
    CHECK(diags.nerrors >= 1 && shortened && all_short);
    free(s);
}

TEST(empty_and_random)
{
    Program *p = parse("");
    CHECK(p && p->kernels.n == 0 && diags.nerrors == 1 && first_is(0, "t.px:1:1: error: no GPU_KERNEL in file"));
    parse("\n# only a comment\n\n");
    CHECK(diags.nerrors == 1 && has_error("no GPU_KERNEL in file"));
    /* random bytes and random token soup: never a crash, always a Program */
    static const char *const words[] = {"GPU_KERNEL", "GPU_PARAM", "GPU_THREAD_CODE:", "GPU_END",
                                        "PARALLEL_FOR", "PARALLEL_MAP", "if", "else", "{", "}", "(",
                                        ")", "[", "]", "→", "x", "1", "\n", "..", "IN", "=", ":", "float"};
    unsigned seed = 12345;
    char buf[2048];
    int ok = 1;
    for (int iter = 0; iter < 2000; iter++) {
        int n = 0;
        if (iter % 2) {
            int len = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 1000;
            for (int i = 0; i < len; i++) buf[n++] = (char)((seed = seed * 1103515245u + 12345u) >> 16);
        } else {
            int cnt = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 80;
            for (int i = 0; i < cnt && n < 1900; i++) {
                const char *w = words[((seed = seed * 1103515245u + 12345u) >> 16) % 23];
                n += sprintf(buf + n, "%s ", w);
            }
        }
        Program *q = parsen(buf, (size_t)n);
        char *r = fe_diags_render(&diags, arena);
        if (!q || !r) ok = 0;
    }
    CHECK(ok);
}

int main(void)
{
    RUN(header);
    RUN(header_errors);
    RUN(parallel_forms);
    RUN(parallel_errors);
    RUN(thread_code);
    RUN(precedence);
    RUN(syntax_errors);
    RUN(recovery);
    RUN(nesting);
    RUN(long_identifier);
    RUN(empty_and_random);
    fe_arena_free(arena);
    return TEST_DONE();
}
