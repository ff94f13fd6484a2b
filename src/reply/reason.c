/* reply/reason.c — names of the bounce reasons (Sisimai's vocabulary) listed in reason.h. */
#include "reply/reason.h"

#include <string.h>

static const char *const reason_names[] = {
#define X(name) #name,
    REPLY_REASONS(X)
#undef X
};
_Static_assert(sizeof reason_names / sizeof reason_names[0] == REASON__COUNT,
               "one name per reason");

const char *reply_reason_name(enum reply_reason r)
{
    if ((int)r < 0 || r >= REASON__COUNT)
        return NULL;
    return reason_names[r];
}

bool reply_reason_from_name(const char *name, enum reply_reason *out)
{
    if (name == NULL)
        return false;
    for (size_t i = 0; i < REASON__COUNT; i++) {
        if (strcmp(reason_names[i], name) == 0) {
            *out = (enum reply_reason)i;
            return true;
        }
    }
    return false;
}
