/* fuzz/fuzz_safe_text.c — libFuzzer target for the writer of outside text (reply/safe_text.c).
 * Input: any bytes. The output must hold no control byte but TAB and the newline string's LF,
 * no C1 character, only well-formed UTF-8; a small buffer's output must be a prefix of the
 * whole output, NUL-terminated at its length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reply/safe_text.h"
#include "reply/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_shown(const char *out, size_t n)
{
    const unsigned char *u = (const unsigned char *)out;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = reply_utf8_char(u + i, n - i, &cp);
        if (len == 0 || (cp < 0x20 && cp != '\t' && cp != '\n') || (cp >= 0x7f && cp <= 0x9f))
            abort();
        i += len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t cap = data[0]; /* the small buffer's size, 0 to 255 */
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    size_t whole_cap = 8 * len + 1; /* a byte shows as at most an escape or the newline */
    char *whole = malloc(whole_cap), *small = malloc(cap + 1);
    if (whole == NULL || small == NULL)
        goto done;
    const char *newline = cap & 1 ? " " : "\n    ";
    size_t n = reply_safe_text_buf(s, len, newline, whole, whole_cap);
    if (strlen(whole) != n)
        abort();
    check_shown(whole, n);
    size_t m = reply_safe_text_buf(s, len, newline, small, cap + 1);
    if (m > cap || strlen(small) != m || memcmp(small, whole, m) != 0)
        abort();
done:
    free(whole);
    free(small);
    return 0;
}
