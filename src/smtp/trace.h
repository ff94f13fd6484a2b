/* smtp/trace.h — what server_session.c and client_session.c share to trace their state
 * machines: the enum and names from one list of states, and the one form of the trace line. */
#ifndef CLEARMTA_SMTP_TRACE_H
#define CLEARMTA_SMTP_TRACE_H

#include <stdio.h>

/* From a list LIST(X) of X(NAME) entries: enum state { ST_NAME, … } and state_names[], the
 * names the trace shows, in the same order. */
#define SMTP_TRACE_STATES(LIST)                     \
    enum state { LIST(SMTP_TRACE_STATE_ENUM_) };    \
    static const char *const state_names[] = {LIST(SMTP_TRACE_STATE_NAME_)}
#define SMTP_TRACE_STATE_ENUM_(name) ST_##name,
#define SMTP_TRACE_STATE_NAME_(name) #name,

/* Calls trace (when set) with "state from -> to"; the line lives on the stack for the call. */
static inline void smtp_trace_state(void (*trace)(void *ctx, const char *line), void *ctx,
                                    const char *from, const char *to)
{
    char line[64];
    if (!trace)
        return;
    snprintf(line, sizeof line, "state %s -> %s", from, to);
    trace(ctx, line);
}

#endif
