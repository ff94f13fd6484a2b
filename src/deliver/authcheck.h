/* deliver/authcheck.h — the asynchronous driver of mail authentication on receipt: SPF of the
 * MAIL FROM (or HELO) identity, then the DKIM keys of every signature and the DMARC record,
 * each sans-I/O evaluator of auth/ fed with answers from the c-ares resolver on the event loop
 * (never blocking it) or from a small TTL-respecting cache; and the Authentication-Results
 * value of the outcome. The server (at MAIL FROM and at the end of DATA) and `clearmta auth`
 * both check through it. RFC 7208, RFC 6376 §6, RFC 7489, RFC 8601. */
#ifndef CLEARMTA_DELIVER_AUTHCHECK_H
#define CLEARMTA_DELIVER_AUTHCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/dkim_verify.h"
#include "auth/dmarc.h"
#include "auth/err.h"
#include "auth/from.h"
#include "auth/spf.h"

struct event_base;

/* Answers kept by the cache of one checker. */
#define DELIVER_AUTHCHECK_CACHE_ENTRIES 1024u
/* One step (SPF; the DKIM keys; DMARC) gives up after this long: what is still unanswered is
 * a temporary error (RFC 7208 §4.6.4 asks for at least 20 s for SPF). */
#define DELIVER_AUTHCHECK_STEP_MS 20000u

struct deliver_authcheck;

/* A checker on base with its own resolver: server as for deliver_resolver_new ("IP:PORT" or
 * NULL for /etc/resolv.conf), each query waiting query_ms (tried twice). NULL on failure with
 * the reason in err. */
struct deliver_authcheck *deliver_authcheck_new(struct event_base *base, const char *server,
                                                unsigned query_ms, char *err, size_t errcap);
/* Cancels every run still going (without callbacks) and frees. NULL is fine. */
void deliver_authcheck_free(struct deliver_authcheck *a);
/* Answers the cache holds now. */
size_t deliver_authcheck_cached(const struct deliver_authcheck *a);

/* The checks of one message. */
struct deliver_authcheck_run;
typedef void deliver_authcheck_cb(void *ctx, struct deliver_authcheck_run *run);

/* A run; NULL when out of memory. Free it with deliver_authcheck_run_free (which cancels). */
struct deliver_authcheck_run *deliver_authcheck_run_new(struct deliver_authcheck *a);
void deliver_authcheck_run_free(struct deliver_authcheck_run *run);

/* Checks SPF for client ip, HELO helo and MAIL FROM mail_from ("" or NULL: the HELO
 * identity, RFC 7208 §2.3); receiver is our host name (%{r}). cb is called from the loop once
 * it is done (never from inside this call). One step at a time: not while a step of the run
 * is going. Errors: SYNTAX (ip is not an address), NOMEM (no callback then). */
enum auth_err deliver_authcheck_spf(struct deliver_authcheck_run *run, const char *ip,
                                    const char *helo, const char *mail_from,
                                    const char *receiver, deliver_authcheck_cb *cb, void *ctx);

/* Verifies every DKIM signature of msg (CRLF line ends; read during the call only) and, when
 * dmarc, evaluates DMARC for its author domains (auth_from_authors) with the SPF result of
 * this run (none when SPF was not checked). A header with more fields than the verifier takes
 * (AUTH_DKIM_FIELDS_MAX) is not verified (no DKIM result) but DMARC is still evaluated. cb as
 * above. Errors: NOMEM, TOO_BIG (see auth_dkim_verify_new; only when not dmarc). */
enum auth_err deliver_authcheck_message(struct deliver_authcheck_run *run, const char *msg,
                                        size_t len, bool dmarc, deliver_authcheck_cb *cb,
                                        void *ctx);

/* The evaluators, once their step is done; NULL when it was not run. */
const struct auth_spf *deliver_authcheck_run_spf(const struct deliver_authcheck_run *run);
const struct auth_dkim_verify *deliver_authcheck_run_dkim(const struct deliver_authcheck_run *run);
const struct auth_dmarc *deliver_authcheck_run_dmarc(const struct deliver_authcheck_run *run);
/* The author domains found by deliver_authcheck_message (status NONE before it). */
const struct auth_from *deliver_authcheck_run_from(const struct deliver_authcheck_run *run);
/* True when the SPF identity was the HELO name (no MAIL FROM). */
bool deliver_authcheck_run_spf_helo(const struct deliver_authcheck_run *run);

/* The key record answer signature i got: status and first record (NULL when none), kept for
 * measuring verification without DNS (`auth dkim-verify --repeat`). */
void deliver_authcheck_run_key(const struct deliver_authcheck_run *run, size_t i,
                               enum auth_dns_status *st, const char **record, size_t *len);

/* The Authentication-Results value (RFC 8601 §2.2) without the field name: authserv_id, then
 * spf=… smtp.mailfrom=… (or smtp.helo=…) when SPF was checked, one dkim=… header.d=…
 * header.s=… header.b=… per signature (dkim=none when there is none) and dmarc=…
 * header.from=… when those were checked. The length written (always NUL-terminated);
 * cut short at a whole method when cap is too small. */
size_t deliver_authcheck_results(const struct deliver_authcheck_run *run,
                                 const char *authserv_id, char *out, size_t cap);

#endif
