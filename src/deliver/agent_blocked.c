/* deliver/agent_blocked.c — jobs postponed for want of room among the waiters (no file open,
 * no body in memory), kept in one FIFO of all of them and one per destination that had no
 * room. Room at a destination (a waiter taken, a connection given back or left idle) wakes
 * that destination's jobs first, so a destination whose jobs stand behind a slow one's never
 * runs dry while its connections idle; room anywhere wakes the oldest jobs whose destination
 * has room, passing over (without reading their files) those whose destination still has
 * none. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "deliver/agent_internal.h"

struct blocked_queue {
    struct blocked_queue *next; /* in its bucket */
    struct job_list jobs;
    char dest[DELIVER_DESTINATION_NAME_MAX + 1];
};

/* ---- lists of jobs through one of their links (its offset in struct job) ---- */

static struct job_link *link_of(struct job *j, size_t link)
{
    return (struct job_link *)(void *)((char *)j + link);
}

static void list_push(struct job_list *l, struct job *j, size_t link)
{
    struct job_link *jl = link_of(j, link);
    jl->prev = l->tail;
    jl->next = NULL;
    if (l->tail)
        link_of(l->tail, link)->next = j;
    else
        l->head = j;
    l->tail = j;
}

static void list_remove(struct job_list *l, struct job *j, size_t link)
{
    struct job_link *jl = link_of(j, link);
    if (jl->prev)
        link_of(jl->prev, link)->next = jl->next;
    else
        l->head = jl->next;
    if (jl->next)
        link_of(jl->next, link)->prev = jl->prev;
    else
        l->tail = jl->prev;
    jl->prev = jl->next = NULL;
}

#define IN_ALL offsetof(struct job, in_all)
#define IN_DEST offsetof(struct job, in_dest)

/* ---- the queues by destination ---- */

static struct blocked_queue **bucket(struct deliver_agent *a, const char *dest)
{
    return &a->blocked_by_dest[base_fnv1a_str(BASE_FNV1A_OFFSET, dest) % AGENT_BLOCKED_BUCKETS];
}

/* dest's queue; created when create (NULL when out of memory or absent). */
static struct blocked_queue *queue_of(struct deliver_agent *a, const char *dest, bool create)
{
    struct blocked_queue **b = bucket(a, dest);
    for (struct blocked_queue *q = *b; q != NULL; q = q->next)
        if (strcmp(q->dest, dest) == 0)
            return q;
    if (!create)
        return NULL;
    struct blocked_queue *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    memcpy(q->dest, dest, sizeof q->dest);
    q->next = *b;
    *b = q;
    return q;
}

static void queue_drop(struct deliver_agent *a, struct blocked_queue *q)
{
    struct blocked_queue **link = bucket(a, q->dest);
    while (*link != q)
        link = &(*link)->next;
    *link = q->next;
    free(q);
}

/* ---- blocking ---- */

void deliver_agent_unblock_job(struct job *j)
{
    struct deliver_agent *a = j->a;
    if (!j->blocked)
        return;
    list_remove(&a->blocked, j, IN_ALL);
    struct blocked_queue *q = j->queue;
    if (q != NULL) {
        list_remove(&q->jobs, j, IN_DEST);
        if (q->jobs.head == NULL)
            queue_drop(a, q);
    }
    j->queue = NULL;
    j->blocked = false;
}

void deliver_agent_block(struct job *j)
{
    struct deliver_agent *a = j->a;
    if (j->blocked)
        return;
    list_push(&a->blocked, j, IN_ALL);
    j->blocked = true;
    /* Out of memory for its queue: the FIFO of all still holds it. */
    j->queue = queue_of(a, j->blocked_on, true);
    if (j->queue != NULL)
        list_push(&j->queue->jobs, j, IN_DEST);
}

/* Has the destination that postponed j room for a waiter now? */
static bool room_for(struct deliver_agent *a, const struct job *j)
{
    const struct deliver_destination *dst = deliver_destination_table_find(a->dests,
                                                                           j->blocked_on);
    return dst == NULL || deliver_agent_may_wait(a, dst);
}

static void go(struct job *j)
{
    deliver_agent_unblock_job(j);
    deliver_agent_job_schedule(j, 0);
}

void deliver_agent_unblock(struct deliver_agent *a, size_t n)
{
    for (size_t passed = 0; n > 0 && a->blocked.head != NULL && passed < AGENT_UNBLOCK_SCAN;) {
        struct job *j = a->blocked.head;
        if (!room_for(a, j)) {
            deliver_agent_unblock_job(j);
            deliver_agent_block(j); /* to the back, its file unread */
            passed++;
            continue;
        }
        go(j);
        n--;
    }
}

size_t deliver_agent_unblock_dest(struct deliver_agent *a, const char *dest, size_t n)
{
    size_t done = 0;
    struct blocked_queue *q = queue_of(a, dest, false);
    while (done < n && q != NULL && room_for(a, q->jobs.head)) {
        struct job *j = q->jobs.head;
        if (j->in_dest.next == NULL)
            q = NULL; /* freed with its last job */
        go(j);
        done++;
    }
    return done;
}
