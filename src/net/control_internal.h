/* net/control_internal.h — what the control server (control.c) and its client (control_client.c)
 * share beside the protocol in control.h: the socket address, the status line's bound and the
 * monotonic deadlines both sides keep. Not for other modules. */
#ifndef CLEARMTA_NET_CONTROL_INTERNAL_H
#define CLEARMTA_NET_CONTROL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

/* Room for "status N\n", the first line of every answer. */
#define NET_CONTROL_STATUS_LINE_MAX 16

/* The address of the socket at path; false with the reason in err when path is empty or does
 * not fit sun_path (binding or connecting would silently use a truncated name). */
static inline bool net_control_sockaddr(const char *path, struct sockaddr_un *sun, char *err,
                                        size_t errlen)
{
    size_t n = strlen(path);
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (n == 0 || n >= sizeof sun->sun_path) {
        snprintf(err, errlen, "control socket path '%s': empty or longer than %zu bytes", path,
                 sizeof sun->sun_path - 1);
        return false;
    }
    memcpy(sun->sun_path, path, n + 1);
    return true;
}

/* Deadlines are monotonic: a clock step must not cut or stretch an exchange. */
static inline void net_control_now(struct timespec *t)
{
    clock_gettime(CLOCK_MONOTONIC, t);
}

/* Milliseconds from now until t (0 when past). */
static inline long net_control_ms_until(const struct timespec *t)
{
    struct timespec now;
    net_control_now(&now);
    long ms = (long)(t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
    return ms > 0 ? ms : 0;
}

#endif
