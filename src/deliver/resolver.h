/* deliver/resolver.h — asynchronous MX and address look-ups with c-ares on a libevent loop:
 * a domain's mail hosts in preference order with their A/AAAA addresses, the implicit MX when
 * there is none, null MX and failures classified for delivery. RFC 5321 §5.1, RFC 7505. */
#ifndef CLEARMTA_DELIVER_RESOLVER_H
#define CLEARMTA_DELIVER_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver/route.h"

struct event_base;

#define DELIVER_RESOLVER_ERRORS(X)                                                  \
    X(DELIVER_RESOLVER_OK, "ok")                                                    \
    X(DELIVER_RESOLVER_ERR_NAME, "bad name: empty, too long or not a domain name")  \
    X(DELIVER_RESOLVER_ERR_NOMEM, "out of memory")

enum deliver_resolver_err {
#define X(name, text) name,
    DELIVER_RESOLVER_ERRORS(X)
#undef X
};
/* Never NULL. */
const char *deliver_resolver_strerror(enum deliver_resolver_err err);

/* One address of a mail host, in network byte order. */
struct deliver_addr {
    int family;               /* AF_INET or AF_INET6 */
    unsigned char bytes[16];  /* 4 used for AF_INET */
};

struct deliver_mx_host {
    char name[LIMIT_DOMAIN + 1];
    unsigned short preference;
    size_t n_addrs;
    struct deliver_addr addrs[DELIVER_ROUTE_ADDRS_MAX];
};

/* The answer to a look-up. On DELIVER_DNS_OK hosts holds 1..DELIVER_ROUTE_HOSTS_MAX hosts in
 * the order to try (deliver_route_order_mx), each with at least one address; hosts without an
 * address are left out. Otherwise n_hosts is 0 and status/detail say why. */
struct deliver_mx_result {
    enum deliver_dns_outcome outcome;
    enum reply_outcome row;     /* deliver_dns_outcome_row(outcome) */
    bool implicit_mx;           /* no MX: the domain itself, RFC 5321 §5.1 */
    char detail[160];           /* for logs: what DNS said, e.g. "MX example.test: timeout" */
    size_t n_hosts;
    struct deliver_mx_host hosts[DELIVER_ROUTE_HOSTS_MAX];
};

/* Called once per look-up that was not cancelled, from the event loop (never from inside
 * deliver_resolver_lookup_*). res is valid only during the call. The callback may start new
 * look-ups and cancel others, but must not free the resolver. */
typedef void deliver_resolver_cb(void *ctx, const struct deliver_mx_result *res);

struct deliver_resolver;
struct deliver_lookup;

/* A resolver on base. server: "IPv4:PORT" or "[IPv6]:PORT" (policy_config.resolver), or
 * NULL / "" for the servers of /etc/resolv.conf. Look-ups ask DNS only (not /etc/hosts) and
 * never append search domains: mail domains are fully qualified. Each query waits
 * timeout_ms (0: 3000) and is tried twice. NULL on failure with the reason in err. */
struct deliver_resolver *deliver_resolver_new(struct event_base *base, const char *server,
                                              unsigned timeout_ms, char *err, size_t errcap);

/* Cancels every look-up still running without calling back, and frees r. NULL is fine. */
void deliver_resolver_free(struct deliver_resolver *r);

/* Looks up domain's MX, orders them (random seeds the shuffle of equal preferences), and
 * resolves each host's A and AAAA; with no MX record the domain's own addresses serve (implicit
 * MX). A null MX gives DELIVER_DNS_NULL_MX; NXDOMAIN DELIVER_DNS_NXDOMAIN; no MX and no
 * address DELIVER_DNS_NO_HOST; MX hosts all without address MX_UNRESOLVED (or TEMPFAIL when
 * one of their look-ups failed for the moment); SERVFAIL, REFUSED, timeouts and malformed
 * answers DELIVER_DNS_TEMPFAIL. *out (may be NULL) is the handle for deliver_resolver_cancel,
 * valid until the callback returns. Errors: NAME, NOMEM (no callback then). */
enum deliver_resolver_err deliver_resolver_lookup_mx(struct deliver_resolver *r,
                                                     const char *domain, uint64_t random,
                                                     deliver_resolver_cb *cb, void *ctx,
                                                     struct deliver_lookup **out);

/* The addresses of one host, no MX ([HOST] next hops): the result holds that host alone, at
 * preference 0. NXDOMAIN and no address give DELIVER_DNS_NXDOMAIN / NO_HOST. */
enum deliver_resolver_err deliver_resolver_lookup_host(struct deliver_resolver *r,
                                                       const char *host,
                                                       deliver_resolver_cb *cb, void *ctx,
                                                       struct deliver_lookup **out);

/* The records of one type of a name, as text: TXT records with their strings joined (RFC 6376
 * §3.6.2.2, RFC 7208 §3.3), A and AAAA addresses in inet_ntop form, MX and PTR host names
 * (MX as "PREFERENCE HOST"). For DKIM, SPF and DMARC. outcome: OK (n >= 1), NXDOMAIN, NO_HOST
 * (the name exists without such records), TEMPFAIL (SERVFAIL, timeout, malformed answer). At
 * most DELIVER_RECORDS_MAX records are kept (the rest left out); a TXT record longer than
 * DELIVER_RECORD_LEN octets makes it TEMPFAIL (other types are cut there: names fit). */
#define DELIVER_RECORDS_MAX 32u
#define DELIVER_RECORD_LEN 4096u
struct deliver_records {
    enum deliver_dns_outcome outcome;
    char detail[160];
    uint32_t ttl; /* seconds the answer may be kept (RFC 2308 for NXDOMAIN, NO_HOST); 0: none */
    size_t n;
    const char *records[DELIVER_RECORDS_MAX]; /* NUL-terminated too; valid during the callback */
    size_t lens[DELIVER_RECORDS_MAX];
};
typedef void deliver_resolver_records_cb(void *ctx, const struct deliver_records *res);

/* Looks up name's records of type (ns_t_txt, ns_t_a, ns_t_aaaa, ns_t_mx, ns_t_ptr); an answer
 * over 512 octets is fetched again over TCP by c-ares. Calls back from the loop like the
 * others; cancel with deliver_resolver_cancel. Errors: NAME (also an unsupported type),
 * NOMEM (no callback then). */
enum deliver_resolver_err deliver_resolver_lookup_records(struct deliver_resolver *r,
                                                          const char *name, int type,
                                                          deliver_resolver_records_cb *cb,
                                                          void *ctx,
                                                          struct deliver_lookup **out);

/* The callback of l will not be called; its memory is released once c-ares lets go of it.
 * For a caller that goes away. Not during or after l's own callback. */
void deliver_resolver_cancel(struct deliver_lookup *l);

#endif
