/* http.c — pxhvd's read-only HTTP endpoint (px-hypervisor.md section 6)
 * on libmicrohttpd: GET /metrics, /api/status, / and the dashboard's
 * script and style. One polling thread of libmicrohttpd serves every connection
 * (no thread per client, so slow clients hold no threads); connections,
 * per-address connections, request memory and idle time are all bounded.
 * Anything but GET or HEAD is 405, an unknown path 404. */
#include "hv/hv.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pxsched.h"

/* the dashboard, embedded at build time (hv/dash/, build/gen/dash.c) */
extern const unsigned char hv_dash_index_html[], hv_dash_dash_js[], hv_dash_dash_css[];
extern const size_t hv_dash_index_html_len, hv_dash_dash_js_len, hv_dash_dash_css_len;

/* Owned by its starter (hv_http_stop frees it). Nothing in it changes
 * after start, so libmicrohttpd's thread reads it without a lock; the
 * scheduler guards its own state (every px_sched_* call locks). */
struct HvHttp {
    HvHttpConfig cfg;
    struct PxSched *s;         /* not owned: outlives the endpoint */
    struct MHD_Daemon *d;
    int fd;                    /* the listening socket: libmicrohttpd's once started */
    int port;
};

/* libmicrohttpd's own messages go to the caller's log, never to stderr */
static void mhd_log(void *u, const char *fmt, va_list ap)
{
    HvHttp *h = u;
    if (!h->cfg.log || !h->cfg.verbose) return;
    char buf[512];
    int k = snprintf(buf, sizeof buf, "metrics: ");
    vsnprintf(buf + k, sizeof buf - (size_t)k, fmt, ap);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '\n') buf[--n] = 0;
    h->cfg.log(h->cfg.log_user, buf);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type, struct MHD_Response *r)
{
    if (!r) return MHD_NO; /* out of memory: libmicrohttpd closes the connection */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy", "default-src 'self'");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result e = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return e;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned code, const char *msg)
{
    return reply(c, code, "text/plain; charset=utf-8",
                 MHD_create_response_from_buffer(strlen(msg), (void *)msg, MHD_RESPMEM_PERSISTENT));
}

/* A body malloc'd by its producer (NULL: out of memory), handed to
 * libmicrohttpd, which frees it. */
static enum MHD_Result owned(struct MHD_Connection *c, const char *type, char *body, size_t len)
{
    if (!body) return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n");
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) free(body); /* not taken */
    return reply(c, MHD_HTTP_OK, type, r);
}

static enum MHD_Result embedded(struct MHD_Connection *c, const char *type, const unsigned char *p, size_t n)
{
    return reply(c, MHD_HTTP_OK, type, MHD_create_response_from_buffer(n, (void *)p, MHD_RESPMEM_PERSISTENT));
}

static enum MHD_Result handle(void *u, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **state)
{
    HvHttp *h = u;
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
        return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "read-only: GET or HEAD\n");
    /* a GET with a body: answered once the first call comes; the body is
     * discarded by libmicrohttpd, never stored */
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (!strcmp(url, "/metrics")) {
        size_t n = 0;
        char *body = hv_metrics_text(h->s, &n);
        return owned(c, "text/plain; version=0.0.4; charset=utf-8", body, n);
    }
    if (!strcmp(url, "/api/status")) {
        char *j = px_sched_status_json(h->s);
        return owned(c, "application/json", j, j ? strlen(j) : 0);
    }
    if (!strcmp(url, "/") || !strcmp(url, "/index.html"))
        return embedded(c, "text/html; charset=utf-8", hv_dash_index_html, hv_dash_index_html_len);
    if (!strcmp(url, "/dash.js"))
        return embedded(c, "text/javascript; charset=utf-8", hv_dash_dash_js, hv_dash_dash_js_len);
    if (!strcmp(url, "/dash.css")) return embedded(c, "text/css; charset=utf-8", hv_dash_dash_css, hv_dash_dash_css_len);
    return text(c, MHD_HTTP_NOT_FOUND, "not found: /metrics, /api/status or /\n");
}

int hv_http_parse_addr(const char *a, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon = strrchr(a, ':');
    if (!colon || !colon[1] || strlen(colon + 1) >= pn) return -1;
    const char *h0 = a, *h1 = colon;
    if (*a == '[') {
        if (colon[-1] != ']') return -1;
        h0++, h1--;
    }
    if (h1 <= h0 || (size_t)(h1 - h0) >= hn || memchr(h0, '[', (size_t)(h1 - h0)) || memchr(h0, ']', (size_t)(h1 - h0)))
        return -1;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    snprintf(host, hn, "%.*s", (int)(h1 - h0), h0);
    snprintf(port, pn, "%s", colon + 1);
    return atoi(port) > 65535 ? -1 : 0;
}

/* The listening socket at the address, bound and listening; -1 with err. */
static int listen_on(const char *addr, int *port, char *err, size_t errsz)
{
    char host[256], serv[8];
    if (hv_http_parse_addr(addr, host, sizeof host, serv, sizeof serv)) {
        snprintf(err, errsz, "--metrics %s: expected HOST:PORT (an IPv6 address in brackets)", addr);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai;
    int e = getaddrinfo(host, serv, &hints, &ai);
    if (e) {
        snprintf(err, errsz, "--metrics %s: %s", addr, gai_strerror(e));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
        snprintf(err, errsz, "--metrics %s: %s", addr, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

HvHttp *hv_http_start(const HvHttpConfig *cfg, struct PxSched *s, char *err, size_t errsz)
{
    HvHttp *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    h->cfg = *cfg;
    if (h->cfg.max_conns <= 0) h->cfg.max_conns = 128;
    if (h->cfg.max_conns_per_ip <= 0) h->cfg.max_conns_per_ip = 32;
    if (h->cfg.idle_timeout_s <= 0) h->cfg.idle_timeout_s = 10;
    h->s = s;
    if ((h->fd = listen_on(cfg->addr, &h->port, err, errsz)) < 0) {
        free(h);
        return NULL;
    }
    h->d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, h, MHD_OPTION_LISTEN_SOCKET, h->fd,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_CONNECTION_LIMIT, (unsigned)h->cfg.max_conns,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)h->cfg.max_conns_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)h->cfg.idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errsz, "--metrics %s: the HTTP server did not start", cfg->addr);
        close(h->fd);
        free(h);
        return NULL;
    }
    return h;
}

int hv_http_port(const HvHttp *h) { return h ? h->port : 0; }

void hv_http_stop(HvHttp *h)
{
    if (!h) return;
    MHD_stop_daemon(h->d); /* closes the listening socket too (never quiesced) */
    free(h);
}
