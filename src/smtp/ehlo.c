/* smtp/ehlo.c — the EHLO reply's keywords into struct smtp_client_caps (ehlo.h).
 * RFC 5321 §4.1.1.1, RFC 1869 §4.3, RFC 1870 §4 (SIZE), RFC 4954 §3 (AUTH), RFC 9422 §4
 * (LIMITS). */
#include "smtp/ehlo.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

/* The next space- or tab-separated token of [*p, end). */
static bool next_token(const char **p, const char *end, const char **tok, size_t *len)
{
    const char *s = *p;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    const char *e = s;
    while (e < end && *e != ' ' && *e != '\t')
        e++;
    *p = e;
    *tok = s;
    *len = (size_t)(e - s);
    return e > s;
}

static bool token_is(const char *tok, size_t len, const char *word)
{
    return len == strlen(word) && strncasecmp(tok, word, len) == 0;
}

/* Decimal digits only, saturating at max; false for anything else. */
static bool parse_number(const char *p, size_t len, uint64_t max, uint64_t *out)
{
    if (len == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        unsigned d = (unsigned)(p[i] - '0');
        v = v > (max - d) / 10 ? max : v * 10 + d;
    }
    *out = v;
    return true;
}

static void read_auth(struct smtp_client_caps *caps, const char *mech, size_t len)
{
    if (token_is(mech, len, "PLAIN"))
        caps->auth_plain = true;
    else if (token_is(mech, len, "LOGIN"))
        caps->auth_login = true;
}

/* RFC 9422 §4: "LIMITS RCPTMAX=n MAILMAX=n"; unknown or malformed parameters are ignored. */
static void read_limit(struct smtp_client_caps *caps, const char *tok, size_t len)
{
    const char *eq = memchr(tok, '=', len);
    if (!eq)
        return;
    size_t name_len = (size_t)(eq - tok);
    uint64_t v;
    if (!parse_number(eq + 1, len - name_len - 1, UINT32_MAX, &v) || v == 0)
        return;
    if (token_is(tok, name_len, "RCPTMAX"))
        caps->rcptmax = (unsigned)v;
    else if (token_is(tok, name_len, "MAILMAX"))
        caps->mailmax = (unsigned)v;
}

/* The keywords that only say "offered". */
static const struct {
    const char *word;
    size_t flag; /* offset of its bool in struct smtp_client_caps */
} plain_keywords[] = {
    {"PIPELINING", offsetof(struct smtp_client_caps, pipelining)},
    {"8BITMIME", offsetof(struct smtp_client_caps, eightbitmime)},
    {"SMTPUTF8", offsetof(struct smtp_client_caps, smtputf8)},
    {"DSN", offsetof(struct smtp_client_caps, dsn)},
    {"CHUNKING", offsetof(struct smtp_client_caps, chunking)},
    {"ENHANCEDSTATUSCODES", offsetof(struct smtp_client_caps, enhanced)},
    {"STARTTLS", offsetof(struct smtp_client_caps, starttls)},
};

static void read_keyword(struct smtp_client_caps *caps, const char *p, const char *end)
{
    const char *kw, *tok;
    size_t kw_len, len;
    if (!next_token(&p, end, &kw, &kw_len))
        return;
    if (kw_len > 5 && strncasecmp(kw, "AUTH=", 5) == 0) { /* pre-RFC 4954 form */
        read_auth(caps, kw + 5, kw_len - 5);
        kw_len = 4;
    }
    for (size_t i = 0; i < sizeof plain_keywords / sizeof plain_keywords[0]; i++) {
        if (token_is(kw, kw_len, plain_keywords[i].word)) {
            *(bool *)((char *)caps + plain_keywords[i].flag) = true;
            return;
        }
    }
    if (token_is(kw, kw_len, "SIZE")) {
        /* RFC 1870 §4: no number or 0 means no fixed limit; junk is read the same way */
        caps->has_size = true;
        if (!next_token(&p, end, &tok, &len) || !parse_number(tok, len, UINT64_MAX, &caps->size))
            caps->size = 0;
    } else if (token_is(kw, kw_len, "AUTH")) {
        while (next_token(&p, end, &tok, &len))
            read_auth(caps, tok, len);
    } else if (token_is(kw, kw_len, "LIMITS")) {
        while (next_token(&p, end, &tok, &len))
            read_limit(caps, tok, len);
    }
}

/* The first line names the server; each further line is one keyword. */
void smtp_ehlo_parse(const char *text, size_t len, struct smtp_client_caps *caps)
{
    memset(caps, 0, sizeof *caps);
    caps->esmtp = true;
    const char *p = text;
    const char *end = p + len;
    const char *nl = memchr(p, '\n', len);
    while (nl) {
        p = nl + 1;
        nl = memchr(p, '\n', (size_t)(end - p));
        read_keyword(caps, p, nl ? nl : end);
    }
}
