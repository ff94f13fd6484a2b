/* auth/dkim_key.h — DKIM private keys: loading a PEM key file, generating one (rsa 2048 or
 * ed25519) and the public key record to publish in DNS. RFC 6376 §3.6.1, RFC 8463 §4. */
#ifndef CLEARMTA_AUTH_DKIM_KEY_H
#define CLEARMTA_AUTH_DKIM_KEY_H

#include <stddef.h>

#include "auth/err.h"

enum auth_dkim_alg { AUTH_DKIM_RSA_SHA256 = 0, AUTH_DKIM_ED25519_SHA256 = 1 };

/* "rsa-sha256" / "ed25519-sha256"; the key type "rsa" / "ed25519" of the k= tag. */
const char *auth_dkim_alg_name(enum auth_dkim_alg alg);
const char *auth_dkim_alg_keytype(enum auth_dkim_alg alg);

struct auth_dkim_key; /* an OpenSSL private key and its algorithm */

/* Reads a PEM private key (PKCS#8 or traditional RSA) from path; the algorithm follows from
 * the key. Errors: IO (unreadable), KEY (not an RSA key of 1024+ bits nor ed25519), NOMEM.
 * The caller frees *out with auth_dkim_key_free. */
enum auth_err auth_dkim_key_load(const char *path, struct auth_dkim_key **out);
void auth_dkim_key_free(struct auth_dkim_key *k);
enum auth_dkim_alg auth_dkim_key_alg(const struct auth_dkim_key *k);

/* Generates a key (RSA of 2048 bits, or ed25519) and writes it as PKCS#8 PEM to path, created
 * with mode 0600 (an existing file is replaced only through a new file renamed over it).
 * Errors: CRYPTO, IO, NOMEM. */
enum auth_err auth_dkim_key_generate(enum auth_dkim_alg alg, const char *path,
                                     struct auth_dkim_key **out);

/* The DNS TXT record for k, "v=DKIM1; k=rsa; p=BASE64", NUL-terminated into out. Returns
 * its length, 0 when out is too small (1024 bytes always do) or on failure. */
size_t auth_dkim_key_record(const struct auth_dkim_key *k, char *out, size_t cap);

/* For the signer: the OpenSSL key (EVP_PKEY *) behind k. */
void *auth_dkim_key_pkey(const struct auth_dkim_key *k);

#endif
