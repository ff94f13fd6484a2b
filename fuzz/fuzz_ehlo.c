/* fuzz/fuzz_ehlo.c — libFuzzer target for the EHLO reply reader (smtp/ehlo.c). Byte 0 picks the
 * input's form: odd ('W'), server bytes read by reply_parse first, as the client session does;
 * even ('T'), the reply text itself. Checks: the caps do not depend on what the struct held
 * before, nor on the case of the text; an unknown keyword line added at the end changes nothing. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reply/reply.h"
#include "smtp/ehlo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static struct reply_parsed parsed; /* 4 KiB of text: static, not on the stack */

static bool same_caps(const struct smtp_client_caps *a, const struct smtp_client_caps *b)
{
    return a->esmtp == b->esmtp && a->pipelining == b->pipelining &&
           a->starttls == b->starttls && a->eightbitmime == b->eightbitmime &&
           a->smtputf8 == b->smtputf8 && a->dsn == b->dsn && a->chunking == b->chunking &&
           a->enhanced == b->enhanced && a->auth_plain == b->auth_plain &&
           a->auth_login == b->auth_login && a->has_size == b->has_size &&
           a->size == b->size && a->rcptmax == b->rcptmax && a->mailmax == b->mailmax;
}

/* Reads text (an exact-size copy, so ASan sees any read past len) into caps that held junk. */
static void read_copy(const char *text, size_t len, unsigned char junk,
                      struct smtp_client_caps *caps)
{
    char *copy = malloc(len ? len : 1);
    CHECK(copy != NULL);
    memcpy(copy, text, len);
    memset(caps, junk, sizeof *caps);
    smtp_ehlo_parse(copy, len, caps);
    free(copy);
}

static void check_text(const char *text, size_t len)
{
    struct smtp_client_caps a, b;
    read_copy(text, len, 0x00, &a);
    CHECK(a.esmtp);
    CHECK(a.has_size || a.size == 0);
    read_copy(text, len, 0xff, &b);
    CHECK(same_caps(&a, &b));

    /* Keywords, mechanisms and parameter names are case-insensitive; digits have no case. */
    char *folded = malloc(len + sizeof "\nX-UNKNOWN-KEYWORD SIZE=1 RCPTMAX=1");
    CHECK(folded != NULL);
    for (int upper = 0; upper < 2; upper++) {
        for (size_t i = 0; i < len; i++) {
            char ch = text[i];
            if (upper && ch >= 'a' && ch <= 'z')
                ch = (char)(ch - 'a' + 'A');
            else if (!upper && ch >= 'A' && ch <= 'Z')
                ch = (char)(ch - 'A' + 'a');
            folded[i] = ch;
        }
        read_copy(folded, len, 0x5a, &b);
        CHECK(same_caps(&a, &b));
    }

    /* A line with a keyword of nobody's adds nothing (when there is a first line to follow). */
    if (len > 0) {
        memcpy(folded, text, len);
        static const char extra[] = "\nX-UNKNOWN-KEYWORD SIZE=1 RCPTMAX=1";
        memcpy(folded + len, extra, sizeof extra - 1);
        read_copy(folded, len + sizeof extra - 1, 0x00, &b);
        CHECK(same_caps(&a, &b));
    }
    free(folded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    if (!(data[0] & 1)) {
        check_text(in, len);
        return 0;
    }
    size_t used = 0;
    if (reply_parse(in, len, &parsed, &used) == REPLY_PARSE_OK) {
        CHECK(parsed.text_len < REPLY_TEXT_MAX);
        check_text(parsed.text, parsed.text_len);
    }
    return 0;
}
