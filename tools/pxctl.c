/* pxctl — the operator's tool (px-hypervisor.md section 5): status [--json],
 * vm add/rm/set/migrate, top, over DIR/control.sock. Exit status: 0, 1 for
 * a refusal or no daemon, 2 for a bad command line. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
          "       pxctl [--hvd DIR] top [--once] [--interval-ms N]\n",
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

typedef struct Row {
    uint32_t id, device, queued;
    char name[256], profile[256];
    uint64_t quota, used, gpu_ns, done, failed, slices;
    double share, p50, p99;
} Row;

static int top_sample(Row *rows, int max, uint64_t *busy, int *ndev)
{
    HvMsg m = {0};
    hv_msg_begin(&m, HV_CTL_TOP, 0);
    uint32_t n;
    unsigned char *p = call(&m, HV_CTL_TOP, &n);
    HvRd rd = {.p = p, .n = n};
    uint32_t nd = hv_get_u32(&rd);
    for (uint32_t i = 0; i < nd && !rd.bad; i++) {
        uint64_t b = hv_get_u64(&rd);
        if (i < 16) busy[i] = b;
    }
    *ndev = nd < 16 ? (int)nd : 16;
    uint32_t k = hv_get_u32(&rd);
    int got = 0;
    for (uint32_t i = 0; i < k && !rd.bad && got < max; i++, got++) {
        Row *r = &rows[got];
        r->id = hv_get_u32(&rd);
        hv_get_str(&rd, r->name, sizeof r->name);
        hv_get_str(&rd, r->profile, sizeof r->profile);
        r->device = hv_get_u32(&rd);
        r->quota = hv_get_u64(&rd);
        r->used = hv_get_u64(&rd);
        r->share = hv_get_f64(&rd);
        r->gpu_ns = hv_get_u64(&rd);
        r->done = hv_get_u64(&rd);
        r->failed = hv_get_u64(&rd);
        r->queued = hv_get_u32(&rd);
        r->p50 = hv_get_f64(&rd);
        r->p99 = hv_get_f64(&rd);
        r->slices = hv_get_u64(&rd);
    }
    free(p);
    if (rd.bad) fail(1, "malformed TOP reply");
    return got;
}

static void top(int once, int interval_ms)
{
    static Row a[1024], b[1024];
    uint64_t busy_a[16] = {0}, busy_b[16] = {0};
    int nd, na = top_sample(a, 1024, busy_a, &nd);
    for (;;) {
        struct timespec ts = {interval_ms / 1000, (long)(interval_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
        int nb = top_sample(b, 1024, busy_b, &nd);
        if (!once) fputs("\033[H\033[2J", stdout);
        printf("%6s %-12s %4s %21s %7s %8s %6s %10s %10s %8s\n", "VM", "name", "dev", "memory used/quota MiB", "share",
               "achieved", "queue", "p99 us", "done", "failed");
        for (int i = 0; i < nb; i++) {
            Row *r = &b[i];
            uint64_t before = 0;
            for (int j = 0; j < na; j++)
                if (a[j].id == r->id) before = a[j].gpu_ns;
            uint64_t dbusy = r->device < 16 ? busy_b[r->device] - busy_a[r->device] : 0;
            double ach = dbusy ? 100.0 * (double)(r->gpu_ns - before) / (double)dbusy : 0;
            char mem[64];
            snprintf(mem, sizeof mem, "%.1f/%.1f", (double)r->used / 1048576.0, (double)r->quota / 1048576.0);
            printf("%6u %-12.12s %4u %21s %6.1f%% %7.1f%% %6u %10.0f %10llu %8llu\n", r->id, r->name, r->device, mem, r->share,
                   ach, r->queued, r->p99, (unsigned long long)r->done, (unsigned long long)r->failed);
        }
        fflush(stdout);
        if (once) return;
        memcpy(a, b, sizeof a);
        memcpy(busy_a, busy_b, sizeof busy_a);
        na = nb;
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
    uint32_t id = 0, dev = 0;
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

    if (type == HV_CTL_TOP) {
        top(once, interval);
        return 0;
    }
    HvMsg m = {0};
    hv_msg_begin(&m, type, 0);
    if (type != HV_CTL_STATUS) hv_put_u32(&m, id);
    if (spec) hv_put_str(&m, spec);
    if (type == HV_CTL_VM_MIGRATE) hv_put_u32(&m, dev);
    uint32_t n;
    unsigned char *p = call(&m, type, &n);
    if (type == HV_CTL_STATUS) {
        HvRd rd = {.p = p, .n = n};
        char *j = hv_get_strdup(&rd, HV_MAX_FRAME);
        if (!j) fail(1, "malformed status reply");
        if (json) printf("%s\n", j);
        else {
            /* the table from the same numbers: ask for them */
            free(j);
            free(p);
            once = 1;
            top(1, 50);
            return 0;
        }
        free(j);
    } else if (type == HV_CTL_VM_MIGRATE) {
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
