/* deliver/agent_pace.c — relay host rate= pacing: before each message to the smart host one
 * hit on "relay:<host>:<port>" (policy/counters.h), so that clearmta (or a fleet sharing Redis
 * counters) stays within the provider's plan instead of running into its 4.7.x replies. A
 * denied message waits (not an attempt, not a failure); an unavailable backend lets it go. */
#include <stdio.h>
#include <time.h>

#include "deliver/agent_internal.h"
#include "policy/counters.h"

/* Keys the agent's own counters keep: one relay host needs one. */
#define PACE_KEYS_MAX 16

static uint64_t mono_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct policy_counters *counters(struct deliver_agent *a)
{
    if (a->counters == NULL && a->own_counters == NULL)
        a->own_counters = policy_counters_memory_new(mono_ms, NULL, PACE_KEYS_MAX);
    return a->counters ? a->counters : a->own_counters;
}

static const char *period_word(unsigned s)
{
    return s == 1 ? "second" : s == 60 ? "minute" : s == 3600 ? "hour" : s == 86400 ? "day"
                                                                                   : "period";
}

static void ask(struct delivery *d);

static void wait_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ask(arg);
}

static void decided(struct delivery *d, const struct policy_counters_result *res)
{
    struct deliver_agent *a = d->at->job->a;
    const struct policy_relayhost *rh = &a->o.cfg->relayhost;
    bool first = a->pace_logged != res->status;
    a->pace_logged = res->status;
    switch (res->status) {
    case POLICY_COUNTERS_ALLOWED:
        break;
    case POLICY_COUNTERS_UNAVAILABLE: /* fail open: a plan overrun beats mail not leaving */
        if (first)
            deliver_agent_logf(a, "rate counters unavailable (%s): sending to relay host %s "
                                  "without pacing", res->error, d->dest);
        break;
    case POLICY_COUNTERS_DENIED: {
        uint64_t ms = res->retry_after_ms > 0 ? res->retry_after_ms : 1000;
        if (first)
            deliver_agent_logf(a, "rate %u/%s of relay host %s reached; next message in "
                                  "%llu s", rh->rate, period_word(rh->rate_period), d->dest,
                               (unsigned long long)((ms + 999) / 1000));
        struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (long)(ms % 1000) * 1000};
        if (d->wait == NULL)
            d->wait = evtimer_new(a->o.base, wait_over, d);
        if (d->wait != NULL && evtimer_add(d->wait, &tv) == 0)
            return;
        break; /* no timer: better to send than to hang */
    }
    }
    deliver_agent_delivery_go(d);
}

static void answered(void *ctx, const struct policy_counters_result *res)
{
    struct delivery *d = ctx;
    d->pacing = NULL;
    decided(d, res);
}

static void ask(struct delivery *d)
{
    struct deliver_agent *a = d->at->job->a;
    const struct policy_relayhost *rh = &a->o.cfg->relayhost;
    struct policy_counters *c = counters(a);
    char key[32 + LIMIT_DOMAIN];
    snprintf(key, sizeof key, "relay:%s:%u", rh->hop.host, rh->hop.port);
    struct policy_counters_request req = {.key = key, .amount = 1, .limit = rh->rate,
                                          .window_ms = (uint64_t)rh->rate_period * 1000u};
    struct policy_counters_result res = {.status = POLICY_COUNTERS_UNAVAILABLE};
    if (c == NULL)
        snprintf(res.error, sizeof res.error, "out of memory");
    else if (!policy_counters_hit(c, &req, &res, answered, d, &d->pacing))
        return; /* answered() goes on */
    decided(d, &res);
}

void deliver_agent_pace(struct delivery *d)
{
    const struct policy_relayhost *rh = &d->at->job->a->o.cfg->relayhost;
    if (d->route.kind != DELIVER_ROUTE_RELAYHOST || rh->rate == 0) {
        deliver_agent_delivery_go(d);
        return;
    }
    ask(d);
}
