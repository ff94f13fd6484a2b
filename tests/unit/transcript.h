/* tests/unit/transcript.h — what the protocol transcript tests share: a growing text buffer
 * for replies, events and stored bytes, and a fixed-seed generator for random input splits. */
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
