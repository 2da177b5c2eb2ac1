/* pipeline.c — the one visible optimisation pipeline.
 *
 * The compile driver (codegen/compile.c) is its one caller outside tests.
 * Every pass runs through IR_PASS, which runs the verifier after it when
 * IrOptions.verify is set or the library is a debug build (PX_DEBUG), so a
 * pass that breaks the IR is named at once (NIR_PASS style).
 *   O0: strategy
 *   O1: fold, dce, bounds, strategy
 *   O2: fold, dce, fuse, fold, dce, bounds, strategy */
#include "ir.h"

#ifdef PX_DEBUG
enum { ALWAYS_VERIFY = 1 };
#else
enum { ALWAYS_VERIFY = 0 };
#endif

#define IR_PASS(m, o, name, call)                                 \
    do {                                                          \
        call;                                                     \
        if ((o)->verify || ALWAYS_VERIFY) ir_verify((m), (name)); \
    } while (0)

void ir_optimize(IrModule *m, const IrOptions *o)
{
    IrOptions def = {.opt_level = 2};
    if (!o) o = &def;
    if (o->verify || ALWAYS_VERIFY) ir_verify(m, "lower");
    if (o->opt_level >= 1) {
        IR_PASS(m, o, "fold", ir_pass_fold(m));
        IR_PASS(m, o, "dce", ir_pass_dce(m));
    }
    if (o->opt_level >= 2) {
        IR_PASS(m, o, "fuse", ir_pass_fuse(m));
        IR_PASS(m, o, "fold", ir_pass_fold(m));
        IR_PASS(m, o, "dce", ir_pass_dce(m));
    }
    if (o->opt_level >= 1) IR_PASS(m, o, "bounds", ir_pass_bounds(m));
    IR_PASS(m, o, "strategy", ir_pass_strategy(m, o));
}
