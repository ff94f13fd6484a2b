/* store/direct.c — write once for local mail (see direct.h): the message's file in the queue's
 * pool/ (or the first recipient's Maildir tmp/), hard links (or copies) for the others in their
 * tmp/, publication into new/ after the group commit's sync. One allocation per message holds the recipients and their strings. */
#include "store/direct.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/fault.h"
#include "store/queue_file.h"

/* More recipients than this take the queue path: the links of one message then never hold up
 * a whole batch, and the duplicate check stays cheap. */
#define DIRECT_RCPTS_MAX 64
#define COPY_BUF (64 * 1024)
/* "<dir>/new/<name>,S=<size>" with dir at most a mailbox (255) and a folder. */
#define PATH_CAP (STORE_MAILDIR_NAME_MAX + 600)

enum where { IN_NOWHERE, IN_POOL, IN_TMP, IN_NEW };

struct direct_rcpt {
    const char *dir;     /* the target Maildir under the root (store_maildir_target) */
    const char *address; /* for the log */
    enum where where;
    bool other_fs;       /* copied, not linked: its new/ needs a sync of its own */
};

struct store_direct {
    int root_fd; /* borrowed from the queue's store_maildir */
    int pool_fd; /* an adopted file's directory, and its name there */
    const char *pool_name;
    int64_t arrival;
    uint64_t size;
    const char *folder; /* the Maildir++ folder (".Junk") named by the log line; NULL: inbox */
    char name[STORE_MAILDIR_NAME_MAX];
    size_t n;
    struct direct_rcpt r[];
};

bool store_direct_eligible(const struct store_envelope *env)
{
    if (env->n_rcpts == 0 || env->n_rcpts > DIRECT_RCPTS_MAX)
        return false;
    for (size_t i = 0; i < env->n_rcpts; i++) {
        const struct store_rcpt *r = &env->rcpts[i];
        if (r->local_user == NULL || (r->notify & STORE_NOTIFY_SUCCESS))
            return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(env->rcpts[j].local_user, r->local_user) == 0)
                return false;
    }
    return true;
}

/* d with its recipients and their strings in one block; NULL when out of memory or a target
 * directory does not fit. */
static struct store_direct *direct_new(const struct store_envelope *env)
{
    char dir[PATH_CAP];
    size_t strings = 0;
    for (size_t i = 0; i < env->n_rcpts; i++) {
        if (!store_maildir_target(env->rcpts[i].local_user, env->folder, dir, sizeof dir))
            return NULL;
        strings += strlen(dir) + 1 + strlen(env->rcpts[i].address) + 1;
    }
    size_t folder_len = env->folder != NULL ? strlen(env->folder) + 1 : 0;
    strings += folder_len;
    size_t head = sizeof(struct store_direct) + env->n_rcpts * sizeof(struct direct_rcpt);
    struct store_direct *d = malloc(head + strings);
    if (d == NULL)
        return NULL;
    memset(d, 0, head);
    d->n = env->n_rcpts;
    d->arrival = env->arrival;
    char *p = (char *)d + head;
    for (size_t i = 0; i < d->n; i++) {
        (void)store_maildir_target(env->rcpts[i].local_user, env->folder, dir, sizeof dir);
        size_t dl = strlen(dir) + 1, al = strlen(env->rcpts[i].address) + 1;
        d->r[i].dir = memcpy(p, dir, dl);
        d->r[i].address = memcpy(p + dl, env->rcpts[i].address, al);
        p += dl + al;
    }
    if (folder_len > 0)
        d->folder = memcpy(p, env->folder, folder_len);
    return d;
}

int store_direct_begin(struct store_maildir *md, const struct store_envelope *env,
                       struct store_direct **out)
{
    *out = NULL;
    if (store_qf_check_envelope(env) != STORE_OK)
        return EINVAL;
    struct store_direct *d = direct_new(env);
    if (d == NULL)
        return ENOMEM;
    d->root_fd = md->root_fd;
    d->pool_fd = -1;
    int e = store_maildir_unique(md, d->name, sizeof d->name);
    if (e != 0) {
        free(d);
        return e;
    }
    *out = d;
    return 0;
}

int store_direct_create(struct store_direct *d, int *fd)
{
    char path[PATH_CAP];
    if (!store_maildir_tmp_path(path, sizeof path, d->r[0].dir, d->name))
        return ENAMETOOLONG;
    *fd = openat(d->root_fd, path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (*fd < 0)
        return errno;
    d->r[0].where = IN_TMP;
    return 0;
}

void store_direct_adopt(struct store_direct *d, int dir_fd, const char *name)
{
    d->pool_fd = dir_fd;
    d->pool_name = name;
    d->r[0].where = IN_POOL;
}

/* A copy of src_fd's bytes into the new file at path, synced; for a Maildir on another
 * filesystem, where a hard link cannot go. */
static int copy_synced(int root_fd, const char *path, int src_fd)
{
    int out = openat(root_fd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0)
        return errno;
    char *buf = malloc(COPY_BUF);
    int e = buf == NULL ? ENOMEM : 0;
    for (uint64_t off = 0; e == 0;) {
        ssize_t n = pread(src_fd, buf, COPY_BUF, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            e = n < 0 ? errno : 0;
            break;
        }
        e = store_io_write_all(STORE_FAULT_WRITE, out, buf, (size_t)n);
        off += (uint64_t)n;
    }
    free(buf);
    if (e == 0)
        e = store_io_fdatasync(STORE_FAULT_SYNC, out);
    close(out);
    if (e != 0)
        unlinkat(root_fd, path, 0);
    return e;
}

int store_direct_link(struct store_direct *d, struct store_maildir *md, int fd)
{
    char tmp[PATH_CAP], to[PATH_CAP];
    /* The links are made from the file where it is: the pool, or the first recipient's tmp/. */
    int from_fd = d->pool_fd;
    const char *from = d->pool_name;
    if (d->r[0].where != IN_POOL) {
        if (!store_maildir_tmp_path(tmp, sizeof tmp, d->r[0].dir, d->name))
            return ENAMETOOLONG;
        from_fd = d->root_fd;
        from = tmp;
    }
    for (size_t i = 1; i < d->n; i++) {
        struct direct_rcpt *r = &d->r[i];
        if (!store_maildir_tmp_path(to, sizeof to, r->dir, d->name))
            return ENAMETOOLONG;
        int e = store_io_linkat(STORE_FAULT_LINK, from_fd, from, d->root_fd, to);
        if (e == ENOENT && (e = store_maildir_ensure(md, r->dir)) == 0)
            e = store_io_linkat(STORE_FAULT_LINK, from_fd, from, d->root_fd, to);
        if (e == EXDEV) {
            e = copy_synced(d->root_fd, to, fd);
            r->other_fs = true;
        }
        if (e != 0)
            return e;
        r->where = IN_TMP;
    }
    return 0;
}

/* "<dir>/new/<name>,S=<size>"; false when it does not fit. */
static bool new_path(char *out, size_t cap, const char *dir, const char *name, uint64_t size)
{
    int n = snprintf(out, cap, "%s/new/%s,S=%" PRIu64, dir, name, size);
    return n > 0 && (size_t)n < cap;
}

int store_direct_publish(struct store_direct *d, struct store_maildir *md, uint64_t size)
{
    char from[PATH_CAP], to[PATH_CAP];
    d->size = size;
    for (size_t i = 0; i < d->n; i++) {
        struct direct_rcpt *r = &d->r[i];
        if (!new_path(to, sizeof to, r->dir, d->name, size))
            return ENAMETOOLONG;
        int e;
        if (r->where == IN_POOL) {
            /* Straight from the pool, where it was written (no stop in tmp/): the file's
             * move out of the pool, as into queue/ on the queue path. */
            e = store_io_renameat(STORE_FAULT_RENAME, d->pool_fd, d->pool_name, d->root_fd, to);
            if (e == ENOENT && (e = store_maildir_ensure(md, r->dir)) == 0)
                e = store_io_renameat(STORE_FAULT_RENAME, d->pool_fd, d->pool_name, d->root_fd,
                                      to);
        } else {
            if (!store_maildir_tmp_path(from, sizeof from, r->dir, d->name))
                return ENAMETOOLONG;
            e = store_io_renameat(STORE_FAULT_MAILDIR_RENAME, d->root_fd, from, d->root_fd, to);
        }
        if (e != 0)
            return e;
        r->where = IN_NEW;
    }
    return 0;
}

int store_direct_sync_new(struct store_direct *d, bool all)
{
    char path[PATH_CAP];
    for (size_t i = 0; i < d->n; i++) {
        if (!all && !d->r[i].other_fs)
            continue;
        int n = snprintf(path, sizeof path, "%s/new", d->r[i].dir);
        if (n < 0 || (size_t)n >= sizeof path)
            return ENAMETOOLONG;
        int fd = openat(d->root_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return errno;
        int e = store_io_fsync(STORE_FAULT_SYNC, fd);
        close(fd);
        if (e != 0)
            return e;
    }
    return 0;
}

void store_direct_discard(struct store_direct *d)
{
    char path[PATH_CAP];
    if (d->r[0].where == IN_POOL)
        unlinkat(d->pool_fd, d->pool_name, 0);
    for (size_t i = 0; i < d->n; i++) {
        struct direct_rcpt *r = &d->r[i];
        bool ok = r->where == IN_TMP ? store_maildir_tmp_path(path, sizeof path, r->dir, d->name)
                                     : new_path(path, sizeof path, r->dir, d->name, d->size);
        if ((r->where == IN_TMP || r->where == IN_NEW) && ok)
            unlinkat(d->root_fd, path, 0);
        r->where = IN_NOWHERE;
    }
}

void store_direct_report(const struct store_direct *d, const char *id,
                         void (*log)(void *ctx, const char *line), void *log_ctx)
{
    char line[STORE_QF_FIELD_MAX + 256];
    struct timespec now;
    if (log == NULL)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    double delay = (double)(now.tv_sec - d->arrival) + (double)now.tv_nsec / 1e9;
    if (delay < 0)
        delay = 0;
    for (size_t i = 0; i < d->n; i++) {
        /* A truncated line is still worth logging; the bound only protects the buffer. */
        (void)snprintf(line, sizeof line,
                       "%s: to=<%s>, relay=local, delay=%.2f, dsn=2.0.0, status=sent "
                       "(delivered to maildir%s%s)",
                       id, d->r[i].address, delay, d->folder ? " folder " : "",
                       d->folder ? d->folder : "");
        log(log_ctx, line);
    }
}

size_t store_direct_rcpts(const struct store_direct *d) { return d->n; }

void store_direct_free(struct store_direct *d) { free(d); }
