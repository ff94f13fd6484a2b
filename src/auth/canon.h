/* auth/canon.h — DKIM "relaxed" canonicalisation of header fields and of the body, and the
 * split of a message into its header fields. Sans-I/O: bytes in, bytes out. RFC 6376 §3.4. */
#ifndef CLEARMTA_AUTH_CANON_H
#define CLEARMTA_AUTH_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Relaxed form of one header field (RFC 6376 §3.4.2): lower-case name, unfolded, runs of
 * whitespace as one space, none around the colon or at the end, then CRLF (crlf true) or
 * nothing. field is "Name: value" as it stands in the message, folds and final CRLF included or
 * not. The result is never longer than len + 2, so out needs cap >= len + 3 (NUL added).
 * Returns its length, or 0 when field has no colon or out is too small. */
size_t auth_canon_header(const char *field, size_t len, bool crlf, char *out, size_t cap);

/* Relaxed body canonicaliser (RFC 6376 §3.4.4), fed the body in pieces of any size: whitespace
 * runs become one space, whitespace at line ends and empty lines at the end go. Lines end at
 * CRLF only; a bare CR or LF is an ordinary octet. out receives the canonical bytes. */
struct auth_canon_body {
    void (*out)(void *ctx, const char *p, size_t n);
    void *ctx;
    uint64_t blank_lines; /* empty lines held back: they count only if content follows */
    bool ws;              /* whitespace held back within the line */
    bool content;         /* the line has non-whitespace octets */
    bool cr;              /* the last octet was a CR, its LF may follow */
    bool simple;          /* "simple" (§3.4.3): whitespace kept, an empty body is one CRLF */
    bool any;             /* something was written (simple: an empty body still gets CRLF) */
};
void auth_canon_body_init(struct auth_canon_body *b, void (*out)(void *, const char *, size_t),
                          void *ctx);
/* The "simple" body algorithm instead: only empty lines at the end go. */
void auth_canon_body_init_simple(struct auth_canon_body *b,
                                 void (*out)(void *, const char *, size_t), void *ctx);
void auth_canon_body_feed(struct auth_canon_body *b, const char *p, size_t n);
void auth_canon_body_finish(struct auth_canon_body *b);

/* One header field of a message: where it starts and its length, final CRLF included. */
struct auth_field {
    const char *p;
    size_t len;
    size_t name_len; /* up to the colon, trailing whitespace excluded */
};

/* Splits the header of msg into fields (a line starting with space or tab continues the one
 * before). Lines end at CRLF or LF. Up to cap fields go to fields; *n gets how many there
 * are (may exceed cap); *body the offset of the body (after the empty line, or len when the
 * message has none). A line without a colon is kept as a field with name_len 0. */
void auth_fields_split(const char *msg, size_t len, struct auth_field *fields, size_t cap,
                       size_t *n, size_t *body);

/* The header field at *pos (0 for the first) into f, and *pos past it; false at the end of
 * the header, *pos then the offset of the body (as auth_fields_split). Reads msg in place: no
 * limit on how many fields there are or how long one is. */
bool auth_field_next(const char *msg, size_t len, size_t *pos, struct auth_field *f);

/* True when field's name is name (any case). */
bool auth_field_is(const struct auth_field *f, const char *name);

#endif
