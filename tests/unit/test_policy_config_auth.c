/* tests/unit/test_policy_config_auth.c — the dkim_sign directive (policy/config_auth.c): its
 * options, paths resolved against the config directory, every invalid form with its problem,
 * duplicates, and POLICY_DKIM_SIGN_MAX at limit and limit + 1; spf_check and dmarc_check,
 * globally and as mx listener options, with what applies to each listener. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/config.h"

static struct policy_problems problems;

static size_t load(const char *text, struct policy_config *c)
{
    return policy_config_load_buffer("/etc/clearmta/test.conf", text, strlen(text), c,
                                     &problems);
}

static void expect_problem(const char *text, const char *part)
{
    struct policy_config c;
    size_t n = load(text, &c);
    policy_config_free(&c);
    if (n != 1)
        fail_msg("expected 1 problem for '%s', got %zu", text, n);
    if (strstr(problems.items[0].message, part) == NULL)
        fail_msg("problem '%s' lacks '%s'", problems.items[0].message, part);
}

static void test_valid(void **state)
{
    (void)state;
    struct policy_config c;
    const char *text = "dkim_sign Example.TEST selector=s2026 key=keys/example.pem\n"
                       "dkim_sign other.example selector=a.b key=/k/o.pem "
                       "algorithm=ed25519-sha256 headers=from:to:subject\n";
    assert_int_equal(load(text, &c), 0);
    assert_int_equal(c.n_dkim_sign, 2);
    assert_string_equal(c.dkim_sign[0].domain, "example.test");
    assert_string_equal(c.dkim_sign[0].selector, "s2026");
    assert_string_equal(c.dkim_sign[0].key, "/etc/clearmta/keys/example.pem");
    assert_string_equal(c.dkim_sign[0].algorithm, "");
    assert_string_equal(c.dkim_sign[0].headers, "");
    assert_int_equal(c.dkim_sign[0].line, 1);
    assert_string_equal(c.dkim_sign[1].key, "/k/o.pem");
    assert_string_equal(c.dkim_sign[1].algorithm, "ed25519-sha256");
    assert_string_equal(c.dkim_sign[1].headers, "from:to:subject");
    policy_config_free(&c);
    assert_null(c.dkim_sign);
}

static void test_invalid(void **state)
{
    (void)state;
    expect_problem("dkim_sign\n", "dkim_sign takes a domain");
    expect_problem("dkim_sign not_a_domain! selector=s key=k\n", "dkim_sign takes a domain");
    expect_problem("dkim_sign example.test key=k\n", "selector= and key= are required");
    expect_problem("dkim_sign example.test selector=s\n", "selector= and key= are required");
    expect_problem("dkim_sign example.test selector=s key=k algorithm=rsa-sha1\n",
                   "'algorithm=rsa-sha1' is not");
    expect_problem("dkim_sign example.test selector=bad/sel key=k\n", "is not selector=S");
    expect_problem("dkim_sign example.test selector=s. key=k\n", "is not selector=S");
    expect_problem("dkim_sign example.test selector=s key=k headers=from::to\n",
                   "is not selector=S");
    expect_problem("dkim_sign example.test selector=s key=k headers=\n", "is not selector=S");
    expect_problem("dkim_sign example.test selector=s key=k l=10\n", "is not selector=S");
    expect_problem("dkim_sign example.test selector=s key=k\n"
                   "dkim_sign EXAMPLE.test selector=t key=k\n",
                   "example.test already has a key on line 1");
}

static void test_selector_label_lengths(void **state)
{
    (void)state;
    char text[256], label[70];
    struct policy_config c;
    memset(label, 'a', 63);
    label[63] = '\0';
    snprintf(text, sizeof text, "dkim_sign example.test selector=%s key=k\n", label);
    assert_int_equal(load(text, &c), 0); /* a label of 63 octets: the DNS maximum */
    policy_config_free(&c);
    memset(label, 'a', 64);
    label[64] = '\0';
    snprintf(text, sizeof text, "dkim_sign example.test selector=%s key=k\n", label);
    expect_problem(text, "is not selector=S");
}

static void test_domain_limit(void **state)
{
    (void)state;
    size_t cap = (POLICY_DKIM_SIGN_MAX + 1) * 64, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (unsigned i = 0; i < POLICY_DKIM_SIGN_MAX; i++)
        len += (size_t)snprintf(text + len, cap - len, "dkim_sign d%u.example selector=s key=k\n",
                                i);
    struct policy_config c;
    assert_int_equal(load(text, &c), 0);
    assert_int_equal(c.n_dkim_sign, POLICY_DKIM_SIGN_MAX);
    policy_config_free(&c);
    snprintf(text + len, cap - len, "dkim_sign one-more.example selector=s key=k\n");
    expect_problem(text, "more than 256 domains (POLICY_DKIM_SIGN_MAX)");
    free(text);
}

static void test_checks(void **state)
{
    (void)state;
    struct policy_config c;
    assert_int_equal(load("", &c), 0);
    /* off unless configured: no DNS look-ups from a default setup */
    assert_int_equal(policy_listener_spf_check(&c, &c.listeners[0]), POLICY_SPF_OFF);
    assert_int_equal(policy_listener_dmarc_check(&c, &c.listeners[0]), POLICY_DMARC_OFF);
    policy_config_free(&c);
    const char *text = "spf_check tag\ndmarc_check enforce\n"
                       "listen mx 127.0.0.1:25\n"
                       "listen mx 127.0.0.1:26 spf_check=reject dmarc_check=off\n"
                       "listen submission 127.0.0.1:587\n";
    assert_int_equal(load(text, &c), 0);
    assert_int_equal(policy_listener_spf_check(&c, &c.listeners[0]), POLICY_SPF_TAG);
    assert_int_equal(policy_listener_dmarc_check(&c, &c.listeners[0]), POLICY_DMARC_ENFORCE);
    assert_int_equal(policy_listener_spf_check(&c, &c.listeners[1]), POLICY_SPF_REJECT);
    assert_int_equal(policy_listener_dmarc_check(&c, &c.listeners[1]), POLICY_DMARC_OFF);
    assert_int_equal(policy_listener_spf_check(&c, &c.listeners[2]), POLICY_SPF_OFF);
    assert_int_equal(policy_listener_dmarc_check(&c, &c.listeners[2]), POLICY_DMARC_OFF);
    assert_string_equal(policy_spf_check_name(c.listeners[1].spf_check), "reject");
    assert_string_equal(policy_dmarc_check_name(c.listeners[0].dmarc_check), "inherit");
    assert_string_equal(policy_dmarc_check_name(c.dmarc_check), "enforce");
    policy_config_free(&c);
    expect_problem("spf_check\n", "spf_check");
    expect_problem("spf_check enforce\n", "spf_check takes off, tag or reject, not 'enforce'");
    expect_problem("dmarc_check reject\n", "dmarc_check takes off, tag or enforce");
    expect_problem("spf_check tag\nspf_check off\n", "already set");
    expect_problem("listen mx 127.0.0.1:25 spf_check=maybe\n", "spf_check= takes off");
    expect_problem("listen submission 127.0.0.1:587 dmarc_check=tag\n", "mx listeners only");
    expect_problem("listen submissions 127.0.0.1:465 spf_check=tag\n", "mx listeners only");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_selector_label_lengths),
        cmocka_unit_test(test_domain_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
