/* bench/metrics_bench.c — what counting costs per accepted message: the metric operations one
 * message makes in the server (a reply counted per command of its session, the accepted
 * counter, the end-of-DATA clock and histogram) and in the delivery agent (its outcome and the
 * remote reply, through deliver/metrics.c itself), timed over many messages on one thread and
 * with 2 threads counting the same series. One line per figure. Usage: metrics_bench [N]. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/metrics.h"
#include "deliver/metrics.h"

/* Replies of one message's session: 220, EHLO 250, MAIL 250, RCPT 250, 354, 250 queued, 221. */
#define REPLIES_PER_MESSAGE 7
/* Operations per message: the replies, accepted, two clock reads and the histogram, the
 * outcome, the remote reply. */
#define OPS_PER_MESSAGE (REPLIES_PER_MESSAGE + 1 + 3 + 1 + 1)

static struct base_metric replies = {.name = "bench_replies_total", .help = "Replies",
                                     .kind = BASE_METRIC_COUNTER, .labels = {"code", "enhanced"},
                                     .max_series = 64};
static struct base_metric accepted = {.name = "bench_accepted_total", .help = "Accepted",
                                      .kind = BASE_METRIC_COUNTER, .max_series = 1};
static const uint64_t bounds[] = {1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
                                  1000000, 2500000, 5000000, 10000000};
static struct base_metric latency = {.name = "bench_seconds", .help = "Latency",
                                     .kind = BASE_METRIC_HISTOGRAM, .max_series = 1,
                                     .bounds_us = bounds, .n_bounds = 12};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static long messages = 2000000;
static volatile uint64_t sink;

/* One message's counting; destinations cycle through 20 domains as a real queue's would. */
static void *count_messages(void *arg)
{
    struct base_metric_series *series[REPLIES_PER_MESSAGE];
    static const char *const codes[][2] = {{"220", ""},      {"250", ""},    {"250", "2.1.0"},
                                           {"250", "2.1.5"}, {"354", ""},    {"250", "2.0.0"},
                                           {"221", "2.0.0"}};
    for (int i = 0; i < REPLIES_PER_MESSAGE; i++) /* found once, as the server caches them */
        series[i] = base_metric_series(&replies, codes[i]);
    struct base_metric_series *acc = base_metric_series(&accepted, NULL);
    struct base_metric_series *lat = base_metric_series(&latency, NULL);
    struct reply_parsed r = {.code = 250, .status = {.cls = 2, .subject = 0, .detail = 0}};
    char dest[32];
    bool shared = arg != NULL;
    for (long m = 0; m < messages; m++) {
        for (int i = 0; i < REPLIES_PER_MESSAGE; i++) {
            if (shared)
                base_metric_add(series[i], 1);
            else
                base_metric_add_local(series[i], 1);
        }
        base_metric_add_local(acc, 1);
        uint64_t start = now_us();
        base_metric_observe_us(&latency, lat, now_us() - start);
        snprintf(dest, sizeof dest, "d%ld.example", m % 20);
        deliver_metrics_outcome("sent", "delivered");
        deliver_metrics_remote_reply(dest, &r);
    }
    sink += base_metric_value(acc);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        messages = atol(argv[1]);
    if (messages <= 0 || !base_metric_register(&replies) || !base_metric_register(&accepted) ||
        !base_metric_register(&latency) || !deliver_metrics_register())
        return 1;
    double t0 = now_s();
    count_messages(NULL);
    double one = now_s() - t0;
    printf("metrics: %d operations per message, %.0f ns per message on one thread "
           "(%ld messages in %.2f s)\n",
           OPS_PER_MESSAGE, one / (double)messages * 1e9, messages, one);
    pthread_t th[2];
    t0 = now_s();
    for (int i = 0; i < 2; i++)
        if (pthread_create(&th[i], NULL, count_messages, &th[i]) != 0)
            return 1;
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    double two = now_s() - t0;
    printf("metrics: 2 threads counting the same series: %.0f ns per message\n",
           two / (double)(2 * messages) * 1e9);
    base_metrics_clear();
    return sink == 0;
}
