/*
 * rt.h — internals of the PX runtime (libpx): the objects behind the
 * embedding API (api.c), the launch engine (launch.c), prediction
 * (predict.c), the table of device operations every backend implements
 * (vulkan.c over vk.c, cpu.c), device profiles on disk (profile.c) and
 * calibration (calibrate.c); .npy files (npy.c) are public (px.h). Not installed; tools and
 * tests in the tree may use it.
 *
 * Layering: the API layer (api.c, launch.c, predict.c) never branches on
 * the backend and makes no Vulkan call: it reaches a device only through
 * RtBackendOps. What a backend keeps (VkBuffers, pipelines, a thread pool,
 * JIT code) is opaque here (RtDev, RtBuf, RtCode, RtProg).
 *
 * Threads: a context, and everything made from it, is used by one thread
 * at a time (px.h); backends keep no state between contexts.
 */
#ifndef PX_RT_H
#define PX_RT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "px.h"
#include "codegen/cg.h"

/* ===== api.c: messages ===== */

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
/* hay contains needle, ignoring ASCII case (device names) */
int rt_ci_contains(const char *hay, const char *needle);
uint64_t rt_hash(const void *p, size_t n, uint64_t h); /* FNV-1a 64; h = 0 to start */

/* ===== backend: the table of device operations (vulkan.c, cpu.c) ===== */

typedef struct RtDev RtDev;    /* an open device of some backend */
typedef struct RtBuf RtBuf;    /* a buffer on it */
typedef struct RtCode RtCode;  /* a compiled module's code for it */
typedef struct RtProg RtProg;  /* one launch's work, ready to submit again and again */

typedef struct RtDeviceConfig {
    int index;                 /* -1: not given */
    const char *name;          /* NULL: not given */
    const char *origin;        /* where index/name came from, for messages */
    int cpu_threads;           /* CPU backend: 0 for PX_CPU_THREADS or the cores */
    int no_subgroups;          /* compile the shared-memory fallbacks */
} RtDeviceConfig;

/* What the layers above need to know of an open device. */
typedef struct RtCaps {
    PxDeviceInfo info;         /* as px_device_info shows it */
    CgEmit emit;               /* the code the compile driver must make */
    CgTarget target;           /* what it may assume of the device */
    CgCpuJit *jit;             /* CG_EMIT_CPU: where the code goes */
    uint64_t max_buffer_bytes; /* one buffer, whole */
    /* Workgroups (CPU: items' slices) the device runs at once: a slice of
     * fewer leaves it partly idle, so slices take at least this many. */
    int parallel_groups;
    /* A run stops soon after RtArgs.cancel is set (PX_ERR_CANCELLED from
     * its wait): the CPU backend's code polls it; Vulkan cannot stop a
     * submitted dispatch. */
    int can_cancel;
} RtCaps;

/* A launch's arguments in the form every backend takes. Arrays are the
 * launch's and live until the next prepare of the same program. */
typedef struct RtArgs {
    RtBuf *const *bufs;        /* [param]: its buffer; NULL for scalars */
    const uint32_t *scalars;   /* [param]: bits as pushed (half as float) */
    const int64_t *syms;       /* [size symbol]: bound value */
    const int64_t *params;     /* [param]: int/uint values for ir_size_eval */
    int untimed;               /* measure nothing (px_launch_set_timing) */
    volatile int32_t *cancel;  /* px_launch_cancel's flag (RtCaps.can_cancel) */
} RtArgs;

/* How a stage of a kernel runs on the device, for the cost model. */
typedef struct RtStageShape {
    double groups;             /* workgroups its dispatches launch; -1: no such thing */
    int vec_width;             /* elements one access moves (vec4: 4), >= 1 */
    int dispatches;            /* dispatches (CPU: steps) it runs as */
    /* In: the workgroups the device runs at once (0: not modelled). Out:
     * the groups of each dispatch rounded up to whole waves of that many,
     * summed (= groups when not modelled): the device time the groups
     * take, counted in groups. */
    int wave;
    double wave_groups;
} RtStageShape;

/* Sliced execution, the scheduler's unit of work (docs/SCHEDULER.md). A
 * prepared program is a sequence of work units, in order: unit i is
 * dispatch i of the kernel's launch metadata (Vulkan) or step i of its
 * stages (CPU), with `groups` independent groups (workgroups, or a step's
 * items) at the prepared sizes; a unit with 0 groups is skipped. The
 * groups of all units, concatenated in order, form the program's linear
 * group sequence [0, total). A slice is a half-open range [begin, end) of
 * it. Running slices that cover [0, total) in order, one after another,
 * gives results bit-identical to one submit: groups are independent
 * within a unit (codegen never derives a result from how many groups run
 * at once), every unit sees all writes of the units before it, and float
 * reductions keep their fixed partial boundaries. */
typedef struct RtUnit {
    int stage;                 /* IrKernel.stages index it belongs to */
    int64_t groups;            /* independent groups at the prepared sizes */
} RtUnit;
typedef struct RtSlice {
    int64_t begin, end;        /* in the linear group sequence */
} RtSlice;

typedef struct RtBackendOps {
    const char *name;          /* "vulkan", "cpu": px_context_backend */
    /* Opens the device cfg picks; PX_ERR_NO_DEVICE when there is none (the
     * message says why). *caps describes it. */
    PxResult (*open)(RtLog *log, const RtDeviceConfig *cfg, RtDev **out, RtCaps *caps);
    void (*close)(RtDev *d);   /* waits for the device first */
    /* Waits until nothing submitted on d runs. */
    PxResult (*idle)(RtDev *d);

    /* Zero-filled, at least `bytes` (>= 1) bytes. */
    PxResult (*buffer_create)(RtDev *d, size_t bytes, RtBuf **out);
    void (*buffer_destroy)(RtDev *d, RtBuf *b); /* NULL is fine; b is not in use */
    /* Host copies of the first `bytes` bytes; nothing submitted uses b. */
    PxResult (*buffer_write)(RtDev *d, RtBuf *b, const void *src, size_t bytes);
    PxResult (*buffer_read)(RtDev *d, RtBuf *b, void *dst, size_t bytes);
    PxResult (*buffer_zero)(RtDev *d, RtBuf *b);
    /* The buffer's memory as the host sees it, when the device memory is
     * host-visible and coherent (no flush or staging copy needed), else
     * NULL; valid until buffer_destroy. NULL op: never mappable. */
    void *(*buffer_map)(RtDev *d, RtBuf *b);

    /* Adopts the code of a compilation made with the caps' emit/target/jit
     * (the SPIR-V module, or the JIT module, which it then owns). c lives
     * as long as the code: the module's arena holds it. */
    PxResult (*code_create)(RtDev *d, CgCompiled *c, RtCode **out);
    void (*code_destroy)(RtDev *d, RtCode *code); /* NULL is fine */
    /* Wall ms the backend took to make kernel k's native code; -1: none. */
    double (*code_compile_ms)(const RtCode *code, int k);
    void (*stage_shape)(const RtCode *code, int k, int stage, const int64_t *syms,
                        const int64_t *params, RtStageShape *out);

    /* Makes (or remakes in place, *p not NULL) kernel k's program for the
     * arguments a: dispatch counts, limits, scratch, recorded work. */
    PxResult (*prog_prepare)(RtDev *d, RtCode *code, int k, const RtArgs *a, RtProg **p);
    void (*prog_destroy)(RtDev *d, RtProg *p); /* NULL is fine; waits for it */
    PxResult (*submit)(RtDev *d, RtProg *p);
    PxResult (*wait)(RtDev *d, RtProg *p);
    /* After a wait: ns of each stage 0..nstages-1 and of the whole run;
     * -1 where nothing was measured. */
    void (*times)(RtDev *d, RtProg *p, int nstages, double *stage_ns, double *total_ns);

    /* Sliced execution (RtUnit above). The units of a prepared program,
     * valid until its next prog_prepare; returns how many. */
    int (*prog_units)(RtDev *d, RtProg *p, const RtUnit **units);
    /* Submits one slice without waiting; ops->wait waits for it. At most
     * one submission of a program is in flight. A slice's work sees every
     * write of the slices submitted before it on the same device. */
    PxResult (*submit_slice)(RtDev *d, RtProg *p, RtSlice s);
    /* After the wait for a slice: its device time in ns (first to last
     * timestamp; wall time on the CPU); -1 when the program is untimed. */
    double (*slice_ns)(RtDev *d, RtProg *p);
} RtBackendOps;

extern const RtBackendOps rt_vulkan_ops; /* vulkan.c */
extern const RtBackendOps rt_cpu_ops;    /* cpu.c */

/* ===== api.c, launch.c, predict.c: the objects behind px.h ===== */

struct PxContext {
    RtLog log;
    const RtBackendOps *ops;
    RtDev *dev;
    RtCaps caps;
    int opt_level;
    int inflight;               /* launches submitted and not waited for */
    IrDeviceProfile profile;
    char profile_src[1024];     /* file the profile came from, or "default" */
    uint64_t buffers_made;      /* PxBuffer ids: a freed buffer's address may come back */
    int timed;                  /* PxConfig.timestamps: launches start with timing on */
    PxLimits limits;            /* PxConfig.limits */
    RtDeviceConfig dc;          /* the device as opened, for rt_context_reopen */
    char dc_name[256];          /* dc.name's text */
};

struct PxKernel {
    PxModule *m;
    int index;
    const IrKernel *ir;         /* optimised: what runs */
    const IrKernel *src;        /* as lowered: cost per source statement */
    IrKernelCost *cost;
    IrCorrection corr;          /* learned from this kernel's measured runs */
    char **dimtext;             /* [param*4 + d] */
    char **stage_names;
};

struct PxModule {
    PxContext *ctx;
    Arena *arena;               /* the compilation and the kernels' tables */
    CgCompiled cc;
    RtCode *code;
    int nk;
    PxKernel *k;
};

struct PxBuffer {
    PxContext *ctx;
    RtBuf *rb;
    PxDtype dtype;
    int rank;
    int64_t shape[4];
    int64_t count;
    size_t bytes;
    uint64_t id;                /* unique in its context */
};

typedef struct LParam {
    PxBuffer *bound;            /* caller's */
    uint64_t bound_id;          /* its id: a new buffer at a freed one's address differs */
    PxBuffer *own;              /* created by prepare for an unbound buffer param */
    char origin[160];
    uint32_t bits;              /* scalar value as pushed */
    int set;
} LParam;

typedef struct LSym {
    int64_t given;              /* px_launch_set_size */
    int has_given;
    char given_origin[160];
    int64_t val;                /* resolved */
    int has_val;
    char origin[200];           /* where val came from, for messages */
    int flex_rank;              /* a flexible buffer bound it: its data's shape */
    int64_t flex_shape[4];
} LSym;

struct PxLaunch {
    PxKernel *k;
    PxContext *c;
    LParam *p;
    LSym *s;
    int64_t *symv, *paramv;     /* for ir_size_eval */
    uint32_t *scalars;          /* [param] bits (RtArgs) */
    RtBuf **bufs;               /* [param] (RtArgs) */
    RtProg *prog;
    int prepared, recorded;     /* recorded: prog matches the bindings */
    int pending;                /* submitted, not waited for */
    int ran;
    double *stage_ns;
    double total_ns;
    int nruns;                  /* completed runs since the last (re)record */
    /* Times are read back lazily: a wait leaves the last run's times on
     * the device (unread), and px_launch_stage_time_ns or a prediction
     * reads them and teaches the correction, once. */
    int unread;                 /* the last run's times are not read yet */
    int unread_cold;            /* ... and it was the first run after a record */
    int untimed;                /* px_launch_set_timing(l, 0) */
    double pred_ns;             /* uncorrected whole-kernel prediction; < 0: not known */
    int budget_ok;              /* the launch budget was checked since prepare */
    volatile int32_t cancel;    /* px_launch_cancel: set by any thread, polled by
                                   the CPU backend's code, cleared by the run */
};

PxDtype rt_dtype_of(ScalarType t);
/* api.c: px_module_compile in two halves, for the scheduler. The build is
 * the compile driver: it reads nothing of c but what never changes (caps,
 * opt_level) and reports to `log`, so it may run beside other work on c,
 * except another build when c's backend compiles into a shared JIT
 * (caps.emit CG_EMIT_CPU). The adoption makes the device's code and the
 * kernels' tables, under whatever serialises c's use. A failed build
 * leaves nothing (*out untouched); after a failed adoption the caller
 * destroys the module (px_module_destroy). */
PxResult rt_module_build(PxContext *c, RtLog *log, const char *src, size_t len, const char *file,
                         PxModule **out, char **diags);
PxResult rt_module_adopt(PxModule *m);
/* api.c, for the scheduler's device-loss recovery (sched/loss.c): closes
 * c's device and opens the one it was created on again. Every program,
 * buffer and code made on it must be gone first (rt_launch_forget, the
 * backend's buffer_destroy and code_destroy); on failure c has no device
 * (c->dev NULL) and must only be destroyed. */
PxResult rt_context_reopen(PxContext *c);
/* launch.c, for the scheduler (sched/): resolve size symbols only (after
 * it, the shapes unbound params would get are known); that shape of param
 * i (its rank, or -1 when i is bound or a scalar); prepare and record so
 * that l->prog is ready for ops->submit_slice. */
PxResult rt_launch_resolve(PxLaunch *l);
int rt_launch_unbound_shape(const PxLaunch *l, int param, int64_t shape[4]);
PxResult rt_launch_ready(PxLaunch *l);
/* launch.c, for the same recovery: drops l's program (made on a device
 * about to be closed); the next rt_launch_ready records it anew. */
void rt_launch_forget(PxLaunch *l);
/* predict.c: a completed, timed run teaches its kernel's correction */
void rt_learn(PxLaunch *l);
/* predict.c: reads the last run's times (once) and learns from them */
void rt_read_times(PxLaunch *l);
void rt_profile_export(const IrDeviceProfile *p, const char *source, PxProfile *out);
/* predict.c: the figures of launch l as its stages run (IrKernelCost.run
 * at the bound sizes, accesses as executed, workgroups), summed over the
 * stages: what the prediction's roofline takes, so that calibration fits
 * the library classes on the same figures (padded matmul tiles, vec4
 * variants). 0 when there are none (sizes unbound, no run figures). */
int rt_launch_run_values(PxLaunch *l, IrCostValues *out);

/* ===== calibrate.c: the micro-kernels px_calibrate runs ===== */

/* Each is PX source with one kernel; calibration runs it at the sizes
 * given and times it (device timestamps), one per IrCalibMeasure. */
typedef struct RtCalibKernel {
    IrCalibMeasure what;
    const char *name;      /* the kernel's name in source */
    const char *source;    /* PX text */
    const char *sym;       /* its one size symbol */
    int64_t size;          /* the value to bind it to */
    int64_t small;         /* library classes: a second, small size; else 0 */
    /* Row classes: the row symbol, bound to `rows` at both sizes above, and
     * a third run of `many_rows` rows at the small size, which tells the
     * per-workgroup cost from the per-stage one; else NULL, 0, 0. */
    const char *rows_sym;
    int64_t rows, many_rows;
} RtCalibKernel;
extern const RtCalibKernel rt_calib_kernels[IR_CALIB_N];

/* ===== profile.c: device profiles on disk ===== */

/* $XDG_CACHE_HOME/px/<device>.profile, else $HOME/.cache/px/<device>.profile;
 * characters outside [A-Za-z0-9._-] of the name become '_'. Returns 0 when
 * no path fits buf or neither variable is set. */
int rt_profile_path(char *buf, size_t n, const char *device);
/* Saving creates the directories; both return 0 on success, -1 on failure
 * (load then leaves *p untouched; a file with missing, non-positive or
 * non-finite figures is refused: ir_profile_parse). */
int rt_profile_save(const IrDeviceProfile *p, const char *path);
int rt_profile_load(IrDeviceProfile *p, const char *path);

/* ===== cpu.c: the CPU backend's thread pool ===== */

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
int rt_cpu_run(RtCpuPool *p, const CgCpuKernel *k, const CgCpuArgs *a, double *stage_ns);

#endif
