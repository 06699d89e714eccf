/* libFuzzer harness for sv_npy_decode: on success the shape is consistent with the input size
   and every element is readable; on failure the outputs are cleared and the message is set. */
#define SSL_VGS_IMPLEMENTATION
#include "../../ssl_vgs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    float *x = (float *)1;
    size_t shape[4] = {9, 9, 9, 9}, count, i;
    volatile float sink = 0.0f;
    int nd = -1, rc = sv_npy_decode(data, size, "fuzz.npy", &x, shape, &nd);
    if (rc == SV_OK) {
        if (!x || nd < 0 || nd > 4) abort();
        count = shape[0] * shape[1] * shape[2] * shape[3];
        if (count > size / 4) abort(); /* at least 4 bytes per element were present */
        for (i = 0; i < count; i++) sink += x[i];
    } else {
        if (x || nd || shape[0] || !sv_last_error()[0]) abort();
    }
    (void)sink;
    sv_io_free(x);
    return 0;
}
