/* ssl_vgs.h - v0.1 - self-supervised (wav2vec 2.0) + visually grounded speech learning in one C header.
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
   OpenMP is used when the compiler has it on (-fopenmp); results never depend on the thread count.

   Dimension letters used in shape comments throughout:
       B batch, S samples, T frames, C conv channels, D model width, H heads, L layers,
       R image regions, E embedding width, G quantizer groups, V entries per group,
       M/N/K the rows/columns/inner size of a matrix product.

   Table of contents (the declarations and the implementation both follow it):
       1  Platform: status codes, errors, allocation, threads, RNG, SIMD macro table
       2  Kernels: GEMM, vector maths, row softmax / layer norm
       3  Tensors and the arena
       4  Autodiff tape
       5  Layers (ops), each forward next to its backward
       6  wav2vec 2.0
       7  VGS (audio and image branches)
       8  Losses
       9  Optimizer
       10 Data and I/O: WAV, NPY, manifests, .item, checkpoints, the built-in corpus
       11 Metrics: retrieval recall@k, ABX, SVG figures

   API conventions:
       - Functions that can fail because of input return an int status (0 = SV_OK) or NULL, and
         sv_last_error() says why in one line. The library never calls exit().
       - Sizes and offsets are size_t.
*/
#ifndef SSL_VGS_H
#define SSL_VGS_H

#include <stddef.h>
#include <stdint.h>

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

/*@@DECL_KERNELS@@*/

/*@@DECL_TENSORS@@*/

/*@@DECL_REST@@*/

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
    va_start(ap, fmt);
    vsnprintf(sv__errbuf, sizeof sv__errbuf, fmt, ap);
    va_end(ap);
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

static SV__UNUSED void *sv__alloc(size_t n, const char *what)
{
    void *p = n ? SV_MALLOC(n) : NULL;
    if (n && !p) sv__fail(SV_ERR_NOMEM, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

static SV__UNUSED void *sv__calloc(size_t count, size_t size, const char *what)
{
    size_t n;
    void *p;
    if (!sv__mul_ok(count, size, &n)) {
        sv__fail(SV_ERR_NOMEM, "size overflow allocating %zu x %zu bytes for %s", count, size, what);
        return NULL;
    }
    p = sv__alloc(n, what);
    if (p) memset(p, 0, n);
    return p;
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

/*@@IMPL_SIMD@@*/

/*@@IMPL_KERNELS@@*/

/*@@IMPL_TENSORS@@*/

/*@@IMPL_REST@@*/

#endif /* SSL_VGS_IMPLEMENTATION_DONE */
#endif /* SSL_VGS_IMPLEMENTATION */

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
