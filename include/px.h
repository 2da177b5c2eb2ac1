/*
 * px.h — the PX embedding API: compile PX kernels and run them on a Vulkan
 * device, or on the host CPU through an LLVM JIT (the plugin
 * libpx-llvm.so.0, loaded on first use). Many tenants sharing devices:
 * pxsched.h, over this.
 *
 * Objects and ownership
 * ---------------------
 *   PxContext  one device: a Vulkan instance + device + queue, or the CPU
 *              backend's thread pool and JIT; everything else belongs to a
 *              context and must be destroyed before it. Contexts share
 *              nothing: several may live in one process, each used by one
 *              thread at a time. There is no global state.
 *   PxModule   a compiled .px source (every kernel in it, as SPIR-V and
 *              launch metadata, or native code). Destroy with
 *              px_module_destroy.
 *   PxKernel   a kernel of a module; borrowed, valid while its module lives.
 *   PxBuffer   a device buffer with an element type and a shape (rank 0..4).
 *              Destroy with px_buffer_destroy. Buffers a launch creates
 *              itself (unbound parameters) belong to the launch.
 *   PxLaunch   a kernel with its arguments bound; reusable: run it many
 *              times, rebinding what changes. Its command buffer, descriptor
 *              sets and timestamp queries are cached until a binding changes.
 *
 * Errors
 * ------
 * Every fallible function returns a PxResult. PX_OK is 0. After a failure,
 * px_last_error(ctx) gives a message saying what failed and why (the
 * message lives until the next failing call on that context). Messages also
 * go to the caller's log callback; the library never prints by itself,
 * never exits and reads no environment variable but those named here. An
 * internal compiler error or an allocation failure inside the compiler is
 * PX_ERR_INTERNAL or PX_ERR_OUT_OF_MEMORY from that call, and the context
 * stays usable: the next compile and launch work.
 * Vulkan failures are turned into PX_ERR_DEVICE_LOST, PX_ERR_OUT_OF_MEMORY
 * or PX_ERR_VULKAN with the VkResult named; nothing is leaked on any path.
 *
 * Typical use
 * -----------
 *   PxConfig cfg; px_config_default(&cfg);
 *   PxContext *ctx; px_context_create(&cfg, &ctx);
 *   PxModule *m; char *diags;
 *   px_module_compile(ctx, src, len, "k.px", NULL, &m, &diags); px_free(diags);
 *   PxKernel *k; px_module_kernel(m, "saxpy", &k);
 *   PxLaunch *l; px_launch_create(k, &l);
 *   px_launch_bind(l, "x", xbuf, NULL); px_launch_set_float(l, "a", 2.0f);
 *   px_launch_run(l);
 *   px_buffer_read(px_launch_buffer(l, "y"), host, bytes);
 *   px_launch_destroy(l); px_module_destroy(m); px_context_destroy(ctx);
 */
#ifndef PX_H
#define PX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version ------------------------------------------------------------- */

/* The library's version: MAJOR changes break the API or ABI, MINOR adds to
 * them, PATCH fixes. px_version() is the version of the library linked,
 * which may be newer than the header a program was built with. */
#define PX_VERSION_MAJOR 0
#define PX_VERSION_MINOR 2
#define PX_VERSION_PATCH 0
#define PX_VERSION_STRING "0.2.0"
const char *px_version(void); /* "0.2.0" */

/* ---- results --------------------------------------------------------- */

#define PX_RESULTS(X)                                                        \
    X(PX_OK, "ok")                                                           \
    X(PX_ERR_INVALID, "invalid argument")      /* NULL, unknown name, bad value */ \
    X(PX_ERR_NO_DEVICE, "no Vulkan device")    /* no driver / no device / bad pick */ \
    X(PX_ERR_DEVICE_LOST, "device lost")       /* VK_ERROR_DEVICE_LOST */      \
    X(PX_ERR_OUT_OF_MEMORY, "out of memory")   /* host or device memory */    \
    X(PX_ERR_COMPILE, "compilation failed")    /* diagnostics say why */      \
    X(PX_ERR_NOT_FOUND, "not found")           /* kernel, param, file */      \
    X(PX_ERR_SHAPE, "shape or type mismatch")  /* binding does not fit */     \
    X(PX_ERR_UNBOUND, "unbound parameter")     /* size symbol or scalar unset */ \
    X(PX_ERR_TOO_LARGE, "buffer too large")    /* > device storage-buffer range */ \
    X(PX_ERR_UNSUPPORTED, "unsupported")       /* e.g. past the device loop limit */ \
    X(PX_ERR_IO, "I/O error")                  /* reading a file */           \
    X(PX_ERR_VULKAN, "Vulkan error")           /* any other VkResult */       \
    X(PX_ERR_NOT_READY, "not ready")           /* no run submitted / not finished */ \
    X(PX_ERR_INTERNAL, "internal error")       /* a bug of PX's: the message says where */ \
    X(PX_ERR_LIMIT, "over a limit")            /* PxLimits: refused before running */ \
    X(PX_ERR_CANCELLED, "cancelled")           /* px_launch_cancel stopped the run; pxsched.h:
                                                  a launch cancelled or its VM destroyed */ \
    X(PX_ERR_QUOTA, "memory quota exceeded")   /* pxsched.h: a VM's quota, a device's capacity */ \
    X(PX_ERR_BUSY, "queue full")               /* pxsched.h: too many launches waiting */
typedef enum PxResult {
#define X(e, s) e,
    PX_RESULTS(X)
#undef X
} PxResult;

/* A fixed description of a result ("device lost"); never NULL. */
const char *px_result_string(PxResult r);

/* ---- element types ---------------------------------------------------- */

typedef enum PxDtype {
    PX_F32, /* float, NumPy <f4 */
    PX_I32, /* int, <i4 */
    PX_U32, /* uint, <u4 */
    PX_F16, /* half, <f2 (IEEE binary16 bits in a uint16_t) */
} PxDtype;
size_t px_dtype_size(PxDtype t);        /* 4 or 2 */
const char *px_dtype_name(PxDtype t);   /* "float", "int", "uint", "half" */
/* Conversions between binary16 and float (round to nearest even). */
float px_half_to_float(uint16_t h);
uint16_t px_float_to_half(float f);

/* ---- limits for untrusted kernels ---------------------------------------- */

/* What one tenant's source and launches may cost the compiler and the
 * device: a hypervisor hands each VM these as its budget (a context per
 * VM). px_config_default sets the defaults below; each limit is checked
 * before the work it bounds, and going past it is an error naming the
 * limit: a located `file:line:col: error: ...` for the compile limits
 * (docs/LANGUAGE.md, "Limits"; the same in pxcc and pxrun), PX_ERR_LIMIT
 * for the launch budget (docs/RUNTIME.md, "Launch budget and
 * cancellation"). Within them every compile is linear (or n log n) in the
 * source. */
typedef struct PxLimits {
    size_t source_bytes;       /* one source text; default 16 MiB */
    int kernels;               /* kernels in one source; default 1024 */
    int statements;            /* per kernel, at any depth; default 100,000 */
    int stages;                /* per kernel after fusion; default 128 */
    int stage_instructions;    /* IR instructions of one stage; default 4096 */
    size_t spirv_bytes;        /* the generated SPIR-V module; default 1 MiB */
    size_t spirv_stage_bytes;  /* SPIR-V functions of one stage; default 64 KiB */
    int identifier_length;     /* bytes; default 255 */
    int loop_depth;            /* `for` loops nested; default 32 */
    /* Per launch: the roofline prediction (PxCost.predicted_ns, without
     * the learned correction) at the bound sizes must be at most this; a
     * launch whose cost the compiler cannot state (too large to compute)
     * is refused too. Default 600e9 (10 minutes); 0: no budget. */
    double launch_budget_ns;
} PxLimits;
void px_limits_default(PxLimits *l);

typedef struct PxLaunch PxLaunch; /* (again below; C11 allows the repeat) */
/* Stops a run of l that is in progress (or the next one, if none is):
 * safe to call from any thread while px_launch_run runs on another. On
 * the CPU backend the generated code polls the flag at every loop
 * back-edge and the pool between chunks of items, so the run returns
 * PX_ERR_CANCELLED promptly; the outputs are then partly written. On
 * Vulkan a dispatch cannot be stopped once submitted: PX_ERR_UNSUPPORTED
 * (the launch budget bounds those runs instead). */
PxResult px_launch_cancel(PxLaunch *l);

/* ---- numbers as text ------------------------------------------------------ */

/* The one reading of numbers on command lines and in
 * px_launch_set_scalar_text, so pxrun's --arg, --fill and --size agree.
 * Integers: optional '-', then decimal digits or 0x and hex digits ("010"
 * is ten, never octal); *out gets the value when lo <= value <= hi.
 * Floats: strtod's forms ("2.5", "1e-3", "inf", "nan"); a finite value
 * beyond +-max is out of range (it would round to infinity: 1e39 for a
 * float). Both: 0 success, 1 not a number of that kind, 2 out of range. */
int px_parse_int(const char *text, int64_t lo, int64_t hi, int64_t *out);
int px_parse_float(const char *text, double max, double *out);
#define PX_FLOAT_MAX 3.4028234663852886e38 /* FLT_MAX */
#define PX_HALF_MAX 65504.0

/* ---- NumPy .npy files -------------------------------------------------- */

/* An array read from a .npy file; px_npy_free frees its data. */
typedef struct PxNpy {
    PxDtype dtype;
    int rank;                    /* 0..4 (0: a scalar array) */
    int64_t shape[4];
    int64_t count;               /* elements */
    void *data;                  /* malloc'd, count * dtype size bytes */
} PxNpy;

/* Reads a .npy file (format 1.0, 2.0 or 3.0, little-endian, C order, <f4
 * <i4 <u4 <f2, rank <= 4). On failure returns PX_ERR_IO/PX_ERR_NOT_FOUND/
 * PX_ERR_UNSUPPORTED with a message in err (errsz bytes) saying what is wrong
 * with the file, e.g. "x.npy: truncated: header says 1000 elements (4000
 * bytes) but only 3996 bytes of data follow". */
PxResult px_npy_read(const char *path, PxNpy *out, char *err, size_t errsz);
/* Parses a .npy image in memory (the same checks; name used in messages). */
PxResult px_npy_parse(const char *name, const unsigned char *p, size_t n, PxNpy *out, char *err,
                      size_t errsz);
PxResult px_npy_write(const char *path, PxDtype dtype, int rank, const int64_t *shape,
                      const void *data, char *err, size_t errsz);
void px_npy_free(PxNpy *n);
const char *px_npy_descr(PxDtype t); /* "<f4" ... */

/* ---- context ------------------------------------------------------------ */

typedef enum PxLogLevel { PX_LOG_DEBUG, PX_LOG_INFO, PX_LOG_WARN, PX_LOG_ERROR } PxLogLevel;
/* Called on the thread that made the call; msg is valid during the call. */
typedef void (*PxLogFn)(void *user, PxLogLevel level, const char *msg);

typedef struct PxConfig {
    /* Device choice, first that applies: device_index >= 0; device_name (a
     * case-insensitive substring of the device name); the PX_DEVICE
     * environment variable (an index or a name substring); else the first
     * discrete or integrated GPU, else the first other device (lavapipe). */
    int device_index;          /* default -1 */
    const char *device_name;   /* default NULL; copied */
    PxLogFn log;               /* default NULL: messages are dropped */
    void *log_user;
    int opt_level;             /* compiler -O level, default 2 */
    int timestamps;            /* launches start timed (px_launch_set_timing), default 1 */
    int backend;               /* PxBackend, default PX_BACKEND_AUTO */
    int cpu_threads;           /* CPU backend threads; 0: PX_CPU_THREADS or the cores */
    int no_subgroups;          /* 1: compile the shared-memory fallbacks even where the
                                  device has subgroup arithmetic; px_config_default
                                  sets it when PX_NO_SUBGROUPS is set */
    PxLimits limits;           /* px_limits_default; see "limits" above */
} PxConfig;

/* Where kernels run. AUTO: Vulkan when the instance has a device, else
 * the CPU (logged at PX_LOG_INFO: "backend: cpu (no Vulkan device: ...)");
 * the PX_BACKEND environment variable (cpu, vulkan or auto) sets the
 * default in px_config_default. CPU: kernels are JIT-compiled for the host
 * (LLVM) and run on a thread pool; buffers are host memory and no Vulkan
 * driver is needed; px_device_info then describes the host CPU (is_cpu,
 * name "CPU (LLVM JIT, N threads): <model>"). px_context_backend names the
 * one in use. */
typedef enum PxBackend { PX_BACKEND_AUTO, PX_BACKEND_VULKAN, PX_BACKEND_CPU } PxBackend;

typedef struct PxContext PxContext;
typedef struct PxModule PxModule;
typedef struct PxKernel PxKernel;
typedef struct PxBuffer PxBuffer;
typedef struct PxLaunch PxLaunch;

void px_config_default(PxConfig *cfg);
/* Creates the instance and device. cfg may be NULL (defaults). On failure
 * *out is set to NULL and, when err is not NULL, a malloc'd message is
 * stored there for the caller to px_free (there is no context to ask).
 * With no Vulkan driver installed and backend VULKAN (or AUTO with a device
 * picked by index, name or PX_DEVICE): PX_ERR_NO_DEVICE, "no Vulkan driver
 * found (install mesa-vulkan-drivers for a CPU device)"; plain AUTO runs on
 * the CPU backend instead. */
PxResult px_context_create(const PxConfig *cfg, PxContext **out, char **err);
void px_context_destroy(PxContext *ctx); /* NULL is fine; waits for the device */
/* The message of the last failure on ctx ("" when none); owned by ctx. */
const char *px_last_error(const PxContext *ctx);
/* "vulkan" or "cpu". */
const char *px_context_backend(const PxContext *ctx);

typedef struct PxDeviceInfo {
    char name[256];
    int index;                 /* index among the instance's devices */
    int is_cpu;                /* VK_PHYSICAL_DEVICE_TYPE_CPU */
    int has_half;              /* shaderFloat16 + 16-bit storage */
    int has_timestamps;
    double timestamp_period_ns;
    uint64_t max_storage_buffer_range; /* bytes */
    uint32_t subgroup_size;
    uint32_t max_shared_bytes;
    uint64_t device_local_bytes;
} PxDeviceInfo;
void px_device_info(const PxContext *ctx, PxDeviceInfo *info);

/* Frees a string or array the library handed over (diagnostics, errors). */
void px_free(void *p);

/* ---- modules and kernels ------------------------------------------------ */

/* Compiles source text (len bytes; need not be NUL-terminated). file names
 * it in diagnostics. *diags, when diags is not NULL, receives the rendered
 * warnings and errors (malloc'd, px_free it; NULL when there are none).
 * Returns PX_ERR_COMPILE when there are errors, and *out is NULL. */
PxResult px_module_compile(PxContext *ctx, const char *src, size_t len, const char *file,
                           PxModule **out, char **diags);
/* The same for a file; PX_ERR_IO / PX_ERR_NOT_FOUND when it cannot be read. */
PxResult px_module_compile_file(PxContext *ctx, const char *path, PxModule **out,
                                char **diags);
void px_module_destroy(PxModule *m); /* NULL is fine; its kernels go with it */
int px_module_kernel_count(const PxModule *m);
PxKernel *px_module_kernel_at(PxModule *m, int i);
/* The cost formulas (in the size symbols) and workload class of every
 * kernel of m, as `pxcc --emit=cost-json` prints them (docs/COST.md):
 * malloc'd JSON, px_free it; NULL when out of memory. */
char *px_module_cost_json(const PxModule *m);
/* name NULL: the module's only kernel (PX_ERR_INVALID when it has several). */
PxResult px_module_kernel(PxModule *m, const char *name, PxKernel **out);

typedef struct PxParamInfo {
    const char *name;          /* owned by the module */
    int is_buffer;
    PxDtype dtype;             /* scalar type or element type */
    int rank;                  /* buffers: 1..4 */
    const char *dims[4];       /* each extent: a literal ("16") or a symbol */
    int read, written;         /* some stage reads / writes it */
    int flexible;              /* T[] used elementwise: binds data of any rank */
} PxParamInfo;
const char *px_kernel_name(const PxKernel *k);
int px_kernel_param_count(const PxKernel *k);
void px_kernel_param(const PxKernel *k, int i, PxParamInfo *info);
int px_kernel_size_count(const PxKernel *k);            /* size symbols */
const char *px_kernel_size_name(const PxKernel *k, int i);
int px_kernel_stage_count(const PxKernel *k);            /* source-level stages */
const char *px_kernel_stage_name(const PxKernel *k, int i); /* "matmul", "grid", ... */
const char *px_kernel_class(const PxKernel *k);          /* "THROUGHPUT", ... */
/* CPU backend: wall ms the JIT took for this kernel (LLVM IR, passes,
 * native code); -1 on the Vulkan backend. */
double px_kernel_jit_ms(const PxKernel *k);

/* The compiler's cost figures for one stage (or the whole kernel, stage -1),
 * evaluated at a launch's bound sizes. Fields are -1 where the compiler
 * gives no figure. predicted_ns comes from the device profile. */
typedef struct PxCost {
    double flops;              /* floating-point operations */
    double int_ops;            /* integer operations */
    double bytes_read, bytes_written;
    double accesses;           /* element loads and stores executed */
    double checked_accesses;   /* of those, the ones with a bounds check */
    double uniform_accesses;   /* of those, loads at one address for every
                                  invocation (one load per subgroup) */
    int dispatches;            /* device dispatches this lowers to */
    double groups;             /* workgroups those launch (Vulkan; CPU: -1) */
    double predicted_ns;
} PxCost;

/* ---- buffers -------------------------------------------------------------- */

/* A zero-filled device buffer of shape[0..rank) elements of dtype. Rank 0
 * is one element. PX_ERR_TOO_LARGE when the byte size exceeds the device's
 * storage-buffer range (the message gives both). */
PxResult px_buffer_create(PxContext *ctx, PxDtype dtype, int rank, const int64_t *shape,
                          PxBuffer **out);
/* NULL is fine. b must not be in a running launch, and a launch it is
 * bound to must bind another buffer (or NULL) to that param before it
 * runs again. */
void px_buffer_destroy(PxBuffer *b);
PxDtype px_buffer_dtype(const PxBuffer *b);
int px_buffer_rank(const PxBuffer *b);
const int64_t *px_buffer_shape(const PxBuffer *b);  /* rank entries */
int64_t px_buffer_count(const PxBuffer *b);         /* elements */
size_t px_buffer_bytes(const PxBuffer *b);
/* Copy bytes from/to the host; bytes must equal px_buffer_bytes. Waits for
 * any launch still running. */
PxResult px_buffer_write(PxBuffer *b, const void *data, size_t bytes);
PxResult px_buffer_read(PxBuffer *b, void *data, size_t bytes);
/* Zero-copy access: *ptr gets b's memory as the host sees it (all
 * px_buffer_bytes of it), when the device memory is host-visible and
 * coherent: lavapipe, unified-memory GPUs and the CPU backend. Waits for
 * any launch still running first. The pointer is valid until
 * px_buffer_destroy; touching it while a launch that uses b runs is a
 * race (the caller's to avoid). PX_ERR_UNSUPPORTED and *ptr NULL on a
 * device whose buffers are not mappable: use px_buffer_read/write. */
PxResult px_buffer_map(PxBuffer *b, void **ptr);

/* ---- launches ----------------------------------------------------------------- */

PxResult px_launch_create(PxKernel *k, PxLaunch **out);
void px_launch_destroy(PxLaunch *l); /* waits for a pending run; frees its own buffers */

/* Bind a buffer parameter. origin, when not NULL, names where the data came
 * from in error messages ("--arg x=x.npy"); default "buffer bound to x".
 * The buffer stays the caller's. Its dtype must equal the parameter's, its
 * rank the parameter's (any rank for a flexible one); extents bind size
 * symbols, checked when the launch is prepared. */
PxResult px_launch_bind(PxLaunch *l, const char *param, PxBuffer *b, const char *origin);
/* Scalars, by the parameter's name; the setter's type must be the param's
 * (set_half for half takes a float and rounds it). */
PxResult px_launch_set_float(PxLaunch *l, const char *param, float v);
PxResult px_launch_set_half(PxLaunch *l, const char *param, float v);
PxResult px_launch_set_int(PxLaunch *l, const char *param, int32_t v);
PxResult px_launch_set_uint(PxLaunch *l, const char *param, uint32_t v);
/* Parse text as the scalar param's type ("2.5", "-3", "0x10"). */
PxResult px_launch_set_scalar_text(PxLaunch *l, const char *param, const char *text);
/* Bind a size symbol explicitly (origin as for px_launch_bind). */
PxResult px_launch_set_size(PxLaunch *l, const char *sym, int64_t value, const char *origin);

/* Resolves size symbols from bound shapes and explicit sizes, creates the
 * buffers of unbound parameters (zero-filled, from their declared or
 * produced shape) and checks everything. Called by run/submit when needed;
 * call it directly to see the output buffers before running. Errors name
 * both places of a disagreement and every buffer that needs an unbound
 * symbol. */
PxResult px_launch_prepare(PxLaunch *l);
/* After prepare: the buffer of a param (bound or created), NULL if none. */
PxBuffer *px_launch_buffer(PxLaunch *l, const char *param);
/* After prepare: a size symbol's value; PX_ERR_UNBOUND if it has none. */
PxResult px_launch_size(PxLaunch *l, const char *sym, int64_t *value);

/* Run and wait. */
PxResult px_launch_run(PxLaunch *l);
/* Submit without waiting; px_launch_wait waits (PX_ERR_NOT_READY when
 * nothing was submitted). A second submit waits for the first. */
PxResult px_launch_submit(PxLaunch *l);
PxResult px_launch_wait(PxLaunch *l);

/* Timing (on by default when PxConfig.timestamps is set and the device has
 * timestamps): whether runs of this launch write GPU timestamps. Off, runs
 * measure nothing (px_launch_stage_time_ns gives -1) and teach the
 * correction nothing, and a run is exactly a submit and a fence wait: on
 * lavapipe every timestamp costs more than a tiny dispatch. Changing it
 * re-records the launch's command buffer on the next run. */
PxResult px_launch_set_timing(PxLaunch *l, int on);

/* Per stage of the last completed run, for stage i in 0..n: */
int px_launch_stage_count(const PxLaunch *l);
const char *px_launch_stage_name(const PxLaunch *l, int i); /* e.g. "matmul" */
/* Measured GPU time of stage i (all its dispatches) in ns; -1 when the
 * device has no timestamps, timing is off or nothing ran. i = -1: the whole
 * launch. The times are read back from the device on the first call after a
 * run (not by the run itself), and that read lets the run teach its
 * kernel's correction; the next submit drops times nobody read. */
double px_launch_stage_time_ns(const PxLaunch *l, int i);
/* Cost figures of stage i (-1: whole kernel) at the bound sizes. */
PxResult px_launch_cost(PxLaunch *l, int i, PxCost *cost);

/* ---- prediction, measurement and correction (docs/COST.md) ------------------ */

/* The device profile predictions use: the file `pxrun --calibrate` saved
 * for this device ($XDG_CACHE_HOME/px/<device>.profile), loaded when the
 * context is created, else a conservative default (calibrated 0). */
typedef struct PxProfile {
    double bytes_per_s;        /* memory bandwidth */
    double flops_per_s, intops_per_s;
    double accesses_per_s;     /* element loads and stores */
    double checked_per_s;      /* the extra work of a bounds check */
    double group_s;            /* per workgroup of thread code and maps */
    double dispatch_s;         /* fixed cost per dispatch */
    double barrier_s;          /* fixed cost per barrier between dispatches */
    int calibrated;            /* 0: the default profile */
    char source[1024];         /* the file it was loaded from, or "default" */
} PxProfile;
void px_context_profile(const PxContext *ctx, PxProfile *out);

/* Measures ctx's device for the cost model: runs the calibration
 * micro-kernels `runs` times each (the median counts), fits a profile and
 * saves it where the next context for this device loads it
 * ($XDG_CACHE_HOME/px/<device>.profile); ctx keeps the profile it has.
 * *out gets the fitted profile, out->source the file. PX_ERR_UNSUPPORTED
 * when the device gave no times, PX_ERR_IO when the file cannot be
 * written. Takes a few seconds. */
PxResult px_calibrate(PxContext *ctx, int runs, PxProfile *out);

/* Prediction, callable before running: stage i (-1: whole kernel) at the
 * launch's bound sizes, in ns: the roofline figure of the profile
 * (PxCost.predicted_ns) times the kernel's correction. */
PxResult px_launch_predict_ns(PxLaunch *l, int i, double *ns);
/* Measurement after a run is px_launch_stage_time_ns. Each completed run
 * with a measured time that is read (px_launch_stage_time_ns or
 * px_launch_predict_ns before the next submit) updates its kernel's
 * correction (shared by all
 * launches of that kernel of that module): an exponentially weighted
 * geometric mean of measured / roofline-predicted. The factor is 1 until
 * the first measured run; *samples (may be NULL) gets how many runs it has
 * learned from. Reset forgets them. */
double px_kernel_correction(const PxKernel *k, int *samples);
void px_kernel_correction_reset(PxKernel *k);

#ifdef __cplusplus
}
#endif
#endif
