/* tests/unit/test_policy_authcache.c — the cache of successful verifications: a hit needs the
 * same name (any case), password, table and stored hash within the TTL; unknown users are never
 * kept; a new users table empties it; it stays within its bound. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "policy/authcache.h"
#include "policy/users.h"

/* openssl passwd -6 -salt aliceSalt0123456 alice-secret */
#define ALICE_HASH "$6$aliceSalt0123456$8QyOFYChiWIYio8PSFPLSWfKCx3Z29wp8dBaxfUweEfrldvqB2L7." \
                   "qJsadR1LMx5DxAodRN4sBR7B5lcsMnsF0"
/* openssl passwd -6 -salt bobSalt012345678 bob-secret */
#define OTHER_HASH "$6$bobSalt012345678$mx99BLEmvT/5XilhIZ4RNygswHNdD6S0A.eVb5zvi8e6AoamtJI" \
                   "ly35y.cnJ12x1AOHVV3s8vRnDYtCe42FaC."

static struct policy_users *load(const char *text)
{
    struct policy_users *u = NULL;
    assert_int_equal(policy_users_load_buffer(text, strlen(text), NULL, NULL, &u), 0);
    return u;
}

static void test_hit_needs_same_password_and_time(void **state)
{
    (void)state;
    struct policy_users *u = load("alice:" ALICE_HASH "\n");
    struct policy_authcache *c = policy_authcache_new();
    assert_non_null(c);
    assert_false(policy_authcache_hit(c, u, "alice", "alice-secret", 1000));
    policy_authcache_store(c, u, "alice", "alice-secret", 1000);
    assert_int_equal(policy_authcache_count(c), 1);
    assert_true(policy_authcache_hit(c, u, "alice", "alice-secret", 2000));
    assert_true(policy_authcache_hit(c, u, "ALICE", "alice-secret", 2000)); /* names fold */
    assert_false(policy_authcache_hit(c, u, "alice", "alice-secreT", 2000));
    assert_false(policy_authcache_hit(c, u, "alice", "", 2000));
    assert_true(policy_authcache_hit(c, u, "alice", "alice-secret",
                                     1000 + POLICY_AUTHCACHE_TTL_MS - 1));
    /* Expired: a miss, and the entry is gone. */
    assert_false(policy_authcache_hit(c, u, "alice", "alice-secret",
                                      1000 + POLICY_AUTHCACHE_TTL_MS));
    assert_int_equal(policy_authcache_count(c), 0);
    policy_authcache_free(c);
    policy_users_free(u);
}

static void test_unknown_user_never_kept(void **state)
{
    (void)state;
    struct policy_users *u = load("alice:" ALICE_HASH "\n");
    struct policy_authcache *c = policy_authcache_new();
    policy_authcache_store(c, u, "mallory", "x", 1000);
    assert_int_equal(policy_authcache_count(c), 0);
    assert_false(policy_authcache_hit(c, u, "mallory", "x", 1000));
    policy_authcache_store(c, NULL, "alice", "alice-secret", 1000);
    assert_int_equal(policy_authcache_count(c), 0);
    policy_authcache_free(c);
    policy_users_free(u);
}

/* A reloaded users file is a new table: the entries of the old one are forgotten, and one whose
 * hash changed would miss even if its table were at the same address. */
static void test_new_table_or_hash_misses(void **state)
{
    (void)state;
    struct policy_users *old = load("alice:" ALICE_HASH "\n");
    struct policy_users *same = load("alice:" ALICE_HASH "\n");
    struct policy_users *changed = load("alice:" OTHER_HASH "\n");
    struct policy_authcache *c = policy_authcache_new();
    policy_authcache_store(c, old, "alice", "alice-secret", 1000);
    assert_false(policy_authcache_hit(c, same, "alice", "alice-secret", 1000));
    assert_int_equal(policy_authcache_count(c), 0);
    policy_authcache_store(c, same, "alice", "alice-secret", 1000);
    assert_true(policy_authcache_hit(c, same, "alice", "alice-secret", 1000));
    assert_false(policy_authcache_hit(c, changed, "alice", "alice-secret", 1000));
    assert_int_equal(policy_authcache_count(c), 0);
    policy_authcache_free(c);
    policy_users_free(old);
    policy_users_free(same);
    policy_users_free(changed);
}

static void test_bounded(void **state)
{
    (void)state;
    struct policy_users *u = load("alice:" ALICE_HASH "\n");
    struct policy_authcache *c = policy_authcache_new();
    char pass[32];
    for (unsigned i = 0; i < POLICY_AUTHCACHE_ENTRIES + 10; i++) {
        snprintf(pass, sizeof pass, "p%u", i);
        policy_authcache_store(c, u, "alice", pass, 1000);
    }
    assert_int_equal(policy_authcache_count(c), POLICY_AUTHCACHE_ENTRIES);
    assert_false(policy_authcache_hit(c, u, "alice", "p0", 1000)); /* the oldest went */
    snprintf(pass, sizeof pass, "p%u", POLICY_AUTHCACHE_ENTRIES + 9);
    assert_true(policy_authcache_hit(c, u, "alice", pass, 1000));
    policy_authcache_free(c);
    policy_authcache_free(NULL);
    policy_users_free(u);
}

/* Two caches draw two keys: nothing stored in one is found in the other. */
static void test_separate_caches(void **state)
{
    (void)state;
    struct policy_users *u = load("alice:" ALICE_HASH "\n");
    struct policy_authcache *a = policy_authcache_new(), *b = policy_authcache_new();
    policy_authcache_store(a, u, "alice", "alice-secret", 1000);
    assert_false(policy_authcache_hit(b, u, "alice", "alice-secret", 1000));
    policy_authcache_free(a);
    policy_authcache_free(b);
    policy_users_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_needs_same_password_and_time),
        cmocka_unit_test(test_unknown_user_never_kept),
        cmocka_unit_test(test_new_table_or_hash_misses),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_separate_caches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
