/* smtp/addr.c — parser for SMTP reverse-/forward-paths and domains: RFC 5321 §4.1.2 (Path,
 * Mailbox, Domain, address-literal §4.1.3, source routes ignored per §4.1.1.3), RFC 6531 §3.3
 * (UTF-8 local parts and U-labels under SMTPUTF8), RFC 5322 §3.2.3 atext; and whether two
 * mailboxes are the same one (duplicate recipients). */
#include "smtp/addr.h"
#include "reply/utf8.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/* RFC 1035 §2.3.4: a DNS label is at most 63 octets. U-labels are held to the same count of
 * octets as sent, which is stricter than their A-label form needs but bounds them simply. */
#define LABEL_MAX 63

/* Longest text form of an IPv6 address (with IPv4 tail) that inet_pton needs to see. */
#define IPV6_TEXT_MAX 45

const char *smtp_addr_strerror(enum smtp_addr_err err)
{
    switch (err) {
#define X(name, text) \
    case name:        \
        return text;
        SMTP_ADDR_ERRORS(X)
#undef X
    }
    return "unknown address error";
}

/* A read position in the input; the parser never looks at s[len] or beyond. */
struct cursor {
    const unsigned char *s;
    size_t len;
    size_t pos;
    bool utf8;
};

static int peek(const struct cursor *c)
{
    return c->pos < c->len ? c->s[c->pos] : -1;
}

static bool take(struct cursor *c, unsigned char ch)
{
    if (peek(c) != ch)
        return false;
    c->pos++;
    return true;
}

static bool is_alnum(int ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* RFC 5322 §3.2.3 atext, ASCII part. */
static bool is_atext(int ch)
{
    return is_alnum(ch) || (ch > 0 && ch < 0x80 && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/* Consumes one non-ASCII character where RFC 6531 allows UTF8-non-ascii. */
static enum smtp_addr_err take_utf8(struct cursor *c)
{
    if (!c->utf8)
        return SMTP_ADDR_EIGHT_BIT;
    size_t n = reply_utf8_char(c->s + c->pos, c->len - c->pos, NULL);
    if (n == 0)
        return SMTP_ADDR_BAD_UTF8;
    c->pos += n;
    return SMTP_ADDR_OK;
}

/* Let-dig / Ldh-str rules for a label or a standardized tag: letters, digits and hyphens, not
 * starting or ending with a hyphen. */
static bool valid_ldh(const unsigned char *s, size_t len)
{
    if (len == 0 || s[0] == '-' || s[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

static bool is_ldh(int ch)
{
    return is_alnum(ch) || ch == '-';
}

/* Takes the longest run of ASCII characters `ok` accepts and UTF-8 characters (RFC 6531 lets
 * them into labels and atoms; take_utf8 checks each one). */
static enum smtp_addr_err scan_run(struct cursor *c, bool (*ok)(int ch))
{
    for (;;) {
        int ch = peek(c);
        if (ok(ch)) {
            c->pos++;
        } else if (ch >= 0x80) {
            enum smtp_addr_err err = take_utf8(c);
            if (err != SMTP_ADDR_OK)
                return err;
        } else {
            return SMTP_ADDR_OK;
        }
    }
}

/* sub-domain = Let-dig [Ldh-str] (RFC 5321), or a U-label under SMTPUTF8 (RFC 6531). */
static enum smtp_addr_err scan_label(struct cursor *c)
{
    size_t start = c->pos;
    enum smtp_addr_err err = scan_run(c, is_ldh);
    if (err != SMTP_ADDR_OK)
        return err;
    size_t n = c->pos - start;
    if (n == 0 || c->s[start] == '-' || c->s[c->pos - 1] == '-')
        return SMTP_ADDR_SYNTAX;
    return n > LABEL_MAX ? SMTP_ADDR_TOO_LONG : SMTP_ADDR_OK;
}

/* Domain = sub-domain *("." sub-domain); a trailing dot leaves an empty label: syntax error. */
static enum smtp_addr_err scan_domain(struct cursor *c)
{
    size_t start = c->pos;
    do {
        enum smtp_addr_err err = scan_label(c);
        if (err != SMTP_ADDR_OK)
            return err;
    } while (take(c, '.'));
    return c->pos - start > LIMIT_DOMAIN ? SMTP_ADDR_TOO_LONG : SMTP_ADDR_OK;
}

/* Snum "." Snum "." Snum "." Snum, each 0..255 without leading zeros. */
static bool valid_ipv4(const unsigned char *s, size_t len)
{
    size_t i = 0;
    for (int octet = 0; octet < 4; octet++) {
        if (octet > 0 && (i >= len || s[i++] != '.'))
            return false;
        size_t start = i;
        unsigned value = 0;
        while (i < len && i - start < 3 && s[i] >= '0' && s[i] <= '9')
            value = value * 10 + (unsigned)(s[i++] - '0');
        if (i == start || value > 255 || (s[start] == '0' && i - start > 1))
            return false;
    }
    return i == len;
}

static bool valid_ipv6(const unsigned char *s, size_t len)
{
    char text[IPV6_TEXT_MAX + 1];
    struct in6_addr addr;

    if (len > IPV6_TEXT_MAX)
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    return inet_pton(AF_INET6, text, &addr) == 1;
}

/* The inside of an address literal: IPv4, "IPv6:" IPv6, or Standardized-tag ":" 1*dcontent. */
static bool valid_literal_body(const unsigned char *s, size_t len)
{
    static const char v6_tag[] = "IPv6:";
    const size_t v6_len = sizeof v6_tag - 1;

    if (len >= v6_len && strncasecmp((const char *)s, v6_tag, v6_len) == 0)
        return valid_ipv6(s + v6_len, len - v6_len);
    const unsigned char *colon = memchr(s, ':', len);
    if (colon == NULL)
        return valid_ipv4(s, len);
    size_t tag_len = (size_t)(colon - s);
    return valid_ldh(s, tag_len) && tag_len + 1 < len;
}

/* address-literal = "[" ... "]" whose inside is dcontent (%d33-90 / %d94-126). */
static enum smtp_addr_err scan_literal(struct cursor *c)
{
    size_t start = c->pos;
    if (!take(c, '['))
        return SMTP_ADDR_SYNTAX;
    for (;;) {
        int ch = peek(c);
        if (ch == ']')
            break;
        if (ch < 33 || ch > 126 || ch == '[' || ch == '\\')
            return SMTP_ADDR_SYNTAX; /* also the end of input: unterminated */
        c->pos++;
    }
    size_t body = start + 1;
    if (!valid_literal_body(c->s + body, c->pos - body))
        return SMTP_ADDR_SYNTAX;
    c->pos++; /* ']' */
    return c->pos - start > LIMIT_DOMAIN ? SMTP_ADDR_TOO_LONG : SMTP_ADDR_OK;
}

static enum smtp_addr_err scan_domain_or_literal(struct cursor *c)
{
    return peek(c) == '[' ? scan_literal(c) : scan_domain(c);
}

/* Dot-string = Atom *("." Atom): no leading, trailing or double dots. */
static enum smtp_addr_err scan_dot_string(struct cursor *c)
{
    do {
        size_t start = c->pos;
        enum smtp_addr_err err = scan_run(c, is_atext);
        if (err != SMTP_ADDR_OK)
            return err;
        if (c->pos == start)
            return SMTP_ADDR_SYNTAX;
    } while (take(c, '.'));
    return SMTP_ADDR_OK;
}

/* Quoted-string = DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE; qtextSMTP is %d32-33 /
 * %d35-91 / %d93-126 (plus UTF-8 under SMTPUTF8), quoted-pairSMTP is "\" %d32-126. */
static enum smtp_addr_err scan_quoted(struct cursor *c)
{
    if (!take(c, '"'))
        return SMTP_ADDR_SYNTAX;
    for (;;) {
        int ch = peek(c);
        if (ch == '"') {
            c->pos++;
            return SMTP_ADDR_OK;
        }
        if (ch == '\\') {
            c->pos++;
            ch = peek(c); /* -1 at the end: a backslash cannot end the input */
            if (ch < 32 || ch > 126)
                return SMTP_ADDR_SYNTAX;
            c->pos++;
        } else if (ch >= 0x80) {
            enum smtp_addr_err err = take_utf8(c);
            if (err != SMTP_ADDR_OK)
                return err;
        } else if (ch < 32 || ch == 127) {
            return SMTP_ADDR_SYNTAX; /* controls, or the end of input: unterminated */
        } else {
            c->pos++;
        }
    }
}

/* A-d-l = At-domain *("," At-domain) ":"; At-domain = "@" Domain. Checked, then dropped. */
static enum smtp_addr_err scan_source_route(struct cursor *c)
{
    do {
        if (!take(c, '@'))
            return SMTP_ADDR_SYNTAX;
        enum smtp_addr_err err = scan_domain(c);
        if (err != SMTP_ADDR_OK)
            return err;
    } while (take(c, ','));
    return take(c, ':') ? SMTP_ADDR_OK : SMTP_ADDR_SYNTAX;
}

static bool has_eight_bit(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] >= 0x80)
            return true;
    return false;
}

/* Copies the parsed pieces into out; every length is checked against its buffer first. */
static enum smtp_addr_err fill_path(struct smtp_path *out, const unsigned char *local,
                                    size_t local_len, const unsigned char *domain,
                                    size_t domain_len)
{
    if (local_len > LIMIT_LOCAL_PART || domain_len > LIMIT_DOMAIN ||
        local_len + 1 + domain_len > LIMIT_PATH)
        return SMTP_ADDR_TOO_LONG;
    memcpy(out->local, local, local_len);
    out->local[local_len] = '\0';
    out->local_len = local_len;
    memcpy(out->domain, domain, domain_len);
    out->domain[domain_len] = '\0';
    out->domain_len = domain_len;
    memcpy(out->mailbox, local, local_len);
    out->mailbox[local_len] = '@';
    memcpy(out->mailbox + local_len + 1, domain, domain_len);
    out->mailbox_len = local_len + 1 + domain_len;
    out->mailbox[out->mailbox_len] = '\0';
    out->is_utf8 = has_eight_bit(local, local_len) || has_eight_bit(domain, domain_len);
    out->domain_literal = domain_len > 0 && domain[0] == '[';
    return SMTP_ADDR_OK;
}

/* RFC 5321 §4.1.1.3: "<Postmaster>" (any case), no domain, no source route. */
static enum smtp_addr_err fill_postmaster(struct smtp_path *out, const unsigned char *local,
                                          size_t local_len)
{
    static const char name[] = "postmaster";
    const size_t name_len = sizeof name - 1;

    memcpy(out->local, local, local_len); /* local_len == name_len, far below the buffer */
    out->local[local_len] = '\0';
    out->local_len = local_len;
    memcpy(out->mailbox, name, name_len + 1);
    out->mailbox_len = name_len;
    out->is_postmaster = true;
    return SMTP_ADDR_OK;
}

static bool is_postmaster(const unsigned char *s, size_t len)
{
    return len == 10 && strncasecmp((const char *)s, "postmaster", len) == 0;
}

/* Path = "<" [A-d-l ":"] Mailbox ">", or "<>" where allowed. */
static enum smtp_addr_err scan_path(struct cursor *c, unsigned flags, struct smtp_path *out)
{
    if (!take(c, '<'))
        return SMTP_ADDR_SYNTAX;
    if (take(c, '>')) {
        if (!(flags & SMTP_ADDR_ALLOW_NULL))
            return SMTP_ADDR_NULL_NOT_ALLOWED;
        out->is_null = true;
        return SMTP_ADDR_OK;
    }
    bool routed = peek(c) == '@';
    enum smtp_addr_err err = routed ? scan_source_route(c) : SMTP_ADDR_OK;
    if (err != SMTP_ADDR_OK)
        return err;

    size_t local = c->pos;
    err = peek(c) == '"' ? scan_quoted(c) : scan_dot_string(c);
    if (err != SMTP_ADDR_OK)
        return err;
    size_t local_len = c->pos - local;

    if ((flags & SMTP_ADDR_ALLOW_POSTMASTER) && !routed && is_postmaster(c->s + local, local_len) &&
        take(c, '>'))
        return fill_postmaster(out, c->s + local, local_len);
    if (!take(c, '@'))
        return SMTP_ADDR_SYNTAX;
    size_t domain = c->pos;
    err = scan_domain_or_literal(c);
    if (err != SMTP_ADDR_OK)
        return err;
    size_t domain_len = c->pos - domain;
    if (!take(c, '>'))
        return SMTP_ADDR_SYNTAX;
    /* RFC 5321 §4.5.3.1.3: the path counts its punctuation and any source route. */
    if (c->pos > LIMIT_PATH)
        return SMTP_ADDR_TOO_LONG;
    return fill_path(out, c->s + local, local_len, c->s + domain, domain_len);
}

enum smtp_addr_err smtp_addr_parse_path(const char *s, size_t len, unsigned flags,
                                        struct smtp_path *out, size_t *used)
{
    struct cursor c = {(const unsigned char *)s, len, 0, (flags & SMTP_ADDR_UTF8) != 0};

    memset(out, 0, sizeof *out);
    enum smtp_addr_err err = scan_path(&c, flags, out);
    if (err != SMTP_ADDR_OK) {
        memset(out, 0, sizeof *out);
        return err;
    }
    *used = c.pos;
    return SMTP_ADDR_OK;
}

bool smtp_addr_valid_domain(const char *s, size_t len, bool utf8)
{
    struct cursor c = {(const unsigned char *)s, len, 0, utf8};
    return scan_domain_or_literal(&c) == SMTP_ADDR_OK && c.pos == len;
}

/* The characters of a local part with its quoting undone, one at a time. */
struct local_part {
    const char *p, *end;
    bool quoted;
};

static struct local_part local_part_of(const char *mailbox, const char *at)
{
    struct local_part l = {mailbox, at, false};
    if (at - mailbox >= 2 && mailbox[0] == '"' && at[-1] == '"') {
        l.p++;
        l.end--;
        l.quoted = true;
    }
    return l;
}

/* The next character, or -1 at the end. */
static int local_part_next(struct local_part *l)
{
    if (l->p >= l->end)
        return -1;
    if (l->quoted && *l->p == '\\' && l->p + 1 < l->end)
        l->p++; /* quoted-pairSMTP: the character itself */
    return (unsigned char)*l->p++;
}

bool smtp_addr_same_mailbox(const char *a, const char *b)
{
    const char *at_a = strrchr(a, '@'), *at_b = strrchr(b, '@');
    if (!at_a || !at_b) /* "postmaster" alone (RFC 5321 §4.5.1: any case) */
        return !at_a && !at_b && strcasecmp(a, b) == 0;
    if (strcasecmp(at_a + 1, at_b + 1) != 0)
        return false;
    struct local_part la = local_part_of(a, at_a), lb = local_part_of(b, at_b);
    for (;;) { /* each step consumes a character of both: bounded by the shorter */
        int ca = local_part_next(&la), cb = local_part_next(&lb);
        if (ca != cb)
            return false;
        if (ca < 0)
            return true;
    }
}
