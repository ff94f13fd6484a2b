/* tests/unit/test_net_tls_resume.c — client session resumption over in-memory handshakes (BIO
 * pairs) with a server that issues tickets: the second connection to a destination resumes,
 * another destination does not, a server that cannot decrypt the ticket does a full handshake,
 * contexts keep their sessions apart; and the destination key of a real loopback socket. */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/tls.h"
#include "net/tls_resume.h"
#include "tmpdir.h"

static char dir[64];

/* A server context with the generated certificate, issuing TLS 1.3 tickets (the server's own
 * default is none). Each call makes new ticket keys: it cannot decrypt another's tickets. */
static SSL_CTX *server_ctx(void)
{
    char err[256];
    SSL_CTX *s = net_tls_context("", "", dir, "mx.example.test", NULL, err, sizeof err);
    if (s == NULL)
        fail_msg("%s", err);
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_num_tickets(s, 1);
    return s;
}

static SSL_CTX *client_ctx(void)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    assert_non_null(c);
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    assert_true(net_tls_resume_enable(c));
    return c;
}

/* One connection: handshake, then a byte from the server (the client reads the ticket sent
 * after the handshake on the way). Returns whether the session was resumed; *offered says
 * whether the client offered one. */
static bool connect_once(SSL_CTX *cctx, SSL_CTX *sctx, const char *destination, bool *offered)
{
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    BIO *cb, *sb;
    assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    *offered = net_tls_resume_offer(c, destination);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    int cr = 0, sr = 0;
    for (int i = 0; i < 50 && (cr != 1 || sr != 1); i++) {
        if (cr != 1)
            cr = SSL_do_handshake(c);
        if (sr != 1)
            sr = SSL_do_handshake(s);
    }
    assert_int_equal(cr, 1);
    assert_int_equal(sr, 1);
    char byte = 0;
    assert_int_equal(SSL_write(s, "x", 1), 1);
    assert_int_equal(SSL_read(c, &byte, 1), 1);
    assert_int_equal(byte, 'x');
    bool reused = SSL_session_reused(c) == 1;
    assert_int_equal(SSL_session_reused(s), reused);
    SSL_shutdown(c); /* a clean end: OpenSSL keeps a session resumable only then */
    SSL_free(c);
    SSL_free(s);
    return reused;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/clearmta-unit-resume-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unit_tmpdir_remove(dir);
    return 0;
}

static void test_second_connection_resumes(void **state)
{
    (void)state;
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    bool offered;
    assert_false(connect_once(cctx, sctx, "mx.example.test [192.0.2.1]:25", &offered));
    assert_false(offered);
    assert_int_equal(net_tls_resume_count(cctx), 1);
    assert_true(connect_once(cctx, sctx, "mx.example.test [192.0.2.1]:25", &offered));
    assert_true(offered);
    /* The resumed connection's new ticket replaced the old one: still one destination. */
    assert_int_equal(net_tls_resume_count(cctx), 1);
    assert_true(connect_once(cctx, sctx, "mx.example.test [192.0.2.1]:25", &offered));
    /* Another address or name is another destination. */
    assert_false(connect_once(cctx, sctx, "mx.example.test [192.0.2.2]:25", &offered));
    assert_false(offered);
    assert_false(connect_once(cctx, sctx, "other.example [192.0.2.1]:25", &offered));
    assert_int_equal(net_tls_resume_count(cctx), 3);
    SSL_CTX_free(cctx); /* frees the kept sessions (ASan checks) */
    SSL_CTX_free(sctx);
}

/* A server that cannot use the ticket (new keys: restarted, or another machine behind the same
 * name) does a full handshake; the connection works and the new session is kept. */
static void test_refused_offer_is_a_full_handshake(void **state)
{
    (void)state;
    SSL_CTX *first = server_ctx(), *second = server_ctx(), *cctx = client_ctx();
    bool offered;
    assert_false(connect_once(cctx, first, "mx [192.0.2.1]:25", &offered));
    assert_false(connect_once(cctx, second, "mx [192.0.2.1]:25", &offered));
    assert_true(offered);
    assert_true(connect_once(cctx, second, "mx [192.0.2.1]:25", &offered));
    SSL_CTX_free(cctx);
    SSL_CTX_free(first);
    SSL_CTX_free(second);
}

/* Sessions stay with their context (a verifying context never resumes a session made by one
 * that does not verify); a context without a cache offers and keeps nothing; an over-long key
 * is never kept. */
static void test_contexts_apart_and_bounds(void **state)
{
    (void)state;
    SSL_CTX *sctx = server_ctx(), *a = client_ctx(), *b = client_ctx();
    SSL_CTX *plain = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(plain, SSL_VERIFY_NONE, NULL);
    bool offered;
    assert_false(connect_once(a, sctx, "mx [192.0.2.1]:25", &offered));
    assert_false(connect_once(b, sctx, "mx [192.0.2.1]:25", &offered));
    assert_false(offered);
    assert_false(connect_once(plain, sctx, "mx [192.0.2.1]:25", &offered));
    assert_false(offered);
    assert_int_equal(net_tls_resume_count(plain), 0);
    char long_key[NET_TLS_RESUME_KEY_MAX + 2];
    memset(long_key, 'a', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    assert_false(connect_once(a, sctx, long_key, &offered));
    assert_false(connect_once(a, sctx, long_key, &offered));
    assert_int_equal(net_tls_resume_count(a), 1);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(plain);
    SSL_CTX_free(sctx);
}

static void test_destination_of_socket(void **state)
{
    (void)state;
    int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
    char key[NET_TLS_RESUME_KEY_MAX + 1], want[64];
    snprintf(want, sizeof want, "mx.example.test [127.0.0.1]:%u", ntohs(sa.sin_port));
    assert_true(net_tls_resume_destination(c, "mx.example.test", key, sizeof key));
    assert_string_equal(key, want);
    assert_false(net_tls_resume_destination(c, "mx.example.test", key, 10)); /* no room */
    assert_false(net_tls_resume_destination(l, "mx", key, sizeof key)); /* not connected */
    close(c);
    close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_connection_resumes),
        cmocka_unit_test(test_refused_offer_is_a_full_handshake),
        cmocka_unit_test(test_contexts_apart_and_bounds),
        cmocka_unit_test(test_destination_of_socket),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
