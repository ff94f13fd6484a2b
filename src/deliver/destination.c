/* deliver/destination.c — adaptive per-destination concurrency (additive increase,
 * multiplicative decrease, as TCP does), failure backoff, learned messages-per-connection cap,
 * and the bounded hash table of destinations. Replies are read through reply_explain's reasons,
 * never by matching words here. */
#include "deliver/destination.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "deliver/retry.h"
#include "reply/explain.h"

const struct deliver_destination_config deliver_destination_defaults = {
    .concurrency_start = 5, .concurrency_max = 20, .grow_after = 10,
    .backoff_first_s = 60, .backoff_max_s = 960, .messages_per_connection = 0,
};

const struct deliver_destination_config deliver_destination_fast = {
    .concurrency_start = 5, .concurrency_max = 20, .grow_after = 10,
    .backoff_first_s = 1, .backoff_max_s = 8, .messages_per_connection = 0,
};

const char *deliver_destination_strerror(enum deliver_destination_err err)
{
    switch (err) {
#define X(name, text) \
    case name:        \
        return text;
        DELIVER_DESTINATION_ERRORS(X)
#undef X
    }
    return "unknown destination error";
}

/* ---- one destination ---------------------------------------------------------------------- */

static bool config_ok(const struct deliver_destination_config *c)
{
    return c->concurrency_max >= 1 && c->concurrency_start >= 1 &&
           c->concurrency_start <= c->concurrency_max && c->grow_after >= 1 &&
           c->backoff_first_s >= 1 && c->backoff_max_s >= c->backoff_first_s;
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Printable, no space: a domain, an address literal or host:port (U-labels allowed). */
static bool name_ok(const char *name, size_t *len)
{
    size_t n = 0;
    for (; name[n] != '\0'; n++) {
        unsigned char c = (unsigned char)name[n];
        if (n == DELIVER_DESTINATION_NAME_MAX || c <= 0x20 || c == 0x7f)
            return false;
    }
    *len = n;
    return n > 0;
}

enum deliver_destination_err deliver_destination_init(struct deliver_destination *d,
                                                      const char *name,
                                                      const struct deliver_destination_config *cfg)
{
    size_t len = 0;
    if (!name || !name_ok(name, &len))
        return DELIVER_DESTINATION_ERR_NAME;
    if (!cfg || !config_ok(cfg))
        return DELIVER_DESTINATION_ERR_CONFIG;
    memset(d, 0, sizeof *d);
    for (size_t i = 0; i < len; i++)
        d->name[i] = (char)lower((unsigned char)name[i]);
    d->cfg = *cfg;
    d->limit = cfg->concurrency_start;
    d->per_conn = cfg->messages_per_connection;
    return DELIVER_DESTINATION_OK;
}

bool deliver_destination_may_connect(const struct deliver_destination *d, int64_t now)
{
    return now >= d->backoff_until && d->in_use < d->limit;
}

bool deliver_destination_acquire(struct deliver_destination *d, int64_t now)
{
    if (!deliver_destination_may_connect(d, now))
        return false;
    d->in_use++;
    return true;
}

void deliver_destination_release(struct deliver_destination *d)
{
    if (d->in_use > 0)
        d->in_use--;
}

void deliver_destination_resume(struct deliver_destination *d)
{
    d->backoff_until = 0;
    d->why[0] = '\0';
}

void deliver_destination_on_connected(struct deliver_destination *d)
{
    deliver_destination_resume(d);
    d->failures = 0;
    if (d->unreachable && d->limit < d->cfg.concurrency_start)
        d->limit = d->cfg.concurrency_start;
    d->unreachable = false;
}

bool deliver_destination_may_send(const struct deliver_destination *d, unsigned conn_messages)
{
    return d->per_conn == 0 || conn_messages < d->per_conn;
}

/* Keeps a one-line copy of what caused the backoff: control bytes become '?', so a hostile
 * reply cannot break the status display into lines. */
static void set_why(struct deliver_destination *d, const char *prefix, const char *text,
                    size_t len)
{
    size_t n = 0, plen = strlen(prefix);
    for (size_t i = 0; i < plen + len && n < DELIVER_DESTINATION_WHY_MAX; i++) {
        unsigned char c = (unsigned char)(i < plen ? prefix[i] : text[i - plen]);
        if (c == '\n' && i >= plen)
            break; /* the first line of a multi-line reply says enough */
        d->why[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    d->why[n] = '\0';
}

/* Multiplicative decrease and a doubling backoff: the answer to every sign of overload. */
static void back_off(struct deliver_destination *d, int64_t now)
{
    d->limit = d->limit / 2 > 0 ? d->limit / 2 : 1;
    d->successes = 0;
    if (d->failures < UINT_MAX)
        d->failures++;
    uint64_t wait = deliver_retry_doubling(d->cfg.backoff_first_s, d->cfg.backoff_max_s,
                                           d->failures);
    d->backoff_until = now > INT64_MAX - (int64_t)wait ? INT64_MAX : now + (int64_t)wait;
}

void deliver_destination_on_connect_failed(struct deliver_destination *d, const char *why,
                                           int64_t now)
{
    back_off(d, now);
    d->unreachable = true;
    if (why)
        set_why(d, "connect failed: ", why, strlen(why));
    else
        set_why(d, "connect failed", "", 0);
}

/* Additive increase: one more connection per grow_after delivered messages. */
static void grow(struct deliver_destination *d)
{
    d->failures = 0;
    if (d->successes < UINT_MAX)
        d->successes++;
    if (d->successes >= d->cfg.grow_after && d->limit < d->cfg.concurrency_max) {
        d->limit++;
        d->successes = 0;
    }
}

/* "CODE X.Y.Z text" of a parsed reply, for reply_explain and for the status display. */
static size_t reply_line(const struct reply_parsed *r, char *buf, size_t cap)
{
    char status[40] = "";
    if (r->status.cls != 0)
        snprintf(status, sizeof status, " %d.%d.%d", r->status.cls, r->status.subject,
                 r->status.detail);
    int n = snprintf(buf, cap, "%03d%s %.*s", r->code, status, (int)r->text_len, r->text);
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

static bool too_many_recipients(const struct reply_parsed *r)
{
    if (r->status.cls != 0)
        return r->status.subject == 5 && r->status.detail == 3;
    return r->code == 452; /* RFC 5321 §4.5.3.1.10 */
}

static void cap_per_connection(struct deliver_destination *d, unsigned conn_messages)
{
    if (conn_messages > 0 && (d->per_conn == 0 || conn_messages < d->per_conn))
        d->per_conn = conn_messages;
}

enum deliver_signal deliver_destination_on_reply(struct deliver_destination *d,
                                                 const struct reply_parsed *r,
                                                 unsigned conn_messages, int64_t now)
{
    enum reply_class cls = reply_class_of(r->code);
    if (cls == REPLY_CLASS_SUCCESS) {
        grow(d);
        return DELIVER_SIGNAL_SUCCESS;
    }
    if (cls != REPLY_CLASS_TRANSIENT && cls != REPLY_CLASS_PERMANENT)
        return DELIVER_SIGNAL_NONE;

    char line[REPLY_TEXT_MAX + 64];
    size_t len = reply_line(r, line, sizeof line);
    for (size_t i = 0; i < len; i++) /* explain refuses control bytes; a peer may send them */
        if ((unsigned char)line[i] < 0x20 && line[i] != '\n')
            line[i] = ' ';
    struct reply_explanation ex;
    bool explained = reply_explain(line, len, &ex) == REPLY_EXPLAIN_OK;
    /* Too many recipients limits one transaction, not the destination: the agent sends the
     * other recipients in a further transaction. */
    bool rcpt_limit = explained && ex.reason == REASON_toomanyconn && too_many_recipients(r);
    bool volume = explained && !rcpt_limit &&
                  (ex.reason == REASON_toomanyconn || ex.reason == REASON_speeding);
    bool full = explained && ex.reason == REASON_systemfull && cls == REPLY_CLASS_TRANSIENT;
    /* 421 closes the connection whatever its words (RFC 5321 §3.8): the server wants less. */
    if (r->code != 421 && !volume && !full)
        return DELIVER_SIGNAL_NONE;

    back_off(d, now);
    d->unreachable = false; /* it answers: what it wants is less */
    set_why(d, "", line, len);
    /* The server took conn_messages on this connection, then refused more for volume: fewer
     * messages per connection is what helps, whether it counts per connection or per period,
     * and reconnecting costs little. */
    if (volume)
        cap_per_connection(d, conn_messages);
    return DELIVER_SIGNAL_THROTTLE;
}

/* ---- status ------------------------------------------------------------------------------- */

size_t deliver_destination_describe(const struct deliver_destination *d, int64_t now, char *buf,
                                    size_t cap)
{
    char backoff[DELIVER_DESTINATION_WHY_MAX + 64] = "";
    if (d->backoff_until > now) {
        int64_t s = d->backoff_until % 86400;
        if (s < 0)
            s += 86400;
        snprintf(backoff, sizeof backoff, ", backoff until %02d:%02d:%02d%s%s%s",
                 (int)(s / 3600), (int)(s / 60 % 60), (int)(s % 60), d->why[0] ? " (" : "",
                 d->why, d->why[0] ? ")" : "");
    }
    char per_conn[32] = "unlimited";
    if (d->per_conn > 0)
        snprintf(per_conn, sizeof per_conn, "%u", d->per_conn);
    char dummy[1];
    int n = snprintf(cap > 0 ? buf : dummy, cap > 0 ? cap : sizeof dummy,
                     "%s: concurrency %u/%u (%u open)%s, messages per connection %s", d->name,
                     d->limit, d->cfg.concurrency_max, d->in_use, backoff, per_conn);
    return n < 0 ? 0 : (size_t)n;
}

/* ---- the table ---------------------------------------------------------------------------- */

#define NO_SLOT UINT32_MAX

struct slot {
    struct deliver_destination d;
    uint32_t next; /* next slot in the same bucket (or in the free list), or NO_SLOT */
    bool used;
};

/* Separate chaining over a fixed array of slots: memory is bounded at creation, unused slots
 * wait in a free list, and a slot is unlinked from its bucket when evicted. Eviction scans
 * the slots for the least recently used idle one: O(max), but only once the table is full. */
struct deliver_destination_table {
    struct deliver_destination_config cfg;
    struct slot *slots;
    size_t max, count;
    uint32_t free_head; /* first unused slot, or NO_SLOT */
    uint32_t *buckets;  /* first slot of each bucket, or NO_SLOT */
    size_t n_buckets;   /* a power of two */
};

enum deliver_destination_err
deliver_destination_table_new(const struct deliver_destination_config *cfg, size_t max_entries,
                              struct deliver_destination_table **out)
{
    *out = NULL;
    if (!cfg || !config_ok(cfg) || max_entries == 0 || max_entries > DELIVER_DESTINATION_TABLE_MAX)
        return DELIVER_DESTINATION_ERR_CONFIG;
    struct deliver_destination_table *t = calloc(1, sizeof *t);
    if (!t)
        return DELIVER_DESTINATION_ERR_NOMEM;
    t->cfg = *cfg;
    t->max = max_entries;
    t->n_buckets = 1;
    while (t->n_buckets < max_entries)
        t->n_buckets *= 2;
    t->slots = calloc(max_entries, sizeof *t->slots);
    t->buckets = malloc(t->n_buckets * sizeof *t->buckets);
    if (!t->slots || !t->buckets) {
        deliver_destination_table_free(t);
        return DELIVER_DESTINATION_ERR_NOMEM;
    }
    for (size_t i = 0; i < t->n_buckets; i++)
        t->buckets[i] = NO_SLOT;
    for (size_t i = 0; i < max_entries; i++)
        t->slots[i].next = i + 1 < max_entries ? (uint32_t)(i + 1) : NO_SLOT;
    t->free_head = 0;
    *out = t;
    return DELIVER_DESTINATION_OK;
}

void deliver_destination_table_free(struct deliver_destination_table *t)
{
    if (!t)
        return;
    free(t->slots);
    free(t->buckets);
    free(t);
}

/* FNV-1a over the lowercased name. */
static size_t bucket_of(const struct deliver_destination_table *t, const char *name)
{
    return (size_t)(base_fnv1a_lower(BASE_FNV1A_OFFSET, name) & (t->n_buckets - 1));
}

static bool same_name(const char *stored, const char *name)
{
    size_t i = 0;
    for (; stored[i] && name[i]; i++)
        if (stored[i] != (char)lower((unsigned char)name[i]))
            return false;
    return stored[i] == name[i];
}

struct deliver_destination *deliver_destination_table_find(struct deliver_destination_table *t,
                                                           const char *name)
{
    if (!name)
        return NULL;
    for (uint32_t i = t->buckets[bucket_of(t, name)]; i != NO_SLOT; i = t->slots[i].next)
        if (same_name(t->slots[i].d.name, name))
            return &t->slots[i].d;
    return NULL;
}

static void unlink_slot(struct deliver_destination_table *t, uint32_t victim)
{
    uint32_t *link = &t->buckets[bucket_of(t, t->slots[victim].d.name)];
    while (*link != victim)
        link = &t->slots[*link].next;
    *link = t->slots[victim].next;
    t->slots[victim].used = false;
    t->count--;
}

/* A free slot, or the least recently used idle one (no connection, no waiter, no backoff). */
static bool free_slot(struct deliver_destination_table *t, int64_t now, uint32_t *out)
{
    if (t->free_head != NO_SLOT) {
        *out = t->free_head;
        t->free_head = t->slots[*out].next;
        return true;
    }
    uint32_t victim = NO_SLOT;
    for (uint32_t i = 0; i < t->max; i++) {
        const struct slot *s = &t->slots[i];
        bool idle = s->d.in_use == 0 && s->d.waiting == 0 && s->d.backoff_until <= now;
        if (idle && (victim == NO_SLOT || s->d.last_used < t->slots[victim].d.last_used))
            victim = i;
    }
    if (victim == NO_SLOT)
        return false;
    unlink_slot(t, victim);
    *out = victim;
    return true;
}

enum deliver_destination_err deliver_destination_table_get(struct deliver_destination_table *t,
                                                           const char *name, int64_t now,
                                                           struct deliver_destination **out)
{
    *out = NULL;
    size_t len = 0;
    if (!name || !name_ok(name, &len))
        return DELIVER_DESTINATION_ERR_NAME;
    struct deliver_destination *d = deliver_destination_table_find(t, name);
    if (!d) {
        uint32_t i;
        if (!free_slot(t, now, &i))
            return DELIVER_DESTINATION_ERR_FULL;
        struct slot *s = &t->slots[i];
        deliver_destination_init(&s->d, name, &t->cfg); /* name and cfg checked above */
        size_t b = bucket_of(t, name);
        s->next = t->buckets[b];
        s->used = true;
        t->buckets[b] = i;
        t->count++;
        d = &s->d;
    }
    d->last_used = now;
    *out = d;
    return DELIVER_DESTINATION_OK;
}

void deliver_destination_table_resume_all(struct deliver_destination_table *t)
{
    for (size_t i = 0; i < t->max; i++)
        if (t->slots[i].used)
            deliver_destination_resume(&t->slots[i].d);
}

size_t deliver_destination_table_count(const struct deliver_destination_table *t)
{
    return t->count;
}

const struct deliver_destination *
deliver_destination_table_next(const struct deliver_destination_table *t, size_t *cursor)
{
    while (*cursor < t->max) {
        const struct slot *s = &t->slots[(*cursor)++];
        if (s->used)
            return &s->d;
    }
    return NULL;
}
