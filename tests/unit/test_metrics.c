/* test_metrics.c — the statistics behind pxhvd's metrics (sched/stats.c),
 * their Prometheus rendering (hv/metrics.c) and the HTTP endpoint
 * (hv/http.c), in-process, so ASan and TSan see the endpoint's thread
 * reading the scheduler while launches run. Expected values come from what
 * the test did (VMs made, launches run and cancelled), never from the code
 * under test; no time is asserted. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "hv/hv.h"
#include "pxtest.h"
#include "schedtest.h"
#include "test.h"

static const char *SAXPY = "GPU_KERNEL saxpy\nGPU_PARAM a float\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\n"
                           "GPU_THREAD_CODE:\n    PARALLEL_MAP x y -> y : a * x + y\nGPU_END\n";

/* A VM with SAXPY compiled and x, y of n floats: the module id, 0 on error. */
static uint32_t saxpy_setup(uint32_t vm, int64_t n, uint32_t *x, uint32_t *y)
{
    uint32_t m = compile(vm, SAXPY);
    if (!m || !(*x = fbuf(vm, n, NULL)) || !(*y = fbuf(vm, n, NULL))) return 0;
    return m;
}

static PxResult saxpy_submit(uint32_t vm, uint32_t m, uint32_t x, uint32_t y, uint64_t *t)
{
    PxArg a[3] = {{.name = "a", .kind = PX_ARG_FLOAT, .f = 2},
                  {.name = "x", .kind = PX_ARG_BUFFER, .buffer = x},
                  {.name = "y", .kind = PX_ARG_BUFFER, .buffer = y}};
    return px_vm_submit(S, vm, m, NULL, a, 3, t);
}

static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p += n)
        if ((p == text || p[-1] == '\n') && p[n] == '\n') return 1;
    return 0;
}

static int count(const char *text, const char *s)
{
    int k = 0;
    for (const char *p = text; (p = strstr(p, s)); p += strlen(s)) k++;
    return k;
}

TEST(zeros_from_creation)
{
    CHECK(vm_on(7, 0, 20, 1 << 20));
    size_t n = 0;
    char *t = hv_metrics_text(S, &n);
    CHECK(t && strlen(t) == n);
    if (!t) return;
    const char *want[] = {
        "px_vm_gpu_seconds_total{vm=\"7\",incarnation=\"1\",device=\"0\"} 0",
        "px_vm_memory_quota_bytes{vm=\"7\",incarnation=\"1\",device=\"0\"} 1048576",
        "px_vm_memory_used_bytes{vm=\"7\",incarnation=\"1\",device=\"0\"} 0",
        "px_vm_share_ratio{vm=\"7\",incarnation=\"1\",device=\"0\"} 0.2",
        "px_vm_share_achieved_ratio{vm=\"7\",incarnation=\"1\",device=\"0\",window=\"10s\"} 0",
        "px_vm_queue_depth{vm=\"7\",incarnation=\"1\",device=\"0\"} 0",
        "px_vm_launches_total{vm=\"7\",incarnation=\"1\",device=\"0\",class=\"BATCH\",result=\"done\"} 0",
        "px_vm_launches_total{vm=\"7\",incarnation=\"1\",device=\"0\",class=\"REALTIME\",result=\"failed\"} 0",
        "px_vm_launch_latency_seconds_bucket{vm=\"7\",incarnation=\"1\",device=\"0\",le=\"5e-05\"} 0",
        "px_vm_launch_latency_seconds_bucket{vm=\"7\",incarnation=\"1\",device=\"0\",le=\"10\"} 0",
        "px_vm_launch_latency_seconds_bucket{vm=\"7\",incarnation=\"1\",device=\"0\",le=\"+Inf\"} 0",
        "px_vm_launch_latency_seconds_count{vm=\"7\",incarnation=\"1\",device=\"0\"} 0",
        "px_device_busy_seconds_total{device=\"0\"} 0",
        "px_device_busy_ratio{device=\"0\",window=\"60s\"} 0",
        "px_device_share_allocated_ratio{device=\"0\"} 0.2",
        "# TYPE px_vm_launch_latency_seconds histogram",
        "# TYPE px_vm_gpu_seconds_total counter",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) CHECK_MSG(has_line(t, want[i]), "no line: %s", want[i]);
    /* 17 bounds + Inf, and one HELP/TYPE per family */
    CHECK(count(t, "px_vm_launch_latency_seconds_bucket{vm=\"7\"") == PX_LATENCY_BUCKETS + 1);
    CHECK(count(t, "# TYPE px_vm_memory_used_bytes ") == 1);
    free(t);
}

TEST(counts_after_launches)
{
    CHECK(vm_on(8, 0, 30, 1 << 20));
    uint32_t x, y, m = saxpy_setup(8, 1000, &x, &y);
    CHECK(m != 0);
    const PxKernel *k = NULL;
    CHECK(px_vm_module_kernel(S, 8, m, NULL, &k) == PX_OK);
    int cls = -1;
    for (int i = 0; i < PX_SCHED_CLASSES && k; i++)
        if (!strcmp(px_sched_class_name(i), px_kernel_class(k))) cls = i;
    CHECK(cls >= 0);
    for (int i = 0; i < 5; i++) {
        uint64_t t;
        PxTicketResult r;
        CHECK(saxpy_submit(8, m, x, y, &t) == PX_OK && px_vm_wait(S, 8, t, -1, &r) == PX_OK && r.result == PX_OK);
    }
    PxVmStats v;
    CHECK(px_sched_vm_stats(S, 8, &v) == PX_OK);
    CHECK(v.launches_done == 5 && v.launches_failed == 0 && cls >= 0 && v.class_done[cls] == 5);
    uint64_t sum = 0;
    for (int i = 0; i < PX_SCHED_CLASSES; i++) sum += v.class_done[i] + v.class_failed[i];
    CHECK(sum == 5);
    int mono = 1;
    for (int i = 1; i < PX_LATENCY_BUCKETS; i++) mono &= v.latency_le[i] >= v.latency_le[i - 1];
    CHECK(mono && v.latency_le[PX_LATENCY_BUCKETS - 1] <= 5 && v.latency_sum_us > 0);
    /* the only VM that ran: all of the device's busy time is its own */
    CHECK_MSG(v.gpu_ns > 0 && v.achieved_10s == 1 && v.achieved_60s == 1, "gpu %llu achieved %g %g",
              (unsigned long long)v.gpu_ns, v.achieved_10s, v.achieved_60s);
    PxVmStats idle;
    CHECK(px_sched_vm_stats(S, 7, &idle) == PX_OK && idle.gpu_ns == 0 && idle.achieved_10s == 0);
    PxDeviceStats d;
    CHECK(px_sched_device_stats(S, 0, &d) == PX_OK && d.busy_10s > 0 && d.busy_10s <= 1 && d.busy_60s <= 1);
    /* the status JSON (jansson) carries the same numbers */
    char *j = px_sched_status_json(S);
    json_error_t e;
    json_t *st = j ? json_loads(j, 0, &e) : NULL;
    json_t *vm8 = NULL, *it;
    size_t i;
    json_array_foreach(json_object_get(st, "vms"), i, it) if (json_integer_value(json_object_get(it, "id")) == 8) vm8 = it;
    CHECK(vm8 && json_integer_value(json_object_get(vm8, "launches_done")) == 5 &&
          json_number_value(json_object_get(vm8, "achieved_10s")) == 100 &&
          json_array_size(json_object_get(vm8, "gpu_ms_history")) == PX_SCHED_HISTORY_S);
    json_decref(st);
    px_free(j);
}

TEST(reincarnation)
{
    PxVmStats a, b;
    CHECK(px_sched_vm_stats(S, 8, &a) == PX_OK);
    CHECK(px_sched_vm_destroy(S, 8) == PX_OK && vm_on(8, 0, 30, 1 << 20));
    CHECK(px_sched_vm_stats(S, 8, &b) == PX_OK);
    CHECK(b.incarnation > a.incarnation && b.launches_done == 0 && b.gpu_ns == 0 && b.latency_le[PX_LATENCY_BUCKETS - 1] == 0);
    char want[160];
    snprintf(want, sizeof want, "px_vm_gpu_seconds_total{vm=\"8\",incarnation=\"%llu\",device=\"0\"} 0",
             (unsigned long long)b.incarnation);
    size_t n;
    char *t = hv_metrics_text(S, &n);
    CHECK(t && has_line(t, want));
    free(t);
}

TEST(parse_addr)
{
    char h[64], p[8];
    CHECK(hv_http_parse_addr("127.0.0.1:9100", h, sizeof h, p, sizeof p) == 0 && !strcmp(h, "127.0.0.1") && !strcmp(p, "9100"));
    CHECK(hv_http_parse_addr("[::1]:0", h, sizeof h, p, sizeof p) == 0 && !strcmp(h, "::1") && !strcmp(p, "0"));
    CHECK(hv_http_parse_addr("localhost:80", h, sizeof h, p, sizeof p) == 0 && !strcmp(h, "localhost"));
    const char *bad[] = {"nonsense", ":80", "h:", "h:8a", "h:99999", "[::1:80", "::1]:80", "h:-1", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(hv_http_parse_addr(bad[i], h, sizeof h, p, sizeof p) == -1, "accepted %s", bad[i]);
}

/* One request on a fresh connection (5 s time-outs): the reply, malloc'd. */
static char *http(int port, const char *req)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char *out = calloc(1, 1);
    size_t n = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
        char buf[65536];
        ssize_t k;
        while ((k = read(fd, buf, sizeof buf)) > 0) {
            char *o = realloc(out, n + (size_t)k + 1);
            if (!o) break;
            out = o;
            memcpy(out + n, buf, (size_t)k);
            out[n += (size_t)k] = 0;
        }
    }
    close(fd);
    return out;
}

static atomic_int stop_load;

/* Launches of VM 9 while the endpoint is read. */
static void *load(void *arg)
{
    uint32_t x, y, m = saxpy_setup(9, 4096, &x, &y);
    while (m && !atomic_load(&stop_load)) {
        uint64_t t;
        if (saxpy_submit(9, m, x, y, &t) || px_vm_wait(S, 9, t, -1, NULL)) break;
    }
    return NULL;
}

TEST(http_endpoint)
{
    CHECK(vm_on(9, 0, 10, 1 << 20));
    char err[256];
    HvHttpConfig hc = {.addr = "127.0.0.1:0"};
    HvHttp *h = hv_http_start(&hc, S, err, sizeof err);
    CHECK_MSG(h != NULL, "%s", err);
    if (!h) return;
    int port = hv_http_port(h);
    CHECK(port > 0);
    pthread_t th;
    pthread_create(&th, NULL, load, NULL);
    for (int i = 0; i < 20; i++) {
        char *r = http(port, "GET /metrics HTTP/1.0\r\n\r\n");
        CHECK(!strncmp(r, "HTTP/1.1 200", 12) && strstr(r, "\npx_vm_gpu_seconds_total{vm=\"9\""));
        free(r);
        r = http(port, "GET /api/status HTTP/1.0\r\n\r\n");
        char *body = strstr(r, "\r\n\r\n");
        json_error_t e;
        json_t *st = body ? json_loads(body + 4, 0, &e) : NULL;
        CHECK(!strncmp(r, "HTTP/1.1 200", 12) && json_array_size(json_object_get(st, "vms")) == 3);
        json_decref(st);
        free(r);
    }
    atomic_store(&stop_load, 1);
    pthread_join(th, NULL);
    char *r = http(port, "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
    CHECK(!strncmp(r, "HTTP/1.1 405", 12));
    free(r);
    r = http(port, "GET /nope HTTP/1.0\r\n\r\n");
    CHECK(!strncmp(r, "HTTP/1.1 404", 12));
    free(r);
    r = http(port, "GET / HTTP/1.0\r\n\r\n");
    CHECK(!strncmp(r, "HTTP/1.1 200", 12) && strstr(r, "<script src=\"dash.js\"></script>"));
    free(r);
    hv_http_stop(h);
    /* a port in use is an error with a message, not a crash */
    HvHttp *h1 = hv_http_start(&hc, S, err, sizeof err);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", hv_http_port(h1));
    HvHttpConfig busy = {.addr = addr};
    HvHttp *h2 = hv_http_start(&busy, S, err, sizeof err);
    CHECK(h1 && !h2 && strstr(err, addr));
    hv_http_stop(h2);
    hv_http_stop(h1);
}

int main(void)
{
    if (!pxtest_open()) return 1;
    PxSchedConfig sc;
    schedtest_config1(&sc, ctx);
    if (!schedtest_start(&sc)) return 1;
    RUN(zeros_from_creation);
    RUN(counts_after_launches);
    RUN(reincarnation);
    RUN(parse_addr);
    RUN(http_endpoint);
    px_sched_destroy(S);
    px_context_destroy(ctx);
    return TEST_DONE();
}
