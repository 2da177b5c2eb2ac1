/* pxclient.c — include/pxclient.h: a program as a VM of a running pxhvd.
 * The requests of docs/PROTOCOL.md over hv_connect/hv_call (client.c) and
 * the frame code of proto.c; what pxrun --vm does, as calls that return
 * results instead of printing and exiting.
 *
 * Invariants: one request is on the connection at a time (c->mu), so a
 * reply read is always the reply to the request just sent; every reply is
 * checked field by field (HvRd) before a value of it is used.
 */
#include "pxclient.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hv/hv.h"

#define PC_TIMEOUT_MS 60000   /* a reply the daemon owes (launches are waited for in steps) */
#define PC_WAIT_STEP_MS 20    /* one WAIT request: short, so other threads' requests interleave */
#define PC_SHM_MIN (1u << 20) /* buffers from 1 MiB go through shared memory (as pxrun --vm) */

struct PxClient {
    pthread_mutex_t mu;        /* one request and its reply at a time */
    int fd;
    int broken;                /* the stream failed: every later call is PX_ERR_IO */
    HvIn *in;
    uint32_t vm;
    char device[256];
};

struct PxClientModule {
    PxClient *c;
    uint32_t id;               /* the module's id in the VM */
    char *name, *cls;
    int np, ns;
    PxParamInfo *p;            /* strings below are malloc'd with the module */
    char **sizes;
};

static _Thread_local char last_err[1200];

static PxResult fail(PxResult r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static PxResult fail(PxResult r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_err, sizeof last_err, fmt, ap);
    va_end(ap);
    return r;
}

const char *px_client_last_error(void) { return last_err; }

PxResult px_client_connect(const char *dir, uint32_t vm, PxClient **out, char **err)
{
    if (err) *err = NULL;
    if (!out) return PX_ERR_INVALID;
    *out = NULL;
    char d[4096], path[4200], e[1024] = "", msg[5200] = "";
    PxResult r = PX_OK;
    if (dir) snprintf(d, sizeof d, "%s", dir);
    else hv_default_dir(d, sizeof d);
    snprintf(path, sizeof path, "%s/vm%u.sock", d, (unsigned)vm);
    PxClient *c = calloc(1, sizeof *c);
    if (!c || !(c->in = calloc(1, sizeof *c->in))) {
        r = PX_ERR_OUT_OF_MEMORY;
        snprintf(e, sizeof e, "out of memory");
    } else if (vm < 1 || vm > 65535) {
        r = PX_ERR_INVALID;
        snprintf(e, sizeof e, "VM id %u is out of range (1..65535)", (unsigned)vm);
    } else if (hv_connect(path, &c->fd, &c->vm, c->device, sizeof c->device, e, sizeof e)) {
        r = PX_ERR_NOT_FOUND;
        snprintf(msg, sizeof msg, "no VM %u at the hypervisor at %s (%s)", (unsigned)vm, d, e);
    } else if (c->vm != vm) {
        r = PX_ERR_IO;
        snprintf(msg, sizeof msg, "%s is VM %u at the hypervisor, not VM %u", path, (unsigned)c->vm, (unsigned)vm);
        close(c->fd);
    }
    if (r) {
        if (!msg[0]) snprintf(msg, sizeof msg, "%s", e);
        fail(r, "%s", msg);
        if (err) *err = strdup(msg);
        if (c) free(c->in);
        free(c);
        return r;
    }
    c->in->fd = c->fd;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return PX_OK;
}

void px_client_close(PxClient *c)
{
    if (!c) return;
    close(c->fd);
    pthread_mutex_destroy(&c->mu);
    hv_in_close_fds(c->in);
    free(c->in);
    free(c);
}

const char *px_client_device(const PxClient *c) { return c ? c->device : ""; }
uint32_t px_client_vm(const PxClient *c) { return c ? c->vm : 0; }

/* A buffer's data through shared memory (hv_call_shm) instead of a frame. */
typedef struct Shm {
    uint16_t type;             /* HV_BUF_WRITE_SHM or HV_BUF_READ_SHM */
    uint32_t id;
    void *data;
    size_t bytes;
} Shm;

/* One request and its reply of type `type | HV_REPLY`: the message m
 * (finished here, and freed), or the shared-memory transfer shm. PX_OK
 * with the payload (malloc'd) in *p, or the daemon's refusal (its code
 * and message; its diagnostics to *diags when asked); PX_ERR_UNSUPPORTED
 * when shm found no memfd to use (the caller uses the stream). */
static PxResult call_as(PxClient *c, HvMsg *m, const Shm *shm, unsigned char **p, uint32_t *n, char **diags)
{
    *p = NULL;
    if (m && hv_msg_end(m)) {
        hv_msg_free(m);
        return fail(PX_ERR_TOO_LARGE, "the request is larger than a frame (%u bytes)", HV_MAX_FRAME);
    }
    uint16_t type = m ? (uint16_t)(m->p[6] | m->p[7] << 8) : shm->type, rtype = 0;
    char e[1100];
    pthread_mutex_lock(&c->mu);
    int r = c->broken ? -1
            : m       ? hv_call_fd(c->fd, c->in, m, -1, &rtype, p, n, PC_TIMEOUT_MS, e, sizeof e)
                      : hv_call_shm(c->fd, c->in, shm->type, shm->id, shm->data, shm->bytes, &rtype, p, n, PC_TIMEOUT_MS,
                                    e, sizeof e);
    if (r < 0 && !c->broken) c->broken = 1;
    else if (r < 0) snprintf(e, sizeof e, "the connection to the hypervisor failed earlier");
    pthread_mutex_unlock(&c->mu);
    if (m) hv_msg_free(m);
    if (r > 0) return PX_ERR_UNSUPPORTED;
    if (r) return fail(PX_ERR_IO, "%s", e);
    if (rtype == HV_ERROR) {
        HvRd rd = {.p = *p, .n = *n};
        uint32_t code = hv_get_u32(&rd);
        hv_get_str(&rd, e, sizeof e);
        if (diags) *diags = hv_get_strdup(&rd, HV_MAX_TEXT);
        free(*p);
        *p = NULL;
        if (rd.bad && !e[0]) snprintf(e, sizeof e, "%s", hv_result_name(code));
        return fail(code && code <= PX_ERR_BUSY ? (PxResult)code : PX_ERR_INTERNAL, "%s", e);
    }
    if (rtype != (type | HV_REPLY)) {
        free(*p);
        *p = NULL;
        return fail(PX_ERR_IO, "the hypervisor answered request type %u with type %u", type, rtype);
    }
    return PX_OK;
}

static PxResult call(PxClient *c, HvMsg *m, unsigned char **p, uint32_t *n, char **diags)
{
    return call_as(c, m, NULL, p, n, diags);
}

/* After a reply is read: PX_OK, or a malformed-reply error (freeing p). */
static PxResult reply_done(HvRd *rd, unsigned char *p, const char *what)
{
    free(p);
    return rd->bad ? fail(PX_ERR_IO, "the hypervisor's %s reply is malformed", what) : PX_OK;
}

/* A request whose reply is one number: a u32 (wide 0) or u64 (wide 1). */
static PxResult call_number(PxClient *c, HvMsg *m, int wide, uint64_t *out, const char *what)
{
    unsigned char *p;
    uint32_t n;
    PxResult r = call(c, m, &p, &n, NULL);
    if (r) return r;
    HvRd rd = {.p = p, .n = n};
    *out = wide ? hv_get_u64(&rd) : hv_get_u32(&rd);
    return reply_done(&rd, p, what);
}

/* ---- modules ------------------------------------------------------------------------------ */

static char *rd_str(HvRd *rd) { return hv_get_strdup(rd, HV_MAX_NAME); }

/* The kernel description of COMPILE's reply (docs/PROTOCOL.md) into m. */
static void read_kernel(HvRd *rd, PxClientModule *m)
{
    m->name = rd_str(rd);
    m->cls = rd_str(rd);
    uint32_t np = hv_get_u32(rd);
    if (np > HV_MAX_PARAMS || !(m->p = calloc(np + 1, sizeof *m->p))) rd->bad = 1;
    for (uint32_t i = 0; !rd->bad && i < np; i++, m->np++) {
        PxParamInfo *q = &m->p[i];
        q->name = rd_str(rd);
        q->is_buffer = (int)hv_get_u32(rd);
        q->dtype = (PxDtype)hv_get_u32(rd);
        q->rank = (int)hv_get_u32(rd);
        if (q->rank < 0 || q->rank > 4 || (uint32_t)q->dtype > PX_F16) rd->bad = 1;
        for (int d = 0; !rd->bad && d < q->rank; d++) q->dims[d] = rd_str(rd);
        q->read = (int)hv_get_u32(rd);
        q->written = (int)hv_get_u32(rd);
        q->flexible = (int)hv_get_u32(rd);
    }
    uint32_t ns = rd->bad ? 0 : hv_get_u32(rd);
    if (ns > HV_MAX_PARAMS || !(m->sizes = calloc(ns + 1, sizeof *m->sizes))) rd->bad = 1;
    for (uint32_t i = 0; !rd->bad && i < ns; i++, m->ns++) m->sizes[i] = rd_str(rd);
    /* the stage names follow: this API does not describe stages */
}

static void module_free_local(PxClientModule *m)
{
    for (int i = 0; m->p && i < m->np; i++) {
        free((char *)m->p[i].name);
        for (int d = 0; d < 4; d++) free((char *)m->p[i].dims[d]);
    }
    for (int i = 0; m->sizes && i < m->ns; i++) free(m->sizes[i]);
    free(m->p);
    free(m->sizes);
    free(m->name);
    free(m->cls);
    free(m);
}

PxResult px_client_compile(PxClient *c, const char *src, size_t len, const char *file, const char *kernel,
                           PxClientModule **out, char **diags)
{
    if (diags) *diags = NULL;
    if (out) *out = NULL;
    if (!c || !out || (!src && len)) return fail(PX_ERR_INVALID, "px_client_compile: bad arguments");
    if (len > HV_MAX_SOURCE) return fail(PX_ERR_LIMIT, "the source is %zu bytes; the hypervisor takes at most %u", len, HV_MAX_SOURCE);
    if ((file && strlen(file) > HV_MAX_NAME) || (kernel && strlen(kernel) > HV_MAX_NAME))
        return fail(PX_ERR_INVALID, "a file or kernel name is longer than %d bytes", HV_MAX_NAME);
    HvMsg m = {0};
    hv_msg_begin(&m, HV_COMPILE, 0);
    hv_put_str(&m, file ? file : "<string>");
    hv_put_str(&m, kernel);
    hv_put_bytes(&m, src, len);
    unsigned char *p;
    uint32_t n;
    PxResult r = call(c, &m, &p, &n, diags);
    if (r) return r;
    HvRd rd = {.p = p, .n = n};
    PxClientModule *cm = calloc(1, sizeof *cm);
    if (!cm) {
        free(p);
        return fail(PX_ERR_OUT_OF_MEMORY, "out of memory");
    }
    cm->c = c;
    cm->id = hv_get_u32(&rd);
    char *warn = hv_get_strdup(&rd, HV_MAX_TEXT);
    if (diags && warn && warn[0]) *diags = warn;
    else free(warn);
    read_kernel(&rd, cm);
    if ((r = reply_done(&rd, p, "COMPILE"))) {
        module_free_local(cm);
        return r;
    }
    *out = cm;
    return PX_OK;
}

void px_client_module_free(PxClientModule *m)
{
    if (!m) return;
    HvMsg q = {0};
    hv_msg_begin(&q, HV_MOD_FREE, 0);
    hv_put_u32(&q, m->id);
    unsigned char *p;
    uint32_t n;
    if (!call(m->c, &q, &p, &n, NULL)) free(p);
    module_free_local(m);
}

const char *px_client_kernel_name(const PxClientModule *m) { return m->name; }
const char *px_client_kernel_class(const PxClientModule *m) { return m->cls; }
int px_client_kernel_param_count(const PxClientModule *m) { return m->np; }
void px_client_kernel_param(const PxClientModule *m, int i, PxParamInfo *info) { *info = m->p[i]; }
int px_client_kernel_size_count(const PxClientModule *m) { return m->ns; }
const char *px_client_kernel_size_name(const PxClientModule *m, int i) { return i >= 0 && i < m->ns ? m->sizes[i] : NULL; }

/* ---- buffers ----------------------------------------------------------------------------- */

static HvMsg with_id(uint16_t type, uint32_t id)
{
    HvMsg m = {0};
    hv_msg_begin(&m, type, 0);
    hv_put_u32(&m, id);
    return m;
}

/* A request with nothing in its reply. */
static PxResult call_empty(PxClient *c, HvMsg *m)
{
    unsigned char *p;
    uint32_t n;
    PxResult r = call(c, m, &p, &n, NULL);
    free(p);
    return r;
}

PxResult px_client_buffer_create(PxClient *c, PxDtype dtype, int rank, const int64_t *shape, uint32_t *buffer)
{
    if (!c || !buffer || rank < 0 || rank > 4 || (rank && !shape) || (uint32_t)dtype > PX_F16)
        return fail(PX_ERR_INVALID, "px_client_buffer_create: bad arguments");
    HvMsg m = {0};
    hv_msg_begin(&m, HV_BUF_CREATE, 0);
    hv_put_u32(&m, (uint32_t)dtype);
    hv_put_u32(&m, (uint32_t)rank);
    for (int i = 0; i < rank; i++) hv_put_u64(&m, (uint64_t)shape[i]);
    uint64_t id = 0;
    PxResult r = call_number(c, &m, 0, &id, "BUF_CREATE");
    *buffer = (uint32_t)id;
    return r;
}

PxResult px_client_buffer_free(PxClient *c, uint32_t buffer)
{
    if (!c) return PX_ERR_INVALID;
    HvMsg m = with_id(HV_BUF_FREE, buffer);
    return call_empty(c, &m);
}

/* BUF_INFO's and BUF_READ's replies start with the buffer's description. */
static void read_shape(HvRd *rd, PxDtype *dtype, int *rank, int64_t *shape)
{
    uint32_t dt;
    hv_get_shape(rd, &dt, rank, shape);
    *dtype = (PxDtype)dt;
}

PxResult px_client_buffer_info(PxClient *c, uint32_t buffer, PxDtype *dtype, int *rank, int64_t *shape)
{
    if (!c || !dtype || !rank || !shape) return fail(PX_ERR_INVALID, "px_client_buffer_info: bad arguments");
    HvMsg m = with_id(HV_BUF_INFO, buffer);
    unsigned char *p;
    uint32_t n;
    PxResult r = call(c, &m, &p, &n, NULL);
    if (r) return r;
    HvRd rd = {.p = p, .n = n};
    read_shape(&rd, dtype, rank, shape);
    return reply_done(&rd, p, "BUF_INFO");
}

/* The shared-memory path (docs/PROTOCOL.md): PX_ERR_UNSUPPORTED when no
 * memfd could be made (the caller then uses the stream). */
static PxResult shm_copy(PxClient *c, uint16_t type, uint32_t id, void *data, size_t bytes)
{
    Shm shm = {type, id, data, bytes};
    unsigned char *p;
    uint32_t n;
    PxResult r = call_as(c, NULL, &shm, &p, &n, NULL);
    free(p);
    return r;
}

PxResult px_client_buffer_write(PxClient *c, uint32_t buffer, const void *data, size_t bytes)
{
    if (!c || (!data && bytes)) return fail(PX_ERR_INVALID, "px_client_buffer_write: bad arguments");
    if (bytes >= PC_SHM_MIN) {
        PxResult r = shm_copy(c, HV_BUF_WRITE_SHM, buffer, (void *)data, bytes);
        if (r != PX_ERR_UNSUPPORTED) return r;
    }
    HvMsg m = with_id(HV_BUF_WRITE, buffer);
    void *room = hv_put_space(&m, bytes); /* NULL past a frame: call() refuses it */
    if (room && bytes) memcpy(room, data, bytes);
    return call_empty(c, &m);
}

PxResult px_client_buffer_read(PxClient *c, uint32_t buffer, void *data, size_t bytes)
{
    if (!c || (!data && bytes)) return fail(PX_ERR_INVALID, "px_client_buffer_read: bad arguments");
    if (bytes >= PC_SHM_MIN) {
        PxResult r = shm_copy(c, HV_BUF_READ_SHM, buffer, data, bytes);
        if (r != PX_ERR_UNSUPPORTED) return r;
    }
    HvMsg m = with_id(HV_BUF_READ, buffer);
    unsigned char *p;
    uint32_t n;
    PxResult r = call(c, &m, &p, &n, NULL);
    if (r) return r;
    HvRd rd = {.p = p, .n = n};
    PxDtype dtype;
    int rank;
    int64_t shape[4];
    read_shape(&rd, &dtype, &rank, shape);
    size_t len;
    const void *d = hv_get_bytes(&rd, HV_MAX_FRAME, &len);
    if (!rd.bad && len != bytes) {
        free(p);
        return fail(PX_ERR_INVALID, "px_client_buffer_read: %zu bytes asked, buffer %u holds %zu", bytes, (unsigned)buffer, len);
    }
    if (!rd.bad && bytes) memcpy(data, d, bytes);
    return reply_done(&rd, p, "BUF_READ");
}

/* ---- launches ------------------------------------------------------------------------------ */

PxResult px_client_submit(PxClient *c, const PxClientModule *m, const PxArg *args, int nargs, uint64_t *ticket)
{
    if (!c || !m || !ticket || nargs < 0 || (nargs && !args)) return fail(PX_ERR_INVALID, "px_client_submit: bad arguments");
    if (nargs > HV_MAX_ARGS) return fail(PX_ERR_LIMIT, "%d arguments; the hypervisor takes at most %d", nargs, HV_MAX_ARGS);
    HvMsg q = with_id(HV_LAUNCH, m->id);
    hv_put_str(&q, m->name);
    hv_put_u32(&q, (uint32_t)nargs);
    for (int i = 0; i < nargs; i++) {
        if (!args[i].name || strlen(args[i].name) > HV_MAX_NAME) {
            hv_msg_free(&q);
            return fail(PX_ERR_INVALID, "argument %d has no name or one longer than %d bytes", i, HV_MAX_NAME);
        }
        hv_put_str(&q, args[i].name);
        hv_put_u32(&q, (uint32_t)args[i].kind);
        hv_put_u32(&q, args[i].buffer);
        hv_put_f64(&q, args[i].f);
        hv_put_u64(&q, (uint64_t)args[i].i);
    }
    return call_number(c, &q, 1, ticket, "LAUNCH");
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

PxResult px_client_wait(PxClient *c, uint64_t ticket, int timeout_ms, PxTicketResult *res)
{
    if (!c) return PX_ERR_INVALID;
    double end = now_ms() + timeout_ms;
    for (;;) {
        double left = end - now_ms();
        int step = timeout_ms < 0 || left > PC_WAIT_STEP_MS ? PC_WAIT_STEP_MS : left > 0 ? (int)left : 0;
        HvMsg q = {0};
        hv_msg_begin(&q, HV_WAIT, 0);
        hv_put_u64(&q, ticket);
        hv_put_u32(&q, (uint32_t)step);
        unsigned char *p;
        uint32_t n;
        PxResult r = call(c, &q, &p, &n, NULL);
        if (r == PX_ERR_NOT_READY) {
            if (timeout_ms >= 0 && now_ms() >= end) return r;
            continue;
        }
        if (r) return r;
        HvRd rd = {.p = p, .n = n};
        PxTicketResult t;
        memset(&t, 0, sizeof t);
        t.result = (PxResult)hv_get_u32(&rd);
        hv_get_str(&rd, t.error, sizeof t.error);
        t.gpu_ns = hv_get_f64(&rd);
        t.latency_ns = hv_get_f64(&rd);
        t.wait_ns = hv_get_f64(&rd);
        t.slices = (int)hv_get_u32(&rd);
        uint32_t no = hv_get_u32(&rd);
        if (no > PX_MAX_OUTPUTS) rd.bad = 1;
        for (uint32_t i = 0; !rd.bad && i < no; i++) {
            hv_get_str(&rd, t.outputs[i].param, sizeof t.outputs[i].param);
            t.outputs[i].buffer = hv_get_u32(&rd);
        }
        t.noutputs = rd.bad ? 0 : (int)no;
        if ((r = reply_done(&rd, p, "WAIT"))) return r;
        if (res) *res = t;
        return PX_OK;
    }
}

PxResult px_client_stats(PxClient *c, PxVmStats *out)
{
    if (!c || !out) return fail(PX_ERR_INVALID, "px_client_stats: bad arguments");
    HvMsg q = {0};
    hv_msg_begin(&q, HV_STATS, 0);
    unsigned char *p;
    uint32_t n;
    PxResult r = call(c, &q, &p, &n, NULL);
    if (r) return r;
    HvRd rd = {.p = p, .n = n};
    memset(out, 0, sizeof *out);
    out->id = hv_get_u32(&rd);
    hv_get_str(&rd, out->name, sizeof out->name);
    hv_get_str(&rd, out->profile, sizeof out->profile);
    out->device = (int)hv_get_u32(&rd);
    out->mem_quota_bytes = hv_get_u64(&rd);
    out->mem_used_bytes = hv_get_u64(&rd);
    out->share = hv_get_f64(&rd);
    out->gpu_ns = hv_get_u64(&rd);
    out->launches_done = hv_get_u64(&rd);
    out->launches_failed = hv_get_u64(&rd);
    out->queued = (int)hv_get_u32(&rd);
    out->latency_p50_us = hv_get_f64(&rd);
    out->latency_p99_us = hv_get_f64(&rd);
    out->slices = hv_get_u64(&rd);
    return reply_done(&rd, p, "STATS");
}
