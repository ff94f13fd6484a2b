/* policy/recipients.c — local recipient lookup: domain and user by binary search over the sorted
 * arrays the config loader builds. RFC 5321 §4.1.2, §4.5.1; RFC 6531. */
#include "policy/recipients.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char ascii_lower(char ch)
{
    /* Only ASCII letters fold: bytes >= 0x80 belong to UTF-8 sequences and compare exactly. */
    return (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
}

/* "[...]" → canonical literal; the inner text must be an IPv4 address or "IPv6:" + address. */
static bool canonical_literal(const char *domain, size_t len, char *out, size_t cap)
{
    char inner[LIMIT_DOMAIN + 1];
    if (len < 3 || domain[len - 1] != ']' || len - 2 > LIMIT_DOMAIN)
        return false;
    memcpy(inner, domain + 1, len - 2);
    inner[len - 2] = '\0';

    unsigned char bin[16];
    char text[INET6_ADDRSTRLEN];
    const char *prefix;
    int af;
    const char *addr = inner;
    if (strncasecmp(inner, "IPv6:", 5) == 0) {
        af = AF_INET6;
        addr = inner + 5;
        prefix = "[IPv6:";
    } else {
        af = AF_INET;
        prefix = "[";
    }
    if (inet_pton(af, addr, bin) != 1 || inet_ntop(af, bin, text, sizeof text) == NULL)
        return false;
    size_t plen = strlen(prefix), tlen = strlen(text);
    if (plen + tlen + 2 > cap)
        return false;
    memcpy(out, prefix, plen);
    memcpy(out + plen, text, tlen);
    out[plen + tlen] = ']';
    out[plen + tlen + 1] = '\0';
    return true;
}

bool policy_domain_canonical(const char *domain, char *out, size_t cap)
{
    size_t len = strlen(domain);
    if (len > 0 && domain[0] == '[')
        return canonical_literal(domain, len, out, cap);
    if (len >= cap)
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = ascii_lower(domain[i]);
    out[len] = '\0';
    return true;
}

bool policy_mailbox_name_safe(const char *name, size_t len)
{
    if (len == 0 || len > LIMIT_LOCAL_PART || name[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x20 || ch == 0x7f || ch == '/')
            return false;
    }
    return true;
}

bool policy_local_part_key(const char *local, char *key, size_t cap, size_t *key_len)
{
    size_t len = strlen(local), n = 0;
    bool quoted = len >= 2 && local[0] == '"' && local[len - 1] == '"';
    size_t i = quoted ? 1 : 0, end = quoted ? len - 1 : len;
    while (i < end) {
        char ch = local[i++];
        if (quoted && ch == '\\') {
            if (i == end)
                return false; /* a backslash escaping the closing quote */
            ch = local[i++];
        } else if (quoted && ch == '"') {
            return false;
        }
        if (n + 1 >= cap)
            return false;
        key[n++] = ascii_lower(ch);
    }
    key[n] = '\0';
    *key_len = n;
    return true;
}

/* Local part as sent → mailbox key: policy_local_part_key, and safe as a directory name. */
static bool local_key(const char *local, char *key, size_t cap)
{
    size_t n;
    return policy_local_part_key(local, key, cap, &n) && policy_mailbox_name_safe(key, n);
}

static int domain_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct policy_domain *)elem)->name);
}

static int user_cmp(const void *key, const void *elem)
{
    return strcmp(key, *(char *const *)elem);
}

static const struct policy_domain *find_domain(const struct policy_config *c, const char *domain)
{
    char key[LIMIT_DOMAIN + 1];
    if (c->n_domains == 0 || !policy_domain_canonical(domain, key, sizeof key))
        return NULL;
    return bsearch(key, c->domains, c->n_domains, sizeof c->domains[0], domain_cmp);
}

bool policy_domain_is_local(const struct policy_config *c, const char *domain)
{
    return domain != NULL && find_domain(c, domain) != NULL;
}

const struct policy_lmtp *policy_domain_lmtp(const struct policy_config *c, const char *domain)
{
    const struct policy_domain *d = domain != NULL ? find_domain(c, domain) : NULL;
    return d != NULL && d->lmtp.set ? &d->lmtp : NULL;
}

static enum policy_rcpt_result deliver_to(const char *mailbox, char *out, size_t cap)
{
    size_t len = strlen(mailbox);
    if (len >= cap)
        return POLICY_RCPT_UNKNOWN_USER;
    memcpy(out, mailbox, len + 1);
    return POLICY_RCPT_LOCAL;
}

enum policy_rcpt_result policy_rcpt_lookup(const struct policy_config *c, const char *local,
                                           const char *domain, char *out, size_t cap)
{
    const struct policy_domain *d = NULL;
    if (domain != NULL && domain[0] != '\0') {
        d = find_domain(c, domain);
        if (d == NULL)
            return POLICY_RCPT_NOT_LOCAL;
    }
    char key[POLICY_MAILBOX_CAP];
    if (local == NULL || !local_key(local, key, sizeof key))
        return POLICY_RCPT_UNKNOWN_USER;
    if (d != NULL && d->kind == POLICY_DOMAIN_CATCH_ALL)
        return deliver_to(d->catch_all, out, cap);
    if (d != NULL && d->lmtp.set) {
        if (d->n_users == 0 || strcmp(key, "postmaster") == 0 ||
            bsearch(key, d->users, d->n_users, sizeof d->users[0], user_cmp) != NULL)
            return POLICY_RCPT_LMTP;
        return POLICY_RCPT_UNKNOWN_USER;
    }
    /* RFC 5321 §4.5.1: postmaster (with any local domain, or alone) must always be accepted. */
    if (strcmp(key, "postmaster") == 0)
        return deliver_to("postmaster", out, cap);
    if (d == NULL || d->n_users == 0)
        return POLICY_RCPT_UNKNOWN_USER;
    char *const *user = bsearch(key, d->users, d->n_users, sizeof d->users[0], user_cmp);
    return user != NULL ? deliver_to(*user, out, cap) : POLICY_RCPT_UNKNOWN_USER;
}
