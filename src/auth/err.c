/* auth/err.c — texts of the auth module's errors, from the list in auth/err.h. */
#include "auth/err.h"

const char *auth_strerror(enum auth_err err)
{
    switch (err) {
#define AUTH_ERR_TEXT(name, text) \
    case name:                    \
        return text;
        AUTH_ERRORS(AUTH_ERR_TEXT)
#undef AUTH_ERR_TEXT
    }
    return "unknown auth error";
}
