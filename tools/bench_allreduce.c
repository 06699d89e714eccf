/* The exact-sum all-reduce alone (make bench-mpi; docs/MPI.md): n 128-bit words added with the
   same user-defined MPI_Op as train's (two's-complement addition of (low, high) word pairs),
   timed over 20 calls after a barrier each. Separates the transfer from the waiting that the
   trainer's "comm_s" also counts. Usage: mpirun -np P build/bench_allreduce [WORDS] */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void sum128(void *in, void *inout, int *len, MPI_Datatype *dt)
{
    const uint64_t *a = (const uint64_t *)in;
    uint64_t *b = (uint64_t *)inout;
    int i;
    (void)dt;
    for (i = 0; i < *len; i++) {
        uint64_t lo = b[2 * i] + a[2 * i];
        b[2 * i + 1] += a[2 * i + 1] + (lo < a[2 * i]);
        b[2 * i] = lo;
    }
}

int main(int argc, char **argv)
{
    int rank, procs, i, reps = 20;
    size_t n;
    MPI_Datatype pair;
    MPI_Op op;
    double best = 1e30, sum = 0;
    uint64_t *w;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &procs);
    n = argc > 1 ? strtoul(argv[1], NULL, 10) : 730033;   /* tiny: its 730,032 floats + a status word */
    if (n == 0 || n > ((size_t)1 << 28) || !(w = (uint64_t *)calloc(2 * n, sizeof(uint64_t)))) {
        if (rank == 0) fprintf(stderr, "bench_allreduce: WORDS must be 1..2^28 (and fit in memory)\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
        return 2;
    }
    MPI_Type_contiguous(2, MPI_UINT64_T, &pair);
    MPI_Type_commit(&pair);
    MPI_Op_create(sum128, 1, &op);
    for (i = 0; i < reps; i++) {
        double t;
        MPI_Barrier(MPI_COMM_WORLD);
        t = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, w, (int)n, pair, op, MPI_COMM_WORLD);
        t = MPI_Wtime() - t;
        if (t < best) best = t;
        sum += t;
    }
    if (rank == 0)
        printf("all-reduce of %zu words of 16 bytes (%.2f MB) over %d processes: best %.4f s, mean %.4f s over %d calls\n",
               n, 16e-6 * (double)n, procs, best, sum / reps, reps);
    free(w);
    MPI_Op_free(&op);
    MPI_Type_free(&pair);
    MPI_Finalize();
    return 0;
}
