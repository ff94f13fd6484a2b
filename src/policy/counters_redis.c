/* policy/counters_redis.c — the counters backend a fleet shares: one Lua script per decision
 * (EVALSHA, EVAL after NOSCRIPT) over hiredis async on the libevent loop, a timer per call,
 * and a background reconnect at most once per second. Never blocks the loop. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/counters_window.h"

#define DEFAULT_TIMEOUT_MS 500u
#define DEFAULT_PREFIX "clearmta:"
#define PREFIX_MAX 64u
#define RECONNECT_MS 1000u
/* A connect that neither succeeds nor fails (SYNs dropped) is abandoned after this; calls
 * time out on their own meanwhile. */
#define CONNECT_TIMEOUT_MS 2000u
/* Calls keep timing out and no answer at all for this long (at least): the connection is
 * taken for dead and re-made, so a stuck Redis cannot pile up calls without bound. */
#define STALL_MIN_MS 1000u
#define STALL_TIMEOUTS 4u
/* Lua numbers are doubles: amounts and limits are exact up to 2^53 - 1. */
#define LUA_EXACT_MAX 9007199254740991ull
#define NUM_MAX 21u /* decimal digits of a uint64_t, and a NUL */

/* KEYS[1] the key's hash; ARGV window_ms, slot_ms, amount, limit. Returns {status (0 allowed,
 * 1 denied), count, retry_after_ms, age_ms}. Same arithmetic as counters_window.c: slot
 * s = floor(now / slot_ms) is live until (s + 1) * slot_ms + window_ms, and the time is
 * Redis's own (TIME; Redis 7 replicates the effects, not the script). */
static const char SCRIPT[] =
    "local key = KEYS[1]\n"
    "local window, slot = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local amount, limit = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local lo = math.floor((now - window) / slot)\n"
    "local h = redis.call('HGETALL', key)\n"
    "local slots, n, count, first = {}, {}, 0, nil\n"
    "for i = 1, #h, 2 do\n"
    "  if h[i] == 'first' then first = tonumber(h[i + 1])\n"
    "  else\n"
    "    local s = tonumber(h[i])\n"
    "    if s == nil or s < lo then redis.call('HDEL', key, h[i])\n"
    "    else\n"
    "      slots[#slots + 1] = s\n"
    "      n[s] = tonumber(h[i + 1])\n"
    "      count = count + n[s]\n"
    "    end\n"
    "  end\n"
    "end\n"
    "table.sort(slots)\n"
    "local function leaves(s) return math.max(0, (s + 1) * slot + window - now) end\n"
    "local status, retry = 0, 0\n"
    "if limit > 0 and count + amount > limit then\n"
    "  status, retry = 1, window\n"
    "  if amount <= limit then\n"
    "    local need, freed = count + amount - limit, 0\n"
    "    for _, s in ipairs(slots) do\n"
    "      freed = freed + n[s]\n"
    "      if freed >= need then retry = leaves(s) break end\n"
    "    end\n"
    "  end\n"
    "else\n"
    "  if amount > 0 then\n"
    "    local cur = math.floor(now / slot)\n"
    "    if count == 0 then\n"
    "      first = now\n"
    "      redis.call('HSET', key, 'first', string.format('%d', now))\n"
    "    end\n"
    "    redis.call('HINCRBY', key, string.format('%d', cur), ARGV[3])\n"
    "    redis.call('PEXPIRE', key, string.format('%d', window + slot))\n"
    "    count = count + amount\n"
    "    if #slots == 0 then slots[1] = cur end\n"
    "  end\n"
    "  if count > 0 then retry = leaves(slots[1]) end\n"
    "end\n"
    "local age = 0\n"
    "if count > 0 and first then age = math.max(0, now - first) end\n"
    "return {status, count, retry, age}\n";

struct redis_counters;

struct redis_call {
    struct policy_counters_call head;  /* first: policy_counters_cancel finds the ops */
    struct redis_counters *owner;      /* NULL once the backend is freed */
    struct redis_call *prev, *next;    /* owner->calls: every call not yet freed */
    struct event *timer;               /* the timeout, or 0 s for an UNAVAILABLE at once */
    policy_counters_cb *cb;
    void *ctx;
    bool done;      /* delivered or cancelled: hiredis's late reply is ignored */
    bool in_redis;  /* hiredis holds the call as privdata: only its callback may free it */
    bool retried;   /* sent again with EVAL after NOSCRIPT */
    uint64_t limit; /* as asked, for the result */
    char why[128];  /* not sent: why */
    char window[NUM_MAX], slot[NUM_MAX], amount[NUM_MAX], lim[NUM_MAX];
    size_t key_len;
    char key[];     /* prefix, key, ":", window */
};

struct redis_counters {
    struct policy_counters base;
    struct event_base *evb;
    char host[INET6_ADDRSTRLEN];
    int port;
    char prefix[PREFIX_MAX + 1];
    size_t prefix_len;
    unsigned timeout_ms;
    redisAsyncContext *ac;   /* NULL while down; ac->data points back here while in use */
    struct event *conn_timer; /* connect deadline while connecting, else the reconnect */
    char sha[41];            /* the script's SHA1 once SCRIPT LOAD answered, else "" */
    char down[128];          /* why the connection is down, for calls made meanwhile */
    bool stalled;            /* a call timed out and no answer came since */
    uint64_t stalled_since;  /* monotonic ms of that first timeout */
    struct redis_call *calls;
};

static const struct counters_ops redis_ops;

/* Copies text into dst, cut to fit: reasons from hiredis are for the log. */
static void copy_text(char *dst, size_t cap, const char *text)
{
    size_t n = strnlen(text, cap - 1);
    memcpy(dst, text, n);
    dst[n] = '\0';
}

/* v in decimal: an argument of the script. */
static void decimal(char out[NUM_MAX], uint64_t v)
{
    char digits[NUM_MAX];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    out[n] = '\0';
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void arm(struct event *ev, unsigned ms)
{
    struct timeval tv = {ms / 1000, (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* ---- calls ---- */

/* Frees the call unless hiredis still holds it (its callback frees it then). */
static void release(struct redis_call *k)
{
    if (k->timer != NULL)
        evtimer_del(k->timer);
    if (k->in_redis)
        return;
    if (k->owner != NULL) {
        *(k->prev != NULL ? &k->prev->next : &k->owner->calls) = k->next;
        if (k->next != NULL)
            k->next->prev = k->prev;
    }
    if (k->timer != NULL)
        event_free(k->timer);
    free(k);
}

/* Delivers the result. The call is gone before cb runs, so cb may free the backend. */
static void finish(struct redis_call *k, const struct policy_counters_result *res)
{
    policy_counters_cb *cb = k->cb;
    void *ctx = k->ctx;
    if (res->status == POLICY_COUNTERS_UNAVAILABLE)
        k->owner->base.failures++;
    k->done = true;
    release(k);
    cb(ctx, res);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

static bool send_call(struct redis_counters *r, struct redis_call *k)
{
    bool sha = r->sha[0] != '\0' && !k->retried;
    const char *argv[] = {sha ? "EVALSHA" : "EVAL", sha ? r->sha : SCRIPT, "1", k->key,
                          k->window, k->slot, k->amount, k->lim};
    size_t len[sizeof argv / sizeof argv[0]];
    for (size_t i = 0; i < sizeof argv / sizeof argv[0]; i++)
        len[i] = strlen(argv[i]);
    len[3] = k->key_len;
    if (r->ac == NULL ||
        redisAsyncCommandArgv(r->ac, on_reply, k, (int)(sizeof argv / sizeof argv[0]), argv,
                              len) != REDIS_OK)
        return false;
    k->in_redis = true;
    return true;
}

static void load_script(struct redis_counters *r);

/* {status, count, retry_after_ms, age_ms}, all integers >= 0, status 0 or 1. */
static bool parse_result(const redisReply *rep, struct policy_counters_result *res)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 4)
        return false;
    long long v[4];
    for (size_t i = 0; i < 4; i++) {
        if (rep->element[i]->type != REDIS_REPLY_INTEGER || rep->element[i]->integer < 0)
            return false;
        v[i] = rep->element[i]->integer;
    }
    if (v[0] > 1)
        return false;
    res->status = v[0] == 0 ? POLICY_COUNTERS_ALLOWED : POLICY_COUNTERS_DENIED;
    res->count = (uint64_t)v[1];
    res->retry_after_ms = (uint64_t)v[2];
    res->age_ms = (uint64_t)v[3];
    return true;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct redis_call *k = privdata;
    const redisReply *rep = reply;
    k->in_redis = false;
    if (rep != NULL && k->owner != NULL)
        k->owner->stalled = false; /* even a late answer shows Redis is alive */
    if (k->done) {
        release(k);
        return;
    }
    struct policy_counters_result res;
    if (rep == NULL) { /* the connection went away with the call in flight */
        counters_unavailable(&res, k->limit, "redis: connection lost: %s",
                             ac->c.errstr[0] != '\0' ? ac->c.errstr : k->owner->down);
    } else if (rep->type == REDIS_REPLY_ERROR && !k->retried &&
               strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        /* Redis restarted or flushed its scripts: this call goes as EVAL, and the script is
         * loaded again for the next ones. */
        k->retried = true;
        k->owner->sha[0] = '\0';
        load_script(k->owner);
        if (send_call(k->owner, k))
            return;
        counters_unavailable(&res, k->limit, "redis: connection lost");
    } else if (rep->type == REDIS_REPLY_ERROR) {
        counters_unavailable(&res, k->limit, "redis: %s", rep->str);
    } else {
        memset(&res, 0, sizeof res);
        res.limit = k->limit;
        if (!parse_result(rep, &res))
            counters_unavailable(&res, k->limit, "redis: unexpected answer to the script");
    }
    finish(k, &res);
}

static void drop_context(struct redis_counters *r, const char *why);

/* A call timed out: is the connection dead rather than slow? */
static bool stalled(struct redis_counters *r)
{
    uint64_t now = mono_ms();
    if (!r->stalled) {
        r->stalled = true;
        r->stalled_since = now;
        return false;
    }
    uint64_t dead_after = (uint64_t)r->timeout_ms * STALL_TIMEOUTS;
    return now - r->stalled_since >= (dead_after > STALL_MIN_MS ? dead_after : STALL_MIN_MS);
}

static void on_call_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct redis_call *k = arg;
    if (k->in_redis && stalled(k->owner)) {
        /* Every call in flight, this one too, gets UNAVAILABLE through on_reply. */
        drop_context(k->owner, "no answer, connection dropped");
        return;
    }
    struct policy_counters_result res;
    if (k->in_redis)
        counters_unavailable(&res, k->limit, "redis: no answer within %u ms",
                             k->owner->timeout_ms);
    else
        counters_unavailable(&res, k->limit, "redis: not connected: %s", k->why);
    finish(k, &res);
}

static struct redis_call *new_call(struct redis_counters *r,
                                   const struct policy_counters_request *req)
{
    size_t key_len = strlen(req->key);
    uint64_t slot_ms = counters_slot_ms(req->window_ms);
    /* prefix + key + ':' + window: bounded by PREFIX_MAX + KEY_MAX + NUM_MAX. */
    struct redis_call *k = calloc(1, sizeof *k + r->prefix_len + key_len + 1 + NUM_MAX);
    if (k == NULL)
        return NULL;
    k->timer = evtimer_new(r->evb, on_call_timer, k);
    if (k->timer == NULL) {
        free(k);
        return NULL;
    }
    k->head.ops = &redis_ops;
    k->owner = r;
    k->limit = req->limit;
    uint64_t lim = req->limit > LUA_EXACT_MAX ? LUA_EXACT_MAX : req->limit;
    decimal(k->window, req->window_ms);
    decimal(k->slot, slot_ms);
    decimal(k->amount, req->amount);
    decimal(k->lim, lim);
    memcpy(k->key, r->prefix, r->prefix_len);
    memcpy(k->key + r->prefix_len, req->key, key_len);
    k->key_len = r->prefix_len + key_len;
    k->key[k->key_len++] = ':';
    size_t wlen = strlen(k->window);
    memcpy(k->key + k->key_len, k->window, wlen);
    k->key_len += wlen;
    k->next = r->calls;
    if (r->calls != NULL)
        r->calls->prev = k;
    r->calls = k;
    return k;
}

static bool redis_hit(struct policy_counters *c, const struct policy_counters_request *req,
                      struct policy_counters_result *res, policy_counters_cb *cb, void *ctx,
                      struct policy_counters_call **call)
{
    struct redis_counters *r = (struct redis_counters *)c;
    if (req->amount > LUA_EXACT_MAX) {
        counters_unavailable(res, req->limit, "redis: amount over 2^53");
        return true;
    }
    struct redis_call *k = new_call(r, req);
    if (k == NULL) {
        counters_unavailable(res, req->limit, "redis: out of memory");
        return true;
    }
    k->cb = cb;
    k->ctx = ctx;
    if (send_call(r, k)) {
        arm(k->timer, r->timeout_ms);
    } else {
        /* Answered from the loop, never from inside this call. */
        copy_text(k->why, sizeof k->why, r->ac != NULL ? "connection closing" : r->down);
        arm(k->timer, 0);
    }
    if (call != NULL)
        *call = &k->head;
    return false;
}

static void redis_cancel(struct policy_counters_call *call)
{
    struct redis_call *k = (struct redis_call *)call;
    k->done = true;
    release(k);
}

/* ---- the connection ---- */

static void set_down(struct redis_counters *r, const char *why)
{
    r->ac = NULL;
    r->sha[0] = '\0';
    copy_text(r->down, sizeof r->down, why);
    arm(r->conn_timer, RECONNECT_MS);
}

static void on_script(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    struct redis_counters *r = ac->data;
    const redisReply *rep = reply;
    if (r == NULL || rep == NULL)
        return;
    r->stalled = false;
    if (rep->type != REDIS_REPLY_STRING || rep->len != sizeof r->sha - 1)
        return; /* calls keep using EVAL */
    memcpy(r->sha, rep->str, sizeof r->sha - 1);
    r->sha[sizeof r->sha - 1] = '\0';
}

/* The reply callback reads the backend through ac->data, which free() clears: a reply that
 * arrives after the backend is gone finds NULL. */
static void load_script(struct redis_counters *r)
{
    const char *argv[] = {"SCRIPT", "LOAD", SCRIPT};
    size_t len[] = {6, 4, sizeof SCRIPT - 1};
    if (r->ac != NULL)
        (void)redisAsyncCommandArgv(r->ac, on_script, NULL, 3, argv, len);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis_counters *r = ac->data;
    if (r == NULL)
        return;
    if (status != REDIS_OK) { /* hiredis frees ac after this */
        set_down(r, ac->c.errstr[0] != '\0' ? ac->c.errstr : "connect failed");
        return;
    }
    evtimer_del(r->conn_timer);
    r->stalled = false;
    load_script(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_counters *r = ac->data;
    if (r == NULL)
        return;
    set_down(r, status == REDIS_OK || ac->c.errstr[0] == '\0' ? "connection closed"
                                                                : ac->c.errstr);
}

/* Detaches and frees the context: calls in flight get UNAVAILABLE (why) through on_reply. */
static void drop_context(struct redis_counters *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    ac->data = NULL;
    set_down(r, why);
    redisAsyncFree(ac);
}

static void connect_now(struct redis_counters *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (ac == NULL) {
        set_down(r, "out of memory");
        return;
    }
    if (ac->err != 0 || redisLibeventAttach(ac, r->evb) != REDIS_OK) {
        set_down(r, ac->c.errstr[0] != '\0' ? ac->c.errstr : "cannot attach to the loop");
        redisAsyncFree(ac);
        return;
    }
    ac->data = r;
    r->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    arm(r->conn_timer, CONNECT_TIMEOUT_MS);
}

static void on_conn_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct redis_counters *r = arg;
    if (r->ac == NULL) {
        connect_now(r);
        return;
    }
    drop_context(r, "connect timed out");
}

/* ---- the backend ---- */

static void redis_free(struct policy_counters *c)
{
    struct redis_counters *r = (struct redis_counters *)c;
    for (struct redis_call *k = r->calls, *next; k != NULL; k = next) {
        next = k->next;
        k->owner = NULL;
        k->done = true;
        event_free(k->timer);
        k->timer = NULL;
        if (!k->in_redis)
            free(k);
    }
    r->calls = NULL;
    /* Inside a hiredis callback the free is deferred by hiredis; the calls it still holds are
     * freed by on_reply, which finds them done. */
    if (r->ac != NULL)
        drop_context(r, "closed");
    event_free(r->conn_timer);
    free(r);
}

static const struct counters_ops redis_ops = {
    .name = "redis",
    .hit = redis_hit,
    .cancel = redis_cancel,
    .free = redis_free,
};

/* "HOST:PORT", HOST numeric IPv4 or [IPv6]. */
static bool parse_server(const char *server, char host[INET6_ADDRSTRLEN], int *port)
{
    const char *colon = strrchr(server, ':');
    if (colon == NULL)
        return false;
    const char *h = server;
    size_t hlen = (size_t)(colon - server);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= INET6_ADDRSTRLEN)
        return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    unsigned char buf[16];
    bool v6 = h != server;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, buf) != 1)
        return false;
    long p = 0;
    const char *d = colon + 1;
    if (*d == '\0')
        return false;
    for (; *d != '\0'; d++) {
        if (*d < '0' || *d > '9' || (p = p * 10 + (*d - '0')) > 65535)
            return false;
    }
    *port = (int)p;
    return p > 0;
}

static void __attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(err, errlen, fmt, ap); /* truncation is fine: for the log */
    va_end(ap);
}

struct policy_counters *policy_counters_redis_new(struct event_base *base, const char *server,
                                                  const char *prefix, unsigned timeout_ms,
                                                  char *err, size_t errlen)
{
    if (prefix == NULL)
        prefix = DEFAULT_PREFIX;
    struct redis_counters *r = calloc(1, sizeof *r);
    if (r == NULL) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (server == NULL || !parse_server(server, r->host, &r->port)) {
        set_err(err, errlen, "redis server \"%s\": expected IPv4:PORT or [IPv6]:PORT",
                 server != NULL ? server : "");
        free(r);
        return NULL;
    }
    r->prefix_len = strlen(prefix);
    if (r->prefix_len > PREFIX_MAX) {
        set_err(err, errlen, "redis key prefix longer than %u bytes", PREFIX_MAX);
        free(r);
        return NULL;
    }
    memcpy(r->prefix, prefix, r->prefix_len);
    r->base.ops = &redis_ops;
    r->evb = base;
    r->timeout_ms = timeout_ms != 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
    copy_text(r->down, sizeof r->down, "connecting");
    r->conn_timer = evtimer_new(base, on_conn_timer, r);
    if (r->conn_timer == NULL) {
        set_err(err, errlen, "out of memory");
        free(r);
        return NULL;
    }
    connect_now(r);
    return &r->base;
}
