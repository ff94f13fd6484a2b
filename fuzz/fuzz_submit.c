/* fuzz/fuzz_submit.c — libFuzzer target for sendmail's message reader (smtp/submit.c): line
 * ends made CRLF, then the header read for To/Cc/Bcc addresses with Bcc removed. The first
 * byte chooses -i; every reported address must lie inside the normalised input. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/submit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct bounds {
    const char *lo, *hi; /* the normalised message */
};

static void on_rcpt(void *ctx, const char *addr, size_t len)
{
    struct bounds *b = ctx;
    bool in_msg = addr >= b->lo && addr + len <= b->hi;
    bool in_copy = len <= 1024; /* a bare address is copied into the reader's own buffer */
    if (len == 0 || (!in_msg && !in_copy))
        abort();
    volatile char sink = addr[len - 1];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    bool ignore_dots = data[0] & 1;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    char *norm = malloc(2 * len + 2);
    char *out = malloc(2 * len + 4); /* a blank line may be added after the header */
    if (!norm || !out)
        goto done;
    bool nul;
    size_t n = smtp_submit_normalize(in, len, ignore_dots, norm, &nul);
    if (n > 2 * len + 2)
        abort();
    struct bounds b = {norm, norm + n};
    struct smtp_submit_header_info info;
    size_t m = smtp_submit_headers(norm, n, on_rcpt, &b, out, &info);
    if (m > n + 2 || info.header_len > m)
        abort();
done:
    free(norm);
    free(out);
    return 0;
}
