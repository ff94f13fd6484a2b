/* net/listener.c — listening sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/listener.h"

/* Connections the kernel may hold before we accept them; bursts of thousands are normal. */
#define LISTEN_BACKLOG 4096

int net_listen(const char *host, unsigned short port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (host[0] == '\0') {
        v6->sin6_family = AF_INET6;
        v6->sin6_addr = in6addr_any;
        v6->sin6_port = htons(port);
        len = sizeof *v6;
    } else if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof *v6;
    } else {
        snprintf(err, errlen, "listen %s:%u: not a numeric address", host, port);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "listen %s:%u: socket: %s", host, port, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6 && host[0] == '\0') {
        int zero = 0; /* "every address" means IPv4 too */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        snprintf(err, errlen, "listen %s:%u: %s", host[0] ? host : "*", port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void net_peer_address(const void *sockaddr, char *out, size_t cap)
{
    const struct sockaddr *sa = sockaddr;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = sockaddr;
        if (!inet_ntop(AF_INET, &v4->sin_addr, out, (socklen_t)cap))
            snprintf(out, cap, "unknown");
        return;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = sockaddr;
        if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
            if (!inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], out, (socklen_t)cap))
                snprintf(out, cap, "unknown");
        } else if (!inet_ntop(AF_INET6, &v6->sin6_addr, out, (socklen_t)cap)) {
            snprintf(out, cap, "unknown");
        }
        return;
    }
    snprintf(out, cap, "unknown");
}
