/* libFuzzer harness for the text the drivers and checkpoints hand to the library: config lines
   ("key = value", as in a checkpoint's config block) through sv_config_set and sv_config_check,
   a data spec (sv_data_spec_check), the strict number parsers, and a checkpoint's header and
   tensor table read from memory (the checksum is resealed so the parser itself is reached).
   A config that sv_config_check accepts must satisfy every range and relation it promises. */
#define SSL_VGS_IMPLEMENTATION
#include "../../ssl_vgs.h"

static void check_config(const sv_config *c)
{
    size_t i;
    if (!c->D || !c->heads || c->D % c->heads || c->heads > c->D) abort();
    if (!c->q_groups || c->q_dim % c->q_groups || c->q_vars < 2 || !c->n_negatives || !c->final_dim) abort();
    if (!(c->logit_temp > 0) || !(c->tau_min > 0) || c->tau_min > c->tau_max || !(c->tau_decay > 0 && c->tau_decay <= 1)) abort();
    if (!(c->dropout >= 0 && c->dropout < 1) || !(c->mask_prob >= 0 && c->mask_prob <= 1) || !(c->vgs_ln_eps > 0)) abort();
    if (c->vgs_conv_width % 2 == 0 || c->vgs_width[4] != c->D || !c->n_conv || c->n_conv > SV_MAX_CONV) abort();
    for (i = 0; i < c->n_conv; i++) if (!c->conv_dim[i] || !c->conv_kernel[i] || !c->conv_stride[i]) abort();
    if (sv_config_min_samples(c, 1) == 0) abort();   /* the relations guarantee a length that can be masked */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = (char *)malloc(size + 1), *line, *next;
    sv_config c;
    size_t v;
    double d;
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    /* the whole input as a spec and as numbers */
    if (sv_data_spec_check(text) != SV_OK && !sv_last_error()[0]) abort();
    if (sv_parse_size(text, 3, 1000, &v) == SV_OK && (v < 3 || v > 1000)) abort();
    if (sv_parse_double(text, -2.0, 7.5, &d) == SV_OK && !(d >= -2.0 && d <= 7.5)) abort();
    /* lines "key = value" over the tiny preset */
    sv_config_preset("tiny", &c);
    for (line = text; line; line = next) {
        char *eq, *e;
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (!(eq = strchr(line, '='))) continue;
        *eq = 0;
        for (e = eq; e > line && e[-1] == ' '; ) *--e = 0;
        eq++;
        while (*eq == ' ') eq++;
        if (sv_config_set(&c, line, eq) != SV_OK && !sv_last_error()[0]) abort();
    }
    if (sv_config_check(&c) == SV_OK) check_config(&c);
    free(text);
    /* a checkpoint's header from memory: magic, version 2, byte order, config, settings, tensors */
    if (size >= 8) {
        size_t n = 24 + size + 8, i;
        unsigned char *b = (unsigned char *)malloc(n);
        uint32_t ver = 2, order = 0x01020304u;
        uint64_t clen = size / 2, h = 0xCBF29CE484222325ull;
        sv__rd r;
        sv_config cfg;
        const char *st;
        size_t sl;
        if (!b) return 0;
        memcpy(b, SV__CKPT_MAGIC, 8);
        memcpy(b + 8, &ver, 4);
        memcpy(b + 12, &order, 4);
        memcpy(b + 16, &clen, 8);
        memcpy(b + 24, data, size);
        for (i = 0; i + 8 < n; i++) { h ^= b[i]; h *= 0x100000001B3ull; }
        memcpy(b + n - 8, &h, 8);
        r.p = b; r.n = n - 8; r.at = 8; r.err = 0;
        if (sv__ckpt_config("fuzz.ckpt", &r, &cfg, &st, &sl) == SV_OK && sv_config_check(&cfg) == SV_OK) {
            check_config(&cfg);
            if (sl > n) abort();
            /* small models only: the tensor table against a real model */
            if (cfg.D <= 128 && cfg.ffn <= 512 && cfg.n_shared + cfg.n_decoder <= 4 && cfg.conv_dim[0] <= 128 &&
                cfg.img_dim <= 512 && cfg.img_regions <= 64 && cfg.vgs_ffn <= 512 && cfg.q_vars <= 128 && cfg.E <= 128 &&
                cfg.pos_kernel <= 64 && cfg.q_dim <= 128 && cfg.final_dim <= 128 && cfg.img_layers <= 2 &&
                cfg.vgs_width[0] <= 128 && cfg.vgs_width[1] <= 128 && cfg.vgs_width[2] <= 128 && cfg.vgs_width[3] <= 128) {
                size_t k, big = 0;
                for (k = 1; k < cfg.n_conv; k++) big |= cfg.conv_dim[k] > 128 || cfg.conv_kernel[k] > 16;
                if (!big && cfg.conv_kernel[0] <= 16) {
                    sv_model *m = sv_model_new(&cfg, 0);
                    sv_adam opt;
                    sv_train_pos pos;
                    if (m) {
                        (void)sv__ckpt_body("fuzz.ckpt", &r, m, &opt, &pos);
                        sv_model_free(m);
                    }
                }
            }
        }
        free(b);
    }
    return 0;
}
