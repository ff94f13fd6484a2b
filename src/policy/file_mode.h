/* policy/file_mode.h — the one rule for the permissions of files that hold secrets (AUTH
 * users' hashes, relay-host and console passwords) or that name what root opens (the config
 * file): who besides the owner may write or read them. */
#ifndef CLEARMTA_POLICY_FILE_MODE_H
#define CLEARMTA_POLICY_FILE_MODE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A secret: group and others may not write it, others may not read it (0600 or 0640). */
#define POLICY_MODE_SECRET ((mode_t)0027)
/* Trusted, not secret: group and others may not write it (0644 at most). */
#define POLICY_MODE_TRUSTED ((mode_t)0022)

/* True when mode has none of the forbidden bits; else false with "open to others (mode 0644:
 * …); run: chmod 600 PATH" (the reason and the command to run) in why. */
bool policy_file_mode_ok(const char *path, mode_t mode, mode_t forbidden, char *why,
                         size_t cap);

#endif
