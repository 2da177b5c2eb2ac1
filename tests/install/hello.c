/* hello.c — a program built the way a user builds one: against the
 * installed px.h and `pkg-config --cflags --libs libpx` only (tests/install.sh).
 * saxpy through the shared library, checked against a C loop. */
#include <px.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    static const char src[] = "GPU_KERNEL saxpy\nGPU_PARAM a float\nGPU_PARAM x float[N]\nGPU_PARAM y float[N]\n"
                              "GPU_THREAD_CODE:\n    PARALLEL_MAP x y -> y : a * x + y\nGPU_END\n";
    enum { N = 4099 };
    static float x[N], y[N], want[N];
    for (int i = 0; i < N; i++) x[i] = (float)i / 7, y[i] = (float)(i % 5), want[i] = 2.5f * x[i] + y[i];
    PxContext *c;
    char *err = NULL;
    if (px_context_create(NULL, &c, &err)) {
        printf("no context: %s\n0 passed, 1 failed\n", err ? err : "?");
        return 1;
    }
    PxModule *m = NULL;
    PxKernel *k;
    PxLaunch *l = NULL;
    PxBuffer *bx = NULL, *by = NULL;
    int64_t shape[1] = {N};
    int ok = !px_module_compile(c, src, sizeof src - 1, "saxpy.px", &m, NULL) && !px_module_kernel(m, NULL, &k) &&
             !px_launch_create(k, &l) && !px_buffer_create(c, PX_F32, 1, shape, &bx) &&
             !px_buffer_create(c, PX_F32, 1, shape, &by) && !px_buffer_write(bx, x, sizeof x) &&
             !px_buffer_write(by, y, sizeof y) && !px_launch_bind(l, "x", bx, NULL) &&
             !px_launch_bind(l, "y", by, NULL) && !px_launch_set_float(l, "a", 2.5f) && !px_launch_run(l) &&
             !px_buffer_read(by, y, sizeof y);
    int bad = 0;
    for (int i = 0; ok && i < N; i++) bad += y[i] != want[i];
    char ver[32];
    snprintf(ver, sizeof ver, "%d.%d.%d", PX_VERSION_MAJOR, PX_VERSION_MINOR, PX_VERSION_PATCH);
    int vok = !strcmp(px_version(), ver);
    printf("px %s on %s (%s): %s\n", px_version(), px_context_backend(c), ok ? "ran" : px_last_error(c),
           ok && !bad ? "saxpy correct" : "saxpy WRONG");
    px_launch_destroy(l);
    px_module_destroy(m);
    px_buffer_destroy(bx);
    px_buffer_destroy(by);
    px_context_destroy(c);
    int pass = (ok && !bad) + vok;
    printf("%d passed, %d failed\n", pass, 2 - pass);
    return pass == 2 ? 0 : 1;
}
