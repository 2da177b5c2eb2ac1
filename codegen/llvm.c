/* llvm.c — the CPU backend: IR -> LLVM IR through the LLVM-C API (LLVM 16,
 * opaque pointers), optimised with the host TargetMachine's default<On>
 * pipeline, JIT-compiled with ORC LLJIT. The step ABI is in cg.h.
 *
 * Invariants of the generated code:
 *  - Every value read from CgCpuArgs (buffer bases, scalars, size symbols,
 *    extents) is loaded once in the entry block, so stores to buffers never
 *    force a reload inside loops (LLVM cannot prove they do not alias the
 *    argument block) and loops stay vectorisable.
 *  - Index variables and IR integers are i32; offsets and domains are i64,
 *    so no index computation of a bounded-in-range access can wrap.
 *  - Nothing the IR allows traps or is poison: divisors are replaced before
 *    sdiv/udiv, shift counts masked, float->int uses fpto[su]i.sat.
 */
#include "cg.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

/* Lanes of the hand-vectorised reductions: 32 floats make 4 independent
 * AVX2 accumulators (2 with AVX-512) after legalisation, enough to hide
 * the add latency; the combine order is a fixed halving tree. */
#define CG_RED_LANES 32
/* Matmul blocking: a KB x NB panel of B (64 KiB of float) stays in L2
 * while every row of the slice streams over it. */
#define CG_MM_NB 256
#define CG_MM_KB 64

typedef struct Gen {
    LLVMContextRef cx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    const IrKernel *k;
    Arena *arena;            /* scratch for this generation */
    const char *cpu, *features;
    LLVMTypeRef i1, i32, i64, f16, f32, f64, ptr, vt, fnty;
    LLVMValueRef fn, entry_args, begin, end;
    LLVMBasicBlockRef entry;
    LLVMValueRef *vals;      /* per instruction id */
    LLVMValueRef **multi;    /* IF/FOR id -> its result values */
    LLVMValueRef *bufp;      /* per param: base pointer */
    LLVMValueRef *scal;      /* per param: typed scalar */
    LLVMValueRef *syms;      /* per size symbol: i64 */
    LLVMValueRef (*dims)[4]; /* per param: i64 extents */
    LLVMValueRef cancelp;    /* CgCpuArgs.cancel of the current function */
    LLVMBasicBlockRef cancelled; /* its `ret void` for a set flag; NULL until used */
} Gen;

/* ---------------------------------------------------------------- types */

static LLVMTypeRef ty_of(Gen *g, ScalarType t)
{
    switch (t) {
    case TY_BOOL: return g->i1;
    case TY_INT:
    case TY_UINT: return g->i32;
    case TY_FLOAT: return g->f32;
    case TY_HALF: return g->f16;
    case TY_VOID: return g->vt;
    }
    fe_unreachable();
}

static int is_float(ScalarType t) { return t == TY_FLOAT || t == TY_HALF; }

static LLVMValueRef c64(Gen *g, int64_t v) { return LLVMConstInt(g->i64, (unsigned long long)v, 1); }
static LLVMValueRef c32(Gen *g, int64_t v) { return LLVMConstInt(g->i32, (unsigned long long)v, 1); }

static LLVMValueRef intrin(Gen *g, const char *name, LLVMTypeRef *tys, int ntys, LLVMValueRef *args,
                           int nargs)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    if (!id) fe_die("llvm: no intrinsic %s", name);
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(g->mod, id, tys, (size_t)ntys);
    LLVMTypeRef ft = LLVMIntrinsicGetType(g->cx, id, tys, (size_t)ntys);
    return LLVMBuildCall2(g->b, ft, f, args, (unsigned)nargs, "");
}

static LLVMValueRef intrin1(Gen *g, const char *name, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    return intrin(g, name, &t, 1, &x, 1);
}

static LLVMValueRef intrin2(Gen *g, const char *name, LLVMValueRef x, LLVMValueRef y)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMValueRef a[2] = {x, y};
    return intrin(g, name, &t, 1, a, 2);
}

/* A libm function float(float) (tan, tanh: no LLVM intrinsic). */
static LLVMValueRef libm1(Gen *g, const char *name, LLVMValueRef x)
{
    LLVMTypeRef ft = LLVMFunctionType(g->f32, &g->f32, 1, 0);
    LLVMValueRef f = LLVMGetNamedFunction(g->mod, name);
    if (!f) f = LLVMAddFunction(g->mod, name, ft);
    return LLVMBuildCall2(g->b, ft, f, &x, 1, "");
}

/* --------------------------------------------------------------- control */

static LLVMBasicBlockRef new_bb(Gen *g, const char *name)
{
    return LLVMAppendBasicBlockInContext(g->cx, g->fn, name);
}

/* A counted i64 loop lo..hi (signed, hi exclusive). */
typedef struct GLoop {
    LLVMBasicBlockRef head, exit, pre;
    LLVMValueRef iv;
} GLoop;

static LLVMValueRef loop_open(Gen *g, GLoop *L, LLVMValueRef lo, LLVMValueRef hi)
{
    L->pre = LLVMGetInsertBlock(g->b);
    L->head = new_bb(g, "loop");
    LLVMBasicBlockRef body = new_bb(g, "body");
    L->exit = new_bb(g, "done");
    LLVMBuildBr(g->b, L->head);
    LLVMPositionBuilderAtEnd(g->b, L->head);
    L->iv = LLVMBuildPhi(g->b, g->i64, "i");
    LLVMAddIncoming(L->iv, &lo, &L->pre, 1);
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, L->iv, hi, ""), body, L->exit);
    LLVMPositionBuilderAtEnd(g->b, body);
    return L->iv;
}

static void loop_close(Gen *g, GLoop *L)
{
    LLVMValueRef next = LLVMBuildNSWAdd(g->b, L->iv, c64(g, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(g->b);
    LLVMBuildBr(g->b, L->head);
    LLVMAddIncoming(L->iv, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(g->b, L->exit);
}

/* A mutable local (promoted to SSA by the pipeline's SROA). */
static LLVMValueRef local(Gen *g, LLVMTypeRef t, LLVMValueRef init)
{
    LLVMBuilderRef eb = LLVMCreateBuilderInContext(g->cx);
    LLVMValueRef first = LLVMGetFirstInstruction(g->entry);
    if (first) LLVMPositionBuilderBefore(eb, first);
    else LLVMPositionBuilderAtEnd(eb, g->entry);
    LLVMValueRef a = LLVMBuildAlloca(eb, t, "");
    LLVMDisposeBuilder(eb);
    LLVMBuildStore(g->b, init, a);
    return a;
}

static LLVMValueRef smin64(Gen *g, LLVMValueRef a, LLVMValueRef b) { return intrin2(g, "llvm.smin", a, b); }
static LLVMValueRef smax64(Gen *g, LLVMValueRef a, LLVMValueRef b) { return intrin2(g, "llvm.smax", a, b); }

/* ------------------------------------------------------------ size formulas */

/* x op y with the PX integer rules of size.c (x/0 = 0, no trap). */
static LLVMValueRef size_div(Gen *g, IrSizeOp op, LLVMValueRef x, LLVMValueRef y)
{
    LLVMBuilderRef b = g->b;
    LLVMValueRef zero = LLVMBuildICmp(b, LLVMIntEQ, y, c64(g, 0), "");
    LLVMValueRef m1 = LLVMBuildICmp(b, LLVMIntEQ, y, c64(g, -1), "");
    LLVMValueRef bad = LLVMBuildOr(b, zero, m1, "");
    LLVMValueRef sy = LLVMBuildSelect(b, bad, c64(g, 1), y, "");
    LLVMValueRef q = LLVMBuildSDiv(b, x, sy, "");
    LLVMValueRef r = LLVMBuildSRem(b, x, sy, "");
    LLVMValueRef negx = LLVMBuildSub(b, c64(g, 0), x, ""); /* x / -1 wraps */
    switch (op) {
    case SZ_DIV:
        q = LLVMBuildSelect(b, m1, negx, q, "");
        return LLVMBuildSelect(b, zero, c64(g, 0), q, "");
    case SZ_REM: return LLVMBuildSelect(b, bad, c64(g, 0), r, "");
    case SZ_CEILDIV: {
        /* bump when inexact and the exact quotient is positive */
        LLVMValueRef inexact = LLVMBuildICmp(b, LLVMIntNE, r, c64(g, 0), "");
        LLVMValueRef same = LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildICmp(b, LLVMIntSLT, x, c64(g, 0), ""),
                                          LLVMBuildICmp(b, LLVMIntSLT, y, c64(g, 0), ""), "");
        LLVMValueRef bump = LLVMBuildZExt(b, LLVMBuildAnd(b, inexact, same, ""), g->i64, "");
        q = LLVMBuildAdd(b, q, bump, "");
        q = LLVMBuildSelect(b, m1, negx, q, "");
        return LLVMBuildSelect(b, zero, c64(g, 0), q, "");
    }
    default: fe_unreachable();
    }
}

static LLVMValueRef emit_size(Gen *g, const IrSize *s)
{
    switch (s->op) {
    case SZ_CONST: return c64(g, s->c);
    case SZ_SYM: return g->syms[s->sym];
    case SZ_PARAM: {
        /* int/uint scalar: its value, sign- or zero-extended */
        const IrParam *p = &g->k->params.v[s->sym];
        LLVMValueRef v = g->scal[s->sym];
        if (p->type == TY_INT) return LLVMBuildSExt(g->b, v, g->i64, "");
        if (p->type == TY_UINT) return LLVMBuildZExt(g->b, v, g->i64, "");
        fe_die("llvm: size formula uses non-integer param %s", p->name);
    }
    default: break;
    }
    LLVMValueRef x = emit_size(g, s->a), y = emit_size(g, s->b);
    switch (s->op) {
    case SZ_ADD: return LLVMBuildAdd(g->b, x, y, "");
    case SZ_SUB: return LLVMBuildSub(g->b, x, y, "");
    case SZ_MUL: return LLVMBuildMul(g->b, x, y, "");
    case SZ_DIV:
    case SZ_REM:
    case SZ_CEILDIV: return size_div(g, s->op, x, y);
    case SZ_MIN: return smin64(g, x, y);
    case SZ_MAX: return smax64(g, x, y);
    default: fe_unreachable();
    }
}

/* ------------------------------------------------------------ functions */

/* Starts a step function and loads every argument it may use (unused loads
 * are removed by the pipeline). */
static void fn_begin(Gen *g, const char *name)
{
    g->fn = LLVMAddFunction(g->mod, name, g->fnty);
    LLVMAddTargetDependentFunctionAttr(g->fn, "target-cpu", g->cpu);
    LLVMAddTargetDependentFunctionAttr(g->fn, "target-features", g->features);
    unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(g->fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(g->cx, nounwind, 0));
    g->entry = new_bb(g, "entry");
    LLVMPositionBuilderAtEnd(g->b, g->entry);
    g->entry_args = LLVMGetParam(g->fn, 0);
    g->begin = LLVMGetParam(g->fn, 1);
    g->end = LLVMGetParam(g->fn, 2);
    LLVMBuilderRef b = g->b;
    const IrKernel *k = g->k;
    /* CgCpuArgs: { ptr buf, ptr scalar, ptr sym, ptr scratch } */
    LLVMValueRef fbuf = LLVMBuildLoad2(b, g->ptr, g->entry_args, "bufs");
    LLVMValueRef fscal = LLVMBuildLoad2(b, g->ptr, LLVMBuildGEP2(b, g->ptr, g->entry_args, (LLVMValueRef[]){c64(g, 1)}, 1, ""), "scal");
    LLVMValueRef fsym = LLVMBuildLoad2(b, g->ptr, LLVMBuildGEP2(b, g->ptr, g->entry_args, (LLVMValueRef[]){c64(g, 2)}, 1, ""), "syms");
    g->cancelp = LLVMBuildLoad2(b, g->ptr, LLVMBuildGEP2(b, g->ptr, g->entry_args, (LLVMValueRef[]){c64(g, 4)}, 1, ""), "cancel");
    g->cancelled = NULL;
    for (int s = 0; s < k->syms.n; s++) {
        LLVMValueRef p = LLVMBuildGEP2(b, g->i64, fsym, (LLVMValueRef[]){c64(g, s)}, 1, "");
        g->syms[s] = LLVMBuildLoad2(b, g->i64, p, k->syms.v[s].name);
    }
    for (int i = 0; i < k->params.n; i++) {
        const IrParam *p = &k->params.v[i];
        if (p->is_buffer) {
            LLVMValueRef q = LLVMBuildGEP2(b, g->ptr, fbuf, (LLVMValueRef[]){c64(g, i)}, 1, "");
            g->bufp[i] = LLVMBuildLoad2(b, g->ptr, q, p->name);
        } else {
            LLVMValueRef q = LLVMBuildGEP2(b, g->i32, fscal, (LLVMValueRef[]){c64(g, i)}, 1, "");
            LLVMValueRef v = LLVMBuildLoad2(b, g->i32, q, p->name);
            if (p->type == TY_FLOAT) v = LLVMBuildBitCast(b, v, g->f32, p->name);
            else if (p->type == TY_HALF)
                v = LLVMBuildFPTrunc(b, LLVMBuildBitCast(b, v, g->f32, ""), g->f16, p->name);
            g->scal[i] = v;
        }
    }
    /* extents after the scalars: they may be formulas of int params */
    for (int i = 0; i < k->params.n; i++) {
        const IrParam *p = &k->params.v[i];
        if (!p->is_buffer) continue;
        for (int d = 0; d < p->rank; d++) g->dims[i][d] = emit_size(g, p->dims[d]);
    }
}

static LLVMValueRef scratch_ptr(Gen *g)
{
    LLVMValueRef q = LLVMBuildGEP2(g->b, g->ptr, g->entry_args, (LLVMValueRef[]){c64(g, 3)}, 1, "");
    return LLVMBuildLoad2(g->b, g->ptr, q, "scratch");
}

static void fn_end(Gen *g)
{
    LLVMBuildRetVoid(g->b);
    g->fn = NULL;
}

/* --------------------------------------------------------- instructions */

static LLVMValueRef conv(Gen *g, LLVMValueRef v, ScalarType from, ScalarType to)
{
    LLVMBuilderRef b = g->b;
    if (from == to) return v;
    LLVMTypeRef T = ty_of(g, to);
    if (to == TY_BOOL) {
        if (is_float(from)) return LLVMBuildFCmp(b, LLVMRealUNE, v, LLVMConstReal(LLVMTypeOf(v), 0), "");
        return LLVMBuildICmp(b, LLVMIntNE, v, LLVMConstInt(LLVMTypeOf(v), 0, 0), "");
    }
    if (from == TY_BOOL) {
        if (is_float(to)) return LLVMBuildUIToFP(b, v, T, "");
        return LLVMBuildZExt(b, v, T, "");
    }
    if (!is_float(from) && !is_float(to)) return v; /* int <-> uint keeps the bits */
    if (!is_float(from)) return from == TY_INT ? LLVMBuildSIToFP(b, v, T, "") : LLVMBuildUIToFP(b, v, T, "");
    if (is_float(to)) return to == TY_FLOAT ? LLVMBuildFPExt(b, v, T, "") : LLVMBuildFPTrunc(b, v, T, "");
    /* float -> int: truncate toward zero, saturating, NaN -> 0 (fptosi is
     * poison out of range) */
    if (from == TY_HALF) v = LLVMBuildFPExt(b, v, g->f32, "");
    LLVMTypeRef tys[2] = {g->i32, g->f32};
    return intrin(g, to == TY_INT ? "llvm.fptosi.sat" : "llvm.fptoui.sat", tys, 2, &v, 1);
}

/* Integer division and remainder with the PX rules. */
static LLVMValueRef int_divrem(Gen *g, int is_rem, int is_signed, LLVMValueRef x, LLVMValueRef y)
{
    LLVMBuilderRef b = g->b;
    LLVMValueRef zero = LLVMBuildICmp(b, LLVMIntEQ, y, c32(g, 0), "");
    LLVMValueRef bad = zero;
    if (is_signed) {
        /* INT_MIN / -1 = INT_MIN and INT_MIN % -1 = 0: dividing by 1
         * instead gives exactly those */
        LLVMValueRef ovf = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntEQ, x, c32(g, INT32_MIN), ""),
                                        LLVMBuildICmp(b, LLVMIntEQ, y, c32(g, -1), ""), "");
        bad = LLVMBuildOr(b, zero, ovf, "");
    }
    LLVMValueRef sy = LLVMBuildSelect(b, bad, c32(g, 1), y, "");
    LLVMValueRef r = is_rem ? (is_signed ? LLVMBuildSRem(b, x, sy, "") : LLVMBuildURem(b, x, sy, ""))
                            : (is_signed ? LLVMBuildSDiv(b, x, sy, "") : LLVMBuildUDiv(b, x, sy, ""));
    return LLVMBuildSelect(b, zero, c32(g, 0), r, "");
}

static LLVMValueRef emit_builtin(Gen *g, const IrInst *in, LLVMValueRef *a)
{
    LLVMBuilderRef b = g->b;
    ScalarType t = in->type;
    int fl = is_float(t);
    /* half math is done in float and rounded once (as precise as float) */
    if (t == TY_HALF && in->param != BI_SELECT) {
        for (int i = 0; i < in->a.n; i++)
            if (LLVMTypeOf(a[i]) == g->f16) a[i] = LLVMBuildFPExt(b, a[i], g->f32, "");
        IrInst tmp = *in;
        tmp.type = TY_FLOAT;
        return LLVMBuildFPTrunc(b, emit_builtin(g, &tmp, a), g->f16, "");
    }
    switch ((FeBuiltin)in->param) {
    case BI_SQRT: return intrin1(g, "llvm.sqrt", a[0]);
    case BI_RSQRT: return LLVMBuildFDiv(b, LLVMConstReal(g->f32, 1.0), intrin1(g, "llvm.sqrt", a[0]), "");
    case BI_EXP: return intrin1(g, "llvm.exp", a[0]);
    case BI_EXP2: return intrin1(g, "llvm.exp2", a[0]);
    case BI_LOG: return intrin1(g, "llvm.log", a[0]);
    case BI_LOG2: return intrin1(g, "llvm.log2", a[0]);
    case BI_SIN: return intrin1(g, "llvm.sin", a[0]);
    case BI_COS: return intrin1(g, "llvm.cos", a[0]);
    case BI_TAN: return libm1(g, "tanf", a[0]);
    case BI_TANH: return libm1(g, "tanhf", a[0]);
    case BI_POW: return intrin2(g, "llvm.pow", a[0], a[1]);
    case BI_FLOOR: return intrin1(g, "llvm.floor", a[0]);
    case BI_CEIL: return intrin1(g, "llvm.ceil", a[0]);
    case BI_ROUND: return intrin1(g, "llvm.round", a[0]); /* half away from zero */
    case BI_FMA: {
        LLVMTypeRef ft = g->f32;
        return intrin(g, "llvm.fma", &ft, 1, a, 3);
    }
    case BI_ABS:
        if (fl) return intrin1(g, "llvm.fabs", a[0]);
        if (t == TY_UINT) return a[0];
        /* abs(INT_MIN) = INT_MIN: the negation wraps */
        return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, a[0], c32(g, 0), ""),
                               LLVMBuildSub(b, c32(g, 0), a[0], ""), a[0], "");
    case BI_MIN:
    case BI_MAX: {
        int mx = in->param == BI_MAX;
        const char *n = fl ? (mx ? "llvm.maxnum" : "llvm.minnum")
                        : t == TY_INT ? (mx ? "llvm.smax" : "llvm.smin")
                                      : (mx ? "llvm.umax" : "llvm.umin");
        return intrin2(g, n, a[0], a[1]);
    }
    case BI_CLAMP: {
        const char *mxn = fl ? "llvm.maxnum" : t == TY_INT ? "llvm.smax" : "llvm.umax";
        const char *mnn = fl ? "llvm.minnum" : t == TY_INT ? "llvm.smin" : "llvm.umin";
        return intrin2(g, mnn, intrin2(g, mxn, a[0], a[1]), a[2]);
    }
    case BI_MIX:
        return LLVMBuildFAdd(b, a[0], LLVMBuildFMul(b, LLVMBuildFSub(b, a[1], a[0], ""), a[2], ""), "");
    case BI_SELECT: return LLVMBuildSelect(b, a[0], a[1], a[2], "");
    case BI_FLOATCONV:
    case BI_INTCONV:
    case BI_UINTCONV:
    case BI_HALFCONV:
    case BI_COUNT: break;
    }
    fe_die("llvm: unexpected builtin %d in call", in->param);
}

/* Flat element offset of a buffer access and, unless proved in range, the
 * condition that every index is below its extent (unsigned: a negative int
 * index is out of range). */
static LLVMValueRef access(Gen *g, const IrInst *in, int param, LLVMValueRef *ok)
{
    LLVMBuilderRef b = g->b;
    const IrParam *p = &g->k->params.v[param];
    LLVMValueRef off = NULL, cond = NULL;
    for (int d = 0; d < p->rank; d++) {
        LLVMValueRef ix = LLVMBuildZExt(b, g->vals[in->a.v[d]], g->i64, "");
        if (!(in->flags & IR_F_INBOUNDS)) {
            LLVMValueRef c = LLVMBuildICmp(b, LLVMIntULT, ix, g->dims[param][d], "");
            cond = cond ? LLVMBuildAnd(b, cond, c, "") : c;
        }
        off = off ? LLVMBuildAdd(b, LLVMBuildMul(b, off, g->dims[param][d], ""), ix, "") : ix;
    }
    *ok = cond;
    return off;
}

static LLVMValueRef emit_block(Gen *g, const IrBlock *blk, int *yield);

static void emit_inst(Gen *g, int id)
{
    const IrKernel *k = g->k;
    const IrInst *in = &k->insts.v[id];
    LLVMBuilderRef b = g->b;
    LLVMValueRef a[8] = {0};
    if (in->op != IR_IF && in->op != IR_FOR && in->op != IR_YIELD && in->op != IR_RESULT) {
        if (in->a.n > 8) fe_die("llvm: too many operands for %s", ir_op_names[in->op]);
        for (int i = 0; i < in->a.n; i++) {
            a[i] = g->vals[in->a.v[i]];
            if (!a[i]) fe_die("llvm: %%%d used before its definition in %s", in->a.v[i], k->name);
        }
    }
    ScalarType t = in->type;
    ScalarType ot = in->a.n ? k->insts.v[in->a.v[0]].type : TY_VOID; /* operand type */
    LLVMValueRef v = NULL;
    switch (in->op) {
    case IR_CONST:
        if (is_float(t)) v = LLVMConstReal(ty_of(g, t), in->imm.f);
        else v = LLVMConstInt(ty_of(g, t), (unsigned long long)in->imm.i, t == TY_INT);
        break;
    case IR_PARAM: v = g->scal[in->param]; break;
    case IR_SIZE: v = LLVMBuildTrunc(b, g->syms[in->param], g->i32, ""); break;
    case IR_BARG:
        if (!g->vals[id]) fe_die("llvm: block argument %%%d has no value", id);
        return;
    case IR_RESULT: {
        LLVMValueRef *r = g->multi[in->a.v[0]];
        if (!r) fe_die("llvm: result %%%d of an unemitted op", id);
        v = r[in->imm.i];
        break;
    }
    case IR_NEG: v = is_float(t) ? LLVMBuildFNeg(b, a[0], "") : LLVMBuildSub(b, c32(g, 0), a[0], ""); break;
    case IR_NOT: v = LLVMBuildNot(b, a[0], ""); break;
    case IR_BNOT: v = LLVMBuildNot(b, a[0], ""); break;
    case IR_ADD: v = is_float(t) ? LLVMBuildFAdd(b, a[0], a[1], "") : LLVMBuildAdd(b, a[0], a[1], ""); break;
    case IR_SUB: v = is_float(t) ? LLVMBuildFSub(b, a[0], a[1], "") : LLVMBuildSub(b, a[0], a[1], ""); break;
    case IR_MUL: v = is_float(t) ? LLVMBuildFMul(b, a[0], a[1], "") : LLVMBuildMul(b, a[0], a[1], ""); break;
    case IR_DIV:
    case IR_REM:
        if (is_float(t)) v = in->op == IR_DIV ? LLVMBuildFDiv(b, a[0], a[1], "") : LLVMBuildFRem(b, a[0], a[1], "");
        else v = int_divrem(g, in->op == IR_REM, t == TY_INT, a[0], a[1]);
        break;
    case IR_AND: v = LLVMBuildAnd(b, a[0], a[1], ""); break;
    case IR_OR: v = LLVMBuildOr(b, a[0], a[1], ""); break;
    case IR_XOR: v = LLVMBuildXor(b, a[0], a[1], ""); break;
    case IR_SHL:
    case IR_SHR: {
        LLVMValueRef n = LLVMBuildAnd(b, a[1], c32(g, 31), ""); /* count mod 32 */
        if (in->op == IR_SHL) v = LLVMBuildShl(b, a[0], n, "");
        else v = t == TY_INT ? LLVMBuildAShr(b, a[0], n, "") : LLVMBuildLShr(b, a[0], n, "");
        break;
    }
    case IR_EQ: case IR_NE: case IR_LT: case IR_LE: case IR_GT: case IR_GE: {
        int o = in->op - IR_EQ;
        if (is_float(ot)) {
            /* IEEE: every ordered compare is false on NaN, != is true */
            static const LLVMRealPredicate fp[] = {LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT,
                                                   LLVMRealOLE, LLVMRealOGT, LLVMRealOGE};
            v = LLVMBuildFCmp(b, fp[o], a[0], a[1], "");
        } else {
            static const LLVMIntPredicate sp[] = {LLVMIntEQ, LLVMIntNE, LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE};
            static const LLVMIntPredicate up[] = {LLVMIntEQ, LLVMIntNE, LLVMIntULT, LLVMIntULE, LLVMIntUGT, LLVMIntUGE};
            v = LLVMBuildICmp(b, ot == TY_INT ? sp[o] : up[o], a[0], a[1], "");
        }
        break;
    }
    case IR_SELECT: v = LLVMBuildSelect(b, a[0], a[1], a[2], ""); break;
    case IR_CONV: v = conv(g, a[0], ot, t); break;
    case IR_CALL: v = emit_builtin(g, in, a); break;
    case IR_LOAD:
    case IR_STORE: {
        const IrParam *p = &k->params.v[in->param];
        LLVMTypeRef et = ty_of(g, p->type);
        LLVMValueRef ok;
        LLVMValueRef off = access(g, in, in->param, &ok);
        LLVMBasicBlockRef pre = LLVMGetInsertBlock(b), doit = NULL, join = NULL;
        if (ok) {
            doit = new_bb(g, in->op == IR_LOAD ? "load" : "store");
            join = new_bb(g, "join");
            LLVMBuildCondBr(b, ok, doit, join);
            LLVMPositionBuilderAtEnd(b, doit);
        }
        LLVMValueRef ptr = LLVMBuildGEP2(b, et, g->bufp[in->param], &off, 1, "");
        if (in->op == IR_LOAD) v = LLVMBuildLoad2(b, et, ptr, "");
        else LLVMBuildStore(b, a[p->rank], ptr);
        if (ok) {
            LLVMBuildBr(b, join);
            LLVMPositionBuilderAtEnd(b, join);
            if (in->op == IR_LOAD) {
                /* out of range reads 0 */
                LLVMValueRef phi = LLVMBuildPhi(b, et, "");
                LLVMValueRef vs[2] = {v, LLVMConstNull(et)};
                LLVMBasicBlockRef bs[2] = {doit, pre};
                LLVMAddIncoming(phi, vs, bs, 2);
                v = phi;
            }
        }
        if (in->op == IR_STORE) return;
        break;
    }
    case IR_IF: {
        LLVMValueRef cond = g->vals[in->a.v[0]];
        LLVMBasicBlockRef tb = new_bb(g, "then"), eb = new_bb(g, "else"), mb = new_bb(g, "endif");
        LLVMBuildCondBr(b, cond, tb, eb);
        LLVMValueRef *tv = fe_alloc(g->arena, sizeof(LLVMValueRef) * (size_t)(in->nres + 1));
        LLVMValueRef *ev = fe_alloc(g->arena, sizeof(LLVMValueRef) * (size_t)(in->nres + 1));
        LLVMBasicBlockRef tend, eend;
        int y;
        LLVMPositionBuilderAtEnd(b, tb);
        emit_block(g, in->body, &y);
        for (int i = 0; i < in->nres; i++) tv[i] = g->vals[k->insts.v[y].a.v[i]];
        tend = LLVMGetInsertBlock(b);
        LLVMBuildBr(b, mb);
        LLVMPositionBuilderAtEnd(b, eb);
        if (in->els) emit_block(g, in->els, &y);
        else y = -1;
        for (int i = 0; i < in->nres; i++) ev[i] = g->vals[k->insts.v[y].a.v[i]];
        eend = LLVMGetInsertBlock(b);
        LLVMBuildBr(b, mb);
        LLVMPositionBuilderAtEnd(b, mb);
        LLVMValueRef *res = fe_alloc(g->arena, sizeof(LLVMValueRef) * (size_t)(in->nres + 1));
        for (int i = 0; i < in->nres; i++) {
            res[i] = LLVMBuildPhi(b, LLVMTypeOf(tv[i]), "");
            LLVMValueRef vs[2] = {tv[i], ev[i]};
            LLVMBasicBlockRef bs[2] = {tend, eend};
            LLVMAddIncoming(res[i], vs, bs, 2);
        }
        g->multi[id] = res;
        return;
    }
    case IR_FOR: {
        LLVMValueRef lo = g->vals[in->a.v[0]], hi = g->vals[in->a.v[1]];
        int sgn = k->insts.v[in->a.v[0]].type == TY_INT;
        int nc = in->a.n - 2;
        LLVMBasicBlockRef pre = LLVMGetInsertBlock(b);
        LLVMBasicBlockRef head = new_bb(g, "for"), body = new_bb(g, "forbody"), exit = new_bb(g, "endfor");
        LLVMBuildBr(b, head);
        LLVMPositionBuilderAtEnd(b, head);
        LLVMValueRef iv = LLVMBuildPhi(b, LLVMTypeOf(lo), "iv");
        LLVMAddIncoming(iv, &lo, &pre, 1);
        LLVMValueRef *car = fe_alloc(g->arena, sizeof(LLVMValueRef) * (size_t)(nc + 1));
        for (int i = 0; i < nc; i++) {
            LLVMValueRef init = g->vals[in->a.v[2 + i]];
            car[i] = LLVMBuildPhi(b, LLVMTypeOf(init), "");
            LLVMAddIncoming(car[i], &init, &pre, 1);
        }
        LLVMBuildCondBr(b, LLVMBuildICmp(b, sgn ? LLVMIntSLT : LLVMIntULT, iv, hi, ""), body, exit);
        LLVMPositionBuilderAtEnd(b, body);
        g->vals[in->body->args.v[0]] = iv;
        for (int i = 0; i < nc; i++) g->vals[in->body->args.v[1 + i]] = car[i];
        int y;
        emit_block(g, in->body, &y);
        /* iv < hi, so iv + 1 <= hi never wraps */
        LLVMValueRef next = sgn ? LLVMBuildNSWAdd(b, iv, c32(g, 1), "") : LLVMBuildNUWAdd(b, iv, c32(g, 1), "");
        LLVMBasicBlockRef latch = LLVMGetInsertBlock(b);
        for (int i = 0; i < nc; i++) {
            LLVMValueRef nv = g->vals[k->insts.v[y].a.v[i]];
            LLVMAddIncoming(car[i], &nv, &latch, 1);
        }
        /* the back-edge polls CgCpuArgs.cancel (a volatile load: it is set
         * by another thread), so no user loop outlives px_launch_cancel */
        if (!g->cancelled) {
            g->cancelled = new_bb(g, "cancelled");
            LLVMPositionBuilderAtEnd(b, g->cancelled);
            LLVMBuildRetVoid(b);
            LLVMPositionBuilderAtEnd(b, latch);
        }
        LLVMValueRef flag = LLVMBuildLoad2(b, g->i32, g->cancelp, "");
        LLVMSetVolatile(flag, 1);
        LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntNE, flag, c32(g, 0), ""), g->cancelled, head);
        LLVMAddIncoming(iv, &next, &latch, 1);
        LLVMPositionBuilderAtEnd(b, exit);
        g->multi[id] = car;
        return;
    }
    case IR_YIELD: return;
    case IR_OP_COUNT: fe_unreachable();
    }
    if (!v) fe_die("llvm: no value for %s", ir_op_names[in->op]);
    g->vals[id] = v;
}

/* Emits a block's instructions; *yield gets its IR_YIELD id (the values
 * the parent needs), -1 when it has none. */
static LLVMValueRef emit_block(Gen *g, const IrBlock *blk, int *yield)
{
    *yield = -1;
    for (int i = 0; i < blk->ins.n; i++) {
        int id = blk->ins.v[i];
        if (g->k->insts.v[id].op == IR_YIELD) *yield = id;
        emit_inst(g, id);
    }
    return NULL;
}

/* ---------------------------------------------------------------- stages */

typedef struct StageOut {
    CgCpuStage *st;
    Arena *a;
    const char *prefix;
} StageOut;

static void add_step(Gen *g, StageOut *o, const char *suffix, IrSize *count, int64_t grain)
{
    CgCpuStep s;
    memset(&s, 0, sizeof s);
    s.name = fe_sprintf(o->a, "%s_%s", o->prefix, suffix);
    s.count = count;
    s.grain = grain;
    FE_PUSH(o->a, o->st->steps, s);
    fn_begin(g, s.name);
}

static void emit_grid(Gen *g, const IrStage *st, StageOut *o)
{
    Arena *A = o->a;
    IrSize *count = ir_size_const(A, 1);
    for (int d = 0; d < st->rank; d++)
        count = ir_size_bin(A, SZ_MUL, count,
                            ir_size_bin(A, SZ_MAX, ir_size_bin(A, SZ_SUB, st->hi[d], st->lo[d]), ir_size_const(A, 0)));
    add_step(g, o, "grid", count, 4096);
    LLVMBuilderRef b = g->b;
    int r = st->rank;
    LLVMValueRef lo[3], n[3];
    for (int d = 0; d < r; d++) {
        lo[d] = emit_size(g, st->lo[d]);
        n[d] = smax64(g, LLVMBuildSub(b, emit_size(g, st->hi[d]), lo[d], ""), c64(g, 0));
    }
    GLoop L;
    if (r == 1) {
        LLVMValueRef t = loop_open(g, &L, g->begin, g->end);
        g->vals[st->body->args.v[0]] = LLVMBuildTrunc(b, LLVMBuildAdd(b, lo[0], t, ""), g->i32, "");
        int y;
        emit_block(g, st->body, &y);
        loop_close(g, &L);
        fn_end(g);
        return;
    }
    /* rows of the innermost dimension: the inner loop is a plain counted
     * loop the vectoriser takes */
    LLVMValueRef inner = n[r - 1];
    LLVMBasicBlockRef go = new_bb(g, "go"), out = new_bb(g, "out");
    LLVMValueRef empty = LLVMBuildOr(b, LLVMBuildICmp(b, LLVMIntSLE, inner, c64(g, 0), ""),
                                     LLVMBuildICmp(b, LLVMIntSGE, g->begin, g->end, ""), "");
    LLVMBuildCondBr(b, empty, out, go);
    LLVMPositionBuilderAtEnd(b, go);
    LLVMValueRef olo = LLVMBuildSDiv(b, g->begin, inner, "");
    LLVMValueRef ohi = LLVMBuildAdd(b, LLVMBuildSDiv(b, LLVMBuildSub(b, g->end, c64(g, 1), ""), inner, ""), c64(g, 1), "");
    GLoop R;
    LLVMValueRef o_ = loop_open(g, &R, olo, ohi);
    LLVMValueRef rest = o_;
    for (int d = r - 2; d >= 0; d--) {
        LLVMValueRef nd = smax64(g, n[d], c64(g, 1)); /* count > 0 means every n > 0 */
        LLVMValueRef t = d ? LLVMBuildSRem(b, rest, nd, "") : rest;
        if (d) rest = LLVMBuildSDiv(b, rest, nd, "");
        g->vals[st->body->args.v[d]] = LLVMBuildTrunc(b, LLVMBuildAdd(b, lo[d], t, ""), g->i32, "");
    }
    LLVMValueRef base = LLVMBuildMul(b, o_, inner, "");
    LLVMValueRef jlo = smax64(g, LLVMBuildSub(b, g->begin, base, ""), c64(g, 0));
    LLVMValueRef jhi = smin64(g, LLVMBuildSub(b, g->end, base, ""), inner);
    LLVMValueRef j = loop_open(g, &L, jlo, jhi);
    g->vals[st->body->args.v[r - 1]] = LLVMBuildTrunc(b, LLVMBuildAdd(b, lo[r - 1], j, ""), g->i32, "");
    int y;
    emit_block(g, st->body, &y);
    loop_close(g, &L);
    loop_close(g, &R);
    LLVMBuildBr(b, out);
    LLVMPositionBuilderAtEnd(b, out);
    fn_end(g);
}

/* ---- library stages ---- */

/* Accumulation type of element type t: half accumulates in float. */
static ScalarType acc_type(ScalarType t) { return t == TY_HALF ? TY_FLOAT : t; }

static LLVMValueRef red_identity(Gen *g, FeReduceOp op, ScalarType t)
{
    if (is_float(t)) {
        double v = op == RED_SUM ? 0.0 : op == RED_PROD ? 1.0 : op == RED_MIN ? 1.0 / 0.0 : -1.0 / 0.0;
        return LLVMConstReal(ty_of(g, t), v);
    }
    int64_t v;
    switch (op) {
    case RED_SUM: v = 0; break;
    case RED_PROD: v = 1; break;
    case RED_MIN: v = t == TY_INT ? INT32_MAX : -1; break; /* -1: UINT_MAX */
    case RED_MAX: v = t == TY_INT ? INT32_MIN : 0; break;
    default: fe_unreachable();
    }
    return c32(g, v);
}

/* x op y on scalars or vectors of the accumulation type. */
static LLVMValueRef red_op(Gen *g, FeReduceOp op, ScalarType t, LLVMValueRef x, LLVMValueRef y)
{
    int fl = is_float(t);
    switch (op) {
    case RED_SUM: return fl ? LLVMBuildFAdd(g->b, x, y, "") : LLVMBuildAdd(g->b, x, y, "");
    case RED_PROD: return fl ? LLVMBuildFMul(g->b, x, y, "") : LLVMBuildMul(g->b, x, y, "");
    case RED_MIN: return intrin2(g, fl ? "llvm.minnum" : t == TY_INT ? "llvm.smin" : "llvm.umin", x, y);
    case RED_MAX: return intrin2(g, fl ? "llvm.maxnum" : t == TY_INT ? "llvm.smax" : "llvm.umax", x, y);
    }
    fe_unreachable();
}

static LLVMValueRef elem_ptr(Gen *g, ScalarType et, LLVMValueRef base, LLVMValueRef off)
{
    return LLVMBuildGEP2(g->b, ty_of(g, et), base, &off, 1, "");
}

/* Loads element off of base (element type et) as the accumulation type. */
static LLVMValueRef load_acc(Gen *g, ScalarType et, LLVMValueRef base, LLVMValueRef off)
{
    LLVMValueRef v = LLVMBuildLoad2(g->b, ty_of(g, et), elem_ptr(g, et, base, off), "");
    return et == TY_HALF ? LLVMBuildFPExt(g->b, v, g->f32, "") : v;
}

static void store_from_acc(Gen *g, ScalarType et, LLVMValueRef base, LLVMValueRef off, LLVMValueRef v)
{
    if (et == TY_HALF) v = LLVMBuildFPTrunc(g->b, v, g->f16, "");
    LLVMBuildStore(g->b, v, elem_ptr(g, et, base, off));
}

/* op over base[lo .. lo+n) in the accumulation type: CG_RED_LANES-wide
 * vector partials combined by a fixed halving tree, then a scalar tail. */
static LLVMValueRef reduce_range(Gen *g, FeReduceOp op, ScalarType et, LLVMValueRef base, LLVMValueRef lo,
                                 LLVMValueRef n)
{
    LLVMBuilderRef b = g->b;
    ScalarType at = acc_type(et);
    LLVMTypeRef A = ty_of(g, at), E = ty_of(g, et);
    int W = CG_RED_LANES;
    LLVMTypeRef VA = LLVMVectorType(A, (unsigned)W), VE = LLVMVectorType(E, (unsigned)W);
    LLVMValueRef id = red_identity(g, op, at);
    LLVMValueRef ids[CG_RED_LANES];
    for (int i = 0; i < W; i++) ids[i] = id;
    LLVMValueRef vacc = local(g, VA, LLVMConstVector(ids, (unsigned)W));
    LLVMValueRef nv = LLVMBuildSDiv(b, n, c64(g, W), "");
    GLoop L;
    LLVMValueRef v = loop_open(g, &L, c64(g, 0), nv);
    LLVMValueRef off = LLVMBuildAdd(b, lo, LLVMBuildMul(b, v, c64(g, W), ""), "");
    LLVMValueRef x = LLVMBuildLoad2(b, VE, elem_ptr(g, et, base, off), "");
    LLVMSetAlignment(x, et == TY_HALF ? 2 : 4);
    if (et == TY_HALF) x = LLVMBuildFPExt(b, x, VA, "");
    LLVMBuildStore(b, red_op(g, op, at, LLVMBuildLoad2(b, VA, vacc, ""), x), vacc);
    loop_close(g, &L);
    LLVMValueRef acc = LLVMBuildLoad2(b, VA, vacc, "");
    for (int w = W / 2; w >= 1; w /= 2) {
        LLVMValueRef m1[CG_RED_LANES], m2[CG_RED_LANES];
        for (int i = 0; i < w; i++) {
            m1[i] = c32(g, i);
            m2[i] = c32(g, i + w);
        }
        LLVMValueRef l = LLVMBuildShuffleVector(b, acc, LLVMGetUndef(LLVMTypeOf(acc)), LLVMConstVector(m1, (unsigned)w), "");
        LLVMValueRef h = LLVMBuildShuffleVector(b, acc, LLVMGetUndef(LLVMTypeOf(acc)), LLVMConstVector(m2, (unsigned)w), "");
        acc = red_op(g, op, at, l, h);
    }
    LLVMValueRef sacc = local(g, A, LLVMBuildExtractElement(b, acc, c32(g, 0), ""));
    LLVMValueRef t = loop_open(g, &L, LLVMBuildMul(b, nv, c64(g, W), ""), n);
    LLVMBuildStore(b, red_op(g, op, at, LLVMBuildLoad2(b, A, sacc, ""), load_acc(g, et, base, LLVMBuildAdd(b, lo, t, ""))), sacc);
    loop_close(g, &L);
    return LLVMBuildLoad2(b, A, sacc, "");
}

/* Rows and row length of a last-axis primitive on param p. */
static void rows_of(Gen *g, Arena *A, int p, IrSize **rows, IrSize **len)
{
    const IrParam *pp = &g->k->params.v[p];
    *rows = ir_size_const(A, 1);
    for (int d = 0; d + 1 < pp->rank; d++) *rows = ir_size_bin(A, SZ_MUL, *rows, pp->dims[d]);
    *len = pp->dims[pp->rank - 1];
}

static void emit_reduce_scan(Gen *g, const IrStage *st, StageOut *o)
{
    Arena *A = o->a;
    LLVMBuilderRef b = g->b;
    const IrParam *in = &g->k->params.v[st->in[0]];
    ScalarType et = in->type, at = acc_type(et);
    LLVMTypeRef AT = ty_of(g, at);
    int scan = st->kind == IR_STAGE_SCAN;
    FeReduceOp op = scan ? RED_SUM : st->rop;
    IrSize *rows, *len;
    rows_of(g, A, st->in[0], &rows, &len);
    GLoop L, M;
    if (in->rank > 1) {
        /* one row per item, sequential within the row */
        add_step(g, o, scan ? "scan_rows" : "reduce_rows", rows, 1);
        LLVMValueRef n = emit_size(g, len);
        LLVMValueRef src = g->bufp[st->in[0]], dst = g->bufp[st->out];
        LLVMValueRef r = loop_open(g, &L, g->begin, g->end);
        LLVMValueRef lo = LLVMBuildMul(b, r, n, "");
        if (!scan) {
            store_from_acc(g, et, dst, r, reduce_range(g, op, et, src, lo, n));
        } else {
            LLVMValueRef acc = local(g, AT, red_identity(g, RED_SUM, at));
            LLVMValueRef i = loop_open(g, &M, c64(g, 0), n);
            LLVMValueRef off = LLVMBuildAdd(b, lo, i, "");
            LLVMValueRef s = red_op(g, RED_SUM, at, LLVMBuildLoad2(b, AT, acc, ""), load_acc(g, et, src, off));
            LLVMBuildStore(b, s, acc);
            store_from_acc(g, et, dst, off, s);
            loop_close(g, &M);
        }
        loop_close(g, &L);
        fn_end(g);
        return;
    }
    /* rank 1: fixed chunks -> partials in scratch (one 8-byte slot each,
     * holding the accumulation type) -> combined in chunk order. Float sums
     * keep the partials and their running total in double: the error of a
     * long sum then grows with the chunk length, not the whole length. */
    int dbl = at == TY_FLOAT && op == RED_SUM;
    LLVMTypeRef ST = dbl ? g->f64 : AT; /* slot type */
    IrSize *nch = ir_size_bin(A, SZ_CEILDIV, len, ir_size_const(A, CG_CPU_CHUNK));
    o->st->scratch = ir_size_bin(A, SZ_MUL, nch, ir_size_const(A, 8));
    add_step(g, o, "partial", nch, 1);
    {
        LLVMValueRef n = emit_size(g, len), sc = scratch_ptr(g), src = g->bufp[st->in[0]];
        LLVMValueRef c = loop_open(g, &L, g->begin, g->end);
        LLVMValueRef lo = LLVMBuildMul(b, c, c64(g, CG_CPU_CHUNK), "");
        LLVMValueRef cnt = LLVMBuildSub(b, smin64(g, LLVMBuildAdd(b, lo, c64(g, CG_CPU_CHUNK), ""), n), lo, "");
        LLVMValueRef p = reduce_range(g, op, et, src, lo, cnt);
        if (dbl) p = LLVMBuildFPExt(b, p, g->f64, "");
        LLVMBuildStore(b, p, LLVMBuildGEP2(b, g->i64, sc, &c, 1, ""));
        loop_close(g, &L);
        fn_end(g);
    }
    add_step(g, o, "combine", ir_size_const(A, 1), 1);
    {
        LLVMValueRef nc = emit_size(g, nch), sc = scratch_ptr(g);
        LLVMValueRef acc = local(g, ST, dbl ? LLVMConstReal(g->f64, 0) : red_identity(g, op, at));
        LLVMBasicBlockRef go = new_bb(g, "go"), out = new_bb(g, "out");
        LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, g->begin, g->end, ""), go, out);
        LLVMPositionBuilderAtEnd(b, go);
        LLVMValueRef c = loop_open(g, &L, c64(g, 0), nc);
        LLVMValueRef slot = LLVMBuildGEP2(b, g->i64, sc, &c, 1, "");
        LLVMValueRef prev = LLVMBuildLoad2(b, ST, acc, "");
        if (!scan) {
            LLVMBuildStore(b, red_op(g, op, at, prev, LLVMBuildLoad2(b, ST, slot, "")), acc);
        } else {
            /* exclusive prefix of the chunk sums, in place */
            LLVMValueRef mine = LLVMBuildLoad2(b, ST, slot, "");
            LLVMBuildStore(b, prev, slot);
            LLVMBuildStore(b, red_op(g, RED_SUM, at, prev, mine), acc);
        }
        loop_close(g, &L);
        if (!scan) {
            LLVMValueRef r = LLVMBuildLoad2(b, ST, acc, "");
            if (dbl) r = LLVMBuildFPTrunc(b, r, g->f32, "");
            store_from_acc(g, et, g->bufp[st->out], c64(g, 0), r);
        }
        LLVMBuildBr(b, out);
        LLVMPositionBuilderAtEnd(b, out);
        fn_end(g);
    }
    if (!scan) return;
    add_step(g, o, "propagate", nch, 1);
    {
        LLVMValueRef n = emit_size(g, len), sc = scratch_ptr(g);
        LLVMValueRef src = g->bufp[st->in[0]], dst = g->bufp[st->out];
        LLVMValueRef c = loop_open(g, &L, g->begin, g->end);
        LLVMValueRef lo = LLVMBuildMul(b, c, c64(g, CG_CPU_CHUNK), "");
        LLVMValueRef hi = smin64(g, LLVMBuildAdd(b, lo, c64(g, CG_CPU_CHUNK), ""), n);
        LLVMValueRef base = LLVMBuildLoad2(b, ST, LLVMBuildGEP2(b, g->i64, sc, &c, 1, ""), "");
        if (dbl) base = LLVMBuildFPTrunc(b, base, g->f32, "");
        LLVMValueRef acc = local(g, AT, base);
        LLVMValueRef i = loop_open(g, &M, lo, hi);
        LLVMValueRef s = red_op(g, RED_SUM, at, LLVMBuildLoad2(b, AT, acc, ""), load_acc(g, et, src, i));
        LLVMBuildStore(b, s, acc);
        store_from_acc(g, et, dst, i, s);
        loop_close(g, &M);
        loop_close(g, &L);
        fn_end(g);
    }
}

static void emit_softmax(Gen *g, const IrStage *st, StageOut *o)
{
    LLVMBuilderRef b = g->b;
    ScalarType et = g->k->params.v[st->in[0]].type;
    LLVMTypeRef F = g->f32;
    IrSize *rows, *len;
    rows_of(g, o->a, st->in[0], &rows, &len);
    add_step(g, o, "softmax", rows, 1);
    LLVMValueRef n = emit_size(g, len);
    LLVMValueRef src = g->bufp[st->in[0]], dst = g->bufp[st->out];
    GLoop L, M;
    LLVMValueRef r = loop_open(g, &L, g->begin, g->end);
    LLVMValueRef lo = LLVMBuildMul(b, r, n, "");
    LLVMValueRef mx = reduce_range(g, RED_MAX, et, src, lo, n);
    /* exp(x - max) into the output, summed; then scaled by 1/sum */
    LLVMValueRef sum = local(g, F, LLVMConstReal(F, 0));
    LLVMValueRef i = loop_open(g, &M, lo, LLVMBuildAdd(b, lo, n, ""));
    LLVMValueRef e = intrin1(g, "llvm.exp", LLVMBuildFSub(b, load_acc(g, et, src, i), mx, ""));
    store_from_acc(g, et, dst, i, e);
    LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, F, sum, ""), e, ""), sum);
    loop_close(g, &M);
    LLVMValueRef s = LLVMBuildLoad2(b, F, sum, "");
    i = loop_open(g, &M, lo, LLVMBuildAdd(b, lo, n, ""));
    LLVMValueRef x;
    if (et == TY_HALF) {
        /* the stored half was rounded: recompute for the division */
        x = intrin1(g, "llvm.exp", LLVMBuildFSub(b, load_acc(g, et, src, i), mx, ""));
    } else {
        x = load_acc(g, et, dst, i);
    }
    store_from_acc(g, et, dst, i, LLVMBuildFDiv(b, x, s, ""));
    loop_close(g, &M);
    loop_close(g, &L);
    fn_end(g);
}

static void emit_matmul(Gen *g, const IrStage *st, StageOut *o)
{
    LLVMBuilderRef b = g->b;
    const IrParam *pa = &g->k->params.v[st->in[0]], *pb = &g->k->params.v[st->in[1]];
    ScalarType et = pa->type;
    add_step(g, o, "matmul", pa->dims[0], 4);
    LLVMValueRef K = g->dims[st->in[0]][1], N = g->dims[st->in[1]][1];
    LLVMValueRef Ap = g->bufp[st->in[0]], Bp = g->bufp[st->in[1]], Cp = g->bufp[st->out];
    (void)pb;
    GLoop Li, Lj, Lk, Ljb, Lkb;
    if (et == TY_HALF) {
        /* correct first: one float accumulator per element */
        LLVMValueRef i = loop_open(g, &Li, g->begin, g->end);
        LLVMValueRef j = loop_open(g, &Lj, c64(g, 0), N);
        LLVMValueRef acc = local(g, g->f32, LLVMConstReal(g->f32, 0));
        LLVMValueRef kk = loop_open(g, &Lk, c64(g, 0), K);
        LLVMValueRef av = load_acc(g, et, Ap, LLVMBuildAdd(b, LLVMBuildMul(b, i, K, ""), kk, ""));
        LLVMValueRef bv = load_acc(g, et, Bp, LLVMBuildAdd(b, LLVMBuildMul(b, kk, N, ""), j, ""));
        LLVMValueRef fa[3] = {av, bv, LLVMBuildLoad2(b, g->f32, acc, "")};
        LLVMTypeRef ft = g->f32;
        LLVMBuildStore(b, intrin(g, "llvm.fmuladd", &ft, 1, fa, 3), acc);
        loop_close(g, &Lk);
        store_from_acc(g, et, Cp, LLVMBuildAdd(b, LLVMBuildMul(b, i, N, ""), j, ""), LLVMBuildLoad2(b, g->f32, acc, ""));
        loop_close(g, &Lj);
        loop_close(g, &Li);
        fn_end(g);
        return;
    }
    /* C rows [begin,end) = 0, then for each NB-column block and KB-deep
     * panel of B: C[i][j] += A[i][k] * B[k][j] with j innermost (the
     * vectorised loop). Sums are over k in order for every element, so the
     * result does not depend on the slicing. */
    LLVMValueRef zero = LLVMConstReal(g->f32, 0);
    LLVMValueRef i = loop_open(g, &Li, g->begin, g->end);
    LLVMValueRef j = loop_open(g, &Lj, c64(g, 0), N);
    LLVMBuildStore(b, zero, elem_ptr(g, et, Cp, LLVMBuildAdd(b, LLVMBuildMul(b, i, N, ""), j, "")));
    loop_close(g, &Lj);
    loop_close(g, &Li);
    /* jb loop stepping by NB: iterate block index */
    LLVMValueRef njb = size_div(g, SZ_CEILDIV, N, c64(g, CG_MM_NB));
    LLVMValueRef nkb = size_div(g, SZ_CEILDIV, K, c64(g, CG_MM_KB));
    LLVMValueRef jb = loop_open(g, &Ljb, c64(g, 0), njb);
    LLVMValueRef j0 = LLVMBuildMul(b, jb, c64(g, CG_MM_NB), "");
    LLVMValueRef j1 = smin64(g, LLVMBuildAdd(b, j0, c64(g, CG_MM_NB), ""), N);
    LLVMValueRef kb = loop_open(g, &Lkb, c64(g, 0), nkb);
    LLVMValueRef k0 = LLVMBuildMul(b, kb, c64(g, CG_MM_KB), "");
    LLVMValueRef k1 = smin64(g, LLVMBuildAdd(b, k0, c64(g, CG_MM_KB), ""), K);
    i = loop_open(g, &Li, g->begin, g->end);
    LLVMValueRef crow = elem_ptr(g, et, Cp, LLVMBuildMul(b, i, N, ""));
    LLVMValueRef kk = loop_open(g, &Lk, k0, k1);
    LLVMValueRef av = LLVMBuildLoad2(b, g->f32, elem_ptr(g, et, Ap, LLVMBuildAdd(b, LLVMBuildMul(b, i, K, ""), kk, "")), "");
    LLVMValueRef brow = elem_ptr(g, et, Bp, LLVMBuildMul(b, kk, N, ""));
    j = loop_open(g, &Lj, j0, j1);
    LLVMValueRef cp = elem_ptr(g, et, crow, j);
    LLVMValueRef fa[3] = {av, LLVMBuildLoad2(b, g->f32, elem_ptr(g, et, brow, j), ""), LLVMBuildLoad2(b, g->f32, cp, "")};
    LLVMTypeRef ft = g->f32;
    LLVMBuildStore(b, intrin(g, "llvm.fmuladd", &ft, 1, fa, 3), cp);
    loop_close(g, &Lj);
    loop_close(g, &Lk);
    loop_close(g, &Li);
    loop_close(g, &Lkb);
    loop_close(g, &Ljb);
    fn_end(g);
}

static void emit_transpose(Gen *g, const IrStage *st, StageOut *o)
{
    LLVMBuilderRef b = g->b;
    const IrParam *pa = &g->k->params.v[st->in[0]];
    ScalarType et = pa->type;
    add_step(g, o, "transpose", ir_size_bin(o->a, SZ_CEILDIV, pa->dims[0], ir_size_const(o->a, CG_CPU_TILE)), 1);
    LLVMValueRef R = g->dims[st->in[0]][0], C = g->dims[st->in[0]][1];
    LLVMValueRef src = g->bufp[st->in[0]], dst = g->bufp[st->out];
    LLVMTypeRef E = ty_of(g, et);
    LLVMValueRef ncb = size_div(g, SZ_CEILDIV, C, c64(g, CG_CPU_TILE));
    GLoop Lt, Lc, Li, Lj;
    LLVMValueRef t = loop_open(g, &Lt, g->begin, g->end);
    LLVMValueRef i0 = LLVMBuildMul(b, t, c64(g, CG_CPU_TILE), "");
    LLVMValueRef i1 = smin64(g, LLVMBuildAdd(b, i0, c64(g, CG_CPU_TILE), ""), R);
    LLVMValueRef cb = loop_open(g, &Lc, c64(g, 0), ncb);
    LLVMValueRef j0 = LLVMBuildMul(b, cb, c64(g, CG_CPU_TILE), "");
    LLVMValueRef j1 = smin64(g, LLVMBuildAdd(b, j0, c64(g, CG_CPU_TILE), ""), C);
    LLVMValueRef i = loop_open(g, &Li, i0, i1);
    LLVMValueRef j = loop_open(g, &Lj, j0, j1);
    LLVMValueRef v = LLVMBuildLoad2(b, E, elem_ptr(g, et, src, LLVMBuildAdd(b, LLVMBuildMul(b, i, C, ""), j, "")), "");
    LLVMBuildStore(b, v, elem_ptr(g, et, dst, LLVMBuildAdd(b, LLVMBuildMul(b, j, R, ""), i, "")));
    loop_close(g, &Lj);
    loop_close(g, &Li);
    loop_close(g, &Lc);
    loop_close(g, &Lt);
    fn_end(g);
}

/* --------------------------------------------------------------- module */

static pthread_once_t llvm_once = PTHREAD_ONCE_INIT;
static void llvm_init(void)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
}

static char *dup_msg(const char *what, const char *msg)
{
    size_t n = strlen(what) + strlen(msg) + 3;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s: %s", what, msg);
    return s;
}

static char *take_error(const char *what, LLVMErrorRef e)
{
    char *m = LLVMGetErrorMessage(e);
    char *s = dup_msg(what, m);
    LLVMDisposeErrorMessage(m);
    return s;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The host: what every generated function is tuned for. Asking LLVM for
 * the CPU name and features and making a TargetMachine costs milliseconds,
 * so a JIT does it once for all its modules. */
typedef struct HostTarget {
    char *triple, *cpu, *features; /* LLVM messages */
    LLVMTargetMachineRef tm;       /* the pass pipeline's cost model */
} HostTarget;

static void host_target_free(HostTarget *h)
{
    if (h->tm) LLVMDisposeTargetMachine(h->tm);
    if (h->triple) LLVMDisposeMessage(h->triple);
    if (h->cpu) LLVMDisposeMessage(h->cpu);
    if (h->features) LLVMDisposeMessage(h->features);
    memset(h, 0, sizeof *h);
}

static int host_target(HostTarget *h, char **err)
{
    pthread_once(&llvm_once, llvm_init);
    memset(h, 0, sizeof *h);
    h->triple = LLVMGetDefaultTargetTriple();
    LLVMTargetRef t;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(h->triple, &t, &msg)) {
        *err = dup_msg("llvm target", msg ? msg : "?");
        LLVMDisposeMessage(msg);
        host_target_free(h);
        return 0;
    }
    h->cpu = LLVMGetHostCPUName();
    h->features = LLVMGetHostCPUFeatures();
    h->tm = LLVMCreateTargetMachine(t, h->triple, h->cpu, h->features, LLVMCodeGenLevelAggressive,
                                    LLVMRelocDefault, LLVMCodeModelJITDefault);
    if (!h->tm) {
        *err = dup_msg("llvm target", "cannot create a target machine for the host");
        host_target_free(h);
        return 0;
    }
    return 1;
}

static LLVMModuleRef new_module(LLVMContextRef cx, const HostTarget *h, const char *name)
{
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext(name, cx);
    LLVMSetTarget(mod, h->triple);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(h->tm);
    LLVMSetModuleDataLayout(mod, dl);
    LLVMDisposeTargetData(dl);
    return mod;
}

/* Ready to emit functions into mod; g->b must be disposed after. */
static void gen_init(Gen *g, LLVMContextRef cx, LLVMModuleRef mod, const HostTarget *h, Arena *A)
{
    memset(g, 0, sizeof *g);
    g->cx = cx;
    g->mod = mod;
    g->b = LLVMCreateBuilderInContext(cx);
    g->arena = A;
    g->cpu = h->cpu;
    g->features = h->features;
    g->i1 = LLVMInt1TypeInContext(cx);
    g->i32 = LLVMInt32TypeInContext(cx);
    g->i64 = LLVMInt64TypeInContext(cx);
    g->f16 = LLVMHalfTypeInContext(cx);
    g->f32 = LLVMFloatTypeInContext(cx);
    g->f64 = LLVMDoubleTypeInContext(cx);
    g->ptr = LLVMPointerTypeInContext(cx, 0);
    g->vt = LLVMVoidTypeInContext(cx);
    LLVMTypeRef ps[3] = {g->ptr, g->i64, g->i64};
    g->fnty = LLVMFunctionType(g->vt, ps, 3, 0);
}

/* Emits every stage of kernel ki of m into g->mod, its step symbols named
 * <prefix>__s<stage>_<step>; fills ck (steps without code yet). */
static void gen_kernel(Gen *g, const IrModule *m, int ki, const char *prefix, CgCpuKernel *ck)
{
    Arena *A = g->arena;
    const IrKernel *k = m->kernels.v[ki];
    g->k = k;
    g->vals = fe_alloc(A, sizeof(LLVMValueRef) * (size_t)(k->insts.n + 1));
    g->multi = fe_alloc(A, sizeof(LLVMValueRef *) * (size_t)(k->insts.n + 1));
    g->bufp = fe_alloc(A, sizeof(LLVMValueRef) * (size_t)(k->params.n + 1));
    g->scal = fe_alloc(A, sizeof(LLVMValueRef) * (size_t)(k->params.n + 1));
    g->syms = fe_alloc(A, sizeof(LLVMValueRef) * (size_t)(k->syms.n + 1));
    g->dims = fe_alloc(A, sizeof *g->dims * (size_t)(k->params.n + 1));
    memset(ck, 0, sizeof *ck);
    ck->ir = k;
    for (int si = 0; si < k->stages.n; si++) {
        const IrStage *st = &k->stages.v[si];
        CgCpuStage cs;
        memset(&cs, 0, sizeof cs);
        cs.scratch = ir_size_const(A, 0);
        StageOut o = {&cs, A, fe_sprintf(A, "%s__s%d", prefix, si)};
        /* values are per function: forget the previous stage's */
        memset(g->vals, 0, sizeof(LLVMValueRef) * (size_t)k->insts.n);
        memset(g->multi, 0, sizeof(LLVMValueRef *) * (size_t)k->insts.n);
        switch (st->kind) {
        case IR_STAGE_GRID: emit_grid(g, st, &o); break;
        case IR_STAGE_MATMUL: emit_matmul(g, st, &o); break;
        case IR_STAGE_REDUCE:
        case IR_STAGE_SCAN: emit_reduce_scan(g, st, &o); break;
        case IR_STAGE_SOFTMAX: emit_softmax(g, st, &o); break;
        case IR_STAGE_TRANSPOSE: emit_transpose(g, st, &o); break;
        }
        FE_PUSH(A, ck->stages, cs);
    }
}

/* Generation of one kernel into g's module, then LLVM's verifier on it (a
 * failure is a backend bug), under fe_protect: the caller owns LLVM
 * objects that an unwinding fe_die would lose, so it disposes of them and
 * rethrows. Returns the failure kind (FE_FAIL_NONE: done). */
typedef struct GenJob {
    Gen *g;
    const IrModule *m;
    int ki;
    const char *prefix;
    CgCpuKernel *ck;
} GenJob;

static void gen_job(void *ud)
{
    GenJob *j = ud;
    gen_kernel(j->g, j->m, j->ki, j->prefix, j->ck);
    char *vmsg = NULL;
    if (LLVMVerifyModule(j->g->mod, LLVMReturnStatusAction, &vmsg)) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", vmsg ? vmsg : "?");
        LLVMDisposeMessage(vmsg);
        fe_die("llvm: generated module does not verify: %s", msg);
    }
    LLVMDisposeMessage(vmsg);
}

static FeFailKind gen_protected(Gen *g, const IrModule *m, int ki, const char *prefix, CgCpuKernel *ck,
                                FeFail *f)
{
    GenJob j = {g, m, ki, prefix, ck};
    return fe_protect(gen_job, &j, f);
}

/* Runs default<On> on a verified module. NULL, or a malloc'd message. */
static char *optimise(LLVMModuleRef mod, const HostTarget *h, int opt_level)
{
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(po, opt_level >= 2);
    LLVMPassBuilderOptionsSetSLPVectorization(po, opt_level >= 2);
    LLVMPassBuilderOptionsSetLoopUnrolling(po, opt_level >= 2);
    static const char *const pipes[] = {"default<O0>", "default<O1>", "default<O2>", "default<O3>"};
    LLVMErrorRef e = LLVMRunPasses(mod, pipes[opt_level < 0 ? 0 : opt_level > 3 ? 3 : opt_level], h->tm, po);
    LLVMDisposePassBuilderOptions(po);
    return e ? take_error("llvm passes", e) : NULL;
}

static char *llvm_emit(Arena *a, const IrModule *m, int opt_level, char **err)
{
    *err = NULL;
    HostTarget h;
    if (!host_target(&h, err)) return NULL;
    LLVMContextRef cx = LLVMContextCreate();
    Arena *A = fe_arena_new();
    LLVMModuleRef mod = new_module(cx, &h, m->file ? m->file : "px");
    Gen g;
    gen_init(&g, cx, mod, &h, A);
    FeFail f;
    FeFailKind fk = FE_FAIL_NONE;
    for (int ki = 0; ki < m->kernels.n && !fk; ki++) {
        CgCpuKernel ck;
        fk = gen_protected(&g, m, ki, fe_sprintf(A, "k%d_%s", ki, m->kernels.v[ki]->name), &ck, &f);
    }
    LLVMDisposeBuilder(g.b);
    char *r = NULL;
    if (fk) {
        LLVMDisposeModule(mod);
        fe_arena_free(A);
        LLVMContextDispose(cx);
        host_target_free(&h);
        fe_rethrow(&f);
    }
    if (!(*err = optimise(mod, &h, opt_level))) {
        char *s = LLVMPrintModuleToString(mod);
        r = fe_strdup(a, s);
        LLVMDisposeMessage(s);
    }
    LLVMDisposeModule(mod);
    fe_arena_free(A);
    LLVMContextDispose(cx);
    host_target_free(&h);
    return r;
}

static void jit_destroy(CgCpuJit *j);
static void module_destroy(CgCpuModule *cm);

struct CgCpuJit {
    HostTarget host;
    LLVMOrcLLJITRef jit;
    LLVMOrcJITDylibRef jd;  /* every module's code; libm from the process */
    unsigned serial;        /* keeps the symbols of modules apart in jd */
    int live;               /* modules compiled here and not destroyed */
    int orphaned;           /* destroy asked while live > 0 */
};

static CgCpuJit *jit_create(char **err)
{
    *err = NULL;
    CgCpuJit *j = calloc(1, sizeof *j);
    if (!j) {
        *err = dup_msg("llvm jit", "out of memory");
        return NULL;
    }
    if (!host_target(&j->host, err)) {
        free(j);
        return NULL;
    }
    LLVMOrcJITTargetMachineBuilderRef jtmb;
    LLVMErrorRef e = LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb);
    if (!e) {
        LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
        LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, jtmb);
        e = LLVMOrcCreateLLJIT(&j->jit, jb);
    }
    if (!e) {
        j->jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
        LLVMOrcDefinitionGeneratorRef gen;
        e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL,
                                                                 NULL);
        if (!e) LLVMOrcJITDylibAddGenerator(j->jd, gen);
    }
    if (e) {
        *err = take_error("llvm jit", e);
        jit_destroy(j);
        return NULL;
    }
    return j;
}

static void jit_destroy(CgCpuJit *j)
{
    if (!j) return;
    if (j->live) {
        /* modules outlive it (a caller's leak or destroy order): the last
         * one's cg_cpu_destroy frees it */
        j->orphaned = 1;
        return;
    }
    if (j->jit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
        if (e) LLVMConsumeError(e);
    }
    host_target_free(&j->host);
    free(j);
}

/* Adds one LLVM module (taken) to the JIT under rt and looks up every
 * step of ck: the first lookup compiles the module. NULL, or a malloc'd
 * message. */
static char *jit_add(CgCpuJit *j, LLVMOrcResourceTrackerRef rt, LLVMOrcThreadSafeContextRef tsc,
                     LLVMModuleRef mod, CgCpuKernel *ck)
{
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc);
    LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModuleWithRT(j->jit, rt, tsm);
    if (e) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        return take_error("llvm jit", e);
    }
    for (int si = 0; si < ck->stages.n; si++) {
        CgCpuStage *cs = &ck->stages.v[si];
        for (int s = 0; s < cs->steps.n; s++) {
            LLVMOrcExecutorAddress addr = 0;
            if ((e = LLVMOrcLLJITLookup(j->jit, &addr, cs->steps.v[s].name)))
                return take_error("llvm jit lookup", e);
            CgCpuFn fn;
            uintptr_t u = (uintptr_t)addr;
            memcpy(&fn, &u, sizeof fn);
            cs->steps.v[s].fn = fn;
        }
    }
    return NULL;
}

static CgCpuModule *compile_in(CgCpuJit *j, const IrModule *m, int opt_level, char **err)
{
    *err = NULL;
    double t0 = now_ms();
    Arena *A = fe_arena_new();
    CgCpuModule *cm = fe_alloc(A, sizeof *cm);
    cm->arena = A;
    cm->ir = m;
    cm->jit = j;
    LLVMOrcResourceTrackerRef rt = LLVMOrcJITDylibCreateResourceTracker(j->jd);
    cm->tracker = rt;
    j->live++;
    unsigned serial = j->serial++;
    /* one LLVM module per kernel: its lookups compile only it, so every
     * kernel has its own compile time */
    for (int ki = 0; ki < m->kernels.n; ki++) {
        double k0 = now_ms();
        LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
        LLVMContextRef cx = LLVMOrcThreadSafeContextGetContext(tsc);
        const char *prefix = fe_sprintf(A, "m%u_k%d_%s", serial, ki, m->kernels.v[ki]->name);
        LLVMModuleRef mod = new_module(cx, &j->host, prefix);
        Gen g;
        gen_init(&g, cx, mod, &j->host, A);
        CgCpuKernel ck;
        FeFail f;
        FeFailKind fk = gen_protected(&g, m, ki, prefix, &ck, &f);
        LLVMDisposeBuilder(g.b);
        if (fk) {
            LLVMDisposeModule(mod);
            LLVMOrcDisposeThreadSafeContext(tsc);
            module_destroy(cm);
            fe_rethrow(&f);
        }
        double k1 = now_ms();
        char *e = optimise(mod, &j->host, opt_level);
        double k2 = now_ms();
        if (e) LLVMDisposeModule(mod);
        else e = jit_add(j, rt, tsc, mod, &ck);
        LLVMOrcDisposeThreadSafeContext(tsc); /* the module holds its own reference */
        if (e) {
            *err = e;
            module_destroy(cm);
            return NULL;
        }
        double k3 = now_ms();
        ck.gen_ms = k1 - k0;
        ck.opt_ms = k2 - k1;
        ck.codegen_ms = k3 - k2;
        ck.compile_ms = k3 - k0;
        FE_PUSH(A, cm->kernels, ck);
    }
    cm->compile_ms = now_ms() - t0;
    return cm;
}

static CgCpuModule *compile_own(const IrModule *m, int opt_level, char **err)
{
    CgCpuJit *j = jit_create(err);
    if (!j) return NULL;
    CgCpuModule *cm = compile_in(j, m, opt_level, err);
    if (!cm) jit_destroy(j);
    else cm->owns_jit = 1;
    return cm;
}

static void module_destroy(CgCpuModule *cm)
{
    if (!cm) return;
    CgCpuJit *j = cm->jit;
    if (cm->tracker) {
        /* frees the code of every kernel of the module */
        LLVMOrcResourceTrackerRef rt = cm->tracker;
        LLVMErrorRef e = LLVMOrcResourceTrackerRemove(rt);
        if (e) LLVMConsumeError(e);
        LLVMOrcReleaseResourceTracker(rt);
        j->live--;
    }
    int owns = cm->owns_jit;
    fe_arena_free(cm->arena);
    if (owns || (j && j->orphaned && !j->live)) jit_destroy(j);
}

/* The plugin's one exported symbol (llvm_load.c looks it up). */
const CgLlvmApi cg_llvm_api = {
    .abi = CG_LLVM_ABI,
    .jit_create = jit_create,
    .jit_destroy = jit_destroy,
    .compile_in = compile_in,
    .compile = compile_own,
    .destroy = module_destroy,
    .emit = llvm_emit,
};
