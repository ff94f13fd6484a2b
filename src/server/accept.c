/* server/accept.c — the accept path: takes each waiting client, admits it (capacity.c) or
 * answers its 421 and closes it, and never goes silent when descriptors run out: a spare
 * descriptor is given up to accept and refuse the client, and a listener that still cannot
 * accept pauses for a moment rather than spin on EMFILE. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/listener.h"
#include "net/log.h"
#include "server/metrics.h"
#include "server/server.h"

/* Connections accepted per readiness event: enough for bursts, small enough to stay fair. */
#define ACCEPT_BATCH 64
/* How long listeners rest after accept(2) failed for want of descriptors or kernel memory. */
#define ACCEPT_PAUSE_MS 100

/* Refuses a client with its 421 reply, without a session, and closes it. */
static void refuse(struct server *srv, int fd, enum reply_id id, const char *addr)
{
    char text[512];
    size_t n = reply_format(text, sizeof text, id, srv->cfg->hostname, NULL, 0,
                            REPLY_FMT_ENHANCED);
    ssize_t w = send(fd, text, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w; /* best effort: the client is refused either way */
    server_metrics_reply(NULL, id);
    close(fd);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    net_log("reject: connect from [%s]: %.*s", addr, (int)n, text);
}

static int take(int lfd, char *addr, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return -1;
    /* Every reply is written whole: Nagle's algorithm would only hold a reply back behind the
     * client's delayed ACK (40 ms per pipelined batch or TLS flight). */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    net_peer_address(&ss, addr, cap);
    return fd;
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd;
    (void)what;
    for (size_t i = 0; i < srv->n_listeners; i++)
        if (srv->listeners[i].ev && !srv->shutting_down)
            event_add(srv->listeners[i].ev, NULL);
}

/* Stops l accepting for ACCEPT_PAUSE_MS: the kernel keeps the clients in its backlog. */
static void pause_listener(struct server_listener *l, int err)
{
    struct server *srv = l->srv;
    struct timeval tv = {.tv_usec = ACCEPT_PAUSE_MS * 1000};
    if (!srv->cap.resume_ev)
        srv->cap.resume_ev = evtimer_new(srv->base, on_resume, srv);
    if (!srv->cap.resume_ev)
        return; /* out of memory: accepting on is all that is left */
    event_del(l->ev);
    if (!evtimer_pending(srv->cap.resume_ev, NULL)) {
        net_log("warning: accept on port %u: %s; pausing %d ms", l->conf->port, strerror(err),
                ACCEPT_PAUSE_MS);
        evtimer_add(srv->cap.resume_ev, &tv);
    }
}

/* Out of descriptors: the spare one makes room to tell one client why. Returns 1 when a
 * client was refused, 0 when none was waiting, -1 when even that failed. */
static int refuse_with_spare(struct server_listener *l)
{
    struct server *srv = l->srv;
    if (srv->cap.spare_fd < 0)
        srv->cap.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (srv->cap.spare_fd < 0)
        return -1;
    close(srv->cap.spare_fd);
    char addr[64];
    int fd = take(l->fd, addr, sizeof addr);
    int err = errno;
    if (fd >= 0)
        refuse(srv, fd, REPLY_TOO_MANY_CONNECTIONS, addr);
    srv->cap.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        return 1;
    return err == EAGAIN || err == EWOULDBLOCK ? 0 : -1;
}

void server_accept_ready(evutil_socket_t lfd, short what, void *arg)
{
    struct server_listener *l = arg;
    struct server *srv = l->srv;
    (void)what;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        char addr[64];
        int fd = take(lfd, addr, sizeof addr);
        if (fd < 0) {
            int err = errno;
            if (err == EINTR || err == ECONNABORTED)
                continue;
            if (err == EAGAIN || err == EWOULDBLOCK)
                return;
            if (err == EMFILE || err == ENFILE) {
                int r = refuse_with_spare(l);
                if (r > 0)
                    continue;
                if (r == 0)
                    return;
            }
            pause_listener(l, err); /* EMFILE without a spare, ENOBUFS, ENOMEM, ... */
            return;
        }
        enum reply_id admission = server_capacity_admit(srv, addr);
        if (admission != REPLY_OK) {
            refuse(srv, fd, admission, addr);
            continue;
        }
        server_conn_accept(l, fd, addr);
    }
}

void server_accept_close(struct server *srv)
{
    if (srv->cap.resume_ev)
        event_free(srv->cap.resume_ev);
    srv->cap.resume_ev = NULL;
}
