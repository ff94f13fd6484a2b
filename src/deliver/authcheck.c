/* deliver/authcheck.c — SPF, DKIM and DMARC of a message on the event loop: each evaluator of
 * auth/ runs until it names a look-up it lacks; the answer comes from the cache
 * (deliver/dnscache.c) at once or from c-ares (deliver/resolver.c) later, and the evaluator
 * runs again. The DKIM keys of all signatures are asked at once; SPF and DMARC one look-up at
 * a time, as their evaluations need. Each step has a deadline after which every question
 * still open is answered "temporary failure". Completion is always reported from the loop. */
#include "deliver/authcheck.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/from.h"
#include "deliver/dnscache.h"
#include "limits_mta.h"
#include "deliver/resolver.h"

/* Questions one step may ask before the rest are answered "temporary failure": more than the
 * evaluators ever ask of a sane domain (auth/spf.c stops at AUTH_SPF_ANSWERS_MAX itself). */
#define QUESTIONS_MAX (AUTH_SPF_ANSWERS_MAX + AUTH_DKIM_SIGS_MAX + 8u)

struct deliver_authcheck {
    struct event_base *base;
    struct deliver_resolver *resolver;
    struct deliver_dnscache *cache;
    struct deliver_authcheck_run *runs; /* every run not yet freed */
};

enum step { STEP_IDLE, STEP_SPF, STEP_DKIM, STEP_DMARC };

/* A question of a run: what it asks and the look-up in flight, if any. */
struct question {
    struct deliver_authcheck_run *run;
    size_t index; /* the signature whose key it asks (DKIM); 0 for SPF and DMARC */
    struct deliver_lookup *lookup;
    char name[LIMIT_DOMAIN + 1];
    int type;
};

/* The key record answer of one signature, kept for deliver_authcheck_run_key. */
struct key_answer {
    enum auth_dns_status st;
    char *record;
    size_t len;
};

struct deliver_authcheck_run {
    struct deliver_authcheck *a; /* NULL once the checker is gone */
    struct deliver_authcheck_run *prev, *next;
    enum step step;
    bool expired;        /* the step's time is up: questions get "temporary failure" */
    unsigned asked;      /* questions of this step */
    size_t waiting;      /* look-ups in flight */
    struct event *timer; /* the step's deadline */
    struct event *done;  /* reports completion from the loop */
    deliver_authcheck_cb *cb;
    void *ctx;
    struct auth_spf *spf;
    bool spf_helo;
    struct auth_dkim_verify *dkim;
    bool want_dmarc;
    struct auth_from from; /* the author domains of the message */
    struct auth_dmarc *dmarc;
    struct question q[AUTH_DKIM_SIGS_MAX]; /* SPF and DMARC use q[0] */
    struct key_answer keys[AUTH_DKIM_SIGS_MAX];
};

static int64_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

static enum auth_dns_status status_of(enum deliver_dns_outcome o)
{
    switch (o) {
    case DELIVER_DNS_OK: return AUTH_DNS_OK;
    case DELIVER_DNS_NXDOMAIN: return AUTH_DNS_NXDOMAIN;
    case DELIVER_DNS_NO_HOST: return AUTH_DNS_NODATA;
    default: return AUTH_DNS_TEMPFAIL;
    }
}

struct deliver_authcheck *deliver_authcheck_new(struct event_base *base, const char *server,
                                                unsigned query_ms, char *err, size_t errcap)
{
    struct deliver_authcheck *a = calloc(1, sizeof *a);
    if (a == NULL || (a->cache = deliver_dnscache_new(DELIVER_AUTHCHECK_CACHE_ENTRIES)) == NULL) {
        snprintf(err, errcap, "out of memory");
        free(a);
        return NULL;
    }
    a->base = base;
    a->resolver = deliver_resolver_new(base, server, query_ms, err, errcap);
    if (a->resolver == NULL) {
        deliver_dnscache_free(a->cache);
        free(a);
        return NULL;
    }
    auth_dmarc_psl_load(); /* now, while the files can be read */
    return a;
}

static void stop_lookups(struct deliver_authcheck_run *run)
{
    for (size_t i = 0; i < AUTH_DKIM_SIGS_MAX; i++) {
        deliver_resolver_cancel(run->q[i].lookup);
        run->q[i].lookup = NULL;
    }
    run->waiting = 0;
}

void deliver_authcheck_free(struct deliver_authcheck *a)
{
    if (a == NULL)
        return;
    for (struct deliver_authcheck_run *run = a->runs; run != NULL; run = run->next) {
        stop_lookups(run);
        event_del(run->timer);
        event_del(run->done);
        run->a = NULL;
        run->step = STEP_IDLE;
    }
    deliver_resolver_free(a->resolver);
    deliver_dnscache_free(a->cache);
    free(a);
}

size_t deliver_authcheck_cached(const struct deliver_authcheck *a)
{
    return deliver_dnscache_count(a->cache);
}

/* ---- questions and answers ---- */

static void keep_key(struct deliver_authcheck_run *run, size_t i, enum auth_dns_status st,
                     const char *const *records, const size_t *lens, size_t n)
{
    struct key_answer *k = &run->keys[i];
    free(k->record);
    *k = (struct key_answer){.st = st};
    if (n > 0 && (k->record = malloc(lens[0] + 1)) != NULL) {
        memcpy(k->record, records[0], lens[0]);
        k->record[lens[0]] = '\0';
        k->len = lens[0];
    }
}

/* Gives an answer to the evaluator of the step. */
static void feed(struct deliver_authcheck_run *run, const struct question *q, const char *name,
                 enum auth_dns_status st, const char *const *records, const size_t *lens,
                 size_t n)
{
    switch (run->step) {
    case STEP_SPF:
        auth_spf_answer(run->spf, name, (enum auth_dns_type)q->type, st, records, lens, n);
        break;
    case STEP_DKIM:
        keep_key(run, q->index, st, records, lens, n);
        auth_dkim_verify_key_answer(run->dkim, q->index, st, records, lens, n);
        break;
    case STEP_DMARC: auth_dmarc_answer(run->dmarc, name, st, records, lens, n); break;
    case STEP_IDLE: break;
    }
}

static void advance(struct deliver_authcheck_run *run);

static void on_answer(void *ctx, const struct deliver_records *res)
{
    struct question *q = ctx;
    struct deliver_authcheck_run *run = q->run;
    q->lookup = NULL;
    run->waiting--;
    enum auth_dns_status st = status_of(res->outcome);
    deliver_dnscache_put(run->a->cache, q->name, q->type, now_s(), res->ttl, st, res->records,
                         res->lens, res->n);
    feed(run, q, q->name, st, res->records, res->lens, res->n);
    advance(run);
}

/* Asks name of type for q: true when it was answered at once (from the cache, because the
 * step's time is up, or because DNS cannot carry the name: no such name), false when a
 * look-up is in flight. */
static bool ask(struct deliver_authcheck_run *run, struct question *q, const char *name,
                int type)
{
    q->type = type;
    size_t len = strlen(name);
    if (len >= sizeof q->name) {
        feed(run, q, name, AUTH_DNS_NXDOMAIN, NULL, NULL, 0);
        return true;
    }
    memcpy(q->name, name, len + 1);
    if (++run->asked > QUESTIONS_MAX)
        run->expired = true;
    struct deliver_dnscache_answer c;
    if (run->expired) {
        feed(run, q, q->name, AUTH_DNS_TEMPFAIL, NULL, NULL, 0);
        return true;
    }
    if (deliver_dnscache_get(run->a->cache, q->name, type, now_s(), &c)) {
        feed(run, q, q->name, c.status, c.records, c.lens, c.n);
        return true;
    }
    enum deliver_resolver_err e = deliver_resolver_lookup_records(run->a->resolver, q->name, type,
                                                                  on_answer, q, &q->lookup);
    if (e == DELIVER_RESOLVER_OK) {
        run->waiting++;
        return false;
    }
    q->lookup = NULL;
    feed(run, q, q->name, e == DELIVER_RESOLVER_ERR_NAME ? AUTH_DNS_NXDOMAIN : AUTH_DNS_TEMPFAIL,
         NULL, NULL, 0);
    return true;
}

/* ---- steps ---- */

static void begin_step(struct deliver_authcheck_run *run, enum step step)
{
    static const struct timeval limit = {DELIVER_AUTHCHECK_STEP_MS / 1000,
                                         (DELIVER_AUTHCHECK_STEP_MS % 1000) * 1000};
    run->step = step;
    run->expired = false;
    run->asked = 0;
    evtimer_add(run->timer, &limit);
}

static void finish(struct deliver_authcheck_run *run)
{
    static const struct timeval now = {0, 0};
    run->step = STEP_IDLE;
    event_del(run->timer);
    evtimer_add(run->done, &now);
}

/* DMARC once the keys are in: the author domains against the SPF and DKIM outcomes (no DKIM
 * verifier when the header had too many fields to verify). */
static bool begin_dmarc(struct deliver_authcheck_run *run)
{
    size_t n = auth_dkim_verify_count(run->dkim);
    struct auth_dmarc_dkim dk[AUTH_DKIM_SIGS_MAX];
    for (size_t i = 0; i < n && i < AUTH_DKIM_SIGS_MAX; i++) {
        const struct auth_dkim_sig_result *r = auth_dkim_verify_result(run->dkim, i);
        dk[i] = (struct auth_dmarc_dkim){r->domain, r->result == AUTH_DKIM_PASS};
    }
    const char *spf_domain = run->spf ? auth_spf_domain(run->spf) : "";
    bool spf_pass = run->spf && auth_spf_result(run->spf) == AUTH_SPF_PASS;
    const char *authors[AUTH_FROM_DOMAINS_MAX];
    size_t n_authors = run->from.status == AUTH_FROM_OK ? run->from.n : 0;
    for (size_t i = 0; i < n_authors; i++)
        authors[i] = run->from.domains[i];
    run->dmarc = auth_dmarc_new(authors, n_authors, spf_domain, spf_pass, dk,
                                n < AUTH_DKIM_SIGS_MAX ? n : AUTH_DKIM_SIGS_MAX);
    if (run->dmarc == NULL)
        return false;
    begin_step(run, STEP_DMARC);
    return true;
}

/* Runs the evaluator of the step on what it has: asks its next question, goes on to the next
 * step or finishes. Each pass answers a question or leaves one in flight; a step ends after
 * at most QUESTIONS_MAX questions. */
static void advance(struct deliver_authcheck_run *run)
{
    while (run->waiting == 0) {
        const char *name = NULL;
        enum auth_dns_type type = AUTH_DNS_TXT;
        switch (run->step) {
        case STEP_SPF:
            if (auth_spf_run(run->spf, &name, &type) == AUTH_SPF_DONE)
                return finish(run);
            break;
        case STEP_DKIM:
            if (!run->want_dmarc || !begin_dmarc(run))
                return finish(run);
            continue;
        case STEP_DMARC:
            if (auth_dmarc_run(run->dmarc, &name) == AUTH_DMARC_DONE)
                return finish(run);
            break;
        case STEP_IDLE: return;
        }
        if (!ask(run, &run->q[0], name, (int)type))
            return;
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct deliver_authcheck_run *run = arg;
    (void)fd;
    (void)what;
    run->expired = true;
    for (size_t i = 0; i < AUTH_DKIM_SIGS_MAX; i++) {
        struct question *q = &run->q[i];
        if (q->lookup == NULL)
            continue;
        deliver_resolver_cancel(q->lookup);
        q->lookup = NULL;
        run->waiting--;
        feed(run, q, q->name, AUTH_DNS_TEMPFAIL, NULL, NULL, 0);
    }
    advance(run);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    struct deliver_authcheck_run *run = arg;
    (void)fd;
    (void)what;
    run->cb(run->ctx, run);
}

/* ---- runs ---- */

struct deliver_authcheck_run *deliver_authcheck_run_new(struct deliver_authcheck *a)
{
    struct deliver_authcheck_run *run = calloc(1, sizeof *run);
    if (run == NULL)
        return NULL;
    run->timer = evtimer_new(a->base, on_deadline, run);
    run->done = evtimer_new(a->base, on_done, run);
    if (run->timer == NULL || run->done == NULL) {
        if (run->timer)
            event_free(run->timer);
        if (run->done)
            event_free(run->done);
        free(run);
        return NULL;
    }
    run->a = a;
    run->from.status = AUTH_FROM_NONE;
    for (size_t i = 0; i < AUTH_DKIM_SIGS_MAX; i++)
        run->q[i] = (struct question){.run = run, .index = i};
    run->next = a->runs;
    if (run->next)
        run->next->prev = run;
    a->runs = run;
    return run;
}

void deliver_authcheck_run_free(struct deliver_authcheck_run *run)
{
    if (run == NULL)
        return;
    if (run->a != NULL) {
        stop_lookups(run);
        if (run->prev)
            run->prev->next = run->next;
        else
            run->a->runs = run->next;
        if (run->next)
            run->next->prev = run->prev;
    }
    event_free(run->timer);
    event_free(run->done);
    auth_spf_free(run->spf);
    auth_dkim_verify_free(run->dkim);
    auth_dmarc_free(run->dmarc);
    for (size_t i = 0; i < AUTH_DKIM_SIGS_MAX; i++)
        free(run->keys[i].record);
    free(run);
}

enum auth_err deliver_authcheck_spf(struct deliver_authcheck_run *run, const char *ip,
                                    const char *helo, const char *mail_from,
                                    const char *receiver, deliver_authcheck_cb *cb, void *ctx)
{
    if (run->a == NULL)
        return AUTH_ERR_NOMEM;
    auth_spf_free(run->spf);
    run->spf = auth_spf_new(ip, helo, mail_from, receiver, (long long)time(NULL));
    if (run->spf == NULL)
        return AUTH_ERR_SYNTAX;
    run->spf_helo = mail_from == NULL || mail_from[0] == '\0';
    run->cb = cb;
    run->ctx = ctx;
    begin_step(run, STEP_SPF);
    advance(run);
    return AUTH_OK;
}

enum auth_err deliver_authcheck_message(struct deliver_authcheck_run *run, const char *msg,
                                        size_t len, bool dmarc, deliver_authcheck_cb *cb,
                                        void *ctx)
{
    if (run->a == NULL)
        return AUTH_ERR_NOMEM;
    auth_dkim_verify_free(run->dkim);
    run->dkim = NULL;
    auth_dmarc_free(run->dmarc);
    run->dmarc = NULL;
    enum auth_err err = auth_dkim_verify_new(msg, len, (int64_t)time(NULL), &run->dkim);
    if (err != AUTH_OK && !(err == AUTH_ERR_TOO_BIG && dmarc))
        return err; /* too many fields to verify: DMARC is still judged, without DKIM */
    auth_from_authors(msg, len, &run->from);
    run->want_dmarc = dmarc;
    run->cb = cb;
    run->ctx = ctx;
    begin_step(run, STEP_DKIM);
    size_t n = auth_dkim_verify_count(run->dkim);
    for (size_t i = 0; i < n && i < AUTH_DKIM_SIGS_MAX; i++) {
        const char *name = auth_dkim_verify_key_query(run->dkim, i);
        if (name != NULL)
            ask(run, &run->q[i], name, AUTH_DNS_TXT);
    }
    advance(run);
    return AUTH_OK;
}

const struct auth_spf *deliver_authcheck_run_spf(const struct deliver_authcheck_run *run)
{
    return run->spf;
}

const struct auth_dkim_verify *deliver_authcheck_run_dkim(const struct deliver_authcheck_run *run)
{
    return run->dkim;
}

const struct auth_dmarc *deliver_authcheck_run_dmarc(const struct deliver_authcheck_run *run)
{
    return run->dmarc;
}

const struct auth_from *deliver_authcheck_run_from(const struct deliver_authcheck_run *run)
{
    return &run->from;
}

bool deliver_authcheck_run_spf_helo(const struct deliver_authcheck_run *run)
{
    return run->spf_helo;
}

void deliver_authcheck_run_key(const struct deliver_authcheck_run *run, size_t i,
                               enum auth_dns_status *st, const char **record, size_t *len)
{
    const struct key_answer *k = i < AUTH_DKIM_SIGS_MAX ? &run->keys[i] : NULL;
    *st = k ? k->st : AUTH_DNS_TEMPFAIL;
    *record = k ? k->record : NULL;
    *len = k ? k->len : 0;
}
