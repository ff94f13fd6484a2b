/* smtp/hops.h — counts the Received: fields of a message's header section as the message
 * streams in, for mail-loop detection (RFC 5321 §6.3). */
#ifndef CLEARMTA_SMTP_HOPS_H
#define CLEARMTA_SMTP_HOPS_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_hops {
    unsigned count; /* Received: fields seen so far (saturates) */
    bool header_done; /* the empty line ending the header section was read */
    /* private state (hops.c) */
    int state;
    unsigned matched; /* octets of "received" matched at the start of the current line */
};

void smtp_hops_init(struct smtp_hops *h);

/* Feeds n message octets (CRLF or LF line ends); input may be split anywhere. Once the header
 * section has ended the octets are not looked at. */
void smtp_hops_feed(struct smtp_hops *h, const char *p, size_t n);

#endif
