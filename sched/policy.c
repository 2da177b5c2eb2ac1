/* policy.c — who runs next on a device, and for how long
 * (docs/SCHEDULER.md, "Policy").
 *
 * Fair (start-time fair queueing on measured device time): every VM has a
 * virtual time vt that grows by ns * 100 / share for each ns of device
 * time its slices took. The backlogged VM with the smallest vt runs next,
 * so over any busy period each backlogged VM gets device time in
 * proportion to its share, and an idle VM's share goes to the busy ones in
 * proportion to theirs (work-conserving). A VM that wakes up starts at the
 * device's virtual clock (the vt of the VMs running now), so idling earns
 * no credit: it gets its share back from the next slice on, never more.
 *
 * Fixed: the same order, but a VM runs only while it has tokens: a bucket
 * filled at share% of wall time (at most one long slice's worth), drained
 * by its measured device time. A VM never gets more than its share; the
 * device idles when every VM with work is out of tokens.
 *
 * REALTIME: a VM whose head launch is REALTIME runs first, earliest
 * deadline first, while its vt is at most two of its own slices ahead of
 * the device's virtual clock; beyond that it competes by vt like anyone.
 * Declaring REALTIME therefore buys latency, never more than the share.
 *
 * Everything here runs under PxSched.mu. */
#include "sched.h"

/* A VM may run now: it has work, is not going away, and (fixed) has tokens. */
static int eligible(const PxSched *s, const SchedVm *vm)
{
    if (!vm->head || vm->dying || sched_vm_held(vm)) return 0;
    return s->policy != PX_POLICY_FIXED || vm->tokens_ns > 0;
}

static void refill(const PxSched *s, SchedVm *vm, int64_t now)
{
    double cap = (double)s->long_slice_ns * vm->cfg.share / 100.0;
    if (cap < (double)s->slice_ns) cap = (double)s->slice_ns;
    if (now > vm->tokens_at) {
        vm->tokens_ns += (double)(now - vm->tokens_at) * vm->cfg.share / 100.0;
        vm->tokens_at = now;
    }
    if (vm->tokens_ns > cap) vm->tokens_ns = cap;
}

SchedJob *sched_pick(PxSched *s, SchedDev *d, int64_t now, int64_t *wake_ns)
{
    SchedVm *best = NULL, *rt = NULL;
    double vmin = 0;
    int any = 0;
    int64_t wake = 0;
    for (int i = 0; i < s->nvms; i++) {
        SchedVm *vm = s->vms[s->order[i]];
        if (vm->dev != d || !vm->head || vm->dying || sched_vm_held(vm)) continue;
        if (s->policy == PX_POLICY_FIXED) {
            refill(s, vm, now);
            if (vm->tokens_ns <= 0) {
                /* when its bucket is positive again */
                int64_t t = now + (int64_t)(-vm->tokens_ns * 100.0 / vm->cfg.share) + 1;
                if (!wake || t < wake) wake = t;
                continue;
            }
        }
        if (!any || vm->vt < vmin) vmin = vm->vt;
        any = 1;
        if (!best || vm->vt < best->vt) best = vm;
    }
    if (!best) {
        *wake_ns = wake;
        return NULL;
    }
    /* the virtual clock follows the VMs that run */
    if (vmin > d->vclock) d->vclock = vmin;
    for (int i = 0; i < s->nvms; i++) {
        SchedVm *vm = s->vms[s->order[i]];
        if (vm->dev != d || !eligible(s, vm) || !vm->head->realtime) continue;
        double lead = 2.0 * (double)s->slice_ns * 100.0 / vm->cfg.share;
        if (vm->vt > vmin + lead) continue;
        if (!rt || vm->head->deadline_ns < rt->head->deadline_ns) rt = vm;
    }
    *wake_ns = 0;
    return (rt ? rt : best)->head;
}

int64_t sched_slice_ns(const PxSched *s, const SchedDev *d, int64_t now)
{
    /* short slices while a latency-sensitive VM was active in the last
     * 100 ms, or one waits now */
    if (d->last_ls_ns && now - d->last_ls_ns < 100000000) return s->slice_ns;
    for (int i = 0; i < s->nvms; i++) {
        const SchedVm *vm = s->vms[s->order[i]];
        if (vm->dev == d && vm->head && vm->head->latency_sensitive) return s->slice_ns;
    }
    return s->long_slice_ns;
}

void sched_wake(PxSched *s, SchedVm *vm, int64_t now)
{
    SchedDev *d = vm->dev;
    /* the smallest vt of the VMs with work now, else the device's clock */
    double v = d->vclock;
    int any = 0;
    for (int i = 0; i < s->nvms; i++) {
        const SchedVm *o = s->vms[s->order[i]];
        if (o == vm || o->dev != d || !o->head || o->dying) continue;
        if (!any || o->vt < v) v = o->vt;
        any = 1;
    }
    if (vm->vt < v) vm->vt = v;
    if (s->policy == PX_POLICY_FIXED) refill(s, vm, now);
}

void sched_charge(PxSched *s, SchedVm *vm, double ns, int64_t now)
{
    if (ns < 0) ns = 0;
    vm->vt += ns * 100.0 / vm->cfg.share;
    refill(s, vm, now);
    vm->tokens_ns -= ns;
    vm->gpu_ns += (uint64_t)ns;
    vm->dev->busy_ns += (uint64_t)ns;
    sched_record_busy(vm, (uint64_t)ns, now);
}
