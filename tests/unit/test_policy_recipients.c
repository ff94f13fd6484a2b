/* tests/unit/test_policy_recipients.c — RCPT lookup: case folding, quoted local parts,
 * postmaster, catch-all, literals, unsafe mailbox names, large domains. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/config.h"
#include "policy/recipients.h"

static const char contract[] = "domain example.test users alice bob postmaster\n"
                               "domain NoPm.test users carol\n"
                               "domain catch.test catch-all Sink\n"
                               "domain utf8.test users j\xc3\xb6s\xc3\xa9\n"
                               "domain [192.0.2.1] users lit\n"
                               "domain [IPv6:2001:db8::1] users lit6\n"
                               "domain lmtp.test lmtp unix:/run/lmtp\n"
                               "domain lmtpusers.test lmtp [127.0.0.1]:24\n"
                               "domain lmtpusers.test users dan\n";

static int setup(void **state)
{
    struct policy_config *c = malloc(sizeof *c);
    if (c == NULL)
        return -1;
    size_t n = policy_config_load_buffer("t", contract, sizeof contract - 1, c, NULL);
    *state = c;
    return n == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    policy_config_free(*state);
    free(*state);
    return 0;
}

/* Looks up local@domain and checks the result and, when local, the mailbox. */
static void expect_rcpt(const struct policy_config *c, const char *local, const char *domain,
                        enum policy_rcpt_result want, const char *mailbox)
{
    char out[POLICY_MAILBOX_CAP] = "untouched";
    enum policy_rcpt_result got = policy_rcpt_lookup(c, local, domain, out, sizeof out);
    if (got != want)
        fail_msg("%s@%s: got %d, want %d", local, domain ? domain : "(none)", got, want);
    assert_string_equal(out, want == POLICY_RCPT_LOCAL ? mailbox : "untouched");
}

static void test_contract_users(void **state)
{
    const struct policy_config *c = *state;
    expect_rcpt(c, "alice", "example.test", POLICY_RCPT_LOCAL, "alice");
    expect_rcpt(c, "bob", "example.test", POLICY_RCPT_LOCAL, "bob");
    expect_rcpt(c, "postmaster", "example.test", POLICY_RCPT_LOCAL, "postmaster");
    expect_rcpt(c, "carol", "example.test", POLICY_RCPT_UNKNOWN_USER, NULL);
    expect_rcpt(c, "alic", "example.test", POLICY_RCPT_UNKNOWN_USER, NULL);
    expect_rcpt(c, "alicee", "example.test", POLICY_RCPT_UNKNOWN_USER, NULL);
    expect_rcpt(c, "alice", "other.test", POLICY_RCPT_NOT_LOCAL, NULL);
    expect_rcpt(c, "alice", "example.test.evil", POLICY_RCPT_NOT_LOCAL, NULL);
    expect_rcpt(c, "alice", "test", POLICY_RCPT_NOT_LOCAL, NULL);
}

/* An LMTP domain takes any local part (the LMTP server has the last word), or with users
 * listed those and postmaster; never a Maildir mailbox. */
static void test_lmtp_domain(void **state)
{
    const struct policy_config *c = *state;
    expect_rcpt(c, "anyone", "lmtp.test", POLICY_RCPT_LMTP, NULL);
    expect_rcpt(c, "\"Q\"", "LMTP.test", POLICY_RCPT_LMTP, NULL);
    expect_rcpt(c, "postmaster", "lmtp.test", POLICY_RCPT_LMTP, NULL);
    expect_rcpt(c, "../x", "lmtp.test", POLICY_RCPT_UNKNOWN_USER, NULL);
    expect_rcpt(c, "Dan", "lmtpusers.test", POLICY_RCPT_LMTP, NULL);
    expect_rcpt(c, "postmaster", "lmtpusers.test", POLICY_RCPT_LMTP, NULL);
    expect_rcpt(c, "eve", "lmtpusers.test", POLICY_RCPT_UNKNOWN_USER, NULL);
    assert_true(policy_domain_is_local(c, "lmtp.test"));
}

static void test_case_folding(void **state)
{
    const struct policy_config *c = *state;
    expect_rcpt(c, "ALICE", "EXAMPLE.TEST", POLICY_RCPT_LOCAL, "alice");
    expect_rcpt(c, "aLiCe", "Example.Test", POLICY_RCPT_LOCAL, "alice");
    expect_rcpt(c, "PostMaster", "example.TEST", POLICY_RCPT_LOCAL, "postmaster");
    expect_rcpt(c, "carol", "NOPM.TEST", POLICY_RCPT_LOCAL, "carol");
    /* non-ASCII octets compare exactly; only ASCII letters fold */
    expect_rcpt(c, "J\xc3\xb6S\xc3\xa9", "utf8.test", POLICY_RCPT_LOCAL, "j\xc3\xb6s\xc3\xa9");
    expect_rcpt(c, "j\xc3\x96s\xc3\xa9", "utf8.test", POLICY_RCPT_UNKNOWN_USER, NULL);
}

static void test_quoted_local_parts(void **state)
{
    const struct policy_config *c = *state;
    expect_rcpt(c, "\"bob\"", "example.test", POLICY_RCPT_LOCAL, "bob");
    expect_rcpt(c, "\"BoB\"", "example.test", POLICY_RCPT_LOCAL, "bob");
    expect_rcpt(c, "\"b\\ob\"", "example.test", POLICY_RCPT_LOCAL, "bob");
    expect_rcpt(c, "\"\\p\\o\\s\\t\\m\\a\\s\\t\\e\\r\"", "example.test", POLICY_RCPT_LOCAL,
                "postmaster");
    expect_rcpt(c, "\"bob \"", "example.test", POLICY_RCPT_UNKNOWN_USER, NULL);
    expect_rcpt(c, "\"\"", "example.test", POLICY_RCPT_UNKNOWN_USER, NULL);
    expect_rcpt(c, "\"bob\\\"", "example.test", POLICY_RCPT_UNKNOWN_USER, NULL);
    expect_rcpt(c, "\"b\"ob\"", "example.test", POLICY_RCPT_UNKNOWN_USER, NULL);
    expect_rcpt(c, "\"", "example.test", POLICY_RCPT_UNKNOWN_USER, NULL);
    expect_rcpt(c, "\"bob", "example.test", POLICY_RCPT_UNKNOWN_USER, NULL);
}

static void test_postmaster(void **state)
{
    const struct policy_config *c = *state;
    /* RFC 5321 §4.5.1: postmaster resolves for every local domain, listed or not */
    expect_rcpt(c, "postmaster", "nopm.test", POLICY_RCPT_LOCAL, "postmaster");
    expect_rcpt(c, "POSTMASTER", "[192.0.2.1]", POLICY_RCPT_LOCAL, "postmaster");
    /* the bare <postmaster> of §4.1.1.3 */
    expect_rcpt(c, "postmaster", NULL, POLICY_RCPT_LOCAL, "postmaster");
    expect_rcpt(c, "Postmaster", "", POLICY_RCPT_LOCAL, "postmaster");
    expect_rcpt(c, "alice", NULL, POLICY_RCPT_UNKNOWN_USER, NULL);
    expect_rcpt(c, "alice", "", POLICY_RCPT_UNKNOWN_USER, NULL);
    /* but not for other domains */
    expect_rcpt(c, "postmaster", "other.test", POLICY_RCPT_NOT_LOCAL, NULL);
}

static void test_catch_all(void **state)
{
    const struct policy_config *c = *state;
    expect_rcpt(c, "anyone", "catch.test", POLICY_RCPT_LOCAL, "sink");
    expect_rcpt(c, "postmaster", "catch.test", POLICY_RCPT_LOCAL, "sink");
    expect_rcpt(c, "\"odd one\"", "CATCH.test", POLICY_RCPT_LOCAL, "sink");
    /* the embedded default */
    expect_rcpt(c, "root", "localhost", POLICY_RCPT_LOCAL, "postmaster");
    /* unsafe names are refused even where every name is accepted */
    expect_rcpt(c, "../x", "catch.test", POLICY_RCPT_UNKNOWN_USER, NULL);
}

static void test_unsafe_names(void **state)
{
    const struct policy_config *c = *state;
    const char *bad[] = {"../alice", ".alice", "a/b", "\"a/b\"", "\"..\"", "\".\"",
                         "\"a\\\x01b\"", "a\x7f", "\"\\/\"", "\"a\tb\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_rcpt(c, bad[i], "example.test", POLICY_RCPT_UNKNOWN_USER, NULL);
        expect_rcpt(c, bad[i], "catch.test", POLICY_RCPT_UNKNOWN_USER, NULL);
    }
    expect_rcpt(c, "", "catch.test", POLICY_RCPT_UNKNOWN_USER, NULL);
    expect_rcpt(c, NULL, "catch.test", POLICY_RCPT_UNKNOWN_USER, NULL);
    /* a dot inside is fine */
    expect_rcpt(c, "a.b", "catch.test", POLICY_RCPT_LOCAL, "sink");
}

static void test_length_limits(void **state)
{
    const struct policy_config *c = *state;
    char local[LIMIT_LOCAL_PART + 4];
    memset(local, 'x', LIMIT_LOCAL_PART);
    local[LIMIT_LOCAL_PART] = '\0';
    expect_rcpt(c, local, "catch.test", POLICY_RCPT_LOCAL, "sink");
    local[LIMIT_LOCAL_PART] = 'x';
    local[LIMIT_LOCAL_PART + 1] = '\0';
    expect_rcpt(c, local, "catch.test", POLICY_RCPT_UNKNOWN_USER, NULL);
    /* quoted: the quotes do not count */
    local[0] = '"';
    local[LIMIT_LOCAL_PART + 1] = '"';
    local[LIMIT_LOCAL_PART + 2] = '\0';
    expect_rcpt(c, local, "catch.test", POLICY_RCPT_LOCAL, "sink");
    char dom[LIMIT_DOMAIN + 8];
    memset(dom, 'd', sizeof dom - 1);
    dom[sizeof dom - 1] = '\0';
    expect_rcpt(c, "alice", dom, POLICY_RCPT_NOT_LOCAL, NULL);
}

static void test_small_out_buffer(void **state)
{
    const struct policy_config *c = *state;
    char out[4] = "xyz";
    assert_int_equal(policy_rcpt_lookup(c, "alice", "example.test", out, sizeof out),
                     POLICY_RCPT_UNKNOWN_USER);
    assert_string_equal(out, "xyz");
    char fits[4];
    assert_int_equal(policy_rcpt_lookup(c, "bob", "example.test", fits, sizeof fits),
                     POLICY_RCPT_LOCAL);
    assert_string_equal(fits, "bob");
}

static void test_literals(void **state)
{
    const struct policy_config *c = *state;
    expect_rcpt(c, "lit", "[192.0.2.1]", POLICY_RCPT_LOCAL, "lit");
    expect_rcpt(c, "lit", "[192.0.2.2]", POLICY_RCPT_NOT_LOCAL, NULL);
    expect_rcpt(c, "lit6", "[IPv6:2001:DB8:0:0:0:0:0:1]", POLICY_RCPT_LOCAL, "lit6");
    expect_rcpt(c, "lit6", "[ipv6:2001:db8::1]", POLICY_RCPT_LOCAL, "lit6");
    expect_rcpt(c, "lit6", "[2001:db8::1]", POLICY_RCPT_NOT_LOCAL, NULL);
    expect_rcpt(c, "lit", "[192.0.2.1", POLICY_RCPT_NOT_LOCAL, NULL);
    expect_rcpt(c, "lit", "[x-tag:stuff]", POLICY_RCPT_NOT_LOCAL, NULL);
    expect_rcpt(c, "lit", "192.0.2.1", POLICY_RCPT_NOT_LOCAL, NULL);
}

static void test_domain_is_local(void **state)
{
    const struct policy_config *c = *state;
    assert_true(policy_domain_is_local(c, "example.test"));
    assert_true(policy_domain_is_local(c, "EXAMPLE.test"));
    assert_true(policy_domain_is_local(c, "localhost"));
    assert_true(policy_domain_is_local(c, "[IPv6:2001:db8:0::1]"));
    assert_false(policy_domain_is_local(c, "example"));
    assert_false(policy_domain_is_local(c, ""));
    assert_false(policy_domain_is_local(c, NULL));
    assert_false(policy_domain_is_local(c, "[]"));
}

static void test_helpers(void **state)
{
    (void)state;
    char out[LIMIT_DOMAIN + 1];
    assert_true(policy_domain_canonical("Mx.EXAMPLE.Test", out, sizeof out));
    assert_string_equal(out, "mx.example.test");
    assert_true(policy_domain_canonical("[IPV6:0:0::1]", out, sizeof out));
    assert_string_equal(out, "[IPv6:::1]");
    assert_false(policy_domain_canonical("[010.0.0.1]", out, sizeof out)); /* octal-looking */
    assert_false(policy_domain_canonical("[1.2.3.4]", out, 9));
    assert_true(policy_domain_canonical("[1.2.3.4]", out, 10));
    assert_false(policy_domain_canonical("abc", out, 3));
    assert_true(policy_mailbox_name_safe("a", 1));
    assert_true(policy_mailbox_name_safe("a..b", 4));
    assert_false(policy_mailbox_name_safe("", 0));
    assert_false(policy_mailbox_name_safe(".", 1));
    assert_false(policy_mailbox_name_safe("a\0b", 3));
    assert_false(policy_mailbox_name_safe("a/", 2));
}

static void test_thousands_of_users(void **state)
{
    (void)state;
    enum { USERS = 20000 };
    size_t cap = (size_t)USERS * 24 + 64;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = 0;
    /* many domain lines for one domain add up; 100 users a line keeps lines short */
    for (int i = 0; i < USERS; i++) {
        if (i % 100 == 0)
            n += (size_t)snprintf(text + n, cap - n, "%sdomain big.test users", i ? "\n" : "");
        n += (size_t)snprintf(text + n, cap - n, " User%05d", (i * 7919) % USERS);
    }
    struct policy_config c;
    assert_int_equal(policy_config_load_buffer("t", text, n, &c, NULL), 0);
    free(text);
    assert_int_equal(c.n_domains, 2);
    char local[16], out[POLICY_MAILBOX_CAP];
    for (int i = 0; i < USERS; i++) {
        snprintf(local, sizeof local, "USER%05d", i);
        assert_int_equal(policy_rcpt_lookup(&c, local, "big.test", out, sizeof out),
                         POLICY_RCPT_LOCAL);
    }
    assert_int_equal(policy_rcpt_lookup(&c, "user20000", "big.test", out, sizeof out),
                     POLICY_RCPT_UNKNOWN_USER);
    policy_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contract_users),
        cmocka_unit_test(test_lmtp_domain),
        cmocka_unit_test(test_case_folding),
        cmocka_unit_test(test_quoted_local_parts),
        cmocka_unit_test(test_postmaster),
        cmocka_unit_test(test_catch_all),
        cmocka_unit_test(test_unsafe_names),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_small_out_buffer),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_domain_is_local),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_thousands_of_users),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
