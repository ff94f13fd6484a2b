/* net/log.c — event logging to stderr, a file (reopened for logrotate) or syslog: one write(2)
 * per line so concurrent threads never interleave, and one line per event whatever outside
 * text it holds (a remote reply, a client's name): control bytes are escaped here, once. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "net/log.h"
#include "reply/safe_text.h"

#define LOG_LINE_MAX 2048

static bool use_syslog;
/* Where lines go: stderr, or the log file. Reopening dup2()s the new file onto this same
 * descriptor, so a thread writing meanwhile never sees a closed one. */
static int log_fd = STDERR_FILENO;
static char log_path[4096];

static int open_log(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0)
        snprintf(err, errlen, "log file %s: %s", path, strerror(errno));
    return fd;
}

bool net_log_open_file(const char *path, char *err, size_t errlen)
{
    size_t n = strlen(path);
    if (n >= sizeof log_path) {
        snprintf(err, errlen, "log file path too long");
        return false;
    }
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
