/* base/array.c — base_array_reserve (array.h). */
#include "base/array.h"

#include <stdint.h>
#include <stdlib.h>

enum base_err base_array_reserve(void **items, size_t *cap, size_t need, size_t size,
                                 size_t first)
{
    if (need <= *cap)
        return BASE_OK;
    size_t ncap = *cap > 0 ? *cap : (first > 0 ? first : 1);
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return BASE_ERR_NOMEM;
        ncap *= 2;
    }
    if (size != 0 && ncap > SIZE_MAX / size)
        return BASE_ERR_NOMEM;
    void *grown = realloc(*items, ncap * size);
    if (grown == NULL)
        return BASE_ERR_NOMEM;
    *items = grown;
    *cap = ncap;
    return BASE_OK;
}
