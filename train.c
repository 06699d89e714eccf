/* train.c - the training scenarios of the study (Khorrami et al., EUSIPCO 2023):
   base models W2V2 (alpha 0), VGS (alpha 1), VGS+ (alpha 0.5, both losses at once) and the
   schedules (A, B): train A, then continue with B, the optimizer reset at the switch.
   The algorithms live in ssl_vgs.h; this file parses arguments, prints progress and logs. */
#define _XOPEN_SOURCE 700 /* POSIX 2008 + XSI: isatty, mkdir, getrusage, sigaction, realpath */
#include <unistd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#ifdef _WIN32   /* mingw-w64 */
#include <direct.h>
#include <io.h>
#define mkdir(path, mode) _mkdir(path)
#define fsync(fd) _commit(fd)
#define realpath(path, abs) _fullpath((abs), (path), 4096)   /* every caller's buffer is 4096 bytes */
#else
#include <sys/resource.h>
#endif
#define SSL_VGS_IMPLEMENTATION
#include "ssl_vgs.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <math.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char g_msg[512];      /* the last error line, for process 0 to print (processes, below) */

/* Every error is one line on stderr; the caller returns a non-zero status. */
static int die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "train: %s\n", g_msg[0] == '\n' ? g_msg + 1 : g_msg);
    return -1;
}

/* ---------------------------------------------------------------- processes (make MPI=1)
   mpirun -np P ./train ... runs P processes that train one model together (data parallelism).
   Each global batch of --batch pairs is cut into P contiguous shares whose sizes differ by at
   most one (process r holds pairs [r B/P, (r+1) B/P), rounded down), every process reads and
   runs its own share, and the library's shard mode (ssl_vgs.h section 3) makes every number of
   an update a function of the global batch alone: sample-keyed randomness, the batch-coupled
   parts (BatchNorm, the diversity loss, the VGS loss's negatives, the common mask count) over
   the global batch, and gradients summed exactly, so that the checkpoints equal a one-process
   run's byte for byte whatever P. A plain build is the one-process case of the same code.
   Only process 0 prints, writes the log and the checkpoints (atomically) and evaluates; the
   others write nothing. At the start the processes compare their build, settings, data and
   state, and they agree on every stop (a signal, an error, --stop-after), so that none is left
   waiting for another. */
static int g_rank, g_procs = 1;        /* this process, the number of processes */
static double g_comm_s, g_comm_bytes;  /* time inside collectives (waiting included), bytes sent into them */

#ifdef SV_MPI
#include <mpi.h>
#include <limits.h>

static sv_comm g_comm;
static MPI_Datatype g_pair;            /* two 64-bit words: one exact 128-bit gradient sum */
static MPI_Op g_sum128;
static MPI_Comm g_errcomm;             /* a second communicator: the step-failure barrier never meets a training collective */
static FILE *g_err;                    /* processes other than 0: their real stderr (stdout and stderr go to /dev/null) */

static int comm_allgather(void *user, const double *mine, size_t n, double *all, const size_t *counts)
{
    int *cnt = (int *)malloc(2 * (size_t)g_procs * sizeof(int)), r, rc;
    size_t off = 0;
    double t0 = MPI_Wtime();
    (void)user;
    if (!cnt) return 1;
    for (r = 0; r < g_procs; r++) {
        if (counts[r] > INT_MAX || off > INT_MAX) { free(cnt); return 1; }
        cnt[r] = (int)counts[r];
        cnt[g_procs + r] = (int)off;
        off += counts[r];
    }
    rc = MPI_Allgatherv(mine, (int)n, MPI_DOUBLE, all, cnt, cnt + g_procs, MPI_DOUBLE, MPI_COMM_WORLD);
    free(cnt);
    g_comm_s += MPI_Wtime() - t0;
    g_comm_bytes += (double)n * sizeof(double);
    return rc != MPI_SUCCESS;
}

/* 128-bit two's-complement addition of (low, high) word pairs: associative and commutative
   (modulo 2^128), so MPI may add the processes' sums in any order or tree and every process
   still gets the same words. */
static void comm_sum128(void *in, void *inout, int *len, MPI_Datatype *dt)
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

static int comm_allreduce_exact(void *user, uint64_t *words, size_t n)
{
    size_t done = 0;
    double t0 = MPI_Wtime();
    (void)user;
    while (done < n) {   /* in pieces whose count fits an int */
        size_t k = n - done < ((size_t)1 << 28) ? n - done : ((size_t)1 << 28);
        if (MPI_Allreduce(MPI_IN_PLACE, words + 2 * done, (int)k, g_pair, g_sum128, MPI_COMM_WORLD) != MPI_SUCCESS) return 1;
        done += k;
    }
    g_comm_s += MPI_Wtime() - t0;
    g_comm_bytes += 16.0 * (double)n;
    return 0;
}

static void procs_end(void)
{
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}

static void procs_start(int *argc, char ***argv)
{
    int level;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &level);   /* only the main thread calls MPI */
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_procs);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_dup(MPI_COMM_WORLD, &g_errcomm);
    MPI_Type_contiguous(2, MPI_UINT64_T, &g_pair);
    MPI_Type_commit(&g_pair);
    MPI_Op_create(comm_sum128, 1, &g_sum128);
    g_comm.rank = g_rank;
    g_comm.size = g_procs;
    g_comm.allgather = comm_allgather;
    g_comm.allreduce_exact = comm_allreduce_exact;
    g_err = stderr;
    atexit(procs_end);      /* --help and the benchmark end with exit() */
    if (g_rank != 0) {
        int fd = dup(2);
        if (fd >= 0) g_err = fdopen(fd, "w");
        if (!g_err) g_err = stderr;
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) g_err = stderr;
    }
}

static const sv_comm *procs_comm(void) { return g_procs > 1 ? &g_comm : NULL; }

/* Do all processes succeed (rc 0)? When one failed, process 0 prints the first failing
   process's line (its own was printed already) and everyone returns -1. */
static int procs_agree(int rc)
{
    int bad = rc != 0, any = 0, r;
    char *all = NULL;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (!any) return 0;
    if (g_rank == 0) all = (char *)calloc((size_t)g_procs, sizeof g_msg);
    if (!bad) g_msg[0] = 0;
    MPI_Gather(g_msg, (int)sizeof g_msg, MPI_CHAR, all, (int)sizeof g_msg, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (g_rank == 0 && !bad && all)
        for (r = 1; r < g_procs; r++)
            if (all[(size_t)r * sizeof g_msg]) {
                const char *m = all + (size_t)r * sizeof g_msg;
                fprintf(stderr, "train: process %d: %s\n", r, m[0] == '\n' ? m + 1 : m);
                break;
            }
    free(all);
    return -1;
}

/* A step failed on this process. The failures that every process meets at the same point (a
   batch refused, a non-finite loss or gradient: the library computes those over the global
   batch) reach this barrier on every process; then the run stops as usual, process 0 having
   printed the line. A failure of this process alone (memory, I/O) does not: after 10 s it says
   so on its stderr and ends the job (MPI_Abort), as the others wait in a collective forever. */
static void procs_step_failed(void)
{
    MPI_Request req;
    int done = 0, i;
    if (g_procs == 1) return;
    MPI_Ibarrier(g_errcomm, &req);
    for (i = 0; i < 1000 && !done; i++) {
        struct timespec ts = {0, 10000000};
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (!done) nanosleep(&ts, NULL);
    }
    if (done) return;
    fprintf(g_err, "train: process %d of %d: %s; the others cannot go on: the job ends (the last checkpoint is intact)\n",
            g_rank, g_procs, g_msg[0] == '\n' ? g_msg + 1 : g_msg);
    fflush(g_err);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* Test hook of make test-mpi: SV_MPI_TEST_KILL=R:S makes process R die (SIGKILL) at the start
   of the loop pass after update S, as a crashed or killed process would; R:S:term sends it a
   SIGTERM instead (a signal that reaches one process only: all must stop at the same update). */
static void procs_test_kill(size_t step)
{
    const char *e = getenv("SV_MPI_TEST_KILL");
    int rank, n;
    unsigned long s;
    char how[8] = "";
    if (e && (n = sscanf(e, "%d:%lu:%7s", &rank, &s, how)) >= 2 && rank == g_rank && s == (unsigned long)step)
        raise(n == 3 && !strcmp(how, "term") ? SIGTERM : SIGKILL);
}

/* The sum of a count over the processes. */
static double procs_sum(double x)
{
    double all = x;
    if (g_procs > 1) MPI_Allreduce(&x, &all, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return all;
}

/* The largest pending signal of any process: all stop at the same update. */
static int procs_signal(int sig)
{
    int any = sig;
    if (g_procs > 1) MPI_Allreduce(&sig, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return any;
}
#else
/* A build without MPI started by mpirun or srun would train P times alone into one folder:
   the launchers' variables (Open MPI; MPICH and Slurm's PMI) give it away, and train_main
   refuses (process 0 of the launch prints the line; the others end quietly). */
static int g_launched, g_launched_rank;  /* the process count of such a launch (or 0), and this one's rank */
static void procs_start(int *argc, char ***argv)
{
    const char *n = getenv("OMPI_COMM_WORLD_SIZE"), *r = getenv("OMPI_COMM_WORLD_RANK");
    (void)argc;
    (void)argv;
    if (!n) { n = getenv("PMI_SIZE"); r = getenv("PMI_RANK"); }
    if (n && atoi(n) > 1) g_launched = atoi(n);
    if (r) g_launched_rank = atoi(r);
}
static void procs_end(void) {}
static const sv_comm *procs_comm(void) { return NULL; }
static int procs_agree(int rc) { return rc ? -1 : 0; }
static void procs_step_failed(void) {}
static int procs_signal(int sig) { return sig; }
static double procs_sum(double x) { return x; }
static void procs_test_kill(size_t step) { (void)step; }
#endif

/* This process's share of a global batch of B pairs, with the key of its randomness: the seed,
   the update and which batch of the update (0: the training batch, 1: the audio-only one). */
static void procs_shard(size_t B, uint64_t seed, size_t step, int which, sv_shard *s)
{
    sv_shard_split(B, g_procs, g_rank, &s->first, &s->count);
    s->total = B;
    s->key = sv_rng_key(sv_rng_key(sv_rng_key(seed, 0x5348415244ull /* "SHARD" */), step), (uint64_t)which);
    s->comm = procs_comm();
}

/* ---------------------------------------------------------------- options
   One table describes every option: where its value lands in `opts`, its kind and valid range,
   the modes it belongs to, and what a resumed run does with it. parse_args checks each value
   against its row before anything is read (a number with trailing characters, out of range,
   NaN/inf, an unknown choice, an option given twice or in the wrong mode is a one-line error).
   The options marked S_FIXED / S_EXTEND are the run's settings: their resolved values go into
   every checkpoint as "key = value" lines (settings_text), and `--resume DIR` takes them back
   (apply_settings), refusing an S_FIXED option given again with another value.
   To add an option: a field in `opts`, a row in opt_table, a line in usage(); checks that
   involve several options go into check_opts. */
typedef struct opts {
    /* the run's settings (stored in every checkpoint) */
    const char *scenario, *config, *data, *audio_only, *schedules;
    const char *set[32];
    size_t n_set;
    size_t steps, switch_step, batch, eval_every, ckpt_every, log_every, eval_batches;
    double crop_s, lr, warmup, alpha_plus, wd, clip;
    size_t all, bertadam;                   /* flags: 0 or 1 */
    size_t seeds;                           /* --all --seeds N: N studies OUT/seed<S>/ (0: one study in OUT) */
    uint64_t seed;
    const char *ssl, *targets;              /* MT4SSL: the SSL objective and its offline targets */
    const char *precision;                  /* "fp32" or "bf16": what the run trains in (resolved by check_opts) */
    const char *init_from;                  /* wav2vec 2.0 weights (safetensors) to start from */
    /* this invocation only */
    const char *out, *resume, *write_builtin, *regions;
    const char *wav_format;                /* --write-builtin WAV samples: pcm16 (default) | float32 */
    const char *export_ckpt, *export_out;  /* --export-hf CKPT OUT.safetensors */
    size_t force, quiet, bench, bench_step, bench_extract, bench_gemm, threads, stop_after, stream;
    size_t images, captions, val_images, test_images;
    const char *kmeans, *kmeans_from;       /* --kmeans mode: offline targets of --data */
    size_t kmeans_k, kmeans_layer, kmeans_iter;
    unsigned char given[64];                /* given[k]: opt_table[k] was on the command line */
} opts;

enum { K_FLAG, K_SIZE, K_U64, K_DOUBLE, K_STR, K_SET, K_PAIR };   /* K_PAIR: two strings */
enum { S_NO,        /* this invocation only: --out, --threads, --quiet, ... */
       S_FIXED,     /* a run setting: stored; given again on --resume it must equal the stored value */
       S_EXTEND };  /* a run setting that --resume may change: --steps (to extend a run) */
enum { M_TRAIN = 1, M_BUILTIN = 2, M_BENCH = 4, M_KMEANS = 8, M_EXPORT = 16, M_ALL = 31 };

typedef struct opt_def {
    const char *name;       /* "--steps"; the settings key is the name without the dashes */
    int kind;
    size_t off;             /* offsetof(opts, field) */
    double lo, hi;          /* numbers: the valid range */
    int gt;                 /* 1: the value must be above lo, not equal to it */
    int store;              /* S_NO, S_FIXED or S_EXTEND */
    int modes;              /* M_* the option belongs to */
    const char *choices;    /* strings: "a|b|c", or NULL for any text */
} opt_def;

#define OPT(name, kind, field, lo, hi, gt, store, modes, choices) \
    { name, kind, offsetof(opts, field), lo, hi, gt, store, modes, choices }
static const opt_def opt_table[] = {
    /* scenario */
    OPT("--scenario", K_STR, scenario, 0, 0, 0, S_FIXED, M_TRAIN | M_BENCH, NULL),
    OPT("--all", K_FLAG, all, 0, 1, 0, S_FIXED, M_TRAIN, NULL),
    OPT("--schedules", K_STR, schedules, 0, 0, 0, S_FIXED, M_TRAIN, NULL),
    OPT("--steps", K_SIZE, steps, 1, 1e9, 0, S_EXTEND, M_TRAIN, NULL),
    OPT("--switch", K_SIZE, switch_step, 0, 1e9, 0, S_FIXED, M_TRAIN, NULL),   /* 0 stored: no schedule */
    OPT("--alpha", K_DOUBLE, alpha_plus, 0, 1, 0, S_FIXED, M_TRAIN, NULL),
    /* model and data */
    OPT("--config", K_STR, config, 0, 0, 0, S_FIXED, M_TRAIN | M_BENCH, "tiny|small|base"),
    OPT("--set", K_SET, set, 0, 0, 0, S_FIXED, M_TRAIN, NULL),
    OPT("--data", K_STR, data, 0, 0, 0, S_FIXED, M_TRAIN | M_KMEANS, NULL),
    OPT("--audio-only", K_STR, audio_only, 0, 0, 0, S_FIXED, M_TRAIN, NULL),
    OPT("--stream", K_FLAG, stream, 0, 1, 0, S_NO, M_TRAIN | M_KMEANS, NULL),   /* the same bits either way */
    OPT("--crop", K_DOUBLE, crop_s, 0, 3600, 1, S_FIXED, M_TRAIN | M_BENCH, NULL),
    OPT("--batch", K_SIZE, batch, 1, 65536, 0, S_FIXED, M_TRAIN | M_BENCH, NULL),
    /* optimizer */
    OPT("--lr", K_DOUBLE, lr, 0, 1, 1, S_FIXED, M_TRAIN, NULL),
    OPT("--warmup", K_DOUBLE, warmup, 0, 1, 0, S_FIXED, M_TRAIN, NULL),
    OPT("--wd", K_DOUBLE, wd, 0, 1, 0, S_FIXED, M_TRAIN, NULL),
    OPT("--clip", K_DOUBLE, clip, 0, 1e6, 0, S_FIXED, M_TRAIN, NULL),
    OPT("--bertadam", K_FLAG, bertadam, 0, 1, 0, S_FIXED, M_TRAIN, NULL),
    /* MT4SSL (Ma et al. 2022) as the SSL objective, with k-means targets made by --kmeans */
    OPT("--ssl", K_STR, ssl, 0, 0, 0, S_FIXED, M_TRAIN, "w2v2|mt4ssl|w2v2+mt4ssl"),
    OPT("--targets", K_STR, targets, 0, 0, 0, S_FIXED, M_TRAIN, NULL),
    /* bf16 mixed precision (AVX512-BF16); also the step of --bench-step */
    OPT("--precision", K_STR, precision, 0, 0, 0, S_FIXED, M_TRAIN | M_BENCH, "fp32|bf16"),
    /* public wav2vec 2.0 weights to start from (a record on resume: the weights come from the checkpoint) */
    OPT("--init-from", K_STR, init_from, 0, 0, 0, S_FIXED, M_TRAIN, NULL),
    /* run */
    OPT("--eval-every", K_SIZE, eval_every, 1, 1e9, 0, S_FIXED, M_TRAIN, NULL),
    OPT("--eval-batches", K_SIZE, eval_batches, 1, 1e6, 0, S_FIXED, M_TRAIN, NULL),
    OPT("--ckpt-every", K_SIZE, ckpt_every, 0, 1e9, 0, S_FIXED, M_TRAIN, NULL),
    OPT("--log-every", K_SIZE, log_every, 1, 1e9, 0, S_FIXED, M_TRAIN, NULL),
    OPT("--seed", K_U64, seed, 0, 0, 0, S_FIXED, M_TRAIN | M_BUILTIN | M_KMEANS, NULL),
    OPT("--seeds", K_SIZE, seeds, 0, 1000, 0, S_FIXED, M_TRAIN, NULL),      /* 0 stored: one study in OUT */
    OPT("--out", K_STR, out, 0, 0, 0, S_NO, M_TRAIN, NULL),
    OPT("--resume", K_STR, resume, 0, 0, 0, S_NO, M_TRAIN, NULL),
    OPT("--force", K_FLAG, force, 0, 1, 0, S_NO, M_TRAIN, NULL),
    OPT("--threads", K_SIZE, threads, 1, 1024, 0, S_NO, M_ALL, NULL),
    OPT("--stop-after", K_SIZE, stop_after, 1, 1e9, 0, S_NO, M_TRAIN, NULL),
    OPT("--quiet", K_FLAG, quiet, 0, 1, 0, S_NO, M_ALL, NULL),
    /* other modes */
    OPT("--write-builtin", K_STR, write_builtin, 0, 0, 0, S_NO, M_BUILTIN, NULL),
    OPT("--images", K_SIZE, images, 1, 1e7, 0, S_NO, M_BUILTIN, NULL),
    OPT("--val-images", K_SIZE, val_images, 0, 1e7, 0, S_NO, M_BUILTIN, NULL),
    OPT("--test-images", K_SIZE, test_images, 0, 1e7, 0, S_NO, M_BUILTIN, NULL),
    OPT("--captions", K_SIZE, captions, 1, 100, 0, S_NO, M_BUILTIN, NULL),
    OPT("--regions", K_STR, regions, 0, 0, 0, S_NO, M_BUILTIN, "detector|pixels"),
    OPT("--wav-format", K_STR, wav_format, 0, 0, 0, S_NO, M_BUILTIN, "pcm16|float32"),
    OPT("--export-hf", K_PAIR, export_ckpt, 0, 0, 0, S_NO, M_EXPORT, NULL),   /* CKPT OUT.safetensors */
    OPT("--kmeans", K_STR, kmeans, 0, 0, 0, S_NO, M_KMEANS, NULL),
    OPT("--kmeans-from", K_STR, kmeans_from, 0, 0, 0, S_NO, M_KMEANS, NULL),
    OPT("--k", K_SIZE, kmeans_k, 2, 65536, 0, S_NO, M_KMEANS, NULL),
    OPT("--kmeans-layer", K_SIZE, kmeans_layer, 0, SV_MAX_LAYERS, 0, S_NO, M_KMEANS, NULL),
    OPT("--kmeans-iter", K_SIZE, kmeans_iter, 1, 1e6, 0, S_NO, M_KMEANS, NULL),
    OPT("--bench", K_FLAG, bench, 0, 1, 0, S_NO, M_BENCH, NULL),
    OPT("--bench-step", K_FLAG, bench_step, 0, 1, 0, S_NO, M_BENCH, NULL),
    OPT("--bench-extract", K_FLAG, bench_extract, 0, 1, 0, S_NO, M_BENCH, NULL),
    OPT("--bench-gemm", K_FLAG, bench_gemm, 0, 1, 0, S_NO, M_BENCH, NULL),
};
#define N_OPTS (sizeof opt_table / sizeof opt_table[0])

static void usage(FILE *f)
{
    fprintf(f,
        "usage: ./train [options]\n"
        "Trains the scenarios of the study on the built-in corpus or a data_prep.sh corpus.\n\n"
        "scenario:\n"
        "  --scenario S       w2v2 (alpha 0), vgs (alpha 1), vgs+ (alpha 0.5), or a schedule A,B of\n"
        "                     those, e.g. w2v2,vgs (default: vgs+)\n"
        "  --all              the whole 9-row study: 3 base runs, then the 6 schedules continue from\n"
        "                     the base runs' checkpoints at the switch (runs in OUT/<name>/)\n"
        "  --schedules LIST   with --all: only these schedules, e.g. w2v2-vgs,vgs-w2v2 (default: all six)\n"
        "  --steps N          total updates of a run (default 2000)\n"
        "  --switch K         updates in stage A of a schedule, 1..N-1 (default: the paper's 20:70, 2/7 of N)\n"
        "  --alpha A          alpha of vgs+, 0..1 (default 0.5)\n"
        "model and data:\n"
        "  --config C         tiny | small | base (default tiny)\n"
        "  --set key=value    override one config field (repeatable), e.g. --set n_negatives=50;\n"
        "                     every field's range is checked before any data is read\n"
        "  --data D           builtin | builtin:images=400,captions=2,seed=1,... | a data_prep.sh\n"
        "                     folder (default builtin)\n"
        "  --audio-only M     a speech-only manifest (data_prep.sh librispeech): each update whose stage\n"
        "                     has an SSL loss adds (1 - alpha) * loss_AUD of a batch from it, as\n"
        "                     FaST-VGS+ mixed in LibriSpeech (default: none)\n"
        "  --stream           leave a corpus folder (audio, image features; also --audio-only) on disk\n"
        "                     and read each utterance's file and image's rows when a batch or an\n"
        "                     evaluation uses them, instead of loading all at the start: for corpora\n"
        "                     larger than memory. The same numbers either way. Under mpirun with more\n"
        "                     than one process it is always on: each process reads its share only\n"
        "  --crop SECONDS     random crop of training utterances (default 8)\n"
        "  --batch B          utterance/image pairs per batch (default 8)\n"
        "optimizer (the paper: Adam, lr 1e-4, 10%% warm-up then linear decay):\n"
        "  --lr LR            peak learning rate, > 0 and <= 1 (default 1e-4)\n"
        "  --warmup F         warm-up fraction of each stage, 0..1 (default 0.1)\n"
        "  --wd W             decoupled weight decay, 0..1 (default 0.01)\n"
        "  --clip C           gradient-norm clipping, 0 = none (default 1.0)\n"
        "  --bertadam         the reference trainer's BertAdam (no bias correction)\n"
        "  --ssl OBJ          SSL objective: w2v2 (default), mt4ssl or w2v2+mt4ssl (MT4SSL, Ma et al. 2022)\n"
        "  --targets DIR      MT4SSL's offline k-means targets, made with --kmeans (needed unless\n"
        "                     --set mt4_offline_weight=0)\n"
        "  --init-from F      start the wav2vec 2.0 part (CNN, transformer, quantizer, projections)\n"
        "                     from a Hugging Face wav2vec 2.0 model in safetensors (e.g.\n"
        "                     facebook/wav2vec2-base; config.json beside it is read); the CLS token\n"
        "                     and the VGS branch start as usual. Its architecture must be --config's\n"
        );
    /* two strings: C99 compilers need only support 4095 characters in one literal */
    fprintf(f,
        "run:\n"
        "  --out DIR          logs and checkpoints (default runs/<scenario>; parents are created). A\n"
        "                     folder that already holds a run is refused: resume it, or --force\n"
        "  --force            clear the run files (log, checkpoints, data.spec, final_eval.json) of an\n"
        "                     earlier run in --out first\n"
        "  --eval-every N     held-out losses and recall, both tasks, every N updates (default steps/10)\n"
        "  --eval-batches N   validation batches per evaluation (default 8)\n"
        "  --ckpt-every N     checkpoint every N updates; 0 = only at the switch and the end (default 500)\n"
        "  --log-every N      progress line every N updates when stdout is not a terminal (default 20)\n"
        "  --resume DIR       continue the run (or the --all study) in DIR bit-exactly from its last\n"
        "                     checkpoint, with every setting it was started with; --steps N may extend\n"
        "                     it, --threads and --quiet may change, any other option must be left out\n"
        "                     or repeat the stored value\n"
        "  --threads N        OpenMP threads, 1..1024 (default: all cores; results do not depend on it)\n"
        "  --precision P      fp32 (default) or bf16: the products of the encoder and the branches with\n"
        "                     bf16 operands and fp32 sums (needs AVX512-BF16; elsewhere fp32 with a note)\n"
        "  --seed S           seed of initialisation, batches, masks and dropout (default 1)\n"
        "  --seeds N          with --all: N studies with seeds S, S+1, .., S+N-1 in OUT/seed<S>/, one after\n"
        "                     the other (./train --all --seed S --out OUT/seed<S> in parallel processes\n"
        "                     gives the same bits); ./eval --report OUT gives means and 95%% intervals\n"
        "  --stop-after N     stop after update N with a checkpoint, as if interrupted (for tests)\n"
        "  --quiet            no progress output\n"
        "  Ctrl-C or SIGTERM finishes the current update, writes a checkpoint and prints the resume\n"
        "  command (a second Ctrl-C stops at once; the last checkpoint stays intact).\n");
    fprintf(f,   /* two strings: C99 compilers need only take 4095 characters in one */
        "other modes:\n"
        "  --write-builtin OUT [--images N] [--val-images V] [--test-images M] [--captions K]\n"
        "                [--seed S] [--regions detector|pixels] [--wav-format pcm16|float32]\n"
        "                     write the built-in corpus in the data_prep.sh layout: N images in\n"
        "                     all, V (default 10%%) for validation, M (default 20%%) for test, the\n"
        "                     rest for training; K captions per image (1..100, default 2);\n"
        "                     regions from the simulated object detector (default) or raw pixels;\n"
        "                     WAV files as 16-bit PCM (default) or float32 (bit-exact audio)\n"
        "  --export-hf CKPT OUT.safetensors\n"
        "                     write the wav2vec 2.0 part of a checkpoint (or of a .safetensors\n"
        "                     model: a conversion to float32) with Hugging Face's names\n"
        "                     (Wav2Vec2ForPreTraining), and config.json beside it, for transformers,\n"
        "                     torchaudio or ./eval features\n"
        "  --kmeans DIR [--k K] [--kmeans-from CKPT [--kmeans-layer N]] [--kmeans-iter N] [--seed S]\n"
        "                     MT4SSL / HuBERT offline targets of the --data corpus into the folder DIR\n"
        "                     (e.g. inside the corpus folder): k-means (default K 100) of the train\n"
        "                     split's MFCCs, or (K 500) of layer N (default L/2) of a checkpoint, then\n"
        "                     one label per 20 ms frame of every split (fairseq .km files)\n"
        "  --bench            speed benchmark (make bench)\n"
        "  --bench-step       only the small joint step with its per-op profile (--threads N); with\n"
        "                     --config C (not tiny): the step of --scenario with --batch and --crop;\n"
        "                     --precision bf16 for the bf16 step\n"
        "  --bench-extract    only feature extraction (all layers, eval mode) of one 10 s utterance\n"
        "                     with --config (default tiny; base for tools/bench_extract.py) at --threads N\n"
        "  --bench-gemm       only the GEMM table (fp32 and bf16, 1 and 2 threads)\n"
        "  --help             this text\n");
}

static void *field(opts *o, const opt_def *d) { return (char *)o + d->off; }
static const void *cfield(const opts *o, const opt_def *d) { return (const char *)o + d->off; }

static const opt_def *find_opt(const char *name)
{
    size_t k;
    for (k = 0; k < N_OPTS; k++) if (!strcmp(opt_table[k].name, name)) return &opt_table[k];
    return NULL;
}
static int given(const opts *o, const char *name)
{
    const opt_def *d = find_opt(name);
    return d && o->given[d - opt_table];
}

/* "a|b|c" contains v? */
static int in_choices(const char *choices, const char *v)
{
    size_t n = strlen(v);
    const char *p = choices;
    while (*p) {
        const char *e = strchr(p, '|');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, v, n)) return 1;
        p += l + (e != NULL);
    }
    return 0;
}

/* Parses one option value into o, checking it against its row; a one-line error otherwise.
   `what` names the value's source in messages (the option, or the settings key of a file). */
static int opt_value(opts *o, const opt_def *d, const char *v, const char *what)
{
    switch (d->kind) {
    case K_SIZE: {
        size_t x;
        if (sv_parse_size(v, (size_t)d->lo, (size_t)d->hi, &x) != SV_OK) return die("%s: %s", what, sv_last_error());
        *(size_t *)field(o, d) = x;
        return 0;
    }
    case K_U64: {
        size_t x;
        if (sv_parse_size(v, 0, SIZE_MAX, &x) != SV_OK) return die("%s: %s", what, sv_last_error());
        *(uint64_t *)field(o, d) = (uint64_t)x;
        return 0;
    }
    case K_DOUBLE: {
        double x;
        if (sv_parse_double(v, d->lo, d->hi, &x) != SV_OK) return die("%s: %s", what, sv_last_error());
        if (d->gt && x == d->lo) return die("%s: must be above %g, not %s", what, d->lo, v);
        *(double *)field(o, d) = x;
        return 0;
    }
    case K_FLAG: {
        size_t x;
        if (sv_parse_size(v, 0, 1, &x) != SV_OK) return die("%s: %s", what, sv_last_error());
        *(size_t *)field(o, d) = x;
        return 0;
    }
    case K_SET:
        if (!strchr(v, '=') || v[0] == '=') return die("%s: wants key=value, got '%s'", what, v);
        if (o->n_set == sizeof o->set / sizeof o->set[0]) return die("%s: at most %zu of them", what, sizeof o->set / sizeof o->set[0]);
        o->set[o->n_set++] = v;
        return 0;
    default:
        if (!*v) return die("%s: empty value", what);
        if (strchr(v, '\n')) return die("%s: the value holds a line break", what);
        if (d->choices && !in_choices(d->choices, v)) return die("%s: '%s' is not one of %s", what, v, d->choices);
        *(const char **)field(o, d) = v;
        return 0;
    }
}

static void defaults(opts *o)
{
    memset(o, 0, sizeof *o);
    o->scenario = "vgs+"; o->config = "tiny"; o->data = "builtin";
    o->steps = 2000; o->batch = 8; o->ckpt_every = 500; o->log_every = 20; o->eval_batches = 8;
    o->crop_s = 8; o->lr = 1e-4; o->warmup = 0.1; o->alpha_plus = 0.5; o->wd = 0.01; o->clip = 1.0;
    o->seed = 1; o->precision = "fp32";
}

static int parse_args(int argc, char **argv, opts *o)
{
    int i, mode;
    size_t k;
    defaults(o);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const opt_def *d;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); exit(0); }
        if (!(d = find_opt(a))) {
            if (a[0] != '-') return die("unexpected argument '%s' (options start with --; see --help)", a);
            return die("unknown option '%s' (see --help)", a);
        }
        k = (size_t)(d - opt_table);
        if (o->given[k] && d->kind != K_SET) return die("%s is given twice", a);
        o->given[k] = 1;
        if (d->kind == K_FLAG) { *(size_t *)field(o, d) = 1; continue; }
        if (d->kind == K_PAIR) {   /* --export-hf CKPT OUT */
            if (i + 2 >= argc || argv[i + 1][0] == '-' || argv[i + 2][0] == '-')
                return die("%s needs a checkpoint and an output .safetensors file", a);
            o->export_ckpt = argv[++i];
            o->export_out = argv[++i];
            continue;
        }
        if (i + 1 >= argc) return die("%s needs a value (see --help)", a);
        if (d->kind == K_STR && argv[i + 1][0] == '-' && argv[i + 1][1] == '-')
            return die("%s needs a value, not the option '%s'", a, argv[i + 1]);
        if (opt_value(o, d, argv[++i], a)) return -1;
    }
    /* one mode per invocation: options of another mode are refused rather than ignored */
    mode = o->write_builtin ? M_BUILTIN : (o->bench || o->bench_step || o->bench_extract || o->bench_gemm) ? M_BENCH : o->kmeans ? M_KMEANS
         : o->export_ckpt ? M_EXPORT : M_TRAIN;
    if (!!o->write_builtin + !!(o->bench || o->bench_step || o->bench_extract || o->bench_gemm) + !!o->kmeans + !!o->export_ckpt > 1)
        return die("--write-builtin, --bench, --kmeans and --export-hf are different modes");
    if (o->bench + o->bench_step + o->bench_extract + o->bench_gemm > 1)
        return die("--bench, --bench-step, --bench-extract and --bench-gemm are different benchmarks: give one");
    if (given(o, "--precision") && mode == M_BENCH && !o->bench_step)
        return die("--precision applies to --bench-step (--bench and --bench-gemm time fp32 and bf16 side by side)");
    for (k = 0; k < N_OPTS; k++)
        if (o->given[k] && !(opt_table[k].modes & mode))
            return die("%s does not apply %s", opt_table[k].name,
                       mode == M_BUILTIN ? "to --write-builtin" : mode == M_BENCH ? "to --bench" : mode == M_KMEANS ? "to --kmeans" :
                       mode == M_EXPORT ? "to --export-hf" :
                       opt_table[k].modes == M_BUILTIN ? "without --write-builtin" : opt_table[k].modes == M_KMEANS ? "without --kmeans" :
                       "to training");
    if (mode == M_BENCH && !o->bench_step && !o->bench_extract)
        for (k = 0; k < N_OPTS; k++)
            if (o->given[k] && opt_table[k].modes != M_BENCH && opt_table[k].modes != M_ALL)
                return die("%s applies to --bench-step and --bench-extract, not to %s", opt_table[k].name, o->bench_gemm ? "--bench-gemm" : "--bench");
    if (o->bench_step) o->bench = 2;
    if (o->bench_extract) o->bench = 3;
    if (o->export_out) {
        size_t n = strlen(o->export_out);
        if (n < 13 || strcmp(o->export_out + n - 12, ".safetensors") != 0)
            return die("--export-hf writes a .safetensors file, not '%s'", o->export_out);
    }
    if (o->bench_gemm) o->bench = 4;
    return 0;
}

/* ---------------------------------------------------------------- scenarios */
typedef struct stage { const char *name; float alpha; } stage;

static int parse_stage(const char *s, size_t n, float alpha_plus, stage *st)
{
    if (n == 4 && !strncmp(s, "w2v2", 4)) { st->name = "w2v2"; st->alpha = 0.0f; return 0; }
    if (n == 3 && !strncmp(s, "vgs", 3)) { st->name = "vgs"; st->alpha = 1.0f; return 0; }
    if ((n == 4 && !strncmp(s, "vgs+", 4)) || (n == 7 && !strncmp(s, "vgsplus", 7))) { st->name = "vgsplus"; st->alpha = alpha_plus; return 0; }
    return -1;
}

/* "w2v2" or "w2v2,vgs" -> stages; returns the number of stages or -1 (two equal stages, e.g.
   vgs,vgs, are refused: that is one longer run with a needless optimizer reset) */
static int parse_scenario(const char *s, float alpha_plus, stage st[2])
{
    const char *comma = strchr(s, ',');
    if (!comma) return parse_stage(s, strlen(s), alpha_plus, &st[0]) == 0 ? 1 : -1;
    if (parse_stage(s, (size_t)(comma - s), alpha_plus, &st[0]) || parse_stage(comma + 1, strlen(comma + 1), alpha_plus, &st[1])) return -1;
    if (!strcmp(st[0].name, st[1].name)) return -1;
    return 2;
}

/* the parameters a stage trains: its SSL objective's (wav2vec 2.0 or MT4SSL or both), VGS's, or both */
static uint32_t groups_for(float alpha, const sv_config *cfg)
{
    return alpha == 0.0f ? sv_ssl_groups(cfg) : alpha == 1.0f ? SV_GROUPS_VGS : sv_ssl_groups(cfg) | SV_GROUPS_VGS;
}

static const char *base_names[3] = {"w2v2", "vgs", "vgsplus"};
static const char *sched_names[6][2] = {{"w2v2", "vgsplus"}, {"vgs", "vgsplus"}, {"w2v2", "vgs"},
                                        {"vgs", "w2v2"}, {"vgsplus", "w2v2"}, {"vgsplus", "vgs"}};

/* is name one of the comma-separated entries of list? */
static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && strncmp(p, name, n) == 0) return 1;
        p += l + (e ? 1 : 0);
    }
    return 0;
}

/* ---------------------------------------------------------------- files of a run folder */
/* What ./train writes into a run folder; --force removes exactly these (and their temporaries). */
static const char *run_files[] = {"log.jsonl", "last.ckpt", "final.ckpt", "switch.ckpt", "data.spec", "final_eval.json"};
#define N_RUN_FILES (sizeof run_files / sizeof run_files[0])
/* What eval --report writes into a study folder (removed by --force with the study) */
static const char *report_files[] = {"study.settings", "results.md", "loss_av.svg", "loss_aud.svg", "recall.svg", "abx_best.svg",
                                     "abx_layers.svg", "abx_layers_across.svg"};
#define N_REPORT_FILES (sizeof report_files / sizeof report_files[0])

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}
static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char p[1024];
    size_t i, n = strlen(path);
    if (n == 0 || n >= sizeof p) return die("cannot create folder '%s': %s", path, n ? "name too long" : "empty name");
    memcpy(p, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0) continue;
        p[i] = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) return die("cannot create folder %s: %s", p, strerror(errno));
        if (!is_dir(p)) return die("cannot create folder %s: a file of that name exists", p);
        if (i < n) p[i] = '/';
    }
    return 0;
}

/* the run files present in dir, as "log.jsonl, last.ckpt" (empty: none) */
static void run_files_in(const char *dir, char *names, size_t cap)
{
    size_t k, n = 0;
    char p[1200];
    names[0] = 0;
    for (k = 0; k < N_RUN_FILES; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, run_files[k]);
        if (exists(p)) n += (size_t)snprintf(names + n, n < cap ? cap - n : 0, "%s%s", n ? ", " : "", run_files[k]);
        if (n >= cap) break;
    }
}

static int clear_files(const char *dir, const char **files, size_t n_files)
{
    size_t k;
    char p[1200];
    for (k = 0; k < n_files; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[k]);
        if (remove(p) != 0 && errno != ENOENT) return die("--force: cannot remove %s: %s", p, strerror(errno));
        snprintf(p, sizeof p, "%s/%s.tmp", dir, files[k]);
        if (remove(p) != 0 && errno != ENOENT) return die("--force: cannot remove %s: %s", p, strerror(errno));
    }
    return 0;
}

/* Writes text to path atomically (path.tmp, then rename): a full disk leaves no empty file. */
static int write_text_atomic(const char *path, const char *text)
{
    char tmp[1300];
    FILE *f;
    int ok;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "w"))) return die("cannot write %s: %s", tmp, strerror(errno));
    ok = fputs(text, f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok) { int e = errno; remove(tmp); return die("cannot write %s: %s", path, strerror(e)); }
    if (rename(tmp, path) != 0) { int e = errno; remove(tmp); return die("cannot rename %s to %s: %s", tmp, path, strerror(e)); }
    return 0;
}

/* ---------------------------------------------------------------- run settings as text */
/* one option's value as settings text ("" for an absent string) */
static void format_value(const opts *o, const opt_def *d, char *buf, size_t cap)
{
    switch (d->kind) {
    case K_SIZE: case K_FLAG: snprintf(buf, cap, "%zu", *(const size_t *)cfield(o, d)); break;
    case K_U64: snprintf(buf, cap, "%llu", (unsigned long long)*(const uint64_t *)cfield(o, d)); break;
    case K_DOUBLE: snprintf(buf, cap, "%.17g", *(const double *)cfield(o, d)); break;
    case K_STR: { const char *s = *(const char *const *)cfield(o, d); snprintf(buf, cap, "%s", s ? s : ""); break; }
    default: buf[0] = 0; break;
    }
}

/* The resolved settings of a run: "key = value" lines, one per S_FIXED/S_EXTEND option (and one
   "set = key=value" line per --set). Malloc'd. */
static char *settings_text(const opts *o)
{
    size_t cap = 8192, n = 0, k, j;
    char *t = (char *)malloc(cap), v[1100];
    if (!t) return NULL;
    n += (size_t)snprintf(t + n, cap - n, "# ./train settings: restored by --resume\n");
    for (k = 0; k < N_OPTS; k++) {
        const opt_def *d = &opt_table[k];
        if (d->store == S_NO) continue;
        if (d->kind == K_SET) {
            for (j = 0; j < o->n_set && n < cap; j++) n += (size_t)snprintf(t + n, cap - n, "%s = %s\n", d->name + 2, o->set[j]);
            continue;
        }
        format_value(o, d, v, sizeof v);
        if (n < cap) n += (size_t)snprintf(t + n, cap - n, "%s = %s\n", d->name + 2, v);
    }
    if (n >= cap) { free(t); return NULL; }
    return t;
}

/* The config of the options: the preset, every --set applied, every field's range checked. */
static int build_config(const char *preset, const char *const *set, size_t n_set, sv_config *cfg)
{
    size_t i;
    if (sv_config_preset(preset, cfg) != SV_OK) return die("%s", sv_last_error());
    for (i = 0; i < n_set; i++) {
        char key[64];
        const char *eq = strchr(set[i], '=');
        if (!eq || (size_t)(eq - set[i]) >= sizeof key) return die("--set wants key=value, got '%s'", set[i]);
        memcpy(key, set[i], (size_t)(eq - set[i]));
        key[eq - set[i]] = 0;
        if (sv_config_set(cfg, key, eq + 1) != SV_OK) return die("--set %s: %s", set[i], sv_last_error());
    }
    if (sv_config_check(cfg) != SV_OK) return die("%s%s", n_set ? "--set: " : "", sv_last_error());
    return 0;
}

/* Takes a run's stored settings back into o (src names the file in messages). Options not given
   on the command line take the stored value; an S_FIXED option given with another value is
   refused naming the stored one; a key this build does not know (a newer train wrote it) is
   refused, a setting the file lacks (an older train wrote it) keeps its default with a note. */
static int apply_settings(opts *o, char *text, const char *src)
{
    opts st;
    char *line = text, *next;
    const char *stored_set[32];
    size_t n_stored_set = 0, k;
    defaults(&st);
    for (; line && *line; line = next) {
        char *eq, *key, *val, *e;
        const opt_def *d;
        char name[80];
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (!*line || *line == '#') continue;
        if (!(eq = strstr(line, " = "))) return die("%s: bad settings line '%s'", src, line);
        *eq = 0;
        key = line;
        val = eq + 3;
        for (e = val + strlen(val); e > val && (e[-1] == '\r'); ) *--e = 0;
        snprintf(name, sizeof name, "--%s", key);
        d = find_opt(name);
        if (!d || d->store == S_NO)
            return die("%s stores the setting '%s = %s', which this version of train does not know (written by a newer "
                       "version?): resume it with that version", src, key, val);
        if (d->kind == K_SET) { if (n_stored_set < 32) stored_set[n_stored_set++] = val; continue; }
        if (d->kind == K_STR && !*val) { *(const char **)field(&st, d) = NULL; st.given[d - opt_table] = 1; continue; }
        {
            char what[1400];
            snprintf(what, sizeof what, "%s: setting '%s'", src, key);
            if (opt_value(&st, d, val, what)) return -1;
        }
        st.given[d - opt_table] = 1;
    }
    for (k = 0; k < N_OPTS; k++) {
        const opt_def *d = &opt_table[k];
        char a[1100], b[1100];
        if (d->store == S_NO || d->kind == K_SET) continue;
        if (!st.given[k]) {
            format_value(o, d, a, sizeof a);
            if (!o->given[k]) printf("note: %s does not store '%s' (written by an older version): using %s\n", src, d->name + 2, *a ? a : "none");
            continue;
        }
        format_value(&st, d, b, sizeof b);
        if (o->given[k]) {
            format_value(o, d, a, sizeof a);
            if (strcmp(a, b) != 0 && d->store == S_FIXED)
                return die("%s %s differs from the run's setting %s = %s (stored in %s): leave it out to resume, or start a new run",
                           d->name, *a ? a : "(none)", d->name + 2, *b ? b : "(none)", src);
            if (strcmp(a, b) != 0) continue;   /* S_EXTEND: the new value wins */
        }
        memcpy(field(o, d), cfield(&st, d), d->kind == K_DOUBLE ? sizeof(double) : d->kind == K_U64 ? sizeof(uint64_t) :
                                           d->kind == K_STR ? sizeof(const char *) : sizeof(size_t));
    }
    if (given(o, "--set")) {
        /* --set again on resume: the config it gives must be the stored one */
        sv_config c0, c1;
        const char *all[64];
        char t0[8192], t1[8192];
        const char *x = t0, *y = t1;
        size_t i;
        for (i = 0; i < n_stored_set; i++) all[i] = stored_set[i];
        for (i = 0; i < o->n_set && n_stored_set + i < 64; i++) all[n_stored_set + i] = o->set[i];
        if (build_config(o->config, stored_set, n_stored_set, &c0) || build_config(o->config, all, n_stored_set + o->n_set, &c1)) return -1;
        sv_config_format(&c0, t0, sizeof t0);
        sv_config_format(&c1, t1, sizeof t1);
        while (*x && *y) {   /* the first config line that differs */
            size_t la = strcspn(x, "\n"), lb = strcspn(y, "\n");
            if (la != lb || strncmp(x, y, la) != 0)
                return die("--set changes the run's config: it was started with '%.*s', --set gives '%.*s' (stored in %s): "
                           "leave --set out to resume, or start a new run", (int)la, x, (int)lb, y, src);
            x += la + (x[la] == '\n');
            y += lb + (y[lb] == '\n');
        }
    }
    for (k = 0; k < n_stored_set; k++) o->set[k] = stored_set[k];
    o->n_set = n_stored_set;
    return 0;
}

/* Canonical forms, so that a value given again on --resume compares equal to the stored one:
   the scenario as "w2v2,vgsplus", data folders and manifests as absolute paths (the run's
   data.spec then works from any working directory). */
static int canonical(opts *o)
{
    static char scen[32], data_abs[4096], ao_abs[4096], tg_abs[4096];
    if (o->scenario) {
        stage st[2];
        int n = parse_scenario(o->scenario, 0.5f, st);
        if (n < 0) return die("unknown scenario '%s' (w2v2, vgs, vgs+, or a schedule A,B of two different ones)", o->scenario);
        snprintf(scen, sizeof scen, "%s%s%s", st[0].name, n == 2 ? "," : "", n == 2 ? st[1].name : "");
        o->scenario = scen;
    }
    if (o->data && o->data != data_abs && sv_data_spec_check(o->data) != SV_OK) return die("--data: %s", sv_last_error());
    if (o->data && o->data != data_abs && !(strncmp(o->data, "builtin", 7) == 0 && (o->data[7] == 0 || o->data[7] == ':'))) {
        if (!is_dir(o->data)) return die("--data %s: no such corpus folder (make one with data_prep.sh, or use builtin)", o->data);
        if (!realpath(o->data, data_abs)) return die("--data %s: %s", o->data, strerror(errno));
        o->data = data_abs;
    }
    if (o->targets && o->targets != tg_abs) {
        if (!is_dir(o->targets)) return die("--targets %s: no such folder (make one with ./train --kmeans DIR)", o->targets);
        if (!realpath(o->targets, tg_abs)) return die("--targets %s: %s", o->targets, strerror(errno));
        o->targets = tg_abs;
    }
    if (o->audio_only && o->audio_only != ao_abs) {
        if (!exists(o->audio_only) || is_dir(o->audio_only)) return die("--audio-only %s: no such manifest file", o->audio_only);
        if (!realpath(o->audio_only, ao_abs)) return die("--audio-only %s: %s", o->audio_only, strerror(errno));
        o->audio_only = ao_abs;
    }
    return 0;
}

static int mt4ssl_check(const opts *o, sv_config *cfg);
static int precision_check(opts *o, sv_config *cfg);

/* The checks between options, and the derived defaults, all before any data is read. */
static int check_opts(opts *o, sv_config *cfg, stage st[2], int *n_stages, int *ssl, int *vgs)
{
    size_t min_samples;
    if (o->resume && given(o, "--out")) return die("--out does not go with --resume (the run continues in %s)", o->resume);
    if (o->resume && o->force) return die("--force does not go with --resume (it would delete the run to be resumed)");
    if (canonical(o)) return -1;
    if (given(o, "--seeds") && o->seeds == 0) return die("--seeds: 0 is out of range: 1..1000");
    *ssl = *vgs = 0;
    if (o->all) {
        if (given(o, "--scenario")) return die("--scenario does not apply to --all (it runs every scenario; see --schedules)");
        if (o->schedules) {
            /* every entry must name one of the six schedules (vgs+ may be spelled so) */
            static char canon[256];
            const char *p = o->schedules;
            size_t n = 0;
            canon[0] = 0;
            while (*p) {
                char item[64], a[16], b[16];
                size_t l = strcspn(p, ","), i;
                stage s2[2];
                if (l == 0 || l >= sizeof item) return die("--schedules: empty or too long entry in '%s'", o->schedules);
                memcpy(item, p, l);
                item[l] = 0;
                p += l + (p[l] == ',');
                for (i = 0; i < l && item[i] != '-'; i++) {}
                if (i == l || sscanf(item, "%15[^-]-%15s", a, b) != 2) return die("--schedules: '%s' is not a schedule A-B", item);
                snprintf(item, sizeof item, "%s,%s", a, b);
                if (parse_scenario(item, 0.5f, s2) != 2) return die("--schedules: '%s-%s' is not one of the six schedules", a, b);
                n += (size_t)snprintf(canon + n, sizeof canon - n, "%s%s-%s", n ? "," : "", s2[0].name, s2[1].name);
                if (n >= sizeof canon) return die("--schedules: too long");
            }
            o->schedules = canon;
        }
        *n_stages = 2;
        *ssl = *vgs = 1;
        if (o->seeds && o->seed > UINT64_MAX - o->seeds) return die("--seed %llu + --seeds %zu overflows the seed range",
                                                                     (unsigned long long)o->seed, o->seeds);
    } else {
        int k;
        if (o->schedules) return die("--schedules goes with --all");
        if (o->seeds) return die("--seeds goes with --all (seeds of one run: --seed S with its own --out)");
        if ((*n_stages = parse_scenario(o->scenario, (float)o->alpha_plus, st)) < 0) return die("unknown scenario '%s'", o->scenario);
        for (k = 0; k < *n_stages; k++) { *ssl |= st[k].alpha < 1.0f; *vgs |= st[k].alpha > 0.0f; }
        if (given(o, "--alpha") && strcmp(st[0].name, "vgsplus") && (*n_stages == 1 || strcmp(st[1].name, "vgsplus")))
            return die("--alpha sets the alpha of vgs+, which scenario '%s' does not use", o->scenario);
    }
    if (*n_stages == 2) {
        if (given(o, "--switch") && o->switch_step == 0) return die("--switch: 0 is out of range: 1..%zu", o->steps - 1);
        if (!o->switch_step) o->switch_step = (o->steps * 2 + 3) / 7;   /* 20 of 70 epochs */
        if (o->switch_step == 0 || o->steps < 2) return die("--steps %zu is too few for a schedule: both stages need updates", o->steps);
        if (o->switch_step >= o->steps) return die("--switch %zu must be below --steps %zu (stage B needs updates)", o->switch_step, o->steps);
    } else if (given(o, "--switch")) {
        return die("--switch applies to schedules (A,B) and --all, not to the single scenario '%s'", o->scenario);
    }
    if (!o->eval_every) o->eval_every = o->steps / 10 ? o->steps / 10 : 1;
    if (o->stop_after && o->stop_after >= o->steps) return die("--stop-after %zu must be below --steps %zu", o->stop_after, o->steps);
    if (o->audio_only && !*ssl) return die("--audio-only adds wav2vec 2.0 batches, but scenario '%s' has no SSL stage", o->scenario);
    if (build_config(o->config, o->set, o->n_set, cfg) || mt4ssl_check(o, cfg) || precision_check(o, cfg)) return -1;
    min_samples = sv_config_min_samples(cfg, *ssl);
    if (o->crop_s * 16000.0 < (double)min_samples)
        return die("--crop %g: %.0f samples, fewer than the %zu (%.3f s) an utterance needs under the %s config", o->crop_s,
                   floor(o->crop_s * 16000.0), min_samples, (double)min_samples / 16000.0, cfg->name);
    if (!o->steps) return die("--steps must be at least 1");
    return 0;
}

/* What a run needs of the data, checked once it is loaded and before the first update, so that an
   error names the file and line of the utterance instead of a batch at step 10. */
static int check_data(const opts *o, const sv_config *cfg, const sv_data *d, const sv_data *ao, int ssl, int vgs)
{
    if (d->n[SV_SPLIT_TRAIN] < o->batch)
        return die("data %s: the train split has %zu utterances, fewer than one batch of %zu (lower --batch)", d->source, d->n[SV_SPLIT_TRAIN], o->batch);
    if (d->n[SV_SPLIT_VAL] == 0) return die("data %s: no validation split (val.tsv): the held-out evaluation during training needs one", d->source);
    if (sv_data_check(d, SV_SPLIT_TRAIN, sv_config_min_samples(cfg, ssl), vgs) != SV_OK) return die("%s", sv_last_error());
    /* the held-out evaluation computes both losses whatever the stage trains */
    if (sv_data_check(d, SV_SPLIT_VAL, sv_config_min_samples(cfg, 1), vgs) != SV_OK) return die("%s", sv_last_error());
    if (d->n_images && (d->R != cfg->img_regions || d->Dimg != cfg->img_dim))
        return die("the data has %zu regions of %zu values per image; the %s config expects %zu of %zu "
                   "(use --set img_regions=.. --set img_dim=..)", d->R, d->Dimg, cfg->name, cfg->img_regions, cfg->img_dim);
    if (ao) {
        if (ao->n[SV_SPLIT_TRAIN] < o->batch)
            return die("--audio-only %s: %zu utterances, fewer than one batch of %zu", o->audio_only, ao->n[SV_SPLIT_TRAIN], o->batch);
        if (sv_data_check(ao, SV_SPLIT_TRAIN, sv_config_min_samples(cfg, 1), 0) != SV_OK) return die("%s", sv_last_error());
    }
    return 0;
}

/* ---------------------------------------------------------------- signals */
/* Ctrl-C / SIGTERM: the update in progress finishes, a checkpoint is written, and main prints the
   resume command. SA_RESETHAND makes a second signal stop the program at once (the last
   checkpoint is intact: they are written to a temporary file and renamed). */
static volatile sig_atomic_t g_signal;
#ifdef _WIN32   /* no sigaction: the handler puts the default back itself */
static void on_signal(int sig) { g_signal = sig; signal(sig, SIG_DFL); }
static void install_signals(void)
{
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
}
#else
static void on_signal(int sig)
{
    g_signal = sig;
    if (g_procs > 1 && g_rank == 0) {
        /* with several processes this may be the job ending because one of them died: say at
           once what holds, as process 0 may be killed while it waits for the others */
        static const char msg[] = "train: stopping on a signal: if a process died (mpirun names it), the job ends here and "
                                  "the last checkpoint stays intact; else every process finishes this update and checkpoints it\n";
        if (write(2, msg, sizeof msg - 1) < 0) g_signal = sig;
    }
}
static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}
#endif

/* getline (POSIX 2008) for every C library: one line with its '\n' into *line, growing it; the
   length, or -1 at the end of the file */
static long read_line(char **line, size_t *cap, FILE *f)
{
    size_t n = 0;
    int ch;
    while ((ch = getc(f)) != EOF) {
        if (n + 2 > *cap) {
            size_t nc = *cap ? 2 * *cap : 256;
            char *q = (char *)realloc(*line, nc);
            if (!q) return -1;
            *line = q;
            *cap = nc;
        }
        (*line)[n++] = (char)ch;
        if (ch == '\n') break;
    }
    if (n == 0) return -1;
    (*line)[n] = 0;
    return (long)n;
}

/* ---------------------------------------------------------------- logging */
/* One log line is built in memory and written with one fwrite and a flush, so a kill leaves whole
   lines behind (at most a torn last one, which --resume drops). */
typedef struct jline { char s[4096]; size_t n; } jline;

static void jl(jline *j, const char *fmt, ...)
{
    va_list ap;
    int k;
    if (j->n >= sizeof j->s) return;
    va_start(ap, fmt);
    k = vsnprintf(j->s + j->n, sizeof j->s - j->n, fmt, ap);
    va_end(ap);
    if (k > 0) j->n += (size_t)k;
    if (j->n > sizeof j->s) j->n = sizeof j->s;
}
static void jnum(jline *j, const char *key, double v)
{
    if (isfinite(v)) jl(j, ",\"%s\":%.6g", key, v);
    else jl(j, ",\"%s\":null", key);
}
static void jstr(jline *j, const char *key, const char *v)
{
    jl(j, ",\"%s\":\"", key);
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (c == '"' || c == '\\') jl(j, "\\%c", c);
        else if (c < 0x20) jl(j, "\\u%04x", c);
        else jl(j, "%c", c);
    }
    jl(j, "\"");
}

typedef struct run {
    const opts *o;
    sv_config cfg;
    sv_data *data;
    sv_model *m;
    sv_adam opt;
    sv_loader L, La;            /* La: the audio-only batches (--audio-only) */
    sv_data *audio_only;
    sv_ctx *c, *ce;             /* training and evaluation contexts */
    sv_train_pos pos;
    stage st[2];
    int n_stages;
    size_t switch_step, steps;
    size_t snapshot_step;       /* base runs of --all: a switch.ckpt here, without any reset */
    char dir[1024], name[64];
    char *settings;             /* settings_text(o), stored in every checkpoint */
    FILE *log;
    int tty;
    double t_start, data_time, step_time;
    size_t steps_timed, last_eval;
    sv_item *abx_items;         /* the validation ABX tokens of the first ABX_VAL_FILES files */
    sv_data abx_data;           /* a shallow copy of *data whose val item set holds only those */
    int abx_ready;              /* 0 not built, 1 built, -1 the data has no val.item */
    int abx_few_noted;          /* the note on too few validation ABX cells was printed */
} run;

/* ABX during training reads the items of the first 64 validation utterances (about a second
   per evaluation on one core): enough tokens for a curve, and the same tokens at every step.
   A condition scored on fewer than ABX_VAL_MIN_CELLS cells is not logged: with many speakers of
   one utterance each (the TTS corpus: 180 voices in 200 validation utterances) the within-
   speaker condition can rest on a single (context, speaker, phone pair) cell, whose 0 % says
   nothing about the model. */
#define ABX_VAL_FILES 64
#define ABX_VAL_MIN_CELLS 20

static int log_line(run *r, jline *j)
{
    if (!r->log) return 0;      /* processes other than 0 keep no log */
    jl(j, "}\n");
    if (j->n >= sizeof j->s) return die("%s/log.jsonl: a log line is too long", r->dir);
    if (fwrite(j->s, 1, j->n, r->log) != j->n || fflush(r->log) != 0)
        return die("cannot write %s/log.jsonl: %s (the last checkpoint is intact)", r->dir, strerror(errno));
    return 0;
}

static void path_in(const run *r, const char *file, char *buf, size_t cap) { snprintf(buf, cap, "%s/%s", r->dir, file); }

#ifdef SV_MPI
/* 64-bit FNV-1a over bytes, word by word for big arrays (the start-up check) */
static uint64_t fp_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x100000001B3ull;
    }
    for (; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

/* This build in words: processes of different builds (another SIMD path, compiler or OpenMP
   setting) round differently, so their shares would disagree silently. */
static void build_text(char *buf, size_t cap)
{
    snprintf(buf, cap, "ssl_vgs SIMD %s, %s, %s, %d-bit size_t", sv_simd_name(),
#ifdef __VERSION__
             "cc " __VERSION__,
#else
             "cc ?",
#endif
#ifdef _OPENMP
             "OpenMP",
#else
             "no OpenMP",
#endif
             (int)(8 * sizeof(size_t)));
}

/* The first line where two texts differ, copied into a and b (without the newline). */
static void first_other_line(const char *x, const char *y, char *a, char *b, size_t cap)
{
    for (;;) {
        const char *ex = strchr(x, '\n'), *ey = strchr(y, '\n');
        size_t nx = ex ? (size_t)(ex - x) : strlen(x), ny = ey ? (size_t)(ey - y) : strlen(y);
        if (nx != ny || memcmp(x, y, nx) || !ex || !ey) {
            snprintf(a, cap, "%.*s", (int)nx, x);
            snprintf(b, cap, "%.*s", (int)ny, y);
            return;
        }
        x = ex + 1;
        y = ey + 1;
    }
}

/* After every process has checked its options (and on --resume restored the run's stored
   settings), before any data is read: do all processes run the same build with the same
   options? Not only the stored settings count: the processes must also stop at the same update
   (--stop-after), make the same collective calls (--quiet skips the rate's sum) and see the
   same run folder; --threads alone may differ (no number depends on it). Process 0 names the
   first difference in one line and every process stops. */
static int procs_same_options(const opts *o, const char *dir)
{
    char *set = g_procs > 1 ? settings_text(o) : NULL, *mine = NULL, *all = NULL, v[1100], a[1200], b[1200];
    size_t cap, n, k;
    int len, *lens = NULL, *offs = NULL, r, bad = 0, total = 0;
    if (g_procs == 1) return 0;
    cap = (set ? strlen(set) : 0) + 4096 + N_OPTS * sizeof v;
    if (set && (mine = (char *)malloc(cap))) {
        build_text(v, sizeof v);
        n = (size_t)snprintf(mine, cap, "build = %s\n%srun folder = %s\n", v, set, dir);
        for (k = 0; k < N_OPTS; k++) {    /* this invocation's options, but --threads */
            const opt_def *d = &opt_table[k];
            if (d->store != S_NO || d->kind == K_SET || !strcmp(d->name, "--threads")) continue;
            format_value(o, d, v, sizeof v);
            n += (size_t)snprintf(mine + n, cap - n, "%s = %s\n", d->name + 2, v);
        }
    }
    free(set);
    if (procs_agree(mine ? 0 : die("out of memory"))) { free(mine); return -1; }
    len = (int)strlen(mine) + 1;
    if (g_rank == 0) {
        lens = (int *)calloc(2 * (size_t)g_procs, sizeof(int));
        if (!lens) { free(mine); MPI_Abort(MPI_COMM_WORLD, 1); }   /* a few bytes: cannot fail in practice */
        offs = lens + g_procs;
    }
    MPI_Gather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (g_rank == 0) {
        for (r = 0; r < g_procs; r++) { offs[r] = total; total += lens[r]; }
        if (!(all = (char *)malloc((size_t)total))) { free(mine); MPI_Abort(MPI_COMM_WORLD, 1); }
    }
    MPI_Gatherv(mine, len, MPI_CHAR, all, lens, offs, MPI_CHAR, 0, MPI_COMM_WORLD);
    for (r = 1; g_rank == 0 && r < g_procs && !bad; r++) {
        const char *other = all + offs[r];
        if (!strcmp(other, mine)) continue;
        bad = 1;
        first_other_line(other, mine, a, b, sizeof a);
        if (!strncmp(a, "build = ", 8))
            die("process %d runs another build than process 0 (%s; process 0: %s): build every process the same way", r, a + 8, b + 8);
        else
            die("process %d has other settings than process 0 (%s; process 0: %s): give every process the same options "
                "(only --threads may differ)", r, a, b);
    }
    free(lens);
    free(all);
    free(mine);
    MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return bad ? -1 : 0;
}

/* Before the first update of a run: do all processes hold the same data and state? (Their
   build and options were compared before the data was read.) Another data set or checkpoint
   would make their shares disagree silently. Process 0 names the first difference in one line
   and every process stops. */
static int procs_check(const run *r)
{
    typedef struct fp { uint64_t data, state; } fp;
    fp me, *all = NULL;
    const sv_params *p = &r->m->params;
    const sv_data *d = r->data;
    int k, bad = 0;
    if (g_procs == 1) return 0;
    memset(&me, 0, sizeof me);
    me.data = fp_bytes(0xCBF29CE484222325ull, d->source, strnlen(d->source, sizeof d->source));
    for (k = 0; k < SV_SPLIT_COUNT; k++) {
        me.data = fp_bytes(me.data, &d->n[k], sizeof d->n[k]);
        if (d->n[k]) me.data = fp_bytes(me.data, d->len[k], d->n[k] * sizeof(size_t));
    }
    me.data = fp_bytes(me.data, &d->n_images, sizeof d->n_images);
    if (d->n_images) {   /* the first and the last image's features (all of them could be tens of GB) */
        size_t RD = d->R * d->Dimg;
        float *row = (float *)malloc(RD * sizeof(float));
        int unread = !row || sv_data_image(d, 0, row, NULL) != SV_OK;
        if (!unread) me.data = fp_bytes(me.data, row, RD * sizeof(float));
        unread = unread || sv_data_image(d, d->n_images - 1, row, NULL) != SV_OK;
        if (!unread) me.data = fp_bytes(me.data, row, RD * sizeof(float));
        free(row);
        if (unread) me.data = 0;   /* cannot read them: a difference the check below reports */
    }
    me.state = fp_bytes(0xCBF29CE484222325ull, p->data, p->n * sizeof(float));
    me.state = fp_bytes(me.state, p->m, p->n * sizeof(float));
    me.state = fp_bytes(me.state, p->v, p->n * sizeof(float));
    me.state = fp_bytes(me.state, &r->pos.step, sizeof r->pos.step);
    me.state = fp_bytes(me.state, &r->pos.epoch, sizeof r->pos.epoch);
    me.state = fp_bytes(me.state, &r->pos.batch, sizeof r->pos.batch);
    me.state = fp_bytes(me.state, &r->opt.t, sizeof r->opt.t);
    if (g_rank == 0) all = (fp *)malloc((size_t)g_procs * sizeof(fp));
    MPI_Gather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (g_rank == 0) {
        for (k = 1; k < g_procs && !bad && all; k++) {
            const fp *o = &all[k];
            bad = 1;
            if (o->data != me.data)
                die("process %d loaded other data than process 0 (%s): every process must see the same --data", k, d->source);
            else if (o->state != me.state)
                die("process %d starts from another state than process 0 (its checkpoint differs): every process must read the same run folder", k);
            else bad = 0;
        }
        if (!all) bad = die("out of memory");
    }
    free(all);
    MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return bad ? -1 : 0;
}
#else
static int procs_same_options(const opts *o, const char *dir) { (void)o; (void)dir; return 0; }
static int procs_check(const run *r) { (void)r; return 0; }
#endif

/* Process 0 writes the checkpoint (every process holds the same state); all learn whether it
   worked. */
static int save_ckpt(run *r, const char *file)
{
    char p[1200];
    int rc = 0;
    path_in(r, file, p, sizeof p);
    r->pos.rng = *sv_ctx_rng(r->c);
    r->pos.epoch = r->L.epoch;
    r->pos.batch = r->L.batch;
    if (g_rank == 0 && sv_checkpoint_save_settings(p, r->m, &r->opt, &r->pos, r->settings) != SV_OK) rc = die("%s", sv_last_error());
    return procs_agree(rc);
}

/* The validation item subset (see ABX_VAL_FILES): item files are interned in order of first
   appearance, so the tokens of files 0..K-1 name only those K files. */
static int abx_subset(run *r)
{
    const sv_item_set *all = &r->data->items[SV_SPLIT_VAL];
    sv_item_set *sub;
    size_t i, n = 0, k;
    if (r->abx_ready) return 0;
    r->abx_ready = -1;
    if (!r->data->has_items[SV_SPLIT_VAL] || all->n_items == 0) return 0;
    k = all->n_files < ABX_VAL_FILES ? all->n_files : ABX_VAL_FILES;
    if (!(r->abx_items = (sv_item *)malloc(all->n_items * sizeof *r->abx_items))) return die("out of memory (validation ABX items)");
    for (i = 0; i < all->n_items; i++)
        if (all->items[i].file < k) r->abx_items[n++] = all->items[i];
    r->abx_data = *r->data;
    sub = &r->abx_data.items[SV_SPLIT_VAL];
    sub->items = r->abx_items;
    sub->n_items = n;
    sub->n_files = k;
    r->abx_ready = n ? 1 : -1;
    return 0;
}

/* Held-out numbers of both tasks, whatever the stage trains, so forgetting shows. */
static int evaluate_here(run *r);

/* Process 0 evaluates (the others wait at the next collective); all learn whether it worked. */
static int evaluate(run *r)
{
    int rc;
    if (r->last_eval == r->pos.step + 1) return 0;    /* already evaluated at this step */
    r->last_eval = r->pos.step + 1;
    rc = g_rank == 0 ? evaluate_here(r) : 0;
    return procs_agree(rc);
}

static int evaluate_here(run *r)
{
    sv_stats st;
    sv_recall rc;
    jline j;
    double t0 = now_s();
    int have_rc = 0, bw = -1, ba = -1;
    sv_abx_layer_result abx[SV_ABX_MAX_LAYERS];
    size_t n_abx = 0, i;
    memset(&rc, 0, sizeof rc);
    if (sv_eval_losses(r->m, r->ce, r->data, SV_SPLIT_VAL, r->o->batch, r->o->eval_batches, 1234, &st) != SV_OK)
        return die("%sevaluation at step %zu failed: %s", r->tty ? "\n" : "", r->pos.step, sv_last_error());
    if (r->data->n_images && sv_eval_retrieval(r->m, r->ce, r->data, SV_SPLIT_VAL, r->o->batch, &rc) == SV_OK) have_rc = 1;
    /* ABX on validation items (data_prep.sh and the built-in corpus write them): sampled like the
       official evaluator, seeded, the same tokens every time, so the best layer's curve compares */
    if (abx_subset(r)) return -1;
    if (r->abx_ready == 1) {
        if (sv_eval_abx(r->m, r->ce, &r->abx_data, SV_SPLIT_VAL, NULL, abx, &n_abx) != SV_OK)
            return die("%sABX on the validation items at step %zu failed: %s", r->tty ? "\n" : "", r->pos.step, sv_last_error());
        for (i = 0; i < n_abx; i++) {
            if (isfinite(abx[i].r.within) && abx[i].r.within_cells >= ABX_VAL_MIN_CELLS && (bw < 0 || abx[i].r.within < abx[bw].r.within))
                bw = (int)i;
            if (isfinite(abx[i].r.across) && abx[i].r.across_cells >= ABX_VAL_MIN_CELLS && (ba < 0 || abx[i].r.across < abx[ba].r.across))
                ba = (int)i;
        }
        if (n_abx && bw < 0 && !r->abx_few_noted) {
            fprintf(stderr, "%snote: validation ABX within speaker rests on %zu cell(s) of the first %d validation utterances' "
                            "items (fewer than %d): not logged%s\n", r->tty ? "\n" : "", abx[0].r.within_cells, ABX_VAL_FILES,
                    ABX_VAL_MIN_CELLS, ba >= 0 ? "; the across-speaker one is" : "");
            r->abx_few_noted = 1;
        }
    }
    j.n = 0;
    jl(&j, "{\"kind\":\"eval\",\"step\":%zu,\"stage\":%d", r->pos.step, r->pos.stage);
    jnum(&j, "val_loss_av", st.loss_av);
    jnum(&j, "val_loss_aud", st.loss_aud);
    jnum(&j, "val_acc", st.accuracy);
    jnum(&j, "val_code_ppl", st.code_ppl);
    jnum(&j, "val_prob_ppl", st.prob_ppl);
    if (r->cfg.ssl != SV_SSL_W2V2) {
        jnum(&j, "val_mt4_off", st.mt4_offline); jnum(&j, "val_mt4_acc", st.mt4_acc); jnum(&j, "val_mt4_on", st.mt4_online);
    }
    if (have_rc) {
        jnum(&j, "r1_s2i", rc.s2i_r1); jnum(&j, "r5_s2i", rc.s2i_r5); jnum(&j, "r10_s2i", rc.s2i_r10);
        jnum(&j, "r1_i2s", rc.i2s_r1); jnum(&j, "r5_i2s", rc.i2s_r5); jnum(&j, "r10_i2s", rc.i2s_r10);
        jnum(&j, "val_images", (double)rc.n_images_scored); jnum(&j, "val_captions", (double)rc.n_captions);
    }
    if (bw >= 0) { jnum(&j, "abx_val_within", abx[bw].r.within); jnum(&j, "abx_val_within_layer", abx[bw].layer); }
    if (ba >= 0) { jnum(&j, "abx_val_across", abx[ba].r.across); jnum(&j, "abx_val_across_layer", abx[ba].layer); }
    if (log_line(r, &j)) return -1;
    if (!r->o->quiet) {
        char mt4[96] = "", ab[64] = "";
        if (bw >= 0) snprintf(ab, sizeof ab, " | ABX within %.1f%% (%s)", abx[bw].r.within, abx[bw].name);
        else if (ba >= 0) snprintf(ab, sizeof ab, " | ABX across %.1f%% (%s)", abx[ba].r.across, abx[ba].name);
        if (r->cfg.ssl != SV_SSL_W2V2)
            snprintf(mt4, sizeof mt4, " (MT4SSL offline %.3f acc %.2f, online %.3f)", st.mt4_offline, st.mt4_acc, st.mt4_online);
        printf("%s[eval %s step %zu] val loss_AV %.3f loss_AUD %.3f acc %.2f%s | R@10 S->I %.1f I->S %.1f%s (%.1f s)\n",
               r->tty ? "\r\033[K" : "", r->name, r->pos.step, st.loss_av, st.loss_aud, st.accuracy, mt4,
               have_rc ? rc.s2i_r10 : NAN, have_rc ? rc.i2s_r10 : NAN, ab, now_s() - t0);
    }
    return 0;
}

/* Collapse warnings with the likely cause (contrastive loss stuck near log(K+1), codebook collapse). */
static void health(run *r, const sv_stats *st, float alpha)
{
    static size_t warned_ppl, warned_acc, warned_var;
    /* data2vec stops training when the target or prediction spread collapses after 5000 updates
       (min_target_var 0.1, min_pred_var 0.01); here a warning */
    if (alpha < 1.0f && r->cfg.ssl != SV_SSL_W2V2 && r->pos.stage_step > 5000 && r->pos.step > warned_var + 500 &&
        (st->target_var < 0.1f || st->pred_var < 0.01f)) {
        fprintf(stderr, "\nwarning: MT4SSL target std %.3f, prediction std %.3f: the online targets are collapsing "
                        "(data2vec stops below 0.1 / 0.01; lower the lr or raise ema_decay)\n", st->target_var, st->pred_var);
        warned_var = r->pos.step;
    }
    if (r->cfg.ssl == SV_SSL_MT4SSL) return;   /* no contrastive task to watch */
    if (alpha < 1.0f && r->pos.stage_step > 200 && st->code_ppl < 2.0f && r->pos.step > warned_ppl + 500) {
        fprintf(stderr, "\nwarning: code perplexity %.2f: the codebook has collapsed (raise the diversity weight, "
                        "or check that the quantizer input is not constant)\n", st->code_ppl);
        warned_ppl = r->pos.step;
    }
    if (alpha < 1.0f && r->pos.stage_step > 500 && st->accuracy < 1.5f / (float)(r->cfg.n_negatives + 1) && r->pos.step > warned_acc + 500) {
        fprintf(stderr, "\nwarning: contrastive accuracy %.3f is at chance: the SSL task is not learning (lower the lr, "
                        "check the audio normalisation and that negatives come from masked frames)\n", st->accuracy);
        warned_acc = r->pos.step;
    }
}

/* a loss for the progress line; "-" when the stage does not compute it (NaN) */
static const char *loss_str(char *buf, size_t n, double v, int prec)
{
    if (v != v) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.*f", prec, v);
    return buf;
}

/* samples: the audio samples of the global batch (every process's share) */
static void progress(run *r, const sv_stats *st, float lr, double samples)
{
    char av[32], aud[32];
    double el = now_s() - r->t_start, per = r->steps_timed ? r->step_time / (double)r->steps_timed : 0;
    double eta = per * (double)(r->steps - r->pos.step);
    size_t i, B = r->o->batch;
    if (r->tty) {
        int w = 24, fill = (int)((double)w * (double)r->pos.step / (double)r->steps);
        char bar[32];
        for (i = 0; i < (size_t)w; i++) bar[i] = (int)i < fill ? '#' : '.';
        bar[w] = 0;
        printf("\r\033[K%s [%s] %zu/%zu %s ETA %.0fs | AV %s AUD %s acc %.2f ppl %.0f | %.1f utt/s %.0f audio-s/s",
               r->name, bar, r->pos.step, r->steps, r->pos.stage ? "B" : "A", eta, loss_str(av, sizeof av, st->loss_av, 3),
               loss_str(aud, sizeof aud, st->loss_aud, 3),
               r->cfg.ssl == SV_SSL_MT4SSL ? st->mt4_acc : st->accuracy, st->code_ppl, per > 0 ? (double)B / per : 0,
               per > 0 ? (double)samples / 16000.0 / per : 0);
        fflush(stdout);
    } else if (r->pos.step % r->o->log_every == 0 || r->pos.step == r->steps) {
        char mt4[128] = "";
        if (r->cfg.ssl != SV_SSL_W2V2 && st->loss_aud == st->loss_aud)   /* MT4SSL's two targets */
            snprintf(mt4, sizeof mt4, " | MT4SSL offline %.3f acc %.3f online %.3f (target std %.2f)", st->mt4_offline,
                     st->mt4_acc, st->mt4_online, st->target_var);
        printf("%s step %zu/%zu stage %s lr %.2e loss %.4f AV %s AUD %s acc %.3f ppl %.1f tau %.3f%s | %.2f s/step, "
               "%.0f audio-s/s, data %.1f%% | %.0fs elapsed, ETA %.0fs\n",
               r->name, r->pos.step, r->steps, r->pos.stage ? "B" : "A", lr, st->loss, loss_str(av, sizeof av, st->loss_av, 4),
               loss_str(aud, sizeof aud, st->loss_aud, 4),
               st->accuracy, st->code_ppl, st->tau, mt4, per, per > 0 ? (double)samples / 16000.0 / per : 0,
               r->step_time > 0 ? 100.0 * r->data_time / (r->step_time + r->data_time) : 0, el, eta);
        fflush(stdout);
    }
    (void)lr;
}

/* Train from r->pos.step to `until` in the current stage. Returns 0, 1 when stopped by
   --stop-after, 2 when interrupted by a signal (both with a checkpoint), or -1 on an error. */
static int train_until(run *r, size_t until)
{
    const opts *o = r->o;
    stage *st = &r->st[r->pos.stage];
    size_t stage_total = r->pos.stage == 0 ? (r->n_stages == 2 ? r->switch_step : r->steps) : r->steps - r->switch_step;
    size_t warmup = (size_t)(o->warmup * (double)stage_total);
    while (r->pos.step < until) {
        sv_batch b;
        sv_stats s;
        sv_tensor *loss;
        float lr, gnorm;
        double t0 = now_s(), t1;
        jline j;
        sv_shard sh, sha;
        sv_stats sa;
        double c0 = g_comm_s, b0 = g_comm_bytes;
        int sig = procs_signal(g_signal), rc;
        procs_test_kill(r->pos.step);
        if (sig) {
            g_signal = sig;
            return save_ckpt(r, "last.ckpt") ? -1 : 2;
        }
        /* this process's share of the global batch (all of it in one process), in shard mode:
           the update is a function of the global batch alone (the comment on processes above) */
        procs_shard(o->batch, o->seed, r->pos.step, 0, &sh);
        if (sv_loader_next_shard(&r->L, sh.first, sh.count, &b) != SV_OK) {   /* streamed audio: a file gone or changed */
            die("%sstep %zu: %s (the last checkpoint is intact)", r->tty ? "\n" : "", r->pos.step, sv_last_error());
            procs_step_failed();
            return -1;
        }
        t1 = now_s();
        sv_ctx_reset(r->c);
        sv_params_zero_grad(&r->m->params);
        loss = sv_ctx_set_shard(r->c, &sh, &r->m->params) == SV_OK ? sv_model_loss(r->m, r->c, &b, st->alpha, r->pos.step, &s) : NULL;
        sa.loss = 0;
        if (loss && r->audio_only && st->alpha < 1.0f) {
            /* speech-only batch: its SSL loss joins the same backward pass */
            sv_batch ba;
            procs_shard(o->batch, o->seed, r->pos.step, 1, &sha);
            loss = sv_loader_next_shard(&r->La, sha.first, sha.count, &ba) == SV_OK && sv_ctx_set_shard(r->c, &sha, &r->m->params) == SV_OK
                       ? sv_axpby(r->c, 1.0f, loss, 1.0f - st->alpha, sv_model_loss(r->m, r->c, &ba, 0.0f, r->pos.step, &sa)) : NULL;
        }
        if (!loss) {
            die("%sstep %zu: %s", r->tty ? "\n" : "", r->pos.step, sv_last_error());
            procs_step_failed();
            return -1;
        }
        /* the loss of the global batch (this process's graph holds its share only) */
        if (!isfinite(s.loss) || !isfinite(sa.loss)) {
            size_t at = 0;
            const char *op = sv_tape_first_nonfinite(r->c, &at);
            die("%sstep %zu: the loss is %g; first non-finite value made by op '%s' (tape entry %zu%s). "
                "Nothing was saved; the last checkpoint is intact.", r->tty ? "\n" : "", r->pos.step, isfinite(s.loss) ? sa.loss : s.loss,
                op ? op : "?", at, g_procs > 1 ? ", in process 0's share" : "");
            procs_step_failed();
            return -1;
        }
        if (sv_backward(r->c, loss) != SV_OK) {
            die("%sstep %zu: %s", r->tty ? "\n" : "", r->pos.step, sv_last_error());
            procs_step_failed();
            return -1;
        }
        /* the exact gradient sums of all samples of all processes, rounded once (a non-finite
           one leaves NaN gradients: the norm below says so) */
        if ((rc = sv_params_grad_reduce(&r->m->params, &sh)) != SV_OK && rc != SV_ERR_NUMERIC) {
            die("%sstep %zu: %s", r->tty ? "\n" : "", r->pos.step, sv_last_error());
            procs_step_failed();
            return -1;
        }
        lr = sv_lr_schedule((float)o->lr, r->pos.stage_step, warmup, stage_total);
        gnorm = sv_adam_step(&r->opt, &r->m->params, groups_for(st->alpha, &r->cfg), lr);
        if (!isfinite(gnorm)) {
            die("%sstep %zu: the gradient norm is %g (a NaN/inf in the backward pass). Nothing was saved; the last "
                "checkpoint is intact.", r->tty ? "\n" : "", r->pos.step, gnorm);
            procs_step_failed();
            return -1;
        }
        /* MT4SSL: the teacher follows the student after every update that trained the SSL loss */
        if (st->alpha < 1.0f && r->cfg.ssl != SV_SSL_W2V2) sv_mt4ssl_ema_step(r->m, r->pos.stage_step + 1);
        r->pos.step++;
        r->pos.stage_step++;
        r->data_time += t1 - t0;
        r->step_time += now_s() - t1;
        r->steps_timed++;
        j.n = 0;
        jl(&j, "{\"kind\":\"train\",\"step\":%zu,\"stage\":%d", r->pos.step, r->pos.stage);
        jnum(&j, "lr", lr); jnum(&j, "loss", s.loss); jnum(&j, "loss_av", s.loss_av); jnum(&j, "loss_aud", s.loss_aud);
        jnum(&j, "acc", s.accuracy); jnum(&j, "code_ppl", s.code_ppl); jnum(&j, "prob_ppl", s.prob_ppl);
        jnum(&j, "tau", s.tau); jnum(&j, "grad_norm", gnorm);
        if (g_procs > 1) {   /* this update's time inside collectives and megabytes sent into them (process 0's) */
            jl(&j, ",\"procs\":%d", g_procs);
            jnum(&j, "comm_s", g_comm_s - c0);
            jnum(&j, "comm_mb", (g_comm_bytes - b0) / 1e6);
        }
        if (r->cfg.ssl != SV_SSL_W2V2) {
            jnum(&j, "mt4_off", s.mt4_offline); jnum(&j, "mt4_acc", s.mt4_acc); jnum(&j, "mt4_on", s.mt4_online);
            jnum(&j, "target_var", s.target_var); jnum(&j, "pred_var", s.pred_var);
        }
        if (log_line(r, &j)) return -1;
        if (!o->quiet) {
            size_t k;
            double samples = 0;
            for (k = 0; k < b.B; k++) samples += (double)b.wave_len[k];
            progress(r, &s, lr, procs_sum(samples));
        }
        health(r, &s, st->alpha);
        if (r->pos.step % o->eval_every == 0 && evaluate(r)) return -1;
        if (o->ckpt_every && r->pos.step % o->ckpt_every == 0 && save_ckpt(r, "last.ckpt")) return -1;
        if (r->snapshot_step && r->pos.step == r->snapshot_step && save_ckpt(r, "switch.ckpt")) return -1;
        if (o->stop_after && r->pos.step == o->stop_after) {
            if (save_ckpt(r, "last.ckpt")) return -1;
            if (r->tty) printf("\r\033[K");
            printf("[%s] stopped after step %zu as asked (--stop-after)\n", r->name, r->pos.step);
            return 1;
        }
    }
    return 0;
}

/* The first line of a run's log: what ran, for the report. */
static void meta_line(const run *r, jline *j)
{
    const opts *o = r->o;
    j->n = 0;
    jl(j, "{\"kind\":\"meta\"");
    jstr(j, "run", r->name);
    jstr(j, "stage_a", r->st[0].name);
    if (r->n_stages == 2) jstr(j, "stage_b", r->st[1].name);
    jnum(j, "alpha_a", r->st[0].alpha);
    if (r->n_stages == 2) jnum(j, "alpha_b", r->st[1].alpha);
    if (o->audio_only) jstr(j, "audio_only", o->audio_only);
    if (r->cfg.ssl != SV_SSL_W2V2) jstr(j, "ssl", r->cfg.ssl == SV_SSL_MT4SSL ? "mt4ssl" : "w2v2+mt4ssl");
    if (o->targets) jstr(j, "targets", o->targets);
    if (o->init_from) jstr(j, "init_from", o->init_from);
    if (r->cfg.precision == SV_BF16) jstr(j, "precision", "bf16");
    jl(j, ",\"steps\":%zu,\"switch\":%zu", r->steps, r->switch_step);
    jstr(j, "config", r->cfg.name);
    jstr(j, "data", o->data);
    jl(j, ",\"seed\":%llu}\n", (unsigned long long)o->seed);
}

/* Is line one whole JSON object line ("{...}\n")? A kill can leave the last line torn. */
static int whole_line(const char *line, size_t len)
{
    return len >= 3 && line[len - 1] == '\n' && line[0] == '{' && line[len - 2] == '}';
}

/* The log of a resumed run: the current meta line first, then the whole lines up to the
   checkpoint's step; lines written after the checkpoint and a torn last line are dropped. */
static int rewrite_log(run *r, const jline *meta)
{
    char p[1200], tmp[1300];
    char *line = NULL;
    size_t cap = 0, torn = 0;
    long len;
    FILE *f, *g;
    int ok;
    path_in(r, "log.jsonl", p, sizeof p);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    if (!(g = fopen(tmp, "w"))) return die("cannot write %s: %s", tmp, strerror(errno));
    ok = fwrite(meta->s, 1, meta->n, g) == meta->n;
    if ((f = fopen(p, "r"))) {
        while ((len = read_line(&line, &cap, f)) > 0) {
            double s;
            if (!whole_line(line, (size_t)len)) { torn++; continue; }
            if (strstr(line, "\"kind\":\"meta\"")) continue;
            if (sv_json_number(line, "step", &s) == 1 && s > (double)r->pos.step) continue;
            ok = ok && fputs(line, g) >= 0;
        }
        free(line);
        fclose(f);
    }
    ok = ok && fflush(g) == 0 && fsync(fileno(g)) == 0;
    ok = fclose(g) == 0 && ok;
    if (!ok) { int e = errno; remove(tmp); return die("cannot write %s: %s", tmp, strerror(e)); }
    if (rename(tmp, p) != 0) { int e = errno; remove(tmp); return die("cannot rename %s: %s", tmp, strerror(e)); }
    if (torn) printf("note: dropped %zu incomplete line%s of %s (cut off when the run was killed)\n", torn, torn > 1 ? "s" : "", p);
    return 0;
}

static sv_data *g_audio_only;   /* --audio-only, loaded once by main for every run */

/* was key given with --set? */
static int set_given(const opts *o, const char *key)
{
    size_t i, n = strlen(key);
    for (i = 0; i < o->n_set; i++) if (strncmp(o->set[i], key, n) == 0 && o->set[i][n] == '=') return 1;
    return 0;
}

/* --ssl into the config, and what MT4SSL needs that can be checked before any data is read */
static int mt4ssl_check(const opts *o, sv_config *cfg)
{
    if (o->ssl) cfg->ssl = !strcmp(o->ssl, "mt4ssl") ? SV_SSL_MT4SSL : !strcmp(o->ssl, "w2v2+mt4ssl") ? SV_SSL_BOTH : SV_SSL_W2V2;
    if (cfg->ssl == SV_SSL_W2V2) {
        if (o->targets) return die("--targets is used only by --ssl mt4ssl or w2v2+mt4ssl");
        return 0;
    }
    if (sv_config_check(cfg) != SV_OK) return die("%s", sv_last_error());
    if (cfg->mt4_offline_weight > 0 && !o->targets)
        return die("--ssl %s needs offline targets: make them with ./train --kmeans DIR --data %s, then add --targets DIR "
                   "(or --set mt4_offline_weight=0 for the online target only)", o->ssl ? o->ssl : "mt4ssl", o->data);
    if (cfg->mt4_offline_weight > 0 && o->audio_only)
        return die("--audio-only batches have no offline targets (use --set mt4_offline_weight=0)");
    if (cfg->mt4_offline_weight == 0 && o->targets) return die("--targets is not used with --set mt4_offline_weight=0");
    return 0;
}

/* --precision into the config. bf16 needs the AVX512-BF16 kernel: elsewhere the run trains in
   fp32 after a one-line note, and stores fp32 as its setting (the emulation gives the same bits
   but is far slower than fp32; a resume continues what actually ran). The precision is set only
   by --precision, so that the stored setting and the checkpoint's config cannot disagree. */
static int precision_check(opts *o, sv_config *cfg)
{
    static int noted;
    if (set_given(o, "precision")) return die("--set precision: use --precision fp32|bf16");
    if (!strcmp(o->precision, "bf16") && !sv_bf16_native()) {
        if (!noted++) printf("note: --precision bf16 needs AVX512-BF16, which this build (SIMD %s) lacks: training in fp32\n", sv_simd_name());
        o->precision = "fp32";
    } else if (!strcmp(o->precision, "bf16") && !noted++ && !o->quiet) {
        printf("precision: bf16 products (AVX512-BF16) with fp32 sums; losses, optimizer and checkpoints in fp32\n");
    }
    cfg->precision = !strcmp(o->precision, "bf16") ? SV_BF16 : SV_FP32;
    return 0;
}

/* --ssl and --targets into the config of a run: the offline head's K from the targets, the EMA
   decay's ramp scaled to the run (MT4SSL: 30k of 400k updates), and every mismatch named. */
static int mt4ssl_config(const opts *o, const sv_data *data, sv_config *cfg)
{
    const sv_km_targets *t = data->targets;
    if (mt4ssl_check(o, cfg)) return -1;
    if (cfg->ssl == SV_SSL_W2V2) return 0;
    if (!set_given(o, "ema_anneal")) {
        cfg->ema_anneal = (size_t)((double)o->steps * 30000.0 / 400000.0 + 0.5);
        if (!cfg->ema_anneal) cfg->ema_anneal = 1;
    }
    if (cfg->mt4_offline_weight > 0) {
        size_t hop = 1, i;
        if (!t) return die("--ssl %s needs offline targets (--targets DIR)", o->ssl ? o->ssl : "mt4ssl");
        for (i = 0; i < cfg->n_conv; i++) hop *= cfg->conv_stride[i];
        if (t->hop != hop || t->frame_length != sv_config_receptive_field(cfg))
            return die("the targets label frames of %zu samples every %zu; this model's frames are %zu every %zu",
                       t->frame_length, t->hop, sv_config_receptive_field(cfg), hop);
        if (!t->has[SV_SPLIT_TRAIN]) return die("the targets in %s have no train.km", o->targets);
        if (set_given(o, "mt4_k") && cfg->mt4_k != t->k) return die("--set mt4_k=%zu, but the targets have k = %zu", cfg->mt4_k, t->k);
        cfg->mt4_k = t->k;
    }
    if (sv_config_check(cfg) != SV_OK) return die("%s", sv_last_error());
    return 0;
}


/* Can the run at pos go on under o? (main asks before any data is read, open_run again) */
static int check_position(const opts *o, const char *dir, const sv_train_pos *pos, int n_stages)
{
    if (pos->step >= o->steps) {
        if (pos->step == o->steps)
            return die("%s is finished (%zu of %zu updates): give --steps N above %zu to extend it", dir, pos->step, o->steps, pos->step);
        return die("--steps %zu: the run in %s has already done %zu updates", o->steps, dir, pos->step);
    }
    if (n_stages == 2 && pos->stage == 1 && pos->step < o->switch_step)
        return die("%s/last.ckpt is in stage B before the switch at %zu: not a checkpoint of this run", dir, o->switch_step);
    if (o->stop_after && o->stop_after <= pos->step)
        return die("--stop-after %zu: the run in %s is already at update %zu", o->stop_after, dir, pos->step);
    return 0;
}

static int open_run_here(run *r, const opts *o, sv_data *data, const char *dir, const char *name, const stage *st, int n_stages,
                         int resume, int init);

/* A run ready to train on every process (process 0 alone touches its folder), or -1. */
static int open_run(run *r, const opts *o, sv_data *data, const char *dir, const char *name, const stage *st, int n_stages,
                    int resume, int init)
{
    return procs_agree(open_run_here(r, o, data, dir, name, st, n_stages, resume, init));
}

static int open_run_here(run *r, const opts *o, sv_data *data, const char *dir, const char *name, const stage *st, int n_stages,
                         int resume, int init)
{
    char p[1200];
    jline meta;
    memset(r, 0, sizeof *r);
    r->o = o;
    r->data = data;
    r->st[0] = st[0];
    if (n_stages == 2) r->st[1] = st[1];
    r->n_stages = n_stages;
    r->steps = o->steps;
    r->switch_step = n_stages == 2 ? o->switch_step : 0;
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->tty = isatty(fileno(stdout));
    if (g_rank == 0 && make_dirs(dir)) return -1;
    if (build_config(o->config, o->set, o->n_set, &r->cfg) || mt4ssl_config(o, data, &r->cfg)) return -1;
    r->cfg.precision = !strcmp(o->precision, "bf16") ? SV_BF16 : SV_FP32;   /* resolved by precision_check */
    if (!(r->settings = settings_text(o))) return die("out of memory");
    r->m = sv_model_new(&r->cfg, o->seed);
    if (!r->m) return die("%s", sv_last_error());
    if (init && o->init_from && !resume) {
        char notes[1024];
        if (sv_hf_load_into(r->m, o->init_from, notes, sizeof notes) != SV_OK) return die("--init-from %s", sv_last_error());
        if (!o->quiet) printf("%s: wav2vec 2.0 part loaded from %s%s%s%s\n", name, o->init_from, notes[0] ? " (" : "", notes, notes[0] ? ")" : "");
    }
    r->opt = sv_adam_default();
    r->opt.lr = (float)o->lr;
    r->opt.weight_decay = (float)o->wd;
    r->opt.clip_norm = (float)o->clip;
    r->opt.bias_correction = !o->bertadam;
    r->c = sv_ctx_new(0, o->seed * 7919 + 1);
    r->ce = sv_ctx_new(0, 1);
    if (!r->c || !r->ce) return die("%s", sv_last_error());
    sv_ctx_set_recycle_grads(r->c, 1);     /* only parameter gradients are read after a step */
    if (sv_loader_init(&r->L, data, SV_SPLIT_TRAIN, o->batch, (size_t)(o->crop_s * 16000), o->seed) != SV_OK)
        return die("%s", sv_last_error());
    if (o->audio_only) {
        r->audio_only = g_audio_only;
        if (sv_loader_init(&r->La, g_audio_only, SV_SPLIT_TRAIN, o->batch, (size_t)(o->crop_s * 16000), o->seed + 1) != SV_OK)
            return die("%s: %s", o->audio_only, sv_last_error());
    }
    r->pos.alpha = st[0].alpha;
    snprintf(r->pos.scenario, sizeof r->pos.scenario, "%s", name);
    meta_line(r, &meta);
    path_in(r, "log.jsonl", p, sizeof p);
    if (resume) {
        char ck[1200];
        path_in(r, "last.ckpt", ck, sizeof ck);
        if (sv_checkpoint_load_into(ck, r->m, &r->opt, &r->pos) != SV_OK) return die("cannot resume: %s", sv_last_error());
        if (check_position(o, dir, &r->pos, n_stages)) return -1;
        if (g_rank == 0) {   /* an extended run makes the old final checkpoint and its evaluation stale */
            const char *stale[2] = {"final.ckpt", "final_eval.json"};
            if (clear_files(dir, stale, 2)) return -1;
        }
        *sv_ctx_rng(r->c) = r->pos.rng;
        r->L.epoch = r->pos.epoch;
        r->L.batch = r->pos.batch;
        if (r->audio_only) {
            /* the audio-only loader advances once per update with an SSL loss */
            size_t used = 0, in_a = n_stages == 2 && r->pos.step > r->switch_step ? r->switch_step : r->pos.step;
            if (st[0].alpha < 1.0f) used += in_a;
            if (n_stages == 2 && r->pos.step > r->switch_step && st[1].alpha < 1.0f) used += r->pos.step - r->switch_step;
            r->La.epoch = used / r->La.n_batches;
            r->La.batch = used % r->La.n_batches;
        }
        if (g_rank == 0 && rewrite_log(r, &meta)) return -1;
        if (!o->quiet) printf("resuming %s at step %zu of %zu (stage %s)\n", name, r->pos.step, r->steps, r->pos.stage ? "B" : "A");
    } else if (g_rank == 0) {
        char spec[4200];
        if (write_text_atomic(p, meta.s)) return -1;     /* a full disk leaves no empty log */
        path_in(r, "data.spec", spec, sizeof spec);
        {
            char line[4200];
            snprintf(line, sizeof line, "%s\n", o->data);
            if (write_text_atomic(spec, line)) return -1;
        }
    }
    if (g_rank != 0) return 0;                 /* only process 0 keeps the log */
    if (!(r->log = fopen(p, "a"))) return die("cannot write %s: %s", p, strerror(errno));
    setvbuf(r->log, NULL, _IOFBF, 1 << 16);   /* a line goes out in one write, at the flush */
    return 0;
}

static void close_run(run *r)
{
    if (r->log) fclose(r->log);
    sv_loader_free(&r->L);
    if (r->audio_only) sv_loader_free(&r->La);
    sv_ctx_free(r->c);
    sv_ctx_free(r->ce);
    sv_model_free(r->m);
    free(r->settings);
    free(r->abx_items);
    memset(r, 0, sizeof *r);
}

/* The switch of a schedule: checkpoint, log it, reset the optimizer (moments and step count);
   the learning-rate schedule restarts with the stage step. */
static int do_switch(run *r)
{
    jline j;
    if (save_ckpt(r, "switch.ckpt")) return -1;
    j.n = 0;
    jl(&j, "{\"kind\":\"switch\",\"step\":%zu", r->pos.step);
    if (log_line(r, &j)) return -1;
    sv_adam_reset(&r->opt, &r->m->params);
    /* a new stage with MT4SSL starts a new teacher from the student, as a new run would */
    if (r->st[1].alpha < 1.0f && r->cfg.ssl != SV_SSL_W2V2) sv_mt4ssl_teacher_reset(r->m);
    r->pos.stage = 1;
    r->pos.stage_step = 0;
    r->pos.alpha = r->st[1].alpha;
    if (!r->o->quiet) printf("%s[%s] switch at step %zu: %s -> %s, optimizer reset\n", r->tty ? "\r\033[K" : "", r->name, r->pos.step, r->st[0].name, r->st[1].name);
    return 0;
}

static int finish(run *r)
{
    jline j;
    if (evaluate(r)) return -1;
    j.n = 0;
    jl(&j, "{\"kind\":\"final\",\"step\":%zu", r->pos.step);
    if (log_line(r, &j)) return -1;
    if (save_ckpt(r, "last.ckpt") || save_ckpt(r, "final.ckpt")) return -1;
    if (!r->o->quiet) printf("%s[%s] done: %zu steps in %.0f s; checkpoints in %s\n", r->tty ? "\r\033[K" : "", r->name, r->pos.step, now_s() - r->t_start, r->dir);
    return 0;
}

/* One scenario from scratch (or resumed): stage A to the switch, then stage B. Returns 0 when
   finished, 1 when stopped by --stop-after, 2 when interrupted, -1 on an error. */
static int run_scenario(const opts *o, sv_data *data, const char *dir, const char *name, const stage *st, int n_stages, int resume,
                        size_t snapshot)
{
    run r;
    int rc = -1;
    if (open_run(&r, o, data, dir, name, st, n_stages, resume, 1) == 0 && procs_check(&r) == 0) {
        r.snapshot_step = snapshot;
        r.t_start = now_s();
        if (r.pos.stage == 0) {
            if ((rc = train_until(&r, n_stages == 2 ? r.switch_step : r.steps)) != 0) goto done;
            rc = -1;
            if (n_stages == 2 && do_switch(&r)) goto done;
        }
        if ((rc = train_until(&r, r.steps)) != 0) goto done;
        rc = finish(&r) == 0 ? 0 : -1;
    }
done:
    close_run(&r);
    return rc;
}

/* A schedule continuing from a base run's switch checkpoint (the paper's reuse): the stage-A
   log lines are copied, the weights, buffers, loader position and RNG taken from the
   checkpoint, the optimizer starts fresh. */
static int run_continuation(const opts *o, sv_data *data, const char *base_dir, const char *dir, const char *name, const stage st[2])
{
    run r;
    char src[1400], p[1400];
    char *line = NULL;
    size_t cap = 0;
    long len;
    FILE *f;
    int rc = -1, lrc = 0;
    if (open_run(&r, o, data, dir, name, st, 2, 0, 0)) { close_run(&r); return -1; }
    snprintf(src, sizeof src, "%s/switch.ckpt", base_dir);
    if (procs_agree(sv_checkpoint_load_into(src, r.m, NULL, &r.pos) != SV_OK ? die("%s", sv_last_error()) : 0)) goto done;
    *sv_ctx_rng(r.c) = r.pos.rng;
    r.L.epoch = r.pos.epoch;
    r.L.batch = r.pos.batch;
    snprintf(r.pos.scenario, sizeof r.pos.scenario, "%s", name);
    snprintf(p, sizeof p, "%s/log.jsonl", base_dir);
    if (r.log && (f = fopen(p, "r"))) {   /* process 0: the base run's log up to the switch */
        while (!lrc && (len = read_line(&line, &cap, f)) > 0) {
            double s;
            if (!whole_line(line, (size_t)len) || strstr(line, "\"kind\":\"meta\"")) continue;
            if (sv_json_number(line, "step", &s) == 1 && s > (double)r.switch_step) break;
            if (fputs(line, r.log) < 0) lrc = die("cannot write %s/log.jsonl: %s", dir, strerror(errno));
        }
        free(line);
        line = NULL;
        fclose(f);
        if (!lrc && fflush(r.log) != 0) lrc = die("cannot write %s/log.jsonl: %s", dir, strerror(errno));
    }
    if (procs_agree(lrc) || procs_check(&r)) goto done;
    r.t_start = now_s();
    r.pos.stage = 0;
    if (do_switch(&r) == 0 && (rc = train_until(&r, r.steps)) == 0) rc = finish(&r) == 0 ? 0 : -1;
done:
    free(line);
    close_run(&r);
    return rc;
}

/* The 9-row study (--all), fresh or resumed: runs that finished are kept, runs with a checkpoint
   resume, runs without one start (again). Returns as run_scenario. */
static int run_study(const opts *o, sv_data *data, const char *root, int resume)
{
    stage st[2];
    char dir[1200], name[64], ck[1300];
    int i, rc = 0;
    for (i = 0; i < 3 && rc == 0; i++) {
        /* base runs leave a checkpoint at the switch step for the continuations */
        int res = 0;
        if ((g_signal = procs_signal(g_signal)) != 0) return 2;
        parse_stage(base_names[i], strlen(base_names[i]), (float)o->alpha_plus, &st[0]);
        snprintf(dir, sizeof dir, "%s/%s", root, base_names[i]);
        if (resume) {
            snprintf(ck, sizeof ck, "%s/final.ckpt", dir);
            if (exists(ck)) { if (!o->quiet) printf("[%s] finished before: kept\n", base_names[i]); continue; }
            snprintf(ck, sizeof ck, "%s/last.ckpt", dir);
            res = exists(ck);
            if (procs_agree(!res && g_rank == 0 && clear_files(dir, run_files, N_RUN_FILES))) return -1;
        }
        rc = run_scenario(o, data, dir, base_names[i], st, 1, res, o->switch_step);
    }
    for (i = 0; i < 6 && rc == 0; i++) {
        char base_dir[1200];
        snprintf(name, sizeof name, "%s-%s", sched_names[i][0], sched_names[i][1]);
        if (o->schedules && !in_list(o->schedules, name)) continue;
        if ((g_signal = procs_signal(g_signal)) != 0) return 2;
        parse_stage(sched_names[i][0], strlen(sched_names[i][0]), (float)o->alpha_plus, &st[0]);
        parse_stage(sched_names[i][1], strlen(sched_names[i][1]), (float)o->alpha_plus, &st[1]);
        snprintf(base_dir, sizeof base_dir, "%s/%s", root, sched_names[i][0]);
        snprintf(dir, sizeof dir, "%s/%s", root, name);
        if (resume) {
            snprintf(ck, sizeof ck, "%s/final.ckpt", dir);
            if (exists(ck)) { if (!o->quiet) printf("[%s] finished before: kept\n", name); continue; }
            snprintf(ck, sizeof ck, "%s/last.ckpt", dir);
            if (exists(ck)) { rc = run_scenario(o, data, dir, name, st, 2, 1, 0); continue; }
            if (procs_agree(g_rank == 0 && clear_files(dir, run_files, N_RUN_FILES))) return -1;
        }
        rc = run_continuation(o, data, base_dir, dir, name, st);
    }
    if (rc == 0) printf("study done: ./eval --report %s/* writes the tables and figures\n", root);
    return rc;
}

/* The folder of a study: OUT itself, or OUT/seed<S> under --seeds. */
static void study_dir(const opts *o, const char *root, uint64_t seed, char *buf, size_t cap)
{
    if (o->seeds) snprintf(buf, cap, "%s/seed%llu", root, (unsigned long long)seed);
    else snprintf(buf, cap, "%s", root);
}

/* A new study's folder. Pass 0 checks: a folder holding a study (settings or any run's files) is
   refused unless --force. Pass 1 writes: with --force the old files go, then study.settings. */
static int prepare_study(const opts *o, const char *root, uint64_t seed, int pass)
{
    char dir[1200], p[1300], sub[1300], names[256];
    int i, busy;
    opts one = *o;
    one.seed = seed;
    one.seeds = 0;
    study_dir(o, root, seed, dir, sizeof dir);
    snprintf(p, sizeof p, "%s/study.settings", dir);
    busy = exists(p);
    for (i = 0; i < 9 && !busy; i++) {
        if (i < 3) snprintf(sub, sizeof sub, "%s/%s", dir, base_names[i]);
        else snprintf(sub, sizeof sub, "%s/%s-%s", dir, sched_names[i - 3][0], sched_names[i - 3][1]);
        run_files_in(sub, names, sizeof names);
        busy = names[0] != 0;
    }
    if (pass == 0) {
        if (busy && !o->force) return die("%s already holds a study: resume it with --resume %s, or replace it with --force", dir, o->seeds ? root : dir);
        return 0;
    }
    if (busy) {
        if (clear_files(dir, report_files, N_REPORT_FILES)) return -1;
        for (i = 0; i < 9; i++) {
            if (i < 3) snprintf(sub, sizeof sub, "%s/%s", dir, base_names[i]);
            else snprintf(sub, sizeof sub, "%s/%s-%s", dir, sched_names[i - 3][0], sched_names[i - 3][1]);
            if (clear_files(sub, run_files, N_RUN_FILES)) return -1;
        }
    }
    if (make_dirs(dir)) return -1;
    {
        char *t = settings_text(&one);
        if (!t || write_text_atomic(p, t)) { free(t); return -1; }
        free(t);
    }
    return 0;
}

/* --all --seeds N: the studies of seeds S..S+N-1 one after the other in ROOT/seed<S>/, each one
   exactly the study `--all --seed <S> --out ROOT/seed<S>` would run. On resume a seed whose
   folder was never started is started. */
static int run_seeds(const opts *o, sv_data *data, const char *root, int resume)
{
    size_t k;
    int rc = 0;
    for (k = 0; k < o->seeds && rc == 0; k++) {
        opts one = *o;
        char dir[1200], p[1300];
        one.seed = o->seed + k;
        one.seeds = 0;
        study_dir(o, root, one.seed, dir, sizeof dir);
        snprintf(p, sizeof p, "%s/study.settings", dir);
        if (g_signal) return 2;
        if (!o->quiet) printf("== seed %llu (%zu of %zu): %s\n", (unsigned long long)one.seed, k + 1, o->seeds, dir);
        if (resume && !exists(p)) {
            one.force = 1;
            if (prepare_study(o, root, one.seed, 1)) return -1;
            rc = run_study(&one, data, dir, 0);
        } else {
            rc = run_study(&one, data, dir, resume);
        }
    }
    if (rc == 0) printf("all %zu seeds done: ./eval --report %s gives means over seeds with 95%% intervals\n", o->seeds, root);
    return rc;
}

/* ---------------------------------------------------------------- modes */
static int write_builtin(const opts *o)
{
    sv_corpus_config cc = sv_corpus_default_config();
    sv_corpus *c;
    double t0 = now_s();
    int rc;
    cc.seed = o->seed;
    if (o->images) {
        size_t n_val = given(o, "--val-images") ? o->val_images : o->images / 10;
        size_t n_test = given(o, "--test-images") ? o->test_images : o->images / 5;
        if (n_val + n_test >= o->images) {
            die("%zu validation + %zu test images leave no training images out of %zu", n_val, n_test, o->images);
            return 1;
        }
        cc.n_train_images = o->images - n_val - n_test;
        cc.n_val_images = n_val;
        cc.n_test_images = n_test;
    } else if (given(o, "--val-images") || given(o, "--test-images")) {
        die("--val-images and --test-images need --images");
        return 2;
    }
    if (given(o, "--captions")) cc.captions_per_image = o->captions;
    if (o->regions && !strcmp(o->regions, "pixels")) cc.region_features = SV_REGIONS_PIXELS;
    {   /* create the parents (the library creates the folder itself) */
        char parent[1024];
        const char *sl = strrchr(o->write_builtin, '/');
        if (sl && sl != o->write_builtin) {
            snprintf(parent, sizeof parent, "%.*s", (int)(sl - o->write_builtin), o->write_builtin);
            if (make_dirs(parent)) return 1;
        }
    }
    if (!o->quiet) printf("generating the built-in corpus (seed %llu)...\n", (unsigned long long)cc.seed);
    c = sv_corpus_generate(&cc);
    if (!c) { die("%s", sv_last_error()); return 1; }
    rc = sv_corpus_write_as(c, o->write_builtin, o->wav_format && !strcmp(o->wav_format, "float32") ? SV_WAV_FLOAT32 : SV_WAV_PCM16);
    if (rc != SV_OK) die("%s", sv_last_error());
    else if (!o->quiet) printf("wrote %zu utterances and %zu images to %s in %.1f s\n", c->n_utts, c->n_images, o->write_builtin, now_s() - t0);
    sv_corpus_free(c);
    return rc == SV_OK ? 0 : 1;
}

/* --export-hf CKPT OUT.safetensors: the wav2vec 2.0 part with Hugging Face names, config.json beside it */
static int export_hf(const opts *o)
{
    size_t n = strlen(o->export_ckpt), d;
    char json[1200], notes[1024] = "";
    const char *slash = strrchr(o->export_out, '/');
    sv_config lean;
    sv_model *m;
    /* a checkpoint, or a safetensors file (rewritten as F32 Wav2Vec2ForPreTraining; the VGS
       branch, which is not exported, is left out of the model built for it) */
    sv_config_preset("base", &lean);
    lean.img_layers = 0;
    lean.vgs_audio_layers = 0;
    m = n > 12 && !strcmp(o->export_ckpt + n - 12, ".safetensors") ? sv_hf_load(o->export_ckpt, &lean, notes, sizeof notes)
                                                                 : sv_checkpoint_load(o->export_ckpt, NULL, NULL);
    if (!m) { die("%s", sv_last_error()); return 1; }
    if (notes[0]) printf("%s: %s\n", o->export_ckpt, notes);
    d = slash ? (size_t)(slash - o->export_out) + 1 : 0;
    snprintf(json, sizeof json, "%.*sconfig.json", (int)d, o->export_out);
    if (d > 1) {   /* the output folder, as save_pretrained makes it (mkdir -p) */
        char dir[1200];
        snprintf(dir, sizeof dir, "%.*s", (int)d - 1, o->export_out);
        if (make_dirs(dir)) { sv_model_free(m); return 1; }
    }
    if (sv_hf_save(m, o->export_out, json) != SV_OK) { die("%s", sv_last_error()); sv_model_free(m); return 1; }
    printf("wrote %s (%zu wav2vec 2.0 parameters, %s config, %zu layers) and %s\n", o->export_out,
           sv_model_numel(m, SV_GROUPS_W2V2), m->cfg.name, m->cfg.n_shared + m->cfg.n_decoder, json);
    if (m->cfg.use_cls)
        printf("note: this model was trained with a CLS token (use_cls = 1), stored as ssl_vgs.cls_token; transformers and\n"
               "torchaudio have no place for it, so their hidden states differ from ./eval's for this model\n");
    sv_model_free(m);
    return 0;
}

/* ---------------------------------------------------------------- --kmeans: offline targets */
static void kmeans_progress(const char *what, size_t done, size_t total, void *user)
{
    static double last;
    double t = now_s();
    (void)user;
    if (done != total && t - last < 0.5) return;
    last = t;
    if (isatty(fileno(stdout))) printf("\r\033[K%s: %zu/%zu", what, done, total);
    else if (done == total) printf("%s: %zu/%zu\n", what, done, total);
    if (done == total && isatty(fileno(stdout))) printf("\n");
    fflush(stdout);
}

/* k-means targets of the data (HuBERT's first iteration on MFCCs, or a later one on a model's
   layer) written as a target folder. */
static int kmeans_main(const opts *o, const sv_data *d)
{
    sv_kmeans_opts ko = sv_kmeans_default_opts();
    sv_kmeans_result res;
    sv_km_targets t;
    sv_model *m = NULL;
    sv_ctx *c = NULL;
    size_t layer = 0, used = 0, i, *cnt = NULL, total;
    char cache[1200];
    double t0 = now_s(), h = 0;
    int rc;
    ko.seed = o->seed;
    ko.k = o->kmeans_k ? o->kmeans_k : o->kmeans_from ? 500 : 100;
    if (o->kmeans_iter) ko.max_iter = o->kmeans_iter;
    ko.progress = kmeans_progress;
    if (o->kmeans_from) {
        m = sv_checkpoint_load(o->kmeans_from, NULL, NULL);
        if (!m) { die("%s", sv_last_error()); return 1; }
        layer = given(o, "--kmeans-layer") ? o->kmeans_layer : (m->cfg.n_shared + m->cfg.n_decoder + 1) / 2;
        if (layer > m->cfg.n_shared + m->cfg.n_decoder) {
            die("--kmeans-layer %zu: the model has layers 0..%zu", layer, m->cfg.n_shared + m->cfg.n_decoder);
            sv_model_free(m);
            return 1;
        }
        c = sv_ctx_new(0, 1);
        if (!c) { die("%s", sv_last_error()); sv_model_free(m); return 1; }
        printf("k-means of layer %zu of %s (%zu dims), k = %zu\n", layer, o->kmeans_from, m->cfg.D, ko.k);
    } else {
        printf("k-means of MFCCs (13 + deltas + delta-deltas, 20 ms; HuBERT's first iteration), k = %zu\n", ko.k);
    }
    if (make_dirs(o->kmeans)) { sv_ctx_free(c); sv_model_free(m); return 1; }
    snprintf(cache, sizeof cache, "%s/frames.cache", o->kmeans);
    rc = sv_km_targets_make(d, m, c, layer, NULL, &ko, cache, &t, &res);
    if (rc == SV_OK && o->kmeans_from) snprintf(t.features, sizeof t.features, "%s layer %zu", o->kmeans_from, layer);
    if (rc == SV_OK) rc = sv_km_targets_write(o->kmeans, &t, d);
    if (rc != SV_OK) { die("%s", sv_last_error()); sv_ctx_free(c); sv_model_free(m); return 1; }
    /* how the training frames spread over the clusters */
    cnt = (size_t *)calloc(t.k, sizeof(size_t));
    total = t.has[SV_SPLIT_TRAIN] ? t.offset[SV_SPLIT_TRAIN][t.n[SV_SPLIT_TRAIN]] : 0;
    for (i = 0; cnt && i < total; i++) cnt[t.labels[SV_SPLIT_TRAIN][i]]++;
    for (i = 0; cnt && i < t.k; i++)
        if (cnt[i]) { double p = (double)cnt[i] / (double)total; used++; h -= p * log(p); }
    printf("%zu training frames, %zu Lloyd updates (%s), inertia per frame %.4g -> %.4g, %zu empty clusters moved\n",
           res.n_frames, res.iterations, res.converged ? "converged" : "stopped at --kmeans-iter", res.inertia_first / (double)res.n_frames,
           res.inertia / (double)res.n_frames, res.relocated);
    printf("%zu of %zu clusters used on train, label perplexity %.1f; wrote %s in %.1f s\n", used, t.k, exp(h), o->kmeans, now_s() - t0);
    free(cnt);
    sv_km_targets_free(&t);
    sv_ctx_free(c);
    sv_model_free(m);
    return 0;
}

int sv_bench_main(const opts *o);

/* path as one shell word, for the resume commands printed: 'a b' stays one argument */
static const char *shell_word(const char *path, char *buf, size_t cap)
{
    size_t i, n = 0;
    if (strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-+=:,@%") == strlen(path) && *path) return path;
    if (cap < 8) return path;
    buf[n++] = '\'';
    for (i = 0; path[i] && n + 6 < cap; i++) {
        if (path[i] == '\'') { memcpy(buf + n, "'\\''", 4); n += 4; }
        else buf[n++] = path[i];
    }
    buf[n++] = '\'';
    buf[n] = 0;
    return buf;
}

/* The settings text of a run to resume: from DIR/last.ckpt, or DIR/study.settings for a study.
   Malloc'd into *text, the file named in src. Returns 0, or the exit status of an error. */
static int read_resume_settings(const char *dir, int *study, char **text, char *src, size_t cap)
{
    FILE *f;
    long n;
    if (!is_dir(dir)) { die("--resume %s: no such folder", dir); return 2; }
    snprintf(src, cap, "%s/study.settings", dir);
    if ((*study = exists(src))) {
        if (!(f = fopen(src, "r")) || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
            !(*text = (char *)calloc((size_t)n + 1, 1)) || fread(*text, 1, (size_t)n, f) != (size_t)n) {
            die("cannot read %s: %s", src, strerror(errno));
            if (f) fclose(f);
            return 1;
        }
        fclose(f);
        return 0;
    }
    snprintf(src, cap, "%s/last.ckpt", dir);
    if (!exists(src)) {
        char p[1200];
        snprintf(p, sizeof p, "%s/log.jsonl", dir);
        if (exists(p))
            die("%s has no checkpoint yet (it stopped before its first one): nothing to resume; start it again with the same "
                "options and --out %s --force", dir, dir);
        else
            die("--resume %s: not a run folder (no last.ckpt, log.jsonl or study.settings)", dir);
        return 1;
    }
    if (sv_checkpoint_settings(src, text) != SV_OK) { die("cannot resume: %s", sv_last_error()); return 1; }
    {
        const char *p = *text;
        while (*p == '#') { p = strchr(p, '\n'); p = p ? p + 1 : ""; }
        if (!*p) {
            die("%s stores no run settings (written by an older version of train): resuming could silently change them; "
                "start the run again", src);
            return 1;
        }
    }
    return 0;
}

/* A new run's folder (process 0): a new run never mixes with the files of an earlier one.
   Returns 0, or 1 with the line printed. */
static int prepare_out(const opts *o, const char *dir)
{
    char names[256], p[1200];
    snprintf(p, sizeof p, "%s/study.settings", dir);
    if (o->all && o->seeds) {
        /* every seed's folder is checked (and cleared with --force) before anything is written */
        size_t k;
        if (exists(p) && !o->force) {
            die("%s already holds a study: resume it with --resume %s, or replace it with --force", dir, dir);
            return 1;
        }
        for (k = 0; k < o->seeds; k++) if (prepare_study(o, dir, o->seed + k, 0)) return 1;
        if (clear_files(dir, report_files, N_REPORT_FILES)) return 1;
        for (k = 0; k < o->seeds; k++) if (prepare_study(o, dir, o->seed + k, 1)) return 1;
        {
            char *t = settings_text(o);
            if (!t || write_text_atomic(p, t)) { free(t); return 1; }
            free(t);
        }
    } else if (o->all) {
        if (prepare_study(o, dir, o->seed, 0) || prepare_study(o, dir, o->seed, 1)) return 1;
    } else {
        if (exists(p)) { die("%s holds a study (--all): choose another --out for a single run", dir); return 1; }
        run_files_in(dir, names, sizeof names);
        if (names[0] && !o->force) {
            die("%s already holds a run (%s): resume it with --resume %s, or replace it with --force", dir, names, dir);
            return 1;
        }
        if (names[0] && clear_files(dir, run_files, N_RUN_FILES)) return 1;
        if (make_dirs(dir)) return 1;
    }
    return 0;
}

/* The options of a run: on --resume the stored settings restored (options given again must
   agree), then every value and relation checked. Returns 0, or the exit status with the line
   printed. */
static int resolve_opts(opts *o, sv_config *cfg, stage st[2], int *n_stages, int *ssl, int *vgs, int *study, char **stored,
                        char *src, size_t src_cap)
{
    int rc;
    if (o->resume) {
        if ((rc = read_resume_settings(o->resume, study, stored, src, src_cap)) != 0) return rc;
        if (canonical(o) || apply_settings(o, *stored, src)) return 2;
        if (!*study && o->all) {
            char parent[1024], *sl;
            snprintf(parent, sizeof parent, "%s", o->resume);
            while (strlen(parent) > 1 && parent[strlen(parent) - 1] == '/') parent[strlen(parent) - 1] = 0;
            if ((sl = strrchr(parent, '/'))) { if (sl == parent) sl[1] = 0; else *sl = 0; }
            else snprintf(parent, sizeof parent, ".");
            die("%s is one run of a study (--all): resume the whole study with --resume %s", o->resume, parent);
            return 2;
        }
    }
    if (check_opts(o, cfg, st, n_stages, ssl, vgs)) return 2;
    if (o->init_from && !o->resume) {   /* fail before the data is loaded, not after */
        FILE *f = fopen(o->init_from, "rb");
        if (!f) { die("--init-from %s: %s", o->init_from, strerror(errno)); return 2; }
        fclose(f);
    }
    return 0;
}

static int train_main(int argc, char **argv);

int main(int argc, char **argv)
{
    int rc;
    procs_start(&argc, &argv);
    rc = train_main(argc, argv);
    procs_end();
    return rc;
}

static int train_main(int argc, char **argv)
{
    static opts o;
    static sv_km_targets targets;
    sv_data data, ao;
    sv_config cfg;
    stage st[2];
    int n_stages = 1, ssl = 0, vgs = 0, rc = 0, study = 0;
    char dir[1024], name[64], src[1200], *stored = NULL;
    /* every process checks the same options; a refusal on any one ends all of them, with the
       line printed by process 0 */
    rc = parse_args(argc, argv, &o) ? 2 : 0;
    if (!rc && g_procs > 1 && (o.write_builtin || o.bench || o.bench_step || o.bench_extract || o.kmeans || o.export_ckpt))
        rc = (die("--write-builtin, --export-hf, --bench and --kmeans run in one process (mpirun -np 1, or ./train alone), not %d",
                  g_procs), 2);
#ifndef SV_MPI
    if (!rc && g_launched && g_launched_rank != 0) return 2;
    if (!rc && g_launched)
        rc = (die("started as one of %d processes (mpirun/srun), but this train is built without MPI: each would train alone "
                  "into the same folder; build it with make MPI=1", g_launched), 2);
#endif
    if (procs_agree(rc)) return 2;
    if (o.threads) sv_set_threads((int)o.threads);
    if (o.write_builtin) return write_builtin(&o);
    if (o.export_ckpt) return export_hf(&o);
    if (o.bench) return sv_bench_main(&o);
    if (o.kmeans) {
        char done[1200];
        if (given(&o, "--kmeans-layer") && !o.kmeans_from) { die("--kmeans-layer needs --kmeans-from CKPT"); return 2; }
        snprintf(done, sizeof done, "%s/.complete", o.kmeans);
        if (exists(done)) { die("%s already holds finished targets (.complete); remove it or choose another folder", o.kmeans); return 1; }
        if (o.kmeans_from) {
            uint64_t id;
            if (sv_checkpoint_id(o.kmeans_from, &id) != SV_OK) { die("--kmeans-from: %s", sv_last_error()); return 2; }
        }
        if (canonical(&o)) return 2;
        if (!o.quiet) printf("loading data: %s\n", o.data);
        if ((o.stream ? sv_data_from_spec_streamed(&data, o.data) : sv_data_from_spec(&data, o.data)) != SV_OK) {
            die("%s", sv_last_error());
            return 1;
        }
        rc = kmeans_main(&o, &data);
        sv_data_free(&data);
        return rc;
    }
    if ((rc = resolve_opts(&o, &cfg, st, &n_stages, &ssl, &vgs, &study, &stored, src, sizeof src)) == 0 && (size_t)g_procs > o.batch)
        rc = (die("%d processes for a batch of %zu pairs: every process needs at least one (--batch %d or more, or fewer processes)",
                  g_procs, o.batch, g_procs), 2);
    if (procs_agree(rc)) { free(stored); return rc ? rc : 2; }
    name[0] = 0;
    if (!o.all) snprintf(name, sizeof name, "%s%s%s", st[0].name, n_stages == 2 ? "-" : "", n_stages == 2 ? st[1].name : "");
    if (o.resume) snprintf(dir, sizeof dir, "%s", o.resume);
    else if (o.out) snprintf(dir, sizeof dir, "%s", o.out);
    else if (o.all) snprintf(dir, sizeof dir, "runs/study");
    else snprintf(dir, sizeof dir, "runs/%s", name);
    while (strlen(dir) > 1 && dir[strlen(dir) - 1] == '/') dir[strlen(dir) - 1] = 0;
    if (procs_same_options(&o, dir)) { free(stored); return 2; }
    if (o.resume && !study) {
        /* the checkpoint is read whole (checksum, finite weights) and its position checked
           before any data is read */
        sv_train_pos pos;
        sv_model *m = sv_checkpoint_load(src, NULL, &pos);
        if (procs_agree(m ? 0 : die("cannot resume: %s", sv_last_error()))) { sv_model_free(m); free(stored); return 1; }
        sv_model_free(m);
        if (procs_agree(check_position(&o, o.resume, &pos, n_stages))) { free(stored); return 1; }
    }

    /* the output folder: a new run never mixes with the files of an earlier one (process 0
       prepares it; the others write nothing) */
    if (procs_agree(!o.resume && g_rank == 0 ? prepare_out(&o, dir) : 0)) return 1;

    /* several processes: each reads only the audio of its share of each batch (and process 0
       that of the evaluations), not the whole corpus */
    if (g_procs > 1) o.stream = 1;
    if (!o.quiet) printf("loading data: %s%s\n", o.data, o.stream ? " (streamed: audio and image features are read from disk as used)" : "");
    if (procs_agree((o.stream ? sv_data_from_spec_streamed(&data, o.data) : sv_data_from_spec(&data, o.data)) != SV_OK
                        ? die("%s", sv_last_error()) : 0))
        return 1;
    if (o.audio_only) {
        if (!o.quiet) printf("loading the audio-only manifest %s%s\n", o.audio_only, o.stream ? " (streamed)" : "");
        if (procs_agree((o.stream ? sv_data_audio_manifest_streamed(&ao, o.audio_only) : sv_data_audio_manifest(&ao, o.audio_only)) != SV_OK
                            ? die("%s", sv_last_error()) : 0)) { sv_data_free(&data); return 1; }
        g_audio_only = &ao;
    }
    if (o.targets) {
        if (sv_km_targets_read(o.targets, &data, &targets) != SV_OK) { die("%s", sv_last_error()); rc = -1; }
        else {
            data.targets = &targets;
            if (!o.quiet) printf("offline targets: %s (k = %zu, %s)\n", o.targets, targets.k, targets.features);
        }
    }
    if (rc == 0 && check_data(&o, &cfg, &data, g_audio_only, ssl, vgs)) rc = -1;
    if (procs_agree(rc)) rc = -1;
    else {
        if (!o.quiet)
            printf("data: %zu/%zu/%zu/%zu train/val/test/ood utterances, %zu images (SIMD %s, %d threads%s)\n",
                   data.n[0], data.n[1], data.n[2], data.n[3], data.n_images, sv_simd_name(), sv_get_threads(),
                   g_procs > 1 ? " per process" : "");
        if (g_procs > 1 && !o.quiet) {
            size_t f, n;
            sv_shard_split(o.batch, g_procs, 0, &f, &n);
            printf("%d processes, each with %zu-%zu of the %zu pairs of a batch\n", g_procs, n,
                   o.batch % (size_t)g_procs ? n + 1 : n, o.batch);
        }
        install_signals();
        if (o.all && o.seeds) rc = run_seeds(&o, &data, dir, o.resume != NULL);
        else if (o.all) rc = run_study(&o, &data, dir, o.resume != NULL);
        else rc = run_scenario(&o, &data, dir, name, st, n_stages, o.resume != NULL, 0);
    }
    if (g_audio_only) sv_data_free(&ao);
    if (data.targets) sv_km_targets_free(&targets);
    sv_data_free(&data);
    free(stored);
    if (rc == 1) printf("resume with: %s./train --resume %s\n", g_procs > 1 ? "mpirun -np P " : "", shell_word(dir, src, sizeof src));
    if (rc == 2) {
        fprintf(stderr, "%strain: interrupted by %s: checkpoint written; resume with: %s./train --resume %s\n",
                isatty(fileno(stdout)) ? "\n" : "", g_signal == SIGINT ? "SIGINT (Ctrl-C)" : "SIGTERM",
                g_procs > 1 ? "mpirun -np P " : "", shell_word(dir, src, sizeof src));
        return 128 + (g_signal ? (int)g_signal : SIGTERM);
    }
    return rc < 0 ? 1 : 0;
}

/* ---------------------------------------------------------------- benchmark (make bench) */
/* Speed is measured here, never in the tests. Figures are ratios measured in one run
   (SIMD vs scalar, 2 threads vs 1) on the machine printed at the top. */
typedef struct bench_shape {
    size_t M, N, K;
    int ta, tb;
    int naive;          /* also time sv_gemm_naive */
    const char *what;
} bench_shape;

/* The model's shapes: frames T = M (800 frames = one 16 s utterance; 6400/25600 = a batch),
   D = 256/768, FFN 1024/3072, the first conv layer (K = 10 taps), and the backward products. */
static const bench_shape bench_shapes[] = {
    {256, 256, 256, 0, 0, 1, "square"},
    {512, 512, 512, 0, 0, 1, "square"},
    {1024, 1024, 1024, 0, 0, 0, "square"},
    {800, 256, 256, 0, 0, 1, "proj D=256, T=800"},
    {6400, 256, 256, 0, 0, 0, "proj D=256, T=6400"},
    {25600, 256, 256, 0, 0, 0, "proj D=256, T=25600"},
    {800, 1024, 256, 0, 0, 0, "FFN up 256->1024"},
    {800, 3072, 768, 0, 0, 0, "FFN up 768->3072"},
    {800, 768, 3072, 0, 0, 0, "FFN down 3072->768"},
    {800, 768, 3072, 0, 1, 0, "dX = dY W^T (B^T)"},
    {768, 3072, 800, 1, 0, 0, "dW = X^T dY (A^T)"},
    {25600, 256, 10, 0, 0, 0, "conv0 K=10"},
    {64, 768, 768, 0, 0, 1, "skinny M=64"},
    {3199, 256, 768, 0, 1, 0, "conv1 256ch K=3, 2 s"},
    {100, 100, 64, 0, 1, 0, "attention Q K^T, T=100"},
    {100, 64, 100, 0, 0, 0, "attention P V, T=100"},
    {100, 16, 2048, 0, 1, 0, "pos conv group, T=100"},
};

static double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median GFLOP/s over 5 samples of sv_gemm (kind 0), sv_gemm_naive (1) or sv_gemm_bf16 (2). */
static double bench_run(const bench_shape *s, int kind, const float *A, const float *B,
                            float *C)
{
    double t[5], flops = 2.0 * (double)s->M * (double)s->N * (double)s->K;
    size_t lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    int reps = 1, i, r, naive = kind == 1;
    void (*f)(int, int, size_t, size_t, size_t, float, const float *, size_t, const float *,
              size_t, float, float *, size_t) = naive ? sv_gemm_naive : kind == 2 ? sv_gemm_bf16 : sv_gemm;
    double t0 = bench_now(), dt;
    f(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N); /* warm-up */
    dt = bench_now() - t0;
    if (dt < 0.04) reps = (int)(0.04 / (dt > 1e-7 ? dt : 1e-7)) + 1;
    for (i = 0; i < 5; i++) {
        t0 = bench_now();
        for (r = 0; r < reps; r++)
            f(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
        t[i] = (bench_now() - t0) / reps;
        if (naive && dt > 0.3) { t[1] = t[2] = t[3] = t[4] = t[0]; break; } /* slow: 1 sample */
    }
    qsort(t, 5, sizeof t[0], bench_cmp);
    return flops / t[2] * 1e-9;
}

static void bench_cpu(char *buf, size_t n)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    snprintf(buf, n, "unknown CPU");
    if (!f) return;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                p += 1 + (p[1] == ' ');
                p[strcspn(p, "\n")] = 0;
                snprintf(buf, n, "%s", p);
            }
            break;
        }
    fclose(f);
}

static void bench_gemm(FILE *out)
{
    char cpu[256], load[128] = "?";
    size_t i, ns = sizeof bench_shapes / sizeof bench_shapes[0];
    int old = sv_get_threads(), maxt = sv_get_threads();
    FILE *lf = fopen("/proc/loadavg", "r");
    sv_rng rng;
    if (lf) {
        if (!fgets(load, sizeof load, lf)) load[0] = 0;
        {   /* keep the three averages */
            char *sp = strchr(load, ' ');
            if (sp) sp = strchr(sp + 1, ' ');
            if (sp) sp = strchr(sp + 1, ' ');
            if (sp) *sp = 0;
            load[strcspn(load, "\n")] = 0;
        }
        fclose(lf);
    }
    bench_cpu(cpu, sizeof cpu);
    fprintf(out, "sv_gemm benchmark: %s, SIMD %s, AVX512-BF16 kernel %s, up to %d threads, load average %s\n", cpu,
            sv_simd_name(), sv_bf16_native() ? "yes" : "no (bf16 columns skipped)", maxt, load);
    if (atof(load) > 1.0)
        fprintf(out, "WARNING: the machine is busy; 2-thread figures will be unreliable (with other "
                     "processes on the cores, OMP_WAIT_POLICY=passive avoids spin-wait stalls)\n");
    fprintf(out, "%-22s %6s %5s %5s %3s | %9s %9s | %9s %9s | %9s %9s | %9s\n", "shape", "M", "N", "K", "op",
            "1 thread", "2 threads", "bf16 1th", "bf16/fp32", "bf16 2th", "bf16/fp32", "naive");
    sv_rng_seed(&rng, 1);
    for (i = 0; i < ns; i++) {
        const bench_shape *s = &bench_shapes[i];
        float *A = SV__CAST(float *, malloc(s->M * s->K * sizeof(float)));
        float *B = SV__CAST(float *, malloc(s->K * s->N * sizeof(float)));
        float *C = SV__CAST(float *, malloc(s->M * s->N * sizeof(float)));
        double g1, g2 = 0.0, gn = 0.0, h1 = 0.0, h2 = 0.0;
        int bf = sv_bf16_native();
        size_t j;
        if (!A || !B || !C) {
            fprintf(out, "%-22s out of memory\n", s->what);
            free(A); free(B); free(C);
            continue;
        }
        for (j = 0; j < s->M * s->K; j++) A[j] = sv_rng_uniformf(&rng) - 0.5f;
        for (j = 0; j < s->K * s->N; j++) B[j] = sv_rng_uniformf(&rng) - 0.5f;
        sv_set_threads(1);
        g1 = bench_run(s, 0, A, B, C);
        if (bf) h1 = bench_run(s, 2, A, B, C);
        if (s->naive) gn = bench_run(s, 1, A, B, C);
        if (maxt >= 2) {
            sv_set_threads(2);
            g2 = bench_run(s, 0, A, B, C);
            if (bf) h2 = bench_run(s, 2, A, B, C);
        }
        fprintf(out, "%-22s %6zu %5zu %5zu %c%c  | %9.1f %9.1f | ", s->what, s->M, s->N, s->K,
                s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', g1, g2);
        if (bf) fprintf(out, "%9.1f %8.2fx | %9.1f %8.2fx | ", h1, h1 / g1, h2, g2 > 0 ? h2 / g2 : 0.0);
        else fprintf(out, "%9s %9s | %9s %9s | ", "-", "-", "-", "-");
        if (s->naive) fprintf(out, "%9.2f  GFLOP/s\n", gn);
        else fprintf(out, "%9s  GFLOP/s\n", "-");
        fflush(out);
        free(A); free(B); free(C);
    }
    sv_set_threads(old);
}


/* 0 where unknown (Windows) */
static double peak_rss_mb(void)
{
#ifdef _WIN32
    return 0.0;
#else
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
#endif
}

static int cmp_double(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

/* Process CPU seconds per step of the last bench_step or bench_extract: for one thread, the
   step's cost without the time other processes held the core (what a busy machine adds). */
static double bench_cpu_median;

/* Median step time of the joint model on random audio and images (the products in fp32 or bf16),
   with the op profile. */

static double bench_step(const char *config, int precision, float alpha, size_t B, double seconds, int threads, int reps, int profile,
                         double *gflops)
{
    double cpu[64];
    sv_config cfg;
    sv_model *m;
    sv_ctx *c;
    sv_adam opt = sv_adam_default();
    size_t S = (size_t)(seconds * 16000), i, *len;
    float *wave, *reg, *box;
    long *ids;
    sv_rng r;
    sv_batch b;
    double t[64], med;
    int k;
    sv_set_threads(threads);
    sv_config_preset(config, &cfg);
    cfg.precision = precision;
    m = sv_model_new(&cfg, 1);
    c = sv_ctx_new(0, 1);
    sv_ctx_set_recycle_grads(c, 1);        /* as the training loop does */
    wave = (float *)malloc(B * S * sizeof(float));
    reg = (float *)malloc(B * cfg.img_regions * cfg.img_dim * sizeof(float));
    box = (float *)malloc(B * cfg.img_regions * 4 * sizeof(float));
    len = (size_t *)malloc(B * sizeof(size_t));
    ids = (long *)malloc(B * sizeof(long));
    sv_rng_seed(&r, 1);
    for (i = 0; i < B * S; i++) wave[i] = sv_rng_normal(&r);
    for (i = 0; i < B * cfg.img_regions * cfg.img_dim; i++) reg[i] = sv_rng_normal(&r);
    for (i = 0; i < B * cfg.img_regions * 4; i++) box[i] = sv_rng_uniformf(&r);
    for (i = 0; i < B; i++) { len[i] = S; ids[i] = (long)i; }
    memset(&b, 0, sizeof b);
    b.B = B; b.S = S; b.wave = wave; b.wave_len = len; b.R = cfg.img_regions; b.Dimg = cfg.img_dim;
    b.regions = reg; b.boxes = box; b.image_id = ids;
    if (reps > 64) reps = 64;
    for (k = -2; k < reps; k++) {       /* two warm-up steps grow the arena to its final size */
        double t0 = now_s(), c0 = (double)clock() / CLOCKS_PER_SEC;
        sv_tensor *loss;
        sv_ctx_reset(c);
        if (k == reps - 1) sv_ctx_flops_clear(c);   /* the FLOPs of one step, counted by the ops */
        if (k == reps - 1 && profile) { sv_ctx_profile_clear(c); sv_ctx_set_profile(c, 1); }
        sv_params_zero_grad(&m->params);
        loss = sv_model_loss(m, c, &b, alpha, 0, NULL);
        if (!loss || sv_backward(c, loss) != SV_OK) { fprintf(stderr, "bench: %s\n", sv_last_error()); exit(1); }
        sv_adam_step(&opt, &m->params, groups_for(alpha, &cfg), 1e-4f);
        if (k >= 0) { t[k] = now_s() - t0; cpu[k] = (double)clock() / CLOCKS_PER_SEC - c0; }
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    qsort(cpu, (size_t)reps, sizeof(double), cmp_double);
    med = t[reps / 2];
    bench_cpu_median = cpu[reps / 2];
    *gflops = sv_ctx_flops(c) / 1e9;
    if (profile) {
        const char *nm[64];
        double f[64], bw[64], tot = 0;
        size_t cl[64], n = sv_ctx_profile(c, nm, f, bw, cl, 64), j;
        for (j = 0; j < n; j++) tot += f[j] + bw[j];
        printf("    time per op type (one profiled step, %.3f s in ops):\n    %-18s %9s %9s %6s\n", tot, "op", "fwd ms", "bwd ms", "share");
        for (j = 0; j < n; j++)
            if (f[j] + bw[j] > 0.002 * tot) printf("    %-18s %9.1f %9.1f %5.1f%%\n", nm[j], 1e3 * f[j], 1e3 * bw[j], 100 * (f[j] + bw[j]) / tot);
        printf("    arena peak %.0f MB, parameters + gradients + moments %.0f MB\n", (double)sv_ctx_arena_peak(c) / 1e6,
               (double)m->params.n * 16 / 1e6);
    }
    sv_ctx_free(c);
    sv_model_free(m);
    free(wave); free(reg); free(box); free(len); free(ids);
    return med;
}

static double bench_extract(const char *config, double seconds, int threads, int reps)
{
    sv_config cfg;
    sv_model *m;
    sv_ctx *c;
    size_t S = (size_t)(seconds * 16000), i, T = 0, D = 0;
    float *wave = (float *)malloc(S * sizeof(float)), *out = NULL;
    double t[16], cpu[16], med;
    int k;
    sv_rng r;
    sv_set_threads(threads);
    sv_config_preset(config, &cfg);
    m = sv_model_new(&cfg, 1);
    c = sv_ctx_new(0, 1);
    sv_rng_seed(&r, 2);
    for (i = 0; i < S; i++) wave[i] = sv_rng_normal(&r);
    if (reps > 16) reps = 16;
    for (k = -1; k < reps; k++) {
        double t0 = now_s(), c0 = (double)clock() / CLOCKS_PER_SEC;
        if (sv_extract_features(m, c, wave, S, cfg.n_shared + cfg.n_decoder, &out, &T, &D) != SV_OK) { fprintf(stderr, "bench: %s\n", sv_last_error()); exit(1); }
        free(out);
        if (k >= 0) { t[k] = now_s() - t0; cpu[k] = (double)clock() / CLOCKS_PER_SEC - c0; }
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    qsort(cpu, (size_t)reps, sizeof(double), cmp_double);
    med = t[reps / 2];
    bench_cpu_median = cpu[reps / 2];
    sv_ctx_free(c);
    sv_model_free(m);
    free(wave);
    return seconds / med;
}

int sv_bench_main(const opts *o)
{
    char cpu[256];
    int maxt = sv_get_threads(), th;
    double gf = 0, t1 = 0, t2 = 0, tw1 = 0, tw2 = 0;
    bench_cpu(cpu, sizeof cpu);
    printf("ssl_vgs benchmark\nmachine: %s, %d threads available, SIMD path %s\n\n", cpu, maxt, sv_simd_name());
    if (o->bench == 3) {
        double x = bench_extract(o->config, 10.0, maxt, 5);
        printf("extract %s: 10 s utterance, %d thread%s, median of 5: %.3f s, %.1fx real time, %.3f CPU s\n", o->config, maxt,
               maxt > 1 ? "s" : "", 10.0 / x, x, bench_cpu_median);
        return 0;
    }
    if (o->bench == 2 && o->precision && !strcmp(o->precision, "bf16") && !sv_bf16_native()) {
        fprintf(stderr, "train: --bench-step --precision bf16 needs AVX512-BF16 (this build: SIMD %s)\n", sv_simd_name());
        return 1;
    }
    if (o->bench == 2 && strcmp(o->config, "tiny") != 0) {
        /* --config C --scenario S --batch B --crop SECONDS: the step of that run, on random data */
        stage st[2];
        double t;
        int prec = o->precision && !strcmp(o->precision, "bf16") ? SV_BF16 : SV_FP32;
        if (parse_scenario(o->scenario, (float)o->alpha_plus, st) != 1) { fprintf(stderr, "bench: --scenario must be w2v2, vgs or vgs+\n"); return 2; }
        t = bench_step(o->config, prec, st[0].alpha, o->batch, o->crop_s, maxt, 3, 1, &gf);
        printf("  %s step (alpha %g)%s, %zu utterances x %.1f s, %d thread%s: %.2f s/step (median of 3), %.2f CPU s/step, %.0f GFLOP/s\n",
               o->config, (double)st[0].alpha, prec == SV_BF16 ? " (bf16)" : "", o->batch, o->crop_s, maxt, maxt > 1 ? "s" : "", t,
               bench_cpu_median, gf / t);
        if (peak_rss_mb() > 0) printf("  peak resident memory: %.0f MB\n", peak_rss_mb());
        return 0;
    }
    if (o->bench == 2) {
        int prec = o->precision && !strcmp(o->precision, "bf16") ? SV_BF16 : SV_FP32;
        double t = bench_step("small", prec, 0.5f, 8, 2.0, maxt, 5, 1, &gf);
        printf("  small joint step%s, %d thread%s: %.3f s/step (CPU %.3f s/step), %.0f GFLOP/s\n", prec == SV_BF16 ? " (bf16)" : "",
               maxt, maxt > 1 ? "s" : "", t, bench_cpu_median, gf / t);
        if (peak_rss_mb() > 0) printf("  peak resident memory: %.0f MB\n", peak_rss_mb());
        return 0;
    }
    bench_gemm(stdout);
    if (o->bench == 4) return 0;
    printf("\njoint training step, small config, alpha 0.5: 8 utterances x 2.0 s + 8 images of 16 x 192,\n"
           "forward + backward + AdamW update (median of 5 after 2 warm-up steps)\n");
    for (th = 1; th <= (maxt < 2 ? maxt : 2); th++) {
        double t = bench_step("small", SV_FP32, 0.5f, 8, 2.0, th, 5, th == (maxt < 2 ? maxt : 2), &gf);
        printf("  %d thread%s: %.3f s/step, %.1f GFLOP per step, %.0f GFLOP/s\n", th, th > 1 ? "s" : "", t, gf, gf / t);
        if (th == 1) t1 = t; else t2 = t;
    }
    if (t2 > 0) printf("  2 threads vs 1: %.2fx\n", t1 / t2);
    if (peak_rss_mb() > 0) printf("  peak resident memory of this process so far: %.0f MB\n", peak_rss_mb());
    if (sv_bf16_native()) {
        /* alternated, so that a change in the machine's speed hits both precisions alike */
        int nth = maxt < 2 ? maxt : 2;
        printf("\njoint step in bf16 (--precision bf16) against fp32, small config, %d thread%s: 3 alternated rounds of 3 steps\n",
               nth, nth > 1 ? "s" : "");
        for (th = 1; th <= nth; th++) {
            double a[3], b[3];
            int r;
            for (r = 0; r < 3; r++) {
                a[r] = bench_step("small", SV_FP32, 0.5f, 8, 2.0, th, 3, 0, &gf);
                b[r] = bench_step("small", SV_BF16, 0.5f, 8, 2.0, th, 3, 0, &gf);
            }
            qsort(a, 3, sizeof a[0], cmp_double);
            qsort(b, 3, sizeof b[0], cmp_double);
            printf("  %d thread%s: fp32 %.3f s/step, bf16 %.3f s/step: %.2fx\n", th, th > 1 ? "s" : "", a[1], b[1], a[1] / b[1]);
        }
    } else {
        printf("\njoint step in bf16: skipped (no AVX512-BF16 in this build, SIMD %s)\n", sv_simd_name());
    }
    printf("\nwav2vec 2.0-only step (alpha 0), small config, same batch\n");
    for (th = 1; th <= (maxt < 2 ? maxt : 2); th++) {
        double t = bench_step("small", SV_FP32, 0.0f, 8, 2.0, th, 5, 0, &gf);
        printf("  %d thread%s: %.3f s/step, %.0f GFLOP/s\n", th, th > 1 ? "s" : "", t, gf / t);
        if (th == 1) tw1 = t; else tw2 = t;
    }
    (void)tw1; (void)tw2;
    printf("\nstep time against audio length (small, alpha 0.5, batch 8, %d threads)\n", maxt < 2 ? maxt : 2);
    {
        static const double secs[4] = {1, 2, 4, 8};
        int i;
        for (i = 0; i < 4; i++) {
            double t = bench_step("small", SV_FP32, 0.5f, 8, secs[i], maxt < 2 ? maxt : 2, 3, 0, &gf);
            printf("  %.0f s: %.3f s/step (%.3f s per second of audio per utterance)\n", secs[i], t, t / secs[i]);
        }
    }
    printf("\nfeature extraction (eval mode, all layers, one 10 s utterance): x real time\n");
    for (th = 1; th <= (maxt < 2 ? maxt : 2); th++)
        printf("  %d thread%s: small %.0fx, base %.0fx\n", th, th > 1 ? "s" : "", bench_extract("small", 10.0, th, 5), bench_extract("base", 10.0, th, 3));
    {
        int save = sv_get_simd();
        double ts, tv;
        sv_set_simd(1);
        tv = bench_step("tiny", SV_FP32, 0.5f, 8, 2.0, 1, 3, 0, &gf);
        sv_set_simd(0);
        ts = bench_step("tiny", SV_FP32, 0.5f, 8, 2.0, 1, 3, 0, &gf);
        sv_set_simd(save);
        printf("\nSIMD vs scalar kernels (tiny joint step, 1 thread): %.3f vs %.3f s, %.1fx\n", tv, ts, ts / tv);
    }
    printf("\nPyTorch on the same step: unset OPENBLAS_CORETYPE; /usr/bin/python3 tools/bench_torch.py\n");
    return 0;
}
