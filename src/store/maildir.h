/* store/maildir.h — writes messages into Maildirs (tmp/ → sync → new/), with unique names per the
 * Maildir convention "<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>". Used by one thread at a time. */
#ifndef CLEARMTA_STORE_MAILDIR_H
#define CLEARMTA_STORE_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest file name we make: the escaped hostname (4 bytes per byte at worst) and the numbers. */
#define STORE_MAILDIR_NAME_MAX 1200

struct store_maildir {
    int root_fd;
    char *host;     /* hostname with '/' and ':' escaped as \057 and \072 */
    char *buf;      /* copy buffer */
    pid_t pid;
    uint64_t counter;
};

/* One message file being delivered. */
struct store_maildir_file {
    const char *user; /* borrowed from the caller */
    char name[STORE_MAILDIR_NAME_MAX];
    int fd;           /* open while in tmp/, -1 after publish or discard */
    int where;        /* private: 0 nowhere, 1 tmp/, 2 new/ */
};

/* The directory, under the root, of mailbox's Maildir++ folder: the mailbox itself for NULL
 * or "" (the inbox), "mailbox/.Junk" for ".Junk". False when it does not fit in cap. */
#define STORE_MAILDIR_DIR_MAX 512
bool store_maildir_target(const char *mailbox, const char *folder, char *out, size_t cap);

/* Opens (creating) the maildir root. Functions below return 0 or an errno value. */
int store_maildir_open(struct store_maildir *md, const char *root, const char *hostname);
void store_maildir_close(struct store_maildir *md);

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
