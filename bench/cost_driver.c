/* cost_driver — the measuring half of `make bench-cost` (bench/cost.sh,
 * bench/cost.py): runs PX kernels at a sweep of sizes through px.h and
 * prints, per point, the predictions of the cost model and the measured
 * device time, one JSON object a line.
 *
 *   cost_driver DEFAULT_CACHE CALIBRATED_CACHE RUNS < cases
 *
 * Two contexts on the same device: one created with XDG_CACHE_HOME =
 * DEFAULT_CACHE (an empty directory, so it predicts with the default
 * profile) and one with CALIBRATED_CACHE (holding what `pxrun --calibrate`
 * saved). Only the second runs kernels; the first only predicts.
 *
 * A case is one line `FILE|KERNEL|SCALARS|POINTS`: SCALARS `name=text,...`
 * (or empty), POINTS `SYM=N,SYM=N;SYM=N,...` in the order swept. Buffers
 * are the zero-filled ones px_launch_prepare creates.
 *
 * What each figure is fitted on (the honesty rules of the benchmark):
 * - default: the default profile; nothing fitted.
 * - calibrated: the profile from the calibration micro-kernels, which are
 *   none of these kernels.
 * - corrected: the calibrated prediction times an online correction that
 *   the runtime learned from the runs of the same kernel at the PREVIOUS
 *   point of the sweep only (for the first point, at the second). Each
 *   point runs its own compiled copy of the module, and a kernel's
 *   correction learns only from its own runs (docs/COST.md), so no
 *   prediction ever saw a run of the point it predicts.
 * - corrected after one run: what px_launch_predict_ns gives after ONE
 *   warm run of the same launch (same kernel, same size; the cold first
 *   run teaches nothing, docs/COST.md): the calibrated prediction times
 *   the ratio that run measured. Taken before the timed rounds, from a run
 *   that is none of the timed ones but taken the way they are (below), so
 *   it predicts runs it never saw; its error is how far one run tells the
 *   steady state (so it comes after WARM_ROUNDS warm-up rounds, below).
 *   ONE_RUNS of them per point, each after a reset of the
 *   correction (`pred_corrected1_each_ns`; `pred_corrected1_ns` is the
 *   last); the last run also counts as one sample (of RUNS + 1) in the
 *   previous-size correction: a run teaches only when its time is read,
 *   so the untimed runs teach nothing.
 * Measured: the median GPU time (timestamps) of RUNS runs after one cold
 * run. The runs are taken in rounds across the sweep, one untimed and one
 * timed run of every point per round, in the order the sweep lists them:
 * this machine's speed changes by up to 2x from one second to the next,
 * and rounds spread each point's runs over the whole sweep instead of
 * giving one point a fast second and the next a slow one. The untimed run
 * puts lavapipe's workers and the caches in the point's own state.
 * `pxrun --calibrate` measures its micro-kernels the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "px.h"

#define MAXPTS 32
#ifndef WARM_ROUNDS
#define WARM_ROUNDS 3 /* rounds of untimed pairs before the one-run predictions */
#endif
#ifndef ONE_RUNS
#define ONE_RUNS 3 /* "after one run" predictions per point */
#endif
#define MAXSYM 8

typedef struct Point {
    int n;
    char sym[MAXSYM][32];
    long long val[MAXSYM];
} Point;

static void die(const char *what, PxContext *c)
{
    fprintf(stderr, "cost_driver: %s: %s\n", what, c ? px_last_error(c) : "");
    exit(1);
}

static PxContext *context(const char *cache)
{
    if (setenv("XDG_CACHE_HOME", cache, 1)) die("setenv", NULL);
    PxConfig cfg;
    px_config_default(&cfg);
    cfg.backend = PX_BACKEND_VULKAN;
    PxContext *c;
    char *err = NULL;
    if (px_context_create(&cfg, &c, &err)) {
        fprintf(stderr, "cost_driver: %s\n", err ? err : "no context");
        exit(1);
    }
    return c;
}

/* A launch of k at point p with the case's scalars, prepared. */
static PxLaunch *launch(PxKernel *k, const Point *p, char *scalars, PxContext *c)
{
    PxLaunch *l;
    if (px_launch_create(k, &l)) die("px_launch_create", c);
    for (int i = 0; i < p->n; i++)
        if (px_launch_set_size(l, p->sym[i], p->val[i], "cost bench")) die("px_launch_set_size", c);
    char buf[512];
    snprintf(buf, sizeof buf, "%s", scalars);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        if (!eq) die("scalar without =", NULL);
        *eq = 0;
        if (px_launch_set_scalar_text(l, t, eq + 1)) die("px_launch_set_scalar_text", c);
    }
    if (px_launch_prepare(l)) die("px_launch_prepare", c);
    return l;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: cost_driver DEFAULT_CACHE CALIBRATED_CACHE RUNS < cases\n");
        return 2;
    }
    int runs = atoi(argv[3]);
    if (runs < 1 || runs > 100) die("RUNS must be 1..100", NULL);
    PxContext *cd = context(argv[1]), *cc = context(argv[2]);
    PxProfile pd, pc;
    px_context_profile(cd, &pd);
    px_context_profile(cc, &pc);
    if (pd.calibrated) die("the default cache holds a profile", NULL);
    if (!pc.calibrated) die("the calibrated cache holds no profile", NULL);
    PxDeviceInfo di;
    px_device_info(cc, &di);
    printf("{\"device\": \"%s\", \"profile\": {\"bytes_per_s\": %g, \"flops_per_s\": %g, \"intops_per_s\": %g, "
           "\"accesses_per_s\": %g, \"checked_per_s\": %g, \"group_s\": %g, \"dispatch_s\": %g, "
           "\"barrier_s\": %g}}\n",
           di.name, pc.bytes_per_s, pc.flops_per_s, pc.intops_per_s, pc.accesses_per_s, pc.checked_per_s,
           pc.group_s, pc.dispatch_s, pc.barrier_s);
    fflush(stdout);

    char line[4096];
    double *t = malloc(sizeof *t * (size_t)runs * MAXPTS);
    if (!t) die("out of memory", NULL);
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char *f[4] = {line, NULL, NULL, NULL};
        for (int i = 1; i < 4; i++) {
            f[i] = strchr(f[i - 1], '|');
            if (!f[i]) die("bad case line", NULL);
            *f[i]++ = 0;
        }
        Point pts[MAXPTS];
        int np = 0;
        char *save = NULL;
        for (char *pt = strtok_r(f[3], ";", &save); pt && np < MAXPTS; pt = strtok_r(NULL, ";", &save)) {
            Point *p = &pts[np++];
            p->n = 0;
            char *s2 = NULL;
            for (char *a = strtok_r(pt, ",", &s2); a && p->n < MAXSYM; a = strtok_r(NULL, ",", &s2)) {
                if (sscanf(a, "%31[^=]=%lld", p->sym[p->n], &p->val[p->n]) != 2) die("bad point", NULL);
                p->n++;
            }
        }
        if (np < 2) die("a case needs two points at least", NULL);
        /* one module per point in the calibrated context, so that each
         * kernel's correction learns from that point's runs alone */
        PxModule *md, *mc[MAXPTS];
        PxKernel *kd, *kc[MAXPTS];
        PxLaunch *l[MAXPTS];
        const char *kn = f[1][0] ? f[1] : NULL;
        if (px_module_compile_file(cd, f[0], &md, NULL)) die(f[0], cd);
        if (px_module_kernel(md, kn, &kd)) die("px_module_kernel", cd);
        for (int i = 0; i < np; i++) {
            if (px_module_compile_file(cc, f[0], &mc[i], NULL)) die(f[0], cc);
            if (px_module_kernel(mc[i], kn, &kc[i])) die("px_module_kernel", cc);
            l[i] = launch(kc[i], &pts[i], f[2], cc);
            if (px_launch_run(l[i])) die("px_launch_run", cc); /* cold: counts nowhere */
        }
        /* one warm run of each point, then the prediction it leaves. It is
         * taken as every timed run is, the second of two back to back: the
         * first, whose time nobody reads and which so teaches nothing
         * (runtime/launch.c drops unread times at the next submit), puts
         * the caches in the point's own state. Taken right after another
         * point's run instead, it measured a cache-cold run: scan and the
         * matmul pipeline at 1.4-1.9x their steady time. */
        /* ONE_RUNS such predictions per point, each from a correction reset
         * first, taken in rounds across the sweep as the timed runs are:
         * one run is one sample of a machine whose speed jumps 2x from one
         * second to the next, so the report pools their errors (bench/
         * cost.py) rather than hang the figure on one sample per point. The
         * last one's sample stays in the correction. */
        /* The first runs after the cold one are still slow: in rounds of
         * one-run predictions right after it, the first one or two read
         * 1.3-2x the steady median for scan and the matmul pipeline, the
         * later ones 0.9-1.1x (docs/COST.md, fourth round). WARM_ROUNDS
         * rounds of untimed pairs first (their times are never read, so
         * they teach nothing), so that one run tells the steady state the
         * timed rounds then measure. */
        for (int w = 0; w < WARM_ROUNDS; w++)
            for (int i = 0; i < np; i++)
                if (px_launch_run(l[i]) || px_launch_run(l[i])) die("warm-up run", cc);
        double pred_one[MAXPTS][ONE_RUNS];
        for (int j = 0; j < ONE_RUNS; j++)
            for (int i = 0; i < np; i++) {
                px_kernel_correction_reset(kc[i]);
                if (px_launch_run(l[i]) || px_launch_run(l[i]) || px_launch_predict_ns(l[i], -1, &pred_one[i][j]))
                    die("one warm run", cc);
            }
        for (int r = 0; r < runs; r++)
            for (int i = 0; i < np; i++) {
                if (px_launch_run(l[i]) || px_launch_run(l[i])) die("px_launch_run", cc);
                double ns = px_launch_stage_time_ns(l[i], -1);
                if (!(ns > 0)) die("no timestamps", cc);
                t[i * runs + r] = ns;
            }
        for (int i = 0; i < np; i++) {
            PxLaunch *ld = launch(kd, &pts[i], f[2], cd);
            PxCost cost;
            if (px_launch_cost(ld, -1, &cost)) die("px_launch_cost", cd);
            double pred_default = cost.predicted_ns;
            px_launch_destroy(ld);
            if (px_launch_cost(l[i], -1, &cost)) die("px_launch_cost", cc);
            /* what px_launch_predict_ns gives for this point with the
             * correction of the previous point's kernel */
            int learned;
            double factor = px_kernel_correction(kc[i ? i - 1 : 1], &learned);
            double pred_cal = cost.predicted_ns, pred_corr = pred_cal * factor;
            double *ti = &t[i * runs];
            qsort(ti, (size_t)runs, sizeof *ti, cmp_double);
            double med = runs % 2 ? ti[runs / 2] : 0.5 * (ti[runs / 2 - 1] + ti[runs / 2]);
            printf("{\"file\": \"%s\", \"kernel\": \"%s\", \"sizes\": {", f[0], px_kernel_name(kc[i]));
            for (int j = 0; j < pts[i].n; j++) printf("%s\"%s\": %lld", j ? ", " : "", pts[i].sym[j], pts[i].val[j]);
            printf("}, \"flops\": %.17g, \"intops\": %.17g, \"bytes\": %.17g, \"accesses\": %.17g, "
                   "\"checked\": %.17g, \"uniform\": %.17g, \"dispatches\": %d, ", cost.flops, cost.int_ops,
                   cost.bytes_read + cost.bytes_written, cost.accesses, cost.checked_accesses,
                   cost.uniform_accesses, cost.dispatches);
            printf("\"pred_default_ns\": %.17g, \"pred_calibrated_ns\": %.17g, \"pred_corrected_ns\": %.17g, "
                   "\"pred_corrected1_ns\": %.17g, "
                   "\"correction\": %.17g, \"correction_samples\": %d, \"measured_ns\": %.17g, \"runs_ns\": [",
                   pred_default, pred_cal, pred_corr, pred_one[i][ONE_RUNS - 1], factor, learned, med);
            for (int j = 0; j < runs; j++) printf("%s%.17g", j ? ", " : "", ti[j]);
            printf("], \"pred_corrected1_each_ns\": [");
            for (int j = 0; j < ONE_RUNS; j++) printf("%s%.17g", j ? ", " : "", pred_one[i][j]);
            printf("]}\n");
        }
        fflush(stdout);
        for (int i = 0; i < np; i++) {
            px_launch_destroy(l[i]);
            px_module_destroy(mc[i]);
        }
        px_module_destroy(md);
    }
    free(t);
    px_context_destroy(cd);
    px_context_destroy(cc);
    return 0;
}
