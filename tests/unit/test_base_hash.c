/* tests/unit/test_base_hash.c — FNV-1a against the published 64-bit test vectors, continuation
 * across calls, and the ASCII-only case folding. */
#include "unit.h"

#include <string.h>

#include "base/hash.h"

static void test_vectors(void **state)
{
    (void)state;
    /* From the FNV reference test suite (fnv1a 64-bit). */
    assert_true(base_fnv1a(BASE_FNV1A_OFFSET, "", 0) == 0xcbf29ce484222325ull);
    assert_true(base_fnv1a(BASE_FNV1A_OFFSET, "a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(base_fnv1a(BASE_FNV1A_OFFSET, "foobar", 6) == 0x85944171f73967e8ull);
    assert_true(base_fnv1a_str(BASE_FNV1A_OFFSET, "foobar") == 0x85944171f73967e8ull);
}

static void test_continues(void **state)
{
    (void)state;
    uint64_t h = base_fnv1a(BASE_FNV1A_OFFSET, "foo", 3);
    assert_true(base_fnv1a(h, "bar", 3) == base_fnv1a_str(BASE_FNV1A_OFFSET, "foobar"));
    assert_true(base_fnv1a_str(h, "bar") == base_fnv1a_str(BASE_FNV1A_OFFSET, "foobar"));
    /* Bytes after a NUL count with the length form only. */
    assert_true(base_fnv1a(BASE_FNV1A_OFFSET, "a\0b", 3) !=
                base_fnv1a_str(BASE_FNV1A_OFFSET, "a"));
    /* A seed changes every hash. */
    assert_true(base_fnv1a(BASE_FNV1A_OFFSET ^ 1u, "a", 1) !=
                base_fnv1a(BASE_FNV1A_OFFSET, "a", 1));
}

static void test_lower(void **state)
{
    (void)state;
    uint64_t want = base_fnv1a_str(BASE_FNV1A_OFFSET, "mx.example.test");
    assert_true(base_fnv1a_lower(BASE_FNV1A_OFFSET, "MX.Example.TEST") == want);
    assert_true(base_fnv1a_lower(BASE_FNV1A_OFFSET, "mx.example.test") == want);
    /* '@', '[' (next to A and Z) and UTF-8 bytes are not folded. */
    assert_true(base_fnv1a_lower(BASE_FNV1A_OFFSET, "@[") ==
                base_fnv1a_str(BASE_FNV1A_OFFSET, "@["));
    assert_true(base_fnv1a_lower(BASE_FNV1A_OFFSET, "\xc3\x89") ==
                base_fnv1a_str(BASE_FNV1A_OFFSET, "\xc3\x89"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_continues),
        cmocka_unit_test(test_lower),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
