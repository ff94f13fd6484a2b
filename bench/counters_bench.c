/* bench/counters_bench.c — counter decisions per second in memory and through Redis on
 * loopback (1 and N calls pending at once), with the latency of one decision; one line per
 * figure. Usage: counters_bench [--redis HOST:PORT] [--seconds S]; without --redis it starts
 * its own redis-server on a free 127.0.0.1 port and stops it at the end. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "policy/counters.h"

#define KEYS 1000u           /* distinct keys, as many accounts */
#define MAX_LATENCIES 2000000u

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t clock_ms(void *ctx)
{
    (void)ctx;
    return (uint64_t)(seconds_now() * 1000.0);
}

static void key_of(char *buf, size_t cap, unsigned long i)
{
    if (snprintf(buf, cap, "plan:msg:3600000:user%lu@example.test", i % KEYS) >= (int)cap)
        buf[0] = '\0';
}

static void bench_memory(double secs)
{
    struct policy_counters *c = policy_counters_memory_new(clock_ms, NULL, 0);
    if (c == NULL) {
        fprintf(stderr, "counters_bench: out of memory\n");
        exit(1);
    }
    char key[64];
    struct policy_counters_result res;
    unsigned long n = 0;
    double start = seconds_now(), end = start + secs, t = start;
    while (t < end) {
        for (int i = 0; i < 10000; i++, n++) {
            key_of(key, sizeof key, n);
            struct policy_counters_request req = {key, 1, 1500, 3600000};
            policy_counters_hit(c, &req, &res, NULL, NULL, NULL);
        }
        t = seconds_now();
    }
    printf("counters memory: 1 caller: %.0f decisions/s\n", (double)n / (t - start));
    policy_counters_free(c);
}

/* ---- Redis: keep `pending` calls in flight, each answer starts the next ---- */

struct run {
    struct policy_counters *c;
    struct event_base *base;
    double end;
    unsigned long started, answered, unavailable;
    double *latencies;  /* seconds, one per answer */
    unsigned in_flight;
};

struct slot {
    struct run *run;
    double sent;
};

static void start_one(struct slot *s);

static void on_answer(void *ctx, const struct policy_counters_result *res)
{
    struct slot *s = ctx;
    struct run *r = s->run;
    double now = seconds_now();
    if (r->answered < MAX_LATENCIES)
        r->latencies[r->answered] = now - s->sent;
    r->answered++;
    r->unavailable += res->status == POLICY_COUNTERS_UNAVAILABLE;
    r->in_flight--;
    if (now < r->end)
        start_one(s);
    else if (r->in_flight == 0)
        event_base_loopbreak(r->base);
}

static void start_one(struct slot *s)
{
    struct run *r = s->run;
    char key[64];
    key_of(key, sizeof key, r->started++);
    struct policy_counters_request req = {key, 1, 0, 3600000};
    struct policy_counters_result res;
    s->sent = seconds_now();
    r->in_flight++;
    if (policy_counters_hit(r->c, &req, &res, on_answer, s, NULL))
        on_answer(s, &res); /* bad request: not expected here */
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bench_redis(struct event_base *base, const char *server, unsigned pending,
                        double secs)
{
    char err[160];
    struct run r = {.base = base};
    r.c = policy_counters_redis_new(base, server, "clearmta-bench:", 2000, err, sizeof err);
    r.latencies = calloc(MAX_LATENCIES, sizeof *r.latencies);
    struct slot *slots = calloc(pending, sizeof *slots);
    if (r.c == NULL || r.latencies == NULL || slots == NULL) {
        fprintf(stderr, "counters_bench: %s\n", r.c == NULL ? err : "out of memory");
        exit(1);
    }
    /* Warm up: the connection and the script load. */
    r.end = seconds_now() + 0.2;
    slots[0].run = &r;
    start_one(&slots[0]);
    event_base_dispatch(base);
    r.started = r.answered = r.unavailable = 0;

    double start = seconds_now();
    r.end = start + secs;
    for (unsigned i = 0; i < pending; i++) {
        slots[i].run = &r;
        start_one(&slots[i]);
    }
    event_base_dispatch(base);
    double elapsed = seconds_now() - start;
    size_t n = r.answered < MAX_LATENCIES ? r.answered : MAX_LATENCIES;
    qsort(r.latencies, n, sizeof *r.latencies, cmp_double);
    printf("counters redis: %u pending: %.0f decisions/s, latency p50 %.0f us p99 %.0f us, "
           "%lu unavailable\n",
           pending, (double)r.answered / elapsed, n ? r.latencies[n / 2] * 1e6 : 0.0,
           n ? r.latencies[n * 99 / 100] * 1e6 : 0.0, r.unavailable);
    policy_counters_free(r.c);
    free(slots);
    free(r.latencies);
}

/* ---- a private redis-server ---- */

static pid_t redis_pid;
static char redis_dir[64];

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        perror("counters_bench: port");
        exit(1);
    }
    close(fd);
    return ntohs(sa.sin_port);
}

/* Starts redis-server and waits (bounded) until it accepts connections. */
static void start_redis(int port)
{
    snprintf(redis_dir, sizeof redis_dir, "/tmp/clearmta-bench-redis-XXXXXX");
    if (mkdtemp(redis_dir) == NULL) {
        perror("counters_bench: mkdtemp");
        exit(1);
    }
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    redis_pid = fork();
    if (redis_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_WRONLY); /* not freopen: it would flush our buffer */
        if (null >= 0)
            dup2(null, STDOUT_FILENO);
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", redis_dir, (char *)NULL);
        _exit(127);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int tries = 0; tries < 250; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return;
        if (waitpid(redis_pid, NULL, WNOHANG) == redis_pid)
            break;
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "counters_bench: redis-server did not start (is it installed?)\n");
    exit(1);
}

static void stop_redis(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
        rmdir(redis_dir);
    }
}

int main(int argc, char **argv)
{
    const char *server = NULL;
    double secs = 2.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--redis") == 0)
            server = argv[i + 1];
        else if (strcmp(argv[i], "--seconds") == 0)
            secs = atof(argv[i + 1]);
    }
    if (secs <= 0)
        secs = 2.0;
    bench_memory(secs);

    char own[32];
    if (server == NULL) {
        int port = free_port();
        start_redis(port);
        snprintf(own, sizeof own, "127.0.0.1:%d", port);
        server = own;
    }
    struct event_base *base = event_base_new();
    if (base == NULL)
        return 1;
    static const unsigned pending[] = {1, 20, 100};
    for (size_t i = 0; i < sizeof pending / sizeof pending[0]; i++)
        bench_redis(base, server, pending[i], secs);
    event_base_free(base);
    stop_redis();
    return 0;
}
