/* libFuzzer harness for sv_item_parse: on success every index is inside its table, times are
   finite with 0 <= onset < offset, interned strings are unique; sv_item_check runs on the result.
   On failure the set is zeroed and the message is set. */
#define SSL_VGS_IMPLEMENTATION
#include "../../ssl_vgs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sv_item_set s;
    size_t i, j;
    int rc = sv_item_parse((const char *)data, size, "fuzz.item", &s);
    if (rc == SV_OK) {
        double dur = 1.0;
        if (!s.n_items || !s.n_files || !s.n_phones || !s.n_speakers) abort();
        for (i = 0; i < s.n_items; i++) {
            const sv_item *it = &s.items[i];
            if (it->file >= s.n_files || it->phone < 0 || (size_t)it->phone >= s.n_phones || it->prev < 0 ||
                (size_t)it->prev >= s.n_phones || it->next < 0 || (size_t)it->next >= s.n_phones || it->speaker < 0 ||
                (size_t)it->speaker >= s.n_speakers)
                abort();
            if (!(it->onset >= 0.0 && it->onset < it->offset && it->offset - it->offset == 0.0)) abort();
        }
        if (s.n_phones < 64)
            for (i = 0; i < s.n_phones; i++)
                for (j = i + 1; j < s.n_phones; j++)
                    if (!strcmp(s.phones[i], s.phones[j])) abort();
        rc = sv_item_check(&s, (const char *const *)s.files, NULL, s.n_files);
        if (rc != SV_OK) abort(); /* every file of the set is known to itself */
        (void)sv_item_check(&s, (const char *const *)s.files, &dur, 1);
        sv_item_set_free(&s);
    } else {
        if (s.items || s.n_items || s.files || !sv_last_error()[0]) abort();
    }
    return 0;
}
