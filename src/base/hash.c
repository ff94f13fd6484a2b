/* base/hash.c — FNV-1a over bytes, strings and ASCII-case-folded strings (see hash.h). */
#include "base/hash.h"

uint64_t base_fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * BASE_FNV1A_PRIME;
    return h;
}

uint64_t base_fnv1a_str(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        h = (h ^ *p) * BASE_FNV1A_PRIME;
    return h;
}

uint64_t base_fnv1a_lower(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        /* Only ASCII folds: a locale's tolower could fold a UTF-8 byte. */
        unsigned char c = (*p >= 'A' && *p <= 'Z') ? (unsigned char)(*p + ('a' - 'A')) : *p;
        h = (h ^ c) * BASE_FNV1A_PRIME;
    }
    return h;
}
