/* server/pickup.c — moves what `clearmta sendmail` left in the maildrop into the queue: at
 * start, every SERVER_PICKUP_INTERVAL_S seconds and when sendmail asks ("pickup" on the control
 * socket). One file at a time; a file goes only once its message is durable in the queue.
 * Any local user may write the maildrop, so one scan is bounded (PICKUP_SCAN_FILES files,
 * PICKUP_SCAN_BYTES bytes read) and what is no message is settled once (set aside or
 * removed), never read again at every scan. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include "net/control.h"
#include "net/log.h"
#include "policy/recipients.h"
#include "server/server.h"
#include "smtp/addr.h"
#include "smtp/received.h"
#include "smtp/submit.h"
#include "store/maildrop.h"
#include "base/clock.h"

/* One scan looks at most at this many maildrop entries and stops reading once it has read
 * this many bytes (a single file may take it past, up to max_message_size and an envelope):
 * the event loop is never held long. The rest waits for the next scan, at once when this one
 * settled something, else at the next tick. */
#define PICKUP_SCAN_FILES 64
#define PICKUP_SCAN_BYTES ((size_t)4 << 20)

struct server_pickup {
    struct server *srv;
    struct event *timer;
    struct event *again;                   /* the rest of a scan cut short by its bounds */
    bool busy;                             /* a message is being committed */
    char name[STORE_MAILDROP_NAME_CAP];    /* its maildrop file */
    int dir_fd;                            /* the maildrop dir of the file in flight */
    char sender[LIMIT_PATH + 1];
    size_t n_rcpts;
    uint64_t size;
    unsigned uid;
    bool remote;
};

enum policy_rcpt_result server_pickup_classify(const struct policy_config *cfg,
                                               const char *address, char *mailbox, size_t cap)
{
    char path[LIMIT_PATH + 3];
    struct smtp_path p;
    size_t used;
    int n = snprintf(path, sizeof path, "<%s>", address);
    if (n < 0 || (size_t)n >= sizeof path ||
        smtp_addr_parse_path(path, (size_t)n, SMTP_ADDR_ALLOW_POSTMASTER | SMTP_ADDR_UTF8, &p,
                             &used) != SMTP_ADDR_OK)
        return POLICY_RCPT_UNKNOWN_USER;
    return policy_rcpt_lookup(cfg, p.local, p.is_postmaster ? "" : p.domain, mailbox, cap);
}

/* A file that is no message stays for the administrator under a name pickup skips, or goes
 * when that name is taken: either way it is read once. */
static void set_aside(int dir_fd, const char *name, const char *why)
{
    char kept[STORE_MAILDROP_NAME_CAP + 8];
    if (!store_maildrop_set_aside(dir_fd, name, kept, sizeof kept))
        net_log("pickup: %s: %s; cannot set it aside or remove it: %s", name, why,
                strerror(errno));
    else if (kept[0] != '\0')
        net_log("pickup: %s: %s; kept as maildrop/%s", name, why, kept);
    else
        net_log("pickup: %s: %s; removed (maildrop/bad-%s is taken)", name, why, name);
}

static void scan(struct server_pickup *pk);

static void committed(void *ctx, enum store_err err, const char *queue_id)
{
    struct server_pickup *pk = ctx;
    pk->busy = false;
    if (err != STORE_OK) {
        net_log("pickup: %s: cannot queue: %s; tried again later", pk->name, store_strerror(err));
    } else {
        /* Durable in the queue: now the maildrop copy may go. A crash right here would queue
         * it once more at the next start; that window is one unlink and one fsync long. */
        if (unlinkat(pk->dir_fd, pk->name, 0) != 0 || fsync(pk->dir_fd) != 0)
            net_log("warning: pickup: cannot remove maildrop/%s: %s", pk->name,
                    strerror(errno));
        net_log("%s: uid=%u, from=<%s>, size=%llu, nrcpt=%zu (maildrop)", queue_id, pk->uid,
                pk->sender, (unsigned long long)pk->size, pk->n_rcpts);
        if (pk->remote && pk->srv->agent)
            deliver_agent_submit(pk->srv->agent, queue_id);
    }
    close(pk->dir_fd);
    pk->dir_fd = -1;
    if (err == STORE_OK && !pk->srv->shutting_down)
        scan(pk); /* the next one at once */
}

/* Writes m into the queue; true when a commit is under way. */
static bool enqueue(struct server_pickup *pk, struct store_maildrop_msg *m)
{
    struct server *srv = pk->srv;
    bool nul = false;
    char *body = malloc(2 * m->body_len + 2);
    struct store_rcpt *rcpts = calloc(m->n_rcpts, sizeof *rcpts);
    char (*boxes)[POLICY_MAILBOX_CAP] = calloc(m->n_rcpts, sizeof *boxes);
    size_t n = 0, body_len = 0;
    bool ok = false;
    if (!body || !rcpts || !boxes)
        goto out;
    /* The file is a local user's: its lines are made CRLF again, whatever it says. */
    body_len = smtp_submit_normalize(m->body, m->body_len, true, body, &nul);
    if (nul || body_len > srv->cfg->max_message_size) {
        set_aside(pk->dir_fd, pk->name, nul ? "NUL bytes in the message" : "message too large");
        goto out;
    }
    pk->remote = false;
    for (size_t i = 0; i < m->n_rcpts; i++) {
        switch (server_pickup_classify(srv->cfg, m->rcpts[i], boxes[n], sizeof boxes[n])) {
        case POLICY_RCPT_LOCAL:
            rcpts[n].local_user = boxes[n];
            break;
        case POLICY_RCPT_NOT_LOCAL:
        case POLICY_RCPT_LMTP: /* the delivery agent takes it to the LMTP server */
            pk->remote = true;
            break;
        case POLICY_RCPT_UNKNOWN_USER: /* sendmail checked; the configuration changed since */
            net_log("pickup: %s: recipient <%s> unknown here; left out", pk->name, m->rcpts[i]);
            continue;
        }
        rcpts[n++].address = (char *)m->rcpts[i];
    }
    if (n == 0) {
        set_aside(pk->dir_fd, pk->name, "no recipient known here");
        goto out;
    }
    struct store_envelope env = {.sender = m->sender, .rcpts = rcpts, .n_rcpts = n,
                                 .arrival = base_clock_steady()};
    struct store_msg *msg = NULL;
    enum store_err err = store_msg_begin(srv->queue, &env, &msg);
    char header[1024];
    struct smtp_received r = {.hostname = srv->cfg->hostname,
                              .queue_id = msg ? store_msg_id(msg) : "",
                              .for_rcpt = n == 1 ? rcpts[0].address : NULL,
                              .when = time(NULL), .local = true, .local_uid = m->uid};
    size_t hn = msg ? smtp_received_format(header, sizeof header, &r) : 0;
    if (err == STORE_OK && hn == 0) {
        r.for_rcpt = NULL;
        hn = smtp_received_format(header, sizeof header, &r);
    }
    if (err == STORE_OK)
        err = store_msg_write(msg, header, hn);
    if (err == STORE_OK)
        err = store_msg_write(msg, body, body_len);
    if (err != STORE_OK) {
        if (msg)
            store_msg_abort(msg);
        net_log("pickup: %s: cannot queue: %s; tried again later", pk->name,
                store_strerror(err));
        goto out;
    }
    snprintf(pk->sender, sizeof pk->sender, "%s", m->sender);
    pk->n_rcpts = n;
    pk->size = body_len;
    pk->uid = (unsigned)m->uid;
    pk->busy = true;
    ok = true;
    store_msg_commit(msg, committed, pk);
out:
    free(body);
    free(rcpts);
    free(boxes);
    return ok;
}

/* The next complete maildrop file, if any, into the queue, within one scan's bounds. */
static void scan(struct server_pickup *pk)
{
    if (pk->busy || !pk->srv->queue)
        return;
    int dir_fd = store_maildrop_open_dir(pk->srv->cfg->queue_dir);
    if (dir_fd < 0)
        return; /* no maildrop: made at start; a warning said why it could not be */
    int list_fd = dup(dir_fd);
    DIR *d = list_fd >= 0 ? fdopendir(list_fd) : NULL;
    if (!d) {
        if (list_fd >= 0)
            close(list_fd);
        close(dir_fd);
        return;
    }
    struct dirent *de;
    bool started = false, settled = false;
    size_t files = 0, bytes = 0;
    while (!started && (de = readdir(d)) != NULL) {
        if (!store_maildrop_is_name(de->d_name))
            continue;
        if (files == PICKUP_SCAN_FILES || bytes >= PICKUP_SCAN_BYTES) {
            if (settled) /* the rest next, once the loop has served everyone else */
                event_active(pk->again, EV_TIMEOUT, 0);
            break;
        }
        files++;
        struct store_maildrop_msg m;
        size_t cost;
        memcpy(pk->name, de->d_name, strlen(de->d_name) + 1); /* 33 bytes: checked above */
        pk->dir_fd = dir_fd;
        enum store_err e = store_maildrop_read(dir_fd, de->d_name,
                                               pk->srv->cfg->max_message_size +
                                                   STORE_MAILDROP_ENVELOPE_MAX,
                                               &m, &cost);
        bytes += cost;
        if (e == STORE_ERR_CORRUPT || e == STORE_ERR_INVALID) {
            set_aside(dir_fd, de->d_name,
                      e == STORE_ERR_CORRUPT ? "not a maildrop file" : "message too large");
            settled = true;
            continue;
        }
        if (e != STORE_OK) {
            net_log("pickup: %s: cannot read: %s", de->d_name, store_strerror(e));
            continue;
        }
        started = enqueue(pk, &m);
        settled = true;
        store_maildrop_msg_free(&m);
    }
    closedir(d);
    if (!started) {
        close(dir_fd);
        pk->dir_fd = -1;
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    scan(arg);
}

static void on_pickup_command(void *ctx, struct net_control_request *req, int argc, char **argv,
                              bool json)
{
    (void)argc;
    (void)argv;
    (void)json;
    scan(ctx);
    net_control_finish(req, 0);
}

bool server_pickup_open(struct server *srv)
{
    struct server_pickup *pk = calloc(1, sizeof *pk);
    if (!pk)
        return false;
    pk->srv = srv;
    pk->dir_fd = -1;
    srv->pickup = pk;
    char err[512];
    if (!store_maildrop_make(srv->cfg->queue_dir, err, sizeof err))
        net_log("warning: pickup: %s", err);
    struct timeval every = {.tv_sec = SERVER_PICKUP_INTERVAL_S};
    pk->timer = event_new(srv->base, -1, EV_PERSIST, on_timer, pk);
    pk->again = event_new(srv->base, -1, 0, on_timer, pk);
    if (!pk->timer || !pk->again || evtimer_add(pk->timer, &every) < 0)
        return false;
    if (srv->control && !net_control_register(srv->control, "pickup", on_pickup_command, pk))
        net_log("warning: control socket: cannot register the pickup command");
    scan(pk); /* what was dropped while the server was down */
    return true;
}

void server_pickup_close(struct server *srv)
{
    struct server_pickup *pk = srv->pickup;
    if (!pk)
        return;
    if (pk->timer)
        event_free(pk->timer);
    if (pk->again)
        event_free(pk->again);
    if (pk->dir_fd >= 0)
        close(pk->dir_fd);
    free(pk);
    srv->pickup = NULL;
}
