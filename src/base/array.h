/* base/array.h — growing an array by doubling, with the overflow checks every caller would
 * otherwise write again. */
#ifndef CLEARMTA_BASE_ARRAY_H
#define CLEARMTA_BASE_ARRAY_H

#include <stddef.h>

#include "base/err.h"

/* Makes room for at least `need` elements of `size` bytes in *items (capacity *cap elements),
 * doubling the capacity from `first` (>= 1). BASE_OK; BASE_ERR_NOMEM when memory runs out or
 * the size would overflow, with *items and *cap unchanged (still the caller's to free). */
enum base_err base_array_reserve(void **items, size_t *cap, size_t need, size_t size,
                                 size_t first);

#endif
