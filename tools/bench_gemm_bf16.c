/* bench_gemm_bf16.c -- sv_gemm_bf16 against sv_gemm on the `small` model's products, interleaved.
   The products one training step of the `small` config runs (8 utterances x 2 s, 16 kHz; the
   CNN's 256 channels, D = 256, FFN 1024, attention heads of 64 over 100 frames), each timed in
   ROUNDS alternating rounds: fp32, then bf16 (then bf16, then fp32 in the next round, so that a
   drift of the machine's speed hits both alike). Per shape: the median GFLOP/s of each, the median
   of the per-round ratios, and the best round of each (the least disturbed by other processes on
   a shared machine). With one thread the time is the thread's CPU time, which leaves out the time
   other processes held the core (only their cache pollution stays in); with more, wall time.

       cc -std=c99 -O3 -march=native -fopenmp -o bench_gemm_bf16 tools/bench_gemm_bf16.c -lm
       ./bench_gemm_bf16 [rounds (default 7)] [threads (default 1)]
*/
#define _POSIX_C_SOURCE 200809L   /* clock_gettime */
#define SSL_VGS_IMPLEMENTATION
#include "../ssl_vgs.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { size_t M, N, K; int ta, tb; const char *what; } shape;

static const shape shapes[] = {
    {6399, 256, 10, 0, 1, "conv0 fwd (10 taps of the waveform)"},
    {10, 256, 6399, 1, 0, "conv0 dW^T = Xwin^T dY"},
    {3199, 256, 768, 0, 1, "conv1 fwd (3 taps x 256)"},
    {256, 768, 3199, 1, 0, "conv1 dW = dY^T Xwin"},
    {3199, 512, 256, 0, 0, "conv1 dX, taps 0-1"},
    {799, 256, 768, 0, 1, "conv3 fwd"},
    {99, 256, 512, 0, 1, "conv6 fwd (2 taps)"},
    {800, 256, 256, 0, 1, "q/k/v/out, proj"},
    {800, 1024, 256, 0, 1, "FFN up"},
    {800, 256, 1024, 0, 1, "FFN down"},
    {800, 256, 1024, 0, 0, "FFN up dX = dY W"},
    {1024, 256, 800, 1, 0, "FFN up dW = dY^T X"},
    {100, 100, 64, 0, 1, "attention S = Q K^T"},
    {100, 64, 100, 0, 0, "attention P V, dQ"},
    {100, 64, 100, 1, 0, "attention dV, dK"},
    {100, 16, 2048, 0, 1, "pos conv, one group"},
    {400, 64, 576, 0, 1, "ResDAVEnet stage 1 (im2col)"},
};

static int use_cpu_time;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(use_cpu_time ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef void (*gemm_fn)(int, int, size_t, size_t, size_t, float, const float *, size_t, const float *, size_t,
                        float, float *, size_t);

/* GFLOP/s of one sample: enough repetitions to take ~30 ms */
static double sample(gemm_fn f, const shape *s, const float *A, const float *B, float *C)
{
    size_t lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    double t0 = now_s(), dt;
    int reps = 1, r;
    f(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
    dt = now_s() - t0;
    if (dt < 0.03) reps = (int)(0.03 / (dt > 1e-7 ? dt : 1e-7)) + 1;
    t0 = now_s();
    for (r = 0; r < reps; r++) f(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
    return 2.0 * (double)s->M * (double)s->N * (double)s->K * reps / (now_s() - t0) * 1e-9;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 7, threads = argc > 2 ? atoi(argv[2]) : 1, r;
    size_t i, j;
    sv_rng rng;
    double lo = 1e9, hi = 0, logsum = 0;
    if (rounds < 1 || rounds > 99 || threads < 1) { fprintf(stderr, "usage: %s [rounds 1-99] [threads]\n", argv[0]); return 2; }
    if (!sv_bf16_native()) { fprintf(stderr, "bench_gemm_bf16: this build has no AVX512-BF16 kernel (SIMD %s)\n", sv_simd_name()); return 1; }
    sv_set_threads(threads);
    use_cpu_time = threads == 1;
    sv_rng_seed(&rng, 1);
    printf("sv_gemm_bf16 vs sv_gemm, %d thread%s, %d alternated rounds; GFLOP/s (2 MNK / %s time)\n", threads,
           threads > 1 ? "s" : "", rounds, use_cpu_time ? "CPU" : "wall");
    printf("%-38s %5s %5s %5s %2s | %8s %8s %7s | %8s %8s %7s\n", "product", "M", "N", "K", "op", "fp32 med", "bf16 med",
           "ratio", "fp32 max", "bf16 max", "ratio");
    for (i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        float *A = (float *)malloc(s->M * s->K * sizeof(float)), *B = (float *)malloc(s->K * s->N * sizeof(float));
        float *C = (float *)malloc(s->M * s->N * sizeof(float));
        double f[99], b[99], q[99], fm, bm, qm, fx = 0, bx = 0;
        if (!A || !B || !C) { fprintf(stderr, "out of memory\n"); return 1; }
        for (j = 0; j < s->M * s->K; j++) A[j] = sv_rng_uniformf(&rng) - 0.5f;
        for (j = 0; j < s->K * s->N; j++) B[j] = sv_rng_uniformf(&rng) - 0.5f;
        for (r = 0; r < rounds; r++) {
            if (r % 2 == 0) { f[r] = sample(sv_gemm, s, A, B, C); b[r] = sample(sv_gemm_bf16, s, A, B, C); }
            else { b[r] = sample(sv_gemm_bf16, s, A, B, C); f[r] = sample(sv_gemm, s, A, B, C); }
            q[r] = b[r] / f[r];
            if (f[r] > fx) fx = f[r];
            if (b[r] > bx) bx = b[r];
        }
        fm = median(f, rounds); bm = median(b, rounds); qm = median(q, rounds);
        printf("%-38s %5zu %5zu %5zu %c%c | %8.1f %8.1f %6.2fx | %8.1f %8.1f %6.2fx\n", s->what, s->M, s->N, s->K,
               s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', fm, bm, qm, fx, bx, bx / fx);
        fflush(stdout);
        if (qm < lo) lo = qm;
        if (qm > hi) hi = qm;
        logsum += log(qm);
        free(A); free(B); free(C);
    }
    printf("median ratios: %.2fx to %.2fx, geometric mean %.2fx\n", lo, hi, exp(logsum / (double)(sizeof shapes / sizeof shapes[0])));
    return 0;
}
