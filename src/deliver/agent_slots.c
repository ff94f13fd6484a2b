/* deliver/agent_slots.c — who gets an outbound connection: each destination's concurrency
 * (destination.c), one global cap on the agent's connections (max_outbound_connections) that
 * no destination can fill alone, and the deliveries waiting for a connection. A destination
 * holds at most its share of the waiters, so a slow one never takes the room the others need
 * to wait; when every connection is taken, a freed one goes first to the waiting destination
 * that holds the fewest, and a destination holding more than another waiting one gives its
 * connection back after each message instead of carrying the next. */
#include <event2/event.h>
#include <string.h>

#include "deliver/agent_internal.h"

void deliver_agent_set_max_connections(struct deliver_agent *a, unsigned n)
{
    a->out_max = n > 0 ? n : 1;
}

unsigned deliver_agent_max_connections(const struct deliver_agent *a)
{
    return a->out_max;
}

void deliver_agent_outbound_use(const struct deliver_agent *a, struct deliver_agent_outbound *o)
{
    *o = (struct deliver_agent_outbound){
        .open = a->out_open, .max = a->out_max, .waiting = a->n_waiters};
}

static unsigned global_room(const struct deliver_agent *a)
{
    unsigned busy = a->out_open + a->out_woken;
    return busy < a->out_max ? a->out_max - busy : 0;
}

enum deliver_agent_slot deliver_agent_slot_take(struct deliver_agent *a,
                                                struct deliver_destination *dst, int64_t now)
{
    if (!deliver_destination_may_connect(dst, now))
        return AGENT_SLOT_DEST_FULL;
    if (global_room(a) == 0)
        return AGENT_SLOT_GLOBAL_FULL;
    deliver_destination_acquire(dst, now);
    a->out_open++;
    return AGENT_SLOT_TAKEN;
}

/* ---- the waiters ---- */

static unsigned waiter_share(const struct deliver_destination *dst)
{
    unsigned share = 2 * dst->limit;
    return share > AGENT_WAITERS_PER_DEST_MIN ? share : AGENT_WAITERS_PER_DEST_MIN;
}

bool deliver_agent_may_wait(const struct deliver_agent *a, const struct deliver_destination *dst)
{
    return a->n_waiters < AGENT_WAITERS_MAX && dst->waiting < waiter_share(dst);
}

static struct deliver_destination *dest_of(struct deliver_agent *a, const struct delivery *d)
{
    return deliver_destination_table_find(a->dests, d->dest);
}

/* A woken delivery no longer counts as holding a place about to be taken. */
static void drop_reservation(struct deliver_agent *a, struct delivery *d)
{
    if (!d->reserved)
        return;
    d->reserved = false;
    a->out_woken--;
}

void deliver_agent_unwait(struct deliver_agent *a, struct delivery *d)
{
    drop_reservation(a, d);
    if (!d->waiting)
        return;
    if (d->wprev)
        d->wprev->wnext = d->wnext;
    else
        a->waiters = d->wnext;
    if (d->wnext)
        d->wnext->wprev = d->wprev;
    else
        a->waiters_tail = d->wprev;
    d->wprev = d->wnext = NULL;
    d->waiting = false;
    a->n_waiters--;
    if (d->waiting_global)
        a->n_waiting_global--;
    d->waiting_global = false;
    struct deliver_destination *dst = dest_of(a, d);
    if (dst != NULL && dst->waiting > 0)
        dst->waiting--;
    /* its room goes to the next blocked job of its destination, else of any */
    if (deliver_agent_unblock_dest(a, d->dest, 1) == 0)
        deliver_agent_unblock(a, 1);
}

static void woken(evutil_socket_t fd, short what, void *arg)
{
    struct delivery *d = arg;
    (void)fd;
    (void)what;
    drop_reservation(d->at->job->a, d);
    deliver_agent_delivery_go(d);
}

bool deliver_agent_wait_for_connection(struct delivery *d, struct deliver_destination *dst,
                                       bool global)
{
    struct deliver_agent *a = d->at->job->a;
    if (d->wake == NULL && (d->wake = evtimer_new(a->o.base, woken, d)) == NULL)
        return false;
    d->wprev = a->waiters_tail;
    d->wnext = NULL;
    if (a->waiters_tail)
        a->waiters_tail->wnext = d;
    else
        a->waiters = d;
    a->waiters_tail = d;
    d->waiting = true;
    d->waiting_global = global;
    a->n_waiters++;
    a->n_waiting_global += global;
    dst->waiting++;
    if (global)
        deliver_agent_idle_close_one(a); /* an idle connection gives its place to work */
    return true;
}

struct delivery *deliver_agent_take_waiter(struct deliver_agent *a, const char *dest)
{
    for (struct delivery *w = a->waiters; w != NULL; w = w->wnext) {
        if (strcmp(w->dest, dest) == 0) {
            deliver_agent_unwait(a, w);
            return w;
        }
    }
    return NULL;
}

/* w tries again from the loop; reserve: it holds one of the free places until then. */
static void wake(struct deliver_agent *a, struct delivery *w, bool reserve)
{
    deliver_agent_unwait(a, w);
    if (reserve) {
        w->reserved = true;
        a->out_woken++;
    }
    event_active(w->wake, EV_TIMEOUT, 0);
}

/* w waits on for a global place: its destination has room, the agent has none. Only a
 * given-back place wakes it then, as none of its destination's connections may be open. */
static void wait_global(struct deliver_agent *a, struct delivery *w)
{
    if (w->waiting_global)
        return;
    w->waiting_global = true;
    a->n_waiting_global++;
}

void deliver_agent_wake_waiters(struct deliver_agent *a, const struct deliver_destination *dst)
{
    int64_t now = deliver_agent_now();
    bool backing_off = dst->backoff_until > now;
    unsigned room = dst->in_use < dst->limit ? dst->limit - dst->in_use : 0;
    unsigned global = global_room(a);
    struct delivery *next;
    for (struct delivery *w = a->waiters; w != NULL && (backing_off || room > 0); w = next) {
        next = w->wnext; /* wake takes w off the list, and nothing else */
        if (strcmp(w->dest, dst->name) != 0)
            continue;
        if (backing_off) {
            wake(a, w, false); /* to defer */
            continue;
        }
        if (global == 0) {
            /* Every one of them, not only as many as dst has room for: dst may have no
             * connection open nor coming, and then nothing else would ever wake those
             * beyond its room. A place given back wakes one whose destination may connect
             * (neediest_waiter), so the rest wait on while dst is full. */
            wait_global(a, w);
            continue;
        }
        room--;
        global--;
        wake(a, w, true);
    }
}

/* The waiter for a global place whose destination holds the fewest connections and may open
 * one; NULL when none may. */
static struct delivery *neediest_waiter(struct deliver_agent *a, int64_t now)
{
    struct delivery *best = NULL;
    unsigned best_use = 0;
    for (struct delivery *w = a->waiters; w != NULL; w = w->wnext) {
        if (!w->waiting_global)
            continue;
        const struct deliver_destination *dst = dest_of(a, w);
        if (dst == NULL || !deliver_destination_may_connect(dst, now))
            continue;
        if (best == NULL || dst->in_use < best_use) {
            best = w;
            best_use = dst->in_use;
        }
    }
    return best;
}

void deliver_agent_slot_release(struct deliver_agent *a, const char *dest)
{
    if (a->out_open > 0)
        a->out_open--;
    struct deliver_destination *dst = deliver_destination_table_find(a->dests, dest);
    if (dst != NULL)
        deliver_destination_release(dst);
    /* The place first to the destination that holds the fewest, then to dest's own. */
    int64_t now = deliver_agent_now();
    struct delivery *w;
    if (a->n_waiting_global > 0 && global_room(a) > 0 && (w = neediest_waiter(a, now)) != NULL)
        wake(a, w, true);
    if (dst != NULL)
        deliver_agent_wake_waiters(a, dst);
    size_t room = AGENT_WAITERS_MAX - a->n_waiters;
    if (room > AGENT_UNBLOCK_PER_RELEASE)
        room = AGENT_UNBLOCK_PER_RELEASE;
    deliver_agent_unblock(a, room - deliver_agent_unblock_dest(a, dest, room));
}

void deliver_agent_dest_release(struct delivery *d)
{
    if (!d->acquired)
        return;
    d->acquired = false;
    deliver_agent_slot_release(d->at->job->a, d->dest);
}

bool deliver_agent_fair_to_keep(struct deliver_agent *a, const struct deliver_destination *dst)
{
    if (a->n_waiting_global == 0 || global_room(a) > 0)
        return true;
    int64_t now = deliver_agent_now();
    const struct delivery *w = neediest_waiter(a, now);
    if (w == NULL)
        return true;
    const struct deliver_destination *other = dest_of(a, w);
    return other == dst || other->in_use >= dst->in_use;
}
