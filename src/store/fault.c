/* store/fault.c — the store's syscall wrappers and, in test builds, fault injection.
 * Every write, sync and rename of the queue and the Maildir writer goes through here, so a test
 * can make exactly the Nth fsync fail with EIO, or every write fail with ENOSPC, and check that
 * the store answers with an error and leaves nothing half-done behind (the idea of SQLite's
 * src/fault.c and test/ioerr.test). Release builds compile the checks away. */
#include "store/fault.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef CLEARMTA_TESTING
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct fault_rule {
    int err;        /* errno to inject, 0 = none */
    uint64_t nth;   /* 0 = every call, else only this call (1-based) */
    uint64_t calls; /* calls seen since the rule was set */
};

static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static bool fault_loaded;
static struct fault_rule fault_rules[STORE_FAULT__COUNT];

static const char *const fault_names[] = {
#define STORE_FAULT_NAME(name, text) text,
    STORE_FAULT_OPS(STORE_FAULT_NAME)
#undef STORE_FAULT_NAME
};

static const struct { const char *name; int err; } fault_errnos[] = {
    {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT}, {"EIO", EIO},
    {"EROFS", EROFS},   {"EACCES", EACCES}, {"ENOMEM", ENOMEM},
};

static bool token_is(const char *p, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(p, word, n) == 0;
}

/* One "op=ERRNO[@N]" item of length n into rules; false when malformed. */
static bool parse_item(const char *p, size_t n, struct fault_rule *rules)
{
    const char *eq = memchr(p, '=', n);
    if (eq == NULL)
        return false;
    size_t op;
    for (op = 0; op < STORE_FAULT__COUNT; op++)
        if (token_is(p, (size_t)(eq - p), fault_names[op]))
            break;
    if (op == STORE_FAULT__COUNT)
        return false;
    const char *v = eq + 1, *end = p + n;
    const char *at = memchr(v, '@', (size_t)(end - v));
    const char *vend = at != NULL ? at : end;
    uint64_t nth = 0;
    if (at != NULL) {
        if (at + 1 == end)
            return false;
        for (const char *d = at + 1; d < end; d++) {
            if (*d < '0' || *d > '9' || nth > UINT64_MAX / 10 - 1)
                return false;
            nth = nth * 10 + (uint64_t)(*d - '0');
        }
        if (nth == 0)
            return false;
    }
    for (size_t i = 0; i < sizeof fault_errnos / sizeof fault_errnos[0]; i++) {
        if (token_is(v, (size_t)(vend - v), fault_errnos[i].name)) {
            rules[op] = (struct fault_rule){fault_errnos[i].err, nth, 0};
            return true;
        }
    }
    return false;
}

static int parse_spec(const char *spec, struct fault_rule *rules)
{
    memset(rules, 0, sizeof fault_rules);
    if (spec == NULL)
        return 0;
    const char *p = spec;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (n > 0 && !parse_item(p, n, rules))
            return -1;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

int store_fault_set(const char *spec)
{
    struct fault_rule rules[STORE_FAULT__COUNT];
    int rc = parse_spec(spec, rules);
    pthread_mutex_lock(&fault_mu);
    if (rc == 0)
        memcpy(fault_rules, rules, sizeof fault_rules);
    else
        memset(fault_rules, 0, sizeof fault_rules);
    fault_loaded = true;
    pthread_mutex_unlock(&fault_mu);
    return rc;
}

int store_fault_hit(enum store_fault_op op)
{
    int err = 0;
    if ((size_t)op >= STORE_FAULT__COUNT)
        return 0;
    pthread_mutex_lock(&fault_mu);
    if (!fault_loaded) {
        fault_loaded = true;
        if (parse_spec(getenv("CLEARMTA_FAULT"), fault_rules) != 0)
            memset(fault_rules, 0, sizeof fault_rules);
    }
    struct fault_rule *r = &fault_rules[op];
    if (r->err != 0) {
        r->calls++;
        if (r->nth == 0 || r->nth == r->calls)
            err = r->err;
    }
    pthread_mutex_unlock(&fault_mu);
    return err;
}
#endif

/* Writes all n bytes at the file position (off < 0) or at offset off, going on after partial
 * writes and EINTR; 0 or the errno. */
static int write_fully(enum store_fault_op op, int fd, const void *p, size_t n, int64_t off)
{
    const char *c = p;
    int fault = store_fault_hit(op);
    if (fault != 0)
        return fault;
    while (n > 0) {
        ssize_t w = off < 0 ? write(fd, c, n) : pwrite(fd, c, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        c += w;
        n -= (size_t)w;
        if (off >= 0)
            off += w;
    }
    return 0;
}

int store_io_write2_all(enum store_fault_op op, int fd, const void *a, size_t an,
                        const void *b, size_t bn)
{
    int fault = store_fault_hit(op);
    if (fault != 0)
        return fault;
    struct iovec iov[2] = {{(void *)a, an}, {(void *)b, bn}};
    struct iovec *v = iov;
    int count = 2;
    while (count > 0 && v->iov_len == 0)
        v++, count--;
    while (count > 0) {
        ssize_t w = writev(fd, v, count);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno;
        if (w == 0)
            return EIO; /* no progress: never spin */
        size_t done = (size_t)w;
        while (count > 0 && done >= v->iov_len) {
            done -= v->iov_len;
            v++, count--;
        }
        if (count > 0) {
            v->iov_base = (char *)v->iov_base + done;
            v->iov_len -= done;
        }
    }
    return 0;
}

int store_io_write_all(enum store_fault_op op, int fd, const void *p, size_t n)
{
    return write_fully(op, fd, p, n, -1);
}

int store_io_pwrite_all(enum store_fault_op op, int fd, const void *p, size_t n, uint64_t off)
{
    if (off > (uint64_t)INT64_MAX)
        return EINVAL;
    return write_fully(op, fd, p, n, (int64_t)off);
}

int store_io_pread_all(int fd, void *p, size_t n, uint64_t off)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = pread(fd, c, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (r == 0)
            return ENODATA;
        c += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int store_io_fdatasync(enum store_fault_op op, int fd)
{
    int fault = store_fault_hit(op);
    if (fault != 0)
        return fault;
    return fdatasync(fd) == 0 ? 0 : errno;
}

int store_io_fsync(enum store_fault_op op, int fd)
{
    int fault = store_fault_hit(op);
    if (fault != 0)
        return fault;
    return fsync(fd) == 0 ? 0 : errno;
}

int store_io_syncfs(enum store_fault_op op, int fd)
{
    int fault = store_fault_hit(op);
    if (fault != 0)
        return fault;
    return syncfs(fd) == 0 ? 0 : errno;
}

int store_io_renameat(enum store_fault_op op, int olddir, const char *oldname, int newdir,
                      const char *newname)
{
    int fault = store_fault_hit(op);
    if (fault != 0)
        return fault;
    return renameat(olddir, oldname, newdir, newname) == 0 ? 0 : errno;
}

int store_io_linkat(enum store_fault_op op, int olddir, const char *oldname, int newdir,
                    const char *newname)
{
    int fault = store_fault_hit(op);
    if (fault != 0)
        return fault;
    return linkat(olddir, oldname, newdir, newname, 0) == 0 ? 0 : errno;
}

int store_io_mkdirs(const char *path, mode_t mode)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    /* Create each ancestor in turn; EEXIST is fine for every one of them. */
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return errno;
        buf[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return errno;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

enum store_err store_err_from_errno(int e)
{
    switch (e) {
    case 0:
        return STORE_OK;
    case ENOSPC:
    case EDQUOT:
        return STORE_ERR_NOSPACE;
    case ENOMEM:
        return STORE_ERR_NOMEM;
    default:
        return STORE_ERR_IO;
    }
}
