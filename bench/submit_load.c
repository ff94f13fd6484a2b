/* bench/submit_load.c — load generator for the STARTTLS + AUTH submission benchmark
 * (bench/submission.py builds and runs it), and the trivial TLS sink that measures its ceiling.
 *
 *   submit_load client PORT WORKERS SECONDS USER PASS RCPT
 *       WORKERS processes, each opening one connection after another to 127.0.0.1:PORT for
 *       SECONDS: EHLO, STARTTLS, EHLO, AUTH PLAIN, MAIL, RCPT, DATA (2 KB), QUIT — one message
 *       per connection, a full handshake each time (no session is offered). Prints
 *       "sessions N failures F seconds S".
 *   submit_load sink PORT CERT KEY
 *       answers that dialogue with fixed replies (one thread per connection) until killed.
 *
 * Blocking sockets, bounded buffers, loopback only. Built with: gcc -O2 ... -lssl -lcrypto. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MESSAGE_BYTES 2048
#define LINE_MAX_BYTES 4096
#define WORKERS_MAX 256

/* One connection: the socket, TLS once started, and unread input. */
struct conn {
    int fd;
    SSL *ssl;
    char buf[LINE_MAX_BYTES];
    size_t len;
};

static ssize_t conn_read(struct conn *c, char *p, size_t cap)
{
    if (c->ssl) {
        int n = SSL_read(c->ssl, p, (int)cap);
        return n > 0 ? n : -1;
    }
    ssize_t n;
    do
        n = read(c->fd, p, cap);
    while (n < 0 && errno == EINTR);
    return n > 0 ? n : -1;
}

static bool conn_write(struct conn *c, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = c->ssl ? SSL_write(c->ssl, p, (int)len) : write(c->fd, p, len);
        if (n <= 0) {
            if (!c->ssl && n < 0 && errno == EINTR)
                continue;
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Reads one line (CRLF included) into out; false on EOF, error or a line too long. */
static bool conn_line(struct conn *c, char *out, size_t cap)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->buf) + 1;
            if (n >= cap)
                return false;
            memcpy(out, c->buf, n);
            out[n] = '\0';
            memmove(c->buf, c->buf + n, c->len - n);
            c->len -= n;
            return true;
        }
        if (c->len == sizeof c->buf)
            return false;
        ssize_t got = conn_read(c, c->buf + c->len, sizeof c->buf - c->len);
        if (got <= 0)
            return false;
        c->len += (size_t)got;
    }
}

static int loopback_socket(int port, bool listening)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    int ok;
    if (listening) {
        /* The sink answers at once, as servers do; the client leaves Nagle on, as most mail
         * clients do (with TCP_NODELAY, Postfix's smtpd stalls 40 ms after the handshake). */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 1024) == 0;
    } else {
        ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    }
    if (!ok) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- client ---- */

/* Sends cmd (may be NULL) and reads the whole reply; true when its code starts with want. */
static bool step(struct conn *c, const char *cmd, char want)
{
    if (cmd && !conn_write(c, cmd, strlen(cmd)))
        return false;
    char line[LINE_MAX_BYTES];
    do {
        if (!conn_line(c, line, sizeof line) || strlen(line) < 4)
            return false;
    } while (line[3] == '-');
    return line[0] == want;
}

static bool one_submission(SSL_CTX *ctx, int port, const char *auth, const char *rcpt,
                           const char *message)
{
    struct conn c = {.fd = loopback_socket(port, false)};
    if (c.fd < 0)
        return false;
    char rcpt_cmd[600];
    snprintf(rcpt_cmd, sizeof rcpt_cmd, "RCPT TO:<%s>\r\n", rcpt);
    bool ok = step(&c, NULL, '2') && step(&c, "EHLO load.example\r\n", '2') &&
              step(&c, "STARTTLS\r\n", '2') && c.len == 0;
    if (ok) {
        c.ssl = SSL_new(ctx);
        ok = c.ssl && SSL_set_fd(c.ssl, c.fd) == 1 && SSL_connect(c.ssl) == 1;
    }
    ok = ok && step(&c, "EHLO load.example\r\n", '2') && step(&c, auth, '2') &&
         step(&c, "MAIL FROM:<alice@example.test>\r\n", '2') && step(&c, rcpt_cmd, '2') &&
         step(&c, "DATA\r\n", '3') && step(&c, message, '2') && step(&c, "QUIT\r\n", '2');
    if (c.ssl) {
        SSL_shutdown(c.ssl);
        SSL_free(c.ssl);
    }
    close(c.fd);
    return ok;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One worker process: submissions until the deadline; writes its two counts to out_fd. */
static void client_worker(int out_fd, int port, double seconds, const char *auth,
                          const char *rcpt, const char *message)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        _exit(1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    long counts[2] = {0, 0};
    double end = now_s() + seconds;
    while (now_s() < end)
        counts[one_submission(ctx, port, auth, rcpt, message) ? 0 : 1]++;
    if (write(out_fd, counts, sizeof counts) != (ssize_t)sizeof counts)
        _exit(1);
    _exit(0);
}

static int run_client(int port, int workers, double seconds, const char *user,
                      const char *pass, const char *rcpt)
{
    /* AUTH PLAIN: base64 of "\0user\0pass" (RFC 4616). */
    unsigned char plain[600];
    size_t ul = strlen(user), pl = strlen(pass);
    if (ul + pl + 2 > sizeof plain || strlen(rcpt) > 500)
        return 2;
    plain[0] = '\0';
    memcpy(plain + 1, user, ul);
    plain[1 + ul] = '\0';
    memcpy(plain + 2 + ul, pass, pl);
    char b64[820], auth[860];
    EVP_EncodeBlock((unsigned char *)b64, plain, (int)(ul + pl + 2));
    snprintf(auth, sizeof auth, "AUTH PLAIN %s\r\n", b64);

    static char message[MESSAGE_BYTES + 256];
    size_t n = (size_t)snprintf(message, sizeof message,
                                "From: <alice@example.test>\r\nTo: <%s>\r\n"
                                "Subject: submission benchmark\r\n\r\n", rcpt);
    while (n + 72 < MESSAGE_BYTES) {
        memset(message + n, 'x', 70);
        memcpy(message + n + 70, "\r\n", 2);
        n += 72;
    }
    memcpy(message + n, ".\r\n", 4);

    int pipefd[2];
    if (pipe(pipefd) < 0)
        return 1;
    double start = now_s();
    for (int i = 0; i < workers; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(pipefd[0]);
            client_worker(pipefd[1], port, seconds, auth, rcpt, message);
        }
        if (pid < 0)
            return 1;
    }
    close(pipefd[1]);
    long total[2] = {0, 0}, got[2];
    for (int i = 0; i < workers; i++) {
        if (read(pipefd[0], got, sizeof got) != (ssize_t)sizeof got)
            break;
        total[0] += got[0];
        total[1] += got[1];
    }
    while (wait(NULL) > 0)
        ;
    printf("sessions %ld failures %ld seconds %.3f\n", total[0], total[1], now_s() - start);
    return 0;
}

/* ---- sink ---- */

static SSL_CTX *sink_ctx;

static const char EHLO_REPLY[] =
    "250-sink.example\r\n250-STARTTLS\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n";

static void *sink_session(void *arg)
{
    struct conn *c = arg;
    char line[LINE_MAX_BYTES];
    bool ok = conn_write(c, "220 sink.example\r\n", 18);
    while (ok && conn_line(c, line, sizeof line)) {
        if (strncasecmp(line, "EHLO", 4) == 0) {
            ok = conn_write(c, EHLO_REPLY, sizeof EHLO_REPLY - 1);
        } else if (strncasecmp(line, "STARTTLS", 8) == 0 && !c->ssl) {
            ok = conn_write(c, "220 go\r\n", 8) && c->len == 0;
            c->ssl = ok ? SSL_new(sink_ctx) : NULL;
            ok = c->ssl && SSL_set_fd(c->ssl, c->fd) == 1 && SSL_accept(c->ssl) == 1;
            int one = 1; /* ACK the client's Finished at once: its EHLO waits for it */
            setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
        } else if (strncasecmp(line, "AUTH", 4) == 0) {
            ok = conn_write(c, "235 ok\r\n", 8);
        } else if (strncasecmp(line, "DATA", 4) == 0) {
            ok = conn_write(c, "354 go\r\n", 8);
            while (ok && (ok = conn_line(c, line, sizeof line)) && strcmp(line, ".\r\n") != 0)
                ;
            ok = ok && conn_write(c, "250 ok\r\n", 8);
        } else if (strncasecmp(line, "QUIT", 4) == 0) {
            conn_write(c, "221 bye\r\n", 9);
            break;
        } else {
            ok = conn_write(c, "250 ok\r\n", 8);
        }
    }
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    close(c->fd);
    free(c);
    return NULL;
}

static int run_sink(int port, const char *cert, const char *key)
{
    sink_ctx = SSL_CTX_new(TLS_server_method());
    if (!sink_ctx || SSL_CTX_use_certificate_chain_file(sink_ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(sink_ctx, key, SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_session_cache_mode(sink_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(sink_ctx, 0);
    int lfd = loopback_socket(port, true);
    if (lfd < 0) {
        perror("sink: listen");
        return 1;
    }
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            perror("sink: accept");
            return 1;
        }
        struct conn *c = calloc(1, sizeof *c);
        pthread_t t;
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        if (pthread_create(&t, NULL, sink_session, c) != 0) {
            close(fd);
            free(c);
            continue;
        }
        pthread_detach(t);
    }
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 8 && strcmp(argv[1], "client") == 0) {
        int workers = atoi(argv[3]);
        if (workers < 1 || workers > WORKERS_MAX)
            return 2;
        return run_client(atoi(argv[2]), workers, atof(argv[4]), argv[5], argv[6], argv[7]);
    }
    if (argc == 5 && strcmp(argv[1], "sink") == 0)
        return run_sink(atoi(argv[2]), argv[3], argv[4]);
    fprintf(stderr, "usage: %s client PORT WORKERS SECONDS USER PASS RCPT | sink PORT CERT KEY\n",
            argv[0]);
    return 2;
}
