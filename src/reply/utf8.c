/* reply/utf8.c — the UTF-8 decoder of utf8.h: RFC 3629 §4's table of well-formed sequences,
 * checking the second octet's range so that overlong forms and surrogates never decode. */
#include "reply/utf8.h"

size_t reply_utf8_char(const unsigned char *s, size_t avail, uint32_t *cp)
{
    if (avail == 0)
        return 0;
    unsigned char b0 = s[0];
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second octet */
    size_t n;
    uint32_t value;
    if (b0 < 0x80) {
        n = 1;
        value = b0;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
        n = 2;
        value = b0 & 0x1Fu;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        n = 3;
        value = b0 & 0x0Fu;
        if (b0 == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        else if (b0 == 0xED)
            hi = 0x9F; /* surrogates U+D800..U+DFFF */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        n = 4;
        value = b0 & 0x07u;
        if (b0 == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        else if (b0 == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0; /* continuation octet, overlong C0/C1 lead, or F5..FF */
    }
    if (n > 1) {
        if (avail < n || s[1] < lo || s[1] > hi)
            return 0;
        for (size_t i = 1; i < n; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return 0;
            value = (value << 6) | (s[i] & 0x3Fu);
        }
    }
    if (cp != NULL)
        *cp = value;
    return n;
}

bool reply_utf8_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = reply_utf8_char(s + i, len - i, NULL);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}
