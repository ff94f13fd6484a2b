/* store/lazysync.c — a thread that runs syncfs(2) when asked (see lazysync.h): a request sets a
 * flag and wakes it; it clears the flag before each syncfs, so a request made during one gets
 * the next. Descriptors handed over for closing are closed by the thread first, in a batch. */
#include "store/lazysync.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/fault.h"

struct store_lazysync {
    int fd;
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool asked, stopping; /* under mu */
    int *to_close;        /* under mu: descriptors the thread closes, n_close of cap_close */
    size_t n_close, cap_close;
    atomic_uint_fast64_t syncs;
};

/* Closes as many descriptors as were handed over when it began, so that a steady stream of
 * them never holds a sync back; called with mu held, returns with it held. */
static void close_handed(struct store_lazysync *s)
{
    for (size_t todo = s->n_close; todo > 0 && s->n_close > 0;) {
        int batch[64];
        size_t n = s->n_close < 64 ? s->n_close : 64;
        n = n < todo ? n : todo;
        todo -= n;
        s->n_close -= n;
        memcpy(batch, s->to_close + s->n_close, n * sizeof *batch);
        pthread_mutex_unlock(&s->mu);
        for (size_t i = 0; i < n; i++)
            close(batch[i]);
        pthread_mutex_lock(&s->mu);
    }
}

static void *lazysync_main(void *arg)
{
    struct store_lazysync *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->asked && !s->stopping && s->n_close == 0)
            pthread_cond_wait(&s->cv, &s->mu);
        close_handed(s);
        if (!s->asked && s->stopping && s->n_close == 0)
            break; /* stopping, nothing left to close or sync */
        if (!s->asked)
            continue;
        s->asked = false;
        pthread_mutex_unlock(&s->mu);
        int e = store_io_syncfs(STORE_FAULT_SYNC, s->fd);
        atomic_fetch_add(&s->syncs, 1);
        if (e != 0 && s->log != NULL) {
            char line[160], eb[96];
            /* A truncated line is still worth logging; the bound only protects the buffer. */
            (void)snprintf(line, sizeof line,
                           "queue sync of delivery outcomes failed: %s (a crash may repeat "
                           "deliveries)", strerror_r(e, eb, sizeof eb));
            s->log(s->log_ctx, line);
        }
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

enum store_err store_lazysync_new(int fd, void (*log)(void *ctx, const char *line),
                                  void *log_ctx, struct store_lazysync **out)
{
    *out = NULL;
    struct store_lazysync *s = calloc(1, sizeof *s);
    if (s == NULL)
        return STORE_ERR_NOMEM;
    s->fd = fd;
    s->log = log;
    s->log_ctx = log_ctx;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, lazysync_main, s) != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return STORE_ERR_IO;
    }
    *out = s;
    return STORE_OK;
}

void store_lazysync_request(struct store_lazysync *s)
{
    pthread_mutex_lock(&s->mu);
    s->asked = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void store_lazysync_close(struct store_lazysync *s, int fd)
{
    pthread_mutex_lock(&s->mu);
    if (s->n_close == s->cap_close) {
        size_t cap = s->cap_close ? 2 * s->cap_close : 64;
        int *grown = reallocarray(s->to_close, cap, sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&s->mu);
            close(fd); /* out of memory: the caller's thread pays for it */
            return;
        }
        s->to_close = grown;
        s->cap_close = cap;
    }
    s->to_close[s->n_close++] = fd;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

uint64_t store_lazysync_count(struct store_lazysync *s) { return atomic_load(&s->syncs); }

void store_lazysync_free(struct store_lazysync *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->to_close);
    free(s);
}
