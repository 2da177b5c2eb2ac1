/* cloops.c — the C side of the CPU benchmark: saxpy, sum and matmul as the
 * plain loops a C programmer writes, split over T pthreads by contiguous
 * ranges (rows for matmul), built with clang-16 -O3 -march=native.
 *
 *   cloops KERNEL THREADS RUNS SIZE...   (saxpy N | sum N | sumr N | matmul M N K)
 *
 * Prints `KERNEL median_ms min_ms checksum` for RUNS timed runs after one
 * warm-up. `sum` is the plain sequential loop per thread (clang may not
 * reorder float adds, so it is not vectorised); `sumr` is the same loop
 * with `#pragma clang fp reassociate(on)`, which lets clang vectorise it
 * the way the PX backend does. Inputs are the same fixed patterns pxcpu
 * uses, so the checksums can be compared. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct Job {
    const char *k;
    int t, nt;
    int64_t n, m, kk;
    float a, *x, *y, *b, *c, part;
} Job;

static void saxpy(float a, const float *restrict x, float *restrict y, int64_t lo, int64_t hi)
{
    for (int64_t i = lo; i < hi; i++) y[i] = a * x[i] + y[i];
}

static float sum(const float *restrict x, int64_t lo, int64_t hi)
{
    float s = 0;
    for (int64_t i = lo; i < hi; i++) s += x[i];
    return s;
}

static float sumr(const float *restrict x, int64_t lo, int64_t hi)
{
#pragma clang fp reassociate(on)
    float s = 0;
    for (int64_t i = lo; i < hi; i++) s += x[i];
    return s;
}

/* C[i][j] = sum_k A[i][k] B[k][j], rows lo..hi; i-k-j so the inner loop
 * streams rows of B and C */
static void matmul(const float *restrict a, const float *restrict b, float *restrict c, int64_t lo, int64_t hi,
                   int64_t n, int64_t kk)
{
    for (int64_t i = lo; i < hi; i++) {
        float *ci = c + i * n;
        for (int64_t j = 0; j < n; j++) ci[j] = 0;
        for (int64_t k = 0; k < kk; k++) {
            float aik = a[i * kk + k];
            const float *bk = b + k * n;
            for (int64_t j = 0; j < n; j++) ci[j] += aik * bk[j];
        }
    }
}

static void *work(void *arg)
{
    Job *j = arg;
    int64_t rows = !strcmp(j->k, "matmul") ? j->m : j->n;
    int64_t lo = rows * j->t / j->nt, hi = rows * (j->t + 1) / j->nt;
    if (!strcmp(j->k, "saxpy")) saxpy(j->a, j->x, j->y, lo, hi);
    else if (!strcmp(j->k, "sum")) j->part = sum(j->x, lo, hi);
    else if (!strcmp(j->k, "sumr")) j->part = sumr(j->x, lo, hi);
    else matmul(j->x, j->b, j->c, lo, hi, j->n, j->kk);
    return NULL;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: cloops saxpy|sum|sumr|matmul THREADS RUNS SIZE...\n");
        return 2;
    }
    const char *k = argv[1];
    int nt = atoi(argv[2]), runs = atoi(argv[3]);
    int mm = !strcmp(k, "matmul");
    if (nt < 1 || nt > 256 || runs < 1 || runs > 1000 || (mm && argc < 7)) return 2;
    int64_t n = atoll(argv[4]), m = mm ? atoll(argv[4]) : 0, kk = mm ? atoll(argv[6]) : 0;
    if (mm) n = atoll(argv[5]);
    int64_t nx = mm ? m * kk : n;
    float *x = malloc(4 * nx), *y = mm ? malloc(4 * kk * n) : malloc(4 * n), *c = mm ? malloc(4 * m * n) : NULL;
    if (!x || !y || (mm && !c)) return 3;
    /* the patterns of pxcpu.c */
    for (int64_t i = 0; i < nx; i++) x[i] = (float)(i % 1000) * 0.001f;
    for (int64_t i = 0; i < (mm ? kk * n : n); i++) y[i] = (float)(i % 777) * 0.002f - 0.5f;
    double *t = malloc(sizeof(double) * runs);
    pthread_t th[256];
    Job jobs[256];
    double check = 0;
    for (int r = -1; r < runs; r++) {
        if (!strcmp(k, "saxpy")) /* fresh y every run: each run does the same work */
            for (int64_t i = 0; i < n; i++) y[i] = (float)(i % 777) * 0.002f - 0.5f;
        double t0 = now_ms();
        for (int i = 0; i < nt; i++) {
            jobs[i] = (Job){.k = k, .t = i, .nt = nt, .n = n, .m = m, .kk = kk, .a = 2.5f, .x = x, .y = y, .b = y, .c = c};
            if (i) pthread_create(&th[i], NULL, work, &jobs[i]);
        }
        work(&jobs[0]);
        float s = jobs[0].part;
        for (int i = 1; i < nt; i++) {
            pthread_join(th[i], NULL);
            s += jobs[i].part;
        }
        double t1 = now_ms();
        if (r >= 0) t[r] = t1 - t0;
        if (!strcmp(k, "saxpy")) check = y[n / 3];
        else if (mm) check = c[(m / 2) * n + n / 3];
        else check = s;
    }
    qsort(t, runs, sizeof *t, cmp);
    printf("%s %.4f %.4f %.6g\n", k, t[runs / 2], t[0], check);
    return 0;
}
