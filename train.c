/* train.c - the training scenarios of the study (Khorrami et al., EUSIPCO 2023):
   base models W2V2 (alpha 0), VGS (alpha 1), VGS+ (alpha 0.5, both losses at once) and the
   schedules (A, B): train A, then continue with B, the optimizer reset at the switch.
   The algorithms live in ssl_vgs.h; this file parses arguments, prints progress and logs. */
#define _POSIX_C_SOURCE 200809L /* isatty, mkdir, getrusage */
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/resource.h>
#define SSL_VGS_IMPLEMENTATION
#include "ssl_vgs.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- options */
typedef struct opts {
    const char *scenario, *config, *out, *data, *resume, *write_builtin, *set[32], *schedules, *audio_only;
    size_t n_set;
    size_t steps, switch_step, batch, eval_every, ckpt_every, log_every, eval_batches;
    double crop_s, lr, warmup, alpha_plus, wd, clip;
    int threads, all, bertadam, bench, quiet, eval_abx;
    size_t stop_after;          /* tests: stop (with a checkpoint) after this many updates */
    uint64_t seed;
    /* --write-builtin sizes */
    size_t images, captions, val_images, test_images; /* --write-builtin sizes; 0 = images / 10, / 5 */
    const char *regions;                   /* --write-builtin region features: detector | pixels */
    /* MT4SSL: SSL objective and offline targets (--ssl, --targets, --kmeans ...) */
    const char *ssl, *targets, *kmeans, *kmeans_from;
    size_t kmeans_k, kmeans_layer, kmeans_iter;
    int kmeans_layer_set;
} opts;

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
        "  --switch K         updates in stage A of a schedule (default: the paper's 20:70, 2/7 of N)\n"
        "  --alpha A          alpha of vgs+ (default 0.5)\n"
        "model and data:\n"
        "  --config C         tiny | small | base (default tiny)\n"
        "  --set key=value    override one config field (repeatable), e.g. --set n_negatives=50\n"
        "  --data D           builtin | builtin:images=400,captions=2,seed=1,... | a data_prep.sh\n"
        "                     folder (default builtin)\n"
        "  --audio-only M     a speech-only manifest (data_prep.sh librispeech): each update whose stage\n"
        "                     has an SSL loss adds (1 - alpha) * loss_AUD of a batch from it, as\n"
        "                     FaST-VGS+ mixed in LibriSpeech (default: none)\n"
        "  --crop SECONDS     random crop of training utterances (default 8)\n"
        "  --batch B          utterance/image pairs per batch (default 8)\n"
        "optimizer (the paper: Adam, lr 1e-4, 10%% warm-up then linear decay):\n"
        "  --lr LR            peak learning rate (default 1e-4)\n"
        "  --warmup F         warm-up fraction of each stage (default 0.1)\n"
        "  --wd W             decoupled weight decay (default 0.01)\n"
        "  --clip C           gradient-norm clipping (default 1.0)\n"
        "  --bertadam         the reference trainer's BertAdam (no bias correction)\n"
        "run:\n"
        "  --out DIR          logs and checkpoints (default runs/<scenario>)\n"
        "  --eval-every N     held-out losses and recall, both tasks, every N updates (default steps/10)\n"
        "  --eval-batches N   validation batches per evaluation (default 8)\n"
        "  --ckpt-every N     checkpoint every N updates (default 500; also at the switch and the end)\n"
        "  --log-every N      progress line every N updates when stdout is not a terminal (default 20)\n"
        "  --resume DIR       continue a run bit-exactly from DIR/last.ckpt\n"
        "  --threads N        OpenMP threads (default: all cores)\n"
        "  --seed S           seed of initialisation, batches, masks and dropout (default 1)\n"
        "  --stop-after N     stop after update N with a checkpoint, as if interrupted (for tests)\n"
        "  --quiet            no progress output\n"
        "other modes:\n"
        "  --write-builtin OUT [--images N] [--val-images V] [--test-images M] [--captions K]\n"
        "                [--seed S] [--regions detector|pixels]\n"
        "                     write the built-in corpus in the data_prep.sh layout: N images in\n"
        "                     all, V (default 10%%) for validation, M (default 20%%) for test, the\n"
        "                     rest for training;\n"
        "                     regions from the simulated object detector (default) or raw pixels\n"
        "  --kmeans DIR [--k K] [--kmeans-from CKPT [--kmeans-layer N]] [--kmeans-iter N] [--seed S]\n"
        "                     MT4SSL / HuBERT offline targets of the --data corpus into the folder DIR\n"
        "                     (e.g. inside the corpus folder): k-means (default K 100) of the train\n"
        "                     split's MFCCs, or (K 500) of layer N (default L/2) of a checkpoint, then\n"
        "                     one label per 20 ms frame of every split (fairseq .km files)\n"
        "  --bench            speed benchmark (make bench)\n"
        "  --bench-step       only the small joint step with its per-op profile (--threads N)\n"
        "  --help             this text\n");
}

/* The MT4SSL options: 0 = not one of them, 1 or 2 = arguments used, -1 = bad value (said why). */
static int mt4ssl_option(opts *o, const char *a, const char *v)
{
    char *end;
    if (strcmp(a, "--ssl") && strcmp(a, "--targets") && strcmp(a, "--kmeans") && strcmp(a, "--kmeans-from") &&
        strcmp(a, "--k") && strcmp(a, "--kmeans-layer") && strcmp(a, "--kmeans-iter"))
        return 0;
    if (!v) { fprintf(stderr, "train: %s needs a value (see --help)\n", a); return -1; }
    if (!strcmp(a, "--ssl")) {
        if (strcmp(v, "w2v2") && strcmp(v, "mt4ssl") && strcmp(v, "w2v2+mt4ssl")) {
            fprintf(stderr, "train: --ssl must be w2v2, mt4ssl or w2v2+mt4ssl, not '%s'\n", v);
            return -1;
        }
        o->ssl = v;
    } else if (!strcmp(a, "--targets")) o->targets = v;
    else if (!strcmp(a, "--kmeans")) o->kmeans = v;
    else if (!strcmp(a, "--kmeans-from")) o->kmeans_from = v;
    else {
        unsigned long long x;
        errno = 0;
        x = strtoull(v, &end, 10);
        if (end == v || *end || errno || v[0] == '-' || (x == 0 && strcmp(a, "--kmeans-layer"))) {
            fprintf(stderr, "train: %s wants a %s number, not '%s'\n", a, strcmp(a, "--kmeans-layer") ? "positive" : "non-negative", v);
            return -1;
        }
        if (!strcmp(a, "--k")) {
            if (x > 65536) { fprintf(stderr, "train: --k %llu: at most 65536 clusters\n", x); return -1; }
            o->kmeans_k = (size_t)x;
        } else if (!strcmp(a, "--kmeans-layer")) { o->kmeans_layer = (size_t)x; o->kmeans_layer_set = 1; }
        else o->kmeans_iter = (size_t)x;
    }
    return 2;
}

static int parse_args(int argc, char **argv, opts *o)
{
    int i, r;
    memset(o, 0, sizeof *o);
    o->scenario = "vgs+"; o->config = "tiny"; o->data = "builtin";
    o->steps = 2000; o->batch = 8; o->ckpt_every = 500; o->log_every = 20; o->eval_batches = 8;
    o->crop_s = 8; o->lr = 1e-4; o->warmup = 0.1; o->alpha_plus = 0.5; o->wd = 0.01; o->clip = 1.0;
    o->seed = 1; o->images = 0; o->captions = 0;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) { fprintf(stderr, "train: %s needs a value (see --help)\n", a); return -1; } i++; } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); exit(0); }
        else if (!strcmp(a, "--scenario")) { NEEDV(); o->scenario = v; }
        else if (!strcmp(a, "--all")) o->all = 1;
        else if (!strcmp(a, "--schedules")) { NEEDV(); o->schedules = v; }
        else if (!strcmp(a, "--steps")) { NEEDV(); o->steps = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--switch")) { NEEDV(); o->switch_step = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--alpha")) { NEEDV(); o->alpha_plus = atof(v); }
        else if (!strcmp(a, "--config")) { NEEDV(); o->config = v; }
        else if (!strcmp(a, "--set")) { NEEDV(); if (o->n_set < 32) o->set[o->n_set++] = v; }
        else if (!strcmp(a, "--data")) { NEEDV(); o->data = v; }
        else if (!strcmp(a, "--audio-only")) { NEEDV(); o->audio_only = v; }
        else if (!strcmp(a, "--crop")) { NEEDV(); o->crop_s = atof(v); }
        else if (!strcmp(a, "--batch")) { NEEDV(); o->batch = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--lr")) { NEEDV(); o->lr = atof(v); }
        else if (!strcmp(a, "--warmup")) { NEEDV(); o->warmup = atof(v); }
        else if (!strcmp(a, "--wd")) { NEEDV(); o->wd = atof(v); }
        else if (!strcmp(a, "--clip")) { NEEDV(); o->clip = atof(v); }
        else if (!strcmp(a, "--bertadam")) o->bertadam = 1;
        else if (!strcmp(a, "--out")) { NEEDV(); o->out = v; }
        else if (!strcmp(a, "--eval-every")) { NEEDV(); o->eval_every = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--eval-batches")) { NEEDV(); o->eval_batches = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--ckpt-every")) { NEEDV(); o->ckpt_every = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--log-every")) { NEEDV(); o->log_every = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--resume")) { NEEDV(); o->resume = v; }
        else if (!strcmp(a, "--threads")) { NEEDV(); o->threads = atoi(v); }
        else if (!strcmp(a, "--seed")) { NEEDV(); o->seed = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--write-builtin")) { NEEDV(); o->write_builtin = v; }
        else if (!strcmp(a, "--images")) { NEEDV(); o->images = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--regions")) { NEEDV(); o->regions = v; }
        else if (!strcmp(a, "--val-images")) { NEEDV(); o->val_images = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--test-images")) { NEEDV(); o->test_images = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--captions")) { NEEDV(); o->captions = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--bench")) o->bench = 1;
        else if (!strcmp(a, "--bench-step")) o->bench = 2;
        else if (!strcmp(a, "--quiet")) o->quiet = 1;
        else if (!strcmp(a, "--stop-after")) { NEEDV(); o->stop_after = strtoull(v, NULL, 10); }
        else if ((r = mt4ssl_option(o, a, v)) != 0) { if (r < 0) return -1; i += r - 1; }
        else { fprintf(stderr, "train: unknown option '%s' (see --help)\n", a); return -1; }
#undef NEEDV
    }
    if (o->steps == 0 || o->batch == 0) { fprintf(stderr, "train: --steps and --batch must be positive\n"); return -1; }
    if (o->alpha_plus < 0 || o->alpha_plus > 1) { fprintf(stderr, "train: --alpha must be in [0,1]\n"); return -1; }
    if (o->switch_step == 0) o->switch_step = (o->steps * 2 + 3) / 7;   /* 20 of 70 epochs */
    if (o->eval_every == 0) o->eval_every = o->steps / 10 ? o->steps / 10 : 1;
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

/* "w2v2" or "w2v2,vgs" -> stages; returns the number of stages or -1 */
static int parse_scenario(const char *s, float alpha_plus, stage st[2])
{
    const char *comma = strchr(s, ',');
    if (!comma) return parse_stage(s, strlen(s), alpha_plus, &st[0]) == 0 ? 1 : -1;
    if (parse_stage(s, (size_t)(comma - s), alpha_plus, &st[0]) || parse_stage(comma + 1, strlen(comma + 1), alpha_plus, &st[1])) return -1;
    return 2;
}

/* the parameters a stage trains: its SSL objective's (wav2vec 2.0 or MT4SSL or both), VGS's, or both */
static uint32_t groups_for(float alpha, const sv_config *cfg)
{
    return alpha == 0.0f ? sv_ssl_groups(cfg) : alpha == 1.0f ? SV_GROUPS_VGS : sv_ssl_groups(cfg) | SV_GROUPS_VGS;
}

/* ---------------------------------------------------------------- logging */
static void jnum(FILE *f, const char *key, double v)
{
    if (isfinite(v)) fprintf(f, ",\"%s\":%.6g", key, v);
    else fprintf(f, ",\"%s\":null", key);
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
    FILE *log;
    int tty;
    double t_start, data_time, step_time;
    size_t steps_timed, last_eval;
} run;

static int ensure_dir(const char *d)
{
    if (mkdir(d, 0777) != 0 && errno != EEXIST) { fprintf(stderr, "train: cannot create %s: %s\n", d, strerror(errno)); return -1; }
    return 0;
}

static void path_in(const run *r, const char *file, char *buf, size_t cap) { snprintf(buf, cap, "%s/%s", r->dir, file); }

static int save_ckpt(run *r, const char *file)
{
    char p[1200];
    path_in(r, file, p, sizeof p);
    r->pos.rng = *sv_ctx_rng(r->c);
    r->pos.epoch = r->L.epoch;
    r->pos.batch = r->L.batch;
    if (sv_checkpoint_save(p, r->m, &r->opt, &r->pos) != SV_OK) { fprintf(stderr, "train: %s\n", sv_last_error()); return -1; }
    return 0;
}

/* Held-out numbers of both tasks, whatever the stage trains, so forgetting shows. */
static void evaluate(run *r)
{
    sv_stats st;
    sv_recall rc;
    double t0 = now_s();
    int have_rc = 0;
    if (r->last_eval == r->pos.step + 1) return;    /* already evaluated at this step */
    r->last_eval = r->pos.step + 1;
    memset(&rc, 0, sizeof rc);
    if (sv_eval_losses(r->m, r->ce, r->data, SV_SPLIT_VAL, r->o->batch, r->o->eval_batches, 1234, &st) != SV_OK) {
        fprintf(stderr, "\ntrain: evaluation failed: %s\n", sv_last_error());
        return;
    }
    if (r->data->n_images && sv_eval_retrieval(r->m, r->ce, r->data, SV_SPLIT_VAL, r->o->batch, &rc) == SV_OK) have_rc = 1;
    fprintf(r->log, "{\"kind\":\"eval\",\"step\":%zu,\"stage\":%d", r->pos.step, r->pos.stage);
    jnum(r->log, "val_loss_av", st.loss_av);
    jnum(r->log, "val_loss_aud", st.loss_aud);
    jnum(r->log, "val_acc", st.accuracy);
    jnum(r->log, "val_code_ppl", st.code_ppl);
    jnum(r->log, "val_prob_ppl", st.prob_ppl);
    if (r->cfg.ssl != SV_SSL_W2V2) {
        jnum(r->log, "val_mt4_off", st.mt4_offline); jnum(r->log, "val_mt4_acc", st.mt4_acc); jnum(r->log, "val_mt4_on", st.mt4_online);
    }
    if (have_rc) {
        jnum(r->log, "r1_s2i", rc.s2i_r1); jnum(r->log, "r5_s2i", rc.s2i_r5); jnum(r->log, "r10_s2i", rc.s2i_r10);
        jnum(r->log, "r1_i2s", rc.i2s_r1); jnum(r->log, "r5_i2s", rc.i2s_r5); jnum(r->log, "r10_i2s", rc.i2s_r10);
    }
    fprintf(r->log, "}\n");
    fflush(r->log);
    if (!r->o->quiet) {
        char mt4[96] = "";
        if (r->cfg.ssl != SV_SSL_W2V2)
            snprintf(mt4, sizeof mt4, " (MT4SSL offline %.3f acc %.2f, online %.3f)", st.mt4_offline, st.mt4_acc, st.mt4_online);
        printf("%s[eval %s step %zu] val loss_AV %.3f loss_AUD %.3f acc %.2f%s | R@10 S->I %.1f I->S %.1f (%.1f s)\n",
               r->tty ? "\r\033[K" : "", r->name, r->pos.step, st.loss_av, st.loss_aud, st.accuracy, mt4,
               have_rc ? rc.s2i_r10 : NAN, have_rc ? rc.i2s_r10 : NAN, now_s() - t0);
    }
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

static void progress(run *r, const sv_stats *st, float lr, const sv_batch *b)
{
    char av[32], aud[32];
    double el = now_s() - r->t_start, per = r->steps_timed ? r->step_time / (double)r->steps_timed : 0;
    double eta = per * (double)(r->steps - r->pos.step);
    size_t i, samples = 0;
    for (i = 0; i < b->B; i++) samples += b->wave_len[i];
    if (r->tty) {
        int w = 24, fill = (int)((double)w * (double)r->pos.step / (double)r->steps);
        char bar[32];
        for (i = 0; i < (size_t)w; i++) bar[i] = (int)i < fill ? '#' : '.';
        bar[w] = 0;
        printf("\r\033[K%s [%s] %zu/%zu %s ETA %.0fs | AV %s AUD %s acc %.2f ppl %.0f | %.1f utt/s %.0f audio-s/s",
               r->name, bar, r->pos.step, r->steps, r->pos.stage ? "B" : "A", eta, loss_str(av, sizeof av, st->loss_av, 3),
               loss_str(aud, sizeof aud, st->loss_aud, 3),
               r->cfg.ssl == SV_SSL_MT4SSL ? st->mt4_acc : st->accuracy, st->code_ppl, per > 0 ? (double)b->B / per : 0,
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

/* Train from r->pos.step to `until` in the current stage. Returns 0, or -1 on an error. */
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
        sv_loader_next(&r->L, &b);
        t1 = now_s();
        sv_ctx_reset(r->c);
        sv_params_zero_grad(&r->m->params);
        loss = sv_model_loss(r->m, r->c, &b, st->alpha, r->pos.step, &s);
        if (loss && r->audio_only && st->alpha < 1.0f) {
            /* speech-only batch: its SSL loss joins the same backward pass */
            sv_batch ba;
            sv_stats sa;
            sv_loader_next(&r->La, &ba);
            loss = sv_axpby(r->c, 1.0f, loss, 1.0f - st->alpha, sv_model_loss(r->m, r->c, &ba, 0.0f, r->pos.step, &sa));
        }
        if (!loss) { fprintf(stderr, "\ntrain: step %zu: %s\n", r->pos.step, sv_last_error()); return -1; }
        if (!isfinite(loss->data[0])) {
            size_t at = 0;
            const char *op = sv_tape_first_nonfinite(r->c, &at);
            fprintf(stderr, "\ntrain: step %zu: the loss is %g; first non-finite value made by op '%s' (tape entry %zu). "
                            "Nothing was saved; the last checkpoint is intact.\n", r->pos.step, loss->data[0], op ? op : "?", at);
            return -1;
        }
        if (sv_backward(r->c, loss) != SV_OK) { fprintf(stderr, "\ntrain: step %zu: %s\n", r->pos.step, sv_last_error()); return -1; }
        lr = sv_lr_schedule((float)o->lr, r->pos.stage_step, warmup, stage_total);
        gnorm = sv_adam_step(&r->opt, &r->m->params, groups_for(st->alpha, &r->cfg), lr);
        if (!isfinite(gnorm)) {
            fprintf(stderr, "\ntrain: step %zu: the gradient norm is %g (a NaN/inf in the backward pass). Nothing was saved.\n", r->pos.step, gnorm);
            return -1;
        }
        /* MT4SSL: the teacher follows the student after every update that trained the SSL loss */
        if (st->alpha < 1.0f && r->cfg.ssl != SV_SSL_W2V2) sv_mt4ssl_ema_step(r->m, r->pos.stage_step + 1);
        r->pos.step++;
        r->pos.stage_step++;
        r->data_time += t1 - t0;
        r->step_time += now_s() - t1;
        r->steps_timed++;
        fprintf(r->log, "{\"kind\":\"train\",\"step\":%zu,\"stage\":%d", r->pos.step, r->pos.stage);
        jnum(r->log, "lr", lr); jnum(r->log, "loss", s.loss); jnum(r->log, "loss_av", s.loss_av); jnum(r->log, "loss_aud", s.loss_aud);
        jnum(r->log, "acc", s.accuracy); jnum(r->log, "code_ppl", s.code_ppl); jnum(r->log, "prob_ppl", s.prob_ppl);
        jnum(r->log, "tau", s.tau); jnum(r->log, "grad_norm", gnorm);
        if (r->cfg.ssl != SV_SSL_W2V2) {
            jnum(r->log, "mt4_off", s.mt4_offline); jnum(r->log, "mt4_acc", s.mt4_acc); jnum(r->log, "mt4_on", s.mt4_online);
            jnum(r->log, "target_var", s.target_var); jnum(r->log, "pred_var", s.pred_var);
        }
        fprintf(r->log, "}\n");
        if (!o->quiet) progress(r, &s, lr, &b);
        health(r, &s, st->alpha);
        if (r->pos.step % o->eval_every == 0) evaluate(r);
        if (o->ckpt_every && r->pos.step % o->ckpt_every == 0 && save_ckpt(r, "last.ckpt")) return -1;
        if (r->snapshot_step && r->pos.step == r->snapshot_step && save_ckpt(r, "switch.ckpt")) return -1;
        if (o->stop_after && r->pos.step == o->stop_after) {
            if (save_ckpt(r, "last.ckpt")) return -1;
            printf("%sstopped after step %zu as asked (--stop-after); resume with --resume %s\n", r->tty ? "\r\033[K" : "", r->pos.step, r->dir);
            return 1;
        }
    }
    return 0;
}

/* was key given with --set? */
static int set_given(const opts *o, const char *key)
{
    size_t i, n = strlen(key);
    for (i = 0; i < o->n_set; i++) if (strncmp(o->set[i], key, n) == 0 && o->set[i][n] == '=') return 1;
    return 0;
}

/* --ssl and --targets into the config: the offline head's K from the targets, the EMA decay's
   ramp scaled to the run (MT4SSL: 30k of 400k updates), and every mismatch named. */
static int mt4ssl_config(const opts *o, const sv_data *data, sv_config *cfg)
{
    const sv_km_targets *t = data->targets;
    if (o->ssl) cfg->ssl = !strcmp(o->ssl, "mt4ssl") ? SV_SSL_MT4SSL : !strcmp(o->ssl, "w2v2+mt4ssl") ? SV_SSL_BOTH : SV_SSL_W2V2;
    if (cfg->ssl == SV_SSL_W2V2) {
        if (t) printf("note: --targets is only used by --ssl mt4ssl or w2v2+mt4ssl\n");
        return 0;
    }
    if (!set_given(o, "ema_anneal")) {
        cfg->ema_anneal = (size_t)((double)o->steps * 30000.0 / 400000.0 + 0.5);
        if (!cfg->ema_anneal) cfg->ema_anneal = 1;
    }
    if (cfg->mt4_offline_weight > 0) {
        size_t hop = 1, i;
        if (!t) {
            fprintf(stderr, "train: --ssl %s needs offline targets: make them with ./train --kmeans DIR --data %s, then add "
                            "--targets DIR (or --set mt4_offline_weight=0 for the online target only)\n", o->ssl ? o->ssl : "mt4ssl", o->data);
            return -1;
        }
        for (i = 0; i < cfg->n_conv; i++) hop *= cfg->conv_stride[i];
        if (t->hop != hop || t->frame_length != sv_config_receptive_field(cfg)) {
            fprintf(stderr, "train: the targets label frames of %zu samples every %zu; this model's frames are %zu every %zu\n",
                    t->frame_length, t->hop, sv_config_receptive_field(cfg), hop);
            return -1;
        }
        if (!t->has[SV_SPLIT_TRAIN]) { fprintf(stderr, "train: the targets have no train.km\n"); return -1; }
        if (set_given(o, "mt4_k") && cfg->mt4_k != t->k) {
            fprintf(stderr, "train: --set mt4_k=%zu, but the targets have k = %zu\n", cfg->mt4_k, t->k);
            return -1;
        }
        cfg->mt4_k = t->k;
        if (o->audio_only) { fprintf(stderr, "train: --audio-only batches have no offline targets (use --set mt4_offline_weight=0)\n"); return -1; }
    }
    return 0;
}

static int open_run(run *r, const opts *o, sv_data *data, const char *dir, const char *name, const stage *st, int n_stages,
                    int resume)
{
    char p[1200];
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
    if (ensure_dir(dir)) return -1;
    if (sv_config_preset(o->config, &r->cfg) != SV_OK) { fprintf(stderr, "train: %s\n", sv_last_error()); return -1; }
    {
        size_t i;
        for (i = 0; i < o->n_set; i++) {
            char key[64];
            const char *eq = strchr(o->set[i], '=');
            if (!eq || (size_t)(eq - o->set[i]) >= sizeof key) { fprintf(stderr, "train: --set wants key=value, got '%s'\n", o->set[i]); return -1; }
            memcpy(key, o->set[i], (size_t)(eq - o->set[i]));
            key[eq - o->set[i]] = 0;
            if (sv_config_set(&r->cfg, key, eq + 1) != SV_OK) { fprintf(stderr, "train: %s\n", sv_last_error()); return -1; }
        }
    }
    if (mt4ssl_config(o, data, &r->cfg)) return -1;
    if (data->n_images && (data->R != r->cfg.img_regions || data->Dimg != r->cfg.img_dim)) {
        fprintf(stderr, "train: the data has %zu regions of %zu values per image; the %s config expects %zu of %zu "
                        "(use --set img_regions=.. --set img_dim=..)\n", data->R, data->Dimg, r->cfg.name, r->cfg.img_regions, r->cfg.img_dim);
        return -1;
    }
    r->m = sv_model_new(&r->cfg, o->seed);
    if (!r->m) { fprintf(stderr, "train: %s\n", sv_last_error()); return -1; }
    r->opt = sv_adam_default();
    r->opt.lr = (float)o->lr;
    r->opt.weight_decay = (float)o->wd;
    r->opt.clip_norm = (float)o->clip;
    r->opt.bias_correction = !o->bertadam;
    r->c = sv_ctx_new(0, o->seed * 7919 + 1);
    r->ce = sv_ctx_new(0, 1);
    if (!r->c || !r->ce) { fprintf(stderr, "train: %s\n", sv_last_error()); return -1; }
    sv_ctx_set_recycle_grads(r->c, 1);     /* only parameter gradients are read after a step */
    if (sv_loader_init(&r->L, data, SV_SPLIT_TRAIN, o->batch, (size_t)(o->crop_s * 16000), o->seed) != SV_OK) {
        fprintf(stderr, "train: %s\n", sv_last_error());
        return -1;
    }
    if (o->audio_only) {
        static sv_data ao;
        static int ao_loaded;
        if (!ao_loaded) {
            printf("loading the audio-only manifest %s\n", o->audio_only);
            if (sv_data_audio_manifest(&ao, o->audio_only) != SV_OK) { fprintf(stderr, "train: %s\n", sv_last_error()); return -1; }
            ao_loaded = 1;
        }
        r->audio_only = &ao;
        if (sv_loader_init(&r->La, &ao, SV_SPLIT_TRAIN, o->batch, (size_t)(o->crop_s * 16000), o->seed + 1) != SV_OK) {
            fprintf(stderr, "train: %s: %s\n", o->audio_only, sv_last_error());
            return -1;
        }
    }
    r->pos.alpha = st[0].alpha;
    snprintf(r->pos.scenario, sizeof r->pos.scenario, "%s", name);
    path_in(r, "log.jsonl", p, sizeof p);
    if (resume) {
        char ck[1200];
        FILE *probe;
        path_in(r, "last.ckpt", ck, sizeof ck);
        if (!(probe = fopen(ck, "rb"))) {
            /* interrupted before its first checkpoint: nothing to keep, start over */
            printf("%s has no checkpoint yet: starting the run from the beginning\n", dir);
            resume = 0;
        } else {
            fclose(probe);
        }
    }
    if (resume) {
        char ck[1200];
        path_in(r, "last.ckpt", ck, sizeof ck);
        if (sv_checkpoint_load_into(ck, r->m, &r->opt, &r->pos) != SV_OK) { fprintf(stderr, "train: cannot resume: %s\n", sv_last_error()); return -1; }
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
        /* drop log lines written after the checkpoint, so the log matches the resumed run */
        {
            FILE *f = fopen(p, "r");
            char line[4096], tmpp[1300];
            FILE *g;
            snprintf(tmpp, sizeof tmpp, "%s.tmp", p);
            g = fopen(tmpp, "w");
            if (f && g) {
                while (fgets(line, sizeof line, f)) {
                    double s;
                    if (sv_json_number(line, "step", &s) == 1 && s > (double)r->pos.step) continue;
                    fputs(line, g);
                }
            }
            if (f) fclose(f);
            if (g) { fclose(g); rename(tmpp, p); }
        }
        r->log = fopen(p, "a");
        printf("resuming %s at step %zu (stage %s)\n", name, r->pos.step, r->pos.stage ? "B" : "A");
    } else {
        r->log = fopen(p, "w");
    }
    if (!r->log) { fprintf(stderr, "train: cannot write %s: %s\n", p, strerror(errno)); return -1; }
    if (!resume) {
        fprintf(r->log, "{\"kind\":\"meta\",\"run\":\"%s\",\"stage_a\":\"%s\"", name, st[0].name);
        if (n_stages == 2) fprintf(r->log, ",\"stage_b\":\"%s\"", st[1].name);
        jnum(r->log, "alpha_a", st[0].alpha);
        if (n_stages == 2) jnum(r->log, "alpha_b", st[1].alpha);
        if (o->audio_only) fprintf(r->log, ",\"audio_only\":\"%s\"", o->audio_only);
        if (r->cfg.ssl != SV_SSL_W2V2) fprintf(r->log, ",\"ssl\":\"%s\"", r->cfg.ssl == SV_SSL_MT4SSL ? "mt4ssl" : "w2v2+mt4ssl");
        if (o->targets) fprintf(r->log, ",\"targets\":\"%s\"", o->targets);
        fprintf(r->log, ",\"steps\":%zu,\"switch\":%zu,\"config\":\"%s\",\"data\":\"%s\",\"seed\":%llu}\n",
                r->steps, r->switch_step, r->cfg.name, o->data, (unsigned long long)o->seed);
        fflush(r->log);
        path_in(r, "data.spec", p, sizeof p);
        {
            FILE *f = fopen(p, "w");
            if (f) { fprintf(f, "%s\n", o->data); fclose(f); }
        }
    }
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
    memset(r, 0, sizeof *r);
}

/* The switch of a schedule: checkpoint, log it, reset the optimizer (moments and step count);
   the learning-rate schedule restarts with the stage step. */
static int do_switch(run *r)
{
    if (save_ckpt(r, "switch.ckpt")) return -1;
    fprintf(r->log, "{\"kind\":\"switch\",\"step\":%zu}\n", r->pos.step);
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
    evaluate(r);
    fprintf(r->log, "{\"kind\":\"final\",\"step\":%zu}\n", r->pos.step);
    fflush(r->log);
    if (save_ckpt(r, "last.ckpt") || save_ckpt(r, "final.ckpt")) return -1;
    if (!r->o->quiet) printf("%s[%s] done: %zu steps in %.0f s; checkpoints in %s\n", r->tty ? "\r\033[K" : "", r->name, r->pos.step, now_s() - r->t_start, r->dir);
    return 0;
}

/* One scenario from scratch (or resumed): stage A to the switch, then stage B. */
static int run_scenario(const opts *o, sv_data *data, const char *dir, const char *name, const stage *st, int n_stages, int resume,
                        size_t snapshot)
{
    run r;
    int rc = -1;
    if (open_run(&r, o, data, dir, name, st, n_stages, resume) == 0) {
        r.snapshot_step = snapshot;
        r.t_start = now_s();
        if (r.pos.stage == 0) {
            if ((rc = train_until(&r, n_stages == 2 ? r.switch_step : r.steps)) != 0) { rc = rc > 0 ? 0 : -1; goto done; }
            rc = -1;
            if (n_stages == 2 && do_switch(&r)) goto done;
        }
        if ((rc = train_until(&r, r.steps)) != 0) { rc = rc > 0 ? 0 : -1; goto done; }
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
    char src[1200], p[1200], line[4096];
    FILE *f;
    int rc = -1;
    if (open_run(&r, o, data, dir, name, st, 2, 0)) { close_run(&r); return -1; }
    snprintf(src, sizeof src, "%s/switch.ckpt", base_dir);
    if (sv_checkpoint_load_into(src, r.m, NULL, &r.pos) != SV_OK) { fprintf(stderr, "train: %s\n", sv_last_error()); goto done; }
    *sv_ctx_rng(r.c) = r.pos.rng;
    r.L.epoch = r.pos.epoch;
    r.L.batch = r.pos.batch;
    snprintf(r.pos.scenario, sizeof r.pos.scenario, "%s", name);
    snprintf(p, sizeof p, "%s/log.jsonl", base_dir);
    if ((f = fopen(p, "r"))) {
        while (fgets(line, sizeof line, f)) {
            double s;
            if (strstr(line, "\"kind\":\"meta\"")) continue;
            if (sv_json_number(line, "step", &s) == 1 && s > (double)r.switch_step) break;
            fputs(line, r.log);
        }
        fclose(f);
    }
    r.t_start = now_s();
    r.pos.stage = 0;
    if (do_switch(&r) == 0 && train_until(&r, r.steps) == 0 && finish(&r) == 0) rc = 0;
done:
    close_run(&r);
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
        size_t n_val = o->val_images ? o->val_images : o->images / 10, n_test = o->test_images ? o->test_images : o->images / 5;
        if (n_val + n_test >= o->images) {
            fprintf(stderr, "train: %zu validation + %zu test images leave no training images out of %zu\n",
                    n_val, n_test, o->images);
            return 1;
        }
        cc.n_train_images = o->images - n_val - n_test;
        cc.n_val_images = n_val;
        cc.n_test_images = n_test;
    } else if (o->val_images || o->test_images) {
        fprintf(stderr, "train: --val-images and --test-images need --images\n");
        return 1;
    }
    if (o->captions) cc.captions_per_image = o->captions;
    if (o->regions) {
        if (!strcmp(o->regions, "pixels")) cc.region_features = SV_REGIONS_PIXELS;
        else if (strcmp(o->regions, "detector") != 0) {
            fprintf(stderr, "train: --regions must be detector or pixels, not '%s'\n", o->regions);
            return 1;
        }
    }
    printf("generating the built-in corpus (seed %llu)...\n", (unsigned long long)cc.seed);
    c = sv_corpus_generate(&cc);
    if (!c) { fprintf(stderr, "train: %s\n", sv_last_error()); return 1; }
    rc = sv_corpus_write(c, o->write_builtin);
    if (rc != SV_OK) fprintf(stderr, "train: %s\n", sv_last_error());
    else printf("wrote %zu utterances and %zu images to %s in %.1f s\n", c->n_utts, c->n_images, o->write_builtin, now_s() - t0);
    sv_corpus_free(c);
    return rc == SV_OK ? 0 : 1;
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
        if (!m) { fprintf(stderr, "train: %s\n", sv_last_error()); return 1; }
        layer = o->kmeans_layer_set ? o->kmeans_layer : (m->cfg.n_shared + m->cfg.n_decoder + 1) / 2;
        if (layer > m->cfg.n_shared + m->cfg.n_decoder) {
            fprintf(stderr, "train: --kmeans-layer %zu: the model has layers 0..%zu\n", layer, m->cfg.n_shared + m->cfg.n_decoder);
            sv_model_free(m);
            return 1;
        }
        c = sv_ctx_new(0, 1);
        if (!c) { fprintf(stderr, "train: %s\n", sv_last_error()); sv_model_free(m); return 1; }
        printf("k-means of layer %zu of %s (%zu dims), k = %zu\n", layer, o->kmeans_from, m->cfg.D, ko.k);
    } else {
        if (o->kmeans_layer_set) { fprintf(stderr, "train: --kmeans-layer needs --kmeans-from CKPT\n"); return 1; }
        printf("k-means of MFCCs (13 + deltas + delta-deltas, 20 ms; HuBERT's first iteration), k = %zu\n", ko.k);
    }
    if (ensure_dir(o->kmeans)) { sv_ctx_free(c); sv_model_free(m); return 1; }
    snprintf(cache, sizeof cache, "%s/frames.cache", o->kmeans);
    rc = sv_km_targets_make(d, m, c, layer, NULL, &ko, cache, &t, &res);
    if (rc == SV_OK && o->kmeans_from) snprintf(t.features, sizeof t.features, "%s layer %zu", o->kmeans_from, layer);
    if (rc == SV_OK) rc = sv_km_targets_write(o->kmeans, &t, d);
    if (rc != SV_OK) { fprintf(stderr, "train: %s\n", sv_last_error()); sv_ctx_free(c); sv_model_free(m); return 1; }
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

int main(int argc, char **argv)
{
    opts o;
    sv_data data;
    stage st[2];
    int n, rc = 0;
    char dir[1024];
    if (parse_args(argc, argv, &o)) return 2;
    if (o.threads > 0) sv_set_threads(o.threads);
    if (o.write_builtin) return write_builtin(&o);
    if (o.bench) return sv_bench_main(&o);
    if (o.resume) {
        /* the run's own settings come from its log's meta line */
        char p[1200], line[4096], buf[256];
        FILE *f;
        snprintf(p, sizeof p, "%s/log.jsonl", o.resume);
        f = fopen(p, "r");
        if (!f || !fgets(line, sizeof line, f)) { fprintf(stderr, "train: %s: no run to resume (%s)\n", o.resume, f ? "empty log" : strerror(errno)); return 1; }
        fclose(f);
        if (sv_json_string(line, "run", buf, sizeof buf) == 1) {
            static char scen[256];
            char *dash = strchr(buf, '-');
            if (dash) *dash = ',';
            snprintf(scen, sizeof scen, "%s", buf);
            o.scenario = scen;
        }
        {
            double v;
            static char cfgname[32], dspec[512], aonly[512];
            if (sv_json_number(line, "steps", &v) == 1) o.steps = (size_t)v;
            if (sv_json_number(line, "switch", &v) == 1 && v > 0) o.switch_step = (size_t)v;
            if (sv_json_number(line, "seed", &v) == 1) o.seed = (uint64_t)v;
            if (sv_json_string(line, "config", cfgname, sizeof cfgname) == 1) o.config = cfgname;
            if (sv_json_string(line, "data", dspec, sizeof dspec) == 1) o.data = dspec;
            if (!o.audio_only && sv_json_string(line, "audio_only", aonly, sizeof aonly) == 1) o.audio_only = aonly;
            {
                static char ssl[32], tg[512];
                if (!o.ssl && sv_json_string(line, "ssl", ssl, sizeof ssl) == 1) o.ssl = ssl;
                if (!o.targets && sv_json_string(line, "targets", tg, sizeof tg) == 1) o.targets = tg;
            }
        }
    }
    printf("loading data: %s\n", o.data);
    if (sv_data_from_spec(&data, o.data) != SV_OK) { fprintf(stderr, "train: %s\n", sv_last_error()); return 1; }
    printf("data: %zu/%zu/%zu/%zu train/val/test/ood utterances, %zu images (SIMD %s, %d threads)\n",
           data.n[0], data.n[1], data.n[2], data.n[3], data.n_images, sv_simd_name(), sv_get_threads());
    if (o.kmeans) { rc = kmeans_main(&o, &data); sv_data_free(&data); return rc; }
    if (o.targets) {
        static sv_km_targets targets;
        if (sv_km_targets_read(o.targets, &data, &targets) != SV_OK) { fprintf(stderr, "train: %s\n", sv_last_error()); sv_data_free(&data); return 1; }
        data.targets = &targets;
        printf("offline targets: %s (k = %zu, %s)\n", o.targets, targets.k, targets.features);
    }
    if (o.all) {
        static const char *base[3] = {"w2v2", "vgs", "vgsplus"};
        static const char *sched[6][2] = {{"w2v2", "vgsplus"}, {"vgs", "vgsplus"}, {"w2v2", "vgs"},
                                          {"vgs", "w2v2"}, {"vgsplus", "w2v2"}, {"vgsplus", "vgs"}};
        const char *root = o.out ? o.out : "runs/study";
        int i;
        if (ensure_dir("runs") && !o.out) return 1;
        if (ensure_dir(root)) return 1;
        for (i = 0; i < 3 && rc == 0; i++) {
            /* base runs leave a checkpoint at the switch step for the continuations */
            parse_stage(base[i], strlen(base[i]), (float)o.alpha_plus, &st[0]);
            snprintf(dir, sizeof dir, "%s/%s", root, base[i]);
            rc = run_scenario(&o, &data, dir, base[i], st, 1, 0, o.switch_step);
        }
        for (i = 0; i < 6 && rc == 0; i++) {
            char base_dir[1024], name[64];
            snprintf(name, sizeof name, "%s-%s", sched[i][0], sched[i][1]);
            if (o.schedules && !in_list(o.schedules, name)) continue;
            parse_stage(sched[i][0], strlen(sched[i][0]), (float)o.alpha_plus, &st[0]);
            parse_stage(sched[i][1], strlen(sched[i][1]), (float)o.alpha_plus, &st[1]);
            snprintf(base_dir, sizeof base_dir, "%s/%s", root, sched[i][0]);
            snprintf(name, sizeof name, "%s-%s", sched[i][0], sched[i][1]);
            snprintf(dir, sizeof dir, "%s/%s", root, name);
            rc = run_continuation(&o, &data, base_dir, dir, name, st);
        }
        if (rc == 0) printf("study done: ./eval --report %s/* writes the tables and figures\n", root);
    } else {
        char name[64];
        n = parse_scenario(o.scenario, (float)o.alpha_plus, st);
        if (n < 0) { fprintf(stderr, "train: unknown scenario '%s' (w2v2, vgs, vgs+ or A,B)\n", o.scenario); sv_data_free(&data); return 2; }
        if (n == 2) snprintf(name, sizeof name, "%s-%s", st[0].name, st[1].name);
        else snprintf(name, sizeof name, "%s", st[0].name);
        if (o.resume) snprintf(dir, sizeof dir, "%s", o.resume);
        else if (o.out) snprintf(dir, sizeof dir, "%s", o.out);
        else { ensure_dir("runs"); snprintf(dir, sizeof dir, "runs/%s", name); }
        rc = run_scenario(&o, &data, dir, name, st, n, o.resume != NULL, 0);
    }
    sv_data_free(&data);
    return rc ? 1 : 0;
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

/* Median GFLOP/s over 5 samples. */
static double bench_run(const bench_shape *s, int naive, const float *A, const float *B,
                            float *C)
{
    double t[5], flops = 2.0 * (double)s->M * (double)s->N * (double)s->K;
    size_t lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    int reps = 1, i, r;
    void (*f)(int, int, size_t, size_t, size_t, float, const float *, size_t, const float *,
              size_t, float, float *, size_t) = naive ? sv_gemm_naive : sv_gemm;
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
    fprintf(out, "sv_gemm benchmark: %s, SIMD %s, up to %d threads, load average %s\n", cpu,
            sv_simd_name(), maxt, load);
    if (atof(load) > 1.0)
        fprintf(out, "WARNING: the machine is busy; 2-thread figures will be unreliable (with other "
                     "processes on the cores, OMP_WAIT_POLICY=passive avoids spin-wait stalls)\n");
    fprintf(out, "%-22s %6s %5s %5s %3s | %9s %9s | %9s\n", "shape", "M", "N", "K", "op",
            "1 thread", "2 threads", "naive");
    sv_rng_seed(&rng, 1);
    for (i = 0; i < ns; i++) {
        const bench_shape *s = &bench_shapes[i];
        float *A = SV__CAST(float *, malloc(s->M * s->K * sizeof(float)));
        float *B = SV__CAST(float *, malloc(s->K * s->N * sizeof(float)));
        float *C = SV__CAST(float *, malloc(s->M * s->N * sizeof(float)));
        double g1, g2 = 0.0, gn = 0.0;
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
        if (s->naive) gn = bench_run(s, 1, A, B, C);
        if (maxt >= 2) {
            sv_set_threads(2);
            g2 = bench_run(s, 0, A, B, C);
        }
        fprintf(out, "%-22s %6zu %5zu %5zu %c%c  | %9.1f %9.1f | ", s->what, s->M, s->N, s->K,
                s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', g1, g2);
        if (s->naive) fprintf(out, "%9.2f  GFLOP/s\n", gn);
        else fprintf(out, "%9s  GFLOP/s\n", "-");
        fflush(out);
        free(A); free(B); free(C);
    }
    sv_set_threads(old);
}


static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int cmp_double(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

/* Median step time of the joint model on random audio and images, with the op profile. */
static double bench_step(const char *config, float alpha, size_t B, double seconds, int threads, int reps, int profile, double *gflops)
{
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
        double t0 = now_s();
        sv_tensor *loss;
        sv_ctx_reset(c);
        if (k == reps - 1) sv_ctx_flops_clear(c);   /* the FLOPs of one step, counted by the ops */
        if (k == reps - 1 && profile) { sv_ctx_profile_clear(c); sv_ctx_set_profile(c, 1); }
        sv_params_zero_grad(&m->params);
        loss = sv_model_loss(m, c, &b, alpha, 0, NULL);
        if (!loss || sv_backward(c, loss) != SV_OK) { fprintf(stderr, "bench: %s\n", sv_last_error()); exit(1); }
        sv_adam_step(&opt, &m->params, groups_for(alpha, &cfg), 1e-4f);
        if (k >= 0) t[k] = now_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    med = t[reps / 2];
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
    double t[16], med;
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
        double t0 = now_s();
        if (sv_extract_features(m, c, wave, S, cfg.n_shared + cfg.n_decoder, &out, &T, &D) != SV_OK) { fprintf(stderr, "bench: %s\n", sv_last_error()); exit(1); }
        free(out);
        if (k >= 0) t[k] = now_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    med = t[reps / 2];
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
    if (o->bench == 2) {
        double t = bench_step("small", 0.5f, 8, 2.0, maxt, 5, 1, &gf);
        printf("  small joint step, %d thread%s: %.3f s/step, %.0f GFLOP/s\n", maxt, maxt > 1 ? "s" : "", t, gf / t);
        printf("  peak resident memory: %.0f MB\n", peak_rss_mb());
        return 0;
    }
    bench_gemm(stdout);
    printf("\njoint training step, small config, alpha 0.5: 8 utterances x 2.0 s + 8 images of 16 x 192,\n"
           "forward + backward + AdamW update (median of 5 after 2 warm-up steps)\n");
    for (th = 1; th <= (maxt < 2 ? maxt : 2); th++) {
        double t = bench_step("small", 0.5f, 8, 2.0, th, 5, th == (maxt < 2 ? maxt : 2), &gf);
        printf("  %d thread%s: %.3f s/step, %.1f GFLOP per step, %.0f GFLOP/s\n", th, th > 1 ? "s" : "", t, gf, gf / t);
        if (th == 1) t1 = t; else t2 = t;
    }
    if (t2 > 0) printf("  2 threads vs 1: %.2fx\n", t1 / t2);
    printf("  peak resident memory of this process so far: %.0f MB\n", peak_rss_mb());
    printf("\nwav2vec 2.0-only step (alpha 0), small config, same batch\n");
    for (th = 1; th <= (maxt < 2 ? maxt : 2); th++) {
        double t = bench_step("small", 0.0f, 8, 2.0, th, 5, 0, &gf);
        printf("  %d thread%s: %.3f s/step, %.0f GFLOP/s\n", th, th > 1 ? "s" : "", t, gf / t);
        if (th == 1) tw1 = t; else tw2 = t;
    }
    (void)tw1; (void)tw2;
    printf("\nstep time against audio length (small, alpha 0.5, batch 8, %d threads)\n", maxt < 2 ? maxt : 2);
    {
        static const double secs[4] = {1, 2, 4, 8};
        int i;
        for (i = 0; i < 4; i++) {
            double t = bench_step("small", 0.5f, 8, secs[i], maxt < 2 ? maxt : 2, 3, 0, &gf);
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
        tv = bench_step("tiny", 0.5f, 8, 2.0, 1, 3, 0, &gf);
        sv_set_simd(0);
        ts = bench_step("tiny", 0.5f, 8, 2.0, 1, 3, 0, &gf);
        sv_set_simd(save);
        printf("\nSIMD vs scalar kernels (tiny joint step, 1 thread): %.3f vs %.3f s, %.1fx\n", tv, ts, ts / tv);
    }
    printf("\nPyTorch on the same step: unset OPENBLAS_CORETYPE; /usr/bin/python3 tools/bench_torch.py\n");
    return 0;
}
