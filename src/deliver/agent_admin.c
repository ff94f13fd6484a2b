/* deliver/agent_admin.c — `clearmta queue …` on the running agent: list, flush, hold,
 * release, delete, destinations. Queue state comes from the files on disk; attempts, next try
 * and last reply from the agent's jobs in memory, so after a restart attempts count from the
 * restart and a recipient shows "queued" until its first attempt of this run. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver/agent_internal.h"
#include "store/flags.h"

/* ---- list ---- */

static const char *rcpt_state(const struct store_qf *qf, size_t i, const struct job *j)
{
    const struct rcpt_info *info = j && i < j->n_info ? &j->info[i] : NULL;
    switch (qf->state[i]) {
    case STORE_RCPT_SENT:
        return "sent";
    case STORE_RCPT_BOUNCED:
        return "bounced";
    case STORE_RCPT_PENDING:
    case STORE_RCPT_DEFERRED:
        break;
    }
    if (qf->env.rcpts[i].local_user != NULL)
        return "local";
    if (j && j->at != NULL)
        return "sending";
    return info && info->attempts > 0 ? "deferred" : "queued";
}

static enum deliver_agent_admin_err show(struct deliver_agent *a, const struct store_qf *qf,
                                         deliver_agent_view_cb *fn, void *ctx)
{
    size_t n = qf->env.n_rcpts;
    struct deliver_agent_rcpt_view *rv = calloc(n ? n : 1, sizeof *rv);
    if (rv == NULL)
        return DELIVER_AGENT_ADMIN_NOMEM;
    const struct job *j = deliver_agent_job_find(a, qf->id);
    bool held = j ? j->held : store_flags_get(a->flags_fd, qf->id, STORE_FLAG_HOLD);
    for (size_t i = 0; i < n; i++) {
        const struct rcpt_info *info = j && i < j->n_info ? &j->info[i] : NULL;
        bool remote = store_remote_pending(qf, i);
        rv[i] = (struct deliver_agent_rcpt_view){
            .address = qf->env.rcpts[i].address,
            .state = rcpt_state(qf, i, j),
            .attempts = info ? info->attempts : 0,
            .next_try = remote && j && !held ? j->next_try : 0,
            .last_reply = info && info->last_reply ? info->last_reply : "",
            .last_status = info ? info->last_status : (struct reply_status){0}};
    }
    struct deliver_agent_msg_view m = {
        .id = qf->id, .arrival = qf->env.arrival, .size = qf->size, .sender = qf->env.sender,
        .held = held,
        .warned = j ? j->warned : store_flags_get(a->flags_fd, qf->id, STORE_FLAG_WARNED),
        .auth_results = qf->env.auth_results ? qf->env.auth_results : "",
        .folder = qf->env.folder ? qf->env.folder : "",
        .n_rcpts = n, .rcpts = rv};
    fn(ctx, &m);
    free(rv);
    return DELIVER_AGENT_ADMIN_OK;
}

static enum deliver_agent_admin_err from_store(enum store_err e)
{
    return e == STORE_ERR_NOMEM ? DELIVER_AGENT_ADMIN_NOMEM : DELIVER_AGENT_ADMIN_IO;
}

/* Reads the header of message id: NOT_FOUND when it is not in the queue. */
static enum deliver_agent_admin_err peek(struct deliver_agent *a, const char *id,
                                         struct store_qf *qf)
{
    bool gone = false;
    if (id == NULL || !store_qf_valid_id(id, strnlen(id, STORE_ID_LEN + 1)))
        return DELIVER_AGENT_ADMIN_NOT_FOUND;
    enum store_err e = store_remote_peek(a->dir_fd, id, qf, &gone);
    if (e != STORE_OK)
        return from_store(e);
    return gone ? DELIVER_AGENT_ADMIN_NOT_FOUND : DELIVER_AGENT_ADMIN_OK;
}

/* Calls fn(a, qf, ctx) for every message in the queue, oldest first; stops at an error. */
static enum deliver_agent_admin_err each_message(
    struct deliver_agent *a,
    enum deliver_agent_admin_err (*fn)(struct deliver_agent *a, const struct store_qf *qf,
                                       void *ctx),
    void *ctx)
{
    char(*ids)[STORE_ID_LEN + 1] = NULL;
    size_t n = 0;
    enum store_err e = store_remote_list(a->dir_fd, &ids, &n);
    if (e != STORE_OK)
        return from_store(e);
    enum deliver_agent_admin_err err = DELIVER_AGENT_ADMIN_OK;
    for (size_t i = 0; i < n && err == DELIVER_AGENT_ADMIN_OK; i++) {
        struct store_qf qf;
        enum deliver_agent_admin_err pe = peek(a, ids[i], &qf);
        if (pe == DELIVER_AGENT_ADMIN_NOT_FOUND)
            continue; /* delivered meanwhile */
        if (pe != DELIVER_AGENT_ADMIN_OK) {
            if (pe == DELIVER_AGENT_ADMIN_NOMEM)
                err = pe;
            continue; /* unreadable files are an administrator's to inspect, not to list */
        }
        err = fn(a, &qf, ctx);
        store_qf_free(&qf);
    }
    free(ids);
    return err;
}

struct list_ctx {
    deliver_agent_view_cb *fn;
    void *ctx;
    size_t count;
};

static enum deliver_agent_admin_err list_one(struct deliver_agent *a, const struct store_qf *qf,
                                             void *ctx)
{
    struct list_ctx *l = ctx;
    enum deliver_agent_admin_err err = show(a, qf, l->fn, l->ctx);
    l->count += err == DELIVER_AGENT_ADMIN_OK;
    return err;
}

enum deliver_agent_admin_err deliver_agent_list(struct deliver_agent *a, const char *id,
                                                deliver_agent_view_cb *fn, void *ctx,
                                                size_t *count)
{
    struct list_ctx l = {.fn = fn, .ctx = ctx};
    enum deliver_agent_admin_err err;
    if (id != NULL) {
        struct store_qf qf;
        err = peek(a, id, &qf);
        if (err == DELIVER_AGENT_ADMIN_OK) {
            err = list_one(a, &qf, &l);
            store_qf_free(&qf);
        }
    } else {
        err = each_message(a, list_one, &l);
    }
    *count = l.count;
    return err;
}

/* ---- flush ---- */

static bool has_remote(const struct store_qf *qf, const char *domain)
{
    for (size_t i = 0; i < qf->env.n_rcpts; i++) {
        const char *at = strrchr(qf->env.rcpts[i].address, '@');
        if (store_remote_pending(qf, i) && (domain == NULL || (at && !strcasecmp(at + 1, domain))))
            return true;
    }
    return false;
}

/* Ends the backoff of the destinations of qf's pending remote recipients (in domain, or all
 * when domain is NULL): a flush means "try now". */
static void resume_destinations(struct deliver_agent *a, const struct store_qf *qf,
                                const char *domain)
{
    for (size_t i = 0; i < qf->env.n_rcpts; i++) {
        const char *at = strrchr(qf->env.rcpts[i].address, '@');
        struct deliver_route r;
        if (!store_remote_pending(qf, i) || at == NULL ||
            (domain != NULL && strcasecmp(at + 1, domain) != 0) ||
            !deliver_route_find(a->o.cfg, at + 1, &r))
            continue;
        struct deliver_destination *dst = deliver_destination_table_find(a->dests, r.destination);
        if (dst != NULL)
            deliver_destination_resume(dst);
    }
}

/* The next attempt of message id now; false when it is held or the agent cannot take it. */
static bool flush_one(struct deliver_agent *a, const char *id)
{
    struct job *j = deliver_agent_job_find(a, id);
    if (j == NULL) {
        if (!deliver_agent_submit(a, id))
            return false;
        j = deliver_agent_job_find(a, id);
    }
    if (j == NULL || j->held)
        return false;
    if (j->at != NULL)
        j->again = true;
    else
        deliver_agent_job_schedule(j, 0);
    return true;
}

struct flush_ctx {
    const char *domain;
    size_t matched, count;
};

static enum deliver_agent_admin_err flush_domain(struct deliver_agent *a,
                                                 const struct store_qf *qf, void *ctx)
{
    struct flush_ctx *f = ctx;
    if (has_remote(qf, f->domain)) {
        f->matched++;
        resume_destinations(a, qf, f->domain);
        f->count += flush_one(a, qf->id);
    }
    return DELIVER_AGENT_ADMIN_OK;
}

enum deliver_agent_admin_err deliver_agent_flush(struct deliver_agent *a, const char *target,
                                                 size_t *count)
{
    *count = 0;
    if (target == NULL) {
        deliver_destination_table_resume_all(a->dests);
        for (struct job *j = a->jobs; j != NULL; j = j->next)
            *count += flush_one(a, j->id);
        deliver_agent_logf(a, "queue flush: %zu message(s) scheduled", *count);
        deliver_agent_check_schedules(a);
        return DELIVER_AGENT_ADMIN_OK;
    }
    struct flush_ctx f = {.domain = target};
    enum deliver_agent_admin_err err;
    if (store_qf_valid_id(target, strlen(target))) {
        struct store_qf qf;
        err = peek(a, target, &qf);
        if (err != DELIVER_AGENT_ADMIN_OK)
            return err;
        f.matched = 1;
        resume_destinations(a, &qf, NULL);
        f.count = has_remote(&qf, NULL) && flush_one(a, target);
        store_qf_free(&qf);
    } else {
        err = each_message(a, flush_domain, &f);
        if (err != DELIVER_AGENT_ADMIN_OK)
            return err;
    }
    *count = f.count;
    deliver_agent_logf(a, "queue flush %s: %zu message(s) scheduled", target, *count);
    deliver_agent_check_schedules(a);
    return f.matched > 0 ? DELIVER_AGENT_ADMIN_OK : DELIVER_AGENT_ADMIN_NOT_FOUND;
}

/* ---- hold, release ---- */

static enum deliver_agent_admin_err set_hold(struct deliver_agent *a, const char *id, bool on)
{
    struct store_qf qf;
    enum deliver_agent_admin_err err = peek(a, id, &qf);
    if (err != DELIVER_AGENT_ADMIN_OK)
        return err;
    bool remote = has_remote(&qf, NULL);
    store_qf_free(&qf);
    enum store_err e = store_flags_set(a->flags_fd, id, STORE_FLAG_HOLD, on);
    if (e != STORE_OK) {
        deliver_agent_logf(a, "%s: cannot %s: %s", id, on ? "hold" : "release",
                           store_strerror(e));
        return from_store(e);
    }
    struct job *j = deliver_agent_job_find(a, id);
    if (j != NULL) {
        j->held = on;
        if (on && j->at == NULL)
            deliver_agent_job_cancel(j); /* a running attempt finishes, then waits */
        else if (!on && j->at == NULL)
            deliver_agent_job_schedule(j, 0);
    } else if (!on && remote) {
        deliver_agent_submit(a, id);
    }
    deliver_agent_logf(a, "%s: %s by the administrator", id, on ? "held" : "released");
    return DELIVER_AGENT_ADMIN_OK;
}

enum deliver_agent_admin_err deliver_agent_hold(struct deliver_agent *a, const char *id)
{
    return set_hold(a, id, true);
}

enum deliver_agent_admin_err deliver_agent_release(struct deliver_agent *a, const char *id)
{
    return set_hold(a, id, false);
}

/* ---- delete ---- */

static size_t undelivered(const struct store_qf *qf)
{
    size_t n = 0;
    for (size_t i = 0; i < qf->env.n_rcpts; i++)
        n += qf->state[i] == STORE_RCPT_PENDING;
    return n;
}

enum deliver_agent_admin_err deliver_agent_delete(struct deliver_agent *a, const char *id,
                                                  bool bounce)
{
    if (id == NULL || !store_qf_valid_id(id, strnlen(id, STORE_ID_LEN + 1)))
        return DELIVER_AGENT_ADMIN_NOT_FOUND;
    struct store_remote_msg m;
    bool gone = false;
    enum store_err e = store_remote_load(a->dir_fd, id, &m, &gone);
    if (e != STORE_OK)
        return e == STORE_ERR_CORRUPT ? DELIVER_AGENT_ADMIN_IO : from_store(e);
    if (gone)
        return DELIVER_AGENT_ADMIN_NOT_FOUND;
    struct job *j = deliver_agent_job_find(a, id);
    if (j != NULL)
        deliver_agent_job_abort(j); /* connections in flight are dropped, not finished */
    e = store_remote_remove(a->dir_fd, &m);
    if (e != STORE_OK) {
        deliver_agent_logf(a, "%s: cannot delete: %s", id, store_strerror(e));
        store_remote_close(&m);
        if (j != NULL)
            deliver_agent_job_schedule(j, 0);
        return from_store(e);
    }
    if (j != NULL)
        deliver_agent_job_free(j);
    store_flags_forget(a->flags_fd, id);
    size_t left = undelivered(&m.qf);
    deliver_agent_logf(a, "%s: deleted by the administrator, %zu recipient(s) not delivered, %s",
                       id, left, bounce ? "sender notified" : "silently");
    if (bounce)
        deliver_agent_send_deleted(a, &m);
    store_remote_close(&m);
    return DELIVER_AGENT_ADMIN_OK;
}

/* ---- size ---- */

size_t deliver_agent_queue_size(struct deliver_agent *a, int64_t *oldest)
{
    size_t n = 0;
    const char *first = NULL; /* ids are arrival microseconds in fixed-width hex: they sort */
    for (const struct job *j = a->jobs; j; j = j->next) {
        n++;
        if (!first || strcmp(j->id, first) < 0)
            first = j->id;
    }
    uint64_t us = 0;
    for (size_t i = 0; first && first[i]; i++)
        us = us << 4 | (uint64_t)(first[i] <= '9' ? first[i] - '0' : first[i] - 'A' + 10);
    *oldest = (int64_t)(us / 1000000u);
    return n;
}

/* ---- destinations ---- */

int64_t deliver_agent_destinations(struct deliver_agent *a,
                                   void (*fn)(void *ctx, const struct deliver_destination *d),
                                   void *ctx)
{
    size_t cursor = 0;
    for (const struct deliver_destination *d; (d = deliver_destination_table_next(a->dests,
                                                                                 &cursor));)
        fn(ctx, d);
    return deliver_agent_now();
}
