/* net/tls.c — TLS server context and the self-signed certificate of a fresh install. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/tls.h"

/* A generated certificate is valid this long: it only exists so TLS works out of the box. */
#define SELF_SIGNED_DAYS 3650

void net_tls_error(char *out, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(out, cap, "unknown TLS error");
    else
        ERR_error_string_n(e, out, cap);
    ERR_clear_error();
}

void net_tls_describe(const SSL *ssl, char *out, size_t cap)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    int bits = c ? SSL_CIPHER_get_bits(c, NULL) : 0;
    snprintf(out, cap, "%s %s %d bits", SSL_get_version(ssl), c ? SSL_CIPHER_get_name(c) : "-",
             bits);
}

static int write_pem(const char *path, mode_t mode, X509 *cert, EVP_PKEY *key)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -1;
    }
    int ok = cert ? PEM_write_X509(f, cert) : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        ok = 0;
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

static bool add_san(X509 *cert, const char *hostname)
{
    char san[300];
    snprintf(san, sizeof san, "DNS:%s", hostname);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
    if (!ext)
        return false;
    bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* Fills a new certificate for key: random serial, ten years, CN and SAN = hostname. */
static bool fill_certificate(X509 *cert, EVP_PKEY *key, const char *hostname)
{
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1)
        return false;
    serial[0] &= 0x7f; /* a positive serial */
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    ASN1_INTEGER *sn = bn ? BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) : NULL;
    BN_free(bn);
    X509_NAME *name = X509_get_subject_name(cert);
    return sn && X509_set_version(cert, 2) == 1 &&
           X509_gmtime_adj(X509_getm_notBefore(cert), 0) &&
           X509_gmtime_adj(X509_getm_notAfter(cert), (long)SELF_SIGNED_DAYS * 86400) &&
           X509_set_pubkey(cert, key) == 1 &&
           X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname,
                                      -1, -1, 0) == 1 &&
           X509_set_issuer_name(cert, name) == 1 && add_san(cert, hostname) &&
           X509_sign(cert, key, EVP_sha256()) != 0;
}

/* An EC P-256 key and a self-signed certificate for hostname, written to the two paths. */
static bool generate(const char *cert_path, const char *key_path, const char *hostname,
                     char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    bool ok = key && cert && fill_certificate(cert, key, hostname);
    if (!ok) {
        net_tls_error(err, errlen);
    } else if (write_pem(key_path, 0600, NULL, key) < 0 ||
               write_pem(cert_path, 0644, cert, NULL) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", cert_path, strerror(errno));
        unlink(key_path);
        ok = false;
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return ok;
}

SSL_CTX *net_tls_context(const char *cert_path, const char *key_path, const char *data_dir,
                         const char *hostname, char *err, size_t errlen)
{
    char dir[4200], gen_cert[4300], gen_key[4300];
    err[0] = '\0';
    if (cert_path[0] == '\0') {
        int a = snprintf(dir, sizeof dir, "%s/tls", data_dir);
        int b = snprintf(gen_cert, sizeof gen_cert, "%s/cert.pem", dir);
        int k = snprintf(gen_key, sizeof gen_key, "%s/key.pem", dir);
        if (a < 0 || (size_t)a >= sizeof dir || b < 0 || (size_t)b >= sizeof gen_cert || k < 0 ||
            (size_t)k >= sizeof gen_key) {
            snprintf(err, errlen, "data directory path too long");
            return NULL;
        }
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
            return NULL;
        }
        cert_path = gen_cert;
        key_path = gen_key;
        if ((access(gen_cert, R_OK) != 0 || access(gen_key, R_OK) != 0) &&
            !generate(gen_cert, gen_key, hostname, err, errlen))
            return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        net_tls_error(err, errlen);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    /* TLS 1.2: forward-secret AEAD suites only; TLS 1.3 suites are OpenSSL's defaults. */
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!MD5:!DSS");
    /* Idle TLS connections give back their 34 KiB of record buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Key exchange: X25519 first (the cheapest, and what clients send a key share for), then
     * the NIST curves; the same set as OpenSSL's default, stated here. */
    if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256:X448:P-521:P-384") != 1) {
        net_tls_error(err, errlen);
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* No resumption: with an EC key a resumed handshake saves only the signature (about
     * 0.03 ms; the key exchange is done either way), and tickets would need a ticket key that
     * lives as long as the process. Submission clients rarely resume across connections. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char why[256];
        net_tls_error(why, sizeof why);
        snprintf(err, errlen, "certificate %s / key %s: %s", cert_path, key_path, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
