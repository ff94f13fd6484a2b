/* auth/ar_strip.h — removes the Authentication-Results header fields of an incoming message
 * that claim our own authserv-id: a receiver must not let a sender forge the results it is
 * about to add (RFC 8601 §5). Fields of other authserv-ids are kept. */
#ifndef CLEARMTA_AUTH_AR_STRIP_H
#define CLEARMTA_AUTH_AR_STRIP_H

#include <stddef.h>

/* The authserv-id of one Authentication-Results field value (the text after the colon, any
 * octets): comments and folding skipped, the id (a token, or the content of a quoted-string)
 * copied into out (NUL-terminated, cut at cap - 1); 0 when there is none, else its length. */
size_t auth_ar_authserv_id(const char *value, size_t len, char *out, size_t cap);

/* Removes, in place, from the header section of msg (len octets, CRLF or LF line ends) every
 * Authentication-Results field whose authserv-id equals authserv_id (case-insensitive); the
 * body is untouched. Returns the new length; *removed (may be NULL) counts the fields. */
size_t auth_ar_strip(char *msg, size_t len, const char *authserv_id, size_t *removed);

#endif
