/* pxhvd — the hypervisor daemon (px-hypervisor.md section 3): one process
 * owns the devices, serves each VM on DIR/vm<ID>.sock and the operator on
 * DIR/control.sock (hv/server.c over sched/). Exit status: 0 after
 * SIGINT/SIGTERM, 2 for a bad command line, shares over 100 on a device or
 * quotas over capacity (times --oversubscribe), 1 for no device or an
 * unusable DIR. --test-faults (tests only, never for tenants): SIGUSR1
 * makes every Vulkan device report itself lost at its next slice. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hv/hv.h"
#include "px.h"
#include "tools/first_calibration.h"
#include "pxsched.h"
#include "sched/sched.h"

#define MAXV 1024

static FILE *logf_out;
static int verbose;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void usage(FILE *f)
{
    fputs("usage: pxhvd [--listen DIR] [--vm ID:SPEC]... [--device N|NAME|cpu]...\n"
          "             [--device-memory SIZE] [--policy fair|fixed] [--slice-us N]\n"
          "             [--metrics HOST:PORT] [--log FILE] [--frame-timeout-ms N] [-v]\n"
          "             [--oversubscribe RATIO] [--host-copies] [--test-faults]\n"
          "             [--balance off|PERIOD]   (PERIOD: 500ms, 2s ...; default 1s)\n",
          f);
}

static void fail(int status, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pxhvd: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(status);
}

static void say(const char *msg)
{
    pthread_mutex_lock(&log_mu);
    fprintf(logf_out ? logf_out : stderr, "pxhvd: %s\n", msg);
    fflush(logf_out ? logf_out : stderr);
    pthread_mutex_unlock(&log_mu);
}
static void on_hv_log(void *u, const char *msg) { say(msg); }
static void on_px_log(void *u, PxLogLevel lv, const char *msg)
{
    if (lv == PX_LOG_WARN || lv == PX_LOG_ERROR || verbose) say(msg);
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || *s == '-') return -1;
    int sh = 0;
    if (*end == 'K' || *end == 'k') sh = 10, end++;
    else if (*end == 'M' || *end == 'm') sh = 20, end++;
    else if (*end == 'G' || *end == 'g') sh = 30, end++;
    if (*end || (sh && v > (~0ull >> sh))) return -1;
    *out = (uint64_t)v << sh;
    return 0;
}

/* Auto-balance (docs/SCHEDULER.md, "Balance"): one thread calls
 * px_sched_balance every period and logs each move; it stops (a timed
 * wait on `stop`) before the scheduler goes. */
typedef struct Balancer {
    PxSched *s;
    int64_t period_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
} Balancer;

static void *balance_thread(void *arg)
{
    Balancer *b = arg;
    PxBalanceConfig c;
    px_balance_config_default(&c);
    pthread_mutex_lock(&b->mu);
    while (!b->stop) {
        pthread_mutex_unlock(&b->mu);
        PxBalanceMove mv;
        PxResult r = px_sched_balance(b->s, &c, &mv);
        char m[400];
        if (mv.moved)
            snprintf(m, sizeof m, "balance: VM %u (%.0f%% of its device) moved from device %d (%.0f%% busy) to device %d "
                     "(%.0f%% busy): %llu bytes, downtime %.3f ms, total %.3f ms", mv.vm, 100 * mv.vm_load, mv.from,
                     100 * mv.from_busy, mv.to, 100 * mv.to_busy, (unsigned long long)mv.stats.bytes,
                     mv.stats.downtime_ns * 1e-6, mv.stats.total_ns * 1e-6);
        else if (r)
            snprintf(m, sizeof m, "balance: moving VM %u from device %d to %d failed: %s", mv.vm, mv.from, mv.to,
                     px_sched_last_error());
        if (mv.moved || r) say(m);
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_sec += (time_t)(b->period_ms / 1000);
        t.tv_nsec += (long)(b->period_ms % 1000) * 1000000;
        if (t.tv_nsec >= 1000000000) t.tv_sec++, t.tv_nsec -= 1000000000;
        pthread_mutex_lock(&b->mu);
        while (!b->stop && pthread_cond_timedwait(&b->cv, &b->mu, &t) == 0) {
        }
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* "500ms", "2s", "1.5s": milliseconds (10 ms to 1 h), or -1. */
static int64_t parse_period(const char *v)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || errno || !(x > 0)) return -1;
    double ms = !strcmp(end, "ms") ? x : !strcmp(end, "s") ? x * 1000 : -1;
    return ms >= 10 && ms <= 3600000 ? (int64_t)ms : -1;
}

typedef struct SigWait {
    sigset_t set;
    HvServer *sv;
    PxSched *s;                /* with --test-faults: SIGUSR1 loses the devices */
} SigWait;

static void *sig_thread(void *arg)
{
    SigWait *w = arg;
    int sig;
    while (sigwait(&w->set, &sig) == 0 && sig == SIGUSR1)
        for (int d = 0; d < px_sched_device_count(w->s); d++)
            if (sched_inject_loss(w->s, d) == PX_OK) {
                char m[64];
                snprintf(m, sizeof m, "SIGUSR1: device %d will be lost (test fault)", d);
                say(m);
            }
    hv_server_stop(w->sv);
    char m[64];
    snprintf(m, sizeof m, "signal %d: stopping", sig);
    say(m);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *devs[PX_SCHED_MAX_DEVICES], *logpath = NULL, *metrics = NULL;
    int ndevs = 0, frame_ms = 0, test_faults = 0;
    int64_t balance_ms = 1000;
    uint64_t devmem = 0;
    PxVmConfig vms[MAXV];
    int nvms = 0;
    PxSchedConfig sc;
    px_sched_config_default(&sc);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (usage(stderr), fail(2, "%s needs a value", a), (char *)0))
        if (!strcmp(a, "--listen")) dir = NEXT();
        else if (!strcmp(a, "--vm")) {
            const char *v = NEXT();
            char *end;
            errno = 0;
            unsigned long id = strtoul(v, &end, 10);
            if (end == v || *end != ':' || errno || id < 1 || id > 65535) fail(2, "--vm %s: expected ID:SPEC with ID in 1..65535", v);
            if (nvms == MAXV) fail(2, "too many --vm");
            for (int k = 0; k < nvms; k++)
                if (vms[k].id == id) fail(2, "--vm %s: VM %lu is given twice", v, id);
            PxVmConfig c = {.id = (uint32_t)id, .device = -1};
            char err[300];
            if (px_vm_spec_parse(end + 1, &c, err, sizeof err)) fail(2, "--vm %s: %s", v, err);
            if (!c.mem_quota || c.share <= 0) fail(2, "--vm %s: the spec sets no memory quota or no share", v);
            vms[nvms++] = c;
        } else if (!strcmp(a, "--device")) {
            if (ndevs == PX_SCHED_MAX_DEVICES) fail(2, "more than %d --device", PX_SCHED_MAX_DEVICES);
            devs[ndevs++] = NEXT();
        } else if (!strcmp(a, "--device-memory")) {
            const char *v = NEXT();
            if (parse_size(v, &devmem) || !devmem) fail(2, "--device-memory %s: expected a size (K, M, G suffixes)", v);
        } else if (!strcmp(a, "--policy")) {
            const char *v = NEXT();
            if (!strcmp(v, "fair")) sc.policy = PX_POLICY_FAIR;
            else if (!strcmp(v, "fixed")) sc.policy = PX_POLICY_FIXED;
            else fail(2, "--policy %s: expected fair or fixed", v);
        } else if (!strcmp(a, "--slice-us")) {
            const char *v = NEXT();
            char *end;
            long n = strtol(v, &end, 10);
            if (end == v || *end || n < 10 || n > 10000000) fail(2, "--slice-us %s: expected a whole number from 10 to 10000000", v);
            sc.slice_us = (int)n;
        } else if (!strcmp(a, "--frame-timeout-ms")) {
            const char *v = NEXT();
            char *end;
            long n = strtol(v, &end, 10);
            if (end == v || *end || n < 1 || n > 600000) fail(2, "--frame-timeout-ms %s: expected 1 to 600000", v);
            frame_ms = (int)n;
        } else if (!strcmp(a, "--oversubscribe")) {
            const char *v = NEXT();
            char *end;
            double x = strtod(v, &end);
            if (end == v || *end || !(x >= 1 && x <= 64)) fail(2, "--oversubscribe %s: expected a ratio from 1 to 64", v);
            sc.oversubscribe = x;
        } else if (!strcmp(a, "--host-copies")) sc.host_copies = 1;
        else if (!strcmp(a, "--test-faults")) test_faults = 1;
        else if (!strcmp(a, "--balance")) {
            const char *v = NEXT();
            balance_ms = !strcmp(v, "off") ? 0 : parse_period(v);
            if (balance_ms < 0) fail(2, "--balance %s: expected off or a period from 10ms to 3600s (500ms, 2s)", v);
        } else if (!strcmp(a, "--metrics")) {
            metrics = NEXT();
            char h[256], p[8];
            if (hv_http_parse_addr(metrics, h, sizeof h, p, sizeof p)) fail(2, "--metrics %s: expected HOST:PORT", metrics);
        }
        else if (!strcmp(a, "--log")) logpath = NEXT();
        else if (!strcmp(a, "-v")) verbose = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            fail(2, "unknown argument %s", a);
        }
#undef NEXT
    }
    if (logpath && !(logf_out = fopen(logpath, "a"))) fail(1, "--log %s: %s", logpath, strerror(errno));

    /* signals: a thread waits for them; every other thread blocks them */
    static SigWait w;
    sigemptyset(&w.set);
    sigaddset(&w.set, SIGINT);
    sigaddset(&w.set, SIGTERM);
    if (test_faults) sigaddset(&w.set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &w.set, NULL);
    signal(SIGPIPE, SIG_IGN);

    sc.ndevices = ndevs ? ndevs : 1;
    sc.log = on_px_log;
    for (int d = 0; d < sc.ndevices; d++) {
        PxConfig cfg;
        px_config_default(&cfg);
        cfg.log = on_px_log;
        const char *v = ndevs ? devs[d] : NULL;
        if (v && !strcmp(v, "cpu")) cfg.backend = PX_BACKEND_CPU;
        else if (v) {
            cfg.backend = PX_BACKEND_VULKAN;
            int num = *v != 0;
            for (const char *p = v; *p; p++) num &= isdigit((unsigned char)*p) != 0;
            if (num) cfg.device_index = atoi(v);
            else cfg.device_name = v;
        }
        char *err = NULL;
        if (px_context_create(&cfg, &sc.devices[d], &err)) fail(1, "device %d (%s): %s", d, v ? v : "default", err ? err : "no device");
        char cerr[1200];
        if (px_first_calibration(&sc.devices[d], &cfg, on_hv_log, NULL, cerr, sizeof cerr))
            fail(1, "device %d (%s): %s", d, v ? v : "default", cerr);
        PxDeviceInfo di;
        px_device_info(sc.devices[d], &di);
        sc.capacity[d] = devmem;
        if (verbose) {
            char m[400];
            snprintf(m, sizeof m, "device %d: %s", d, di.name);
            say(m);
        }
    }
    PxSched *s;
    if (px_sched_create(&sc, &s)) fail(1, "%s", px_sched_last_error());
    for (int i = 0; i < nvms; i++) {
        if (vms[i].device >= sc.ndevices) fail(2, "--vm %u: device %d does not exist (%d given)", vms[i].id, vms[i].device, sc.ndevices);
        PxResult r = px_sched_vm_create(s, &vms[i]);
        if (r) fail(r == PX_ERR_QUOTA || r == PX_ERR_INVALID ? 2 : 1, "--vm %u: %s", vms[i].id, px_sched_last_error());
    }
    HvServerConfig hc = {.dir = dir, .frame_timeout_ms = frame_ms, .verbose = verbose, .log = on_hv_log};
    char err[600];
    HvServer *sv = hv_server_create(&hc, s, err, sizeof err);
    if (!sv) fail(1, "%s", err);
    w.sv = sv;
    w.s = s;
    HvHttp *http = NULL;
    if (metrics) {
        HvHttpConfig htc = {.addr = metrics, .verbose = verbose, .log = on_hv_log};
        if (!(http = hv_http_start(&htc, s, err, sizeof err))) fail(1, "%s", err);
        char m[400];
        snprintf(m, sizeof m, "metrics on port %d (%s): /metrics, /api/status, /", hv_http_port(http), metrics);
        say(m);
    }
    pthread_t th;
    if (pthread_create(&th, NULL, sig_thread, &w)) fail(1, "cannot start the signal thread");
    static Balancer bal = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t bth;
    int balancing = balance_ms > 0 && sc.ndevices > 1;
    bal.s = s;
    bal.period_ms = balance_ms;
    if (balancing && pthread_create(&bth, NULL, balance_thread, &bal)) fail(1, "cannot start the balance thread");
    if (verbose) say("serving");
    hv_server_run(sv);
    if (balancing) {
        pthread_mutex_lock(&bal.mu);
        bal.stop = 1;
        pthread_cond_signal(&bal.cv);
        pthread_mutex_unlock(&bal.mu);
        pthread_join(bth, NULL);
    }
    pthread_kill(th, SIGTERM); /* ends its sigwait when the stop came otherwise */
    pthread_join(th, NULL);
    hv_http_stop(http); /* before the scheduler it reads goes */
    hv_server_destroy(sv);
    for (int d = 0; d < sc.ndevices; d++) px_context_destroy(sc.devices[d]);
    if (logf_out) fclose(logf_out);
    return 0;
}
