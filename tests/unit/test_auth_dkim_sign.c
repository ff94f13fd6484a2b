/* tests/unit/test_auth_dkim_sign.c — DKIM signing: body hashes against known values (RFC 8463
 * appendix A, the empty body), the h= list (From oversigned, repeated fields, configured
 * names), signatures checked with OpenSSL over the data RFC 6376 §3.7 defines, folding, the
 * signing domains, and messages of many header fields (the From: domain itself:
 * test_auth_from.c). Keys: auth/dkim_key.c. */
#include "unit.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/canon.h"
#include "auth/dkim_key.h"
#include "auth/dkim_sign.h"

static char dir[] = "/tmp/clearmta-dkim-XXXXXX";
static struct auth_dkim_key *rsa, *ed;

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    char path[128];
    snprintf(path, sizeof path, "%s/rsa.pem", dir);
    if (auth_dkim_key_generate(AUTH_DKIM_RSA_SHA256, path, &rsa) != AUTH_OK)
        return -1;
    snprintf(path, sizeof path, "%s/ed.pem", dir);
    return auth_dkim_key_generate(AUTH_DKIM_ED25519_SHA256, path, &ed) == AUTH_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char path[128];
    auth_dkim_key_free(rsa);
    auth_dkim_key_free(ed);
    snprintf(path, sizeof path, "%s/rsa.pem", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/ed.pem", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

/* The value of tag t= in a signature field, unfolded, into out. */
static void tag(const char *sig, const char *t, char *out, size_t cap)
{
    char unf[4096];
    size_t n = 0;
    for (const char *p = sig; *p && n + 1 < sizeof unf; p++)
        if (*p != '\r' && *p != '\n' && *p != '\t' && *p != ' ')
            unf[n++] = *p;
    unf[n] = '\0';
    char key[16];
    snprintf(key, sizeof key, ";%s=", t);
    const char *v = strstr(unf, key);
    assert_non_null(v);
    v += strlen(key);
    size_t l = strcspn(v, ";");
    assert_true(l < cap);
    memcpy(out, v, l);
    out[l] = '\0';
}

static char *sign(const struct auth_dkim_key *k, const char *headers, const char *msg)
{
    struct auth_dkim_signer s = {.domain = "example.test", .selector = "sel", .headers = headers,
                                 .key = k};
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(auth_dkim_sign(&s, msg, strlen(msg), 1700000000, &out, &len), AUTH_OK);
    assert_int_equal(strlen(out), len);
    return out;
}

static void test_body_hashes(void **state)
{
    (void)state;
    char *sig = sign(ed, NULL, "From: a@example.test\r\n\r\n");
    char bh[64];
    tag(sig, "bh", bh, sizeof bh);
    assert_string_equal(bh, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    free(sig);
    sig = sign(rsa, NULL, "From: joe@football.example.com\r\n\r\n"
                          "Hi.\r\n\r\nWe lost the game. Are you hungry yet?\r\n\r\nJoe.\r\n");
    tag(sig, "bh", bh, sizeof bh);
    assert_string_equal(bh, "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");
    free(sig);
}

static void test_signed_names(void **state)
{
    (void)state;
    char h[512];
    char *sig = sign(ed, NULL, "Received: x\r\nFrom: a@example.test\r\nTo: b@x\r\nTo: c@x\r\n"
                               "Subject: s\r\nX-Other: o\r\n\r\nb\r\n");
    tag(sig, "h", h, sizeof h);
    assert_string_equal(h, "from:from:to:to:subject");
    assert_null(strstr(sig, "l="));
    assert_non_null(strstr(sig, "c=relaxed/relaxed;"));
    assert_non_null(strstr(sig, "a=ed25519-sha256;"));
    assert_non_null(strstr(sig, "t=1700000000;"));
    free(sig);
    sig = sign(rsa, "X-Other:subject:Subject", "From: a@example.test\r\nSubject: s\r\n"
                                                "X-OTHER: o\r\n\r\nb\r\n");
    tag(sig, "h", h, sizeof h);
    assert_string_equal(h, "from:from:x-other:subject");
    assert_non_null(strstr(sig, "a=rsa-sha256;"));
    free(sig);
}

/* Every line of the field fits in 78 columns and each continuation starts with a tab. */
static void test_folding(void **state)
{
    (void)state;
    char *sig = sign(rsa, NULL, "From: a@example.test\r\nTo: b@x\r\nCc: c@x\r\nSubject: s\r\n"
                                "Date: d\r\nMessage-ID: <m@x>\r\n\r\nb\r\n");
    assert_true(strncmp(sig, "DKIM-Signature: v=1; ", 21) == 0);
    for (const char *line = sig; *line;) {
        const char *e = strstr(line, "\r\n");
        assert_non_null(e);
        assert_true(e - line <= 78);
        line = e + 2;
        if (*line)
            assert_int_equal(*line, '\t');
    }
    free(sig);
}

/* Recomputes §3.7's data independently of the signer's assembly: the canonical signed fields
 * in h= order (bottom-up instances), then the signature field with an empty b=. */
static void verify(const struct auth_dkim_key *k, const char *sig, const char *fields)
{
    char copy[4096];
    const char *b = strstr(sig, "b=");
    while (b != NULL && b > sig && b[-1] == 'b') /* skip bh= */
        b = strstr(b + 2, "b=");
    assert_non_null(b);
    size_t head = (size_t)(b - sig) + 2;
    memcpy(copy, sig, head);
    copy[head] = '\0';
    char canon[4096];
    size_t cn = auth_canon_header(copy, head, false, canon, sizeof canon);
    assert_true(cn > 0);
    char data[8192];
    int dn = snprintf(data, sizeof data, "%s%s", fields, canon);
    assert_true(dn > 0 && (size_t)dn < sizeof data);
    char b64[2048];
    tag(sig, "b", b64, sizeof b64);
    unsigned char raw[1024];
    int rl = EVP_DecodeBlock(raw, (unsigned char *)b64, (int)strlen(b64));
    assert_true(rl > 0);
    size_t pad = strlen(b64) - strcspn(b64, "=");
    EVP_PKEY *pkey = auth_dkim_key_pkey(k);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok;
    if (auth_dkim_key_alg(k) == AUTH_DKIM_ED25519_SHA256) {
        unsigned char dg[32];
        EVP_Digest(data, (size_t)dn, dg, NULL, EVP_sha256(), NULL);
        ok = EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) == 1 &&
             EVP_DigestVerify(md, raw, (size_t)rl - pad, dg, sizeof dg) == 1;
    } else {
        ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
             EVP_DigestVerify(md, raw, (size_t)rl - pad, (unsigned char *)data, (size_t)dn) == 1;
    }
    EVP_MD_CTX_free(md);
    assert_true(ok);
}

static void test_signatures_verify(void **state)
{
    (void)state;
    const char *msg = "From: A <a@example.test>\r\nTo: one@x\r\nTo:   two@x\r\n"
                      "Subject: folded\r\n  subject\r\n\r\nbody\r\n";
    const char *fields = "from:A <a@example.test>\r\n" /* from, then the oversigned nothing */
                         "to:two@x\r\nto:one@x\r\n"    /* bottom-up */
                         "subject:folded subject\r\n";
    char *sig = sign(ed, NULL, msg);
    verify(ed, sig, fields);
    free(sig);
    sig = sign(rsa, NULL, msg);
    verify(rsa, sig, fields);
    free(sig);
}

static void test_signers(void **state)
{
    (void)state;
    char path[128];
    struct auth_dkim_key *k = NULL;
    snprintf(path, sizeof path, "%s/ed.pem", dir);
    assert_int_equal(auth_dkim_key_load(path, &k), AUTH_OK);
    assert_int_equal(auth_dkim_key_alg(k), AUTH_DKIM_ED25519_SHA256);
    struct auth_dkim_signers *set = auth_dkim_signers_new();
    assert_int_equal(auth_dkim_signers_count(set), 0);
    assert_int_equal(auth_dkim_signers_add(set, "Example.Test", "s1", NULL, k), AUTH_OK);
    assert_int_equal(auth_dkim_signers_count(set), 1);
    char *out = NULL;
    size_t len = 0;
    const char *mine = "From: a@EXAMPLE.test\r\n\r\nx\r\n";
    assert_int_equal(auth_dkim_signers_sign(set, mine, strlen(mine), 1, &out, &len), AUTH_OK);
    assert_non_null(strstr(out, "d=example.test;"));
    assert_non_null(strstr(out, "s=s1;"));
    free(out);
    const char *other = "From: a@sub.example.test\r\n\r\nx\r\n";
    assert_int_equal(auth_dkim_signers_sign(set, other, strlen(other), 1, &out, &len),
                     AUTH_ERR_NO_SIGNER);
    assert_null(out);
    assert_int_equal(auth_dkim_signers_sign(set, "no header", 9, 1, &out, &len),
                     AUTH_ERR_NO_FROM);
    auth_dkim_signers_free(set);
    assert_int_equal(auth_dkim_signers_count(NULL), 0);
}

/* A message of `pad` X-Pad fields, From: (after them), `tos` To: fields and a body. */
static char *many_fields(size_t pad, size_t tos, size_t *len)
{
    size_t cap = (pad + tos) * 24 + 128;
    char *msg = malloc(cap);
    assert_non_null(msg);
    *len = 0;
    for (size_t i = 0; i < pad; i++)
        *len += (size_t)snprintf(msg + *len, cap - *len, "X-Pad-%zu: x\r\n", i);
    *len += (size_t)snprintf(msg + *len, cap - *len, "From: A <a@example.test>\r\n");
    for (size_t i = 0; i < tos; i++)
        *len += (size_t)snprintf(msg + *len, cap - *len, "To: t%zu@x\r\n", i);
    *len += (size_t)snprintf(msg + *len, cap - *len, "\r\nbody\r\n");
    return msg;
}

/* RFC 6376 §5.4 puts no bound on the fields signed: From: after 100 fields is found and
 * signed, and a header of more fields than the verifier takes is signed all the same, every
 * To: in h= (bottom up, each once) and From: oversigned. */
static void test_many_fields(void **state)
{
    (void)state;
    struct auth_dkim_key *k = NULL;
    char path[128];
    snprintf(path, sizeof path, "%s/ed.pem", dir);
    assert_int_equal(auth_dkim_key_load(path, &k), AUTH_OK);
    struct auth_dkim_signers *set = auth_dkim_signers_new();
    assert_int_equal(auth_dkim_signers_add(set, "example.test", "s1", NULL, k), AUTH_OK);
    size_t len = 0;
    char *msg = many_fields(100, 2, &len), *out = NULL;
    size_t olen = 0;
    assert_int_equal(auth_dkim_signers_sign(set, msg, len, 1, &out, &olen), AUTH_OK);
    char h[256];
    tag(out, "h", h, sizeof h);
    assert_string_equal(h, "from:from:to:to");
    verify(ed, out, "from:A <a@example.test>\r\nto:t1@x\r\nto:t0@x\r\n");
    free(out);
    free(msg);

    size_t tos = AUTH_DKIM_FIELDS_MAX + 500;
    msg = many_fields(AUTH_DKIM_FIELDS_MAX, tos, &len);
    assert_int_equal(auth_dkim_signers_sign(set, msg, len, 1, &out, &olen), AUTH_OK);
    char *list = malloc(olen + 1);
    assert_non_null(list);
    size_t ln = 0; /* h= unfolded */
    for (const char *p = strstr(out, "h=") + 2; *p != ';'; p++)
        if (*p != '\r' && *p != '\n' && *p != '\t' && *p != ' ')
            list[ln++] = *p;
    list[ln] = '\0';
    size_t n_to = 0;
    for (const char *p = list; (p = strstr(p, "to")) != NULL; p += 2)
        n_to++;
    assert_int_equal(n_to, tos);
    assert_true(strncmp(list, "from:from:to:", 13) == 0);
    free(list);
    free(out);
    free(msg);
    auth_dkim_signers_free(set);
}

static void test_keys(void **state)
{
    (void)state;
    char path[128], rec[1024];
    snprintf(path, sizeof path, "%s/rsa.pem", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(auth_dkim_key_record(rsa, rec, sizeof rec) > 0);
    assert_true(strncmp(rec, "v=DKIM1; k=rsa; p=MII", 21) == 0);
    assert_true(auth_dkim_key_record(ed, rec, sizeof rec) > 0);
    assert_true(strncmp(rec, "v=DKIM1; k=ed25519; p=", 22) == 0);
    assert_int_equal(strlen(rec), 22 + 44); /* the bare 32-octet key (RFC 8463 §4) */
    assert_int_equal(auth_dkim_key_record(ed, rec, 20), 0);
    struct auth_dkim_key *k = NULL;
    assert_int_equal(auth_dkim_key_load("/nonexistent/key.pem", &k), AUTH_ERR_IO);
    snprintf(path, sizeof path, "%s/junk.pem", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    assert_int_equal(auth_dkim_key_load(path, &k), AUTH_ERR_KEY);
    assert_null(k);
    unlink(path);
    assert_string_equal(auth_strerror(AUTH_ERR_NO_SIGNER), "no signing key for the From: domain");
    assert_string_equal(auth_strerror((enum auth_err)999), "unknown auth error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_hashes),
        cmocka_unit_test(test_signed_names),
        cmocka_unit_test(test_folding),
        cmocka_unit_test(test_signatures_verify),
        cmocka_unit_test(test_signers),
        cmocka_unit_test(test_many_fields),
        cmocka_unit_test(test_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
