/* bench_openblas.c - calibration of sv_gemm against OpenBLAS cblas_sgemm on the model's shapes.
   OpenBLAS is used here only, never by the library or its tests. Run through bench_openblas.sh,
   which builds this file, unsets OPENBLAS_CORETYPE (forcing Haswell halves OpenBLAS's speed on
   AVX-512 machines) and runs each library in its own process, alternating, so the two sets of
   worker threads never compete and both see the same machine load.
   Usage: bench_openblas list
          bench_openblas sv|openblas SHAPE THREADS    prints the median GFLOP/s of 5 samples */
#define _POSIX_C_SOURCE 199309L
#include <time.h>
#include <cblas.h>
#define SSL_VGS_IMPLEMENTATION
#include "../ssl_vgs.h"
#ifndef SV_SIMD_NAME /* kernels not merged into ssl_vgs.h yet */
#include "../wip/kernels.h"
#endif

void openblas_set_num_threads(int num_threads);

typedef struct bo_shape { size_t M, N, K; int ta, tb; const char *what; } bo_shape;

/* The same shapes as sv_bench_gemm (wip/bench_gemm.c). */
static const bo_shape bo_shapes[] = {
    {256, 256, 256, 0, 0, "square"},
    {512, 512, 512, 0, 0, "square"},
    {1024, 1024, 1024, 0, 0, "square"},
    {800, 256, 256, 0, 0, "proj_D256_T800"},
    {6400, 256, 256, 0, 0, "proj_D256_T6400"},
    {25600, 256, 256, 0, 0, "proj_D256_T25600"},
    {800, 1024, 256, 0, 0, "FFN_up_256-1024"},
    {800, 3072, 768, 0, 0, "FFN_up_768-3072"},
    {800, 768, 3072, 0, 0, "FFN_down_3072-768"},
    {800, 768, 3072, 0, 1, "dX=dY*W^T"},
    {768, 3072, 800, 1, 0, "dW=X^T*dY"},
    {25600, 256, 10, 0, 0, "conv0_K10"},
    {64, 768, 768, 0, 0, "skinny_M64"},
};
#define BO_NSHAPES (sizeof bo_shapes / sizeof bo_shapes[0])

static double bo_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int bo_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bo_call(int blas, const bo_shape *s, const float *A, const float *B, float *C)
{
    size_t lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    if (blas)
        cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
                    (int)s->M, (int)s->N, (int)s->K, 1.0f, A, (int)lda, B, (int)ldb, 0.0f, C, (int)s->N);
    else
        sv_gemm(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
}

int main(int argc, char **argv)
{
    const bo_shape *s;
    float *A, *B, *C;
    double t[5], t0, dt;
    int blas, threads, reps = 1, i, r;
    size_t j, idx;
    sv_rng rng;
    if (argc == 2 && strcmp(argv[1], "list") == 0) {
        for (j = 0; j < BO_NSHAPES; j++)
            printf("%zu %s %zu %zu %zu %c%c\n", j, bo_shapes[j].what, bo_shapes[j].M, bo_shapes[j].N,
                   bo_shapes[j].K, bo_shapes[j].ta ? 'T' : 'N', bo_shapes[j].tb ? 'T' : 'N');
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: %s list | %s sv|openblas SHAPE THREADS\n", argv[0], argv[0]);
        return 2;
    }
    blas = strcmp(argv[1], "openblas") == 0;
    idx = (size_t)strtoul(argv[2], NULL, 10);
    threads = atoi(argv[3]);
    if (idx >= BO_NSHAPES || threads < 1) return 2;
    s = &bo_shapes[idx];
    if (blas) openblas_set_num_threads(threads);
    else sv_set_threads(threads);
    A = (float *)malloc(s->M * s->K * sizeof(float));
    B = (float *)malloc(s->K * s->N * sizeof(float));
    C = (float *)malloc(s->M * s->N * sizeof(float));
    if (!A || !B || !C) return 1;
    sv_rng_seed(&rng, 1);
    for (j = 0; j < s->M * s->K; j++) A[j] = sv_rng_uniformf(&rng) - 0.5f;
    for (j = 0; j < s->K * s->N; j++) B[j] = sv_rng_uniformf(&rng) - 0.5f;
    t0 = bo_now();
    bo_call(blas, s, A, B, C); /* warm-up */
    bo_call(blas, s, A, B, C);
    dt = (bo_now() - t0) / 2;
    if (dt < 0.04) reps = (int)(0.04 / (dt > 1e-7 ? dt : 1e-7)) + 1;
    for (i = 0; i < 5; i++) {
        t0 = bo_now();
        for (r = 0; r < reps; r++) bo_call(blas, s, A, B, C);
        t[i] = (bo_now() - t0) / reps;
    }
    qsort(t, 5, sizeof t[0], bo_cmp);
    printf("%.1f\n", 2.0 * (double)s->M * (double)s->N * (double)s->K / t[2] * 1e-9);
    free(A); free(B); free(C);
    sv_gemm_release();
    return 0;
}
