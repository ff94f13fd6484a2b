/* base/fifo.h — an intrusive singly linked FIFO: the caller embeds a struct base_fifo_node in
 * its own struct, so queueing never allocates and never fails. Not thread-safe by itself. */
#ifndef CLEARMTA_BASE_FIFO_H
#define CLEARMTA_BASE_FIFO_H

#include <stdbool.h>
#include <stddef.h>

struct base_fifo_node {
    struct base_fifo_node *next; /* NULL at the tail */
};

struct base_fifo {
    struct base_fifo_node *head;
    struct base_fifo_node **tail; /* &head when empty */
};

/* The struct of type `type` whose member `member` is the node at ptr. */
#define BASE_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Makes f empty (what it held is forgotten, not freed). */
void base_fifo_init(struct base_fifo *f);

bool base_fifo_empty(const struct base_fifo *f);

/* Adds n at the tail; n must not be in any FIFO. */
void base_fifo_push(struct base_fifo *f, struct base_fifo_node *n);

/* Removes and returns the head; NULL when f is empty. */
struct base_fifo_node *base_fifo_pop(struct base_fifo *f);

/* The head without removing it; NULL when f is empty. */
struct base_fifo_node *base_fifo_peek(const struct base_fifo *f);

/* Moves every node of from, in order, to the tail of to; from ends up empty. */
void base_fifo_append(struct base_fifo *to, struct base_fifo *from);

#endif
