/* cli/check_domain.c — `clearmta check-domain DOMAIN [--ip SENDING_IP] [--selector S]
 * [-c CONFIG] [--resolver HOST:PORT]`: what a receiving provider will see of a sending domain
 * (MX, SPF, DKIM keys, DMARC, the sending address's PTR, MTA-STS and TLS-RPT), each line a
 * verdict and, for every problem, the fix and the record to publish. RFC 7208, RFC 6376,
 * RFC 7489, RFC 8461, RFC 8460. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/dkim_key.h"
#include "auth/dmarc.h"
#include "auth/spf.h"
#include "auth/tags.h"
#include "cli/cli.h"
#include "deliver/resolver.h"
#include "policy/config.h"

#define SELECTORS_MAX 16

/* One answer, copied out of the resolver's callback. */
struct rrset {
    enum auth_dns_status st;
    size_t n;
    char *rec[DELIVER_RECORDS_MAX];
    size_t len[DELIVER_RECORDS_MAX];
};

struct ctx {
    struct event_base *base;
    struct deliver_resolver *r;
    struct rrset *pending;
    unsigned problems;
};

static void rrset_clear(struct rrset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->rec[i]);
    memset(s, 0, sizeof *s);
}

static void on_answer(void *arg, const struct deliver_records *res)
{
    struct ctx *c = arg;
    struct rrset *s = c->pending;
    s->st = res->outcome == DELIVER_DNS_OK         ? AUTH_DNS_OK
            : res->outcome == DELIVER_DNS_NXDOMAIN ? AUTH_DNS_NXDOMAIN
            : res->outcome == DELIVER_DNS_NO_HOST  ? AUTH_DNS_NODATA
                                                   : AUTH_DNS_TEMPFAIL;
    for (size_t i = 0; i < res->n; i++) {
        s->rec[s->n] = strndup(res->records[i], res->lens[i]);
        if (s->rec[s->n] != NULL)
            s->len[s->n++] = res->lens[i];
    }
    event_base_loopbreak(c->base);
}

/* One look-up, the loop run until its answer (the checks are one after another). */
static void get(struct ctx *c, const char *name, int type, struct rrset *out)
{
    rrset_clear(out);
    c->pending = out;
    if (deliver_resolver_lookup_records(c->r, name, type, on_answer, c, NULL) !=
        DELIVER_RESOLVER_OK) {
        out->st = AUTH_DNS_NXDOMAIN;
        return;
    }
    event_base_dispatch(c->base);
}

static void verdict(struct ctx *c, const char *level, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void verdict(struct ctx *c, const char *level, const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-4s %-7s ", level, what);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    c->problems += strcmp(level, "FAIL") == 0;
}

static void check_mx(struct ctx *c, const char *domain)
{
    struct rrset s = {0};
    get(c, domain, ns_t_mx, &s);
    if (s.st == AUTH_DNS_OK) {
        printf("OK   MX      ");
        for (size_t i = 0; i < s.n; i++)
            printf("%s%s", i ? ", " : "", s.rec[i]);
        printf("\n");
    } else if (s.st == AUTH_DNS_TEMPFAIL) {
        verdict(c, "WARN", "MX", "the look-up failed for now (SERVFAIL or timeout)");
    } else if (s.st == AUTH_DNS_NXDOMAIN) {
        verdict(c, "FAIL", "MX", "%s does not exist in DNS", domain);
        printf("     fix: register the domain or fix its delegation before sending from it\n");
    } else {
        verdict(c, "WARN", "MX", "no MX record: replies and bounces go to %s's address record",
                domain);
        printf("     fix: publish where your mail is received\n"
               "     publish: %s. IN MX 10 mx.%s.\n", domain, domain);
    }
    rrset_clear(&s);
}

static void check_spf(struct ctx *c, const char *domain, const char *ip)
{
    struct rrset s = {0};
    get(c, domain, ns_t_txt, &s);
    size_t found = 0, which = 0;
    for (size_t i = 0; s.st == AUTH_DNS_OK && i < s.n; i++)
        if (auth_spf_is_record(s.rec[i], s.len[i]) && found++ == 0)
            which = i;
    const char *mech = ip == NULL ? "mx" : strchr(ip, ':') ? "ip6:" : "ip4:";
    if (s.st == AUTH_DNS_TEMPFAIL) {
        verdict(c, "WARN", "SPF", "the TXT look-up failed for now (SERVFAIL or timeout)");
    } else if (found == 0) {
        verdict(c, "FAIL", "SPF", "no SPF record: receivers cannot tell which hosts may send "
                                  "for %s (Gmail and Yahoo refuse such bulk mail)", domain);
        printf("     fix: publish one TXT record listing your sending hosts\n"
               "     publish: %s. IN TXT \"v=spf1 %s%s -all\"\n", domain, mech, ip ? ip : "");
    } else if (found > 1) {
        verdict(c, "FAIL", "SPF", "%zu SPF records: receivers treat that as permerror", found);
        printf("     fix: merge them into one TXT record starting with v=spf1\n");
    } else {
        struct auth_spf_record r;
        enum auth_err e = auth_spf_record_parse(s.rec[which], s.len[which], &r);
        auth_spf_record_free(&r);
        if (e != AUTH_OK) {
            verdict(c, "FAIL", "SPF", "syntax error in \"%s\"", s.rec[which]);
            printf("     fix: correct the record (RFC 7208 §12 gives the syntax)\n");
        } else {
            /* An address from TEST-NET-1 that no real record lists: the evaluation walks every
             * term, so it counts every DNS look-up the record costs. */
            char from[300];
            snprintf(from, sizeof from, "postmaster@%s", domain);
            struct auth_spf *spf = auth_spf_new(ip ? ip : "192.0.2.254", "check.invalid", from,
                                                NULL, time(NULL));
            const char *name;
            enum auth_dns_type type;
            struct rrset a = {0};
            while (spf && auth_spf_run(spf, &name, &type) == AUTH_SPF_NEED) {
                char copy[256];
                snprintf(copy, sizeof copy, "%s", name);
                get(c, copy, (int)type, &a);
                auth_spf_answer(spf, copy, type, a.st, (const char *const *)a.rec, a.len, a.n);
            }
            rrset_clear(&a);
            enum auth_spf_result res = spf ? auth_spf_result(spf) : AUTH_SPF_TEMPERROR;
            unsigned terms = spf ? auth_spf_dns_terms(spf) : 0;
            if (res == AUTH_SPF_PERMERROR && terms > AUTH_SPF_DNS_TERMS_MAX) {
                verdict(c, "FAIL", "SPF", "\"%s\" needs more than %u DNS look-ups (includes, a, "
                        "mx, ptr, exists): receivers stop at %u and give permerror",
                        s.rec[which], AUTH_SPF_DNS_TERMS_MAX, AUTH_SPF_DNS_TERMS_MAX);
                printf("     fix: replace include:/a/mx terms by the ip4:/ip6: ranges they stand "
                       "for, or drop services that no longer send for %s\n", domain);
            } else if (res == AUTH_SPF_PERMERROR || res == AUTH_SPF_TEMPERROR) {
                verdict(c, "FAIL", "SPF", "\"%s\" evaluates to %s (%s)", s.rec[which],
                        auth_spf_result_name(res), auth_spf_reason(spf));
            } else if (ip != NULL && res != AUTH_SPF_PASS) {
                verdict(c, "FAIL", "SPF", "\"%s\" does not authorise %s (%s)", s.rec[which], ip,
                        auth_spf_result_name(res));
                printf("     fix: add %s%s before the final all\n", mech, ip);
            } else {
                verdict(c, "OK", "SPF", "\"%s\" (%u DNS look-ups%s)", s.rec[which], terms,
                        ip ? ", authorises the sending address" : "");
            }
            auth_spf_free(spf);
        }
    }
    rrset_clear(&s);
}

static void check_dkim(struct ctx *c, const char *domain, const char *selector,
                       const char *keyfile)
{
    char name[512], want[1024] = "";
    struct auth_dkim_key *k = NULL;
    if (keyfile != NULL && auth_dkim_key_load(keyfile, &k) == AUTH_OK)
        auth_dkim_key_record(k, want, sizeof want);
    auth_dkim_key_free(k);
    snprintf(name, sizeof name, "%s._domainkey.%s", selector, domain);
    struct rrset s = {0};
    get(c, name, ns_t_txt, &s);
    if (s.st == AUTH_DNS_TEMPFAIL) {
        verdict(c, "WARN", "DKIM", "%s: the look-up failed for now", name);
    } else if (s.st != AUTH_DNS_OK || s.n == 0) {
        verdict(c, "FAIL", "DKIM", "no key record at %s: every signature with s=%s fails "
                                   "(permerror) and DMARC cannot pass through DKIM", name, selector);
        printf("     fix: publish the public key of the selector's private key%s\n",
               want[0] ? "" : " (clearmta dkim keygen prints it)");
        if (want[0])
            printf("     publish: %s. IN TXT \"%s\"\n", name, want);
    } else {
        struct auth_tags t;
        bool ok = auth_tags_parse(s.rec[0], s.len[0], &t) == AUTH_OK &&
                  auth_tags_get(&t, "p") != NULL && auth_tags_get(&t, "p")->value_len > 0;
        char have[1024] = "", wantp[1024] = "";
        struct auth_tags wt;
        if (ok)
            auth_tag_squeeze(auth_tags_get(&t, "p"), have, sizeof have);
        if (want[0] && auth_tags_parse(want, strlen(want), &wt) == AUTH_OK)
            auth_tag_squeeze(auth_tags_get(&wt, "p"), wantp, sizeof wantp);
        if (!ok) {
            verdict(c, "FAIL", "DKIM", "%s: \"%s\" is not a usable key record", name, s.rec[0]);
        } else if (wantp[0] && strcmp(have, wantp) != 0) {
            verdict(c, "FAIL", "DKIM", "%s: the published key is not the configured key", name);
            printf("     fix: publish the key of %s\n     publish: %s. IN TXT \"%s\"\n",
                   keyfile, name, want);
        } else {
            verdict(c, "OK", "DKIM", "%s: key record present%s", name,
                    wantp[0] ? ", matches the configured key" : "");
        }
    }
    rrset_clear(&s);
}

static void check_dmarc(struct ctx *c, const char *domain)
{
    char name[300], org[256];
    auth_dmarc_org_domain(domain, org, sizeof org);
    struct rrset s = {0};
    snprintf(name, sizeof name, "_dmarc.%s", domain);
    get(c, name, ns_t_txt, &s);
    if ((s.st == AUTH_DNS_NXDOMAIN || s.st == AUTH_DNS_NODATA) && strcmp(org, domain) != 0) {
        snprintf(name, sizeof name, "_dmarc.%s", org);
        get(c, name, ns_t_txt, &s);
    }
    struct auth_dmarc_record r;
    size_t i = 0;
    while (s.st == AUTH_DNS_OK && i < s.n && auth_dmarc_record_parse(s.rec[i], s.len[i], &r))
        i++;
    if (s.st == AUTH_DNS_TEMPFAIL) {
        verdict(c, "WARN", "DMARC", "the look-up failed for now");
    } else if (s.st != AUTH_DNS_OK || i == s.n) {
        verdict(c, "FAIL", "DMARC", "no DMARC record at _dmarc.%s: Gmail, Yahoo and Microsoft "
                                    "require one of bulk senders", domain);
        printf("     fix: publish a policy, monitoring first (p=none), then quarantine or "
               "reject\n     publish: _dmarc.%s. IN TXT \"v=DMARC1; p=none; "
               "rua=mailto:dmarc-reports@%s\"\n", org, org);
    } else {
        verdict(c, r.p == AUTH_DMARC_P_NONE ? "WARN" : "OK", "DMARC",
                "%s: p=%s%s%s, alignment dkim=%s spf=%s, reports to %s", name,
                auth_dmarc_policy_name(r.p), r.sp ? " sp=" : "",
                r.sp ? auth_dmarc_policy_name(r.sp) : "", r.strict_dkim ? "strict" : "relaxed",
                r.strict_spf ? "strict" : "relaxed", r.rua[0] ? r.rua : "nobody (no rua=)");
        if (r.p == AUTH_DMARC_P_NONE)
            printf("     fix: p=none only monitors; once reports show your mail passes, "
                   "move to p=quarantine, then p=reject\n");
    }
    rrset_clear(&s);
}

static void check_ptr(struct ctx *c, const char *ip)
{
    unsigned char a[16];
    char name[100];
    bool v6 = inet_pton(AF_INET6, ip, a) == 1;
    if (!v6 && inet_pton(AF_INET, ip, a) != 1) {
        verdict(c, "FAIL", "PTR", "%s is not an IP address", ip);
        return;
    }
    size_t o = 0;
    if (v6) {
        for (int i = 15; i >= 0; i--)
            o += (size_t)snprintf(name + o, sizeof name - o, "%x.%x.", a[i] & 15, a[i] >> 4);
        snprintf(name + o, sizeof name - o, "ip6.arpa");
    } else {
        snprintf(name, sizeof name, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
    }
    struct rrset s = {0}, f = {0};
    get(c, name, ns_t_ptr, &s);
    if (s.st != AUTH_DNS_OK || s.n == 0) {
        verdict(c, "FAIL", "PTR", "%s has no PTR record: many receivers refuse mail from "
                                  "addresses without reverse DNS", ip);
        printf("     fix: ask the provider of %s to set its PTR to your mail host's name\n", ip);
    } else {
        get(c, s.rec[0], v6 ? ns_t_aaaa : ns_t_a, &f);
        bool confirmed = false;
        for (size_t i = 0; f.st == AUTH_DNS_OK && i < f.n; i++) {
            unsigned char b[16];
            confirmed = confirmed ||
                        (inet_pton(v6 ? AF_INET6 : AF_INET, f.rec[i], b) == 1 &&
                         memcmp(a, b, v6 ? 16 : 4) == 0);
        }
        if (confirmed) {
            verdict(c, "OK", "PTR", "%s is %s, which resolves back (forward-confirmed)", ip,
                    s.rec[0]);
        } else {
            verdict(c, "FAIL", "PTR", "%s is %s, but %s does not resolve back to %s", ip,
                    s.rec[0], s.rec[0], ip);
            printf("     fix: publish the address for the name\n     publish: %s. IN %s %s\n",
                   s.rec[0], v6 ? "AAAA" : "A", ip);
        }
    }
    rrset_clear(&s);
    rrset_clear(&f);
}

static void check_optional(struct ctx *c, const char *domain, const char *prefix,
                           const char *what, const char *starts)
{
    char name[300];
    snprintf(name, sizeof name, "%s.%s", prefix, domain);
    struct rrset s = {0};
    get(c, name, ns_t_txt, &s);
    bool found = false;
    for (size_t i = 0; s.st == AUTH_DNS_OK && i < s.n; i++)
        found = found || strncasecmp(s.rec[i], starts, strlen(starts)) == 0;
    if (found)
        verdict(c, "OK", what, "%s present", name);
    else
        verdict(c, "INFO", what, "none at %s (optional)", name);
    rrset_clear(&s);
}

int cli_check_domain(int argc, char **argv)
{
    const char *domain = NULL, *ip = NULL, *server = NULL, *conf = NULL;
    const char *selectors[SELECTORS_MAX], *keys[SELECTORS_MAX];
    size_t n_sel = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--ip") == 0 && v)
            ip = argv[++i];
        else if (strcmp(argv[i], "--resolver") == 0 && v)
            server = argv[++i];
        else if (strcmp(argv[i], "-c") == 0 && v)
            conf = argv[++i];
        else if (strcmp(argv[i], "--selector") == 0 && v && n_sel < SELECTORS_MAX) {
            keys[n_sel] = NULL;
            selectors[n_sel++] = argv[++i];
        } else if (domain == NULL && argv[i][0] != '-')
            domain = argv[i];
        else {
            fprintf(stderr, "usage: clearmta check-domain DOMAIN [--ip SENDING_IP] "
                            "[--selector S]... [-c CONFIG] [--resolver HOST:PORT]\n");
            return 2;
        }
    }
    if (domain == NULL) {
        fprintf(stderr, "usage: clearmta check-domain DOMAIN [--ip SENDING_IP] [--selector S]... "
                        "[-c CONFIG] [--resolver HOST:PORT]\n");
        return 2;
    }
    struct policy_config cfg;
    struct policy_problems problems;
    bool have_cfg = false;
    if (conf != NULL) {
        if (policy_config_load(conf, &cfg, &problems) != 0) {
            fprintf(stderr, "clearmta check-domain: %s has problems (clearmta check-config)\n",
                    conf);
            policy_config_free(&cfg);
            return 1;
        }
        have_cfg = true;
        for (size_t i = 0; i < cfg.n_dkim_sign && n_sel < SELECTORS_MAX; i++)
            if (strcasecmp(cfg.dkim_sign[i].domain, domain) == 0) {
                selectors[n_sel] = cfg.dkim_sign[i].selector;
                keys[n_sel++] = cfg.dkim_sign[i].key;
            }
        if (server == NULL && cfg.resolver[0])
            server = cfg.resolver;
    }
    char err[256] = "out of memory";
    struct ctx c = {.base = event_base_new()};
    c.r = c.base ? deliver_resolver_new(c.base, server, 3300, err, sizeof err) : NULL;
    if (c.r == NULL) {
        fprintf(stderr, "clearmta check-domain: %s\n", err);
        if (c.base)
            event_base_free(c.base);
        if (have_cfg)
            policy_config_free(&cfg);
        return 1;
    }
    auth_dmarc_psl_load();
    printf("What a receiving provider sees of %s%s%s:\n", domain, ip ? " sending from " : "",
           ip ? ip : "");
    check_mx(&c, domain);
    check_spf(&c, domain, ip);
    for (size_t i = 0; i < n_sel; i++)
        check_dkim(&c, domain, selectors[i], keys[i]);
    if (n_sel == 0)
        verdict(&c, "WARN", "DKIM", "no selector to check: give --selector S, or -c CONFIG with "
                                    "a dkim_sign line for %s", domain);
    check_dmarc(&c, domain);
    if (ip != NULL)
        check_ptr(&c, ip);
    check_optional(&c, domain, "_mta-sts", "MTA-STS", "v=STSv1");
    check_optional(&c, domain, "_smtp._tls", "TLS-RPT", "v=TLSRPTv1");
    printf("%u problem%s\n", c.problems, c.problems == 1 ? "" : "s");
    deliver_resolver_free(c.r);
    event_base_free(c.base);
    if (have_cfg)
        policy_config_free(&cfg);
    return c.problems ? 1 : 0;
}
