/* test.h — the unit-test harness: CHECK records a failure and goes on;
 * TEST_MAIN ends with the `N passed, N failed` line that tests/run.sh sums. */
#ifndef PX_TEST_H
#define PX_TEST_H
#include <stdio.h>
#include <string.h>

static int t_pass, t_fail;
static const char *t_name = "";

#define CHECK(c)                                                          \
    do {                                                                  \
        if (c) t_pass++;                                                  \
        else {                                                            \
            t_fail++;                                                     \
            fprintf(stderr, "FAIL %s: %s:%d: %s\n", t_name, __FILE__, __LINE__, #c); \
        }                                                                 \
    } while (0)
#define CHECK_MSG(c, ...)                                                 \
    do {                                                                  \
        if (c) t_pass++;                                                  \
        else {                                                            \
            t_fail++;                                                     \
            fprintf(stderr, "FAIL %s: %s:%d: ", t_name, __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
        }                                                                 \
    } while (0)
#define TEST(name) static void name(void)
#define RUN(name) (t_name = #name, name())
#define TEST_DONE()                                                       \
    (printf("%d passed, %d failed\n", t_pass, t_fail), t_fail ? 1 : 0)
#endif
