/* auth/dmarc.h — DMARC without I/O: the policy record (parsed by auth/tags.c), the
 * organizational domain through the public suffix list (libpsl), identifier alignment of the
 * SPF and DKIM results with the From: domain, and the policy that applies. RFC 7489 §3, §6. */
#ifndef CLEARMTA_AUTH_DMARC_H
#define CLEARMTA_AUTH_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/dns.h"
#include "auth/err.h"

enum auth_dmarc_result {
    AUTH_DMARC_NONE, /* no policy record */
    AUTH_DMARC_PASS,
    AUTH_DMARC_FAIL,
    AUTH_DMARC_TEMPERROR,
    AUTH_DMARC_PERMERROR
};
const char *auth_dmarc_result_name(enum auth_dmarc_result r); /* never NULL */

/* In order of strictness (several failing authors: the strictest applies). */
enum auth_dmarc_policy { AUTH_DMARC_P_UNSET, AUTH_DMARC_P_NONE, AUTH_DMARC_P_QUARANTINE,
                         AUTH_DMARC_P_REJECT };
const char *auth_dmarc_policy_name(enum auth_dmarc_policy p); /* "" for UNSET */

struct auth_dmarc_record {
    enum auth_dmarc_policy p, sp; /* sp UNSET: p applies to subdomains too */
    bool strict_dkim, strict_spf; /* adkim=s, aspf=s */
    unsigned pct;                 /* 0..100 */
    char rua[256], ruf[256];      /* as written; "" when absent */
};

/* Parses a DMARC record ("v=DMARC1; p=…"). Errors: SYNTAX (not DMARC1 first, a bad tag
 * list, no or a bad p=). Unknown tags are ignored (§6.3). */
enum auth_err auth_dmarc_record_parse(const char *rec, size_t len, struct auth_dmarc_record *out);

/* Loads the public suffix list (the newest of libpsl's built-in list and the publicsuffix
 * package's file). Call once before the first evaluation, e.g. before privileges are dropped;
 * false when none could be loaded (organizational domains are then the last two labels). */
bool auth_dmarc_psl_load(void);

/* The organizational domain of domain (§3.2), lower case, into out. */
void auth_dmarc_org_domain(const char *domain, char *out, size_t cap);

/* One DKIM signature's outcome, for alignment. */
struct auth_dmarc_dkim {
    const char *domain; /* d= */
    bool pass;
};

struct auth_dmarc;

/* An evaluation for the author domains (the domains of the From: addresses, auth/from.h) and
 * the SPF (mail-from domain, pass or not) and DKIM results. Each author domain is evaluated;
 * the outcome is the strictest failing policy's (§6.6.1), else a temporary error, a permanent
 * error, a pass, none. No author domain (n_from 0, or one without a dot): permerror. NULL when
 * out of memory. */
struct auth_dmarc *auth_dmarc_new(const char *const *from_domains, size_t n_from,
                                  const char *spf_domain, bool spf_pass,
                                  const struct auth_dmarc_dkim *dkim, size_t n_dkim);
void auth_dmarc_free(struct auth_dmarc *d);

enum auth_dmarc_step { AUTH_DMARC_DONE, AUTH_DMARC_NEED };
/* Like auth_spf_run: NEED names the TXT look-up to answer with auth_dmarc_answer. */
enum auth_dmarc_step auth_dmarc_run(struct auth_dmarc *d, const char **txt_name);
void auth_dmarc_answer(struct auth_dmarc *d, const char *name, enum auth_dns_status st,
                       const char *const *records, const size_t *lens, size_t n);

enum auth_dmarc_result auth_dmarc_result(const struct auth_dmarc *d);
/* The policy that applies (sp= for a subdomain when given, else p=); UNSET without record. */
enum auth_dmarc_policy auth_dmarc_policy(const struct auth_dmarc *d);
/* The author domain whose outcome is the result ("" when there is none). */
const char *auth_dmarc_from_domain(const struct auth_dmarc *d);

#endif
