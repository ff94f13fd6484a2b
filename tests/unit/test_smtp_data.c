/* tests/unit/test_smtp_data.c — transcripts for the DATA/BDAT body reader (smtp/data.c): input
 * bytes → emitted bytes, flags and consumed count. Every transcript is replayed whole, cut into
 * three pieces at every pair of positions, and one octet at a time; all must agree. The
 * dot-stuffer is checked by round trips: stuffed in any pieces, read back by the reader. */
#include "unit.h"
#include "transcript.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/data.h"

#define SINK_CAP 32768
#define BIG UINT64_C(1000000)
#define MAX_INPUT 16384

/* What the reader emitted; fail_at makes the fail_at-th call (1-based) report a write error. */
struct sink {
    char buf[SINK_CAP];
    size_t len;
    size_t calls;
    size_t fail_at;
    bool failed;
};

static int sink_emit(void *ctx, const char *data, size_t len)
{
    struct sink *k = ctx;

    assert_true(len > 0);          /* no empty calls */
    assert_false(k->failed);       /* no calls after a failure */
    k->calls++;
    if (k->fail_at != 0 && k->calls == k->fail_at) {
        k->failed = true;
        return -1;
    }
    assert_true(len <= SINK_CAP - k->len);
    memcpy(k->buf + k->len, data, len);
    k->len += len;
    return 0;
}

/* Readable form of bytes for failure messages: \r \n \0 and \xHH escaped, cut at cap. */
static const char *esc(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        int w;
        if (c == '\r')
            w = snprintf(out + o, cap - o, "\\r");
        else if (c == '\n')
            w = snprintf(out + o, cap - o, "\\n");
        else if (c >= 0x20 && c < 0x7f && c != '\\')
            w = snprintf(out + o, cap - o, "%c", c);
        else
            w = snprintf(out + o, cap - o, "\\x%02x", c);
        assert_true(w > 0 && (size_t)w < cap - o);
        o += (size_t)w;
    }
    out[o] = '\0';
    return out;
}

/* The reader's results as one line, e.g. "consumed=6 size=3 done bare_lf". */
static const char *describe(const struct smtp_data_reader *r, bool bdat, size_t consumed,
                            char *out, size_t cap)
{
    int w;

    if (bdat)
        w = snprintf(out, cap, "size=%llu", (unsigned long long)r->size);
    else
        w = snprintf(out, cap, "consumed=%zu size=%llu", consumed, (unsigned long long)r->size);
    assert_true(w > 0 && (size_t)w < cap);
    w = snprintf(out + w, cap - (size_t)w, "%s%s%s%s%s", r->done ? " done" : "",
                 r->too_big ? " too_big" : "", r->bare_lf ? " bare_lf" : "",
                 r->nul ? " nul" : "", r->emit_failed ? " emit_failed" : "");
    assert_true(w >= 0);
    return out;
}

/* One transcript: mode flags, size limit, input, expected output and results. */
struct transcript {
    const char *name;
    unsigned flags;
    uint64_t limit;
    const char *in;
    size_t in_len;
    const char *out;
    size_t out_len;
    const char *result;
};

#define B(s) s, sizeof(s) - 1
#define NORM SMTP_DATA_NORMALIZE_BARE

/* Feeds in[0..n) in the pieces ending at cuts[0..ncuts) (ascending, the last being n; pieces
 * may be empty); DATA stops at the terminator, BDAT marks the final piece last. */
static size_t feed(struct smtp_data_reader *r, struct sink *k, bool bdat, const char *in,
                   const size_t *cuts, size_t ncuts)
{
    size_t off = 0, consumed = 0;

    for (size_t j = 0; j < ncuts && !r->done; j++) {
        size_t len = cuts[j] - off;
        if (bdat) {
            smtp_data_feed_chunk(r, in + off, len, j + 1 == ncuts, sink_emit, k);
            consumed += len;
        } else {
            size_t got = smtp_data_feed(r, in + off, len, sink_emit, k);
            assert_true(got <= len);
            assert_true(got == len || r->done);
            consumed += got;
        }
        off = cuts[j];
    }
    return consumed;
}

static void check_one(const struct transcript *t, bool bdat, const size_t *cuts, size_t ncuts,
                      const char *how)
{
    struct smtp_data_reader r;
    struct sink *k = calloc(1, sizeof *k);
    char got[512], want[512], a[1024], b[1024];

    assert_non_null(k);
    smtp_data_init(&r, t->limit, t->flags);
    size_t consumed = feed(&r, k, bdat, t->in, cuts, ncuts);
    describe(&r, bdat, consumed, got, sizeof got);
    if (strcmp(got, t->result) != 0 || k->len != t->out_len ||
        memcmp(k->buf, t->out, t->out_len) != 0) {
        print_error("%s [%s, fed %s]\n  input  \"%s\"\n  result %s\n  expect %s\n"
                    "  output \"%s\"\n  expect \"%s\"\n", t->name, bdat ? "BDAT" : "DATA", how,
                    esc(t->in, t->in_len, a, sizeof a), got, t->result,
                    esc(k->buf, k->len, b, sizeof b), esc(t->out, t->out_len, want, sizeof want));
        free(k);
        fail();
    }
    /* "size == bytes emitted" holds whenever nothing was withheld */
    if (!r.too_big && !r.emit_failed)
        assert_int_equal(r.size, k->len);
    free(k);
}

/* Replays t whole, in three pieces at every pair of cut points (short inputs) or two pieces at
 * every cut point (long ones), and one octet at a time. */
static void check(const struct transcript *t, bool bdat)
{
    size_t n = t->in_len;
    static size_t cuts[MAX_INPUT];
    char how[64];

    assert_true(n <= MAX_INPUT);
    cuts[0] = n;
    check_one(t, bdat, cuts, 1, "whole");
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = n <= 300 ? a : n; b <= n; b++) {
            size_t three[3] = { a, b, n };
            snprintf(how, sizeof how, "cut at %zu,%zu", a, b);
            check_one(t, bdat, three, 3, how);
        }
    }
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    if (n > 0)
        check_one(t, bdat, cuts, n, "octet by octet");
}

static void run_table(const struct transcript *ts, size_t count, bool bdat)
{
    for (size_t i = 0; i < count; i++)
        check(&ts[i], bdat);
}

/* ---- DATA: ends, dot-stuffing, pipelining ---- */

static const struct transcript data_basic[] = {
    { "empty message", 0, BIG, B(".\r\n"), B(""), "consumed=3 size=0 done" },
    { "simple", 0, BIG, B("Subject: hi\r\n\r\nbody\r\n.\r\n"), B("Subject: hi\r\n\r\nbody\r\n"),
      "consumed=24 size=21 done" },
    { "empty line then end", 0, BIG, B("\r\n.\r\n"), B("\r\n"), "consumed=5 size=2 done" },
    { "stuffed dot line", 0, BIG, B("a\r\n..\r\n.\r\n"), B("a\r\n.\r\n"),
      "consumed=10 size=6 done" },
    { "stuffed first line", 0, BIG, B("..foo\r\n.\r\n"), B(".foo\r\n"),
      "consumed=10 size=6 done" },
    { "unstuffed leading dot", 0, BIG, B(".foo\r\n.\r\n"), B("foo\r\n"),
      "consumed=9 size=5 done" },
    { "three dots", 0, BIG, B("a\r\n...\r\n.\r\n"), B("a\r\n..\r\n"),
      "consumed=11 size=7 done" },
    { "dot space is no end", 0, BIG, B("a\r\n. \r\n.\r\n"), B("a\r\n \r\n"),
      "consumed=10 size=6 done" },
    { "dot inside a line kept", 0, BIG, B("a.b\r\nc.\r\n.\r\n"), B("a.b\r\nc.\r\n"),
      "consumed=12 size=9 done" },
    { "pipelined command not consumed", 0, BIG, B("a\r\n.\r\nQUIT\r\n"), B("a\r\n"),
      "consumed=6 size=3 done" },
    { "pipelined after empty message", 0, BIG, B(".\r\nMAIL FROM:<>\r\n"), B(""),
      "consumed=3 size=0 done" },
    { "second terminator is the next input", 0, BIG, B("x\r\n.\r\n.\r\n"), B("x\r\n"),
      "consumed=6 size=3 done" },
    { "unterminated text", 0, BIG, B("abc"), B("abc"), "consumed=3 size=3" },
    { "unterminated dot", 0, BIG, B("a\r\n."), B("a\r\n"), "consumed=4 size=3" },
    { "unterminated dot CR", 0, BIG, B("a\r\n.\r"), B("a\r\n"), "consumed=5 size=3" },
    { "no input", 0, BIG, B(""), B(""), "consumed=0 size=0" },
};

static void test_data_basic(void **state)
{
    (void)state;
    run_table(data_basic, sizeof data_basic / sizeof data_basic[0], false);
}

/* ---- DATA: SMTP smuggling. None of these sequences ends the message; the real terminator
 * later does, with exactly the bytes before it. ---- */

static const struct transcript data_smuggling[] = {
    { "LF . LF", 0, BIG, B("a\n.\nMAIL\r\n.\r\n"), B("a\n.\nMAIL\r\n"),
      "consumed=13 size=10 done bare_lf" },
    { "LF . CRLF", 0, BIG, B("a\n.\r\nMAIL\r\n.\r\n"), B("a\n.\r\nMAIL\r\n"),
      "consumed=14 size=11 done bare_lf" },
    { "CR . CRLF", 0, BIG, B("a\r.\r\nMAIL\r\n.\r\n"), B("a\r.\r\nMAIL\r\n"),
      "consumed=14 size=11 done bare_lf" },
    { "CRLF . LF", 0, BIG, B("a\r\n.\nMAIL\r\n.\r\n"), B("a\r\n\nMAIL\r\n"),
      "consumed=14 size=10 done bare_lf" },
    { "CRLF . CR", 0, BIG, B("a\r\n.\rMAIL\r\n.\r\n"), B("a\r\n\rMAIL\r\n"),
      "consumed=14 size=10 done bare_lf" },
    { "CRLF . CR X", 0, BIG, B("a\r\n.\rX\r\n.\r\n"), B("a\r\n\rX\r\n"),
      "consumed=11 size=7 done bare_lf" },
    { "CRLF . CR CRLF", 0, BIG, B("a\r\n.\r\r\nb\r\n.\r\n"), B("a\r\n\r\r\nb\r\n"),
      "consumed=13 size=9 done bare_lf" },
    { "CRLF LF . CRLF", 0, BIG, B("a\r\n\n.\r\nMAIL\r\n.\r\n"), B("a\r\n\n.\r\nMAIL\r\n"),
      "consumed=16 size=13 done bare_lf" },
    { "CRLF . LF . CRLF", 0, BIG, B("a\r\n.\n.\r\n.\r\n"), B("a\r\n\n.\r\n"),
      "consumed=11 size=7 done bare_lf" },
    { "LF . LF at the start", 0, BIG, B("\n.\nx\r\n.\r\n"), B("\n.\nx\r\n"),
      "consumed=9 size=6 done bare_lf" },
    { "LF . CRLF at the start", 0, BIG, B("\n.\r\n.\r\n"), B("\n.\r\n"),
      "consumed=7 size=4 done bare_lf" },
    { "CR CRLF . CRLF ends (the CRLF is real)", 0, BIG, B("a\r\r\n.\r\n"), B("a\r\r\n"),
      "consumed=7 size=4 done bare_lf" },
    { "LF CRLF . CRLF ends (the CRLF is real)", 0, BIG, B("a\n\r\n.\r\n"), B("a\n\r\n"),
      "consumed=7 size=4 done bare_lf" },
    { "full smuggled transaction", 0, BIG,
      B("Subject: a\r\n\n.\r\nMAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nDATA\r\nevil\r\n\n.\r\n"
        "real\r\n.\r\nQUIT\r\n"),
      B("Subject: a\r\n\n.\r\nMAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nDATA\r\nevil\r\n\n.\r\n"
        "real\r\n"), "consumed=73 size=70 done bare_lf" },
};

static const struct transcript data_smuggling_norm[] = {
    { "LF . LF", NORM, BIG, B("a\n.\nMAIL\r\n.\r\n"), B("a\r\n.\r\nMAIL\r\n"),
      "consumed=13 size=12 done" },
    { "LF . CRLF", NORM, BIG, B("a\n.\r\nMAIL\r\n.\r\n"), B("a\r\n.\r\nMAIL\r\n"),
      "consumed=14 size=12 done" },
    { "CR . CRLF", NORM, BIG, B("a\r.\r\nMAIL\r\n.\r\n"), B("a\r\n.\r\nMAIL\r\n"),
      "consumed=14 size=12 done" },
    { "CRLF . LF", NORM, BIG, B("a\r\n.\nMAIL\r\n.\r\n"), B("a\r\n\r\nMAIL\r\n"),
      "consumed=14 size=11 done" },
    { "CRLF . CR", NORM, BIG, B("a\r\n.\rMAIL\r\n.\r\n"), B("a\r\n\r\nMAIL\r\n"),
      "consumed=14 size=11 done" },
    { "CRLF . CR CRLF", NORM, BIG, B("a\r\n.\r\r\nb\r\n.\r\n"), B("a\r\n\r\n\r\nb\r\n"),
      "consumed=13 size=10 done" },
    { "CRLF LF . CRLF", NORM, BIG, B("a\r\n\n.\r\nMAIL\r\n.\r\n"),
      B("a\r\n\r\n.\r\nMAIL\r\n"), "consumed=16 size=14 done" },
    { "CR CRLF . CRLF ends", NORM, BIG, B("a\r\r\n.\r\n"), B("a\r\n\r\n"),
      "consumed=7 size=5 done" },
};

static void test_data_smuggling(void **state)
{
    (void)state;
    run_table(data_smuggling, sizeof data_smuggling / sizeof data_smuggling[0], false);
}

static void test_data_smuggling_normalized(void **state)
{
    (void)state;
    run_table(data_smuggling_norm, sizeof data_smuggling_norm / sizeof data_smuggling_norm[0],
              false);
}

/* ---- DATA: bare CR / LF, NUL ---- */

static const struct transcript data_bare[] = {
    { "bare LF flagged", 0, BIG, B("a\nb\r\n.\r\n"), B("a\nb\r\n"),
      "consumed=8 size=5 done bare_lf" },
    { "bare CR flagged", 0, BIG, B("a\rb\r\n.\r\n"), B("a\rb\r\n"),
      "consumed=8 size=5 done bare_lf" },
    { "CR CR LF", 0, BIG, B("a\r\r\nb\r\n.\r\n"), B("a\r\r\nb\r\n"),
      "consumed=10 size=7 done bare_lf" },
    { "bare LF normalised", NORM, BIG, B("a\nb\r\n.\r\n"), B("a\r\nb\r\n"),
      "consumed=8 size=6 done" },
    { "bare CR normalised", NORM, BIG, B("a\rb\r\n.\r\n"), B("a\r\nb\r\n"),
      "consumed=8 size=6 done" },
    { "CR CR CR LF normalised", NORM, BIG, B("\r\r\r\n.\r\n"), B("\r\n\r\n\r\n"),
      "consumed=7 size=6 done" },
    { "LF LF normalised", NORM, BIG, B("\n\n\r\n.\r\n"), B("\r\n\r\n\r\n"),
      "consumed=7 size=6 done" },
    { "LF CR normalised", NORM, BIG, B("x\n\ry\r\n.\r\n"), B("x\r\n\r\ny\r\n"),
      "consumed=9 size=8 done" },
    { "NUL", 0, BIG, B("a\0b\r\n.\r\n"), B("a\0b\r\n"), "consumed=8 size=5 done nul" },
    { "NUL after a leading dot", NORM, BIG, B(".\0\r\n.\r\n"), B("\0\r\n"),
      "consumed=7 size=3 done nul" },
    { "clean CRLF text", 0, BIG, B("a\r\nb\r\n\r\n.\r\n"), B("a\r\nb\r\n\r\n"),
      "consumed=11 size=8 done" },
    { "NUL in a later line", 0, BIG, B("ab\r\ncd\0e\r\n.\r\n"), B("ab\r\ncd\0e\r\n"),
      "consumed=13 size=10 done nul" },
    { "NUL at a line start", 0, BIG, B("ab\r\n\0\r\n.\r\n"), B("ab\r\n\0\r\n"),
      "consumed=10 size=7 done nul" },
    { "NUL past the end is the next command's", 0, BIG, B("ab\r\n.\r\nX\0\r\n"),
      B("ab\r\n"), "consumed=7 size=4 done" },
    { "lines after a stuffed one", 0, BIG, B("ab\r\n..\r\ncd\r\nef\r\n.\r\n"),
      B("ab\r\n.\r\ncd\r\nef\r\n"), "consumed=19 size=15 done" },
};

static void test_data_bare(void **state)
{
    (void)state;
    run_table(data_bare, sizeof data_bare / sizeof data_bare[0], false);
}

/* ---- size limit: the message "abcd\r\n" is 6 octets ---- */

static const struct transcript data_size[] = {
    { "limit - 1", 0, 5, B("abcd\r\n.\r\n"), B("abcd\r"), "consumed=9 size=6 done too_big" },
    { "at limit", 0, 6, B("abcd\r\n.\r\n"), B("abcd\r\n"), "consumed=9 size=6 done" },
    { "limit + 1", 0, 7, B("abcd\r\n.\r\n"), B("abcd\r\n"), "consumed=9 size=6 done" },
    { "counting continues past the limit", 0, 6, B("abcd\r\nefgh\r\n..\r\n.\r\nNOOP\r\n"),
      B("abcd\r\n"), "consumed=19 size=15 done too_big" },
    { "zero limit", 0, 0, B("x\r\n.\r\n"), B(""), "consumed=6 size=3 done too_big" },
    { "zero limit, empty message", 0, 0, B(".\r\n"), B(""), "consumed=3 size=0 done" },
    { "removed dots are not counted", 0, 3, B("..\r\n.\r\n"), B(".\r\n"),
      "consumed=7 size=3 done" },
    { "inserted CRs are counted", NORM, 5, B("ab\ncd\r\n.\r\n"), B("ab\r\nc"),
      "consumed=10 size=8 done too_big" },
};

static void test_data_size(void **state)
{
    (void)state;
    run_table(data_size, sizeof data_size / sizeof data_size[0], false);
}

/* ---- BDAT ---- */

static const struct transcript bdat[] = {
    { "content exactly, no unstuffing, no end", 0, BIG, B("..x\r\n.\r\nQUIT\r\n"),
      B("..x\r\n.\r\nQUIT\r\n"), "size=14 done" },
    { "empty", 0, BIG, B(""), B(""), "size=0 done" },
    { "bare LF", 0, BIG, B("a\nb"), B("a\nb"), "size=3 done bare_lf" },
    { "bare CR", 0, BIG, B("a\rb"), B("a\rb"), "size=3 done bare_lf" },
    { "trailing CR is bare", 0, BIG, B("a\r"), B("a\r"), "size=2 done bare_lf" },
    { "trailing CRLF", 0, BIG, B("a\r\n"), B("a\r\n"), "size=3 done" },
    { "normalised", NORM, BIG, B("\na\rb\r\r\nc\r"), B("\r\na\r\nb\r\n\r\nc\r\n"),
      "size=13 done" },
    { "NUL", 0, BIG, B("\0"), B("\0"), "size=1 done nul" },
    { "size limit", 0, 4, B("abc\r\ndef"), B("abc\r"), "size=8 done too_big" },
    { "size limit at", 0, 8, B("abc\r\ndef"), B("abc\r\ndef"), "size=8 done" },
};

static void test_bdat(void **state)
{
    (void)state;
    run_table(bdat, sizeof bdat / sizeof bdat[0], true);
}

/* Explicit chunk boundaries: a CR ending one chunk and an LF starting the next are one CRLF. */
static void test_bdat_cr_lf_across_chunks(void **state)
{
    struct smtp_data_reader r;
    struct sink *k = calloc(1, sizeof *k);

    (void)state;
    assert_non_null(k);
    smtp_data_init(&r, BIG, 0);
    smtp_data_feed_chunk(&r, "a\r", 2, false, sink_emit, k);
    assert_false(r.bare_lf);
    smtp_data_feed_chunk(&r, "", 0, false, sink_emit, k);
    smtp_data_feed_chunk(&r, "\nb", 2, true, sink_emit, k);
    assert_false(r.bare_lf);
    assert_true(r.done);
    assert_int_equal(k->len, 4);
    assert_memory_equal(k->buf, "a\r\nb", 4);

    k->len = 0;
    smtp_data_init(&r, BIG, SMTP_DATA_NORMALIZE_BARE);
    smtp_data_feed_chunk(&r, "a\r", 2, false, sink_emit, k);
    smtp_data_feed_chunk(&r, "b\r", 2, false, sink_emit, k);
    smtp_data_feed_chunk(&r, "", 0, true, sink_emit, k);
    assert_false(r.bare_lf);
    assert_int_equal(r.size, 6);
    assert_int_equal(k->len, 6);
    assert_memory_equal(k->buf, "a\r\nb\r\n", 6);

    /* after the last chunk, more input is ignored */
    smtp_data_feed_chunk(&r, "zz", 2, true, sink_emit, k);
    assert_int_equal(r.size, 6);
    assert_int_equal(k->len, 6);
    free(k);
}

/* ---- emit: large runs, failures ---- */

static size_t calls_for(const char *in, size_t n, unsigned flags)
{
    struct smtp_data_reader r;
    struct sink *k = calloc(1, sizeof *k);
    size_t calls;

    assert_non_null(k);
    smtp_data_init(&r, BIG, flags);
    assert_int_equal(smtp_data_feed(&r, in, n, sink_emit, k), n);
    assert_true(r.done);
    calls = k->calls;
    free(k);
    return calls;
}

static void test_emit_runs_are_large(void **state)
{
    (void)state;
    /* one run per stretch of unchanged input: lines are not split into calls */
    assert_int_equal(calls_for(B("Subject: x\r\n\r\nline 1\r\nline 2\r\n.\r\n"), 0), 1);
    /* a removed dot breaks the run once */
    assert_int_equal(calls_for(B("a\r\n..b\r\nc\r\n.\r\n"), 0), 2);
    /* a flagged bare LF changes nothing in the output, so it does not break the run */
    assert_int_equal(calls_for(B("a\nb\r\n.\r\n"), 0), 1);
    /* a normalised one does: run, inserted CR, run */
    assert_int_equal(calls_for(B("a\nb\r\n.\r\n"), SMTP_DATA_NORMALIZE_BARE), 3);
}

static void test_emit_failure(void **state)
{
    static const char in[] = "a\r\n..b\r\nc\r\n.\r\nQUIT\r\n";
    struct smtp_data_reader r;
    struct sink *k = calloc(1, sizeof *k);

    (void)state;
    assert_non_null(k);
    k->fail_at = 2; /* the run after the removed dot */
    smtp_data_init(&r, BIG, 0);
    /* the reader keeps consuming to the terminator, and never calls emit again */
    assert_int_equal(smtp_data_feed(&r, in, 8, sink_emit, k), 8);
    assert_true(r.emit_failed);
    assert_int_equal(smtp_data_feed(&r, in + 8, sizeof in - 1 - 8, sink_emit, k), 14 - 8);
    assert_true(r.done);
    assert_true(r.emit_failed);
    assert_false(r.too_big);
    assert_int_equal(r.size, 10);
    assert_int_equal(k->calls, 2);
    assert_int_equal(k->len, 3);
    assert_memory_equal(k->buf, "a\r\n", 3);
    free(k);
}

static void test_feed_after_done(void **state)
{
    struct smtp_data_reader r;
    struct sink *k = calloc(1, sizeof *k);

    (void)state;
    assert_non_null(k);
    smtp_data_init(&r, BIG, 0);
    assert_int_equal(smtp_data_feed(&r, ".\r\n", 3, sink_emit, k), 3);
    assert_true(r.done);
    assert_int_equal(smtp_data_feed(&r, "x\r\n.\r\n", 6, sink_emit, k), 0);
    assert_int_equal(k->calls, 0);
    assert_int_equal(r.size, 0);
    free(k);
}

/* ---- long lines: 5000 octets, kept unchanged ---- */

static void test_long_lines(void **state)
{
    enum { LONG = 5000 };
    static char in[3 * LONG + 32], out[3 * LONG + 32];
    size_t n = 0, m = 0;
    char result[128];

    (void)state;
    memset(in, 'x', LONG);
    n = LONG;
    memcpy(in + n, "\r\n..", 4); /* a stuffed long line */
    n += 4;
    memset(in + n, 'y', LONG);
    n += LONG;
    memcpy(in + n, "\r\n", 2);
    n += 2;
    memset(in + n, 'z', LONG); /* a long line with a bare LF in the middle */
    in[n + LONG / 2] = '\n';
    n += LONG;
    memcpy(in + n, "\r\n.\r\n", 5);
    n += 5;

    memcpy(out, in, LONG + 2);
    m = LONG + 2;
    memcpy(out + m, in + LONG + 3, n - (LONG + 3) - 3);
    m += n - (LONG + 3) - 3;

    snprintf(result, sizeof result, "consumed=%zu size=%zu done bare_lf", n, m);
    struct transcript t = { "long lines", 0, BIG, in, n, out, m, result };
    check(&t, false);
}

/* ---- the sender's side: dot-stuffing, and back ---- */

#define WIRE_CAP (2 * 4096 + 8)

/* The wire form of body: stuffed from input pieces of in_step octets into calls of room octets
 * each (a random size in 3..64 when 0); in pieces that small, every call must make progress. */
static size_t stuff_all(const char *body, size_t n, size_t in_step, size_t room, uint32_t *seed,
                        char *wire)
{
    struct smtp_data_stuffer st;
    size_t pos = 0, w = 0;
    smtp_data_stuff_init(&st);
    while (pos < n) {
        size_t piece = in_step && in_step < n - pos ? in_step : n - pos;
        size_t used = 0;
        while (used < piece) {
            size_t r = room ? room : 3 + next_random(seed) % 62;
            size_t u;
            if (r > WIRE_CAP - w)
                r = WIRE_CAP - w;
            size_t got = smtp_data_stuff(&st, body + pos + used, piece - used, &u, wire + w, r);
            assert_true(got <= r && u <= piece - used);
            assert_true(got > 0 || u > 0); /* progress */
            w += got;
            used += u;
        }
        pos += piece;
    }
    size_t end = smtp_data_stuff_end(&st, wire + w, WIRE_CAP - w);
    assert_true(end == 3 || end == 5);
    return w + end;
}

/* What the receiver stores of body: every line break (CRLF, bare CR, bare LF) as CRLF, and a
 * final CRLF added when the body does not end with a line break. */
static size_t normalized(const char *body, size_t n, char *out)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (body[i] == '\r' || body[i] == '\n') {
            if (body[i] == '\r' && i + 1 < n && body[i + 1] == '\n')
                i++;
            out[w++] = '\r';
            out[w++] = '\n';
        } else {
            out[w++] = body[i];
        }
    }
    if (w > 0 && out[w - 1] != '\n')
        w += (size_t)snprintf(out + w, 3, "\r\n");
    return w;
}

/* Stuffs body in many ways (all must give want when it is given), then reads the wire back
 * with the DATA reader in random pieces: the end of data is found exactly at the wire's end,
 * no bare line break is seen, and what is stored is normalized(body). */
static void round_trip(const char *body, size_t n, const char *want, size_t want_len,
                       uint32_t seed)
{
    static char wire[WIRE_CAP], again[WIRE_CAP], norm[WIRE_CAP];
    char a[1024], b[1024], d[1024];
    assert_true(n <= 4096);
    size_t len = stuff_all(body, n, 0, WIRE_CAP, &seed, wire);
    if (want && (len != want_len || memcmp(wire, want, len) != 0)) {
        print_error("stuffing \"%s\"\n  got    \"%s\"\n  expect \"%s\"\n",
                    esc(body, n, a, sizeof a), esc(wire, len, b, sizeof b),
                    esc(want, want_len, d, sizeof d));
        fail();
    }
    static const size_t steps[] = {1, 2, 3, 7, 0};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        for (size_t room = 0; room <= 5; room = room ? room + 1 : 3) {
            size_t len2 = stuff_all(body, n, steps[i] ? steps[i] : n, room, &seed, again);
            assert_int_equal(len2, len);
            assert_memory_equal(again, wire, len);
        }
    }
    struct smtp_data_reader r;
    struct sink *k = calloc(1, sizeof *k);
    assert_non_null(k);
    smtp_data_init(&r, BIG, 0);
    size_t off = 0;
    while (off < len && !r.done) {
        size_t piece = 1 + next_random(&seed) % 13;
        if (piece > len - off)
            piece = len - off;
        size_t got = smtp_data_feed(&r, wire + off, piece, sink_emit, k);
        assert_true(got == piece || (r.done && off + got == len));
        off += got;
    }
    assert_true(r.done);
    assert_int_equal(off, len);
    assert_false(r.bare_lf);
    assert_int_equal(r.nul, memchr(body, '\0', n) != NULL);
    size_t nlen = normalized(body, n, norm);
    if (k->len != nlen || memcmp(k->buf, norm, nlen) != 0) {
        print_error("round trip of \"%s\"\n  stored \"%s\"\n", esc(body, n, a, sizeof a),
                    esc(k->buf, k->len, b, sizeof b));
        fail();
    }
    free(k);
}

static void test_stuff_transcripts(void **state)
{
    (void)state;
    static const struct {
        const char *body, *wire;
    } cases[] = {
        {"", ".\r\n"},
        {".", "..\r\n.\r\n"},
        {".\r\n", "..\r\n.\r\n"},
        {"..x\r\n", "...x\r\n.\r\n"},
        {"a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
        {".\r\n.\r\n.", "..\r\n..\r\n..\r\n.\r\n"},
        {"no final line break", "no final line break\r\n.\r\n"},
        {"a.b\r\n. x", "a.b\r\n.. x\r\n.\r\n"}, /* only a leading dot is doubled */
        {"bare\nLF\n.dot\n", "bare\r\nLF\r\n..dot\r\n.\r\n"},
        {"bare\rCR\r.dot\r", "bare\r\nCR\r\n..dot\r\n.\r\n"},
        /* SMTP smuggling shapes: each becomes a stuffed line, never an end of data */
        {"a\n.\r\nb", "a\r\n..\r\nb\r\n.\r\n"},
        {"a\r\n.\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
        {"a\r.\r\nb", "a\r\n..\r\nb\r\n.\r\n"},
        {"a\r\n.\rb", "a\r\n..\r\nb\r\n.\r\n"},
        {"x\r\r\n.\r\n", "x\r\n\r\n..\r\n.\r\n"},
        {"\r", "\r\n.\r\n"},
        {"\n", "\r\n.\r\n"},
        {"\r\n", "\r\n.\r\n"},
        {"\n\r", "\r\n\r\n.\r\n"},
        {"\r\n\n", "\r\n\r\n.\r\n"},
        {"\r\n.\r\n", "\r\n..\r\n.\r\n"}, /* the end of data inside a message */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        round_trip(cases[i].body, strlen(cases[i].body), cases[i].wire, strlen(cases[i].wire),
                   (uint32_t)i + 1);
}

/* A line break cut between two input pieces is still one line break. */
static void test_stuff_crlf_across_pieces(void **state)
{
    struct smtp_data_stuffer st;
    char out[32];
    size_t used, w;

    (void)state;
    smtp_data_stuff_init(&st);
    w = smtp_data_stuff(&st, "a\r", 2, &used, out, sizeof out);
    assert_int_equal(used, 2);
    w += smtp_data_stuff(&st, "\n.b", 3, &used, out + w, sizeof out - w);
    assert_int_equal(used, 3);
    w += smtp_data_stuff_end(&st, out + w, sizeof out - w);
    assert_int_equal(w, 11);
    assert_memory_equal(out, "a\r\n..b\r\n.\r\n", 11);
}

/* Below its minimum room the stuffer writes and consumes nothing; at it, it moves on. */
static void test_stuff_room(void **state)
{
    struct smtp_data_stuffer st;
    char out[8];
    size_t used = 99;

    (void)state;
    smtp_data_stuff_init(&st);
    assert_int_equal(smtp_data_stuff(&st, ".x", 2, &used, out, 2), 0);
    assert_int_equal(used, 0);
    assert_int_equal(smtp_data_stuff(&st, ".x", 2, &used, out, 3), 3);
    assert_int_equal(used, 2);
    assert_memory_equal(out, "..x", 3);
    assert_int_equal(smtp_data_stuff_end(&st, out, 4), 0);
    assert_int_equal(smtp_data_stuff_end(&st, out, 5), 5);
    assert_memory_equal(out, "\r\n.\r\n", 5);
    smtp_data_stuff_init(&st);
    assert_int_equal(smtp_data_stuff_end(&st, out, 5), 3); /* empty message */
    assert_memory_equal(out, ".\r\n", 3);
}

/* Random bodies over an alphabet of dots, line break octets, NUL and text. */
static void test_stuff_round_trip_random(void **state)
{
    static const char alphabet[] = {'.', '.', '\r', '\n', '\r', '\n', 'a', 'b', ' ', '\0'};
    static char body[4096];
    uint32_t seed = 2463534242u;

    (void)state;
    for (int i = 0; i < 300; i++) {
        size_t n = next_random(&seed) % (i < 250 ? 40 : sizeof body);
        for (size_t j = 0; j < n; j++)
            body[j] = alphabet[next_random(&seed) % sizeof alphabet];
        round_trip(body, n, NULL, 0, seed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_basic),
        cmocka_unit_test(test_data_smuggling),
        cmocka_unit_test(test_data_smuggling_normalized),
        cmocka_unit_test(test_data_bare),
        cmocka_unit_test(test_data_size),
        cmocka_unit_test(test_bdat),
        cmocka_unit_test(test_bdat_cr_lf_across_chunks),
        cmocka_unit_test(test_emit_runs_are_large),
        cmocka_unit_test(test_emit_failure),
        cmocka_unit_test(test_feed_after_done),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_stuff_transcripts),
        cmocka_unit_test(test_stuff_crlf_across_pieces),
        cmocka_unit_test(test_stuff_room),
        cmocka_unit_test(test_stuff_round_trip_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
