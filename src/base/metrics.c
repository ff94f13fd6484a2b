/* base/metrics.c — the registry of metrics.h: families in a list, each with a fixed array of
 * series found by a scan of their label values (lock-free once created: a new series is filled
 * under the lock, then published by the release of n_series), and the text exposition. */
#include "base/metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct base_metric *families, *families_tail;

static size_t label_count(const struct base_metric *m)
{
    size_t n = 0;
    while (n < BASE_METRIC_LABELS_MAX && m->labels[n])
        n++;
    return n;
}

bool base_metric_register(struct base_metric *m)
{
    pthread_mutex_lock(&registry_lock);
    bool ok = m->series != NULL;
    if (!ok && m->max_series > 0 && m->n_bounds <= BASE_METRIC_BUCKETS_MAX) {
        m->series = calloc(m->max_series + 1, sizeof *m->series);
        ok = m->series != NULL;
        if (ok) {
            struct base_metric_series *other = &m->series[m->max_series];
            for (size_t i = 0; i < label_count(m); i++)
                memcpy(other->values[i], BASE_METRIC_OTHER, sizeof BASE_METRIC_OTHER);
            atomic_store_explicit(&m->n_series, 0, memory_order_relaxed);
            m->next = NULL;
            if (families_tail)
                families_tail->next = m;
            else
                families = m;
            families_tail = m;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return ok;
}

void base_metrics_clear(void)
{
    pthread_mutex_lock(&registry_lock);
    struct base_metric *m = families;
    while (m) {
        struct base_metric *next = m->next;
        free(m->series);
        m->series = NULL;
        m->next = NULL;
        atomic_store_explicit(&m->n_series, 0, memory_order_relaxed);
        m = next;
    }
    families = families_tail = NULL;
    pthread_mutex_unlock(&registry_lock);
}

/* The value as kept: cut to BASE_METRIC_VALUE_MAX - 1 bytes. */
static bool value_equal(const char *kept, const char *v)
{
    return strncmp(kept, v ? v : "", BASE_METRIC_VALUE_MAX - 1) == 0;
}

static struct base_metric_series *find(struct base_metric *m, size_t n, size_t labels,
                                       const char *const *values)
{
    for (size_t i = 0; i < n; i++) {
        size_t l = 0;
        while (l < labels && value_equal(m->series[i].values[l], values[l]))
            l++;
        if (l == labels)
            return &m->series[i];
    }
    return NULL;
}

struct base_metric_series *base_metric_series(struct base_metric *m, const char *const *values)
{
    if (!m->series)
        return NULL;
    size_t labels = values ? label_count(m) : 0;
    size_t n = atomic_load_explicit(&m->n_series, memory_order_acquire);
    struct base_metric_series *s = find(m, n, labels, values);
    if (s)
        return s;
    pthread_mutex_lock(&registry_lock);
    n = atomic_load_explicit(&m->n_series, memory_order_relaxed);
    s = find(m, n, labels, values);
    if (!s && n < m->max_series) {
        s = &m->series[n];
        for (size_t l = 0; l < labels; l++)
            snprintf(s->values[l], sizeof s->values[l], "%s", values[l] ? values[l] : "");
        atomic_store_explicit(&m->n_series, n + 1, memory_order_release);
    } else if (!s) {
        s = &m->series[m->max_series];
    }
    pthread_mutex_unlock(&registry_lock);
    return s;
}

void base_metric_observe_us(struct base_metric *m, struct base_metric_series *s, uint64_t us)
{
    if (!s)
        return;
    size_t b = 0;
    while (b < m->n_bounds && us > m->bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_us, us, memory_order_relaxed);
}

void base_metric_zero(struct base_metric *m)
{
    if (!m->series)
        return;
    for (size_t i = 0; i <= m->max_series; i++)
        atomic_store_explicit(&m->series[i].value, 0, memory_order_relaxed);
}

void base_metrics_each(void (*fn)(void *ctx, struct base_metric *m), void *ctx)
{
    pthread_mutex_lock(&registry_lock);
    struct base_metric *m = families;
    pthread_mutex_unlock(&registry_lock);
    for (; m; m = m->next)
        fn(ctx, m);
}

/* ---- exposition -------------------------------------------------------------------------- */

struct out {
    base_metrics_put *put;
    void *ctx;
    bool ok;
};

static void put(struct out *o, const char *p, size_t n)
{
    if (o->ok)
        o->ok = o->put(o->ctx, p, n);
}

static void put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* HELP text escapes \ and newline; label values also escape ". */
static void put_escaped(struct out *o, const char *s, bool quote)
{
    size_t run = 0;
    for (size_t i = 0;; i++) {
        char c = s[i];
        if (c != '\0' && c != '\\' && c != '\n' && !(quote && c == '"'))
            continue;
        put(o, s + run, i - run);
        if (c == '\0')
            return;
        put(o, c == '\\' ? "\\\\" : c == '\n' ? "\\n" : "\\\"", 2);
        run = i + 1;
    }
}

/* {a="x",b="y"} with an extra label (le) when given; nothing for no labels. */
static void put_labels(struct out *o, const struct base_metric *m,
                       const struct base_metric_series *s, const char *le)
{
    size_t n = label_count(m);
    if (n == 0 && !le)
        return;
    put(o, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            put(o, ",", 1);
        put_str(o, m->labels[i]);
        put(o, "=\"", 2);
        put_escaped(o, s->values[i], true);
        put(o, "\"", 1);
    }
    if (le) {
        put_str(o, n ? ",le=\"" : "le=\"");
        put_str(o, le);
        put(o, "\"", 1);
    }
    put(o, "}", 1);
}

/* Microseconds as seconds: "0.25", "1", "0.000001". */
static void fmt_seconds(uint64_t us, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';
}

/* NAME SUFFIX{labels[,le]} VALUE */
static void put_line(struct out *o, const struct base_metric *m, const char *suffix,
                     const struct base_metric_series *s, const char *le, const char *value)
{
    put_str(o, m->name);
    put_str(o, suffix);
    put_labels(o, m, s, le);
    put(o, " ", 1);
    put_str(o, value);
    put(o, "\n", 1);
}

static void put_histogram(struct out *o, const struct base_metric *m,
                          const struct base_metric_series *s)
{
    uint64_t cumulative = 0;
    char le[32], v[32];
    for (size_t b = 0; b <= m->n_bounds; b++) {
        cumulative += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
        if (b < m->n_bounds)
            fmt_seconds(m->bounds_us[b], le, sizeof le);
        else
            snprintf(le, sizeof le, "+Inf");
        snprintf(v, sizeof v, "%" PRIu64, cumulative);
        put_line(o, m, "_bucket", s, le, v);
    }
    fmt_seconds(atomic_load_explicit(&s->sum_us, memory_order_relaxed), v, sizeof v);
    put_line(o, m, "_sum", s, NULL, v);
    snprintf(v, sizeof v, "%" PRIu64, atomic_load_explicit(&s->count, memory_order_relaxed));
    put_line(o, m, "_count", s, NULL, v);
}

static void put_sample(struct out *o, const struct base_metric *m,
                       const struct base_metric_series *s)
{
    uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    char text[32];
    if (m->kind == BASE_METRIC_GAUGE)
        snprintf(text, sizeof text, "%" PRId64, (int64_t)v);
    else
        snprintf(text, sizeof text, "%" PRIu64, v);
    put_line(o, m, "", s, NULL, text);
}

static void put_series(struct out *o, const struct base_metric *m,
                       const struct base_metric_series *s)
{
    if (m->kind == BASE_METRIC_HISTOGRAM)
        put_histogram(o, m, s);
    else
        put_sample(o, m, s);
}

static void write_family(void *ctx, struct base_metric *m)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    struct out *o = ctx;
    put_str(o, "# HELP ");
    put_str(o, m->name);
    put(o, " ", 1);
    put_escaped(o, m->help, false);
    put_str(o, "\n# TYPE ");
    put_str(o, m->name);
    put(o, " ", 1);
    put_str(o, types[m->kind]);
    put(o, "\n", 1);
    size_t n = atomic_load_explicit(&m->n_series, memory_order_acquire);
    bool labelled = label_count(m) > 0;
    if (!labelled) {
        put_series(o, m, &m->series[0]); /* the one sample, 0 until counted */
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct base_metric_series *s = &m->series[i];
        /* a gauge read back to 0 is a label set that is gone */
        if (m->kind != BASE_METRIC_GAUGE || base_metric_value(s) != 0)
            put_series(o, m, s);
    }
    const struct base_metric_series *other = &m->series[m->max_series];
    if (base_metric_value(other) != 0 ||
        atomic_load_explicit(&other->count, memory_order_relaxed) != 0)
        put_series(o, m, other);
}

bool base_metrics_write(base_metrics_put *put_fn, void *ctx)
{
    struct out o = {.put = put_fn, .ctx = ctx, .ok = true};
    base_metrics_each(write_family, &o);
    return o.ok;
}
