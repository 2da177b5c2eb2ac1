/* cpu_run.c — running JIT-compiled kernels (cg.h, "llvm.c"): the steps
 * of each stage in order, each over its whole domain, on the host's
 * parallel-for. Needs no LLVM: the code is plain function pointers. */
#include "cg.h"

#include <stdlib.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

void cg_cpu_param_values(const IrKernel *k, const uint32_t *scalar, int64_t *out)
{
    for (int i = 0; i < k->params.n; i++) {
        const IrParam *p = &k->params.v[i];
        out[i] = 0;
        if (p->is_buffer || !scalar) continue;
        if (p->type == TY_INT) out[i] = (int32_t)scalar[i];
        else if (p->type == TY_UINT) out[i] = scalar[i];
    }
}

int cg_cpu_run(const CgCpuKernel *k, const CgCpuArgs *args, CgCpuParallelFor pf, void *pool, double *stage_ns)
{
    const IrKernel *ir = k->ir;
    int64_t *pv = malloc(sizeof(int64_t) * (size_t)(ir->params.n + 1));
    if (!pv) return -1;
    cg_cpu_param_values(ir, args->scalar, pv);
    CgCpuArgs a = *args;
    static const volatile int32_t never = 0;
    if (!a.cancel) a.cancel = &never;
    int rc = 0;
    for (int si = 0; si < k->stages.n && rc == 0; si++) {
        const CgCpuStage *cs = &k->stages.v[si];
        double t0 = now_ms();
        int64_t sb = ir_size_eval(cs->scratch, args->sym, pv);
        a.scratch = NULL;
        if (sb > 0) {
            a.scratch = malloc((size_t)sb);
            if (!a.scratch) { rc = -1; break; }
        }
        for (int j = 0; j < cs->steps.n; j++) {
            const CgCpuStep *st = &cs->steps.v[j];
            int64_t n = ir_size_eval(st->count, args->sym, pv);
            if (n <= 0 || *a.cancel) continue;
            if (pf) pf(pool, st, &a, n);
            else st->fn(&a, 0, n);
        }
        free(a.scratch);
        if (stage_ns) stage_ns[si] = (now_ms() - t0) * 1e6;
    }
    free(pv);
    return rc;
}
