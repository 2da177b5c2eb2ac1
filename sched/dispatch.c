/* dispatch.c — one dispatcher thread per device: picks the next job
 * (policy.c), runs one slice of it, charges the measured device time to
 * its VM, and finishes it when its last slice is done.
 *
 * Slicing (docs/SCHEDULER.md, "Slicing"): a prepared launch is a sequence
 * of units (dispatches, or CPU steps) of independent groups (rt.h,
 * RtUnit). Each unit's predicted time comes from the compiler's cost
 * figures for its stage at the bound sizes, times the kernel's learned
 * correction, spread evenly over the stage's groups. A slice takes groups
 * in order until its predicted time reaches the slice length (at least one
 * group), so a long launch becomes slices of bounded predicted time and
 * another VM may run between any two. Slices never reorder or split work
 * inside a group, so the results are bit-identical to an unsliced run. */
#include "sched.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void sched_job_release(SchedDev *d, SchedJob *j)
{
    (void)d;
    px_launch_destroy(j->l);
    j->l = NULL;
    free(j->unit_ns);
    j->unit_ns = NULL;
    free(j->args);
    j->args = NULL;
    j->nargs = 0;
}

void sched_spare_drop(SchedVm *vm)
{
    px_launch_destroy(vm->spare);
    vm->spare = NULL;
    free(vm->spare_args);
    vm->spare_args = NULL;
    vm->spare_nargs = 0;
}

PxLaunch *sched_spare_take(SchedVm *vm, const PxKernel *k, const PxArg *args, int nargs, PxArg **same)
{
    *same = NULL;
    if (!vm->spare || vm->spare->k != k || vm->spare_nargs != nargs) return NULL;
    int eq = 1;
    for (int i = 0; i < nargs; i++) {
        const PxArg *a = &args[i], *b = &vm->spare_args[i];
        if (a->kind != b->kind || !a->name || strcmp(a->name, b->name)) return NULL;
        eq = eq && (a->kind == PX_ARG_BUFFER ? a->buffer == b->buffer : a->kind == PX_ARG_FLOAT ? a->f == b->f : a->i == b->i);
    }
    PxLaunch *l = vm->spare;
    vm->spare = NULL;
    if (eq) *same = vm->spare_args, vm->spare_args = NULL;
    sched_spare_drop(vm);
    return l;
}

/* Under d->mu and s->mu: j finished; its launch is kept as its VM's spare
 * when it may serve again (finished well, bound no buffer it made, the VM
 * stays), else freed. */
static void job_done(SchedDev *d, SchedJob *j, PxResult r)
{
    SchedVm *vm = j->vm;
    if (!r && !j->res.noutputs && !vm->dying && j->l) {
        sched_spare_drop(vm);
        vm->spare = j->l;
        vm->spare_args = j->args;
        vm->spare_nargs = j->nargs;
        j->l = NULL;
        j->args = NULL;
    }
    sched_job_release(d, j);
}

/* A backend without sliced execution runs a launch whole (nunits 0). */
PxResult sched_job_plan(SchedDev *d, SchedJob *j)
{
    PxLaunch *l = j->l;
    PxContext *c = d->ctx;
    PxResult r = rt_launch_ready(l);
    if (r) return r;
    j->prepared = 1;
    if (!c->ops->prog_units || !c->ops->submit_slice) return PX_OK;
    int n = c->ops->prog_units(c->dev, l->prog, &j->units);
    if (n <= 0) return PX_OK;
    j->unit_ns = calloc((size_t)n, sizeof *j->unit_ns);
    if (!j->unit_ns) return rt_fail(&c->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    int nst = l->k->ir->stages.n;
    double *stage_groups = calloc((size_t)nst + 1, sizeof *stage_groups);
    if (!stage_groups) return rt_fail(&c->log, PX_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int i = 0; i < n; i++)
        if (j->units[i].stage >= 0 && j->units[i].stage < nst) stage_groups[j->units[i].stage] += (double)j->units[i].groups;
    double corr = px_kernel_correction(l->k, NULL);
    for (int i = 0; i < n; i++) {
        int st = j->units[i].stage;
        PxCost cost;
        double ns = 0;
        if (st >= 0 && st < nst && px_launch_cost(l, st, &cost) == PX_OK && cost.predicted_ns > 0)
            ns = cost.predicted_ns * corr;
        j->unit_ns[i] = stage_groups[st] > 0 ? ns / stage_groups[st] : 0;
        j->total += j->units[i].groups;
    }
    free(stage_groups);
    j->nunits = n;
    return PX_OK;
}

/* The end of the next slice of j from j->done: groups until the predicted
 * time reaches budget_ns, at least `floor` (the groups the device runs at
 * once: fewer would leave it idle and make the launch slower, not the
 * wait shorter) or what is left of the unit. */
static int64_t slice_end(const SchedJob *j, int64_t budget_ns, int64_t floor)
{
    int64_t at = 0, pos = j->done;
    double t = 0;
    for (int u = 0; u < j->nunits; u++) {
        int64_t g = j->units[u].groups, lo = at, hi = at + g;
        at = hi;
        if (hi <= pos || g <= 0) continue;
        double per = j->unit_ns[u];
        int64_t from = pos > lo ? pos : lo;
        if (per <= 0) {
            pos = hi; /* no prediction: free */
            continue;
        }
        double room = (double)budget_ns - t;
        int64_t fit = (int64_t)(room / per);
        if (fit < hi - from) {
            if (pos == j->done && fit < floor) fit = floor < hi - from ? floor : hi - from;
            return from + (fit > 0 ? fit : 0);
        }
        t += per * (double)(hi - from);
        pos = hi;
    }
    return j->total;
}

/* Under d->mu: submits the next slice of j (the whole launch when its
 * backend does not slice), leaving it in flight. *end gets where it ends. */
static PxResult submit(SchedDev *d, SchedJob *j, int64_t budget_ns, int64_t *end)
{
    PxContext *c = d->ctx;
    /* its buffers in device memory (evict.c); an error is in j->res.error */
    PxResult r = sched_make_resident(d->s, d, j);
    if (r) return r;
    if (!j->prepared && (r = sched_job_plan(d, j))) return r;
    RtSlice sl = {0, j->total};
    if (j->nunits) sl = (RtSlice){j->done, slice_end(j, budget_ns, c->caps.parallel_groups > 0 ? c->caps.parallel_groups : 1)};
    /* a migration waits for the stage boundary at stop_at (migrate.c) */
    if (j->stop_at > j->done && sl.end > j->stop_at) sl.end = j->stop_at;
    /* a launch that fits in one slice runs as recorded: the repeat-run
     * path, no slice command buffer to record */
    j->whole = sl.begin == 0 && sl.end == j->total;
    r = j->whole ? c->ops->submit(c->dev, j->l->prog) : c->ops->submit_slice(c->dev, j->l->prog, sl);
    *end = sl.end;
    if (!r) c->inflight++;
    return r;
}

/* Under d->mu, after the wait for j's submission: its device time. */
static double measured_ns(SchedDev *d, SchedJob *j, double wall)
{
    PxContext *c = d->ctx;
    double t;
    if (!j->whole) t = c->ops->slice_ns(c->dev, j->l->prog);
    else {
        int nst = j->l->k->ir->stages.n;
        c->ops->times(c->dev, j->l->prog, nst, j->l->stage_ns, &t);
    }
    return t > 0 ? t : wall;
}

/* Under d->mu, at the end of a launch: its measured time teaches the
 * kernel's correction, as a run through px_launch_run would. */
static void learn(SchedJob *j)
{
    if (!(j->gpu_ns > 0)) return;
    PxCost cost;
    if (px_launch_cost(j->l, -1, &cost) == PX_OK && cost.predicted_ns > 0)
        ir_correction_update(&j->l->k->corr, cost.predicted_ns * 1e-9, j->gpu_ns * 1e-9);
}

/* One slice (sched.h): charges its device time and finishes j after its
 * last slice. The same code on either thread, so a slice run inline is
 * accounted, sliced, cancelled and lost exactly as the dispatcher's. */
void sched_run_slice(PxSched *s, SchedDev *d, SchedJob *j, int64_t now, int on_dispatcher)
{
    SchedVm *vm = j->vm;
    d->busy = 1;
    j->state = JOB_RUNNING;
    if (!j->t_start) j->t_start = now, j->res.start_seq = d->seq;
    d->seq++;
    int64_t budget = sched_slice_ns(s, d, now);
    int cancel = j->cancel;
    pthread_mutex_unlock(&s->mu);

    /* the device lock is not held while the slice runs: other VMs'
     * submits, compiles and copies go on meanwhile (the wait touches
     * only this job's program) */
    pthread_mutex_lock(&d->mu);
    int64_t end = 0;
    PxResult r = cancel ? PX_ERR_CANCELLED : submit(d, j, budget, &end);
    pthread_mutex_unlock(&d->mu);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    PxResult w = r ? PX_OK : sched_dev_wait(d, j);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_mutex_lock(&d->mu);
    double ns = 0;
    if (!r) {
        d->ctx->inflight--;
        if (!(r = w)) {
            ns = measured_ns(d, j, (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec));
            j->done = end;
            j->slices++;
            j->gpu_ns += ns;
        }
    }
    /* the device reported the loss (a refusal of ours, a lost buffer,
     * comes with j->res.error set): recreate it in place (loss.c) */
    if (r == PX_ERR_DEVICE_LOST && !j->res.error[0]) sched_device_lost(s, d, j);
    pthread_mutex_lock(&s->mu);
    /* cancelled, or its VM is going away: stop at this boundary */
    if (!r && j->done < j->total && (j->cancel || vm->dying)) r = PX_ERR_CANCELLED;
    char msg[512] = "";
    if (r == PX_ERR_CANCELLED) snprintf(msg, sizeof msg, "cancelled after %d slice%s", j->slices, j->slices == 1 ? "" : "s");
    else if (r) snprintf(msg, sizeof msg, "%s", j->res.error[0] ? j->res.error : px_last_error(d->ctx));
    int finished = r || j->done >= j->total;
    if (finished && !r) learn(j);
    if (finished) job_done(d, j, r);
    pthread_mutex_unlock(&d->mu);

    sched_charge(s, vm, ns, sched_now_ns());
    if (!r) vm->slices++;
    if (finished) {
        j->res.result = r;
        snprintf(j->res.error, sizeof j->res.error, "%s", msg);
        sched_job_finish(s, j);
    } else {
        j->state = JOB_QUEUED; /* between slices: another VM may pass it */
    }
    /* px_sched_vm_destroy and px_vm_migrate wait for no job of its VM
     * to be running */
    if (vm->dying || vm->migrating) pthread_cond_broadcast(&s->done);
    d->busy = 0;
    /* a slice run by a submitter (sched_submit_inline): the dispatcher
     * slept through the work that came meanwhile, and a stop waits for
     * the device to be free */
    if (!on_dispatcher) {
        int64_t wake = 0;
        if (s->stop || sched_pick(s, d, sched_now_ns(), &wake) || wake) pthread_cond_broadcast(&d->work);
    }
}

int sched_submit_inline(PxSched *s, SchedDev *d, SchedJob *j)
{
    int64_t wake = 0;
    if (d->busy || s->stop || sched_pick(s, d, sched_now_ns(), &wake) != j) return 0;
    d->busy = 1;
    j->state = JOB_RUNNING;
    return 1;
}

void *sched_dispatcher(void *arg)
{
    SchedDev *d = arg;
    PxSched *s = d->s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        int64_t now = sched_now_ns(), wake = 0;
        SchedJob *j = s->stop || d->busy ? NULL : sched_pick(s, d, now, &wake);
        if (s->stop) break;
        if (!j) {
            if (wake) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int64_t dt = wake - now;
                ts.tv_sec += dt / 1000000000;
                ts.tv_nsec += dt % 1000000000;
                if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
                pthread_cond_timedwait(&d->work, &s->mu, &ts);
            } else {
                pthread_cond_wait(&d->work, &s->mu);
            }
            continue;
        }
        sched_run_slice(s, d, j, now, 1);
    }
    /* stopping: every job still queued on this device is cancelled, after
     * a submitter's slice in progress (sched_run_slice wakes us) */
    while (d->busy) pthread_cond_wait(&d->work, &s->mu);
    for (int i = 0; i < s->nvms; i++) {
        SchedVm *vm = s->vms[s->order[i]];
        if (vm->dev != d) continue;
        while (vm->head) {
            SchedJob *j = vm->head;
            j->res.result = PX_ERR_CANCELLED;
            snprintf(j->res.error, sizeof j->res.error, "the scheduler is shutting down");
            sched_job_finish(s, j);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}
