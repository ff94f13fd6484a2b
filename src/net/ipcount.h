/* net/ipcount.h — concurrent connections per client IP address, for the per-IP limit. */
#ifndef CLEARMTA_NET_IPCOUNT_H
#define CLEARMTA_NET_IPCOUNT_H

#include <stdbool.h>
#include <stddef.h>

struct net_ipcount;

struct net_ipcount *net_ipcount_new(void);
void net_ipcount_free(struct net_ipcount *t);

/* Adds a connection from addr unless it already has limit; returns false (nothing added) at
 * the limit or when out of memory. */
bool net_ipcount_add(struct net_ipcount *t, const char *addr, unsigned limit);

/* Removes one connection from addr. */
void net_ipcount_remove(struct net_ipcount *t, const char *addr);

#endif
