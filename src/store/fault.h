/* store/fault.h — the store's syscalls, through small wrappers that a test build
 * (-DCLEARMTA_TESTING) can make fail on demand, as SQLite's fault tests do. */
#ifndef CLEARMTA_STORE_FAULT_H
#define CLEARMTA_STORE_FAULT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/queue.h"

/* The points where a fault can be injected; the name is what CLEARMTA_FAULT uses. */
#define STORE_FAULT_OPS(X)                       \
    X(STORE_FAULT_WRITE, "write")                \
    X(STORE_FAULT_SYNC, "sync")                  \
    X(STORE_FAULT_RENAME, "rename")              \
    X(STORE_FAULT_MAILDIR_WRITE, "maildir_write") \
    X(STORE_FAULT_MAILDIR_SYNC, "maildir_sync")  \
    X(STORE_FAULT_MAILDIR_RENAME, "maildir_rename") \
    X(STORE_FAULT_QUEUE_UPDATE, "queue_update")  \
    X(STORE_FAULT_LINK, "link")

enum store_fault_op {
#define STORE_FAULT_ENUM(name, text) name,
    STORE_FAULT_OPS(STORE_FAULT_ENUM)
#undef STORE_FAULT_ENUM
    STORE_FAULT__COUNT
};

#ifdef CLEARMTA_TESTING
/* Sets the faults, replacing any earlier ones (and the CLEARMTA_FAULT environment variable, read
 * at the first check otherwise). spec: comma-separated "op=ERRNO" or "op=ERRNO@N" (only the Nth
 * call of op from now fails), ERRNO one of ENOSPC EDQUOT EIO EROFS EACCES ENOMEM; NULL or ""
 * clears. Returns 0, or -1 (and no faults set) for a malformed spec. */
int store_fault_set(const char *spec);
/* The errno to inject for this call of op, or 0. */
int store_fault_hit(enum store_fault_op op);
#else
static inline int store_fault_hit(enum store_fault_op op) { (void)op; return 0; }
#endif

/* Each returns 0 or an errno value (never sets errno for the caller to read). */
int store_io_write_all(enum store_fault_op op, int fd, const void *p, size_t n);
/* a[0..an) then b[0..bn) at the file position, in one writev when the kernel takes it all. */
int store_io_write2_all(enum store_fault_op op, int fd, const void *a, size_t an,
                        const void *b, size_t bn);
int store_io_pwrite_all(enum store_fault_op op, int fd, const void *p, size_t n, uint64_t off);
int store_io_fdatasync(enum store_fault_op op, int fd);
int store_io_fsync(enum store_fault_op op, int fd);
int store_io_syncfs(enum store_fault_op op, int fd);
int store_io_renameat(enum store_fault_op op, int olddir, const char *oldname, int newdir,
                      const char *newname);
int store_io_linkat(enum store_fault_op op, int olddir, const char *oldname, int newdir,
                    const char *newname);
/* Reads exactly n bytes at off; ENODATA when the file ends first. */
int store_io_pread_all(int fd, void *p, size_t n, uint64_t off);
/* mkdir -p with mode for the directories it creates. */
int store_io_mkdirs(const char *path, mode_t mode);

/* errno → store error: ENOSPC/EDQUOT → NOSPACE, ENOMEM → NOMEM, others → IO. */
enum store_err store_err_from_errno(int e);

#endif
