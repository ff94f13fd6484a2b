/* reply/mime.c — the bounded MIME reader of bounce messages: header fields, multipart walking,
 * transfer decodings and charsets to UTF-8 (iconv). Every length is checked: input is hostile.
 * RFC 5322 §2.2, RFC 2045 §6, RFC 2046 §5, RFC 2047. */
#include "reply/mime.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>

struct walker {
    char *arena;
    size_t cap, used;
    reply_mime_part_fn *fn;
    void *ctx;
    size_t parts;
};

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static bool ieq(const char *a, size_t n, const char *b)
{
    size_t i = 0;
    for (; i < n && b[i]; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return i == n && b[i] == '\0';
}

static bool istarts(const char *s, size_t n, const char *prefix)
{
    size_t i = 0;
    for (; prefix[i]; i++)
        if (i >= n || lower((unsigned char)s[i]) != lower((unsigned char)prefix[i]))
            return false;
    return true;
}

/* End of the line starting at i (index of '\n', or len). */
static size_t line_end(const char *s, size_t len, size_t i)
{
    const char *nl = memchr(s + i, '\n', len - i);
    return nl ? (size_t)(nl - s) : len;
}

size_t reply_mime_header_end(const char *msg, size_t len, size_t *body_off)
{
    size_t i = 0;
    while (i < len) {
        size_t e = line_end(msg, len, i);
        size_t n = e - i;
        if (n > 0 && msg[e - 1] == '\r')
            n--;
        if (n == 0) {
            *body_off = e < len ? e + 1 : len;
            return i;
        }
        i = e < len ? e + 1 : len;
    }
    *body_off = len;
    return len;
}

/* ---- charsets ---------------------------------------------------------------------------- */

static bool plain_charset(const char *cs)
{
    return cs[0] == '\0' || ieq(cs, strlen(cs), "us-ascii") || ieq(cs, strlen(cs), "utf-8") ||
           ieq(cs, strlen(cs), "utf8") || ieq(cs, strlen(cs), "ascii");
}

/* Names real mailers write that iconv does not know under that name. */
static const char *charset_alias(const char *cs)
{
    size_t n = strlen(cs);
    if (ieq(cs, n, "ks_c_5601-1987"))
        return "CP949";
    if (ieq(cs, n, "x-sjis") || ieq(cs, n, "shift-jis") || ieq(cs, n, "sjis"))
        return "SHIFT_JIS";
    if (ieq(cs, n, "x-euc-jp"))
        return "EUC-JP";
    if (ieq(cs, n, "unicode-1-1-utf-7"))
        return "UTF-7";
    if (ieq(cs, n, "gb2312"))
        return "GB18030"; /* a superset: mailers label GBK text gb2312 */
    return cs;
}

/* Converts in[0..n) from charset cs to UTF-8 into out[0..cap); returns bytes written. Bytes
 * the charset cannot read become '?'; an unknown charset copies the bytes unchanged (the JSON
 * writer replaces what is not UTF-8). */
static size_t to_utf8(const char *cs, const char *in, size_t n, char *out, size_t cap)
{
    if (plain_charset(cs)) {
        size_t m = n < cap ? n : cap;
        memmove(out, in, m);
        return m;
    }
    iconv_t cd = iconv_open("UTF-8", charset_alias(cs));
    if (cd == (iconv_t)-1) {
        size_t m = n < cap ? n : cap;
        memmove(out, in, m);
        return m;
    }
    char *ip = (char *)(uintptr_t)in, *op = out;
    size_t il = n, ol = cap;
    while (il > 0 && ol > 0) {
        if (iconv(cd, &ip, &il, &op, &ol) != (size_t)-1)
            break;
        /* iconv may have filled the output before it stopped at a bad byte */
        if (errno == E2BIG || ol == 0)
            break;
        /* EILSEQ or EINVAL: skip the byte, mark it, go on */
        ip++;
        il--;
        *op++ = '?';
        ol--;
        iconv(cd, NULL, NULL, NULL, NULL);
    }
    iconv_close(cd);
    return (size_t)(op - out);
}

/* ---- transfer encodings ------------------------------------------------------------------ */

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Base64 (RFC 2045 §6.8): characters outside the alphabet are ignored, as the RFC says. */
static size_t b64_decode(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '=')
            break;
        int v = b64val(c);
        if (v < 0)
            continue;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return o;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    return o;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Quoted-printable (RFC 2045 §6.7); in_word: RFC 2047 "Q", where '_' is a space. */
static size_t qp_decode(const char *in, size_t n, char *out, size_t cap, bool in_word)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o < cap; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '=' && i + 2 < n && hexval((unsigned char)in[i + 1]) >= 0 &&
            hexval((unsigned char)in[i + 2]) >= 0) {
            out[o++] = (char)(hexval((unsigned char)in[i + 1]) * 16 + hexval((unsigned char)in[i + 2]));
            i += 2;
        } else if (c == '=' && !in_word) {
            /* soft line break: "=" then optional white space then the line end */
            size_t j = i + 1;
            while (j < n && (in[j] == ' ' || in[j] == '\t' || in[j] == '\r'))
                j++;
            if (j < n && in[j] == '\n')
                i = j;
            else if (j >= n)
                i = j;
            else
                out[o++] = '=';
        } else if (c == '_' && in_word) {
            out[o++] = ' ';
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

/* ---- header fields ----------------------------------------------------------------------- */

size_t reply_mime_decode_words(const char *s, size_t len, char *out, size_t cap)
{
    if (cap == 0)
        return 0;
    size_t o = 0;
    size_t i = 0;
    bool last_word = false;
    size_t pending_ws = 0, ws_start = 0;
    while (i < len && o + 1 < cap) {
        if (s[i] == '=' && i + 1 < len && s[i + 1] == '?') {
            /* =?charset?X?text?= */
            size_t q1 = i + 2;
            while (q1 < len && s[q1] != '?' && q1 - i < 64)
                q1++;
            size_t q2 = q1 + 2;
            size_t end = q2 + 1;
            while (end + 1 < len && !(s[end] == '?' && s[end + 1] == '=') && end - q2 < 1024)
                end++;
            if (q1 < len && q1 + 2 < len && s[q1 + 2] == '?' && end + 1 < len && s[end] == '?' &&
                s[end + 1] == '=') {
                char cs[48];
                size_t csn = q1 - (i + 2);
                if (csn >= sizeof cs)
                    csn = sizeof cs - 1;
                memcpy(cs, s + i + 2, csn);
                cs[csn] = '\0';
                char *star = strchr(cs, '*'); /* RFC 2231 language suffix */
                if (star)
                    *star = '\0';
                char enc = (char)lower((unsigned char)s[q1 + 1]);
                char raw[1024];
                size_t rn = 0;
                const char *txt = s + q2 + 1;
                size_t tn = end - (q2 + 1);
                if (enc == 'b')
                    rn = b64_decode(txt, tn, raw, sizeof raw);
                else if (enc == 'q')
                    rn = qp_decode(txt, tn, raw, sizeof raw, true);
                if (enc == 'b' || enc == 'q') {
                    /* white space between two encoded words is dropped (RFC 2047 §6.2) */
                    if (!last_word && pending_ws) {
                        size_t m = pending_ws < cap - 1 - o ? pending_ws : cap - 1 - o;
                        memcpy(out + o, s + ws_start, m);
                        o += m;
                    }
                    pending_ws = 0;
                    o += to_utf8(cs, raw, rn, out + o, cap - 1 - o);
                    i = end + 2;
                    last_word = true;
                    continue;
                }
            }
        }
        if (s[i] == ' ' || s[i] == '\t') {
            if (pending_ws == 0)
                ws_start = i;
            pending_ws++;
            i++;
            continue;
        }
        if (pending_ws) {
            size_t m = pending_ws < cap - 1 - o ? pending_ws : cap - 1 - o;
            memcpy(out + o, s + ws_start, m);
            o += m;
            pending_ws = 0;
            if (o + 1 >= cap)
                break;
        }
        out[o++] = s[i++];
        last_word = false;
    }
    out[o] = '\0';
    return o;
}

bool reply_mime_header(const char *headers, size_t len, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    size_t i = 0;
    while (i < len) {
        size_t e = line_end(headers, len, i);
        if (e - i > nlen && istarts(headers + i, e - i, name)) {
            size_t j = i + nlen;
            while (j < e && (headers[j] == ' ' || headers[j] == '\t'))
                j++;
            if (j < e && headers[j] == ':') {
                /* unfold: join continuation lines with one space */
                char raw[4096];
                size_t rn = 0;
                size_t k = j + 1;
                for (;;) {
                    size_t le = line_end(headers, len, k);
                    size_t ln = le - k;
                    if (ln > 0 && headers[le - 1] == '\r')
                        ln--;
                    while (ln > 0 && (headers[k] == ' ' || headers[k] == '\t')) {
                        k++;
                        ln--;
                    }
                    if (rn > 0 && rn < sizeof raw && ln > 0)
                        raw[rn++] = ' ';
                    size_t m = ln < sizeof raw - rn ? ln : sizeof raw - rn;
                    memcpy(raw + rn, headers + k, m);
                    rn += m;
                    k = le + 1;
                    if (le >= len || k >= len || (headers[k] != ' ' && headers[k] != '\t'))
                        break;
                }
                while (rn > 0 && (raw[rn - 1] == ' ' || raw[rn - 1] == '\t'))
                    rn--;
                if (cap > 0)
                    reply_mime_decode_words(raw, rn, out, cap);
                return true;
            }
        }
        i = e < len ? e + 1 : len;
    }
    if (cap > 0)
        out[0] = '\0';
    return false;
}

bool reply_mime_param(const char *value, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *p = value;
    if (cap > 0)
        out[0] = '\0';
    while ((p = strchr(p, ';')) != NULL) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!istarts(p, strlen(p), name)) {
            continue;
        }
        const char *q = p + nlen;
        if (*q == '*') /* RFC 2231 name*=charset''value: taken as written */
            q++;
        while (*q == ' ')
            q++;
        if (*q != '=')
            continue;
        q++;
        while (*q == ' ')
            q++;
        size_t o = 0;
        if (*q == '"') {
            q++;
            while (*q && *q != '"' && o + 1 < cap) {
                if (*q == '\\' && q[1])
                    q++;
                out[o++] = *q++;
            }
        } else {
            while (*q && *q != ';' && *q != ' ' && *q != '\t' && o + 1 < cap)
                out[o++] = *q++;
        }
        if (cap > 0)
            out[o] = '\0';
        return true;
    }
    return false;
}

/* ---- walking ----------------------------------------------------------------------------- */

static void walk(struct walker *w, const char *msg, size_t len, unsigned depth, bool returned);

/* Room left in the arena. */
static char *arena_at(struct walker *w, size_t *room)
{
    *room = w->cap - w->used;
    return w->arena + w->used;
}

/* Transfer-decodes body per cte into the arena; returns the decoded bytes (or the input). */
static const char *decode_body(struct walker *w, const char *cte, const char *body, size_t n,
                               size_t *out_n)
{
    size_t room;
    char *dst = arena_at(w, &room);
    size_t clen = strlen(cte);
    if (ieq(cte, clen, "base64")) {
        *out_n = b64_decode(body, n, dst, room);
        w->used += *out_n;
        return dst;
    }
    if (ieq(cte, clen, "quoted-printable")) {
        *out_n = qp_decode(body, n, dst, room, false);
        w->used += *out_n;
        return dst;
    }
    *out_n = n;
    return body;
}

static void emit(struct walker *w, struct reply_mime_part *p)
{
    if (w->parts >= REPLY_MIME_PARTS_MAX)
        return;
    w->parts++;
    w->fn(w->ctx, p);
}

/* Finds the next boundary line "--b" at or after i; *next gets the index after that line,
 * *last whether it was the closing "--b--". Returns the index where the line starts (the body
 * before it ends there), or len when none. */
static size_t find_boundary(const char *s, size_t len, size_t i, const char *b, size_t blen,
                            size_t *next, bool *last)
{
    while (i < len) {
        size_t e = line_end(s, len, i);
        if (e - i >= blen + 2 && s[i] == '-' && s[i + 1] == '-' &&
            memcmp(s + i + 2, b, blen) == 0) {
            *last = e - i >= blen + 4 && s[i + 2 + blen] == '-' && s[i + 3 + blen] == '-';
            *next = e < len ? e + 1 : len;
            return i;
        }
        i = e < len ? e + 1 : len;
    }
    *next = len;
    *last = true;
    return len;
}

static void walk_multipart(struct walker *w, const char *body, size_t n, const char *b,
                           unsigned depth, bool returned)
{
    size_t blen = strlen(b);
    size_t next;
    bool last;
    size_t at = find_boundary(body, n, 0, b, blen, &next, &last);
    if (at >= n) {
        /* a broken boundary: read the body as text, which is what a person would see */
        struct reply_mime_part p = {.type = "text/plain", .body = body, .body_len = n,
                                    .depth = depth, .in_returned = returned};
        emit(w, &p);
        return;
    }
    while (!last && next < n) {
        size_t start = next;
        size_t end = find_boundary(body, n, start, b, blen, &next, &last);
        size_t pn = end - start;
        /* the line end before the boundary belongs to the boundary */
        if (pn > 0 && body[start + pn - 1] == '\n')
            pn--;
        if (pn > 0 && body[start + pn - 1] == '\r')
            pn--;
        walk(w, body + start, pn, depth + 1, returned);
    }
}

static void walk(struct walker *w, const char *msg, size_t len, unsigned depth, bool returned)
{
    if (depth > REPLY_MIME_DEPTH_MAX || w->parts >= REPLY_MIME_PARTS_MAX)
        return;
    size_t body_off;
    size_t hlen = reply_mime_header_end(msg, len, &body_off);
    const char *body = msg + body_off;
    size_t blen = len - body_off;
    char ct[512], cte[64], charset[64];
    struct reply_mime_part p = {.headers = msg, .headers_len = hlen, .depth = depth,
                                .in_returned = returned};
    if (!reply_mime_header(msg, hlen, "Content-Type", ct, sizeof ct) || ct[0] == '\0')
        memcpy(ct, "text/plain", sizeof "text/plain");
    size_t tn = 0;
    while (ct[tn] && ct[tn] != ';' && ct[tn] != ' ' && ct[tn] != '\t' &&
           tn + 1 < sizeof p.type) {
        p.type[tn] = (char)lower((unsigned char)ct[tn]);
        tn++;
    }
    p.type[tn] = '\0';
    if (!reply_mime_header(msg, hlen, "Content-Transfer-Encoding", cte, sizeof cte))
        cte[0] = '\0';
    if (!reply_mime_param(ct, "charset", charset, sizeof charset))
        charset[0] = '\0';

    if (strncmp(p.type, "multipart/", 10) == 0) {
        char b[256];
        if (reply_mime_param(ct, "boundary", b, sizeof b) && b[0]) {
            walk_multipart(w, body, blen, b, depth, returned);
            return;
        }
        memcpy(p.type, "text/plain", sizeof "text/plain");
    }
    size_t dn;
    const char *dec = decode_body(w, cte, body, blen, &dn);
    if (strcmp(p.type, "message/rfc822") == 0 || strcmp(p.type, "message/global") == 0 ||
        strcmp(p.type, "message/partial") == 0) {
        /* the returned message: its header block first, then its own parts */
        size_t inner_off;
        size_t ih = reply_mime_header_end(dec, dn, &inner_off);
        struct reply_mime_part h = {.type = "message/rfc822", .headers = dec, .headers_len = ih,
                                    .depth = depth, .in_returned = true,
                                    .returned_headers = true};
        emit(w, &h);
        walk(w, dec, dn, depth + 1, true);
        return;
    }
    if (strcmp(p.type, "text/rfc822-headers") == 0 ||
        strcmp(p.type, "message/rfc822-headers") == 0) {
        struct reply_mime_part h = {.type = "message/rfc822", .headers = dec, .headers_len = dn,
                                    .depth = depth, .in_returned = true,
                                    .returned_headers = true};
        emit(w, &h);
        return;
    }
    if (charset[0] == '\0' && memmem(dec, dn, "\x1b$B", 3) != NULL)
        memcpy(charset, "ISO-2022-JP", sizeof "ISO-2022-JP"); /* JIS escapes, unlabelled */
    if (strncmp(p.type, "text/", 5) == 0 || strncmp(p.type, "message/", 8) == 0) {
        size_t room;
        char *dst = arena_at(w, &room);
        if (!plain_charset(charset) && room > 0) {
            size_t cn = to_utf8(charset, dec, dn, dst, room);
            w->used += cn;
            dec = dst;
            dn = cn;
        }
    }
    p.body = dec;
    p.body_len = dn;
    emit(w, &p);
}

size_t reply_mime_walk(const char *msg, size_t len, char *arena, size_t cap,
                       reply_mime_part_fn *fn, void *ctx)
{
    struct walker w = {.arena = arena, .cap = cap, .fn = fn, .ctx = ctx};
    walk(&w, msg, len, 0, false);
    return w.parts;
}
