/* server.c — pxhvd's service layer: a listening Unix socket per VM
 * (DIR/vm<ID>.sock: the VM id comes from the socket) and DIR/control.sock,
 * one thread per connection over the scheduler.
 *
 * Who owns what, and which lock guards it
 * ---------------------------------------
 *   HvServer.mu   the connection list, the listener table, nconns.
 *   HvConn.mu     the connection's session lists (bufs, mods, tickets):
 *                 written by its own thread, read by the stopping thread.
 *   A connection's thread alone reads and writes its fd; the run loop only
 *   shuts it down (shutdown(2)) to end it, and joins and frees it after.
 *   The run loop alone opens and closes listening sockets; control
 *   requests mark a listener wanted or dead and wake it.
 *
 * Bounds: max_conns connections, max_conns_per_vm of one socket; one frame at a time per connection, at
 * most HV_MAX_FRAME bytes, and payloads being received at once are held
 * under max_inflight; HV_MAX_OBJS objects per session; every read of a
 * started frame waits at most frame_timeout_ms, every write at most
 * HV_WRITE_MS (then the connection is closed).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include "hv/hv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "pxsched.h"

#define HV_WRITE_MS 10000
#define HV_IDLE_POLL_MS 250 /* how often an idle connection looks at the stop flag */
#define HV_MAX_LISTENERS 1024

typedef struct HvConn {
    HvServer *sv;
    int fd;
    uint32_t vm;               /* 0: control.sock */
    pthread_t th;
    int finished;              /* its thread is done (HvServer.mu) */
    struct HvConn *next;       /* HvServer.conns (HvServer.mu) */
    int hello;                 /* a HELLO opened the session */
    atomic_int gone;           /* its VM was removed (vm rm): it serves nothing more,
                                  and its session died with the VM */
    pthread_mutex_t mu;        /* the session lists below */
    uint32_t *bufs, *mods;
    uint64_t *tickets;
    int nbufs, nmods, ntickets, cap_bufs, cap_mods, cap_tickets;
    HvReq q;                   /* the request being served (decoded in place) */
    /* the last memfd mapped (BUF_*_SHM), kept for the next request with the
     * same file: a client reusing its shared memory pays no mmap. One per
     * connection, at most the size of a buffer of its VM; unmapped when the
     * connection ends or another file comes. Its thread's alone. */
    void *shm_map;
    size_t shm_len;
    dev_t shm_dev;
    ino_t shm_ino;
    HvIn in;
} HvConn;

typedef struct HvListener {
    uint32_t vm;               /* 0: control */
    int fd;                    /* -1: not open yet */
    int dead;                  /* to be closed by the run loop */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} HvListener;

struct HvServer {
    HvServerConfig cfg;
    char dir[PATH_MAX];
    PxSched *s;
    pthread_mutex_t mu;
    HvConn *conns;
    int nconns;
    HvListener lis[HV_MAX_LISTENERS];
    int nlis;
    int wake[2];               /* self-pipe: stop, listener changes */
    atomic_int stop;           /* hv_server_stop: lock-free, so signal-safe */
    atomic_int stopping;       /* no new launches */
    atomic_ullong inflight;    /* payload bytes held by connections */
};

static void logf_(HvServer *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(HvServer *sv, const char *fmt, ...)
{
    if (!sv->cfg.log) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sv->cfg.log(sv->cfg.log_user, buf);
}

static void wake(HvServer *sv)
{
    char c = 1;
    ssize_t n = write(sv->wake[1], &c, 1);
    (void)n; /* a full pipe already wakes the loop */
}

/* ---- the socket directory ------------------------------------------------------- */

static int open_dir(HvServer *sv, char *err, size_t errsz)
{
    struct stat st;
    if (mkdir(sv->dir, 0700) && errno != EEXIST) {
        snprintf(err, errsz, "cannot create %s: %s", sv->dir, strerror(errno));
        return -1;
    }
    if (lstat(sv->dir, &st)) {
        snprintf(err, errsz, "%s: %s", sv->dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errsz, "%s is not a directory", sv->dir);
        return -1;
    }
    if (st.st_uid != getuid() || (st.st_mode & 077)) {
        snprintf(err, errsz, "%s is not private to this user (owner %u, mode %03o; it must be 0700 and ours)",
                 sv->dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
        return -1;
    }
    return 0;
}

static int sock_path(HvServer *sv, uint32_t vm, char *out, size_t n)
{
    int k = vm ? snprintf(out, n, "%s/vm%u.sock", sv->dir, vm) : snprintf(out, n, "%s/control.sock", sv->dir);
    return k < 0 || (size_t)k >= n ? -1 : 0;
}

/* A listening socket at path, mode 0600. A socket file left by a daemon
 * that died is replaced; one that answers belongs to a live daemon. */
static int listen_at(const char *path, char *err, size_t errsz)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errsz, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        close(fd);
        snprintf(err, errsz, "%s: another pxhvd is serving it", path);
        return -1;
    }
    close(fd);
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    /* the directory is 0700, so no other user reaches it between bind and chmod */
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || chmod(path, 0600) || listen(fd, 128)) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* Under sv->mu: a listener for vm is wanted (opened by the run loop). */
static int add_listener(HvServer *sv, uint32_t vm)
{
    if (sv->nlis == HV_MAX_LISTENERS) return -1;
    HvListener *l = &sv->lis[sv->nlis++];
    memset(l, 0, sizeof *l);
    l->vm = vm;
    l->fd = -1;
    if (sock_path(sv, vm, l->path, sizeof l->path)) {
        sv->nlis--;
        return -1;
    }
    return 0;
}

/* ---- sessions ---------------------------------------------------------------------- */

static int list_add(pthread_mutex_t *mu, void **v, int *n, int *cap, size_t es, const void *x, int total)
{
    pthread_mutex_lock(mu);
    int r = 0;
    if (total >= HV_MAX_OBJS) r = -1;
    else if (*n == *cap) {
        int c = *cap ? *cap * 2 : 16;
        void *q = realloc(*v, (size_t)c * es);
        if (!q) r = -1;
        else *v = q, *cap = c;
    }
    if (!r) memcpy((char *)*v + (size_t)(*n)++ * es, x, es);
    pthread_mutex_unlock(mu);
    return r;
}

static int list_del(pthread_mutex_t *mu, void *v, int *n, size_t es, const void *x)
{
    pthread_mutex_lock(mu);
    int found = 0;
    for (int i = 0; i < *n && !found; i++)
        if (!memcmp((char *)v + (size_t)i * es, x, es)) {
            memmove((char *)v + (size_t)i * es, (char *)v + (size_t)(i + 1) * es, (size_t)(*n - i - 1) * es);
            (*n)--;
            found = 1;
        }
    pthread_mutex_unlock(mu);
    return found;
}

static int total_objs(HvConn *c) { return c->nbufs + c->nmods + c->ntickets; }
static int add_buf(HvConn *c, uint32_t id)
{
    return list_add(&c->mu, (void **)&c->bufs, &c->nbufs, &c->cap_bufs, sizeof id, &id, total_objs(c));
}
static int add_mod(HvConn *c, uint32_t id)
{
    return list_add(&c->mu, (void **)&c->mods, &c->nmods, &c->cap_mods, sizeof id, &id, total_objs(c));
}
static int add_ticket(HvConn *c, uint64_t t)
{
    return list_add(&c->mu, (void **)&c->tickets, &c->ntickets, &c->cap_tickets, sizeof t, &t, total_objs(c));
}

/* Frees everything the session made in its VM: its launches are cancelled
 * and reaped (each ends at its next slice boundary at the latest), then
 * its buffers and modules go. Nothing else of the VM changes. */
static void session_reset(HvConn *c)
{
    PxSched *s = c->sv->s;
    pthread_mutex_lock(&c->mu);
    uint64_t *t = c->tickets;
    int nt = c->ntickets;
    c->tickets = NULL, c->ntickets = c->cap_tickets = 0;
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < nt; i++) {
        px_vm_cancel(s, c->vm, t[i]);
        PxTicketResult res;
        PxResult r;
        while ((r = px_vm_wait(s, c->vm, t[i], 1000, &res)) == PX_ERR_NOT_READY) {}
        for (int o = 0; r == PX_OK && o < res.noutputs; o++) px_vm_buffer_destroy(s, c->vm, res.outputs[o].buffer);
    }
    free(t);
    pthread_mutex_lock(&c->mu);
    uint32_t *b = c->bufs, *m = c->mods;
    int nb = c->nbufs, nm = c->nmods;
    c->bufs = c->mods = NULL;
    c->nbufs = c->nmods = c->cap_bufs = c->cap_mods = 0;
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < nb; i++) px_vm_buffer_destroy(s, c->vm, b[i]);
    for (int i = 0; i < nm; i++) px_vm_module_destroy(s, c->vm, m[i]);
    free(b);
    free(m);
}

/* ---- replies ------------------------------------------------------------------------ */

static int send_error(HvConn *c, uint32_t req, uint32_t code, const char *diags, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int send_error(HvConn *c, uint32_t req, uint32_t code, const char *diags, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    HvMsg m = {0};
    hv_msg_begin(&m, HV_ERROR, req);
    hv_put_u32(&m, code);
    hv_put_str(&m, msg);
    hv_put_str(&m, diags && strlen(diags) < HV_MAX_TEXT ? diags : "");
    int r = hv_send(c->fd, &m, HV_WRITE_MS);
    hv_msg_free(&m);
    return r;
}

/* The scheduler's failure as an error reply. */
static int sched_error(HvConn *c, uint32_t req, PxResult r, const char *diags)
{
    const char *e = px_sched_last_error();
    if (r == PX_ERR_NOT_FOUND && (!e || !*e)) e = "not found";
    return send_error(c, req, r, diags, "%s", e && *e ? e : hv_result_name(r));
}

/* ---- the VM requests ---------------------------------------------------------------- */

static void put_kernel(HvMsg *m, const PxKernel *k)
{
    hv_put_str(m, px_kernel_name(k));
    hv_put_str(m, px_kernel_class(k));
    int np = px_kernel_param_count(k);
    if (np > HV_MAX_PARAMS) np = HV_MAX_PARAMS;
    hv_put_u32(m, (uint32_t)np);
    for (int i = 0; i < np; i++) {
        PxParamInfo p;
        px_kernel_param(k, i, &p);
        hv_put_str(m, p.name);
        hv_put_u32(m, (uint32_t)p.is_buffer);
        hv_put_u32(m, (uint32_t)p.dtype);
        int rank = p.is_buffer && p.rank >= 0 && p.rank <= 4 ? p.rank : 0;
        hv_put_u32(m, (uint32_t)rank);
        for (int d = 0; d < rank; d++) hv_put_str(m, p.dims[d]);
        hv_put_u32(m, (uint32_t)p.read);
        hv_put_u32(m, (uint32_t)p.written);
        hv_put_u32(m, (uint32_t)p.flexible);
    }
    int ns = px_kernel_size_count(k);
    hv_put_u32(m, (uint32_t)ns);
    for (int i = 0; i < ns; i++) hv_put_str(m, px_kernel_size_name(k, i));
    int nst = px_kernel_stage_count(k);
    hv_put_u32(m, (uint32_t)nst);
    for (int i = 0; i < nst; i++) hv_put_str(m, px_kernel_stage_name(k, i));
}

static int do_compile(HvConn *c, uint32_t req, const HvReq *q)
{
    const char *file = q->file, *kernel = q->kernel, *src = q->source;
    size_t len = q->source_len;
    PxSched *s = c->sv->s;
    uint32_t mod;
    char *diags = NULL;
    PxResult r = px_vm_compile(s, c->vm, src ? src : "", len, file[0] ? file : "<source>", &mod, &diags);
    if (r) {
        int e = sched_error(c, req, r, diags);
        free(diags);
        return e;
    }
    const PxKernel *k;
    if (add_mod(c, mod)) {
        px_vm_module_destroy(s, c->vm, mod);
        free(diags);
        return send_error(c, req, PX_ERR_BUSY, NULL, "VM %u: this session holds %d objects (at most)", c->vm, HV_MAX_OBJS);
    }
    if ((r = px_vm_module_kernel(s, c->vm, mod, kernel[0] ? kernel : NULL, &k))) {
        int e = sched_error(c, req, r, diags);
        free(diags);
        return e;
    }
    HvMsg m = {0};
    hv_msg_begin(&m, HV_COMPILE | HV_REPLY, req);
    hv_put_u32(&m, mod);
    hv_put_str(&m, diags && strlen(diags) < HV_MAX_TEXT ? diags : "");
    put_kernel(&m, k);
    free(diags);
    int e = hv_send(c->fd, &m, HV_WRITE_MS);
    hv_msg_free(&m);
    return e;
}

static int send_empty(HvConn *c, uint16_t type, uint32_t req)
{
    HvMsg m = {0};
    hv_msg_begin(&m, type | HV_REPLY, req);
    int e = hv_send(c->fd, &m, HV_WRITE_MS);
    hv_msg_free(&m);
    return e;
}

static int do_buffer(HvConn *c, uint16_t type, uint32_t req, const HvReq *q)
{
    PxSched *s = c->sv->s;
    PxResult r;
    if (type == HV_BUF_CREATE) {
        uint32_t id;
        if ((r = px_vm_buffer_create(s, c->vm, (PxDtype)q->dtype, (int)q->rank, q->shape, &id))) return sched_error(c, req, r, NULL);
        if (add_buf(c, id)) {
            px_vm_buffer_destroy(s, c->vm, id);
            return send_error(c, req, PX_ERR_BUSY, NULL, "VM %u: this session holds %d objects (at most)", c->vm, HV_MAX_OBJS);
        }
        HvMsg m = {0};
        hv_msg_begin(&m, type | HV_REPLY, req);
        hv_put_u32(&m, id);
        int e = hv_send(c->fd, &m, HV_WRITE_MS);
        hv_msg_free(&m);
        return e;
    }
    uint32_t id = q->id;
    if (type == HV_BUF_WRITE_SHM || type == HV_BUF_READ_SHM) {
        /* the shared-memory path: the bytes move between the device and a
         * memfd the client mapped too, never through the stream */
        int fd = hv_take_fd(&c->in);
        if (fd < 0) return send_error(c, req, PX_ERR_INVALID, NULL, "%s: no memfd came with the frame",
                                      type == HV_BUF_WRITE_SHM ? "BUF_WRITE_SHM" : "BUF_READ_SHM");
        PxDtype dt;
        int rank;
        int64_t shape[4];
        if ((r = px_vm_buffer_info(s, c->vm, id, &dt, &rank, shape))) {
            close(fd);
            return sched_error(c, req, r, NULL);
        }
        uint64_t bytes = px_dtype_size(dt);
        for (int i = 0; i < rank; i++) bytes *= (uint64_t)shape[i];
        if (bytes != q->bytes) {
            close(fd);
            return send_error(c, req, PX_ERR_SHAPE, NULL, "buffer %u holds %llu bytes, %llu given", id,
                              (unsigned long long)bytes, (unsigned long long)q->bytes);
        }
        char why[256];
        struct stat st;
        void *map = NULL;
        if (fstat(fd, &st) == 0 && c->shm_map && st.st_dev == c->shm_dev && st.st_ino == c->shm_ino && c->shm_len == bytes) {
            /* the same file again: its seals are permanent, so only its
             * size could have changed, and it cannot shrink (sealed) */
            map = c->shm_map;
        } else {
            map = hv_shm_map(fd, bytes, 1, why, sizeof why);
            if (map) {
                if (c->shm_map) munmap(c->shm_map, c->shm_len ? c->shm_len : 1);
                c->shm_map = map, c->shm_len = bytes, c->shm_dev = st.st_dev, c->shm_ino = st.st_ino;
            }
        }
        close(fd); /* the mapping keeps the memory */
        if (!map) return send_error(c, req, PX_ERR_INVALID, NULL, "%s", why);
        r = type == HV_BUF_WRITE_SHM ? px_vm_buffer_write(s, c->vm, id, map, bytes) : px_vm_buffer_read(s, c->vm, id, map, bytes);
        if (r) return sched_error(c, req, r, NULL);
        return send_empty(c, type, req);
    }
    if (type == HV_BUF_WRITE) {
        size_t n = q->data_len;
        const void *p = q->data;
        PxDtype dt;
        int rank;
        int64_t shape[4];
        if ((r = px_vm_buffer_info(s, c->vm, id, &dt, &rank, shape))) return sched_error(c, req, r, NULL);
        uint64_t bytes = px_dtype_size(dt);
        for (int i = 0; i < rank; i++) bytes *= (uint64_t)shape[i];
        if (bytes != n)
            return send_error(c, req, PX_ERR_SHAPE, NULL, "BUF_WRITE: buffer %u holds %llu bytes, %zu sent", id,
                              (unsigned long long)bytes, n);
        if ((r = px_vm_buffer_write(s, c->vm, id, p, n))) return sched_error(c, req, r, NULL);
        return send_empty(c, type, req);
    }
    if (type == HV_BUF_FREE || type == HV_MOD_FREE) {
        r = type == HV_BUF_FREE ? px_vm_buffer_destroy(s, c->vm, id) : px_vm_module_destroy(s, c->vm, id);
        if (r) return sched_error(c, req, r, NULL);
        if (type == HV_BUF_FREE) list_del(&c->mu, c->bufs, &c->nbufs, sizeof id, &id);
        else list_del(&c->mu, c->mods, &c->nmods, sizeof id, &id);
        return send_empty(c, type, req);
    }
    /* HV_BUF_READ, HV_BUF_INFO */
    PxDtype dt;
    int rank;
    int64_t shape[4];
    if ((r = px_vm_buffer_info(s, c->vm, id, &dt, &rank, shape))) return sched_error(c, req, r, NULL);
    uint64_t bytes = px_dtype_size(dt);
    for (int i = 0; i < rank; i++) bytes *= (uint64_t)shape[i];
    if (type == HV_BUF_INFO) {
        HvMsg m = {0};
        hv_msg_begin(&m, type | HV_REPLY, req);
        hv_put_u32(&m, (uint32_t)dt);
        hv_put_u32(&m, (uint32_t)rank);
        for (int i = 0; i < rank; i++) hv_put_u64(&m, (uint64_t)shape[i]);
        int e = hv_send(c->fd, &m, HV_WRITE_MS);
        hv_msg_free(&m);
        return e;
    }
    if (bytes > HV_MAX_FRAME - 4096)
        return send_error(c, req, PX_ERR_TOO_LARGE, NULL, "BUF_READ: buffer %u holds %llu bytes, more than one frame carries (%u)",
                          id, (unsigned long long)bytes, HV_MAX_FRAME - 4096);
    /* the device's bytes go straight into the reply */
    HvMsg m = {0};
    hv_msg_begin(&m, type | HV_REPLY, req);
    hv_put_u32(&m, (uint32_t)dt);
    hv_put_u32(&m, (uint32_t)rank);
    for (int i = 0; i < rank; i++) hv_put_u64(&m, (uint64_t)shape[i]);
    void *d = hv_put_space(&m, bytes);
    if (!d) {
        hv_msg_free(&m);
        return send_error(c, req, PX_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    }
    if ((r = px_vm_buffer_read(s, c->vm, id, d, bytes))) {
        hv_msg_free(&m);
        return sched_error(c, req, r, NULL);
    }
    int e = hv_send(c->fd, &m, HV_WRITE_MS);
    hv_msg_free(&m);
    return e;
}

static void put_result(HvConn *c, HvMsg *m, uint64_t t, const PxTicketResult *res);

static int do_launch(HvConn *c, uint32_t req, const HvReq *q)
{
    const char *kernel = q->kernel;
    uint32_t mod = q->id, n = q->nargs;
    PxArg args[HV_MAX_ARGS];
    for (uint32_t i = 0; i < n; i++)
        args[i] = (PxArg){.name = q->args[i].name, .kind = (PxArgKind)q->args[i].kind, .buffer = q->args[i].buffer,
                          .f = q->args[i].f, .i = q->args[i].i};
    if (atomic_load(&c->sv->stopping))
        return send_error(c, req, PX_ERR_CANCELLED, NULL, "pxhvd is shutting down: no new launches");
    if (total_objs(c) >= HV_MAX_OBJS)
        return send_error(c, req, PX_ERR_BUSY, NULL, "VM %u: this session holds %d objects (at most)", c->vm, HV_MAX_OBJS);
    uint64_t t;
    PxResult r = px_vm_submit(c->sv->s, c->vm, mod, kernel[0] ? kernel : NULL, args, (int)n, &t);
    if (r) return sched_error(c, req, r, NULL);
    if (add_ticket(c, t)) { /* not reached: room was checked above */
        px_vm_cancel(c->sv->s, c->vm, t);
        return send_error(c, req, PX_ERR_BUSY, NULL, "out of memory for the ticket");
    }
    HvMsg m = {0};
    hv_msg_begin(&m, q->type | HV_REPLY, req);
    hv_put_u64(&m, t);
    if (q->type == HV_RUN) {
        /* and its result, when it comes within the time-out */
        PxTicketResult res;
        r = px_vm_wait(c->sv->s, c->vm, t, (int)q->timeout_ms, &res);
        hv_put_u32(&m, r == PX_OK);
        if (r == PX_OK) put_result(c, &m, t, &res);
    }
    int e = hv_send(c->fd, &m, HV_WRITE_MS);
    hv_msg_free(&m);
    return e;
}

static int do_wait(HvConn *c, uint32_t req, const HvReq *q)
{
    uint64_t t = q->ticket;
    uint32_t ms = q->timeout_ms; /* at most 1000: the thread looks at the stop flag between waits */
    pthread_mutex_lock(&c->mu);
    int mine = 0;
    for (int i = 0; i < c->ntickets; i++) mine |= c->tickets[i] == t;
    pthread_mutex_unlock(&c->mu);
    if (!mine) return send_error(c, req, PX_ERR_NOT_FOUND, NULL, "this session has no ticket %llu", (unsigned long long)t);
    PxTicketResult res;
    PxResult r = px_vm_wait(c->sv->s, c->vm, t, (int)ms, &res);
    if (r == PX_ERR_NOT_READY) return send_error(c, req, r, NULL, "ticket %llu has not finished", (unsigned long long)t);
    if (r) return sched_error(c, req, r, NULL);
    HvMsg m = {0};
    hv_msg_begin(&m, HV_WAIT | HV_REPLY, req);
    put_result(c, &m, t, &res);
    int e = hv_send(c->fd, &m, HV_WRITE_MS);
    hv_msg_free(&m);
    return e;
}

/* A waited-for ticket leaves the session and its outputs join it (room:
 * the ticket's slot went); WAIT's reply fields into m. */
static void put_result(HvConn *c, HvMsg *m, uint64_t t, const PxTicketResult *res)
{
    list_del(&c->mu, c->tickets, &c->ntickets, sizeof t, &t);
    for (int o = 0; o < res->noutputs; o++)
        if (add_buf(c, res->outputs[o].buffer)) px_vm_buffer_destroy(c->sv->s, c->vm, res->outputs[o].buffer);
    hv_put_u32(m, (uint32_t)res->result);
    hv_put_str(m, res->error);
    hv_put_f64(m, res->gpu_ns);
    hv_put_f64(m, res->latency_ns);
    hv_put_f64(m, res->wait_ns);
    hv_put_u32(m, (uint32_t)res->slices);
    hv_put_u32(m, (uint32_t)res->noutputs);
    for (int o = 0; o < res->noutputs; o++) {
        hv_put_str(m, res->outputs[o].param);
        hv_put_u32(m, res->outputs[o].buffer);
    }
}

static void put_vm_stats(HvMsg *m, const PxVmStats *v)
{
    hv_put_u32(m, v->id);
    hv_put_str(m, v->name);
    hv_put_str(m, v->profile);
    hv_put_u32(m, (uint32_t)v->device);
    hv_put_u64(m, v->mem_quota_bytes);
    hv_put_u64(m, v->mem_used_bytes);
    hv_put_f64(m, v->share);
    hv_put_u64(m, v->gpu_ns);
    hv_put_u64(m, v->launches_done);
    hv_put_u64(m, v->launches_failed);
    hv_put_u32(m, (uint32_t)v->queued);
    hv_put_f64(m, v->latency_p50_us);
    hv_put_f64(m, v->latency_p99_us);
    hv_put_u64(m, v->slices);
}

static int do_hello(HvConn *c, uint32_t req, const HvReq *q)
{
    uint64_t nonce = q->nonce;
    uint32_t lo = q->vmin, hi = q->vmax;
    if (lo > HV_VERSION || hi < HV_VERSION)
        return send_error(c, req, PX_ERR_UNSUPPORTED, NULL, "protocol versions %u..%u asked; this pxhvd speaks %u", lo, hi,
                          HV_VERSION);
    /* a new hello on a stream that outlives its guest process: whatever
     * the previous process left is freed */
    if (c->vm && !atomic_load(&c->gone)) session_reset(c);
    hv_in_close_fds(&c->in);
    c->hello = 1;
    char dev[256] = "";
    if (c->vm) {
        PxVmStats v;
        PxDeviceStats d;
        if (px_sched_vm_stats(c->sv->s, c->vm, &v) == PX_OK && px_sched_device_stats(c->sv->s, v.device, &d) == PX_OK)
            snprintf(dev, sizeof dev, "%s", d.name);
        else return send_error(c, req, PX_ERR_NOT_FOUND, NULL, "no VM %u at this pxhvd", c->vm);
    }
    HvMsg m = {0};
    hv_msg_begin(&m, HV_HELLO | HV_REPLY, req);
    hv_put_u64(&m, nonce);
    hv_put_u32(&m, HV_VERSION);
    hv_put_u32(&m, c->vm);
    hv_put_u32(&m, HV_MAX_FRAME);
    hv_put_str(&m, dev);
    int e = hv_send(c->fd, &m, HV_WRITE_MS);
    hv_msg_free(&m);
    return e;
}

/* ---- control requests ------------------------------------------------------------------ */

static int do_control(HvConn *c, uint16_t type, uint32_t req, const HvReq *q)
{
    HvServer *sv = c->sv;
    PxSched *s = sv->s;
    HvMsg m = {0};
    int e;
    if (type == HV_CTL_STATUS) {
        char *j = px_sched_status_json(s);
        if (!j) return send_error(c, req, PX_ERR_OUT_OF_MEMORY, NULL, "out of memory");
        hv_msg_begin(&m, type | HV_REPLY, req);
        hv_put_str(&m, j);
        free(j);
    } else if (type == HV_CTL_TOP) {
        uint32_t ids[1024];
        int n = px_sched_vm_ids(s, ids, 1024);
        if (n > 1024) n = 1024;
        hv_msg_begin(&m, type | HV_REPLY, req);
        int nd = px_sched_device_count(s);
        hv_put_u32(&m, (uint32_t)nd);
        for (int i = 0; i < nd; i++) {
            PxDeviceStats d = {0};
            px_sched_device_stats(s, i, &d);
            hv_put_u64(&m, d.busy_ns);
        }
        PxVmStats *v = calloc((size_t)(n ? n : 1), sizeof *v);
        int k = 0;
        for (int i = 0; v && i < n; i++)
            if (px_sched_vm_stats(s, ids[i], &v[k]) == PX_OK) k++;
        hv_put_u32(&m, (uint32_t)k);
        for (int i = 0; i < k; i++) put_vm_stats(&m, &v[i]);
        free(v);
    } else {
        uint32_t id = q->id, dev = q->device;
        const char *spec = q->spec;
        PxResult r = PX_OK;
        char err[256];
        if (type == HV_CTL_VM_MIGRATE) {
            /* the VM's clients see no error: its calls wait while it moves */
            PxMigrateStats ms;
            if ((r = px_vm_migrate(s, id, dev > INT32_MAX ? -1 : (int)dev, &ms))) return sched_error(c, req, r, NULL);
            hv_msg_begin(&m, type | HV_REPLY, req);
            hv_put_f64(&m, ms.downtime_ns);
            hv_put_f64(&m, ms.total_ns);
            hv_put_u64(&m, ms.bytes);
            hv_put_u32(&m, (uint32_t)ms.launches_moved);
            e = hv_send(c->fd, &m, HV_WRITE_MS);
            hv_msg_free(&m);
            return e;
        } else if (type == HV_CTL_VM_ADD) {
            /* connections of an earlier VM of this id must be gone first:
             * they must never reach the new tenant's objects */
            pthread_mutex_lock(&sv->mu);
            int old = 0;
            for (HvConn *o = sv->conns; o; o = o->next) old |= o->vm == id && !o->finished;
            pthread_mutex_unlock(&sv->mu);
            if (old) return send_error(c, req, PX_ERR_BUSY, NULL, "VM %u: connections of its previous incarnation are still closing; try again", id);
            PxVmConfig vc = {.id = id, .device = -1};
            if ((r = px_vm_spec_parse(spec, &vc, err, sizeof err))) return send_error(c, req, r, NULL, "%s", err);
            if (!vc.mem_quota || vc.share <= 0) return send_error(c, req, PX_ERR_INVALID, NULL, "VM %u: spec %s sets no quota or no share", id, spec);
            if ((r = px_sched_vm_create(s, &vc))) return sched_error(c, req, r, NULL);
            pthread_mutex_lock(&sv->mu);
            int bad = add_listener(sv, id);
            pthread_mutex_unlock(&sv->mu);
            if (bad) {
                px_sched_vm_destroy(s, id);
                return send_error(c, req, PX_ERR_BUSY, NULL, "too many VM sockets");
            }
            wake(sv);
        } else if (type == HV_CTL_VM_SET) {
            PxVmStats v;
            if ((r = px_sched_vm_stats(s, id, &v))) return send_error(c, req, r, NULL, "no VM %u", id);
            PxVmConfig vc = {.id = id, .device = v.device, .mem_quota = v.mem_quota_bytes, .share = v.share};
            snprintf(vc.name, sizeof vc.name, "%s", v.name);
            snprintf(vc.profile, sizeof vc.profile, "%s", v.profile);
            if ((r = px_vm_spec_parse(spec, &vc, err, sizeof err))) return send_error(c, req, r, NULL, "%s", err);
            if ((r = px_sched_vm_set(s, &vc))) return sched_error(c, req, r, NULL);
        } else if (type == HV_CTL_POLICY) {
            /* live: the dispatchers pick the next slice under the new rule */
            PxPolicy pol = q->policy ? PX_POLICY_FIXED : PX_POLICY_FAIR;
            if ((r = px_sched_set_policy(s, pol, (int)q->slice_us, (int)q->long_slice_us)))
                return sched_error(c, req, r, NULL);
        } else if (type == HV_CTL_VM_RM) {
            /* its socket first: no new connection is VM id while it goes */
            pthread_mutex_lock(&sv->mu);
            for (int i = 0; i < sv->nlis; i++)
                if (sv->lis[i].vm == id) sv->lis[i].dead = 1;
            /* and its connections: ended, their sessions die with the VM */
            for (HvConn *o = sv->conns; o; o = o->next)
                if (o->vm == id) {
                    atomic_store(&o->gone, 1);
                    shutdown(o->fd, SHUT_RDWR);
                }
            pthread_mutex_unlock(&sv->mu);
            wake(sv);
            if ((r = px_sched_vm_destroy(s, id))) return send_error(c, req, r, NULL, "no VM %u", id);
        }
        hv_msg_begin(&m, type | HV_REPLY, req);
    }
    e = hv_send(c->fd, &m, HV_WRITE_MS);
    hv_msg_free(&m);
    return e;
}

/* ---- a connection's thread -------------------------------------------------------------- */

static int handle(HvConn *c, const HvHdr *h, const unsigned char *p)
{
    uint16_t t = h->type;
    if (h->version != HV_VERSION)
        return send_error(c, h->req, PX_ERR_UNSUPPORTED, NULL, "protocol version %u; this pxhvd speaks %u", h->version, HV_VERSION);
    if (h->flags) return send_error(c, h->req, PX_ERR_INVALID, NULL, "frame flags %#x: none are defined", h->flags);
    if (atomic_load(&c->gone)) return send_error(c, h->req, PX_ERR_NOT_FOUND, NULL, "VM %u was removed", c->vm);
    char why[256];
    HvReq *q = &c->q;
    int d = hv_decode_request(t, p, h->len, q, why, sizeof why);
    if (d) return send_error(c, h->req, PX_ERR_INVALID, NULL, "%s", why);
    if (t == HV_HELLO) return do_hello(c, h->req, q);
    if (!c->hello) return send_error(c, h->req, PX_ERR_INVALID, NULL, "send HELLO first");
    int ctl = t >= HV_CTL_STATUS && t <= HV_CTL_POLICY;
    if ((c->vm == 0) != ctl && t != HV_STATS)
        return send_error(c, h->req, PX_ERR_INVALID, NULL, "message type %u is not served on %s", t,
                          c->vm ? "a VM socket" : "control.sock");
    if (ctl) return do_control(c, t, h->req, q);
    switch (t) {
    case HV_COMPILE: return do_compile(c, h->req, q);
    case HV_BUF_CREATE:
    case HV_BUF_WRITE:
    case HV_BUF_READ:
    case HV_BUF_FREE:
    case HV_MOD_FREE:
    case HV_BUF_WRITE_SHM:
    case HV_BUF_READ_SHM:
    case HV_BUF_INFO: return do_buffer(c, t, h->req, q);
    case HV_LAUNCH:
    case HV_RUN: return do_launch(c, h->req, q);
    case HV_WAIT: return do_wait(c, h->req, q);
    case HV_STATS: {
        if (!c->vm) return send_error(c, h->req, PX_ERR_INVALID, NULL, "STATS is a VM socket's request");
        PxVmStats v;
        PxResult r = px_sched_vm_stats(c->sv->s, c->vm, &v);
        if (r) return send_error(c, h->req, r, NULL, "no VM %u", c->vm);
        HvMsg m = {0};
        hv_msg_begin(&m, HV_STATS | HV_REPLY, h->req);
        put_vm_stats(&m, &v);
        int e = hv_send(c->fd, &m, HV_WRITE_MS);
        hv_msg_free(&m);
        return e;
    }
    default: return send_error(c, h->req, PX_ERR_INVALID, NULL, "unknown message type %u", t);
    }
}

static void *conn_main(void *arg)
{
    HvConn *c = arg;
    HvServer *sv = c->sv;
    for (;;) {
        if (atomic_load(&sv->stop) && !c->ntickets) break; /* nothing more it is owed */
        uint64_t used = atomic_load(&sv->inflight);
        uint64_t room = used < sv->cfg.max_inflight ? sv->cfg.max_inflight - used : 0;
        HvHdr h;
        unsigned char *p;
        HvRecv r = hv_recv(&c->in, &h, &p, room < HV_MAX_FRAME ? (uint32_t)room : HV_MAX_FRAME, HV_IDLE_POLL_MS,
                           sv->cfg.frame_timeout_ms);
        int e = 0;
        if (r == HV_RECV_IDLE) continue;
        if (r == HV_RECV_EOF) break;
        if (r == HV_RECV_OK) {
            atomic_fetch_add(&sv->inflight, h.len);
            e = handle(c, &h, p);
            free(p);
            atomic_fetch_sub(&sv->inflight, h.len);
        } else if (r == HV_RECV_TIMEOUT) {
            e = send_error(c, 0, PX_ERR_IO, NULL, "a frame stalled for %d ms: dropped; resynchronising", sv->cfg.frame_timeout_ms);
        } else if (r == HV_RECV_BADHDR) {
            e = send_error(c, 0, PX_ERR_INVALID, NULL, "bad frame header: resynchronising on the next valid one");
        } else if (r == HV_RECV_TOOBIG) {
            e = send_error(c, h.req, PX_ERR_TOO_LARGE, NULL, "frame of %u bytes is over the limit (%u) or the daemon's room: skipped",
                           h.len, room < HV_MAX_FRAME ? (uint32_t)room : HV_MAX_FRAME);
        } else {
            e = send_error(c, h.req, PX_ERR_OUT_OF_MEMORY, NULL, "out of memory for a frame of %u bytes", h.len);
        }
        if (e) break; /* the peer does not take replies: it is gone or stuck */
    }
    if (c->vm && !atomic_load(&c->gone)) session_reset(c);
    hv_in_close_fds(&c->in);
    if (c->shm_map) munmap(c->shm_map, c->shm_len ? c->shm_len : 1);
    c->shm_map = NULL;
    if (sv->cfg.verbose) logf_(sv, "connection of %s%u closed", c->vm ? "VM " : "control ", c->vm);
    pthread_mutex_lock(&sv->mu);
    c->finished = 1;
    pthread_mutex_unlock(&sv->mu);
    wake(sv);
    return NULL;
}

/* ---- the server ------------------------------------------------------------------------ */

HvServer *hv_server_create(const HvServerConfig *cfg, PxSched *s, char *err, size_t errsz)
{
    HvServer *sv = calloc(1, sizeof *sv);
    if (!sv) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    sv->cfg = *cfg;
    if (sv->cfg.frame_timeout_ms <= 0) sv->cfg.frame_timeout_ms = 2000;
    if (sv->cfg.max_conns <= 0) sv->cfg.max_conns = 256;
    if (sv->cfg.max_conns_per_vm <= 0) sv->cfg.max_conns_per_vm = 64;
    if (!sv->cfg.max_inflight) sv->cfg.max_inflight = 512ull << 20;
    if (!cfg->dir) hv_default_dir(sv->dir, sizeof sv->dir);
    else snprintf(sv->dir, sizeof sv->dir, "%s", cfg->dir);
    sv->s = s;
    pthread_mutex_init(&sv->mu, NULL);
    sv->wake[0] = sv->wake[1] = -1;
    if (pipe(sv->wake) || fcntl(sv->wake[0], F_SETFL, O_NONBLOCK) || fcntl(sv->wake[1], F_SETFL, O_NONBLOCK)) {
        snprintf(err, errsz, "pipe: %s", strerror(errno));
        goto fail;
    }
    if (open_dir(sv, err, errsz)) goto fail;
    uint32_t ids[1024];
    int n = px_sched_vm_ids(s, ids, 1024);
    add_listener(sv, 0);
    for (int i = 0; i < n && i < 1024; i++) add_listener(sv, ids[i]);
    for (int i = 0; i < sv->nlis; i++) {
        if ((sv->lis[i].fd = listen_at(sv->lis[i].path, err, errsz)) < 0) goto fail;
    }
    sv->s = s;
    return sv;
fail:
    for (int i = 0; i < sv->nlis; i++)
        if (sv->lis[i].fd >= 0) {
            close(sv->lis[i].fd);
            unlink(sv->lis[i].path);
        }
    if (sv->wake[0] >= 0) close(sv->wake[0]), close(sv->wake[1]);
    pthread_mutex_destroy(&sv->mu);
    free(sv);
    return NULL;
}

void hv_server_stop(HvServer *sv)
{
    atomic_store(&sv->stop, 1);
    wake(sv);
}

int hv_server_conn_count(HvServer *sv)
{
    pthread_mutex_lock(&sv->mu);
    int n = sv->nconns;
    pthread_mutex_unlock(&sv->mu);
    return n;
}

/* Joins and frees connections whose thread is done (all of them with all). */
static void reap(HvServer *sv, int all)
{
    for (;;) {
        pthread_mutex_lock(&sv->mu);
        HvConn **pp = &sv->conns, *c = NULL;
        while (*pp && !(*pp)->finished && !all) pp = &(*pp)->next;
        if (*pp) {
            c = *pp;
            *pp = c->next;
            sv->nconns--;
        }
        pthread_mutex_unlock(&sv->mu);
        if (!c) return;
        pthread_join(c->th, NULL);
        close(c->fd);
        pthread_mutex_destroy(&c->mu);
        free(c->bufs);
        free(c->mods);
        free(c->tickets);
        free(c);
    }
}

static void accept_one(HvServer *sv, HvListener *l)
{
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    pthread_mutex_lock(&sv->mu);
    int mine = 0;
    for (HvConn *o = sv->conns; o; o = o->next) mine += o->vm == l->vm && !o->finished;
    int full = sv->nconns >= sv->cfg.max_conns || mine >= sv->cfg.max_conns_per_vm;
    pthread_mutex_unlock(&sv->mu);
    HvConn *c = full ? NULL : calloc(1, sizeof *c);
    if (!c) {
        if (sv->cfg.verbose) logf_(sv, "refusing a connection: %s", full ? "too many connections" : "out of memory");
        close(fd);
        return;
    }
    c->sv = sv;
    c->fd = fd;
    c->vm = l->vm;
    c->in.fd = fd;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_lock(&sv->mu);
    if (pthread_create(&c->th, NULL, conn_main, c)) {
        pthread_mutex_unlock(&sv->mu);
        pthread_mutex_destroy(&c->mu);
        close(fd);
        free(c);
        return;
    }
    c->next = sv->conns;
    sv->conns = c;
    sv->nconns++;
    pthread_mutex_unlock(&sv->mu);
    if (sv->cfg.verbose) logf_(sv, "connection on %s", l->path);
}

/* Graceful stop: the newest outstanding launch of each VM may be running
 * (a VM's launches run in submit order, so only its oldest can be): it
 * finishes; the others are cancelled, so their waits get an error reply. */
static void cancel_queued(HvServer *sv)
{
    pthread_mutex_lock(&sv->mu);
    /* per VM the oldest (smallest) outstanding ticket over its sessions */
    for (HvConn *c = sv->conns; c; c = c->next) {
        if (!c->vm) continue;
        pthread_mutex_lock(&c->mu);
        for (int i = 0; i < c->ntickets; i++) {
            uint64_t t = c->tickets[i], oldest = t;
            for (HvConn *o = sv->conns; o; o = o->next) {
                if (o->vm != c->vm) continue;
                if (o != c) pthread_mutex_lock(&o->mu);
                for (int k = 0; k < o->ntickets; k++)
                    if (o->tickets[k] < oldest) oldest = o->tickets[k];
                if (o != c) pthread_mutex_unlock(&o->mu);
            }
            if (t != oldest) px_vm_cancel(sv->s, c->vm, t);
        }
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&sv->mu);
}

void hv_server_run(HvServer *sv)
{
    struct pollfd pf[HV_MAX_LISTENERS + 1];
    while (!atomic_load(&sv->stop)) {
        pthread_mutex_lock(&sv->mu);
        int n = 0;
        /* removed sockets go first: a VM removed and added again gets
         * its path back only after the old socket is gone */
        for (int i = 0; i < sv->nlis; i++) {
            HvListener *l = &sv->lis[i];
            if (l->dead) {
                if (l->fd >= 0) close(l->fd), unlink(l->path);
                sv->lis[i--] = sv->lis[--sv->nlis];
            }
        }
        for (int i = 0; i < sv->nlis; i++) {
            HvListener *l = &sv->lis[i];
            if (l->fd < 0) {
                char err[256];
                if ((l->fd = listen_at(l->path, err, sizeof err)) < 0) {
                    logf_(sv, "%s", err);
                    l->dead = 1, l->fd = -1;
                    continue;
                }
            }
        }
        for (int i = 0; i < sv->nlis; i++)
            if (!sv->lis[i].dead) pf[n++] = (struct pollfd){.fd = sv->lis[i].fd, .events = POLLIN};
        pf[n] = (struct pollfd){.fd = sv->wake[0], .events = POLLIN};
        pthread_mutex_unlock(&sv->mu);
        int k = poll(pf, (nfds_t)n + 1, 1000);
        if (k < 0 && errno != EINTR) break;
        if (pf[n].revents) {
            char buf[64];
            while (read(sv->wake[0], buf, sizeof buf) > 0) {}
        }
        reap(sv, 0);
        for (int i = 0; i < n && !atomic_load(&sv->stop); i++) {
            if (!(pf[i].revents & POLLIN)) continue;
            pthread_mutex_lock(&sv->mu);
            HvListener l = {0};
            for (int j = 0; j < sv->nlis; j++)
                if (sv->lis[j].fd == pf[i].fd && !sv->lis[j].dead) l = sv->lis[j];
            pthread_mutex_unlock(&sv->mu);
            if (l.path[0]) accept_one(sv, &l);
        }
    }
    /* stop accepting: sockets go first */
    atomic_store(&sv->stopping, 1);
    pthread_mutex_lock(&sv->mu);
    for (int i = 0; i < sv->nlis; i++)
        if (sv->lis[i].fd >= 0) close(sv->lis[i].fd), unlink(sv->lis[i].path), sv->lis[i].fd = -1;
    sv->nlis = 0;
    pthread_mutex_unlock(&sv->mu);
    cancel_queued(sv);
    /* the clients collect their results (every launch gets its reply);
     * a connection ends itself when it is owed nothing more */
    for (int i = 0; i < 1000 && hv_server_conn_count(sv); i++) {
        reap(sv, 0);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&sv->mu);
    for (HvConn *c = sv->conns; c; c = c->next) shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_unlock(&sv->mu);
    reap(sv, 1);
}

void hv_server_destroy(HvServer *sv)
{
    if (!sv) return;
    reap(sv, 1);
    for (int i = 0; i < sv->nlis; i++)
        if (sv->lis[i].fd >= 0) close(sv->lis[i].fd), unlink(sv->lis[i].path);
    close(sv->wake[0]);
    close(sv->wake[1]);
    px_sched_destroy(sv->s);
    pthread_mutex_destroy(&sv->mu);
    free(sv);
}
