/* base/metrics.h — a small process-wide registry of counters, gauges and histograms with
 * bounded label sets, and its exposition in the Prometheus text format 0.0.4. Mail-agnostic:
 * the modules that count define their families (names, help, labels) and register them.
 *
 * Counting is one add to a series found once: base_metric_series() looks a label set up
 * (without a lock once it exists); base_metric_add_local() is a plain add for a series only one
 * thread counts (the event loop), base_metric_add() a relaxed atomic add for any thread. A
 * family keeps at most max_series label sets; later new ones are counted under the label set
 * whose every value is "other", so a hostile peer cannot grow the registry. */
#ifndef CLEARMTA_BASE_METRICS_H
#define CLEARMTA_BASE_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BASE_METRIC_LABELS_MAX 3
#define BASE_METRIC_VALUE_MAX 64   /* bytes kept of a label value (longer ones are cut) */
#define BASE_METRIC_BUCKETS_MAX 16 /* histogram bounds, besides +Inf */
#define BASE_METRIC_OTHER "other"

enum base_metric_kind { BASE_METRIC_COUNTER, BASE_METRIC_GAUGE, BASE_METRIC_HISTOGRAM };

/* One label set of a family and its value. */
struct base_metric_series {
    char values[BASE_METRIC_LABELS_MAX][BASE_METRIC_VALUE_MAX];
    _Atomic uint64_t value; /* counter; a gauge holds an int64_t */
    /* histogram: observations per bucket (not cumulative; the last one is +Inf), sum in
     * microseconds */
    _Atomic uint64_t buckets[BASE_METRIC_BUCKETS_MAX + 1];
    _Atomic uint64_t count, sum_us;
};

/* A family, defined by the module that counts it (static storage) and registered once. */
struct base_metric {
    const char *name; /* [a-zA-Z_:][a-zA-Z0-9_:]*, counters end in _total */
    const char *help;
    enum base_metric_kind kind;
    const char *labels[BASE_METRIC_LABELS_MAX]; /* names; the first NULL ends them */
    size_t max_series;                          /* label sets kept (1 for no labels) */
    const uint64_t *bounds_us;                  /* histogram: upper bounds, ascending */
    size_t n_bounds;
    /* kept by the registry */
    struct base_metric_series *series; /* max_series + 1 (the last: "other") */
    _Atomic size_t n_series;
    struct base_metric *next;
};

/* Adds m to the registry (allocates its series); true when it is there (again: no-op). */
bool base_metric_register(struct base_metric *m);
/* Removes every family and frees their series (at shutdown, between tests). */
void base_metrics_clear(void);

/* The series of the label values (as many as m has labels; NULL for none), created when new;
 * the "other" series once max_series are taken. NULL when m is not registered. */
struct base_metric_series *base_metric_series(struct base_metric *m, const char *const *values);

/* A series that one thread only counts. */
static inline void base_metric_add_local(struct base_metric_series *s, uint64_t n)
{
    if (s)
        atomic_store_explicit(&s->value,
                              atomic_load_explicit(&s->value, memory_order_relaxed) + n,
                              memory_order_relaxed);
}

/* A series that several threads count. */
static inline void base_metric_add(struct base_metric_series *s, uint64_t n)
{
    if (s)
        atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

static inline void base_metric_set(struct base_metric_series *s, int64_t v)
{
    if (s)
        atomic_store_explicit(&s->value, (uint64_t)v, memory_order_relaxed);
}

/* The counter's or gauge's value now (a gauge's as its int64_t bits). */
static inline uint64_t base_metric_value(const struct base_metric_series *s)
{
    return s ? atomic_load_explicit(&s->value, memory_order_relaxed) : 0;
}

/* A histogram observation of us microseconds (one thread or several). */
void base_metric_observe_us(struct base_metric *m, struct base_metric_series *s, uint64_t us);

/* Gauges that are read, not counted: every series of m back to 0 (before refilling). */
void base_metric_zero(struct base_metric *m);

/* Calls fn for each registered family, in registration order. */
void base_metrics_each(void (*fn)(void *ctx, struct base_metric *m), void *ctx);

/* Appends n bytes to the caller's output; false when it cannot take them. */
typedef bool base_metrics_put(void *ctx, const char *p, size_t n);

/* Writes every registered family in the Prometheus text format 0.0.4: # HELP and # TYPE
 * lines, one sample per series (label values escaped: \\, \", \n), histograms as cumulative
 * _bucket{le=…}, _sum (seconds) and _count. False as soon as put fails. */
bool base_metrics_write(base_metrics_put *put, void *ctx);

#endif
