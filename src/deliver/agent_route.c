/* deliver/agent_route.c — the delivery agent's routing: recipients grouped by next hop, each
 * next hop resolved (MX of a domain or of a hop host, or a host's addresses) and its addresses
 * tried in order, at most AGENT_ADDRS_PER_ATTEMPT per attempt; an LMTP server by its socket or
 * address. RFC 5321 §5.1, RFC 7505, RFC 2033. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "deliver/agent_internal.h"
#include "policy/counters.h"

static enum smtp_client_tls client_tls(enum policy_tls t)
{
    switch (t) {
    case POLICY_TLS_NONE:
        return SMTP_CLIENT_TLS_NONE;
    case POLICY_TLS_OPPORTUNISTIC:
        return SMTP_CLIENT_TLS_OPPORTUNISTIC;
    case POLICY_TLS_REQUIRED:
    case POLICY_TLS_REQUIRED_VERIFY:
        break;
    }
    return SMTP_CLIENT_TLS_REQUIRED;
}

static bool numeric_address(const char *host, unsigned short port, struct sockaddr_storage *ss,
                            socklen_t *len)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof *v4;
        return true;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof *v6;
        return true;
    }
    return false;
}

/* An LMTP server's socket (the config bounds the path by sun_path). */
static void unix_candidate(struct candidate *c, const char *path)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&c->ss;
    memset(&c->ss, 0, sizeof c->ss);
    un->sun_family = AF_UNIX;
    snprintf(un->sun_path, sizeof un->sun_path, "%s", path);
    c->sslen = (socklen_t)sizeof *un;
    snprintf(c->host, sizeof c->host, "%s", path);
}

static void to_sockaddr(const struct deliver_addr *ad, unsigned short port,
                        struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    if (ad->family == AF_INET6) {
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        memcpy(&v6->sin6_addr, ad->bytes, 16);
        *len = sizeof *v6;
    } else {
        struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        memcpy(&v4->sin_addr, ad->bytes, 4);
        *len = sizeof *v4;
    }
}

/* ---- grouping ---- */

/* The route of a recipient into proto; false with the recipient's outcome set when it has
 * none (a local domain now: the local runner's). */
static bool route_rcpt(struct deliver_agent *a, const char *address, struct delivery *proto,
                       struct rcpt_out *rc)
{
    const char *at = strrchr(address, '@');
    struct deliver_route *r = &proto->route;
    if (at == NULL || !deliver_route_find(a->o.cfg, at + 1, r)) {
        deliver_agent_set_outcome(rc, OUTCOME_BAD_DOMAIN, "bad destination domain");
        return false;
    }
    if (r->kind == DELIVER_ROUTE_LOCAL) {
        deliver_agent_set_outcome(rc, OUTCOME_DOMAIN_NOW_LOCAL, "domain is local now");
        return false;
    }
    snprintf(proto->dest, sizeof proto->dest, "%s", r->destination);
    if (r->kind == DELIVER_ROUTE_LMTP) {
        /* a local mailbox server on a socket or a trusted network: no STARTTLS, no AUTH */
        proto->port = r->lmtp->port;
        proto->copts = (struct smtp_client_opts){.helo_name = a->o.cfg->hostname, .lmtp = true,
                                                 .tls = SMTP_CLIENT_TLS_NONE};
        return true;
    }
    proto->port = r->hop ? r->hop->port : 25;
    enum policy_tls tls = r->hop ? r->hop->tls : POLICY_TLS_OPPORTUNISTIC;
    proto->verify = tls == POLICY_TLS_REQUIRED_VERIFY;
    proto->copts = (struct smtp_client_opts){.helo_name = a->o.cfg->hostname,
                                             .tls = client_tls(tls)};
    if (r->kind == DELIVER_ROUTE_RELAYHOST && a->o.cfg->relayhost.auth) {
        proto->copts.auth_user = a->o.cfg->relayhost.auth_user;
        proto->copts.auth_pass = a->o.cfg->relayhost.auth_password;
    }
    return true;
}

static struct delivery *delivery_for(struct attempt *at, const struct delivery *proto)
{
    for (struct delivery *d = at->dl; d != NULL; d = d->next)
        if (strcmp(d->dest, proto->dest) == 0)
            return d;
    struct delivery *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    *d = *proto;
    d->at = at;
    d->crcpts = calloc(at->n_rc, sizeof *d->crcpts);
    d->map = calloc(at->n_rc, sizeof *d->map);
    if (!d->crcpts || !d->map) {
        free(d->crcpts);
        free(d->map);
        free(d);
        return NULL;
    }
    d->next = at->dl;
    at->dl = d;
    return d;
}

bool deliver_agent_group(struct attempt *at)
{
    struct deliver_agent *a = at->job->a;
    for (size_t i = 0; i < at->n_rc; i++) {
        struct rcpt_out *rc = &at->rc[i];
        const struct store_rcpt *r = &at->m.qf.env.rcpts[rc->idx];
        struct delivery proto;
        memset(&proto, 0, sizeof proto);
        if (!route_rcpt(a, r->address, &proto, rc))
            continue;
        struct delivery *d = delivery_for(at, &proto);
        if (d == NULL)
            return false;
        d->crcpts[d->n] = (struct smtp_client_rcpt){.address = r->address, .notify = r->notify,
                                                    .orcpt = r->orcpt};
        d->map[d->n++] = i;
    }
    return true;
}

void deliver_agent_delivery_free(struct delivery *d)
{
    deliver_agent_unwait(d->at->job->a, d);
    deliver_agent_dest_release(d); /* an attempt dropped mid-way (delete, shutdown) */
    if (d->wake)
        event_free(d->wake);
    if (d->lookup)
        deliver_resolver_cancel(d->lookup);
    if (d->pacing)
        policy_counters_cancel(d->pacing);
    if (d->wait)
        event_free(d->wait);
    deliver_outbound_free(d->out);
    free(d->crcpts);
    free(d->map);
    free(d);
}

/* ---- the end of a delivery without a connection ---- */

/* Every recipient of d without an outcome gets o. */
static void defer_all(struct delivery *d, enum reply_outcome o, const char *why)
{
    struct rcpt_out **rcs = d->at->list;
    for (size_t i = 0; i < d->n; i++) {
        rcs[i] = &d->at->rc[d->map[i]];
        if (rcs[i]->st == STORE_RCPT_PENDING)
            deliver_agent_set_outcome(rcs[i], o, why);
    }
}

/* ---- resolution ---- */

static void connect_current(struct delivery *d);

/* MX for a recipient domain and for a hop written without brackets (as Postfix). */
static bool mx_lookup(const struct deliver_route *r)
{
    return r->kind == DELIVER_ROUTE_MX || (r->hop && r->hop->mx_lookup);
}

/* The resolver's answer as up to AGENT_ADDRS_PER_ATTEMPT candidates, host by host. */
static void take_candidates(struct delivery *d, const struct deliver_mx_result *res)
{
    d->n_cand = 0;
    for (size_t h = 0; h < res->n_hosts && d->n_cand < AGENT_ADDRS_PER_ATTEMPT; h++) {
        const struct deliver_mx_host *host = &res->hosts[h];
        for (size_t i = 0; i < host->n_addrs && d->n_cand < AGENT_ADDRS_PER_ATTEMPT; i++) {
            struct candidate *c = &d->cand[d->n_cand++];
            snprintf(c->host, sizeof c->host, "%s", host->name);
            to_sockaddr(&host->addrs[i], d->port, &c->ss, &c->sslen);
        }
    }
}

/* A next hop that does not resolve is the configuration's problem, not the recipient's: it
 * defers (4.4.3) where a recipient domain's own NXDOMAIN or null MX bounces. */
static void resolved(void *ctx, const struct deliver_mx_result *res)
{
    struct delivery *d = ctx;
    d->lookup = NULL;
    if (res->outcome == DELIVER_DNS_OK && res->n_hosts > 0) {
        take_candidates(d, res);
        connect_current(d);
        return;
    }
    enum reply_outcome o = res->row;
    if (d->route.kind != DELIVER_ROUTE_MX && reply_outcome_get(o)->use == REPLY_USE_BOUNCE)
        o = OUTCOME_ROUTE_TEMPFAIL;
    char why[AGENT_DIAG_MAX];
    snprintf(why, sizeof why, "%s: %s", deliver_dns_outcome_text(res->outcome), res->detail);
    defer_all(d, o, why);
    deliver_agent_delivery_done(d);
}

/* Starts the look-up the route needs; false with the outcomes set when it cannot start. */
static bool resolve(struct delivery *d)
{
    struct deliver_agent *a = d->at->job->a;
    const struct deliver_route *r = &d->route;
    bool mx = mx_lookup(r);
    if (a->resolver == NULL) {
        defer_all(d, OUTCOME_ROUTE_TEMPFAIL, "no DNS resolver: see the start-up log");
        return false;
    }
    enum deliver_resolver_err e =
        mx ? deliver_resolver_lookup_mx(a->resolver, r->lookup, deliver_agent_random(a), resolved,
                                        d, &d->lookup)
           : deliver_resolver_lookup_host(a->resolver, r->lookup, resolved, d, &d->lookup);
    if (e == DELIVER_RESOLVER_OK)
        return true;
    char why[AGENT_DIAG_MAX];
    snprintf(why, sizeof why, "cannot look up %s: %s", r->lookup, deliver_resolver_strerror(e));
    defer_all(d, e == DELIVER_RESOLVER_ERR_NAME ? OUTCOME_BAD_DOMAIN : OUTCOME_ROUTE_TEMPFAIL,
              why);
    return false;
}

/* ---- starting ---- */

enum acquired { ACQUIRED, REUSED, WAITING, REFUSED };

/* Takes one of the destination's connections: an idle one (REUSED: d's message is on its way
 * already), else a new one within its concurrency and the global cap (agent_slots.c). While
 * it backs off the recipients defer; when only a limit stops us, d waits for a connection to
 * be free, if the destination's share of the waiters has room (else the job is postponed). */
static enum acquired acquire(struct delivery *d)
{
    struct attempt *at = d->at;
    struct deliver_agent *a = at->job->a;
    int64_t now = deliver_agent_now();
    struct deliver_destination *dst = NULL;
    if (deliver_destination_table_get(a->dests, d->dest, now, &dst) != DELIVER_DESTINATION_OK) {
        defer_all(d, OUTCOME_NO_CONNECTION, "out of memory");
        return REFUSED;
    }
    if (deliver_agent_take_idle(d))
        return REUSED;
    enum deliver_agent_slot slot = deliver_agent_slot_take(a, dst, now);
    d->acquired = slot == AGENT_SLOT_TAKEN;
    if (d->acquired)
        return ACQUIRED;
    char why[AGENT_DIAG_MAX];
    if (dst->backoff_until > now) {
        snprintf(why, sizeof why, "destination %s backing off%s%s", d->dest,
                 dst->why[0] ? ": " : "", dst->why);
        if (dst->backoff_until > at->not_before)
            at->not_before = dst->backoff_until;
    } else if (!deliver_agent_may_wait(a, dst)) {
        if (!at->postponed) /* no outcome: the job waits for room (agent.c) */
            snprintf(at->postponed_on, sizeof at->postponed_on, "%s", d->dest);
        at->postponed = true;
        return REFUSED;
    } else if (deliver_agent_wait_for_connection(d, dst, slot == AGENT_SLOT_GLOBAL_FULL)) {
        return WAITING;
    } else {
        snprintf(why, sizeof why, "destination %s busy and out of memory", d->dest);
    }
    defer_all(d, dst->backoff_until > now ? OUTCOME_DESTINATION_BACKING_OFF : OUTCOME_NO_CONNECTION,
              why);
    return REFUSED;
}

void deliver_agent_delivery_start(struct delivery *d)
{
    d->at->running++;
    deliver_agent_pace(d); /* before a connection is taken: waiting must not hold one */
}

void deliver_agent_delivery_go(struct delivery *d)
{
    switch (acquire(d)) {
    case ACQUIRED:
        break;
    case REUSED:
        return;
    case WAITING:
        deliver_agent_check_schedules(d->at->job->a);
        return;
    case REFUSED:
        deliver_agent_delivery_done(d);
        return;
    }
    const struct deliver_route *r = &d->route;
    if (r->kind == DELIVER_ROUTE_LMTP && r->lmtp->socket[0] != '\0') {
        unix_candidate(&d->cand[0], r->lmtp->socket);
        d->n_cand = 1;
        connect_current(d);
        return;
    }
    const char *host = r->kind == DELIVER_ROUTE_LITERAL ? r->lookup
                       : r->kind == DELIVER_ROUTE_LMTP  ? r->lmtp->host
                       : r->hop                         ? r->hop->host
                                                        : "";
    if (!mx_lookup(r) && numeric_address(host, d->port, &d->cand[0].ss, &d->cand[0].sslen)) {
        snprintf(d->cand[0].host, sizeof d->cand[0].host, "%s", host);
        d->n_cand = 1;
        connect_current(d);
        return;
    }
    if (!resolve(d))
        deliver_agent_delivery_done(d);
}

static void set_relay(struct delivery *d, const struct candidate *c)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&c->ss;
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&c->ss;
    if (c->ss.ss_family == AF_UNIX) {
        snprintf(d->relay, sizeof d->relay, "unix:%s", c->host);
        snprintf(d->host, sizeof d->host, "%s", d->at->job->a->o.cfg->hostname);
        return;
    }
    if (c->ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof ip);
    else
        inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof ip);
    snprintf(d->relay, sizeof d->relay, "%s[%s]:%u", c->host, ip, d->port);
    snprintf(d->host, sizeof d->host, "%s", c->host);
}

void deliver_agent_delivery_prepare(struct delivery *d)
{
    struct attempt *at = d->at;
    const struct store_envelope *env = &at->m.qf.env;
    for (size_t i = 0; i < d->n; i++)
        at->rc[d->map[i]].relay = d->relay;
    d->first = 0;
    d->msg = (struct smtp_client_message){
        .sender = env->sender, .rcpts = d->crcpts, .n_rcpts = d->n,
        .eightbit = env->body == STORE_BODY_8BITMIME, .smtputf8 = env->smtputf8,
        .ret = env->ret, .envid = env->envid, .body = at->m.body, .body_len = at->m.body_len};
}

static void connect_current(struct delivery *d)
{
    struct attempt *at = d->at;
    struct deliver_agent *a = at->job->a;
    const struct candidate *c = &d->cand[d->cur];
    set_relay(d, c);
    d->ready = false;
    d->next_candidate = false;
    deliver_agent_delivery_prepare(d);
    struct deliver_outbound_cfg oc = {
        .base = a->o.base, .tls = d->verify ? a->tls_verify : a->tls, .host = c->host,
        .connect_timeout_s = a->o.connect_timeout_s ? a->o.connect_timeout_s : 30,
        .command_timeout_s = a->o.command_timeout_s ? a->o.command_timeout_s : 300,
        .data_timeout_s = a->o.data_timeout_s ? a->o.data_timeout_s : 600};
    char why[AGENT_DIAG_MAX];
    d->out = deliver_outbound_open(&oc, (struct sockaddr *)&c->ss, c->sslen, &d->copts,
                                   &deliver_agent_client_cb, deliver_agent_delivery_finished, d,
                                   why, sizeof why);
    if (d->out != NULL)
        return;
    if (d->cur + 1 < d->n_cand) { /* no socket for this address: the next may do */
        d->cur++;
        connect_current(d);
        return;
    }
    defer_all(d, OUTCOME_NO_CONNECTION, why);
    deliver_agent_delivery_done(d);
}

bool deliver_agent_delivery_next(struct delivery *d)
{
    if (d->cur + 1 >= d->n_cand)
        return false;
    d->cur++;
    connect_current(d);
    return true;
}

void deliver_agent_delivery_reconnect(struct delivery *d)
{
    d->reused = false;
    connect_current(d);
}
