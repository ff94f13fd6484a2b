/* auth/spf_macro.h — SPF macro expansion: %{letter digits r delimiters}, %%, %_, %-, upper
 * case letters URL-escaped. Sans-I/O: the caller supplies every value. RFC 7208 §7. */
#ifndef CLEARMTA_AUTH_SPF_MACRO_H
#define CLEARMTA_AUTH_SPF_MACRO_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/err.h"

struct auth_spf_macro_values {
    const char *s, *l, *o; /* sender, its local part, its domain */
    const char *d;         /* the current domain */
    const char *i;         /* the client address: dotted IPv4, or IPv6 as dotted nibbles */
    const char *c;         /* the client address as people write it (exp only) */
    const char *p;         /* validated domain name of the client; NULL: not known yet */
    const char *v;         /* "in-addr" or "ip6" */
    const char *h;         /* HELO/EHLO domain */
    const char *r;         /* receiving host's domain (exp only) */
    long long t;           /* now, Unix seconds (exp only) */
};

/* Expands len bytes of s into out (NUL-terminated). exp: an explanation string, where c, r and
 * t are allowed. Errors: SYNTAX (malformed or a letter not allowed: permerror), TOO_BIG (does
 * not fit cap). *needs_p is set (and nothing expanded) when s uses %{p} and v->p is NULL. */
enum auth_err auth_spf_macro_expand(const char *s, size_t len, const struct auth_spf_macro_values *v,
                                    bool exp, char *out, size_t cap, size_t *out_len,
                                    bool *needs_p);

#endif
