/* tests/unit/test_net_transport.c — the output pump over plain TCP (a socketpair): every chunk
 * goes out in order, a full socket stops it with EV_WRITE and the rest stays unconsumed, a
 * closed peer is a failure that leaves *want alone. */
#include "unit.h"

#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/transport.h"

/* A source that offers its bytes in chunks of at most `chunk`, as a session refilling its
 * buffer would. */
struct source {
    const char *data;
    size_t len, off, chunk;
    size_t outputs, consumed;
};

static const char *output(void *ctx, size_t *len)
{
    struct source *s = ctx;
    s->outputs++;
    size_t left = s->len - s->off;
    *len = left < s->chunk ? left : s->chunk;
    return s->data + s->off;
}

static void consume(void *ctx, size_t n)
{
    struct source *s = ctx;
    assert_true(n <= s->len - s->off);
    s->off += n;
    s->consumed += n;
}

static void pair(int fds[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
}

static void test_all_out_in_order(void **state)
{
    (void)state;
    int fds[2];
    pair(fds);
    const char *text = "220 one\r\n250-two\r\n250 three\r\n";
    struct source s = {.data = text, .len = strlen(text), .chunk = 7};
    struct net_transport t = {.fd = fds[0]};
    short want = EV_READ;
    assert_true(net_transport_pump(&t, output, consume, &s, &want));
    assert_int_equal(want, EV_WRITE);
    assert_int_equal(s.consumed, s.len);
    char got[64] = "";
    assert_int_equal(read(fds[1], got, sizeof got - 1), (ssize_t)s.len);
    assert_string_equal(got, text);
    /* Nothing to send: one look at the output, no write. */
    s.outputs = 0;
    want = EV_READ;
    assert_true(net_transport_pump(&t, output, consume, &s, &want));
    assert_int_equal(s.outputs, 1);
    assert_int_equal(want, EV_WRITE);
    close(fds[0]);
    close(fds[1]);
}

static void test_full_socket_waits(void **state)
{
    (void)state;
    int fds[2];
    pair(fds);
    size_t big = 8u << 20; /* more than any socket buffer */
    char *data = malloc(big);
    assert_non_null(data);
    memset(data, 'x', big);
    struct source s = {.data = data, .len = big, .chunk = 65536};
    struct net_transport t = {.fd = fds[0]};
    short want = EV_READ;
    assert_true(net_transport_pump(&t, output, consume, &s, &want));
    assert_int_equal(want, EV_WRITE);
    assert_true(s.consumed > 0 && s.consumed < big); /* what was sent, and only that */
    close(fds[0]);
    close(fds[1]);
    free(data);
}

static void test_closed_peer_fails(void **state)
{
    (void)state;
    int fds[2];
    pair(fds);
    close(fds[1]);
    struct source s = {.data = "250 ok\r\n", .len = 8, .chunk = 8};
    struct net_transport t = {.fd = fds[0]};
    short want = EV_READ;
    assert_false(net_transport_pump(&t, output, consume, &s, &want));
    assert_int_equal(want, EV_READ); /* untouched */
    assert_int_equal(s.consumed, 0);
    close(fds[0]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_out_in_order),
        cmocka_unit_test(test_full_socket_waits),
        cmocka_unit_test(test_closed_peer_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
