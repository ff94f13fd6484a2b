/* store/maildrop.c — maildrop files: written durably by local programs (tmp, fsync, rename,
 * fsync the directory), read back and parsed by the server's pickup. Format in maildrop.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "limits_mta.h"
#include "store/fault.h"
#include "store/maildrop.h"

static const char magic[] = "clearmta-maildrop 1";

/* An address as the maildrop keeps it: what an SMTP path may hold, nothing that would break
 * the line format or a later MAIL/RCPT command. */
static bool address_ok(const char *a, size_t n, bool empty_ok)
{
    if (n == 0)
        return empty_ok;
    if (n > LIMIT_PATH)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)a[i];
        if (ch <= ' ' || ch == 0x7f || ch == '<' || ch == '>')
            return false;
    }
    return true;
}

/* The next line of buf[*at..len) made a string; NULL when no LF ends it. */
static char *next_line(char *buf, size_t len, size_t *at)
{
    char *start = buf + *at;
    char *nl = memchr(start, '\n', len - *at);
    if (!nl)
        return NULL;
    *nl = '\0';
    *at = (size_t)(nl - buf) + 1;
    return start;
}

/* "<addr>" of an S or R line into its address (angle brackets removed, in place). */
static const char *bracketed(char *v, bool empty_ok)
{
    size_t n = strlen(v);
    if (n < 2 || v[0] != '<' || v[n - 1] != '>')
        return NULL;
    v[n - 1] = '\0';
    return address_ok(v + 1, n - 2, empty_ok) ? v + 1 : NULL;
}

bool store_maildrop_parse(char *buf, size_t len, struct store_maildrop_msg *m)
{
    memset(m, 0, sizeof *m);
    size_t at = 0, cap = 0;
    char *line = next_line(buf, len, &at);
    if (!line || strcmp(line, magic) != 0)
        return false;
    while ((line = next_line(buf, len, &at)) != NULL && line[0] != '\0') {
        if (strncmp(line, "S ", 2) == 0 && !m->sender) {
            if (!(m->sender = bracketed(line + 2, true)))
                goto bad;
        } else if (strncmp(line, "R ", 2) == 0 && m->sender) {
            if (m->n_rcpts == LIMIT_RECIPIENTS_MAX)
                goto bad;
            if (m->n_rcpts == cap) {
                cap = cap ? cap * 2 : 8;
                const char **grown = realloc(m->rcpts, cap * sizeof *grown);
                if (!grown)
                    goto bad;
                m->rcpts = grown;
            }
            if (!(m->rcpts[m->n_rcpts] = bracketed(line + 2, false)))
                goto bad;
            m->n_rcpts++;
        } else {
            goto bad;
        }
    }
    if (!line || m->n_rcpts == 0)
        goto bad;
    m->body = buf + at;
    m->body_len = len - at;
    return true;
bad:
    free(m->rcpts);
    memset(m, 0, sizeof *m);
    return false;
}

bool store_maildrop_is_name(const char *name)
{
    if (name[0] != 'D' || strlen(name) != 33)
        return false;
    for (size_t i = 1; i < 33; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    return true;
}

/* queue_dir itself, never through a symbolic link at its last component: O_PATH, which serves
 * the *at calls even where the caller may only search it (0711). */
static int open_queue_dir(const char *queue_dir)
{
    return open(queue_dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

int store_maildrop_open_dir(const char *queue_dir)
{
    int q = open_queue_dir(queue_dir);
    if (q < 0)
        return -1;
    int fd = openat(q, STORE_MAILDROP_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(q);
    errno = e;
    return fd;
}

/* The maildrop for writing: a user other than its owner may not read it (01733), so it is
 * then opened O_PATH, which serves openat and renameat; *readable says whether it can be
 * fsynced too. */
static int open_for_drop(int q, bool *readable)
{
    int fd = openat(q, STORE_MAILDROP_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    *readable = fd >= 0;
    if (fd < 0 && errno == EACCES)
        fd = openat(q, STORE_MAILDROP_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd;
}

/* Gives the maildrop just made in q its mode, 01733 (any local user may drop a file, none may
 * list or take another's), and q's owner, whose server must remove what root dropped. All on
 * descriptors, and only on a directory this process owns: one swapped in after mkdirat is
 * refused, never changed. */
static bool settle_new_dir(int q, int fd)
{
    struct stat qst, st;
    if (fstat(q, &qst) != 0 || fstat(fd, &st) != 0)
        return false;
    if (st.st_uid != geteuid()) {
        errno = EPERM;
        return false;
    }
    if (fchmod(fd, 01733) != 0)
        return false;
    return geteuid() != 0 || fchown(fd, qst.st_uid, qst.st_gid) == 0;
}

/* Opens the maildrop for writing, making it when missing (see store_maildrop_write). */
static int make_dir(const char *queue_dir, bool *readable, char *err, size_t errlen)
{
    int q = open_queue_dir(queue_dir);
    if (q < 0 && errno == ENOENT && store_io_mkdirs(queue_dir, 0700) == 0)
        q = open_queue_dir(queue_dir);
    if (q < 0) {
        snprintf(err, errlen, "cannot open %s: %s", queue_dir, strerror(errno));
        return -1;
    }
    int fd = open_for_drop(q, readable);
    bool missing = fd < 0 && errno == ENOENT;
    if (missing && mkdirat(q, STORE_MAILDROP_DIR, 0700) == 0) {
        fd = openat(q, STORE_MAILDROP_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        *readable = fd >= 0;
        if (fd >= 0 && !settle_new_dir(q, fd)) {
            int e = errno;
            close(fd);
            fd = -1;
            errno = e;
        }
    }
    if (fd < 0)
        snprintf(err, errlen, "cannot %s %s/%s: %s%s", missing ? "make" : "open", queue_dir,
                 STORE_MAILDROP_DIR, strerror(errno),
                 missing ? " (the server makes it when it starts, make install too)" : "");
    close(q);
    return fd;
}

bool store_maildrop_make(const char *queue_dir, char *err, size_t errlen)
{
    bool readable;
    int fd = make_dir(queue_dir, &readable, err, errlen);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static bool put(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool put_line(int fd, const char *tag, const char *addr)
{
    return put(fd, tag, strlen(tag)) && put(fd, "<", 1) && put(fd, addr, strlen(addr)) &&
           put(fd, ">\n", 2);
}

enum store_err store_maildrop_write(const char *queue_dir, const char *sender,
                                    const char *const *rcpts, size_t n_rcpts, const char *msg,
                                    size_t len, char *name, size_t namecap, char *err,
                                    size_t errlen)
{
    err[0] = '\0';
    if (!address_ok(sender, strlen(sender), true) || n_rcpts == 0 ||
        n_rcpts > LIMIT_RECIPIENTS_MAX || namecap < STORE_MAILDROP_NAME_CAP) {
        snprintf(err, errlen, "invalid envelope");
        return STORE_ERR_INVALID;
    }
    for (size_t i = 0; i < n_rcpts; i++)
        if (!address_ok(rcpts[i], strlen(rcpts[i]), false)) {
            snprintf(err, errlen, "invalid recipient address");
            return STORE_ERR_INVALID;
        }
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        snprintf(err, errlen, "no random bytes: %s", strerror(errno));
        return STORE_ERR_IO;
    }
    char hex[33], tmp[40];
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    snprintf(name, namecap, "D%s", hex);
    snprintf(tmp, sizeof tmp, "t%s", hex);
    bool readable;
    int dir = make_dir(queue_dir, &readable, err, errlen);
    if (dir < 0)
        return STORE_ERR_IO;
    enum store_err status = STORE_ERR_IO;
    /* 0644: the server, another user, must read it; nobody else can find it (01733 dir). */
    int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        goto tempfail;
    fchmod(fd, 0644); /* whatever the umask */
    bool ok = put(fd, magic, sizeof magic - 1) && put(fd, "\n", 1) && put_line(fd, "S ", sender);
    for (size_t i = 0; ok && i < n_rcpts; i++)
        ok = put_line(fd, "R ", rcpts[i]);
    ok = ok && put(fd, "\n", 1) && put(fd, msg, len);
    if (!ok || fsync(fd) != 0)
        goto tempfail;
    /* The new name must be durable too: fsync of the directory, or, for a user who may not
     * open it for reading, syncfs of its filesystem through the file. */
    if (renameat(dir, tmp, dir, name) != 0 || (readable ? fsync(dir) : syncfs(fd)) != 0)
        goto tempfail;
    if (close(fd) != 0) {
        fd = -1;
        goto tempfail;
    }
    close(dir);
    return STORE_OK;
tempfail:
    status = errno == ENOSPC || errno == EDQUOT ? STORE_ERR_NOSPACE : STORE_ERR_IO;
    snprintf(err, errlen, "cannot write to the maildrop: %s", strerror(errno));
    if (fd >= 0)
        close(fd);
    unlinkat(dir, tmp, 0);
    unlinkat(dir, name, 0);
    close(dir);
    return status;
}

/* Why name in dir_fd could not be opened: something lstat says is no regular file (a socket:
 * ENXIO), a symbolic link or a file its writer made unreadable is never a message. */
static enum store_err open_failure(int dir_fd, const char *name, int e)
{
    struct stat st;
    if (e == ELOOP || e == EACCES || e == ENXIO)
        return STORE_ERR_CORRUPT;
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
        return STORE_ERR_CORRUPT;
    return STORE_ERR_IO;
}

/* Reads exactly n bytes of fd into buf; false on an error or a file shorter than that. */
static bool read_exactly(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

enum store_err store_maildrop_read(int dir_fd, const char *name, size_t max_bytes,
                                   struct store_maildrop_msg *m, size_t *bytes_read)
{
    memset(m, 0, sizeof *m);
    if (bytes_read)
        *bytes_read = 0;
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return open_failure(dir_fd, name, errno);
    struct stat st;
    enum store_err status = STORE_ERR_IO;
    char *buf = NULL;
    if (fstat(fd, &st) != 0)
        goto out;
    /* A link to someone else's file, a FIFO, a directory or a device is not a message. */
    status = STORE_ERR_CORRUPT;
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
        goto out;
    status = STORE_ERR_INVALID;
    if ((uint64_t)st.st_size > max_bytes)
        goto out;
    size_t size = (size_t)st.st_size, head = sizeof magic; /* the magic and its LF */
    status = STORE_ERR_CORRUPT;
    if (size < head)
        goto out;
    /* The first line first: a file that is no maildrop file costs a few bytes, not its size. */
    char first[sizeof magic];
    status = STORE_ERR_IO;
    if (!read_exactly(fd, first, head))
        goto out;
    if (bytes_read)
        *bytes_read = head;
    status = STORE_ERR_CORRUPT;
    if (memcmp(first, magic, head - 1) != 0 || first[head - 1] != '\n')
        goto out;
    status = STORE_ERR_NOMEM;
    if (!(buf = malloc(size + 1)))
        goto out;
    memcpy(buf, first, head);
    status = STORE_ERR_IO;
    if (!read_exactly(fd, buf + head, size - head))
        goto out;
    if (bytes_read)
        *bytes_read = size;
    buf[size] = '\0';
    status = STORE_ERR_CORRUPT;
    if (!store_maildrop_parse(buf, size, m))
        goto out;
    m->buf = buf;
    m->uid = st.st_uid;
    buf = NULL;
    status = STORE_OK;
out:
    free(buf);
    close(fd);
    return status;
}

bool store_maildrop_set_aside(int dir_fd, const char *name, char *kept, size_t keptcap)
{
    int n = snprintf(kept, keptcap, "bad-%s", name);
    if (n > 0 && (size_t)n < keptcap &&
        renameat2(dir_fd, name, dir_fd, kept, RENAME_NOREPLACE) == 0)
        return true;
    if (keptcap > 0)
        kept[0] = '\0';
    if (unlinkat(dir_fd, name, 0) == 0)
        return true;
    return (errno == EISDIR || errno == EPERM) && unlinkat(dir_fd, name, AT_REMOVEDIR) == 0;
}

void store_maildrop_msg_free(struct store_maildrop_msg *m)
{
    free(m->rcpts);
    free(m->buf);
    memset(m, 0, sizeof *m);
}
