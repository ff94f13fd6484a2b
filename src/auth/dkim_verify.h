/* auth/dkim_verify.h — DKIM verification, sans-I/O: every DKIM-Signature of a message parsed
 * and hashed, the key records asked of the caller (who looks them up in DNS), then one result
 * per signature. RFC 6376 §6, RFC 8463, RFC 8301 (no rsa-sha1, RSA keys of 1024+ bits). */
#ifndef CLEARMTA_AUTH_DKIM_VERIFY_H
#define CLEARMTA_AUTH_DKIM_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/dns.h"
#include "auth/err.h"

/* At most this many signatures of a message are evaluated (the first ones from the top); more
 * would let one message cost many key look-ups and hashes. */
#define AUTH_DKIM_SIGS_MAX 16u

/* Results in the words of RFC 8601 §2.7.1. */
#define AUTH_DKIM_RESULTS(X)                                                        \
    X(AUTH_DKIM_PASS, "pass")                                                       \
    X(AUTH_DKIM_FAIL, "fail")                                                       \
    X(AUTH_DKIM_NEUTRAL, "neutral")                                                 \
    X(AUTH_DKIM_TEMPERROR, "temperror")                                             \
    X(AUTH_DKIM_PERMERROR, "permerror")

enum auth_dkim_result {
#define AUTH_DKIM_RESULT_ENUM(name, text) name,
    AUTH_DKIM_RESULTS(AUTH_DKIM_RESULT_ENUM)
#undef AUTH_DKIM_RESULT_ENUM
};
const char *auth_dkim_result_name(enum auth_dkim_result r); /* never NULL */

struct auth_dkim_sig_result {
    char domain[256];   /* d=, as written; "" when the signature is too broken to say */
    char selector[64];  /* s= */
    char algorithm[16]; /* a= */
    char b_prefix[9];   /* the first 8 characters of b= (RFC 6008 header.b); "" without b= */
    enum auth_dkim_result result;
    const char *reason; /* one phrase, static: "body hash mismatch", "key not found" … */
};

struct auth_dkim_verify;

/* Parses and hashes every DKIM-Signature of msg (CRLF line ends) at time now (x=). msg is
 * read during the call only. Errors: NOMEM, TOO_BIG (more than AUTH_DKIM_FIELDS_MAX header
 * fields). A message without signatures gives a verifier with count 0. */
enum auth_err auth_dkim_verify_new(const char *msg, size_t len, int64_t now,
                                   struct auth_dkim_verify **out);
void auth_dkim_verify_free(struct auth_dkim_verify *v);
size_t auth_dkim_verify_count(const struct auth_dkim_verify *v); /* NULL: 0 */

/* The TXT name signature i needs ("selector._domainkey.domain"), or NULL when its result is
 * known without it (a malformed signature, rsa-sha1, or its answer was given). */
const char *auth_dkim_verify_key_query(const struct auth_dkim_verify *v, size_t i);

/* The answer for signature i: the TXT records (each its strings concatenated) of its key name.
 * Decides the signature's result. */
void auth_dkim_verify_key_answer(struct auth_dkim_verify *v, size_t i, enum auth_dns_status st,
                                 const char *const *records, const size_t *lens, size_t n);

/* Signature i's result; before its answer came, temperror ("key not looked up"). */
const struct auth_dkim_sig_result *auth_dkim_verify_result(const struct auth_dkim_verify *v,
                                                           size_t i);

#endif
