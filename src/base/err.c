/* base/err.c — texts of enum base_err: a switch over the X-macro list, so -Wswitch names any
 * value left out. */
#include "base/err.h"

const char *base_strerror(enum base_err err)
{
    switch (err) {
#define BASE_ERR_CASE(name, text) \
    case name:                    \
        return text;
        BASE_ERRORS(BASE_ERR_CASE)
#undef BASE_ERR_CASE
    }
    return "unknown base error";
}
