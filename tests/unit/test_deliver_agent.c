/* tests/unit/test_deliver_agent.c — the delivery agent on a real event loop against a tiny
 * scripted SMTP server in the same loop: delivery, 550 bounce injection, <> never bounced,
 * 450 deferral kept on disk, connection refused, 452 split, recovery scan at start; the
 * administration API (list, flush, hold/release across a restart, delete with a bounce), the
 * one delay warning (durable), "relayed" success reports (peer without DSN) or NOTIFY passed
 * on (peer with DSN), "delivered" reports from the local runner's hook, relay host rate
 * pacing, DNS failures of a next hop; a destination that never answers holding nobody else's
 * messages; under the global cap, a destination left without connections keeping its
 * waiters. */
#include "unit.h"
#include "tmpdir.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include "deliver/agent.h"
#include "net/tls.h"
#include "policy/counters.h"
#include "store/deliver_local.h"
#include "store/flags.h"
#include "store/queue_file.h"
#include "store/remote.h"

/* ---- a scripted server: one reply per command, "rcpt" replies by recipient number ---- */

struct script {
    const char *mail, *rcpt_ok, *rcpt_bad, *data_end;
    const char *bad_rcpt;  /* the address that gets rcpt_bad */
    unsigned rcpt_max;     /* 452 4.5.3 after this many in a transaction (0: none) */
    bool dsn;              /* EHLO offers DSN */
};

struct fake {
    int lfd, cfd;
    unsigned short port;
    struct event *lev, *cev;
    struct script sc;
    char in[65536];
    size_t in_len;
    bool in_data;
    unsigned rcpts, transactions, messages, sessions;
    char last_rcpt[1024];
};

struct fx {
    char dir[64];
    struct event_base *base;
    struct policy_config cfg;
    struct store_queue *q;
    struct event *qev;
    struct deliver_agent *a;
    struct fake srv;
    unsigned notify; /* STORE_NOTIFY_* of every recipient queue_message_at queues */
    char log[1 << 20];
    size_t log_len;
};

static void say(struct fake *s, const char *text)
{
    size_t n = strlen(text);
    assert_int_equal(send(s->cfd, text, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void hang_up(struct fake *s)
{
    event_free(s->cev);
    s->cev = NULL;
    close(s->cfd);
    s->cfd = -1;
}

static void command(struct fake *s, const char *line)
{
    if (strncasecmp(line, "EHLO", 4) == 0) {
        say(s, s->sc.dsn ? "250-fake.test\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n"
                         : "250-fake.test\r\n250 ENHANCEDSTATUSCODES\r\n");
    } else if (strncasecmp(line, "MAIL", 4) == 0) {
        s->rcpts = 0;
        say(s, s->sc.mail ? s->sc.mail : "250 2.1.0 Ok\r\n");
    } else if (strncasecmp(line, "RCPT", 4) == 0) {
        snprintf(s->last_rcpt, sizeof s->last_rcpt, "%s", line);
        if (s->sc.rcpt_max && s->rcpts >= s->sc.rcpt_max) {
            say(s, "452 4.5.3 Too many recipients\r\n");
        } else if (s->sc.bad_rcpt && strstr(line, s->sc.bad_rcpt)) {
            say(s, s->sc.rcpt_bad);
        } else {
            s->rcpts++;
            say(s, s->sc.rcpt_ok ? s->sc.rcpt_ok : "250 2.1.5 Ok\r\n");
        }
    } else if (strncasecmp(line, "DATA", 4) == 0) {
        s->in_data = true;
        say(s, "354 go\r\n");
    } else if (strncasecmp(line, "QUIT", 4) == 0) {
        say(s, "221 2.0.0 bye\r\n");
        hang_up(s);
    } else {
        say(s, "250 2.0.0 Ok\r\n");
    }
}

static void on_client(evutil_socket_t fd, short what, void *arg)
{
    struct fake *s = arg;
    (void)what;
    ssize_t r = recv(fd, s->in + s->in_len, sizeof s->in - s->in_len, 0);
    if (r <= 0) {
        hang_up(s);
        return;
    }
    s->in_len += (size_t)r;
    char *nl;
    while (s->cfd >= 0 && (nl = memchr(s->in, '\n', s->in_len)) != NULL) {
        size_t n = (size_t)(nl - s->in) + 1;
        char line[1024];
        size_t c = n < sizeof line ? n : sizeof line - 1;
        memcpy(line, s->in, c);
        line[c] = '\0';
        memmove(s->in, s->in + n, s->in_len - n);
        s->in_len -= n;
        if (s->in_data) {
            if (strcmp(line, ".\r\n") == 0) {
                s->in_data = false;
                s->transactions++;
                say(s, s->sc.data_end ? s->sc.data_end : "250 2.0.0 Ok: queued\r\n");
            }
            continue;
        }
        command(s, line);
    }
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct fake *s = arg;
    (void)what;
    int c = accept(fd, NULL, NULL);
    assert_true(c >= 0);
    if (s->cfd >= 0)
        hang_up(s);
    s->cfd = c;
    s->sessions++;
    s->in_len = 0;
    s->in_data = false;
    s->cev = event_new(event_get_base(s->lev), c, EV_READ | EV_PERSIST, on_client, s);
    event_add(s->cev, NULL);
    say(s, "220 fake.test ESMTP\r\n");
}

/* A scripted server on a port of its own, in base's loop. */
static void fake_listen(struct event_base *base, struct fake *s)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    s->cfd = -1;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(s->lfd, 8), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &len), 0);
    s->port = ntohs(sa.sin_port);
    s->lev = event_new(base, s->lfd, EV_READ | EV_PERSIST, on_accept, s);
    event_add(s->lev, NULL);
}

static void fake_start(struct fx *f)
{
    fake_listen(f->base, &f->srv);
}

static void fake_stop(struct fake *s)
{
    if (s->cfd >= 0)
        hang_up(s);
    if (s->lev)
        event_free(s->lev);
    s->lev = NULL;
    if (s->lfd >= 0)
        close(s->lfd);
    s->lfd = -1;
}

/* ---- fixture ---- */

/* The local runner's thread logs too (success reports). */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void log_line(void *ctx, const char *line)
{
    struct fx *f = ctx;
    pthread_mutex_lock(&log_mu);
    int n = snprintf(f->log + f->log_len, sizeof f->log - f->log_len, "%s\n", line);
    if (n > 0 && (size_t)n < sizeof f->log - f->log_len)
        f->log_len += (size_t)n;
    pthread_mutex_unlock(&log_mu);
}

static void on_queue(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    store_queue_process(arg);
}

/* The test config: the relay host is host on the test server's port, with options. */
/* The test config with line (a relayhost, a route, or "") and extra lines. */
static void configure_line(struct fx *f, const char *line, const char *extra)
{
    char conf[2048];
    int n = snprintf(conf, sizeof conf,
                     "hostname mx.example.test\ndata_dir %s\ndomain example.test users alice "
                     "bob\n%s\nretry_first 1\nretry_max 2\n"
                     "queue_lifetime 60\ndelay_warning 0\n%s",
                     f->dir, line, extra);
    assert_true(n > 0 && (size_t)n < sizeof conf);
    policy_config_free(&f->cfg);
    memset(&f->cfg, 0, sizeof f->cfg);
    assert_int_equal(policy_config_load_buffer("t.conf", conf, (size_t)n, &f->cfg, NULL), 0);
}

static void configure_relay_port(struct fx *f, const char *host, unsigned port,
                                 const char *options, const char *extra)
{
    char line[256];
    snprintf(line, sizeof line, "relayhost %s:%u %s", host, port, options);
    configure_line(f, line, extra);
}

static void configure_relay(struct fx *f, const char *host, const char *options,
                            const char *extra)
{
    configure_relay_port(f, host, f->srv.port, options, extra);
}

static void configure(struct fx *f, const char *extra)
{
    configure_relay(f, "[127.0.0.1]", "tls=none", extra);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    memcpy(f->dir, "/tmp/clearmta-agent-XXXXXX", sizeof "/tmp/clearmta-agent-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->base = event_base_new();
    assert_non_null(f->base);
    fake_start(f);
    configure(f, "");
    struct store_opts so = {.queue_dir = f->cfg.queue_dir, .maildir_root = f->cfg.maildir_root};
    char err[256];
    assert_int_equal(store_queue_open(&so, &f->q, err, sizeof err), STORE_OK);
    f->qev = event_new(f->base, store_queue_event_fd(f->q), EV_READ | EV_PERSIST, on_queue, f->q);
    event_add(f->qev, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_queue_close(f->q);
    deliver_agent_free(f->a);
    event_free(f->qev);
    fake_stop(&f->srv);
    policy_config_free(&f->cfg);
    event_base_free(f->base);
    unit_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* One connection per destination, at most per_conn messages on it (0: no cap). */
static void start_agent_one_connection(struct fx *f, unsigned per_conn)
{
    struct deliver_agent_opts o = {.base = f->base, .queue = f->q, .log = log_line,
                                   .log_ctx = f};
    deliver_agent_opts_from_config(&o, &f->cfg);
    o.destination.concurrency_start = o.destination.concurrency_max = 1;
    o.destination.messages_per_connection = per_conn;
    char err[256];
    f->a = deliver_agent_new(&o, err, sizeof err);
    assert_non_null(f->a);
}

/* first_s 0: the config's retry schedule; delay_warning_s: seconds, 0 none. */
static void start_agent_with(struct fx *f, unsigned first_s, unsigned delay_warning_s)
{
    struct deliver_agent_opts o = {.base = f->base, .queue = f->q, .log = log_line,
                                   .log_ctx = f};
    deliver_agent_opts_from_config(&o, &f->cfg);
    if (first_s) {
        o.retry.first_s = first_s;
        o.retry.max_interval_s = first_s;
    }
    o.retry.delay_warning_s = delay_warning_s;
    char err[256];
    f->a = deliver_agent_new(&o, err, sizeof err);
    assert_non_null(f->a);
}

static void start_agent(struct fx *f)
{
    start_agent_with(f, 0, 0);
}

/* A restart of the agent (the queue stays open). */
static void restart_agent(struct fx *f, unsigned first_s, unsigned delay_warning_s)
{
    deliver_agent_free(f->a);
    f->a = NULL;
    start_agent_with(f, first_s, delay_warning_s);
}

static void committed(void *ctx, enum store_err err, const char *id)
{
    assert_int_equal(err, STORE_OK);
    memcpy(ctx, id, STORE_ID_LEN + 1);
}

/* Queues a message from sender to the n addresses (remote unless local_user is set). */
static void queue_message_at(struct fx *f, const char *sender, const char *const *to, size_t n,
                             int64_t arrival, char id[STORE_ID_LEN + 1])
{
    struct store_rcpt r[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) /* bob@example.test is local, the rest remote */
        r[i] = (struct store_rcpt){.address = to[i],
                                   .local_user = strcmp(to[i], "bob@example.test") ? NULL
                                                                                   : "bob",
                                   .notify = f->notify};
    struct store_envelope env = {.sender = sender, .rcpts = r, .n_rcpts = n, .arrival = arrival};
    struct store_msg *m;
    assert_int_equal(store_msg_begin(f->q, &env, &m), STORE_OK);
    static const char body[] = "Subject: t\r\n\r\nhello\r\n.dot\r\n";
    assert_int_equal(store_msg_write(m, body, sizeof body - 1), STORE_OK);
    id[0] = '\0';
    store_msg_commit(m, committed, id);
    /* at least 10 s: the syncer's fsync can take seconds on a busy machine */
    for (int i = 0; i < 5000 && id[0] == '\0'; i++)
        event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(2000);
    assert_true(id[0] != '\0');
}

static void queue_message(struct fx *f, const char *sender, const char *const *to, size_t n,
                          char id[STORE_ID_LEN + 1])
{
    queue_message_at(f, sender, to, n, (int64_t)time(NULL), id);
}

/* Runs the loop until the log holds want, for at most seconds. */
static bool run_until_log(struct fx *f, const char *want, int seconds)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        if (strstr(f->log, want))
            return true;
        struct timeval tick = {.tv_usec = 10000};
        event_base_loopexit(f->base, &tick);
        event_base_dispatch(f->base);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (t.tv_sec - t0.tv_sec < seconds);
    return strstr(f->log, want) != NULL;
}

static bool queued(struct fx *f, const char *id)
{
    char p[POLICY_PATH_CAP + 32];
    int n = snprintf(p, sizeof p, "%s/queue/%s", f->cfg.queue_dir, id);
    assert_true(n > 0 && (size_t)n < sizeof p);
    return access(p, F_OK) == 0;
}

static void test_delivers_and_removes(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    start_agent(f);
    queue_message(f, "alice@example.test", to, 1, id);
    assert_true(deliver_agent_submit(f->a, id));
    assert_true(run_until_log(f, "status=sent (250 2.0.0 Ok: queued) reason=delivered", 5));
    assert_non_null(strstr(f->log, "to=<carol@remote.example>, relay=127.0.0.1[127.0.0.1]:"));
    assert_non_null(strstr(f->log, "attempt=1, dsn=2.0.0"));
    assert_int_equal(f->srv.transactions, 1);
    assert_false(queued(f, id));
    assert_false(deliver_agent_submit(f->a, "not-an-id"));
}

static void test_550_bounces_to_a_local_sender(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"nobody@remote.example", "carol@remote.example"};
    f->srv.sc = (struct script){.bad_rcpt = "nobody@", .rcpt_bad = "550 5.1.1 No such user\r\n"};
    start_agent(f);
    queue_message(f, "alice@example.test", to, 2, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "from=<>, bounce queued", 5));
    assert_non_null(strstr(f->log, "to=<nobody@remote.example>"));
    assert_non_null(strstr(f->log, "dsn=5.1.1, status=bounced (550 5.1.1 No such user) "
                                   "reason=userunknown"));
    assert_non_null(strstr(f->log, "to=<carol@remote.example>"));
    assert_int_equal(f->srv.transactions, 1);
    assert_false(queued(f, id));
}

static void test_null_sender_is_never_bounced(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"nobody@remote.example"};
    f->srv.sc = (struct script){.bad_rcpt = "nobody@", .rcpt_bad = "550 5.1.1 No such user\r\n"};
    start_agent(f);
    queue_message(f, "", to, 1, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "sender is <>: no bounce", 5));
    assert_null(strstr(f->log, "bounce queued"));
    assert_false(queued(f, id));
}

static void test_450_defers_then_retry_delivers(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    f->srv.sc = (struct script){.rcpt_ok = "450 4.2.1 Busy\r\n"};
    start_agent(f);
    queue_message(f, "alice@example.test", to, 1, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "status=deferred (450 4.2.1 Busy) reason=", 5));
    assert_true(queued(f, id));
    f->srv.sc.rcpt_ok = NULL;
    assert_true(run_until_log(f, "attempt=2, dsn=2.0.0, status=sent", 6));
    assert_false(queued(f, id));
}

static void test_452_splits_on_one_connection(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"a@remote.example", "b@remote.example", "c@remote.example",
                        "d@remote.example", "e@remote.example"};
    f->srv.sc = (struct script){.rcpt_max = 2};
    start_agent(f);
    queue_message(f, "alice@example.test", to, 5, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "to=<e@remote.example>", 5));
    assert_int_equal(f->srv.transactions, 3);
    assert_int_equal(f->srv.sessions, 1);
    assert_null(strstr(f->log, "status=deferred"));
    assert_false(queued(f, id));
}

static void test_connection_refused_defers(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    fake_stop(&f->srv);
    start_agent(f);
    queue_message(f, "alice@example.test", to, 1, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:", 5));
    assert_true(queued(f, id));
}

static void test_mail_refused_bounces_all_and_421_defers(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example", "dave@remote.example"};
    f->srv.sc = (struct script){.mail = "421 4.7.0 Go away\r\n"};
    start_agent(f);
    queue_message(f, "alice@example.test", to, 2, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "to=<dave@remote.example>", 5));
    assert_non_null(strstr(f->log, "status=deferred (421 4.7.0 Go away)"));
    assert_true(queued(f, id));
    f->srv.sc.mail = "554 5.7.1 Refused\r\n";
    assert_true(run_until_log(f, "from=<>, bounce queued", 10));
    assert_non_null(strstr(f->log, "to=<dave@remote.example>, relay=127.0.0.1"));
    assert_non_null(strstr(f->log, "status=bounced (554 5.7.1 Refused)"));
    assert_false(queued(f, id));
}

static void test_expired_deferral_bounces_447(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    f->srv.sc = (struct script){.rcpt_ok = "451 4.3.0 Later\r\n"};
    start_agent(f);
    queue_message_at(f, "alice@example.test", to, 1, (int64_t)time(NULL) - 61, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "from=<>, bounce queued", 5));
    assert_non_null(strstr(f->log, "queue lifetime of 60 s over"));
    assert_non_null(strstr(f->log, "dsn=4.4.7, status=bounced (451 4.3.0 Later) reason=expired"));
    assert_false(queued(f, id));
}

static void test_recovery_scan_at_start(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    queue_message(f, "alice@example.test", to, 1, id);
    start_agent(f); /* finds it without a submit */
    assert_true(run_until_log(f, "status=sent", 5));
    assert_false(queued(f, id));
}

static size_t count_in_log(const struct fx *f, const char *what)
{
    size_t n = 0;
    for (const char *p = f->log; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

/* Runs the loop for ms milliseconds. */
static void run_for(struct fx *f, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

static bool flag_file(struct fx *f, const char *id, const char *flag)
{
    char p[POLICY_PATH_CAP + 64];
    snprintf(p, sizeof p, "%s/flags/%s.%s", f->cfg.queue_dir, id, flag);
    return access(p, F_OK) == 0;
}

/* ---- administration ---- */

struct seen {
    size_t n;
    char id[4][STORE_ID_LEN + 1];
    bool held, warned;
    char state[4][16], reply[128];
    unsigned attempts;
    int64_t next_try;
    struct reply_status status;
};

/* Keeps what `queue list` showed; recipient 0 is bob (local), 1 carol (remote). */
static void view(void *ctx, const struct deliver_agent_msg_view *m)
{
    struct seen *s = ctx;
    assert_true(s->n < 4);
    snprintf(s->id[s->n++], STORE_ID_LEN + 1, "%s", m->id);
    s->held = m->held;
    s->warned = m->warned;
    for (size_t i = 0; i < m->n_rcpts && i < 4; i++)
        snprintf(s->state[i], sizeof s->state[i], "%s", m->rcpts[i].state);
    const struct deliver_agent_rcpt_view *last = &m->rcpts[m->n_rcpts - 1];
    s->attempts = last->attempts;
    s->next_try = last->next_try;
    s->status = last->last_status;
    snprintf(s->reply, sizeof s->reply, "%s", last->last_reply);
    assert_string_equal(m->sender, "alice@example.test");
    assert_true(m->size > 0 && m->arrival > 0);
}

static void test_list_shows_states_attempts_and_replies(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1];
    const char *to[] = {"bob@example.test", "carol@remote.example"};
    f->srv.sc = (struct script){.rcpt_ok = "450 4.2.1 Busy\r\n"};
    start_agent_with(f, 3600, 0);
    queue_message(f, "alice@example.test", to, 2, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "status=deferred (450 4.2.1 Busy)", 5));
    queue_message(f, "alice@example.test", to + 1, 1, id2); /* the fake serves one at a time */
    deliver_agent_submit(f->a, id2);
    assert_true(run_until_log(f, id2, 5));
    struct seen s = {0};
    size_t count = 0;
    assert_int_equal(deliver_agent_list(f->a, NULL, view, &s, &count), DELIVER_AGENT_ADMIN_OK);
    assert_int_equal(count, 2);
    assert_string_equal(s.id[0], id); /* oldest first */
    assert_string_equal(s.id[1], id2);
    int64_t oldest = 0, now = (int64_t)time(NULL); /* the metrics' count, from memory */
    assert_int_equal(deliver_agent_queue_size(f->a, &oldest), 2);
    assert_true(oldest <= now && oldest >= now - 60);
    memset(&s, 0, sizeof s);
    assert_int_equal(deliver_agent_list(f->a, id, view, &s, &count), DELIVER_AGENT_ADMIN_OK);
    assert_int_equal(count, 1);
    assert_string_equal(s.state[0], "local");
    assert_string_equal(s.state[1], "deferred");
    assert_int_equal(s.attempts, 1);
    assert_string_equal(s.reply, "450 4.2.1 Busy");
    assert_int_equal(s.status.cls, 4);
    assert_int_equal(s.status.detail, 1);
    assert_true(s.next_try > (int64_t)time(NULL) + 1000);
    assert_false(s.held);
    assert_int_equal(deliver_agent_list(f->a, "00000000000000AA", view, &s, &count),
                     DELIVER_AGENT_ADMIN_NOT_FOUND);
    assert_int_equal(deliver_agent_list(f->a, "../../etc", view, &s, &count),
                     DELIVER_AGENT_ADMIN_NOT_FOUND);
    /* after a restart: attempts count from the restart, the recipient is "queued" again
     * (listed before the loop runs the new agent's first attempt) */
    restart_agent(f, 3600, 0);
    memset(&s, 0, sizeof s);
    assert_int_equal(deliver_agent_list(f->a, id, view, &s, &count), DELIVER_AGENT_ADMIN_OK);
    assert_string_equal(s.state[1], "queued");
    assert_int_equal(s.attempts, 0);
}

static void test_flush_ignores_the_retry_time(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    f->srv.sc = (struct script){.rcpt_ok = "450 4.2.1 Busy\r\n"};
    start_agent_with(f, 3600, 0);
    queue_message(f, "alice@example.test", to, 1, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "status=deferred (450 4.2.1 Busy)", 5));
    f->srv.sc.rcpt_ok = NULL;
    size_t count = 9;
    assert_int_equal(deliver_agent_flush(f->a, "nowhere.example", &count),
                     DELIVER_AGENT_ADMIN_NOT_FOUND);
    assert_int_equal(count, 0);
    assert_int_equal(deliver_agent_flush(f->a, "00000000000000AA", &count),
                     DELIVER_AGENT_ADMIN_NOT_FOUND);
    assert_int_equal(deliver_agent_flush(f->a, "REMOTE.example", &count),
                     DELIVER_AGENT_ADMIN_OK);
    assert_int_equal(count, 1);
    assert_true(run_until_log(f, "attempt=2, dsn=2.0.0, status=sent", 5));
    assert_false(queued(f, id));
    /* The agent forgets the message at its sweep, a 0 s timer set with the last outcome: the
     * first turn of the loop runs it, however late the turn that logged the outcome ended. */
    run_for(f, 10);
    assert_int_equal(deliver_agent_flush(f->a, NULL, &count), DELIVER_AGENT_ADMIN_OK);
    assert_int_equal(count, 0);
}

static void test_flush_by_id_ignores_destination_backoff(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    f->srv.sc = (struct script){.mail = "421 4.7.0 Too many connections\r\n"};
    start_agent_with(f, 3600, 0);
    queue_message(f, "alice@example.test", to, 1, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "status=deferred (421 4.7.0 Too many connections)", 5));
    f->srv.sc.mail = NULL;
    size_t count = 0;
    assert_int_equal(deliver_agent_flush(f->a, id, &count), DELIVER_AGENT_ADMIN_OK);
    assert_int_equal(count, 1);
    assert_true(run_until_log(f, "status=sent", 5));
    assert_null(strstr(f->log, "backing off"));
}

static void test_hold_survives_a_restart_until_release(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    f->srv.sc = (struct script){.rcpt_ok = "450 4.2.1 Busy\r\n"};
    start_agent(f); /* retries every second or two */
    queue_message(f, "alice@example.test", to, 1, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "status=deferred (450 4.2.1 Busy)", 5));
    assert_int_equal(deliver_agent_hold(f->a, id), DELIVER_AGENT_ADMIN_OK);
    assert_int_equal(deliver_agent_hold(f->a, "00000000000000AA"),
                     DELIVER_AGENT_ADMIN_NOT_FOUND);
    assert_true(flag_file(f, id, "hold"));
    assert_non_null(strstr(f->log, ": held by the administrator"));
    f->srv.sc.rcpt_ok = NULL;
    size_t count = 9;
    assert_int_equal(deliver_agent_flush(f->a, id, &count), DELIVER_AGENT_ADMIN_OK);
    assert_int_equal(count, 0); /* held messages stay held */
    run_for(f, 3000);
    assert_null(strstr(f->log, "attempt=2"));
    restart_agent(f, 0, 0);
    run_for(f, 1500);
    assert_null(strstr(f->log, "status=sent"));
    struct seen s = {0};
    assert_int_equal(deliver_agent_list(f->a, id, view, &s, &count), DELIVER_AGENT_ADMIN_OK);
    assert_true(s.held);
    assert_int_equal(s.next_try, 0);
    assert_int_equal(deliver_agent_release(f->a, id), DELIVER_AGENT_ADMIN_OK);
    assert_false(flag_file(f, id, "hold"));
    assert_true(run_until_log(f, "status=sent", 5));
    assert_false(queued(f, id));
}

/* The bounce goes to alice, a local sender: its queue file holds the report. */
static bool queue_holds(struct fx *f, const char *text)
{
    char cmd[POLICY_PATH_CAP + 128];
    snprintf(cmd, sizeof cmd, "grep -rqs '%s' %s/queue", text, f->cfg.queue_dir);
    return system(cmd) == 0;
}

static void test_delete_bounces_undelivered_recipients(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1];
    const char *to[] = {"bob@example.test", "carol@remote.example"};
    f->srv.sc = (struct script){.rcpt_ok = "450 4.2.1 Busy\r\n"};
    start_agent_with(f, 3600, 0);
    queue_message(f, "alice@example.test", to, 2, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "status=deferred (450 4.2.1 Busy)", 5));
    assert_int_equal(deliver_agent_delete(f->a, id, true), DELIVER_AGENT_ADMIN_OK);
    assert_false(queued(f, id));
    assert_non_null(strstr(f->log, "deleted by the administrator, 2 recipient(s) not delivered"));
    assert_true(run_until_log(f, "from=<>, bounce queued", 5));
    assert_true(queue_holds(f, "deleted from the queue by the administrator"));
    assert_true(queue_holds(f, "Status: 5.0.0"));
    assert_int_equal(deliver_agent_delete(f->a, id, true), DELIVER_AGENT_ADMIN_NOT_FOUND);
    /* silently: no report */
    queue_message(f, "alice@example.test", to + 1, 1, id2);
    deliver_agent_submit(f->a, id2);
    assert_true(run_until_log(f, id2, 5));
    size_t bounces = count_in_log(f, "bounce queued");
    assert_int_equal(deliver_agent_delete(f->a, id2, false), DELIVER_AGENT_ADMIN_OK);
    run_for(f, 300);
    assert_int_equal(count_in_log(f, "bounce queued"), bounces);
    assert_false(queued(f, id2));
}

static void remember_dest(void *ctx, const struct deliver_destination *d)
{
    snprintf(ctx, DELIVER_DESTINATION_NAME_MAX + 1, "%s", d->name);
}

static void test_destinations_lists_the_relay_host(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1], name[DELIVER_DESTINATION_NAME_MAX + 1] = "";
    const char *to[] = {"carol@remote.example"};
    start_agent(f);
    queue_message(f, "alice@example.test", to, 1, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "status=sent", 5));
    assert_true(deliver_agent_destinations(f->a, remember_dest, name) > 0);
    assert_non_null(strstr(name, "127.0.0.1"));
}

/* ---- the delay warning ---- */

static void test_one_delay_warning_even_after_a_restart(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    f->srv.sc = (struct script){.rcpt_ok = "450 4.2.1 Busy\r\n"};
    queue_message_at(f, "alice@example.test", to, 1, (int64_t)time(NULL) - 5, id);
    start_agent_with(f, 1, 2);
    assert_true(run_until_log(f, "sender delay notification", 5));
    assert_true(flag_file(f, id, "warned"));
    assert_true(run_until_log(f, "attempt=3", 8));
    restart_agent(f, 1, 2);
    assert_true(run_until_log(f, "attempt=2", 8));
    assert_int_equal(count_in_log(f, "sender delay notification"), 1);
    assert_true(queue_holds(f, "Action: delayed"));
    struct seen s = {0};
    size_t count;
    assert_int_equal(deliver_agent_list(f->a, id, view, &s, &count), DELIVER_AGENT_ADMIN_OK);
    assert_true(s.warned);
}

static void test_no_delay_warning_for_the_null_sender(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    f->srv.sc = (struct script){.rcpt_ok = "450 4.2.1 Busy\r\n"};
    queue_message_at(f, "", to, 1, (int64_t)time(NULL) - 5, id);
    start_agent_with(f, 1, 2);
    assert_true(run_until_log(f, "sender is <>: no delay warning", 5));
    assert_null(strstr(f->log, "sender delay notification"));
}

/* ---- relay host rate pacing ---- */

static void test_rate_paces_messages_to_the_relay_host(void **state)
{
    struct fx *f = *state;
    char id1[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    configure_relay(f, "[127.0.0.1]", "tls=none rate=1/second", "");
    queue_message(f, "alice@example.test", to, 1, id1);
    queue_message(f, "alice@example.test", to, 1, id2);
    start_agent(f);
    assert_true(run_until_log(f, "rate 1/second of relay host [127.0.0.1]:", 5));
    assert_non_null(strstr(f->log, "reached; next message in "));
    /* Paced: the second message has not gone (the first may still be finishing). */
    assert_true(f->srv.transactions <= 1);
    for (int i = 0; i < 300 && count_in_log(f, "status=sent") < 2; i++)
        run_for(f, 10);
    assert_int_equal(f->srv.transactions, 2);
    assert_int_equal(count_in_log(f, "attempt=1, dsn=2.0.0, status=sent"), 2); /* no attempt */
    assert_null(strstr(f->log, "status=deferred"));
}

/* ---- waiting for a connection, and reusing it ---- */

static void test_messages_beyond_the_limit_wait_and_reuse_the_connection(void **state)
{
    struct fx *f = *state;
    char id[4][STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    f->notify = STORE_NOTIFY_SUCCESS; /* the peer's lack of DSN goes with its connection */
    for (int i = 0; i < 4; i++)
        queue_message(f, "alice@example.test", to, 1, id[i]);
    start_agent_one_connection(f, 0);
    for (int i = 0; i < 500 && count_in_log(f, "bounce queued") < 4; i++)
        run_for(f, 10);
    assert_int_equal(count_in_log(f, "status=sent"), 4);
    assert_int_equal(count_in_log(f, "sender delivery notification"), 4);
    assert_int_equal(f->srv.sessions, 1);
    assert_int_equal(f->srv.transactions, 4);
    assert_null(strstr(f->log, "status=deferred"));
    for (int i = 0; i < 4; i++)
        assert_false(queued(f, id[i]));
}

/* More messages than may wait in memory (256): the rest wait as jobs, and all go on time. */
static void test_more_messages_than_waiters_all_go(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    enum { N = 300 };
    for (int i = 0; i < N; i++)
        queue_message(f, "alice@example.test", to, 1, id);
    start_agent_one_connection(f, 0); /* the fake serves one connection at a time */
    for (int i = 0; i < 2000 && count_in_log(f, "status=sent") < N; i++)
        run_for(f, 10);
    assert_int_equal(count_in_log(f, "status=sent"), N);
    assert_int_equal(count_in_log(f, "attempt=1, dsn=2.0.0"), N);
    assert_null(strstr(f->log, "status=deferred"));
}

/* A port that takes connections (the kernel's backlog) and never says a word: a destination
 * as slow as can be. */
static int silent_listener(unsigned short *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A destination that never answers has more messages than may wait in memory; another's
 * arrive after them. Those go as fast as their one connection takes them: neither behind the
 * silent one's waiters nor behind its postponed jobs (no retry timer helps here: 300 s). */
static void test_a_silent_destination_does_not_hold_the_others(void **state)
{
    struct fx *f = *state;
    unsigned short port;
    int silent = silent_listener(&port);
    char route[128];
    snprintf(route, sizeof route, "route slow.example smtp:[127.0.0.1]:%u tls=none\n", port);
    configure(f, route);
    char id[STORE_ID_LEN + 1];
    const char *slow[] = {"x@slow.example"}, *fast[] = {"carol@remote.example"};
    enum { N_SLOW = 300, N_FAST = 20 };
    for (int i = 0; i < N_SLOW; i++)
        queue_message(f, "alice@example.test", slow, 1, id);
    struct deliver_agent_opts o = {.base = f->base, .queue = f->q, .log = log_line,
                                   .log_ctx = f};
    deliver_agent_opts_from_config(&o, &f->cfg);
    o.destination.concurrency_start = o.destination.concurrency_max = 1;
    o.retry.first_s = o.retry.max_interval_s = 300;
    char err[256];
    f->a = deliver_agent_new(&o, err, sizeof err);
    assert_non_null(f->a);
    run_for(f, 300); /* every silent one loaded once: waiting or postponed */
    for (int i = 0; i < N_FAST; i++) {
        queue_message(f, "alice@example.test", fast, 1, id);
        assert_true(deliver_agent_submit(f->a, id));
    }
    for (int i = 0; i < 500 && count_in_log(f, "status=sent") < N_FAST; i++)
        run_for(f, 10);
    assert_int_equal(count_in_log(f, "to=<carol@remote.example>, relay=127.0.0.1"), N_FAST);
    assert_int_equal(count_in_log(f, "status=sent"), N_FAST);
    assert_null(strstr(f->log, "status=deferred"));
    deliver_agent_free(f->a); /* before the silent port goes */
    f->a = NULL;
    close(silent);
}

/* One outbound connection in all (max_outbound_connections 1), one per destination, and
 * two destinations A and B whose messages wait in turn: A1 holds the place; A2 and A3 wait
 * for A, B1 and B2 for the place. When A1's connection closes, its place goes to B1 (B holds
 * none) and A's room to A2: A3 waits on with no connection of A open nor coming, and must
 * still be counted as waiting for the place (agent_slots.c): a waiter for its destination
 * with none of its connections open nor coming is what the testing build's check of the
 * waiters aborts on. Every message arrives, each over its own destination's connection. */
static void test_a_destination_left_without_connections_keeps_its_waiters(void **state)
{
    struct fx *f = *state;
    struct fake b = {0};
    fake_listen(f->base, &b);
    char route[128];
    snprintf(route, sizeof route, "route b.example smtp:[127.0.0.1]:%u tls=none\n", b.port);
    configure(f, route);
    struct deliver_agent_opts o = {.base = f->base, .queue = f->q, .log = log_line,
                                   .log_ctx = f};
    deliver_agent_opts_from_config(&o, &f->cfg);
    o.destination.concurrency_start = o.destination.concurrency_max = 1;
    o.max_connections = 1;
    char err[256];
    f->a = deliver_agent_new(&o, err, sizeof err);
    assert_non_null(f->a);
    const char *to_a[] = {"carol@remote.example"}, *to_b[] = {"x@b.example"};
    const char *const *order[] = {to_a, to_a, to_b, to_b, to_a}; /* A1 A2 B1 B2 A3 */
    enum { N = sizeof order / sizeof order[0] };
    char id[N][STORE_ID_LEN + 1];
    for (size_t i = 0; i < N; i++)
        queue_message(f, "alice@example.test", order[i], 1, id[i]);
    for (size_t i = 0; i < N; i++) /* no loop in between: their attempts start in this order */
        assert_true(deliver_agent_submit(f->a, id[i]));
    for (int i = 0; i < 500 && count_in_log(f, "status=sent") < N; i++)
        run_for(f, 10);
    assert_int_equal(count_in_log(f, "to=<carol@remote.example>, relay=127.0.0.1"), 3);
    assert_int_equal(count_in_log(f, "to=<x@b.example>, relay=127.0.0.1"), 2);
    assert_int_equal(count_in_log(f, "status=sent"), N);
    assert_null(strstr(f->log, "status=deferred"));
    assert_int_equal(f->srv.transactions, 3);
    assert_int_equal(b.transactions, 2);
    deliver_agent_free(f->a); /* before b goes */
    f->a = NULL;
    fake_stop(&b);
}

static void test_messages_per_connection_cap_opens_a_new_one(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    for (int i = 0; i < 4; i++)
        queue_message(f, "alice@example.test", to, 1, id);
    start_agent_one_connection(f, 2);
    for (int i = 0; i < 500 && count_in_log(f, "status=sent") < 4; i++)
        run_for(f, 10);
    assert_int_equal(count_in_log(f, "status=sent"), 4);
    assert_int_equal(f->srv.sessions, 2);
    assert_null(strstr(f->log, "status=deferred"));
}

/* ---- required-verify ---- */

/* A blocking server in its own thread that offers STARTTLS with a self-signed certificate. */
struct tls_fake {
    int lfd;
    unsigned short port;
    SSL_CTX *ctx;
    pthread_t thread;
};

static void send_line(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

static bool read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        if (recv(fd, buf + n, 1, 0) != 1)
            return false;
        if (buf[n++] == '\n')
            break;
    }
    buf[n] = '\0';
    return true;
}

static void *tls_fake_main(void *arg)
{
    struct tls_fake *t = arg;
    int c = accept(t->lfd, NULL, NULL);
    char line[512];
    send_line(c, "220 tls.fake ESMTP\r\n");
    while (read_line(c, line, sizeof line)) {
        if (strncasecmp(line, "EHLO", 4) == 0) {
            send_line(c, "250-tls.fake\r\n250 STARTTLS\r\n");
        } else if (strncasecmp(line, "STARTTLS", 8) == 0) {
            send_line(c, "220 2.0.0 go ahead\r\n");
            SSL *ssl = SSL_new(t->ctx);
            SSL_set_fd(ssl, c);
            SSL_accept(ssl); /* the client gives up on the certificate */
            SSL_free(ssl);
            break;
        } else {
            send_line(c, "221 bye\r\n");
            break;
        }
    }
    close(c);
    return NULL;
}

static void test_required_verify_defers_on_a_bad_certificate(void **state)
{
    struct fx *f = *state;
    struct tls_fake t = {.lfd = socket(AF_INET, SOCK_STREAM, 0)};
    char err[256];
    t.ctx = net_tls_context("", "", f->dir, "wrong.example", NULL, err, sizeof err);
    assert_non_null(t.ctx);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(t.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(t.lfd, 1), 0);
    assert_int_equal(getsockname(t.lfd, (struct sockaddr *)&sa, &len), 0);
    t.port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&t.thread, NULL, tls_fake_main, &t), 0);
    configure_relay_port(f, "[127.0.0.1]", t.port, "tls=required-verify", "");
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    start_agent(f);
    queue_message(f, "alice@example.test", to, 1, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "dsn=4.7.5, status=deferred (TLS certificate verification "
                                 "failed for 127.0.0.1: ", 10));
    pthread_join(t.thread, NULL);
    close(t.lfd);
    SSL_CTX_free(t.ctx);
    assert_true(queued(f, id));
}

/* ---- MX routing against a tiny DNS server on the loop ---- */

struct rr {
    const char *name;
    int type; /* 1 A, 15 MX */
    unsigned short pref;
    const char *data; /* A: dotted quad; MX: host, "." for a null MX */
};

static const struct rr ZONE[] = {
    {"fallset.test", 15, 5, "dead.fallset.test"},
    {"fallset.test", 15, 50, "alive.fallset.test"},
    {"dead.fallset.test", 1, 0, "127.0.0.3"},
    {"alive.fallset.test", 1, 0, "127.0.0.1"},
    {"deadset.test", 15, 10, "d1.deadset.test"},
    {"deadset.test", 15, 20, "d2.deadset.test"},
    {"d1.deadset.test", 1, 0, "127.0.0.3"},
    {"d2.deadset.test", 1, 0, "127.0.0.4"},
    {"nullmx.test", 15, 0, "."},
};

struct dns_fake {
    int fd;
    unsigned short port;
    struct event *ev;
};

/* Appends name in DNS wire form; false when it does not fit. */
static bool put_name(unsigned char *out, size_t *n, size_t cap, const char *name)
{
    if (strcmp(name, ".") != 0) {
        for (const char *p = name; *p;) {
            size_t len = strcspn(p, ".");
            if (*n + 1 + len >= cap)
                return false;
            out[(*n)++] = (unsigned char)len;
            memcpy(out + *n, p, len);
            *n += len;
            p += len + (p[len] == '.');
        }
    }
    if (*n >= cap)
        return false;
    out[(*n)++] = 0;
    return true;
}

static void dns_answer(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    unsigned char q[512], out[1024];
    struct sockaddr_storage from;
    socklen_t flen = sizeof from;
    ssize_t got = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &flen);
    if (got < 17)
        return;
    char name[256] = "";
    size_t off = 12, nl = 0;
    while (off < (size_t)got && q[off] != 0 && nl < 200) {
        size_t len = q[off++];
        if (off + len > (size_t)got)
            return;
        if (nl > 0)
            name[nl++] = '.';
        for (size_t i = 0; i < len; i++)
            name[nl++] = (char)tolower(q[off + i]);
        off += len;
    }
    name[nl] = '\0';
    off++;
    if (off + 4 > (size_t)got)
        return;
    int qtype = q[off] << 8 | q[off + 1];
    off += 4;
    bool exists = false;
    size_t n = 12, an = 0;
    memcpy(out, q, off);
    n = off;
    for (size_t i = 0; i < sizeof ZONE / sizeof ZONE[0]; i++) {
        if (strcmp(ZONE[i].name, name) != 0)
            continue;
        exists = true;
        if (ZONE[i].type != qtype)
            continue;
        unsigned char rd[300];
        size_t rl = 0;
        if (qtype == 1) {
            assert_int_equal(inet_pton(AF_INET, ZONE[i].data, rd), 1);
            rl = 4;
        } else {
            rd[0] = 0;
            rd[1] = (unsigned char)ZONE[i].pref;
            rl = 2;
            assert_true(put_name(rd, &rl, sizeof rd, ZONE[i].data));
        }
        const unsigned char head[] = {0xc0, 12, 0, (unsigned char)qtype, 0, 1, 0, 0, 0, 60,
                                      0, (unsigned char)rl};
        memcpy(out + n, head, sizeof head);
        memcpy(out + n + sizeof head, rd, rl);
        n += sizeof head + rl;
        an++;
    }
    out[2] = 0x84 | (q[2] & 1); /* QR, AA, RD as asked */
    out[3] = exists ? 0 : 3;    /* NXDOMAIN for names not in the zone */
    out[4] = 0, out[5] = 1, out[6] = 0, out[7] = (unsigned char)an;
    memset(out + 8, 0, 4);
    sendto(fd, out, n, 0, (struct sockaddr *)&from, flen);
}

static void dns_start(struct fx *f, struct dns_fake *d)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    d->fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_int_equal(bind(d->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(d->fd, (struct sockaddr *)&sa, &len), 0);
    d->port = ntohs(sa.sin_port);
    d->ev = event_new(f->base, d->fd, EV_READ | EV_PERSIST, dns_answer, d);
    event_add(d->ev, NULL);
}

static void dns_stop(struct dns_fake *d)
{
    event_free(d->ev);
    close(d->fd);
}

/* The fake SMTP server behind MX hosts of the zone: routes send domains to port. */
static void configure_mx(struct fx *f, const struct dns_fake *d)
{
    char routes[512];
    snprintf(routes, sizeof routes,
             "resolver 127.0.0.1:%u\nroute fall.example smtp:fallset.test:%u tls=none\n"
             "route dead.example smtp:deadset.test:%u tls=none\n",
             d->port, f->srv.port, f->srv.port);
    configure_line(f, "", routes);
}

static void test_mx_falls_back_to_the_next_host(void **state)
{
    struct fx *f = *state;
    struct dns_fake d;
    dns_start(f, &d);
    configure_mx(f, &d);
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@fall.example"};
    start_agent(f);
    queue_message(f, "alice@example.test", to, 1, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "status=sent", 10));
    char want[128];
    snprintf(want, sizeof want, "dead.fallset.test[127.0.0.3]:%u: connect to", f->srv.port);
    assert_non_null(strstr(f->log, want));
    assert_non_null(strstr(f->log, "; trying the next address"));
    snprintf(want, sizeof want, "relay=alive.fallset.test[127.0.0.1]:%u, ", f->srv.port);
    assert_non_null(strstr(f->log, want));
    assert_null(strstr(f->log, "status=deferred"));
    assert_false(queued(f, id));
    dns_stop(&d);
}

static void test_mx_all_hosts_refuse_defers_441(void **state)
{
    struct fx *f = *state;
    struct dns_fake d;
    dns_start(f, &d);
    configure_mx(f, &d);
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@dead.example"};
    start_agent(f);
    queue_message(f, "alice@example.test", to, 1, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "status=deferred", 10));
    assert_non_null(strstr(f->log, "dsn=4.4.1, status=deferred (no connection to any of the 2 "
                                   "addresses of deadset.test:"));
    char want[128];
    snprintf(want, sizeof want, "last: connect to d2.deadset.test[127.0.0.4]:%u: ", f->srv.port);
    assert_non_null(strstr(f->log, want));
    assert_true(queued(f, id));
    dns_stop(&d);
}

static void test_mx_expiry_still_bounces_447(void **state)
{
    struct fx *f = *state;
    struct dns_fake d;
    dns_start(f, &d);
    configure_mx(f, &d);
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@dead.example"};
    start_agent(f);
    queue_message_at(f, "alice@example.test", to, 1, (int64_t)time(NULL) - 61, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "from=<>, bounce queued", 10));
    assert_non_null(strstr(f->log, "dsn=4.4.7, status=bounced (no connection to any of the 2 "
                                   "addresses of deadset.test:"));
    assert_false(queued(f, id));
    dns_stop(&d);
}

static void test_dns_outcomes_bounce_or_defer(void **state)
{
    struct fx *f = *state;
    struct dns_fake d;
    dns_start(f, &d);
    configure_mx(f, &d);
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@nullmx.test", "dave@nowhere.test"};
    start_agent(f);
    queue_message(f, "alice@example.test", to, 2, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "from=<>, bounce queued", 10));
    assert_non_null(strstr(f->log, "to=<carol@nullmx.test>, relay=none, "));
    assert_non_null(strstr(f->log, "dsn=5.1.10, status=bounced (the domain publishes a null MX"));
    assert_non_null(strstr(f->log, "to=<dave@nowhere.test>, relay=none, "));
    assert_non_null(strstr(f->log, "dsn=5.1.2, status=bounced (the domain does not exist"));
    assert_false(queued(f, id));
    assert_int_equal(f->srv.sessions, 0);
    dns_stop(&d);
}

static uint64_t fake_ms(void *ctx)
{
    return *(const uint64_t *)ctx;
}

static void test_rate_with_given_counters_logs_once_and_waits_for_the_clock(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    uint64_t clock_ms = 1000000;
    struct policy_counters *c = policy_counters_memory_new(fake_ms, &clock_ms, 16);
    assert_non_null(c);
    configure_relay(f, "[127.0.0.1]", "tls=none rate=1/second", "");
    char key[64];
    snprintf(key, sizeof key, "relay:127.0.0.1:%u", f->srv.port);
    struct policy_counters_request req = {.key = key, .amount = 1, .limit = 1,
                                          .window_ms = 1000};
    struct policy_counters_result res;
    assert_true(policy_counters_hit(c, &req, &res, NULL, NULL, NULL)); /* another node's */
    assert_int_equal(res.status, POLICY_COUNTERS_ALLOWED);
    start_agent(f);
    deliver_agent_set_counters(f->a, c);
    queue_message(f, "alice@example.test", to, 1, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "reached; next message in", 5));
    run_for(f, 2500); /* the clock stands still: asked again, still denied, logged once */
    assert_int_equal(count_in_log(f, "reached; next message in"), 1);
    assert_int_equal(f->srv.transactions, 0);
    clock_ms += 2000;
    assert_true(run_until_log(f, "attempt=1, dsn=2.0.0, status=sent", 5));
    deliver_agent_free(f->a); /* before the counters it uses */
    f->a = NULL;
    policy_counters_free(c);
}

/* ---- a next hop that does not resolve ---- */

static void test_unresolvable_next_hop_defers(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    /* a resolver nobody answers on: the look-up fails for the moment */
    configure_relay(f, "[relay.invalid]", "tls=none", "resolver 127.0.0.1:9\n");
    start_agent(f);
    queue_message(f, "alice@example.test", to, 1, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "dsn=4.4.3, status=deferred", 15));
    assert_non_null(strstr(f->log, "relay=none"));
    assert_true(queued(f, id));
}

/* RFC 3461 §5.2.2: a peer without DSN cannot report success, so we do, once for all. */
static void test_success_relayed_to_a_peer_without_dsn(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example", "dave@remote.example"};
    f->notify = STORE_NOTIFY_SUCCESS | STORE_NOTIFY_FAILURE;
    start_agent(f);
    queue_message(f, "alice@example.test", to, 2, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "from=<>, bounce queued", 5));
    assert_int_equal(count_in_log(f, "sender delivery notification"), 1);
    assert_null(strstr(f->srv.last_rcpt, "NOTIFY"));
    assert_true(queue_holds(f, "Action: relayed"));
    assert_true(queue_holds(f, "Final-Recipient: rfc822; dave@remote.example"));
    assert_true(queue_holds(f, "Diagnostic-Code: smtp; 250 2.0.0 Ok: queued"));
    assert_true(queue_holds(f, "Status: 2.0.0"));
}

/* A peer offering DSN takes NOTIFY over: nothing from us. */
static void test_success_passed_on_to_a_peer_with_dsn(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    f->notify = STORE_NOTIFY_SUCCESS;
    f->srv.sc = (struct script){.dsn = true};
    start_agent(f);
    queue_message(f, "alice@example.test", to, 1, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "status=sent", 5));
    run_for(f, 200);
    assert_non_null(strstr(f->srv.last_rcpt, "NOTIFY=SUCCESS"));
    assert_null(strstr(f->log, "notification"));
    assert_false(queued(f, id));
}

/* Without NOTIFY=SUCCESS, or from <>, a relayed message gets no report. */
static void test_no_success_report_unasked_or_for_null_sender(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1];
    const char *to[] = {"carol@remote.example"};
    start_agent(f);
    queue_message(f, "alice@example.test", to, 1, id);
    deliver_agent_submit(f->a, id);
    assert_true(run_until_log(f, "status=sent", 5));
    f->notify = STORE_NOTIFY_SUCCESS;
    queue_message(f, "", to, 1, id2);
    deliver_agent_submit(f->a, id2);
    assert_true(run_until_log(f, "sender is <>: no success report for 1 recipient(s)", 5));
    run_for(f, 200);
    assert_null(strstr(f->log, "notification"));
    assert_false(queued(f, id));
    assert_false(queued(f, id2));
}

/* The local runner's success hook: bob's delivery gets one "delivered" report, alice's other
 * (remote, undelivered) recipient none; a message from <> none. */
static void test_local_delivery_reports_delivered(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1];
    const char *to[] = {"bob@example.test", "carol@remote.example"};
    start_agent(f);
    int qfd = -1;
    assert_int_equal(store_remote_open_dir(f->cfg.queue_dir, &qfd), STORE_OK);
    struct store_local_cfg lc = {.queue_fd = qfd, .maildir_root = f->cfg.maildir_root,
                                 .hostname = "mx.example.test", .retry_seconds = 30};
    struct store_local *l = NULL;
    char err[256];
    assert_int_equal(store_local_start(&lc, &l, err, sizeof err), STORE_OK);
    store_local_set_success_hook(l, deliver_agent_send_delivered, f->a);
    f->notify = STORE_NOTIFY_SUCCESS;
    queue_message(f, "alice@example.test", to, 2, id);
    assert_true(store_local_submit(l, id, -1));
    assert_true(run_until_log(f, "from=<>, bounce queued", 5));
    assert_int_equal(count_in_log(f, "sender delivery notification"), 1);
    assert_true(queue_holds(f, "Action: delivered"));
    assert_true(queue_holds(f, "Final-Recipient: rfc822; bob@example.test"));
    assert_false(queue_holds(f, "Final-Recipient: rfc822; carol@remote.example"));
    queue_message(f, "", to, 1, id2);
    assert_true(store_local_submit(l, id2, -1));
    assert_true(run_until_log(f, "sender is <>: no success report for 1 recipient(s)", 5));
    assert_int_equal(count_in_log(f, "sender delivery notification"), 1);
    store_local_stop(l);
    close(qfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivers_and_removes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_relayed_to_a_peer_without_dsn, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_success_passed_on_to_a_peer_with_dsn, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_success_report_unasked_or_for_null_sender,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_delivery_reports_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_550_bounces_to_a_local_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_sender_is_never_bounced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_450_defers_then_retry_delivers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_452_splits_on_one_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused_defers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mail_refused_bounces_all_and_421_defers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expired_deferral_bounces_447, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery_scan_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_shows_states_attempts_and_replies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flush_ignores_the_retry_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_by_id_ignores_destination_backoff, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hold_survives_a_restart_until_release, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delete_bounces_undelivered_recipients, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_destinations_lists_the_relay_host, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_one_delay_warning_even_after_a_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_delay_warning_for_the_null_sender, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rate_paces_messages_to_the_relay_host, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unresolvable_next_hop_defers, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_rate_with_given_counters_logs_once_and_waits_for_the_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mx_falls_back_to_the_next_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mx_all_hosts_refuse_defers_441, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_outcomes_bounce_or_defer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mx_expiry_still_bounces_447, setup, teardown),
        cmocka_unit_test_setup_teardown(test_required_verify_defers_on_a_bad_certificate, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_messages_beyond_the_limit_wait_and_reuse_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_per_connection_cap_opens_a_new_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_more_messages_than_waiters_all_go, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_destination_left_without_connections_keeps_its_waiters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_silent_destination_does_not_hold_the_others,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
