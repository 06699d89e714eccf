/* libFuzzer harness for sv_safetensors_decode and the JSON reader behind it (and behind
   config.json). On success: shapes match element counts, the data fits in the input, loaded dtypes
   have data, names are non-empty and unique; the tensors written back by the library's own
   header encoder decode again to the same names, shapes and bits; the Hugging Face config
   inference runs on them (it may refuse, never crash). On failure: the output is empty and the
   message is set. The same input is also parsed as a config.json (sv__jp_parse): node spans
   stay inside the text and subtrees nest. */
#define SSL_VGS_IMPLEMENTATION
#include "../../ssl_vgs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_json(const uint8_t *data, size_t size)
{
    sv__jp j;
    size_t i;
    if (sv__jp_parse(&j, (const char *)data, size, "fuzz.json", "config") != SV_OK) {
        if (j.node || !sv_last_error()[0]) abort();
        return;
    }
    for (i = 0; i < j.count; i++) {
        const sv__jnode *n = &j.node[i];
        if (n->at > size || n->len > size - n->at || n->end <= i || n->end > j.count) abort();
        if (n->end > i + 1 && n->type != SV__J_OBJ && n->type != SV__J_ARR) abort();
        if (i && j.node[0].end != j.count) abort();
    }
    sv__jp_free(&j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sv_safetensors st, back;
    size_t i, k, total = 0;
    int rc = sv_safetensors_decode(data, size, "fuzz.safetensors", &st);
    check_json(data, size);
    if (rc != SV_OK) {
        if (st.t || st.n || st.meta_key || st.n_meta || !sv_last_error()[0]) abort();
        return 0;
    }
    for (i = 0; i < st.n; i++) {
        const sv_st_tensor *t = &st.t[i];
        size_t numel = 1;
        int d;
        if (!t->name || !t->name[0] || t->ndim < 0 || t->ndim > SV_ST_MAX_DIMS) abort();
        for (d = 0; d < t->ndim; d++) numel *= t->shape[d];
        if (numel != t->numel) abort();
        if (t->numel > size) abort();   /* at least one byte per element was present */
        total += t->numel;
        if ((!strcmp(t->dtype, "F32") || !strcmp(t->dtype, "F16") || !strcmp(t->dtype, "BF16") || !strcmp(t->dtype, "F64")) != (t->data != NULL)) abort();
        if (st.n < 64)
            for (k = 0; k < i; k++) if (!strcmp(st.t[k].name, t->name)) abort();
    }
    if (total > size) abort();
    for (i = 0; i < st.n_meta; i++) if (!st.meta_key[i] || !st.meta_value[i]) abort();
    {   /* the loaded tensors, written back as F32, decode to the same bits */
        sv_st_tensor *w = (sv_st_tensor *)calloc(st.n + 1, sizeof *w);
        const char **meta = (const char **)calloc(2 * st.n_meta + 1, sizeof(char *));
        size_t n = 0, hlen = 0, bytes = 0, off;
        char *hdr;
        for (i = 0; i < st.n; i++) if (st.t[i].data) w[n++] = st.t[i];
        for (i = 0; i < st.n_meta; i++) { meta[2 * i] = st.meta_key[i]; meta[2 * i + 1] = st.meta_value[i]; }
        hdr = sv__st_encode_header(w, n, meta, st.n_meta, &hlen, &bytes, "fuzz");
        if (!hdr) abort();   /* names came from a valid header: the encoder must take them */
        {
            unsigned char *buf = (unsigned char *)malloc(8 + hlen + bytes + 1);
            for (k = 0; k < 8; k++) buf[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
            memcpy(buf + 8, hdr, hlen);
            for (i = 0, off = 8 + hlen; i < n; i++) {
                for (k = 0; k < w[i].numel; k++) { uint32_t u; memcpy(&u, w[i].data + k, 4); sv__wr32(buf + off, u); off += 4; }
            }
            if (sv_safetensors_decode(buf, off, "back", &back) != SV_OK || back.n != n || back.n_meta != st.n_meta) abort();
            for (i = 0; i < n; i++) {
                const sv_st_tensor *b = sv_safetensors_find(&back, w[i].name);
                if (!b || b->ndim != w[i].ndim || b->numel != w[i].numel || memcmp(b->shape, w[i].shape, sizeof b->shape) ||
                    (b->numel && memcmp(b->data, w[i].data, b->numel * 4)))
                    abort();
            }
            sv_safetensors_free(&back);
            free(buf);
        }
        SV_FREE(hdr);
        free(w);
        free(meta);
    }
    {   /* Hugging Face config inference on whatever tensors came out */
        sv_config cfg;
        char notes[256];
        (void)sv_hf_config(&st, NULL, 0, "fuzz", NULL, &cfg, notes, sizeof notes);
    }
    sv_safetensors_free(&st);
    return 0;
}
