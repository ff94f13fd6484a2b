/* base/fifo.c — the intrusive FIFO of fifo.h: a head pointer and a pointer to the last link,
 * so push, pop and append are O(1) with no special case for the first node. */
#include "base/fifo.h"

void base_fifo_init(struct base_fifo *f)
{
    f->head = NULL;
    f->tail = &f->head;
}

bool base_fifo_empty(const struct base_fifo *f)
{
    return f->head == NULL;
}

void base_fifo_push(struct base_fifo *f, struct base_fifo_node *n)
{
    n->next = NULL;
    *f->tail = n;
    f->tail = &n->next;
}

struct base_fifo_node *base_fifo_pop(struct base_fifo *f)
{
    struct base_fifo_node *n = f->head;
    if (n != NULL) {
        f->head = n->next;
        if (f->head == NULL)
            f->tail = &f->head;
        n->next = NULL;
    }
    return n;
}

struct base_fifo_node *base_fifo_peek(const struct base_fifo *f)
{
    return f->head;
}

void base_fifo_append(struct base_fifo *to, struct base_fifo *from)
{
    if (from->head == NULL)
        return;
    *to->tail = from->head;
    to->tail = from->tail;
    base_fifo_init(from);
}
