/* tests/unit/test_reply_safe_text.c — outside text made safe to show (reply/safe_text.c): C0
 * controls but TAB, DEL, C1 characters and ill-formed UTF-8 escaped, LF replaced, UTF-8 kept,
 * a full buffer cut between characters and escapes, never inside one. */
#include "unit.h"

#include <string.h>

#include "reply/safe_text.h"

static const char *shown(const char *s, size_t len, const char *newline)
{
    static char out[512];
    size_t n = reply_safe_text_buf(s, len, newline, out, sizeof out);
    assert_int_equal(n, strlen(out));
    return out;
}

static void test_plain_text_as_it_is(void **state)
{
    (void)state;
    assert_string_equal(shown("550 5.1.1 no such user", 22, " "), "550 5.1.1 no such user");
    assert_string_equal(shown("a\tb \\x41", 8, " "), "a\tb \\x41");
    assert_string_equal(shown("", 0, " "), "");
    /* UTF-8 text stays readable: é (C3 A9), — (E2 80 94, continuation bytes in 0x80..0x9F) */
    assert_string_equal(shown("caf\xC3\xA9 \xE2\x80\x94 ok", 12, " "),
                        "caf\xC3\xA9 \xE2\x80\x94 ok");
}

static void test_controls_escaped(void **state)
{
    (void)state;
    const char forged[] = "554 first\n2026-12-06T00:00:00.000Z clearmta: FORGED\n"
                          "\x1b[31mRED\x1b[0m \x1b]0;owned\x07 end\r\x7f\x0b";
    const char *out = shown(forged, sizeof forged - 1, " ");
    assert_string_equal(out, "554 first 2026-12-06T00:00:00.000Z clearmta: FORGED "
                             "\\x1B[31mRED\\x1B[0m \\x1B]0;owned\\x07 end\\x0D\\x7F\\x0B");
    assert_null(strchr(out, '\n'));
    /* A NUL inside the given length is a byte like the others. */
    assert_string_equal(shown("a\0b", 3, " "), "a\\x00b");
    /* Indented lines for a terminal; CRLF is one line end, a lone CR a control byte. */
    assert_string_equal(shown("554-a\n554 b", 11, "\n    "), "554-a\n    554 b");
    assert_string_equal(shown("a\r\nb\rc\r", 7, " "), "a b\\x0Dc\\x0D");
}

static void test_c1_and_ill_formed_escaped(void **state)
{
    (void)state;
    /* U+009B (CSI) and U+0085 (NEL) as UTF-8; then raw 0x9B, a lone lead byte, an overlong
     * form: every byte escaped, the next character read afresh. */
    assert_string_equal(shown("a\xC2\x9B" "b\xC2\x85" "c", 7, " "), "a\\xC2\\x9Bb\\xC2\\x85c");
    assert_string_equal(shown("\x9B[2J", 4, " "), "\\x9B[2J");
    assert_string_equal(shown("\xE2\x80x", 3, " "), "\\xE2\\x80x");
    assert_string_equal(shown("\xC0\xAF", 2, " "), "\\xC0\\xAF");
    assert_string_equal(shown("\xC2\xA0", 2, " "), "\xC2\xA0"); /* U+00A0, past C1: kept */
}

static void test_full_buffer_cut_cleanly(void **state)
{
    (void)state;
    char out[6];
    /* 5 bytes of room: "ab" then the escape of ESC would need 4 more: cut before it. */
    assert_int_equal(reply_safe_text_buf("ab\x1b" "cd", 5, " ", out, sizeof out), 2);
    assert_string_equal(out, "ab");
    /* A run cut between characters, not inside é. */
    assert_int_equal(reply_safe_text_buf("abcd\xC3\xA9", 6, " ", out, sizeof out), 4);
    assert_string_equal(out, "abcd");
    assert_int_equal(reply_safe_text_buf("abcdefgh", 8, " ", out, sizeof out), 5);
    assert_string_equal(out, "abcde");
    char one[1];
    assert_int_equal(reply_safe_text_buf("abc", 3, " ", one, sizeof one), 0);
    assert_string_equal(one, "");
}

static bool refuse(void *ctx, const char *p, size_t n)
{
    (void)p;
    size_t *calls = ctx;
    (*calls)++;
    return n == 0;
}

static void test_put_failure_stops(void **state)
{
    (void)state;
    size_t calls = 0;
    assert_false(reply_safe_text("ab\x1b" "cd", 5, " ", refuse, &calls));
    assert_int_equal(calls, 1);
    calls = 0;
    assert_true(reply_safe_text("", 0, " ", refuse, &calls));
    assert_int_equal(calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_as_it_is),
        cmocka_unit_test(test_controls_escaped),
        cmocka_unit_test(test_c1_and_ill_formed_escaped),
        cmocka_unit_test(test_full_buffer_cut_cleanly),
        cmocka_unit_test(test_put_failure_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
