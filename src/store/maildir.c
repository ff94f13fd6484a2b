/* store/maildir.c — Maildir delivery: write in tmp/, sync, rename into new/, sync new/. A reader
 * never sees a partial file because only complete, synced files are renamed into new/.
 * Maildir layout per https://cr.yp.to/proto/maildir.html. */
#include "store/maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/fault.h"

#define COPY_BUF (64 * 1024)
/* "<user>/new/<name>": the user is at most 255 bytes (checked by queue_file). */
#define PATH_MAX_LEN (STORE_MAILDIR_NAME_MAX + 300)

enum { IN_NOWHERE, IN_TMP, IN_NEW };

static const char *const subdirs[] = {"tmp", "new", "cur"};

/* Maildir names use ':' for flags and '/' separates paths, so both are escaped in the host. */
static char *escape_host(const char *h)
{
    size_t n = strnlen(h, 255);
    char *out = malloc(n * 4 + 1);
    size_t o = 0;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '/' || h[i] == ':') {
            memcpy(out + o, h[i] == '/' ? "\\057" : "\\072", 4);
            o += 4;
        } else {
            out[o++] = h[i];
        }
    }
    out[o] = '\0';
    return out;
}

int store_maildir_open(struct store_maildir *md, const char *root, const char *hostname)
{
    memset(md, 0, sizeof *md);
    md->root_fd = -1;
    int e = store_io_mkdirs(root, 0700);
    if (e != 0)
        return e;
    md->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (md->root_fd < 0)
        return errno;
    md->host = escape_host(hostname);
    md->buf = malloc(COPY_BUF);
    if (md->host == NULL || md->buf == NULL) {
        store_maildir_close(md);
        return ENOMEM;
    }
    md->pid = getpid();
    return 0;
}

void store_maildir_close(struct store_maildir *md)
{
    if (md->root_fd >= 0)
        close(md->root_fd);
    free(md->host);
    free(md->buf);
    memset(md, 0, sizeof *md);
    md->root_fd = -1;
}

/* "<user>/<sub>[/<name>]" into out; false when it does not fit. In tmp/ our files carry
 * STORE_MAILDIR_TMP_PREFIX, so that startup recognises the leftovers of a crash as ours. */
static bool make_path(char *out, size_t cap, const char *user, const char *sub, const char *name)
{
    int n;
    if (name == NULL)
        n = snprintf(out, cap, "%s/%s", user, sub);
    else if (strcmp(sub, "tmp") == 0)
        n = snprintf(out, cap, "%s/tmp/" STORE_MAILDIR_TMP_PREFIX "%s", user, name);
    else
        n = snprintf(out, cap, "%s/%s/%s", user, sub, name);
    return n > 0 && (size_t)n < cap;
}

bool store_maildir_tmp_path(char *out, size_t cap, const char *dir, const char *name)
{
    return make_path(out, cap, dir, "tmp", name);
}

bool store_maildir_target(const char *mailbox, const char *folder, char *out, size_t cap)
{
    int n = folder != NULL && folder[0] != '\0' ? snprintf(out, cap, "%s/%s", mailbox, folder)
                                                : snprintf(out, cap, "%s", mailbox);
    return n > 0 && (size_t)n < cap;
}

static int fsync_dir_at(int dirfd, const char *path)
{
    int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int e = store_io_fsync(STORE_FAULT_MAILDIR_SYNC, fd);
    close(fd);
    return e;
}

int store_maildir_ensure(struct store_maildir *md, const char *user)
{
    char path[PATH_MAX_LEN], parent[PATH_MAX_LEN] = "";
    bool created_user = false, created_sub = false;
    const char *slash = strrchr(user, '/');
    if (slash != NULL && (size_t)(slash - user) < sizeof parent) {
        memcpy(parent, user, (size_t)(slash - user));
        parent[slash - user] = '\0';
    }
    int made = mkdirat(md->root_fd, user, 0700);
    if (made != 0 && errno == ENOENT && parent[0] != '\0' && strchr(parent, '/') == NULL) {
        int e = store_maildir_ensure(md, parent);
        if (e != 0)
            return e;
        made = mkdirat(md->root_fd, user, 0700);
    }
    if (made == 0)
        created_user = true;
    else if (errno != EEXIST)
        return errno;
    for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
        if (!make_path(path, sizeof path, user, subdirs[i], NULL))
            return ENAMETOOLONG;
        if (mkdirat(md->root_fd, path, 0700) == 0)
            created_sub = true;
        else if (errno != EEXIST)
            return errno;
    }
    int e = 0;
    if (created_sub)
        e = fsync_dir_at(md->root_fd, user);
    if (e == 0 && created_user)
        e = parent[0] != '\0' ? fsync_dir_at(md->root_fd, parent)
                              : store_io_fsync(STORE_FAULT_MAILDIR_SYNC, md->root_fd);
    return e;
}

int store_maildir_unique(struct store_maildir *md, char *out, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int n = snprintf(out, cap, "%lld.M%06ldP%ldQ%" PRIu64 ".%s", (long long)ts.tv_sec,
                     ts.tv_nsec / 1000, (long)md->pid,
                     (uint64_t)atomic_fetch_add(&md->counter, 1) + 1, md->host);
    return n > 0 && (size_t)n < cap ? 0 : ENAMETOOLONG;
}

static int make_name(struct store_maildir *md, uint64_t size, char *out, size_t cap)
{
    int e = store_maildir_unique(md, out, cap);
    size_t len = strlen(out);
    if (e != 0)
        return e;
    int n = snprintf(out + len, cap - len, ",S=%" PRIu64, size);
    return n > 0 && (size_t)n < cap - len ? 0 : ENAMETOOLONG;
}

static int create_tmp(struct store_maildir *md, struct store_maildir_file *f)
{
    char path[PATH_MAX_LEN];
    if (!make_path(path, sizeof path, f->user, "tmp", f->name))
        return ENAMETOOLONG;
    for (int attempt = 0; attempt < 2; attempt++) {
        f->fd = openat(md->root_fd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (f->fd >= 0) {
            f->where = IN_TMP;
            return 0;
        }
        if (errno != ENOENT || attempt == 1)
            return errno;
        int e = store_maildir_ensure(md, f->user);
        if (e != 0)
            return e;
    }
    return EIO;
}

/* prefix, then the body in COPY_BUF chunks (the first chunk shares a write with the prefix). */
static int copy_body(struct store_maildir *md, struct store_maildir_file *f, const char *prefix,
                     size_t prefix_len, int src_fd, uint64_t src_off, uint64_t size)
{
    if (prefix_len > COPY_BUF)
        return EINVAL;
    memcpy(md->buf, prefix, prefix_len);
    size_t used = prefix_len;
    do {
        size_t chunk = COPY_BUF - used;
        if (chunk > size)
            chunk = (size_t)size;
        int e = store_io_pread_all(src_fd, md->buf + used, chunk, src_off);
        if (e == 0)
            e = store_io_write_all(STORE_FAULT_MAILDIR_WRITE, f->fd, md->buf, used + chunk);
        if (e != 0)
            return e;
        src_off += chunk;
        size -= chunk;
        used = 0;
    } while (size > 0);
    return 0;
}

bool store_maildir_return_path(char *out, size_t cap, const char *sender, size_t *len)
{
    int n = snprintf(out, cap, "Return-Path: <%s>\r\n", sender);
    *len = n > 0 ? (size_t)n : 0;
    return n > 0 && (size_t)n < cap;
}

int store_maildir_write(struct store_maildir *md, const char *user, const char *prefix,
                        size_t prefix_len, int src_fd, uint64_t src_off, uint64_t size,
                        struct store_maildir_file *f)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->user = user;
    int e = make_name(md, prefix_len + size, f->name, sizeof f->name);
    if (e == 0)
        e = create_tmp(md, f);
    if (e == 0)
        e = copy_body(md, f, prefix, prefix_len, src_fd, src_off, size);
    if (e != 0)
        store_maildir_discard(md, f);
    return e;
}

int store_maildir_fdatasync(struct store_maildir_file *f)
{
    return store_io_fdatasync(STORE_FAULT_MAILDIR_SYNC, f->fd);
}

int store_maildir_publish(struct store_maildir *md, struct store_maildir_file *f)
{
    char from[PATH_MAX_LEN], to[PATH_MAX_LEN];
    if (!make_path(from, sizeof from, f->user, "tmp", f->name) ||
        !make_path(to, sizeof to, f->user, "new", f->name))
        return ENAMETOOLONG;
    int e = store_io_renameat(STORE_FAULT_MAILDIR_RENAME, md->root_fd, from, md->root_fd, to);
    if (e != 0)
        return e;
    f->where = IN_NEW;
    close(f->fd);
    f->fd = -1;
    return 0;
}

int store_maildir_sync_new(struct store_maildir *md, const char *user)
{
    char path[PATH_MAX_LEN];
    if (!make_path(path, sizeof path, user, "new", NULL))
        return ENAMETOOLONG;
    return fsync_dir_at(md->root_fd, path);
}

void store_maildir_discard(struct store_maildir *md, struct store_maildir_file *f)
{
    char path[PATH_MAX_LEN];
    if (f->where != IN_NOWHERE &&
        make_path(path, sizeof path, f->user, f->where == IN_TMP ? "tmp" : "new", f->name))
        unlinkat(md->root_fd, path, 0);
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    f->where = IN_NOWHERE;
}

/* ---- leftovers of a crash ---- */

/* Whether name (in a tmp/, stat st) is a leftover of ours: our prefix, and either written on
 * this host before `before` (the start of this server: no delivery of ours is in flight) or
 * older than the Maildir convention's 36 hours (another host's, sharing the Maildirs). Files of
 * other programs (an MUA's or another MDA's) are never touched. */
static bool own_leftover(const struct store_maildir *md, const char *name, const struct stat *st,
                         const struct timespec *before)
{
    static const char prefix[] = STORE_MAILDIR_TMP_PREFIX;
    if (strncmp(name, prefix, sizeof prefix - 1) != 0 || !S_ISREG(st->st_mode))
        return false;
    if (st->st_mtim.tv_sec < before->tv_sec - STORE_MAILDIR_TMP_STALE_SECONDS)
        return true;
    if (st->st_mtim.tv_sec > before->tv_sec ||
        (st->st_mtim.tv_sec == before->tv_sec && st->st_mtim.tv_nsec >= before->tv_nsec))
        return false;
    size_t host_len = strlen(md->host);
    for (const char *p = strchr(name, '.'); p != NULL; p = strchr(p + 1, '.'))
        if (strncmp(p + 1, md->host, host_len) == 0 &&
            (p[1 + host_len] == '\0' || p[1 + host_len] == ','))
            return true;
    return false;
}

/* The directory at path under the root, for reading (no symlink at its last component); NULL
 * with errno set when it cannot be opened. */
static DIR *open_dir(const struct store_maildir *md, const char *path)
{
    int fd = openat(md->root_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL && fd >= 0) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return d;
}

/* Whether a directory entry may be a directory (file systems may not tell: DT_UNKNOWN). */
static bool maybe_dir(const struct dirent *de)
{
    return de->d_type == DT_DIR || de->d_type == DT_UNKNOWN;
}

/* Removes our leftovers from the tmp/ at path (under the root); adds their count to *removed. */
static void clean_one_tmp(struct store_maildir *md, const char *path,
                          const struct timespec *before, size_t *removed)
{
    DIR *d = open_dir(md, path);
    if (d == NULL)
        return;
    struct stat st;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            own_leftover(md, de->d_name, &st, before) && unlinkat(dirfd(d), de->d_name, 0) == 0)
            (*removed)++;
    closedir(d);
}

/* The tmp/ of the Maildir at dir, and of its Maildir++ folders (".name" subdirectories). */
static void clean_mailbox(struct store_maildir *md, const char *dir,
                          const struct timespec *before, size_t *removed)
{
    char path[PATH_MAX_LEN], folder[PATH_MAX_LEN];
    if (make_path(path, sizeof path, dir, "tmp", NULL))
        clean_one_tmp(md, path, before, removed);
    DIR *d = open_dir(md, dir);
    if (d == NULL)
        return;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (de->d_name[0] == '.' && strcmp(de->d_name, ".") != 0 &&
            strcmp(de->d_name, "..") != 0 && maybe_dir(de) &&
            store_maildir_target(dir, de->d_name, folder, sizeof folder) &&
            make_path(path, sizeof path, folder, "tmp", NULL))
            clean_one_tmp(md, path, before, removed);
    closedir(d);
}

int store_maildir_clean_tmp(struct store_maildir *md, const struct timespec *before,
                            size_t *removed)
{
    *removed = 0;
    DIR *d = open_dir(md, ".");
    if (d == NULL)
        return errno;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (de->d_name[0] != '.' && maybe_dir(de))
            clean_mailbox(md, de->d_name, before, removed);
    closedir(d);
    return 0;
}
