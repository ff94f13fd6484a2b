/* policy/users.h — the AUTH users file: login names, crypt(3) password hashes and the envelope
 * senders each user owns. RFC 4954 (what AUTH verifies), RFC 6409 §4.2 and §6.1 (submission
 * sender checks). */
#ifndef CLEARMTA_POLICY_USERS_H
#define CLEARMTA_POLICY_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/config.h"

/* A login name is at most this many bytes (RFC 4616 asks servers to accept 255). */
#define POLICY_USER_NAME_MAX 255u

struct policy_users;

enum policy_auth_result {
    POLICY_AUTH_OK,      /* 235 2.7.0 */
    POLICY_AUTH_BAD,     /* 535 5.7.8: unknown user or wrong password, never told apart */
    POLICY_AUTH_TEMPFAIL /* 454 4.7.0: crypt failed (memory, unsupported method) or overload */
};

/* Called once per problem found while loading: line is 1-based; message is one line, never
 * holds a password hash, valid during the call only. */
typedef void policy_users_report_fn(void *ctx, unsigned line, const char *message);

/* Parses a users file held in memory (data need not be NUL-terminated). Lines:
 *     USER:HASH
 *     USER:HASH:ADDRESS[,ADDRESS...]
 * '#' as the first non-blank character makes a comment; blank lines are skipped; spaces and
 * tabs around a line are ignored, none are allowed inside it. USER: 1-255 ASCII letters,
 * digits and . _ - + @ (with '@', a mailbox: one '@', text on both sides), compared without
 * regard to case. HASH: a crypt(3) string of kind $y$ (yescrypt), $6$ (SHA-512), $5$ (SHA-256)
 * or $2b$ (bcrypt), complete (salt and digest). ADDRESS: local@domain, the envelope senders
 * the user owns. A user listed twice is a problem. Lines longer than POLICY_CONFIG_LINE_MAX
 * or holding control characters are problems.
 * Each problem goes to report (may be NULL) and its line is skipped. Returns the number of
 * problems. *out receives the table of the good lines (free with policy_users_free), or NULL
 * when memory ran out (then counted as a problem too). */
size_t policy_users_load_buffer(const char *data, size_t len, policy_users_report_fn *report,
                                void *ctx, struct policy_users **out);

/* Safe on NULL. */
void policy_users_free(struct policy_users *u);

/* Number of users; 0 for NULL. */
size_t policy_users_count(const struct policy_users *u);

/* True when name (len bytes) is a valid USER for the file (see policy_users_load_buffer). */
bool policy_users_valid_name(const char *name, size_t len);

/* The stored (lower-case) form of a user's name, owned by u, or NULL when user is unknown. For
 * logs and for the session to remember who logged in. */
const char *policy_users_name(const struct policy_users *u, const char *user);

/* The stored crypt(3) hash of user, owned by u, or NULL when user is unknown. For the cache of
 * verifications (policy/authcache.h), which must miss once the hash changes; never logged. */
const char *policy_users_hash(const struct policy_users *u, const char *user);

/* Checks a password: crypt_rn(3) with the user's stored hash as setting, result compared in
 * constant time. An unknown user (or u NULL) still costs one crypt with a hash from the file,
 * so timing does not tell which users exist. A password longer than crypt accepts
 * (CRYPT_MAX_PASSPHRASE_SIZE - 1) is BAD. Thread-safe (u is read only); takes milliseconds by
 * design, so call it off the event loop (policy/authcheck.h). Never logs. */
enum policy_auth_result policy_users_verify(const struct policy_users *u, const char *user,
                                            const char *pass);

/* May the logged-in user use this envelope sender? local and domain as the client sent them
 * (struct smtp_path: quoted local parts allowed); local NULL is the null sender <>, which every
 * user may use (bounces and receipts from mail clients; RFC 6409 does not forbid it).
 * Comparison folds ASCII case in both parts and unquotes the local part, as recipient lookup
 * does. With addresses listed for the user, exactly those are owned; without, a USER with '@'
 * owns exactly that address, and one without owns USER@ any local domain of c (c may be NULL:
 * no local domain). An unknown user owns nothing but <>. */
bool policy_users_owns_sender(const struct policy_users *u, const struct policy_config *c,
                              const char *user, const char *local, const char *domain);

#endif
