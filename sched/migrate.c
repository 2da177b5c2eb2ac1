/* migrate.c — live migration of a VM to another device (px_vm_migrate;
 * docs/SCHEDULER.md, "Migration").
 *
 * Stop and copy, at a slice boundary:
 *   1. reserve the VM's share and quota on the target (a refusal changes
 *      nothing) and mark it `migrating` (one migration at a time; destroy
 *      waits);
 *   2. pause it: no new slice of it starts, and API calls that reach its
 *      device wait (sched_vm_settle); the old device's lock is taken once,
 *      so a call that got past the check before the pause has finished;
 *   3. when the VM's running launch is in the middle of a stage that
 *      cannot continue elsewhere — the target slices it differently
 *      (another backend or device), or the stage is a multi-pass primitive
 *      whose partials live in the launch's own scratch — the dispatcher
 *      runs it on to the end of that stage first (stop_at): a stage
 *      boundary is a point every backend can continue from;
 *   4. copy: the buffers through host memory (same ids, shapes, bytes),
 *      the modules recompiled on the target from their source (the compile
 *      cache's key), and every unfinished launch made again there from its
 *      submitted arguments, continuing from the groups already done (the
 *      same unit structure) or from the stage boundary (another one);
 *   5. commit under PxSched.mu: the VM's tables point at the new objects,
 *      its device changes, it resumes; the old objects are freed.
 * Any failure in 4 undoes 4 and the reservation: the VM goes on, unchanged,
 * on its old device. Slices are exact ranges of independent groups, so a
 * launch continued elsewhere writes exactly what it would have (rt.h,
 * RtUnit): results are bit-identical to an unmigrated run.
 *
 * Threads and locks: this runs in the caller's thread and never holds two
 * device locks at once (each copy step takes one), nor PxSched.mu across a
 * device call. While the VM is paused only this thread touches its
 * objects: the dispatchers skip it, its API calls wait, px_vm_wait leaves
 * its finished tickets until it resumes. */
#include "sched.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

PxResult sched_args_copy(const PxArg *args, int nargs, PxArg **out)
{
    *out = NULL;
    if (nargs <= 0) return PX_OK;
    size_t names = 0;
    for (int i = 0; i < nargs; i++) names += strlen(args[i].name) + 1;
    PxArg *a = malloc(sizeof *a * (size_t)nargs + names);
    if (!a) return sched_fail(PX_ERR_OUT_OF_MEMORY, "out of memory");
    char *p = (char *)(a + nargs);
    for (int i = 0; i < nargs; i++) {
        size_t n = strlen(args[i].name) + 1;
        a[i] = args[i];
        memcpy(p, args[i].name, n);
        a[i].name = p;
        p += n;
    }
    *out = a;
    return PX_OK;
}

int sched_vm_held(const SchedVm *vm)
{
    if (!vm->paused) return 0;
    const SchedJob *h = vm->head;
    return !(h && h->stop_at > h->done);
}

/* ---- where a launch can continue ------------------------------------------------ */

/* Groups of the units of stages below st (units run in stage order). */
static int64_t groups_before(const RtUnit *u, int n, int st)
{
    int64_t g = 0;
    for (int i = 0; i < n; i++)
        if (u[i].stage < st) g += u[i].groups;
    return g;
}

/* The stage of group pos; INT_MAX past the end. */
static int stage_of(const RtUnit *u, int n, int64_t pos)
{
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (pos < at + u[i].groups) return u[i].stage;
        at += u[i].groups;
    }
    return INT_MAX;
}

static int stage_ordered(const RtUnit *u, int n)
{
    for (int i = 1; i < n; i++)
        if (u[i].stage < u[i - 1].stage) return 0;
    return 1;
}

static int same_units(const SchedJob *a, const SchedJob *b)
{
    if (a->nunits != b->nunits || a->total != b->total) return 0;
    for (int i = 0; i < a->nunits; i++)
        if (a->units[i].stage != b->units[i].stage || a->units[i].groups != b->units[i].groups) return 0;
    return 1;
}

/* Launches are sliced the same way on both: same backend, same device. */
static int same_kind(const SchedDev *a, const SchedDev *b)
{
    return a->ctx->ops == b->ctx->ops && !strcmp(a->ctx->caps.info.name, b->ctx->caps.info.name);
}

static int units_of_stage(const RtUnit *u, int n, int st)
{
    int k = 0;
    for (int i = 0; i < n; i++) k += u[i].stage == st && u[i].groups > 0;
    return k;
}

/* Under s->mu, j not running: where j may stop to continue on another
 * device: j->done when it is at a stage boundary (or not started), or,
 * when the target slices it the same way (`exact`), inside a stage of one
 * unit; else the end of its stage. A stage of several units (a multi-pass
 * primitive) keeps partials in the launch's own scratch between them,
 * which does not move: such a stage finishes where it began. */
static int64_t stage_end(const SchedJob *j, int exact)
{
    if (!j->prepared || !j->nunits || j->done <= 0 || j->done >= j->total || !stage_ordered(j->units, j->nunits))
        return j->done;
    int st = stage_of(j->units, j->nunits, j->done);
    if (groups_before(j->units, j->nunits, st) == j->done) return j->done;
    if (exact && units_of_stage(j->units, j->nunits, st) == 1) return j->done;
    return groups_before(j->units, j->nunits, st + 1);
}

/* ---- the migration's state ------------------------------------------------------ */

typedef struct MigJob {
    SchedJob *j;               /* the VM's job (live while paused, see px_vm_wait) */
    SchedJob n;                /* its launch made again on the target */
} MigJob;

/* A target buffer made before the pause (precopy). */
typedef struct PreBuf {
    uint32_t id;
    PxDtype dtype;
    int rank;
    int64_t shape[4];
    size_t bytes;
    PxBuffer *dst;             /* NULL once move_buffers took it */
    int copied;                /* holds the buffer's bytes as of `writes` */
    uint64_t writes;
} PreBuf;

typedef struct Mig {
    PxSched *s;
    SchedVm *vm;
    SchedDev *from, *to;
    int nb, nm, nj;
    uint32_t *bid;
    uint64_t *bw;              /* [nb]: SchedObj.writes at the pause */
    unsigned char *bres;       /* [nb]: resident on the source at the commit (evict.c) */
    PxBuffer **bsrc, **bdst;   /* [nb] */
    SchedMod **msrc, **mdst;   /* [nm] */
    SchedMod **pre;            /* [npre]: compiled on the target before the pause */
    int npre;
    PreBuf *pb;                /* [npb] */
    int npb;

    MigJob *jobs;              /* [nj] */
    PxLaunch **old;            /* finished jobs' launches, freed on the source */
    int nold, maxold;
    int swapped;               /* the VM's tables point at the target's objects */
    void *stage;               /* host staging for one buffer */
    size_t stage_bytes;
    PxMigrateStats st;
} Mig;

/* Under s->mu, the VM paused and not running: its objects and unfinished
 * jobs, as they are now (nothing else changes them until it resumes). */
static PxResult snapshot(Mig *g)
{
    SchedVm *vm = g->vm;
    g->nb = vm->bufs.n;
    g->nm = vm->mods.n;
    for (SchedJob *j = vm->head; j; j = j->next) g->nj++;
    g->bid = calloc((size_t)g->nb + 1, sizeof *g->bid);
    g->bw = calloc((size_t)g->nb + 1, sizeof *g->bw);
    g->bres = calloc((size_t)g->nb + 1, sizeof *g->bres);
    g->bsrc = calloc((size_t)g->nb + 1, sizeof *g->bsrc);
    g->bdst = calloc((size_t)g->nb + 1, sizeof *g->bdst);
    g->msrc = calloc((size_t)g->nm + 1, sizeof *g->msrc);
    g->mdst = calloc((size_t)g->nm + 1, sizeof *g->mdst);
    g->jobs = calloc((size_t)g->nj + 1, sizeof *g->jobs);
    if (!g->bid || !g->bw || !g->bres || !g->bsrc || !g->bdst || !g->msrc || !g->mdst || !g->jobs) {
        g->nb = g->nm = g->nj = 0; /* nothing to undo */
        return sched_fail(PX_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int i = 0; i < g->nb; i++) {
        g->bid[i] = vm->bufs.v[i].id;
        g->bsrc[i] = vm->bufs.v[i].p;
    }
    for (int i = 0; i < g->nm; i++) g->msrc[i] = vm->mods.v[i].p;
    int k = 0;
    for (SchedJob *j = vm->head; j; j = j->next) g->jobs[k++].j = j;
    for (int i = 0; i < g->nb; i++) g->bw[i] = vm->bufs.v[i].writes;
    g->maxold = vm->nlive;
    if (!(g->old = calloc((size_t)g->maxold + 1, sizeof *g->old))) return sched_fail(PX_ERR_OUT_OF_MEMORY, "out of memory");
    return PX_OK;
}

static PxResult stage_room(Mig *g, size_t n)
{
    if (n <= g->stage_bytes) return PX_OK;
    free(g->stage);
    g->stage_bytes = 0;
    if (!(g->stage = malloc(n))) return sched_fail(PX_ERR_OUT_OF_MEMORY, "out of host memory for %zu bytes", n);
    g->stage_bytes = n;
    return PX_OK;
}

/* Under from->mu: src's bytes into the staging memory (stage_room), from
 * its host copy when it is evicted. */
static PxResult stage_in(Mig *g, PxBuffer *src) { return sched_buf_peek(g->from, g->vm, src, g->stage); }

/* The staged bytes into dst (takes to->mu). */
static PxResult stage_out(Mig *g, PxBuffer *dst)
{
    pthread_mutex_lock(&g->to->mu);
    PxResult r = px_buffer_write(dst, g->stage, dst->bytes);
    if (r) r = sched_fail(r, "device %d: %s", g->to->index, px_last_error(g->to->ctx));
    pthread_mutex_unlock(&g->to->mu);
    return r;
}

/* A buffer's bytes from one device to another through host memory: the
 * one place bytes cross devices (each side under its own lock only). */
static PxResult copy_buffer(Mig *g, PxBuffer *src, PxBuffer *dst)
{
    PxResult r = stage_room(g, src->bytes);
    if (r) return r;
    pthread_mutex_lock(&g->from->mu);
    r = stage_in(g, src);
    pthread_mutex_unlock(&g->from->mu);
    return r ? r : stage_out(g, dst);
}

/* A buffer of the target's made for VM buffer `id`. It counts as resident
 * there from now on (evicting others when oversubscribed), so the
 * target's device memory is never promised twice; drop_dst undoes it. */
static PxResult make_dst(Mig *g, uint32_t id, PxDtype dt, int rank, const int64_t *shape, size_t bytes, PxBuffer **out)
{
    pthread_mutex_lock(&g->to->mu);
    PxResult r = sched_make_room(g->s, g->to, bytes, NULL);
    if (!r && (r = px_buffer_create(g->to->ctx, dt, rank, shape, out)))
        r = sched_fail(r, "VM %u: buffer %u (%zu bytes) on device %d: %s", g->vm->cfg.id, id, bytes, g->to->index,
                       px_last_error(g->to->ctx));
    if (!r) {
        pthread_mutex_lock(&g->s->mu);
        sched_buf_made(g->to, bytes);
        pthread_mutex_unlock(&g->s->mu);
    }
    pthread_mutex_unlock(&g->to->mu);
    return r;
}

/* Under d->mu: a buffer of d that a migration made or moved away from
 * leaves; `resident`: it counts in d's resident bytes. */
static void drop_dst(PxSched *s, SchedDev *d, PxBuffer *b, int resident)
{
    if (!b) return;
    if (resident) {
        pthread_mutex_lock(&s->mu);
        d->resident -= b->bytes;
        pthread_mutex_unlock(&s->mu);
    }
    px_buffer_destroy(b);
}

/* Under s->mu: VM buffer `id`'s entry, or NULL. */
static const SchedObj *vm_buffer(const SchedVm *vm, uint32_t id)
{
    for (int i = 0; i < vm->bufs.n; i++)
        if (vm->bufs.v[i].id == id) return &vm->bufs.v[i];
    return NULL;
}

/* Before the pause, the VM running: the target's buffers are made (their
 * allocation and first touch leave the pause), and the bytes of each are
 * copied unless an unfinished launch may write it: read holding the
 * source's lock, so no launch can be submitted, no host write made and no
 * buffer freed meanwhile. A buffer written since (a host write, or a
 * launch that writes it submitted: SchedObj.writes moved) is copied again
 * in the pause. Best effort: what fails here is done (or fails) there. */
static void precopy(Mig *g)
{
    PxSched *s = g->s;
    SchedVm *vm = g->vm;
    pthread_mutex_lock(&s->mu);
    int n = vm->bufs.n;
    PreBuf *pb = calloc((size_t)n + 1, sizeof *pb);
    size_t most = 0;
    for (int i = 0; pb && i < n; i++) {
        const PxBuffer *b = vm->bufs.v[i].p; /* its fields never change; it is freed only after leaving the table */
        pb[i] = (PreBuf){.id = vm->bufs.v[i].id, .dtype = b->dtype, .rank = b->rank, .bytes = b->bytes};
        memcpy(pb[i].shape, b->shape, sizeof pb[i].shape);
        if (b->bytes > most) most = b->bytes;
    }
    pthread_mutex_unlock(&s->mu);
    if (!pb) return;
    g->pb = pb;
    g->npb = n;
    for (int i = 0; i < n; i++)
        if (make_dst(g, pb[i].id, pb[i].dtype, pb[i].rank, pb[i].shape, pb[i].bytes, &pb[i].dst)) break;
    if (stage_room(g, most)) return;
    if (most) memset(g->stage, 0, most); /* its pages are touched outside the pause */
    for (int i = 0; i < n && pb[i].dst; i++) {
        pthread_mutex_lock(&g->from->mu);
        pthread_mutex_lock(&s->mu);
        const SchedObj *o = vm_buffer(vm, pb[i].id);
        for (const SchedJob *j = vm->head; o && j; j = j->next)
            if (sched_launch_writes(j->l, o->p)) o = NULL;
        PxBuffer *src = o ? o->p : NULL;
        uint64_t writes = o ? o->writes : 0;
        pthread_mutex_unlock(&s->mu);
        PxResult r = src ? stage_in(g, src) : PX_ERR_BUSY;
        pthread_mutex_unlock(&g->from->mu);
        if (!r && !stage_out(g, pb[i].dst)) {
            pb[i].copied = 1;
            pb[i].writes = writes;
        }
    }
}

/* In the pause: every buffer of the snapshot on the target, with its bytes
 * — made and copied before the pause where that still holds. */
static PxResult move_buffers(Mig *g)
{
    for (int i = 0; i < g->nb; i++) {
        PxBuffer *b = g->bsrc[i];
        PreBuf *p = NULL;
        for (int k = 0; k < g->npb && !p; k++)
            if (g->pb[k].id == g->bid[i] && g->pb[k].dst) p = &g->pb[k];
        PxResult r = PX_OK;
        int fresh = p && p->copied && p->writes == g->bw[i];
        if (p) g->bdst[i] = p->dst, p->dst = NULL;
        else r = make_dst(g, g->bid[i], b->dtype, b->rank, b->shape, b->bytes, &g->bdst[i]);
        if (!r && !fresh) r = copy_buffer(g, b, g->bdst[i]);
        if (r) return r;
        g->st.bytes += b->bytes;
        if (!fresh) g->st.bytes_in_pause += b->bytes;
    }
    return PX_OK;
}

/* Before the pause (no lock held): the VM's modules compiled on the
 * target, so the pause does not wait for the compiler. Best effort: a
 * module made or failing meanwhile is compiled (or fails) in the pause. */
static void precompile(Mig *g)
{
    PxSched *s = g->s;
    pthread_mutex_lock(&s->mu);
    int n = g->vm->mods.n;
    char **keys = calloc((size_t)n + 1, sizeof *keys);
    size_t *lens = calloc((size_t)n + 1, sizeof *lens);
    g->pre = calloc((size_t)n + 1, sizeof *g->pre);
    for (int i = 0; keys && lens && g->pre && i < n; i++) {
        const SchedMod *sm = g->vm->mods.v[i].p;
        if ((keys[i] = malloc(sm->keylen))) memcpy(keys[i], sm->key, sm->keylen), lens[i] = sm->keylen;
    }
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; keys && lens && g->pre && i < n; i++)
        if (keys[i] && sched_mod_get(s, g->to, keys[i], lens[i], NULL, &g->pre[g->npre]) == PX_OK) g->npre++;
    free(keys); /* sched_mod_get took every key */
    free(lens);
}

/* The precompiled module of sm's source, its reference handed over. */
static SchedMod *take_pre(Mig *g, const SchedMod *sm)
{
    for (int i = 0; i < g->npre; i++) {
        SchedMod *p = g->pre[i];
        if (p && p->keylen == sm->keylen && !memcmp(p->key, sm->key, sm->keylen)) {
            g->pre[i] = NULL;
            return p;
        }
    }
    return NULL;
}

static PxResult move_modules(Mig *g)
{
    for (int i = 0; i < g->nm; i++) {
        if ((g->mdst[i] = take_pre(g, g->msrc[i]))) continue;
        char *key = malloc(g->msrc[i]->keylen);
        if (!key) return sched_fail(PX_ERR_OUT_OF_MEMORY, "out of memory");
        memcpy(key, g->msrc[i]->key, g->msrc[i]->keylen);
        PxResult r = sched_mod_get(g->s, g->to, key, g->msrc[i]->keylen, NULL, &g->mdst[i]);
        if (r) return r;
    }
    return PX_OK;
}

/* Under s->mu: the VM's tables name the target's objects (back = 0) or the
 * source's again (back = 1). Same ids, same order: nothing else changed
 * them while the VM was paused. */
static void swap_tables(Mig *g, int back)
{
    for (int i = 0; i < g->nb; i++) g->vm->bufs.v[i].p = back ? g->bsrc[i] : g->bdst[i];
    for (int i = 0; i < g->nm; i++) g->vm->mods.v[i].p = back ? g->msrc[i] : g->mdst[i];
    g->swapped = !back;
}

/* Under to->mu, the tables swapped: job mj's launch made again on the
 * target from its arguments, continuing where it stopped. */
static PxResult move_job(Mig *g, MigJob *mj)
{
    SchedJob *j = mj->j, *n = &mj->n;
    PxModule *m = NULL;
    for (int i = 0; i < g->nm; i++)
        if (g->msrc[i]->m == j->l->k->m) m = g->mdst[i]->m;
    if (!m) return sched_fail(PX_ERR_NOT_FOUND, "VM %u: the module of ticket %llu is gone", g->vm->cfg.id, (unsigned long long)j->ticket);
    PxKernel *k;
    PxResult r = px_module_kernel(m, j->l->k->ir->name, &k);
    if (!r) r = px_launch_create(k, &n->l);
    if (r) return sched_fail(r, "device %d: %s", g->to->index, px_last_error(g->to->ctx));
    n->res.noutputs = j->res.noutputs;
    memcpy(n->res.outputs, j->res.outputs, sizeof n->res.outputs);
    if ((r = sched_bind_args(g->s, g->to, g->vm, n, j->args, j->nargs))) return r;
    if (!j->prepared || j->done == 0) return PX_OK; /* planned when it first runs */
    if ((r = sched_job_plan(g->to, n))) return sched_fail(r, "device %d: %s", g->to->index, px_last_error(g->to->ctx));
    if (same_units(j, n) && stage_end(j, 1) == j->done) n->done = j->done;
    else if (stage_end(j, 0) == j->done && stage_ordered(n->units, n->nunits))
        n->done = groups_before(n->units, n->nunits, stage_of(j->units, j->nunits, j->done));
    else
        return sched_fail(PX_ERR_UNSUPPORTED, "VM %u: ticket %llu stopped inside a stage that device %d slices differently",
                          g->vm->cfg.id, (unsigned long long)j->ticket, g->to->index);
    return PX_OK;
}

static PxResult move_jobs(Mig *g)
{
    PxResult r = PX_OK;
    pthread_mutex_lock(&g->to->mu);
    for (int i = 0; i < g->nj && !r; i++) r = move_job(g, &g->jobs[i]);
    pthread_mutex_unlock(&g->to->mu);
    return r;
}

/* Frees what the migration made on one side: the target's objects after a
 * failure (target = 1), or the source's after the commit (target = 0). */
static void drop_side(Mig *g, int target)
{
    SchedDev *d = target ? g->to : g->from;
    SchedMod **mods = target ? g->mdst : g->msrc;
    /* target buffers made before the pause and not taken */
    pthread_mutex_lock(&g->to->mu);
    for (int i = 0; i < g->npb; i++) drop_dst(g->s, g->to, g->pb[i].dst, 1), g->pb[i].dst = NULL;
    pthread_mutex_unlock(&g->to->mu);
    /* precompiled modules nothing took: the target's cache may keep them */
    for (int i = 0; i < g->npre; i++)
        if (g->pre[i]) sched_mod_drop(g->s, g->to, g->pre[i], 0), g->pre[i] = NULL;
    pthread_mutex_lock(&d->mu);
    /* after a commit the jobs' copies hold the old launches */
    for (int i = 0; i < g->nj; i++) sched_job_release(d, &g->jobs[i].n);
    for (int i = 0; !target && i < g->nold; i++) px_launch_destroy(g->old[i]);
    for (int i = 0; i < g->nb; i++) drop_dst(g->s, d, target ? g->bdst[i] : g->bsrc[i], target || g->bres[i]);
    for (int i = 0; i < g->nm; i++)
        if (mods[i]) sched_mod_drop(g->s, d, mods[i], 1);
    pthread_mutex_unlock(&d->mu);
}

/* Under s->mu: the launch state of a and b trade places. */
static void swap_launch(SchedJob *a, SchedJob *b)
{
    SchedJob t = *a;
    a->l = b->l, b->l = t.l;
    a->unit_ns = b->unit_ns, b->unit_ns = t.unit_ns;
    a->units = b->units, b->units = t.units;
    a->nunits = b->nunits, b->nunits = t.nunits;
    a->total = b->total, b->total = t.total;
    a->done = b->done, b->done = t.done;
    a->prepared = b->prepared, b->prepared = t.prepared;
}

/* Under s->mu: the VM runs on the target from now on. Every job of the
 * snapshot trades its launch with the one made on the target (a job
 * cancelled meanwhile too: px_vm_wait frees a job's launch on the VM's
 * device); finished jobs not yet waited for give theirs up to be freed on
 * the source. */
static void commit(Mig *g)
{
    SchedVm *vm = g->vm;
    /* first, so that the launches the snapshot's jobs get below stay */
    for (SchedJob *j = vm->live; j; j = j->live_next)
        if (j->state == JOB_DONE && j->l && g->nold < g->maxold) {
            g->old[g->nold++] = j->l;
            j->l = NULL;
        }
    /* its buffers are resident on the target (made so by make_dst); the
     * source's resident bytes go down when drop_side frees them there. A
     * host copy stays valid (the same bytes), a lost buffer stays lost. */
    for (int i = 0; i < g->nb; i++) {
        SchedObj *o = &vm->bufs.v[i];
        g->bres[i] = !o->evicted;
        o->evicted = 0;
    }
    for (int i = 0; i < g->nj; i++) {
        SchedJob *j = g->jobs[i].j;
        swap_launch(j, &g->jobs[i].n);
        j->stop_at = 0;
        g->st.launches_moved += j->state != JOB_DONE;
    }
    SchedDev *from = g->from, *to = g->to;
    from->share_sum -= vm->cfg.share;
    from->quota_sum -= vm->cfg.mem_quota;
    from->mem_used -= vm->mem_used;
    to->mem_used += vm->mem_used;
    vm->dev = to;
    vm->vt = to->vclock; /* no credit or debt carries over between devices */
    if (vm->head) sched_wake(g->s, vm, sched_now_ns());
    vm->migrations++;
    from->migrations_out++;
    to->migrations_in++;
}

static void mig_free(Mig *g)
{
    free(g->bid);
    free(g->bw);
    free(g->bres);
    free(g->bsrc);
    free(g->bdst);
    free(g->msrc);
    free(g->mdst);
    free(g->jobs);
    free(g->old);
    free(g->pre);
    free(g->pb);
    free(g->stage);
}

/* Under s->mu: pauses vm at a slice boundary; when the target slices its
 * running launch differently, lets the launch run on to its stage
 * boundary first. Returns with no slice of vm running. */
static void pause_vm(Mig *g)
{
    PxSched *s = g->s;
    SchedVm *vm = g->vm;
    vm->paused = 1;
    for (;;) {
        SchedJob *h = vm->head;
        if (h && h->state == JOB_RUNNING) {
            pthread_cond_wait(&s->done, &s->mu); /* the dispatcher broadcasts after each slice of a migrating VM */
            continue;
        }
        if (h && h->stop_at > h->done) {
            pthread_cond_broadcast(&g->from->work);
            pthread_cond_wait(&s->done, &s->mu);
            continue;
        }
        if (h && stage_end(h, same_kind(g->from, g->to)) > h->done) {
            h->stop_at = stage_end(h, same_kind(g->from, g->to));
            continue;
        }
        return;
    }
}

/* Under s->mu: the VM runs again where it is. */
static void resume_vm(Mig *g)
{
    g->vm->paused = 0;
    g->vm->migrating = 0;
    for (SchedJob *j = g->vm->head; j; j = j->next) j->stop_at = 0;
    pthread_cond_broadcast(&g->vm->dev->work);
    pthread_cond_broadcast(&g->s->done);
}

PxResult px_vm_migrate(PxSched *s, uint32_t id, int device, PxMigrateStats *out)
{
    if (out) memset(out, 0, sizeof *out);
    if (!s) return sched_fail(PX_ERR_INVALID, "px_vm_migrate: NULL argument");
    if (device < 0 || device >= s->ndev)
        return sched_fail(PX_ERR_INVALID, "VM %u: no device %d (there %s %d)", id, device, s->ndev == 1 ? "is" : "are", s->ndev);
    int64_t t0 = sched_now_ns();
    Mig g = {.s = s, .to = &s->dev[device]};
    pthread_mutex_lock(&s->mu);
    SchedVm *vm = sched_vm_settle(s, id);
    PxResult r = !vm ? PX_ERR_NOT_FOUND
                 : vm->migrating ? sched_fail(PX_ERR_BUSY, "VM %u is being migrated already", id)
                 : vm->dev == g.to ? sched_fail(PX_ERR_INVALID, "VM %u is on device %d already", id, device)
                                   : sched_check_room(s, g.to, vm->cfg.share, vm->cfg.mem_quota, NULL);
    if (r) {
        pthread_mutex_unlock(&s->mu);
        return r;
    }
    /* the target's room is the VM's from here: no VM created meanwhile takes it */
    g.vm = vm;
    g.from = vm->dev;
    g.to->share_sum += vm->cfg.share;
    g.to->quota_sum += vm->cfg.mem_quota;
    vm->migrating = 1;
    pthread_mutex_unlock(&s->mu);
    precompile(&g);
    precopy(&g);
    pthread_mutex_lock(&s->mu);
    vm->paused = 1;
    /* downtime: from here, unless a slice of it still ran (then from the
     * moment it was seen to end, below) */
    int64_t t_down = sched_now_ns();
    uint64_t slices = vm->slices;
    pthread_mutex_unlock(&s->mu);
    /* a call that passed its check before the pause holds the old device's
     * lock until it is done: once we had the lock, none is left */
    pthread_mutex_lock(&g.from->mu);
    pthread_mutex_unlock(&g.from->mu);
    pthread_mutex_lock(&s->mu);
    pause_vm(&g);
    if (vm->slices != slices) t_down = sched_now_ns();
    r = snapshot(&g);
    pthread_mutex_unlock(&s->mu);
    /* no slice of it runs now, so none can keep a launch on the old device
     * again: its kept launch goes (made again on the target) */
    pthread_mutex_lock(&g.from->mu);
    sched_spare_drop(vm);
    pthread_mutex_unlock(&g.from->mu);

    if (!r) r = move_buffers(&g);
    if (!r) r = move_modules(&g);
    pthread_mutex_lock(&s->mu);
    if (!r) swap_tables(&g, 0);
    pthread_mutex_unlock(&s->mu);
    if (!r) r = move_jobs(&g);

    pthread_mutex_lock(&s->mu);
    if (r) {
        if (g.swapped) swap_tables(&g, 1);
        g.to->share_sum -= vm->cfg.share;
        g.to->quota_sum -= vm->cfg.mem_quota;
    } else {
        commit(&g);
    }
    resume_vm(&g);
    int64_t t1 = sched_now_ns();
    pthread_mutex_unlock(&s->mu);
    drop_side(&g, !r ? 0 : 1);
    if (!r) {
        g.st.total_ns = (double)(t1 - t0);
        g.st.downtime_ns = (double)(t1 - t_down);
        sched_log(s, PX_LOG_INFO, "VM %u moved from device %d to %d: %llu bytes, %d launches, downtime %.3f ms, total %.3f ms",
                  id, g.from->index, g.to->index, (unsigned long long)g.st.bytes, g.st.launches_moved,
                  g.st.downtime_ns * 1e-6, g.st.total_ns * 1e-6);
        if (out) *out = g.st;
    }
    mig_free(&g);
    return r;
}
