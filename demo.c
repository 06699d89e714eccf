/* demo.c - the whole study, end to end, on the built-in corpus (make demo).
   It writes the corpus once, trains the base models W2V2, VGS and VGS+ and the schedules
   (W2V2, VGS), (VGS, W2V2), (VGS+, W2V2) with ./train (each schedule continues from its base
   run's checkpoint at the switch, as the paper did), evaluates every final model with ./eval
   (retrieval recall@k, ABX per layer on the in-domain test set and the out-of-domain set), and
   writes the paper's tables, the forgetting summary and the figures with ./eval --report.
   The training loop and the metrics live in ssl_vgs.h behind those two drivers; this program
   only chooses the demo's sizes and runs them in order. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>
#ifdef _WIN32   /* mingw-w64 */
#include <direct.h>
#define mkdir(path, mode) _mkdir(path)
#endif

/* Demo sizes: tuned so that the whole run takes about 8 minutes on 2 cores and the numbers
   are clearly above chance (see README.md for what they reproduce).
   - Corpus: 3000 pictures with one caption each (2400 train, 300 val, 300 test); one caption
     per picture and many pictures keep VGS from memorising; image regions come from the
     simulated object detector, as the paper's from Faster R-CNN.
   - Dropout off: at initialisation the image embedding hardly depends on the image (the random
     CLS vector dominates it), and dropout noise hides that small signal for longer than the demo
     trains.
   - Switch at half the updates, not the paper's 20:70: the tiny VGS model's loss leaves chance
     only after about 400 updates, so a stage A of 2/7 x 1400 = 400 updates would hand stage B a
     model with no retrieval to forget. */
#define DEMO_TRAIN "--config tiny --steps 1400 --switch 700 --batch 8 --lr 1e-3 --crop 3 --eval-every 140 --eval-batches 2 " \
    "--set dropout=0 --set attn_dropout=0 --set dropout_input=0 --set dropout_features=0 --set vgs_dropout=0"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int run(const char *cmd)
{
    int rc;
    printf("\n$ %s\n", cmd);
    fflush(stdout);
    rc = system(cmd);
    if (rc != 0) fprintf(stderr, "demo: the command failed (status %d): %s\n", rc, cmd);
    return rc;
}

static void usage(void)
{
    printf("usage: ./demo [--out DIR] [--threads N] [--precision fp32|bf16] [--seed S]\n"
           "Runs the reduced study on the built-in corpus (about 8 minutes on 2 cores):\n"
           "W2V2, VGS, VGS+, (W2V2,VGS), (VGS,W2V2), (VGS+,W2V2); evaluation; tables and figures.\n"
           "  --out DIR      output folder (default demo_out; must not exist or be empty; parents are created)\n"
           "  --threads N    OpenMP threads, 1..1024 (default: all cores)\n"
           "  --precision P  training precision: fp32 (default) or bf16 (see ./train --help)\n"
           "  --seed S       training seed, a whole number (default 1; the corpus is always the same)\n"
           "  --help         this text\n");
}

static int die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "demo: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    return 2;
}

/* mkdir -p; an existing folder must be empty */
static int make_out(const char *path)
{
    char p[1024];
    size_t i, n = strlen(path);
    struct stat st;
    DIR *d;
    struct dirent *e;
    if (n == 0 || n >= sizeof p) return die("--out: %s", n ? "path too long" : "empty folder name", NULL);
    memcpy(p, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0) continue;
        p[i] = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) return die("cannot create %s: %s", p, strerror(errno));
        if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) return die("cannot create %s: a file of that name exists", p, NULL);
        if (i < n) p[i] = '/';
    }
    if (!(d = opendir(path))) return die("cannot read %s: %s", path, strerror(errno));
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            closedir(d);
            return die("%s is not empty (remove it first; make demo does)%s", path, "");
        }
    closedir(d);
    return 0;
}

int main(int argc, char **argv)
{
    const char *out = "demo_out", *threads = NULL, *precision = NULL, *seed = NULL;
    static const char *runs[6] = {"w2v2", "vgs", "vgsplus", "w2v2-vgs", "vgs-w2v2", "vgsplus-w2v2"};
    char cmd[4096], th[64] = "", extra[128] = "";
    double t0 = now_s();
    int i, have_out = 0;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(); return 0; }
        if (strcmp(a, "--out") && strcmp(a, "--threads") && strcmp(a, "--precision") && strcmp(a, "--seed"))
            return die("unknown option '%s' (see --help)", a, "");
        if (i + 1 >= argc || argv[i + 1][0] == '\0' || (argv[i + 1][0] == '-' && argv[i + 1][1] == '-'))
            return die("%s needs a value (see --help)", a, "");
        v = argv[++i];
        if (!strcmp(a, "--out")) {
            if (have_out++) return die("--out is given twice%s", "", "");
            out = v;
        } else if (!strcmp(a, "--precision")) {
            if (precision) return die("--precision is given twice%s", "", "");
            if (strcmp(v, "fp32") && strcmp(v, "bf16")) return die("--precision: '%s' is not one of fp32|bf16", v, "");
            precision = v;
        } else if (!strcmp(a, "--seed")) {
            /* digits only, up to 19 of them: the value goes on train's command line as it is */
            size_t n = strlen(v);
            if (seed) return die("--seed is given twice%s", "", "");
            if (strspn(v, "0123456789") != n || n > 19) return die("--seed: '%s' is not a whole number >= 0", v, "");
            seed = v;
        } else {
            /* a whole number 1..1024: "4x", "-1", "0" and "100000" are refused here, not by OpenMP */
            size_t k, n = strlen(v);
            if (threads) return die("--threads is given twice%s", "", "");
            for (k = 0; k < n; k++) if (v[k] < '0' || v[k] > '9') break;
            if (n == 0 || k < n || n > 4 || atoi(v) < 1 || atoi(v) > 1024) return die("--threads: '%s' is not a whole number in 1..1024", v, "");
            threads = v;
        }
    }
    if (strchr(out, '\'') || strchr(out, '"') || strchr(out, '\\') || strchr(out, '$') || strchr(out, '`'))
        return die("--out %s: quotes, backslashes, $ and ` are not supported in the folder name", out, "");
    if (access("./train", X_OK) != 0 || access("./eval", X_OK) != 0)
        return die("./train and ./eval are needed in the current folder (build them with make)%s", "", "");
    if (threads) snprintf(th, sizeof th, " --threads %s", threads);
    snprintf(extra, sizeof extra, "%s%s%s%s", precision ? " --precision " : "", precision ? precision : "",
             seed ? " --seed " : "", seed ? seed : "");
    if (make_out(out)) return 1;
    printf("ssl_vgs demo: the EUSIPCO 2023 study of sequential vs parallel SSL + VGS training,\n"
           "reduced to the built-in corpus. Everything goes to %s/.\n", out);

    printf("\n== 1/4 the built-in corpus (formant-synthesised spoken captions of generated pictures)\n");
    snprintf(cmd, sizeof cmd, "./train --write-builtin '%s/corpus' --seed 7 --images 3000 --test-images 300 --captions 1", out);
    if (run(cmd)) return 1;

    printf("\n== 2/4 training: 3 base runs, then 3 schedules continuing from their switch checkpoints\n");
    snprintf(cmd, sizeof cmd, "./train --all --schedules w2v2-vgs,vgs-w2v2,vgsplus-w2v2 --data '%s/corpus' --out '%s/runs' %s%s%s",
             out, out, DEMO_TRAIN, th, extra);
    if (run(cmd)) return 1;

    printf("\n== 3/4 evaluation of each final model: retrieval (test split) and ABX per layer (test + out-of-domain)\n");
    for (i = 0; i < 6; i++) {
        snprintf(cmd, sizeof cmd, "./eval --ckpt '%s/runs/%s/final.ckpt' --retrieval --abx --abx-split both --abx-mode exact%s",
                 out, runs[i], th);
        if (run(cmd)) return 1;
    }

    printf("\n== 4/4 report: the paper's Table I and Table II layouts, forgetting, figures\n");
    snprintf(cmd, sizeof cmd, "./eval --report '%s/runs/w2v2' '%s/runs/vgs' '%s/runs/vgsplus' '%s/runs/w2v2-vgs' '%s/runs/vgs-w2v2' "
             "'%s/runs/vgsplus-w2v2' --out '%s'", out, out, out, out, out, out, out);
    if (run(cmd)) return 1;
    snprintf(cmd, sizeof cmd, "cat '%s/results.md'", out);
    run(cmd);
    printf("\ndemo done in %.1f minutes. Tables: %s/results.md; figures: %s/*.svg (loss_av, loss_aud, recall,\n"
           "abx_layers, abx_best); runs, logs and checkpoints: %s/runs/.\n", (now_s() - t0) / 60.0, out, out, out);
    return 0;
}
