/* fuzz/fuzz_queue_file.c — libFuzzer target for the queue file header parser (store/queue_file.c).
 * Input: the bytes of a queue file. Whatever parses must format again and parse back to the same
 * envelope: the writer and the parser agree on every value they accept. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/queue_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int str_differs(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a != b;
    return strcmp(a, b) != 0;
}

static int env_differs(const struct store_envelope *a, const struct store_envelope *b)
{
    if (str_differs(a->sender, b->sender) || a->n_rcpts != b->n_rcpts ||
        str_differs(a->envid, b->envid) || a->ret != b->ret || a->body != b->body ||
        a->smtputf8 != b->smtputf8 || str_differs(a->client_addr, b->client_addr) ||
        str_differs(a->helo, b->helo) || str_differs(a->auth_user, b->auth_user) ||
        a->arrival != b->arrival)
        return 1;
    for (size_t i = 0; i < a->n_rcpts; i++) {
        const struct store_rcpt *x = &a->rcpts[i], *y = &b->rcpts[i];
        if (str_differs(x->address, y->address) || str_differs(x->local_user, y->local_user) ||
            x->notify != y->notify || str_differs(x->orcpt, y->orcpt))
            return 1;
    }
    return 0;
}

static void check_round_trip(const struct store_qf *qf)
{
    char *text;
    size_t len, size_off;
    struct store_qf again;
    if (store_qf_format(&qf->env, qf->id, &text, &len, &size_off) != STORE_OK)
        abort(); /* the parser accepted what the writer refuses */
    if (store_qf_parse(text, len, &again) != STORE_OK || env_differs(&qf->env, &again.env))
        abort();
    store_qf_free(&again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t hlen;
    struct store_qf qf;
    if (!store_qf_header_end(p, size, &hlen))
        return 0;
    if (store_qf_parse(p, hlen, &qf) == STORE_OK) {
        check_round_trip(&qf);
        store_qf_free(&qf);
    }
    /* Also hand the parser whole inputs that are not exactly one header. */
    if (store_qf_parse(p, size, &qf) == STORE_OK)
        store_qf_free(&qf);
    return 0;
}
