/* fuzz/fuzz_data.c — libFuzzer target for the DATA/BDAT body reader (smtp/data.c). The first
 * byte picks mode, flags, size limit, emit failure and a split pattern; the rest is the wire.
 * Checks: fed whole, in pieces and octet by octet give identical results, equal to a plain
 * whole-buffer reference reading of the rules; consumed <= n; the end is a real <CRLF>.<CRLF>;
 * the Received: count (smtp/hops.c) equals a line-by-line reference count of the stored text. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* Output collector; with fail_after set, the call that would pass that many octets fails. */
struct sink {
    char *buf;
    size_t len, cap;
    size_t fail_after;
    bool failed;
};

static int sink_emit(void *ctx, const char *d, size_t len)
{
    struct sink *k = ctx;

    CHECK(len > 0 && !k->failed);
    if (k->fail_after != 0 && k->len + len > k->fail_after) {
        k->failed = true;
        return 1;
    }
    CHECK(len <= k->cap - k->len);
    memcpy(k->buf + k->len, d, len);
    k->len += len;
    return 0;
}

struct outcome {
    size_t consumed;
    struct smtp_data_reader r;
};

/* Feeds p in pieces: piece == 0 means whole, 1 octet by octet, otherwise pseudo-random lengths
 * 0..8 (an empty piece is always followed by a non-empty one) seeded by piece. */
static void run(const char *p, size_t n, unsigned flags, bool bdat, uint64_t limit,
                unsigned piece, struct sink *k, struct outcome *o)
{
    uint32_t x = piece * 2654435761u + 1;
    size_t off = 0;
    bool was_empty = false;

    smtp_data_init(&o->r, limit, flags);
    o->consumed = 0;
    do {
        size_t len = n - off;
        if (piece == 1) {
            len = len > 0 ? 1 : 0;
        } else if (piece > 1) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            size_t want = was_empty ? 1 + x % 8 : x % 9;
            len = want < len ? want : len;
        }
        was_empty = len == 0;
        bool last = off + len == n;
        if (bdat) {
            smtp_data_feed_chunk(&o->r, p + off, len, last, sink_emit, k);
            o->consumed += len;
        } else {
            size_t got = smtp_data_feed(&o->r, p + off, len, sink_emit, k);
            CHECK(got <= len);
            CHECK(got == len || o->r.done);
            o->consumed += got;
        }
        off += len;
    } while (off < n && !o->r.done);
}

/* The rules read directly off the whole buffer with lookahead: the full stored message (before
 * any size cut) goes to out, results to o. Written independently of the state machine. */
static size_t reference(const char *p, size_t n, unsigned flags, bool bdat, char *out,
                        struct outcome *o)
{
    bool norm = flags & SMTP_DATA_NORMALIZE_BARE;
    bool bol = !bdat;
    size_t i = 0, m = 0;

    memset(o, 0, sizeof *o);
    o->consumed = n;
    while (i < n) {
        if (bol && p[i] == '.') {
            if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
                o->r.done = true;
                o->consumed = i + 3;
                break;
            }
            if (i + 1 == n || (i + 2 == n && p[i + 1] == '\r'))
                break; /* maybe the terminator: nothing stored yet */
            i++; /* unstuff */
        }
        bol = false;
        if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') {
            out[m++] = '\r', out[m++] = '\n';
            i += 2;
            bol = !bdat;
            continue;
        }
        if (p[i] == '\r' && i + 1 == n && !bdat) {
            out[m++] = '\r'; /* undecided: a CRLF may still follow */
            i++;
            continue;
        }
        if (p[i] == '\r' || p[i] == '\n') {
            if (norm) {
                out[m++] = '\r', out[m++] = '\n';
            } else {
                out[m++] = p[i];
                o->r.bare_lf = true;
            }
            i++;
            continue;
        }
        if (p[i] == '\0')
            o->r.nul = true;
        out[m++] = p[i++];
    }
    if (bdat)
        o->r.done = true;
    o->r.size = m;
    return m;
}

/* Received: fields in the header of the stored text, read line by line: a line that is empty
 * (or a lone CR) ends the header; a line counts when it starts with "received" in any case,
 * then blanks, then a colon. Written independently of the counter's state machine. */
static unsigned reference_hops(const char *t, size_t m)
{
    static const char name[] = "received";
    unsigned count = 0;
    size_t at = 0;
    while (at < m) {
        const char *lf = memchr(t + at, '\n', m - at);
        size_t end = lf ? (size_t)(lf - t) : m, len = end - at;
        if (lf && (len == 0 || (len == 1 && t[at] == '\r')))
            break;
        size_t k = 0;
        while (k < 8 && k < len && (t[at + k] | 0x20) == name[k])
            k++;
        while (k == 8 && len > 8 && (t[at + 8] == ' ' || t[at + 8] == '\t'))
            at++, len--;
        if (k == 8 && len > 8 && t[at + 8] == ':')
            count++;
        at = end + 1;
    }
    return count;
}

static bool same(const struct outcome *a, const struct outcome *b)
{
    return a->consumed == b->consumed && a->r.size == b->r.size &&
           a->r.too_big == b->r.too_big && a->r.bare_lf == b->r.bare_lf &&
           a->r.nul == b->r.nul && a->r.emit_failed == b->r.emit_failed &&
           a->r.done == b->r.done && a->r.hops.count == b->r.hops.count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    unsigned flags = sel & 1 ? SMTP_DATA_NORMALIZE_BARE : 0;
    bool bdat = sel & 2;
    const uint64_t limits[4] = { UINT64_MAX, 0, 7, n / 2 };
    uint64_t limit = limits[(sel >> 2) & 3];
    size_t fail_after = sel & 16 ? 5 : 0;
    unsigned piece = 2 + (sel >> 5);
    size_t cap = 2 * n + 1;
    char *ref = malloc(cap), *bufs[3];
    struct outcome want, got[3];
    struct sink k[3];

    CHECK(ref != NULL);
    size_t m = reference(p, n, flags, bdat, ref, &want);
    want.r.too_big = m > limit;
    size_t stored = want.r.too_big ? (size_t)limit : m;
    want.r.emit_failed = fail_after != 0 && stored > fail_after;
    want.r.hops.count = reference_hops(ref, m);

    const unsigned pieces[3] = { 0, 1, piece };
    for (int j = 0; j < 3; j++) {
        bufs[j] = malloc(cap);
        CHECK(bufs[j] != NULL);
        k[j] = (struct sink){ bufs[j], 0, cap, fail_after, false };
        run(p, n, flags, bdat, limit, pieces[j], &k[j], &got[j]);
        CHECK(same(&got[j], &want));
        /* what arrived is the stored message, cut at the limit (and at a failed write), so
         * every split gives the same bytes */
        CHECK(k[j].len <= stored && memcmp(k[j].buf, ref, k[j].len) == 0);
        if (!got[j].r.emit_failed)
            CHECK(k[j].len == stored);
        if (!got[j].r.too_big && !got[j].r.emit_failed)
            CHECK(got[j].r.size == k[j].len);
    }
    /* a DATA end is a real CRLF "." CRLF (or "." CRLF at the start), and the stored message
     * then ends with that first CRLF: nothing was cut off before it */
    if (!bdat && want.r.done) {
        size_t c = want.consumed;
        CHECK(c >= 3 && memcmp(p + c - 3, ".\r\n", 3) == 0);
        CHECK(c == 3 || (c >= 5 && p[c - 5] == '\r' && p[c - 4] == '\n'));
        CHECK(m == 0 || (m >= 2 && ref[m - 2] == '\r' && ref[m - 1] == '\n'));
    }
    for (int j = 0; j < 3; j++)
        free(bufs[j]);
    free(ref);
    return 0;
}
