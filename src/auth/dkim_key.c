/* auth/dkim_key.c — DKIM private keys through OpenSSL: load, generate (mode 0600), and the
 * public key record v=DKIM1; k=…; p=…. RFC 6376 §3.6.1, RFC 8463 §4. */
#include "auth/dkim_key.h"

#include <fcntl.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct auth_dkim_key {
    EVP_PKEY *pkey;
    enum auth_dkim_alg alg;
};

const char *auth_dkim_alg_name(enum auth_dkim_alg alg)
{
    return alg == AUTH_DKIM_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

const char *auth_dkim_alg_keytype(enum auth_dkim_alg alg)
{
    return alg == AUTH_DKIM_ED25519_SHA256 ? "ed25519" : "rsa";
}

static enum auth_err wrap(EVP_PKEY *pkey, struct auth_dkim_key **out)
{
    enum auth_dkim_alg alg;
    if (EVP_PKEY_id(pkey) == EVP_PKEY_ED25519)
        alg = AUTH_DKIM_ED25519_SHA256;
    else if (EVP_PKEY_id(pkey) == EVP_PKEY_RSA && EVP_PKEY_bits(pkey) >= 1024)
        alg = AUTH_DKIM_RSA_SHA256; /* RFC 8301 §3.2: verifiers refuse shorter keys */
    else {
        EVP_PKEY_free(pkey);
        return AUTH_ERR_KEY;
    }
    struct auth_dkim_key *k = malloc(sizeof *k);
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        return AUTH_ERR_NOMEM;
    }
    k->pkey = pkey;
    k->alg = alg;
    *out = k;
    return AUTH_OK;
}

enum auth_err auth_dkim_key_load(const char *path, struct auth_dkim_key **out)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return AUTH_ERR_IO;
    EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (pkey == NULL)
        return AUTH_ERR_KEY;
    return wrap(pkey, out);
}

void auth_dkim_key_free(struct auth_dkim_key *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

enum auth_dkim_alg auth_dkim_key_alg(const struct auth_dkim_key *k)
{
    return k->alg;
}

void *auth_dkim_key_pkey(const struct auth_dkim_key *k)
{
    return k->pkey;
}

/* Writes through a temporary file created 0600, so the key is never readable by others, not
 * even for a moment, and a failed write leaves the old file alone. */
static enum auth_err write_pem(EVP_PKEY *pkey, const char *path)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 8);
    if (tmp == NULL)
        return AUTH_ERR_NOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmpXXX", 8);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    enum auth_err err = AUTH_ERR_IO;
    if (f == NULL) {
        if (fd >= 0)
            close(fd);
        goto out;
    }
    bool ok = fchmod(fd, 0600) == 0 &&
              PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1 && fflush(f) == 0 &&
              fsync(fd) == 0;
    ok = (fclose(f) == 0) && ok;
    if (ok && rename(tmp, path) == 0)
        err = AUTH_OK;
    else
        unlink(tmp);
out:
    free(tmp);
    return err;
}

enum auth_err auth_dkim_key_generate(enum auth_dkim_alg alg, const char *path,
                                     struct auth_dkim_key **out)
{
    *out = NULL;
    EVP_PKEY *pkey = alg == AUTH_DKIM_ED25519_SHA256 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                                                    : EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
                                                                        (size_t)2048);
    if (pkey == NULL)
        return AUTH_ERR_CRYPTO;
    enum auth_err err = write_pem(pkey, path);
    if (err != AUTH_OK) {
        EVP_PKEY_free(pkey);
        return err;
    }
    return wrap(pkey, out);
}

size_t auth_dkim_key_record(const struct auth_dkim_key *k, char *out, size_t cap)
{
    unsigned char raw[1024];
    size_t rawlen = sizeof raw;
    if (k->alg == AUTH_DKIM_ED25519_SHA256) {
        /* RFC 8463 §4: p= is the bare 32-octet public key, not a SubjectPublicKeyInfo. */
        if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &rawlen) != 1)
            return 0;
    } else {
        int n = i2d_PUBKEY(k->pkey, NULL);
        unsigned char *p = raw;
        if (n <= 0 || (size_t)n > sizeof raw || i2d_PUBKEY(k->pkey, &p) != n)
            return 0;
        rawlen = (size_t)n;
    }
    char b64[1500];
    if ((rawlen + 2) / 3 * 4 + 1 > sizeof b64)
        return 0;
    int b = EVP_EncodeBlock((unsigned char *)b64, raw, (int)rawlen);
    int n = snprintf(out, cap, "v=DKIM1; k=%s; p=%.*s", auth_dkim_alg_keytype(k->alg), b, b64);
    return (n > 0 && (size_t)n < cap) ? (size_t)n : 0;
}
