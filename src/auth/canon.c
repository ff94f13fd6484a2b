/* auth/canon.c — DKIM relaxed canonicalisation of header fields and bodies, and the split of a
 * message into header fields. RFC 6376 §3.4.2, §3.4.4, §3.4.5. */
#include "auth/canon.h"

#include <string.h>
#include <strings.h>

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

size_t auth_canon_header(const char *field, size_t len, bool crlf, char *out, size_t cap)
{
    const char *colon = memchr(field, ':', len);
    if (colon == NULL || cap < len + 3)
        return 0;
    size_t o = 0, name_end = (size_t)(colon - field);
    while (name_end > 0 && (is_wsp(field[name_end - 1]) || field[name_end - 1] == '\r' ||
                            field[name_end - 1] == '\n'))
        name_end--;
    for (size_t i = 0; i < name_end; i++) {
        char c = field[i];
        out[o++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[o++] = ':';
    bool ws = false, started = false;
    /* Unfolding removes every CR and LF; what stays of a fold is its whitespace. */
    for (size_t i = (size_t)(colon - field) + 1; i < len; i++) {
        char c = field[i];
        if (c == '\r' || c == '\n')
            continue;
        if (is_wsp(c)) {
            ws = true;
            continue;
        }
        if (ws && started)
            out[o++] = ' ';
        ws = false;
        started = true;
        out[o++] = c;
    }
    if (crlf) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    out[o] = '\0';
    return o;
}

void auth_canon_body_init(struct auth_canon_body *b, void (*out)(void *, const char *, size_t),
                          void *ctx)
{
    memset(b, 0, sizeof *b);
    b->out = out;
    b->ctx = ctx;
}

void auth_canon_body_init_simple(struct auth_canon_body *b,
                                 void (*out)(void *, const char *, size_t), void *ctx)
{
    auth_canon_body_init(b, out, ctx);
    b->simple = true;
}

/* An octet that is not whitespace and not a line end: release what was held back first. */
static void content_octet(struct auth_canon_body *b, char c)
{
    b->any = true;
    for (; b->blank_lines > 0; b->blank_lines--)
        b->out(b->ctx, "\r\n", 2);
    if (b->ws) /* inner and leading whitespace shrink to one space; only trailing goes */
        b->out(b->ctx, " ", 1);
    b->ws = false;
    b->content = true;
    b->out(b->ctx, &c, 1);
}

static void line_end(struct auth_canon_body *b)
{
    if (b->content)
        b->out(b->ctx, "\r\n", 2);
    else
        b->blank_lines++; /* empty or only whitespace: empty once canonical */
    b->content = false;
    b->ws = false;
}

void auth_canon_body_feed(struct auth_canon_body *b, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (b->cr) {
            b->cr = false;
            if (c == '\n') {
                line_end(b);
                continue;
            }
            content_octet(b, '\r');
        }
        if (c == '\r')
            b->cr = true;
        else if (is_wsp(c) && !b->simple)
            b->ws = true;
        else
            content_octet(b, c);
    }
}

void auth_canon_body_finish(struct auth_canon_body *b)
{
    if (b->cr) {
        b->cr = false;
        content_octet(b, '\r');
    }
    if (b->content) /* a last line without CRLF gets one (§3.4.4 b) */
        b->out(b->ctx, "\r\n", 2);
    else if (b->simple && !b->any) /* §3.4.3: an empty body is one CRLF */
        b->out(b->ctx, "\r\n", 2);
    b->content = false;
    b->ws = false;
    b->blank_lines = 0;
}

/* The line at i: its end (after the LF, or len) and its length without CRLF or LF. */
static size_t line_at(const char *msg, size_t len, size_t i, size_t *content)
{
    const char *nl = memchr(msg + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - msg) + 1 : len;
    size_t c = end - i;
    if (c > 0 && msg[end - 1] == '\n')
        c--;
    if (c > 0 && msg[i + c - 1] == '\r')
        c--;
    *content = c;
    return end;
}

bool auth_field_next(const char *msg, size_t len, size_t *pos, struct auth_field *f)
{
    size_t i = *pos, content = 0;
    if (i >= len)
        return false;
    size_t end = line_at(msg, len, i, &content);
    if (content == 0) { /* the empty line: the body follows */
        *pos = end;
        return false;
    }
    const char *colon = memchr(msg + i, ':', content);
    size_t name_len = colon ? (size_t)(colon - (msg + i)) : 0;
    while (name_len > 0 && is_wsp(msg[i + name_len - 1]))
        name_len--;
    while (end < len && is_wsp(msg[end])) /* continuation lines (never empty: they hold WSP) */
        end = line_at(msg, len, end, &content);
    *f = (struct auth_field){.p = msg + i, .len = end - i, .name_len = name_len};
    *pos = end;
    return true;
}

void auth_fields_split(const char *msg, size_t len, struct auth_field *fields, size_t cap,
                       size_t *n, size_t *body)
{
    size_t pos = 0, count = 0;
    struct auth_field f;
    while (auth_field_next(msg, len, &pos, &f)) {
        if (count < cap)
            fields[count] = f;
        count++;
    }
    *n = count;
    *body = pos;
}

bool auth_field_is(const struct auth_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(f->p, name, n) == 0;
}
