/*
 * rt.h — internals of the PX runtime (libpx): the Vulkan device layer
 * (vk.c), the embedding API's objects (px.c) and .npy files (npy.c).
 * Not installed; tools and tests in the tree may use it.
 *
 * Layering: vk.c knows Vulkan and nothing of PX kernels: devices, buffers,
 * compute pipelines from SPIR-V, and "programs" (an ordered list of
 * dispatches recorded into one command buffer with barriers between them).
 * px.c maps compiled kernels (codegen metadata) onto that.
 */
#ifndef PX_RT_H
#define PX_RT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <vulkan/vulkan.h>

#include "px.h"

/* ===== vk.c: devices, buffers, pipelines, programs ===== */

/* Where messages go: the caller's callback, plus the last error text. */
typedef struct RtLog {
    PxLogFn fn;
    void *user;
    char last[1024];
} RtLog;
/* Formats msg into log->last (for errors) and passes it to the callback.
 * Returns r so callers can `return rt_fail(...)`. */
PxResult rt_fail(RtLog *log, PxResult r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rt_log(RtLog *log, PxLogLevel lv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A VkResult as a px result with a message naming what failed. */
PxResult rt_vk_fail(RtLog *log, VkResult vr, const char *what);
const char *rt_vk_result_name(VkResult vr);
/* hay contains needle, ignoring ASCII case (device names) */
int rt_ci_contains(const char *hay, const char *needle);

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
    uint64_t ts_mask;            /* timestampValidBits mask */
    uint32_t subgroup_ops;       /* VkSubgroupFeatureFlags usable in compute */
    /* one-shot transfers (staging copies) */
    VkCommandBuffer xfer_cmd;
    VkFence xfer_fence;
    /* pipelines keyed by SPIR-V hash + entry + layout */
    RtPipeline **pipes;
    int npipes, cappipes;
} RtDevice;

typedef struct RtDeviceConfig {
    int index;                   /* -1: not given */
    const char *name;            /* NULL: not given */
} RtDeviceConfig;

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
    const void *push;            /* push_bytes of the pipeline */
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

/* ===== npy.c: NumPy .npy files ===== */

typedef struct RtNpy {
    PxDtype dtype;
    int rank;                    /* 0..4 (0: a scalar array) */
    int64_t shape[4];
    int64_t count;               /* elements */
    void *data;                  /* malloc'd, count * dtype size bytes */
} RtNpy;

/* Reads a .npy file (format 1.0, 2.0 or 3.0, little-endian, C order, <f4
 * <i4 <u4 <f2, rank <= 4). On failure returns PX_ERR_IO/PX_ERR_NOT_FOUND/
 * PX_ERR_UNSUPPORTED with a message in err (errsz bytes) saying what is wrong
 * with the file, e.g. "x.npy: truncated: header says 1000 elements (4000
 * bytes) but only 3996 bytes of data follow". */
PxResult rt_npy_read(const char *path, RtNpy *out, char *err, size_t errsz);
/* Parses a .npy image in memory (the same checks; name used in messages). */
PxResult rt_npy_parse(const char *name, const unsigned char *p, size_t n, RtNpy *out, char *err,
                      size_t errsz);
PxResult rt_npy_write(const char *path, PxDtype dtype, int rank, const int64_t *shape,
                      const void *data, char *err, size_t errsz);
void rt_npy_free(RtNpy *n);
const char *rt_npy_descr(PxDtype t); /* "<f4" ... */

/* ===== cpu.c: the CPU device (JIT-compiled kernels on a thread pool) ===== */

struct CgCpuKernel;
struct CgCpuArgs;
typedef struct RtCpuPool RtCpuPool;
/* Threads: PX_CPU_THREADS when set (1..1024), else the online cores. */
int rt_cpu_default_threads(void);
/* nthreads <= 0: rt_cpu_default_threads(); the caller is one of them. NULL
 * when out of memory. */
RtCpuPool *rt_cpu_pool_create(int nthreads);
void rt_cpu_pool_destroy(RtCpuPool *p); /* NULL is fine */
int rt_cpu_pool_threads(const RtCpuPool *p);
/* Runs every stage of k in order on the pool (NULL: serially); stage_ns
 * gets each stage's wall time. 0, or -1 when out of memory. */
int rt_cpu_run(RtCpuPool *p, const struct CgCpuKernel *k, const struct CgCpuArgs *a, double *stage_ns);
/* Describes the host CPU as the device of a CPU-backend context with no
 * Vulkan device: d->info (name "CPU (LLVM JIT, N threads): <model>",
 * is_cpu) and the few d->props limits px.c reads. Nothing else of d is set. */
void rt_cpu_describe(RtDevice *d, int threads);
/* Zero-filled host memory for CPU-backend buffers, 64-byte aligned; free()
 * it. NULL when out of memory. */
void *rt_cpu_alloc(size_t bytes);
/* An RtBuffer in host memory (map set, coherent, no Vulkan objects): the
 * rt_buffer_zero/read/write paths work on it without a device. 0, or -1
 * when out of memory. Destroy with rt_cpu_buffer_destroy only. */
int rt_cpu_buffer_create(RtBuffer *b, size_t bytes);
void rt_cpu_buffer_destroy(RtBuffer *b);

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

/* ===== calibrate.c: pxrun --calibrate (owner: cost analysis) ===== */

/* Runs ir_calib_kernels on ctx's device `runs` times each (median time
 * counts), fits a profile (ir_profile_fit) and saves it to the device's
 * profile path (ir_profile_path), which the next context loads; ctx keeps
 * the profile it has. *out gets the profile, out->source the file. On
 * failure the message is px_last_error(ctx); PX_ERR_UNSUPPORTED when
 * nothing could be measured (a device without timestamps), PX_ERR_IO when
 * the file cannot be written. */
PxResult rt_calibrate(PxContext *ctx, int runs, PxProfile *out);

/* px.c, for calibrate.c: the context's log (errors there become
 * px_last_error), and a profile as px.h shows it. */
RtLog *rt_context_log(PxContext *ctx);
struct IrDeviceProfile;
void rt_profile_export(const struct IrDeviceProfile *p, const char *source, PxProfile *out);
/* The figures of launch l as its stages run (IrKernelCost.run at the bound
 * sizes, accesses as executed, workgroups), summed over the stages: what
 * the prediction's roofline takes, so that calibration fits the library
 * classes on the same figures (padded matmul tiles, vec4 variants).
 * Returns 0 when there are none (CPU backend: no groups; sizes unbound). */
struct IrCostValues;
int rt_launch_run_values(PxLaunch *l, struct IrCostValues *out);

#endif
