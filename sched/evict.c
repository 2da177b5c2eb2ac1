/* evict.c — oversubscription (docs/SCHEDULER.md, "Oversubscription"):
 * the buffers of a device's VMs may hold more bytes than its capacity;
 * only `capacity` of them are in device memory at once (SchedDev.resident).
 * Making room evicts the least recently used buffers — those of idle VMs
 * (no launch queued or running) first — to host copies; a launch's
 * buffers are restored before each of its slices. Host copies also let a
 * buffer survive a device loss (loss.c).
 *
 * Invariants: a buffer bound to the launch on the device now is never
 * evicted (the dispatcher marks it JOB_RUNNING under PxSched.mu before it
 * takes SchedDev.mu to submit, and every eviction holds SchedDev.mu from
 * choosing the buffer to freeing it). An evicted buffer has a clean host
 * copy or is lost. A program recorded over a buffer that moved is recorded
 * again before it runs (its descriptors named the old device memory). */
#include "sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

SchedObj *sched_buf_slot(SchedVm *vm, const PxBuffer *b)
{
    for (int i = 0; i < vm->bufs.n; i++)
        if (vm->bufs.v[i].p == b) return &vm->bufs.v[i];
    return NULL;
}

static int job_binds(const SchedJob *j, const PxBuffer *b)
{
    for (int i = 0; j && j->l && i < j->l->k->ir->params.n; i++)
        if (j->l->p[i].bound == b) return 1;
    return 0;
}

void sched_buf_made(SchedDev *d, uint64_t bytes) { d->resident += bytes; }

void sched_buf_drop(SchedDev *d, SchedObj *o)
{
    if (!o->evicted) d->resident -= px_buffer_bytes(o->p);
    free(o->host);
    o->host = NULL;
}

/* Under d->mu: o's host copy holds its current bytes (a device read unless
 * it is clean already); *copied gets the bytes read. */
static PxResult host_copy(SchedDev *d, SchedObj *o, uint64_t *copied)
{
    PxBuffer *b = o->p;
    PxContext *c = d->ctx;
    *copied = 0;
    if (o->clean) return PX_OK;
    if (!o->host && !(o->host = malloc(b->bytes ? b->bytes : 1)))
        return sched_fail(PX_ERR_OUT_OF_MEMORY, "out of host memory for a %zu-byte host copy", b->bytes);
    PxResult r = b->bytes ? c->ops->buffer_read(c->dev, b->rb, o->host, b->bytes) : PX_OK;
    if (r) return sched_fail(r, "device %d: %s", d->index, px_last_error(c));
    o->clean = 1;
    *copied = b->bytes;
    return PX_OK;
}

/* Under d->mu: o (of vm) leaves device memory. Its device buffer goes to
 * *donate when that is empty and the sizes match (a restore reuses it:
 * no allocation, no zero-fill), else it is freed. */
static PxResult evict(PxSched *s, SchedDev *d, SchedVm *vm, SchedObj *o, size_t want, RtBuf **donate)
{
    PxBuffer *b = o->p;
    uint64_t copied;
    PxResult r = host_copy(d, o, &copied);
    if (r) return r;
    if (donate && !*donate && b->bytes == want) *donate = b->rb;
    else d->ctx->ops->buffer_destroy(d->ctx->dev, b->rb);
    b->rb = NULL;
    o->evicted = 1;
    pthread_mutex_lock(&s->mu);
    d->resident -= b->bytes;
    vm->evictions++;
    vm->bytes_evicted += b->bytes;
    d->evictions++;
    d->bytes_evicted += b->bytes;
    pthread_mutex_unlock(&s->mu);
    return PX_OK;
}

static PxResult room(PxSched *s, SchedDev *d, uint64_t bytes, const SchedJob *pin, RtBuf **donate);

/* Under d->mu: o (of vm) back in device memory from its host copy, making
 * room first (never evicting a buffer of pin). */
static PxResult restore(PxSched *s, SchedDev *d, SchedVm *vm, SchedObj *o, const SchedJob *pin)
{
    PxBuffer *b = o->p;
    PxContext *c = d->ctx;
    RtBuf *rb = NULL;
    PxResult r = room(s, d, b->bytes, pin, &rb);
    if (!r && !rb && (r = c->ops->buffer_create(c->dev, b->bytes ? b->bytes : 1, &rb))) r = sched_fail(r, "%s", px_last_error(c));
    if (!r && b->bytes && (r = c->ops->buffer_write(c->dev, rb, o->host, b->bytes))) r = sched_fail(r, "%s", px_last_error(c));
    if (r) {
        c->ops->buffer_destroy(c->dev, rb);
        return sched_fail(r, "device %d: restoring a buffer of VM %u: %s", d->index, vm->cfg.id, px_sched_last_error());
    }
    b->rb = rb;
    o->evicted = 0;
    pthread_mutex_lock(&s->mu);
    d->resident += b->bytes;
    vm->bytes_restored += b->bytes;
    d->bytes_restored += b->bytes;
    /* launches of vm recorded over its old device memory record again */
    for (SchedJob *j = vm->head; j; j = j->next)
        if (job_binds(j, b)) j->l->recorded = 0;
    if (vm->spare) vm->spare->recorded = 0;
    pthread_mutex_unlock(&s->mu);
    return PX_OK;
}

/* Under s->mu (and d->mu): the resident buffer of d to evict next, or
 * NULL. Idle VMs' buffers go first, then by least recent use. */
static SchedObj *victim(PxSched *s, SchedDev *d, const SchedJob *pin, SchedVm **owner)
{
    SchedObj *best = NULL;
    int best_busy = 2;
    for (int i = 0; i < s->nvms; i++) {
        SchedVm *vm = s->vms[s->order[i]];
        if (vm->dev != d) continue;
        const SchedJob *run = vm->head && vm->head->state == JOB_RUNNING ? vm->head : NULL;
        int busy = vm->head != NULL;
        for (int k = 0; k < vm->bufs.n; k++) {
            SchedObj *o = &vm->bufs.v[k];
            if (o->evicted || job_binds(run, o->p) || job_binds(pin, o->p)) continue;
            if (busy < best_busy || (busy == best_busy && o->used < best->used)) {
                best = o, best_busy = busy;
                *owner = vm;
            }
        }
    }
    return best;
}

PxResult sched_make_room(PxSched *s, SchedDev *d, uint64_t bytes, const SchedJob *pin)
{
    return room(s, d, bytes, pin, NULL);
}

/* sched_make_room; an evicted buffer of exactly `bytes` may be donated. */
static PxResult room(PxSched *s, SchedDev *d, uint64_t bytes, const SchedJob *pin, RtBuf **donate)
{
    PxResult r = sched_dev_alive(d);
    if (r) return r;
    if (s->oversub <= 1) return PX_OK; /* quotas fit the capacity: so do the buffers */
    for (;;) {
        pthread_mutex_lock(&s->mu);
        uint64_t resident = d->resident;
        SchedVm *vm = NULL;
        SchedObj *o = resident + bytes > d->capacity ? victim(s, d, pin, &vm) : NULL;
        pthread_mutex_unlock(&s->mu);
        if (resident + bytes <= d->capacity) return PX_OK;
        if (!o)
            return sched_fail(PX_ERR_QUOTA,
                              "device %d: %llu bytes more do not fit in its capacity of %llu bytes (%llu resident, "
                              "none of it evictable)",
                              d->index, (unsigned long long)bytes, (unsigned long long)d->capacity,
                              (unsigned long long)resident);
        if ((r = evict(s, d, vm, o, bytes, donate))) return r;
    }
}

/* The distinct buffers j binds, their bytes summed. */
static uint64_t bound_bytes(const SchedJob *j)
{
    const PxLaunch *l = j->l;
    uint64_t sum = 0;
    for (int i = 0; i < l->k->ir->params.n; i++) {
        const PxBuffer *b = l->p[i].bound;
        int seen = 0;
        for (int k = 0; b && k < i; k++) seen |= l->p[k].bound == b;
        if (b && !seen) sum += b->bytes;
    }
    return sum;
}

PxResult sched_launch_fits(const PxSched *s, const SchedDev *d, const SchedJob *j, char *err, size_t n)
{
    uint64_t need = bound_bytes(j);
    if (s->oversub <= 1 || need <= d->capacity) return PX_OK;
    snprintf(err, n,
             "VM %u: kernel %s needs its %llu bytes of buffers in device memory at once, more than device %d's "
             "capacity of %llu bytes: eviction cannot make room for it",
             j->vm->cfg.id, j->l->k->ir->name, (unsigned long long)need, d->index, (unsigned long long)d->capacity);
    return PX_ERR_QUOTA;
}

PxResult sched_buf_peek(SchedDev *d, SchedVm *vm, PxBuffer *b, void *data)
{
    const SchedObj *o = sched_buf_slot(vm, b);
    if (o && o->lost) {
        memset(data, 0, b->bytes);
        return PX_OK;
    }
    if (o && o->evicted) {
        memcpy(data, o->host, b->bytes);
        return PX_OK;
    }
    PxContext *c = d->ctx;
    PxResult r = b->bytes ? c->ops->buffer_read(c->dev, b->rb, data, b->bytes) : PX_OK;
    return r ? sched_fail(r, "device %d: %s", d->index, px_last_error(c)) : PX_OK;
}

/* Under d->mu: o is lost (loss.c): a launch or read of it fails. */
static PxResult lost(const SchedDev *d, const SchedVm *vm, char *err, size_t n)
{
    snprintf(err, n,
             "VM %u: a buffer of this launch lost its contents when device %d was lost; write it again "
             "(px_vm_buffer_write) to use it",
             vm->cfg.id, d->index);
    return PX_ERR_DEVICE_LOST;
}

PxResult sched_make_resident(PxSched *s, SchedDev *d, SchedJob *j)
{
    PxLaunch *l = j->l;
    SchedVm *vm = j->vm;
    char *err = j->res.error;
    size_t n = sizeof j->res.error;
    PxResult r = sched_dev_alive(d);
    if (r) {
        snprintf(err, n, "%s", px_sched_last_error());
        return r;
    }
    r = sched_launch_fits(s, d, j, err, n);
    const IrKernel *k = l->k->ir;
    for (int i = 0; i < k->params.n && !r; i++) {
        SchedObj *o = l->p[i].bound ? sched_buf_slot(vm, l->p[i].bound) : NULL;
        if (!o) continue;
        if (o->lost) return lost(d, vm, err, n);
        if (o->evicted && (r = restore(s, d, vm, o, j))) snprintf(err, n, "%s", px_sched_last_error());
        o->used = ++d->lru;
        /* the launch may change it from now on: the host copy is stale */
        if (k->params.v[i].flags & IR_P_WRITTEN) o->clean = 0;
    }
    if (r || !j->prepared || l->recorded) return r;
    /* a buffer moved since j's program was recorded: record it again (the
     * slicing plan stays: same sizes, same units) */
    PxContext *c = d->ctx;
    if ((r = rt_launch_ready(l)) || (j->nunits && c->ops->prog_units(c->dev, l->prog, &j->units) != j->nunits)) {
        snprintf(err, n, "recording the launch again after a buffer moved: %s", r ? px_last_error(c) : "its units changed");
        return r ? r : PX_ERR_INTERNAL;
    }
    return PX_OK;
}

PxResult sched_buf_copy(SchedDev *d, SchedVm *vm, PxBuffer *b, void *data, size_t bytes, int write)
{
    SchedObj *o = sched_buf_slot(vm, b);
    if (bytes != b->bytes)
        return sched_fail(PX_ERR_INVALID, "px_vm_buffer_%s: %zu bytes %s, the buffer holds %zu", write ? "write" : "read",
                          bytes, write ? "given" : "asked", b->bytes);
    if (!write && o->lost) {
        char err[256];
        return sched_fail(lost(d, vm, err, sizeof err), "%s", err);
    }
    PxResult r = sched_dev_alive(d);
    if (r) return r;
    /* a host copy is what an eviction or a device loss falls back on: an
     * evicted buffer has one (or is lost); a resident one keeps one when
     * the scheduler keeps host copies */
    if (!o->host && (o->evicted || d->s->host_copies) && !(o->host = malloc(b->bytes ? b->bytes : 1)) && o->evicted)
        return sched_fail(PX_ERR_OUT_OF_MEMORY, "out of host memory for a %zu-byte host copy", b->bytes);
    if (!o->evicted) {
        if ((r = write ? px_buffer_write(b, data, bytes) : px_buffer_read(b, data, bytes)))
            return sched_fail(r, "%s", px_last_error(d->ctx));
        if (o->host && bytes) memcpy(o->host, data, bytes);
    } else if (bytes) {
        memcpy(write ? o->host : data, write ? data : o->host, bytes);
    }
    o->clean = o->host != NULL;
    if (write) o->lost = 0;
    o->used = ++d->lru;
    return PX_OK;
}
