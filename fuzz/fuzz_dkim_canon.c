/* fuzz/fuzz_dkim_canon.c — libFuzzer target for DKIM relaxed canonicalisation and header
 * splitting (auth/canon.c; the From: field's domains have fuzz_from.c). Byte 0 picks where the
 * body is cut in two. Checks: the canonical body does not depend on how it is cut, has no whitespace
 * before a line end and no empty line at its end; each header's form fits its bound. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/canon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

struct sink {
    char *p;
    size_t len, cap;
};

static void sink_out(void *ctx, const char *p, size_t n)
{
    struct sink *s = ctx;
    CHECK(s->len + n <= s->cap);
    memcpy(s->p + s->len, p, n);
    s->len += n;
}

static void body(const char *p, size_t n, size_t cut, struct sink *s)
{
    struct auth_canon_body b;
    auth_canon_body_init(&b, sink_out, s);
    auth_canon_body_feed(&b, p, cut);
    auth_canon_body_feed(&b, p + cut, n - cut);
    auth_canon_body_finish(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = size - 1;
    char *msg = malloc(n ? n : 1); /* exact size: ASan sees any read past the end */
    memcpy(msg, data + 1, n);
    size_t cut = n ? data[0] % (n + 1) : 0;

    /* A canonical body is at most twice the input (a bare CR gains nothing; CRLF is added at
     * most once per line, and a line holds at least one octet). */
    struct sink a = {malloc(2 * n + 2), 0, 2 * n + 2}, b = {malloc(2 * n + 2), 0, 2 * n + 2};
    body(msg, n, 0, &a);
    body(msg, n, cut, &b);
    CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
    for (size_t i = 0; i + 1 < a.len; i++)
        if (a.p[i] == '\r' && a.p[i + 1] == '\n')
            CHECK(i == 0 || (a.p[i - 1] != ' ' && a.p[i - 1] != '\t'));
    CHECK(a.len == 0 || (a.len >= 2 && a.p[a.len - 2] == '\r' && a.p[a.len - 1] == '\n'));
    CHECK(a.len < 4 || memcmp(a.p + a.len - 4, "\r\n\r\n", 4) != 0);
    free(a.p);
    free(b.p);

    struct auth_field fields[32];
    size_t nf = 0, off = 0;
    auth_fields_split(msg, n, fields, 32, &nf, &off);
    CHECK(off <= n);
    for (size_t i = 0; i < nf && i < 32; i++) {
        CHECK(fields[i].p >= msg && fields[i].p + fields[i].len <= msg + n);
        char *out = malloc(fields[i].len + 3);
        size_t cn = auth_canon_header(fields[i].p, fields[i].len, true, out, fields[i].len + 3);
        CHECK(cn <= fields[i].len + 2);
        CHECK(cn == 0 || out[cn] == '\0');
        free(out);
    }
    free(msg);
    return 0;
}
