/* server/queue_admin.h — the "queue" command of the control socket: list, show, flush, hold,
 * release, delete and status, as text for people or JSON for tools, each recipient's last
 * reply with its one-line explanation from the reply table. */
#ifndef CLEARMTA_SERVER_QUEUE_ADMIN_H
#define CLEARMTA_SERVER_QUEUE_ADMIN_H

#include <stdbool.h>

struct net_control;
struct deliver_agent;

/* Registers "queue" on ctl, answered from a (which must outlive ctl). False when the control
 * table is full. */
bool server_queue_admin_register(struct net_control *ctl, struct deliver_agent *a);

#endif
