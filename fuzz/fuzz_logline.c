/* fuzz/fuzz_logline.c — libFuzzer target for reply_log_parse() (src/reply/logline.c): any line
 * of a mail log, however broken (fields without values, unclosed "<…>", a thousand '=' signs),
 * must parse without a crash, and every field it finds must point into the line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reply/logline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* p[0..n) lies inside s[0..len); no field (NULL) has no length */
static void check_inside(const char *p, size_t n, const char *s, size_t len)
{
    if (!p) {
        if (n != 0)
            abort();
        return;
    }
    if (p < s || n > len || (size_t)(p - s) > len - n)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy, so that a read past the end is caught by ASan */
    char *s = malloc(size ? size : 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    struct reply_log_entry e;
    if (reply_log_parse(s, size, &e)) {
        check_inside(e.stamp, e.stamp_len, s, size);
        check_inside(e.queue_id, e.queue_id_len, s, size);
        check_inside(e.recipient, e.recipient_len, s, size);
        check_inside(e.relay, e.relay_len, s, size);
        check_inside(e.reply, e.reply_len, s, size);
        if (!e.mta || !e.reason || !reply_log_outcome_name(e.outcome))
            abort();
        if (e.status.cls != 2 && e.status.cls != 4 && e.status.cls != 5)
            abort();
    }
    free(s);
    return 0;
}
