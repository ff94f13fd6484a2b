/* fuzz/fuzz_sasl.c — libFuzzer target for strict base64 and SASL PLAIN/LOGIN responses: the
 * input is one client response line; decode/encode must round-trip exactly. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What decodes must encode back to the same text (strict base64 has one form per value). */
static void roundtrip(const char *line, size_t size)
{
    static unsigned char dec[4096];
    static char enc[8192];
    size_t n;
    if (size > sizeof enc - 1 || !smtp_base64_decode(line, size, dec, sizeof dec, &n))
        return;
    size_t e = smtp_base64_encode(dec, n, enc, sizeof enc);
    if (e != size || memcmp(enc, line, size) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    struct smtp_sasl_creds c;
    char field[64];
    roundtrip(line, size);
    smtp_sasl_plain(data, size, &c);
    if (smtp_sasl_plain_response(line, size, &c) == SMTP_SASL_OK) {
        /* fields are NUL-terminated within their buffers and never empty where required */
        if (c.user[0] == '\0' || c.pass[0] == '\0' || memchr(c.user, '\0', sizeof c.user) == NULL ||
            memchr(c.pass, '\0', sizeof c.pass) == NULL)
            abort();
        smtp_sasl_authzid_ok(&c);
    }
    smtp_sasl_wipe(&c);
    /* small caps reach the bound checks */
    smtp_sasl_login_field(line, size, field, size % sizeof field);
    return 0;
}
