/*
 * limits.c — limits of known drivers that Vulkan does not report, and the
 * launch-time checks against them (docs/RUNTIME.md, "Loop limits").
 *
 * The one known so far: Mesa lavapipe (llvmpipe's gallivm) gives each
 * shader invocation ONE loop limiter, set to 65535 and decremented at every
 * pass through the end of every loop; at 0 every loop exits early and the
 * shader silently computes a wrong answer. Splitting loops cannot help
 * (the budget is shared), so a launch that could exceed it is refused.
 */
#include "vk.h"

#include <string.h>

#include "../codegen/cg.h"

/* Drivers with a per-invocation loop budget: name matched as a substring
 * of deviceName, or the driverID; the budget in loop back-edges. */
#define RT_DRIVER_LIMITS(X)                                                              \
    X("llvmpipe", VK_DRIVER_ID_MESA_LLVMPIPE, 65535) /* lavapipe: LP_MAX_TGSI_LOOP_ITERATIONS */

typedef struct RtDriverLimit {
    const char *name;
    VkDriverId id;
    int64_t max_loop_iters;
} RtDriverLimit;

static const RtDriverLimit driver_limits[] = {
#define X(n, id, it) {n, id, it},
    RT_DRIVER_LIMITS(X)
#undef X
};

void rt_limits_for(const char *device_name, int has_driver_id, VkDriverId driver_id, RtLimits *out) {
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof driver_limits / sizeof driver_limits[0]; i++) {
        const RtDriverLimit *e = &driver_limits[i];
        if ((device_name && strstr(device_name, e->name)) || (has_driver_id && driver_id == e->id)) {
            out->max_loop_iters = e->max_loop_iters;
            out->driver = e->name;
            return;
        }
    }
}

void rt_limits_device(const RtDevice *d, RtLimits *out) {
    VkPhysicalDeviceDriverProperties dp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    int has_id = 0;
    /* the instance is Vulkan 1.2 (vk.c); a CPU-backend device has no phys */
    if (d->phys && d->props.apiVersion >= VK_API_VERSION_1_2) {
        VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                          .pNext = &dp};
        vkGetPhysicalDeviceProperties2(d->phys, &p2);
        has_id = dp.driverID != 0;
    }
    rt_limits_for(d->phys ? d->props.deviceName : NULL, has_id, dp.driverID, out);
}

PxResult rt_limits_check(RtLog *log, const RtLimits *lim, const IrKernel *k, const CgDispatch *cd,
                         const int64_t *syms, const int64_t *params) {
    if (!lim->max_loop_iters || !cd->loop_iters) return PX_OK;
    int64_t n = cg_loops_eval(cd->loop_iters, syms, params);
    if (n <= lim->max_loop_iters) return PX_OK;
    const IrStage *st = &k->stages.v[cd->stage];
    const char *prim = st->prims.n ? fe_prim_names[st->prims.v[0]] : ir_stage_kind_names[st->kind];
    Loc at = st->locs.n ? st->locs.v[0] : k->loc;
    char num[32];
    if (n == INT64_MAX) snprintf(num, sizeof num, "more than 2^63");
    else snprintf(num, sizeof num, "%lld", (long long)n);
    return rt_fail(log, PX_ERR_UNSUPPORTED,
                   "kernel '%s' stage %d (%s at %d:%d): an invocation runs up to %s loop iterations, "
                   "but %s stops a shader's loops after %lld; run it on the CPU backend or at smaller sizes",
                   k->name, cd->stage, prim, at.line, at.col, num, lim->driver,
                   (long long)lim->max_loop_iters);
}
