/* stats.c — per-VM and per-device statistics and the status JSON of the
 * contract (pxctl status --json, pxhvd's /api/status), the one place where
 * the numbers the dashboard, `pxctl top` and the metrics show are computed.
 * Counters only grow; latency percentiles are over each VM's last
 * SCHED_LAT_RING launches; share achieved and busy fractions are rolling
 * windows of whole seconds (SchedWin), so a ratio is a part of a sum over
 * the same slices and never exceeds 1. Under PxSched.mu. */
#include "sched.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double lat_bound_us[PX_LATENCY_BUCKETS] = {
    50, 100, 250, 500, 1e3, 2.5e3, 5e3, 1e4, 2.5e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6, 5e6, 1e7,
};
static const char *const class_names[PX_SCHED_CLASSES] = {"REALTIME", "INTERACTIVE", "THROUGHPUT", "BATCH"};

double px_sched_latency_bound_us(int i) { return i >= 0 && i < PX_LATENCY_BUCKETS ? lat_bound_us[i] : INFINITY; }
const char *px_sched_class_name(int i) { return i >= 0 && i < PX_SCHED_CLASSES ? class_names[i] : ""; }

int sched_class_index(const char *name)
{
    for (int i = 0; i < PX_SCHED_CLASSES; i++)
        if (name && !strcmp(name, class_names[i])) return i;
    return PX_SCHED_CLASSES - 1;
}

void sched_record_latency(SchedVm *vm, double us)
{
    vm->lat_us[vm->nlat++ % SCHED_LAT_RING] = us;
    vm->lat_sum_us += us;
    for (int i = 0; i < PX_LATENCY_BUCKETS; i++)
        if (us <= lat_bound_us[i]) {
            vm->lat_le[i]++;
            break;
        }
}

void sched_record_class(SchedVm *vm, const SchedJob *j)
{
    if (j->res.result == PX_OK) vm->cls_done[j->cls]++;
    else vm->cls_failed[j->cls]++;
}

/* ---- rolling windows ------------------------------------------------------------------ */

static int64_t win_second(const PxSched *s, int64_t now) { return now > s->t0 ? (now - s->t0) / 1000000000 : 0; }

static void win_add(SchedWin *w, int64_t sec, uint64_t ns)
{
    int k = (int)(sec % SCHED_WIN_S);
    if (w->stamp[k] != sec + 1) {
        w->stamp[k] = sec + 1;
        w->ns[k] = 0;
    }
    w->ns[k] += ns;
}

/* ns in seconds first..last (inclusive); seconds the ring no longer holds
 * count as 0. */
static uint64_t win_sum(const SchedWin *w, int64_t first, int64_t last)
{
    uint64_t t = 0;
    for (int64_t sec = first < 0 ? 0 : first; sec <= last; sec++) {
        int k = (int)(sec % SCHED_WIN_S);
        if (w->stamp[k] == sec + 1) t += w->ns[k];
    }
    return t;
}

void sched_record_busy(SchedVm *vm, uint64_t ns, int64_t now)
{
    int64_t sec = win_second(vm->dev->s, now);
    win_add(&vm->win, sec, ns);
    win_add(&vm->dev->win, sec, ns);
}

static double ratio(uint64_t part, uint64_t whole)
{
    if (!whole) return 0;
    return part >= whole ? 1.0 : (double)part / (double)whole;
}

/* Its part of its device's busy time in the last `secs` seconds. A VM's
 * slices are charged to its device's window at the same moment, so the
 * part is at most the whole; a migrated VM's earlier seconds were charged
 * to another device, hence ratio()'s cap. */
static double achieved(const SchedVm *vm, int64_t secs, int64_t now)
{
    int64_t last = win_second(vm->dev->s, now);
    return ratio(win_sum(&vm->win, last - secs + 1, last), win_sum(&vm->dev->win, last - secs + 1, last));
}

/* Busy ns over the wall time of the window. A slice is charged when it
 * ends, so one that began before the window can add up to a slice too
 * many: ratio() caps it at 1. */
static double busy(const SchedDev *d, int64_t secs, int64_t now)
{
    int64_t last = win_second(d->s, now), first = last - secs + 1;
    if (first < 0) first = 0;
    int64_t wall = now - (d->s->t0 + first * 1000000000);
    return ratio(win_sum(&d->win, first, last), wall > 0 ? (uint64_t)wall : 0);
}

void sched_dev_windows(const SchedDev *d, PxDeviceStats *out)
{
    int64_t now = sched_now_ns();
    out->busy_10s = busy(d, 10, now);
    out->busy_60s = busy(d, 60, now);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of v[0..n), nearest rank; 0 when n is 0. */
static double quantile(double *v, int n, double q)
{
    if (!n) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int k = (int)(q * n + 0.999999);
    if (k < 1) k = 1;
    return v[k - 1];
}

void sched_vm_stats(const SchedVm *vm, PxVmStats *out)
{
    memset(out, 0, sizeof *out);
    out->id = vm->cfg.id;
    snprintf(out->name, sizeof out->name, "%s", vm->cfg.name);
    snprintf(out->profile, sizeof out->profile, "%s", vm->cfg.profile);
    out->device = vm->dev->index;
    out->mem_quota_bytes = vm->cfg.mem_quota;
    out->mem_used_bytes = vm->mem_used;
    out->share = vm->cfg.share;
    out->gpu_ns = vm->gpu_ns;
    out->launches_done = vm->done;
    out->launches_failed = vm->failed;
    out->queued = vm->nqueued;
    out->running = vm->head && vm->head->state == JOB_RUNNING;
    out->slices = vm->slices;
    out->evictions = vm->evictions;
    out->bytes_evicted = vm->bytes_evicted;
    out->bytes_restored = vm->bytes_restored;
    out->launches_lost = vm->launches_lost;
    out->migrations = vm->migrations;
    int n = vm->nlat < SCHED_LAT_RING ? (int)vm->nlat : SCHED_LAT_RING;
    double tmp[SCHED_LAT_RING];
    memcpy(tmp, vm->lat_us, sizeof *tmp * (size_t)n);
    out->latency_p50_us = quantile(tmp, n, 0.50);
    out->latency_p99_us = quantile(tmp, n, 0.99);
    int64_t now = sched_now_ns();
    out->achieved_10s = achieved(vm, 10, now);
    out->achieved_60s = achieved(vm, 60, now);
    uint64_t cum = 0;
    for (int i = 0; i < PX_LATENCY_BUCKETS; i++) out->latency_le[i] = cum += vm->lat_le[i];
    out->latency_sum_us = vm->lat_sum_us;
    memcpy(out->class_done, vm->cls_done, sizeof out->class_done);
    memcpy(out->class_failed, vm->cls_failed, sizeof out->class_failed);
    out->incarnation = vm->incarnation;
}

/* ---- the status JSON ------------------------------------------------------------------ */

/* A number as the contract writes it: whole values as integers (a share
 * of 20 is 20, not 20.0), others rounded to `digits` decimals. */
static json_t *num(double v, int digits)
{
    double r = pow(10, digits);
    v = round(v * r) / r;
    if (v == floor(v) && fabs(v) < 9e15) return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *u64(uint64_t v) { return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v); }

/* The last PX_SCHED_HISTORY_S whole seconds of a window in ms, oldest
 * first: what the dashboard's stacked chart draws. */
static json_t *history_ms(const SchedWin *w, int64_t now_sec)
{
    json_t *a = json_array();
    for (int64_t sec = now_sec - PX_SCHED_HISTORY_S; sec < now_sec; sec++)
        json_array_append_new(a, num((double)win_sum(w, sec, sec) * 1e-6, 1));
    return a;
}

static json_t *device_json(const SchedDev *d, int64_t now)
{
    PxDeviceInfo di;
    px_device_info(d->ctx, &di);
    PxDeviceStats ws = {0};
    sched_dev_windows(d, &ws);
    json_t *o = json_pack("{s:i, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "index", d->index, "name", di.name,
                          "memory_bytes", u64(d->capacity), "memory_used_bytes", u64(d->mem_used), "busy_ns",
                          u64(d->busy_ns), "share_used", num(d->share_sum, 3), "busy_10s", num(100 * ws.busy_10s, 1),
                          "busy_60s", num(100 * ws.busy_60s, 1), "busy_ms_history",
                          history_ms(&d->win, win_second(d->s, now)));
    /* oversubscription and device loss (evict.c, loss.c) */
    if (o && json_object_update_new(o, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                                                 "migrations_in", u64(d->migrations_in), "migrations_out",
                                                 u64(d->migrations_out), "balance_in", u64(d->balance_in),
                                                 "balance_out", u64(d->balance_out), "oversubscribe",
                                                 num(d->s->oversub, 3), "memory_resident_bytes", u64(d->resident),
                                                 "evictions", u64(d->evictions), "bytes_evicted",
                                                 u64(d->bytes_evicted), "bytes_restored", u64(d->bytes_restored),
                                                 "device_losses", u64(d->losses), "launches_lost",
                                                 u64(d->launches_lost))))
        json_decref(o), o = NULL;
    return o;
}

static json_t *vm_json(const SchedVm *vm, int64_t now)
{
    PxVmStats v;
    sched_vm_stats(vm, &v);
    json_t *o = json_pack("{s:i, s:s, s:i, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:o, s:o, s:o}", "id", (int)v.id,
                          "name", v.name, "device", v.device, "profile", v.profile, "mem_quota_bytes",
                          u64(v.mem_quota_bytes), "mem_used_bytes", u64(v.mem_used_bytes), "share", num(v.share, 3),
                          "gpu_ns", u64(v.gpu_ns), "launches_done", u64(v.launches_done), "launches_failed",
                          u64(v.launches_failed), "queued", v.queued, "latency_p50_us", num(v.latency_p50_us, 1),
                          "latency_p99_us", num(v.latency_p99_us, 1), "slices", u64(v.slices));
    /* keys beyond the contract's (it allows more): what the dashboard and
     * pxctl top show, computed here once */
    if (o && json_object_update_new(o, json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "running", v.running,
                                                 "achieved_10s", num(100 * v.achieved_10s, 1), "achieved_60s",
                                                 num(100 * v.achieved_60s, 1), "incarnation", u64(v.incarnation),
                                                 "gpu_ms_history", history_ms(&vm->win, win_second(vm->dev->s, now)),
                                                 "evictions", u64(v.evictions), "bytes_evicted",
                                                 u64(v.bytes_evicted), "bytes_restored", u64(v.bytes_restored),
                                                 "launches_lost", u64(v.launches_lost), "migrations", u64(v.migrations))))
        json_decref(o), o = NULL;
    return o;
}

static json_t *status_json(PxSched *s, int64_t now)
{
    json_t *devs = json_array(), *vms = json_array();
    for (int i = 0; i < s->ndev; i++) json_array_append_new(devs, device_json(&s->dev[i], now));
    for (int i = 0; i < s->nvms; i++) json_array_append_new(vms, vm_json(s->vms[s->order[i]], now));
    int entries = 0;
    for (int i = 0; i < s->ndev; i++) entries += s->dev[i].ncache;
    return json_pack("{s:s, s:I, s:o, s:o, s:o, s:{s:i, s:i, s:o, s:o, s:o}, s:i, s:o}", "policy",
                     s->policy == PX_POLICY_FIXED ? "fixed" : "fair", "slice_us", (json_int_t)(s->slice_ns / 1000), "uptime_s",
                     num((double)(now - s->t0) * 1e-9, 3), "devices", devs, "vms", vms, "compile_cache", "entries",
                     entries, "capacity", s->cache_max, "hits", u64(s->cache_hits), "misses", u64(s->cache_misses),
                     "evictions", u64(s->cache_evictions), "history_s", PX_SCHED_HISTORY_S, "balance_moves",
                     u64(s->balance_moves));
}

char *px_sched_status_json(PxSched *s)
{
    if (!s) return NULL;
    pthread_mutex_lock(&s->mu);
    json_t *j = status_json(s, sched_now_ns());
    pthread_mutex_unlock(&s->mu);
    /* one line: a test or operator can grep one VM's object */
    char *out = j ? json_dumps(j, JSON_REAL_PRECISION(15)) : NULL;
    json_decref(j);
    return out;
}
