/* auth/from.c — the author domains of a message's From: field. The header is walked field by
 * field in place (auth_field_next), so neither the number of fields before From: nor the
 * length of From: (a long folded display name) limits the search; a second From: field is
 * found wherever it stands. The field's value is read in one pass, octet by octet, as a
 * mailbox-list (RFC 5322 §3.4): quoted strings and comments are skipped, so an '@' or ','
 * inside a display name is never taken for an address; the address of a mailbox is its
 * angle-addr when it has one, else the whole mailbox (an addr-spec); its domain is what follows
 * the one '@' of that address. A domain in UTF-8 (RFC 6532) is turned into its A-label form
 * (IDNA2008 with the UTS #46 mapping, libidn2), the name DNS holds its DMARC record under. The
 * mapping drops the characters a reader cannot see (a zero-width space, a no-break space at the
 * end), so a domain padded with them is judged as the domain it imitates, whose policy then
 * applies; one that does not convert (a joiner out of context, a disallowed character, not
 * UTF-8) is unreadable. Anything this cannot read with
 * certainty (group syntax, a route, a domain literal, two '@' in an address, text after '>')
 * makes the field unreadable: the caller then knows no author, rather than a wrong one. */
#include "auth/from.h"

#include <idn2.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "auth/canon.h"

/* A domain as DNS carries it in text is at most 253 characters; in UTF-8 before conversion, a
 * character of it may take 4 octets. */
#define DNS_TEXT_MAX 253u
#define DOMAIN_TEXT_MAX (4u * DNS_TEXT_MAX)

const char *auth_from_status_text(enum auth_from_status s)
{
    switch (s) {
    case AUTH_FROM_OK: return "one From: field";
    case AUTH_FROM_NONE: return "no From: field";
    case AUTH_FROM_SEVERAL: return "several From: fields";
    case AUTH_FROM_UNREADABLE: return "no readable address with a domain in From:";
    case AUTH_FROM_TOO_MANY: return "too many author domains in From:";
    }
    return "no readable address with a domain in From:";
}

/* The mailbox being read: its current address part (the whole mailbox until a '<' is seen,
 * then the angle-addr) and the domain after that part's '@'. */
struct mailbox {
    bool any;       /* something but CFWS was seen: the mailbox is not an empty list element */
    int angle;      /* 0 before '<', 1 inside <…>, 2 after '>' */
    unsigned ats;   /* '@' in the current address part */
    bool gap;       /* whitespace or a comment after domain characters */
    bool bad;       /* cannot be read */
    char domain[DOMAIN_TEXT_MAX + 1];
    size_t dlen;
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Letters, digits, '-', '.', and the octets of UTF-8 (checked when the domain is converted). */
static bool is_domain_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || (unsigned char)c >= 0x80;
}

/* A new address part (at the start of the mailbox and at its '<'). */
static void begin_address(struct mailbox *m)
{
    m->ats = 0;
    m->gap = false;
    m->bad = false;
    m->dlen = 0;
}

/* Whitespace or a comment: it ends a domain's characters. */
static void separator(struct mailbox *m)
{
    if (m->dlen > 0)
        m->gap = true;
}

/* One octet outside quoted strings and comments. */
static void octet(struct mailbox *m, char c)
{
    m->any = true;
    if (m->angle == 2) { /* only CFWS may follow the angle-addr */
        m->bad = true;
        return;
    }
    if (c == '<') {
        if (m->angle != 0) {
            m->bad = true;
            return;
        }
        m->angle = 1;
        begin_address(m); /* the display name before it is not the address */
        return;
    }
    if (c == '>') {
        if (m->angle != 1)
            m->bad = true;
        m->angle = 2;
        return;
    }
    if (c == '@') {
        m->ats++;
        m->dlen = 0;
        m->gap = false;
        return;
    }
    if (m->ats == 0)
        return; /* the local part (or a display name) */
    if (!is_domain_char(c) || m->gap || m->dlen == DOMAIN_TEXT_MAX) {
        m->bad = true; /* a domain literal, a space inside the domain, or too long */
        return;
    }
    m->domain[m->dlen++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* A plain DNS domain of two labels or more, none empty. */
static bool plain_domain(const char *d, size_t n)
{
    if (n == 0 || d[0] == '.' || d[n - 1] == '.' || memchr(d, '.', n) == NULL)
        return false;
    for (size_t i = 1; i < n; i++)
        if (d[i] == '.' && d[i - 1] == '.')
            return false;
    return true;
}

/* The domain as DNS text, at most DNS_TEXT_MAX characters: one with UTF-8 octets is put in its
 * A-label form, in place (false: too long, or it does not convert). The UTS #46 mapping
 * lower-cases, normalises and drops ignorable characters; STD3 rules refuse what is no host
 * name character, and IDNA2008 refuses joiners out of their context. */
static bool to_a_labels(struct mailbox *m)
{
    bool ascii = true;
    for (size_t i = 0; i < m->dlen && ascii; i++)
        ascii = (unsigned char)m->domain[i] < 0x80;
    if (ascii)
        return m->dlen <= DNS_TEXT_MAX;
    m->domain[m->dlen] = '\0';
    uint8_t *alabels = NULL;
    if (idn2_lookup_u8((const uint8_t *)m->domain, &alabels,
                       IDN2_NONTRANSITIONAL | IDN2_USE_STD3_ASCII_RULES) != IDN2_OK)
        return false;
    size_t n = strlen((const char *)alabels);
    bool fits = n <= DNS_TEXT_MAX;
    if (fits) {
        memcpy(m->domain, alabels, n);
        m->dlen = n;
    }
    idn2_free(alabels);
    return fits;
}

/* The end of a mailbox (at ',' or at the end of the field): its domain joins out's list. */
static void end_mailbox(struct mailbox *m, struct auth_from *out)
{
    bool empty = !m->any; /* "a@b.example, , c@d.example": an empty element (obs-mbox-list) */
    bool ok = !m->bad && m->angle != 1 && m->ats == 1 && to_a_labels(m) &&
              plain_domain(m->domain, m->dlen);
    if (!empty && out->status == AUTH_FROM_OK) {
        bool known = false;
        for (size_t i = 0; ok && !known && i < out->n; i++)
            known = strlen(out->domains[i]) == m->dlen &&
                    memcmp(out->domains[i], m->domain, m->dlen) == 0;
        if (!ok) {
            out->status = AUTH_FROM_UNREADABLE;
        } else if (!known && out->n == AUTH_FROM_DOMAINS_MAX) {
            out->status = AUTH_FROM_TOO_MANY;
        } else if (!known) {
            memcpy(out->domains[out->n], m->domain, m->dlen);
            out->domains[out->n++][m->dlen] = '\0';
        }
    }
    *m = (struct mailbox){0};
}

/* Reads the value of the From: field (after its colon) as a mailbox-list. */
static void read_mailboxes(const char *v, size_t n, struct auth_from *out)
{
    struct mailbox m = {0};
    size_t depth = 0; /* comment nesting */
    bool quoted = false;
    for (size_t i = 0; i < n && out->status == AUTH_FROM_OK; i++) {
        char c = v[i];
        if ((quoted || depth > 0) && c == '\\') {
            i++; /* quoted-pair */
        } else if (quoted) {
            quoted = c != '"';
        } else if (c == '(') {
            depth++;
            separator(&m);
        } else if (depth > 0) {
            depth -= c == ')';
        } else if (c == '"') {
            quoted = true;
            m.any = true;
            m.bad |= m.ats > 0 || m.angle == 2; /* no quotes in a domain or after '>' */
        } else if (is_space(c)) {
            separator(&m);
        } else if (c == ',' && m.angle != 1) {
            end_mailbox(&m, out);
        } else if (c == ',' || c == ':' || c == ';') {
            out->status = AUTH_FROM_UNREADABLE; /* group syntax or a route: no single author */
        } else if (c == '[' || c == ')') {
            m.any = true;
            m.bad = true; /* a domain literal, a stray ')' */
        } else {
            octet(&m, c);
        }
    }
    if (quoted || depth > 0)
        m.bad = m.any = true;
    end_mailbox(&m, out);
    if (out->status == AUTH_FROM_OK && out->n == 0)
        out->status = AUTH_FROM_UNREADABLE;
}

void auth_from_authors(const char *msg, size_t len, struct auth_from *out)
{
    memset(out, 0, sizeof *out);
    out->status = AUTH_FROM_NONE;
    struct auth_field f, from = {0};
    bool found = false;
    size_t pos = 0;
    while (auth_field_next(msg, len, &pos, &f)) {
        if (!auth_field_is(&f, "from"))
            continue;
        if (found) {
            out->status = AUTH_FROM_SEVERAL; /* RFC 5322 §3.6: at most one */
            return;
        }
        from = f;
        found = true;
    }
    if (!found)
        return;
    out->status = AUTH_FROM_OK;
    size_t skip = from.name_len;
    while (from.p[skip] != ':') /* the name's colon (auth_field_is found one) */
        skip++;
    skip++;
    read_mailboxes(from.p + skip, from.len - skip, out);
}
