/* auth/from.h — the author domains of a message: the domains of the addresses of its one
 * From: field (RFC 5322 §3.6.2, §3.4; RFC 7489 §3.1, §6.6.1), found however many other header
 * fields come before it and however long the field is. Sans-I/O, reads the message in place. */
#ifndef CLEARMTA_AUTH_FROM_H
#define CLEARMTA_AUTH_FROM_H

#include <stddef.h>

#include "limits_mta.h"

/* Distinct author domains evaluated at most: each costs DMARC look-ups, and a real From: names
 * one author (rarely two or three). A field naming more cannot be judged and counts as
 * unreadable (AUTH_FROM_TOO_MANY). */
#define AUTH_FROM_DOMAINS_MAX 8u

enum auth_from_status {
    AUTH_FROM_OK,         /* one From: field, every address with a domain */
    AUTH_FROM_NONE,       /* no From: field (RFC 5322 §3.6 requires one) */
    AUTH_FROM_SEVERAL,    /* more than one From: field (RFC 5322 §3.6 allows one) */
    AUTH_FROM_UNREADABLE, /* no address, group syntax, an address without a plain domain, or
                           * unbalanced quotes, comments or angle brackets */
    AUTH_FROM_TOO_MANY    /* more distinct domains than AUTH_FROM_DOMAINS_MAX */
};

/* Plain words for logs and replies: "no From: field", … ; never NULL. */
const char *auth_from_status_text(enum auth_from_status s);

struct auth_from {
    enum auth_from_status status;
    size_t n; /* distinct domains (n > 0 when OK), lower case, in order of first appearance */
    char domains[AUTH_FROM_DOMAINS_MAX][LIMIT_DOMAIN + 1];
};

/* The author domains of msg (header and body; CRLF or LF line ends) into *out. */
void auth_from_authors(const char *msg, size_t len, struct auth_from *out);

#endif
