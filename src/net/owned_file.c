/* net/owned_file.c — the checks of a file root opened in a directory others may write. */
#include <stddef.h>

#include "net/owned_file.h"

bool net_owned_by(const struct stat *st, uid_t owner)
{
    return st->st_uid == 0 || st->st_uid == owner;
}

const char *net_owned_file_problem(const struct stat *st, uid_t owner)
{
    if (!S_ISREG(st->st_mode))
        return "not a regular file";
    if (st->st_nlink != 1)
        return "it has other names (hard links)";
    if (!net_owned_by(st, owner))
        return "owned by another user (it must belong to root or the server's user)";
    return NULL;
}
