/* loss.c — surviving a lost device (docs/SCHEDULER.md, "Device loss").
 *
 * When a submit or wait of device d reports PX_ERR_DEVICE_LOST, d's
 * dispatcher (holding d->mu) recovers in place: every launch of d that had
 * started fails with PX_ERR_DEVICE_LOST (its outputs were partly written
 * on the lost device); every program, buffer and code object made on the
 * old device is dropped; the context is opened again (rt_context_reopen);
 * the modules' code is made again from their kept compilations; every
 * buffer becomes EVICTED (evict.c): one with a clean host copy keeps its
 * bytes and is restored before its VM's next launch, any other is LOST
 * (a launch binding it or a read of it fails until the host writes it
 * again). Launches that had not started stay queued and run on the new
 * device. Other devices' VMs never see any of it: only d->mu is held.
 *
 * Where live migration exists (sched/migrate.c), moving d's VMs to another
 * device would take the place of rt_context_reopen below; the rest (which
 * launches fail, which buffers survive) stays. */
#include "sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

PxResult sched_dev_wait(SchedDev *d, SchedJob *j)
{
    PxResult r = d->ctx->ops->wait(d->ctx->dev, j->l->prog);
    if (atomic_exchange(&d->lose_next, 0) && !r) r = PX_ERR_DEVICE_LOST;
    return r;
}

PxResult sched_inject_loss(PxSched *s, int device)
{
    if (!s || device < 0 || device >= s->ndev) return sched_fail(PX_ERR_INVALID, "no device %d", device);
    SchedDev *d = &s->dev[device];
    if (d->ctx->caps.emit == CG_EMIT_CPU)
        return sched_fail(PX_ERR_UNSUPPORTED, "device %d is the CPU: it cannot be lost", device);
    atomic_store(&d->lose_next, 1);
    return PX_OK;
}

PxResult sched_dev_alive(const SchedDev *d)
{
    return d->dead ? sched_fail(PX_ERR_DEVICE_LOST, "device %d was lost and could not be opened again", d->index) : PX_OK;
}

/* What recovery touches, gathered under PxSched.mu. */
typedef struct Lost {
    SchedVm **vms;
    int nvms;
    PxLaunch **launches;
    int nl;
    SchedMod **mods;
    int nmods;
    int failed;                 /* launches failed */
} Lost;

static void add_mod(Lost *x, SchedMod *sm)
{
    for (int i = 0; i < x->nmods; i++)
        if (x->mods[i] == sm) return;
    x->mods[x->nmods++] = sm;
}

/* Under s->mu: fails the started launches of d (but j, the dispatcher's
 * own), and lists d's VMs, launches and modules. 0 when out of memory. */
static int gather(PxSched *s, SchedDev *d, SchedJob *j, const char *why, Lost *x)
{
    int nj = 0, nm = d->ncache;
    for (int i = 0; i < s->nvms; i++) {
        SchedVm *vm = s->vms[s->order[i]];
        if (vm->dev != d) continue;
        nj += vm->nlive;
        nm += vm->mods.n;
    }
    x->vms = calloc((size_t)s->nvms + 1, sizeof *x->vms);
    x->launches = calloc((size_t)nj + 1, sizeof *x->launches);
    x->mods = calloc((size_t)nm + 1, sizeof *x->mods);
    if (!x->vms || !x->launches || !x->mods) return 0;
    for (int k = 0; k < d->ncache; k++) add_mod(x, d->cache[k]);
    for (int i = 0; i < s->nvms; i++) {
        SchedVm *vm = s->vms[s->order[i]];
        if (vm->dev != d) continue;
        x->vms[x->nvms++] = vm;
        for (int k = 0; k < vm->mods.n; k++) add_mod(x, vm->mods.v[k].p);
        for (SchedJob *q = vm->head, *n; q; q = n) {
            n = q->next;
            if (q == j || !q->t_start) continue;
            q->res.result = PX_ERR_DEVICE_LOST;
            snprintf(q->res.error, sizeof q->res.error, "%s", why);
            vm->launches_lost++;
            x->failed++;
            sched_job_finish(s, q);
        }
        for (SchedJob *q = vm->live; q; q = q->live_next) {
            if (q->l) x->launches[x->nl++] = q->l;
            q->prepared = 0; /* planned again on the new device */
            q->nunits = 0;
            q->total = q->done = 0;
        }
    }
    if (j) {
        j->vm->launches_lost++;
        x->failed++;
    }
    return 1;
}

/* Under d->mu: drops every device object of d; counts buffers kept/lost. */
static void drop_device_objects(SchedDev *d, Lost *x, int *kept, int *lost)
{
    PxContext *c = d->ctx;
    for (int i = 0; i < x->nl; i++) rt_launch_forget(x->launches[i]);
    for (int i = 0; i < x->nvms; i++) sched_spare_drop(x->vms[i]);
    for (int i = 0; i < x->nvms; i++)
        for (int k = 0; k < x->vms[i]->bufs.n; k++) {
            SchedObj *o = &x->vms[i]->bufs.v[k];
            PxBuffer *b = o->p;
            if (!o->evicted) {
                c->ops->buffer_destroy(c->dev, b->rb);
                b->rb = NULL;
                o->evicted = 1;
                o->lost = !o->clean;
            }
            *kept += !o->lost;
            *lost += o->lost;
        }
    for (int i = 0; i < x->nmods; i++) {
        c->ops->code_destroy(c->dev, x->mods[i]->m->code);
        x->mods[i]->m->code = NULL;
    }
}

/* Under d->mu: the context again, and the modules' code on it. */
static PxResult reopen(SchedDev *d, Lost *x)
{
    PxContext *c = d->ctx;
    PxResult r = rt_context_reopen(c);
    for (int i = 0; i < x->nmods && !r; i++) {
        PxModule *m = x->mods[i]->m;
        r = c->ops->code_create(c->dev, &m->cc, &m->code);
    }
    return r;
}

void sched_device_lost(PxSched *s, SchedDev *d, SchedJob *j)
{
    PxDeviceInfo di;
    px_device_info(d->ctx, &di);
    char why[400];
    snprintf(why, sizeof why,
             "device %d (%.60s) was lost while this launch ran; its outputs are undefined. The device was "
             "recreated: this VM's buffers with a host copy were kept, the others must be written again",
             d->index, di.name);
    int64_t t0 = sched_now_ns();
    Lost x = {0};
    pthread_mutex_lock(&s->mu);
    int ok = gather(s, d, j, why, &x);
    pthread_mutex_unlock(&s->mu);
    int kept = 0, lost = 0;
    PxResult r = PX_ERR_OUT_OF_MEMORY;
    if (ok) {
        drop_device_objects(d, &x, &kept, &lost);
        r = reopen(d, &x);
    }
    if (r) d->dead = 1; /* nothing more runs on it: every use fails clearly */
    if (j) snprintf(j->res.error, sizeof j->res.error, "%s%s", why, r ? " (the device could not be opened again)" : "");
    pthread_mutex_lock(&s->mu);
    d->resident = 0;
    d->losses++;
    d->launches_lost += (uint64_t)x.failed;
    pthread_mutex_unlock(&s->mu);
    sched_log(s, r ? PX_LOG_ERROR : PX_LOG_WARN,
              "device %d (%s) lost: %d launch%s failed, %d buffer%s kept from host copies, %d lost; %s in %.1f ms",
              d->index, di.name, x.failed, x.failed == 1 ? "" : "es", kept, kept == 1 ? "" : "s", lost,
              r ? "it could not be opened again" : "recreated", (double)(sched_now_ns() - t0) * 1e-6);
    free(x.vms);
    free(x.launches);
    free(x.mods);
}
