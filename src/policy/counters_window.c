/* policy/counters_window.c — the backend-independent part of policy/counters.h: request
 * validation, dispatch to the backend, the failure count and the sliding-window arithmetic. */
#include "policy/counters_window.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

uint64_t counters_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t counters_slot_ms(uint64_t window_ms)
{
    return window_ms / POLICY_COUNTERS_SLOTS + (window_ms % POLICY_COUNTERS_SLOTS != 0);
}

uint64_t counters_oldest_live(uint64_t now, uint64_t window_ms, uint64_t slot_ms)
{
    return now > window_ms ? (now - window_ms) / slot_ms : 0;
}

uint64_t counters_until_leaves(uint64_t slot, uint64_t now, uint64_t window_ms,
                               uint64_t slot_ms)
{
    /* Slot numbers come from now / slot_ms, so (slot + 1) * slot_ms only overflows for a
     * clock near UINT64_MAX; saturate rather than wrap to a tiny wait. */
    uint64_t end = slot + 1 > UINT64_MAX / slot_ms ? UINT64_MAX : (slot + 1) * slot_ms;
    uint64_t leaves = counters_add(end, window_ms);
    return leaves > now ? leaves - now : 0;
}

bool counters_fits(uint64_t count, uint64_t amount, uint64_t limit)
{
    return limit == 0 || (amount <= limit && count <= limit - amount);
}

void counters_unavailable(struct policy_counters_result *res, uint64_t limit, const char *fmt,
                          ...)
{
    memset(res, 0, sizeof *res);
    res->status = POLICY_COUNTERS_UNAVAILABLE;
    res->limit = limit;
    va_list ap;
    va_start(ap, fmt);
    /* Truncation is fine: the reason is for the log. */
    (void)vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
}

/* Keys come from addresses and client input: bound them and refuse NUL before any backend
 * hashes or sends them. */
static bool request_valid(const struct policy_counters_request *req,
                          struct policy_counters_result *res)
{
    if (req->key == NULL || req->key[0] == '\0') {
        counters_unavailable(res, req->limit, "counters: empty key");
        return false;
    }
    if (strnlen(req->key, POLICY_COUNTERS_KEY_MAX + 1) > POLICY_COUNTERS_KEY_MAX) {
        counters_unavailable(res, req->limit, "counters: key longer than %u bytes",
                             POLICY_COUNTERS_KEY_MAX);
        return false;
    }
    if (req->window_ms < POLICY_COUNTERS_SLOTS) {
        counters_unavailable(res, req->limit, "counters: window of %llu ms, under %u ms",
                             (unsigned long long)req->window_ms, POLICY_COUNTERS_SLOTS);
        return false;
    }
    return true;
}

bool policy_counters_hit(struct policy_counters *c, const struct policy_counters_request *req,
                         struct policy_counters_result *res, policy_counters_cb *cb, void *ctx,
                         struct policy_counters_call **call)
{
    if (call != NULL)
        *call = NULL;
    bool at_once = !request_valid(req, res) || c->ops->hit(c, req, res, cb, ctx, call);
    if (at_once && res->status == POLICY_COUNTERS_UNAVAILABLE)
        c->failures++;
    return at_once;
}

void policy_counters_cancel(struct policy_counters_call *call)
{
    if (call != NULL && call->ops->cancel != NULL)
        call->ops->cancel(call);
}

void policy_counters_free(struct policy_counters *c)
{
    if (c != NULL)
        c->ops->free(c);
}

const char *policy_counters_backend(const struct policy_counters *c)
{
    return c->ops->name;
}

uint64_t policy_counters_failures(const struct policy_counters *c)
{
    return c->failures;
}
