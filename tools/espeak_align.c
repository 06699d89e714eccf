/* espeak_align.c - speech + phone/word alignment from espeak-ng, for data_prep.sh tts.

   Usage: espeak_align JOBS.tsv OUTDIR WORKER NWORKERS
          espeak_align --phones TEXT VOICE    (print the events of one sentence, for debugging)

   JOBS.tsv: one utterance a line, tab-separated: id voice pitch rate range text
     voice  an espeak-ng voice name with an optional variant ("en-us+f3", "en-gb-scotland+m2")
     pitch  base pitch 0..100 (espeak default 50); range 0..100 (50); rate words per minute
   Worker W of N handles lines W, W+N, W+2N, ... (data_prep.sh runs N of them in parallel), and
   skips an utterance whose .words file already exists (the last file written for it), so a rerun
   after an interruption resumes. For each utterance it writes, each through a temporary name and
   rename (never half-written under the final name):
     OUTDIR/wav/ID.wav         16 kHz mono 16-bit PCM
     OUTDIR/align/ID.phones    "start end PHONE" (seconds, ARPAbet-like labels, see below)
     OUTDIR/align/ID.words     "start end word"
   and prints "ID seconds" per utterance on stdout.

   Alignment: espeak-ng is initialised with espeakINITIALIZE_PHONEME_EVENTS, so its synchronous
   callback receives an espeakEVENT_PHONEME event at the start of every phoneme (audio_position in
   ms from the start of the message) besides the espeakEVENT_WORD events. A phone lasts from its
   event to the next phoneme event (or the end of the audio); pause phonemes (names starting with
   '_') are gaps, not phones. A word spans its phones (from the WORD event up to the next one).
   espeak synthesises at 22050 Hz; the audio is resampled to 16 kHz with a Kaiser-windowed sinc
   (32 taps per phase, cut-off 0.9 x 8 kHz), linear-phase, so the times need no correction.

   Phone labels: espeak's English phoneme mnemonics (phsource/ph_english) are mapped to the 39
   ARPAbet phones of the CMU dictionary without stress (table sv_map below). Variants marked with
   # / - [ 2..5 : (reduced, dental, syllabic, rhotic or regional forms) fall back to their base phoneme when
   not listed. Unknown names are labelled SPN and reported once on stderr.

   Build: cc -O2 espeak_align.c -o espeak_align -lespeak-ng -lm */
#include <espeak-ng/speak_lib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IN_RATE 22050
#define OUT_RATE 16000

static const char *const sv_map[][2] = {
    /* vowels */
    {"@", "AH"}, {"@2", "AH"}, {"@5", "AH"}, {"a#", "AH"}, {"V", "AH"}, {"@L", "L"}, {"@N", "N"},
    {"3", "ER"}, {"3:", "ER"}, {"@r", "ER"}, {"3:r", "ER"},
    {"a", "AE"}, {"aa", "AE"}, {"A:", "AA"}, {"A@", "AA"}, {"A#", "AA"}, {"0", "AA"}, {"0#", "AA"},
    {"aI", "AY"}, {"aI@", "AY"}, {"aI3", "AY"}, {"aU", "AW"}, {"aU@", "AW"},
    {"e", "EH"}, {"E", "EH"}, {"e@", "EH"}, {"eI", "EY"},
    {"i", "IY"}, {"i:", "IY"}, {"i@", "IY"}, {"i@3", "IY"}, {"I", "IH"}, {"I2", "IH"}, {"I#", "IH"},
    {"O", "AO"}, {"O:", "AO"}, {"O@", "AO"}, {"o@", "AO"}, {"OI", "OY"}, {"oU", "OW"}, {"o:", "OW"}, {"o", "OW"},
    {"u:", "UW"}, {"u", "UW"}, {"U", "UH"}, {"U@", "UH"}, {"u@", "UH"},
    /* consonants */
    {"p", "P"}, {"b", "B"}, {"t", "T"}, {"d", "D"}, {"k", "K"}, {"g", "G"}, {"t#", "T"}, {"?", "T"}, {"x", "K"},
    {"f", "F"}, {"v", "V"}, {"T", "TH"}, {"D", "DH"}, {"s", "S"}, {"z", "Z"}, {"S", "SH"}, {"Z", "ZH"},
    {"h", "HH"}, {"tS", "CH"}, {"dZ", "JH"}, {"m", "M"}, {"n", "N"}, {"N", "NG"}, {"l", "L"}, {"r", "R"},
    {"w", "W"}, {"j", "Y"}, {"W", "W"}, {"C", "HH"}, {"VR", "ER"}, {"IR", "IH"}, {"UR", "UH"}, {"OR", "AO"}, {"AR", "AA"}, {"eR", "EH"}, {"aI@3", "AY"}, {"e#", "EH"}, {"i#", "IY"},
};

static const char *sv_arpabet(const char *name)
{
    char buf[16];
    size_t i, n;
    static char unknown[64][16];
    static int n_unknown;
    snprintf(buf, sizeof buf, "%s", name);
    for (;;) {
        for (i = 0; i < sizeof sv_map / sizeof sv_map[0]; i++)
            if (strcmp(buf, sv_map[i][0]) == 0) return sv_map[i][1];
        n = strlen(buf);
        if (n > 1 && strchr("#/-2345:;[", buf[n - 1])) buf[n - 1] = 0;
        else break;
    }
    for (i = 0; i < (size_t)n_unknown; i++)
        if (strcmp(unknown[i], name) == 0) return "SPN";
    if (n_unknown < 64) {
        snprintf(unknown[n_unknown++], 16, "%s", name);
        fprintf(stderr, "espeak_align: unmapped espeak phoneme '%s' labelled SPN\n", name);
    }
    return "SPN";
}

/* What the callback collects for one message. */
typedef struct { int ms; char name[9]; int word; } sv_ev;
static short *g_pcm;
static size_t g_n, g_cap;
static sv_ev *g_ev;
static size_t g_nev, g_evcap;
static int g_word;                    /* index of the current word event, -1 before the first */
static int g_wpos[1024], g_wlen[1024]; /* text position (1-based) and length of each word */
static int g_nword;

static int sv_callback(short *wav, int numsamples, espeak_EVENT *ev)
{
    if (numsamples > 0) {
        if (g_n + (size_t)numsamples > g_cap) {
            g_cap = (g_n + (size_t)numsamples) * 2;
            g_pcm = (short *)realloc(g_pcm, g_cap * sizeof(short));
            if (!g_pcm) { fprintf(stderr, "espeak_align: out of memory\n"); exit(1); }
        }
        memcpy(g_pcm + g_n, wav, (size_t)numsamples * sizeof(short));
        g_n += (size_t)numsamples;
    }
    for (; ev && ev->type != espeakEVENT_LIST_TERMINATED; ev++) {
        if (ev->type == espeakEVENT_WORD && g_nword < 1024) {
            g_wpos[g_nword] = ev->text_position;
            g_wlen[g_nword] = ev->length;
            g_word = g_nword++;
        } else if (ev->type == espeakEVENT_PHONEME && ev->id.string[0] != ';') {
            /* ';' marks palatalisation of the previous phoneme, not a phoneme of its own */
            if (g_nev == g_evcap) {
                g_evcap = g_evcap ? g_evcap * 2 : 256;
                g_ev = (sv_ev *)realloc(g_ev, g_evcap * sizeof(sv_ev));
                if (!g_ev) { fprintf(stderr, "espeak_align: out of memory\n"); exit(1); }
            }
            g_ev[g_nev].ms = ev->audio_position;
            memcpy(g_ev[g_nev].name, ev->id.string, 8);
            g_ev[g_nev].name[8] = 0;
            g_ev[g_nev].word = g_word;
            g_nev++;
        }
    }
    return 0;
}

/* Polyphase windowed-sinc resampler 22050 -> 16000 (ratio 441/320). */
#define RS_UP 320
#define RS_DOWN 441
#define RS_TAPS 32
static float rs_table[RS_UP][RS_TAPS];

static double bessel_i0(double x)
{
    double s = 1.0, t = 1.0;
    int k;
    for (k = 1; k < 40; k++) { t *= (x / (2.0 * k)) * (x / (2.0 * k)); s += t; }
    return s;
}

static void rs_init(void)
{
    /* output n sits at input position n * 441/320 = base + p/320; tap j reads x[base - 15 + j] */
    const double fc = 0.9 * (double)OUT_RATE / IN_RATE, beta = 8.0; /* cut-off relative to the input rate */
    int p, j;
    for (p = 0; p < RS_UP; p++) {
        double sum = 0.0;
        for (j = 0; j < RS_TAPS; j++) {
            double d = (double)(j - (RS_TAPS / 2 - 1)) - (double)p / RS_UP; /* tap - position */
            double u = d / (RS_TAPS / 2), w = fabs(u) < 1.0 ? bessel_i0(beta * sqrt(1.0 - u * u)) / bessel_i0(beta) : 0.0;
            double s = d == 0.0 ? fc : sin(M_PI * fc * d) / (M_PI * d);
            rs_table[p][j] = (float)(s * w);
            sum += s * w;
        }
        for (j = 0; j < RS_TAPS; j++) rs_table[p][j] = (float)(rs_table[p][j] / sum);
    }
}

static size_t resample(const short *x, size_t n, float *y)
{
    size_t m = (size_t)((double)n * OUT_RATE / IN_RATE), i;
    int j;
    for (i = 0; i < m; i++) {
        size_t num = i * RS_DOWN;
        long base = (long)(num / RS_UP);
        int p = (int)(num % RS_UP);
        double acc = 0.0;
        for (j = 0; j < RS_TAPS; j++) {
            long k = base - (RS_TAPS / 2 - 1) + j;
            if (k >= 0 && k < (long)n) acc += rs_table[p][j] * x[k];
        }
        y[i] = (float)(acc / 32768.0);
    }
    return m;
}

static void wr16(FILE *f, unsigned v) { fputc((int)(v & 255), f); fputc((int)((v >> 8) & 255), f); }
static void wr32(FILE *f, unsigned long v) { wr16(f, (unsigned)(v & 0xFFFF)); wr16(f, (unsigned)(v >> 16)); }

static int write_wav(const char *path, const float *y, size_t m)
{
    char tmp[4200];
    size_t i;
    FILE *f;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "wb"))) return -1;
    fwrite("RIFF", 1, 4, f); wr32(f, 36 + 2 * m); fwrite("WAVEfmt ", 1, 8, f);
    wr32(f, 16); wr16(f, 1); wr16(f, 1); wr32(f, OUT_RATE); wr32(f, 2 * OUT_RATE); wr16(f, 2); wr16(f, 16);
    fwrite("data", 1, 4, f); wr32(f, 2 * m);
    for (i = 0; i < m; i++) {
        double v = y[i] * 32767.0;
        long s = (long)(v >= 0 ? v + 0.5 : v - 0.5);
        if (s > 32767) s = 32767;
        if (s < -32768) s = -32768;
        wr16(f, (unsigned)(s & 0xFFFF));
    }
    if (fclose(f) != 0) return -1;
    return rename(tmp, path);
}

/* Synthesises one utterance into the globals; returns 0 on success. */
static int synth(const char *voice, int pitch, int rate, int range, const char *text)
{
    g_n = 0; g_nev = 0; g_word = -1; g_nword = 0;
    if (espeak_SetVoiceByName(voice) != EE_OK) { fprintf(stderr, "espeak_align: unknown voice %s\n", voice); return -1; }
    espeak_SetParameter(espeakRATE, rate, 0);
    espeak_SetParameter(espeakPITCH, pitch, 0);
    espeak_SetParameter(espeakRANGE, range, 0);
    if (espeak_Synth(text, strlen(text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, NULL) != EE_OK) return -1;
    return espeak_Synchronize() == EE_OK ? 0 : -1;
}

static int do_one(const char *outdir, const char *id, const char *voice, int pitch, int rate, int range,
                  const char *text)
{
    char path[4096], tmp[4200];
    float *y;
    size_t m, e;
    double total;
    FILE *f;
    int w, prev_word;
    if (synth(voice, pitch, rate, range, text) != 0) return -1;
    y = (float *)malloc((g_n + 1) * sizeof(float));
    if (!y) return -1;
    m = resample(g_pcm, g_n, y);
    total = (double)m / OUT_RATE;
    snprintf(path, sizeof path, "%s/wav/%s.wav", outdir, id);
    if (write_wav(path, y, m) != 0) { free(y); fprintf(stderr, "espeak_align: cannot write %s\n", path); return -1; }
    free(y);
    /* phones */
    snprintf(path, sizeof path, "%s/align/%s.phones", outdir, id);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "w"))) return -1;
    for (e = 0; e < g_nev; e++) {
        double a = g_ev[e].ms / 1000.0, b = e + 1 < g_nev ? g_ev[e + 1].ms / 1000.0 : total;
        if (g_ev[e].name[0] == '_' || g_ev[e].name[0] == 0 || b <= a) continue;
        if (b > total) b = total;
        if (a >= b) continue;
        fprintf(f, "%.4f %.4f %s\n", a, b, sv_arpabet(g_ev[e].name));
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) return -1;
    /* words: from the first to the last non-pause phone attached to each word event */
    snprintf(path, sizeof path, "%s/align/%s.words", outdir, id);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "w"))) return -1;
    prev_word = -1;
    for (w = 0; w < g_nword; w++) {
        double a = -1.0, b = -1.0;
        char word[256];
        int len = g_wlen[w], pos = g_wpos[w] - 1, k;
        for (e = 0; e < g_nev; e++) {
            double ea = g_ev[e].ms / 1000.0, eb = e + 1 < g_nev ? g_ev[e + 1].ms / 1000.0 : total;
            if (g_ev[e].word != w || g_ev[e].name[0] == '_' || g_ev[e].name[0] == 0 || eb <= ea) continue;
            if (a < 0) a = ea;
            b = eb > total ? total : eb;
        }
        if (a < 0 || b <= a || pos < 0 || pos >= (int)strlen(text)) continue;
        if (len > 255) len = 255;
        for (k = 0; k < len && text[pos + k]; k++) word[k] = text[pos + k];
        word[k] = 0;
        fprintf(f, "%.4f %.4f %s\n", a, b, word);
        prev_word = w;
    }
    (void)prev_word;
    if (fclose(f) != 0 || rename(tmp, path) != 0) return -1;
    printf("%s %.3f\n", id, total);
    fflush(stdout);
    return 0;
}

static int exists(const char *p)
{
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

int main(int argc, char **argv)
{
    FILE *jobs;
    char line[8192], path[4096];
    long idx = 0, worker, nworkers;
    int failed = 0;
    if (espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 200, NULL, espeakINITIALIZE_PHONEME_EVENTS) != IN_RATE) {
        fprintf(stderr, "espeak_align: espeak-ng did not initialise at %d Hz\n", IN_RATE);
        return 1;
    }
    espeak_SetSynthCallback(sv_callback);
    rs_init();
    if (argc == 4 && strcmp(argv[1], "--phones") == 0) {
        size_t e;
        if (synth(argv[3], 50, 175, 50, argv[2]) != 0) return 1;
        for (e = 0; e < g_nev; e++) printf("%d %s %s word%d\n", g_ev[e].ms, g_ev[e].name, sv_arpabet(g_ev[e].name), g_ev[e].word);
        printf("samples %zu (%.3f s)\n", g_n, (double)g_n / IN_RATE);
        return 0;
    }
    if (argc != 5) {
        fprintf(stderr, "usage: espeak_align JOBS.tsv OUTDIR WORKER NWORKERS | --phones TEXT VOICE\n");
        return 2;
    }
    worker = atol(argv[3]);
    nworkers = atol(argv[4]);
    if (nworkers < 1 || worker < 0 || worker >= nworkers) { fprintf(stderr, "espeak_align: bad worker\n"); return 2; }
    if (!(jobs = fopen(argv[1], "r"))) { fprintf(stderr, "espeak_align: cannot open %s\n", argv[1]); return 1; }
    while (fgets(line, sizeof line, jobs)) {
        char *f[6], *s = line;
        int k;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') line[--n] = 0;
        if (idx++ % nworkers != worker || !n) continue;
        for (k = 0; k < 6; k++) {
            f[k] = s;
            s = k < 5 ? strchr(s, '\t') : NULL;
            if (k < 5) {
                if (!s) break;
                *s++ = 0;
            }
        }
        if (k < 6) { fprintf(stderr, "espeak_align: %s line %ld: 6 tab-separated fields expected\n", argv[1], idx); failed = 1; continue; }
        snprintf(path, sizeof path, "%s/align/%s.words", argv[2], f[0]);
        if (exists(path)) continue; /* done by an earlier (interrupted) run */
        if (do_one(argv[2], f[0], f[1], atoi(f[2]), atoi(f[3]), atoi(f[4]), f[5]) != 0) {
            fprintf(stderr, "espeak_align: utterance %s failed\n", f[0]);
            failed = 1;
        }
    }
    fclose(jobs);
    espeak_Terminate();
    return failed;
}
