/* tests/unit/test_net_control.c — the control socket's server on a temp path, driven by
 * stepping the event loop: requests and responses as bytes, async answers, clients that leave
 * or stop reading, the request bound, stale and live socket files. The client: its own test. */
#include "unit.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "net/control.h"

struct fixture {
    char dir[64];
    char path[128];
    struct event_base *base;
    struct net_control *ctl;
    /* what the handlers saw */
    int argc;
    char args[256];
    bool json;
    struct net_control_request *pending[16];
    size_t n_pending;
};

/* Steps the loop without blocking for about ms milliseconds. */
static void step(struct fixture *f, int ms)
{
    for (int i = 0; i < ms; i++) {
        event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        struct timespec t = {0, 1000000};
        nanosleep(&t, NULL);
    }
}

static void record(struct fixture *f, int argc, char **argv, bool json)
{
    f->argc = argc;
    f->json = json;
    size_t n = 0;
    f->args[0] = '\0';
    for (int i = 0; i < argc && n < sizeof f->args; i++) {
        int w = snprintf(f->args + n, sizeof f->args - n, "%s|", argv[i]);
        n += w > 0 ? (size_t)w : 0;
    }
}

/* echo: answers at once with its arguments. */
static void h_echo(void *ctx, struct net_control_request *req, int argc, char **argv, bool json)
{
    struct fixture *f = ctx;
    record(f, argc, argv, json);
    for (int i = 1; i < argc; i++)
        net_control_printf(req, "%s%s", i > 1 ? " " : "", argv[i]);
    net_control_printf(req, "%s\n", json ? " json" : "");
    net_control_finish(req, argc > 1 && strcmp(argv[1], "fail") == 0 ? 1 : 0);
}

/* later: keeps the request for the test to finish. */
static void h_later(void *ctx, struct net_control_request *req, int argc, char **argv, bool json)
{
    struct fixture *f = ctx;
    record(f, argc, argv, json);
    f->pending[f->n_pending++] = req;
}

/* strings: JSON strings with hostile bytes (C0, DEL, C1, ill-formed UTF-8). */
static void h_strings(void *ctx, struct net_control_request *req, int argc, char **argv,
                      bool json)
{
    (void)ctx, (void)argc, (void)argv, (void)json;
    static const char *const samples[] = {"a\"b\\c", "tab\tnl\ncr\r\x01\x7f",
                                          "caf\xc3\xa9 csi\xc2\x9b nbsp\xc2\xa0",
                                          "bad\xff\xc3", "\xed\xa0\x80", ""};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        net_control_json_string(req, samples[i]);
        net_control_write(req, "\n", 1);
    }
    net_control_json_string(req, NULL);
    net_control_finish(req, 0);
}

/* big: a response much larger than any socket buffer. */
static void h_big(void *ctx, struct net_control_request *req, int argc, char **argv, bool json)
{
    (void)ctx, (void)argc, (void)argv, (void)json;
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 64; i++)
        assert_true(net_control_write(req, chunk, sizeof chunk));
    net_control_finish(req, 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/clearmta-ctl-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/%s", f->dir, NET_CONTROL_SOCKET_NAME);
    f->base = event_base_new();
    char err[256] = "";
    f->ctl = net_control_new(f->base, f->path, err, sizeof err);
    if (!f->ctl)
        fail_msg("net_control_new: %s", err);
    assert_true(net_control_register(f->ctl, "echo", h_echo, f));
    assert_true(net_control_register(f->ctl, "later", h_later, f));
    assert_true(net_control_register(f->ctl, "strings", h_strings, f));
    assert_true(net_control_register(f->ctl, "big", h_big, f));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    net_control_free(f->ctl);
    event_base_free(f->base);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static int client(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, path, strlen(path) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

/* Steps the loop and reads until the server closes; returns a malloc'd NUL-terminated copy. */
static char *response(struct fixture *f, int fd, size_t *len_out)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (int i = 0; i < 20000; i++) {
        event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        if (len + 65536 + 1 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t n = recv(fd, buf + len, 65536, 0);
        if (n == 0)
            break;
        if (n > 0) {
            len += (size_t)n;
            continue;
        }
        assert_true(errno == EAGAIN);
        struct timespec t = {0, 500000};
        nanosleep(&t, NULL);
    }
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    close(fd);
    return buf;
}

static char *ask(struct fixture *f, const char *line)
{
    int fd = client(f->path);
    send_all(fd, line, strlen(line));
    return response(f, fd, NULL);
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    char *r = ask(f, "echo hello world\n");
    assert_string_equal(r, "status 0\nhello world\n");
    assert_int_equal(f->argc, 3);
    assert_string_equal(f->args, "echo|hello|world|");
    assert_false(f->json);
    free(r);
    r = ask(f, "echo fail\r\n"); /* CRLF tolerated */
    assert_string_equal(r, "status 1\nfail\n");
    free(r);
}

static void test_json_flag_is_stripped(void **state)
{
    struct fixture *f = *state;
    char *r = ask(f, "echo --json list\n");
    assert_string_equal(r, "status 0\nlist json\n");
    assert_int_equal(f->argc, 2);
    assert_string_equal(f->args, "echo|list|");
    assert_true(f->json);
    free(r);
    r = ask(f, "echo list --json\n");
    assert_string_equal(r, "status 0\nlist json\n");
    free(r);
}

static void test_bad_requests(void **state)
{
    struct fixture *f = *state;
    char *r = ask(f, "nosuch thing\n");
    assert_string_equal(r, "status 2\n"
                           "unknown command 'nosuch'; commands: echo later strings big\n");
    free(r);
    r = ask(f, "\n");
    assert_string_equal(r, "status 2\nempty request; commands: echo later strings big\n");
    free(r);
    r = ask(f, "echo  two-spaces\n");
    assert_true(strncmp(r, "status 2\nempty argument", 23) == 0);
    free(r);
    r = ask(f, "echo trailing \n");
    assert_true(strncmp(r, "status 2\nempty argument", 23) == 0);
    free(r);
    r = ask(f, "echo a\tb\n");
    assert_string_equal(r, "status 2\nrequest holds a control character\n");
    free(r);
    char many[512] = "echo";
    size_t len = 4;
    for (unsigned i = 1; i < NET_CONTROL_ARGS_MAX; i++)
        len += (size_t)snprintf(many + len, sizeof many - len, " a");
    snprintf(many + len, sizeof many - len, "\n"); /* 32 words: the bound */
    r = ask(f, many);
    assert_true(strncmp(r, "status 0\n", 9) == 0);
    free(r);
    snprintf(many + len, sizeof many - len, " a\n"); /* 33 words */
    r = ask(f, many);
    assert_string_equal(r, "status 2\ntoo many arguments\n");
    free(r);
}

/* Request line of n bytes in all, LF included. */
static char *ask_sized(struct fixture *f, size_t n)
{
    char *line = malloc(n + 1);
    memcpy(line, "echo ", 5);
    memset(line + 5, 'a', n - 6);
    line[n - 1] = '\n';
    line[n] = '\0';
    char *r = ask(f, line);
    free(line);
    return r;
}

static void test_request_bound(void **state)
{
    struct fixture *f = *state;
    char *r = ask_sized(f, NET_CONTROL_REQUEST_MAX - 1);
    assert_true(strncmp(r, "status 0\naaa", 12) == 0);
    free(r);
    r = ask_sized(f, NET_CONTROL_REQUEST_MAX);
    assert_true(strncmp(r, "status 0\naaa", 12) == 0);
    assert_int_equal(strlen(r), 9 + NET_CONTROL_REQUEST_MAX - 6 + 1);
    free(r);
    r = ask_sized(f, NET_CONTROL_REQUEST_MAX + 1);
    assert_string_equal(r, "status 2\nrequest too long\n");
    free(r);
    r = ask_sized(f, NET_CONTROL_REQUEST_MAX * 4);
    assert_string_equal(r, "status 2\nrequest too long\n");
    free(r);
}

static void test_line_without_lf_at_eof(void **state)
{
    struct fixture *f = *state;
    int fd = client(f->path);
    send_all(fd, "echo x", 6);
    shutdown(fd, SHUT_WR);
    char *r = response(f, fd, NULL);
    assert_string_equal(r, "status 0\nx\n");
    free(r);
    fd = client(f->path); /* nothing at all: closed without an answer */
    shutdown(fd, SHUT_WR);
    r = response(f, fd, NULL);
    assert_string_equal(r, "");
    free(r);
}

static void test_async_finish_and_many_clients(void **state)
{
    struct fixture *f = *state;
    int fds[10];
    for (int i = 0; i < 10; i++) {
        fds[i] = client(f->path);
        char line[32];
        snprintf(line, sizeof line, "later %d\n", i);
        send_all(fds[i], line, strlen(line));
    }
    step(f, 50);
    assert_int_equal(f->n_pending, 10);
    char c;
    assert_int_equal(recv(fds[0], &c, 1, 0), -1); /* nothing yet */
    for (size_t i = 0; i < f->n_pending; i++) {
        net_control_printf(f->pending[i], "answer %zu\n", i);
        net_control_finish(f->pending[i], 0);
    }
    f->n_pending = 0;
    for (int i = 0; i < 10; i++) {
        char *r = response(f, fds[i], NULL);
        assert_true(strncmp(r, "status 0\nanswer ", 16) == 0);
        free(r);
    }
}

static void test_client_gone_before_finish(void **state)
{
    struct fixture *f = *state;
    int fd = client(f->path);
    send_all(fd, "later x\n", 8);
    step(f, 20);
    assert_int_equal(f->n_pending, 1);
    close(fd);
    step(f, 20);
    assert_true(net_control_printf(f->pending[0], "nobody reads this\n"));
    net_control_finish(f->pending[0], 0); /* dropped; ASan proves it is freed once */
    f->n_pending = 0;
    step(f, 20);
    char *r = ask(f, "echo still-serving\n");
    assert_string_equal(r, "status 0\nstill-serving\n");
    free(r);
}

static void test_free_with_pending_request(void **state)
{
    struct fixture *f = *state;
    int fd = client(f->path);
    send_all(fd, "later x\n", 8);
    step(f, 20);
    assert_int_equal(f->n_pending, 1);
    net_control_free(f->ctl);
    f->ctl = NULL;
    struct stat st;
    assert_int_not_equal(lstat(f->path, &st), 0); /* the socket file is gone */
    assert_false(net_control_printf(f->pending[0], "dropped\n"));
    net_control_finish(f->pending[0], 0); /* frees the detached request */
    f->n_pending = 0;
    char c;
    assert_int_equal(recv(fd, &c, 1, 0), 0); /* closed without an answer */
    close(fd);
}

/* net_control_run: a command run in process answers to its callback, now or later. */
struct run_answer {
    int calls, status;
    char body[256];
};

static void on_run_done(void *ctx, int status, const char *body, size_t len)
{
    struct run_answer *a = ctx;
    a->calls++;
    a->status = status;
    snprintf(a->body, sizeof a->body, "%.*s", (int)len, body);
}

static void test_run_in_process(void **state)
{
    struct fixture *f = *state;
    struct run_answer a = {0};
    assert_true(net_control_run(f->ctl, "echo a b --json", on_run_done, &a));
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
    assert_string_equal(a.body, "a b json\n");
    assert_true(f->json);

    struct run_answer later = {0};
    assert_true(net_control_run(f->ctl, "later x", on_run_done, &later));
    assert_int_equal(later.calls, 0);
    assert_int_equal(f->n_pending, 1);
    net_control_printf(f->pending[0], "done later\n");
    net_control_finish(f->pending[0], 1);
    f->n_pending = 0;
    assert_int_equal(later.calls, 1);
    assert_int_equal(later.status, 1);
    assert_string_equal(later.body, "done later\n");

    struct run_answer bad = {0};
    assert_true(net_control_run(f->ctl, "nothing", on_run_done, &bad));
    assert_int_equal(bad.status, 2);
    assert_non_null(strstr(bad.body, "unknown command 'nothing'"));
    char line[NET_CONTROL_REQUEST_MAX + 2];
    memset(line, 'a', sizeof line - 1);
    line[sizeof line - 1] = '\0';
    assert_false(net_control_run(f->ctl, line, on_run_done, &bad));

    /* freed while a command is pending: the callback never comes, nothing leaks */
    struct run_answer orphan = {0};
    assert_true(net_control_run(f->ctl, "later y", on_run_done, &orphan));
    net_control_free(f->ctl);
    f->ctl = NULL;
    net_control_finish(f->pending[0], 0);
    f->n_pending = 0;
    assert_int_equal(orphan.calls, 0);
}

static void test_client_that_does_not_read(void **state)
{
    struct fixture *f = *state;
    int slow = client(f->path);
    send_all(slow, "big\n", 4);
    step(f, 30); /* the loop must come back although 4 MiB do not fit the socket */
    char *r = ask(f, "echo meanwhile\n");
    assert_string_equal(r, "status 0\nmeanwhile\n");
    free(r);
    size_t len = 0;
    r = response(f, slow, &len); /* reading now gets all of it */
    assert_int_equal(len, 9 + 64 * 65536);
    free(r);
    slow = client(f->path);
    send_all(slow, "big\n", 4);
    step(f, 30);
    close(slow); /* leaves with the response half written */
    step(f, 30);
    r = ask(f, "echo after\n");
    assert_string_equal(r, "status 0\nafter\n");
    free(r);
}

/* control.c serves 64 clients at once (CLIENTS_MAX); the next one is turned away at once. */
static void test_too_many_clients(void **state)
{
    struct fixture *f = *state;
    int fds[64];
    for (int i = 0; i < 64; i++) {
        fds[i] = client(f->path);
        step(f, 1);
    }
    char *r = ask(f, "echo one-too-many\n");
    assert_string_equal(r, "status 1\nserver busy: too many control connections\n");
    free(r);
    close(fds[0]);
    step(f, 10);
    r = ask(f, "echo room-again\n");
    assert_string_equal(r, "status 0\nroom-again\n");
    free(r);
    for (int i = 1; i < 64; i++)
        close(fds[i]);
}

static void test_json_strings(void **state)
{
    struct fixture *f = *state;
    char *r = ask(f, "strings\n");
    assert_string_equal(r, "status 0\n"
                           "\"a\\\"b\\\\c\"\n"
                           "\"tab\\tnl\\ncr\\u000d\\u0001\\u007f\"\n"
                           "\"caf\xc3\xa9 csi\\u009b nbsp\xc2\xa0\"\n"
                           "\"bad\xef\xbf\xbd\xef\xbf\xbd\"\n"
                           "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"\n"
                           "\"\"\n"
                           "null");
    free(r);
}

static void test_read_timeout(void **state)
{
    struct fixture *f = *state;
    int fd = client(f->path);
    send_all(fd, "echo slow", 9);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    char *r = NULL;
    size_t len = 0;
    do { /* at most ~7 s */
        step(f, 100);
        char buf[128];
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n > 0) {
            buf[n] = '\0';
            r = strdup(buf);
            len = (size_t)n;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (!r && now.tv_sec - start.tv_sec < 7);
    assert_non_null(r);
    assert_true(len > 9);
    assert_true(strncmp(r, "status 2\ntimeout", 16) == 0);
    assert_true(now.tv_sec - start.tv_sec >= 4);
    free(r);
    close(fd);
}

static void test_stale_socket_replaced_live_refused(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    /* live: our fixture listens there */
    assert_null(net_control_new(f->base, f->path, err, sizeof err));
    assert_non_null(strstr(err, "another server is running"));

    char stale[160];
    snprintf(stale, sizeof stale, "%s/stale.sock", f->dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, stale, strlen(stale) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    close(fd); /* the file stays, nobody listens: a crashed server's leftover */
    struct net_control *c = net_control_new(f->base, stale, err, sizeof err);
    if (!c)
        fail_msg("stale socket not replaced: %s", err);
    struct stat st;
    assert_int_equal(lstat(stale, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    net_control_free(c);
    assert_int_not_equal(lstat(stale, &st), 0);

    char plain[160];
    snprintf(plain, sizeof plain, "%s/plain", f->dir);
    FILE *p = fopen(plain, "w");
    fclose(p);
    assert_null(net_control_new(f->base, plain, err, sizeof err));
    assert_non_null(strstr(err, "not a socket"));
    unlink(plain);

    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    assert_null(net_control_new(f->base, longpath, err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_flag_is_stripped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_without_lf_at_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_finish_and_many_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone_before_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_pending_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_in_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_that_does_not_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_socket_replaced_live_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
