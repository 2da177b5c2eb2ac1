/* pxctl — the operator's tool (px-hypervisor.md section 5): status [--json],
 * vm add/rm/set/migrate, top, and policy (live), over DIR/control.sock. Exit status: 0, 1 for
 * a refusal or no daemon, 2 for a bad command line. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "hv/hv.h"

static void fail(int status, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pxctl: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(status);
}

static void usage(FILE *f)
{
    fputs("usage: pxctl [--hvd DIR] status [--json]\n"
          "       pxctl [--hvd DIR] vm add ID SPEC | vm rm ID | vm set ID SPEC\n"
          "       pxctl [--hvd DIR] vm migrate ID --device INDEX\n"
          "       pxctl [--hvd DIR] top [--once] [--interval-ms N]\n"
          "       pxctl [--hvd DIR] policy fair|fixed [--slice-us N] [--long-slice-us N]\n",
          f);
}

static int fd = -1;
static HvIn in;

static unsigned char *call(HvMsg *m, uint16_t want, uint32_t *n)
{
    uint16_t type;
    unsigned char *p;
    char err[600];
    if (hv_call(fd, &in, m, &type, &p, n, 30000, err, sizeof err)) fail(1, "%s", err);
    hv_msg_free(m);
    if (type == HV_ERROR) {
        HvRd rd = {.p = p, .n = *n};
        hv_get_u32(&rd);
        char msg[1100];
        hv_get_str(&rd, msg, sizeof msg);
        fail(1, "%s", msg);
    }
    if (type != (want | HV_REPLY)) fail(1, "unexpected reply type %u", type);
    return p;
}

static uint32_t vm_id(const char *v)
{
    char *end;
    errno = 0;
    unsigned long id = strtoul(v, &end, 10);
    if (end == v || *end || errno || id < 1 || id > 65535) fail(2, "VM id %s: expected 1..65535", v);
    return (uint32_t)id;
}

/* The status JSON (the daemon's px_sched_status_json: the numbers the
 * dashboard shows, computed there once), malloc'd; exits on a bad reply. */
static char *status_text(void)
{
    HvMsg m = {0};
    hv_msg_begin(&m, HV_CTL_STATUS, 0);
    uint32_t n;
    unsigned char *p = call(&m, HV_CTL_STATUS, &n);
    HvRd rd = {.p = p, .n = n};
    char *j = hv_get_strdup(&rd, HV_MAX_FRAME);
    free(p);
    if (!j) fail(1, "malformed status reply");
    return j;
}

/* The same, parsed. */
static json_t *status_object(void)
{
    char *j = status_text();
    json_error_t e;
    json_t *st = json_loads(j, 0, &e);
    free(j);
    if (!json_is_object(st)) fail(1, "malformed status reply");
    return st;
}

static double num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }
static const char *str(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

/* The table of `top` and `status`: a row per device, a row per VM, with
 * the dashboard's numbers (share achieved over 10 s and 60 s, p99). */
static void print_table(json_t *st)
{
    size_t i;
    json_t *d, *v;
    printf("%6s %-28s %21s %7s %8s %8s\n", "device", "name", "memory used/cap MiB", "shares", "busy10s", "busy60s");
    json_array_foreach(json_object_get(st, "devices"), i, d) {
        char mem[64];
        snprintf(mem, sizeof mem, "%.1f/%.1f", num(d, "memory_used_bytes") / 1048576.0, num(d, "memory_bytes") / 1048576.0);
        printf("%6.0f %-28.28s %21s %6.1f%% %7.1f%% %7.1f%%\n", num(d, "index"), str(d, "name"), mem, num(d, "share_used"),
               num(d, "busy_10s"), num(d, "busy_60s"));
    }
    printf("%6s %-12s %4s %21s %7s %8s %8s %6s %10s %10s %8s\n", "VM", "name", "dev", "memory used/quota MiB", "share",
           "ach10s", "ach60s", "queue", "p99 us", "done", "failed");
    json_array_foreach(json_object_get(st, "vms"), i, v) {
        char mem[64];
        snprintf(mem, sizeof mem, "%.1f/%.1f", num(v, "mem_used_bytes") / 1048576.0, num(v, "mem_quota_bytes") / 1048576.0);
        printf("%6.0f %-12.12s %4.0f %21s %6.1f%% %7.1f%% %7.1f%% %6.0f %10.0f %10.0f %8.0f\n", num(v, "id"), str(v, "name"),
               num(v, "device"), mem, num(v, "share"), num(v, "achieved_10s"), num(v, "achieved_60s"), num(v, "queued"),
               num(v, "latency_p99_us"), num(v, "launches_done"), num(v, "launches_failed"));
    }
    fflush(stdout);
}

static void top(int once, int interval_ms)
{
    for (;;) {
        json_t *st = status_object();
        if (!once) fputs("\033[H\033[2J", stdout);
        print_table(st);
        json_decref(st);
        if (once) return;
        struct timespec ts = {interval_ms / 1000, (long)(interval_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv)
{
    const char *hvd = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--hvd") && i + 1 < argc) hvd = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            fail(2, "unknown option %s", argv[i]);
        }
    }
    if (i == argc) {
        usage(stderr);
        fail(2, "no command given");
    }
    const char *cmd = argv[i++];
    /* the command line is checked in full before the daemon is asked */
    int json = 0, once = 0, interval = 1000;
    uint16_t type = 0;
    uint32_t id = 0, dev = 0, pol = 0, slice[2] = {0, 0};
    const char *spec = NULL;
    if (!strcmp(cmd, "status")) {
        type = HV_CTL_STATUS;
        for (; i < argc; i++)
            if (!strcmp(argv[i], "--json")) json = 1;
            else fail(2, "status: unknown argument %s", argv[i]);
    } else if (!strcmp(cmd, "top")) {
        type = HV_CTL_TOP;
        for (; i < argc; i++)
            if (!strcmp(argv[i], "--once")) once = 1;
            else if (!strcmp(argv[i], "--interval-ms") && i + 1 < argc) {
                interval = atoi(argv[++i]);
                if (interval < 50 || interval > 60000) fail(2, "--interval-ms: expected 50..60000");
            } else fail(2, "top: unknown argument %s", argv[i]);
    } else if (!strcmp(cmd, "policy")) {
        type = HV_CTL_POLICY;
        if (i == argc || (strcmp(argv[i], "fair") && strcmp(argv[i], "fixed")))
            fail(2, "policy fair|fixed [--slice-us N] [--long-slice-us N]");
        pol = !strcmp(argv[i++], "fixed");
        for (; i < argc; i++) {
            int k = !strcmp(argv[i], "--slice-us") ? 0 : !strcmp(argv[i], "--long-slice-us") ? 1 : -1;
            if (k < 0 || i + 1 == argc) fail(2, "policy: unknown argument %s", argv[i]);
            char *end;
            unsigned long us = strtoul(argv[++i], &end, 10);
            if (end == argv[i] || *end || us < 1 || us > 10000000)
                fail(2, "policy: %s %s: expected 1 to 10000000 microseconds", argv[i - 1], argv[i]);
            slice[k] = (uint32_t)us;
        }
    } else if (!strcmp(cmd, "vm")) {
        if (i == argc) fail(2, "vm: expected add, rm, set or migrate");
        const char *sub = argv[i++];
        if (!strcmp(sub, "add") || !strcmp(sub, "set")) {
            if (argc - i != 2) fail(2, "vm %s ID SPEC", sub);
            type = !strcmp(sub, "add") ? HV_CTL_VM_ADD : HV_CTL_VM_SET;
            id = vm_id(argv[i]);
            spec = argv[i + 1];
            if (strlen(spec) > HV_MAX_NAME) fail(2, "vm %s: the spec is longer than %d bytes", sub, HV_MAX_NAME);
        } else if (!strcmp(sub, "rm")) {
            if (argc - i != 1) fail(2, "vm rm ID");
            type = HV_CTL_VM_RM;
            id = vm_id(argv[i]);
        } else if (!strcmp(sub, "migrate")) {
            if (argc - i != 3 || strcmp(argv[i + 1], "--device")) fail(2, "vm migrate ID --device INDEX");
            type = HV_CTL_VM_MIGRATE;
            id = vm_id(argv[i]);
            char *end;
            unsigned long dv = strtoul(argv[i + 2], &end, 10);
            if (end == argv[i + 2] || *end || dv >= 16) fail(2, "vm migrate: --device %s: expected a device index", argv[i + 2]);
            dev = (uint32_t)dv;
        } else fail(2, "vm %s: expected add, rm, set or migrate", sub);
    } else {
        usage(stderr);
        fail(2, "unknown command %s", cmd);
    }

    char dir[4096], path[4200], err[600], devname[256];
    if (hvd) snprintf(dir, sizeof dir, "%s", hvd);
    else hv_default_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/control.sock", dir);
    uint32_t vm;
    if (hv_connect(path, &fd, &vm, devname, sizeof devname, err, sizeof err)) fail(1, "no hypervisor at %s (%s)", dir, err);
    in.fd = fd;

    if (type == HV_CTL_TOP || (type == HV_CTL_STATUS && !json)) {
        top(type == HV_CTL_STATUS || once, interval);
        return 0;
    }
    if (type == HV_CTL_STATUS) {
        char *j = status_text();
        printf("%s\n", j);
        free(j);
        return 0;
    }
    HvMsg m = {0};
    hv_msg_begin(&m, type, 0);
    if (type != HV_CTL_POLICY) hv_put_u32(&m, id);
    if (spec) hv_put_str(&m, spec);
    if (type == HV_CTL_VM_MIGRATE) hv_put_u32(&m, dev);
    if (type == HV_CTL_POLICY) {
        hv_put_u32(&m, pol);
        hv_put_u32(&m, slice[0]);
        hv_put_u32(&m, slice[1]);
    }
    uint32_t n;
    unsigned char *p = call(&m, type, &n);
    if (type == HV_CTL_VM_MIGRATE) {
        HvRd rd = {.p = p, .n = n};
        double down = hv_get_f64(&rd), total = hv_get_f64(&rd);
        unsigned long long bytes = (unsigned long long)hv_get_u64(&rd);
        unsigned moved = hv_get_u32(&rd);
        printf("VM %u moved to device %u: %llu bytes, %u launches continued there, downtime %.3f ms, total %.3f ms\n",
               id, dev, bytes, moved, down * 1e-6, total * 1e-6);
    } else {
        printf("ok\n");
    }
    free(p);
    close(fd);
    return 0;
}
