/* fuzz/trace_chain.h — the check both session fuzzers make on the sessions' trace callback:
 * "state OLD -> NEW" lines form one chain from the first state, each to another state, so a
 * change of state made around the session's setter shows as a broken chain. */
#ifndef CLEARMTA_FUZZ_TRACE_CHAIN_H
#define CLEARMTA_FUZZ_TRACE_CHAIN_H

#include <string.h>

struct trace_chain {
    char state[16]; /* the state the last line entered ("" before any) */
};

/* Checks line against the chain so far (first: the session's first state) and extends it. */
static inline void trace_chain_add(struct trace_chain *t, const char *first, const char *line)
{
    const char *arrow = strstr(line, " -> ");
    const char *was = t->state[0] ? t->state : first;
    if (strncmp(line, "state ", 6) != 0 || arrow == NULL)
        __builtin_trap();
    size_t old_len = (size_t)(arrow - line - 6), new_len = strlen(arrow + 4);
    if (old_len != strlen(was) || memcmp(line + 6, was, old_len) != 0)
        __builtin_trap();
    if (new_len == 0 || new_len >= sizeof t->state || strcmp(arrow + 4, was) == 0)
        __builtin_trap();
    memcpy(t->state, arrow + 4, new_len + 1);
}

#endif
