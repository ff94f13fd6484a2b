/* policy/file_mode.c — refuses a secret or trusted file whose mode opens it to others, with the
 * chmod that closes it. */
#include <stdio.h>
#include <sys/stat.h>

#include "policy/file_mode.h"

bool policy_file_mode_ok(const char *path, mode_t mode, mode_t forbidden, char *why, size_t cap)
{
    if ((mode & forbidden) == 0)
        return true;
    bool secret = (forbidden & S_IROTH) != 0;
    snprintf(why, cap, "open to others (mode %04o: %s); run: chmod %s %s",
             (unsigned)(mode & 07777),
             secret ? "group or others may write it, or others may read it"
                    : "group or others may write it",
             secret ? "600" : "go-w", path);
    return false;
}
