/*
 * vk.h — the Vulkan backend's internals: the device layer (vk.c: devices,
 * buffers, pipelines, recorded programs), driver limits Vulkan does not
 * report (limits.c) and the backend operations over them (vulkan.c).
 * Only these three files include <vulkan/vulkan.h>; the API layer reaches
 * the device through rt.h's RtBackendOps.
 *
 * Layering: vk.c knows Vulkan and nothing of PX kernels: devices, buffers,
 * compute pipelines from SPIR-V, and "programs" (an ordered list of
 * dispatches recorded into one command buffer with barriers between them).
 * vulkan.c maps compiled kernels (codegen's launch metadata) onto that.
 */
#ifndef PX_VK_H
#define PX_VK_H

#include <vulkan/vulkan.h>

#include "rt.h"

/* ===== vk.c: devices, buffers, pipelines, programs ===== */

/* A VkResult as a px result with a message naming what failed. */
PxResult rt_vk_fail(RtLog *log, VkResult vr, const char *what);
const char *rt_vk_result_name(VkResult vr);

typedef struct RtPipeline RtPipeline;

typedef struct RtDevice {
    RtLog *log;
    VkInstance instance;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfamily;
    VkCommandPool pool;          /* resettable command buffers */
    VkPipelineCache pcache;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem;
    PxDeviceInfo info;
    int timestamps;              /* usable on the compute queue */
    int dispatch_base;           /* Vulkan 1.1: vkCmdDispatchBase (sliced runs) */
    uint64_t ts_mask;            /* timestampValidBits mask */
    uint32_t subgroup_ops;       /* VkSubgroupFeatureFlags usable in compute */
    /* one-shot transfers (staging copies) */
    VkCommandBuffer xfer_cmd;
    VkFence xfer_fence;
    /* pipelines keyed by SPIR-V hash + entry + layout */
    RtPipeline **pipes;
    int npipes, cappipes;
} RtDevice;

PxResult rt_device_create(RtDevice *d, RtLog *log, const RtDeviceConfig *cfg);
void rt_device_destroy(RtDevice *d); /* safe on a partly created or zeroed device */

typedef struct RtBuffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize size;           /* bytes allocated (>= requested, >= 16) */
    void *map;                   /* persistently mapped when host-visible */
    int coherent;
} RtBuffer;

/* A zero-filled device buffer of at least `bytes` bytes. */
PxResult rt_buffer_create(RtDevice *d, VkDeviceSize bytes, RtBuffer *b);
void rt_buffer_destroy(RtDevice *d, RtBuffer *b);
PxResult rt_buffer_zero(RtDevice *d, RtBuffer *b);
/* Host copies through the mapping or a staging buffer; the caller ensures
 * the device is not using b. */
PxResult rt_buffer_write(RtDevice *d, RtBuffer *b, const void *src, size_t bytes);
PxResult rt_buffer_read(RtDevice *d, RtBuffer *b, void *dst, size_t bytes);

/* A compute pipeline whose layout is one descriptor set of nbindings
 * storage buffers (bindings 0..n-1) and push_bytes of push constants.
 * Cached by the device: the same SPIR-V words, entry and layout give the
 * same pipeline (owned by the device, destroyed with it). */
PxResult rt_pipeline_get(RtDevice *d, const uint32_t *words, size_t nwords, const char *entry,
                         int nbindings, uint32_t push_bytes, RtPipeline **out);
uint64_t rt_hash(const void *p, size_t n, uint64_t h); /* FNV-1a 64; h = 0 to start */

/* One dispatch of a program. */
typedef struct RtDispatch {
    RtPipeline *pipe;
    int nbind;
    RtBuffer *bind[16];          /* buffer of each binding */
    const void *push;            /* push_bytes of the pipeline (its own:
                                  * group counts differ per dispatch) */
    uint32_t groups[3];
    int stage;                   /* which stage it belongs to (timing) */
    int barrier_after;           /* a compute->compute memory barrier follows */
} RtDispatch;

/* A recorded command buffer running dispatches in order. Reusable: submit
 * again without re-recording while nothing changed. */
typedef struct RtProgram {
    VkCommandBuffer cmd;
    VkDescriptorPool dpool;
    VkDescriptorSet *sets;
    int nsets;
    VkQueryPool qpool;
    int nqueries;
    VkFence fence;
    int pending;                 /* submitted, not yet waited for */
    int ndispatch;
    int *disp_stage;             /* stage of each dispatch */
    int untimed;                 /* set before recording: write no timestamps
                                  * (on lavapipe each one costs a rasterizer
                                  * round trip, more than a tiny dispatch) */
    /* Sliced runs (rt_program_submit_slice): a second command buffer,
     * re-recorded per slice, over the same descriptor sets. */
    VkCommandBuffer slice_cmd;
    int *set_of;                 /* [dispatch as recorded]: its set in sets, -1: skipped */
    int nrecorded;               /* dispatches given to rt_program_record */
    int slice_q;                 /* first of the slice's 2 queries in qpool */
    int last_slice;              /* the last submit was a slice (-1: an empty
                                  * one, nothing submitted) */
} RtProgram;

/* Records the dispatches (a zero group count skips a dispatch). */
PxResult rt_program_record(RtDevice *d, RtProgram *p, const RtDispatch *ds, int n);
PxResult rt_program_submit(RtDevice *d, RtProgram *p);
PxResult rt_program_wait(RtDevice *d, RtProgram *p);
/* After a wait (and before the next submit): GPU ns of each stage 0..nstages-1 (summed over its
 * dispatches) and the total from first to last timestamp; -1 when there are
 * no timestamps. */
void rt_program_times(RtDevice *d, RtProgram *p, int nstages, double *stage_ns, double *total_ns);
void rt_program_destroy(RtDevice *d, RtProgram *p);
/* Submits, without waiting, the slice [begin, end) of the program's
 * linear group sequence: the groups of ds[0..n) (the dispatches it was
 * recorded with), each dispatch's in x-fastest order, concatenated. The
 * slice is recorded into the slice command buffer as the dispatches it
 * covers, a partly covered one as vkCmdDispatchBase over at most 5 boxes of
 * its groups, with the program's barriers between dispatches, a barrier
 * first (it sees the writes of whatever ran before on the queue) and the
 * host barrier last. An empty range submits nothing. */
PxResult rt_program_submit_slice(RtDevice *d, RtProgram *p, const RtDispatch *ds, int n, uint64_t begin,
                                 uint64_t end);
/* After the wait for a slice: ns from its first to its last timestamp; -1
 * when untimed, empty, or the last submit was not a slice. */
double rt_program_slice_ns(RtDevice *d, RtProgram *p);

/* ===== limits.c: driver limits Vulkan does not report ===== */

struct CgDispatch;
struct IrKernel;
typedef struct RtLimits {
    int64_t max_loop_iters;      /* loop back-edges per invocation; 0: no limit */
    const char *driver;          /* the table entry's name, for messages; NULL */
} RtLimits;
/* The limits of a device by deviceName (substring match; NULL: none) and
 * driverID (when has_driver_id); unknown drivers get no limits. */
void rt_limits_for(const char *device_name, int has_driver_id, VkDriverId driver_id, RtLimits *out);
/* The same for an open device (no limits for a CPU-backend one). */
void rt_limits_device(const RtDevice *d, RtLimits *out);
/* PX_OK when dispatch cd of kernel k stays within lim at the bound sizes
 * and params (ir_size_eval's arrays); else PX_ERR_UNSUPPORTED with a
 * message naming the kernel, stage, source position and the numbers. */
PxResult rt_limits_check(RtLog *log, const RtLimits *lim, const struct IrKernel *k,
                         const struct CgDispatch *cd, const int64_t *syms, const int64_t *params);

#endif
