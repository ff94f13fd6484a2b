/* base/hex.c — hex digit values (see hex.h). Written out rather than strtol'd: no locale, no
 * sign or "0x" prefix to accept by accident, one character at a time. */
#include "base/hex.h"

int base_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}
