/*
 * sched.h — internals of the scheduler (include/pxsched.h): the objects
 * (sched.c), the policy (policy.c), the dispatchers (dispatch.c) and the
 * statistics (stats.c). Sections are named after the .c files.
 *
 * Who owns what, and which lock guards it
 * ----------------------------------------
 *   PxSched.mu (one mutex)  every VM's fields, queues, jobs, id tables and
 *       statistics, every device's policy state and counters. Held only
 *       for short bookkeeping: never across a device call or a compile.
 *   SchedDev.mu (one per device)  the device's PxContext and everything
 *       made from it (modules, buffers, launches, the VMs' kept
 *       launches): every px_* call on it. Held by whoever runs a slice
 *       (the dispatcher, or a submitter on an idle device:
 *       sched_submit_inline) to prepare and submit it and after its wait,
 *       not during it; by API threads for buffer copies and for adopting
 *       compiled code.
 *   SchedDev.jit_mu  a CPU device's shared JIT: compiles one at a time.
 *   PxSched.bal_mu  one px_sched_balance at a time (it migrates while
 *       holding it; nothing else takes it).
 *   Lock order: PxSched.bal_mu, then SchedDev.mu, then PxSched.mu; jit_mu
 *   alone. A migration never holds two SchedDev.mu at once.
 *   A VM's objects (SchedVm, its buffers and modules) are freed only by
 *   px_sched_vm_destroy and px_sched_destroy, after no job of it runs,
 *   and by px_vm_migrate (the old device's copies, after the VM moved).
 *   A VM's device changes only in px_vm_migrate, while the VM is paused.
 *
 * Bounds: at most max_queued live jobs per VM (queued, running or finished
 * and not yet waited for), 65535 VMs, 2^32-1 buffers or modules per VM.
 * Every wait on a peer is a wait on a job of this process: the device's
 * fence waits are bounded by the slice the dispatcher chose.
 */
#ifndef PX_SCHED_INT_H
#define PX_SCHED_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "pxsched.h"
#include "runtime/rt.h"

typedef struct SchedVm SchedVm;
typedef struct SchedDev SchedDev;

/* ===== sched.c: jobs, VMs, devices ===== */

typedef enum SchedJobState { JOB_QUEUED, JOB_RUNNING, JOB_DONE } SchedJobState;

typedef struct SchedJob {
    struct SchedJob *next;      /* in its VM's run queue (FIFO) */
    struct SchedJob *live_next; /* in its VM's list of live jobs */
    uint64_t ticket;
    SchedVm *vm;
    PxLaunch *l;                /* on the VM's device; destroyed under its mu */
    int realtime;               /* REALTIME class: earliest deadline first */
    int latency_sensitive;      /* REALTIME or INTERACTIVE: short slices */
    int64_t deadline_ns;        /* monotonic; REALTIME only */
    int64_t t_submit, t_start;  /* monotonic ns; t_start 0 until its first slice */
    SchedJobState state;
    int cancel;                 /* stop at the next slice boundary */
    /* slicing state (the dispatcher's, under SchedDev.mu) */
    int prepared;
    int nunits;
    const RtUnit *units;
    double *unit_ns;            /* predicted ns per group of each unit */
    int64_t total, done;        /* groups */
    int whole;                  /* the submission in flight is the whole launch */
    double gpu_ns;
    int slices;
    PxTicketResult res;
    int cls;                    /* workload class, px_sched_class_name's index */
    /* migration (migrate.c): the arguments as submitted (sched_args_copy;
     * freed with the launch), so the launch can be made again on another
     * device; stop_at > done: the dispatcher may run it up to stop_at
     * groups while its VM is paused (a stage boundary the target device
     * can continue from). Written under SchedDev.mu and PxSched.mu. */
    PxArg *args;
    int nargs;
    int64_t stop_at;
} SchedJob;

#define SCHED_LAT_RING 1024

/* Device ns per second of the scheduler's clock (seconds since PxSched.t0)
 * for the last SCHED_WIN_S seconds: the rolling windows of stats.c. A slot
 * holds second stamp[i] - 1 (0: never used); a slot of an older second is
 * reused. Under PxSched.mu. */
#define SCHED_WIN_S 64
typedef struct SchedWin {
    int64_t stamp[SCHED_WIN_S];
    uint64_t ns[SCHED_WIN_S];
} SchedWin;

typedef struct SchedObj {
    uint32_t id;
    void *p;                    /* PxBuffer * or SchedMod * */
    /* buffers only, under SchedDev.mu (evict.c): */
    void *host;                 /* host copy of its bytes (malloc'd), NULL: none */
    uint64_t used;              /* the device's LRU clock at its last use */
    int clean;                  /* host holds the buffer's current bytes */
    int evicted;                /* no device memory: the bytes are in host (or lost) */
    int lost;                   /* its bytes went with a lost device (loss.c) */
    /* buffers: host writes and launches bound to it so far; a migration's
     * copy of it made before is stale once this moved (migrate.c) */
    uint64_t writes;
} SchedObj;

/* A compiled module, shared by every VM of its device that compiled the
 * same source under the same file name (the compile cache): VMs hold
 * references, never the module itself, so no VM sees another's buffers or
 * launches through it — only code is shared. */
typedef struct SchedMod {
    PxModule *m;                /* on dev's context; destroyed under dev->mu */
    int refs;                   /* VM references, + 1 while cached (PxSched.mu) */
    int cached;                 /* in dev->cache (PxSched.mu) */
    char *key;                  /* file NUL source */
    size_t keylen;
    char *diags;                /* its warnings (NULL: none), given on every hit */
    uint64_t used;              /* the cache clock at its last hit */
} SchedMod;

#define SCHED_CACHE_DEFAULT 64

struct SchedVm {
    PxVmConfig cfg;
    SchedDev *dev;
    uint64_t mem_used;
    /* policy state */
    double vt;                  /* virtual time: its device ns * 100 / share */
    double tokens_ns;           /* fixed policy: device ns it may still use */
    int64_t tokens_at;          /* when tokens_ns was last refilled */
    /* jobs */
    SchedJob *head, *tail;      /* not finished, in submit order */
    SchedJob *live;             /* every job not yet waited for */
    int nlive, nqueued;
    uint64_t next_ticket;
    uint64_t submitted, finished; /* buffer copies wait for finished >= submitted */
    /* objects */
    FE_VEC(SchedObj) bufs, mods;
    uint32_t next_buf, next_mod;
    int dying;
    /* statistics */
    uint64_t gpu_ns, done, failed, slices;
    double lat_us[SCHED_LAT_RING];
    uint64_t nlat;
    uint64_t evictions, bytes_evicted, bytes_restored, launches_lost; /* PxSched.mu */
    uint64_t lat_le[PX_LATENCY_BUCKETS]; /* launches done per bucket (not cumulative) */
    double lat_sum_us;
    uint64_t cls_done[PX_SCHED_CLASSES], cls_failed[PX_SCHED_CLASSES];
    SchedWin win;               /* its device ns per second */
    uint64_t incarnation;
    /* migration (migrate.c), under PxSched.mu: `migrating` while
     * px_vm_migrate works on the VM (one at a time; destroy waits for it);
     * `paused` while no new slice of it may start and API calls that reach
     * its device wait (sched_vm_settle). */
    int migrating, paused;
    uint64_t migrations;
    uint64_t bal_gpu_ns;        /* gpu_ns at the last balance period (PxSched.mu) */
    int bal_cool;               /* balance periods it still sits out */
    /* the launch of its last job that finished well and made no output
     * buffers, kept on dev for its next submit of the same kernel with
     * the same argument names and kinds (sched_spare_take): binding equal
     * values again leaves it prepared and recorded, so the launch runs as
     * recorded, with no launch made, planned or recorded. spare_args: its
     * arguments (sched_args_copy). Under SchedDev.mu of dev; dropped when
     * a buffer or module of the VM goes, the VM moves or dies, or dev is
     * lost (its descriptors name device objects). */
    PxLaunch *spare;
    PxArg *spare_args;
    int spare_nargs;
};

struct SchedDev {
    int index;
    PxSched *s;
    PxContext *ctx;
    pthread_mutex_t mu;         /* the context (see the header comment) */
    pthread_mutex_t jit_mu;
    pthread_cond_t work;        /* with PxSched.mu: a job arrived, or stop */
    pthread_t thread;
    int started;
    /* a slice runs on d now (PxSched.mu): set from the pick to the end of
     * the slice, by the dispatcher or by a submitter running it inline
     * (sched_submit_inline); at most one slice of d runs at a time */
    int busy;
    uint64_t capacity, quota_sum, mem_used;
    double share_sum;
    uint64_t busy_ns;
    double vclock;              /* the virtual time a VM that wakes up starts from */
    int64_t last_ls_ns;         /* when a latency-sensitive job was last queued */
    uint64_t seq;               /* slices picked so far */
    /* the compile cache (PxSched.mu): at most PxSched.cache_max entries */
    SchedMod **cache;
    int ncache;
    /* oversubscription (evict.c): bytes of its buffers in device memory,
     * written under mu and PxSched.mu (read under either); at most
     * capacity. lru: the clock of SchedObj.used (mu). */
    uint64_t resident, lru;
    uint64_t evictions, bytes_evicted, bytes_restored; /* PxSched.mu */
    /* device loss (loss.c) */
    atomic_int lose_next;       /* test fault: the next slice wait reports a loss */
    int dead;                   /* lost and not recreated: every use fails (mu) */
    uint64_t losses, launches_lost; /* PxSched.mu */
    SchedWin win;               /* busy ns per second */
    uint64_t migrations_in, migrations_out; /* VMs moved here / away (PxSched.mu) */
    uint64_t balance_in, balance_out;       /* of those, px_sched_balance's */
    uint64_t bal_busy_ns;       /* busy_ns at the last balance period (PxSched.mu) */
    int bal_cool;               /* balance periods it still sits out */
};

struct PxSched {
    pthread_mutex_t mu;
    pthread_cond_t done;        /* with mu: a job finished, or a running job stopped */
    PxPolicy policy;
    int64_t slice_ns, long_slice_ns;
    int max_queued;
    PxLogFn log;
    void *log_user;
    int stop;
    int64_t t0;
    int ndev;
    SchedDev dev[PX_SCHED_MAX_DEVICES];
    SchedVm **vms;              /* [65536]: by id */
    uint32_t *order;            /* ids in creation order */
    int nvms;
    Arena *arena;               /* the VMs' object tables */
    int cache_max;              /* compile cache entries per device; 0: off */
    uint64_t cache_clock, cache_hits, cache_misses, cache_evictions;
    double oversub;             /* quotas may sum to capacity x this; 1: off */
    int host_copies;            /* PxSchedConfig.host_copies, or oversubscribed */
    uint64_t vms_created;       /* incarnations handed out */
    uint64_t balance_moves;     /* migrations px_sched_balance made (PxSched.mu) */
    int64_t bal_at;             /* when the balance period began; 0: not yet */
    pthread_mutex_t bal_mu;     /* one px_sched_balance at a time; before PxSched.mu */
};

int64_t sched_now_ns(void);
/* Sets the calling thread's message and returns r. */
PxResult sched_fail(PxResult r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sched_log(PxSched *s, PxLogLevel lv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Under PxSched.mu: a job is finished (result in job->res); it leaves the
 * run queue and waits in the live list for px_vm_wait. */
void sched_job_finish(PxSched *s, SchedJob *j);
/* Under s->mu: room on d for share and quota beyond what `except` holds
 * there; PX_ERR_QUOTA saying what is free when not. */
PxResult sched_check_room(PxSched *s, SchedDev *d, double share, uint64_t quota, const SchedVm *except);
/* 1 when launch l (NULL: none) has b bound to a parameter it writes. */
int sched_launch_writes(const PxLaunch *l, const PxBuffer *b);
/* Under s->mu: waits until no migration has vm paused; then the VM (NULL
 * with the message set when it does not exist). */
SchedVm *sched_vm_settle(PxSched *s, uint32_t id);
/* A reference to d's compiled code for key (file NUL source, kl bytes;
 * malloc'd, taken over): the compile cache's, or built now and cached.
 * *diags (may be NULL) gets its warnings. Holds no lock on entry. */
PxResult sched_mod_get(PxSched *s, SchedDev *d, char *key, size_t kl, char **diags, SchedMod **out);
/* Under s->mu: one reference less; sm when it was the last (free it with
 * sched_mod_free under d->mu, without s->mu). */
SchedMod *sched_mod_unref(SchedMod *sm);
void sched_mod_free(SchedDev *d, SchedMod *sm);
/* One reference less to d's sm, freed when it was the last; the caller
 * holds d->mu (locked 1) or no lock (0). */
void sched_mod_drop(PxSched *s, SchedDev *d, SchedMod *sm, int locked);
/* Under d->mu: binds a job's arguments on d's launch j->l and prepares it;
 * the buffers of j->res.outputs are bound to their params again, other
 * unbound params get new buffers of the VM. */
PxResult sched_bind_args(PxSched *s, SchedDev *d, SchedVm *vm, SchedJob *j, const PxArg *args, int nargs);

/* ===== policy.c: who runs next, and for how long ===== */

/* Under PxSched.mu. The job to run next on d (its VM's head job), or NULL;
 * then *wake_ns is when a VM of d may become eligible (fixed policy), or 0
 * for "when work arrives". */
SchedJob *sched_pick(PxSched *s, SchedDev *d, int64_t now, int64_t *wake_ns);
/* The slice length for d now. */
int64_t sched_slice_ns(const PxSched *s, const SchedDev *d, int64_t now);
/* A VM's run queue went from empty to non-empty: it starts from the
 * device's virtual clock, so time spent idle is no credit. */
void sched_wake(PxSched *s, SchedVm *vm, int64_t now);
/* Charges ns of device time to vm. */
void sched_charge(PxSched *s, SchedVm *vm, double ns, int64_t now);

/* ===== dispatch.c: one thread per device ===== */

void *sched_dispatcher(void *dev);
/* Under PxSched.mu (released while the slice runs, held on return): one
 * slice of j, which sched_pick chose for d now; d->busy from the pick (or
 * sched_submit_inline's claim) to the end of the slice. on_dispatcher 0: a
 * submitter's thread, which then wakes the dispatcher if work is waiting. */
void sched_run_slice(PxSched *s, SchedDev *d, SchedJob *j, int64_t now, int on_dispatcher);
/* Under PxSched.mu, j just queued: 1 when its submitter runs its first
 * slice itself (the device is idle and the policy picks j now: what the
 * dispatcher would do, without the two thread hand-offs), d->busy and
 * j->state JOB_RUNNING set (the claim); 0: the dispatcher's. */
int sched_submit_inline(PxSched *s, SchedDev *d, SchedJob *j);
/* Under d->mu: j's launch made ready, its units and predicted ns per group. */
PxResult sched_job_plan(SchedDev *d, SchedJob *j);
/* Under SchedDev.mu: frees a job's launch. */
void sched_job_release(SchedDev *d, SchedJob *j);
/* Under vm->dev's mu: the kept launch (SchedVm.spare) when it is of k and
 * args name the same parameters with the same kinds in the same order as
 * its own did (so binding args leaves nothing of the last job bound that
 * this one does not bind), taken from vm; else NULL. *same: when every
 * value is equal too, the kept copy of the arguments (the launch is bound
 * as args would bind it: no binding to do), else NULL. */
PxLaunch *sched_spare_take(SchedVm *vm, const PxKernel *k, const PxArg *args, int nargs, PxArg **same);
/* Under vm->dev's mu: frees the kept launch, if any. */
void sched_spare_drop(SchedVm *vm);

/* ===== evict.c: oversubscription, host copies ===== */

/* A buffer is RESIDENT (device memory, SchedObj.evicted 0) or EVICTED (its
 * device memory freed, its bytes in SchedObj.host). Every buffer may also
 * have a host copy: made by an eviction or a host read or write, and
 * CLEAN while no launch that writes the buffer has started since; a clean
 * buffer is evicted without a copy and survives a device loss. */

/* Under d->mu: vm's slot of its buffer b (NULL: not vm's). */
SchedObj *sched_buf_slot(SchedVm *vm, const PxBuffer *b);
/* Under d->mu: room for `bytes` more device memory on d, evicting least
 * recently used buffers (first those of idle VMs) when oversubscription
 * is on; never one bound to pin or to the launch running on d. */
PxResult sched_make_room(PxSched *s, SchedDev *d, uint64_t bytes, const SchedJob *pin);
/* Under d->mu and PxSched.mu: a buffer of d's VMs was made (resident) or
 * leaves (its host copy is freed). */
void sched_buf_made(SchedDev *d, uint64_t bytes);
void sched_buf_drop(SchedDev *d, SchedObj *o);
/* Under d->mu, before j's launch could fit on d at all: PX_ERR_QUOTA with
 * the bytes its buffers need at once and the capacity, into err. */
PxResult sched_launch_fits(const PxSched *s, const SchedDev *d, const SchedJob *j, char *err, size_t n);
/* Under d->mu, in the dispatcher before each slice of j: every buffer j
 * binds is resident (restored from its host copy, evicting others), and a
 * prepared program whose buffers moved is recorded again. On failure the
 * reason is in j->res.error. */
PxResult sched_make_resident(PxSched *s, SchedDev *d, SchedJob *j);
/* Under d->mu: a host read or write of vm's buffer b, through its host
 * copy when evicted; resident copies refresh the host copy. */
PxResult sched_buf_copy(SchedDev *d, SchedVm *vm, PxBuffer *b, void *data, size_t bytes, int write);
/* Under d->mu: vm's buffer b's bytes into data (b's size), its state
 * unchanged: from its host copy when evicted, zeros when lost (a
 * migration carries the lost mark with it). */
PxResult sched_buf_peek(SchedDev *d, SchedVm *vm, PxBuffer *b, void *data);

/* ===== loss.c: device loss ===== */

/* The dispatcher's wait for j's slice; reports PX_ERR_DEVICE_LOST once
 * after sched_inject_loss. No lock held. */
PxResult sched_dev_wait(SchedDev *d, SchedJob *j);
/* Under d->mu, in d's dispatcher, after a submit or wait of j reported
 * PX_ERR_DEVICE_LOST: fails j and every started launch of d, recreates
 * the device's context in place, keeps queued launches (docs/SCHEDULER.md,
 * "Device loss"). j->res.error says what happened. */
void sched_device_lost(PxSched *s, SchedDev *d, SchedJob *j);
/* Test-only fault injection (not reachable by tenants): the next slice
 * wait on device `device` reports the device lost. PX_ERR_UNSUPPORTED on
 * a CPU device (the host cannot be lost, nor its JIT code recreated). */
PxResult sched_inject_loss(PxSched *s, int device);
/* Under d->mu: PX_OK, or PX_ERR_DEVICE_LOST (message set) when d was lost
 * and could not be opened again. */
PxResult sched_dev_alive(const SchedDev *d);
/* ===== migrate.c: moving a VM to another device (px_vm_migrate) ===== */

/* Copies of a submit's arguments (names included) in one allocation. */
PxResult sched_args_copy(const PxArg *args, int nargs, PxArg **out);
/* Under s->mu: the dispatcher must not start a slice of vm now (paused by
 * a migration, except a launch draining to its stop_at). */
int sched_vm_held(const SchedVm *vm);

/* ===== balance.c: moving load between devices (px_sched_balance) ===== */

/* One device and one VM as the balance policy sees a period. */
typedef struct SchedBalDev {
    double busy;                /* busy fraction of the period, 0..1 */
    double share_free;          /* percent */
    uint64_t mem_free;          /* bytes of capacity no quota holds */
    int cooling;                /* sits out this period */
} SchedBalDev;
typedef struct SchedBalVm {
    int device;
    double load;                /* its device-time fraction of the period */
    double share;
    uint64_t quota, bytes;
    int cooling;
} SchedBalVm;
/* The policy, pure (no lock, no state): the index of the VM to move and
 * *to its target, or -1 for no move. */
int sched_balance_pick(const SchedBalDev *d, int nd, const SchedBalVm *v, int nv, const PxBalanceConfig *c, int *to);

/* ===== stats.c ===== */

/* Under PxSched.mu, as everything here. */
void sched_vm_stats(const SchedVm *vm, PxVmStats *out);
void sched_dev_windows(const SchedDev *d, PxDeviceStats *out);
void sched_record_latency(SchedVm *vm, double us);
/* A job finished: its class's done or failed counter. */
void sched_record_class(SchedVm *vm, const SchedJob *j);
/* ns of device time charged to vm now: the windows of vm and its device. */
void sched_record_busy(SchedVm *vm, uint64_t ns, int64_t now);
/* The index of a class name (px_kernel_class), BATCH for an unknown one. */
int sched_class_index(const char *name);

#endif
