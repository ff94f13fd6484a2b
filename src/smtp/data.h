/* smtp/data.h — message data on the wire, both ways: the DATA and BDAT body reader (dot-unstuffing,
 * end only at <CRLF>.<CRLF>, bare CR/LF and NUL detection, size accounting) and the sender's
 * dot-stuffer. RFC 5321 §4.1.1.4, §4.5.2, §2.3.8; RFC 3030. Bare LF or CR never ends or splits
 * a message (SMTP smuggling). The Received: fields of the header are counted on the way
 * (smtp/hops.h). */
#ifndef CLEARMTA_SMTP_DATA_H
#define CLEARMTA_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/hops.h"

/* Receives message bytes (unstuffed, CRLF line ends); returns 0, or non-zero to record a write
 * failure (the reader then stops emitting but still consumes to the end of the message). */
typedef int (*smtp_data_emit_fn)(void *ctx, const char *data, size_t len);

#define SMTP_DATA_NORMALIZE_BARE 0x1u /* turn bare LF / bare CR into CRLF instead of flagging */

struct smtp_data_reader {
    /* configuration */
    uint64_t limit;     /* size limit in octets of the message as stored */
    unsigned flags;
    /* results, valid once done (DATA) or after any chunk (BDAT) */
    uint64_t size;      /* octets of the message (after unstuffing, as stored), counted past limit */
    bool too_big;       /* size > limit: emitting stopped */
    bool bare_lf;       /* a bare LF or bare CR was seen (and not normalised) */
    bool nul;           /* a NUL octet was seen */
    bool emit_failed;   /* emit returned non-zero */
    struct smtp_hops hops; /* Received: fields of the header section (loop detection) */
    bool done;          /* DATA: the terminating <CRLF>.<CRLF> was consumed; BDAT: the last
                           chunk was fed. Further input is then ignored. */
    /* private state: position in the line (data.c) and "the last octet was a CR" */
    int state;
    bool pending_cr;
};

void smtp_data_init(struct smtp_data_reader *r, uint64_t limit, unsigned flags);

/* DATA mode: consumes wire bytes until the end-of-data line; returns the bytes consumed (less
 * than n only when the terminator was found, then r->done; 0 once done). Bytes past the
 * terminator are the client's next (pipelined) command. Input may be split anywhere. */
size_t smtp_data_feed(struct smtp_data_reader *r, const char *p, size_t n,
                      smtp_data_emit_fn emit, void *ctx);

/* BDAT mode: all n bytes are message content (no dot-stuffing, no terminator); the same
 * checks and size accounting apply. `last` marks the final chunk (flushes a pending CR). */
void smtp_data_feed_chunk(struct smtp_data_reader *r, const char *p, size_t n, bool last,
                          smtp_data_emit_fn emit, void *ctx);

/* The sending side of DATA (RFC 5321 §4.5.2): message bytes as stored in, wire bytes out. A line
 * starting with '.' gets another '.' (unless dots is false: BDAT data); CRLF, bare CR and bare LF all go out as CRLF, so no reader
 * can find an end of data inside the message whatever it takes for a line end (SMTP smuggling).
 * The state carries over between calls: how the input and the output room are cut changes
 * nothing in the bytes produced. */
struct smtp_data_stuffer {
    bool line_start; /* the next octet begins a line */
    bool after_cr;   /* the last octet was a CR, already sent as CRLF: an LF now is its LF */
    bool dots;       /* stuff dots (set by init); false: line ends only, for BDAT (RFC 3030) */
};

void smtp_data_stuff_init(struct smtp_data_stuffer *st);

/* Stuffs from in (n octets) into out (room octets; nothing happens below 3); returns the octets
 * written and sets *used to the input octets consumed (less than n when out is full). */
size_t smtp_data_stuff(struct smtp_data_stuffer *st, const char *in, size_t n, size_t *used,
                       char *out, size_t room);

/* The end of data after the last input octet: CRLF when the message did not end with a line
 * break, then ".\r\n". Returns the octets written (at most 5), or 0 when room is below 5. */
size_t smtp_data_stuff_end(const struct smtp_data_stuffer *st, char *out, size_t room);

#endif
