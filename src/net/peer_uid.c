/* net/peer_uid.c — who owns the other end of a TCP connection made within this host. One
 * SOCK_DIAG_BY_FAMILY request (sock_diag(7), linux/inet_diag.h) without NLM_F_DUMP asks the
 * kernel for the single socket whose local address and port are our peer's and whose remote
 * address and port are ours; its idiag_uid is the user that made it. Only an ESTABLISHED socket
 * still held open (inode not 0) counts: a closed one lingers as a TIME_WAIT entry that the
 * kernel reports as uid 0, which must never pass for root. */
#include "net/peer_uid.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Bytes for the kernel's answer: one inet_diag_msg and its attributes (none are asked for),
 * or an error message that quotes the request. */
#define PEER_ANSWER_MAX 4096

/* The pair of ends as the request names them: the family, then each end's address (4 or 16
 * bytes, network order) and port. */
struct ends {
    int family;
    unsigned char peer[16], local[16];
    uint16_t peer_port, local_port; /* network order */
};

/* An IPv6 address in canonical form: an IPv4-mapped one becomes IPv4 (the socket is then in
 * the IPv4 table, whichever family made it). Returns the family; addr gets 4 or 16 bytes. */
static int canonical_v6(const unsigned char v6[16], unsigned char addr[16])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(addr, 0, 16);
    if (memcmp(v6, mapped, sizeof mapped) == 0) {
        memcpy(addr, v6 + 12, 4);
        return AF_INET;
    }
    memcpy(addr, v6, 16);
    return AF_INET6;
}

/* An end's address and port (network order); false for anything but IPv4 and IPv6. */
static bool end_address(const struct sockaddr_storage *ss, int *family, unsigned char addr[16],
                        uint16_t *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        *family = AF_INET;
        memset(addr, 0, 16);
        memcpy(addr, &in->sin_addr, 4);
        *port = in->sin_port;
        return true;
    }
    if (ss->ss_family != AF_INET6)
        return false;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
    *port = in6->sin6_port;
    *family = canonical_v6(in6->sin6_addr.s6_addr, addr);
    return true;
}

static bool connection_ends(int fd, struct ends *e)
{
    struct sockaddr_storage local, peer;
    socklen_t llen = sizeof local, plen = sizeof peer;
    int lfam = 0, pfam = 0, type = 0;
    socklen_t tlen = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM ||
        getsockname(fd, (struct sockaddr *)&local, &llen) != 0 ||
        getpeername(fd, (struct sockaddr *)&peer, &plen) != 0)
        return false;
    if (!end_address(&local, &lfam, e->local, &e->local_port) ||
        !end_address(&peer, &pfam, e->peer, &e->peer_port) || lfam != pfam)
        return false;
    e->family = lfam;
    return true;
}

/* The socket the kernel names is the one asked for: the same two ends. An IPv6 socket holding
 * an IPv4 connection is named in IPv6 with mapped addresses. */
static bool names_the_ends(const struct inet_diag_msg *m, const struct ends *e)
{
    unsigned char src[16], dst[16];
    int family = AF_INET;
    if (m->idiag_family == AF_INET6) {
        family = canonical_v6((const unsigned char *)m->id.idiag_src, src);
        if (canonical_v6((const unsigned char *)m->id.idiag_dst, dst) != family)
            return false;
    } else if (m->idiag_family == AF_INET) {
        memset(src, 0, sizeof src);
        memset(dst, 0, sizeof dst);
        memcpy(src, m->id.idiag_src, 4);
        memcpy(dst, m->id.idiag_dst, 4);
    } else {
        return false;
    }
    return family == e->family && m->id.idiag_sport == e->peer_port &&
           m->id.idiag_dport == e->local_port && memcmp(src, e->peer, sizeof src) == 0 &&
           memcmp(dst, e->local, sizeof dst) == 0;
}

/* Reads the one answer to request seq from the kernel; false for an error, a timeout, another
 * sender or a socket that is not the one asked for. */
static bool read_answer(int nl, uint32_t seq, const struct ends *e, struct net_peer_socket *out)
{
    union {
        struct nlmsghdr h; /* aligns the buffer for the headers read from it */
        char bytes[PEER_ANSWER_MAX];
    } buf;
    struct sockaddr_nl from;
    socklen_t flen = sizeof from;
    ssize_t got = recvfrom(nl, buf.bytes, sizeof buf.bytes, 0, (struct sockaddr *)&from, &flen);
    if (got <= 0 || flen != sizeof from || from.nl_pid != 0)
        return false; /* not the kernel's */
    size_t left = (size_t)got;
    for (const struct nlmsghdr *h = &buf.h; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
        if (h->nlmsg_seq != seq || h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
            return false; /* NLMSG_ERROR (no such socket, …), NLMSG_DONE or a stray */
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
            return false;
        const struct inet_diag_msg *m = NLMSG_DATA(h);
        if (!names_the_ends(m, e) || m->idiag_state != TCP_ESTABLISHED || m->idiag_inode == 0)
            return false;
        out->uid = (uid_t)m->idiag_uid;
        out->inode = m->idiag_inode;
        return true;
    }
    return false;
}

bool net_peer_socket(int fd, struct net_peer_socket *out)
{
    struct ends e;
    if (!connection_ends(fd, &e))
        return false;
    struct {
        struct nlmsghdr h;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof req);
    const uint32_t seq = 1; /* a socket of its own per question: no answer of another waits */
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.h.nlmsg_flags = NLM_F_REQUEST; /* no NLM_F_DUMP: the one socket with these ends */
    req.h.nlmsg_seq = seq;
    req.r.sdiag_family = (unsigned char)e.family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = 1u << TCP_ESTABLISHED;
    /* the other end's socket: its local end is our peer, its remote end is us */
    req.r.id.idiag_sport = e.peer_port;
    req.r.id.idiag_dport = e.local_port;
    memcpy(req.r.id.idiag_src, e.peer, sizeof req.r.id.idiag_src);
    memcpy(req.r.id.idiag_dst, e.local, sizeof req.r.id.idiag_dst);
    req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return false;
    struct timeval limit = {.tv_sec = 1};
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    bool ok = setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) == 0 &&
              sendto(nl, &req, sizeof req, 0, (const struct sockaddr *)&kernel,
                     sizeof kernel) == (ssize_t)sizeof req &&
              read_answer(nl, seq, &e, out);
    close(nl);
    return ok;
}
