/* reply/safe_text.c — outside text shown without its control bytes (see safe_text.h). */
#include "reply/safe_text.h"

#include <stdint.h>
#include <string.h>

#include "reply/utf8.h"

static bool put_escaped(const unsigned char *p, size_t n, reply_safe_put *put, void *ctx)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        char esc[4] = {'\\', 'x', digits[p[i] >> 4], digits[p[i] & 15]};
        if (!put(ctx, esc, sizeof esc))
            return false;
    }
    return true;
}

/* Printable ASCII, TAB, and characters past the C1 controls. */
static bool shown_as_is(uint32_t cp)
{
    return cp == '\t' || (cp >= 0x20 && cp < 0x7f) || cp > 0x9f;
}

bool reply_safe_text(const char *s, size_t len, const char *newline, reply_safe_put *put,
                     void *ctx)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t plain = 0; /* start of the run of bytes shown as they are */
    size_t i = 0;
    while (i < len) {
        uint32_t cp = 0;
        size_t n = reply_utf8_char(u + i, len - i, &cp);
        if (n > 0 && shown_as_is(cp)) {
            i += n;
            continue;
        }
        if (i > plain && !put(ctx, s + plain, i - plain))
            return false;
        bool crlf = n == 1 && cp == '\r' && i + 1 < len && s[i + 1] == '\n';
        bool ok;
        if ((n == 1 && cp == '\n') || crlf) {
            ok = put(ctx, newline, strlen(newline));
            n = crlf ? 2 : 1; /* CRLF is one line end */
        } else {
            n = n > 0 ? n : 1; /* an ill-formed byte: escaped alone, the next read afresh */
            ok = put_escaped(u + i, n, put, ctx);
        }
        if (!ok)
            return false;
        i += n;
        plain = i;
    }
    return i == plain || put(ctx, s + plain, i - plain);
}

struct fixed_buf {
    const char *src, *src_end; /* the text: pieces from it are runs shown as they are */
    char *out;
    size_t used, cap; /* cap leaves room for the NUL */
    bool full;
};

/* Takes what fits: a run of the text up to a character's end, an escape or newline string
 * whole or not at all, so the output never ends inside one. */
static bool buf_put(void *ctx, const char *p, size_t n)
{
    struct fixed_buf *b = ctx;
    size_t room = b->cap - b->used;
    if (n > room) {
        n = 0;
        if (p >= b->src && p < b->src_end) {
            n = room;
            while (n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80)
                n--; /* p[n] continues the character that p[n - 1] is part of */
        }
        b->full = true;
    }
    memcpy(b->out + b->used, p, n);
    b->used += n;
    return !b->full;
}

size_t reply_safe_text_buf(const char *s, size_t len, const char *newline, char *out,
                           size_t cap)
{
    struct fixed_buf b = {s, s + len, out, 0, cap - 1, false};
    (void)reply_safe_text(s, len, newline, buf_put, &b);
    out[b.used] = '\0';
    return b.used;
}
