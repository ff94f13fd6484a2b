/* smtp/sasl.h — strict base64 and the client messages of SASL PLAIN and LOGIN, as the AUTH
 * command carries them. RFC 4648 §4 (base64), RFC 4616 (PLAIN), RFC 4954 §4 (AUTH exchange).
 * Pure: no I/O, no allocation. */
#ifndef CLEARMTA_SMTP_SASL_H
#define CLEARMTA_SMTP_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "limits_mta.h"

#define SMTP_SASL_ERRORS(X)                                                        \
    X(SMTP_SASL_OK, "ok")                                                          \
    X(SMTP_SASL_BAD_BASE64, "response is not valid base64")       /* 501 5.5.2 */  \
    X(SMTP_SASL_MALFORMED, "malformed SASL message")               /* 501 5.5.2 */  \
    X(SMTP_SASL_TOO_LONG, "SASL field too long")                   /* 500 5.5.6 */  \
    X(SMTP_SASL_CANCELLED, "authentication cancelled by the client") /* 501 5.0.0 */

enum smtp_sasl_err {
#define X(name, text) name,
    SMTP_SASL_ERRORS(X)
#undef X
};

/* Never NULL; "unknown SASL error" for a value outside the enum. */
const char *smtp_sasl_strerror(enum smtp_sasl_err err);

/* The LOGIN mechanism's challenges (base64 of "Username:" and "Password:"): de facto standard
 * (draft-murchison-sasl-login), what every client expects after "334 ". */
#define SMTP_SASL_LOGIN_USER_CHALLENGE "VXNlcm5hbWU6"
#define SMTP_SASL_LOGIN_PASS_CHALLENGE "UGFzc3dvcmQ6"

/* Decodes len bytes of base64 (RFC 4648 §4) into out. Strict: len a multiple of 4, padding
 * required, '=' only as the last one or two characters, no whitespace or other byte outside the
 * alphabet, and the unused bits before the padding must be zero (one encoding per value, so a
 * smuggled variant cannot pass a filter). Returns false for anything else or when the result
 * does not fit in cap; out may be partly written then. "" decodes to 0 bytes. */
bool smtp_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                        size_t *out_len);

/* Bytes that smtp_base64_decode produces from a well-formed input of len characters; 0 when
 * len is not a multiple of 4. Lets a caller tell "too long" from "invalid" before decoding. */
size_t smtp_base64_decoded_len(const char *in, size_t len);

/* Encodes len bytes as padded base64 into out, NUL-terminated. Returns the length without the
 * NUL, or 0 when out (cap bytes) cannot hold it all (4 * ceil(len / 3) + 1 bytes needed); an
 * empty input also returns 0, with out = "" if cap >= 1. */
size_t smtp_base64_encode(const unsigned char *in, size_t len, char *out, size_t cap);

/* Credentials from one PLAIN message or two LOGIN responses. Strings are NUL-terminated, hold no
 * NUL. authzid is "" when the client asked for none: a non-empty authzid that names someone
 * else than user is proxy authorization, which the caller must refuse (smtp_sasl_authzid_ok). */
struct smtp_sasl_creds {
    char authzid[LIMIT_PATH + 1];
    char user[LIMIT_PATH + 1];
    char pass[1024];
};

/* Parses a decoded PLAIN message (RFC 4616 §2): [authzid] NUL authcid NUL passwd. authcid and
 * passwd must be non-empty, and all three well-formed UTF-8 (RFC 3629) without NUL.
 * Errors: MALFORMED (wrong number of NULs, empty field, bad UTF-8), TOO_LONG (a field beyond its
 * buffer in struct smtp_sasl_creds). On any error out is wiped. */
enum smtp_sasl_err smtp_sasl_plain(const unsigned char *msg, size_t len,
                                   struct smtp_sasl_creds *out);

/* Parses one PLAIN client response as sent on the wire (the initial response after
 * "AUTH PLAIN " or the line after "334 "): "*" cancels (RFC 4954 §4), "=" is the empty initial
 * response (never a valid PLAIN message), else base64 of a PLAIN message.
 * Errors: CANCELLED, BAD_BASE64, TOO_LONG, MALFORMED. Decoded bytes are wiped before returning;
 * on any error out is wiped too. */
enum smtp_sasl_err smtp_sasl_plain_response(const char *line, size_t len,
                                            struct smtp_sasl_creds *out);

/* Decodes one LOGIN response (the user name or the password; "*" cancels, "=" is empty) into
 * out, NUL-terminated. LOGIN has no charset rule, so any bytes but NUL are kept; an empty value
 * is MALFORMED. Errors: CANCELLED, BAD_BASE64, TOO_LONG (does not fit cap with its NUL),
 * MALFORMED. On any error out (cap bytes) is wiped. */
enum smtp_sasl_err smtp_sasl_login_field(const char *line, size_t len, char *out, size_t cap);

/* True when authzid is empty or names user itself (ASCII case ignored, as user lookups do). */
bool smtp_sasl_authzid_ok(const struct smtp_sasl_creds *c);

/* Clears the whole of c (the password above all) in a way the compiler cannot drop. */
void smtp_sasl_wipe(struct smtp_sasl_creds *c);

#endif
