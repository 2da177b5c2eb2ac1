/*
 * pxsched.h — the PX scheduler: many virtual machines (tenants) share one
 * or more devices, each with an exact memory quota and a compute share of
 * its device, with kernels compiled, costed and time-sliced by PX itself.
 * It is the library a hypervisor process (pxhvd) embeds; see
 * docs/SCHEDULER.md for the policy and its measured figures, and
 * ../shared/px-hypervisor.md section 2 for what it promises.
 *
 * Objects and ownership
 * ---------------------
 *   PxSched    the scheduler over devices 0..n-1, each a PxContext the
 *              caller created and hands over: from px_sched_create until
 *              px_sched_destroy only the scheduler touches them (the caller
 *              destroys them afterwards). One dispatcher thread per device
 *              owns that device's queue.
 *   VM         a tenant, named by its id (1..65535). Its modules, buffers
 *              and tickets are named by ids of its own (1, 2, ...): a VM
 *              can only name what it owns, never another VM's.
 *   ticket     one submitted launch; every ticket gets exactly one result
 *              (px_sched_wait), done or an error saying why.
 *
 * Threads
 * -------
 * Every function may be called from any thread at once, for any VMs. Calls
 * for one VM are applied in the order they are made; its launches run and
 * complete in the order they were submitted. A buffer read or write waits
 * for that device's running slice (at most about one slice). Compiling
 * never holds a device: one tenant's large kernel does not stall others.
 * While a VM is migrated (px_vm_migrate) its calls that reach a device
 * wait for the move (about its downtime) and then go to the new device.
 *
 * Errors
 * ------
 * Every fallible call returns a PxResult; px_sched_last_error() is the
 * calling thread's message for its last failure (thread-local, valid until
 * that thread's next failing call). Quota refusals are PX_ERR_QUOTA naming
 * the VM, the bytes asked, in use and the quota. The library never prints
 * and never exits.
 */
#ifndef PX_SCHED_H
#define PX_SCHED_H

#include "px.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct PxSched PxSched;

typedef enum PxPolicy {
    PX_POLICY_FAIR,            /* work-conserving: an idle VM's share is lent to the busy
                                  ones in proportion to their shares and taken back at
                                  the next slice boundary */
    PX_POLICY_FIXED,           /* no VM ever gets more than its share */
} PxPolicy;

#define PX_SCHED_MAX_DEVICES 16

typedef struct PxSchedConfig {
    PxPolicy policy;           /* default PX_POLICY_FAIR */
    int slice_us;              /* slice length while a latency-sensitive VM is active;
                                  default 1000 */
    int long_slice_us;         /* slice length otherwise; default 8 * slice_us */
    int ndevices;              /* 1..PX_SCHED_MAX_DEVICES */
    PxContext *devices[PX_SCHED_MAX_DEVICES];
    /* Memory each device hands out to quotas, bytes; 0: the device's
     * device-local heap (PxDeviceInfo.device_local_bytes). */
    uint64_t capacity[PX_SCHED_MAX_DEVICES];
    int max_queued;            /* launches queued per VM before PX_ERR_BUSY; default 1024 */
    PxLogFn log;               /* scheduler events; called from any thread */
    void *log_user;
    /* Compiled modules kept per device for reuse by any VM compiling the
     * same source and file name (px_vm_compile); default 64, < 0: none. */
    int compile_cache;
    /* Oversubscription (docs/SCHEDULER.md, "Oversubscription"): the quotas
     * on a device may sum to capacity x this ratio (1..64; 0 or 1: off,
     * quotas fit the capacity). When a device's buffers would pass its
     * capacity, the least recently used buffers (idle VMs' first) are
     * evicted to host memory and restored before their VM's next launch. */
    double oversubscribe;
    /* Keep a host copy of every buffer the host writes or reads, so that
     * it survives a device loss (docs/SCHEDULER.md, "Device loss"): one
     * more memcpy per copy and host memory for the bytes. Always on while
     * oversubscribed (the copies make evicting those buffers free). */
    int host_copies;
} PxSchedConfig;

void px_sched_config_default(PxSchedConfig *cfg);
/* On failure *out is NULL and px_sched_last_error() says why. */
PxResult px_sched_create(const PxSchedConfig *cfg, PxSched **out);
/* Cancels every queued launch (their tickets get PX_ERR_CANCELLED), waits
 * for the running slices, stops the dispatchers and frees every VM's
 * modules and buffers. The contexts stay the caller's. NULL is fine. */
void px_sched_destroy(PxSched *s);
const char *px_sched_last_error(void);
/* Changes the policy or slice lengths live; 0 keeps a length. */
PxResult px_sched_set_policy(PxSched *s, PxPolicy policy, int slice_us, int long_slice_us);

/* ---- VMs ----------------------------------------------------------------- */

typedef struct PxVmConfig {
    uint32_t id;               /* 1..65535 */
    char name[64];
    char profile[8];           /* "Q1".."Q8", or "" when set by mem/share */
    uint64_t mem_quota;        /* bytes */
    double share;              /* percent of its device, 0 < share <= 100 */
    int device;                /* index; -1: the device with the most share free */
} PxVmConfig;

/* Parses a VM spec of the contract: a profile ("Q2") or a comma-separated
 * list of profile=Qn, mem=SIZE (K, M, G suffixes: powers of 1024),
 * share=PCT, device=INDEX, name=TEXT, over what *c already holds.
 * PX_ERR_INVALID with err (errsz bytes) naming the bad part. */
PxResult px_vm_spec_parse(const char *spec, PxVmConfig *c, char *err, size_t errsz);

/* Shares on a device sum to at most 100 and quotas to at most its
 * capacity, else PX_ERR_QUOTA saying what is free there. */
PxResult px_sched_vm_create(PxSched *s, const PxVmConfig *c);
/* Changes quota, share or name (not the id or device) live. A quota below
 * what the VM holds now is refused. */
PxResult px_sched_vm_set(PxSched *s, const PxVmConfig *c);
/* Cancels the VM's queued launches, waits for its running slice, frees its
 * modules and buffers. */
PxResult px_sched_vm_destroy(PxSched *s, uint32_t vm);

/* Live migration (docs/SCHEDULER.md, "Migration"): the VM's queue pauses at
 * a slice boundary, its buffers and modules move to device `device`, and
 * its queued and running launches continue there; tickets, ids and results
 * are unchanged (outputs bit-identical to an unmigrated run). Refused with
 * PX_ERR_QUOTA when its quota or share does not fit on the target. out may
 * be NULL. */
typedef struct PxMigrateStats {
    double total_ns;           /* the call, start to the VM running on the target */
    double downtime_ns;        /* while no launch of the VM could run */
    uint64_t bytes;            /* buffer bytes copied */
    int launches_moved;        /* queued or running launches continued there */
    uint64_t bytes_in_pause;   /* of bytes, those copied while the VM was paused (the
                                  rest was copied before, while it could not change) */
} PxMigrateStats;
PxResult px_vm_migrate(PxSched *s, uint32_t vm, int device, PxMigrateStats *out);

/* Auto-balance (docs/SCHEDULER.md, "Balance"): called once per period by
 * the embedder (pxhvd: --balance PERIOD). Each call measures every
 * device's busy fraction and every VM's device-time fraction since the
 * previous call (the first call only starts the measurement); when a
 * device was busier than `high` while another was below `low`, it
 * migrates the one VM that evens the two best without pushing the
 * receiver over `high` (of those that even them about as well, the one
 * with the fewest bytes to copy), and devices and VM involved sit out
 * the next `cooldown` periods. At most one move per call. */
typedef struct PxBalanceConfig {
    double high;               /* busy fraction; default 0.80 */
    double low;                /* default 0.40 */
    int cooldown;              /* periods; default 2 */
} PxBalanceConfig;
void px_balance_config_default(PxBalanceConfig *c);

typedef struct PxBalanceMove {
    int moved;                 /* 1 when a VM moved in this call */
    uint32_t vm;
    int from, to;
    double from_busy, to_busy; /* the two devices' busy fractions over the period */
    double vm_load;            /* the VM's device-time fraction over the period */
    PxMigrateStats stats;
} PxBalanceMove;
/* PX_OK also when nothing moved (out->moved 0); a failed migration is its
 * error (the VM stays where it was). out may be NULL. */
PxResult px_sched_balance(PxSched *s, const PxBalanceConfig *c, PxBalanceMove *out);

/* ---- a VM's modules and buffers ------------------------------------------ */

/* Compiles on the VM's device. *diags as px_module_compile's (px_free it).
 * *module gets the module's id in the VM. The same source and file name
 * compiled before on that device (by any VM) comes from the compile cache:
 * the VM gets a reference to the compiled code (modules only: never a
 * buffer or launch) with the same diagnostics. */
PxResult px_vm_compile(PxSched *s, uint32_t vm, const char *src, size_t len, const char *file,
                       uint32_t *module, char **diags);
PxResult px_vm_module_destroy(PxSched *s, uint32_t vm, uint32_t module);
/* The kernel `kernel` (NULL: the module's only one) of a VM's module, for
 * its metadata only (px_kernel_name, _class, _param, _size_*, _stage_*):
 * owned by the module and valid until the caller destroys that module, so
 * only a caller that alone decides when the module goes may keep it. */
PxResult px_vm_module_kernel(PxSched *s, uint32_t vm, uint32_t module, const char *kernel,
                             const PxKernel **out);

/* A zero-filled buffer charged to the VM's quota (PX_ERR_QUOTA past it). */
PxResult px_vm_buffer_create(PxSched *s, uint32_t vm, PxDtype dtype, int rank, const int64_t *shape,
                             uint32_t *buffer);
PxResult px_vm_buffer_destroy(PxSched *s, uint32_t vm, uint32_t buffer);
/* Host copies; bytes must be the buffer's size. They follow every launch
 * of the VM submitted before them (the call waits for those). */
PxResult px_vm_buffer_write(PxSched *s, uint32_t vm, uint32_t buffer, const void *data, size_t bytes);
PxResult px_vm_buffer_read(PxSched *s, uint32_t vm, uint32_t buffer, void *data, size_t bytes);
/* The buffer's element type, rank and shape (shape: 4 entries). */
PxResult px_vm_buffer_info(PxSched *s, uint32_t vm, uint32_t buffer, PxDtype *dtype, int *rank,
                           int64_t *shape);

/* ---- launches -------------------------------------------------------------- */

typedef enum PxArgKind {
    PX_ARG_BUFFER,             /* buffer: one of the VM's buffer ids */
    PX_ARG_FLOAT,              /* f (also for half params) */
    PX_ARG_INT,                /* i */
    PX_ARG_UINT,               /* i (0..2^32-1) */
    PX_ARG_SIZE,               /* i: binds the size symbol `name` */
} PxArgKind;

typedef struct PxArg {
    const char *name;          /* parameter or size symbol */
    PxArgKind kind;
    uint32_t buffer;
    double f;
    int64_t i;
} PxArg;

/* Submits kernel `kernel` (NULL: the module's only one) of a module of the
 * VM with these arguments, without waiting for the launch to finish. One
 * exception bounds the wait: when the device is idle and the policy would
 * pick this launch next, the calling thread runs its first slice itself
 * (at most one slice: docs/SCHEDULER.md, "A lone VM's launch: the fast path"), which saves a
 * lone VM two thread hand-offs per launch. Buffer parameters left unbound
 * get new buffers of the VM (charged to its quota, zero-filled, in the
 * shape the kernel gives them); their ids come back in the ticket's result.
 * Arguments are checked here: a bad one is an error of this call and no
 * ticket is made. PX_ERR_BUSY when the VM already has max_queued launches
 * waiting. */
PxResult px_vm_submit(PxSched *s, uint32_t vm, uint32_t module, const char *kernel, const PxArg *args,
                      int nargs, uint64_t *ticket);

#define PX_MAX_OUTPUTS 16
typedef struct PxTicketResult {
    PxResult result;           /* PX_OK, or why it failed (PX_ERR_CANCELLED ...) */
    char error[512];           /* "" when result is PX_OK */
    double gpu_ns;             /* device time of its slices */
    double latency_ns;         /* submit to done, wall clock */
    double wait_ns;            /* submit to its first slice starting */
    int slices;
    uint64_t start_seq;        /* its device's slice counter at its first slice:
                                  orders the launches of a device by start */
    int noutputs;              /* buffers the launch created for unbound params */
    struct {
        char param[64];
        uint32_t buffer;
    } outputs[PX_MAX_OUTPUTS];
} PxTicketResult;

/* Waits up to timeout_ms (< 0: for ever, 0: poll) for the ticket of VM vm.
 * PX_OK when it finished (whatever its result: see res->result; the
 * ticket is then gone), PX_ERR_NOT_READY on time-out, PX_ERR_NOT_FOUND
 * for an unknown ticket. res may be NULL. */
PxResult px_vm_wait(PxSched *s, uint32_t vm, uint64_t ticket, int timeout_ms, PxTicketResult *res);
/* A queued launch is removed; a running one stops at its next slice
 * boundary (its outputs then hold part of the work). Its ticket's result
 * is PX_ERR_CANCELLED. */
PxResult px_vm_cancel(PxSched *s, uint32_t vm, uint64_t ticket);

/* ---- statistics (the fields of pxctl status --json) ------------------------ */

/* Launch latency histogram bounds (docs/HYPERVISOR.md "Metrics"): 50 us,
 * 100 us, 250 us, 500 us, 1 ms ... 10 s in 1-2.5-5 steps. */
#define PX_LATENCY_BUCKETS 17
double px_sched_latency_bound_us(int i); /* 0..PX_LATENCY_BUCKETS-1 */
/* Workload classes of the compiler (px-language.md section 6), as counted
 * per VM: 0 REALTIME, 1 INTERACTIVE, 2 THROUGHPUT, 3 BATCH. */
#define PX_SCHED_CLASSES 4
const char *px_sched_class_name(int i);
/* The rolling windows of share achieved and busy time, and the history the
 * status JSON carries, are whole seconds of the scheduler's clock. */
#define PX_SCHED_HISTORY_S 60

typedef struct PxVmStats {
    uint32_t id;
    char name[64];
    char profile[8];
    int device;
    uint64_t mem_quota_bytes, mem_used_bytes;
    double share;              /* target, percent */
    uint64_t gpu_ns;           /* device time of its slices since it was created */
    uint64_t launches_done, launches_failed;
    int queued;                /* submitted and not finished */
    int running;               /* of those, 1 when one is on the device now */
    double latency_p50_us, latency_p99_us; /* of its last 1024 launches */
    uint64_t slices;
    /* oversubscription and device loss (counters only grow) */
    uint64_t evictions;        /* its buffers moved out of device memory */
    uint64_t bytes_evicted, bytes_restored;
    uint64_t launches_lost;    /* its launches failed by a device loss */
    /* Its device time over its device's busy time in the last 10 s / 60 s
     * (the current second included), 0..1; 0 when the device was idle. */
    double achieved_10s, achieved_60s;
    /* Cumulative: launches done with latency <= px_sched_latency_bound_us(i);
     * launches_done is the count of all, latency_sum_us their sum. */
    uint64_t latency_le[PX_LATENCY_BUCKETS];
    double latency_sum_us;
    uint64_t class_done[PX_SCHED_CLASSES], class_failed[PX_SCHED_CLASSES];
    /* 1 + the VMs this scheduler created before it: a VM destroyed and made
     * again with the same id is a new incarnation, its counters start at 0 */
    uint64_t incarnation;
    uint64_t migrations;       /* times it moved to another device (px_vm_migrate) */
} PxVmStats;

typedef struct PxDeviceStats {
    int index;
    char name[256];
    uint64_t memory_bytes, memory_used_bytes;
    uint64_t busy_ns;          /* device time of every slice run on it */
    double share_used;         /* sum of its VMs' shares */
    uint64_t memory_resident_bytes; /* of memory_used_bytes, in device memory now */
    uint64_t evictions, bytes_evicted, bytes_restored;
    uint64_t losses;           /* times the device was lost (and recreated) */
    uint64_t launches_lost;    /* launches failed by those losses */
    /* busy_ns over wall time in the last 10 s / 60 s (the current second
     * included, never before the scheduler started), 0..1 */
    double busy_10s, busy_60s;
    uint64_t migrations_in, migrations_out; /* VMs moved to / away from it */
    int vms;                   /* VMs on it now */
    uint64_t balance_in, balance_out; /* of those, moves px_sched_balance made */
} PxDeviceStats;

typedef struct PxCacheStats {
    uint64_t hits, misses, evictions;
    int entries, capacity;     /* entries now, over all devices; capacity per device */
} PxCacheStats;
void px_sched_cache_stats(PxSched *s, PxCacheStats *out);

int px_sched_device_count(const PxSched *s);
PxResult px_sched_device_stats(PxSched *s, int device, PxDeviceStats *out);
/* The ids of the VMs that exist now (at most max), in creation order;
 * returns how many exist. */
int px_sched_vm_ids(PxSched *s, uint32_t *ids, int max);
PxResult px_sched_vm_stats(PxSched *s, uint32_t vm, PxVmStats *out);
/* The status object of the contract (pxctl status --json), malloc'd
 * (px_free it); NULL when out of memory. */
char *px_sched_status_json(PxSched *s);

#ifdef __cplusplus
}
#endif
#endif
