/* libFuzzer harness for sv_manifest_parse (paths resolved against a folder): on success the
   invariants the readers promise hold (non-empty unique ids, non-empty wav paths, no NULL strings,
   image >= -1); on failure the manifest is zeroed and the message is set. */
#define SSL_VGS_IMPLEMENTATION
#include "../../ssl_vgs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sv_manifest m;
    size_t i, j;
    int rc = sv_manifest_parse((const char *)data, size, "fuzz.tsv", (size & 1) ? "corpus" : NULL, &m);
    if (rc == SV_OK) {
        if (!m.n || !m.dir) abort();
        for (i = 0; i < m.n; i++) {
            if (!m.id[i] || !m.id[i][0] || !m.wav[i] || !m.wav[i][0] || !m.speaker[i] || !m.text[i] || !m.align[i])
                abort();
            if (m.image[i] < -1 || (!m.has_image && m.image[i] != -1)) abort();
            if (strchr(m.id[i], '\t') || strchr(m.wav[i], '\n')) abort();
        }
        if (m.n < 64) /* quadratic check only on small inputs */
            for (i = 0; i < m.n; i++)
                for (j = i + 1; j < m.n; j++)
                    if (!strcmp(m.id[i], m.id[j])) abort();
        sv_manifest_free(&m);
    } else {
        if (m.n || m.id || m.dir || !sv_last_error()[0]) abort();
    }
    return 0;
}
