/* net/log.c — event logging: one write(2) per line so concurrent threads never interleave. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "net/log.h"

#define LOG_LINE_MAX 2048

static bool use_syslog;

void net_log_use_syslog(bool on)
{
    use_syslog = on;
    if (on)
        openlog("clearmta", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

static void emit(const char *text)
{
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
    ssize_t w = write(STDERR_FILENO, line, len);
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
