/* deliver/agent.h — remote delivery inside `clearmta serve`, on the server's event loop:
 * routes, SMTP delivery, durable per-recipient outcomes, retries on the schedule of retry.h,
 * bounces (RFC 3464) for failed recipients. RFC 5321 §4.5.4. */
#ifndef CLEARMTA_DELIVER_AGENT_H
#define CLEARMTA_DELIVER_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#include "deliver/destination.h"
#include "deliver/retry.h"
#include "policy/config.h"
#include "store/queue.h"

struct event_base;
struct deliver_agent;

struct deliver_agent_opts {
    struct event_base *base;
    const struct policy_config *cfg; /* hostname, queue_dir, routes, relayhost; outlives agent */
    struct store_queue *queue;       /* bounces are injected here */
    struct deliver_retry_policy retry;
    struct deliver_destination_config destination;
    unsigned connect_timeout_s, command_timeout_s, data_timeout_s; /* 0: 30, 300, 600 */
    void (*log)(void *ctx, const char *line); /* one line, no newline; NULL: none */
    void *log_ctx;
};

/* The retry policy and destination settings cfg asks for (retry_first, retry_max,
 * queue_lifetime, delay_warning) with the given loop, queue and logger. */
void deliver_agent_opts_from_config(struct deliver_agent_opts *o, const struct policy_config *cfg);

/* Creates the agent and schedules every queued message with pending remote recipients
 * (recovery after a restart). NULL with one line in err on failure. */
struct deliver_agent *deliver_agent_new(const struct deliver_agent_opts *o, char *err,
                                        size_t errlen);

/* Connections in flight are dropped; their recipients stay pending on disk. NULL is fine. */
void deliver_agent_free(struct deliver_agent *a);

/* A message was committed with remote recipients: try it now. False when out of memory (the
 * message stays queued for the next start). */
bool deliver_agent_submit(struct deliver_agent *a, const char *queue_id);

#endif
