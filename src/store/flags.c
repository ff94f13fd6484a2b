/* store/flags.c — durable per-message flags as empty files flags/<ID>.hold, flags/<ID>.warned
 * beside queue/. A file exists or not: no partial state to recover after a crash. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/fault.h" /* store_err_from_errno */
#include "store/flags.h"
#include "store/queue_file.h"

/* "<ID>.warned" and its NUL. */
#define FLAG_NAME_CAP (STORE_ID_LEN + 8)

static const char *const suffixes[] = {[STORE_FLAG_HOLD] = "hold",
                                       [STORE_FLAG_WARNED] = "warned"};

static bool flag_name(const char *id, enum store_flag f, char name[FLAG_NAME_CAP])
{
    if (id == NULL || !store_qf_valid_id(id, strnlen(id, STORE_ID_LEN + 1)))
        return false;
    int n = snprintf(name, FLAG_NAME_CAP, "%s.%s", id, suffixes[f]);
    return n > 0 && n < FLAG_NAME_CAP;
}

enum store_err store_flags_open(int queue_fd, int *flags_fd)
{
    *flags_fd = -1;
    int top = openat(queue_fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (top < 0)
        return store_err_from_errno(errno);
    int e = 0;
    /* Plain fsync here and below: fault injection (fault.h) counts the syncs of the message
     * path, which flags are not part of. */
    if (mkdirat(top, "flags", 0700) == 0)
        e = fsync(top) == 0 ? 0 : errno; /* the new directory's name is durable */
    else if (errno != EEXIST)
        e = errno;
    if (e == 0) {
        *flags_fd = openat(top, "flags", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (*flags_fd < 0)
            e = errno;
    }
    close(top);
    return e == 0 ? STORE_OK : store_err_from_errno(e);
}

bool store_flags_get(int flags_fd, const char *id, enum store_flag f)
{
    char name[FLAG_NAME_CAP];
    return flags_fd >= 0 && flag_name(id, f, name) &&
           faccessat(flags_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

enum store_err store_flags_set(int flags_fd, const char *id, enum store_flag f, bool on)
{
    char name[FLAG_NAME_CAP];
    if (flags_fd < 0 || !flag_name(id, f, name))
        return flags_fd < 0 ? STORE_ERR_IO : STORE_ERR_INVALID;
    if (on) {
        int fd = openat(flags_fd, name, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return store_err_from_errno(errno);
        close(fd);
    } else if (unlinkat(flags_fd, name, 0) != 0 && errno != ENOENT) {
        return store_err_from_errno(errno);
    }
    return fsync(flags_fd) == 0 ? STORE_OK : store_err_from_errno(errno);
}

void store_flags_forget(int flags_fd, const char *id)
{
    char name[FLAG_NAME_CAP];
    for (size_t f = 0; f < sizeof suffixes / sizeof suffixes[0]; f++)
        if (flags_fd >= 0 && flag_name(id, (enum store_flag)f, name))
            unlinkat(flags_fd, name, 0);
}

void store_flags_sweep(int flags_fd, int queue_fd)
{
    int fd = flags_fd >= 0 ? dup(flags_fd) : -1;
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    rewinddir(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        char id[STORE_ID_LEN + 1];
        if (strlen(de->d_name) <= STORE_ID_LEN || de->d_name[STORE_ID_LEN] != '.' ||
            !store_qf_valid_id(de->d_name, STORE_ID_LEN))
            continue;
        memcpy(id, de->d_name, STORE_ID_LEN);
        id[STORE_ID_LEN] = '\0';
        if (faccessat(queue_fd, id, F_OK, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)
            unlinkat(flags_fd, de->d_name, 0);
    }
    closedir(d);
}
