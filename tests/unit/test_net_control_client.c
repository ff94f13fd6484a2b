/* tests/unit/test_net_control_client.c — the blocking control-socket client against a scripted
 * peer on a temp path: the request line it sends, where each status's body goes, answers in
 * pieces, malformed or missing answers, the timeout, and requests refused before connecting. */
#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "net/control_client.h"

#define PIECES_MAX 8

/* A one-connection server that speaks the protocol's bytes as a test scripts them: it reads
 * the request line, then writes the answer pieces with a pause between, then closes. */
struct peer {
    char dir[64];
    char path[128];
    int lfd;
    pthread_t thread;
    const char *pieces[PIECES_MAX]; /* the answer, written piece by piece */
    bool silent;                    /* never answers: waits until the client leaves */
    char request[NET_CONTROL_REQUEST_MAX + 64];
    size_t request_len;
};

static void pause_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&t, NULL);
}

static void *peer_run(void *arg)
{
    struct peer *p = arg;
    int fd = accept(p->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    while (p->request_len < sizeof p->request - 1) {
        ssize_t n = recv(fd, p->request + p->request_len, sizeof p->request - 1 - p->request_len,
                         0);
        if (n <= 0)
            break;
        p->request_len += (size_t)n;
        if (memchr(p->request, '\n', p->request_len))
            break;
    }
    p->request[p->request_len] = '\0';
    if (p->silent) {
        char sink[64];
        while (recv(fd, sink, sizeof sink, 0) > 0)
            ;
    }
    for (size_t i = 0; i < PIECES_MAX && p->pieces[i]; i++) {
        if (i > 0)
            pause_ms(5); /* separate reads on the client's side */
        ssize_t ignored = send(fd, p->pieces[i], strlen(p->pieces[i]), MSG_NOSIGNAL);
        (void)ignored;
    }
    close(fd);
    return NULL;
}

static int setup(void **state)
{
    struct peer *p = calloc(1, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "/tmp/clearmta-ctlc-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    snprintf(p->path, sizeof p->path, "%s/%s", p->dir, NET_CONTROL_SOCKET_NAME);
    p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(p->lfd >= 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, p->path, strlen(p->path) + 1);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&sun, sizeof sun), 0);
    assert_int_equal(listen(p->lfd, 4), 0);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct peer *p = *state;
    close(p->lfd);
    unlink(p->path);
    rmdir(p->dir);
    free(p);
    return 0;
}

/* Runs net_control_call against the peer (started only when connect is set: a request refused
 * before connecting must not leave a thread waiting in accept). Returns the status; out and err
 * get what the client wrote to them, or err its errbuf when the status is -1. */
static int call(struct peer *p, bool connect, int argc, char **argv, unsigned timeout_ms,
                char *out, char *err)
{
    int po[2], pe[2];
    char errbuf[256] = "";
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    if (connect)
        assert_int_equal(pthread_create(&p->thread, NULL, peer_run, p), 0);
    int status = net_control_call(p->path, argc, argv, po[1], pe[1], timeout_ms, errbuf,
                                  sizeof errbuf);
    if (connect)
        pthread_join(p->thread, NULL);
    close(po[1]);
    close(pe[1]);
    ssize_t n = read(po[0], out, 255);
    out[n > 0 ? n : 0] = '\0';
    n = read(pe[0], err, 255);
    err[n > 0 ? n : 0] = '\0';
    close(po[0]);
    close(pe[0]);
    if (status < 0)
        snprintf(err, 256, "%s", errbuf);
    return status;
}

/* Runs argv against a peer that answers with answer (NULL: it closes without a word); checks
 * the request line the peer read, the status, and what went to out and to err (for status -1:
 * the client's message). */
static void expect_exchange(struct peer *p, int argc, char **argv, const char *answer,
                            const char *request, int status, const char *want_out,
                            const char *want_err)
{
    char out[256], err[256];
    memset(p->pieces, 0, sizeof p->pieces);
    p->request_len = 0;
    p->pieces[0] = answer;
    assert_int_equal(call(p, true, argc, argv, 5000, out, err), status);
    assert_string_equal(p->request, request);
    assert_string_equal(out, want_out);
    assert_string_equal(err, want_err);
}

/* Status 0's body goes to out, any other status's to err; --json travels as an argument. */
static void test_status_routes_body(void **state)
{
    struct peer *p = *state;
    char *json[] = {"echo", "a", "--json"}, *fail[] = {"echo", "fail"}, *nope[] = {"nope"};
    char *flush[] = {"queue", "flush"};
    expect_exchange(p, 3, json, "status 0\na json\n", "echo a --json\n", 0, "a json\n", "");
    expect_exchange(p, 2, fail, "status 1\nfail\n", "echo fail\n", 1, "", "fail\n");
    expect_exchange(p, 1, nope, "status 2\nunknown command 'nope'; commands: echo\n", "nope\n",
                    2, "", "unknown command 'nope'; commands: echo\n");
    expect_exchange(p, 2, flush, "status 0\n", "queue flush\n", 0, "", "");
}

/* The status line may arrive a byte at a time and share a read with the body. */
static void test_answer_in_pieces(void **state)
{
    struct peer *p = *state;
    char out[256], err[256];
    char *argv[] = {"queue", "list"};
    const char *pieces[] = {"s", "tatus", " 0", "\nfir", "st\n", "second\n", NULL};
    memcpy(p->pieces, pieces, sizeof pieces);
    assert_int_equal(call(p, true, 2, argv, 5000, out, err), 0);
    assert_string_equal(out, "first\nsecond\n");
    assert_string_equal(err, "");
}

static void test_malformed_answers(void **state)
{
    struct peer *p = *state;
    char *argv[] = {"queue", "list"}, want[256];
    snprintf(want, sizeof want, "malformed answer from the server (control socket %s)", p->path);
    static const char *const bad[] = {
        "status 3\nbody\n",         /* the protocol knows 0, 1 and 2 */
        "status 10\n",               /* one digit */
        "hello\n",
        "Status 0\n",
        "status 0 and more text\n",  /* no LF within the status line's room */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_exchange(p, 2, argv, bad[i], "queue list\n", -1, "", want);
}

static void test_closed_without_answer(void **state)
{
    struct peer *p = *state;
    char *argv[] = {"queue", "list"}, want[256];
    snprintf(want, sizeof want,
             "the server closed the connection without answering (control socket %s)", p->path);
    expect_exchange(p, 2, argv, NULL, "queue list\n", -1, "", want);
    /* A status line cut short is no answer either. */
    expect_exchange(p, 2, argv, "status 0", "queue list\n", -1, "", want);
}

static void test_timeout(void **state)
{
    struct peer *p = *state;
    char out[256], err[256], want[256];
    char *argv[] = {"queue", "list"};
    p->silent = true;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(call(p, true, 2, argv, 200, out, err), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    snprintf(want, sizeof want, "no complete answer from the server in time (control socket %s)",
             p->path);
    assert_string_equal(err, want);
    long ms = (long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 150 && ms < 5000);
}

/* What the protocol cannot carry is refused with status 2 before any connection is made. */
static void expect_refused(struct peer *p, int argc, char **argv, const char *why)
{
    char out[256], err[256];
    assert_int_equal(call(p, false, argc, argv, 5000, out, err), 2);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, why));
}

static void test_refused_before_connecting(void **state)
{
    struct peer *p = *state;
    char *space[] = {"echo", "a b"};
    expect_refused(p, 2, space, "holding a space");
    char *empty[] = {"echo", ""};
    expect_refused(p, 2, empty, "empty or holding a space");
    char *ctl[] = {"echo", "a\tb"};
    expect_refused(p, 2, ctl, "argument 2 holds a control character");
    char *del[] = {"echo\x7f"};
    expect_refused(p, 1, del, "argument 1 holds a control character");
    expect_refused(p, 0, space, "between 1 and 32 arguments");
    char *many[NET_CONTROL_ARGS_MAX + 1];
    for (size_t i = 0; i < NET_CONTROL_ARGS_MAX + 1; i++)
        many[i] = "x";
    expect_refused(p, NET_CONTROL_ARGS_MAX + 1, many, "between 1 and 32 arguments");
}

/* The request bound counts the whole line with its LF: NET_CONTROL_REQUEST_MAX bytes go, one
 * byte more is refused. */
static void test_request_bound(void **state)
{
    struct peer *p = *state;
    char out[256], err[256];
    size_t fit = NET_CONTROL_REQUEST_MAX - 7; /* "queue ", the argument, LF */
    char *arg = malloc(fit + 2);
    memset(arg, 'a', fit + 1);
    arg[fit] = '\0';
    char *argv[] = {"queue", arg};
    p->pieces[0] = "status 0\n";
    assert_int_equal(call(p, true, 2, argv, 5000, out, err), 0);
    assert_int_equal(p->request_len, NET_CONTROL_REQUEST_MAX);
    assert_int_equal(p->request[NET_CONTROL_REQUEST_MAX - 1], '\n');
    arg[fit] = 'a';
    arg[fit + 1] = '\0';
    expect_refused(p, 2, argv, "request longer than 4096 bytes");
    free(arg);
}

static void test_call_without_server(void **state)
{
    (void)state;
    char err[256] = "";
    char *argv[] = {"queue", "list"};
    int rc = net_control_call("/tmp/clearmta-no-such-dir/control.sock", 2, argv, 1, 2, 1000, err,
                              sizeof err);
    assert_int_equal(rc, -1);
    assert_string_equal(err, "no clearmta server is running (no control socket at "
                             "/tmp/clearmta-no-such-dir/control.sock)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status_routes_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_in_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_without_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_before_connecting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_bound, setup, teardown),
        cmocka_unit_test(test_call_without_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
