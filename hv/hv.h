/*
 * hv.h — the hypervisor's guest protocol and service layer (pxhvd, pxctl,
 * pxrun --vm). Sections are named after the .c files:
 *
 *   proto.c   the wire format (docs/PROTOCOL.md): frame headers, bounded
 *             payload readers/writers, buffered stream input with resync.
 *             No dependency beyond libc: the guest client links it.
 *   client.c  pxrun --vm: sends source and data over any byte stream (a
 *             Unix socket or a serial-port device), prints what a local
 *             run prints. No Vulkan, no LLVM: the static guest build.
 *   server.c  the daemon: one listening socket per VM plus control.sock,
 *             a thread per connection over a PxSched (include/pxsched.h).
 *   metrics.c the scheduler's statistics in the Prometheus text format.
 *   http.c    pxhvd --metrics: the read-only HTTP endpoint (libmicrohttpd)
 *             with /metrics, /api/status and the dashboard (hv/dash/).
 *
 * Ownership: an HvServer owns its PxSched, sockets and connection threads.
 * A connection (HvConn) owns its session: the buffers, modules and tickets
 * it made in its VM, freed when the connection closes or a new HELLO
 * resets the stream. A library never prints and never exits.
 */
#ifndef PX_HV_H
#define PX_HV_H

#include <stddef.h>
#include <stdint.h>

/* ===== proto.c: the wire format ===== */

#define HV_MAGIC 0x56485850u     /* bytes 'P' 'X' 'H' 'V' */
#define HV_VERSION 1
#define HV_HDR_BYTES 24
#define HV_MAX_FRAME (64u << 20) /* payload bytes of one frame */
#define HV_MAX_NAME 255          /* kernel, parameter, file, VM names */
#define HV_MAX_SOURCE (1u << 20) /* kernel source text */
#define HV_MAX_TEXT 65536        /* diagnostics, error messages */
#define HV_MAX_ARGS 64           /* arguments of one launch */
#define HV_MAX_PARAMS 64         /* parameters described for one kernel */
#define HV_MAX_OBJS 4096         /* buffers + modules + tickets of one session */

typedef enum HvType {
    HV_HELLO = 1,      /* u64 nonce, u32 min_version, u32 max_version */
    HV_COMPILE = 2,    /* str file, str kernel ("" = the only one), str source */
    HV_BUF_CREATE = 3, /* u32 dtype, u32 rank, i64 shape[rank] */
    HV_BUF_WRITE = 4,  /* u32 buffer, blob data (the whole buffer) */
    HV_BUF_READ = 5,   /* u32 buffer */
    HV_BUF_FREE = 6,   /* u32 buffer */
    HV_LAUNCH = 7,     /* u32 module, str kernel, u32 nargs, nargs x arg */
    HV_WAIT = 8,       /* u64 ticket, u32 timeout_ms (capped at 1000) */
    HV_STATS = 9,      /* (empty): this VM's statistics */
    HV_MOD_FREE = 10,  /* u32 module */
    HV_BUF_WRITE_SHM = 11, /* u32 buffer, u64 bytes; a sealed memfd rides with the frame */
    HV_BUF_READ_SHM = 12,  /* u32 buffer, u64 bytes; likewise: the daemon writes into it */
    HV_BUF_INFO = 13,  /* u32 buffer; reply: u32 dtype, u32 rank, u64 shape[rank] */
    HV_RUN = 14,       /* LAUNCH's fields, u32 timeout_ms (capped at 1000): launch and wait
                          in one round trip; reply: u64 ticket, u32 finished, then (finished)
                          WAIT's reply fields */
    /* control.sock only */
    HV_CTL_STATUS = 32,  /* reply: str JSON (the contract's status object) */
    HV_CTL_VM_ADD = 33,  /* u32 id, str spec */
    HV_CTL_VM_RM = 34,   /* u32 id */
    HV_CTL_VM_SET = 35,  /* u32 id, str spec */
    HV_CTL_VM_MIGRATE = 36, /* u32 id, u32 device */
    HV_CTL_TOP = 37,     /* reply: per-VM statistics, binary (pxctl top reads CTL_STATUS's JSON) */
    HV_CTL_POLICY = 38,  /* u32 policy (0 fair, 1 fixed), u32 slice_us, u32 long_slice_us
                            (0: unchanged): px_sched_set_policy, live */
    HV_REPLY = 0x8000,   /* OR'ed into the request's type: success */
    HV_ERROR = 0xFFFF,   /* u32 PxResult, str message, str diagnostics */
} HvType;

typedef struct HvHdr {
    uint32_t magic;
    uint16_t version, type;
    uint32_t len;              /* payload bytes after the header */
    uint32_t req;              /* request id: the reply carries the request's */
    uint32_t flags;            /* 0 in version 1 */
    uint32_t check;            /* FNV-1a of the 20 bytes before it */
} HvHdr;

/* Header bytes <-> struct. hv_hdr_decode: 0 when magic and check hold
 * (version, type and length are the caller's to judge), -1 otherwise. */
void hv_hdr_encode(const HvHdr *h, unsigned char out[HV_HDR_BYTES]);
int hv_hdr_decode(const unsigned char in[HV_HDR_BYTES], HvHdr *h);

/* A growing message. Owner: the caller (hv_msg_free). Every put after an
 * allocation failure or past HV_MAX_FRAME is dropped and sets oom. */
typedef struct HvMsg {
    unsigned char *p;
    size_t n, cap;
    int oom;
} HvMsg;
void hv_msg_begin(HvMsg *m, uint16_t type, uint32_t req); /* reserves the header */
void hv_put_u32(HvMsg *m, uint32_t v);
void hv_put_u64(HvMsg *m, uint64_t v);
void hv_put_f64(HvMsg *m, double v);
void hv_put_bytes(HvMsg *m, const void *p, size_t n); /* u32 length, bytes */
void hv_put_str(HvMsg *m, const char *s);             /* NULL: "" */
/* u32 length n, then room for n bytes the caller fills (NULL on overflow:
 * oom set). The pointer is valid until the next put. */
void *hv_put_space(HvMsg *m, size_t n);
/* Fills the header; 0, or -1 when the message overflowed (oom). */
int hv_msg_end(HvMsg *m);
void hv_msg_free(HvMsg *m);

/* A bounded reader over one payload. Every get past the end or over a
 * limit sets bad and returns 0 / NULL; the caller checks bad once. */
typedef struct HvRd {
    const unsigned char *p;
    size_t n, off;
    int bad;
} HvRd;
uint32_t hv_get_u32(HvRd *r);
uint64_t hv_get_u64(HvRd *r);
double hv_get_f64(HvRd *r);
/* Bytes of at most max: a pointer into the payload, *len its length. */
const void *hv_get_bytes(HvRd *r, size_t max, size_t *len);
/* A string copied into dst (cap bytes, NUL-terminated); bad when longer
 * than cap - 1 or holding a NUL byte. */
void hv_get_str(HvRd *r, char *dst, size_t cap);
/* A string of at most max bytes, malloc'd (free it); NULL and bad on error. */
char *hv_get_strdup(HvRd *r, size_t max);
/* A buffer's description as BUF_INFO's and BUF_READ's replies start: u32
 * dtype, u32 rank, u64 shape[rank]. shape: 4 entries, 1 past the rank.
 * bad when dtype is not 0..3 or rank not 0..4. Returns the element count
 * (0 when bad; the caller bounds it). */
uint64_t hv_get_shape(HvRd *r, uint32_t *dtype, int *rank, int64_t shape[4]);

/* A request decoded and checked against every limit (the daemon's one
 * decoder, fuzzed by tests/fuzz/fuzz_hvproto.c). Pointers point into the
 * payload it was decoded from. */
typedef struct HvArgReq {
    char name[HV_MAX_NAME + 1];
    uint32_t kind;             /* PxArgKind: 0..4 */
    uint32_t buffer;
    double f;
    int64_t i;
} HvArgReq;
typedef struct HvReq {
    uint16_t type;
    uint64_t nonce;            /* HELLO */
    uint32_t vmin, vmax;       /* HELLO */
    char file[HV_MAX_NAME + 1];   /* COMPILE */
    char kernel[HV_MAX_NAME + 1]; /* COMPILE, LAUNCH; "" = the only one */
    const char *source;        /* COMPILE, source_len bytes, not NUL-terminated */
    size_t source_len;
    uint32_t dtype, rank;      /* BUF_CREATE: dtype 0..3, rank 0..4 */
    int64_t shape[4];          /* BUF_CREATE: each 0..2^40 */
    uint32_t id;               /* a buffer, module or VM (1..65535 for CTL_VM_*) */
    const void *data;          /* BUF_WRITE */
    size_t data_len;
    uint64_t bytes;            /* BUF_*_SHM: the buffer's size, 0..2^42 */
    uint32_t nargs;            /* LAUNCH: 0..HV_MAX_ARGS */
    HvArgReq args[HV_MAX_ARGS];
    uint64_t ticket;           /* WAIT */
    uint32_t timeout_ms;       /* WAIT: capped at 1000 */
    char spec[HV_MAX_NAME + 1]; /* CTL_VM_ADD, CTL_VM_SET */
    uint32_t device;           /* CTL_VM_MIGRATE */
    uint32_t policy, slice_us, long_slice_us; /* CTL_POLICY: 0..1; 0..10^7 each */
} HvReq;
/* 0: *q holds the request; -1: malformed (err says what); -2: an unknown
 * type. Trailing bytes after the fields are malformed too. */
int hv_decode_request(uint16_t type, const unsigned char *p, size_t n, HvReq *q, char *err, size_t errsz);

/* Buffered input from a stream fd (socket or character device). */
#define HV_MAX_FDS 4           /* descriptors received and not yet used, per connection */
typedef struct HvIn {
    int fd;
    int resync;                /* skipping garbage to the next valid header */
    int sock;                  /* 0 unknown, 1 a socket (fds may come), 2 not */
    int fds[HV_MAX_FDS];       /* received with the bytes (SCM_RIGHTS), oldest first; more are closed */
    int nfds;
    size_t r, w;               /* unread bytes: buf[r..w) */
    unsigned char buf[65536];
} HvIn;

typedef enum HvRecv {
    HV_RECV_OK = 0,            /* a frame: header in *h, payload in *payload */
    HV_RECV_EOF = -1,          /* the peer closed, or a read error */
    HV_RECV_TIMEOUT = -2,      /* a started frame stalled past the timeout */
    HV_RECV_IDLE = -3,         /* nothing arrived within idle_ms */
    HV_RECV_BADHDR = -4,       /* garbage where a header should start; skipped to resync */
    HV_RECV_TOOBIG = -5,       /* a valid header with len > max_len */
    HV_RECV_NOMEM = -6,
} HvRecv;

/* Reads one frame. Waits up to idle_ms (< 0: for ever) for its first byte,
 * then at most frame_ms between later bytes (HV_RECV_TIMEOUT: the bytes
 * of the stalled frame are dropped and the stream resynchronises). With a
 * bad header it skips forward byte by byte to the next place where a valid
 * header starts (magic and check) and returns HV_RECV_BADHDR once per bad
 * stretch, so a caller can reply.
 * *payload is malloc'd (len + 1 bytes, free it). */
HvRecv hv_recv(HvIn *in, HvHdr *h, unsigned char **payload, uint32_t max_len, int idle_ms, int frame_ms);
/* Writes all of n bytes, waiting at most timeout_ms for the peer to take
 * each part; 0 or -1. */
int hv_write_all(int fd, const void *p, size_t n, int timeout_ms);
/* Sends a finished message (hv_msg_end); 0 or -1. */
int hv_send(int fd, HvMsg *m, int timeout_ms);
/* The same with descriptor passfd riding on its first byte (SCM_RIGHTS;
 * Unix sockets only). */
int hv_send_fd(int fd, HvMsg *m, int passfd, int timeout_ms);
/* The oldest descriptor received on in and not yet taken (the caller
 * owns it), or -1. hv_in_close_fds closes those left. */
int hv_take_fd(HvIn *in);
void hv_in_close_fds(HvIn *in);
/* A memfd of n bytes sealed against shrinking and growing (so a peer's
 * mapping of it can never fault), mapped read-write at *map; the fd or -1. */
int hv_shm_create(size_t n, void **map);
/* Maps a descriptor a peer sent for n bytes: it must be a memfd sealed
 * against shrinking with at least n bytes. NULL with err otherwise. */
void *hv_shm_map(int fd, size_t n, int writable, char *err, size_t errsz);
/* The default socket directory of the contract: $PX_HVD, else
 * $XDG_RUNTIME_DIR/px, else /tmp/px-$UID. */
void hv_default_dir(char *out, size_t n);
const char *hv_result_name(uint32_t r); /* PxResult's text, without px.h's library */

/* ===== client.c: pxrun --vm ===== */

/* The whole of `pxrun --vm N ...`: argv as pxrun's. Prints what a local
 * run prints (stdout) and errors as one `pxrun: error: ...` line (stderr);
 * returns the exit status (0, 1 for any error or refusal, 2 usage). The
 * one part of the library that prints: it is a program's body. */
int hv_client_main(int argc, char **argv);

/* A connection to a daemon for programs (tests, bench): socket path or
 * serial device. 0 and *fd, or -1 with err. Sends HELLO and waits for its
 * reply (resending it on a serial port until the stream is in step). */
int hv_connect(const char *path, int *fd, uint32_t *vm, char *device, size_t devsz, char *err, size_t errsz);
/* One request and its reply (the same request id, other frames dropped):
 * 0 with the reply's payload (malloc'd) and type, or -1 with err. */
int hv_call(int fd, HvIn *in, HvMsg *req, uint16_t *rtype, unsigned char **payload, uint32_t *plen,
            int timeout_ms, char *err, size_t errsz);
/* hv_call with descriptor passfd riding on the request (BUF_*_SHM). */
int hv_call_fd(int fd, HvIn *in, HvMsg *req, int passfd, uint16_t *rtype, unsigned char **payload, uint32_t *plen,
               int timeout_ms, char *err, size_t errsz);
/* BUF_WRITE_SHM or BUF_READ_SHM (type) of the `bytes` bytes of buffer id
 * through a sealed memfd (hv_shm_create): data is copied in before a
 * write, out after a read the daemon did not refuse. 0 with the reply as
 * hv_call's, -1 with err, 1 when no memfd could be made (use the stream). */
int hv_call_shm(int fd, HvIn *in, uint16_t type, uint32_t id, void *data, size_t bytes, uint16_t *rtype,
                unsigned char **payload, uint32_t *plen, int timeout_ms, char *err, size_t errsz);

/* ===== server.c: the daemon ===== */

typedef struct HvServer HvServer;
typedef struct HvServerConfig {
    const char *dir;           /* the socket directory */
    int frame_timeout_ms;      /* a started frame's bytes must keep coming; default 2000 */
    int max_conns;             /* connections at once, all sockets; default 256 */
    int max_conns_per_vm;      /* of one VM's socket (or control.sock), so no VM can take
                                  every connection from the others; default 64 */
    uint64_t max_inflight;     /* payload bytes being received at once, all connections; default 512 MiB */
    int verbose;
    void (*log)(void *user, const char *msg); /* from any thread */
    void *log_user;
} HvServerConfig;

struct PxSched;
/* Takes the scheduler (px_sched_destroy'd by hv_server_destroy). Creates
 * dir (0700) when missing; refuses a dir that is not a private directory of
 * this user. Listens on vm<ID>.sock for each VM existing now and later
 * (vm add) and on control.sock. NULL with err on failure. */
HvServer *hv_server_create(const HvServerConfig *cfg, struct PxSched *s, char *err, size_t errsz);
/* Serves until hv_server_stop (from any thread or a signal handler's
 * helper thread). Then: no new connections, no new launches; running
 * launches finish, queued ones get an error reply; sockets removed. */
void hv_server_run(HvServer *sv);
void hv_server_stop(HvServer *sv); /* async-signal-safe */
void hv_server_destroy(HvServer *sv);
/* Live sessions and connections (tests). */
int hv_server_conn_count(HvServer *sv);

/* ===== metrics.c: the Prometheus text format ===== */

/* Every metric of docs/HYPERVISOR.md "Metrics" for the scheduler's devices
 * and VMs now: malloc'd (free it), *len its length; NULL when out of
 * memory. Takes PxSched.mu briefly per VM, never across the rendering. */
char *hv_metrics_text(struct PxSched *s, size_t *len);

/* ===== http.c: the metrics endpoint ===== */

typedef struct HvHttp HvHttp;
typedef struct HvHttpConfig {
    const char *addr;          /* HOST:PORT, [V6]:PORT; port 0: any free port */
    int max_conns;             /* connections at once; default 128 */
    int max_conns_per_ip;      /* from one address; default 32 */
    int idle_timeout_s;        /* a connection silent this long is closed; default 10 */
    int verbose;               /* libmicrohttpd's own messages to log */
    void (*log)(void *user, const char *msg); /* from the server's thread */
    void *log_user;
} HvHttpConfig;

/* Binds addr and serves GET /metrics, /api/status, / (the dashboard),
 * /dash.js and /dash.css from a thread of its own over s, which must outlive it (stop
 * it before px_sched_destroy / hv_server_destroy). NULL with err when the
 * address is malformed or cannot be bound. */
HvHttp *hv_http_start(const HvHttpConfig *cfg, struct PxSched *s, char *err, size_t errsz);
/* HOST:PORT ([V6]:PORT for an IPv6 literal) split into host and port
 * (hn, pn bytes); -1 when malformed or the port is over 65535. */
int hv_http_parse_addr(const char *addr, char *host, size_t hn, char *port, size_t pn);
int hv_http_port(const HvHttp *h); /* the bound port (the one chosen for 0) */
/* Closes the socket and every connection; waits for a request being served. */
void hv_http_stop(HvHttp *h);

#endif
