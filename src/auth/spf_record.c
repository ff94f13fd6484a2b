/* auth/spf_record.c — parses SPF records: version, terms split on spaces, qualifiers,
 * mechanisms with their domain-spec and dual CIDR lengths, modifiers, macro syntax.
 * RFC 7208 §4.6, §5, §6, §7.1, §12. */
#include "auth/spf_record.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *auth_spf_result_name(enum auth_spf_result r)
{
    switch (r) {
    case AUTH_SPF_NONE: return "none";
    case AUTH_SPF_NEUTRAL: return "neutral";
    case AUTH_SPF_PASS: return "pass";
    case AUTH_SPF_FAIL: return "fail";
    case AUTH_SPF_SOFTFAIL: return "softfail";
    case AUTH_SPF_TEMPERROR: return "temperror";
    case AUTH_SPF_PERMERROR: return "permerror";
    }
    return "permerror";
}

bool auth_spf_is_record(const char *rec, size_t len)
{
    return len >= 6 && strncasecmp(rec, "v=spf1", 6) == 0 && (len == 6 || rec[6] == ' ');
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* strchr that never matches the NUL a hostile record may hold. */
static bool in_set(char c, const char *set)
{
    return c != '\0' && strchr(set, c) != NULL;
}

bool auth_spf_macro_valid(const char *s, size_t len, bool exp)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != '%') {
            if (c < 0x21 || c > 0x7e)
                return exp && c == ' '; /* macro-literal; explanations may hold spaces */
            continue;
        }
        if (++i == len)
            return false;
        if (s[i] == '%' || s[i] == '_' || s[i] == '-')
            continue;
        if (s[i] != '{' || ++i == len)
            return false;
        char letter = (char)(s[i] | 0x20);
        if (!in_set(letter, exp ? "slodiphcrtv" : "slodiphv") || !is_alpha(s[i]))
            return false;
        i++;
        size_t digits = 0;
        bool nonzero = false;
        for (; i < len && is_digit(s[i]); i++, digits++)
            nonzero = nonzero || s[i] != '0';
        if (digits > 0 && !nonzero)
            return false; /* §7.1: a DIGIT transformer, if given, is not zero */
        if (i < len && (s[i] == 'r' || s[i] == 'R'))
            i++;
        while (i < len && in_set(s[i], ".-+,/_="))
            i++;
        if (i == len || s[i] != '}')
            return false;
    }
    return true;
}

/* domain-end (§12): the spec ends with a macro, or with a top label that is not all digits. */
static bool domain_spec_valid(const char *s, size_t len)
{
    if (len == 0 || !auth_spf_macro_valid(s, len, false))
        return false;
    if (s[len - 1] == '}')
        return true;
    if (len > 0 && s[len - 1] == '.')
        len--;
    size_t start = len;
    while (start > 0 && s[start - 1] != '.')
        start--;
    if (start == 0 || start == len)
        return false; /* needs a '.' and a label after it */
    bool alpha = false;
    for (size_t i = start; i < len; i++) {
        char c = s[i];
        if (is_alpha(c))
            alpha = true;
        else if (!is_digit(c) && c != '-')
            return false;
    }
    return alpha && s[start] != '-' && s[len - 1] != '-';
}

/* "/N" at the end of [p, *len): N into *out (max bound), removed from *len. */
static bool take_cidr(const char *p, size_t *len, bool dbl, unsigned max, unsigned *out)
{
    size_t e = *len, d = e;
    while (d > 0 && is_digit(p[d - 1]))
        d--;
    size_t slashes = dbl ? 2 : 1;
    if (d == e || d < slashes || p[d - 1] != '/' || (dbl && p[d - 2] != '/'))
        return true; /* not there: nothing taken */
    if (!dbl && d >= 2 && p[d - 2] == '/')
        return true; /* "//N" belongs to the IPv6 length */
    if (e - d > 3 || (e - d > 1 && p[d] == '0'))
        return false;
    unsigned v = 0;
    for (size_t i = d; i < e; i++)
        v = v * 10 + (unsigned)(p[i] - '0');
    if (v > max)
        return false;
    *out = v;
    *len = d - slashes;
    return true;
}

static const struct {
    const char *name;
    enum auth_spf_kind kind;
} mechanisms[] = {
    {"all", AUTH_SPF_ALL},   {"include", AUTH_SPF_INCLUDE}, {"a", AUTH_SPF_A},
    {"mx", AUTH_SPF_MX},     {"ptr", AUTH_SPF_PTR},         {"ip4", AUTH_SPF_IP4},
    {"ip6", AUTH_SPF_IP6},   {"exists", AUTH_SPF_EXISTS},
};

static enum auth_err mechanism(const char *p, size_t n, struct auth_spf_term *t)
{
    t->qualifier = AUTH_SPF_PASS;
    if (n > 0 && in_set(p[0], "+-~?")) {
        t->qualifier = p[0] == '-' ? AUTH_SPF_FAIL : p[0] == '~' ? AUTH_SPF_SOFTFAIL
                     : p[0] == '?' ? AUTH_SPF_NEUTRAL : AUTH_SPF_PASS;
        p++;
        n--;
    }
    size_t nl = 0;
    while (nl < n && p[nl] != ':' && p[nl] != '/')
        nl++;
    size_t m = 0;
    for (; m < sizeof mechanisms / sizeof mechanisms[0]; m++)
        if (strlen(mechanisms[m].name) == nl && strncasecmp(p, mechanisms[m].name, nl) == 0)
            break;
    if (m == sizeof mechanisms / sizeof mechanisms[0])
        return AUTH_ERR_SYNTAX;
    t->kind = mechanisms[m].kind;
    t->cidr4 = 32;
    t->cidr6 = 128;
    const char *arg = p + nl;
    size_t al = n - nl;
    bool colon = al > 0 && arg[0] == ':';
    switch (t->kind) {
    case AUTH_SPF_ALL:
        return al == 0 ? AUTH_OK : AUTH_ERR_SYNTAX;
    case AUTH_SPF_INCLUDE:
    case AUTH_SPF_EXISTS:
        if (!colon || !domain_spec_valid(arg + 1, al - 1))
            return AUTH_ERR_SYNTAX;
        t->spec = arg + 1;
        t->spec_len = al - 1;
        return AUTH_OK;
    case AUTH_SPF_A:
    case AUTH_SPF_MX:
    case AUTH_SPF_PTR:
        if (t->kind != AUTH_SPF_PTR &&
            (!take_cidr(arg, &al, true, 128, &t->cidr6) ||
             !take_cidr(arg, &al, false, 32, &t->cidr4)))
            return AUTH_ERR_SYNTAX;
        if (al == 0)
            return AUTH_OK;
        if (!colon || !domain_spec_valid(arg + 1, al - 1))
            return AUTH_ERR_SYNTAX;
        t->spec = arg + 1;
        t->spec_len = al - 1;
        return AUTH_OK;
    case AUTH_SPF_IP4:
    case AUTH_SPF_IP6: {
        bool v6 = t->kind == AUTH_SPF_IP6;
        if (!colon || !take_cidr(arg, &al, false, v6 ? 128 : 32, v6 ? &t->cidr6 : &t->cidr4))
            return AUTH_ERR_SYNTAX;
        if (!v6 && al > 1 && arg[al - 1] == '/')
            return AUTH_ERR_SYNTAX;
        char ip[64];
        if (al - 1 == 0 || al - 1 >= sizeof ip)
            return AUTH_ERR_SYNTAX;
        memcpy(ip, arg + 1, al - 1);
        ip[al - 1] = '\0';
        return inet_pton(v6 ? AF_INET6 : AF_INET, ip, t->ip) == 1 ? AUTH_OK : AUTH_ERR_SYNTAX;
    }
    default:
        return AUTH_ERR_SYNTAX;
    }
}

enum auth_err auth_spf_record_parse(const char *rec, size_t len, struct auth_spf_record *out)
{
    memset(out, 0, sizeof *out);
    if (!auth_spf_is_record(rec, len))
        return AUTH_ERR_SYNTAX;
    size_t cap = 16;
    out->terms = malloc(cap * sizeof *out->terms);
    if (out->terms == NULL)
        return AUTH_ERR_NOMEM;
    for (size_t i = 6; i < len;) {
        while (i < len && rec[i] == ' ')
            i++;
        size_t s = i;
        while (i < len && rec[i] != ' ')
            i++;
        if (s == i)
            break;
        const char *p = rec + s;
        size_t n = i - s;
        size_t nl = 0;
        while (nl < n && (is_alpha(p[nl]) || is_digit(p[nl]) || in_set(p[nl], "-_.")))
            nl++;
        if (nl > 0 && nl < n && p[nl] == '=' && is_alpha(p[0])) { /* a modifier */
            const char *v = p + nl + 1;
            size_t vl = n - nl - 1;
            bool redirect = nl == 8 && strncasecmp(p, "redirect", 8) == 0;
            bool exp = nl == 3 && strncasecmp(p, "exp", 3) == 0;
            if (redirect || exp) {
                if ((redirect && out->has_redirect) || (exp && out->has_exp) ||
                    !domain_spec_valid(v, vl))
                    return AUTH_ERR_SYNTAX;
                struct auth_spf_term *t = redirect ? &out->redirect : &out->exp;
                *t = (struct auth_spf_term){.kind = redirect ? AUTH_SPF_REDIRECT : AUTH_SPF_EXP,
                                            .spec = v, .spec_len = vl};
                if (redirect)
                    out->has_redirect = true;
                else
                    out->has_exp = true;
            } else if (!auth_spf_macro_valid(v, vl, false)) {
                return AUTH_ERR_SYNTAX; /* unknown modifiers are ignored, if well-formed */
            }
            continue;
        }
        if (out->n == AUTH_SPF_TERMS_MAX)
            return AUTH_ERR_TOO_BIG;
        if (out->n == cap) {
            struct auth_spf_term *nt = realloc(out->terms, cap * 2 * sizeof *nt);
            if (nt == NULL)
                return AUTH_ERR_NOMEM;
            out->terms = nt;
            cap *= 2;
        }
        struct auth_spf_term *t = &out->terms[out->n];
        memset(t, 0, sizeof *t);
        enum auth_err err = mechanism(p, n, t);
        if (err != AUTH_OK)
            return err;
        out->n++;
    }
    return AUTH_OK;
}

void auth_spf_record_free(struct auth_spf_record *r)
{
    free(r->terms);
    r->terms = NULL;
    r->n = 0;
}
