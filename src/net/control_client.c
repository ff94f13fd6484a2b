/* net/control_client.c — the blocking client of the control socket (control_client.h), used by
 * `clearmta queue …` and `clearmta limits …`: sends one request line and copies the answer. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "net/control_client.h"
#include "net/control_internal.h"

/* Waits for events on fd until the deadline; false on timeout. */
static bool wait_fd(int fd, short events, const struct timespec *deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        long ms = net_control_ms_until(deadline);
        int n = poll(&p, 1, ms > 0x7fffffff ? 0x7fffffff : (int)ms);
        if (n > 0)
            return true;
        if (n == 0 || errno != EINTR)
            return false;
    }
}

/* The request line for argv, or a usage message in err. */
static bool build_request(int argc, char **argv, char *line, size_t *len, char *err,
                          size_t errlen)
{
    size_t n = 0;
    if (argc <= 0 || (size_t)argc > NET_CONTROL_ARGS_MAX) {
        snprintf(err, errlen, "between 1 and %u arguments", NET_CONTROL_ARGS_MAX);
        return false;
    }
    for (int i = 0; i < argc; i++) {
        size_t a = strlen(argv[i]);
        if (a == 0 || strchr(argv[i], ' ')) {
            snprintf(err, errlen, "argument '%s': empty or holding a space", argv[i]);
            return false;
        }
        for (size_t k = 0; k < a; k++)
            if ((unsigned char)argv[i][k] < 0x20 || argv[i][k] == 0x7f) {
                snprintf(err, errlen, "argument %d holds a control character", i + 1);
                return false;
            }
        if (a + 2 > NET_CONTROL_REQUEST_MAX - n) { /* a separator and the final LF */
            snprintf(err, errlen, "request longer than %u bytes", NET_CONTROL_REQUEST_MAX);
            return false;
        }
        if (i > 0)
            line[n++] = ' ';
        memcpy(line + n, argv[i], a);
        n += a;
    }
    line[n++] = '\n';
    *len = n;
    return true;
}

/* Connects to the socket, retrying while its backlog is full, until the deadline. */
static int connect_control(const char *path, const struct timespec *deadline, char *errbuf,
                           size_t errlen)
{
    struct sockaddr_un sun;
    if (!net_control_sockaddr(path, &sun, errbuf, errlen))
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(errbuf, errlen, "control socket: socket: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0)
            return fd;
        int e = errno;
        if ((e == EAGAIN || e == EINTR) && net_control_ms_until(deadline) > 0) {
            poll(NULL, 0, 10);
            continue;
        }
        close(fd);
        if (e == EACCES || e == EPERM) {
            snprintf(errbuf, errlen, "control socket %s: %s (it is for root and the server's "
                     "user)", path, strerror(e));
            return NET_CONTROL_DENIED;
        }
        if (e == ENOENT || e == ECONNREFUSED)
            snprintf(errbuf, errlen, "no clearmta server is running (no control socket at %s)",
                     path);
        else if (e == EAGAIN)
            snprintf(errbuf, errlen, "the server at %s is too busy to answer", path);
        else
            snprintf(errbuf, errlen, "control socket %s: %s", path, strerror(e));
        return -1;
    }
}

/* Parses "status N\n" at the start of buf (len bytes): N, or -1 when malformed; *used: the
 * header's length, 0 when more bytes are needed. */
static int parse_status(const char *buf, size_t len, size_t *used)
{
    *used = 0;
    const char *lf = memchr(buf, '\n', len);
    if (!lf)
        return len >= NET_CONTROL_STATUS_LINE_MAX ? -1 : 0;
    if ((size_t)(lf - buf) != 8 || memcmp(buf, "status ", 7) != 0 || buf[7] < '0' ||
        buf[7] > '2')
        return -1;
    *used = 9;
    return buf[7] - '0';
}

int net_control_call(const char *path, int argc, char **argv, int out_fd, int err_fd,
                     unsigned timeout_ms, char *errbuf, size_t errlen)
{
    char line[NET_CONTROL_REQUEST_MAX];
    size_t len;
    char why[256];
    if (!build_request(argc, argv, line, &len, why, sizeof why)) {
        int n = snprintf(line, sizeof line, "%s\n", why);
        base_write_all(err_fd, line, n > 0 ? (size_t)n : 0);
        return 2;
    }
    struct timespec deadline;
    net_control_now(&deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    int fd = connect_control(path, &deadline, errbuf, errlen);
    if (fd < 0)
        return fd; /* -1, or NET_CONTROL_DENIED */
    int status = -1;
    const char *fail = NULL;
    for (size_t off = 0; off < len && !fail;) {
        ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno != EINTR && errno != EAGAIN)
            fail = "the server closed the connection";
        else if (n < 0 && errno == EAGAIN && !wait_fd(fd, POLLOUT, &deadline))
            fail = "timeout sending the request";
    }
    char head[NET_CONTROL_STATUS_LINE_MAX];
    size_t head_len = 0;
    while (!fail) {
        if (!wait_fd(fd, POLLIN, &deadline)) {
            fail = "no complete answer from the server in time";
            break;
        }
        char buf[65536];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            if (status < 0)
                fail = "the server closed the connection without answering";
            break;
        }
        size_t off = 0;
        if (status < 0) { /* the header may come in pieces */
            size_t take = (size_t)n < sizeof head - head_len ? (size_t)n : sizeof head - head_len;
            memcpy(head + head_len, buf, take);
            size_t used;
            int st = parse_status(head, head_len + take, &used);
            if (st < 0) {
                fail = "malformed answer from the server";
                break;
            }
            if (used == 0) {
                head_len += take;
                continue;
            }
            off = used - head_len;
            status = st;
        }
        if (base_write_all(status == 0 ? out_fd : err_fd, buf + off, (size_t)n - off) !=
            BASE_OK) {
            fail = "cannot write the answer";
            break;
        }
    }
    close(fd);
    if (fail) {
        snprintf(errbuf, errlen, "%s (control socket %s)", fail, path);
        return -1;
    }
    return status;
}
