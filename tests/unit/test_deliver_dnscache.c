/* tests/unit/test_deliver_dnscache.c — the answer cache of mail authentication
 * (deliver/dnscache.c): kept for the TTL and forgotten after, the TTL capped, names without
 * regard to case, types apart, temporary failures and zero TTLs not kept, negative answers
 * kept, a full cache forgets the least recently used, records of any octets. */
#include "unit.h"

#include <string.h>

#include "deliver/dnscache.h"

static void put_txt(struct deliver_dnscache *c, const char *name, int64_t now, uint32_t ttl,
                    const char *text)
{
    const char *recs[] = {text};
    size_t lens[] = {strlen(text)};
    deliver_dnscache_put(c, name, AUTH_DNS_TXT, now, ttl, AUTH_DNS_OK, recs, lens, 1);
}

static void test_ttl(void **state)
{
    (void)state;
    struct deliver_dnscache *c = deliver_dnscache_new(8);
    struct deliver_dnscache_answer a;
    put_txt(c, "Example.COM", 100, 60, "v=spf1 -all");
    assert_true(deliver_dnscache_get(c, "example.com", AUTH_DNS_TXT, 159, &a));
    assert_int_equal(a.status, AUTH_DNS_OK);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.lens[0], 11);
    assert_memory_equal(a.records[0], "v=spf1 -all", 11);
    assert_false(deliver_dnscache_get(c, "example.com", AUTH_DNS_A, 159, &a));
    assert_false(deliver_dnscache_get(c, "example.com", AUTH_DNS_TXT, 160, &a)); /* expired */
    assert_int_equal(deliver_dnscache_count(c), 0);
    put_txt(c, "long.example", 0, 1000000, "x");
    assert_true(deliver_dnscache_get(c, "long.example", AUTH_DNS_TXT,
                                      DELIVER_DNSCACHE_TTL_MAX - 1, &a));
    assert_false(deliver_dnscache_get(c, "long.example", AUTH_DNS_TXT, DELIVER_DNSCACHE_TTL_MAX,
                                       &a));
    deliver_dnscache_free(c);
}

static void test_what_is_kept(void **state)
{
    (void)state;
    struct deliver_dnscache *c = deliver_dnscache_new(8);
    struct deliver_dnscache_answer a;
    put_txt(c, "zero.example", 0, 0, "x");
    deliver_dnscache_put(c, "fail.example", AUTH_DNS_TXT, 0, 300, AUTH_DNS_TEMPFAIL, NULL, NULL,
                         0);
    assert_int_equal(deliver_dnscache_count(c), 0);
    deliver_dnscache_put(c, "none.example", AUTH_DNS_TXT, 0, 300, AUTH_DNS_NXDOMAIN, NULL, NULL,
                         0);
    assert_true(deliver_dnscache_get(c, "none.example", AUTH_DNS_TXT, 1, &a));
    assert_int_equal(a.status, AUTH_DNS_NXDOMAIN);
    assert_int_equal(a.n, 0);
    /* binary records, several; a second put replaces */
    const char *recs[] = {"a\0b", "", "ccc"};
    size_t lens[] = {3, 0, 3};
    deliver_dnscache_put(c, "bin.example", AUTH_DNS_TXT, 0, 300, AUTH_DNS_OK, recs, lens, 3);
    assert_true(deliver_dnscache_get(c, "bin.example", AUTH_DNS_TXT, 1, &a));
    assert_int_equal(a.n, 3);
    assert_memory_equal(a.records[0], "a\0b", 3);
    assert_int_equal(a.lens[1], 0);
    assert_memory_equal(a.records[2], "ccc", 3);
    put_txt(c, "bin.example", 0, 300, "new");
    assert_true(deliver_dnscache_get(c, "bin.example", AUTH_DNS_TXT, 1, &a));
    assert_int_equal(a.n, 1);
    /* too large an answer is not kept */
    static char big[DELIVER_DNSCACHE_ANSWER_MAX + 1];
    memset(big, 'x', sizeof big - 1);
    put_txt(c, "big.example", 0, 300, big);
    assert_false(deliver_dnscache_get(c, "big.example", AUTH_DNS_TXT, 1, &a));
    deliver_dnscache_free(c);
}

static void test_bounded(void **state)
{
    (void)state;
    struct deliver_dnscache *c = deliver_dnscache_new(3);
    struct deliver_dnscache_answer a;
    put_txt(c, "a.example", 0, 300, "a");
    put_txt(c, "b.example", 0, 300, "b");
    put_txt(c, "c.example", 0, 300, "c");
    assert_true(deliver_dnscache_get(c, "a.example", AUTH_DNS_TXT, 1, &a)); /* a is recent */
    put_txt(c, "d.example", 0, 300, "d");
    assert_int_equal(deliver_dnscache_count(c), 3);
    assert_false(deliver_dnscache_get(c, "b.example", AUTH_DNS_TXT, 1, &a));
    assert_true(deliver_dnscache_get(c, "a.example", AUTH_DNS_TXT, 1, &a));
    assert_true(deliver_dnscache_get(c, "d.example", AUTH_DNS_TXT, 1, &a));
    deliver_dnscache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_what_is_kept),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
