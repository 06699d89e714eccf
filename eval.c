/* eval.c - evaluate a trained checkpoint (retrieval recall@k, ABX per layer, held-out losses,
   ZeroSpeech 2021 feature export) and build the study's report over run folders.
   The measurements live in ssl_vgs.h (section 11.5); this driver parses options, prints, and
   writes the results files, the ZeroSpeech submission layout and the study's report. Run `./eval --help`. */
#define SSL_VGS_IMPLEMENTATION
#include "ssl_vgs.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static const char *usage =
    "usage:\n"
    "  ./eval --ckpt RUN/final.ckpt [options]     evaluate one checkpoint\n"
    "  ./eval --report RUN... [--out DIR]         tables + figures over run folders\n"
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
    "  --bootstrap N        resamples of the test items for the recall intervals, 10..1000000\n"
    "                       (default 1000; percentile 95 % interval, written to final_eval.json)\n"
    "  --batch N            utterances per forward pass (default 16)\n"
    "  --threads N          OpenMP threads (default: all)\n"
    "  --export-zs DIR      write a ZeroSpeech 2021 phonetic submission of --layer to DIR\n"
    "  --layer K            layer to export: 0 (transformer input) .. L (default: n_shared, the\n"
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
        }
    }
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

static int export_zerospeech(sv_model *m, sv_ctx *c, const sv_data *d, int split, size_t layer, const char *dir)
{
    const char *subset = split == SV_SPLIT_OOD ? "dev-clean" : sv_split_name(split);
    size_t i, t, k, hop = 1, L = m->cfg.n_shared + m->cfg.n_decoder;
    char phon[1100], sub[1200], p[1400], desc[512], *tmp;
    FILE *f;
    if (split < 0 || split >= SV_SPLIT_COUNT) { fprintf(stderr, "eval: bad split %d\n", split); return 0; }
    if (layer > L) { fprintf(stderr, "eval: layer %zu: the model has layers 0..%zu\n", layer, L); return 0; }
    if (d->n[split] == 0) { fprintf(stderr, "eval: split %s is empty\n", sv_split_name(split)); return 0; }
    for (i = 0; i < m->cfg.n_conv; i++) hop *= m->cfg.conv_stride[i];
    if (sv_make_dir(dir) != SV_OK || !path_join(phon, sizeof phon, dir, "phonetic") || sv_make_dir(phon) != SV_OK ||
        !path_join(sub, sizeof sub, phon, subset) || sv_make_dir(sub) != SV_OK || !path_join(p, sizeof p, dir, "meta.yaml")) {
        if (sv_last_status()) fprintf(stderr, "eval: %s\n", sv_last_error());
        return 0;
    }
    /* meta.yaml: exactly the keys zerospeech2021/meta.py validates (gpu_budget a float) */
    if (!(f = sv_file_create(p, &tmp))) { fprintf(stderr, "eval: %s\n", sv_last_error()); return 0; }
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
        float *x = NULL;
        size_t T = 0, D = 0;
        char name[400];
        int ok;
        if (sv_extract_features(m, c, d->audio[split][i], d->len[split][i], layer, &x, &T, &D) != SV_OK) {
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
            for (k = 0; k < D; k++) fprintf(f, k ? " %.7g" : "%.7g", (double)x[t * D + k]);
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
       EV_ABXW, EV_ABXA, EV_MOFF, EV_MON, EV_N };
typedef struct ev_rec { double v[EV_N]; } ev_rec;

typedef struct run_log {
    const char *dir;
    char name[64], stage_a[32], stage_b[32];
    char ssl[16];                   /* the SSL objective: "" (wav2vec 2.0), "mt4ssl", "w2v2+mt4ssl" */
    double switch_step, steps;
    ev_rec *ev; size_t n_ev, cap_ev;
    char *final_line;               /* final_eval.json, or NULL */
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
    if (isfinite(e.v[EV_STEP])) r->ev[r->n_ev++] = e;
    return 1;
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
            if (!load_eval_line(r, line)) { sv_io_free(buf); return 0; }
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

/* One figure over training steps, one series per run; field < 0: mean R@10 of both directions. */
static int figure_over_steps(const char *dir, const char *file, const char *title, const char *ylabel, int log_y,
                             const run_log *runs, const size_t *ord, size_t n, int field, double *xs, double *ys,
                             const double *vl, size_t nvl)
{
    sv_series *s = (sv_series *)calloc(n ? n : 1, sizeof(sv_series));
    char (*names)[80] = (char (*)[80])calloc(n ? n : 1, 80);
    sv_plot p;
    size_t k, i, off = 0;
    int ok;
    if (!s || !names) { free(s); free(names); fprintf(stderr, "eval: out of memory\n"); return 0; }
    for (k = 0; k < n; k++) {
        const run_log *r = &runs[ord[k]];
        run_display(r, names[k], 80);
        for (i = 0; i < r->n_ev; i++) {
            const ev_rec *e = &r->ev[i];
            xs[off + i] = e->v[EV_STEP];
            ys[off + i] = field < 0 ? 0.5 * (e->v[EV_R10S] + e->v[EV_R10I]) : e->v[field];
        }
        s[k].name = names[k];
        s[k].x = xs + off;
        s[k].y = ys + off;
        s[k].n = r->n_ev;
        off += r->n_ev;
    }
    memset(&p, 0, sizeof p);
    p.title = title;
    p.xlabel = "training step";
    p.ylabel = ylabel;
    p.log_y = log_y;
    p.vlines = vl;
    p.n_vlines = nvl;
    p.vline_label = nvl ? "switch" : NULL;
    p.width = 900;
    p.height = 500;
    ok = write_plot(dir, file, &p, s, n);
    free(s); free(names);
    return ok;
}

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
    p.xlabel = "layer (-1 = CNN output, 0 = transformer input, k = transformer layer k)";
    p.integer_x = 1;
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
               "- recall.svg: mean R@10 over training\n- abx_best.svg: best-layer ABX within over training\n"
               "- abx_layers.svg, abx_layers_across.svg: final ABX per layer\n");
    for (k = 0; k < n_runs && !isfinite(last_value(&runs[ord[k]], EV_MOFF)) && !isfinite(last_value(&runs[ord[k]], EV_MON)); k++) {}
    if (k < n_runs)
        fprintf(f, "- mt4ssl_offline.svg, mt4ssl_online.svg: MT4SSL runs' held-out loss of each target (log scale); "
                   "their \"val accuracy\" above is the offline target's when the run has no contrastive task\n");
}

/* The report over n_runs run folders into out_dir; the forgetting summary also to stdout. */
static int write_report(const char *const *dirs, size_t n_runs, const char *out_dir)
{
    run_log *runs = (run_log *)calloc(n_runs, sizeof(run_log));
    size_t *ord = (size_t *)calloc(n_runs, sizeof(size_t)), i, k, total = 0, nvl = 0;
    double *xs = NULL, *ys = NULL, vl[16];
    char path[1100], *tmp;
    FILE *f;
    int ok = 0;
    if (!runs || !ord) { fprintf(stderr, "eval: out of memory\n"); goto done; }
    for (i = 0; i < n_runs; i++) {
        if (!load_run(dirs[i], &runs[i])) goto done;
        total += runs[i].n_ev;
    }
    /* the paper's order, other runs after in the given order (stable insertion sort) */
    for (i = 0; i < n_runs; i++) {
        size_t j = i;
        ord[i] = i;
        while (j > 0 && runs[ord[j - 1]].order > runs[i].order) { ord[j] = ord[j - 1]; j--; }
        ord[j] = i;
    }
    /* switch markers: the distinct switch steps */
    for (i = 0; i < n_runs; i++) {
        double sw = runs[i].switch_step;
        if (!(sw > 0) || !runs[i].stage_b[0]) continue;
        for (k = 0; k < nvl && vl[k] != sw; k++) {}
        if (k == nvl && nvl < 16) vl[nvl++] = sw;
    }
    if (sv_make_dir(out_dir) != SV_OK) { fprintf(stderr, "eval: %s\n", sv_last_error()); goto done; }
    xs = (double *)calloc(total + 1, sizeof(double));
    ys = (double *)calloc(total + 1, sizeof(double));
    if (!xs || !ys) { fprintf(stderr, "eval: out of memory\n"); goto done; }
    if (!figure_over_steps(out_dir, "loss_av.svg", "Held-out loss_AV (val) during training", "loss_AV", 1,
                           runs, ord, n_runs, EV_VAV, xs, ys, vl, nvl) ||
        !figure_over_steps(out_dir, "loss_aud.svg", "Held-out loss_AUD (val) during training", "loss_AUD", 1,
                           runs, ord, n_runs, EV_VAUD, xs, ys, vl, nvl) ||
        !figure_over_steps(out_dir, "recall.svg", "Retrieval during training: mean R@10 of S->I and I->S", "R@10 (%)", 0,
                           runs, ord, n_runs, -1, xs, ys, vl, nvl) ||
        !figure_over_steps(out_dir, "abx_best.svg", "Best-layer ABX error within speaker (test split) during training",
                           "ABX within (%)", 0, runs, ord, n_runs, EV_ABXW, xs, ys, vl, nvl) ||
        !figure_layers(out_dir, "abx_layers.svg", "Final ABX within speaker per layer", 0, runs, ord, n_runs) ||
        !figure_layers(out_dir, "abx_layers_across.svg", "Final ABX across speakers per layer", 1, runs, ord, n_runs))
        goto done;
    for (i = 0; i < n_runs && !isfinite(last_value(&runs[i], EV_MOFF)) && !isfinite(last_value(&runs[i], EV_MON)); i++) {}
    if (i < n_runs &&   /* MT4SSL runs: each target's held-out loss */
        (!figure_over_steps(out_dir, "mt4ssl_offline.svg", "MT4SSL offline target (k-means classes): held-out cross-entropy per masked frame",
                            "offline CE", 1, runs, ord, n_runs, EV_MOFF, xs, ys, vl, nvl) ||
         !figure_over_steps(out_dir, "mt4ssl_online.svg", "MT4SSL online target (EMA teacher): held-out regression loss per masked frame",
                            "online loss", 1, runs, ord, n_runs, EV_MON, xs, ys, vl, nvl)))
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
    free(runs); free(ord); free(xs); free(ys);
    return ok;
}

static int run_report(int argc, char **argv, int first)
{
    const char *runs[256], *out = NULL;
    char outbuf[1024];
    size_t n = 0;
    int i;
    for (i = first; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0) {
            if (i + 1 >= argc || (argv[i + 1][0] == '-' && argv[i + 1][1] == '-')) return fail("--out needs a folder", NULL, NULL);
            if (out) return fail("--out is given twice", NULL, NULL);
            out = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] == '-') return fail("unknown option for --report: %s", argv[i], NULL);
        else if (n < 256) {
            char lp[1100];
            FILE *f;
            snprintf(lp, sizeof lp, "%s/log.jsonl", argv[i]);
            f = fopen(lp, "r");
            if (!f) return fail("%s is not a run folder (no log.jsonl in it)", argv[i], NULL);
            fclose(f);
            runs[n++] = argv[i];
        }
        else return fail("too many runs (at most 256)", NULL, NULL);
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

int main(int argc, char **argv)
{
    const char *targets = NULL;   /* MT4SSL offline targets (--losses of a model with an offline head) */
    const char *ckpt = NULL, *data = NULL, *abx_split = "both", *abx_mode = "sampled", *zs_dir = NULL,
               *json = NULL, *split_s = "test", *zs_split_s = "ood", *seen[64];
    int do_ret = 0, do_abx = 0, do_loss = 0, i, split, zs_split, rc = 0, threads = 0;
    size_t batch = 16, max_batches = 0, layer = (size_t)-1, seed = 0, tmp_sz, n_seen = 0;
    char run_dir[1024], spec[4096], json_buf[1100];
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
    memset(&d, 0, sizeof d);
    memset(abx_mfcc, 0, sizeof abx_mfcc);
    if (argc < 2) return fail("give --ckpt PATH or --report RUN... (see --help)", NULL, NULL);
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
        else if (strcmp(a, "--layer") == 0) { NEED_ARG(); if (!parse_size(a, v, 0, SV_MAX_LAYERS, &layer)) return 2; }
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
    if (was_given(seen, n_seen, "--bootstrap") && !do_ret) return fail("--bootstrap applies to --retrieval", NULL, NULL);
    if (threads) sv_set_threads(threads);
    dir_of(ckpt, run_dir, sizeof run_dir);

    if (data && sv_data_spec_check(data) != SV_OK) return fail("--data: %s", sv_last_error(), NULL);
    /* the checkpoint first: "no such checkpoint" rather than a missing data.spec beside it */
    m = sv_checkpoint_load(ckpt, NULL, NULL);
    if (!m) return fail("%s", sv_last_error(), NULL);
    if (zs_dir && layer != (size_t)-1 && layer > m->cfg.n_shared + m->cfg.n_decoder) {
        fprintf(stderr, "eval: --layer must be 0..%zu for this model\n", m->cfg.n_shared + m->cfg.n_decoder);
        sv_model_free(m);
        return 2;
    }
    if (!data) {   /* the run folder's data.spec: one line */
        char p[1100];
        FILE *f;
        snprintf(p, sizeof p, "%s/data.spec", run_dir);
        f = fopen(p, "r");
        if (!f) { sv_model_free(m); return fail("no --data given and %s cannot be read", p, NULL); }
        if (!fgets(spec, sizeof spec, f)) spec[0] = 0;
        fclose(f);
        spec[strcspn(spec, "\r\n")] = 0;
        if (!spec[0]) { sv_model_free(m); return fail("%s is empty: give --data", p, NULL); }
        data = spec;
    }
    if (sv_data_spec_check(data) != SV_OK) { sv_model_free(m); return fail("--data: %s", sv_last_error(), NULL); }
    printf("model: %s (%s config, %zu parameters), threads %d\n", ckpt, m->cfg.name, sv_model_numel(m, SV_GROUPS_ALL), sv_get_threads());
    fprintf(stderr, "loading data %s ...\n", data);
    if (sv_data_from_spec(&d, data) != SV_OK) { rc = fail("data %s: %s", data, sv_last_error()); goto done; }
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
        for (s = 0; s < 2; s++) {
            int sp = s ? SV_SPLIT_OOD : SV_SPLIT_TEST;
            const char *nm = s ? "ood" : "test";
            if (strcmp(abx_split, "both") != 0 && strcmp(abx_split, nm) != 0) continue;
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
            if (sv_eval_abx_mfcc(&d, sp, NULL, &o, &abx_mfcc[s]) != SV_OK) { rc = fail("abx of MFCCs: %s", sv_last_error(), NULL); goto done; }
            printf("  reference, MFCC (39 dims, HuBERT's first-iteration features): within %.2f, across %.2f\n",
                   abx_mfcc[s].r.within, abx_mfcc[s].r.across);
        }
    }
    if (zs_dir) {
        size_t L = m->cfg.n_shared + m->cfg.n_decoder;
        if (layer == (size_t)-1) layer = m->cfg.n_shared;
        if (layer > L) { fprintf(stderr, "eval: --layer must be 0..%zu for this model\n", L); rc = 2; goto done; }
        if (!export_zerospeech(m, c, &d, zs_split, layer, zs_dir)) { rc = 2; goto done; }
        printf("\nwrote ZeroSpeech 2021 features of layer %zu to %s (meta.yaml, phonetic/%s/*.txt)\n", layer, zs_dir,
               zs_split == SV_SPLIT_OOD ? "dev-clean" : sv_split_name(zs_split));
    }
    if (have_rec || n_abx[0] || n_abx[1]) {
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
