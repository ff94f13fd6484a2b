/* tests/unit/test_policy_users.c — AUTH users file: parsing and problems per line, hash kinds,
 * verification (right, wrong, unknown user, crypt failure), sender ownership. Hashes use cheap
 * settings ($6$rounds=1000, $y$ cost 1, bcrypt cost 4) so the tests stay fast. */
#include "unit.h"

#include <crypt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/config.h"
#include "policy/users.h"

/* openssl passwd -6 -salt aliceSalt0123456 alice-secret (5000 rounds, the default). */
#define ALICE_HASH "$6$aliceSalt0123456$8QyOFYChiWIYio8PSFPLSWfKCx3Z29wp8dBaxfUweEfrldvqB2L7." \
                   "qJsadR1LMx5DxAodRN4sBR7B5lcsMnsF0"

struct reported {
    unsigned lines[64];
    char messages[64][256];
    size_t n;
};

static void report(void *ctx, unsigned line, const char *message)
{
    struct reported *r = ctx;
    if (r->n < 64) {
        r->lines[r->n] = line;
        snprintf(r->messages[r->n], sizeof r->messages[0], "%s", message);
    }
    r->n++;
}

/* crypt_rn(pass, setting) into out: the tests' own hashes. */
static void make_hash(const char *pass, const char *setting, char *out, size_t cap)
{
    struct crypt_data *cd = calloc(1, sizeof *cd);
    assert_non_null(cd);
    const char *h = crypt_rn(pass, setting, cd, sizeof *cd);
    bool ok = h != NULL && h[0] != '*' && strlen(h) < cap;
    if (ok)
        memcpy(out, h, strlen(h) + 1);
    free(cd);
    if (!ok)
        fail_msg("crypt_rn failed for setting %s", setting);
}

static struct policy_users *load_ok(const char *text)
{
    struct reported r = {0};
    struct policy_users *u = NULL;
    size_t n = policy_users_load_buffer(text, strlen(text), report, &r, &u);
    if (n != 0)
        fail_msg("line %u: %s", r.lines[0], r.messages[0]);
    assert_non_null(u);
    return u;
}

/* Loads text expecting exactly one problem, on line; returns its message. */
static const char *load_one_problem(const char *text, unsigned line)
{
    static struct reported r;
    memset(&r, 0, sizeof r);
    struct policy_users *u = NULL;
    size_t n = policy_users_load_buffer(text, strlen(text), report, &r, &u);
    policy_users_free(u);
    if (n != 1 || r.n != 1)
        fail_msg("expected 1 problem for '%s', got %zu (first: %s)", text, n,
                 r.n ? r.messages[0] : "none");
    assert_int_equal(r.lines[0], line);
    return r.messages[0];
}

static void expect_contains(const char *message, const char *part)
{
    if (strstr(message, part) == NULL)
        fail_msg("message '%s' lacks '%s'", message, part);
}

/* ---- parsing ---- */

static void test_parse_valid(void **state)
{
    (void)state;
    char text[2048];
    snprintf(text, sizeof text,
             "# the users of example.test\r\n"
             "\n"
             "alice:%s\n"
             "  Bob.Smith+x_y-z:%s:bob@example.test,B.Smith@Example.ORG  \r\n"
             "\t# indented comment\n"
             "carol@example.net:%s\n"
             "dave:%s:dave@[192.0.2.1],d@[IPv6:2001:DB8::1]",
             ALICE_HASH, ALICE_HASH, ALICE_HASH, ALICE_HASH);
    struct policy_users *u = load_ok(text);
    assert_int_equal(policy_users_count(u), 4);
    assert_string_equal(policy_users_name(u, "alice"), "alice");
    assert_string_equal(policy_users_name(u, "ALICE"), "alice");
    assert_string_equal(policy_users_name(u, "bob.smith+X_y-z"), "bob.smith+x_y-z");
    assert_string_equal(policy_users_name(u, "Carol@Example.NET"), "carol@example.net");
    assert_null(policy_users_name(u, "bob"));
    assert_null(policy_users_name(u, ""));
    policy_users_free(u);

    u = load_ok("");
    assert_int_equal(policy_users_count(u), 0);
    assert_null(policy_users_name(u, "alice"));
    policy_users_free(u);
    policy_users_free(NULL);
    assert_int_equal(policy_users_count(NULL), 0);
    assert_null(policy_users_name(NULL, "alice"));
}

static void test_hash_kinds(void **state)
{
    (void)state;
    char y[CRYPT_OUTPUT_SIZE], five[CRYPT_OUTPUT_SIZE], six[CRYPT_OUTPUT_SIZE],
        bf[CRYPT_OUTPUT_SIZE], text[4096];
    make_hash("pw-y", "$y$j75$Pn9nlOgoD/UtX0YVAdpvk1", y, sizeof y);
    make_hash("pw-5", "$5$rounds=1000$saltsaltsalt", five, sizeof five);
    make_hash("pw-6", "$6$rounds=1000$saltsaltsalt", six, sizeof six);
    make_hash("pw-2b", "$2b$04$abcdefghijklmnopqrstuu", bf, sizeof bf);
    snprintf(text, sizeof text, "y:%s\nfive:%s\nsix:%s\nbf:%s\n", y, five, six, bf);
    struct policy_users *u = load_ok(text);
    assert_int_equal(policy_users_count(u), 4);
    assert_int_equal(policy_users_verify(u, "y", "pw-y"), POLICY_AUTH_OK);
    assert_int_equal(policy_users_verify(u, "five", "pw-5"), POLICY_AUTH_OK);
    assert_int_equal(policy_users_verify(u, "six", "pw-6"), POLICY_AUTH_OK);
    assert_int_equal(policy_users_verify(u, "bf", "pw-2b"), POLICY_AUTH_OK);
    assert_int_equal(policy_users_verify(u, "y", "pw-5"), POLICY_AUTH_BAD);
    assert_int_equal(policy_users_verify(u, "bf", "pw-2B"), POLICY_AUTH_BAD);
    policy_users_free(u);
}

static void test_bad_hashes(void **state)
{
    (void)state;
    char six[CRYPT_OUTPUT_SIZE], text[1024];
    make_hash("pw", "$6$rounds=1000$saltsaltsalt", six, sizeof six);
    const char *unsupported[] = {
        "x:$1$abcdefgh$0123456789abcdefghijkl", /* MD5-crypt */
        "x:abJnggxhB/yWI",                     /* DES */
        "x:$2a$04$abcdefghijklmnopqrstuu0123456789012345678901234567890",
        "x:*", "x:!", "x:", "x:plaintext-password", "x:$7$whatever",
    };
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        expect_contains(load_one_problem(unsupported[i], 1), "not a supported crypt(3) hash");
    /* truncated: the digest lost a character, or only the salt is there */
    snprintf(text, sizeof text, "x:%.*s", (int)strlen(six) - 1, six);
    expect_contains(load_one_problem(text, 1), "incomplete");
    expect_contains(load_one_problem("x:$6$saltsaltsalt", 1), "incomplete");
    expect_contains(load_one_problem("x:$6$saltsaltsalt$", 1), "incomplete");
    expect_contains(load_one_problem("x:$y$j9T$", 1), "incomplete");
    /* a character no hash has */
    snprintf(text, sizeof text, "x:%s", six);
    text[20] = '!';
    expect_contains(load_one_problem(text, 1), "characters");
    /* the hash is never quoted in a problem */
    snprintf(text, sizeof text, "x:%.*s", (int)strlen(six) - 1, six);
    assert_null(strstr(load_one_problem(text, 1), "saltsalt"));
    /* far too long */
    char longhash[600];
    memset(longhash, 'a', sizeof longhash);
    memcpy(longhash, "x:$6$", 5);
    longhash[sizeof longhash - 1] = '\0';
    expect_contains(load_one_problem(longhash, 1), "characters");
}

static void test_bad_lines(void **state)
{
    (void)state;
    char text[8192];
    const char *syntax[] = {"alice", "alice " ALICE_HASH, "alice :" ALICE_HASH,
                            "alice: " ALICE_HASH, "alice:" ALICE_HASH " bob@x.test"};
    for (size_t i = 0; i < sizeof syntax / sizeof syntax[0]; i++)
        expect_contains(load_one_problem(syntax[i], 1), "USER:HASH");
    const char *names[] = {":" ALICE_HASH, "al/ice:" ALICE_HASH, "al\"ice:" ALICE_HASH,
                           "j\xc3\xbcrgen:" ALICE_HASH, "@x.test:" ALICE_HASH,
                           "a@:" ALICE_HASH, "a@b@c:" ALICE_HASH, "a,b:" ALICE_HASH};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        expect_contains(load_one_problem(names[i], 1), "user name");
    const char *addrs[] = {"a:" ALICE_HASH ":", "a:" ALICE_HASH ":bob", "a:" ALICE_HASH ":@x.test",
                           "a:" ALICE_HASH ":b@", "a:" ALICE_HASH ":b@x.test,",
                           "a:" ALICE_HASH ":b@-x.test", "a:" ALICE_HASH ":\"b\"@x.test",
                           "a:" ALICE_HASH ":b@[300.1.1.1]", "a:" ALICE_HASH ":b@x.test:c@x.test"};
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++)
        expect_contains(load_one_problem(addrs[i], 1), "address");
    /* duplicates, case-insensitively, naming the first line */
    expect_contains(load_one_problem("alice:" ALICE_HASH "\n#\nALICE:" ALICE_HASH "\n", 3),
                    "already listed on line 1");
    /* control characters and NUL */
    expect_contains(load_one_problem("ok:" ALICE_HASH "\nal\x01ice:" ALICE_HASH, 2), "0x01");
    static const char nul[] = "al\0ice:x\n";
    struct reported r = {0};
    struct policy_users *u;
    assert_int_equal(policy_users_load_buffer(nul, sizeof nul - 1, report, &r, &u), 1);
    expect_contains(r.messages[0], "0x00");
    policy_users_free(u);
    /* line length: the limit passes, one more byte does not */
    size_t n = POLICY_CONFIG_LINE_MAX;
    memset(text, '#', n);
    text[n] = '\0';
    policy_users_free(load_ok(text));
    text[n] = '#';
    text[n + 1] = '\0';
    expect_contains(load_one_problem(text, 1), "longer than");
}

static void test_problems_all_reported(void **state)
{
    (void)state;
    const char *text = "bad1\nalice:" ALICE_HASH "\nbad3:x\n\nbob:" ALICE_HASH "\nbad6";
    struct reported r = {0};
    struct policy_users *u = NULL;
    assert_int_equal(policy_users_load_buffer(text, strlen(text), report, &r, &u), 3);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.lines[0], 1);
    assert_int_equal(r.lines[1], 3);
    assert_int_equal(r.lines[2], 6);
    /* the good lines are kept */
    assert_int_equal(policy_users_count(u), 2);
    policy_users_free(u);
    /* no report function: problems still counted */
    assert_int_equal(policy_users_load_buffer(text, strlen(text), NULL, NULL, &u), 3);
    policy_users_free(u);
}

static void test_many_users(void **state)
{
    (void)state;
    /* enough to grow the table several times; one verification at the end */
    size_t n = 5000, cap = n * (sizeof ALICE_HASH + 16);
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "user%zu:%s\n", i, ALICE_HASH);
    struct reported r = {0};
    struct policy_users *u = NULL;
    assert_int_equal(policy_users_load_buffer(text, len, report, &r, &u), 0);
    assert_int_equal(policy_users_count(u), n);
    for (size_t i = 0; i < n; i += 97) {
        char name[32];
        snprintf(name, sizeof name, "USER%zu", i);
        assert_non_null(policy_users_name(u, name));
    }
    assert_null(policy_users_name(u, "user5000"));
    assert_int_equal(policy_users_verify(u, "user4999", "alice-secret"), POLICY_AUTH_OK);
    policy_users_free(u);
    free(text);
}

/* ---- verification ---- */

static void test_verify(void **state)
{
    (void)state;
    struct policy_users *u = load_ok("alice:" ALICE_HASH "\n");
    assert_int_equal(policy_users_verify(u, "alice", "alice-secret"), POLICY_AUTH_OK);
    assert_int_equal(policy_users_verify(u, "Alice", "alice-secret"), POLICY_AUTH_OK);
    assert_int_equal(policy_users_verify(u, "alice", "Alice-secret"), POLICY_AUTH_BAD);
    assert_int_equal(policy_users_verify(u, "alice", "alice-secre"), POLICY_AUTH_BAD);
    assert_int_equal(policy_users_verify(u, "alice", "alice-secrett"), POLICY_AUTH_BAD);
    assert_int_equal(policy_users_verify(u, "alice", ""), POLICY_AUTH_BAD);
    /* unknown users: BAD, even with the password of another user */
    assert_int_equal(policy_users_verify(u, "bob", "alice-secret"), POLICY_AUTH_BAD);
    assert_int_equal(policy_users_verify(u, "", "alice-secret"), POLICY_AUTH_BAD);
    char longname[400];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(policy_users_verify(u, longname, "alice-secret"), POLICY_AUTH_BAD);
    /* the longest password crypt takes, and one byte more */
    char pass[CRYPT_MAX_PASSPHRASE_SIZE + 1];
    memset(pass, 'p', sizeof pass);
    pass[CRYPT_MAX_PASSPHRASE_SIZE - 1] = '\0';
    assert_int_equal(policy_users_verify(u, "alice", pass), POLICY_AUTH_BAD);
    pass[CRYPT_MAX_PASSPHRASE_SIZE - 1] = 'p';
    pass[CRYPT_MAX_PASSPHRASE_SIZE] = '\0';
    assert_int_equal(policy_users_verify(u, "alice", pass), POLICY_AUTH_BAD);
    policy_users_free(u);
    /* no users at all */
    assert_int_equal(policy_users_verify(NULL, "alice", "alice-secret"), POLICY_AUTH_BAD);
    u = load_ok("# nobody\n");
    assert_int_equal(policy_users_verify(u, "alice", "alice-secret"), POLICY_AUTH_BAD);
    policy_users_free(u);
}

static void test_verify_long_password(void **state)
{
    (void)state;
    char pass[CRYPT_MAX_PASSPHRASE_SIZE], hash[CRYPT_OUTPUT_SIZE], text[512];
    memset(pass, 'p', sizeof pass - 1);
    pass[sizeof pass - 1] = '\0';
    make_hash(pass, "$6$rounds=1000$saltsaltsalt", hash, sizeof hash);
    snprintf(text, sizeof text, "long:%s\n", hash);
    struct policy_users *u = load_ok(text);
    assert_int_equal(policy_users_verify(u, "long", pass), POLICY_AUTH_OK);
    pass[10] = 'q';
    assert_int_equal(policy_users_verify(u, "long", pass), POLICY_AUTH_BAD);
    policy_users_free(u);
}

/* ---- sender ownership ---- */

static void test_owns_sender(void **state)
{
    (void)state;
    struct policy_config c;
    const char *conf = "domain example.test users alice bob\ndomain example.org catch-all x\n";
    assert_int_equal(policy_config_load_buffer("t.conf", conf, strlen(conf), &c, NULL), 0);
    struct policy_users *u = load_ok(
        "alice:" ALICE_HASH "\n"
        "bob:" ALICE_HASH ":bob@example.test,Sales@Example.NET,ops@[192.0.2.1]\n"
        "carol@elsewhere.test:" ALICE_HASH "\n");
    /* no addresses listed: alice@ every local domain */
    assert_true(policy_users_owns_sender(u, &c, "alice", "alice", "example.test"));
    assert_true(policy_users_owns_sender(u, &c, "ALICE", "Alice", "EXAMPLE.org"));
    assert_true(policy_users_owns_sender(u, &c, "alice", "\"alice\"", "example.test"));
    assert_true(policy_users_owns_sender(u, &c, "alice", "\"al\\ice\"", "example.test"));
    assert_false(policy_users_owns_sender(u, &c, "alice", "alice", "example.net"));
    assert_false(policy_users_owns_sender(u, &c, "alice", "bob", "example.test"));
    assert_false(policy_users_owns_sender(u, &c, "alice", "alicex", "example.test"));
    assert_false(policy_users_owns_sender(u, &c, "alice", "alic", "example.test"));
    assert_false(policy_users_owns_sender(u, &c, "alice", "alice", "localhost.example.test"));
    assert_true(policy_users_owns_sender(u, &c, "alice", "alice", "localhost")); /* default */
    assert_false(policy_users_owns_sender(u, NULL, "alice", "alice", "example.test"));
    assert_false(policy_users_owns_sender(u, &c, "alice", "alice", ""));
    assert_false(policy_users_owns_sender(u, &c, "alice", "alice", NULL));
    assert_false(policy_users_owns_sender(u, &c, "alice", "", "example.test"));
    assert_false(policy_users_owns_sender(u, &c, "alice", "\"\"", "example.test"));
    assert_false(policy_users_owns_sender(u, &c, "alice", "\"alice\\\"", "example.test"));
    /* listed addresses: exactly those, whatever the local domains */
    assert_true(policy_users_owns_sender(u, &c, "bob", "bob", "example.test"));
    assert_true(policy_users_owns_sender(u, &c, "bob", "SALES", "example.net"));
    assert_true(policy_users_owns_sender(u, &c, "bob", "ops", "[192.0.2.1]"));
    assert_false(policy_users_owns_sender(u, &c, "bob", "bob", "example.org"));
    assert_false(policy_users_owns_sender(u, &c, "bob", "sales", "example.test"));
    assert_false(policy_users_owns_sender(u, &c, "bob", "ops", "[192.0.2.2]"));
    /* a user that is an address owns it */
    assert_true(policy_users_owns_sender(u, &c, "carol@elsewhere.test", "Carol", "ELSEWHERE.test"));
    assert_false(policy_users_owns_sender(u, &c, "carol@elsewhere.test", "carol", "example.test"));
    assert_false(
        policy_users_owns_sender(u, &c, "carol@elsewhere.test", "caro", "l@elsewhere.test"));
    /* the null sender belongs to every user; unknown users own nothing else */
    assert_true(policy_users_owns_sender(u, &c, "alice", NULL, NULL));
    assert_true(policy_users_owns_sender(u, &c, "nobody", NULL, NULL));
    assert_false(policy_users_owns_sender(u, &c, "nobody", "nobody", "example.test"));
    assert_false(policy_users_owns_sender(NULL, &c, "alice", "alice", "example.test"));
    /* overlong parts never overflow */
    char big[1200];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_false(policy_users_owns_sender(u, &c, "alice", big, "example.test"));
    assert_false(policy_users_owns_sender(u, &c, "alice", "alice", big));
    assert_false(policy_users_owns_sender(u, &c, "bob", big, big));
    policy_users_free(u);
    policy_config_free(&c);
}

static void test_valid_name(void **state)
{
    (void)state;
    char name[POLICY_USER_NAME_MAX + 2];
    memset(name, 'a', sizeof name);
    assert_true(policy_users_valid_name(name, POLICY_USER_NAME_MAX));
    assert_false(policy_users_valid_name(name, POLICY_USER_NAME_MAX + 1));
    assert_false(policy_users_valid_name(name, 0));
    assert_true(policy_users_valid_name("A.b_c-d+e@f.g", 13));
    assert_false(policy_users_valid_name("a\0b", 3));
    assert_false(policy_users_valid_name("a b", 3));
    assert_false(policy_users_valid_name("a:b", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_hash_kinds),
        cmocka_unit_test(test_bad_hashes),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_problems_all_reported),
        cmocka_unit_test(test_many_users),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_verify_long_password),
        cmocka_unit_test(test_owns_sender),
        cmocka_unit_test(test_valid_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
