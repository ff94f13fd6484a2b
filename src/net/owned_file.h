/* net/owned_file.h — whether a file root opens before it drops its privileges, by a name in a
 * directory others may write, is the file it was meant to be: the name was opened without
 * following a link, and the file behind it must be a regular file with that one name, owned by
 * root or by the server's user (a hard link or a stranger's file is someone else's choice). */
#ifndef CLEARMTA_NET_OWNED_FILE_H
#define CLEARMTA_NET_OWNED_FILE_H

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

/* True when st belongs to root or to owner. */
bool net_owned_by(const struct stat *st, uid_t owner);

/* NULL when st is a regular file with one name that net_owned_by(st, owner); else the reason
 * as a phrase ("not a regular file", …). */
const char *net_owned_file_problem(const struct stat *st, uid_t owner);

#endif
