/* deliver/route.h — where a recipient domain's mail goes: local Maildir, an LMTP server, a
 * static route, the smart host, or its MX hosts; MX ordering and what DNS outcomes mean for
 * delivery. RFC 5321 §5.1, RFC 7505, RFC 2033. Pure: the resolver (resolver.h) does the
 * look-ups. */
#ifndef CLEARMTA_DELIVER_ROUTE_H
#define CLEARMTA_DELIVER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver/destination.h"
#include "limits_mta.h"
#include "policy/config.h"
#include "reply/reply.h"

/* MX hosts kept per domain after ordering; Postfix tries 5 addresses per delivery, and a
 * domain with more hosts than this at the best preferences is not served better by more. */
#define DELIVER_ROUTE_HOSTS_MAX 16
/* Addresses kept per host (A and AAAA together). */
#define DELIVER_ROUTE_ADDRS_MAX 8

enum deliver_route_kind {
    DELIVER_ROUTE_LOCAL,     /* a local domain: Maildir */
    DELIVER_ROUTE_STATIC,    /* a route line names the next hop */
    DELIVER_ROUTE_RELAYHOST, /* the smart host takes all remote mail */
    DELIVER_ROUTE_LITERAL,   /* an address literal: that address, port 25, no DNS */
    DELIVER_ROUTE_MX,        /* look up the domain's MX (RFC 5321 §5.1) */
    DELIVER_ROUTE_LMTP       /* a local domain whose LMTP server takes its mail (RFC 2033) */
};
/* "local", "static", "relayhost", "literal", "mx", "lmtp". */
const char *deliver_route_kind_name(enum deliver_route_kind kind);

struct deliver_route {
    enum deliver_route_kind kind;
    const struct policy_nexthop *hop; /* STATIC and RELAYHOST: points into the config */
    const struct policy_lmtp *lmtp;   /* LMTP: points into the config */
    /* The name to resolve: the domain for MX; the hop's host otherwise (its MX when
     * hop->mx_lookup, else its addresses; a numeric host needs no look-up); the bare address
     * for LITERAL; LMTP over TCP: its host. "" for LOCAL and an LMTP socket. */
    char lookup[LIMIT_DOMAIN + 1];
    /* Destination name (destination.h): the domain for MX, "host:port" or "[host]:port" for a
     * next hop or literal, "lmtp:unix:PATH" or "lmtp:[host]:port" for LMTP. "" for LOCAL. */
    char destination[DELIVER_DESTINATION_NAME_MAX + 1];
};

/* Routes domain (any case; address literals such as "[192.0.2.1]" too) by the config: local
 * domains first (LMTP when the domain has an LMTP server), then a route line for exactly that
 * domain, then the relay host, then an address literal goes to its address, else MX.
 * false (out untouched) when domain is empty or longer than LIMIT_DOMAIN. The result points
 * into cfg: it is valid as long as cfg is. */
bool deliver_route_find(const struct policy_config *cfg, const char *domain,
                        struct deliver_route *out);

/* One MX record as DNS gave it. */
struct deliver_mx {
    char host[LIMIT_DOMAIN + 1];
    unsigned short preference;
};

/* True for a null MX (RFC 7505 §3): exactly one record, whose host is "" or ".". */
bool deliver_route_is_null_mx(const struct deliver_mx *records, size_t n);

/* Sorts records in place by preference, lowest first; records of equal preference are shuffled
 * (RFC 5321 §5.1) by a generator seeded with `random`: the same seed gives the same order. */
void deliver_route_order_mx(struct deliver_mx *records, size_t n, uint64_t random);

/* What a look-up of a domain's mail hosts came to. */
#define DELIVER_DNS_OUTCOMES(X)                                                           \
    X(DELIVER_DNS_OK, "ok")                                                               \
    X(DELIVER_DNS_NULL_MX, "the domain publishes a null MX: it accepts no mail")          \
    X(DELIVER_DNS_NXDOMAIN, "the domain does not exist")                                  \
    X(DELIVER_DNS_NO_HOST, "the domain has no MX and no address record")                  \
    X(DELIVER_DNS_MX_UNRESOLVED, "none of the domain's MX hosts has an address")          \
    X(DELIVER_DNS_TEMPFAIL, "DNS look-up failed for the moment (SERVFAIL, timeout, refused)")

enum deliver_dns_outcome {
#define X(name, text) name,
    DELIVER_DNS_OUTCOMES(X)
#undef X
};
/* Never NULL. */
const char *deliver_dns_outcome_text(enum deliver_dns_outcome o);

/* The outcome row (codes.def) each look-up outcome gives the recipient: NULL_MX
 * OUTCOME_NULL_MX 5.1.10 (RFC 7505 §4.2), NXDOMAIN and NO_HOST OUTCOME_BAD_DOMAIN 5.1.2 (bad
 * destination system address), MX_UNRESOLVED OUTCOME_MX_UNRESOLVED 5.4.4 (unable to route),
 * TEMPFAIL OUTCOME_ROUTE_TEMPFAIL 4.4.3 (directory server failure: defer); OK, which gives no
 * outcome unless it came back without a host, OUTCOME_ROUTE_TEMPFAIL too. */
enum reply_outcome deliver_dns_outcome_row(enum deliver_dns_outcome o);

#endif
