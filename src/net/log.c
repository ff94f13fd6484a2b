/* net/log.c — event logging to stderr, a file (reopened for logrotate) or syslog: one write(2)
 * per line so concurrent threads never interleave, and one line per event whatever outside
 * text it holds (a remote reply, a client's name): control bytes are escaped here, once. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "net/log.h"
#include "net/owned_file.h"
#include "reply/safe_text.h"

#define LOG_LINE_MAX 2048

static bool use_syslog;
/* Where lines go: stderr, or the log file. Reopening dup2()s the new file onto this same
 * descriptor, so a thread writing meanwhile never sees a closed one. */
static int log_fd = STDERR_FILENO;
static char log_path[4096];

static uid_t log_owner; /* besides root, the one owner a log file may have */

/* Opens path for appending without following a symlink, and keeps it only when it is a
 * regular file with one name, owned by root or log_owner and not writable by others: root
 * opens it before the privilege drop, often in a directory others may write to, where a
 * planted symlink or hard link would have root append to a file of someone else's choosing. */
static int open_log(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW |
                            O_NONBLOCK, 0640);
    struct stat st;
    if (fd < 0) {
        int e = errno; /* a planted link may also read as EACCES (fs.protected_regular) */
        bool link = e == ELOOP || (lstat(path, &st) == 0 && S_ISLNK(st.st_mode));
        snprintf(err, errlen, "log file %s: %s%s", path, strerror(e),
                 link ? " (a symbolic link: name the file itself)" : "");
        return -1;
    }
    const char *why = fstat(fd, &st) != 0 ? strerror(errno)
                                           : net_owned_file_problem(&st, log_owner);
    if (why == NULL && (st.st_mode & S_IWOTH))
        why = "writable by others (chmod o-w)";
    if (why) {
        snprintf(err, errlen, "log file %s refused: %s", path, why);
        close(fd);
        return -1;
    }
    return fd;
}

bool net_log_open_file(const char *path, uid_t owner, char *err, size_t errlen)
{
    size_t n = strlen(path);
    if (n >= sizeof log_path) {
        snprintf(err, errlen, "log file path too long");
        return false;
    }
    log_owner = owner;
    int fd = open_log(path, err, errlen);
    if (fd < 0)
        return false;
    memcpy(log_path, path, n + 1);
    log_fd = fd;
    return true;
}

bool net_log_reopen(char *err, size_t errlen)
{
    if (log_fd == STDERR_FILENO)
        return true;
    int fd = open_log(log_path, err, errlen);
    if (fd < 0)
        return false;
    bool ok = dup3(fd, log_fd, O_CLOEXEC) >= 0;
    if (!ok)
        snprintf(err, errlen, "log file %s: %s", log_path, strerror(errno));
    close(fd);
    return ok;
}

void net_log_use_syslog(bool on)
{
    use_syslog = on;
    if (on)
        openlog("clearmta", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* Writes one line: text's line ends become spaces and its control bytes "\xHH", so no text
 * from outside starts a line of its own or reaches a terminal reading the log. */
static void emit(const char *raw)
{
    char text[LOG_LINE_MAX];
    reply_safe_text_buf(raw, strlen(raw), " ", text, sizeof text);
    if (use_syslog) {
        syslog(LOG_INFO, "%s", text);
        return;
    }
    char line[LOG_LINE_MAX + 64];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ clearmta: %s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, text);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if ((size_t)n >= sizeof line)
        line[len - 1] = '\n';
    ssize_t w = write(log_fd, line, len);
    (void)w; /* nowhere left to report a failed log write */
}

void net_log(const char *fmt, ...)
{
    char text[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    emit(text);
}

void net_log_line(void *ctx, const char *line)
{
    (void)ctx;
    emit(line);
}
