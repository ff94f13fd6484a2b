/* store/remote.c — the store side of remote delivery: scanning queue/ for pending remote
 * recipients, loading a message, and recording outcomes in place under flock(2). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "store/remote.h"

bool store_remote_pending(const struct store_qf *qf, size_t i)
{
    return i < qf->env.n_rcpts && qf->env.rcpts[i].local_user == NULL &&
           qf->state[i] == STORE_RCPT_PENDING;
}

static bool any_local(const struct store_qf *qf)
{
    for (size_t i = 0; i < qf->env.n_rcpts; i++)
        if (qf->env.rcpts[i].local_user != NULL)
            return true;
    return false;
}

static bool any_remote_pending(const struct store_qf *qf)
{
    for (size_t i = 0; i < qf->env.n_rcpts; i++)
        if (store_remote_pending(qf, i))
            return true;
    return false;
}

static enum store_err from_errno(int e)
{
    if (e == ENOSPC || e == EDQUOT)
        return STORE_ERR_NOSPACE;
    return e == ENOMEM ? STORE_ERR_NOMEM : STORE_ERR_IO;
}

enum store_err store_remote_open_dir(const char *queue_dir, int *dir_fd)
{
    *dir_fd = -1;
    int top = open(queue_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (top < 0)
        return from_errno(errno);
    *dir_fd = openat(top, "queue", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = errno;
    close(top);
    return *dir_fd >= 0 ? STORE_OK : from_errno(e);
}

/* Reads the file's header; the file is closed on error. */
static enum store_err open_file(int dir_fd, const char *id, int *fd, struct store_qf *qf,
                                bool *gone)
{
    *gone = false;
    if (!store_qf_valid_id(id, strlen(id)))
        return STORE_ERR_CORRUPT;
    *fd = openat(dir_fd, id, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (*fd < 0) {
        *gone = errno == ENOENT;
        return *gone ? STORE_OK : from_errno(errno);
    }
    enum store_err err = store_qf_read(*fd, qf);
    if (err == STORE_OK && strcmp(qf->id, id) != 0) {
        store_qf_free(qf);
        err = STORE_ERR_CORRUPT;
    }
    if (err != STORE_OK) {
        close(*fd);
        *fd = -1;
    }
    return err;
}

enum store_err store_remote_scan(int dir_fd, void (*fn)(void *ctx, const char *id), void *ctx)
{
    int fd = dup(dir_fd);
    if (fd < 0)
        return from_errno(errno);
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return from_errno(errno);
    }
    rewinddir(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        struct store_qf qf;
        int qfd;
        bool gone;
        if (!store_qf_valid_id(de->d_name, strlen(de->d_name)) ||
            open_file(dir_fd, de->d_name, &qfd, &qf, &gone) != STORE_OK || gone)
            continue;
        bool want = any_remote_pending(&qf);
        store_qf_free(&qf);
        close(qfd);
        if (want)
            fn(ctx, de->d_name);
    }
    closedir(d);
    return STORE_OK;
}

static enum store_err read_body(struct store_remote_msg *m)
{
    if (m->qf.size > SIZE_MAX - 1)
        return STORE_ERR_CORRUPT;
    size_t n = (size_t)m->qf.size;
    m->body = malloc(n > 0 ? n : 1);
    if (m->body == NULL)
        return STORE_ERR_NOMEM;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(m->fd, m->body + done, n - done, (off_t)(m->qf.header_len + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? STORE_ERR_CORRUPT : from_errno(errno);
        done += (size_t)r;
    }
    m->body_len = n;
    return STORE_OK;
}

enum store_err store_remote_load(int dir_fd, const char *id, struct store_remote_msg *m,
                                 bool *gone)
{
    memset(m, 0, sizeof *m);
    m->fd = -1;
    enum store_err err = open_file(dir_fd, id, &m->fd, &m->qf, gone);
    if (err != STORE_OK || *gone)
        return err;
    err = read_body(m);
    if (err != STORE_OK)
        store_remote_close(m);
    return err;
}

/* Takes the states now on disk into m->qf. The header layout never changes in place, so only
 * the states are taken from the fresh parse. */
static enum store_err refresh_states(struct store_remote_msg *m)
{
    struct store_qf now;
    enum store_err err = store_qf_read(m->fd, &now);
    if (err != STORE_OK)
        return err;
    if (now.env.n_rcpts != m->qf.env.n_rcpts) {
        store_qf_free(&now);
        return STORE_ERR_CORRUPT;
    }
    memcpy(m->qf.state, now.state, now.env.n_rcpts * sizeof *now.state);
    store_qf_free(&now);
    return STORE_OK;
}

static enum store_err write_states(struct store_remote_msg *m, const size_t *idx,
                                   const enum store_rcpt_state *st, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (st[k] == STORE_RCPT_PENDING || st[k] == STORE_RCPT_DEFERRED)
            continue; /* stays pending on disk */
        enum store_err err = store_qf_set_state(m->fd, m->qf.state_off[idx[k]], st[k]);
        if (err != STORE_OK)
            return err;
        m->qf.state[idx[k]] = st[k];
    }
    return STORE_OK;
}

static bool none_pending(const struct store_qf *qf)
{
    for (size_t i = 0; i < qf->env.n_rcpts; i++)
        if (qf->state[i] == STORE_RCPT_PENDING)
            return false;
    return true;
}

/* m->qf's states as write_states() leaves them, without writing (a write error after this
 * leaves m->qf ahead of the disk until the next refresh_states: nothing reads it meanwhile). */
static void take_states(struct store_remote_msg *m, const size_t *idx,
                        const enum store_rcpt_state *st, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (st[k] != STORE_RCPT_PENDING && st[k] != STORE_RCPT_DEFERRED)
            m->qf.state[idx[k]] = st[k];
}

enum store_err store_remote_record(int dir_fd, struct store_remote_msg *m, const size_t *idx,
                                   const enum store_rcpt_state *st, size_t n, bool *removed)
{
    *removed = false;
    for (size_t k = 0; k < n; k++)
        if (idx[k] >= m->qf.env.n_rcpts)
            return STORE_ERR_INVALID;
    /* Only the local runner writes the file besides us, and only for a local recipient. */
    bool shared = any_local(&m->qf);
    int r = 0;
    while (shared && (r = flock(m->fd, LOCK_EX)) != 0 && errno == EINTR)
        ;
    if (r != 0)
        return from_errno(errno);
    enum store_err err = shared ? refresh_states(m) : STORE_OK;
    if (err == STORE_OK) {
        take_states(m, idx, st, n);
        if (none_pending(&m->qf) && unlinkat(dir_fd, m->qf.id, 0) == 0)
            *removed = m->removed = true; /* the states of a removed file need no writing */
        else
            err = write_states(m, idx, st, n);
    }
    if (shared)
        flock(m->fd, LOCK_UN);
    return err;
}

static int by_id(const void *x, const void *y)
{
    return strcmp(x, y);
}

enum store_err store_remote_list(int dir_fd, char (**ids)[STORE_ID_LEN + 1], size_t *n)
{
    *ids = NULL;
    *n = 0;
    int fd = dup(dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        enum store_err err = from_errno(errno);
        if (fd >= 0)
            close(fd);
        return err;
    }
    rewinddir(d);
    size_t cap = 0;
    enum store_err err = STORE_OK;
    for (struct dirent *de; err == STORE_OK && (de = readdir(d)) != NULL;) {
        if (!store_qf_valid_id(de->d_name, strlen(de->d_name)))
            continue;
        if (*n == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            char(*grown)[STORE_ID_LEN + 1] = reallocarray(*ids, ncap, sizeof **ids);
            if (grown == NULL) {
                err = STORE_ERR_NOMEM;
                break;
            }
            *ids = grown;
            cap = ncap;
        }
        memcpy((*ids)[(*n)++], de->d_name, STORE_ID_LEN + 1);
    }
    closedir(d);
    if (err != STORE_OK) {
        free(*ids);
        *ids = NULL;
        *n = 0;
        return err;
    }
    if (*n > 1)
        qsort(*ids, *n, sizeof **ids, by_id);
    return STORE_OK;
}

enum store_err store_remote_peek(int dir_fd, const char *id, struct store_qf *qf, bool *gone)
{
    int fd = -1;
    enum store_err err = open_file(dir_fd, id, &fd, qf, gone);
    if (fd >= 0)
        close(fd);
    return err;
}

enum store_err store_remote_remove(int dir_fd, struct store_remote_msg *m)
{
    int r;
    while ((r = flock(m->fd, LOCK_EX)) != 0 && errno == EINTR)
        ;
    if (r != 0)
        return from_errno(errno);
    enum store_err err = refresh_states(m);
    if (err == STORE_OK && unlinkat(dir_fd, m->qf.id, 0) != 0)
        err = from_errno(errno);
    if (err == STORE_OK && fsync(dir_fd) != 0)
        err = from_errno(errno);
    flock(m->fd, LOCK_UN);
    return err;
}

void store_remote_close_deferred(struct store_remote_msg *m, struct store_lazysync *s)
{
    if (m->fd >= 0) {
        store_qf_free(&m->qf);
        if (m->removed && s != NULL)
            store_lazysync_close(s, m->fd);
        else
            close(m->fd);
    }
    free(m->body);
    memset(m, 0, sizeof *m);
    m->fd = -1;
}

void store_remote_close(struct store_remote_msg *m)
{
    store_remote_close_deferred(m, NULL);
}
