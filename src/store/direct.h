/* store/direct.h — write once for local mail: a message whose recipients are all local
 * mailboxes is written into one file instead of a queue file: an empty file pre-created in the
 * queue's pool/ when the Maildirs are on the queue's filesystem (so that the event loop never
 * waits for an inode), else a file created in the first mailbox's Maildir tmp/. At the group
 * commit (store/queue.c) the other recipients get hard links in their tmp/ (a synced copy when
 * their Maildir is on another filesystem), the batch's sync makes the data durable, each file is
 * renamed into new/ (the pool's straight from pool/: like tmp/, no reader looks there) and the
 * new/ entries are synced: all before the 250. A crash before leaves only pool/ files (removed
 * at open) and tmp/ files of ours, which startup removes too (store_maildir_clean_tmp). */
#ifndef CLEARMTA_STORE_DIRECT_H
#define CLEARMTA_STORE_DIRECT_H

#include <stdbool.h>
#include <stdint.h>

#include "store/maildir.h"
#include "store/queue.h"

struct store_direct;

/* Whether env may be written once: every recipient a local mailbox, none asking NOTIFY=SUCCESS
 * (its report comes from the queue), no two recipients in the same Maildir. */
bool store_direct_eligible(const struct store_envelope *env);

/* A message for env (copied) with a new unique name from md (whose root it uses), no file yet:
 * then store_direct_create or store_direct_adopt. Returns 0, EINVAL (env not storable), ENOMEM
 * or ENAMETOOLONG. */
int store_direct_begin(struct store_maildir *md, const struct store_envelope *env,
                       struct store_direct **out);

/* Creates the file in the tmp/ of the first recipient's Maildir; *fd is it, open read-write,
 * owned by the caller. Returns 0 or an errno value; ENOENT: that Maildir does not exist yet
 * (the queue path creates it). */
int store_direct_create(struct store_direct *d, int *fd);

/* The file is the empty one named name in dir_fd (the queue's pool/, on the Maildirs'
 * filesystem; both borrowed until the message is published or discarded). */
void store_direct_adopt(struct store_direct *d, int dir_fd, const char *name);

/* On the sync thread, before the batch's data sync: the file (fd) into the tmp/ of every
 * recipient after the first (creating a Maildir when missing), by hard link, or by a copy synced
 * at once on another filesystem. Returns 0 or the errno of the first failure (then call
 * store_direct_discard). */
int store_direct_link(struct store_direct *d, struct store_maildir *md, int fd);

/* After the data sync: renames every recipient's file (the first one's from the pool when
 * adopted, creating its Maildir when missing; the others' from tmp/) into new/ under its final
 * name, "<unique>,S=<size>". Returns 0 or an errno value. */
int store_direct_publish(struct store_direct *d, struct store_maildir *md, uint64_t size);

/* fsync of the new/ directories after publishing: of every recipient (all), or only of those
 * outside the root's filesystem (which a syncfs of the root does not cover). 0 or an errno. */
int store_direct_sync_new(struct store_direct *d, bool all);

/* Removes every file of the message, in tmp/ or new/ (a failed commit leaves nothing). */
void store_direct_discard(struct store_direct *d);

/* One "relay=local ... status=sent" line per recipient through log (NULL: none). */
void store_direct_report(const struct store_direct *d, const char *id,
                         void (*log)(void *ctx, const char *line), void *log_ctx);

/* The number of recipients (for the delivered counter). */
size_t store_direct_rcpts(const struct store_direct *d);

/* Frees d (its files stay where they are). NULL is fine. */
void store_direct_free(struct store_direct *d);

#endif
