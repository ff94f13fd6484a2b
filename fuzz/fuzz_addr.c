/* fuzz/fuzz_addr.c — libFuzzer target for the path and domain parser (src/smtp/addr.c). The first
 * byte picks the SMTP_ADDR_* flags, the rest is the path; results are checked for consistency. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *s, size_t len, const struct smtp_path *p, size_t used)
{
    if (used < 2 || used > len || used > LIMIT_PATH || s[0] != '<' || s[used - 1] != '>')
        abort();
    if (p->mailbox_len != strlen(p->mailbox) || p->local_len != strlen(p->local) ||
        p->domain_len != strlen(p->domain))
        abort();
    if (!p->is_null && !p->is_postmaster &&
        p->mailbox_len != p->local_len + 1 + p->domain_len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned flags = data[0] & (SMTP_ADDR_ALLOW_NULL | SMTP_ADDR_ALLOW_POSTMASTER | SMTP_ADDR_UTF8);
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    struct smtp_path path;
    size_t used = 0;

    if (smtp_addr_parse_path(s, len, flags, &path, &used) == SMTP_ADDR_OK) {
        check_path(s, len, &path, used);
        /* A domain that parsed inside a path must also pass as a domain on its own. */
        if (path.domain_len > 0 &&
            !smtp_addr_valid_domain(path.domain, path.domain_len, (flags & SMTP_ADDR_UTF8) != 0))
            abort();
    }
    (void)smtp_addr_valid_domain(s, len, (flags & SMTP_ADDR_UTF8) != 0);
    return 0;
}
