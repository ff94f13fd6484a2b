/* policy/config_auth.c — the mail authentication directives: dkim_sign DOMAIN selector=S
 * key=FILE [algorithm=…] [headers=…]. RFC 6376 §3.1 (selectors), §3.5 (h=). */
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
