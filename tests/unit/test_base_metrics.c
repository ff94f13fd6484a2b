/* tests/unit/test_base_metrics.c — the metrics registry: series found and created by label
 * values, the bound of label sets ("other"), counters from several threads, gauges, histogram
 * buckets, and the exact Prometheus text exposition (HELP/TYPE, escaping, cumulative buckets). */
#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/metrics.h"

struct text {
    char buf[8192];
    size_t len;
};

static bool put(void *ctx, const char *p, size_t n)
{
    struct text *t = ctx;
    if (n >= sizeof t->buf - t->len)
        return false;
    memcpy(t->buf + t->len, p, n);
    t->len += n;
    t->buf[t->len] = '\0';
    return true;
}

static const char *expose(struct text *t)
{
    t->len = 0;
    t->buf[0] = '\0';
    assert_true(base_metrics_write(put, t));
    return t->buf;
}

static int teardown(void **state)
{
    (void)state;
    base_metrics_clear();
    return 0;
}

static void test_counter_exposition(void **state)
{
    (void)state;
    static struct base_metric replies = {.name = "t_replies_total",
                                         .help = "Replies\\sent\nby code",
                                         .kind = BASE_METRIC_COUNTER,
                                         .labels = {"code", "text"},
                                         .max_series = 8};
    static struct base_metric plain = {.name = "t_plain_total", .help = "Plain",
                                       .kind = BASE_METRIC_COUNTER, .max_series = 1};
    assert_true(base_metric_register(&replies));
    assert_true(base_metric_register(&plain));
    assert_true(base_metric_register(&replies)); /* again: no-op */
    const char *a[] = {"550", "say \"no\"\\\n"}, *b[] = {"250", ""};
    struct base_metric_series *s = base_metric_series(&replies, a);
    assert_ptr_equal(base_metric_series(&replies, a), s);
    base_metric_add_local(s, 2);
    base_metric_add(base_metric_series(&replies, b), 1);
    struct text t;
    assert_string_equal(expose(&t),
                        "# HELP t_replies_total Replies\\\\sent\\nby code\n"
                        "# TYPE t_replies_total counter\n"
                        "t_replies_total{code=\"550\",text=\"say \\\"no\\\"\\\\\\n\"} 2\n"
                        "t_replies_total{code=\"250\",text=\"\"} 1\n"
                        "# HELP t_plain_total Plain\n"
                        "# TYPE t_plain_total counter\n"
                        "t_plain_total 0\n");
    base_metric_add_local(base_metric_series(&plain, NULL), 7);
    assert_non_null(strstr(expose(&t), "\nt_plain_total 7\n"));
}

static void test_bounded_label_sets(void **state)
{
    (void)state;
    static struct base_metric dest = {.name = "t_dest_total", .help = "By destination",
                                      .kind = BASE_METRIC_COUNTER, .labels = {"destination"},
                                      .max_series = 3};
    assert_true(base_metric_register(&dest));
    char name[32];
    struct base_metric_series *first = NULL;
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "d%d.example", i);
        const char *v = name;
        struct base_metric_series *s = base_metric_series(&dest, &v);
        assert_non_null(s);
        if (i == 0)
            first = s;
        base_metric_add_local(s, 1);
    }
    const char *v0 = "d0.example";
    assert_ptr_equal(base_metric_series(&dest, &v0), first);
    struct text t;
    const char *out = expose(&t);
    assert_non_null(strstr(out, "t_dest_total{destination=\"d2.example\"} 1\n"));
    assert_null(strstr(out, "d3.example"));
    assert_non_null(strstr(out, "t_dest_total{destination=\"other\"} 997\n"));
    /* a value longer than kept is cut, and found again by its kept part */
    char long_value[BASE_METRIC_VALUE_MAX * 2];
    memset(long_value, 'x', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    const char *lv = long_value;
    assert_ptr_equal(base_metric_series(&dest, &lv), base_metric_series(&dest, &lv));
}

static void test_gauges_and_histogram(void **state)
{
    (void)state;
    static const uint64_t bounds[] = {1000, 100000};
    static struct base_metric g = {.name = "t_queue", .help = "Queue",
                                   .kind = BASE_METRIC_GAUGE, .labels = {"listener"},
                                   .max_series = 4};
    static struct base_metric h = {.name = "t_seconds", .help = "Latency",
                                   .kind = BASE_METRIC_HISTOGRAM, .max_series = 1,
                                   .bounds_us = bounds, .n_bounds = 2};
    assert_true(base_metric_register(&g));
    assert_true(base_metric_register(&h));
    const char *a = "mx:25", *b = "submission:587";
    base_metric_set(base_metric_series(&g, &a), -3);
    base_metric_set(base_metric_series(&g, &b), 5);
    base_metric_zero(&g);
    base_metric_set(base_metric_series(&g, &a), -3); /* b is gone: not shown */
    struct base_metric_series *s = base_metric_series(&h, NULL);
    base_metric_observe_us(&h, s, 500);     /* le 0.001 */
    base_metric_observe_us(&h, s, 1000);    /* le 0.001: bounds are inclusive */
    base_metric_observe_us(&h, s, 50000);   /* le 0.1 */
    base_metric_observe_us(&h, s, 2500000); /* +Inf */
    struct text t;
    assert_string_equal(expose(&t), "# HELP t_queue Queue\n"
                                    "# TYPE t_queue gauge\n"
                                    "t_queue{listener=\"mx:25\"} -3\n"
                                    "# HELP t_seconds Latency\n"
                                    "# TYPE t_seconds histogram\n"
                                    "t_seconds_bucket{le=\"0.001\"} 2\n"
                                    "t_seconds_bucket{le=\"0.1\"} 3\n"
                                    "t_seconds_bucket{le=\"+Inf\"} 4\n"
                                    "t_seconds_sum 2.5515\n"
                                    "t_seconds_count 4\n");
}

static struct base_metric shared = {.name = "t_shared_total", .help = "Shared",
                                    .kind = BASE_METRIC_COUNTER, .labels = {"thread"},
                                    .max_series = 2};

static void *count_shared(void *arg)
{
    const char *v = arg;
    for (int i = 0; i < 100000; i++)
        base_metric_add(base_metric_series(&shared, &v), 1);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    assert_true(base_metric_register(&shared));
    const char *first = "a"; /* kept whatever order the threads start in */
    assert_non_null(base_metric_series(&shared, &first));
    pthread_t th[4];
    static const char *names[] = {"a", "b", "a", "c"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, count_shared, (void *)names[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    uint64_t total = 0;
    const char *all[] = {"a", "b", "c", "other"};
    for (int i = 0; i < 4; i++) {
        const char *v = all[i];
        total += base_metric_value(base_metric_series(&shared, &v));
    }
    /* "c" may have come third or later: two label sets kept, the rest under "other" */
    const char *a = "a";
    assert_int_equal(base_metric_value(base_metric_series(&shared, &a)), 200000);
    assert_true(total >= 400000);
}

static void test_write_stops_when_output_fails(void **state)
{
    (void)state;
    static struct base_metric m = {.name = "t_total", .help = "T", .kind = BASE_METRIC_COUNTER,
                                   .max_series = 1};
    assert_true(base_metric_register(&m));
    struct text t = {.len = sizeof t.buf - 4};
    assert_false(base_metrics_write(put, &t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_counter_exposition, teardown),
        cmocka_unit_test_teardown(test_bounded_label_sets, teardown),
        cmocka_unit_test_teardown(test_gauges_and_histogram, teardown),
        cmocka_unit_test_teardown(test_threads, teardown),
        cmocka_unit_test_teardown(test_write_stops_when_output_fails, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
