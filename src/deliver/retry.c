/* deliver/retry.c — exponential retry schedule with jitter, queue lifetime and delay warnings.
 * RFC 5321 §4.5.4.1 (give up after 4-5 days); the first retry after 5 minutes and the doubling
 * follow common MTA practice rather than the RFC's flat 30 minutes. */
#include "deliver/retry.h"

const struct deliver_retry_policy deliver_retry_default = {
    .first_s = 300, .max_interval_s = 3600, .lifetime_s = 5 * 86400, .delay_warning_s = 4 * 3600,
};

const struct deliver_retry_policy deliver_retry_fast = {
    .first_s = 2, .max_interval_s = 10, .lifetime_s = 60, .delay_warning_s = 30,
};

static uint64_t at_least_one(unsigned v)
{
    return v == 0 ? 1 : v;
}

uint64_t deliver_retry_doubling(uint64_t first, uint64_t max, unsigned n)
{
    /* Doubling stops as soon as the cap is reached, so it never overflows. */
    uint64_t v = first;
    for (unsigned i = 1; i < n && v < max; i++)
        v = v > UINT64_MAX / 2 ? UINT64_MAX : v * 2;
    return v > max ? max : v;
}

uint64_t deliver_retry_next(const struct deliver_retry_policy *p, unsigned attempts,
                            uint64_t random)
{
    uint64_t first = at_least_one(p->first_s);
    uint64_t max = at_least_one(p->max_interval_s);
    if (max < first)
        max = first;
    uint64_t base = deliver_retry_doubling(first, max, attempts);
    /* ±20 %, with the upper side clipped at the cap: near the cap the spread is downward only,
     * so max_interval_s stays a true maximum. */
    uint64_t low = base - base / 5, high = base + base / 5;
    if (high > max)
        high = max;
    uint64_t next = low + random % (high - low + 1);
    return next == 0 ? 1 : next;
}

int64_t deliver_retry_give_up_at(const struct deliver_retry_policy *p, int64_t arrival)
{
    if (arrival > INT64_MAX - (int64_t)p->lifetime_s)
        return INT64_MAX;
    return arrival + (int64_t)p->lifetime_s;
}

static bool waited(int64_t arrival, int64_t now, unsigned seconds)
{
    /* Unsigned subtraction: exact for now >= arrival, whatever the values (no overflow). */
    return now >= arrival && (uint64_t)now - (uint64_t)arrival >= seconds;
}

bool deliver_retry_expired(const struct deliver_retry_policy *p, int64_t arrival, int64_t now)
{
    return waited(arrival, now, p->lifetime_s);
}

bool deliver_retry_warn_delay(const struct deliver_retry_policy *p, int64_t arrival, int64_t now,
                              bool already_warned)
{
    return !already_warned && p->delay_warning_s > 0 && waited(arrival, now, p->delay_warning_s) &&
           !deliver_retry_expired(p, arrival, now);
}
