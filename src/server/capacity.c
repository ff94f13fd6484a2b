/* server/capacity.c — how many clients the server takes: the descriptor budget (the soft
 * RLIMIT_NOFILE raised to the hard one, a share kept for delivery and the store, the rest for
 * connections), the memory budget of the sessions (session_memory), admission at accept
 * (max_connections, per address), stress mode (shorter timeouts, fewer connections per
 * address, idle pre-EHLO clients make room) between its water marks, the inactivity timeouts
 * and the TLS handshakes per address. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/clock.h"
#include "net/log.h"
#include "server/ipcount.h"
#include "server/server.h"

/* Descriptors kept for what opens files after start: the pool of empty queue files (64), the
 * files of messages being delivered or read back, Maildir writes, DNS sockets, a Redis
 * connection, control clients, the log reopening. */
#define SPARE_DESCRIPTORS 64
/* The delivery agent's own share of the descriptors (outbound SMTP connections): an eighth of
 * the limit, at least this many, so that inbound clients can never starve it; more when
 * max_outbound_connections asks for more. Each outbound connection may hold a queue file open
 * beside its socket: two descriptors. */
#define DELIVERY_DESCRIPTORS_MIN 16
#define DELIVERY_DESCRIPTORS_SHARE 8
#define DESCRIPTORS_PER_OUTBOUND 2
/* Of the descriptors left for clients, this fraction goes to connections; the rest holds the
 * queue files of the messages they are sending (one each while DATA lasts). */
#define CONNECTIONS_SHARE_NUM 3
#define CONNECTIONS_SHARE_DEN 4
/* At the connection limit in stress mode, how many of the oldest connections are looked at for
 * one that is idle before EHLO: bounded work per accept. */
#define EVICT_SCAN 64

/* Raises the soft descriptor limit to the hard one: the default soft limit (often 1024) is far
 * below what a busy MX needs, and the hard limit is what the administrator allows. */
static rlim_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            net_log("capacity: descriptor limit raised from %llu to %llu",
                    (unsigned long long)was, (unsigned long long)rl.rlim_max);
        else if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
            return was;
    }
    return rl.rlim_cur == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_cur;
}

/* Descriptors open now (after every listener, the queue, threads and the control socket). */
static unsigned open_descriptors(unsigned fallback)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return fallback;
    unsigned n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL && n < UINT32_MAX)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* the directory's own descriptor */
}

/* The descriptors kept for delivery: the default share, or what max_outbound_connections
 * needs when that is more. */
static unsigned delivery_descriptors(unsigned long long nofile, unsigned configured)
{
    uint64_t limit = nofile > UINT32_MAX ? UINT32_MAX : (uint64_t)nofile;
    uint64_t share = limit / DELIVERY_DESCRIPTORS_SHARE;
    uint64_t wanted = (uint64_t)configured * DESCRIPTORS_PER_OUTBOUND;
    if (share < DELIVERY_DESCRIPTORS_MIN)
        share = DELIVERY_DESCRIPTORS_MIN;
    if (wanted > share)
        share = wanted;
    return share > UINT32_MAX ? UINT32_MAX : (unsigned)share;
}

unsigned server_capacity_outbound(unsigned long long nofile, unsigned configured)
{
    if (configured > 0)
        return configured;
    return delivery_descriptors(nofile, 0) / DESCRIPTORS_PER_OUTBOUND;
}

/* The connections the descriptors allow, from the limit and what is open already. */
static unsigned descriptor_connections(rlim_t nofile, unsigned in_use, unsigned configured,
                                       unsigned *delivery)
{
    uint64_t limit = nofile > UINT32_MAX ? UINT32_MAX : (uint64_t)nofile;
    *delivery = delivery_descriptors(nofile, configured);
    uint64_t kept = (uint64_t)in_use + *delivery + SPARE_DESCRIPTORS + 1; /* + the spare one */
    if (limit <= kept)
        return 0;
    return (unsigned)((limit - kept) * CONNECTIONS_SHARE_NUM / CONNECTIONS_SHARE_DEN);
}

/* The water marks as connection counts, from the percentages of the configuration. */
static void stress_marks(struct server *srv)
{
    const struct policy_stress_config *st = &srv->cfg->stress;
    struct server_capacity *cap = &srv->cap;
    uint64_t max = cap->max_conns;
    cap->stress_high = (unsigned)((max * st->high + 99) / 100);
    cap->stress_low = (unsigned)(max * st->low / 100);
    if (cap->stress_high == 0)
        cap->stress_high = 1;
}

void server_capacity_prepare(struct server *srv)
{
    srv->cap.spare_fd = -1;
    srv->cap.nofile = raise_nofile();
}

bool server_capacity_open(struct server *srv)
{
    struct server_capacity *cap = &srv->cap;
    const struct policy_config *cfg = srv->cfg;
    unsigned in_use = open_descriptors(64), delivery;
    cap->fit = descriptor_connections(cap->nofile, in_use, cfg->max_outbound_connections,
                                      &delivery);
    cap->outbound_reserve = delivery / DESCRIPTORS_PER_OUTBOUND;
#ifdef CLEARMTA_TESTING
    /* Tests of the exhaustion path itself: accept until accept(2) fails. */
    const char *budget = getenv("CLEARMTA_TEST_DESCRIPTOR_BUDGET");
    if (budget && strcmp(budget, "off") == 0)
        cap->fit = POLICY_CONNECTIONS_MAX;
#endif
    if (cap->fit == 0)
        net_log("warning: capacity: the descriptor limit %llu leaves no room for clients (%u "
                "open, %u kept for delivery, %u for the store); raise LimitNOFILE or ulimit -n",
                (unsigned long long)cap->nofile, in_use, delivery, SPARE_DESCRIPTORS);
    server_capacity_configure(srv);
    net_log("capacity: %llu descriptors (%u open, %u for delivery, %u for the store): "
            "max_connections %u%s, max_outbound_connections %u",
            (unsigned long long)cap->nofile, in_use, delivery, SPARE_DESCRIPTORS, cap->max_conns,
            cap->max_conns < cfg->max_connections ? " (lowered to fit the descriptors)" : "",
            deliver_agent_max_connections(srv->agent));
    cap->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return cap->stress_timeout && cap->handshake_timeout &&
           (cap->tls_rate || cfg->tls_handshakes_per_second == 0) && cap->spare_fd >= 0;
}

/* The stress and handshake timeouts of the configuration in force. libevent gives the same
 * queue back for a duration it knows; should it refuse a new one (it keeps 256), the running
 * value stays and the log says so. Timers set already keep the duration they were set with. */
static void configure_timeouts(struct server *srv)
{
    struct server_capacity *cap = &srv->cap;
    struct timeval stress = {.tv_sec = srv->cfg->stress.timeout};
    struct timeval handshake = {.tv_sec = srv->cfg->tls_handshake_timeout};
    const struct timeval *s = event_base_init_common_timeout(srv->base, &stress);
    const struct timeval *h = event_base_init_common_timeout(srv->base, &handshake);
    if (s)
        cap->stress_timeout = s;
    if (h)
        cap->handshake_timeout = h;
    if ((!s || !h) && cap->stress_timeout && cap->handshake_timeout)
        net_log("warning: capacity: too many different timeouts; the stress and TLS handshake "
                "timeouts stay as they were until a restart");
}

/* The TLS handshakes allowed per address and second: a new count when the figure changes (the
 * handshakes of the current second are forgotten then), none when it is 0. */
static void configure_tls_rate(struct server *srv)
{
    struct server_capacity *cap = &srv->cap;
    unsigned rate = srv->cfg->tls_handshakes_per_second;
    if (cap->tls_rate && rate == cap->tls_rate_per_second)
        return;
    struct policy_authlimit *fresh = rate > 0 ? policy_authlimit_new(rate, 1000, 0) : NULL;
    if (rate > 0 && !fresh) {
        net_log("warning: capacity: out of memory; tls_handshakes_per_second stays %u",
                cap->tls_rate_per_second);
        return;
    }
    policy_authlimit_free(cap->tls_rate);
    cap->tls_rate = fresh;
    cap->tls_rate_per_second = rate;
}

void server_capacity_configure(struct server *srv)
{
    struct server_capacity *cap = &srv->cap;
    cap->max_conns = srv->cfg->max_connections < cap->fit ? srv->cfg->max_connections : cap->fit;
    if (cap->max_conns == 0)
        cap->max_conns = 1;
    stress_marks(srv);
    configure_timeouts(srv);
    configure_tls_rate(srv);
    /* The agent's cap, within the share kept for it at start (a reload cannot widen that). */
    unsigned outbound = server_capacity_outbound(cap->nofile, srv->cfg->max_outbound_connections);
    if (outbound > cap->outbound_reserve) {
        net_log("warning: capacity: max_outbound_connections %u is above the %u the descriptors "
                "kept at start allow: %u until a restart", outbound, cap->outbound_reserve,
                cap->outbound_reserve);
        outbound = cap->outbound_reserve;
    }
    if (srv->agent != NULL)
        deliver_agent_set_max_connections(srv->agent, outbound);
}

void server_capacity_close(struct server *srv)
{
    policy_authlimit_free(srv->cap.tls_rate);
    srv->cap.tls_rate = NULL;
    if (srv->cap.spare_fd >= 0)
        close(srv->cap.spare_fd);
    srv->cap.spare_fd = -1;
}

/* ---- the memory budget ---- */

/* OpenSSL's read and write record buffers while a TLS connection is busy (it gives them back
 * when idle: SSL_MODE_RELEASE_BUFFERS). */
#define TLS_MEMORY (34u * 1024)
/* A message being received: the store's write buffer (store/queue.c) and its bookkeeping. */
#define MESSAGE_MEMORY (68u * 1024)
/* A new connection before it has read anything: the conn, its session, a first buffer. */
#define CONNECTION_MEMORY (sizeof(struct server_conn) + 8u * 1024)

static uint64_t conn_memory(const struct server_conn *c)
{
    uint64_t n = sizeof *c + smtp_server_memory(c->session) + c->msg_held.cap;
    if (c->io.ssl)
        n += TLS_MEMORY;
    if (c->msg)
        n += MESSAGE_MEMORY;
    return n;
}

/* Whether `more` bytes fit under session_memory now; logs the first refusal of an episode. */
static bool memory_fits(struct server *srv, uint64_t more, const char *what)
{
    struct server_capacity *cap = &srv->cap;
    if (cap->memory + more <= srv->cfg->session_memory)
        return true;
    if (!cap->memory_full)
        net_log("capacity: session_memory %llu reached (%llu in use): refusing new %s",
                (unsigned long long)srv->cfg->session_memory,
                (unsigned long long)cap->memory, what);
    cap->memory_full = true;
    return false;
}

/* ---- admission, stress, timeouts ---- */

/* In stress at the connection limit: the oldest connection idle before EHLO (or still in its
 * TLS handshake) gives its place to the new client. True when one went. */
static bool evict_idle(struct server *srv)
{
    struct server_conn *c = srv->conns_tail;
    for (int i = 0; c && i < EVICT_SCAN; i++, c = c->prev) {
        if (c->dead || c->committing || c->admitting)
            continue;
        if (c->handshaking) {
            net_log("stress: [%s] closed in its TLS handshake to make room", c->addr);
            server_conn_close(c);
            return true;
        }
        if (!c->greeted || smtp_server_closing(c->session) ||
            smtp_server_pending(c->session) || smtp_server_helo(c->session)[0] != '\0')
            continue;
        net_log("stress: [%s] idle before EHLO, closed to make room", c->addr);
        smtp_server_refuse(c->session, REPLY_STRESS_IDLE);
        server_conn_update(c);
        return true;
    }
    return false;
}

enum reply_id server_capacity_admit(struct server *srv, const char *addr)
{
    const struct policy_config *cfg = srv->cfg;
    struct server_capacity *cap = &srv->cap;
    if (srv->n_conns >= cap->max_conns && !(cap->stress && evict_idle(srv) &&
                                            srv->n_conns < cap->max_conns))
        return REPLY_TOO_MANY_CONNECTIONS;
    if (!memory_fits(srv, CONNECTION_MEMORY, "connections (421 4.3.2)"))
        return REPLY_TOO_MANY_CONNECTIONS;
    unsigned per_ip = cfg->max_connections_per_ip;
    if (cap->stress && cfg->stress.per_ip < per_ip)
        per_ip = cfg->stress.per_ip;
    if (!server_ipcount_add(srv->per_ip, addr, per_ip))
        return REPLY_TOO_MANY_CONNECTIONS_IP;
    return REPLY_OK;
}

void server_capacity_count(struct server *srv)
{
    struct server_capacity *cap = &srv->cap;
    bool was = cap->stress;
    if (!cap->stress && srv->cfg->stress.on && srv->n_conns >= cap->stress_high) {
        cap->stress = true;
        net_log("stress: begins at %u connections (high water %u%% of %u): timeout %u s, %u "
                "connections per address, idle clients before EHLO make room", srv->n_conns,
                srv->cfg->stress.high, cap->max_conns, srv->cfg->stress.timeout,
                srv->cfg->stress.per_ip);
    } else if (cap->stress && srv->n_conns <= cap->stress_low) {
        cap->stress = false;
        net_log("stress: ends at %u connections (low water %u%% of %u)", srv->n_conns,
                srv->cfg->stress.low, cap->max_conns);
    }
    if (cap->stress == was)
        return;
    for (struct server_conn *c = srv->conns; c; c = c->next)
        server_conn_rearm(c); /* the timeouts of the new mode */
}

const struct timeval *server_capacity_timeout(const struct server *srv, enum server_wait w)
{
    /* libevent's common timeouts keep their seconds in tv_sec (the queue is coded in tv_usec) */
    const struct timeval *tv = w == SERVER_WAIT_DATA ? srv->data_timeout : srv->command_timeout;
    if (w == SERVER_WAIT_HANDSHAKE && srv->cap.handshake_timeout->tv_sec < tv->tv_sec)
        tv = srv->cap.handshake_timeout;
    if (srv->cap.stress && srv->cap.stress_timeout->tv_sec < tv->tv_sec)
        return srv->cap.stress_timeout;
    return tv;
}

bool server_capacity_tls_allowed(struct server *srv, const char *addr)
{
    uint64_t now = base_clock_mono_ms();
    if (!srv->cap.tls_rate)
        return true; /* tls_handshakes_per_second 0: unlimited */
    if (policy_authlimit_blocked(srv->cap.tls_rate, addr, now))
        return false;
    policy_authlimit_failed(srv->cap.tls_rate, addr, now); /* counts the handshake */
    return true;
}

void server_capacity_memory(struct server_conn *c)
{
    struct server_capacity *cap = &c->srv->cap;
    uint64_t now = c->dead ? 0 : conn_memory(c);
    cap->memory = cap->memory - c->memory + now;
    c->memory = (size_t)now;
    if (cap->memory_full && cap->memory + MESSAGE_MEMORY <= c->srv->cfg->session_memory) {
        cap->memory_full = false;
        net_log("capacity: memory back under session_memory (%llu in use)",
                (unsigned long long)cap->memory);
    }
}

static enum smtp_verdict data_begin(void *ctx, const struct smtp_envelope *env,
                                    struct smtp_decision *d)
{
    struct server_conn *c = ctx;
    if (!memory_fits(c->srv, MESSAGE_MEMORY, "messages (452 4.3.1)")) {
        d->reply = REPLY_MEMORY_FULL;
        return SMTP_DECIDED;
    }
    return c->srv->cap.data_begin(ctx, env, d);
}

void server_capacity_callbacks(struct server *srv)
{
    srv->cap.data_begin = srv->callbacks.data_begin;
    srv->callbacks.data_begin = data_begin;
}
