/* server/server.c — the server process: opens the queue, counters, control socket and listeners
 * (their clients are accepted by accept.c within the limits of capacity.c), runs the loop, and
 * shuts down gracefully on SIGTERM/SIGINT (transactions in flight finish, then 421 4.3.2). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/queue_admin.h"
#include "server/http.h"
#include "server/metrics.h"
#include "net/control.h"
#include "server/ipcount.h"
#include "net/listener.h"
#include "net/log.h"
#include "server/server.h"
#include "net/tls.h"

static unsigned listener_extensions(void)
{
    return SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 | SMTP_EXT_DSN |
           SMTP_EXT_CHUNKING;
}

static void on_queue(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd;
    (void)what;
    store_queue_process(srv->queue);
}

static void on_authcheck(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd;
    (void)what;
    policy_authcheck_process(srv->authcheck);
}

static void on_grace_over(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd;
    (void)what;
    net_log("shutdown: grace period over, closing %u connection(s)", srv->n_conns);
    while (srv->conns)
        server_conn_close(srv->conns);
    event_base_loopexit(srv->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    (void)what;
    if (srv->shutting_down)
        return;
    srv->shutting_down = true;
    net_log("shutdown: signal %d, finishing %u connection(s)", (int)sig, srv->n_conns);
    for (size_t i = 0; i < srv->n_listeners; i++)
        server_listener_stop(&srv->listeners[i]);
    struct server_conn *c = srv->conns;
    while (c) {
        struct server_conn *next = c->next; /* c may close and go */
        server_conn_shutdown(c);
        c = next;
    }
    if (srv->n_conns == 0) {
        event_base_loopexit(srv->base, NULL);
        return;
    }
    struct timeval grace = {.tv_sec = srv->cfg->shutdown_grace};
    srv->grace_ev = evtimer_new(srv->base, on_grace_over, srv);
    if (srv->grace_ev)
        evtimer_add(srv->grace_ev, &grace);
}

/* The session options of l from the configuration in force: set at start and again on reload,
 * so new sessions get the new hostname, sizes and AUTH offer. */
void server_listener_configure(struct server *srv, struct server_listener *l,
                               const struct policy_listener *conf)
{
    const struct policy_config *cfg = srv->cfg;
    enum smtp_auth_offer auth = SMTP_AUTH_NEVER;
    l->conf = conf;
    l->srv = srv;
    if (conf->auth && cfg->users)
        auth = conf->auth_plaintext ? SMTP_AUTH_ALWAYS : SMTP_AUTH_AFTER_TLS;
    l->opts = (struct smtp_server_opts){
        .hostname = cfg->hostname,
        .max_message_size = cfg->max_message_size,
        .max_recipients = cfg->max_recipients,
        .max_errors = cfg->max_errors,
        .max_hops = cfg->max_hops,
        .rcpt_overshoot = cfg->max_recipients_overshoot,
        .ext = listener_extensions(),
        .bare_lf_normalize = cfg->bare_lf_normalize,
        .soft_bounce = cfg->soft_bounce,
        .offer_starttls = conf->starttls,
        .tls_available = srv->tls_ctx != NULL,
        .auth = auth,
        .require_auth = conf->kind != POLICY_LISTEN_MX, /* RFC 6409 §4.3 */
        .max_messages_per_session = cfg->max_messages_per_session,
    };
}

bool server_listener_start(struct server *srv, struct server_listener *l,
                           const struct policy_listener *conf)
{
    char err[256];
    if (conf->kind == POLICY_LISTEN_SUBMISSIONS && !srv->tls_ctx) {
        net_log("error: listen submissions %s:%u needs TLS, which is unavailable", conf->host,
                conf->port);
        return false;
    }
    int fd = net_listen(conf->host, conf->port, err, sizeof err);
    if (fd < 0) {
        net_log("error: %s", err);
        return false;
    }
    server_listener_configure(srv, l, conf);
    l->fd = fd;
    l->ev = event_new(srv->base, l->fd, EV_READ | EV_PERSIST, server_accept_ready, l);
    if (!l->ev || event_add(l->ev, NULL) < 0) {
        server_listener_stop(l);
        net_log("error: listen %s:%u: out of memory", conf->host, conf->port);
        return false;
    }
    net_log("listening on %s:%u (%s)", conf->host[0] ? conf->host : "*", conf->port,
            policy_listen_kind_name(conf->kind));
    return true;
}

void server_listener_stop(struct server_listener *l)
{
    if (l->ev)
        event_free(l->ev);
    if (l->fd >= 0)
        close(l->fd);
    l->ev = NULL;
    l->fd = -1;
}

static bool open_listeners(struct server *srv)
{
    const struct policy_config *cfg = srv->cfg;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        if (!server_listener_start(srv, &srv->listeners[i], &cfg->listeners[i])) {
            net_log("fatal: cannot open the listeners");
            return false;
        }
        srv->n_listeners++;
    }
    return true;
}

static bool open_queue(struct server *srv)
{
    const struct policy_config *cfg = srv->cfg;
    struct store_opts o = {
        .queue_dir = cfg->queue_dir,
        .maildir_root = cfg->maildir_root,
        .hostname = cfg->hostname,
        .deliver_local = true,
        .write_once = true,
        .log = net_log_line,
        .sync_mode = cfg->sync_fdatasync ? STORE_SYNC_FDATASYNC : STORE_SYNC_SYNCFS,
    };
    char err[256];
    if (store_queue_open(&o, &srv->queue, err, sizeof err) != STORE_OK) {
        net_log("fatal: queue %s: %s", cfg->queue_dir, err);
        return false;
    }
    srv->queue_ev = event_new(srv->base, store_queue_event_fd(srv->queue), EV_READ | EV_PERSIST,
                              on_queue, srv);
    return srv->queue_ev && event_add(srv->queue_ev, NULL) == 0;
}

/* TLS is optional for a plain MX: without it STARTTLS gets 454 4.7.0 and is not offered. */
static bool open_tls(struct server *srv, const struct server_privileges *priv)
{
    const struct policy_config *cfg = srv->cfg;
    char err[512];
    struct net_tls_owner owner = server_privileges_tls_owner(priv);
    srv->tls_ctx = net_tls_context(cfg->tls_cert, cfg->tls_key, cfg->data_dir, cfg->hostname,
                                   &owner, err, sizeof err);
    if (!srv->tls_ctx)
        net_log("warning: TLS unavailable: %s", err);
    return true;
}

static bool open_auth(struct server *srv)
{
    const struct policy_config *cfg = srv->cfg;
    char err[256];
    srv->authlimit = policy_authlimit_new(cfg->auth_fail_limit,
                                          (uint64_t)cfg->auth_fail_window * 1000, 65536);
    srv->authcheck = policy_authcheck_new(POLICY_AUTHCHECK_THREADS, err, sizeof err);
    if (!srv->authlimit || !srv->authcheck) {
        net_log("fatal: authentication: %s", srv->authcheck ? "out of memory" : err);
        return false;
    }
    srv->authcheck_ev = event_new(srv->base, policy_authcheck_event_fd(srv->authcheck),
                                  EV_READ | EV_PERSIST, on_authcheck, srv);
    return srv->authcheck_ev && event_add(srv->authcheck_ev, NULL) == 0;
}

static bool open_agent(struct server *srv)
{
    struct deliver_agent_opts o = {.base = srv->base, .queue = srv->queue, .log = net_log_line,
                                   .dkim = srv->dkim};
    char err[256];
    deliver_agent_opts_from_config(&o, srv->cfg);
    srv->agent = deliver_agent_new(&o, err, sizeof err);
    if (!srv->agent) {
        net_log("fatal: delivery agent: %s", err);
        return false;
    }
    store_queue_set_success_hook(srv->queue, deliver_agent_send_delivered, srv->agent);
    return true;
}

/* The control socket (clearmta queue, clearmta limits) is an administrator's convenience: the
 * server runs without it, saying why. */
static bool open_control(struct server *srv)
{
    char path[POLICY_PATH_CAP + sizeof NET_CONTROL_SOCKET_NAME + 1], err[256];
    int n = snprintf(path, sizeof path, "%s/%s", srv->cfg->queue_dir, NET_CONTROL_SOCKET_NAME);
    if (n < 0 || (size_t)n >= sizeof path) {
        net_log("warning: control socket: queue directory path too long");
        return true;
    }
    srv->control = net_control_new(srv->base, path, err, sizeof err);
    if (!srv->control) {
        net_log("warning: control socket %s: %s", path, err);
        return true;
    }
    server_limits_register(srv->control, srv);
    if (!server_queue_admin_register(srv->control, srv->agent))
        net_log("warning: control socket: cannot register the queue command");
    return true;
}

static bool setup(struct server *srv)
{
    const struct policy_config *cfg = srv->cfg;
    server_capacity_prepare(srv);
    srv->base = event_base_new();
    srv->per_ip = server_ipcount_new();
    if (!srv->base || !srv->per_ip)
        return false;
    struct timeval command = {.tv_sec = cfg->timeout_command};
    struct timeval data = {.tv_sec = cfg->timeout_data};
    srv->command_timeout = event_base_init_common_timeout(srv->base, &command);
    srv->data_timeout = event_base_init_common_timeout(srv->base, &data);
    server_transaction_callbacks(&srv->callbacks);
    server_capacity_callbacks(srv);
    srv->sigterm_ev = evsignal_new(srv->base, SIGTERM, on_signal, srv);
    srv->sigint_ev = evsignal_new(srv->base, SIGINT, on_signal, srv);
    if (!srv->command_timeout || !srv->data_timeout || !srv->sigterm_ev || !srv->sigint_ev ||
        evsignal_add(srv->sigterm_ev, NULL) < 0 || evsignal_add(srv->sigint_ev, NULL) < 0)
        return false;
    signal(SIGPIPE, SIG_IGN);
    /* Keys and privileged ports need root; everything that makes files or threads comes after
     * the drop, so that all of it belongs to the configured user. */
    struct server_privileges priv;
    if (!server_privileges_prepare(cfg, srv->config_path == NULL, &priv) ||
        !open_tls(srv, &priv) || !server_signing_open(srv) || !open_listeners(srv) ||
        !server_http_open(srv) || !server_privileges_drop(&priv))
        return false;
    return open_queue(srv) && open_auth(srv) && open_agent(srv) && server_limits_open(srv) &&
           open_control(srv) && server_pickup_open(srv) && server_reload_open(srv) &&
           server_capacity_open(srv); /* last: it counts the descriptors all of these use */
}

static void teardown(struct server *srv)
{
    while (srv->conns)
        server_conn_close(srv->conns);
    server_http_close(srv); /* before the control socket and agent its requests use */
    if (srv->queue)
        store_queue_close(srv->queue); /* runs the callbacks of commits still in flight */
    server_pickup_close(srv); /* after the queue: a pickup commit calls back */
    net_control_free(srv->control); /* before the agent and counters its commands read */
    deliver_agent_free(srv->agent); /* after the queue: bounce commits call it */
    server_limits_close(srv);          /* after the agent, whose pacing uses the counters */
    server_signing_close(srv);         /* after the agent, which signs its reports */
    server_receipt_close(srv);         /* after the connections, whose checks it runs */
    for (size_t i = 0; i < srv->n_listeners; i++)
        server_listener_stop(&srv->listeners[i]);
    policy_authcheck_free(srv->authcheck);
    policy_authlimit_free(srv->authlimit);
    if (srv->tls_ctx)
        SSL_CTX_free(srv->tls_ctx);
    struct event *evs[] = {srv->queue_ev, srv->sigterm_ev, srv->sigint_ev, srv->grace_ev,
                           srv->authcheck_ev};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (evs[i])
            event_free(evs[i]);
    server_accept_close(srv);
    server_capacity_close(srv);
    server_ipcount_free(srv->per_ip);
    server_reload_close(srv); /* last: everything above may point into the old configurations */
    if (srv->base)
        event_base_free(srv->base);
}

int server_run(const struct policy_config *cfg)
{
    return server_run_file(NULL, cfg);
}

int server_run_file(const char *path, const struct policy_config *cfg)
{
    struct server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        net_log("fatal: out of memory");
        return 1;
    }
    srv->cfg = cfg;
    srv->config_path = path;
    net_log_use_syslog(cfg->log_syslog);
    char err[512];
    if (cfg->log_file[0] &&
        !net_log_open_file(cfg->log_file, server_privileges_log_owner(cfg), err, sizeof err)) {
        net_log("fatal: %s", err);
        free(srv);
        return 1;
    }
    int status = 0;
    if (setup(srv)) {
        net_log("clearmta ready: hostname=%s, queue=%s, maildir=%s", cfg->hostname,
                cfg->queue_dir, cfg->maildir_root);
        event_base_dispatch(srv->base);
        net_log("shutdown: complete");
    } else {
        status = 1;
    }
    teardown(srv);
    free(srv);
    return status;
}
