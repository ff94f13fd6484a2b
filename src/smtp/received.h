/* smtp/received.h — the Received: trace header a server adds to each message (RFC 5321 §4.4,
 * protocol names of RFC 3848 and RFC 6531 §3.7.3). Pure formatting: the caller gives the time. */
#ifndef CLEARMTA_SMTP_RECEIVED_H
#define CLEARMTA_SMTP_RECEIVED_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct smtp_received {
    const char *helo;        /* the client's HELO/EHLO name ("" if none) */
    const char *client_addr; /* numeric IP address */
    const char *hostname;    /* ours */
    const char *queue_id;
    const char *for_rcpt;    /* the recipient when there is exactly one, else NULL */
    bool esmtp, tls, auth, utf8;
    time_t when;
    /* A message handed over by a local program (sendmail): no client, no protocol; the
     * header names the submitting user's uid instead ("from userid N"). */
    bool local;
    unsigned local_uid;
};

/* Writes the header (folded, CRLF-terminated) into out. Returns its length, or 0 if cap is too
 * small (nothing usable written). */
size_t smtp_received_format(char *out, size_t cap, const struct smtp_received *r);

#endif
