/* tests/unit/test_auth_dkim_verify.c — DKIM verification (auth/dkim_verify.c) of messages
 * signed by auth/dkim_sign.c: pass, tampered body and header, every DNS answer (NXDOMAIN,
 * no TXT, SERVFAIL, unusable records), rsa-sha1 and malformed tags decided without DNS, x=,
 * i=, and AUTH_DKIM_SIGS_MAX. Outside signers are the integration test's (dkimpy). */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/dkim_key.h"
#include "auth/dkim_sign.h"
#include "auth/dkim_verify.h"

static char dir[] = "/tmp/clearmta-dkimv-XXXXXX";
static struct auth_dkim_key *ed, *rsa;
static char ed_rec[1024], rsa_rec[1024];

static const char *MSG = "From: A <a@example.test>\r\nTo: b@example.test\r\nSubject: s\r\n"
                         "\r\nbody line\r\n";

static int setup(void **state)
{
    (void)state;
    char path[128];
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/ed.pem", dir);
    if (auth_dkim_key_generate(AUTH_DKIM_ED25519_SHA256, path, &ed) != AUTH_OK)
        return -1;
    unlink(path);
    snprintf(path, sizeof path, "%s/rsa.pem", dir);
    if (auth_dkim_key_generate(AUTH_DKIM_RSA_SHA256, path, &rsa) != AUTH_OK)
        return -1;
    unlink(path);
    rmdir(dir);
    return auth_dkim_key_record(ed, ed_rec, sizeof ed_rec) && auth_dkim_key_record(rsa, rsa_rec,
                                                                                    sizeof rsa_rec)
               ? 0
               : -1;
}

static int teardown(void **state)
{
    (void)state;
    auth_dkim_key_free(ed);
    auth_dkim_key_free(rsa);
    return 0;
}

/* sig + msg, malloc'd. */
static char *signed_msg(const struct auth_dkim_key *k, const char *msg)
{
    struct auth_dkim_signer s = {.domain = "example.test", .selector = "sel", .key = k};
    char *sig = NULL, *out;
    size_t len = 0;
    assert_int_equal(auth_dkim_sign(&s, msg, strlen(msg), 1700000000, &sig, &len), AUTH_OK);
    out = malloc(len + strlen(msg) + 1);
    memcpy(out, sig, len);
    memcpy(out + len, msg, strlen(msg) + 1);
    free(sig);
    return out;
}

static void replace(char *s, const char *old, const char *new_)
{
    char *p = strstr(s, old);
    assert_non_null(p);
    assert_int_equal(strlen(old), strlen(new_));
    memcpy(p, new_, strlen(new_));
}

/* Verifies m answering the key query with (st, record); returns the result. */
static enum auth_dkim_result check(const char *m, enum auth_dns_status st, const char *record,
                                   const char **reason)
{
    struct auth_dkim_verify *v = NULL;
    assert_int_equal(auth_dkim_verify_new(m, strlen(m), 1700000000, &v), AUTH_OK);
    assert_int_equal(auth_dkim_verify_count(v), 1);
    const char *q = auth_dkim_verify_key_query(v, 0);
    if (q != NULL) {
        assert_string_equal(q, "sel._domainkey.example.test");
        assert_int_equal(auth_dkim_verify_result(v, 0)->result, AUTH_DKIM_TEMPERROR);
        size_t len = record ? strlen(record) : 0;
        auth_dkim_verify_key_answer(v, 0, st, record ? &record : NULL, &len, record ? 1 : 0);
        assert_null(auth_dkim_verify_key_query(v, 0)); /* answered once */
    }
    const struct auth_dkim_sig_result *r = auth_dkim_verify_result(v, 0);
    enum auth_dkim_result res = r->result;
    if (reason != NULL)
        *reason = r->reason;
    auth_dkim_verify_free(v);
    return res;
}

static void test_pass_and_tampering(void **state)
{
    (void)state;
    const char *why = NULL;
    for (int k = 0; k < 2; k++) {
        const char *rec = k ? rsa_rec : ed_rec;
        char *m = signed_msg(k ? rsa : ed, MSG);
        assert_int_equal(check(m, AUTH_DNS_OK, rec, &why), AUTH_DKIM_PASS);
        replace(m, "body line", "body LINE");
        assert_int_equal(check(m, AUTH_DNS_OK, rec, &why), AUTH_DKIM_FAIL);
        assert_string_equal(why, "body hash mismatch");
        replace(m, "body LINE", "body line");
        replace(m, "Subject: s", "Subject: t");
        assert_int_equal(check(m, AUTH_DNS_OK, rec, &why), AUTH_DKIM_FAIL);
        assert_string_equal(why, "signature does not verify");
        free(m);
    }
}

static void test_dns_answers(void **state)
{
    (void)state;
    const char *why = NULL;
    char *m = signed_msg(ed, MSG);
    assert_int_equal(check(m, AUTH_DNS_NXDOMAIN, NULL, &why), AUTH_DKIM_PERMERROR);
    assert_int_equal(check(m, AUTH_DNS_NODATA, NULL, &why), AUTH_DKIM_PERMERROR);
    assert_int_equal(check(m, AUTH_DNS_TEMPFAIL, NULL, &why), AUTH_DKIM_TEMPERROR);
    assert_int_equal(check(m, AUTH_DNS_OK, "v=DKIM1; k=ed25519; p=", &why), AUTH_DKIM_PERMERROR);
    assert_string_equal(why, "key revoked (empty p=)");
    assert_int_equal(check(m, AUTH_DNS_OK, rsa_rec, &why), AUTH_DKIM_PERMERROR);
    assert_int_equal(check(m, AUTH_DNS_OK, "p=abc; v=DKIM1", &why), AUTH_DKIM_PERMERROR);
    assert_int_equal(check(m, AUTH_DNS_OK, "v=DKIM1; k=ed25519; p=!!!!", &why),
                     AUTH_DKIM_PERMERROR);
    assert_int_equal(check(m, AUTH_DNS_OK, "v=DKIM1; k=ed25519; p=AAAA", &why),
                     AUTH_DKIM_PERMERROR); /* 3 octets, not a 32-octet key */
    char rec[1100];
    snprintf(rec, sizeof rec, "%s; h=sha1", ed_rec);
    assert_int_equal(check(m, AUTH_DNS_OK, rec, &why), AUTH_DKIM_PERMERROR);
    snprintf(rec, sizeof rec, "%s; s=email; t=y:s", ed_rec);
    assert_int_equal(check(m, AUTH_DNS_OK, rec, &why), AUTH_DKIM_PASS);
    free(m);
}

static void test_decided_without_dns(void **state)
{
    (void)state;
    const char *why = NULL;
    char *m = signed_msg(rsa, MSG);
    replace(m, "a=rsa-sha256;", "a=rsa-sha1;  ");
    assert_int_equal(check(m, AUTH_DNS_OK, rsa_rec, &why), AUTH_DKIM_PERMERROR);
    assert_string_equal(why, "rsa-sha1 is not acceptable (RFC 8301)");
    free(m);
    m = signed_msg(ed, MSG);
    replace(m, "v=1;", "v=2;");
    assert_int_equal(check(m, AUTH_DNS_OK, ed_rec, NULL), AUTH_DKIM_PERMERROR);
    free(m);
    m = signed_msg(ed, MSG);
    replace(m, "h=from:from:", "h=date:date:");
    assert_int_equal(check(m, AUTH_DNS_OK, ed_rec, &why), AUTH_DKIM_PERMERROR);
    assert_string_equal(why, "From: is not signed");
    free(m);
    m = signed_msg(ed, MSG);
    replace(m, "t=1700000000;", "x=1600000000;");
    assert_int_equal(check(m, AUTH_DNS_OK, ed_rec, &why), AUTH_DKIM_PERMERROR);
    assert_string_equal(why, "signature expired");
    free(m);
    m = signed_msg(ed, MSG);
    replace(m, "t=1700000000;", "i=a@other.xy;");
    assert_int_equal(check(m, AUTH_DNS_OK, ed_rec, &why), AUTH_DKIM_PERMERROR);
    assert_string_equal(why, "i= is not within d=");
    free(m);
    m = signed_msg(ed, MSG);
    replace(m, "c=relaxed/relaxed;", "c=relaxed/bogus!!;");
    assert_int_equal(check(m, AUTH_DNS_OK, ed_rec, &why), AUTH_DKIM_PERMERROR);
    free(m);
}

static void test_unsigned_and_many(void **state)
{
    (void)state;
    struct auth_dkim_verify *v = NULL;
    assert_int_equal(auth_dkim_verify_new(MSG, strlen(MSG), 0, &v), AUTH_OK);
    assert_int_equal(auth_dkim_verify_count(v), 0);
    assert_null(auth_dkim_verify_key_query(v, 0));
    assert_null(auth_dkim_verify_result(v, 0));
    auth_dkim_verify_free(v);
    char *m = signed_msg(ed, MSG);
    size_t one = strlen(m) - strlen(MSG), cap = one * (AUTH_DKIM_SIGS_MAX + 1) + strlen(MSG) + 1;
    char *many = malloc(cap);
    size_t len = 0;
    for (unsigned i = 0; i <= AUTH_DKIM_SIGS_MAX; i++, len += one)
        memcpy(many + len, m, one);
    memcpy(many + len, MSG, strlen(MSG) + 1);
    assert_int_equal(auth_dkim_verify_new(many, strlen(many), 0, &v), AUTH_OK);
    assert_int_equal(auth_dkim_verify_count(v), AUTH_DKIM_SIGS_MAX);
    auth_dkim_verify_free(v);
    free(many);
    free(m);
    assert_string_equal(auth_dkim_result_name(AUTH_DKIM_NEUTRAL), "neutral");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass_and_tampering),
        cmocka_unit_test(test_dns_answers),
        cmocka_unit_test(test_decided_without_dns),
        cmocka_unit_test(test_unsigned_and_many),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
