"""The C declarations the package uses: a subset of include/px.h,
include/pxsched.h and include/pxclient.h, written for cffi's ABI mode.

This is the only place the package mirrors C. cffi cannot read the headers
themselves (their macros), so tests/test_abi.py compiles a C program that
prints sizeof/offsetof of every struct below and the value of every enum
constant, and compares them with what cffi computes from this text: a
header change that moves a field fails that test.
"""

CDEF = r"""
typedef int PxResult;   /* enum PxResult: int-sized */
typedef int PxDtype;
typedef int PxLogLevel;
typedef int PxPolicy;
typedef int PxArgKind;
typedef void (*PxLogFn)(void *user, PxLogLevel level, const char *msg);

typedef struct PxContext PxContext;
typedef struct PxModule PxModule;
typedef struct PxKernel PxKernel;
typedef struct PxBuffer PxBuffer;
typedef struct PxLaunch PxLaunch;
typedef struct PxSched PxSched;
typedef struct PxClient PxClient;
typedef struct PxClientModule PxClientModule;

const char *px_version(void);
const char *px_result_string(PxResult r);
size_t px_dtype_size(PxDtype t);
void px_free(void *p);

typedef struct PxLimits {
    size_t source_bytes;
    int kernels;
    int statements;
    int stages;
    int stage_instructions;
    size_t spirv_bytes;
    size_t spirv_stage_bytes;
    int identifier_length;
    int loop_depth;
    double launch_budget_ns;
} PxLimits;

typedef struct PxConfig {
    int device_index;
    const char *device_name;
    PxLogFn log;
    void *log_user;
    int opt_level;
    int timestamps;
    int backend;
    int cpu_threads;
    int no_subgroups;
    PxLimits limits;
} PxConfig;

typedef struct PxDeviceInfo {
    char name[256];
    int index;
    int is_cpu;
    int has_half;
    int has_timestamps;
    double timestamp_period_ns;
    uint64_t max_storage_buffer_range;
    uint32_t subgroup_size;
    uint32_t max_shared_bytes;
    uint64_t device_local_bytes;
} PxDeviceInfo;

void px_config_default(PxConfig *cfg);
PxResult px_context_create(const PxConfig *cfg, PxContext **out, char **err);
void px_context_destroy(PxContext *ctx);
const char *px_last_error(const PxContext *ctx);
const char *px_context_backend(const PxContext *ctx);
void px_device_info(const PxContext *ctx, PxDeviceInfo *info);

PxResult px_module_compile(PxContext *ctx, const char *src, size_t len, const char *file,
                           PxModule **out, char **diags);
void px_module_destroy(PxModule *m);
int px_module_kernel_count(const PxModule *m);
PxKernel *px_module_kernel_at(PxModule *m, int i);
PxResult px_module_kernel(PxModule *m, const char *name, PxKernel **out);
char *px_module_cost_json(const PxModule *m);

typedef struct PxParamInfo {
    const char *name;
    int is_buffer;
    PxDtype dtype;
    int rank;
    const char *dims[4];
    int read, written;
    int flexible;
} PxParamInfo;
const char *px_kernel_name(const PxKernel *k);
int px_kernel_param_count(const PxKernel *k);
void px_kernel_param(const PxKernel *k, int i, PxParamInfo *info);
int px_kernel_size_count(const PxKernel *k);
const char *px_kernel_size_name(const PxKernel *k, int i);
int px_kernel_stage_count(const PxKernel *k);
const char *px_kernel_stage_name(const PxKernel *k, int i);
const char *px_kernel_class(const PxKernel *k);

typedef struct PxCost {
    double flops;
    double int_ops;
    double bytes_read, bytes_written;
    double accesses;
    double checked_accesses;
    double uniform_accesses;
    int dispatches;
    double groups;
    double predicted_ns;
} PxCost;

PxResult px_buffer_create(PxContext *ctx, PxDtype dtype, int rank, const int64_t *shape, PxBuffer **out);
void px_buffer_destroy(PxBuffer *b);
PxResult px_buffer_write(PxBuffer *b, const void *data, size_t bytes);
PxResult px_buffer_read(PxBuffer *b, void *data, size_t bytes);
PxResult px_buffer_map(PxBuffer *b, void **ptr);
PxDtype px_buffer_dtype(const PxBuffer *b);
int px_buffer_rank(const PxBuffer *b);
const int64_t *px_buffer_shape(const PxBuffer *b);
size_t px_buffer_bytes(const PxBuffer *b);

PxResult px_launch_create(PxKernel *k, PxLaunch **out);
void px_launch_destroy(PxLaunch *l);
PxResult px_launch_bind(PxLaunch *l, const char *param, PxBuffer *b, const char *origin);
PxResult px_launch_set_float(PxLaunch *l, const char *param, float v);
PxResult px_launch_set_half(PxLaunch *l, const char *param, float v);
PxResult px_launch_set_int(PxLaunch *l, const char *param, int32_t v);
PxResult px_launch_set_uint(PxLaunch *l, const char *param, uint32_t v);
PxResult px_launch_set_size(PxLaunch *l, const char *sym, int64_t value, const char *origin);
PxResult px_launch_prepare(PxLaunch *l);
PxBuffer *px_launch_buffer(PxLaunch *l, const char *param);
PxResult px_launch_run(PxLaunch *l);
PxResult px_launch_cost(PxLaunch *l, int i, PxCost *cost);
PxResult px_launch_predict_ns(PxLaunch *l, int i, double *ns);
double px_launch_stage_time_ns(const PxLaunch *l, int i);

/* pxsched.h */
typedef struct PxSchedConfig {
    PxPolicy policy;
    int slice_us;
    int long_slice_us;
    int ndevices;
    PxContext *devices[16];
    uint64_t capacity[16];
    int max_queued;
    PxLogFn log;
    void *log_user;
    int compile_cache;
    double oversubscribe;
    int host_copies;
} PxSchedConfig;
void px_sched_config_default(PxSchedConfig *cfg);
PxResult px_sched_create(const PxSchedConfig *cfg, PxSched **out);
void px_sched_destroy(PxSched *s);
const char *px_sched_last_error(void);
PxResult px_sched_set_policy(PxSched *s, PxPolicy policy, int slice_us, int long_slice_us);

typedef struct PxVmConfig {
    uint32_t id;
    char name[64];
    char profile[8];
    uint64_t mem_quota;
    double share;
    int device;
} PxVmConfig;
PxResult px_vm_spec_parse(const char *spec, PxVmConfig *c, char *err, size_t errsz);
PxResult px_sched_vm_create(PxSched *s, const PxVmConfig *c);
PxResult px_sched_vm_set(PxSched *s, const PxVmConfig *c);
PxResult px_sched_vm_destroy(PxSched *s, uint32_t vm);

typedef struct PxMigrateStats {
    double total_ns;
    double downtime_ns;
    uint64_t bytes;
    int launches_moved;
    uint64_t bytes_in_pause;
} PxMigrateStats;
PxResult px_vm_migrate(PxSched *s, uint32_t vm, int device, PxMigrateStats *out);

PxResult px_vm_compile(PxSched *s, uint32_t vm, const char *src, size_t len, const char *file,
                       uint32_t *module, char **diags);
PxResult px_vm_module_destroy(PxSched *s, uint32_t vm, uint32_t module);
PxResult px_vm_module_kernel(PxSched *s, uint32_t vm, uint32_t module, const char *kernel,
                             const PxKernel **out);
PxResult px_vm_buffer_create(PxSched *s, uint32_t vm, PxDtype dtype, int rank, const int64_t *shape,
                             uint32_t *buffer);
PxResult px_vm_buffer_destroy(PxSched *s, uint32_t vm, uint32_t buffer);
PxResult px_vm_buffer_write(PxSched *s, uint32_t vm, uint32_t buffer, const void *data, size_t bytes);
PxResult px_vm_buffer_read(PxSched *s, uint32_t vm, uint32_t buffer, void *data, size_t bytes);
PxResult px_vm_buffer_info(PxSched *s, uint32_t vm, uint32_t buffer, PxDtype *dtype, int *rank,
                           int64_t *shape);

typedef struct PxArg {
    const char *name;
    PxArgKind kind;
    uint32_t buffer;
    double f;
    int64_t i;
} PxArg;
PxResult px_vm_submit(PxSched *s, uint32_t vm, uint32_t module, const char *kernel, const PxArg *args,
                      int nargs, uint64_t *ticket);

typedef struct PxTicketResult {
    PxResult result;
    char error[512];
    double gpu_ns;
    double latency_ns;
    double wait_ns;
    int slices;
    uint64_t start_seq;
    int noutputs;
    struct {
        char param[64];
        uint32_t buffer;
    } outputs[16];
} PxTicketResult;
PxResult px_vm_wait(PxSched *s, uint32_t vm, uint64_t ticket, int timeout_ms, PxTicketResult *res);
PxResult px_vm_cancel(PxSched *s, uint32_t vm, uint64_t ticket);

typedef struct PxVmStats {
    uint32_t id;
    char name[64];
    char profile[8];
    int device;
    uint64_t mem_quota_bytes, mem_used_bytes;
    double share;
    uint64_t gpu_ns;
    uint64_t launches_done, launches_failed;
    int queued;
    int running;
    double latency_p50_us, latency_p99_us;
    uint64_t slices;
    uint64_t evictions;
    uint64_t bytes_evicted, bytes_restored;
    uint64_t launches_lost;
    double achieved_10s, achieved_60s;
    uint64_t latency_le[17];
    double latency_sum_us;
    uint64_t class_done[4], class_failed[4];
    uint64_t incarnation;
    uint64_t migrations;
} PxVmStats;

typedef struct PxDeviceStats {
    int index;
    char name[256];
    uint64_t memory_bytes, memory_used_bytes;
    uint64_t busy_ns;
    double share_used;
    uint64_t memory_resident_bytes;
    uint64_t evictions, bytes_evicted, bytes_restored;
    uint64_t losses;
    uint64_t launches_lost;
    double busy_10s, busy_60s;
    uint64_t migrations_in, migrations_out;
    int vms;
    uint64_t balance_in, balance_out;
} PxDeviceStats;

typedef struct PxCacheStats {
    uint64_t hits, misses, evictions;
    int entries, capacity;
} PxCacheStats;
void px_sched_cache_stats(PxSched *s, PxCacheStats *out);
int px_sched_device_count(const PxSched *s);
PxResult px_sched_device_stats(PxSched *s, int device, PxDeviceStats *out);
int px_sched_vm_ids(PxSched *s, uint32_t *ids, int max);
PxResult px_sched_vm_stats(PxSched *s, uint32_t vm, PxVmStats *out);
char *px_sched_status_json(PxSched *s);

/* pxclient.h */
PxResult px_client_connect(const char *dir, uint32_t vm, PxClient **out, char **err);
void px_client_close(PxClient *c);
const char *px_client_last_error(void);
const char *px_client_device(const PxClient *c);
uint32_t px_client_vm(const PxClient *c);
PxResult px_client_compile(PxClient *c, const char *src, size_t len, const char *file, const char *kernel,
                           PxClientModule **out, char **diags);
void px_client_module_free(PxClientModule *m);
const char *px_client_kernel_name(const PxClientModule *m);
const char *px_client_kernel_class(const PxClientModule *m);
int px_client_kernel_param_count(const PxClientModule *m);
void px_client_kernel_param(const PxClientModule *m, int i, PxParamInfo *info);
int px_client_kernel_size_count(const PxClientModule *m);
const char *px_client_kernel_size_name(const PxClientModule *m, int i);
PxResult px_client_buffer_create(PxClient *c, PxDtype dtype, int rank, const int64_t *shape, uint32_t *buffer);
PxResult px_client_buffer_free(PxClient *c, uint32_t buffer);
PxResult px_client_buffer_write(PxClient *c, uint32_t buffer, const void *data, size_t bytes);
PxResult px_client_buffer_read(PxClient *c, uint32_t buffer, void *data, size_t bytes);
PxResult px_client_buffer_info(PxClient *c, uint32_t buffer, PxDtype *dtype, int *rank, int64_t *shape);
PxResult px_client_submit(PxClient *c, const PxClientModule *m, const PxArg *args, int nargs, uint64_t *ticket);
PxResult px_client_wait(PxClient *c, uint64_t ticket, int timeout_ms, PxTicketResult *res);
PxResult px_client_stats(PxClient *c, PxVmStats *out);
"""

# Structs mirrored above, checked field by field against the headers.
STRUCTS = ("PxLimits", "PxConfig", "PxDeviceInfo", "PxParamInfo", "PxCost", "PxSchedConfig",
           "PxVmConfig", "PxMigrateStats", "PxArg", "PxTicketResult", "PxVmStats",
           "PxDeviceStats", "PxCacheStats")

# PxResult in the order of px.h's PX_RESULTS (the test checks each value).
RESULTS = ("PX_OK", "PX_ERR_INVALID", "PX_ERR_NO_DEVICE", "PX_ERR_DEVICE_LOST", "PX_ERR_OUT_OF_MEMORY",
           "PX_ERR_COMPILE", "PX_ERR_NOT_FOUND", "PX_ERR_SHAPE", "PX_ERR_UNBOUND", "PX_ERR_TOO_LARGE",
           "PX_ERR_UNSUPPORTED", "PX_ERR_IO", "PX_ERR_VULKAN", "PX_ERR_NOT_READY", "PX_ERR_INTERNAL",
           "PX_ERR_LIMIT", "PX_ERR_CANCELLED", "PX_ERR_QUOTA", "PX_ERR_BUSY")
# Other enum constants the package uses, by value.
CONSTANTS = {"PX_F32": 0, "PX_I32": 1, "PX_U32": 2, "PX_F16": 3,
             "PX_BACKEND_AUTO": 0, "PX_BACKEND_VULKAN": 1, "PX_BACKEND_CPU": 2,
             "PX_POLICY_FAIR": 0, "PX_POLICY_FIXED": 1,
             "PX_ARG_BUFFER": 0, "PX_ARG_FLOAT": 1, "PX_ARG_INT": 2, "PX_ARG_UINT": 3, "PX_ARG_SIZE": 4,
             "PX_SCHED_MAX_DEVICES": 16, "PX_MAX_OUTPUTS": 16}
