/* Minimal test harness shared by the standalone wip tests; test.c uses the same macros. */
#include <stdio.h>
static int sv_t_pass, sv_t_fail;
#define SV_CHECK(cond, ...) do { if (cond) sv_t_pass++; else { sv_t_fail++; \
    printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)
#define SV_TEST_SUMMARY() (printf("%d passed, %d failed\n", sv_t_pass, sv_t_fail), sv_t_fail ? 1 : 0)
