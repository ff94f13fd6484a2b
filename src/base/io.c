/* base/io.c — base_write_all (see io.h). */
#include "base/io.h"

#include <errno.h>
#include <unistd.h>

enum base_err base_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue; /* a signal arrived before anything was written */
        if (w <= 0)
            return BASE_ERR_IO;
        p += w;
        len -= (size_t)w;
    }
    return BASE_OK;
}
