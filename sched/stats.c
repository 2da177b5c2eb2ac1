/* stats.c — per-VM and per-device statistics and the status JSON of the
 * contract (pxctl status --json). Counters only grow; latency percentiles
 * are over each VM's last SCHED_LAT_RING launches. Under PxSched.mu. */
#include "sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sched_record_latency(SchedVm *vm, double us)
{
    vm->lat_us[vm->nlat++ % SCHED_LAT_RING] = us;
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
    out->migrations = vm->migrations;
    int n = vm->nlat < SCHED_LAT_RING ? (int)vm->nlat : SCHED_LAT_RING;
    double tmp[SCHED_LAT_RING];
    memcpy(tmp, vm->lat_us, sizeof *tmp * (size_t)n);
    out->latency_p50_us = quantile(tmp, n, 0.50);
    out->latency_p99_us = quantile(tmp, n, 0.99);
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

char *px_sched_status_json(PxSched *s)
{
    if (!s) return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    int64_t now = sched_now_ns();
    pthread_mutex_lock(&s->mu);
    fprintf(f, "{\"policy\": \"%s\", \"slice_us\": %lld, \"uptime_s\": %.3f,\n \"devices\": [",
            s->policy == PX_POLICY_FIXED ? "fixed" : "fair", (long long)(s->slice_ns / 1000),
            (double)(now - s->t0) * 1e-9);
    for (int i = 0; i < s->ndev; i++) {
        const SchedDev *d = &s->dev[i];
        PxDeviceInfo di;
        px_device_info(d->ctx, &di);
        fprintf(f, "%s{\"index\": %d, \"name\": ", i ? ", " : "", i);
        json_str(f, di.name);
        fprintf(f, ", \"memory_bytes\": %llu, \"memory_used_bytes\": %llu, \"busy_ns\": %llu",
                (unsigned long long)d->capacity, (unsigned long long)d->mem_used, (unsigned long long)d->busy_ns);
        fprintf(f, ", \"share_used\": %g, \"migrations_in\": %llu, \"migrations_out\": %llu, \"balance_in\": %llu, "
                "\"balance_out\": %llu}", d->share_sum, (unsigned long long)d->migrations_in,
                (unsigned long long)d->migrations_out, (unsigned long long)d->balance_in, (unsigned long long)d->balance_out);
    }
    fprintf(f, "],\n \"vms\": [");
    for (int i = 0; i < s->nvms; i++) {
        PxVmStats v;
        sched_vm_stats(s->vms[s->order[i]], &v);
        fprintf(f, "%s\n  {\"id\": %u, \"name\": ", i ? "," : "", v.id);
        json_str(f, v.name);
        fprintf(f, ", \"device\": %d, \"profile\": ", v.device);
        json_str(f, v.profile);
        fprintf(f,
                ", \"mem_quota_bytes\": %llu, \"mem_used_bytes\": %llu, \"share\": %g, \"gpu_ns\": %llu, "
                "\"launches_done\": %llu, \"launches_failed\": %llu, \"queued\": %d, \"latency_p50_us\": %.1f, "
                "\"latency_p99_us\": %.1f, \"slices\": %llu, \"migrations\": %llu}",
                (unsigned long long)v.mem_quota_bytes, (unsigned long long)v.mem_used_bytes, v.share,
                (unsigned long long)v.gpu_ns, (unsigned long long)v.launches_done,
                (unsigned long long)v.launches_failed, v.queued, v.latency_p50_us, v.latency_p99_us,
                (unsigned long long)v.slices, (unsigned long long)v.migrations);
    }
    int entries = 0;
    for (int i = 0; i < s->ndev; i++) entries += s->dev[i].ncache;
    fprintf(f, "],\n \"balance_moves\": %llu,", (unsigned long long)s->balance_moves);
    fprintf(f, "\n \"compile_cache\": {\"entries\": %d, \"capacity\": %d, \"hits\": %llu, \"misses\": %llu, \"evictions\": %llu}}\n",
            entries, s->cache_max, (unsigned long long)s->cache_hits, (unsigned long long)s->cache_misses,
            (unsigned long long)s->cache_evictions);
    pthread_mutex_unlock(&s->mu);
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    return buf;
}
