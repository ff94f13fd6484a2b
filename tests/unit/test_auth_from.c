/* tests/unit/test_auth_from.c — the author domains of a message (auth/from.c): From: after
 * many header fields, a very long folded From:, two From: fields (same and different
 * domains), several addresses (each domain once, in order), no From:, group syntax and other
 * unreadable fields, hostile display names; and the field walk of auth/canon.c it uses. */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/canon.h"
#include "auth/from.h"

/* The authors of a message made of header + "\r\n" + body. */
static struct auth_from authors_of(const char *header)
{
    size_t n = strlen(header);
    char *msg = malloc(n + 16);
    assert_non_null(msg);
    memcpy(msg, header, n);
    memcpy(msg + n, "\r\nbody\r\n", 9);
    struct auth_from f;
    auth_from_authors(msg, n + 8, &f);
    free(msg);
    return f;
}

/* The single From: field value gives the domains want (comma-separated), or status. */
static void expect(const char *value, enum auth_from_status status, const char *want)
{
    char header[2048];
    snprintf(header, sizeof header, "Subject: s\r\nFrom:%s\r\nTo: t@x.example\r\n", value);
    struct auth_from f = authors_of(header);
    assert_int_equal(f.status, status);
    if (status != AUTH_FROM_OK)
        return;
    char got[1024] = "";
    for (size_t i = 0; i < f.n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? "," : "",
                 f.domains[i]);
    assert_string_equal(got, want);
}

static void test_one_address(void **state)
{
    (void)state;
    expect(" a@Example.TEST", AUTH_FROM_OK, "example.test");
    expect(" \"x@evil.example, y\" <a@example.test>", AUTH_FROM_OK, "example.test");
    expect(" (comment@evil.example) a@example.test (more)", AUTH_FROM_OK, "example.test");
    expect(" Name\r\n <a@example.test>", AUTH_FROM_OK, "example.test");
    expect("a@example.test   ", AUTH_FROM_OK, "example.test");
    expect(" \"a@b\"@example.test", AUTH_FROM_OK, "example.test");
    expect(" \"quoted \\\" and \\\\\" <a@example.test>", AUTH_FROM_OK, "example.test");
    /* a bare address as display name, as some programs write it: the angle-addr counts */
    expect(" bank@bank.example <a@evil.example>", AUTH_FROM_OK, "evil.example");
    expect(" <a@sub.example.test>", AUTH_FROM_OK, "sub.example.test");
}

static void test_several_addresses(void **state)
{
    (void)state;
    expect(" a@one.example, b@two.example", AUTH_FROM_OK, "one.example,two.example");
    expect(" <a@one.example>, \"B\" <b@two.example>, c@ONE.example", AUTH_FROM_OK,
           "one.example,two.example");
    expect(" a@one.example, , b@one.example", AUTH_FROM_OK, "one.example");
    expect(" a@1.example, b@2.example, c@3.example, d@4.example, e@5.example, f@6.example, "
           "g@7.example, h@8.example", AUTH_FROM_OK,
           "1.example,2.example,3.example,4.example,5.example,6.example,7.example,8.example");
    expect(" a@1.example, b@2.example, c@3.example, d@4.example, e@5.example, f@6.example, "
           "g@7.example, h@8.example, i@9.example", AUTH_FROM_TOO_MANY, NULL);
    /* one readable address does not excuse an unreadable one */
    expect(" a@one.example, nobody", AUTH_FROM_UNREADABLE, NULL);
}

static void test_unreadable(void **state)
{
    (void)state;
    static const char *const bad[] = {
        " no address",
        "",
        " (only a comment)",
        " a@",
        " a@exa mple.test",
        " a@[127.0.0.1]",
        " a@localhost",
        " a@.example.test",
        " a@example..test",
        " a@example.test.",
        " a@b@example.test",
        " \"unclosed <a@example.test>",
        " (unclosed a@example.test",
        " <a@example.test",
        " <a@example.test> trailing",
        " <a@example.test> <b@example.test>",
        " <@route.example:a@example.test>",
        " <@r1.example,@r2.example:a@example.test>",
        " Group: a@example.test;",
        " undisclosed-recipients:;",
        " Group: <a@example.test>",
        " a@\"example\".test",
        " a@example.test)",
        " a@bank.exam\xe2\x80\x8dple",         /* a zero-width joiner out of context */
        " a@a\xe2\x81\x84" "b.example",          /* a fraction slash */
        " a@bank.example\xef\xbc\x8e",         /* a full-width dot: "bank.example." */
        " a@bank.example\xff",                 /* not UTF-8 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        print_message("%s\n", bad[i]);
        expect(bad[i], AUTH_FROM_UNREADABLE, NULL);
    }
}

/* A domain in UTF-8 is judged under its A-label form (IDNA2008, UTS #46 mapping). */
static void test_utf8_domains(void **state)
{
    (void)state;
    expect(" a@b\xc3\xbc" "cher.example", AUTH_FROM_OK, "xn--bcher-kva.example");
    expect(" \"M\xc3\xbcller\" <a@B\xc3\x9c" "CHER.example>, b@xn--bcher-kva.example", AUTH_FROM_OK,
           "xn--bcher-kva.example");
    expect(" a@\xe4\xbe\x8b\xe3\x81\x88.example", AUTH_FROM_OK, "xn--r8jz45g.example");
    /* characters the mapping drops make no other domain: the one imitated is judged */
    expect(" a@bank.example\xc2\xa0", AUTH_FROM_OK, "bank.example");
    expect(" a@bank\xe2\x80\x8b.example", AUTH_FROM_OK, "bank.example");
}

/* A domain longer than DNS carries (253 characters) is no author domain. */
static void test_long_domain(void **state)
{
    (void)state;
    char v[600] = " a@";
    size_t n = strlen(v);
    while (n < 400) {
        memcpy(v + n, "abcdefgh.", 9);
        n += 9;
    }
    memcpy(v + n, "example", sizeof "example");
    expect(v, AUTH_FROM_UNREADABLE, NULL);
}

static void test_field_count(void **state)
{
    (void)state;
    assert_int_equal(authors_of("Subject: s\r\nSender: a@example.test\r\n").status,
                     AUTH_FROM_NONE);
    assert_int_equal(authors_of("").status, AUTH_FROM_NONE);
    assert_int_equal(authors_of("From: a@example.test\r\nFrom: a@example.test\r\n").status,
                     AUTH_FROM_SEVERAL);
    assert_int_equal(authors_of("From: a@example.test\r\nTo: x\r\nfrom: b@other.example\r\n")
                         .status,
                     AUTH_FROM_SEVERAL);
    assert_int_equal(authors_of("From: a@example.test\r\nFrom: unreadable\r\n").status,
                     AUTH_FROM_SEVERAL);
    /* "From" needs its colon; "From-X" is another field */
    struct auth_from f = authors_of("From-X: a@one.example\r\nFrom : a@two.example\r\n");
    assert_int_equal(f.status, AUTH_FROM_OK);
    assert_string_equal(f.domains[0], "two.example");
    /* a From: in the body is not a field */
    f = authors_of("From: a@one.example\r\n\r\nFrom: b@two.example");
    assert_int_equal(f.status, AUTH_FROM_OK);
    assert_int_equal(f.n, 1);
}

/* A header of `pad` fields, the From: field, and `after` fields more (a second From: among
 * them when twice). */
static char *padded(size_t pad, const char *from, size_t after, bool twice)
{
    size_t cap = (pad + after) * 32 + strlen(from) * 2 + 64, len = 0;
    char *h = malloc(cap);
    assert_non_null(h);
    for (size_t i = 0; i < pad; i++)
        len += (size_t)snprintf(h + len, cap - len, "X-Pad-%zu: x\r\n", i);
    len += (size_t)snprintf(h + len, cap - len, "From: %s\r\n", from);
    for (size_t i = 0; i < after; i++)
        len += (size_t)snprintf(h + len, cap - len, "X-After-%zu: y\r\n", i);
    if (twice)
        snprintf(h + len, cap - len, "From: %s\r\n", from);
    return h;
}

static void test_many_fields(void **state)
{
    (void)state;
    static const size_t pads[] = {0, 63, 64, 65, 100, 5000};
    for (size_t i = 0; i < sizeof pads / sizeof pads[0]; i++) {
        char *h = padded(pads[i], "Bank <security@bank.example>", 10, false);
        struct auth_from f = authors_of(h);
        assert_int_equal(f.status, AUTH_FROM_OK);
        assert_int_equal(f.n, 1);
        assert_string_equal(f.domains[0], "bank.example");
        free(h);
        h = padded(pads[i], "security@bank.example", 3000, true); /* far apart */
        assert_int_equal(authors_of(h).status, AUTH_FROM_SEVERAL);
        free(h);
    }
}

static void test_long_from(void **state)
{
    (void)state;
    /* a quoted display name of 20,000 octets, folded every 60 */
    size_t cap = 40000, len = 0;
    char *v = malloc(cap);
    assert_non_null(v);
    len += (size_t)snprintf(v, cap, "\"Bank");
    for (size_t i = 0; len < 20000; i++)
        len += (size_t)snprintf(v + len, cap - len, i % 4 == 3 ? "\r\n security team"
                                                               : " security team");
    snprintf(v + len, cap - len, "\"\r\n <security@bank.example>");
    char *h = padded(2, v, 2, false);
    struct auth_from f = authors_of(h);
    assert_int_equal(f.status, AUTH_FROM_OK);
    assert_string_equal(f.domains[0], "bank.example");
    free(h);
    /* the same with an '@' and ',' hidden in the long comment: still the angle-addr */
    memcpy(v, "(x@evil.example,", 16);
    v[len - 1] = ')';
    v[len] = ' ';
    h = padded(2, v, 2, false);
    f = authors_of(h);
    assert_int_equal(f.status, AUTH_FROM_OK);
    assert_string_equal(f.domains[0], "bank.example");
    free(h);
    free(v);
}

/* auth_field_next walks the fields auth_fields_split finds, folds included, to the body. */
static void test_field_walk(void **state)
{
    (void)state;
    const char *m = "A: 1\r\n  folded\r\nB:2\nC\r\n\r\nbody";
    struct auth_field f[4], g;
    size_t n = 0, body = 0, pos = 0, k = 0;
    auth_fields_split(m, strlen(m), f, 4, &n, &body);
    assert_int_equal(n, 3);
    while (auth_field_next(m, strlen(m), &pos, &g)) {
        assert_ptr_equal(g.p, f[k].p);
        assert_int_equal(g.len, f[k].len);
        assert_int_equal(g.name_len, f[k].name_len);
        k++;
    }
    assert_int_equal(k, 3);
    assert_int_equal(pos, body);
    assert_string_equal(m + pos, "body");
    pos = 0;
    assert_false(auth_field_next("", 0, &pos, &g));
    assert_int_equal(pos, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_address),
        cmocka_unit_test(test_several_addresses),
        cmocka_unit_test(test_unreadable),
        cmocka_unit_test(test_utf8_domains),
        cmocka_unit_test(test_long_domain),
        cmocka_unit_test(test_field_count),
        cmocka_unit_test(test_many_fields),
        cmocka_unit_test(test_long_from),
        cmocka_unit_test(test_field_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
