/* policy/authlimit.h — failed AUTH attempts per client address in a sliding window: after the
 * limit the session answers 421 4.7.0 and closes; before it, each failure is answered later
 * and later. Pure: the caller passes the time (monotonic milliseconds) and logs. */
#ifndef CLEARMTA_POLICY_AUTHLIMIT_H
#define CLEARMTA_POLICY_AUTHLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Addresses tracked at most; beyond, the one whose last failure is oldest is forgotten. Bounds
 * memory against a botnet (65536 x about 100 bytes at the default limit). */
#define POLICY_AUTHLIMIT_ENTRIES 65536u
/* Delay before answering a failed AUTH: none for the first failure in the window, then this,
 * doubling per failure up to POLICY_AUTHLIMIT_DELAY_MAX_MS. Slows guessing on one connection
 * without making a mistyped password hurt. */
#define POLICY_AUTHLIMIT_DELAY_FIRST_MS 500u
#define POLICY_AUTHLIMIT_DELAY_MAX_MS 5000u

struct policy_authlimit;

/* limit: failures in the window that block (auth_fail_limit; each address keeps that many
 * times); window_ms: the window; max_entries: addresses tracked (0 = POLICY_AUTHLIMIT_ENTRIES).
 * NULL when out of memory or limit is 0. */
struct policy_authlimit *policy_authlimit_new(unsigned limit, uint64_t window_ms,
                                              size_t max_entries);

/* Safe on NULL. */
void policy_authlimit_free(struct policy_authlimit *lim);

/* Addresses: IPv4 and IPv6 in text form as the listener reports them. IPv6 addresses count per
 * /64 (one customer's network), since anyone holding one address holds its whole /64; an
 * IPv4-mapped IPv6 address counts as its IPv4 address. Text that is no address at all shares
 * one record. */

/* Records a failed AUTH at now. Silently does nothing when memory runs out (an attacker is then
 * not slowed, but nothing breaks). */
void policy_authlimit_failed(struct policy_authlimit *lim, const char *ip, uint64_t now_ms);

/* Failures of ip within the window ending at now (failures at or before now - window have
 * expired); at most limit. */
unsigned policy_authlimit_failures(const struct policy_authlimit *lim, const char *ip,
                                   uint64_t now_ms);

/* True when ip has limit or more failures in the window: refuse AUTH (421 4.7.0) and close. */
bool policy_authlimit_blocked(const struct policy_authlimit *lim, const char *ip, uint64_t now_ms);

/* How long to wait before answering the failure just recorded: 0 for the first in the window,
 * then POLICY_AUTHLIMIT_DELAY_FIRST_MS doubling, capped at POLICY_AUTHLIMIT_DELAY_MAX_MS. */
unsigned policy_authlimit_delay_ms(const struct policy_authlimit *lim, const char *ip,
                                   uint64_t now_ms);

/* A successful AUTH from ip forgets its failures. */
void policy_authlimit_succeeded(struct policy_authlimit *lim, const char *ip);

/* Addresses currently tracked (expired ones may still be counted until the next failure). */
size_t policy_authlimit_tracked(const struct policy_authlimit *lim);

#endif
