/* tests/unit/tmpdir.h — removing a test's temporary directory tree (queue, Maildirs, flags)
 * after the test, whatever it left there; reading a small file of it as text. */
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

/* The first 8 KiB of path as a string ("" when it cannot be read), in a buffer the next call
 * reuses. */
static inline const char *unit_file_text(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

#endif
