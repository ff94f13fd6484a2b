/* store/syncer.c — the shared syncfs (see syncer.h). Counts syncs started and finished: a
 * caller needs the one numbered started+1 at its arrival (one already running may have begun
 * before its writes), and takes any later one too. */
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
        s->running = true;
        uint64_t mine = ++s->started;
        pthread_mutex_unlock(&s->mu);
        int e = store_io_syncfs(op, s->fd);
        *ran = true;
        pthread_mutex_lock(&s->mu);
        s->running = false;
        s->done = mine;
        s->last_err = e;
        pthread_cond_broadcast(&s->cv);
    }
    int e = s->last_err;
    pthread_mutex_unlock(&s->mu);
    return e;
}
