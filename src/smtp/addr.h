/* smtp/addr.h — parser for RFC 5321 reverse-/forward-paths (RFC 6531 with SMTPUTF8):
 * quoted local parts, domain literals, source routes (accepted and ignored, §4.1.1.3),
 * the null path <> and <postmaster>. */
#ifndef CLEARMTA_SMTP_ADDR_H
#define CLEARMTA_SMTP_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "limits_mta.h"

/* Parse flags. */
#define SMTP_ADDR_ALLOW_NULL 0x1u       /* "<>" is accepted (MAIL FROM) */
#define SMTP_ADDR_ALLOW_POSTMASTER 0x2u /* "<postmaster>" without domain (RCPT TO) */
#define SMTP_ADDR_UTF8 0x4u             /* SMTPUTF8 in force: UTF-8 allowed in local part and domain */

#define SMTP_ADDR_ERRORS(X)                                                  \
    X(SMTP_ADDR_OK, "ok")                                                    \
    X(SMTP_ADDR_SYNTAX, "malformed path")                                    \
    X(SMTP_ADDR_TOO_LONG, "path, local part or domain too long")             \
    X(SMTP_ADDR_EIGHT_BIT, "non-ASCII characters without SMTPUTF8")          \
    X(SMTP_ADDR_BAD_UTF8, "invalid UTF-8")                                   \
    X(SMTP_ADDR_NULL_NOT_ALLOWED, "null path <> not allowed here")

enum smtp_addr_err {
#define X(name, text) name,
    SMTP_ADDR_ERRORS(X)
#undef X
};
const char *smtp_addr_strerror(enum smtp_addr_err err);

struct smtp_path {
    bool is_null;       /* <> */
    bool is_postmaster; /* <postmaster> with no domain (case-insensitive) */
    bool is_utf8;       /* holds octets >= 0x80 */
    bool domain_literal; /* [192.0.2.1] or [IPv6:…] */
    char local[LIMIT_LOCAL_PART + 1];  /* local part as sent (quoted form kept), NUL-ended */
    size_t local_len;
    char domain[LIMIT_DOMAIN + 1];     /* domain or literal with brackets, as sent */
    size_t domain_len;
    char mailbox[LIMIT_PATH + 1];      /* "local@domain" ("" for <>, "postmaster" alone) */
    size_t mailbox_len;
};

/* Parses a path starting at s[0] == '<' through its closing '>'. On SMTP_ADDR_OK *used is the
 * number of bytes consumed (up to and including '>'). The path never holds CR, LF or NUL. */
enum smtp_addr_err smtp_addr_parse_path(const char *s, size_t len, unsigned flags,
                                        struct smtp_path *out, size_t *used);

/* Validates a domain name as in HELO/EHLO or the part after '@' (RFC 5321 §4.1.2 Domain or
 * address-literal). utf8 allows U-labels. Returns true when valid. */
bool smtp_addr_valid_domain(const char *s, size_t len, bool utf8);

/* True when two mailboxes as smtp_path.mailbox holds them ("local@domain", "postmaster") name
 * the same one: the domain compared without case (RFC 5321 §2.4), the local part exactly
 * (it may be case-sensitive) once its quoting is undone, as RFC 5321 §4.1.2 makes a
 * Quoted-string and the Dot-string it quotes one local part: "alice"@x is alice@x. */
bool smtp_addr_same_mailbox(const char *a, const char *b);

#endif
