/* auth/spf.h — SPF evaluation (check_host) without I/O: the evaluation runs on the DNS answers
 * given so far and names the next look-up it needs; the caller looks it up (asynchronously)
 * and runs it again. Limits: 10 DNS-querying terms, 2 void look-ups, 10 MX and PTR names.
 * RFC 7208 §4-§8. */
#ifndef CLEARMTA_AUTH_SPF_H
#define CLEARMTA_AUTH_SPF_H

#include <stddef.h>

#include "auth/dns.h"
#include "auth/err.h"
#include "auth/spf_record.h"

#define AUTH_SPF_DNS_TERMS_MAX 10u /* §4.6.4 */
#define AUTH_SPF_VOID_MAX 2u       /* §4.6.4 */
#define AUTH_SPF_NAMES_MAX 10u     /* MX and PTR names looked at, §4.6.4 */
#define AUTH_SPF_ANSWERS_MAX 256u  /* look-ups one evaluation may make before giving up */

struct auth_spf;

/* An evaluation for client address ip (IPv4 or IPv6 text), HELO name helo and MAIL FROM
 * mail_from ("" or NULL: the HELO identity is checked, as postmaster@helo, §2.3). receiver is
 * our host name for %{r}; now for %{t}. NULL when ip is not an address or out of memory. */
struct auth_spf *auth_spf_new(const char *ip, const char *helo, const char *mail_from,
                              const char *receiver, long long now);
void auth_spf_free(struct auth_spf *s);

enum auth_spf_step { AUTH_SPF_DONE, AUTH_SPF_NEED };

/* Evaluates with the answers given so far. NEED: *name and *type say which look-up comes
 * next (name valid until the next call); DONE: auth_spf_result() holds the outcome. */
enum auth_spf_step auth_spf_run(struct auth_spf *s, const char **name, enum auth_dns_type *type);

/* The answer to a look-up auth_spf_run asked for: records as text (see auth/dns.h). */
void auth_spf_answer(struct auth_spf *s, const char *name, enum auth_dns_type type,
                     enum auth_dns_status st, const char *const *records, const size_t *lens,
                     size_t n);

enum auth_spf_result auth_spf_result(const struct auth_spf *s);
const char *auth_spf_domain(const struct auth_spf *s);      /* the domain checked */
const char *auth_spf_explanation(const struct auth_spf *s); /* exp= text on a fail, or "" */
const char *auth_spf_reason(const struct auth_spf *s);      /* for people: what decided */
/* DNS-querying terms the last run evaluated (include, a, mx, ptr, exists, redirect). */
unsigned auth_spf_dns_terms(const struct auth_spf *s);

#endif
