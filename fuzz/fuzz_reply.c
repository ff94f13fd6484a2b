/* fuzz/fuzz_reply.c — libFuzzer target for src/reply/reply.c: reply_parse over a stream of
 * replies, reply_status_parse, and reply_format with a hostile detail (no line break may leak). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "reply/reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

static struct reply_parsed parsed; /* 4 KiB of text: static, not on the stack */

static void fuzz_parse(const char *buf, size_t size)
{
    size_t off = 0;
    while (off < size) {
        size_t used = 0;
        enum reply_parse_err err = reply_parse(buf + off, size - off, &parsed, &used);
        check(used <= size - off);
        check(parsed.text_len < REPLY_TEXT_MAX && parsed.text[parsed.text_len] == '\0');
        if (err != REPLY_PARSE_OK) {
            check(err != REPLY_PARSE_INCOMPLETE || used == 0);
            check(reply_parse_strerror(err)[0] != '\0');
            return;
        }
        check(used > 0 && parsed.lines >= 1 && parsed.lines <= REPLY_LINES_MAX);
        check(parsed.code >= 200 && parsed.code <= 599);
        check(parsed.status.cls == 0 || parsed.status.cls == parsed.code / 100);
        off += used;
    }
}

static void fuzz_status(const char *buf, size_t size)
{
    struct reply_status st;
    size_t used;
    if (reply_status_parse(buf, size, &st, &used)) {
        check(used >= 5 && used <= 9 && used <= size);
        check(st.subject >= 0 && st.subject <= 999 && st.detail >= 0 && st.detail <= 999);
    }
}

/* First byte picks the reply, second the flags and whether the rest also is an extra line. */
static void fuzz_format(const uint8_t *data, size_t size)
{
    if (size < 2)
        return;
    char detail[1024];
    size_t n = size - 2 < sizeof detail - 1 ? size - 2 : sizeof detail - 1;
    memcpy(detail, data + 2, n);
    detail[n] = '\0';
    const char *more[] = {detail};
    enum reply_id id = (enum reply_id)(data[0] % REPLY__COUNT);
    unsigned flags = data[1] & (REPLY_FMT_ENHANCED | REPLY_FMT_SOFT_BOUNCE);
    size_t n_more = (data[1] & 0x80) != 0 ? 1 : 0;

    static char out[4096];
    size_t len = reply_format(out, sizeof out, id, detail, more, n_more, flags);
    check(len >= 2);
    /* CR and LF appear only as the CRLF ending each line */
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) {
        if (out[i] == '\r') {
            check(i + 1 < len && out[i + 1] == '\n');
            lines++;
        } else if (out[i] == '\n') {
            check(i > 0 && out[i - 1] == '\r');
        }
    }
    check(lines == 1 + n_more && out[len - 1] == '\n');
    size_t used;
    enum reply_parse_err err = reply_parse(out, len, &parsed, &used);
    check(err == REPLY_PARSE_OK || err == REPLY_PARSE_LINE_TOO_LONG);
    if (err == REPLY_PARSE_OK)
        check(used == len && parsed.lines == lines);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_parse((const char *)data, size);
    fuzz_status((const char *)data, size);
    fuzz_format(data, size);
    return 0;
}
