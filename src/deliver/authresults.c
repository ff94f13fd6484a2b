/* deliver/authresults.c — the Authentication-Results value (RFC 8601 §2.2) of a run of
 * deliver/authcheck.c: authserv-id, then one resinfo per method checked. The values come from
 * the message and the envelope: anything but the characters of a domain name is replaced, so
 * the value is always a well-formed header field body. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "deliver/authcheck.h"
#include "limits_mta.h"

/* The text being built: cut at a whole method when it would not fit. */
struct ar {
    char *out;
    size_t cap, len;
    bool full;
};

/* A value of a property or the authserv-id: letters, digits and "-._+/=" (base64 of
 * header.b); anything else becomes '?'; "unknown" when empty. '/', '=' and '?' are tspecials
 * of RFC 2045, which a token may not hold: such a value is written as a quoted-string (cap
 * holds the two quotes too). */
static void put_value(char *buf, size_t cap, const char *v)
{
    size_t n = 1;
    bool quote = false;
    for (; *v != '\0' && n + 2 < cap; v++) {
        char c = *v;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("-._+/=", c) != NULL;
        buf[n++] = ok ? c : '?';
        quote |= !ok || c == '/' || c == '=';
    }
    if (n == 1) {
        snprintf(buf, cap, "unknown");
    } else if (quote) {
        buf[0] = '"';
        buf[n++] = '"';
        buf[n] = '\0';
    } else {
        memmove(buf, buf + 1, n - 1);
        buf[n - 1] = '\0';
    }
}

__attribute__((format(printf, 2, 3))) static void add(struct ar *ar, const char *fmt, ...)
{
    if (ar->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ar->out + ar->len, ar->cap - ar->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= ar->cap - ar->len) {
        ar->out[ar->len] = '\0'; /* the method that does not fit is left out, and the rest */
        ar->full = true;
        return;
    }
    ar->len += (size_t)n;
}

size_t deliver_authcheck_results(const struct deliver_authcheck_run *run,
                                 const char *authserv_id, char *out, size_t cap)
{
    if (cap == 0)
        return 0;
    struct ar ar = {.out = out, .cap = cap};
    char v1[LIMIT_DOMAIN + 3], v2[LIMIT_DOMAIN + 3], v3[16];
    out[0] = '\0';
    put_value(v1, sizeof v1, authserv_id);
    add(&ar, "%s", v1);
    const struct auth_spf *spf = deliver_authcheck_run_spf(run);
    if (spf != NULL) {
        put_value(v1, sizeof v1, auth_spf_domain(spf));
        add(&ar, "; spf=%s %s=%s", auth_spf_result_name(auth_spf_result(spf)),
            deliver_authcheck_run_spf_helo(run) ? "smtp.helo" : "smtp.mailfrom", v1);
    }
    const struct auth_dkim_verify *v = deliver_authcheck_run_dkim(run);
    size_t n = v ? auth_dkim_verify_count(v) : 0;
    for (size_t i = 0; i < n; i++) {
        const struct auth_dkim_sig_result *r = auth_dkim_verify_result(v, i);
        put_value(v1, sizeof v1, r->domain);
        put_value(v2, sizeof v2, r->selector);
        put_value(v3, sizeof v3, r->b_prefix);
        add(&ar, "; dkim=%s header.d=%s header.s=%s header.b=%s",
            auth_dkim_result_name(r->result), v1, v2, v3);
    }
    if (v != NULL && n == 0)
        add(&ar, "; dkim=none");
    const struct auth_dmarc *d = deliver_authcheck_run_dmarc(run);
    if (d != NULL) {
        put_value(v1, sizeof v1, auth_dmarc_from_domain(d));
        enum auth_dmarc_result res = auth_dmarc_result(d);
        const char *policy = auth_dmarc_policy_name(auth_dmarc_policy(d));
        if (res == AUTH_DMARC_FAIL && policy[0] != '\0')
            add(&ar, "; dmarc=%s (p=%s) header.from=%s", auth_dmarc_result_name(res), policy,
                v1);
        else
            add(&ar, "; dmarc=%s header.from=%s", auth_dmarc_result_name(res), v1);
    }
    return ar.len;
}
