/* tests/unit/test_deliver_agent.c — the delivery agent on a real event loop against a tiny
 * scripted SMTP server in the same loop: delivery, 550 bounce injection, <> never bounced,
 * 450 deferral kept on disk, connection refused, 452 split, recovery scan at start. */
#include "unit.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deliver/agent.h"
#include "store/queue_file.h"

/* ---- a scripted server: one reply per command, "rcpt" replies by recipient number ---- */

struct script {
    const char *mail, *rcpt_ok, *rcpt_bad, *data_end;
    const char *bad_rcpt;  /* the address that gets rcpt_bad */
    unsigned rcpt_max;     /* 452 4.5.3 after this many in a transaction (0: none) */
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
};

struct fx {
    char dir[64];
    struct event_base *base;
    struct policy_config cfg;
    struct store_queue *q;
    struct event *qev;
    struct deliver_agent *a;
    struct fake srv;
    char log[65536];
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
        say(s, "250-fake.test\r\n250 ENHANCEDSTATUSCODES\r\n");
    } else if (strncasecmp(line, "MAIL", 4) == 0) {
        s->rcpts = 0;
        say(s, s->sc.mail ? s->sc.mail : "250 2.1.0 Ok\r\n");
    } else if (strncasecmp(line, "RCPT", 4) == 0) {
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

static void fake_start(struct fx *f)
{
    struct fake *s = &f->srv;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    s->cfd = -1;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(s->lfd, 8), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &len), 0);
    s->port = ntohs(sa.sin_port);
    s->lev = event_new(f->base, s->lfd, EV_READ | EV_PERSIST, on_accept, s);
    event_add(s->lev, NULL);
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

static void log_line(void *ctx, const char *line)
{
    struct fx *f = ctx;
    int n = snprintf(f->log + f->log_len, sizeof f->log - f->log_len, "%s\n", line);
    if (n > 0 && (size_t)n < sizeof f->log - f->log_len)
        f->log_len += (size_t)n;
}

static void on_queue(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    store_queue_process(arg);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
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
    char conf[1024];
    int n = snprintf(conf, sizeof conf,
                     "hostname mx.example.test\ndata_dir %s\ndomain example.test users alice "
                     "bob\nrelayhost [127.0.0.1]:%u tls=none\nretry_first 1\nretry_max 2\n"
                     "queue_lifetime 60\ndelay_warning 0\n",
                     f->dir, f->srv.port);
    assert_true(n > 0 && (size_t)n < sizeof conf);
    assert_int_equal(policy_config_load_buffer("t.conf", conf, (size_t)n, &f->cfg, NULL), 0);
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
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void start_agent(struct fx *f)
{
    struct deliver_agent_opts o = {.base = f->base, .queue = f->q, .log = log_line,
                                   .log_ctx = f};
    deliver_agent_opts_from_config(&o, &f->cfg);
    char err[256];
    f->a = deliver_agent_new(&o, err, sizeof err);
    assert_non_null(f->a);
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
    for (size_t i = 0; i < n; i++)
        r[i] = (struct store_rcpt){.address = to[i]};
    struct store_envelope env = {.sender = sender, .rcpts = r, .n_rcpts = n, .arrival = arrival};
    struct store_msg *m;
    assert_int_equal(store_msg_begin(f->q, &env, &m), STORE_OK);
    static const char body[] = "Subject: t\r\n\r\nhello\r\n.dot\r\n";
    assert_int_equal(store_msg_write(m, body, sizeof body - 1), STORE_OK);
    id[0] = '\0';
    store_msg_commit(m, committed, id);
    for (int i = 0; i < 500 && id[0] == '\0'; i++)
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivers_and_removes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_550_bounces_to_a_local_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_sender_is_never_bounced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_450_defers_then_retry_delivers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_452_splits_on_one_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused_defers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mail_refused_bounces_all_and_421_defers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expired_deferral_bounces_447, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery_scan_at_start, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
