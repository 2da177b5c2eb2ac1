/* client.c — pxrun --vm: the kernel's source and data go to pxhvd over a
 * byte stream (DIR/vm<N>.sock, or a serial-port device inside a guest),
 * the daemon compiles and runs it as VM N, and the results are printed as
 * a local run prints them (tools/pxrun.c). No Vulkan, no LLVM: this file,
 * proto.c and runtime/npy.c make the static guest build (make guest-client).
 *
 * Every failure ends with one `pxrun: error: ...` line and exit status 1
 * (2 for usage); the daemon's refusals (quota, unknown VM) are passed on
 * as they come.
 */
#include "hv/hv.h"

#include <ctype.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "px.h"        /* PxNpy, px_npy_*, dtypes, number parsing (libc-only files) */
#include "pxsched.h"   /* PxArgKind (the header only) */
#include "tools/pxrun_args.h" /* fills and output formats: the same as a local run's */

#define CL_TIMEOUT_MS 60000
#define CL_SHM_MIN (1u << 20) /* buffers from 1 MiB go through shared memory on a Unix socket */ /* a reply the daemon owes; launches are waited for in steps */
#define MAXP 64

/* ---- the connection --------------------------------------------------------------- */

static uint64_t nonce_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
}

static _Atomic uint32_t next_req = 1; /* request ids: any thread */

int hv_call(int fd, HvIn *in, HvMsg *req, uint16_t *rtype, unsigned char **payload, uint32_t *plen,
            int timeout_ms, char *err, size_t errsz)
{
    return hv_call_fd(fd, in, req, -1, rtype, payload, plen, timeout_ms, err, errsz);
}

int hv_call_fd(int fd, HvIn *in, HvMsg *req, int passfd, uint16_t *rtype, unsigned char **payload, uint32_t *plen,
               int timeout_ms, char *err, size_t errsz)
{
    *payload = NULL;
    uint32_t id = next_req++;
    if (req->n >= HV_HDR_BYTES) {
        req->p[12] = (unsigned char)id, req->p[13] = (unsigned char)(id >> 8);
        req->p[14] = (unsigned char)(id >> 16), req->p[15] = (unsigned char)(id >> 24);
    }
    if (passfd >= 0 ? hv_send_fd(fd, req, passfd, timeout_ms) : hv_send(fd, req, timeout_ms)) {
        snprintf(err, errsz, "the hypervisor closed the connection (%s)", req->oom ? "request too large" : strerror(errno));
        return -1;
    }
    for (;;) {
        HvHdr h;
        unsigned char *p;
        HvRecv r = hv_recv(in, &h, &p, HV_MAX_FRAME, timeout_ms, timeout_ms);
        if (r == HV_RECV_OK && h.req == id) {
            *rtype = h.type;
            *payload = p;
            *plen = h.len;
            return 0;
        }
        free(p);
        if (r == HV_RECV_OK || r == HV_RECV_BADHDR || r == HV_RECV_TOOBIG) continue; /* not ours: stale or garbage */
        snprintf(err, errsz, "%s", r == HV_RECV_EOF ? "the hypervisor closed the connection" : "no reply from the hypervisor");
        return -1;
    }
}

int hv_call_shm(int fd, HvIn *in, uint16_t type, uint32_t id, void *data, size_t bytes, uint16_t *rtype,
                unsigned char **payload, uint32_t *plen, int timeout_ms, char *err, size_t errsz)
{
    *payload = NULL;
    void *map;
    int mfd = hv_shm_create(bytes, &map);
    if (mfd < 0) return 1;
    if (type == HV_BUF_WRITE_SHM) memcpy(map, data, bytes);
    HvMsg m = {0};
    hv_msg_begin(&m, type, 0);
    hv_put_u32(&m, id);
    hv_put_u64(&m, bytes);
    int r = hv_call_fd(fd, in, &m, mfd, rtype, payload, plen, timeout_ms, err, errsz);
    hv_msg_free(&m);
    close(mfd);
    /* the daemon wrote the memory before it replied */
    if (!r && *rtype != HV_ERROR && type == HV_BUF_READ_SHM) memcpy(data, map, bytes);
    munmap(map, bytes ? bytes : 1);
    return r;
}

/* An error reply's text; its diagnostics go to *diags (malloc'd) when asked. */
static void error_text(const unsigned char *p, uint32_t n, uint32_t *code, char *msg, size_t msz, char **diags)
{
    HvRd rd = {.p = p, .n = n};
    *code = hv_get_u32(&rd);
    hv_get_str(&rd, msg, msz);
    if (diags) *diags = hv_get_strdup(&rd, HV_MAX_TEXT);
    if (rd.bad && !msg[0]) snprintf(msg, msz, "%s", hv_result_name(*code));
}

static int open_stream(const char *path, int *fd, int *is_port, char *err, size_t errsz)
{
    struct stat st;
    if (stat(path, &st)) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        return -1;
    }
    *is_port = !S_ISSOCK(st.st_mode);
    if (*is_port) {
        /* a serial port (virtio-serial /dev/vport0p1): one byte stream */
        if ((*fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY)) < 0) {
            snprintf(err, errsz, "%s: %s", path, strerror(errno));
            return -1;
        }
        return 0;
    }
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) {
        snprintf(err, errsz, "%s: path too long for a socket", path);
        return -1;
    }
    memcpy(a.sun_path, path, strlen(path) + 1);
    *fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*fd < 0 || connect(*fd, (struct sockaddr *)&a, sizeof a)) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        if (*fd >= 0) close(*fd);
        return -1;
    }
    return 0;
}

/* HELLO until the stream is in step: on a serial port a previous guest
 * process may have died mid-frame; the daemon drops a stalled frame after
 * its frame time-out (2 s), so the hello is sent again every 3 s and
 * replies of other nonces are dropped (docs/PROTOCOL.md, "Resync"). */
static int hello(int fd, HvIn *in, int is_port, uint32_t *vm, char *device, size_t devsz, char *err, size_t errsz)
{
    uint64_t nonce = nonce_now();
    /* request ids from a random base: a stale reply to a dead process on
     * the same stream is unlikely to carry an id this one waits for */
    atomic_store(&next_req, (uint32_t)(nonce >> 13) | 1);
    int tries = is_port ? 5 : 1;
    for (int t = 0; t < tries; t++) {
        HvMsg m = {0};
        hv_msg_begin(&m, HV_HELLO, 0);
        hv_put_u64(&m, nonce);
        hv_put_u32(&m, HV_VERSION);
        hv_put_u32(&m, HV_VERSION);
        uint16_t type;
        unsigned char *p;
        uint32_t n;
        int r = hv_call(fd, in, &m, &type, &p, &n, is_port ? 3000 : CL_TIMEOUT_MS, err, errsz);
        hv_msg_free(&m);
        if (r) {
            if (is_port && t + 1 < tries) continue;
            return -1;
        }
        HvRd rd = {.p = p, .n = n};
        if (type == HV_ERROR) {
            uint32_t code;
            error_text(p, n, &code, err, errsz, NULL);
            free(p);
            return -1;
        }
        uint64_t got = hv_get_u64(&rd);
        uint32_t ver = hv_get_u32(&rd);
        *vm = hv_get_u32(&rd);
        hv_get_u32(&rd);
        hv_get_str(&rd, device, devsz);
        free(p);
        if (type != (HV_HELLO | HV_REPLY) || rd.bad || ver != HV_VERSION) {
            snprintf(err, errsz, "the hypervisor's HELLO reply is malformed");
            return -1;
        }
        if (got == nonce) return 0;
    }
    snprintf(err, errsz, "the hypervisor did not answer HELLO");
    return -1;
}

int hv_connect(const char *path, int *fd, uint32_t *vm, char *device, size_t devsz, char *err, size_t errsz)
{
    int is_port;
    if (open_stream(path, fd, &is_port, err, errsz)) return -1;
    HvIn *in = calloc(1, sizeof *in);
    if (!in) {
        close(*fd);
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    in->fd = *fd;
    int r = hello(*fd, in, is_port, vm, device, devsz, err, errsz);
    free(in);
    if (r) close(*fd);
    return r;
}

/* ---- pxrun --vm ----------------------------------------------------------------------- */

typedef struct Param {
    char name[HV_MAX_NAME + 1];
    int is_buffer, dtype, rank, read, written, flexible;
    char dims[4][HV_MAX_NAME + 1];
    uint32_t buffer;           /* bound or made (0: none yet) */
    int64_t shape[4];
    int have_shape;
} Param;

typedef struct Cl {
    /* options */
    const char *file, *kernel, *hvd, *port;
    Pair args[MAXP], sizes[MAXP], fills[MAXP], outs[MAXP];
    int nargs, nsizes, nfills, nouts;
    int vm, repeat, stats, json, werror, verbose;
    /* the connection */
    int fd;
    int is_port;               /* a serial port: the stream path only */
    HvIn *in;
    char device[256];
    /* the kernel */
    uint32_t module;
    char kname[HV_MAX_NAME + 1], kclass[64];
    Param p[HV_MAX_PARAMS];
    int np;
    char sizenames[HV_MAX_PARAMS][HV_MAX_NAME + 1];
    int64_t sizevals[HV_MAX_PARAMS];
    int nsize_names;
} Cl;

static char last_msg[1100]; /* the daemon's last refusal (call() with diags) */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pxrun: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void usage(FILE *f)
{
    fputs("usage: pxrun --vm N kernel.px [--hvd DIR | --hvd-port DEVICE] [--kernel NAME]\n"
          "             [--arg NAME=FILE.npy | --arg NAME=VALUE]... [--size SYM=N]...\n"
          "             [--fill NAME=zeros|ones|iota|random[:SEED]|VALUE]...\n"
          "             [--out NAME=FILE.npy]... [--repeat N] [--stats] [--json] [-Werror] [-v]\n"
          "  (--backend, --device and -O are the hypervisor's: accepted and ignored)\n",
          f);
}

static Pair split(const char *flag, const char *s)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s) die("%s %s: expected NAME=VALUE", flag, s);
    Pair p = {strndup(s, (size_t)(eq - s)), eq + 1, s};
    if (!p.name) die("out of memory");
    return p;
}

static long parse_count(const char *flag, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end == v || *end || errno || n < lo || n > hi) die("%s %s: expected a whole number from %ld to %ld", flag, v, lo, hi);
    return n;
}

static void parse_args(int argc, char **argv, Cl *o)
{
    o->vm = -1;
    o->repeat = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (die("%s needs a value", a), (char *)0))
        if (!strcmp(a, "--arg")) {
            if (o->nargs == MAXP) die("too many --arg");
            o->args[o->nargs++] = split(a, NEXT());
        } else if (!strcmp(a, "--size")) {
            if (o->nsizes == MAXP) die("too many --size");
            o->sizes[o->nsizes++] = split(a, NEXT());
        } else if (!strcmp(a, "--fill")) {
            if (o->nfills == MAXP) die("too many --fill");
            o->fills[o->nfills++] = split(a, NEXT());
        } else if (!strcmp(a, "--out")) {
            if (o->nouts == MAXP) die("too many --out");
            o->outs[o->nouts++] = split(a, NEXT());
        } else if (!strcmp(a, "--kernel")) o->kernel = NEXT();
        else if (!strcmp(a, "--hvd")) o->hvd = NEXT();
        else if (!strcmp(a, "--hvd-port")) o->port = NEXT();
        else if (!strcmp(a, "--device") || !strcmp(a, "--backend")) (void)NEXT(); /* the VM's device is the daemon's */
        else if (!strcmp(a, "--vm")) o->vm = (int)parse_count(a, NEXT(), 1, 65535);
        else if (!strcmp(a, "--repeat")) o->repeat = (int)parse_count(a, NEXT(), 1, 1000000);
        else if (!strcmp(a, "--stats")) o->stats = 1;
        else if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--calibrate")) die("--calibrate measures a local device; it does not go with --vm");
        else if (!strcmp(a, "-v")) o->verbose = 1;
        else if (!strcmp(a, "-Werror")) o->werror = 1;
        else if (!strcmp(a, "-O0") || !strcmp(a, "-O1") || !strcmp(a, "-O2")) {}
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (a[0] == '-' && a[1]) {
            usage(stderr);
            die("unknown option %s", a);
        } else if (o->file) die("more than one kernel file (%s and %s)", o->file, a);
        else o->file = a;
#undef NEXT
    }
    if (o->vm < 0) die("--vm N is needed to run through the hypervisor");
    if (!o->file) {
        usage(stderr);
        die("no kernel file given");
    }
    if (o->hvd && o->port) die("--hvd and --hvd-port both given: one way to the hypervisor");
}

/* One request: the reply's payload (free it) or die with the daemon's
 * one-line refusal. diags (when asked) get an error's diagnostics. */
static unsigned char *call(Cl *o, HvMsg *m, uint16_t want, uint32_t *n, const char *what, char **diags)
{
    uint16_t type;
    unsigned char *p;
    char err[1200];
    if (hv_call(o->fd, o->in, m, &type, &p, n, CL_TIMEOUT_MS, err, sizeof err)) die("%s: %s", what, err);
    hv_msg_free(m);
    if (type == HV_ERROR) {
        uint32_t code;
        char msg[1100];
        error_text(p, *n, &code, msg, sizeof msg, diags);
        snprintf(last_msg, sizeof last_msg, "%s", msg);
        free(p);
        if (diags) return NULL;
        die("%s: %s", what, msg);
    }
    if (type != (want | HV_REPLY)) die("%s: unexpected reply type %u from the hypervisor", what, type);
    return p;
}

static void compile(Cl *o)
{
    FILE *f = fopen(o->file, "rb");
    if (!f) die("cannot open %s: %s", o->file, strerror(errno));
    char *src = malloc(HV_MAX_SOURCE + 1);
    if (!src) die("out of memory");
    size_t len = fread(src, 1, HV_MAX_SOURCE + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) die("cannot read %s", o->file);
    if (len > HV_MAX_SOURCE) die("%s: larger than %u bytes, the most the hypervisor takes", o->file, HV_MAX_SOURCE);
    HvMsg m = {0};
    hv_msg_begin(&m, HV_COMPILE, 0);
    hv_put_str(&m, o->file);
    hv_put_str(&m, o->kernel ? o->kernel : "");
    hv_put_bytes(&m, src, len);
    free(src);
    uint32_t n;
    char *diags = NULL;
    unsigned char *p = call(o, &m, HV_COMPILE, &n, "compiling", &diags);
    if (!p) {
        /* an error reply: diagnostics first, as a local run prints them */
        if (diags && *diags) fputs(diags, stderr);
        free(diags);
        die("%s", last_msg);
    }
    HvRd rd = {.p = p, .n = n};
    o->module = hv_get_u32(&rd);
    char *warn = hv_get_strdup(&rd, HV_MAX_TEXT);
    if (warn && *warn) fputs(warn, stderr);
    int had_warn = warn && *warn;
    free(warn);
    hv_get_str(&rd, o->kname, sizeof o->kname);
    hv_get_str(&rd, o->kclass, sizeof o->kclass);
    uint32_t np = hv_get_u32(&rd);
    if (np > HV_MAX_PARAMS) rd.bad = 1;
    for (uint32_t i = 0; !rd.bad && i < np; i++) {
        Param *q = &o->p[i];
        hv_get_str(&rd, q->name, sizeof q->name);
        q->is_buffer = (int)hv_get_u32(&rd);
        q->dtype = (int)hv_get_u32(&rd);
        q->rank = (int)hv_get_u32(&rd);
        if (q->rank < 0 || q->rank > 4 || q->dtype < 0 || q->dtype > PX_F16) rd.bad = 1;
        for (int d = 0; !rd.bad && d < q->rank; d++) hv_get_str(&rd, q->dims[d], sizeof q->dims[d]);
        q->read = (int)hv_get_u32(&rd);
        q->written = (int)hv_get_u32(&rd);
        q->flexible = (int)hv_get_u32(&rd);
    }
    o->np = (int)np;
    uint32_t ns = hv_get_u32(&rd);
    if (ns > HV_MAX_PARAMS) rd.bad = 1;
    for (uint32_t i = 0; !rd.bad && i < ns; i++) hv_get_str(&rd, o->sizenames[i], sizeof o->sizenames[i]);
    o->nsize_names = (int)ns;
    for (int i = 0; i < o->nsize_names; i++) o->sizevals[i] = -1;
    free(p);
    if (rd.bad) die("the hypervisor's COMPILE reply is malformed");
    if (o->werror && had_warn) die("warnings treated as errors (-Werror)");
}

static Param *param(Cl *o, const char *name)
{
    for (int i = 0; i < o->np; i++)
        if (!strcmp(o->p[i].name, name)) return &o->p[i];
    return NULL;
}

static int size_index(Cl *o, const char *name)
{
    for (int i = 0; i < o->nsize_names; i++)
        if (!strcmp(o->sizenames[i], name)) return i;
    return -1;
}

static uint32_t buffer_new(Cl *o, int dtype, int rank, const int64_t *shape, const char *what)
{
    HvMsg m = {0};
    hv_msg_begin(&m, HV_BUF_CREATE, 0);
    hv_put_u32(&m, (uint32_t)dtype);
    hv_put_u32(&m, (uint32_t)rank);
    for (int i = 0; i < rank; i++) hv_put_u64(&m, (uint64_t)shape[i]);
    uint32_t n;
    unsigned char *p = call(o, &m, HV_BUF_CREATE, &n, what, NULL);
    HvRd rd = {.p = p, .n = n};
    uint32_t id = hv_get_u32(&rd);
    free(p);
    if (rd.bad) die("%s: malformed reply", what);
    return id;
}

/* The shared-memory path (docs/PROTOCOL.md, hv_call_shm). 0, or -1 when
 * no memfd could be made (the caller uses the stream); refusals die. */
static int shm_copy(Cl *o, uint16_t type, uint32_t id, void *d, size_t bytes, const char *what)
{
    uint16_t rt;
    unsigned char *p;
    uint32_t n;
    char err[1200];
    int r = hv_call_shm(o->fd, o->in, type, id, d, bytes, &rt, &p, &n, CL_TIMEOUT_MS, err, sizeof err);
    if (r > 0) return -1;
    if (r) die("%s: %s", what, err);
    if (rt == HV_ERROR) {
        uint32_t code;
        char msg[1100];
        error_text(p, n, &code, msg, sizeof msg, NULL);
        die("%s: %s", what, msg);
    }
    free(p);
    return 0;
}

static void buffer_write(Cl *o, uint32_t id, const void *d, size_t bytes, const char *what)
{
    if (!o->is_port && bytes >= CL_SHM_MIN && shm_copy(o, HV_BUF_WRITE_SHM, id, (void *)d, bytes, what) == 0) return;
    if (bytes > HV_MAX_FRAME - 64) die("%s: %zu bytes, more than one frame carries (%u)", what, bytes, HV_MAX_FRAME - 64);
    HvMsg m = {0};
    hv_msg_begin(&m, HV_BUF_WRITE, 0);
    hv_put_u32(&m, id);
    void *room = hv_put_space(&m, bytes); /* one copy: no growing on the way */
    if (room) memcpy(room, d, bytes);
    uint32_t n;
    free(call(o, &m, HV_BUF_WRITE, &n, what, NULL));
}

/* A buffer's contents, type and shape; *data malloc'd. */
static void buffer_read(Cl *o, uint32_t id, int *dtype, int *rank, int64_t *shape, void **data, const char *what)
{
    if (!o->is_port) {
        /* its size first: a large one comes through shared memory */
        HvMsg m = {0};
        hv_msg_begin(&m, HV_BUF_INFO, 0);
        hv_put_u32(&m, id);
        uint32_t n;
        unsigned char *p = call(o, &m, HV_BUF_INFO, &n, what, NULL);
        HvRd rd = {.p = p, .n = n};
        uint32_t dt;
        uint64_t count = hv_get_shape(&rd, &dt, rank, shape);
        *dtype = (int)dt;
        free(p);
        if (rd.bad) die("%s: malformed reply", what);
        size_t bytes = (size_t)count * px_dtype_size((PxDtype)*dtype);
        if (bytes >= CL_SHM_MIN) {
            if (!(*data = malloc(bytes))) die("out of memory");
            if (shm_copy(o, HV_BUF_READ_SHM, id, *data, bytes, what) == 0) return;
            free(*data);
        }
    }
    HvMsg m = {0};
    hv_msg_begin(&m, HV_BUF_READ, 0);
    hv_put_u32(&m, id);
    uint32_t n;
    unsigned char *p = call(o, &m, HV_BUF_READ, &n, what, NULL);
    HvRd rd = {.p = p, .n = n};
    uint32_t dt;
    uint64_t count = hv_get_shape(&rd, &dt, rank, shape);
    *dtype = (int)dt;
    size_t len;
    const void *d = hv_get_bytes(&rd, HV_MAX_FRAME, &len);
    if (rd.bad || len != count * px_dtype_size((PxDtype)*dtype)) die("%s: malformed reply", what);
    *data = malloc(len + 1);
    if (!*data) die("out of memory");
    memcpy(*data, d, len);
    free(p);
}

/* ---- the run ----------------------------------------------------------------------------- */

/* Symbols bound by --size or by the shapes of bound buffers. */
static void learn_sizes(Cl *o)
{
    for (int i = 0; i < o->nsizes; i++) {
        const Pair *s = &o->sizes[i];
        char *end;
        errno = 0;
        long long v = strtoll(s->value, &end, 0);
        if (end == s->value || *end || v < 0 || errno) die("--size %s: expected a whole number >= 0", s->text);
        int k = size_index(o, s->name);
        if (k < 0) die("--size %s: kernel %s has no size symbol %s", s->text, o->kname, s->name);
        o->sizevals[k] = v;
    }
    for (int i = 0; i < o->np; i++) {
        Param *q = &o->p[i];
        if (!q->have_shape || q->flexible) continue;
        for (int d = 0; d < q->rank; d++) {
            int k = size_index(o, q->dims[d]);
            if (k >= 0 && o->sizevals[k] < 0) o->sizevals[k] = q->shape[d];
        }
    }
}

typedef struct Result {
    double gpu_ns, latency_ns;
    int slices;
} Result;

static void launch_once(Cl *o, Result *res, int first)
{
    /* RUN: launched and (mostly) waited for in one round trip */
    HvMsg m = {0};
    hv_msg_begin(&m, HV_RUN, 0);
    hv_put_u32(&m, o->module);
    hv_put_str(&m, o->kname);
    /* scalars, sizes and every buffer bound or made so far */
    uint32_t nargs;
    int nbuf = 0;
    for (int i = 0; i < o->np; i++) nbuf += o->p[i].is_buffer && o->p[i].buffer;
    int nscalar = 0;
    for (int i = 0; i < o->nargs; i++) {
        Param *q = param(o, o->args[i].name);
        nscalar += q && !q->is_buffer;
    }
    nargs = (uint32_t)(nscalar + o->nsizes + nbuf);
    if (nargs > HV_MAX_ARGS) die("more than %d arguments", HV_MAX_ARGS);
    hv_put_u32(&m, nargs);
    for (int i = 0; i < o->nargs; i++) {
        const Pair *a = &o->args[i];
        Param *q = param(o, a->name);
        if (!q || q->is_buffer) continue;
        hv_put_str(&m, a->name);
        /* the numbers of px_launch_set_scalar_text: decimal or 0x hex, range-checked */
        if (q->dtype == PX_F32 || q->dtype == PX_F16) {
            double v;
            int half = q->dtype == PX_F16;
            int e = px_parse_float(a->value, half ? PX_HALF_MAX : PX_FLOAT_MAX, &v);
            if (e == 1) die("--arg %s: %s is %s: '%s' is not a number", a->text, a->name, px_dtype_name((PxDtype)q->dtype), a->value);
            if (e) die("--arg %s: %s is %s: %s is beyond its range", a->text, a->name, px_dtype_name((PxDtype)q->dtype), a->value);
            hv_put_u32(&m, PX_ARG_FLOAT);
            hv_put_u32(&m, 0);
            hv_put_f64(&m, v);
            hv_put_u64(&m, 0);
        } else {
            int64_t v;
            int u = q->dtype == PX_U32;
            int e = u && a->value[0] == '-' ? 1 : px_parse_int(a->value, u ? 0 : INT32_MIN, u ? UINT32_MAX : INT32_MAX, &v);
            if (e == 1) die("--arg %s: %s is %s: '%s' is not an integer (decimal or 0x hex)", a->text, a->name, px_dtype_name((PxDtype)q->dtype), a->value);
            if (e) die("--arg %s: %s is %s: %s does not fit in 32 bits", a->text, a->name, px_dtype_name((PxDtype)q->dtype), a->value);
            hv_put_u32(&m, u ? PX_ARG_UINT : PX_ARG_INT);
            hv_put_u32(&m, 0);
            hv_put_f64(&m, 0);
            hv_put_u64(&m, (uint64_t)v);
        }
    }
    for (int i = 0; i < o->nsizes; i++) {
        hv_put_str(&m, o->sizes[i].name);
        hv_put_u32(&m, PX_ARG_SIZE);
        hv_put_u32(&m, 0);
        hv_put_f64(&m, 0);
        hv_put_u64(&m, (uint64_t)strtoll(o->sizes[i].value, NULL, 0));
    }
    for (int i = 0; i < o->np; i++) {
        if (!o->p[i].is_buffer || !o->p[i].buffer) continue;
        hv_put_str(&m, o->p[i].name);
        hv_put_u32(&m, PX_ARG_BUFFER);
        hv_put_u32(&m, o->p[i].buffer);
        hv_put_f64(&m, 0);
        hv_put_u64(&m, 0);
    }
    hv_put_u32(&m, 1000);
    char what[320];
    snprintf(what, sizeof what, "running %s", o->kname);
    uint32_t n;
    unsigned char *p = call(o, &m, HV_RUN, &n, what, NULL);
    HvRd rd = {.p = p, .n = n};
    uint64_t ticket = hv_get_u64(&rd);
    uint32_t finished = hv_get_u32(&rd);
    if (rd.bad) die("%s: malformed reply", what);
    if (!finished) free(p);
    for (; !finished;) {
        HvMsg w = {0};
        hv_msg_begin(&w, HV_WAIT, 0);
        hv_put_u64(&w, ticket);
        hv_put_u32(&w, 1000);
        uint16_t type;
        char err[1200];
        if (hv_call(o->fd, o->in, &w, &type, &p, &n, CL_TIMEOUT_MS, err, sizeof err)) die("%s: %s", what, err);
        hv_msg_free(&w);
        if (type == HV_ERROR) {
            uint32_t code;
            char msg[1100];
            error_text(p, n, &code, msg, sizeof msg, NULL);
            free(p);
            if (code == PX_ERR_NOT_READY) continue;
            die("%s: %s", what, msg);
        }
        rd = (HvRd){.p = p, .n = n};
        break;
    }
    uint32_t result = hv_get_u32(&rd);
    char error[600];
    hv_get_str(&rd, error, sizeof error);
    res->gpu_ns = hv_get_f64(&rd);
    res->latency_ns = hv_get_f64(&rd);
    hv_get_f64(&rd);
    res->slices = (int)hv_get_u32(&rd);
    uint32_t no = hv_get_u32(&rd);
    for (uint32_t i = 0; !rd.bad && i < no && i < HV_MAX_PARAMS; i++) {
        char pname[HV_MAX_NAME + 1];
        hv_get_str(&rd, pname, sizeof pname);
        uint32_t id = hv_get_u32(&rd);
        Param *q = param(o, pname);
        if (q && first && !rd.bad) q->buffer = id; /* later repeats bind it */
    }
    free(p);
    if (rd.bad) die("%s: malformed reply", what);
    if (result) die("%s: %s", what, error[0] ? error : hv_result_name(result));
}

int hv_client_main(int argc, char **argv)
{
    Cl *o = calloc(1, sizeof *o);
    if (!o) die("out of memory");
    parse_args(argc, argv, o);
    char dir[4096], path[4200];
    if (o->hvd) snprintf(dir, sizeof dir, "%s", o->hvd);
    else hv_default_dir(dir, sizeof dir);
    if (o->port) snprintf(path, sizeof path, "%s", o->port);
    else snprintf(path, sizeof path, "%s/vm%d.sock", dir, o->vm);
    char err[600];
    int is_port;
    if (open_stream(path, &o->fd, &o->is_port, err, sizeof err)) {
        if (o->port) die("cannot open the hypervisor's port %s", err);
        struct stat st;
        if (stat(dir, &st)) die("no hypervisor at %s (%s)", dir, strerror(errno));
        die("no VM %d at the hypervisor at %s (%s)", o->vm, dir, err);
    }
    if (!(o->in = calloc(1, sizeof *o->in))) die("out of memory");
    o->in->fd = o->fd;
    uint32_t vm;
    is_port = o->is_port;
    if (hello(o->fd, o->in, is_port, &vm, o->device, sizeof o->device, err, sizeof err)) die("%s", err);
    if (vm != (uint32_t)o->vm) die("this connection is VM %u at the hypervisor, not VM %d", vm, o->vm);

    compile(o);

    /* buffers from .npy files */
    for (int i = 0; i < o->nargs; i++) {
        const Pair *a = &o->args[i];
        Param *q = param(o, a->name);
        if (!q) die("--arg %s: kernel %s has no parameter named %s", a->text, o->kname, a->name);
        for (int j = 0; j < i; j++)
            if (!strcmp(o->args[j].name, a->name)) die("--arg %s: %s is already given by --arg %s", a->text, a->name, o->args[j].text);
        if (!q->is_buffer) continue;
        PxNpy npy;
        char e[512];
        if (px_npy_read(a->value, &npy, e, sizeof e)) die("--arg %s: %s", a->text, e);
        char decl[128] = "";
        size_t dl = (size_t)snprintf(decl, sizeof decl, "%s", px_dtype_name((PxDtype)q->dtype));
        if (q->flexible) snprintf(decl + dl, sizeof decl - dl, "[]");
        else
            for (int d = 0; d < q->rank && dl < sizeof decl; d++) dl += (size_t)snprintf(decl + dl, sizeof decl - dl, "[%s]", q->dims[d]);
        if ((int)npy.dtype != q->dtype)
            die("--arg %s: %s has dtype %s (%s) but parameter %s is %s", a->text, a->value, px_npy_descr(npy.dtype),
                px_dtype_name((PxDtype)npy.dtype), a->name, decl);
        char what[320];
        snprintf(what, sizeof what, "--arg %s", a->text);
        q->buffer = buffer_new(o, npy.dtype, npy.rank, npy.shape, what);
        buffer_write(o, q->buffer, npy.data, (size_t)npy.count * px_dtype_size((PxDtype)npy.dtype), what);
        q->have_shape = 1;
        for (int d = 0; d < npy.rank && d < 4; d++) q->shape[d] = npy.shape[d];
        if (npy.rank != q->rank && !q->flexible) q->have_shape = 0;
        px_npy_free(&npy);
    }
    learn_sizes(o);
    /* fills: the buffer in the shape the kernel gives it */
    for (int i = 0; i < o->nfills; i++) {
        const Pair *f = &o->fills[i];
        Param *q = param(o, f->name);
        if (!q) die("--fill %s: kernel %s has no parameter named %s", f->text, o->kname, f->name);
        if (!q->is_buffer) die("--fill %s: %s is a scalar; give it with --arg %s=VALUE", f->text, f->name, f->name);
        for (int j = 0; j < o->nargs; j++)
            if (!strcmp(o->args[j].name, f->name)) die("--fill %s: %s is already given by --arg %s", f->text, f->name, o->args[j].text);
        if (q->flexible) die("--fill %s: %s has no declared shape; bind it with --arg", f->text, f->name);
        int64_t count = 1;
        for (int d = 0; d < q->rank; d++) {
            char *end;
            long long v = strtoll(q->dims[d], &end, 10);
            if (end == q->dims[d] || *end) {
                int k = size_index(o, q->dims[d]);
                v = k >= 0 ? o->sizevals[k] : -1;
            }
            if (v < 0) die("--fill %s: size %s of %s is not bound (give --size %s=N)", f->text, q->dims[d], f->name, q->dims[d]);
            q->shape[d] = v;
            count *= v;
        }
        char what[320];
        snprintf(what, sizeof what, "--fill %s", f->text);
        q->buffer = buffer_new(o, q->dtype, q->rank, q->shape, what);
        FillSpec fs;
        char fe[512];
        if (pxrun_parse_fill(f, (PxDtype)q->dtype, &fs, fe, sizeof fe)) die("%s", fe);
        void *d = malloc((size_t)count * px_dtype_size((PxDtype)q->dtype) + 1);
        if (!d) die("out of memory for --fill %s", f->text);
        pxrun_fill(&fs, (PxDtype)q->dtype, count, d);
        buffer_write(o, q->buffer, d, (size_t)count * px_dtype_size((PxDtype)q->dtype), what);
        free(d);
    }
    for (int i = 0; i < o->nouts; i++) {
        Param *q = param(o, o->outs[i].name);
        if (!q || !q->is_buffer)
            die("--out %s: %s", o->outs[i].text, q ? "that parameter is a scalar, not a buffer" : "the kernel has no such buffer");
    }

    double best = -1, lat = -1;
    for (int rep = 0; rep < o->repeat; rep++) {
        Result r;
        launch_once(o, &r, rep == 0);
        if (best < 0 || r.gpu_ns < best) best = r.gpu_ns, lat = r.latency_ns;
    }

    for (int i = 0; i < o->nouts; i++) {
        Param *q = param(o, o->outs[i].name);
        if (!q->buffer) die("--out %s: the kernel has no such buffer", o->outs[i].text);
        int t, rank;
        int64_t shape[4];
        void *d;
        char what[320];
        snprintf(what, sizeof what, "--out %s", o->outs[i].text);
        buffer_read(o, q->buffer, &t, &rank, shape, &d, what);
        char e[512];
        if (px_npy_write(o->outs[i].value, (PxDtype)t, rank, shape, d, e, sizeof e)) die("--out %s: %s", o->outs[i].text, e);
        free(d);
    }

    FILE *f = stdout;
    json_t *j = NULL, *bufs = NULL;
    if (o->json) {
        /* the keys of a local run's --json (tools/pxrun.c), in its order */
        j = json_pack("{s:s, s:s, s:s, s:i, s:i, s:{s:b, s:s}, s:i}", "kernel", o->kname, "class", o->kclass, "device",
                      o->device, "vm", o->vm, "repeat", o->repeat, "profile", "calibrated", 0, "source", "pxhvd",
                      "correction", 1);
        json_t *sizes = json_object();
        for (int i = 0; i < o->nsize_names; i++)
            if (o->sizevals[i] >= 0) json_object_set_new(sizes, o->sizenames[i], json_integer(o->sizevals[i]));
        json_object_set_new(j, "sizes", sizes);
        json_object_set_new(j, "buffers", bufs = json_array());
    } else {
        fprintf(f, "kernel %s (%s) on %s, vm %d\n", o->kname, o->kclass, o->device, o->vm);
    }
    if (o->json || !o->nouts) {
        for (int i = 0; i < o->np; i++) {
            Param *q = &o->p[i];
            if (!q->is_buffer || !q->written || !q->buffer) continue;
            int t, rank;
            int64_t shape[4];
            void *d;
            char what[320];
            snprintf(what, sizeof what, "reading %s", q->name);
            buffer_read(o, q->buffer, &t, &rank, shape, &d, what);
            if (j) json_array_append_new(bufs, pxrun_summary_json(q->name, (PxDtype)t, rank, shape, d));
            else pxrun_summary(f, q->name, (PxDtype)t, rank, shape, d);
            free(d);
        }
    } else {
        for (int i = 0; i < o->nouts; i++) fprintf(f, "wrote %s\n", o->outs[i].text);
    }
    /* per-stage times are the daemon's (its launch is gone when the
     * ticket is waited for): a --vm run reports the launch's total GPU time */
    if (j) {
        json_object_set_new(j, "stages", json_array());
        json_object_set_new(j, "total", json_pack("{s:s, s:n, s:o, s:n, s:n, s:n, s:n, s:o}", "name", "total",
                                                  "predicted_ns", "measured_ns", pxrun_json_num(best), "flops",
                                                  "bytes", "gb_per_s", "gflop_per_s", "latency_ns",
                                                  pxrun_json_num(lat)));
        pxrun_json_print(f, j);
    } else if (o->stats) {
        char mt[32];
        pxrun_fmt_time(mt, sizeof mt, best);
        fprintf(f, "%-24s %12s %12s %10s %10s\n", "stage", "predicted", "measured", "GB/s", "GFLOP/s");
        fprintf(f, "%-24s %12s %12s %10s %10s\n", "total", "-", mt, "-", "-");
        if (o->repeat > 1) fprintf(f, "(measured: best of %d runs)\n", o->repeat);
        char lt[32];
        pxrun_fmt_time(lt, sizeof lt, lat);
        fprintf(f, "(measured: GPU time of the launch at the hypervisor; submit to done %s)\n", lt);
    }
    fflush(f);
    close(o->fd);
    free(o->in);
    for (int i = 0; i < o->nargs; i++) free((char *)o->args[i].name);
    for (int i = 0; i < o->nsizes; i++) free((char *)o->sizes[i].name);
    for (int i = 0; i < o->nfills; i++) free((char *)o->fills[i].name);
    for (int i = 0; i < o->nouts; i++) free((char *)o->outs[i].name);
    free(o);
    return 0;
}
