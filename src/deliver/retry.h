/* deliver/retry.h — when to try a deferred message again, when to give up on it, and when to
 * warn its sender that it is late. Pure: the caller passes the time and the randomness. */
#ifndef CLEARMTA_DELIVER_RETRY_H
#define CLEARMTA_DELIVER_RETRY_H

#include <stdbool.h>
#include <stdint.h>

/* All in seconds. A 0 in first_s or max_interval_s counts as 1 (a retry is never immediate);
 * max_interval_s below first_s counts as first_s; delay_warning_s 0 sends no delay warnings. */
struct deliver_retry_policy {
    unsigned first_s;         /* wait after the first failed attempt */
    unsigned max_interval_s;  /* the wait doubles up to this */
    unsigned lifetime_s;      /* a message older than this is bounced (RFC 5321 §4.5.4.1) */
    unsigned delay_warning_s; /* a message older than this gets one "delayed" DSN */
};

/* 5 minutes doubling to 1 hour, given up after 5 days, delay warning after 4 hours. */
extern const struct deliver_retry_policy deliver_retry_default;
/* The test contract's CONTRACT_FAST_RETRY: 2 s doubling to 10 s, lifetime 60 s, delay
 * warning after 30 s. */
extern const struct deliver_retry_policy deliver_retry_fast;

/* first · 2^(n−1) capped at max (n = 0 counts as 1), without overflow: the doubling shared by
 * the retry schedule and the destination backoff. */
uint64_t deliver_retry_doubling(uint64_t first, uint64_t max, unsigned n);

/* Seconds from a failed attempt to the next one: first_s · 2^(attempts−1) capped at
 * max_interval_s, then spread by ±20 % using `random` (any 64-bit random value) so that
 * messages deferred together do not retry together. The result is at least 1 and never above
 * max_interval_s. attempts counts the attempts made so far; 0 counts as 1. */
uint64_t deliver_retry_next(const struct deliver_retry_policy *p, unsigned attempts,
                            uint64_t random);

/* When a message that arrived at `arrival` is given up: arrival + lifetime_s. */
int64_t deliver_retry_give_up_at(const struct deliver_retry_policy *p, int64_t arrival);

/* True when a message that arrived at `arrival` has been queued for lifetime_s or longer at
 * `now`; it must then bounce instead of being retried. A clock that went back (now < arrival)
 * never expires a message. */
bool deliver_retry_expired(const struct deliver_retry_policy *p, int64_t arrival, int64_t now);

/* True when the sender should now get its one delay warning: warnings are on, none was sent,
 * the message has waited delay_warning_s or longer and has not yet expired (then the failure
 * report replaces the warning). */
bool deliver_retry_warn_delay(const struct deliver_retry_policy *p, int64_t arrival, int64_t now,
                              bool already_warned);

#endif
