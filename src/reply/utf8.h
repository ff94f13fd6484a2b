/* reply/utf8.h — well-formed UTF-8 (RFC 3629 §4): the one decoder every parser and writer of
 * clearmta uses (addresses, SASL, JSON output, DSN text). In reply/, the bottom module, so that
 * every other module may include it. */
#ifndef CLEARMTA_REPLY_UTF8_H
#define CLEARMTA_REPLY_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed UTF-8 sequence at s (1 for ASCII; no overlong forms, surrogates or
 * code points above U+10FFFF), its code point in *cp (may be NULL); 0 when the bytes there are
 * not one, or avail is 0. */
size_t reply_utf8_char(const unsigned char *s, size_t avail, uint32_t *cp);

/* True when all len bytes are well-formed UTF-8. */
bool reply_utf8_valid(const unsigned char *s, size_t len);

#endif
