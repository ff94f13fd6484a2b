/* fuzz/fuzz_bounce.c — libFuzzer target for src/reply/mime.c and src/reply/bounce.c: nested
 * multiparts, broken boundaries, huge headers, bad base64 and 8-bit garbage must never crash.
 * Input: one option byte (bit 0: a small arena), then the message. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reply/bounce.h"
#include "reply/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool sink(void *ctx, const char *p, size_t n)
{
    (void)p;
    *(size_t *)ctx += n;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char arena[1 << 18];
    static struct reply_bounce b;
    if (size < 1)
        return 0;
    size_t cap = (data[0] & 1) ? 64 : sizeof arena;
    /* a copy of exactly size bytes, so ASan sees every read past the end */
    char *msg = malloc(size - 1 ? size - 1 : 1);
    if (!msg)
        return 0;
    memcpy(msg, data + 1, size - 1);
    reply_bounce_parse(msg, size - 1, arena, cap, &b);
    if (b.nrcpt > REPLY_BOUNCE_RCPT_MAX)
        abort();
    size_t out = 0;
    for (size_t i = 0; i < b.nrcpt; i++) {
        const struct reply_bounce_rcpt *r = &b.rcpt[i];
        if (strlen(r->recipient) >= sizeof r->recipient || strlen(r->diag) >= sizeof r->diag ||
            !r->reason)
            abort();
        reply_json_string(r->diag, strlen(r->diag), sink, &out);
    }
    free(msg);
    return 0;
}
