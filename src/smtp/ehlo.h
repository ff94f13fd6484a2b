/* smtp/ehlo.h — reading a server's EHLO reply into the service extensions it offers, as the
 * client session uses them. RFC 5321 §4.1.1.1, RFC 1869 §4.3; the keywords of RFC 2920, 1870,
 * 6152, 6531, 3461, 3030, 2034, 3207, 4954 and 9422. */
#ifndef CLEARMTA_SMTP_EHLO_H
#define CLEARMTA_SMTP_EHLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the server offered in its last EHLO reply. */
struct smtp_client_caps {
    bool esmtp, pipelining, starttls, eightbitmime, smtputf8, dsn, chunking, enhanced;
    bool auth_plain, auth_login;
    bool has_size;
    uint64_t size;   /* SIZE n (0: no limit announced) */
    unsigned rcptmax; /* RFC 9422 LIMITS RCPTMAX (0: none) */
    unsigned mailmax; /* RFC 9422 LIMITS MAILMAX (0: none): the caller counts transactions */
};

/* Reads the text of a 2xx EHLO reply, as reply_parse() gives it (struct reply_parsed: each
 * line's text without its code, joined by '\n'; len bytes, NULs allowed): the first line names
 * the server, each further line is one keyword and its parameters, separated by spaces or tabs.
 * Keywords and AUTH mechanisms are matched case-insensitively; unknown keywords, unknown LIMITS
 * parameters and malformed or zero LIMITS values are ignored. SIZE without a number, or with
 * anything but digits, means no announced limit (size 0); a SIZE or LIMITS value too large for
 * its field saturates (UINT64_MAX, UINT32_MAX). "AUTH=…" (before RFC 4954) counts as AUTH.
 * Fills *caps from scratch, with esmtp set; never fails. */
void smtp_ehlo_parse(const char *text, size_t len, struct smtp_client_caps *caps);

#endif
