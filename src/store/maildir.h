/* store/maildir.h — writes messages into Maildirs (tmp/ → sync → new/), with unique names per the
 * Maildir convention "<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>". Used by one thread at a time. */
#ifndef CLEARMTA_STORE_MAILDIR_H
#define CLEARMTA_STORE_MAILDIR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Our files in tmp/ start with this, so that startup can tell a crash's leftovers from the
 * files of other programs delivering into the same Maildirs. */
#define STORE_MAILDIR_TMP_PREFIX "clearmta-"
/* The Maildir convention: a tmp/ file this old is abandoned, whoever wrote it. */
#define STORE_MAILDIR_TMP_STALE_SECONDS (36 * 3600)

/* Longest file name we make: the escaped hostname (4 bytes per byte at worst) and the numbers. */
#define STORE_MAILDIR_NAME_MAX 1200

struct store_maildir {
    int root_fd;
    char *host;     /* hostname with '/' and ':' escaped as \057 and \072 */
    char *buf;      /* copy buffer */
    pid_t pid;
    atomic_uint_fast64_t counter; /* store_maildir_unique may be called from several threads */
};

/* One message file being delivered. */
struct store_maildir_file {
    const char *user; /* borrowed from the caller */
    char name[STORE_MAILDIR_NAME_MAX];
    int fd;           /* open while in tmp/, -1 after publish or discard */
    int where;        /* private: 0 nowhere, 1 tmp/, 2 new/ */
};

/* The directory, under the root, of mailbox's Maildir++ folder: the mailbox itself for NULL
 * or "" (the inbox), "mailbox/.Junk" for ".Junk". False when it does not fit in cap. Every
 * writer of the store takes its target directory from here. */
#define STORE_MAILDIR_DIR_MAX 512
bool store_maildir_target(const char *mailbox, const char *folder, char *out, size_t cap);

/* Opens (creating) the maildir root. Functions below return 0 or an errno value. */
int store_maildir_open(struct store_maildir *md, const char *root, const char *hostname);
void store_maildir_close(struct store_maildir *md);

/* Creates <dir>/{tmp,new,cur} as needed (mode 0700); a new directory entry is made durable at
 * once (rare: the first delivery to a mailbox or folder). A folder "mailbox/.Junk" whose mailbox
 * is missing gets the mailbox's Maildir first (one level: mailbox names hold no '/'). */
int store_maildir_ensure(struct store_maildir *md, const char *dir);

/* "Return-Path: <sender>\r\n", the first line of every delivered file, into out (*len bytes);
 * false when it does not fit. The sender holds no control characters (queue_file checks). */
bool store_maildir_return_path(char *out, size_t cap, const char *sender, size_t *len);

/* A new unique name "<sec>.M<usec>P<pid>Q<n>.<host>" (no size part) into out. Thread-safe. */
int store_maildir_unique(struct store_maildir *md, char *out, size_t cap);

/* "<dir>/tmp/" STORE_MAILDIR_TMP_PREFIX "<name>": where our file name lives until published. */
bool store_maildir_tmp_path(char *out, size_t cap, const char *dir, const char *name);

/* At startup: removes our leftovers from every tmp/ under the root (each mailbox and its
 * Maildir++ folders): files of this host last written before `before` (CLOCK_REALTIME), and of any host older than 36
 * hours. Never other programs' files. *removed counts them. Returns 0 or an errno value. */
int store_maildir_clean_tmp(struct store_maildir *md, const struct timespec *before,
                            size_t *removed);

/* Creates <user>/tmp/<unique> (and the Maildir itself, mode 0700, when missing; for a
 * folder "mailbox/.Junk" the mailbox's Maildir too) holding prefix
 * then size bytes of src_fd from src_off. Not synced. On error nothing is left behind. */
int store_maildir_write(struct store_maildir *md, const char *user, const char *prefix,
                        size_t prefix_len, int src_fd, uint64_t src_off, uint64_t size,
                        struct store_maildir_file *f);
/* fdatasync of the file (syncfs mode syncs the filesystem of root_fd instead). */
int store_maildir_fdatasync(struct store_maildir_file *f);
/* Renames tmp/<name> to new/<name> and closes the file. */
int store_maildir_publish(struct store_maildir *md, struct store_maildir_file *f);
/* fsync of <user>/new, which makes published names durable. */
int store_maildir_sync_new(struct store_maildir *md, const char *user);
/* Removes the file from tmp/ or new/, wherever it is, and closes it. */
void store_maildir_discard(struct store_maildir *md, struct store_maildir_file *f);

#endif
