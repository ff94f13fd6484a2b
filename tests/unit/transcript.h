/* tests/unit/transcript.h — what the protocol transcript tests share: a growing text buffer
 * for replies, events and stored bytes, dialog lines made from it, and a fixed-seed generator
 * for random input splits. */
#ifndef CLEARMTA_TEST_TRANSCRIPT_H
#define CLEARMTA_TEST_TRANSCRIPT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

struct text {
    char *p;
    size_t len, cap;
};

static inline void text_add(struct text *t, const char *p, size_t n)
{
    if (t->cap - t->len < n + 1) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap - t->len < n + 1)
            cap *= 2;
        char *q = realloc(t->p, cap);
        assert_non_null(q);
        t->p = q;
        t->cap = cap;
    }
    if (n > 0)
        memcpy(t->p + t->len, p, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static inline const char *text_str(struct text *t)
{
    text_add(t, "", 0);
    return t->p;
}

/* Appends p[0..n) to log line by line, each line with prefix and without its CR: a dialog
 * ("C: …", "S: …") in the order things happened. */
static inline void text_add_lines(struct text *log, const char *prefix, const char *p, size_t n)
{
    while (n > 0) {
        const char *lf = memchr(p, '\n', n);
        size_t len = lf ? (size_t)(lf - p) : n, used = lf ? len + 1 : n;
        if (len > 0 && p[len - 1] == '\r')
            len--;
        text_add(log, prefix, strlen(prefix));
        text_add(log, p, len);
        text_add(log, "\n", 1);
        p += used;
        n -= used;
    }
}

/* A dialog as text lines, one input at a time: the input ("C: …" for a server session, "S: …"
 * for a client), the events it caused (indented), then the session's output. */
struct dialog {
    struct text *events, *out;          /* what the test's fake collects */
    const char *in_prefix, *out_prefix; /* "C: " and "S: ", or the other way round */
    struct text log;
    struct text in;                     /* every input, concatenated: to replay it */
    size_t events_seen, out_seen;
};

/* Logs what came to the events, then to the output, since the last call. */
static inline void dialog_after(struct dialog *d)
{
    text_add_lines(&d->log, "   ", text_str(d->events) + d->events_seen,
                   d->events->len - d->events_seen);
    d->events_seen = d->events->len;
    text_add_lines(&d->log, d->out_prefix, text_str(d->out) + d->out_seen,
                   d->out->len - d->out_seen);
    d->out_seen = d->out->len;
}

/* Logs input, has step feed it to the session (ctx: the test's fake), then logs the result. */
static inline void dialog_step(struct dialog *d, const char *input,
                               void (*step)(void *ctx, const char *input), void *ctx)
{
    text_add_lines(&d->log, d->in_prefix, input, strlen(input));
    text_add(&d->in, input, strlen(input));
    step(ctx, input);
    dialog_after(d);
}

/* dialog_step for each of the n inputs, in order. */
static inline void dialog_play(struct dialog *d, const char *const *inputs, size_t n,
                               void (*step)(void *ctx, const char *input), void *ctx)
{
    for (size_t i = 0; i < n; i++)
        dialog_step(d, inputs[i], step, ctx);
}

static inline void dialog_free(struct dialog *d)
{
    free(d->log.p);
    free(d->in.p);
}

static inline uint32_t next_random(uint32_t *state)
{
    uint32_t x = *state; /* xorshift32: fixed seeds give reproducible splits */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

#endif
