/* auth/dkim_sign.h — DKIM signing of whole messages (relaxed/relaxed, From oversigned, no l=)
 * with rsa-sha256 or ed25519-sha256, and the set of signing domains. RFC 6376 §5, RFC 8463. */
#ifndef CLEARMTA_AUTH_DKIM_SIGN_H
#define CLEARMTA_AUTH_DKIM_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "auth/dkim_key.h"
#include "auth/err.h"

/* The header fields signed when none are configured: those a reader sees or that change how
 * the message is shown. Each is signed as often as it occurs; From once more (oversigned) so
 * that no From can be added later. */
#define AUTH_DKIM_DEFAULT_HEADERS                                                          \
    "from:to:cc:subject:date:message-id:reply-to:in-reply-to:references:mime-version:"    \
    "content-type:content-transfer-encoding:sender:list-id:list-unsubscribe"

/* At most this many header fields are looked at by the verifier (auth/dkim_verify.c): the
 * h= of a signature is matched against every field, so its cost grows with both. A longer
 * header is not verified (and its DMARC evaluated without DKIM). The signer has no such cap:
 * it matches each configured name once over the fields, and DATA bounds the header. */
#define AUTH_DKIM_FIELDS_MAX 1000u

struct auth_dkim_signer {
    const char *domain;   /* d= */
    const char *selector; /* s= */
    const char *headers;  /* colon-separated names to sign, NULL = AUTH_DKIM_DEFAULT_HEADERS;
                           * from is added when absent */
    const struct auth_dkim_key *key;
};

/* Signs msg (header and body, CRLF line ends) at time now (t=): *out gets a malloc'd
 * "DKIM-Signature: …\r\n" field to put in front of the message, *out_len its length.
 * However many header fields msg has. Errors: NOMEM, CRYPTO. */
enum auth_err auth_dkim_sign(const struct auth_dkim_signer *s, const char *msg, size_t len,
                             int64_t now, char **out, size_t *out_len);

/* The signing domains of a server: a signer per domain, looked up by the From: domain. */
struct auth_dkim_signers;
struct auth_dkim_signers *auth_dkim_signers_new(void);
/* Copies domain, selector and headers; takes ownership of key (freed with the set, also on
 * failure). Errors: NOMEM. */
enum auth_err auth_dkim_signers_add(struct auth_dkim_signers *set, const char *domain,
                                    const char *selector, const char *headers,
                                    struct auth_dkim_key *key);
size_t auth_dkim_signers_count(const struct auth_dkim_signers *set); /* NULL: 0 */
void auth_dkim_signers_free(struct auth_dkim_signers *set);

/* Signs msg with the key of its From: domain (exactly that domain; of a From: with several
 * addresses, the first domain that has a key). Errors: NO_FROM (auth_from_authors finds no
 * author: no, several or an unreadable From: field), NO_SIGNER (nothing to sign with: not a
 * failure of the message), and auth_dkim_sign's. */
enum auth_err auth_dkim_signers_sign(const struct auth_dkim_signers *set, const char *msg,
                                     size_t len, int64_t now, char **out, size_t *out_len);

#endif
