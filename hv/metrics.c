/* metrics.c — the scheduler's statistics in the Prometheus text format
 * (version 0.0.4), for pxhvd's GET /metrics. Every number comes from
 * px_sched_*_stats (sched/stats.c computes them once for every view);
 * this file only names and formats them. The names and their meaning are
 * listed in docs/HYPERVISOR.md, "Metrics". */
#include "hv/hv.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pxsched.h"

/* One metric family being written: its HELP and TYPE lines come once,
 * before its first sample. */
typedef struct Fam {
    const char *name, *type, *help;
} Fam;

static const Fam F_DEV_INFO = {"px_device_info", "gauge", "A device pxhvd shares (1), with its name."};
static const Fam F_DEV_MEM = {"px_device_memory_bytes", "gauge", "Memory the device hands out to quotas."};
static const Fam F_DEV_USED = {"px_device_memory_used_bytes", "gauge", "Bytes the VMs on the device hold."};
static const Fam F_DEV_RESIDENT = {"px_device_memory_resident_bytes", "gauge",
                                   "Of the VMs' bytes, those in device memory now (the rest evicted to host)."};
static const Fam F_DEV_MIG = {"px_device_migrations_total", "counter",
                              "VMs moved to (direction=\"in\") or away from (\"out\") the device; by=\"balance\": "
                              "the auto-balancer's moves, by=\"operator\": the others."};
static const Fam F_DEV_LOSSES = {"px_device_losses_total", "counter", "Times the device was lost and opened again."};
static const Fam F_DEV_BUSY = {"px_device_busy_seconds_total", "counter", "Device time of every slice run on the device."};
static const Fam F_DEV_BUSYR = {"px_device_busy_ratio", "gauge",
                                "Busy time over wall time in the last 10 s or 60 s (window), 0..1."};
static const Fam F_DEV_SHARE = {"px_device_share_allocated_ratio", "gauge", "Sum of the shares of the device's VMs, 0..1."};
static const Fam F_VM_INFO = {"px_vm_info", "gauge", "A VM (1), with its name and profile."};
static const Fam F_VM_QUOTA = {"px_vm_memory_quota_bytes", "gauge", "The VM's memory quota."};
static const Fam F_VM_USED = {"px_vm_memory_used_bytes", "gauge", "Bytes the VM holds on its device."};
static const Fam F_VM_SHARE = {"px_vm_share_ratio", "gauge", "The VM's target share of its device, 0..1."};
static const Fam F_VM_ACH = {"px_vm_share_achieved_ratio", "gauge",
                             "The VM's part of its device's busy time in the last 10 s or 60 s (window), 0..1."};
static const Fam F_VM_GPU = {"px_vm_gpu_seconds_total", "counter", "Device time of the VM's slices."};
static const Fam F_VM_LAUNCH = {"px_vm_launches_total", "counter", "Launches finished, by workload class and result."};
static const Fam F_VM_SLICES = {"px_vm_slices_total", "counter", "Slices the VM's launches ran as."};
static const Fam F_VM_QUEUE = {"px_vm_queue_depth", "gauge", "Launches submitted and not finished (the running one included)."};
static const Fam F_VM_RUN = {"px_vm_running", "gauge", "1 while one of the VM's launches is on the device."};
static const Fam F_VM_LAT = {"px_vm_launch_latency_seconds", "histogram", "Submit to done of the VM's launches done."};
static const Fam F_VM_EVICT = {"px_vm_evictions_total", "counter", "The VM's buffers moved out of device memory."};
static const Fam F_VM_EVICTED = {"px_vm_evicted_bytes_total", "counter", "Bytes of the VM's buffers evicted to host."};
static const Fam F_VM_RESTORED = {"px_vm_restored_bytes_total", "counter", "Bytes of the VM's buffers brought back."};
static const Fam F_VM_MIG = {"px_vm_migrations_total", "counter", "Times the VM moved to another device."};
static const Fam F_VM_LOST = {"px_vm_launches_lost_total", "counter", "The VM's launches failed by a device loss."};
static const Fam F_CACHE = {"px_compile_cache_events_total", "counter", "Compile cache lookups (hit, miss) and evictions."};
static const Fam F_CACHE_N = {"px_compile_cache_entries", "gauge", "Compiled modules in the cache, all devices."};

typedef struct Out {
    FILE *f;
    const Fam *last;           /* the family whose header was written last */
} Out;

static void head(Out *o, const Fam *fam)
{
    if (o->last == fam) return;
    o->last = fam;
    fprintf(o->f, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name, fam->type);
}

/* A label value: backslash, double quote and newline escaped (the text
 * format's rules). */
static void label_value(FILE *f, const char *v)
{
    fputc('"', f);
    for (; *v; v++) {
        if (*v == '\\' || *v == '"') fprintf(f, "\\%c", *v);
        else if (*v == '\n') fputs("\\n", f);
        else fputc(*v, f);
    }
    fputc('"', f);
}

/* One sample: the family's name with suffix, labels (formatted, without
 * braces; "" for none), value. */
static void sample(Out *o, const Fam *fam, const char *suffix, const char *labels, double v)
{
    head(o, fam);
    fprintf(o->f, *labels ? "%s%s{%s} " : "%s%s%s ", fam->name, suffix, labels);
    if (isinf(v)) fputs(v > 0 ? "+Inf" : "-Inf", o->f);
    else if (v == floor(v) && fabs(v) < 1e15) fprintf(o->f, "%.0f", v);
    else fprintf(o->f, "%.9g", v);
    fputc('\n', o->f);
}

/* The text format wants a family's samples together: the callers walk
 * the parts outermost and the devices or VMs inside. */
typedef enum DevPart {
    DP_INFO, DP_MEM, DP_USED, DP_RESIDENT, DP_BUSY, DP_BUSYR, DP_SHARE, DP_MIG, DP_LOSSES, DP_COUNT
} DevPart;

static void device_metrics(Out *o, const PxDeviceStats *d, DevPart part)
{
    char l[64], lw[96];
    snprintf(l, sizeof l, "device=\"%d\"", d->index);
    switch (part) {
    case DP_INFO:
        head(o, &F_DEV_INFO);
        fprintf(o->f, "px_device_info{%s,name=", l);
        label_value(o->f, d->name);
        fputs("} 1\n", o->f);
        break;
    case DP_MEM: sample(o, &F_DEV_MEM, "", l, (double)d->memory_bytes); break;
    case DP_USED: sample(o, &F_DEV_USED, "", l, (double)d->memory_used_bytes); break;
    case DP_RESIDENT: sample(o, &F_DEV_RESIDENT, "", l, (double)d->memory_resident_bytes); break;
    case DP_BUSY: sample(o, &F_DEV_BUSY, "", l, (double)d->busy_ns * 1e-9); break;
    case DP_BUSYR:
        snprintf(lw, sizeof lw, "%s,window=\"10s\"", l);
        sample(o, &F_DEV_BUSYR, "", lw, d->busy_10s);
        snprintf(lw, sizeof lw, "%s,window=\"60s\"", l);
        sample(o, &F_DEV_BUSYR, "", lw, d->busy_60s);
        break;
    case DP_SHARE: sample(o, &F_DEV_SHARE, "", l, d->share_used / 100); break;
    case DP_MIG: {
        /* the balancer's moves are part of migrations_in/out */
        const struct {
            const char *dir, *by;
            uint64_t n;
        } m[4] = {{"in", "balance", d->balance_in},
                  {"in", "operator", d->migrations_in - d->balance_in},
                  {"out", "balance", d->balance_out},
                  {"out", "operator", d->migrations_out - d->balance_out}};
        for (int k = 0; k < 4; k++) {
            snprintf(lw, sizeof lw, "%s,direction=\"%s\",by=\"%s\"", l, m[k].dir, m[k].by);
            sample(o, &F_DEV_MIG, "", lw, (double)m[k].n);
        }
        break;
    }
    case DP_LOSSES: sample(o, &F_DEV_LOSSES, "", l, (double)d->losses); break;
    case DP_COUNT: break;
    }
}

typedef enum VmPart {
    VP_INFO, VP_QUOTA, VP_USED, VP_SHARE, VP_ACH, VP_GPU, VP_LAUNCH, VP_SLICES, VP_QUEUE, VP_RUN, VP_LAT,
    VP_EVICT, VP_EVICTED, VP_RESTORED, VP_LOST, VP_MIG, VP_COUNT
} VmPart;

static void vm_metrics(Out *o, const PxVmStats *v, VmPart part)
{
    char l[128], lx[192];
    snprintf(l, sizeof l, "vm=\"%u\",incarnation=\"%llu\",device=\"%d\"", v->id, (unsigned long long)v->incarnation,
             v->device);
    switch (part) {
    case VP_INFO:
        head(o, &F_VM_INFO);
        fprintf(o->f, "px_vm_info{%s,name=", l);
        label_value(o->f, v->name);
        fputs(",profile=", o->f);
        label_value(o->f, v->profile);
        fputs("} 1\n", o->f);
        break;
    case VP_QUOTA: sample(o, &F_VM_QUOTA, "", l, (double)v->mem_quota_bytes); break;
    case VP_USED: sample(o, &F_VM_USED, "", l, (double)v->mem_used_bytes); break;
    case VP_SHARE: sample(o, &F_VM_SHARE, "", l, v->share / 100); break;
    case VP_ACH:
        snprintf(lx, sizeof lx, "%s,window=\"10s\"", l);
        sample(o, &F_VM_ACH, "", lx, v->achieved_10s);
        snprintf(lx, sizeof lx, "%s,window=\"60s\"", l);
        sample(o, &F_VM_ACH, "", lx, v->achieved_60s);
        break;
    case VP_GPU: sample(o, &F_VM_GPU, "", l, (double)v->gpu_ns * 1e-9); break;
    case VP_LAUNCH:
        for (int c = 0; c < PX_SCHED_CLASSES; c++) {
            snprintf(lx, sizeof lx, "%s,class=\"%s\",result=\"done\"", l, px_sched_class_name(c));
            sample(o, &F_VM_LAUNCH, "", lx, (double)v->class_done[c]);
            snprintf(lx, sizeof lx, "%s,class=\"%s\",result=\"failed\"", l, px_sched_class_name(c));
            sample(o, &F_VM_LAUNCH, "", lx, (double)v->class_failed[c]);
        }
        break;
    case VP_SLICES: sample(o, &F_VM_SLICES, "", l, (double)v->slices); break;
    case VP_QUEUE: sample(o, &F_VM_QUEUE, "", l, v->queued); break;
    case VP_RUN: sample(o, &F_VM_RUN, "", l, v->running); break;
    case VP_LAT:
        for (int b = 0; b < PX_LATENCY_BUCKETS; b++) {
            snprintf(lx, sizeof lx, "%s,le=\"%g\"", l, px_sched_latency_bound_us(b) * 1e-6);
            sample(o, &F_VM_LAT, "_bucket", lx, (double)v->latency_le[b]);
        }
        snprintf(lx, sizeof lx, "%s,le=\"+Inf\"", l);
        sample(o, &F_VM_LAT, "_bucket", lx, (double)v->launches_done);
        sample(o, &F_VM_LAT, "_sum", l, v->latency_sum_us * 1e-6);
        sample(o, &F_VM_LAT, "_count", l, (double)v->launches_done);
        break;
    case VP_EVICT: sample(o, &F_VM_EVICT, "", l, (double)v->evictions); break;
    case VP_EVICTED: sample(o, &F_VM_EVICTED, "", l, (double)v->bytes_evicted); break;
    case VP_RESTORED: sample(o, &F_VM_RESTORED, "", l, (double)v->bytes_restored); break;
    case VP_LOST: sample(o, &F_VM_LOST, "", l, (double)v->launches_lost); break;
    case VP_MIG: sample(o, &F_VM_MIG, "", l, (double)v->migrations); break;
    case VP_COUNT: break;
    }
}

/* The VMs' statistics, each read once, so every family shows the same
 * moment of a VM. NULL when out of memory. */
static PxVmStats *vm_snapshot(PxSched *s, int *n)
{
    int cap = px_sched_vm_ids(s, NULL, 0);
    uint32_t *ids = malloc(sizeof *ids * (size_t)(cap ? cap : 1));
    PxVmStats *v = malloc(sizeof *v * (size_t)(cap ? cap : 1));
    if (!ids || !v) {
        free(ids);
        free(v);
        return NULL;
    }
    int got = px_sched_vm_ids(s, ids, cap), k = 0;
    if (got > cap) got = cap; /* VMs created meanwhile wait for the next scrape */
    for (int i = 0; i < got; i++)
        if (px_sched_vm_stats(s, ids[i], &v[k]) == PX_OK) k++;
    free(ids);
    *n = k;
    return v;
}

char *hv_metrics_text(PxSched *s, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return NULL;
    Out o = {.f = f};
    int nv = 0;
    PxVmStats *v = vm_snapshot(s, &nv);
    int nd = px_sched_device_count(s);
    PxDeviceStats d[PX_SCHED_MAX_DEVICES];
    for (int i = 0; i < nd; i++)
        if (px_sched_device_stats(s, i, &d[i])) d[i].index = -1;
    for (DevPart p = 0; p < DP_COUNT; p++)
        for (int i = 0; i < nd; i++)
            if (d[i].index >= 0) device_metrics(&o, &d[i], p);
    for (VmPart p = 0; v && p < VP_COUNT; p++)
        for (int i = 0; i < nv; i++) vm_metrics(&o, &v[i], p);
    PxCacheStats cs;
    px_sched_cache_stats(s, &cs);
    sample(&o, &F_CACHE, "", "event=\"hit\"", (double)cs.hits);
    sample(&o, &F_CACHE, "", "event=\"miss\"", (double)cs.misses);
    sample(&o, &F_CACHE, "", "event=\"eviction\"", (double)cs.evictions);
    sample(&o, &F_CACHE_N, "", "", cs.entries);
    free(v);
    int bad = fclose(f) || !v;
    if (bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}
