/* auth/spf_record.h — SPF record syntax: "v=spf1" and its terms (mechanisms with qualifier,
 * domain-spec and CIDR lengths; redirect=, exp= and unknown modifiers). Sans-I/O; macros are
 * checked here and expanded by auth/spf_macro.c. RFC 7208 §4.5-4.6, §5, §6, §12. */
#ifndef CLEARMTA_AUTH_SPF_RECORD_H
#define CLEARMTA_AUTH_SPF_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/err.h"

/* More terms than a record of DELIVER_RECORD_LEN octets can hold ("a " is two octets). */
#define AUTH_SPF_TERMS_MAX 2048u

enum auth_spf_result {
    AUTH_SPF_NONE,
    AUTH_SPF_NEUTRAL,
    AUTH_SPF_PASS,
    AUTH_SPF_FAIL,
    AUTH_SPF_SOFTFAIL,
    AUTH_SPF_TEMPERROR,
    AUTH_SPF_PERMERROR
};
const char *auth_spf_result_name(enum auth_spf_result r); /* "pass", …; never NULL */

enum auth_spf_kind {
    AUTH_SPF_ALL,
    AUTH_SPF_INCLUDE,
    AUTH_SPF_A,
    AUTH_SPF_MX,
    AUTH_SPF_PTR,
    AUTH_SPF_IP4,
    AUTH_SPF_IP6,
    AUTH_SPF_EXISTS,
    AUTH_SPF_REDIRECT, /* modifiers from here */
    AUTH_SPF_EXP
};

struct auth_spf_term {
    enum auth_spf_kind kind;
    enum auth_spf_result qualifier; /* PASS, FAIL, SOFTFAIL or NEUTRAL */
    const char *spec;               /* domain-spec or exp/redirect macro-string; NULL: none */
    size_t spec_len;
    unsigned cidr4, cidr6;          /* 32 and 128 when not given */
    unsigned char ip[16];           /* ip4 (4 octets) and ip6 networks */
};

struct auth_spf_record {
    struct auth_spf_term *terms; /* mechanisms in order; owned */
    size_t n;
    bool has_redirect, has_exp;
    struct auth_spf_term redirect, exp; /* the modifiers, when has_… */
};

/* True when rec is an SPF record ("v=spf1" then a space or its end, any case: §4.5). */
bool auth_spf_is_record(const char *rec, size_t len);

/* Parses rec (an SPF record) into out, which points into rec. Errors: SYNTAX (an unknown
 * mechanism, a bad macro, CIDR or address, redirect= or exp= twice: permerror), NOMEM,
 * TOO_BIG. out->terms is freed with auth_spf_record_free, also after an error. */
enum auth_err auth_spf_record_parse(const char *rec, size_t len, struct auth_spf_record *out);
void auth_spf_record_free(struct auth_spf_record *r);

/* A macro-string (§7.1) well-formed; exp: the letters c, r and t are allowed. */
bool auth_spf_macro_valid(const char *s, size_t len, bool exp);

#endif
