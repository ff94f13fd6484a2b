/* policy/config_auth.c — the mail authentication directives: dkim_sign DOMAIN selector=S
 * key=FILE [algorithm=…] [headers=…]; spf_check off|tag|reject and dmarc_check
 * off|tag|enforce, globally and as options of MX listeners. RFC 6376 §3.1 (selectors), §3.5
 * (h=); RFC 7208 §8; RFC 7489 §6.6.2. */
#include "policy/config_internal.h"

#include <stdlib.h>
#include <string.h>

/* Selectors are DNS labels under _domainkey: letters, digits, '-', dot-separated. */
static bool selector_valid(const char *s)
{
    size_t label = 0, n = strlen(s);
    if (n == 0 || n >= sizeof ((struct policy_dkim_sign *)0)->selector)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* Field names (RFC 5322 ftext: printable ASCII but colon) separated by single colons. */
static bool headers_valid(const char *s)
{
    size_t n = strlen(s), name = 0;
    if (n == 0 || n >= sizeof ((struct policy_dkim_sign *)0)->headers)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ':') {
            if (name == 0)
                return false;
            name = 0;
        } else if (s[i] > ' ' && s[i] < 0x7f) {
            name++;
        } else {
            return false;
        }
    }
    return name > 0;
}

void policy_auth_dkim_sign(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    (void)d;
    struct policy_dkim_sign k = {.line = ld->line};
    char *domain = policy_conf_token(cur);
    if (domain == NULL || !policy_conf_hostname_valid(domain) ||
        strlen(domain) >= sizeof k.domain) {
        policy_conf_problem(ld, "dkim_sign takes a domain, then selector=S key=FILE "
                                "[algorithm=rsa-sha256|ed25519-sha256] [headers=a:b:c]");
        return;
    }
    memcpy(k.domain, domain, strlen(domain) + 1);
    policy_conf_lower(k.domain);
    for (char *opt = policy_conf_token(cur); opt != NULL; opt = policy_conf_token(cur)) {
        if (strncmp(opt, "selector=", 9) == 0 && selector_valid(opt + 9)) {
            memcpy(k.selector, opt + 9, strlen(opt + 9) + 1);
        } else if (strncmp(opt, "key=", 4) == 0 && opt[4] != '\0') {
            if (!policy_conf_resolve_path(ld->config_name, opt + 4, k.key, sizeof k.key)) {
                policy_conf_problem(ld, "dkim_sign: key path is longer than %u bytes",
                                    POLICY_PATH_CAP - 1);
                return;
            }
        } else if (strcmp(opt, "algorithm=rsa-sha256") == 0 ||
                   strcmp(opt, "algorithm=ed25519-sha256") == 0) {
            memcpy(k.algorithm, opt + 10, strlen(opt + 10) + 1);
        } else if (strncmp(opt, "headers=", 8) == 0 && headers_valid(opt + 8)) {
            memcpy(k.headers, opt + 8, strlen(opt + 8) + 1);
        } else {
            policy_conf_problem(ld, "dkim_sign: '%s' is not selector=S, key=FILE, "
                                    "algorithm=rsa-sha256|ed25519-sha256 or headers=a:b:c",
                                policy_conf_show(opt).s);
            return;
        }
    }
    if (k.selector[0] == '\0' || k.key[0] == '\0') {
        policy_conf_problem(ld, "dkim_sign %s: selector= and key= are required", k.domain);
        return;
    }
    for (size_t i = 0; i < ld->c->n_dkim_sign; i++) {
        if (strcmp(ld->c->dkim_sign[i].domain, k.domain) == 0) {
            policy_conf_problem(ld, "dkim_sign: %s already has a key on line %u", k.domain,
                                ld->c->dkim_sign[i].line);
            return;
        }
    }
    if (ld->c->n_dkim_sign == POLICY_DKIM_SIGN_MAX) {
        policy_conf_problem(ld, "dkim_sign: more than %u domains (POLICY_DKIM_SIGN_MAX)",
                            POLICY_DKIM_SIGN_MAX);
        return;
    }
    struct policy_dkim_sign *nk =
        realloc(ld->c->dkim_sign, (ld->c->n_dkim_sign + 1) * sizeof *nk);
    if (nk == NULL) {
        policy_conf_oom(ld);
        return;
    }
    ld->c->dkim_sign = nk;
    nk[ld->c->n_dkim_sign++] = k;
}

/* ---- spf_check, dmarc_check ---- */

static const char *const spf_words[] = {"off", "tag", "reject"};
static const char *const dmarc_words[] = {"off", "tag", "enforce"};

/* The index + 1 of word in words[3] (the enum value past INHERIT), or 0. */
static int check_word(const char *const words[3], const char *word)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(word, words[i]) == 0)
            return i + 1;
    return 0;
}

bool policy_auth_check_option(struct loader *ld, struct policy_listener *l, const char *opt)
{
    bool spf = strncmp(opt, "spf_check=", 10) == 0;
    const char *word = opt + (spf ? 10 : 12);
    const char *const *words = spf ? spf_words : dmarc_words;
    int v = check_word(words, word);
    if (l->kind != POLICY_LISTEN_MX) {
        policy_conf_problem(ld, "listen: %s applies to mx listeners only (mail of AUTH "
                                "sessions is never checked)", spf ? "spf_check" : "dmarc_check");
        return false;
    }
    if (v == 0) {
        policy_conf_problem(ld, "listen: %s takes %s, %s or %s, not '%s'",
                            spf ? "spf_check=" : "dmarc_check=", words[0], words[1], words[2],
                            policy_conf_show(word).s);
        return false;
    }
    if (spf)
        l->spf_check = (enum policy_spf_check)v;
    else
        l->dmarc_check = (enum policy_dmarc_check)v;
    return true;
}

/* The value of spf_check or dmarc_check (keyword) as an index + 1 into words; 0 (reported)
 * when it is none of them or missing. */
static int check_value(struct loader *ld, const struct directive *d, struct cursor *cur,
                       const char *keyword, const char *const words[3])
{
    char *v = policy_conf_one_value(ld, d, cur);
    if (v == NULL)
        return 0;
    int n = check_word(words, v);
    if (n == 0)
        policy_conf_problem(ld, "%s takes %s, %s or %s, not '%s'", keyword, words[0], words[1],
                            words[2], policy_conf_show(v).s);
    return n;
}

void policy_auth_spf_check(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    int n = check_value(ld, d, cur, "spf_check", spf_words);
    if (n != 0)
        ld->c->spf_check = (enum policy_spf_check)n;
}

void policy_auth_dmarc_check(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    int n = check_value(ld, d, cur, "dmarc_check", dmarc_words);
    if (n != 0)
        ld->c->dmarc_check = (enum policy_dmarc_check)n;
}

enum policy_spf_check policy_listener_spf_check(const struct policy_config *c,
                                                const struct policy_listener *l)
{
    if (l->kind != POLICY_LISTEN_MX)
        return POLICY_SPF_OFF;
    enum policy_spf_check v = l->spf_check != POLICY_SPF_INHERIT ? l->spf_check : c->spf_check;
    return v == POLICY_SPF_INHERIT ? POLICY_SPF_OFF : v;
}

enum policy_dmarc_check policy_listener_dmarc_check(const struct policy_config *c,
                                                    const struct policy_listener *l)
{
    if (l->kind != POLICY_LISTEN_MX)
        return POLICY_DMARC_OFF;
    enum policy_dmarc_check v =
        l->dmarc_check != POLICY_DMARC_INHERIT ? l->dmarc_check : c->dmarc_check;
    return v == POLICY_DMARC_INHERIT ? POLICY_DMARC_OFF : v;
}

const char *policy_spf_check_name(enum policy_spf_check v)
{
    return v == POLICY_SPF_INHERIT ? "inherit" : spf_words[v - 1];
}

const char *policy_dmarc_check_name(enum policy_dmarc_check v)
{
    return v == POLICY_DMARC_INHERIT ? "inherit" : dmarc_words[v - 1];
}
