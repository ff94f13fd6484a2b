/* server/metrics.h — the server's metric families (replies sent, messages accepted, the time
 * from the end of DATA to its reply, connections, queue, destinations, plans, limit refusals)
 * and the calls that count them; the exposition is base/metrics.h's. Internal to server/. */
#ifndef CLEARMTA_SERVER_METRICS_H
#define CLEARMTA_SERVER_METRICS_H

#include <stdbool.h>

#include "base/metrics.h"
#include "reply/reply.h"

struct server;
struct server_conn;

/* Registers every family of the process (the delivery agent's too). False: out of memory. */
bool server_metrics_open(void);
void server_metrics_close(void);

/* A reply the server sent (c: its connection; NULL for a refusal before any session). */
void server_metrics_reply(struct server_conn *c, enum reply_id id);
/* The message's data ended: its reply is timed from now. */
void server_metrics_data_end(struct server_conn *c);
/* Reads the gauges (connections, queue, destinations) from the running server. */
void server_metrics_collect(struct server *srv);

/* The family of replies sent (labels code, enhanced), for the traffic charts. */
extern struct base_metric server_metric_replies;

#endif
