/* net/log.h — one line per event to stderr or syslog, safe from any thread. Lines follow the
 * house format: queue id first where there is one, then key=value pairs. */
#ifndef CLEARMTA_NET_LOG_H
#define CLEARMTA_NET_LOG_H

#include <stdbool.h>
#include <sys/types.h>

/* Sends later lines to syslog (facility mail) instead of stderr. */
void net_log_use_syslog(bool on);

/* Sends later lines to the file at path (appended, created 0640), by name: net_log_reopen
 * opens the name again (logrotate moved the file). The name is never followed as a symbolic
 * link, and the file must be a regular file with one name, owned by root or by owner (the
 * server's user) and not writable by others, here and at each reopen. False with the reason
 * in err. */
bool net_log_open_file(const char *path, uid_t owner, char *err, size_t errlen);

/* Opens the log file's name again and writes there from now on; other threads' lines go
 * whole to the old or the new file. Nothing to do without a log file. False with the reason
 * in err (the old file stays in use). */
bool net_log_reopen(char *err, size_t errlen);

/* Formats and writes one line (a newline is added). Lines over 2 KiB are truncated. In every
 * line written, LF shows as a space and other control bytes as "\xHH" (reply/safe_text.h). */
void net_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes a line that is already formatted; matches the store's logger callback. */
void net_log_line(void *ctx, const char *line);

#endif
