/* store/maildrop.h — the maildrop: where local programs (clearmta sendmail) leave messages,
 * durably, for the server to pick up into its queue, whether or not it runs at that moment.
 *
 * <queue_dir>/maildrop/ (mode 01733, the server's) holds one file per message, named
 * "D" + 32 hex digits once complete ("t…" while being written). A file is:
 *   "clearmta-maildrop 1\n" "S <sender>\n" ("S <>\n" for the null sender)
 *   "R <recipient>\n" (1 .. LIMIT_RECIPIENTS_MAX) "\n" then the message, CRLF lines.
 * The submitting user is the file's owner, which the kernel vouches for. */
#ifndef CLEARMTA_STORE_MAILDROP_H
#define CLEARMTA_STORE_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "store/queue.h"

#define STORE_MAILDROP_DIR "maildrop"
#define STORE_MAILDROP_NAME_CAP 40 /* "D" + 32 hex + NUL, with room */

/* One parsed maildrop file; every pointer is into buf, which the struct owns. */
struct store_maildrop_msg {
    char *buf;
    const char *sender;   /* "" for <> */
    const char **rcpts;   /* owned array */
    size_t n_rcpts;
    const char *body;
    size_t body_len;
    uid_t uid;            /* the file's owner */
};

/* Parses a maildrop file held in buf (len bytes, modified in place: line ends become NULs).
 * False when it is not one (bad magic, a missing or repeated S line, no or too many R lines,
 * an address over LIMIT_PATH or with a space, control or angle character). On success m's
 * pointers point into buf; m->buf is left to the caller. Pure: the fuzz target. */
bool store_maildrop_parse(char *buf, size_t len, struct store_maildrop_msg *m);

/* Writes a message into <queue_dir>/maildrop durably: a "t" file written, fsynced, renamed to
 * its "D" name, the directory fsynced. The directory is made (01733) when missing. name gets
 * the file name. STORE_ERR_INVALID for an address that store_maildrop_parse would refuse;
 * STORE_ERR_IO/NOSPACE with a line in err otherwise, and no file left behind. */
enum store_err store_maildrop_write(const char *queue_dir, const char *sender,
                                    const char *const *rcpts, size_t n_rcpts, const char *msg,
                                    size_t len, char *name, size_t namecap, char *err,
                                    size_t errlen);

/* Opens <queue_dir>/maildrop (O_DIRECTORY); -1 when it does not exist or cannot be opened. */
int store_maildrop_open_dir(const char *queue_dir);

/* Reads and parses the file name in dir_fd: a regular file of one link, not followed through
 * a symbolic link, at most max_bytes. STORE_ERR_CORRUPT when it is not a maildrop file (a
 * link, a FIFO, unreadable, not in the format);
 * STORE_ERR_INVALID when it is too large; STORE_ERR_IO when it cannot be read. */
enum store_err store_maildrop_read(int dir_fd, const char *name, size_t max_bytes,
                                   struct store_maildrop_msg *m);

/* True for the name of a complete maildrop file. */
bool store_maildrop_is_name(const char *name);

void store_maildrop_msg_free(struct store_maildrop_msg *m);

#endif
