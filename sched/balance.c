/* balance.c — auto-balance between devices (px_sched_balance;
 * docs/SCHEDULER.md, "Balance").
 *
 * The rule, once per period (the embedder's clock):
 *   - hot: the busiest device whose busy fraction over the period was
 *     above `high`; cold: the idlest one below `low`; devices that took
 *     part in a move sit out `cooldown` periods. No pair: no move.
 *   - a candidate is a VM on hot (not cooling, with device time in the
 *     period) whose share and quota fit on cold, and whose move, predicted
 *     from its own device time, narrows the gap between the two and does
 *     not push cold over `high` (else cold would shed it right back);
 *   - of the candidates, those that leave a gap within 0.05 of the best
 *     one's: the one with the fewest bytes to copy (least disruption).
 * Why it does not oscillate: a move needs a device above `high` and one
 * below `low`, and never makes the receiver exceed `high` by prediction;
 * predictions of saturated devices are low (a backlogged VM takes what is
 * free), so the cooldown keeps both devices and the VM still until their
 * busy fractions were measured again after the move. */
#include "sched.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BAL_TIE 0.05 /* gaps this close even the devices alike */

void px_balance_config_default(PxBalanceConfig *c)
{
    c->high = 0.80;
    c->low = 0.40;
    c->cooldown = 2;
}

/* The gap hot and cold would have with v moved; -1 when v may not move. */
static double gap_after(const SchedBalDev *hot, const SchedBalDev *cold, const SchedBalVm *v, const PxBalanceConfig *c)
{
    if (v->cooling || !(v->load > 0)) return -1;
    if (v->share > cold->share_free + 1e-9 || v->quota > cold->mem_free) return -1;
    double h = hot->busy - v->load, l = cold->busy + v->load;
    if (l > c->high) return -1;
    double g = fabs(h - l);
    return g < hot->busy - cold->busy - 1e-9 ? g : -1;
}

int sched_balance_pick(const SchedBalDev *d, int nd, const SchedBalVm *v, int nv, const PxBalanceConfig *c, int *to)
{
    int hot = -1, cold = -1;
    for (int i = 0; i < nd; i++) {
        if (d[i].cooling) continue;
        if (d[i].busy > c->high && (hot < 0 || d[i].busy > d[hot].busy)) hot = i;
        if (d[i].busy < c->low && (cold < 0 || d[i].busy < d[cold].busy)) cold = i;
    }
    if (hot < 0 || cold < 0) return -1;
    double best = -1;
    for (int k = 0; k < nv; k++) {
        double g = v[k].device == hot ? gap_after(&d[hot], &d[cold], &v[k], c) : -1;
        if (g >= 0 && (best < 0 || g < best)) best = g;
    }
    int pick = -1;
    for (int k = 0; k < nv && best >= 0; k++) {
        double g = v[k].device == hot ? gap_after(&d[hot], &d[cold], &v[k], c) : -1;
        if (g >= 0 && g <= best + BAL_TIE && (pick < 0 || v[k].bytes < v[pick].bytes)) pick = k;
    }
    if (pick >= 0) *to = cold;
    return pick;
}

/* Under s->mu: the period's figures from the counters, and the next
 * period starts (cooldowns count down). ids[k] is v[k]'s VM. */
static void measure(PxSched *s, int64_t now, SchedBalDev *d, SchedBalVm *v, uint32_t *ids)
{
    double period = (double)(now - s->bal_at);
    for (int i = 0; i < s->ndev; i++) {
        SchedDev *x = &s->dev[i];
        double b = period > 0 ? (double)(x->busy_ns - x->bal_busy_ns) / period : 0;
        d[i] = (SchedBalDev){b > 1 ? 1 : b, 100.0 - x->share_sum, x->capacity - x->quota_sum, x->bal_cool > 0};
        x->bal_busy_ns = x->busy_ns;
        if (x->bal_cool > 0) x->bal_cool--;
    }
    for (int k = 0; k < s->nvms; k++) {
        SchedVm *vm = s->vms[s->order[k]];
        double l = period > 0 ? (double)(vm->gpu_ns - vm->bal_gpu_ns) / period : 0;
        v[k] = (SchedBalVm){vm->dev->index, l > 1 ? 1 : l, vm->cfg.share, vm->cfg.mem_quota, vm->mem_used,
                            vm->bal_cool > 0 || vm->migrating || vm->dying};
        ids[k] = vm->cfg.id;
        vm->bal_gpu_ns = vm->gpu_ns;
        if (vm->bal_cool > 0) vm->bal_cool--;
    }
    s->bal_at = now;
}

/* Under s->mu: the two devices and the VM of a move sit out the next
 * periods. */
static void cool(PxSched *s, const PxBalanceConfig *c, uint32_t id, int from, int to)
{
    s->dev[from].bal_cool = c->cooldown;
    s->dev[to].bal_cool = c->cooldown;
    if (s->vms[id]) s->vms[id]->bal_cool = c->cooldown;
}

PxResult px_sched_balance(PxSched *s, const PxBalanceConfig *c, PxBalanceMove *out)
{
    if (out) memset(out, 0, sizeof *out);
    if (!s || !c) return sched_fail(PX_ERR_INVALID, "px_sched_balance: NULL argument");
    if (!(c->low >= 0 && c->low < c->high && c->high <= 1) || c->cooldown < 0)
        return sched_fail(PX_ERR_INVALID, "balance thresholds %g and %g: expected 0 <= low < high <= 1", c->low, c->high);
    pthread_mutex_lock(&s->bal_mu);
    pthread_mutex_lock(&s->mu);
    int64_t now = sched_now_ns();
    SchedBalDev d[PX_SCHED_MAX_DEVICES];
    SchedBalVm *v = calloc((size_t)s->nvms + 1, sizeof *v);
    uint32_t *ids = calloc((size_t)s->nvms + 1, sizeof *ids);
    PxResult r = v && ids ? PX_OK : sched_fail(PX_ERR_OUT_OF_MEMORY, "out of memory");
    int k = -1, to = -1, nv = s->nvms;
    if (!r) {
        int first = !s->bal_at; /* the first call only starts a period */
        measure(s, now, d, v, ids);
        if (!first) k = sched_balance_pick(d, s->ndev, v, nv, c, &to);
    }
    pthread_mutex_unlock(&s->mu);
    PxBalanceMove mv = {0};
    if (k >= 0) {
        mv.vm = ids[k];
        mv.from = v[k].device;
        mv.to = to;
        mv.from_busy = d[mv.from].busy;
        mv.to_busy = d[to].busy;
        mv.vm_load = v[k].load;
        r = px_vm_migrate(s, mv.vm, to, &mv.stats);
        mv.moved = r == PX_OK;
        pthread_mutex_lock(&s->mu);
        cool(s, c, mv.vm, mv.from, to); /* a failed move is not retried at once either */
        s->balance_moves += mv.moved;
        s->dev[mv.from].balance_out += mv.moved;
        s->dev[to].balance_in += mv.moved;
        pthread_mutex_unlock(&s->mu);
        if (mv.moved)
            sched_log(s, PX_LOG_INFO, "balance: VM %u (%.0f%% of its device) moved from device %d (%.0f%% busy) to %d (%.0f%% busy)",
                      mv.vm, 100 * mv.vm_load, mv.from, 100 * mv.from_busy, to, 100 * mv.to_busy);
    }
    pthread_mutex_unlock(&s->bal_mu);
    free(v);
    free(ids);
    if (out) *out = mv;
    return r;
}
