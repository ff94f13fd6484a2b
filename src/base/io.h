/* base/io.h — whole writes to a blocking descriptor (files, pipes, a terminal), for the code
 * that must not leave half a file or half a line behind. */
#ifndef CLEARMTA_BASE_IO_H
#define CLEARMTA_BASE_IO_H

#include <stddef.h>

#include "base/err.h"

/* Writes all len bytes of buf to fd, going on after partial writes and EINTR. BASE_OK, or
 * BASE_ERR_IO when a write fails or writes nothing (some bytes may then be written). The errno
 * is not passed on: the caller names the file in its own error. */
enum base_err base_write_all(int fd, const void *buf, size_t len);

#endif
