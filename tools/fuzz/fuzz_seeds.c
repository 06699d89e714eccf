/* Writes small seed inputs for the fuzzers into OUT/{wav,npy,manifest,item,safetensors}/ (folders must exist).
   Used by tools/fuzz/fuzz.sh so that no binary seeds live in the repository. */
#define SSL_VGS_IMPLEMENTATION
#include "../../ssl_vgs.h"

static char seed_dir[512];

static void put(const char *sub, const char *name, const void *data, size_t n)
{
    char path[1024];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s/%s", seed_dir, sub, name);
    f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "fuzz_seeds: cannot write %s\n", path); exit(1); }
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static const char *at(const char *sub, const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", seed_dir, sub, name);
    return path;
}

/* Raw WAV: a LIST chunk of odd size, fmt (plain or extensible), data. */
static size_t raw_wav(unsigned char *b, unsigned tag, unsigned ch, unsigned bits, int ext, size_t frames)
{
    static const unsigned char tail[14] = {0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71};
    size_t n = 0, i, data = frames * ch * (bits / 8);
    unsigned char *p = b;
#define W16(v) (p[n] = (unsigned char)(v), p[n + 1] = (unsigned char)((v) >> 8), n += 2)
#define W32(v) (W16((v) & 0xFFFF), W16(((v) >> 16) & 0xFFFF))
    memcpy(p, "RIFF", 4); n = 4;
    W32(0u);
    memcpy(p + n, "WAVELIST", 8); n += 8;
    W32(3u);
    memcpy(p + n, "abc\0", 4); n += 4;
    memcpy(p + n, "fmt ", 4); n += 4;
    W32(ext ? 40u : 16u);
    W16(ext ? 0xFFFEu : tag);
    W16(ch);
    W32(16000u);
    W32(16000u * ch * (bits / 8));
    W16(ch * (bits / 8));
    W16(bits);
    if (ext) { W16(22u); W16(bits); W32(3u); W16(tag); memcpy(p + n, tail, 14); n += 14; }
    memcpy(p + n, "data", 4); n += 4;
    W32((unsigned)data);
    for (i = 0; i < data; i++) p[n++] = (unsigned char)(i * 37 + 11);
    p[4] = (unsigned char)(n - 8); p[5] = (unsigned char)((n - 8) >> 8);
#undef W16
#undef W32
    return n;
}

int main(int argc, char **argv)
{
    float x[40];
    size_t shape[4] = {2, 3, 2, 2}, i;
    unsigned char b[4096];
    if (argc != 2) { fprintf(stderr, "usage: fuzz_seeds OUTDIR\n"); return 2; }
    snprintf(seed_dir, sizeof seed_dir, "%s", argv[1]);
    for (i = 0; i < 40; i++) x[i] = (float)sin((double)i * 0.7) * 1.2f;
    if (sv_wav_write(at("wav", "pcm16.wav"), x, 16, 16000) || sv_wav_write_float(at("wav", "f32.wav"), x, 8, 22050) ||
        sv_npy_write(at("npy", "a4.npy"), x, shape, 4) || sv_npy_write(at("npy", "a1.npy"), x, shape, 1) ||
        sv_npy_write(at("npy", "a0.npy"), x, shape, 0)) {
        fprintf(stderr, "fuzz_seeds: %s\n", sv_last_error());
        return 1;
    }
    put("wav", "u8_stereo.wav", b, raw_wav(b, 1, 2, 8, 0, 5));
    put("wav", "s24.wav", b, raw_wav(b, 1, 1, 24, 0, 5));
    put("wav", "s32_ext.wav", b, raw_wav(b, 1, 2, 32, 1, 3));
    put("wav", "f64_ext.wav", b, raw_wav(b, 3, 1, 64, 1, 3));
    {
        const char *h1 = "\x93NUMPY\x02\x00\x3a\x00\x00\x00{'shape': (2L, 1), 'fortran_order': False, 'descr': '>f8', }\n";
        unsigned char d[16] = {0x3F, 0xF8, 0, 0, 0, 0, 0, 0, 0xC0, 0x04, 0, 0, 0, 0, 0, 0};
        size_t hl = strlen(h1 + 12) + 12;
        memcpy(b, h1, hl);
        b[8] = (unsigned char)(hl - 12);
        memcpy(b + hl, d, 16);
        put("npy", "be_f8_v2.npy", b, hl + 16);
    }
    {
        const char *m1 = "id\twav\timage\tspeaker\ttext\talign\nu1\ta b.wav\t3\ts1\thello world\tx.TextGrid\n"
                         "u2\t/abs/c.wav\t\ts2\t\xC3\xA9t\xC3\xA9\t\nu3\td.wav\t-1\ts1\t\t\n";
        const char *m2 = "\xEF\xBB\xBFwav\tid\r\nx.wav\tA\r\n\r\ny.wav\tB\r\n";
        const char *i1 = "#file onset offset #phone prev-phone next-phone speaker\n"
                         "6295-244435-0000 0.3225 0.4225 AH N T 6295\n6295-244435-0000 0.4225 0.5025 T AH IH 6295\n"
                         "84-121123-0001 1.0 1.25 AH T N 84\n84-121123-0001\t.5\t6e-1\tN\tSIL\tAH\t84\n";
        put("manifest", "m1.tsv", m1, strlen(m1));
        put("manifest", "m2.tsv", m2, strlen(m2));
        put("item", "i1.item", i1, strlen(i1));
    }
    {   /* safetensors: F32 with metadata, a Hugging Face-named fragment, F16/BF16/I64, a config.json */
        sv_st_tensor t[3];
        const char *meta[4] = {"format", "pt", "k\xc3\xa9", "v\n"};
        const char *h2 = "{\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]},"
                         "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},\"__metadata__\":null,"
                         "\"i\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[8,16]}}   ";
        const char *cj = "{\"conv_stride\": [5, 2], \"num_attention_heads\": 12, \"do_stable_layer_norm\": false,"
                         " \"layer_norm_eps\": 1e-05, \"hidden_act\": \"gelu\", \"x\": [null, true, -1.5e3, {\"y\": \"\\ud83d\\ude00\"}]}";
        size_t hl = strlen(h2);
        memset(t, 0, sizeof t);
        t[0].name = (char *)"wav2vec2.feature_extractor.conv_layers.0.conv.weight"; t[0].ndim = 3;
        t[0].shape[0] = 2; t[0].shape[1] = 1; t[0].shape[2] = 3; t[0].data = x;
        t[1].name = (char *)"feature_projection.projection.weight"; t[1].ndim = 2; t[1].shape[0] = 4; t[1].shape[1] = 2; t[1].data = x;
        t[2].name = (char *)"quantizer.codevectors"; t[2].ndim = 3; t[2].shape[0] = 1; t[2].shape[1] = 4; t[2].shape[2] = 2; t[2].data = x;
        if (sv_safetensors_write(at("safetensors", "hf.safetensors"), t, 3, meta, 2) ||
            sv_safetensors_write(at("safetensors", "one.safetensors"), t + 1, 1, NULL, 0)) {
            fprintf(stderr, "fuzz_seeds: %s\n", sv_last_error());
            return 1;
        }
        for (i = 0; i < 8; i++) b[i] = (unsigned char)(hl >> (8 * i));
        memcpy(b + 8, h2, hl);
        for (i = 0; i < 16; i++) b[8 + hl + i] = (unsigned char)(i * 29 + 3);
        put("safetensors", "dtypes.safetensors", b, 8 + hl + 16);
        put("safetensors", "config.json", cj, strlen(cj));
    }
    return 0;
}
