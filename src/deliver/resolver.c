/* deliver/resolver.c — c-ares on the libevent loop: MX look-ups, A/AAAA of each MX host, the
 * implicit MX and null MX, failures classified for delivery; records as text for mail
 * authentication. RFC 5321 §5.1, RFC 7505. */
#include "deliver/resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/array.h"

/* A socket c-ares asked us to watch. */
struct watch {
    ares_socket_t fd;
    struct event *ev;
};

struct deliver_resolver {
    struct event_base *base;
    ares_channel channel;
    struct event *timer; /* c-ares' next timeout (ares_timeout) */
    struct watch *watches;
    size_t n_watches, cap_watches;
    struct deliver_lookup *lookups; /* every look-up not yet released */
    bool destroying;     /* ares_destroy runs: callbacks only release memory */
};

/* Where an address look-up stores its answer. */
struct host_query {
    struct deliver_lookup *l;
    size_t index;
};

struct deliver_lookup {
    struct deliver_resolver *r;
    struct deliver_lookup *prev, *next; /* r->lookups */
    deliver_resolver_cb *cb;
    void *ctx;
    uint64_t random;
    bool cancelled;
    bool tempfail;      /* an address look-up failed for the moment */
    bool host_only;     /* lookup_host: the one host's NXDOMAIN is the outcome */
    bool nxdomain;      /* host_only and it does not exist */
    unsigned pending;   /* c-ares requests not yet called back */
    struct event *done; /* delivers the result from the loop, never from inside c-ares */
    struct host_query queries[DELIVER_ROUTE_HOSTS_MAX];
    struct deliver_mx_result res;
    deliver_resolver_records_cb *rec_cb; /* lookup_records: res.hosts[0] holds the name */
    int rec_type;
    struct deliver_records rec;
};

const char *deliver_resolver_strerror(enum deliver_resolver_err err)
{
    switch (err) {
#define X(name, text) case name: return text;
        DELIVER_RESOLVER_ERRORS(X)
#undef X
    }
    return "unknown resolver error";
}

static void release(struct deliver_lookup *l);

/* ---- the event loop side ---- */

static void arm_timer(struct deliver_resolver *r)
{
    struct timeval tv, *next = ares_timeout(r->channel, NULL, &tv);
    if (next == NULL)
        evtimer_del(r->timer);
    else
        evtimer_add(r->timer, next);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct deliver_resolver *r = arg;
    (void)fd;
    (void)what;
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    arm_timer(r);
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    struct deliver_resolver *r = arg;
    ares_process_fd(r->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    arm_timer(r);
}

static struct watch *find_watch(struct deliver_resolver *r, ares_socket_t fd)
{
    for (size_t i = 0; i < r->n_watches; i++)
        if (r->watches[i].fd == fd)
            return &r->watches[i];
    return NULL;
}

/* c-ares says which of its sockets to watch for what; a failure to watch one surfaces as that
 * query's timeout, so nothing is lost. */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct deliver_resolver *r = data;
    struct watch *w = find_watch(r, fd);
    if (w != NULL) {
        event_free(w->ev);
        *w = r->watches[--r->n_watches];
    }
    if ((!readable && !writable) || r->destroying)
        return;
    if (base_array_reserve((void **)&r->watches, &r->cap_watches, r->n_watches + 1,
                           sizeof *r->watches, 4) != BASE_OK)
        return;
    short what = (short)(EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    struct event *ev = event_new(r->base, fd, what, on_socket, r);
    if (ev == NULL || event_add(ev, NULL) != 0) {
        if (ev != NULL)
            event_free(ev);
        return;
    }
    r->watches[r->n_watches++] = (struct watch){fd, ev};
}

struct deliver_resolver *deliver_resolver_new(struct event_base *base, const char *server,
                                              unsigned timeout_ms, char *err, size_t errcap)
{
    struct ares_options opt = {0};
    int rc = ares_library_init(ARES_LIB_INIT_ALL); /* counted: one per resolver */
    if (rc != ARES_SUCCESS) {
        snprintf(err, errcap, "DNS resolver: %s", ares_strerror(rc));
        return NULL;
    }
    struct deliver_resolver *r = calloc(1, sizeof *r);
    rc = ARES_ENOMEM;
    if (r == NULL)
        goto fail;
    r->base = base;
    r->timer = evtimer_new(base, on_timer, r);
    if (r->timer == NULL)
        goto fail;
    opt.sock_state_cb = sock_state;
    opt.sock_state_cb_data = r;
    opt.timeout = timeout_ms != 0 ? (int)timeout_ms : 3000;
    opt.tries = 2;
    opt.flags = ARES_FLAG_NOSEARCH;
    opt.lookups = (char *)"b"; /* DNS only: /etc/hosts knows no MX */
    rc = ares_init_options(&r->channel, &opt,
                           ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                               ARES_OPT_FLAGS | ARES_OPT_LOOKUPS);
    if (rc != ARES_SUCCESS)
        goto fail;
    if (server != NULL && server[0] != '\0' &&
        (rc = ares_set_servers_ports_csv(r->channel, server)) != ARES_SUCCESS) {
        ares_destroy(r->channel);
        goto fail;
    }
    return r;
fail:
    snprintf(err, errcap, "DNS resolver%s%s: %s", server != NULL && server[0] ? " " : "",
             server != NULL ? server : "", ares_strerror(rc));
    if (r != NULL && r->timer != NULL)
        event_free(r->timer);
    free(r);
    ares_library_cleanup();
    return NULL;
}

void deliver_resolver_free(struct deliver_resolver *r)
{
    if (r == NULL)
        return;
    r->destroying = true;
    ares_destroy(r->channel); /* calls back every request with ARES_EDESTRUCTION */
    while (r->lookups != NULL)
        release(r->lookups); /* those waiting for their done event */
    for (size_t i = 0; i < r->n_watches; i++)
        event_free(r->watches[i].ev);
    free(r->watches);
    event_free(r->timer);
    free(r);
    ares_library_cleanup();
}

/* ---- look-ups ---- */

static void release(struct deliver_lookup *l)
{
    if (l->prev != NULL)
        l->prev->next = l->next;
    else
        l->r->lookups = l->next;
    if (l->next != NULL)
        l->next->prev = l->prev;
    event_free(l->done);
    for (size_t i = 0; i < l->rec.n; i++)
        free((char *)l->rec.records[i]);
    free(l);
}

/* A c-ares callback whose look-up no longer wants answers; true when it handled it. */
static bool abandoned(struct deliver_lookup *l)
{
    if (!l->cancelled && !l->r->destroying)
        return false;
    if (l->pending == 0)
        release(l);
    return true;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    struct deliver_lookup *l = arg;
    (void)fd;
    (void)what;
    if (l->rec_cb != NULL)
        l->rec_cb(l->ctx, &l->rec);
    else
        l->cb(l->ctx, &l->res);
    release(l);
}

static void finish(struct deliver_lookup *l, enum deliver_dns_outcome outcome)
{
    static const struct timeval now = {0, 0};
    l->res.outcome = outcome;
    l->res.row = deliver_dns_outcome_row(outcome);
    if (outcome != DELIVER_DNS_OK)
        l->res.n_hosts = 0;
    evtimer_add(l->done, &now);
}

__attribute__((format(printf, 2, 3))) static void note(struct deliver_lookup *l, const char *fmt,
                                                       ...);

/* Outcome of a failed query: NXDOMAIN and "no such record" are answers; the rest is for now. */
static enum deliver_dns_outcome failed_query(int status)
{
    switch (status) {
    case ARES_ENOTFOUND: return DELIVER_DNS_NXDOMAIN;
    case ARES_ENODATA: return DELIVER_DNS_NO_HOST;
    default: return DELIVER_DNS_TEMPFAIL;
    }
}

static void copy_addrs(struct deliver_mx_host *h, const struct ares_addrinfo *ai)
{
    for (const struct ares_addrinfo_node *n = ai->nodes; n != NULL; n = n->ai_next) {
        if (h->n_addrs == DELIVER_ROUTE_ADDRS_MAX)
            return;
        struct deliver_addr *a = &h->addrs[h->n_addrs];
        if (n->ai_family == AF_INET && n->ai_addrlen >= sizeof(struct sockaddr_in)) {
            memcpy(a->bytes, &((const struct sockaddr_in *)(const void *)n->ai_addr)->sin_addr, 4);
        } else if (n->ai_family == AF_INET6 && n->ai_addrlen >= sizeof(struct sockaddr_in6)) {
            memcpy(a->bytes, &((const struct sockaddr_in6 *)(const void *)n->ai_addr)->sin6_addr,
                   16);
        } else {
            continue;
        }
        a->family = n->ai_family;
        h->n_addrs++;
    }
}

/* All address look-ups are in: keep the hosts that have addresses, in order. */
static void finish_hosts(struct deliver_lookup *l)
{
    struct deliver_mx_result *res = &l->res;
    size_t kept = 0;
    for (size_t i = 0; i < res->n_hosts; i++)
        if (res->hosts[i].n_addrs > 0)
            res->hosts[kept++] = res->hosts[i];
    res->n_hosts = kept;
    if (kept > 0)
        finish(l, DELIVER_DNS_OK);
    else if (l->tempfail)
        finish(l, DELIVER_DNS_TEMPFAIL);
    else if (l->nxdomain)
        finish(l, DELIVER_DNS_NXDOMAIN);
    else
        finish(l, res->implicit_mx ? DELIVER_DNS_NO_HOST : DELIVER_DNS_MX_UNRESOLVED);
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    struct host_query *q = arg;
    struct deliver_lookup *l = q->l;
    (void)timeouts;
    l->pending--;
    if (!abandoned(l)) {
        struct deliver_mx_host *h = &l->res.hosts[q->index];
        if (status == ARES_SUCCESS && ai != NULL) {
            copy_addrs(h, ai);
        } else {
            enum deliver_dns_outcome o = failed_query(status);
            l->tempfail = l->tempfail || o == DELIVER_DNS_TEMPFAIL;
            l->nxdomain = l->host_only && o == DELIVER_DNS_NXDOMAIN;
            note(l, "A/AAAA %s: %s", h->name, ares_strerror(status));
        }
        if (l->pending == 0)
            finish_hosts(l);
    }
    if (ai != NULL)
        ares_freeaddrinfo(ai);
}

/* Starts the address look-ups of res.hosts[0..n_hosts). */
static void resolve_hosts(struct deliver_lookup *l)
{
    struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC, .ai_flags = ARES_AI_NOSORT};
    size_t n = l->res.n_hosts;
    l->pending += (unsigned)n; /* all counted first: a synchronous callback must not finish */
    for (size_t i = 0; i < n; i++) {
        char fqdn[LIMIT_DOMAIN + 2];
        unsigned char bin[16];
        const char *name = l->res.hosts[i].name;
        bool numeric = inet_pton(AF_INET, name, bin) == 1 || inet_pton(AF_INET6, name, bin) == 1;
        /* A trailing dot makes a name absolute (no search list); an address stays as is. */
        snprintf(fqdn, sizeof fqdn, "%s%s", name, numeric ? "" : ".");
        l->queries[i] = (struct host_query){l, i};
        ares_getaddrinfo(l->r->channel, fqdn, NULL, &hints, on_addrinfo, &l->queries[i]);
    }
}

static void add_host(struct deliver_lookup *l, const char *name, unsigned short preference)
{
    struct deliver_mx_host *h = &l->res.hosts[l->res.n_hosts++];
    memset(h, 0, sizeof *h);
    memcpy(h->name, name, strlen(name) + 1);
    h->preference = preference;
}

/* The MX records of an answer into an ordered host list; false when the answer is malformed
 * or memory ran out (reported as for now). */
static bool take_mx(struct deliver_lookup *l, struct ares_mx_reply *list)
{
    size_t n = 0, used = 0;
    for (const struct ares_mx_reply *m = list; m != NULL; m = m->next)
        n++;
    struct deliver_mx *recs = calloc(n, sizeof *recs);
    if (recs == NULL)
        return false;
    for (const struct ares_mx_reply *m = list; m != NULL; m = m->next) {
        size_t len = strlen(m->host);
        if (len >= sizeof recs[0].host)
            continue; /* no host name is that long: skip the record, not the domain */
        memcpy(recs[used].host, m->host, len + 1);
        recs[used++].preference = m->priority;
    }
    if (deliver_route_is_null_mx(recs, used)) {
        free(recs);
        finish(l, DELIVER_DNS_NULL_MX);
        note(l, "MX: null MX (RFC 7505)");
        return true;
    }
    deliver_route_order_mx(recs, used, l->random);
    for (size_t i = 0; i < used && l->res.n_hosts < DELIVER_ROUTE_HOSTS_MAX; i++)
        if (recs[i].host[0] != '\0' && strcmp(recs[i].host, ".") != 0)
            add_host(l, recs[i].host, recs[i].preference); /* a stray "." among real MX */
    free(recs);
    if (l->res.n_hosts == 0) {
        finish(l, DELIVER_DNS_MX_UNRESOLVED);
        return true;
    }
    resolve_hosts(l);
    return true;
}

static void on_mx(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct deliver_lookup *l = arg;
    struct ares_mx_reply *mx = NULL;
    (void)timeouts;
    l->pending--;
    if (abandoned(l))
        return;
    if (status == ARES_SUCCESS)
        status = ares_parse_mx_reply(abuf, alen, &mx);
    if (status == ARES_SUCCESS && mx == NULL)
        status = ARES_ENODATA;
    if (status == ARES_SUCCESS) {
        if (!take_mx(l, mx)) {
            note(l, "MX %s: out of memory", l->res.hosts[0].name);
            finish(l, DELIVER_DNS_TEMPFAIL);
        }
    } else if (status == ARES_ENODATA) {
        l->res.implicit_mx = true; /* RFC 5321 §5.1: the domain is its own mail host */
        l->res.n_hosts = 1;
        resolve_hosts(l);
    } else {
        note(l, "MX %s: %s", l->res.hosts[0].name, ares_strerror(status));
        finish(l, failed_query(status));
    }
    if (mx != NULL)
        ares_free_data(mx);
}

static void note(struct deliver_lookup *l, const char *fmt, ...)
{
    if (l->res.detail[0] != '\0')
        return; /* the first failure is the one worth logging */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->res.detail, sizeof l->res.detail, fmt, ap);
    va_end(ap);
}

static enum deliver_resolver_err start_any(struct deliver_resolver *r, const char *name,
                                           deliver_resolver_cb *cb, void *ctx,
                                           struct deliver_lookup **out);

/* A lookup for name (its hosts[0] holds the name until the answer replaces it). */
static enum deliver_resolver_err start(struct deliver_resolver *r, const char *name,
                                       deliver_resolver_cb *cb, void *ctx,
                                       struct deliver_lookup **out)
{
    size_t len = strlen(name);
    if (len == 0 || len > LIMIT_DOMAIN || strpbrk(name, " \t\r\n\\") != NULL ||
        name[len - 1] == '.')
        return DELIVER_RESOLVER_ERR_NAME;
    return start_any(r, name, cb, ctx, out);
}

/* start() without the check of the name's characters, for names that are not host names
 * (an SPF macro may put spaces in one). */
static enum deliver_resolver_err start_any(struct deliver_resolver *r, const char *name,
                                           deliver_resolver_cb *cb, void *ctx,
                                           struct deliver_lookup **out)
{
    struct deliver_lookup *l = calloc(1, sizeof *l);
    if (l == NULL)
        return DELIVER_RESOLVER_ERR_NOMEM;
    l->done = evtimer_new(r->base, on_done, l);
    if (l->done == NULL) {
        free(l);
        return DELIVER_RESOLVER_ERR_NOMEM;
    }
    l->r = r;
    l->next = r->lookups;
    if (l->next != NULL)
        l->next->prev = l;
    r->lookups = l;
    l->cb = cb;
    l->ctx = ctx;
    add_host(l, name, 0);
    *out = l;
    return DELIVER_RESOLVER_OK;
}

enum deliver_resolver_err deliver_resolver_lookup_mx(struct deliver_resolver *r,
                                                     const char *domain, uint64_t random,
                                                     deliver_resolver_cb *cb, void *ctx,
                                                     struct deliver_lookup **out)
{
    struct deliver_lookup *l;
    enum deliver_resolver_err e = start(r, domain, cb, ctx, &l);
    if (e != DELIVER_RESOLVER_OK)
        return e;
    l->random = random;
    l->res.n_hosts = 0; /* hosts[0].name keeps the domain for an implicit MX */
    l->pending = 1;
    if (out != NULL)
        *out = l;
    ares_query(r->channel, domain, ns_c_in, ns_t_mx, on_mx, l);
    arm_timer(r);
    return DELIVER_RESOLVER_OK;
}

enum deliver_resolver_err deliver_resolver_lookup_host(struct deliver_resolver *r,
                                                       const char *host,
                                                       deliver_resolver_cb *cb, void *ctx,
                                                       struct deliver_lookup **out)
{
    struct deliver_lookup *l;
    enum deliver_resolver_err e = start(r, host, cb, ctx, &l);
    if (e != DELIVER_RESOLVER_OK)
        return e;
    l->res.implicit_mx = true; /* a host, not a domain's MX list: absence is NO_HOST */
    l->host_only = true;
    if (out != NULL)
        *out = l;
    resolve_hosts(l);
    arm_timer(r);
    return DELIVER_RESOLVER_OK;
}

/* One more record of text, cut at DELIVER_RECORD_LEN; false when out of memory. */
static bool add_record(struct deliver_records *t, const void *p, size_t n)
{
    if (t->n == DELIVER_RECORDS_MAX)
        return true; /* more than anyone needs: the rest is left out */
    char *cur = calloc(1, DELIVER_RECORD_LEN + 1);
    if (cur == NULL)
        return false;
    n = n < DELIVER_RECORD_LEN ? n : DELIVER_RECORD_LEN;
    memcpy(cur, p, n);
    t->records[t->n] = cur;
    t->lens[t->n++] = n;
    return true;
}

/* Each TXT record's strings joined. A record longer than DELIVER_RECORD_LEN makes the answer
 * malformed: cut, it would say something else (an SPF record without its "-all", an ip4: with
 * a digit less). */
static int take_txt(struct deliver_records *t, const unsigned char *abuf, int alen)
{
    struct ares_txt_ext *list = NULL;
    int status = ares_parse_txt_reply_ext(abuf, alen, &list);
    char *cur = NULL;
    size_t len = 0;
    for (const struct ares_txt_ext *x = list; status == ARES_SUCCESS && x != NULL; x = x->next) {
        if (x->record_start || cur == NULL) {
            if (t->n == DELIVER_RECORDS_MAX)
                break;
            if (!add_record(t, "", 0)) {
                status = ARES_ENOMEM;
                break;
            }
            cur = (char *)t->records[t->n - 1];
            len = 0;
        }
        if (x->length > DELIVER_RECORD_LEN - len) {
            status = ARES_EBADRESP;
            break;
        }
        memcpy(cur + len, x->txt, x->length);
        len += x->length;
        t->lens[t->n - 1] = len;
    }
    if (list != NULL)
        ares_free_data(list);
    return status;
}

static int take_addrs(struct deliver_records *t, int type, const unsigned char *abuf, int alen)
{
    struct ares_addrttl a4[DELIVER_RECORDS_MAX];
    struct ares_addr6ttl a6[DELIVER_RECORDS_MAX];
    int n = (int)DELIVER_RECORDS_MAX;
    int status = type == ns_t_a ? ares_parse_a_reply(abuf, alen, NULL, a4, &n)
                                : ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n);
    for (int i = 0; status == ARES_SUCCESS && i < n; i++) {
        char text[INET6_ADDRSTRLEN];
        const void *src = type == ns_t_a ? (const void *)&a4[i].ipaddr : (const void *)&a6[i].ip6addr;
        if (inet_ntop(type == ns_t_a ? AF_INET : AF_INET6, src, text, sizeof text) == NULL ||
            !add_record(t, text, strlen(text)))
            status = ARES_ENOMEM;
    }
    return status == ARES_SUCCESS && n == 0 ? ARES_ENODATA : status;
}

static int take_names(struct deliver_records *t, int type, const unsigned char *abuf, int alen)
{
    int status;
    if (type == ns_t_mx) {
        struct ares_mx_reply *mx = NULL;
        status = ares_parse_mx_reply(abuf, alen, &mx);
        for (struct ares_mx_reply *m = mx; status == ARES_SUCCESS && m != NULL; m = m->next) {
            char text[LIMIT_DOMAIN + 16];
            int n = snprintf(text, sizeof text, "%u %s", m->priority, m->host);
            if (n > 0 && (size_t)n < sizeof text && !add_record(t, text, (size_t)n))
                status = ARES_ENOMEM;
        }
        if (mx != NULL)
            ares_free_data(mx);
        return status == ARES_SUCCESS && t->n == 0 ? ARES_ENODATA : status;
    }
    struct hostent *h = NULL;
    status = ares_parse_ptr_reply(abuf, alen, NULL, 0, AF_INET, &h);
    if (status == ARES_SUCCESS && h != NULL) {
        if (h->h_name != NULL && !add_record(t, h->h_name, strlen(h->h_name)))
            status = ARES_ENOMEM;
        for (char **a = h->h_aliases; status == ARES_SUCCESS && a && *a; a++)
            if (!add_record(t, *a, strlen(*a)))
                status = ARES_ENOMEM;
    }
    if (h != NULL)
        ares_free_hostent(h);
    return status == ARES_SUCCESS && t->n == 0 ? ARES_ENODATA : status;
}

/* How long the answer may be kept (RFC 2181 §8, RFC 2308 §5): the smallest TTL of the answer
 * records; for no such name or record, the SOA's TTL bounded by its minimum field; 0 when the
 * answer says nothing (a failure, no SOA). ns_initparse checks every length. */
static uint32_t answer_ttl(const unsigned char *abuf, int alen, bool answered)
{
    ns_msg msg;
    ns_rr rr;
    if (abuf == NULL || alen <= 0 || ns_initparse(abuf, alen, &msg) < 0)
        return 0;
    ns_sect sect = answered ? ns_s_an : ns_s_ns;
    uint32_t ttl = UINT32_MAX;
    for (int i = 0; i < ns_msg_count(msg, sect) && ns_parserr(&msg, sect, i, &rr) == 0; i++) {
        uint32_t t = ns_rr_ttl(rr);
        if (!answered) {
            if (ns_rr_type(rr) != ns_t_soa || ns_rr_rdlen(rr) < 4)
                continue;
            uint32_t minimum = ns_get32(ns_rr_rdata(rr) + ns_rr_rdlen(rr) - 4);
            t = t < minimum ? t : minimum;
        }
        ttl = t < ttl ? t : ttl;
    }
    return ttl == UINT32_MAX ? 0 : ttl;
}

static void on_records(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct deliver_lookup *l = arg;
    (void)timeouts;
    l->pending--;
    if (abandoned(l))
        return;
    if (status == ARES_SUCCESS) {
        switch (l->rec_type) {
        case ns_t_txt: status = take_txt(&l->rec, abuf, alen); break;
        case ns_t_a:
        case ns_t_aaaa: status = take_addrs(&l->rec, l->rec_type, abuf, alen); break;
        default: status = take_names(&l->rec, l->rec_type, abuf, alen); break;
        }
    }
    if (status == ARES_SUCCESS && l->rec.n == 0)
        status = ARES_ENODATA;
    if (status != ARES_SUCCESS) {
        note(l, "%s: %s", l->res.hosts[0].name, ares_strerror(status));
        for (size_t i = 0; i < l->rec.n; i++)
            free((char *)l->rec.records[i]);
        l->rec.n = 0;
    }
    l->rec.outcome = status == ARES_SUCCESS ? DELIVER_DNS_OK : failed_query(status);
    l->rec.ttl = l->rec.outcome == DELIVER_DNS_TEMPFAIL
                     ? 0
                     : answer_ttl(abuf, alen, l->rec.outcome == DELIVER_DNS_OK);
    memcpy(l->rec.detail, l->res.detail, sizeof l->rec.detail);
    static const struct timeval now = {0, 0};
    evtimer_add(l->done, &now);
}

enum deliver_resolver_err deliver_resolver_lookup_records(struct deliver_resolver *r,
                                                          const char *name, int type,
                                                          deliver_resolver_records_cb *cb,
                                                          void *ctx,
                                                          struct deliver_lookup **out)
{
    if (type != ns_t_txt && type != ns_t_a && type != ns_t_aaaa && type != ns_t_mx &&
        type != ns_t_ptr)
        return DELIVER_RESOLVER_ERR_NAME;
    /* Any octet but control characters and the backslash (c-ares' escape) and '.' at the end;
     * a label over 63 octets is refused by c-ares itself (ARES_EBADNAME: TEMPFAIL). */
    size_t len = strlen(name);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f || name[i] == '\\')
            return DELIVER_RESOLVER_ERR_NAME;
    if (len == 0 || len > LIMIT_DOMAIN || name[len - 1] == '.')
        return DELIVER_RESOLVER_ERR_NAME;
    struct deliver_lookup *l;
    enum deliver_resolver_err e = start_any(r, name, NULL, ctx, &l);
    if (e != DELIVER_RESOLVER_OK)
        return e;
    l->rec_cb = cb;
    l->rec_type = type;
    l->pending = 1;
    if (out != NULL)
        *out = l;
    ares_query(r->channel, name, ns_c_in, type, on_records, l);
    arm_timer(r);
    return DELIVER_RESOLVER_OK;
}

void deliver_resolver_cancel(struct deliver_lookup *l)
{
    if (l == NULL)
        return;
    l->cancelled = true;
    if (l->pending == 0)
        release(l); /* only the done event was left: freeing it removes it from the loop */
}
