/* test_hvd.c — the hypervisor daemon's service layer (hv/server.c) in this
 * process, on the test device, spoken to through its sockets with the
 * protocol (hv/proto.c): isolation between VMs, hostile frames (random,
 * truncated, huge, wrong version, unknown type, malformed payloads), the
 * stream resync after a stalled frame, a client that dies mid-launch, a
 * quota refusal, and a load of 64 clients over 8 VMs making 10,000
 * submissions with every result checked against a plain C loop. No test
 * asserts a time: waits are bounded only so a failure cannot hang. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hv/hv.h"
#include "pxsched.h"
#include "test.h"

static PxContext *ctx;
static PxSched *S;
static HvServer *SV;
static char DIR_[64];

/* z = a * x + y over N: z is unbound, the launch makes it */
static const char *SAXPY = "GPU_KERNEL saxpy\nGPU_PARAM a float\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\n"
                           "GPU_PARAM z float[N]\nGPU_THREAD_CODE:\n    PARALLEL_MAP x y -> z : a * x + y\nGPU_END\n";
static const char *SPIN = "GPU_KERNEL spin\nGPU_PARAM reps uint\nGPU_PARAM y float[N]\nGPU_THREAD_CODE:\n"
                          "    PARALLEL_FOR i IN 0..N {\n        var v = y[i]\n"
                          "        for r IN 0..reps { v = v * 0.999 + 0.001 }\n        y[i] = v\n    }\nGPU_END\n";

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- a small client ------------------------------------------------------------- */

typedef struct Cli {
    int fd;
    HvIn in;
} Cli;

static Cli *cli_open(uint32_t vm)
{
    char path[256], err[256], dev[256];
    if (vm) snprintf(path, sizeof path, "%s/vm%u.sock", DIR_, vm);
    else snprintf(path, sizeof path, "%s/control.sock", DIR_);
    Cli *c = calloc(1, sizeof *c);
    uint32_t got;
    if (!c || hv_connect(path, &c->fd, &got, dev, sizeof dev, err, sizeof err)) {
        fprintf(stderr, "connect %s: %s\n", path, err);
        free(c);
        return NULL;
    }
    c->in.fd = c->fd;
    return c;
}

static void cli_close(Cli *c)
{
    if (!c) return;
    close(c->fd);
    free(c);
}

/* A raw socket to vm's socket, without HELLO. */
static int raw_open(uint32_t vm)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s/vm%u.sock", DIR_, vm);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One call: the reply's type (HV_ERROR: *code set), payload in *rd (free rd->p). */
static uint16_t cli_call(Cli *c, HvMsg *m, HvRd *rd, uint32_t *code)
{
    uint16_t type = 0;
    unsigned char *p = NULL;
    uint32_t n = 0;
    char err[256];
    *rd = (HvRd){0};
    if (hv_call(c->fd, &c->in, m, &type, &p, &n, 30000, err, sizeof err)) {
        fprintf(stderr, "call: %s\n", err);
        hv_msg_free(m);
        return 0;
    }
    hv_msg_free(m);
    *rd = (HvRd){.p = p, .n = n};
    if (type == HV_ERROR && code) {
        HvRd e = *rd;
        *code = hv_get_u32(&e);
    }
    return type;
}

static uint32_t c_compile(Cli *c, const char *src)
{
    HvMsg m = {0};
    hv_msg_begin(&m, HV_COMPILE, 0);
    hv_put_str(&m, "t.px");
    hv_put_str(&m, "");
    hv_put_bytes(&m, src, strlen(src));
    HvRd rd;
    uint32_t code;
    uint16_t t = cli_call(c, &m, &rd, &code);
    uint32_t id = t == (HV_COMPILE | HV_REPLY) ? hv_get_u32(&rd) : 0;
    free((void *)rd.p);
    return id;
}

static uint32_t c_buf(Cli *c, int64_t n, const float *data, uint32_t *code)
{
    HvMsg m = {0};
    hv_msg_begin(&m, HV_BUF_CREATE, 0);
    hv_put_u32(&m, PX_F32);
    hv_put_u32(&m, 1);
    hv_put_u64(&m, (uint64_t)n);
    HvRd rd;
    uint32_t cd = 0;
    uint16_t t = cli_call(c, &m, &rd, &cd);
    uint32_t id = t == (HV_BUF_CREATE | HV_REPLY) ? hv_get_u32(&rd) : 0;
    free((void *)rd.p);
    if (code) *code = cd;
    if (!id || !data) return id;
    hv_msg_begin(&m, HV_BUF_WRITE, 0);
    hv_put_u32(&m, id);
    hv_put_bytes(&m, data, (size_t)n * 4);
    t = cli_call(c, &m, &rd, &cd);
    free((void *)rd.p);
    return t == (HV_BUF_WRITE | HV_REPLY) ? id : 0;
}

/* Reads n floats; 0, or the error code (or 1 for no reply). */
static uint32_t c_read(Cli *c, uint32_t id, float *out, int64_t n)
{
    HvMsg m = {0};
    hv_msg_begin(&m, HV_BUF_READ, 0);
    hv_put_u32(&m, id);
    HvRd rd;
    uint32_t code = 1;
    uint16_t t = cli_call(c, &m, &rd, &code);
    if (t == (HV_BUF_READ | HV_REPLY)) {
        hv_get_u32(&rd);
        uint32_t rank = hv_get_u32(&rd);
        for (uint32_t i = 0; i < rank && i < 4; i++) hv_get_u64(&rd);
        size_t len;
        const void *d = hv_get_bytes(&rd, HV_MAX_FRAME, &len);
        code = rd.bad || len != (size_t)n * 4 ? 1 : 0;
        if (!code) memcpy(out, d, len);
    }
    free((void *)rd.p);
    return code;
}

static uint32_t c_free(Cli *c, uint16_t type, uint32_t id)
{
    HvMsg m = {0};
    hv_msg_begin(&m, type, 0);
    hv_put_u32(&m, id);
    HvRd rd;
    uint32_t code = 1;
    uint16_t t = cli_call(c, &m, &rd, &code);
    free((void *)rd.p);
    return t == (type | HV_REPLY) ? 0 : code;
}

typedef struct Arg {
    const char *name;
    uint32_t kind, buffer;
    double f;
    int64_t i;
} Arg;

/* Submits; the ticket, or 0 with *code. */
static uint64_t c_launch(Cli *c, uint32_t mod, const Arg *a, int n, uint32_t *code)
{
    HvMsg m = {0};
    hv_msg_begin(&m, HV_LAUNCH, 0);
    hv_put_u32(&m, mod);
    hv_put_str(&m, "");
    hv_put_u32(&m, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        hv_put_str(&m, a[i].name);
        hv_put_u32(&m, a[i].kind);
        hv_put_u32(&m, a[i].buffer);
        hv_put_f64(&m, a[i].f);
        hv_put_u64(&m, (uint64_t)a[i].i);
    }
    HvRd rd;
    uint32_t cd = 1;
    uint16_t t = cli_call(c, &m, &rd, &cd);
    uint64_t tk = t == (HV_LAUNCH | HV_REPLY) ? hv_get_u64(&rd) : 0;
    free((void *)rd.p);
    if (code) *code = tk ? 0 : cd;
    return tk;
}

/* Waits for a ticket: its result (PxResult), the first output's buffer in *out. */
static int c_wait(Cli *c, uint64_t ticket, uint32_t *out)
{
    for (int tries = 0; tries < 120; tries++) {
        HvMsg m = {0};
        hv_msg_begin(&m, HV_WAIT, 0);
        hv_put_u64(&m, ticket);
        hv_put_u32(&m, 1000);
        HvRd rd;
        uint32_t code = 1;
        uint16_t t = cli_call(c, &m, &rd, &code);
        if (t == HV_ERROR && code == PX_ERR_NOT_READY) {
            free((void *)rd.p);
            continue;
        }
        if (t != (HV_WAIT | HV_REPLY)) {
            free((void *)rd.p);
            return -1;
        }
        int res = (int)hv_get_u32(&rd);
        char e[600];
        hv_get_str(&rd, e, sizeof e);
        hv_get_f64(&rd), hv_get_f64(&rd), hv_get_f64(&rd);
        hv_get_u32(&rd);
        uint32_t no = hv_get_u32(&rd);
        if (no && out) {
            char pn[256];
            hv_get_str(&rd, pn, sizeof pn);
            *out = hv_get_u32(&rd);
        }
        int bad = rd.bad;
        free((void *)rd.p);
        return bad ? -1 : res;
    }
    return -1;
}

/* ---- tests ------------------------------------------------------------------------ */

/* A buffer's description (hv_get_shape): the element count, 1s past the
 * rank, and bad for a dtype or rank out of range or extents whose product
 * passes 2^40 (which a plain product could wrap to something small). */
static uint64_t shape_of(uint32_t dtype, uint32_t rank, const uint64_t *ext, int n, int *bad, int64_t sh[4])
{
    HvMsg m = {0};
    hv_msg_begin(&m, HV_BUF_INFO | HV_REPLY, 0);
    hv_put_u32(&m, dtype);
    hv_put_u32(&m, rank);
    for (int i = 0; i < n; i++) hv_put_u64(&m, ext[i]);
    hv_msg_end(&m);
    HvRd rd = {.p = m.p + HV_HDR_BYTES, .n = m.n - HV_HDR_BYTES};
    uint32_t dt;
    int rk;
    uint64_t count = hv_get_shape(&rd, &dt, &rk, sh);
    *bad = rd.bad;
    hv_msg_free(&m);
    return count;
}

TEST(shape_decoder)
{
    int64_t sh[4];
    int bad;
    const uint64_t ok[2] = {3, 5}, wrap[4] = {1u << 20, 1u << 20, 1u << 20, 1u << 20};
    CHECK(shape_of(0, 2, ok, 2, &bad, sh) == 15 && !bad && sh[0] == 3 && sh[1] == 5 && sh[2] == 1 && sh[3] == 1);
    CHECK(shape_of(2, 0, NULL, 0, &bad, sh) == 1 && !bad);
    shape_of(4, 2, ok, 2, &bad, sh);
    CHECK(bad); /* dtype 4 */
    shape_of(0, 5, wrap, 4, &bad, sh);
    CHECK(bad); /* rank 5 */
    CHECK(shape_of(0, 4, wrap, 4, &bad, sh) == 0 && bad); /* 2^80 elements: would wrap to 0 */
    shape_of(0, 2, ok, 1, &bad, sh);
    CHECK(bad); /* truncated */
}

TEST(saxpy_roundtrip)
{
    Cli *c = cli_open(1);
    CHECK(c != NULL);
    if (!c) return;
    uint32_t mod = c_compile(c, SAXPY);
    CHECK(mod != 0);
    float x[16], y[16], z[16];
    for (int i = 0; i < 16; i++) x[i] = (float)i, y[i] = (float)(100 - i);
    uint32_t bx = c_buf(c, 16, x, NULL), by = c_buf(c, 16, y, NULL), bz = 0;
    Arg a[3] = {{"a", PX_ARG_FLOAT, 0, 3.0, 0}, {"x", PX_ARG_BUFFER, bx, 0, 0}, {"y", PX_ARG_BUFFER, by, 0, 0}};
    uint64_t t = c_launch(c, mod, a, 3, NULL);
    CHECK(t != 0);
    CHECK(c_wait(c, t, &bz) == PX_OK);
    CHECK(bz != 0 && c_read(c, bz, z, 16) == 0);
    int ok = 1;
    for (int i = 0; i < 16; i++) ok &= z[i] == 3.0f * x[i] + y[i];
    CHECK(ok);
    /* RUN: the same launch and its result in one round trip */
    HvMsg m = {0};
    hv_msg_begin(&m, HV_RUN, 0);
    hv_put_u32(&m, mod);
    hv_put_str(&m, "");
    hv_put_u32(&m, 3);
    for (int k = 0; k < 3; k++) {
        hv_put_str(&m, a[k].name);
        hv_put_u32(&m, a[k].kind);
        hv_put_u32(&m, a[k].buffer);
        hv_put_f64(&m, k == 0 ? -2.0 : 0);
        hv_put_u64(&m, 0);
    }
    hv_put_u32(&m, 1000);
    HvRd rd;
    uint32_t code;
    uint16_t t2 = cli_call(c, &m, &rd, &code);
    uint64_t tk = hv_get_u64(&rd);
    uint32_t fin = hv_get_u32(&rd), res = hv_get_u32(&rd), bz2 = 0;
    char e[600], pn[256];
    hv_get_str(&rd, e, sizeof e);
    hv_get_f64(&rd), hv_get_f64(&rd), hv_get_f64(&rd), hv_get_u32(&rd);
    uint32_t no = hv_get_u32(&rd);
    hv_get_str(&rd, pn, sizeof pn);
    bz2 = hv_get_u32(&rd);
    CHECK(t2 == (HV_RUN | HV_REPLY) && !rd.bad && tk && fin == 1 && res == PX_OK && no == 1 && !strcmp(pn, "z"));
    free((void *)rd.p);
    CHECK(c_read(c, bz2, z, 16) == 0);
    ok = 1;
    for (int i = 0; i < 16; i++) ok &= z[i] == -2.0f * x[i] + y[i];
    CHECK(ok);
    cli_close(c);
}

TEST(isolation)
{
    Cli *a = cli_open(1), *b = cli_open(2);
    CHECK(a && b);
    if (!a || !b) return;
    float secret[8] = {42, 43, 44, 45, 46, 47, 48, 49}, got[8];
    uint32_t mod = c_compile(a, SAXPY);
    uint32_t ba = c_buf(a, 8, secret, NULL);
    CHECK(mod && ba);
    /* VM 2 names VM 1's ids: they are not its */
    CHECK(c_read(b, ba, got, 8) == PX_ERR_NOT_FOUND);
    CHECK(c_free(b, HV_BUF_FREE, ba) == PX_ERR_NOT_FOUND);
    CHECK(c_free(b, HV_MOD_FREE, mod) == PX_ERR_NOT_FOUND);
    uint32_t code = 0;
    Arg args[2] = {{"a", PX_ARG_FLOAT, 0, 1.0, 0}, {"x", PX_ARG_BUFFER, ba, 0, 0}};
    CHECK(c_launch(b, mod, args, 2, &code) == 0 && code == PX_ERR_NOT_FOUND);
    /* its own buffer, whatever id it gets, holds its own (zero) data */
    uint32_t bb = c_buf(b, 8, NULL, NULL);
    CHECK(bb != 0 && c_read(b, bb, got, 8) == 0);
    int zero = 1;
    for (int i = 0; i < 8; i++) zero &= got[i] == 0;
    CHECK(zero);
    /* VM 1's data is untouched */
    CHECK(c_read(a, ba, got, 8) == 0 && !memcmp(got, secret, sizeof got));
    cli_close(a);
    cli_close(b);
}

static int roundtrip_ok(uint32_t vm)
{
    Cli *c = cli_open(vm);
    if (!c) return 0;
    float x[4] = {1, 2, 3, 4}, got[4];
    uint32_t b = c_buf(c, 4, x, NULL);
    int ok = b && c_read(c, b, got, 4) == 0 && !memcmp(got, x, sizeof x);
    cli_close(c);
    return ok;
}

/* Reads whatever the daemon says within ms, returning how many bytes. */
static size_t drain(int fd, int ms)
{
    size_t total = 0;
    char buf[4096];
    for (int i = 0; i < ms / 10; i++) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) total += (size_t)n;
        else if (n == 0) break;
        else sleep_ms(10);
    }
    return total;
}

TEST(hostile_frames)
{
    Cli *keep = cli_open(2); /* another VM's client, served throughout */
    CHECK(keep != NULL);
    unsigned seed = 12345;
    /* random bytes, on fresh connections */
    for (int k = 0; k < 40; k++) {
        int fd = raw_open(3);
        if (fd < 0) continue;
        unsigned char junk[3000];
        size_t n = 1 + (size_t)(rand_r(&seed) % sizeof junk);
        for (size_t i = 0; i < n; i++) junk[i] = (unsigned char)rand_r(&seed);
        if (k % 4 == 0) { /* a valid header first, then garbage */
            HvHdr h = {.version = HV_VERSION, .type = (uint16_t)(rand_r(&seed) % 40), .len = (uint32_t)(n > 24 ? n - 24 : 0)};
            hv_hdr_encode(&h, junk);
        }
        hv_write_all(fd, junk, n, 1000);
        close(fd);
    }
    unsigned char h[HV_HDR_BYTES];
    /* a huge length, a wrong version, unknown type, flags, a truncated frame */
    struct { uint16_t version, type; uint32_t len, flags; } cases[] = {
        {1, HV_COMPILE, 0xFFFFFFFFu, 0}, {2, HV_HELLO, 0, 0}, {1, 999, 0, 0}, {1, HV_HELLO, 0, 7}, {1, HV_COMPILE, 1000, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        int fd = raw_open(3);
        CHECK(fd >= 0);
        if (fd < 0) continue;
        HvHdr hd = {.version = cases[k].version, .type = cases[k].type, .len = cases[k].len, .flags = cases[k].flags, .req = 9};
        hv_hdr_encode(&hd, h);
        hv_write_all(fd, h, sizeof h, 1000);
        if (k == 4) hv_write_all(fd, "GPU_KERNEL", 10, 1000); /* then dies mid-payload */
        else CHECK(drain(fd, 300) > 0); /* an error reply came */
        close(fd);
    }
    /* malformed payloads after a good hello: every one answered, none fatal */
    Cli *c = cli_open(3);
    CHECK(c != NULL);
    for (int k = 0; c && k < 200; k++) {
        HvMsg m = {0};
        hv_msg_begin(&m, (uint16_t)(1 + k % 12), 0);
        int n = rand_r(&seed) % 40;
        for (int i = 0; i < n; i++) hv_put_u32(&m, (uint32_t)rand_r(&seed) % (k % 3 ? 70000 : 5));
        HvRd rd;
        uint32_t code;
        uint16_t t = cli_call(c, &m, &rd, &code);
        free((void *)rd.p);
        if (!t) {
            CHECK(!"no reply to a malformed request");
            break;
        }
    }
    cli_close(c);
    /* a stream with garbage then a HELLO: resynchronised */
    int fd = raw_open(3);
    CHECK(fd >= 0);
    hv_write_all(fd, "this is not a frame, nor is PXHV this", 37, 1000);
    HvMsg m = {0};
    hv_msg_begin(&m, HV_HELLO, 77);
    hv_put_u64(&m, 0xfeedull);
    hv_put_u32(&m, 1);
    hv_put_u32(&m, 1);
    CHECK(hv_send(fd, &m, 1000) == 0);
    hv_msg_free(&m);
    HvIn *in = calloc(1, sizeof *in);
    in->fd = fd;
    int got_hello = 0;
    for (int i = 0; i < 5 && !got_hello; i++) {
        HvHdr hh;
        unsigned char *p;
        if (hv_recv(in, &hh, &p, HV_MAX_FRAME, 3000, 3000) != HV_RECV_OK) continue;
        HvRd rd = {.p = p, .n = hh.len};
        got_hello = hh.type == (HV_HELLO | HV_REPLY) && hh.req == 77 && hv_get_u64(&rd) == 0xfeedull;
        free(p);
    }
    CHECK(got_hello);
    free(in);
    close(fd);
    /* the others are served still */
    CHECK(keep && roundtrip_ok(2));
    CHECK(roundtrip_ok(3));
    cli_close(keep);
}

TEST(stalled_frame_resync)
{
    /* a guest process dies mid-frame on a stream that outlives it: after
     * the frame time-out the daemon drops it, and a new HELLO is served */
    int fd = raw_open(4);
    CHECK(fd >= 0);
    if (fd < 0) return;
    HvHdr hd = {.version = 1, .type = HV_BUF_WRITE, .len = 100, .req = 5};
    unsigned char h[HV_HDR_BYTES];
    hv_hdr_encode(&hd, h);
    hv_write_all(fd, h, sizeof h, 1000);
    hv_write_all(fd, "0123456789", 10, 1000);
    HvIn *in = calloc(1, sizeof *in);
    in->fd = fd;
    int got_timeout = 0, got_hello = 0;
    for (int i = 0; i < 3 && !got_timeout; i++) {
        HvHdr hh;
        unsigned char *p;
        if (hv_recv(in, &hh, &p, HV_MAX_FRAME, 3000, 3000) != HV_RECV_OK) continue;
        got_timeout = hh.type == HV_ERROR;
        free(p);
    }
    CHECK(got_timeout);
    HvMsg m = {0};
    hv_msg_begin(&m, HV_HELLO, 6);
    hv_put_u64(&m, 99);
    hv_put_u32(&m, 1);
    hv_put_u32(&m, 1);
    hv_send(fd, &m, 1000);
    hv_msg_free(&m);
    for (int i = 0; i < 3 && !got_hello; i++) {
        HvHdr hh;
        unsigned char *p;
        if (hv_recv(in, &hh, &p, HV_MAX_FRAME, 3000, 3000) != HV_RECV_OK) continue;
        got_hello = hh.type == (HV_HELLO | HV_REPLY) && hh.req == 6;
        free(p);
    }
    CHECK(got_hello);
    free(in);
    close(fd);
}

TEST(killed_client_frees_its_session)
{
    Cli *other = cli_open(5);
    uint32_t ob = other ? c_buf(other, 1024, NULL, NULL) : 0;
    CHECK(ob != 0);
    Cli *c = cli_open(5);
    CHECK(c != NULL);
    if (!c || !other) return;
    uint32_t mod = c_compile(c, SPIN);
    float *y = calloc(65536, sizeof *y);
    uint32_t by = c_buf(c, 65536, y, NULL);
    free(y);
    CHECK(mod && by);
    Arg a[2] = {{"reps", PX_ARG_UINT, 0, 0, 2000}, {"y", PX_ARG_BUFFER, by, 0, 0}};
    uint64_t t1 = c_launch(c, mod, a, 2, NULL), t2 = c_launch(c, mod, a, 2, NULL);
    CHECK(t1 && t2);
    PxVmStats v;
    px_sched_vm_stats(S, 5, &v);
    CHECK(v.mem_used_bytes >= 65536 * 4 + 1024 * 4);
    close(c->fd); /* dies mid-launch: no wait */
    free(c);
    int clean = 0;
    for (int i = 0; i < 600 && !clean; i++) {
        sleep_ms(50);
        px_sched_vm_stats(S, 5, &v);
        clean = v.queued == 0 && v.mem_used_bytes == 1024 * 4;
    }
    CHECK_MSG(clean, "VM 5 holds %llu bytes, %d queued", (unsigned long long)v.mem_used_bytes, v.queued);
    /* the other client's buffer stays */
    float got[1024];
    CHECK(c_read(other, ob, got, 1024) == 0);
    cli_close(other);
}

TEST(quota_refusal)
{
    Cli *c = cli_open(6);
    CHECK(c != NULL);
    if (!c) return;
    uint32_t code = 0;
    CHECK(c_buf(c, 64 << 20, NULL, &code) == 0 && code == PX_ERR_QUOTA);
    /* the refusal changed nothing: a buffer that fits still does */
    CHECK(c_buf(c, 1024, NULL, NULL) != 0);
    cli_close(c);
}

/* BUF_WRITE_SHM with a descriptor fd (-1: none); the reply's code (0 ok). */
static uint32_t shm_write(Cli *c, uint32_t id, uint64_t bytes, int fd)
{
    HvMsg m = {0};
    hv_msg_begin(&m, HV_BUF_WRITE_SHM, 0);
    hv_put_u32(&m, id);
    hv_put_u64(&m, bytes);
    uint16_t type = 0;
    unsigned char *p = NULL;
    uint32_t n = 0, code = 1;
    char err[256];
    if (hv_call_fd(c->fd, &c->in, &m, fd, &type, &p, &n, 30000, err, sizeof err) == 0) {
        HvRd rd = {.p = p, .n = n};
        code = type == (HV_BUF_WRITE_SHM | HV_REPLY) ? 0 : type == HV_ERROR ? hv_get_u32(&rd) : 1;
    }
    hv_msg_free(&m);
    free(p);
    return code;
}

TEST(shared_memory_path)
{
    Cli *c = cli_open(2);
    CHECK(c != NULL);
    if (!c) return;
    enum { N = 1 << 18 };
    uint32_t b = c_buf(c, N, NULL, NULL);
    void *map;
    int fd = hv_shm_create((size_t)N * 4, &map);
    CHECK(b && fd >= 0);
    for (int i = 0; i < N; i++) ((float *)map)[i] = (float)(i % 977);
    CHECK(shm_write(c, b, (uint64_t)N * 4, fd) == 0);
    float *got = malloc((size_t)N * 4);
    CHECK(c_read(c, b, got, N) == 0 && !memcmp(got, map, (size_t)N * 4));
    free(got);
    /* refusals, none fatal: the wrong size, no descriptor, an unsealed
     * memfd (it could shrink under the daemon's mapping), a pipe */
    CHECK(shm_write(c, b, 16, fd) == PX_ERR_SHAPE);
    CHECK(shm_write(c, b, (uint64_t)N * 4, -1) == PX_ERR_INVALID);
    int raw = memfd_create("unsealed", MFD_CLOEXEC);
    CHECK(raw >= 0 && ftruncate(raw, (off_t)N * 4) == 0);
    CHECK(shm_write(c, b, (uint64_t)N * 4, raw) == PX_ERR_INVALID);
    int pp[2];
    CHECK(pipe(pp) == 0);
    CHECK(shm_write(c, b, (uint64_t)N * 4, pp[0]) == PX_ERR_INVALID);
    close(pp[0]), close(pp[1]), close(raw), close(fd);
    munmap(map, (size_t)N * 4);
    CHECK(roundtrip_ok(2));
    cli_close(c);
}

TEST(compile_cache_shared_across_vms)
{
    PxCacheStats a, b;
    px_sched_cache_stats(S, &a);
    Cli *c1 = cli_open(7), *c2 = cli_open(8);
    CHECK(c1 && c2);
    if (!c1 || !c2) return;
    /* a source no other test compiled: one miss, then a hit for the other VM */
    const char *src = "GPU_KERNEL twice\nGPU_PARAM x float[N]\nGPU_PARAM z float[N]\nGPU_THREAD_CODE:\n"
                      "    PARALLEL_MAP x -> z : x + x\nGPU_END\n";
    uint32_t m1 = c_compile(c1, src), m2 = c_compile(c2, src);
    CHECK(m1 && m2);
    px_sched_cache_stats(S, &b);
    CHECK(b.misses == a.misses + 1 && b.hits == a.hits + 1);
    /* each VM runs it on its own data */
    float x1[4] = {1, 2, 3, 4}, x2[4] = {10, 20, 30, 40}, z[4];
    uint32_t b1 = c_buf(c1, 4, x1, NULL), b2 = c_buf(c2, 4, x2, NULL), z1 = 0, z2 = 0;
    Arg a1[1] = {{"x", PX_ARG_BUFFER, b1, 0, 0}}, a2[1] = {{"x", PX_ARG_BUFFER, b2, 0, 0}};
    uint64_t t1 = c_launch(c1, m1, a1, 1, NULL), t2 = c_launch(c2, m2, a2, 1, NULL);
    CHECK(c_wait(c1, t1, &z1) == PX_OK && c_wait(c2, t2, &z2) == PX_OK);
    CHECK(c_read(c1, z1, z, 4) == 0 && z[3] == 8);
    CHECK(c_read(c2, z2, z, 4) == 0 && z[3] == 80);
    /* VM 7 frees its module: VM 8's reference keeps the code */
    CHECK(c_free(c1, HV_MOD_FREE, m1) == 0);
    uint64_t t3 = c_launch(c2, m2, a2, 1, NULL);
    CHECK(t3 && c_wait(c2, t3, NULL) == PX_OK);
    /* the cache is bounded (4 entries here): more sources evict, and a
     * module evicted from the cache still runs for the VM that holds it */
    char more[512];
    for (int i = 0; i < 6; i++) {
        snprintf(more, sizeof more, "GPU_KERNEL k%d\nGPU_PARAM x float[N]\nGPU_PARAM z float[N]\nGPU_THREAD_CODE:\n"
                 "    PARALLEL_MAP x -> z : x + %d\nGPU_END\n", i, i);
        CHECK(c_compile(c1, more) != 0);
    }
    px_sched_cache_stats(S, &b);
    CHECK(b.entries <= 4 && b.evictions >= a.evictions + 3);
    uint64_t t4 = c_launch(c2, m2, a2, 1, NULL);
    CHECK(t4 && c_wait(c2, t4, NULL) == PX_OK);
    cli_close(c1);
    cli_close(c2);
}

/* ---- load: 64 clients over 8 VMs, 10,000 submissions ------------------------------- */

#define LOAD_THREADS 64
#define LOAD_TOTAL 10000
#define LOAD_N 64
static atomic_int load_ok, load_bad;
static uint64_t load_tickets[8][LOAD_TOTAL];
static int load_nt[8];
static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;

static void *load_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint32_t vm = (uint32_t)(id % 8) + 1;
    int count = LOAD_TOTAL / LOAD_THREADS + (id < LOAD_TOTAL % LOAD_THREADS);
    Cli *c = cli_open(vm);
    if (!c) {
        atomic_fetch_add(&load_bad, count);
        return NULL;
    }
    uint32_t mod = c_compile(c, SAXPY);
    float x[LOAD_N], y[LOAD_N], z[LOAD_N];
    for (int i = 0; i < LOAD_N; i++) x[i] = (float)(i + id), y[i] = (float)(3 * i - id);
    uint32_t bx = c_buf(c, LOAD_N, x, NULL), by = c_buf(c, LOAD_N, y, NULL);
    for (int k = 0; k < count; k++) {
        float av = (float)(k % 17 - 8);
        Arg a[3] = {{"a", PX_ARG_FLOAT, 0, av, 0}, {"x", PX_ARG_BUFFER, bx, 0, 0}, {"y", PX_ARG_BUFFER, by, 0, 0}};
        uint64_t t = mod && bx && by ? c_launch(c, mod, a, 3, NULL) : 0;
        uint32_t bz = 0;
        int ok = t && c_wait(c, t, &bz) == PX_OK && bz && c_read(c, bz, z, LOAD_N) == 0;
        for (int i = 0; ok && i < LOAD_N; i++) ok = z[i] == av * x[i] + y[i];
        if (bz) c_free(c, HV_BUF_FREE, bz);
        atomic_fetch_add(ok ? &load_ok : &load_bad, 1);
        if (t) {
            pthread_mutex_lock(&load_mu);
            if (load_nt[vm - 1] < LOAD_TOTAL) load_tickets[vm - 1][load_nt[vm - 1]++] = t;
            pthread_mutex_unlock(&load_mu);
        }
    }
    cli_close(c);
    return NULL;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

TEST(load_64_clients_8_vms)
{
    /* a warm-up round makes the lasting allocations (compiler, driver) */
    for (uint32_t vm = 1; vm <= 8; vm++) roundtrip_ok(vm);
    while (hv_server_conn_count(SV)) sleep_ms(10);
    malloc_trim(0);
    long before = rss_kb();
    pthread_t th[LOAD_THREADS];
    for (int i = 0; i < LOAD_THREADS; i++) pthread_create(&th[i], NULL, load_thread, (void *)(intptr_t)i);
    for (int i = 0; i < LOAD_THREADS; i++) pthread_join(th[i], NULL);
    CHECK_MSG(atomic_load(&load_ok) == LOAD_TOTAL && atomic_load(&load_bad) == 0, "%d ok, %d bad of %d",
              atomic_load(&load_ok), atomic_load(&load_bad), LOAD_TOTAL);
    /* none duplicated: every ticket of a VM is distinct */
    int dup = 0, total = 0;
    for (int v = 0; v < 8; v++) {
        qsort(load_tickets[v], (size_t)load_nt[v], sizeof(uint64_t), cmp_u64);
        for (int i = 1; i < load_nt[v]; i++) dup += load_tickets[v][i] == load_tickets[v][i - 1];
        total += load_nt[v];
    }
    CHECK(dup == 0 && total == LOAD_TOTAL);
    for (int i = 0; i < 500 && hv_server_conn_count(SV); i++) sleep_ms(10);
    CHECK(hv_server_conn_count(SV) == 0);
    int clean = 1;
    for (uint32_t vm = 1; vm <= 8; vm++) {
        PxVmStats v;
        px_sched_vm_stats(S, vm, &v);
        clean &= v.queued == 0 && v.mem_used_bytes == 0; /* every session freed its objects */
    }
    CHECK(clean);
    malloc_trim(0);
    long after = rss_kb();
    printf("load: %d submissions, VmRSS %ld kB before, %ld kB after\n", LOAD_TOTAL, before, after);
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    /* a sanitizer's shadow memory and quarantine grow with the work: no
     * statement about the daemon's own memory can be made there */
    (void)before, (void)after;
#else
    CHECK_MSG(after < before + 64 * 1024, "VmRSS grew from %ld to %ld kB", before, after);
#endif
}

static uint32_t ctl(Cli *k, uint16_t type, uint32_t id, const char *spec)
{
    HvMsg m = {0};
    hv_msg_begin(&m, type, 0);
    hv_put_u32(&m, id);
    if (spec) hv_put_str(&m, spec);
    HvRd rd;
    uint32_t code = 1;
    uint16_t t = cli_call(k, &m, &rd, &code);
    free((void *)rd.p);
    return t == (type | HV_REPLY) ? 0 : code;
}

/* One VM cannot take every connection: past its own bound (64) its
 * sockets are closed at accept, and another VM still connects. */
TEST(connection_bound_per_vm)
{
    int fds[70], n = 0, closed = 0;
    for (int i = 0; i < 70; i++)
        if ((fds[n] = raw_open(4)) >= 0) n++;
    sleep_ms(300);
    for (int i = 0; i < n; i++) {
        char b;
        ssize_t k = recv(fds[i], &b, 1, MSG_DONTWAIT);
        closed += k == 0; /* closed by the daemon: end of stream */
    }
    CHECK_MSG(closed >= 70 - 64 && closed <= 70 - 64 + 2, "%d of %d closed", closed, n);
    CHECK(roundtrip_ok(2));
    for (int i = 0; i < n; i++) close(fds[i]);
    for (int i = 0; i < 300 && hv_server_conn_count(SV); i++) sleep_ms(10);
    CHECK(roundtrip_ok(4));
}

/* vm rm ends the VM's connections; a VM added again with the same id is a
 * new tenant: nothing of the old one reaches it, nor the old connections. */
TEST(vm_rm_and_readd)
{
    Cli *k = cli_open(0), *c = cli_open(8);
    CHECK(k && c);
    if (!k || !c) return;
    float secret[4] = {7, 7, 7, 7}, got[4];
    uint32_t b = c_buf(c, 4, secret, NULL);
    CHECK(b != 0);
    CHECK(ctl(k, HV_CTL_VM_RM, 8, NULL) == 0);
    CHECK(c_read(c, b, got, 4) != 0); /* the old connection serves nothing */
    uint32_t r = 1;
    for (int i = 0; i < 200 && (r = ctl(k, HV_CTL_VM_ADD, 8, "mem=16M,share=12")) == PX_ERR_BUSY; i++) sleep_ms(10);
    CHECK(r == 0);
    Cli *n = NULL;
    for (int i = 0; i < 200 && !n; i++) {
        sleep_ms(10);
        n = cli_open(8);
    }
    CHECK(n != NULL);
    CHECK(n && c_read(n, b, got, 4) == PX_ERR_NOT_FOUND);
    CHECK(roundtrip_ok(8));
    cli_close(n);
    cli_close(c);
    cli_close(k);
}

/* Stop (SIGTERM's path): the running launch finishes, the queued ones get
 * an error reply, every ticket gets exactly one, the sockets go. Last. */
TEST(graceful_stop)
{
    Cli *c = cli_open(3);
    CHECK(c != NULL);
    if (!c) return;
    uint32_t mod = c_compile(c, SPIN);
    float *y = calloc(65536, sizeof *y);
    uint32_t by = c_buf(c, 65536, y, NULL);
    free(y);
    Arg a[2] = {{"reps", PX_ARG_UINT, 0, 0, 3000}, {"y", PX_ARG_BUFFER, by, 0, 0}};
    uint64_t t[4];
    for (int i = 0; i < 4; i++) t[i] = c_launch(c, mod, a, 2, NULL);
    CHECK(t[0] && t[1] && t[2] && t[3]);
    PxVmStats v = {0};
    for (int i = 0; i < 2000 && !v.running; i++) {
        px_sched_vm_stats(S, 3, &v);
        if (!v.running) sleep_ms(1);
    }
    hv_server_stop(SV);
    int res[4];
    for (int i = 0; i < 4; i++) res[i] = c_wait(c, t[i], NULL);
    /* the first was running (or done) when the stop came; at least the last
     * ones were queued behind it */
    CHECK_MSG(res[0] == PX_OK, "first launch: %d", res[0]);
    CHECK_MSG(res[3] == PX_ERR_CANCELLED, "last launch: %d", res[3]);
    for (int i = 1; i < 4; i++) CHECK(res[i] == PX_OK || res[i] == PX_ERR_CANCELLED);
    /* no new launches; the sockets are gone */
    uint32_t code = 0;
    uint64_t late = c_launch(c, mod, a, 2, &code);
    CHECK(late == 0);
    char path[128];
    snprintf(path, sizeof path, "%s/vm3.sock", DIR_);
    CHECK(access(path, F_OK) != 0);
    cli_close(c);
}

static void quiet(void *u, PxLogLevel lv, const char *m) {}
static void *serve(void *a)
{
    hv_server_run(a);
    return NULL;
}

int main(void)
{
    PxConfig cfg;
    px_config_default(&cfg);
    cfg.log = quiet;
    char *err;
    if (px_context_create(&cfg, &ctx, &err)) {
        printf("no device: %s\n0 passed, 1 failed\n", err ? err : "?");
        return 1;
    }
    PxSchedConfig sc;
    px_sched_config_default(&sc);
    sc.ndevices = 1;
    sc.devices[0] = ctx;
    sc.capacity[0] = 1ull << 30;
    sc.compile_cache = 4;
    if (px_sched_create(&sc, &S)) {
        printf("scheduler: %s\n0 passed, 1 failed\n", px_sched_last_error());
        return 1;
    }
    for (uint32_t id = 1; id <= 8; id++) {
        PxVmConfig c = {.id = id, .share = 12, .mem_quota = id == 6 ? 1u << 20 : 64u << 20, .device = 0};
        px_sched_vm_create(S, &c);
    }
    snprintf(DIR_, sizeof DIR_, "/tmp/px-test-hvd.%d", (int)getpid());
    HvServerConfig hc = {.dir = DIR_, .frame_timeout_ms = 300};
    char e[256];
    SV = hv_server_create(&hc, S, e, sizeof e);
    if (!SV) {
        printf("server: %s\n0 passed, 1 failed\n", e);
        return 1;
    }
    pthread_t th;
    pthread_create(&th, NULL, serve, SV);
    RUN(shape_decoder);
    RUN(saxpy_roundtrip);
    RUN(isolation);
    RUN(hostile_frames);
    RUN(stalled_frame_resync);
    RUN(killed_client_frees_its_session);
    RUN(quota_refusal);
    RUN(shared_memory_path);
    RUN(compile_cache_shared_across_vms);
    RUN(load_64_clients_8_vms);
    RUN(connection_bound_per_vm);
    RUN(vm_rm_and_readd);
    RUN(graceful_stop);
    hv_server_stop(SV);
    pthread_join(th, NULL);
    hv_server_destroy(SV);
    rmdir(DIR_);
    px_context_destroy(ctx);
    return TEST_DONE();
}
