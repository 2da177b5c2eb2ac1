/* test_bufmap.c — what the Python package (python/px) adds to px.h:
 * px_buffer_map gives the host's view of a buffer on both backends (a
 * write through the pointer is what px_buffer_read reads, a launch's
 * output is visible through it), and px_module_cost_json gives the
 * formulas pxcc --emit=cost-json prints. Expected values are C loops and
 * literal formulas. */
#include <jansson.h>

#include "pxtest.h"
#include "test.h"

static const char *SAXPY = "GPU_KERNEL saxpy\nGPU_PARAM a float\nGPU_PARAM x float[N]\n"
                           "GPU_PARAM y float[N]\nGPU_PARAM z float[N]\nGPU_THREAD_CODE:\n"
                           "    PARALLEL_MAP x y -> z : a * x + y\nGPU_END\n";

/* On context c: map, write through the pointer, read back; run saxpy and
 * see z through the mapping of the launch's own buffer. */
static void map_on(PxContext *c, const char *what)
{
    enum { N = 777 };
    int64_t sh[1] = {N};
    PxBuffer *x = NULL, *y = NULL;
    CHECK(!px_buffer_create(c, PX_F32, 1, sh, &x) && !px_buffer_create(c, PX_F32, 1, sh, &y));
    if (!x || !y) return;
    float *px_, *py, back[N];
    CHECK_MSG(!px_buffer_map(x, (void **)&px_) && px_, "%s: map: %s", what, px_last_error(c));
    CHECK(!px_buffer_map(y, (void **)&py) && py);
    if (!px_ || !py) return;
    for (int i = 0; i < N; i++) CHECK(px_[i] == 0.0f); /* zero-filled */
    for (int i = 0; i < N; i++) px_[i] = (float)i * 0.25f, py[i] = (float)(i % 7);
    CHECK(!px_buffer_read(x, back, sizeof back));
    for (int i = 0; i < N; i++) CHECK(back[i] == (float)i * 0.25f);
    PxModule *m = NULL;
    PxKernel *k;
    PxLaunch *l = NULL;
    CHECK(!px_module_compile(c, SAXPY, strlen(SAXPY), "saxpy.px", &m, NULL) && !px_module_kernel(m, NULL, &k) &&
          !px_launch_create(k, &l) && !px_launch_bind(l, "x", x, NULL) && !px_launch_bind(l, "y", y, NULL) &&
          !px_launch_set_float(l, "a", 3.0f) && !px_launch_run(l));
    float *pz = NULL;
    CHECK(l && !px_buffer_map(px_launch_buffer(l, "z"), (void **)&pz) && pz);
    for (int i = 0; pz && i < N; i++) CHECK_MSG(pz[i] == 3.0f * ((float)i * 0.25f) + (float)(i % 7), "%s: z[%d]", what, i);
    void *none = (void *)1;
    CHECK(px_buffer_map(NULL, &none) == PX_ERR_INVALID && none == NULL); /* NULL on failure */
    px_launch_destroy(l);
    px_module_destroy(m);
    px_buffer_destroy(x);
    px_buffer_destroy(y);
}

TEST(map_default_and_cpu)
{
    map_on(ctx, px_context_backend(ctx));
    PxConfig cfg;
    px_config_default(&cfg);
    cfg.backend = PX_BACKEND_CPU;
    PxContext *cpu = NULL;
    char *err = NULL;
    CHECK_MSG(!px_context_create(&cfg, &cpu, &err), "cpu: %s", err ? err : "?");
    px_free(err);
    if (cpu) map_on(cpu, "cpu");
    px_context_destroy(cpu);
}

TEST(cost_json)
{
    const char *two = "GPU_KERNEL saxpy\nGPU_PARAM a float\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\n"
                      "GPU_THREAD_CODE:\n    PARALLEL_MAP x y -> y : a * x + y\nGPU_END\n"
                      "GPU_KERNEL mm\nGPU_PARAM a float[M][K]\nGPU_PARAM b float[K][N]\nGPU_PARAM c float[M][N]\n"
                      "GPU_THREAD_CODE:\n    PARALLEL_MATMUL a b -> c\nGPU_END\n";
    PxModule *m = NULL;
    CHECK(!px_module_compile(ctx, two, strlen(two), "two.px", &m, NULL));
    char *j = px_module_cost_json(m);
    CHECK(j != NULL);
    json_error_t je;
    json_t *root = j ? json_loads(j, 0, &je) : NULL;
    json_t *ks = json_object_get(root, "kernels");
    CHECK_MSG(json_array_size(ks) == 2, "%s", j ? j : "");
    const char *want[2][3] = {{"saxpy", "THROUGHPUT", "2*N"}, {"mm", "BATCH", "2*M*K*N"}};
    for (size_t i = 0; i < 2 && i < json_array_size(ks); i++) {
        json_t *k = json_array_get(ks, i);
        for (int f = 0; f < 3; f++) {
            const char *key = f == 0 ? "name" : f == 1 ? "class" : "flops";
            const char *got = json_string_value(json_object_get(k, key));
            CHECK_MSG(got && !strcmp(got, want[i][f]), "kernel %zu %s: %s", i, key, got ? got : "(none)");
        }
    }
    json_decref(root);
    px_free(j);
    CHECK(px_module_cost_json(NULL) == NULL);
    px_module_destroy(m);
}

int main(void)
{
    if (!pxtest_open()) return 1;
    RUN(map_default_and_cpu);
    RUN(cost_json);
    px_context_destroy(ctx);
    return TEST_DONE();
}
