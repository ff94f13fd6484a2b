/* smtp/data.c — DATA/BDAT body reader: dot-unstuffing, end only at <CRLF>.<CRLF>, bare CR/LF
 * and NUL detection or normalisation, size accounting; and its mirror, the sender's dot-stuffer.
 * RFC 5321 §4.1.1.4, §4.5.2, §2.3.8; RFC 3030. Lines over 998 octets (§4.5.3.1.6) are kept
 * unchanged: never split, never truncated.
 *
 * Why it looks like this. The reader is a byte-level state machine that keeps no message data,
 * only where it is in a line (start of line, just after a leading dot, inside a line) and whether
 * the last octet was a CR. Long lines therefore cost nothing and cannot overflow anything, and a
 * line's length is no business of the reader. Output goes out as zero-copy runs of the input,
 * broken only where the output differs from the input (a removed dot, an inserted CR or LF, the
 * terminator) and at the end of each fed buffer. The state machine only sees the octets that
 * matter: memchr finds the next CR and LF (each search starts past the last one found, so a
 * buffer is searched at most once per character whatever its line ends look like), a real CRLF
 * inside a line is taken whole, and NUL is one memchr over what each call consumed.
 *
 * Only a real CRLF (CR immediately followed by LF) ends a line. A bare LF or bare CR ends
 * nothing: a dot after it is neither unstuffed nor a terminator. Treating "\n.\n", "\r.\r\n" and
 * the like as the end of data is what lets an attacker smuggle a second message through a relay
 * that reads line ends differently (the December 2023 "SMTP smuggling" class).
 *
 * A CR inside a line is emitted at once, whatever follows: as stored, CR LF and a bare CR both
 * begin with that CR. The one CR that must be held is the one after a leading dot, because
 * ".\r\n" at the start of a line is the terminator and nothing of it is stored. That CR is a
 * known octet, so holding it is one bit of state, not a buffer. */
#include "smtp/data.h"

#include <string.h>

/* Where the reader is in the current line; pending_cr adds "the last octet was a CR". */
enum data_state {
    AT_LINE_START, /* after a real CRLF, or at the very start of DATA */
    AFTER_DOT,     /* a leading dot was read (and dropped); with pending_cr, ".\r" (both held) */
    IN_LINE        /* anywhere else; with pending_cr, the CR has already been emitted */
};

/* One call's view of its input: the run [run, i) of input octets not yet emitted, and where
 * the next CR and the next LF are (n when there is none; valid while not behind i). */
struct scan {
    struct smtp_data_reader *r;
    const char *p;
    size_t n;
    size_t run;
    size_t next_cr, next_lf;
    smtp_data_emit_fn emit;
    void *ctx;
};

/* Index of the first c in p[from..n), or n. */
static size_t find(const struct scan *s, size_t from, char c)
{
    const char *hit = from < s->n ? memchr(s->p + from, c, s->n - from) : NULL;
    return hit != NULL ? (size_t)(hit - s->p) : s->n;
}

static struct scan scan_begin(struct smtp_data_reader *r, const char *p, size_t n,
                              smtp_data_emit_fn emit, void *ctx)
{
    struct scan s = { r, p, n, 0, 0, 0, emit, ctx };
    s.next_cr = find(&s, 0, '\r');
    s.next_lf = find(&s, 0, '\n');
    return s;
}

/* The call consumed p[0..used): a NUL among those octets is recorded (it changes no state). */
static void note_nul(struct smtp_data_reader *r, const char *p, size_t used)
{
    if (!r->nul && used > 0 && memchr(p, '\0', used) != NULL)
        r->nul = true;
}

void smtp_data_init(struct smtp_data_reader *r, uint64_t limit, unsigned flags)
{
    memset(r, 0, sizeof *r);
    r->limit = limit;
    r->flags = flags;
    r->state = AT_LINE_START;
    smtp_hops_init(&r->hops);
}

/* Counts len stored octets (and the Received: fields among them) and emits those that fit
 * under the limit. Emitting exactly up to the
 * limit (not "the whole run or nothing") keeps the output independent of how input was split. */
static void output(struct scan *s, const char *data, size_t len)
{
    struct smtp_data_reader *r = s->r;
    uint64_t room = r->too_big ? 0 : r->limit - r->size;
    size_t take = (uint64_t)len < room ? len : (size_t)room;

    if (len == 0)
        return;
    smtp_hops_feed(&r->hops, data, len);
    /* saturate rather than wrap: a wrapped count would look small again */
    r->size = (uint64_t)len > UINT64_MAX - r->size ? UINT64_MAX : r->size + len;
    if (r->size > r->limit)
        r->too_big = true;
    if (take > 0 && !r->emit_failed && s->emit(s->ctx, data, take) != 0)
        r->emit_failed = true;
}

/* Emits the pending run of input up to (not including) end. */
static void flush(struct scan *s, size_t end)
{
    output(s, s->p + s->run, end - s->run);
    s->run = end;
}

/* Drops input octet i from the output (a leading dot, a held CR). */
static void skip(struct scan *s, size_t i)
{
    flush(s, i);
    s->run = i + 1;
}

/* A CR turned out not to be followed by LF; input octet i is the one after it (not yet
 * emitted). The CR itself was already emitted, so normalising only has to add the LF. */
static void bare_cr(struct scan *s, size_t i)
{
    if (!(s->r->flags & SMTP_DATA_NORMALIZE_BARE)) {
        s->r->bare_lf = true;
        return;
    }
    flush(s, i);
    output(s, "\n", 1);
}

/* Input octet i is an LF without a CR before it: normalising puts a CR in front of it. */
static void bare_lf(struct scan *s, size_t i)
{
    if (!(s->r->flags & SMTP_DATA_NORMALIZE_BARE)) {
        s->r->bare_lf = true;
        return;
    }
    flush(s, i);
    output(s, "\r", 1);
}

/* Index of the first CR or LF in p[i..n), or n. The octets before it are plain text that
 * changes no state, so the common case skips the per-octet state machine. */
static size_t plain_end(struct scan *s, size_t i)
{
    if (s->next_cr < i)
        s->next_cr = find(s, i, '\r');
    if (s->next_lf < i)
        s->next_lf = find(s, i, '\n');
    return s->next_cr < s->next_lf ? s->next_cr : s->next_lf;
}

/* Input octet i is a CR and the next one its LF: a real line end, wholly in this input. */
static bool crlf_at(const struct scan *s, size_t i)
{
    return s->p[i] == '\r' && i + 1 < s->n && s->p[i + 1] == '\n';
}

/* Input octet i exists and is plain text even at a line start (no dot, CR or LF). */
static bool plain_at(const struct scan *s, size_t i)
{
    return i < s->n && s->p[i] != '.' && s->p[i] != '\r' && s->p[i] != '\n';
}

/* One octet inside a line (emitted as part of the run). A real CRLF starts a new line; BDAT
 * never looks at the line state, as it has no dot-stuffing. */
static void line_octet(struct scan *s, size_t i)
{
    struct smtp_data_reader *r = s->r;
    unsigned char c = (unsigned char)s->p[i];

    if (r->pending_cr) {
        r->pending_cr = false;
        if (c == '\n') {
            r->state = AT_LINE_START;
            return;
        }
        bare_cr(s, i);
    }
    if (c == '\r')
        r->pending_cr = true;
    else if (c == '\n')
        bare_lf(s, i);
}

/* ".\r" at a line start was followed by input octet i, which is not LF: it was no terminator.
 * The dot stays dropped (unstuffing); the held CR is bare and is stored now. */
static void release_dot_cr(struct scan *s, size_t i)
{
    struct smtp_data_reader *r = s->r;

    flush(s, i);
    if (r->flags & SMTP_DATA_NORMALIZE_BARE) {
        output(s, "\r\n", 2);
    } else {
        r->bare_lf = true;
        output(s, "\r", 1);
    }
}

size_t smtp_data_feed(struct smtp_data_reader *r, const char *p, size_t n,
                      smtp_data_emit_fn emit, void *ctx)
{
    if (r->done)
        return 0;
    struct scan s = scan_begin(r, p, n, emit, ctx);
    for (size_t i = 0; i < n; i++) {
        if (r->state == IN_LINE && !r->pending_cr) {
            i = plain_end(&s, i);
            if (i == n)
                break;
            if (crlf_at(&s, i)) {
                i++; /* the LF */
                if (plain_at(&s, i + 1)) {
                    i++; /* the next line starts with plain text: still IN_LINE */
                    continue;
                }
                r->state = AT_LINE_START;
                continue;
            }
        }
        if (r->state == AT_LINE_START) {
            r->state = IN_LINE;
            if (p[i] == '.') {
                r->state = AFTER_DOT;
                skip(&s, i);
                continue;
            }
        } else if (r->state == AFTER_DOT) {
            if (!r->pending_cr && p[i] == '\r') {
                r->pending_cr = true;
                skip(&s, i);
                continue;
            }
            r->state = IN_LINE;
            if (r->pending_cr) {
                r->pending_cr = false;
                if (p[i] == '\n') {
                    flush(&s, i);
                    r->done = true;
                    note_nul(r, p, i + 1);
                    return i + 1;
                }
                release_dot_cr(&s, i);
            }
        }
        line_octet(&s, i);
    }
    flush(&s, n);
    note_nul(r, p, n);
    return n;
}

void smtp_data_feed_chunk(struct smtp_data_reader *r, const char *p, size_t n, bool last,
                          smtp_data_emit_fn emit, void *ctx)
{
    if (r->done)
        return;
    struct scan s = scan_begin(r, p, n, emit, ctx);
    for (size_t i = 0; i < n; i++) {
        if (!r->pending_cr) {
            i = plain_end(&s, i);
            if (i == n)
                break;
            if (crlf_at(&s, i)) {
                i++; /* the LF */
                continue;
            }
        }
        line_octet(&s, i);
    }
    flush(&s, n);
    note_nul(r, p, n);
    if (last) {
        if (r->pending_cr) {
            r->pending_cr = false;
            bare_cr(&s, n);
        }
        r->done = true;
    }
}

/* ---- the sender's side: dot-stuffing ------------------------------------------------------ */

void smtp_data_stuff_init(struct smtp_data_stuffer *st)
{
    st->line_start = true;
    st->after_cr = false;
    st->dots = true;
}

size_t smtp_data_stuff(struct smtp_data_stuffer *st, const char *in, size_t n, size_t *used,
                       char *out, size_t room)
{
    size_t pos = 0, w = 0;
    /* 3: the most one step writes before its run is a stuffed dot plus one octet, or CRLF */
    while (pos < n && room - w >= 3) {
        char ch = in[pos];
        if (ch == '\n' && st->after_cr) { /* the LF of a CRLF: its CR already went out as CRLF */
            st->after_cr = false;
            pos++;
            continue;
        }
        st->after_cr = ch == '\r';
        if (ch == '\r' || ch == '\n') {
            out[w++] = '\r';
            out[w++] = '\n';
            st->line_start = true;
            pos++;
            continue;
        }
        if (st->dots && st->line_start && ch == '.')
            out[w++] = '.';
        st->line_start = false;
        size_t run = 0, max = room - w;
        while (run < max && pos + run < n && in[pos + run] != '\r' && in[pos + run] != '\n')
            run++;
        memcpy(out + w, in + pos, run);
        w += run;
        pos += run;
    }
    *used = pos;
    return w;
}

size_t smtp_data_stuff_end(const struct smtp_data_stuffer *st, char *out, size_t room)
{
    size_t w = 0;
    if (room < 5)
        return 0;
    if (!st->line_start) {
        out[w++] = '\r';
        out[w++] = '\n';
    }
    memcpy(out + w, ".\r\n", 3);
    return w + 3;
}
