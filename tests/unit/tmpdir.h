/* tests/unit/tmpdir.h — removing a test's temporary directory tree (queue, Maildirs, flags)
 * after the test, whatever it left there. */
#ifndef CLEARMTA_UNIT_TMPDIR_H
#define CLEARMTA_UNIT_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static int unit_tmpdir_remove_entry(const char *path, const struct stat *st, int flag,
                                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes path and everything below it, without following symbolic links. */
static inline void unit_tmpdir_remove(const char *path)
{
    nftw(path, unit_tmpdir_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
