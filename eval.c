/* eval.c - evaluate a trained checkpoint (retrieval recall@k, ABX per layer, held-out losses,
   ZeroSpeech 2021 feature export) and build the study's report over run folders.
   Every algorithm lives in ssl_vgs.h (section 11.5); this driver parses options, prints, and
   calls the library. Run `./eval --help`. */
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
    "  --max-batches N      batches for --losses (default 0 = all)\n"
    "  --seed N             masking seed of --losses and ABX sampling seed (default 0)\n"
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

static int parse_size(const char *opt, const char *s, size_t *out)
{
    char *end;
    unsigned long long v;
    if (!s || !*s || *s == '-') return 0;
    v = strtoull(s, &end, 10);
    if (*end) { fprintf(stderr, "eval: %s expects a non-negative integer, got '%s'\n", opt, s); return 0; }
    *out = (size_t)v;
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

static int run_report(int argc, char **argv, int first)
{
    const char *runs[256], *out = NULL;
    char outbuf[1024];
    size_t n = 0;
    int i, rc;
    for (i = first; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0) {
            if (i + 1 >= argc) return fail("--out needs a folder", NULL, NULL);
            out = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] == '-') return fail("unknown option for --report: %s", argv[i], NULL);
        else if (n < 256) {
            char lp[1100];
            FILE *f;
            snprintf(lp, sizeof lp, "%s/log.jsonl", argv[i]);
            f = fopen(lp, "r");
            if (!f) { fprintf(stderr, "eval: skipping %s: no log.jsonl in it\n", argv[i]); continue; }
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
    rc = sv_report(runs, n, out, stdout);
    if (rc != SV_OK) return fail("report: %s", sv_last_error(), NULL);
    printf("\nwrote %s/results.md and figures %s/{loss_av,loss_aud,recall,abx_best,abx_layers,abx_layers_across}.svg\n", out, out);
    return 0;
}

int main(int argc, char **argv)
{
    const char *ckpt = NULL, *data = NULL, *abx_split = "both", *abx_mode = "sampled", *zs_dir = NULL,
               *json = NULL, *split_s = "test", *zs_split_s = "ood";
    int do_ret = 0, do_abx = 0, do_loss = 0, i, split, zs_split, rc = 0, threads = 0;
    size_t batch = 16, max_batches = 0, layer = (size_t)-1, seed = 0, tmp_sz;
    char run_dir[1024], spec[1024], json_buf[1100];
    sv_model *m = NULL;
    sv_ctx *c = NULL;
    sv_data d;
    sv_recall rec;
    sv_abx_layer_result abx[2][SV_ABX_MAX_LAYERS];
    size_t n_abx[2] = {0, 0};
    int have_rec = 0;
    memset(&d, 0, sizeof d);
    if (argc < 2) { fputs(usage, stderr); return 2; }
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_ARG() do { if (!v) return fail("%s needs a value", a, NULL); i++; } while (0)
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { fputs(usage, stdout); return 0; }
        else if (strcmp(a, "--report") == 0) return run_report(argc, argv, i + 1);
        else if (strcmp(a, "--ckpt") == 0) { NEED_ARG(); ckpt = v; }
        else if (strcmp(a, "--data") == 0) { NEED_ARG(); data = v; }
        else if (strcmp(a, "--split") == 0) { NEED_ARG(); split_s = v; }
        else if (strcmp(a, "--retrieval") == 0) do_ret = 1;
        else if (strcmp(a, "--abx") == 0) do_abx = 1;
        else if (strcmp(a, "--losses") == 0) do_loss = 1;
        else if (strcmp(a, "--abx-split") == 0) { NEED_ARG(); abx_split = v; }
        else if (strcmp(a, "--abx-mode") == 0) { NEED_ARG(); abx_mode = v; }
        else if (strcmp(a, "--export-zs") == 0) { NEED_ARG(); zs_dir = v; }
        else if (strcmp(a, "--zs-split") == 0) { NEED_ARG(); zs_split_s = v; }
        else if (strcmp(a, "--json") == 0) { NEED_ARG(); json = v; }
        else if (strcmp(a, "--batch") == 0) { NEED_ARG(); if (!parse_size(a, v, &batch) || batch == 0) return fail("--batch must be >= 1", NULL, NULL); }
        else if (strcmp(a, "--max-batches") == 0) { NEED_ARG(); if (!parse_size(a, v, &max_batches)) return 2; }
        else if (strcmp(a, "--seed") == 0) { NEED_ARG(); if (!parse_size(a, v, &seed)) return 2; }
        else if (strcmp(a, "--layer") == 0) { NEED_ARG(); if (!parse_size(a, v, &layer)) return 2; }
        else if (strcmp(a, "--threads") == 0) {
            NEED_ARG();
            if (!parse_size(a, v, &tmp_sz) || tmp_sz == 0 || tmp_sz > 1024) return fail("--threads must be 1..1024", NULL, NULL);
            threads = (int)tmp_sz;
        } else return fail("unknown option %s (see --help)", a, NULL);
#undef NEED_ARG
    }
    if (!ckpt) return fail("--ckpt PATH is required (or --report RUN...; see --help)", NULL, NULL);
    split = split_of(split_s);
    if (split != SV_SPLIT_TEST && split != SV_SPLIT_VAL) return fail("--split must be test or val, not '%s'", split_s, NULL);
    zs_split = split_of(zs_split_s);
    if (zs_split < 0) return fail("--zs-split must be ood, test, val or train, not '%s'", zs_split_s, NULL);
    if (strcmp(abx_split, "test") && strcmp(abx_split, "ood") && strcmp(abx_split, "both"))
        return fail("--abx-split must be test, ood or both, not '%s'", abx_split, NULL);
    if (strcmp(abx_mode, "exact") && strcmp(abx_mode, "sampled"))
        return fail("--abx-mode must be exact or sampled, not '%s'", abx_mode, NULL);
    if (!do_ret && !do_abx && !do_loss && !zs_dir) do_ret = do_abx = 1;
    if (threads) sv_set_threads(threads);
    dir_of(ckpt, run_dir, sizeof run_dir);

    if (!data) {   /* the run folder's data.spec: one line */
        char p[1100];
        FILE *f;
        snprintf(p, sizeof p, "%s/data.spec", run_dir);
        f = fopen(p, "r");
        if (!f) return fail("no --data given and %s cannot be read", p, NULL);
        if (!fgets(spec, sizeof spec, f)) spec[0] = 0;
        fclose(f);
        spec[strcspn(spec, "\r\n")] = 0;
        if (!spec[0]) return fail("%s is empty: give --data", p, NULL);
        data = spec;
    }
    m = sv_checkpoint_load(ckpt, NULL, NULL);
    if (!m) return fail("cannot load %s: %s", ckpt, sv_last_error());
    if (m->cfg.precision == SV_BF16 && !sv_bf16_native()) {
        printf("note: the model trained in bf16, which needs AVX512-BF16; this build (SIMD %s) evaluates in fp32\n", sv_simd_name());
        m->cfg.precision = SV_FP32;
    }
    printf("model: %s (%s config, %zu parameters), threads %d\n", ckpt, m->cfg.name, sv_model_numel(m, SV_GROUPS_ALL), sv_get_threads());
    fprintf(stderr, "loading data %s ...\n", data);
    if (sv_data_from_spec(&d, data) != SV_OK) { rc = fail("data %s: %s", data, sv_last_error()); goto done; }
    c = sv_ctx_new(0, 1);
    if (!c) { rc = fail("out of memory", NULL, NULL); goto done; }
    sv_eval_set_progress(progress, NULL);

    if (do_ret) {
        double ch[3][2];
        static const size_t ks[3] = {1, 5, 10};
        size_t k;
        if (sv_eval_retrieval(m, c, &d, split, batch, &rec) != SV_OK) { rc = fail("retrieval: %s", sv_last_error(), NULL); goto done; }
        have_rec = 1;
        for (k = 0; k < 3; k++) sv_recall_chance(rec.n_images_scored, rec.n_captions, ks[k], &ch[k][0], &ch[k][1]);
        printf("\nretrieval on %s: %zu images, %zu captions (recall %%)\n", sv_split_name(split), rec.n_images_scored, rec.n_captions);
        printf("  %-8s %8s %8s %8s\n", "", "R@1", "R@5", "R@10");
        printf("  %-8s %8.2f %8.2f %8.2f\n", "S->I", rec.s2i_r1, rec.s2i_r5, rec.s2i_r10);
        printf("  %-8s %8.2f %8.2f %8.2f\n", "I->S", rec.i2s_r1, rec.i2s_r5, rec.i2s_r10);
        printf("  %-8s %8.2f %8.2f %8.2f   (k / images)\n", "chance", ch[0][0], ch[1][0], ch[2][0]);
        printf("  %-8s %8.2f %8.2f %8.2f   (I->S: any own caption among k random)\n", "chance", ch[0][1], ch[1][1], ch[2][1]);
    }
    if (do_loss) {
        sv_stats st;
        if (sv_eval_losses(m, c, &d, split, batch, max_batches, (uint64_t)seed, &st) != SV_OK) { rc = fail("losses: %s", sv_last_error(), NULL); goto done; }
        printf("\nheld-out losses on %s: loss_AV %.4f, loss_AUD %.4f (contrastive %.4f, diversity %.4f), accuracy %.3f, "
               "code perplexity %.1f, prob perplexity %.1f, %zu masked frames\n", sv_split_name(split), st.loss_av, st.loss_aud,
               st.contrastive, st.diversity, st.accuracy, st.code_ppl, st.prob_ppl, st.n_masked);
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
            print_abx(nm, abx[s], n_abx[s]);
        }
    }
    if (zs_dir) {
        size_t L = m->cfg.n_shared + m->cfg.n_decoder;
        if (layer == (size_t)-1) layer = m->cfg.n_shared;
        if (layer > L) { fprintf(stderr, "eval: --layer must be 0..%zu for this model\n", L); rc = 2; goto done; }
        if (sv_export_zerospeech(m, c, &d, zs_split, layer, zs_dir) != SV_OK) { rc = fail("export: %s", sv_last_error(), NULL); goto done; }
        printf("\nwrote ZeroSpeech 2021 features of layer %zu to %s (meta.yaml, phonetic/%s/*.txt)\n", layer, zs_dir,
               zs_split == SV_SPLIT_OOD ? "dev-clean" : sv_split_name(zs_split));
    }
    if (have_rec || n_abx[0] || n_abx[1]) {
        if (!json) { snprintf(json_buf, sizeof json_buf, "%s/final_eval.json", run_dir); json = json_buf; }
        if (sv_eval_write_json(json, ckpt, data, split, have_rec ? &rec : NULL, n_abx[0] ? abx[0] : NULL, n_abx[0],
                               n_abx[1] ? abx[1] : NULL, n_abx[1]) != SV_OK) { rc = fail("%s", sv_last_error(), NULL); goto done; }
        printf("\nwrote %s\n", json);
    }
done:
    sv_ctx_free(c);
    sv_model_free(m);
    sv_data_free(&d);
    return rc;
}
