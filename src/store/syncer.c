/* store/syncer.c — the shared syncfs (see syncer.h). Counts syncs started and finished: a
 * caller needs the one numbered started+1 at its arrival (one already running may have begun
 * before its writes), and takes any later one too. A step waiting for sync N runs at the start
 * of sync N+1 (or later), on the thread that starts it, and its caller waits for that sync. */
#include "store/syncer.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

struct store_syncer {
    int fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t started, done; /* under mu */
    bool running;           /* under mu */
    int last_err;           /* errno of sync number done, under mu */
    struct store_syncer_step *steps; /* waiting to run, under mu */
};

struct store_syncer *store_syncer_new(int fd)
{
    struct store_syncer *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->fd = fd;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    return s;
}

void store_syncer_free(struct store_syncer *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* Takes the steps whose first sync is done (they run before sync number mine). Under mu. */
static struct store_syncer_step *take_steps(struct store_syncer *s, uint64_t mine)
{
    struct store_syncer_step *ready = NULL, **pp = &s->steps;
    while (*pp != NULL) {
        struct store_syncer_step *st = *pp;
        if (st->after < mine) {
            *pp = st->next;
            st->ran_in = mine;
            st->next = ready;
            ready = st;
        } else {
            pp = &st->next;
        }
    }
    return ready;
}

/* Runs the next sync, and the steps due before it. Called and returns with mu held. */
static void run_sync(struct store_syncer *s, enum store_fault_op op)
{
    s->running = true;
    uint64_t mine = ++s->started;
    struct store_syncer_step *ready = take_steps(s, mine);
    pthread_mutex_unlock(&s->mu);
    for (struct store_syncer_step *st = ready; st != NULL; st = st->next)
        st->run(st->ctx, st->data_err);
    int e = store_io_syncfs(op, s->fd);
    pthread_mutex_lock(&s->mu);
    s->running = false;
    s->done = mine;
    s->last_err = e;
    for (struct store_syncer_step *st = ready; st != NULL; st = st->next)
        st->sync_err = e;
    for (struct store_syncer_step *st = s->steps; st != NULL; st = st->next)
        if (st->after == mine)
            st->data_err = e;
    pthread_cond_broadcast(&s->cv);
}

int store_syncer_sync(struct store_syncer *s, enum store_fault_op op, bool *ran)
{
    *ran = false;
    pthread_mutex_lock(&s->mu);
    uint64_t target = s->started + 1;
    while (s->done < target) {
        if (s->running) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        run_sync(s, op);
        *ran = true;
    }
    int e = s->last_err;
    pthread_mutex_unlock(&s->mu);
    return e;
}

int store_syncer_sync_twice(struct store_syncer *s, enum store_fault_op op,
                            struct store_syncer_step *step, unsigned *syncs)
{
    *syncs = 0;
    pthread_mutex_lock(&s->mu);
    step->after = s->started + 1;
    step->ran_in = 0;
    step->data_err = 0;
    step->sync_err = 0;
    step->next = s->steps;
    s->steps = step;
    while (step->ran_in == 0 || s->done < step->ran_in) {
        if (s->running) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        run_sync(s, op);
        (*syncs)++;
    }
    int e = step->sync_err;
    pthread_mutex_unlock(&s->mu);
    return e;
}
