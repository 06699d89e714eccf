/* libFuzzer harness for sv_wav_decode. Build and run with make fuzz (tools/fuzz/fuzz.sh).
   Checks beyond "no crash / no sanitizer report": on success every sample is finite and in
   [-1,1] and the rate is positive; on failure the outputs are cleared and the message is set. */
#define SSL_VGS_IMPLEMENTATION
#include "../../ssl_vgs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    float *x = (float *)1;
    size_t n = 12345, i;
    int rate = -7, rc = sv_wav_decode(data, size, "fuzz.wav", &x, &n, &rate);
    if (rc == SV_OK) {
        if (!x || rate <= 0) abort();
        for (i = 0; i < n; i++)
            if (!(x[i] >= -1.0f && x[i] <= 1.0f)) abort();
    } else {
        if (x || n || rate || !sv_last_error()[0]) abort();
    }
    sv_io_free(x);
    return 0;
}
