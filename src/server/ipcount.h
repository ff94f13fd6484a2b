/* server/ipcount.h — concurrent connections per client IP address, for the per-IP limit. */
#ifndef CLEARMTA_SERVER_IPCOUNT_H
#define CLEARMTA_SERVER_IPCOUNT_H

#include <stdbool.h>
#include <stddef.h>

struct server_ipcount;

struct server_ipcount *server_ipcount_new(void);
void server_ipcount_free(struct server_ipcount *t);

/* Adds a connection from addr unless it already has limit; returns false (nothing added) at
 * the limit or when out of memory. */
bool server_ipcount_add(struct server_ipcount *t, const char *addr, unsigned limit);

/* Removes one connection from addr. */
void server_ipcount_remove(struct server_ipcount *t, const char *addr);

#endif
