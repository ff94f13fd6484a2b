/* base/hex.h — hexadecimal digits, for the escapes that carry bytes as "HH": the queue file's
 * "\xHH" and DSN xtext's "+HH" (RFC 3461 §4). Mail-agnostic; includes no project module. */
#ifndef CLEARMTA_BASE_HEX_H
#define CLEARMTA_BASE_HEX_H

/* The value 0..15 of the hex digit c, upper or lower case; -1 when c is not one. Callers that
 * accept one case only check the case themselves. */
int base_hex_value(char c);

#endif
