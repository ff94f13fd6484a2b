/* net/tls_pair.c — the self-signed pair of a fresh install in <data_dir>/tls: the directory is
 * opened without following a link and checked (root's or the server's user's, written by no
 * one else); the files are opened relative to it without following links, checked, read from
 * those descriptors, and given to the server's user through them; a missing pair is written
 * under temporary names (created exclusively) and renamed into place. Root does this before it
 * drops its privileges, in a directory the server's user may write: no name there is trusted
 * to point where it did a moment ago. */
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

#include "net/owned_file.h"
#include "net/tls.h"
#include "net/tls_pair.h"

/* A generated certificate is valid this long: it only exists so TLS works out of the box. */
#define SELF_SIGNED_DAYS 3650
/* A PEM file larger than this is not a certificate chain or a key. */
#define PEM_FILE_MAX (1024 * 1024)

static const char KEY_NAME[] = "key.pem", CERT_NAME[] = "cert.pem";

/* Writes one PEM object to <dir>/<name>.new, created exclusively (a leftover is removed
 * first), given to owner, synced, then renamed over <dir>/<name>: a link planted at the name is
 * replaced, never written through. */
static bool write_pem(int dir, const char *name, mode_t mode, const struct net_tls_owner *owner,
                      X509 *cert, EVP_PKEY *key)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%s.new", name);
    if (unlinkat(dir, tmp, 0) != 0 && errno != ENOENT)
        return false;
    int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return false;
    if (owner->give && fchown(fd, owner->uid, owner->gid) != 0) {
        close(fd);
        unlinkat(dir, tmp, 0);
        return false;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlinkat(dir, tmp, 0);
        return false;
    }
    int ok = cert ? PEM_write_X509(f, cert) : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        ok = 0;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok || renameat(dir, tmp, dir, name) != 0) {
        int e = errno;
        unlinkat(dir, tmp, 0);
        errno = e;
        return false;
    }
    return true;
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

/* An EC P-256 key and a self-signed certificate for hostname, written into dir. */
static bool generate(int dir, const char *where, const char *hostname,
                     const struct net_tls_owner *owner, char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    bool ok = key && cert && fill_certificate(cert, key, hostname);
    if (!ok) {
        net_tls_error(err, errlen);
    } else if (!write_pem(dir, KEY_NAME, 0600, owner, NULL, key) ||
               !write_pem(dir, CERT_NAME, 0644, owner, cert, NULL)) {
        snprintf(err, errlen, "cannot write the pair in %s: %s", where, strerror(errno));
        unlinkat(dir, KEY_NAME, 0);
        ok = false;
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return ok;
}

/* Opens <where>/tls, making it if missing, and checks it; -1 with the reason in err. */
static int open_tls_dir(const char *data_dir, const char *where,
                        const struct net_tls_owner *owner, char *err, size_t errlen)
{
    int data = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (data < 0) {
        snprintf(err, errlen, "%s: %s", data_dir, strerror(errno));
        return -1;
    }
    if (mkdirat(data, "tls", 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", where, strerror(errno));
        close(data);
        return -1;
    }
    int dir = openat(data, "tls", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(data);
    struct stat st;
    if (dir < 0) {
        snprintf(err, errlen, "%s refused: %s (it must be a directory, not a symbolic link)",
                 where, strerror(e));
        return -1;
    }
    const char *why = NULL;
    if (fstat(dir, &st) != 0)
        why = strerror(errno);
    else if (!net_owned_by(&st, owner->uid)) /* root's: left by a run as root */
        why = "owned by another user (it must belong to root or the server's user)";
    else if (st.st_mode & (S_IWGRP | S_IWOTH))
        why = "group or others may write it (chmod 700)";
    if (why) {
        snprintf(err, errlen, "%s refused: %s", where, why);
        close(dir);
        return -1;
    }
    return dir;
}

/* Opens <dir>/name without following a link and checks it is a regular file with one name of
 * a trusted owner that no one else may write (nor read, for the key). -1 with errno ENOENT
 * when it is missing; -1 with the reason in err otherwise. */
static int open_member(int dir, const char *where, const char *name, mode_t forbidden,
                       const struct net_tls_owner *owner, char *err, size_t errlen)
{
    int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s/%s refused: %s%s", where, name, strerror(e),
                 e == ELOOP ? " (a symbolic link)" : "");
        errno = e;
        return -1;
    }
    struct stat st;
    const char *why = fstat(fd, &st) != 0 ? strerror(errno)
                                           : net_owned_file_problem(&st, owner->uid);
    if (why == NULL && (st.st_mode & forbidden))
        why = forbidden & S_IROTH ? "others may read or write it (chmod 600)"
                                  : "group or others may write it (chmod 644)";
    if (why == NULL && st.st_size > PEM_FILE_MAX)
        why = "too large for a PEM file";
    if (why) {
        snprintf(err, errlen, "%s/%s refused: %s", where, name, why);
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

/* The whole of fd in a memory BIO (NULL on a read error). */
static BIO *read_all(int fd)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char buf[4096];
    size_t total = 0;
    while (mem && total <= PEM_FILE_MAX) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || BIO_write(mem, buf, (int)n) != (int)n) {
            if (n == 0)
                return mem;
            break;
        }
        total += (size_t)n;
    }
    BIO_free(mem);
    return NULL;
}

/* The certificate (first) and its chain (the rest) from cert_fd, the key from key_fd. */
static bool use_pair(SSL_CTX *ctx, int cert_fd, int key_fd)
{
    BIO *certs = read_all(cert_fd), *keys = read_all(key_fd);
    X509 *leaf = certs ? PEM_read_bio_X509_AUX(certs, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = keys ? PEM_read_bio_PrivateKey(keys, NULL, NULL, NULL) : NULL;
    bool ok = leaf && key && SSL_CTX_use_certificate(ctx, leaf) == 1 &&
              SSL_CTX_clear_chain_certs(ctx) == 1;
    X509 *extra;
    while (ok && (extra = PEM_read_bio_X509(certs, NULL, NULL, NULL)) != NULL) {
        ok = SSL_CTX_add0_chain_cert(ctx, extra) == 1;
        if (!ok)
            X509_free(extra);
    }
    if (ok)
        ERR_clear_error(); /* the end of the chain reads as "no start line" */
    ok = ok && SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    X509_free(leaf);
    EVP_PKEY_free(key);
    BIO_free(certs);
    BIO_free(keys);
    return ok;
}

/* Gives the directory and the pair to the server's user, through their descriptors. */
static bool give(int dir, int cert_fd, int key_fd, const struct net_tls_owner *owner)
{
    return !owner->give ||
           (fchown(dir, owner->uid, owner->gid) == 0 &&
            fchown(cert_fd, owner->uid, owner->gid) == 0 &&
            fchown(key_fd, owner->uid, owner->gid) == 0);
}

bool net_tls_pair_use(SSL_CTX *ctx, const char *data_dir, const char *hostname,
                      const struct net_tls_owner *owner, char *err, size_t errlen)
{
    char where[4200];
    int n = snprintf(where, sizeof where, "%s/tls", data_dir);
    if (n < 0 || (size_t)n >= sizeof where) {
        snprintf(err, errlen, "data directory path too long");
        return false;
    }
    int dir = open_tls_dir(data_dir, where, owner, err, errlen);
    if (dir < 0)
        return false;
    int key_fd = -1, cert_fd = -1;
    bool ok = false;
    /* Twice at most: a missing file means a new pair, then both must open. */
    for (int round = 0; round < 2 && !ok; round++) {
        key_fd = open_member(dir, where, KEY_NAME, S_IRWXG | S_IRWXO, owner, err, errlen);
        bool key_missing = key_fd < 0 && errno == ENOENT;
        cert_fd = open_member(dir, where, CERT_NAME, S_IWGRP | S_IWOTH, owner, err, errlen);
        bool cert_missing = cert_fd < 0 && errno == ENOENT;
        ok = key_fd >= 0 && cert_fd >= 0;
        if (ok)
            break;
        if (key_fd >= 0)
            close(key_fd);
        if (cert_fd >= 0)
            close(cert_fd);
        key_fd = cert_fd = -1;
        if (round > 0 || !(key_missing || cert_missing) ||
            !generate(dir, where, hostname, owner, err, errlen))
            break;
    }
    if (ok && !give(dir, cert_fd, key_fd, owner)) {
        snprintf(err, errlen, "cannot give %s to uid %u: %s", where, (unsigned)owner->uid,
                 strerror(errno));
        ok = false;
    }
    if (ok && !use_pair(ctx, cert_fd, key_fd)) {
        char why[256];
        net_tls_error(why, sizeof why);
        snprintf(err, errlen, "certificate %s/%s / key %s/%s: %s", where, CERT_NAME, where,
                 KEY_NAME, why);
        ok = false;
    }
    if (key_fd >= 0)
        close(key_fd);
    if (cert_fd >= 0)
        close(cert_fd);
    close(dir);
    return ok;
}
