/* ssl_vgs.h - v0.2 - self-supervised (wav2vec 2.0) + visually grounded speech learning in one C header.
   MIT licence, see the end of the file.

   Do this:
       #define SSL_VGS_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.
   Every other file includes it without the define and sees only the declarations.

   Options (define before the include that has SSL_VGS_IMPLEMENTATION):
       SSL_VGS_STATIC        make every public function static (private to that translation unit)
       SV_MALLOC(sz)/SV_FREE(p)   your allocator; define both or neither
       SV_ASSERT(x)          programmer errors only (bad shapes passed by code); default assert()
       SV_NO_SIMD            compile only the scalar kernels
       SV_NO_HUGEPAGES       do not ask Linux for transparent huge pages for the big buffers
   OpenMP is used when the compiler has it on (-fopenmp); results never depend on the thread count.

   Dimension letters used in shape comments throughout:
       B batch, S samples, T frames, C conv channels, D model width, H heads, L layers,
       R image regions, E embedding width, G quantizer groups, V entries per group,
       M/N/K the rows/columns/inner size of a matrix product.

   Table of contents. Both halves of the file follow it: each section's declarations, then, after
   IMPLEMENTATION, its code in the numbered subsections listed here (test.c checks that the
   section banners of both halves and this list agree).
       1   Platform
           1.1 errors, 1.2 threads, 1.3 RNG, 1.4 SIMD macro table
       2   Kernels
           2.1 GEMM, 2.2 vector maths, 2.3 row softmax / layer norm
       3   Tensors and the arena
           3.1 arena, 3.2 tensors, 3.3 parameters, 3.4 shards and exact gradient sums
       4   Autodiff tape
           4.1 the tape
       5   Layers (ops)
           5.0 op helpers, 5.1 add / sub / mul, 5.2 scale / axpby / constants, 5.3 unary maths,
           5.4 reductions, 5.5 straight-through and dropout, 5.6 matmul and linear, 5.7 conv1d,
           5.8 normalisations, 5.9 softmax and cross-entropy, 5.10 attention, 5.11 shape ops,
           5.12 gather / scatter / mask, 5.13 norms and similarities,
           5.14 regression loss and data2vec targets, 5.15 shard sums and gathers
       6   wav2vec 2.0
           6.1 config, 6.2 construction and init, 6.3 transformer layer, 6.4 feature encoder,
           6.5 projection and masking, 6.6 CLS token and positional convolution, 6.7 transformer,
           6.8 the forward pass, 6.9 Gumbel product quantizer, 6.10 negatives,
           6.11 features of a trained model
       7   VGS
           7.1 audio branch, 7.2 image branch, 7.3 embeddings of a trained model
       8   Losses
           8.1 contrastive loss, 8.2 diversity loss, 8.3 feature penalty, 8.4 loss_AUD,
           8.5 MT4SSL: offline and online targets, 8.6 loss_AV, 8.7 the joint loss
       9   Optimizer
           9.1 AdamW, 9.2 EMA teacher
       10  Data and I/O
           10.1 I/O helpers, 10.2 WAV, 10.3 resampling, 10.4 NPY, 10.5 safetensors, 10.6 manifests,
           10.7 ZeroSpeech .item, 10.8 corpus folders, 10.9 config as text, 10.10 datasets,
           10.11 batches, 10.12 checkpoints, 10.13 MFCC, 10.14 k-means, 10.15 offline target files,
           10.16 Hugging Face wav2vec 2.0 weights
       11  Metrics
           11.0 small shared helpers, 11.1 retrieval recall@k, 11.2 ABX, 11.3 SVG figures,
           11.4 JSON lines, 11.5 evaluation of a model
       12  The built-in corpus (optional)
           12.1 phones, 12.2 lexicon, 12.3 formant synthesiser, 12.4 pictures, 12.5 caption grammar,
           12.6 the corpus, 12.7 writing the corpus to disk, 12.8 the corpus as a dataset

   API conventions:
       - Functions that can fail because of input return an int status (0 = SV_OK) or NULL, and
         sv_last_error() says why in one line. The library never calls exit().
       - Sizes and offsets are size_t.
*/
#ifndef SSL_VGS_H
#define SSL_VGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>   /* FILE, for the report writer */

#ifdef SSL_VGS_STATIC
#define SV_DEF static
#else
#define SV_DEF extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================================
   1 Platform
   ====================================================================================== */

/* Status codes returned by every fallible call; sv_last_error() holds the message. */
typedef enum sv_status {
    SV_OK = 0,
    SV_ERR_ARG = 1,     /* a bad argument or shape from the caller */
    SV_ERR_NOMEM = 2,   /* allocation failed or the arena limit was reached */
    SV_ERR_IO = 3,      /* open/read/write/rename failed */
    SV_ERR_FORMAT = 4,  /* a file is malformed, truncated or of an unsupported kind */
    SV_ERR_NUMERIC = 5, /* NaN or inf where a finite number is required */
    SV_ERR_STATE = 6    /* called in the wrong state (e.g. backward without a forward) */
} sv_status;

SV_DEF const char *sv_last_error(void);   /* one line, never NULL ("" when no error yet) */
SV_DEF int sv_last_status(void);
SV_DEF void sv_clear_error(void);

/* Threads: the number OpenMP regions use (1 without OpenMP). */
SV_DEF void sv_set_threads(int n);
SV_DEF int sv_get_threads(void);

/* SIMD: which vector path the kernels were compiled with, and a run-time switch to the scalar
   path (used by the tests to compare the two, and by the benchmark). */
SV_DEF const char *sv_simd_name(void);
SV_DEF void sv_set_simd(int on);
SV_DEF int sv_get_simd(void);

/* Deterministic RNG: xoshiro256** (Blackman & Vigna 2018) seeded through splitmix64.
   The same seed gives the same stream on every platform, so runs reproduce bit for bit on a
   build. Normals use Box-Muller without caching, so each call consumes exactly two uniforms. */
typedef struct sv_rng { uint64_t s[4]; } sv_rng;
SV_DEF void sv_rng_seed(sv_rng *r, uint64_t seed);
SV_DEF uint64_t sv_rng_next(sv_rng *r);
SV_DEF double sv_rng_uniform(sv_rng *r);          /* [0,1), 53 random bits */
SV_DEF float sv_rng_uniformf(sv_rng *r);          /* [0,1), 24 random bits */
SV_DEF float sv_rng_normal(sv_rng *r);            /* N(0,1) */
SV_DEF size_t sv_rng_below(sv_rng *r, size_t n);  /* uniform in [0,n), unbiased; n > 0 */
SV_DEF sv_rng sv_rng_fork(const sv_rng *r, uint64_t stream); /* an independent child stream */
/* Keyed randomness: sv_rng_key(key, x) mixes x into key (for a fixed key, distinct x give
   distinct results). A draw made from a key chain such as
       sv_rng_seed(&r, sv_rng_key(sv_rng_key(sv_rng_key(batch_key, purpose), site), sample))
   is a pure function of its key: it does not depend on the order of other draws, on the thread
   count or on how a batch is split over processes. Training in shard mode (section 3) takes all
   its randomness this way; new random draws should too. */
SV_DEF uint64_t sv_rng_key(uint64_t key, uint64_t x);

/* Shared data types used by several sections (parsers, corpus, metrics). */

/* One ABX token of a ZeroSpeech 2021 .item file: `#file onset offset #phone prev next speaker`.
   Strings are interned: `file`, `phone`, `prev`, `next`, `speaker` index the tables of the set. */
typedef struct sv_item {
    size_t file;
    double onset, offset;           /* seconds */
    int phone, prev, next;          /* index into sv_item_set.phones */
    int speaker;                    /* index into sv_item_set.speakers */
} sv_item;

typedef struct sv_item_set {
    sv_item *items; size_t n_items;
    char **files; size_t n_files;       /* file names without extension, as in the .item file */
    char **phones; size_t n_phones;     /* one table for central and context phones */
    char **speakers; size_t n_speakers;
} sv_item_set;

SV_DEF void sv_item_set_free(sv_item_set *s); /* frees the contents; s itself is the caller's */

/* ======================================================================================
   2 Kernels
   ======================================================================================
   Every kernel has a SIMD body (written once against the macro table of section 1.4) and a
   scalar body; sv_set_simd(0) makes every kernel take the scalar body. The two agree within
   float rounding (same algorithms and polynomials, only the order of float sums differs).
   Large calls are split over OpenMP threads; results never depend on the thread count
   (sv_gemm is bit-identical for any thread count: K is never split across threads).
   Matrices are row-major; a "row stride" (lda, ldb, ldc) counts floats and may exceed the
   logical width. */

/* C[M,N] = alpha * op(A) * op(B) + beta * C. op(A) is [M,K]: A is stored [M,lda] (transA = 0)
   or [K,lda] (transA != 0); op(B) is [K,N]: B is stored [K,ldb] or, transposed, [N,ldb].
   beta == 0 ignores C's old contents (even NaN). Windows may overlap (lda < K is allowed, e.g. a
   strided conv1d as a GEMM over a channels-last input); C must not overlap A or B. */
SV_DEF void sv_gemm(int transA, int transB, size_t M, size_t N, size_t K, float alpha,
                    const float *A, size_t lda, const float *B, size_t ldb, float beta,
                    float *C, size_t ldc);
/* The same product by a plain triple loop with double accumulation: the reference for tests
   and benchmarks. */
SV_DEF void sv_gemm_naive(int transA, int transB, size_t M, size_t N, size_t K, float alpha,
                          const float *A, size_t lda, const float *B, size_t ldb, float beta,
                          float *C, size_t ldc);
/* Frees the calling thread's GEMM packing buffers. They are allocated on first use, grow to the
   largest product seen (at most ~5.3 MB per thread with AVX-512) and are reused: no allocation per
   call in steady state. A thread that exits without calling this leaks them. */
SV_DEF void sv_gemm_release(void);

/* Mixed precision (bfloat16 products, fp32 sums). Precisions of a context's products: */
enum { SV_FP32 = 0, SV_BF16 = 1 };
/* sv_gemm with A and B rounded to bfloat16 (1 sign, 8 exponent, 7 stored mantissa bits; round to
   nearest even, subnormals to zero) and their products summed in fp32, in pairs along K as the
   AVX512-BF16 instruction VDPBF16PS does (exact products; each of the pair's two adds rounded to
   nearest even, subnormal sums flushed to zero). Same arguments and semantics as sv_gemm (also
   for K = 0, alpha = 0 and beta = 0). Bit-identical for any thread count, and on every machine:
   where the CPU or the build has no AVX512-BF16, or after sv_set_simd(0), a scalar emulation of
   the instruction computes the same bits (several times slower than fp32 sv_gemm). */
SV_DEF void sv_gemm_bf16(int transA, int transB, size_t M, size_t N, size_t K, float alpha,
                         const float *A, size_t lda, const float *B, size_t ldb, float beta,
                         float *C, size_t ldc);
/* 1 when sv_gemm_bf16 runs the VDPBF16PS micro-kernel (built with AVX512-BF16, e.g.
   -march=native on AMD Zen 4/5 or Intel Cooper Lake / Sapphire Rapids, and SIMD on); 0 when it
   emulates. Drivers fall back to fp32 when it is 0. */
SV_DEF int sv_bf16_native(void);
/* x rounded to the nearest bfloat16 (ties to even), as sv_gemm_bf16 rounds its operands. */
SV_DEF float sv_bf16_round(float x);

SV_DEF float sv_dot(const float *a, const float *b, size_t n);        /* sum a[i]*b[i] */
SV_DEF float sv_vsum(const float *x, size_t n);                       /* sum x[i] */
SV_DEF void sv_axpy(size_t n, float a, const float *x, float *y);     /* y += a*x */
SV_DEF void sv_vscale(float *y, float a, const float *x, size_t n);   /* y = a*x (y may be x) */
SV_DEF void sv_vadd(float *y, const float *a, const float *b, size_t n); /* y = a+b (may alias) */
SV_DEF void sv_vmul(float *y, const float *a, const float *b, size_t n); /* y = a*b (may alias) */

/* y = exp(x), within 2 ulp of the true value over the float range; exp(-inf) = 0, large x gives
   +inf, NaN stays NaN. y may be x. */
SV_DEF void sv_vexp(float *y, const float *x, size_t n);
/* erf(x), absolute error < 1e-7 (about 1 ulp), vectorisable form (polynomial for |x| < 0.93,
   1 - exp(polynomial) beyond). */
SV_DEF float sv_erff(float x);
/* Exact-erf GELU: y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), |error| < 2e-7 max(1,|x|).
   y may be x. */
SV_DEF void sv_gelu(float *y, const float *x, size_t n);
/* dx += dy * gelu'(x), gelu'(x) = Phi(x) + x phi(x), phi the standard normal density. */
SV_DEF void sv_gelu_backward(float *dx, const float *x, const float *dy, size_t n);

/* Row-wise softmax of x[rows,n] into y (y may be x), max-subtracted for stability. A row whose
   entries are all -inf gives all zeros (not NaN); -inf entries give exactly 0. */
SV_DEF void sv_softmax_rows(float *y, const float *x, size_t rows, size_t n);
/* dx += y * (dy - sum_j dy_j y_j) per row, y the softmax output. */
SV_DEF void sv_softmax_rows_backward(float *dx, const float *y, const float *dy, size_t rows,
                                     size_t n);

/* LayerNorm over the last dimension of x[rows,n]: y = (x - mean) * rstd * gamma + beta with the
   biased variance (as PyTorch), rstd = 1/sqrt(var + eps). gamma/beta may be NULL (1 and 0);
   mean/rstd (rows each) may be NULL, else they are saved for the backward. y may be x. */
SV_DEF void sv_layernorm_rows(float *y, float *mean, float *rstd, const float *x,
                              const float *gamma, const float *beta, size_t rows, size_t n,
                              float eps);
/* Backward of sv_layernorm_rows, accumulating (+=) into dx[rows,n], dgamma[n], dbeta[n]; any of
   the three may be NULL. gamma may be NULL (= 1). dgamma/dbeta are reduced over rows in row
   order per column, so they are bit-identical for any thread count. */
SV_DEF void sv_layernorm_rows_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                                       const float *x, const float *mean, const float *rstd,
                                       const float *gamma, size_t rows, size_t n);

/* ======================================================================================
   3 Tensors and the arena
   ======================================================================================
   A tensor is float32, contiguous, row-major, up to 4 dims. Two kinds of storage:
   - parameters (and buffers such as BatchNorm running statistics) live in an sv_params store:
     one flat allocation each for values, gradients and the two Adam moments, so the optimizer
     and gradient clipping are flat loops;
   - activations, their gradients and the tape live in the arena of an sv_ctx, which is reset
     once per training step. The arena grows by chaining blocks while a step runs; the next reset
     folds them into one block of the peak size, so after the first step nothing is allocated.
     Memory handed back before the reset (backward scratch, and dead gradient buffers when
     recycling is on) becomes a hole that later requests of the same step reuse, best fit. */

#define SV_MAX_DIMS 4

typedef struct sv_tensor {
    float *data;                /* [n] row-major */
    float *grad;                /* same shape; NULL until a gradient reaches it */
    size_t shape[SV_MAX_DIMS];
    int ndim;
    size_t n;                   /* number of elements */
    int requires_grad;          /* a gradient must flow into this tensor */
    int kind;                   /* SV_ACTIVATION, SV_PARAM or SV_BUFFER */
    int group;                  /* parameters: which sub-model owns it (bit index, see sv_params) */
    const char *name;           /* parameters: dotted name used in checkpoints */
    int sample_free;            /* shard mode: made from parameters only (no sample dimension) */
} sv_tensor;

enum { SV_ACTIVATION = 0, SV_PARAM = 1, SV_BUFFER = 2 };

typedef struct sv_ctx sv_ctx;   /* arena + tape + mode flags + RNG; opaque */

/* initial_bytes: first arena block (0 = 16 MiB); it grows as needed. */
SV_DEF sv_ctx *sv_ctx_new(size_t initial_bytes, uint64_t seed);
SV_DEF void sv_ctx_free(sv_ctx *c);
SV_DEF void sv_ctx_reset(sv_ctx *c);                        /* drop all activations and the tape */
SV_DEF void sv_ctx_set_arena_limit(sv_ctx *c, size_t bytes);/* 0 = no limit (default) */
SV_DEF size_t sv_ctx_arena_peak(const sv_ctx *c);           /* most bytes in use since creation */
SV_DEF size_t sv_ctx_arena_used(const sv_ctx *c);           /* bytes taken from the blocks (reusable holes included) */
/* Gradient recycling (default off). When on, sv_backward hands the gradient buffer of each op's
   output back to the arena as soon as that op's backward has run (it is dead then: only the op
   that produced a tensor reads its gradient), and later gradient buffers reuse that memory. This
   cuts the arena's peak by roughly the sum of all activation gradients, and changes no result.
   The price: after sv_backward only the gradients of parameters and of leaf tensors (made with
   requires_grad set by the caller, not by an op) are valid; an op output's .grad is NULL and a
   reshape view of one keeps a stale pointer. Training loops want it on; code that inspects
   intermediate gradients wants it off. */
SV_DEF void sv_ctx_set_recycle_grads(sv_ctx *c, int on);
SV_DEF int sv_ctx_recycle_grads(const sv_ctx *c);
SV_DEF void sv_ctx_set_grad(sv_ctx *c, int enabled);        /* 0: no-grad mode, records nothing */
SV_DEF int sv_ctx_grad(const sv_ctx *c);
SV_DEF void sv_ctx_set_training(sv_ctx *c, int training);   /* dropout, batch statistics */
SV_DEF int sv_ctx_training(const sv_ctx *c);
/* Precision of the products of the ops recorded from now on: SV_FP32 (default) or SV_BF16.
   With SV_BF16, sv_linear, sv_matmul, sv_conv1d, sv_conv1d_gelu_in and sv_attention multiply
   bf16-rounded operands with fp32 sums (sv_gemm_bf16), forward and backward (an op's backward
   uses the precision its forward ran with); everything else (norms, softmax, losses, the
   gradients' accumulation, the optimizer) stays fp32. Returns SV_ERR_ARG for any other value.
   Check sv_bf16_native(): elsewhere bf16 is emulated, same bits but slow. */
SV_DEF int sv_ctx_set_precision(sv_ctx *c, int precision);
SV_DEF int sv_ctx_precision(const sv_ctx *c);
SV_DEF sv_rng *sv_ctx_rng(sv_ctx *c);                       /* dropout, masking, sampling */
SV_DEF int sv_ctx_failed(const sv_ctx *c);                  /* an op failed since the last reset */
SV_DEF void *sv_ctx_alloc(sv_ctx *c, size_t bytes);         /* 64-byte aligned scratch, lives until reset */
/* Progress of long calls made with this context (the evaluations of section 11.5): fn is called
   from the calling thread with the phase ("retrieval audio", "abx features", ...) and done of
   total units. NULL (the default) reports nothing. */
typedef void (*sv_progress_fn)(const char *what, size_t done, size_t total, void *user);
SV_DEF void sv_ctx_set_progress(sv_ctx *c, sv_progress_fn fn, void *user);

SV_DEF sv_tensor *sv_tensor_new(sv_ctx *c, int ndim, const size_t *shape);   /* uninitialised */
SV_DEF sv_tensor *sv_tensor_zeros(sv_ctx *c, int ndim, const size_t *shape);
SV_DEF sv_tensor *sv_tensor_from(sv_ctx *c, const float *data, int ndim, const size_t *shape); /* copy */
SV_DEF sv_tensor *sv_new1(sv_ctx *c, size_t d0);
SV_DEF sv_tensor *sv_new2(sv_ctx *c, size_t d0, size_t d1);
SV_DEF sv_tensor *sv_new3(sv_ctx *c, size_t d0, size_t d1, size_t d2);
SV_DEF sv_tensor *sv_reshape(sv_ctx *c, sv_tensor *x, int ndim, const size_t *shape); /* shares data and grad */

/* Parameter store. Declare every parameter with sv_param / sv_buffer, then sv_params_alloc once.
   Groups are small integers (0..31) naming the sub-model a parameter belongs to, so that an
   optimizer step can update exactly the parameters of the active sub-models. */
typedef struct sv_params {
    sv_tensor **t;              /* every parameter and buffer, in declaration order */
    size_t count, cap;
    size_t *offset;             /* element offset of t[i] in the flat arrays */
    float *data, *grad, *m, *v; /* flat storage: values, gradients, Adam first/second moments */
    size_t n;                   /* total elements (with alignment padding) */
    void *raw;                  /* the allocation behind data/grad/m/v */
    int allocated;
    uint64_t *exact;            /* shard mode: 2 (n + 1) words, exact gradient sums (section 3.4) */
} sv_params;

SV_DEF sv_tensor *sv_param(sv_params *p, const char *name, int group, int ndim, const size_t *shape);
SV_DEF sv_tensor *sv_buffer(sv_params *p, const char *name, int group, int ndim, const size_t *shape);
SV_DEF int sv_params_alloc(sv_params *p);
SV_DEF void sv_params_free(sv_params *p);
SV_DEF void sv_params_zero_grad(sv_params *p);
SV_DEF size_t sv_params_numel(const sv_params *p, uint32_t group_mask); /* trainable elements */
SV_DEF sv_tensor *sv_params_find(const sv_params *p, const char *name);

/* ---- Shards: one global batch over several processes (data parallelism) ----------------------
   With P processes (e.g. MPI ranks) each holding a share of a global batch of `total` samples,
   training gives bit for bit the result of one process holding all of it, for any P, when every
   number of a step is a function of the global batch alone. A context in shard mode
   (sv_ctx_set_shard, until the next sv_ctx_reset) makes it so:
   - Randomness is sample-keyed: every training draw (span masks, negatives, Gumbel noise,
     dropout, attention dropout) comes from sv_rng_key(batch key, purpose, draw site, global
     sample index), never from a stream the samples share. LayerDrop, one draw for the whole
     batch, leaves the sample out of its key.
   - Per-row arithmetic does not depend on the other rows (sv_gemm computes a row alike for any
     M; ops reduce over rows only where the model couples them).
   - What couples the batch is computed over the global batch, through comm->allgather in
     sample order: BatchNorm statistics, the require_same_masks count, the diversity loss's
     average, the VGS loss's negatives and the loss normalisers.
   - The gradient of a parameter, or of any tensor without a sample dimension, is summed exactly:
     each sample's contribution is rounded to the fixed-point grid 2^-80 and added as a 128-bit
     integer, so the sum is the same in any order and in any grouping. sv_params_grad_reduce
     adds the processes' integers (comm->allreduce_exact, any order) and rounds once to float.
     Contributions must stay below 2^26 in magnitude (a larger or non-finite one makes the
     reduced gradient NaN: the step fails loudly).
   Shares are contiguous and in rank order: sv_shard_split cuts `total` samples into P shares
   whose sizes differ by at most one (rank r: samples [r*total/P, (r+1)*total/P), rounded down),
   so every process needs total >= P. Every process must run the same calls with the same global
   batch (the collectives pair up in call order). Ordinary mode (no shard) keeps the faster
   float gradient sums; its randomness is keyed too, from the context's RNG. */
typedef struct sv_comm {
    int rank, size;             /* this process, and the number of processes */
    void *user;                 /* passed to the callbacks */
    /* Every process passes its n doubles; all[] receives every process's doubles in rank order,
       counts[r] of them from process r. Returns 0, or non-zero on failure (the op then fails). */
    int (*allgather)(void *user, const double *mine, size_t n, double *all, const size_t *counts);
    /* words[2n] hold n 128-bit two's-complement integers (low word first); each is replaced by
       its sum over the processes (modulo 2^128, so any order gives the same result). */
    int (*allreduce_exact)(void *user, uint64_t *words, size_t n);
} sv_comm;

typedef struct sv_shard {
    size_t first, count, total; /* this process's samples [first, first + count) of total */
    uint64_t key;               /* the batch's randomness, e.g. sv_rng_key(sv_rng_key(seed, step), batch kind) */
    const sv_comm *comm;        /* NULL: one process (first 0, count = total) */
} sv_shard;

/* Purposes of the keyed draws of training (the second link of the key chain). */
enum { SV_DRAW_MASK = 1, SV_DRAW_NEGATIVES = 2, SV_DRAW_GUMBEL = 3, SV_DRAW_DROPOUT = 4,
       SV_DRAW_LAYERDROP = 5, SV_DRAW_CROP = 6 };

/* The share of process `rank` of `size`: samples [*first, *first + *count). */
SV_DEF void sv_shard_split(size_t total, int size, int rank, size_t *first, size_t *count);
/* Shard mode until the next sv_ctx_reset (NULL: ordinary mode). The batches given to the model
   then hold only this process's `count` samples, padded to the global batch's width.
   Parameter gradients go to p's exact sums (allocated here on first use, zeroed by
   sv_params_zero_grad): call sv_params_grad_reduce after sv_backward, before the optimizer. */
SV_DEF int sv_ctx_set_shard(sv_ctx *c, const sv_shard *s, sv_params *p);
SV_DEF const sv_shard *sv_ctx_shard(const sv_ctx *c);    /* NULL in ordinary mode */
/* The step's gradients: p->grad = round(sum over samples and processes), identical on every
   process. Gradients written directly in float by ops without a sample dimension (made from
   parameters only, e.g. weight normalisation's v and g) are global already and count once
   (from the process holding sample 0). SV_ERR_NUMERIC (and NaN gradients) when a
   contribution was not finite or beyond the exact range. */
SV_DEF int sv_params_grad_reduce(sv_params *p, const sv_shard *s);

/* ======================================================================================
   4 Autodiff tape
   ======================================================================================
   Every op that produces a tensor needing a gradient appends a node to the context's tape: which
   backward function to call and the tensors it saved. sv_backward replays the tape in reverse.
   Gradients accumulate (+=) into .grad; parameter gradients are zeroed explicitly
   (sv_params_zero_grad), activation gradients start at zero with each step's arena. */

SV_DEF int sv_backward(sv_ctx *c, sv_tensor *loss);   /* loss must be a scalar made by recorded ops */
SV_DEF size_t sv_tape_length(const sv_ctx *c);
/* The first op (in forward order) whose output holds a NaN or inf, or NULL; for diagnosing a
   non-finite loss. *out_index receives its position on the tape. */
SV_DEF const char *sv_tape_first_nonfinite(const sv_ctx *c, size_t *out_index);
/* Op timing: when on, each op's forward and backward wall time is summed by op name. */
SV_DEF void sv_ctx_set_profile(sv_ctx *c, int on);
SV_DEF size_t sv_ctx_profile(const sv_ctx *c, const char **names, double *fwd_s, double *bwd_s, size_t *calls, size_t cap);
SV_DEF void sv_ctx_profile_clear(sv_ctx *c);
/* Work count: every matrix-product op (linear, matmul, convolutions, attention, the codebook
   lookup, the contrastive dot products) adds the floating-point operations it performs, 2 per
   multiply-add, in its forward and, per gradient it computes, in its backward. Elementwise ops,
   norms and the optimizer are not counted. Kept across resets until cleared: the benchmark's
   GFLOP/s come from it instead of a second description of the architecture. */
SV_DEF double sv_ctx_flops(const sv_ctx *c);
SV_DEF void sv_ctx_flops_clear(sv_ctx *c);

/* ======================================================================================
   5 Layers (ops)
   ======================================================================================
   Every op takes the context first and returns a new arena tensor, or NULL on error (bad shapes,
   arena exhausted, or a NULL input: errors propagate, so checking the final loss is enough).
   Binary elementwise ops broadcast b over leading dims: b's shape must equal the trailing dims
   of a's shape (e.g. [D] with [B,T,D]). Integer arguments (indices, lengths, masks) are not
   differentiable; they are copied into the arena when the backward needs them. */

SV_DEF sv_tensor *sv_add(sv_ctx *c, sv_tensor *a, sv_tensor *b);
SV_DEF sv_tensor *sv_sub(sv_ctx *c, sv_tensor *a, sv_tensor *b);
SV_DEF sv_tensor *sv_mul(sv_ctx *c, sv_tensor *a, sv_tensor *b);
SV_DEF sv_tensor *sv_scale(sv_ctx *c, sv_tensor *x, float s);
SV_DEF sv_tensor *sv_add_scalar(sv_ctx *c, sv_tensor *x, float s);
/* a * x + b * y (same shapes): the weighted sum of two losses, in one op */
SV_DEF sv_tensor *sv_axpby(sv_ctx *c, float a, sv_tensor *x, float b, sv_tensor *y);
/* x + k, k a constant array of x's shape (no gradient to k): additive masks, margins */
SV_DEF sv_tensor *sv_add_const(sv_ctx *c, sv_tensor *x, const float *k);
SV_DEF sv_tensor *sv_square(sv_ctx *c, sv_tensor *x);
SV_DEF sv_tensor *sv_sqrt(sv_ctx *c, sv_tensor *x);
SV_DEF sv_tensor *sv_log(sv_ctx *c, sv_tensor *x);
SV_DEF sv_tensor *sv_exp(sv_ctx *c, sv_tensor *x);
SV_DEF sv_tensor *sv_relu(sv_ctx *c, sv_tensor *x);
SV_DEF sv_tensor *sv_gelu_op(sv_ctx *c, sv_tensor *x);          /* exact erf form */
SV_DEF sv_tensor *sv_sum(sv_ctx *c, sv_tensor *x);              /* scalar */
SV_DEF sv_tensor *sv_sum_last(sv_ctx *c, sv_tensor *x);         /* [..,F] -> [..] */
SV_DEF sv_tensor *sv_mean(sv_ctx *c, sv_tensor *x);             /* scalar */
/* identity forward, gradient multiplied by s backward (fairseq GradMultiply: feature_grad_mult) */
SV_DEF sv_tensor *sv_grad_scale(sv_ctx *c, sv_tensor *x, float s);
/* forward the value of hard, backward into soft (straight-through: hard - sg(soft) + soft) */
SV_DEF sv_tensor *sv_straight_through(sv_ctx *c, sv_tensor *hard, sv_tensor *soft);
/* identity unless training; shard mode: x sample-major, each sample's mask keyed by its global index */
SV_DEF sv_tensor *sv_dropout(sv_ctx *c, sv_tensor *x, float p);

/* op(a) @ op(b): a [..,M,K] (or [..,K,M] with ta), b [..,K,N] (or [..,N,K] with tb) or 2-D,
   shared by every batch; result [..,M,N] */
SV_DEF sv_tensor *sv_matmul(sv_ctx *c, sv_tensor *a, sv_tensor *b, int ta, int tb);
/* block-diagonal product: x [N,G*Kin] times w [G*Kin,Kout] group by group -> [N,G*Kout]
   (the quantizer's codebook lookup: one-hot codes times per-group entries) */
SV_DEF sv_tensor *sv_group_linear(sv_ctx *c, sv_tensor *x, sv_tensor *w, size_t groups);
/* x [..,In] @ w[Out,In]^T + bias[Out] (bias may be NULL); PyTorch's weight layout */
SV_DEF sv_tensor *sv_linear(sv_ctx *c, sv_tensor *x, sv_tensor *w, sv_tensor *bias);
/* 1-D convolution, channels last: x [B,T,Cin], w [Cout,K,Cin/groups], bias [Cout] or NULL,
   zero padding `pad` frames on both sides; result [B,(T+2pad-K)/stride+1,Cout] */
SV_DEF sv_tensor *sv_conv1d(sv_ctx *c, sv_tensor *x, sv_tensor *w, sv_tensor *bias,
                            size_t stride, size_t pad, size_t groups);
/* sv_conv1d(c, sv_gelu_op(c, x), w, bias, stride, pad, 1) without storing GELU(x): the
   backward recomputes it (same results; the CNN feature encoder's layers 2..n-1) */
SV_DEF sv_tensor *sv_conv1d_gelu_in(sv_ctx *c, sv_tensor *x, sv_tensor *w, sv_tensor *bias,
                                    size_t stride, size_t pad);
/* weight normalisation over all dims but K (PyTorch weight_norm(dim=2) on [Cout,Cin/g,K]):
   v [Cout,K,Cg], g [K]: w[o,k,c] = g[k] * v[o,k,c] / ||v[:,k,:]|| */
SV_DEF sv_tensor *sv_weight_norm_k(sv_ctx *c, sv_tensor *v, sv_tensor *g);

/* Normalisations. x [B,T,C]; len[b] (NULL = all T) limits statistics to valid frames, and
   frames t >= len[b] come out as 0 (so padding never leaks into valid frames). */
SV_DEF sv_tensor *sv_layer_norm(sv_ctx *c, sv_tensor *x, sv_tensor *gamma, sv_tensor *beta, float eps);
/* GroupNorm with one group per channel (fairseq "default" CNN layer 0): per (b,c) over time */
SV_DEF sv_tensor *sv_group_norm_ch(sv_ctx *c, sv_tensor *x, const size_t *len, sv_tensor *gamma,
                                   sv_tensor *beta, float eps);
/* GELU(sv_group_norm_ch(x)) in one op that stores no intermediate (the CNN's first layer) */
SV_DEF sv_tensor *sv_group_norm_gelu(sv_ctx *c, sv_tensor *x, const size_t *len, sv_tensor *gamma,
                                     sv_tensor *beta, float eps);
/* BatchNorm over (B,T) per channel. Training: batch statistics, running averages updated with
   `momentum` (PyTorch convention: running = (1-m)*running + m*batch, unbiased variance).
   Eval: running statistics. */
SV_DEF sv_tensor *sv_batch_norm(sv_ctx *c, sv_tensor *x, const size_t *len, sv_tensor *gamma,
                                sv_tensor *beta, sv_tensor *running_mean, sv_tensor *running_var,
                                float momentum, float eps);

SV_DEF sv_tensor *sv_softmax(sv_ctx *c, sv_tensor *x);          /* over the last dim */
SV_DEF sv_tensor *sv_log_softmax(sv_ctx *c, sv_tensor *x);      /* over the last dim */
/* Cross-entropy of logits [N,K] against target[N] (-inf logits allowed: they get probability 0
   and no gradient). mean = 1 averages over N, else sums. Scalar result. */
SV_DEF sv_tensor *sv_cross_entropy(sv_ctx *c, sv_tensor *logits, const int *target, int mean);

/* Multi-head attention core: softmax(Q K^T / sqrt(D/H)) V per head. q,k,v [B,T,D];
   key_len[b] (NULL = all) masks keys t >= key_len[b]; dropout p on the attention weights. */
SV_DEF sv_tensor *sv_attention(sv_ctx *c, sv_tensor *q, sv_tensor *k, sv_tensor *v, size_t heads,
                               const size_t *key_len, float dropout);

SV_DEF sv_tensor *sv_concat(sv_ctx *c, sv_tensor *a, sv_tensor *b, int axis);
SV_DEF sv_tensor *sv_slice(sv_ctx *c, sv_tensor *x, int axis, size_t start, size_t len);
SV_DEF sv_tensor *sv_transpose(sv_ctx *c, sv_tensor *x);        /* swaps the last two dims */
/* rows of x [N,F] (any leading dims flattened) picked by idx[M]: [M,F] */
SV_DEF sv_tensor *sv_gather_rows(sv_ctx *c, sv_tensor *x, const size_t *idx, size_t m);
/* [n_rows,F] zeros with x's rows [M,F] added at idx[M] (repeats accumulate) */
SV_DEF sv_tensor *sv_scatter_add_rows(sv_ctx *c, sv_tensor *x, const size_t *idx, size_t n_rows);
/* rows of x [..,F] where mask[r] != 0 replaced by emb [F] (wav2vec 2.0 mask embedding) */
SV_DEF sv_tensor *sv_mask_rows(sv_ctx *c, sv_tensor *x, const uint8_t *mask, sv_tensor *emb);
/* x [..,F] / max(||x||, eps) over the last dim */
SV_DEF sv_tensor *sv_l2_normalize(sv_ctx *c, sv_tensor *x, float eps);
/* cosine similarity of matching rows: a, b [..,F] -> [..] */
SV_DEF sv_tensor *sv_cosine(sv_ctx *c, sv_tensor *a, sv_tensor *b, float eps);
/* out[n,j] = a[n,:] . b[idx[n*J+j],:]; a [N,F], b [M,F] -> [N,J] (contrastive logits) */
SV_DEF sv_tensor *sv_dot_gather(sv_ctx *c, sv_tensor *a, sv_tensor *b, const size_t *idx, size_t J);
/* scale * sum_i (x_i - t_i)^2 over all elements of x, t a constant array of x's shape (no
   gradient to it): the data2vec / MT4SSL regression loss (each frame's squared error summed
   over its D dims, the frames summed, scale 1/sqrt(D)). Scalar result. */
SV_DEF sv_tensor *sv_sq_error_sum(sv_ctx *c, sv_tensor *x, const float *target, float scale);
/* data2vec's target from a teacher's layers (fairseq data2vec / MT4SSL with
   instance_norm_target_layer): every layer l of x[l] [B,T,D] normalised per utterance and
   channel over time (F.instance_norm: (x - mean_t) / sqrt(var_t + eps), biased variance, no
   affine), then the mean over the n_layers layers, into out [B,T,D]. Statistics use the valid
   frames t < len[b] only (len NULL = all T) and frames past them come out as 0: fairseq takes
   the statistics over the padded length, which lets padding shift the targets of short
   utterances in a batch. Plain arrays, no tape (the teacher is never differentiated). */
SV_DEF int sv_data2vec_target(const float *const *x, size_t n_layers, size_t B, size_t T, size_t D,
                              const size_t *len, float eps, float *out);

/* Over the global batch of a shard (section 3; in ordinary mode the local batch is the global
   one). x is sample-major: [S*m, F] with m rows per local sample (any leading dims flattened).
   sv_shard_sum: the sum of the rows of every process -> [F], per-sample sums in double gathered
   and added in sample order (the same on every process); dx = dy in every local row.
   sv_shard_gather: every process's rows in sample order -> [total*m, F], the same tensor on
   every process; dx = the local rows of dy. */
SV_DEF sv_tensor *sv_shard_sum(sv_ctx *c, sv_tensor *x);
SV_DEF sv_tensor *sv_shard_gather(sv_ctx *c, sv_tensor *x);

/* ======================================================================================
   6 wav2vec 2.0
   ======================================================================================
   Baevski et al. 2020, "wav2vec 2.0: A Framework for Self-Supervised Learning of Speech
   Representations"; the layout of fairseq's wav2vec2 base.

   One model holds the whole system of the EUSIPCO 2023 study (wav2vec 2.0 + FaST-VGS+): a shared
   audio encoder (CNN feature encoder, projection, positional convolution, layers 1..Ls), the
   wav2vec 2.0 head (layers Ls+1..L, quantizer, projections), the VGS audio branch reading layer
   Ls, and the VGS image branch. Every size is a field of sv_config; sv_config_preset() fills the
   three presets. */

#define SV_MAX_CONV 8
#define SV_MAX_LAYERS 32

enum { SV_EXTRACTOR_DEFAULT = 0, SV_EXTRACTOR_LAYER_NORM = 1 };

/* Parameter groups (bit indices for optimizer masks). SV_GROUP_W2V2 holds what every SSL
   objective trains beyond the shared encoder (layers Ls+1..L, the mask embedding);
   SV_GROUP_W2V2_HEAD the contrastive task's own parts (quantizer, projections); SV_GROUP_MT4SSL
   MT4SSL's two heads (its EMA teacher is buffers of that group: never optimised). */
enum { SV_GROUP_SHARED = 0, SV_GROUP_W2V2 = 1, SV_GROUP_VGS_AUDIO = 2, SV_GROUP_VGS_IMAGE = 3,
       SV_GROUP_W2V2_HEAD = 4, SV_GROUP_MT4SSL = 5 };
#define SV_GROUPS_W2V2 ((1u << SV_GROUP_SHARED) | (1u << SV_GROUP_W2V2) | (1u << SV_GROUP_W2V2_HEAD))
#define SV_GROUPS_VGS ((1u << SV_GROUP_SHARED) | (1u << SV_GROUP_VGS_AUDIO) | (1u << SV_GROUP_VGS_IMAGE))
#define SV_GROUPS_ALL 0x3Fu

/* The SSL objective behind loss_AUD (config field ssl). */
enum { SV_SSL_W2V2 = 0, SV_SSL_MT4SSL = 1, SV_SSL_BOTH = 2 };

typedef struct sv_config {
    char name[16];
    /* feature encoder: (channels, kernel, stride) per conv layer */
    size_t n_conv, conv_dim[SV_MAX_CONV], conv_kernel[SV_MAX_CONV], conv_stride[SV_MAX_CONV];
    int extractor_mode;         /* SV_EXTRACTOR_DEFAULT: group norm on layer 0 only, no conv bias */
    int conv_bias;
    float feature_grad_mult;    /* gradient scale into the CNN (fairseq 0.1; EUSIPCO study 1.0) */
    float feature_pen_weight;   /* weight of mean(features^2) in loss_AUD (fairseq base 10) */
    /* transformer */
    size_t D, heads, ffn;
    size_t n_shared, n_decoder; /* layers 1..Ls serve both losses; Ls+1..L only wav2vec 2.0 */
    int layer_norm_first;       /* 0: post-LN (base), 1: pre-LN (large) */
    float dropout, attn_dropout, act_dropout, dropout_input, dropout_features, layerdrop;
    size_t pos_kernel, pos_groups;
    int use_cls;                /* FaST-VGS+: a learned CLS vector prepended after masking */
    /* masking */
    float mask_prob;
    size_t mask_length, mask_min_spans;
    /* quantizer and contrastive task */
    size_t q_groups, q_vars, q_dim, final_dim, n_negatives;
    float logit_temp, tau_max, tau_min, diversity_weight;
    double tau_decay;           /* 0.999995: as a float it would shift tau(1e5) by 1e-3 */
    int freeze_tau;             /* FaST-VGS+ trainer never advanced the temperature (stays tau_max) */
    /* VGS audio branch: ResDAVEnet widths (w0 = Linear output, then 4 stages) */
    size_t vgs_width[5], vgs_conv_width, vgs_audio_layers;
    /* VGS image branch */
    size_t img_regions, img_dim, img_layers;
    float img_cls_std;          /* init std of the image CLS: 1 as FaST-VGS (torch.randn) */
    /* VGS transformer layers (BERT style, post-LN) */
    size_t vgs_heads, vgs_ffn;
    float vgs_dropout, vgs_ln_eps;
    size_t E;                   /* embedding width */
    int sim_cosine;             /* 0: dot product (reference code), 1: cosine */
    float margin;
    /* SSL objective: SV_SSL_W2V2 (contrastive), SV_SSL_MT4SSL (Ma et al. 2022) or SV_SSL_BOTH
       (loss_AUD = the sum of the two). The fields below are MT4SSL's; they are written to the
       config text (and checkpoints) only when ssl != SV_SSL_W2V2. */
    int ssl;
    size_t mt4_k;               /* offline head: k-means classes K (HuBERT 100 on MFCCs) */
    float mt4_offline_weight, mt4_online_weight; /* 1, 1 (0 drops that head; online 0: no teacher) */
    size_t mt4_top_k;           /* teacher layers averaged into the online target (8) */
    float ema_decay, ema_end_decay; /* 0.999 -> 0.9999 */
    size_t ema_anneal;          /* updates over which the decay rises (MT4SSL: 30000 of 400k) */
    /* SV_FP32 or SV_BF16 ("fp32"/"bf16" as text): the precision of the products of the encoder
       and the two branches in sv_model_loss (see sv_ctx_set_precision); the losses (with the
       quantizer's logits, MT4SSL's heads and its EMA teacher) run in fp32 either way. Weights and
       checkpoints are always fp32; the config text holds "precision = bf16" only for bf16.
       Embeddings and features (sv_embed_audio/images, sv_w2v2_forward for ABX) run in the
       context's own precision, fp32 unless sv_ctx_set_precision says otherwise. */
    int precision;
} sv_config;

/* "base" (the paper), "small" (the benchmark) or "tiny" (tests and demo). */
SV_DEF int sv_config_preset(const char *name, sv_config *cfg);
SV_DEF int sv_config_check(const sv_config *cfg);
/* samples -> frames of the feature encoder, and its receptive field in samples */
SV_DEF size_t sv_config_frames(const sv_config *cfg, size_t n_samples);
SV_DEF size_t sv_config_receptive_field(const sv_config *cfg);

typedef struct sv_tlayer {      /* one transformer layer */
    sv_tensor *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
    sv_tensor *ln1_g, *ln1_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b, *ln2_g, *ln2_b;
} sv_tlayer;

typedef struct sv_bn { sv_tensor *g, *b, *mean, *var; } sv_bn;

typedef struct sv_resblock {    /* ResDAVEnet basic block */
    sv_tensor *conv1, *conv2, *down;   /* [Cout,K,Cin]; down is the 1x1 shortcut or NULL */
    sv_bn bn1, bn2, bn_down;
    size_t stride;
} sv_resblock;

typedef struct sv_model {
    sv_config cfg;
    sv_params params;
    /* shared audio encoder */
    sv_tensor *conv_w[SV_MAX_CONV], *conv_b[SV_MAX_CONV], *conv_norm_g[SV_MAX_CONV], *conv_norm_b[SV_MAX_CONV];
    sv_tensor *feat_ln_g, *feat_ln_b, *proj_w, *proj_b;
    sv_tensor *cls, *pos_v, *pos_g, *pos_b, *enc_ln_g, *enc_ln_b;
    sv_tlayer layer[SV_MAX_LAYERS];
    /* wav2vec 2.0 head */
    sv_tensor *mask_emb, *q_w, *q_b, *codebook, *projq_w, *projq_b, *final_w, *final_b;
    /* VGS audio branch */
    sv_tensor *rd_w, *rd_b;
    sv_bn rd_bn;
    sv_resblock rd_block[8];
    sv_tensor *acls1_w, *acls1_b, *acls2_w, *acls2_b;
    sv_tlayer audio_layer[4];
    sv_tensor *aemb_w, *aemb_b;
    /* VGS image branch */
    sv_tensor *vf_w, *vf_b, *vf_ln_g, *vf_ln_b, *vb_w, *vb_b, *vb_ln_g, *vb_ln_b, *img_cls;
    sv_tlayer img_layer[12];
    sv_tensor *iemb1_w, *iemb1_b, *iemb2_w, *iemb2_b;
    /* MT4SSL: offline head Linear(D,K), online head Linear(D,D), and the EMA teacher of the
       transformer (its own encoder LayerNorm and layers; the positional convolution is the
       student's, as fairseq copies it into the EMA model at every update) */
    sv_tensor *mt4_off_w, *mt4_off_b, *mt4_on_w, *mt4_on_b;
    sv_tensor *t_enc_ln_g, *t_enc_ln_b;
    sv_tlayer teacher[SV_MAX_LAYERS];
} sv_model;

SV_DEF sv_model *sv_model_new(const sv_config *cfg, uint64_t seed);
SV_DEF void sv_model_free(sv_model *m);
SV_DEF size_t sv_model_numel(const sv_model *m, uint32_t group_mask);

/* A batch. Audio is [B,S] zero-padded with wave_len[b] valid samples, already normalised
   (sv_normalize_wave). Images are [B,R,Dimg] regions and [B,R,4] boxes; image_id[b] names the
   image of pair b (pairs with the same id are not negatives of each other). */
typedef struct sv_batch {
    size_t B, S;
    const float *wave;
    const size_t *wave_len;
    size_t R, Dimg;                 /* regions per image and their width: must match the config */
    const float *regions, *boxes;
    const long *image_id;           /* NULL: every pair is its own image */
    const int *km;                  /* MT4SSL offline targets [B, km_T]: the k-means class of each
                                       20 ms frame, -1 past a row's frames; NULL = none */
    size_t km_T;
} sv_batch;

/* zero mean, unit variance over the n samples (a silent input stays zero) */
SV_DEF void sv_normalize_wave(float *x, size_t n);

/* The forward pass of the audio encoder, in the order of the paper's figure (each step is one
   function of the implementation, 6.4-6.7):
     feature encoder     waveform [B,S] -> CNN features [B,T,C]            (sv__w2v2_feature_encoder)
     projection          LayerNorm, Linear C->D, dropout -> [B,T,D]        (sv__w2v2_project)
     masking             spans of frames replaced by mask_emb              (sv__w2v2_mask)
     CLS                 a learned vector before the first frame -> [B,Tc,D] (sv__w2v2_prepend_cls)
     positional conv     x + GELU(weight-normed grouped conv(x))           (sv__w2v2_positional_conv)
     transformer         n_layers layers -> hidden[0..n_layers]            (sv__w2v2_transformer)
   Tc = T + 1 with a CLS token. Training mode (sv_ctx_set_training) turns dropout and LayerDrop
   on; do_mask turns masking on. n_layers <= L = n_shared + n_decoder: the VGS loss needs only the
   shared layers. Every tensor lives in c's arena until its next reset.
   The training draws are keyed (sv_rng_key): row b's masks come from (site key, its global
   sample index); LayerDrop makes one draw per layer for the whole batch. The common masked count
   (require_same_masks) is the smallest of the global batch (section 3's shard mode). */
typedef struct sv_w2v2_out {
    size_t B, T, Tc, n_layers;  /* batch, frames, frames with CLS, layers run */
    sv_tensor *features;        /* [B,T,C] CNN output (after the feature gradient scale) */
    sv_tensor *unmasked;        /* [B,T,C] after LayerNorm (+ feature dropout): quantizer input */
    sv_tensor *projected;       /* [B,T,D] projected, before input dropout and masking: the MT4SSL
                                   teacher's input (multi2vec's pre_encoder_features) */
    sv_tensor *hidden[SV_MAX_LAYERS + 1]; /* [B,Tc,D]: hidden[0] = transformer input, [l] = layer l's output */
    size_t *frame_len, *key_len; /* [B] valid frames per row, without and with the CLS */
    uint8_t *mask;              /* [B,T] 1 = masked, or NULL without masking */
    size_t n_masked;            /* masked frames per row (the same in every row) */
} sv_w2v2_out;
SV_DEF int sv_w2v2_forward(sv_model *m, sv_ctx *c, const sv_batch *b, int do_mask, size_t n_layers, sv_w2v2_out *out);

/* Span masking (fairseq compute_mask_indices, static lengths, require_same_masks):
   per row num_spans = max(min_spans, floor(prob * len / span + u)), starts drawn without
   replacement, spans may overlap, then every row is trimmed at random to the smallest count.
   mask [B,T] (1 = masked). Returns the masked count per row, or 0 with an error. All rows draw
   from the one stream rng (spans row by row, then the trimming); the forward pass draws the
   same way per row from a keyed stream instead. */
SV_DEF size_t sv_w2v2_compute_mask(sv_rng *rng, size_t B, size_t T, const size_t *len, float prob,
                                   size_t span, size_t min_spans, uint8_t *mask);

/* Gumbel product quantizer (Jang et al. 2017; fairseq GumbelVectorQuantizer): y [N,C], the
   unmasked features at the masked frames -> q [N,F], the contrastive targets. Logits
   Linear C -> G*V; per group the entry argmax(logits + Gumbel noise) in training (argmax of the
   logits in eval), with the gradient of softmax((logits + noise) / tau) (hard straight-through);
   the chosen entries of the G codebooks concatenated [N,q_dim], then project_q q_dim -> F.
   *codes receives the one-hot choices [N,G*V] (arena memory) when codes is not NULL. The noise
   of each sample's rows comes from its keyed stream (shard mode: y's rows sample-major; ordinary
   mode: one stream for all rows, keyed by the context's RNG). */
SV_DEF sv_tensor *sv_w2v2_quantize(sv_model *m, sv_ctx *c, sv_tensor *y, float tau, const float **codes);
/* Gumbel temperature at an update step: max(tau_max * decay^step, tau_min) */
SV_DEF float sv_w2v2_temperature(const sv_config *cfg, size_t step);
/* Negatives for the contrastive task: for each of the n masked frames of each of B rows,
   K indices of *other* masked frames of the same row (uniform in [0,n-2], shifted past the
   frame itself). idx [B*n, K] holds global row indices b*n + j. (The loss draws each row's
   from its own keyed stream: this function with B = 1.) */
SV_DEF void sv_w2v2_sample_negatives(sv_rng *rng, size_t B, size_t n, size_t K, size_t *idx);

/* Hidden states of the shared/decoder transformer for downstream use: eval mode, no masking,
   one utterance wave[n] (raw; normalised inside as in training). layer 0 = the projected CNN
   features (input of the transformer, after the positional convolution), 1..L = layer outputs.
   Returns [T,D] frames (the CLS position dropped) allocated with SV_MALLOC in *out. */
SV_DEF int sv_extract_features(sv_model *m, sv_ctx *c, const float *wave, size_t n, size_t layer,
                               float **out, size_t *n_frames, size_t *dim);
/* Every layer at once: out[l] for l = 0..L (each SV_MALLOC'd [T,D]); the CNN output [T,C] too
   when cnn_out is not NULL. One forward pass. */
SV_DEF int sv_extract_all_layers(sv_model *m, sv_ctx *c, const float *wave, size_t n, float **out,
                                 float **cnn_out, size_t *n_frames);

/* ======================================================================================
   7 VGS
   ======================================================================================
   The FaST-VGS+ dual encoder (Peng & Harwath 2022): audio and image branches. */
/* Audio branch: h [B,Tc,D], the encoder's last shared layer (CLS first when the config has one),
   key_len[b] valid frames counting the CLS -> audio embedding [B,E]. The frames go through a
   ResDAVEnet temporal CNN (Linear D->w0, BatchNorm, ReLU, 4 stages of 2 residual blocks, stride 2
   at each stage: 16x fewer frames); the CLS through an MLP D -> 2D -> D is prepended; then the
   branch's transformer layers; the embedding is Linear D->E of the CLS position. */
SV_DEF sv_tensor *sv_vgs_audio_branch(sv_model *m, sv_ctx *c, sv_tensor *h, const size_t *key_len, size_t B);
/* Image branch: regions [B,R,Dimg] and boxes [B,R,4] -> image embedding [B,E]. LXMERT's
   VisualFeatEncoder ((LN(Linear(f)) + LN(Linear(box))) / 2, dropout), a learned CLS, post-LN
   transformer layers, MLP (D -> 2D, GELU, -> E) of the CLS position. */
SV_DEF sv_tensor *sv_vgs_image_branch(sv_model *m, sv_ctx *c, const float *regions, const float *boxes, size_t B);

/* Embeddings for retrieval, no-grad and eval mode, written to out [B,E]. */
SV_DEF int sv_embed_audio(sv_model *m, sv_ctx *c, const float *wave, const size_t *wave_len, size_t B, size_t S, float *out);
SV_DEF int sv_embed_images(sv_model *m, sv_ctx *c, const float *regions, const float *boxes, size_t B, float *out);

/* ======================================================================================
   8 Losses
   ======================================================================================
   loss_AUD, the wav2vec 2.0 loss (Baevski et al. 2020, eq. 1-4), on the N masked frames:
       (sum over frames of the contrastive CE + div_w * loss_div * N + pen_w * pen * N) / N
   or, with config ssl, MT4SSL's (offline + online targets, / N) or the sum of the two;
   loss_AV, the VGS loss (FaST-VGS masked margin InfoNCE), and the joint loss
       alpha * loss_AV + (1 - alpha) * loss_AUD. */

/* Training-health numbers of one forward. */
typedef struct sv_stats {
    float loss, loss_av, loss_aud;      /* joint, VGS, SSL (NaN when not computed) */
    float contrastive, diversity, feature_pen;
    float accuracy;                     /* contrastive task: target ranked first */
    float code_ppl, prob_ppl, tau, mask_frac;
    /* MT4SSL (NaN when not computed): per masked frame the offline cross-entropy and the accuracy
       of its argmax, the online regression loss (squared error / sqrt(D)), and data2vec's health
       numbers: the mean over dims of the std over frames of the targets and of the predictions */
    float mt4_offline, mt4_acc, mt4_online, target_var, pred_var;
    size_t n_masked;
} sv_stats;

/* Contrastive logits (fairseq compute_preds): out [N,J] = cos(pred[n], targ[idx[n,j]]) / temp,
   with -inf where a candidate j > 0 equals the target targ[idx[n,0]] in every dimension. */
SV_DEF sv_tensor *sv_w2v2_contrastive_logits(sv_ctx *c, sv_tensor *pred, sv_tensor *targ, const size_t *idx, size_t J, float temp);
/* Contrastive loss: predictions pred [N,F] (final_proj of the last layer at the masked frames),
   targets targ [N,F] (quantized), neg [N,K] the negatives of each frame (row indices into targ).
   Candidates [target; negatives], logits as sv_w2v2_contrastive_logits, cross-entropy with
   target index 0, summed over the N frames. *logits_out gets the [N,K+1] logits (may be NULL). */
SV_DEF sv_tensor *sv_w2v2_contrastive_loss(sv_ctx *c, sv_tensor *pred, sv_tensor *targ, const size_t *neg, size_t K,
                                           float temp, sv_tensor **logits_out);
/* Diversity loss of the quantizer on y [N,C]: p = softmax of the plain logits (no noise, no
   temperature) averaged over the N frames per group; prob_ppl = sum_g exp(-sum_v p log(p + 1e-7));
   loss_div = (G V - prob_ppl) / (G V). *prob_ppl gets the perplexity (may be NULL). */
SV_DEF sv_tensor *sv_w2v2_diversity_loss(sv_model *m, sv_ctx *c, sv_tensor *y, sv_tensor **prob_ppl);
/* Feature penalty: mean of the squared CNN output features [B,T,C] over each row's frame_len[b]
   valid frames; *n_valid gets their count (may be NULL). */
SV_DEF sv_tensor *sv_w2v2_feature_penalty(sv_ctx *c, sv_tensor *features, const size_t *frame_len, size_t *n_valid);
/* loss_AUD of a masked forward pass (sv_w2v2_forward with do_mask and all L layers): quantizer
   targets from the unmasked features, predictions final_proj(hidden[L]) at the masked frames,
   negatives, contrastive + diversity + feature penalty. step drives the Gumbel temperature.
   Fills st's SSL numbers when st is not NULL. */
SV_DEF sv_tensor *sv_w2v2_loss(sv_model *m, sv_ctx *c, const sv_w2v2_out *out, size_t step, sv_stats *st);
/* MT4SSL (Ma et al. 2022), the other SSL objective (config ssl), on the same masked forward pass:
   offline, Linear(D,K) of the last layer at the masked frames and cross-entropy against their
   k-means classes (b->km), summed; online, Linear(D,D) regressing the EMA teacher's target,
   squared error summed over the D dims times 1/sqrt(D), summed; loss = (w_off CE + w_on reg) / N
   over the N masked frames. 8.5 has the details and references. Fills st's MT4SSL numbers. */
SV_DEF sv_tensor *sv_mt4ssl_loss(sv_model *m, sv_ctx *c, const sv_w2v2_out *out, const sv_batch *b, sv_stats *st);
/* The parameter groups the SSL loss of cfg trains (SV_GROUPS_W2V2 for wav2vec 2.0; MT4SSL swaps
   the contrastive head's group for its own). */
SV_DEF uint32_t sv_ssl_groups(const sv_config *cfg);
/* MT4SSL's EMA teacher: after `updates` updates of the student (1 after the first), teacher =
   d teacher + (1 - d) student with d = sv_ema_decay(ema_decay, ema_end_decay, updates,
   ema_anneal) (fairseq EMAModule.step at set_num_updates); reset copies the student (a new
   teacher, as at the start of a run). No-ops without a teacher. */
SV_DEF void sv_mt4ssl_ema_step(sv_model *m, size_t updates);
SV_DEF void sv_mt4ssl_teacher_reset(sv_model *m);
/* The online targets of a batch [B, T, D] (T = CNN frames of the batch width; frames past a
   row's length are 0), no gradient, eval mode: what the teacher tells the student to predict.
   *out is SV_MALLOC'd. */
SV_DEF int sv_mt4ssl_targets(sv_model *m, sv_ctx *c, const sv_batch *b, float **out, size_t *T);
/* loss_AV, masked margin InfoNCE (FaST-VGS Margin_InfoNCE_loss): S = V A^T [B,B] (image rows,
   caption columns; cosine similarities when cosine != 0); S_ii -= margin; S_ij -= 1e4 when
   i != j share an image id (other captions of the same image are not negatives); loss = CE over
   rows (image -> caption) + CE over columns (caption -> image), each a batch mean. */
SV_DEF sv_tensor *sv_vgs_loss_av(sv_ctx *c, sv_tensor *v, sv_tensor *a, const long *image_id, float margin, int cosine);

/* The joint loss alpha * loss_AV + (1 - alpha) * loss_AUD on a batch, recorded on the tape
   of c when c is in grad mode. alpha = 0 computes no VGS branch, alpha = 1 no wav2vec 2.0 head
   (and no masking). step drives the Gumbel temperature. Returns the scalar loss or NULL. */
SV_DEF sv_tensor *sv_model_loss(sv_model *m, sv_ctx *c, const sv_batch *b, float alpha, size_t step, sv_stats *st);

/* ======================================================================================
   9 Optimizer
   ====================================================================================== */
typedef struct sv_adam {
    float lr, beta1, beta2, eps, weight_decay, clip_norm;
    int bias_correction;        /* 1: Adam/AdamW; 0: BertAdam of the reference trainer */
    size_t t;                   /* updates taken since the last reset */
} sv_adam;

SV_DEF sv_adam sv_adam_default(void);
/* One AdamW step on the parameters of the groups in group_mask: global-norm gradient clipping
   over those parameters, decoupled weight decay on matrices only (not biases, norms, CLS/mask
   vectors). Parameters outside the mask are not touched at all. Returns the pre-clip norm. */
SV_DEF float sv_adam_step(sv_adam *opt, sv_params *p, uint32_t group_mask, float lr);
/* zero the moments and the step count (the schedules' switch) */
SV_DEF void sv_adam_reset(sv_adam *opt, sv_params *p);
/* linear warm-up over warmup steps then linear decay to 0 at total */
SV_DEF float sv_lr_schedule(float peak, size_t step, size_t warmup, size_t total);

/* EMA teacher (data2vec, MT4SSL; fairseq EMAModule). The decay after `step` updates rises
   linearly from start to end over the first `anneal` updates, then stays at end (fairseq
   get_annealed_rate: end - (end - start) (1 - step / anneal)); anneal 0 gives end. */
SV_DEF float sv_ema_decay(float start, float end, size_t step, size_t anneal);
/* ema = decay * ema + (1 - decay) * x elementwise (EMAModule: ema.mul_(d).add_(x, alpha=1-d)) */
SV_DEF void sv_ema_update(float *ema, const float *x, size_t n, float decay);

/* ======================================================================================
   10 Data and I/O
   ======================================================================================
   Every reader checks sizes against the input before allocating (overflow-safe), rejects
   truncated or inconsistent input with one line naming the file (and the line for text formats)
   and what is wrong, and frees everything it allocated when it fails. Each file reader has an
   in-memory twin (`*_decode` / `*_parse`) that takes a `name` used only in messages (NULL gives
   "<memory>"); the fuzzers drive those.

   Writers never leave a half-written file under the final name: they write `path.tmp`, flush,
   fsync (POSIX), then rename over `path`. Two processes writing the same path at once would share
   the temporary name; don't do that.

   Numbers in text formats are read and written with the C library in the "C" numeric locale (the
   default unless the program calls setlocale); under another locale a time such as "0.5" fails
   with an error instead of being misread.

   Memory returned by the readers comes from SV_MALLOC; release it with sv_io_free (SV_FREE). */

SV_DEF void sv_io_free(void *p);

/* ---- Files ------------------------------------------------------------------------------------
   The helpers the readers and writers below are built on, for programs that write their own files
   the same way. sv_file_read: the whole file into *buf (SV_MALLOC; one extra byte past *len holds
   a NUL, so text can be parsed as a C string); a folder is an error, not an absurd size.
   sv_file_create / sv_file_commit: atomic replace. create opens path.tmp for writing; commit with
   ok != 0 flushes, fsyncs (POSIX) and renames it over path, with ok == 0 (the caller failed
   while writing) removes it; either way it frees tmp. A full disk therefore never leaves a
   truncated or empty file under the final name. sv_make_dir: one folder level, an existing
   folder is fine (without POSIX mkdir it does nothing and the first write into it says so). */
SV_DEF int sv_file_read(const char *path, unsigned char **buf, size_t *len);
SV_DEF FILE *sv_file_create(const char *path, char **tmp);
SV_DEF int sv_file_commit(FILE *f, char *tmp, const char *path, int ok);
SV_DEF int sv_make_dir(const char *path);

/* The splits of a corpus: training, validation, test and the out-of-domain set (ABX only). */
enum { SV_SPLIT_TRAIN, SV_SPLIT_VAL, SV_SPLIT_TEST, SV_SPLIT_OOD, SV_SPLIT_COUNT };

SV_DEF const char *sv_split_name(int split);      /* "train", "val", "test", "ood" */

/* ---- WAV (RIFF/WAVE) -------------------------------------------------------------------------
   Reads PCM 8 (unsigned), 16, 24, 32-bit integers and IEEE float 32/64, plain or
   WAVE_FORMAT_EXTENSIBLE with those sub-formats, any number of channels (averaged to mono).
   Samples come back as float in [-1,1]: integers are divided by 2^(bits-1) (8-bit after removing
   the 128 offset); float samples outside [-1,1] are clipped, NaN/inf are an error. Chunks other
   than fmt and data (LIST, fact, cue, ...) are skipped, odd-sized chunks take their RIFF pad byte.
   The RIFF size field is not trusted (streaming writers leave it 0 or 0xFFFFFFFF): chunks are
   walked to the end of the input. A chunk (data included) that declares more bytes than remain is
   an error ("truncated"), as is a data size that is not a whole number of frames.
   On success *samples holds *n_samples floats (a valid pointer even when the file has none). */
SV_DEF int sv_wav_decode(const void *buf, size_t len, const char *name,
                         float **samples, size_t *n_samples, int *sample_rate);
SV_DEF int sv_wav_read(const char *path, float **samples, size_t *n_samples, int *sample_rate);
/* As sv_wav_read, at 16000 Hz (the models' input rate): a file at another rate is resampled
   with sv_resample (so "x.wav" at 44.1 kHz gives 16000/44100 as many samples). */
SV_DEF int sv_wav_load_16k(const char *path, float **samples, size_t *n_samples);
/* The samples sv_wav_load_16k would return, from the file's headers alone (the samples are not
   read): the same checks of the header, and the data chunk must lie within the file. For corpora
   that stay on disk (sv_data_open_streamed). */
SV_DEF int sv_wav_length_16k(const char *path, size_t *n_samples);
/* Mono 16-bit PCM: x clipped to [-1,1], times 32767, rounded half away from zero. NaN is an error. */
SV_DEF int sv_wav_write(const char *path, const float *samples, size_t n, int sample_rate);
/* Mono IEEE float32 (format tag 3, with the fact chunk non-PCM files need); non-finite is an error. */
SV_DEF int sv_wav_write_float(const char *path, const float *samples, size_t n, int sample_rate);

/* ---- Resampling (windowed sinc) ----------------------------------------------------------------
   Band-limited interpolation (Smith, "Digital Audio Resampling", 2002): output sample m, at input
   time t = m * rate_in / rate_out, is sum_j x[j] h(t - j) with h a low-pass sinc windowed by a
   Kaiser window (beta SV_RESAMPLE_BETA), 64 zero crossings on each side, cut off at 0.955 of the
   lower Nyquist frequency (passband flat within 0.01 dB to 0.91 of it: 7.3 kHz at 16 kHz; more
   than 85 dB rejection from its Nyquist frequency on). Samples outside the input count as 0. The
   taps of each of the L phases (rate_out / rate_in = L / M in lowest terms) are normalised to a
   DC gain of exactly 1 and kept in a table when L is at most 4096 (every common rate pair), else
   computed per output sample. The output has ceil(n * rate_out / rate_in) samples, the first at
   input time 0 (no delay). rate_in == rate_out copies the input. Accurate to about 1e-4 of full
   scale on a pure tone in the passband; tools/test_train.sh compares it with sox. */
#define SV_RESAMPLE_BETA 9.0
SV_DEF int sv_resample(const float *x, size_t n, int rate_in, int rate_out, float **y, size_t *n_out);

/* ---- NPY (numpy .npy, format versions 1.0, 2.0, 3.0) -------------------------------------------
   dtype '<f4' or '<f8' (big-endian '>f4'/'>f8' also read), converted to float; C order only
   (fortran_order True is an error); 0 to 4 dimensions. The header dictionary is parsed as the
   Python literal it is (keys in any order, any spacing, trailing comma, 'L' suffixes of old
   files); keys other than descr/fortran_order/shape are an error, as numpy does. The data must be
   exactly shape-product x itemsize bytes (short: "truncated", more: "trailing bytes").
   shape[] entries past *ndim are set to 1, so shape[0]*..*shape[3] is the element count.
   sv_npy_read streams the data from the file (no second copy of it in memory). */
SV_DEF int sv_npy_decode(const void *buf, size_t len, const char *name,
                         float **data, size_t shape[4], int *ndim);
SV_DEF int sv_npy_read(const char *path, float **data, size_t shape[4], int *ndim);
/* Writes '<f4', C order, format 1.0, header padded to a multiple of 64 bytes as numpy does. */
SV_DEF int sv_npy_write(const char *path, const float *data, const size_t shape[4], int ndim);

/* ---- safetensors (Hugging Face) ---------------------------------------------------------------
   Format (huggingface/safetensors): u64 little-endian N, N bytes of UTF-8 JSON, then the data.
   The JSON object maps each tensor name to {"dtype":"F32","shape":[...],"data_offsets":[b,e]}
   (bytes relative to the start of the data; little-endian, row-major), and the optional key
   "__metadata__" to an object of string values. The reader is as strict as the reference one:
   the header is at most 100 MB, starts with '{', is valid UTF-8 JSON without duplicate keys or
   unknown fields; every e - b equals the element count times the dtype size (overflow-checked);
   the tensors, taken in offset order, cover the data from byte 0 without gaps or overlaps; the
   data ends exactly at the end of the input. Any malformation is an error naming the tensor.
   F32, F16, BF16 and F64 are converted to float on load (F16 subnormals, infinities and NaN
   exactly; an F64 value beyond the float range is an error). Tensors of the other dtypes (BOOL,
   U8, I8, U16, I16, U32, I32, U64, I64, F8_E4M3, F8_E5M2) are validated but not loaded (data
   NULL). sv_safetensors_read streams the data from the file (no second copy in memory). */
#define SV_ST_MAX_DIMS 8
#define SV_ST_MAX_HEADER ((size_t)100000000)
typedef struct sv_st_tensor {
    char *name;
    char dtype[8];                  /* as stored: "F32", "BF16", ... */
    int ndim;                       /* 0 (a scalar) .. SV_ST_MAX_DIMS */
    size_t shape[SV_ST_MAX_DIMS];
    size_t numel;
    float *data;                    /* numel floats, or NULL for a dtype that is not loaded */
} sv_st_tensor;

typedef struct sv_safetensors {
    sv_st_tensor *t;                /* in the order of their data offsets */
    size_t n;
    char **meta_key, **meta_value;  /* __metadata__ */
    size_t n_meta;
} sv_safetensors;

/* On failure *st is left empty (nothing to free). */
SV_DEF int sv_safetensors_decode(const void *buf, size_t len, const char *name, sv_safetensors *st);
SV_DEF int sv_safetensors_read(const char *path, sv_safetensors *st);
SV_DEF void sv_safetensors_free(sv_safetensors *st);
SV_DEF const sv_st_tensor *sv_safetensors_find(const sv_safetensors *st, const char *name);
SV_DEF const char *sv_safetensors_meta(const sv_safetensors *st, const char *key); /* NULL if absent */
/* Writes n F32 tensors (name, ndim, shape, data of each; dtype and numel are ignored) in the given
   order, and n_meta metadata pairs meta[2i] = key, meta[2i+1] = value. Names must be unique,
   non-empty valid UTF-8 and not "__metadata__". The header is padded with spaces to a multiple
   of 8 bytes, as the reference writer does. Atomic (tmp + rename). */
SV_DEF int sv_safetensors_write(const char *path, const sv_st_tensor *t, size_t n,
                                const char *const *meta, size_t n_meta);

/* ---- Manifest (TSV) ---------------------------------------------------------------------------
   First line: tab-separated column names. Required: id, wav. Optional: image (row index into the
   corpus' image feature NPY; -1 or empty for none), speaker, text, align (path to an alignment
   file, empty for none). Other columns are ignored. Then one utterance per line, exactly as many
   tab-separated fields as the header (fields may contain spaces; there is no quoting, so a field
   cannot contain a tab or a newline). CRLF line endings, a UTF-8 byte-order mark and empty lines
   are tolerated. Rejected, with file:line: invalid UTF-8 or NUL bytes, wrong field count, empty
   or duplicate id, empty wav path, image not an integer >= -1.
   wav and align paths relative to the manifest's folder are resolved against it on reading
   (absolute paths are kept), so m->wav[i] can be opened from the current directory. */
typedef struct sv_manifest {
    size_t n;                     /* utterances */
    char **id, **wav;             /* n strings each */
    char **speaker, **text, **align; /* n strings each, "" where absent or empty */
    long *image;                  /* n image rows, -1 = none (all -1 without an image column) */
    size_t *line;                 /* n line numbers in the file (for messages); NULL if built by hand */
    int has_image, has_speaker, has_text, has_align; /* which optional columns the file had */
    char *dir;                    /* folder the paths were resolved against, "" for none */
} sv_manifest;

/* dir: folder to resolve relative paths against (NULL or "" keeps them as written). */
SV_DEF int sv_manifest_parse(const char *text, size_t len, const char *name, const char *dir,
                             sv_manifest *m);
SV_DEF int sv_manifest_read(const char *path, sv_manifest *m);
/* Writes id, wav, then the optional columns whose has_* flag is set (image, speaker, text, align).
   Paths are written relative to the new manifest's folder: a path under that folder (relative or
   absolute) loses the folder prefix; other absolute paths are kept; a relative path outside it is
   an error (make it absolute). Fields with
   tabs or newlines, empty or duplicate ids and empty wav paths are refused before anything is
   written. */
SV_DEF int sv_manifest_write(const char *path, const sv_manifest *m);
SV_DEF void sv_manifest_free(sv_manifest *m); /* frees the contents and zeroes *m */

/* ---- ZeroSpeech 2021 .item ----------------------------------------------------------------------
   Line 1 is a header and is skipped whatever it says (by convention
   `#file onset offset #phone prev-phone next-phone speaker`). Every other line is one token of
   exactly 7 whitespace-separated fields `file onset offset phone prev next speaker` (the '#'
   marks are in the header only), times in seconds. As in the official evaluator, empty lines are
   an error, so item i always comes from line i + 2. Rejected with file:line: wrong field count,
   non-numeric, NaN/inf or negative times, onset >= offset, invalid UTF-8. Strings are interned
   into the set's tables (one phone table for central and context phones). */
SV_DEF int sv_item_parse(const char *text, size_t len, const char *name, sv_item_set *out);
SV_DEF int sv_item_read(const char *path, sv_item_set *out);
SV_DEF int sv_item_write(const char *path, const sv_item_set *s);
/* Checks every item against the known files (names as in the .item file, without extension) and,
   when durations is not NULL, their durations in seconds. Fails on the first item whose file is
   unknown or whose offset lies beyond the end of its file, naming the item, its line and the file. */
SV_DEF int sv_item_check(const sv_item_set *s, const char *const *file_names,
                         const double *durations, size_t n_files);

/* ---- Corpus folders ----------------------------------------------------------------------------
   One folder layout serves the built-in corpus, the espeak-ng TTS corpus and the importers of
   data_prep.sh (SpokenCOCO, LibriSpeech); the training driver reads exactly this:

       OUT/train.tsv val.tsv test.tsv  manifests: id wav image speaker text align (header line);
                                       image = row of images.npy; wav/align relative to OUT
       OUT/ood.tsv                     audio-only manifest: id wav speaker text align
       OUT/images.npy                  [N, R, Dimg] float32 region features
       OUT/boxes.npy                   [N, R, 4] float32 (x1, y1, x2, y2) / image side, in [0, 1]
       OUT/image_split.tsv             optional: "image<TAB>split" per image (for statistics)
       OUT/val.item, OUT/test.item, OUT/ood.item   ZeroSpeech 2021 .item files (file = utterance id)
       OUT/wav/<id>.wav                16 kHz mono 16-bit PCM (the built-in corpus can write float32)
       OUT/align/<id>.phones, .words   "start end LABEL" per line, seconds
       OUT/stats.txt                   hours per split, speakers, images, phones
       OUT/.complete                   written last: a folder without it is an interrupted write

   Any manifest may be absent (that split is empty), but at least one must exist; images.npy and
   boxes.npy are required only when some manifest row has an image index >= 0.

   Rerun policy of sv_corpus_write: a folder that already holds `.complete` is refused (a finished
   corpus is never overwritten in place; delete it or pick another folder). A folder without the
   marker (an interrupted write, or a new empty folder) is written over file by file, each file
   atomically (tmp + rename), and `.complete` comes last, so a crash at any point leaves a folder
   that sv_disk_corpus_open refuses rather than a half-written corpus that looks finished.

   Folders are created with POSIX mkdir (<sys/stat.h>) or Windows' _mkdir; elsewhere the folder OUT and its
   subfolders wav/ and align/ must exist already. */


/* A corpus folder opened for reading. Metadata and image features are loaded eagerly (manifests,
   images.npy, boxes.npy, .item files: for SpokenCOCO's 123k images x 36 x 2048 features that is
   36 GB, so keep such features in fp32 only when the machine has the memory); audio is loaded
   lazily, one utterance per sv_disk_corpus_audio call. */
typedef struct sv_disk_corpus {
    char *dir;                             /* the folder as given */
    sv_manifest split[SV_SPLIT_COUNT];     /* train, val, test, ood; n == 0 for an absent manifest */
    int has_split[SV_SPLIT_COUNT];         /* 1 when that manifest file exists */
    float *regions;                        /* [n_images, n_regions, region_dim], NULL if no images.npy */
    float *boxes;                          /* [n_images, n_regions, 4], NULL if no boxes.npy */
    size_t n_images, n_regions, region_dim;
    sv_item_set items[SV_SPLIT_COUNT];     /* test.item / ood.item (also train/val.item if present) */
    int has_items[SV_SPLIT_COUNT];
} sv_disk_corpus;

/* Opens and validates dir: `.complete` present (else "<dir> is incomplete (interrupted
   data_prep?); rerun data_prep.sh"), manifests parse, image indices lie in [-1, n_images),
   boxes.npy has shape [n_images, n_regions, 4], every wav file exists, .item files parse and name
   only utterances of their split. On failure *dc is left empty (nothing to close). */
SV_DEF int sv_disk_corpus_open(const char *dir, sv_disk_corpus *dc);
SV_DEF void sv_disk_corpus_close(sv_disk_corpus *dc);
/* Number of utterances of a split (0 for an absent one or a bad split). */
SV_DEF size_t sv_disk_corpus_count(const sv_disk_corpus *dc, int split);
/* Loads utterance i of split (SV_SPLIT_*) at 16 kHz: *x gets *n floats (free with SV_FREE).
   Audio at another rate is resampled to 16 kHz (sv_wav_load_16k). */
SV_DEF int sv_disk_corpus_audio(const sv_disk_corpus *dc, int split, size_t i, float **x, size_t *n);

/* ---- Config as text, datasets, batches, checkpoints -------------------------------------------- */
/* A dataset: the built-in corpus generated in memory, or a corpus folder written by
   data_prep.sh (the layout of sv_corpus_write). Audio is held in memory as float (sv_data_open
   reads a disk corpus once: about 230 MB per hour of speech), or stays on disk
   (sv_data_open_streamed: each use reads its file; for corpora larger than memory, and for
   data-parallel training, where each process reads only the utterances of its share). Read
   audio through sv_data_audio, which serves both. Splits: SV_SPLIT_TRAIN, _VAL, _TEST, _OOD
   (audio-only, for ABX). */
typedef struct sv_data {
    struct sv_corpus *builtin;          /* owned, or NULL (section 12) */
    size_t n[SV_SPLIT_COUNT];           /* utterances per split */
    float **audio[SV_SPLIT_COUNT];      /* audio[split][i]: raw 16 kHz samples (not normalised); NULL when streamed */
    char **wav[SV_SPLIT_COUNT];         /* streamed: the file of utterance i (else NULL) */
    int streamed;                       /* audio and image features stay on disk (sv_data_open_streamed) */
    struct sv__image_files *image_files; /* streamed: where the image rows are (regions, boxes NULL) */
    size_t *len[SV_SPLIT_COUNT];
    long *image[SV_SPLIT_COUNT];        /* image row of utterance i, -1 for none */
    char **id[SV_SPLIT_COUNT];          /* utterance ids (= .item file names) */
    int *speaker[SV_SPLIT_COUNT];       /* speaker index into speakers[] */
    char **speakers; size_t n_speakers;
    float *regions, *boxes;             /* [N,R,Dimg], [N,R,4]; NULL when streamed: use sv_data_image */
    size_t n_images, R, Dimg;
    sv_item_set items[SV_SPLIT_COUNT];  /* ABX tokens of the test and OOD splits (file = id) */
    int has_items[SV_SPLIT_COUNT];
    char source[256];                   /* "builtin seed=..." or the folder */
    char *manifest[SV_SPLIT_COUNT];     /* the split's manifest file; NULL for the built-in corpus */
    size_t *line[SV_SPLIT_COUNT];       /* line of utterance i in that manifest (NULL: built-in) */
    /* MT4SSL's offline targets of this data (sv_km_targets_read; not owned, NULL = none): the
       loaders then put each frame's class in the batches (sv_batch.km) and crop utterances at
       multiples of the targets' hop, so labels stay on their frames */
    const struct sv_km_targets *targets;
} sv_data;

SV_DEF int sv_data_open(sv_data *d, const char *dir);
/* As sv_data_open, but the audio and the image features stay on disk: at open only each WAV
   file's length (from its header, sv_wav_length_16k) and the shapes of images.npy and boxes.npy
   are read; sv_data_audio reads an utterance's file, sv_data_image an image's rows, whenever
   they are used. Batches, losses and every evaluation give the same bits as with sv_data_open. */
SV_DEF int sv_data_open_streamed(sv_data *d, const char *dir);
SV_DEF void sv_data_free(sv_data *d);
/* Utterance i of a split (d->len[split][i] samples at 16 kHz): *x points at the data's own
   samples, or, for streamed data, at samples read from the file now, which *owned then holds
   (free it with SV_FREE; NULL when nothing was read). A file whose length changed since the
   open is an error naming it. */
SV_DEF int sv_data_audio(const sv_data *d, int split, size_t i, const float **x, float **owned);
/* Image row img (0 <= img < d->n_images): its region features [R, Dimg] into regions and its
   boxes [R, 4] into boxes (either may be NULL), from memory or, streamed, from the files. */
SV_DEF int sv_data_image(const sv_data *d, size_t img, float *regions, float *boxes);
/* An audio-only dataset from a manifest (e.g. data_prep.sh librispeech): every row becomes a
   train utterance without an image; audio is loaded at once (16 kHz WAV). */
SV_DEF int sv_data_audio_manifest(sv_data *d, const char *manifest);
/* The same with the audio left on disk (as sv_data_open_streamed). */
SV_DEF int sv_data_audio_manifest_streamed(sv_data *d, const char *manifest);
/* An ABX evaluation set outside a corpus folder (the ZeroSpeech 2021 phonetic sets, data_prep.sh
   zerospeech's output): path is either a manifest (.tsv: id wav ...) with its .item file beside
   it (the same name ending in .item), or an .item file whose audio is <its folder>/<file>.wav.
   The audio becomes the OOD split (no images), the items its item set (d->items[SV_SPLIT_OOD]);
   an item naming a file that the set lacks, or an offset beyond its file's end, is an error
   naming both. Evaluate with sv_eval_abx(m, c, d, SV_SPLIT_OOD, ...). */
SV_DEF int sv_data_abx_set(sv_data *d, const char *path);
/* index of an utterance id in a split (for .item files), or -1 */
SV_DEF long sv_data_find(const sv_data *d, int split, const char *id);
/* "builtin" or "builtin:key=value,..." (images, val_images, test_images, captions,
   train_speakers, test_speakers, ood_speakers, ood_utts, seed), else a corpus folder */
SV_DEF int sv_data_from_spec(sv_data *d, const char *spec);
/* The same, a corpus folder opened with sv_data_open_streamed (the built-in corpus is generated
   in memory either way). */
SV_DEF int sv_data_from_spec_streamed(sv_data *d, const char *spec);
/* Checks a "builtin:..." spec without generating anything (keys, numbers, sizes); a folder spec
   is only checked for being non-empty. For the drivers, before any data is read. */
SV_DEF int sv_data_spec_check(const char *spec);

/* Where utterance i of a split comes from, for messages: "corpus/train.tsv:17 (utterance 'x')"
   or "the built-in corpus (utterance 'train_00012')". */
SV_DEF void sv_data_where(const sv_data *d, int split, size_t i, char *buf, size_t cap);
/* The fewest samples an utterance needs under cfg: the receptive field of the feature encoder,
   and with the wav2vec 2.0 loss (ssl != 0) enough frames for the mask spans whatever the random
   draw (fairseq's compute_mask_indices needs more frames than spans). 0 when no length works
   (e.g. mask_prob 1 with mask_length 1). */
SV_DEF size_t sv_config_min_samples(const sv_config *cfg, int ssl);
/* What a run needs of a split, checked before the first batch so that an error names the file
   and line instead of a batch index: every utterance at least min_samples long, and with
   need_images at least one utterance with an image (the VGS loss has nothing to learn from
   otherwise). An empty split passes (the loader refuses it where a batch is needed). */
SV_DEF int sv_data_check(const sv_data *d, int split, size_t min_samples, int need_images);

/* Batches for training: every epoch a seeded permutation of the split, cut into buckets of
   similar length (so padding stays small), batches in random order; each utterance randomly
   cropped to max_samples and normalised to zero mean, unit variance. The position (epoch,
   batch) is part of a checkpoint, and the same seed, epoch and batch give the same batch. */
typedef struct sv_loader {
    const sv_data *d;
    int split;
    size_t B, max_samples;
    uint64_t seed;
    size_t epoch, batch;                /* the next batch to produce */
    size_t n_batches;                   /* per epoch */
    size_t *order;                      /* this epoch's utterances, batch by batch */
    size_t order_epoch;                 /* which epoch order[] holds (SIZE_MAX: none) */
    float *wave, *regions, *boxes;      /* the batch buffers */
    size_t *wave_len;
    long *image_id;
    size_t *utt;                        /* the utterance indices of the current batch */
    size_t *scratch;                    /* 32 * B indices: sorting buckets, swapping batches */
    int *km;                            /* the batch's offline targets when d->targets is set */
    size_t km_cap;
} sv_loader;

SV_DEF int sv_loader_init(sv_loader *L, const sv_data *d, int split, size_t B, size_t max_samples, uint64_t seed);
SV_DEF void sv_loader_free(sv_loader *L);
SV_DEF int sv_loader_next(sv_loader *L, sv_batch *out);  /* fills out; the buffers live in L */
/* The samples [first, first + count) of the next global batch of B (a process's share in shard
   mode, section 3), padded to the width of the whole global batch; crops are sample-keyed
   (sv_rng_key of seed, SV_DRAW_CROP, epoch, batch, position in the global batch), so a sample
   comes out the same whichever share holds it. Advances the position as sv_loader_next does
   (the two give different crops: use one of them for a run). */
SV_DEF int sv_loader_next_shard(sv_loader *L, size_t first, size_t count, sv_batch *out);
/* Fixed batches in file order, no crop beyond max_samples, no shuffling: for evaluation.
   Batch k holds utterances [k*B, min((k+1)*B, n)). */
SV_DEF int sv_loader_eval_batch(sv_loader *L, size_t k, sv_batch *out);

/* Checkpoints: a versioned binary file. Magic "SSLVGSCK", version, the config as text lines
   (key = value), the run settings as text lines (version 2; see below), every parameter and
   buffer by name, the Adam moments and step count, the training position (step, stage, loader
   epoch/batch) and the RNG state, then an FNV-1a 64 checksum of everything before it. Written
   atomically (temp file, fsync, rename). Weights or moments holding NaN or inf are never
   written (SV_ERR_NUMERIC, naming the first such tensor, and the file already at path is left
   as it was), and a checkpoint holding them is refused on loading. Version 1 files (no
   settings block) are still read. */
typedef struct sv_train_pos {
    size_t step;                        /* updates done in the whole run */
    int stage;                          /* 0: stage A (or a base model), 1: stage B */
    size_t stage_step;                  /* updates done in this stage */
    size_t epoch, batch;                /* loader position */
    sv_rng rng;                         /* the training context's RNG */
    float alpha;
    char scenario[64];
} sv_train_pos;

SV_DEF int sv_checkpoint_save(const char *path, const sv_model *m, const sv_adam *opt, const sv_train_pos *pos);
/* Run settings: free text, by convention "key = value" lines, that a driver stores with the
   checkpoint (train.c keeps every resolved command-line option there, so that a resumed run
   continues with exactly the settings it started with). The library does not interpret it.
   sv_checkpoint_save is sv_checkpoint_save_settings with settings NULL (stored as ""). */
SV_DEF int sv_checkpoint_save_settings(const char *path, const sv_model *m, const sv_adam *opt,
                                       const sv_train_pos *pos, const char *settings);
/* The settings text of a checkpoint into *text (SV_MALLOC'd, NUL-terminated; "" for a
   version 1 file). The whole file is read and its checksum verified. */
SV_DEF int sv_checkpoint_settings(const char *path, char **text);
/* A checkpoint's identity without reading it whole: the checksum stored in its last 8 bytes
   (FNV-1a 64 of its contents), after checking the magic. Results files store it, so that a
   result can be matched with the checkpoint it was computed from. */
SV_DEF int sv_checkpoint_id(const char *path, uint64_t *id);
/* Builds the model from the stored config. opt and pos may be NULL (weights only). */
SV_DEF sv_model *sv_checkpoint_load(const char *path, sv_adam *opt, sv_train_pos *pos);
/* Loads into an existing model: an error naming the first config field that differs. */
SV_DEF int sv_checkpoint_load_into(const char *path, sv_model *m, sv_adam *opt, sv_train_pos *pos);

/* config <-> "key = value" text (also used by the drivers to print and override settings).
   sv_config_set checks the syntax of the value (numbers whole, no trailing characters, no sign on
   sizes, NaN and inf refused); sv_config_check checks every field's range and the relations
   between fields, naming the field and its valid range. */
SV_DEF int sv_config_set(sv_config *cfg, const char *key, const char *value);
SV_DEF size_t sv_config_format(const sv_config *cfg, char *buf, size_t cap);

/* Strict numbers for config text and command lines: the whole text must be one number (no
   leading space, no trailing characters), within [min, max]. sv_parse_size takes decimal digits
   only (no sign); sv_parse_double takes what strtod reads, but never NaN or inf. On failure
   sv_last_error() says what is wrong without naming the option ("'10x' is not a whole number",
   "-5 is out of range: 1..1000000"), so that the caller can prefix the option's name. */
SV_DEF int sv_parse_size(const char *text, size_t min, size_t max, size_t *out);
SV_DEF int sv_parse_double(const char *text, double min, double max, double *out);

/* ---- Offline targets (HuBERT, MT4SSL): MFCC features, k-means, label files (10.13-10.15) ----
   HuBERT's first iteration (and MT4SSL's offline target) labels every 20 ms frame with the id
   of the nearest k-means centre of its MFCCs; later iterations cluster a layer of a trained
   model instead. These three pieces make such labels: the features, the clustering (streamed,
   so the corpus never has to fit in memory) and the files the labels live in next to a
   corpus. */

/* ---- 10.13 MFCC (Kaldi compute-mfcc-feats as torchaudio.compliance.kaldi.mfcc computes it) ----
   HuBERT's recipe (fairseq examples/hubert/simple_kmeans/dump_mfcc_feature.py):
   torchaudio.compliance.kaldi.mfcc(wave, sample_frequency=16000, use_energy=False), then
   torchaudio.functional.compute_deltas applied twice; [mfcc, delta, delta-delta] = 39 dims.
   With the defaults every 10 ms frame f is computed as:
     - samples [160 f, 160 f + 400) of the waveform as given (HuBERT reads soundfile's floats
       in [-1, 1]; no per-utterance normalisation); only frames that fit are made (snip_edges):
       n10 = 1 + (n - 400) / 160 frames, 0 when n < 400;
     - no dither; the frame's mean is subtracted; pre-emphasis x[i] -= 0.97 x[i-1] inside the
       frame, x[-1] = x[0]; Povey window (0.5 - 0.5 cos(2 pi i / 399))^0.85; zeros to 512;
     - power spectrum |FFT|^2 of bins 0..255 (the Nyquist bin has no mel weight); 23 triangular
       filters equally spaced on the mel scale 1127 ln(1 + f / 700) from 20 Hz to 8 kHz, each
       weighting bin k (at 31.25 k Hz) by max(0, min(up, down slope)) in mel; log(max(e, 2^-23));
     - DCT-II, orthonormal, of the 23 log energies: c_0 = sqrt(1/23) sum e_m,
       c_k = sqrt(2/23) sum e_m cos(pi k (m + 0.5) / 23); the first 13, liftered by
       1 + 11 sin(pi k / 22);
     - deltas d_f = sum_{j=1,2} j (c_{f+j} - c_{f-j}) / 10 with the edge frames repeated, and
       delta-deltas the same on the deltas.
   That is HuBERT's 100 Hz feature. The model's frames are 20 ms (CNN frame t reads samples
   [320 t, 320 t + 400)), so with subsample = 2 (the default) the output keeps 10 ms frames
   0, 2, 4, ..., deltas taken at 10 ms before the subsampling: frame t is Kaldi frame 2t, the
   label HuBERT's dataset gives model frame t (label rate 100 Hz against 50 Hz features:
   target index 2t). The count ceil(n10 / 2) = 1 + (n - 400) / 320 equals the wav2vec 2.0 CNN's
   frame count for every length. Computed in double (torchaudio uses float: the two agree to
   about 1e-4 absolute), output float, one frame per row; thread count never changes a bit. */
typedef struct sv_mfcc_opts {
    int sample_rate;                /* Hz (16000): only used for the mel filter frequencies */
    size_t frame_length, frame_shift; /* samples: 400 and 160 (25 ms, 10 ms) */
    size_t subsample;               /* keep frames 0, s, 2s, ... after the deltas (2: 20 ms) */
    size_t num_mel_bins, num_ceps;  /* 23, 13 */
    double low_freq, high_freq;     /* 20 Hz; high <= 0 means Nyquist + high (0: 8 kHz) */
    double preemphasis;             /* 0.97 */
    double cepstral_lifter;         /* 22 (0: none) */
    int delta_order;                /* 2: mfcc + deltas + delta-deltas (39), 1: 26, 0: 13 */
    size_t delta_window;            /* N of the (2N+1)-frame delta regression: 2 */
} sv_mfcc_opts;

SV_DEF sv_mfcc_opts sv_mfcc_default_opts(void);            /* HuBERT's recipe at 20 ms */
SV_DEF size_t sv_mfcc_dim(const sv_mfcc_opts *o);          /* num_ceps * (1 + delta_order) */
SV_DEF size_t sv_mfcc_frames(const sv_mfcc_opts *o, size_t n_samples);
/* MFCC frames of wave[n] into out [sv_mfcc_frames(o, n), sv_mfcc_dim(o)] (caller's memory).
   o NULL = defaults. A wave shorter than one frame gives 0 frames (SV_OK). Non-finite samples
   and bad options are errors. */
SV_DEF int sv_mfcc(const sv_mfcc_opts *o, const float *wave, size_t n, float *out);

/* ---- 10.14 k-means ----
   Lloyd's algorithm with k-means++ seeding (Arthur & Vassilvitskii 2007; the greedy variant of
   scikit-learn, which HuBERT's MiniBatchKMeans uses: 2 + floor(ln k) candidates per new centre,
   the one that lowers the potential most is kept), over frames read chunk by chunk from a source
   (one utterance's features at a time), so the frames never have to fit in memory:
     1. seeding: one pass keeps a uniform sample of init_sample frames (reservoir sampling,
        seeded); k-means++ runs on that sample in memory;
     2. Lloyd passes: every frame goes to its nearest centre (squared Euclidean distance; the
        x . c terms of a block of frames against all centres are one sv_gemm), frames are summed
        per centre in double in frame order, and each centre moves to its mean. A centre left
        without frames moves to one of the frames farthest from their centres in that pass
        (scikit-learn's relocation of empty clusters).
   It stops when a pass lowers the inertia (the sum of squared distances) by less than tol of its
   previous value, or after max_iter updates; the centres returned are those the last pass
   measured, so result.inertia is theirs. Deterministic: the same source, options and seed give
   the same centres bit for bit for any thread count (sv_gemm does not depend on it, sums run
   in frame order). Ties go to the lower centre index. */
typedef struct sv_frame_source {
    size_t dim;                     /* floats per frame */
    size_t n_chunks;                /* e.g. utterances */
    /* Chunk i: *x gets *n frames of dim floats, valid until the next call. Called for i = 0, 1,
       ..., n_chunks - 1 in order once per pass; must give the same frames every pass. Returns
       SV_OK or a status (with sv_last_error set). */
    int (*read)(void *user, size_t i, const float **x, size_t *n);
    void *user;
} sv_frame_source;

typedef struct sv_kmeans_opts {
    size_t k;                       /* clusters (HuBERT: 100 on MFCCs, 500 on a model's layer) */
    size_t max_iter;                /* Lloyd updates at most (default 50) */
    double tol;                     /* relative inertia improvement that ends it (default 1e-4) */
    uint64_t seed;                  /* sampling and seeding (default 1) */
    size_t init_sample;             /* frames k-means++ seeds from (0: 30000 or 3 k, scikit-learn's
                                       MiniBatchKMeans init_size with HuBERT's batch of 10000) */
    size_t local_trials;            /* candidates per new centre (0: 2 + floor(ln k)) */
    /* progress: what ("k-means seeding", "k-means pass 3"), chunks done of total (may be NULL) */
    void (*progress)(const char *what, size_t done, size_t total, void *user);
    void *progress_user;
} sv_kmeans_opts;

typedef struct sv_kmeans_result {
    size_t n_frames;                /* frames per pass */
    size_t iterations;              /* centre updates made */
    size_t relocated;               /* empty clusters moved to far frames, over all updates */
    double inertia;                 /* sum of squared distances to the returned centres */
    double inertia_first;           /* the same for the k-means++ centres */
    int converged;                  /* 1: stopped by tol, 0: by max_iter */
} sv_kmeans_result;

SV_DEF sv_kmeans_opts sv_kmeans_default_opts(void);
/* centroids [k, dim] (caller's memory). Errors: fewer frames than k, a source error, non-finite
   frames, a source whose frame count changes between passes. */
SV_DEF int sv_kmeans_fit(const sv_frame_source *src, const sv_kmeans_opts *o, float *centroids,
                         sv_kmeans_result *res);
/* Nearest centre of each of the n rows of x [n, dim]: labels[n]; dist2 (may be NULL) gets the
   squared distance, computed in double from the frame and its centre. */
SV_DEF int sv_kmeans_assign(const float *x, size_t n, size_t dim, const float *centroids, size_t k,
                            uint32_t *labels, float *dist2);

/* ---- 10.15 offline target files ----
   A target folder holds one label per frame for every utterance of a corpus, in HuBERT's label
   layout (fairseq's HuBERT and MT4SSL loaders read the .km files and dict.km.txt as they are):
       DIR/<split>.km     one line per utterance of the corpus' split (train, val, test, ood), in
                          the order of its manifest: the frame labels 0..k-1 separated by single
                          spaces; frame t covers samples [hop t, hop t + frame_length), so an
                          utterance of n samples has 1 + (n - frame_length) / hop labels
                          (the wav2vec 2.0 CNN's frames: frame_length 400, hop 320)
       DIR/dict.km.txt    fairseq dictionary: "<label> <count>" for labels 0..k-1 (train counts)
       DIR/centroids.npy  [k, dim] float32: label new audio the same way (sv_kmeans_assign)
       DIR/info.txt       "key = value" lines: format (ssl_vgs-km 1), k, dim, frame_length, hop,
                          features (what was clustered), seed, iterations, inertia, frames
                          (clustered), and per split <split>.utterances and <split>.ids (FNV-1a
                          64, hex, of the lines "<id> <samples>\n" of its utterances in order)
       DIR/.complete      written last: a folder without it is an interrupted write
   The reader checks every one of these against the data it is given: a folder made for another
   corpus or for an edited manifest (other ids or audio lengths), a label outside 0..k-1 or a line with the
   wrong number of labels for its utterance's audio is an error naming the file and line.
   Writing refuses a folder that already holds .complete; each file is written atomically. */
typedef struct sv_km_targets {
    size_t k, dim, frame_length, hop;
    int has[SV_SPLIT_COUNT];            /* labels exist for that split */
    size_t n[SV_SPLIT_COUNT];           /* utterances of the split */
    size_t *offset[SV_SPLIT_COUNT];     /* [n + 1]: utterance i's labels are [offset[i], offset[i+1]) */
    uint16_t *labels[SV_SPLIT_COUNT];   /* all labels of the split, utterance after utterance */
    float *centroids;                   /* [k, dim] */
    char features[256];                 /* what was clustered (info.txt "features") */
    uint64_t seed;
    size_t iterations, frames;
    double inertia;
} sv_km_targets;

/* Labels of utterance i of split, its count in *n (NULL when the split has no labels). */
SV_DEF const uint16_t *sv_km_labels(const sv_km_targets *t, int split, size_t i, size_t *n);
/* Makes the targets of a dataset: k-means (o) fitted on the train split's frames, then every
   utterance of every split labelled. Frames: MFCCs (mfcc, NULL = defaults) when m is NULL, else
   layer `layer` of the model (0..L as sv_extract_features; c is its context). cache_path (may be
   NULL): a file that holds the training frames after the first pass, so later passes read them
   back instead of recomputing them (deleted at the end). k must be <= 65536. */
SV_DEF int sv_km_targets_make(const sv_data *d, sv_model *m, sv_ctx *c, size_t layer,
                              const sv_mfcc_opts *mfcc, const sv_kmeans_opts *o,
                              const char *cache_path, sv_km_targets *out, sv_kmeans_result *res);
/* Writes t as the folder dir (created if needed) for the data d (ids for info.txt). */
SV_DEF int sv_km_targets_write(const char *dir, const sv_km_targets *t, const sv_data *d);
/* Reads dir and checks it against d (see above). Splits without a .km file have has[s] = 0. */
SV_DEF int sv_km_targets_read(const char *dir, const sv_data *d, sv_km_targets *t);
SV_DEF void sv_km_targets_free(sv_km_targets *t);  /* frees the contents and zeroes *t */

/* ---- Hugging Face wav2vec 2.0 weights --------------------------------------------------------
   The public wav2vec 2.0 checkpoints (facebook/wav2vec2-base, -large-lv60, fine-tuned CTC models)
   in, and models trained here out, as safetensors files with Hugging Face transformers' names:
   Wav2Vec2Model (no prefix), Wav2Vec2ForCTC and Wav2Vec2ForPreTraining (the encoder under
   "wav2vec2.", the pretraining head at the top level). P = the prefix:
     P feature_extractor.conv_layers.i.conv.{weight,bias}  [Cout,Cin,K]  <-> cnn.i.w [Cout,K,Cin]
     P feature_extractor.conv_layers.i.layer_norm.*        (layer 0's GroupNorm, or every layer's LayerNorm)
     P feature_projection.{layer_norm,projection}.*        <-> feat_ln, proj
     P masked_spec_embed [D]                               <-> mask_emb (optional)
     P encoder.pos_conv_embed.conv.weight_g [1,1,K], .weight_v [D,D/G,K], .bias <-> pos_conv.g [K],
         .v [D,K,D/G], .b; also the newer spelling parametrizations.weight.original0/1, and a plain
         .weight (weight norm removed; g is then recomputed as the norm of each tap)
     P encoder.layer_norm.*                                <-> enc_ln (after the positional conv in
         post-LN models, after the last layer in pre-LN ones)
     P encoder.layers.N.attention.{q,k,v,out}_proj.*, .layer_norm.*, .feed_forward.intermediate_dense.*,
         .feed_forward.output_dense.*, .final_layer_norm.* <-> layer.N.{q,k,v,o,ln1,fc1,fc2,ln2}
     quantizer.codevectors [1,G*V,d/G], quantizer.weight_proj.* [G*V,C], project_q.* [F,d],
         project_hid.* [F,D]                                <-> quantizer.codebook [G*V,d/G],
         quantizer.w/.b, project_q, final_proj (all four or none: a file without them leaves the
         head at its initial values, with a note)
     ssl_vgs.cls_token [D]                                 <-> cls (this library's own; see sv_hf_save)
   The config comes from the tensors: conv channels and kernels, encoder kind (a
   conv_layers.1.layer_norm means the layer-norm encoder, else group norm on layer 0), conv bias,
   D, layers, FFN width, positional conv kernel and groups, codebook size and projection widths.
   Strides, attention heads, pre/post-LN and quantizer groups do not show in the tensors: they come
   from config.json beside the file when present (conv_stride, num_attention_heads,
   do_stable_layer_norm, num_codevector_groups; it must also agree with the tensors, have
   layer_norm_eps 1e-5 and "gelu" activations), else from this library's metadata, else fairseq's
   values with a note: strides 5,2,2,2,2,2,2 (only for the standard kernels 10,3,3,3,3,2,2),
   D / 64 heads, pre-LN exactly for the layer-norm encoder, 2 groups. Tensors a task head adds
   (lm_head, projector, classifier) are ignored with a note; any other tensor, a missing one, a
   mis-shaped one, an unloadable dtype or a NaN/inf is an error naming it, and then nothing is
   loaded. notes (may be NULL) receives what was assumed, ignored or left at its initial value.
   Layer L's output here is Hugging Face's hidden_states[L] (torchaudio's extract_features()[L-1];
   for pre-LN models torchaudio leaves out the final layer norm on the last layer). */

/* The config of the model in st (config_json: the text of its config.json or NULL). Fields the
   file does not describe (training settings, the VGS branch) come from base (NULL: the "base"
   preset); n_shared = min(base n_shared, layers); use_cls = 1 only when ssl_vgs.cls_token is in
   the file. name (may be NULL) is used in messages. */
SV_DEF int sv_hf_config(const sv_safetensors *st, const char *config_json, size_t json_len, const char *name,
                        const sv_config *base, sv_config *cfg, char *notes, size_t notes_cap);
/* Copies the tensors of st into m (its config must fit them; all checks happen before anything
   is written, so on failure m is unchanged). */
SV_DEF int sv_hf_load_tensors(sv_model *m, const sv_safetensors *st, const char *name, char *notes, size_t notes_cap);
/* A new model from a safetensors file (and config.json beside it), config from sv_hf_config. */
SV_DEF sv_model *sv_hf_load(const char *path, const sv_config *base, char *notes, size_t notes_cap);
/* The wav2vec 2.0 part of an existing model from a file (`./train --init-from`): the file's
   architecture must be the model's (an error names the first difference); the CLS token and the
   VGS branch keep their values unless the file holds them. */
SV_DEF int sv_hf_load_into(sv_model *m, const char *path, char *notes, size_t notes_cap);
/* Writes the wav2vec 2.0 part of m as a Wav2Vec2ForPreTraining safetensors file (metadata
   format = pt, as transformers requires, and ssl_vgs_config = the config text), and, when
   config_json_path is not NULL, the matching Hugging Face config.json (an existing different
   config.json there is an error, checked before anything is written). A CLS token (use_cls) is
   stored as ssl_vgs.cls_token with a note in the metadata: transformers ignores it with a
   warning and torchaudio has no place for it, so their hidden states then differ from this
   library's. The VGS branch is not exported (checkpoints hold everything). */
SV_DEF int sv_hf_save(const sv_model *m, const char *path, const char *config_json_path);
/* The Hugging Face config.json of cfg into buf[cap]; returns its length (0 on failure). */
SV_DEF size_t sv_hf_config_json(const sv_config *cfg, char *buf, size_t cap);
/* The pretraining head in eval mode, frame by frame, for feature extraction and its checks:
   from the CNN output cnn_out [T,C] (sv_extract_all_layers), the codes sv_w2v2_quantize picks in
   eval mode (argmax per group of the logits of the layer-normed features, the first maximum on
   ties) into codes [T,G] and, when q is not NULL, its output (project_q of the chosen
   codevectors) into q [T,F]. Resets c. */
SV_DEF int sv_w2v2_codes(sv_model *m, sv_ctx *c, const float *cnn_out, size_t T, int *codes, float *q);
/* final_proj (Hugging Face project_hid) of hidden states [T,D] into out [T,F]. */
SV_DEF int sv_w2v2_predict(const sv_model *m, const float *hidden, size_t T, float *out);

/* ======================================================================================
   11 Metrics
   Retrieval recall@k, ABX, SVG figures, JSON-lines log reading, evaluation of a model.
   ====================================================================================== */

/* ---------------------------------------------------------------- 11.1 retrieval recall@k
   Score matrix S [n_images, n_captions], row-major: S[i*n_captions + j] is the score of image i
   with caption j (higher = more similar). caption_image[j] is the image of caption j; an image may
   have any number of captions (SpokenCOCO: 5).

   Image->speech R@k: for each image that has at least one caption, a hit when one of its own
   captions is among its k best-scored captions; averaged over those images (an image without
   captions cannot be retrieved against and is left out; n_images_scored says how many counted).
   Speech->image R@k: for each caption, a hit when its image is among the caption's k best images;
   averaged over captions.

   Ties and NaN, pessimistic and deterministic: a competitor whose score equals the true item's
   score is ranked above it, a NaN competitor ranks above everything and a NaN true score below
   everything. So the true item's rank is 1 + #{competitors c : !(s_c < s_true)}, and for
   image->speech s_true is the best of the image's own captions. Constant scores therefore give
   R@k = 0 unless fewer than k competitors exist, never 100%.

   All recall values are in percent (0..100), like the tables of the study. */
typedef struct sv_recall {
    double i2s_r1, i2s_r5, i2s_r10;   /* image -> speech, percent */
    double s2i_r1, s2i_r5, s2i_r10;   /* speech -> image, percent */
    size_t n_images_scored;           /* images with >= 1 caption (the i2s denominator) */
    size_t n_captions;                /* the s2i denominator */
} sv_recall;

/* One call on a full matrix (counts competitors directly; O(n_images * n_captions)). */
SV_DEF int sv_recall_compute(const float *S, size_t n_images, size_t n_captions,
                             const size_t *caption_image, sv_recall *out);
/* Recall at any k >= 1 on a full matrix, both directions in percent (either pointer may be NULL). */
SV_DEF int sv_recall_at(const float *S, size_t n_images, size_t n_captions,
                        const size_t *caption_image, size_t k, double *i2s, double *s2i);

/* Streaming: the caller never needs the whole matrix (25k captions x 5k images is 500 MB).
   The accumulator keeps, for every image and every caption, its kmax best candidates in the
   pessimistic order above (memory (n_images + n_captions) * kmax entries). Feed every cell of
   the matrix exactly once, in blocks of any shape and order:
       block[(i - img0) * n_cap + (j - cap0)] = S[i][j] for img0 <= i < img0+n_img,
                                                          cap0 <= j < cap0+n_cap.
   The result does not depend on the block order or shape and equals sv_recall_compute.
   kmax is raised to 10 so r1/r5/r10 are always available. caption_image is copied. */
typedef struct sv_recall_acc sv_recall_acc;
SV_DEF sv_recall_acc *sv_recall_acc_init(size_t n_images, size_t n_captions,
                                         const size_t *caption_image, size_t kmax);
SV_DEF int sv_recall_acc_block(sv_recall_acc *acc, size_t img0, size_t n_img, size_t cap0,
                               size_t n_cap, const float *block);
/* SV_ERR_STATE if fewer or more cells than n_images * n_captions were fed. */
SV_DEF int sv_recall_acc_result(const sv_recall_acc *acc, sv_recall *out);
SV_DEF int sv_recall_acc_at(const sv_recall_acc *acc, size_t k, double *i2s, double *s2i);
/* Per query, the rank of its first hit: i2s_rank[i] for image i (0 for an image without
   captions, which recall leaves out), s2i_rank[j] for caption j; 1..kmax, or kmax + 1 when the
   hit is not among the kmax best. R@k is the share of ranks <= k, so a bootstrap over test items
   can resample these instead of re-scoring (either pointer may be NULL). */
SV_DEF int sv_recall_acc_ranks(const sv_recall_acc *acc, size_t *i2s_rank, size_t *s2i_rank);
SV_DEF void sv_recall_acc_free(sv_recall_acc *acc);

/* ---------------------------------------------------------------- 11.2 ABX (ZeroSpeech 2021 phonetic)
   The ZeroSpeech 2021 phonetic protocol, as the official evaluator (libri-light eval_ABX.py with the
   ZeroSpeech 2021 zero-vector handling) computes it:
   - token frames ceil(onset/shift - 0.5) .. floor(offset/shift - 0.5) (end excluded), clipped to
     the file; tokens without frames, or whose file has no features (feats[f] == NULL or
     n_frames[f] == 0), are dropped (n_dropped);
   - frame distance arccos(clamp(a.b/(|a||b|), -1, 1)) / pi; two all-zero frames are at 0, an
     all-zero frame and any other at 1;
   - token distance d(A, X): DTW over the frame distances with rows = X's frames, columns = A's
     (the reference's orientation), steps (i-1,j), (i-1,j-1), (i,j-1), summed cost divided by the
     length of the path traced back greedily from the end (see sv_dtw);
   - a triple scores 1 if d(A,X) < d(B,X), 0.5 on a tie; a cell's error is 1 - mean score;
   - within speaker: cells (context, speaker, a, b), A and X from the same group with X != A
     (a needs >= 2 tokens); error averaged over contexts, then speakers, then ordered pairs (a, b);
   - across speaker: cells (context, speaker s, a, b, X speaker), A and B from s, X of phone a from
     another speaker in the same context; averaged over the (context, X speaker) cells together,
     then over speakers, then over ordered pairs.
   Modes: exact (every token of every group, every X speaker) or sampling like the official
   evaluator (at most max_group tokens drawn per group each time a group is used, at most
   max_x_speakers X speakers per (context, speaker, a)), seeded here (the official code is not).
   Every triple's distances come from one DTW per token pair, computed once and reused by all the
   cells that need it, so exact mode costs one DTW per needed token pair.
   Confidence (bootstrap > 0): a 95 % percentile-bootstrap interval (Efron & Tibshirani 1993,
   ch. 13) over the test items, resampled in clusters by phonetic context: every cell belongs to
   one context (prev, next), and the tokens of a context are shared by many of its triples, so
   contexts (not triples or cells) are the independent units. Each resample draws as many
   contexts as were scored, with replacement; a context drawn k times weighs its cells k times in
   the same three-level average. The cells' errors are computed once, so a resample costs one
   pass over the cells, not a DTW.
   The result does not depend on the thread count (per-cell values, sequential reduction). */
typedef struct sv_abx_opts {
    int sample;             /* 0 exact, 1 sampling (default 1, the official evaluator's way) */
    size_t max_group;       /* tokens per group when sampling (official default 10) */
    size_t max_x_speakers;  /* X speakers per (context, speaker, phone) when sampling (official 5) */
    uint64_t seed;          /* sampling seed (default 0) */
    int within, across;     /* which conditions to compute (both 1 by default) */
    size_t bootstrap;       /* resamples of the contexts for the 95 % intervals (0: none, the default) */
} sv_abx_opts;

typedef struct sv_abx_result {
    double within, across;               /* percent error; NaN when no cell could be formed */
    size_t within_cells, across_cells;   /* cells scored */
    size_t within_pairs, across_pairs;   /* ordered phone pairs (a, b) in the final average */
    double within_triples, across_triples; /* (A, B, X) comparisons made */
    size_t n_tokens, n_dropped;          /* tokens used, tokens dropped (no frames) */
    size_t n_dtw;                        /* token-pair DTWs computed */
    int sampled;                         /* the mode used: 1 sampling, 0 exact */
    double within_lo, within_hi;         /* 95 % bootstrap interval over contexts (NaN: none) */
    double across_lo, across_hi;
    size_t within_contexts, across_contexts; /* contexts that scored cells (the bootstrap's units) */
} sv_abx_result;

SV_DEF sv_abx_opts sv_abx_default_opts(void);
/* feats[f] is [n_frames[f], dim] row-major for file f of the item set (files[f]); frame_shift in
   seconds (0.02 for 20 ms features). opts may be NULL (defaults). Features must be finite. */
SV_DEF int sv_abx(const sv_item_set *items, const float *const *feats, const size_t *n_frames,
                  size_t dim, double frame_shift, const sv_abx_opts *opts, sv_abx_result *out);

/* DTW of a frame-distance matrix dist [n, m] (row-major, n, m >= 1) with steps (i-1,j),
   (i-1,j-1), (i,j-1): the minimal summed cost divided by the length (number of cells) of the
   path traced back greedily from (n-1, m-1): diagonal if its cumulative cost is <= both others,
   else (i, j-1) if <= (i-1, j), else (i-1, j); once on the first row or column, straight to (0,0).
   work holds n*m doubles. Returns the normalised cost; *min_cost and *path_len may be NULL. */
SV_DEF double sv_dtw(const double *dist, size_t n, size_t m, double *work, double *min_cost,
                     size_t *path_len);
/* The ABX token distance d(A, X) for two tokens of raw (unnormalised) frames, rows = x:
   sv_dtw of the angular frame distances. NaN (and sv_last_error) on bad arguments. */
SV_DEF double sv_abx_distance(const float *x, size_t nx, const float *a, size_t na, size_t dim);

/* ---------------------------------------------------------------- 11.3 SVG figures
   Line plots written as plain SVG 1.1 (no plotting package): several named series, NaN (or, on
   a log axis, non-positive) y values leave gaps, linear or log10 y axis with ticks 1-2-5 / decades
   labelled like 0.1, 1, 10, vertical marker lines (e.g. the schedule switch), a legend right of
   the plot, colours from the Okabe-Ito palette combined with dash patterns so that no two of the
   first 32 series look alike; points are marked when a series has <= 40 of them (per-layer plots).
   Each series is one <path> element carrying data-name="<name>" and a <title>. Labels are
   XML-escaped. The file is written to path.tmp and renamed onto path. */
typedef struct sv_series {
    const char *name;        /* legend text (NULL: "series N") */
    const double *x, *y;     /* x NULL: 0, 1, 2, ... */
    size_t n;
} sv_series;

typedef struct sv_plot {
    const char *title, *xlabel, *ylabel;   /* any may be NULL */
    int log_y;                             /* 1: log10 y axis */
    const double *vlines; size_t n_vlines; /* x positions of vertical marker lines */
    const char *vline_label;               /* text written beside each marker line (may be NULL) */
    int width, height;                     /* pixels; 0: 760 x 460 */
    int integer_x;                         /* 1: x ticks on whole numbers only (e.g. layers) */
    /* zero the struct (memset) before filling it in: the fields below came later, and a zero
       field means "none" */
    const double *hlines; size_t n_hlines; /* y positions of horizontal reference lines (chance) */
    const char *hline_label;               /* text written above each reference line (may be NULL) */
    const char *const *xtick_names;        /* n_xtick_names labels for the whole x values */
    size_t n_xtick_names;                  /* xtick_first, xtick_first + 1, ... (e.g. CNN, L0, L1) */
    double xtick_first;
    const double *const *band_lo;          /* NULL, or per series i a band (e.g. a 95 % interval */
    const double *const *band_hi;          /* over seeds) band_lo[i][j]..band_hi[i][j] at x[j], shaded; */
                                           /* band_lo[i] NULL: no band for series i */
} sv_plot;

SV_DEF int sv_svg_plot(const char *path, const sv_plot *p, const sv_series *s, size_t n_series);

/* ---------------------------------------------------------------- 11.4 JSON lines
   Minimal readers for one line of a flat JSON object such as the library's training logs
   ({"step": 100, "loss_av": 3.2, "stage": "B"}). Only top-level keys are matched, compared
   byte for byte with the raw key text between the quotes (keys are not unescaped); nested
   values are skipped. Numbers are parsed with strtod (so the C locale's '.' is assumed).
   sv_json_number returns 1 when key holds a number, or null / NaN / Infinity / -Infinity (which
   Python's json module writes for non-finite floats): null and NaN give NaN. It returns 0 (and
   leaves *out alone) when the key is missing, holds another kind of value or the line is
   malformed up to that key. sv_json_string returns 1 when key holds a string and writes it,
   unescaped (\uXXXX to UTF-8), NUL-terminated and truncated to cap - 1 bytes, into buf; else 0.
   Neither sets sv_last_error: a missing key is an answer, not an error. */
SV_DEF int sv_json_number(const char *line, const char *key, double *out);
SV_DEF int sv_json_string(const char *line, const char *key, char *buf, size_t cap);

/* ---------------------------------------------------------------- 11.5 evaluation of a model
   The study's measurements on a trained model (retrieval, held-out losses, ABX), each one call:
   - sv_eval_retrieval: recall@1/5/10 both ways on a split, embeddings streamed in batches and the
     score matrix fed block by block to sv_recall_acc (memory: the embeddings, (n_images +
     n_captions) * E floats, plus one 256 x 1024 score block);
   - sv_eval_losses: held-out loss_AV and loss_AUD and the SSL health numbers, whatever the model
     was trained on (two passes per batch: alpha = 1 and alpha = 0);
   - sv_eval_abx: ABX error of every layer (CNN output, transformer input, layers 1..L) from ONE
     forward pass per file of the split's item set;
   Utterance preparation matches training: zero mean, unit variance per utterance
   (sv_normalize_wave on a copy), cropped to the first SV_EVAL_MAX_SAMPLES samples (8 s, the
   training crop) for retrieval and losses; ABX and the export use the whole utterance. */

#define SV_EVAL_MAX_SAMPLES 128000           /* 8 s at 16 kHz */
#define SV_ABX_MAX_LAYERS (SV_MAX_LAYERS + 2) /* cnn, L0, L1..L */

/* The evaluation calls report their progress through the context's hook (sv_ctx_set_progress). */

/* Recall@1/5/10 on split (SV_SPLIT_TEST or _VAL): images x captions of that split only (every
   utterance with an image row is a caption; every image used by one is an image), one-to-many.
   The score is the model's similarity (dot product, or cosine when cfg.sim_cosine). batch:
   utterances / images per forward (0: 16). Percent, as sv_recall documents. */
SV_DEF int sv_eval_retrieval(sv_model *m, sv_ctx *c, const sv_data *d, int split, size_t batch,
                             sv_recall *out);
/* The same, also giving every query's rank (sv_recall_acc_ranks; kmax 10): *i2s_rank gets
   *n_images entries (the split's images, in order of first use by its captions), *s2i_rank
   *n_captions (the split's utterances that have an image, in order). Free both with sv_io_free.
   For confidence intervals over test items (a bootstrap resamples queries). */
SV_DEF int sv_eval_retrieval_ranks(sv_model *m, sv_ctx *c, const sv_data *d, int split, size_t batch,
                                   sv_recall *out, size_t **i2s_rank, size_t *n_images,
                                   size_t **s2i_rank, size_t *n_captions);
/* Chance level of recall@k with n_images images and n_captions captions spread evenly over them
   (c = n_captions / n_images each): speech->image k / n_images; image->speech the probability
   that k captions drawn at random contain one of the image's c, 1 - C(n-c, k) / C(n, k). Percent. */
SV_DEF void sv_recall_chance(size_t n_images, size_t n_captions, size_t k, double *s2i, double *i2s);

/* Held-out losses on split, batches in file order ([k*batch, (k+1)*batch) utterances; at most
   max_batches of them, 0 = all). Eval mode (no dropout, argmax codes), no gradient, but span
   masking and negative sampling on, drawn from seed + batch index, so two calls with the same
   seed see the same masks and numbers are comparable across training steps. The context's RNG,
   training and grad flags are restored afterwards. Per batch: loss_AV with alpha = 1 (only when
   every utterance has an image and the batch holds >= 2) and loss_AUD with alpha = 0.
   out: loss_av, loss_aud, contrastive, diversity, feature_pen, accuracy, code_ppl, prob_ppl,
   mask_frac averaged over batches weighted by their utterances (NaN when never computed);
   n_masked the total; loss and tau are NaN (no joint loss; no temperature in eval mode). */
SV_DEF int sv_eval_losses(sv_model *m, sv_ctx *c, const sv_data *d, int split, size_t batch,
                          size_t max_batches, uint64_t seed, sv_stats *out);

/* ABX of one layer. layer -1 = CNN output ("cnn", C dims), 0 = transformer input ("L0", the
   projected features after the positional convolution), 1..L = transformer layer outputs
   ("L1".."L<L>"; layers 1..n_shared feed the VGS branch too). */
typedef struct sv_abx_layer_result {
    char name[8];
    int layer;
    size_t dim;
    sv_abx_result r;
} sv_abx_layer_result;

/* ABX per layer on the item set of split (d->has_items[split]). One forward per file named by
   the item set (sv_extract_all_layers: eval mode, whole utterance), every layer's frames kept,
   then sv_abx per layer (opt NULL: sv_abx_default_opts(), i.e. sampled like the official
   evaluator; res[i].r.sampled says which mode ran). res must hold SV_ABX_MAX_LAYERS entries;
   *n_layers gets L + 2 (cnn, L0..L). Frame shift = the CNN hop / 16 kHz (0.02 s).
   Memory: sum over files of T_f * (C + (L + 1) * D) floats; see sv_eval_abx_bytes. Files of the
   item set missing from the split, or shorter than the receptive field, have no features: their
   tokens are dropped (counted in r.n_dropped). The VGS branch's own layers are not offered: its
   ResDAVEnet output steps are 320 ms, too coarse for phone tokens. */
SV_DEF int sv_eval_abx(sv_model *m, sv_ctx *c, const sv_data *d, int split, const sv_abx_opts *opt,
                       sv_abx_layer_result *res, size_t *n_layers);
/* The feature memory sv_eval_abx will hold, in bytes (0 when the split has no items). */
SV_DEF size_t sv_eval_abx_bytes(const sv_model *m, const sv_data *d, int split);
/* The reference row of the ABX tables: ABX of MFCC features (sv_mfcc; mfcc NULL = HuBERT's 39
   dims at 20 ms, the features of MT4SSL's first offline targets) on the item set of split, whole
   utterances, frame shift frame_shift * subsample / sample_rate. res->name is "mfcc", res->layer
   -2. What a learned layer has to beat. */
SV_DEF int sv_eval_abx_mfcc(const sv_data *d, int split, const sv_mfcc_opts *mfcc, const sv_abx_opts *opt,
                            sv_abx_layer_result *res);

#ifndef SSL_VGS_NO_CORPUS
/* ======================================================================================
   12 The built-in corpus (optional)
   Synthetic spoken captions of generated pictures; define SSL_VGS_NO_CORPUS to leave it out.
   ======================================================================================
   A small stand-in for "SpokenCOCO + LibriSpeech" that needs nothing downloaded:

   - Pictures: RGB scenes of 1-3 shapes (6 shapes x 8 colours x 2 sizes) placed left/right/above/
     below one another, with jitter and pixel noise. The "regions" of the VGS image branch
     ([R, Dimg] features + [R, 4] boxes) come from a simulated frozen object detector, as the
     paper's come from Faster R-CNN: boxes around the objects and the background, features that
     encode shape, colour and size with noise. The raw patch pixels of a grid cut are an option.
   - Captions: a small grammar with synonyms and several word orders describes each picture
     ("a big red circle above a small blue box", "the tiny pink ring is to the left of the ...").
     Every word is predictable from the picture, which is what makes retrieval learnable.
   - Speech: a Klatt (1980) style source-filter formant synthesiser reads the captions: a glottal
     pulse source with jitter, shimmer, spectral tilt and breathiness, cascade resonators for
     vowels and sonorants, a parallel branch for frication and bursts, 39 ARPAbet phones.
     Speakers differ in F0, vocal-tract length, rate, breathiness and loudness; every utterance
     gets background noise at a random SNR. Phone and word boundaries are exact (by construction).
   - Splits: train, val (new pictures, training speakers), test (new pictures, new speakers) and an
     out-of-domain "ood" set (word lists and other carrier phrases by other new speakers) for ABX,
     mirroring "train on SpokenCOCO, test ABX on LibriSpeech".

   Deterministic: the same config and seed give bit-identical corpora for any thread count
   (each utterance is synthesised from sv_rng_fork(seed stream, utterance index)).

   Layout: utterances are stored split by split (train, val, test, ood); within a split, the
   captions of image i are the captions_per_image consecutive utterances starting at
   (i - image_begin[split]) * captions_per_image + split_begin[split]. Images are stored split by
   split too (train, val, test). */

#define SV_CORPUS_RATE 16000 /* sample rate of the synthetic speech, Hz */

/* Phone classes returned by sv_phone_class(). */
enum {
    SV_PHONE_VOWEL, SV_PHONE_DIPHTHONG, SV_PHONE_STOP, SV_PHONE_AFFRICATE, SV_PHONE_FRICATIVE,
    SV_PHONE_ASPIRATE, SV_PHONE_NASAL, SV_PHONE_LIQUID, SV_PHONE_GLIDE
};

/* What the pictures are made of. */
enum { SV_SHAPE_CIRCLE, SV_SHAPE_SQUARE, SV_SHAPE_TRIANGLE, SV_SHAPE_CROSS, SV_SHAPE_RING,
       SV_SHAPE_DIAMOND, SV_SHAPE_COUNT };
enum { SV_COLOUR_RED, SV_COLOUR_GREEN, SV_COLOUR_BLUE, SV_COLOUR_YELLOW, SV_COLOUR_ORANGE,
       SV_COLOUR_PURPLE, SV_COLOUR_PINK, SV_COLOUR_BEIGE, SV_COLOUR_COUNT };
enum { SV_REL_LEFT, SV_REL_RIGHT, SV_REL_ABOVE, SV_REL_BELOW }; /* object 0 relative to object 1 */

/* What an image region holds. The paper's VGS image branch reads 36 frozen Faster R-CNN region
   features per image: object-centred boxes whose features already say what the object is. The
   default here simulates such a detector: R proposals (jittered boxes around each object, and
   background boxes), each feature a fixed "detector code" of the shape, colour and size of the
   object the box covers, weighted by the overlap (IoU), plus noise. SV_REGIONS_PIXELS instead
   gives the raw patch pixels of a grid x grid cut, which a VGS model must learn to see from
   scratch (much slower: the tiny models stay near chance for 1000+ updates on it). */
enum { SV_REGIONS_DETECTOR, SV_REGIONS_PIXELS };

typedef struct sv_corpus_config {
    uint64_t seed;
    size_t n_train_images, n_val_images, n_test_images;
    size_t captions_per_image;    /* each caption of an image is read by a different speaker */
    size_t n_train_speakers;      /* read the train and val captions (val = new pictures, known voices) */
    size_t n_test_speakers;       /* read the test captions only */
    size_t n_ood_speakers;        /* read the out-of-domain utterances only */
    size_t n_ood_utts;
    int image_size;               /* square pictures, pixels per side */
    int grid;                     /* R = grid x grid regions; must divide image_size */
    int region_features;          /* SV_REGIONS_DETECTOR (default) or SV_REGIONS_PIXELS */
    float snr_db_min, snr_db_max; /* background noise, dB below the utterance RMS, drawn per utterance */
} sv_corpus_config;

/* One voice. All fields may be set by hand for sv_synth_phones(). */
typedef struct sv_speaker {
    char name[16];       /* e.g. "spk007f": unique in a corpus */
    int female;
    int split;           /* SV_SPLIT_TRAIN (also reads val), SV_SPLIT_TEST or SV_SPLIT_OOD */
    float f0;            /* mean fundamental frequency, Hz */
    float vtl_scale;     /* every formant is multiplied by this (shorter vocal tract: > 1) */
    float rate;          /* speaking rate: phone durations are divided by it */
    float breathiness;   /* 0..1, aspiration noise mixed into voicing */
    float jitter;        /* relative s.d. of the pitch period, per glottal pulse */
    float shimmer;       /* relative s.d. of the pulse amplitude */
    float tilt;          /* 0..0.9, one-pole low-pass on the glottal flow (steeper spectral tilt) */
    float open_quotient; /* open phase / period of the glottal pulse */
    float loudness_db;   /* output RMS relative to 0.1 (-20 dBFS) */
} sv_speaker;

typedef struct sv_segment { int label; double start, end; } sv_segment; /* seconds */

typedef struct sv_utt {
    char name[24];         /* "<split>_<index in split>", e.g. "ood_00012"; the ABX file name */
    float *audio;          /* [S] at SV_CORPUS_RATE, noisy, roughly -20 dBFS RMS */
    size_t n_samples;
    int split;
    int image;             /* index into the corpus images; -1 for ood */
    int speaker;           /* index into sv_corpus.speakers */
    float snr_db;          /* of the background noise added */
    char *text;            /* lower-case words separated by single spaces */
    sv_segment *phones;    /* label = phone id (sv_phone_name), sample-accurate times */
    size_t n_phones;
    sv_segment *words;     /* label = word id (sv_word_name); pauses fall between words */
    size_t n_words;
} sv_utt;

typedef struct sv_object {
    int shape, colour, big;   /* SV_SHAPE_*, SV_COLOUR_*, 0 small / 1 big */
    float cx, cy, r;          /* centre and radius, fractions of the image side (y down) */
} sv_object;

typedef struct sv_scene {
    int n_objects;            /* 1..3 */
    sv_object obj[3];
    int relation;             /* SV_REL_* of obj[0] relative to obj[1] (n_objects >= 2) */
} sv_scene;

typedef struct sv_corpus {
    sv_corpus_config cfg;
    sv_utt *utts; size_t n_utts;
    size_t split_begin[SV_SPLIT_COUNT + 1]; /* utterances of split s: [split_begin[s], split_begin[s+1]) */
    sv_speaker *speakers; size_t n_speakers;  /* train, then test, then ood speakers */
    size_t n_images;
    size_t image_begin[SV_SPLIT_COUNT + 1]; /* images of split s (none for ood) */
    int *image_split;      /* [N] */
    sv_scene *scenes;      /* [N] what each picture shows */
    float *images;         /* [N, H, W, 3] RGB in [0, 1] */
    float *regions;        /* [N, R, Dimg] detector features, or patch pixels (row, column, channel) in [-1, 1] */
    float *boxes;          /* [N, R, 4] region boxes (x1, y1, x2, y2) / image side */
    size_t n_regions, region_dim;
    double seconds[SV_SPLIT_COUNT];  /* total audio per split */
} sv_corpus;

/* Defaults: 400/50/100 images, 2 captions each, 28/6/6 speakers (40), 200 ood utterances,
   32x32 pictures, R = 16 regions of 192 values (4x4 grid of 8x8x3 patches), detector features,
   SNR 15-35 dB. About an hour of
   audio (~200 MB of floats). */
SV_DEF sv_corpus_config sv_corpus_default_config(void);
/* Builds the whole corpus in memory. NULL on a bad config or out of memory (sv_last_error). */
SV_DEF sv_corpus *sv_corpus_generate(const sv_corpus_config *cfg);
SV_DEF void sv_corpus_free(sv_corpus *c);
/* ZeroSpeech-style ABX triphone items of one split: every phone that has a phone directly before
   and after it in the same utterance (no pause between), file = utterance name, exact times.
   Phone table = the whole inventory (index = phone id). Fill *out (free with sv_item_set_free). */
SV_DEF int sv_corpus_items(const sv_corpus *c, int split, sv_item_set *out);

/* The phone inventory: 39 ARPAbet phones (CMU dictionary set without stress marks). */
SV_DEF int sv_phone_count(void);
SV_DEF const char *sv_phone_name(int id);         /* NULL when out of range */
SV_DEF int sv_phone_class(int id);                /* SV_PHONE_*, -1 when out of range */
SV_DEF int sv_phone_find(const char *name);       /* id or -1 */

/* The lexicon: caption words and out-of-domain words with their pronunciations. */
SV_DEF int sv_word_count(void);
SV_DEF const char *sv_word_name(int id);          /* NULL when out of range */
/* Writes up to cap phone ids of the word's pronunciation; returns the full count (0 if bad id). */
SV_DEF size_t sv_word_phones(int id, int *out, size_t cap);

/* A random plausible voice (F0, vocal-tract length, rate, ... as described at sv_speaker). */
SV_DEF sv_speaker sv_speaker_random(uint64_t seed, int female);
/* Synthesises a phone sequence on its own: phones[i] is a phone id, or -1 for a pause (150 ms
   times its stretch). stretch (NULL = all 1) multiplies each phone's duration. Returns the clean
   audio at SV_CORPUS_RATE (allocated with SV_MALLOC, free with SV_FREE), its length in
   *n_samples, and, if seg is not NULL, the n exact segments (pauses labelled -1).
   NULL on bad input or out of memory. */
SV_DEF float *sv_synth_phones(const sv_speaker *spk, const int *phones, const float *stretch,
                              size_t n, uint64_t seed, size_t *n_samples, sv_segment *seg);

/* Writes c into dir in the corpus folder layout of section 10.8 (creating dir, dir/wav, dir/align). Utterance ids are the
   corpus' utterance names ("train_00012"), speakers their names, alignment labels ARPAbet phones
   and lexicon words. Memory: one utterance's text at a time beyond the corpus itself.
   WAV files are 16-bit PCM, as LibriSpeech, SpokenCOCO and ZeroSpeech ship theirs and as every
   tool reads (Python's wave module cannot read float WAV): reading the folder back gives the
   in-memory audio within 1.5 / 32768 (half a 16-bit step, plus the writer's 32767 scale against
   the reader's 32768). sv_corpus_write_as with SV_WAV_FLOAT32 writes IEEE float32 instead, which
   reads back bit for bit. */
enum { SV_WAV_PCM16 = 0, SV_WAV_FLOAT32 = 1 };
SV_DEF int sv_corpus_write(const sv_corpus *c, const char *dir);
SV_DEF int sv_corpus_write_as(const sv_corpus *c, const char *dir, int wav_format);
/* A dataset (section 10.10) of a generated corpus, held in memory. */
SV_DEF int sv_data_builtin(sv_data *d, const sv_corpus_config *cfg);
#endif /* SSL_VGS_NO_CORPUS */

#ifdef __cplusplus
}
#endif
#endif /* SSL_VGS_H */

/* ======================================================================================
   IMPLEMENTATION
   ====================================================================================== */
#ifdef SSL_VGS_IMPLEMENTATION
#ifndef SSL_VGS_IMPLEMENTATION_DONE
#define SSL_VGS_IMPLEMENTATION_DONE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <math.h>
#include <float.h>
#include <limits.h>
#include <errno.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(SV_MALLOC) && !defined(SV_FREE) || !defined(SV_MALLOC) && defined(SV_FREE)
#error "ssl_vgs.h: define both SV_MALLOC and SV_FREE, or neither"
#endif
#ifndef SV_MALLOC
#define SV_MALLOC(sz) malloc(sz)
#define SV_FREE(p) free(p)
#endif
#ifndef SV_ASSERT
#include <assert.h>
#define SV_ASSERT(x) assert(x)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SV__THREAD_LOCAL __thread
#define SV__UNUSED __attribute__((unused))
#define SV__RESTRICT __restrict__
#elif defined(_MSC_VER)
#define SV__THREAD_LOCAL __declspec(thread)
#define SV__UNUSED
#define SV__RESTRICT __restrict
#else
#define SV__THREAD_LOCAL
#define SV__UNUSED
#define SV__RESTRICT
#endif

/* OpenMP pragmas through a macro, so builds without OpenMP see no unknown-pragma warnings:
   SV__OMP(parallel for if (n > 4096)) */
#define SV__PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define SV__OMP(x) SV__PRAGMA(omp x)
#else
#define SV__OMP(x)
#endif

#ifdef __cplusplus
#define SV__CAST(T, x) ((T)(x))
#else
#define SV__CAST(T, x) (x)
#endif

/* ======================================================================================
   1 Platform
   ====================================================================================== */
/* ---------------------------------------------------------------- 1.1 errors */
static SV__THREAD_LOCAL char sv__errbuf[512];
static SV__THREAD_LOCAL int sv__errcode;

SV_DEF const char *sv_last_error(void) { return sv__errbuf; }
SV_DEF int sv_last_status(void) { return sv__errcode; }
SV_DEF void sv_clear_error(void) { sv__errbuf[0] = 0; sv__errcode = SV_OK; }

/* Record an error and return its code, so call sites read `return sv__fail(SV_ERR_ARG, ...)`. */
static SV__UNUSED int sv__fail(int code, const char *fmt, ...)
{
    va_list ap;
    char msg[sizeof sv__errbuf];   /* the arguments may include sv_last_error() itself */
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(sv__errbuf, msg, sizeof msg);
    sv__errcode = code;
    return code;
}

/* Overflow-checked size arithmetic for anything derived from untrusted input. */
static SV__UNUSED int sv__mul_ok(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* a * b * c * d, or SIZE_MAX when it overflows size_t. Scratch sizes derived from tensor shapes
   go through it: on a 32-bit build (size_t of 4 GB) a wrapped product would allocate a small
   buffer and overrun it; SIZE_MAX is a request every allocator here refuses with a clear error. */
static SV__UNUSED size_t sv__prod4(size_t a, size_t b, size_t c, size_t d)
{
    size_t p;
    if (!sv__mul_ok(a, b, &p) || !sv__mul_ok(p, c, &p) || !sv__mul_ok(p, d, &p)) return SIZE_MAX;
    return p;
}

/* The words for a request that cannot be met: on a 32-bit build, a hint that it cannot be. */
static SV__UNUSED const char *sv__addr_hint(size_t n)
{
    if (sizeof(size_t) >= 8 || n < ((size_t)1 << 30)) return "";
    return n == SIZE_MAX ? " (more than a 32-bit build can address: use a 64-bit build, or a smaller batch or crop)"
                         : " (a 32-bit build addresses at most 4 GB: use a 64-bit build, or a smaller batch or crop)";
}

static SV__UNUSED void *sv__alloc(size_t n, const char *what)
{
    void *p = n && n != SIZE_MAX ? SV_MALLOC(n) : NULL;
    if (n == SIZE_MAX) sv__fail(SV_ERR_NOMEM, "size overflow allocating %s%s", what, sv__addr_hint(n));
    else if (n && !p) sv__fail(SV_ERR_NOMEM, "out of memory allocating %zu bytes for %s%s", n, what, sv__addr_hint(n));
    return p;
}

static SV__UNUSED void *sv__calloc(size_t count, size_t size, const char *what)
{
    size_t n;
    void *p;
    if (!sv__mul_ok(count, size, &n)) {
        sv__fail(SV_ERR_NOMEM, "size overflow allocating %zu x %zu bytes for %s%s", count, size, what, sv__addr_hint(SIZE_MAX));
        return NULL;
    }
    p = sv__alloc(n, what);
    if (p) memset(p, 0, n);
    return p;
}

/* Transparent huge pages for the big long-lived buffers (the arena, the parameter store, the
   GEMM's packing buffers). With 4 KB pages the step's working set (~600 MB for `small`) is far
   beyond what the TLB maps (a few thousand entries, ~12 MB), and under a hypervisor every miss
   is a two-level page walk; one 2 MB page covers what 512 small ones did. Linux gives them
   only to ranges marked MADV_HUGEPAGE when /sys/kernel/mm/transparent_hugepage/enabled is
   "madvise" (Debian's default), so the 2 MB-aligned interior of the buffer is marked before it
   is first touched. A hint only: any failure is ignored, and other systems (or
   SV_NO_HUGEPAGES) skip it. -std=c99 hides madvise and its constant; 14 is MADV_HUGEPAGE on
   x86 and ARM Linux. */
#define SV__HUGE_PAGE ((size_t)2 << 20)
#if defined(__linux__) && !defined(SV_NO_HUGEPAGES) && \
    (defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__))
#if defined(__cplusplus)
#include <sys/mman.h>
#else
extern int madvise(void *, size_t, int);
#endif
#define SV__MADV_HUGEPAGE 14
#define SV__HAVE_HUGEPAGES 1
#endif

/* The 2 MB pages wholly inside [p, p + bytes): *lo = first page start, return = bytes covered
   (0: none). Separate from the call so the rounding can be tested anywhere. */
static SV__UNUSED size_t sv__huge_range(uintptr_t p, size_t bytes, uintptr_t *lo)
{
    uintptr_t a = (p + SV__HUGE_PAGE - 1) & ~(uintptr_t)(SV__HUGE_PAGE - 1);
    uintptr_t b = (p + bytes) & ~(uintptr_t)(SV__HUGE_PAGE - 1);
    *lo = a;
    return b > a ? (size_t)(b - a) : 0;
}

static SV__UNUSED void sv__advise_huge(void *p, size_t bytes)
{
#ifdef SV__HAVE_HUGEPAGES
    uintptr_t lo;
    size_t n = p && bytes >= 2 * SV__HUGE_PAGE ? sv__huge_range((uintptr_t)p, bytes, &lo) : 0;
    if (n) (void)madvise((void *)lo, n, SV__MADV_HUGEPAGE);
#else
    (void)p; (void)bytes;
#endif
}

/* ---------------------------------------------------------------- 1.2 threads */
static int sv__nthreads = 0; /* 0: OpenMP's default */

SV_DEF void sv_set_threads(int n)
{
    sv__nthreads = n > 0 ? n : 0;
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#endif
}

SV_DEF int sv_get_threads(void)
{
#ifdef _OPENMP
    return sv__nthreads > 0 ? sv__nthreads : omp_get_max_threads();
#else
    return 1;
#endif
}

/* Wall-clock seconds (the op profiler). */
static double sv__now(void)
{
#if defined(_OPENMP)
    return omp_get_wtime();
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && defined(TIME_UTC)
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#else
    return (double)clock() / CLOCKS_PER_SEC; /* CPU time: only a fallback */
#endif
}

/* ---------------------------------------------------------------- 1.3 RNG */
static uint64_t sv__splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

SV_DEF void sv_rng_seed(sv_rng *r, uint64_t seed)
{
    int i;
    for (i = 0; i < 4; i++) r->s[i] = sv__splitmix64(&seed);
}

static uint64_t sv__rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

SV_DEF uint64_t sv_rng_next(sv_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = sv__rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = sv__rotl(s[3], 45);
    return result;
}

/* Counter-based uniform in [0,1): element i of the stream `key`, the splitmix64 finaliser of
   key + (i + 1) * golden ratio (Steele et al. 2014). Any thread can draw any element, so masks
   filled in parallel are the same for every thread count. 24 bits, exact in a float. */
static float sv__hash_uniformf(uint64_t key, uint64_t i)
{
    uint64_t z = key + i * 0x9E3779B97F4A7C15ull;   /* sv__splitmix64 adds the (i + 1)-th step */
    return (float)(sv__splitmix64(&z) >> 40) * (1.0f / 16777216.0f);
}

SV_DEF double sv_rng_uniform(sv_rng *r) { return (double)(sv_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }
SV_DEF float sv_rng_uniformf(sv_rng *r) { return (float)(sv_rng_next(r) >> 40) * (1.0f / 16777216.0f); }

SV_DEF float sv_rng_normal(sv_rng *r)
{
    double u1 = 1.0 - sv_rng_uniform(r); /* (0,1]: log is finite */
    double u2 = sv_rng_uniform(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

SV_DEF size_t sv_rng_below(sv_rng *r, size_t n)
{
    /* Lemire's nearly-divisionless method would need 128-bit products; rejection on the
       top of the range is portable and just as unbiased. */
    uint64_t lim, x;
    SV_ASSERT(n > 0);
    lim = UINT64_MAX - (UINT64_MAX % (uint64_t)n);
    do x = sv_rng_next(r); while (x >= lim);
    return (size_t)(x % (uint64_t)n);
}

/* SM(SM(key ^ c) + x * golden ratio) with SM the splitmix64 step: SM is a bijection of its
   state and x -> x * (odd constant) one of 64-bit words, so distinct x stay distinct. */
SV_DEF uint64_t sv_rng_key(uint64_t key, uint64_t x)
{
    uint64_t s = key ^ 0x6A09E667F3BCC909ull, z = sv__splitmix64(&s);
    s = z + x * 0x9E3779B97F4A7C15ull;
    return sv__splitmix64(&s);
}

SV_DEF sv_rng sv_rng_fork(const sv_rng *r, uint64_t stream)
{
    sv_rng c;
    uint64_t seed = r->s[0] ^ sv__rotl(r->s[1], 13) ^ sv__rotl(r->s[2], 29) ^ sv__rotl(r->s[3], 43);
    seed ^= 0xD1B54A32D192ED03ull * (stream + 1);
    sv_rng_seed(&c, seed);
    return c;
}

SV_DEF void sv_item_set_free(sv_item_set *s)
{
    size_t i;
    if (!s) return;
    for (i = 0; i < s->n_files; i++) SV_FREE(s->files[i]);
    for (i = 0; i < s->n_phones; i++) SV_FREE(s->phones[i]);
    for (i = 0; i < s->n_speakers; i++) SV_FREE(s->speakers[i]);
    SV_FREE(s->files);
    SV_FREE(s->phones);
    SV_FREE(s->speakers);
    SV_FREE(s->items);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- 1.4 SIMD macro table
   One vector path is chosen at compile time: AVX-512F, AVX2+FMA, NEON (aarch64) or none
   (SV_NO_SIMD forces none). Kernels are written once against these generic names:
     SV_VW lanes (0: no SIMD), sv__vf the vector type, SV_VZERO(), SV_VSET1(x),
     SV_VLOAD/SV_VSTORE (aligned), SV_VLOADU/SV_VSTOREU (unaligned),
     SV_VLOADN(p,n)/SV_VSTOREN(p,v,n) the first n < SV_VW lanes (others load as 0, are not stored),
     SV_VLOADM(p,m)/SV_VSTOREM(p,v,m) m <= SV_VW lanes (a full vector or the masked tail),
     SV_VADD SV_VSUB SV_VMUL SV_VDIV, SV_VFMA(a,b,c) = a*b+c, SV_VFNMA(a,b,c) = c-a*b,
     SV_VMAX/SV_VMIN (when an operand is NaN the result is unspecified, except that
     SV_VMAX(c, x) and SV_VMIN(c, x) with a NaN x give NaN), SV_VABS, SV_VFLOOR,
     SV_VSEL_GT(a,b,x,y) lane-wise a > b ? x : y, SV_VEXP2I(n) = 2^n for integral n in
     [-126,127], SV_VLDEXP(p,n) = p * 2^n rounded once (integral n in [-150,128], |p| < 2:
     subnormal and overflowing results round as IEEE multiplication does),
     SV_VREDUCE_ADD(v), SV_VREDUCE_MAX(v) to a float. */
#if !defined(SV_NO_SIMD) && defined(__AVX512F__)
/* g++ 12 warns falsely inside the AVX-512 intrinsics (GCC bug 105593, _mm512_undefined_ps). */
#if defined(__cplusplus) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
#define SV_SIMD_NAME "avx512"
#define SV_VW 16
typedef __m512 sv__vf;
#define SV_VZERO() _mm512_setzero_ps()
#define SV_VSET1(x) _mm512_set1_ps(x)
#define SV_VLOAD(p) _mm512_load_ps(p)
#define SV_VLOADU(p) _mm512_loadu_ps(p)
#define SV_VSTORE(p, v) _mm512_store_ps(p, v)
#define SV_VSTOREU(p, v) _mm512_storeu_ps(p, v)
#define SV__MASK16(n) ((__mmask16)((1u << (n)) - 1u))
#define SV_VLOADN(p, n) _mm512_maskz_loadu_ps(SV__MASK16(n), p)
#define SV_VSTOREN(p, v, n) _mm512_mask_storeu_ps(p, SV__MASK16(n), v)
#define SV_VADD(a, b) _mm512_add_ps(a, b)
#define SV_VSUB(a, b) _mm512_sub_ps(a, b)
#define SV_VMUL(a, b) _mm512_mul_ps(a, b)
#define SV_VDIV(a, b) _mm512_div_ps(a, b)
#define SV_VSQRT(a) _mm512_sqrt_ps(a)
#define SV_VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define SV_VFNMA(a, b, c) _mm512_fnmadd_ps(a, b, c)
#define SV_VMAX(a, b) _mm512_max_ps(a, b)
#define SV_VMIN(a, b) _mm512_min_ps(a, b)
#define SV_VABS(a) _mm512_abs_ps(a)
#define SV_VFLOOR(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define SV_VSEL_GT(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GT_OQ), y, x)
#define SV_VEXP2I(n) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32( \
    _mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
/* VSCALEFPS: one instruction, and one rounding like the two-step product below */
#define SV_VLDEXP(p, n) _mm512_scalef_ps(p, n)
#define SV_VREDUCE_ADD(v) _mm512_reduce_add_ps(v)
#define SV_VREDUCE_MAX(v) _mm512_reduce_max_ps(v)

#elif !defined(SV_NO_SIMD) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define SV_SIMD_NAME "avx2+fma"
#define SV_VW 8
typedef __m256 sv__vf;
#define SV_VZERO() _mm256_setzero_ps()
#define SV_VSET1(x) _mm256_set1_ps(x)
#define SV_VLOAD(p) _mm256_load_ps(p)
#define SV_VLOADU(p) _mm256_loadu_ps(p)
#define SV_VSTORE(p, v) _mm256_store_ps(p, v)
#define SV_VSTOREU(p, v) _mm256_storeu_ps(p, v)
#define SV__MASK8(n) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), \
    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define SV_VLOADN(p, n) _mm256_maskload_ps(p, SV__MASK8(n))
#define SV_VSTOREN(p, v, n) _mm256_maskstore_ps(p, SV__MASK8(n), v)
#define SV_VADD(a, b) _mm256_add_ps(a, b)
#define SV_VSUB(a, b) _mm256_sub_ps(a, b)
#define SV_VMUL(a, b) _mm256_mul_ps(a, b)
#define SV_VDIV(a, b) _mm256_div_ps(a, b)
#define SV_VSQRT(a) _mm256_sqrt_ps(a)
#define SV_VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define SV_VFNMA(a, b, c) _mm256_fnmadd_ps(a, b, c)
#define SV_VMAX(a, b) _mm256_max_ps(a, b)
#define SV_VMIN(a, b) _mm256_min_ps(a, b)
#define SV_VABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a)
#define SV_VFLOOR(a) _mm256_floor_ps(a)
#define SV_VSEL_GT(a, b, x, y) _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_GT_OQ))
#define SV_VEXP2I(n) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32( \
    _mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
static inline float sv__hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float sv__hmax8(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#define SV_VREDUCE_ADD(v) sv__hsum8(v)
#define SV_VREDUCE_MAX(v) sv__hmax8(v)

#elif !defined(SV_NO_SIMD) && defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>
#define SV_SIMD_NAME "neon"
#define SV_VW 4
typedef float32x4_t sv__vf;
#define SV_VZERO() vdupq_n_f32(0.0f)
#define SV_VSET1(x) vdupq_n_f32(x)
#define SV_VLOAD(p) vld1q_f32(p)
#define SV_VLOADU(p) vld1q_f32(p)
#define SV_VSTORE(p, v) vst1q_f32(p, v)
#define SV_VSTOREU(p, v) vst1q_f32(p, v)
static inline float32x4_t sv__loadn4(const float *p, size_t n)
{
    float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    size_t i;
    for (i = 0; i < n; i++) t[i] = p[i];
    return vld1q_f32(t);
}
static inline void sv__storen4(float *p, float32x4_t v, size_t n)
{
    float t[4];
    size_t i;
    vst1q_f32(t, v);
    for (i = 0; i < n; i++) p[i] = t[i];
}
#define SV_VLOADN(p, n) sv__loadn4(p, n)
#define SV_VSTOREN(p, v, n) sv__storen4(p, v, n)
#define SV_VADD(a, b) vaddq_f32(a, b)
#define SV_VSUB(a, b) vsubq_f32(a, b)
#define SV_VMUL(a, b) vmulq_f32(a, b)
#define SV_VDIV(a, b) vdivq_f32(a, b)
#define SV_VSQRT(a) vsqrtq_f32(a)
#define SV_VFMA(a, b, c) vfmaq_f32(c, a, b)
#define SV_VFNMA(a, b, c) vfmsq_f32(c, a, b)
#define SV_VMAX(a, b) vmaxq_f32(a, b)
#define SV_VMIN(a, b) vminq_f32(a, b)
#define SV_VABS(a) vabsq_f32(a)
#define SV_VFLOOR(a) vrndmq_f32(a)
#define SV_VSEL_GT(a, b, x, y) vbslq_f32(vcgtq_f32(a, b), x, y)
#define SV_VEXP2I(n) vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), \
    vdupq_n_s32(127)), 23))
#define SV_VREDUCE_ADD(v) vaddvq_f32(v)
#define SV_VREDUCE_MAX(v) vmaxvq_f32(v)

#else
#define SV_SIMD_NAME "scalar"
#define SV_VW 0
#endif
#if SV_VW > 0 && !defined(SV_VLDEXP)
/* 2^floor(n/2) then 2^(n - floor(n/2)): both factors are normal, the first product is exact,
   so the second is the only rounding */
static inline sv__vf sv__vldexp_2step(sv__vf p, sv__vf n)
{
    sv__vf n1 = SV_VFLOOR(SV_VMUL(n, SV_VSET1(0.5f)));
    return SV_VMUL(SV_VMUL(p, SV_VEXP2I(n1)), SV_VEXP2I(SV_VSUB(n, n1)));
}
#define SV_VLDEXP(p, n) sv__vldexp_2step(p, n)
#endif

/* Run-time switch to the scalar bodies (global, documented in the API: tests and benchmarks
   flip it; it is read, never written, by the kernels). */
static int sv__simd_on = 1;

SV_DEF const char *sv_simd_name(void) { return sv__simd_on ? SV_SIMD_NAME : "scalar"; }
SV_DEF void sv_set_simd(int on) { sv__simd_on = on ? 1 : 0; }
SV_DEF int sv_get_simd(void) { return SV_VW > 0 && sv__simd_on; }

/* Work (elements or flops) below which a kernel stays on one thread. */
#define SV__PAR_MIN 32768

#if SV_VW > 0
/* Load/store m <= SV_VW lanes: a full vector, or the masked tail. */
#define SV_VLOADM(p, m) ((m) == SV_VW ? SV_VLOADU(p) : SV_VLOADN(p, m))
#define SV_VSTOREM(p, v, m) do { \
        if ((m) == SV_VW) SV_VSTOREU(p, v); else SV_VSTOREN(p, v, m); } while (0)
#endif

/* ======================================================================================
   2 Kernels
   ====================================================================================== */
/* ---------------------------------------------------------------- 2.1 GEMM
   Goto/BLIS-style packed GEMM (Goto & van de Geijn, "Anatomy of high-performance matrix
   multiplication", TOMS 2008; Van Zee & van de Geijn, BLIS, TOMS 2015):
       for jc in N step NC:            B panel KC x NC packed
         for pc in K step KC:          (K is never split across threads: bit-identical results)
           for ic in M step MC:        A block MC x KC packed (stays in L2)
             for jr in NC step NR:     B micro-panel KC x NR stays in L1
               for ir in MC step MR:   micro-kernel: MR x NR register tile, rank-1 updates over kc
   Each C element is accumulated by one fused multiply-add chain in k order starting from 0 within
   a KC block, then C = alpha*acc + beta*C (beta = 1 for the later KC blocks). Edge tiles use the
   same micro-kernel on zero-padded packed data with masked stores, so the arithmetic of an
   element does not depend on where tile or thread boundaries fall.
   Threads take contiguous MR-aligned row ranges (or NR-aligned column ranges when N is the longer
   side) and each runs the serial algorithm with its own packing buffers.
   Where the ISA has one (AVX-512), a second micro-kernel reads full MR-row slivers of a
   row-major A in place instead of from the packed block: with the model's narrow N (256
   channels) the A copy was 10-20 % of the product. It runs the same multiply-add chains, so
   the bits do not change.
   bf16 (sv_gemm_bf16, mixed precision as in Kalamkar et al., "A study of BFLOAT16 for deep
   learning training", 2019): the same loops and blocking, but the packers round A and B to
   bfloat16 and store them as pairs along k, one 32-bit word holding op(X)[., 2p] in its low and
   op(X)[., 2p+1] in its high half (an odd K block is padded with a zero pair half). The
   micro-kernel then takes one k pair per step with VDPBF16PS (AVX512-BF16), which for each fp32
   lane adds a[2p+1]*b[2p+1], then a[2p]*b[2p], to the accumulator: two products per
   instruction where an fp32 FMA does one. A is always packed (it must be rounded). KC blocks
   hold an even number of k, so the pairing depends on K only. The scalar emulation
   (sv__dpbf16) uses the same packed layout and gives the same bits. */

/* kc: k steps of the packed operands (k pairs for bf16) */
typedef void (*sv__ukr_fn)(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                           int mr, int nr, float alpha, float beta);
/* The same micro-kernel reading a full MR-row sliver of a row-major A in place (row i at
   a + i*lda): no packing, the same multiply-add chains, so the same bits as the packed one. */
typedef void (*sv__ukr_direct_fn)(size_t kc, const float *a, size_t lda, const float *b, float *c,
                                  size_t ldc, int nr, float alpha, float beta);
typedef void (*sv__packa_fn)(float *dst, const float *A, size_t lda, int transA, size_t i0,
                             size_t mc, size_t k0, size_t kc, int MR);
typedef void (*sv__packb_fn)(float *dst, const float *B, size_t ldb, int transB, size_t k0,
                             size_t kc, size_t j0, size_t nr, int NR);

typedef struct sv__gemm_cfg {
    int mr, nr;
    int bf16;            /* packed operands are bf16 pairs along k (32-bit words) */
    size_t kc, mc, nc;   /* mc is a multiple of mr, nc of nr */
    sv__ukr_fn ukr;
    sv__ukr_direct_fn ukr_direct;   /* NULL: A is always packed */
    sv__packa_fn pack_a;
    sv__packb_fn pack_b;
} sv__gemm_cfg;

/* Generic packers. A sliver: dst[k*MR + r] = op(A)[i0+r, k0+k] for mc rows in slivers of MR
   (zero-padded); B micro-panel: dst[k*NR + j] = op(B)[k0+k, j0+j] (zero-padded to NR). */
static void sv__pack_a_generic(float *dst, const float *A, size_t lda, int transA, size_t i0,
                               size_t mc, size_t k0, size_t kc, int MR)
{
    size_t is, k;
    int r;
    for (is = 0; is < mc; is += (size_t)MR) {
        int mr = (int)(mc - is < (size_t)MR ? mc - is : (size_t)MR);
        float *d = dst + is * kc;
        if (transA) {
            for (k = 0; k < kc; k++) {
                const float *s = A + (k0 + k) * lda + i0 + is;
                for (r = 0; r < mr; r++) d[k * (size_t)MR + (size_t)r] = s[r];
                for (; r < MR; r++) d[k * (size_t)MR + (size_t)r] = 0.0f;
            }
        } else {
            for (r = 0; r < mr; r++) {
                const float *s = A + (i0 + is + (size_t)r) * lda + k0;
                for (k = 0; k < kc; k++) d[k * (size_t)MR + (size_t)r] = s[k];
            }
            for (; r < MR; r++)
                for (k = 0; k < kc; k++) d[k * (size_t)MR + (size_t)r] = 0.0f;
        }
    }
}

static void sv__pack_b_generic(float *dst, const float *B, size_t ldb, int transB, size_t k0,
                               size_t kc, size_t j0, size_t nr, int NR)
{
    size_t k, j;
    if (transB) {
        for (j = 0; j < nr; j++) {
            const float *s = B + (j0 + j) * ldb + k0;
            for (k = 0; k < kc; k++) dst[k * (size_t)NR + j] = s[k];
        }
        for (; j < (size_t)NR; j++)
            for (k = 0; k < kc; k++) dst[k * (size_t)NR + j] = 0.0f;
    } else {
        for (k = 0; k < kc; k++) {
            const float *s = B + (k0 + k) * ldb + j0;
            float *d = dst + k * (size_t)NR;
            for (j = 0; j < nr; j++) d[j] = s[j];
            for (; j < (size_t)NR; j++) d[j] = 0.0f;
        }
    }
}

#if defined(__GNUC__) || defined(__clang__)
#define SV__PREFETCH(p) __builtin_prefetch(p, 0, 2)
#else
#define SV__PREFETCH(p) ((void)(p))
#endif

/* Scalar micro-kernel, 4 x 16; written so a compiler may vectorise it, but with no intrinsics. */
#define SV__MR_S 4
#define SV__NR_S 16
static void sv__ukr_scalar(size_t kc, const float *SV__RESTRICT a, const float *SV__RESTRICT b,
                           float *c, size_t ldc, int mr, int nr, float alpha, float beta)
{
    float acc[SV__MR_S][SV__NR_S];
    size_t k;
    int i, j;
    memset(acc, 0, sizeof acc);
    for (k = 0; k < kc; k++) {
        for (i = 0; i < SV__MR_S; i++) {
            float ai = a[i];
            for (j = 0; j < SV__NR_S; j++) acc[i][j] += ai * b[j];
        }
        a += SV__MR_S;
        b += SV__NR_S;
    }
    for (i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        if (beta == 0.0f)
            for (j = 0; j < nr; j++) ci[j] = alpha * acc[i][j];
        else
            for (j = 0; j < nr; j++) ci[j] = alpha * acc[i][j] + beta * ci[j];
    }
}

/* bfloat16: the top 16 bits of an fp32. fp32 -> bf16 rounds to nearest even; a subnormal becomes
   a signed zero and a NaN stays a quiet NaN. This is VCVTNE2PS2BF16 bit for bit (checked against
   it in the tests), and zeroing subnormals loses nothing: VDPBF16PS reads them as zero. */
static uint32_t sv__bf16_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu)) return (u >> 16) | 0x40u;
    if ((u & 0x7F800000u) == 0) return (u >> 16) & 0x8000u;
    return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
}

SV_DEF float sv_bf16_round(float x)
{
    uint32_t u = sv__bf16_bits(x) << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The packed word of a k pair: op(X)[., 2p] in the low half, op(X)[., 2p+1] in the high half. */
static uint32_t sv__bf16_pair(float even, float odd) { return sv__bf16_bits(even) | sv__bf16_bits(odd) << 16; }

/* Scalar emulation of one lane of VDPBF16PS (Intel SDM, "VDPBF16PS"; the same bits on AMD Zen):
   acc += a.odd * b.odd, then acc += a.even * b.even, each an fp32 fused multiply-add (the
   product of two bf16 is exact in it) rounded to nearest even, a subnormal result flushed to a
   signed zero. Subnormal inputs are read as zero (none come from the packers, and the
   accumulators start at 0 and are flushed). */
static float sv__bf16_ftz(float x) { return fabsf(x) < FLT_MIN ? x * 0.0f : x; }
static float sv__bf16_hi(uint32_t w) { float f; w &= 0xFFFF0000u; memcpy(&f, &w, sizeof f); return f; }
static float sv__bf16_lo(uint32_t w) { float f; w <<= 16; memcpy(&f, &w, sizeof f); return f; }
static float sv__dpbf16(float acc, uint32_t a, uint32_t b)
{
    acc = sv__bf16_ftz(fmaf(sv__bf16_hi(a), sv__bf16_hi(b), sv__bf16_ftz(acc)));
    return sv__bf16_ftz(fmaf(sv__bf16_lo(a), sv__bf16_lo(b), acc));
}

/* Generic bf16 packers, the layout of the fp32 ones with k pairs for k: A sliver
   dst[p*MR + r] = pair(op(A)[i0+r, k0+2p], op(A)[i0+r, k0+2p+1]), B micro-panel
   dst[p*NR + j] = pair(op(B)[k0+2p, j0+j], op(B)[k0+2p+1, j0+j]); k0+2p+1 = k0+kc reads as 0. */
static void sv__pack_a_bf16_generic(float *dst_, const float *A, size_t lda, int transA, size_t i0,
                                    size_t mc, size_t k0, size_t kc, int MR)
{
    uint32_t *dst = (uint32_t *)(void *)dst_;
    size_t kp = (kc + 1) / 2, is, p;
    int r;
    for (is = 0; is < mc; is += (size_t)MR) {
        int mr = (int)(mc - is < (size_t)MR ? mc - is : (size_t)MR);
        uint32_t *d = dst + is * kp;
        for (p = 0; p < kp; p++) {
            size_t k = k0 + 2 * p;
            int odd = 2 * p + 1 < kc;
            for (r = 0; r < mr; r++) {
                size_t i = i0 + is + (size_t)r;
                float e = transA ? A[k * lda + i] : A[i * lda + k];
                float o = odd ? (transA ? A[(k + 1) * lda + i] : A[i * lda + k + 1]) : 0.0f;
                d[p * (size_t)MR + (size_t)r] = sv__bf16_pair(e, o);
            }
            for (; r < MR; r++) d[p * (size_t)MR + (size_t)r] = 0;
        }
    }
}

static void sv__pack_b_bf16_generic(float *dst_, const float *B, size_t ldb, int transB, size_t k0,
                                    size_t kc, size_t j0, size_t nr, int NR)
{
    uint32_t *dst = (uint32_t *)(void *)dst_;
    size_t kp = (kc + 1) / 2, p, j;
    for (p = 0; p < kp; p++) {
        size_t k = k0 + 2 * p;
        int odd = 2 * p + 1 < kc;
        for (j = 0; j < nr; j++) {
            size_t jj = j0 + j;
            float e = transB ? B[jj * ldb + k] : B[k * ldb + jj];
            float o = odd ? (transB ? B[jj * ldb + k + 1] : B[(k + 1) * ldb + jj]) : 0.0f;
            dst[p * (size_t)NR + j] = sv__bf16_pair(e, o);
        }
        for (; j < (size_t)NR; j++) dst[p * (size_t)NR + j] = 0;
    }
}

/* Scalar bf16 micro-kernel on the AVX-512 kernel's 14 x 32 tile and packed layout: each C
   element gets the instruction's chain over the k pairs, then the same C update as the
   AVX-512 store (alpha*acc, or fma(acc, alpha, beta*C)). */
#define SV__MR_BF16 14
#define SV__NR_BF16 32
#define SV__KC_BF16 384   /* the K blocking decides the bits: the same on every build */
static void sv__ukr_bf16_scalar(size_t kp, const float *a_, const float *b_, float *c, size_t ldc,
                                int mr, int nr, float alpha, float beta)
{
    const uint32_t *a = (const uint32_t *)(const void *)a_, *b = (const uint32_t *)(const void *)b_;
    float acc[SV__MR_BF16][SV__NR_BF16];
    size_t p;
    int i, j;
    memset(acc, 0, sizeof acc);
    for (p = 0; p < kp; p++, a += SV__MR_BF16, b += SV__NR_BF16)
        for (i = 0; i < mr; i++)
            for (j = 0; j < nr; j++) acc[i][j] = sv__dpbf16(acc[i][j], a[i], b[j]);
    for (i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        for (j = 0; j < nr; j++) ci[j] = beta == 0.0f ? alpha * acc[i][j] : fmaf(acc[i][j], alpha, beta * ci[j]);
    }
}

#if SV_VW == 16
/* AVX-512 micro-kernel, 14 x 32: 28 zmm accumulators, two B vectors per k and 14 broadcasts of
   A (folded into the FMAs as embedded broadcasts), i.e. 28 FMAs per 16 loads. */
#define SV__MR 14
#define SV__NR 32
#define SV__KC 384  /* tuned on Zen 5: the A block (MC x KC, 516 KB) stays in the 1 MB L2 */
#define SV__MC (14 * 24)
#define SV__NC 3072
/* The C tile update shared by both AVX-512 micro-kernels: C = alpha*acc + beta*C, masked to
   mr rows and nr columns. */
#define SV__AVX512_STORE_TILE() do { \
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta); \
    SV__ST(0) SV__ST(1) SV__ST(2) SV__ST(3) SV__ST(4) SV__ST(5) SV__ST(6) \
    SV__ST(7) SV__ST(8) SV__ST(9) SV__ST(10) SV__ST(11) SV__ST(12) SV__ST(13) } while (0)
#define SV__ST(i) if (i < mr) { float *ci = c + (size_t)i * ldc; \
        if (beta == 0.0f) { \
            _mm512_mask_storeu_ps(ci, m0, _mm512_mul_ps(va, c##i##a)); \
            _mm512_mask_storeu_ps(ci + 16, m1, _mm512_mul_ps(va, c##i##b)); \
        } else { \
            _mm512_mask_storeu_ps(ci, m0, _mm512_fmadd_ps(c##i##a, va, \
                _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m0, ci)))); \
            _mm512_mask_storeu_ps(ci + 16, m1, _mm512_fmadd_ps(c##i##b, va, \
                _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16)))); \
        } }
#define SV__AVX512_ACCUMULATORS \
    __m512 c0a = _mm512_setzero_ps(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a; \
    __m512 c3a = c0a, c3b = c0a, c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a, c6a = c0a; \
    __m512 c6b = c0a, c7a = c0a, c7b = c0a, c8a = c0a, c8b = c0a, c9a = c0a, c9b = c0a; \
    __m512 c10a = c0a, c10b = c0a, c11a = c0a, c11b = c0a, c12a = c0a, c12b = c0a, c13a = c0a; \
    __m512 c13b = c0a; \
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFFu : (1u << nr) - 1u); \
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFFu : nr <= 16 ? 0u : (1u << (nr - 16)) - 1u)
/* one k step of row i: A value x broadcast, times both B vectors (ROW16: the first only) */
#define SV__AVX512_ROW(i, x) { __m512 ai = _mm512_set1_ps(x); \
        c##i##a = _mm512_fmadd_ps(ai, b0, c##i##a); c##i##b = _mm512_fmadd_ps(ai, b1, c##i##b); }
#define SV__AVX512_ROW16(i, x) { c##i##a = _mm512_fmadd_ps(_mm512_set1_ps(x), b0, c##i##a); }
/* the B vectors of one k step: both, or the first only (panels of at most 16 columns) */
#define SV__AVX512_B01 b0 = _mm512_load_ps(b); b1 = _mm512_load_ps(b + 16);
#define SV__AVX512_B0 b0 = _mm512_load_ps(b);

/* Fetch the C tile while the k loop runs; with a short k loop (e.g. K = 10, the first conv
   layer) a write-intent prefetch of every line of the tile measured ~15% faster. */
#define SV__AVX512_PREFETCH_C(short_k) do { \
    if (short_k) { \
        for (i = 0; i < mr; i++) { \
            __builtin_prefetch(c + (size_t)i * ldc, 1, 3); \
            __builtin_prefetch(c + (size_t)i * ldc + 16, 1, 3); \
            __builtin_prefetch(c + (size_t)i * ldc + 31, 1, 3); \
        } \
    } else { \
        for (i = 0; i < mr; i++) { \
            _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0); \
            _mm_prefetch((const char *)(c + (size_t)i * ldc + 31), _MM_HINT_T0); \
        } \
    } } while (0)

/* The k loop over a packed 14 x 32 tile (a: 14 A values per k, b: 32 B values), in the variant
   that skips the FMAs whose results would not be stored: at most 16 columns (the positional
   conv's 16-channel groups) use only the first B vector (LOAD_B0, ROW16), at most 7 rows (the
   last sliver of M = 256 or 101) only rows 0-6. The rows that run keep their chains, so the bits
   do not change. Shared by the fp32 and bf16 micro-kernels (KN: their k count). */
#define SV__ROWS_0_6(R) R(0, a[0]) R(1, a[1]) R(2, a[2]) R(3, a[3]) R(4, a[4]) R(5, a[5]) R(6, a[6])
#define SV__ROWS_7_13(R) R(7, a[7]) R(8, a[8]) R(9, a[9]) R(10, a[10]) R(11, a[11]) R(12, a[12]) R(13, a[13])
#define SV__TILE_K_LOOP(KN, LOAD_B0, LOAD_B01, ROW16, ROW)                                               \
    if (nr <= 16 && mr <= 7)                                                                            \
        for (k = 0; k < (KN); k++, a += 14, b += 32) { LOAD_B0 SV__ROWS_0_6(ROW16) }                     \
    else if (nr <= 16)                                                                                  \
        for (k = 0; k < (KN); k++, a += 14, b += 32) { LOAD_B0 SV__ROWS_0_6(ROW16) SV__ROWS_7_13(ROW16) } \
    else if (mr <= 7)                                                                                   \
        for (k = 0; k < (KN); k++, a += 14, b += 32) { LOAD_B01 SV__ROWS_0_6(ROW) }                      \
    else                                                                                                \
        for (k = 0; k < (KN); k++, a += 14, b += 32) { LOAD_B01 SV__ROWS_0_6(ROW) SV__ROWS_7_13(ROW) }

static void sv__ukr_avx512(size_t kc, const float *SV__RESTRICT a, const float *SV__RESTRICT b,
                           float *c, size_t ldc, int mr, int nr, float alpha, float beta)
{
    SV__AVX512_ACCUMULATORS;
    __m512 b0, b1;
    size_t k;
    int i;
    SV__AVX512_PREFETCH_C(kc < 64);
    SV__TILE_K_LOOP(kc, SV__AVX512_B0, SV__AVX512_B01, SV__AVX512_ROW16, SV__AVX512_ROW)
    SV__AVX512_STORE_TILE();
}

/* A read in place: 14 row streams. Packing A costs a copy of it per B panel pass, 10-20 % of
   the product when N is small (the CNN's 256 channels: 3199 x 256 x 768 went from 179 to 197
   GFLOP/s on one core). Row i is addressed as base + offset with two bases (rows 0 and 7) and
   offsets 0, R, 2R, 3R, 4R, 5R, 6R (R = lda in bytes, x86 scaled addressing), so the 14
   streams need five registers, not fourteen. */
static void sv__ukr_avx512_direct(size_t kc, const float *a, size_t lda, const float *SV__RESTRICT b,
                                  float *c, size_t ldc, int nr, float alpha, float beta)
{
    const int mr = 14;
    SV__AVX512_ACCUMULATORS;
    __m512 b0, b1;
    size_t k, R1 = lda * sizeof(float), R3 = 3 * R1, R5 = 5 * R1;
    const char *p0 = (const char *)a, *p7 = (const char *)(a + 7 * lda);
    int i;
    for (i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)i * ldc + 31), _MM_HINT_T0);
    }
#define SV__AT(p, off) (*(const float *)((p) + (off)))
#define SV__K_LOOP(LOAD_B, ROWS) \
    for (k = 0; k < kc; k++, p0 += sizeof(float), p7 += sizeof(float), b += 32) { LOAD_B ROWS }
#define SV__ROWS_0_13(R) R(0, SV__AT(p0, 0)) R(1, SV__AT(p0, R1)) R(2, SV__AT(p0, 2 * R1)) R(3, SV__AT(p0, R3)) \
    R(4, SV__AT(p0, 4 * R1)) R(5, SV__AT(p0, R5)) R(6, SV__AT(p0, 2 * R3)) R(7, SV__AT(p7, 0)) R(8, SV__AT(p7, R1)) \
    R(9, SV__AT(p7, 2 * R1)) R(10, SV__AT(p7, R3)) R(11, SV__AT(p7, 4 * R1)) R(12, SV__AT(p7, R5)) R(13, SV__AT(p7, 2 * R3))
    if (nr <= 16) SV__K_LOOP(SV__AVX512_B0, SV__ROWS_0_13(SV__AVX512_ROW16))
    else SV__K_LOOP(SV__AVX512_B01, SV__ROWS_0_13(SV__AVX512_ROW))
#undef SV__K_LOOP
#undef SV__ROWS_0_13
#undef SV__AT
    SV__AVX512_STORE_TILE();
}

#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#define SV__HAVE_BF16 1
/* The bf16 micro-kernel, 14 x 32 like the fp32 one: per k pair two B vectors (32 columns x 2 k)
   and 14 broadcast A pair words, 28 VDPBF16PS, i.e. twice the products of the fp32 k step for
   the same instruction count. The row and column cuts are those of the fp32 kernel. */
#define SV__BF16_ROW(i, x) { __m512bh ai = (__m512bh)_mm512_set1_epi32((int)(x)); \
        c##i##a = _mm512_dpbf16_ps(c##i##a, ai, b0); c##i##b = _mm512_dpbf16_ps(c##i##b, ai, b1); }
#define SV__BF16_ROW16(i, x) { c##i##a = _mm512_dpbf16_ps(c##i##a, (__m512bh)_mm512_set1_epi32((int)(x)), b0); }
#define SV__BF16_B01 b0 = (__m512bh)_mm512_load_si512(b); b1 = (__m512bh)_mm512_load_si512(b + 16);
#define SV__BF16_B0 b0 = (__m512bh)_mm512_load_si512(b);
static void sv__ukr_bf16_avx512(size_t kp, const float *a_, const float *b_, float *c, size_t ldc,
                                int mr, int nr, float alpha, float beta)
{
    const uint32_t *SV__RESTRICT a = (const uint32_t *)(const void *)a_;
    const uint32_t *SV__RESTRICT b = (const uint32_t *)(const void *)b_;
    SV__AVX512_ACCUMULATORS;
    __m512bh b0, b1;
    size_t k;
    int i;
    SV__AVX512_PREFETCH_C(kp < 32);
    SV__TILE_K_LOOP(kp, SV__BF16_B0, SV__BF16_B01, SV__BF16_ROW16, SV__BF16_ROW)
    SV__AVX512_STORE_TILE();
}
#undef SV__BF16_ROW
#undef SV__BF16_ROW16
#undef SV__BF16_B01
#undef SV__BF16_B0
#endif
#undef SV__TILE_K_LOOP
#undef SV__ROWS_0_6
#undef SV__ROWS_7_13
#undef SV__AVX512_ROW
#undef SV__AVX512_ROW16
#undef SV__AVX512_B01
#undef SV__AVX512_B0
#undef SV__AVX512_ACCUMULATORS
#undef SV__AVX512_STORE_TILE
#undef SV__AVX512_PREFETCH_C
#undef SV__ST

/* In-register transpose of 16 rows of 16 floats (unpack within 128-bit lanes, then shuffle the
   4x4 grid of 128-bit blocks). */
static inline void sv__tr16x16(__m512 r[16])
{
    __m512 t[16], u[16];
    int g, c;
    for (g = 0; g < 8; g++) {
        t[2 * g] = _mm512_unpacklo_ps(r[2 * g], r[2 * g + 1]);
        t[2 * g + 1] = _mm512_unpackhi_ps(r[2 * g], r[2 * g + 1]);
    }
    for (g = 0; g < 4; g++) {
        u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        r[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
        r[8 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
}

/* Transposing copy: for rows s + j*lds (j < nrows <= 16), columns k < kc, write
   dst[k*dstride + j] for j < width (rows beyond nrows as 0). */
static void sv__pack_tr16(float *dst, size_t dstride, int width, const float *s, size_t lds,
                          int nrows, size_t kc)
{
    __mmask16 wm = (__mmask16)((1u << width) - 1u);
    __m512 r[16];
    size_t k;
    int j, kk;
    for (k = 0; k < kc; k += 16) {
        int kn = (int)(kc - k < 16 ? kc - k : 16);
        __mmask16 km = (__mmask16)((1u << kn) - 1u);
        for (j = 0; j < nrows; j++) r[j] = _mm512_maskz_loadu_ps(km, s + (size_t)j * lds + k);
        for (; j < 16; j++) r[j] = _mm512_setzero_ps();
        sv__tr16x16(r);
        for (kk = 0; kk < kn; kk++)
            _mm512_mask_storeu_ps(dst + (k + (size_t)kk) * dstride, wm, r[kk]);
    }
}

static void sv__pack_a_avx512(float *dst, const float *A, size_t lda, int transA, size_t i0,
                              size_t mc, size_t k0, size_t kc, int MR)
{
    size_t is, k;
    (void)MR;
    for (is = 0; is < mc; is += SV__MR) {
        int mr = (int)(mc - is < SV__MR ? mc - is : SV__MR);
        float *d = dst + is * kc;
        if (transA) {
            __mmask16 m = (__mmask16)((1u << mr) - 1u);
            const float *s = A + k0 * lda + i0 + is;
            for (k = 0; k < kc; k++)
                _mm512_mask_storeu_ps(d + k * SV__MR, 0x3FFF,
                                      _mm512_maskz_loadu_ps(m, s + k * lda));
        } else {
            sv__pack_tr16(d, SV__MR, SV__MR, A + (i0 + is) * lda + k0, lda, mr, kc);
        }
    }
}

static void sv__pack_b_avx512(float *dst, const float *B, size_t ldb, int transB, size_t k0,
                              size_t kc, size_t j0, size_t nr, int NR)
{
    size_t k;
    (void)NR;
    /* A panel of at most 16 columns fills only the first half of each 32-float row: the
       micro-kernels then run their 16-column loop, which never reads the second half. */
    if (transB) {
        int n0 = (int)(nr < 16 ? nr : 16), n1 = (int)(nr > 16 ? nr - 16 : 0);
        sv__pack_tr16(dst, SV__NR, 16, B + j0 * ldb + k0, ldb, n0, kc);
        if (n1 > 0) sv__pack_tr16(dst + 16, SV__NR, 16, B + (j0 + 16) * ldb + k0, ldb, n1, kc);
    } else if (nr <= 16) {
        const float *s = B + k0 * ldb + j0;
        __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFFu : (1u << nr) - 1u);
        for (k = 0; k < kc; k++) _mm512_store_ps(dst + k * SV__NR, _mm512_maskz_loadu_ps(m0, s + k * ldb));
    } else {
        const float *s = B + k0 * ldb + j0;
        if (nr == SV__NR) {
            for (k = 0; k < kc; k++) {
                _mm512_store_ps(dst + k * SV__NR, _mm512_loadu_ps(s + k * ldb));
                _mm512_store_ps(dst + k * SV__NR + 16, _mm512_loadu_ps(s + k * ldb + 16));
            }
        } else {
            __mmask16 m1 = (__mmask16)((1u << (nr - 16)) - 1u);
            for (k = 0; k < kc; k++) {
                _mm512_store_ps(dst + k * SV__NR, _mm512_loadu_ps(s + k * ldb));
                _mm512_store_ps(dst + k * SV__NR + 16, _mm512_maskz_loadu_ps(m1, s + k * ldb + 16));
            }
        }
    }
}
#ifdef SV__HAVE_BF16
/* 32 floats of a row (the first kn of them, the rest as 0) as 16 bf16 pair words: VCVTNE2PS2BF16
   writes its second operand's 16 values to the low half, so word q holds floats 2q and 2q+1. */
static inline __m512i sv__bf16_pairs32(const float *s, int kn)
{
    __mmask16 lo = (__mmask16)(kn >= 16 ? 0xFFFFu : (1u << kn) - 1u);
    __mmask16 hi = (__mmask16)(kn >= 32 ? 0xFFFFu : kn <= 16 ? 0u : (1u << (kn - 16)) - 1u);
    return (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, s + 16), _mm512_maskz_loadu_ps(lo, s));
}

/* Pair words of two rows, 16 columns each (the first n; the rest 0): word j = (e[j], o[j]).
   The conversion puts e's 16 values in words 0-15 and o's in 16-31; one word permutation
   interleaves them. */
static inline __m512i sv__bf16_interleave16(const float *e, const float *o, int n)
{
    const __m512i ix = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                        23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    __mmask16 m = (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
    __m512 ve = _mm512_maskz_loadu_ps(m, e), vo = o ? _mm512_maskz_loadu_ps(m, o) : _mm512_setzero_ps();
    return _mm512_permutexvar_epi16(ix, (__m512i)_mm512_cvtne2ps_pbh(vo, ve));
}

/* Rows s + j*lds (j < nrows <= 16), columns k < kc, as pair words transposed: dst[p*dstride + j]
   = pair(row j, k 2p and 2p+1) for j < width (rows past nrows as 0). */
static void sv__pack_tr16_bf16(uint32_t *dst, size_t dstride, int width, const float *s, size_t lds,
                               int nrows, size_t kc)
{
    __mmask16 wm = (__mmask16)((1u << width) - 1u);
    __m512 r[16];
    size_t k;
    int j, pp;
    for (k = 0; k < kc; k += 32) {
        int kn = (int)(kc - k < 32 ? kc - k : 32), np = (kn + 1) / 2;
        for (j = 0; j < nrows; j++) r[j] = _mm512_castsi512_ps(sv__bf16_pairs32(s + (size_t)j * lds + k, kn));
        for (; j < 16; j++) r[j] = _mm512_setzero_ps();
        sv__tr16x16(r);
        for (pp = 0; pp < np; pp++)
            _mm512_mask_storeu_epi32(dst + (k / 2 + (size_t)pp) * dstride, wm, _mm512_castps_si512(r[pp]));
    }
}

static void sv__pack_a_bf16_avx512(float *dst_, const float *A, size_t lda, int transA, size_t i0,
                                   size_t mc, size_t k0, size_t kc, int MR)
{
    uint32_t *dst = (uint32_t *)(void *)dst_;
    size_t kp = (kc + 1) / 2, is, p;
    (void)MR;
    for (is = 0; is < mc; is += SV__MR) {
        int mr = (int)(mc - is < SV__MR ? mc - is : SV__MR);
        uint32_t *d = dst + is * kp;
        if (transA) {
            const float *s = A + k0 * lda + i0 + is;
            for (p = 0; p < kp; p++)
                _mm512_mask_storeu_epi32(d + p * SV__MR, 0x3FFF,
                    sv__bf16_interleave16(s + 2 * p * lda, 2 * p + 1 < kc ? s + (2 * p + 1) * lda : NULL, mr));
        } else {
            sv__pack_tr16_bf16(d, SV__MR, SV__MR, A + (i0 + is) * lda + k0, lda, mr, kc);
        }
    }
}

static void sv__pack_b_bf16_avx512(float *dst_, const float *B, size_t ldb, int transB, size_t k0,
                                   size_t kc, size_t j0, size_t nr, int NR)
{
    uint32_t *dst = (uint32_t *)(void *)dst_;
    size_t kp = (kc + 1) / 2, p;
    (void)NR;
    if (transB) {
        int n0 = (int)(nr < 16 ? nr : 16), n1 = (int)(nr > 16 ? nr - 16 : 0);
        sv__pack_tr16_bf16(dst, SV__NR, 16, B + j0 * ldb + k0, ldb, n0, kc);
        if (n1 > 0) sv__pack_tr16_bf16(dst + 16, SV__NR, 16, B + (j0 + 16) * ldb + k0, ldb, n1, kc);
    } else {
        /* as the fp32 packer, a panel of at most 16 columns fills only the first half */
        const float *s = B + k0 * ldb + j0;
        int n0 = (int)(nr < 16 ? nr : 16), n1 = (int)(nr > 16 ? nr - 16 : 0);
        for (p = 0; p < kp; p++) {
            const float *e = s + 2 * p * ldb, *o = 2 * p + 1 < kc ? e + ldb : NULL;
            _mm512_store_si512(dst + p * SV__NR, sv__bf16_interleave16(e, o, n0));
            if (n1 > 0) _mm512_store_si512(dst + p * SV__NR + 16, sv__bf16_interleave16(e + 16, o ? o + 16 : NULL, n1));
        }
    }
}
#endif
#define SV__UKR sv__ukr_avx512
#define SV__UKR_DIRECT sv__ukr_avx512_direct
#define SV__PACKA sv__pack_a_avx512
#define SV__PACKB sv__pack_b_avx512

#elif SV_VW == 8
/* AVX2+FMA micro-kernel, 6 x 16: 12 ymm accumulators, 2 B vectors and one broadcast per row. */
#define SV__MR 6
#define SV__NR 16
#define SV__KC 256
#define SV__MC (6 * 24)
#define SV__NC 3072
static void sv__ukr_avx2(size_t kc, const float *SV__RESTRICT a, const float *SV__RESTRICT b,
                         float *c, size_t ldc, int mr, int nr, float alpha, float beta)
{
    /* named accumulators: an array here makes gcc keep them in memory */
    __m256 c0a = _mm256_setzero_ps(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a;
    __m256 c3a = c0a, c3b = c0a, c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a, b0, b1;
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    size_t k;
#define SV__ROW8(i) { __m256 ai = _mm256_broadcast_ss(a + i); \
        c##i##a = _mm256_fmadd_ps(ai, b0, c##i##a); c##i##b = _mm256_fmadd_ps(ai, b1, c##i##b); }
    for (k = 0; k < kc; k++) {
        b0 = _mm256_load_ps(b);
        b1 = _mm256_load_ps(b + 8);
        SV__ROW8(0) SV__ROW8(1) SV__ROW8(2) SV__ROW8(3) SV__ROW8(4) SV__ROW8(5)
        a += 6;
        b += 16;
    }
#undef SV__ROW8
#define SV__ST8(i) if (i < mr) { float *ci = c + (size_t)i * ldc; \
        if (nr == 16) { \
            if (beta == 0.0f) { \
                _mm256_storeu_ps(ci, _mm256_mul_ps(va, c##i##a)); \
                _mm256_storeu_ps(ci + 8, _mm256_mul_ps(va, c##i##b)); \
            } else { \
                _mm256_storeu_ps(ci, _mm256_fmadd_ps(c##i##a, va, \
                    _mm256_mul_ps(vb, _mm256_loadu_ps(ci)))); \
                _mm256_storeu_ps(ci + 8, _mm256_fmadd_ps(c##i##b, va, \
                    _mm256_mul_ps(vb, _mm256_loadu_ps(ci + 8)))); \
            } \
        } else { \
            float t_[16]; int j_; \
            _mm256_storeu_ps(t_, c##i##a); _mm256_storeu_ps(t_ + 8, c##i##b); \
            for (j_ = 0; j_ < nr; j_++) \
                ci[j_] = beta == 0.0f ? alpha * t_[j_] : fmaf(t_[j_], alpha, beta * ci[j_]); \
        } }
    SV__ST8(0) SV__ST8(1) SV__ST8(2) SV__ST8(3) SV__ST8(4) SV__ST8(5)
#undef SV__ST8
}
#define SV__UKR sv__ukr_avx2
#define SV__PACKA sv__pack_a_generic
#define SV__PACKB sv__pack_b_generic

#elif SV_VW == 4
/* NEON micro-kernel, 8 x 12: 24 q-register accumulators, A read as two vectors and used by lane.
   (Compiled only on aarch64; not benchmarked.) */
#define SV__MR 8
#define SV__NR 12
#define SV__KC 256
#define SV__MC (8 * 16)
#define SV__NC 3072
static void sv__ukr_neon(size_t kc, const float *SV__RESTRICT a, const float *SV__RESTRICT b,
                         float *c, size_t ldc, int mr, int nr, float alpha, float beta)
{
    float32x4_t acc[8][3];
    float tile[12];
    size_t k;
    int i, j;
    for (i = 0; i < 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = vdupq_n_f32(0.0f);
    for (k = 0; k < kc; k++) {
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
#define SV__NROW(i, av, l) acc[i][0] = vfmaq_laneq_f32(acc[i][0], b0, av, l); \
        acc[i][1] = vfmaq_laneq_f32(acc[i][1], b1, av, l); \
        acc[i][2] = vfmaq_laneq_f32(acc[i][2], b2, av, l);
        SV__NROW(0, a0, 0) SV__NROW(1, a0, 1) SV__NROW(2, a0, 2) SV__NROW(3, a0, 3)
        SV__NROW(4, a1, 0) SV__NROW(5, a1, 1) SV__NROW(6, a1, 2) SV__NROW(7, a1, 3)
#undef SV__NROW
        a += 8;
        b += 12;
    }
    for (i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        vst1q_f32(tile, acc[i][0]);
        vst1q_f32(tile + 4, acc[i][1]);
        vst1q_f32(tile + 8, acc[i][2]);
        for (j = 0; j < nr; j++)
            ci[j] = beta == 0.0f ? alpha * tile[j] : fmaf(tile[j], alpha, beta * ci[j]);
    }
}
#define SV__UKR sv__ukr_neon
#define SV__PACKA sv__pack_a_generic
#define SV__PACKB sv__pack_b_generic
#endif

/* Test hook: 0 packs A even where the micro-kernel could read it in place. */
static int sv__gemm_direct_a = 1;

static sv__gemm_cfg sv__gemm_config(int bf16)
{
    sv__gemm_cfg g;
    (void)sv__gemm_direct_a;   /* read only where the ISA has a direct micro-kernel */
    g.bf16 = bf16;
    g.ukr_direct = NULL;
    if (bf16) {
        /* the kernel's tile and packed layout whether it runs or is emulated; the KC blocking,
           which decides the bits, is the same everywhere */
        g.mr = SV__MR_BF16; g.nr = SV__NR_BF16; g.kc = SV__KC_BF16; g.mc = SV__MR_BF16 * 24; g.nc = 3072;
#ifdef SV__HAVE_BF16
        if (sv__simd_on) {
            g.ukr = sv__ukr_bf16_avx512; g.pack_a = sv__pack_a_bf16_avx512; g.pack_b = sv__pack_b_bf16_avx512;
            return g;
        }
#endif
        g.ukr = sv__ukr_bf16_scalar; g.pack_a = sv__pack_a_bf16_generic; g.pack_b = sv__pack_b_bf16_generic;
        return g;
    }
#if SV_VW > 0
    if (sv__simd_on) {
        g.mr = SV__MR; g.nr = SV__NR; g.kc = SV__KC; g.mc = SV__MC; g.nc = SV__NC;
        g.ukr = SV__UKR; g.pack_a = SV__PACKA; g.pack_b = SV__PACKB;
#ifdef SV__UKR_DIRECT
        g.ukr_direct = sv__gemm_direct_a ? SV__UKR_DIRECT : NULL;
#endif
        return g;
    }
#endif
    g.mr = SV__MR_S; g.nr = SV__NR_S; g.kc = 256; g.mc = SV__MR_S * 32; g.nc = 2048;
    g.ukr = sv__ukr_scalar; g.pack_a = sv__pack_a_generic; g.pack_b = sv__pack_b_generic;
    return g;
}

SV_DEF int sv_bf16_native(void)
{
#ifdef SV__HAVE_BF16
    return sv__simd_on;
#else
    return 0;
#endif
}

/* Packing buffers of the calling thread: per worker thread [B panel kc x nc | A block mc x kc],
   64-byte aligned, grow-only (documented global state: freed by sv_gemm_release). Team threads
   use slices of the caller's buffer, so concurrent callers never share one. */
static SV__THREAD_LOCAL void *sv__gemm_raw;
static SV__THREAD_LOCAL size_t sv__gemm_cap; /* floats */

static float *sv__gemm_buffer(size_t nfloats)
{
    if (nfloats > sv__gemm_cap) {
        void *p;
        size_t bytes;
        if (!sv__mul_ok(nfloats, sizeof(float), &bytes) || bytes > SIZE_MAX - 64) return NULL;
        p = SV_MALLOC(bytes + 64);
        if (!p) return NULL;
        sv__advise_huge(p, bytes + 64);
        SV_FREE(sv__gemm_raw);
        sv__gemm_raw = p;
        sv__gemm_cap = nfloats;
    }
    return SV__CAST(float *, (void *)(((uintptr_t)sv__gemm_raw + 63) & ~(uintptr_t)63));
}

SV_DEF void sv_gemm_release(void)
{
    SV_FREE(sv__gemm_raw);
    sv__gemm_raw = NULL;
    sv__gemm_cap = 0;
}

typedef struct sv__gemm_args {
    sv__gemm_cfg g;
    int transA, transB, split_m;
    size_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C, *buf;
    size_t bsize, asize; /* floats of one thread's B panel and A block (multiples of 16) */
} sv__gemm_args;

/* Reading A in place streams MR rows lda floats apart. When that stride is a multiple of 4 KB,
   all the rows fall into one set of the L1 (its set index is address bits 6-11, 12 ways) and
   evict each other at every k step: 800 x 256 x 1024 (the FFN's second product) ran at 245-311
   GFLOP/s in place against 365-381 packed on two threads in most isolated runs (123 against 185
   on one); packed was never the slower of the two at such strides. A stride of 2 KB
   spreads the rows over two sets and reads in place at full speed (the CNN's 512-float window
   stride: 395 vs 373 packed). Packing gives the same bits, so this only picks the faster. */
static int sv__gemm_direct_ok(size_t lda) { return (lda * sizeof(float)) % 4096 != 0; }

/* K in equal blocks of at most kc (K = 800: 3 x 267, not 384 + 384 + 32, whose short last block
   would pay a full C update for little work); for bf16 an even number of k per block, so that
   pairs never straddle blocks. Depends on K only. */
static size_t sv__gemm_kblock(const sv__gemm_cfg *g, size_t K)
{
    size_t nkb = (K + g->kc - 1) / g->kc, kcb = (K + nkb - 1) / nkb;
    return g->bf16 ? kcb + (kcb & 1) : kcb;
}

/* The serial blocked algorithm on the sub-problem C[i0:i1, j0:j1], with one thread's buffers. */
static void sv__gemm_block(const sv__gemm_args *p, float *pb, float *pa, size_t i0, size_t i1,
                           size_t j0, size_t j1)
{
    const sv__gemm_cfg *g = &p->g;
    size_t MR = (size_t)g->mr, NR = (size_t)g->nr, kcb = sv__gemm_kblock(g, p->K);
    size_t jc, pc, ic, jr, ir;
    for (jc = j0; jc < j1; jc += g->nc) {
        size_t nc = j1 - jc < g->nc ? j1 - jc : g->nc;
        for (pc = 0; pc < p->K; pc += kcb) {
            size_t kc = p->K - pc < kcb ? p->K - pc : kcb;
            size_t kp = g->bf16 ? (kc + 1) / 2 : kc;   /* packed depth: k steps or k pairs */
            float bet = pc == 0 ? p->beta : 1.0f;
            for (jr = 0; jr < nc; jr += NR)
                g->pack_b(pb + jr * kp, p->B, p->ldb, p->transB, pc, kc, jc + jr,
                          nc - jr < NR ? nc - jr : NR, g->nr);
            for (ic = i0; ic < i1; ic += g->mc) {
                size_t mc = i1 - ic < g->mc ? i1 - ic : g->mc;
                size_t inext = ic + mc, mnext = i1 - inext < g->mc ? i1 - inext : g->mc;
                size_t npf = inext < i1 ? (p->transA ? kc : mnext) : 0, pf = 0;
                /* full MR-row slivers of a row-major A are read in place; the rest is packed */
                size_t mdir = g->ukr_direct && !p->transA && sv__gemm_direct_ok(p->lda) ? mc / MR * MR : 0;
                if (mdir < mc) g->pack_a(pa + mdir * kp, p->A, p->lda, p->transA, ic + mdir, mc - mdir, pc, kc, g->mr);
                for (jr = 0; jr < nc; jr += NR) {
                    int nr = (int)(nc - jr < NR ? nc - jr : NR);
                    /* Prefetch the next A block's source rows, a slice per micro-panel, so
                       that packing it does not wait for DRAM (matters when M is large). */
                    size_t pf_end = npf * (jr + NR) / nc;
                    for (; pf < pf_end && pf < npf; pf++) {
                        const float *src = p->transA ? p->A + (pc + pf) * p->lda + inext
                                                     : p->A + (inext + pf) * p->lda + pc;
                        const char *row = (const char *)src;
                        size_t bytes = (p->transA ? mnext : kc) * sizeof(float), o;
                        for (o = 0; o < bytes; o += 64) SV__PREFETCH(row + o);
                    }
                    for (ir = 0; ir < mc; ir += MR) {
                        float *ct = p->C + (ic + ir) * p->ldc + jc + jr;
                        if (ir < mdir)
                            g->ukr_direct(kc, p->A + (ic + ir) * p->lda + pc, p->lda, pb + jr * kc, ct, p->ldc, nr,
                                          p->alpha, bet);
                        else
                            g->ukr(kp, pa + ir * kp, pb + jr * kp, ct, p->ldc, (int)(mc - ir < MR ? mc - ir : MR), nr,
                                   p->alpha, bet);
                    }
                }
            }
        }
    }
}

/* Thread tid of nth takes an equal contiguous slice of MR-row (split_m) or NR-column units and
   runs the serial algorithm on it with its own buffers: no barriers, so a descheduled thread
   never stalls the others mid-product. Every C element is computed by one thread with the same
   kernel calls in the same k order wherever the cuts fall, so the result does not depend on
   the thread count (nor on a team smaller than asked for, under nested OpenMP). */
static void sv__gemm_worker(const sv__gemm_args *p, int tid, int nth)
{
    size_t u = p->split_m ? (size_t)p->g.mr : (size_t)p->g.nr;
    size_t len = p->split_m ? p->M : p->N;
    size_t units = (len + u - 1) / u;
    size_t lo = units * (size_t)tid / (size_t)nth * u, hi = units * (size_t)(tid + 1) / (size_t)nth * u;
    float *pb = p->buf + (size_t)tid * (p->bsize + p->asize);
    if (hi > len) hi = len;
    if (lo >= hi) return;
    if (p->split_m) sv__gemm_block(p, pb, pb + p->bsize, lo, hi, 0, p->N);
    else sv__gemm_block(p, pb, pb + p->bsize, 0, p->M, lo, hi);
}

/* Unpacked product for small problems, with the arithmetic of the packed path: per C element
   and block of k (K in equal blocks of at most kc, as sv__gemm_block cuts it) one multiply-add
   chain from 0 in k order (fused with SIMD, as the vector micro-kernels; plain with the scalar
   kernel), then C = alpha*acc + beta*C (beta = 1 after the first block). A row of C therefore
   gets the same bits whichever path computes it, so it does not depend on how many other rows
   are multiplied with it (a batch split over processes). */
static void sv__gemm_small(int transA, int transB, size_t M, size_t N, size_t K, float alpha,
                           const float *A, size_t lda, const float *B, size_t ldb, float beta,
                           float *C, size_t ldc, size_t kcmax)
{
    size_t i, j, k, k0, nkb = (K + kcmax - 1) / kcmax, kc = (K + nkb - 1) / nkb;
    for (k0 = 0; k0 < K; k0 += kc) {
        size_t k1 = K - k0 < kc ? K : k0 + kc;
        float bt = k0 ? 1.0f : beta;
        for (i = 0; i < M; i++) {
            float *ci = C + i * ldc;
            j = 0;
#if SV_VW > 0
            if (sv__simd_on) {
                if (!transB)
                    for (; j < N; j += SV_VW) {
                        size_t w = N - j < SV_VW ? N - j : SV_VW;
                        sv__vf acc = SV_VZERO(), v;
                        for (k = k0; k < k1; k++) {
                            float a = transA ? A[k * lda + i] : A[i * lda + k];
                            acc = SV_VFMA(SV_VSET1(a), SV_VLOADM(B + k * ldb + j, w), acc);
                        }
                        if (bt == 0.0f) v = SV_VMUL(SV_VSET1(alpha), acc);
                        else v = SV_VFMA(acc, SV_VSET1(alpha), SV_VMUL(SV_VSET1(bt), SV_VLOADM(ci + j, w)));
                        SV_VSTOREM(ci + j, v, w);
                    }
                for (; j < N; j++) {
                    float acc = 0.0f;
                    for (k = k0; k < k1; k++)
                        acc = fmaf(transA ? A[k * lda + i] : A[i * lda + k], transB ? B[j * ldb + k] : B[k * ldb + j], acc);
                    ci[j] = bt == 0.0f ? alpha * acc : fmaf(acc, alpha, bt * ci[j]);
                }
                continue;
            }
#endif
            for (; j < N; j++) {
                float acc = 0.0f;
                for (k = k0; k < k1; k++) {
                    float a = transA ? A[k * lda + i] : A[i * lda + k];
                    float b = transB ? B[j * ldb + k] : B[k * ldb + j];
                    acc += a * b;
                }
                ci[j] = bt == 0.0f ? alpha * acc : alpha * acc + bt * ci[j];
            }
        }
    }
}

/* sv_gemm and sv_gemm_bf16. bf16 products of every size take the packed path (its pairing and
   flushes define the result), fp32 ones below 32768 multiply-adds the unpacked one. */
static void sv__gemm_run(int bf16, int transA, int transB, size_t M, size_t N, size_t K, float alpha,
                         const float *A, size_t lda, const float *B, size_t ldb, float beta,
                         float *C, size_t ldc)
{
    sv__gemm_args p;
    size_t kcap, mcap, ncap, ms, np, i, j;
    int nt = 1;
    if (M == 0 || N == 0) return;
    if (K == 0 || alpha == 0.0f) {
        /* BLAS semantics: A and B are not read; C = beta * C, with beta == 0 giving exact 0. */
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    p.g = sv__gemm_config(bf16);
    if (!bf16 && (double)M * (double)N * (double)K < 32768.0) {
        sv__gemm_small(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, p.g.kc);
        return;
    }
#ifdef _OPENMP
    nt = sv_get_threads();
    if ((double)M * (double)N * (double)K < 1e6) nt = 1;
    if (nt > 64) nt = 64;
#endif
    kcap = sv__gemm_kblock(&p.g, K);
    if (bf16) kcap /= 2;   /* pair words */
    mcap = M < p.g.mc ? (M + (size_t)p.g.mr - 1) / (size_t)p.g.mr * (size_t)p.g.mr : p.g.mc;
    ncap = N < p.g.nc ? (N + (size_t)p.g.nr - 1) / (size_t)p.g.nr * (size_t)p.g.nr : p.g.nc;
    p.asize = (mcap * kcap + 15) & ~(size_t)15;
    p.bsize = (ncap * kcap + 15) & ~(size_t)15;
    p.buf = sv__gemm_buffer((size_t)nt * (p.asize + p.bsize));
    if (!p.buf) { /* out of memory: still give the right answer (fp32), slowly */
        sv__gemm_small(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, p.g.kc);
        return;
    }
    p.transA = transA; p.transB = transB;
    p.M = M; p.N = N; p.K = K; p.lda = lda; p.ldb = ldb; p.ldc = ldc;
    p.alpha = alpha; p.beta = beta; p.A = A; p.B = B; p.C = C;
    /* Split the longer of M and N: each thread packs its own copy of the other operand, so the
       duplicated packing is the smaller one. */
    ms = (M + (size_t)p.g.mr - 1) / (size_t)p.g.mr;
    np = (N + (size_t)p.g.nr - 1) / (size_t)p.g.nr;
    p.split_m = (M >= N && ms >= (size_t)(2 * nt)) || np < (size_t)(2 * nt);
#ifdef _OPENMP
    if (nt > 1) {
#pragma omp parallel num_threads(nt)
        sv__gemm_worker(&p, omp_get_thread_num(), omp_get_num_threads());
        return;
    }
#endif
    sv__gemm_worker(&p, 0, 1);
}

SV_DEF void sv_gemm(int transA, int transB, size_t M, size_t N, size_t K, float alpha,
                    const float *A, size_t lda, const float *B, size_t ldb, float beta,
                    float *C, size_t ldc)
{
    sv__gemm_run(0, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

SV_DEF void sv_gemm_bf16(int transA, int transB, size_t M, size_t N, size_t K, float alpha,
                         const float *A, size_t lda, const float *B, size_t ldb, float beta,
                         float *C, size_t ldc)
{
    sv__gemm_run(1, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

SV_DEF void sv_gemm_naive(int transA, int transB, size_t M, size_t N, size_t K, float alpha,
                          const float *A, size_t lda, const float *B, size_t ldb, float beta,
                          float *C, size_t ldc)
{
    size_t i, j, k;
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            double acc = 0.0;
            for (k = 0; k < K; k++)
                acc += (double)(transA ? A[k * lda + i] : A[i * lda + k]) *
                       (double)(transB ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * ldc + j] = (float)(beta == 0.0f ? alpha * acc
                                                  : alpha * acc + (double)beta * C[i * ldc + j]);
        }
}

/* ---------------------------------------------------------------- 2.2 vector maths */

static float sv__dot_serial(const float *a, const float *b, size_t n)
{
    size_t i = 0;
    float s = 0.0f;
#if SV_VW > 0
    if (sv__simd_on) {
        sv__vf s0 = SV_VZERO(), s1 = SV_VZERO(), s2 = SV_VZERO(), s3 = SV_VZERO();
        for (; i + 4 * SV_VW <= n; i += 4 * SV_VW) {
            s0 = SV_VFMA(SV_VLOADU(a + i), SV_VLOADU(b + i), s0);
            s1 = SV_VFMA(SV_VLOADU(a + i + SV_VW), SV_VLOADU(b + i + SV_VW), s1);
            s2 = SV_VFMA(SV_VLOADU(a + i + 2 * SV_VW), SV_VLOADU(b + i + 2 * SV_VW), s2);
            s3 = SV_VFMA(SV_VLOADU(a + i + 3 * SV_VW), SV_VLOADU(b + i + 3 * SV_VW), s3);
        }
        for (; i + SV_VW <= n; i += SV_VW) s0 = SV_VFMA(SV_VLOADU(a + i), SV_VLOADU(b + i), s0);
        if (i < n) s1 = SV_VFMA(SV_VLOADN(a + i, n - i), SV_VLOADN(b + i, n - i), s1);
        return SV_VREDUCE_ADD(SV_VADD(SV_VADD(s0, s1), SV_VADD(s2, s3)));
    }
#endif
    {   /* eight partial sums, like an 8-lane vector: error grows like n/8, not n */
        float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int l;
        for (; i < n - n % 8; i += 8)   /* (not i + 8 <= n: gcc then warns of overflow in the tail) */
            for (l = 0; l < 8; l++) p[l] += a[i + (size_t)l] * b[i + (size_t)l];
        for (; i < n; i++) s += a[i] * b[i];
        for (l = 0; l < 8; l++) s += p[l];
    }
    return s;
}

static float sv__sum_serial(const float *x, size_t n)
{
    size_t i = 0;
    float s = 0.0f;
#if SV_VW > 0
    if (sv__simd_on) {
        sv__vf v0 = SV_VZERO(), v1 = SV_VZERO();
        for (; i + 2 * SV_VW <= n; i += 2 * SV_VW) {
            v0 = SV_VADD(v0, SV_VLOADU(x + i));
            v1 = SV_VADD(v1, SV_VLOADU(x + i + SV_VW));
        }
        if (i + SV_VW <= n) { v0 = SV_VADD(v0, SV_VLOADU(x + i)); i += SV_VW; }
        if (i < n) v1 = SV_VADD(v1, SV_VLOADN(x + i, n - i));
        return SV_VREDUCE_ADD(SV_VADD(v0, v1));
    }
#endif
    {
        float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int l;
        for (; i < n - n % 8; i += 8)   /* (not i + 8 <= n: gcc then warns of overflow in the tail) */
            for (l = 0; l < 8; l++) p[l] += x[i + (size_t)l];
        for (; i < n; i++) s += x[i];
        for (l = 0; l < 8; l++) s += p[l];
    }
    return s;
}

/* Sums over large n are split into SV__RED_CHUNKS chunks whose size depends only on n, summed in
   parallel and combined in chunk order, so the result does not depend on the thread count. */
#define SV__RED_CHUNKS 64

static float sv__chunked_dot(const float *a, const float *b, size_t n)
{
    float part[SV__RED_CHUNKS], s = 0.0f;
    size_t chunk = (n + SV__RED_CHUNKS - 1) / SV__RED_CHUNKS;
    ptrdiff_t c;
    chunk = (chunk + 63) & ~(size_t)63;
SV__OMP(parallel for schedule(static) num_threads(sv_get_threads()))
    for (c = 0; c < SV__RED_CHUNKS; c++) {
        size_t lo = (size_t)c * chunk, hi = lo + chunk;
        if (lo > n) lo = n;
        if (hi > n) hi = n;
        part[c] = b ? sv__dot_serial(a + lo, b + lo, hi - lo) : sv__sum_serial(a + lo, hi - lo);
    }
    for (c = 0; c < SV__RED_CHUNKS; c++) s += part[c];
    return s;
}

SV_DEF float sv_dot(const float *a, const float *b, size_t n)
{
    if (n >= 8 * (size_t)SV__PAR_MIN) return sv__chunked_dot(a, b, n);
    return sv__dot_serial(a, b, n);
}

SV_DEF float sv_vsum(const float *x, size_t n)
{
    if (n >= 8 * (size_t)SV__PAR_MIN) return sv__chunked_dot(x, NULL, n);
    return sv__sum_serial(x, n);
}

static void sv__axpy_range(size_t lo, size_t hi, float a, const float *x, float *y)
{
    size_t i = lo;
#if SV_VW > 0
    if (sv__simd_on) {
        sv__vf va = SV_VSET1(a);
        for (; i + SV_VW <= hi; i += SV_VW)
            SV_VSTOREU(y + i, SV_VFMA(va, SV_VLOADU(x + i), SV_VLOADU(y + i)));
        if (i < hi)
            SV_VSTOREN(y + i, SV_VFMA(va, SV_VLOADN(x + i, hi - i), SV_VLOADN(y + i, hi - i)),
                       hi - i);
        return;
    }
#endif
    for (; i < hi; i++) y[i] += a * x[i];
}

/* op: 0 y = a*x, 1 y = x+z, 2 y = x*z */
static void sv__binop_range(size_t lo, size_t hi, int op, float a, const float *x,
                            const float *z, float *y)
{
    size_t i = lo;
#if SV_VW > 0
    if (sv__simd_on) {
        sv__vf va = SV_VSET1(a), u, w;
        for (; i < hi; i += SV_VW) {
            size_t m = hi - i < SV_VW ? hi - i : SV_VW;
            u = SV_VLOADM(x + i, m);
            if (op == 0) w = SV_VMUL(va, u);
            else {
                sv__vf v = SV_VLOADM(z + i, m);
                w = op == 1 ? SV_VADD(u, v) : SV_VMUL(u, v);
            }
            SV_VSTOREM(y + i, w, m);
        }
        return;
    }
#endif
    for (; i < hi; i++) y[i] = op == 0 ? a * x[i] : op == 1 ? x[i] + z[i] : x[i] * z[i];
}

#define SV__BLOCK 4096
/* Runs STMT(lo, hi) over [0, n) in SV__BLOCK pieces, in parallel when n is large. */
#define SV__BLOCKED(n, STMT) do { \
        size_t n_ = (n); \
        if (n_ < 4 * (size_t)SV__PAR_MIN) { size_t lo = 0, hi = n_; STMT; } \
        else { ptrdiff_t b_, nb_ = (ptrdiff_t)((n_ + SV__BLOCK - 1) / SV__BLOCK); \
            SV__OMP(parallel for schedule(static) num_threads(sv_get_threads())) \
            for (b_ = 0; b_ < nb_; b_++) { \
                size_t lo = (size_t)b_ * SV__BLOCK, hi = lo + SV__BLOCK; \
                if (hi > n_) hi = n_; \
                STMT; } } } while (0)

SV_DEF void sv_axpy(size_t n, float a, const float *x, float *y)
{
    SV__BLOCKED(n, sv__axpy_range(lo, hi, a, x, y));
}
SV_DEF void sv_vscale(float *y, float a, const float *x, size_t n)
{
    SV__BLOCKED(n, sv__binop_range(lo, hi, 0, a, x, NULL, y));
}
SV_DEF void sv_vadd(float *y, const float *a, const float *b, size_t n)
{
    SV__BLOCKED(n, sv__binop_range(lo, hi, 1, 0.0f, a, b, y));
}
SV_DEF void sv_vmul(float *y, const float *a, const float *b, size_t n)
{
    SV__BLOCKED(n, sv__binop_range(lo, hi, 2, 0.0f, a, b, y));
}

/* exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2 (ln2 split so n*C1 is exact), Cephes'
   degree-6 polynomial for e^r (S. Moshier, Cephes expf.c), and the scale 2^n applied as
   2^floor(n/2) * 2^(n - floor(n/2)) so that results in the subnormal range and the overflow to
   +inf come out of ordinary float rounding (one rounding: the vector path's SV_VLDEXP gives the
   same bits; on AVX-512 it is one VSCALEFPS, which made GELU twice as fast as the integer
   exponent arithmetic did). Inputs are clamped to [-104, 88.8] first; exp(-104) is
   below half the smallest subnormal, so it rounds to 0. */
#define SV__EXP_LO -104.0f
#define SV__EXP_HI 88.8f
#define SV__LOG2E 1.44269504088896341f
#define SV__LN2_C1 0.693359375f
#define SV__LN2_C2 -2.12194440e-4f
#define SV__EXP_P0 1.9875691500e-4f
#define SV__EXP_P1 1.3981999507e-3f
#define SV__EXP_P2 8.3334519073e-3f
#define SV__EXP_P3 4.1665795894e-2f
#define SV__EXP_P4 1.6666665459e-1f
#define SV__EXP_P5 5.0000001201e-1f

static float sv__pow2i(int n) /* 2^n for n in [-126, 127] */
{
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)(n + 127) << 23;
    return v.f;
}

static float sv__expf1(float x)
{
    float n, r, p;
    int ni, n1;
    if (x != x) return x;
    x = x < SV__EXP_LO ? SV__EXP_LO : x > SV__EXP_HI ? SV__EXP_HI : x;
    n = floorf(x * SV__LOG2E + 0.5f);
    r = x - n * SV__LN2_C1;
    r = r - n * SV__LN2_C2;
    p = SV__EXP_P0;
    p = p * r + SV__EXP_P1;
    p = p * r + SV__EXP_P2;
    p = p * r + SV__EXP_P3;
    p = p * r + SV__EXP_P4;
    p = p * r + SV__EXP_P5;
    p = p * (r * r) + r + 1.0f;
    ni = (int)n;
    n1 = ni >= 0 ? ni / 2 : -((-ni + 1) / 2); /* floor(ni/2) */
    return p * sv__pow2i(n1) * sv__pow2i(ni - n1);
}

#if SV_VW > 0
static inline sv__vf sv__vexp1(sv__vf x)
{
    sv__vf n, r, p;
    x = SV_VMAX(SV_VSET1(SV__EXP_LO), x);
    x = SV_VMIN(SV_VSET1(SV__EXP_HI), x);
    n = SV_VFLOOR(SV_VFMA(x, SV_VSET1(SV__LOG2E), SV_VSET1(0.5f)));
    r = SV_VFNMA(n, SV_VSET1(SV__LN2_C1), x);
    r = SV_VFNMA(n, SV_VSET1(SV__LN2_C2), r);
    p = SV_VFMA(SV_VSET1(SV__EXP_P0), r, SV_VSET1(SV__EXP_P1));
    p = SV_VFMA(p, r, SV_VSET1(SV__EXP_P2));
    p = SV_VFMA(p, r, SV_VSET1(SV__EXP_P3));
    p = SV_VFMA(p, r, SV_VSET1(SV__EXP_P4));
    p = SV_VFMA(p, r, SV_VSET1(SV__EXP_P5));
    p = SV_VADD(SV_VFMA(p, SV_VMUL(r, r), r), SV_VSET1(1.0f));
    return SV_VLDEXP(p, n);
}
#endif

static void sv__vexp_range(float *y, const float *x, size_t lo, size_t hi)
{
    size_t i = lo;
#if SV_VW > 0
    if (sv__simd_on) {
        for (; i + SV_VW <= hi; i += SV_VW) SV_VSTOREU(y + i, sv__vexp1(SV_VLOADU(x + i)));
        if (i < hi) SV_VSTOREN(y + i, sv__vexp1(SV_VLOADN(x + i, hi - i)), hi - i);
        return;
    }
#endif
    for (; i < hi; i++) y[i] = sv__expf1(x[i]);
}

SV_DEF void sv_vexp(float *y, const float *x, size_t n)
{
    SV__BLOCKED(n, sv__vexp_range(y, x, lo, hi));
}

/* erf after N. Juffa's single-precision erff (max error ~1 ulp): for |x| <= 0.927734375
   erf(x) = x + x P(x^2); beyond, erf(|x|) = 1 - exp(Q(|x|)), Q(t) = -t^2 + O(t). The GELU code
   uses 1 + erf(z) = exp(Q) for z < 0 directly (no cancellation; ~1e-7 absolute like erf). */
#define SV__ERF_SPLIT 0.927734375f
#define SV__ERF_S0 -5.96761703e-4f
#define SV__ERF_S1 4.99119423e-3f
#define SV__ERF_S2 -2.67681349e-2f
#define SV__ERF_S3 1.12819925e-1f
#define SV__ERF_S4 -3.76125336e-1f
#define SV__ERF_S5 1.28379166e-1f
#define SV__ERF_L0 -1.72853470e-5f
#define SV__ERF_L1 3.83197126e-4f
#define SV__ERF_L2 -3.88396438e-3f
#define SV__ERF_L3 2.42546219e-2f
#define SV__ERF_L4 -1.06777877e-1f
#define SV__ERF_L5 -6.34846687e-1f
#define SV__ERF_L6 -1.28717512e-1f
#define SV__ERF_TMAX 10.0f /* erf(10) rounds to 1; clamping keeps Q finite */
#define SV__SQRT1_2 0.70710678118654752f
#define SV__INV_SQRT_2PI 0.39894228040143268f

/* Small-|x| branch: erf(x) = x + x P(x^2). */
static float sv__erf_small1(float x)
{
    float s = x * x, r = SV__ERF_S0;
    r = r * s + SV__ERF_S1;
    r = r * s + SV__ERF_S2;
    r = r * s + SV__ERF_S3;
    r = r * s + SV__ERF_S4;
    r = r * s + SV__ERF_S5;
    return r * x + x;
}

/* Large-|x| branch: exp(Q(t)) = erfc(t) for t = |x| >= 0.93. */
static float sv__erfc_large1(float t)
{
    float s, r, u;
    t = t > SV__ERF_TMAX ? SV__ERF_TMAX : t;
    s = t * t;
    r = SV__ERF_L0 * t + SV__ERF_L1;
    u = SV__ERF_L2 * t + SV__ERF_L3;
    r = r * s + u;
    r = r * t + SV__ERF_L4;
    r = r * t + SV__ERF_L5;
    r = r * t + SV__ERF_L6;
    r = r * t - t;
    return sv__expf1(r);
}

SV_DEF float sv_erff(float x)
{
    float t = fabsf(x);
    if (x != x) return x;
    if (t <= SV__ERF_SPLIT) return sv__erf_small1(x);
    return copysignf(1.0f - sv__erfc_large1(t), x);
}

/* Phi(x) = 0.5 (1 + erf(x/sqrt2)), computed without cancellation in the negative tail. */
static float sv__phi_cdf1(float x)
{
    float z = x * SV__SQRT1_2, t = fabsf(z), e;
    if (x != x) return x;
    if (t <= SV__ERF_SPLIT) return 0.5f + 0.5f * sv__erf_small1(z);
    e = 0.5f * sv__erfc_large1(t);
    return z > 0.0f ? 1.0f - e : e;
}

#if SV_VW > 0
/* Vector Phi(x); both branches are evaluated and blended. */
static inline sv__vf sv__vphi(sv__vf x)
{
    sv__vf z = SV_VMUL(x, SV_VSET1(SV__SQRT1_2)), t = SV_VABS(z), s = SV_VMUL(z, z);
    sv__vf r, u, e, small, large;
    r = SV_VFMA(SV_VSET1(SV__ERF_S0), s, SV_VSET1(SV__ERF_S1));
    r = SV_VFMA(r, s, SV_VSET1(SV__ERF_S2));
    r = SV_VFMA(r, s, SV_VSET1(SV__ERF_S3));
    r = SV_VFMA(r, s, SV_VSET1(SV__ERF_S4));
    r = SV_VFMA(r, s, SV_VSET1(SV__ERF_S5));
    small = SV_VFMA(SV_VSET1(0.5f), SV_VFMA(r, z, z), SV_VSET1(0.5f));
    t = SV_VMIN(SV_VSET1(SV__ERF_TMAX), t);
    s = SV_VMUL(t, t);
    r = SV_VFMA(SV_VSET1(SV__ERF_L0), t, SV_VSET1(SV__ERF_L1));
    u = SV_VFMA(SV_VSET1(SV__ERF_L2), t, SV_VSET1(SV__ERF_L3));
    r = SV_VFMA(r, s, u);
    r = SV_VFMA(r, t, SV_VSET1(SV__ERF_L4));
    r = SV_VFMA(r, t, SV_VSET1(SV__ERF_L5));
    r = SV_VFMA(r, t, SV_VSET1(SV__ERF_L6));
    r = SV_VFMA(r, t, SV_VSUB(SV_VZERO(), t));
    e = SV_VMUL(SV_VSET1(0.5f), sv__vexp1(r));
    large = SV_VSEL_GT(z, SV_VZERO(), SV_VSUB(SV_VSET1(1.0f), e), e);
    return SV_VSEL_GT(SV_VABS(z), SV_VSET1(SV__ERF_SPLIT), large, small);
}
#endif

static void sv__gelu_range(float *y, const float *x, size_t lo, size_t hi)
{
    size_t i = lo;
#if SV_VW > 0
    if (sv__simd_on) {
        for (; i < hi; i += SV_VW) {
            size_t m = hi - i < SV_VW ? hi - i : SV_VW;
            sv__vf v = SV_VLOADM(x + i, m);
            v = SV_VMUL(v, sv__vphi(v));
            SV_VSTOREM(y + i, v, m);
        }
        return;
    }
#endif
    for (; i < hi; i++) y[i] = x[i] * sv__phi_cdf1(x[i]);
}

/* dx (+)= dy * GELU'(x): acc = 1 adds to dx, acc = 0 overwrites it */
static void sv__gelu_bwd_range(float *dx, const float *x, const float *dy, size_t lo, size_t hi, int acc)
{
    size_t i = lo;
#if SV_VW > 0
    if (sv__simd_on) {
        for (; i < hi; i += SV_VW) {
            size_t m = hi - i < SV_VW ? hi - i : SV_VW;
            sv__vf v = SV_VLOADM(x + i, m);
            sv__vf g = SV_VLOADM(dy + i, m);
            sv__vf d = acc ? SV_VLOADM(dx + i, m) : SV_VZERO();
            /* x phi(x) = x exp(-x^2/2) / sqrt(2 pi) */
            sv__vf pdf = sv__vexp1(SV_VMUL(SV_VSET1(-0.5f), SV_VMUL(v, v)));
            sv__vf der = SV_VFMA(SV_VMUL(v, SV_VSET1(SV__INV_SQRT_2PI)), pdf, sv__vphi(v));
            d = SV_VFMA(g, der, d);
            SV_VSTOREM(dx + i, d, m);
        }
        return;
    }
#endif
    for (; i < hi; i++) {
        float v = x[i];
        float der = sv__phi_cdf1(v) + v * SV__INV_SQRT_2PI * sv__expf1(-0.5f * (v * v));
        dx[i] = (acc ? dx[i] : 0.0f) + dy[i] * der;
    }
}

SV_DEF void sv_gelu(float *y, const float *x, size_t n)
{
    SV__BLOCKED(n, sv__gelu_range(y, x, lo, hi));
}

SV_DEF void sv_gelu_backward(float *dx, const float *x, const float *dy, size_t n)
{
    SV__BLOCKED(n, sv__gelu_bwd_range(dx, x, dy, lo, hi, 1));
}

/* ---------------------------------------------------------------- 2.3 row softmax / layer norm */

static float sv__row_max(const float *x, size_t n)
{
    size_t i = 0;
    float m = -INFINITY;
#if SV_VW > 0
    if (sv__simd_on && n >= SV_VW) {
        sv__vf v = SV_VLOADU(x);
        for (i = SV_VW; i + SV_VW <= n; i += SV_VW) v = SV_VMAX(v, SV_VLOADU(x + i));
        m = SV_VREDUCE_MAX(v);
    }
#endif
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static void sv__softmax_row(float *y, const float *x, size_t n)
{
    float m = sv__row_max(x, n), s = 0.0f, inv;
    size_t i = 0;
    if (m == -INFINITY) { /* all -inf: define the result as zeros rather than 0/0 */
        memset(y, 0, n * sizeof(float));
        return;
    }
#if SV_VW > 0
    if (sv__simd_on) {
        sv__vf vm = SV_VSET1(m), vs = SV_VZERO();
        for (; i + SV_VW <= n; i += SV_VW) {
            sv__vf e = sv__vexp1(SV_VSUB(SV_VLOADU(x + i), vm));
            SV_VSTOREU(y + i, e);
            vs = SV_VADD(vs, e);
        }
        if (i < n) {
            sv__vf e = sv__vexp1(SV_VSUB(SV_VLOADN(x + i, n - i), vm));
            SV_VSTOREN(y + i, e, n - i);
            vs = SV_VADD(vs, SV_VLOADN(y + i, n - i)); /* reload: the unused lanes come back as 0 */
        }
        s = SV_VREDUCE_ADD(vs);
        inv = 1.0f / s;
        for (i = 0; i + SV_VW <= n; i += SV_VW)
            SV_VSTOREU(y + i, SV_VMUL(SV_VLOADU(y + i), SV_VSET1(inv)));
        if (i < n) SV_VSTOREN(y + i, SV_VMUL(SV_VLOADN(y + i, n - i), SV_VSET1(inv)), n - i);
        return;
    }
#endif
    for (i = 0; i < n; i++) y[i] = sv__expf1(x[i] - m);
    s = sv__sum_serial(y, n);
    inv = 1.0f / s;
    for (i = 0; i < n; i++) y[i] *= inv;
}

SV_DEF void sv_softmax_rows(float *y, const float *x, size_t rows, size_t n)
{
    ptrdiff_t r;
SV__OMP(parallel for schedule(static) num_threads(sv_get_threads())
        if (rows * n >= SV__PAR_MIN && rows > 1))
    for (r = 0; r < (ptrdiff_t)rows; r++) sv__softmax_row(y + (size_t)r * n, x + (size_t)r * n, n);
}

SV_DEF void sv_softmax_rows_backward(float *dx, const float *y, const float *dy, size_t rows,
                                     size_t n)
{
    ptrdiff_t r;
SV__OMP(parallel for schedule(static) num_threads(sv_get_threads())
        if (rows * n >= SV__PAR_MIN && rows > 1))
    for (r = 0; r < (ptrdiff_t)rows; r++) {
        const float *yr = y + (size_t)r * n, *gr = dy + (size_t)r * n;
        float *dr = dx + (size_t)r * n;
        float s = sv__dot_serial(gr, yr, n);
        size_t i = 0;
#if SV_VW > 0
        if (sv__simd_on) {
            sv__vf vs = SV_VSET1(s);
            for (; i + SV_VW <= n; i += SV_VW)
                SV_VSTOREU(dr + i, SV_VFMA(SV_VLOADU(yr + i), SV_VSUB(SV_VLOADU(gr + i), vs),
                                           SV_VLOADU(dr + i)));
            if (i < n) {
                size_t m = n - i;
                SV_VSTOREN(dr + i, SV_VFMA(SV_VLOADN(yr + i, m), SV_VSUB(SV_VLOADN(gr + i, m), vs),
                                           SV_VLOADN(dr + i, m)), m);
            }
            continue;
        }
#endif
        for (; i < n; i++) dr[i] += yr[i] * (gr[i] - s);
    }
}

static void sv__layernorm_row(float *y, float *mean, float *rstd, const float *x,
                              const float *gamma, const float *beta, size_t n, float eps)
{
    float mu = sv__sum_serial(x, n) / (float)n, var = 0.0f, rs;
    size_t i = 0;
#if SV_VW > 0
    if (sv__simd_on) {
        sv__vf vm = SV_VSET1(mu), acc = SV_VZERO(), d;
        for (; i < n - n % SV_VW; i += SV_VW) {
            d = SV_VSUB(SV_VLOADU(x + i), vm);
            acc = SV_VFMA(d, d, acc);
        }
        for (; i < n; i++) var += (x[i] - mu) * (x[i] - mu);
        var = (var + SV_VREDUCE_ADD(acc)) / (float)n;
        rs = 1.0f / sqrtf(var + eps);
        {
            sv__vf vr = SV_VSET1(rs), one = SV_VSET1(1.0f), zero = SV_VZERO();
            for (i = 0; i < n; i += SV_VW) {
                size_t m = n - i < SV_VW ? n - i : SV_VW;
                sv__vf v = SV_VLOADM(x + i, m);
                sv__vf g = gamma ? SV_VLOADM(gamma + i, m) : one;
                sv__vf b = beta ? SV_VLOADM(beta + i, m) : zero;
                v = SV_VFMA(SV_VMUL(SV_VSUB(v, vm), vr), g, b);
                SV_VSTOREM(y + i, v, m);
            }
        }
        if (mean) *mean = mu;
        if (rstd) *rstd = rs;
        return;
    }
#endif
    {
        float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int l;
        for (; i < n - n % 8; i += 8)   /* (not i + 8 <= n: gcc then warns of overflow in the tail) */
            for (l = 0; l < 8; l++) p[l] += (x[i + (size_t)l] - mu) * (x[i + (size_t)l] - mu);
        for (; i < n; i++) var += (x[i] - mu) * (x[i] - mu);
        for (l = 0; l < 8; l++) var += p[l];
    }
    var /= (float)n;
    rs = 1.0f / sqrtf(var + eps);
    for (i = 0; i < n; i++) {
        float v = (x[i] - mu) * rs;
        y[i] = v * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
    }
    if (mean) *mean = mu;
    if (rstd) *rstd = rs;
}

SV_DEF void sv_layernorm_rows(float *y, float *mean, float *rstd, const float *x,
                              const float *gamma, const float *beta, size_t rows, size_t n,
                              float eps)
{
    ptrdiff_t r;
    if (n == 0) return;
SV__OMP(parallel for schedule(static) num_threads(sv_get_threads())
        if (rows * n >= SV__PAR_MIN && rows > 1))
    for (r = 0; r < (ptrdiff_t)rows; r++)
        sv__layernorm_row(y + (size_t)r * n, mean ? mean + r : NULL, rstd ? rstd + r : NULL,
                          x + (size_t)r * n, gamma, beta, n, eps);
}

/* dx row: xhat = (x - mean) rstd, g = dy gamma,
   dx += rstd (g - mean_j(g) - xhat mean_j(g xhat))  (the LayerNorm input gradient). */
static void sv__layernorm_bwd_row(float *dx, const float *dy, const float *x, float mu, float rs,
                                  const float *gamma, size_t n)
{
    float sg = 0.0f, sgx = 0.0f, a, b;
    size_t i = 0;
#if SV_VW > 0
    if (sv__simd_on) {
        sv__vf vm = SV_VSET1(mu), vr = SV_VSET1(rs), one = SV_VSET1(1.0f);
        sv__vf ag = SV_VZERO(), agx = SV_VZERO();
        sv__vf va, vb;
        for (i = 0; i < n; i += SV_VW) {
            size_t m = n - i < SV_VW ? n - i : SV_VW;
            sv__vf v = SV_VLOADM(x + i, m);
            sv__vf d = SV_VLOADM(dy + i, m);
            sv__vf gm = gamma ? SV_VLOADM(gamma + i, m) : one;
            sv__vf g = SV_VMUL(d, gm); /* 0 in masked lanes since d is 0 there */
            sv__vf xh = SV_VMUL(SV_VSUB(v, vm), vr);
            ag = SV_VADD(ag, g);
            agx = SV_VFMA(g, xh, agx);
        }
        a = SV_VREDUCE_ADD(ag) / (float)n;
        b = SV_VREDUCE_ADD(agx) / (float)n;
        va = SV_VSET1(a);
        vb = SV_VSET1(b);
        for (i = 0; i < n; i += SV_VW) {
            size_t m = n - i < SV_VW ? n - i : SV_VW;
            sv__vf v = SV_VLOADM(x + i, m);
            sv__vf d = SV_VLOADM(dy + i, m);
            sv__vf gm = gamma ? SV_VLOADM(gamma + i, m) : one;
            sv__vf o = SV_VLOADM(dx + i, m);
            sv__vf xh = SV_VMUL(SV_VSUB(v, vm), vr);
            sv__vf t = SV_VFNMA(xh, vb, SV_VSUB(SV_VMUL(d, gm), va));
            o = SV_VFMA(vr, t, o);
            SV_VSTOREM(dx + i, o, m);
        }
        return;
    }
#endif
    {
        float pg[8] = {0, 0, 0, 0, 0, 0, 0, 0}, pgx[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (i = 0; i < n; i++) {
            float g = dy[i] * (gamma ? gamma[i] : 1.0f);
            pg[i & 7] += g;
            pgx[i & 7] += g * ((x[i] - mu) * rs);
        }
        for (i = 0; i < 8; i++) { sg += pg[i]; sgx += pgx[i]; }
    }
    a = sg / (float)n;
    b = sgx / (float)n;
    for (i = 0; i < n; i++) {
        float g = dy[i] * (gamma ? gamma[i] : 1.0f), xh = (x[i] - mu) * rs;
        dx[i] += rs * (g - a - xh * b);
    }
}

/* dgamma[j] += sum_r dy[r,j] xhat[r,j], dbeta[j] += sum_r dy[r,j] for columns [j0, j1), rows in
   order: each column's sum has one fixed order whatever the thread count or SIMD width. */
static void sv__layernorm_bwd_cols(float *dgamma, float *dbeta, const float *dy, const float *x,
                                   const float *mean, const float *rstd, size_t rows, size_t n,
                                   size_t j0, size_t j1)
{
    size_t r, j;
    for (r = 0; r < rows; r++) {
        const float *d = dy + r * n, *xr = x + r * n;
        float mu = mean[r], rs = rstd[r];
        j = j0;
#if SV_VW > 0
        if (sv__simd_on) {
            sv__vf vm = SV_VSET1(mu), vr = SV_VSET1(rs);
            for (; j + SV_VW <= j1; j += SV_VW) {
                sv__vf dv = SV_VLOADU(d + j);
                if (dgamma)
                    SV_VSTOREU(dgamma + j, SV_VFMA(dv, SV_VMUL(SV_VSUB(SV_VLOADU(xr + j), vm), vr),
                                                   SV_VLOADU(dgamma + j)));
                if (dbeta) SV_VSTOREU(dbeta + j, SV_VADD(SV_VLOADU(dbeta + j), dv));
            }
        }
#endif
        for (; j < j1; j++) {
            if (dgamma) dgamma[j] += d[j] * ((xr[j] - mu) * rs);
            if (dbeta) dbeta[j] += d[j];
        }
    }
}

SV_DEF void sv_layernorm_rows_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                                       const float *x, const float *mean, const float *rstd,
                                       const float *gamma, size_t rows, size_t n)
{
    ptrdiff_t r, c;
    size_t cw = 64, nc = (n + cw - 1) / cw;
    if (n == 0 || rows == 0) return;
    if (dx) {
SV__OMP(parallel for schedule(static) num_threads(sv_get_threads())
        if (rows * n >= SV__PAR_MIN && rows > 1))
        for (r = 0; r < (ptrdiff_t)rows; r++)
            sv__layernorm_bwd_row(dx + (size_t)r * n, dy + (size_t)r * n, x + (size_t)r * n,
                                  mean[r], rstd[r], gamma, n);
    }
    if (dgamma || dbeta) {
SV__OMP(parallel for schedule(static) num_threads(sv_get_threads())
        if (rows * n >= SV__PAR_MIN && nc > 1))
        for (c = 0; c < (ptrdiff_t)nc; c++) {
            size_t j0 = (size_t)c * cw, j1 = j0 + cw > n ? n : j0 + cw;
            sv__layernorm_bwd_cols(dgamma, dbeta, dy, x, mean, rstd, rows, n, j0, j1);
        }
    }
}

/* ======================================================================================
   3 Tensors and the arena
   ====================================================================================== */
/* ---------------------------------------------------------------- 3.1 arena */
#define SV__ALIGN 64

typedef struct sv__block {
    struct sv__block *next;
    size_t cap, used;
    unsigned char *base;            /* aligned start */
} sv__block;

typedef struct sv__node sv__node;
typedef void (*sv__backward_fn)(sv_ctx *c, sv__node *n);

/* One tape entry. Ops keep what their backward needs in the slots below (all arena memory). */
struct sv__node {
    const char *op;
    sv__backward_fn backward;
    sv_tensor *out;
    sv_tensor *in[4];
    void *save[4];
    size_t iarg[8];
    float farg[4];
    sv__node *prev;
    int prof;                       /* index in the profile table, -1 if none */
    int precision;                  /* of the op's products: the context's when it was recorded */
    const struct sv__shard *shard;  /* shard mode when recorded (section 3.4), else NULL */
    int sample_free;                /* every input is free of the sample dimension */
};

/* Shard mode (section 3.4): the caller's description and the parameters whose exact sums
   collect the gradients. Lives in the arena until the next reset; nodes point to it. */
typedef struct sv__shard {
    sv_shard s;
    sv_params *params;
} sv__shard;

#define SV__PROF_MAX 64
/* A released range of arena memory awaiting reuse. The header lives in the range itself (the
   memory is dead), so keeping the list allocates nothing. */
typedef struct sv__hole {
    struct sv__hole *next;          /* next hole at a higher address */
    size_t bytes;                   /* multiple of SV__ALIGN */
} sv__hole;

struct sv_ctx {
    sv__block *blocks;              /* current block first */
    size_t used, peak, limit, block_total, initial;
    sv__hole *holes;                /* released ranges, sorted by address, neighbours merged */
    int recycle_grads;
    int cnn_store_gelu;             /* test hook: 1 = the feature encoder stores its norm/GELU outputs (old path) */
    sv__node *tape;                 /* last node */
    size_t tape_len;
    int grad_enabled, training, failed, backward_done;
    int precision;                  /* SV_FP32 or SV_BF16: of the products of the running op */
    sv_rng rng;
    int profile;
    size_t prof_n;
    const char *prof_name[SV__PROF_MAX];
    double prof_fwd[SV__PROF_MAX], prof_bwd[SV__PROF_MAX];
    size_t prof_calls[SV__PROF_MAX];
    double flops;                   /* matrix-product FLOPs since sv_ctx_flops_clear */
    sv_progress_fn progress_fn;     /* long calls report their progress here (may be NULL) */
    void *progress_user;
    struct sv__shard *shard;        /* shard mode (section 3.4) until the next reset, or NULL */
    uint64_t draw_site;             /* keyed draws made since the shard was set */
    const sv__node *bwd_node;       /* the node whose backward runs (shard mode checks) */
};

static sv__block *sv__block_new(size_t cap)
{
    sv__block *b;
    /* no object exceeds PTRDIFF_MAX bytes (malloc refuses, and pointer differences would
       overflow): such a request fails here, never reaching the allocator */
    if (cap > (size_t)PTRDIFF_MAX - sizeof(sv__block) - SV__ALIGN) return NULL;
    b = (sv__block *)SV_MALLOC(sizeof(sv__block) + cap + SV__ALIGN);
    if (!b) return NULL;
    sv__advise_huge(b, sizeof(sv__block) + cap + SV__ALIGN);
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    b->base = (unsigned char *)(((uintptr_t)(b + 1) + SV__ALIGN - 1) & ~(uintptr_t)(SV__ALIGN - 1));
    return b;
}

SV_DEF sv_ctx *sv_ctx_new(size_t initial_bytes, uint64_t seed)
{
    sv_ctx *c = (sv_ctx *)sv__calloc(1, sizeof(sv_ctx), "context");
    if (!c) return NULL;
    c->initial = initial_bytes ? initial_bytes : ((size_t)16 << 20);
    c->blocks = sv__block_new(c->initial);
    if (!c->blocks) {
        SV_FREE(c);
        sv__fail(SV_ERR_NOMEM, "out of memory creating a %zu-byte arena", initial_bytes);
        return NULL;
    }
    c->block_total = c->initial;
    c->grad_enabled = 1;
    c->training = 1;
    sv_rng_seed(&c->rng, seed);
    return c;
}

SV_DEF void sv_ctx_free(sv_ctx *c)
{
    sv__block *b, *nx;
    if (!c) return;
    for (b = c->blocks; b; b = nx) { nx = b->next; SV_FREE(b); }
    SV_FREE(c);
}

SV_DEF void sv_ctx_reset(sv_ctx *c)
{
    sv__block *b, *nx;
    if (c->blocks && c->blocks->next) {
        /* The last step needed more than one block: fold them into one block big enough for
           the whole step, so steady-state steps allocate nothing. */
        size_t want = c->block_total;
        for (b = c->blocks; b; b = nx) { nx = b->next; SV_FREE(b); }
        c->blocks = sv__block_new(want);
        if (!c->blocks) c->blocks = sv__block_new(c->initial); /* keep a usable context */
        c->block_total = c->blocks ? c->blocks->cap : 0;
    }
    if (c->blocks) c->blocks->used = 0;
    c->used = 0;
    c->holes = NULL;
    c->tape = NULL;
    c->tape_len = 0;
    c->failed = 0;
    c->backward_done = 0;
    c->shard = NULL;
    c->draw_site = 0;
    c->bwd_node = NULL;
}

SV_DEF void sv_ctx_set_arena_limit(sv_ctx *c, size_t bytes) { c->limit = bytes; }
SV_DEF size_t sv_ctx_arena_peak(const sv_ctx *c) { return c->peak; }
SV_DEF size_t sv_ctx_arena_used(const sv_ctx *c) { return c->used; }
SV_DEF void sv_ctx_set_grad(sv_ctx *c, int enabled) { c->grad_enabled = enabled != 0; }
SV_DEF int sv_ctx_grad(const sv_ctx *c) { return c->grad_enabled; }
SV_DEF void sv_ctx_set_training(sv_ctx *c, int training) { c->training = training != 0; }
SV_DEF int sv_ctx_training(const sv_ctx *c) { return c->training; }
SV_DEF int sv_ctx_set_precision(sv_ctx *c, int precision)
{
    if (precision != SV_FP32 && precision != SV_BF16) return sv__fail(SV_ERR_ARG, "precision %d is neither SV_FP32 nor SV_BF16", precision);
    c->precision = precision;
    return SV_OK;
}
SV_DEF int sv_ctx_precision(const sv_ctx *c) { return c->precision; }
SV_DEF sv_rng *sv_ctx_rng(sv_ctx *c) { return &c->rng; }
SV_DEF int sv_ctx_failed(const sv_ctx *c) { return c->failed; }
SV_DEF void sv_ctx_set_recycle_grads(sv_ctx *c, int on) { c->recycle_grads = on != 0; }
SV_DEF int sv_ctx_recycle_grads(const sv_ctx *c) { return c->recycle_grads; }

/* Best fit among the holes: the smallest one that holds `need` bytes, so big holes stay whole
   for big requests. The request takes the hole's front; the rest stays a (smaller) hole. */
static void *sv__hole_take(sv_ctx *c, size_t need)
{
    sv__hole **best = NULL, **pp, *h;
    for (pp = &c->holes; *pp; pp = &(*pp)->next)
        if ((*pp)->bytes >= need && (!best || (*pp)->bytes < (*best)->bytes)) best = pp;
    if (!best) return NULL;
    h = *best;
    if (h->bytes == need) {
        *best = h->next;
    } else {
        sv__hole *rest = (sv__hole *)((unsigned char *)h + need);
        rest->next = h->next;
        rest->bytes = h->bytes - need;
        *best = rest;
    }
    return h;
}

/* Give [p, p + bytes) back to the arena before the reset: it must not be read or written again.
   Neighbouring holes merge (a later big request can use two freed buffers that were adjacent),
   and a hole that ends where the current block's free space begins is folded into that free
   space, so stack-like use (take, release, take) costs no peak at all. */
static void sv__arena_release(sv_ctx *c, void *p, size_t bytes)
{
    sv__hole **pp = &c->holes, *prev = NULL, *h;
    unsigned char *lo = (unsigned char *)p;
    size_t need = (bytes + SV__ALIGN - 1) & ~(size_t)(SV__ALIGN - 1);
    if (!p || need < sizeof(sv__hole)) return;
    while (*pp && (unsigned char *)*pp < lo) { prev = *pp; pp = &(*pp)->next; }
    h = (sv__hole *)lo;
    h->bytes = need;
    h->next = *pp;
    *pp = h;
    if (h->next && lo + h->bytes == (unsigned char *)h->next) { /* merge with the next hole */
        h->bytes += h->next->bytes;
        h->next = h->next->next;
    }
    if (prev && (unsigned char *)prev + prev->bytes == lo) {     /* merge into the previous one */
        prev->bytes += h->bytes;
        prev->next = h->next;
        h = prev;
    }
    if (c->blocks && (unsigned char *)h + h->bytes == c->blocks->base + c->blocks->used) {
        sv__hole **q = &c->holes;                                 /* the top of the bump: lower it */
        while (*q != h) q = &(*q)->next;
        *q = h->next;
        c->blocks->used -= h->bytes;
        c->used -= h->bytes;
    }
}

SV_DEF void *sv_ctx_alloc(sv_ctx *c, size_t bytes)
{
    sv__block *b = c->blocks;
    size_t need = (bytes + SV__ALIGN - 1) & ~(size_t)(SV__ALIGN - 1);
    if (need < bytes || bytes == SIZE_MAX) {
        c->failed = 1;
        if (bytes == SIZE_MAX) sv__fail(SV_ERR_NOMEM, "arena request overflows size_t%s", sv__addr_hint(bytes));
        else sv__fail(SV_ERR_NOMEM, "arena request of %zu bytes overflows%s", bytes, sv__addr_hint(bytes));
        return NULL;
    }
    if (c->holes && need) {         /* released memory first: it is already counted in the peak */
        void *p = sv__hole_take(c, need);
        if (p) return p;
    }
    if (c->limit && (need > c->limit || c->used > c->limit - need)) {
        c->failed = 1;
        sv__fail(SV_ERR_NOMEM, "arena exhausted: needed %zu more bytes, %zu of %zu in use "
                 "(raise sv_ctx_set_arena_limit, or set 0 to grow automatically)",
                 need, c->used, c->limit);
        return NULL;
    }
    if (!b || b->cap - b->used < need) {
        /* chain a new block: at least the request, and as big as all blocks so far (doubling) */
        size_t cap = c->block_total > need ? c->block_total : need;
        b = sv__block_new(cap);
        if (!b && cap > need) b = sv__block_new(cap = need);   /* no room to double: just the request */
        if (!b) {
            c->failed = 1;
            sv__fail(SV_ERR_NOMEM, "out of memory growing the arena by %zu bytes (%zu in use)%s", cap, c->used,
                     sv__addr_hint(c->used + cap < c->used ? SIZE_MAX : c->used + cap));
            return NULL;
        }
        b->next = c->blocks;
        c->blocks = b;
        c->block_total += cap;
    }
    {
        void *p = b->base + b->used;
        b->used += need;
        c->used += need;
        if (c->used > c->peak) c->peak = c->used;
        return p;
    }
}

/* ---------------------------------------------------------------- 3.2 tensors */
static size_t sv__numel(int ndim, const size_t *shape)
{
    size_t n = 1;
    int i;
    for (i = 0; i < ndim; i++) if (!sv__mul_ok(n, shape[i], &n)) return SIZE_MAX;
    return n;
}

static sv_tensor *sv__tensor_alloc(sv_ctx *c, int ndim, const size_t *shape, int zero)
{
    sv_tensor *t;
    size_t n, bytes;
    int i;
    if (ndim < 1 || ndim > SV_MAX_DIMS) {
        c->failed = 1;
        sv__fail(SV_ERR_ARG, "tensor with %d dims (1..%d supported)", ndim, SV_MAX_DIMS);
        return NULL;
    }
    n = sv__numel(ndim, shape);
    if (n == SIZE_MAX || !sv__mul_ok(n, sizeof(float), &bytes)) {
        char dims[96];
        size_t len = 0;
        for (i = 0; i < ndim && len < sizeof dims - 24; i++)
            len += (size_t)snprintf(dims + len, sizeof dims - len, "%s%zu", i ? "," : "", shape[i]);
        c->failed = 1;
        sv__fail(SV_ERR_NOMEM, "tensor [%s] of floats overflows size_t%s", dims, sv__addr_hint(SIZE_MAX));
        return NULL;
    }
    t = (sv_tensor *)sv_ctx_alloc(c, sizeof(sv_tensor));
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->data = (float *)sv_ctx_alloc(c, bytes ? bytes : 1);
    if (!t->data) return NULL;
    if (zero) memset(t->data, 0, bytes);
    t->ndim = ndim;
    for (i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->n = n;
    return t;
}

SV_DEF sv_tensor *sv_tensor_new(sv_ctx *c, int ndim, const size_t *shape) { return sv__tensor_alloc(c, ndim, shape, 0); }
SV_DEF sv_tensor *sv_tensor_zeros(sv_ctx *c, int ndim, const size_t *shape) { return sv__tensor_alloc(c, ndim, shape, 1); }

SV_DEF sv_tensor *sv_tensor_from(sv_ctx *c, const float *data, int ndim, const size_t *shape)
{
    sv_tensor *t = sv__tensor_alloc(c, ndim, shape, 0);
    if (t) memcpy(t->data, data, t->n * sizeof(float));
    return t;
}

SV_DEF sv_tensor *sv_new1(sv_ctx *c, size_t d0) { return sv_tensor_new(c, 1, &d0); }
SV_DEF sv_tensor *sv_new2(sv_ctx *c, size_t d0, size_t d1) { size_t s[2]; s[0] = d0; s[1] = d1; return sv_tensor_new(c, 2, s); }
SV_DEF sv_tensor *sv_new3(sv_ctx *c, size_t d0, size_t d1, size_t d2)
{ size_t s[3]; s[0] = d0; s[1] = d1; s[2] = d2; return sv_tensor_new(c, 3, s); }

/* Same-shaped tensor, for op outputs. */
static sv_tensor *sv__like(sv_ctx *c, const sv_tensor *x) { return sv_tensor_new(c, x->ndim, x->shape); }

static void *sv__arena_copy(sv_ctx *c, const void *src, size_t bytes)
{
    void *p;
    if (!src) return NULL;
    p = sv_ctx_alloc(c, bytes ? bytes : 1);
    if (p) memcpy(p, src, bytes);
    return p;
}

/* Shard mode: the exact sums (2 words per element) behind parameter t's gradient, or NULL when t
   is not one of the shard's parameters (compared as addresses: t->grad points into p->grad). */
static uint64_t *sv__exact_of(const sv__shard *sh, const sv_tensor *t)
{
    const sv_params *p = sh ? sh->params : NULL;
    uintptr_t g = (uintptr_t)(t ? t->grad : NULL), lo, hi;
    if (!p || !p->exact || !g) return NULL;
    lo = (uintptr_t)p->grad;
    hi = (uintptr_t)(p->grad + p->n);
    if (g < lo || g >= hi) return NULL;
    return p->exact + 2 * (size_t)((g - lo) / sizeof(float));
}

/* The gradient buffer of t, created (zeroed) on first use; NULL if t needs no gradient. In shard
   mode a parameter's gradient is summed per sample (section 3.4): a backward that would add to it
   in float while its node has a sample dimension is a missing per-sample path, stopped here
   with an error rather than summed in an order that depends on the shares. */
static float *sv__g(sv_ctx *c, sv_tensor *t)
{
    if (!t || !t->requires_grad) return NULL;
    if (c->bwd_node && c->bwd_node->shard && !c->bwd_node->sample_free && sv__exact_of(c->bwd_node->shard, t)) {
        c->failed = 2;
        sv__fail(SV_ERR_STATE, "shard mode: op %s has no per-sample gradient for parameter %s", c->bwd_node->op,
                 t->name ? t->name : "?");
        return NULL;
    }
    if (!t->grad) {
        t->grad = (float *)sv_ctx_alloc(c, t->n * sizeof(float));
        if (t->grad) memset(t->grad, 0, t->n * sizeof(float));
    }
    return t->grad;
}

/* The gradient buffer of t for a backward that writes every element: when the buffer does not
   exist yet it is created without zeroing and *fresh = 1, and the caller stores (=) instead of
   adding (+=), which saves a zeroing pass and a read of zeros over the largest activations. */
static float *sv__g_w(sv_ctx *c, sv_tensor *t, int *fresh)
{
    *fresh = 0;
    if (!t || !t->requires_grad) return NULL;
    if (!t->grad) {
        t->grad = (float *)sv_ctx_alloc(c, t->n * sizeof(float));
        *fresh = t->grad != NULL;
    }
    return t->grad;
}

/* sv__g_w for the backward of a one-input op whose dx can overwrite dy in place (dx[i] needs only
   dy[i], or all of dy is read before dx is written) and that writes every element. With
   recycling on and no buffer for x yet, x takes over the output's buffer: this backward is its
   last reader, and it would be released right after. The op then needs one activation-sized
   buffer fewer at its peak. Returns with *fresh = 1 in that case, as for a new buffer. */
static float *sv__g_inplace(sv_ctx *c, sv__node *n, sv_tensor *x, int *fresh)
{
    sv_tensor *y = n->out;
    if (c->recycle_grads && x && x->requires_grad && !x->grad && x->kind == SV_ACTIVATION &&
        y->grad && x->n == y->n) {
        x->grad = y->grad;
        y->grad = NULL;             /* handed over: sv_backward must not release it */
        *fresh = 1;
        return x->grad;
    }
    return sv__g_w(c, x, fresh);
}

/* ---------------------------------------------------------------- 3.3 parameters */
static sv_tensor *sv__param_decl(sv_params *p, const char *name, int group, int ndim, const size_t *shape, int kind)
{
    sv_tensor *t;
    char *nm;
    size_t len = strlen(name);
    int i;
    if (p->allocated) { sv__fail(SV_ERR_STATE, "parameter '%s' declared after sv_params_alloc", name); return NULL; }
    if (ndim < 1 || ndim > SV_MAX_DIMS || group < 0 || group > 31) { sv__fail(SV_ERR_ARG, "parameter '%s': bad dims or group", name); return NULL; }
    if (p->count == p->cap) {
        size_t nc = p->cap ? 2 * p->cap : 64;
        sv_tensor **nt = (sv_tensor **)SV_MALLOC(nc * sizeof(sv_tensor *));
        if (!nt) { sv__fail(SV_ERR_NOMEM, "out of memory declaring parameters"); return NULL; }
        if (p->count) memcpy(nt, p->t, p->count * sizeof(sv_tensor *));
        SV_FREE(p->t);
        p->t = nt;
        p->cap = nc;
    }
    t = (sv_tensor *)sv__calloc(1, sizeof(sv_tensor) + len + 1, "parameter");
    if (!t) return NULL;
    nm = (char *)(t + 1);
    memcpy(nm, name, len + 1);
    t->name = nm;
    t->ndim = ndim;
    for (i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->n = sv__numel(ndim, shape);
    t->kind = kind;
    t->group = group;
    t->requires_grad = kind == SV_PARAM;
    p->t[p->count++] = t;
    return t;
}

SV_DEF sv_tensor *sv_param(sv_params *p, const char *name, int group, int ndim, const size_t *shape)
{ return sv__param_decl(p, name, group, ndim, shape, SV_PARAM); }
SV_DEF sv_tensor *sv_buffer(sv_params *p, const char *name, int group, int ndim, const size_t *shape)
{ return sv__param_decl(p, name, group, ndim, shape, SV_BUFFER); }

SV_DEF int sv_params_alloc(sv_params *p)
{
    size_t i, off = 0, bytes;
    float *mem;
    if (p->allocated) return sv__fail(SV_ERR_STATE, "sv_params_alloc called twice");
    p->offset = (size_t *)sv__calloc(p->count ? p->count : 1, sizeof(size_t), "parameter offsets");
    if (!p->offset) return SV_ERR_NOMEM;
    for (i = 0; i < p->count; i++) {
        size_t n16 = (p->t[i]->n + 15) & ~(size_t)15;   /* 64-byte aligned tensors */
        if (n16 < p->t[i]->n || off > SIZE_MAX - n16) return sv__fail(SV_ERR_NOMEM, "parameter storage overflows%s", sv__addr_hint(SIZE_MAX));
        p->offset[i] = off;
        off += n16;
    }
    p->n = off;
    if (!sv__mul_ok(off, 4 * sizeof(float), &bytes) || bytes > SIZE_MAX - SV__ALIGN)
        return sv__fail(SV_ERR_NOMEM, "parameter storage overflows%s", sv__addr_hint(SIZE_MAX));
    mem = (float *)sv__alloc(bytes + SV__ALIGN, "parameters");
    if (!mem) return SV_ERR_NOMEM;
    sv__advise_huge(mem, bytes + SV__ALIGN);
    memset(mem, 0, bytes + SV__ALIGN);
    p->raw = mem;
    /* one block, 64-byte aligned: [values | gradients | m | v] */
    p->data = (float *)(((uintptr_t)mem + SV__ALIGN - 1) & ~(uintptr_t)(SV__ALIGN - 1));
    p->grad = p->data + off;
    p->m = p->grad + off;
    p->v = p->m + off;
    for (i = 0; i < p->count; i++) {
        p->t[i]->data = p->data + p->offset[i];
        p->t[i]->grad = p->grad + p->offset[i];
    }
    p->allocated = 1;
    return SV_OK;
}

SV_DEF void sv_params_free(sv_params *p)
{
    size_t i;
    if (!p) return;
    SV_FREE(p->raw);
    SV_FREE(p->exact);
    for (i = 0; i < p->count; i++) SV_FREE(p->t[i]);
    SV_FREE(p->t);
    SV_FREE(p->offset);
    memset(p, 0, sizeof *p);
}

SV_DEF void sv_params_zero_grad(sv_params *p)
{
    /* tens of MB each step: both cores' write bandwidth, not one */
    if (p->allocated) SV__BLOCKED(p->n, memset(p->grad + lo, 0, (hi - lo) * sizeof(float)));
    if (p->exact) SV__BLOCKED(2 * (p->n + 1), memset(p->exact + lo, 0, (hi - lo) * sizeof(uint64_t)));
}

SV_DEF size_t sv_params_numel(const sv_params *p, uint32_t group_mask)
{
    size_t i, n = 0;
    for (i = 0; i < p->count; i++)
        if (p->t[i]->kind == SV_PARAM && (group_mask >> p->t[i]->group & 1u)) n += p->t[i]->n;
    return n;
}

SV_DEF sv_tensor *sv_params_find(const sv_params *p, const char *name)
{
    size_t i;
    for (i = 0; i < p->count; i++) if (strcmp(p->t[i]->name, name) == 0) return p->t[i];
    return NULL;
}

/* ---------------------------------------------------------------- 3.4 shards and exact gradient sums */
/* floor(r * total / P) without overflow: r (P q + m) / P = r q + floor(r m / P) */
static size_t sv__share_edge(size_t total, size_t r, size_t P) { return r * (total / P) + r * (total % P) / P; }

SV_DEF void sv_shard_split(size_t total, int size, int rank, size_t *first, size_t *count)
{
    size_t P = size > 0 ? (size_t)size : 1, r = rank > 0 ? (size_t)rank : 0, a, b;
    if (r >= P) r = P - 1;
    a = sv__share_edge(total, r, P);
    b = sv__share_edge(total, r + 1, P);
    if (first) *first = a;
    if (count) *count = b - a;
}

SV_DEF int sv_ctx_set_shard(sv_ctx *c, const sv_shard *s, sv_params *p)
{
    sv__shard *sh;
    if (!s) { c->shard = NULL; return SV_OK; }
    if (s->total == 0 || s->count == 0 || s->first > s->total || s->count > s->total - s->first)
        return sv__fail(SV_ERR_ARG, "shard: samples [%zu, %zu) of a batch of %zu (each process needs at least one)",
                        s->first, s->first + s->count, s->total);
    if (s->comm) {
        size_t f, n;
        const sv_comm *cm = s->comm;
        if (cm->size < 1 || cm->rank < 0 || cm->rank >= cm->size || !cm->allgather || !cm->allreduce_exact)
            return sv__fail(SV_ERR_ARG, "shard: process %d of %d, or a callback missing", cm->rank, cm->size);
        sv_shard_split(s->total, cm->size, cm->rank, &f, &n);
        if (f != s->first || n != s->count)
            return sv__fail(SV_ERR_ARG, "shard: process %d of %d holds samples [%zu, %zu) of %zu, not [%zu, %zu) (sv_shard_split)",
                            cm->rank, cm->size, s->first, s->first + s->count, s->total, f, f + n);
    } else if (s->first != 0 || s->count != s->total) {
        return sv__fail(SV_ERR_ARG, "shard: one process must hold the whole batch (samples [%zu, %zu) of %zu)",
                        s->first, s->first + s->count, s->total);
    }
    if (p && !p->allocated) return sv__fail(SV_ERR_STATE, "shard: the parameters are not allocated");
    if (p && !p->exact) {
        p->exact = (uint64_t *)sv__calloc(2 * (p->n + 1), sizeof(uint64_t), "exact gradient sums");
        if (!p->exact) return SV_ERR_NOMEM;
    }
    sh = (sv__shard *)sv_ctx_alloc(c, sizeof *sh);
    if (!sh) return SV_ERR_NOMEM;
    sh->s = *s;
    sh->params = p;
    c->shard = sh;
    c->draw_site = 0;
    return SV_OK;
}

SV_DEF const sv_shard *sv_ctx_shard(const sv_ctx *c) { return c->shard ? &c->shard->s : NULL; }

/* The key of one random draw site (one dropout op, the masks of a batch, ...), before the sample
   index is mixed in. Shard mode: (batch key, purpose, site number); ordinary mode: a fresh word
   of the context's RNG, so seeding that RNG still fixes every draw. */
static uint64_t sv__site_key(sv_ctx *c, uint64_t purpose)
{
    if (c->shard) return sv_rng_key(sv_rng_key(c->shard->s.key, purpose), c->draw_site++);
    return sv_rng_key(sv_rng_next(&c->rng), purpose);
}

/* Global index of local sample 0 (0 in ordinary mode). */
static size_t sv__sample0(const sv_ctx *c) { return c->shard ? c->shard->s.first : 0; }

/* all [total, width] = every process's rows mine [count, width], in sample order. Ordinary mode
   (sh NULL: one block of width doubles) or one process: a copy. */
static int sv__shard_gather(sv_ctx *c, const sv__shard *sh, const double *mine, size_t width, double *all)
{
    const sv_comm *cm = sh ? sh->s.comm : NULL;
    size_t *counts, r;
    if (!cm) {
        if (all != mine) memcpy(all, mine, (sh ? sh->s.count : 1) * width * sizeof(double));
        return SV_OK;
    }
    counts = (size_t *)sv_ctx_alloc(c, (size_t)cm->size * sizeof(size_t));
    if (!counts) return SV_ERR_NOMEM;
    for (r = 0; r < (size_t)cm->size; r++) {
        size_t n;
        sv_shard_split(sh->s.total, cm->size, (int)r, NULL, &n);
        counts[r] = n * width;
    }
    if (cm->allgather(cm->user, mine, sh->s.count * width, all, counts) != 0) {
        c->failed = 2;
        return sv__fail(SV_ERR_IO, "shard: exchanging values with the other processes failed");
    }
    return SV_OK;
}

/* Shard mode: every process learns whether every process passed a check (status 0). When some
   failed, each returns the status of the first failing process (in rank order) with its message
   ("process r: ..." on the others), so all stop together instead of waiting for one another in
   the next collective. Ordinary mode: status unchanged. */
#define SV__AGREE_MSG 240
static int sv__shard_agree(sv_ctx *c, int status)
{
    const sv__shard *sh = c->shard;
    size_t w = 3 + SV__AGREE_MSG, smp, i;
    double *loc, *all;
    char mine[SV__AGREE_MSG + 1], msg[SV__AGREE_MSG + 1];
    if (!sh || !sh->s.comm) return status;
    loc = (double *)sv_ctx_alloc(c, sh->s.count * w * sizeof(double));
    all = (double *)sv_ctx_alloc(c, sh->s.total * w * sizeof(double));
    if (!loc || !all) return SV_ERR_NOMEM;
    {   /* the message, cut to what the exchange carries */
        const char *e = status ? sv_last_error() : "";
        for (i = 0; i < SV__AGREE_MSG && e[i]; i++) mine[i] = e[i];
        mine[i] = 0;
    }
    memset(loc, 0, sh->s.count * w * sizeof(double));
    for (smp = 0; smp < sh->s.count; smp++) {
        loc[smp * w] = (double)status;
        loc[smp * w + 1] = (double)sh->s.comm->rank;
        for (i = 0; i < SV__AGREE_MSG && mine[i]; i++) loc[smp * w + 3 + i] = (unsigned char)mine[i];
    }
    if (sv__shard_gather(c, sh, loc, w, all) != SV_OK) return SV_ERR_IO;
    for (smp = 0; smp < sh->s.total; smp++) {
        const double *a = all + smp * w;
        int st = (int)a[0], rank = (int)a[1];
        if (!st) continue;
        if (rank == sh->s.comm->rank) return st;
        for (i = 0; i < SV__AGREE_MSG && a[3 + i] != 0; i++) msg[i] = (char)(unsigned char)a[3 + i];
        msg[i] = 0;
        return sv__fail(st, "process %d: %s", rank, msg);
    }
    return SV_OK;
}

/* The sum over the global batch of a per-sample count (cnt[b] for the B local samples). */
static int sv__global_count(sv_ctx *c, const size_t *cnt, size_t B, size_t *sum)
{
    size_t b, total = c->shard ? c->shard->s.total : B;
    double *loc = (double *)sv_ctx_alloc(c, B * sizeof(double)), *all = (double *)sv_ctx_alloc(c, total * sizeof(double));
    if (!loc || !all) return SV_ERR_NOMEM;
    for (b = 0; b < B; b++) loc[b] = (double)cnt[b];
    if (!c->shard) { for (*sum = 0, b = 0; b < B; b++) *sum += cnt[b]; return SV_OK; }
    if (B != c->shard->s.count) return sv__fail(SV_ERR_ARG, "shard mode: %zu rows for %zu samples", B, c->shard->s.count);
    if (sv__shard_gather(c, c->shard, loc, 1, all) != SV_OK) return SV_ERR_IO;
    for (*sum = 0, b = 0; b < total; b++) *sum += (size_t)all[b];
    return SV_OK;
}

/* Exact sums. A contribution x becomes the integer round(x * 2^SV__FX_FRAC) (half away from
   zero), kept as a 128-bit two's-complement number in two words (low first); integer addition
   modulo 2^128 is associative, so the total does not depend on the order or grouping of the
   additions, and it is rounded to float once. Contributions below 2^-81 round to 0; |x| must be
   below 2^26, which leaves 2^20 contributions of headroom before the sum could wrap. The grid is
   far below any gradient that moves a weight (Adam's eps alone is 1e-6) and the range far above
   a healthy step's. Non-finite or too large contributions are counted in *bad instead. */
#define SV__FX_FRAC 80
#define SV__FX_MAXEXP (26 + 127)   /* biased exponent of 2^26: larger ones are out of range */

/* x as the two words of round(x 2^FRAC), branch-free: |x| 2^(FRAC-64) = h + f in double (both
   exact: |x| has 24 significant bits), the high word h, the low word f 2^64 rounded half up, as
   two 32-bit halves (every step exact, every conversion a truncation of a non-negative value
   below 2^43, i.e. a floor), then the two's-complement negation when x < 0. Returns 0, or 1 for
   a value that is not finite or not below 2^26 (words then 0). */
static int sv__fx_words(float x, uint64_t *lo, uint64_t *hi)
{
    union { float f; uint32_t u; } v;
    double a, f;
    int64_t h, a1;
    uint64_t l, m;
    v.f = x;
    if (((v.u >> 23) & 255u) >= SV__FX_MAXEXP) { *lo = *hi = 0; return 1; }
    a = fabs((double)x) * (double)((uint64_t)1 << (SV__FX_FRAC - 64));
    h = (int64_t)a;
    f = (a - (double)h) * 4294967296.0;
    a1 = (int64_t)f;
    l = ((uint64_t)a1 << 32) + (uint64_t)(int64_t)((f - (double)a1) * 4294967296.0 + 0.5);
    m = (uint64_t)0 - (uint64_t)(v.u >> 31);       /* all ones for a negative x */
    l = (l ^ m) - m;
    *lo = l;
    *hi = ((uint64_t)h ^ m) + (m & (uint64_t)(l == 0));
    return 0;
}

/* The same arithmetic over a block: lo[j], hi[j] += the words of x[j]. Branch-free, so that it
   vectorises (8 lanes with AVX-512); returns the count of refused values. */
#define SV__FX_BLOCK 256
static uint64_t sv__fx_add_block(uint64_t *SV__RESTRICT lo, uint64_t *SV__RESTRICT hi, const float *SV__RESTRICT x, size_t len)
{
    uint64_t bad = 0;
    size_t j;
    for (j = 0; j < len; j++) {
        uint32_t u, um;
        uint64_t l, hh, m, ok;
        int64_t h, a1;
        double a, f;
        float xm;
        memcpy(&u, x + j, sizeof u);
        ok = ((u >> 23) & 255u) < SV__FX_MAXEXP;
        bad += 1 - ok;
        um = u & (uint32_t)(0 - ok) & 0x7FFFFFFFu;      /* |x|, or 0 for a refused value (no branch) */
        memcpy(&xm, &um, sizeof xm);
        a = (double)xm * (double)((uint64_t)1 << (SV__FX_FRAC - 64));
        h = (int64_t)a;
        f = (a - (double)h) * 4294967296.0;
        a1 = (int64_t)f;
        l = ((uint64_t)a1 << 32) + (uint64_t)(int64_t)((f - (double)a1) * 4294967296.0 + 0.5);
        m = (uint64_t)0 - (uint64_t)(u >> 31);
        l = (l ^ m) - m;
        hh = ((uint64_t)h ^ m) + (m & (uint64_t)(l == 0));
        lo[j] += l;
        hi[j] += hh + (uint64_t)(lo[j] < l);
    }
    return bad;
}

static void sv__fx_add(uint64_t *w, float x, uint64_t *bad)
{
    uint64_t lo, hi;
    *bad += (uint64_t)sv__fx_words(x, &lo, &hi);
    w[0] += lo;
    w[1] += hi + (w[0] < lo);
}

/* The number of significant bits of a nonzero word. */
static int sv__bitlen64(uint64_t t)
{
#if defined(__GNUC__) || defined(__clang__)
    return 64 - __builtin_clzll(t);
#else
    int n = 0;
    if (t >> 32) { n += 32; t >>= 32; }
    if (t >> 16) { n += 16; t >>= 16; }
    if (t >> 8) { n += 8; t >>= 8; }
    if (t >> 4) { n += 4; t >>= 4; }
    if (t >> 2) { n += 2; t >>= 2; }
    if (t >> 1) { n += 1; t >>= 1; }
    return n + (int)t;
#endif
}

/* round(value * 2^-FRAC) to float, nearest even: the magnitude's top 64 bits (with a sticky bit
   for the rest, which keeps the rounding of 24 bits exact) converted by the C library's single
   correctly rounded uint64 -> float conversion, then scaled by a power of two (exact). */
static float sv__fx_float(const uint64_t *w)
{
    uint64_t lo = w[0], hi = w[1], top;
    int neg = (int)(hi >> 63), s = 0;
    float f;
    if (neg) { lo = ~lo + 1; hi = ~hi + (lo == 0); }
    if (hi) {
        s = sv__bitlen64(hi);                      /* at most 43 for sums within the range */
        top = s == 64 ? hi : (hi << (64 - s)) | (lo >> s) | (uint64_t)((lo & (((uint64_t)1 << s) - 1)) != 0);
    } else {
        top = lo;
    }
    f = (float)top * sv__pow2i(s - SV__FX_FRAC);
    return neg ? -f : f;
}

/* The gradient of a tensor without a sample dimension (a parameter, or a value made from
   parameters only) summed exactly over the samples: a backward asks for one slot per sample,
   writes that sample's contribution into it (=, not +=), and the slots are added into the exact
   sums when they fill up (a parameter's own words; for another tensor, scratch words that
   sv__wg_end sums over the processes and rounds into its float gradient). */
typedef struct sv__wg {
    sv_tensor *t;
    uint64_t *acc;              /* 2 words per element */
    float *slot;                /* cap slots of n floats */
    size_t n, cap, used;
    uint64_t bad;
    int own;                    /* t is not a parameter: acc is scratch */
} sv__wg;

#define SV__WG_SLOT_BYTES ((size_t)32 << 20)

static int sv__wg_begin(sv_ctx *c, const sv__node *nd, sv__wg *w, sv_tensor *t)
{
    memset(w, 0, sizeof *w);
    if (!t || !t->requires_grad) return 0;
    w->t = t;
    w->n = t->n;
    w->acc = sv__exact_of(nd->shard, t);
    if (!w->acc) {
        w->own = 1;
        w->acc = (uint64_t *)sv_ctx_alloc(c, 2 * (w->n + 1) * sizeof(uint64_t));
        if (!w->acc) return 0;
        memset(w->acc, 0, 2 * (w->n + 1) * sizeof(uint64_t));
    }
    w->cap = SV__WG_SLOT_BYTES / (w->n * sizeof(float) + 1);
    if (w->cap > nd->shard->s.count) w->cap = nd->shard->s.count;
    if (w->cap < 1) w->cap = 1;
    w->slot = (float *)sv_ctx_alloc(c, w->cap * w->n * sizeof(float));
    if (!w->slot) { w->t = NULL; return 0; }
    return 1;
}

/* The slots into the exact sums, a block of elements at a time: its words stay in L1 (split into
   low and high arrays, so the additions vectorise) while every slot's contribution is added. */
static void sv__wg_flush(sv__wg *w)
{
    ptrdiff_t blk;
    uint64_t bad = 0;
    size_t n = w->n, used = w->used;
SV__OMP(parallel for reduction(+:bad) if (n * used > (1u << 15)))
    for (blk = 0; blk < (ptrdiff_t)((n + SV__FX_BLOCK - 1) / SV__FX_BLOCK); blk++) {
        uint64_t lo[SV__FX_BLOCK], hi[SV__FX_BLOCK], *a = w->acc + 2 * (size_t)blk * SV__FX_BLOCK;
        size_t e0 = (size_t)blk * SV__FX_BLOCK, len = n - e0 < SV__FX_BLOCK ? n - e0 : SV__FX_BLOCK, j, k;
        for (j = 0; j < len; j++) { lo[j] = a[2 * j]; hi[j] = a[2 * j + 1]; }
        for (k = 0; k < used; k++) bad += sv__fx_add_block(lo, hi, w->slot + k * n + e0, len);
        for (j = 0; j < len; j++) { a[2 * j] = lo[j]; a[2 * j + 1] = hi[j]; }
    }
    w->bad += bad;
    w->used = 0;
}

/* The slot for the next sample's contribution (n floats to overwrite). */
static float *sv__wg_slot(sv__wg *w)
{
    if (w->used == w->cap) sv__wg_flush(w);
    return w->slot + w->used++ * w->n;
}

static void sv__wg_end(sv_ctx *c, const sv__node *nd, sv__wg *w)
{
    const sv__shard *sh = nd->shard;
    if (!w->t) return;
    sv__wg_flush(w);
    if (!w->own) {
        if (sh->params) sh->params->exact[2 * sh->params->n] += w->bad;
    } else {
        /* a value made from parameters (weight normalisation's w): its gradient is needed in
           float now by the op that made it, summed over every process */
        float *g;
        const sv_comm *cm = sh->s.comm;
        size_t i;
        w->acc[2 * w->n] = w->bad;
        if (cm && cm->allreduce_exact(cm->user, w->acc, w->n + 1) != 0) {
            c->failed = 2;
            sv__fail(SV_ERR_IO, "shard: summing a gradient over the processes failed");
            return;
        }
        g = sv__g(c, w->t);
        if (!g) return;
        for (i = 0; i < w->n; i++) g[i] += w->acc[2 * w->n] ? NAN : sv__fx_float(w->acc + 2 * i);
        if (sh->params && w->acc[2 * w->n]) sh->params->exact[2 * sh->params->n] += 1;
    }
    w->t = NULL;
}

/* Rows per sample of an op input with `rows` rows in shard mode (sample-major: sample s owns
   rows [s m, (s+1) m)), or 0 with the op failed when they do not divide. */
static size_t sv__rows_per_sample(sv_ctx *c, const sv__node *nd, size_t rows)
{
    size_t S = nd->shard->s.count;
    if (rows % S) {
        c->failed = 2;
        sv__fail(SV_ERR_ARG, "shard mode: op %s has %zu rows, not a multiple of the %zu samples of this process", nd->op, rows, S);
        return 0;
    }
    return rows / S;
}

SV_DEF int sv_params_grad_reduce(sv_params *p, const sv_shard *s)
{
    ptrdiff_t i;
    uint64_t *ex = p->exact;
    if (!p->allocated || !ex) return sv__fail(SV_ERR_STATE, "gradient reduce: no shard-mode gradients (sv_ctx_set_shard with these parameters)");
    if (!s || s->first == 0) {
        /* float gradients of ops free of the sample dimension: global already, counted once */
        uint64_t bad = 0;
SV__OMP(parallel for reduction(+:bad) if (p->n > (1u << 15)))
        for (i = 0; i < (ptrdiff_t)p->n; i++) if (p->grad[i] != 0.0f) sv__fx_add(ex + 2 * (size_t)i, p->grad[i], &bad);
        ex[2 * p->n] += bad;
    }
    if (s && s->comm && s->comm->allreduce_exact(s->comm->user, ex, p->n + 1) != 0)
        return sv__fail(SV_ERR_IO, "gradient reduce: summing over the processes failed");
    if (ex[2 * p->n]) {
        for (i = 0; i < (ptrdiff_t)p->n; i++) p->grad[i] = NAN;
        return sv__fail(SV_ERR_NUMERIC, "gradient reduce: %llu gradient contributions were not finite or beyond 2^26",
                        (unsigned long long)ex[2 * p->n]);
    }
SV__OMP(parallel for if (p->n > (1u << 15)))
    for (i = 0; i < (ptrdiff_t)p->n; i++) p->grad[i] = sv__fx_float(ex + 2 * (size_t)i);
    return SV_OK;
}

/* ======================================================================================
   4 Autodiff tape
   ====================================================================================== */
/* ---------------------------------------------------------------- 4.1 the tape */

static int sv__prof_slot(sv_ctx *c, const char *op)
{
    size_t i;
    for (i = 0; i < c->prof_n; i++) if (c->prof_name[i] == op || strcmp(c->prof_name[i], op) == 0) return (int)i;
    if (c->prof_n == SV__PROF_MAX) return -1;
    c->prof_name[c->prof_n] = op;
    return (int)c->prof_n++;
}

/* Ops time their forward with SV__FWD_BEGIN / SV__FWD_END when profiling is on. */
#define SV__FWD_BEGIN(c) double sv__t0 = (c)->profile ? sv__now() : 0.0
#define SV__FWD_END(c, name) do { if ((c)->profile) { int s_ = sv__prof_slot((c), (name)); \
    if (s_ >= 0) { (c)->prof_fwd[s_] += sv__now() - sv__t0; (c)->prof_calls[s_]++; } } } while (0)

SV_DEF void sv_ctx_set_profile(sv_ctx *c, int on) { c->profile = on != 0; }
SV_DEF void sv_ctx_set_progress(sv_ctx *c, sv_progress_fn fn, void *user) { c->progress_fn = fn; c->progress_user = user; }
SV_DEF double sv_ctx_flops(const sv_ctx *c) { return c->flops; }
SV_DEF void sv_ctx_flops_clear(sv_ctx *c) { c->flops = 0; }
/* n_products products of `madds` multiply-adds each (e.g. the gradients a backward computes) */
static void sv__count_flops(sv_ctx *c, double madds, int n_products) { c->flops += 2.0 * madds * (double)n_products; }
SV_DEF void sv_ctx_profile_clear(sv_ctx *c)
{
    c->prof_n = 0;
    memset(c->prof_fwd, 0, sizeof c->prof_fwd);
    memset(c->prof_bwd, 0, sizeof c->prof_bwd);
    memset(c->prof_calls, 0, sizeof c->prof_calls);
}
SV_DEF size_t sv_ctx_profile(const sv_ctx *c, const char **names, double *fwd_s, double *bwd_s, size_t *calls, size_t cap)
{
    size_t i;
    for (i = 0; i < c->prof_n && i < cap; i++) {
        if (names) names[i] = c->prof_name[i];
        if (fwd_s) fwd_s[i] = c->prof_fwd[i];
        if (bwd_s) bwd_s[i] = c->prof_bwd[i];
        if (calls) calls[i] = c->prof_calls[i];
    }
    return c->prof_n;
}

/* Does an op on these inputs need a tape node? (grad mode on and some input needs a gradient) */
static int sv__needs(sv_ctx *c, const sv_tensor *a, const sv_tensor *b, const sv_tensor *d, const sv_tensor *e)
{
    if (!c->grad_enabled) return 0;
    return (a && a->requires_grad) || (b && b->requires_grad) || (d && d->requires_grad) || (e && e->requires_grad);
}

/* Shard mode: t has no sample dimension (a parameter or buffer, or made from them only). */
static int sv__free_of_samples(const sv__shard *sh, const sv_tensor *t)
{
    return t->kind != SV_ACTIVATION || t->sample_free || sv__exact_of(sh, t) != NULL;
}

/* Append a node producing `out` from up to four inputs. */
static sv__node *sv__record(sv_ctx *c, const char *op, sv__backward_fn fn, sv_tensor *out,
                            sv_tensor *a, sv_tensor *b, sv_tensor *d, sv_tensor *e)
{
    sv__node *n = (sv__node *)sv_ctx_alloc(c, sizeof(sv__node));
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->op = op;
    n->backward = fn;
    n->out = out;
    n->in[0] = a; n->in[1] = b; n->in[2] = d; n->in[3] = e;
    n->prev = c->tape;
    n->prof = c->profile ? sv__prof_slot(c, op) : -1;
    n->precision = c->precision;
    n->shard = c->shard;
    if (c->shard) {
        n->sample_free = (a || b || d || e) && (!a || sv__free_of_samples(c->shard, a)) && (!b || sv__free_of_samples(c->shard, b)) &&
                         (!d || sv__free_of_samples(c->shard, d)) && (!e || sv__free_of_samples(c->shard, e));
        out->sample_free = n->sample_free;
    }
    c->tape = n;
    c->tape_len++;
    out->requires_grad = 1;
    return n;
}

SV_DEF size_t sv_tape_length(const sv_ctx *c) { return c->tape_len; }

SV_DEF int sv_backward(sv_ctx *c, sv_tensor *loss)
{
    sv__node *n;
    int precision;
    if (!loss) return sv__fail(SV_ERR_STATE, "backward: the loss is NULL (the forward failed)");
    if (c->failed) return sv__fail(SV_ERR_STATE, "backward: an op failed during the forward pass");
    if (c->backward_done) return sv__fail(SV_ERR_STATE, "backward: already ran on this tape; reset the context and run the forward again");
    if (loss->n != 1) return sv__fail(SV_ERR_ARG, "backward: the loss must be a scalar (it has %zu elements)", loss->n);
    if (!c->tape || !loss->requires_grad)
        return sv__fail(SV_ERR_STATE, "backward: nothing was recorded for this loss (no forward in grad mode, or no parameter involved)");
    if (!sv__g(c, loss)) return SV_ERR_NOMEM;
    loss->grad[0] += 1.0f;
    precision = c->precision;
    for (n = c->tape; n; n = n->prev) {
        double t0 = 0;
        if (!n->out->grad) continue;    /* nothing flowed into this node's output */
        if (n->prof >= 0) t0 = sv__now();
        c->precision = n->precision;   /* the products of a backward in its forward's precision */
        c->bwd_node = n;
        n->backward(c, n);
        c->bwd_node = NULL;
        if (n->prof >= 0) c->prof_bwd[n->prof] += sv__now() - t0;
        if (c->failed == 2) { c->precision = precision; return sv_last_status(); }     /* the op said why */
        if (c->failed) { c->precision = precision; return sv__fail(SV_ERR_NOMEM, "backward of %s: out of arena memory", n->op); }
        /* Every consumer of n->out was recorded after n, so its backward has already run: n was
           the last reader of this gradient. Parameter gradients live outside the arena and are
           never op outputs; the kind test only keeps that true if an op ever changes. */
        if (c->recycle_grads && n->out->kind == SV_ACTIVATION) {
            sv__arena_release(c, n->out->grad, n->out->n * sizeof(float));
            n->out->grad = NULL;
        }
    }
    c->precision = precision;
    c->backward_done = 1;
    return SV_OK;
}

static int sv__finite(const float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) if (!isfinite(x[i])) return 0;
    return 1;
}

SV_DEF const char *sv_tape_first_nonfinite(const sv_ctx *c, size_t *out_index)
{
    /* the tape is linked last-to-first; walk it and keep the earliest offender */
    const sv__node *n;
    const char *first = NULL;
    size_t idx = c->tape_len, found = 0;
    for (n = c->tape; n; n = n->prev) {
        idx--;
        /* data = NULL: an output its consumer dropped and recomputes (sv__conv1d_gn_in) */
        if (n->out->data && !sv__finite(n->out->data, n->out->n)) { first = n->op; found = idx; }
    }
    if (out_index) *out_index = found;
    return first;
}

/* ======================================================================================
   5 Layers (ops)
   ====================================================================================== */
/* ---------------------------------------------------------------- 5.0 op helpers */
#define SV__IN1(x) do { if (!(x)) { c->failed = 1; return NULL; } } while (0)
#define SV__IN2(x, y) do { if (!(x) || !(y)) { c->failed = 1; return NULL; } } while (0)

static sv_tensor *sv__shape_error(sv_ctx *c, const char *op, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->failed = 1;
    sv__fail(SV_ERR_ARG, "%s: %s", op, msg);
    return NULL;
}

/* b broadcasts over a if b's shape equals a's trailing dims. */
static int sv__bcast_ok(const sv_tensor *a, const sv_tensor *b)
{
    int i, off = a->ndim - b->ndim;
    if (off < 0) return 0;
    for (i = 0; i < b->ndim; i++) if (a->shape[off + i] != b->shape[i]) return 0;
    return 1;
}

/* Column sums of dy [rows,cols] into g [cols] (+=), deterministic: each column is summed by one
   thread in row order, whatever the thread count. */
static void sv__colsum_acc(float *g, const float *dy, size_t rows, size_t cols)
{
    size_t nblk = (cols + 63) / 64, bi;
SV__OMP(parallel for schedule(static) if (rows * cols > (1u << 16)))
    for (bi = 0; bi < nblk; bi++) {
        size_t j0 = bi * 64, j1 = j0 + 64 < cols ? j0 + 64 : cols, r, j;
        float acc[64];
        for (j = j0; j < j1; j++) acc[j - j0] = 0;
        for (r = 0; r < rows; r++) {
            const float *row = dy + r * cols;
            for (j = j0; j < j1; j++) acc[j - j0] += row[j];
        }
        for (j = j0; j < j1; j++) g[j] += acc[j - j0];
    }
}

#define SV__PAR_N (1u << 15)   /* elementwise loops below this many elements stay serial */

/* The products of the layers (linear, matmul, conv1d, attention): sv_gemm, or sv_gemm_bf16 when
   the running op's precision is bf16. */
static void sv__mm(const sv_ctx *c, int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A,
                   size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    if (c->precision == SV_BF16) sv_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else sv_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Shard mode (section 3.4): input t of node n has no sample dimension while the node has one, so
   t's gradient is a sum over the samples, taken exactly and per sample (sv__wg). The backwards
   then ask for t's float gradient only otherwise: sv__g_unless_by_sample. */
static int sv__by_sample(const sv__node *n, const sv_tensor *t)
{
    return n->shard && !n->sample_free && t && t->requires_grad && sv__free_of_samples(n->shard, t);
}
static float *sv__g_unless_by_sample(sv_ctx *c, const sv__node *n, sv_tensor *t)
{
    return sv__by_sample(n, t) ? NULL : sv__g(c, t);
}

/* Shard mode: t's gradient += scale * column sums of dy [rows,cols], per sample (sample-major
   rows). The bias of a linear layer or convolution, a broadcast add. */
static void sv__colsum_by_sample(sv_ctx *c, const sv__node *n, sv_tensor *t, const float *dy, size_t rows, size_t cols,
                                 float scale)
{
    sv__wg w;
    size_t m, smp, j;
    if (!sv__wg_begin(c, n, &w, t) || !(m = sv__rows_per_sample(c, n, rows))) return;
    for (smp = 0; smp < n->shard->s.count; smp++) {
        float *g = sv__wg_slot(&w);
        memset(g, 0, cols * sizeof(float));
        sv__colsum_acc(g, dy + smp * m * cols, m, cols);
        if (scale != 1.0f) for (j = 0; j < cols; j++) g[j] *= scale;
    }
    sv__wg_end(c, n, &w);
}

/* A bias-like gradient: column sums of dy [rows,cols] into t, per sample in shard mode. */
static void sv__bias_grad(sv_ctx *c, const sv__node *n, sv_tensor *t, const float *dy, size_t rows, size_t cols)
{
    float *g;
    if (sv__by_sample(n, t)) sv__colsum_by_sample(c, n, t, dy, rows, cols, 1.0f);
    else if ((g = sv__g(c, t)) != NULL) sv__colsum_acc(g, dy, rows, cols);
}

/* y [rows,n] = row in every row (a bias before a GEMM with beta = 1) */
static void sv__fill_rows(float *y, const float *row, size_t rows, size_t n)
{
    ptrdiff_t r;
SV__OMP(parallel for if (rows * n > SV__PAR_N))
    for (r = 0; r < (ptrdiff_t)rows; r++) memcpy(y + (size_t)r * n, row, n * sizeof(float));
}

/* ---------------------------------------------------------------- 5.1 add / sub / mul */
/* The broadcast elementwise loops: a has n elements, b repeats every `inner` of them. Blocks of
   a are split between the threads (a same-shape add is one row of b, so splitting rows of b
   would leave one thread); each block finds its place in b with one division and then walks
   b's rows. (An integer modulo per element kept these loops scalar: 3.6 ms of the joint
   step's forward went to adds.) */
enum { SV__BC_ADD, SV__BC_MUL, SV__BC_MUL_ACC };   /* y = a + s*b;  y = a*b;  y += a*b */

static void sv__bcast_range(int op, float *y, const float *a, const float *b, float s, size_t inner,
                            size_t lo, size_t hi)
{
    size_t i = lo, j = lo % inner, k;
    while (i < hi) {
        size_t run = inner - j < hi - i ? inner - j : hi - i;
        float *yi = y + i;
        const float *ai = a + i, *bj = b + j;
        if (op == SV__BC_ADD) for (k = 0; k < run; k++) yi[k] = ai[k] + s * bj[k];
        else if (op == SV__BC_MUL) for (k = 0; k < run; k++) yi[k] = ai[k] * bj[k];
        else for (k = 0; k < run; k++) yi[k] += ai[k] * bj[k];
        i += run;
        j = 0;
    }
}

static void sv__bcast(int op, float *y, const float *a, const float *b, float s, size_t n, size_t inner)
{
    ptrdiff_t blk, nblk = (ptrdiff_t)((n + SV__BLOCK - 1) / SV__BLOCK);
    if (n == 0 || inner == 0) return;
SV__OMP(parallel for schedule(static) if (n > SV__PAR_N))
    for (blk = 0; blk < nblk; blk++) {
        size_t lo = (size_t)blk * SV__BLOCK, hi = lo + SV__BLOCK < n ? lo + SV__BLOCK : n;
        sv__bcast_range(op, y, a, b, s, inner, lo, hi);
    }
}

/* y = a + s*b with b broadcast over a's leading dims; s = +1 (add) or -1 (sub).
   da = dy; db = s * (dy summed over the broadcast dims). */
static void sv__addsub_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *a = n->in[0], *b = n->in[1];
    const float *dy = n->out->grad;
    float s = n->farg[0], *ga = sv__g(c, a), *gb = sv__g_unless_by_sample(c, n, b);
    size_t i;
    if (ga) {
SV__OMP(parallel for if (a->n > SV__PAR_N))
        for (i = 0; i < a->n; i++) ga[i] += dy[i];
    }
    if (sv__by_sample(n, b)) sv__colsum_by_sample(c, n, b, dy, a->n / b->n, b->n, s);
    if (gb) {
        if (b->n == a->n) {
SV__OMP(parallel for if (b->n > SV__PAR_N))
            for (i = 0; i < b->n; i++) gb[i] += s * dy[i];
        } else {
            float *tmp = (float *)sv_ctx_alloc(c, b->n * sizeof(float));
            if (!tmp) return;
            memset(tmp, 0, b->n * sizeof(float));
            sv__colsum_acc(tmp, dy, a->n / b->n, b->n);
            for (i = 0; i < b->n; i++) gb[i] += s * tmp[i];
        }
    }
}

static sv_tensor *sv__addsub(sv_ctx *c, sv_tensor *a, sv_tensor *b, float s, const char *op)
{
    sv_tensor *y;
    SV__IN2(a, b);
    if (!sv__bcast_ok(a, b)) return sv__shape_error(c, op, "shape of b does not match the trailing dims of a");
    SV__FWD_BEGIN(c);
    y = sv__like(c, a);
    if (!y) return NULL;
    sv__bcast(SV__BC_ADD, y->data, a->data, b->data, s, a->n, b->n);
    if (sv__needs(c, a, b, NULL, NULL)) {
        sv__node *n = sv__record(c, op, sv__addsub_bwd, y, a, b, NULL, NULL);
        if (!n) return NULL;
        n->farg[0] = s;
    }
    SV__FWD_END(c, op);
    return y;
}

SV_DEF sv_tensor *sv_add(sv_ctx *c, sv_tensor *a, sv_tensor *b) { return sv__addsub(c, a, b, 1.0f, "add"); }
SV_DEF sv_tensor *sv_sub(sv_ctx *c, sv_tensor *a, sv_tensor *b) { return sv__addsub(c, a, b, -1.0f, "sub"); }

/* y = a * b (b broadcast): da = dy*b, db = sum over the broadcast dims of dy*a */
static void sv__mul_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *a = n->in[0], *b = n->in[1];
    const float *dy = n->out->grad;
    float *ga = sv__g(c, a), *gb = sv__g_unless_by_sample(c, n, b);
    size_t i, inner = b->n;
    if (ga) sv__bcast(SV__BC_MUL_ACC, ga, dy, b->data, 1.0f, a->n, inner);
    if (gb || sv__by_sample(n, b)) {
        float *prod = (float *)sv_ctx_alloc(c, a->n * sizeof(float));
        if (!prod) return;
        for (i = 0; i < a->n; i++) prod[i] = dy[i] * a->data[i];
        if (gb) sv__colsum_acc(gb, prod, a->n / inner, inner);
        else sv__colsum_by_sample(c, n, b, prod, a->n / inner, inner, 1.0f);
    }
}

SV_DEF sv_tensor *sv_mul(sv_ctx *c, sv_tensor *a, sv_tensor *b)
{
    sv_tensor *y;
    SV__IN2(a, b);
    if (!sv__bcast_ok(a, b)) return sv__shape_error(c, "mul", "shape of b does not match the trailing dims of a");
    SV__FWD_BEGIN(c);
    y = sv__like(c, a);
    if (!y) return NULL;
    sv__bcast(SV__BC_MUL, y->data, a->data, b->data, 1.0f, a->n, b->n);
    if (sv__needs(c, a, b, NULL, NULL) && !sv__record(c, "mul", sv__mul_bwd, y, a, b, NULL, NULL)) return NULL;
    SV__FWD_END(c, "mul");
    return y;
}

/* ---------------------------------------------------------------- 5.2 scale / axpby / constants */
/* y = s*x + t: dx = s*dy (also the backward of grad_scale and add_const) */
static void sv__affine_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]), s = n->farg[0];
    const float *dy = n->out->grad;
    size_t i;
    if (!gx) return;
SV__OMP(parallel for if (n->out->n > SV__PAR_N))
    for (i = 0; i < n->out->n; i++) gx[i] += s * dy[i];
}

static sv_tensor *sv__affine(sv_ctx *c, sv_tensor *x, float s, float t, const float *k, float gscale, const char *op)
{
    sv_tensor *y;
    size_t i;
    SV__IN1(x);
    y = sv__like(c, x);
    if (!y) return NULL;
SV__OMP(parallel for if (x->n > SV__PAR_N))
    for (i = 0; i < x->n; i++) y->data[i] = s * x->data[i] + t + (k ? k[i] : 0.0f);
    if (sv__needs(c, x, NULL, NULL, NULL)) {
        sv__node *n = sv__record(c, op, sv__affine_bwd, y, x, NULL, NULL, NULL);
        if (!n) return NULL;
        n->farg[0] = gscale;
    }
    return y;
}

SV_DEF sv_tensor *sv_scale(sv_ctx *c, sv_tensor *x, float s) { return sv__affine(c, x, s, 0.0f, NULL, s, "scale"); }
SV_DEF sv_tensor *sv_add_scalar(sv_ctx *c, sv_tensor *x, float s) { return sv__affine(c, x, 1.0f, s, NULL, 1.0f, "add_scalar"); }
SV_DEF sv_tensor *sv_add_const(sv_ctx *c, sv_tensor *x, const float *k) { return sv__affine(c, x, 1.0f, 0.0f, k, 1.0f, "add_const"); }
/* identity forward, gradient times s: fairseq's GradMultiply (feature_grad_mult) */
SV_DEF sv_tensor *sv_grad_scale(sv_ctx *c, sv_tensor *x, float s) { return sv__affine(c, x, 1.0f, 0.0f, NULL, s, "grad_scale"); }

static void sv__axpby_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]), *gy = sv__g(c, n->in[1]);
    const float *dy = n->out->grad;
    size_t i;
    for (i = 0; i < n->out->n; i++) {
        if (gx) gx[i] += n->farg[0] * dy[i];
        if (gy) gy[i] += n->farg[1] * dy[i];
    }
}

SV_DEF sv_tensor *sv_axpby(sv_ctx *c, float a, sv_tensor *x, float b, sv_tensor *y)
{
    sv_tensor *z;
    size_t i;
    SV__IN2(x, y);
    if (x->n != y->n) return sv__shape_error(c, "axpby", "sizes differ (%zu vs %zu)", x->n, y->n);
    z = sv__like(c, x);
    if (!z) return NULL;
    for (i = 0; i < x->n; i++) z->data[i] = a * x->data[i] + b * y->data[i];
    if (sv__needs(c, x, y, NULL, NULL)) {
        sv__node *n = sv__record(c, "axpby", sv__axpby_bwd, z, x, y, NULL, NULL);
        if (!n) return NULL;
        n->farg[0] = a;
        n->farg[1] = b;
    }
    return z;
}

/* ---------------------------------------------------------------- 5.3 unary maths */
/* y = x^2: dx = 2x dy */
static void sv__square_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]);
    const float *x = n->in[0]->data, *dy = n->out->grad;
    size_t i;
    if (!gx) return;
SV__OMP(parallel for if (n->out->n > SV__PAR_N))
    for (i = 0; i < n->out->n; i++) gx[i] += 2.0f * x[i] * dy[i];
}

SV_DEF sv_tensor *sv_square(sv_ctx *c, sv_tensor *x)
{
    sv_tensor *y;
    size_t i;
    SV__IN1(x);
    y = sv__like(c, x);
    if (!y) return NULL;
SV__OMP(parallel for if (x->n > SV__PAR_N))
    for (i = 0; i < x->n; i++) y->data[i] = x->data[i] * x->data[i];
    if (sv__needs(c, x, NULL, NULL, NULL) && !sv__record(c, "square", sv__square_bwd, y, x, NULL, NULL, NULL)) return NULL;
    return y;
}

/* y = sqrt(x): dx = dy / (2y). At y = 0 the derivative is infinite; we pass 0 (a subgradient)
   so a zero under a square root never poisons the step with inf. */
static void sv__sqrt_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]);
    const float *y = n->out->data, *dy = n->out->grad;
    size_t i;
    if (!gx) return;
    for (i = 0; i < n->out->n; i++) if (y[i] > 0) gx[i] += dy[i] / (2.0f * y[i]);
}

SV_DEF sv_tensor *sv_sqrt(sv_ctx *c, sv_tensor *x)
{
    sv_tensor *y;
    size_t i;
    SV__IN1(x);
    y = sv__like(c, x);
    if (!y) return NULL;
    for (i = 0; i < x->n; i++) y->data[i] = sqrtf(x->data[i]);
    if (sv__needs(c, x, NULL, NULL, NULL) && !sv__record(c, "sqrt", sv__sqrt_bwd, y, x, NULL, NULL, NULL)) return NULL;
    return y;
}

/* y = log(x): dx = dy / x;  y = exp(x): dx = dy * y */
static void sv__log_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]);
    size_t i;
    if (!gx) return;
    for (i = 0; i < n->out->n; i++) gx[i] += n->out->grad[i] / n->in[0]->data[i];
}

static void sv__exp_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]);
    size_t i;
    if (!gx) return;
    for (i = 0; i < n->out->n; i++) gx[i] += n->out->grad[i] * n->out->data[i];
}

static sv_tensor *sv__unary(sv_ctx *c, sv_tensor *x, int is_exp)
{
    sv_tensor *y;
    size_t i;
    SV__IN1(x);
    y = sv__like(c, x);
    if (!y) return NULL;
    if (is_exp) sv_vexp(y->data, x->data, x->n);
    else for (i = 0; i < x->n; i++) y->data[i] = logf(x->data[i]);
    if (sv__needs(c, x, NULL, NULL, NULL) && !sv__record(c, is_exp ? "exp" : "log", is_exp ? sv__exp_bwd : sv__log_bwd, y, x, NULL, NULL, NULL)) return NULL;
    return y;
}

SV_DEF sv_tensor *sv_log(sv_ctx *c, sv_tensor *x) { return sv__unary(c, x, 0); }
SV_DEF sv_tensor *sv_exp(sv_ctx *c, sv_tensor *x) { return sv__unary(c, x, 1); }

static void sv__relu_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]);
    const float *y = n->out->data, *dy = n->out->grad;
    size_t i;
    if (!gx) return;
SV__OMP(parallel for if (n->out->n > SV__PAR_N))
    for (i = 0; i < n->out->n; i++) if (y[i] > 0) gx[i] += dy[i];
}

SV_DEF sv_tensor *sv_relu(sv_ctx *c, sv_tensor *x)
{
    sv_tensor *y;
    size_t i;
    SV__IN1(x);
    SV__FWD_BEGIN(c);
    y = sv__like(c, x);
    if (!y) return NULL;
SV__OMP(parallel for if (x->n > SV__PAR_N))
    for (i = 0; i < x->n; i++) y->data[i] = x->data[i] > 0 ? x->data[i] : 0.0f;
    if (sv__needs(c, x, NULL, NULL, NULL) && !sv__record(c, "relu", sv__relu_bwd, y, x, NULL, NULL, NULL)) return NULL;
    SV__FWD_END(c, "relu");
    return y;
}

/* GELU(x) = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) (Hendrycks & Gimpel 2016, exact form as in
   fairseq); GELU'(x) = Phi(x) + x phi(x). */
static void sv__gelu_bwd(sv_ctx *c, sv__node *n)
{
    int fresh;
    const float *x = n->in[0]->data, *dy = n->out->grad;   /* read before gx may take it over */
    float *gx = sv__g_inplace(c, n, n->in[0], &fresh);
    if (gx) SV__BLOCKED(n->out->n, sv__gelu_bwd_range(gx, x, dy, lo, hi, !fresh));
}

SV_DEF sv_tensor *sv_gelu_op(sv_ctx *c, sv_tensor *x)
{
    sv_tensor *y;
    SV__IN1(x);
    SV__FWD_BEGIN(c);
    y = sv__like(c, x);
    if (!y) return NULL;
    sv_gelu(y->data, x->data, x->n);
    if (sv__needs(c, x, NULL, NULL, NULL) && !sv__record(c, "gelu", sv__gelu_bwd, y, x, NULL, NULL, NULL)) return NULL;
    SV__FWD_END(c, "gelu");
    return y;
}

/* ---------------------------------------------------------------- 5.4 reductions */
static void sv__sum_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]), g = n->out->grad[0] * n->farg[0];
    size_t i;
    if (!gx) return;
    for (i = 0; i < n->in[0]->n; i++) gx[i] += g;
}

static sv_tensor *sv__reduce(sv_ctx *c, sv_tensor *x, int mean)
{
    sv_tensor *y;
    double s = 0;
    size_t i;
    SV__IN1(x);
    y = sv_new1(c, 1);
    if (!y) return NULL;
    for (i = 0; i < x->n; i++) s += x->data[i];
    y->data[0] = (float)(mean ? s / (double)x->n : s);
    if (sv__needs(c, x, NULL, NULL, NULL)) {
        sv__node *n = sv__record(c, mean ? "mean" : "sum", sv__sum_bwd, y, x, NULL, NULL, NULL);
        if (!n) return NULL;
        n->farg[0] = mean ? 1.0f / (float)x->n : 1.0f;
    }
    return y;
}

SV_DEF sv_tensor *sv_sum(sv_ctx *c, sv_tensor *x) { return sv__reduce(c, x, 0); }
SV_DEF sv_tensor *sv_mean(sv_ctx *c, sv_tensor *x) { return sv__reduce(c, x, 1); }

/* ---------------------------------------------------------------- 5.5 straight-through and dropout */
static void sv__st_bwd(sv_ctx *c, sv__node *n)
{
    float *gs = sv__g(c, n->in[1]);
    if (gs) sv_axpy(n->out->n, 1.0f, n->out->grad, gs);
}

SV_DEF sv_tensor *sv_straight_through(sv_ctx *c, sv_tensor *hard, sv_tensor *soft)
{
    sv_tensor *y;
    SV__IN2(hard, soft);
    if (hard->n != soft->n) return sv__shape_error(c, "straight_through", "sizes differ");
    y = sv__like(c, soft);
    if (!y) return NULL;
    memcpy(y->data, hard->data, hard->n * sizeof(float));
    if (sv__needs(c, soft, NULL, NULL, NULL) && !sv__record(c, "straight_through", sv__st_bwd, y, NULL, soft, NULL, NULL)) return NULL;
    return y;
}

/* Inverted dropout: kept units are scaled by 1/(1-p), so evaluation needs no rescaling. The mask
   (0 or 1/(1-p)) is saved for the backward. Element i is dropped when the counter hash of
   (key, i) is below p, so any thread can draw any element. Ordinary mode: one key per op from
   the context's RNG, i over the whole tensor. Shard mode: x is sample-major and element i of
   global sample g uses key (site key, g) and its index within the sample, the same bits
   whichever process holds the sample. */
static int sv__dropout_mask(sv_ctx *c, float *m, size_t n, float p, float keep, const char *op)
{
    ptrdiff_t i;
    if (c->shard) {
        size_t S = c->shard->s.count, per = n / S, smp, g0 = sv__sample0(c);
        uint64_t site = sv__site_key(c, SV_DRAW_DROPOUT), *keys;
        if (n % S) { sv__shape_error(c, op, "%zu elements for %zu samples", n, S); return SV_ERR_ARG; }
        keys = (uint64_t *)sv_ctx_alloc(c, S * sizeof(uint64_t));
        if (!keys) return SV_ERR_NOMEM;
        for (smp = 0; smp < S; smp++) keys[smp] = sv_rng_key(site, g0 + smp);
        /* blocks of 4096 elements, one division each to find where they start */
SV__OMP(parallel for if (n > SV__PAR_N))
        for (i = 0; i < (ptrdiff_t)((n + 4095) / 4096); i++) {
            size_t lo = (size_t)i * 4096, hi = lo + 4096 < n ? lo + 4096 : n, sm = lo / per, j = lo % per, k;
            for (k = lo; k < hi; k++) {
                m[k] = sv__hash_uniformf(keys[sm], j) < p ? 0.0f : keep;
                if (++j == per) { j = 0; sm++; }
            }
        }
    } else {
        uint64_t key = sv_rng_next(&c->rng);   /* one draw per op; the elements come from the counter hash */
SV__OMP(parallel for if (n > SV__PAR_N))
        for (i = 0; i < (ptrdiff_t)n; i++) m[i] = sv__hash_uniformf(key, (uint64_t)i) < p ? 0.0f : keep;
    }
    return SV_OK;
}

static void sv__dropout_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]);
    const float *m = (const float *)n->save[0], *dy = n->out->grad;
    size_t i;
    if (!gx) return;
SV__OMP(parallel for if (n->out->n > SV__PAR_N))
    for (i = 0; i < n->out->n; i++) gx[i] += dy[i] * m[i];
}

SV_DEF sv_tensor *sv_dropout(sv_ctx *c, sv_tensor *x, float p)
{
    sv_tensor *y;
    float *m, keep;
    size_t i;
    SV__IN1(x);
    if (!c->training || p <= 0.0f) return x;
    if (p >= 1.0f) return sv__shape_error(c, "dropout", "p = %g must be below 1", (double)p);
    SV__FWD_BEGIN(c);
    y = sv__like(c, x);
    m = (float *)sv_ctx_alloc(c, x->n * sizeof(float));
    if (!y || !m) return NULL;
    keep = 1.0f / (1.0f - p);
    if (sv__dropout_mask(c, m, x->n, p, keep, "dropout") != SV_OK) return NULL;
SV__OMP(parallel for if (x->n > SV__PAR_N))
    for (i = 0; i < x->n; i++) y->data[i] = x->data[i] * m[i];
    if (sv__needs(c, x, NULL, NULL, NULL)) {
        sv__node *n = sv__record(c, "dropout", sv__dropout_bwd, y, x, NULL, NULL, NULL);
        if (!n) return NULL;
        n->save[0] = m;
    }
    SV__FWD_END(c, "dropout");
    return y;
}

/* ---------------------------------------------------------------- 5.6 matmul and linear */
/* Batched Y_i = op(A_i) op(B_i). Backward: dA = dY op(B)^T (stored transposed when ta),
   dB = op(A)^T dY (stored transposed when tb). A 2-D b is shared by all batches. */
static void sv__matmul_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *a = n->in[0], *b = n->in[1];
    size_t M = n->iarg[0], N = n->iarg[1], K = n->iarg[2], nb = n->iarg[3];
    int ta = (int)n->iarg[4], tb = (int)n->iarg[5], bshared = (int)n->iarg[6];
    float *ga = sv__g(c, a), *gb = sv__g_unless_by_sample(c, n, b);
    const float *dy = n->out->grad;
    size_t i, lda = ta ? M : K, ldb = tb ? K : N;
    if (sv__by_sample(n, b)) {
        /* a 2-D b without a sample dimension shared by batches that have one (batches split
           between the samples); dB per sample as below, with beta 0 into the sample's slot */
        sv__wg w;
        size_t per = sv__rows_per_sample(c, n, nb), smp;
        if (!per || !sv__wg_begin(c, n, &w, b)) return;
        for (smp = 0; smp < n->shard->s.count; smp++) {
            float *g = sv__wg_slot(&w);
            for (i = smp * per; i < (smp + 1) * per; i++) {
                const float *Ai = a->data + i * M * K, *dYi = dy + i * M * N;
                float bt = i == smp * per ? 0.0f : 1.0f;
                if (!tb) sv__mm(c, !ta, 0, K, N, M, 1.0f, Ai, lda, dYi, N, bt, g, N);
                else sv__mm(c, 1, ta, N, K, M, 1.0f, dYi, N, Ai, lda, bt, g, K);
            }
        }
        sv__wg_end(c, n, &w);
        sv__count_flops(c, (double)nb * M * N * K, 1);
    }
    sv__count_flops(c, (double)nb * M * N * K, (ga != NULL) + (gb != NULL));
    for (i = 0; i < nb; i++) {
        const float *Ai = a->data + i * M * K, *Bi = b->data + (bshared ? 0 : i * K * N), *dYi = dy + i * M * N;
        if (ga) {
            if (!ta) sv__mm(c, 0, !tb, M, K, N, 1.0f, dYi, N, Bi, ldb, 1.0f, ga + i * M * K, K); /* dA = dY op(B)^T */
            else sv__mm(c, tb, 1, K, M, N, 1.0f, Bi, ldb, dYi, N, 1.0f, ga + i * M * K, M);     /* dA^T = op(B) dY^T */
        }
        if (gb) {
            float *gBi = gb + (bshared ? 0 : i * K * N);
            if (!tb) sv__mm(c, !ta, 0, K, N, M, 1.0f, Ai, lda, dYi, N, 1.0f, gBi, N);          /* dB = op(A)^T dY */
            else sv__mm(c, 1, ta, N, K, M, 1.0f, dYi, N, Ai, lda, 1.0f, gBi, K);               /* dB^T = dY^T op(A) */
        }
    }
}

SV_DEF sv_tensor *sv_matmul(sv_ctx *c, sv_tensor *a, sv_tensor *b, int ta, int tb)
{
    sv_tensor *y;
    size_t M, N, K, Kb, nb = 1, shape[SV_MAX_DIMS], i;
    int bshared, d;
    SV__IN2(a, b);
    if (a->ndim < 2 || b->ndim < 2) return sv__shape_error(c, "matmul", "operands need at least 2 dims");
    M = ta ? a->shape[a->ndim - 1] : a->shape[a->ndim - 2];
    K = ta ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    Kb = tb ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    N = tb ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    if (K != Kb) return sv__shape_error(c, "matmul", "inner sizes differ (%zu vs %zu)", K, Kb);
    for (d = 0; d < a->ndim - 2; d++) nb *= a->shape[d];
    bshared = b->ndim == 2;
    if (!bshared && (b->ndim != a->ndim || b->n / (K * N) != nb)) return sv__shape_error(c, "matmul", "batch dims differ");
    SV__FWD_BEGIN(c);
    for (d = 0; d < a->ndim - 2; d++) shape[d] = a->shape[d];
    shape[a->ndim - 2] = M;
    shape[a->ndim - 1] = N;
    y = sv_tensor_new(c, a->ndim, shape);
    if (!y) return NULL;
    sv__count_flops(c, (double)nb * M * N * K, 1);
    for (i = 0; i < nb; i++)
        sv__mm(c, ta, tb, M, N, K, 1.0f, a->data + i * M * K, ta ? M : K, b->data + (bshared ? 0 : i * K * N),
                tb ? K : N, 0.0f, y->data + i * M * N, N);
    if (sv__needs(c, a, b, NULL, NULL)) {
        sv__node *n = sv__record(c, "matmul", sv__matmul_bwd, y, a, b, NULL, NULL);
        if (!n) return NULL;
        n->iarg[0] = M; n->iarg[1] = N; n->iarg[2] = K; n->iarg[3] = nb;
        n->iarg[4] = (size_t)ta; n->iarg[5] = (size_t)tb; n->iarg[6] = (size_t)bshared;
    }
    SV__FWD_END(c, "matmul");
    return y;
}

/* Y[:, g*Ko:(g+1)*Ko] = X[:, g*Ki:(g+1)*Ki] W[g*Ki:(g+1)*Ki, :], strided GEMMs per group.
   dX_g += dY_g W_g^T; dW_g += X_g^T dY_g. */
static void sv__group_linear_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *x = n->in[0], *w = n->in[1];
    size_t G = n->iarg[0], N = x->shape[0], Ki = w->shape[0] / G, Ko = w->shape[1], g;
    float *gx = sv__g(c, x), *gw = sv__g_unless_by_sample(c, n, w);
    const float *dy = n->out->grad;
    if (sv__by_sample(n, w)) {
        sv__wg wg;
        size_t m = sv__rows_per_sample(c, n, N), smp;
        if (!m || !sv__wg_begin(c, n, &wg, w)) return;
        for (smp = 0; smp < n->shard->s.count; smp++) {
            float *sl = sv__wg_slot(&wg);
            for (g = 0; g < G; g++)
                sv_gemm(1, 0, Ki, Ko, m, 1.0f, x->data + smp * m * G * Ki + g * Ki, G * Ki, dy + smp * m * G * Ko + g * Ko, G * Ko,
                        0.0f, sl + g * Ki * Ko, Ko);
        }
        sv__wg_end(c, n, &wg);
        sv__count_flops(c, (double)N * G * Ki * Ko, 1);
    }
    sv__count_flops(c, (double)N * G * Ki * Ko, (gx != NULL) + (gw != NULL));
    for (g = 0; g < G; g++) {
        if (gx) sv_gemm(0, 1, N, Ki, Ko, 1.0f, dy + g * Ko, G * Ko, w->data + g * Ki * Ko, Ko, 1.0f, gx + g * Ki, G * Ki);
        if (gw) sv_gemm(1, 0, Ki, Ko, N, 1.0f, x->data + g * Ki, G * Ki, dy + g * Ko, G * Ko, 1.0f, gw + g * Ki * Ko, Ko);
    }
}

SV_DEF sv_tensor *sv_group_linear(sv_ctx *c, sv_tensor *x, sv_tensor *w, size_t groups)
{
    sv_tensor *y;
    size_t N, Ki, Ko, g;
    SV__IN2(x, w);
    if (x->ndim != 2 || w->ndim != 2 || !groups || w->shape[0] % groups || x->shape[1] != w->shape[0])
        return sv__shape_error(c, "group_linear", "x must be [N,G*Kin] and w [G*Kin,Kout]");
    N = x->shape[0];
    Ki = w->shape[0] / groups;
    Ko = w->shape[1];
    y = sv_new2(c, N, groups * Ko);
    if (!y) return NULL;
    sv__count_flops(c, (double)N * groups * Ki * Ko, 1);
    for (g = 0; g < groups; g++)
        sv_gemm(0, 0, N, Ko, Ki, 1.0f, x->data + g * Ki, groups * Ki, w->data + g * Ki * Ko, Ko, 0.0f, y->data + g * Ko, groups * Ko);
    if (sv__needs(c, x, w, NULL, NULL)) {
        sv__node *n = sv__record(c, "group_linear", sv__group_linear_bwd, y, x, w, NULL, NULL);
        if (!n) return NULL;
        n->iarg[0] = groups;
    }
    return y;
}

/* Y[M,Out] = X[M,In] W^T + b. dX += dY W; dW += dY^T X; db += column sums of dY. */
static void sv__linear_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *x = n->in[0], *w = n->in[1], *bias = n->in[2];
    size_t M = n->iarg[0], In = n->iarg[1], Out = n->iarg[2];
    const float *dy = n->out->grad;
    int fresh;
    float *gx = sv__g_w(c, x, &fresh), *gw = sv__g_unless_by_sample(c, n, w);
    sv__count_flops(c, (double)M * In * Out, (gx != NULL) + (gw != NULL) + sv__by_sample(n, w));
    if (gx) sv__mm(c, 0, 0, M, In, Out, 1.0f, dy, Out, w->data, In, fresh ? 0.0f : 1.0f, gx, In);
    if (gw) sv__mm(c, 1, 0, Out, In, M, 1.0f, dy, Out, x->data, In, 1.0f, gw, In);
    if (sv__by_sample(n, w)) {   /* shard mode: dW per sample, summed exactly */
        sv__wg wg;
        size_t m = sv__rows_per_sample(c, n, M), smp;
        if (m && sv__wg_begin(c, n, &wg, w)) {
            for (smp = 0; smp < n->shard->s.count; smp++)
                sv__mm(c, 1, 0, Out, In, m, 1.0f, dy + smp * m * Out, Out, x->data + smp * m * In, In, 0.0f, sv__wg_slot(&wg), In);
            sv__wg_end(c, n, &wg);
        }
    }
    sv__bias_grad(c, n, bias, dy, M, Out);
}

SV_DEF sv_tensor *sv_linear(sv_ctx *c, sv_tensor *x, sv_tensor *w, sv_tensor *bias)
{
    sv_tensor *y;
    size_t In, Out, M, shape[SV_MAX_DIMS];
    int d;
    SV__IN2(x, w);
    if (w->ndim != 2) return sv__shape_error(c, "linear", "weight must be [Out,In]");
    In = w->shape[1];
    Out = w->shape[0];
    if (x->shape[x->ndim - 1] != In)
        return sv__shape_error(c, "linear", "input width %zu, weight expects %zu", x->shape[x->ndim - 1], In);
    if (bias && bias->n != Out) return sv__shape_error(c, "linear", "bias has %zu entries, expected %zu", bias->n, Out);
    SV__FWD_BEGIN(c);
    M = x->n / In;
    for (d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    shape[x->ndim - 1] = Out;
    y = sv_tensor_new(c, x->ndim, shape);
    if (!y) return NULL;
    sv__count_flops(c, (double)M * In * Out, 1);
    if (bias) sv__fill_rows(y->data, bias->data, M, Out); /* then accumulate the product (beta = 1) */
    sv__mm(c, 0, 1, M, Out, In, 1.0f, x->data, In, w->data, In, bias ? 1.0f : 0.0f, y->data, Out);
    if (sv__needs(c, x, w, bias, NULL)) {
        sv__node *n = sv__record(c, "linear", sv__linear_bwd, y, x, w, bias, NULL);
        if (!n) return NULL;
        n->iarg[0] = M; n->iarg[1] = In; n->iarg[2] = Out;
    }
    SV__FWD_END(c, "linear");
    return y;
}

/* ---------------------------------------------------------------- 5.7 conv1d */
/* Channels-last 1-D convolution as GEMM without im2col: with x [T,Cin] row-major and weight
   [Cout,K,Cin], output frame t reads the K*Cin contiguous floats starting at x + t*stride*Cin,
   so Y = Xwin W^T is one GEMM whose A rows overlap (lda = stride*Cin). Padding copies the input
   once into a padded buffer.
   Backward: dW += dY^T Xwin (the same strided trick); dXwin = dY W is added back by taps:
   for a fixed tap k the rows t*stride+k of dX are distinct, so dX[t*s+k,:] += dY[t,:] W[:,k,:]
   is a GEMM with a strided output and no races (and `stride` consecutive taps fill consecutive
   rows, so they are one GEMM).
   Groups > 1 (the positional convolution: 16 groups, 128 taps): a group's channels are not
   contiguous within a window, so the input is first copied group-major, [G][B][Tp][Cg]; there
   a group's window is again K*Cg contiguous floats and each (batch row, group) is one
   overlapping-window GEMM, the (b,g) products running in parallel. With stride 1 the input
   gradient is itself such a convolution: dX = conv(dY padded by K-1-pad frames, W flipped in
   time with in/out channels swapped), a reduction over K*Cog instead of K tap products with a
   reduction over Cog each (16 for the positional convolution).
   Short outputs (the VGS branch's ResDAVEnet: 7 to 50 frames per utterance) make per-row GEMMs
   of a few micro-tiles; there the windows are copied once (im2col, small at these lengths) so
   that the whole batch is one GEMM with B*Tout rows, and the input gradient is added back
   window by window (col2im). */
#define SV__CONV_SHORT 64   /* output frames per batch row below which im2col pays */

/* The windows of xp [B,Tp,Cin] (contiguous K*Cin floats each) copied into a new arena buffer
   cols [B*Tout, K*Cin]; the caller releases it. NULL when the arena is full. */
static float *sv__conv_im2col(sv_ctx *c, const float *xp, size_t B, size_t Tp, size_t Cin, size_t K, size_t s, size_t Tout)
{
    float *cols = (float *)sv_ctx_alloc(c, sv__prod4(B * Tout, K, Cin, sizeof(float)));
    size_t b, t;
    if (!cols) return NULL;
    for (b = 0; b < B; b++)
        for (t = 0; t < Tout; t++)
            memcpy(cols + (b * Tout + t) * K * Cin, xp + (b * Tp + t * s) * Cin, K * Cin * sizeof(float));
    return cols;
}

/* x [B,T,C] -> dst [G][B][Tp][C/G]: rows [lead, lead+T) of each (group, batch row) hold x's
   frames, the other rows are zero (the padding). */
static void sv__conv_group_major(float *dst, const float *x, size_t B, size_t T, size_t C, size_t G,
                                 size_t lead, size_t Tp)
{
    size_t Cg = C / G;
    ptrdiff_t gb;
SV__OMP(parallel for if (B * Tp * C > SV__PAR_N))
    for (gb = 0; gb < (ptrdiff_t)(G * B); gb++) {
        size_t g = (size_t)gb / B, b = (size_t)gb % B, t;
        float *d = dst + (size_t)gb * Tp * Cg;
        memset(d, 0, lead * Cg * sizeof(float));
        for (t = 0; t < T; t++) memcpy(d + (lead + t) * Cg, x + (b * T + t) * C + g * Cg, Cg * sizeof(float));
        memset(d + (lead + T) * Cg, 0, (Tp - lead - T) * Cg * sizeof(float));
    }
}

/* Y (+)= Xwin W^T for groups = 1 (xp [B,Tp,Cin], the padded input; beta 0 or 1): per batch row
   one GEMM over overlapping windows, or for short outputs one im2col GEMM over the batch. */
static int sv__conv1d_gemm(sv_ctx *c, float *y, const float *xp, const float *w, size_t B, size_t Tp, size_t Cin,
                           size_t Cout, size_t K, size_t s, size_t Tout, float beta)
{
    size_t b;
    if (Tout < SV__CONV_SHORT) {
        float *cols = sv__conv_im2col(c, xp, B, Tp, Cin, K, s, Tout);
        if (!cols) return SV_ERR_NOMEM;
        sv__mm(c, 0, 1, B * Tout, Cout, K * Cin, 1.0f, cols, K * Cin, w, K * Cin, beta, y, Cout);
        sv__arena_release(c, cols, B * Tout * K * Cin * sizeof(float));
        return SV_OK;
    }
    for (b = 0; b < B; b++)
        sv__mm(c, 0, 1, Tout, Cout, K * Cin, 1.0f, xp + b * Tp * Cin, s * Cin, w, K * Cin, beta, y + b * Tout * Cout, Cout);
    return SV_OK;
}

/* dW += dY^T Xwin for groups = 1: batch row by batch row, or one im2col GEMM when short. */
static void sv__conv1d_dw(sv_ctx *c, float *gw, const float *dy, const float *xp, size_t B, size_t Tp, size_t Cin,
                          size_t Cout, size_t K, size_t s, size_t Tout)
{
    size_t b;
    if (Tout < SV__CONV_SHORT) {
        float *cols = sv__conv_im2col(c, xp, B, Tp, Cin, K, s, Tout);
        if (!cols) return;
        sv__mm(c, 1, 0, Cout, K * Cin, B * Tout, 1.0f, dy, Cout, cols, K * Cin, 1.0f, gw, K * Cin);
        sv__arena_release(c, cols, B * Tout * K * Cin * sizeof(float));
        return;
    }
    if (K * Cin <= 16 && Cout >= 64) {
        /* Narrow windows (the first layer: 10 taps of the waveform). dW [Cout,KC] as the GEMM
           sees it has 10 columns, so the threads split Cout and each packs its half of dY
           transposed (a strided gather of all of dY: 11 ms of thread time per step). dW^T [KC,Cout] +=
           Xwin^T dY instead reads dY in rows as the B operand, split by columns between the
           threads. Every element gets the same k-ordered chain and the same C updates (the
           blocking of K depends on K only), so the result is bit-identical. */
        size_t KC = K * Cin, i, j;
        float *gwt = (float *)sv_ctx_alloc(c, KC * Cout * sizeof(float));
        if (!gwt) return;
        for (i = 0; i < Cout; i++)
            for (j = 0; j < KC; j++) gwt[j * Cout + i] = gw[i * KC + j];
        for (b = 0; b < B; b++)
            sv__mm(c, 1, 0, KC, Cout, Tout, 1.0f, xp + b * Tp * Cin, s * Cin, dy + b * Tout * Cout, Cout, 1.0f, gwt, Cout);
        for (i = 0; i < Cout; i++)
            for (j = 0; j < KC; j++) gw[i * KC + j] = gwt[j * Cout + i];
        sv__arena_release(c, gwt, KC * Cout * sizeof(float));
        return;
    }
    for (b = 0; b < B; b++)
        sv__mm(c, 1, 0, Cout, K * Cin, Tout, 1.0f, dy + b * Tout * Cout, Cout, xp + b * Tp * Cin, s * Cin, 1.0f, gw, K * Cin);
}

/* dW of a groups = 1 convolution into w's gradient: in float, or in shard mode per sample (each
   sample's batch rows through sv__conv1d_dw into a zeroed slot) and summed exactly. */
static void sv__conv1d_dw_into(sv_ctx *c, const sv__node *n, sv_tensor *w, const float *dy, const float *xp, size_t B,
                               size_t Tp, size_t Cin, size_t Cout, size_t K, size_t s, size_t Tout)
{
    float *gw;
    if (sv__by_sample(n, w)) {
        sv__wg wg;
        size_t per = sv__rows_per_sample(c, n, B), smp;
        if (!per || !sv__wg_begin(c, n, &wg, w)) return;
        for (smp = 0; smp < n->shard->s.count; smp++) {
            float *g = sv__wg_slot(&wg);
            memset(g, 0, w->n * sizeof(float));
            sv__conv1d_dw(c, g, dy + smp * per * Tout * Cout, xp + smp * per * Tp * Cin, per, Tp, Cin, Cout, K, s, Tout);
        }
        sv__wg_end(c, n, &wg);
    } else if ((gw = sv__g(c, w)) != NULL) {
        sv__conv1d_dw(c, gw, dy, xp, B, Tp, Cin, Cout, K, s, Tout);
    }
}

/* dXwin = dY W for groups = 1, added into gxp [B,Tp,Cin] by groups of taps. fresh = 1: gxp is
   uninitialised and is written (beta = 0) by the taps k < stride, which cover rows
   [0, Tout*stride) of each batch row once; rows past that are zeroed. With stride > K there are
   gaps between windows: everything is zeroed and added to. Short outputs: dXwin for the whole
   batch in one GEMM, added back window by window (col2im; windows overlap, so one batch row
   per thread). */
static void sv__conv1d_dx(sv_ctx *c, float *gxp, const float *dy, const float *w, size_t B, size_t Tp, size_t Cin,
                          size_t Cout, size_t K, size_t s, size_t Tout, int fresh)
{
    size_t b, k;
    if (Tout < SV__CONV_SHORT) {
        size_t KC = K * Cin;
        ptrdiff_t bb;
        float *cols = (float *)sv_ctx_alloc(c, sv__prod4(B, Tout, KC, sizeof(float)));
        if (!cols) return;
        sv__mm(c, 0, 0, B * Tout, KC, Cout, 1.0f, dy, Cout, w, KC, 0.0f, cols, KC);
        if (fresh) memset(gxp, 0, B * Tp * Cin * sizeof(float));
SV__OMP(parallel for if (B * Tout * KC > SV__PAR_N))
        for (bb = 0; bb < (ptrdiff_t)B; bb++) {
            size_t t;
            for (t = 0; t < Tout; t++)
                sv_axpy(KC, 1.0f, cols + ((size_t)bb * Tout + t) * KC, gxp + ((size_t)bb * Tp + t * s) * Cin);
        }
        sv__arena_release(c, cols, B * Tout * KC * sizeof(float));
        return;
    }
    if (fresh) {
        if (s > K) {
            memset(gxp, 0, B * Tp * Cin * sizeof(float));
            fresh = 0;
        } else if (Tout * s < Tp) {
            for (b = 0; b < B; b++) memset(gxp + (b * Tp + Tout * s) * Cin, 0, (Tp - Tout * s) * Cin * sizeof(float));
        }
    }
    /* Taps [k, k+s) of window t land on the s consecutive rows t*s+k.. of dX, contiguous
       floats: one GEMM per group of s taps (K = 3, s = 2: taps {0,1} with N = 2*Cin, then {2}).
       Each element still gets its taps in increasing order, one per GEMM, so the result equals
       the tap-by-tap sum bit for bit. */
    for (b = 0; b < B; b++) {
        const float *dyb = dy + b * Tout * Cout;
        float *gxb = gxp + b * Tp * Cin;
        for (k = 0; k < K; k += s) {
            size_t nk = K - k < s ? K - k : s;
            sv__mm(c, 0, 0, Tout, nk * Cin, Cout, 1.0f, dyb, Cout, w + k * Cin, K * Cin,
                    fresh && k == 0 ? 0.0f : 1.0f, gxb + k * Cin, s * Cin);
        }
    }
}

/* Backward of a grouped convolution (see 5.7's head); xg is the group-major padded input. */
static void sv__conv1d_grouped_bwd(sv_ctx *c, const float *xg, const float *dy, const float *w, float *gw, float *gx,
                                   size_t B, size_t T, size_t Cin, size_t Cout, size_t K, size_t s, size_t pad,
                                   size_t G, size_t Tout)
{
    size_t Tp = T + 2 * pad, Cg = Cin / G, Cog = Cout / G;
    ptrdiff_t gb;
    if (gw) {   /* dW_g += sum_b dY_gb^T Xwin_gb: one thread per group, batch rows in order */
SV__OMP(parallel for schedule(dynamic))
        for (gb = 0; gb < (ptrdiff_t)G; gb++) {
            size_t g = (size_t)gb, b;
            for (b = 0; b < B; b++)
                sv__mm(c, 1, 0, Cog, K * Cg, Tout, 1.0f, dy + b * Tout * Cout + g * Cog, Cout,
                        xg + (g * B + b) * Tp * Cg, s * Cg, 1.0f, gw + g * Cog * K * Cg, K * Cg);
        }
    }
    if (!gx) return;
    if (s == 1 && pad < K) {
        /* dx[t, g*Cg+c] = sum_{k,o} dY[t+k-(K-1-pad), g*Cog+o] W[g*Cog+o, K-1-k, c] */
        size_t lead = K - 1 - pad, Tq = T + K - 1;
        float *dyq = (float *)sv_ctx_alloc(c, sv__prod4(G * B, Tq, Cog, sizeof(float)));
        float *wf = (float *)sv_ctx_alloc(c, Cin * K * Cog * sizeof(float));
        if (!dyq || !wf) return;
        sv__conv_group_major(dyq, dy, B, Tout, Cout, G, lead, Tq);
SV__OMP(parallel for if (Cin * K * Cog > SV__PAR_N))
        for (gb = 0; gb < (ptrdiff_t)G; gb++) {   /* wf [G][K][Cog][Cg]: B as [K*Cog, Cg], rows in order */
            size_t g = (size_t)gb, ci, k, o;
            for (k = 0; k < K; k++)
                for (o = 0; o < Cog; o++)
                    for (ci = 0; ci < Cg; ci++)
                        wf[((g * K + k) * Cog + o) * Cg + ci] = w[((g * Cog + o) * K + (K - 1 - k)) * Cg + ci];
        }
SV__OMP(parallel for schedule(dynamic))
        for (gb = 0; gb < (ptrdiff_t)(G * B); gb++) {
            size_t g = (size_t)gb / B, b = (size_t)gb % B;
            sv__mm(c, 0, 0, T, Cg, K * Cog, 1.0f, dyq + (size_t)gb * Tq * Cog, Cog, wf + g * K * Cog * Cg, Cg,
                    1.0f, gx + b * T * Cin + g * Cg, Cin);
        }
        sv__arena_release(c, wf, Cin * K * Cog * sizeof(float));
        sv__arena_release(c, dyq, G * B * Tq * Cog * sizeof(float));
    } else {
        /* any stride: dXwin = dY W tap by tap into a group-major padded buffer, then back */
        float *dxg = (float *)sv_ctx_alloc(c, sv__prod4(G * B, Tp, Cg, sizeof(float)));
        if (!dxg) return;
        memset(dxg, 0, G * B * Tp * Cg * sizeof(float));
SV__OMP(parallel for schedule(dynamic))
        for (gb = 0; gb < (ptrdiff_t)(G * B); gb++) {
            size_t g = (size_t)gb / B, b = (size_t)gb % B, k;
            for (k = 0; k < K; k++)
                sv__mm(c, 0, 0, Tout, Cg, Cog, 1.0f, dy + b * Tout * Cout + g * Cog, Cout, w + g * Cog * K * Cg + k * Cg,
                        K * Cg, 1.0f, dxg + (size_t)gb * Tp * Cg + k * Cg, s * Cg);
        }
SV__OMP(parallel for if (B * T * Cin > SV__PAR_N))
        for (gb = 0; gb < (ptrdiff_t)(G * B); gb++) {
            size_t g = (size_t)gb / B, b = (size_t)gb % B, t;
            for (t = 0; t < T; t++)
                sv_axpy(Cg, 1.0f, dxg + ((size_t)gb * Tp + pad + t) * Cg, gx + (b * T + t) * Cin + g * Cg);
        }
        sv__arena_release(c, dxg, G * B * Tp * Cg * sizeof(float));
    }
}

static void sv__conv1d_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *x = n->in[0], *w = n->in[1], *bias = n->in[2];
    size_t B = n->iarg[0], Tp = n->iarg[1], Cin = n->iarg[2], Cout = n->iarg[3], K = n->iarg[4];
    size_t s = n->iarg[5], pad = n->iarg[6], groups = n->iarg[7];
    size_t T = x->shape[1], Tout = n->out->shape[1], b;
    /* padded input [B,Tp,Cin] (x itself if no pad); group-major [G][B][Tp][Cg] if groups > 1 */
    const float *xp = (const float *)n->save[0];
    const float *dy = n->out->grad;
    int fresh = 0, wsamp = sv__by_sample(n, w);
    float *gx, *gw = sv__g_unless_by_sample(c, n, w), *gxp = NULL;
    /* groups = 1 without padding writes the input gradient directly (a buffer created here is
       written, not added to: sv__conv1d_dx with fresh = 1) */
    gx = groups == 1 && !pad ? sv__g_w(c, x, &fresh) : sv__g(c, x);
    sv__count_flops(c, (double)B * Tout * Cout * K * (Cin / groups), (gx != NULL) + (gw != NULL || wsamp));
    sv__bias_grad(c, n, bias, dy, B * Tout, Cout);
    if (groups > 1) {
        if (wsamp) {   /* shard mode: dW_g per sample (the positional convolution's weight-normed w) */
            size_t Cg = Cin / groups, Cog = Cout / groups, per = sv__rows_per_sample(c, n, B), smp;
            sv__wg wg;
            if (!per || !sv__wg_begin(c, n, &wg, w)) return;
            for (smp = 0; smp < n->shard->s.count; smp++) {
                float *g = sv__wg_slot(&wg);
                ptrdiff_t gg;
SV__OMP(parallel for schedule(dynamic))
                for (gg = 0; gg < (ptrdiff_t)groups; gg++) {
                    size_t gi = (size_t)gg, b;
                    for (b = smp * per; b < (smp + 1) * per; b++)
                        sv__mm(c, 1, 0, Cog, K * Cg, Tout, 1.0f, dy + b * Tout * Cout + gi * Cog, Cout,
                                xp + (gi * B + b) * Tp * Cg, s * Cg, b == smp * per ? 0.0f : 1.0f,
                                g + gi * Cog * K * Cg, K * Cg);
                }
            }
            sv__wg_end(c, n, &wg);
        }
        sv__conv1d_grouped_bwd(c, xp, dy, w->data, gw, gx, B, T, Cin, Cout, K, s, pad, groups, Tout);
        return;
    }
    if (gx) {
        if (pad) {
            gxp = (float *)sv_ctx_alloc(c, sv__prod4(B, Tp, Cin, sizeof(float)));
            if (!gxp) return;
            memset(gxp, 0, B * Tp * Cin * sizeof(float));
        } else {
            gxp = gx;
        }
    }
    sv__conv1d_dw_into(c, n, w, dy, xp, B, Tp, Cin, Cout, K, s, Tout);
    if (gxp) sv__conv1d_dx(c, gxp, dy, w->data, B, Tp, Cin, Cout, K, s, Tout, fresh);
    if (gx && pad) {
        for (b = 0; b < B; b++) sv_axpy(T * Cin, 1.0f, gxp + (b * Tp + pad) * Cin, gx + b * T * Cin);
        sv__arena_release(c, gxp, B * Tp * Cin * sizeof(float));
    }
}

SV_DEF sv_tensor *sv_conv1d(sv_ctx *c, sv_tensor *x, sv_tensor *w, sv_tensor *bias, size_t stride, size_t pad, size_t groups)
{
    sv_tensor *y;
    size_t B, T, Cin, Cout, K, Tp, Tout, Cg, Cog, b;
    const float *xp;
    SV__IN2(x, w);
    if (x->ndim != 3 || w->ndim != 3) return sv__shape_error(c, "conv1d", "x must be [B,T,Cin] and w [Cout,K,Cin/groups]");
    B = x->shape[0]; T = x->shape[1]; Cin = x->shape[2];
    Cout = w->shape[0]; K = w->shape[1];
    if (groups == 0 || stride == 0 || Cin % groups || Cout % groups || w->shape[2] != Cin / groups)
        return sv__shape_error(c, "conv1d", "channels %zu -> %zu do not fit weight [%zu,%zu,%zu] with %zu groups",
                               Cin, Cout, w->shape[0], w->shape[1], w->shape[2], groups);
    if (bias && bias->n != Cout) return sv__shape_error(c, "conv1d", "bias has %zu entries, expected %zu", bias->n, Cout);
    Tp = T + 2 * pad;
    if (Tp < K) return sv__shape_error(c, "conv1d", "input of %zu frames is shorter than the kernel (%zu)", T, K);
    SV__FWD_BEGIN(c);
    Tout = (Tp - K) / stride + 1;
    Cg = Cin / groups;
    Cog = Cout / groups;
    y = sv_new3(c, B, Tout, Cout);
    if (!y) return NULL;
    sv__count_flops(c, (double)B * Tout * Cout * K * Cg, 1);
    if (groups > 1) {
        float *xg = (float *)sv_ctx_alloc(c, sv__prod4(B, Tp, Cin, sizeof(float)));   /* [G][B][Tp][Cg] */
        if (!xg) return NULL;
        sv__conv_group_major(xg, x->data, B, T, Cin, groups, pad, Tp);
        xp = xg;
    } else if (pad) {
        float *p = (float *)sv_ctx_alloc(c, sv__prod4(B, Tp, Cin, sizeof(float)));
        if (!p) return NULL;
        for (b = 0; b < B; b++) {
            memset(p + b * Tp * Cin, 0, pad * Cin * sizeof(float));
            memcpy(p + (b * Tp + pad) * Cin, x->data + b * T * Cin, T * Cin * sizeof(float));
            memset(p + (b * Tp + pad + T) * Cin, 0, pad * Cin * sizeof(float));
        }
        xp = p;
    } else {
        xp = x->data;
    }
    if (bias) sv__fill_rows(y->data, bias->data, B * Tout, Cout);
    if (groups == 1) {
        if (sv__conv1d_gemm(c, y->data, xp, w->data, B, Tp, Cin, Cout, K, stride, Tout, bias ? 1.0f : 0.0f) != SV_OK) return NULL;
    } else {
        ptrdiff_t gb;
SV__OMP(parallel for schedule(dynamic))
        for (gb = 0; gb < (ptrdiff_t)(groups * B); gb++) {
            size_t g = (size_t)gb / B, bb = (size_t)gb % B;
            sv__mm(c, 0, 1, Tout, Cog, K * Cg, 1.0f, xp + (size_t)gb * Tp * Cg, stride * Cg, w->data + g * Cog * K * Cg, K * Cg,
                    bias ? 1.0f : 0.0f, y->data + bb * Tout * Cout + g * Cog, Cout);
        }
    }
    if (sv__needs(c, x, w, bias, NULL)) {
        sv__node *n = sv__record(c, "conv1d", sv__conv1d_bwd, y, x, w, bias, NULL);
        if (!n) return NULL;
        n->save[0] = (void *)xp;
        n->iarg[0] = B; n->iarg[1] = Tp; n->iarg[2] = Cin; n->iarg[3] = Cout;
        n->iarg[4] = K; n->iarg[5] = stride; n->iarg[6] = pad; n->iarg[7] = groups;
    }
    SV__FWD_END(c, "conv1d");
    return y;
}

/* GELU(x) into p [B,T+2pad,C] with `pad` zero frames on both sides of each batch row: the
   padded input of a conv1d on GELU(x) (GELU(0) = 0, so padding before or after agrees). */
static void sv__gelu_padded(float *p, const float *x, size_t B, size_t T, size_t C, size_t pad)
{
    size_t b, Tp = T + 2 * pad;
    if (!pad) { sv_gelu(p, x, B * T * C); return; }
    for (b = 0; b < B; b++) {
        memset(p + b * Tp * C, 0, pad * C * sizeof(float));
        sv_gelu(p + (b * Tp + pad) * C, x + b * T * C, T * C);
        memset(p + (b * Tp + pad + T) * C, 0, pad * C * sizeof(float));
    }
}

/* y = conv1d(GELU(x)) (groups = 1) that stores only x, not GELU(x): activation checkpointing
   (Chen et al. 2016, "Training deep nets with sublinear memory cost") of the cheapest kind, the
   elementwise GELU is recomputed in the backward. The CNN feature encoder's GELU outputs are
   then never kept (about 50 MB of the `small` step: layers 1..5).
   Backward: G = GELU(x) again into a scratch buffer; dW += dY^T Gwin and db as in conv1d; then
   dG = dY W (as conv1d's dx) and dx (+)= dG * GELU'(x), with GELU'(x) = Phi(x) + x phi(x)
   (the same kernels as sv_conv1d and sv_gelu_op, so the result equals conv1d(gelu_op(x))). */
static void sv__conv1d_gelu_in_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *x = n->in[0], *w = n->in[1], *bias = n->in[2];
    size_t B = n->iarg[0], Tp = n->iarg[1], Cin = n->iarg[2], Cout = n->iarg[3], K = n->iarg[4];
    size_t s = n->iarg[5], pad = n->iarg[6], T = x->shape[1], Tout = n->out->shape[1], b;
    size_t tmp_bytes = sv__prod4(B, Tp, Cin, sizeof(float));
    const float *dy = n->out->grad;
    float *gx, *tmp = NULL;
    int fresh;
    sv__count_flops(c, (double)B * Tout * Cout * K * Cin, (w->requires_grad != 0) + (x->requires_grad != 0));
    sv__bias_grad(c, n, bias, dy, B * Tout, Cout);
    if (w->requires_grad) {
        tmp = (float *)sv_ctx_alloc(c, tmp_bytes);
        if (!tmp) return;
        sv__gelu_padded(tmp, x->data, B, T, Cin, pad);
        sv__conv1d_dw_into(c, n, w, dy, tmp, B, Tp, Cin, Cout, K, s, Tout);
    }
    if (!x->requires_grad) { sv__arena_release(c, tmp, tmp_bytes); return; }
    if (!pad && !x->grad) {
        /* GELU(x) is dead now: release it first, so x's new gradient buffer can take its place
           (best fit) and this backward needs one input-sized buffer at a time, as conv1d then
           gelu_op's in-place backward do. dG is written there and turned into dx in place. */
        sv__arena_release(c, tmp, tmp_bytes);
        gx = sv__g_w(c, x, &fresh);
        if (!gx) return;
        sv__conv1d_dx(c, gx, dy, w->data, B, T, Cin, Cout, K, s, Tout, 1);
        SV__BLOCKED(x->n, sv__gelu_bwd_range(gx, x->data, gx, lo, hi, 0));
        return;
    }
    /* padding, or x already has a gradient (another consumer): dG in the scratch buffer */
    if (!tmp && !(tmp = (float *)sv_ctx_alloc(c, tmp_bytes))) return;
    sv__conv1d_dx(c, tmp, dy, w->data, B, Tp, Cin, Cout, K, s, Tout, 1);
    gx = sv__g_w(c, x, &fresh);
    if (gx)
        for (b = 0; b < B; b++) {
            float *gxb = gx + b * T * Cin;
            const float *xb = x->data + b * T * Cin, *dgb = tmp + (b * Tp + pad) * Cin;
            SV__BLOCKED(T * Cin, sv__gelu_bwd_range(gxb, xb, dgb, lo, hi, !fresh));
        }
    sv__arena_release(c, tmp, tmp_bytes);
}

SV_DEF sv_tensor *sv_conv1d_gelu_in(sv_ctx *c, sv_tensor *x, sv_tensor *w, sv_tensor *bias, size_t stride, size_t pad)
{
    sv_tensor *y;
    size_t B, T, Cin, Cout, K, Tp, Tout, tmp_bytes;
    float *p;
    SV__IN2(x, w);
    if (x->ndim != 3 || w->ndim != 3) return sv__shape_error(c, "conv1d_gelu_in", "x must be [B,T,Cin] and w [Cout,K,Cin]");
    B = x->shape[0]; T = x->shape[1]; Cin = x->shape[2];
    Cout = w->shape[0]; K = w->shape[1];
    if (stride == 0 || w->shape[2] != Cin)
        return sv__shape_error(c, "conv1d_gelu_in", "channels %zu do not fit weight [%zu,%zu,%zu] (stride %zu)",
                               Cin, w->shape[0], w->shape[1], w->shape[2], stride);
    if (bias && bias->n != Cout) return sv__shape_error(c, "conv1d_gelu_in", "bias has %zu entries, expected %zu", bias->n, Cout);
    Tp = T + 2 * pad;
    if (Tp < K) return sv__shape_error(c, "conv1d_gelu_in", "input of %zu frames is shorter than the kernel (%zu)", T, K);
    SV__FWD_BEGIN(c);
    Tout = (Tp - K) / stride + 1;
    y = sv_new3(c, B, Tout, Cout);
    if (!y) return NULL;
    sv__count_flops(c, (double)B * Tout * Cout * K * Cin, 1);
    /* GELU(x) lives only for this GEMM: taken after y and released before anything else is
       allocated, so it costs no arena peak beyond its own lifetime */
    tmp_bytes = sv__prod4(B, Tp, Cin, sizeof(float));
    p = (float *)sv_ctx_alloc(c, tmp_bytes);
    if (!p) return NULL;
    sv__gelu_padded(p, x->data, B, T, Cin, pad);
    if (bias)
        sv__fill_rows(y->data, bias->data, B * Tout, Cout);
    if (sv__conv1d_gemm(c, y->data, p, w->data, B, Tp, Cin, Cout, K, stride, Tout, bias ? 1.0f : 0.0f) != SV_OK) return NULL;
    sv__arena_release(c, p, tmp_bytes);
    if (sv__needs(c, x, w, bias, NULL)) {
        sv__node *n = sv__record(c, "gelu+conv1d", sv__conv1d_gelu_in_bwd, y, x, w, bias, NULL);
        if (!n) return NULL;
        n->iarg[0] = B; n->iarg[1] = Tp; n->iarg[2] = Cin; n->iarg[3] = Cout;
        n->iarg[4] = K; n->iarg[5] = stride; n->iarg[6] = pad;
    }
    SV__FWD_END(c, "gelu+conv1d");
    return y;
}

/* Weight normalisation per kernel tap k (Salimans & Kingma 2016): w = g_k v / ||v_k||,
   v_k = v[:,k,:]. dv = (g_k/n_k) (dw - (dw.v_k / n_k^2) v_k); dg_k = dw.v_k / n_k. */
static void sv__weight_norm_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *v = n->in[0], *g = n->in[1];
    size_t O = v->shape[0], K = v->shape[1], Cg = v->shape[2];
    const float *nk = (const float *)n->save[0], *dw = n->out->grad;
    float *gv = sv__g(c, v), *gg = sv__g(c, g);
    ptrdiff_t kk;
    /* taps are independent (each writes its own g_k and v_k): one thread per tap, the sums in
       the serial order (the positional convolution's 128 taps x 4096 weights, 1.5 ms serial) */
SV__OMP(parallel for if (v->n > SV__PAR_N))
    for (kk = 0; kk < (ptrdiff_t)K; kk++) {
        size_t k = (size_t)kk, o, i;
        double dot = 0;
        for (o = 0; o < O; o++)
            for (i = 0; i < Cg; i++) dot += (double)dw[(o * K + k) * Cg + i] * v->data[(o * K + k) * Cg + i];
        if (gg) gg[k] += (float)(dot / nk[k]);
        if (gv) {
            float a = g->data[k] / nk[k], bcoef = (float)(dot / ((double)nk[k] * nk[k]));
            for (o = 0; o < O; o++)
                for (i = 0; i < Cg; i++) {
                    size_t j = (o * K + k) * Cg + i;
                    gv[j] += a * (dw[j] - bcoef * v->data[j]);
                }
        }
    }
}

SV_DEF sv_tensor *sv_weight_norm_k(sv_ctx *c, sv_tensor *v, sv_tensor *g)
{
    sv_tensor *w;
    size_t O, K, Cg;
    ptrdiff_t kk;
    float *nk;
    SV__IN2(v, g);
    if (v->ndim != 3 || g->n != v->shape[1]) return sv__shape_error(c, "weight_norm", "v must be [Cout,K,Cg] and g [K]");
    O = v->shape[0]; K = v->shape[1]; Cg = v->shape[2];
    w = sv__like(c, v);
    nk = (float *)sv_ctx_alloc(c, K * sizeof(float));
    if (!w || !nk) return NULL;
SV__OMP(parallel for if (v->n > SV__PAR_N))   /* per tap, as the backward */
    for (kk = 0; kk < (ptrdiff_t)K; kk++) {
        size_t k = (size_t)kk, o, i;
        double s = 0;
        for (o = 0; o < O; o++)
            for (i = 0; i < Cg; i++) { double t = v->data[(o * K + k) * Cg + i]; s += t * t; }
        nk[k] = (float)sqrt(s > 1e-24 ? s : 1e-24);
        for (o = 0; o < O; o++)
            for (i = 0; i < Cg; i++) w->data[(o * K + k) * Cg + i] = g->data[k] * v->data[(o * K + k) * Cg + i] / nk[k];
    }
    if (sv__needs(c, v, g, NULL, NULL)) {
        sv__node *n = sv__record(c, "weight_norm", sv__weight_norm_bwd, w, v, g, NULL, NULL);
        if (!n) return NULL;
        n->save[0] = nk;
    }
    return w;
}

/* ---------------------------------------------------------------- 5.8 normalisations */
/* LayerNorm over the last dim (Ba et al. 2016): y = (x - mu) / sqrt(var + eps) * gamma + beta. */
static void sv__layer_norm_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *x = n->in[0], *g = n->in[1], *b = n->in[2];
    size_t F = x->shape[x->ndim - 1], rows = x->n / F;
    const float *mean = (const float *)n->save[0], *rstd = (const float *)n->save[1], *dy = n->out->grad;
    sv_layernorm_rows_backward(sv__g(c, x), sv__g_unless_by_sample(c, n, g), sv__g_unless_by_sample(c, n, b), dy, x->data,
                               mean, rstd, g ? g->data : NULL, rows, F);
    if (sv__by_sample(n, g) || sv__by_sample(n, b)) {   /* shard mode: dgamma, dbeta per sample */
        sv__wg wg, wb;
        size_t m = sv__rows_per_sample(c, n, rows), smp;
        int hg, hb;
        if (!m) return;
        hg = sv__by_sample(n, g) && sv__wg_begin(c, n, &wg, g);
        hb = sv__by_sample(n, b) && sv__wg_begin(c, n, &wb, b);
        if (c->failed) return;
        for (smp = 0; smp < n->shard->s.count; smp++) {
            float *sg = hg ? sv__wg_slot(&wg) : NULL, *sb = hb ? sv__wg_slot(&wb) : NULL;
            if (sg) memset(sg, 0, F * sizeof(float));
            if (sb) memset(sb, 0, F * sizeof(float));
            sv_layernorm_rows_backward(NULL, sg, sb, dy + smp * m * F, x->data + smp * m * F, mean + smp * m, rstd + smp * m,
                                       NULL, m, F);
        }
        if (hg) sv__wg_end(c, n, &wg);
        if (hb) sv__wg_end(c, n, &wb);
    }
}

SV_DEF sv_tensor *sv_layer_norm(sv_ctx *c, sv_tensor *x, sv_tensor *gamma, sv_tensor *beta, float eps)
{
    sv_tensor *y;
    size_t F, rows;
    float *mean, *rstd;
    SV__IN1(x);
    F = x->shape[x->ndim - 1];
    if ((gamma && gamma->n != F) || (beta && beta->n != F)) return sv__shape_error(c, "layer_norm", "gamma/beta must have %zu entries", F);
    SV__FWD_BEGIN(c);
    rows = x->n / F;
    y = sv__like(c, x);
    mean = (float *)sv_ctx_alloc(c, rows * sizeof(float));
    rstd = (float *)sv_ctx_alloc(c, rows * sizeof(float));
    if (!y || !mean || !rstd) return NULL;
    sv_layernorm_rows(y->data, mean, rstd, x->data, gamma ? gamma->data : NULL, beta ? beta->data : NULL, rows, F, eps);
    if (sv__needs(c, x, gamma, beta, NULL)) {
        sv__node *n = sv__record(c, "layer_norm", sv__layer_norm_bwd, y, x, gamma, beta, NULL);
        if (!n) return NULL;
        n->save[0] = mean;
        n->save[1] = rstd;
    }
    SV__FWD_END(c, "layer_norm");
    return y;
}

/* Channel statistics of [B,T,C] over valid frames: GroupNorm-per-channel normalises per (b,c)
   over t; BatchNorm per c over (b,t). Both backwards use, for a set S of n elements,
   dx = rstd * (dxhat - mean_S(dxhat) - xhat * mean_S(dxhat * xhat)), dxhat = dy * gamma. */
static size_t sv__valid_len(const size_t *len, size_t b, size_t T) { return len ? (len[b] < T ? len[b] : T) : T; }

/* GroupNorm per channel works on [B,T,C] channels-last one frame row at a time, so every pass
   streams memory contiguously and the per-channel work vectorises across C. (Walking one channel
   down the time axis touches a new cache line per element: 16x the traffic.) Statistics use a
   per-channel shift (the first valid frame) against cancellation, float partial sums over blocks
   of frames and double totals. With `gelu` the op returns GELU(GN(x)) and keeps only x: the
   backward recomputes u = GN(x) row by row, which saves the largest activation of the CNN (layer
   0 has the most frames) and one pass over it. */
#define SV__GN_BLOCK 64

/* u = (x - mean) * rstd * gamma + beta over one row of C */
static void sv__gn_row(float *u, const float *x, const float *mean, const float *rstd, const float *gam, const float *bet, size_t C)
{
    size_t ch;
    for (ch = 0; ch < C; ch++) u[ch] = (x[ch] - mean[ch]) * rstd[ch] * (gam ? gam[ch] : 1.0f) + (bet ? bet[ch] : 0.0f);
}

/* One batch row of the per-channel group norm (then GELU when gelu = 1) from its statistics:
   frames t < Tv normalised, the rest 0. The forward and the recomputation for a consumer that
   drops the output (sv__conv1d_gn_in) share it, so both give the same bits. */
static void sv__gn_apply(float *yb, const float *xb, size_t T, size_t Tv, size_t C, const float *mean,
                         const float *rstd, const float *gam, const float *bet, int gelu)
{
    size_t t;
    for (t = 0; t < Tv; t++) {
        sv__gn_row(yb + t * C, xb + t * C, mean, rstd, gam, bet, C);
        if (gelu) sv__gelu_range(yb + t * C, yb + t * C, 0, C);
    }
    if (Tv < T) memset(yb + Tv * C, 0, (T - Tv) * C * sizeof(float));
}

/* per-b statistics; scratch holds 4C floats + 2C doubles */
static void sv__gn_stats(const float *x, size_t Tv, size_t C, float eps, float *mean, float *rstd, float *scratch, double *tot)
{
    float *shift = scratch, *p1 = scratch + C, *p2 = scratch + 2 * C;
    double *t1 = tot, *t2 = tot + C;
    size_t t, t0, ch;
    for (ch = 0; ch < C; ch++) { shift[ch] = Tv ? x[ch] : 0.0f; t1[ch] = 0; t2[ch] = 0; }
    for (t0 = 0; t0 < Tv; t0 += SV__GN_BLOCK) {
        size_t t1e = t0 + SV__GN_BLOCK < Tv ? t0 + SV__GN_BLOCK : Tv;
        for (ch = 0; ch < C; ch++) { p1[ch] = 0; p2[ch] = 0; }
        for (t = t0; t < t1e; t++) {
            const float *xr = x + t * C;
            for (ch = 0; ch < C; ch++) { float d = xr[ch] - shift[ch]; p1[ch] += d; p2[ch] += d * d; }
        }
        for (ch = 0; ch < C; ch++) { t1[ch] += p1[ch]; t2[ch] += p2[ch]; }
    }
    for (ch = 0; ch < C; ch++) {
        double m = Tv ? t1[ch] / (double)Tv : 0, v = Tv ? t2[ch] / (double)Tv - m * m : 0;
        if (v < 0) v = 0;
        mean[ch] = (float)(shift[ch] + m);
        rstd[ch] = (float)(1.0 / sqrt(v + eps));
    }
}

static void sv__group_norm_ch_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *x = n->in[0], *g = n->in[1], *be = n->in[2];
    size_t B = x->shape[0], T = x->shape[1], C = x->shape[2], b;
    const size_t *len = (const size_t *)n->save[0];
    const float *mean = (const float *)n->save[1], *rstd = (const float *)n->save[2], *dy = n->out->grad;
    const float *gam = g ? g->data : NULL, *bet = be ? be->data : NULL;
    int gelu = (int)n->iarg[0], fresh;
    float *gx, *gg = sv__g_unless_by_sample(c, n, g), *gb = sv__g_unless_by_sample(c, n, be);
    float *sum_d = (float *)sv_ctx_alloc(c, B * C * sizeof(float)), *sum_dx = (float *)sv_ctx_alloc(c, B * C * sizeof(float));
    float *scratch = (float *)sv_ctx_alloc(c, B * 4 * C * sizeof(float));
    double *tot = (double *)sv_ctx_alloc(c, B * 2 * C * sizeof(double));
    if (!sum_d || !sum_dx || !scratch || !tot) return;
    /* A gradient buffer created here holds du = dL/d(GN output) after pass 1 and is turned into
       dx in place by pass 2 (no zeroing, no second GELU derivative); an existing one is added to. */
    gx = sv__g_inplace(c, n, x, &fresh);   /* may be dy's buffer: each pass reads a row before writing it */
    if (x->requires_grad && !gx) return;
SV__OMP(parallel for if (x->n > SV__PAR_N))
    for (b = 0; b < B; b++) {
        size_t t, t0, ch, Tv = sv__valid_len(len, b, T);
        const float *mb = mean + b * C, *rb = rstd + b * C;
        float *u = scratch + b * 4 * C, *du = u + C, *p1 = u + 2 * C, *p2 = u + 3 * C;
        double *t1 = tot + b * 2 * C, *t2 = t1 + C;
        /* pass 1: sum_t du and sum_t du * xhat */
        for (ch = 0; ch < C; ch++) { t1[ch] = 0; t2[ch] = 0; }
        for (t0 = 0; t0 < Tv; t0 += SV__GN_BLOCK) {
            size_t te = t0 + SV__GN_BLOCK < Tv ? t0 + SV__GN_BLOCK : Tv;
            for (ch = 0; ch < C; ch++) { p1[ch] = 0; p2[ch] = 0; }
            for (t = t0; t < te; t++) {
                const float *xr = x->data + (b * T + t) * C, *dr = dy + (b * T + t) * C, *dd = dr;
                if (gelu) {
                    float *dst = fresh ? gx + (b * T + t) * C : du;
                    sv__gn_row(u, xr, mb, rb, gam, bet, C);
                    sv__gelu_bwd_range(dst, u, dr, 0, C, 0);
                    dd = dst;
                }
                for (ch = 0; ch < C; ch++) { p1[ch] += dd[ch]; p2[ch] += dd[ch] * ((xr[ch] - mb[ch]) * rb[ch]); }
            }
            for (ch = 0; ch < C; ch++) { t1[ch] += p1[ch]; t2[ch] += p2[ch]; }
        }
        for (ch = 0; ch < C; ch++) { sum_d[b * C + ch] = (float)t1[ch]; sum_dx[b * C + ch] = (float)t2[ch]; }
        /* pass 2: dx = gamma rstd (du - mean_t du - xhat mean_t(du xhat)) */
        if (gx) {
            const float *sd = sum_d + b * C, *sx = sum_dx + b * C;
            float inv = Tv ? 1.0f / (float)Tv : 0.0f;
            for (t = 0; t < Tv; t++) {
                const float *xr = x->data + (b * T + t) * C, *dr = dy + (b * T + t) * C, *dd = dr;
                float *gr = gx + (b * T + t) * C;
                if (gelu && !fresh) {
                    sv__gn_row(u, xr, mb, rb, gam, bet, C);
                    sv__gelu_bwd_range(du, u, dr, 0, C, 0);
                    dd = du;
                }
                if (fresh) /* gr holds du (gelu) or is uninitialised (dd = dy) */
                    for (ch = 0; ch < C; ch++) {
                        float xh = (xr[ch] - mb[ch]) * rb[ch], d = gelu ? gr[ch] : dd[ch];
                        gr[ch] = (gam ? gam[ch] : 1.0f) * rb[ch] * (d - sd[ch] * inv - xh * sx[ch] * inv);
                    }
                else
                    for (ch = 0; ch < C; ch++) {
                        float xh = (xr[ch] - mb[ch]) * rb[ch];
                        gr[ch] += (gam ? gam[ch] : 1.0f) * rb[ch] * (dd[ch] - sd[ch] * inv - xh * sx[ch] * inv);
                    }
            }
            if (fresh && Tv < T) memset(gx + (b * T + Tv) * C, 0, (T - Tv) * C * sizeof(float));
        }
    }
    for (b = 0; b < B; b++) {
        size_t ch;
        for (ch = 0; ch < C; ch++) {
            if (gg) gg[ch] += sum_dx[b * C + ch];
            if (gb) gb[ch] += sum_d[b * C + ch];
        }
    }
    if (sv__by_sample(n, g) || sv__by_sample(n, be)) {   /* shard mode: the per-row sums are per-sample already */
        sv__wg wg, wb;
        size_t per = sv__rows_per_sample(c, n, B), smp, r;
        int hg, hb;
        if (!per) return;
        hg = sv__by_sample(n, g) && sv__wg_begin(c, n, &wg, g);
        hb = sv__by_sample(n, be) && sv__wg_begin(c, n, &wb, be);
        if (c->failed) return;
        for (smp = 0; smp < n->shard->s.count; smp++) {
            float *sg = hg ? sv__wg_slot(&wg) : NULL, *sb = hb ? sv__wg_slot(&wb) : NULL;
            if (sg) memcpy(sg, sum_dx + smp * per * C, C * sizeof(float));
            if (sb) memcpy(sb, sum_d + smp * per * C, C * sizeof(float));
            for (r = 1; r < per; r++) {
                if (sg) sv_axpy(C, 1.0f, sum_dx + (smp * per + r) * C, sg);
                if (sb) sv_axpy(C, 1.0f, sum_d + (smp * per + r) * C, sb);
            }
        }
        if (hg) sv__wg_end(c, n, &wg);
        if (hb) sv__wg_end(c, n, &wb);
    }
}

static sv_tensor *sv__group_norm_ch(sv_ctx *c, sv_tensor *x, const size_t *len, sv_tensor *gamma, sv_tensor *beta, float eps, int gelu)
{
    const char *name = gelu ? "group_norm_gelu" : "group_norm";
    sv_tensor *y;
    size_t B, T, C, b;
    float *mean, *rstd, *scratch;
    double *tot;
    SV__IN1(x);
    if (x->ndim != 3) return sv__shape_error(c, name, "x must be [B,T,C]");
    B = x->shape[0]; T = x->shape[1]; C = x->shape[2];
    if ((gamma && gamma->n != C) || (beta && beta->n != C)) return sv__shape_error(c, name, "gamma/beta must have %zu entries", C);
    SV__FWD_BEGIN(c);
    y = sv__like(c, x);
    mean = (float *)sv_ctx_alloc(c, B * C * sizeof(float));
    rstd = (float *)sv_ctx_alloc(c, B * C * sizeof(float));
    scratch = (float *)sv_ctx_alloc(c, B * 4 * C * sizeof(float));
    tot = (double *)sv_ctx_alloc(c, B * 2 * C * sizeof(double));
    if (!y || !mean || !rstd || !scratch || !tot) return NULL;
SV__OMP(parallel for if (x->n > SV__PAR_N))
    for (b = 0; b < B; b++) {
        size_t Tv = sv__valid_len(len, b, T);
        const float *xb = x->data + b * T * C;
        float *yb = y->data + b * T * C;
        sv__gn_stats(xb, Tv, C, eps, mean + b * C, rstd + b * C, scratch + b * 4 * C, tot + b * 2 * C);
        sv__gn_apply(yb, xb, T, Tv, C, mean + b * C, rstd + b * C, gamma ? gamma->data : NULL, beta ? beta->data : NULL, gelu);
    }
    if (sv__needs(c, x, gamma, beta, NULL)) {
        sv__node *n = sv__record(c, name, sv__group_norm_ch_bwd, y, x, gamma, beta, NULL);
        if (!n) return NULL;
        n->save[0] = sv__arena_copy(c, len, B * sizeof(size_t));
        n->save[1] = mean;
        n->save[2] = rstd;
        n->iarg[0] = (size_t)gelu;
    }
    SV__FWD_END(c, name);
    return y;
}

SV_DEF sv_tensor *sv_group_norm_ch(sv_ctx *c, sv_tensor *x, const size_t *len, sv_tensor *gamma, sv_tensor *beta, float eps)
{
    return sv__group_norm_ch(c, x, len, gamma, beta, eps, 0);
}

SV_DEF sv_tensor *sv_group_norm_gelu(sv_ctx *c, sv_tensor *x, const size_t *len, sv_tensor *gamma, sv_tensor *beta, float eps)
{
    return sv__group_norm_ch(c, x, len, gamma, beta, eps, 1);
}

/* The output of group-norm node gn again, into y: from its input and the statistics it saved. */
static void sv__group_norm_recompute(const sv__node *gn, float *y)
{
    const sv_tensor *x = gn->in[0], *g = gn->in[1], *be = gn->in[2];
    size_t B = x->shape[0], T = x->shape[1], C = x->shape[2], b;
    const size_t *len = (const size_t *)gn->save[0];
    const float *mean = (const float *)gn->save[1], *rstd = (const float *)gn->save[2];
SV__OMP(parallel for if (x->n > SV__PAR_N))
    for (b = 0; b < B; b++)
        sv__gn_apply(y + b * T * C, x->data + b * T * C, T, sv__valid_len(len, b, T), C, mean + b * C, rstd + b * C,
                     g ? g->data : NULL, be ? be->data : NULL, (int)gn->iarg[0]);
}

/* conv1d's backward when its input x is the output of a group norm (+ GELU) node that was not
   kept (sv__conv1d_gn_in): x is recomputed for dW into a scratch buffer, released before x's
   gradient is created so that buffer can take its place; dx as conv1d (groups 1, no padding). */
static void sv__conv1d_gn_in_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *x = n->in[0], *w = n->in[1], *bias = n->in[2];
    const sv__node *gn = (const sv__node *)n->save[0];
    size_t B = n->iarg[0], T = n->iarg[1], Cin = n->iarg[2], Cout = n->iarg[3], K = n->iarg[4];
    size_t s = n->iarg[5], Tout = n->out->shape[1];
    const float *dy = n->out->grad;
    float *gx;
    int fresh;
    sv__count_flops(c, (double)B * Tout * Cout * K * Cin, (w->requires_grad != 0) + (x->requires_grad != 0));
    sv__bias_grad(c, n, bias, dy, B * Tout, Cout);
    if (w->requires_grad) {
        float *tmp = (float *)sv_ctx_alloc(c, x->n * sizeof(float));
        if (!tmp) return;
        sv__group_norm_recompute(gn, tmp);
        sv__conv1d_dw_into(c, n, w, dy, tmp, B, T, Cin, Cout, K, s, Tout);
        sv__arena_release(c, tmp, x->n * sizeof(float));
    }
    gx = sv__g_w(c, x, &fresh);
    if (gx) sv__conv1d_dx(c, gx, dy, w->data, B, T, Cin, Cout, K, s, Tout, fresh);
}

/* sv_conv1d(c, x, w, bias, stride, 0, 1) where x is the output of the group norm (+ GELU) op
   recorded just before (the CNN's layer 0, 52 MB of the `small` step): x's data is released
   once the forward GEMM has read it and its tensor keeps data = NULL. Neither backward needs it
   stored: the norm's own backward recomputes the normalised rows from its input and saved
   statistics, and this conv's recomputes them the same way for dW (activation checkpointing,
   Chen et al. 2016). Any other x, or no tape node, gives a plain conv1d. */
static sv_tensor *sv__conv1d_gn_in(sv_ctx *c, sv_tensor *x, sv_tensor *w, sv_tensor *bias, size_t stride)
{
    sv__node *gn = c->tape, *n;
    sv_tensor *y = sv_conv1d(c, x, w, bias, stride, 0, 1);
    if (!y || !gn || gn->out != x || gn->backward != sv__group_norm_ch_bwd) return y;
    n = c->tape;
    if (n == gn || n->out != y || n->backward != sv__conv1d_bwd) return y;  /* not recorded: keep x */
    n->backward = sv__conv1d_gn_in_bwd;
    n->save[0] = gn;
    sv__arena_release(c, x->data, x->n * sizeof(float));
    x->data = NULL;
    return y;
}

/* BatchNorm walks [B,T,C] frame row by frame row over a block of channels: each channel's
   double sums still run over (b, t) in order, one chain per channel, but the chains of a
   block advance side by side (vectorised, independent) and every row is read contiguously.
   Walking one channel down the time axis instead made each sum a serial chain of dependent
   double adds on strided loads (3.7 ms per `small` step for ~26 K-element inputs). */
#define SV__BN_CH 64

/* Shard mode: per-sample sums over valid frames, loc [S, w] in double (each sample's batch rows
   in order), gathered over the processes into all [total, w] and summed in sample order into
   tot [w]. w = C (sum x, or with `mean` sum (x - mean)^2) or 2C (with dy: sum dy, then
   sum dy xhat). The same totals on every process, whatever the shares. */
static int sv__bn_shard_sums(sv_ctx *c, const sv__shard *sh, const sv_tensor *x, const size_t *len, const double *mean,
                             const float *dy, const float *fmean, const float *rstd, double *loc, double *tot)
{
    size_t B = x->shape[0], T = x->shape[1], C = x->shape[2], S = sh->s.count, per = B / S, w = dy ? 2 * C : C, smp, j;
    double *all;
    ptrdiff_t ss;
SV__OMP(parallel for if (x->n > SV__PAR_N))
    for (ss = 0; ss < (ptrdiff_t)S; ss++) {
        double *l = loc + (size_t)ss * w;
        size_t b, t, jj;
        for (jj = 0; jj < w; jj++) l[jj] = 0;
        for (b = (size_t)ss * per; b < ((size_t)ss + 1) * per; b++)
            for (t = 0; t < sv__valid_len(len, b, T); t++) {
                const float *xr = x->data + (b * T + t) * C;
                if (dy) {
                    const float *d = dy + (b * T + t) * C;
                    for (jj = 0; jj < C; jj++) {
                        l[jj] += d[jj];
                        l[C + jj] += (double)d[jj] * (xr[jj] - fmean[jj]) * rstd[jj];
                    }
                } else if (mean) {
                    for (jj = 0; jj < C; jj++) { double dd = xr[jj] - mean[jj]; l[jj] += dd * dd; }
                } else {
                    for (jj = 0; jj < C; jj++) l[jj] += xr[jj];
                }
            }
    }
    all = (double *)sv_ctx_alloc(c, sh->s.total * w * sizeof(double));
    if (!all || sv__shard_gather(c, sh, loc, w, all) != SV_OK) return SV_ERR_NOMEM;
    for (j = 0; j < w; j++) tot[j] = 0;
    for (smp = 0; smp < sh->s.total; smp++)
        for (j = 0; j < w; j++) tot[j] += all[smp * w + j];
    return SV_OK;
}

static void sv__batch_norm_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *x = n->in[0], *g = n->in[1], *be = n->in[2];
    size_t B = x->shape[0], T = x->shape[1], C = x->shape[2], nblk = (C + SV__BN_CH - 1) / SV__BN_CH;
    const size_t *len = (const size_t *)n->save[0];
    const float *mean = (const float *)n->save[1], *rstd = (const float *)n->save[2], *dy = n->out->grad;
    float *gx = sv__g(c, x), *gg = sv__g_unless_by_sample(c, n, g), *gb = sv__g_unless_by_sample(c, n, be);
    int batch_stats = (int)n->iarg[0];
    size_t cnt = n->iarg[1];
    double *tot = NULL;
    ptrdiff_t blk;
    if (n->shard) {
        /* the global sums of dy and dy xhat (BatchNorm couples the batch: the statistics are the
           global batch's), and gamma/beta's gradients per sample */
        size_t S = n->shard->s.count, smp, j;
        double *loc = (double *)sv_ctx_alloc(c, S * 2 * C * sizeof(double));
        tot = (double *)sv_ctx_alloc(c, 2 * C * sizeof(double));
        if (!loc || !tot || !sv__rows_per_sample(c, n, B)) return;
        if (sv__bn_shard_sums(c, n->shard, x, len, NULL, dy, mean, rstd, loc, tot) != SV_OK) return;
        if (sv__by_sample(n, g) || sv__by_sample(n, be)) {
            sv__wg wg, wb;
            int hg = sv__by_sample(n, g) && sv__wg_begin(c, n, &wg, g);
            int hb = sv__by_sample(n, be) && sv__wg_begin(c, n, &wb, be);
            if (c->failed) return;
            for (smp = 0; smp < S; smp++) {
                float *sg = hg ? sv__wg_slot(&wg) : NULL, *sb = hb ? sv__wg_slot(&wb) : NULL;
                for (j = 0; j < C; j++) {
                    if (sg) sg[j] = (float)loc[smp * 2 * C + C + j];
                    if (sb) sb[j] = (float)loc[smp * 2 * C + j];
                }
            }
            if (hg) sv__wg_end(c, n, &wg);
            if (hb) sv__wg_end(c, n, &wb);
        }
    }
SV__OMP(parallel for if (x->n > SV__PAR_N))
    for (blk = 0; blk < (ptrdiff_t)nblk; blk++) {
        size_t c0 = (size_t)blk * SV__BN_CH, nc = C - c0 < SV__BN_CH ? C - c0 : SV__BN_CH, b, t, j;
        double s1[SV__BN_CH], s2[SV__BN_CH];
        float gam[SV__BN_CH], m1[SV__BN_CH], m2[SV__BN_CH];
        const float *mu = mean + c0, *rs = rstd + c0;
        for (j = 0; j < nc; j++) { s1[j] = 0; s2[j] = 0; gam[j] = g ? g->data[c0 + j] : 1.0f; }
        if (tot)
            for (j = 0; j < nc; j++) { s1[j] = tot[c0 + j]; s2[j] = tot[C + c0 + j]; }
        else
        for (b = 0; b < B; b++)
            for (t = 0; t < sv__valid_len(len, b, T); t++) {
                const float *d = dy + (b * T + t) * C + c0, *xr = x->data + (b * T + t) * C + c0;
                for (j = 0; j < nc; j++) {
                    s1[j] += d[j];
                    s2[j] += (double)d[j] * (xr[j] - mu[j]) * rs[j];
                }
            }
        for (j = 0; j < nc; j++) {
            if (gg) gg[c0 + j] += (float)s2[j];
            if (gb) gb[c0 + j] += (float)s1[j];
            m1[j] = (float)(s1[j] / (double)cnt);
            m2[j] = (float)(s2[j] / (double)cnt);
        }
        if (gx)
            for (b = 0; b < B; b++)
                for (t = 0; t < sv__valid_len(len, b, T); t++) {
                    size_t i = (b * T + t) * C + c0;
                    const float *d = dy + i, *xr = x->data + i;
                    float *o = gx + i;
                    for (j = 0; j < nc; j++) {
                        float xh = (xr[j] - mu[j]) * rs[j];
                        if (batch_stats)
                            o[j] += gam[j] * rs[j] * (d[j] - m1[j] - xh * m2[j]);
                        else /* eval mode: the statistics are constants */
                            o[j] += gam[j] * rs[j] * d[j];
                    }
                }
    }
}

SV_DEF sv_tensor *sv_batch_norm(sv_ctx *c, sv_tensor *x, const size_t *len, sv_tensor *gamma, sv_tensor *beta,
                                sv_tensor *running_mean, sv_tensor *running_var, float momentum, float eps)
{
    sv_tensor *y;
    size_t B, T, C, cnt = 0, b, nblk;
    float *mean, *rstd;
    double *gm = NULL;              /* shard mode: the global mean [C] and variance [C] */
    int batch_stats;
    ptrdiff_t blk;
    SV__IN1(x);
    if (x->ndim != 3) return sv__shape_error(c, "batch_norm", "x must be [B,T,C]");
    B = x->shape[0]; T = x->shape[1]; C = x->shape[2];
    if ((gamma && gamma->n != C) || (beta && beta->n != C) || !running_mean || !running_var || running_mean->n != C || running_var->n != C)
        return sv__shape_error(c, "batch_norm", "gamma/beta/running statistics must have %zu entries", C);
    for (b = 0; b < B; b++) cnt += sv__valid_len(len, b, T);
    batch_stats = c->training;
    if (batch_stats && c->shard) {
        /* shard mode: the statistics of the global batch, from per-sample sums (two passes, as
           below: the mean, then the squared deviations from it) */
        size_t S = c->shard->s.count, j;
        double *loc = (double *)sv_ctx_alloc(c, S * (C + 1) * sizeof(double)), *cn = loc ? loc + S * C : NULL;
        double *all = (double *)sv_ctx_alloc(c, c->shard->s.total * sizeof(double));
        gm = (double *)sv_ctx_alloc(c, 2 * C * sizeof(double));
        if (!loc || !all || !gm) return NULL;
        if (B % S) return sv__shape_error(c, "batch_norm", "%zu rows for %zu samples", B, S);
        for (b = 0; b < S; b++) {
            size_t bb;
            cn[b] = 0;
            for (bb = b * (B / S); bb < (b + 1) * (B / S); bb++) cn[b] += (double)sv__valid_len(len, bb, T);
        }
        if (sv__shard_gather(c, c->shard, cn, 1, all) != SV_OK) return NULL;
        for (cnt = 0, b = 0; b < c->shard->s.total; b++) cnt += (size_t)all[b];
        if (cnt >= 2) {
            if (sv__bn_shard_sums(c, c->shard, x, len, NULL, NULL, NULL, NULL, loc, gm) != SV_OK) return NULL;
            for (j = 0; j < C; j++) gm[j] /= (double)cnt;
            if (sv__bn_shard_sums(c, c->shard, x, len, gm, NULL, NULL, NULL, loc, gm + C) != SV_OK) return NULL;
            for (j = 0; j < C; j++) gm[C + j] /= (double)cnt;
        }
    }
    if (batch_stats && cnt < 2) return sv__shape_error(c, "batch_norm", "training needs at least 2 valid frames per channel (got %zu)", cnt);
    SV__FWD_BEGIN(c);
    y = sv_tensor_zeros(c, 3, x->shape);
    mean = (float *)sv_ctx_alloc(c, C * sizeof(float));
    rstd = (float *)sv_ctx_alloc(c, C * sizeof(float));
    if (!y || !mean || !rstd) return NULL;
    nblk = (C + SV__BN_CH - 1) / SV__BN_CH;
SV__OMP(parallel for if (x->n > SV__PAR_N))
    for (blk = 0; blk < (ptrdiff_t)nblk; blk++) {
        size_t c0 = (size_t)blk * SV__BN_CH, nc = C - c0 < SV__BN_CH ? C - c0 : SV__BN_CH, bb, t, j;
        double m[SV__BN_CH], v[SV__BN_CH];
        float gam[SV__BN_CH], bet[SV__BN_CH];
        if (batch_stats && gm) {
            for (j = 0; j < nc; j++) {
                float *rm = running_mean->data + c0 + j, *rv = running_var->data + c0 + j;
                m[j] = gm[c0 + j];
                v[j] = gm[C + c0 + j];
                *rm = (1.0f - momentum) * *rm + momentum * (float)m[j];
                *rv = (1.0f - momentum) * *rv + momentum * (float)(v[j] * (double)cnt / (double)(cnt - 1));
            }
        } else if (batch_stats) {
            for (j = 0; j < nc; j++) m[j] = v[j] = 0;
            for (bb = 0; bb < B; bb++)
                for (t = 0; t < sv__valid_len(len, bb, T); t++) {
                    const float *xr = x->data + (bb * T + t) * C + c0;
                    for (j = 0; j < nc; j++) m[j] += xr[j];
                }
            for (j = 0; j < nc; j++) m[j] /= (double)cnt;
            for (bb = 0; bb < B; bb++)
                for (t = 0; t < sv__valid_len(len, bb, T); t++) {
                    const float *xr = x->data + (bb * T + t) * C + c0;
                    for (j = 0; j < nc; j++) { double d = xr[j] - m[j]; v[j] += d * d; }
                }
            for (j = 0; j < nc; j++) {
                float *rm = running_mean->data + c0 + j, *rv = running_var->data + c0 + j;
                v[j] /= (double)cnt;
                /* PyTorch: the running variance uses the unbiased estimate */
                *rm = (1.0f - momentum) * *rm + momentum * (float)m[j];
                *rv = (1.0f - momentum) * *rv + momentum * (float)(v[j] * (double)cnt / (double)(cnt - 1));
            }
        } else {
            for (j = 0; j < nc; j++) { m[j] = running_mean->data[c0 + j]; v[j] = running_var->data[c0 + j]; }
        }
        for (j = 0; j < nc; j++) {
            mean[c0 + j] = (float)m[j];
            rstd[c0 + j] = (float)(1.0 / sqrt(v[j] + eps));
            gam[j] = gamma ? gamma->data[c0 + j] : 1.0f;
            bet[j] = beta ? beta->data[c0 + j] : 0.0f;
        }
        for (bb = 0; bb < B; bb++)
            for (t = 0; t < sv__valid_len(len, bb, T); t++) {
                size_t i = (bb * T + t) * C + c0;
                const float *xr = x->data + i, *mu = mean + c0, *rs = rstd + c0;
                float *yr = y->data + i;
                for (j = 0; j < nc; j++) yr[j] = (xr[j] - mu[j]) * rs[j] * gam[j] + bet[j];
            }
    }
    if (sv__needs(c, x, gamma, beta, NULL)) {
        sv__node *n = sv__record(c, "batch_norm", sv__batch_norm_bwd, y, x, gamma, beta, NULL);
        if (!n) return NULL;
        n->save[0] = sv__arena_copy(c, len, B * sizeof(size_t));
        n->save[1] = mean;
        n->save[2] = rstd;
        n->iarg[0] = (size_t)batch_stats;
        n->iarg[1] = cnt;
    }
    SV__FWD_END(c, "batch_norm");
    return y;
}

/* ---------------------------------------------------------------- 5.9 softmax and cross-entropy */
static void sv__softmax_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]);
    size_t F = n->out->shape[n->out->ndim - 1];
    if (gx) sv_softmax_rows_backward(gx, n->out->data, n->out->grad, n->out->n / F, F);
}

SV_DEF sv_tensor *sv_softmax(sv_ctx *c, sv_tensor *x)
{
    sv_tensor *y;
    size_t F;
    SV__IN1(x);
    SV__FWD_BEGIN(c);
    F = x->shape[x->ndim - 1];
    y = sv__like(c, x);
    if (!y) return NULL;
    sv_softmax_rows(y->data, x->data, x->n / F, F);
    if (sv__needs(c, x, NULL, NULL, NULL) && !sv__record(c, "softmax", sv__softmax_bwd, y, x, NULL, NULL, NULL)) return NULL;
    SV__FWD_END(c, "softmax");
    return y;
}

static float sv__logsumexp(const float *x, size_t n)
{
    float mx = -INFINITY;
    double s = 0;
    size_t i;
    for (i = 0; i < n; i++) if (x[i] > mx) mx = x[i];
    if (mx == -INFINITY) return -INFINITY;
    for (i = 0; i < n; i++) s += exp((double)x[i] - mx);
    return mx + (float)log(s);
}

/* y = x - logsumexp(x); dx = dy - softmax(x) sum(dy). -inf inputs give -inf outputs and get no
   gradient (their probability is exactly 0). */
static void sv__log_softmax_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]);
    size_t F = n->out->shape[n->out->ndim - 1], rows = n->out->n / F, r, i;
    const float *y = n->out->data, *dy = n->out->grad;
    if (!gx) return;
    for (r = 0; r < rows; r++) {
        double s = 0;
        for (i = 0; i < F; i++) if (y[r * F + i] != -INFINITY) s += dy[r * F + i];
        for (i = 0; i < F; i++)
            if (y[r * F + i] != -INFINITY) gx[r * F + i] += dy[r * F + i] - expf(y[r * F + i]) * (float)s;
    }
}

SV_DEF sv_tensor *sv_log_softmax(sv_ctx *c, sv_tensor *x)
{
    sv_tensor *y;
    size_t F, r, i;
    SV__IN1(x);
    F = x->shape[x->ndim - 1];
    y = sv__like(c, x);
    if (!y) return NULL;
    for (r = 0; r < x->n / F; r++) {
        float lse = sv__logsumexp(x->data + r * F, F);
        for (i = 0; i < F; i++) y->data[r * F + i] = x->data[r * F + i] - lse;
    }
    if (sv__needs(c, x, NULL, NULL, NULL) && !sv__record(c, "log_softmax", sv__log_softmax_bwd, y, x, NULL, NULL, NULL)) return NULL;
    return y;
}

/* CE = -log softmax(x)[target]; dx = (softmax(x) - onehot(target)) dL (/N for the mean). */
static void sv__cross_entropy_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *x = n->in[0];
    float *gx = sv__g(c, x);
    size_t N = x->shape[0], K = x->n / N, r, i;
    const int *tg = (const int *)n->save[0];
    const float *lse = (const float *)n->save[1];
    float g = n->out->grad[0] * n->farg[0];
    if (!gx) return;
SV__OMP(parallel for private(i) if (x->n > SV__PAR_N))
    for (r = 0; r < N; r++)
        for (i = 0; i < K; i++) {
            float xi = x->data[r * K + i], p = xi == -INFINITY ? 0.0f : expf(xi - lse[r]);
            gx[r * K + i] += g * (p - (tg[r] == (int)i ? 1.0f : 0.0f));
        }
}

SV_DEF sv_tensor *sv_cross_entropy(sv_ctx *c, sv_tensor *logits, const int *target, int mean)
{
    sv_tensor *y;
    size_t N, K, r;
    float *lse;
    double s = 0;
    SV__IN1(logits);
    if (logits->ndim != 2) return sv__shape_error(c, "cross_entropy", "logits must be [N,K]");
    N = logits->shape[0];
    K = logits->shape[1];
    if (N == 0) return sv__shape_error(c, "cross_entropy", "empty batch");
    for (r = 0; r < N; r++)
        if (target[r] < 0 || (size_t)target[r] >= K) return sv__shape_error(c, "cross_entropy", "target %d of row %zu outside [0,%zu)", target[r], r, K);
    SV__FWD_BEGIN(c);
    y = sv_new1(c, 1);
    lse = (float *)sv_ctx_alloc(c, N * sizeof(float));
    if (!y || !lse) return NULL;
    for (r = 0; r < N; r++) {
        lse[r] = sv__logsumexp(logits->data + r * K, K);
        s += (double)lse[r] - logits->data[r * K + (size_t)target[r]];
    }
    y->data[0] = (float)(mean ? s / (double)N : s);
    if (sv__needs(c, logits, NULL, NULL, NULL)) {
        sv__node *n = sv__record(c, "cross_entropy", sv__cross_entropy_bwd, y, logits, NULL, NULL, NULL);
        if (!n) return NULL;
        n->save[0] = sv__arena_copy(c, target, N * sizeof(int));
        n->save[1] = lse;
        n->farg[0] = mean ? 1.0f / (float)N : 1.0f;
    }
    SV__FWD_END(c, "cross_entropy");
    return y;
}

/* ---------------------------------------------------------------- 5.10 attention */
/* Per batch b and head h (Vaswani et al. 2017): S = Q_h K_h^T / sqrt(dh), masked keys -inf,
   P = softmax(S), P' = dropout(P), O_h = P' V_h. Q_h is a [T,dh] slice of q with row stride D,
   so every product is a strided GEMM with no copies. P (and P') are saved: T is at most a few
   hundred frames here, so B*H*T*T floats are small next to the CNN activations.
   Backward: dV = P'^T dO; dP' = dO V^T; dP = dP' * (P'/P); dS = softmax_bwd(P, dP);
   dQ = dS K / sqrt(dh); dK = dS^T Q / sqrt(dh). Each (b,h) writes disjoint columns of dQ, dK,
   dV, so the loop over (b,h) runs in parallel with no races. */
static void sv__attention_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
    size_t B = q->shape[0], T = q->shape[1], D = q->shape[2], H = n->iarg[0], dh = D / H, bh;
    const float *P = (const float *)n->save[0], *Pd = (const float *)n->save[1], *dO = n->out->grad;
    float *gq = sv__g(c, q), *gk = sv__g(c, k), *gv = sv__g(c, v), scale = 1.0f / sqrtf((float)dh);
    float *scratch = (float *)sv_ctx_alloc(c, sv__prod4((size_t)sv_get_threads() * 2, T, T, sizeof(float)));
    if (!scratch) return;
    /* dP = dO V^T always, then dV, dQ, dK as needed: each B*H*T*T*dh multiply-adds */
    sv__count_flops(c, (double)B * T * T * D, 1 + (gq != NULL) + (gk != NULL) + (gv != NULL));
SV__OMP(parallel for schedule(dynamic))
    for (bh = 0; bh < B * H; bh++) {
        size_t b = bh / H, h = bh % H, off = b * T * D + h * dh;
        int tid = 0;
        float *dP, *dS;
        const float *Pb = P + bh * T * T, *Pdb = Pd ? Pd + bh * T * T : Pb;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        dP = scratch + (size_t)tid * 2 * T * T;
        dS = dP + T * T;
        if (gv) sv__mm(c, 1, 0, T, dh, T, 1.0f, Pdb, T, dO + off, D, 1.0f, gv + off, D);
        sv__mm(c, 0, 1, T, T, dh, 1.0f, dO + off, D, v->data + off, D, 0.0f, dP, T);
        if (Pd) {
            size_t i;
            for (i = 0; i < T * T; i++) dP[i] = Pb[i] > 0 ? dP[i] * (Pdb[i] / Pb[i]) : 0.0f;
        }
        memset(dS, 0, T * T * sizeof(float));
        sv_softmax_rows_backward(dS, Pb, dP, T, T);
        if (gq) sv__mm(c, 0, 0, T, dh, T, scale, dS, T, k->data + off, D, 1.0f, gq + off, D);
        if (gk) sv__mm(c, 1, 0, T, dh, T, scale, dS, T, q->data + off, D, 1.0f, gk + off, D);
    }
    sv__arena_release(c, scratch, (size_t)sv_get_threads() * 2 * T * T * sizeof(float));
}

SV_DEF sv_tensor *sv_attention(sv_ctx *c, sv_tensor *q, sv_tensor *k, sv_tensor *v, size_t heads, const size_t *key_len, float dropout)
{
    sv_tensor *y;
    size_t B, T, D, dh, bh;
    float *P, *Pd = NULL, scale;
    SV__IN2(q, k);
    SV__IN1(v);
    if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3 || q->n != k->n || q->n != v->n)
        return sv__shape_error(c, "attention", "q, k, v must all be [B,T,D]");
    B = q->shape[0]; T = q->shape[1]; D = q->shape[2];
    if (heads == 0 || D % heads) return sv__shape_error(c, "attention", "width %zu is not divisible by %zu heads", D, heads);
    SV__FWD_BEGIN(c);
    dh = D / heads;
    scale = 1.0f / sqrtf((float)dh);
    y = sv__like(c, q);
    P = (float *)sv_ctx_alloc(c, sv__prod4(B * heads, T, T, sizeof(float)));
    if (!y || !P) return NULL;
    sv__count_flops(c, (double)B * T * T * D, 2);   /* S = Q K^T and Y = P V */
    if (c->training && dropout > 0.0f) {
        Pd = (float *)sv_ctx_alloc(c, sv__prod4(B * heads, T, T, sizeof(float)));
        if (!Pd) return NULL;
    }
SV__OMP(parallel for schedule(dynamic))
    for (bh = 0; bh < B * heads; bh++) {
        size_t b = bh / heads, h = bh % heads, off = b * T * D + h * dh, t, j;
        size_t kl = key_len ? (key_len[b] < T ? key_len[b] : T) : T;
        float *S = P + bh * T * T;
        sv__mm(c, 0, 1, T, T, dh, scale, q->data + off, D, k->data + off, D, 0.0f, S, T);
        for (t = 0; t < T; t++)
            for (j = kl; j < T; j++) S[t * T + j] = -INFINITY;
        sv_softmax_rows(S, S, T, T);
    }
    if (Pd) {
        /* counter-based mask (as sv_dropout's): parallel, and the same for every thread count */
        size_t i, nP = B * heads * T * T;
        float keep = 1.0f / (1.0f - dropout);
        if (sv__dropout_mask(c, Pd, nP, dropout, keep, "attention") != SV_OK) return NULL;
SV__OMP(parallel for if (nP > SV__PAR_N))
        for (i = 0; i < nP; i++) Pd[i] *= P[i];
    }
SV__OMP(parallel for schedule(dynamic))
    for (bh = 0; bh < B * heads; bh++) {
        size_t b = bh / heads, h = bh % heads, off = b * T * D + h * dh;
        sv__mm(c, 0, 0, T, dh, T, 1.0f, (Pd ? Pd : P) + bh * T * T, T, v->data + off, D, 0.0f, y->data + off, D);
    }
    if (sv__needs(c, q, k, v, NULL)) {
        sv__node *n = sv__record(c, "attention", sv__attention_bwd, y, q, k, v, NULL);
        if (!n) return NULL;
        n->save[0] = P;
        n->save[1] = Pd;
        n->iarg[0] = heads;
    }
    SV__FWD_END(c, "attention");
    return y;
}

/* ---------------------------------------------------------------- 5.11 shape ops */
/* View x as outer x (size of axis) x inner. */
static void sv__axis_split(const sv_tensor *x, int axis, size_t *outer, size_t *inner)
{
    int d;
    *outer = 1;
    *inner = 1;
    for (d = 0; d < axis; d++) *outer *= x->shape[d];
    for (d = axis + 1; d < x->ndim; d++) *inner *= x->shape[d];
}

static void sv__concat_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *a = n->in[0], *b = n->in[1];
    size_t outer = n->iarg[0], ra = n->iarg[1], rb = n->iarg[2], o;
    float *ga = sv__g(c, a), *gb = sv__g(c, b);
    const float *dy = n->out->grad;
    for (o = 0; o < outer; o++) {
        if (ga) sv_axpy(ra, 1.0f, dy + o * (ra + rb), ga + o * ra);
        if (gb) sv_axpy(rb, 1.0f, dy + o * (ra + rb) + ra, gb + o * rb);
    }
}

SV_DEF sv_tensor *sv_concat(sv_ctx *c, sv_tensor *a, sv_tensor *b, int axis)
{
    sv_tensor *y;
    size_t shape[SV_MAX_DIMS], outer, ia, ib, ra, rb, o;
    int d;
    SV__IN2(a, b);
    if (a->ndim != b->ndim || axis < 0 || axis >= a->ndim) return sv__shape_error(c, "concat", "ranks differ or bad axis");
    for (d = 0; d < a->ndim; d++)
        if (d != axis && a->shape[d] != b->shape[d]) return sv__shape_error(c, "concat", "dim %d differs (%zu vs %zu)", d, a->shape[d], b->shape[d]);
    for (d = 0; d < a->ndim; d++) shape[d] = a->shape[d];
    shape[axis] = a->shape[axis] + b->shape[axis];
    y = sv_tensor_new(c, a->ndim, shape);
    if (!y) return NULL;
    sv__axis_split(a, axis, &outer, &ia);
    sv__axis_split(b, axis, &outer, &ib);
    ra = a->shape[axis] * ia;
    rb = b->shape[axis] * ib;
    for (o = 0; o < outer; o++) {
        memcpy(y->data + o * (ra + rb), a->data + o * ra, ra * sizeof(float));
        memcpy(y->data + o * (ra + rb) + ra, b->data + o * rb, rb * sizeof(float));
    }
    if (sv__needs(c, a, b, NULL, NULL)) {
        sv__node *n = sv__record(c, "concat", sv__concat_bwd, y, a, b, NULL, NULL);
        if (!n) return NULL;
        n->iarg[0] = outer; n->iarg[1] = ra; n->iarg[2] = rb;
    }
    return y;
}

static void sv__slice_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]);
    size_t outer = n->iarg[0], full = n->iarg[1], start = n->iarg[2], len = n->iarg[3], o;
    if (!gx) return;
    for (o = 0; o < outer; o++) sv_axpy(len, 1.0f, n->out->grad + o * len, gx + o * full + start);
}

SV_DEF sv_tensor *sv_slice(sv_ctx *c, sv_tensor *x, int axis, size_t start, size_t len)
{
    sv_tensor *y;
    size_t shape[SV_MAX_DIMS], outer, inner, o;
    int d;
    SV__IN1(x);
    if (axis < 0 || axis >= x->ndim) return sv__shape_error(c, "slice", "bad axis %d", axis);
    if (len == 0 || start + len > x->shape[axis])
        return sv__shape_error(c, "slice", "range [%zu,%zu) outside dim %d of size %zu", start, start + len, axis, x->shape[axis]);
    for (d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    shape[axis] = len;
    y = sv_tensor_new(c, x->ndim, shape);
    if (!y) return NULL;
    sv__axis_split(x, axis, &outer, &inner);
    for (o = 0; o < outer; o++)
        memcpy(y->data + o * len * inner, x->data + (o * x->shape[axis] + start) * inner, len * inner * sizeof(float));
    if (sv__needs(c, x, NULL, NULL, NULL)) {
        sv__node *n = sv__record(c, "slice", sv__slice_bwd, y, x, NULL, NULL, NULL);
        if (!n) return NULL;
        n->iarg[0] = outer; n->iarg[1] = x->shape[axis] * inner; n->iarg[2] = start * inner; n->iarg[3] = len * inner;
    }
    return y;
}

/* A view with another shape: shares data and gradient buffer (created now if needed). */
SV_DEF sv_tensor *sv_reshape(sv_ctx *c, sv_tensor *x, int ndim, const size_t *shape)
{
    sv_tensor *y;
    int d;
    SV__IN1(x);
    if (ndim < 1 || ndim > SV_MAX_DIMS || sv__numel(ndim, shape) != x->n) return sv__shape_error(c, "reshape", "element count changes");
    if (x->requires_grad && c->grad_enabled && !sv__g(c, x)) return NULL;
    y = (sv_tensor *)sv_ctx_alloc(c, sizeof(sv_tensor));
    if (!y) return NULL;
    *y = *x;
    y->ndim = ndim;
    for (d = 0; d < ndim; d++) y->shape[d] = shape[d];
    if (!(x->requires_grad && c->grad_enabled)) { y->requires_grad = 0; if (x->kind == SV_ACTIVATION) y->grad = NULL; }
    return y;
}

static void sv__transpose_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *x = n->in[0];
    float *gx = sv__g(c, x);
    size_t R = x->shape[x->ndim - 2], C = x->shape[x->ndim - 1], nb = x->n / (R * C), b, i, j;
    if (!gx) return;
    for (b = 0; b < nb; b++)
        for (i = 0; i < R; i++)
            for (j = 0; j < C; j++) gx[b * R * C + i * C + j] += n->out->grad[b * R * C + j * R + i];
}

SV_DEF sv_tensor *sv_transpose(sv_ctx *c, sv_tensor *x)
{
    sv_tensor *y;
    size_t shape[SV_MAX_DIMS], R, C, nb, b, i, j;
    int d;
    SV__IN1(x);
    if (x->ndim < 2) return sv__shape_error(c, "transpose", "needs at least 2 dims");
    for (d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    R = x->shape[x->ndim - 2];
    C = x->shape[x->ndim - 1];
    shape[x->ndim - 2] = C;
    shape[x->ndim - 1] = R;
    y = sv_tensor_new(c, x->ndim, shape);
    if (!y) return NULL;
    nb = x->n / (R * C);
    for (b = 0; b < nb; b++)
        for (i = 0; i < R; i++)
            for (j = 0; j < C; j++) y->data[b * R * C + j * R + i] = x->data[b * R * C + i * C + j];
    if (sv__needs(c, x, NULL, NULL, NULL) && !sv__record(c, "transpose", sv__transpose_bwd, y, x, NULL, NULL, NULL)) return NULL;
    return y;
}

/* ---------------------------------------------------------------- 5.12 gather / scatter / mask */
static void sv__gather_rows_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]);
    size_t F = n->iarg[0], m = n->iarg[1], r;
    const size_t *idx = (const size_t *)n->save[0];
    if (!gx) return;
    for (r = 0; r < m; r++) sv_axpy(F, 1.0f, n->out->grad + r * F, gx + idx[r] * F); /* serial: repeats add in order */
}

SV_DEF sv_tensor *sv_gather_rows(sv_ctx *c, sv_tensor *x, const size_t *idx, size_t m)
{
    sv_tensor *y;
    size_t F, rows, r;
    SV__IN1(x);
    if (m == 0) return sv__shape_error(c, "gather_rows", "no rows requested");
    F = x->shape[x->ndim - 1];
    rows = x->n / F;
    for (r = 0; r < m; r++) if (idx[r] >= rows) return sv__shape_error(c, "gather_rows", "index %zu outside %zu rows", idx[r], rows);
    y = sv_new2(c, m, F);
    if (!y) return NULL;
    for (r = 0; r < m; r++) memcpy(y->data + r * F, x->data + idx[r] * F, F * sizeof(float));
    if (sv__needs(c, x, NULL, NULL, NULL)) {
        sv__node *n = sv__record(c, "gather_rows", sv__gather_rows_bwd, y, x, NULL, NULL, NULL);
        if (!n) return NULL;
        n->save[0] = sv__arena_copy(c, idx, m * sizeof(size_t));
        n->iarg[0] = F; n->iarg[1] = m;
    }
    return y;
}

static void sv__scatter_add_rows_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]);
    size_t F = n->iarg[0], m = n->iarg[1], r;
    const size_t *idx = (const size_t *)n->save[0];
    if (!gx) return;
    for (r = 0; r < m; r++) sv_axpy(F, 1.0f, n->out->grad + idx[r] * F, gx + r * F);
}

SV_DEF sv_tensor *sv_scatter_add_rows(sv_ctx *c, sv_tensor *x, const size_t *idx, size_t n_rows)
{
    sv_tensor *y;
    size_t F, m, r;
    SV__IN1(x);
    F = x->shape[x->ndim - 1];
    m = x->n / F;
    for (r = 0; r < m; r++) if (idx[r] >= n_rows) return sv__shape_error(c, "scatter_add_rows", "index %zu outside %zu rows", idx[r], n_rows);
    y = sv_new2(c, n_rows, F);
    if (!y) return NULL;
    memset(y->data, 0, y->n * sizeof(float));
    for (r = 0; r < m; r++) sv_axpy(F, 1.0f, x->data + r * F, y->data + idx[r] * F);
    if (sv__needs(c, x, NULL, NULL, NULL)) {
        sv__node *n = sv__record(c, "scatter_add_rows", sv__scatter_add_rows_bwd, y, x, NULL, NULL, NULL);
        if (!n) return NULL;
        n->save[0] = sv__arena_copy(c, idx, m * sizeof(size_t));
        n->iarg[0] = F; n->iarg[1] = m;
    }
    return y;
}

static void sv__mask_rows_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]), *ge = sv__g_unless_by_sample(c, n, n->in[1]);
    size_t F = n->iarg[0], rows = n->out->n / F, r;
    const uint8_t *mask = (const uint8_t *)n->save[0];
    for (r = 0; r < rows; r++) {
        if (mask[r]) { if (ge) sv_axpy(F, 1.0f, n->out->grad + r * F, ge); }
        else if (gx) sv_axpy(F, 1.0f, n->out->grad + r * F, gx + r * F);
    }
    if (sv__by_sample(n, n->in[1])) {   /* shard mode: the embedding's gradient per sample */
        sv__wg w;
        size_t m = sv__rows_per_sample(c, n, rows), smp;
        if (!m || !sv__wg_begin(c, n, &w, n->in[1])) return;
        for (smp = 0; smp < n->shard->s.count; smp++) {
            float *g = sv__wg_slot(&w);
            memset(g, 0, F * sizeof(float));
            for (r = smp * m; r < (smp + 1) * m; r++) if (mask[r]) sv_axpy(F, 1.0f, n->out->grad + r * F, g);
        }
        sv__wg_end(c, n, &w);
    }
}

SV_DEF sv_tensor *sv_mask_rows(sv_ctx *c, sv_tensor *x, const uint8_t *mask, sv_tensor *emb)
{
    sv_tensor *y;
    size_t F, rows, r;
    SV__IN2(x, emb);
    F = x->shape[x->ndim - 1];
    if (emb->n != F) return sv__shape_error(c, "mask_rows", "embedding has %zu entries, rows have %zu", emb->n, F);
    rows = x->n / F;
    y = sv__like(c, x);
    if (!y) return NULL;
    for (r = 0; r < rows; r++) memcpy(y->data + r * F, mask[r] ? emb->data : x->data + r * F, F * sizeof(float));
    if (sv__needs(c, x, emb, NULL, NULL)) {
        sv__node *n = sv__record(c, "mask_rows", sv__mask_rows_bwd, y, x, emb, NULL, NULL);
        if (!n) return NULL;
        n->save[0] = sv__arena_copy(c, mask, rows);
        n->iarg[0] = F;
    }
    return y;
}

/* ---------------------------------------------------------------- 5.13 norms and similarities */
/* y = x / max(||x||, eps). With r = ||x|| > eps: dx = (dy - y (y.dy)) / r; else dx = dy / eps. */
static void sv__l2n_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]);
    size_t F = n->iarg[0], rows = n->out->n / F, r, i;
    const float *nr = (const float *)n->save[0], *y = n->out->data, *dy = n->out->grad;
    float eps = n->farg[0];
    if (!gx) return;
    for (r = 0; r < rows; r++) {
        if (nr[r] > eps) {
            float d = sv_dot(y + r * F, dy + r * F, F);
            for (i = 0; i < F; i++) gx[r * F + i] += (dy[r * F + i] - y[r * F + i] * d) / nr[r];
        } else {
            for (i = 0; i < F; i++) gx[r * F + i] += dy[r * F + i] / eps;
        }
    }
}

SV_DEF sv_tensor *sv_l2_normalize(sv_ctx *c, sv_tensor *x, float eps)
{
    sv_tensor *y;
    size_t F, rows, r, i;
    float *nr;
    SV__IN1(x);
    F = x->shape[x->ndim - 1];
    rows = x->n / F;
    y = sv__like(c, x);
    nr = (float *)sv_ctx_alloc(c, rows * sizeof(float));
    if (!y || !nr) return NULL;
    for (r = 0; r < rows; r++) {
        float nn = sqrtf(sv_dot(x->data + r * F, x->data + r * F, F)), den = nn > eps ? nn : eps;
        nr[r] = nn;
        for (i = 0; i < F; i++) y->data[r * F + i] = x->data[r * F + i] / den;
    }
    if (sv__needs(c, x, NULL, NULL, NULL)) {
        sv__node *n = sv__record(c, "l2_normalize", sv__l2n_bwd, y, x, NULL, NULL, NULL);
        if (!n) return NULL;
        n->save[0] = nr;
        n->iarg[0] = F;
        n->farg[0] = eps;
    }
    return y;
}

/* Sum over the last dim: [..,F] -> [..] (a 1-D input gives [1]). dx[..,i] = dy[..]. */
static void sv__sum_last_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]);
    size_t F = n->iarg[0], rows = n->out->n, r, i;
    if (!gx) return;
    for (r = 0; r < rows; r++)
        for (i = 0; i < F; i++) gx[r * F + i] += n->out->grad[r];
}

SV_DEF sv_tensor *sv_sum_last(sv_ctx *c, sv_tensor *x)
{
    sv_tensor *y;
    size_t F, rows, r, shape[SV_MAX_DIMS];
    int d;
    SV__IN1(x);
    F = x->shape[x->ndim - 1];
    rows = x->n / F;
    for (d = 0; d < x->ndim - 1; d++) shape[d] = x->shape[d];
    if (x->ndim == 1) shape[0] = 1;
    y = sv_tensor_new(c, x->ndim > 1 ? x->ndim - 1 : 1, shape);
    if (!y) return NULL;
    for (r = 0; r < rows; r++) {
        double s = 0;
        size_t i;
        for (i = 0; i < F; i++) s += x->data[r * F + i];
        y->data[r] = (float)s;
    }
    if (sv__needs(c, x, NULL, NULL, NULL)) {
        sv__node *n = sv__record(c, "sum_last", sv__sum_last_bwd, y, x, NULL, NULL, NULL);
        if (!n) return NULL;
        n->iarg[0] = F;
    }
    return y;
}

/* cos(a,b) = a.b / (max(||a||,eps) max(||b||,eps)), composed of the ops above */
SV_DEF sv_tensor *sv_cosine(sv_ctx *c, sv_tensor *a, sv_tensor *b, float eps)
{
    SV__IN2(a, b);
    if (a->n != b->n || a->ndim != b->ndim) return sv__shape_error(c, "cosine", "shapes differ");
    return sv_sum_last(c, sv_mul(c, sv_l2_normalize(c, a, eps), sv_l2_normalize(c, b, eps)));
}

/* out[n,j] = a[n,:] . b[idx[n,j],:]. da[n] += sum_j g[n,j] b[idx]; db[idx] += g[n,j] a[n]
   (db serial in n, j so repeated indices accumulate in a fixed order). */
static void sv__dot_gather_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *a = n->in[0], *b = n->in[1];
    size_t N = a->shape[0], F = a->shape[1], J = n->iarg[0], r, j;
    const size_t *idx = (const size_t *)n->save[0];
    const float *g = n->out->grad;
    float *ga = sv__g(c, a), *gb = sv__g(c, b);
    sv__count_flops(c, (double)N * J * F, (ga != NULL) + (gb != NULL));
    if (ga) {
SV__OMP(parallel for private(j) if (N * J * F > SV__PAR_N))
        for (r = 0; r < N; r++)
            for (j = 0; j < J; j++) if (g[r * J + j] != 0) sv_axpy(F, g[r * J + j], b->data + idx[r * J + j] * F, ga + r * F);
    }
    if (gb)
        for (r = 0; r < N; r++)
            for (j = 0; j < J; j++) if (g[r * J + j] != 0) sv_axpy(F, g[r * J + j], a->data + r * F, gb + idx[r * J + j] * F);
}

SV_DEF sv_tensor *sv_dot_gather(sv_ctx *c, sv_tensor *a, sv_tensor *b, const size_t *idx, size_t J)
{
    sv_tensor *y;
    size_t N, F, M, r, j;
    SV__IN2(a, b);
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[1]) return sv__shape_error(c, "dot_gather", "a must be [N,F] and b [M,F]");
    N = a->shape[0]; F = a->shape[1]; M = b->shape[0];
    for (r = 0; r < N * J; r++) if (idx[r] >= M) return sv__shape_error(c, "dot_gather", "index %zu outside %zu rows", idx[r], M);
    y = sv_new2(c, N, J);
    if (!y) return NULL;
    sv__count_flops(c, (double)N * J * F, 1);
SV__OMP(parallel for private(j) if (N * J * F > SV__PAR_N))
    for (r = 0; r < N; r++)
        for (j = 0; j < J; j++) y->data[r * J + j] = sv_dot(a->data + r * F, b->data + idx[r * J + j] * F, F);
    if (sv__needs(c, a, b, NULL, NULL)) {
        sv__node *n = sv__record(c, "dot_gather", sv__dot_gather_bwd, y, a, b, NULL, NULL);
        if (!n) return NULL;
        n->save[0] = sv__arena_copy(c, idx, N * J * sizeof(size_t));
        n->iarg[0] = J;
    }
    return y;
}

/* ---------------------------------------------------------------- 5.14 regression loss and data2vec targets */
/* L = s sum (x - t)^2; dx += dL 2 s (x - t) */
static void sv__sq_error_bwd(sv_ctx *c, sv__node *n)
{
    sv_tensor *x = n->in[0];
    float *gx = sv__g(c, x), g = n->out->grad[0] * 2.0f * n->farg[0];
    const float *t = (const float *)n->save[0];
    ptrdiff_t i;
    if (!gx) return;
SV__OMP(parallel for if (x->n > SV__PAR_N))
    for (i = 0; i < (ptrdiff_t)x->n; i++) gx[i] += g * (x->data[i] - t[i]);
}

SV_DEF sv_tensor *sv_sq_error_sum(sv_ctx *c, sv_tensor *x, const float *target, float scale)
{
    sv_tensor *y;
    double s = 0;
    size_t i;
    SV__IN1(x);
    if (!target) return sv__shape_error(c, "sq_error_sum", "NULL target");
    SV__FWD_BEGIN(c);
    y = sv_new1(c, 1);
    if (!y) return NULL;
    for (i = 0; i < x->n; i++) { double d = (double)x->data[i] - target[i]; s += d * d; }
    y->data[0] = (float)((double)scale * s);
    if (sv__needs(c, x, NULL, NULL, NULL)) {
        sv__node *n = sv__record(c, "sq_error_sum", sv__sq_error_bwd, y, x, NULL, NULL, NULL);
        if (!n || !(n->save[0] = sv__arena_copy(c, target, x->n * sizeof(float)))) { c->failed = 1; return NULL; }
        n->farg[0] = scale;
    }
    SV__FWD_END(c, "sq_error_sum");
    return y;
}

SV_DEF int sv_data2vec_target(const float *const *x, size_t n_layers, size_t B, size_t T, size_t D,
                              const size_t *len, float eps, float *out)
{
    size_t nblk = (D + 63) / 64;
    ptrdiff_t w;
    if (!x || !out || !n_layers) return sv__fail(SV_ERR_ARG, "data2vec_target: no layers");
    memset(out, 0, B * T * D * sizeof(float));
    /* one work item per (utterance, block of 64 channels): statistics over time in double, the
       layers added in order, so the result does not depend on the thread count */
SV__OMP(parallel for schedule(static) if (B * T * D * n_layers > SV__PAR_N))
    for (w = 0; w < (ptrdiff_t)(B * nblk); w++) {
        size_t b = (size_t)w / nblk, d0 = (size_t)w % nblk * 64, d1 = d0 + 64 < D ? d0 + 64 : D;
        size_t Tb = len ? (len[b] < T ? len[b] : T) : T, l, t, d;
        double mean[64], var[64];
        float *o = out + b * T * D;
        for (l = 0; l < n_layers; l++) {
            const float *xl = x[l] + b * T * D;
            for (d = d0; d < d1; d++) { mean[d - d0] = 0; var[d - d0] = 0; }
            if (!Tb) continue;
            for (t = 0; t < Tb; t++) for (d = d0; d < d1; d++) mean[d - d0] += xl[t * D + d];
            for (d = d0; d < d1; d++) mean[d - d0] /= (double)Tb;
            for (t = 0; t < Tb; t++)
                for (d = d0; d < d1; d++) { double e = xl[t * D + d] - mean[d - d0]; var[d - d0] += e * e; }
            for (d = d0; d < d1; d++) var[d - d0] = 1.0 / sqrt(var[d - d0] / (double)Tb + (double)eps);
            for (t = 0; t < Tb; t++)
                for (d = d0; d < d1; d++)
                    o[t * D + d] += (float)((xl[t * D + d] - mean[d - d0]) * var[d - d0] / (double)n_layers);
        }
    }
    return SV_OK;
}

/* ---------------------------------------------------------------- 5.15 shard sums and gathers */
static void sv__shard_sum_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]);
    size_t F = n->out->n, rows = n->in[0]->n / F, r;
    if (!gx) return;
    for (r = 0; r < rows; r++) sv_axpy(F, 1.0f, n->out->grad, gx + r * F);
}

/* Local samples (1 in ordinary mode, where the whole tensor is one block) and rows per sample. */
static size_t sv__samples_rows(sv_ctx *c, const sv_tensor *x, size_t F, size_t *m, const char *op)
{
    size_t S = c->shard ? c->shard->s.count : 1, rows = F ? x->n / F : 0;
    if (rows == 0 || rows % S) { sv__shape_error(c, op, "%zu rows for %zu samples", rows, S); return 0; }
    *m = rows / S;
    return S;
}

SV_DEF sv_tensor *sv_shard_sum(sv_ctx *c, sv_tensor *x)
{
    sv_tensor *y;
    size_t F, S, m, total, smp, r, j;
    double *loc, *all, acc;
    SV__IN1(x);
    F = x->shape[x->ndim - 1];
    if (!(S = sv__samples_rows(c, x, F, &m, "shard_sum"))) return NULL;
    total = c->shard ? c->shard->s.total : 1;
    y = sv_new1(c, F);
    loc = (double *)sv_ctx_alloc(c, S * F * sizeof(double));
    all = (double *)sv_ctx_alloc(c, total * F * sizeof(double));
    if (!y || !loc || !all) return NULL;
    for (smp = 0; smp < S; smp++)
        for (j = 0; j < F; j++) {
            for (acc = 0, r = smp * m; r < (smp + 1) * m; r++) acc += x->data[r * F + j];
            loc[smp * F + j] = acc;
        }
    if (sv__shard_gather(c, c->shard, loc, F, all) != SV_OK) return NULL;
    for (j = 0; j < F; j++) {
        for (acc = 0, smp = 0; smp < total; smp++) acc += all[smp * F + j];
        y->data[j] = (float)acc;
    }
    if (sv__needs(c, x, NULL, NULL, NULL) && !sv__record(c, "shard_sum", sv__shard_sum_bwd, y, x, NULL, NULL, NULL)) return NULL;
    return y;
}

static void sv__shard_gather_bwd(sv_ctx *c, sv__node *n)
{
    float *gx = sv__g(c, n->in[0]);
    size_t first = n->shard ? n->shard->s.first : 0, per = n->iarg[0];
    if (gx) sv_axpy(n->in[0]->n, 1.0f, n->out->grad + first * per, gx);
}

SV_DEF sv_tensor *sv_shard_gather(sv_ctx *c, sv_tensor *x)
{
    sv_tensor *y;
    size_t F, S, m, total, shape[SV_MAX_DIMS], i, per;
    double *loc, *all;
    int d;
    SV__IN1(x);
    F = x->shape[x->ndim - 1];
    if (!(S = sv__samples_rows(c, x, F, &m, "shard_gather"))) return NULL;
    total = c->shard ? c->shard->s.total : 1;
    per = m * F;                                  /* floats per sample */
    for (d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    shape[0] = x->shape[0] / S * total;
    y = sv_tensor_new(c, x->ndim, shape);
    loc = (double *)sv_ctx_alloc(c, x->n * sizeof(double));
    all = (double *)sv_ctx_alloc(c, total * per * sizeof(double));
    if (!y || !loc || !all) return NULL;
    for (i = 0; i < x->n; i++) loc[i] = x->data[i];
    if (sv__shard_gather(c, c->shard, loc, per, all) != SV_OK) return NULL;
    for (i = 0; i < y->n; i++) y->data[i] = (float)all[i];
    if (sv__needs(c, x, NULL, NULL, NULL)) {
        sv__node *n = sv__record(c, "shard_gather", sv__shard_gather_bwd, y, x, NULL, NULL, NULL);
        if (!n) return NULL;
        n->iarg[0] = per;
    }
    return y;
}

/* ======================================================================================
   6 wav2vec 2.0
   ====================================================================================== */
/* ---------------------------------------------------------------- 6.1 config */
static void sv__cfg_vgs_common(sv_config *c)
{
    c->vgs_conv_width = 9;
    c->vgs_audio_layers = 1;
    c->vgs_dropout = 0.1f;
    c->vgs_ln_eps = 1e-12f;     /* BERT's LayerNorm eps, as the reference VGS layers */
    c->sim_cosine = 0;
    c->margin = 1.0f;
    c->img_cls_std = 1.0f;
}

SV_DEF int sv_config_preset(const char *name, sv_config *c)
{
    static const size_t k7[7] = {10, 3, 3, 3, 3, 2, 2}, s7[7] = {5, 2, 2, 2, 2, 2, 2};
    size_t i;
    memset(c, 0, sizeof *c);
    /* fairseq wav2vec2 base defaults */
    c->n_conv = 7;
    for (i = 0; i < 7; i++) { c->conv_dim[i] = 512; c->conv_kernel[i] = k7[i]; c->conv_stride[i] = s7[i]; }
    c->extractor_mode = SV_EXTRACTOR_DEFAULT;
    c->conv_bias = 0;
    c->feature_grad_mult = 1.0f;    /* the EUSIPCO study; fairseq base used 0.1 */
    c->feature_pen_weight = 10.0f;
    c->D = 768; c->heads = 12; c->ffn = 3072;
    c->n_shared = 8; c->n_decoder = 4;
    c->layer_norm_first = 0;
    c->dropout = 0.1f; c->attn_dropout = 0.1f; c->act_dropout = 0.0f;
    c->dropout_input = 0.1f; c->dropout_features = 0.1f; c->layerdrop = 0.05f;
    c->pos_kernel = 128; c->pos_groups = 16;
    c->use_cls = 1;
    c->mask_prob = 0.65f; c->mask_length = 10; c->mask_min_spans = 2;
    c->q_groups = 2; c->q_vars = 320; c->q_dim = 256; c->final_dim = 256; c->n_negatives = 100;
    c->logit_temp = 0.1f; c->tau_max = 2.0f; c->tau_min = 0.5f; c->tau_decay = 0.999995;
    c->diversity_weight = 0.1f;
    c->freeze_tau = 0;
    /* MT4SSL (ddlBoJack/MT4SSL base_librispeech.yaml; HuBERT's K for MFCC targets) */
    c->ssl = SV_SSL_W2V2;
    c->mt4_k = 100;
    c->mt4_offline_weight = 1.0f; c->mt4_online_weight = 1.0f;
    c->mt4_top_k = 8;
    c->ema_decay = 0.999f; c->ema_end_decay = 0.9999f; c->ema_anneal = 30000;
    sv__cfg_vgs_common(c);
    c->vgs_width[0] = 128; c->vgs_width[1] = 128; c->vgs_width[2] = 256; c->vgs_width[3] = 512; c->vgs_width[4] = 768;
    c->img_regions = 36; c->img_dim = 2048; c->img_layers = 6;
    c->vgs_heads = 12; c->vgs_ffn = 3072;
    c->E = 768;
    if (strcmp(name, "base") == 0) {
        strcpy(c->name, "base");
    } else if (strcmp(name, "small") == 0) {
        strcpy(c->name, "small");
        for (i = 0; i < 7; i++) c->conv_dim[i] = 256;
        c->D = 256; c->heads = 4; c->ffn = 1024;
        c->n_shared = 4; c->n_decoder = 2;
        c->final_dim = 128;
        c->vgs_width[0] = 64; c->vgs_width[1] = 64; c->vgs_width[2] = 128; c->vgs_width[3] = 256; c->vgs_width[4] = 256;
        c->img_regions = 16; c->img_dim = 192; c->img_layers = 2;
        c->vgs_heads = 4; c->vgs_ffn = 1024;
        c->E = 256;
    } else if (strcmp(name, "tiny") == 0) {
        /* tests and the demo: the base CNN geometry (20 ms frames, 400-sample receptive field)
           with narrow layers, so a CPU trains it in minutes */
        strcpy(c->name, "tiny");
        for (i = 0; i < 7; i++) c->conv_dim[i] = 64;
        c->D = 64; c->heads = 4; c->ffn = 128;
        c->n_shared = 2; c->n_decoder = 1;
        c->pos_kernel = 16; c->pos_groups = 4;
        c->layerdrop = 0.0f;
        c->q_groups = 2; c->q_vars = 32; c->q_dim = 64; c->final_dim = 32; c->n_negatives = 20;
        c->vgs_width[0] = 32; c->vgs_width[1] = 32; c->vgs_width[2] = 48; c->vgs_width[3] = 64; c->vgs_width[4] = 64;
        c->img_regions = 16; c->img_dim = 192; c->img_layers = 1;
        c->vgs_heads = 4; c->vgs_ffn = 128;
        c->E = 64;
    } else {
        return sv__fail(SV_ERR_ARG, "unknown config '%s' (base, small or tiny)", name);
    }
    return SV_OK;
}

static int sv__config_check_fields(const sv_config *c); /* 10.7: each field's range */

SV_DEF int sv_config_check(const sv_config *c)
{
    size_t i;
    if (sv__config_check_fields(c) != SV_OK) return SV_ERR_ARG;
    if (c->n_conv < 1 || c->n_conv > SV_MAX_CONV) return sv__fail(SV_ERR_ARG, "config: n_conv must be 1..%d", SV_MAX_CONV);
    for (i = 0; i < c->n_conv; i++)
        if (!c->conv_dim[i] || !c->conv_kernel[i] || !c->conv_stride[i]) return sv__fail(SV_ERR_ARG, "config: conv layer %zu has a zero size", i);
    if (!c->D || !c->heads || c->D % c->heads) return sv__fail(SV_ERR_ARG, "config: D=%zu not divisible by %zu heads", c->D, c->heads);
    if (c->n_shared < 1 || c->n_shared + c->n_decoder > SV_MAX_LAYERS) return sv__fail(SV_ERR_ARG, "config: 1..%d layers", SV_MAX_LAYERS);
    if (!c->pos_groups || c->D % c->pos_groups || !c->pos_kernel) return sv__fail(SV_ERR_ARG, "config: D=%zu not divisible by %zu positional-conv groups", c->D, c->pos_groups);
    if (!c->q_groups || !c->q_vars || c->q_dim % c->q_groups) return sv__fail(SV_ERR_ARG, "config: quantizer dim %zu not divisible by %zu groups", c->q_dim, c->q_groups);
    if (!c->mask_length || c->mask_prob < 0 || c->mask_prob > 1) return sv__fail(SV_ERR_ARG, "config: bad masking settings");
    if (c->vgs_width[4] != c->D) return sv__fail(SV_ERR_ARG, "config: the last ResDAVEnet width (%zu) must equal D (%zu)", c->vgs_width[4], c->D);
    if (!c->vgs_heads || c->D % c->vgs_heads) return sv__fail(SV_ERR_ARG, "config: D not divisible by the VGS heads");
    if (c->vgs_audio_layers > 4 || c->img_layers > 12) return sv__fail(SV_ERR_ARG, "config: at most 4 audio and 12 image VGS layers");
    if (!c->img_regions || !c->img_dim || !c->E) return sv__fail(SV_ERR_ARG, "config: image regions, region dim and E must be positive");
    if (c->ssl < SV_SSL_W2V2 || c->ssl > SV_SSL_BOTH) return sv__fail(SV_ERR_ARG, "config: ssl = %d (0 w2v2, 1 mt4ssl, 2 both)", c->ssl);
    if (c->ssl != SV_SSL_W2V2) {
        if (!(c->mt4_offline_weight >= 0 && c->mt4_online_weight >= 0) || (c->mt4_offline_weight == 0 && c->mt4_online_weight == 0))
            return sv__fail(SV_ERR_ARG, "config: MT4SSL needs a head: mt4_offline_weight and mt4_online_weight are both 0 (or negative)");
        if (c->mt4_offline_weight > 0 && (c->mt4_k < 2 || c->mt4_k > 65536)) return sv__fail(SV_ERR_ARG, "config: mt4_k = %zu (2..65536)", c->mt4_k);
        if (c->mt4_online_weight > 0 && !c->mt4_top_k) return sv__fail(SV_ERR_ARG, "config: mt4_top_k = 0");
        if (!(c->ema_decay >= 0 && c->ema_decay <= 1 && c->ema_end_decay >= 0 && c->ema_end_decay <= 1))
            return sv__fail(SV_ERR_ARG, "config: EMA decays %g, %g outside [0,1]", (double)c->ema_decay, (double)c->ema_end_decay);
    }
    return SV_OK;
}

SV_DEF size_t sv_config_frames(const sv_config *c, size_t n)
{
    size_t i;
    for (i = 0; i < c->n_conv; i++) {
        if (n < c->conv_kernel[i]) return 0;
        n = (n - c->conv_kernel[i]) / c->conv_stride[i] + 1;
    }
    return n;
}

SV_DEF size_t sv_config_receptive_field(const sv_config *c)
{
    /* r_{i} = r_{i+1} stride... computed backwards from one output frame */
    size_t r = 1, i;
    for (i = c->n_conv; i-- > 0;) r = (r - 1) * c->conv_stride[i] + c->conv_kernel[i];
    return r;
}

/* ---------------------------------------------------------------- 6.2 construction and init */
typedef struct sv__builder { sv_params *p; int group; char prefix[128]; int fail; } sv__builder;

/* dst = a + b + c, truncated to cap (names are short; truncation would only shorten a name) */
static void sv__join3(char *dst, size_t cap, const char *a, const char *b, const char *c)
{
    size_t n = 0;
    const char *parts[3];
    int i;
    parts[0] = a; parts[1] = b; parts[2] = c;
    for (i = 0; i < 3; i++) {
        size_t l = strlen(parts[i]);
        if (n + l >= cap) l = cap - 1 - n;
        memcpy(dst + n, parts[i], l);
        n += l;
    }
    dst[n] = 0;
}

static sv_tensor *sv__p(sv__builder *b, const char *name, int ndim, size_t d0, size_t d1, size_t d2)
{
    char full[192];
    size_t sh[3];
    sv_tensor *t;
    sh[0] = d0; sh[1] = d1; sh[2] = d2;
    sv__join3(full, sizeof full, b->prefix, name, "");
    t = sv_param(b->p, full, b->group, ndim, sh);
    if (!t) b->fail = 1;
    return t;
}

static sv_tensor *sv__buf(sv__builder *b, const char *name, size_t d0)
{
    char full[192];
    sv_tensor *t;
    sv__join3(full, sizeof full, b->prefix, name, "");
    t = sv_buffer(b->p, full, b->group, 1, &d0);
    if (!t) b->fail = 1;
    return t;
}

static void sv__tlayer_decl(sv__builder *b, sv_tlayer *L, const char *prefix, size_t D, size_t F)
{
    char save[128];
    memcpy(save, b->prefix, sizeof save);
    sv__join3(b->prefix, sizeof b->prefix, save, prefix, ".");
    L->q_w = sv__p(b, "q.w", 2, D, D, 0);   L->q_b = sv__p(b, "q.b", 1, D, 0, 0);
    L->k_w = sv__p(b, "k.w", 2, D, D, 0);   L->k_b = sv__p(b, "k.b", 1, D, 0, 0);
    L->v_w = sv__p(b, "v.w", 2, D, D, 0);   L->v_b = sv__p(b, "v.b", 1, D, 0, 0);
    L->o_w = sv__p(b, "o.w", 2, D, D, 0);   L->o_b = sv__p(b, "o.b", 1, D, 0, 0);
    L->ln1_g = sv__p(b, "ln1.g", 1, D, 0, 0); L->ln1_b = sv__p(b, "ln1.b", 1, D, 0, 0);
    L->fc1_w = sv__p(b, "fc1.w", 2, F, D, 0); L->fc1_b = sv__p(b, "fc1.b", 1, F, 0, 0);
    L->fc2_w = sv__p(b, "fc2.w", 2, D, F, 0); L->fc2_b = sv__p(b, "fc2.b", 1, D, 0, 0);
    L->ln2_g = sv__p(b, "ln2.g", 1, D, 0, 0); L->ln2_b = sv__p(b, "ln2.b", 1, D, 0, 0);
    memcpy(b->prefix, save, sizeof save);
}

static void sv__bn_decl(sv__builder *b, sv_bn *bn, const char *prefix, size_t C)
{
    char save[128];
    memcpy(save, b->prefix, sizeof save);
    sv__join3(b->prefix, sizeof b->prefix, save, prefix, ".");
    bn->g = sv__p(b, "g", 1, C, 0, 0);
    bn->b = sv__p(b, "b", 1, C, 0, 0);
    bn->mean = sv__buf(b, "running_mean", C);
    bn->var = sv__buf(b, "running_var", C);
    memcpy(b->prefix, save, sizeof save);
}

static void sv__fill_normal(sv_rng *r, sv_tensor *t, float std) { size_t i; for (i = 0; i < t->n; i++) t->data[i] = std * sv_rng_normal(r); }
static void sv__fill_uniform(sv_rng *r, sv_tensor *t, float lo, float hi) { size_t i; for (i = 0; i < t->n; i++) t->data[i] = lo + (hi - lo) * sv_rng_uniformf(r); }
static void sv__fill(sv_tensor *t, float v) { size_t i; if (t) for (i = 0; i < t->n; i++) t->data[i] = v; }

/* PyTorch's default Linear init: kaiming_uniform(a = sqrt 5) = U(-1/sqrt(in), 1/sqrt(in)) for
   both weight and bias. fairseq keeps it for post_extract_proj, project_q and final_proj. */
static void sv__init_torch_linear(sv_rng *r, sv_tensor *w, sv_tensor *b)
{
    float bound = 1.0f / sqrtf((float)w->shape[1]);
    sv__fill_uniform(r, w, -bound, bound);
    if (b) sv__fill_uniform(r, b, -bound, bound);
}

/* BERT init (fairseq init_bert_params, HF BertLayer): N(0, 0.02) weights, zero biases,
   LayerNorm (1, 0). */
static void sv__init_tlayer(sv_rng *r, sv_tlayer *L)
{
    sv__fill_normal(r, L->q_w, 0.02f); sv__fill_normal(r, L->k_w, 0.02f);
    sv__fill_normal(r, L->v_w, 0.02f); sv__fill_normal(r, L->o_w, 0.02f);
    sv__fill_normal(r, L->fc1_w, 0.02f); sv__fill_normal(r, L->fc2_w, 0.02f);
    sv__fill(L->ln1_g, 1.0f); sv__fill(L->ln2_g, 1.0f);
    /* biases and LN betas are zero from sv_params_alloc */
}

static void sv__init_bn(sv_bn *bn) { sv__fill(bn->g, 1.0f); sv__fill(bn->var, 1.0f); }

/* MT4SSL's EMA teacher: buffers shaped like the encoder LayerNorm and the L transformer layers */
static sv_tensor *sv__tbuf(sv__builder *b, size_t layer, const char *name, size_t d0, size_t d1)
{
    char full[96];
    size_t sh[2];
    sv_tensor *t;
    sh[0] = d0; sh[1] = d1;
    if (layer == SIZE_MAX) snprintf(full, sizeof full, "teacher.%s", name);
    else snprintf(full, sizeof full, "teacher.layer.%zu.%s", layer, name);
    t = sv_buffer(b->p, full, SV_GROUP_MT4SSL, d1 ? 2 : 1, sh);
    if (!t) b->fail = 1;
    return t;
}

static void sv__teacher_decl(sv__builder *b, sv_model *m, size_t L)
{
    size_t i, D = m->cfg.D, F = m->cfg.ffn;
    m->t_enc_ln_g = sv__tbuf(b, SIZE_MAX, "enc_ln.g", D, 0);
    m->t_enc_ln_b = sv__tbuf(b, SIZE_MAX, "enc_ln.b", D, 0);
    for (i = 0; i < L; i++) {
        sv_tlayer *t = &m->teacher[i];
        t->q_w = sv__tbuf(b, i, "q.w", D, D); t->q_b = sv__tbuf(b, i, "q.b", D, 0);
        t->k_w = sv__tbuf(b, i, "k.w", D, D); t->k_b = sv__tbuf(b, i, "k.b", D, 0);
        t->v_w = sv__tbuf(b, i, "v.w", D, D); t->v_b = sv__tbuf(b, i, "v.b", D, 0);
        t->o_w = sv__tbuf(b, i, "o.w", D, D); t->o_b = sv__tbuf(b, i, "o.b", D, 0);
        t->ln1_g = sv__tbuf(b, i, "ln1.g", D, 0); t->ln1_b = sv__tbuf(b, i, "ln1.b", D, 0);
        t->fc1_w = sv__tbuf(b, i, "fc1.w", F, D); t->fc1_b = sv__tbuf(b, i, "fc1.b", F, 0);
        t->fc2_w = sv__tbuf(b, i, "fc2.w", D, F); t->fc2_b = sv__tbuf(b, i, "fc2.b", D, 0);
        t->ln2_g = sv__tbuf(b, i, "ln2.g", D, 0); t->ln2_b = sv__tbuf(b, i, "ln2.b", D, 0);
    }
}

SV_DEF sv_model *sv_model_new(const sv_config *cfg, uint64_t seed)
{
    sv_model *m;
    sv__builder b;
    sv_rng r;
    size_t i, cin, L, D, C;
    char nm[64];
    if (sv_config_check(cfg) != SV_OK) return NULL;
    m = (sv_model *)sv__calloc(1, sizeof(sv_model), "model");
    if (!m) return NULL;
    m->cfg = *cfg;
    D = cfg->D;
    C = cfg->conv_dim[cfg->n_conv - 1];
    L = cfg->n_shared + cfg->n_decoder;
    memset(&b, 0, sizeof b);
    b.p = &m->params;

    /* shared audio encoder (names follow fairseq's modules, shortened) */
    b.group = SV_GROUP_SHARED;
    cin = 1;
    for (i = 0; i < cfg->n_conv; i++) {
        snprintf(nm, sizeof nm, "cnn.%zu.w", i);
        m->conv_w[i] = sv__p(&b, nm, 3, cfg->conv_dim[i], cfg->conv_kernel[i], cin);
        if (cfg->conv_bias) { snprintf(nm, sizeof nm, "cnn.%zu.b", i); m->conv_b[i] = sv__p(&b, nm, 1, cfg->conv_dim[i], 0, 0); }
        if (cfg->extractor_mode == SV_EXTRACTOR_LAYER_NORM || i == 0) {
            snprintf(nm, sizeof nm, "cnn.%zu.norm.g", i); m->conv_norm_g[i] = sv__p(&b, nm, 1, cfg->conv_dim[i], 0, 0);
            snprintf(nm, sizeof nm, "cnn.%zu.norm.b", i); m->conv_norm_b[i] = sv__p(&b, nm, 1, cfg->conv_dim[i], 0, 0);
        }
        cin = cfg->conv_dim[i];
    }
    m->feat_ln_g = sv__p(&b, "feat_ln.g", 1, C, 0, 0);
    m->feat_ln_b = sv__p(&b, "feat_ln.b", 1, C, 0, 0);
    m->proj_w = sv__p(&b, "proj.w", 2, D, C, 0);
    m->proj_b = sv__p(&b, "proj.b", 1, D, 0, 0);
    if (cfg->use_cls) m->cls = sv__p(&b, "cls", 1, D, 0, 0);
    m->pos_v = sv__p(&b, "pos_conv.v", 3, D, cfg->pos_kernel, D / cfg->pos_groups);
    m->pos_g = sv__p(&b, "pos_conv.g", 1, cfg->pos_kernel, 0, 0);
    m->pos_b = sv__p(&b, "pos_conv.b", 1, D, 0, 0);
    m->enc_ln_g = sv__p(&b, "enc_ln.g", 1, D, 0, 0);
    m->enc_ln_b = sv__p(&b, "enc_ln.b", 1, D, 0, 0);
    for (i = 0; i < L; i++) {
        b.group = i < cfg->n_shared ? SV_GROUP_SHARED : SV_GROUP_W2V2;
        snprintf(nm, sizeof nm, "layer.%zu", i);
        sv__tlayer_decl(&b, &m->layer[i], nm, D, cfg->ffn);
    }
    /* wav2vec 2.0 head */
    b.group = SV_GROUP_W2V2;
    m->mask_emb = sv__p(&b, "mask_emb", 1, D, 0, 0);
    b.group = SV_GROUP_W2V2_HEAD;
    m->q_w = sv__p(&b, "quantizer.w", 2, cfg->q_groups * cfg->q_vars, C, 0);
    m->q_b = sv__p(&b, "quantizer.b", 1, cfg->q_groups * cfg->q_vars, 0, 0);
    m->codebook = sv__p(&b, "quantizer.codebook", 2, cfg->q_groups * cfg->q_vars, cfg->q_dim / cfg->q_groups, 0);
    m->projq_w = sv__p(&b, "project_q.w", 2, cfg->final_dim, cfg->q_dim, 0);
    m->projq_b = sv__p(&b, "project_q.b", 1, cfg->final_dim, 0, 0);
    m->final_w = sv__p(&b, "final_proj.w", 2, cfg->final_dim, D, 0);
    m->final_b = sv__p(&b, "final_proj.b", 1, cfg->final_dim, 0, 0);
    /* VGS audio branch: ResDAVEnet (Harwath et al. 2020) as in FaST-VGS+ */
    b.group = SV_GROUP_VGS_AUDIO;
    {
        const size_t *w = cfg->vgs_width;
        size_t K = cfg->vgs_conv_width, st, blk, inpl = w[0];
        m->rd_w = sv__p(&b, "resdave.linear.w", 2, w[0], D, 0);
        m->rd_b = sv__p(&b, "resdave.linear.b", 1, w[0], 0, 0);
        sv__bn_decl(&b, &m->rd_bn, "resdave.bn", w[0]);
        for (st = 0; st < 4; st++)
            for (blk = 0; blk < 2; blk++) {
                sv_resblock *rb = &m->rd_block[st * 2 + blk];
                size_t planes = w[st + 1];
                rb->stride = blk == 0 ? 2 : 1;
                snprintf(nm, sizeof nm, "resdave.%zu.%zu.conv1", st, blk); rb->conv1 = sv__p(&b, nm, 3, planes, K, inpl);
                snprintf(nm, sizeof nm, "resdave.%zu.%zu.bn1", st, blk); sv__bn_decl(&b, &rb->bn1, nm, planes);
                snprintf(nm, sizeof nm, "resdave.%zu.%zu.conv2", st, blk); rb->conv2 = sv__p(&b, nm, 3, planes, K, planes);
                snprintf(nm, sizeof nm, "resdave.%zu.%zu.bn2", st, blk); sv__bn_decl(&b, &rb->bn2, nm, planes);
                if (rb->stride != 1 || inpl != planes) {
                    snprintf(nm, sizeof nm, "resdave.%zu.%zu.down", st, blk); rb->down = sv__p(&b, nm, 3, planes, 1, inpl);
                    snprintf(nm, sizeof nm, "resdave.%zu.%zu.bn_down", st, blk); sv__bn_decl(&b, &rb->bn_down, nm, planes);
                }
                inpl = planes;
            }
        m->acls1_w = sv__p(&b, "audio_cls_mlp.1.w", 2, 2 * D, D, 0);
        m->acls1_b = sv__p(&b, "audio_cls_mlp.1.b", 1, 2 * D, 0, 0);
        m->acls2_w = sv__p(&b, "audio_cls_mlp.2.w", 2, D, 2 * D, 0);
        m->acls2_b = sv__p(&b, "audio_cls_mlp.2.b", 1, D, 0, 0);
        for (i = 0; i < cfg->vgs_audio_layers; i++) {
            snprintf(nm, sizeof nm, "audio_layer.%zu", i);
            sv__tlayer_decl(&b, &m->audio_layer[i], nm, D, cfg->vgs_ffn);
        }
        m->aemb_w = sv__p(&b, "audio_emb.w", 2, cfg->E, D, 0);
        m->aemb_b = sv__p(&b, "audio_emb.b", 1, cfg->E, 0, 0);
    }
    /* VGS image branch (LXMERT-style region encoder) */
    b.group = SV_GROUP_VGS_IMAGE;
    m->vf_w = sv__p(&b, "img.feat.w", 2, D, cfg->img_dim, 0);
    m->vf_b = sv__p(&b, "img.feat.b", 1, D, 0, 0);
    m->vf_ln_g = sv__p(&b, "img.feat_ln.g", 1, D, 0, 0);
    m->vf_ln_b = sv__p(&b, "img.feat_ln.b", 1, D, 0, 0);
    m->vb_w = sv__p(&b, "img.box.w", 2, D, 4, 0);
    m->vb_b = sv__p(&b, "img.box.b", 1, D, 0, 0);
    m->vb_ln_g = sv__p(&b, "img.box_ln.g", 1, D, 0, 0);
    m->vb_ln_b = sv__p(&b, "img.box_ln.b", 1, D, 0, 0);
    m->img_cls = sv__p(&b, "img.cls", 1, D, 0, 0);
    for (i = 0; i < cfg->img_layers; i++) {
        snprintf(nm, sizeof nm, "img_layer.%zu", i);
        sv__tlayer_decl(&b, &m->img_layer[i], nm, D, cfg->vgs_ffn);
    }
    m->iemb1_w = sv__p(&b, "img_emb.1.w", 2, 2 * D, D, 0);
    m->iemb1_b = sv__p(&b, "img_emb.1.b", 1, 2 * D, 0, 0);
    m->iemb2_w = sv__p(&b, "img_emb.2.w", 2, cfg->E, 2 * D, 0);
    m->iemb2_b = sv__p(&b, "img_emb.2.b", 1, cfg->E, 0, 0);
    /* MT4SSL heads and teacher (declared last: a wav2vec 2.0 model's layout and init are unchanged) */
    if (cfg->ssl != SV_SSL_W2V2) {
        b.group = SV_GROUP_MT4SSL;
        if (cfg->mt4_offline_weight > 0) {
            m->mt4_off_w = sv__p(&b, "mt4ssl.offline.w", 2, cfg->mt4_k, D, 0);
            m->mt4_off_b = sv__p(&b, "mt4ssl.offline.b", 1, cfg->mt4_k, 0, 0);
        }
        if (cfg->mt4_online_weight > 0) {
            m->mt4_on_w = sv__p(&b, "mt4ssl.online.w", 2, D, D, 0);
            m->mt4_on_b = sv__p(&b, "mt4ssl.online.b", 1, D, 0, 0);
            sv__teacher_decl(&b, m, L);
        }
    }

    if (b.fail || sv_params_alloc(&m->params) != SV_OK) { sv_model_free(m); return NULL; }

    /* ---- initialisation, as the reference implementations do it ---- */
    sv_rng_seed(&r, seed);
    cin = 1;
    for (i = 0; i < cfg->n_conv; i++) {
        /* fairseq ConvFeatureExtractionModel: kaiming_normal_ (fan_in, gain sqrt 2) */
        sv__fill_normal(&r, m->conv_w[i], sqrtf(2.0f / (float)(cin * cfg->conv_kernel[i])));
        sv__fill(m->conv_norm_g[i], 1.0f);
        cin = cfg->conv_dim[i];
    }
    sv__fill(m->feat_ln_g, 1.0f);
    sv__init_torch_linear(&r, m->proj_w, m->proj_b);
    if (m->cls) sv__fill_uniform(&r, m->cls, 0.0f, 1.0f);
    {
        /* fairseq: normal(0, sqrt(4 / (kernel * D))), weight_norm(dim=2): g starts at ||v_k|| */
        size_t k, o, j, Cg = D / cfg->pos_groups, K = cfg->pos_kernel;
        sv__fill_normal(&r, m->pos_v, sqrtf(4.0f / (float)(K * D)));
        for (k = 0; k < K; k++) {
            double s = 0;
            for (o = 0; o < D; o++)
                for (j = 0; j < Cg; j++) { double v = m->pos_v->data[(o * K + k) * Cg + j]; s += v * v; }
            m->pos_g->data[k] = (float)sqrt(s);
        }
    }
    sv__fill(m->enc_ln_g, 1.0f);
    for (i = 0; i < L; i++) sv__init_tlayer(&r, &m->layer[i]);
    sv__fill_uniform(&r, m->mask_emb, 0.0f, 1.0f);
    sv__fill_normal(&r, m->q_w, 1.0f);                /* fairseq GumbelVectorQuantizer: N(0,1), bias 0 */
    sv__fill_uniform(&r, m->codebook, 0.0f, 1.0f);    /* vars.uniform_() */
    sv__init_torch_linear(&r, m->projq_w, m->projq_b);
    sv__init_torch_linear(&r, m->final_w, m->final_b);
    /* VGS: Linear N(0, 0.02) (FaST-VGS init_weights); convs N(0, sqrt(2 / (K * Cout)));
       BatchNorm (1, 0); image CLS ~ N(0,1) as torch.randn */
    sv__fill_normal(&r, m->rd_w, 0.02f);
    sv__init_bn(&m->rd_bn);
    for (i = 0; i < 8; i++) {
        sv_resblock *rb = &m->rd_block[i];
        sv__fill_normal(&r, rb->conv1, sqrtf(2.0f / (float)(rb->conv1->shape[1] * rb->conv1->shape[0])));
        sv__fill_normal(&r, rb->conv2, sqrtf(2.0f / (float)(rb->conv2->shape[1] * rb->conv2->shape[0])));
        sv__init_bn(&rb->bn1);
        sv__init_bn(&rb->bn2);
        if (rb->down) {
            sv__fill_normal(&r, rb->down, sqrtf(2.0f / (float)rb->down->shape[0]));
            sv__init_bn(&rb->bn_down);
        }
    }
    sv__fill_normal(&r, m->acls1_w, 0.02f);
    sv__fill_normal(&r, m->acls2_w, 0.02f);
    for (i = 0; i < cfg->vgs_audio_layers; i++) sv__init_tlayer(&r, &m->audio_layer[i]);
    sv__fill_normal(&r, m->aemb_w, 0.02f);
    sv__fill_normal(&r, m->vf_w, 0.02f);
    sv__fill(m->vf_ln_g, 1.0f);
    sv__fill_normal(&r, m->vb_w, 0.02f);
    sv__fill(m->vb_ln_g, 1.0f);
    sv__fill_normal(&r, m->img_cls, cfg->img_cls_std);
    for (i = 0; i < cfg->img_layers; i++) sv__init_tlayer(&r, &m->img_layer[i]);
    sv__fill_normal(&r, m->iemb1_w, 0.02f);
    sv__fill_normal(&r, m->iemb2_w, 0.02f);
    /* MT4SSL: PyTorch's Linear init for both heads (nn.Linear in multi2vec_audio.py), the
       teacher a copy of the freshly initialised transformer */
    if (m->mt4_off_w) sv__init_torch_linear(&r, m->mt4_off_w, m->mt4_off_b);
    if (m->mt4_on_w) sv__init_torch_linear(&r, m->mt4_on_w, m->mt4_on_b);
    sv_mt4ssl_teacher_reset(m);
    return m;
}

SV_DEF void sv_model_free(sv_model *m)
{
    if (!m) return;
    sv_params_free(&m->params);
    SV_FREE(m);
}

SV_DEF size_t sv_model_numel(const sv_model *m, uint32_t group_mask) { return sv_params_numel(&m->params, group_mask); }

/* ---------------------------------------------------------------- 6.3 transformer layer */
/* Post-LN (fairseq base, BERT): x = LN(x + Drop(MHA(x))); x = LN(x + Drop(FFN(x))).
   Pre-LN (large):               x = x + Drop(MHA(LN(x)));  x = x + Drop(FFN(LN(x))).
   FFN(x) = fc2(Drop_act(GELU(fc1(x)))). x [B,T,D] -> [B,T,D]; keys at t >= key_len[b] are
   masked out of attention (key_len NULL: none). *ffn (ffn may be NULL) receives fc2's output
   before dropout and the residual add. The VGS branches use it too. */
static sv_tensor *sv__transformer_layer(sv_ctx *c, const sv_tlayer *L, sv_tensor *x, const size_t *key_len, size_t heads,
                                        float drop, float attn_drop, float act_drop, int pre_ln, float eps, sv_tensor **ffn)
{
    sv_tensor *h, *q, *k, *v, *a;
    h = pre_ln ? sv_layer_norm(c, x, L->ln1_g, L->ln1_b, eps) : x;
    q = sv_linear(c, h, L->q_w, L->q_b);
    k = sv_linear(c, h, L->k_w, L->k_b);
    v = sv_linear(c, h, L->v_w, L->v_b);
    a = sv_attention(c, q, k, v, heads, key_len, attn_drop);
    a = sv_dropout(c, sv_linear(c, a, L->o_w, L->o_b), drop);
    x = sv_add(c, x, a);
    if (!pre_ln) x = sv_layer_norm(c, x, L->ln1_g, L->ln1_b, eps);
    h = pre_ln ? sv_layer_norm(c, x, L->ln2_g, L->ln2_b, eps) : x;
    h = sv_dropout(c, sv_gelu_op(c, sv_linear(c, h, L->fc1_w, L->fc1_b)), act_drop);
    h = sv_linear(c, h, L->fc2_w, L->fc2_b);
    if (ffn) *ffn = h;   /* before the residual add and the LayerNorm: fairseq's layer_result */
    h = sv_dropout(c, h, drop);
    x = sv_add(c, x, h);
    if (!pre_ln) x = sv_layer_norm(c, x, L->ln2_g, L->ln2_b, eps);
    return x;
}

/* ---------------------------------------------------------------- 6.4 feature encoder */
SV_DEF void sv_normalize_wave(float *x, size_t n)
{
    double m = 0, v = 0;
    size_t i;
    if (!n) return;
    for (i = 0; i < n; i++) m += x[i];
    m /= (double)n;
    for (i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    v /= (double)n;
    /* F.layer_norm(wav, wav.shape) in fairseq / FaST-VGS: eps 1e-5 */
    for (i = 0; i < n; i++) x[i] = (float)((x[i] - m) / sqrt(v + 1e-5));
}

/* waveform [B,S] -> features [B,T,C] (fairseq ConvFeatureExtractionModel); frame_len[b] receives
   the valid frames of row b. Each block: conv -> norm -> GELU ("default": group norm per channel
   on layer 0 only; "layer_norm": LayerNorm over channels in every block). */
static sv_tensor *sv__w2v2_feature_encoder(sv_model *m, sv_ctx *c, const sv_batch *bt, size_t *frame_len)
{
    const sv_config *cfg = &m->cfg;
    sv_tensor *x;
    size_t b, i, sh[3];
    size_t *len = (size_t *)sv_ctx_alloc(c, bt->B * sizeof(size_t));
    if (!len) return NULL;
    sh[0] = bt->B; sh[1] = bt->S; sh[2] = 1;
    x = sv_tensor_from(c, bt->wave, 3, sh);         /* [B,S,1] channels last */
    if (!x) return NULL;
    for (b = 0; b < bt->B; b++) len[b] = bt->wave_len[b];
    for (i = 0; i < cfg->n_conv; i++) {
        size_t K = cfg->conv_kernel[i], s = cfg->conv_stride[i];
        /* "default": blocks 1..n-2 leave GELU to the next conv, which recomputes it in its
           backward instead of storing it (sv_conv1d_gelu_in); x is then the previous conv's
           output. The last block's GELU output feeds the layer norm and stays an op. Block 0's
           group norm + GELU output is dropped by conv 1, which recomputes it likewise. */
        int recompute = cfg->extractor_mode != SV_EXTRACTOR_LAYER_NORM && !c->cnn_store_gelu;
        if (recompute && i >= 2) x = sv_conv1d_gelu_in(c, x, m->conv_w[i], m->conv_b[i], s, 0);
        else if (recompute && i == 1) x = sv__conv1d_gn_in(c, x, m->conv_w[i], m->conv_b[i], s);
        else x = sv_conv1d(c, x, m->conv_w[i], m->conv_b[i], s, 0, 1);   /* [B,T_i,C] */
        for (b = 0; b < bt->B; b++) len[b] = len[b] >= K ? (len[b] - K) / s + 1 : 0;
        if (cfg->extractor_mode == SV_EXTRACTOR_LAYER_NORM)
            x = sv_gelu_op(c, sv_layer_norm(c, x, m->conv_norm_g[i], m->conv_norm_b[i], 1e-5f));
        else if (i == 0)
            x = sv_group_norm_gelu(c, x, len, m->conv_norm_g[0], m->conv_norm_b[0], 1e-5f);
        else if (!recompute || i + 1 == cfg->n_conv)
            x = sv_gelu_op(c, x);
    }
    for (b = 0; b < bt->B; b++) frame_len[b] = len[b];
    return x;
}

/* ---------------------------------------------------------------- 6.5 projection and masking */
/* features [B,T,C] -> LayerNorm -> Linear C->D -> dropout [B,T,D] (fairseq: layer_norm,
   post_extract_proj, dropout_input). The normalised features before the projection, after
   their own dropout, are the quantizer's input: *unmasked [B,T,C]; the projection before its
   dropout is MT4SSL's teacher input: *projected [B,T,D]. */
static sv_tensor *sv__w2v2_project(sv_model *m, sv_ctx *c, sv_tensor *features, sv_tensor **unmasked, sv_tensor **projected)
{
    const sv_config *cfg = &m->cfg;
    sv_tensor *x = sv_layer_norm(c, features, m->feat_ln_g, m->feat_ln_b, 1e-5f);
    *unmasked = sv_dropout(c, x, cfg->dropout_features);          /* [B,T,C] */
    x = sv_linear(c, x, m->proj_w, m->proj_b);                    /* [B,T,D] */
    *projected = x;
    return sv_dropout(c, x, cfg->dropout_input);
}

/* One row of fairseq's compute_mask_indices (static lengths): num_spans = max(min_spans,
   floor(prob * sz / span + u)), that many distinct starts in [0, sz - span) (partial
   Fisher-Yates over pool[]), each masking `span` frames (spans may overlap). Returns the masked
   count, or SIZE_MAX (mask untouched) when the row is too short; *nspan gets the span count. */
static size_t sv__mask_row_spans(sv_rng *rng, size_t sz, float prob, size_t span, size_t min_spans, uint8_t *row,
                                 size_t *pool, size_t *nspan)
{
    size_t i, t, min_len = span, range, cnt = 0, ns;
    ns = (size_t)((double)prob * (double)sz / (double)span + sv_rng_uniform(rng));
    if (ns < min_spans) ns = min_spans;
    *nspan = ns;
    /* fairseq: if sz - min_len <= num_mask, min_len = sz - num_mask - 1 (in Python integers:
       written without the subtraction, which wraps for utterances shorter than a span) */
    if (sz <= ns + 1) return SIZE_MAX;
    if (sz <= min_len + ns) min_len = sz - ns - 1;
    range = sz - min_len;
    for (i = 0; i < range; i++) pool[i] = i;
    for (i = 0; i < ns; i++) {
        size_t j = i + sv_rng_below(rng, range - i), tmp = pool[i];
        pool[i] = pool[j];
        pool[j] = tmp;
    }
    for (i = 0; i < ns; i++)
        for (t = pool[i]; t < pool[i] + span && t < sz; t++) row[t] = 1;
    for (i = 0; i < sz; i++) cnt += row[i];
    return cnt;
}

/* require_same_masks: unmask random frames of a row [T] with `have` masked down to `keep`. */
static void sv__mask_row_trim(sv_rng *rng, size_t T, size_t have, size_t keep, uint8_t *row, size_t *pool)
{
    size_t n = 0, i;
    for (i = 0; i < T; i++) if (row[i]) pool[n++] = i;
    for (i = 0; i < have - keep; i++) {
        size_t j = i + sv_rng_below(rng, n - i), t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
        row[pool[i]] = 0;
    }
}

SV_DEF size_t sv_w2v2_compute_mask(sv_rng *rng, size_t B, size_t T, const size_t *len, float prob,
                                   size_t span, size_t min_spans, uint8_t *mask)
{
    size_t b, min_count = SIZE_MAX, ns;
    size_t *pool = (size_t *)SV_MALLOC((T + 1) * sizeof(size_t));
    size_t *counts = (size_t *)SV_MALLOC((B + 1) * sizeof(size_t));
    if (!pool || !counts) {
        SV_FREE(pool); SV_FREE(counts);
        sv__fail(SV_ERR_NOMEM, "out of memory computing the mask");
        return 0;
    }
    memset(mask, 0, B * T);
    for (b = 0; b < B; b++) {
        size_t sz = len ? (len[b] < T ? len[b] : T) : T;
        counts[b] = sv__mask_row_spans(rng, sz, prob, span, min_spans, mask + b * T, pool, &ns);
        if (counts[b] == SIZE_MAX) {
            SV_FREE(pool); SV_FREE(counts);
            sv__fail(SV_ERR_ARG, "utterance %zu has %zu frames: too short for %zu mask spans", b, sz, ns);
            return 0;
        }
        if (counts[b] < min_count) min_count = counts[b];
    }
    for (b = 0; b < B; b++) sv__mask_row_trim(rng, T, counts[b], min_count, mask + b * T, pool);
    SV_FREE(pool); SV_FREE(counts);
    return min_count;
}

/* The masks of a forward pass, sample-keyed: row b draws its spans and then its trimming from the
   stream sv_rng_key(site key, global sample index), and the common count (require_same_masks) is
   the smallest of the global batch (gathered in shard mode), so a row's mask does not depend on
   which other rows share the process. Returns the count, 0 on failure. */
static size_t sv__w2v2_mask_keyed(sv_ctx *c, const sv_config *cfg, size_t B, size_t T, const size_t *len, uint8_t *mask)
{
    uint64_t site = sv__site_key(c, SV_DRAW_MASK);
    size_t total = c->shard ? c->shard->s.total : B, g0 = sv__sample0(c), b, keep = SIZE_MAX;
    sv_rng *rng = (sv_rng *)sv_ctx_alloc(c, B * sizeof(sv_rng));
    size_t *pool = (size_t *)sv_ctx_alloc(c, (T + 1) * sizeof(size_t));
    double *cnt = (double *)sv_ctx_alloc(c, B * 3 * sizeof(double)), *all = (double *)sv_ctx_alloc(c, total * 3 * sizeof(double));
    if (!rng || !pool || !cnt || !all) return 0;
    if (c->shard && B != c->shard->s.count) { sv__fail(SV_ERR_ARG, "shard mode: %zu rows for %zu samples", B, c->shard->s.count); return 0; }
    memset(mask, 0, B * T);
    for (b = 0; b < B; b++) {
        size_t sz = len ? (len[b] < T ? len[b] : T) : T, ns, k;
        sv_rng_seed(&rng[b], sv_rng_key(site, g0 + b));
        k = sv__mask_row_spans(&rng[b], sz, cfg->mask_prob, cfg->mask_length, cfg->mask_min_spans, mask + b * T, pool, &ns);
        cnt[3 * b] = k == SIZE_MAX ? -1.0 : (double)k;
        cnt[3 * b + 1] = (double)sz;
        cnt[3 * b + 2] = (double)ns;
    }
    if (sv__shard_gather(c, c->shard, cnt, c->shard ? 3 : 3 * B, all) != SV_OK) return 0;
    for (b = 0; b < total; b++) {
        if (all[3 * b] < 0) {
            sv__fail(SV_ERR_ARG, "utterance %zu has %zu frames: too short for %zu mask spans", b, (size_t)all[3 * b + 1],
                     (size_t)all[3 * b + 2]);
            return 0;
        }
        if ((size_t)all[3 * b] < keep) keep = (size_t)all[3 * b];
    }
    for (b = 0; b < B; b++) sv__mask_row_trim(&rng[b], T, (size_t)cnt[3 * b], keep, mask + b * T, pool);
    return keep;
}

/* x [B,T,D]: the frames of the keyed masks replaced by the learned vector mask_emb [D].
   *mask [B,T] and *n_masked (per row) describe them; NULL on failure. */
static sv_tensor *sv__w2v2_mask(sv_model *m, sv_ctx *c, sv_tensor *x, size_t B, size_t T, const size_t *frame_len,
                                uint8_t **mask, size_t *n_masked)
{
    *mask = (uint8_t *)sv_ctx_alloc(c, B * T);
    if (!*mask) return NULL;
    *n_masked = sv__w2v2_mask_keyed(c, &m->cfg, B, T, frame_len, *mask);
    if (!*n_masked) return NULL;
    return sv_mask_rows(c, x, *mask, m->mask_emb);                /* [B,T,D] */
}

/* ---------------------------------------------------------------- 6.6 CLS token and positional convolution */
/* FaST-VGS+: a learned [D] vector before the first frame, after masking. x [B,T,D] -> [B,T+1,D]
   (unchanged when the config has no CLS). */
static sv_tensor *sv__w2v2_prepend_cls(sv_model *m, sv_ctx *c, sv_tensor *x, size_t B)
{
    sv_tensor *z;
    size_t sh[3];
    if (!m->cls) return x;
    sh[0] = B; sh[1] = 1; sh[2] = m->cfg.D;
    z = sv_tensor_zeros(c, 3, sh);
    return sv_concat(c, sv_add(c, z, m->cls), x, 1);              /* [B,T+1,D] */
}

/* Relative positions by convolution (Mohamed et al. 2019; fairseq TransformerEncoder.pos_conv):
   x + GELU(conv(x)), conv D->D of kernel pos_kernel in pos_groups groups with weight
   normalisation (w = g v / ||v||, one norm per tap), padding pos_kernel / 2 and the extra frame
   of an even kernel dropped. x [B,Tc,D], key_len[b] valid frames of row b. */
static sv_tensor *sv__w2v2_positional_conv(sv_model *m, sv_ctx *c, sv_tensor *x, const size_t *key_len, size_t B,
                                           size_t Tc)
{
    const sv_config *cfg = &m->cfg;
    sv_tensor *pos;
    size_t b, t, D = cfg->D;
    int any_pad = 0;
    /* fairseq zeroes padded frames before the convolution, so they read as its own zero padding */
    for (b = 0; b < B; b++) if (key_len[b] < Tc) any_pad = 1;
    if (any_pad) {
        uint8_t *pm = (uint8_t *)sv_ctx_alloc(c, B * Tc);
        sv_tensor *zero = sv_tensor_zeros(c, 1, &D);
        if (!pm || !zero) return NULL;
        for (b = 0; b < B; b++) for (t = 0; t < Tc; t++) pm[b * Tc + t] = t >= key_len[b];
        x = sv_mask_rows(c, x, pm, zero);
    }
    pos = sv_conv1d(c, x, sv_weight_norm_k(c, m->pos_v, m->pos_g), m->pos_b, 1, cfg->pos_kernel / 2, cfg->pos_groups);
    if (pos && pos->shape[1] > Tc) pos = sv_slice(c, pos, 1, 0, Tc); /* even kernel: drop the extra frame */
    return sv_add(c, x, sv_gelu_op(c, pos));                      /* [B,Tc,D] */
}

/* ---------------------------------------------------------------- 6.7 transformer */
/* The layer stack of fairseq's TransformerEncoder after the positional convolution: (post-LN:
   LayerNorm first) dropout, then layers[0..n_layers) with LayerDrop (Fan et al. 2019: in
   training each layer is skipped with probability layerdrop), and for pre-LN the final
   LayerNorm (ln_g/ln_b serve as either) once the whole stack has run. hidden[0] is the input of
   layer 0, hidden[l] the output of layer l - 1, each [B,Tc,D]. ffn (may be NULL) gets each layer's
   FFN output before the residual add (ffn[l] stays NULL for a dropped layer): MT4SSL's teacher
   runs this stack with its EMA weights for them. */
static int sv__w2v2_transformer(sv_ctx *c, const sv_config *cfg, const sv_tlayer *layers, sv_tensor *ln_g, sv_tensor *ln_b,
                                sv_tensor *x, const size_t *key_len, size_t n_layers, sv_tensor **hidden, sv_tensor **ffn)
{
    size_t l;
    int training = sv_ctx_training(c);
    if (!cfg->layer_norm_first) x = sv_layer_norm(c, x, ln_g, ln_b, 1e-5f);
    x = sv_dropout(c, x, cfg->dropout);
    hidden[0] = x;
    for (l = 0; l < n_layers; l++) {
        /* one draw for the whole batch, keyed by the site (not by a sample) */
        if (training && cfg->layerdrop > 0 && sv__hash_uniformf(sv__site_key(c, SV_DRAW_LAYERDROP), 0) < cfg->layerdrop) {
            hidden[l + 1] = x;
            continue;
        }
        x = sv__transformer_layer(c, &layers[l], x, key_len, cfg->heads, cfg->dropout, cfg->attn_dropout,
                                  cfg->act_dropout, cfg->layer_norm_first, 1e-5f, ffn ? &ffn[l] : NULL);
        hidden[l + 1] = x;
    }
    if (cfg->layer_norm_first && n_layers == cfg->n_shared + cfg->n_decoder)
        hidden[n_layers] = sv_layer_norm(c, x, ln_g, ln_b, 1e-5f);
    if (!hidden[n_layers]) return sv_last_status() ? sv_last_status() : SV_ERR_NOMEM;
    return SV_OK;
}

/* ---------------------------------------------------------------- 6.8 the forward pass */
SV_DEF int sv_w2v2_forward(sv_model *m, sv_ctx *c, const sv_batch *bt, int do_mask, size_t n_layers, sv_w2v2_out *e)
{
    const sv_config *cfg = &m->cfg;
    sv_tensor *x;
    size_t B = bt->B, b;
    memset(e, 0, sizeof *e);
    e->B = B;
    e->frame_len = (size_t *)sv_ctx_alloc(c, B * sizeof(size_t));
    e->key_len = (size_t *)sv_ctx_alloc(c, B * sizeof(size_t));
    if (!e->frame_len || !e->key_len) return SV_ERR_NOMEM;
    x = sv__w2v2_feature_encoder(m, c, bt, e->frame_len);          /* [B,T,C] */
    if (!x) return sv_last_status() ? sv_last_status() : SV_ERR_ARG;
    e->T = x->shape[1];
    for (b = 0; b < B; b++)
        if (e->frame_len[b] == 0)
            return sv__fail(SV_ERR_ARG, "utterance %zu is shorter than the receptive field (%zu samples < %zu)",
                            b, bt->wave_len[b], sv_config_receptive_field(cfg));
    if (cfg->feature_grad_mult != 1.0f) x = sv_grad_scale(c, x, cfg->feature_grad_mult);
    e->features = x;
    x = sv__w2v2_project(m, c, x, &e->unmasked, &e->projected);    /* [B,T,D] */
    if (do_mask) {
        x = sv__w2v2_mask(m, c, x, B, e->T, e->frame_len, &e->mask, &e->n_masked);
        if (!x) return sv_last_status() ? sv_last_status() : SV_ERR_NOMEM;
    }
    x = sv__w2v2_prepend_cls(m, c, x, B);                          /* [B,Tc,D] */
    e->Tc = e->T + (m->cls ? 1 : 0);
    for (b = 0; b < B; b++) e->key_len[b] = e->frame_len[b] + (m->cls ? 1 : 0);
    x = sv__w2v2_positional_conv(m, c, x, e->key_len, B, e->Tc);
    e->n_layers = n_layers;
    return sv__w2v2_transformer(c, cfg, m->layer, m->enc_ln_g, m->enc_ln_b, x, e->key_len, n_layers, e->hidden, NULL);
}

/* ---------------------------------------------------------------- 6.9 Gumbel product quantizer */
SV_DEF float sv_w2v2_temperature(const sv_config *cfg, size_t step)
{
    double t;
    if (cfg->freeze_tau) return cfg->tau_max;
    t = cfg->tau_max * pow(cfg->tau_decay, (double)step);
    return (float)(t > cfg->tau_min ? t : cfg->tau_min);
}

SV_DEF sv_tensor *sv_w2v2_quantize(sv_model *m, sv_ctx *c, sv_tensor *y, float tau, const float **codes)
{
    const sv_config *cfg = &m->cfg;
    size_t G = cfg->q_groups, V = cfg->q_vars, N, i, j, g, r, n_noise, sh[2];
    int training = sv_ctx_training(c);
    float *noise, *hard;
    sv_tensor *logits, *q, *hardt;
    logits = sv_linear(c, y, m->q_w, m->q_b);                     /* [N,G*V] */
    if (!logits) return NULL;
    N = logits->shape[0];
    n_noise = N * G * V;
    hard = (float *)sv_ctx_alloc(c, n_noise * sizeof(float));
    noise = (float *)sv_ctx_alloc(c, n_noise * sizeof(float));
    if (!hard || !noise) return NULL;
    /* the hard code choice: argmax of (logits + Gumbel noise) in training, of the logits in eval */
    if (training) {
        /* the uniforms of each sample's rows from its own keyed stream (shard mode: y's rows are
           sample-major; ordinary mode: one stream for all rows), in the generator's order; the
           two logs per entry (most of the time) run in parallel. u is a double: the float
           noise[] could not hold it. */
        double *u = (double *)sv_ctx_alloc(c, n_noise * sizeof(double));
        uint64_t site = sv__site_key(c, SV_DRAW_GUMBEL);
        size_t S = c->shard ? c->shard->s.count : 1, per = n_noise / S, smp;
        ptrdiff_t ii;
        if (!u) return NULL;
        if (n_noise % S) { sv__fail(SV_ERR_ARG, "shard mode: %zu quantizer rows for %zu samples", N, S); return NULL; }
        for (smp = 0; smp < S; smp++) {
            sv_rng r;
            sv_rng_seed(&r, sv_rng_key(site, sv__sample0(c) + smp));
            for (i = smp * per; i < (smp + 1) * per; i++) u[i] = sv_rng_uniform(&r);
        }
SV__OMP(parallel for if (n_noise > SV__PAR_N / 8))
        for (ii = 0; ii < (ptrdiff_t)n_noise; ii++)
            noise[ii] = (float)-log(-log(u[ii] + 1e-20) + 1e-20);   /* Gumbel(0,1) */
        sv__arena_release(c, u, n_noise * sizeof(double));
    } else {
        memset(noise, 0, n_noise * sizeof(float));
    }
    memset(hard, 0, n_noise * sizeof(float));
    for (r = 0; r < N; r++)
        for (g = 0; g < G; g++) {
            const float *lg = logits->data + r * G * V + g * V, *nz = noise + r * G * V + g * V;
            size_t best = 0;
            for (j = 1; j < V; j++) if (lg[j] + nz[j] > lg[best] + nz[best]) best = j;
            hard[r * G * V + g * V + best] = 1.0f;
        }
    sh[0] = N; sh[1] = G * V;
    hardt = sv_tensor_from(c, hard, 2, sh);                       /* [N,G*V] one-hot per group */
    if (training) {
        /* hard straight-through Gumbel softmax: forward one-hot, gradient of softmax((l+g)/tau) */
        sv_tensor *soft = sv_scale(c, sv_add_const(c, logits, noise), 1.0f / tau);
        sh[0] = N * G; sh[1] = V;
        soft = sv_softmax(c, sv_reshape(c, soft, 2, sh));
        sh[0] = N; sh[1] = G * V;
        q = sv_straight_through(c, hardt, sv_reshape(c, soft, 2, sh));
    } else {
        q = hardt;
    }
    if (codes) *codes = hard;
    q = sv_group_linear(c, q, m->codebook, G);                    /* [N,q_dim]: chosen entries concatenated */
    return sv_linear(c, q, m->projq_w, m->projq_b);               /* [N,F] */
}

/* ---------------------------------------------------------------- 6.10 negatives */
SV_DEF void sv_w2v2_sample_negatives(sv_rng *rng, size_t B, size_t n, size_t K, size_t *idx)
{
    size_t b, j, k;
    for (b = 0; b < B; b++)
        for (j = 0; j < n; j++)
            for (k = 0; k < K; k++) {
                /* fairseq sample_negatives: randint(0, high - 1), shifted past the frame itself */
                size_t r = n > 1 ? sv_rng_below(rng, n - 1) : 0;
                if (r >= j && n > 1) r++;
                idx[(b * n + j) * K + k] = b * n + r;
            }
}

/* Sample-keyed negatives: row b's from the stream sv_rng_key(site key, global sample index). */
static void sv__negatives_keyed(sv_ctx *c, size_t B, size_t n, size_t K, size_t *idx)
{
    uint64_t site = sv__site_key(c, SV_DRAW_NEGATIVES);
    size_t b, i;
    for (b = 0; b < B; b++) {
        sv_rng r;
        size_t *row = idx + b * n * K;
        sv_rng_seed(&r, sv_rng_key(site, sv__sample0(c) + b));
        sv_w2v2_sample_negatives(&r, 1, n, K, row);
        for (i = 0; i < n * K; i++) row[i] += b * n;
    }
}

/* ---------------------------------------------------------------- 6.11 features of a trained model */
static int sv__single_forward(sv_model *m, sv_ctx *c, const float *wave, size_t n, size_t n_layers, sv_w2v2_out *e)
{
    sv_batch bt;
    float *w;
    size_t i;
    if (!wave || n == 0) return sv__fail(SV_ERR_ARG, "empty waveform");
    for (i = 0; i < n; i++) if (!isfinite(wave[i])) return sv__fail(SV_ERR_NUMERIC, "waveform sample %zu is not finite", i);
    if (n < sv_config_receptive_field(&m->cfg))
        return sv__fail(SV_ERR_ARG, "waveform of %zu samples is shorter than the receptive field (%zu)", n, sv_config_receptive_field(&m->cfg));
    w = (float *)sv_ctx_alloc(c, n * sizeof(float));
    if (!w) return SV_ERR_NOMEM;
    memcpy(w, wave, n * sizeof(float));
    sv_normalize_wave(w, n);
    memset(&bt, 0, sizeof bt);
    bt.B = 1; bt.S = n; bt.wave = w; bt.wave_len = &n;
    return sv_w2v2_forward(m, c, &bt, 0, n_layers, e);
}

SV_DEF int sv_extract_all_layers(sv_model *m, sv_ctx *c, const float *wave, size_t n, float **out, float **cnn_out, size_t *n_frames)
{
    sv_w2v2_out e;
    size_t L = m->cfg.n_shared + m->cfg.n_decoder, l, D = m->cfg.D, off = m->cls ? 1 : 0;
    int rc, grad = sv_ctx_grad(c), tr = sv_ctx_training(c);
    sv_ctx_reset(c);
    sv_ctx_set_grad(c, 0);
    sv_ctx_set_training(c, 0);
    rc = sv__single_forward(m, c, wave, n, L, &e);
    sv_ctx_set_grad(c, grad);
    sv_ctx_set_training(c, tr);
    if (rc != SV_OK) return rc;
    for (l = 0; l <= L; l++) {
        out[l] = (float *)sv__alloc(e.T * D * sizeof(float), "features");
        if (!out[l]) { while (l-- > 0) SV_FREE(out[l]); return SV_ERR_NOMEM; }
        memcpy(out[l], e.hidden[l]->data + off * D, e.T * D * sizeof(float));
    }
    if (cnn_out) {
        size_t C = e.features->shape[2];
        *cnn_out = (float *)sv__alloc(e.T * C * sizeof(float), "features");
        if (!*cnn_out) { for (l = 0; l <= L; l++) SV_FREE(out[l]); return SV_ERR_NOMEM; }
        memcpy(*cnn_out, e.features->data, e.T * C * sizeof(float));
    }
    *n_frames = e.T;
    return SV_OK;
}

SV_DEF int sv_extract_features(sv_model *m, sv_ctx *c, const float *wave, size_t n, size_t layer, float **out, size_t *n_frames, size_t *dim)
{
    sv_w2v2_out e;
    size_t L = m->cfg.n_shared + m->cfg.n_decoder, D = m->cfg.D, off = m->cls ? 1 : 0;
    int rc, grad = sv_ctx_grad(c), tr = sv_ctx_training(c);
    if (layer > L) return sv__fail(SV_ERR_ARG, "layer %zu: the model has layers 0..%zu", layer, L);
    sv_ctx_reset(c);
    sv_ctx_set_grad(c, 0);
    sv_ctx_set_training(c, 0);
    rc = sv__single_forward(m, c, wave, n, layer, &e);
    sv_ctx_set_grad(c, grad);
    sv_ctx_set_training(c, tr);
    if (rc != SV_OK) return rc;
    *out = (float *)sv__alloc(e.T * D * sizeof(float), "features");
    if (!*out) return SV_ERR_NOMEM;
    memcpy(*out, e.hidden[layer]->data + off * D, e.T * D * sizeof(float));
    *n_frames = e.T;
    *dim = D;
    return SV_OK;
}

/* ======================================================================================
   7 VGS
   ====================================================================================== */
/* ---------------------------------------------------------------- 7.1 audio branch */
/* BatchNorm with the running statistics as buffers (PyTorch momentum 0.1, eps 1e-5) */
static sv_tensor *sv__bn(sv_ctx *c, sv_tensor *x, const size_t *len, const sv_bn *bn)
{
    return sv_batch_norm(c, x, len, bn->g, bn->b, bn->mean, bn->var, 0.1f, 1e-5f);
}

/* ResDAVEnet basic block (He et al. 2016 on 1-D speech frames): conv-BN-ReLU-conv-BN, plus the
   (possibly downsampled) input, ReLU. Lengths: a stride-2 width-9 conv with padding 4 keeps
   ceil(len/2) frames, which is what the same utterance alone would give. */
static sv_tensor *sv__resblock(sv_ctx *c, const sv_resblock *rb, sv_tensor *x, size_t *len, size_t B)
{
    size_t K = rb->conv1->shape[1], b;
    sv_tensor *h, *res = x;
    size_t *lo = (size_t *)sv_ctx_alloc(c, B * sizeof(size_t));
    if (!lo) return NULL;
    for (b = 0; b < B; b++) lo[b] = (len[b] + rb->stride - 1) / rb->stride;
    h = sv_conv1d(c, x, rb->conv1, NULL, rb->stride, K / 2, 1);
    h = sv_relu(c, sv__bn(c, h, lo, &rb->bn1));
    h = sv_conv1d(c, h, rb->conv2, NULL, 1, K / 2, 1);
    h = sv__bn(c, h, lo, &rb->bn2);
    if (rb->down) res = sv__bn(c, sv_conv1d(c, x, rb->down, NULL, rb->stride, 0, 1), lo, &rb->bn_down);
    for (b = 0; b < B; b++) len[b] = lo[b];
    /* frames beyond len are zero after each BN, and stay zero through add and ReLU */
    return sv_relu(c, sv_add(c, h, res));
}

SV_DEF sv_tensor *sv_vgs_audio_branch(sv_model *m, sv_ctx *c, sv_tensor *h, const size_t *key_len, size_t B)
{
    const sv_config *cfg = &m->cfg;
    sv_tensor *frames, *cls, *x, *z;
    size_t *len = (size_t *)sv_ctx_alloc(c, B * sizeof(size_t)), *klen = (size_t *)sv_ctx_alloc(c, B * sizeof(size_t));
    size_t b, i, Tc, off = m->cls ? 1 : 0, sh[3];
    if (!len || !klen || !h) return NULL;
    Tc = h->shape[1];
    for (b = 0; b < B; b++) len[b] = key_len[b] - off;
    frames = sv_slice(c, h, 1, off, Tc - off);                    /* [B,T,D] */
    x = sv_linear(c, frames, m->rd_w, m->rd_b);                   /* [B,T,w0] */
    x = sv_relu(c, sv__bn(c, x, len, &m->rd_bn));
    for (i = 0; i < 8; i++) x = sv__resblock(c, &m->rd_block[i], x, len, B);   /* [B,T/16,D] */
    /* the encoder's CLS through the MLP D -> 2D -> D (without a CLS token, the first frame) */
    cls = sv_slice(c, h, 1, 0, 1);                                /* [B,1,D] */
    cls = sv_linear(c, sv_gelu_op(c, sv_linear(c, cls, m->acls1_w, m->acls1_b)), m->acls2_w, m->acls2_b);
    x = sv_concat(c, cls, x, 1);                                  /* [B,1+T/16,D] */
    for (b = 0; b < B; b++) klen[b] = len[b] + 1;
    for (i = 0; i < cfg->vgs_audio_layers; i++)
        x = sv__transformer_layer(c, &m->audio_layer[i], x, klen, cfg->vgs_heads, cfg->vgs_dropout, cfg->vgs_dropout, 0.0f, 0, cfg->vgs_ln_eps, NULL);
    z = sv_slice(c, x, 1, 0, 1);
    sh[0] = B; sh[1] = cfg->D;
    z = sv_reshape(c, z, 2, sh);
    return sv_linear(c, z, m->aemb_w, m->aemb_b);                 /* [B,E] */
}

/* ---------------------------------------------------------------- 7.2 image branch */
SV_DEF sv_tensor *sv_vgs_image_branch(sv_model *m, sv_ctx *c, const float *regions, const float *boxes, size_t B)
{
    const sv_config *cfg = &m->cfg;
    sv_tensor *f, *bx, *x, *z;
    size_t i, sh[3], D = cfg->D;
    sh[0] = B; sh[1] = cfg->img_regions; sh[2] = cfg->img_dim;
    f = sv_tensor_from(c, regions, 3, sh);
    sh[2] = 4;
    bx = sv_tensor_from(c, boxes, 3, sh);
    f = sv_layer_norm(c, sv_linear(c, f, m->vf_w, m->vf_b), m->vf_ln_g, m->vf_ln_b, cfg->vgs_ln_eps);
    bx = sv_layer_norm(c, sv_linear(c, bx, m->vb_w, m->vb_b), m->vb_ln_g, m->vb_ln_b, cfg->vgs_ln_eps);
    x = sv_dropout(c, sv_scale(c, sv_add(c, f, bx), 0.5f), cfg->vgs_dropout);
    sh[1] = 1; sh[2] = D;
    z = sv_tensor_zeros(c, 3, sh);
    x = sv_concat(c, sv_add(c, z, m->img_cls), x, 1);             /* [B,1+R,D] */
    for (i = 0; i < cfg->img_layers; i++)
        x = sv__transformer_layer(c, &m->img_layer[i], x, NULL, cfg->vgs_heads, cfg->vgs_dropout, cfg->vgs_dropout, 0.0f, 0, cfg->vgs_ln_eps, NULL);
    z = sv_slice(c, x, 1, 0, 1);
    sh[0] = B; sh[1] = D;
    z = sv_reshape(c, z, 2, sh);
    z = sv_gelu_op(c, sv_linear(c, z, m->iemb1_w, m->iemb1_b));
    return sv_linear(c, z, m->iemb2_w, m->iemb2_b);               /* [B,E] */
}

/* ---------------------------------------------------------------- 7.3 embeddings of a trained model */
SV_DEF int sv_embed_audio(sv_model *m, sv_ctx *c, const float *wave, const size_t *wave_len, size_t B, size_t S, float *out)
{
    sv_w2v2_out e;
    sv_batch bt;
    sv_tensor *a;
    int rc = SV_OK, grad = sv_ctx_grad(c), tr = sv_ctx_training(c);
    sv_ctx_reset(c);
    sv_ctx_set_grad(c, 0);
    sv_ctx_set_training(c, 0);
    memset(&bt, 0, sizeof bt);
    bt.B = B; bt.S = S; bt.wave = wave; bt.wave_len = wave_len;
    if (sv_w2v2_forward(m, c, &bt, 0, m->cfg.n_shared, &e) != SV_OK) rc = sv_last_status() ? sv_last_status() : SV_ERR_ARG;
    else {
        a = sv_vgs_audio_branch(m, c, e.hidden[m->cfg.n_shared], e.key_len, B);
        if (!a) rc = sv_last_status() ? sv_last_status() : SV_ERR_NOMEM;
        else memcpy(out, a->data, B * m->cfg.E * sizeof(float));
    }
    sv_ctx_set_grad(c, grad);
    sv_ctx_set_training(c, tr);
    return rc;
}

SV_DEF int sv_embed_images(sv_model *m, sv_ctx *c, const float *regions, const float *boxes, size_t B, float *out)
{
    sv_tensor *v;
    int rc = SV_OK, grad = sv_ctx_grad(c), tr = sv_ctx_training(c);
    sv_ctx_reset(c);
    sv_ctx_set_grad(c, 0);
    sv_ctx_set_training(c, 0);
    v = sv_vgs_image_branch(m, c, regions, boxes, B);
    if (!v) rc = sv_last_status() ? sv_last_status() : SV_ERR_NOMEM;
    else memcpy(out, v->data, B * m->cfg.E * sizeof(float));
    sv_ctx_set_grad(c, grad);
    sv_ctx_set_training(c, tr);
    return rc;
}

/* ======================================================================================
   8 Losses
   ====================================================================================== */
/* ---------------------------------------------------------------- 8.1 contrastive loss */
SV_DEF sv_tensor *sv_w2v2_contrastive_logits(sv_ctx *c, sv_tensor *pred, sv_tensor *targ, const size_t *idx, size_t J, float temp)
{
    size_t N, F, r, j;
    float *ninf;
    SV__IN2(pred, targ);
    N = pred->shape[0];
    F = targ->shape[1];
    ninf = (float *)sv_ctx_alloc(c, N * J * sizeof(float));
    if (!ninf) return NULL;
    for (r = 0; r < N; r++) {
        const float *t0 = targ->data + idx[r * J] * F;
        ninf[r * J] = 0.0f;
        for (j = 1; j < J; j++)
            ninf[r * J + j] = memcmp(targ->data + idx[r * J + j] * F, t0, F * sizeof(float)) == 0 ? -INFINITY : 0.0f;
    }
    return sv_add_const(c, sv_scale(c, sv_dot_gather(c, sv_l2_normalize(c, pred, 1e-8f), sv_l2_normalize(c, targ, 1e-8f), idx, J),
                                    1.0f / temp), ninf);
}

SV_DEF sv_tensor *sv_w2v2_contrastive_loss(sv_ctx *c, sv_tensor *pred, sv_tensor *targ, const size_t *neg, size_t K,
                                           float temp, sv_tensor **logits_out)
{
    size_t N, r, j, *idx;
    int *tg;
    sv_tensor *logits;
    SV__IN2(pred, targ);
    N = pred->shape[0];
    idx = (size_t *)sv_ctx_alloc(c, N * (K + 1) * sizeof(size_t));
    tg = (int *)sv_ctx_alloc(c, N * sizeof(int));
    if (!idx || !tg) return NULL;
    /* candidates of frame r: its own target first, then its K negatives */
    for (r = 0; r < N; r++) {
        idx[r * (K + 1)] = r;
        for (j = 0; j < K; j++) idx[r * (K + 1) + 1 + j] = neg[r * K + j];
        tg[r] = 0;
    }
    logits = sv_w2v2_contrastive_logits(c, pred, targ, idx, K + 1, temp);   /* [N,K+1] */
    if (logits_out) *logits_out = logits;
    return sv_cross_entropy(c, logits, tg, 0);                    /* summed over the N frames */
}

/* ---------------------------------------------------------------- 8.2 diversity loss */
SV_DEF sv_tensor *sv_w2v2_diversity_loss(sv_model *m, sv_ctx *c, sv_tensor *y, sv_tensor **prob_ppl)
{
    const sv_config *cfg = &m->cfg;
    size_t G = cfg->q_groups, V = cfg->q_vars, N, Ng, sh[2];
    sv_tensor *probs, *avg, *ent, *ppl;
    SV__IN1(y);
    N = y->shape[0];
    /* the frames of the global batch: y's rows are sample-major with the same count per sample */
    Ng = c->shard ? N / c->shard->s.count * c->shard->s.total : N;
    sh[0] = N * G; sh[1] = V;
    probs = sv_softmax(c, sv_reshape(c, sv_linear(c, y, m->q_w, m->q_b), 2, sh));
    sh[0] = N; sh[1] = G * V;
    probs = sv_reshape(c, probs, 2, sh);                          /* [N,G*V] */
    avg = sv_scale(c, sv_shard_sum(c, probs), 1.0f / (float)Ng);  /* [G*V] mean over the global batch's frames */
    sh[0] = G; sh[1] = V;
    avg = sv_reshape(c, avg, 2, sh);
    ent = sv_sum_last(c, sv_mul(c, avg, sv_log(c, sv_add_scalar(c, avg, 1e-7f))));  /* [G] = -H */
    ppl = sv_sum(c, sv_exp(c, sv_scale(c, ent, -1.0f)));
    if (prob_ppl) *prob_ppl = ppl;
    return sv_add_scalar(c, sv_scale(c, ppl, -1.0f / (float)(G * V)), 1.0f);
}

/* ---------------------------------------------------------------- 8.3 feature penalty */
SV_DEF sv_tensor *sv_w2v2_feature_penalty(sv_ctx *c, sv_tensor *features, const size_t *frame_len, size_t *n_valid)
{
    size_t B, T, C, b, t, n = 0, sh[2];
    uint8_t *pad;
    sv_tensor *zero, *x;
    SV__IN1(features);
    B = features->shape[0];
    T = features->shape[1];
    C = features->shape[2];
    pad = (uint8_t *)sv_ctx_alloc(c, B * T);
    zero = sv_tensor_zeros(c, 1, &C);
    if (!pad || !zero) return NULL;
    for (b = 0; b < B; b++) for (t = 0; t < T; t++) pad[b * T + t] = t >= frame_len[b];
    if (sv__global_count(c, frame_len, B, &n) != SV_OK) { c->failed = 1; return NULL; }
    if (n_valid) *n_valid = n;
    /* per sample the sum over its valid frames, then over the global batch in sample order */
    x = sv_square(c, sv_mask_rows(c, features, pad, zero));       /* [B,T,C], padding 0 */
    sh[0] = B; sh[1] = T * C;
    x = sv_sum_last(c, sv_reshape(c, x, 2, sh));                  /* [B] */
    sh[1] = 1;
    x = sv_shard_sum(c, sv_reshape(c, x, 2, sh));                 /* [1] */
    return sv_scale(c, x, 1.0f / (float)(n * C));
}

/* ---------------------------------------------------------------- 8.4 loss_AUD */
/* The training-health numbers of one wav2vec 2.0 loss, over the global batch: per sample (B local
   samples of n masked frames each) the contrastive CE recomputed in double from the logits
   [B*n,K+1], the frames whose target ranks strictly above every candidate (accuracy), and the
   counts of the hard code choices codes [B*n,G*V] (code perplexity, as fairseq's
   code_perplexity); gathered in sample order. In shard mode the gather is a collective, so it
   runs whether or not st is wanted. */
static int sv__w2v2_stats(sv_ctx *c, const sv_config *cfg, sv_stats *st, const sv_tensor *logits, const float *codes, size_t B,
                          size_t n, const sv_tensor *div, const sv_tensor *pen, const sv_tensor *ppl, float tau, size_t n_valid,
                          const sv_tensor *loss)
{
    size_t G = cfg->q_groups, V = cfg->q_vars, K = cfg->n_negatives, W = 2 + G * V, i, j, g, r, b;
    size_t total = c->shard ? c->shard->s.total : B, Ng = n * total;
    double *loc, *all, cp = 0, ce = 0, correct = 0;
    if (!st && !c->shard) return SV_OK;
    loc = (double *)sv_ctx_alloc(c, B * W * sizeof(double));
    all = (double *)sv_ctx_alloc(c, total * W * sizeof(double));
    if (!loc || !all) return SV_ERR_NOMEM;
    memset(loc, 0, B * W * sizeof(double));
    for (b = 0; b < B; b++)
        for (r = b * n; r < (b + 1) * n; r++) {
            const float *lr = logits->data + r * (K + 1);
            double mx = lr[0], se = 0;
            int best = 1;
            for (j = 1; j <= K; j++) {
                if (lr[j] >= lr[0]) best = 0;
                if (lr[j] > mx) mx = lr[j];
            }
            for (j = 0; j <= K; j++) se += exp((double)lr[j] - mx);
            loc[b * W] += mx + log(se) - lr[0];
            loc[b * W + 1] += best;
            for (j = 0; j < G * V; j++) loc[b * W + 2 + j] += codes[r * G * V + j];
        }
    if (sv__shard_gather(c, c->shard, loc, c->shard ? W : B * W, all) != SV_OK) return SV_ERR_IO;
    if (!st) return SV_OK;
    for (b = 0; b < total; b++) { ce += all[b * W]; correct += all[b * W + 1]; }
    for (g = 0; g < G; g++) {
        double h = 0;
        for (j = 0; j < V; j++) {
            double p = 0;
            for (i = 0; i < total; i++) p += all[i * W + 2 + g * V + j];
            p /= (double)Ng;
            h -= p * log(p + 1e-7);
        }
        cp += exp(h);
    }
    st->contrastive = (float)(ce / (double)Ng);
    st->diversity = div->data[0];
    st->feature_pen = pen->data[0];
    st->accuracy = (float)(correct / (double)Ng);
    st->code_ppl = (float)cp;
    st->prob_ppl = ppl->data[0];
    st->tau = tau;
    st->n_masked = Ng;
    st->mask_frac = (float)Ng / (float)n_valid;
    /* the loss of the global batch: in shard mode this process's graph holds only its share */
    st->loss_aud = c->shard ? (float)(ce / (double)Ng + cfg->diversity_weight * (double)div->data[0] +
                                      (cfg->feature_pen_weight > 0 ? cfg->feature_pen_weight * (double)pen->data[0] : 0.0))
                            : loss->data[0];
    return SV_OK;
}

SV_DEF sv_tensor *sv_w2v2_loss(sv_model *m, sv_ctx *c, const sv_w2v2_out *e, size_t step, sv_stats *st)
{
    const sv_config *cfg = &m->cfg;
    size_t B = e->B, n = e->n_masked, N = B * n, K = cfg->n_negatives;
    size_t b, t, r, off = m->cls ? 1 : 0, *rows, *rows_c, *neg, n_valid = 0, Ng;
    float tau = sv_w2v2_temperature(cfg, step);
    const float *codes = NULL;
    sv_tensor *y, *q, *x, *logits = NULL, *ce, *div, *ppl = NULL, *pen, *loss;
    if (!e->mask) { sv__fail(SV_ERR_ARG, "loss_AUD needs a masked forward pass"); return NULL; }
    if (n < 2) { sv__fail(SV_ERR_ARG, "contrastive loss needs at least 2 masked frames per utterance"); return NULL; }
    /* the masked frames of the global batch (every row has n of them) */
    Ng = n * (c->shard ? c->shard->s.total : B);
    rows = (size_t *)sv_ctx_alloc(c, N * sizeof(size_t));
    rows_c = (size_t *)sv_ctx_alloc(c, N * sizeof(size_t));
    neg = (size_t *)sv_ctx_alloc(c, N * K * sizeof(size_t));
    if (!rows || !rows_c || !neg) return NULL;
    /* the masked frames, row by row: row b's frames are rows b*n .. b*n+n-1 */
    for (b = 0, r = 0; b < B; b++)
        for (t = 0; t < e->T; t++)
            if (e->mask[b * e->T + t]) { rows[r] = b * e->T + t; rows_c[r] = b * e->Tc + t + off; r++; }
    y = sv_gather_rows(c, e->unmasked, rows, N);                  /* [N,C] */
    q = sv_w2v2_quantize(m, c, y, tau, &codes);                   /* [N,F] targets */
    x = sv_gather_rows(c, e->hidden[e->n_layers], rows_c, N);     /* [N,D] */
    x = sv_linear(c, x, m->final_w, m->final_b);                  /* [N,F] predictions */
    if (!x || !q) return NULL;
    sv__negatives_keyed(c, B, n, K, neg);                          /* [N,K] */
    ce = sv_w2v2_contrastive_loss(c, x, q, neg, K, cfg->logit_temp, &logits);
    if (!ce) return NULL;
    div = sv_w2v2_diversity_loss(m, c, y, &ppl);
    pen = sv_w2v2_feature_penalty(c, e->features, e->frame_len, &n_valid);
    /* loss_AUD = (sum CE + div_w * loss_div * N + pen_w * pen * N) / N over the global batch's
       N masked frames; this process's graph sums the CE of its own frames only, so that the
       gradients of the processes add up to the global batch's */
    loss = sv_scale(c, ce, 1.0f / (float)Ng);
    loss = sv_axpby(c, 1.0f, loss, cfg->diversity_weight, div);
    if (cfg->feature_pen_weight > 0) loss = sv_axpby(c, 1.0f, loss, cfg->feature_pen_weight, pen);
    if (!loss) return NULL;
    if (sv__w2v2_stats(c, cfg, st, logits, codes, B, n, div, pen, ppl, tau, n_valid, loss) != SV_OK) return NULL;
    return loss;
}

/* ---------------------------------------------------------------- 8.5 MT4SSL: offline and online targets
   Ma et al. 2022 (ddlBoJack/MT4SSL, models/multi2vec_audio.py and criterions/model_criterion.py).
   Both heads read the student's last layer at the masked frames:
     offline: Linear(D, K) and cross-entropy against the k-means class of the frame, summed;
     online:  Linear(D, D) regressing the EMA teacher's target, squared error summed over the D
              dims and over the frames, times 1/sqrt(D).
   loss = (w_off CE + w_on regression) / N, N masked frames (fairseq's sample_size), weights 1.
   The teacher (data2vec, fairseq examples/data2vec) is an exponential moving average of the
   transformer (encoder LayerNorm and layers; ema_transformer_only + ema_layers_only: the
   positional convolution is copied from the student at every update rather than averaged, so it
   *is* the student's here). It runs in eval mode, without a tape, on the student's projected
   features before input dropout and masking, with the CLS vector in front as the student has it;
   its target is the mean over the top mt4_top_k layers (all when there are fewer) of each layer's
   FFN output before the residual add and the LayerNorm, each normalised per utterance and
   channel over the valid frames (sv_data2vec_target). */
SV_DEF uint32_t sv_ssl_groups(const sv_config *cfg)
{
    uint32_t g = (1u << SV_GROUP_SHARED) | (1u << SV_GROUP_W2V2);
    if (cfg->ssl != SV_SSL_MT4SSL) g |= 1u << SV_GROUP_W2V2_HEAD;
    if (cfg->ssl != SV_SSL_W2V2) g |= 1u << SV_GROUP_MT4SSL;
    return g;
}

/* The student's transformer tensors and the teacher's, pairwise; returns the count. */
#define SV__TLAYER_N (sizeof(sv_tlayer) / sizeof(sv_tensor *))
static size_t sv__teacher_pairs(sv_model *m, sv_tensor **stu, sv_tensor **tea)
{
    size_t n = 0, l, k, L = m->cfg.n_shared + m->cfg.n_decoder;
    if (!m->t_enc_ln_g) return 0;
    stu[n] = m->enc_ln_g; tea[n++] = m->t_enc_ln_g;
    stu[n] = m->enc_ln_b; tea[n++] = m->t_enc_ln_b;
    for (l = 0; l < L; l++) {
        sv_tensor **a = (sv_tensor **)&m->layer[l], **b = (sv_tensor **)&m->teacher[l];
        for (k = 0; k < SV__TLAYER_N; k++) { stu[n] = a[k]; tea[n++] = b[k]; }
    }
    return n;
}

SV_DEF void sv_mt4ssl_teacher_reset(sv_model *m)
{
    sv_tensor *stu[2 + SV_MAX_LAYERS * SV__TLAYER_N], *tea[2 + SV_MAX_LAYERS * SV__TLAYER_N];
    size_t n = sv__teacher_pairs(m, stu, tea), i;
    for (i = 0; i < n; i++) memcpy(tea[i]->data, stu[i]->data, stu[i]->n * sizeof(float));
}

SV_DEF void sv_mt4ssl_ema_step(sv_model *m, size_t updates)
{
    sv_tensor *stu[2 + SV_MAX_LAYERS * SV__TLAYER_N], *tea[2 + SV_MAX_LAYERS * SV__TLAYER_N];
    size_t n = sv__teacher_pairs(m, stu, tea), i;
    float d = sv_ema_decay(m->cfg.ema_decay, m->cfg.ema_end_decay, updates, m->cfg.ema_anneal);
    if (d >= 1.0f) return;     /* fairseq skips the step when the decay is 1 */
    for (i = 0; i < n; i++) sv_ema_update(tea[i]->data, stu[i]->data, stu[i]->n, d);
}

/* The teacher's target for the forward pass e: [B, T, D] in the arena (NULL on error). Runs with
   the tape off and in eval mode; both flags are restored. */
static float *sv__mt4ssl_target(sv_model *m, sv_ctx *c, const sv_w2v2_out *e)
{
    const sv_config *cfg = &m->cfg;
    size_t B = e->B, T = e->T, Tc = e->Tc, D = cfg->D, L = cfg->n_shared + cfg->n_decoder, top, first, l, b;
    size_t off = m->cls ? 1 : 0;
    int grad = sv_ctx_grad(c), training = sv_ctx_training(c);
    const float *layers[SV_MAX_LAYERS];
    sv_tensor *x, *hidden[SV_MAX_LAYERS + 1], *ffn[SV_MAX_LAYERS];
    float *target = NULL;
    top = cfg->mt4_top_k < L ? cfg->mt4_top_k : L;
    first = L - top;
    sv_ctx_set_grad(c, 0);
    sv_ctx_set_training(c, 0);
    memset(ffn, 0, sizeof ffn);
    /* the student's steps with the teacher's transformer: CLS, positional convolution (the
       student's own, as the EMA copies it), then the EMA LayerNorm and layers */
    x = sv__w2v2_prepend_cls(m, c, e->projected, B);             /* [B,Tc,D] */
    x = sv__w2v2_positional_conv(m, c, x, e->key_len, B, Tc);
    if (!x || sv__w2v2_transformer(c, cfg, m->teacher, m->t_enc_ln_g, m->t_enc_ln_b, x, e->key_len, L, hidden, ffn) != SV_OK)
        goto done;
    for (l = first; l < L; l++) {
        /* the utterance frames of the layer (the CLS position dropped), contiguous [B,T,D] */
        float *f = (float *)sv_ctx_alloc(c, B * T * D * sizeof(float));
        if (!f || !ffn[l]) goto done;
        for (b = 0; b < B; b++) memcpy(f + b * T * D, ffn[l]->data + (b * Tc + off) * D, T * D * sizeof(float));
        layers[l - first] = f;
    }
    target = (float *)sv_ctx_alloc(c, B * T * D * sizeof(float));
    if (target && sv_data2vec_target(layers, top, B, T, D, e->frame_len, 1e-5f, target) != SV_OK) target = NULL;
done:
    sv_ctx_set_grad(c, grad);
    sv_ctx_set_training(c, training);
    if (!target && !sv_last_status()) sv__fail(SV_ERR_NOMEM, "MT4SSL teacher: out of memory");
    return target;
}

/* mean over the D columns of sqrt(unbiased variance over the rows + 1e-6) (data2vec compute_var)
   of y [B*n, D] (n rows per local sample), over the rows of the global batch: per-sample column
   sums gathered for the mean, then per-sample squared deviations from it. NaN with < 2 rows. */
static float sv__mt4ssl_var(sv_ctx *c, const float *y, size_t B, size_t n, size_t D)
{
    size_t total = c->shard ? c->shard->s.total : B, N = n * total, b, d, r, w = c->shard ? D : B * D;
    double *loc = (double *)sv_ctx_alloc(c, B * D * sizeof(double)), *all = (double *)sv_ctx_alloc(c, total * D * sizeof(double));
    double *mean = (double *)sv_ctx_alloc(c, D * sizeof(double)), s = 0;
    int pass;
    if (!loc || !all || !mean) return NAN;
    for (pass = 0; pass < 2; pass++) {
        for (b = 0; b < B; b++)
            for (d = 0; d < D; d++) {
                double acc = 0;
                for (r = b * n; r < (b + 1) * n; r++) {
                    double v = pass ? y[r * D + d] - mean[d] : y[r * D + d];
                    acc += pass ? v * v : v;
                }
                loc[b * D + d] = acc;
            }
        if (sv__shard_gather(c, c->shard, loc, w, all) != SV_OK) return NAN;
        for (d = 0; d < D; d++) {
            double acc = 0;
            for (b = 0; b < total; b++) acc += all[b * D + d];
            if (pass) s += N >= 2 ? sqrt(acc / (double)(N - 1) + 1e-6) : 0;
            else mean[d] = acc / (double)(N ? N : 1);
        }
    }
    return N < 2 ? NAN : (float)(s / (double)D);
}

SV_DEF sv_tensor *sv_mt4ssl_loss(sv_model *m, sv_ctx *c, const sv_w2v2_out *e, const sv_batch *bt, sv_stats *st)
{
    const sv_config *cfg = &m->cfg;
    size_t B = bt->B, n = e->n_masked, N = B * n, D = cfg->D, b, t, r, off = m->cls ? 1 : 0;
    /* the normaliser: the masked frames of the global batch (shard mode; this process's graph
       sums its own frames, so that the processes' gradients add up to the global batch's) */
    size_t total = c->shard ? c->shard->s.total : B, Ng = n * total, g0 = sv__sample0(c);
    size_t *rows = (size_t *)sv_ctx_alloc(c, N * sizeof(size_t)), *rows_c = (size_t *)sv_ctx_alloc(c, N * sizeof(size_t));
    double *ps = (double *)sv_ctx_alloc(c, B * 3 * sizeof(double)), *pall = (double *)sv_ctx_alloc(c, total * 3 * sizeof(double));
    sv_tensor *x, *loss = NULL;
    if (!rows || !rows_c || !ps || !pall) return NULL;
    if (!n) { sv__fail(SV_ERR_ARG, "MT4SSL needs masked frames"); return NULL; }
    memset(ps, 0, B * 3 * sizeof(double));   /* per sample: offline CE, offline correct, online error */
    for (b = 0, r = 0; b < B; b++)
        for (t = 0; t < e->T; t++)
            if (e->mask[b * e->T + t]) { rows[r] = b * e->T + t; rows_c[r] = b * e->Tc + t + off; r++; }
    x = sv_gather_rows(c, e->hidden[e->n_layers], rows_c, N);   /* [N,D] the student's last layer */
    if (!x) return NULL;
    if (st) st->n_masked = Ng;
    if (m->mt4_off_w) {
        int *tg = (int *)sv_ctx_alloc(c, N * sizeof(int)), status = SV_OK;
        sv_tensor *logits, *ce;
        size_t k;
        if (!tg) return NULL;
        if (!bt->km) status = sv__fail(SV_ERR_ARG, "MT4SSL's offline head needs k-means targets in the batch (make them with ./train --kmeans DIR, train with --targets DIR)");
        for (r = 0; r < N && status == SV_OK; r++) {
            size_t bb = rows[r] / e->T, tt = rows[r] % e->T;
            int lab = tt < bt->km_T ? bt->km[bb * bt->km_T + tt] : -1;
            if (lab < 0 || (size_t)lab >= cfg->mt4_k)
                status = sv__fail(SV_ERR_ARG, "MT4SSL: frame %zu of utterance %zu has no offline target in 0..%zu (got %d): targets for another audio length or k?",
                                  tt, g0 + bb, cfg->mt4_k - 1, lab);
            tg[r] = lab;
        }
        if (sv__shard_agree(c, status) != SV_OK) return NULL;   /* shard mode: all stop, or none */
        logits = sv_linear(c, x, m->mt4_off_w, m->mt4_off_b);      /* [N,K] */
        ce = sv_cross_entropy(c, logits, tg, 0);                  /* summed over the N frames */
        if (!ce) return NULL;
        for (r = 0; r < N; r++) {
            const float *lr = logits->data + r * cfg->mt4_k;
            size_t best = 0;
            double mx = lr[0], se = 0;
            for (k = 1; k < cfg->mt4_k; k++) { if (lr[k] > lr[best]) best = k; if (lr[k] > mx) mx = lr[k]; }
            for (k = 0; k < cfg->mt4_k; k++) se += exp((double)lr[k] - mx);
            ps[(r / n) * 3] += mx + log(se) - lr[tg[r]];
            ps[(r / n) * 3 + 1] += best == (size_t)tg[r];
        }
        loss = sv_scale(c, ce, cfg->mt4_offline_weight / (float)Ng);
    }
    if (m->mt4_on_w) {
        float *target = sv__mt4ssl_target(m, c, e), *tr;
        sv_tensor *pred, *reg;
        if (!target) return NULL;
        tr = (float *)sv_ctx_alloc(c, N * D * sizeof(float));   /* the targets of the masked frames */
        if (!tr) return NULL;
        for (r = 0; r < N; r++) memcpy(tr + r * D, target + rows[r] * D, D * sizeof(float));
        pred = sv_linear(c, x, m->mt4_on_w, m->mt4_on_b);         /* [N,D] */
        reg = sv_sq_error_sum(c, pred, tr, 1.0f / sqrtf((float)D));
        if (!reg) return NULL;
        loss = loss ? sv_axpby(c, 1.0f, loss, cfg->mt4_online_weight / (float)Ng, reg)
                    : sv_scale(c, reg, cfg->mt4_online_weight / (float)Ng);
        for (r = 0; r < N; r++) {
            double acc = 0, d2;
            size_t d;
            for (d = 0; d < D; d++) { d2 = (double)pred->data[r * D + d] - tr[r * D + d]; acc += d2 * d2; }
            ps[(r / n) * 3 + 2] += acc / sqrt((double)D);
        }
        /* (collectives in shard mode: computed whether or not st is wanted) */
        if (st || c->shard) {
            float tv = sv__mt4ssl_var(c, tr, B, n, D), pv = sv__mt4ssl_var(c, pred->data, B, n, D);
            if (st) { st->target_var = tv; st->pred_var = pv; }
        }
    }
    /* the training-health numbers over the global batch: per-sample sums gathered in order */
    if (st || c->shard) {
        double ce = 0, correct = 0, on = 0;
        if (sv__shard_gather(c, c->shard, ps, c->shard ? 3 : 3 * B, pall) != SV_OK) return NULL;
        for (b = 0; b < total; b++) { ce += pall[3 * b]; correct += pall[3 * b + 1]; on += pall[3 * b + 2]; }
        if (st && m->mt4_off_w) { st->mt4_offline = (float)(ce / (double)Ng); st->mt4_acc = (float)(correct / (double)Ng); }
        if (st && m->mt4_on_w) st->mt4_online = (float)(on / (double)Ng);
    }
    return loss;
}

SV_DEF int sv_mt4ssl_targets(sv_model *m, sv_ctx *c, const sv_batch *bt, float **out, size_t *T)
{
    sv_w2v2_out e;
    float *t;
    int grad, training, rc;
    size_t n;
    *out = NULL;
    if (!m || !c || !bt || !bt->B) return sv__fail(SV_ERR_ARG, "mt4ssl_targets: bad arguments");
    if (!m->t_enc_ln_g) return sv__fail(SV_ERR_ARG, "this model has no MT4SSL teacher (ssl = w2v2 or mt4_online_weight = 0)");
    grad = sv_ctx_grad(c);
    training = sv_ctx_training(c);
    sv_ctx_reset(c);
    sv_ctx_set_grad(c, 0);
    sv_ctx_set_training(c, 0);
    rc = sv_w2v2_forward(m, c, bt, 0, 0, &e);
    t = rc == SV_OK ? sv__mt4ssl_target(m, c, &e) : NULL;
    if (t) {
        n = bt->B * e.T * m->cfg.D;
        if ((*out = (float *)sv__alloc(n * sizeof(float), "MT4SSL targets")) != NULL) { memcpy(*out, t, n * sizeof(float)); *T = e.T; }
    }
    rc = *out ? SV_OK : (sv_last_status() ? sv_last_status() : SV_ERR_NOMEM);
    sv_ctx_reset(c);
    sv_ctx_set_grad(c, grad);
    sv_ctx_set_training(c, training);
    return rc;
}

/* ---------------------------------------------------------------- 8.6 loss_AV */
SV_DEF sv_tensor *sv_vgs_loss_av(sv_ctx *c, sv_tensor *v, sv_tensor *a, const long *image_id, float margin, int cosine)
{
    size_t B, i, j;
    sv_tensor *S;
    float *k;
    int *tg;
    SV__IN2(v, a);
    B = v->shape[0];
    k = (float *)sv_ctx_alloc(c, B * B * sizeof(float));
    tg = (int *)sv_ctx_alloc(c, B * sizeof(int));
    if (!k || !tg) return NULL;
    if (cosine) { v = sv_l2_normalize(c, v, 1e-8f); a = sv_l2_normalize(c, a, 1e-8f); }
    S = sv_matmul(c, v, a, 0, 1);                                 /* [B,B] images x captions */
    for (i = 0; i < B; i++) {
        tg[i] = (int)i;
        for (j = 0; j < B; j++)
            k[i * B + j] = i == j ? -margin : (image_id && image_id[i] == image_id[j] ? -1e4f : 0.0f);
    }
    S = sv_add_const(c, S, k);
    return sv_add(c, sv_cross_entropy(c, S, tg, 1), sv_cross_entropy(c, sv_transpose(c, S), tg, 1));
}

/* ---------------------------------------------------------------- 8.7 the joint loss */
/* The checks of a batch before any computation, messages naming utterances by their index in
   the global batch. */
static int sv__batch_check(const sv_model *m, sv_ctx *c, const sv_batch *bt, float alpha)
{
    const sv_config *cfg = &m->cfg;
    size_t b, i, g0 = sv__sample0(c), total = c->shard ? c->shard->s.total : (bt ? bt->B : 0);
    if (!bt || bt->B == 0 || !bt->wave || !bt->wave_len) return sv__fail(SV_ERR_ARG, "empty batch");
    if (alpha < 0.0f || alpha > 1.0f || alpha != alpha) return sv__fail(SV_ERR_ARG, "alpha = %g outside [0,1]", (double)alpha);
    for (b = 0; b < bt->B; b++) {
        if (bt->wave_len[b] > bt->S) return sv__fail(SV_ERR_ARG, "utterance %zu: length %zu > batch width %zu", g0 + b, bt->wave_len[b], bt->S);
        for (i = 0; i < bt->wave_len[b]; i++)
            if (!isfinite(bt->wave[b * bt->S + i])) return sv__fail(SV_ERR_NUMERIC, "utterance %zu: sample %zu is not finite", g0 + b, i);
        if (sv_config_frames(cfg, bt->wave_len[b]) == 0)
            return sv__fail(SV_ERR_ARG, "utterance %zu is shorter than the receptive field (%zu samples < %zu)",
                            g0 + b, bt->wave_len[b], sv_config_receptive_field(cfg));
    }
    if (alpha > 0.0f) {
        if (!bt->regions || !bt->boxes) return sv__fail(SV_ERR_ARG, "alpha > 0 needs image regions and boxes");
        if (bt->R == 0) return sv__fail(SV_ERR_ARG, "images with 0 regions");
        if (bt->R != cfg->img_regions || bt->Dimg != cfg->img_dim)
            return sv__fail(SV_ERR_ARG, "images have %zu regions of %zu values; the %s config expects %zu of %zu",
                            bt->R, bt->Dimg, cfg->name, cfg->img_regions, cfg->img_dim);
        if (total < 2) return sv__fail(SV_ERR_ARG, "loss_AV needs at least 2 pairs in a batch (got 1): with one pair there are no negatives");
        for (i = 0; i < bt->B * cfg->img_regions * cfg->img_dim; i++)
            if (!isfinite(bt->regions[i])) return sv__fail(SV_ERR_NUMERIC, "image regions: value %zu is not finite", g0 * cfg->img_regions * cfg->img_dim + i);
        for (i = 0; i < bt->B * cfg->img_regions * 4; i++)
            if (!isfinite(bt->boxes[i])) return sv__fail(SV_ERR_NUMERIC, "image boxes: value %zu is not finite", g0 * cfg->img_regions * 4 + i);
    }
    return SV_OK;
}

static sv_tensor *sv__model_loss(sv_model *m, sv_ctx *c, const sv_batch *bt, float alpha, size_t step, sv_stats *st)
{
    const sv_config *cfg = &m->cfg;
    sv_w2v2_out e;
    sv_tensor *laud = NULL, *lav = NULL, *loss;
    size_t L = cfg->n_shared + cfg->n_decoder;
    int use_ssl = alpha < 1.0f, use_vgs = alpha > 0.0f;
    if (st) {
        memset(st, 0, sizeof *st);
        st->loss = st->loss_av = st->loss_aud = st->contrastive = st->accuracy = NAN;
        st->code_ppl = st->prob_ppl = st->diversity = st->feature_pen = NAN;
        st->mt4_offline = st->mt4_acc = st->mt4_online = st->target_var = st->pred_var = NAN;
    }
    /* shard mode: a batch refused by one process stops every process, with its message */
    if (sv__shard_agree(c, sv__batch_check(m, c, bt, alpha)) != SV_OK) return NULL;
    if (c->shard && bt->B != c->shard->s.count) {
        sv__fail(SV_ERR_ARG, "shard mode: a batch of %zu utterances for %zu samples", bt->B, c->shard->s.count);
        return NULL;
    }
    /* one encoder pass: masked when the SSL loss is on (the VGS branch then reads the masked
       pass, as the FaST-VGS+ trainer does); only the shared layers when alpha = 1 */
    sv_ctx_set_precision(c, cfg->precision);
    if (sv_w2v2_forward(m, c, bt, use_ssl, use_ssl ? L : cfg->n_shared, &e) != SV_OK) return NULL;
    if (use_ssl) {
        sv_ctx_set_precision(c, SV_FP32);   /* the quantizer's logits and the losses */
        /* loss_AUD: the contrastive loss, MT4SSL's, or their sum (cfg.ssl) */
        if (cfg->ssl != SV_SSL_MT4SSL && !(laud = sv_w2v2_loss(m, c, &e, step, st))) return NULL;
        if (cfg->ssl != SV_SSL_W2V2) {
            sv_tensor *l4 = sv_mt4ssl_loss(m, c, &e, bt, st);
            if (!l4) return NULL;
            laud = laud ? sv_axpby(c, 1.0f, laud, 1.0f, l4) : l4;
            if (!laud) return NULL;
        }
        /* shard mode: this process's graph holds its share only; the global loss from the parts */
        if (st && c->shard)
            st->loss_aud = (float)((cfg->ssl != SV_SSL_MT4SSL ? (double)st->loss_aud : 0.0) +
                                   (cfg->ssl != SV_SSL_W2V2 && m->mt4_off_w ? cfg->mt4_offline_weight * (double)st->mt4_offline : 0.0) +
                                   (cfg->ssl != SV_SSL_W2V2 && m->mt4_on_w ? cfg->mt4_online_weight * (double)st->mt4_online : 0.0));
        else if (st)
            st->loss_aud = laud->data[0];
    }
    if (use_vgs) {
        sv_tensor *a, *v;
        const long *ids = bt->image_id;
        sv_ctx_set_precision(c, cfg->precision);
        a = sv_vgs_audio_branch(m, c, e.hidden[cfg->n_shared], e.key_len, bt->B);  /* [B,E] */
        v = sv_vgs_image_branch(m, c, bt->regions, bt->boxes, bt->B);            /* [B,E] */
        sv_ctx_set_precision(c, SV_FP32);
        if (c->shard) {
            /* the other pairs of the global batch are the negatives: every process computes the
               whole loss on the gathered embeddings, and the gather's backward keeps the
               gradients of its own pairs */
            size_t total = c->shard->s.total, b, g0 = sv__sample0(c);
            double *li = (double *)sv_ctx_alloc(c, bt->B * sizeof(double)), *ai = (double *)sv_ctx_alloc(c, total * sizeof(double));
            long *gid = (long *)sv_ctx_alloc(c, total * sizeof(long));
            if (!li || !ai || !gid) return NULL;
            for (b = 0; b < bt->B; b++) li[b] = bt->image_id ? (double)bt->image_id[b] : -(double)(g0 + b + 1);
            if (sv__shard_gather(c, c->shard, li, 1, ai) != SV_OK) return NULL;
            for (b = 0; b < total; b++) gid[b] = (long)ai[b];
            ids = gid;
            a = sv_shard_gather(c, a);                             /* [total,E] */
            v = sv_shard_gather(c, v);
        }
        lav = sv_vgs_loss_av(c, v, a, ids, cfg->margin, cfg->sim_cosine);
        if (!lav) return NULL;
        if (st) st->loss_av = lav->data[0];
    }
    if (laud && lav) loss = sv_axpby(c, alpha, lav, 1.0f - alpha, laud);
    else loss = laud ? laud : lav;
    if (st && loss) st->loss = c->shard && laud ? (lav ? alpha * st->loss_av + (1.0f - alpha) * st->loss_aud : st->loss_aud)
                                                : loss->data[0];
    return loss;
}

/* The loss in the config's precision (the products of the encoder and branches in
   cfg->precision, the losses in fp32), leaving the context's own precision as it was. */
SV_DEF sv_tensor *sv_model_loss(sv_model *m, sv_ctx *c, const sv_batch *bt, float alpha, size_t step, sv_stats *st)
{
    int precision = sv_ctx_precision(c);
    sv_tensor *loss = sv__model_loss(m, c, bt, alpha, step, st);
    sv_ctx_set_precision(c, precision);
    return loss;
}

/* ======================================================================================
   9 Optimizer
   ====================================================================================== */
/* ---------------------------------------------------------------- 9.1 AdamW */
SV_DEF sv_adam sv_adam_default(void)
{
    sv_adam a;
    /* the EUSIPCO study: Adam lr 1e-4; BertAdam-style decoupled decay 0.01, clipping 1.0 */
    a.lr = 1e-4f; a.beta1 = 0.9f; a.beta2 = 0.98f; a.eps = 1e-6f;
    a.weight_decay = 0.01f; a.clip_norm = 1.0f; a.bias_correction = 1; a.t = 0;
    return a;
}

SV_DEF float sv_lr_schedule(float peak, size_t step, size_t warmup, size_t total)
{
    if (warmup && step < warmup) return peak * (float)(step + 1) / (float)warmup;
    if (step >= total) return 0.0f;
    return peak * (float)(total - step) / (float)(total - warmup > 0 ? total - warmup : 1);
}

SV_DEF void sv_adam_reset(sv_adam *opt, sv_params *p)
{
    memset(p->m, 0, p->n * sizeof(float));
    memset(p->v, 0, p->n * sizeof(float));
    opt->t = 0;
}

/* Sum of squares of x[0..n) in a fixed order: float partials in 16 lanes over blocks of
   SV__NORM_BLOCK elements, blocks added in double. The same bits for any thread count. */
#define SV__NORM_BLOCK 4096
static double sv__sumsq_block(const float *x, size_t n)
{
    float lane[16] = {0};
    size_t j = 0, k;
    double s = 0;
    for (; j + 16 <= n; j += 16)
        for (k = 0; k < 16; k++) lane[k] += x[j + k] * x[j + k];
    for (; j < n; j++) lane[j & 15] += x[j] * x[j];
    for (k = 0; k < 16; k++) s += lane[k];
    return s;
}

/* AdamW update of one tensor's elements [lo, hi). The vector body does the scalar body's
   operations in the same order without fusing (sqrt and division are correctly rounded), so
   both give the same bits; without it the scalar sqrtf (errno) keeps the compiler from
   vectorising the loop and the update costs twice the memory time of its 7 streams. */
static void sv__adam_range(float *SV__RESTRICT w, const float *SV__RESTRICT g, float *SV__RESTRICT m1,
                           float *SV__RESTRICT v2, size_t lo, size_t hi, float scale, float b1, float b2,
                           float bc1, float bc2, float eps, float lr, float wd)
{
    size_t j = lo;
#if SV_VW > 0
    if (sv__simd_on) {
        sv__vf vs = SV_VSET1(scale), vb1 = SV_VSET1(b1), vc1 = SV_VSET1(1.0f - b1), vb2 = SV_VSET1(b2);
        sv__vf vc2 = SV_VSET1(1.0f - b2), vbc1 = SV_VSET1(bc1), vbc2 = SV_VSET1(bc2), veps = SV_VSET1(eps);
        sv__vf vlr = SV_VSET1(lr), vwd = SV_VSET1(wd);
        for (; j + SV_VW <= hi; j += SV_VW) {
            sv__vf gj = SV_VMUL(SV_VLOADU(g + j), vs), wj = SV_VLOADU(w + j);
            sv__vf mj = SV_VADD(SV_VMUL(vb1, SV_VLOADU(m1 + j)), SV_VMUL(vc1, gj));
            sv__vf vj = SV_VADD(SV_VMUL(vb2, SV_VLOADU(v2 + j)), SV_VMUL(SV_VMUL(vc2, gj), gj));
            sv__vf u = SV_VDIV(SV_VDIV(mj, vbc1), SV_VADD(SV_VSQRT(SV_VDIV(vj, vbc2)), veps));
            SV_VSTOREU(m1 + j, mj);
            SV_VSTOREU(v2 + j, vj);
            SV_VSTOREU(w + j, SV_VSUB(wj, SV_VMUL(vlr, SV_VADD(u, SV_VMUL(vwd, wj)))));
        }
    }
#endif
    for (; j < hi; j++) {
        float gj = g[j] * scale;
        m1[j] = b1 * m1[j] + (1.0f - b1) * gj;
        v2[j] = b2 * v2[j] + (1.0f - b2) * gj * gj;
        w[j] -= lr * ((m1[j] / bc1) / (sqrtf(v2[j] / bc2) + eps) + wd * w[j]);
    }
}

/* Work units of an AdamW step: SV__NORM_BLOCK-element blocks of the active tensors, in
   declaration order, gathered SV__ADAM_UNITS at a time so that one parallel loop covers many
   tensors. Per tensor, a fork/join for each of the ~150 tensors (most below the parallel
   threshold) left the second core idle: the update ran at one core's memory bandwidth. */
#define SV__ADAM_UNITS 512
typedef struct sv__adam_unit { size_t ti, lo, hi; } sv__adam_unit;

/* The next units from tensor *ti, block *kb on (both advanced); returns how many (0: done). */
static size_t sv__adam_units(const sv_params *p, uint32_t mask, size_t *ti, size_t *kb, sv__adam_unit *u, size_t *elems)
{
    size_t n = 0;
    *elems = 0;
    for (; *ti < p->count && n < SV__ADAM_UNITS; (*ti)++, *kb = 0) {
        const sv_tensor *t = p->t[*ti];
        if (t->kind != SV_PARAM || !(mask >> t->group & 1u)) continue;
        for (; *kb * SV__NORM_BLOCK < t->n && n < SV__ADAM_UNITS; (*kb)++, n++) {
            u[n].ti = *ti;
            u[n].lo = *kb * SV__NORM_BLOCK;
            u[n].hi = t->n - u[n].lo < SV__NORM_BLOCK ? t->n : u[n].lo + SV__NORM_BLOCK;
            *elems += u[n].hi - u[n].lo;
        }
        if (*kb * SV__NORM_BLOCK < t->n) break;     /* chunk full mid-tensor: resume here */
    }
    return n;
}

SV_DEF float sv_adam_step(sv_adam *opt, sv_params *p, uint32_t mask, float lr)
{
    sv__adam_unit u[SV__ADAM_UNITS];
    double part[SV__ADAM_UNITS], norm2 = 0, s = 0;
    float scale = 1.0f, bc1 = 1.0f, bc2 = 1.0f, norm;
    size_t ti = 0, kb = 0, n, elems, j, cur = (size_t)-1;
    ptrdiff_t k;
    /* global gradient norm over the active parameters: per tensor its blocks' sums added in
       block order, then the tensors' sums in declaration order (see sv__sumsq_block) */
    while ((n = sv__adam_units(p, mask, &ti, &kb, u, &elems)) > 0) {
SV__OMP(parallel for if (elems > SV__PAR_N))
        for (k = 0; k < (ptrdiff_t)n; k++)
            part[k] = sv__sumsq_block(p->t[u[k].ti]->grad + u[k].lo, u[k].hi - u[k].lo);
        for (j = 0; j < n; j++) {
            if (u[j].ti != cur) { norm2 += s; s = 0; cur = u[j].ti; }
            s += part[j];
        }
    }
    norm2 += s;
    norm = (float)sqrt(norm2);
    if (opt->clip_norm > 0 && norm > opt->clip_norm) scale = opt->clip_norm / (norm + 1e-6f);
    opt->t++;
    if (opt->bias_correction) {
        bc1 = 1.0f - powf(opt->beta1, (float)opt->t);
        bc2 = 1.0f - powf(opt->beta2, (float)opt->t);
    }
    ti = kb = 0;
    while ((n = sv__adam_units(p, mask, &ti, &kb, u, &elems)) > 0) {
SV__OMP(parallel for if (elems > SV__PAR_N))
        for (k = 0; k < (ptrdiff_t)n; k++) {
            size_t i = u[k].ti;
            sv_tensor *t = p->t[i];
            /* decoupled weight decay (Loshchilov & Hutter 2019) on matrices and conv kernels only */
            float wd = t->ndim >= 2 ? opt->weight_decay : 0.0f;
            sv__adam_range(t->data, t->grad, p->m + p->offset[i], p->v + p->offset[i], u[k].lo, u[k].hi,
                           scale, opt->beta1, opt->beta2, bc1, bc2, opt->eps, lr, wd);
        }
    }
    return norm;
}

/* ---------------------------------------------------------------- 9.2 EMA teacher */
SV_DEF float sv_ema_decay(float start, float end, size_t step, size_t anneal)
{
    if (anneal == 0 || step >= anneal) return end;
    return (float)((double)end - ((double)end - (double)start) * (1.0 - (double)step / (double)anneal));
}

static void sv__ema_range(size_t lo, size_t hi, float *ema, const float *x, float decay)
{
    float a = 1.0f - decay;
    size_t i;
    for (i = lo; i < hi; i++) {
        float e = ema[i] * decay;   /* two roundings, as the PyTorch in-place pair */
        ema[i] = e + a * x[i];
    }
}

SV_DEF void sv_ema_update(float *ema, const float *x, size_t n, float decay)
{
    SV__BLOCKED(n, sv__ema_range(lo, hi, ema, x, decay));
}

/* ======================================================================================
   10 Data and I/O
   ====================================================================================== */
/* ---------------------------------------------------------------- 10.1 I/O helpers */

/* fsync makes the data durable before the rename publishes it. -std=c99 hides the POSIX
   declarations, so C declares the two POSIX.1 functions itself; C++ compilers define
   _GNU_SOURCE and get them from the system headers. Elsewhere only fflush is done. */
#if defined(__unix__) || defined(__APPLE__)
#if defined(__cplusplus)
#include <unistd.h>
#else
#ifndef fileno
extern int fileno(FILE *);
#endif
extern int fsync(int);
#endif
#define SV__HAVE_FSYNC 1
#endif

SV_DEF void sv_io_free(void *p) { SV_FREE(p); }

static const char *sv__nm(const char *name) { return name ? name : "<memory>"; }

/* False for NaN and +-inf (inf - inf is NaN), without depending on C99/C++ isfinite variants. */
static int sv__isfinite(double x) { return x - x == 0.0; }

/* Byte order. Every file this library reads or writes is little-endian on disk (RIFF/WAV, NPY
   '<f4', safetensors, checkpoints), on hosts of either byte order: a file written on x86 or ARM
   loads bit-identically on s390x and the reverse. So no file code reads or writes a multi-byte
   value through its in-memory representation. Single values are assembled from bytes by shifts
   (sv__rd16 .. sv__wr64, and the float views sv__rdf32 / sv__wrf32 / sv__rdf64, which move the
   IEEE-754 bit pattern); arrays go through sv__le_copy, which is memcpy on little-endian hosts
   and reverses the bytes of each element on big-endian ones; sv__fwrite_le writes an array in
   little-endian order without a copy on little-endian hosts. */
static SV__UNUSED int sv__host_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}
static SV__UNUSED uint16_t sv__rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static SV__UNUSED uint32_t sv__rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static SV__UNUSED uint64_t sv__rd64(const unsigned char *p)
{
    return (uint64_t)sv__rd32(p) | ((uint64_t)sv__rd32(p + 4) << 32);
}
static SV__UNUSED void sv__wr16(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static SV__UNUSED void sv__wr32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}
static SV__UNUSED void sv__wr64(unsigned char *p, uint64_t v) { sv__wr32(p, (uint32_t)v); sv__wr32(p + 4, (uint32_t)(v >> 32)); }
static SV__UNUSED float sv__rdf32(const unsigned char *p) { uint32_t u = sv__rd32(p); float f; memcpy(&f, &u, 4); return f; }
static SV__UNUSED void sv__wrf32(unsigned char *p, float f) { uint32_t u; memcpy(&u, &f, 4); sv__wr32(p, u); }
static SV__UNUSED double sv__rdf64(const unsigned char *p) { uint64_t u = sv__rd64(p); double d; memcpy(&d, &u, 8); return d; }

/* n values of `width` bytes (1, 2, 4 or 8) from src to dst, converting between host order and
   little-endian order (the same operation serves reading and writing). dst == src converts in
   place; other overlaps are not allowed. */
static SV__UNUSED void sv__le_copy(void *dst, const void *src, size_t n, size_t width)
{
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    size_t i, k;
    if (sv__host_le() || width == 1) {
        if (d != s && n) memcpy(d, s, n * width);
        return;
    }
    for (i = 0; i < n; i++, d += width, s += width) {
        unsigned char t[8];
        for (k = 0; k < width; k++) t[k] = s[width - 1 - k];
        memcpy(d, t, width);
    }
}

/* fwrite of n values of `width` bytes in little-endian order; 1 when all were written. */
static SV__UNUSED int sv__fwrite_le(FILE *f, const void *src, size_t n, size_t width)
{
    unsigned char chunk[4096];
    const unsigned char *s = (const unsigned char *)src;
    size_t per = sizeof chunk / width, m;
    if (sv__host_le() || width == 1) return fwrite(src, width, n, f) == n;
    for (; n; n -= m, s += m * width) {
        m = n < per ? n : per;
        sv__le_copy(chunk, s, m, width);
        if (fwrite(chunk, width, m, f) != m) return 0;
    }
    return 1;
}

static char *sv__strndup(const char *s, size_t n, const char *what)
{
    char *d = SV__CAST(char *, sv__alloc(n + 1, what));
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* Whole file into memory (one extra byte, always allocated, holds a NUL for text parsers). */
static int sv__read_file(const char *path, unsigned char **buf, size_t *len)
{
    FILE *f;
    long sz;
    int c;
    size_t n;
    unsigned char *p;
    *buf = NULL;
    *len = 0;
    if (!path) return sv__fail(SV_ERR_ARG, "NULL path");
    f = fopen(path, "rb");
    if (!f) return sv__fail(SV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* One read first: a directory opens fine on POSIX but fails here (and reports an absurd size). */
    c = getc(f);
    if (c == EOF && ferror(f)) {
        int e = errno;
        fclose(f);
        return sv__fail(SV_ERR_IO, "%s: cannot read: %s", path, strerror(e));
    }
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return sv__fail(SV_ERR_IO, "%s: cannot determine the file size", path);
    }
    n = (size_t)sz;
    if (n == SIZE_MAX) { fclose(f); return sv__fail(SV_ERR_NOMEM, "%s: file too large", path); }
    p = SV__CAST(unsigned char *, sv__alloc(n + 1, path));
    if (!p) { fclose(f); return SV_ERR_NOMEM; }
    if (fread(p, 1, n, f) != n) {
        fclose(f);
        SV_FREE(p);
        return sv__fail(SV_ERR_IO, "%s: read failed (file changed while reading?)", path);
    }
    fclose(f);
    p[n] = 0;
    *buf = p;
    *len = n;
    return SV_OK;
}

/* Replaces `to` by `from` (0 on success; -1 with the reason in why[cap]). POSIX rename does so
   atomically. Windows' rename refuses an existing target; MoveFileExA with
   MOVEFILE_REPLACE_EXISTING replaces it (atomically on NTFS) and MOVEFILE_WRITE_THROUGH returns
   once the move is on disk. The two functions are declared here, as <windows.h> declares them,
   so that <windows.h> and its macros stay out of the user's translation unit. */
#ifdef _WIN32
#ifdef __cplusplus
extern "C" {
#endif
__declspec(dllimport) int __stdcall MoveFileExA(const char *existing, const char *replacement, unsigned long flags);
__declspec(dllimport) unsigned long __stdcall GetLastError(void);
#ifdef __cplusplus
}
#endif
#endif

static int sv__rename_over(const char *from, const char *to, char *why, size_t cap)
{
#ifdef _WIN32
    if (MoveFileExA(from, to, 0x1ul | 0x8ul)) return 0;   /* REPLACE_EXISTING | WRITE_THROUGH */
    snprintf(why, cap, "Windows error %lu", GetLastError());
#else
    if (rename(from, to) == 0) return 0;
    snprintf(why, cap, "%s", strerror(errno));
#endif
    return -1;
}

/* Atomic replace: write to path.tmp, then sv__atomic_end publishes it with sv__rename_over. */
static FILE *sv__atomic_begin(const char *path, char **tmp)
{
    size_t n;
    char *t;
    FILE *f;
    *tmp = NULL;
    if (!path || !*path) { sv__fail(SV_ERR_ARG, "empty output path"); return NULL; }
    n = strlen(path);
    t = SV__CAST(char *, sv__alloc(n + 5, "temporary file name"));
    if (!t) return NULL;
    memcpy(t, path, n);
    memcpy(t + n, ".tmp", 5);
    f = fopen(t, "wb");
    if (!f) {
        sv__fail(SV_ERR_IO, "%s: cannot create: %s", t, strerror(errno));
        SV_FREE(t);
        return NULL;
    }
    *tmp = t;
    return f;
}

/* ok = 0: the caller already failed (and set the error); just discard the temporary file. */
static int sv__atomic_end(FILE *f, char *tmp, const char *path, int ok)
{
    int rc = SV_OK, e = 0; /* e: -1 failed without an errno, > 0 the errno */
    errno = 0;
    if (ok) {
        if (fflush(f) != 0 || ferror(f)) e = errno ? errno : -1;
#ifdef SV__HAVE_FSYNC
        if (!e && fsync(fileno(f)) != 0) e = errno ? errno : -1;
#endif
    }
    if (fclose(f) != 0 && ok && !e) e = errno ? errno : -1;
    if (ok && e) rc = sv__fail(SV_ERR_IO, "%s: write failed: %s", tmp, e > 0 ? strerror(e) : "I/O error");
    if (ok && !e) {
        char why[128];
        if (sv__rename_over(tmp, path, why, sizeof why) != 0)
            rc = sv__fail(SV_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, why);
    }
    if (!ok) rc = sv_last_status() ? sv_last_status() : SV_ERR_IO;
    if (rc != SV_OK) remove(tmp);
    SV_FREE(tmp);
    return rc;
}

SV_DEF int sv_file_read(const char *path, unsigned char **buf, size_t *len) { return sv__read_file(path, buf, len); }
SV_DEF FILE *sv_file_create(const char *path, char **tmp) { return sv__atomic_begin(path, tmp); }
SV_DEF int sv_file_commit(FILE *f, char *tmp, const char *path, int ok) { return sv__atomic_end(f, tmp, path, ok); }

/* Next line of a text buffer: [*s, *s + *n) without its '\n' and without one trailing '\r'.
   A last line without '\n' counts; the empty piece after a final '\n' does not. */
static int sv__next_line(const char *text, size_t len, size_t *pos, const char **s, size_t *n)
{
    const char *nl;
    size_t b = *pos, e;
    if (b >= len) return 0;
    nl = SV__CAST(const char *, memchr(text + b, '\n', len - b));
    e = nl ? (size_t)(nl - text) : len;
    *pos = nl ? e + 1 : len;
    *s = text + b;
    *n = e - b;
    if (*n && (*s)[*n - 1] == '\r') (*n)--;
    return 1;
}

static size_t sv__count_lines(const char *text, size_t len)
{
    size_t n = 1, pos = 0;
    const char *nl;
    while (pos < len && (nl = SV__CAST(const char *, memchr(text + pos, '\n', len - pos))) != NULL) {
        n++;
        pos = (size_t)(nl - text) + 1;
    }
    return n;
}

/* Offset of the first byte that is not valid UTF-8 (RFC 3629: shortest form only, no surrogates,
   at most U+10FFFF) or a NUL, or len when the whole span is fine. */
static size_t sv__utf8_bad(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, k, need;
    uint32_t cp, min;
    while (i < len) {
        unsigned c = s[i];
        if (c == 0) return i;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; min = 0x10000; }
        else return i;
        if (len - i <= need) return i;
        for (k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += need + 1;
    }
    return len;
}

/* String set over an external table of C strings: open addressing with linear probing, slots hold
   index + 1 (0 = empty). Capacity is fixed at creation to at least twice the largest key count, so
   the load stays <= 1/2 and probes always end. Hash: 64-bit FNV-1a. */
typedef struct sv__strmap { size_t *slot; size_t mask; } sv__strmap;

static int sv__strmap_init(sv__strmap *m, size_t max_keys, const char *what)
{
    size_t cap = 16;
    while (cap / 2 < max_keys) {
        if (cap > SIZE_MAX / 4) return sv__fail(SV_ERR_NOMEM, "too many %s", what);
        cap *= 2;
    }
    m->slot = SV__CAST(size_t *, sv__calloc(cap, sizeof(size_t), what));
    m->mask = cap - 1;
    return m->slot ? SV_OK : SV_ERR_NOMEM;
}

static void sv__strmap_free(sv__strmap *m) { SV_FREE(m->slot); m->slot = NULL; }

static size_t *sv__strmap_find(const sv__strmap *m, const char *const *table, const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    size_t i, k;
    for (k = 0; k < n; k++) h = (h ^ (unsigned char)s[k]) * 1099511628211ull;
    i = (size_t)(h ^ (h >> 32)) & m->mask;
    for (;;) {
        size_t v = m->slot[i];
        if (!v) return &m->slot[i];
        if (strncmp(table[v - 1], s, n) == 0 && table[v - 1][n] == 0) return &m->slot[i];
        i = (i + 1) & m->mask;
    }
}

/* Index of s[0..n) in table, appending a copy when new (the table has room: sized by the caller). */
static int sv__intern(sv__strmap *m, char **table, size_t *count, const char *s, size_t n,
                      size_t *idx, const char *what)
{
    size_t *slot = sv__strmap_find(m, (const char *const *)table, s, n);
    if (!*slot) {
        char *c = sv__strndup(s, n, what);
        if (!c) return SV_ERR_NOMEM;
        table[*count] = c;
        *slot = ++*count;
    }
    *idx = *slot - 1;
    return SV_OK;
}

/* p[0..n) is an absolute path ('/...'; on Windows also '\\...' and 'C:...'). */
static int sv__is_abs_path(const char *p, size_t n)
{
    if (n >= 1 && p[0] == '/') return 1;
#ifdef _WIN32
    if (n >= 1 && p[0] == '\\') return 1;
    if (n >= 2 && ((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z')) && p[1] == ':') return 1;
#endif
    return 0;
}

/* Length of the folder part of a path, separator included ("a/b.tsv" -> 2, "b.tsv" -> 0). */
static size_t sv__dir_len(const char *path)
{
    size_t i, n = 0;
    for (i = 0; path[i]; i++) {
        if (path[i] == '/') n = i + 1;
#ifdef _WIN32
        if (path[i] == '\\' || path[i] == ':') n = i + 1;
#endif
    }
    return n;
}

/* ---------------------------------------------------------------- 10.2 WAV */

/* One sample as a float in [-1,1]; fmt: 1 PCM, 3 IEEE float. NaN/inf come back as is. */
static double sv__wav_sample(const unsigned char *q, unsigned fmt, unsigned bits)
{
    if (fmt == 1) {
        switch (bits) {
        case 8: return ((int)q[0] - 128) * (1.0 / 128.0);
        case 16: return (double)(int16_t)sv__rd16(q) * (1.0 / 32768.0);
        case 24: {
            int32_t v = (int32_t)(q[0] | (q[1] << 8) | ((uint32_t)q[2] << 16));
            if (v & 0x800000) v -= 0x1000000; /* sign-extend the 24-bit value */
            return v * (1.0 / 8388608.0);
        }
        default: return (double)(int32_t)sv__rd32(q) * (1.0 / 2147483648.0);
        }
    }
    return bits == 32 ? (double)sv__rdf32(q) : sv__rdf64(q);
}

/* The layout of a WAV file from its headers. */
typedef struct sv__wav_layout {
    unsigned tag, channels, bits, bps;   /* format tag (1 PCM, 3 float), channels, bits, bytes per sample */
    uint32_t rate;
    size_t frame, data_off, nf;          /* bytes per frame, offset of the samples, frames */
} sv__wav_layout;

/* Walk the chunks of p [len], a prefix of a file of file_len bytes (the whole file: len ==
   file_len), and check the fmt chunk; the data chunk's payload may lie past the prefix (it is
   checked against file_len), the fmt chunk's must not. RIFF, Microsoft 1991: id[4] size[4]
   payload, padded to an even size. */
static int sv__wav_parse(const unsigned char *p, size_t len, size_t file_len, const char *nm, sv__wav_layout *w)
{
    /* KSDATAFORMAT_SUBTYPE_{PCM,IEEE_FLOAT} = tag-0000-0010-8000-00AA00389B71: the bytes after the tag */
    static const unsigned char guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                                0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
    const unsigned char *fmt = NULL;
    size_t fmt_len = 0, data_len = 0, data_off = 0, pos = 12, frame;
    unsigned tag, channels, bits, block, bps;
    uint32_t rate;
    int have_data = 0;

    memset(w, 0, sizeof *w);
    if (file_len < 12)
        return sv__fail(SV_ERR_FORMAT, "%s: not a WAV file (%zu bytes, shorter than a RIFF header)", nm, file_len);
    if (memcmp(p, "RIFX", 4) == 0)
        return sv__fail(SV_ERR_FORMAT, "%s: big-endian WAV (RIFX) is not supported", nm);
    if (memcmp(p, "RF64", 4) == 0)
        return sv__fail(SV_ERR_FORMAT, "%s: RF64 (64-bit WAV) is not supported", nm);
    if (memcmp(p, "RIFF", 4) != 0 || memcmp(p + 8, "WAVE", 4) != 0)
        return sv__fail(SV_ERR_FORMAT, "%s: not a WAV file (no RIFF/WAVE header)", nm);

    while (!(fmt && have_data) && file_len - pos >= 8) {
        const unsigned char *id = p + pos;
        size_t csize, avail = file_len - pos - 8;
        if (pos + 8 > len) return sv__fail(SV_ERR_FORMAT, "%s: a chunk header lies past the first %zu bytes", nm, len);
        csize = sv__rd32(p + pos + 4);
        if (csize > avail) {
            char ids[5];
            int k;
            for (k = 0; k < 4; k++) ids[k] = (id[k] >= 32 && id[k] < 127) ? (char)id[k] : '?';
            ids[4] = 0;
            return sv__fail(SV_ERR_FORMAT, "%s: truncated: chunk '%s' declares %zu bytes, only %zu remain",
                            nm, ids, csize, avail);
        }
        if (!fmt && memcmp(id, "fmt ", 4) == 0) {
            if (csize > len - pos - 8) return sv__fail(SV_ERR_FORMAT, "%s: the fmt chunk lies past the first %zu bytes", nm, len);
            fmt = id + 8; fmt_len = csize;
        } else if (!have_data && memcmp(id, "data", 4) == 0) {
            data_off = pos + 8; data_len = csize; have_data = 1;
        }
        pos += 8 + csize;
        if ((csize & 1) && pos < file_len) pos++;
    }
    if (!fmt) return sv__fail(SV_ERR_FORMAT, "%s: no fmt chunk", nm);
    if (!have_data) return sv__fail(SV_ERR_FORMAT, "%s: no data chunk (truncated?)", nm);
    if (fmt_len < 16) return sv__fail(SV_ERR_FORMAT, "%s: fmt chunk too short (%zu bytes)", nm, fmt_len);

    tag = sv__rd16(fmt);
    channels = sv__rd16(fmt + 2);
    rate = sv__rd32(fmt + 4);
    block = sv__rd16(fmt + 12);
    bits = sv__rd16(fmt + 14);
    if (tag == 0xFFFE) { /* WAVE_FORMAT_EXTENSIBLE: the real tag is the start of the sub-format GUID */
        if (fmt_len < 40 || sv__rd16(fmt + 16) < 22)
            return sv__fail(SV_ERR_FORMAT, "%s: WAVE_FORMAT_EXTENSIBLE fmt chunk too short", nm);
        if (memcmp(fmt + 26, guid_tail, 14) != 0)
            return sv__fail(SV_ERR_FORMAT, "%s: unknown WAVE_FORMAT_EXTENSIBLE sub-format GUID", nm);
        tag = sv__rd16(fmt + 24);
    }
    if (tag != 1 && tag != 3)
        return sv__fail(SV_ERR_FORMAT, "%s: unsupported encoding (format tag 0x%04x); PCM or IEEE float required",
                        nm, tag);
    if (channels == 0) return sv__fail(SV_ERR_FORMAT, "%s: 0 channels", nm);
    if (rate == 0 || rate > 0x7fffffffu)
        return sv__fail(SV_ERR_FORMAT, "%s: invalid sample rate %lu Hz", nm, (unsigned long)rate);
    if (tag == 1 && bits != 8 && bits != 16 && bits != 24 && bits != 32)
        return sv__fail(SV_ERR_FORMAT, "%s: unsupported PCM bit depth %u (8, 16, 24 or 32 required)", nm, bits);
    if (tag == 3 && bits != 32 && bits != 64)
        return sv__fail(SV_ERR_FORMAT, "%s: unsupported float bit depth %u (32 or 64 required)", nm, bits);
    bps = bits / 8;
    frame = (size_t)channels * bps;
    if (block != frame)
        return sv__fail(SV_ERR_FORMAT, "%s: block align %u does not match %u channels x %u bytes", nm, block,
                        channels, bps);
    if (data_len % frame)
        return sv__fail(SV_ERR_FORMAT,
                        "%s: truncated: data chunk of %zu bytes is not a whole number of %zu-byte frames",
                        nm, data_len, frame);
    w->tag = tag; w->channels = channels; w->bits = bits; w->bps = bps; w->rate = rate;
    w->frame = frame; w->data_off = data_off; w->nf = data_len / frame;
    return SV_OK;
}

SV_DEF int sv_wav_decode(const void *buf, size_t len, const char *name,
                         float **samples, size_t *n_samples, int *sample_rate)
{
    const unsigned char *p = SV__CAST(const unsigned char *, buf), *data;
    const char *nm = sv__nm(name);
    size_t frame, nf, bytes, i;
    unsigned tag, channels, bits, bps, c;
    uint32_t rate;
    float *out;
    sv__wav_layout w;
    int rc;

    if (!samples || !n_samples) return sv__fail(SV_ERR_ARG, "sv_wav_decode: NULL output pointer");
    *samples = NULL;
    *n_samples = 0;
    if (sample_rate) *sample_rate = 0;
    if (!p && len) return sv__fail(SV_ERR_ARG, "sv_wav_decode: NULL buffer");
    if (len < 12)
        return sv__fail(SV_ERR_FORMAT, "%s: not a WAV file (%zu bytes, shorter than a RIFF header)", nm, len);
    if ((rc = sv__wav_parse(p, len, len, nm, &w)) != SV_OK) return rc;
    tag = w.tag; channels = w.channels; bits = w.bits; bps = w.bps; rate = w.rate; frame = w.frame;
    data = p + w.data_off;
    nf = w.nf;
    if (!sv__mul_ok(nf ? nf : 1, sizeof(float), &bytes))
        return sv__fail(SV_ERR_NOMEM, "%s: too many samples", nm);
    out = SV__CAST(float *, sv__alloc(bytes, "WAV samples"));
    if (!out) return SV_ERR_NOMEM;
    if (tag == 1 && bits == 16 && channels == 1) {
        /* The common case (16 kHz mono 16-bit corpora) in one tight loop; the scaling is exact. */
        for (i = 0; i < nf; i++) out[i] = (float)(int16_t)sv__rd16(data + 2 * i) * (1.0f / 32768.0f);
    } else {
        double inv_ch = 1.0 / channels;
        for (i = 0; i < nf; i++) {
            const unsigned char *q = data + i * frame;
            double acc = 0.0;
            for (c = 0; c < channels; c++, q += bps) {
                double v = sv__wav_sample(q, tag, bits);
                if (tag == 3) {
                    if (!sv__isfinite(v)) {
                        SV_FREE(out);
                        return sv__fail(SV_ERR_NUMERIC, "%s: sample %zu of channel %u is not finite", nm, i, c);
                    }
                    v = v > 1.0 ? 1.0 : v < -1.0 ? -1.0 : v;
                }
                acc += v;
            }
            out[i] = (float)(channels == 1 ? acc : acc * inv_ch);
        }
    }
    *samples = out;
    *n_samples = nf;
    if (sample_rate) *sample_rate = (int)rate;
    return SV_OK;
}

SV_DEF int sv_wav_read(const char *path, float **samples, size_t *n_samples, int *sample_rate)
{
    unsigned char *buf;
    size_t len;
    int rc;
    if (samples) *samples = NULL;
    if (n_samples) *n_samples = 0;
    if (sample_rate) *sample_rate = 0;
    rc = sv__read_file(path, &buf, &len);
    if (rc) return rc;
    rc = sv_wav_decode(buf, len, path, samples, n_samples, sample_rate);
    SV_FREE(buf);
    return rc;
}

SV_DEF int sv_wav_load_16k(const char *path, float **samples, size_t *n_samples)
{
    float *y;
    size_t m;
    int rate = 0, rc = sv_wav_read(path, samples, n_samples, &rate);
    if (rc || rate == 16000) return rc;
    rc = sv_resample(*samples, *n_samples, rate, 16000, &y, &m);
    SV_FREE(*samples);
    *samples = rc ? NULL : y;
    *n_samples = rc ? 0 : m;
    return rc;
}

static int sv__resample_count(size_t n, int rate_in, int rate_out, size_t *count);   /* 10.3 */

SV_DEF int sv_wav_length_16k(const char *path, size_t *n_samples)
{
    /* the headers of a WAV file are within its first few hundred bytes (fmt, fact, LIST, then
       data); 64 KB leaves room for long metadata chunks */
    enum { HEAD = 65536 };
    unsigned char *head;
    size_t got, file_len;
    long sz;
    FILE *f;
    sv__wav_layout w;
    int rc;
    if (!n_samples) return sv__fail(SV_ERR_ARG, "sv_wav_length_16k: NULL output");
    *n_samples = 0;
    if (!path) return sv__fail(SV_ERR_ARG, "NULL path");
    if (!(f = fopen(path, "rb"))) return sv__fail(SV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!(head = SV__CAST(unsigned char *, sv__alloc(HEAD, "WAV header")))) { fclose(f); return SV_ERR_NOMEM; }
    got = fread(head, 1, HEAD, f);
    if (ferror(f) || fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0) {
        fclose(f);
        SV_FREE(head);
        return sv__fail(SV_ERR_IO, "%s: cannot read (a folder?)", path);
    }
    fclose(f);
    file_len = (size_t)sz;
    rc = got < 12 || got > file_len
             ? sv__fail(SV_ERR_FORMAT, "%s: not a WAV file (%zu bytes, shorter than a RIFF header)", path, file_len)
             : sv__wav_parse(head, got, file_len, path, &w);
    SV_FREE(head);
    if (rc != SV_OK) return rc;
    if (w.rate == 16000) { *n_samples = w.nf; return SV_OK; }
    return sv__resample_count(w.nf, (int)w.rate, 16000, n_samples);
}

/* fmt_tag 1: 16-bit PCM; 3: float32. Canonical 44-byte header (PCM) or fmt(18)+fact (float). */
static int sv__wav_write(const char *path, const float *x, size_t n, int rate, unsigned fmt_tag)
{
    unsigned char hdr[58], chunk[4096 * 4];
    size_t bps = fmt_tag == 1 ? 2 : 4, hlen = fmt_tag == 1 ? 44 : 58, data_bytes, i, j, m;
    char *tmp;
    FILE *f;
    int ok = 1;
    if (!x && n) return sv__fail(SV_ERR_ARG, "%s: NULL samples", path ? path : "wav");
    if (rate <= 0) return sv__fail(SV_ERR_ARG, "%s: invalid sample rate %d", path ? path : "wav", rate);
    for (i = 0; i < n; i++) {
        if (x[i] != x[i] || (fmt_tag == 3 && !sv__isfinite(x[i])))
            return sv__fail(SV_ERR_NUMERIC, "%s: sample %zu is not finite", path ? path : "wav", i);
    }
    if (n > (0xFFFFFFFFu - hlen) / bps)
        return sv__fail(SV_ERR_ARG, "%s: %zu samples exceed the 4 GiB limit of WAV", path ? path : "wav", n);
    data_bytes = n * bps;
    memcpy(hdr, "RIFF", 4);
    sv__wr32(hdr + 4, (uint32_t)(hlen - 8 + data_bytes));
    memcpy(hdr + 8, "WAVEfmt ", 8);
    sv__wr32(hdr + 16, fmt_tag == 1 ? 16 : 18);
    sv__wr16(hdr + 20, fmt_tag);
    sv__wr16(hdr + 22, 1);
    sv__wr32(hdr + 24, (uint32_t)rate);
    sv__wr32(hdr + 28, (uint32_t)((size_t)rate * bps));
    sv__wr16(hdr + 32, (uint32_t)bps);
    sv__wr16(hdr + 34, (uint32_t)(bps * 8));
    if (fmt_tag == 1) {
        memcpy(hdr + 36, "data", 4);
        sv__wr32(hdr + 40, (uint32_t)data_bytes);
    } else {
        sv__wr16(hdr + 36, 0); /* cbSize */
        memcpy(hdr + 38, "fact", 4);
        sv__wr32(hdr + 42, 4);
        sv__wr32(hdr + 46, (uint32_t)n);
        memcpy(hdr + 50, "data", 4);
        sv__wr32(hdr + 54, (uint32_t)data_bytes);
    }
    f = sv__atomic_begin(path, &tmp);
    if (!f) return sv_last_status();
    if (fwrite(hdr, 1, hlen, f) != hlen) ok = 0;
    for (i = 0; ok && i < n; i += m) {
        m = n - i < 4096 ? n - i : 4096;
        for (j = 0; j < m; j++) {
            float v = x[i + j];
            if (fmt_tag == 1) {
                /* in double, where v * 32767 and + 0.5 are exact: the same sample on every host
                   (float arithmetic rounds v * 32767 first, and hosts that evaluate float
                   expressions in double or x87 precision, s390x and i686, would not) */
                double t;
                int s;
                v = v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v;
                t = (double)v * 32767.0;
                s = t >= 0.0 ? (int)(t + 0.5) : -(int)(0.5 - t);
                sv__wr16(chunk + 2 * j, (uint32_t)(uint16_t)(int16_t)s);
            } else {
                sv__wrf32(chunk + 4 * j, v);
            }
        }
        if (fwrite(chunk, bps, m, f) != m) ok = 0;
    }
    if (!ok) sv__fail(SV_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    return sv__atomic_end(f, tmp, path, ok);
}

SV_DEF int sv_wav_write(const char *path, const float *samples, size_t n, int sample_rate)
{
    return sv__wav_write(path, samples, n, sample_rate, 1);
}

SV_DEF int sv_wav_write_float(const char *path, const float *samples, size_t n, int sample_rate)
{
    return sv__wav_write(path, samples, n, sample_rate, 3);
}

/* ---------------------------------------------------------------- 10.3 resampling */
#define SV__RS_ZEROS 64          /* zero crossings of the sinc on each side */
#define SV__RS_CUTOFF 0.955      /* cutoff as a fraction of the lower Nyquist frequency */
#define SV__RS_MAX_TABLE 4096    /* phases kept in a table */
#ifndef SV__PI
#define SV__PI 3.14159265358979323846
#endif

/* Modified Bessel function of the first kind, order 0 (power series; converges for all x). */
static double sv__bessel_i0(double x)
{
    double s = 1.0, term = 1.0, q = x * x / 4.0;
    int k;
    for (k = 1; k < 500 && term > 1e-17 * s; k++) {
        term *= q / ((double)k * (double)k);
        s += term;
    }
    return s;
}

static uint64_t sv__gcd(uint64_t a, uint64_t b)
{
    while (b) { uint64_t t = a % b; a = b; b = t; }
    return a;
}

/* The taps of one phase: weights of x[q + k], k = 1 - J .. J, for an output at input time
   q + frac, normalised to sum 1. fc: cutoff in cycles per input sample; W: half-width. */
static double sv__rs_tap(double t, double fc, double W, double beta, double i0b)
{
    double r = t / W, a = 2.0 * SV__PI * fc * t;
    if (!(r > -1.0 && r < 1.0)) return 0.0;
    return 2.0 * fc * (t == 0.0 ? 1.0 : sin(a) / a) * sv__bessel_i0(beta * sqrt(1.0 - r * r)) / i0b;
}

static void sv__rs_phase(double frac, double fc, double W, size_t J, double beta, double i0b, float *taps)
{
    double sum = 0.0;
    size_t k;
    for (k = 0; k < 2 * J; k++) sum += sv__rs_tap(frac - ((double)k + 1.0 - (double)J), fc, W, beta, i0b);
    for (k = 0; k < 2 * J; k++) taps[k] = (float)(sv__rs_tap(frac - ((double)k + 1.0 - (double)J), fc, W, beta, i0b) / sum);
}

/* The output length of sv_resample: ceil(n L / M) for the reduced ratio L / M, without overflow
   (n < 2^63 and L < 2^31 could still overflow a u64). */
static int sv__resample_count(size_t n, int rate_in, int rate_out, size_t *count)
{
    uint64_t g = sv__gcd((uint64_t)rate_in, (uint64_t)rate_out), L = (uint64_t)rate_out / g, M = (uint64_t)rate_in / g;
    uint64_t whole = (uint64_t)n / M, rest = (uint64_t)n % M, c;
    if (whole > (UINT64_MAX / 2) / L) return sv__fail(SV_ERR_ARG, "sv_resample: %zu samples is too long", n);
    c = whole * L + (rest * L + M - 1) / M;
    if (c > (uint64_t)SIZE_MAX) return sv__fail(SV_ERR_ARG, "sv_resample: %zu samples is too long", n);
    *count = (size_t)c;
    return SV_OK;
}

SV_DEF int sv_resample(const float *x, size_t n, int rate_in, int rate_out, float **y, size_t *n_out)
{
    uint64_t g, L, M, p = 0;
    size_t m, count = 0, J, q = 0, i;
    double fc, W, i0b = sv__bessel_i0(SV_RESAMPLE_BETA);
    float *out, *table = NULL, *taps = NULL;
    if (!y || !n_out) return sv__fail(SV_ERR_ARG, "sv_resample: NULL output pointer");
    *y = NULL;
    *n_out = 0;
    if (rate_in <= 0 || rate_out <= 0) return sv__fail(SV_ERR_ARG, "sv_resample: invalid rates %d -> %d Hz", rate_in, rate_out);
    if (!x && n) return sv__fail(SV_ERR_ARG, "sv_resample: NULL input");
    g = sv__gcd((uint64_t)rate_in, (uint64_t)rate_out);
    L = (uint64_t)rate_out / g;
    M = (uint64_t)rate_in / g;
    if (sv__resample_count(n, rate_in, rate_out, &count) != SV_OK) return SV_ERR_ARG;
    out = SV__CAST(float *, sv__alloc((count ? count : 1) * sizeof(float), "resampled audio"));
    if (!out) return SV_ERR_NOMEM;
    if (L == M) {
        if (n) memcpy(out, x, n * sizeof(float));
        *y = out;
        *n_out = n;
        return SV_OK;
    }
    fc = 0.5 * SV__RS_CUTOFF * (L < M ? (double)L / (double)M : 1.0);
    W = SV__RS_ZEROS / (2.0 * fc);
    J = (size_t)ceil(W);
    if (J > 4096) { SV_FREE(out); return sv__fail(SV_ERR_ARG, "sv_resample: ratio %d/%d too extreme", rate_out, rate_in); }
    if (L <= SV__RS_MAX_TABLE) {
        size_t ph;
        table = SV__CAST(float *, sv__alloc((size_t)L * 2 * J * sizeof(float), "resampler table"));
        if (!table) { SV_FREE(out); return SV_ERR_NOMEM; }
        for (ph = 0; ph < (size_t)L; ph++) sv__rs_phase((double)ph / (double)L, fc, W, J, SV_RESAMPLE_BETA, i0b, table + ph * 2 * J);
    } else {
        taps = SV__CAST(float *, sv__alloc(2 * J * sizeof(float), "resampler taps"));
        if (!taps) { SV_FREE(out); return SV_ERR_NOMEM; }
    }
    /* output m sits at input time m M / L = q + p / L, stepped without forming m M */
    for (m = 0; m < count; m++) {
        const float *h;
        if (table) h = table + (size_t)p * 2 * J;
        else { sv__rs_phase((double)p / (double)L, fc, W, J, SV_RESAMPLE_BETA, i0b, taps); h = taps; }
        if (q + 1 >= J && q + J < n) {
            out[m] = sv_dot(x + (q + 1 - J), h, 2 * J);
        } else {   /* near the ends: samples outside the input are 0 */
            double acc = 0.0;
            for (i = 0; i < 2 * J; i++) {
                size_t j = q + i;   /* x index + J - 1 */
                if (j + 1 >= J && j + 1 - J < n) acc += (double)h[i] * x[j + 1 - J];
            }
            out[m] = (float)acc;
        }
        p += M;
        q += (size_t)(p / L);
        p %= L;
    }
    SV_FREE(table);
    SV_FREE(taps);
    *y = out;
    *n_out = count;
    return SV_OK;
}

/* ---------------------------------------------------------------- 10.4 NPY */
/* Format (numpy NEP 1 / numpy.lib.format): "\x93NUMPY", major, minor, header length (uint16 LE
   in 1.0, uint32 LE in 2.0/3.0), then an ASCII (3.0: UTF-8) Python dict literal padded with spaces
   and a '\n', then the raw array data. */

typedef struct sv__npy_info {
    int ndim, big; /* big: big-endian data */
    size_t shape[4], count, itemsize, data_off, data_bytes;
} sv__npy_info;

static void sv__npy_ws(const char *s, size_t n, size_t *i)
{
    while (*i < n && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\n' || s[*i] == '\r')) (*i)++;
}

/* A quoted Python string without escapes into out[cap]. */
static int sv__npy_str(const char *s, size_t n, size_t *i, char *out, size_t cap, const char *nm)
{
    char q;
    size_t k = 0;
    if (*i >= n || (s[*i] != '\'' && s[*i] != '"'))
        return sv__fail(SV_ERR_FORMAT, "%s: malformed NPY header: expected a quoted string at byte %zu", nm, *i);
    q = s[(*i)++];
    while (*i < n && s[*i] != q) {
        unsigned char c = (unsigned char)s[*i];
        if (c == '\\' || c < 32 || c > 126 || k + 1 >= cap)
            return sv__fail(SV_ERR_FORMAT, "%s: malformed NPY header: unexpected string at byte %zu", nm, *i);
        out[k++] = (char)c;
        (*i)++;
    }
    if (*i >= n) return sv__fail(SV_ERR_FORMAT, "%s: malformed NPY header: unterminated string", nm);
    (*i)++;
    out[k] = 0;
    return SV_OK;
}

static int sv__npy_dict(const char *s, size_t n, const char *nm, sv__npy_info *info)
{
    char key[32], descr[32] = "";
    size_t i = 0, k;
    int have_descr = 0, have_fo = 0, have_shape = 0, fortran = 0, rc;
    info->ndim = 0;
    sv__npy_ws(s, n, &i);
    if (i >= n || s[i] != '{') return sv__fail(SV_ERR_FORMAT, "%s: malformed NPY header: no '{'", nm);
    i++;
    for (;;) {
        sv__npy_ws(s, n, &i);
        if (i < n && s[i] == '}') { i++; break; }
        if ((rc = sv__npy_str(s, n, &i, key, sizeof key, nm)) != 0) return rc;
        sv__npy_ws(s, n, &i);
        if (i >= n || s[i] != ':')
            return sv__fail(SV_ERR_FORMAT, "%s: malformed NPY header: expected ':' after '%s'", nm, key);
        i++;
        sv__npy_ws(s, n, &i);
        if (strcmp(key, "descr") == 0 && !have_descr) {
            if (i < n && s[i] == '[')
                return sv__fail(SV_ERR_FORMAT, "%s: structured NPY dtypes are not supported", nm);
            if ((rc = sv__npy_str(s, n, &i, descr, sizeof descr, nm)) != 0) return rc;
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !have_fo) {
            if (n - i >= 4 && memcmp(s + i, "True", 4) == 0) { fortran = 1; i += 4; }
            else if (n - i >= 5 && memcmp(s + i, "False", 5) == 0) { fortran = 0; i += 5; }
            else return sv__fail(SV_ERR_FORMAT, "%s: malformed NPY header: fortran_order must be True or False", nm);
            have_fo = 1;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            if (i >= n || s[i] != '(')
                return sv__fail(SV_ERR_FORMAT, "%s: malformed NPY header: shape is not a tuple", nm);
            i++;
            for (;;) {
                size_t v = 0;
                sv__npy_ws(s, n, &i);
                if (i < n && s[i] == ')') { i++; break; }
                if (i >= n || s[i] < '0' || s[i] > '9')
                    return sv__fail(SV_ERR_FORMAT, "%s: malformed NPY header: bad shape entry at byte %zu", nm, i);
                while (i < n && s[i] >= '0' && s[i] <= '9') {
                    if (v > (SIZE_MAX - 9) / 10)
                        return sv__fail(SV_ERR_FORMAT, "%s: NPY shape too large (an entry exceeds this %u-bit build's size_t)", nm,
                                        (unsigned)(sizeof(size_t) * 8));
                    v = v * 10 + (size_t)(s[i++] - '0');
                }
                if (i < n && s[i] == 'L') i++; /* Python 2 long literal */
                if (info->ndim == 4)
                    return sv__fail(SV_ERR_FORMAT, "%s: NPY arrays of more than 4 dimensions are not supported", nm);
                info->shape[info->ndim++] = v;
                sv__npy_ws(s, n, &i);
                if (i < n && s[i] == ',') { i++; continue; }
                if (i < n && s[i] == ')') { i++; break; }
                return sv__fail(SV_ERR_FORMAT, "%s: malformed NPY header: bad shape tuple at byte %zu", nm, i);
            }
            have_shape = 1;
        } else if (!strcmp(key, "descr") || !strcmp(key, "fortran_order") || !strcmp(key, "shape")) {
            return sv__fail(SV_ERR_FORMAT, "%s: malformed NPY header: key '%s' appears twice", nm, key);
        } else {
            return sv__fail(SV_ERR_FORMAT, "%s: unexpected key '%s' in the NPY header", nm, key);
        }
        sv__npy_ws(s, n, &i);
        if (i < n && s[i] == ',') { i++; continue; }
        if (i < n && s[i] == '}') { i++; break; }
        return sv__fail(SV_ERR_FORMAT, "%s: malformed NPY header: expected ',' or '}' at byte %zu", nm, i);
    }
    sv__npy_ws(s, n, &i);
    if (i != n) return sv__fail(SV_ERR_FORMAT, "%s: malformed NPY header: junk after the dictionary", nm);
    if (!have_descr || !have_fo || !have_shape)
        return sv__fail(SV_ERR_FORMAT, "%s: NPY header lacks '%s'", nm,
                        !have_descr ? "descr" : !have_fo ? "fortran_order" : "shape");
    if (fortran)
        return sv__fail(SV_ERR_FORMAT, "%s: fortran_order=True arrays are not supported; save a C-order array "
                        "(numpy.ascontiguousarray)", nm);
    if ((descr[0] != '<' && descr[0] != '>') || descr[1] != 'f' || (strcmp(descr + 2, "4") && strcmp(descr + 2, "8")))
        return sv__fail(SV_ERR_FORMAT, "%s: NPY dtype '%s' not supported (float32 '<f4' or float64 '<f8' required)",
                        nm, descr);
    info->big = descr[0] == '>';
    info->itemsize = descr[2] == '4' ? 4 : 8;
    info->count = 1;
    for (k = 0; k < (size_t)info->ndim; k++)
        if (!sv__mul_ok(info->count, info->shape[k], &info->count))
            return sv__fail(SV_ERR_FORMAT, "%s: NPY shape too large (element count overflows)", nm);
    if (!sv__mul_ok(info->count, info->itemsize, &info->data_bytes))
        return sv__fail(SV_ERR_FORMAT, "%s: NPY shape too large (byte count overflows)", nm);
    for (k = (size_t)info->ndim; k < 4; k++) info->shape[k] = 1;
    return SV_OK;
}

/* Magic and header length from the first bytes (10 are enough for 1.0, 12 for 2.0/3.0). */
static int sv__npy_preamble(const unsigned char *p, size_t len, const char *nm, size_t *hdr_off, size_t *hdr_len)
{
    if (len < 8 || memcmp(p, "\x93NUMPY", 6) != 0)
        return sv__fail(SV_ERR_FORMAT, "%s: not an NPY file (bad magic)", nm);
    if (p[6] == 1) { *hdr_off = 10; }
    else if (p[6] == 2 || p[6] == 3) { *hdr_off = 12; }
    else return sv__fail(SV_ERR_FORMAT, "%s: unsupported NPY format version %u.%u", nm, p[6], p[7]);
    if (len < *hdr_off) return sv__fail(SV_ERR_FORMAT, "%s: truncated NPY header", nm);
    *hdr_len = *hdr_off == 10 ? sv__rd16(p + 8) : sv__rd32(p + 8);
    return SV_OK;
}

/* Validates the whole header against total (the input size); fills info. */
static int sv__npy_header(const unsigned char *p, size_t avail, size_t total, const char *nm, sv__npy_info *info)
{
    size_t off = 0, hlen = 0;
    int rc = sv__npy_preamble(p, avail, nm, &off, &hlen);
    if (rc) return rc;
    if (hlen > total - off)
        return sv__fail(SV_ERR_FORMAT, "%s: truncated: NPY header declares %zu bytes, only %zu remain", nm, hlen,
                        total - off);
    if (avail < off + hlen) return sv__fail(SV_ERR_FORMAT, "%s: truncated NPY header", nm); /* caller bug guard */
    rc = sv__npy_dict((const char *)(p + off), hlen, nm, info);
    if (rc) return rc;
    info->data_off = off + hlen;
    if (info->data_bytes > total - info->data_off)
        return sv__fail(SV_ERR_FORMAT, "%s: truncated: NPY data needs %zu bytes, only %zu present", nm,
                        info->data_bytes, total - info->data_off);
    if (info->data_bytes < total - info->data_off)
        return sv__fail(SV_ERR_FORMAT, "%s: %zu trailing bytes after the NPY data", nm,
                        total - info->data_off - info->data_bytes);
    return SV_OK;
}

static void sv__npy_convert(const unsigned char *src, size_t count, const sv__npy_info *info, float *dst)
{
    size_t i;
    /* Bytes are assembled by shifts, so this works on hosts of either byte order. */
    if (info->itemsize == 4) {
        for (i = 0; i < count; i++, src += 4) {
            uint32_t u = info->big
                             ? ((uint32_t)src[0] << 24 | (uint32_t)src[1] << 16 | (uint32_t)src[2] << 8 | src[3])
                             : sv__rd32(src);
            memcpy(dst + i, &u, 4);
        }
    } else {
        for (i = 0; i < count; i++, src += 8) {
            uint64_t u;
            double d;
            if (info->big) {
                int k;
                u = 0;
                for (k = 0; k < 8; k++) u = (u << 8) | src[k];
            } else {
                u = sv__rd64(src);
            }
            memcpy(&d, &u, 8);
            dst[i] = (float)d;
        }
    }
}

static int sv__npy_out(const sv__npy_info *info, const char *nm, float **data)
{
    size_t bytes;
    if (!sv__mul_ok(info->count ? info->count : 1, sizeof(float), &bytes))
        return sv__fail(SV_ERR_NOMEM, "%s: NPY array too large", nm);
    *data = SV__CAST(float *, sv__alloc(bytes, "NPY data"));
    return *data ? SV_OK : SV_ERR_NOMEM;
}

SV_DEF int sv_npy_decode(const void *buf, size_t len, const char *name, float **data, size_t shape[4], int *ndim)
{
    const unsigned char *p = SV__CAST(const unsigned char *, buf);
    const char *nm = sv__nm(name);
    sv__npy_info info;
    int rc, k;
    if (!data || !shape || !ndim) return sv__fail(SV_ERR_ARG, "sv_npy_decode: NULL output pointer");
    *data = NULL;
    *ndim = 0;
    for (k = 0; k < 4; k++) shape[k] = 0;
    if (!p && len) return sv__fail(SV_ERR_ARG, "sv_npy_decode: NULL buffer");
    rc = sv__npy_header(p, len, len, nm, &info);
    if (rc) return rc;
    rc = sv__npy_out(&info, nm, data);
    if (rc) return rc;
    sv__npy_convert(p + info.data_off, info.count, &info, *data);
    *ndim = info.ndim;
    for (k = 0; k < 4; k++) shape[k] = info.shape[k];
    return SV_OK;
}

/* Open an NPY file and read its preamble and header (not the data): *f is left at the start of
   the data, info says where it is and what it holds. */
static int sv__npy_open(const char *path, FILE **fp, sv__npy_info *info)
{
    unsigned char pre[12], *hdr = NULL;
    size_t got, off = 0, hlen = 0, total;
    FILE *f;
    long sz;
    int rc;
    *fp = NULL;
    if (!path) return sv__fail(SV_ERR_ARG, "NULL path");
    f = fopen(path, "rb");
    if (!f) return sv__fail(SV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    got = fread(pre, 1, sizeof pre, f);
    if (got == 0 && ferror(f)) { rc = sv__fail(SV_ERR_IO, "%s: cannot read: %s", path, strerror(errno)); goto done; }
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rc = sv__fail(SV_ERR_IO, "%s: cannot determine the file size", path);
        goto done;
    }
    total = (size_t)sz;
    if ((rc = sv__npy_preamble(pre, got, path, &off, &hlen)) != 0) goto done;
    if (hlen > total - off) {
        rc = sv__fail(SV_ERR_FORMAT, "%s: truncated: NPY header declares %zu bytes, only %zu remain", path, hlen,
                      total - off);
        goto done;
    }
    hdr = SV__CAST(unsigned char *, sv__alloc(off + hlen, "NPY header"));
    if (!hdr) { rc = SV_ERR_NOMEM; goto done; }
    if (fread(hdr, 1, off + hlen, f) != off + hlen) { rc = sv__fail(SV_ERR_IO, "%s: read failed", path); goto done; }
    rc = sv__npy_header(hdr, off + hlen, total, path, info);
done:
    SV_FREE(hdr);
    if (rc) fclose(f);
    else *fp = f;
    return rc;
}

/* count values from f (at the data) into dst, through a 64 KiB buffer: big feature files are
   never held twice. */
static int sv__npy_values(FILE *f, const char *path, const sv__npy_info *info, size_t count, float *dst)
{
    unsigned char *chunk = SV__CAST(unsigned char *, sv__alloc(65536, "NPY read buffer"));
    size_t done, m;
    if (!chunk) return SV_ERR_NOMEM;
    for (done = 0; done < count; done += m) {
        m = count - done;
        if (m > 65536 / info->itemsize) m = 65536 / info->itemsize;
        if (fread(chunk, info->itemsize, m, f) != m) {
            SV_FREE(chunk);
            return sv__fail(SV_ERR_IO, "%s: read failed (file changed while reading?)", path);
        }
        sv__npy_convert(chunk, m, info, dst + done);
    }
    SV_FREE(chunk);
    return SV_OK;
}

SV_DEF int sv_npy_read(const char *path, float **data, size_t shape[4], int *ndim)
{
    sv__npy_info info;
    FILE *f;
    int rc, k;
    if (!data || !shape || !ndim) return sv__fail(SV_ERR_ARG, "sv_npy_read: NULL output pointer");
    *data = NULL;
    *ndim = 0;
    for (k = 0; k < 4; k++) shape[k] = 0;
    if ((rc = sv__npy_open(path, &f, &info)) != SV_OK) return rc;
    if ((rc = sv__npy_out(&info, path, data)) == SV_OK) rc = sv__npy_values(f, path, &info, info.count, *data);
    fclose(f);
    if (rc) { SV_FREE(*data); *data = NULL; return rc; }
    *ndim = info.ndim;
    for (k = 0; k < 4; k++) shape[k] = info.shape[k];
    return SV_OK;
}

/* Rows [row, row + n) of an NPY file whose layout sv__npy_open gave (a row: the product of the
   dimensions after the first), into dst: one seek and one read, for data left on disk. */
static int sv__npy_read_rows(const char *path, const sv__npy_info *info, size_t row, size_t n, float *dst)
{
    size_t per = info->ndim > 1 ? info->count / (info->shape[0] ? info->shape[0] : 1) : 1, off;
    FILE *f;
    int rc;
    if (info->ndim < 1 || row > info->shape[0] || n > info->shape[0] - row)
        return sv__fail(SV_ERR_ARG, "%s: rows [%zu, %zu) of %zu", path, row, row + n, info->ndim ? info->shape[0] : 0);
    off = info->data_off + row * per * info->itemsize;
    if (!(f = fopen(path, "rb"))) return sv__fail(SV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* fseek takes a long: a file past 2 GB on an LP32/LLP64 host is read forward in 1 GB steps */
    rc = fseek(f, 0, SEEK_SET);
    while (rc == 0 && off > 0) {
        size_t step = off > ((size_t)1 << 30) ? ((size_t)1 << 30) : off;
        rc = fseek(f, (long)step, SEEK_CUR);
        off -= step;
    }
    rc = rc != 0 ? sv__fail(SV_ERR_IO, "%s: cannot seek to row %zu", path, row) : sv__npy_values(f, path, info, n * per, dst);
    fclose(f);
    return rc;
}

SV_DEF int sv_npy_write(const char *path, const float *data, const size_t shape[4], int ndim)
{
    char hdr[256];
    size_t count = 1, len, pad;
    int k, ok = 1;
    char *tmp;
    FILE *f;
    if (ndim < 0 || ndim > 4 || (ndim && !shape))
        return sv__fail(SV_ERR_ARG, "%s: sv_npy_write needs 0 to 4 dimensions, got %d", path ? path : "npy", ndim);
    for (k = 0; k < ndim; k++)
        if (!sv__mul_ok(count, shape[k], &count) || count > SIZE_MAX / 4)
            return sv__fail(SV_ERR_ARG, "%s: shape too large", path ? path : "npy");
    if (!data && count) return sv__fail(SV_ERR_ARG, "%s: NULL data", path ? path : "npy");
    /* numpy's own layout: dict, spaces, '\n', total (10-byte preamble + dict) a multiple of 64. */
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    len = 10;
    len += (size_t)sprintf(hdr + len, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (k = 0; k < ndim; k++) len += (size_t)sprintf(hdr + len, k ? ", %zu" : "%zu", shape[k]);
    len += (size_t)sprintf(hdr + len, "%s), }", ndim == 1 ? "," : "");
    pad = 63 - (len % 64); /* spaces, then the final '\n' makes the total a multiple of 64 */
    memset(hdr + len, ' ', pad);
    len += pad;
    hdr[len++] = '\n';
    sv__wr16((unsigned char *)hdr + 8, (uint32_t)(len - 10));
    f = sv__atomic_begin(path, &tmp);
    if (!f) return sv_last_status();
    if (fwrite(hdr, 1, len, f) != len) ok = 0;
    if (ok && !sv__fwrite_le(f, data, count, 4)) ok = 0;
    if (!ok) sv__fail(SV_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    return sv__atomic_end(f, tmp, path, ok);
}

/* ---------------------------------------------------------------- 10.5 safetensors */
/* A strict JSON reader (RFC 8259) for the safetensors header and Hugging Face's config.json. The
   text is parsed once into a flat array of nodes in document order; a node's children follow it,
   and `end` is the index just past its subtree, so a walk needs no pointers. Strings stay as raw
   spans of the text (escapes checked at parse time, decoded on demand). Nesting is limited to
   SV__JSON_DEPTH levels, so hostile input cannot exhaust the stack. */
enum { SV__J_NULL, SV__J_FALSE, SV__J_TRUE, SV__J_NUM, SV__J_STR, SV__J_ARR, SV__J_OBJ };
#define SV__JSON_DEPTH 64

typedef struct sv__jnode {
    int type;
    size_t key, key_len;    /* object members: the key's raw span (inside the quotes) */
    size_t at, len;         /* the value's raw span (strings: inside the quotes) */
    size_t end;             /* index of the first node after this subtree */
} sv__jnode;

typedef struct sv__jp {
    const char *s;
    size_t n, pos;
    sv__jnode *node;
    size_t count, cap;
    const char *nm, *what;  /* file name and "header" / "config" for messages */
} sv__jp;

static int sv__jp_err(sv__jp *j, const char *msg)
{
    return sv__fail(SV_ERR_FORMAT, "%s: malformed JSON %s: %s at byte %zu", j->nm, j->what, msg, j->pos);
}

static void sv__jp_ws(sv__jp *j)
{
    while (j->pos < j->n && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' || j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
        j->pos++;
}

static int sv__jp_hex4(const char *s, uint32_t *v)
{
    int k;
    *v = 0;
    for (k = 0; k < 4; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return 0;
        *v = (*v << 4) | (uint32_t)d;
    }
    return 1;
}

/* A string starting at the opening quote: *at and *len get the raw span inside the quotes. */
static int sv__jp_string(sv__jp *j, size_t *at, size_t *len)
{
    j->pos++;
    *at = j->pos;
    while (j->pos < j->n) {
        unsigned char c = (unsigned char)j->s[j->pos];
        if (c == '"') { *len = j->pos - *at; j->pos++; return SV_OK; }
        if (c < 0x20) return sv__jp_err(j, "control character in a string");
        if (c == '\\') {
            char e;
            if (j->pos + 1 >= j->n) break;
            e = j->s[j->pos + 1];
            if (e == 'u') {
                uint32_t v, w;
                if (j->n - j->pos < 6 || !sv__jp_hex4(j->s + j->pos + 2, &v)) return sv__jp_err(j, "bad \\u escape");
                j->pos += 6;
                if (v >= 0xDC00 && v <= 0xDFFF) return sv__jp_err(j, "lone low surrogate");
                if (v >= 0xD800 && v <= 0xDBFF) {   /* must be followed by \uDC00..\uDFFF */
                    if (j->n - j->pos < 6 || j->s[j->pos] != '\\' || j->s[j->pos + 1] != 'u' ||
                        !sv__jp_hex4(j->s + j->pos + 2, &w) || w < 0xDC00 || w > 0xDFFF)
                        return sv__jp_err(j, "lone high surrogate");
                    j->pos += 6;
                }
                continue;
            }
            if (e == 0 || !strchr("\"\\/bfnrt", e)) return sv__jp_err(j, "bad escape");
            j->pos += 2;
            continue;
        }
        j->pos++;
    }
    return sv__jp_err(j, "unterminated string");
}

/* Decodes the raw string span into out (NUL-terminated, cap >= len + 1 always suffices: escapes
   never decode longer than they are written). A \u0000 makes it fail (C strings cannot hold it). */
static int sv__jp_unescape(const char *s, size_t len, char *out)
{
    size_t i = 0, o = 0;
    while (i < len) {
        char c = s[i];
        uint32_t v, w;
        if (c != '\\') { out[o++] = c; i++; continue; }
        c = s[i + 1];
        i += 2;
        switch (c) {
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u':
            sv__jp_hex4(s + i, &v);
            i += 4;
            if (v >= 0xD800 && v <= 0xDBFF) {
                sv__jp_hex4(s + i + 2, &w);
                i += 6;
                v = 0x10000 + ((v - 0xD800) << 10) + (w - 0xDC00);
            }
            if (v == 0) return 0;
            if (v < 0x80) out[o++] = (char)v;
            else if (v < 0x800) { out[o++] = (char)(0xC0 | (v >> 6)); out[o++] = (char)(0x80 | (v & 0x3F)); }
            else if (v < 0x10000) {
                out[o++] = (char)(0xE0 | (v >> 12)); out[o++] = (char)(0x80 | ((v >> 6) & 0x3F));
                out[o++] = (char)(0x80 | (v & 0x3F));
            } else {
                out[o++] = (char)(0xF0 | (v >> 18)); out[o++] = (char)(0x80 | ((v >> 12) & 0x3F));
                out[o++] = (char)(0x80 | ((v >> 6) & 0x3F)); out[o++] = (char)(0x80 | (v & 0x3F));
            }
            break;
        default: out[o++] = c; break;   /* " \ / */
        }
    }
    out[o] = 0;
    return 1;
}

/* The decoded string as a new allocation (NULL and an error when it holds \u0000). */
static char *sv__jp_strdup(sv__jp *j, size_t at, size_t len)
{
    char *d = SV__CAST(char *, sv__alloc(len + 1, "JSON string"));
    if (!d) return NULL;
    if (!sv__jp_unescape(j->s + at, len, d)) {
        SV_FREE(d);
        j->pos = at;
        sv__jp_err(j, "\\u0000 in a string");
        return NULL;
    }
    return d;
}

static int sv__jp_number(sv__jp *j)
{
    size_t p = j->pos;
    if (p < j->n && j->s[p] == '-') p++;
    if (p >= j->n || j->s[p] < '0' || j->s[p] > '9') return sv__jp_err(j, "bad number");
    if (j->s[p] == '0') p++;
    else while (p < j->n && j->s[p] >= '0' && j->s[p] <= '9') p++;
    if (p < j->n && j->s[p] == '.') {
        p++;
        if (p >= j->n || j->s[p] < '0' || j->s[p] > '9') return sv__jp_err(j, "bad number");
        while (p < j->n && j->s[p] >= '0' && j->s[p] <= '9') p++;
    }
    if (p < j->n && (j->s[p] == 'e' || j->s[p] == 'E')) {
        p++;
        if (p < j->n && (j->s[p] == '+' || j->s[p] == '-')) p++;
        if (p >= j->n || j->s[p] < '0' || j->s[p] > '9') return sv__jp_err(j, "bad number");
        while (p < j->n && j->s[p] >= '0' && j->s[p] <= '9') p++;
    }
    j->pos = p;
    return SV_OK;
}

static int sv__jp_push(sv__jp *j, int type, size_t key, size_t key_len, size_t *idx)
{
    if (j->count == j->cap) {
        size_t nc = j->cap ? j->cap * 2 : 64;
        sv__jnode *nn;
        if (nc > SIZE_MAX / sizeof(sv__jnode)) return sv__fail(SV_ERR_NOMEM, "%s: JSON %s too large", j->nm, j->what);
        nn = SV__CAST(sv__jnode *, SV_MALLOC(nc * sizeof(sv__jnode)));
        if (!nn) return sv__fail(SV_ERR_NOMEM, "%s: out of memory parsing the JSON %s", j->nm, j->what);
        if (j->count) memcpy(nn, j->node, j->count * sizeof(sv__jnode));
        SV_FREE(j->node);
        j->node = nn;
        j->cap = nc;
    }
    *idx = j->count++;
    j->node[*idx].type = type;
    j->node[*idx].key = key;
    j->node[*idx].key_len = key_len;
    j->node[*idx].at = j->pos;
    j->node[*idx].len = 0;
    j->node[*idx].end = *idx + 1;
    return SV_OK;
}

static int sv__jp_value(sv__jp *j, size_t key, size_t key_len, int depth)
{
    size_t idx, at, len;
    int rc;
    char c;
    sv__jp_ws(j);
    if (j->pos >= j->n) return sv__jp_err(j, "unexpected end");
    if (depth > SV__JSON_DEPTH) return sv__jp_err(j, "nested too deeply");
    c = j->s[j->pos];
    if (c == '{' || c == '[') {
        int obj = c == '{';
        if ((rc = sv__jp_push(j, obj ? SV__J_OBJ : SV__J_ARR, key, key_len, &idx)) != SV_OK) return rc;
        j->pos++;
        sv__jp_ws(j);
        if (j->pos < j->n && j->s[j->pos] == (obj ? '}' : ']')) j->pos++;
        else
            for (;;) {
                size_t k = 0, kl = 0;
                if (obj) {
                    sv__jp_ws(j);
                    if (j->pos >= j->n || j->s[j->pos] != '"') return sv__jp_err(j, "expected a key");
                    if ((rc = sv__jp_string(j, &k, &kl)) != SV_OK) return rc;
                    sv__jp_ws(j);
                    if (j->pos >= j->n || j->s[j->pos] != ':') return sv__jp_err(j, "expected ':'");
                    j->pos++;
                }
                if ((rc = sv__jp_value(j, k, kl, depth + 1)) != SV_OK) return rc;
                sv__jp_ws(j);
                if (j->pos < j->n && j->s[j->pos] == ',') { j->pos++; continue; }
                if (j->pos < j->n && j->s[j->pos] == (obj ? '}' : ']')) { j->pos++; break; }
                return sv__jp_err(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            }
        j->node[idx].len = j->pos - j->node[idx].at;
        j->node[idx].end = j->count;
        return SV_OK;
    }
    if (c == '"') {
        if ((rc = sv__jp_string(j, &at, &len)) != SV_OK) return rc;
        if ((rc = sv__jp_push(j, SV__J_STR, key, key_len, &idx)) != SV_OK) return rc;
        j->node[idx].at = at;
        j->node[idx].len = len;
        return SV_OK;
    }
    at = j->pos;
    if (j->n - j->pos >= 4 && memcmp(j->s + j->pos, "null", 4) == 0) { j->pos += 4; rc = sv__jp_push(j, SV__J_NULL, key, key_len, &idx); }
    else if (j->n - j->pos >= 4 && memcmp(j->s + j->pos, "true", 4) == 0) { j->pos += 4; rc = sv__jp_push(j, SV__J_TRUE, key, key_len, &idx); }
    else if (j->n - j->pos >= 5 && memcmp(j->s + j->pos, "false", 5) == 0) { j->pos += 5; rc = sv__jp_push(j, SV__J_FALSE, key, key_len, &idx); }
    else {
        if ((rc = sv__jp_number(j)) != SV_OK) return rc;
        rc = sv__jp_push(j, SV__J_NUM, key, key_len, &idx);
    }
    if (rc != SV_OK) return rc;
    j->node[idx].at = at;
    j->node[idx].len = j->pos - at;
    return SV_OK;
}

/* Parses s[0..n) (valid UTF-8 without NUL bytes, one value, whitespace around it). */
static int sv__jp_parse(sv__jp *j, const char *s, size_t n, const char *nm, const char *what)
{
    size_t bad;
    int rc;
    memset(j, 0, sizeof *j);
    j->s = s; j->n = n; j->nm = nm; j->what = what;
    bad = sv__utf8_bad(s, n);
    if (bad < n) {
        j->pos = bad;
        return sv__jp_err(j, s[bad] ? "invalid UTF-8" : "NUL byte");
    }
    if ((rc = sv__jp_value(j, 0, 0, 0)) != SV_OK) { SV_FREE(j->node); j->node = NULL; return rc; }
    sv__jp_ws(j);
    if (j->pos != n) { rc = sv__jp_err(j, "text after the value"); SV_FREE(j->node); j->node = NULL; return rc; }
    return SV_OK;
}

static void sv__jp_free(sv__jp *j) { SV_FREE(j->node); j->node = NULL; j->count = 0; }

/* Does the raw key of node i equal the C string key? (compares decoded, escapes included) */
static int sv__jp_key_is(const sv__jp *j, size_t i, const char *key)
{
    const sv__jnode *nd = &j->node[i];
    size_t kl = strlen(key);
    if (!memchr(j->s + nd->key, '\\', nd->key_len)) return nd->key_len == kl && memcmp(j->s + nd->key, key, kl) == 0;
    {
        char buf[256];
        if (nd->key_len >= sizeof buf || !sv__jp_unescape(j->s + nd->key, nd->key_len, buf)) return 0;
        return strcmp(buf, key) == 0;
    }
}

/* Child of object node obj with the given key, or 0 (node 0 is the root, never a child). */
static size_t sv__jp_get(const sv__jp *j, size_t obj, const char *key)
{
    size_t c;
    if (j->node[obj].type != SV__J_OBJ) return 0;
    for (c = obj + 1; c < j->node[obj].end; c = j->node[c].end)
        if (sv__jp_key_is(j, c, key)) return c;
    return 0;
}

/* A non-negative integer node (no sign, fraction or exponent) that fits in uint64. */
static int sv__jp_u64(const sv__jp *j, size_t i, uint64_t *v)
{
    const sv__jnode *nd = &j->node[i];
    size_t k;
    *v = 0;
    if (nd->type != SV__J_NUM || nd->len == 0) return 0;
    for (k = 0; k < nd->len; k++) {
        char c = j->s[nd->at + k];
        if (c < '0' || c > '9') return 0;
        if (*v > (UINT64_MAX - (uint64_t)(c - '0')) / 10) return 0;
        *v = *v * 10 + (uint64_t)(c - '0');
    }
    return 1;
}

/* A number node as a double (strtod on a NUL-terminated copy; the "C" locale is assumed). */
static int sv__jp_double(const sv__jp *j, size_t i, double *v)
{
    char buf[64];
    const sv__jnode *nd = &j->node[i];
    if (nd->type != SV__J_NUM || nd->len >= sizeof buf) return 0;
    memcpy(buf, j->s + nd->at, nd->len);
    buf[nd->len] = 0;
    *v = strtod(buf, NULL);
    return sv__isfinite(*v);
}

/* Duplicate keys in object node obj: the first repeated (decoded) key into dup, or 0 if none. */
static int sv__jp_dup_key(sv__jp *j, size_t obj, char *dup, size_t cap, int *found)
{
    size_t c, n = 0, i;
    char **keys;
    sv__strmap map;
    int rc = SV_OK;
    map.slot = NULL;
    map.mask = 0;
    *found = 0;
    for (c = obj + 1; c < j->node[obj].end; c = j->node[c].end) n++;
    if (n < 2) return SV_OK;
    keys = SV__CAST(char **, sv__calloc(n, sizeof(char *), "JSON keys"));
    if (!keys) return SV_ERR_NOMEM;
    if ((rc = sv__strmap_init(&map, n, "JSON keys")) != SV_OK) { SV_FREE(keys); return rc; }
    for (c = obj + 1, i = 0; c < j->node[obj].end && !*found; c = j->node[c].end, i++) {
        size_t *slot;
        if (!(keys[i] = sv__jp_strdup(j, j->node[c].key, j->node[c].key_len))) { rc = sv_last_status(); break; }
        slot = sv__strmap_find(&map, (const char *const *)keys, keys[i], strlen(keys[i]));
        if (*slot) { *found = 1; snprintf(dup, cap, "%s", keys[i]); }
        else *slot = i + 1;
    }
    for (i = 0; i < n; i++) SV_FREE(keys[i]);
    SV_FREE(keys);
    sv__strmap_free(&map);
    return rc;
}

/* ---- the safetensors header */
typedef struct sv__st_dtype { const char *name; size_t size; int kind; } sv__st_dtype;
enum { SV__ST_SKIP, SV__ST_F32, SV__ST_F16, SV__ST_BF16, SV__ST_F64 };
static const sv__st_dtype sv__st_dtypes[] = {
    {"F32", 4, SV__ST_F32}, {"F16", 2, SV__ST_F16}, {"BF16", 2, SV__ST_BF16}, {"F64", 8, SV__ST_F64},
    {"BOOL", 1, SV__ST_SKIP}, {"U8", 1, SV__ST_SKIP}, {"I8", 1, SV__ST_SKIP}, {"F8_E4M3", 1, SV__ST_SKIP},
    {"F8_E5M2", 1, SV__ST_SKIP}, {"U16", 2, SV__ST_SKIP}, {"I16", 2, SV__ST_SKIP}, {"U32", 4, SV__ST_SKIP},
    {"I32", 4, SV__ST_SKIP}, {"U64", 8, SV__ST_SKIP}, {"I64", 8, SV__ST_SKIP}};

typedef struct sv__st_entry { size_t begin, end, index; int dt; } sv__st_entry;

static int sv__st_cmp(const void *a, const void *b)
{
    const sv__st_entry *x = (const sv__st_entry *)a, *y = (const sv__st_entry *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;   /* stable for empty tensors */
}

SV_DEF void sv_safetensors_free(sv_safetensors *st)
{
    size_t i;
    if (!st) return;
    for (i = 0; i < st->n; i++) { SV_FREE(st->t[i].name); SV_FREE(st->t[i].data); }
    for (i = 0; i < st->n_meta; i++) { SV_FREE(st->meta_key[i]); SV_FREE(st->meta_value[i]); }
    SV_FREE(st->t); SV_FREE(st->meta_key); SV_FREE(st->meta_value);
    memset(st, 0, sizeof *st);
}

/* Parses and validates the header text hdr[0..hlen) against data_len bytes of data. Fills st
   (names, dtypes, shapes; no data) in offset order and ent[i] (offsets, dtype index) alike. */
static int sv__st_header(const char *hdr, size_t hlen, size_t data_len, const char *nm, sv_safetensors *st,
                         sv__st_entry **ent_out)
{
    sv__jp j;
    sv__st_entry *ent = NULL;
    sv_st_tensor *tt = NULL;
    size_t c, n = 0, i, k, prev_end = 0;
    char dup[256];
    int rc, found;
    memset(st, 0, sizeof *st);
    *ent_out = NULL;
    if (hlen == 0 || hdr[0] != '{')
        return sv__fail(SV_ERR_FORMAT, "%s: not a safetensors file (the header does not start with '{')", nm);
    if ((rc = sv__jp_parse(&j, hdr, hlen, nm, "header")) != SV_OK) return rc;
    if ((rc = sv__jp_dup_key(&j, 0, dup, sizeof dup, &found)) != SV_OK) goto fail;
    if (found) { rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", nm, dup); goto fail; }
    for (c = 1; c < j.node[0].end; c = j.node[c].end) if (!sv__jp_key_is(&j, c, "__metadata__")) n++;
    ent = SV__CAST(sv__st_entry *, sv__calloc(n ? n : 1, sizeof *ent, "safetensors entries"));
    tt = SV__CAST(sv_st_tensor *, sv__calloc(n ? n : 1, sizeof *tt, "safetensors tensors"));
    if (!ent || !tt) { rc = SV_ERR_NOMEM; goto fail; }
    for (c = 1, i = 0; c < j.node[0].end; c = j.node[c].end) {
        size_t f, dtn = 0, shn = 0, ofn = 0, numel = 1, bytes;
        uint64_t b, e;
        char *name;
        if (sv__jp_key_is(&j, c, "__metadata__")) {
            size_t m, nm_ = 0;
            if (j.node[c].type == SV__J_NULL) continue;
            if (j.node[c].type != SV__J_OBJ) { rc = sv__fail(SV_ERR_FORMAT, "%s: __metadata__ is not an object", nm); goto fail; }
            if ((rc = sv__jp_dup_key(&j, c, dup, sizeof dup, &found)) != SV_OK) goto fail;
            if (found) { rc = sv__fail(SV_ERR_FORMAT, "%s: metadata key '%s' appears twice", nm, dup); goto fail; }
            for (m = c + 1; m < j.node[c].end; m = j.node[m].end) nm_++;
            if (!nm_) continue;
            st->meta_key = SV__CAST(char **, sv__calloc(nm_, sizeof(char *), "metadata"));
            st->meta_value = SV__CAST(char **, sv__calloc(nm_, sizeof(char *), "metadata"));
            if (!st->meta_key || !st->meta_value) { rc = SV_ERR_NOMEM; goto fail; }
            for (m = c + 1; m < j.node[c].end; m = j.node[m].end) {
                if (j.node[m].type != SV__J_STR) {
                    char *kk = sv__jp_strdup(&j, j.node[m].key, j.node[m].key_len);
                    rc = sv__fail(SV_ERR_FORMAT, "%s: metadata value of '%s' is not a string", nm, kk ? kk : "?");
                    SV_FREE(kk);
                    goto fail;
                }
                st->meta_key[st->n_meta] = sv__jp_strdup(&j, j.node[m].key, j.node[m].key_len);
                st->meta_value[st->n_meta] = sv__jp_strdup(&j, j.node[m].at, j.node[m].len);
                st->n_meta++;
                if (!st->meta_key[st->n_meta - 1] || !st->meta_value[st->n_meta - 1]) { rc = sv_last_status(); goto fail; }
            }
            continue;
        }
        if (!(name = sv__jp_strdup(&j, j.node[c].key, j.node[c].key_len))) { rc = sv_last_status(); goto fail; }
        tt[i].name = name;
        ent[i].index = i;
        if (!*name) { rc = sv__fail(SV_ERR_FORMAT, "%s: a tensor with an empty name", nm); goto fail; }
        if (j.node[c].type != SV__J_OBJ) { rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s': not an object", nm, name); goto fail; }
        if ((rc = sv__jp_dup_key(&j, c, dup, sizeof dup, &found)) != SV_OK) goto fail;
        if (found) { rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s': field '%s' appears twice", nm, name, dup); goto fail; }
        for (f = c + 1; f < j.node[c].end; f = j.node[f].end) {
            if (sv__jp_key_is(&j, f, "dtype")) dtn = f;
            else if (sv__jp_key_is(&j, f, "shape")) shn = f;
            else if (sv__jp_key_is(&j, f, "data_offsets")) ofn = f;
            else {
                char *kk = sv__jp_strdup(&j, j.node[f].key, j.node[f].key_len);
                rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s': unknown field '%s'", nm, name, kk ? kk : "?");
                SV_FREE(kk);
                goto fail;
            }
        }
        if (!dtn || !shn || !ofn) {
            rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s' has no '%s'", nm, name, !dtn ? "dtype" : !shn ? "shape" : "data_offsets");
            goto fail;
        }
        ent[i].dt = -1;
        if (j.node[dtn].type == SV__J_STR)
            for (k = 0; k < sizeof sv__st_dtypes / sizeof sv__st_dtypes[0]; k++)
                if (j.node[dtn].len == strlen(sv__st_dtypes[k].name) &&
                    memcmp(j.s + j.node[dtn].at, sv__st_dtypes[k].name, j.node[dtn].len) == 0)
                    ent[i].dt = (int)k;
        if (ent[i].dt < 0) {
            rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s': unknown dtype %.*s", nm, name,
                          (int)(j.node[dtn].len < 40 ? j.node[dtn].len : 40), j.s + j.node[dtn].at);
            goto fail;
        }
        strcpy(tt[i].dtype, sv__st_dtypes[ent[i].dt].name);
        if (j.node[shn].type != SV__J_ARR) { rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s': shape is not a list", nm, name); goto fail; }
        for (f = shn + 1; f < j.node[shn].end; f = j.node[f].end) {
            uint64_t d;
            if (!sv__jp_u64(&j, f, &d)) {
                rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s': shape entries must be non-negative integers", nm, name);
                goto fail;
            }
            if (d > SIZE_MAX) {   /* a 32-bit build */
                rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s': shape entry %llu overflows this %u-bit build's size_t", nm, name,
                              (unsigned long long)d, (unsigned)(sizeof(size_t) * 8));
                goto fail;
            }
            if (tt[i].ndim == SV_ST_MAX_DIMS) {
                rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s': more than %d dimensions", nm, name, SV_ST_MAX_DIMS);
                goto fail;
            }
            tt[i].shape[tt[i].ndim++] = (size_t)d;
            if (!sv__mul_ok(numel, (size_t)d, &numel)) { rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s': shape overflows", nm, name); goto fail; }
        }
        tt[i].numel = numel;
        if (j.node[ofn].type != SV__J_ARR || j.node[ofn].end != ofn + 3 || !sv__jp_u64(&j, ofn + 1, &b) ||
            !sv__jp_u64(&j, ofn + 2, &e)) {
            rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end]", nm, name);
            goto fail;
        }
        if (!sv__mul_ok(numel, sv__st_dtypes[ent[i].dt].size, &bytes)) {
            rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s': byte count overflows", nm, name);
            goto fail;
        }
        if (e < b || e - b != (uint64_t)bytes) {
            rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, its %s shape needs %zu",
                          nm, name, (unsigned long long)b, (unsigned long long)e, (unsigned long long)(e >= b ? e - b : 0),
                          tt[i].dtype, bytes);
            goto fail;
        }
        if (e > (uint64_t)data_len) {
            rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] beyond the %zu bytes of data (truncated?)",
                          nm, name, (unsigned long long)b, (unsigned long long)e, data_len);
            goto fail;
        }
        ent[i].begin = (size_t)b;
        ent[i].end = (size_t)e;
        i++;
    }
    /* contiguous from 0, no gaps, no overlaps, nothing after the last tensor */
    qsort(ent, n, sizeof *ent, sv__st_cmp);
    for (i = 0; i < n; i++) {
        if (ent[i].begin != prev_end) {
            rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s' starts at byte %zu of the data, expected %zu (%s)", nm,
                          tt[ent[i].index].name, ent[i].begin, prev_end, ent[i].begin < prev_end ? "overlap" : "gap");
            goto fail;
        }
        prev_end = ent[i].end;
    }
    if (prev_end != data_len) {
        rc = sv__fail(SV_ERR_FORMAT, "%s: %zu bytes of data after the last tensor", nm, data_len - prev_end);
        goto fail;
    }
    /* tensors in offset order */
    st->t = SV__CAST(sv_st_tensor *, sv__calloc(n ? n : 1, sizeof *st->t, "safetensors tensors"));
    if (!st->t) { rc = SV_ERR_NOMEM; goto fail; }
    for (i = 0; i < n; i++) { st->t[i] = tt[ent[i].index]; tt[ent[i].index].name = NULL; }
    st->n = n;
    SV_FREE(tt);
    sv__jp_free(&j);
    *ent_out = ent;
    return SV_OK;
fail:
    if (tt) for (i = 0; i < n; i++) SV_FREE(tt[i].name);
    SV_FREE(tt);
    SV_FREE(ent);
    sv__jp_free(&j);
    sv_safetensors_free(st);
    return rc;
}

/* IEEE 754 binary16 -> float, exactly (every half is a float). */
static float sv__half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, ex = (h >> 10) & 0x1F, man = h & 0x3FF, u;
    float f;
    if (ex == 0x1F) u = sign | 0x7F800000u | (man << 13);                  /* inf, NaN */
    else if (ex) u = sign | ((ex + 112) << 23) | (man << 13);              /* normal: rebias 15 -> 127 */
    else if (man) {                                                        /* subnormal: man * 2^-24 */
        f = (float)man * 5.9604644775390625e-08f;
        return sign ? -f : f;
    } else u = sign;
    memcpy(&f, &u, 4);
    return f;
}

/* count values of dtype dt from little-endian bytes src into dst. 0 when an F64 value does not
   fit a float (*bad gets its index). */
static int sv__st_convert(const unsigned char *src, size_t count, int dt, float *dst, size_t *bad)
{
    size_t i;
    switch (sv__st_dtypes[dt].kind) {
    case SV__ST_F32:
        for (i = 0; i < count; i++) { uint32_t u = sv__rd32(src + 4 * i); memcpy(dst + i, &u, 4); }
        break;
    case SV__ST_BF16:
        for (i = 0; i < count; i++) { uint32_t u = (uint32_t)sv__rd16(src + 2 * i) << 16; memcpy(dst + i, &u, 4); }
        break;
    case SV__ST_F16:
        for (i = 0; i < count; i++) dst[i] = sv__half_to_float(sv__rd16(src + 2 * i));
        break;
    case SV__ST_F64:
        for (i = 0; i < count; i++) {
            uint64_t u = sv__rd64(src + 8 * i);
            double d;
            memcpy(&d, &u, 8);
            if (d == d && (d > 3.4028234663852886e38 || d < -3.4028234663852886e38) && sv__isfinite(d)) { *bad = i; return 0; }
            dst[i] = (float)d;   /* finite in range, inf or NaN: all convert */
        }
        break;
    default: break;
    }
    return 1;
}

static int sv__st_alloc_data(sv_safetensors *st, const sv__st_entry *ent, size_t i, const char *nm)
{
    size_t bytes;
    if (sv__st_dtypes[ent[i].dt].kind == SV__ST_SKIP) return SV_OK;
    if (!sv__mul_ok(st->t[i].numel ? st->t[i].numel : 1, sizeof(float), &bytes))
        return sv__fail(SV_ERR_NOMEM, "%s: tensor '%s' too large", nm, st->t[i].name);
    st->t[i].data = SV__CAST(float *, sv__alloc(bytes, "safetensors tensor"));
    return st->t[i].data ? SV_OK : SV_ERR_NOMEM;
}

/* u64 header length and its checks against the input size. */
static int sv__st_preamble(const unsigned char *p, size_t total, const char *nm, size_t *hlen)
{
    uint64_t h;
    if (total < 8) return sv__fail(SV_ERR_FORMAT, "%s: not a safetensors file (%zu bytes)", nm, total);
    h = sv__rd64(p);
    if (h > SV_ST_MAX_HEADER)
        return sv__fail(SV_ERR_FORMAT, "%s: not a safetensors file (header length %llu exceeds the 100 MB limit)", nm,
                        (unsigned long long)h);
    if (h > (uint64_t)(total - 8))
        return sv__fail(SV_ERR_FORMAT, "%s: truncated: the header declares %llu bytes, only %zu follow", nm,
                        (unsigned long long)h, total - 8);
    *hlen = (size_t)h;
    return SV_OK;
}

SV_DEF int sv_safetensors_decode(const void *buf, size_t len, const char *name, sv_safetensors *st)
{
    const unsigned char *p = SV__CAST(const unsigned char *, buf);
    const char *nm = sv__nm(name);
    sv__st_entry *ent = NULL;
    size_t hlen = 0, i, bad = 0;
    int rc;
    if (!st) return sv__fail(SV_ERR_ARG, "sv_safetensors_decode: NULL output");
    memset(st, 0, sizeof *st);
    if (!p && len) return sv__fail(SV_ERR_ARG, "sv_safetensors_decode: NULL buffer");
    if ((rc = sv__st_preamble(p, len, nm, &hlen)) != SV_OK) return rc;
    if ((rc = sv__st_header((const char *)p + 8, hlen, len - 8 - hlen, nm, st, &ent)) != SV_OK) return rc;
    for (i = 0; i < st->n; i++) {
        if ((rc = sv__st_alloc_data(st, ent, i, nm)) != SV_OK) break;
        if (st->t[i].data && !sv__st_convert(p + 8 + hlen + ent[i].begin, st->t[i].numel, ent[i].dt, st->t[i].data, &bad)) {
            rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s': F64 value %zu is beyond the float range", nm, st->t[i].name, bad);
            break;
        }
    }
    SV_FREE(ent);
    if (rc != SV_OK) sv_safetensors_free(st);
    return rc;
}

SV_DEF int sv_safetensors_read(const char *path, sv_safetensors *st)
{
    unsigned char pre[8], *chunk = NULL;
    char *hdr = NULL;
    sv__st_entry *ent = NULL;
    size_t total, hlen = 0, i, got, bad = 0;
    FILE *f;
    long sz;
    int rc;
    if (!st) return sv__fail(SV_ERR_ARG, "sv_safetensors_read: NULL output");
    memset(st, 0, sizeof *st);
    if (!path) return sv__fail(SV_ERR_ARG, "NULL path");
    f = fopen(path, "rb");
    if (!f) return sv__fail(SV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    got = fread(pre, 1, 8, f);
    if (got == 0 && ferror(f)) { rc = sv__fail(SV_ERR_IO, "%s: cannot read: %s", path, strerror(errno)); goto done; }
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 8, SEEK_SET) != 0) {
        rc = sv__fail(SV_ERR_IO, "%s: cannot determine the file size", path);
        goto done;
    }
    total = (size_t)sz;
    if ((rc = sv__st_preamble(pre, got < 8 ? got : total, path, &hlen)) != SV_OK) goto done;
    hdr = SV__CAST(char *, sv__alloc(hlen ? hlen : 1, "safetensors header"));
    if (!hdr) { rc = SV_ERR_NOMEM; goto done; }
    if (fread(hdr, 1, hlen, f) != hlen) { rc = sv__fail(SV_ERR_IO, "%s: read failed", path); goto done; }
    if ((rc = sv__st_header(hdr, hlen, total - 8 - hlen, path, st, &ent)) != SV_OK) goto done;
    /* the data, tensor after tensor (they are contiguous in this order), through a 1 MiB buffer */
    chunk = SV__CAST(unsigned char *, sv__alloc((size_t)1 << 20, "safetensors read buffer"));
    if (!chunk) { rc = SV_ERR_NOMEM; goto done; }
    for (i = 0; i < st->n && rc == SV_OK; i++) {
        size_t isz = sv__st_dtypes[ent[i].dt].size, done_ = 0, m;
        if ((rc = sv__st_alloc_data(st, ent, i, path)) != SV_OK) break;
        if (!st->t[i].data) {   /* not loaded: skip its bytes */
            if (fseek(f, (long)(8 + hlen + ent[i].end), SEEK_SET) != 0) rc = sv__fail(SV_ERR_IO, "%s: seek failed", path);
            continue;
        }
        while (done_ < st->t[i].numel) {
            m = st->t[i].numel - done_;
            if (m > ((size_t)1 << 20) / isz) m = ((size_t)1 << 20) / isz;
            if (fread(chunk, isz, m, f) != m) { rc = sv__fail(SV_ERR_IO, "%s: read failed (file changed while reading?)", path); break; }
            if (!sv__st_convert(chunk, m, ent[i].dt, st->t[i].data + done_, &bad)) {
                rc = sv__fail(SV_ERR_FORMAT, "%s: tensor '%s': F64 value %zu is beyond the float range", path, st->t[i].name, done_ + bad);
                break;
            }
            done_ += m;
        }
    }
done:
    fclose(f);
    SV_FREE(hdr);
    SV_FREE(chunk);
    SV_FREE(ent);
    if (rc != SV_OK) sv_safetensors_free(st);
    return rc;
}

SV_DEF const sv_st_tensor *sv_safetensors_find(const sv_safetensors *st, const char *name)
{
    size_t i;
    for (i = 0; st && name && i < st->n; i++) if (strcmp(st->t[i].name, name) == 0) return &st->t[i];
    return NULL;
}

SV_DEF const char *sv_safetensors_meta(const sv_safetensors *st, const char *key)
{
    size_t i;
    for (i = 0; st && key && i < st->n_meta; i++) if (strcmp(st->meta_key[i], key) == 0) return st->meta_value[i];
    return NULL;
}

/* ---- the writer */
/* Appends s as a JSON string (quotes, escapes) to the growable buffer *b. */
typedef struct sv__sbuf { char *p; size_t n, cap; int err; } sv__sbuf;

static void sv__sb_put(sv__sbuf *b, const char *s, size_t n)
{
    if (b->err) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        char *q;
        while (nc < b->n + n + 1) nc *= 2;
        q = SV__CAST(char *, SV_MALLOC(nc));
        if (!q) { b->err = 1; return; }
        if (b->n) memcpy(q, b->p, b->n);
        SV_FREE(b->p);
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sv__sb_str(sv__sbuf *b, const char *s) { sv__sb_put(b, s, strlen(s)); }

static void sv__sb_json_str(sv__sbuf *b, const char *s)
{
    sv__sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[8];
        if (c == '"' || c == '\\') { e[0] = '\\'; e[1] = (char)c; sv__sb_put(b, e, 2); }
        else if (c == '\n') sv__sb_put(b, "\\n", 2);
        else if (c == '\t') sv__sb_put(b, "\\t", 2);
        else if (c < 0x20) { snprintf(e, sizeof e, "\\u%04x", c); sv__sb_put(b, e, 6); }
        else sv__sb_put(b, s, 1);
    }
    sv__sb_put(b, "\"", 1);
}

/* The header JSON of n F32 tensors (in order, contiguous), padded with spaces to a multiple of
   8 bytes; *data_bytes gets the data size. NULL with an error on bad names or shapes. */
static char *sv__st_encode_header(const sv_st_tensor *t, size_t n, const char *const *meta, size_t n_meta,
                                  size_t *hlen, size_t *data_bytes, const char *nm)
{
    sv__sbuf b;
    size_t i, off = 0;
    int d;
    char num[64];
    memset(&b, 0, sizeof b);
    sv__sb_str(&b, "{");
    if (n_meta) {
        sv__sb_str(&b, "\"__metadata__\":{");
        for (i = 0; i < n_meta; i++) {
            if (!meta[2 * i] || !meta[2 * i + 1] || sv__utf8_bad(meta[2 * i], strlen(meta[2 * i])) != strlen(meta[2 * i]) ||
                sv__utf8_bad(meta[2 * i + 1], strlen(meta[2 * i + 1])) != strlen(meta[2 * i + 1])) {
                sv__fail(SV_ERR_ARG, "%s: metadata entry %zu is NULL or not UTF-8", nm, i);
                goto fail;
            }
            if (i) sv__sb_str(&b, ",");
            sv__sb_json_str(&b, meta[2 * i]);
            sv__sb_str(&b, ":");
            sv__sb_json_str(&b, meta[2 * i + 1]);
        }
        sv__sb_str(&b, "}");
    }
    for (i = 0; i < n; i++) {
        size_t numel = 1, bytes, k;
        const char *name = t[i].name;
        if (!name || !*name || strcmp(name, "__metadata__") == 0 || sv__utf8_bad(name, strlen(name)) != strlen(name)) {
            sv__fail(SV_ERR_ARG, "%s: tensor %zu has an empty, reserved or non-UTF-8 name", nm, i);
            goto fail;
        }
        for (k = 0; k < i; k++)
            if (strcmp(t[k].name, name) == 0) { sv__fail(SV_ERR_ARG, "%s: tensor name '%s' given twice", nm, name); goto fail; }
        if (t[i].ndim < 0 || t[i].ndim > SV_ST_MAX_DIMS) { sv__fail(SV_ERR_ARG, "%s: tensor '%s': bad rank", nm, name); goto fail; }
        for (d = 0; d < t[i].ndim; d++)
            if (!sv__mul_ok(numel, t[i].shape[d], &numel)) { sv__fail(SV_ERR_ARG, "%s: tensor '%s': shape overflows", nm, name); goto fail; }
        if (!sv__mul_ok(numel, 4, &bytes) || off + bytes < off) { sv__fail(SV_ERR_ARG, "%s: tensor '%s' too large", nm, name); goto fail; }
        if (numel && !t[i].data) { sv__fail(SV_ERR_ARG, "%s: tensor '%s' has no data", nm, name); goto fail; }
        sv__sb_str(&b, (i || n_meta) ? "," : "");
        sv__sb_json_str(&b, name);
        sv__sb_str(&b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (d = 0; d < t[i].ndim; d++) {
            snprintf(num, sizeof num, d ? ",%zu" : "%zu", t[i].shape[d]);
            sv__sb_str(&b, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", off, off + bytes);
        sv__sb_str(&b, num);
        off += bytes;
    }
    sv__sb_str(&b, "}");
    while (!b.err && b.n % 8) sv__sb_put(&b, " ", 1);
    if (b.err) { sv__fail(SV_ERR_NOMEM, "%s: out of memory building the header", nm); goto fail; }
    *hlen = b.n;
    *data_bytes = off;
    return b.p;
fail:
    SV_FREE(b.p);
    return NULL;
}

SV_DEF int sv_safetensors_write(const char *path, const sv_st_tensor *t, size_t n, const char *const *meta, size_t n_meta)
{
    unsigned char pre[8], chunk[4096 * 4];
    size_t hlen = 0, data_bytes = 0, i, k, m;
    char *hdr, *tmp;
    FILE *f;
    int ok = 1;
    const char *nm = path ? path : "safetensors";
    if ((n && !t) || (n_meta && !meta)) return sv__fail(SV_ERR_ARG, "%s: NULL tensors or metadata", nm);
    hdr = sv__st_encode_header(t, n, meta, n_meta, &hlen, &data_bytes, nm);
    if (!hdr) return sv_last_status();
    sv__wr32(pre, (uint32_t)(hlen & 0xFFFFFFFFu));
    sv__wr32(pre + 4, (uint32_t)((uint64_t)hlen >> 32));
    f = sv__atomic_begin(path, &tmp);
    if (!f) { SV_FREE(hdr); return sv_last_status(); }
    if (fwrite(pre, 1, 8, f) != 8 || fwrite(hdr, 1, hlen, f) != hlen) ok = 0;
    SV_FREE(hdr);
    for (i = 0; ok && i < n; i++) {
        size_t numel = 1;
        int d;
        for (d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        for (k = 0; ok && k < numel; k += m) {
            size_t j;
            m = numel - k < 4096 ? numel - k : 4096;
            for (j = 0; j < m; j++) {
                uint32_t u;
                memcpy(&u, t[i].data + k + j, 4);
                sv__wr32(chunk + 4 * j, u);
            }
            if (fwrite(chunk, 4, m, f) != m) ok = 0;
        }
    }
    if (!ok) sv__fail(SV_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    return sv__atomic_end(f, tmp, path, ok);
}

/* ---------------------------------------------------------------- 10.6 manifests */

enum { SV__COL_NONE, SV__COL_ID, SV__COL_WAV, SV__COL_IMAGE, SV__COL_SPEAKER, SV__COL_TEXT, SV__COL_ALIGN };

SV_DEF void sv_manifest_free(sv_manifest *m)
{
    size_t i;
    if (!m) return;
    for (i = 0; i < m->n; i++) {
        if (m->id) SV_FREE(m->id[i]);
        if (m->wav) SV_FREE(m->wav[i]);
        if (m->speaker) SV_FREE(m->speaker[i]);
        if (m->text) SV_FREE(m->text[i]);
        if (m->align) SV_FREE(m->align[i]);
    }
    SV_FREE(m->id);
    SV_FREE(m->wav);
    SV_FREE(m->speaker);
    SV_FREE(m->text);
    SV_FREE(m->align);
    SV_FREE(m->image);
    SV_FREE(m->line);
    SV_FREE(m->dir);
    memset(m, 0, sizeof *m);
}

/* dir + rel, unless rel is absolute or dir is empty. */
static char *sv__join(const char *dir, const char *rel, size_t n)
{
    size_t d = dir ? strlen(dir) : 0;
    char *out;
    int sep;
    if (!d || sv__is_abs_path(rel, n)) return sv__strndup(rel, n, "path");
    sep = dir[d - 1] != '/'
#ifdef _WIN32
          && dir[d - 1] != '\\'
#endif
        ;
    if (d > SIZE_MAX - n - 2) { sv__fail(SV_ERR_NOMEM, "path too long"); return NULL; }
    out = SV__CAST(char *, sv__alloc(d + (size_t)sep + n + 1, "path"));
    if (!out) return NULL;
    memcpy(out, dir, d);
    if (sep) out[d] = '/';
    memcpy(out + d + sep, rel, n);
    out[d + sep + n] = 0;
    return out;
}

/* image column: empty or an integer >= -1 (up to 2^31-1). */
static int sv__parse_image(const char *s, size_t n, long *out)
{
    size_t i = 0;
    long v = 0;
    int neg = 0;
    if (n == 0) { *out = -1; return 1; }
    if (s[0] == '-' || s[0] == '+') { neg = s[0] == '-'; i = 1; }
    if (i == n) return 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        if (v > (2147483647L - (s[i] - '0')) / 10) return 0;   /* checked first: long may be 32 bits */
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 1;
}

SV_DEF int sv_manifest_parse(const char *text, size_t len, const char *name, const char *dir, sv_manifest *m)
{
    const char *nm = sv__nm(name), *s, *f;
    size_t pos = 0, n, line_no = 1, max_rows, ncol = 0, c, bad, *first_line = NULL;
    int colrole[64], rc = SV_OK;
    sv__strmap ids = {NULL, 0};
    ids.slot = NULL;
    if (!m) return sv__fail(SV_ERR_ARG, "sv_manifest_parse: NULL manifest");
    memset(m, 0, sizeof *m);
    if (!text && len) return sv__fail(SV_ERR_ARG, "sv_manifest_parse: NULL text");
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) pos = 3; /* UTF-8 byte-order mark (spreadsheet exports) */
    if (!sv__next_line(text, len, &pos, &s, &n) || n == 0)
        return sv__fail(SV_ERR_FORMAT, "%s:1: expected a header line naming the columns (id, wav, ...)", nm);
    if ((bad = sv__utf8_bad(s, n)) < n)
        return sv__fail(SV_ERR_FORMAT, "%s:1: invalid UTF-8 at byte %zu of the line", nm, bad + 1);

    /* Header: name each column's role. */
    for (f = s;; ) {
        const char *e = SV__CAST(const char *, memchr(f, '\t', (size_t)(s + n - f)));
        size_t fl = e ? (size_t)(e - f) : (size_t)(s + n - f), k;
        int role = SV__COL_NONE;
        static const char *const names[] = {"", "id", "wav", "image", "speaker", "text", "align"};
        while (fl && *f == ' ') { f++; fl--; }
        while (fl && f[fl - 1] == ' ') fl--;
        for (k = 1; k < 7; k++)
            if (strlen(names[k]) == fl && memcmp(names[k], f, fl) == 0) role = (int)k;
        if (ncol == sizeof colrole / sizeof colrole[0])
            return sv__fail(SV_ERR_FORMAT, "%s:1: more than %zu columns", nm, ncol);
        for (k = 0; k < ncol && role != SV__COL_NONE; k++)
            if (colrole[k] == role)
                return sv__fail(SV_ERR_FORMAT, "%s:1: column '%s' appears twice", nm, names[role]);
        colrole[ncol++] = role;
        if (role == SV__COL_IMAGE) m->has_image = 1;
        if (role == SV__COL_SPEAKER) m->has_speaker = 1;
        if (role == SV__COL_TEXT) m->has_text = 1;
        if (role == SV__COL_ALIGN) m->has_align = 1;
        if (!e) break;
        f = e + 1;
    }
    {
        int has_id = 0, has_wav = 0;
        for (c = 0; c < ncol; c++) {
            has_id |= colrole[c] == SV__COL_ID;
            has_wav |= colrole[c] == SV__COL_WAV;
        }
        if (!has_id || !has_wav) {
            m->has_image = m->has_speaker = m->has_text = m->has_align = 0;
            return sv__fail(SV_ERR_FORMAT, "%s:1: missing required column '%s' (the header must name id and wav)",
                            nm, has_id ? "wav" : "id");
        }
    }

    /* Rows: at most one per remaining line, so every array is sized once up front. */
    max_rows = sv__count_lines(text + pos, len - pos);
    m->dir = sv__strndup(dir ? dir : "", dir ? strlen(dir) : 0, "manifest");
    m->id = SV__CAST(char **, sv__calloc(max_rows, sizeof(char *), "manifest"));
    m->wav = SV__CAST(char **, sv__calloc(max_rows, sizeof(char *), "manifest"));
    m->speaker = SV__CAST(char **, sv__calloc(max_rows, sizeof(char *), "manifest"));
    m->text = SV__CAST(char **, sv__calloc(max_rows, sizeof(char *), "manifest"));
    m->align = SV__CAST(char **, sv__calloc(max_rows, sizeof(char *), "manifest"));
    m->image = SV__CAST(long *, sv__calloc(max_rows, sizeof(long), "manifest"));
    first_line = SV__CAST(size_t *, sv__calloc(max_rows, sizeof(size_t), "manifest"));
    if (!m->dir || !m->id || !m->wav || !m->speaker || !m->text || !m->align || !m->image || !first_line) {
        rc = SV_ERR_NOMEM;
        goto fail;
    }
    if ((rc = sv__strmap_init(&ids, max_rows, "manifest ids")) != 0) goto fail;

    while (sv__next_line(text, len, &pos, &s, &n)) {
        size_t r = m->n, nf = 1, k;
        line_no++;
        if (n == 0) continue; /* empty line */
        if ((bad = sv__utf8_bad(s, n)) < n) {
            rc = sv__fail(SV_ERR_FORMAT, "%s:%zu: invalid UTF-8 at byte %zu of the line", nm, line_no, bad + 1);
            goto fail;
        }
        for (k = 0; k < n; k++) nf += s[k] == '\t';
        if (nf != ncol) {
            rc = sv__fail(SV_ERR_FORMAT, "%s:%zu: expected %zu fields, found %zu", nm, line_no, ncol, nf);
            goto fail;
        }
        m->n++; /* the row is owned by m from here: sv_manifest_free releases a partial one */
        m->image[r] = -1;
        first_line[r] = line_no;
        for (c = 0, f = s; c < ncol; c++) {
            const char *e = SV__CAST(const char *, memchr(f, '\t', (size_t)(s + n - f)));
            size_t fl = e ? (size_t)(e - f) : (size_t)(s + n - f);
            char **dst = NULL;
            switch (colrole[c]) {
            case SV__COL_ID: {
                size_t *slot;
                if (fl == 0) { rc = sv__fail(SV_ERR_FORMAT, "%s:%zu: empty id", nm, line_no); goto fail; }
                slot = sv__strmap_find(&ids, (const char *const *)m->id, f, fl);
                if (*slot) {
                    rc = sv__fail(SV_ERR_FORMAT, "%s:%zu: duplicate id '%.*s' (first on line %zu)", nm, line_no,
                                  (int)(fl > 200 ? 200 : fl), f, first_line[*slot - 1]);
                    goto fail;
                }
                if (!(m->id[r] = sv__strndup(f, fl, "manifest"))) { rc = SV_ERR_NOMEM; goto fail; }
                *slot = r + 1;
                break;
            }
            case SV__COL_WAV:
                if (fl == 0) { rc = sv__fail(SV_ERR_FORMAT, "%s:%zu: empty wav path", nm, line_no); goto fail; }
                if (!(m->wav[r] = sv__join(dir, f, fl))) { rc = sv_last_status(); goto fail; }
                break;
            case SV__COL_ALIGN:
                if (!(m->align[r] = fl ? sv__join(dir, f, fl) : sv__strndup("", 0, "manifest"))) {
                    rc = sv_last_status();
                    goto fail;
                }
                break;
            case SV__COL_IMAGE:
                if (!sv__parse_image(f, fl, &m->image[r]) || m->image[r] < -1) {
                    rc = sv__fail(SV_ERR_FORMAT,
                                  "%s:%zu: image index '%.*s' is not an integer >= -1 (-1 or empty: none)",
                                  nm, line_no, (int)(fl > 40 ? 40 : fl), f);
                    goto fail;
                }
                break;
            case SV__COL_SPEAKER: dst = &m->speaker[r]; break;
            case SV__COL_TEXT: dst = &m->text[r]; break;
            default: break;
            }
            if (dst && !(*dst = sv__strndup(f, fl, "manifest"))) { rc = SV_ERR_NOMEM; goto fail; }
            f = e ? e + 1 : f;
        }
        /* Absent optional columns read as empty strings, so users never meet NULL. */
        if ((!m->speaker[r] && !(m->speaker[r] = sv__strndup("", 0, "manifest"))) ||
            (!m->text[r] && !(m->text[r] = sv__strndup("", 0, "manifest"))) ||
            (!m->align[r] && !(m->align[r] = sv__strndup("", 0, "manifest")))) {
            rc = SV_ERR_NOMEM;
            goto fail;
        }
    }
    if (m->n == 0) { rc = sv__fail(SV_ERR_FORMAT, "%s: no utterances after the header", nm); goto fail; }
    sv__strmap_free(&ids);
    m->line = first_line;
    return SV_OK;
fail:
    sv__strmap_free(&ids);
    SV_FREE(first_line);
    sv_manifest_free(m);
    return rc ? rc : SV_ERR_NOMEM;
}

SV_DEF int sv_manifest_read(const char *path, sv_manifest *m)
{
    unsigned char *buf;
    size_t len, dl;
    char *dir;
    int rc;
    if (m) memset(m, 0, sizeof *m);
    if (!m) return sv__fail(SV_ERR_ARG, "sv_manifest_read: NULL manifest");
    rc = sv__read_file(path, &buf, &len);
    if (rc) return rc;
    dl = sv__dir_len(path);
    dir = sv__strndup(path, dl, "manifest folder");
    if (!dir) { SV_FREE(buf); return SV_ERR_NOMEM; }
    rc = sv_manifest_parse((const char *)buf, len, path, dir, m);
    SV_FREE(dir);
    SV_FREE(buf);
    return rc;
}

static const char *sv__skip_dot_slash(const char *p)
{
    while (p[0] == '.' && p[1] == '/') {
        p += 2;
        while (*p == '/') p++;
    }
    return p;
}

/* The form of path p to write into a manifest in folder outdir (NULL if impossible). */
static const char *sv__rel_to(const char *p, const char *outdir, size_t od)
{
    const char *q = sv__skip_dot_slash(p);
    if (od && strncmp(q, outdir, od) == 0) return q + od; /* keeps the manifest relocatable */
    if (sv__is_abs_path(p, strlen(p)) || od == 0) return p;
    return NULL;
}

static int sv__tsv_field_ok(const char *s)
{
    return s && !strpbrk(s, "\t\r\n");
}

SV_DEF int sv_manifest_write(const char *path, const sv_manifest *m)
{
    char *tmp, *od_s = NULL;
    const char *od;
    size_t i, od_len;
    sv__strmap ids = {NULL, 0};
    FILE *f;
    int rc = SV_OK, ok = 1;
    if (!path || !m) return sv__fail(SV_ERR_ARG, "sv_manifest_write: NULL argument");
    if (m->n && (!m->id || !m->wav || (m->has_image && !m->image) || (m->has_speaker && !m->speaker) ||
                 (m->has_text && !m->text) || (m->has_align && !m->align)))
        return sv__fail(SV_ERR_ARG, "%s: manifest has NULL column arrays", path);
    if (m->n == 0) return sv__fail(SV_ERR_ARG, "%s: no utterances to write", path);
    od_s = sv__strndup(path, sv__dir_len(path), "manifest folder");
    if (!od_s) return SV_ERR_NOMEM;
    od = sv__skip_dot_slash(od_s);
    od_len = strlen(od);
    if ((rc = sv__strmap_init(&ids, m->n, "manifest ids")) != 0) { SV_FREE(od_s); return rc; }
    /* Validate everything first: nothing is written for a manifest that could not be read back. */
    for (i = 0; i < m->n && rc == SV_OK; i++) {
        size_t *slot;
        const char *bad = NULL;
        if (!m->id[i] || !m->id[i][0]) bad = "empty id";
        else if (!m->wav[i] || !m->wav[i][0]) bad = "empty wav path";
        else if (!sv__tsv_field_ok(m->id[i]) || !sv__tsv_field_ok(m->wav[i]) ||
                 (m->has_speaker && !sv__tsv_field_ok(m->speaker[i])) ||
                 (m->has_text && !sv__tsv_field_ok(m->text[i])) ||
                 (m->has_align && !sv__tsv_field_ok(m->align[i])))
            bad = "a field is NULL or contains a tab or newline";
        else if (m->has_image && m->image[i] < -1) bad = "image index below -1";
        else if (!sv__rel_to(m->wav[i], od, od_len) ||
                 (m->has_align && m->align[i][0] && !sv__rel_to(m->align[i], od, od_len)))
            bad = "a relative path lies outside the manifest's folder (use an absolute path)";
        if (bad) { rc = sv__fail(SV_ERR_ARG, "%s: utterance %zu: %s", path, i, bad); break; }
        slot = sv__strmap_find(&ids, (const char *const *)m->id, m->id[i], strlen(m->id[i]));
        if (*slot) { rc = sv__fail(SV_ERR_ARG, "%s: utterance %zu: duplicate id '%s'", path, i, m->id[i]); break; }
        *slot = i + 1;
    }
    sv__strmap_free(&ids);
    if (rc) { SV_FREE(od_s); return rc; }
    f = sv__atomic_begin(path, &tmp);
    if (!f) { SV_FREE(od_s); return sv_last_status(); }
    if (fprintf(f, "id\twav%s%s%s%s\n", m->has_image ? "\timage" : "", m->has_speaker ? "\tspeaker" : "",
                m->has_text ? "\ttext" : "", m->has_align ? "\talign" : "") < 0) ok = 0;
    for (i = 0; ok && i < m->n; i++) {
        if (fprintf(f, "%s\t%s", m->id[i], sv__rel_to(m->wav[i], od, od_len)) < 0) ok = 0;
        if (m->has_image && fprintf(f, "\t%ld", m->image[i]) < 0) ok = 0;
        if (m->has_speaker && fprintf(f, "\t%s", m->speaker[i]) < 0) ok = 0;
        if (m->has_text && fprintf(f, "\t%s", m->text[i]) < 0) ok = 0;
        if (m->has_align && fprintf(f, "\t%s", m->align[i][0] ? sv__rel_to(m->align[i], od, od_len) : "") < 0) ok = 0;
        if (fputc('\n', f) == EOF) ok = 0;
    }
    SV_FREE(od_s);
    if (!ok) sv__fail(SV_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    return sv__atomic_end(f, tmp, path, ok);
}

/* ---------------------------------------------------------------- 10.7 ZeroSpeech .item */

/* A non-negative decimal time: digits[.digits][e[+-]digits] (also ".5"). Checked by hand first so
   strtod never sees "nan", "inf", hex floats or a locale's idea of a number. */
static int sv__parse_time(const char *s, size_t n, double *out, const char **why)
{
    char buf[128], *end;
    size_t i = 0, digits = 0;
    if (n && s[0] == '-') { *why = "is negative"; return 0; }
    if (n && s[0] == '+') i++;
    while (i < n && s[i] >= '0' && s[i] <= '9') { i++; digits++; }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') { i++; digits++; }
    }
    if (digits && i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t ed = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') { i++; ed++; }
        if (!ed) digits = 0;
    }
    if (!digits || i != n) { *why = "is not a number"; return 0; }
    if (n >= sizeof buf) { *why = "is too long"; return 0; }
    memcpy(buf, s, n);
    buf[n] = 0;
    *out = strtod(buf, &end);
    if (end != buf + n) { *why = "could not be read (is LC_NUMERIC not \"C\"?)"; return 0; }
    if (!sv__isfinite(*out)) { *why = "is not finite"; return 0; }
    return 1;
}

SV_DEF int sv_item_parse(const char *text, size_t len, const char *name, sv_item_set *out)
{
    static const char *const field_names[7] = {"file", "onset", "offset", "phone", "prev-phone", "next-phone",
                                               "speaker"};
    const char *nm = sv__nm(name), *s;
    size_t pos = 0, n, line_no = 1, max_items, bad;
    sv__strmap fmap, pmap, smap;
    int rc = SV_OK;
    fmap.slot = pmap.slot = smap.slot = NULL;
    if (!out) return sv__fail(SV_ERR_ARG, "sv_item_parse: NULL set");
    memset(out, 0, sizeof *out);
    if (!text && len) return sv__fail(SV_ERR_ARG, "sv_item_parse: NULL text");
    if (!sv__next_line(text, len, &pos, &s, &n))
        return sv__fail(SV_ERR_FORMAT, "%s: empty .item file (expected a header line, then items)", nm);
    max_items = sv__count_lines(text + pos, len - pos);
    out->items = SV__CAST(sv_item *, sv__calloc(max_items, sizeof(sv_item), "items"));
    out->files = SV__CAST(char **, sv__calloc(max_items, sizeof(char *), "item files"));
    out->speakers = SV__CAST(char **, sv__calloc(max_items, sizeof(char *), "item speakers"));
    out->phones = SV__CAST(char **, sv__calloc(max_items, 3 * sizeof(char *), "item phones"));
    if (!out->items || !out->files || !out->speakers || !out->phones) { rc = SV_ERR_NOMEM; goto fail; }
    if ((rc = sv__strmap_init(&fmap, max_items, "item files")) != 0) goto fail;
    if ((rc = sv__strmap_init(&smap, max_items, "item speakers")) != 0) goto fail;
    if (max_items > SIZE_MAX / 3 || (rc = sv__strmap_init(&pmap, 3 * max_items, "item phones")) != 0) {
        rc = rc ? rc : sv__fail(SV_ERR_NOMEM, "too many items");
        goto fail;
    }
    while (sv__next_line(text, len, &pos, &s, &n)) {
        const char *tok[8];
        size_t tl[8], nt = 0, k = 0, idx[7];
        sv_item *it = &out->items[out->n_items];
        const char *why = NULL;
        double on = 0.0, off = 0.0;
        int which;
        line_no++;
        if ((bad = sv__utf8_bad(s, n)) < n) {
            rc = sv__fail(SV_ERR_FORMAT, "%s:%zu: invalid UTF-8 at byte %zu of the line", nm, line_no, bad + 1);
            goto fail;
        }
        while (nt < 8) {
            while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\v' || s[k] == '\f')) k++;
            if (k == n) break;
            tok[nt] = s + k;
            while (k < n && !(s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\v' || s[k] == '\f')) k++;
            tl[nt] = (size_t)(s + k - tok[nt]);
            nt++;
        }
        if (nt != 7) {
            rc = sv__fail(SV_ERR_FORMAT,
                          "%s:%zu: expected 7 fields (file onset offset phone prev next speaker), found %s%zu",
                          nm, line_no, nt == 8 ? "more than " : "", nt == 8 ? (size_t)7 : nt);
            goto fail;
        }
        which = !sv__parse_time(tok[1], tl[1], &on, &why) ? 1 : !sv__parse_time(tok[2], tl[2], &off, &why) ? 2 : 0;
        if (which) {
            rc = sv__fail(SV_ERR_FORMAT, "%s:%zu: %s '%.*s' %s", nm, line_no, field_names[which],
                          (int)(tl[which] > 40 ? 40 : tl[which]), tok[which], why);
            goto fail;
        }
        if (!(on < off)) {
            rc = sv__fail(SV_ERR_FORMAT, "%s:%zu: onset %.*s is not before offset %.*s", nm, line_no,
                          (int)(tl[1] > 40 ? 40 : tl[1]), tok[1], (int)(tl[2] > 40 ? 40 : tl[2]), tok[2]);
            goto fail;
        }
        if ((rc = sv__intern(&fmap, out->files, &out->n_files, tok[0], tl[0], &idx[0], "item files")) != 0 ||
            (rc = sv__intern(&pmap, out->phones, &out->n_phones, tok[3], tl[3], &idx[3], "item phones")) != 0 ||
            (rc = sv__intern(&pmap, out->phones, &out->n_phones, tok[4], tl[4], &idx[4], "item phones")) != 0 ||
            (rc = sv__intern(&pmap, out->phones, &out->n_phones, tok[5], tl[5], &idx[5], "item phones")) != 0 ||
            (rc = sv__intern(&smap, out->speakers, &out->n_speakers, tok[6], tl[6], &idx[6], "item speakers")) != 0)
            goto fail;
        if (out->n_phones > 2147483647u || out->n_speakers > 2147483647u) {
            rc = sv__fail(SV_ERR_FORMAT, "%s:%zu: more than 2^31-1 distinct phones or speakers", nm, line_no);
            goto fail;
        }
        it->file = idx[0];
        it->onset = on;
        it->offset = off;
        it->phone = (int)idx[3];
        it->prev = (int)idx[4];
        it->next = (int)idx[5];
        it->speaker = (int)idx[6];
        out->n_items++;
    }
    if (out->n_items == 0) { rc = sv__fail(SV_ERR_FORMAT, "%s: no items after the header line", nm); goto fail; }
    sv__strmap_free(&fmap);
    sv__strmap_free(&pmap);
    sv__strmap_free(&smap);
    return SV_OK;
fail:
    sv__strmap_free(&fmap);
    sv__strmap_free(&pmap);
    sv__strmap_free(&smap);
    sv_item_set_free(out);
    return rc ? rc : SV_ERR_NOMEM;
}

SV_DEF int sv_item_read(const char *path, sv_item_set *out)
{
    unsigned char *buf;
    size_t len;
    int rc;
    if (out) memset(out, 0, sizeof *out);
    rc = sv__read_file(path, &buf, &len);
    if (rc) return rc;
    rc = sv_item_parse((const char *)buf, len, path, out);
    SV_FREE(buf);
    return rc;
}

static int sv__item_word_ok(const char *s)
{
    return s && *s && !strpbrk(s, " \t\r\n\v\f");
}

/* Shortest "%.Ng" that reads back to the same double (15 digits usually do). */
static void sv__fmt_double(char *buf, size_t cap, double v)
{
    int prec;
    for (prec = 15; prec < 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
    snprintf(buf, cap, "%.17g", v);
}

SV_DEF int sv_item_write(const char *path, const sv_item_set *s)
{
    char *tmp, a[40], b[40];
    size_t i;
    FILE *f;
    int ok = 1;
    if (!path || !s || (s->n_items && !s->items)) return sv__fail(SV_ERR_ARG, "sv_item_write: NULL argument");
    if (s->n_items == 0) return sv__fail(SV_ERR_ARG, "%s: no items to write", path);
    for (i = 0; i < s->n_items; i++) {
        const sv_item *it = &s->items[i];
        if (it->file >= s->n_files || it->phone < 0 || (size_t)it->phone >= s->n_phones || it->prev < 0 ||
            (size_t)it->prev >= s->n_phones || it->next < 0 || (size_t)it->next >= s->n_phones ||
            it->speaker < 0 || (size_t)it->speaker >= s->n_speakers)
            return sv__fail(SV_ERR_ARG, "%s: item %zu: index out of range", path, i);
        if (!sv__item_word_ok(s->files[it->file]) || !sv__item_word_ok(s->phones[it->phone]) ||
            !sv__item_word_ok(s->phones[it->prev]) || !sv__item_word_ok(s->phones[it->next]) ||
            !sv__item_word_ok(s->speakers[it->speaker]))
            return sv__fail(SV_ERR_ARG, "%s: item %zu: a name is empty or contains whitespace", path, i);
        if (!(it->onset >= 0.0 && it->onset < it->offset && sv__isfinite(it->offset)))
            return sv__fail(SV_ERR_ARG, "%s: item %zu: times must satisfy 0 <= onset < offset, finite", path, i);
    }
    f = sv__atomic_begin(path, &tmp);
    if (!f) return sv_last_status();
    if (fputs("#file onset offset #phone prev-phone next-phone speaker\n", f) == EOF) ok = 0;
    for (i = 0; ok && i < s->n_items; i++) {
        const sv_item *it = &s->items[i];
        sv__fmt_double(a, sizeof a, it->onset);
        sv__fmt_double(b, sizeof b, it->offset);
        if (fprintf(f, "%s %s %s %s %s %s %s\n", s->files[it->file], a, b, s->phones[it->phone],
                    s->phones[it->prev], s->phones[it->next], s->speakers[it->speaker]) < 0)
            ok = 0;
    }
    if (!ok) sv__fail(SV_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    return sv__atomic_end(f, tmp, path, ok);
}

SV_DEF int sv_item_check(const sv_item_set *s, const char *const *file_names, const double *durations,
                         size_t n_files)
{
    sv__strmap map = {NULL, 0};
    size_t i, *where = NULL;
    int rc;
    if (!s || (n_files && !file_names)) return sv__fail(SV_ERR_ARG, "sv_item_check: NULL argument");
    /* Map each of the set's file names to its position in file_names (or none). */
    if ((rc = sv__strmap_init(&map, n_files, "file names")) != 0) return rc;
    for (i = 0; i < n_files; i++) {
        size_t *slot;
        if (!file_names[i]) {
            sv__strmap_free(&map);
            return sv__fail(SV_ERR_ARG, "sv_item_check: file name %zu is NULL", i);
        }
        slot = sv__strmap_find(&map, file_names, file_names[i], strlen(file_names[i]));
        if (!*slot) *slot = i + 1;
    }
    where = SV__CAST(size_t *, sv__calloc(s->n_files ? s->n_files : 1, sizeof(size_t), "item check"));
    if (!where) { sv__strmap_free(&map); return SV_ERR_NOMEM; }
    for (i = 0; i < s->n_files; i++) where[i] = *sv__strmap_find(&map, file_names, s->files[i],
                                                                 strlen(s->files[i]));
    sv__strmap_free(&map);
    for (i = 0; i < s->n_items && rc == SV_OK; i++) {
        const sv_item *it = &s->items[i];
        size_t w = it->file < s->n_files ? where[it->file] : 0;
        if (it->file >= s->n_files)
            rc = sv__fail(SV_ERR_ARG, "item %zu: file index %zu out of range", i, it->file);
        else if (!w)
            rc = sv__fail(SV_ERR_FORMAT,
                          "item %zu (line %zu of the .item file): unknown file '%s' (not among the %zu files given)",
                          i, i + 2, s->files[it->file], n_files);
        else if (durations && !(it->offset <= durations[w - 1] + 1e-6))
            rc = sv__fail(SV_ERR_FORMAT,
                          "item %zu (line %zu of the .item file): offset %.4f s beyond the end of the file '%s' (%.4f s)",
                          i, i + 2, it->offset, s->files[it->file], durations[w - 1]);
    }
    SV_FREE(where);
    return rc;
}

/* ---------------------------------------------------------------- 10.8 corpus folders */

#if defined(__unix__) || defined(__APPLE__)
#include <sys/types.h>
#include <sys/stat.h>
#define SV__HAVE_MKDIR 1
#define SV__MKDIR(p) mkdir(p, 0777)
#define SV__ISDIR(m) S_ISDIR(m)
#elif defined(_WIN32)
#include <direct.h>     /* _mkdir */
#include <sys/types.h>
#include <sys/stat.h>
#define SV__HAVE_MKDIR 1
#define SV__MKDIR(p) _mkdir(p)
#define SV__ISDIR(m) (((m) & _S_IFMT) == _S_IFDIR)
#endif

/* Creates a folder; an existing one is fine. */
static int sv__mkdir(const char *path)
{
#ifdef SV__HAVE_MKDIR
    struct stat st;
    if (SV__MKDIR(path) == 0) return SV_OK;
    if (errno == EEXIST && stat(path, &st) == 0 && SV__ISDIR(st.st_mode)) return SV_OK;
    return sv__fail(SV_ERR_IO, "%s: cannot create folder: %s", path, strerror(errno));
#else
    (void)path;
    return SV_OK; /* no portable mkdir in C99: the folder must exist; the first write says so */
#endif
}

SV_DEF int sv_make_dir(const char *path) { return sv__mkdir(path); }

static int sv__file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

/* snprintf into a growable buffer owned by the caller: "dir/fmt...". */
static char *sv__pathf(const char *dir, const char *fmt, const char *a, const char *b)
{
    size_t n = strlen(dir) + strlen(fmt) + (a ? strlen(a) : 0) + (b ? strlen(b) : 0) + 2;
    char *p = SV__CAST(char *, sv__alloc(n, "path")), *q;
    size_t d;
    if (!p) return NULL;
    d = strlen(dir);
    memcpy(p, dir, d);
    q = p + d;
    if (d && dir[d - 1] != '/') *q++ = '/';
    snprintf(q, n - (size_t)(q - p), fmt, a ? a : "", b ? b : "");
    return p;
}

SV_DEF void sv_disk_corpus_close(sv_disk_corpus *dc)
{
    int s;
    if (!dc) return;
    for (s = 0; s < SV_SPLIT_COUNT; s++) {
        sv_manifest_free(&dc->split[s]);
        sv_item_set_free(&dc->items[s]);
    }
    SV_FREE(dc->regions);
    SV_FREE(dc->boxes);
    SV_FREE(dc->dir);
    memset(dc, 0, sizeof *dc);
}

/* The image features of a streamed dataset: where the rows of images.npy and boxes.npy are. */
typedef struct sv__image_files { char *regions_path, *boxes_path; sv__npy_info regions, boxes; } sv__image_files;

/* sv_disk_corpus_open; with img != NULL the image features stay on disk: only the two NPY
   headers are read (dc->regions and dc->boxes stay NULL; img says where the rows are). */
static int sv__disk_corpus_open(const char *dir, sv_disk_corpus *dc, sv__image_files *img)
{
    char *p = NULL;
    size_t shape[4], i, j;
    int rc = SV_OK, s, nd, any = 0;
    long max_image = -1;
    if (!dc) return sv__fail(SV_ERR_ARG, "sv_disk_corpus_open: NULL output");
    memset(dc, 0, sizeof *dc);
    if (!dir || !*dir) return sv__fail(SV_ERR_ARG, "sv_disk_corpus_open: empty folder name");
    dc->dir = sv__strndup(dir, strlen(dir), "corpus folder");
    if (!dc->dir) return SV_ERR_NOMEM;
#define SV__PATH(fmt, a, b) do { SV_FREE(p); p = sv__pathf(dir, fmt, a, b); \
                                 if (!p) { rc = SV_ERR_NOMEM; goto fail; } } while (0)
    SV__PATH(".complete", NULL, NULL);
    if (!sv__file_exists(p)) {
        SV__PATH("train.tsv", NULL, NULL);
        if (sv__file_exists(p) || sv__file_exists(dir))
            rc = sv__fail(SV_ERR_STATE, "%s is incomplete (no .complete marker: interrupted data_prep?); "
                                        "rerun data_prep.sh", dir);
        else
            rc = sv__fail(SV_ERR_IO, "%s: no such corpus folder (make one with data_prep.sh)", dir);
        goto fail;
    }
    for (s = 0; s < SV_SPLIT_COUNT; s++) {
        SV__PATH("%s%s", sv_split_name(s), ".tsv");
        if (!sv__file_exists(p)) continue;
        if ((rc = sv_manifest_read(p, &dc->split[s])) != SV_OK) goto fail;
        dc->has_split[s] = any = 1;
        for (i = 0; i < dc->split[s].n; i++)
            if (dc->split[s].image[i] > max_image) max_image = dc->split[s].image[i];
    }
    if (!any) {
        rc = sv__fail(SV_ERR_FORMAT, "%s: no manifest (train.tsv, val.tsv, test.tsv or ood.tsv)", dir);
        goto fail;
    }
    SV__PATH("images.npy", NULL, NULL);
    if (sv__file_exists(p)) {
        if (img) {   /* the header only */
            FILE *f;
            if ((rc = sv__npy_open(p, &f, &img->regions)) != SV_OK) goto fail;
            fclose(f);
            nd = img->regions.ndim;
            memcpy(shape, img->regions.shape, sizeof shape);
            if (!(img->regions_path = sv__strndup(p, strlen(p), "image features"))) { rc = SV_ERR_NOMEM; goto fail; }
        } else if ((rc = sv_npy_read(p, &dc->regions, shape, &nd)) != SV_OK) goto fail;
        if (nd != 3) { rc = sv__fail(SV_ERR_FORMAT, "%s: %d dimensions, [N, R, Dimg] expected", p, nd); goto fail; }
        dc->n_images = shape[0]; dc->n_regions = shape[1]; dc->region_dim = shape[2];
        SV__PATH("boxes.npy", NULL, NULL);
        if (!sv__file_exists(p)) { rc = sv__fail(SV_ERR_FORMAT, "%s: missing (images.npy needs it)", p); goto fail; }
        if (img) {
            FILE *f;
            if ((rc = sv__npy_open(p, &f, &img->boxes)) != SV_OK) goto fail;
            fclose(f);
            nd = img->boxes.ndim;
            memcpy(shape, img->boxes.shape, sizeof shape);
            if (!(img->boxes_path = sv__strndup(p, strlen(p), "image features"))) { rc = SV_ERR_NOMEM; goto fail; }
        } else if ((rc = sv_npy_read(p, &dc->boxes, shape, &nd)) != SV_OK) goto fail;
        if (nd != 3 || shape[0] != dc->n_images || shape[1] != dc->n_regions || shape[2] != 4) {
            rc = sv__fail(SV_ERR_FORMAT, "%s: shape [%zu, %zu, %zu] (%d dims), [%zu, %zu, 4] expected to match images.npy",
                          p, shape[0], shape[1], shape[2], nd, dc->n_images, dc->n_regions);
            goto fail;
        }
    }
    if (max_image >= 0 && (size_t)max_image >= dc->n_images) {
        for (s = 0; s < SV_SPLIT_COUNT; s++)
            for (i = 0; i < dc->split[s].n; i++)
                if (dc->split[s].image[i] >= 0 && (size_t)dc->split[s].image[i] >= dc->n_images) {
                    rc = sv__fail(SV_ERR_FORMAT, "%s/%s.tsv: utterance '%s': image %ld out of range (images.npy has %zu rows)",
                                  dir, sv_split_name(s), dc->split[s].id[i], dc->split[s].image[i], dc->n_images);
                    goto fail;
                }
    }
    if (dc->split[SV_SPLIT_TRAIN].n && dc->split[SV_SPLIT_TEST].n && dc->n_images) {
        /* a test image seen in training makes every retrieval number of the test split meaningless */
        const sv_manifest *tr = &dc->split[SV_SPLIT_TRAIN], *te = &dc->split[SV_SPLIT_TEST];
        size_t *test_row = SV__CAST(size_t *, sv__calloc(dc->n_images, sizeof(size_t), "image check"));
        if (!test_row) { rc = SV_ERR_NOMEM; goto fail; }
        for (i = 0; i < te->n; i++)
            if (te->image[i] >= 0 && !test_row[te->image[i]]) test_row[te->image[i]] = i + 1;
        for (i = 0; i < tr->n; i++)
            if (tr->image[i] >= 0 && test_row[tr->image[i]]) {
                size_t t = test_row[tr->image[i]] - 1;
                rc = sv__fail(SV_ERR_FORMAT, "%s/train.tsv:%zu: utterance '%s' uses image %ld, a test image (test.tsv:%zu, '%s'): "
                                             "test images must not be trained on", dir, tr->line ? tr->line[i] : i + 2, tr->id[i],
                              tr->image[i], te->line ? te->line[t] : t + 2, te->id[t]);
                break;
            }
        SV_FREE(test_row);
        if (rc != SV_OK) goto fail;
    }
    for (s = 0; s < SV_SPLIT_COUNT; s++)
        for (i = 0; i < dc->split[s].n; i++)
            if (!sv__file_exists(dc->split[s].wav[i])) {
                rc = sv__fail(SV_ERR_IO, "%s/%s.tsv: utterance '%s': %s does not exist", dir, sv_split_name(s),
                              dc->split[s].id[i], dc->split[s].wav[i]);
                goto fail;
            }
    for (s = 0; s < SV_SPLIT_COUNT; s++) {
        const sv_manifest *m = &dc->split[s];
        sv__strmap ids;
        SV__PATH("%s%s", sv_split_name(s), ".item");
        if (!sv__file_exists(p)) continue;
        if ((rc = sv_item_read(p, &dc->items[s])) != SV_OK) goto fail;
        dc->has_items[s] = 1;
        /* every file of the .item must be an utterance id of the same split */
        if ((rc = sv__strmap_init(&ids, m->n, "item check")) != SV_OK) goto fail;
        for (i = 0; i < m->n; i++) *sv__strmap_find(&ids, (const char *const *)m->id, m->id[i], strlen(m->id[i])) = i + 1;
        for (j = 0; j < dc->items[s].n_files; j++) {
            const char *f = dc->items[s].files[j];
            if (!m->n || !*sv__strmap_find(&ids, (const char *const *)m->id, f, strlen(f))) {
                rc = sv__fail(SV_ERR_FORMAT, "%s: file '%s' is not an utterance of %s.tsv", p, f, sv_split_name(s));
                break;
            }
        }
        sv__strmap_free(&ids);
        if (rc != SV_OK) goto fail;
    }
#undef SV__PATH
    SV_FREE(p);
    return SV_OK;
fail:
    SV_FREE(p);
    sv_disk_corpus_close(dc);
    if (img) { SV_FREE(img->regions_path); SV_FREE(img->boxes_path); memset(img, 0, sizeof *img); }
    return rc ? rc : SV_ERR_IO;
}

SV_DEF int sv_disk_corpus_open(const char *dir, sv_disk_corpus *dc) { return sv__disk_corpus_open(dir, dc, NULL); }

SV_DEF size_t sv_disk_corpus_count(const sv_disk_corpus *dc, int split)
{
    return dc && split >= 0 && split < SV_SPLIT_COUNT ? dc->split[split].n : 0;
}

SV_DEF int sv_disk_corpus_audio(const sv_disk_corpus *dc, int split, size_t i, float **x, size_t *n)
{
    if (!x || !n) return sv__fail(SV_ERR_ARG, "sv_disk_corpus_audio: NULL output");
    *x = NULL;
    *n = 0;
    if (!dc || split < 0 || split >= SV_SPLIT_COUNT || i >= dc->split[split].n)
        return sv__fail(SV_ERR_ARG, "sv_disk_corpus_audio: split %d utterance %zu out of range", split, i);
    return sv_wav_load_16k(dc->split[split].wav[i], x, n);
}

/* ---------------------------------------------------------------- 10.9 config as text */

/* Strict numbers (declared with sv_config_set). strtoull would read "-5" as 2^64 - 5 and "10x"
   as 10, atof "abc" as 0: every one of those silently runs something nobody asked for. */
SV_DEF int sv_parse_size(const char *text, size_t min, size_t max, size_t *out)
{
    unsigned long long v;
    char *end;
    if (!text || !*text) return sv__fail(SV_ERR_ARG, "an empty value is not a number");
    if (*text < '0' || *text > '9')
        return sv__fail(SV_ERR_ARG, "'%s' is not a whole number%s", text, *text == '-' ? " >= 0" : "");
    errno = 0;
    v = strtoull(text, &end, 10);
    if (*end) return sv__fail(SV_ERR_ARG, "'%s' is not a whole number", text);
    if (errno == ERANGE || v > (unsigned long long)SIZE_MAX || (size_t)v > max || (size_t)v < min) {
        if (max == SIZE_MAX) return sv__fail(SV_ERR_ARG, "%s is out of range: at least %zu", text, min);
        return sv__fail(SV_ERR_ARG, "%s is out of range: %zu..%zu", text, min, max);
    }
    *out = (size_t)v;
    return SV_OK;
}

SV_DEF int sv_parse_double(const char *text, double min, double max, double *out)
{
    double v;
    char *end;
    if (!text || !*text) return sv__fail(SV_ERR_ARG, "an empty value is not a number");
    if (*text == ' ' || *text == '\t') return sv__fail(SV_ERR_ARG, "'%s' is not a number", text);
    errno = 0;
    v = strtod(text, &end);
    if (end == text || *end) return sv__fail(SV_ERR_ARG, "'%s' is not a number", text);
    if (!sv__isfinite(v) || errno == ERANGE) return sv__fail(SV_ERR_ARG, "'%s' is not a finite number", text);
    if (v < min || v > max) {
        if (max >= DBL_MAX) return sv__fail(SV_ERR_ARG, "%s is out of range: at least %g", text, min);
        if (min <= -DBL_MAX) return sv__fail(SV_ERR_ARG, "%s is out of range: at most %g", text, max);
        return sv__fail(SV_ERR_ARG, "%s is out of range: %g..%g", text, min, max);
    }
    *out = v;
    return SV_OK;
}

/* Every field with its type ('s' string, 'z' size_t, 'i' int, 'f' float, 'd' double), its count
   (lists), and its valid range [lo, hi] (lo_open / hi_open: the bound itself is excluded). The
   ranges are where the field means something: a probability below 1 (dropout 1 scales by 1/0), a
   temperature above 0 (logits / 0), at least one negative (none makes the contrastive task
   trivially "accurate"), at least two codebook entries. per_conv: the list holds n_conv entries
   (the rest must be 0). mt4: an MT4SSL field, written (and checked) only when ssl != SV_SSL_W2V2,
   so wav2vec 2.0 configs and their checkpoints read the same as before the field existed. */
typedef struct sv__cfg_field {
    const char *key;
    char type;
    size_t off, count;
    double lo, hi;
    char lo_open, hi_open, per_conv, mt4;
} sv__cfg_field;
#define SV__CF(name, type, count, lo, hi, lo_open, hi_open) { #name, type, offsetof(sv_config, name), count, lo, hi, lo_open, hi_open, 0, 0 }
#define SV__CFC(name, lo, hi) { #name, 'z', offsetof(sv_config, name), SV_MAX_CONV, lo, hi, 0, 0, 1, 0 }
#define SV__CM(name, type, lo, hi) { #name, type, offsetof(sv_config, name), 1, lo, hi, 0, 0, 0, 1 }
static const sv__cfg_field sv__cfg_fields[] = {
    SV__CF(name, 's', 16, 0, 0, 0, 0),
    SV__CF(n_conv, 'z', 1, 1, SV_MAX_CONV, 0, 0),
    SV__CFC(conv_dim, 1, 65536), SV__CFC(conv_kernel, 1, 4096), SV__CFC(conv_stride, 1, 4096),
    SV__CF(extractor_mode, 'i', 1, 0, 1, 0, 0), SV__CF(conv_bias, 'i', 1, 0, 1, 0, 0),
    SV__CF(feature_grad_mult, 'f', 1, 0, 1000, 0, 0), SV__CF(feature_pen_weight, 'f', 1, 0, 1e6, 0, 0),
    SV__CF(D, 'z', 1, 1, 65536, 0, 0), SV__CF(heads, 'z', 1, 1, 4096, 0, 0), SV__CF(ffn, 'z', 1, 1, 1 << 20, 0, 0),
    SV__CF(n_shared, 'z', 1, 1, SV_MAX_LAYERS, 0, 0), SV__CF(n_decoder, 'z', 1, 0, SV_MAX_LAYERS - 1, 0, 0),
    SV__CF(layer_norm_first, 'i', 1, 0, 1, 0, 0),
    SV__CF(dropout, 'f', 1, 0, 1, 0, 1), SV__CF(attn_dropout, 'f', 1, 0, 1, 0, 1), SV__CF(act_dropout, 'f', 1, 0, 1, 0, 1),
    SV__CF(dropout_input, 'f', 1, 0, 1, 0, 1), SV__CF(dropout_features, 'f', 1, 0, 1, 0, 1), SV__CF(layerdrop, 'f', 1, 0, 1, 0, 1),
    SV__CF(pos_kernel, 'z', 1, 1, 4096, 0, 0), SV__CF(pos_groups, 'z', 1, 1, 65536, 0, 0), SV__CF(use_cls, 'i', 1, 0, 1, 0, 0),
    SV__CF(mask_prob, 'f', 1, 0, 1, 0, 0), SV__CF(mask_length, 'z', 1, 1, 100000, 0, 0), SV__CF(mask_min_spans, 'z', 1, 1, 100000, 0, 0),
    SV__CF(q_groups, 'z', 1, 1, 256, 0, 0), SV__CF(q_vars, 'z', 1, 2, 65536, 0, 0), SV__CF(q_dim, 'z', 1, 1, 65536, 0, 0),
    SV__CF(final_dim, 'z', 1, 1, 65536, 0, 0), SV__CF(n_negatives, 'z', 1, 1, 100000, 0, 0),
    SV__CF(logit_temp, 'f', 1, 0, 1e6, 1, 0), SV__CF(tau_max, 'f', 1, 0, 1e6, 1, 0), SV__CF(tau_min, 'f', 1, 0, 1e6, 1, 0),
    SV__CF(diversity_weight, 'f', 1, 0, 1e6, 0, 0),
    SV__CF(tau_decay, 'd', 1, 0, 1, 1, 0), SV__CF(freeze_tau, 'i', 1, 0, 1, 0, 0),
    SV__CF(vgs_width, 'z', 5, 1, 65536, 0, 0), SV__CF(vgs_conv_width, 'z', 1, 1, 4096, 0, 0), SV__CF(vgs_audio_layers, 'z', 1, 0, 4, 0, 0),
    SV__CF(img_regions, 'z', 1, 1, 65536, 0, 0), SV__CF(img_dim, 'z', 1, 1, 1 << 20, 0, 0), SV__CF(img_layers, 'z', 1, 0, 12, 0, 0),
    SV__CF(vgs_heads, 'z', 1, 1, 4096, 0, 0), SV__CF(vgs_ffn, 'z', 1, 1, 1 << 20, 0, 0), SV__CF(vgs_dropout, 'f', 1, 0, 1, 0, 1),
    SV__CF(vgs_ln_eps, 'f', 1, 0, 1, 1, 0),
    SV__CF(E, 'z', 1, 1, 65536, 0, 0), SV__CF(sim_cosine, 'i', 1, 0, 1, 0, 0), SV__CF(margin, 'f', 1, 0, 1e6, 0, 0),
    SV__CF(img_cls_std, 'f', 1, 0, 1e6, 0, 0),
    SV__CM(ssl, 'i', 0, 2), SV__CM(mt4_k, 'z', 2, 65536), SV__CM(mt4_offline_weight, 'f', 0, 1e6), SV__CM(mt4_online_weight, 'f', 0, 1e6),
    SV__CM(mt4_top_k, 'z', 1, SV_MAX_LAYERS), SV__CM(ema_decay, 'f', 0, 1), SV__CM(ema_end_decay, 'f', 0, 1),
    SV__CM(ema_anneal, 'z', 0, 1e12),
    SV__CF(precision, 'p', 1, 0, 1, 0, 0)
};
#define SV__N_CFG_FIELDS (sizeof sv__cfg_fields / sizeof sv__cfg_fields[0])

/* "[0, 1)", "(0, 1e+06]", "1..4096" */
static void sv__cfg_range_text(const sv__cfg_field *f, char *buf, size_t cap)
{
    if (f->type == 'p') snprintf(buf, cap, "fp32|bf16");
    else if (f->type == 'z' || f->type == 'i') snprintf(buf, cap, "%.0f..%.0f", f->lo, f->hi);
    else snprintf(buf, cap, "%c%g, %g%c", f->lo_open ? '(' : '[', f->lo, f->hi, f->hi_open ? ')' : ']');
}

/* The ranges of the table and the relations between fields that the table cannot express;
   called by sv_config_check. The message names the field, its value and what is allowed. */
static int sv__config_check_fields(const sv_config *c)
{
    size_t i, k;
    char range[64];
    for (i = 0; i < SV__N_CFG_FIELDS; i++) {
        const sv__cfg_field *f = &sv__cfg_fields[i];
        const char *base = (const char *)c + f->off;
        size_t n = f->count;
        if (f->type == 's') {
            if (!memchr(base, 0, f->count) || !base[0]) return sv__fail(SV_ERR_ARG, "config: %s must be a non-empty name of at most %zu characters", f->key, f->count - 1);
            continue;
        }
        if (f->mt4 && c->ssl == SV_SSL_W2V2) continue;   /* not written, not used */
        if (f->per_conv) n = c->n_conv <= f->count ? c->n_conv : f->count;
        for (k = 0; k < f->count; k++) {
            double v;
            switch (f->type) {
            case 'z': v = (double)((const size_t *)base)[k]; break;
            case 'i': case 'p': v = (double)((const int *)base)[k]; break;
            case 'f': v = (double)((const float *)base)[k]; break;
            default: v = ((const double *)base)[k]; break;
            }
            if (k >= n) {   /* past n_conv: unused, must stay 0 so the text form is unambiguous */
                if (v != 0) return sv__fail(SV_ERR_ARG, "config: %s[%zu] = %g but n_conv = %zu (entries past n_conv must be 0)", f->key, k, v, c->n_conv);
                continue;
            }
            if (!sv__isfinite(v) || v < f->lo || v > f->hi || (f->lo_open && v == f->lo) || (f->hi_open && v == f->hi)) {
                sv__cfg_range_text(f, range, sizeof range);
                if (f->count > 1) return sv__fail(SV_ERR_ARG, "config: %s[%zu] = %g is out of range %s", f->key, k, v, range);
                return sv__fail(SV_ERR_ARG, "config: %s = %g is out of range %s", f->key, v, range);
            }
        }
    }
    if (c->tau_min > c->tau_max) return sv__fail(SV_ERR_ARG, "config: tau_min = %g is above tau_max = %g", (double)c->tau_min, (double)c->tau_max);
    if (c->heads > c->D) return sv__fail(SV_ERR_ARG, "config: %zu heads for D = %zu", c->heads, c->D);
    if ((double)c->mask_prob >= (double)c->mask_length)   /* every frame a span start: nothing left unmasked */
        return sv__fail(SV_ERR_ARG, "config: mask_prob = %g needs mask_length > 1 (spans would cover every frame)", (double)c->mask_prob);
    if (c->vgs_conv_width % 2 == 0) return sv__fail(SV_ERR_ARG, "config: vgs_conv_width = %zu must be odd (same-length convolutions)", c->vgs_conv_width);
    return SV_OK;
}

/* One value of a field. Sizes take digits only ("-5" would wrap to 2^64 - 5), ints must fit an
   int, floats must be finite in the field's type (1e50 is inf as a float). */
static int sv__cfg_parse_one(const sv__cfg_field *f, const char *key, const char *value, const char *p, char **end, char *base, size_t k)
{
    errno = 0;
    switch (f->type) {
    case 'z': {
        unsigned long long v;
        if (*p < '0' || *p > '9') return sv__fail(SV_ERR_ARG, "config %s: '%s' is not a whole number >= 0", key, value);
        v = strtoull(p, end, 10);
        if (errno == ERANGE) return sv__fail(SV_ERR_ARG, "config %s: '%s' is too large", key, value);
        if (v > (unsigned long long)SIZE_MAX)   /* a 32-bit build */
            return sv__fail(SV_ERR_ARG, "config %s: '%s' does not fit this %u-bit build's size_t", key, value, (unsigned)(sizeof(size_t) * 8));
        ((size_t *)base)[k] = (size_t)v;
        return SV_OK;
    }
    case 'i': {
        long v = strtol(p, end, 10);
        if (*end == p) break;
        if (errno == ERANGE || v < INT_MIN || v > INT_MAX) return sv__fail(SV_ERR_ARG, "config %s: '%s' is too large", key, value);
        ((int *)base)[k] = (int)v;
        return SV_OK;
    }
    default: {
        double v = strtod(p, end);
        if (*end == p) break;
        if (!sv__isfinite(v) || (f->type == 'f' && (v > FLT_MAX || v < -FLT_MAX)))
            return sv__fail(SV_ERR_ARG, "config %s: '%s' is not a finite number", key, value);
        if (f->type == 'f') ((float *)base)[k] = (float)v;
        else ((double *)base)[k] = v;
        return SV_OK;
    }
    }
    return sv__fail(SV_ERR_ARG, "config %s: '%s' is not a number", key, value);
}

SV_DEF int sv_config_set(sv_config *cfg, const char *key, const char *value)
{
    size_t i, k;
    for (i = 0; i < SV__N_CFG_FIELDS; i++) {
        const sv__cfg_field *f = &sv__cfg_fields[i];
        char *base = (char *)cfg + f->off, *end;
        const char *p = value;
        if (strcmp(f->key, key) != 0) continue;
        if (f->type == 's') {
            if (strlen(value) >= f->count) return sv__fail(SV_ERR_ARG, "config %s: '%s' is too long", key, value);
            strcpy(base, value);
            return SV_OK;
        }
        if (f->type == 'p') {   /* a precision by name */
            if (strcmp(value, "fp32") == 0) *(int *)base = SV_FP32;
            else if (strcmp(value, "bf16") == 0) *(int *)base = SV_BF16;
            else return sv__fail(SV_ERR_ARG, "config %s: '%s' is neither fp32 nor bf16", key, value);
            return SV_OK;
        }
        for (k = 0; k < f->count; k++) {
            while (*p == ' ' || *p == ',') p++;
            if (!*p) {
                if (f->count > 1 && k > 0) { /* a shorter list leaves the rest zero */
                    for (; k < f->count; k++) ((size_t *)base)[k] = 0;
                    return SV_OK;
                }
                return sv__fail(SV_ERR_ARG, "config %s: missing value", key);
            }
            if (sv__cfg_parse_one(f, key, value, p, &end, base, k) != SV_OK) return sv_last_status();
            p = end;
        }
        while (*p == ' ') p++;
        if (*p) return sv__fail(SV_ERR_ARG, "config %s: unexpected '%s' after the value", key, p);
        return SV_OK;
    }
    return sv__fail(SV_ERR_ARG, "config: unknown key '%s'", key);
}

SV_DEF size_t sv_config_format(const sv_config *cfg, char *buf, size_t cap)
{
    size_t i, k, n = 0;
    char line[256];
    for (i = 0; i < SV__N_CFG_FIELDS; i++) {
        const sv__cfg_field *f = &sv__cfg_fields[i];
        const char *base = (const char *)cfg + f->off;
        size_t l;
        if (f->mt4 && cfg->ssl == SV_SSL_W2V2) continue;
        if (f->type == 'p' && *(const int *)base == SV_FP32) continue;   /* fp32 configs read as before bf16 existed */
        l = (size_t)snprintf(line, sizeof line, "%s = ", f->key);
        for (k = 0; k < f->count && l < sizeof line - 32; k++) {
            if (f->type == 's') { l += (size_t)snprintf(line + l, sizeof line - l, "%s", base); break; }
            if (f->type == 'p') { l += (size_t)snprintf(line + l, sizeof line - l, "%s", *(const int *)base == SV_BF16 ? "bf16" : "fp32"); break; }
            if (k) line[l++] = ',';
            switch (f->type) {
            case 'z': l += (size_t)snprintf(line + l, sizeof line - l, "%zu", ((const size_t *)base)[k]); break;
            case 'i': l += (size_t)snprintf(line + l, sizeof line - l, "%d", *(const int *)base); break;
            case 'f': l += (size_t)snprintf(line + l, sizeof line - l, "%.9g", (double)*(const float *)base); break;
            default: l += (size_t)snprintf(line + l, sizeof line - l, "%.17g", *(const double *)base); break;
            }
        }
        line[l++] = '\n';
        if (buf && n + l < cap) memcpy(buf + n, line, l);
        n += l;
    }
    if (buf && cap) buf[n < cap ? n : cap - 1] = 0;
    return n;
}

/* ---------------------------------------------------------------- 10.10 datasets */
SV_DEF const char *sv_split_name(int split)
{
    static const char *const names[SV_SPLIT_COUNT] = {"train", "val", "test", "ood"};
    return split >= 0 && split < SV_SPLIT_COUNT ? names[split] : "?";
}

static char *sv__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = (char *)sv__alloc(n, "string");
    if (d) memcpy(d, s, n);
    return d;
}

static int sv__data_alloc_split(sv_data *d, int s, size_t n)
{
    d->n[s] = n;
    d->audio[s] = (float **)sv__calloc(n ? n : 1, sizeof(float *), "dataset");
    d->len[s] = (size_t *)sv__calloc(n ? n : 1, sizeof(size_t), "dataset");
    d->image[s] = (long *)sv__calloc(n ? n : 1, sizeof(long), "dataset");
    d->id[s] = (char **)sv__calloc(n ? n : 1, sizeof(char *), "dataset");
    d->speaker[s] = (int *)sv__calloc(n ? n : 1, sizeof(int), "dataset");
    return d->audio[s] && d->len[s] && d->image[s] && d->id[s] && d->speaker[s] ? SV_OK : SV_ERR_NOMEM;
}

static int sv__data_open(sv_data *d, const char *dir, int streamed)
{
    sv_disk_corpus dc;
    int s, rc;
    size_t i, j;
    memset(d, 0, sizeof *d);
    if (streamed && !(d->image_files = SV__CAST(sv__image_files *, sv__calloc(1, sizeof(sv__image_files), "dataset"))))
        return SV_ERR_NOMEM;
    if ((rc = sv__disk_corpus_open(dir, &dc, d->image_files)) != SV_OK) { SV_FREE(d->image_files); return rc; }
    d->streamed = streamed;
    for (s = 0; s < SV_SPLIT_COUNT; s++) {
        const sv_manifest *m = &dc.split[s];
        if (sv__data_alloc_split(d, s, m->n) != SV_OK) { rc = SV_ERR_NOMEM; goto fail; }
        if (streamed && !(d->wav[s] = (char **)sv__calloc(m->n ? m->n : 1, sizeof(char *), "dataset"))) { rc = SV_ERR_NOMEM; goto fail; }
        for (i = 0; i < m->n; i++) {
            const char *spk = m->has_speaker && m->speaker[i][0] ? m->speaker[i] : m->id[i];
            if (streamed) {   /* the length from the header; the samples when used */
                if ((rc = sv_wav_length_16k(m->wav[i], &d->len[s][i])) != SV_OK) goto fail;
                if (!(d->wav[s][i] = sv__strdup(m->wav[i]))) { rc = SV_ERR_NOMEM; goto fail; }
            } else if ((rc = sv_disk_corpus_audio(&dc, s, i, &d->audio[s][i], &d->len[s][i])) != SV_OK) goto fail;
            d->image[s][i] = m->image[i];
            if (!(d->id[s][i] = sv__strdup(m->id[i]))) { rc = SV_ERR_NOMEM; goto fail; }
            for (j = 0; j < d->n_speakers; j++) if (strcmp(d->speakers[j], spk) == 0) break;
            if (j == d->n_speakers) {
                char **ns = (char **)SV_MALLOC((d->n_speakers + 1) * sizeof(char *));
                if (!ns) { rc = SV_ERR_NOMEM; goto fail; }
                if (d->n_speakers) memcpy(ns, d->speakers, d->n_speakers * sizeof(char *));
                SV_FREE(d->speakers);
                d->speakers = ns;
                if (!(d->speakers[d->n_speakers] = sv__strdup(spk))) { rc = SV_ERR_NOMEM; goto fail; }
                d->n_speakers++;
            }
            d->speaker[s][i] = (int)j;
        }
        if (m->n) {
            if (!(d->manifest[s] = sv__pathf(dir, "%s%s", sv_split_name(s), ".tsv")) ||
                !(d->line[s] = (size_t *)sv__calloc(m->n, sizeof(size_t), "dataset"))) { rc = SV_ERR_NOMEM; goto fail; }
            for (i = 0; i < m->n; i++) d->line[s][i] = m->line ? m->line[i] : i + 2;
        }
        if (dc.has_items[s]) {
            /* every token must lie inside its file: ABX would clip it silently otherwise */
            double *dur = (double *)sv__calloc(m->n ? m->n : 1, sizeof(double), "item check");
            if (!dur) { rc = SV_ERR_NOMEM; goto fail; }
            for (i = 0; i < m->n; i++) dur[i] = (double)d->len[s][i] / 16000.0;
            rc = sv_item_check(&dc.items[s], (const char *const *)m->id, dur, m->n);
            SV_FREE(dur);
            if (rc != SV_OK) { rc = sv__fail(rc, "%s/%s.item: %s", dir, sv_split_name(s), sv_last_error()); goto fail; }
            d->items[s] = dc.items[s]; memset(&dc.items[s], 0, sizeof dc.items[s]); d->has_items[s] = 1;
        }
    }
    /* take the image features over from the disk corpus */
    d->regions = dc.regions; dc.regions = NULL;
    d->boxes = dc.boxes; dc.boxes = NULL;
    d->n_images = dc.n_images;
    d->R = dc.n_regions;
    d->Dimg = dc.region_dim;
    snprintf(d->source, sizeof d->source, "%s", dir);
    sv_disk_corpus_close(&dc);
    return SV_OK;
fail:
    sv_disk_corpus_close(&dc);
    sv_data_free(d);
    return rc;
}

SV_DEF int sv_data_open(sv_data *d, const char *dir) { return sv__data_open(d, dir, 0); }
SV_DEF int sv_data_open_streamed(sv_data *d, const char *dir) { return sv__data_open(d, dir, 1); }

SV_DEF int sv_data_audio(const sv_data *d, int split, size_t i, const float **x, float **owned)
{
    float *y;
    size_t n;
    int rc;
    if (!x || !owned) return sv__fail(SV_ERR_ARG, "sv_data_audio: NULL output");
    *x = NULL;
    *owned = NULL;
    if (!d || split < 0 || split >= SV_SPLIT_COUNT || i >= d->n[split])
        return sv__fail(SV_ERR_ARG, "sv_data_audio: split %d utterance %zu out of range", split, i);
    if (!d->streamed) { *x = d->audio[split][i]; return SV_OK; }
    if ((rc = sv_wav_load_16k(d->wav[split][i], &y, &n)) != SV_OK) return rc;
    if (n != d->len[split][i]) {
        SV_FREE(y);
        return sv__fail(SV_ERR_IO, "%s: %zu samples at 16 kHz, %zu when the data was opened (the file changed)",
                        d->wav[split][i], n, d->len[split][i]);
    }
    *x = y;
    *owned = y;
    return SV_OK;
}

static int sv__data_audio_manifest(sv_data *d, const char *path, int streamed)
{
    sv_manifest m;
    size_t i;
    int rc;
    memset(d, 0, sizeof *d);
    if ((rc = sv_manifest_read(path, &m)) != SV_OK) return rc;
    d->streamed = streamed;
    if (sv__data_alloc_split(d, SV_SPLIT_TRAIN, m.n) != SV_OK ||
        (streamed && !(d->wav[SV_SPLIT_TRAIN] = (char **)sv__calloc(m.n ? m.n : 1, sizeof(char *), "dataset")))) {
        sv_manifest_free(&m); sv_data_free(d); return SV_ERR_NOMEM;
    }
    for (i = 0; i < m.n; i++) {
        rc = streamed ? sv_wav_length_16k(m.wav[i], &d->len[SV_SPLIT_TRAIN][i])
                      : sv_wav_load_16k(m.wav[i], &d->audio[SV_SPLIT_TRAIN][i], &d->len[SV_SPLIT_TRAIN][i]);
        if (rc == SV_OK && streamed && !(d->wav[SV_SPLIT_TRAIN][i] = sv__strdup(m.wav[i]))) rc = SV_ERR_NOMEM;
        if (rc != SV_OK) {
            sv_manifest_free(&m);
            sv_data_free(d);
            return rc;
        }
        d->image[SV_SPLIT_TRAIN][i] = -1;
        if (!(d->id[SV_SPLIT_TRAIN][i] = sv__strdup(m.id[i]))) { sv_manifest_free(&m); sv_data_free(d); return SV_ERR_NOMEM; }
    }
    d->manifest[SV_SPLIT_TRAIN] = sv__strdup(path);
    d->line[SV_SPLIT_TRAIN] = m.line;
    m.line = NULL;
    if (!d->manifest[SV_SPLIT_TRAIN]) { sv_manifest_free(&m); sv_data_free(d); return SV_ERR_NOMEM; }
    snprintf(d->source, sizeof d->source, "%s", path);
    sv_manifest_free(&m);
    return SV_OK;
}

SV_DEF int sv_data_image(const sv_data *d, size_t img, float *regions, float *boxes)
{
    size_t RD;
    int rc = SV_OK;
    if (!d || img >= d->n_images) return sv__fail(SV_ERR_ARG, "sv_data_image: image %zu out of range", img);
    RD = d->R * d->Dimg;
    if (!d->image_files) {
        if (regions) memcpy(regions, d->regions + img * RD, RD * sizeof(float));
        if (boxes) memcpy(boxes, d->boxes + img * d->R * 4, d->R * 4 * sizeof(float));
        return SV_OK;
    }
    if (regions) rc = sv__npy_read_rows(d->image_files->regions_path, &d->image_files->regions, img, 1, regions);
    if (rc == SV_OK && boxes) rc = sv__npy_read_rows(d->image_files->boxes_path, &d->image_files->boxes, img, 1, boxes);
    return rc;
}

SV_DEF int sv_data_audio_manifest(sv_data *d, const char *path) { return sv__data_audio_manifest(d, path, 0); }
SV_DEF int sv_data_audio_manifest_streamed(sv_data *d, const char *path) { return sv__data_audio_manifest(d, path, 1); }

SV_DEF int sv_data_abx_set(sv_data *d, const char *path)
{
    sv_manifest m;
    char *item_path = NULL, *text = NULL, *dir = NULL, **names = NULL;
    double *dur = NULL;
    size_t i, n = path ? strlen(path) : 0, cap, len = 0;
    int rc = SV_OK, is_item;
    memset(d, 0, sizeof *d);
    memset(&m, 0, sizeof m);
    if (!n) return sv__fail(SV_ERR_ARG, "ABX set: empty path");
    is_item = n > 5 && strcmp(path + n - 5, ".item") == 0;
    if (is_item) {
        /* the audio beside the .item: a manifest "id wav" built from its file names */
        const char *sl = strrchr(path, '/');
        if (!(item_path = sv__strdup(path))) return SV_ERR_NOMEM;
        if ((rc = sv_item_read(item_path, &d->items[SV_SPLIT_OOD])) != SV_OK) goto done;
        dir = SV__CAST(char *, sv__alloc(n + 2, "ABX set"));
        if (!dir) { rc = SV_ERR_NOMEM; goto done; }
        if (sl) { memcpy(dir, path, (size_t)(sl - path)); dir[sl - path] = 0; if (!dir[0]) strcpy(dir, "/"); }
        else strcpy(dir, ".");
        cap = 16;
        for (i = 0; i < d->items[SV_SPLIT_OOD].n_files; i++) cap += 2 * strlen(d->items[SV_SPLIT_OOD].files[i]) + 8;
        if (!(text = SV__CAST(char *, sv__alloc(cap, "ABX set")))) { rc = SV_ERR_NOMEM; goto done; }
        len += (size_t)snprintf(text, cap, "id\twav\n");
        for (i = 0; i < d->items[SV_SPLIT_OOD].n_files; i++)
            len += (size_t)snprintf(text + len, cap - len, "%s\t%s.wav\n", d->items[SV_SPLIT_OOD].files[i], d->items[SV_SPLIT_OOD].files[i]);
        if ((rc = sv_manifest_parse(text, len, path, dir, &m)) != SV_OK) goto done;
    } else {
        const char *dot = strrchr(path, '.'), *sl = strrchr(path, '/');
        size_t stem = dot && (!sl || dot > sl) ? (size_t)(dot - path) : n;
        if (!(item_path = SV__CAST(char *, sv__alloc(stem + 6, "ABX set")))) return SV_ERR_NOMEM;
        memcpy(item_path, path, stem);
        memcpy(item_path + stem, ".item", 6);
        if (!sv__file_exists(item_path)) { rc = sv__fail(SV_ERR_IO, "ABX set %s: no %s beside it (the .item of its ABX tokens)", path, item_path); goto done; }
        if ((rc = sv_manifest_read(path, &m)) != SV_OK) goto done;
        if ((rc = sv_item_read(item_path, &d->items[SV_SPLIT_OOD])) != SV_OK) goto done;
    }
    if ((rc = sv__data_alloc_split(d, SV_SPLIT_OOD, m.n)) != SV_OK) goto done;
    names = SV__CAST(char **, sv__calloc(m.n + 1, sizeof(char *), "ABX set"));
    dur = SV__CAST(double *, sv__calloc(m.n + 1, sizeof(double), "ABX set"));
    if (!names || !dur) { rc = SV_ERR_NOMEM; goto done; }
    for (i = 0; i < m.n; i++) {
        if ((rc = sv_wav_load_16k(m.wav[i], &d->audio[SV_SPLIT_OOD][i], &d->len[SV_SPLIT_OOD][i])) != SV_OK) goto done;
        d->image[SV_SPLIT_OOD][i] = -1;
        if (!(d->id[SV_SPLIT_OOD][i] = sv__strdup(m.id[i]))) { rc = SV_ERR_NOMEM; goto done; }
        names[i] = m.id[i];
        dur[i] = (double)d->len[SV_SPLIT_OOD][i] / 16000.0;
    }
    if ((rc = sv_item_check(&d->items[SV_SPLIT_OOD], (const char *const *)names, dur, m.n)) != SV_OK) goto done;
    d->has_items[SV_SPLIT_OOD] = 1;
    d->manifest[SV_SPLIT_OOD] = sv__strdup(is_item ? item_path : path);
    d->line[SV_SPLIT_OOD] = m.line;
    m.line = NULL;
    if (!d->manifest[SV_SPLIT_OOD]) { rc = SV_ERR_NOMEM; goto done; }
    snprintf(d->source, sizeof d->source, "%s", path);
done:
    sv_manifest_free(&m);
    SV_FREE(item_path); SV_FREE(text); SV_FREE(dir); SV_FREE(names); SV_FREE(dur);
    if (rc != SV_OK) sv_data_free(d);
    return rc;
}

SV_DEF void sv_data_free(sv_data *d)
{
    int s;
    size_t i;
    if (!d) return;
    for (s = 0; s < SV_SPLIT_COUNT; s++) {
        for (i = 0; i < d->n[s]; i++) {
            if (!d->builtin && d->audio[s]) SV_FREE(d->audio[s][i]);
            if (d->id[s]) SV_FREE(d->id[s][i]);
            if (d->wav[s]) SV_FREE(d->wav[s][i]);
        }
        SV_FREE(d->wav[s]);
        SV_FREE(d->audio[s]); SV_FREE(d->len[s]); SV_FREE(d->image[s]); SV_FREE(d->id[s]); SV_FREE(d->speaker[s]);
        SV_FREE(d->manifest[s]); SV_FREE(d->line[s]);
        sv_item_set_free(&d->items[s]);
    }
    for (i = 0; i < d->n_speakers; i++) SV_FREE(d->speakers[i]);
    SV_FREE(d->speakers);
    if (d->image_files) { SV_FREE(d->image_files->regions_path); SV_FREE(d->image_files->boxes_path); SV_FREE(d->image_files); }
#ifndef SSL_VGS_NO_CORPUS
    if (d->builtin) sv_corpus_free(d->builtin);
    else
#endif
    { SV_FREE(d->regions); SV_FREE(d->boxes); }
    memset(d, 0, sizeof *d);
}

SV_DEF long sv_data_find(const sv_data *d, int split, const char *id)
{
    size_t i;
    for (i = 0; i < d->n[split]; i++) if (strcmp(d->id[split][i], id) == 0) return (long)i;
    return -1;
}

#ifndef SSL_VGS_NO_CORPUS
static int sv__builtin_spec_parse(const char *spec, sv_corpus_config *cc);   /* section 12.8 */
#endif
static int sv__is_builtin_spec(const char *spec) { return strncmp(spec, "builtin", 7) == 0 && (spec[7] == 0 || spec[7] == ':'); }

SV_DEF int sv_data_spec_check(const char *spec)
{
    if (!spec || !*spec) return sv__fail(SV_ERR_ARG, "empty data spec");
    if (!sv__is_builtin_spec(spec)) return SV_OK;
#ifdef SSL_VGS_NO_CORPUS
    return sv__fail(SV_ERR_ARG, "data spec '%s': this build has no built-in corpus (SSL_VGS_NO_CORPUS)", spec);
#else
    {
        sv_corpus_config cc;
        return sv__builtin_spec_parse(spec, &cc);
    }
#endif
}

/* "builtin" or "builtin:key=value,..." (section 12), else a corpus folder. */
static int sv__data_from_spec(sv_data *d, const char *spec, int streamed)
{
    int rc;
    memset(d, 0, sizeof *d);
    if ((rc = sv_data_spec_check(spec)) != SV_OK) return rc;
    if (!sv__is_builtin_spec(spec)) return sv__data_open(d, spec, streamed);
#ifdef SSL_VGS_NO_CORPUS
    return SV_ERR_ARG;
#else
    {
        sv_corpus_config cc;
        sv__builtin_spec_parse(spec, &cc);
        return sv_data_builtin(d, &cc);
    }
#endif
}

SV_DEF int sv_data_from_spec(sv_data *d, const char *spec) { return sv__data_from_spec(d, spec, 0); }
SV_DEF int sv_data_from_spec_streamed(sv_data *d, const char *spec) { return sv__data_from_spec(d, spec, 1); }

SV_DEF void sv_data_where(const sv_data *d, int split, size_t i, char *buf, size_t cap)
{
    const char *id = split >= 0 && split < SV_SPLIT_COUNT && i < d->n[split] && d->id[split] ? d->id[split][i] : "?";
    if (split >= 0 && split < SV_SPLIT_COUNT && d->manifest[split] && d->line[split] && i < d->n[split])
        snprintf(buf, cap, "%s:%zu (utterance '%s')", d->manifest[split], d->line[split][i], id);
    else
        snprintf(buf, cap, "%s (%s utterance '%s')", d->builtin ? "the built-in corpus" : d->source,
                 split >= 0 && split < SV_SPLIT_COUNT ? sv_split_name(split) : "?", id);
}

SV_DEF size_t sv_config_min_samples(const sv_config *cfg, int ssl)
{
    size_t rf = sv_config_receptive_field(cfg), hop = 1, F = 1, n, i;
    for (i = 0; i < cfg->n_conv; i++) hop *= cfg->conv_stride[i];
    if (ssl) {
        /* sv_w2v2_compute_mask: spans = max(min_spans, floor(prob * T / span + u)), u in [0,1),
           at most max(min_spans, ceil(prob * T / span)); it needs T >= spans + 2 */
        for (F = 1; F < 1000000; F++) {
            double x = (double)cfg->mask_prob * (double)F / (double)cfg->mask_length, c = ceil(x);
            size_t spans = c > (double)cfg->mask_min_spans ? (size_t)c : cfg->mask_min_spans;
            if (F >= spans + 2) break;
        }
        if (F == 1000000) return 0;
    }
    n = rf + (F - 1) * hop;
    while (sv_config_frames(cfg, n) < F) n++;
    return n;
}

SV_DEF int sv_data_check(const sv_data *d, int split, size_t min_samples, int need_images)
{
    size_t i, with_image = 0;
    char where[1200];
    if (split < 0 || split >= SV_SPLIT_COUNT) return sv__fail(SV_ERR_ARG, "sv_data_check: bad split %d", split);
    for (i = 0; i < d->n[split]; i++) {
        if (d->len[split][i] < min_samples) {
            sv_data_where(d, split, i, where, sizeof where);
            return sv__fail(SV_ERR_FORMAT, "%s: %zu samples (%.3f s) of audio, shorter than the %zu (%.3f s) the model needs",
                            where, d->len[split][i], (double)d->len[split][i] / 16000.0, min_samples, (double)min_samples / 16000.0);
        }
        with_image += d->image[split][i] >= 0;
    }
    if (need_images && d->n[split] && !with_image) {
        if (d->manifest[split])
            return sv__fail(SV_ERR_FORMAT, "%s: no utterance has an image (no image column, or every image is -1): "
                                           "the VGS loss needs images", d->manifest[split]);
        return sv__fail(SV_ERR_FORMAT, "%s: the %s split has no images: the VGS loss needs images", d->source, sv_split_name(split));
    }
    return SV_OK;
}

/* ---------------------------------------------------------------- 10.11 batches */
/* frames of n samples on the targets' grid */
static size_t sv__km_frames_of(const struct sv_km_targets *t, size_t n)
{
    return n < t->frame_length ? 0 : 1 + (n - t->frame_length) / t->hop;
}

SV_DEF int sv_loader_init(sv_loader *L, const sv_data *d, int split, size_t B, size_t max_samples, uint64_t seed)
{
    size_t n = d->n[split];
    memset(L, 0, sizeof *L);
    if (B == 0) return sv__fail(SV_ERR_ARG, "batch size 0");
    if (n < B) return sv__fail(SV_ERR_ARG, "the %s split has %zu utterances, fewer than one batch of %zu", sv_split_name(split), n, B);
    L->d = d; L->split = split; L->B = B; L->max_samples = max_samples ? max_samples : (size_t)8 * 16000; L->seed = seed;
    L->n_batches = n / B;             /* the remainder of an epoch is dropped (next epoch reshuffles) */
    L->order_epoch = SIZE_MAX;
    L->order = (size_t *)sv__calloc(n, sizeof(size_t), "loader");
    L->wave = (float *)sv__calloc(sv__prod4(B, L->max_samples, 1, 1), sizeof(float), "loader");
    L->wave_len = (size_t *)sv__calloc(B, sizeof(size_t), "loader");
    L->image_id = (long *)sv__calloc(B, sizeof(long), "loader");
    L->utt = (size_t *)sv__calloc(B, sizeof(size_t), "loader");
    L->scratch = (size_t *)sv__calloc(32 * B, sizeof(size_t), "loader");
    if (d->n_images) {
        L->regions = (float *)sv__calloc(sv__prod4(B, d->R, d->Dimg, 1), sizeof(float), "loader");
        L->boxes = (float *)sv__calloc(B * d->R * 4, sizeof(float), "loader");
    }
    if (d->targets) {
        L->km_cap = B * (sv__km_frames_of(d->targets, L->max_samples) + 1);
        L->km = (int *)sv__calloc(L->km_cap, sizeof(int), "loader");
    }
    if (!L->order || !L->wave || !L->wave_len || !L->image_id || !L->utt || !L->scratch ||
        (d->n_images && (!L->regions || !L->boxes)) || (d->targets && !L->km)) {
        sv_loader_free(L);
        return SV_ERR_NOMEM;
    }
    return SV_OK;
}

SV_DEF void sv_loader_free(sv_loader *L)
{
    SV_FREE(L->order); SV_FREE(L->wave); SV_FREE(L->wave_len); SV_FREE(L->image_id); SV_FREE(L->utt);
    SV_FREE(L->regions); SV_FREE(L->boxes); SV_FREE(L->scratch); SV_FREE(L->km);
    memset(L, 0, sizeof *L);
}

/* a[0..n) by len[a[i]], stable (bottom-up merge sort through tmp[n]): utterances of equal
   length keep their shuffled order, on every C library (qsort need not be stable). */
static void sv__sort_by_len(size_t *a, size_t n, const size_t *len, size_t *tmp)
{
    size_t w, i;
    for (w = 1; w < n; w *= 2) {
        for (i = 0; i < n; i += 2 * w) {
            size_t mid = i + w < n ? i + w : n, hi = i + 2 * w < n ? i + 2 * w : n, p = i, q = mid, k = i;
            while (p < mid && q < hi) tmp[k++] = len[a[q]] < len[a[p]] ? a[q++] : a[p++];
            while (p < mid) tmp[k++] = a[p++];
            while (q < hi) tmp[k++] = a[q++];
        }
        memcpy(a, tmp, n * sizeof *a);
    }
}

/* The epoch's order: shuffle, sort buckets of 32 batches by length, shuffle the batches. */
static void sv__loader_epoch(sv_loader *L, size_t epoch)
{
    size_t n = L->d->n[L->split], i, B = L->B, nb = L->n_batches, bucket = 32 * B, *tmp = L->scratch;
    sv_rng r, base;
    sv_rng_seed(&base, L->seed);
    r = sv_rng_fork(&base, 1000003u * (uint64_t)epoch + 17u);
    for (i = 0; i < n; i++) L->order[i] = i;
    for (i = n; i > 1; i--) { size_t j = sv_rng_below(&r, i), t = L->order[i - 1]; L->order[i - 1] = L->order[j]; L->order[j] = t; }
    for (i = 0; i < nb * B; i += bucket)
        sv__sort_by_len(L->order + i, i + bucket < nb * B ? bucket : nb * B - i, L->d->len[L->split], tmp);
    /* shuffle whole batches */
    for (i = nb; i > 1; i--) {
        size_t j = sv_rng_below(&r, i);
        memcpy(tmp, L->order + (i - 1) * B, B * sizeof(size_t));
        memcpy(L->order + (i - 1) * B, L->order + j * B, B * sizeof(size_t));
        memcpy(L->order + j * B, tmp, B * sizeof(size_t));
    }
    L->order_epoch = epoch;
}

/* Row i of the batch's offline targets: utterance u cropped at sample off (a multiple of hop). */
static void sv__fill_km(sv_loader *L, size_t i, size_t u, size_t off, size_t S, size_t k)
{
    const struct sv_km_targets *t = L->d->targets;
    size_t T = sv__km_frames_of(t, S), F = sv__km_frames_of(t, L->wave_len[i]), n = 0, f;
    const uint16_t *lab = t->has[L->split] ? t->labels[L->split] + t->offset[L->split][u] : NULL;
    if (lab) n = t->offset[L->split][u + 1] - t->offset[L->split][u];
    (void)k;
    for (f = 0; f < T; f++) L->km[i * T + f] = f < F && lab && off / t->hop + f < n ? (int)lab[off / t->hop + f] : -1;
}

/* The crop offset of an utterance of n samples (r NULL: the start): uniform, or on the offline
   targets' frame grid. */
static size_t sv__crop_offset(const sv_loader *L, size_t n, sv_rng *r)
{
    if (n <= L->max_samples || !r) return 0;
    if (L->d->targets) {
        size_t hop = L->d->targets->hop;
        return hop * sv_rng_below(r, (n - L->max_samples) / hop + 1);
    }
    return sv_rng_below(r, n - L->max_samples + 1);
}

/* Row i of the batch buffers (width S) from utterance u cropped at off: copy, zero-pad,
   normalise, gather its image rows and offline targets. An audio-only row is its own "image"
   (id -1 - pos, pos its position in the global batch). Streamed data: the utterance's file is
   read here (one read of one file per row: the decoding dwarfs the buffer it allocates). */
static int sv__fill_row(sv_loader *L, size_t i, size_t u, size_t S, size_t off, size_t pos)
{
    const sv_data *d = L->d;
    size_t RD = d->R * d->Dimg;
    long img = d->image[L->split][u];
    const float *x;
    float *owned;
    int rc;
    if ((rc = sv_data_audio(d, L->split, u, &x, &owned)) != SV_OK) return rc;
    if (L->km) sv__fill_km(L, i, u, off, S, 0);
    memcpy(L->wave + i * S, x + off, L->wave_len[i] * sizeof(float));
    SV_FREE(owned);
    memset(L->wave + i * S + L->wave_len[i], 0, (S - L->wave_len[i]) * sizeof(float));
    sv_normalize_wave(L->wave + i * S, L->wave_len[i]);
    if (L->regions) {
        if (img >= 0) {
            if ((rc = sv_data_image(d, (size_t)img, L->regions + i * RD, L->boxes + i * d->R * 4)) != SV_OK) return rc;
        } else {
            memset(L->regions + i * RD, 0, RD * sizeof(float));
            memset(L->boxes + i * d->R * 4, 0, d->R * 4 * sizeof(float));
        }
    }
    L->image_id[i] = img >= 0 ? img : -1 - (long)pos;
    return SV_OK;
}

static void sv__batch_out(sv_loader *L, size_t k, size_t S, sv_batch *out)
{
    memset(out, 0, sizeof *out);
    if (L->km) { out->km = L->km; out->km_T = sv__km_frames_of(L->d->targets, S); }
    out->B = k; out->S = S; out->wave = L->wave; out->wave_len = L->wave_len;
    out->R = L->d->R; out->Dimg = L->d->Dimg;
    out->regions = L->regions; out->boxes = L->boxes; out->image_id = L->image_id;
}

/* Copy utterances utt[0..k) into the batch buffers: crop (random offset from r, or the start),
   normalise, gather image rows. */
static int sv__fill_batch(sv_loader *L, size_t k, sv_rng *r, sv_batch *out)
{
    const sv_data *d = L->d;
    size_t i, S = 0;
    int rc;
    for (i = 0; i < k; i++) {
        size_t n = d->len[L->split][L->utt[i]];
        L->wave_len[i] = n < L->max_samples ? n : L->max_samples;
        if (L->wave_len[i] > S) S = L->wave_len[i];
    }
    for (i = 0; i < k; i++) {
        size_t u = L->utt[i];
        if ((rc = sv__fill_row(L, i, u, S, sv__crop_offset(L, d->len[L->split][u], r), i)) != SV_OK) return rc;
    }
    sv__batch_out(L, k, S, out);
    return SV_OK;
}

SV_DEF int sv_loader_next(sv_loader *L, sv_batch *out)
{
    sv_rng base, r;
    size_t i;
    int rc;
    if (L->batch >= L->n_batches) { L->epoch++; L->batch = 0; }
    if (L->order_epoch != L->epoch) sv__loader_epoch(L, L->epoch);
    for (i = 0; i < L->B; i++) L->utt[i] = L->order[L->batch * L->B + i];
    sv_rng_seed(&base, L->seed ^ 0x5DEECE66Dull);
    r = sv_rng_fork(&base, (uint64_t)L->epoch * 1000003u + L->batch);   /* crops depend only on the position */
    if ((rc = sv__fill_batch(L, L->B, &r, out)) != SV_OK) return rc;
    L->batch++;
    return SV_OK;
}

SV_DEF int sv_loader_next_shard(sv_loader *L, size_t first, size_t count, sv_batch *out)
{
    const sv_data *d = L->d;
    size_t i, S = 0, *pos;
    uint64_t key;
    int rc;
    if (count == 0 || first > L->B || count > L->B - first)
        return sv__fail(SV_ERR_ARG, "loader: samples [%zu, %zu) of a batch of %zu", first, first + count, L->B);
    if (L->batch >= L->n_batches) { L->epoch++; L->batch = 0; }
    if (L->order_epoch != L->epoch) sv__loader_epoch(L, L->epoch);
    pos = L->order + L->batch * L->B;
    for (i = 0; i < L->B; i++) {   /* the global batch's width: lengths are known without reading audio */
        size_t n = d->len[L->split][pos[i]], len = n < L->max_samples ? n : L->max_samples;
        if (len > S) S = len;
    }
    key = sv_rng_key(sv_rng_key(sv_rng_key(L->seed, SV_DRAW_CROP), L->epoch), L->batch);
    for (i = 0; i < count; i++) {
        size_t u = pos[first + i], n = d->len[L->split][u];
        sv_rng r;
        sv_rng_seed(&r, sv_rng_key(key, first + i));
        L->utt[i] = u;
        L->wave_len[i] = n < L->max_samples ? n : L->max_samples;
        if ((rc = sv__fill_row(L, i, u, S, sv__crop_offset(L, n, &r), first + i)) != SV_OK) return rc;
    }
    sv__batch_out(L, count, S, out);
    L->batch++;
    return SV_OK;
}

SV_DEF int sv_loader_eval_batch(sv_loader *L, size_t k, sv_batch *out)
{
    size_t n = L->d->n[L->split], b0 = k * L->B, i, cnt;
    if (b0 >= n) return sv__fail(SV_ERR_ARG, "evaluation batch %zu is past the end of the %s split", k, sv_split_name(L->split));
    cnt = n - b0 < L->B ? n - b0 : L->B;
    for (i = 0; i < cnt; i++) L->utt[i] = b0 + i;
    return sv__fill_batch(L, cnt, NULL, out);
}

/* ---------------------------------------------------------------- 10.12 checkpoints
   Layout (every number little-endian, whatever the host; u32/u64/f32 below):
     "SSLVGSCK", u32 version 2, u32 0x01020304, u64 n + n bytes of config text,
     u64 m + m bytes of run settings text (version 2 only; version 1 files are still read),
     u64 tensor count, per tensor: u32 name length, name, u32 kind, u32 ndim, u64 dims, f32 data;
     u32 has_optimizer: f32 lr beta1 beta2 eps weight_decay clip_norm, u32 bias_correction,
       4 zero bytes, u64 t; then per SV_PARAM tensor its f32 Adam moments m, v;
     u32 has_position: u64 step, u32 stage, 4 zero bytes, u64 stage_step epoch batch,
       4 x u64 RNG state, f32 alpha, 64 bytes scenario (NUL-padded), 4 zero bytes;
     u64 FNV-1a 64 of every byte before it.
   The zero bytes are where a 64-bit compiler pads sv_adam and sv_train_pos: files written
   before these fields were written one by one (as raw structs, x86-64 / aarch64 only) have the
   same layout and still load. A count that does not fit this host's size_t (a 32-bit build)
   is refused, never truncated. */
#define SV__CKPT_MAGIC "SSLVGSCK"
#define SV__CKPT_VERSION 2u       /* 2: a settings block after the config; 1 is still read */

typedef struct sv__wr { FILE *f; uint64_t h; int err; } sv__wr;

static void sv__wr_bytes(sv__wr *w, const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++) { w->h ^= b[i]; w->h *= 0x100000001B3ull; }   /* FNV-1a 64 */
    if (!w->err && fwrite(p, 1, n, w->f) != n) w->err = 1;
}
static void sv__wr_u64(sv__wr *w, uint64_t v) { unsigned char b[8]; sv__wr64(b, v); sv__wr_bytes(w, b, 8); }
static void sv__wr_u32(sv__wr *w, uint32_t v) { unsigned char b[4]; sv__wr32(b, v); sv__wr_bytes(w, b, 4); }
static void sv__wr_f32(sv__wr *w, float v) { unsigned char b[4]; sv__wrf32(b, v); sv__wr_bytes(w, b, 4); }
static void sv__wr_f32s(sv__wr *w, const float *x, size_t n)
{
    unsigned char chunk[4096];
    size_t m;
    if (sv__host_le()) { sv__wr_bytes(w, x, n * sizeof(float)); return; }
    for (; n; n -= m, x += m) {
        m = n < sizeof chunk / 4 ? n : sizeof chunk / 4;
        sv__le_copy(chunk, x, m, 4);
        sv__wr_bytes(w, chunk, m * 4);
    }
}

static void sv__ckpt_put_adam(sv__wr *w, const sv_adam *o)
{
    sv__wr_f32(w, o->lr); sv__wr_f32(w, o->beta1); sv__wr_f32(w, o->beta2);
    sv__wr_f32(w, o->eps); sv__wr_f32(w, o->weight_decay); sv__wr_f32(w, o->clip_norm);
    sv__wr_u32(w, (uint32_t)o->bias_correction);
    sv__wr_u32(w, 0);
    sv__wr_u64(w, o->t);
}

static void sv__ckpt_put_pos(sv__wr *w, const sv_train_pos *p)
{
    char scen[sizeof p->scenario];
    int i;
    sv__wr_u64(w, p->step);
    sv__wr_u32(w, (uint32_t)p->stage);
    sv__wr_u32(w, 0);
    sv__wr_u64(w, p->stage_step);
    sv__wr_u64(w, p->epoch);
    sv__wr_u64(w, p->batch);
    for (i = 0; i < 4; i++) sv__wr_u64(w, p->rng.s[i]);
    sv__wr_f32(w, p->alpha);
    memset(scen, 0, sizeof scen);   /* the bytes after the NUL are not the caller's */
    for (i = 0; i < (int)sizeof scen - 1 && p->scenario[i]; i++) scen[i] = p->scenario[i];
    sv__wr_bytes(w, scen, sizeof scen);
    sv__wr_u32(w, 0);
}

static size_t sv__count_nonfinite(const float *x, size_t n)
{
    size_t i, bad = 0;
    for (i = 0; i < n; i++) bad += !sv__isfinite((double)x[i]);
    return bad;
}

/* The first tensor (values, or Adam moments when with_moments) holding NaN/inf: an error naming
   it and the total count over the model, else SV_OK. */
static int sv__ckpt_finite(const char *path, const sv_params *p, int with_moments, const char *what)
{
    size_t i, total = 0;
    const char *first = NULL, *in = "";
    for (i = 0; i < p->count; i++) {
        size_t o = p->offset[i], n = p->t[i]->n, b = sv__count_nonfinite(p->data + o, n);
        const char *where = "";
        if (with_moments && p->t[i]->kind == SV_PARAM && p->m && p->v) {
            size_t bm = sv__count_nonfinite(p->m + o, n) + sv__count_nonfinite(p->v + o, n);
            if (bm && !b) where = " (Adam moments)";
            b += bm;
        }
        if (b && !first) { first = p->t[i]->name; in = where; }
        total += b;
    }
    if (!total) return SV_OK;
    return sv__fail(SV_ERR_NUMERIC, "%s: %s: %zu non-finite values (NaN/inf), the first in tensor '%s'%s", path, what, total, first, in);
}

SV_DEF int sv_checkpoint_save(const char *path, const sv_model *m, const sv_adam *opt, const sv_train_pos *pos)
{
    return sv_checkpoint_save_settings(path, m, opt, pos, NULL);
}

SV_DEF int sv_checkpoint_save_settings(const char *path, const sv_model *m, const sv_adam *opt, const sv_train_pos *pos,
                                       const char *settings)
{
    char tmp[1024], cfgtext[8192];
    sv__wr w;
    size_t i, clen, slen = settings ? strlen(settings) : 0;
    const sv_params *p = &m->params;
    if (strlen(path) + 5 > sizeof tmp) return sv__fail(SV_ERR_ARG, "checkpoint path too long");
    /* a model that has gone non-finite is not worth keeping, and must not replace a good file */
    if (sv__ckpt_finite(path, p, opt != NULL, "not written: the model holds") != SV_OK) return SV_ERR_NUMERIC;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    w.f = fopen(tmp, "wb");
    if (!w.f) return sv__fail(SV_ERR_IO, "%s: cannot write (%s)", tmp, strerror(errno));
    w.h = 0xCBF29CE484222325ull;
    w.err = 0;
    sv__wr_bytes(&w, SV__CKPT_MAGIC, 8);
    sv__wr_u32(&w, SV__CKPT_VERSION);
    sv__wr_u32(&w, 0x01020304u);                     /* byte order check */
    clen = sv_config_format(&m->cfg, cfgtext, sizeof cfgtext);
    sv__wr_u64(&w, clen);
    sv__wr_bytes(&w, cfgtext, clen);
    sv__wr_u64(&w, slen);
    sv__wr_bytes(&w, settings ? settings : "", slen);
    sv__wr_u64(&w, p->count);
    for (i = 0; i < p->count; i++) {
        const sv_tensor *t = p->t[i];
        int d;
        sv__wr_u32(&w, (uint32_t)strlen(t->name));
        sv__wr_bytes(&w, t->name, strlen(t->name));
        sv__wr_u32(&w, (uint32_t)t->kind);
        sv__wr_u32(&w, (uint32_t)t->ndim);
        for (d = 0; d < t->ndim; d++) sv__wr_u64(&w, t->shape[d]);
        sv__wr_f32s(&w, t->data, t->n);
    }
    sv__wr_u32(&w, opt ? 1u : 0u);
    if (opt) {
        sv__ckpt_put_adam(&w, opt);
        for (i = 0; i < p->count; i++) {
            if (p->t[i]->kind != SV_PARAM) continue;
            sv__wr_f32s(&w, p->m + p->offset[i], p->t[i]->n);
            sv__wr_f32s(&w, p->v + p->offset[i], p->t[i]->n);
        }
    }
    sv__wr_u32(&w, pos ? 1u : 0u);
    if (pos) sv__ckpt_put_pos(&w, pos);
    {
        uint64_t h = w.h;
        sv__wr_u64(&w, h);
    }
    if (fflush(w.f) != 0) w.err = 1;
#ifdef SV__HAVE_FSYNC
    if (!w.err && fsync(fileno(w.f)) != 0) w.err = 1;   /* durable before the rename publishes it */
#endif
    if (fclose(w.f) != 0) w.err = 1;
    if (w.err) { remove(tmp); return sv__fail(SV_ERR_IO, "%s: write failed (disk full?)", tmp); }
    {
        char why[128];
        if (sv__rename_over(tmp, path, why, sizeof why) != 0) { remove(tmp); return sv__fail(SV_ERR_IO, "%s: cannot rename into place (%s)", path, why); }
    }
    return SV_OK;
}

typedef struct sv__rd { const unsigned char *p; size_t n, at; int err; } sv__rd;
static const void *sv__rd_bytes(sv__rd *r, size_t n)
{
    const void *q;
    if (r->err || n > r->n - r->at) { r->err = 1; return NULL; }
    q = r->p + r->at;
    r->at += n;
    return q;
}
static uint64_t sv__rd_u64(sv__rd *r) { const unsigned char *q = (const unsigned char *)sv__rd_bytes(r, 8); return q ? sv__rd64(q) : 0; }
static uint32_t sv__rd_u32(sv__rd *r) { const unsigned char *q = (const unsigned char *)sv__rd_bytes(r, 4); return q ? sv__rd32(q) : 0; }
static float sv__rd_f32(sv__rd *r) { const unsigned char *q = (const unsigned char *)sv__rd_bytes(r, 4); return q ? sv__rdf32(q) : 0.0f; }
/* A u64 count or position as size_t: an error (r->err) when this host's size_t cannot hold it. */
static size_t sv__rd_size(sv__rd *r)
{
    uint64_t v = sv__rd_u64(r);
    if (v > (uint64_t)SIZE_MAX) { r->err = 2; return 0; }
    return (size_t)v;
}
/* n floats into dst (NULL: skip them); 0 when the input is truncated. */
static int sv__rd_f32s(sv__rd *r, float *dst, size_t n)
{
    const void *q = n <= SIZE_MAX / 4 ? sv__rd_bytes(r, n * 4) : NULL;
    if (!q) { r->err = 1; return 0; }
    if (dst) sv__le_copy(dst, q, n, 4);
    return 1;
}

static void sv__ckpt_get_adam(sv__rd *r, sv_adam *o)
{
    o->lr = sv__rd_f32(r); o->beta1 = sv__rd_f32(r); o->beta2 = sv__rd_f32(r);
    o->eps = sv__rd_f32(r); o->weight_decay = sv__rd_f32(r); o->clip_norm = sv__rd_f32(r);
    o->bias_correction = (int)sv__rd_u32(r);
    (void)sv__rd_u32(r);
    o->t = sv__rd_size(r);
}

static void sv__ckpt_get_pos(sv__rd *r, sv_train_pos *p)
{
    const char *scen;
    int i;
    p->step = sv__rd_size(r);
    p->stage = (int)sv__rd_u32(r);
    (void)sv__rd_u32(r);
    p->stage_step = sv__rd_size(r);
    p->epoch = sv__rd_size(r);
    p->batch = sv__rd_size(r);
    for (i = 0; i < 4; i++) p->rng.s[i] = sv__rd_u64(r);
    p->alpha = sv__rd_f32(r);
    scen = (const char *)sv__rd_bytes(r, sizeof p->scenario);
    if (scen) memcpy(p->scenario, scen, sizeof p->scenario);
    p->scenario[sizeof p->scenario - 1] = 0;
    (void)sv__rd_u32(r);
}

/* Reads and verifies the whole file; *buf is SV_MALLOC'd. A missing file says "no such
   checkpoint", a folder says so (rather than an absurd size). */
static int sv__ckpt_read(const char *path, unsigned char **buf, size_t *n)
{
    uint64_t h = 0xCBF29CE484222325ull, stored;
    size_t i;
    int rc;
    *buf = NULL;
    if (!path || !*path) return sv__fail(SV_ERR_ARG, "no checkpoint path given");
    {
        FILE *f = fopen(path, "rb");
        if (!f && errno == ENOENT) return sv__fail(SV_ERR_IO, "%s: no such checkpoint", path);
        if (f) fclose(f);
    }
#ifdef SV__HAVE_MKDIR
    {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return sv__fail(SV_ERR_ARG, "%s is a folder, not a checkpoint (give e.g. %s/final.ckpt)", path, path);
    }
#endif
    if ((rc = sv__read_file(path, buf, n)) != SV_OK) return rc;
    if (*n < 32) { SV_FREE(*buf); *buf = NULL; return sv__fail(SV_ERR_FORMAT, "%s: not a checkpoint (truncated: %zu bytes)", path, *n); }
    if (memcmp(*buf, SV__CKPT_MAGIC, 8) != 0) { SV_FREE(*buf); *buf = NULL; return sv__fail(SV_ERR_FORMAT, "%s: not an ssl_vgs checkpoint (bad magic)", path); }
    for (i = 0; i < *n - 8; i++) { h ^= (*buf)[i]; h *= 0x100000001B3ull; }
    stored = sv__rd64(*buf + *n - 8);
    if (h != stored) { SV_FREE(*buf); *buf = NULL; return sv__fail(SV_ERR_FORMAT, "%s: checksum mismatch (truncated or corrupted checkpoint)", path); }
    return SV_OK;
}

/* The next "key = value" line of text[*i..n) into line (cap bytes; longer lines are cut), split
   at its first '=' with the spaces around the key and before the value removed: 1, or 0 at the
   end. Lines without '=' are skipped. Config text as sv_config_format writes it. */
static int sv__kv_line(const char *text, size_t n, size_t *i, char *line, size_t cap, char **key, char **value)
{
    while (*i < n) {
        size_t l = 0;
        char *eq, *e;
        while (*i < n && text[*i] != '\n' && l < cap - 1) line[l++] = text[(*i)++];
        (*i)++;
        line[l] = 0;
        if (!(eq = strchr(line, '='))) continue;
        *eq = 0;
        *key = line;
        *value = eq + 1;
        while (**value == ' ') (*value)++;
        for (e = eq - 1; e >= line && *e == ' '; e--) *e = 0;
        return 1;
    }
    return 0;
}

/* Parses the config block (and, version 2, the settings block) of a verified checkpoint.
   settings may be NULL; else it points into the buffer, *settings_len bytes. */
static int sv__ckpt_config(const char *path, sv__rd *r, sv_config *cfg, const char **settings, size_t *settings_len)
{
    uint32_t ver = sv__rd_u32(r), order = sv__rd_u32(r);
    uint64_t clen;
    const char *text;
    char line[512], *k, *v;
    size_t i = 0;
    if (ver != 1u && ver != SV__CKPT_VERSION) return sv__fail(SV_ERR_FORMAT, "%s: checkpoint version %u, this build reads 1..%u", path, ver, SV__CKPT_VERSION);
    /* an old build wrote this word in its host's order: a byte-swapped one comes from a
       big-endian host, whose raw numbers this build cannot tell from little-endian ones */
    if (order != 0x01020304u) return sv__fail(SV_ERR_FORMAT, "%s: written in big-endian byte order by an older build; "
                                              "re-save it with this version on that machine", path);
    clen = sv__rd_u64(r);
    text = clen <= SIZE_MAX ? (const char *)sv__rd_bytes(r, (size_t)clen) : NULL;
    if (!text) return sv__fail(SV_ERR_FORMAT, "%s: truncated config", path);
    memset(cfg, 0, sizeof *cfg);
    while (sv__kv_line(text, (size_t)clen, &i, line, sizeof line, &k, &v))
        if (sv_config_set(cfg, k, v) != SV_OK) return sv__fail(SV_ERR_FORMAT, "%s: %s", path, sv_last_error());
    if (settings) { *settings = ""; *settings_len = 0; }
    if (ver >= 2u) {
        uint64_t slen = sv__rd_u64(r);
        const char *st = (const char *)sv__rd_bytes(r, (size_t)slen);
        if (!st) return sv__fail(SV_ERR_FORMAT, "%s: truncated settings", path);
        if (settings) { *settings = st; *settings_len = (size_t)slen; }
    }
    return SV_OK;
}

SV_DEF int sv_checkpoint_id(const char *path, uint64_t *id)
{
    FILE *f;
    unsigned char head[8], tail[8];
    long sz;
    *id = 0;
#ifdef SV__HAVE_MKDIR
    {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return sv__fail(SV_ERR_ARG, "%s is a folder, not a checkpoint", path);
    }
#endif
    if (!(f = fopen(path, "rb"))) return sv__fail(SV_ERR_IO, errno == ENOENT ? "%s: no such checkpoint" : "%s: cannot open", path);
    if (fread(head, 1, 8, f) != 8 || memcmp(head, SV__CKPT_MAGIC, 8) != 0 || fseek(f, -8, SEEK_END) != 0 ||
        (sz = ftell(f)) < 24 || fread(tail, 1, 8, f) != 8) {
        fclose(f);
        return sv__fail(SV_ERR_FORMAT, "%s: not an ssl_vgs checkpoint", path);
    }
    fclose(f);
    memcpy(id, tail, 8);
    return SV_OK;
}

SV_DEF int sv_checkpoint_settings(const char *path, char **text)
{
    unsigned char *buf;
    size_t n, sl;
    sv__rd r;
    sv_config cfg;
    const char *st;
    int rc;
    *text = NULL;
    if ((rc = sv__ckpt_read(path, &buf, &n)) != SV_OK) return rc;
    r.p = buf; r.n = n - 8; r.at = 8; r.err = 0;
    if ((rc = sv__ckpt_config(path, &r, &cfg, &st, &sl)) == SV_OK) {
        *text = sv__strndup(st, sl, "checkpoint settings");
        if (!*text) rc = SV_ERR_NOMEM;
    }
    SV_FREE(buf);
    return rc;
}

static int sv__ckpt_body(const char *path, sv__rd *r, sv_model *m, sv_adam *opt, sv_train_pos *pos)
{
    sv_params *p = &m->params;
    uint64_t nt = sv__rd_u64(r), i;
    if (nt != p->count) return sv__fail(SV_ERR_FORMAT, "%s: %llu tensors, the model has %zu", path, (unsigned long long)nt, p->count);
    for (i = 0; i < nt; i++) {
        uint32_t nl = sv__rd_u32(r), kind, nd, d;
        const char *nm = (const char *)sv__rd_bytes(r, nl);
        sv_tensor *t;
        char name[256];
        if (!nm || nl >= sizeof name) return sv__fail(SV_ERR_FORMAT, "%s: truncated tensor table", path);
        memcpy(name, nm, nl);
        name[nl] = 0;
        kind = sv__rd_u32(r);
        nd = sv__rd_u32(r);
        t = p->t[i];
        if (strcmp(t->name, name) != 0) return sv__fail(SV_ERR_FORMAT, "%s: tensor %llu is '%s', the model expects '%s'", path, (unsigned long long)i, name, t->name);
        if ((int)nd != t->ndim || (int)kind != t->kind) return sv__fail(SV_ERR_FORMAT, "%s: tensor '%s' has another rank or kind", path, name);
        for (d = 0; d < nd; d++) {
            uint64_t s = sv__rd_u64(r);
            if (s != t->shape[d]) return sv__fail(SV_ERR_FORMAT, "%s: tensor '%s' dim %u is %llu, the model has %zu", path, name, d, (unsigned long long)s, t->shape[d]);
        }
        if (!sv__rd_f32s(r, t->data, t->n)) return sv__fail(SV_ERR_FORMAT, "%s: truncated data of '%s'", path, name);
    }
    if (sv__rd_u32(r)) {
        sv_adam o;
        sv__ckpt_get_adam(r, &o);
        if (r->err == 1) return sv__fail(SV_ERR_FORMAT, "%s: truncated optimizer state", path);
        if (opt) *opt = o;
        for (i = 0; i < p->count; i++) {
            if (p->t[i]->kind != SV_PARAM) continue;
            if (!sv__rd_f32s(r, opt ? p->m + p->offset[i] : NULL, p->t[i]->n) ||
                !sv__rd_f32s(r, opt ? p->v + p->offset[i] : NULL, p->t[i]->n))
                return sv__fail(SV_ERR_FORMAT, "%s: truncated optimizer moments", path);
        }
    } else if (opt) {
        sv_adam_reset(opt, p);
    }
    if (sv__rd_u32(r)) {
        sv_train_pos tp;
        memset(&tp, 0, sizeof tp);
        sv__ckpt_get_pos(r, &tp);
        if (r->err == 1) return sv__fail(SV_ERR_FORMAT, "%s: truncated training position", path);
        if (pos) *pos = tp;
    } else if (pos) {
        memset(pos, 0, sizeof *pos);
    }
    if (r->err == 2) return sv__fail(SV_ERR_FORMAT, "%s: a step or loader count exceeds this %u-bit build's size_t", path, (unsigned)(sizeof(size_t) * 8));
    if (r->err) return sv__fail(SV_ERR_FORMAT, "%s: truncated", path);
    /* the checksum only proves the file is what was written; refuse weights that are not numbers
       (written by another program, or by a build without this check) */
    return sv__ckpt_finite(path, p, opt != NULL, "unusable checkpoint: it holds");
}

SV_DEF sv_model *sv_checkpoint_load(const char *path, sv_adam *opt, sv_train_pos *pos)
{
    unsigned char *buf;
    size_t n;
    sv__rd r;
    sv_config cfg;
    sv_model *m;
    if (sv__ckpt_read(path, &buf, &n) != SV_OK) return NULL;
    r.p = buf; r.n = n - 8; r.at = 8; r.err = 0;
    if (sv__ckpt_config(path, &r, &cfg, NULL, NULL) != SV_OK) { SV_FREE(buf); return NULL; }
    m = sv_model_new(&cfg, 0);
    if (!m) { SV_FREE(buf); return NULL; }
    if (sv__ckpt_body(path, &r, m, opt, pos) != SV_OK) { SV_FREE(buf); sv_model_free(m); return NULL; }
    SV_FREE(buf);
    return m;
}

SV_DEF int sv_checkpoint_load_into(const char *path, sv_model *m, sv_adam *opt, sv_train_pos *pos)
{
    unsigned char *buf;
    size_t n;
    sv__rd r;
    sv_config cfg;
    char a[8192], b[8192];
    int rc;
    if ((rc = sv__ckpt_read(path, &buf, &n)) != SV_OK) return rc;
    r.p = buf; r.n = n - 8; r.at = 8; r.err = 0;
    if ((rc = sv__ckpt_config(path, &r, &cfg, NULL, NULL)) != SV_OK) { SV_FREE(buf); return rc; }
    sv_config_format(&cfg, a, sizeof a);
    sv_config_format(&m->cfg, b, sizeof b);
    if (strcmp(a, b) != 0) {
        /* name the first line that differs */
        const char *x = a, *y = b;
        char la[256], lb[256];
        size_t i;
        while (*x && *y) {
            for (i = 0; x[i] && x[i] != '\n' && i < 255; i++) la[i] = x[i];
            la[i] = 0; x += i + (x[i] == '\n');
            for (i = 0; y[i] && y[i] != '\n' && i < 255; i++) lb[i] = y[i];
            lb[i] = 0; y += i + (y[i] == '\n');
            if (strcmp(la, lb) != 0) break;
        }
        SV_FREE(buf);
        return sv__fail(SV_ERR_ARG, "%s: made with another config: checkpoint has '%s', this model '%s'", path, la, lb);
    }
    rc = sv__ckpt_body(path, &r, m, opt, pos);
    SV_FREE(buf);
    return rc;
}

#ifndef SV__PI
#define SV__PI 3.14159265358979323846
#endif

/* ---------------------------------------------------------------- 10.13 MFCC */
SV_DEF sv_mfcc_opts sv_mfcc_default_opts(void)
{
    sv_mfcc_opts o;
    memset(&o, 0, sizeof o);
    o.sample_rate = 16000;
    o.frame_length = 400;
    o.frame_shift = 160;
    o.subsample = 2;
    o.num_mel_bins = 23;
    o.num_ceps = 13;
    o.low_freq = 20.0;
    o.high_freq = 0.0;
    o.preemphasis = 0.97;
    o.cepstral_lifter = 22.0;
    o.delta_order = 2;
    o.delta_window = 2;
    return o;
}

SV_DEF size_t sv_mfcc_dim(const sv_mfcc_opts *o)
{
    sv_mfcc_opts d = sv_mfcc_default_opts();
    if (!o) o = &d;
    return o->num_ceps * (size_t)(1 + (o->delta_order > 0 ? o->delta_order : 0));
}

/* frames at the Kaldi shift, before subsampling */
static size_t sv__mfcc_frames_full(const sv_mfcc_opts *o, size_t n)
{
    if (!o->frame_length || !o->frame_shift || n < o->frame_length) return 0;
    return 1 + (n - o->frame_length) / o->frame_shift;
}

SV_DEF size_t sv_mfcc_frames(const sv_mfcc_opts *o, size_t n)
{
    sv_mfcc_opts d = sv_mfcc_default_opts();
    size_t f, s;
    if (!o) o = &d;
    f = sv__mfcc_frames_full(o, n);
    s = o->subsample ? o->subsample : 1;
    return (f + s - 1) / s;
}

static double sv__mel(double f) { return 1127.0 * log(1.0 + f / 700.0); }

static int sv__mfcc_tid(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* The tables one call needs: window, mel filters, DCT, lifter, FFT twiddles. */
typedef struct sv__mfcc_tab {
    size_t win, nfft, nbins, nmel, nceps;
    double *window;             /* [win] */
    double *mel;                /* [nmel, nbins] */
    size_t *mel_lo, *mel_hi;    /* the bins where filter m is non-zero: [mel_lo[m], mel_hi[m]) */
    double *dct;                /* [nceps, nmel], lifter folded in */
    double *tw_re, *tw_im;      /* [nfft / 2] */
    void *mem;
} sv__mfcc_tab;

static int sv__mfcc_check(const sv_mfcc_opts *o)
{
    double nyq = 0.5 * (double)o->sample_rate, hi = o->high_freq <= 0 ? nyq + o->high_freq : o->high_freq;
    if (o->sample_rate <= 0) return sv__fail(SV_ERR_ARG, "mfcc: sample rate %d", o->sample_rate);
    if (o->frame_length < 2 || o->frame_length > (1u << 20) || !o->frame_shift)
        return sv__fail(SV_ERR_ARG, "mfcc: frame length %zu / shift %zu", o->frame_length, o->frame_shift);
    if (!o->subsample) return sv__fail(SV_ERR_ARG, "mfcc: subsample must be >= 1");
    if (!o->num_mel_bins || !o->num_ceps || o->num_ceps > o->num_mel_bins)
        return sv__fail(SV_ERR_ARG, "mfcc: %zu cepstra from %zu mel bins", o->num_ceps, o->num_mel_bins);
    if (!(o->low_freq >= 0 && o->low_freq < hi && hi <= nyq))
        return sv__fail(SV_ERR_ARG, "mfcc: mel range %g..%g Hz outside 0..%g", o->low_freq, hi, nyq);
    if (!(o->preemphasis >= 0 && o->preemphasis <= 1)) return sv__fail(SV_ERR_ARG, "mfcc: pre-emphasis %g outside [0,1]", o->preemphasis);
    if (o->delta_order < 0 || o->delta_order > 2) return sv__fail(SV_ERR_ARG, "mfcc: delta order %d (0, 1 or 2)", o->delta_order);
    if (o->delta_order > 0 && !o->delta_window) return sv__fail(SV_ERR_ARG, "mfcc: delta window 0");
    return SV_OK;
}

static int sv__mfcc_tables(const sv_mfcc_opts *o, sv__mfcc_tab *t)
{
    size_t i, m, k, nd;
    double nyq = 0.5 * (double)o->sample_rate, hi = o->high_freq <= 0 ? nyq + o->high_freq : o->high_freq;
    double mlo = sv__mel(o->low_freq), mhi = sv__mel(hi), dm, bw;
    unsigned char *p;
    memset(t, 0, sizeof *t);
    t->win = o->frame_length;
    t->nfft = 1;
    while (t->nfft < t->win) t->nfft *= 2;       /* Kaldi round_to_power_of_two */
    t->nbins = t->nfft / 2;
    t->nmel = o->num_mel_bins;
    t->nceps = o->num_ceps;
    nd = t->win + t->nmel * t->nbins + t->nceps * t->nmel + t->nfft;
    t->mem = sv__calloc(nd * sizeof(double) + 2 * t->nmel * sizeof(size_t), 1, "mfcc tables");
    if (!t->mem) return SV_ERR_NOMEM;
    p = (unsigned char *)t->mem;
    t->window = (double *)p;
    t->mel = t->window + t->win;
    t->dct = t->mel + t->nmel * t->nbins;
    t->tw_re = t->dct + t->nceps * t->nmel;
    t->tw_im = t->tw_re + t->nfft / 2;
    t->mel_lo = (size_t *)(t->tw_im + t->nfft / 2);
    t->mel_hi = t->mel_lo + t->nmel;
    /* Povey window: a symmetric Hann window (torch.hann_window(periodic=False)) to the 0.85 */
    for (i = 0; i < t->win; i++)
        t->window[i] = pow(0.5 - 0.5 * cos(2.0 * SV__PI * (double)i / (double)(t->win - 1)), 0.85);
    /* triangles equally spaced in mel, evaluated at the mel value of each FFT bin's frequency */
    dm = (mhi - mlo) / (double)(t->nmel + 1);
    bw = (double)o->sample_rate / (double)t->nfft;
    for (m = 0; m < t->nmel; m++) {
        double left = mlo + (double)m * dm, centre = left + dm, right = centre + dm;
        t->mel_lo[m] = t->nbins;
        t->mel_hi[m] = 0;
        for (k = 0; k < t->nbins; k++) {
            double mel = sv__mel(bw * (double)k), up = (mel - left) / (centre - left), down = (right - mel) / (right - centre);
            double w = up < down ? up : down;
            if (w > 0) {
                t->mel[m * t->nbins + k] = w;
                if (k < t->mel_lo[m]) t->mel_lo[m] = k;
                t->mel_hi[m] = k + 1;
            }
        }
        if (t->mel_lo[m] >= t->mel_hi[m]) t->mel_lo[m] = t->mel_hi[m] = 0;
    }
    /* orthonormal DCT-II (torchaudio create_dct(norm="ortho"), Kaldi's c_0 weight sqrt(1/M)),
       times the lifter */
    for (k = 0; k < t->nceps; k++) {
        double lift = o->cepstral_lifter != 0 ? 1.0 + 0.5 * o->cepstral_lifter * sin(SV__PI * (double)k / o->cepstral_lifter) : 1.0;
        for (m = 0; m < t->nmel; m++) {
            double v = k == 0 ? sqrt(1.0 / (double)t->nmel)
                              : sqrt(2.0 / (double)t->nmel) * cos(SV__PI * (double)k * ((double)m + 0.5) / (double)t->nmel);
            t->dct[k * t->nmel + m] = v * lift;
        }
    }
    for (i = 0; i < t->nfft / 2; i++) {
        t->tw_re[i] = cos(-2.0 * SV__PI * (double)i / (double)t->nfft);
        t->tw_im[i] = sin(-2.0 * SV__PI * (double)i / (double)t->nfft);
    }
    return SV_OK;
}

/* In-place iterative radix-2 FFT (Cooley-Tukey, decimation in time) of n = 2^p points. */
static void sv__fft(double *re, double *im, size_t n, const double *tw_re, const double *tw_im)
{
    size_t i, j, len;
    for (i = 1, j = 0; i < n; i++) {         /* bit reversal */
        size_t bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j |= bit;
        if (i < j) { double t = re[i]; re[i] = re[j]; re[j] = t; t = im[i]; im[i] = im[j]; im[j] = t; }
    }
    for (len = 2; len <= n; len <<= 1) {
        size_t half = len / 2, step = n / len, s, q;
        for (s = 0; s < n; s += len)
            for (q = 0; q < half; q++) {
                double wr = tw_re[q * step], wi = tw_im[q * step];
                double *ar = re + s + q, *ai = im + s + q, *br = re + s + q + half, *bi = im + s + q + half;
                double xr = *br * wr - *bi * wi, xi = *br * wi + *bi * wr;
                *br = *ar - xr; *bi = *ai - xi;
                *ar += xr; *ai += xi;
            }
    }
}

/* The num_ceps cepstra of the frame starting at x (t->win samples); work holds 2 nfft + nmel doubles. */
static void sv__mfcc_frame(const sv__mfcc_tab *t, double preemph, const float *x, double *work, double *ceps)
{
    double *re = work, *im = work + t->nfft, *loge = im + t->nfft, mean = 0;
    size_t i, m, k;
    for (i = 0; i < t->win; i++) mean += x[i];
    mean /= (double)t->win;
    for (i = 0; i < t->win; i++) re[i] = (double)x[i] - mean;
    for (i = t->win - 1; i > 0; i--) re[i] -= preemph * re[i - 1];   /* x[-1] = x[0] */
    re[0] -= preemph * re[0];
    for (i = 0; i < t->win; i++) re[i] *= t->window[i];
    for (i = t->win; i < t->nfft; i++) re[i] = 0;
    memset(im, 0, t->nfft * sizeof(double));
    sv__fft(re, im, t->nfft, t->tw_re, t->tw_im);
    for (k = 0; k < t->nbins; k++) re[k] = re[k] * re[k] + im[k] * im[k];
    for (m = 0; m < t->nmel; m++) {
        double e = 0;
        for (k = t->mel_lo[m]; k < t->mel_hi[m]; k++) e += t->mel[m * t->nbins + k] * re[k];
        loge[m] = log(e > (double)FLT_EPSILON ? e : (double)FLT_EPSILON);
    }
    for (k = 0; k < t->nceps; k++) {
        double s = 0;
        for (m = 0; m < t->nmel; m++) s += t->dct[k * t->nmel + m] * loge[m];
        ceps[k] = s;
    }
}

/* torchaudio compute_deltas: d_f = sum_{j=1..N} j (c_{f+j} - c_{f-j}) / (2 sum j^2), edges repeated.
   in/out [F, stride] at column offsets; F >= 1. */
static void sv__mfcc_deltas(double *a, size_t F, size_t stride, size_t in_col, size_t out_col, size_t nc, size_t N)
{
    double denom = 0;
    size_t f, j, k;
    for (j = 1; j <= N; j++) denom += 2.0 * (double)(j * j);
    for (f = 0; f < F; f++)
        for (k = 0; k < nc; k++) {
            double s = 0;
            for (j = 1; j <= N; j++) {
                size_t fp = f + j < F ? f + j : F - 1, fm = f >= j ? f - j : 0;
                s += (double)j * (a[fp * stride + in_col + k] - a[fm * stride + in_col + k]);
            }
            a[f * stride + out_col + k] = s / denom;
        }
}

SV_DEF int sv_mfcc(const sv_mfcc_opts *o, const float *wave, size_t n, float *out)
{
    sv_mfcc_opts d = sv_mfcc_default_opts();
    sv__mfcc_tab t;
    size_t F, nc, dim, i, nt, wsz, stride;
    double *feat, *work;
    ptrdiff_t f;
    int rc;
    if (!o) o = &d;
    if ((rc = sv__mfcc_check(o)) != SV_OK) return rc;
    F = sv__mfcc_frames_full(o, n);
    if (F == 0) return SV_OK;
    if (!wave || !out) return sv__fail(SV_ERR_ARG, "mfcc: NULL wave or output");
    for (i = 0; i < n; i++) if (!isfinite(wave[i])) return sv__fail(SV_ERR_NUMERIC, "mfcc: sample %zu is not finite", i);
    if ((rc = sv__mfcc_tables(o, &t)) != SV_OK) return rc;
    nc = o->num_ceps;
    dim = sv_mfcc_dim(o);
    stride = dim;
    nt = (size_t)sv_get_threads();
    wsz = 2 * t.nfft + t.nmel;
    feat = (double *)sv__calloc(F * stride + nt * wsz, sizeof(double), "mfcc frames");
    if (!feat) { SV_FREE(t.mem); return SV_ERR_NOMEM; }
    work = feat + F * stride;
SV__OMP(parallel for schedule(static) num_threads(sv_get_threads()) if (F > 64))
    for (f = 0; f < (ptrdiff_t)F; f++)
        sv__mfcc_frame(&t, o->preemphasis, wave + (size_t)f * o->frame_shift, work + (size_t)sv__mfcc_tid() * wsz,
                       feat + (size_t)f * stride);
    if (o->delta_order >= 1) sv__mfcc_deltas(feat, F, stride, 0, nc, nc, o->delta_window);
    if (o->delta_order >= 2) sv__mfcc_deltas(feat, F, stride, nc, 2 * nc, nc, o->delta_window);
    for (i = 0; i * o->subsample < F; i++) {
        size_t k;
        for (k = 0; k < dim; k++) out[i * dim + k] = (float)feat[i * o->subsample * stride + k];
    }
    SV_FREE(feat);
    SV_FREE(t.mem);
    return SV_OK;
}

/* ---------------------------------------------------------------- 10.14 k-means */
SV_DEF sv_kmeans_opts sv_kmeans_default_opts(void)
{
    sv_kmeans_opts o;
    memset(&o, 0, sizeof o);
    o.k = 100;
    o.max_iter = 50;
    o.tol = 1e-4;
    o.seed = 1;
    return o;
}

#define SV__KM_ROWS 512     /* frames per GEMM block of the assignment */

/* |c_j|^2 of every centre, summed in double */
static void sv__km_norms(const float *C, size_t k, size_t dim, float *cn)
{
    size_t j, i;
    for (j = 0; j < k; j++) {
        double s = 0;
        for (i = 0; i < dim; i++) s += (double)C[j * dim + i] * C[j * dim + i];
        cn[j] = (float)s;
    }
}

/* Assignment of rows [0, n) with the centre norms cn and a scratch block of SV__KM_ROWS x k
   floats: scores = -2 X C^T (one GEMM per block), nearest = argmin_j (|c_j|^2 + score_j). */
static void sv__km_assign(const float *x, size_t n, size_t dim, const float *C, const float *cn, size_t k,
                          float *scratch, uint32_t *labels, float *dist2)
{
    size_t r0;
    for (r0 = 0; r0 < n; r0 += SV__KM_ROWS) {
        size_t rows = n - r0 < SV__KM_ROWS ? n - r0 : SV__KM_ROWS;
        ptrdiff_t r;
        sv_gemm(0, 1, rows, k, dim, -2.0f, x + r0 * dim, dim, C, dim, 0.0f, scratch, k);
SV__OMP(parallel for schedule(static) if (rows * k > 65536))
        for (r = 0; r < (ptrdiff_t)rows; r++) {
            const float *s = scratch + (size_t)r * k, *xr = x + (r0 + (size_t)r) * dim, *c;
            size_t j, best = 0, i;
            float bv = cn[0] + s[0];
            double d = 0;
            for (j = 1; j < k; j++) if (cn[j] + s[j] < bv) { bv = cn[j] + s[j]; best = j; }
            labels[r0 + (size_t)r] = (uint32_t)best;
            if (dist2) {
                c = C + best * dim;
                for (i = 0; i < dim; i++) { double e = (double)xr[i] - c[i]; d += e * e; }
                dist2[r0 + (size_t)r] = (float)d;
            }
        }
    }
}

SV_DEF int sv_kmeans_assign(const float *x, size_t n, size_t dim, const float *centroids, size_t k,
                            uint32_t *labels, float *dist2)
{
    float *cn, *scratch;
    if (!k || !dim) return sv__fail(SV_ERR_ARG, "kmeans_assign: k = %zu, dim = %zu", k, dim);
    if (!n) return SV_OK;
    if (!x || !centroids || !labels) return sv__fail(SV_ERR_ARG, "kmeans_assign: NULL argument");
    cn = (float *)sv__calloc(k + (size_t)SV__KM_ROWS * k, sizeof(float), "k-means scores");
    if (!cn) return SV_ERR_NOMEM;
    scratch = cn + k;
    sv__km_norms(centroids, k, dim, cn);
    sv__km_assign(x, n, dim, centroids, cn, k, scratch, labels, dist2);
    SV_FREE(cn);
    return SV_OK;
}

/* The frames farthest from their centres in a pass, kept for relocating empty clusters: a
   min-heap of at most cap entries on (d2, -index), so the root is the nearest kept frame. */
typedef struct sv__km_far { float *rows; float *d2; size_t *idx, *slot; size_t n, cap, dim; } sv__km_far;

static int sv__km_far_less(const sv__km_far *h, size_t a, size_t b)   /* entry a nearer than b */
{
    return h->d2[a] < h->d2[b] || (h->d2[a] == h->d2[b] && h->idx[a] > h->idx[b]);
}

static void sv__km_far_swap(sv__km_far *h, size_t a, size_t b)
{
    float d = h->d2[a];
    size_t t = h->idx[a], s = h->slot[a];
    h->d2[a] = h->d2[b]; h->idx[a] = h->idx[b]; h->slot[a] = h->slot[b];
    h->d2[b] = d; h->idx[b] = t; h->slot[b] = s;
}

static void sv__km_far_push(sv__km_far *h, const float *row, float d2, size_t idx)
{
    size_t i;
    if (h->n < h->cap) {
        i = h->n++;
        h->d2[i] = d2; h->idx[i] = idx; h->slot[i] = i;
        memcpy(h->rows + i * h->dim, row, h->dim * sizeof(float));
        while (i > 0 && sv__km_far_less(h, i, (i - 1) / 2)) { sv__km_far_swap(h, i, (i - 1) / 2); i = (i - 1) / 2; }
        return;
    }
    if (!(d2 > h->d2[0] || (d2 == h->d2[0] && idx < h->idx[0]))) return;
    h->d2[0] = d2; h->idx[0] = idx;
    memcpy(h->rows + h->slot[0] * h->dim, row, h->dim * sizeof(float));
    i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && sv__km_far_less(h, l, m)) m = l;
        if (r < h->n && sv__km_far_less(h, r, m)) m = r;
        if (m == i) break;
        sv__km_far_swap(h, i, m);
        i = m;
    }
}

/* k-means++ (greedy) on the in-memory sample S [m, dim] into C [k, dim]. */
static int sv__km_seed(const float *S, size_t m, size_t dim, size_t k, size_t trials, sv_rng *rng, float *C)
{
    float *sn, *cand, *cn, *dcand, *best_d;
    double *closest, *cum;
    size_t c, i, t, first, bytes;
    int rc = SV_OK;
    if (!sv__mul_ok(m, trials + 3, &bytes)) return sv__fail(SV_ERR_NOMEM, "k-means seeding: sample too large");
    sn = (float *)sv__calloc(m * (trials + 2) + trials * (dim + 1), sizeof(float), "k-means seeding");
    closest = (double *)sv__calloc(2 * m, sizeof(double), "k-means seeding");
    if (!sn || !closest) { SV_FREE(sn); SV_FREE(closest); return SV_ERR_NOMEM; }
    dcand = sn + m;                  /* [m, trials] distances to the candidates */
    best_d = dcand + m * trials;     /* [m] */
    cand = best_d + m;               /* [trials, dim] */
    cn = cand + trials * dim;        /* [trials] */
    cum = closest + m;
    sv__km_norms(S, m, dim, sn);
    first = sv_rng_below(rng, m);
    memcpy(C, S + first * dim, dim * sizeof(float));
    for (i = 0; i < m; i++) {
        double d = 0;
        size_t q;
        for (q = 0; q < dim; q++) { double e = (double)S[i * dim + q] - C[q]; d += e * e; }
        closest[i] = d;
    }
    for (c = 1; c < k; c++) {
        double pot = 0, best_pot = -1;
        size_t best = 0;
        for (i = 0; i < m; i++) { pot += closest[i]; cum[i] = pot; }
        /* candidates drawn with probability proportional to the squared distance (D^2 sampling) */
        for (t = 0; t < trials; t++) {
            size_t lo = 0, hi = m - 1;
            if (pot > 0) {
                double r = sv_rng_uniform(rng) * pot;
                while (lo < hi) { size_t mid = lo + (hi - lo) / 2; if (cum[mid] <= r) lo = mid + 1; else hi = mid; }
            } else {
                lo = sv_rng_below(rng, m);     /* every frame already sits on a centre */
            }
            memcpy(cand + t * dim, S + lo * dim, dim * sizeof(float));
        }
        sv__km_norms(cand, trials, dim, cn);
        sv_gemm(0, 1, m, trials, dim, -2.0f, S, dim, cand, dim, 0.0f, dcand, trials);
        /* the candidate whose addition leaves the smallest potential */
        for (t = 0; t < trials; t++) {
            double p = 0;
            for (i = 0; i < m; i++) {
                double d = (double)sn[i] + cn[t] + dcand[i * trials + t];
                if (d < 0) d = 0;
                p += d < closest[i] ? d : closest[i];
            }
            if (best_pot < 0 || p < best_pot) { best_pot = p; best = t; }
        }
        memcpy(C + c * dim, cand + best * dim, dim * sizeof(float));
        for (i = 0; i < m; i++) {
            double d = (double)sn[i] + cn[best] + dcand[i * trials + best];
            if (d < 0) d = 0;
            if (d < closest[i]) closest[i] = d;
        }
    }
    SV_FREE(sn);
    SV_FREE(closest);
    return rc;
}

static void sv__km_progress(const sv_kmeans_opts *o, const char *what, size_t done, size_t total)
{
    if (o->progress) o->progress(what, done, total, o->progress_user);
}

/* One chunk of a pass, checked: finite frames of the source's width. */
static int sv__km_read(const sv_frame_source *src, size_t i, const float **x, size_t *n)
{
    int rc = src->read(src->user, i, x, n);
    size_t j;
    if (rc != SV_OK) return rc;
    if (*n && !*x) return sv__fail(SV_ERR_ARG, "k-means: chunk %zu has %zu frames but no data", i, *n);
    for (j = 0; j < *n * src->dim; j++)
        if (!isfinite((*x)[j])) return sv__fail(SV_ERR_NUMERIC, "k-means: chunk %zu, frame %zu is not finite", i, j / src->dim);
    return SV_OK;
}

SV_DEF int sv_kmeans_fit(const sv_frame_source *src, const sv_kmeans_opts *opt, float *C, sv_kmeans_result *res)
{
    sv_kmeans_opts o = opt ? *opt : sv_kmeans_default_opts();
    size_t dim, k, m, total = 0, i, j, it, trials, seen, cap_rows = 0;
    float *S = NULL, *cn = NULL, *scratch = NULL, *d2 = NULL;
    uint32_t *lab = NULL;
    double *sums = NULL, prev = 0;
    size_t *count = NULL;
    sv__km_far far;
    sv_rng rng;
    int rc = SV_OK;
    char what[48];
    memset(&far, 0, sizeof far);
    if (res) memset(res, 0, sizeof *res);
    if (!src || !src->read || !src->dim || !C) return sv__fail(SV_ERR_ARG, "kmeans_fit: no frame source or output");
    dim = src->dim;
    k = o.k;
    if (!k) return sv__fail(SV_ERR_ARG, "kmeans_fit: k = 0");
    trials = o.local_trials ? o.local_trials : 2 + (size_t)floor(log((double)k));
    m = o.init_sample ? o.init_sample : (3 * k > 30000 ? 3 * k : 30000);
    if (m < k) m = k;
    sv_rng_seed(&rng, o.seed);
    /* 1. one pass: a uniform sample of m frames (reservoir sampling, Vitter's algorithm R) */
    S = (float *)sv__calloc(m, dim * sizeof(float), "k-means sample");
    if (!S) return SV_ERR_NOMEM;
    for (i = 0; i < src->n_chunks; i++) {
        const float *x;
        size_t n, r;
        if ((rc = sv__km_read(src, i, &x, &n)) != SV_OK) goto done;
        for (r = 0; r < n; r++, total++) {
            size_t slot = total < m ? total : sv_rng_below(&rng, total + 1);
            if (slot < m) memcpy(S + slot * dim, x + r * dim, dim * sizeof(float));
        }
        if (n > cap_rows) cap_rows = n;
        sv__km_progress(&o, "k-means sampling", i + 1, src->n_chunks);
    }
    if (total < k) { rc = sv__fail(SV_ERR_ARG, "k-means: %zu frames for %zu clusters", total, k); goto done; }
    if (total < m) m = total;
    /* 2. k-means++ on the sample */
    if ((rc = sv__km_seed(S, m, dim, k, trials, &rng, C)) != SV_OK) goto done;
    SV_FREE(S);
    S = NULL;
    /* 3. Lloyd passes */
    cn = (float *)sv__calloc(k + (size_t)SV__KM_ROWS * k, sizeof(float), "k-means scores");
    sums = (double *)sv__calloc(k * dim, sizeof(double), "k-means sums");
    count = (size_t *)sv__calloc(k, sizeof(size_t), "k-means counts");
    far.cap = k;
    far.dim = dim;
    far.rows = (float *)sv__calloc(k * dim + k, sizeof(float), "k-means far frames");
    far.idx = (size_t *)sv__calloc(2 * k, sizeof(size_t), "k-means far frames");
    lab = (uint32_t *)sv__calloc(cap_rows ? cap_rows : 1, sizeof(uint32_t), "k-means labels");
    d2 = (float *)sv__calloc(cap_rows ? cap_rows : 1, sizeof(float), "k-means distances");
    if (!cn || !sums || !count || !far.rows || !far.idx || !lab || !d2) { rc = SV_ERR_NOMEM; goto done; }
    far.d2 = far.rows + k * dim;
    far.slot = far.idx + k;
    scratch = cn + k;
    for (it = 0;; it++) {
        double inertia = 0;
        sv__km_norms(C, k, dim, cn);
        memset(sums, 0, k * dim * sizeof(double));
        memset(count, 0, k * sizeof(size_t));
        far.n = 0;
        seen = 0;
        snprintf(what, sizeof what, "k-means pass %zu", it + 1);
        for (i = 0; i < src->n_chunks; i++) {
            const float *x;
            size_t n, r;
            if ((rc = sv__km_read(src, i, &x, &n)) != SV_OK) goto done;
            if (n > cap_rows) { rc = sv__fail(SV_ERR_STATE, "k-means: chunk %zu grew between passes (%zu frames)", i, n); goto done; }
            sv__km_assign(x, n, dim, C, cn, k, scratch, lab, d2);
            for (r = 0; r < n; r++) {
                double *s = sums + (size_t)lab[r] * dim;
                const float *xr = x + r * dim;
                size_t q;
                for (q = 0; q < dim; q++) s[q] += xr[q];
                count[lab[r]]++;
                inertia += d2[r];
                sv__km_far_push(&far, xr, d2[r], seen + r);
            }
            seen += n;
            sv__km_progress(&o, what, i + 1, src->n_chunks);
        }
        if (seen != total) { rc = sv__fail(SV_ERR_STATE, "k-means: the source gave %zu frames, then %zu", total, seen); goto done; }
        if (it == 0 && res) res->inertia_first = inertia;
        if (res) { res->inertia = inertia; res->iterations = it; }
        if (it > 0 && prev - inertia <= o.tol * prev) { if (res) res->converged = 1; break; }
        if (it == o.max_iter) break;
        prev = inertia;
        /* move every centre to the mean of its frames; empty ones to the farthest frames */
        {
            size_t used = 0, order_n = far.n, *order = far.slot;
            /* far entries sorted farthest first: (d2 descending, index ascending) */
            size_t a, b;
            for (a = 0; a < order_n; a++)
                for (b = a + 1; b < order_n; b++)
                    if (sv__km_far_less(&far, a, b)) sv__km_far_swap(&far, a, b);
            for (j = 0; j < k; j++) {
                size_t q;
                if (count[j]) {
                    for (q = 0; q < dim; q++) C[j * dim + q] = (float)(sums[j * dim + q] / (double)count[j]);
                } else if (used < order_n) {
                    memcpy(C + j * dim, far.rows + order[used] * dim, dim * sizeof(float));
                    used++;
                    if (res) res->relocated++;
                }
            }
        }
    }
    if (res) res->n_frames = total;
done:
    SV_FREE(S); SV_FREE(cn); SV_FREE(sums); SV_FREE(count); SV_FREE(far.rows); SV_FREE(far.idx); SV_FREE(lab); SV_FREE(d2);
    return rc;
}

/* ---------------------------------------------------------------- 10.15 offline target files */
SV_DEF const uint16_t *sv_km_labels(const sv_km_targets *t, int split, size_t i, size_t *n)
{
    if (n) *n = 0;
    if (!t || split < 0 || split >= SV_SPLIT_COUNT || !t->has[split] || i >= t->n[split]) return NULL;
    if (n) *n = t->offset[split][i + 1] - t->offset[split][i];
    return t->labels[split] + t->offset[split][i];
}

SV_DEF void sv_km_targets_free(sv_km_targets *t)
{
    int s;
    if (!t) return;
    for (s = 0; s < SV_SPLIT_COUNT; s++) { SV_FREE(t->offset[s]); SV_FREE(t->labels[s]); }
    SV_FREE(t->centroids);
    memset(t, 0, sizeof *t);
}

/* labels of an utterance of n samples: frames of frame_length every hop */
static size_t sv__km_count(const sv_km_targets *t, size_t n)
{
    return n < t->frame_length ? 0 : 1 + (n - t->frame_length) / t->hop;
}

/* FNV-1a 64 of the lines "<id> <samples>\n" of the split's utterances, in order */
static uint64_t sv__km_ids_hash(const sv_data *d, int split)
{
    uint64_t h = 14695981039346656037ull;
    size_t i;
    const char *p;
    char num[32];
    for (i = 0; i < d->n[split]; i++) {
        snprintf(num, sizeof num, " %zu\n", d->len[split][i]);
        for (p = d->id[split][i]; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
        for (p = num; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    }
    return h;
}

/* The frames of one split for clustering: MFCCs or a model layer, one utterance per chunk. An
   optional cache file keeps the frames of the first pass for the later ones. */
typedef struct sv__km_src {
    const sv_data *d;
    int split;
    sv_model *m;
    sv_ctx *c;
    size_t layer;
    sv_mfcc_opts mfcc;
    float *buf;
    size_t cap;                 /* floats in buf */
    size_t dim;
    /* cache */
    const char *cache_path;
    FILE *cache;
    size_t *cache_n;            /* frames of each chunk (known after pass 0) */
    int cache_state;            /* 0 writing (first pass), 1 reading */
    size_t next;                /* the chunk expected next */
} sv__km_src;

static int sv__km_src_grow(sv__km_src *s, size_t floats)
{
    float *nb;
    if (floats <= s->cap) return SV_OK;
    nb = (float *)sv__alloc(floats * sizeof(float), "k-means frames");
    if (!nb) return SV_ERR_NOMEM;
    SV_FREE(s->buf);
    s->buf = nb;
    s->cap = floats;
    return SV_OK;
}

/* Frames of utterance i of the split, computed. */
static int sv__km_frames(sv__km_src *s, size_t i, const float **x, size_t *n)
{
    const float *w;
    float *owned;
    size_t len = s->d->len[s->split][i];
    int rc;
    if (!s->m) {
        size_t F = sv_mfcc_frames(&s->mfcc, len);
        if ((rc = sv__km_src_grow(s, F * s->dim + 1)) != SV_OK) return rc;
        if ((rc = sv_data_audio(s->d, s->split, i, &w, &owned)) != SV_OK) return rc;
        rc = sv_mfcc(&s->mfcc, w, len, s->buf);
        SV_FREE(owned);
        if (rc != SV_OK) return rc;
        *x = s->buf;
        *n = F;
        return SV_OK;
    }
    if (len < sv_config_receptive_field(&s->m->cfg)) { *x = s->buf; *n = 0; return SV_OK; }
    {
        float *f = NULL;
        size_t T = 0, D = 0;
        if ((rc = sv_data_audio(s->d, s->split, i, &w, &owned)) != SV_OK) return rc;
        rc = sv_extract_features(s->m, s->c, w, len, s->layer, &f, &T, &D);
        SV_FREE(owned);
        if (rc != SV_OK) return rc;
        SV_FREE(s->buf);            /* sv_extract_features allocated f: keep it until the next call */
        s->buf = f;
        s->cap = T * D;
        *x = f;
        *n = T;
        return SV_OK;
    }
}

static int sv__km_src_read(void *user, size_t i, const float **x, size_t *n)
{
    sv__km_src *s = (sv__km_src *)user;
    int rc;
    if (!s->cache_path) return sv__km_frames(s, i, x, n);
    if (i != s->next) return sv__fail(SV_ERR_STATE, "k-means cache: chunk %zu asked for, %zu expected", i, s->next);
    if (s->cache_state == 0) {
        if ((rc = sv__km_frames(s, i, x, n)) != SV_OK) return rc;
        s->cache_n[i] = *n;
        if (*n && fwrite(*x, sizeof(float), *n * s->dim, s->cache) != *n * s->dim)
            return sv__fail(SV_ERR_IO, "%s: write failed (disk full?)", s->cache_path);
    } else {
        size_t want = s->cache_n[i] * s->dim;
        if ((rc = sv__km_src_grow(s, want + 1)) != SV_OK) return rc;
        if (want && fread(s->buf, sizeof(float), want, s->cache) != want)
            return sv__fail(SV_ERR_IO, "%s: read failed", s->cache_path);
        *x = s->buf;
        *n = s->cache_n[i];
    }
    s->next = i + 1;
    if (s->next == s->d->n[s->split]) {
        /* end of a pass: from now on read the file from its start */
        s->next = 0;
        if (s->cache_state == 0 && fflush(s->cache) != 0) return sv__fail(SV_ERR_IO, "%s: write failed", s->cache_path);
        s->cache_state = 1;
        if (fseek(s->cache, 0, SEEK_SET) != 0) return sv__fail(SV_ERR_IO, "%s: cannot rewind", s->cache_path);
    }
    return SV_OK;
}

SV_DEF int sv_km_targets_make(const sv_data *d, sv_model *m, sv_ctx *c, size_t layer, const sv_mfcc_opts *mfcc,
                              const sv_kmeans_opts *o, const char *cache_path, sv_km_targets *out, sv_kmeans_result *res)
{
    sv_kmeans_opts ko = o ? *o : sv_kmeans_default_opts();
    sv__km_src s;
    sv_frame_source fs;
    sv_kmeans_result r;
    uint32_t *lab = NULL;
    size_t lab_cap = 0;
    int rc = SV_OK, sp;
    memset(out, 0, sizeof *out);
    memset(&s, 0, sizeof s);
    if (!d) return sv__fail(SV_ERR_ARG, "km_targets_make: no data");
    if (ko.k < 1 || ko.k > 65536) return sv__fail(SV_ERR_ARG, "k-means targets: k = %zu outside 1..65536", ko.k);
    if (!d->n[SV_SPLIT_TRAIN]) return sv__fail(SV_ERR_ARG, "k-means targets: the data has no train split to cluster");
    s.d = d;
    s.m = m;
    s.c = c;
    s.layer = layer;
    s.mfcc = mfcc ? *mfcc : sv_mfcc_default_opts();
    if (m) {
        if (!c) return sv__fail(SV_ERR_ARG, "k-means targets: a model needs a context");
        if (layer > m->cfg.n_shared + m->cfg.n_decoder)
            return sv__fail(SV_ERR_ARG, "k-means targets: layer %zu of a %zu-layer model", layer, m->cfg.n_shared + m->cfg.n_decoder);
        s.dim = m->cfg.D;
        out->frame_length = sv_config_receptive_field(&m->cfg);
        out->hop = 1;
        {
            size_t i;
            for (i = 0; i < m->cfg.n_conv; i++) out->hop *= m->cfg.conv_stride[i];
        }
        snprintf(out->features, sizeof out->features, "model layer %zu", layer);
    } else {
        int rcm = sv__mfcc_check(&s.mfcc);
        if (rcm != SV_OK) return rcm;
        s.dim = sv_mfcc_dim(&s.mfcc);
        out->frame_length = s.mfcc.frame_length;
        out->hop = s.mfcc.frame_shift * s.mfcc.subsample;
        snprintf(out->features, sizeof out->features, "mfcc %zu ceps + %d delta orders, %zu/%zu samples, every %zu",
                 s.mfcc.num_ceps, s.mfcc.delta_order, s.mfcc.frame_length, s.mfcc.frame_shift, s.mfcc.subsample);
    }
    out->k = ko.k;
    out->dim = s.dim;
    out->seed = ko.seed;
    out->centroids = (float *)sv__calloc(ko.k, s.dim * sizeof(float), "k-means centres");
    if (!out->centroids) return SV_ERR_NOMEM;
    /* fit on the training frames */
    s.split = SV_SPLIT_TRAIN;
    if (cache_path) {
        s.cache_path = cache_path;
        s.cache = fopen(cache_path, "w+b");
        s.cache_n = (size_t *)sv__calloc(d->n[SV_SPLIT_TRAIN], sizeof(size_t), "k-means cache");
        if (!s.cache) { rc = sv__fail(SV_ERR_IO, "%s: cannot create: %s", cache_path, strerror(errno)); goto done; }
        if (!s.cache_n) { rc = SV_ERR_NOMEM; goto done; }
    }
    fs.dim = s.dim;
    fs.n_chunks = d->n[SV_SPLIT_TRAIN];
    fs.read = sv__km_src_read;
    fs.user = &s;
    if ((rc = sv_kmeans_fit(&fs, &ko, out->centroids, &r)) != SV_OK) goto done;
    if (res) *res = r;
    out->iterations = r.iterations;
    out->inertia = r.inertia;
    out->frames = r.n_frames;
    if (s.cache) { fclose(s.cache); s.cache = NULL; remove(cache_path); }
    s.cache_path = NULL;
    /* label every utterance of every split */
    for (sp = 0; sp < SV_SPLIT_COUNT; sp++) {
        size_t i, total = 0, n = d->n[sp];
        char what[48];
        if (!n) continue;
        s.split = sp;
        for (i = 0; i < n; i++) total += sv__km_count(out, d->len[sp][i]);
        out->offset[sp] = (size_t *)sv__calloc(n + 1, sizeof(size_t), "labels");
        out->labels[sp] = (uint16_t *)sv__calloc(total ? total : 1, sizeof(uint16_t), "labels");
        if (!out->offset[sp] || !out->labels[sp]) { rc = SV_ERR_NOMEM; goto done; }
        out->n[sp] = n;
        out->has[sp] = 1;
        snprintf(what, sizeof what, "k-means labels (%s)", sv_split_name(sp));
        for (i = 0; i < n; i++) {
            const float *x;
            size_t F, want = sv__km_count(out, d->len[sp][i]), q;
            if ((rc = sv__km_frames(&s, i, &x, &F)) != SV_OK) goto done;
            if (F != want) {
                rc = sv__fail(SV_ERR_STATE, "k-means targets: %s utterance %s has %zu frames, %zu expected from its %zu samples",
                              sv_split_name(sp), d->id[sp][i], F, want, d->len[sp][i]);
                goto done;
            }
            if (F > lab_cap) {
                SV_FREE(lab);
                lab_cap = F;
                if (!(lab = (uint32_t *)sv__alloc(F * sizeof(uint32_t), "labels"))) { rc = SV_ERR_NOMEM; goto done; }
            }
            if ((rc = sv_kmeans_assign(x, F, s.dim, out->centroids, ko.k, lab, NULL)) != SV_OK) goto done;
            out->offset[sp][i + 1] = out->offset[sp][i] + F;
            for (q = 0; q < F; q++) out->labels[sp][out->offset[sp][i] + q] = (uint16_t)lab[q];
            if (ko.progress) ko.progress(what, i + 1, n, ko.progress_user);
        }
    }
done:
    if (s.cache) { fclose(s.cache); remove(cache_path); }
    SV_FREE(s.cache_n);
    SV_FREE(s.buf);
    SV_FREE(lab);
    if (rc != SV_OK) sv_km_targets_free(out);
    return rc;
}

/* unsigned decimal into p (no terminator); returns the length */
static size_t sv__km_utoa(char *p, unsigned v)
{
    char t[12];
    size_t n = 0, i;
    do { t[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    for (i = 0; i < n; i++) p[i] = t[n - 1 - i];
    return n;
}

SV_DEF int sv_km_targets_write(const char *dir, const sv_km_targets *t, const sv_data *d)
{
    char *path = NULL, *tmp;
    FILE *f;
    size_t *cnt = NULL, i, j;
    int rc = SV_OK, sp, ok;
    size_t shape[4];
    if (!dir || !t || !d || !t->k || !t->centroids) return sv__fail(SV_ERR_ARG, "km_targets_write: nothing to write");
    if ((rc = sv__mkdir(dir)) != SV_OK) return rc;
    if (!(path = sv__pathf(dir, ".complete", NULL, NULL))) return SV_ERR_NOMEM;
    if (sv__file_exists(path)) { rc = sv__fail(SV_ERR_ARG, "%s already holds finished targets (.complete); remove it or choose another folder", dir); goto done; }
    SV_FREE(path);
    path = NULL;
    for (sp = 0; sp < SV_SPLIT_COUNT; sp++) {
        if (!t->has[sp]) continue;
        if (t->n[sp] != d->n[sp]) { rc = sv__fail(SV_ERR_ARG, "km_targets_write: %zu %s labels for %zu utterances", t->n[sp], sv_split_name(sp), d->n[sp]); goto done; }
        if (!(path = sv__pathf(dir, "%s.km", sv_split_name(sp), NULL))) { rc = SV_ERR_NOMEM; goto done; }
        if (!(f = sv__atomic_begin(path, &tmp))) { rc = sv_last_status(); goto done; }
        ok = 1;
        for (i = 0; ok && i < t->n[sp]; i++) {
            char line[4096];
            size_t at = 0;
            for (j = t->offset[sp][i]; ok && j < t->offset[sp][i + 1]; j++) {
                if (at > sizeof line - 16) { ok = fwrite(line, 1, at, f) == at; at = 0; }
                if (j > t->offset[sp][i]) line[at++] = ' ';
                at += sv__km_utoa(line + at, t->labels[sp][j]);
            }
            line[at++] = '\n';
            if (ok) ok = fwrite(line, 1, at, f) == at;
        }
        if (!ok) sv__fail(SV_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        if ((rc = sv__atomic_end(f, tmp, path, ok)) != SV_OK) goto done;
        SV_FREE(path);
        path = NULL;
    }
    /* dict.km.txt with the training counts */
    cnt = (size_t *)sv__calloc(t->k, sizeof(size_t), "label counts");
    if (!cnt) { rc = SV_ERR_NOMEM; goto done; }
    if (t->has[SV_SPLIT_TRAIN])
        for (i = 0; i < t->offset[SV_SPLIT_TRAIN][t->n[SV_SPLIT_TRAIN]]; i++) cnt[t->labels[SV_SPLIT_TRAIN][i]]++;
    if (!(path = sv__pathf(dir, "dict.km.txt", NULL, NULL))) { rc = SV_ERR_NOMEM; goto done; }
    if (!(f = sv__atomic_begin(path, &tmp))) { rc = sv_last_status(); goto done; }
    for (i = 0, ok = 1; ok && i < t->k; i++) ok = fprintf(f, "%zu %zu\n", i, cnt[i]) > 0;
    if (!ok) sv__fail(SV_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    if ((rc = sv__atomic_end(f, tmp, path, ok)) != SV_OK) goto done;
    SV_FREE(path);
    if (!(path = sv__pathf(dir, "centroids.npy", NULL, NULL))) { rc = SV_ERR_NOMEM; goto done; }
    shape[0] = t->k; shape[1] = t->dim; shape[2] = shape[3] = 1;
    if ((rc = sv_npy_write(path, t->centroids, shape, 2)) != SV_OK) goto done;
    SV_FREE(path);
    if (!(path = sv__pathf(dir, "info.txt", NULL, NULL))) { rc = SV_ERR_NOMEM; goto done; }
    if (!(f = sv__atomic_begin(path, &tmp))) { rc = sv_last_status(); goto done; }
    ok = fprintf(f, "format = ssl_vgs-km 1\nk = %zu\ndim = %zu\nframe_length = %zu\nhop = %zu\nfeatures = %s\nseed = %llu\n"
                    "iterations = %zu\ninertia = %.17g\nframes = %zu\n", t->k, t->dim, t->frame_length, t->hop, t->features,
                 (unsigned long long)t->seed, t->iterations, t->inertia, t->frames) > 0;
    for (sp = 0; ok && sp < SV_SPLIT_COUNT; sp++)
        if (t->has[sp])
            ok = fprintf(f, "%s.utterances = %zu\n%s.ids = %016llx\n", sv_split_name(sp), t->n[sp], sv_split_name(sp),
                         (unsigned long long)sv__km_ids_hash(d, sp)) > 0;
    if (!ok) sv__fail(SV_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    if ((rc = sv__atomic_end(f, tmp, path, ok)) != SV_OK) goto done;
    SV_FREE(path);
    if (!(path = sv__pathf(dir, ".complete", NULL, NULL))) { rc = SV_ERR_NOMEM; goto done; }
    if (!(f = sv__atomic_begin(path, &tmp))) { rc = sv_last_status(); goto done; }
    ok = fputs("ssl_vgs k-means targets\n", f) != EOF;
    if (!ok) sv__fail(SV_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    rc = sv__atomic_end(f, tmp, path, ok);
done:
    SV_FREE(path);
    SV_FREE(cnt);
    return rc;
}

/* "key = value" of info.txt: the value of key into buf, or 0 when absent */
static int sv__km_info(const char *text, size_t len, const char *key, char *buf, size_t cap)
{
    size_t pos = 0, n, kl = strlen(key);
    const char *s;
    while (sv__next_line(text, len, &pos, &s, &n)) {
        size_t i = 0, v;
        while (i < n && s[i] == ' ') i++;
        if (n - i < kl || memcmp(s + i, key, kl) != 0) continue;
        i += kl;
        while (i < n && s[i] == ' ') i++;
        if (i >= n || s[i] != '=') continue;
        i++;
        while (i < n && s[i] == ' ') i++;
        v = n - i < cap - 1 ? n - i : cap - 1;
        memcpy(buf, s + i, v);
        buf[v] = 0;
        return 1;
    }
    return 0;
}

static int sv__km_info_size(const char *dir, const char *text, size_t len, const char *key, size_t *out)
{
    char v[64], *e;
    unsigned long long x;
    if (!sv__km_info(text, len, key, v, sizeof v)) return sv__fail(SV_ERR_FORMAT, "%s/info.txt: no '%s'", dir, key);
    errno = 0;
    x = strtoull(v, &e, 10);
    if (e == v || *e || errno || v[0] == '-') return sv__fail(SV_ERR_FORMAT, "%s/info.txt: %s = '%s' is not a count", dir, key, v);
    *out = (size_t)x;
    return SV_OK;
}

SV_DEF int sv_km_targets_read(const char *dir, const sv_data *d, sv_km_targets *t)
{
    unsigned char *info = NULL, *txt = NULL;
    size_t ilen = 0, tlen, i, dims;
    char *path = NULL, key[64], v[256];
    int rc = SV_OK, sp, nd;
    size_t shape[4];
    memset(t, 0, sizeof *t);
    if (!dir || !d) return sv__fail(SV_ERR_ARG, "km_targets_read: NULL argument");
    if (!(path = sv__pathf(dir, ".complete", NULL, NULL))) return SV_ERR_NOMEM;
    if (!sv__file_exists(path)) { rc = sv__fail(SV_ERR_FORMAT, "%s is not a finished target folder (no .complete; rerun ./train --kmeans)", dir); goto done; }
    SV_FREE(path);
    if (!(path = sv__pathf(dir, "info.txt", NULL, NULL))) { rc = SV_ERR_NOMEM; goto done; }
    if ((rc = sv__read_file(path, &info, &ilen)) != SV_OK) goto done;
    if (!sv__km_info((const char *)info, ilen, "format", v, sizeof v) || strcmp(v, "ssl_vgs-km 1") != 0) {
        rc = sv__fail(SV_ERR_FORMAT, "%s: not an ssl_vgs target folder (format '%s')", path, v);
        goto done;
    }
    if ((rc = sv__km_info_size(dir, (const char *)info, ilen, "k", &t->k)) != SV_OK ||
        (rc = sv__km_info_size(dir, (const char *)info, ilen, "dim", &t->dim)) != SV_OK ||
        (rc = sv__km_info_size(dir, (const char *)info, ilen, "frame_length", &t->frame_length)) != SV_OK ||
        (rc = sv__km_info_size(dir, (const char *)info, ilen, "hop", &t->hop)) != SV_OK)
        goto done;
    if (t->k < 1 || t->k > 65536 || !t->hop || !t->frame_length || !t->dim) { rc = sv__fail(SV_ERR_FORMAT, "%s: k, dim, frame_length or hop out of range", path); goto done; }
    if (sv__km_info((const char *)info, ilen, "features", v, sizeof v)) snprintf(t->features, sizeof t->features, "%s", v);
    if (sv__km_info((const char *)info, ilen, "seed", v, sizeof v)) t->seed = strtoull(v, NULL, 10);
    if (sv__km_info((const char *)info, ilen, "iterations", v, sizeof v)) t->iterations = (size_t)strtoull(v, NULL, 10);
    if (sv__km_info((const char *)info, ilen, "frames", v, sizeof v)) t->frames = (size_t)strtoull(v, NULL, 10);
    if (sv__km_info((const char *)info, ilen, "inertia", v, sizeof v)) t->inertia = strtod(v, NULL);
    SV_FREE(path);
    if (!(path = sv__pathf(dir, "centroids.npy", NULL, NULL))) { rc = SV_ERR_NOMEM; goto done; }
    if ((rc = sv_npy_read(path, &t->centroids, shape, &nd)) != SV_OK) goto done;
    if (nd != 2 || shape[0] != t->k || shape[1] != t->dim) { rc = sv__fail(SV_ERR_FORMAT, "%s: shape is not [%zu, %zu]", path, t->k, t->dim); goto done; }
    (void)dims;
    for (sp = 0; sp < SV_SPLIT_COUNT; sp++) {
        size_t n = d->n[sp], at, line = 0, total = 0, want_n;
        const char *s;
        size_t ln;
        SV_FREE(path);
        if (!(path = sv__pathf(dir, "%s.km", sv_split_name(sp), NULL))) { rc = SV_ERR_NOMEM; goto done; }
        if (!sv__file_exists(path)) continue;
        snprintf(key, sizeof key, "%s.utterances", sv_split_name(sp));
        if ((rc = sv__km_info_size(dir, (const char *)info, ilen, key, &want_n)) != SV_OK) goto done;
        if (want_n != n) {
            rc = sv__fail(SV_ERR_FORMAT, "%s: made for %zu %s utterances, the data has %zu (targets of another corpus?)", dir, want_n, sv_split_name(sp), n);
            goto done;
        }
        snprintf(key, sizeof key, "%s.ids", sv_split_name(sp));
        if (!sv__km_info((const char *)info, ilen, key, v, sizeof v)) { rc = sv__fail(SV_ERR_FORMAT, "%s/info.txt: no '%s'", dir, key); goto done; }
        {
            char want[32];
            snprintf(want, sizeof want, "%016llx", (unsigned long long)sv__km_ids_hash(d, sp));
            if (strcmp(v, want) != 0) {
                rc = sv__fail(SV_ERR_FORMAT, "%s: the %s utterance ids or lengths differ from the data's (targets of another corpus, or the manifest changed)",
                              dir, sv_split_name(sp));
                goto done;
            }
        }
        for (i = 0; i < n; i++) total += sv__km_count(t, d->len[sp][i]);
        t->offset[sp] = (size_t *)sv__calloc(n + 1, sizeof(size_t), "labels");
        t->labels[sp] = (uint16_t *)sv__calloc(total ? total : 1, sizeof(uint16_t), "labels");
        if (!t->offset[sp] || !t->labels[sp]) { rc = SV_ERR_NOMEM; goto done; }
        t->n[sp] = n;
        t->has[sp] = 1;
        if ((rc = sv__read_file(path, &txt, &tlen)) != SV_OK) goto done;
        at = 0;
        while (sv__next_line((const char *)txt, tlen, &at, &s, &ln)) {
            size_t want, got = 0, p = 0, base;
            if (line >= n) { rc = sv__fail(SV_ERR_FORMAT, "%s:%zu: more lines than the %zu utterances", path, line + 1, n); goto done; }
            want = sv__km_count(t, d->len[sp][line]);
            base = t->offset[sp][line];
            while (p < ln) {
                unsigned long val = 0;
                size_t digits = 0;
                while (p < ln && s[p] >= '0' && s[p] <= '9' && digits < 8) { val = val * 10 + (unsigned long)(s[p] - '0'); p++; digits++; }
                if (!digits || (p < ln && s[p] != ' ')) { rc = sv__fail(SV_ERR_FORMAT, "%s:%zu: not a list of labels", path, line + 1); goto done; }
                if (val >= t->k) { rc = sv__fail(SV_ERR_FORMAT, "%s:%zu: label %lu outside 0..%zu", path, line + 1, val, t->k - 1); goto done; }
                if (got < want) t->labels[sp][base + got] = (uint16_t)val;
                got++;
                if (p < ln) p++;
            }
            if (got != want) {
                rc = sv__fail(SV_ERR_FORMAT, "%s:%zu: %zu labels, utterance %s has %zu frames", path, line + 1, got, d->id[sp][line], want);
                goto done;
            }
            t->offset[sp][line + 1] = base + got;
            line++;
        }
        if (line != n) { rc = sv__fail(SV_ERR_FORMAT, "%s: %zu lines for %zu utterances", path, line, n); goto done; }
        SV_FREE(txt);
        txt = NULL;
    }
done:
    SV_FREE(path);
    SV_FREE(info);
    SV_FREE(txt);
    if (rc != SV_OK) sv_km_targets_free(t);
    return rc;
}

/* ======================================================================================
   11 Metrics
   ====================================================================================== */
/* ---------------------------------------------------------------- 10.16 Hugging Face wav2vec 2.0 weights */
enum { SV__HF_COPY, SV__HF_CONV, SV__HF_POS_G, SV__HF_CODEBOOK };
#define SV__HF_PREFIXED 1   /* under "wav2vec2." in Wav2Vec2ForPreTraining / ForCTC files */
#define SV__HF_HEAD 2       /* the pretraining head: all of it or none */
#define SV__HF_OPTIONAL 4   /* masked_spec_embed (absent when a model was saved without masking) */
#define SV__HF_POS_V 8      /* the positional conv's v: three spellings */
#define SV__HF_CLS 16       /* ssl_vgs.cls_token: this library's CLS vector (FaST-VGS+), not an HF name */
#define SV__HF_PREFIX "wav2vec2."
#define SV__HF_CLS_NAME "ssl_vgs.cls_token"

typedef struct sv__hf_entry {
    sv_tensor *t;
    char name[96];          /* without the prefix */
    int how, flags;
    size_t shape[3];        /* the shape in the file */
    int ndim;
} sv__hf_entry;

static void sv__hf_add(sv__hf_entry *e, size_t *n, sv_tensor *t, int how, int flags, const char *fmt, size_t i)
{
    sv__hf_entry *x = &e[(*n)++];
    memset(x, 0, sizeof *x);
    x->t = t;
    x->how = how;
    x->flags = flags;
    snprintf(x->name, sizeof x->name, fmt, i);
    if (how == SV__HF_CONV) {               /* ours [Cout,K,Cin], PyTorch's [Cout,Cin,K] */
        x->ndim = 3; x->shape[0] = t->shape[0]; x->shape[1] = t->shape[2]; x->shape[2] = t->shape[1];
    } else if (how == SV__HF_POS_G) {       /* ours [K], weight_g [1,1,K] */
        x->ndim = 3; x->shape[0] = 1; x->shape[1] = 1; x->shape[2] = t->shape[0];
    } else if (how == SV__HF_CODEBOOK) {    /* ours [G*V, d/G], codevectors [1, G*V, d/G] */
        x->ndim = 3; x->shape[0] = 1; x->shape[1] = t->shape[0]; x->shape[2] = t->shape[1];
    } else {
        int d;
        x->ndim = t->ndim;
        for (d = 0; d < t->ndim && d < 3; d++) x->shape[d] = t->shape[d];
    }
}

/* Every tensor of the wav2vec 2.0 part of m with its Hugging Face name (at most
   8 * 4 + 8 + 16 * L + 7 + 1 entries). */
static size_t sv__hf_map(const sv_model *m, sv__hf_entry *e)
{
    const sv_config *c = &m->cfg;
    size_t n = 0, i, L = c->n_shared + c->n_decoder;
    const int P = SV__HF_PREFIXED;
    for (i = 0; i < c->n_conv; i++) {
        sv__hf_add(e, &n, m->conv_w[i], SV__HF_CONV, P, "feature_extractor.conv_layers.%zu.conv.weight", i);
        if (m->conv_b[i]) sv__hf_add(e, &n, m->conv_b[i], SV__HF_COPY, P, "feature_extractor.conv_layers.%zu.conv.bias", i);
        if (m->conv_norm_g[i]) {
            sv__hf_add(e, &n, m->conv_norm_g[i], SV__HF_COPY, P, "feature_extractor.conv_layers.%zu.layer_norm.weight", i);
            sv__hf_add(e, &n, m->conv_norm_b[i], SV__HF_COPY, P, "feature_extractor.conv_layers.%zu.layer_norm.bias", i);
        }
    }
    sv__hf_add(e, &n, m->feat_ln_g, SV__HF_COPY, P, "feature_projection.layer_norm.weight", 0);
    sv__hf_add(e, &n, m->feat_ln_b, SV__HF_COPY, P, "feature_projection.layer_norm.bias", 0);
    sv__hf_add(e, &n, m->proj_w, SV__HF_COPY, P, "feature_projection.projection.weight", 0);
    sv__hf_add(e, &n, m->proj_b, SV__HF_COPY, P, "feature_projection.projection.bias", 0);
    sv__hf_add(e, &n, m->mask_emb, SV__HF_COPY, P | SV__HF_OPTIONAL, "masked_spec_embed", 0);
    sv__hf_add(e, &n, m->pos_g, SV__HF_POS_G, P, "encoder.pos_conv_embed.conv.weight_g", 0);
    sv__hf_add(e, &n, m->pos_v, SV__HF_CONV, P | SV__HF_POS_V, "encoder.pos_conv_embed.conv.weight_v", 0);
    sv__hf_add(e, &n, m->pos_b, SV__HF_COPY, P, "encoder.pos_conv_embed.conv.bias", 0);
    sv__hf_add(e, &n, m->enc_ln_g, SV__HF_COPY, P, "encoder.layer_norm.weight", 0);
    sv__hf_add(e, &n, m->enc_ln_b, SV__HF_COPY, P, "encoder.layer_norm.bias", 0);
    for (i = 0; i < L; i++) {
        const sv_tlayer *t = &m->layer[i];
        sv__hf_add(e, &n, t->q_w, SV__HF_COPY, P, "encoder.layers.%zu.attention.q_proj.weight", i);
        sv__hf_add(e, &n, t->q_b, SV__HF_COPY, P, "encoder.layers.%zu.attention.q_proj.bias", i);
        sv__hf_add(e, &n, t->k_w, SV__HF_COPY, P, "encoder.layers.%zu.attention.k_proj.weight", i);
        sv__hf_add(e, &n, t->k_b, SV__HF_COPY, P, "encoder.layers.%zu.attention.k_proj.bias", i);
        sv__hf_add(e, &n, t->v_w, SV__HF_COPY, P, "encoder.layers.%zu.attention.v_proj.weight", i);
        sv__hf_add(e, &n, t->v_b, SV__HF_COPY, P, "encoder.layers.%zu.attention.v_proj.bias", i);
        sv__hf_add(e, &n, t->o_w, SV__HF_COPY, P, "encoder.layers.%zu.attention.out_proj.weight", i);
        sv__hf_add(e, &n, t->o_b, SV__HF_COPY, P, "encoder.layers.%zu.attention.out_proj.bias", i);
        sv__hf_add(e, &n, t->ln1_g, SV__HF_COPY, P, "encoder.layers.%zu.layer_norm.weight", i);
        sv__hf_add(e, &n, t->ln1_b, SV__HF_COPY, P, "encoder.layers.%zu.layer_norm.bias", i);
        sv__hf_add(e, &n, t->fc1_w, SV__HF_COPY, P, "encoder.layers.%zu.feed_forward.intermediate_dense.weight", i);
        sv__hf_add(e, &n, t->fc1_b, SV__HF_COPY, P, "encoder.layers.%zu.feed_forward.intermediate_dense.bias", i);
        sv__hf_add(e, &n, t->fc2_w, SV__HF_COPY, P, "encoder.layers.%zu.feed_forward.output_dense.weight", i);
        sv__hf_add(e, &n, t->fc2_b, SV__HF_COPY, P, "encoder.layers.%zu.feed_forward.output_dense.bias", i);
        sv__hf_add(e, &n, t->ln2_g, SV__HF_COPY, P, "encoder.layers.%zu.final_layer_norm.weight", i);
        sv__hf_add(e, &n, t->ln2_b, SV__HF_COPY, P, "encoder.layers.%zu.final_layer_norm.bias", i);
    }
    sv__hf_add(e, &n, m->codebook, SV__HF_CODEBOOK, SV__HF_HEAD, "quantizer.codevectors", 0);
    sv__hf_add(e, &n, m->q_w, SV__HF_COPY, SV__HF_HEAD, "quantizer.weight_proj.weight", 0);
    sv__hf_add(e, &n, m->q_b, SV__HF_COPY, SV__HF_HEAD, "quantizer.weight_proj.bias", 0);
    sv__hf_add(e, &n, m->projq_w, SV__HF_COPY, SV__HF_HEAD, "project_q.weight", 0);
    sv__hf_add(e, &n, m->projq_b, SV__HF_COPY, SV__HF_HEAD, "project_q.bias", 0);
    sv__hf_add(e, &n, m->final_w, SV__HF_COPY, SV__HF_HEAD, "project_hid.weight", 0);
    sv__hf_add(e, &n, m->final_b, SV__HF_COPY, SV__HF_HEAD, "project_hid.bias", 0);
    if (m->cls) sv__hf_add(e, &n, m->cls, SV__HF_COPY, SV__HF_CLS, SV__HF_CLS_NAME, 0);
    return n;
}

static size_t sv__hf_map_cap(const sv_config *c) { return 8 * 4 + 16 + 16 * (c->n_shared + c->n_decoder) + 8; }

/* "wav2vec2." when the file's encoder is under that prefix (ForPreTraining, ForCTC), else "". */
static const char *sv__hf_prefix(const sv_safetensors *st)
{
    return sv_safetensors_find(st, SV__HF_PREFIX "feature_extractor.conv_layers.0.conv.weight") ? SV__HF_PREFIX : "";
}

static const sv_st_tensor *sv__hf_find(const sv_safetensors *st, const char *prefix, const char *name)
{
    char full[200];
    if (strlen(prefix) + strlen(name) >= sizeof full) return NULL;
    memcpy(full, prefix, strlen(prefix));
    memcpy(full + strlen(prefix), name, strlen(name) + 1);
    return sv_safetensors_find(st, full);
}

/* The positional conv's v (or a plain weight without weight norm: *plain = 1) and g. */
static void sv__hf_find_pos(const sv_safetensors *st, const char *P, const sv_st_tensor **v, const sv_st_tensor **g, int *plain,
                            int *spellings)
{
    const sv_st_tensor *v1 = sv__hf_find(st, P, "encoder.pos_conv_embed.conv.weight_v");
    const sv_st_tensor *v2 = sv__hf_find(st, P, "encoder.pos_conv_embed.conv.parametrizations.weight.original1");
    const sv_st_tensor *w = sv__hf_find(st, P, "encoder.pos_conv_embed.conv.weight");
    *spellings = (v1 != NULL) + (v2 != NULL) + (w != NULL);
    *plain = 0;
    if (v1) { *v = v1; *g = sv__hf_find(st, P, "encoder.pos_conv_embed.conv.weight_g"); }
    else if (v2) { *v = v2; *g = sv__hf_find(st, P, "encoder.pos_conv_embed.conv.parametrizations.weight.original0"); }
    else if (w) { *v = w; *g = NULL; *plain = 1; }
    else { *v = NULL; *g = NULL; }
}

static void sv__note(char *notes, size_t cap, const char *fmt, ...)
{
    va_list ap;
    size_t n;
    if (!notes || !cap) return;
    n = strlen(notes);
    if (n + 3 >= cap) return;
    if (n) { strcpy(notes + n, "; "); n += 2; }
    va_start(ap, fmt);
    vsnprintf(notes + n, cap - n, fmt, ap);
    va_end(ap);
}

static void sv__shape_str(char *buf, size_t cap, const size_t *shape, int ndim)
{
    int d;
    size_t n = 0;
    buf[0] = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (d = 0; d < ndim && n < cap; d++) n += (size_t)snprintf(buf + n, cap - n, d ? ",%zu" : "%zu", shape[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* Task heads a Hugging Face file may carry that a wav2vec 2.0 backbone has no place for. */
static int sv__hf_ignorable(const char *name)
{
    return strncmp(name, "lm_head.", 8) == 0 || strncmp(name, "projector.", 10) == 0 || strncmp(name, "classifier.", 11) == 0;
}

/* One line listing up to two names of a category and how many more. */
typedef struct sv__hf_errs { char text[400]; size_t missing, shaped, extra, dtype, nonfinite; } sv__hf_errs;

static void sv__hf_err(sv__hf_errs *r, size_t *count, const char *what, const char *name, const char *detail)
{
    size_t n = strlen(r->text);
    if (++*count <= 2 && n + 8 < sizeof r->text)
        snprintf(r->text + n, sizeof r->text - n, "%s%s '%s'%s", n ? "; " : "", what, name, detail ? detail : "");
}

SV_DEF int sv_hf_load_tensors(sv_model *m, const sv_safetensors *st, const char *name, char *notes, size_t notes_cap)
{
    const char *nm = sv__nm(name), *P;
    size_t cap = sv__hf_map_cap(&m->cfg), n, i, head_found = 0, head_missing = 0, ignored = 0;
    sv__hf_entry *e;
    const sv_st_tensor **src;
    unsigned char *used;
    const sv_st_tensor *pv = NULL, *pg = NULL;
    int plain = 0, spellings = 0, rc = SV_OK;
    sv__hf_errs r;
    char a[64], b[64], full[160];
    if (notes && notes_cap) notes[0] = 0;
    if (!st) return sv__fail(SV_ERR_ARG, "sv_hf_load_tensors: NULL tensors");
    e = SV__CAST(sv__hf_entry *, sv__calloc(cap, sizeof *e, "HF name map"));
    src = SV__CAST(const sv_st_tensor **, sv__calloc(cap, sizeof *src, "HF name map"));
    used = SV__CAST(unsigned char *, sv__calloc(st->n ? st->n : 1, 1, "HF name map"));
    if (!e || !src || !used) { SV_FREE(e); SV_FREE(src); SV_FREE(used); return SV_ERR_NOMEM; }
    memset(&r, 0, sizeof r);
    n = sv__hf_map(m, e);
    P = sv__hf_prefix(st);
    sv__hf_find_pos(st, P, &pv, &pg, &plain, &spellings);
    if (spellings > 1) sv__hf_err(&r, &r.extra, "two spellings of", "encoder.pos_conv_embed.conv.weight", " (weight_v/original1/weight)");
    for (i = 0; i < n; i++) {
        const sv__hf_entry *x = &e[i];
        const sv_st_tensor *t;
        snprintf(full, sizeof full, "%s%s", (x->flags & SV__HF_PREFIXED) ? P : "", x->name);
        if (x->flags & SV__HF_POS_V) t = pv;
        else if (x->how == SV__HF_POS_G) t = plain ? pv : pg;
        else t = sv_safetensors_find(st, full);
        if (!t) {
            if (x->flags & SV__HF_HEAD) head_missing++;
            else if (x->flags & SV__HF_OPTIONAL) sv__note(notes, notes_cap, "no %s in the file: the mask embedding keeps its initial values", x->name);
            else if (x->flags & SV__HF_CLS) sv__note(notes, notes_cap, "no CLS token in the file: it keeps its initial values (as the VGS branch)");
            else sv__hf_err(&r, &r.missing, "missing", full, NULL);
            continue;
        }
        if (x->flags & SV__HF_HEAD) head_found++;
        src[i] = t;
        used[t - st->t] = 1;
        if (!t->data) { sv__hf_err(&r, &r.dtype, "unsupported dtype of", t->name, t->dtype); src[i] = NULL; continue; }
        if (x->how == SV__HF_POS_G && plain) continue;   /* g is computed from the plain weight */
        if (t->ndim != x->ndim || memcmp(t->shape, x->shape, (size_t)x->ndim * sizeof(size_t)) != 0) {
            char d[160];
            sv__shape_str(a, sizeof a, t->shape, t->ndim);
            sv__shape_str(b, sizeof b, x->shape, x->ndim);
            snprintf(d, sizeof d, " %s (this model: %s)", a, b);
            sv__hf_err(&r, &r.shaped, "mis-shaped", t->name, d);
            src[i] = NULL;
            continue;
        }
        {
            size_t k;
            for (k = 0; k < t->numel; k++)
                if (!sv__isfinite(t->data[k])) { sv__hf_err(&r, &r.nonfinite, "NaN/inf in", t->name, NULL); src[i] = NULL; break; }
        }
    }
    if (pg && plain == 0) used[pg - st->t] = 1;
    if (head_found && head_missing)
        for (i = 0; i < n; i++)
            if ((e[i].flags & SV__HF_HEAD) && !sv_safetensors_find(st, e[i].name)) sv__hf_err(&r, &r.missing, "missing", e[i].name, " (the rest of the pretraining head is there)");
    for (i = 0; i < st->n; i++) {
        if (used[i]) continue;
        if (sv__hf_ignorable(st->t[i].name)) { ignored++; continue; }
        sv__hf_err(&r, &r.extra, "unexpected", st->t[i].name,
                   strcmp(st->t[i].name, SV__HF_CLS_NAME) == 0 ? " (a CLS token: this model has use_cls = 0)" : NULL);
    }
    if (r.missing + r.shaped + r.extra + r.dtype + r.nonfinite) {
        size_t more = r.missing + r.shaped + r.extra + r.dtype + r.nonfinite;
        more = more > 2 ? more - (r.missing < 2 ? r.missing : 2) - (r.shaped < 2 ? r.shaped : 2) - (r.extra < 2 ? r.extra : 2) -
                              (r.dtype < 2 ? r.dtype : 2) - (r.nonfinite < 2 ? r.nonfinite : 2) : 0;
        rc = sv__fail(SV_ERR_FORMAT, "%s does not fit this %s model (%zu missing, %zu mis-shaped, %zu unexpected tensors): %s%s", nm,
                      m->cfg.name, r.missing, r.shaped, r.extra + r.dtype + r.nonfinite, r.text, more ? " ..." : "");
        goto done;
    }
    if (!head_found) sv__note(notes, notes_cap, "no pretraining head in the file (quantizer, project_q, project_hid): it keeps its initial values");
    if (ignored) sv__note(notes, notes_cap, "%zu tensors of a task head (lm_head/projector/classifier) ignored", ignored);
    if (plain) sv__note(notes, notes_cap, "positional conv stored without weight norm: g recomputed as the per-tap norm");
    /* every check passed: copy */
    for (i = 0; i < n; i++) {
        const sv__hf_entry *x = &e[i];
        const sv_st_tensor *t = src[i];
        sv_tensor *d = x->t;
        size_t o, k, c, O, K, C;
        if (!t) continue;
        if (x->how == SV__HF_CONV) {                /* file [O,C,K] -> ours [O,K,C] */
            O = d->shape[0]; K = d->shape[1]; C = d->shape[2];
            for (o = 0; o < O; o++)
                for (c = 0; c < C; c++)
                    for (k = 0; k < K; k++) d->data[(o * K + k) * C + c] = t->data[(o * C + c) * K + k];
        } else if (x->how == SV__HF_POS_G && plain) {   /* g_k = ||w[:,:,k]|| */
            K = d->shape[0];
            for (k = 0; k < K; k++) {
                double s = 0;
                for (o = 0; o < t->numel / K; o++) s += (double)t->data[o * K + k] * t->data[o * K + k];
                d->data[k] = (float)sqrt(s);
            }
        } else {
            memcpy(d->data, t->data, d->n * sizeof(float));
        }
    }
done:
    SV_FREE(e); SV_FREE(src); SV_FREE(used);
    return rc;
}

/* ---- configuration */
/* The file next to path: "<folder of path>/<file>" (allocated). */
static char *sv__sibling(const char *path, const char *file)
{
    size_t d = sv__dir_len(path), n = strlen(file);
    char *p = SV__CAST(char *, sv__alloc(d + n + 1, "path"));
    if (!p) return NULL;
    memcpy(p, path, d);
    memcpy(p + d, file, n + 1);
    return p;
}

static int sv__hf_jp_size(const sv__jp *j, size_t root, const char *key, size_t *v, int *have, const char *nm)
{
    size_t k = sv__jp_get(j, root, key);
    uint64_t u;
    *have = 0;
    if (!k) return SV_OK;
    if (!sv__jp_u64(j, k, &u) || u > SIZE_MAX) return sv__fail(SV_ERR_FORMAT, "%s: '%s' must be a non-negative integer", nm, key);
    *v = (size_t)u;
    *have = 1;
    return SV_OK;
}

static int sv__hf_jp_is(const sv__jp *j, size_t root, const char *key, const char *want, int *differs)
{
    size_t k = sv__jp_get(j, root, key), wl = strlen(want);
    *differs = 0;
    if (!k) return 0;
    *differs = j->node[k].type != SV__J_STR || j->node[k].len != wl || memcmp(j->s + j->node[k].at, want, wl) != 0;
    return 1;
}

/* Reads the config text of this library's own export (metadata "ssl_vgs_config") into cfg. */
static int sv__hf_own_config(const char *text, sv_config *cfg, const char *nm, char *notes, size_t notes_cap)
{
    char line[512], *k, *v;
    size_t i = 0, n = strlen(text), f, unknown = 0;
    while (sv__kv_line(text, n, &i, line, sizeof line, &k, &v)) {
        /* a field of a newer version of the library: its default stays (the tensors decide the rest) */
        for (f = 0; f < SV__N_CFG_FIELDS && strcmp(sv__cfg_fields[f].key, k) != 0; f++) {}
        if (f == SV__N_CFG_FIELDS) { unknown++; continue; }
        if (sv_config_set(cfg, k, v) != SV_OK) return sv__fail(SV_ERR_FORMAT, "%s: metadata ssl_vgs_config: %s", nm, sv_last_error());
    }
    if (unknown) sv__note(notes, notes_cap, "%zu config fields of the file's ssl_vgs_config are unknown to this version and were ignored", unknown);
    return SV_OK;
}

#define SV__HF_ASSUMED_STRIDES 1
#define SV__HF_ASSUMED_HEADS 2
#define SV__HF_ASSUMED_LN 4
#define SV__HF_ASSUMED_GROUPS 8

static int sv__hf_config(const sv_safetensors *st, const char *json, size_t json_len, const char *nm, const sv_config *base,
                         sv_config *cfg, char *notes, size_t notes_cap, int *assumed)
{
    static const size_t k7[7] = {10, 3, 3, 3, 3, 2, 2}, s7[7] = {5, 2, 2, 2, 2, 2, 2};
    const char *P, *own;
    const sv_st_tensor *t, *pv, *pg;
    size_t i, n_conv = 0, L = 0, cin = 1, D, C, v, jn;
    int plain, spell, have, rc, own_cfg = 0, strides_known = 0, heads_known = 0, ln_known = 0, groups_known = 0, differs;
    char key[160];
    sv__jp j;
    memset(&j, 0, sizeof j);
    *assumed = 0;
    if (base) *cfg = *base;
    else if ((rc = sv_config_preset("base", cfg)) != SV_OK) return rc;
    if ((own = sv_safetensors_meta(st, "ssl_vgs_config")) != NULL) {
        /* written by sv_hf_save: every field is known; the checks below still run */
        if ((rc = sv__hf_own_config(own, cfg, nm, notes, notes_cap)) != SV_OK) return rc;
        own_cfg = strides_known = heads_known = ln_known = groups_known = 1;
    } else {
        snprintf(cfg->name, sizeof cfg->name, "hf");
    }
    P = sv__hf_prefix(st);
    /* feature encoder: conv weights [Cout, Cin, K], channels chained from 1 */
    for (;;) {
        snprintf(key, sizeof key, "feature_extractor.conv_layers.%zu.conv.weight", n_conv);
        if (!(t = sv__hf_find(st, P, key))) break;
        if (n_conv == SV_MAX_CONV) return sv__fail(SV_ERR_FORMAT, "%s: more than %d conv layers", nm, SV_MAX_CONV);
        if (t->ndim != 3 || t->shape[1] != cin || !t->shape[0] || !t->shape[2])
            return sv__fail(SV_ERR_FORMAT, "%s: %s%s is not [Cout, %zu, K]", nm, P, key, cin);
        cfg->conv_dim[n_conv] = t->shape[0];
        cfg->conv_kernel[n_conv] = t->shape[2];
        cin = t->shape[0];
        n_conv++;
    }
    if (!n_conv)
        return sv__fail(SV_ERR_FORMAT, "%s: not a wav2vec 2.0 model: no feature_extractor.conv_layers.0.conv.weight "
                        "(with or without the wav2vec2. prefix)", nm);
    cfg->n_conv = n_conv;
    for (i = n_conv; i < SV_MAX_CONV; i++)   /* the base preset's layers past this model's: unused, so 0 */
        cfg->conv_dim[i] = cfg->conv_kernel[i] = cfg->conv_stride[i] = 0;
    cfg->extractor_mode = n_conv > 1 && sv__hf_find(st, P, "feature_extractor.conv_layers.1.layer_norm.weight") ? SV_EXTRACTOR_LAYER_NORM
                                                                                                              : SV_EXTRACTOR_DEFAULT;
    cfg->conv_bias = sv__hf_find(st, P, "feature_extractor.conv_layers.0.conv.bias") != NULL;
    C = cin;
    t = sv__hf_find(st, P, "feature_projection.projection.weight");
    if (!t || t->ndim != 2 || t->shape[1] != C || !t->shape[0])
        return sv__fail(SV_ERR_FORMAT, "%s: %sfeature_projection.projection.weight missing or not [D, %zu]", nm, P, C);
    D = cfg->D = t->shape[0];
    for (;;) {
        snprintf(key, sizeof key, "encoder.layers.%zu.attention.q_proj.weight", L);
        if (!sv__hf_find(st, P, key)) break;
        if (++L > SV_MAX_LAYERS) return sv__fail(SV_ERR_FORMAT, "%s: more than %d transformer layers", nm, SV_MAX_LAYERS);
    }
    if (!L) return sv__fail(SV_ERR_FORMAT, "%s: no transformer layer (%sencoder.layers.0.attention.q_proj.weight)", nm, P);
    t = sv__hf_find(st, P, "encoder.layers.0.feed_forward.intermediate_dense.weight");
    if (!t || t->ndim != 2 || t->shape[1] != D || !t->shape[0])
        return sv__fail(SV_ERR_FORMAT, "%s: %sencoder.layers.0.feed_forward.intermediate_dense.weight missing or not [F, %zu]", nm, P, D);
    cfg->ffn = t->shape[0];
    sv__hf_find_pos(st, P, &pv, &pg, &plain, &spell);
    if (!pv || pv->ndim != 3 || pv->shape[0] != D || !pv->shape[1] || D % pv->shape[1] || !pv->shape[2])
        return sv__fail(SV_ERR_FORMAT, "%s: %sencoder.pos_conv_embed.conv.weight_v missing or not [%zu, D/groups, K]", nm, P, D);
    cfg->pos_kernel = pv->shape[2];
    cfg->pos_groups = D / pv->shape[1];
    if (!own_cfg || cfg->n_shared + cfg->n_decoder != L) {
        /* the layers the VGS branch shares: as many as the base config's, at most all of them */
        size_t want = base ? base->n_shared : 8;
        cfg->n_shared = want < L ? want : L;
        cfg->n_decoder = L - cfg->n_shared;
    }
    cfg->use_cls = sv_safetensors_find(st, SV__HF_CLS_NAME) != NULL;
    /* config.json: the fields the tensors cannot show, and a cross-check of the others */
    if (json) {
        static const char *keys[5] = {"hidden_size", "num_hidden_layers", "intermediate_size", "num_conv_pos_embeddings",
                                      "num_conv_pos_embedding_groups"};
        size_t want[5], c, k;
        uint64_t u;
        if ((rc = sv__jp_parse(&j, json, json_len, nm, "config")) != SV_OK) return rc;
        if (j.node[0].type != SV__J_OBJ) { rc = sv__fail(SV_ERR_FORMAT, "%s: config.json is not a JSON object", nm); goto done; }
        if ((jn = sv__jp_get(&j, 0, "conv_stride")) != 0) {
            if (j.node[jn].type != SV__J_ARR) { rc = sv__fail(SV_ERR_FORMAT, "%s: config.json conv_stride is not a list", nm); goto done; }
            for (c = jn + 1, k = 0; c < j.node[jn].end; c = j.node[c].end, k++) {
                if (k >= n_conv || !sv__jp_u64(&j, c, &u) || u == 0 || u > 1000000) break;
                cfg->conv_stride[k] = (size_t)u;
            }
            if (c < j.node[jn].end || k != n_conv) {
                rc = sv__fail(SV_ERR_FORMAT, "%s: config.json conv_stride must list %zu positive strides (one per conv layer)", nm, n_conv);
                goto done;
            }
            strides_known = 1;
        }
        if ((rc = sv__hf_jp_size(&j, 0, "num_attention_heads", &v, &have, nm)) != SV_OK) goto done;
        if (have) { cfg->heads = v; heads_known = 1; }
        if ((rc = sv__hf_jp_size(&j, 0, "num_codevector_groups", &v, &have, nm)) != SV_OK) goto done;
        if (have) { cfg->q_groups = v; groups_known = 1; }
        if ((jn = sv__jp_get(&j, 0, "do_stable_layer_norm")) != 0) {
            if (j.node[jn].type != SV__J_TRUE && j.node[jn].type != SV__J_FALSE) {
                rc = sv__fail(SV_ERR_FORMAT, "%s: config.json do_stable_layer_norm is not true or false", nm);
                goto done;
            }
            cfg->layer_norm_first = j.node[jn].type == SV__J_TRUE;
            ln_known = 1;
        }
        if ((jn = sv__jp_get(&j, 0, "layer_norm_eps")) != 0) {
            double eps = 0;
            if (!sv__jp_double(&j, jn, &eps) || fabs(eps - 1e-5) > 1e-12) {
                rc = sv__fail(SV_ERR_FORMAT, "%s: config.json layer_norm_eps must be 1e-05 (the only value implemented here)", nm);
                goto done;
            }
        }
        if ((sv__hf_jp_is(&j, 0, "hidden_act", "gelu", &differs) && differs) ||
            (sv__hf_jp_is(&j, 0, "feat_extract_activation", "gelu", &differs) && differs)) {
            rc = sv__fail(SV_ERR_FORMAT, "%s: config.json hidden_act and feat_extract_activation must be \"gelu\" (exact erf GELU)", nm);
            goto done;
        }
        if (sv__hf_jp_is(&j, 0, "feat_extract_norm", cfg->extractor_mode == SV_EXTRACTOR_LAYER_NORM ? "layer" : "group", &differs) &&
            differs) {
            rc = sv__fail(SV_ERR_FORMAT, "%s: config.json feat_extract_norm disagrees with the tensors (a %s-norm feature encoder)", nm,
                          cfg->extractor_mode == SV_EXTRACTOR_LAYER_NORM ? "layer" : "group");
            goto done;
        }
        want[0] = D; want[1] = L; want[2] = cfg->ffn; want[3] = cfg->pos_kernel; want[4] = cfg->pos_groups;
        for (k = 0; k < 5; k++) {
            if ((rc = sv__hf_jp_size(&j, 0, keys[k], &v, &have, nm)) != SV_OK) goto done;
            if (have && v != want[k]) {
                rc = sv__fail(SV_ERR_FORMAT, "%s: config.json %s = %zu but the tensors say %zu", nm, keys[k], v, want[k]);
                goto done;
            }
        }
    }
    if (!strides_known) {   /* the fairseq geometry, when the kernels are its kernels */
        int std7 = n_conv == 7;
        for (i = 0; std7 && i < 7; i++) if (cfg->conv_kernel[i] != k7[i]) std7 = 0;
        if (!std7) {
            rc = sv__fail(SV_ERR_FORMAT, "%s: the conv strides are not in the tensors and the kernels are not fairseq's "
                          "10,3,3,3,3,2,2: put the model's config.json (conv_stride) beside the file", nm);
            goto done;
        }
        for (i = 0; i < 7; i++) cfg->conv_stride[i] = s7[i];
        *assumed |= SV__HF_ASSUMED_STRIDES;
        sv__note(notes, notes_cap, "conv strides 5,2,2,2,2,2,2 assumed (no config.json)");
    }
    if (!heads_known) {
        if (D % 64) {
            rc = sv__fail(SV_ERR_FORMAT, "%s: D = %zu: the number of attention heads cannot be guessed; put the model's config.json "
                          "(num_attention_heads) beside the file", nm, D);
            goto done;
        }
        cfg->heads = D / 64;
        *assumed |= SV__HF_ASSUMED_HEADS;
        sv__note(notes, notes_cap, "%zu attention heads assumed (D / 64; no config.json)", cfg->heads);
    }
    if (!ln_known) {
        cfg->layer_norm_first = cfg->extractor_mode == SV_EXTRACTOR_LAYER_NORM;
        *assumed |= SV__HF_ASSUMED_LN;
        sv__note(notes, notes_cap, "%s-LN transformer assumed (as fairseq's %s models; no do_stable_layer_norm in a config.json)",
                 cfg->layer_norm_first ? "pre" : "post", cfg->layer_norm_first ? "layer-norm" : "group-norm");
    }
    if ((t = sv_safetensors_find(st, "quantizer.codevectors")) != NULL) {
        const sv_st_tensor *h = sv_safetensors_find(st, "project_hid.weight");
        if (!groups_known) { cfg->q_groups = 2; *assumed |= SV__HF_ASSUMED_GROUPS; }
        if (t->ndim != 3 || t->shape[0] != 1 || !cfg->q_groups || t->shape[1] % cfg->q_groups || !t->shape[1] || !t->shape[2]) {
            rc = sv__fail(SV_ERR_FORMAT, "%s: quantizer.codevectors is not [1, G*V, d/G] with G = %zu groups", nm, cfg->q_groups);
            goto done;
        }
        cfg->q_vars = t->shape[1] / cfg->q_groups;
        cfg->q_dim = t->shape[2] * cfg->q_groups;
        if (!h || h->ndim != 2 || !h->shape[0]) { rc = sv__fail(SV_ERR_FORMAT, "%s: quantizer.codevectors without project_hid.weight", nm); goto done; }
        cfg->final_dim = h->shape[0];
    } else if (json && !own_cfg) {   /* no head in the file: its size from config.json, else the base config's */
        if ((rc = sv__hf_jp_size(&j, 0, "num_codevectors_per_group", &v, &have, nm)) != SV_OK) goto done;
        if (have && v) cfg->q_vars = v;
        if ((rc = sv__hf_jp_size(&j, 0, "codevector_dim", &v, &have, nm)) != SV_OK) goto done;
        if (have && v) cfg->q_dim = v;
        if ((rc = sv__hf_jp_size(&j, 0, "proj_codevector_dim", &v, &have, nm)) != SV_OK) goto done;
        if (have && v) cfg->final_dim = v;
    }
    /* the VGS branch is not in the file; it is sized from D */
    cfg->vgs_width[4] = D;
    if (!cfg->vgs_heads || D % cfg->vgs_heads) cfg->vgs_heads = cfg->heads;
    if ((rc = sv_config_check(cfg)) != SV_OK) rc = sv__fail(SV_ERR_FORMAT, "%s: %s", nm, sv_last_error());
done:
    sv__jp_free(&j);
    return rc;
}

SV_DEF int sv_hf_config(const sv_safetensors *st, const char *config_json, size_t json_len, const char *name,
                        const sv_config *base, sv_config *cfg, char *notes, size_t notes_cap)
{
    int assumed;
    if (notes && notes_cap) notes[0] = 0;
    if (!st || !cfg) return sv__fail(SV_ERR_ARG, "sv_hf_config: NULL argument");
    return sv__hf_config(st, config_json, json_len, sv__nm(name), base, cfg, notes, notes_cap, &assumed);
}

/* The safetensors file and, when present, config.json beside it. */
static int sv__hf_read(const char *path, sv_safetensors *st, unsigned char **json, size_t *json_len)
{
    char *cj;
    int rc;
    *json = NULL;
    *json_len = 0;
    if ((rc = sv_safetensors_read(path, st)) != SV_OK) return rc;
    if (!(cj = sv__sibling(path, "config.json"))) { sv_safetensors_free(st); return SV_ERR_NOMEM; }
    if (sv__file_exists(cj) && (rc = sv__read_file(cj, json, json_len)) != SV_OK) sv_safetensors_free(st);
    SV_FREE(cj);
    return rc;
}

SV_DEF sv_model *sv_hf_load(const char *path, const sv_config *base, char *notes, size_t notes_cap)
{
    sv_safetensors st;
    unsigned char *json = NULL;
    size_t json_len = 0;
    sv_config cfg;
    sv_model *m = NULL;
    int assumed = 0;
    char more[512];
    if (notes && notes_cap) notes[0] = 0;
    if (sv__hf_read(path, &st, &json, &json_len) != SV_OK) return NULL;
    if (sv__hf_config(&st, (const char *)json, json_len, path, base, &cfg, notes, notes_cap, &assumed) == SV_OK &&
        (m = sv_model_new(&cfg, 0)) != NULL) {
        more[0] = 0;
        if (sv_hf_load_tensors(m, &st, path, more, sizeof more) != SV_OK) { sv_model_free(m); m = NULL; }
        else if (more[0]) sv__note(notes, notes_cap, "%s", more);
    }
    sv_safetensors_free(&st);
    SV_FREE(json);
    return m;
}

SV_DEF int sv_hf_load_into(sv_model *m, const char *path, char *notes, size_t notes_cap)
{
    sv_safetensors st;
    unsigned char *json = NULL;
    size_t json_len = 0, i;
    sv_config f;
    const sv_config *c = &m->cfg;
    int rc, assumed = 0;
    char more[512], what[160];
    if (notes && notes_cap) notes[0] = 0;
    if ((rc = sv__hf_read(path, &st, &json, &json_len)) != SV_OK) return rc;
    rc = sv__hf_config(&st, (const char *)json, json_len, path, c, &f, notes, notes_cap, &assumed);
    if (rc != SV_OK) goto done;
    /* the architecture must be this model's; name the first difference */
    what[0] = 0;
    if (f.n_conv != c->n_conv) snprintf(what, sizeof what, "%zu conv layers (the model: %zu)", f.n_conv, c->n_conv);
    for (i = 0; !what[0] && i < c->n_conv; i++)
        if (f.conv_dim[i] != c->conv_dim[i] || f.conv_kernel[i] != c->conv_kernel[i] || f.conv_stride[i] != c->conv_stride[i])
            snprintf(what, sizeof what, "conv layer %zu of (%zu channels, kernel %zu, stride %zu) (the model: (%zu, %zu, %zu))", i,
                     f.conv_dim[i], f.conv_kernel[i], f.conv_stride[i], c->conv_dim[i], c->conv_kernel[i], c->conv_stride[i]);
    if (!what[0] && (f.extractor_mode != c->extractor_mode || f.conv_bias != c->conv_bias))
        snprintf(what, sizeof what, "a %s-norm feature encoder %s conv bias (the model: %s-norm, %s)",
                 f.extractor_mode ? "layer" : "group", f.conv_bias ? "with" : "without", c->extractor_mode ? "layer" : "group",
                 c->conv_bias ? "with" : "without");
    if (!what[0] && (f.D != c->D || f.ffn != c->ffn || f.n_shared + f.n_decoder != c->n_shared + c->n_decoder))
        snprintf(what, sizeof what, "%zu layers of width %zu, FFN %zu (the model: %zu layers of %zu, FFN %zu)", f.n_shared + f.n_decoder,
                 f.D, f.ffn, c->n_shared + c->n_decoder, c->D, c->ffn);
    if (!what[0] && (f.pos_kernel != c->pos_kernel || f.pos_groups != c->pos_groups))
        snprintf(what, sizeof what, "a positional conv of kernel %zu in %zu groups (the model: %zu, %zu)", f.pos_kernel, f.pos_groups,
                 c->pos_kernel, c->pos_groups);
    if (!what[0] && !(assumed & SV__HF_ASSUMED_HEADS) && f.heads != c->heads)
        snprintf(what, sizeof what, "%zu attention heads (the model: %zu)", f.heads, c->heads);
    if (!what[0] && !(assumed & SV__HF_ASSUMED_LN) && f.layer_norm_first != c->layer_norm_first)
        snprintf(what, sizeof what, "a %s-LN transformer (the model: %s-LN)", f.layer_norm_first ? "pre" : "post",
                 c->layer_norm_first ? "pre" : "post");
    if (!what[0] && sv_safetensors_find(&st, "quantizer.codevectors") &&
        (f.q_groups != c->q_groups || f.q_vars != c->q_vars || f.q_dim != c->q_dim || f.final_dim != c->final_dim))
        snprintf(what, sizeof what, "a quantizer of %zu x %zu codes of %zu dims, projections to %zu (the model: %zu x %zu, %zu, %zu)",
                 f.q_groups, f.q_vars, f.q_dim, f.final_dim, c->q_groups, c->q_vars, c->q_dim, c->final_dim);
    if (what[0]) { rc = sv__fail(SV_ERR_FORMAT, "%s does not fit the %s config: the file has %s", path, c->name, what); goto done; }
    if (assumed & SV__HF_ASSUMED_HEADS) sv__note(notes, notes_cap, "the number of attention heads could not be checked");
    if (assumed & SV__HF_ASSUMED_LN) sv__note(notes, notes_cap, "pre/post-LN could not be checked");
    more[0] = 0;
    if ((rc = sv_hf_load_tensors(m, &st, path, more, sizeof more)) == SV_OK && more[0]) sv__note(notes, notes_cap, "%s", more);
done:
    sv_safetensors_free(&st);
    SV_FREE(json);
    return rc;
}

/* ---- export */
SV_DEF size_t sv_hf_config_json(const sv_config *c, char *buf, size_t cap)
{
    sv__sbuf b;
    char t[256];
    size_t i, n;
    memset(&b, 0, sizeof b);
#define SV__J(...) do { snprintf(t, sizeof t, __VA_ARGS__); sv__sb_str(&b, t); } while (0)
    SV__J("{\n  \"architectures\": [\"Wav2Vec2ForPreTraining\"],\n  \"model_type\": \"wav2vec2\",\n");
    SV__J("  \"conv_dim\": [");
    for (i = 0; i < c->n_conv; i++) SV__J(i ? ", %zu" : "%zu", c->conv_dim[i]);
    SV__J("],\n  \"conv_kernel\": [");
    for (i = 0; i < c->n_conv; i++) SV__J(i ? ", %zu" : "%zu", c->conv_kernel[i]);
    SV__J("],\n  \"conv_stride\": [");
    for (i = 0; i < c->n_conv; i++) SV__J(i ? ", %zu" : "%zu", c->conv_stride[i]);
    SV__J("],\n  \"num_feat_extract_layers\": %zu,\n  \"conv_bias\": %s,\n", c->n_conv, c->conv_bias ? "true" : "false");
    SV__J("  \"feat_extract_norm\": \"%s\",\n  \"feat_extract_activation\": \"gelu\",\n",
          c->extractor_mode == SV_EXTRACTOR_LAYER_NORM ? "layer" : "group");
    SV__J("  \"hidden_size\": %zu,\n  \"num_hidden_layers\": %zu,\n  \"num_attention_heads\": %zu,\n  \"intermediate_size\": %zu,\n",
          c->D, c->n_shared + c->n_decoder, c->heads, c->ffn);
    SV__J("  \"hidden_act\": \"gelu\",\n  \"layer_norm_eps\": 1e-05,\n  \"do_stable_layer_norm\": %s,\n",
          c->layer_norm_first ? "true" : "false");
    SV__J("  \"num_conv_pos_embeddings\": %zu,\n  \"num_conv_pos_embedding_groups\": %zu,\n", c->pos_kernel, c->pos_groups);
    SV__J("  \"num_codevector_groups\": %zu,\n  \"num_codevectors_per_group\": %zu,\n  \"codevector_dim\": %zu,\n"
          "  \"proj_codevector_dim\": %zu,\n", c->q_groups, c->q_vars, c->q_dim, c->final_dim);
    SV__J("  \"num_negatives\": %zu,\n  \"contrastive_logits_temperature\": %.9g,\n  \"diversity_loss_weight\": %.9g,\n",
          c->n_negatives, (double)c->logit_temp, (double)c->diversity_weight);
    SV__J("  \"hidden_dropout\": %.9g,\n  \"attention_dropout\": %.9g,\n  \"activation_dropout\": %.9g,\n"
          "  \"feat_proj_dropout\": %.9g,\n  \"feat_quantizer_dropout\": %.9g,\n  \"layerdrop\": %.9g,\n",
          (double)c->dropout, (double)c->attn_dropout, (double)c->act_dropout, (double)c->dropout_input,
          (double)c->dropout_features, (double)c->layerdrop);
    SV__J("  \"mask_time_prob\": %.9g,\n  \"mask_time_length\": %zu,\n  \"mask_time_min_masks\": %zu,\n",
          (double)c->mask_prob, c->mask_length, c->mask_min_spans);
    SV__J("  \"apply_spec_augment\": true,\n  \"torch_dtype\": \"float32\"\n}\n");
#undef SV__J
    n = b.err ? 0 : b.n;
    if (buf && cap) {
        size_t k = n < cap ? n : cap - 1;
        if (k) memcpy(buf, b.p, k);
        buf[k] = 0;
    }
    SV_FREE(b.p);
    return n;
}

SV_DEF int sv_hf_save(const sv_model *m, const char *path, const char *config_json_path)
{
    size_t cap = sv__hf_map_cap(&m->cfg), n, i, jl, cl;
    sv__hf_entry *e = NULL;
    sv_st_tensor *t = NULL;
    float **own = NULL;
    char *cfgtext = NULL, json[8192], *tmp;
    const char *meta[6];
    size_t n_meta = 2;
    int rc = SV_OK;
    if (!m || !path) return sv__fail(SV_ERR_ARG, "sv_hf_save: NULL argument");
    jl = sv_hf_config_json(&m->cfg, json, sizeof json);
    if (!jl || jl >= sizeof json) return sv__fail(SV_ERR_NOMEM, "sv_hf_save: config.json too long");
    if (config_json_path && sv__file_exists(config_json_path)) {
        /* another model's config.json is never overwritten */
        unsigned char *old;
        size_t ol;
        if ((rc = sv__read_file(config_json_path, &old, &ol)) != SV_OK) return rc;
        rc = ol == jl && memcmp(old, json, jl) == 0 ? SV_OK
             : sv__fail(SV_ERR_STATE, "%s exists and describes another model; write the export into another folder", config_json_path);
        SV_FREE(old);
        if (rc != SV_OK) return rc;
    }
    cl = sv_config_format(&m->cfg, NULL, 0);
    e = SV__CAST(sv__hf_entry *, sv__calloc(cap, sizeof *e, "HF name map"));
    t = SV__CAST(sv_st_tensor *, sv__calloc(cap, sizeof *t, "HF export"));
    own = SV__CAST(float **, sv__calloc(cap, sizeof *own, "HF export"));
    cfgtext = SV__CAST(char *, sv__alloc(cl + 1, "config text"));
    if (!e || !t || !own || !cfgtext) { rc = SV_ERR_NOMEM; goto done; }
    sv_config_format(&m->cfg, cfgtext, cl + 1);
    n = sv__hf_map(m, e);
    for (i = 0; i < n; i++) {
        const sv__hf_entry *x = &e[i];
        char *name = SV__CAST(char *, sv__alloc(strlen(x->name) + 10, "tensor name"));
        if (!name) { rc = SV_ERR_NOMEM; goto done; }
        snprintf(name, strlen(x->name) + 10, "%s%s", (x->flags & SV__HF_PREFIXED) ? SV__HF_PREFIX : "", x->name);
        t[i].name = name;
        t[i].ndim = x->ndim;
        memcpy(t[i].shape, x->shape, sizeof x->shape);
        t[i].data = x->t->data;
        if (x->how == SV__HF_CONV) {                /* ours [O,K,C] -> file [O,C,K] */
            size_t O = x->t->shape[0], K = x->t->shape[1], C = x->t->shape[2], o, k, c;
            own[i] = SV__CAST(float *, sv__alloc(x->t->n * sizeof(float), "HF export"));
            if (!own[i]) { rc = SV_ERR_NOMEM; goto done; }
            for (o = 0; o < O; o++)
                for (k = 0; k < K; k++)
                    for (c = 0; c < C; c++) own[i][(o * C + c) * K + k] = x->t->data[(o * K + k) * C + c];
            t[i].data = own[i];
        }
    }
    meta[0] = "format"; meta[1] = "pt";
    meta[2] = "ssl_vgs_config"; meta[3] = cfgtext;
    n_meta = 2;
    if (m->cls) {
        meta[4] = "ssl_vgs_note";
        meta[5] = "trained with a CLS token (FaST-VGS+), stored as ssl_vgs.cls_token: Hugging Face and torchaudio models have no "
                  "place for it, so their hidden states differ from this library's for this model";
        n_meta = 3;
    }
    if ((rc = sv_safetensors_write(path, t, n, meta, n_meta)) != SV_OK) goto done;
    if (config_json_path) {
        FILE *f = sv__atomic_begin(config_json_path, &tmp);
        if (!f) { rc = sv_last_status(); goto done; }
        rc = sv__atomic_end(f, tmp, config_json_path, fwrite(json, 1, jl, f) == jl);
    }
done:
    if (t) for (i = 0; i < cap; i++) { SV_FREE(t[i].name); SV_FREE(own[i]); }
    SV_FREE(e); SV_FREE(t); SV_FREE(own); SV_FREE(cfgtext);
    return rc;
}

/* ---- the pretraining head in eval mode, for feature extraction */
SV_DEF int sv_w2v2_codes(sv_model *m, sv_ctx *c, const float *cnn_out, size_t T, int *codes, float *q)
{
    const sv_config *cfg = &m->cfg;
    size_t C = cfg->conv_dim[cfg->n_conv - 1], G = cfg->q_groups, V = cfg->q_vars, sh[2], t, g, v;
    int grad = sv_ctx_grad(c), tr = sv_ctx_training(c), rc = SV_OK;
    const float *onehot = NULL;
    sv_tensor *x, *qt;
    if (!cnn_out || !T) return sv__fail(SV_ERR_ARG, "sv_w2v2_codes: no frames");
    sv_ctx_reset(c);
    sv_ctx_set_grad(c, 0);
    sv_ctx_set_training(c, 0);
    sh[0] = T; sh[1] = C;
    x = sv_tensor_from(c, cnn_out, 2, sh);
    /* the quantizer reads the layer-normed CNN output (before the projection to D) */
    qt = x ? sv_w2v2_quantize(m, c, sv_layer_norm(c, x, m->feat_ln_g, m->feat_ln_b, 1e-5f), 1.0f, &onehot) : NULL;
    if (!qt || !onehot) rc = sv_last_status() ? sv_last_status() : SV_ERR_NOMEM;
    else {
        for (t = 0; codes && t < T; t++)
            for (g = 0; g < G; g++)
                for (v = 0; v < V; v++)
                    if (onehot[(t * G + g) * V + v] != 0.0f) { codes[t * G + g] = (int)v; break; }
        if (q) memcpy(q, qt->data, T * cfg->final_dim * sizeof(float));
    }
    sv_ctx_reset(c);
    sv_ctx_set_grad(c, grad);
    sv_ctx_set_training(c, tr);
    return rc;
}

SV_DEF int sv_w2v2_predict(const sv_model *m, const float *hidden, size_t T, float *out)
{
    const sv_config *c = &m->cfg;
    size_t t;
    if (!hidden || !out || !T) return sv__fail(SV_ERR_ARG, "sv_w2v2_predict: no frames");
    for (t = 0; t < T; t++) memcpy(out + t * c->final_dim, m->final_b->data, c->final_dim * sizeof(float));
    sv_gemm(0, 1, T, c->final_dim, c->D, 1.0f, hidden, c->D, m->final_w->data, c->D, 1.0f, out, c->final_dim);
    return SV_OK;
}

/* ---------------------------------------------------------------- 11.0 small shared helpers */
#ifndef SV__PI
#define SV__PI 3.14159265358979323846
#endif

/* Grow *p (elements of size elem) so that it holds at least need elements; doubles the capacity. */
static int sv__met_grow(void **p, size_t *cap, size_t need, size_t elem, const char *what)
{
    size_t nc, bytes;
    void *q;
    if (need <= *cap) return SV_OK;
    nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) { nc = need; break; }
        nc *= 2;
    }
    if (!sv__mul_ok(nc, elem, &bytes)) return sv__fail(SV_ERR_NOMEM, "size overflow growing %s", what);
    q = sv__alloc(bytes, what);
    if (!q) return SV_ERR_NOMEM;
    if (*p && *cap) memcpy(q, *p, *cap * elem);
    SV_FREE(*p);
    *p = q;
    *cap = nc;
    return SV_OK;
}

static int sv__met_tid(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* ---------------------------------------------------------------- 11.1 retrieval recall@k */

/* Pessimistic ranking key: NaN competitors rank above everything, a NaN true score below. */
static double sv__rk_score(float s, int is_true)
{
    if (s != s) return is_true ? -HUGE_VAL : HUGE_VAL;
    return (double)s;
}

/* 1 when entry 1 is ranked before entry 2: higher score first; on equal scores the competitor
   before the true item (pessimistic); then the lower index, which makes the order total. */
static int sv__rk_before(double s1, int t1, size_t i1, double s2, int t2, size_t i2)
{
    if (s1 != s2) return s1 > s2;
    if (t1 != t2) return !t1;
    return i1 < i2;
}

static int sv__recall_check(const float *S, size_t n_images, size_t n_captions,
                            const size_t *caption_image)
{
    size_t j;
    if (!S || !caption_image || n_images == 0 || n_captions == 0)
        return sv__fail(SV_ERR_ARG, "recall: empty score matrix or NULL argument");
    for (j = 0; j < n_captions; j++)
        if (caption_image[j] >= n_images)
            return sv__fail(SV_ERR_ARG, "recall: caption %zu belongs to image %zu of %zu",
                            j, caption_image[j], n_images);
    return SV_OK;
}

/* For each image the number of competitor captions ranked above its best caption (SIZE_MAX for
   an image without captions), and for each caption the number of images above its own. */
static int sv__recall_ranks(const float *S, size_t n_images, size_t n_captions,
                            const size_t *caption_image, size_t *img_above, size_t *cap_above)
{
    ptrdiff_t ii, jj;
    SV__OMP(parallel for schedule(static) num_threads(sv_get_threads()))
    for (ii = 0; ii < (ptrdiff_t)n_images; ii++) {
        size_t i = (size_t)ii, j, above = 0;
        const float *row = S + i * n_captions;
        double best = -HUGE_VAL;
        int any = 0;
        for (j = 0; j < n_captions; j++)
            if (caption_image[j] == i) {
                double s = sv__rk_score(row[j], 1);
                if (!any || s > best) best = s;
                any = 1;
            }
        if (!any) { img_above[i] = SIZE_MAX; continue; }
        for (j = 0; j < n_captions; j++)
            if (caption_image[j] != i && !(sv__rk_score(row[j], 0) < best)) above++;
        img_above[i] = above;
    }
    SV__OMP(parallel for schedule(static) num_threads(sv_get_threads()))
    for (jj = 0; jj < (ptrdiff_t)n_captions; jj++) {
        size_t j = (size_t)jj, i, t = caption_image[j], above = 0;
        double st = sv__rk_score(S[t * n_captions + j], 1);
        for (i = 0; i < n_images; i++)
            if (i != t && !(sv__rk_score(S[i * n_captions + j], 0) < st)) above++;
        cap_above[j] = above;
    }
    return SV_OK;
}

static void sv__recall_from_ranks(const size_t *img_above, size_t n_images, const size_t *cap_above,
                                  size_t n_captions, size_t k, double *i2s, double *s2i,
                                  size_t *n_scored)
{
    size_t i, j, hits = 0, n = 0;
    for (i = 0; i < n_images; i++) {
        if (img_above[i] == SIZE_MAX) continue;
        n++;
        hits += img_above[i] < k;
    }
    if (i2s) *i2s = n ? 100.0 * (double)hits / (double)n : 0.0;
    if (n_scored) *n_scored = n;
    hits = 0;
    for (j = 0; j < n_captions; j++) hits += cap_above[j] < k;
    if (s2i) *s2i = 100.0 * (double)hits / (double)n_captions;
}

static int sv__recall_full(const float *S, size_t n_images, size_t n_captions,
                           const size_t *caption_image, const size_t *ks, size_t nk,
                           double *i2s, double *s2i, size_t *n_scored)
{
    size_t *img_above, *cap_above, q;
    int rc = sv__recall_check(S, n_images, n_captions, caption_image);
    if (rc) return rc;
    img_above = SV__CAST(size_t *, sv__calloc(n_images, sizeof(size_t), "recall ranks"));
    cap_above = SV__CAST(size_t *, sv__calloc(n_captions, sizeof(size_t), "recall ranks"));
    if (!img_above || !cap_above) { SV_FREE(img_above); SV_FREE(cap_above); return SV_ERR_NOMEM; }
    sv__recall_ranks(S, n_images, n_captions, caption_image, img_above, cap_above);
    for (q = 0; q < nk; q++)
        sv__recall_from_ranks(img_above, n_images, cap_above, n_captions, ks[q], &i2s[q], &s2i[q],
                              n_scored);
    SV_FREE(img_above);
    SV_FREE(cap_above);
    return SV_OK;
}

SV_DEF int sv_recall_compute(const float *S, size_t n_images, size_t n_captions,
                             const size_t *caption_image, sv_recall *out)
{
    static const size_t ks[3] = {1, 5, 10};
    double a[3], b[3];
    int rc;
    if (!out) return sv__fail(SV_ERR_ARG, "recall: NULL output");
    memset(out, 0, sizeof *out);
    rc = sv__recall_full(S, n_images, n_captions, caption_image, ks, 3, a, b, &out->n_images_scored);
    if (rc) return rc;
    out->i2s_r1 = a[0]; out->i2s_r5 = a[1]; out->i2s_r10 = a[2];
    out->s2i_r1 = b[0]; out->s2i_r5 = b[1]; out->s2i_r10 = b[2];
    out->n_captions = n_captions;
    return SV_OK;
}

SV_DEF int sv_recall_at(const float *S, size_t n_images, size_t n_captions,
                        const size_t *caption_image, size_t k, double *i2s, double *s2i)
{
    double a, b;
    int rc;
    if (k == 0) return sv__fail(SV_ERR_ARG, "recall: k must be >= 1");
    rc = sv__recall_full(S, n_images, n_captions, caption_image, &k, 1, &a, &b, NULL);
    if (rc) return rc;
    if (i2s) *i2s = a;
    if (s2i) *s2i = b;
    return SV_OK;
}

/* A top-kmax list: entries sorted in ranking order, scores already passed through sv__rk_score. */
struct sv_recall_acc {
    size_t n_images, n_captions, kmax;
    size_t *cap_img;                 /* [n_captions] */
    size_t *img_ncap;                /* [n_images] captions per image */
    double *img_s; size_t *img_j;    /* [n_images, kmax] best captions of each image */
    double *cap_s; size_t *cap_i;    /* [n_captions, kmax] best images of each caption */
    size_t *img_len, *cap_len;       /* filled length of each list */
    double cells;                    /* cells fed so far (double: 5k x 25k overflows nothing) */
};

SV_DEF void sv_recall_acc_free(sv_recall_acc *a)
{
    if (!a) return;
    SV_FREE(a->cap_img); SV_FREE(a->img_ncap);
    SV_FREE(a->img_s); SV_FREE(a->img_j); SV_FREE(a->cap_s); SV_FREE(a->cap_i);
    SV_FREE(a->img_len); SV_FREE(a->cap_len);
    SV_FREE(a);
}

SV_DEF sv_recall_acc *sv_recall_acc_init(size_t n_images, size_t n_captions,
                                         const size_t *caption_image, size_t kmax)
{
    sv_recall_acc *a;
    size_t ni, nc, j;
    if (!caption_image || n_images == 0 || n_captions == 0) {
        sv__fail(SV_ERR_ARG, "recall: empty score matrix or NULL caption_image");
        return NULL;
    }
    for (j = 0; j < n_captions; j++)
        if (caption_image[j] >= n_images) {
            sv__fail(SV_ERR_ARG, "recall: caption %zu belongs to image %zu of %zu", j,
                     caption_image[j], n_images);
            return NULL;
        }
    if (kmax < 10) kmax = 10;
    if (!sv__mul_ok(n_images, kmax, &ni) || !sv__mul_ok(n_captions, kmax, &nc)) {
        sv__fail(SV_ERR_NOMEM, "recall: kmax %zu too large", kmax);
        return NULL;
    }
    a = SV__CAST(sv_recall_acc *, sv__calloc(1, sizeof *a, "recall accumulator"));
    if (!a) return NULL;
    a->n_images = n_images; a->n_captions = n_captions; a->kmax = kmax;
    a->cap_img = SV__CAST(size_t *, sv__calloc(n_captions, sizeof(size_t), "recall"));
    a->img_ncap = SV__CAST(size_t *, sv__calloc(n_images, sizeof(size_t), "recall"));
    a->img_s = SV__CAST(double *, sv__calloc(ni, sizeof(double), "recall lists"));
    a->img_j = SV__CAST(size_t *, sv__calloc(ni, sizeof(size_t), "recall lists"));
    a->cap_s = SV__CAST(double *, sv__calloc(nc, sizeof(double), "recall lists"));
    a->cap_i = SV__CAST(size_t *, sv__calloc(nc, sizeof(size_t), "recall lists"));
    a->img_len = SV__CAST(size_t *, sv__calloc(n_images, sizeof(size_t), "recall"));
    a->cap_len = SV__CAST(size_t *, sv__calloc(n_captions, sizeof(size_t), "recall"));
    if (!a->cap_img || !a->img_ncap || !a->img_s || !a->img_j || !a->cap_s || !a->cap_i ||
        !a->img_len || !a->cap_len) {
        sv_recall_acc_free(a);
        return NULL;
    }
    memcpy(a->cap_img, caption_image, n_captions * sizeof(size_t));
    for (j = 0; j < n_captions; j++) a->img_ncap[caption_image[j]]++;
    return a;
}

/* Insert (s, idx) into a list of at most kmax entries kept in ranking order; t tells whether
   idx is a true match of the list's owner (owner and is_true are what the order needs). */
static void sv__topk_insert(double *ls, size_t *li, size_t *len, size_t kmax, double s, int t,
                            size_t idx, size_t owner, const size_t *cap_img, int img_list)
{
    size_t p = *len;
#define SV__TRUE_AT(q) (img_list ? cap_img[li[q]] == owner : cap_img[owner] == li[q])
    if (p == kmax) {
        if (!sv__rk_before(s, t, idx, ls[p - 1], SV__TRUE_AT(p - 1), li[p - 1])) return;
        p--;
    } else {
        (*len)++;
    }
    while (p > 0 && sv__rk_before(s, t, idx, ls[p - 1], SV__TRUE_AT(p - 1), li[p - 1])) {
        ls[p] = ls[p - 1];
        li[p] = li[p - 1];
        p--;
    }
#undef SV__TRUE_AT
    ls[p] = s;
    li[p] = idx;
}

SV_DEF int sv_recall_acc_block(sv_recall_acc *a, size_t img0, size_t n_img, size_t cap0,
                               size_t n_cap, const float *block)
{
    ptrdiff_t ii, jj;
    size_t k;
    if (!a || (!block && n_img && n_cap))
        return sv__fail(SV_ERR_ARG, "recall: NULL accumulator or block");
    if (img0 > a->n_images || n_img > a->n_images - img0 || cap0 > a->n_captions ||
        n_cap > a->n_captions - cap0)
        return sv__fail(SV_ERR_ARG, "recall: block [%zu+%zu, %zu+%zu] outside the %zu x %zu matrix",
                        img0, n_img, cap0, n_cap, a->n_images, a->n_captions);
    k = a->kmax;
    /* Each list is touched by one thread only, and the top-k set under a total order does not
       depend on the insertion order: identical for any thread count and block layout. */
    SV__OMP(parallel for schedule(static) num_threads(sv_get_threads()))
    for (ii = 0; ii < (ptrdiff_t)n_img; ii++) {
        size_t i = img0 + (size_t)ii, j;
        const float *row = block + (size_t)ii * n_cap;
        for (j = 0; j < n_cap; j++) {
            size_t c = cap0 + j;
            int t = a->cap_img[c] == i;
            sv__topk_insert(a->img_s + i * k, a->img_j + i * k, &a->img_len[i], k,
                            sv__rk_score(row[j], t), t, c, i, a->cap_img, 1);
        }
    }
    SV__OMP(parallel for schedule(static) num_threads(sv_get_threads()))
    for (jj = 0; jj < (ptrdiff_t)n_cap; jj++) {
        size_t c = cap0 + (size_t)jj, i;
        for (i = 0; i < n_img; i++) {
            size_t im = img0 + i;
            int t = a->cap_img[c] == im;
            sv__topk_insert(a->cap_s + c * k, a->cap_i + c * k, &a->cap_len[c], k,
                            sv__rk_score(block[i * n_cap + (size_t)jj], t), t, im, c, a->cap_img, 0);
        }
    }
    a->cells += (double)n_img * (double)n_cap;
    return SV_OK;
}

SV_DEF int sv_recall_acc_at(const sv_recall_acc *a, size_t k, double *i2s, double *s2i)
{
    size_t i, j, p, hits = 0, n = 0;
    if (!a) return sv__fail(SV_ERR_ARG, "recall: NULL accumulator");
    if (k == 0 || k > a->kmax)
        return sv__fail(SV_ERR_ARG, "recall: k = %zu outside 1..kmax = %zu", k, a->kmax);
    if (a->cells != (double)a->n_images * (double)a->n_captions)
        return sv__fail(SV_ERR_STATE, "recall: %.0f cells fed, the matrix has %zu x %zu",
                        a->cells, a->n_images, a->n_captions);
    for (i = 0; i < a->n_images; i++) {
        if (!a->img_ncap[i]) continue;
        n++;
        for (p = 0; p < a->img_len[i] && p < k; p++)
            if (a->cap_img[a->img_j[i * a->kmax + p]] == i) { hits++; break; }
    }
    if (i2s) *i2s = n ? 100.0 * (double)hits / (double)n : 0.0;
    hits = 0;
    for (j = 0; j < a->n_captions; j++)
        for (p = 0; p < a->cap_len[j] && p < k; p++)
            if (a->cap_i[j * a->kmax + p] == a->cap_img[j]) { hits++; break; }
    if (s2i) *s2i = 100.0 * (double)hits / (double)a->n_captions;
    return SV_OK;
}

SV_DEF int sv_recall_acc_ranks(const sv_recall_acc *a, size_t *i2s_rank, size_t *s2i_rank)
{
    size_t i, j, p;
    if (!a) return sv__fail(SV_ERR_ARG, "recall: NULL accumulator");
    if (a->cells != (double)a->n_images * (double)a->n_captions)
        return sv__fail(SV_ERR_STATE, "recall: %.0f cells fed, the matrix has %zu x %zu",
                        a->cells, a->n_images, a->n_captions);
    /* the same scan as sv_recall_acc_at: the first position p whose entry is a hit */
    if (i2s_rank)
        for (i = 0; i < a->n_images; i++) {
            i2s_rank[i] = a->img_ncap[i] ? a->kmax + 1 : 0;
            for (p = 0; a->img_ncap[i] && p < a->img_len[i]; p++)
                if (a->cap_img[a->img_j[i * a->kmax + p]] == i) { i2s_rank[i] = p + 1; break; }
        }
    if (s2i_rank)
        for (j = 0; j < a->n_captions; j++) {
            s2i_rank[j] = a->kmax + 1;
            for (p = 0; p < a->cap_len[j]; p++)
                if (a->cap_i[j * a->kmax + p] == a->cap_img[j]) { s2i_rank[j] = p + 1; break; }
        }
    return SV_OK;
}

SV_DEF int sv_recall_acc_result(const sv_recall_acc *a, sv_recall *out)
{
    size_t i;
    int rc;
    if (!out) return sv__fail(SV_ERR_ARG, "recall: NULL output");
    memset(out, 0, sizeof *out);
    if ((rc = sv_recall_acc_at(a, 1, &out->i2s_r1, &out->s2i_r1)) != SV_OK) return rc;
    sv_recall_acc_at(a, 5, &out->i2s_r5, &out->s2i_r5);
    sv_recall_acc_at(a, 10, &out->i2s_r10, &out->s2i_r10);
    for (i = 0; i < a->n_images; i++) out->n_images_scored += a->img_ncap[i] > 0;
    out->n_captions = a->n_captions;
    return SV_OK;
}

/* ---------------------------------------------------------------- 11.2 ABX */

SV_DEF sv_abx_opts sv_abx_default_opts(void)
{
    sv_abx_opts o;
    memset(&o, 0, sizeof o);
    o.sample = 1;
    o.max_group = 10;
    o.max_x_speakers = 5;
    o.seed = 0;
    o.within = 1;
    o.across = 1;
    return o;
}

/* Cumulative DTW cost into C [n, m]. */
static void sv__dtw_cost(const double *d, size_t n, size_t m, double *C)
{
    size_t i, j;
    C[0] = d[0];
    for (j = 1; j < m; j++) C[j] = d[j] + C[j - 1];
    for (i = 1; i < n; i++) {
        const double *di = d + i * m;
        double *ci = C + i * m, *cu = C + (i - 1) * m;
        ci[0] = di[0] + cu[0];
        for (j = 1; j < m; j++) {
            double b = cu[j] < cu[j - 1] ? cu[j] : cu[j - 1];
            if (ci[j - 1] < b) b = ci[j - 1];
            ci[j] = di[j] + b;
        }
    }
}

/* Length of the greedy traceback through C [n, m] (dtw.pyx of libri-light): diagonal when it is
   <= both neighbours, then the preferred neighbour when <= the other. prefer_up = 0 is the
   reference order ((i, j-1) before (i-1, j)); prefer_up = 1 walks the transposed problem (rows
   and columns swapped) on the same matrix, since C^T is exactly the cost matrix of the swapped
   pair (same operands, same min). */
static size_t sv__dtw_pathlen(const double *C, size_t n, size_t m, int prefer_up)
{
    size_t i = n - 1, j = m - 1, len = 1;
    while (i > 0 && j > 0) {
        double up = C[(i - 1) * m + j], left = C[i * m + j - 1], diag = C[(i - 1) * m + j - 1];
        if (diag <= left && diag <= up) { i--; j--; }
        else if (!prefer_up) { if (left <= up) j--; else i--; }
        else { if (up <= left) i--; else j--; }
        len++;
    }
    return len + i + j; /* one of i, j is 0: the rest is a straight run to (0, 0) */
}

SV_DEF double sv_dtw(const double *dist, size_t n, size_t m, double *work, double *min_cost,
                     size_t *path_len)
{
    size_t len;
    if (!dist || !work || n == 0 || m == 0) {
        sv__fail(SV_ERR_ARG, "dtw: empty or NULL input");
        return NAN;
    }
    sv__dtw_cost(dist, n, m, work);
    len = sv__dtw_pathlen(work, n, m, 0);
    if (min_cost) *min_cost = work[n * m - 1];
    if (path_len) *path_len = len;
    return work[n * m - 1] / (double)len;
}

/* Dot product with 8 independent partial sums: lets the compiler vectorise without fast-math
   (the summation order is fixed, so results are reproducible). */
static float sv__dotf(const float *SV__RESTRICT a, const float *SV__RESTRICT b, size_t n)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t k = 0, u;
    for (; k + 8 <= n; k += 8)
        for (u = 0; u < 8; u++) acc[u] += a[k + u] * b[k + u];
    for (; k < n; k++) acc[k & 7] += a[k] * b[k];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* Angular frame distance with the ZeroSpeech 2021 zero-vector rules; inv = 1/|frame|, 0 for an
   all-zero frame. The reference normalises the frames first; scaling the dot product by the
   precomputed inverse norms is the same quantity without copying the features. */
static double sv__angdist(const float *a, const float *b, size_t dim, double ia, double ib)
{
    double c;
    if (ia == 0.0 || ib == 0.0) return (ia == 0.0 && ib == 0.0) ? 0.0 : 1.0;
    c = (double)sv__dotf(a, b, dim) * ia * ib;
    if (c > 1.0) c = 1.0;
    if (c < -1.0) c = -1.0;
    return acos(c) / SV__PI;
}

static double sv__inv_norm(const float *f, size_t dim)
{
    double s = 0;
    size_t k;
    for (k = 0; k < dim; k++) s += (double)f[k] * (double)f[k];
    if (!(s <= DBL_MAX)) return -1.0; /* NaN or inf in the features */
    return s > 0 ? 1.0 / sqrt(s) : 0.0;
}

/* Frame distances of x [nx] vs a [na] into d, then DTW; both orientations share the cost. */
static void sv__abx_pair(const float *x, const double *ix, size_t nx, const float *a,
                         const double *ia, size_t na, size_t dim, double *d, double *C,
                         double *d_rows_x, double *d_rows_a)
{
    size_t p, q, lx, la;
    for (p = 0; p < nx; p++)
        for (q = 0; q < na; q++)
            d[p * na + q] = sv__angdist(x + p * dim, a + q * dim, dim, ix[p], ia[q]);
    sv__dtw_cost(d, nx, na, C);
    lx = sv__dtw_pathlen(C, nx, na, 0);
    la = sv__dtw_pathlen(C, nx, na, 1);
    *d_rows_x = C[nx * na - 1] / (double)lx;
    *d_rows_a = C[nx * na - 1] / (double)la;
}

SV_DEF double sv_abx_distance(const float *x, size_t nx, const float *a, size_t na, size_t dim)
{
    double *buf, *ix, *ia, r, r2;
    size_t p, nm;
    if (!x || !a || !nx || !na || !dim || !sv__mul_ok(nx, na, &nm) || nm > SIZE_MAX / 32) {
        sv__fail(SV_ERR_ARG, "abx distance: empty or NULL token");
        return NAN;
    }
    buf = SV__CAST(double *, sv__alloc((2 * nm + nx + na) * sizeof(double), "abx distance"));
    if (!buf) return NAN;
    ix = buf + 2 * nm;
    ia = ix + nx;
    for (p = 0; p < nx; p++) ix[p] = sv__inv_norm(x + p * dim, dim);
    for (p = 0; p < na; p++) ia[p] = sv__inv_norm(a + p * dim, dim);
    for (p = 0; p < nx + na; p++)
        if (ix[p] < 0) { SV_FREE(buf); sv__fail(SV_ERR_NUMERIC, "abx distance: non-finite frame"); return NAN; }
    sv__abx_pair(x, ix, nx, a, ia, na, dim, buf, buf + nm, &r, &r2);
    SV_FREE(buf);
    return r;
}

/* ABX implementation notes, where this code and the reference (libri-light / zerospeech2021
   eval_ABX.py, abx_iterators.py, abx_group_computation.py, dtw.pyx) differ, the protocol as
   documented at section 11.2 being followed:
   - Frames are not copied and normalised; the dot product is scaled by precomputed inverse
     norms and zero frames follow the protocol's rule directly (the reference appends a 1e-12 / -2e12
     coordinate to get the same distances 0 and 1).
   - Frame distances and DTW costs are accumulated in double (the reference: float32), so exact
     ties between d(A,X) and d(B,X) can differ in the last bits.
   - Within speaker, the reference computes d(X_k, A_i) for k < i only and mirrors it
     (dtw_batch's `symetric`); here each ordered pair gets its own traceback with rows = X. The
     summed cost is the same; only the greedy path length can differ, and only on exact ties of
     cumulative costs.
   - The reference's ABX() Python default is max_size_group = 30 while its command line uses 10;
     we default to 10. Its sampling is unseeded (random.sample); ours is a
     seeded stream consumed in enumeration order, so a seed reproduces a result exactly.
   - Every needed token pair's DTW is computed once per batch of contexts and shared by all the
     cells that use it, instead of once per (cell, triple) as in the reference. */

/* A valid token: a view into the caller's features plus its precomputed inverse frame norms. */
typedef struct sv__abx_tok {
    const float *f;      /* first frame */
    size_t inv;          /* offset of its inverse norms in the norm buffer */
    size_t len;          /* frames */
    int prev, next, spk, phone;
    size_t item;         /* index in the item set: the final tie-break of the sort */
} sv__abx_tok;

/* One cell of the average: (context, speaker, a, b) within, plus the X speaker across. Its
   distances are read from two lists of pair references made while the cell was enumerated:
   dax [nx, na] = d(A_i, X_k) and dbx [nx, nb] = d(B_j, X_k). For within cells X is A, and the
   diagonal of dax (X == A) is never read. */
typedef struct sv__abx_cell {
    int kind;                   /* 0 within, 1 across */
    int a, b, spk;
    size_t na, nb, nx;
    size_t dax, dbx;            /* offsets in the batch's reference list */
    size_t ctx;                 /* the context's ordinal (the bootstrap's cluster) */
    double err;
} sv__abx_cell;

/* A pair reference: the pair's index, with the top bit set when X is the pair's `hi` token. */
#define SV__ABX_HI 0x80000000u

/* Running sums of cell errors per (kind, a, b, speaker), keyed by sv__abx_key. Cells are added
   in enumeration order, which is sequential, so the sums do not depend on the threads. */
typedef struct sv__abx_acc { uint64_t key; double sum; size_t n; } sv__abx_acc;

/* A scored cell kept for the bootstrap: its reduction key, context and error. */
typedef struct sv__abx_kept { uint64_t key; size_t ctx; double err; } sv__abx_kept;

/* Work state of one sv_abx call. Token pairs needed by the batch's cells are deduplicated in an
   open-addressing hash on the unordered pair (lo << 32 | hi); each pair stores d with rows = lo
   and with rows = hi (one cost matrix, two tracebacks). */
typedef struct sv__abx_work {
    const sv__abx_tok *tok;
    const double *invn;
    size_t dim;
    uint64_t *hkeys; uint32_t *hval; size_t hcap;    /* pair hash: key -> pair index */
    uint32_t *plo, *phi; double *prow_lo, *prow_hi;  /* pairs of the batch */
    size_t np, pcap;
    uint32_t *ref; size_t nref, refcap;              /* pair references of the cells */
    uint32_t *sa, *sb, *sx; size_t scap;             /* the token lists of the cell being built */
    sv__abx_cell *cells; size_t ncells, cellcap;     /* cells of the batch */
    sv__abx_acc *acc; size_t acap, nacc;             /* hash of per-(kind, a, b, speaker) sums */
    sv__abx_kept *kept; size_t nkept, keptcap;       /* every cell, when bootstrapping */
    size_t ctx;                                      /* ordinal of the context being enumerated */
    int keep;
    size_t maxlist, maxlen;                          /* longest list in the batch, longest token */
    double triples[2], cells_done[2], n_dtw;
    sv_rng rng;
    int sample;
    size_t max_group;
} sv__abx_work;

static uint64_t sv__abx_hash(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t sv__abx_find(const sv__abx_work *w, uint64_t key)
{
    size_t h = (size_t)sv__abx_hash(key) & (w->hcap - 1);
    while (w->hkeys[h] != key && w->hkeys[h] != UINT64_MAX) h = (h + 1) & (w->hcap - 1);
    return h;
}

static int sv__abx_rehash(sv__abx_work *w, size_t ncap)
{
    uint64_t *ok = w->hkeys;
    uint32_t *ov = w->hval;
    size_t oc = w->hcap, i;
    w->hkeys = SV__CAST(uint64_t *, sv__alloc(ncap * sizeof(uint64_t), "abx pair hash"));
    w->hval = SV__CAST(uint32_t *, sv__alloc(ncap * sizeof(uint32_t), "abx pair hash"));
    if (!w->hkeys || !w->hval) {
        SV_FREE(w->hkeys); SV_FREE(w->hval);
        w->hkeys = ok; w->hval = ov;
        return SV_ERR_NOMEM;
    }
    memset(w->hkeys, 0xff, ncap * sizeof(uint64_t));
    w->hcap = ncap;
    for (i = 0; i < oc; i++)
        if (ok[i] != UINT64_MAX) {
            size_t h = sv__abx_find(w, ok[i]);
            w->hkeys[h] = ok[i];
            w->hval[h] = ov[i];
        }
    SV_FREE(ok);
    SV_FREE(ov);
    return SV_OK;
}

/* Register the pair (x, y) and append the reference that reads d(rows = x, cols = y). */
static int sv__abx_need(sv__abx_work *w, uint32_t x, uint32_t y)
{
    uint32_t lo = x < y ? x : y, hi = x < y ? y : x;
    uint64_t key = ((uint64_t)lo << 32) | hi;
    size_t h;
    int rc;
    if (2 * (w->np + 1) > w->hcap && (rc = sv__abx_rehash(w, w->hcap ? 2 * w->hcap : 4096)))
        return rc;
    h = sv__abx_find(w, key);
    if (w->hkeys[h] != key) {
        if (w->np >= w->pcap) {
            size_t c = w->pcap, c2 = w->pcap, c3 = w->pcap, c4 = w->pcap;
            if ((rc = sv__met_grow((void **)&w->plo, &c, w->np + 1, sizeof(uint32_t), "abx pairs")) ||
                (rc = sv__met_grow((void **)&w->phi, &c2, w->np + 1, sizeof(uint32_t), "abx pairs")) ||
                (rc = sv__met_grow((void **)&w->prow_lo, &c3, w->np + 1, sizeof(double), "abx pairs")) ||
                (rc = sv__met_grow((void **)&w->prow_hi, &c4, w->np + 1, sizeof(double), "abx pairs")))
                return rc;
            w->pcap = c;
        }
        w->hkeys[h] = key;
        w->hval[h] = (uint32_t)w->np;
        w->plo[w->np] = lo;
        w->phi[w->np] = hi;
        w->np++;
    }
    w->ref[w->nref++] = w->hval[h] | (x == lo ? 0u : SV__ABX_HI);
    return SV_OK;
}

static double sv__abx_d(const sv__abx_work *w, uint32_t r)
{
    return (r & SV__ABX_HI) ? w->prow_hi[r & ~SV__ABX_HI] : w->prow_lo[r];
}

/* Token list of the sorted group [b, e) into dst; when sampling keep a uniform subset of
   max_group (partial Fisher-Yates, as Python's random.sample). Returns the list length. */
static size_t sv__abx_take(sv__abx_work *w, size_t b, size_t e, uint32_t *dst)
{
    size_t n = e - b, k = n, i;
    for (i = 0; i < n; i++) dst[i] = (uint32_t)(b + i);
    if (w->sample && n > w->max_group) {
        k = w->max_group;
        for (i = 0; i < k; i++) {
            size_t j = i + sv_rng_below(&w->rng, n - i);
            uint32_t t = dst[i]; dst[i] = dst[j]; dst[j] = t;
        }
    }
    if (k > w->maxlist) w->maxlist = k;
    return k;
}

/* Append a cell whose token lists are in w->sa, sb, sx (sx == sa for within) and register
   its pairs. */
static int sv__abx_add_cell(sv__abx_work *w, int kind, int a, int b, int spk, size_t na,
                            size_t nb, size_t nx)
{
    sv__abx_cell c;
    const uint32_t *X = kind == 0 ? w->sa : w->sx;
    size_t k, i, nr = nx * (na + nb);
    int rc;
    if ((rc = sv__met_grow((void **)&w->cells, &w->cellcap, w->ncells + 1, sizeof c, "abx cells")) ||
        (rc = sv__met_grow((void **)&w->ref, &w->refcap, w->nref + nr, sizeof(uint32_t), "abx refs")))
        return rc;
    c.kind = kind; c.a = a; c.b = b; c.spk = spk;
    c.na = na; c.nb = nb; c.nx = nx; c.err = 0; c.ctx = w->ctx;
    c.dax = w->nref;
    for (k = 0; k < nx; k++)
        for (i = 0; i < na; i++) {
            if (kind == 0 && i == k) { w->ref[w->nref++] = 0; continue; } /* placeholder */
            if ((rc = sv__abx_need(w, X[k], w->sa[i]))) return rc;
        }
    c.dbx = w->nref;
    for (k = 0; k < nx; k++)
        for (i = 0; i < nb; i++)
            if ((rc = sv__abx_need(w, X[k], w->sb[i]))) return rc;
    w->cells[w->ncells++] = c;
    return SV_OK;
}

/* A (speaker, phone) group inside one context: sorted tokens [b, e). */
typedef struct sv__abx_grp { size_t b, e; int spk, phone; } sv__abx_grp;

/* Enumerate the cells of one context (groups g [ng], sorted by speaker then phone), in the
   reference's loop order: speaker, phone a, (X speaker,) phone b. */
static int sv__abx_context(sv__abx_work *w, const sv__abx_grp *g, size_t ng, const sv_abx_opts *o,
                           size_t **xs, size_t *xcap)
{
    size_t s0, s1, ga, gb, k, na, nb, nx, big = 0;
    int rc;
    for (k = 0; k < ng; k++)
        if (g[k].e - g[k].b > big) big = g[k].e - g[k].b;
    if (big > w->scap) {
        size_t c1 = w->scap, c2 = w->scap;
        if ((rc = sv__met_grow((void **)&w->sa, &c1, big, sizeof(uint32_t), "abx lists")) ||
            (rc = sv__met_grow((void **)&w->sb, &c2, big, sizeof(uint32_t), "abx lists")) ||
            (rc = sv__met_grow((void **)&w->sx, &w->scap, big, sizeof(uint32_t), "abx lists")))
            return rc;
    }
    for (s0 = 0; s0 < ng; s0 = s1) {
        for (s1 = s0 + 1; s1 < ng && g[s1].spk == g[s0].spk; s1++) {}
        if (s1 - s0 < 2) continue; /* a speaker with one phone here forms no (a, b) pair */
        for (ga = s0; ga < s1; ga++) {
            if (o->within && g[ga].e - g[ga].b >= 2) {
                for (gb = s0; gb < s1; gb++) {
                    if (gb == ga) continue;
                    nb = sv__abx_take(w, g[gb].b, g[gb].e, w->sb);
                    na = sv__abx_take(w, g[ga].b, g[ga].e, w->sa);
                    if ((rc = sv__abx_add_cell(w, 0, g[ga].phone, g[gb].phone, g[ga].spk, na, nb, na)))
                        return rc;
                }
            }
            if (o->across) {
                size_t nsx = 0;
                for (k = 0; k < ng; k++)
                    if (g[k].phone == g[ga].phone && g[k].spk != g[ga].spk) {
                        if ((rc = sv__met_grow((void **)xs, xcap, nsx + 1, sizeof(size_t), "abx speakers")))
                            return rc;
                        (*xs)[nsx++] = k;
                    }
                if (w->sample && nsx > o->max_x_speakers) {
                    for (k = 0; k < o->max_x_speakers; k++) {
                        size_t r = k + sv_rng_below(&w->rng, nsx - k), t = (*xs)[k];
                        (*xs)[k] = (*xs)[r]; (*xs)[r] = t;
                    }
                    nsx = o->max_x_speakers;
                }
                for (k = 0; k < nsx; k++) {
                    size_t gx = (*xs)[k];
                    for (gb = s0; gb < s1; gb++) {
                        if (gb == ga) continue;
                        na = sv__abx_take(w, g[ga].b, g[ga].e, w->sa);
                        nb = sv__abx_take(w, g[gb].b, g[gb].e, w->sb);
                        nx = sv__abx_take(w, g[gx].b, g[gx].e, w->sx);
                        if ((rc = sv__abx_add_cell(w, 1, g[ga].phone, g[gb].phone, g[ga].spk, na, nb, nx)))
                            return rc;
                    }
                }
            }
        }
    }
    return SV_OK;
}

/* Reduction key: kind, a, b, speaker, in that significance, so sorting the keys groups the
   cells the way the averages need (sv_abx checks the field widths). */
static uint64_t sv__abx_key(int kind, int a, int b, int spk)
{
    return ((uint64_t)kind << 62) | ((uint64_t)a << 41) | ((uint64_t)b << 20) | (uint64_t)spk;
}

static int sv__abx_acc_add(sv__abx_work *w, uint64_t key, double err)
{
    size_t h, i;
    if (2 * (w->nacc + 1) > w->acap) {
        size_t nc = w->acap ? 2 * w->acap : 1024;
        sv__abx_acc *na = SV__CAST(sv__abx_acc *, sv__calloc(nc, sizeof *na, "abx sums")), *old = w->acc;
        if (!na) return SV_ERR_NOMEM;
        for (i = 0; i < nc; i++) na[i].key = UINT64_MAX;
        for (i = 0; i < w->acap; i++)
            if (old[i].key != UINT64_MAX) {
                h = (size_t)sv__abx_hash(old[i].key) & (nc - 1);
                while (na[h].key != UINT64_MAX) h = (h + 1) & (nc - 1);
                na[h] = old[i];
            }
        SV_FREE(old);
        w->acc = na;
        w->acap = nc;
    }
    h = (size_t)sv__abx_hash(key) & (w->acap - 1);
    while (w->acc[h].key != key && w->acc[h].key != UINT64_MAX) h = (h + 1) & (w->acap - 1);
    if (w->acc[h].key == UINT64_MAX) { w->acc[h].key = key; w->nacc++; }
    w->acc[h].sum += err;
    w->acc[h].n++;
    return SV_OK;
}

/* Compute the batch's DTWs, then its cells' errors (both loops write disjoint slots only), then
   add the errors to the sums sequentially in enumeration order. */
static int sv__abx_flush(sv__abx_work *w)
{
    int nt = sv_get_threads(), rc = SV_OK;
    size_t L = w->maxlen, per = 2 * L * L, nl = w->maxlist ? w->maxlist : 1, tot, i;
    double *scratch, *lists;
    ptrdiff_t q;
    if (!sv__mul_ok(per, (size_t)nt, &tot)) return sv__fail(SV_ERR_NOMEM, "abx: token too long");
    scratch = SV__CAST(double *, sv__alloc(tot * sizeof(double), "abx dtw scratch"));
    lists = SV__CAST(double *, sv__alloc(nl * (size_t)nt * sizeof(double), "abx scratch"));
    if (!scratch || !lists) { SV_FREE(scratch); SV_FREE(lists); return SV_ERR_NOMEM; }
    SV__OMP(parallel num_threads(nt))
    {
        /* per-thread scratch: frame distances and DTW cost of one pair, d(B_j, X) of one X */
        double *d = scratch + (size_t)sv__met_tid() * per, *C = d + L * L;
        double *dbx = lists + (size_t)sv__met_tid() * nl;
        SV__OMP(for schedule(dynamic, 32))
        for (q = 0; q < (ptrdiff_t)w->np; q++) {
            const sv__abx_tok *lo = &w->tok[w->plo[q]], *hi = &w->tok[w->phi[q]];
            sv__abx_pair(lo->f, w->invn + lo->inv, lo->len, hi->f, w->invn + hi->inv, hi->len,
                         w->dim, d, C, &w->prow_lo[q], &w->prow_hi[q]);
        }
        SV__OMP(for schedule(dynamic, 16))
        for (q = 0; q < (ptrdiff_t)w->ncells; q++) {
            sv__abx_cell *c = &w->cells[q];
            const uint32_t *ra = w->ref + c->dax, *rb = w->ref + c->dbx;
            uint64_t lt = 0, eq = 0;
            size_t k, a, b;
            for (k = 0; k < c->nx; k++) {
                for (b = 0; b < c->nb; b++) dbx[b] = sv__abx_d(w, rb[k * c->nb + b]);
                for (a = 0; a < c->na; a++) {
                    double da;
                    if (c->kind == 0 && a == k) continue; /* within: X != A */
                    da = sv__abx_d(w, ra[k * c->na + a]);
                    for (b = 0; b < c->nb; b++) {
                        lt += da < dbx[b];
                        eq += da == dbx[b];
                    }
                }
            }
            c->err = 1.0 - ((double)lt + 0.5 * (double)eq) /
                           (c->kind == 0 ? (double)c->na * (double)(c->na - 1) * (double)c->nb
                                         : (double)c->na * (double)c->nb * (double)c->nx);
        }
    }
    SV_FREE(scratch);
    SV_FREE(lists);
    if (w->keep && rc == SV_OK)
        rc = sv__met_grow((void **)&w->kept, &w->keptcap, w->nkept + w->ncells, sizeof *w->kept, "abx bootstrap cells");
    for (i = 0; i < w->ncells && rc == SV_OK; i++) {
        const sv__abx_cell *c = &w->cells[i];
        rc = sv__abx_acc_add(w, sv__abx_key(c->kind, c->a, c->b, c->spk), c->err);
        if (w->keep) {
            w->kept[w->nkept].key = sv__abx_key(c->kind, c->a, c->b, c->spk);
            w->kept[w->nkept].ctx = c->ctx;
            w->kept[w->nkept++].err = c->err;
        }
        w->triples[c->kind] += c->kind == 0 ? (double)c->na * (double)(c->na - 1) * (double)c->nb
                                            : (double)c->na * (double)c->nb * (double)c->nx;
        w->cells_done[c->kind] += 1;
    }
    w->n_dtw += (double)w->np;
    w->np = 0;
    w->nref = 0;
    w->ncells = 0;
    w->maxlist = 0;
    if (w->hcap) memset(w->hkeys, 0xff, w->hcap * sizeof(uint64_t));
    return rc;
}

static int sv__abx_tok_cmp(const void *x, const void *y)
{
    const sv__abx_tok *a = (const sv__abx_tok *)x, *b = (const sv__abx_tok *)y;
    if (a->prev != b->prev) return a->prev < b->prev ? -1 : 1;
    if (a->next != b->next) return a->next < b->next ? -1 : 1;
    if (a->spk != b->spk) return a->spk < b->spk ? -1 : 1;
    if (a->phone != b->phone) return a->phone < b->phone ? -1 : 1;
    return a->item < b->item ? -1 : a->item > b->item;
}

static int sv__abx_acc_cmp(const void *x, const void *y)
{
    uint64_t a = ((const sv__abx_acc *)x)->key, b = ((const sv__abx_acc *)y)->key;
    return a < b ? -1 : a > b;
}

/* Per (a, b, speaker) the mean over its cells (within: one per context; across: one per
   (context, X speaker), averaged together as the reference's torch.sparse.sum over dims [3, 4]
   of eval_ABX.py does), then the mean over speakers, then over ordered phone pairs. s holds the
   sums of one kind sorted by key. Returns percent, NaN without cells. */
static double sv__abx_reduce(const sv__abx_acc *s, size_t n, size_t *pairs)
{
    size_t i = 0, np = 0;
    double tot = 0;
    const uint64_t pair_mask = ~(uint64_t)0 << 20;
    while (i < n) {
        size_t e = i;
        double psum = 0;
        while (e < n && (s[e].key & pair_mask) == (s[i].key & pair_mask)) {
            psum += s[e].sum / (double)s[e].n;
            e++;
        }
        tot += psum / (double)(e - i);
        np++;
        i = e;
    }
    *pairs = np;
    return np ? 100.0 * tot / (double)np : NAN;
}

static int sv__abx_kept_cmp(const void *x, const void *y)
{
    const sv__abx_kept *a = (const sv__abx_kept *)x, *b = (const sv__abx_kept *)y;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return a->ctx < b->ctx ? -1 : a->ctx > b->ctx;
}

/* ascending, NaN last */
static int sv__abx_stat_cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    if (a != a || b != b) return (a != a) - (b != b);
    return a < b ? -1 : a > b;
}

/* The 95 % percentile-bootstrap interval of one condition's score from its cells k [n] (sorted
   by key, then context; ctx renumbered 0..n_ctx-1): n_boot resamples of the contexts with
   replacement, each scored by sv__abx_reduce's three-level average with the cells of a context
   drawn m times weighing m. Seeded, sequential: the same interval for any thread count. */
static int sv__abx_bootstrap(const sv__abx_kept *k, size_t n, size_t n_ctx, size_t n_boot, uint64_t seed,
                             double *lo, double *hi)
{
    size_t *mult, b, i, c;
    double *stat;
    sv_rng r;
    *lo = *hi = NAN;
    if (!n || !n_ctx || !n_boot) return SV_OK;
    mult = SV__CAST(size_t *, sv__alloc(n_ctx * sizeof(size_t), "abx bootstrap"));
    stat = SV__CAST(double *, sv__alloc(n_boot * sizeof(double), "abx bootstrap"));
    if (!mult || !stat) { SV_FREE(mult); SV_FREE(stat); return SV_ERR_NOMEM; }
    sv_rng_seed(&r, seed ^ 0xB007B007B007B007ull);
    for (b = 0; b < n_boot; b++) {
        const uint64_t pair_mask = ~(uint64_t)0 << 20;
        double tot = 0;
        size_t np = 0;
        memset(mult, 0, n_ctx * sizeof(size_t));
        for (c = 0; c < n_ctx; c++) mult[sv_rng_below(&r, n_ctx)]++;
        for (i = 0; i < n;) {   /* one ordered pair (a, b): its speakers' means, averaged */
            size_t e = i, ns = 0;
            double psum = 0;
            while (e < n && (k[e].key & pair_mask) == (k[i].key & pair_mask)) {
                size_t f = e, w = 0;
                double sum = 0;
                while (f < n && k[f].key == k[e].key) { sum += (double)mult[k[f].ctx] * k[f].err; w += mult[k[f].ctx]; f++; }
                if (w) { psum += sum / (double)w; ns++; }
                e = f;
            }
            if (ns) { tot += psum / (double)ns; np++; }
            i = e;
        }
        stat[b] = np ? 100.0 * tot / (double)np : NAN;
    }
    /* NaN (a resample without any pair) sorts last and counts as not scored */
    qsort(stat, n_boot, sizeof *stat, sv__abx_stat_cmp);
    for (b = n_boot; b > 0 && stat[b - 1] != stat[b - 1]; b--) {}
    if (b) {
        *lo = stat[(size_t)floor(0.025 * (double)(b - 1))];
        *hi = stat[(size_t)ceil(0.975 * (double)(b - 1))];
    }
    SV_FREE(mult);
    SV_FREE(stat);
    return SV_OK;
}

/* The bootstrap intervals of both conditions from the kept cells (sorted here). */
static int sv__abx_intervals(sv__abx_work *w, const sv_abx_opts *o, sv_abx_result *out)
{
    size_t nw, i, kind;
    int rc = SV_OK;
    if (w->nkept > 1) qsort(w->kept, w->nkept, sizeof *w->kept, sv__abx_kept_cmp);
    for (nw = 0; nw < w->nkept && (w->kept[nw].key >> 62) == 0; nw++) {}
    for (kind = 0; kind < 2 && rc == SV_OK; kind++) {
        sv__abx_kept *k = w->kept + (kind ? nw : 0);
        size_t n = kind ? w->nkept - nw : nw, n_ctx = 0, *dense;
        /* contexts are ordinals in enumeration order; renumber the ones this condition scored */
        dense = SV__CAST(size_t *, sv__alloc((w->ctx + 1) * sizeof(size_t), "abx bootstrap"));
        if (!dense) return SV_ERR_NOMEM;
        for (i = 0; i <= w->ctx; i++) dense[i] = SIZE_MAX;
        for (i = 0; i < n; i++) if (dense[k[i].ctx] == SIZE_MAX) dense[k[i].ctx] = 0;
        for (i = 0; i <= w->ctx; i++) if (dense[i] != SIZE_MAX) dense[i] = n_ctx++;
        for (i = 0; i < n; i++) k[i].ctx = dense[k[i].ctx];
        SV_FREE(dense);
        if (kind) out->across_contexts = n_ctx; else out->within_contexts = n_ctx;
        rc = sv__abx_bootstrap(k, n, n_ctx, o->bootstrap, o->seed + kind, kind ? &out->across_lo : &out->within_lo,
                               kind ? &out->across_hi : &out->within_hi);
    }
    return rc;
}

SV_DEF int sv_abx(const sv_item_set *items, const float *const *feats, const size_t *n_frames,
                  size_t dim, double frame_shift, const sv_abx_opts *opts, sv_abx_result *out)
{
    sv_abx_opts o = opts ? *opts : sv_abx_default_opts();
    sv__abx_work w;
    sv__abx_tok *tok = NULL;
    sv__abx_grp *g = NULL;
    size_t *xs = NULL, xcap = 0, gcap = 0, ntok = 0, nfr = 0, t, c0, c1, nw, j;
    double *invn = NULL, step;
    int rc = SV_OK;

    if (!out) return sv__fail(SV_ERR_ARG, "abx: NULL output");
    memset(out, 0, sizeof *out);
    out->within = out->across = NAN;
    out->within_lo = out->within_hi = out->across_lo = out->across_hi = NAN;
    if (!items || (!items->items && items->n_items) || !feats || !n_frames || dim == 0 ||
        !(frame_shift > 0))
        return sv__fail(SV_ERR_ARG, "abx: NULL input, dim 0 or frame shift <= 0");
    if (o.sample && (o.max_group == 0 || o.max_x_speakers == 0))
        return sv__fail(SV_ERR_ARG, "abx: sampling needs max_group and max_x_speakers >= 1");
    if (items->n_items >= SV__ABX_HI || items->n_phones >= ((size_t)1 << 21) ||
        items->n_speakers >= ((size_t)1 << 20))
        return sv__fail(SV_ERR_ARG, "abx: more than 2^31 items, 2^21 phones or 2^20 speakers");
    memset(&w, 0, sizeof w);

    /* 1. Token frame ranges. The reference computes ceil(step * onset - 0.5) with
       step = 1 / feature_size; we evaluate the same expression so that boundary cases (onsets
       on multiples of 10 ms land exactly on .5) round the same way as the reference. */
    step = 1.0 / frame_shift;
    tok = SV__CAST(sv__abx_tok *, sv__calloc(items->n_items ? items->n_items : 1, sizeof *tok, "abx tokens"));
    if (!tok) return SV_ERR_NOMEM;
    for (t = 0; t < items->n_items; t++) {
        const sv_item *it = &items->items[t];
        double fs, fe;
        size_t nf;
        if (it->file >= items->n_files || it->phone < 0 || (size_t)it->phone >= items->n_phones ||
            it->prev < 0 || (size_t)it->prev >= items->n_phones || it->next < 0 ||
            (size_t)it->next >= items->n_phones || it->speaker < 0 ||
            (size_t)it->speaker >= items->n_speakers) {
            rc = sv__fail(SV_ERR_ARG, "abx: item %zu has an index outside the set's tables", t);
            goto done;
        }
        nf = feats[it->file] ? n_frames[it->file] : 0;
        fs = ceil(step * it->onset - 0.5);
        fe = floor(step * it->offset - 0.5);
        if (fs < 0) fs = 0;
        if (fe > (double)nf) fe = (double)nf;
        if (!(fs < fe)) { out->n_dropped++; continue; } /* also catches NaN times */
        tok[ntok].f = feats[it->file] + (size_t)fs * dim;
        tok[ntok].len = (size_t)fe - (size_t)fs;
        tok[ntok].prev = it->prev; tok[ntok].next = it->next;
        tok[ntok].spk = it->speaker; tok[ntok].phone = it->phone;
        tok[ntok].item = t;
        nfr += tok[ntok].len;
        if (tok[ntok].len > w.maxlen) w.maxlen = tok[ntok].len;
        ntok++;
    }
    out->n_tokens = ntok;
    out->sampled = o.sample != 0;
    if (ntok == 0) goto done;
    if (ntok > 1) qsort(tok, ntok, sizeof *tok, sv__abx_tok_cmp);

    /* 2. Inverse frame norms, once per token frame. */
    invn = SV__CAST(double *, sv__calloc(nfr, sizeof(double), "abx frame norms"));
    if (!invn) { rc = SV_ERR_NOMEM; goto done; }
    for (t = 0, nfr = 0; t < ntok; t++) {
        size_t p;
        tok[t].inv = nfr;
        for (p = 0; p < tok[t].len; p++) {
            double v = sv__inv_norm(tok[t].f + p * dim, dim);
            if (v < 0) {
                rc = sv__fail(SV_ERR_NUMERIC, "abx: non-finite feature in the frames of item %zu",
                              tok[t].item);
                goto done;
            }
            invn[nfr++] = v;
        }
    }

    /* 3. Contexts in sorted order; cells enumerated sequentially (so the sampling stream does
       not depend on threads), DTWs and cell values computed in parallel batch by batch. */
    w.tok = tok; w.invn = invn; w.dim = dim; w.sample = o.sample; w.max_group = o.max_group;
    w.keep = o.bootstrap > 0;
    sv_rng_seed(&w.rng, o.seed);
    for (c0 = 0; c0 < ntok; c0 = c1, w.ctx++) {
        size_t ng = 0, b;
        for (c1 = c0 + 1; c1 < ntok && tok[c1].prev == tok[c0].prev && tok[c1].next == tok[c0].next; c1++) {}
        for (b = c0; b < c1;) {
            size_t e = b + 1;
            while (e < c1 && tok[e].spk == tok[b].spk && tok[e].phone == tok[b].phone) e++;
            if ((rc = sv__met_grow((void **)&g, &gcap, ng + 1, sizeof *g, "abx groups"))) goto done;
            g[ng].b = b; g[ng].e = e; g[ng].spk = tok[b].spk; g[ng].phone = tok[b].phone;
            ng++;
            b = e;
        }
        if ((rc = sv__abx_context(&w, g, ng, &o, &xs, &xcap))) goto done;
        /* Flush once the batch holds enough work for all threads; bounds memory on big sets. */
        if (w.np >= ((size_t)1 << 18) || w.nref >= ((size_t)1 << 23) || c1 == ntok)
            if ((rc = sv__abx_flush(&w))) goto done;
    }

    /* 4. Sequential reduction in key order. */
    for (t = 0, j = 0; t < w.acap; t++)
        if (w.acc[t].key != UINT64_MAX) w.acc[j++] = w.acc[t];
    if (j > 1) qsort(w.acc, j, sizeof *w.acc, sv__abx_acc_cmp);
    for (nw = 0; nw < j && (w.acc[nw].key >> 62) == 0; nw++) {}
    out->within = sv__abx_reduce(w.acc, nw, &out->within_pairs);
    out->across = sv__abx_reduce(w.acc + nw, j - nw, &out->across_pairs);
    out->within_cells = (size_t)w.cells_done[0];
    out->across_cells = (size_t)w.cells_done[1];
    out->within_triples = w.triples[0];
    out->across_triples = w.triples[1];
    out->n_dtw = (size_t)w.n_dtw;
    if (w.keep) rc = sv__abx_intervals(&w, &o, out);
done:
    SV_FREE(tok); SV_FREE(invn); SV_FREE(g); SV_FREE(xs);
    SV_FREE(w.hkeys); SV_FREE(w.hval); SV_FREE(w.plo); SV_FREE(w.phi);
    SV_FREE(w.prow_lo); SV_FREE(w.prow_hi); SV_FREE(w.ref); SV_FREE(w.cells);
    SV_FREE(w.sa); SV_FREE(w.sb); SV_FREE(w.sx); SV_FREE(w.acc); SV_FREE(w.kept);
    return rc;
}

/* ---------------------------------------------------------------- 11.3 SVG figures */

/* Write s with the five XML special characters escaped (valid in text and in "..." attributes);
   control characters other than tab/newline are not allowed in XML 1.0 and become '?'. */
static void sv__xml_puts(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        switch (ch) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(ch < 0x20 && ch != '\t' && ch != '\n' ? '?' : ch, f);
        }
    }
}

/* A tick label: plain decimals for 1e-4 <= |v| < 1e6 (0.1, 1, 250), else 1e-05 style. */
static void sv__tick_label(double v, char *buf, size_t cap)
{
    double a = fabs(v);
    if (a == 0) snprintf(buf, cap, "0");
    else if (a >= 1e-4 && a < 1e6) snprintf(buf, cap, "%.6g", v);
    else snprintf(buf, cap, "%.3g", v);
}

/* "Nice" linear ticks: step 1, 2 or 5 x 10^e (at least min_step) for about `target` intervals;
   the axis range is widened to whole steps. Returns the number of ticks (<= 64). */
static size_t sv__lin_ticks(double *lo, double *hi, int target, double min_step, double *ticks)
{
    double span = *hi - *lo, raw, mag, r, stp, k0, k1, k;
    size_t n = 0;
    if (!(span > 0)) {
        double pad = fabs(*lo) > 0 ? 0.1 * fabs(*lo) : 1.0;
        *lo -= pad; *hi += pad; span = *hi - *lo;
    }
    raw = span / target;
    mag = pow(10.0, floor(log10(raw)));
    r = raw / mag;
    stp = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
    if (stp < min_step) stp = min_step;
    k0 = floor(*lo / stp + 1e-9);
    k1 = ceil(*hi / stp - 1e-9);
    *lo = k0 * stp;
    *hi = k1 * stp;
    for (k = k0; k <= k1 && n < 64; k += 1) {
        double v = k * stp;
        ticks[n++] = fabs(v) < 1e-9 * stp ? 0.0 : v;
    }
    return n;
}

/* Log ticks on [lo, hi] given in log10 units: decades, plus 2 and 5 (or every integer
   multiple) when the axis spans few decades, so a short axis still carries 3+ labels. */
static size_t sv__log_ticks(double lo, double hi, double *ticks)
{
    static const double m1[] = {1}, m3[] = {1, 2, 5}, m9[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const double *m = m1;
    size_t nm = 1, n = 0, i, every = 1;
    double e, span = hi - lo;
    if (span < 0.7) { m = m9; nm = 9; }
    else if (span < 2.0) { m = m3; nm = 3; }
    else if (span > 8) every = (size_t)ceil(span / 8);
    for (e = floor(lo); e <= ceil(hi) && n < 64; e += 1) {
        if (((long)e % (long)every) != 0) continue;
        for (i = 0; i < nm && n < 64; i++) {
            double v = m[i] * pow(10.0, e), lv = log10(v);
            if (lv >= lo - 1e-9 && lv <= hi + 1e-9) ticks[n++] = v;
        }
    }
    return n;
}

SV_DEF int sv_svg_plot(const char *path, const sv_plot *p, const sv_series *s, size_t n_series)
{
    /* Okabe-Ito colours (colour-blind safe), yellow left out for contrast on white. */
    static const char *colors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
                                   "#56B4E9", "#000000", "#8C564B"};
    static const char *dashes[] = {"", "7 4", "2 3", "9 3 2 3"};
    sv_plot dp;
    FILE *f;
    char *tmp, lbl[64];
    size_t i, j, nxt, nyt, plen, maxname = 0;
    double xlo = HUGE_VAL, xhi = -HUGE_VAL, ylo = HUGE_VAL, yhi = -HUGE_VAL;
    double xt[64], yt[64], W, H, L, R, T, Bm, legw;
    int ok;

    if (!path || (!s && n_series)) return sv__fail(SV_ERR_ARG, "svg: NULL path or series");
    if (!p) { memset(&dp, 0, sizeof dp); p = &dp; }
    W = p->width > 0 ? p->width : 760;
    H = p->height > 0 ? p->height : 460;
    for (i = 0; i < n_series; i++) {
        size_t nl = s[i].name ? strlen(s[i].name) : 10;
        if (nl > maxname) maxname = nl;
        if (s[i].n && !s[i].y) return sv__fail(SV_ERR_ARG, "svg: series %zu has no y values", i);
        for (j = 0; j < s[i].n; j++) {
            double x = s[i].x ? s[i].x[j] : (double)j, y = s[i].y[j];
            if (!isfinite(x) || !isfinite(y) || (p->log_y && !(y > 0))) continue;
            if (p->log_y) y = log10(y);
            if (x < xlo) xlo = x;
            if (x > xhi) xhi = x;
            if (y < ylo) ylo = y;
            if (y > yhi) yhi = y;
        }
        for (j = 0; j < s[i].n && p->band_lo && p->band_hi && p->band_lo[i] && p->band_hi[i]; j++) {   /* the band stays inside the axes */
            double x = s[i].x ? s[i].x[j] : (double)j, a = p->band_lo[i][j], b = p->band_hi[i][j];
            if (!isfinite(x) || !isfinite(a) || !isfinite(b) || (p->log_y && !(a > 0))) continue;
            if (p->log_y) { a = log10(a); b = log10(b); }
            if (a < ylo) ylo = a;
            if (b > yhi) yhi = b;
        }
    }
    for (i = 0; i < p->n_hlines; i++)
        if (p->hlines && isfinite(p->hlines[i]) && (!p->log_y || p->hlines[i] > 0)) {
            double y = p->log_y ? log10(p->hlines[i]) : p->hlines[i];
            if (y < ylo) ylo = y;
            if (y > yhi) yhi = y;
        }
    for (i = 0; i < p->n_vlines; i++)
        if (p->vlines && isfinite(p->vlines[i])) {
            if (p->vlines[i] < xlo) xlo = p->vlines[i];
            if (p->vlines[i] > xhi) xhi = p->vlines[i];
        }
    if (xlo > xhi) { xlo = 0; xhi = 1; }
    if (ylo > yhi) { ylo = p->log_y ? -1 : 0; yhi = p->log_y ? 1 : 1; }
    nxt = sv__lin_ticks(&xlo, &xhi, 8, p->integer_x ? 1.0 : 0.0, xt);
    if (p->log_y) {
        double span = yhi - ylo, pad;
        if (span < 0.3) { double mid = 0.5 * (ylo + yhi); ylo = mid - 0.15; yhi = mid + 0.15; span = 0.3; }
        pad = 0.04 * span;
        ylo -= pad; yhi += pad;
        nyt = sv__log_ticks(ylo, yhi, yt);
    } else {
        nyt = sv__lin_ticks(&ylo, &yhi, 6, 0.0, yt);
    }
    /* Margins from the text that has to fit: y tick labels on the left, legend on the right. */
    {
        size_t wl = 1;
        for (i = 0; i < nyt; i++) {
            sv__tick_label(yt[i], lbl, sizeof lbl);
            if (strlen(lbl) > wl) wl = strlen(lbl);
        }
        L = 7.0 * (double)wl + (p->ylabel ? 36 : 16);
    }
    if (maxname > 40) maxname = 40;
    legw = n_series ? 7.2 * (double)maxname + 56 : 0;
    R = W - 20 - legw;
    T = p->title ? 44 : 20;
    Bm = H - (p->xlabel ? 54 : 36);
    if (R - L < 80 || Bm - T < 60) return sv__fail(SV_ERR_ARG, "svg: %gx%g is too small", W, H);

    plen = strlen(path);
    tmp = SV__CAST(char *, sv__alloc(plen + 5, "svg path"));
    if (!tmp) return SV_ERR_NOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        sv__fail(SV_ERR_IO, "svg: cannot create %s: %s", tmp, strerror(e));
        SV_FREE(tmp);
        return SV_ERR_IO;
    }

#define SV__PX(x) (L + ((x) - xlo) / (xhi - xlo) * (R - L))
#define SV__PY(y) (Bm - ((y) - ylo) / (yhi - ylo) * (Bm - T))
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
               "viewBox=\"0 0 %g %g\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
            W, H, W, H);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%g\" height=\"%g\" fill=\"#ffffff\"/>\n", W, H);
    if (p->title) {
        fprintf(f, "<text x=\"%.1f\" y=\"26\" font-size=\"16\" font-weight=\"bold\" "
                   "text-anchor=\"middle\" fill=\"#222222\">", 0.5 * (L + R));
        sv__xml_puts(f, p->title);
        fprintf(f, "</text>\n");
    }
    /* Grid and tick labels. */
    fprintf(f, "<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n");
    for (i = 0; i < nxt; i++)
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                SV__PX(xt[i]), T, SV__PX(xt[i]), Bm);
    for (i = 0; i < nyt; i++) {
        double y = p->log_y ? log10(yt[i]) : yt[i];
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", L, SV__PY(y), R, SV__PY(y));
    }
    fprintf(f, "</g>\n<g font-size=\"12\" fill=\"#333333\">\n");
    for (i = 0; i < nxt; i++) {
        double k = xt[i] - p->xtick_first;
        sv__tick_label(xt[i], lbl, sizeof lbl);
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">", SV__PX(xt[i]), Bm + 17);
        if (p->xtick_names && k >= 0 && k == floor(k) && k < (double)p->n_xtick_names && p->xtick_names[(size_t)k])
            sv__xml_puts(f, p->xtick_names[(size_t)k]);
        else
            fputs(lbl, f);
        fprintf(f, "</text>\n");
    }
    for (i = 0; i < nyt; i++) {
        double y = p->log_y ? log10(yt[i]) : yt[i];
        sv__tick_label(yt[i], lbl, sizeof lbl);
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n", L - 6,
                SV__PY(y) + 4, lbl);
    }
    fprintf(f, "</g>\n");
    fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" "
               "stroke=\"#555555\" stroke-width=\"1\"/>\n", L, T, R - L, Bm - T);
    if (p->xlabel) {
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\" "
                   "fill=\"#222222\">", 0.5 * (L + R), H - 14);
        sv__xml_puts(f, p->xlabel);
        fprintf(f, "</text>\n");
    }
    if (p->ylabel) {
        fprintf(f, "<text x=\"16\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\" fill=\"#222222\" "
                   "transform=\"rotate(-90 16 %.1f)\">", 0.5 * (T + Bm), 0.5 * (T + Bm));
        sv__xml_puts(f, p->ylabel);
        fprintf(f, "</text>\n");
    }
    /* Vertical marker lines. */
    for (i = 0; i < p->n_vlines; i++) {
        double x;
        if (!p->vlines || !isfinite(p->vlines[i])) continue;
        x = SV__PX(p->vlines[i]);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#777777\" "
                   "stroke-width=\"1.2\" stroke-dasharray=\"5 4\"/>\n", x, T, x, Bm);
        if (p->vline_label) {
            fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"11\" fill=\"#555555\">", x + 4, T + 13);
            sv__xml_puts(f, p->vline_label);
            fprintf(f, "</text>\n");
        }
    }
    /* Horizontal reference lines (chance levels). */
    for (i = 0; i < p->n_hlines; i++) {
        double y;
        if (!p->hlines || !isfinite(p->hlines[i]) || (p->log_y && !(p->hlines[i] > 0))) continue;
        y = SV__PY(p->log_y ? log10(p->hlines[i]) : p->hlines[i]);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#444444\" "
                   "stroke-width=\"1.2\" stroke-dasharray=\"2 3\"/>\n", L, y, R, y);
        if (p->hline_label) {
            fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"11\" fill=\"#444444\" text-anchor=\"end\">", R - 4, y - 4);
            sv__xml_puts(f, p->hline_label);
            fprintf(f, "</text>\n");
        }
    }
    /* Bands: one closed polygon per run of finite points, upper edge forward, lower edge back. */
    for (i = 0; i < n_series; i++) {
        size_t b0 = 0, b1;
        const double *lo = p->band_lo ? p->band_lo[i] : NULL, *hi = p->band_hi ? p->band_hi[i] : NULL;
        if (!lo || !hi) continue;
        while (b0 < s[i].n) {
            for (; b0 < s[i].n; b0++) {
                double x = s[i].x ? s[i].x[b0] : (double)b0;
                if (isfinite(x) && isfinite(lo[b0]) && isfinite(hi[b0]) && (!p->log_y || lo[b0] > 0)) break;
            }
            for (b1 = b0; b1 < s[i].n; b1++) {
                double x = s[i].x ? s[i].x[b1] : (double)b1;
                if (!(isfinite(x) && isfinite(lo[b1]) && isfinite(hi[b1]) && (!p->log_y || lo[b1] > 0))) break;
            }
            if (b1 > b0) {
                fprintf(f, "<path fill=\"%s\" fill-opacity=\"0.15\" stroke=\"none\" d=\"", colors[i % 8]);
                for (j = b0; j < b1; j++) {
                    double x = s[i].x ? s[i].x[j] : (double)j, y = hi[j];
                    if (p->log_y) y = log10(y);
                    fprintf(f, "%s%.2f %.2f", j == b0 ? "M" : " L", SV__PX(x), SV__PY(y));
                }
                for (j = b1; j-- > b0;) {
                    double x = s[i].x ? s[i].x[j] : (double)j, y = lo[j];
                    if (p->log_y) y = log10(y);
                    fprintf(f, " L%.2f %.2f", SV__PX(x), SV__PY(y));
                }
                fprintf(f, " Z\"/>\n");
            }
            b0 = b1;
        }
    }
    /* Series: one path each; a NaN (or non-positive on a log axis) starts a new sub-path. */
    for (i = 0; i < n_series; i++) {
        const char *col = colors[i % 8], *da = dashes[(i + i / 8) % 4];
        int pen = 0, marks = s[i].n <= 40;
        char nbuf[32];
        const char *name = s[i].name;
        if (!name) { snprintf(nbuf, sizeof nbuf, "series %zu", i + 1); name = nbuf; }
        fprintf(f, "<path data-name=\"");
        sv__xml_puts(f, name);
        fprintf(f, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" stroke-linejoin=\"round\" "
                   "stroke-linecap=\"round\"", col);
        if (*da) fprintf(f, " stroke-dasharray=\"%s\"", da);
        fprintf(f, " d=\"");
        for (j = 0; j < s[i].n; j++) {
            double x = s[i].x ? s[i].x[j] : (double)j, y = s[i].y[j];
            if (!isfinite(x) || !isfinite(y) || (p->log_y && !(y > 0))) { pen = 0; continue; }
            if (p->log_y) y = log10(y);
            fprintf(f, "%s%.2f %.2f", pen ? " L" : (j ? " M" : "M"), SV__PX(x), SV__PY(y));
            pen = 1;
        }
        fprintf(f, "\"><title>");
        sv__xml_puts(f, name);
        fprintf(f, "</title></path>\n");
        if (marks) {
            fprintf(f, "<g fill=\"%s\">\n", col);
            for (j = 0; j < s[i].n; j++) {
                double x = s[i].x ? s[i].x[j] : (double)j, y = s[i].y[j];
                if (!isfinite(x) || !isfinite(y) || (p->log_y && !(y > 0))) continue;
                if (p->log_y) y = log10(y);
                fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\"/>\n", SV__PX(x), SV__PY(y));
            }
            fprintf(f, "</g>\n");
        }
    }
    /* Legend right of the plot area. */
    if (n_series) {
        double lx = R + 14, ly = T;
        fprintf(f, "<g font-size=\"12\" fill=\"#222222\">\n");
        fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#ffffff\" "
                   "stroke=\"#cccccc\"/>\n", lx, ly, legw - 4, 20.0 * (double)n_series + 10);
        for (i = 0; i < n_series; i++) {
            const char *col = colors[i % 8], *da = dashes[(i + i / 8) % 4];
            double yy = ly + 18 + 20.0 * (double)i;
            fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
                       "stroke-width=\"2\"%s%s%s/>\n", lx + 8, yy - 4, lx + 36, yy - 4, col,
                    *da ? " stroke-dasharray=\"" : "", da, *da ? "\"" : "");
            fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">", lx + 44, yy);
            if (s[i].name) {
                /* Long names are cut so the legend keeps its width. */
                size_t nl = strlen(s[i].name);
                if (nl > 40) {
                    char cut[41];
                    memcpy(cut, s[i].name, 37);
                    memcpy(cut + 37, "...", 4);
                    sv__xml_puts(f, cut);
                } else {
                    sv__xml_puts(f, s[i].name);
                }
            } else {
                fprintf(f, "series %zu", i + 1);
            }
            fprintf(f, "</text>\n");
        }
        fprintf(f, "</g>\n");
    }
    fprintf(f, "</svg>\n");
#undef SV__PX
#undef SV__PY
    ok = !ferror(f);
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        remove(tmp);
        sv__fail(SV_ERR_IO, "svg: write error on %s", tmp);
        SV_FREE(tmp);
        return SV_ERR_IO;
    }
    {
        char why[128];
        if (sv__rename_over(tmp, path, why, sizeof why) != 0) {
            remove(tmp);
            sv__fail(SV_ERR_IO, "svg: cannot rename %s to %s: %s", tmp, path, why);
            SV_FREE(tmp);
            return SV_ERR_IO;
        }
    }
    SV_FREE(tmp);
    return SV_OK;
}

/* ---------------------------------------------------------------- 11.4 JSON lines */

static const char *sv__json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* p at an opening quote: returns the character after the closing quote, or NULL. */
static const char *sv__json_skip_string(const char *p)
{
    for (p++; *p; p++) {
        if (*p == '\\') { if (!*++p) return NULL; }
        else if (*p == '"') return p + 1;
    }
    return NULL;
}

static const char *sv__json_skip_value(const char *p)
{
    int depth = 0;
    p = sv__json_ws(p);
    if (*p == '"') return sv__json_skip_string(p);
    if (*p == '{' || *p == '[') {
        for (; *p; p++) {
            if (*p == '"') { if (!(p = sv__json_skip_string(p))) return NULL; p--; }
            else if (*p == '{' || *p == '[') depth++;
            else if (*p == '}' || *p == ']') { if (--depth == 0) return p + 1; }
        }
        return NULL;
    }
    while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\r' &&
           *p != '\n')
        p++;
    return p;
}

/* The start of the value of top-level `key`, or NULL. */
static const char *sv__json_find(const char *line, const char *key)
{
    const char *p;
    size_t kl;
    if (!line || !key) return NULL;
    kl = strlen(key);
    p = sv__json_ws(line);
    if (*p != '{') return NULL;
    p = sv__json_ws(p + 1);
    while (*p == '"') {
        const char *ks = p + 1, *ke = sv__json_skip_string(p);
        if (!ke) return NULL;
        p = sv__json_ws(ke);
        if (*p != ':') return NULL;
        p = sv__json_ws(p + 1);
        if ((size_t)(ke - 1 - ks) == kl && memcmp(ks, key, kl) == 0) return p;
        if (!(p = sv__json_skip_value(p))) return NULL;
        p = sv__json_ws(p);
        if (*p != ',') return NULL;
        p = sv__json_ws(p + 1);
    }
    return NULL;
}

static int sv__json_word(const char *p, const char *w)
{
    size_t n = strlen(w);
    char c;
    if (strncmp(p, w, n) != 0) return 0;
    c = p[n];
    return c == 0 || c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

SV_DEF int sv_json_number(const char *line, const char *key, double *out)
{
    const char *p = sv__json_find(line, key);
    char *end;
    double v;
    if (!p || !out) return 0;
    if (sv__json_word(p, "null") || sv__json_word(p, "NaN")) { *out = NAN; return 1; }
    if (sv__json_word(p, "Infinity")) { *out = HUGE_VAL; return 1; }
    if (sv__json_word(p, "-Infinity")) { *out = -HUGE_VAL; return 1; }
    if (!(*p == '-' || (*p >= '0' && *p <= '9'))) return 0;
    v = strtod(p, &end);
    if (end == p || !sv__json_word(end, "")) return 0;
    *out = v;
    return 1;
}

static int sv__hex4(const char *p, unsigned *v)
{
    int i;
    *v = 0;
    for (i = 0; i < 4; i++) {
        char c = p[i];
        *v <<= 4;
        if (c >= '0' && c <= '9') *v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') *v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') *v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    return 1;
}

SV_DEF int sv_json_string(const char *line, const char *key, char *buf, size_t cap)
{
    const char *p = sv__json_find(line, key);
    size_t n = 0;
    if (!p || *p != '"' || !sv__json_skip_string(p)) return 0;
#define SV__PUT(ch) do { if (n + 1 < cap) buf[n] = (char)(ch); n++; } while (0)
    for (p++; *p != '"'; p++) {
        if (*p != '\\') { SV__PUT(*p); continue; }
        switch (*++p) {
        case 'b': SV__PUT('\b'); break;
        case 'f': SV__PUT('\f'); break;
        case 'n': SV__PUT('\n'); break;
        case 'r': SV__PUT('\r'); break;
        case 't': SV__PUT('\t'); break;
        case 'u': {
            unsigned u, lo;
            if (!sv__hex4(p + 1, &u)) return 0;
            p += 4;
            if (u >= 0xD800 && u < 0xDC00 && p[1] == '\\' && p[2] == 'u' && sv__hex4(p + 3, &lo) &&
                lo >= 0xDC00 && lo < 0xE000) {
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            if (u < 0x80) SV__PUT(u);
            else if (u < 0x800) { SV__PUT(0xC0 | (u >> 6)); SV__PUT(0x80 | (u & 0x3F)); }
            else if (u < 0x10000) {
                SV__PUT(0xE0 | (u >> 12)); SV__PUT(0x80 | ((u >> 6) & 0x3F)); SV__PUT(0x80 | (u & 0x3F));
            } else {
                SV__PUT(0xF0 | (u >> 18)); SV__PUT(0x80 | ((u >> 12) & 0x3F));
                SV__PUT(0x80 | ((u >> 6) & 0x3F)); SV__PUT(0x80 | (u & 0x3F));
            }
            break;
        }
        default: SV__PUT(*p); break; /* \" \\ \/ */
        }
    }
#undef SV__PUT
    if (cap) buf[n < cap ? n : cap - 1] = 0;
    return 1;
}

/* ---------------------------------------------------------------- 11.5 evaluation of a model */
static void sv__ev_progress(const sv_ctx *c, const char *what, size_t done, size_t total)
{
    if (c->progress_fn) c->progress_fn(what, done, total, c->progress_user);
}

static int sv__ev_check(const sv_model *m, const sv_ctx *c, const sv_data *d, int split)
{
    if (!m || !c || !d) return sv__fail(SV_ERR_ARG, "NULL model, context or data");
    if (split < 0 || split >= SV_SPLIT_COUNT) return sv__fail(SV_ERR_ARG, "bad split %d", split);
    return SV_OK;
}

/* Utterances list[0..nb) of split into wave [nb, S] (S = the longest after the crop, at least
   the receptive field): a normalised copy of the first max_samples samples, zero padded. An
   utterance shorter than the receptive field is zero padded up to it (its wave_len says so). */
static int sv__ev_fill_wave(const sv_model *m, const sv_data *d, int split, const size_t *list,
                            size_t nb, size_t max_samples, float *wave, size_t *len, size_t *S)
{
    size_t b, s = 0, rf = sv_config_receptive_field(&m->cfg);
    int rc;
    for (b = 0; b < nb; b++) {
        size_t n = d->len[split][list[b]];
        if (n > max_samples) n = max_samples;
        len[b] = n < rf ? rf : n;
        if (len[b] > s) s = len[b];
    }
    for (b = 0; b < nb; b++) {
        size_t n = d->len[split][list[b]];
        float *w = wave + b * s, *owned;
        const float *x;
        if (n > max_samples) n = max_samples;
        if ((rc = sv_data_audio(d, split, list[b], &x, &owned)) != SV_OK) return rc;
        memcpy(w, x, n * sizeof(float));
        SV_FREE(owned);
        sv_normalize_wave(w, n);
        memset(w + n, 0, (s - n) * sizeof(float));
    }
    *S = s;
    return SV_OK;
}

static size_t sv__ev_max_len(const sv_model *m, const sv_data *d, int split, size_t max_samples)
{
    size_t i, s = sv_config_receptive_field(&m->cfg);
    for (i = 0; i < d->n[split]; i++) {
        size_t n = d->len[split][i] < max_samples ? d->len[split][i] : max_samples;
        if (n > s) s = n;
    }
    return s;
}

SV_DEF void sv_recall_chance(size_t n_images, size_t n_captions, size_t k, double *s2i, double *i2s)
{
    double p = 1.0, cpi;
    size_t i, cc;
    if (s2i) *s2i = n_images ? 100.0 * (double)(k < n_images ? k : n_images) / (double)n_images : NAN;
    if (!i2s) return;
    if (!n_images || !n_captions) { *i2s = NAN; return; }
    cpi = (double)n_captions / (double)n_images;
    cc = (size_t)(cpi + 0.5);
    if (cc < 1) cc = 1;
    /* C(n-c, k) / C(n, k) = prod_{i<k} (n - c - i) / (n - i) */
    for (i = 0; i < k && p > 0; i++) {
        double num = (double)n_captions - (double)cc - (double)i, den = (double)n_captions - (double)i;
        p = num <= 0 ? 0.0 : p * num / den;
    }
    *i2s = 100.0 * (1.0 - p);
}

SV_DEF int sv_eval_retrieval(sv_model *m, sv_ctx *c, const sv_data *d, int split, size_t batch, sv_recall *out)
{
    return sv_eval_retrieval_ranks(m, c, d, split, batch, out, NULL, NULL, NULL, NULL);
}

SV_DEF int sv_eval_retrieval_ranks(sv_model *m, sv_ctx *c, const sv_data *d, int split, size_t batch,
                                   sv_recall *out, size_t **i2s_rank, size_t *n_images,
                                   size_t **s2i_rank, size_t *n_captions)
{
    const size_t BI = 256, BC = 1024;   /* score block: 1 MB */
    const sv_config *cfg;
    size_t n, i, j, E, n_cap = 0, n_img = 0, maxS, R, Dimg;
    size_t *cap_utt = NULL, *cap_img = NULL, *len = NULL;
    long *img_row = NULL, *local = NULL;
    float *A = NULL, *V = NULL, *wave = NULL, *reg = NULL, *box = NULL, *blk = NULL;
    sv_recall_acc *acc = NULL;
    int rc = SV_OK;
    if ((rc = sv__ev_check(m, c, d, split)) != SV_OK) return rc;
    if (!out) return sv__fail(SV_ERR_ARG, "NULL result");
    cfg = &m->cfg;
    E = cfg->E; R = cfg->img_regions; Dimg = cfg->img_dim;
    if (batch == 0) batch = 16;
    n = d->n[split];
    if (d->n_images && (d->R != R || d->Dimg != Dimg))
        return sv__fail(SV_ERR_ARG, "the data's images have %zu regions of %zu values; the %s config expects %zu of %zu",
                        d->R, d->Dimg, cfg->name, R, Dimg);
    cap_utt = SV__CAST(size_t *, sv__calloc(n + 1, sizeof(size_t), "retrieval captions"));
    cap_img = SV__CAST(size_t *, sv__calloc(n + 1, sizeof(size_t), "retrieval captions"));
    img_row = SV__CAST(long *, sv__calloc(n + 1, sizeof(long), "retrieval images"));
    local = SV__CAST(long *, sv__calloc(d->n_images + 1, sizeof(long), "retrieval images"));
    if (!cap_utt || !cap_img || !img_row || !local) { rc = SV_ERR_NOMEM; goto done; }
    for (i = 0; i < d->n_images; i++) local[i] = -1;
    /* only the images this split's captions use, numbered in order of first use */
    for (i = 0; i < n; i++) {
        long r = d->image[split][i];
        if (r < 0) continue;
        if ((size_t)r >= d->n_images) { rc = sv__fail(SV_ERR_FORMAT, "utterance %s: image row %ld outside the %zu images", d->id[split][i], r, d->n_images); goto done; }
        if (local[r] < 0) { local[r] = (long)n_img; img_row[n_img++] = r; }
        cap_utt[n_cap] = i;
        cap_img[n_cap++] = (size_t)local[r];
    }
    if (n_cap == 0) { rc = sv__fail(SV_ERR_ARG, "split %s has no captions with images: nothing to retrieve", sv_split_name(split)); goto done; }
    maxS = sv__ev_max_len(m, d, split, SV_EVAL_MAX_SAMPLES);
    A = SV__CAST(float *, sv__calloc(n_cap, E * sizeof(float), "audio embeddings"));
    V = SV__CAST(float *, sv__calloc(n_img, E * sizeof(float), "image embeddings"));
    wave = SV__CAST(float *, sv__calloc(batch, maxS * sizeof(float), "retrieval batch"));
    len = SV__CAST(size_t *, sv__calloc(batch, sizeof(size_t), "retrieval batch"));
    reg = SV__CAST(float *, sv__calloc(batch, R * Dimg * sizeof(float), "retrieval images"));
    box = SV__CAST(float *, sv__calloc(batch, R * 4 * sizeof(float), "retrieval images"));
    blk = SV__CAST(float *, sv__calloc(BI * BC, sizeof(float), "score block"));
    if (!A || !V || !wave || !len || !reg || !box || !blk) { rc = SV_ERR_NOMEM; goto done; }
    for (j = 0; j < n_cap; j += batch) {
        size_t nb = n_cap - j < batch ? n_cap - j : batch, S;
        if ((rc = sv__ev_fill_wave(m, d, split, cap_utt + j, nb, SV_EVAL_MAX_SAMPLES, wave, len, &S)) != SV_OK) goto done;
        if ((rc = sv_embed_audio(m, c, wave, len, nb, S, A + j * E)) != SV_OK) goto done;
        sv__ev_progress(c, "retrieval audio", j + nb, n_cap);
    }
    for (i = 0; i < n_img; i += batch) {
        size_t nb = n_img - i < batch ? n_img - i : batch, b;
        for (b = 0; b < nb; b++) {
            size_t r = (size_t)img_row[i + b];
            if ((rc = sv_data_image(d, r, reg + b * R * Dimg, box + b * R * 4)) != SV_OK) goto done;
        }
        if ((rc = sv_embed_images(m, c, reg, box, nb, V + i * E)) != SV_OK) goto done;
        sv__ev_progress(c, "retrieval images", i + nb, n_img);
    }
    if (cfg->sim_cosine) {   /* cosine = dot product of unit vectors (eps as the loss' normalise) */
        float *rows[2];
        size_t nr[2], t, k;
        rows[0] = A; nr[0] = n_cap; rows[1] = V; nr[1] = n_img;
        for (t = 0; t < 2; t++)
            for (k = 0; k < nr[t]; k++) {
                double s = 0;
                size_t e;
                float *x = rows[t] + k * E;
                for (e = 0; e < E; e++) s += (double)x[e] * x[e];
                s = sqrt(s);
                if (s < 1e-8) s = 1e-8;
                for (e = 0; e < E; e++) x[e] = (float)(x[e] / s);
            }
    }
    acc = sv_recall_acc_init(n_img, n_cap, cap_img, 10);
    if (!acc) { rc = sv_last_status() ? sv_last_status() : SV_ERR_NOMEM; goto done; }
    for (i = 0; i < n_img; i += BI) {
        size_t ni = n_img - i < BI ? n_img - i : BI;
        for (j = 0; j < n_cap; j += BC) {
            size_t nc = n_cap - j < BC ? n_cap - j : BC;
            /* S[i][j] = v_i . a_j */
            sv_gemm(0, 1, ni, nc, E, 1.0f, V + i * E, E, A + j * E, E, 0.0f, blk, nc);
            if ((rc = sv_recall_acc_block(acc, i, ni, j, nc, blk)) != SV_OK) goto done;
        }
    }
    rc = sv_recall_acc_result(acc, out);
    if (rc == SV_OK && (i2s_rank || s2i_rank)) {
        size_t *ri = SV__CAST(size_t *, sv__calloc(n_img + 1, sizeof(size_t), "retrieval ranks"));
        size_t *rs = SV__CAST(size_t *, sv__calloc(n_cap + 1, sizeof(size_t), "retrieval ranks"));
        if (!ri || !rs || (rc = sv_recall_acc_ranks(acc, ri, rs)) != SV_OK) {
            SV_FREE(ri); SV_FREE(rs);
            rc = rc != SV_OK ? rc : SV_ERR_NOMEM;
            goto done;
        }
        if (i2s_rank) { *i2s_rank = ri; if (n_images) *n_images = n_img; } else SV_FREE(ri);
        if (s2i_rank) { *s2i_rank = rs; if (n_captions) *n_captions = n_cap; } else SV_FREE(rs);
    }
done:
    sv_recall_acc_free(acc);
    SV_FREE(cap_utt); SV_FREE(cap_img); SV_FREE(img_row); SV_FREE(local);
    SV_FREE(A); SV_FREE(V); SV_FREE(wave); SV_FREE(len); SV_FREE(reg); SV_FREE(box); SV_FREE(blk);
    return rc;
}

SV_DEF int sv_eval_losses(sv_model *m, sv_ctx *c, const sv_data *d, int split, size_t batch,
                          size_t max_batches, uint64_t seed, sv_stats *out)
{
    const sv_config *cfg;
    size_t n, nbatches, k, b, R, Dimg, maxS, *list = NULL, *len = NULL;
    long *ids = NULL;
    float *wave = NULL, *reg = NULL, *box = NULL;
    double w_av = 0, w_aud = 0, s_av = 0, s_aud = 0, s_con = 0, s_div = 0, s_pen = 0, s_acc = 0,
           s_cppl = 0, s_pppl = 0, s_mf = 0, s_off = 0, s_macc = 0, s_on = 0, s_tv = 0, s_pv = 0;
    size_t n_masked = 0, km_T = 0;
    int *km = NULL;
    sv_rng saved;
    int rc = SV_OK, grad, training;
    if ((rc = sv__ev_check(m, c, d, split)) != SV_OK) return rc;
    if (!out) return sv__fail(SV_ERR_ARG, "NULL result");
    cfg = &m->cfg;
    R = cfg->img_regions; Dimg = cfg->img_dim;
    if (batch == 0) batch = 16;
    n = d->n[split];
    if (n == 0) return sv__fail(SV_ERR_ARG, "split %s is empty", sv_split_name(split));
    nbatches = (n + batch - 1) / batch;
    if (max_batches && nbatches > max_batches) nbatches = max_batches;
    maxS = sv__ev_max_len(m, d, split, SV_EVAL_MAX_SAMPLES);
    list = SV__CAST(size_t *, sv__calloc(batch, sizeof(size_t), "loss batch"));
    len = SV__CAST(size_t *, sv__calloc(batch, sizeof(size_t), "loss batch"));
    ids = SV__CAST(long *, sv__calloc(batch, sizeof(long), "loss batch"));
    wave = SV__CAST(float *, sv__calloc(batch, maxS * sizeof(float), "loss batch"));
    reg = SV__CAST(float *, sv__calloc(batch, R * Dimg * sizeof(float), "loss batch"));
    box = SV__CAST(float *, sv__calloc(batch, R * 4 * sizeof(float), "loss batch"));
    if (!list || !len || !ids || !wave || !reg || !box) { rc = SV_ERR_NOMEM; goto free_only; }
    if (d->targets && d->targets->has[split]) {   /* MT4SSL offline targets: crops start at 0 */
        km_T = sv__km_frames_of(d->targets, maxS);
        if (!(km = SV__CAST(int *, sv__calloc(batch * (km_T + 1), sizeof(int), "loss batch")))) { rc = SV_ERR_NOMEM; goto free_only; }
    }
    saved = *sv_ctx_rng(c);
    grad = sv_ctx_grad(c);
    training = sv_ctx_training(c);
    sv_ctx_set_grad(c, 0);
    sv_ctx_set_training(c, 0);
    for (k = 0; k < nbatches; k++) {
        size_t i0 = k * batch, nb = n - i0 < batch ? n - i0 : batch, S;
        int has_img = nb >= 2 && d->n_images > 0 && d->R == R && d->Dimg == Dimg;
        sv_batch bt;
        sv_stats st;
        /* each batch's masks from its own stream: the same numbers at every call */
        uint64_t bseed = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(k + 1));
        for (b = 0; b < nb; b++) {
            list[b] = i0 + b;
            ids[b] = d->image[split][i0 + b];
            if (ids[b] < 0 || (size_t)ids[b] >= d->n_images) has_img = 0;
        }
        if ((rc = sv__ev_fill_wave(m, d, split, list, nb, SV_EVAL_MAX_SAMPLES, wave, len, &S)) != SV_OK) goto done;
        memset(&bt, 0, sizeof bt);
        bt.B = nb; bt.S = S; bt.wave = wave; bt.wave_len = len;
        if (km) {
            const sv_km_targets *t = d->targets;
            size_t T = sv__km_frames_of(t, S), f;
            for (b = 0; b < nb; b++) {
                size_t u = list[b], F = sv__km_frames_of(t, len[b]), nl = t->offset[split][u + 1] - t->offset[split][u];
                for (f = 0; f < T; f++) km[b * T + f] = f < F && f < nl ? (int)t->labels[split][t->offset[split][u] + f] : -1;
            }
            bt.km = km;
            bt.km_T = T;
        }
        if (has_img) {
            for (b = 0; b < nb; b++)
                if ((rc = sv_data_image(d, (size_t)ids[b], reg + b * R * Dimg, box + b * R * 4)) != SV_OK) goto done;
            bt.R = R; bt.Dimg = Dimg; bt.regions = reg; bt.boxes = box; bt.image_id = ids;
            sv_ctx_reset(c);
            sv_rng_seed(sv_ctx_rng(c), bseed);
            if (!sv_model_loss(m, c, &bt, 1.0f, 0, &st)) { rc = sv_last_status() ? sv_last_status() : SV_ERR_NUMERIC; goto done; }
            s_av += (double)nb * st.loss_av;
            w_av += (double)nb;
        }
        sv_ctx_reset(c);
        sv_rng_seed(sv_ctx_rng(c), bseed);
        if (!sv_model_loss(m, c, &bt, 0.0f, 0, &st)) { rc = sv_last_status() ? sv_last_status() : SV_ERR_NUMERIC; goto done; }
        s_aud += (double)nb * st.loss_aud; s_con += (double)nb * st.contrastive;
        s_div += (double)nb * st.diversity; s_pen += (double)nb * st.feature_pen;
        s_acc += (double)nb * st.accuracy; s_cppl += (double)nb * st.code_ppl;
        s_pppl += (double)nb * st.prob_ppl; s_mf += (double)nb * st.mask_frac;
        s_off += (double)nb * st.mt4_offline; s_macc += (double)nb * st.mt4_acc; s_on += (double)nb * st.mt4_online;
        s_tv += (double)nb * st.target_var; s_pv += (double)nb * st.pred_var;
        w_aud += (double)nb;
        n_masked += st.n_masked;
        sv__ev_progress(c, "held-out losses", k + 1, nbatches);
    }
done:
    sv_ctx_reset(c);
    *sv_ctx_rng(c) = saved;
    sv_ctx_set_grad(c, grad);
    sv_ctx_set_training(c, training);
    if (rc == SV_OK) {
        memset(out, 0, sizeof *out);
        out->loss = NAN; out->tau = NAN;
        out->loss_av = w_av > 0 ? (float)(s_av / w_av) : NAN;
        out->loss_aud = w_aud > 0 ? (float)(s_aud / w_aud) : NAN;
        out->contrastive = w_aud > 0 ? (float)(s_con / w_aud) : NAN;
        out->diversity = w_aud > 0 ? (float)(s_div / w_aud) : NAN;
        out->feature_pen = w_aud > 0 ? (float)(s_pen / w_aud) : NAN;
        out->accuracy = w_aud > 0 ? (float)(s_acc / w_aud) : NAN;
        out->code_ppl = w_aud > 0 ? (float)(s_cppl / w_aud) : NAN;
        out->prob_ppl = w_aud > 0 ? (float)(s_pppl / w_aud) : NAN;
        out->mask_frac = w_aud > 0 ? (float)(s_mf / w_aud) : NAN;
        out->mt4_offline = w_aud > 0 ? (float)(s_off / w_aud) : NAN;
        out->mt4_acc = w_aud > 0 ? (float)(s_macc / w_aud) : NAN;
        out->mt4_online = w_aud > 0 ? (float)(s_on / w_aud) : NAN;
        out->target_var = w_aud > 0 ? (float)(s_tv / w_aud) : NAN;
        out->pred_var = w_aud > 0 ? (float)(s_pv / w_aud) : NAN;
        out->n_masked = n_masked;
    }
free_only:
    SV_FREE(list); SV_FREE(len); SV_FREE(ids); SV_FREE(wave); SV_FREE(reg); SV_FREE(box); SV_FREE(km);
    return rc;
}

static double sv__ev_frame_shift(const sv_config *cfg)
{
    size_t i, hop = 1;
    for (i = 0; i < cfg->n_conv; i++) hop *= cfg->conv_stride[i];
    return (double)hop / 16000.0;
}

SV_DEF size_t sv_eval_abx_bytes(const sv_model *m, const sv_data *d, int split)
{
    const sv_config *cfg;
    size_t f, frames = 0, L, C;
    const sv_item_set *it;
    if (!m || !d || split < 0 || split >= SV_SPLIT_COUNT || !d->has_items[split]) return 0;
    cfg = &m->cfg;
    L = cfg->n_shared + cfg->n_decoder;
    C = cfg->conv_dim[cfg->n_conv - 1];
    it = &d->items[split];
    for (f = 0; f < it->n_files; f++) {
        long u = sv_data_find(d, split, it->files[f]);
        if (u >= 0) frames += sv_config_frames(cfg, d->len[split][u]);
    }
    return frames * (C + (L + 1) * cfg->D) * sizeof(float);
}

SV_DEF int sv_eval_abx(sv_model *m, sv_ctx *c, const sv_data *d, int split, const sv_abx_opts *opt,
                       sv_abx_layer_result *res, size_t *n_layers)
{
    const sv_config *cfg;
    const sv_item_set *it;
    size_t L, nl, nf, f, l, rf, C;
    float **feats = NULL, **tmp = NULL;   /* feats[l * nf + f]: layer l (0 = cnn, 1 + k = Lk) of file f */
    size_t *nfr = NULL;
    sv_abx_opts o;
    double shift;
    int rc = SV_OK;
    if ((rc = sv__ev_check(m, c, d, split)) != SV_OK) return rc;
    if (!res || !n_layers) return sv__fail(SV_ERR_ARG, "NULL result");
    if (!d->has_items[split] || d->items[split].n_items == 0)
        return sv__fail(SV_ERR_ARG, "split %s has no ABX items (.item file)", sv_split_name(split));
    cfg = &m->cfg;
    it = &d->items[split];
    L = cfg->n_shared + cfg->n_decoder;
    nl = L + 2;
    nf = it->n_files;
    rf = sv_config_receptive_field(cfg);
    C = cfg->conv_dim[cfg->n_conv - 1];
    shift = sv__ev_frame_shift(cfg);
    o = opt ? *opt : sv_abx_default_opts();
    feats = SV__CAST(float **, sv__calloc(nl * nf, sizeof(float *), "abx features"));
    tmp = SV__CAST(float **, sv__calloc(L + 1, sizeof(float *), "abx features"));
    nfr = SV__CAST(size_t *, sv__calloc(nf, sizeof(size_t), "abx features"));
    if (!feats || !tmp || !nfr) { rc = SV_ERR_NOMEM; goto done; }
    for (f = 0; f < nf; f++) {
        long u = sv_data_find(d, split, it->files[f]);
        float *cnn = NULL, *owned;
        const float *x;
        size_t T = 0;
        if (u < 0 || d->len[split][u] < rf) continue;   /* its tokens are dropped by sv_abx */
        if ((rc = sv_data_audio(d, split, (size_t)u, &x, &owned)) != SV_OK) goto done;
        rc = sv_extract_all_layers(m, c, x, d->len[split][u], tmp, &cnn, &T);
        SV_FREE(owned);
        if (rc != SV_OK) goto done;
        feats[f] = cnn;
        for (l = 0; l <= L; l++) feats[(l + 1) * nf + f] = tmp[l];
        nfr[f] = T;
        sv__ev_progress(c, "abx features", f + 1, nf);
    }
    sv_ctx_reset(c);
    for (l = 0; l < nl; l++) {
        sv_abx_layer_result *r = &res[l];
        memset(r, 0, sizeof *r);
        r->layer = (int)l - 1;
        if (l == 0) snprintf(r->name, sizeof r->name, "cnn");
        else snprintf(r->name, sizeof r->name, "L%u", (unsigned)((l - 1) % 1000));
        r->dim = l == 0 ? C : cfg->D;
        rc = sv_abx(it, (const float *const *)(feats + l * nf), nfr, r->dim, shift, &o, &r->r);
        if (rc != SV_OK) goto done;
        sv__ev_progress(c, "abx layers", l + 1, nl);
    }
    *n_layers = nl;
done:
    if (feats) for (f = 0; f < nl * nf; f++) SV_FREE(feats[f]);
    SV_FREE(feats); SV_FREE(tmp); SV_FREE(nfr);
    return rc;
}

SV_DEF int sv_eval_abx_mfcc(const sv_data *d, int split, const sv_mfcc_opts *mfcc, const sv_abx_opts *opt,
                            sv_abx_layer_result *res)
{
    sv_mfcc_opts mo = mfcc ? *mfcc : sv_mfcc_default_opts();
    sv_abx_opts o = opt ? *opt : sv_abx_default_opts();
    const sv_item_set *it;
    float **feats;
    size_t *nfr, nf, f, dim;
    int rc;
    if (!d || !res || split < 0 || split >= SV_SPLIT_COUNT) return sv__fail(SV_ERR_ARG, "eval_abx_mfcc: bad arguments");
    if (!d->has_items[split] || d->items[split].n_items == 0)
        return sv__fail(SV_ERR_ARG, "split %s has no ABX items (.item file)", sv_split_name(split));
    if ((rc = sv__mfcc_check(&mo)) != SV_OK) return rc;
    it = &d->items[split];
    nf = it->n_files;
    dim = sv_mfcc_dim(&mo);
    feats = SV__CAST(float **, sv__calloc(nf, sizeof(float *), "abx mfcc"));
    nfr = SV__CAST(size_t *, sv__calloc(nf, sizeof(size_t), "abx mfcc"));
    if (!feats || !nfr) { rc = SV_ERR_NOMEM; goto done; }
    for (f = 0; f < nf; f++) {
        long u = sv_data_find(d, split, it->files[f]);
        size_t T;
        const float *x;
        float *owned;
        if (u < 0) continue;                            /* its tokens are dropped by sv_abx */
        T = sv_mfcc_frames(&mo, d->len[split][u]);
        if (!T) continue;
        if (!(feats[f] = SV__CAST(float *, sv__alloc(T * dim * sizeof(float), "abx mfcc")))) { rc = SV_ERR_NOMEM; goto done; }
        if ((rc = sv_data_audio(d, split, (size_t)u, &x, &owned)) != SV_OK) goto done;
        rc = sv_mfcc(&mo, x, d->len[split][u], feats[f]);
        SV_FREE(owned);
        if (rc != SV_OK) goto done;
        nfr[f] = T;
    }
    memset(res, 0, sizeof *res);
    snprintf(res->name, sizeof res->name, "mfcc");
    res->layer = -2;
    res->dim = dim;
    rc = sv_abx(it, (const float *const *)feats, nfr, dim,
                (double)(mo.frame_shift * mo.subsample) / (double)mo.sample_rate, &o, &res->r);
done:
    if (feats) for (f = 0; f < nf; f++) SV_FREE(feats[f]);
    SV_FREE(feats);
    SV_FREE(nfr);
    return rc;
}

/* ======================================================================================
   12 The built-in corpus (optional)
   ====================================================================================== */
#ifndef SSL_VGS_NO_CORPUS
/* ---------------------------------------------------------------- 12.1 phones */

/* Spectral shapes of the noise sources (frication and bursts) fed to the parallel branch. */
enum { SV__N_NONE, SV__N_FLAT, SV__N_DENTAL, SV__N_ALV, SV__N_PAL,
       SV__N_LAB_BURST, SV__N_ALV_BURST, SV__N_VEL_BURST };

#define SV__OFF (-99.0f) /* dB meaning "source off" */

typedef struct sv__phone_def {
    const char *name;
    int cls, voiced;
    float dur;        /* ms, stressed, at rate 1 */
    float f[3];       /* F1-F3 targets of an adult male, Hz (stops: the locus) */
    float fe[3];      /* diphthongs: the F1-F3 glided to (0 = steady) */
    float av;         /* voicing level, dB re a vowel (stops: during voice onset) */
    float af;         /* frication or burst level, dB re S */
    int noise;        /* SV__N_*: frication or burst spectrum */
    float fnz;        /* nasal antiresonance, Hz (0 = oral) */
} sv__phone_def;

/* Vowel formants: Peterson & Barney (1952) male averages. Diphthong end points, consonant loci and
   the sonorant targets follow Klatt (1980) and the usual textbook values (Stevens 1998). */
static const sv__phone_def sv__phones[] = {
    /* name  class               vcd dur    F1   F2    F3      end F1 F2  F3       AV      AF     noise   FNZ */
    {"AA", SV_PHONE_VOWEL,       1, 130, {730, 1090, 2440}, {0, 0, 0},        0, SV__OFF, SV__N_NONE, 0},
    {"AE", SV_PHONE_VOWEL,       1, 130, {660, 1720, 2410}, {0, 0, 0},        0, SV__OFF, SV__N_NONE, 0},
    {"AH", SV_PHONE_VOWEL,       1,  80, {640, 1190, 2390}, {0, 0, 0},        0, SV__OFF, SV__N_NONE, 0},
    {"AO", SV_PHONE_VOWEL,       1, 130, {570,  840, 2410}, {0, 0, 0},        0, SV__OFF, SV__N_NONE, 0},
    {"AW", SV_PHONE_DIPHTHONG,   1, 170, {710, 1220, 2500}, {450, 900, 2350}, 0, SV__OFF, SV__N_NONE, 0},
    {"AY", SV_PHONE_DIPHTHONG,   1, 170, {710, 1220, 2500}, {400, 1950, 2600}, 0, SV__OFF, SV__N_NONE, 0},
    {"EH", SV_PHONE_VOWEL,       1,  90, {530, 1840, 2480}, {0, 0, 0},        0, SV__OFF, SV__N_NONE, 0},
    {"ER", SV_PHONE_VOWEL,       1, 120, {490, 1350, 1690}, {0, 0, 0},        0, SV__OFF, SV__N_NONE, 0},
    {"EY", SV_PHONE_DIPHTHONG,   1, 150, {530, 1840, 2480}, {330, 2200, 2850}, 0, SV__OFF, SV__N_NONE, 0},
    {"IH", SV_PHONE_VOWEL,       1,  80, {390, 1990, 2550}, {0, 0, 0},        0, SV__OFF, SV__N_NONE, 0},
    {"IY", SV_PHONE_VOWEL,       1, 120, {270, 2290, 3010}, {0, 0, 0},        0, SV__OFF, SV__N_NONE, 0},
    {"OW", SV_PHONE_DIPHTHONG,   1, 150, {570,  900, 2400}, {420, 780, 2300}, 0, SV__OFF, SV__N_NONE, 0},
    {"OY", SV_PHONE_DIPHTHONG,   1, 180, {570,  840, 2410}, {400, 1950, 2600}, 0, SV__OFF, SV__N_NONE, 0},
    {"UH", SV_PHONE_VOWEL,       1,  90, {440, 1020, 2240}, {0, 0, 0},        0, SV__OFF, SV__N_NONE, 0},
    {"UW", SV_PHONE_VOWEL,       1, 120, {300,  870, 2240}, {0, 0, 0},        0, SV__OFF, SV__N_NONE, 0},
    /* stops: closure, burst, then voice onset (labial locus: all formants low; alveolar: F2 toward
       1800 Hz; velar: computed from the next vowel, F2 and F3 pinched together) */
    {"B",  SV_PHONE_STOP,        1,  70, {200,  800, 2200}, {0, 0, 0},       -6,  -10, SV__N_LAB_BURST, 0},
    {"D",  SV_PHONE_STOP,        1,  65, {200, 1800, 2700}, {0, 0, 0},       -6,   -6, SV__N_ALV_BURST, 0},
    {"G",  SV_PHONE_STOP,        1,  75, {200, 1800, 2100}, {0, 0, 0},       -6,   -6, SV__N_VEL_BURST, 0},
    {"P",  SV_PHONE_STOP,        0, 100, {200,  800, 2200}, {0, 0, 0},  SV__OFF,   -4, SV__N_LAB_BURST, 0},
    {"T",  SV_PHONE_STOP,        0,  95, {200, 1800, 2700}, {0, 0, 0},  SV__OFF,    0, SV__N_ALV_BURST, 0},
    {"K",  SV_PHONE_STOP,        0, 105, {200, 1800, 2100}, {0, 0, 0},  SV__OFF,    0, SV__N_VEL_BURST, 0},
    {"CH", SV_PHONE_AFFRICATE,   0, 120, {300, 1900, 2500}, {0, 0, 0},  SV__OFF,   -2, SV__N_PAL, 0},
    {"JH", SV_PHONE_AFFRICATE,   1, 100, {300, 1900, 2500}, {0, 0, 0},      -10,   -6, SV__N_PAL, 0},
    /* fricatives: sibilants strong and high, non-sibilants weak and flat; voiced ones add voicing */
    {"F",  SV_PHONE_FRICATIVE,   0, 100, {330, 1100, 2300}, {0, 0, 0},  SV__OFF,  -22, SV__N_FLAT, 0},
    {"V",  SV_PHONE_FRICATIVE,   1,  60, {330, 1100, 2300}, {0, 0, 0},       -6,  -24, SV__N_FLAT, 0},
    {"TH", SV_PHONE_FRICATIVE,   0,  95, {330, 1400, 2500}, {0, 0, 0},  SV__OFF,  -24, SV__N_DENTAL, 0},
    {"DH", SV_PHONE_FRICATIVE,   1,  45, {330, 1400, 2500}, {0, 0, 0},       -6,  -26, SV__N_DENTAL, 0},
    {"S",  SV_PHONE_FRICATIVE,   0, 115, {330, 1700, 2600}, {0, 0, 0},  SV__OFF,    0, SV__N_ALV, 0},
    {"Z",  SV_PHONE_FRICATIVE,   1,  85, {330, 1700, 2600}, {0, 0, 0},      -12,   -4, SV__N_ALV, 0},
    {"SH", SV_PHONE_FRICATIVE,   0, 115, {330, 1900, 2400}, {0, 0, 0},  SV__OFF,    0, SV__N_PAL, 0},
    {"ZH", SV_PHONE_FRICATIVE,   1,  80, {330, 1900, 2400}, {0, 0, 0},      -12,   -4, SV__N_PAL, 0},
    {"HH", SV_PHONE_ASPIRATE,    0,  65, {500, 1500, 2500}, {0, 0, 0},  SV__OFF, SV__OFF, SV__N_NONE, 0},
    /* nasals: murmur formant near 250 Hz, weak upper formants, an antiresonance by place */
    {"M",  SV_PHONE_NASAL,       1,  70, {250, 1100, 2200}, {0, 0, 0},       -4, SV__OFF, SV__N_NONE, 1000},
    {"N",  SV_PHONE_NASAL,       1,  60, {250, 1500, 2500}, {0, 0, 0},       -4, SV__OFF, SV__N_NONE, 1800},
    {"NG", SV_PHONE_NASAL,       1,  75, {250, 2000, 2600}, {0, 0, 0},       -4, SV__OFF, SV__N_NONE, 2800},
    {"L",  SV_PHONE_LIQUID,      1,  60, {360, 1300, 2700}, {0, 0, 0},        0, SV__OFF, SV__N_NONE, 0},
    {"R",  SV_PHONE_LIQUID,      1,  60, {310, 1060, 1600}, {0, 0, 0},        0, SV__OFF, SV__N_NONE, 0},
    {"W",  SV_PHONE_GLIDE,       1,  55, {300,  610, 2200}, {0, 0, 0},        0, SV__OFF, SV__N_NONE, 0},
    {"Y",  SV_PHONE_GLIDE,       1,  50, {260, 2070, 3000}, {0, 0, 0},        0, SV__OFF, SV__N_NONE, 0}
};

#define SV__N_PHONES ((int)(sizeof sv__phones / sizeof sv__phones[0]))

SV_DEF int sv_phone_count(void) { return SV__N_PHONES; }
SV_DEF const char *sv_phone_name(int id) { return id >= 0 && id < SV__N_PHONES ? sv__phones[id].name : NULL; }
SV_DEF int sv_phone_class(int id) { return id >= 0 && id < SV__N_PHONES ? sv__phones[id].cls : -1; }

SV_DEF int sv_phone_find(const char *name)
{
    int i;
    for (i = 0; name && i < SV__N_PHONES; i++)
        if (strcmp(sv__phones[i].name, name) == 0) return i;
    return -1;
}

static int sv__phone_is_vowel(int id)
{
    return id >= 0 && (sv__phones[id].cls == SV_PHONE_VOWEL || sv__phones[id].cls == SV_PHONE_DIPHTHONG);
}

/* ---------------------------------------------------------------- 12.2 lexicon */

enum { SV__W_FUNC = 1,     /* function word: reduced, shorter */
       SV__W_CAPTION = 2,  /* used by the caption grammar */
       SV__W_OOD = 4 };    /* used by the out-of-domain carrier phrases */

typedef struct sv__word_def { const char *word, *pron; int flags; } sv__word_def;

/* CMU-dictionary style pronunciations without stress. The caption words alone cover every phone
   (ZH only in "beige", OY only in "coin", UH only in "look", AW only in "found"); the
   out-of-domain words give every phone further contexts that captions never have. */
static const sv__word_def sv__words[] = {
    /* carrier and function words of the captions */
    {"a", "AH", SV__W_FUNC | SV__W_CAPTION}, {"an", "AH N", SV__W_FUNC | SV__W_CAPTION},
    {"the", "DH AH", SV__W_FUNC | SV__W_CAPTION | SV__W_OOD},
    {"there", "DH EH R", SV__W_FUNC | SV__W_CAPTION}, {"is", "IH Z", SV__W_FUNC | SV__W_CAPTION | SV__W_OOD},
    {"i", "AY", SV__W_FUNC | SV__W_CAPTION}, {"see", "S IY", SV__W_CAPTION},
    {"found", "F AW N D", SV__W_CAPTION}, {"look", "L UH K", SV__W_CAPTION},
    {"this", "DH IH S", SV__W_FUNC | SV__W_CAPTION}, {"picture", "P IH K CH ER", SV__W_CAPTION},
    {"shows", "SH OW Z", SV__W_CAPTION}, {"image", "IH M IH JH", SV__W_CAPTION},
    {"has", "HH AE Z", SV__W_CAPTION}, {"with", "W IH TH", SV__W_FUNC | SV__W_CAPTION},
    {"and", "AE N D", SV__W_FUNC | SV__W_CAPTION | SV__W_OOD}, {"of", "AH V", SV__W_FUNC | SV__W_CAPTION},
    {"to", "T UW", SV__W_FUNC | SV__W_CAPTION}, {"left", "L EH F T", SV__W_CAPTION},
    {"right", "R AY T", SV__W_CAPTION}, {"above", "AH B AH V", SV__W_CAPTION},
    {"over", "OW V ER", SV__W_CAPTION}, {"on", "AA N", SV__W_FUNC | SV__W_CAPTION},
    {"top", "T AA P", SV__W_CAPTION}, {"under", "AH N D ER", SV__W_CAPTION},
    {"below", "B IH L OW", SV__W_CAPTION}, {"beneath", "B IH N IY TH", SV__W_CAPTION},
    {"next", "N EH K S T", SV__W_CAPTION | SV__W_OOD}, {"beside", "B IH S AY D", SV__W_CAPTION},
    {"in", "IH N", SV__W_FUNC | SV__W_CAPTION}, {"middle", "M IH D AH L", SV__W_CAPTION},
    {"at", "AE T", SV__W_FUNC | SV__W_CAPTION}, {"bottom", "B AA T AH M", SV__W_CAPTION},
    /* sizes */
    {"small", "S M AO L", SV__W_CAPTION}, {"little", "L IH T AH L", SV__W_CAPTION},
    {"tiny", "T AY N IY", SV__W_CAPTION}, {"big", "B IH G", SV__W_CAPTION},
    {"large", "L AA R JH", SV__W_CAPTION}, {"huge", "HH Y UW JH", SV__W_CAPTION},
    /* colours, in SV_COLOUR_* order */
    {"red", "R EH D", SV__W_CAPTION}, {"green", "G R IY N", SV__W_CAPTION},
    {"blue", "B L UW", SV__W_CAPTION}, {"yellow", "Y EH L OW", SV__W_CAPTION},
    {"orange", "AO R AH N JH", SV__W_CAPTION}, {"purple", "P ER P AH L", SV__W_CAPTION},
    {"pink", "P IH NG K", SV__W_CAPTION}, {"beige", "B EY ZH", SV__W_CAPTION},
    /* shapes and their synonyms */
    {"circle", "S ER K AH L", SV__W_CAPTION}, {"disc", "D IH S K", SV__W_CAPTION},
    {"coin", "K OY N", SV__W_CAPTION}, {"square", "S K W EH R", SV__W_CAPTION},
    {"box", "B AA K S", SV__W_CAPTION}, {"block", "B L AA K", SV__W_CAPTION},
    {"triangle", "T R AY AE NG G AH L", SV__W_CAPTION}, {"cross", "K R AO S", SV__W_CAPTION},
    {"plus", "P L AH S", SV__W_CAPTION}, {"ring", "R IH NG", SV__W_CAPTION},
    {"hoop", "HH UW P", SV__W_CAPTION}, {"diamond", "D AY M AH N D", SV__W_CAPTION},
    /* out-of-domain carrier words and word-list items */
    {"please", "P L IY Z", SV__W_OOD}, {"say", "S EY", SV__W_OOD}, {"again", "AH G EH N", SV__W_OOD},
    {"word", "W ER D", SV__W_OOD}, {"now", "N AW", SV__W_OOD}, {"house", "HH AW S", SV__W_OOD},
    {"water", "W AO T ER", SV__W_OOD}, {"judge", "JH AH JH", SV__W_OOD},
    {"vision", "V IH ZH AH N", SV__W_OOD}, {"measure", "M EH ZH ER", SV__W_OOD},
    {"usual", "Y UW ZH UW AH L", SV__W_OOD}, {"garage", "G ER AA ZH", SV__W_OOD},
    {"chair", "CH EH R", SV__W_OOD}, {"thank", "TH AE NG K", SV__W_OOD},
    {"think", "TH IH NG K", SV__W_OOD}, {"bath", "B AE TH", SV__W_OOD}, {"wood", "W UH D", SV__W_OOD},
    {"foot", "F UH T", SV__W_OOD}, {"push", "P UH SH", SV__W_OOD}, {"book", "B UH K", SV__W_OOD},
    {"sugar", "SH UH G ER", SV__W_OOD}, {"toy", "T OY", SV__W_OOD}, {"boy", "B OY", SV__W_OOD},
    {"voice", "V OY S", SV__W_OOD}, {"noise", "N OY Z", SV__W_OOD}, {"cow", "K AW", SV__W_OOD},
    {"mouse", "M AW S", SV__W_OOD}, {"day", "D EY", SV__W_OOD}, {"play", "P L EY", SV__W_OOD},
    {"rain", "R EY N", SV__W_OOD}, {"go", "G OW", SV__W_OOD}, {"road", "R OW D", SV__W_OOD},
    {"jump", "JH AH M P", SV__W_OOD}, {"fish", "F IH SH", SV__W_OOD}, {"yes", "Y EH S", SV__W_OOD},
    {"young", "Y AH NG", SV__W_OOD}, {"hot", "HH AA T", SV__W_OOD}, {"cat", "K AE T", SV__W_OOD},
    {"dog", "D AO G", SV__W_OOD}, {"sun", "S AH N", SV__W_OOD}, {"zoo", "Z UW", SV__W_OOD},
    {"leaf", "L IY F", SV__W_OOD}, {"feather", "F EH DH ER", SV__W_OOD},
    {"mother", "M AH DH ER", SV__W_OOD}, {"weather", "W EH DH ER", SV__W_OOD},
    {"church", "CH ER CH", SV__W_OOD}, {"shoe", "SH UW", SV__W_OOD}, {"cheese", "CH IY Z", SV__W_OOD},
    {"king", "K IH NG", SV__W_OOD}, {"year", "Y IH R", SV__W_OOD}, {"good", "G UH D", SV__W_OOD}
};

#define SV__N_WORDS ((int)(sizeof sv__words / sizeof sv__words[0]))

SV_DEF int sv_word_count(void) { return SV__N_WORDS; }
SV_DEF const char *sv_word_name(int id) { return id >= 0 && id < SV__N_WORDS ? sv__words[id].word : NULL; }

SV_DEF size_t sv_word_phones(int id, int *out, size_t cap)
{
    const char *p;
    size_t n = 0;
    if (id < 0 || id >= SV__N_WORDS) return 0;
    for (p = sv__words[id].pron; *p;) {
        char tok[4];
        size_t k = 0;
        while (*p == ' ') p++;
        while (*p && *p != ' ' && k < sizeof tok - 1) tok[k++] = *p++;
        tok[k] = 0;
        if (k == 0) break;
        if (out && n < cap) out[n] = sv_phone_find(tok);
        n++;
    }
    return n;
}

static int sv__word_find(const char *w)
{
    int i;
    for (i = 0; i < SV__N_WORDS; i++)
        if (strcmp(sv__words[i].word, w) == 0) return i;
    SV_ASSERT(0 && "word missing from the lexicon");
    return 0;
}

/* ---------------------------------------------------------------- 12.3 formant synthesiser */

/* Klatt (1980) second-order digital resonator, T = 1/fs:
       y[n] = A x[n] + B y[n-1] + C y[n-2],
       C = -exp(-2 pi BW T), B = 2 exp(-pi BW T) cos(2 pi F T), A = 1 - B - C (unity gain at DC).
   The antiresonator (nasal zero) is its inverse: y[n] = A' x[n] + B' x[n-1] + C' x[n-2] with
   A' = 1/A, B' = -B/A, C' = -C/A. The parallel (frication) branch uses the same poles with zeros
   at DC and Nyquist and gain (1 + C)/2, a band-pass whose peak gain is about 1. */
typedef struct sv__reso { float a, b, c, s1, s2, x1, x2; } sv__reso;

static void sv__reso_set(sv__reso *r, double f, double bw)
{
    const double T = 1.0 / SV_CORPUS_RATE, pi = 3.14159265358979323846;
    double b, c;
    if (f > 0.45 * SV_CORPUS_RATE) f = 0.45 * SV_CORPUS_RATE;
    if (f < 20.0) f = 20.0;
    if (bw < 10.0) bw = 10.0;
    c = -exp(-2.0 * pi * bw * T);
    b = 2.0 * exp(-pi * bw * T) * cos(2.0 * pi * f * T);
    r->a = (float)(1.0 - b - c);
    r->b = (float)b;
    r->c = (float)c;
}

static float sv__reso_run(sv__reso *r, float x)
{
    float y = r->a * x + r->b * r->s1 + r->c * r->s2;
    r->s2 = r->s1;
    r->s1 = y;
    return y;
}

static float sv__antireso_run(sv__reso *r, float x)
{
    float y = (x - r->b * r->x1 - r->c * r->x2) / r->a;
    r->x2 = r->x1;
    r->x1 = x;
    return y;
}

static float sv__bandpass_run(sv__reso *r, float x)
{
    float y = 0.5f * (1.0f + r->c) * (x - r->x2) + r->b * r->s1 + r->c * r->s2;
    r->x2 = r->x1;
    r->x1 = x;
    r->s2 = r->s1;
    r->s1 = y;
    return y;
}

/* Synthesis parameters, one vector per control frame (Klatt updates his every 5 ms; we use 2 ms).
   Amplitudes are linear; frequencies and bandwidths in Hz. */
enum {
    SV__P_F0,
    SV__P_F1, SV__P_F2, SV__P_F3, SV__P_F4, SV__P_F5,
    SV__P_B1, SV__P_B2, SV__P_B3, SV__P_B4, SV__P_B5,
    SV__P_FNZ, SV__P_BNZ,                  /* nasal zero; equal to the nasal pole when oral */
    SV__P_AV, SV__P_AH, SV__P_AF,          /* voicing, aspiration, frication amplitudes */
    SV__P_PF1, SV__P_PF2, SV__P_PF3,       /* parallel (noise) resonators */
    SV__P_PB1, SV__P_PB2, SV__P_PB3,
    SV__P_PG1, SV__P_PG2, SV__P_PG3,
    SV__P_AB,                              /* parallel bypass: flat noise */
    SV__NP
};

#define SV__CTL 32            /* control period in samples: 2 ms */
#define SV__FNP 270.0f        /* nasal pole, Hz (Klatt 1980) */
#define SV__AH_STOP (-18.0f)  /* aspiration after a voiceless release, dB re a vowel */
#define SV__AH_HH (-18.0f)    /* /h/, dB re a vowel */
#define SV__VOICE_BAR (-26.0f)/* voicing under a voiced closure, dB re a vowel */
#define SV__TEMPO 0.8f        /* connected speech runs faster than the table's citation durations */

static float sv__syn_db(float db) { return db <= SV__OFF ? 0.0f : (float)pow(10.0, db / 20.0); }

/* F1-F3 of a phone at fraction frac of its duration: diphthongs hold the first target for a
   fifth of the phone, glide (smoothstep) and approach the second at the end. */
static void sv__syn_formants(const sv__phone_def *q, float frac, float *f)
{
    int j;
    float w = (frac - 0.2f) / 0.7f;
    w = w < 0 ? 0 : w > 1 ? 1 : w;
    w = w * w * (3.0f - 2.0f * w);
    for (j = 0; j < 3; j++) f[j] = q->fe[0] > 0 ? (1.0f - w) * q->f[j] + w * q->fe[j] : q->f[j];
}

/* The vowel a consonant coarticulates with: the next one (its onset) inside the phrase, else the
   previous one (its offset), else a neutral schwa. */
static void sv__syn_vowel_near(const int *ph, size_t n, size_t i, float *f)
{
    size_t j;
    for (j = i + 1; j < n && ph[j] >= 0; j++)
        if (sv__phone_is_vowel(ph[j])) { sv__syn_formants(&sv__phones[ph[j]], 0.0f, f); return; }
    for (j = i; j-- > 0 && ph[j] >= 0;)
        if (sv__phone_is_vowel(ph[j])) { sv__syn_formants(&sv__phones[ph[j]], 1.0f, f); return; }
    f[0] = 500.0f; f[1] = 1500.0f; f[2] = 2500.0f;
}

/* Spectrum of the noise through the parallel branch (frequencies for an adult male, scaled by k):
   S/Z a peak at 4-8 kHz, SH/ZH lower and broader (2.5-4 kHz), F/V flat, TH/DH flat and weak,
   bursts: labial low and diffuse, alveolar high (above 4 kHz), velar compact at the next vowel's
   F2 (f2v, already scaled). */
static void sv__syn_noise_shape(int kind, float k, float f2v, float *p)
{
    float pf[3] = {1000, 2000, 3000}, pb[3] = {500, 500, 500}, pg[3] = {0, 0, 0}, ab = 0, ks = k;
    int j;
    switch (kind) {
    case SV__N_FLAT: ab = 1.0f; break;
    case SV__N_DENTAL: ab = 0.8f; pf[0] = 5000; pb[0] = 2500; pg[0] = 0.5f; break;
    case SV__N_ALV:
        pf[0] = 4800; pb[0] = 1200; pg[0] = 0.5f;
        pf[1] = 5800; pb[1] = 1400; pg[1] = 1.0f;
        pf[2] = 7000; pb[2] = 1600; pg[2] = 0.6f; break;
    case SV__N_PAL:
        pf[0] = 2800; pb[0] = 700; pg[0] = 0.8f;
        pf[1] = 3500; pb[1] = 1000; pg[1] = 1.0f;
        pf[2] = 4600; pb[2] = 1500; pg[2] = 0.4f; break;
    case SV__N_LAB_BURST: ab = 0.5f; pf[0] = 900; pb[0] = 1400; pg[0] = 0.8f; break;
    case SV__N_ALV_BURST:
        pf[0] = 4200; pb[0] = 2000; pg[0] = 0.7f;
        pf[1] = 5500; pb[1] = 2000; pg[1] = 1.0f;
        pf[2] = 6800; pb[2] = 2000; pg[2] = 0.5f; break;
    case SV__N_VEL_BURST:
        ks = 1.0f;
        pf[0] = f2v; pb[0] = 350; pg[0] = 1.3f;
        pf[1] = 1.5f * f2v; pb[1] = 900; pg[1] = 0.3f; break;
    default: break;
    }
    for (j = 0; j < 3; j++) {
        p[SV__P_PF1 + j] = pf[j] * ks;
        p[SV__P_PB1 + j] = pb[j] * ks;
        p[SV__P_PG1 + j] = pg[j];
    }
    p[SV__P_AB] = ab;
}

/* Target parameters at time t (ms) into phone i: the acoustic-phonetic rules live here.
   dur[i] is the phone's duration (ms), fj[3i..3i+2] its per-token formant jitter. */
static void sv__syn_targets(const sv_speaker *spk, const int *ph, const float *dur, const float *fj,
                            size_t n, size_t i, float t, float *p)
{
    const sv__phone_def *q;
    float f[3], v[3], d = dur[i], frac = d > 0 ? t / d : 0, k = spk->vtl_scale;
    int j, noise = SV__N_NONE;
    if (ph[i] < 0) {
        /* a pause holds the neighbouring phone's vocal-tract shape, silently, so formants do not
           glide in from nowhere when speech resumes */
        if (i + 1 < n && ph[i + 1] >= 0) sv__syn_targets(spk, ph, dur, fj, n, i + 1, 0.0f, p);
        else if (i > 0 && ph[i - 1] >= 0) sv__syn_targets(spk, ph, dur, fj, n, i - 1, dur[i - 1], p);
        else {
            int schwa = sv_phone_find("AH");
            sv__syn_targets(spk, &schwa, dur, fj, 1, 0, 0.0f, p);
        }
        p[SV__P_AV] = p[SV__P_AH] = p[SV__P_AF] = p[SV__P_AB] = 0;
        p[SV__P_PG1] = p[SV__P_PG2] = p[SV__P_PG3] = 0;
        return;
    }
    q = &sv__phones[ph[i]];
    if (frac > 1) frac = 1;
    sv__syn_formants(q, frac, f);
    sv__syn_vowel_near(ph, n, i, v);
    /* Klatt's default bandwidths; a breathy (partly open) glottis damps F1 */
    p[SV__P_B1] = 70.0f + 60.0f * spk->breathiness; p[SV__P_B2] = 100; p[SV__P_B3] = 140;
    p[SV__P_B4] = 250; p[SV__P_B5] = 300;
    p[SV__P_FNZ] = SV__FNP; p[SV__P_BNZ] = 100;
    p[SV__P_AV] = p[SV__P_AH] = p[SV__P_AF] = 0;

    switch (q->cls) {
    case SV_PHONE_VOWEL: case SV_PHONE_DIPHTHONG:
        p[SV__P_AV] = 1.0f;
        break;
    case SV_PHONE_LIQUID: case SV_PHONE_GLIDE:
        p[SV__P_AV] = sv__syn_db(q->av);
        p[SV__P_B1] += 20; p[SV__P_B2] = 130; p[SV__P_B3] = 200;
        break;
    case SV_PHONE_NASAL:
        /* murmur: oral cavity closed, sound leaves through the nose; the side branch adds a zero */
        p[SV__P_AV] = sv__syn_db(q->av);
        p[SV__P_B1] = 100; p[SV__P_B2] = 300; p[SV__P_B3] = 400;
        p[SV__P_FNZ] = q->fnz * k; p[SV__P_BNZ] = 150;
        break;
    case SV_PHONE_FRICATIVE:
        /* the front cavity shapes the noise (parallel branch); F2 partly follows the vowel */
        f[1] = 0.75f * f[1] + 0.25f * v[1];
        p[SV__P_B1] = 200;
        if (q->voiced) p[SV__P_AV] = sv__syn_db(q->av);
        p[SV__P_AF] = sv__syn_db(q->af);
        noise = q->noise;
        break;
    case SV_PHONE_ASPIRATE:
        /* /h/: turbulence at the glottis excites the following vowel's formants (open glottis:
           wide B1) */
        for (j = 0; j < 3; j++) f[j] = v[j];
        p[SV__P_B1] = 300;
        p[SV__P_AH] = sv__syn_db(SV__AH_HH);
        break;
    case SV_PHONE_STOP: {
        /* closure (silence or a voice bar), burst, then voice onset: 40-80 ms of aspiration after
           a voiceless release, 0-20 ms after a voiced one; formants leave the place's locus */
        float clos = (q->voiced ? 0.65f : 0.5f) * d, burst = d * 0.15f < 7.0f ? d * 0.15f : 7.0f;
        if (q->noise == SV__N_VEL_BURST) {
            f[1] = v[1] + 150.0f;
            f[1] = f[1] < 1300.0f ? 1300.0f : f[1] > 2300.0f ? 2300.0f : f[1];
            f[2] = f[1] + 300.0f;
        }
        if (t < clos) {
            if (q->voiced) { p[SV__P_AV] = sv__syn_db(SV__VOICE_BAR); p[SV__P_B2] = 300; p[SV__P_B3] = 400; }
        } else if (t < clos + burst) {
            p[SV__P_AF] = sv__syn_db(q->af);
            if (q->voiced) p[SV__P_AV] = sv__syn_db(SV__VOICE_BAR);
            noise = q->noise;
        } else {
            for (j = 0; j < 3; j++) f[j] = 0.5f * (f[j] + v[j]);
            if (q->voiced) { p[SV__P_AV] = sv__syn_db(q->av); p[SV__P_AH] = sv__syn_db(-20.0f); }
            else { p[SV__P_AH] = sv__syn_db(SV__AH_STOP); p[SV__P_B1] = 250; }
        }
        break;
    }
    case SV_PHONE_AFFRICATE: {
        /* a short alveolar stop released into a palato-alveolar fricative */
        float clos = 0.35f * d, burst = 5.0f;
        f[1] = 0.75f * f[1] + 0.25f * v[1];
        if (t < clos) {
            if (q->voiced) p[SV__P_AV] = sv__syn_db(SV__VOICE_BAR);
        } else if (t < clos + burst) {
            p[SV__P_AF] = sv__syn_db(-6.0f);
            noise = SV__N_ALV_BURST;
        } else {
            p[SV__P_AF] = sv__syn_db(q->af);
            if (q->voiced) p[SV__P_AV] = sv__syn_db(q->av);
            p[SV__P_B1] = 200;
            noise = q->noise;
        }
        break;
    }
    default: break;
    }
    /* vocal-tract length scales every formant; F4, F5 are Klatt's fixed defaults */
    for (j = 0; j < 3; j++) p[SV__P_F1 + j] = f[j] * fj[3 * i + (size_t)j] * k;
    p[SV__P_F4] = 3300.0f * k;
    p[SV__P_F5] = 3750.0f * k;
    sv__syn_noise_shape(noise, k, v[1] * k, p);
    if (noise == SV__N_NONE) p[SV__P_AF] = 0;
}

/* Time constant (ms) of the smoothing of each parameter track: formants move over tens of ms
   between targets (coarticulation), source amplitudes switch within a few ms, F0 is slow. */
static float sv__syn_tau_ms(int j)
{
    if (j == SV__P_F0) return 30.0f;
    if (j <= SV__P_BNZ) return 12.0f;
    return 2.5f;
}

/* Synthesise n phones (ids, or -1 for a pause). Allocates *out_audio. The engine of both
   sv_synth_phones() and the corpus. */
static int sv__syn_run(const sv_speaker *spk, const int *ph, const float *stretch, size_t n,
                       sv_rng *rng, float **out_audio, size_t *out_n, sv_segment *seg)
{
    const double fs = SV_CORPUS_RATE;
    float *dur = NULL, *fj = NULL, *fr = NULL, *x = NULL;
    size_t *start = NULL, i, s, total, nf, k;
    float f0lo = spk->female ? 165.0f : 85.0f, f0hi = spk->female ? 255.0f : 155.0f;
    float walk = 0, f0_utt;
    int j, st = SV_OK;

    *out_audio = NULL;
    *out_n = 0;
    dur = SV__CAST(float *, sv__calloc(n, 4 * sizeof(float), "synth durations"));
    start = SV__CAST(size_t *, sv__calloc(n + 1, sizeof(size_t), "synth boundaries"));
    if (!dur || !start) { st = SV_ERR_NOMEM; goto done; }
    fj = dur + n;

    /* 1. Durations, whole samples so that boundaries are exact. Speaking rate divides them, and
          each token varies by about 12 % (log-normal). Per-token formant jitter: 3 %. */
    for (i = 0; i < n; i++) {
        double ms, sc = stretch ? stretch[i] : 1.0;
        if (ph[i] < 0) ms = 150.0 * sc;
        else {
            const sv__phone_def *q = &sv__phones[ph[i]];
            double lo = q->cls == SV_PHONE_STOP || q->cls == SV_PHONE_AFFRICATE ? 40.0 : 25.0;
            ms = q->dur * SV__TEMPO * sc / spk->rate * exp(0.12 * sv_rng_normal(rng));
            if (ms < lo) ms = lo;
        }
        for (j = 0; j < 3; j++) fj[3 * i + (size_t)j] = (float)exp(0.03 * sv_rng_normal(rng));
        start[i + 1] = start[i] + (size_t)(ms * fs / 1000.0 + 0.5);
        dur[i] = (float)((double)(start[i + 1] - start[i]) * 1000.0 / fs);
    }
    total = start[n];
    if (total == 0) { st = sv__fail(SV_ERR_ARG, "synth: empty phone sequence"); goto done; }
    nf = total / SV__CTL + 2;
    if (!sv__mul_ok(nf, SV__NP * sizeof(float), &s)) { st = sv__fail(SV_ERR_NOMEM, "synth: too long"); goto done; }
    fr = SV__CAST(float *, sv__alloc(s, "synth parameter tracks"));
    x = SV__CAST(float *, sv__alloc(total * sizeof(float), "synth audio"));
    if (!fr || !x) { st = SV_ERR_NOMEM; goto done; }

    /* 2. Target tracks, one frame per SV__CTL samples. F0: declination over the utterance
          (+8 % to -8 %) times a slow random walk (intonation), clamped to the voice's range. */
    f0_utt = spk->f0 * (float)exp(0.05 * sv_rng_normal(rng));
    for (k = 0, i = 0; k < nf; k++) {
        float *p = fr + k * SV__NP;
        s = k * SV__CTL;
        while (i + 1 < n && s >= start[i + 1]) i++;
        sv__syn_targets(spk, ph, dur, fj, n, i, (float)((double)(s - start[i]) * 1000.0 / fs), p);
        walk = 0.99f * walk + 0.14f * 0.06f * sv_rng_normal(rng); /* AR(1), tau 200 ms, sd 6 % */
        p[SV__P_F0] = f0_utt * (1.08f - 0.16f * (float)s / (float)total) * (float)exp(walk);
        p[SV__P_F0] = p[SV__P_F0] < f0lo ? f0lo : p[SV__P_F0] > f0hi ? f0hi : p[SV__P_F0];
    }

    /* 3. Smooth every track forward and backward with a one-pole filter (zero phase), so targets
          are approached smoothly without shifting the boundaries. */
    for (j = 0; j < SV__NP; j++) {
        float a = (float)exp(-1000.0 * SV__CTL / fs / sv__syn_tau_ms(j)), y = fr[j];
        for (k = 0; k < nf; k++) { y = a * y + (1 - a) * fr[k * SV__NP + (size_t)j]; fr[k * SV__NP + (size_t)j] = y; }
        for (k = nf; k-- > 0;) { y = a * y + (1 - a) * fr[k * SV__NP + (size_t)j]; fr[k * SV__NP + (size_t)j] = y; }
    }
    /* Smoothing leaves exponential tails; below -80 dB a source is off (this also keeps the
       filters out of the very slow denormal range). */
    for (k = 0; k < nf; k++)
        for (j = SV__P_AV; j <= SV__P_AF; j++)
            if (fr[k * SV__NP + (size_t)j] < 1e-4f) fr[k * SV__NP + (size_t)j] = 0.0f;

    /* 4. Source and filters, sample by sample. */
    {
        sv__reso cas[5], np, nz, par[3];
        double phase = 0.0;
        float f0p = fr[SV__P_F0], amp = 1.0f, tl = 0, nlp = 0, rad = 0;
        float oq = spk->open_quotient, tilt = spk->tilt;
        memset(cas, 0, sizeof cas); memset(&np, 0, sizeof np); memset(&nz, 0, sizeof nz);
        memset(par, 0, sizeof par);
        for (k = 0; k * SV__CTL < total; k++) {
            const float *p0 = fr + k * SV__NP, *p1 = p0 + SV__NP;
            size_t s0 = k * SV__CTL, s1 = s0 + SV__CTL < total ? s0 + SV__CTL : total;
            int fric_on;
            for (j = 0; j < 5; j++) sv__reso_set(&cas[j], p0[SV__P_F1 + j], p0[SV__P_B1 + j]);
            sv__reso_set(&np, SV__FNP, 100.0);
            sv__reso_set(&nz, p0[SV__P_FNZ], p0[SV__P_BNZ]);
            fric_on = p0[SV__P_AF] > 0.0f || p1[SV__P_AF] > 0.0f;
            for (j = 0; j < 3; j++) {
                sv__reso_set(&par[j], p0[SV__P_PF1 + j], p0[SV__P_PB1 + j]);
                if (!fric_on) par[j].s1 = par[j].s2 = par[j].x1 = par[j].x2 = 0.0f; /* silent: restart clean */
            }
            for (s = s0; s < s1; s++) {
                float w = (float)(s - s0) / SV__CTL, u, flow, noise, src, c, fric, y;
                float av = p0[SV__P_AV] + w * (p1[SV__P_AV] - p0[SV__P_AV]);
                float ah = p0[SV__P_AH] + w * (p1[SV__P_AH] - p0[SV__P_AH]);
                float af = p0[SV__P_AF] + w * (p1[SV__P_AF] - p0[SV__P_AF]);
                int open;
                /* Glottal source: the period and amplitude of each pulse are drawn at its start
                   (jitter, shimmer). Flow over the open phase is the KLGLOTT88 polynomial
                   u(x) = 27/4 x^2 (1 - x), x = phase / OQ, peak 1; its abrupt closure is the
                   main excitation. */
                phase += f0p / fs;
                if (phase >= 1.0) {
                    float f0 = p0[SV__P_F0] + w * (p1[SV__P_F0] - p0[SV__P_F0]);
                    phase -= floor(phase);
                    f0p = f0 * (1.0f + spk->jitter * sv_rng_normal(rng));
                    if (f0p < 20.0f) f0p = 20.0f;
                    amp = 1.0f + spk->shimmer * sv_rng_normal(rng);
                    if (amp < 0.1f) amp = 0.1f;
                }
                u = (float)(phase / oq);
                open = u < 1.0f;
                flow = open ? amp * 6.75f * u * u * (1.0f - u) : 0.0f;
                tl = (1.0f - tilt) * flow + tilt * tl; /* extra spectral tilt: one-pole low-pass */
                /* One noise generator, low-passed for the cascade (aspiration) as in Klatt 1980.
                   Breathiness: aspiration gated by the open phase, in proportion to voicing. */
                noise = 2.0f * sv_rng_uniformf(rng) - 1.0f;
                nlp = 0.75f * nlp + 0.25f * noise;
                src = av * tl + (ah + spk->breathiness * 0.5f * av * (open ? 1.0f : 0.3f)) * 0.8f * nlp;
                src += 1e-12f; /* keeps silent resonators out of denormals; removed by the radiation difference */
                /* Cascade: nasal pole-zero pair, then F5 .. F1; lip radiation = first difference */
                c = sv__reso_run(&np, src);
                c = sv__antireso_run(&nz, c);
                for (j = 4; j >= 0; j--) c = sv__reso_run(&cas[j], c);
                y = c - rad;
                rad = c;
                /* Parallel branch: frication, halved in the closed phase under voicing (Klatt) */
                fric = af * noise * (av > 0.02f && !open ? 0.5f : 1.0f);
                if (fric_on) {
                    float g1 = p0[SV__P_PG1] + w * (p1[SV__P_PG1] - p0[SV__P_PG1]);
                    float g2 = p0[SV__P_PG2] + w * (p1[SV__P_PG2] - p0[SV__P_PG2]);
                    float g3 = p0[SV__P_PG3] + w * (p1[SV__P_PG3] - p0[SV__P_PG3]);
                    float ab = p0[SV__P_AB] + w * (p1[SV__P_AB] - p0[SV__P_AB]);
                    y += 0.25f * (ab * fric + g1 * sv__bandpass_run(&par[0], fric)
                                  - g2 * sv__bandpass_run(&par[1], fric) + g3 * sv__bandpass_run(&par[2], fric));
                }
                x[s] = y;
            }
        }
    }

    /* 5. Level: RMS 0.1 (-20 dBFS) times the speaker's loudness. */
    {
        double e = 0.0;
        float g;
        for (s = 0; s < total; s++) e += (double)x[s] * x[s];
        e = sqrt(e / (double)total);
        g = e > 0.0 ? (float)(0.1 * pow(10.0, spk->loudness_db / 20.0) / e) : 0.0f;
        for (s = 0; s < total; s++) x[s] *= g;
    }
    if (seg)
        for (i = 0; i < n; i++) {
            seg[i].label = ph[i];
            seg[i].start = (double)start[i] / fs;
            seg[i].end = (double)start[i + 1] / fs;
        }
    *out_audio = x;
    *out_n = total;
    x = NULL;
done:
    SV_FREE(dur);
    SV_FREE(start);
    SV_FREE(fr);
    SV_FREE(x);
    return st;
}

SV_DEF float *sv_synth_phones(const sv_speaker *spk, const int *phones, const float *stretch,
                              size_t n, uint64_t seed, size_t *n_samples, sv_segment *seg)
{
    sv_rng r;
    float *audio = NULL;
    size_t i, ns = 0;
    if (n_samples) *n_samples = 0;
    if (!spk || !phones || !n_samples || n == 0) {
        sv__fail(SV_ERR_ARG, "sv_synth_phones: NULL argument or no phones");
        return NULL;
    }
    for (i = 0; i < n; i++)
        if (phones[i] < -1 || phones[i] >= SV__N_PHONES || (stretch && !(stretch[i] > 0.0f && stretch[i] < 100.0f))) {
            sv__fail(SV_ERR_ARG, "sv_synth_phones: bad phone id or stretch at %zu", i);
            return NULL;
        }
    if (!(spk->f0 > 20.0f && spk->f0 < 1000.0f) || !(spk->vtl_scale > 0.5f && spk->vtl_scale < 2.0f) ||
        !(spk->rate > 0.2f && spk->rate < 5.0f) || !(spk->open_quotient > 0.1f && spk->open_quotient <= 1.0f) ||
        !(spk->tilt >= 0.0f && spk->tilt < 1.0f) || !(spk->breathiness >= 0.0f && spk->breathiness <= 1.0f) ||
        !(spk->jitter >= 0.0f && spk->jitter < 0.5f) || !(spk->shimmer >= 0.0f && spk->shimmer < 0.5f) ||
        !(spk->loudness_db > -60.0f && spk->loudness_db < 20.0f)) {
        sv__fail(SV_ERR_ARG, "sv_synth_phones: speaker parameters out of range");
        return NULL;
    }
    sv_rng_seed(&r, seed);
    if (sv__syn_run(spk, phones, stretch, n, &r, &audio, &ns, seg) != SV_OK) return NULL;
    *n_samples = ns;
    return audio;
}

static float sv__syn_unif(sv_rng *r, float lo, float hi) { return lo + (hi - lo) * sv_rng_uniformf(r); }

SV_DEF sv_speaker sv_speaker_random(uint64_t seed, int female)
{
    sv_speaker s;
    sv_rng r;
    memset(&s, 0, sizeof s);
    sv_rng_seed(&r, seed);
    s.female = female != 0;
    s.split = SV_SPLIT_TRAIN;
    strcpy(s.name, "spk");
    /* Mean F0 well inside the ranges (men 85-155 Hz, women 165-255 Hz) so that intonation
       stays inside them; women's vocal tracts are about 15-20 % shorter. */
    if (female) {
        s.f0 = sv__syn_unif(&r, 180.0f, 235.0f);
        s.vtl_scale = sv__syn_unif(&r, 1.15f, 1.2f) * (float)exp(0.02 * sv_rng_normal(&r));
        s.breathiness = sv__syn_unif(&r, 0.1f, 0.5f);
        s.open_quotient = sv__syn_unif(&r, 0.6f, 0.72f);
        s.tilt = sv__syn_unif(&r, 0.1f, 0.5f);
    } else {
        s.f0 = sv__syn_unif(&r, 95.0f, 140.0f);
        s.vtl_scale = (float)exp(0.03 * sv_rng_normal(&r));
        s.vtl_scale = s.vtl_scale < 0.92f ? 0.92f : s.vtl_scale > 1.08f ? 1.08f : s.vtl_scale;
        s.breathiness = sv__syn_unif(&r, 0.0f, 0.3f);
        s.open_quotient = sv__syn_unif(&r, 0.5f, 0.62f);
        s.tilt = sv__syn_unif(&r, 0.0f, 0.35f);
    }
    s.rate = sv__syn_unif(&r, 0.85f, 1.2f);
    s.jitter = sv__syn_unif(&r, 0.005f, 0.02f);
    s.shimmer = sv__syn_unif(&r, 0.02f, 0.06f);
    s.loudness_db = sv__syn_unif(&r, -6.0f, 3.0f);
    return s;
}

/* ---------------------------------------------------------------- 12.4 pictures */

static const float sv__colour_rgb[SV_COLOUR_COUNT][3] = {
    {0.90f, 0.12f, 0.10f}, {0.15f, 0.75f, 0.20f}, {0.15f, 0.30f, 0.95f}, {0.95f, 0.90f, 0.15f},
    {1.00f, 0.55f, 0.05f}, {0.55f, 0.15f, 0.75f}, {1.00f, 0.55f, 0.75f}, {0.85f, 0.75f, 0.58f}
};

/* Is (u, v), in units of the object's radius from its centre (v down), inside the shape? */
static int sv__shape_inside(int shape, float u, float v)
{
    float au = fabsf(u), av = fabsf(v), d2 = u * u + v * v;
    switch (shape) {
    case SV_SHAPE_CIRCLE: return d2 <= 1.0f;
    case SV_SHAPE_SQUARE: return au <= 0.85f && av <= 0.85f;
    case SV_SHAPE_TRIANGLE: return v <= 0.75f && v >= -0.95f && au <= 0.95f * (v + 0.95f) / 1.7f;
    case SV_SHAPE_CROSS: return (au <= 0.32f && av <= 0.95f) || (av <= 0.32f && au <= 0.95f);
    case SV_SHAPE_RING: return d2 <= 1.0f && d2 >= 0.3f;
    case SV_SHAPE_DIAMOND: return au + av <= 1.0f;
    default: return 0;
    }
}

/* The relation of a to b from their centres, along the dominant axis (image y points down). */
static int sv__relation(const sv_object *a, const sv_object *b)
{
    float dx = a->cx - b->cx, dy = a->cy - b->cy;
    if (fabsf(dx) >= fabsf(dy)) return dx < 0 ? SV_REL_LEFT : SV_REL_RIGHT;
    return dy < 0 ? SV_REL_ABOVE : SV_REL_BELOW;
}

/* Draw a scene: 1-3 objects of distinct colours, radius 0.19-0.24 (big) or 0.10-0.13 (small) of
   the side, not touching; objects 0 and 1 clearly apart along one axis so the caption's relation
   is unambiguous. */
static void sv__scene_make(sv_scene *sc, sv_rng *r)
{
    int order[SV_COLOUR_COUNT], o, a, ok = 0, nobj;
    float roll = sv_rng_uniformf(r);
    memset(sc, 0, sizeof *sc);
    nobj = roll < 0.3f ? 1 : roll < 0.85f ? 2 : 3;
    sc->n_objects = nobj;
    for (o = 0; o < SV_COLOUR_COUNT; o++) order[o] = o;
    for (o = 0; o < nobj; o++) {
        int jj = o + (int)sv_rng_below(r, (size_t)(SV_COLOUR_COUNT - o)), t = order[o];
        order[o] = order[jj]; order[jj] = t;
        sc->obj[o].colour = order[o];
        sc->obj[o].shape = (int)sv_rng_below(r, SV_SHAPE_COUNT);
        sc->obj[o].big = sv_rng_uniformf(r) < 0.5f;
    }
    for (a = 0; a < 400 && !ok; a++) {
        if (a == 200) for (o = 0; o < nobj; o++) sc->obj[o].big = 0; /* crowded: shrink all */
        for (o = 0; o < nobj; o++) {
            sv_object *b = &sc->obj[o];
            b->r = b->big ? sv__syn_unif(r, 0.19f, 0.24f) : sv__syn_unif(r, 0.10f, 0.13f);
            b->cx = sv__syn_unif(r, b->r + 0.02f, 0.98f - b->r);
            b->cy = sv__syn_unif(r, b->r + 0.02f, 0.98f - b->r);
        }
        ok = 1;
        for (o = 0; o < nobj && ok; o++) {
            int p2;
            for (p2 = o + 1; p2 < nobj; p2++) {
                float dx = sc->obj[o].cx - sc->obj[p2].cx, dy = sc->obj[o].cy - sc->obj[p2].cy;
                if (sqrtf(dx * dx + dy * dy) < 1.1f * (sc->obj[o].r + sc->obj[p2].r)) ok = 0;
            }
        }
        if (ok && nobj >= 2) {
            float dx = fabsf(sc->obj[0].cx - sc->obj[1].cx), dy = fabsf(sc->obj[0].cy - sc->obj[1].cy);
            float mx = dx > dy ? dx : dy, mn = dx > dy ? dy : dx;
            if (mx < 1.5f * mn) ok = 0;
        }
    }
    if (nobj >= 2) sc->relation = sv__relation(&sc->obj[0], &sc->obj[1]);
}

/* Render [size, size, 3] in [0, 1]: a dark tinted background with a gentle gradient, objects with
   2x2 supersampled edges and jittered colours, then pixel noise. */
static void sv__scene_draw(const sv_scene *sc, int size, sv_rng *r, float *img)
{
    float bg[3], grad[2], col[3][3];
    float gray = sv__syn_unif(r, 0.05f, 0.3f);
    int x, y, c, o;
    for (c = 0; c < 3; c++) bg[c] = gray + sv__syn_unif(r, -0.04f, 0.04f);
    grad[0] = sv__syn_unif(r, -0.08f, 0.08f);
    grad[1] = sv__syn_unif(r, -0.08f, 0.08f);
    for (o = 0; o < sc->n_objects; o++)
        for (c = 0; c < 3; c++) {
            float v = sv__colour_rgb[sc->obj[o].colour][c] + sv__syn_unif(r, -0.06f, 0.06f);
            col[o][c] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
    for (y = 0; y < size; y++)
        for (x = 0; x < size; x++) {
            float *px = img + ((size_t)y * (size_t)size + (size_t)x) * 3;
            float fx = ((float)x + 0.5f) / (float)size, fy = ((float)y + 0.5f) / (float)size;
            for (c = 0; c < 3; c++) px[c] = bg[c] + grad[0] * (fx - 0.5f) + grad[1] * (fy - 0.5f);
            for (o = 0; o < sc->n_objects; o++) {
                const sv_object *b = &sc->obj[o];
                int sx, sy, hits = 0;
                for (sy = 0; sy < 2; sy++)
                    for (sx = 0; sx < 2; sx++) {
                        float qx = ((float)x + 0.25f + 0.5f * (float)sx) / (float)size;
                        float qy = ((float)y + 0.25f + 0.5f * (float)sy) / (float)size;
                        hits += sv__shape_inside(b->shape, (qx - b->cx) / b->r, (qy - b->cy) / b->r);
                    }
                for (c = 0; c < 3; c++) px[c] += 0.25f * (float)hits * (col[o][c] - px[c]);
            }
            for (c = 0; c < 3; c++) {
                float v = px[c] + 0.03f * sv_rng_normal(r);
                px[c] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
        }
}

/* Cut a picture into grid x grid patches: region values (row, column, channel) in [-1, 1] and
   boxes (x1, y1, x2, y2) normalised by the side. */
static void sv__scene_regions(const float *img, int size, int grid, float *reg, float *box)
{
    int gx, gy, yy, xx, c, ps = size / grid;
    for (gy = 0; gy < grid; gy++)
        for (gx = 0; gx < grid; gx++) {
            float *o = reg + (size_t)(gy * grid + gx) * (size_t)(ps * ps * 3);
            float *b = box + (size_t)(gy * grid + gx) * 4;
            for (yy = 0; yy < ps; yy++)
                for (xx = 0; xx < ps; xx++)
                    for (c = 0; c < 3; c++)
                        *o++ = 2.0f * img[((size_t)(gy * ps + yy) * (size_t)size + (size_t)(gx * ps + xx)) * 3
                                          + (size_t)c] - 1.0f;
            b[0] = (float)(gx * ps) / (float)size;
            b[1] = (float)(gy * ps) / (float)size;
            b[2] = (float)((gx + 1) * ps) / (float)size;
            b[3] = (float)((gy + 1) * ps) / (float)size;
        }
}

/* Simulated object detector (see SV_REGIONS_DETECTOR). The detector codes are fixed unit vectors,
   the same for every corpus (a frozen detector does not depend on the data it is run on): one per
   shape, colour and size, and one for background. Region k < R/2 is a proposal around object
   k mod n_objects (each side jittered by up to 30 % of the radius); the others are random
   background boxes. Feature = sqrt(Dimg) * (IoU * (e_shape + e_colour + e_size) / sqrt(3)
   + (1 - IoU) * e_bg) + N(0, 0.35^2) per value, for the object the box overlaps most: values of
   about unit size, like the pixel features. */
#define SV__N_DETECTOR_CODES (SV_SHAPE_COUNT + SV_COLOUR_COUNT + 2 + 1)

static void sv__detector_codes(size_t Dimg, float *codes) /* [SV__N_DETECTOR_CODES, Dimg] */
{
    sv_rng dr;
    size_t q, j;
    sv_rng_seed(&dr, 0x0b1ec7de7ec70ULL);
    for (q = 0; q < SV__N_DETECTOR_CODES; q++) {
        float *e = codes + q * Dimg;
        double nrm = 0;
        for (j = 0; j < Dimg; j++) { e[j] = sv_rng_normal(&dr); nrm += (double)e[j] * e[j]; }
        for (j = 0; j < Dimg; j++) e[j] = (float)((double)e[j] * sqrt((double)Dimg / nrm));
    }
}

static void sv__scene_detect(const sv_scene *sc, const float *codes, size_t R, size_t Dimg, sv_rng *r,
                             float *reg, float *box)
{
    const float inv3 = 1.0f / sqrtf(3.0f);
    size_t k, j;
    int o;
    for (k = 0; k < R; k++) {
        float *f = reg + k * Dimg, *b = box + k * 4, iou = 0.0f;
        const float *bg = codes + (SV__N_DETECTOR_CODES - 1) * Dimg;
        int hit = -1;
        if (k < R / 2 && sc->n_objects > 0) {
            const sv_object *ob = &sc->obj[k % (size_t)sc->n_objects];
            float edge[4];
            edge[0] = ob->cx - ob->r; edge[1] = ob->cy - ob->r; edge[2] = ob->cx + ob->r; edge[3] = ob->cy + ob->r;
            for (j = 0; j < 4; j++) b[j] = edge[j] + 0.3f * ob->r * (2.0f * sv_rng_uniformf(r) - 1.0f);
        } else {
            float w = sv__syn_unif(r, 0.15f, 0.6f), h = sv__syn_unif(r, 0.15f, 0.6f);
            b[0] = sv__syn_unif(r, 0.0f, 1.0f - w); b[1] = sv__syn_unif(r, 0.0f, 1.0f - h);
            b[2] = b[0] + w; b[3] = b[1] + h;
        }
        for (j = 0; j < 4; j++) b[j] = b[j] < 0.0f ? 0.0f : b[j] > 1.0f ? 1.0f : b[j];
        if (b[2] < b[0] + 0.01f) b[2] = b[0] + 0.01f;
        if (b[3] < b[1] + 0.01f) b[3] = b[1] + 0.01f;
        for (o = 0; o < sc->n_objects; o++) {
            const sv_object *ob = &sc->obj[o];
            float ix = fminf(b[2], ob->cx + ob->r) - fmaxf(b[0], ob->cx - ob->r);
            float iy = fminf(b[3], ob->cy + ob->r) - fmaxf(b[1], ob->cy - ob->r);
            float inter = ix > 0 && iy > 0 ? ix * iy : 0.0f;
            float uni = (b[2] - b[0]) * (b[3] - b[1]) + 4.0f * ob->r * ob->r - inter;
            if (inter > 0 && inter / uni > iou) { iou = inter / uni; hit = o; }
        }
        for (j = 0; j < Dimg; j++) f[j] = 0.35f * sv_rng_normal(r) + (1.0f - iou) * bg[j];
        if (hit >= 0) {
            const sv_object *ob = &sc->obj[hit];
            const float *es = codes + (size_t)ob->shape * Dimg;
            const float *ec = codes + (size_t)(SV_SHAPE_COUNT + ob->colour) * Dimg;
            const float *ez = codes + (size_t)(SV_SHAPE_COUNT + SV_COLOUR_COUNT + ob->big) * Dimg;
            for (j = 0; j < Dimg; j++) f[j] += iou * inv3 * (es[j] + ec[j] + ez[j]);
        }
    }
}

/* ---------------------------------------------------------------- 12.5 caption grammar */

#define SV__MAX_WORDS 40

typedef struct sv__sent { int w[SV__MAX_WORDS]; size_t n; } sv__sent;

/* Append the space-separated words of `text`. */
static void sv__say(sv__sent *s, const char *text)
{
    char tok[24];
    while (*text) {
        size_t k = 0;
        while (*text == ' ') text++;
        while (*text && *text != ' ' && k < sizeof tok - 1) tok[k++] = *text++;
        tok[k] = 0;
        if (k && s->n < SV__MAX_WORDS) s->w[s->n++] = sv__word_find(tok);
    }
}

static const char *sv__say_pick(sv_rng *r, const char *const *opts, size_t n) { return opts[sv_rng_below(r, n)]; }

/* "[article] [size] colour shape", synonyms drawn at random (the first one more often). */
static void sv__say_object(sv__sent *s, const sv_object *o, const char *article, float p_size, sv_rng *r)
{
    static const char *const shapes[SV_SHAPE_COUNT][3] = {
        {"circle", "disc", "coin"}, {"square", "box", "block"}, {"triangle", NULL, NULL},
        {"cross", "plus", NULL}, {"ring", "hoop", NULL}, {"diamond", NULL, NULL}};
    static const char *const sizes[2][3] = {{"small", "little", "tiny"}, {"big", "large", "huge"}};
    size_t nsyn = 1, pick;
    sv__say(s, article);
    if (sv_rng_uniformf(r) < p_size) sv__say(s, sizes[o->big][sv_rng_uniformf(r) < 0.5f ? 0 : 1 + sv_rng_below(r, 2)]);
    sv__say(s, sv_word_name(sv__word_find("red") + o->colour));
    while (nsyn < 3 && shapes[o->shape][nsyn]) nsyn++;
    pick = sv_rng_uniformf(r) < 0.5f ? 0 : sv_rng_below(r, nsyn);
    sv__say(s, shapes[o->shape][pick]);
}

static void sv__say_relation(sv__sent *s, int rel, sv_rng *r)
{
    static const char *const left[] = {"to the left of", "to the left of", "left of", "next to", "beside"};
    static const char *const right[] = {"to the right of", "to the right of", "right of", "next to", "beside"};
    static const char *const above[] = {"above", "above", "over", "on top of"};
    static const char *const below[] = {"below", "below", "under", "beneath"};
    switch (rel) {
    case SV_REL_LEFT: sv__say(s, sv__say_pick(r, left, 5)); break;
    case SV_REL_RIGHT: sv__say(s, sv__say_pick(r, right, 5)); break;
    case SV_REL_ABOVE: sv__say(s, sv__say_pick(r, above, 4)); break;
    default: sv__say(s, sv__say_pick(r, below, 4)); break;
    }
}

static int sv__rel_inverse(int rel) { return rel ^ 1; } /* LEFT<->RIGHT, ABOVE<->BELOW */

/* One caption of a scene. Templates: "[opening] a A REL a B", "the A is REL the B", the same with
   A and B swapped and the relation inverted, "... and a C" for a third object, and "[opening] a A
   [where]" for a single one. */
static void sv__caption(const sv_scene *sc, sv_rng *r, sv__sent *s)
{
    static const char *const openings[] = {"", "", "", "", "", "", "there is", "there is", "i see", "i found",
                                           "this picture shows", "look there is", "the image has", "a picture with"};
    static const char *const short_openings[] = {"", "", "there is", "i see"};
    const sv_object *A = &sc->obj[0], *B = &sc->obj[1];
    size_t i;
    s->n = 0;
    if (sc->n_objects == 1) {
        float dx = A->cx - 0.5f, dy = A->cy - 0.5f;
        sv__say(s, sv__say_pick(r, openings, 14));
        sv__say_object(s, A, "a", 0.7f, r);
        if (sv_rng_uniformf(r) < 0.6f) {
            if (fabsf(dx) < 0.15f && fabsf(dy) < 0.15f) sv__say(s, "in the middle");
            else if (fabsf(dx) >= fabsf(dy)) sv__say(s, dx < 0 ? "on the left" : "on the right");
            else sv__say(s, dy < 0 ? "at the top" : "at the bottom");
        }
    } else {
        int rel = sc->relation, t = (int)sv_rng_below(r, sc->n_objects == 3 ? 2 : 4);
        float p_size = sc->n_objects == 3 ? 0.3f : 0.6f;
        if (t & 1) { const sv_object *x = A; A = B; B = x; rel = sv__rel_inverse(rel); }
        if (t < 2) {
            sv__say(s, sc->n_objects == 3 ? sv__say_pick(r, short_openings, 4) : sv__say_pick(r, openings, 14));
            sv__say_object(s, A, "a", p_size, r);
            sv__say_relation(s, rel, r);
            sv__say_object(s, B, "a", p_size, r);
        } else {
            sv__say_object(s, A, "the", p_size, r);
            sv__say(s, "is");
            sv__say_relation(s, rel, r);
            sv__say_object(s, B, "the", p_size, r);
        }
        if (sc->n_objects == 3) {
            sv__say(s, "and");
            sv__say_object(s, &sc->obj[2], "a", 0.3f, r);
        }
    }
    /* "a" becomes "an" before a vowel ("an orange box") */
    for (i = 0; i + 1 < s->n; i++) {
        int first;
        if (s->w[i] == sv__word_find("a") && sv_word_phones(s->w[i + 1], &first, 1) && sv__phone_is_vowel(first))
            s->w[i] = sv__word_find("an");
    }
}

/* Out-of-domain utterances: word lists and carrier phrases ("please say X again", "the next word
   is X"), the listed words drawn in turn from a shuffled list of the whole content lexicon. */
static void sv__ood_sentence(sv_rng *r, const int *deck, size_t n_deck, size_t *next, sv__sent *s, int *list)
{
    int t = (int)sv_rng_below(r, 4);
    size_t i, n;
    s->n = 0;
    *list = t == 0;
#define SV__DRAW() (s->n < SV__MAX_WORDS ? (void)(s->w[s->n++] = deck[(*next)++ % n_deck]) : (void)0)
    switch (t) {
    case 0: n = 5 + sv_rng_below(r, 3); for (i = 0; i < n; i++) SV__DRAW(); break;
    case 1: sv__say(s, "please say"); SV__DRAW(); sv__say(s, "and"); SV__DRAW(); sv__say(s, "again"); break;
    case 2: sv__say(s, "the next word is"); SV__DRAW(); break;
    default: sv__say(s, "say"); SV__DRAW(); sv__say(s, "and"); SV__DRAW(); sv__say(s, "now"); break;
    }
#undef SV__DRAW
}

/* ---------------------------------------------------------------- 12.6 the corpus */

SV_DEF sv_corpus_config sv_corpus_default_config(void)
{
    sv_corpus_config c;
    memset(&c, 0, sizeof c);
    c.seed = 1;
    c.n_train_images = 400;
    c.n_val_images = 50;
    c.n_test_images = 100;
    c.captions_per_image = 2;
    c.n_train_speakers = 28;
    c.n_test_speakers = 6;
    c.n_ood_speakers = 6;
    c.n_ood_utts = 200;
    c.image_size = 32;
    c.grid = 4;
    c.region_features = SV_REGIONS_DETECTOR;
    c.snr_db_min = 15.0f;
    c.snr_db_max = 35.0f;
    return c;
}

static char *sv__corpus_strdup(const char *s, const char *what)
{
    size_t n = strlen(s) + 1;
    char *d = SV__CAST(char *, sv__alloc(n, what));
    if (d) memcpy(d, s, n);
    return d;
}

SV_DEF void sv_corpus_free(sv_corpus *c)
{
    size_t i;
    if (!c) return;
    for (i = 0; c->utts && i < c->n_utts; i++) {
        SV_FREE(c->utts[i].audio);
        SV_FREE(c->utts[i].text);
        SV_FREE(c->utts[i].phones);
        SV_FREE(c->utts[i].words);
    }
    SV_FREE(c->utts);
    SV_FREE(c->speakers);
    SV_FREE(c->image_split);
    SV_FREE(c->scenes);
    SV_FREE(c->images);
    SV_FREE(c->regions);
    SV_FREE(c->boxes);
    SV_FREE(c);
}

/* Fill an utterance's word list, text and phone labels (times come with the audio). */
static int sv__corpus_script(sv_utt *u, const sv__sent *s)
{
    size_t i, np = 0, nc = 0;
    for (i = 0; i < s->n; i++) {
        np += sv_word_phones(s->w[i], NULL, 0);
        nc += strlen(sv__words[s->w[i]].word) + 1;
    }
    u->words = SV__CAST(sv_segment *, sv__calloc(s->n, sizeof(sv_segment), "utterance words"));
    u->phones = SV__CAST(sv_segment *, sv__calloc(np, sizeof(sv_segment), "utterance phones"));
    u->text = SV__CAST(char *, sv__alloc(nc + 1, "utterance text"));
    if (!u->words || !u->phones || !u->text) return SV_ERR_NOMEM;
    u->n_words = s->n;
    u->n_phones = np;
    u->text[0] = 0;
    for (i = 0, np = 0, nc = 0; i < s->n; i++) {
        int ids[16];
        size_t k, m = sv_word_phones(s->w[i], ids, 16), len = strlen(sv__words[s->w[i]].word);
        u->words[i].label = s->w[i];
        for (k = 0; k < m; k++) u->phones[np++].label = ids[k];
        if (i) u->text[nc++] = ' ';
        memcpy(u->text + nc, sv__words[s->w[i]].word, len);
        nc += len;
        u->text[nc] = 0;
    }
    return SV_OK;
}

/* Speak one scripted utterance: plan pauses and prosodic lengthening, synthesise, record the exact
   times, add background noise. Runs in parallel: touches only u and its own rng. */
static int sv__corpus_speak(sv_utt *u, const sv_speaker *spk, float snr_lo, float snr_hi, int word_list, sv_rng *r)
{
    size_t n = u->n_phones + u->n_words + 2, m = 0, i, k, p = 0;
    int *seq = SV__CAST(int *, sv__alloc(n * sizeof(int), "utterance plan"));
    float *st = SV__CAST(float *, sv__alloc(n * sizeof(float), "utterance plan"));
    sv_segment *seg = SV__CAST(sv_segment *, sv__alloc(n * sizeof(sv_segment), "utterance plan"));
    int st_ok = SV_OK;
    if (!seq || !st || !seg) { st_ok = SV_ERR_NOMEM; goto done; }
    seq[m] = -1; st[m++] = sv__syn_unif(r, 0.6f, 1.4f); /* leading silence, 90-210 ms */
    for (i = 0; i < u->n_words; i++) {
        int w = u->words[i].label, ids[16];
        size_t nw = sv_word_phones(w, ids, 16);
        /* a phrase ends at the end, before "and" (sometimes), or after each word of a list */
        int before_and = i + 1 < u->n_words && strcmp(sv__words[u->words[i + 1].label].word, "and") == 0;
        int pause = i + 1 < u->n_words &&
                    (word_list ? sv_rng_uniformf(r) < 0.6f
                               : (before_and && sv_rng_uniformf(r) < 0.5f) || sv_rng_uniformf(r) < 0.03f);
        int final = pause || i + 1 == u->n_words;
        for (k = 0; k < nw; k++) {
            float sc = (sv__words[w].flags & SV__W_FUNC) ? 0.7f : 1.0f;
            int nxt = k + 1 < nw ? ids[k + 1] : -1;
            if (sv__phone_is_vowel(ids[k])) {
                if (final) sc *= 1.35f;                 /* phrase-final lengthening */
                if (nxt >= 0 && sv__phones[nxt].voiced && !sv__phone_is_vowel(nxt))
                    sc *= 1.1f;                         /* longer before a voiced consonant */
            } else if (final) sc *= 1.1f;
            seq[m] = ids[k]; st[m++] = sc;
        }
        if (pause) { seq[m] = -1; st[m++] = sv__syn_unif(r, 0.4f, 1.0f); }
    }
    seq[m] = -1; st[m++] = sv__syn_unif(r, 0.6f, 1.4f);
    st_ok = sv__syn_run(spk, seq, st, m, r, &u->audio, &u->n_samples, seg);
    if (st_ok != SV_OK) goto done;
    for (i = 0, p = 0; i < m; i++)
        if (seq[i] >= 0) { u->phones[p].start = seg[i].start; u->phones[p].end = seg[i].end; p++; }
    for (i = 0, p = 0; i < u->n_words; i++) {
        size_t nw = sv_word_phones(u->words[i].label, NULL, 0);
        u->words[i].start = u->phones[p].start;
        u->words[i].end = u->phones[p + nw - 1].end;
        p += nw;
    }
    /* Background noise: one-pole coloured (white to brown-ish) Gaussian-like noise at the drawn
       SNR relative to the utterance RMS (0.1 * loudness; the AR(1) variance is known in closed
       form: var = (1/3) / (1 - c^2) for uniform [-1, 1) input). */
    {
        float c = sv__syn_unif(r, 0.0f, 0.9f), y = 0, g;
        double e = 0;
        for (i = 0; i < u->n_samples; i++) e += (double)u->audio[i] * u->audio[i];
        e = sqrt(e / (double)u->n_samples);
        u->snr_db = sv__syn_unif(r, snr_lo, snr_hi);
        g = (float)(e / pow(10.0, u->snr_db / 20.0) / sqrt((1.0 / 3.0) / (1.0 - (double)c * c)));
        for (i = 0; i < u->n_samples; i++) {
            float v;
            y = c * y + (2.0f * sv_rng_uniformf(r) - 1.0f);
            v = u->audio[i] + g * y;
            u->audio[i] = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
        }
    }
done:
    SV_FREE(seq);
    SV_FREE(st);
    SV_FREE(seg);
    return st_ok;
}

static int sv__corpus_check(const sv_corpus_config *g)
{
    size_t cpi = g->captions_per_image;
    if (cpi < 1 || cpi > 100) return sv__fail(SV_ERR_ARG, "corpus: captions_per_image must be 1..100, not %zu", cpi);
    if (g->n_train_images + g->n_val_images > 0 && g->n_train_speakers < cpi)
        return sv__fail(SV_ERR_ARG, "corpus: %zu train speakers cannot read %zu different captions per image",
                        g->n_train_speakers, cpi);
    if (g->n_test_images > 0 && g->n_test_speakers < cpi)
        return sv__fail(SV_ERR_ARG, "corpus: %zu test speakers cannot read %zu different captions per image",
                        g->n_test_speakers, cpi);
    if (g->n_ood_utts > 0 && g->n_ood_speakers < 1)
        return sv__fail(SV_ERR_ARG, "corpus: ood utterances need an ood speaker");
    if (g->n_train_images > 10000000 || g->n_val_images > 10000000 || g->n_test_images > 10000000 ||
        g->n_ood_utts > 10000000 || g->n_train_speakers + g->n_test_speakers + g->n_ood_speakers > 100000 ||
        g->n_train_speakers > 100000 || g->n_test_speakers > 100000 || g->n_ood_speakers > 100000)
        return sv__fail(SV_ERR_ARG, "corpus: sizes too large");
    if (g->image_size < 4 || g->image_size > 4096 || g->grid < 1 || g->image_size % g->grid != 0)
        return sv__fail(SV_ERR_ARG, "corpus: image_size %d must be 4..4096 and divisible by grid %d",
                        g->image_size, g->grid);
    if (g->region_features != SV_REGIONS_DETECTOR && g->region_features != SV_REGIONS_PIXELS)
        return sv__fail(SV_ERR_ARG, "corpus: region_features must be SV_REGIONS_DETECTOR or SV_REGIONS_PIXELS");
    if (!(g->snr_db_min >= -20.0f && g->snr_db_min <= g->snr_db_max && g->snr_db_max <= 120.0f))
        return sv__fail(SV_ERR_ARG, "corpus: need -20 <= snr_db_min <= snr_db_max <= 120");
    return SV_OK;
}

SV_DEF sv_corpus *sv_corpus_generate(const sv_corpus_config *cfg)
{
    sv_corpus *c;
    sv_rng master, m_spk, m_img, m_cap, m_ood, m_utt;
    size_t i, j, k, cpi, n_img, npix, nsp[3], *pool = NULL, *status = NULL, *deck_next = NULL;
    int *deck = NULL, *list = NULL, size, grid;
    size_t n_deck = 0;
    float *codes = NULL;

    if (!cfg) { sv__fail(SV_ERR_ARG, "corpus: NULL config"); return NULL; }
    if (sv__corpus_check(cfg) != SV_OK) return NULL;
    c = SV__CAST(sv_corpus *, sv__calloc(1, sizeof *c, "corpus"));
    if (!c) return NULL;
    c->cfg = *cfg;
    cpi = cfg->captions_per_image;
    size = cfg->image_size;
    grid = cfg->grid;
    /* independent streams for each kind of draw, so changing one count leaves the others alone */
    sv_rng_seed(&master, cfg->seed);
    m_spk = sv_rng_fork(&master, 1);
    m_img = sv_rng_fork(&master, 2);
    m_cap = sv_rng_fork(&master, 3);
    m_ood = sv_rng_fork(&master, 4);
    m_utt = sv_rng_fork(&master, 5);

    /* speakers: train, test, ood groups, alternately male and female */
    nsp[0] = cfg->n_train_speakers; nsp[1] = cfg->n_test_speakers; nsp[2] = cfg->n_ood_speakers;
    c->n_speakers = nsp[0] + nsp[1] + nsp[2];
    c->speakers = SV__CAST(sv_speaker *, sv__calloc(c->n_speakers + 1, sizeof(sv_speaker), "corpus speakers"));
    if (!c->speakers) goto fail;
    for (i = 0, k = 0; i < 3; i++)
        for (j = 0; j < nsp[i]; j++, k++) {
            sv_rng r = sv_rng_fork(&m_spk, k);
            sv_speaker *s = &c->speakers[k];
            *s = sv_speaker_random(sv_rng_next(&r), (int)(j & 1));
            s->split = i == 0 ? SV_SPLIT_TRAIN : i == 1 ? SV_SPLIT_TEST : SV_SPLIT_OOD;
            snprintf(s->name, sizeof s->name, "spk%03u%c", (unsigned)k, s->female ? 'f' : 'm');
        }

    /* pictures */
    n_img = cfg->n_train_images + cfg->n_val_images + cfg->n_test_images;
    c->n_images = n_img;
    c->n_regions = (size_t)grid * (size_t)grid;
    c->region_dim = (size_t)(size / grid) * (size_t)(size / grid) * 3;
    npix = (size_t)size * (size_t)size * 3;
    c->image_begin[0] = 0;
    c->image_begin[1] = cfg->n_train_images;
    c->image_begin[2] = c->image_begin[1] + cfg->n_val_images;
    c->image_begin[3] = c->image_begin[4] = n_img;
    {
        size_t bytes;
        if (!sv__mul_ok(n_img, npix * sizeof(float), &bytes)) {
            sv__fail(SV_ERR_NOMEM, "corpus: images too large");
            goto fail;
        }
        c->images = SV__CAST(float *, sv__alloc(bytes ? bytes : sizeof(float), "corpus images"));
        c->regions = SV__CAST(float *, sv__alloc(bytes ? bytes : sizeof(float), "corpus regions"));
        c->boxes = SV__CAST(float *, sv__calloc(n_img * c->n_regions + 1, 4 * sizeof(float), "corpus boxes"));
        c->scenes = SV__CAST(sv_scene *, sv__calloc(n_img + 1, sizeof(sv_scene), "corpus scenes"));
        c->image_split = SV__CAST(int *, sv__calloc(n_img + 1, sizeof(int), "corpus image splits"));
        codes = SV__CAST(float *, sv__alloc(SV__N_DETECTOR_CODES * c->region_dim * sizeof(float), "detector codes"));
        if (!c->images || !c->regions || !c->boxes || !c->scenes || !c->image_split || !codes) goto fail;
        sv__detector_codes(c->region_dim, codes);
    }
    for (i = 0; i < n_img; i++) {
        sv_rng r = sv_rng_fork(&m_img, i);
        c->image_split[i] = i < c->image_begin[1] ? SV_SPLIT_TRAIN : i < c->image_begin[2] ? SV_SPLIT_VAL : SV_SPLIT_TEST;
        sv__scene_make(&c->scenes[i], &r);
        sv__scene_draw(&c->scenes[i], size, &r, c->images + i * npix);
        if (cfg->region_features == SV_REGIONS_PIXELS)
            sv__scene_regions(c->images + i * npix, size, grid, c->regions + i * npix, c->boxes + i * c->n_regions * 4);
        else
            sv__scene_detect(&c->scenes[i], codes, c->n_regions, c->region_dim, &r, c->regions + i * npix,
                             c->boxes + i * c->n_regions * 4);
    }

    /* scripts: the captions of every picture, then the ood utterances */
    c->n_utts = n_img * cpi + cfg->n_ood_utts;
    c->utts = SV__CAST(sv_utt *, sv__calloc(c->n_utts + 1, sizeof(sv_utt), "corpus utterances"));
    pool = SV__CAST(size_t *, sv__calloc(c->n_speakers + 1, sizeof(size_t), "corpus speaker pool"));
    list = SV__CAST(int *, sv__calloc(c->n_utts + 1, sizeof(int), "corpus utterance kinds"));
    if (!c->utts || !pool || !list) goto fail;
    for (i = 0; i < SV_SPLIT_OOD; i++) c->split_begin[i] = c->image_begin[i] * cpi;
    c->split_begin[SV_SPLIT_OOD] = n_img * cpi;
    c->split_begin[SV_SPLIT_COUNT] = c->n_utts;
    for (i = 0; i < n_img; i++) {
        sv_rng r = sv_rng_fork(&m_cap, i);
        int split = c->image_split[i];
        size_t first = split == SV_SPLIT_TEST ? nsp[0] : 0, np = split == SV_SPLIT_TEST ? nsp[1] : nsp[0];
        sv__sent prev[8];
        for (k = 0; k < np; k++) pool[k] = first + k;
        for (j = 0; j < cpi; j++) {
            size_t u = i * cpi + j, pick = j + sv_rng_below(&r, np - j), t, attempt;
            sv__sent s;
            sv_utt *ut = &c->utts[u];
            /* different speakers for the captions of one picture: partial Fisher-Yates */
            t = pool[j]; pool[j] = pool[pick]; pool[pick] = t;
            /* different wordings too, as far as the grammar allows */
            for (attempt = 0; attempt < 20; attempt++) {
                size_t q, same = 0;
                sv__caption(&c->scenes[i], &r, &s);
                for (q = 0; q < j && q < 8; q++)
                    if (prev[q].n == s.n && memcmp(prev[q].w, s.w, s.n * sizeof(int)) == 0) same = 1;
                if (!same) break;
            }
            if (j < 8) prev[j] = s;
            ut->split = split;
            ut->image = (int)i;
            ut->speaker = (int)pool[j];
            snprintf(ut->name, sizeof ut->name, "%s_%05u", sv_split_name(split), (unsigned)(u - c->split_begin[split]));
            if (sv__corpus_script(ut, &s) != SV_OK) goto fail;
        }
    }
    /* ood: a shuffled deck of every content word, dealt in turn, so all words get said */
    deck = SV__CAST(int *, sv__alloc(SV__N_WORDS * sizeof(int), "corpus ood deck"));
    deck_next = SV__CAST(size_t *, sv__calloc(1, sizeof(size_t), "corpus ood deck"));
    if (!deck || !deck_next) goto fail;
    for (i = 0; i < (size_t)SV__N_WORDS; i++)
        if (!(sv__words[i].flags & SV__W_FUNC)) deck[n_deck++] = (int)i;
    {
        sv_rng r = sv_rng_fork(&m_ood, 0);
        for (i = n_deck; i > 1; i--) {
            size_t jj = sv_rng_below(&r, i);
            int t = deck[i - 1]; deck[i - 1] = deck[jj]; deck[jj] = t;
        }
    }
    for (k = 0; k < cfg->n_ood_utts; k++) {
        size_t u = n_img * cpi + k;
        sv_rng r = sv_rng_fork(&m_ood, k + 1);
        sv__sent s;
        sv_utt *ut = &c->utts[u];
        sv__ood_sentence(&r, deck, n_deck, deck_next, &s, &list[u]);
        ut->split = SV_SPLIT_OOD;
        ut->image = -1;
        ut->speaker = (int)(nsp[0] + nsp[1] + k % nsp[2]);
        snprintf(ut->name, sizeof ut->name, "ood_%05u", (unsigned)k);
        if (sv__corpus_script(ut, &s) != SV_OK) goto fail;
    }

    /* audio: each utterance from its own forked stream, so any thread count gives the same bits */
    status = SV__CAST(size_t *, sv__calloc(c->n_utts + 1, sizeof(size_t), "corpus status"));
    if (!status) goto fail;
    {
        long u, nu = (long)c->n_utts;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
        for (u = 0; u < nu; u++) {
            sv_rng r = sv_rng_fork(&m_utt, (uint64_t)u);
            sv_utt *ut = &c->utts[u];
            status[u] = (size_t)sv__corpus_speak(ut, &c->speakers[ut->speaker], cfg->snr_db_min, cfg->snr_db_max,
                                                 list[u], &r);
        }
    }
    for (i = 0; i < c->n_utts; i++) {
        if (status[i] != SV_OK) {
            sv__fail((int)status[i], "corpus: synthesising %s failed (out of memory?)", c->utts[i].name);
            goto fail;
        }
        c->seconds[c->utts[i].split] += (double)c->utts[i].n_samples / SV_CORPUS_RATE;
    }
    SV_FREE(pool); SV_FREE(list); SV_FREE(deck); SV_FREE(deck_next); SV_FREE(status); SV_FREE(codes);
    return c;
fail:
    SV_FREE(pool); SV_FREE(list); SV_FREE(deck); SV_FREE(deck_next); SV_FREE(status); SV_FREE(codes);
    sv_corpus_free(c);
    return NULL;
}

SV_DEF int sv_corpus_items(const sv_corpus *c, int split, sv_item_set *out)
{
    size_t u, i, n = 0, f;
    int *spk_map = NULL;
    if (!out) return sv__fail(SV_ERR_ARG, "sv_corpus_items: NULL output");
    memset(out, 0, sizeof *out);
    if (!c || split < 0 || split >= SV_SPLIT_COUNT)
        return sv__fail(SV_ERR_ARG, "sv_corpus_items: bad corpus or split %d", split);
    /* a triphone needs a phone directly before and after it: no utterance edge, no pause */
    for (u = c->split_begin[split]; u < c->split_begin[split + 1]; u++) {
        const sv_utt *ut = &c->utts[u];
        for (i = 1; i + 1 < ut->n_phones; i++)
            if (ut->phones[i - 1].end == ut->phones[i].start && ut->phones[i].end == ut->phones[i + 1].start) n++;
    }
    out->files = SV__CAST(char **, sv__calloc(c->split_begin[split + 1] - c->split_begin[split] + 1, sizeof(char *),
                                              "items files"));
    out->phones = SV__CAST(char **, sv__calloc((size_t)SV__N_PHONES, sizeof(char *), "items phones"));
    out->speakers = SV__CAST(char **, sv__calloc(c->n_speakers + 1, sizeof(char *), "items speakers"));
    out->items = SV__CAST(sv_item *, sv__calloc(n + 1, sizeof(sv_item), "items"));
    spk_map = SV__CAST(int *, sv__alloc((c->n_speakers + 1) * sizeof(int), "items speaker map"));
    if (!out->files || !out->phones || !out->speakers || !out->items || !spk_map) goto fail;
    for (i = 0; i < (size_t)SV__N_PHONES; i++) {
        out->phones[out->n_phones] = sv__corpus_strdup(sv__phones[i].name, "items phone");
        if (!out->phones[out->n_phones]) goto fail;
        out->n_phones++;
    }
    for (i = 0; i < c->n_speakers; i++) spk_map[i] = -1;
    for (u = c->split_begin[split]; u < c->split_begin[split + 1]; u++) {
        const sv_utt *ut = &c->utts[u];
        f = out->n_files;
        out->files[f] = sv__corpus_strdup(ut->name, "items file");
        if (!out->files[f]) goto fail;
        out->n_files++;
        if (spk_map[ut->speaker] < 0) {
            out->speakers[out->n_speakers] = sv__corpus_strdup(c->speakers[ut->speaker].name, "items speaker");
            if (!out->speakers[out->n_speakers]) goto fail;
            spk_map[ut->speaker] = (int)out->n_speakers++;
        }
        for (i = 1; i + 1 < ut->n_phones; i++) {
            sv_item *it;
            if (ut->phones[i - 1].end != ut->phones[i].start || ut->phones[i].end != ut->phones[i + 1].start) continue;
            it = &out->items[out->n_items++];
            it->file = f;
            it->onset = ut->phones[i].start;
            it->offset = ut->phones[i].end;
            it->phone = ut->phones[i].label;
            it->prev = ut->phones[i - 1].label;
            it->next = ut->phones[i + 1].label;
            it->speaker = spk_map[ut->speaker];
        }
    }
    SV_FREE(spk_map);
    return SV_OK;
fail:
    SV_FREE(spk_map);
    sv_item_set_free(out); /* the counts only cover strings already copied */
    return sv__fail(SV_ERR_NOMEM, "sv_corpus_items: out of memory");
}

/* ---------------------------------------------------------------- 12.7 writing the corpus to disk */
/* Text file written atomically; fmt/segments come from the caller. */
static int sv__write_segments(const char *path, const sv_segment *seg, size_t n, int words)
{
    char *tmp;
    size_t i;
    int ok = 1;
    FILE *f = sv__atomic_begin(path, &tmp);
    if (!f) return sv_last_status();
    for (i = 0; ok && i < n; i++) {
        const char *lab = words ? sv_word_name(seg[i].label) : sv_phone_name(seg[i].label);
        /* times are whole samples at 16 kHz: k/16000 has at most 7 decimals, so %.7f is exact */
        if (fprintf(f, "%.7f %.7f %s\n", seg[i].start, seg[i].end, lab ? lab : "SIL") < 0) ok = 0;
    }
    if (!ok) sv__fail(SV_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    return sv__atomic_end(f, tmp, path, ok);
}

static int sv__write_text(const char *path, const char *text)
{
    char *tmp;
    int ok;
    FILE *f = sv__atomic_begin(path, &tmp);
    if (!f) return sv_last_status();
    ok = fputs(text, f) != EOF;
    if (!ok) sv__fail(SV_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    return sv__atomic_end(f, tmp, path, ok);
}

/* The manifest of one split: paths are built under dir so sv_manifest_write makes them relative. */
static int sv__corpus_manifest(const sv_corpus *c, const char *dir, int split)
{
    size_t b = c->split_begin[split], n = c->split_begin[split + 1] - b, i;
    sv_manifest m;
    char *path = NULL, name[32];
    int rc = SV_OK;
    memset(&m, 0, sizeof m);
    if (n == 0) return SV_OK;
    m.n = n;
    m.id = SV__CAST(char **, sv__calloc(n, sizeof(char *), "manifest ids"));
    m.wav = SV__CAST(char **, sv__calloc(n, sizeof(char *), "manifest wavs"));
    m.speaker = SV__CAST(char **, sv__calloc(n, sizeof(char *), "manifest speakers"));
    m.text = SV__CAST(char **, sv__calloc(n, sizeof(char *), "manifest texts"));
    m.align = SV__CAST(char **, sv__calloc(n, sizeof(char *), "manifest aligns"));
    m.image = SV__CAST(long *, sv__calloc(n, sizeof(long), "manifest images"));
    if (!m.id || !m.wav || !m.speaker || !m.text || !m.align || !m.image) { rc = SV_ERR_NOMEM; goto done; }
    m.has_image = split != SV_SPLIT_OOD;
    m.has_speaker = m.has_text = m.has_align = 1;
    for (i = 0; i < n; i++) {
        const sv_utt *u = &c->utts[b + i];
        m.id[i] = (char *)u->name; /* borrowed: only read by the writer */
        m.wav[i] = sv__pathf(dir, "wav/%s%s", u->name, ".wav");
        m.align[i] = sv__pathf(dir, "align/%s%s", u->name, ".phones");
        m.speaker[i] = (char *)c->speakers[u->speaker].name;
        m.text[i] = u->text;
        m.image[i] = u->image;
        if (!m.wav[i] || !m.align[i]) { rc = SV_ERR_NOMEM; goto done; }
    }
    snprintf(name, sizeof name, "%s.tsv", sv_split_name(split));
    path = sv__pathf(dir, "%s%s", name, NULL);
    rc = path ? sv_manifest_write(path, &m) : SV_ERR_NOMEM;
done:
    if (m.wav)
        for (i = 0; i < n; i++) { SV_FREE(m.wav[i]); SV_FREE(m.align[i]); }
    SV_FREE(m.id); SV_FREE(m.wav); SV_FREE(m.speaker); SV_FREE(m.text); SV_FREE(m.align); SV_FREE(m.image);
    SV_FREE(path);
    return rc;
}

static int sv__corpus_stats(const sv_corpus *c, const char *path)
{
    size_t need = 4096 + 64 * SV_SPLIT_COUNT, len = 0, s, i, nsp[SV_SPLIT_COUNT], nph[SV_SPLIT_COUNT];
    char *buf = SV__CAST(char *, sv__alloc(need, "stats"));
    int rc;
    double total = 0.0;
    if (!buf) return SV_ERR_NOMEM;
    memset(nsp, 0, sizeof nsp);
    memset(nph, 0, sizeof nph);
    for (i = 0; i < c->n_speakers; i++) {
        int sp = c->speakers[i].split;
        if (sp >= 0 && sp < SV_SPLIT_COUNT) nsp[sp]++;
    }
    for (i = 0; i < c->n_utts; i++) nph[c->utts[i].split] += c->utts[i].n_phones;
    len += (size_t)snprintf(buf + len, need - len,
                            "# ssl_vgs built-in corpus (formant synthesiser), seed %llu\n"
                            "images: %zu (train %zu, val %zu, test %zu), regions %zu x %zu\n"
                            "speakers: %zu (train+val %zu, test %zu, ood %zu)\n"
                            "split  utterances  hours  phones\n",
                            (unsigned long long)c->cfg.seed, c->n_images, c->image_begin[1] - c->image_begin[0],
                            c->image_begin[2] - c->image_begin[1], c->image_begin[3] - c->image_begin[2],
                            c->n_regions, c->region_dim, c->n_speakers, nsp[SV_SPLIT_TRAIN],
                            nsp[SV_SPLIT_TEST], nsp[SV_SPLIT_OOD]);
    for (s = 0; s < SV_SPLIT_COUNT; s++) {
        total += c->seconds[s];
        len += (size_t)snprintf(buf + len, need - len, "%-5s  %10zu  %5.3f  %zu\n", sv_split_name((int)s),
                                c->split_begin[s + 1] - c->split_begin[s], c->seconds[s] / 3600.0, nph[s]);
    }
    len += (size_t)snprintf(buf + len, need - len, "total  %10zu  %5.3f\n", c->n_utts, total / 3600.0);
    (void)len;
    rc = sv__write_text(path, buf);
    SV_FREE(buf);
    return rc;
}

SV_DEF int sv_corpus_write(const sv_corpus *c, const char *dir) { return sv_corpus_write_as(c, dir, SV_WAV_PCM16); }

SV_DEF int sv_corpus_write_as(const sv_corpus *c, const char *dir, int wav_format)
{
    char *p = NULL, *q = NULL;
    size_t i, shape[4];
    int rc = SV_OK, s;
    if (!c || !dir || !*dir) return sv__fail(SV_ERR_ARG, "sv_corpus_write: NULL corpus or empty folder");
    if (wav_format != SV_WAV_PCM16 && wav_format != SV_WAV_FLOAT32) return sv__fail(SV_ERR_ARG, "sv_corpus_write_as: unknown WAV format %d", wav_format);
    p = sv__pathf(dir, ".complete", NULL, NULL);
    if (!p) return SV_ERR_NOMEM;
    if (sv__file_exists(p)) {
        SV_FREE(p);
        return sv__fail(SV_ERR_STATE, "%s already holds a complete corpus; remove it or choose another folder", dir);
    }
    SV_FREE(p);
    p = NULL;
    if ((rc = sv__mkdir(dir)) != SV_OK) return rc;
#define SV__TRY(x) do { if ((rc = (x)) != SV_OK) goto done; } while (0)
#define SV__PATH(var, fmt, a, b) do { SV_FREE(var); var = sv__pathf(dir, fmt, a, b); \
                                      if (!var) { rc = SV_ERR_NOMEM; goto done; } } while (0)
    SV__PATH(p, "wav", NULL, NULL);
    SV__TRY(sv__mkdir(p));
    SV__PATH(p, "align", NULL, NULL);
    SV__TRY(sv__mkdir(p));
    for (i = 0; i < c->n_utts; i++) {
        const sv_utt *u = &c->utts[i];
        SV__PATH(p, "wav/%s%s", u->name, ".wav");
        SV__TRY(wav_format == SV_WAV_FLOAT32 ? sv_wav_write_float(p, u->audio, u->n_samples, SV_CORPUS_RATE)
                                             : sv_wav_write(p, u->audio, u->n_samples, SV_CORPUS_RATE));
        SV__PATH(p, "align/%s%s", u->name, ".phones");
        SV__TRY(sv__write_segments(p, u->phones, u->n_phones, 0));
        SV__PATH(p, "align/%s%s", u->name, ".words");
        SV__TRY(sv__write_segments(p, u->words, u->n_words, 1));
    }
    for (s = 0; s < SV_SPLIT_COUNT; s++) SV__TRY(sv__corpus_manifest(c, dir, s));
    if (c->n_images) {
        shape[0] = c->n_images; shape[1] = c->n_regions; shape[2] = c->region_dim; shape[3] = 1;
        SV__PATH(p, "images.npy", NULL, NULL);
        SV__TRY(sv_npy_write(p, c->regions, shape, 3));
        shape[2] = 4;
        SV__PATH(p, "boxes.npy", NULL, NULL);
        SV__TRY(sv_npy_write(p, c->boxes, shape, 3));
        {
            /* image_split.tsv: about 12 bytes a line */
            size_t cap = 32 + c->n_images * 32, len = 0;
            SV_FREE(q);
            q = SV__CAST(char *, sv__alloc(cap, "image_split.tsv"));
            if (!q) { rc = SV_ERR_NOMEM; goto done; }
            len += (size_t)snprintf(q, cap, "image\tsplit\n");
            for (i = 0; i < c->n_images; i++)
                len += (size_t)snprintf(q + len, cap - len, "%zu\t%s\n", i, sv_split_name(c->image_split[i]));
            SV__PATH(p, "image_split.tsv", NULL, NULL);
            SV__TRY(sv__write_text(p, q));
        }
    }
    for (s = SV_SPLIT_VAL; s <= SV_SPLIT_OOD; s++) {   /* val.item: the ABX curve of ./train */
        sv_item_set it;
        if (c->split_begin[s + 1] == c->split_begin[s]) continue;
        SV__TRY(sv_corpus_items(c, s, &it));
        SV__PATH(p, "%s%s", sv_split_name(s), ".item");
        rc = it.n_items ? sv_item_write(p, &it) : SV_OK;
        sv_item_set_free(&it);
        if (rc != SV_OK) goto done;
    }
    SV__PATH(p, "stats.txt", NULL, NULL);
    SV__TRY(sv__corpus_stats(c, p));
    /* last: everything above is on disk (each file fsynced before its rename) */
    SV__PATH(p, ".complete", NULL, NULL);
    SV__TRY(sv__write_text(p, "ssl_vgs corpus complete\n"));
#undef SV__TRY
#undef SV__PATH
done:
    SV_FREE(p);
    SV_FREE(q);
    return rc;
}

/* ---------------------------------------------------------------- 12.8 the corpus as a dataset */
SV_DEF int sv_data_builtin(sv_data *d, const sv_corpus_config *cfg)
{
    sv_corpus *c;
    int s;
    size_t i;
    memset(d, 0, sizeof *d);
    c = sv_corpus_generate(cfg);
    if (!c) return sv_last_status() ? sv_last_status() : SV_ERR_ARG;
    d->builtin = c;
    d->speakers = (char **)sv__calloc(c->n_speakers, sizeof(char *), "dataset");
    if (!d->speakers) { sv_data_free(d); return SV_ERR_NOMEM; }
    d->n_speakers = c->n_speakers;
    for (i = 0; i < c->n_speakers; i++) if (!(d->speakers[i] = sv__strdup(c->speakers[i].name))) { sv_data_free(d); return SV_ERR_NOMEM; }
    for (s = 0; s < SV_SPLIT_COUNT; s++) {
        size_t b = c->split_begin[s], n = c->split_begin[s + 1] - b;
        if (sv__data_alloc_split(d, s, n) != SV_OK) { sv_data_free(d); return SV_ERR_NOMEM; }
        for (i = 0; i < n; i++) {
            const sv_utt *u = &c->utts[b + i];
            d->audio[s][i] = u->audio;          /* borrowed from the corpus */
            d->len[s][i] = u->n_samples;
            d->image[s][i] = u->image;
            d->speaker[s][i] = u->speaker;
            if (!(d->id[s][i] = sv__strdup(u->name))) { sv_data_free(d); return SV_ERR_NOMEM; }
        }
        if (s != SV_SPLIT_TRAIN) {   /* val: train's ABX curve; test, ood: the final ABX */
            if (sv_corpus_items(c, s, &d->items[s]) != SV_OK) { sv_data_free(d); return sv_last_status(); }
            d->has_items[s] = 1;
        }
    }
    d->regions = c->regions;
    d->boxes = c->boxes;
    d->n_images = c->n_images;
    d->R = c->n_regions;
    d->Dimg = c->region_dim;
    snprintf(d->source, sizeof d->source, "builtin corpus, seed %llu", (unsigned long long)cfg->seed);
    return SV_OK;
}

/* "builtin" or "builtin:key=value,..." (keys: images, val_images, test_images, captions,
   train_speakers, test_speakers, ood_speakers, ood_utts, seed, pixels = 1 for raw-pixel regions
   instead of detector features) into a corpus config, every number whole and the config checked
   (sv_data_spec_check, without generating anything). */
static int sv__builtin_spec_parse(const char *spec, sv_corpus_config *cc)
{
    const char *p = spec[7] ? spec + 8 : spec + 7;
    *cc = sv_corpus_default_config();
    while (*p) {
        char key[32], num[32];
        size_t kl = 0, nl = 0, v = 0;
        while (*p && *p != '=' && *p != ',' && kl < sizeof key - 1) key[kl++] = *p++;
        key[kl] = 0;
        if (*p != '=') return sv__fail(SV_ERR_ARG, "data spec '%s': expected key=value", spec);
        p++;
        while (*p && *p != ',' && nl < sizeof num - 1) num[nl++] = *p++;
        num[nl] = 0;
        if (*p && *p != ',') return sv__fail(SV_ERR_ARG, "data spec '%s': the value of '%s' is too long", spec, key);
        if (*p == ',') p++;
        if (sv_parse_size(num, 0, SIZE_MAX, &v) != SV_OK) return sv__fail(SV_ERR_ARG, "data spec '%s': %s: %s", spec, key, sv_last_error());
        if (!strcmp(key, "images")) cc->n_train_images = v;
        else if (!strcmp(key, "val_images")) cc->n_val_images = v;
        else if (!strcmp(key, "test_images")) cc->n_test_images = v;
        else if (!strcmp(key, "captions")) cc->captions_per_image = v;
        else if (!strcmp(key, "train_speakers")) cc->n_train_speakers = v;
        else if (!strcmp(key, "test_speakers")) cc->n_test_speakers = v;
        else if (!strcmp(key, "ood_speakers")) cc->n_ood_speakers = v;
        else if (!strcmp(key, "ood_utts")) cc->n_ood_utts = v;
        else if (!strcmp(key, "seed")) cc->seed = (uint64_t)v;
        else if (!strcmp(key, "pixels") && v <= 1) cc->region_features = v ? SV_REGIONS_PIXELS : SV_REGIONS_DETECTOR;
        else if (!strcmp(key, "pixels")) return sv__fail(SV_ERR_ARG, "data spec '%s': pixels must be 0 or 1", spec);
        else return sv__fail(SV_ERR_ARG, "data spec '%s': unknown key '%s' (images, val_images, test_images, captions, "
                                         "train_speakers, test_speakers, ood_speakers, ood_utts, seed, pixels)", spec, key);
    }
    if (sv__corpus_check(cc) != SV_OK) return sv__fail(SV_ERR_ARG, "data spec '%s': %s", spec, sv_last_error());
    return SV_OK;
}
#endif /* SSL_VGS_NO_CORPUS */

#endif /* SSL_VGS_IMPLEMENTATION_DONE */
#endif /* SSL_VGS_IMPLEMENTATION */

/*
   Revision history
       0.3  (2026-12)  MT4SSL (sv_mt4ssl_loss, EMA teacher, MFCC, k-means, target folders);
                       safetensors and Hugging Face wav2vec 2.0 weights in and out (sv_hf_load,
                       sv_hf_save), a resampler in sv_wav_load_16k; strict numbers
                       (sv_parse_size, sv_parse_double), a range for every config field,
                       checkpoint version 2 with the run's settings and never non-finite
                       weights; every file little-endian on every host, 32-bit size checks;
                       bf16 products (sv_gemm_bf16, config field precision); shard mode for
                       data-parallel training (sample-keyed draws, exact gradient sums), which
                       changes training numbers from the same seed; per-query retrieval ranks;
                       ABX intervals by a bootstrap over phonetic contexts (sv_abx_opts.bootstrap);
                       streamed datasets (sv_data_open_streamed, sv_data_audio, sv_data_image,
                       sv_wav_length_16k): audio and image rows read from disk when used.
       0.2  (2026-12)  The model as named steps (sv_w2v2_forward, sv_w2v2_quantize,
                       sv_w2v2_contrastive_loss, sv_w2v2_diversity_loss, sv_w2v2_feature_penalty,
                       sv_w2v2_loss, sv_vgs_audio_branch, sv_vgs_image_branch, sv_vgs_loss_av);
                       ops count their FLOPs (sv_ctx_flops); progress hooks per context
                       (sv_ctx_set_progress); public atomic file writing (sv_file_create,
                       sv_file_commit); the built-in corpus is an optional section
                       (SSL_VGS_NO_CORPUS); the report, final_eval.json and the ZeroSpeech
                       submission layout moved to eval.c (sv_report, sv_eval_write_json and
                       sv_export_zerospeech removed).
       0.1  (2026-11)  First release: wav2vec 2.0 + FaST-VGS+ training and evaluation, SIMD
                       kernels, the built-in corpus.
*/

/*
------------------------------------------------------------------------------
MIT License

Copyright (c) 2026 the ssl_vgs authors

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT
OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
------------------------------------------------------------------------------
*/
