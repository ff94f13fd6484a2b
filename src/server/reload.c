/* server/reload.c — SIGHUP: the configuration file read again and put in force for new
 * sessions and attempts, listeners opened or closed; a file with any problem is refused whole
 * (PATH:LINE logged) and the old one stays. SIGUSR1 and SIGHUP reopen the log file. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/log.h"
#include "server/server.h"

/* A configuration replaced by a reload. Open sessions, the store's options and delivery
 * attempts in flight may still point into it, so it lives until the server stops. */
struct server_retired {
    struct policy_config *cfg; /* owned */
    struct server_retired *next;
};

/* What a reload cannot change: the queue, counters and TLS context are open already. The new
 * configuration keeps the running values, and the log says a restart applies them. */
static void keep_restart_settings(const struct policy_config *old, struct policy_config *n)
{
    struct {
        const char *name;
        char *now;
        const char *was;
        size_t cap;
    } paths[] = {
        {"data_dir", n->data_dir, old->data_dir, sizeof n->data_dir},
        {"queue_dir", n->queue_dir, old->queue_dir, sizeof n->queue_dir},
        {"maildir_root", n->maildir_root, old->maildir_root, sizeof n->maildir_root},
        {"tls_cert", n->tls_cert, old->tls_cert, sizeof n->tls_cert},
        {"tls_key", n->tls_key, old->tls_key, sizeof n->tls_key},
        {"user", n->run_user, old->run_user, sizeof n->run_user},
        {"log_file", n->log_file, old->log_file, sizeof n->log_file},
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (strcmp(paths[i].now, paths[i].was) == 0)
            continue;
        net_log("reload: %s changed; it takes effect after a restart", paths[i].name);
        snprintf(paths[i].now, paths[i].cap, "%s", paths[i].was);
    }
    if (memcmp(&old->counters, &n->counters, sizeof n->counters) != 0) {
        net_log("reload: counters changed; they take effect after a restart");
        n->counters = old->counters;
    }
}

static bool same_address(const struct policy_listener *a, const struct policy_listener *b)
{
    return a->kind == b->kind && a->port == b->port && strcmp(a->host, b->host) == 0;
}

static bool slot_in_use(const struct server *srv, const struct server_listener *l)
{
    for (const struct server_conn *c = srv->conns; c; c = c->next)
        if (c->listener == l)
            return true;
    return false;
}

/* Closes the listeners the new configuration lacks (first, so that a port moving to another
 * kind can be bound again), keeps the others with the new session options, opens the new. */
static void reconcile_listeners(struct server *srv)
{
    const struct policy_config *cfg = srv->cfg;
    bool kept[POLICY_LISTENERS_MAX] = {false};
    for (size_t i = 0; i < srv->n_listeners; i++) {
        struct server_listener *l = &srv->listeners[i];
        if (l->fd < 0)
            continue;
        size_t j = 0;
        while (j < cfg->n_listeners && (kept[j] || !same_address(l->conf, &cfg->listeners[j])))
            j++;
        if (j == cfg->n_listeners) {
            net_log("reload: closing %s:%u (%s)", l->conf->host[0] ? l->conf->host : "*",
                    l->conf->port, policy_listen_kind_name(l->conf->kind));
            server_listener_stop(l);
            continue;
        }
        kept[j] = true;
        server_listener_configure(srv, l, &cfg->listeners[j]);
    }
    for (size_t j = 0; j < cfg->n_listeners; j++) {
        if (kept[j])
            continue;
        size_t i = 0;
        while (i < srv->n_listeners &&
               (srv->listeners[i].fd >= 0 || slot_in_use(srv, &srv->listeners[i])))
            i++;
        if (i == POLICY_LISTENERS_MAX) {
            net_log("reload: no free listener slot for %s:%u; restart to open it",
                    cfg->listeners[j].host, cfg->listeners[j].port);
            continue;
        }
        struct server_listener *l = &srv->listeners[i];
        if (i == srv->n_listeners)
            l->fd = -1;
        if (server_listener_start(srv, l, &cfg->listeners[j]) && i == srv->n_listeners)
            srv->n_listeners++;
    }
}

static void log_problems(const struct policy_problems *p, size_t n)
{
    for (size_t i = 0; i < p->count; i++)
        net_log("reload refused: %s:%u: %s", p->items[i].file, p->items[i].line,
                p->items[i].message);
    net_log("reload refused: %zu configuration problem(s); the running configuration stays", n);
}

static void reload(struct server *srv)
{
    if (!srv->config_path) {
        net_log("reload: running on the embedded defaults; nothing to read");
        return;
    }
    struct policy_config *n = calloc(1, sizeof *n);
    struct policy_problems *problems = calloc(1, sizeof *problems);
    struct server_retired *r = calloc(1, sizeof *r);
    if (!n || !problems || !r) {
        net_log("reload refused: out of memory; the running configuration stays");
        free(n);
        free(problems);
        free(r);
        return;
    }
    size_t count = policy_config_load(srv->config_path, n, problems);
    if (count > 0) {
        log_problems(problems, count);
        policy_config_free(n);
        free(n);
        free(problems);
        free(r);
        return;
    }
    free(problems);
    keep_restart_settings(srv->cfg, n);
    /* The first configuration is the caller's: only those made here are retired and freed. */
    r->cfg = n;
    r->next = srv->retired;
    srv->retired = r;
    srv->cfg = n;
    server_capacity_configure(srv); /* max_connections, stress, TLS handshake limits */
    deliver_agent_set_config(srv->agent, n);
    reconcile_listeners(srv);
    net_log("reload: %s in force for new sessions (%zu domain(s), %zu listener(s))",
            srv->config_path, n->n_domains, n->n_listeners);
}

/* SIGUSR1, and SIGHUP first: logrotate moved the log file away. */
static void reopen_log(void)
{
    char err[512];
    if (!net_log_reopen(err, sizeof err))
        net_log("warning: cannot reopen the log: %s; writing on to the old file", err);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    (void)what;
    reopen_log();
    if (sig == SIGUSR1 || srv->shutting_down)
        return; /* shutting down, the listeners are closed: nothing a reload could open */
    reload(srv);
}

bool server_reload_open(struct server *srv)
{
    srv->sighup_ev = evsignal_new(srv->base, SIGHUP, on_hup, srv);
    srv->sigusr1_ev = evsignal_new(srv->base, SIGUSR1, on_hup, srv);
    return srv->sighup_ev && srv->sigusr1_ev && evsignal_add(srv->sighup_ev, NULL) == 0 &&
           evsignal_add(srv->sigusr1_ev, NULL) == 0;
}

void server_reload_close(struct server *srv)
{
    if (srv->sighup_ev)
        event_free(srv->sighup_ev);
    if (srv->sigusr1_ev)
        event_free(srv->sigusr1_ev);
    srv->sighup_ev = srv->sigusr1_ev = NULL;
    while (srv->retired) {
        struct server_retired *r = srv->retired;
        srv->retired = r->next;
        policy_config_free(r->cfg);
        free(r->cfg);
        free(r);
    }
}
