/* sched.c — the scheduler's objects and API (include/pxsched.h): devices,
 * VMs with exact quotas and shares, their modules and buffers, submitting,
 * waiting for and cancelling launches. Locks: sched.h's header comment. */
#include "sched.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- messages ------------------------------------------------------------- */

static _Thread_local char last_error[1024];

const char *px_sched_last_error(void) { return last_error; }

PxResult sched_fail(PxResult r, const char *fmt, ...)
{
    char buf[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(last_error, buf, sizeof buf);
    return r;
}

void sched_log(PxSched *s, PxLogLevel lv, const char *fmt, ...)
{
    if (!s->log) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    s->log(s->log_user, lv, buf);
}

/* A device call failed under d->mu: its context's message is the thread's. */
static PxResult dev_fail(SchedDev *d, PxResult r)
{
    return sched_fail(r, "%s", px_last_error(d->ctx));
}

int64_t sched_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* ---- create and destroy ------------------------------------------------------ */

void px_sched_config_default(PxSchedConfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->policy = PX_POLICY_FAIR;
    cfg->slice_us = 1000;
    cfg->max_queued = 1024;
}

static void stop_all(PxSched *s);

PxResult px_sched_create(const PxSchedConfig *cfg, PxSched **out)
{
    if (!out) return sched_fail(PX_ERR_INVALID, "px_sched_create: NULL argument");
    *out = NULL;
    if (!cfg || cfg->ndevices < 1 || cfg->ndevices > PX_SCHED_MAX_DEVICES)
        return sched_fail(PX_ERR_INVALID, "px_sched_create: %d devices (1 to %d)", cfg ? cfg->ndevices : 0,
                          PX_SCHED_MAX_DEVICES);
    if (cfg->policy != PX_POLICY_FAIR && cfg->policy != PX_POLICY_FIXED)
        return sched_fail(PX_ERR_INVALID, "px_sched_create: unknown policy %d", (int)cfg->policy);
    if (cfg->slice_us < 0 || cfg->long_slice_us < 0 || cfg->slice_us > 10000000 || cfg->long_slice_us > 10000000)
        return sched_fail(PX_ERR_INVALID, "slice length out of range (1 us to 10 s)");
    if (!(cfg->oversubscribe == 0 || (cfg->oversubscribe >= 1 && cfg->oversubscribe <= 64)))
        return sched_fail(PX_ERR_INVALID, "oversubscription ratio %g is out of range (1 to 64; 0: off)", cfg->oversubscribe);
    for (int i = 0; i < cfg->ndevices; i++) {
        if (!cfg->devices[i]) return sched_fail(PX_ERR_INVALID, "device %d: no context", i);
        for (int j = 0; j < i; j++)
            if (cfg->devices[j] == cfg->devices[i])
                return sched_fail(PX_ERR_INVALID, "devices %d and %d are the same context", j, i);
    }
    PxSched *s = calloc(1, sizeof *s);
    if (s) {
        s->vms = calloc(65536, sizeof *s->vms);
        s->order = calloc(65536, sizeof *s->order);
        s->arena = fe_arena_try_new();
    }
    if (!s || !s->vms || !s->order || !s->arena) {
        if (s) {
            free(s->vms);
            free(s->order);
            fe_arena_free(s->arena);
        }
        free(s);
        return sched_fail(PX_ERR_OUT_OF_MEMORY, "out of memory");
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->bal_mu, NULL);
    pthread_cond_init(&s->done, NULL);
    s->policy = cfg->policy;
    int su = cfg->slice_us ? cfg->slice_us : 1000;
    s->slice_ns = (int64_t)su * 1000;
    s->long_slice_ns = (int64_t)(cfg->long_slice_us ? cfg->long_slice_us : 8 * su) * 1000;
    s->max_queued = cfg->max_queued > 0 ? cfg->max_queued : 1024;
    s->cache_max = cfg->compile_cache < 0 ? 0 : cfg->compile_cache ? cfg->compile_cache : SCHED_CACHE_DEFAULT;
    if (s->cache_max > 4096) s->cache_max = 4096;
    s->log = cfg->log;
    s->log_user = cfg->log_user;
    s->oversub = cfg->oversubscribe >= 1 ? cfg->oversubscribe : 1;
    s->host_copies = cfg->host_copies || s->oversub > 1;
    s->t0 = sched_now_ns();
    s->ndev = cfg->ndevices;
    PxResult r = PX_OK;
    for (int i = 0; i < s->ndev; i++) {
        SchedDev *d = &s->dev[i];
        d->index = i;
        d->s = s;
        d->ctx = cfg->devices[i];
        pthread_mutex_init(&d->mu, NULL);
        pthread_mutex_init(&d->jit_mu, NULL);
        pthread_cond_init(&d->work, NULL);
        PxDeviceInfo di;
        px_device_info(d->ctx, &di);
        d->capacity = cfg->capacity[i] ? cfg->capacity[i] : di.device_local_bytes;
    }
    for (int i = 0; i < s->ndev && !r; i++) {
        SchedDev *d = &s->dev[i];
        if (pthread_create(&d->thread, NULL, sched_dispatcher, d) != 0)
            r = sched_fail(PX_ERR_OUT_OF_MEMORY, "cannot start the dispatcher of device %d", i);
        else d->started = 1;
    }
    if (r) {
        px_sched_destroy(s);
        return r;
    }
    *out = s;
    return PX_OK;
}

static void vm_free(PxSched *s, SchedVm *vm);

/* Under d->mu: destroys a shared module no VM and no cache refers to. */
void sched_mod_free(SchedDev *d, SchedMod *sm)
{
    if (!sm) return;
    int shared_jit = d->ctx->caps.emit == CG_EMIT_CPU; /* its code leaves the shared JIT */
    if (shared_jit) pthread_mutex_lock(&d->jit_mu);
    px_module_destroy(sm->m);
    if (shared_jit) pthread_mutex_unlock(&d->jit_mu);
    free(sm->key);
    free(sm->diags);
    free(sm);
}

SchedMod *sched_mod_unref(SchedMod *sm) { return --sm->refs == 0 ? sm : NULL; }

void sched_mod_drop(PxSched *s, SchedDev *d, SchedMod *sm, int locked)
{
    pthread_mutex_lock(&s->mu);
    SchedMod *dead = sched_mod_unref(sm);
    pthread_mutex_unlock(&s->mu);
    if (!dead) return;
    if (!locked) pthread_mutex_lock(&d->mu);
    sched_mod_free(d, dead);
    if (!locked) pthread_mutex_unlock(&d->mu);
}

void px_sched_destroy(PxSched *s)
{
    if (!s) return;
    stop_all(s);
    for (int i = 0; i < s->nvms; i++) {
        SchedVm *vm = s->vms[s->order[i]];
        SchedDev *d = vm->dev; /* vm_free frees vm */
        pthread_mutex_lock(&d->mu);
        vm_free(s, vm);
        pthread_mutex_unlock(&d->mu);
    }
    for (int i = 0; i < s->ndev; i++) {
        SchedDev *d = &s->dev[i];
        for (int k = 0; k < d->ncache; k++) {
            d->cache[k]->cached = 0;
            sched_mod_free(d, sched_mod_unref(d->cache[k]));
        }
        free(d->cache);
    }
    for (int i = 0; i < s->ndev; i++) {
        pthread_mutex_destroy(&s->dev[i].mu);
        pthread_mutex_destroy(&s->dev[i].jit_mu);
        pthread_cond_destroy(&s->dev[i].work);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->bal_mu);
    pthread_cond_destroy(&s->done);
    fe_arena_free(s->arena);
    free(s->vms);
    free(s->order);
    free(s);
}

/* Stops the dispatchers after their current slice; queued jobs are
 * finished as cancelled (their tickets stay waitable until the VMs go). */
static void stop_all(PxSched *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    for (int i = 0; i < s->ndev; i++) pthread_cond_broadcast(&s->dev[i].work);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->ndev; i++)
        if (s->dev[i].started) pthread_join(s->dev[i].thread, NULL);
}

PxResult px_sched_set_policy(PxSched *s, PxPolicy policy, int slice_us, int long_slice_us)
{
    if (!s) return sched_fail(PX_ERR_INVALID, "px_sched_set_policy: NULL scheduler");
    if (policy != PX_POLICY_FAIR && policy != PX_POLICY_FIXED)
        return sched_fail(PX_ERR_INVALID, "unknown policy %d", (int)policy);
    if (slice_us < 0 || long_slice_us < 0 || slice_us > 10000000 || long_slice_us > 10000000)
        return sched_fail(PX_ERR_INVALID, "slice length out of range (1 us to 10 s)");
    pthread_mutex_lock(&s->mu);
    if (s->policy != policy) {
        /* a fresh bucket for every VM: no debt or credit carries over */
        int64_t now = sched_now_ns();
        for (int i = 0; i < s->nvms; i++) {
            SchedVm *vm = s->vms[s->order[i]];
            vm->tokens_ns = 0;
            vm->tokens_at = now;
        }
    }
    s->policy = policy;
    if (slice_us) s->slice_ns = (int64_t)slice_us * 1000;
    if (long_slice_us) s->long_slice_ns = (int64_t)long_slice_us * 1000;
    for (int i = 0; i < s->ndev; i++) pthread_cond_broadcast(&s->dev[i].work);
    pthread_mutex_unlock(&s->mu);
    return PX_OK;
}

/* ---- VM specs ---------------------------------------------------------------- */

/* "2G", "512M", "1048576": bytes, powers of 1024; 0 on a bad size. */
static int parse_size(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0, mul = 1;
    size_t i = 0;
    if (!n) return 0;
    for (; i < n && isdigit((unsigned char)s[i]); i++) {
        if (v > (UINT64_MAX - 9) / 10) return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0) return 0;
    if (i < n) {
        char u = (char)toupper((unsigned char)s[i]);
        mul = u == 'K' ? 1ull << 10 : u == 'M' ? 1ull << 20 : u == 'G' ? 1ull << 30 : u == 'T' ? 1ull << 40 : 0;
        if (!mul || i + 1 != n) return 0;
    }
    if (v > UINT64_MAX / mul) return 0;
    *out = v * mul;
    return 1;
}

static int apply_profile(const char *p, size_t n, PxVmConfig *c)
{
    static const char *const names[] = {"Q1", "Q2", "Q4", "Q8"};
    for (int i = 0; i < 4; i++)
        if (n == 2 && !strncmp(p, names[i], 2)) {
            c->mem_quota = (1ull << i) << 30;
            c->share = 10.0 * (1 << i);
            snprintf(c->profile, sizeof c->profile, "%s", names[i]);
            return 1;
        }
    return 0;
}

PxResult px_vm_spec_parse(const char *spec, PxVmConfig *c, char *err, size_t errsz)
{
    if (!spec || !c) return PX_ERR_INVALID;
    const char *p = spec;
    if (!*p) {
        if (err) snprintf(err, errsz, "empty VM spec");
        return PX_ERR_INVALID;
    }
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        size_t kn = eq ? (size_t)(eq - p) : n;
        const char *v = eq ? eq + 1 : NULL;
        size_t vn = eq ? n - kn - 1 : 0;
        int ok = 0;
        if (!eq) ok = apply_profile(p, n, c);
        else if (kn == 7 && !strncmp(p, "profile", 7)) ok = apply_profile(v, vn, c);
        else if (kn == 3 && !strncmp(p, "mem", 3)) {
            ok = parse_size(v, vn, &c->mem_quota);
            c->profile[0] = 0;
        } else if (kn == 5 && !strncmp(p, "share", 5)) {
            char num[32];
            char *end;
            if (vn && vn < sizeof num) {
                memcpy(num, v, vn);
                num[vn] = 0;
                double x = strtod(num, &end);
                ok = !*end && x > 0 && x <= 100;
                if (ok) c->share = x;
            }
            c->profile[0] = 0;
        } else if (kn == 6 && !strncmp(p, "device", 6)) {
            uint64_t d;
            ok = parse_size(v, vn, &d) && d < PX_SCHED_MAX_DEVICES && isdigit((unsigned char)v[vn - 1]);
            if (ok) c->device = (int)d;
        } else if (kn == 4 && !strncmp(p, "name", 4)) {
            ok = vn < sizeof c->name;
            for (size_t i = 0; ok && i < vn; i++) ok = isprint((unsigned char)v[i]) && v[i] != '"' && v[i] != '\\';
            if (ok) snprintf(c->name, sizeof c->name, "%.*s", (int)vn, v);
        }
        if (!ok) {
            if (err) snprintf(err, errsz, "bad VM spec part '%.*s' (a profile Q1, Q2, Q4 or Q8, or mem=SIZE, share=PCT, device=N, name=TEXT)", (int)(n > 80 ? 80 : n), p);
            return PX_ERR_INVALID;
        }
        p = e ? e + 1 : p + n;
    }
    return PX_OK;
}

/* ---- VMs --------------------------------------------------------------------- */

/* Under s->mu. NULL (with the thread's message) when vm is not a live VM. */
static SchedVm *find_vm(PxSched *s, uint32_t id)
{
    SchedVm *vm = id >= 1 && id <= 65535 ? s->vms[id] : NULL;
    if (!vm || vm->dying) {
        sched_fail(PX_ERR_NOT_FOUND, "no VM %u", id);
        return NULL;
    }
    return vm;
}

SchedVm *sched_vm_settle(PxSched *s, uint32_t id)
{
    SchedVm *vm;
    /* bounded: a migration waits for no peer, only for its own copies */
    while ((vm = find_vm(s, id)) && vm->paused) pthread_cond_wait(&s->done, &s->mu);
    return vm;
}

/* Under s->mu: the VM once no migration of it runs (bounded: a migration
 * waits for no peer), or NULL with the message set. */
static SchedVm *vm_unmigrating(PxSched *s, uint32_t id)
{
    SchedVm *vm;
    while ((vm = find_vm(s, id)) && vm->migrating) pthread_cond_wait(&s->done, &s->mu);
    return vm;
}

static void mib(char *buf, size_t n, uint64_t bytes)
{
    if (bytes % (1ull << 30) == 0 && bytes) snprintf(buf, n, "%llu GiB", (unsigned long long)(bytes >> 30));
    else if (bytes % (1ull << 20) == 0 && bytes) snprintf(buf, n, "%llu MiB", (unsigned long long)(bytes >> 20));
    else snprintf(buf, n, "%llu bytes", (unsigned long long)bytes);
}

PxResult sched_check_room(PxSched *s, SchedDev *d, double share, uint64_t quota, const SchedVm *except)
{
    double shares = d->share_sum - (except ? except->cfg.share : 0);
    uint64_t quotas = d->quota_sum - (except ? except->cfg.mem_quota : 0);
    /* oversubscribed: quotas may pass the capacity, buffers are evicted (evict.c) */
    uint64_t cap = (uint64_t)((double)d->capacity * s->oversub);
    char q[32], free_[32];
    if (shares + share > 100.0 + 1e-9)
        return sched_fail(PX_ERR_QUOTA, "device %d: a share of %g%% does not fit: %g%% of 100%% is taken (%g%% free)",
                          d->index, share, shares, 100.0 - shares);
    if (quotas > cap || quota > cap - quotas) {
        mib(q, sizeof q, quota);
        mib(free_, sizeof free_, quotas > cap ? 0 : cap - quotas);
        return sched_fail(PX_ERR_QUOTA, "device %d: a memory quota of %s does not fit: %s of its %llu bytes are free%s",
                          d->index, q, free_, (unsigned long long)cap, s->oversub > 1 ? " (oversubscribed)" : "");
    }
    return PX_OK;
}

/* What is left of d (0..2: free share plus free memory, each a fraction of
 * the whole) once a VM of c's size is on it. */
static double room_left(const SchedDev *d, const PxVmConfig *c)
{
    double share = (100.0 - d->share_sum - c->share) / 100.0;
    double mem = d->capacity ? (double)(d->capacity - d->quota_sum - c->mem_quota) / (double)d->capacity : 0;
    return share + mem;
}

/* Under s->mu. Placement, best fit (docs/SCHEDULER.md, "Placement"): of
 * the devices where share and quota fit, the one with the least room left
 * after it (free share plus free memory, as fractions); the lower index on
 * a tie. Large free devices stay whole for large VMs. */
static SchedDev *place(PxSched *s, const PxVmConfig *c)
{
    SchedDev *best = NULL;
    for (int i = 0; i < s->ndev; i++) {
        SchedDev *d = &s->dev[i];
        if (sched_check_room(s, d, c->share, c->mem_quota, NULL) == PX_OK &&
            (!best || room_left(d, c) < room_left(best, c) - 1e-12))
            best = d;
    }
    return best;
}

/* Under s->mu: PX_ERR_QUOTA saying what is free on every device. */
static PxResult place_refusal(PxSched *s, const PxVmConfig *c)
{
    char msg[900], q[32], fr[32];
    mib(q, sizeof q, c->mem_quota);
    int n = snprintf(msg, sizeof msg, "VM %u (share %g%%, quota %s) fits on no device:", c->id, c->share, q);
    for (int i = 0; i < s->ndev && n > 0 && (size_t)n < sizeof msg; i++) {
        const SchedDev *d = &s->dev[i];
        mib(fr, sizeof fr, d->capacity - d->quota_sum);
        n += snprintf(msg + n, sizeof msg - (size_t)n, "%s device %d has %g%% share and %s free", i ? ";" : "", i,
                      100.0 - d->share_sum, fr);
    }
    return sched_fail(PX_ERR_QUOTA, "%s", msg);
}

PxResult px_sched_vm_create(PxSched *s, const PxVmConfig *c)
{
    if (!s || !c) return sched_fail(PX_ERR_INVALID, "px_sched_vm_create: NULL argument");
    if (c->id < 1 || c->id > 65535) return sched_fail(PX_ERR_INVALID, "VM id %u is out of range (1 to 65535)", c->id);
    if (!(c->share > 0 && c->share <= 100))
        return sched_fail(PX_ERR_INVALID, "VM %u: share %g%% is out of range (0 to 100)", c->id, c->share);
    if (c->device < -1 || c->device >= s->ndev)
        return sched_fail(PX_ERR_INVALID, "VM %u: no device %d (there %s %d)", c->id, c->device,
                          s->ndev == 1 ? "is" : "are", s->ndev);
    pthread_mutex_lock(&s->mu);
    PxResult r = PX_OK;
    SchedDev *d = NULL;
    if (s->vms[c->id]) r = sched_fail(PX_ERR_INVALID, "VM %u exists already", c->id);
    else if (c->device >= 0) {
        d = &s->dev[c->device];
        r = sched_check_room(s, d, c->share, c->mem_quota, NULL);
    } else {
        d = place(s, c);
        if (!d) r = place_refusal(s, c);
    }
    SchedVm *vm = NULL;
    if (!r && !(vm = calloc(1, sizeof *vm))) r = sched_fail(PX_ERR_OUT_OF_MEMORY, "out of memory");
    if (!r) {
        vm->cfg = *c;
        vm->cfg.device = d->index;
        vm->cfg.name[sizeof vm->cfg.name - 1] = 0;
        vm->cfg.profile[sizeof vm->cfg.profile - 1] = 0;
        vm->dev = d;
        vm->vt = d->vclock;
        vm->tokens_at = sched_now_ns();
        vm->incarnation = ++s->vms_created;
        d->share_sum += c->share;
        d->quota_sum += c->mem_quota;
        s->vms[c->id] = vm;
        s->order[s->nvms++] = c->id;
        sched_log(s, PX_LOG_INFO, "VM %u created on device %d: share %g%%, quota %llu bytes", c->id, d->index,
                  c->share, (unsigned long long)c->mem_quota);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

PxResult px_sched_vm_set(PxSched *s, const PxVmConfig *c)
{
    if (!s || !c) return sched_fail(PX_ERR_INVALID, "px_sched_vm_set: NULL argument");
    if (!(c->share > 0 && c->share <= 100))
        return sched_fail(PX_ERR_INVALID, "VM %u: share %g%% is out of range (0 to 100)", c->id, c->share);
    pthread_mutex_lock(&s->mu);
    SchedVm *vm = vm_unmigrating(s, c->id); /* a migration holds its share and quota on two devices */
    PxResult r = vm ? PX_OK : PX_ERR_NOT_FOUND;
    if (!r && c->device >= 0 && c->device != vm->dev->index)
        r = sched_fail(PX_ERR_UNSUPPORTED, "VM %u: moving to another device is migration, not a setting", c->id);
    if (!r && c->mem_quota < vm->mem_used)
        r = sched_fail(PX_ERR_QUOTA, "VM %u: a quota of %llu bytes is below the %llu bytes it holds", c->id,
                       (unsigned long long)c->mem_quota, (unsigned long long)vm->mem_used);
    if (!r) r = sched_check_room(s, vm->dev, c->share, c->mem_quota, vm);
    if (!r) {
        SchedDev *d = vm->dev;
        d->share_sum += c->share - vm->cfg.share;
        d->quota_sum = d->quota_sum - vm->cfg.mem_quota + c->mem_quota;
        vm->cfg.share = c->share;
        vm->cfg.mem_quota = c->mem_quota;
        snprintf(vm->cfg.name, sizeof vm->cfg.name, "%s", c->name);
        snprintf(vm->cfg.profile, sizeof vm->cfg.profile, "%s", c->profile);
        pthread_cond_broadcast(&d->work);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* Under vm->dev->mu (and not s->mu): frees everything the VM owns. */
static void vm_free(PxSched *s, SchedVm *vm)
{
    sched_spare_drop(vm);
    pthread_mutex_lock(&s->mu);
    SchedJob *live = vm->live;
    vm->live = NULL;
    pthread_mutex_unlock(&s->mu);
    for (SchedJob *j = live, *n; j; j = n) {
        n = j->live_next;
        sched_job_release(vm->dev, j);
        free(j);
    }
    for (int i = 0; i < vm->bufs.n; i++) {
        pthread_mutex_lock(&s->mu);
        sched_buf_drop(vm->dev, &vm->bufs.v[i]);
        pthread_mutex_unlock(&s->mu);
        px_buffer_destroy(vm->bufs.v[i].p);
    }
    /* its references to shared modules: the last one frees the module */
    for (int i = 0; i < vm->mods.n; i++) sched_mod_drop(s, vm->dev, vm->mods.v[i].p, 1);
    free(vm);
}

/* Under s->mu: cancels every queued job of vm, asks its running one to stop. */
static void cancel_all(PxSched *s, SchedVm *vm, const char *why)
{
    for (SchedJob *j = vm->head, *n; j; j = n) {
        n = j->next;
        if (j->state == JOB_RUNNING) {
            j->cancel = 1;
            continue;
        }
        j->res.result = PX_ERR_CANCELLED;
        snprintf(j->res.error, sizeof j->res.error, "%s", why);
        sched_job_finish(s, j);
    }
}

static int has_running(const SchedVm *vm)
{
    for (const SchedJob *j = vm->head; j; j = j->next)
        if (j->state == JOB_RUNNING) return 1;
    return 0;
}

PxResult px_sched_vm_destroy(PxSched *s, uint32_t id)
{
    if (!s) return sched_fail(PX_ERR_INVALID, "px_sched_vm_destroy: NULL scheduler");
    pthread_mutex_lock(&s->mu);
    SchedVm *vm = vm_unmigrating(s, id);
    if (!vm) {
        pthread_mutex_unlock(&s->mu);
        return PX_ERR_NOT_FOUND;
    }
    vm->dying = 1;
    char why[64];
    snprintf(why, sizeof why, "VM %u was destroyed", id);
    cancel_all(s, vm, why);
    while (has_running(vm)) pthread_cond_wait(&s->done, &s->mu);
    SchedDev *d = vm->dev;
    d->share_sum -= vm->cfg.share;
    d->quota_sum -= vm->cfg.mem_quota;
    d->mem_used -= vm->mem_used;
    s->vms[id] = NULL;
    for (int i = 0; i < s->nvms; i++)
        if (s->order[i] == id) {
            memmove(&s->order[i], &s->order[i + 1], sizeof *s->order * (size_t)(s->nvms - i - 1));
            s->nvms--;
            break;
        }
    pthread_cond_broadcast(&s->done); /* waiters on its tickets give up */
    pthread_mutex_unlock(&s->mu);
    /* no one can reach vm now: its dispatcher skips dying VMs, and API
     * calls find no VM */
    pthread_mutex_lock(&d->mu);
    vm_free(s, vm);
    pthread_mutex_unlock(&d->mu);
    sched_log(s, PX_LOG_INFO, "VM %u destroyed", id);
    return PX_OK;
}

/* ---- a VM's objects ---------------------------------------------------------- */

static void *obj_find(const SchedVm *vm, int mods, uint32_t id)
{
    const SchedObj *v = mods ? vm->mods.v : vm->bufs.v;
    int n = mods ? vm->mods.n : vm->bufs.n;
    for (int i = 0; i < n; i++)
        if (v[i].id == id) return v[i].p;
    return NULL;
}

static void *obj_take(SchedVm *vm, int mods, uint32_t id)
{
    SchedObj *v = mods ? vm->mods.v : vm->bufs.v;
    int *n = mods ? &vm->mods.n : &vm->bufs.n;
    for (int i = 0; i < *n; i++)
        if (v[i].id == id) {
            void *p = v[i].p;
            v[i] = v[--*n];
            return p;
        }
    return NULL;
}

typedef struct ObjAdd {
    PxSched *s;
    SchedVm *vm;
    int mods;
    SchedObj o;
} ObjAdd;

static void obj_add_fn(void *ud)
{
    ObjAdd *a = ud;
    if (a->mods) FE_PUSH(a->s->arena, a->vm->mods, a->o);
    else FE_PUSH(a->s->arena, a->vm->bufs, a->o);
}

int sched_launch_writes(const PxLaunch *l, const PxBuffer *b)
{
    for (int i = 0; l && i < l->k->ir->params.n; i++) {
        if (l->p[i].bound != b) continue;
        PxParamInfo pi;
        px_kernel_param(l->k, i, &pi);
        if (pi.written) return 1;
    }
    return 0;
}

/* Under s->mu: buffer id of vm may have changed (SchedObj.writes). */
static void buffer_touched(SchedVm *vm, uint32_t id)
{
    for (int i = 0; i < vm->bufs.n; i++)
        if (vm->bufs.v[i].id == id) vm->bufs.v[i].writes++;
}

/* Under s->mu: registers p under a new id; 0 when out of memory or ids. */
static uint32_t obj_add(PxSched *s, SchedVm *vm, int mods, void *p)
{
    uint32_t *next = mods ? &vm->next_mod : &vm->next_buf;
    if (*next == UINT32_MAX) return 0;
    ObjAdd a = {s, vm, mods, {.id = *next + 1, .p = p}};
    FeFail f;
    if (fe_protect(obj_add_fn, &a, &f)) return 0;
    return ++*next;
}

/* Looks up vm's device with s->mu, then locks it: returns the device
 * locked, or NULL (message set) when the VM does not exist. A migration
 * changes a VM's device only while it holds the VM paused and after it
 * took the old device's lock once: so when the VM is found on d, not
 * paused, under both locks, it stays on d while the caller holds d->mu.
 * Whether the VM still lives is checked again by the caller. */
static SchedDev *lock_vm_device(PxSched *s, uint32_t id)
{
    for (;;) {
        pthread_mutex_lock(&s->mu);
        SchedVm *vm = sched_vm_settle(s, id);
        SchedDev *d = vm ? vm->dev : NULL;
        pthread_mutex_unlock(&s->mu);
        if (!d) return NULL;
        pthread_mutex_lock(&d->mu);
        pthread_mutex_lock(&s->mu);
        vm = find_vm(s, id);
        int moved = vm && (vm->dev != d || vm->paused);
        pthread_mutex_unlock(&s->mu);
        if (!moved) return d;
        pthread_mutex_unlock(&d->mu);
    }
}

/* Under s->mu: the cached module of d compiled from key, or NULL. */
static SchedMod *cache_find(SchedDev *d, const char *key, size_t kl)
{
    for (int i = 0; i < d->ncache; i++)
        if (d->cache[i]->keylen == kl && !memcmp(d->cache[i]->key, key, kl)) return d->cache[i];
    return NULL;
}

/* Under d->mu and s->mu: sm enters d's cache (it takes a reference); the
 * least recently used entry leaves when the cache is full. Returns the
 * evicted module when nothing refers to it any more (mod_free it). */
static SchedMod *cache_put(PxSched *s, SchedDev *d, SchedMod *sm)
{
    SchedMod *dead = NULL;
    if (!s->cache_max || cache_find(d, sm->key, sm->keylen)) return NULL; /* a racing compile cached it first */
    if (!d->cache && !(d->cache = calloc((size_t)s->cache_max, sizeof *d->cache))) return NULL;
    if (d->ncache == s->cache_max) {
        int lru = 0;
        for (int i = 1; i < d->ncache; i++)
            if (d->cache[i]->used < d->cache[lru]->used) lru = i;
        SchedMod *old = d->cache[lru];
        d->cache[lru] = d->cache[--d->ncache];
        old->cached = 0;
        s->cache_evictions++;
        dead = sched_mod_unref(old);
    }
    sm->cached = 1;
    sm->refs++;
    sm->used = ++s->cache_clock;
    d->cache[d->ncache++] = sm;
    return dead;
}

PxResult sched_mod_get(PxSched *s, SchedDev *d, char *key, size_t kl, char **diags, SchedMod **out)
{
    *out = NULL;
    pthread_mutex_lock(&s->mu);
    SchedMod *sm = s->cache_max ? cache_find(d, key, kl) : NULL;
    if (sm) {
        sm->refs++; /* the caller's */
        sm->used = ++s->cache_clock;
        s->cache_hits++;
    } else if (s->cache_max) s->cache_misses++;
    pthread_mutex_unlock(&s->mu);
    PxResult r = PX_OK;
    if (sm) {
        free(key);
        if (diags && sm->diags && !(*diags = strdup(sm->diags))) r = sched_fail(PX_ERR_OUT_OF_MEMORY, "out of memory");
        if (!r) *out = sm;
        else sched_mod_drop(s, d, sm, 0);
        return r;
    }
    /* the compile driver holds no device lock: other VMs keep running */
    RtLog log = {0};
    PxModule *m = NULL;
    size_t fl = strlen(key);
    int shared_jit = d->ctx->caps.emit == CG_EMIT_CPU;
    if (shared_jit) pthread_mutex_lock(&d->jit_mu);
    r = rt_module_build(d->ctx, &log, key + fl + 1, kl - fl - 1, key, &m, diags);
    if (shared_jit) pthread_mutex_unlock(&d->jit_mu);
    if (r) {
        free(key);
        return sched_fail(r, "%s", log.last);
    }
    pthread_mutex_lock(&d->mu);
    if (!(r = sched_dev_alive(d)) && (r = rt_module_adopt(m))) r = dev_fail(d, r);
    if (!r && !(sm = calloc(1, sizeof *sm))) r = sched_fail(PX_ERR_OUT_OF_MEMORY, "out of memory");
    if (!r && diags && *diags && !(sm->diags = strdup(*diags))) r = sched_fail(PX_ERR_OUT_OF_MEMORY, "out of memory");
    SchedMod *dead = NULL;
    if (r) {
        if (sm) free(sm->diags), free(sm);
        sm = NULL;
        free(key);
        if (shared_jit) pthread_mutex_lock(&d->jit_mu); /* its code leaves the shared JIT */
        px_module_destroy(m);
        if (shared_jit) pthread_mutex_unlock(&d->jit_mu);
    } else {
        sm->m = m;
        sm->key = key;
        sm->keylen = kl;
        sm->refs = 1; /* the caller's */
        pthread_mutex_lock(&s->mu);
        dead = cache_put(s, d, sm);
        pthread_mutex_unlock(&s->mu);
        sched_mod_free(d, dead);
    }
    pthread_mutex_unlock(&d->mu);
    if (!r) *out = sm;
    else if (diags) {
        free(*diags);
        *diags = NULL;
    }
    return r;
}

PxResult px_vm_compile(PxSched *s, uint32_t vmid, const char *src, size_t len, const char *file,
                       uint32_t *module, char **diags)
{
    if (diags) *diags = NULL;
    if (!s || !src || !module) return sched_fail(PX_ERR_INVALID, "px_vm_compile: NULL argument");
    if (!file) file = "<source>";
    for (;;) {
        pthread_mutex_lock(&s->mu);
        SchedVm *vm = sched_vm_settle(s, vmid);
        SchedDev *d = vm ? vm->dev : NULL;
        pthread_mutex_unlock(&s->mu);
        if (!d) return PX_ERR_NOT_FOUND;
        /* the cache key: the file name (it is in the diagnostics) NUL the source;
         * the compile options are the device context's, so the device is the rest */
        size_t fl = strlen(file), kl = fl + 1 + len;
        char *key = malloc(kl);
        if (!key) return sched_fail(PX_ERR_OUT_OF_MEMORY, "out of memory");
        memcpy(key, file, fl + 1);
        memcpy(key + fl + 1, src, len);
        SchedMod *sm;
        PxResult r = sched_mod_get(s, d, key, kl, diags, &sm);
        if (r) return r;
        pthread_mutex_lock(&s->mu);
        vm = find_vm(s, vmid);
        /* a migration moved the VM meanwhile: its code must be the new device's */
        int moved = vm && (vm->dev != d || vm->paused);
        uint32_t id = vm && !moved ? obj_add(s, vm, 1, sm) : 0;
        if (!vm) r = PX_ERR_NOT_FOUND;
        else if (!moved && !id) r = sched_fail(PX_ERR_OUT_OF_MEMORY, "VM %u: out of module ids or memory", vmid);
        pthread_mutex_unlock(&s->mu);
        if (r || moved) sched_mod_drop(s, d, sm, 0);
        if (!r && !moved) {
            *module = id;
            return PX_OK;
        }
        if (diags) {
            free(*diags);
            *diags = NULL;
        }
        if (r) return r;
    }
}

void px_sched_cache_stats(PxSched *s, PxCacheStats *out)
{
    memset(out, 0, sizeof *out);
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    out->hits = s->cache_hits;
    out->misses = s->cache_misses;
    out->evictions = s->cache_evictions;
    out->capacity = s->cache_max;
    for (int i = 0; i < s->ndev; i++) out->entries += s->dev[i].ncache;
    pthread_mutex_unlock(&s->mu);
}

PxResult px_vm_module_destroy(PxSched *s, uint32_t vmid, uint32_t module)
{
    if (!s) return sched_fail(PX_ERR_INVALID, "px_vm_module_destroy: NULL scheduler");
    SchedDev *d = lock_vm_device(s, vmid);
    if (!d) return PX_ERR_NOT_FOUND;
    pthread_mutex_lock(&s->mu);
    SchedVm *vm = find_vm(s, vmid);
    SchedMod *sm = NULL, *dead = NULL;
    PxResult r = PX_OK;
    if (!vm) r = PX_ERR_NOT_FOUND;
    else {
        /* a module with launches still to run stays until they are done */
        const SchedMod *mine = obj_find(vm, 1, module);
        for (SchedJob *j = vm->head; j && !r && mine; j = j->next)
            if (j->l && j->l->k->m == mine->m)
                r = sched_fail(PX_ERR_BUSY, "VM %u: module %u has launches queued", vmid, module);
        if (!r && !(sm = obj_take(vm, 1, module))) r = sched_fail(PX_ERR_NOT_FOUND, "VM %u has no module %u", vmid, module);
        /* a finished job not yet waited for (a cancelled queued one keeps
         * its launch until then) lets its launch go now: it must not
         * outlive the code it was made from */
        for (SchedJob *j = vm->live; sm && j; j = j->live_next)
            if (j->state == JOB_DONE && j->l && j->l->k->m == sm->m) sched_job_release(d, j);
        if (sm) dead = sched_mod_unref(sm); /* the code stays while other VMs or the cache hold it */
        if (sm) sched_spare_drop(vm);
    }
    pthread_mutex_unlock(&s->mu);
    sched_mod_free(d, dead);
    pthread_mutex_unlock(&d->mu);
    return r;
}

PxResult px_vm_module_kernel(PxSched *s, uint32_t vmid, uint32_t module, const char *kernel,
                             const PxKernel **out)
{
    if (!s || !out) return sched_fail(PX_ERR_INVALID, "px_vm_module_kernel: NULL argument");
    *out = NULL;
    /* under the device lock: px_module_kernel records its errors in the context */
    SchedDev *d = lock_vm_device(s, vmid);
    if (!d) return PX_ERR_NOT_FOUND;
    pthread_mutex_lock(&s->mu);
    SchedVm *vm = find_vm(s, vmid);
    SchedMod *sm = vm ? obj_find(vm, 1, module) : NULL;
    PxModule *m = sm ? sm->m : NULL;
    pthread_mutex_unlock(&s->mu);
    PxResult r = !vm ? PX_ERR_NOT_FOUND : !m ? sched_fail(PX_ERR_NOT_FOUND, "VM %u has no module %u", vmid, module) : PX_OK;
    PxKernel *k = NULL;
    if (!r && (r = px_module_kernel(m, kernel, &k))) r = dev_fail(d, r);
    pthread_mutex_unlock(&d->mu);
    if (!r) *out = k;
    return r;
}

/* Under d->mu and s->mu: bytes more for vm, or PX_ERR_QUOTA. */
static PxResult charge(SchedVm *vm, uint64_t bytes)
{
    if (bytes > vm->cfg.mem_quota - vm->mem_used)
        return sched_fail(PX_ERR_QUOTA,
                          "VM %u: memory quota exceeded: %llu bytes asked, %llu in use, quota %llu",
                          vm->cfg.id, (unsigned long long)bytes, (unsigned long long)vm->mem_used,
                          (unsigned long long)vm->cfg.mem_quota);
    vm->mem_used += bytes;
    vm->dev->mem_used += bytes;
    return PX_OK;
}

static void uncharge(SchedVm *vm, uint64_t bytes)
{
    vm->mem_used -= bytes;
    vm->dev->mem_used -= bytes;
}

/* Under d->mu: a buffer of vm charged to its quota and registered. */
static PxResult vm_buffer_new(PxSched *s, SchedDev *d, uint32_t vmid, PxDtype dtype, int rank,
                              const int64_t *shape, uint32_t *id, PxBuffer **out)
{
    /* the size first, without allocating: a refusal changes nothing */
    int64_t count = 1;
    if (rank < 0 || rank > 4 || (rank && !shape) || (unsigned)dtype > PX_F16)
        return sched_fail(PX_ERR_INVALID, "VM %u: bad buffer type or rank", vmid);
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0 || (shape[i] && count > (INT64_C(1) << 50) / shape[i]))
            return sched_fail(PX_ERR_INVALID, "VM %u: buffer extent %lld is out of range", vmid, (long long)shape[i]);
        count *= shape[i];
    }
    uint64_t bytes = (uint64_t)count * px_dtype_size(dtype);
    pthread_mutex_lock(&s->mu);
    SchedVm *vm = find_vm(s, vmid);
    PxResult r = vm ? charge(vm, bytes) : PX_ERR_NOT_FOUND;
    pthread_mutex_unlock(&s->mu);
    if (r) return r;
    PxBuffer *b = NULL;
    /* room in device memory first: past its capacity, others are evicted */
    if (!(r = sched_make_room(s, d, bytes, NULL)) && (r = px_buffer_create(d->ctx, dtype, rank, shape, &b))) r = dev_fail(d, r);
    pthread_mutex_lock(&s->mu);
    uint32_t bid = 0;
    if (!r && !(bid = obj_add(s, vm, 0, b))) r = sched_fail(PX_ERR_OUT_OF_MEMORY, "VM %u: out of buffer ids or memory", vmid);
    if (r) uncharge(vm, bytes);
    else sched_buf_made(d, bytes);
    pthread_mutex_unlock(&s->mu);
    if (r) {
        px_buffer_destroy(b);
        return r;
    }
    *id = bid;
    if (out) *out = b;
    return PX_OK;
}

PxResult px_vm_buffer_create(PxSched *s, uint32_t vmid, PxDtype dtype, int rank, const int64_t *shape,
                             uint32_t *buffer)
{
    if (!s || !buffer) return sched_fail(PX_ERR_INVALID, "px_vm_buffer_create: NULL argument");
    SchedDev *d = lock_vm_device(s, vmid);
    if (!d) return PX_ERR_NOT_FOUND;
    PxResult r = vm_buffer_new(s, d, vmid, dtype, rank, shape, buffer, NULL);
    pthread_mutex_unlock(&d->mu);
    return r;
}

/* A buffer of a VM a launch still to run is bound to stays. */
static int buffer_in_use(const SchedVm *vm, const PxBuffer *b)
{
    for (const SchedJob *j = vm->head; j; j = j->next)
        for (int i = 0; j->l && i < j->l->k->ir->params.n; i++)
            if (j->l->p[i].bound == b) return 1;
    return 0;
}

PxResult px_vm_buffer_destroy(PxSched *s, uint32_t vmid, uint32_t buffer)
{
    if (!s) return sched_fail(PX_ERR_INVALID, "px_vm_buffer_destroy: NULL scheduler");
    SchedDev *d = lock_vm_device(s, vmid);
    if (!d) return PX_ERR_NOT_FOUND;
    pthread_mutex_lock(&s->mu);
    SchedVm *vm = find_vm(s, vmid);
    PxBuffer *b = vm ? obj_find(vm, 0, buffer) : NULL;
    PxResult r = PX_OK;
    if (!vm) r = PX_ERR_NOT_FOUND;
    else if (!b) r = sched_fail(PX_ERR_NOT_FOUND, "VM %u has no buffer %u", vmid, buffer);
    else if (buffer_in_use(vm, b)) r = sched_fail(PX_ERR_BUSY, "VM %u: buffer %u is bound to a launch still to run", vmid, buffer);
    else {
        sched_spare_drop(vm); /* it may bind b */
        sched_buf_drop(d, sched_buf_slot(vm, b));
        obj_take(vm, 0, buffer);
        uncharge(vm, px_buffer_bytes(b));
    }
    pthread_mutex_unlock(&s->mu);
    if (!r) px_buffer_destroy(b);
    pthread_mutex_unlock(&d->mu);
    return r;
}

/* Waits (without any lock) until every launch vm had submitted when the
 * call began has finished; returns the device locked, with the buffer. */
static SchedDev *lock_buffer(PxSched *s, uint32_t vmid, uint32_t buffer, PxBuffer **b, SchedVm **owner, PxResult *r)
{
    *b = NULL;
    pthread_mutex_lock(&s->mu);
    SchedVm *vm = find_vm(s, vmid);
    if (!vm) {
        pthread_mutex_unlock(&s->mu);
        *r = PX_ERR_NOT_FOUND;
        return NULL;
    }
    uint64_t upto = vm->submitted;
    while (vm->finished < upto && !vm->dying) pthread_cond_wait(&s->done, &s->mu);
    pthread_mutex_unlock(&s->mu);
    SchedDev *d = lock_vm_device(s, vmid);
    if (!d) {
        *r = PX_ERR_NOT_FOUND;
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    vm = find_vm(s, vmid);
    *r = !vm ? PX_ERR_NOT_FOUND : !(*b = obj_find(vm, 0, buffer))
                                      ? sched_fail(PX_ERR_NOT_FOUND, "VM %u has no buffer %u", vmid, buffer)
                                      : PX_OK;
    *owner = vm; /* freed only under d->mu */
    pthread_mutex_unlock(&s->mu);
    if (*r) {
        pthread_mutex_unlock(&d->mu);
        return NULL;
    }
    return d;
}

/* A host copy into (write) or out of a VM's buffer, after the VM's earlier
 * launches (lock_buffer). */
static PxResult vm_copy(PxSched *s, uint32_t vmid, uint32_t buffer, void *data, size_t bytes, int write)
{
    if (!s || (!data && bytes))
        return sched_fail(PX_ERR_INVALID, "px_vm_buffer_%s: NULL argument", write ? "write" : "read");
    PxBuffer *b;
    SchedVm *vm;
    PxResult r;
    SchedDev *d = lock_buffer(s, vmid, buffer, &b, &vm, &r);
    if (!d) return r;
    r = sched_buf_copy(d, vm, b, data, bytes, write); /* an evicted buffer's bytes are on the host */
    if (write) {
        /* a migration's pre-copy of this VM must be redone */
        pthread_mutex_lock(&s->mu);
        vm = find_vm(s, vmid);
        if (vm) buffer_touched(vm, buffer);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return r;
}

PxResult px_vm_buffer_write(PxSched *s, uint32_t vmid, uint32_t buffer, const void *data, size_t bytes)
{
    return vm_copy(s, vmid, buffer, (void *)data, bytes, 1);
}

PxResult px_vm_buffer_read(PxSched *s, uint32_t vmid, uint32_t buffer, void *data, size_t bytes)
{
    return vm_copy(s, vmid, buffer, data, bytes, 0);
}

PxResult px_vm_buffer_info(PxSched *s, uint32_t vmid, uint32_t buffer, PxDtype *dtype, int *rank, int64_t *shape)
{
    if (!s) return sched_fail(PX_ERR_INVALID, "px_vm_buffer_info: NULL scheduler");
    pthread_mutex_lock(&s->mu);
    SchedVm *vm = find_vm(s, vmid);
    PxBuffer *b = vm ? obj_find(vm, 0, buffer) : NULL;
    PxResult r = !vm ? PX_ERR_NOT_FOUND : !b ? sched_fail(PX_ERR_NOT_FOUND, "VM %u has no buffer %u", vmid, buffer) : PX_OK;
    if (b) {
        /* a buffer's type and shape never change after it is made */
        if (dtype) *dtype = b->dtype;
        if (rank) *rank = b->rank;
        for (int i = 0; shape && i < 4; i++) shape[i] = i < b->rank ? b->shape[i] : 0;
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* ---- launches ------------------------------------------------------------------ */

PxResult sched_bind_args(PxSched *s, SchedDev *d, SchedVm *vm, SchedJob *j, const PxArg *args, int nargs)
{
    PxLaunch *l = j->l;
    PxResult r = PX_OK;
    /* the buffers an earlier binding made (a launch made again elsewhere) */
    for (int o = 0; o < j->res.noutputs && !r; o++) {
        pthread_mutex_lock(&s->mu);
        PxBuffer *b = obj_find(vm, 0, j->res.outputs[o].buffer);
        pthread_mutex_unlock(&s->mu);
        if (!b) return sched_fail(PX_ERR_NOT_FOUND, "VM %u has no buffer %u", vm->cfg.id, j->res.outputs[o].buffer);
        if ((r = px_launch_bind(l, j->res.outputs[o].param, b, "an output of the launch"))) return dev_fail(d, r);
    }
    for (int i = 0; i < nargs && !r; i++) {
        const PxArg *a = &args[i];
        if (!a->name) return sched_fail(PX_ERR_INVALID, "argument %d has no name", i);
        char origin[96];
        switch (a->kind) {
        case PX_ARG_BUFFER: {
            pthread_mutex_lock(&s->mu);
            PxBuffer *b = obj_find(vm, 0, a->buffer);
            pthread_mutex_unlock(&s->mu);
            if (!b) return sched_fail(PX_ERR_NOT_FOUND, "VM %u has no buffer %u (argument %s)", vm->cfg.id, a->buffer, a->name);
            snprintf(origin, sizeof origin, "buffer %u bound to %.40s", a->buffer, a->name);
            r = px_launch_bind(l, a->name, b, origin);
            break;
        }
        case PX_ARG_FLOAT: {
            PxParamInfo pi;
            int k = -1;
            for (int p = 0; p < px_kernel_param_count(l->k); p++) {
                px_kernel_param(l->k, p, &pi);
                if (!strcmp(pi.name, a->name)) k = p;
            }
            if (k >= 0 && !pi.is_buffer && pi.dtype == PX_F16) r = px_launch_set_half(l, a->name, (float)a->f);
            else r = px_launch_set_float(l, a->name, (float)a->f);
            break;
        }
        case PX_ARG_INT:
            if (a->i < INT32_MIN || a->i > INT32_MAX)
                return sched_fail(PX_ERR_INVALID, "argument %s = %lld does not fit in an int", a->name, (long long)a->i);
            r = px_launch_set_int(l, a->name, (int32_t)a->i);
            break;
        case PX_ARG_UINT:
            if (a->i < 0 || a->i > UINT32_MAX)
                return sched_fail(PX_ERR_INVALID, "argument %s = %lld does not fit in a uint", a->name, (long long)a->i);
            r = px_launch_set_uint(l, a->name, (uint32_t)a->i);
            break;
        case PX_ARG_SIZE:
            snprintf(origin, sizeof origin, "size %.40s = %lld", a->name, (long long)a->i);
            r = px_launch_set_size(l, a->name, a->i, origin);
            break;
        default: return sched_fail(PX_ERR_INVALID, "argument %s has an unknown kind %d", a->name, (int)a->kind);
        }
        if (r) return dev_fail(d, r);
    }
    /* a kept launch (SchedVm.spare) bound again to equal values is still
     * prepared: the last job's sizes, every buffer parameter bound (that
     * job made no outputs, and this one binds the same names), and
     * preparing again would record it again */
    if (l->prepared) return PX_OK;
    if ((r = rt_launch_resolve(l))) return dev_fail(d, r);
    const IrKernel *k = l->k->ir;
    for (int i = 0; i < k->params.n; i++) {
        int64_t shape[4];
        int rank = rt_launch_unbound_shape(l, i, shape);
        if (rank < 0) continue;
        if (j->res.noutputs == PX_MAX_OUTPUTS)
            return sched_fail(PX_ERR_UNSUPPORTED, "kernel %s leaves more than %d buffers unbound", k->name, PX_MAX_OUTPUTS);
        uint32_t id;
        PxBuffer *b;
        if ((r = vm_buffer_new(s, d, vm->cfg.id, rt_dtype_of(k->params.v[i].type), rank, shape, &id, &b))) return r;
        int o = j->res.noutputs++;
        snprintf(j->res.outputs[o].param, sizeof j->res.outputs[o].param, "%s", k->params.v[i].name);
        j->res.outputs[o].buffer = id;
        char origin[64];
        snprintf(origin, sizeof origin, "buffer %u (made for %.30s)", id, k->params.v[i].name);
        if ((r = px_launch_bind(l, k->params.v[i].name, b, origin))) return dev_fail(d, r);
    }
    if ((r = px_launch_prepare(l))) return dev_fail(d, r);
    return PX_OK;
}

/* Under d->mu: frees the buffers bind_args made for a launch that never
 * runs (the submit failed). */
static void drop_outputs(PxSched *s, SchedDev *d, SchedVm *vm, SchedJob *j)
{
    for (int o = 0; o < j->res.noutputs; o++) {
        pthread_mutex_lock(&s->mu);
        PxBuffer *b = obj_find(vm, 0, j->res.outputs[o].buffer);
        if (b) {
            sched_buf_drop(d, sched_buf_slot(vm, b));
            obj_take(vm, 0, j->res.outputs[o].buffer);
            uncharge(vm, px_buffer_bytes(b));
        }
        pthread_mutex_unlock(&s->mu);
        px_buffer_destroy(b);
    }
    j->res.noutputs = 0;
}

PxResult px_vm_submit(PxSched *s, uint32_t vmid, uint32_t module, const char *kernel, const PxArg *args,
                      int nargs, uint64_t *ticket)
{
    if (!s || !ticket || (nargs && !args) || nargs < 0) return sched_fail(PX_ERR_INVALID, "px_vm_submit: bad arguments");
    SchedDev *d = lock_vm_device(s, vmid);
    if (!d) return PX_ERR_NOT_FOUND;
    pthread_mutex_lock(&s->mu);
    SchedVm *vm = find_vm(s, vmid);
    SchedMod *sm = vm ? obj_find(vm, 1, module) : NULL;
    PxModule *m = sm ? sm->m : NULL;
    PxResult r = !vm ? PX_ERR_NOT_FOUND
                 : !m ? sched_fail(PX_ERR_NOT_FOUND, "VM %u has no module %u", vmid, module)
                 : vm->nlive >= s->max_queued
                     ? sched_fail(PX_ERR_BUSY, "VM %u has %d launches not yet waited for (at most %d)", vmid,
                                  vm->nlive, s->max_queued)
                     : PX_OK;
    if (!r) vm->nlive++; /* the slot is held while the launch is made */
    pthread_mutex_unlock(&s->mu);
    SchedJob *j = NULL;
    PxKernel *k = NULL;
    if (!r && !(j = calloc(1, sizeof *j))) r = sched_fail(PX_ERR_OUT_OF_MEMORY, "out of memory");
    if (!r && (r = px_module_kernel(m, kernel, &k))) r = dev_fail(d, r);
    /* the VM's last launch of k when the arguments match its shape: no
     * launch to make, prepare or record again (SchedVm.spare) */
    PxArg *same = NULL;
    if (!r && !(j->l = sched_spare_take(vm, k, args, nargs, &same)) && (r = px_launch_create(k, &j->l))) r = dev_fail(d, r);
    if (!r) {
        j->vm = vm;
        /* the class decides EDF and slice length: REALTIME from its deadline */
        const char *cls = px_kernel_class(k);
        j->realtime = !strcmp(cls, "REALTIME");
        j->latency_sensitive = j->realtime || !strcmp(cls, "INTERACTIVE");
        j->cls = sched_class_index(cls);
        /* equal values: the kept launch is bound as these would bind it */
        if (same) j->args = same;
        else r = sched_bind_args(s, d, vm, j, args, nargs);
        if (!r) {
            char err[512];
            if ((r = sched_launch_fits(s, d, j, err, sizeof err))) sched_fail(r, "%s", err);
        }
        if (!r && !same) r = sched_args_copy(args, nargs, &j->args);
        if (r) drop_outputs(s, d, vm, j);
        j->nargs = nargs;
    }
    pthread_mutex_lock(&s->mu);
    if (!r && vm->dying) r = sched_fail(PX_ERR_NOT_FOUND, "no VM %u", vmid);
    if (r) {
        if (vm) vm->nlive--;
        pthread_mutex_unlock(&s->mu);
        if (j) sched_job_release(d, j);
        free(j);
        pthread_mutex_unlock(&d->mu);
        return r;
    }
    int64_t now = sched_now_ns();
    j->t_submit = now;
    uint64_t dl = k->ir->deadline_ns;
    j->deadline_ns = j->realtime ? now + (int64_t)(dl ? dl : 1000000000ull) : INT64_MAX;
    j->ticket = ++vm->next_ticket;
    j->state = JOB_QUEUED;
    j->live_next = vm->live;
    vm->live = j;
    if (!vm->head) sched_wake(s, vm, now);
    if (vm->tail) vm->tail->next = j;
    else vm->head = j;
    vm->tail = j;
    vm->nqueued++;
    vm->submitted++;
    for (int i = 0; i < vm->bufs.n; i++) vm->bufs.v[i].writes += sched_launch_writes(j->l, vm->bufs.v[i].p);
    if (j->latency_sensitive) d->last_ls_ns = now;
    *ticket = j->ticket;
    /* the fast path: on an idle device whose policy picks this launch now
     * (a VM alone, or the one due), its first slice runs here, with no
     * hand-off to the dispatcher and back; submit then returns after at
     * most one slice. Otherwise, or for the slices after, the dispatcher. */
    int here = sched_submit_inline(s, d, j);
    if (!here) pthread_cond_broadcast(&d->work);
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&d->mu);
    if (here) {
        pthread_mutex_lock(&s->mu);
        sched_run_slice(s, d, j, sched_now_ns(), 0);
        pthread_mutex_unlock(&s->mu);
    }
    return PX_OK;
}

void sched_job_finish(PxSched *s, SchedJob *j)
{
    SchedVm *vm = j->vm;
    /* it is the head: a VM's jobs run and finish in submit order, and a
     * cancelled queued job may be anywhere, so unlink by search */
    SchedJob **pp = &vm->head, *prev = NULL;
    while (*pp && *pp != j) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = j->next;
        if (vm->tail == j) vm->tail = prev;
    }
    j->next = NULL;
    j->state = JOB_DONE;
    vm->nqueued--;
    vm->finished++;
    int64_t now = sched_now_ns();
    j->res.latency_ns = (double)(now - j->t_submit);
    j->res.gpu_ns = j->gpu_ns;
    j->res.slices = j->slices;
    j->res.wait_ns = j->t_start ? (double)(j->t_start - j->t_submit) : -1;
    if (j->res.result == PX_OK) {
        vm->done++;
        sched_record_latency(vm, j->res.latency_ns / 1000);
    } else {
        vm->failed++;
    }
    sched_record_class(vm, j);
    pthread_cond_broadcast(&s->done);
}

PxResult px_vm_wait(PxSched *s, uint32_t vmid, uint64_t ticket, int timeout_ms, PxTicketResult *res)
{
    if (!s) return sched_fail(PX_ERR_INVALID, "px_vm_wait: NULL scheduler");
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    if (timeout_ms > 0) {
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&s->mu);
    PxResult r;
    SchedJob *j = NULL;
    SchedVm *vm;
    for (;;) {
        vm = find_vm(s, vmid);
        if (!vm) {
            r = PX_ERR_NOT_FOUND;
            break;
        }
        SchedJob **pp = &vm->live;
        while (*pp && (*pp)->ticket != ticket) pp = &(*pp)->live_next;
        if (!*pp) {
            r = sched_fail(PX_ERR_NOT_FOUND, "VM %u has no ticket %llu", vmid, (unsigned long long)ticket);
            break;
        }
        /* a paused VM's finished jobs stay until it resumes: a migration
         * trades their launches between devices */
        if ((*pp)->state == JOB_DONE && !vm->paused) {
            j = *pp;
            *pp = j->live_next;
            vm->nlive--;
            r = PX_OK;
            break;
        }
        if (timeout_ms == 0) {
            r = sched_fail(PX_ERR_NOT_READY, "VM %u: ticket %llu has not finished", vmid, (unsigned long long)ticket);
            break;
        }
        if (timeout_ms < 0) pthread_cond_wait(&s->done, &s->mu);
        else if (pthread_cond_timedwait(&s->done, &s->mu, &until) == ETIMEDOUT) {
            timeout_ms = 0; /* one last look */
        }
    }
    SchedDev *d = vm ? vm->dev : NULL;
    pthread_mutex_unlock(&s->mu);
    if (!j) return r;
    if (res) *res = j->res;
    if (j->l) {
        /* the dispatcher released it when it finished; a cancelled queued
         * job's launch is released here */
        pthread_mutex_lock(&d->mu);
        sched_job_release(d, j);
        pthread_mutex_unlock(&d->mu);
    }
    free(j);
    return PX_OK;
}

PxResult px_vm_cancel(PxSched *s, uint32_t vmid, uint64_t ticket)
{
    if (!s) return sched_fail(PX_ERR_INVALID, "px_vm_cancel: NULL scheduler");
    pthread_mutex_lock(&s->mu);
    SchedVm *vm = find_vm(s, vmid);
    PxResult r = vm ? PX_OK : PX_ERR_NOT_FOUND;
    SchedJob *j = NULL;
    if (vm) {
        for (j = vm->live; j && j->ticket != ticket; j = j->live_next) {
        }
        if (!j) r = sched_fail(PX_ERR_NOT_FOUND, "VM %u has no ticket %llu", vmid, (unsigned long long)ticket);
        else if (j->state == JOB_RUNNING) j->cancel = 1;
        else if (j->state == JOB_QUEUED) {
            j->res.result = PX_ERR_CANCELLED;
            snprintf(j->res.error, sizeof j->res.error, "cancelled");
            sched_job_finish(s, j);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* ---- statistics ---------------------------------------------------------------------- */

int px_sched_device_count(const PxSched *s) { return s ? s->ndev : 0; }

PxResult px_sched_device_stats(PxSched *s, int device, PxDeviceStats *out)
{
    if (!s || !out || device < 0 || device >= s->ndev)
        return sched_fail(PX_ERR_INVALID, "no device %d", device);
    SchedDev *d = &s->dev[device];
    memset(out, 0, sizeof *out);
    PxDeviceInfo di;
    px_device_info(d->ctx, &di); /* fixed at creation: no lock needed */
    pthread_mutex_lock(&s->mu);
    out->index = device;
    snprintf(out->name, sizeof out->name, "%s", di.name);
    out->memory_bytes = d->capacity;
    out->memory_used_bytes = d->mem_used;
    out->busy_ns = d->busy_ns;
    out->share_used = d->share_sum;
    out->memory_resident_bytes = d->resident;
    out->evictions = d->evictions;
    out->bytes_evicted = d->bytes_evicted;
    out->bytes_restored = d->bytes_restored;
    out->losses = d->losses;
    out->launches_lost = d->launches_lost;
    sched_dev_windows(d, out);
    out->migrations_in = d->migrations_in;
    out->migrations_out = d->migrations_out;
    out->balance_in = d->balance_in;
    out->balance_out = d->balance_out;
    for (int i = 0; i < s->nvms; i++) out->vms += s->vms[s->order[i]]->dev == d;
    pthread_mutex_unlock(&s->mu);
    return PX_OK;
}

int px_sched_vm_ids(PxSched *s, uint32_t *ids, int max)
{
    if (!s) return 0;
    pthread_mutex_lock(&s->mu);
    int n = s->nvms;
    for (int i = 0; i < n && i < max; i++) ids[i] = s->order[i];
    pthread_mutex_unlock(&s->mu);
    return n;
}

PxResult px_sched_vm_stats(PxSched *s, uint32_t vmid, PxVmStats *out)
{
    if (!s || !out) return sched_fail(PX_ERR_INVALID, "px_sched_vm_stats: NULL argument");
    pthread_mutex_lock(&s->mu);
    SchedVm *vm = find_vm(s, vmid);
    if (vm) sched_vm_stats(vm, out);
    pthread_mutex_unlock(&s->mu);
    return vm ? PX_OK : PX_ERR_NOT_FOUND;
}
