/* net/control.c — the local control socket's server (control.h): a Unix stream socket on the
 * event loop that reads one bounded request line per client, hands it to the registered command,
 * buffers the response and writes it without ever blocking the loop. */
#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "net/control.h"
#include "net/control_internal.h"
#include "net/log.h"
#include "reply/json.h"

/* Commands that may be registered ("queue", "limits", and room to grow). */
#define HANDLERS_MAX 8
#define COMMAND_NAME_MAX 31
/* Clients served at once; an administrator's scripts, not the public: more are turned away. */
#define CLIENTS_MAX 64
/* The whole request line must arrive within this (a slow client cannot hold a slot longer). */
#define READ_TIMEOUT_S 5
/* A client that stops reading its response for this long is dropped, its buffer freed. */
#define WRITE_IDLE_TIMEOUT_S 30
/* Kept free at the end of a cut response for the line saying so. */
#define CUT_NOTE_ROOM 128u
/* Unread input discarded before closing (see drain). */
#define DRAIN_MAX (256u * 1024)

struct handler {
    char name[COMMAND_NAME_MAX + 1];
    net_control_handler *fn;
    void *ctx;
};

enum req_state { REQ_READING, REQ_HANDLING, REQ_WRITING };

struct net_control_request {
    struct net_control *ctl; /* NULL once the control socket was freed (detached) */
    struct net_control_request *prev, *next;
    int fd;                  /* -1 once detached */
    struct event *ev;
    enum req_state state;
    struct timespec deadline; /* end of the read phase */
    char line[NET_CONTROL_REQUEST_MAX];
    size_t line_len;
    char *argv[NET_CONTROL_ARGS_MAX + 1];
    char *body;
    size_t body_len, body_cap;
    bool cut;                /* the body reached NET_CONTROL_RESPONSE_MAX */
    char status_line[NET_CONTROL_STATUS_LINE_MAX];
    size_t status_len;
    size_t sent;             /* bytes of status line + body written */
    net_control_done *done;  /* an in-process call (net_control_run): answered to it */
    void *done_ctx;
};

struct net_control {
    struct event_base *base;
    int fd;
    struct event *accept_ev;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev;               /* identity of our socket file: never unlink another's */
    ino_t ino;
    struct handler handlers[HANDLERS_MAX];
    size_t n_handlers;
    struct net_control_request *reqs;
    size_t n_reqs;
};

static void on_client(evutil_socket_t fd, short what, void *arg);

/* ---- requests ---------------------------------------------------------------------------- */

static void req_free(struct net_control_request *r)
{
    struct net_control *c = r->ctl;
    if (c) {
        if (r->prev)
            r->prev->next = r->next;
        else
            c->reqs = r->next;
        if (r->next)
            r->next->prev = r->prev;
        c->n_reqs--;
    }
    if (r->ev)
        event_free(r->ev);
    if (r->fd >= 0)
        close(r->fd);
    free(r->body);
    free(r);
}

/* Waits for mask on the client with a timeout of ms. False when libevent refuses. */
static bool req_watch(struct net_control_request *r, short mask, long ms)
{
    if (r->ev)
        event_free(r->ev);
    r->ev = event_new(r->ctl->base, r->fd, mask, on_client, r);
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return r->ev && event_add(r->ev, &tv) == 0;
}

/* Grows the body to hold need more bytes (and a NUL); false at the response bound. */
static bool body_reserve(struct net_control_request *r, size_t need)
{
    if (r->cut || !r->ctl)
        return false;
    if (need > NET_CONTROL_RESPONSE_MAX - r->body_len) {
        r->cut = true;
        return false;
    }
    size_t want = r->body_len + need + 1;
    if (want <= r->body_cap)
        return true;
    size_t cap = r->body_cap ? r->body_cap : 4096;
    while (cap < want)
        cap *= 2;
    char *p = realloc(r->body, cap);
    if (!p) {
        r->cut = true;
        return false;
    }
    r->body = p;
    r->body_cap = cap;
    return true;
}

bool net_control_write(struct net_control_request *r, const char *data, size_t len)
{
    if (!body_reserve(r, len))
        return false;
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    return true;
}

bool net_control_printf(struct net_control_request *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    if ((size_t)n < sizeof small)
        return net_control_write(r, small, (size_t)n);
    if (!body_reserve(r, (size_t)n))
        return false;
    va_start(ap, fmt);
    vsnprintf(r->body + r->body_len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    r->body_len += (size_t)n;
    return true;
}

static bool json_put(void *ctx, const char *p, size_t n)
{
    return net_control_write(ctx, p, n);
}

bool net_control_json_string(struct net_control_request *r, const char *s)
{
    if (!s)
        return net_control_write(r, "null", 4);
    return reply_json_string(s, strlen(s), json_put, r);
}

void net_control_finish(struct net_control_request *r, int status)
{
    if (!r->ctl || r->state != REQ_HANDLING) {
        req_free(r); /* the server went away: nobody to answer */
        return;
    }
    if (status < 0 || status > 2)
        status = 1; /* the protocol knows 0, 1 and 2 */
    if (r->cut) {
        /* Make room for the note within the bound; the tail of the body is lost anyway. */
        r->cut = false;
        if (r->body_len > NET_CONTROL_RESPONSE_MAX - CUT_NOTE_ROOM)
            r->body_len = NET_CONTROL_RESPONSE_MAX - CUT_NOTE_ROOM;
        net_control_printf(r, "\nerror: response cut: larger than %u bytes or out of memory\n",
                           NET_CONTROL_RESPONSE_MAX);
        if (status == 0)
            status = 1;
    }
    if (r->done) {
        r->done(r->done_ctx, status, r->body ? r->body : "",
                r->body_len);
        req_free(r);
        return;
    }
    int n = snprintf(r->status_line, sizeof r->status_line, "status %d\n", status);
    r->status_len = n > 0 && (size_t)n < sizeof r->status_line ? (size_t)n : 0;
    r->state = REQ_WRITING;
    r->sent = 0;
    /* Written from the loop, never inside the handler: the handler's caller may still hold r. */
    if (!req_watch(r, EV_WRITE | EV_PERSIST, WRITE_IDLE_TIMEOUT_S * 1000L))
        req_free(r);
}

/* Answers at once with a status and a message (protocol errors found here). */
static void req_answer(struct net_control_request *r, int status, const char *msg)
{
    r->state = REQ_HANDLING;
    net_control_write(r, msg, strlen(msg));
    net_control_finish(r, status);
}

/* Discards what the client sent beyond its request (a too-long line, trailing bytes), up to a
 * bound: closing a Unix socket with unread input makes the peer's next read fail with
 * ECONNRESET instead of a clean end of the answer. */
static void drain(int fd)
{
    char sink[4096];
    for (size_t total = 0; total < DRAIN_MAX;) {
        ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n <= 0 && !(n < 0 && errno == EINTR))
            return;
        total += n > 0 ? (size_t)n : 0;
    }
}

static void write_some(struct net_control_request *r)
{
    for (;;) {
        size_t total = r->status_len + r->body_len;
        if (r->sent >= total) {
            shutdown(r->fd, SHUT_WR);
            drain(r->fd);
            req_free(r);
            return;
        }
        struct iovec iov[2];
        int n_iov = 0;
        if (r->sent < r->status_len) {
            iov[n_iov].iov_base = r->status_line + r->sent;
            iov[n_iov++].iov_len = r->status_len - r->sent;
        }
        size_t body_off = r->sent > r->status_len ? r->sent - r->status_len : 0;
        if (body_off < r->body_len) {
            iov[n_iov].iov_base = r->body + body_off;
            iov[n_iov++].iov_len = r->body_len - body_off;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n_iov};
        ssize_t w = sendmsg(r->fd, &mh, MSG_NOSIGNAL);
        if (w > 0) {
            r->sent += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* the persistent write event calls again */
        req_free(r); /* the client left: the response is dropped */
        return;
    }
}

static void list_commands(struct net_control_request *r)
{
    struct net_control *c = r->ctl;
    net_control_write(r, "; commands:", 11);
    for (size_t i = 0; i < c->n_handlers; i++)
        net_control_printf(r, " %s", c->handlers[i].name);
    net_control_write(r, "\n", 1);
}

/* Splits the line (NUL-terminated, without LF) and runs its command. */
static void dispatch(struct net_control_request *r)
{
    struct net_control *c = r->ctl;
    int argc = 0;
    bool json = false;
    r->state = REQ_HANDLING;
    if (r->ev)
        event_free(r->ev);
    r->ev = NULL;
    for (size_t i = 0; i < r->line_len; i++) {
        unsigned char ch = (unsigned char)r->line[i];
        if (ch < 0x20 || ch == 0x7f) {
            req_answer(r, 2, "request holds a control character\n");
            return;
        }
    }
    char *p = r->line;
    while (*p) {
        char *sp = strchr(p, ' ');
        if (sp)
            *sp = '\0';
        if (*p == '\0') {
            req_answer(r, 2, "empty argument: separate arguments with single spaces\n");
            return;
        }
        if (strcmp(p, "--json") == 0) {
            json = true;
        } else if ((size_t)argc >= NET_CONTROL_ARGS_MAX) {
            req_answer(r, 2, "too many arguments\n");
            return;
        } else {
            r->argv[argc++] = p;
        }
        if (!sp)
            break;
        p = sp + 1;
        if (*p == '\0') {
            req_answer(r, 2, "empty argument: separate arguments with single spaces\n");
            return;
        }
    }
    r->argv[argc] = NULL;
    for (size_t i = 0; argc > 0 && i < c->n_handlers; i++)
        if (strcmp(c->handlers[i].name, r->argv[0]) == 0) {
            c->handlers[i].fn(c->handlers[i].ctx, r, argc, r->argv, json);
            return; /* r belongs to the handler until it calls finish */
        }
    if (argc == 0)
        net_control_write(r, "empty request", 13);
    else
        net_control_printf(r, "unknown command '%s'", r->argv[0]);
    list_commands(r);
    net_control_finish(r, 2);
}


enum read_result { READ_MORE, READ_LINE, READ_TOO_LONG, READ_GONE };

/* Reads what is there. A line of NET_CONTROL_REQUEST_MAX bytes with its LF fits; on READ_LINE
 * line_len excludes the LF, so line[line_len] is free for the NUL. */
static enum read_result read_some(struct net_control_request *r)
{
    for (;;) {
        size_t room = sizeof r->line - r->line_len;
        if (room == 0)
            return READ_TOO_LONG;
        ssize_t n = recv(r->fd, r->line + r->line_len, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return READ_MORE;
        if (n < 0)
            return READ_GONE;
        if (n == 0) /* the writer closed its side: what came is the line */
            return r->line_len > 0 ? READ_LINE : READ_GONE;
        char *lf = memchr(r->line + r->line_len, '\n', (size_t)n);
        r->line_len += (size_t)n;
        if (lf) {
            r->line_len = (size_t)(lf - r->line);
            return READ_LINE;
        }
    }
}

static void on_client(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct net_control_request *r = arg;
    if (r->state == REQ_WRITING) {
        if (what & EV_TIMEOUT)
            req_free(r); /* a client that does not read: drop it and its buffer */
        else
            write_some(r);
        return;
    }
    if (what & EV_TIMEOUT) {
        req_answer(r, 2, "timeout: no complete request line within 5 s\n");
        return;
    }
    struct timeval tv;
    long ms;
    switch (read_some(r)) {
    case READ_MORE:
        ms = net_control_ms_until(&r->deadline);
        tv.tv_sec = ms / 1000;
        tv.tv_usec = (ms % 1000) * 1000;
        if (event_add(r->ev, &tv) != 0)
            req_free(r);
        return;
    case READ_LINE:
        if (r->line_len > 0 && r->line[r->line_len - 1] == '\r')
            r->line_len--; /* tolerate CRLF from hand-typed requests (nc, socat) */
        r->line[r->line_len] = '\0';
        dispatch(r);
        return;
    case READ_TOO_LONG:
        req_answer(r, 2, "request too long\n");
        return;
    case READ_GONE:
        req_free(r);
        return;
    }
}

/* Turns away a client over CLIENTS_MAX with a best-effort answer that cannot block. */
static void refuse(int fd)
{
    static const char busy[] = "status 1\nserver busy: too many control connections\n";
    ssize_t ignored = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)ignored;
    shutdown(fd, SHUT_WR);
    drain(fd);
    close(fd);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    struct net_control *c = arg;
    for (int i = 0; i < CLIENTS_MAX; i++) { /* a bounded batch keeps the loop fair */
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                net_log("control: accept: %s", strerror(errno));
            return;
        }
        struct net_control_request *r = c->n_reqs < CLIENTS_MAX ? calloc(1, sizeof *r) : NULL;
        if (!r) {
            refuse(fd);
            continue;
        }
        r->ctl = c;
        r->fd = fd;
        r->state = REQ_READING;
        net_control_now(&r->deadline);
        r->deadline.tv_sec += READ_TIMEOUT_S;
        r->next = c->reqs;
        if (c->reqs)
            c->reqs->prev = r;
        c->reqs = r;
        c->n_reqs++;
        if (!req_watch(r, EV_READ, READ_TIMEOUT_S * 1000L))
            req_free(r);
    }
}

/* ---- the listening socket ---------------------------------------------------------------- */

/* Removes a socket file nobody answers on; errors when a server answers or the path is not a
 * socket. */
static bool clear_stale(const char *path, const struct sockaddr_un *sun, char *err,
                        size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return true;
        snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
        return false;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "control socket %s: exists and is not a socket", path);
        return false;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "control socket: socket: %s", strerror(errno));
        return false;
    }
    /* Non-blocking: a live server with a full backlog answers EAGAIN instead of stalling us. */
    int rc = connect(fd, (const struct sockaddr *)sun, sizeof *sun);
    int e = errno;
    close(fd);
    if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
        snprintf(err, errlen, "control socket %s: another server is running", path);
        return false;
    }
    if (e != ECONNREFUSED) {
        snprintf(err, errlen, "control socket %s: %s", path, strerror(e));
        return false;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "control socket %s: removing the stale socket: %s", path,
                 strerror(errno));
        return false;
    }
    return true;
}

struct net_control *net_control_new(struct event_base *base, const char *path, char *err,
                                    size_t errlen)
{
    struct sockaddr_un sun;
    if (!net_control_sockaddr(path, &sun, err, errlen) || !clear_stale(path, &sun, err, errlen))
        return NULL;
    struct net_control *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "control socket: out of memory");
        return NULL;
    }
    c->base = base;
    memcpy(c->path, sun.sun_path, sizeof c->path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(err, errlen, "control socket: socket: %s", strerror(errno));
        free(c);
        return NULL;
    }
    struct stat st;
    /* chmod before listen: until listen, connecting is refused, so no one races the mode. */
    if (bind(c->fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        snprintf(err, errlen, "control socket %s: bind: %s", path, strerror(errno));
        close(c->fd);
        free(c);
        return NULL;
    }
    if (chmod(path, 0600) != 0 || lstat(path, &st) != 0 || listen(c->fd, CLIENTS_MAX) != 0) {
        snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
        goto fail;
    }
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    c->accept_ev = event_new(base, c->fd, EV_READ | EV_PERSIST, on_accept, c);
    if (!c->accept_ev || event_add(c->accept_ev, NULL) != 0) {
        snprintf(err, errlen, "control socket %s: cannot watch it on the event loop", path);
        goto fail;
    }
    return c;
fail:
    if (c->accept_ev)
        event_free(c->accept_ev);
    close(c->fd);
    unlink(path);
    free(c);
    return NULL;
}

bool net_control_register(struct net_control *c, const char *command, net_control_handler *h,
                          void *ctx)
{
    size_t n = strlen(command);
    if (n == 0 || n > COMMAND_NAME_MAX || strchr(command, ' '))
        return false;
    size_t i = 0;
    while (i < c->n_handlers && strcmp(c->handlers[i].name, command) != 0)
        i++; /* registering a command again replaces its handler */
    if (i == HANDLERS_MAX)
        return false;
    memcpy(c->handlers[i].name, command, n + 1);
    c->handlers[i].fn = h;
    c->handlers[i].ctx = ctx;
    if (i == c->n_handlers)
        c->n_handlers++;
    return true;
}

bool net_control_run(struct net_control *c, const char *line, net_control_done *done,
                     void *ctx)
{
    size_t n = strlen(line);
    struct net_control_request *r = n < sizeof r->line ? calloc(1, sizeof *r) : NULL;
    if (!r)
        return false;
    r->ctl = c;
    r->fd = -1;
    r->done = done;
    r->done_ctx = ctx;
    memcpy(r->line, line, n + 1);
    r->line_len = n;
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    c->n_reqs++;
    dispatch(r);
    return true;
}

void net_control_free(struct net_control *c)
{
    if (!c)
        return;
    while (c->reqs) {
        struct net_control_request *r = c->reqs;
        if (r->state != REQ_HANDLING) {
            req_free(r);
            continue;
        }
        /* Its handler still holds it: detach it; its net_control_finish frees it. */
        c->reqs = r->next;
        if (c->reqs)
            c->reqs->prev = NULL;
        r->ctl = NULL;
        r->prev = r->next = NULL;
        if (r->fd >= 0)
            close(r->fd);
        r->fd = -1;
    }
    event_free(c->accept_ev);
    close(c->fd);
    struct stat st; /* another server may have replaced the file: leave that one alone */
    if (lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
        unlink(c->path);
    free(c);
}
