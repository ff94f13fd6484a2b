/* auth/spf_macro.c — SPF macro expansion: the values split on delimiters, reversed, cut to the
 * rightmost N parts, joined with dots, URL-escaped for upper-case letters. RFC 7208 §7.3-7.4. */
#include "auth/spf_macro.h"

#include <stdio.h>
#include <string.h>

struct out {
    char *p;
    size_t len, cap;
    bool full;
};

static void put(struct out *o, const char *p, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->len, p, n);
    o->len += n;
    o->p[o->len] = '\0';
}

/* RFC 3986 unreserved characters stay; others become %XX (§7.3 upper-case macros). */
static void put_escaped(struct out *o, const char *p, size_t n, bool escape)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        bool plain = !escape || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
        if (plain) {
            put(o, p + i, 1);
        } else {
            char hex[4];
            snprintf(hex, sizeof hex, "%%%02X", c);
            put(o, hex, 3);
        }
    }
}

#define PARTS_MAX 128

/* One macro's value transformed: split on delims, maybe reversed, the rightmost keep parts. */
static void transform(struct out *o, const char *value, unsigned keep, bool reverse,
                      const char *delims, bool escape)
{
    const char *part[PARTS_MAX];
    size_t plen[PARTS_MAX], n = 0;
    const char *start = value;
    for (const char *p = value;; p++) {
        if (*p == '\0' || strchr(delims, *p) != NULL) {
            if (n < PARTS_MAX) {
                part[n] = start;
                plen[n++] = (size_t)(p - start);
            }
            if (*p == '\0')
                break;
            start = p + 1;
        }
    }
    if (reverse)
        for (size_t a = 0, b = n - 1; a < b; a++, b--) {
            const char *tp = part[a];
            size_t tl = plen[a];
            part[a] = part[b];
            plen[a] = plen[b];
            part[b] = tp;
            plen[b] = tl;
        }
    size_t first = keep > 0 && keep < n ? n - keep : 0;
    for (size_t i = first; i < n; i++) {
        if (i > first)
            put(o, ".", 1);
        put_escaped(o, part[i], plen[i], escape);
    }
}

enum auth_err auth_spf_macro_expand(const char *s, size_t len, const struct auth_spf_macro_values *v,
                                    bool exp, char *out, size_t cap, size_t *out_len,
                                    bool *needs_p)
{
    struct out o = {out, 0, cap, false};
    *needs_p = false;
    if (cap == 0)
        return AUTH_ERR_TOO_BIG;
    out[0] = '\0';
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            put(&o, s + i, 1);
            continue;
        }
        if (++i == len)
            return AUTH_ERR_SYNTAX;
        if (s[i] == '%' || s[i] == '_' || s[i] == '-') {
            put(&o, s[i] == '%' ? "%" : s[i] == '_' ? " " : "%20", s[i] == '-' ? 3 : 1);
            continue;
        }
        if (s[i] != '{' || ++i == len)
            return AUTH_ERR_SYNTAX;
        char letter = s[i], lower = (char)(letter | 0x20);
        bool escape = letter >= 'A' && letter <= 'Z';
        char tbuf[24];
        const char *value = NULL;
        switch (lower) {
        case 's': value = v->s; break;
        case 'l': value = v->l; break;
        case 'o': value = v->o; break;
        case 'd': value = v->d; break;
        case 'i': value = v->i; break;
        case 'v': value = v->v; break;
        case 'h': value = v->h; break;
        case 'p':
            if (v->p == NULL) {
                *needs_p = true;
                return AUTH_OK;
            }
            value = v->p;
            break;
        case 'c': value = exp ? v->c : NULL; break;
        case 'r': value = exp ? (v->r ? v->r : "unknown") : NULL; break;
        case 't':
            if (exp) {
                snprintf(tbuf, sizeof tbuf, "%lld", v->t);
                value = tbuf;
            }
            break;
        default: break;
        }
        if (value == NULL || !((letter >= 'a' && letter <= 'z') || escape))
            return AUTH_ERR_SYNTAX;
        i++;
        unsigned keep = 0;
        size_t digits = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            keep = keep > 1000 ? keep : keep * 10 + (unsigned)(s[i] - '0');
            i++;
            digits++;
        }
        if (digits > 0 && keep == 0)
            return AUTH_ERR_SYNTAX; /* §7.1: zero parts is not a transformer */
        bool reverse = false;
        if (i < len && (s[i] == 'r' || s[i] == 'R')) {
            reverse = true;
            i++;
        }
        char delims[8] = "";
        size_t nd = 0;
        while (i < len && s[i] != '\0' && strchr(".-+,/_=", s[i]) != NULL) {
            if (nd + 1 < sizeof delims && memchr(delims, s[i], nd) == NULL)
                delims[nd++] = s[i];
            i++;
        }
        delims[nd] = '\0';
        if (i == len || s[i] != '}')
            return AUTH_ERR_SYNTAX;
        transform(&o, value, keep, reverse, nd ? delims : ".", escape);
    }
    if (o.full)
        return AUTH_ERR_TOO_BIG;
    *out_len = o.len;
    return AUTH_OK;
}
