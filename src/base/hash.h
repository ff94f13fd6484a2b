/* base/hash.h — FNV-1a (64-bit), the one string hash of the project's hash tables. Not
 * collision-resistant: tables whose keys a client chooses start from a random seed. */
#ifndef CLEARMTA_BASE_HASH_H
#define CLEARMTA_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The FNV-1a offset basis and prime (64-bit). A seeded table starts from
 * BASE_FNV1A_OFFSET ^ seed; a caller mixing in a whole word does (h ^ word) * BASE_FNV1A_PRIME. */
#define BASE_FNV1A_OFFSET 14695981039346656037ull
#define BASE_FNV1A_PRIME 1099511628211ull

/* Continues hash h (BASE_FNV1A_OFFSET to start) over len bytes of data. */
uint64_t base_fnv1a(uint64_t h, const void *data, size_t len);

/* Continues hash h over the NUL-terminated string s. */
uint64_t base_fnv1a_str(uint64_t h, const char *s);

/* As base_fnv1a_str with ASCII A-Z hashed as a-z, for names compared without case (domains);
 * other bytes, UTF-8 included, are hashed as they are. */
uint64_t base_fnv1a_lower(uint64_t h, const char *s);

#endif
