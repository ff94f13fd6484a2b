/* net/log.h — one line per event to stderr or syslog, safe from any thread. Lines follow the
 * house format: queue id first where there is one, then key=value pairs. */
#ifndef CLEARMTA_NET_LOG_H
#define CLEARMTA_NET_LOG_H

#include <stdbool.h>

/* Sends later lines to syslog (facility mail) instead of stderr. */
void net_log_use_syslog(bool on);

/* Formats and writes one line (a newline is added). Lines over 2 KiB are truncated. */
void net_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes a line that is already formatted; matches the store's logger callback. */
void net_log_line(void *ctx, const char *line);

#endif
