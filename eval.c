/* eval.c - evaluate a trained checkpoint (retrieval recall@k, ABX per layer, held-out losses,
   ZeroSpeech 2021 feature export) and build the study's report over run folders.
   The measurements live in ssl_vgs.h (section 11.5); this driver parses options, prints, and
   writes the results files, the ZeroSpeech submission layout and the study's report. Run `./eval --help`. */
#define _POSIX_C_SOURCE 200809L /* opendir, stat, strdup, mkdir, clock_gettime: ./eval features */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#define SSL_VGS_IMPLEMENTATION
#include "ssl_vgs.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <dirent.h>
#include <ctype.h>

static const char *usage =
    "usage:\n"
    "  ./eval --ckpt RUN/final.ckpt [options]     evaluate one checkpoint\n"
    "  ./eval --report RUN... [--out DIR]         tables + figures over run folders\n"
    "  ./eval --report STUDY... [--out DIR]       over seeds: a ./train --all --seeds N folder (or\n"
    "                                             several --all folders): means, 95% intervals and\n"
    "                                             the paper's findings, each with its verdict\n"
    "  ./eval features --model M [opts] INPUT...  hidden states of WAV files as .npy or ZeroSpeech\n"
    "                                             text (./eval features --help)\n"
    "  ./eval embeddings --ckpt C [opts]          audio and image embeddings of a split as .npy\n"
    "                                             (./eval embeddings --help)\n"
    "\n"
    "checkpoint evaluation (with none of --retrieval/--abx/--losses/--export-zs: retrieval and ABX):\n"
    "  --ckpt PATH          checkpoint written by ./train (required)\n"
    "  --data SPEC          data: \"builtin[:key=value,...]\" or a corpus folder\n"
    "                       (default: the line in the checkpoint folder's data.spec)\n"
    "  --split NAME         retrieval / loss split: test or val (default test)\n"
    "  --retrieval          recall@1/5/10 both directions, with chance levels\n"
    "  --abx                ABX error per layer (cnn, L0 = transformer input, L1..L)\n"
    "  --abx-split NAME     test, ood or both (default both; sets without .item tokens are skipped)\n"
    "  --abx-mode MODE      exact or sampled (default sampled: <= 10 tokens per group, <= 5 X\n"
    "                       speakers, like the official ZeroSpeech evaluator, seeded)\n"
    "  --losses             held-out loss_AV, loss_AUD, accuracy, perplexities on --split\n"
    "  --targets DIR        MT4SSL offline targets for --losses (default: the run log's, if any)\n"
    "  --max-batches N      batches for --losses (default 0 = all)\n"
    "  --seed N             masking seed of --losses, ABX sampling seed, bootstrap seed (default 0)\n"
    "  --bootstrap N        resamples of the test items for the recall and ABX intervals,\n"
    "                       10..1000000 (default 1000; percentile 95 % intervals, written to\n"
    "                       final_eval.json; ABX resamples the phonetic contexts)\n"
    "  --batch N            utterances per forward pass (default 16)\n"
    "  --threads N          OpenMP threads (default: all)\n"
    "  --abx-set PATH       ABX per layer on an external ZeroSpeech-style set instead of the run's\n"
    "                       corpus: a manifest (.tsv) with its .item beside it, or an .item file\n"
    "                       with <file>.wav beside it (ZeroSpeech 2021 phonetic/dev-clean). Results\n"
    "                       go to RUN/eval_<name>.json, never to final_eval.json; with --export-zs\n"
    "                       the set's features are exported (phonetic/<name>/)\n"
    "  --set-name NAME      the set's label (default: the file name without extension)\n"
    "  --export-zs DIR      write a ZeroSpeech 2021 phonetic submission of --layer to DIR\n"
    "                       (values printed with 9 significant digits: float32 exactly)\n"
    "  --layer K            layer to export: cnn (the CNN output), 0 (transformer input) .. L\n"
    "                       (default: n_shared, the\n"
    "                       last shared layer, which the VGS branch reads)\n"
    "  --zs-split NAME      split to export: ood or test (default ood)\n"
    "  --json PATH          where to write the numbers (default: RUN/final_eval.json, RUN = the\n"
    "                       checkpoint's folder; written when retrieval or ABX ran)\n"
    "report:\n"
    "  --report RUN...      run folders written by ./train (log.jsonl, optional final_eval.json)\n"
    "  --out DIR            output folder (default: the runs' common parent folder, else ./report)\n"
    "  -h, --help           this text\n";

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "eval: ");
    fprintf(stderr, fmt, a ? a : "", b ? b : "");
    fprintf(stderr, "\n");
    return 2;
}

/* A whole number in [min, max] ("10x", "-1", "nan" are refused): 1, or 0 after a one-line error. */
static int parse_size(const char *opt, const char *s, size_t min, size_t max, size_t *out)
{
    if (sv_parse_size(s, min, max, out) != SV_OK) { fprintf(stderr, "eval: %s: %s\n", opt, sv_last_error()); return 0; }
    return 1;
}

static void progress(const char *what, size_t done, size_t total, void *user)
{
    (void)user;
    fflush(stdout);
    if (done == total || done % 8 == 0) {
        fprintf(stderr, "\r  %s: %zu/%zu", what, done, total);
        if (done == total) fprintf(stderr, "\n");
        fflush(stderr);
    }
}

static int split_of(const char *s)
{
    if (strcmp(s, "train") == 0) return SV_SPLIT_TRAIN;
    if (strcmp(s, "val") == 0) return SV_SPLIT_VAL;
    if (strcmp(s, "test") == 0) return SV_SPLIT_TEST;
    if (strcmp(s, "ood") == 0) return SV_SPLIT_OOD;
    return -1;
}

/* folder part of a path ("." for none) */
static void dir_of(const char *path, char *buf, size_t cap)
{
    const char *sl = strrchr(path, '/');
    if (!sl) snprintf(buf, cap, ".");
    else if (sl == path) snprintf(buf, cap, "/");
    else snprintf(buf, cap, "%.*s", (int)(sl - path), path);
}

static void print_abx(const char *set, const sv_abx_layer_result *r, size_t n)
{
    size_t i, bw = 0, ba = 0;
    printf("\nABX error (%%) on the %s set, %s mode, %zu tokens (%zu dropped), chance 50:\n", set,
           r[0].r.sampled ? "sampled" : "exact", r[0].r.n_tokens, r[0].r.n_dropped);
    printf("  %-6s %5s %10s %10s\n", "layer", "dim", "within", "across");
    for (i = 0; i < n; i++) {
        printf("  %-6s %5zu %10.2f %10.2f\n", r[i].name, r[i].dim, r[i].r.within, r[i].r.across);
        if (r[i].r.within < r[bw].r.within) bw = i;
        if (r[i].r.across < r[ba].r.across) ba = i;
    }
    printf("  best: within %.2f (%s), across %.2f (%s)\n", r[bw].r.within, r[bw].name, r[ba].r.across, r[ba].name);
    if (isfinite(r[bw].r.within_lo) || isfinite(r[ba].r.across_lo))
        printf("  95%% bootstrap over contexts (%zu / %zu): within %.2f..%.2f, across %.2f..%.2f\n", r[bw].r.within_contexts,
               r[ba].r.across_contexts, r[bw].r.within_lo, r[bw].r.within_hi, r[ba].r.across_lo, r[ba].r.across_hi);
}

/* ---------------------------------------------------------------- paths */
/* "dir/name" into buf; 0 (with a message) when it does not fit */
static int path_join(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "eval: path too long: %s/%s\n", dir, name);
        return 0;
    }
    return 1;
}

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

/* ---------------------------------------------------------------- final_eval.json
   A run's final numbers as one flat JSON line (readable with sv_json_number / sv_json_string):
   "kind":"final_eval", "ckpt", "data", "split", "n_images", "n_captions", r1_s2i .. r10_i2s
   (when rec is not NULL); for each ABX set s in {test, ood} given: "abx_<s>_mode" ("exact" or
   "sampled"), "abx_<s>_layers" ("cnn,L0,L1,..."), "abx_<s>_within_<layer>",
   "abx_<s>_across_<layer>", and the best layer: "abx_<s>_within", "abx_<s>_within_layer",
   "abx_<s>_across", "abx_<s>_across_layer"; "abx_<s>_mfcc_within" / "_across" for the MFCC
   reference (not a layer, not in the best). Non-finite numbers are written as null. Written to
   path.tmp and renamed, so a crash never leaves half a file. */
static void json_num(FILE *f, const char *key, double v)
{
    if (isfinite(v)) fprintf(f, ",\"%s\":%.6g", key, v);
    else fprintf(f, ",\"%s\":null", key);
}

static void json_str(FILE *f, const char *key, const char *s)
{
    fprintf(f, ",\"%s\":\"", key);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

/* index of the smallest finite value (within: which = 0, across: 1), or SIZE_MAX */
/* ---------------------------------------------------------------- confidence intervals
   Seeds: the mean over seeds with a Student-t 95 % interval (mean +- t(0.975, n-1) s / sqrt(n)).
   Test items: a percentile bootstrap (Efron & Tibshirani 1993, ch. 13) that resamples the test
   queries with replacement; recall@k of a resample is the share of its ranks <= k. */
static const char *const recall_keys[6] = {"r1_s2i", "r5_s2i", "r10_s2i", "r1_i2s", "r5_i2s", "r10_i2s"};

/* t quantile 0.975 for df degrees of freedom (table to 30; above, 1.96 + 2.5 / df is within 0.002) */
static double t975(size_t df)
{
    static const double t[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    if (df == 0) return NAN;
    return df <= 30 ? t[df - 1] : 1.96 + 2.5 / (double)df;
}

/* mean of the finite values and the half-width of its 95 % t-interval (NaN with fewer than 2) */
static double mean_ci(const double *v, size_t n, double *half, size_t *used)
{
    double m = 0, ss = 0;
    size_t i, k = 0;
    for (i = 0; i < n; i++) if (isfinite(v[i])) { m += v[i]; k++; }
    if (used) *used = k;
    *half = NAN;
    if (k == 0) return NAN;
    m /= (double)k;
    for (i = 0; i < n; i++) if (isfinite(v[i])) ss += (v[i] - m) * (v[i] - m);
    if (k > 1) *half = t975(k - 1) * sqrt(ss / (double)(k - 1)) / sqrt((double)k);
    return m;
}

static uint64_t boot_next(uint64_t *s)   /* splitmix64 */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int cmp_dbl(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

/* 95 % percentile-bootstrap interval of recall@k (k = 1, 5, 10) from per-query ranks (rank 0 =
   not a query, left out); ci[i] for ks[i]. n_boot resamples of all queries, seeded. */
static int boot_recall(const size_t *rank, size_t n, size_t n_boot, uint64_t seed, double ci[3][2])
{
    static const size_t ks[3] = {1, 5, 10};
    size_t *q = (size_t *)malloc((n ? n : 1) * sizeof *q), nq = 0, i, b, k;
    double *st = (double *)malloc(3 * (n_boot ? n_boot : 1) * sizeof *st);
    uint64_t rs = seed ^ 0x5EEDB007ull;
    if (!q || !st) { free(q); free(st); return 0; }
    for (i = 0; i < n; i++) if (rank[i]) q[nq++] = rank[i];
    for (b = 0; b < n_boot; b++) {
        size_t hit[3] = {0, 0, 0};
        for (i = 0; i < nq; i++) {
            size_t r = q[boot_next(&rs) % nq];
            for (k = 0; k < 3; k++) hit[k] += r <= ks[k];
        }
        for (k = 0; k < 3; k++) st[k * n_boot + b] = nq ? 100.0 * (double)hit[k] / (double)nq : NAN;
    }
    for (k = 0; k < 3; k++) {
        qsort(st + k * n_boot, n_boot, sizeof *st, cmp_dbl);
        ci[k][0] = st[k * n_boot + (size_t)floor(0.025 * (double)(n_boot - 1))];
        ci[k][1] = st[k * n_boot + (size_t)ceil(0.975 * (double)(n_boot - 1))];
    }
    free(q); free(st);
    return 1;
}

static size_t abx_best(const sv_abx_layer_result *r, size_t n, int which)
{
    size_t i, best = SIZE_MAX;
    for (i = 0; i < n; i++) {
        double v = which ? r[i].r.across : r[i].r.within;
        if (!isfinite(v)) continue;
        if (best == SIZE_MAX || v < (which ? r[best].r.across : r[best].r.within)) best = i;
    }
    return best;
}

/* The top-level "key":value pairs of a flat JSON object line, in order; raw value text. Returns
   the number of pairs, or -1 when the line is not such an object. */
typedef struct json_pair { const char *key, *val; size_t klen, vlen; } json_pair;
static int json_pairs(const char *s, json_pair *out, int cap)
{
    int n = 0;
    while (*s == ' ') s++;
    if (*s++ != '{') return -1;
    for (;;) {
        const char *k, *v;
        while (*s == ' ' || *s == ',') s++;
        if (*s == '}') return n;
        if (*s != '"') return -1;
        k = ++s;
        while (*s && *s != '"') s += *s == '\\' && s[1] ? 2 : 1;
        if (!*s) return -1;
        if (n < cap) { out[n].key = k; out[n].klen = (size_t)(s - k); }
        s++;
        while (*s == ' ') s++;
        if (*s++ != ':') return -1;
        while (*s == ' ') s++;
        v = s;
        if (*s == '"') {
            s++;
            while (*s && *s != '"') s += *s == '\\' && s[1] ? 2 : 1;
            if (!*s) return -1;
            s++;
        } else {
            while (*s && *s != ',' && *s != '}') s++;
            if (!*s || s == v) return -1;
        }
        if (n < cap) { out[n].val = v; out[n].vlen = (size_t)(s - v); }
        n++;
    }
}

/* which part of final_eval.json a key belongs to: 1 retrieval, 2 ABX test, 3 ABX ood, 0 header */
static int json_group(const char *k, size_t n)
{
    static const char *const ret[] = {"split", "n_images", "n_captions", "r1_s2i", "r5_s2i", "r10_s2i", "r1_i2s", "r5_i2s", "r10_i2s",
                                      "recall_boot"};
    size_t i;
    for (i = 0; i < sizeof ret / sizeof *ret; i++) if (strlen(ret[i]) == n && !strncmp(k, ret[i], n)) return 1;
    /* the bootstrap interval of each recall: r10_s2i_lo, r10_s2i_hi, ... */
    if (n > 3 && k[0] == 'r' && (!strncmp(k + n - 3, "_lo", 3) || !strncmp(k + n - 3, "_hi", 3)))
        for (i = 3; i < 9; i++) if (strlen(ret[i]) == n - 3 && !strncmp(k, ret[i], n - 3)) return 1;
    if (n > 9 && !strncmp(k, "abx_test_", 9)) return 2;
    if (n > 8 && !strncmp(k, "abx_ood_", 8)) return 3;
    return 0;
}

/* final_eval.json of this checkpoint and data: the parts evaluated now replace theirs, the other
   parts of an existing file of the same checkpoint (ckpt_id) and data are kept, so that
   `--retrieval` after `--abx` does not drop the ABX numbers. A file of another checkpoint or
   other data is replaced whole (with a note). */
static int write_final_json(const char *path, const char *ckpt, const char *data, int split, const sv_recall *rec,
                            const double (*rec_ci)[2], size_t n_boot, const sv_abx_layer_result *abx_test, size_t n_test,
                            const sv_abx_layer_result *abx_ood, size_t n_ood, const sv_abx_layer_result *mfcc)
{
    char *tmp, key[64], idbuf[32];
    unsigned char *old = NULL;
    size_t oldn = 0, s, i;
    json_pair pairs[512];
    int np = 0, keep[4] = {0, 0, 0, 0};
    uint64_t id = 0;
    FILE *f;
    if (sv_checkpoint_id(ckpt, &id) != SV_OK) return sv_last_status();
    snprintf(idbuf, sizeof idbuf, "%016llx", (unsigned long long)id);
    if (file_exists(path)) {
        char oid[32], odata[4096];
        if (sv_file_read(path, &old, &oldn) != SV_OK) return sv_last_status();
        old[strcspn((char *)old, "\n")] = 0;
        if (sv_json_string((char *)old, "ckpt_id", oid, sizeof oid) && !strcmp(oid, idbuf) &&
            sv_json_string((char *)old, "data", odata, sizeof odata) && !strcmp(odata, data ? data : "") &&
            (np = json_pairs((char *)old, pairs, 512)) > 0 && np <= 512) {
            keep[1] = !rec; keep[2] = !(abx_test && n_test); keep[3] = !(abx_ood && n_ood);
            for (i = 0; i < (size_t)np; i++)
                if (keep[json_group(pairs[i].key, pairs[i].klen)]) break;
            if (i < (size_t)np) printf("keeping the other results of %s (same checkpoint and data)\n", path);
        } else {
            np = 0;
            printf("note: replacing %s (results of another checkpoint or data)\n", path);
        }
    }
    if (!(f = sv_file_create(path, &tmp))) { sv_io_free(old); return sv_last_status(); }
    fprintf(f, "{\"kind\":\"final_eval\"");
    json_str(f, "ckpt", ckpt ? ckpt : "");
    json_str(f, "ckpt_id", idbuf);
    json_str(f, "data", data ? data : "");
    for (i = 0; i < (size_t)np; i++)
        if (keep[json_group(pairs[i].key, pairs[i].klen)] && json_group(pairs[i].key, pairs[i].klen))
            fprintf(f, ",\"%.*s\":%.*s", (int)pairs[i].klen, pairs[i].key, (int)pairs[i].vlen, pairs[i].val);
    sv_io_free(old);
    if (rec) {
        json_str(f, "split", split >= 0 && split < SV_SPLIT_COUNT ? sv_split_name(split) : "");
        fprintf(f, ",\"n_images\":%zu,\"n_captions\":%zu", rec->n_images_scored, rec->n_captions);
        json_num(f, "r1_s2i", rec->s2i_r1); json_num(f, "r5_s2i", rec->s2i_r5);
        json_num(f, "r10_s2i", rec->s2i_r10); json_num(f, "r1_i2s", rec->i2s_r1);
        json_num(f, "r5_i2s", rec->i2s_r5); json_num(f, "r10_i2s", rec->i2s_r10);
        if (rec_ci) {   /* percentile bootstrap over test items, in the order of recall_keys */
            fprintf(f, ",\"recall_boot\":%zu", n_boot);
            for (i = 0; i < 6; i++) {
                snprintf(key, sizeof key, "%s_lo", recall_keys[i]);
                json_num(f, key, rec_ci[i][0]);
                snprintf(key, sizeof key, "%s_hi", recall_keys[i]);
                json_num(f, key, rec_ci[i][1]);
            }
        }
    }
    for (s = 0; s < 2; s++) {
        const sv_abx_layer_result *r = s ? abx_ood : abx_test;
        size_t n = s ? n_ood : n_test, b;
        const char *sn = s ? "ood" : "test";
        char names[SV_ABX_MAX_LAYERS * 8];
        int w;
        if (!r || !n) continue;
        snprintf(key, sizeof key, "abx_%s_mode", sn);
        json_str(f, key, r[0].r.sampled ? "sampled" : "exact");
        names[0] = 0;
        for (i = 0; i < n; i++) {
            size_t o = strlen(names);
            snprintf(names + o, sizeof names - o, "%s%s", i ? "," : "", r[i].name);
        }
        snprintf(key, sizeof key, "abx_%s_layers", sn);
        json_str(f, key, names);
        for (i = 0; i < n; i++) {
            snprintf(key, sizeof key, "abx_%s_within_%s", sn, r[i].name);
            json_num(f, key, r[i].r.within);
            snprintf(key, sizeof key, "abx_%s_across_%s", sn, r[i].name);
            json_num(f, key, r[i].r.across);
        }
        if (mfcc && mfcc[s].name[0]) {     /* the MFCC reference row, outside the layer list */
            snprintf(key, sizeof key, "abx_%s_mfcc_within", sn);
            json_num(f, key, mfcc[s].r.within);
            snprintf(key, sizeof key, "abx_%s_mfcc_across", sn);
            json_num(f, key, mfcc[s].r.across);
        }
        for (w = 0; w < 2; w++) {
            b = abx_best(r, n, w);
            snprintf(key, sizeof key, "abx_%s_%s", sn, w ? "across" : "within");
            json_num(f, key, b == SIZE_MAX ? NAN : (w ? r[b].r.across : r[b].r.within));
            snprintf(key, sizeof key, "abx_%s_%s_layer", sn, w ? "across" : "within");
            json_str(f, key, b == SIZE_MAX ? "" : r[b].name);
            if (b != SIZE_MAX && isfinite(w ? r[b].r.across_lo : r[b].r.within_lo)) {
                /* the best layer's bootstrap interval over phonetic contexts */
                snprintf(key, sizeof key, "abx_%s_%s_lo", sn, w ? "across" : "within");
                json_num(f, key, w ? r[b].r.across_lo : r[b].r.within_lo);
                snprintf(key, sizeof key, "abx_%s_%s_hi", sn, w ? "across" : "within");
                json_num(f, key, w ? r[b].r.across_hi : r[b].r.within_hi);
            }
        }
    }
    fprintf(f, "}\n");
    return sv_file_commit(f, tmp, path, 1);
}

/* The ABX of an external set (--abx-set) into its own file, labelled by the set's name. */
static int write_set_json(const char *path, const char *ckpt, const char *set_path, const char *name,
                          const sv_abx_layer_result *r, size_t n, const sv_abx_layer_result *mfcc)
{
    char *tmp, key[64], idbuf[32], names[SV_ABX_MAX_LAYERS * 8];
    uint64_t id = 0;
    size_t i, b;
    int w;
    FILE *f;
    if (sv_checkpoint_id(ckpt, &id) != SV_OK) return sv_last_status();
    snprintf(idbuf, sizeof idbuf, "%016llx", (unsigned long long)id);
    if (!(f = sv_file_create(path, &tmp))) return sv_last_status();
    fprintf(f, "{\"kind\":\"abx_set\"");
    json_str(f, "set", name);
    json_str(f, "set_path", set_path);
    json_str(f, "ckpt", ckpt);
    json_str(f, "ckpt_id", idbuf);
    json_str(f, "abx_mode", r[0].r.sampled ? "sampled" : "exact");
    fprintf(f, ",\"n_tokens\":%zu,\"n_dropped\":%zu", r[0].r.n_tokens, r[0].r.n_dropped);
    names[0] = 0;
    for (i = 0; i < n; i++) {
        size_t o = strlen(names);
        snprintf(names + o, sizeof names - o, "%s%s", i ? "," : "", r[i].name);
    }
    json_str(f, "abx_layers", names);
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof key, "abx_within_%s", r[i].name);
        json_num(f, key, r[i].r.within);
        snprintf(key, sizeof key, "abx_across_%s", r[i].name);
        json_num(f, key, r[i].r.across);
    }
    for (w = 0; w < 2; w++) {
        b = abx_best(r, n, w);
        json_num(f, w ? "abx_across" : "abx_within", b == SIZE_MAX ? NAN : (w ? r[b].r.across : r[b].r.within));
        json_str(f, w ? "abx_across_layer" : "abx_within_layer", b == SIZE_MAX ? "" : r[b].name);
    }
    if (mfcc && mfcc->name[0]) { json_num(f, "abx_mfcc_within", mfcc->r.within); json_num(f, "abx_mfcc_across", mfcc->r.across); }
    fprintf(f, "}\n");
    return sv_file_commit(f, tmp, path, 1);
}

/* ---------------------------------------------------------------- ZeroSpeech 2021 export
   A phonetic submission of one layer (0..L, as sv_extract_features) for every utterance of a
   split, in the layout the official validator (zerospeech2021 `validate`) expects:
       dir/meta.yaml                       author, affiliation, description, open_source,
                                           train_set, gpu_budget, parameters: phonetic (metric
                                           cosine, frame_shift) and semantic (cosine, mean)
       dir/phonetic/<subset>/<id>.txt      one frame per line, space-separated floats
   subset is "dev-clean" for the ood split (the LibriSpeech set the study's ABX uses), else the
   split name. Edit meta.yaml's author/affiliation before submitting. */

/* YAML double-quoted scalar: backslash and quote escaped, control characters dropped. */
static void yaml_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') { fputc('\\', f); fputc(*s, f); }
        else if ((unsigned char)*s >= 0x20) fputc(*s, f);
    }
    fputc('"', f);
}

#define LAYER_CNN ((size_t)-2)   /* --layer cnn: the CNN output, reported as a layer beside L0..L */

static int export_zerospeech(sv_model *m, sv_ctx *c, const sv_data *d, int split, size_t layer, const char *dir,
                             const char *subset_name)
{
    const char *subset = subset_name ? subset_name : split == SV_SPLIT_OOD ? "dev-clean" : sv_split_name(split);
    size_t i, t, k, hop = 1, L = m->cfg.n_shared + m->cfg.n_decoder;
    char phon[1100], sub[1200], p[1400], desc[512], *tmp;
    FILE *f;
    if (split < 0 || split >= SV_SPLIT_COUNT) { fprintf(stderr, "eval: bad split %d\n", split); return 0; }
    if (layer > L && layer != LAYER_CNN) { fprintf(stderr, "eval: layer %zu: the model has layers 0..%zu\n", layer, L); return 0; }
    if (d->n[split] == 0) { fprintf(stderr, "eval: split %s is empty\n", sv_split_name(split)); return 0; }
    for (i = 0; i < m->cfg.n_conv; i++) hop *= m->cfg.conv_stride[i];
    if (sv_make_dir(dir) != SV_OK || !path_join(phon, sizeof phon, dir, "phonetic") || sv_make_dir(phon) != SV_OK ||
        !path_join(sub, sizeof sub, phon, subset) || sv_make_dir(sub) != SV_OK || !path_join(p, sizeof p, dir, "meta.yaml")) {
        if (sv_last_status()) fprintf(stderr, "eval: %s\n", sv_last_error());
        return 0;
    }
    /* meta.yaml: exactly the keys zerospeech2021/meta.py validates (gpu_budget a float) */
    if (!(f = sv_file_create(p, &tmp))) { fprintf(stderr, "eval: %s\n", sv_last_error()); return 0; }
    if (layer == LAYER_CNN)
        snprintf(desc, sizeof desc, "ssl_vgs %s model (wav2vec 2.0 + VGS): CNN feature encoder output (before the "
                 "projection), utterance-normalised input; %s of %s", m->cfg.name, sv_split_name(split), d->source);
    else
        snprintf(desc, sizeof desc, "ssl_vgs %s model (wav2vec 2.0 + VGS): hidden states of layer %zu of 0..%zu "
                 "(0 = transformer input), utterance-normalised input; %s split of %s", m->cfg.name, layer, L,
                 sv_split_name(split), d->source);
    fputs("author: ", f); yaml_str(f, "ssl_vgs user"); fputc('\n', f);
    fputs("affiliation: ", f); yaml_str(f, "unknown"); fputc('\n', f);
    fputs("description: ", f); yaml_str(f, desc); fputc('\n', f);
    fputs("open_source: true\n", f);
    fputs("train_set: ", f); yaml_str(f, d->source); fputc('\n', f);
    fputs("gpu_budget: 0.0\n", f);
    fprintf(f, "parameters:\n  phonetic:\n    metric: cosine\n    frame_shift: %.17g\n"
               "  semantic:\n    metric: cosine\n    pooling: mean\n", (double)hop / 16000.0);
    if (sv_file_commit(f, tmp, p, 1) != SV_OK) { fprintf(stderr, "eval: %s\n", sv_last_error()); return 0; }
    for (i = 0; i < d->n[split]; i++) {
        float *x = NULL, *owned = NULL;
        const float *wave;
        size_t T = 0, D = 0;
        char name[400];
        int ok;
        if (sv_data_audio(d, split, i, &wave, &owned) != SV_OK) {
            fprintf(stderr, "eval: utterance %s: %s\n", d->id[split][i], sv_last_error());
            return 0;
        }
        if (layer == LAYER_CNN) {   /* the CNN output: one forward gives every layer; the others are dropped */
            float *all[SV_MAX_LAYERS + 1];
            size_t l;
            ok = sv_extract_all_layers(m, c, wave, d->len[split][i], all, &x, &T) == SV_OK;
            if (ok) for (l = 0; l <= L; l++) sv_io_free(all[l]);
            D = m->cfg.conv_dim[m->cfg.n_conv - 1];
        } else {
            ok = sv_extract_features(m, c, wave, d->len[split][i], layer, &x, &T, &D) == SV_OK;
        }
        sv_io_free(owned);
        if (!ok) {
            fprintf(stderr, "eval: utterance %s: %s\n", d->id[split][i], sv_last_error());
            return 0;
        }
        snprintf(name, sizeof name, "%s.txt", d->id[split][i]);
        if (!path_join(p, sizeof p, sub, name) || !(f = sv_file_create(p, &tmp))) {
            if (sv_last_status()) fprintf(stderr, "eval: %s\n", sv_last_error());
            sv_io_free(x);
            return 0;
        }
        for (t = 0; t < T; t++) {
            /* %.9g: 9 significant digits give every float32 back exactly (FLT_DECIMAL_DIG) */
            for (k = 0; k < D; k++) fprintf(f, k ? " %.9g" : "%.9g", (double)x[t * D + k]);
            fputc('\n', f);
        }
        sv_io_free(x);
        ok = sv_file_commit(f, tmp, p, 1) == SV_OK;
        if (!ok) { fprintf(stderr, "eval: %s\n", sv_last_error()); return 0; }
        progress("zerospeech export", i + 1, d->n[split], NULL);
    }
    return 1;
}

/* ---------------------------------------------------------------- the study's report
   Over run folders (each holding log.jsonl as ./train writes it, and optionally final_eval.json
   from ./eval), written into an output folder:
     results.md      Table I (recall) and Table II (ABX, best layer in parentheses) in the paper's
                     layout and row order (W2V2, VGS, VGS+, then the six schedules; other runs
                     after), chance levels, and the forgetting summary;
     loss_av.svg, loss_aud.svg   held-out losses over training steps, log y, switch marked;
     recall.svg      mean R@10 of both directions over training (forgetting);
     abx_best.svg    best-layer ABX within (test split) over training;
     abx_layers.svg, abx_layers_across.svg   final ABX per layer (ood set if evaluated, else test).
   Every figure has one series per run (in table order). Numbers come from final_eval.json when
   present, else from the last eval line of the log. The forgetting summary, for each schedule
   and each task stage A trained (retrieval: mean R@10; SSL: val loss_AUD and accuracy): the value
   at the switch, its min and max during stage B, at the end, and end - switch. */

/* one eval line of a log: v[EV_*] */
enum { EV_STEP, EV_STAGE, EV_VAV, EV_VAUD, EV_VACC, EV_R1S, EV_R5S, EV_R10S, EV_R1I, EV_R5I, EV_R10I,
       EV_ABXW, EV_ABXA, EV_MOFF, EV_MON,
       EV_R10M,             /* mean R@10 of both directions */
       EV_VABXW, EV_VABXA,  /* best-layer ABX on the validation items (train logs it at each evaluation) */
       EV_N };
typedef struct ev_rec { double v[EV_N]; } ev_rec;

typedef struct run_log {
    const char *dir;
    char name[64], stage_a[32], stage_b[32];
    char ssl[16];                   /* the SSL objective: "" (wav2vec 2.0), "mt4ssl", "w2v2+mt4ssl" */
    double switch_step, steps;
    ev_rec *ev; size_t n_ev, cap_ev;
    char *final_line;               /* final_eval.json, or NULL */
    double val_images, val_captions; /* the validation retrieval's size (chance level), NaN if unknown */
    int order;                      /* position in the paper's order (99: not a paper run) */
} run_log;

static const char *const paper_order[] = {
    "w2v2", "vgs", "vgsplus", "w2v2-vgsplus", "vgs-vgsplus", "w2v2-vgs", "vgs-w2v2", "vgsplus-w2v2", "vgsplus-vgs"
};

static const char *stage_display(const char *s, const char *ssl)
{
    /* the SSL-only stage is named after its objective */
    if (strcmp(s, "w2v2") == 0) return !strcmp(ssl, "mt4ssl") ? "MT4SSL" : !strcmp(ssl, "w2v2+mt4ssl") ? "W2V2+MT4SSL" : "W2V2";
    if (strcmp(s, "vgs") == 0) return "VGS";
    if (strcmp(s, "vgsplus") == 0) return "VGS+";
    return s;
}

/* "W2V2", "(W2V2, VGS+)", or the run name itself */
static void run_display(const run_log *r, char *buf, size_t cap)
{
    if (r->stage_a[0] && r->stage_b[0])
        snprintf(buf, cap, "(%s, %s)", stage_display(r->stage_a, r->ssl), stage_display(r->stage_b, r->ssl));
    else if (r->stage_a[0] && strcmp(r->name, r->stage_a) == 0) snprintf(buf, cap, "%s", stage_display(r->stage_a, r->ssl));
    else snprintf(buf, cap, "%s", r->name);
}

static double json_num_or_nan(const char *line, const char *key)
{
    double v = NAN;
    if (!sv_json_number(line, key, &v)) v = NAN;
    return v;
}

/* a string field into buf; 0 with a message when it does not fit */
static int json_str_fits(const char *line, const char *key, char *buf, size_t cap, const char *where)
{
    char big[1024];
    if (!sv_json_string(line, key, big, sizeof big)) return 1;
    if (strlen(big) >= cap) {
        fprintf(stderr, "eval: %s: \"%s\" is longer than %zu characters\n", where, key, cap - 1);
        return 0;
    }
    memcpy(buf, big, strlen(big) + 1);
    return 1;
}

static int load_eval_line(run_log *r, const char *line)
{
    static const char *const rk[6] = {"r1_s2i", "r5_s2i", "r10_s2i", "r1_i2s", "r5_i2s", "r10_i2s"};
    ev_rec e;
    size_t i;
    if (r->n_ev == r->cap_ev) {
        size_t nc = r->cap_ev ? 2 * r->cap_ev : 64;
        ev_rec *q = (ev_rec *)realloc(r->ev, nc * sizeof *q);
        if (!q) { fprintf(stderr, "eval: out of memory reading %s\n", r->dir); return 0; }
        r->ev = q;
        r->cap_ev = nc;
    }
    e.v[EV_STEP] = json_num_or_nan(line, "step");
    e.v[EV_STAGE] = json_num_or_nan(line, "stage");
    e.v[EV_VAV] = json_num_or_nan(line, "val_loss_av");
    e.v[EV_VAUD] = json_num_or_nan(line, "val_loss_aud");
    e.v[EV_VACC] = json_num_or_nan(line, "val_acc");
    /* MT4SSL: its two held-out losses; its offline accuracy stands in when there is no contrastive task */
    e.v[EV_MOFF] = json_num_or_nan(line, "val_mt4_off");
    e.v[EV_MON] = json_num_or_nan(line, "val_mt4_on");
    if (!isfinite(e.v[EV_VACC])) e.v[EV_VACC] = json_num_or_nan(line, "val_mt4_acc");
    for (i = 0; i < 6; i++) e.v[EV_R1S + i] = json_num_or_nan(line, rk[i]);
    e.v[EV_ABXW] = json_num_or_nan(line, "abx_within");
    e.v[EV_ABXA] = json_num_or_nan(line, "abx_across");
    e.v[EV_R10M] = 0.5 * (e.v[EV_R10S] + e.v[EV_R10I]);
    e.v[EV_VABXW] = json_num_or_nan(line, "abx_val_within");
    e.v[EV_VABXA] = json_num_or_nan(line, "abx_val_across");
    if (isfinite(e.v[EV_STEP])) r->ev[r->n_ev++] = e;
    return 1;
}

/* Logs of an older train lack the validation retrieval's size: a corpus folder named in the
   run's data.spec tells it (val.tsv: captions = lines with an image, images = distinct ones). */
static void val_size_from_corpus(const char *dir, run_log *r)
{
    char p[1100], spec[1024], line[4096];
    FILE *f;
    size_t nc = 0, ni = 0, cap = 0, i;
    long *seen = NULL;
    if (!path_join(p, sizeof p, dir, "data.spec") || !(f = fopen(p, "r"))) return;
    if (!fgets(spec, sizeof spec, f)) spec[0] = 0;
    fclose(f);
    spec[strcspn(spec, "\r\n")] = 0;
    if (!spec[0] || !strncmp(spec, "builtin", 7) || !path_join(p, sizeof p, spec, "val.tsv") || !(f = fopen(p, "r"))) return;
    if (!fgets(line, sizeof line, f) || strncmp(line, "id\twav\timage", 13) != 0) { fclose(f); return; }
    while (fgets(line, sizeof line, f)) {
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL, *end;
        long im;
        if (!t2) continue;
        im = strtol(t2 + 1, &end, 10);
        if (end == t2 + 1 || im < 0) continue;
        nc++;
        for (i = 0; i < ni && seen[i] != im; i++) {}
        if (i < ni) continue;
        if (ni == cap) {
            long *q = (long *)realloc(seen, (cap = cap ? 2 * cap : 256) * sizeof *q);
            if (!q) { free(seen); fclose(f); return; }
            seen = q;
        }
        seen[ni++] = im;
    }
    fclose(f);
    free(seen);
    if (ni) { r->val_images = (double)ni; r->val_captions = (double)nc; }
}

/* Reads dir/log.jsonl (and dir/final_eval.json when present). A line that is not a whole JSON
   object (a write torn by a kill) is named on stderr and skipped. */
static int load_run(const char *dir, run_log *r)
{
    char p[1100], *line, where[1200];
    unsigned char *buf = NULL;
    size_t n, i, lineno = 0;
    memset(r, 0, sizeof *r);
    r->dir = dir;
    r->steps = NAN;
    r->val_images = r->val_captions = NAN;
    r->order = 99;
    {   /* default name: the folder's last component */
        size_t e = strlen(dir), b;
        while (e > 1 && dir[e - 1] == '/') e--;
        b = e;
        while (b > 0 && dir[b - 1] != '/') b--;
        if (e - b >= sizeof r->name) { fprintf(stderr, "eval: run folder name %.*s is longer than %zu characters\n", (int)(e - b), dir + b, sizeof r->name - 1); return 0; }
        memcpy(r->name, dir + b, e - b);
        r->name[e - b] = 0;
    }
    if (!path_join(p, sizeof p, dir, "log.jsonl")) return 0;
    if (sv_file_read(p, &buf, &n) != SV_OK) { fprintf(stderr, "eval: run %s: %s\n", dir, sv_last_error()); return 0; }
    for (line = (char *)buf; line && *line;) {
        char *nl = strchr(line, '\n'), kind[16];
        size_t len;
        if (nl) *nl = 0;
        lineno++;
        len = strlen(line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ')) len--;
        snprintf(where, sizeof where, "%s:%zu", p, lineno);
        if (len == 0) { line = nl ? nl + 1 : NULL; continue; }
        if (line[0] != '{' || line[len - 1] != '}' || !sv_json_string(line, "kind", kind, sizeof kind)) {
            fprintf(stderr, "eval: %s: not a whole log record (torn by a kill?): skipped\n", where);
        } else if (strcmp(kind, "meta") == 0) {
            double v;
            if (!json_str_fits(line, "run", r->name, sizeof r->name, where) ||
                !json_str_fits(line, "stage_a", r->stage_a, sizeof r->stage_a, where) ||
                !json_str_fits(line, "stage_b", r->stage_b, sizeof r->stage_b, where) ||
                !json_str_fits(line, "ssl", r->ssl, sizeof r->ssl, where)) { sv_io_free(buf); return 0; }
            if (sv_json_number(line, "switch", &v) && isfinite(v)) r->switch_step = v;
            if (sv_json_number(line, "steps", &v)) r->steps = v;
        } else if (strcmp(kind, "switch") == 0) {
            double v;
            if (sv_json_number(line, "step", &v) && isfinite(v)) r->switch_step = v;
        } else if (strcmp(kind, "eval") == 0) {
            double v;
            if (!load_eval_line(r, line)) { sv_io_free(buf); return 0; }
            if (sv_json_number(line, "val_images", &v) && v > 0) r->val_images = v;
            if (sv_json_number(line, "val_captions", &v) && v > 0) r->val_captions = v;
        }
        line = nl ? nl + 1 : NULL;
    }
    sv_io_free(buf);
    if (!r->stage_a[0] && !r->stage_b[0]) {   /* no meta line: guess from the run name */
        const char *dash = strchr(r->name, '-');
        if (dash) {
            snprintf(r->stage_a, sizeof r->stage_a, "%.*s", (int)(dash - r->name < 31 ? dash - r->name : 31), r->name);
            snprintf(r->stage_b, sizeof r->stage_b, "%.31s", dash + 1);
        } else snprintf(r->stage_a, sizeof r->stage_a, "%.31s", r->name);
    }
    for (i = 0; i < sizeof paper_order / sizeof *paper_order; i++)
        if (strcmp(r->name, paper_order[i]) == 0) r->order = (int)i;
    if (!isfinite(r->val_images)) val_size_from_corpus(dir, r);
    /* optional final_eval.json: its first line */
    if (!path_join(p, sizeof p, dir, "final_eval.json")) return 0;
    if (file_exists(p)) {
        if (sv_file_read(p, &buf, &n) != SV_OK) { fprintf(stderr, "eval: run %s: %s\n", dir, sv_last_error()); return 0; }
        line = strchr((char *)buf, '\n');
        if (line) *line = 0;
        r->final_line = (char *)buf;
        {   /* the numbers must come from the checkpoint beside them, not from an earlier run */
            char id[32], want[32], ck[1100];
            uint64_t cur;
            if (!path_join(ck, sizeof ck, dir, "final.ckpt")) return 0;
            if (!sv_json_string(r->final_line, "ckpt_id", id, sizeof id)) {
                fprintf(stderr, "eval: warning: %s has no ckpt_id: cannot check that it belongs to %s\n", p, ck);
            } else if (sv_checkpoint_id(ck, &cur) != SV_OK) {
                fprintf(stderr, "eval: %s: its checkpoint is gone (%s); re-run ./train and ./eval\n", p, sv_last_error());
                return 0;
            } else {
                snprintf(want, sizeof want, "%016llx", (unsigned long long)cur);
                if (strcmp(id, want) != 0) {
                    fprintf(stderr, "eval: %s was computed from another checkpoint than %s (stale results): "
                                    "re-run ./eval --ckpt %s\n", p, ck, ck);
                    return 0;
                }
            }
        }
    }
    return 1;
}

static void free_run(run_log *r)
{
    free(r->ev);
    sv_io_free(r->final_line);
    memset(r, 0, sizeof *r);
}

/* the last eval record with a finite value of field idx, or NAN */
static double last_value(const run_log *r, size_t idx)
{
    size_t i;
    for (i = r->n_ev; i-- > 0;)
        if (isfinite(r->ev[i].v[idx])) return r->ev[i].v[idx];
    return NAN;
}

/* The validation ABX field the figures and forgetting rows use: within speaker, or across where
   no run logged a within value (train leaves out a condition scored on too few cells). */
static int val_abx_field(const run_log *runs, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) if (isfinite(last_value(&runs[i], EV_VABXW))) return EV_VABXW;
    for (i = 0; i < n; i++) if (isfinite(last_value(&runs[i], EV_VABXA))) return EV_VABXA;
    return EV_VABXW;
}

static void md_cell(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, " %.1f |", v);
    else fprintf(f, " - |");
}

/* ABX of a run for Table II: final_eval (ood, then test), else the log's last eval */
static void abx_final(const run_log *r, double *w, double *a, char *wl, char *al, size_t cap, const char **src)
{
    static const char *const sets[2] = {"ood", "test"};
    size_t s;
    char key[64];
    *w = *a = NAN;
    wl[0] = al[0] = 0;
    *src = "-";
    if (r->final_line) {
        for (s = 0; s < 2; s++) {
            snprintf(key, sizeof key, "abx_%s_within", sets[s]);
            if (sv_json_number(r->final_line, key, w)) {
                snprintf(key, sizeof key, "abx_%s_across", sets[s]);
                if (!sv_json_number(r->final_line, key, a)) *a = NAN;
                snprintf(key, sizeof key, "abx_%s_within_layer", sets[s]);
                sv_json_string(r->final_line, key, wl, cap);
                snprintf(key, sizeof key, "abx_%s_across_layer", sets[s]);
                sv_json_string(r->final_line, key, al, cap);
                *src = s ? "final test" : "final ood";
                return;
            }
        }
    }
    *w = last_value(r, EV_ABXW);
    *a = last_value(r, EV_ABXA);
    if (isfinite(*w) || isfinite(*a)) *src = "log test";
}

/* the metric values of a forgetting row at each eval record: kind 0 mean R@10, 1 loss_AUD, 2 acc */
static double forget_value(const ev_rec *e, int kind)
{
    if (kind == 0) return 0.5 * (e->v[EV_R10S] + e->v[EV_R10I]);
    if (kind == 1) return e->v[EV_VAUD];
    return 100.0 * e->v[EV_VACC];
}

static void forgetting_table(FILE *f, const run_log *runs, const size_t *ord, size_t n, int markdown)
{
    static const char *const what[3] = {"mean R@10 (%)", "val loss_AUD", "val accuracy (%)"};
    size_t k, i;
    int kind, any = 0;
    if (markdown) {
        fprintf(f, "| schedule | stage-A metric | at switch | min in B | max in B | end | end - switch |\n");
        fprintf(f, "|---|---|---|---|---|---|---|\n");
    } else fprintf(f, "%-16s %-18s %10s %10s %10s %10s %12s\n", "schedule", "stage-A metric", "at switch", "min in B", "max in B", "end", "end-switch");
    for (k = 0; k < n; k++) {
        const run_log *r = &runs[ord[k]];
        char disp[80];
        if (!r->stage_b[0]) continue;
        run_display(r, disp, sizeof disp);
        for (kind = 0; kind < 3; kind++) {
            int vgs_a = strcmp(r->stage_a, "vgs") == 0 || strcmp(r->stage_a, "vgsplus") == 0;
            int ssl_a = strcmp(r->stage_a, "w2v2") == 0 || strcmp(r->stage_a, "vgsplus") == 0;
            double at = NAN, mn = NAN, mx = NAN, end = NAN;
            if ((kind == 0 && !vgs_a) || (kind > 0 && !ssl_a)) continue;
            for (i = 0; i < r->n_ev; i++) {
                const ev_rec *e = &r->ev[i];
                double v = forget_value(e, kind);
                int in_b = e->v[EV_STAGE] >= 1 || (r->switch_step > 0 && e->v[EV_STEP] > r->switch_step);
                if (!isfinite(v)) continue;
                if (!in_b) at = v;          /* the last stage-A value: at the switch */
                else {
                    if (!(mn <= v)) mn = v;
                    if (!(mx >= v)) mx = v;
                }
                end = v;
            }
            any = 1;
            if (markdown) {
                fprintf(f, "| %s | %s |", disp, what[kind]);
                md_cell(f, at); md_cell(f, mn); md_cell(f, mx); md_cell(f, end);
                md_cell(f, end - at);
                fputc('\n', f);
            } else
                fprintf(f, "%-16s %-18s %10.2f %10.2f %10.2f %10.2f %12.2f\n", disp, what[kind], at, mn, mx, end, end - at);
        }
    }
    if (!any) fprintf(f, markdown ? "| (no schedules) | | | | | | |\n" : "(no schedules among the runs)\n");
}

static int write_plot(const char *dir, const char *file, const sv_plot *p, const sv_series *s, size_t n)
{
    char path[1100];
    if (!path_join(path, sizeof path, dir, file)) return 0;
    if (sv_svg_plot(path, p, s, n) != SV_OK) { fprintf(stderr, "eval: %s\n", sv_last_error()); return 0; }
    return 1;
}

/* One figure over training steps, one series per run; field < 0: mean R@10 of both directions.
   A schedule is drawn from its switch on: its stage A is the base run's, drawn once. With lo/hi
   (runs of the same layout holding interval bounds) each series gets its band. chance (NaN: none)
   is a reference line. */
static int figure_over_steps(const char *dir, const char *file, const char *title, const char *ylabel, int log_y,
                             const run_log *runs, const size_t *ord, size_t n, int field, double *xs, double *ys,
                             const double *vl, size_t nvl, double chance, const run_log *lo, const run_log *hi)
{
    sv_series *s = (sv_series *)calloc(n ? n : 1, sizeof(sv_series));
    char (*names)[80] = (char (*)[80])calloc(n ? n : 1, 80);
    size_t total = 0;
    double *bl, *bh;
    const double **blo, **bhi;
    sv_plot p;
    size_t k, i, off = 0;
    int ok;
    for (k = 0; k < n; k++) total += runs[ord[k]].n_ev;
    bl = (double *)calloc(total + 1, sizeof(double));
    bh = (double *)calloc(total + 1, sizeof(double));
    blo = (const double **)calloc(n ? n : 1, sizeof *blo);
    bhi = (const double **)calloc(n ? n : 1, sizeof *bhi);
    if (!s || !names || !bl || !bh || !blo || !bhi) {
        free(s); free(names); free(bl); free(bh); free((void *)blo); free((void *)bhi);
        fprintf(stderr, "eval: out of memory\n");
        return 0;
    }
    if (field < 0) field = EV_R10M;
    for (k = 0; k < n; k++) {
        const run_log *r = &runs[ord[k]];
        size_t m = 0;
        run_display(r, names[k], 80);
        for (i = 0; i < r->n_ev; i++) {
            const ev_rec *e = &r->ev[i];
            if (r->stage_b[0] && r->switch_step > 0 && e->v[EV_STEP] < r->switch_step) continue;
            xs[off + m] = e->v[EV_STEP];
            ys[off + m] = e->v[field];
            bl[off + m] = lo ? lo[ord[k]].ev[i].v[field] : NAN;
            bh[off + m] = hi ? hi[ord[k]].ev[i].v[field] : NAN;
            m++;
        }
        s[k].name = names[k];
        s[k].x = xs + off;
        s[k].y = ys + off;
        s[k].n = m;
        blo[k] = lo && hi ? bl + off : NULL;
        bhi[k] = lo && hi ? bh + off : NULL;
        off += m;
    }
    memset(&p, 0, sizeof p);
    p.title = title;
    p.xlabel = "training step (schedules drawn from their switch on; their stage A is the base run's)";
    p.ylabel = ylabel;
    p.log_y = log_y;
    p.vlines = vl;
    p.n_vlines = nvl;
    p.vline_label = nvl ? "switch" : NULL;
    if (isfinite(chance)) { p.hlines = &chance; p.n_hlines = 1; p.hline_label = "chance"; }
    if (lo && hi) { p.band_lo = blo; p.band_hi = bhi; }
    p.width = 900;
    p.height = 500;
    ok = write_plot(dir, file, &p, s, n);
    free(s); free(names); free(bl); free(bh); free((void *)blo); free((void *)bhi);
    return ok;
}

static const char *const layer_names[] = {"CNN", "L0", "L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8", "L9", "L10", "L11",
                                          "L12", "L13", "L14", "L15", "L16", "L17", "L18", "L19", "L20", "L21", "L22", "L23", "L24"};
static const double abx_chance = 50.0;

/* Per-layer ABX from final_eval.json: x = -1 (cnn), 0 (L0) .. L. */
static int figure_layers(const char *dir, const char *file, const char *title, int across,
                         const run_log *runs, const size_t *ord, size_t n)
{
    static const char *const sets[2] = {"ood", "test"};
    size_t k, npt = SV_ABX_MAX_LAYERS;
    sv_series *s = (sv_series *)calloc(n ? n : 1, sizeof(sv_series));
    char (*names)[80] = (char (*)[80])calloc(n ? n : 1, 80);
    double *xs = (double *)calloc((n ? n : 1) * npt, sizeof(double));
    double *ys = (double *)calloc((n ? n : 1) * npt, sizeof(double));
    char set_used[8] = "";
    char ttl[160];
    sv_plot p;
    int ok = 0;
    if (!s || !names || !xs || !ys) { fprintf(stderr, "eval: out of memory\n"); goto done; }
    for (k = 0; k < n; k++) {
        const run_log *r = &runs[ord[k]];
        size_t m = 0, si;
        run_display(r, names[k], 80);
        s[k].name = names[k];
        s[k].x = xs + k * npt;
        s[k].y = ys + k * npt;
        for (si = 0; si < 2 && r->final_line; si++) {
            char key[400], layers[SV_ABX_MAX_LAYERS * 8], *tok, *save;
            snprintf(key, sizeof key, "abx_%s_layers", sets[si]);
            if (!sv_json_string(r->final_line, key, layers, sizeof layers)) continue;
            if (!set_used[0]) snprintf(set_used, sizeof set_used, "%s", sets[si]);
            for (tok = layers; tok && *tok && m < npt; tok = save) {
                double v = NAN;
                save = strchr(tok, ',');
                if (save) *save++ = 0;
                snprintf(key, sizeof key, "abx_%s_%s_%s", sets[si], across ? "across" : "within", tok);
                if (!sv_json_number(r->final_line, key, &v)) v = NAN;
                xs[k * npt + m] = strcmp(tok, "cnn") == 0 ? -1.0 : atof(tok + 1);
                ys[k * npt + m] = v;
                m++;
            }
            break;
        }
        if (m == 0) { xs[k * npt] = 0; ys[k * npt] = NAN; m = 1; }  /* keeps the run in the legend */
        s[k].n = m;
    }
    snprintf(ttl, sizeof ttl, "%s (%s set)", title, set_used[0] ? set_used : "no final_eval.json");
    memset(&p, 0, sizeof p);
    p.title = ttl;
    p.xlabel = "layer (CNN = CNN output, L0 = transformer input, Lk = transformer layer k)";
    p.integer_x = 1;
    p.xtick_names = layer_names;
    p.n_xtick_names = sizeof layer_names / sizeof *layer_names;
    p.xtick_first = -1;
    p.hlines = &abx_chance;
    p.n_hlines = 1;
    p.hline_label = "chance (50 %)";
    p.ylabel = across ? "ABX error across speakers (%)" : "ABX error within speaker (%)";
    p.width = 900;
    p.height = 500;
    ok = write_plot(dir, file, &p, s, n);
done:
    free(s); free(names); free(xs); free(ys);
    return ok;
}

static void write_results_md(FILE *f, const run_log *runs, const size_t *ord, size_t n_runs)
{
    size_t i, k, n_img = 0, n_cap = 0;
    fprintf(f, "# Results\n\nRuns: %zu. Numbers from each run's final_eval.json (./eval) when present, else from the "
               "last eval line of its log.jsonl (marked *). Recall in percent.\n\n", n_runs);
    fprintf(f, "## Table I: retrieval (recall@k, %%)\n\n| model | S->I R@1 | S->I R@5 | S->I R@10 | I->S R@1 | I->S R@5 | I->S R@10 |\n"
               "|---|---|---|---|---|---|---|\n");
    for (k = 0; k < n_runs; k++) {
        const run_log *r = &runs[ord[k]];
        static const char *const rk[6] = {"r1_s2i", "r5_s2i", "r10_s2i", "r1_i2s", "r5_i2s", "r10_i2s"};
        char disp[80];
        double v[6];
        int from_log = 1;
        run_display(r, disp, sizeof disp);
        if (r->final_line && sv_json_number(r->final_line, "r1_s2i", &v[0])) {
            double ni, nc;
            from_log = 0;
            for (i = 0; i < 6; i++) if (!sv_json_number(r->final_line, rk[i], &v[i])) v[i] = NAN;
            if (sv_json_number(r->final_line, "n_images", &ni) && sv_json_number(r->final_line, "n_captions", &nc) && !n_img) {
                n_img = (size_t)ni;
                n_cap = (size_t)nc;
            }
        } else for (i = 0; i < 6; i++) v[i] = last_value(r, EV_R1S + i);
        fprintf(f, "| %s%s |", disp, from_log && isfinite(v[0]) ? " *" : "");
        for (i = 0; i < 6; i++) md_cell(f, v[i]);
        fputc('\n', f);
    }
    if (n_img) {
        double c1, c5, c10, d1, d5, d10;
        sv_recall_chance(n_img, n_cap, 1, &c1, &d1);
        sv_recall_chance(n_img, n_cap, 5, &c5, &d5);
        sv_recall_chance(n_img, n_cap, 10, &c10, &d10);
        fprintf(f, "\nChance level (%zu images, %zu captions): S->I R@1/5/10 = %.2f / %.2f / %.2f %% (k / images); "
                   "I->S = %.2f / %.2f / %.2f %% (any of an image's captions among k random ones).\n",
                n_img, n_cap, c1, c5, c10, d1, d5, d10);
    } else
        fprintf(f, "\nChance level: S->I R@k = k / n_images; I->S R@k = 1 - C(n_captions - c, k) / C(n_captions, k) "
                   "with c captions per image (about k / n_images).\n");
    fprintf(f, "\n## Table II: ABX error (%%), best layer in parentheses\n\n| model | ABX within | ABX across | source |\n|---|---|---|---|\n");
    for (k = 0; k < n_runs; k++) {
        const run_log *r = &runs[ord[k]];
        char disp[80], wl[16], al[16];
        double w, a;
        const char *src;
        run_display(r, disp, sizeof disp);
        abx_final(r, &w, &a, wl, al, sizeof wl, &src);
        fprintf(f, "| %s |", disp);
        if (isfinite(w)) fprintf(f, wl[0] ? " %.2f (%s) |" : " %.2f%s |", w, wl); else fprintf(f, " - |");
        if (isfinite(a)) fprintf(f, al[0] ? " %.2f (%s) |" : " %.2f%s |", a, al); else fprintf(f, " - |");
        fprintf(f, " %s |\n", src);
    }
    {   /* the MFCC reference row: the same for every run of a data set, from the first final_eval with it */
        static const char *const sets[2] = {"ood", "test"};
        size_t q;
        int st;
        for (st = 0; st < 2; st++)
            for (q = 0; q < n_runs; q++) {
                const run_log *r = &runs[ord[q]];
                char key[64];
                double w, a = NAN;
                snprintf(key, sizeof key, "abx_%s_mfcc_within", sets[st]);
                if (!r->final_line || !sv_json_number(r->final_line, key, &w)) continue;
                snprintf(key, sizeof key, "abx_%s_mfcc_across", sets[st]);
                sv_json_number(r->final_line, key, &a);
                fprintf(f, "| MFCC (reference, no training) |");
                if (isfinite(w)) fprintf(f, " %.2f |", w); else fprintf(f, " - |");
                if (isfinite(a)) fprintf(f, " %.2f |", a); else fprintf(f, " - |");
                fprintf(f, " final %s |\n", sets[st]);
                st = 2;
                break;
            }
    }
    fprintf(f, "\nChance level: 50 %%. Layers: cnn = CNN output, L0 = transformer input, Lk = transformer layer k. "
               "\"final ood\" is the out-of-domain set (the paper's LibriSpeech dev-clean role).\n");
    fprintf(f, "\n## Forgetting: stage-A metrics during stage B\n\n");
    forgetting_table(f, runs, ord, n_runs, 1);
    fprintf(f, "\nR@10 and accuracy: higher is better; loss_AUD: lower is better. \"at switch\" is the last "
               "evaluation of stage A.\n\n## Figures\n\n");
    fprintf(f, "- loss_av.svg, loss_aud.svg: held-out losses over training (log scale; the switch marked)\n"
               "- recall.svg: mean R@10 over training\n- abx_best.svg: best-layer ABX on validation items over training (within speaker; across where train logged no within value)\n"
               "- abx_layers.svg, abx_layers_across.svg: final ABX per layer\n");
    for (k = 0; k < n_runs && !isfinite(last_value(&runs[ord[k]], EV_MOFF)) && !isfinite(last_value(&runs[ord[k]], EV_MON)); k++) {}
    if (k < n_runs)
        fprintf(f, "- mt4ssl_offline.svg, mt4ssl_online.svg: MT4SSL runs' held-out loss of each target (log scale); "
                   "their \"val accuracy\" above is the offline target's when the run has no contrastive task\n");
}

/* the paper's order, other runs after in the given order (stable insertion sort) */
static void paper_sort(const run_log *runs, size_t *ord, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        size_t j = i;
        ord[i] = i;
        while (j > 0 && runs[ord[j - 1]].order > runs[i].order) { ord[j] = ord[j - 1]; j--; }
        ord[j] = i;
    }
}

/* The figures of a report; lo/hi (or NULL): interval bounds over seeds, laid out as runs. */
static int write_figures(const char *out_dir, const run_log *runs, const size_t *ord, size_t n_runs,
                         const run_log *lo, const run_log *hi)
{
    size_t i, k, nvl = 0, total = 0;
    double *xs, *ys, vl[16], chance = NAN;
    int ok = 0;
    for (i = 0; i < n_runs; i++) total += runs[i].n_ev;
    /* switch markers: the distinct switch steps */
    for (i = 0; i < n_runs; i++) {
        double sw = runs[i].switch_step;
        if (!(sw > 0) || !runs[i].stage_b[0]) continue;
        for (k = 0; k < nvl && vl[k] != sw; k++) {}
        if (k == nvl && nvl < 16) vl[nvl++] = sw;
    }
    for (i = 0; i < n_runs && !isfinite(chance); i++)
        if (isfinite(runs[i].val_images) && isfinite(runs[i].val_captions)) {
            double c_s2i, c_i2s;
            sv_recall_chance((size_t)runs[i].val_images, (size_t)runs[i].val_captions, 10, &c_s2i, &c_i2s);
            chance = 0.5 * (c_s2i + c_i2s);
        }
    xs = (double *)calloc(total + 1, sizeof(double));
    ys = (double *)calloc(total + 1, sizeof(double));
    if (!xs || !ys) { fprintf(stderr, "eval: out of memory\n"); goto done; }
    if (!figure_over_steps(out_dir, "loss_av.svg", "Held-out loss_AV (val) during training", "loss_AV (log scale)", 1,
                           runs, ord, n_runs, EV_VAV, xs, ys, vl, nvl, NAN, lo, hi) ||
        !figure_over_steps(out_dir, "loss_aud.svg", "Held-out loss_AUD (val) during training", "loss_AUD (log scale)", 1,
                           runs, ord, n_runs, EV_VAUD, xs, ys, vl, nvl, NAN, lo, hi) ||
        !figure_over_steps(out_dir, "recall.svg", "Retrieval during training: mean R@10 of S->I and I->S (val)", "R@10 (%)", 0,
                           runs, ord, n_runs, -1, xs, ys, vl, nvl, chance, lo, hi) ||
        !figure_over_steps(out_dir, "abx_best.svg",
                           val_abx_field(runs, n_runs) == EV_VABXW ? "Best-layer ABX error within speaker (validation items) during training"
                                                                    : "Best-layer ABX error across speakers (validation items) during training",
                           val_abx_field(runs, n_runs) == EV_VABXW ? "ABX within (%)" : "ABX across (%)", 0, runs, ord, n_runs,
                           val_abx_field(runs, n_runs), xs, ys, vl, nvl, 50.0, lo, hi) ||
        !figure_layers(out_dir, "abx_layers.svg", "Final ABX within speaker per layer", 0, runs, ord, n_runs) ||
        !figure_layers(out_dir, "abx_layers_across.svg", "Final ABX across speakers per layer", 1, runs, ord, n_runs))
        goto done;
    for (i = 0; i < n_runs && !isfinite(last_value(&runs[i], EV_MOFF)) && !isfinite(last_value(&runs[i], EV_MON)); i++) {}
    if (i < n_runs &&   /* MT4SSL runs: each target's held-out loss */
        (!figure_over_steps(out_dir, "mt4ssl_offline.svg", "MT4SSL offline target (k-means classes): held-out cross-entropy per masked frame",
                            "offline CE (log scale)", 1, runs, ord, n_runs, EV_MOFF, xs, ys, vl, nvl, NAN, lo, hi) ||
         !figure_over_steps(out_dir, "mt4ssl_online.svg", "MT4SSL online target (EMA teacher): held-out regression loss per masked frame",
                            "online loss (log scale)", 1, runs, ord, n_runs, EV_MON, xs, ys, vl, nvl, NAN, lo, hi)))
        goto done;
    ok = 1;
done:
    free(xs); free(ys);
    return ok;
}

/* The report over n_runs run folders into out_dir; the forgetting summary also to stdout. */
static int write_report(const char *const *dirs, size_t n_runs, const char *out_dir)
{
    run_log *runs = (run_log *)calloc(n_runs, sizeof(run_log));
    size_t *ord = (size_t *)calloc(n_runs, sizeof(size_t)), i;
    char path[1100], *tmp;
    FILE *f;
    int ok = 0;
    if (!runs || !ord) { fprintf(stderr, "eval: out of memory\n"); goto done; }
    for (i = 0; i < n_runs; i++)
        if (!load_run(dirs[i], &runs[i])) goto done;
    paper_sort(runs, ord, n_runs);
    if (sv_make_dir(out_dir) != SV_OK) { fprintf(stderr, "eval: %s\n", sv_last_error()); goto done; }
    if (!write_figures(out_dir, runs, ord, n_runs, NULL, NULL))
        goto done;
    if (!path_join(path, sizeof path, out_dir, "results.md")) goto done;
    if (!(f = sv_file_create(path, &tmp))) { fprintf(stderr, "eval: %s\n", sv_last_error()); goto done; }
    write_results_md(f, runs, ord, n_runs);
    if (sv_file_commit(f, tmp, path, 1) != SV_OK) { fprintf(stderr, "eval: %s\n", sv_last_error()); goto done; }
    printf("forgetting (stage-A metrics during stage B):\n");
    forgetting_table(stdout, runs, ord, n_runs, 0);
    ok = 1;
done:
    if (runs) for (i = 0; i < n_runs; i++) free_run(&runs[i]);
    free(runs); free(ord);
    return ok;
}

/* ---------------------------------------------------------------- the report over seeds
   `./eval --report OUT` on a folder written by `./train --all --seeds N` (OUT/seed<S>/<run>/), or
   on several study folders: every number of Tables I and II as the mean over seeds with the
   half-width of its 95 % t-interval over seeds and the mean half-width of the per-seed
   bootstrap interval over test items (recall and ABX); then one line per finding of the paper saying
   whether it holds here and how strongly. A schedule and its base run share their stage A (the
   same seed), so the comparisons between rows are paired by seed. */
#define MAX_SEEDS 64
#define N_PAPER 9
enum { R_W2V2, R_VGS, R_VGSP, R_W2V2_VGSP, R_VGS_VGSP, R_W2V2_VGS, R_VGS_W2V2, R_VGSP_W2V2, R_VGSP_VGS };

typedef struct seed_study {
    char dir[1024];
    run_log runs[N_PAPER];
    int have[N_PAPER];
} seed_study;

/* metrics of a run: recall (test), mean R@10, ABX best layer (test / ood, within / across) */
enum { M_R1S, M_R5S, M_R10S, M_R1I, M_R5I, M_R10I, M_R10, M_ABX_TW, M_ABX_TA, M_ABX_OW, M_ABX_OA, M_N };

/* the value of metric m of run r (NaN if unknown); *item_half: half-width of its bootstrap
   interval over test items when final_eval.json has one, else NaN */
static double run_metric(const run_log *r, int m, double *item_half)
{
    static const char *const abx_keys[4] = {"abx_test_within", "abx_test_across", "abx_ood_within", "abx_ood_across"};
    char key[64];
    double v = NAN, lo, hi;
    if (item_half) *item_half = NAN;
    if (!r || !r->final_line) return NAN;
    if (m == M_R10) {
        double h1, h2, a = run_metric(r, M_R10S, &h1), b = run_metric(r, M_R10I, &h2);
        if (item_half) *item_half = 0.5 * (h1 + h2);
        return 0.5 * (a + b);
    }
    if (m <= M_R10I) {
        if (!sv_json_number(r->final_line, recall_keys[m], &v)) return NAN;
        snprintf(key, sizeof key, "%s_lo", recall_keys[m]);
        if (item_half && sv_json_number(r->final_line, key, &lo)) {
            snprintf(key, sizeof key, "%s_hi", recall_keys[m]);
            if (sv_json_number(r->final_line, key, &hi)) *item_half = 0.5 * (hi - lo);
        }
        return v;
    }
    if (!sv_json_number(r->final_line, abx_keys[m - M_ABX_TW], &v)) return NAN;
    snprintf(key, sizeof key, "%s_lo", abx_keys[m - M_ABX_TW]);
    if (item_half && sv_json_number(r->final_line, key, &lo)) {
        snprintf(key, sizeof key, "%s_hi", abx_keys[m - M_ABX_TW]);
        if (sv_json_number(r->final_line, key, &hi)) *item_half = 0.5 * (hi - lo);
    }
    return v;
}

/* chance of the test split's mean R@10 (from a final_eval.json), NaN if unknown */
static double test_chance_r10(const seed_study *st, size_t n)
{
    size_t s, k;
    for (s = 0; s < n; s++)
        for (k = 0; k < N_PAPER; k++) {
            double ni, nc, a, b;
            const char *l = st[s].have[k] ? st[s].runs[k].final_line : NULL;
            if (l && sv_json_number(l, "n_images", &ni) && sv_json_number(l, "n_captions", &nc) && ni > 0) {
                sv_recall_chance((size_t)ni, (size_t)nc, 10, &a, &b);
                return 0.5 * (a + b);
            }
        }
    return NAN;
}

static void seed_cell(FILE *f, const double *v, size_t n, const double *ih, int prec)
{
    double half, m, ihalf = 0;
    size_t used, k, ni = 0;
    m = mean_ci(v, n, &half, &used);
    if (!isfinite(m)) { fprintf(f, " - |"); return; }
    fprintf(f, " %.*f", prec, m);
    if (isfinite(half)) fprintf(f, " ± %.*f", prec, half);
    if (ih) {
        for (k = 0; k < n; k++) if (isfinite(ih[k])) { ihalf += ih[k]; ni++; }
        if (ni) fprintf(f, " (± %.*f)", prec, ihalf / (double)ni);
    }
    if (used < n) fprintf(f, " [%zu of %zu]", used, n);
    fprintf(f, " |");
}

/* A paired difference d (paper's direction positive) over seeds: a verdict with its strength. */
static void verdict(FILE *f, const double *d, size_t n, const char *unit, int prec)
{
    double half, m;
    size_t used, k, pos = 0;
    m = mean_ci(d, n, &half, &used);
    for (k = 0; k < n; k++) pos += isfinite(d[k]) && d[k] > 0;
    if (!isfinite(m)) { fprintf(f, "**not measured** (the runs or their final_eval.json are missing)"); return; }
    if (used < 2) fprintf(f, "%s (one seed, no interval): %+.*f %s", m > 0 ? "**tendency only**" : "**not seen**", prec, m, unit);
    else {
        const char *v = m - half > 0 ? "**holds**" : m + half < 0 ? "**reversed**" : m > 0 ? "**tendency only**" : "**not seen**";
        fprintf(f, "%s: %+.*f %s, 95 %% interval [%+.*f, %+.*f], %zu of %zu seeds in the paper's direction", v, prec, m, unit,
                prec, m - half, prec, m + half, pos, used);
    }
}

/* Spearman rank correlation of two vectors over the indices where both are finite */
static double spearman(const double *a, const double *b, size_t n)
{
    double ra[N_PAPER], rb[N_PAPER], x[N_PAPER], y[N_PAPER], mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    size_t i, j, m = 0;
    for (i = 0; i < n; i++) if (isfinite(a[i]) && isfinite(b[i])) { x[m] = a[i]; y[m] = b[i]; m++; }
    if (m < 3) return NAN;
    for (i = 0; i < m; i++) {   /* average ranks for ties */
        double lx = 0, ex = 0, ly = 0, ey = 0;
        for (j = 0; j < m; j++) {
            lx += x[j] < x[i]; ex += x[j] == x[i];
            ly += y[j] < y[i]; ey += y[j] == y[i];
        }
        ra[i] = lx + 0.5 * (ex + 1); rb[i] = ly + 0.5 * (ey + 1);
    }
    for (i = 0; i < m; i++) { mx += ra[i]; my += rb[i]; }
    mx /= (double)m; my /= (double)m;
    for (i = 0; i < m; i++) { sxy += (ra[i] - mx) * (rb[i] - my); sxx += (ra[i] - mx) * (ra[i] - mx); syy += (rb[i] - my) * (rb[i] - my); }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

/* value at the switch (last stage-A evaluation) and at the end of a schedule's stage-A metric */
static void switch_end(const run_log *r, int field, double *at, double *end)
{
    size_t i;
    *at = *end = NAN;
    for (i = 0; i < r->n_ev; i++) {
        const ev_rec *e = &r->ev[i];
        double v = e->v[field];
        int in_b = e->v[EV_STAGE] >= 1 || (r->switch_step > 0 && e->v[EV_STEP] > r->switch_step);
        if (!isfinite(v)) continue;
        if (!in_b) *at = v;
        *end = v;
    }
}

static void display_of(int k, char *buf, size_t cap)
{
    static const char *const d[N_PAPER] = {"W2V2", "VGS", "VGS+", "(W2V2, VGS+)", "(VGS, VGS+)", "(W2V2, VGS)",
                                           "(VGS, W2V2)", "(VGS+, W2V2)", "(VGS+, VGS)"};
    snprintf(buf, cap, "%s", d[k]);
}

static void write_findings(FILE *f, const seed_study *st, size_t n)
{
    double d[MAX_SEEDS], chance = test_chance_r10(st, n);
    size_t s, k;
    int abx_field;
    for (s = 0; s < MAX_SEEDS; s++) d[s] = NAN;
#define MET(s_, run_, m_) (st[s_].have[run_] ? run_metric(&st[s_].runs[run_], m_, NULL) : NAN)
    fprintf(f, "\n## The paper's findings here\n\nEach line: the per-seed difference in the paper's direction (positive = as the "
               "paper found), its mean over seeds, the 95 %% t-interval over seeds and how many seeds agree. **holds**: the "
               "interval lies on the paper's side of 0; **tendency only**: the mean does, the interval includes 0; **not seen** "
               "/ **reversed**: the mean / the whole interval lies on the other side. Retrieval: mean of S->I and I->S R@10 on "
               "the test split; ABX: best layer, within speaker.\n\n");
    fprintf(f, "1. (W2V2, VGS) retrieves better than VGS (W2V2 first helps VGS): ");
    for (s = 0; s < n; s++) d[s] = MET(s, R_W2V2_VGS, M_R10) - MET(s, R_VGS, M_R10);
    verdict(f, d, n, "points R@10", 2);
    fprintf(f, "\n2. (VGS, W2V2) falls to chance (R@10 minus chance %.2f %%; the paper's direction: at or below chance): ", chance);
    for (s = 0; s < n; s++) d[s] = chance - MET(s, R_VGS_W2V2, M_R10);
    {
        double half, m = mean_ci(d, n, &half, NULL);
        if (!isfinite(m)) fprintf(f, "**not measured**");
        else if (!isfinite(half)) fprintf(f, "one seed: %+.2f points above chance", -m);
        else fprintf(f, "%s: %+.2f points above chance, 95 %% interval [%+.2f, %+.2f]", -m + half <= 0 || (-m - half <= 0) ? "**holds** (not above chance)" : "**not seen** (above chance)",
                     -m, -m - half, -m + half);
    }
    fprintf(f, "\n3. (VGS+, W2V2) keeps part of its retrieval where (VGS, W2V2) loses it: ");
    for (s = 0; s < n; s++) d[s] = MET(s, R_VGSP_W2V2, M_R10) - MET(s, R_VGS_W2V2, M_R10);
    verdict(f, d, n, "points R@10", 2);
    fprintf(f, "\n4. VGS+ gives no retrieval gain over VGS (the paper: about equal; here VGS+ - VGS): ");
    for (s = 0; s < n; s++) d[s] = MET(s, R_VGSP, M_R10) - MET(s, R_VGS, M_R10);
    {
        double half, m = mean_ci(d, n, &half, NULL);
        if (!isfinite(m)) fprintf(f, "**not measured**");
        else if (!isfinite(half)) fprintf(f, "one seed: %+.2f points", m);
        else fprintf(f, "%s: %+.2f points, 95 %% interval [%+.2f, %+.2f]", m - half > 0 ? "**not seen** (VGS+ retrieves better)" :
                     m + half < 0 ? "**not seen** (VGS+ retrieves worse)" : "**consistent** (no difference resolved at this precision)", m, m - half, m + half);
    }
    fprintf(f, "\n5. VGS+ has better phonemic features than VGS (ABX out-of-domain, VGS - VGS+): ");
    for (s = 0; s < n; s++) d[s] = MET(s, R_VGS, M_ABX_OW) - MET(s, R_VGSP, M_ABX_OW);
    verdict(f, d, n, "points ABX", 2);
    fprintf(f, "\n6. SSL learns phonemic features that VGS alone does not (ABX in-domain / test, VGS - W2V2): ");
    for (s = 0; s < n; s++) d[s] = MET(s, R_VGS, M_ABX_TW) - MET(s, R_W2V2, M_ABX_TW);
    verdict(f, d, n, "points ABX", 2);
    fprintf(f, "\n7. ... and out-of-domain (ood, VGS - W2V2): ");
    for (s = 0; s < n; s++) d[s] = MET(s, R_VGS, M_ABX_OW) - MET(s, R_W2V2, M_ABX_OW);
    verdict(f, d, n, "points ABX", 2);
    fprintf(f, "\n8. The phonemic ordering of the rows is the same in-domain and out-of-domain (Spearman rank correlation of "
               "ABX test vs ood over the rows; the paper's direction: positive): ");
    {
        size_t rows = 0;
        for (s = 0; s < n; s++) {
            double a[N_PAPER], b[N_PAPER];
            size_t r = 0;
            for (k = 0; k < N_PAPER; k++) { a[k] = MET(s, k, M_ABX_TW); b[k] = MET(s, k, M_ABX_OW); r += isfinite(a[k]) && isfinite(b[k]); }
            d[s] = spearman(a, b, N_PAPER);
            if (r > rows) rows = r;
        }
        fprintf(f, "over %zu rows: ", rows);
        verdict(f, d, n, "(rho)", 2);
    }
    fprintf(f, "\n\n### Forgetting: the stage-A metric from the switch to the end of stage B (validation)\n\n"
               "| schedule | stage-A metric | at switch | end | forgotten (paper's direction: > 0) | verdict |\n|---|---|---|---|---|---|\n");
    {   /* within speaker unless the logs have only across (too few within cells) */
        int has_w = 0, has_a = 0;
        for (s = 0; s < n; s++)
            for (k = 0; k < N_PAPER; k++)
                if (st[s].have[k]) {
                    has_w |= isfinite(last_value(&st[s].runs[k], EV_VABXW));
                    has_a |= isfinite(last_value(&st[s].runs[k], EV_VABXA));
                }
        abx_field = !has_w && has_a ? EV_VABXA : EV_VABXW;
    }
    for (k = R_W2V2_VGSP; k < N_PAPER; k++) {
        const char *sa = k == R_W2V2_VGSP || k == R_W2V2_VGS ? "w2v2" : k == R_VGS_VGSP || k == R_VGS_W2V2 ? "vgs" : "vgsplus";
        int q;
        for (q = 0; q < 2; q++) {   /* q 0: retrieval (VGS / VGS+ stage A), 1: ABX (W2V2 / VGS+ stage A) */
            double at[MAX_SEEDS], en[MAX_SEEDS];
            char disp[40];
            int field = q == 0 ? EV_R10M : abx_field;
            size_t have = 0;
            if ((q == 0 && !strcmp(sa, "w2v2")) || (q == 1 && !strcmp(sa, "vgs"))) continue;
            for (s = 0; s < n; s++) {
                at[s] = en[s] = d[s] = NAN;
                if (!st[s].have[k]) continue;
                switch_end(&st[s].runs[k], field, &at[s], &en[s]);
                d[s] = q == 0 ? at[s] - en[s] : en[s] - at[s];
                have += isfinite(d[s]);
            }
            if (!have) continue;
            display_of((int)k, disp, sizeof disp);
            fprintf(f, "| %s | %s |", disp, q == 0 ? "mean R@10 (%), val"
                                             : abx_field == EV_VABXW ? "best-layer ABX within (%), val items" : "best-layer ABX across (%), val items");
            seed_cell(f, at, n, NULL, 2);
            seed_cell(f, en, n, NULL, 2);
            seed_cell(f, d, n, NULL, 2);
            fprintf(f, " ");
            {
                double half, m = mean_ci(d, n, &half, NULL);
                fprintf(f, "%s |\n", !isfinite(half) ? (m > 0 ? "one seed: forgets" : "one seed: keeps") :
                        m - half > 0 ? "forgets" : m + half < 0 ? "improves" : "no change resolved");
            }
        }
    }
#undef MET
}

static void write_seed_results_md(FILE *f, const seed_study *st, size_t n)
{
    static const int rm[6] = {M_R1S, M_R5S, M_R10S, M_R1I, M_R5I, M_R10I};
    double v[MAX_SEEDS], ih[MAX_SEEDS], chance = test_chance_r10(st, n);
    size_t s, k, i;
    char disp[40];
    fprintf(f, "# Results over %zu seeds\n\nStudies:", n);
    for (s = 0; s < n; s++) fprintf(f, " %s%s", st[s].dir, s + 1 < n ? "," : "");
    fprintf(f, ".\n\nEach cell: mean over seeds ± half-width of the 95 %% Student-t interval over seeds; in parentheses, "
               "the mean half-width of each seed's 95 %% bootstrap interval over test items (./eval --bootstrap; recall: "
               "the queries resampled, ABX: the phonetic contexts resampled); "
               "[k of n]: only k seeds have the number. Numbers from each run's final_eval.json.\n\n");
    fprintf(f, "## Table I: retrieval (recall@k, %%, test split)\n\n| model | S->I R@1 | S->I R@5 | S->I R@10 | I->S R@1 | I->S R@5 | I->S R@10 |\n"
               "|---|---|---|---|---|---|---|\n");
    for (k = 0; k < N_PAPER; k++) {
        for (s = 0; s < n && !st[s].have[k]; s++) {}
        if (s == n) continue;
        display_of((int)k, disp, sizeof disp);
        fprintf(f, "| %s |", disp);
        for (i = 0; i < 6; i++) {
            for (s = 0; s < n; s++) v[s] = st[s].have[k] ? run_metric(&st[s].runs[k], rm[i], &ih[s]) : (ih[s] = NAN, NAN);
            seed_cell(f, v, n, ih, 1);
        }
        fputc('\n', f);
    }
    if (isfinite(chance)) fprintf(f, "\nChance: mean R@10 %.2f %% (S->I k / images; I->S any own caption among k random).\n", chance);
    fprintf(f, "\n## Table II: ABX error (%%, best layer of each seed; chance 50 %%)\n\n| model | test within | test across | ood within | ood across |\n|---|---|---|---|---|\n");
    for (k = 0; k < N_PAPER; k++) {
        for (s = 0; s < n && !st[s].have[k]; s++) {}
        if (s == n) continue;
        display_of((int)k, disp, sizeof disp);
        fprintf(f, "| %s |", disp);
        for (i = 0; i < 4; i++) {
            for (s = 0; s < n; s++) v[s] = st[s].have[k] ? run_metric(&st[s].runs[k], M_ABX_TW + (int)i, &ih[s]) : (ih[s] = NAN, NAN);
            seed_cell(f, v, n, ih, 2);
        }
        fputc('\n', f);
    }
    {   /* MFCC: one number per data set, the same in every seed when the data are */
        static const char *const mk[4] = {"abx_test_mfcc_within", "abx_test_mfcc_across", "abx_ood_mfcc_within", "abx_ood_mfcc_across"};
        int any = 0;
        for (i = 0; i < 4; i++) {
            for (s = 0; s < n; s++) {
                v[s] = NAN;
                for (k = 0; k < N_PAPER && !isfinite(v[s]); k++)
                    if (st[s].have[k] && st[s].runs[k].final_line && !sv_json_number(st[s].runs[k].final_line, mk[i], &v[s])) v[s] = NAN;
                any |= isfinite(v[s]);
            }
            if (i == 0 && any) fprintf(f, "| MFCC (reference, no training) |");
            if (any) seed_cell(f, v, n, NULL, 2);
        }
        if (any) fputc('\n', f);
    }
    fprintf(f, "\nIn parentheses: the mean half-width of each seed's 95 %% bootstrap interval of its best layer's "
               "score, the phonetic contexts of the items resampled (none for runs evaluated without it). The MFCC "
               "row is the same features for every seed, hence no spread.\n");
    write_findings(f, st, n);
}

/* mean over seeds of each evaluation record (records matched by position; seeds of one study
   have the same evaluation steps), with the range over seeds (min, max) in lo/hi: the figures'
   bands. (A 95 % t-interval of 2 or 3 seeds is wider than the data and flattens the curves; the
   tables carry the intervals.) */
static int mean_runs(const seed_study *st, size_t n, run_log *mean, run_log *lo, run_log *hi, size_t *n_out)
{
    size_t k, s, i, f, m = 0;
    for (k = 0; k < N_PAPER; k++) {
        size_t ne = SIZE_MAX, first = SIZE_MAX;
        for (s = 0; s < n; s++)
            if (st[s].have[k]) { if (first == SIZE_MAX) first = s; if (st[s].runs[k].n_ev < ne) ne = st[s].runs[k].n_ev; }
        if (first == SIZE_MAX) continue;
        mean[m] = st[first].runs[k];
        mean[m].ev = (ev_rec *)calloc(ne + 1, sizeof(ev_rec));
        mean[m].final_line = NULL;
        lo[m] = mean[m]; hi[m] = mean[m];
        lo[m].ev = (ev_rec *)calloc(ne + 1, sizeof(ev_rec));
        hi[m].ev = (ev_rec *)calloc(ne + 1, sizeof(ev_rec));
        if (!mean[m].ev || !lo[m].ev || !hi[m].ev) { free(mean[m].ev); free(lo[m].ev); free(hi[m].ev); return 0; }
        mean[m].n_ev = lo[m].n_ev = hi[m].n_ev = mean[m].cap_ev = lo[m].cap_ev = hi[m].cap_ev = ne;
        for (i = 0; i < ne; i++)
            for (f = 0; f < EV_N; f++) {
                double v[MAX_SEEDS], half, mu, mn = NAN, mx = NAN;
                for (s = 0; s < n; s++) {
                    v[s] = st[s].have[k] ? st[s].runs[k].ev[i].v[f] : NAN;
                    if (isfinite(v[s])) { if (!(mn <= v[s])) mn = v[s]; if (!(mx >= v[s])) mx = v[s]; }
                }
                mu = mean_ci(v, n, &half, NULL);
                mean[m].ev[i].v[f] = mu;
                lo[m].ev[i].v[f] = f <= EV_STAGE ? mu : mn;
                hi[m].ev[i].v[f] = f <= EV_STAGE ? mu : mx;
            }
        m++;
    }
    *n_out = m;
    return 1;
}

/* the per-layer ABX of each row, averaged over seeds, as a final_eval-like line for figure_layers */
static char *mean_layers_line(const seed_study *st, size_t n, int k)
{
    static const char *const sets[2] = {"ood", "test"};
    size_t cap = 16384, len = 0, s, si;
    char *out = (char *)malloc(cap);
    if (!out) return NULL;
    len += (size_t)snprintf(out, cap, "{\"kind\":\"final_eval\"");
    for (si = 0; si < 2; si++) {
        char key[400], layers[SV_ABX_MAX_LAYERS * 8] = "", copy[SV_ABX_MAX_LAYERS * 8], *tok, *save;
        int w;
        for (s = 0; s < n && !layers[0]; s++) {
            snprintf(key, sizeof key, "abx_%s_layers", sets[si]);
            if (!st[s].have[k] || !st[s].runs[k].final_line || !sv_json_string(st[s].runs[k].final_line, key, layers, sizeof layers)) layers[0] = 0;
        }
        if (!layers[0]) continue;
        len += (size_t)snprintf(out + len, cap - len, ",\"abx_%s_layers\":\"%s\"", sets[si], layers);
        for (w = 0; w < 2; w++) {
            memcpy(copy, layers, sizeof copy);
            for (tok = copy; tok && *tok; tok = save) {
                double v[MAX_SEEDS], half, mu;
                save = strchr(tok, ',');
                if (save) *save++ = 0;
                snprintf(key, sizeof key, "abx_%s_%s_%s", sets[si], w ? "across" : "within", tok);
                for (s = 0; s < n; s++)
                    if (!st[s].have[k] || !st[s].runs[k].final_line || !sv_json_number(st[s].runs[k].final_line, key, &v[s])) v[s] = NAN;
                mu = mean_ci(v, n, &half, NULL);
                if (isfinite(mu) && len < cap) len += (size_t)snprintf(out + len, cap - len, ",\"%s\":%.6g", key, mu);
            }
        }
    }
    if (len < cap) snprintf(out + len, cap - len, "}");
    return out;
}

/* A folder holding studies of several seeds (seed<S>/study.settings) or one study; the study
   folders go to list (at most max), their number is returned (0: neither). */
static size_t study_folders(const char *dir, char (*list)[1024], size_t max)
{
    char p[1100];
    size_t n = 0;
    DIR *d;
    struct dirent *e;
    snprintf(p, sizeof p, "%s/study.settings", dir);
    if (!file_exists(p)) return 0;
    if ((d = opendir(dir))) {
        while ((e = readdir(d)) && n < max) {
            if (strncmp(e->d_name, "seed", 4) != 0) continue;
            snprintf(p, sizeof p, "%s/%s/study.settings", dir, e->d_name);
            if (file_exists(p)) snprintf(list[n++], 1024, "%s/%s", dir, e->d_name);
        }
        closedir(d);
    }
    if (n > 1) {   /* seed order: seed2 before seed10 */
        size_t i, j;
        for (i = 1; i < n; i++)
            for (j = i; j > 0; j--) {
                const char *a = strrchr(list[j - 1], '/') + 5, *b = strrchr(list[j], '/') + 5;
                char t[1024];
                if (strtoull(a, NULL, 10) <= strtoull(b, NULL, 10)) break;
                memcpy(t, list[j], sizeof t); memcpy(list[j], list[j - 1], sizeof t); memcpy(list[j - 1], t, sizeof t);
            }
    }
    if (n == 0) { snprintf(list[0], 1024, "%s", dir); n = 1; }
    return n;
}

static int write_seed_report(char (*dirs)[1024], size_t n, const char *out_dir)
{
    seed_study *st = (seed_study *)calloc(n, sizeof *st);
    run_log mean[N_PAPER], lo[N_PAPER], hi[N_PAPER];
    size_t s, k, n_mean = 0, ord[N_PAPER];
    char path[1100], *tmp;
    FILE *f;
    int ok = 0;
    memset(mean, 0, sizeof mean); memset(lo, 0, sizeof lo); memset(hi, 0, sizeof hi);
    if (!st) { fprintf(stderr, "eval: out of memory\n"); return 0; }
    for (s = 0; s < n; s++) {
        snprintf(st[s].dir, sizeof st[s].dir, "%.1023s", dirs[s]);
        for (k = 0; k < N_PAPER; k++) {
            char rd[1100], lp[1200];
            snprintf(rd, sizeof rd, "%.1023s/%.40s", dirs[s], paper_order[k]);
            snprintf(lp, sizeof lp, "%s/log.jsonl", rd);
            if (!file_exists(lp)) continue;
            st[s].runs[k].dir = NULL;
            {
                char *copy = (char *)malloc(strlen(rd) + 1);
                if (!copy) { fprintf(stderr, "eval: out of memory\n"); goto done; }
                memcpy(copy, rd, strlen(rd) + 1);
                st[s].runs[k].dir = copy;
                if (!load_run(copy, &st[s].runs[k])) { free(copy); st[s].runs[k].dir = NULL; goto done; }
            }
            st[s].have[k] = 1;
        }
    }
    if (!mean_runs(st, n, mean, lo, hi, &n_mean)) { fprintf(stderr, "eval: out of memory\n"); goto done; }
    for (k = 0; k < n_mean; k++) {
        mean[k].final_line = mean_layers_line(st, n, mean[k].order);
        ord[k] = k;
    }
    if (sv_make_dir(out_dir) != SV_OK) { fprintf(stderr, "eval: %s\n", sv_last_error()); goto done; }
    if (!write_figures(out_dir, mean, ord, n_mean, n > 1 ? lo : NULL, n > 1 ? hi : NULL)) goto done;
    if (!path_join(path, sizeof path, out_dir, "results.md")) goto done;
    if (!(f = sv_file_create(path, &tmp))) { fprintf(stderr, "eval: %s\n", sv_last_error()); goto done; }
    write_seed_results_md(f, st, n);
    fprintf(f, "\n## Figures (means over seeds; shaded: the range over seeds, min to max)\n\n"
               "- recall.svg: mean R@10 over training (val), chance marked\n- loss_av.svg, loss_aud.svg: held-out losses (log scale)\n"
               "- abx_best.svg: best-layer ABX on validation items over training (within speaker; across where train logged no within value)\n"
               "- abx_layers.svg, abx_layers_across.svg: final ABX per layer (mean over seeds)\n");
    if (sv_file_commit(f, tmp, path, 1) != SV_OK) { fprintf(stderr, "eval: %s\n", sv_last_error()); goto done; }
    ok = 1;
done:
    for (k = 0; k < n_mean; k++) { free(mean[k].ev); free(lo[k].ev); free(hi[k].ev); free(mean[k].final_line); }
    for (s = 0; s < n; s++)
        for (k = 0; k < N_PAPER; k++) {
            free((char *)st[s].runs[k].dir);
            if (st[s].have[k]) free_run(&st[s].runs[k]);
        }
    free(st);
    return ok;
}

static int run_report(int argc, char **argv, int first)
{
    const char *runs[256], *out = NULL, *study_arg = NULL;
    static char studies[MAX_SEEDS][1024];
    char outbuf[1024];
    size_t n = 0, n_studies = 0, n_args = 0;
    int i;
    for (i = first; i < argc; i++) if (strcmp(argv[i], "--out") == 0) i++; else n_args++;
    for (i = first; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0) {
            if (i + 1 >= argc || (argv[i + 1][0] == '-' && argv[i + 1][1] == '-')) return fail("--out needs a folder", NULL, NULL);
            if (out) return fail("--out is given twice", NULL, NULL);
            out = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] == '-') return fail("unknown option for --report: %s", argv[i], NULL);
        else if (n < 256) {
            char lp[1100];
            FILE *f;
            size_t ns = study_folders(argv[i], studies + n_studies, MAX_SEEDS - n_studies);
            if (ns) {   /* a study (./train --all), or the seeds of one (--seeds N) */
                if (n) return fail("%s is a study folder: give either run folders or study folders, not both", argv[i], NULL);
                n_studies += ns;
                if (!out) study_arg = argv[i];
                continue;
            }
            if (n_studies) return fail("%s is not a study folder (no study.settings): give either run folders or study folders", argv[i], NULL);
            snprintf(lp, sizeof lp, "%s/log.jsonl", argv[i]);
            f = fopen(lp, "r");
            if (!f) return fail("%s is not a run folder (no log.jsonl in it)", argv[i], NULL);
            fclose(f);
            runs[n++] = argv[i];
        }
        else return fail("too many runs (at most 256)", NULL, NULL);
    }
    if (n_studies) {
        size_t q, k2;
        for (q = 0; q < n_studies; q++) {   /* a study.settings alone is no study: it needs runs */
            for (k2 = 0; k2 < N_PAPER; k2++) {
                char lp[1200];
                snprintf(lp, sizeof lp, "%.1023s/%.40s/log.jsonl", studies[q], paper_order[k2]);
                if (file_exists(lp)) break;
            }
            if (k2 == N_PAPER) return fail("%s is not a run folder (no log.jsonl) nor a study with runs", studies[q], NULL);
        }
        /* one argument: the report goes into it; several studies: --out or ./report */
        if (!out) out = n_args == 1 && study_arg ? study_arg : "report";
        if (!write_seed_report(studies, n_studies, out)) return 2;
        printf("wrote %s/results.md (%zu seeds: means, 95%% intervals, the findings) and figures %s/{loss_av,loss_aud,recall,abx_best,"
               "abx_layers,abx_layers_across}.svg\n", out, n_studies, out);
        return 0;
    }
    if (n == 0) return fail("--report needs at least one run folder", NULL, NULL);
    if (!out) {   /* the runs' common parent folder, else ./report */
        char p0[1024], pi[1024];
        size_t k;
        char tmp[1024];
        snprintf(tmp, sizeof tmp, "%s", runs[0]);
        while (strlen(tmp) > 1 && tmp[strlen(tmp) - 1] == '/') tmp[strlen(tmp) - 1] = 0;
        dir_of(tmp, p0, sizeof p0);
        for (k = 1; k < n; k++) {
            snprintf(tmp, sizeof tmp, "%s", runs[k]);
            while (strlen(tmp) > 1 && tmp[strlen(tmp) - 1] == '/') tmp[strlen(tmp) - 1] = 0;
            dir_of(tmp, pi, sizeof pi);
            if (strcmp(pi, p0) != 0) break;
        }
        if (k == n && strcmp(p0, ".") != 0) snprintf(outbuf, sizeof outbuf, "%s", p0);
        else snprintf(outbuf, sizeof outbuf, "report");
        out = outbuf;
    }
    if (!write_report(runs, n, out)) return 2;
    printf("\nwrote %s/results.md and figures %s/{loss_av,loss_aud,recall,abx_best,abx_layers,abx_layers_across}.svg\n", out, out);
    return 0;
}

/* The run folder's data.spec (one line) into spec: 1, or 0 after a one-line error. */
static int read_run_spec(const char *run_dir, char *spec, size_t cap)
{
    char p[1100];
    FILE *f;
    snprintf(p, sizeof p, "%s/data.spec", run_dir);
    if (!(f = fopen(p, "r"))) { fail("no --data given and %s cannot be read", p, NULL); return 0; }
    if (!fgets(spec, (int)cap, f)) spec[0] = 0;
    fclose(f);
    spec[strcspn(spec, "\r\n")] = 0;
    if (!spec[0]) { fail("%s is empty: give --data", p, NULL); return 0; }
    return 1;
}

static int was_given(const char *const *seen, size_t n_seen, const char *a)
{
    size_t k;
    for (k = 0; k < n_seen; k++) if (!strcmp(seen[k], a)) return 1;
    return 0;
}

/* Options given more than once are refused (the last one winning silently hides a typo). */
static int seen_before(const char **seen, size_t *n_seen, const char *a)
{
    size_t k;
    for (k = 0; k < *n_seen; k++) if (!strcmp(seen[k], a)) return 1;
    if (*n_seen < 64) seen[(*n_seen)++] = a;
    return 0;
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- ./eval features, ./eval embeddings */
static const char *usage_features =
    "usage: ./eval features --model M [options] INPUT...\n"
    "Hidden states of a wav2vec 2.0 model for WAV files, for use elsewhere.\n"
    "  --model M          a checkpoint written by ./train (.ckpt), or a Hugging Face wav2vec 2.0\n"
    "                     model as safetensors (config.json beside it is read when present)\n"
    "  INPUT...           .wav files and folders (every .wav below a folder, recursively)\n"
    "  --list FILE        more inputs: one .wav path per line, relative to FILE's folder\n"
    "  --layers SPEC      all (default: cnn and 0..L) or a comma list of: cnn (CNN output, C dims),\n"
    "                     0 (transformer input), 1..L (layer outputs), codes (quantizer code per\n"
    "                     group, as float), q (project_q of the chosen codevectors), proj\n"
    "                     (project_hid of layer L: what the contrastive loss compares with q)\n"
    "  --format F         npy (default): OUT/<layer>/<name>.npy, float32 [frames, dim];\n"
    "                     zerospeech: OUT/<layer>/{meta.yaml,phonetic/<subset>/<name>.txt}, the\n"
    "                     ZeroSpeech 2021 submission layout (one frame per line)\n"
    "                     (with a single layer, OUT/<layer>/ is OUT itself)\n"
    "  --subset NAME      the phonetic/<subset> folder of --format zerospeech (default dev-clean)\n"
    "  --out DIR          output folder (default features)\n"
    "  --threads N        OpenMP threads (default: all)\n"
    "<name> is the path below the input folder without .wav (subfolders kept), or the file name.\n"
    "Audio at another rate is resampled to 16 kHz; each file is normalised to zero mean and unit\n"
    "variance, as in training, and goes through the model whole (eval mode, no masking).\n"
    "Frame t covers samples [320 t, 320 t + 400) at 16 kHz: [0.02 t, 0.02 t + 0.025) s, centre\n"
    "0.02 t + 0.0125 s (for the standard CNN; the program prints the hop and window it used).\n"
    "Layer k here is Hugging Face's hidden_states[k] and torchaudio's extract_features()[k-1].\n";

static const char *usage_embeddings =
    "usage: ./eval embeddings --ckpt C [--data SPEC] [--split test] [--out DIR] [--batch N]\n"
    "Audio (caption) and image embeddings of a split, as the retrieval evaluation computes them\n"
    "(each caption cropped to its first 8 s and normalised), for analyses elsewhere:\n"
    "  DIR/audio.npy     [captions, E]   one row per utterance of the split that has an image\n"
    "  DIR/images.npy    [images, E]     one row per image those captions use\n"
    "  DIR/captions.tsv  row, id, image_row (the row of images.npy), image (row in the corpus)\n"
    "  DIR/images.tsv    row, image (row in the corpus' images.npy)\n"
    "The score of image i and caption j is images[i] . audio[j] (cosine when the model's\n"
    "sim_cosine is set: then both are written L2-normalised).\n";

typedef struct feat_list { char **path, **name; size_t n, cap; } feat_list;

static int list_add(feat_list *l, const char *path, const char *name)
{
    size_t i;
    for (i = 0; i < l->n; i++)
        if (strcmp(l->name[i], name) == 0) {
            fprintf(stderr, "eval: %s and %s would both be written as '%s'\n", l->path[i], path, name);
            return -1;
        }
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 64;
        char **a = (char **)realloc(l->path, nc * sizeof(char *)), **b;
        if (!a) return -1;
        l->path = a;
        b = (char **)realloc(l->name, nc * sizeof(char *));
        if (!b) return -1;
        l->name = b;
        l->cap = nc;
    }
    l->path[l->n] = strdup(path);
    l->name[l->n] = strdup(name);
    if (!l->path[l->n] || !l->name[l->n]) return -1;
    l->n++;
    return 0;
}

static int ends_with_wav(const char *s)
{
    size_t n = strlen(s);
    return n > 4 && (strcmp(s + n - 4, ".wav") == 0 || strcmp(s + n - 4, ".WAV") == 0);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* every .wav below dir (sorted, recursively); rel is the name prefix below the input folder */
static int list_dir(feat_list *l, const char *dir, const char *rel, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0, i;
    int rc = 0;
    if (!d) { fprintf(stderr, "eval: cannot open folder %s: %s\n", dir, strerror(errno)); return -1; }
    if (depth > 32) { closedir(d); fprintf(stderr, "eval: %s: folders nested too deeply\n", dir); return -1; }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            char **nn = (char **)realloc(names, (cap = cap ? 2 * cap : 64) * sizeof(char *));
            if (!nn) { rc = -1; break; }
            names = nn;
        }
        if (!(names[n++] = strdup(e->d_name))) { rc = -1; break; }
    }
    closedir(d);
    if (n) qsort(names, n, sizeof(char *), cmp_str);
    for (i = 0; i < n && rc == 0; i++) {
        char p[4096], r[4096];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        if (stat(p, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) rc = list_dir(l, p, r, depth + 1);
        else if (ends_with_wav(names[i])) {
            r[strlen(r) - 4] = 0;
            rc = list_add(l, p, r);
        }
    }
    for (i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int list_input(feat_list *l, const char *in)
{
    struct stat sb;
    char name[4096];
    if (stat(in, &sb) != 0) { fprintf(stderr, "eval: %s: %s\n", in, strerror(errno)); return -1; }
    if (S_ISDIR(sb.st_mode)) {
        size_t before = l->n;
        if (list_dir(l, in, "", 0)) return -1;
        if (l->n == before) fprintf(stderr, "eval: note: no .wav files in %s\n", in);
        return 0;
    }
    snprintf(name, sizeof name, "%s", base_name(in));
    if (ends_with_wav(name)) name[strlen(name) - 4] = 0;
    return list_add(l, in, name);
}

static int list_file(feat_list *l, const char *file)
{
    FILE *f = fopen(file, "r");
    char line[4096], dir[1024], p[5200];
    size_t ln = 0;
    if (!f) { fprintf(stderr, "eval: --list %s: %s\n", file, strerror(errno)); return -1; }
    dir_of(file, dir, sizeof dir);
    while (fgets(line, sizeof line, f)) {
        ln++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        if (line[0] == '/') snprintf(p, sizeof p, "%s", line);
        else snprintf(p, sizeof p, "%s/%s", dir, line);
        if (list_input(l, p)) { fclose(f); fprintf(stderr, "eval: (line %zu of %s)\n", ln, file); return -1; }
    }
    fclose(f);
    return 0;
}

/* mkdir -p of the folders of path (everything before the last '/') */
static int make_parents(const char *path)
{
    char p[4096];
    size_t i;
    snprintf(p, sizeof p, "%s", path);
    for (i = 1; p[i]; i++)
        if (p[i] == '/') {
            p[i] = 0;
            if (sv_make_dir(p) != SV_OK) { fprintf(stderr, "eval: %s\n", sv_last_error()); return -1; }
            p[i] = '/';
        }
    return 0;
}

enum { OUT_CNN = -1, OUT_CODES = -2, OUT_Q = -3, OUT_PROJ = -4 };

static void out_label(int k, char *buf, size_t cap)
{
    if (k == OUT_CNN) snprintf(buf, cap, "cnn");
    else if (k == OUT_CODES) snprintf(buf, cap, "codes");
    else if (k == OUT_Q) snprintf(buf, cap, "q");
    else if (k == OUT_PROJ) snprintf(buf, cap, "proj");
    else snprintf(buf, cap, "L%d", k);
}

/* "all" or "cnn,0,3,12,codes" -> outs[]; returns the count or -1 */
static int parse_layers(const char *spec, size_t L, int *outs, int cap)
{
    int n = 0;
    const char *p = spec;
    if (strcmp(spec, "all") == 0) {
        size_t l;
        outs[n++] = OUT_CNN;
        for (l = 0; l <= L && n < cap; l++) outs[n++] = (int)l;
        return n;
    }
    while (*p) {
        char tok[32];
        size_t len = strcspn(p, ",");
        int k, i;
        if (len == 0 || len >= sizeof tok) { fprintf(stderr, "eval: --layers: bad entry in '%s'\n", spec); return -1; }
        memcpy(tok, p, len);
        tok[len] = 0;
        if (!strcmp(tok, "cnn")) k = OUT_CNN;
        else if (!strcmp(tok, "codes")) k = OUT_CODES;
        else if (!strcmp(tok, "q")) k = OUT_Q;
        else if (!strcmp(tok, "proj")) k = OUT_PROJ;
        else {
            char *end;
            unsigned long v = strtoul(tok, &end, 10);
            if (*end || tok[0] == '-' || v > L) {
                fprintf(stderr, "eval: --layers: '%s' is not cnn, codes, q, proj or a layer 0..%zu\n", tok, L);
                return -1;
            }
            k = (int)v;
        }
        for (i = 0; i < n; i++) if (outs[i] == k) break;
        if (i == n) {
            if (n == cap) { fprintf(stderr, "eval: --layers: too many entries\n"); return -1; }
            outs[n++] = k;
        }
        p += len + (p[len] == ',');
    }
    if (!n) { fprintf(stderr, "eval: --layers is empty\n"); return -1; }
    return n;
}

static sv_model *load_model(const char *path)
{
    size_t n = strlen(path);
    sv_model *m;
    if (n > 12 && strcmp(path + n - 12, ".safetensors") == 0) {
        /* features only: no image branch, no VGS audio layers (the VGS branch is not in the file) */
        sv_config base;
        char notes[1024];
        sv_config_preset("base", &base);
        base.img_layers = 0;
        base.vgs_audio_layers = 0;
        m = sv_hf_load(path, &base, notes, sizeof notes);
        if (m && notes[0]) fprintf(stderr, "eval: %s: %s\n", path, notes);
        return m;
    }
    return sv_checkpoint_load(path, NULL, NULL);
}

/* ZeroSpeech 2021 meta.yaml of a features folder */
static int write_zs_meta(const char *dir, const char *model, const char *label, double shift)
{
    char p[4200];
    FILE *f;
    snprintf(p, sizeof p, "%s/meta.yaml", dir);
    if (make_parents(p)) return -1;
    if (!(f = fopen(p, "w"))) { fprintf(stderr, "eval: cannot write %s: %s\n", p, strerror(errno)); return -1; }
    fprintf(f, "author: \"ssl_vgs user\"\naffiliation: \"unknown\"\n");
    fprintf(f, "description: \"ssl_vgs features %s of %s\"\nopen_source: true\ntrain_set: \"unknown\"\ngpu_budget: 0.0\n", label,
            model);
    fprintf(f, "parameters:\n  phonetic:\n    metric: cosine\n    frame_shift: %.17g\n  semantic:\n    metric: cosine\n"
               "    pooling: mean\n", shift);
    return fclose(f) == 0 ? 0 : -1;
}

static int write_txt(const char *path, const float *x, size_t T, size_t D)
{
    char tmp[4300];
    size_t t, k;
    FILE *f;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "w"))) { fprintf(stderr, "eval: cannot write %s: %s\n", tmp, strerror(errno)); return -1; }
    for (t = 0; t < T; t++) {
        for (k = 0; k < D; k++) fprintf(f, k ? " %.9g" : "%.9g", (double)x[t * D + k]);   /* float32 exactly */
        fputc('\n', f);
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) { fprintf(stderr, "eval: cannot write %s: %s\n", path, strerror(errno)); remove(tmp); return -1; }
    return 0;
}

static int run_features(int argc, char **argv)
{
    const char *model = NULL, *layers = "all", *format = "npy", *out = "features", *subset = "dev-clean";
    feat_list in;
    const char *seen[64];
    int outs[SV_MAX_LAYERS + 8], n_out, i, rc = 0, threads = 0, zs;
    size_t f, L, hop = 1, win, files_done = 0, n_seen = 0;
    double audio_s = 0, t0;
    sv_model *m = NULL;
    sv_ctx *c = NULL;
    memset(&in, 0, sizeof in);
    for (i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage_features, stdout); return 0; }
        if (a[0] != '-' || a[1] != '-') { if (list_input(&in, a)) return 2; continue; }
        if (seen_before(seen, &n_seen, a) && strcmp(a, "--list") != 0) return fail("features: %s is given twice", a, NULL);
        if (!v || !*v || (v[0] == '-' && v[1] == '-')) return fail("features: %s needs a value (see ./eval features --help)", a, NULL);
        i++;
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--layers")) layers = v;
        else if (!strcmp(a, "--format")) format = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--subset")) subset = v;
        else if (!strcmp(a, "--list")) { if (list_file(&in, v)) return 2; }
        else if (!strcmp(a, "--threads")) {
            size_t t;
            if (!parse_size(a, v, 1, 1024, &t)) return 2;
            threads = (int)t;
        } else return fail("features: unknown option %s (see ./eval features --help)", a, NULL);
    }
    if (!model) return fail("features: --model is required (see ./eval features --help)", NULL, NULL);
    if (strcmp(format, "npy") && strcmp(format, "zerospeech")) return fail("--format must be npy or zerospeech, not '%s'", format, NULL);
    if (!*subset || strchr(subset, '/')) return fail("--subset must be a plain folder name", NULL, NULL);
    if (!in.n) return fail("features: no input .wav files (give files, folders or --list)", NULL, NULL);
    zs = !strcmp(format, "zerospeech");
    if (threads) sv_set_threads(threads);
    if (!(m = load_model(model))) return fail("cannot load %s: %s", model, sv_last_error());
    L = m->cfg.n_shared + m->cfg.n_decoder;
    if ((n_out = parse_layers(layers, L, outs, (int)(sizeof outs / sizeof outs[0]))) < 0) { sv_model_free(m); return 2; }
    for (f = 0; f < m->cfg.n_conv; f++) hop *= m->cfg.conv_stride[f];
    win = sv_config_receptive_field(&m->cfg);
    fprintf(stderr, "model %s: %zu layers of %zu dims, CNN %zu channels; %zu files; frames every %zu samples (%.4g s), "
                    "window %zu samples (%.4g s)\n", model, L, m->cfg.D, m->cfg.conv_dim[m->cfg.n_conv - 1], in.n, hop,
            (double)hop / 16000.0, win, (double)win / 16000.0);
    c = sv_ctx_new(0, 1);
    if (!c) { rc = fail("out of memory", NULL, NULL); goto done; }
    if (zs)
        for (i = 0; i < n_out; i++) {
            char lab[16], dir[4096];
            out_label(outs[i], lab, sizeof lab);
            if (n_out > 1) snprintf(dir, sizeof dir, "%s/%s", out, lab);
            else snprintf(dir, sizeof dir, "%s", out);
            if (write_zs_meta(dir, model, lab, (double)hop / 16000.0)) { rc = 1; goto done; }
        }
    t0 = now_sec();
    for (f = 0; f < in.n; f++) {
        float *wave = NULL, *hid[SV_MAX_LAYERS + 1], *cnn = NULL, *extra = NULL;
        size_t n = 0, T = 0, l;
        int *codes = NULL;
        memset(hid, 0, sizeof hid);
        if (sv_wav_load_16k(in.path[f], &wave, &n) != SV_OK) { rc = fail("%s", sv_last_error(), NULL); goto done; }
        if (sv_extract_all_layers(m, c, wave, n, hid, &cnn, &T) != SV_OK) {
            rc = fail("%s: %s", in.path[f], sv_last_error());
            sv_io_free(wave);
            goto done;
        }
        audio_s += (double)n / 16000.0;
        sv_io_free(wave);
        for (i = 0; i < n_out && rc == 0; i++) {
            char lab[16], p[4200];
            const float *x = NULL;
            size_t dim = m->cfg.D, sh[4];
            int k = outs[i];
            out_label(k, lab, sizeof lab);
            if (k >= 0) x = hid[k];
            else if (k == OUT_CNN) { x = cnn; dim = m->cfg.conv_dim[m->cfg.n_conv - 1]; }
            else {
                size_t G = m->cfg.q_groups, F = m->cfg.final_dim, e;
                free(extra);
                extra = (float *)malloc(T * (G > F ? G : F) * sizeof(float));
                if (!extra) { rc = fail("out of memory", NULL, NULL); break; }
                if (k == OUT_PROJ) { sv_w2v2_predict(m, hid[L], T, extra); dim = F; }
                else {
                    free(codes);
                    codes = (int *)malloc(T * G * sizeof(int));
                    if (!codes || sv_w2v2_codes(m, c, cnn, T, codes, k == OUT_Q ? extra : NULL) != SV_OK) { rc = fail("quantizer: %s", sv_last_error(), NULL); break; }
                    if (k == OUT_CODES) { for (e = 0; e < T * G; e++) extra[e] = (float)codes[e]; dim = G; }
                    else dim = F;
                }
                x = extra;
            }
            {
                char base[4096];   /* one output: OUT itself; several: OUT/<label> */
                if (n_out > 1) snprintf(base, sizeof base, "%s/%s", out, lab);
                else snprintf(base, sizeof base, "%s", out);
                if (zs) snprintf(p, sizeof p, "%s/phonetic/%s/%s.txt", base, subset, in.name[f]);
                else snprintf(p, sizeof p, "%s/%s.npy", base, in.name[f]);
            }
            if (make_parents(p)) { rc = 1; break; }
            sh[0] = T; sh[1] = dim; sh[2] = sh[3] = 1;
            if (zs) { if (write_txt(p, x, T, dim)) rc = 1; }
            else if (sv_npy_write(p, x, sh, 2) != SV_OK) rc = fail("%s", sv_last_error(), NULL);
        }
        for (l = 0; l <= L; l++) sv_io_free(hid[l]);
        sv_io_free(cnn);
        free(extra);
        free(codes);
        if (rc) goto done;
        files_done++;
        if (f + 1 == in.n || (f + 1) % 10 == 0) {
            double el = now_sec() - t0;
            fprintf(stderr, "\r  features: %zu/%zu files, %.1f s of audio, %.1fx real time", f + 1, in.n, audio_s, el > 0 ? audio_s / el : 0);
            if (f + 1 == in.n) fprintf(stderr, "\n");
        }
    }
    printf("wrote %d output%s of %zu files to %s (%s)\n", n_out, n_out > 1 ? "s" : "", files_done, out, format);
done:
    for (f = 0; f < in.n; f++) { free(in.path[f]); free(in.name[f]); }
    free(in.path); free(in.name);
    sv_ctx_free(c);
    sv_model_free(m);
    return rc;
}

static int run_embeddings(int argc, char **argv)
{
    const char *ckpt = NULL, *data = NULL, *split_s = "test", *out = "embeddings", *seen[64];
    size_t n_seen = 0, batch = 16, i, n_cap = 0, n_img = 0, E, R, Dimg, maxS = 0, rf, sh[4];
    int split, rc = 0;
    char run_dir[1024], spec[4096], p[1200];
    size_t *cap_utt = NULL, *len = NULL;
    long *img_row = NULL, *local = NULL;
    float *A = NULL, *V = NULL, *wave = NULL, *reg = NULL, *box = NULL;
    sv_model *m = NULL;
    sv_ctx *c = NULL;
    sv_data d;
    FILE *f;
    memset(&d, 0, sizeof d);
    for (i = 2; i < (size_t)argc; i++) {
        const char *a = argv[i], *v = i + 1 < (size_t)argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage_embeddings, stdout); return 0; }
        if (a[0] != '-' || a[1] != '-') return fail("embeddings: unexpected argument '%s' (see ./eval embeddings --help)", a, NULL);
        if (seen_before(seen, &n_seen, a)) return fail("embeddings: %s is given twice", a, NULL);
        if (!v || !*v || (v[0] == '-' && v[1] == '-')) return fail("embeddings: %s needs a value (see ./eval embeddings --help)", a, NULL);
        if (!strcmp(a, "--ckpt")) ckpt = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--split")) split_s = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--batch")) { if (!parse_size(a, v, 1, 65536, &batch)) return 2; }
        else return fail("embeddings: unknown option %s (see ./eval embeddings --help)", a, NULL);
        i++;
    }
    if (!ckpt) return fail("embeddings: --ckpt is required", NULL, NULL);
    split = split_of(split_s);
    if (split < 0 || split == SV_SPLIT_OOD) return fail("--split must be train, val or test, not '%s'", split_s, NULL);
    dir_of(ckpt, run_dir, sizeof run_dir);
    if (data && sv_data_spec_check(data) != SV_OK) return fail("--data: %s", sv_last_error(), NULL);
    /* the checkpoint first: "no such checkpoint" rather than a missing data.spec beside it */
    if (!(m = sv_checkpoint_load(ckpt, NULL, NULL))) return fail("%s", sv_last_error(), NULL);
    if (!data) {
        if (!read_run_spec(run_dir, spec, sizeof spec)) { sv_model_free(m); return 2; }
        data = spec;
    }
    if (sv_data_spec_check(data) != SV_OK) { sv_model_free(m); return fail("--data: %s", sv_last_error(), NULL); }
    E = m->cfg.E; R = m->cfg.img_regions; Dimg = m->cfg.img_dim;
    rf = sv_config_receptive_field(&m->cfg);
    if (sv_data_from_spec(&d, data) != SV_OK) { rc = fail("data %s: %s", data, sv_last_error()); goto done; }
    if (d.n_images && (d.R != R || d.Dimg != Dimg)) { rc = fail("the data's images do not match the model's image config", NULL, NULL); goto done; }
    cap_utt = (size_t *)calloc(d.n[split] + 1, sizeof(size_t));
    img_row = (long *)calloc(d.n[split] + 1, sizeof(long));
    local = (long *)calloc(d.n_images + 1, sizeof(long));
    if (!cap_utt || !img_row || !local) { rc = fail("out of memory", NULL, NULL); goto done; }
    for (i = 0; i < d.n_images; i++) local[i] = -1;
    /* the retrieval evaluation's selection: captions with an image, images in order of first use */
    for (i = 0; i < d.n[split]; i++) {
        long r = d.image[split][i];
        size_t nn = d.len[split][i] < SV_EVAL_MAX_SAMPLES ? d.len[split][i] : SV_EVAL_MAX_SAMPLES;
        if (r < 0 || (size_t)r >= d.n_images) continue;
        if (local[r] < 0) { local[r] = (long)n_img; img_row[n_img++] = r; }
        cap_utt[n_cap++] = i;
        if (nn < rf) nn = rf;
        if (nn > maxS) maxS = nn;
    }
    if (!n_cap) { rc = fail("split %s has no captions with images", split_s, NULL); goto done; }
    A = (float *)calloc(n_cap * E, sizeof(float));
    V = (float *)calloc(n_img * E, sizeof(float));
    wave = (float *)calloc(batch * maxS, sizeof(float));
    len = (size_t *)calloc(batch, sizeof(size_t));
    reg = (float *)calloc(batch * R * Dimg, sizeof(float));
    box = (float *)calloc(batch * R * 4, sizeof(float));
    c = sv_ctx_new(0, 1);
    if (!A || !V || !wave || !len || !reg || !box || !c) { rc = fail("out of memory", NULL, NULL); goto done; }
    for (i = 0; i < n_cap; i += batch) {
        size_t nb = n_cap - i < batch ? n_cap - i : batch, b, S = 0;
        for (b = 0; b < nb; b++) {   /* first 8 s, normalised, zero-padded to the batch width */
            size_t u = cap_utt[i + b], nn = d.len[split][u] < SV_EVAL_MAX_SAMPLES ? d.len[split][u] : SV_EVAL_MAX_SAMPLES;
            len[b] = nn < rf ? rf : nn;
            if (len[b] > S) S = len[b];
        }
        for (b = 0; b < nb; b++) {
            size_t u = cap_utt[i + b], nn = d.len[split][u] < SV_EVAL_MAX_SAMPLES ? d.len[split][u] : SV_EVAL_MAX_SAMPLES;
            const float *x;
            float *owned;
            if (sv_data_audio(&d, split, u, &x, &owned) != SV_OK) { rc = fail("%s", sv_last_error(), NULL); goto done; }
            memcpy(wave + b * S, x, nn * sizeof(float));
            sv_io_free(owned);
            sv_normalize_wave(wave + b * S, nn);
            memset(wave + b * S + nn, 0, (S - nn) * sizeof(float));
        }
        if (sv_embed_audio(m, c, wave, len, nb, S, A + i * E) != SV_OK) { rc = fail("audio: %s", sv_last_error(), NULL); goto done; }
        progress("audio embeddings", i + nb, n_cap, NULL);
    }
    for (i = 0; i < n_img; i += batch) {
        size_t nb = n_img - i < batch ? n_img - i : batch, b;
        for (b = 0; b < nb; b++) {
            size_t r = (size_t)img_row[i + b];
            if (sv_data_image(&d, r, reg + b * R * Dimg, box + b * R * 4) != SV_OK) { rc = fail("%s", sv_last_error(), NULL); goto done; }
        }
        if (sv_embed_images(m, c, reg, box, nb, V + i * E) != SV_OK) { rc = fail("images: %s", sv_last_error(), NULL); goto done; }
        progress("image embeddings", i + nb, n_img, NULL);
    }
    if (m->cfg.sim_cosine) {   /* as the retrieval evaluation scores them */
        float *rows[2];
        size_t nr[2], t, k, e;
        rows[0] = A; nr[0] = n_cap; rows[1] = V; nr[1] = n_img;
        for (t = 0; t < 2; t++)
            for (k = 0; k < nr[t]; k++) {
                double s = 0;
                float *x = rows[t] + k * E;
                for (e = 0; e < E; e++) s += (double)x[e] * x[e];
                s = sqrt(s) < 1e-8 ? 1e-8 : sqrt(s);
                for (e = 0; e < E; e++) x[e] = (float)(x[e] / s);
            }
    }
    snprintf(p, sizeof p, "%s/audio.npy", out);
    if (make_parents(p)) { rc = 1; goto done; }
    sh[0] = n_cap; sh[1] = E; sh[2] = sh[3] = 1;
    if (sv_npy_write(p, A, sh, 2) != SV_OK) { rc = fail("%s", sv_last_error(), NULL); goto done; }
    snprintf(p, sizeof p, "%s/images.npy", out);
    sh[0] = n_img;
    if (sv_npy_write(p, V, sh, 2) != SV_OK) { rc = fail("%s", sv_last_error(), NULL); goto done; }
    snprintf(p, sizeof p, "%s/captions.tsv", out);
    if (!(f = fopen(p, "w"))) { rc = fail("cannot write %s", p, NULL); goto done; }
    fprintf(f, "row\tid\timage_row\timage\n");
    for (i = 0; i < n_cap; i++) {
        long r = d.image[split][cap_utt[i]];
        fprintf(f, "%zu\t%s\t%ld\t%ld\n", i, d.id[split][cap_utt[i]], local[r], r);
    }
    if (fclose(f) != 0) { rc = fail("cannot write %s", p, NULL); goto done; }
    snprintf(p, sizeof p, "%s/images.tsv", out);
    if (!(f = fopen(p, "w"))) { rc = fail("cannot write %s", p, NULL); goto done; }
    fprintf(f, "row\timage\n");
    for (i = 0; i < n_img; i++) fprintf(f, "%zu\t%ld\n", i, img_row[i]);
    if (fclose(f) != 0) { rc = fail("cannot write %s", p, NULL); goto done; }
    printf("wrote %zu caption and %zu image embeddings (E = %zu) of the %s split to %s\n", n_cap, n_img, E, split_s, out);
done:
    free(cap_utt); free(img_row); free(local); free(A); free(V); free(wave); free(len); free(reg); free(box);
    sv_ctx_free(c);
    sv_model_free(m);
    sv_data_free(&d);
    return rc;
}

int main(int argc, char **argv)
{
    const char *targets = NULL;   /* MT4SSL offline targets (--losses of a model with an offline head) */
    const char *ckpt = NULL, *data = NULL, *abx_split = "both", *abx_mode = "sampled", *zs_dir = NULL,
               *json = NULL, *split_s = "test", *zs_split_s = "ood", *seen[64];
    int do_ret = 0, do_abx = 0, do_loss = 0, i, split, zs_split, rc = 0, threads = 0;
    size_t batch = 16, max_batches = 0, layer = (size_t)-1, seed = 0, tmp_sz, n_seen = 0;
    char run_dir[1024], spec[4096], json_buf[1200];
    sv_model *m = NULL;
    sv_ctx *c = NULL;
    sv_data d;
    sv_recall rec;
    double rec_ci[6][2];              /* bootstrap interval of each recall (recall_keys order) */
    size_t n_boot = 1000;
    sv_abx_layer_result abx[2][SV_ABX_MAX_LAYERS];
    size_t n_abx[2] = {0, 0};
    sv_abx_layer_result abx_mfcc[2];   /* the MFCC reference row of each set */
    int have_rec = 0;
    const char *abx_set = NULL, *set_name = NULL;   /* an external ABX set and its label */
    char set_buf[128];
    memset(&d, 0, sizeof d);
    memset(abx_mfcc, 0, sizeof abx_mfcc);
    if (argc < 2) return fail("give --ckpt PATH, --report RUN..., features or embeddings (see --help)", NULL, NULL);
    if (strcmp(argv[1], "features") == 0) return run_features(argc, argv);
    if (strcmp(argv[1], "embeddings") == 0) return run_embeddings(argc, argv);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_ARG() do { if (!v || !*v || (v[0] == '-' && v[1] == '-')) return fail("%s needs a value (see --help)", a, NULL); i++; } while (0)
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { fputs(usage, stdout); return 0; }
        if (strcmp(a, "--report") == 0) {
            if (i > 1) return fail("--report takes only run folders and --out, not %s", argv[1], NULL);
            return run_report(argc, argv, i + 1);
        }
        if (a[0] == '-' && seen_before(seen, &n_seen, a)) return fail("%s is given twice", a, NULL);
        if (strcmp(a, "--ckpt") == 0) { NEED_ARG(); ckpt = v; }
        else if (strcmp(a, "--data") == 0) { NEED_ARG(); data = v; }
        else if (strcmp(a, "--split") == 0) { NEED_ARG(); split_s = v; }
        else if (strcmp(a, "--retrieval") == 0) do_ret = 1;
        else if (strcmp(a, "--abx") == 0) do_abx = 1;
        else if (strcmp(a, "--losses") == 0) do_loss = 1;
        else if (strcmp(a, "--targets") == 0) { NEED_ARG(); targets = v; }
        else if (strcmp(a, "--abx-split") == 0) { NEED_ARG(); abx_split = v; }
        else if (strcmp(a, "--abx-mode") == 0) { NEED_ARG(); abx_mode = v; }
        else if (strcmp(a, "--export-zs") == 0) { NEED_ARG(); zs_dir = v; }
        else if (strcmp(a, "--zs-split") == 0) { NEED_ARG(); zs_split_s = v; }
        else if (strcmp(a, "--json") == 0) { NEED_ARG(); json = v; }
        else if (strcmp(a, "--batch") == 0) { NEED_ARG(); if (!parse_size(a, v, 1, 65536, &batch)) return 2; }
        else if (strcmp(a, "--max-batches") == 0) { NEED_ARG(); if (!parse_size(a, v, 0, 1000000000, &max_batches)) return 2; }
        else if (strcmp(a, "--seed") == 0) { NEED_ARG(); if (!parse_size(a, v, 0, SIZE_MAX, &seed)) return 2; }
        else if (strcmp(a, "--bootstrap") == 0) { NEED_ARG(); if (!parse_size(a, v, 10, 1000000, &n_boot)) return 2; }
        else if (strcmp(a, "--layer") == 0) {
            NEED_ARG();
            if (strcmp(v, "cnn") == 0 || strcmp(v, "CNN") == 0) layer = LAYER_CNN;
            else if (!parse_size(a, v, 0, SV_MAX_LAYERS, &layer)) return 2;
        }
        else if (strcmp(a, "--abx-set") == 0) { NEED_ARG(); abx_set = v; }
        else if (strcmp(a, "--set-name") == 0) { NEED_ARG(); set_name = v; }
        else if (strcmp(a, "--threads") == 0) {
            NEED_ARG();
            if (!parse_size(a, v, 1, 1024, &tmp_sz)) return 2;
            threads = (int)tmp_sz;
        } else if (a[0] != '-') return fail("unexpected argument '%s' (options start with --; see --help)", a, NULL);
        else return fail("unknown option %s (see --help)", a, NULL);
#undef NEED_ARG
    }
    if (!ckpt) return fail("--ckpt PATH is required (or --report RUN...; see --help)", NULL, NULL);
    split = split_of(split_s);
    if (split != SV_SPLIT_TEST && split != SV_SPLIT_VAL) return fail("--split must be test or val, not '%s'", split_s, NULL);
    zs_split = split_of(zs_split_s);
    if (zs_split != SV_SPLIT_OOD && zs_split != SV_SPLIT_TEST) return fail("--zs-split must be ood or test, not '%s'", zs_split_s, NULL);
    if (strcmp(abx_split, "test") && strcmp(abx_split, "ood") && strcmp(abx_split, "both"))
        return fail("--abx-split must be test, ood or both, not '%s'", abx_split, NULL);
    if (strcmp(abx_mode, "exact") && strcmp(abx_mode, "sampled"))
        return fail("--abx-mode must be exact or sampled, not '%s'", abx_mode, NULL);
    if (set_name && !abx_set) return fail("--set-name names an --abx-set", NULL, NULL);
    if (abx_set) {
        /* an external set: ABX (and --export-zs) on it alone, labelled, kept apart from final_eval.json */
        const char *b = strrchr(abx_set, '/'), *e;
        size_t k;
        if (do_ret || do_loss) return fail("--abx-set is an ABX set: --retrieval and --losses need the run's corpus", NULL, NULL);
        if (data || was_given(seen, n_seen, "--split") || was_given(seen, n_seen, "--abx-split") || was_given(seen, n_seen, "--zs-split"))
            return fail("--abx-set replaces --data, --split, --abx-split and --zs-split", NULL, NULL);
        if (!set_name) {   /* the file's name without folder and extension: dev-clean */
            b = b ? b + 1 : abx_set;
            e = strrchr(b, '.');
            snprintf(set_buf, sizeof set_buf, "%.*s", (int)(e && e > b ? (size_t)(e - b) : strlen(b)), b);
            set_name = set_buf;
        }
        if (!set_name[0] || strlen(set_name) > 64) return fail("--set-name: 1..64 characters, not '%s'", set_name, NULL);
        for (k = 0; set_name[k]; k++)
            if (!isalnum((unsigned char)set_name[k]) && !strchr("-_.", set_name[k]))
                return fail("--set-name '%s': letters, digits, '-', '_' and '.' only (it names a file)", set_name, NULL);
        if (!strcmp(set_name, "final") || !strcmp(set_name, "test") || !strcmp(set_name, "ood"))
            return fail("--set-name '%s' is the name of the run's own results: choose another", set_name, NULL);
        if (!zs_dir) do_abx = 1;
    }
    if (!do_ret && !do_abx && !do_loss && !zs_dir) do_ret = do_abx = 1;
    /* options that the chosen measurements would ignore are refused */
    if (was_given(seen, n_seen, "--max-batches") && !do_loss) return fail("--max-batches applies to --losses", NULL, NULL);
    if ((was_given(seen, n_seen, "--layer") || was_given(seen, n_seen, "--zs-split")) && !zs_dir)
        return fail("--layer and --zs-split apply to --export-zs", NULL, NULL);
    if ((was_given(seen, n_seen, "--abx-split") || was_given(seen, n_seen, "--abx-mode")) && !do_abx)
        return fail("--abx-split and --abx-mode apply to --abx", NULL, NULL);
    if (was_given(seen, n_seen, "--split") && !do_ret && !do_loss) return fail("--split applies to --retrieval and --losses", NULL, NULL);
    if (was_given(seen, n_seen, "--json") && !do_ret && !do_abx) return fail("--json applies to --retrieval and --abx", NULL, NULL);
    if (was_given(seen, n_seen, "--seed") && !do_loss && !do_abx && !do_ret) return fail("--seed applies to --retrieval, --losses and --abx", NULL, NULL);
    if (was_given(seen, n_seen, "--bootstrap") && !do_ret && !do_abx) return fail("--bootstrap applies to --retrieval and --abx", NULL, NULL);
    if (threads) sv_set_threads(threads);
    dir_of(ckpt, run_dir, sizeof run_dir);

    if (data && sv_data_spec_check(data) != SV_OK) return fail("--data: %s", sv_last_error(), NULL);
    /* the checkpoint first: "no such checkpoint" rather than a missing data.spec beside it */
    m = sv_checkpoint_load(ckpt, NULL, NULL);
    if (!m) return fail("%s", sv_last_error(), NULL);
    if (zs_dir && layer != (size_t)-1 && layer != LAYER_CNN && layer > m->cfg.n_shared + m->cfg.n_decoder) {
        fprintf(stderr, "eval: --layer must be cnn or 0..%zu for this model\n", m->cfg.n_shared + m->cfg.n_decoder);
        sv_model_free(m);
        return 2;
    }
    if (abx_set) {
        const char *jb = json ? strrchr(json, '/') : NULL;
        jb = jb ? jb + 1 : json;
        if (jb && strcmp(jb, "final_eval.json") == 0) {
            sv_model_free(m);
            return fail("--json %s: an external set's numbers never go into a final_eval.json (the run's own results)", json, NULL);
        }
        printf("model: %s (%s config, %zu parameters), threads %d\n", ckpt, m->cfg.name, sv_model_numel(m, SV_GROUPS_ALL), sv_get_threads());
        fprintf(stderr, "loading the ABX set %s (%s) ...\n", abx_set, set_name);
        if (sv_data_abx_set(&d, abx_set) != SV_OK) { rc = fail("--abx-set %s: %s", abx_set, sv_last_error()); goto done; }
        data = abx_set;
    }
    if (!data) {
        if (!read_run_spec(run_dir, spec, sizeof spec)) { sv_model_free(m); return 2; }
        data = spec;
    }
    if (sv_data_spec_check(data) != SV_OK) { sv_model_free(m); return fail("--data: %s", sv_last_error(), NULL); }
    if (m->cfg.precision == SV_BF16 && !sv_bf16_native()) {
        printf("note: the model trained in bf16, which needs AVX512-BF16; this build (SIMD %s) evaluates in fp32\n", sv_simd_name());
        m->cfg.precision = SV_FP32;
    }
    if (!abx_set) {
        printf("model: %s (%s config, %zu parameters), threads %d\n", ckpt, m->cfg.name, sv_model_numel(m, SV_GROUPS_ALL), sv_get_threads());
        fprintf(stderr, "loading data %s ...\n", data);
        if (sv_data_from_spec(&d, data) != SV_OK) { rc = fail("data %s: %s", data, sv_last_error()); goto done; }
    }
    if (!targets && m->cfg.ssl != SV_SSL_W2V2) {   /* the run's own, from its log's meta line */
        static char tg[1024];
        char p[1100], line[4096];
        FILE *lf;
        snprintf(p, sizeof p, "%s/log.jsonl", run_dir);
        if ((lf = fopen(p, "r"))) {
            if (fgets(line, sizeof line, lf) && sv_json_string(line, "targets", tg, sizeof tg) == 1) targets = tg;
            fclose(lf);
        }
    }
    if (targets) {
        static sv_km_targets kt;
        if (sv_km_targets_read(targets, &d, &kt) != SV_OK) { rc = fail("%s", sv_last_error(), NULL); goto done; }
        d.targets = &kt;
    }
    c = sv_ctx_new(0, 1);
    if (!c) { rc = fail("out of memory", NULL, NULL); goto done; }
    sv_ctx_set_progress(c, progress, NULL);

    if (do_ret) {
        double ch[3][2];
        static const size_t ks[3] = {1, 5, 10};
        size_t k;
        size_t *ri = NULL, *rs = NULL, ni = 0, nc = 0;
        double ci_s[3][2], ci_i[3][2];
        if (sv_eval_retrieval_ranks(m, c, &d, split, batch, &rec, &ri, &ni, &rs, &nc) != SV_OK) { rc = fail("retrieval: %s", sv_last_error(), NULL); goto done; }
        have_rec = 1;
        if (!boot_recall(rs, nc, n_boot, (uint64_t)seed, ci_s) || !boot_recall(ri, ni, n_boot, (uint64_t)seed + 1, ci_i)) {
            sv_io_free(ri); sv_io_free(rs);
            rc = fail("out of memory (bootstrap)", NULL, NULL);
            goto done;
        }
        sv_io_free(ri); sv_io_free(rs);
        for (k = 0; k < 3; k++) {
            rec_ci[k][0] = ci_s[k][0]; rec_ci[k][1] = ci_s[k][1];
            rec_ci[3 + k][0] = ci_i[k][0]; rec_ci[3 + k][1] = ci_i[k][1];
        }
        for (k = 0; k < 3; k++) sv_recall_chance(rec.n_images_scored, rec.n_captions, ks[k], &ch[k][0], &ch[k][1]);
        printf("\nretrieval on %s: %zu images, %zu captions (recall %%)\n", sv_split_name(split), rec.n_images_scored, rec.n_captions);
        printf("  %-8s %8s %8s %8s\n", "", "R@1", "R@5", "R@10");
        printf("  %-8s %8.2f %8.2f %8.2f   95%% bootstrap over captions: R@10 %.2f..%.2f\n", "S->I", rec.s2i_r1, rec.s2i_r5,
               rec.s2i_r10, rec_ci[2][0], rec_ci[2][1]);
        printf("  %-8s %8.2f %8.2f %8.2f   95%% bootstrap over images: R@10 %.2f..%.2f\n", "I->S", rec.i2s_r1, rec.i2s_r5,
               rec.i2s_r10, rec_ci[5][0], rec_ci[5][1]);
        printf("  %-8s %8.2f %8.2f %8.2f   (k / images)\n", "chance", ch[0][0], ch[1][0], ch[2][0]);
        printf("  %-8s %8.2f %8.2f %8.2f   (I->S: any own caption among k random)\n", "chance", ch[0][1], ch[1][1], ch[2][1]);
    }
    if (do_loss) {
        sv_stats st;
        if (sv_eval_losses(m, c, &d, split, batch, max_batches, (uint64_t)seed, &st) != SV_OK) { rc = fail("losses: %s", sv_last_error(), NULL); goto done; }
        printf("\nheld-out losses on %s: loss_AV %.4f, loss_AUD %.4f (contrastive %.4f, diversity %.4f), accuracy %.3f, "
               "code perplexity %.1f, prob perplexity %.1f, %zu masked frames\n", sv_split_name(split), st.loss_av, st.loss_aud,
               st.contrastive, st.diversity, st.accuracy, st.code_ppl, st.prob_ppl, st.n_masked);
        if (m->cfg.ssl != SV_SSL_W2V2)
            printf("  MT4SSL: offline target CE %.4f (accuracy %.3f), online target loss %.4f, target std %.3f, prediction std %.3f\n",
                   st.mt4_offline, st.mt4_acc, st.mt4_online, st.target_var, st.pred_var);
    }
    if (do_abx) {
        int s;
        sv_abx_opts o = sv_abx_default_opts();
        o.sample = strcmp(abx_mode, "sampled") == 0;
        o.seed = (uint64_t)seed;
        o.bootstrap = n_boot;
        for (s = 0; s < 2; s++) {
            int sp = s ? SV_SPLIT_OOD : SV_SPLIT_TEST;
            const char *nm = abx_set ? set_name : s ? "ood" : "test";
            if (abx_set ? s == 0 : strcmp(abx_split, "both") != 0 && strcmp(abx_split, nm) != 0) continue;
            if (!d.has_items[sp] || d.items[sp].n_items == 0) {
                if (strcmp(abx_split, "both") == 0) { fprintf(stderr, "eval: no %s.item tokens: skipping ABX on %s\n", nm, nm); continue; }
                rc = fail("no ABX items for the %s split of this data", nm, NULL);
                goto done;
            }
            fprintf(stderr, "ABX on %s: %zu tokens in %zu files, %.0f MB of features\n", nm, d.items[sp].n_items,
                    d.items[sp].n_files, (double)sv_eval_abx_bytes(m, &d, sp) / 1e6);
            if (sv_eval_abx(m, c, &d, sp, &o, abx[s], &n_abx[s]) != SV_OK) { rc = fail("abx: %s", sv_last_error(), NULL); goto done; }
            {   /* no token or no cell left: every number would be NaN, which is no result */
                size_t l, finite = 0;
                for (l = 0; l < n_abx[s]; l++) finite += isfinite(abx[s][l].r.within) || isfinite(abx[s][l].r.across);
                if (n_abx[s] == 0 || abx[s][0].r.n_tokens == 0 || finite == 0) {
                    fprintf(stderr, "eval: ABX on %s: %zu of %zu tokens usable, no (A, B, X) triple could be formed: no result\n", nm,
                            n_abx[s] ? abx[s][0].r.n_tokens : 0, d.items[sp].n_items);
                    rc = 1;
                    goto done;
                }
            }
            print_abx(nm, abx[s], n_abx[s]);
            o.bootstrap = 0;   /* the reference row: its point estimate only */
            if (sv_eval_abx_mfcc(&d, sp, NULL, &o, &abx_mfcc[s]) != SV_OK) { rc = fail("abx of MFCCs: %s", sv_last_error(), NULL); goto done; }
            printf("  reference, MFCC (39 dims, HuBERT's first-iteration features): within %.2f, across %.2f\n",
                   abx_mfcc[s].r.within, abx_mfcc[s].r.across);
            o.bootstrap = n_boot;
        }
    }
    if (zs_dir) {
        size_t L = m->cfg.n_shared + m->cfg.n_decoder;
        if (layer == (size_t)-1) layer = m->cfg.n_shared;
        if (layer > L && layer != LAYER_CNN) { fprintf(stderr, "eval: --layer must be cnn or 0..%zu for this model\n", L); rc = 2; goto done; }
        if (abx_set) zs_split = SV_SPLIT_OOD;
        if (!export_zerospeech(m, c, &d, zs_split, layer, zs_dir, set_name)) { rc = 2; goto done; }
        if (layer == LAYER_CNN) printf("\nwrote ZeroSpeech 2021 features of the CNN output to %s", zs_dir);
        else printf("\nwrote ZeroSpeech 2021 features of layer %zu to %s", layer, zs_dir);
        printf(" (meta.yaml, phonetic/%s/*.txt)\n", set_name ? set_name : zs_split == SV_SPLIT_OOD ? "dev-clean" : sv_split_name(zs_split));
    }
    if (abx_set && n_abx[1]) {   /* RUN/eval_<set>.json: never the run's final_eval.json */
        if (!json) { snprintf(json_buf, sizeof json_buf, "%s/eval_%s.json", run_dir, set_name); json = json_buf; }
        if (write_set_json(json, ckpt, abx_set, set_name, abx[1], n_abx[1], &abx_mfcc[1]) != SV_OK) { rc = fail("%s", sv_last_error(), NULL); goto done; }
        printf("\nwrote %s\n", json);
    } else if (have_rec || n_abx[0] || n_abx[1]) {
        if (!json) { snprintf(json_buf, sizeof json_buf, "%s/final_eval.json", run_dir); json = json_buf; }
        if (write_final_json(json, ckpt, data, split, have_rec ? &rec : NULL, have_rec ? (const double (*)[2])rec_ci : NULL, n_boot,
                             n_abx[0] ? abx[0] : NULL, n_abx[0],
                             n_abx[1] ? abx[1] : NULL, n_abx[1], abx_mfcc) != SV_OK) { rc = fail("%s", sv_last_error(), NULL); goto done; }
        printf("\nwrote %s\n", json);
    }
done:
    sv_ctx_free(c);
    sv_model_free(m);
    sv_data_free(&d);
    return rc;
}
