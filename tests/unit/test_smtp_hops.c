/* tests/unit/test_smtp_hops.c — the Received: field counter (smtp/hops.c): which lines count,
 * where the header ends, CRLF and LF, every split of the input; and the count as the DATA and
 * BDAT reader (smtp/data.c) keeps it for the messages it reads. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "smtp/data.h"
#include "smtp/hops.h"

/* The count of text fed whole, cut at every position, and one octet at a time: all agree. */
static unsigned count_every_split(const char *text)
{
    size_t n = strlen(text);
    struct smtp_hops whole;
    smtp_hops_init(&whole);
    smtp_hops_feed(&whole, text, n);
    for (size_t cut = 0; cut <= n; cut++) {
        struct smtp_hops h;
        smtp_hops_init(&h);
        smtp_hops_feed(&h, text, cut);
        smtp_hops_feed(&h, text + cut, n - cut);
        assert_int_equal(h.count, whole.count);
        assert_int_equal(h.header_done, whole.header_done);
    }
    struct smtp_hops bytes;
    smtp_hops_init(&bytes);
    for (size_t i = 0; i < n; i++)
        smtp_hops_feed(&bytes, text + i, 1);
    assert_int_equal(bytes.count, whole.count);
    return whole.count;
}

static void test_fields_counted(void **state)
{
    (void)state;
    assert_int_equal(count_every_split("Received: from a by b; Sun, 6 Dec 2026 10:00:00 +0000\r\n"
                                       "RECEIVED: from c\r\n"
                                       "received:from d\r\n"
                                       "Subject: hi\r\n\r\nbody\r\n"), 3);
    assert_int_equal(count_every_split(""), 0);
    assert_int_equal(count_every_split("Subject: no trace\r\n\r\n"), 0);
    /* the obsolete syntax allows blanks before the colon (RFC 5322 §4.5) */
    assert_int_equal(count_every_split("Received : from a\r\nReceived\t: from b\r\n\r\n"), 2);
}

static void test_look_alikes_not_counted(void **state)
{
    (void)state;
    assert_int_equal(count_every_split("Received-SPF: pass\r\n"
                                       "X-Received: by x\r\n"
                                       " Received: a continuation\r\n"
                                       "Receive: d\r\n"
                                       "Received from e\r\n"
                                       "Subject: Received: f\r\n\r\n"), 0);
}

static void test_folded_lines(void **state)
{
    (void)state;
    assert_int_equal(count_every_split("Received: from a\r\n"
                                       "\tby b with ESMTP\r\n"
                                       " Received: folded, not a field\r\n"
                                       "Received: from c\r\n"
                                       "  by d; Sun, 6 Dec 2026 10:00:00 +0000\r\n\r\n"), 2);
}

static void test_body_not_counted(void **state)
{
    (void)state;
    assert_int_equal(count_every_split("Received: from a\r\n\r\nReceived: from b\r\n"
                                       "Received: from c\r\n"), 1);
    assert_int_equal(count_every_split("\r\nReceived: from a\r\n"), 0);
    struct smtp_hops h;
    smtp_hops_init(&h);
    smtp_hops_feed(&h, "Received: x\r\n\r\n", 15);
    assert_true(h.header_done);
}

static void test_lf_line_ends(void **state)
{
    (void)state;
    assert_int_equal(count_every_split("Received: from a\nReceived: from b\n"
                                       "\tReceived: c\n\nReceived: body\n"), 2);
    /* a bare CR ends no line: what follows is no field name */
    assert_int_equal(count_every_split("Subject: x\rReceived: y\r\n\r\n"), 0);
    assert_int_equal(count_every_split("\rReceived: y\r\n\r\n"), 0);
}

/* n Received: fields, then a Subject and a body with Received: lines of its own. */
static size_t make_message(char *out, size_t cap, unsigned n, const char *dot)
{
    size_t len = 0;
    for (unsigned i = 0; i < n; i++) {
        int w = snprintf(out + len, cap - len, "Received: from h%u by h%u;\r\n"
                         "\tSun, 6 Dec 2026 10:00:00 +0000\r\n", i, i + 1);
        assert_true(w > 0 && (size_t)w < cap - len);
        len += (size_t)w;
    }
    int w = snprintf(out + len, cap - len, "Subject: loop\r\n\r\nReceived: in the body\r\n%s"
                     "Received: more body\r\n", dot);
    assert_true(w > 0 && (size_t)w < cap - len);
    return len + (size_t)w;
}

static int discard(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    (void)p;
    (void)n;
    return 0;
}

static void test_data_reader_counts(void **state)
{
    (void)state;
    static char msg[16384];
    size_t n = make_message(msg, sizeof msg - 8, 101, "..dotted\r\n");
    memcpy(msg + n, ".\r\n", 3);
    n += 3;
    for (size_t step = 1; step <= n; step = step < 64 ? step + 1 : step * 2) {
        struct smtp_data_reader r;
        smtp_data_init(&r, 1000000, 0);
        size_t at = 0;
        while (at < n && !r.done) {
            size_t take = n - at < step ? n - at : step;
            at += smtp_data_feed(&r, msg + at, take, discard, NULL);
        }
        assert_true(r.done);
        assert_int_equal(r.hops.count, 101);
    }
}

static void test_bdat_chunks_count(void **state)
{
    (void)state;
    static char msg[16384];
    size_t n = make_message(msg, sizeof msg, 100, ".not stuffed\r\n");
    for (size_t cut = 0; cut <= n; cut += 7) {
        struct smtp_data_reader r;
        smtp_data_init(&r, 1000000, 0);
        smtp_data_feed_chunk(&r, msg, cut, false, discard, NULL);
        smtp_data_feed_chunk(&r, msg + cut, n - cut, true, discard, NULL);
        assert_int_equal(r.hops.count, 100);
    }
    /* past the size limit the count goes on: the message is refused for its size anyway */
    struct smtp_data_reader r;
    smtp_data_init(&r, 10, 0);
    smtp_data_feed_chunk(&r, msg, n, true, discard, NULL);
    assert_true(r.too_big);
    assert_int_equal(r.hops.count, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_counted),
        cmocka_unit_test(test_look_alikes_not_counted),
        cmocka_unit_test(test_folded_lines),
        cmocka_unit_test(test_body_not_counted),
        cmocka_unit_test(test_lf_line_ends),
        cmocka_unit_test(test_data_reader_counts),
        cmocka_unit_test(test_bdat_chunks_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
