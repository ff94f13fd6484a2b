/* fuzz/fuzz_ar_strip.c — libFuzzer target for the removal of forged Authentication-Results
 * fields (src/auth/ar_strip.c): the input is a message; the result must be no longer, keep
 * the body as it was, and hold no field of our authserv-id any more (a second pass removes
 * nothing). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/ar_strip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *msg = malloc(size ? size : 1);
    if (msg == NULL)
        return 0;
    memcpy(msg, data, size);
    size_t removed = 0, again = 0;
    size_t len = auth_ar_strip(msg, size, "mx.example.test", &removed);
    if (len > size || (removed == 0 && len != size))
        abort();
    /* The body (after the first blank line) is the tail of the result, unchanged. */
    size_t body = size;
    if (size > 0 && (data[0] == '\n' || (size > 1 && data[0] == '\r' && data[1] == '\n')))
        body = 0;
    for (size_t i = 0; body == size && i + 1 < size; i++)
        if (data[i] == '\n' && (data[i + 1] == '\n' ||
                                 (i + 2 < size && data[i + 1] == '\r' && data[i + 2] == '\n')))
            body = i + 1;
    if (size - body > len || memcmp(msg + len - (size - body), data + body, size - body) != 0)
        abort();
    if (auth_ar_strip(msg, len, "mx.example.test", &again) != len || again != 0)
        abort();
    char id[64];
    size_t n = auth_ar_authserv_id((const char *)data, size, id, sizeof id);
    if (n >= sizeof id || strlen(id) != n)
        abort();
    free(msg);
    return 0;
}
