/* proto.c — the wire format of docs/PROTOCOL.md: little-endian frames of a
 * 24-byte header and a payload of fields, every read bounded by the
 * payload's length and the limits of hv.h. Nothing here trusts a byte from
 * the peer before checking it; nothing allocates more than HV_MAX_FRAME
 * (plus one) for one frame. Depends on libc only (the guest build). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, file seals */
#endif
#include "hv/hv.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "px.h" /* PxResult's names (the header only) */

static void le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t fnv1a(const unsigned char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

void hv_hdr_encode(const HvHdr *h, unsigned char out[HV_HDR_BYTES])
{
    le32(out, HV_MAGIC);
    out[4] = (unsigned char)h->version, out[5] = (unsigned char)(h->version >> 8);
    out[6] = (unsigned char)h->type, out[7] = (unsigned char)(h->type >> 8);
    le32(out + 8, h->len);
    le32(out + 12, h->req);
    le32(out + 16, h->flags);
    le32(out + 20, fnv1a(out, 20));
}

int hv_hdr_decode(const unsigned char in[HV_HDR_BYTES], HvHdr *h)
{
    h->magic = rd32(in);
    h->version = (uint16_t)(in[4] | in[5] << 8);
    h->type = (uint16_t)(in[6] | in[7] << 8);
    h->len = rd32(in + 8);
    h->req = rd32(in + 12);
    h->flags = rd32(in + 16);
    h->check = rd32(in + 20);
    return h->magic == HV_MAGIC && h->check == fnv1a(in, 20) ? 0 : -1;
}

/* ---- writing ----------------------------------------------------------------- */

static void put(HvMsg *m, const void *p, size_t n)
{
    if (m->oom) return;
    if (n > HV_MAX_FRAME + (size_t)HV_HDR_BYTES - m->n) {
        m->oom = 1;
        return;
    }
    if (m->n + n > m->cap) {
        size_t c = m->cap ? m->cap : 256;
        while (c < m->n + n) c *= 2;
        unsigned char *q = realloc(m->p, c);
        if (!q) {
            m->oom = 1;
            return;
        }
        m->p = q, m->cap = c;
    }
    if (n) memcpy(m->p + m->n, p, n);
    m->n += n;
}

void hv_msg_begin(HvMsg *m, uint16_t type, uint32_t req)
{
    m->n = 0;
    m->oom = 0;
    unsigned char h[HV_HDR_BYTES] = {0};
    h[6] = (unsigned char)type, h[7] = (unsigned char)(type >> 8);
    le32(h + 12, req);
    put(m, h, sizeof h);
}

void hv_put_u32(HvMsg *m, uint32_t v)
{
    unsigned char b[4];
    le32(b, v);
    put(m, b, 4);
}
void hv_put_u64(HvMsg *m, uint64_t v)
{
    hv_put_u32(m, (uint32_t)v);
    hv_put_u32(m, (uint32_t)(v >> 32));
}
void hv_put_f64(HvMsg *m, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    hv_put_u64(m, u);
}
void hv_put_bytes(HvMsg *m, const void *p, size_t n)
{
    if (n > HV_MAX_FRAME) {
        m->oom = 1;
        return;
    }
    hv_put_u32(m, (uint32_t)n);
    put(m, p, n);
}
void *hv_put_space(HvMsg *m, size_t n)
{
    if (n > HV_MAX_FRAME) {
        m->oom = 1;
        return NULL;
    }
    hv_put_u32(m, (uint32_t)n);
    size_t at = m->n;
    put(m, NULL, 0);
    if (m->oom) return NULL;
    if (n > HV_MAX_FRAME + (size_t)HV_HDR_BYTES - m->n) {
        m->oom = 1;
        return NULL;
    }
    if (m->n + n > m->cap) {
        unsigned char *q = realloc(m->p, m->n + n);
        if (!q) {
            m->oom = 1;
            return NULL;
        }
        m->p = q, m->cap = m->n + n;
    }
    m->n += n;
    return m->p + at;
}

void hv_put_str(HvMsg *m, const char *s) { hv_put_bytes(m, s ? s : "", s ? strlen(s) : 0); }

int hv_msg_end(HvMsg *m)
{
    if (m->oom || m->n < HV_HDR_BYTES) return -1;
    HvHdr h = {.version = HV_VERSION, .type = (uint16_t)(m->p[6] | m->p[7] << 8),
               .len = (uint32_t)(m->n - HV_HDR_BYTES), .req = rd32(m->p + 12)};
    hv_hdr_encode(&h, m->p);
    return 0;
}

void hv_msg_free(HvMsg *m)
{
    free(m->p);
    memset(m, 0, sizeof *m);
}

/* ---- reading ----------------------------------------------------------------- */

static const unsigned char *take(HvRd *r, size_t n)
{
    if (r->bad || n > r->n - r->off) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *p = r->p + r->off;
    r->off += n;
    return p;
}

uint32_t hv_get_u32(HvRd *r)
{
    const unsigned char *p = take(r, 4);
    return p ? rd32(p) : 0;
}
uint64_t hv_get_u64(HvRd *r)
{
    uint64_t lo = hv_get_u32(r);
    return lo | (uint64_t)hv_get_u32(r) << 32;
}
double hv_get_f64(HvRd *r)
{
    uint64_t u = hv_get_u64(r);
    double d;
    memcpy(&d, &u, 8);
    return d;
}
const void *hv_get_bytes(HvRd *r, size_t max, size_t *len)
{
    uint32_t n = hv_get_u32(r);
    *len = 0;
    if (r->bad || n > max) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *p = take(r, n);
    if (p) *len = n;
    return p;
}
void hv_get_str(HvRd *r, char *dst, size_t cap)
{
    size_t n;
    const char *p = hv_get_bytes(r, cap ? cap - 1 : 0, &n);
    if (cap) dst[0] = 0;
    if (!p || memchr(p, 0, n)) {
        r->bad = 1;
        return;
    }
    memcpy(dst, p, n);
    dst[n] = 0;
}
uint64_t hv_get_shape(HvRd *r, uint32_t *dtype, int *rank, int64_t shape[4])
{
    *dtype = hv_get_u32(r);
    uint32_t rk = hv_get_u32(r);
    if (*dtype > 3 || rk > 4) r->bad = 1;
    *rank = r->bad ? 0 : (int)rk;
    /* at most 2^40 elements in all (BUF_CREATE's bound per extent): the
     * product is checked before it is taken, so it cannot wrap */
    const uint64_t most = UINT64_C(1) << 40;
    uint64_t count = 1;
    for (int i = 0; i < 4; i++) {
        uint64_t e = i < *rank ? hv_get_u64(r) : 1;
        shape[i] = (int64_t)e;
        if (e > most || (e && count > most / e)) r->bad = 1;
        else count *= e;
    }
    return r->bad ? 0 : count;
}

char *hv_get_strdup(HvRd *r, size_t max)
{
    size_t n;
    const char *p = hv_get_bytes(r, max, &n);
    if (!p || memchr(p, 0, n)) {
        r->bad = 1;
        return NULL;
    }
    char *s = malloc(n + 1);
    if (!s) {
        r->bad = 1;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* ---- requests ---------------------------------------------------------------- */

static const char *type_name(uint16_t t)
{
    switch (t) {
    case HV_HELLO: return "HELLO";
    case HV_COMPILE: return "COMPILE";
    case HV_BUF_CREATE: return "BUF_CREATE";
    case HV_BUF_WRITE: return "BUF_WRITE";
    case HV_BUF_READ: return "BUF_READ";
    case HV_BUF_FREE: return "BUF_FREE";
    case HV_LAUNCH: return "LAUNCH";
    case HV_WAIT: return "WAIT";
    case HV_STATS: return "STATS";
    case HV_MOD_FREE: return "MOD_FREE";
    case HV_BUF_WRITE_SHM: return "BUF_WRITE_SHM";
    case HV_BUF_READ_SHM: return "BUF_READ_SHM";
    case HV_BUF_INFO: return "BUF_INFO";
    case HV_RUN: return "RUN";
    case HV_CTL_STATUS: return "CTL_STATUS";
    case HV_CTL_VM_ADD: return "CTL_VM_ADD";
    case HV_CTL_VM_RM: return "CTL_VM_RM";
    case HV_CTL_VM_SET: return "CTL_VM_SET";
    case HV_CTL_VM_MIGRATE: return "CTL_VM_MIGRATE";
    case HV_CTL_TOP: return "CTL_TOP";
    case HV_CTL_POLICY: return "CTL_POLICY";
    }
    return NULL;
}

int hv_decode_request(uint16_t type, const unsigned char *p, size_t n, HvReq *q, char *err, size_t errsz)
{
    HvRd r = {.p = p, .n = n};
    const char *tn = type_name(type);
    q->type = type;
    if (!tn) {
        snprintf(err, errsz, "unknown message type %u", type);
        return -2;
    }
    const char *why = NULL;
    switch (type) {
    case HV_HELLO:
        q->nonce = hv_get_u64(&r);
        q->vmin = hv_get_u32(&r);
        q->vmax = hv_get_u32(&r);
        break;
    case HV_COMPILE:
        hv_get_str(&r, q->file, sizeof q->file);
        hv_get_str(&r, q->kernel, sizeof q->kernel);
        q->source = hv_get_bytes(&r, HV_MAX_SOURCE, &q->source_len);
        break;
    case HV_BUF_CREATE:
        q->dtype = hv_get_u32(&r);
        q->rank = hv_get_u32(&r);
        if (!r.bad && (q->dtype > 3 || q->rank > 4)) why = "dtype must be 0..3 and rank 0..4";
        for (uint32_t i = 0; !why && !r.bad && i < q->rank; i++) {
            q->shape[i] = (int64_t)hv_get_u64(&r);
            if (q->shape[i] < 0 || q->shape[i] > (INT64_C(1) << 40)) why = "an extent is out of 0..2^40";
        }
        break;
    case HV_BUF_WRITE:
        q->id = hv_get_u32(&r);
        q->data = hv_get_bytes(&r, HV_MAX_FRAME, &q->data_len);
        break;
    case HV_BUF_WRITE_SHM:
    case HV_BUF_READ_SHM:
        q->id = hv_get_u32(&r);
        q->bytes = hv_get_u64(&r);
        if (!r.bad && q->bytes > (UINT64_C(1) << 42)) why = "more than 2^42 bytes";
        break;
    case HV_BUF_READ:
    case HV_BUF_INFO:
    case HV_BUF_FREE:
    case HV_MOD_FREE:
    case HV_CTL_VM_RM: q->id = hv_get_u32(&r); break;
    case HV_LAUNCH:
    case HV_RUN:
        q->id = hv_get_u32(&r);
        hv_get_str(&r, q->kernel, sizeof q->kernel);
        q->nargs = hv_get_u32(&r);
        if (!r.bad && q->nargs > HV_MAX_ARGS) why = "more than 64 arguments";
        for (uint32_t i = 0; !why && !r.bad && i < q->nargs; i++) {
            HvArgReq *a = &q->args[i];
            hv_get_str(&r, a->name, sizeof a->name);
            a->kind = hv_get_u32(&r);
            a->buffer = hv_get_u32(&r);
            a->f = hv_get_f64(&r);
            a->i = (int64_t)hv_get_u64(&r);
            if (!r.bad && (a->kind > 4 || !a->name[0])) why = "an argument has no name or an unknown kind";
        }
        if (type == HV_RUN) {
            q->timeout_ms = hv_get_u32(&r);
            if (q->timeout_ms > 1000) q->timeout_ms = 1000;
        }
        break;
    case HV_WAIT:
        q->ticket = hv_get_u64(&r);
        q->timeout_ms = hv_get_u32(&r);
        if (q->timeout_ms > 1000) q->timeout_ms = 1000;
        break;
    case HV_CTL_VM_ADD:
    case HV_CTL_VM_SET:
        q->id = hv_get_u32(&r);
        hv_get_str(&r, q->spec, sizeof q->spec);
        break;
    case HV_CTL_VM_MIGRATE:
        q->id = hv_get_u32(&r);
        q->device = hv_get_u32(&r);
        break;
    case HV_CTL_POLICY:
        q->policy = hv_get_u32(&r);
        q->slice_us = hv_get_u32(&r);
        q->long_slice_us = hv_get_u32(&r);
        if (!r.bad && q->policy > 1) why = "unknown policy (0 fair, 1 fixed)";
        else if (!r.bad && (q->slice_us > 10000000 || q->long_slice_us > 10000000))
            why = "slice length over 10 s";
        break;
    default: break; /* STATS, CTL_STATUS, CTL_TOP: no fields */
    }
    if (!why && !r.bad && type >= HV_CTL_VM_ADD && type <= HV_CTL_VM_MIGRATE && (q->id < 1 || q->id > 65535))
        why = "VM id out of 1..65535";
    if (!why && r.bad) why = "a field is truncated or over its limit";
    if (!why && r.off != r.n) why = "bytes after the last field";
    if (why) {
        snprintf(err, errsz, "%s: malformed request: %s", tn, why);
        return -1;
    }
    return 0;
}

/* ---- streams ----------------------------------------------------------------- */

/* Waits up to ms (< 0: for ever) for fd to be readable (or writable). */
static int wait_fd(int fd, short ev, int ms)
{
    struct pollfd p = {.fd = fd, .events = ev};
    for (;;) {
        int n = poll(&p, 1, ms);
        if (n < 0 && errno == EINTR) continue;
        return n; /* 0 time-out, 1 ready (or hung up: the read says which) */
    }
}

/* At least one more byte into the buffer: 1, 0 on EOF/error, -2 time-out. */
static int fill(HvIn *in, int ms)
{
    if (in->r == in->w) in->r = in->w = 0;
    if (in->r > 0 && in->w == sizeof in->buf) {
        memmove(in->buf, in->buf + in->r, in->w - in->r);
        in->w -= in->r, in->r = 0;
    }
    int ready = wait_fd(in->fd, POLLIN, ms);
    if (ready == 0) return -2;
    if (ready < 0) return 0;
    if (!in->sock) {
        struct stat st;
        in->sock = fstat(in->fd, &st) == 0 && S_ISSOCK(st.st_mode) ? 1 : 2;
    }
    for (;;) {
        ssize_t n;
        if (in->sock == 1) {
            /* descriptors may ride with the bytes (BUF_*_SHM) */
            union {
                struct cmsghdr h;
                char b[CMSG_SPACE(sizeof(int) * HV_MAX_FDS)];
            } cm;
            struct iovec iov = {in->buf + in->w, sizeof in->buf - in->w};
            struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof cm.b};
            n = recvmsg(in->fd, &mh, MSG_CMSG_CLOEXEC);
            for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
                int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                for (int i = 0; i < k; i++) {
                    int f;
                    memcpy(&f, CMSG_DATA(c) + (size_t)i * sizeof f, sizeof f);
                    if (in->nfds < HV_MAX_FDS) in->fds[in->nfds++] = f;
                    else close(f); /* over the bound: a peer gets no more held open */
                }
            }
        } else {
            n = read(in->fd, in->buf + in->w, sizeof in->buf - in->w);
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -2;
        if (n <= 0) return 0;
        in->w += (size_t)n;
        return 1;
    }
}

/* n (<= sizeof buf) bytes available: 1, 0 EOF, -2 time-out. The first
 * byte waits first_ms, later ones ms each. */
static int need(HvIn *in, size_t n, int first_ms, int ms)
{
    while (in->w - in->r < n) {
        int f = fill(in, in->w == in->r ? first_ms : ms);
        if (f != 1) return f;
    }
    return 1;
}

HvRecv hv_recv(HvIn *in, HvHdr *h, unsigned char **payload, uint32_t max_len, int idle_ms, int frame_ms)
{
    *payload = NULL;
    for (;;) {
        int f = need(in, HV_HDR_BYTES, idle_ms, frame_ms);
        if (f == 0) return HV_RECV_EOF;
        if (f == -2) {
            if (in->w == in->r) return HV_RECV_IDLE;
            in->r = in->w; /* a stalled partial header: dropped */
            in->resync = 1;
            return HV_RECV_TIMEOUT;
        }
        if (hv_hdr_decode(in->buf + in->r, h) == 0) break;
        /* resync: drop one byte and look again; said once per bad stretch */
        in->r++;
        if (!in->resync) {
            in->resync = 1;
            return HV_RECV_BADHDR;
        }
    }
    in->resync = 0;
    in->r += HV_HDR_BYTES;
    if (h->len > max_len || h->len > HV_MAX_FRAME) {
        in->resync = 1; /* its payload is not read: skipped as garbage */
        return HV_RECV_TOOBIG;
    }
    unsigned char *p = malloc((size_t)h->len + 1);
    if (!p) return HV_RECV_NOMEM;
    size_t got = 0;
    while (got < h->len) {
        size_t have = in->w - in->r;
        if (have) {
            size_t k = have < h->len - got ? have : h->len - got;
            memcpy(p + got, in->buf + in->r, k);
            in->r += k, got += k;
            continue;
        }
        if (h->len - got >= sizeof in->buf) {
            /* a large rest goes straight into the payload, not through buf */
            int ready = wait_fd(in->fd, POLLIN, frame_ms);
            ssize_t k = ready > 0 ? read(in->fd, p + got, h->len - got) : -1;
            if (k < 0 && ready > 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
            if (k > 0) {
                got += (size_t)k;
                continue;
            }
            free(p);
            in->resync = 1;
            return ready == 0 ? HV_RECV_TIMEOUT : HV_RECV_EOF;
        }
        int f2 = fill(in, frame_ms);
        if (f2 != 1) {
            free(p);
            in->resync = 1;
            return f2 == 0 ? HV_RECV_EOF : HV_RECV_TIMEOUT;
        }
    }
    p[h->len] = 0;
    *payload = p;
    return HV_RECV_OK;
}

int hv_write_all(int fd, const void *p, size_t n, int timeout_ms)
{
    const unsigned char *c = p;
    while (n) {
        /* a socket's peer that went away is an error, not SIGPIPE */
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == ENOTSOCK) k = write(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(fd, POLLOUT, timeout_ms) <= 0) return -1;
            continue;
        }
        if (k <= 0) return -1;
        c += k, n -= (size_t)k;
    }
    return 0;
}

int hv_send(int fd, HvMsg *m, int timeout_ms)
{
    if (hv_msg_end(m)) return -1;
    return hv_write_all(fd, m->p, m->n, timeout_ms);
}

int hv_send_fd(int fd, HvMsg *m, int passfd, int timeout_ms)
{
    if (hv_msg_end(m)) return -1;
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } cm;
    memset(&cm, 0, sizeof cm);
    struct iovec iov = {m->p, m->n};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof cm.b};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &passfd, sizeof passfd);
    ssize_t k;
    do k = sendmsg(fd, &mh, MSG_NOSIGNAL);
    while (k < 0 && errno == EINTR);
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) k = 0; /* none sent yet: the rest goes below without the fd */
    if (k <= 0) return -1;
    return hv_write_all(fd, m->p + k, m->n - (size_t)k, timeout_ms);
}

int hv_take_fd(HvIn *in)
{
    if (!in->nfds) return -1;
    int f = in->fds[0];
    memmove(in->fds, in->fds + 1, sizeof *in->fds * (size_t)--in->nfds);
    return f;
}

void hv_in_close_fds(HvIn *in)
{
    for (int i = 0; i < in->nfds; i++) close(in->fds[i]);
    in->nfds = 0;
}

int hv_shm_create(size_t n, void **map)
{
    *map = NULL;
    int fd = memfd_create("px-hv", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    if (ftruncate(fd, (off_t)(n ? n : 1)) || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
        close(fd);
        return -1;
    }
    void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return -1;
    }
    *map = p;
    return fd;
}

void *hv_shm_map(int fd, size_t n, int writable, char *err, size_t errsz)
{
    /* unsealed memory could shrink under the mapping: a fault in the daemon */
    int seals = fcntl(fd, F_GET_SEALS);
    struct stat st;
    if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
        snprintf(err, errsz, "the descriptor is not a memfd sealed against shrinking (F_SEAL_SHRINK)");
        return NULL;
    }
    if (fstat(fd, &st) || (uint64_t)st.st_size < n) {
        snprintf(err, errsz, "the memfd holds %lld bytes, %zu needed", (long long)st.st_size, n);
        return NULL;
    }
    if (writable && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))) {
        snprintf(err, errsz, "the memfd is sealed against writing (the daemon maps it read-write)");
        return NULL;
    }
    void *p = mmap(NULL, n ? n : 1, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errsz, "mmap: %s", strerror(errno));
        return NULL;
    }
    return p;
}

void hv_default_dir(char *out, size_t n)
{
    const char *e = getenv("PX_HVD");
    const char *x = getenv("XDG_RUNTIME_DIR");
    if (e && *e) snprintf(out, n, "%s", e);
    else if (x && *x) snprintf(out, n, "%s/px", x);
    else snprintf(out, n, "/tmp/px-%u", (unsigned)getuid());
}

const char *hv_result_name(uint32_t r)
{
    static const char *names[] = {
#define X(e, s) s,
        PX_RESULTS(X)
#undef X
    };
    return r < sizeof names / sizeof *names ? names[r] : "unknown error";
}
