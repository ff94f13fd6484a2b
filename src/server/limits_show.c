/* server/limits_show.c — the "limits" command of the control socket: `clearmta limits show
 * [USER|IP] [--json]` prints an account's plan counters (count, limit, window, when it frees
 * up), a client address's connections and sessions, or the limits set-up as a whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "net/control.h"
#include "net/log.h"
#include "server/server.h"
#include "policy/counters.h"
#include "policy/plan_check.h"

/* Every limit of a plan plus the sessions-per-minute counter of an address. */
#define READS_MAX (3u * POLICY_PLAN_WINDOWS_MAX + 1u)

/* One counter read (amount 0: nothing is counted). */
struct show_read {
    const char *what; /* "messages", "recipients", "bytes", "sessions" */
    char key[POLICY_COUNTERS_KEY_MAX + 1];
    uint64_t limit;
    unsigned window; /* seconds */
    struct policy_counters_result res;
};

struct server_limits_show {
    struct server *srv;
    struct net_control_request *req;
    bool json;
    char subject[LIMIT_PATH + 1]; /* the USER or IP asked about */
    bool is_ip;
    unsigned connections;         /* IP: connections open now */
    struct policy_account account;
    struct show_read reads[READS_MAX];
    size_t n_reads, next;
    struct policy_counters_call *call;
    struct server_limits_show *prev, *next_show; /* srv->shows, while a read is pending */
};

/* ---- output ------------------------------------------------------------------------------ */

static const char *over_name(const struct policy_plan *p)
{
    return p->permanent ? "permanent" : "temporary";
}

static void print_plan_json(struct net_control_request *r, const struct policy_plan *p)
{
    net_control_printf(r, "{\"name\":");
    net_control_json_string(r, p->name);
    net_control_printf(r, ",\"max_recipients\":%u,\"max_message_size\":%llu,\"over\":\"%s\","
                       "\"limits\":[", p->max_recipients,
                       (unsigned long long)p->max_message_size, over_name(p));
    for (size_t i = 0; i < p->n_limits; i++)
        net_control_printf(r, "%s{\"metric\":\"%s\",\"limit\":%llu,\"window\":%u}",
                           i ? "," : "", policy_plan_metric_name(p->limits[i].metric),
                           (unsigned long long)p->limits[i].limit, p->limits[i].window);
    net_control_printf(r, "]}");
}

static void print_plan_text(struct net_control_request *r, const struct policy_plan *p)
{
    net_control_printf(r, "plan %s: over=%s", p->name, over_name(p));
    if (p->max_recipients)
        net_control_printf(r, ", max-recipients=%u", p->max_recipients);
    if (p->max_message_size)
        net_control_printf(r, ", max-message-size=%llu", (unsigned long long)p->max_message_size);
    for (size_t i = 0; i < p->n_limits; i++) {
        char words[96];
        if (policy_plan_limit_words(words, sizeof words, &p->limits[i]) > 0)
            net_control_printf(r, "; %s", words);
    }
    net_control_printf(r, "\n");
}

/* With no argument: the backend and every plan. */
static void show_overview(struct server *srv, struct net_control_request *r, bool json)
{
    const struct policy_config *cfg = srv->cfg;
    const char *backend = policy_counters_backend(srv->counters);
    unsigned long long failures = (unsigned long long)policy_counters_failures(srv->counters);
    const char *fail = cfg->counters.fail_closed ? "closed" : "open";
    if (json) {
        net_control_printf(r, "{\"backend\":\"%s\",\"server\":", backend);
        net_control_json_string(r, cfg->counters.kind == POLICY_COUNTERS_REDIS
                                       ? cfg->counters.server : NULL);
        net_control_printf(r, ",\"fail\":\"%s\",\"failures\":%llu,\"default_plan\":", fail,
                           failures);
        net_control_json_string(r, cfg->default_plan[0] ? cfg->default_plan : NULL);
        net_control_printf(r, ",\"max_messages_per_session\":%u,"
                           "\"max_sessions_per_minute_per_ip\":%u,\"max_commands_per_second\":%u,"
                           "\"greylisting\":{\"on\":%s,\"delay\":%u,\"expire\":%u},\"plans\":[",
                           cfg->max_messages_per_session, cfg->max_sessions_per_minute_per_ip,
                           cfg->max_commands_per_second, cfg->greylist.on ? "true" : "false",
                           cfg->greylist.delay, cfg->greylist.expire);
        for (size_t i = 0; i < cfg->n_plans; i++) {
            if (i)
                net_control_printf(r, ",");
            print_plan_json(r, &cfg->plans[i]);
        }
        net_control_printf(r, "]}\n");
        return;
    }
    net_control_printf(r, "counters: %s%s%s, fail=%s, failures=%llu\n", backend,
                       cfg->counters.kind == POLICY_COUNTERS_REDIS ? " " : "",
                       cfg->counters.kind == POLICY_COUNTERS_REDIS ? cfg->counters.server : "",
                       fail, failures);
    net_control_printf(r, "max_messages_per_session: %u\nmax_sessions_per_minute_per_ip: %u\n"
                       "max_commands_per_second: %u\ngreylisting: %s (delay %u s, expire %u s)\n"
                       "default_plan: %s\n",
                       cfg->max_messages_per_session, cfg->max_sessions_per_minute_per_ip,
                       cfg->max_commands_per_second, cfg->greylist.on ? "on" : "off",
                       cfg->greylist.delay, cfg->greylist.expire,
                       cfg->default_plan[0] ? cfg->default_plan : "(none)");
    for (size_t i = 0; i < cfg->n_plans; i++)
        print_plan_text(r, &cfg->plans[i]);
}

/* "14:05:10 UTC" for a moment ms from now. */
static void utc_after(char *out, size_t cap, uint64_t ms)
{
    time_t t = time(NULL) + (time_t)((ms + 999) / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, cap, "?");
}

static const char *read_status(const struct show_read *rd)
{
    return rd->res.status == POLICY_COUNTERS_UNAVAILABLE ? "unavailable" : "ok";
}

static void print_read_json(struct net_control_request *r, const struct show_read *rd)
{
    char when[40];
    utc_after(when, sizeof when, rd->res.retry_after_ms);
    net_control_printf(r, "{\"counter\":");
    net_control_json_string(r, rd->key);
    net_control_printf(r, ",\"metric\":\"%s\",\"count\":%llu,\"limit\":%llu,\"window\":%u,"
                       "\"frees_in_ms\":%llu,\"frees_at\":", rd->what,
                       (unsigned long long)rd->res.count, (unsigned long long)rd->limit,
                       rd->window, (unsigned long long)rd->res.retry_after_ms);
    net_control_json_string(r, rd->res.count > 0 ? when : NULL);
    net_control_printf(r, ",\"status\":\"%s\"", read_status(rd));
    if (rd->res.status == POLICY_COUNTERS_UNAVAILABLE) {
        net_control_printf(r, ",\"error\":");
        net_control_json_string(r, rd->res.error);
    }
    net_control_printf(r, "}");
}

static void print_read_text(struct net_control_request *r, const struct show_read *rd)
{
    if (rd->res.status == POLICY_COUNTERS_UNAVAILABLE) {
        net_control_printf(r, "  %s: unavailable (%s)\n", rd->key, rd->res.error);
        return;
    }
    if (rd->limit == 0) /* counted, but no limit is set */
        net_control_printf(r, "  %s: %llu %s per %u s (no limit)", rd->key,
                           (unsigned long long)rd->res.count, rd->what, rd->window);
    else
        net_control_printf(r, "  %s: %llu of %llu %s per %u s", rd->key,
                           (unsigned long long)rd->res.count, (unsigned long long)rd->limit,
                           rd->what, rd->window);
    if (rd->res.count > 0) {
        char when[40];
        utc_after(when, sizeof when, rd->res.retry_after_ms);
        net_control_printf(r, "; frees up in %llu s (%s)",
                           (unsigned long long)((rd->res.retry_after_ms + 999) / 1000), when);
    }
    net_control_printf(r, "\n");
}

/* The subject's answer, once every read is in. */
static void print_subject(const struct server_limits_show *sh)
{
    struct net_control_request *r = sh->req;
    const struct policy_plan *plan = sh->account.plan;
    size_t first_plan_read = sh->is_ip ? 1 : 0;
    if (sh->json) {
        net_control_printf(r, "{\"%s\":", sh->is_ip ? "ip" : "user");
        net_control_json_string(r, sh->subject);
        if (sh->is_ip) {
            net_control_printf(r, ",\"connections\":%u,\"sessions_last_minute\":",
                               sh->connections);
            print_read_json(r, &sh->reads[0]);
        }
        net_control_printf(r, ",\"account\":");
        net_control_json_string(r, plan ? sh->account.name : NULL);
        net_control_printf(r, ",\"plan\":");
        if (plan)
            print_plan_json(r, plan);
        else
            net_control_printf(r, "null");
        net_control_printf(r, ",\"counters\":[");
        for (size_t i = first_plan_read; i < sh->n_reads; i++) {
            if (i > first_plan_read)
                net_control_printf(r, ",");
            print_read_json(r, &sh->reads[i]);
        }
        net_control_printf(r, "]}\n");
        return;
    }
    net_control_printf(r, "%s %s\n", sh->is_ip ? "ip" : "user", sh->subject);
    if (sh->is_ip) {
        net_control_printf(r, "connections now: %u\nsessions in the last minute:\n",
                           sh->connections);
        print_read_text(r, &sh->reads[0]);
    }
    if (!plan) {
        net_control_printf(r, "no plan\n");
        return;
    }
    net_control_printf(r, "account %s, ", sh->account.name);
    print_plan_text(r, plan);
    for (size_t i = first_plan_read; i < sh->n_reads; i++)
        print_read_text(r, &sh->reads[i]);
}

/* ---- reads ------------------------------------------------------------------------------- */

static void show_unlink(struct server_limits_show *sh)
{
    struct server *srv = sh->srv;
    if (sh->prev)
        sh->prev->next_show = sh->next_show;
    else if (srv->shows == sh)
        srv->shows = sh->next_show;
    if (sh->next_show)
        sh->next_show->prev = sh->prev;
    sh->prev = sh->next_show = NULL;
}

static void show_finish(struct server_limits_show *sh)
{
    show_unlink(sh);
    print_subject(sh);
    net_control_finish(sh->req, 0);
    free(sh);
}

static void on_read(void *ctx, const struct policy_counters_result *res);

/* Reads what is left; false while a read is pending. */
static bool show_run(struct server_limits_show *sh)
{
    while (sh->next < sh->n_reads) {
        struct show_read *rd = &sh->reads[sh->next];
        struct policy_counters_request req = {
            .key = rd->key, .amount = 0, .limit = rd->limit,
            .window_ms = (uint64_t)rd->window * 1000};
        if (!policy_counters_hit(sh->srv->counters, &req, &rd->res, on_read, sh, &sh->call))
            return false;
        sh->next++;
    }
    return true;
}

static void on_read(void *ctx, const struct policy_counters_result *res)
{
    struct server_limits_show *sh = ctx;
    sh->call = NULL;
    sh->reads[sh->next++].res = *res;
    if (show_run(sh))
        show_finish(sh);
}

static void add_read(struct server_limits_show *sh, const char *what, uint64_t limit,
                     unsigned window)
{
    if (sh->n_reads < READS_MAX) {
        struct show_read *rd = &sh->reads[sh->n_reads++];
        rd->what = what;
        rd->limit = limit;
        rd->window = window;
    }
}

static void add_plan_reads(struct server_limits_show *sh)
{
    const struct policy_plan *p = sh->account.plan;
    for (size_t i = 0; p && i < p->n_limits && sh->n_reads < READS_MAX; i++) {
        const struct policy_plan_limit *l = &p->limits[i];
        if (policy_plan_key(sh->reads[sh->n_reads].key, sizeof sh->reads[0].key, l,
                            sh->account.name) > 0)
            add_read(sh, policy_plan_metric_name(l->metric), l->limit, l->window);
    }
}

static unsigned connections_from(const struct server *srv, const char *addr)
{
    unsigned n = 0;
    for (const struct server_conn *c = srv->conns; c; c = c->next)
        n += strcmp(c->addr, addr) == 0;
    return n;
}

static bool setup_ip(struct server_limits_show *sh, const struct sockaddr_storage *ss)
{
    const struct sockaddr *sa = (const struct sockaddr *)ss;
    sh->is_ip = true;
    sh->connections = connections_from(sh->srv, sh->subject);
    if (policy_session_key(sh->reads[0].key, sizeof sh->reads[0].key, sa) == 0)
        return false;
    add_read(sh, "sessions", sh->srv->cfg->max_sessions_per_minute_per_ip, 60);
    policy_account_for_address(sh->srv->cfg, sa, &sh->account);
    return true;
}

static void usage(struct net_control_request *r)
{
    net_control_printf(r, "usage: limits show [USER|IP] [--json]\n");
    net_control_finish(r, 2);
}

static void on_limits(void *ctx, struct net_control_request *r, int argc, char **argv,
                      bool json)
{
    struct server *srv = ctx;
    if (argc < 2 || argc > 3 || strcmp(argv[1], "show") != 0) {
        usage(r);
        return;
    }
    if (argc == 2) {
        show_overview(srv, r, json);
        net_control_finish(r, 0);
        return;
    }
    if (strlen(argv[2]) > LIMIT_PATH) {
        net_control_printf(r, "name too long\n");
        net_control_finish(r, 2);
        return;
    }
    struct server_limits_show *sh = calloc(1, sizeof *sh);
    if (!sh) {
        net_control_printf(r, "out of memory\n");
        net_control_finish(r, 1);
        return;
    }
    sh->srv = srv;
    sh->req = r;
    sh->json = json;
    memcpy(sh->subject, argv[2], strlen(argv[2]) + 1);
    struct sockaddr_storage ss;
    if (policy_parse_address(argv[2], &ss)) {
        if (!setup_ip(sh, &ss)) {
            free(sh);
            net_control_printf(r, "cannot make a counter key for %s\n", argv[2]);
            net_control_finish(r, 1);
            return;
        }
    } else {
        policy_account_for_user(srv->cfg, argv[2], &sh->account);
    }
    add_plan_reads(sh);
    if (show_run(sh)) {
        show_finish(sh);
        return;
    }
    sh->next_show = srv->shows; /* pending: server_limits_show_drop frees it at shutdown */
    if (srv->shows)
        srv->shows->prev = sh;
    srv->shows = sh;
}

void server_limits_register(struct net_control *ctl, struct server *srv)
{
    if (!net_control_register(ctl, "limits", on_limits, srv))
        net_log("warning: control socket: cannot register the limits command");
}

void server_limits_show_drop(struct server *srv)
{
    while (srv->shows) {
        struct server_limits_show *sh = srv->shows;
        show_unlink(sh);
        net_control_finish(sh->req, 1); /* the socket is gone: this only releases it */
        free(sh);
    }
}
