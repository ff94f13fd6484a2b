/* reply/mime.h — a bounded MIME reader for bounce messages: header fields (unfolded, RFC 2047
 * decoded), parameters, multipart walking (nested, message/rfc822), base64 and quoted-printable
 * bodies, text converted to UTF-8. RFC 5322, RFC 2045-2047, RFC 2231 (plain values only). */
#ifndef CLEARMTA_REPLY_MIME_H
#define CLEARMTA_REPLY_MIME_H

#include <stdbool.h>
#include <stddef.h>

#define REPLY_MIME_DEPTH_MAX 8     /* nested multiparts/messages followed; deeper is skipped */
#define REPLY_MIME_PARTS_MAX 256   /* parts reported per message; a bounce has a handful */
#define REPLY_MIME_TYPE_MAX 64     /* "multipart/report" and the longest real types fit */

/* One leaf part (or the header block of a returned message) as the walker sees it. */
struct reply_mime_part {
    char type[REPLY_MIME_TYPE_MAX]; /* lowercase "text/plain"; "text/plain" when absent */
    const char *headers;            /* the part's raw header block (into the input) */
    size_t headers_len;
    const char *body;               /* decoded body; text/ and message/ parts in UTF-8 */
    size_t body_len;                /* (into the arena, or the input when nothing changed) */
    unsigned depth;                 /* 0 for the top-level message */
    bool in_returned;               /* inside a message/rfc822 or text/rfc822-headers part */
    bool returned_headers;          /* the header block of a returned message: body empty */
};

/* Called for every leaf part in order; ctx is the caller's. */
typedef void reply_mime_part_fn(void *ctx, const struct reply_mime_part *part);

/* Walks msg[0..len), calling fn for each leaf part. Decoded bodies are written into
 * arena[0..cap); when it is full, later bodies are cut (never overrun). Allocates nothing;
 * LF or CRLF line ends. Returns the number of parts reported. */
size_t reply_mime_walk(const char *msg, size_t len, char *arena, size_t cap,
                       reply_mime_part_fn *fn, void *ctx);

/* The first header field `name` (case-insensitive, without ':') of the header block, unfolded,
 * RFC 2047 encoded words decoded to UTF-8, white space trimmed, into out (cap bytes,
 * NUL-terminated, cut to fit). Returns false when the field is absent. */
bool reply_mime_header(const char *headers, size_t len, const char *name, char *out, size_t cap);

/* The value of parameter `name` of a structured field value ("multipart/report;
 * boundary=\"x\""), unquoted, into out. False when absent. */
bool reply_mime_param(const char *value, const char *name, char *out, size_t cap);

/* Length of the header block at msg (up to, not including, the empty line); *body_off gets
 * where the body starts (len when the message has no body). */
size_t reply_mime_header_end(const char *msg, size_t len, size_t *body_off);

/* Decodes RFC 2047 encoded words of s[0..len) into out (UTF-8), copying other bytes; returns
 * the length written (NUL-terminated, cut to cap - 1). */
size_t reply_mime_decode_words(const char *s, size_t len, char *out, size_t cap);

#endif
