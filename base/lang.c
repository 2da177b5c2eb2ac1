/* lang.c — the name tables of the language's vocabulary (base.h). */
#include "base.h"

const char *fe_type_name(ScalarType t)
{
    static const char *const names[] = {"void", "bool", "int", "uint", "float", "half"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

const char *fe_op_name(FeOp op)
{
    static const char *const names[] = {
#define X(e, s) s,
        FE_OPS(X)
#undef X
    };
    return (unsigned)op < sizeof names / sizeof *names ? names[op] : "?";
}

const char *const fe_builtin_names[BI_COUNT] = {
#define X(e, s, n) s,
    FE_BUILTINS(X)
#undef X
};

const int fe_builtin_arity[BI_COUNT] = {
#define X(e, s, n) n,
    FE_BUILTINS(X)
#undef X
};

int fe_builtin_lookup(const char *name)
{
    for (int i = 0; i < BI_COUNT; i++)
        if (strcmp(fe_builtin_names[i], name) == 0) return i;
    return -1;
}

const char *const fe_prim_names[PRIM_COUNT] = {
#define X(e, s, n) s,
    FE_PRIMS(X)
#undef X
};

const int fe_prim_arity[PRIM_COUNT] = {
#define X(e, s, n) n,
    FE_PRIMS(X)
#undef X
};

const char *const fe_reduce_names[] = {
#define X(e, s) s,
    FE_REDUCE_OPS(X)
#undef X
};

const char *const fe_class_names[] = {
#define X(e, s) s,
    FE_CLASSES(X)
#undef X
};
