/* fuzz/fuzz_explain.c — libFuzzer target for reply_explain() (src/reply/explain.c) on arbitrary
 * bytes; checks that every result is consistent and points into the input or static data. When
 * the first byte is odd, control bytes (but LF) become spaces so that the input gets past the
 * binary check into the code and phrase scanners; otherwise the bytes are taken as they are. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reply/explain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inside(const char *p, size_t n, const char *s, size_t len)
{
    if (p && (p < s || n > len || (size_t)(p - s) > len - n))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool printable = size > 0 && (data[0] & 1);
    if (size > 0) {
        data++;
        size--;
    }
    /* a private copy, so that a read past the end is caught by ASan */
    char *s = malloc(size ? size : 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    for (size_t i = 0; printable && i < size; i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\n') || s[i] == 0x7f)
            s[i] = ' ';
    struct reply_explanation ex;
    enum reply_explain_err err = reply_explain(s, size, &ex);
    if (err != REPLY_EXPLAIN_OK) {
        if (ex.code != 0 || ex.text != NULL || !reply_explain_strerror(err))
            abort();
        free(s);
        return 0;
    }
    if ((ex.code != 0 && (ex.code < 200 || ex.code > 599)) ||
        (ex.code == 0 && ex.status.cls == 0))
        abort();
    if (ex.status.cls != 0 && ex.status.cls != 2 && ex.status.cls != 4 && ex.status.cls != 5)
        abort();
    if (ex.status.cls != 0 && (ex.status.subject < 0 || ex.status.subject > 7 ||
                               ex.status.detail < 0 || ex.status.detail > 999))
        abort();
    if (ex.cls == REPLY_CLASS_INVALID || (unsigned)ex.reason >= REASON__COUNT)
        abort();
    if (!ex.meaning || !ex.cause || !ex.action || !ex.retry_when || !ex.summary)
        abort();
    if (ex.retry != (ex.cls == REPLY_CLASS_TRANSIENT) || ex.code_offset >= size)
        abort();
    check_inside(ex.text, ex.text_len, s, size);
    check_inside(ex.command, ex.command_len, s, size);
    char buf[512];
    size_t n = reply_explain_text(&ex, buf, sizeof buf);
    if (n >= sizeof buf || buf[n] != '\0' || n > ex.text_len)
        abort();
    free(s);
    return 0;
}
