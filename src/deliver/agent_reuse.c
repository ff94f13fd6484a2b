/* deliver/agent_reuse.c — connection reuse: a connection that has delivered a message carries
 * the next one waiting for its destination, or waits idle a few seconds for one
 * (connection_idle_timeout), so a destination with many messages gets them over few
 * connections, transaction after transaction (RFC 5321 §3.3: a finished transaction leaves the
 * session ready for the next MAIL; the client session sends RSET after one that failed). */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/agent_internal.h"

/* d's connection (d holds its destination's slot) into c; d no longer holds either. */
static void carry_from(struct conn_carry *c, struct delivery *d)
{
    c->out = d->out;
    d->out = NULL;
    c->cand = d->cand[d->cur];
    memcpy(c->relay, d->relay, sizeof c->relay);
    memcpy(c->host, d->host, sizeof c->host);
    c->conn_messages = d->conn_messages;
    c->mailmax = d->mailmax;
    c->relay_reports = d->relay_reports;
    d->acquired = false;
}

/* The connection of c to w, with w's message sent on it; w holds the slot from now on. */
static void carry_into(struct delivery *w, struct conn_carry *c)
{
    w->out = c->out;
    c->out = NULL;
    deliver_outbound_set_owner(w->out, &deliver_agent_client_cb, deliver_agent_delivery_finished,
                               w);
    w->acquired = true;
    w->ready = true;
    w->reused = true;
    w->answered = false;
    w->conn_messages = c->conn_messages;
    w->mailmax = c->mailmax;
    w->relay_reports = c->relay_reports;
    w->cand[0] = c->cand;
    w->n_cand = 1;
    w->cur = 0;
    memcpy(w->relay, c->relay, sizeof w->relay);
    memcpy(w->host, c->host, sizeof w->host);
    deliver_agent_delivery_prepare(w);
    smtp_client_send(deliver_outbound_session(w->out), &w->msg, 0);
    deliver_outbound_wake(w->out); /* outside its own callbacks nobody else sends it */
}

/* ---- idle connections ---- */

static void idle_unlink(struct idle_conn *ic)
{
    struct deliver_agent *a = ic->a;
    if (ic->prev)
        ic->prev->next = ic->next;
    else
        a->idle = ic->next;
    if (ic->next)
        ic->next->prev = ic->prev;
    ic->prev = ic->next = NULL;
}

static void idle_free(struct idle_conn *ic)
{
    if (ic->timer)
        event_free(ic->timer);
    deliver_outbound_free(ic->c.out);
    free(ic);
}

/* The connection is closed (timed out, QUIT answered, or the peer went away): its slot is
 * free for others. */
static void idle_finished(void *ctx)
{
    struct idle_conn *ic = ctx;
    struct deliver_agent *a = ic->a;
    char dest[sizeof ic->dest];
    memcpy(dest, ic->dest, sizeof dest);
    idle_unlink(ic);
    idle_free(ic);
    deliver_agent_slot_release(a, dest);
}

static void idle_closed(void *ctx, const struct smtp_client_result *why)
{
    struct idle_conn *ic = ctx;
    (void)why;
    ic->closing = true;
}

static const struct smtp_client_callbacks idle_cb = {.closed = idle_closed};

static void idle_quit(struct idle_conn *ic)
{
    ic->closing = true;
    smtp_client_quit(deliver_outbound_session(ic->c.out));
    deliver_outbound_wake(ic->c.out);
}

static void idle_expired(evutil_socket_t fd, short what, void *arg)
{
    struct idle_conn *ic = arg;
    (void)fd;
    (void)what;
    if (!ic->closing)
        idle_quit(ic);
}

bool deliver_agent_idle_close_one(struct deliver_agent *a)
{
    for (struct idle_conn *ic = a->idle; ic != NULL; ic = ic->next) {
        if (!ic->closing) {
            idle_quit(ic);
            return true;
        }
    }
    return false;
}

/* Keeps d's connection for the next message to its destination; false when idling is off or
 * out of memory. */
static bool park(struct delivery *d)
{
    struct deliver_agent *a = d->at->job->a;
    if (a->o.idle_timeout_s == 0 || a->n_waiting_global > 0) /* its place is wanted now */
        return false;
    struct idle_conn *ic = calloc(1, sizeof *ic);
    if (ic == NULL || (ic->timer = evtimer_new(a->o.base, idle_expired, ic)) == NULL) {
        free(ic);
        return false;
    }
    ic->a = a;
    memcpy(ic->dest, d->dest, sizeof ic->dest);
    carry_from(&ic->c, d);
    deliver_outbound_set_owner(ic->c.out, &idle_cb, idle_finished, ic);
    struct timeval tv = {.tv_sec = (time_t)a->o.idle_timeout_s};
    evtimer_add(ic->timer, &tv);
    ic->next = a->idle;
    if (a->idle)
        a->idle->prev = ic;
    a->idle = ic;
    /* Its jobs blocked for want of waiter room may have it now. */
    deliver_agent_unblock_dest(a, ic->dest, AGENT_UNBLOCK_PER_RELEASE);
    return true;
}

bool deliver_agent_take_idle(struct delivery *d)
{
    struct deliver_agent *a = d->at->job->a;
    for (struct idle_conn *ic = a->idle; ic != NULL; ic = ic->next) {
        if (ic->closing || strcmp(ic->dest, d->dest) != 0 ||
            smtp_client_done(deliver_outbound_session(ic->c.out)))
            continue;
        idle_unlink(ic);
        carry_into(d, &ic->c);
        idle_free(ic);
        return true;
    }
    return false;
}

void deliver_agent_idle_free_all(struct deliver_agent *a)
{
    while (a->idle != NULL) {
        struct idle_conn *ic = a->idle;
        idle_unlink(ic);
        struct deliver_destination *dst = deliver_destination_table_find(a->dests, ic->dest);
        if (dst != NULL)
            deliver_destination_release(dst);
        if (a->out_open > 0)
            a->out_open--;
        idle_free(ic);
    }
}

/* ---- after a message ---- */

/* May d's connection carry another message now? Not when a destination holding fewer
 * connections waits for a place (agent_slots.c). */
static bool reusable(struct delivery *d, const struct deliver_destination *dst)
{
    return d->acquired && dst != NULL && !smtp_client_done(deliver_outbound_session(d->out)) &&
           dst->backoff_until <= deliver_agent_now() &&
           deliver_destination_may_send(dst, d->conn_messages) &&
           (d->mailmax == 0 || d->conn_messages < d->mailmax) &&
           deliver_agent_fair_to_keep(d->at->job->a, dst);
}

bool deliver_agent_hand_over(struct delivery *d)
{
    struct deliver_agent *a = d->at->job->a;
    if (!reusable(d, deliver_destination_table_find(a->dests, d->dest)))
        return false;
    struct delivery *w = deliver_agent_take_waiter(a, d->dest);
    if (w == NULL)
        /* A server that just refused a message or one of its recipients is not worth
         * waiting on: the next message, or the retry, opens a connection of its own (which a
         * greylisting or load-balanced server may route elsewhere). */
        return d->last_sent && park(d);
    struct conn_carry c;
    carry_from(&c, d);
    carry_into(w, &c);
    return true;
}
