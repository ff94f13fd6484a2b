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

#include "limits_mta.h"
#include "store/queue.h"

#define STORE_MAILDROP_DIR "maildrop"
#define STORE_MAILDROP_NAME_CAP 40 /* "D" + 32 hex + NUL, with room */
/* Room for an envelope of LIMIT_RECIPIENTS_MAX recipients on top of the message: a maildrop
 * file is at most max_message_size + this many bytes. */
#define STORE_MAILDROP_ENVELOPE_MAX ((size_t)LIMIT_RECIPIENTS_MAX * (LIMIT_PATH + 5) + 64)

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
 * its "D" name, the directory fsynced. Nothing is followed through a symbolic link: queue_dir
 * is opened O_NOFOLLOW, the maildrop relative to it; a missing maildrop is made (01733, given
 * to queue_dir's owner) through its descriptor only, and only when the directory opened is
 * the one just made (so a root caller never changes a directory someone else put there). name
 * gets the file name. STORE_ERR_INVALID for an address that store_maildrop_parse would refuse;
 * STORE_ERR_IO/NOSPACE with a line in err otherwise, and no file left behind. */
enum store_err store_maildrop_write(const char *queue_dir, const char *sender,
                                    const char *const *rcpts, size_t n_rcpts, const char *msg,
                                    size_t len, char *name, size_t namecap, char *err,
                                    size_t errlen);

/* Makes <queue_dir>/maildrop when missing, as store_maildrop_write does; the server calls it
 * at start, so that no local user's sendmail has to. False with a line in err. */
bool store_maildrop_make(const char *queue_dir, char *err, size_t errlen);

/* Opens <queue_dir>/maildrop for reading (O_DIRECTORY, neither it nor queue_dir followed
 * through a symbolic link); -1 (errno set) when it does not exist or cannot be opened. */
int store_maildrop_open_dir(const char *queue_dir);

/* Reads and parses the file name in dir_fd: a regular file of one link, not followed through
 * a symbolic link, at most max_bytes. The first line is checked before the rest is read, and
 * never more than the file's size at open (at most max_bytes) is read; *bytes_read (may be
 * NULL) says how many bytes it cost. STORE_ERR_CORRUPT when it is not a maildrop file (a link,
 * a FIFO, a socket, a directory, unreadable, not in the format); STORE_ERR_INVALID when it is
 * too large; STORE_ERR_IO when it cannot be read (gone, an I/O error). */
enum store_err store_maildrop_read(int dir_fd, const char *name, size_t max_bytes,
                                   struct store_maildrop_msg *m, size_t *bytes_read);

/* Takes the file name in dir_fd out of the pickup's way for good: renamed to "bad-" + name
 * for the administrator, never over an existing entry; when that name is taken (its owner put
 * something there to keep the file in the maildrop) the file is removed instead, as is a
 * directory (when empty). kept gets the new name, or "" when removed. False (errno set) when
 * neither could be done. */
bool store_maildrop_set_aside(int dir_fd, const char *name, char *kept, size_t keptcap);

/* True for the name of a complete maildrop file. */
bool store_maildrop_is_name(const char *name);

void store_maildrop_msg_free(struct store_maildrop_msg *m);

#endif
