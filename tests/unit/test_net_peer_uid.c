/* tests/unit/test_net_peer_uid.c — the owner of the other end of real loopback connections
 * (IPv4, IPv6, IPv4 on a dual-stack listener): from either end the lookup finds exactly the
 * other end's socket (its inode) and our own uid; a closed or half-closed other end, a
 * listening socket, a UDP socket and a file are unknown. */
#include "unit.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/peer_uid.h"

/* A connection over loopback: the listener, the client's end and the server's (accepted). */
struct link {
    int listener, client, server;
};

static bool listen_on(struct link *l, int family, const char *addr, bool v6only)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        len = sizeof *in;
        if (inet_pton(AF_INET, addr, &in->sin_addr) != 1)
            return false;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        len = sizeof *in6;
        if (inet_pton(AF_INET6, addr, &in6->sin6_addr) != 1)
            return false;
    }
    l->listener = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int only = v6only;
    if (l->listener < 0 ||
        (family == AF_INET6 &&
         setsockopt(l->listener, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only) != 0) ||
        bind(l->listener, (struct sockaddr *)&ss, len) != 0 || listen(l->listener, 4) != 0) {
        if (l->listener >= 0)
            close(l->listener);
        return false;
    }
    return true;
}

/* Connects to the listener's port at addr (of family) and accepts. */
static bool link_open(struct link *l, int family, const char *listen_addr, bool v6only,
                      const char *connect_addr)
{
    if (!listen_on(l, family, listen_addr, v6only))
        return false;
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    assert_int_equal(getsockname(l->listener, (struct sockaddr *)&bound, &blen), 0);
    unsigned short port = family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                            : ((struct sockaddr_in6 *)&bound)->sin6_port;
    struct sockaddr_storage to;
    socklen_t tlen;
    memset(&to, 0, sizeof to);
    int cfam = strchr(connect_addr, ':') ? AF_INET6 : AF_INET;
    if (cfam == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&to;
        in->sin_family = AF_INET;
        in->sin_port = port;
        assert_int_equal(inet_pton(AF_INET, connect_addr, &in->sin_addr), 1);
        tlen = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&to;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = port;
        assert_int_equal(inet_pton(AF_INET6, connect_addr, &in6->sin6_addr), 1);
        tlen = sizeof *in6;
    }
    l->client = socket(cfam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l->client >= 0);
    assert_int_equal(connect(l->client, (struct sockaddr *)&to, tlen), 0);
    l->server = accept(l->listener, NULL, NULL);
    assert_true(l->server >= 0);
    return true;
}

static void link_close(struct link *l)
{
    if (l->client >= 0)
        close(l->client);
    close(l->server);
    close(l->listener);
}

static uint64_t inode_of(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return (uint64_t)st.st_ino;
}

/* From each end, the other end's very socket and our uid. */
static void check_both_ends(struct link *l)
{
    struct net_peer_socket peer = {.uid = (uid_t)-1};
    assert_true(net_peer_socket(l->server, &peer));
    assert_int_equal(peer.uid, geteuid());
    assert_int_equal(peer.inode, inode_of(l->client));
    peer.uid = (uid_t)-1;
    assert_true(net_peer_socket(l->client, &peer));
    assert_int_equal(peer.uid, geteuid());
    assert_int_equal(peer.inode, inode_of(l->server));
    assert_true(peer.inode != inode_of(l->client));
}

/* A connection to listen_addr, reached at connect_addr, checked from both ends; optional: a
 * host without that loopback (no IPv6) skips. */
static void check_connection(int family, const char *listen_addr, bool v6only,
                             const char *connect_addr, bool optional)
{
    struct link l;
    bool open = link_open(&l, family, listen_addr, v6only, connect_addr);
    if (!open && optional)
        skip();
    assert_true(open);
    check_both_ends(&l);
    link_close(&l);
}

static void test_ipv4(void **state)
{
    (void)state;
    check_connection(AF_INET, "127.0.0.1", false, "127.0.0.1", false);
}

static void test_ipv6(void **state)
{
    (void)state;
    check_connection(AF_INET6, "::1", true, "::1", true);
}

/* A dual-stack listener sees an IPv4 client as ::ffff:127.0.0.1. */
static void test_ipv4_mapped(void **state)
{
    (void)state;
    check_connection(AF_INET6, "::", false, "127.0.0.1", true);
}

/* Waits (bounded) until the server's end has read the client's FIN. */
static void wait_eof(int fd)
{
    char c;
    struct timeval t = {.tv_sec = 5};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t), 0);
    assert_int_equal(read(fd, &c, 1), 0);
}

/* The client shuts its sending side (half-closed) or closes its socket, whose end then
 * lingers as a TIME_WAIT entry the kernel reports as uid 0: either way, nobody's. */
static void check_gone_peer_is_unknown(bool close_it)
{
    struct link l;
    struct net_peer_socket peer;
    assert_true(link_open(&l, AF_INET, "127.0.0.1", false, "127.0.0.1"));
    if (close_it) {
        close(l.client);
        l.client = -1;
    } else {
        assert_int_equal(shutdown(l.client, SHUT_WR), 0);
    }
    wait_eof(l.server);
    assert_false(net_peer_socket(l.server, &peer));
    link_close(&l);
}

static void test_half_closed_peer_is_unknown(void **state)
{
    (void)state;
    check_gone_peer_is_unknown(false);
}

static void test_closed_peer_is_unknown(void **state)
{
    (void)state;
    check_gone_peer_is_unknown(true);
}

static void test_not_a_connection(void **state)
{
    (void)state;
    struct link l;
    struct net_peer_socket peer;
    assert_true(listen_on(&l, AF_INET, "127.0.0.1", false));
    assert_false(net_peer_socket(l.listener, &peer));
    close(l.listener);
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(udp, (struct sockaddr *)&to, sizeof to), 0);
    assert_false(net_peer_socket(udp, &peer));
    close(udp);
    int file = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_false(net_peer_socket(file, &peer));
    close(file);
    assert_false(net_peer_socket(-1, &peer));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_ipv4_mapped),
        cmocka_unit_test(test_half_closed_peer_is_unknown),
        cmocka_unit_test(test_closed_peer_is_unknown),
        cmocka_unit_test(test_not_a_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
