/* store/queue_file.h — the queue file format: a versioned plain-text envelope header an
 * administrator can read, a blank line, then the message bytes exactly. Writer and parser (the
 * parser reads files from disk, so it treats every byte as hostile). */
#ifndef CLEARMTA_STORE_QUEUE_FILE_H
#define CLEARMTA_STORE_QUEUE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/queue.h"

/* A queue file (version 1), one "key value" line each; values never hold a raw byte below 0x21,
 * 0x7F or '\', which are written as "\xHH":
 *
 *   clearmta-queue 1
 *   id 0190A1B2C3D4E5F6
 *   arrival 1717000000
 *   size 000000002048                  message bytes after the header (fixed width)
 *   check 9E3779B97F4A7C15             store_qf_hash of the message bytes (fixed width)
 *   sender <alice@example.test>        <> for the null sender
 *   envid QQ314159                     optional, also: ret full|hdrs,
 *   body 8bitmime                      body 7bit|8bitmime|binarymime, smtputf8 yes,
 *   client 192.0.2.1                   client, helo, auth
 *   folder .Junk                       optional: local deliveries go to this Maildir++ folder
 *   auth-results mx.example; spf=pass …  optional: Authentication-Results found on receipt
 *   rcpt pending  <bob@example.test> local=bob notify=success,failure orcpt=rfc822;bob@example.test
 *   rcpt sent     <carol@example.test> local=carol
 *   rcpt pending  <dave@remote.example>
 *   (blank line, then the message)
 *
 * The recipient state is a fixed-width field (STORE_QF_STATE_WIDTH bytes, padded with spaces)
 * so that a delivery agent records an outcome durably by overwriting it in place.
 *
 * "size" and "check" are the commit marker: written as zeros first, overwritten together
 * (store_qf_seal) after the last message byte and before the file's one sync. A file whose
 * size or check does not match its bytes never finished that sync, so it was never
 * acknowledged (store_qf_verify). Files without a check line (older writers, which synced
 * before naming the file in queue/) are trusted on their size alone. */

#define STORE_ID_LEN 16
#define STORE_QF_VERSION 1
#define STORE_QF_STATE_WIDTH 8
/* Longest value (decoded) of any one field: far above any SMTP limit (paths 256, ORCPT 500),
 * low enough that a hostile file cannot make us allocate much per field. */
#define STORE_QF_FIELD_MAX 4096
/* Longest header: LIMIT_RECIPIENTS_MAX recipients with long escaped ORCPTs fit. */
#define STORE_QF_HEADER_MAX (64u * 1024 * 1024)

enum store_rcpt_state { STORE_RCPT_PENDING, STORE_RCPT_SENT, STORE_RCPT_BOUNCED,
                        STORE_RCPT_DEFERRED };

/* A parsed header. env's strings and rcpts point into storage owned by the struct. */
struct store_qf {
    char id[STORE_ID_LEN + 1];
    uint64_t size;              /* message bytes after the header */
    size_t header_len;          /* offset of the message bytes in the file */
    size_t size_off;            /* offset of the fixed-width size digits */
    bool has_check;             /* a check line was present */
    uint64_t check;             /* its value */
    struct store_envelope env;
    enum store_rcpt_state *state; /* per recipient */
    uint64_t *state_off;          /* per recipient: file offset of its state field */
    struct store_rcpt *rcpts_;    /* storage behind env.rcpts */
    char *strings_;               /* storage behind the strings */
};

/* STORE_OK when env can be stored, else STORE_ERR_INVALID (see struct store_envelope, plus: 1 to
 * LIMIT_RECIPIENTS_MAX recipients, valid ret/body/notify, no field over STORE_QF_FIELD_MAX). */
enum store_err store_qf_check_envelope(const struct store_envelope *env);

/* True for a Maildir++ folder name a queue file may carry: '.' then 1 to 64 letters, digits,
 * '_' or '-' (one level, no path). */
bool store_qf_folder_ok(const char *s);

/* True for a well-formed queue id (STORE_ID_LEN characters [0-9A-F]) of length n. */
bool store_qf_valid_id(const char *s, size_t n);

/* Writes the header for env and id into a malloc'd buffer (*out, *len; the caller frees).
 * *size_off is the offset of the size digits, to patch with store_qf_size_digits() once the
 * message length is known. Errors: INVALID, NOMEM. */
enum store_err store_qf_format(const struct store_envelope *env, const char *id, char **out,
                               size_t *len, size_t *size_off);

/* The fixed-width size field for size, STORE_QF_SIZE_DIGITS characters (no NUL). */
#define STORE_QF_SIZE_DIGITS 12
void store_qf_size_digits(uint64_t size, char out[STORE_QF_SIZE_DIGITS]);

/* The commit marker: size digits, "\ncheck ", check digits; written at size_off. */
#define STORE_QF_CHECK_DIGITS 16
#define STORE_QF_SEAL_LEN (STORE_QF_SIZE_DIGITS + 7 + STORE_QF_CHECK_DIGITS)
void store_qf_seal(uint64_t size, uint64_t check, char out[STORE_QF_SEAL_LEN]);

/* A streaming 64-bit hash of the message bytes, for torn-write detection (not an adversarial
 * MAC): 8-byte words mixed by multiply and xor-shift, each step a bijection of the state, so
 * one differing word always changes the result; the length is mixed in at the end. */
struct store_qf_hash {
    uint64_t h, len;
    unsigned char carry[8];
    size_t n_carry;
};
void store_qf_hash_init(struct store_qf_hash *hs);
void store_qf_hash_update(struct store_qf_hash *hs, const void *p, size_t n);
uint64_t store_qf_hash_final(const struct store_qf_hash *hs);

/* Finds the end of the header (the blank line) in p[0..n): true and *header_len (through the
 * blank line) when found. */
bool store_qf_header_end(const char *p, size_t n, size_t *header_len);

/* Parses p[0..n), which must be exactly one header (as found by store_qf_header_end). On
 * STORE_OK the caller frees out with store_qf_free(); on error out needs no freeing.
 * Errors: CORRUPT, NOMEM. */
enum store_err store_qf_parse(const char *p, size_t n, struct store_qf *out);

/* Reads and parses the header of the queue file open on fd and checks that the file holds
 * exactly header + size bytes. Errors: CORRUPT, IO, NOMEM. */
enum store_err store_qf_read(int fd, struct store_qf *out);

void store_qf_free(struct store_qf *qf);

/* What recovery finds in a queue file. */
enum store_qf_state { STORE_QF_COMPLETE, STORE_QF_UNSEALED, STORE_QF_UNREADABLE };

/* Classifies the queue file open on fd: COMPLETE (header parses, size and check match the
 * bytes), UNSEALED (its commit never completed, so it was never acknowledged: the header is
 * not whole — the file ends, or holds a NUL byte, before the blank line — or it parses but the
 * size or check does not match), UNREADABLE (a whole header that does not parse; left for an
 * administrator). Errors (IO, NOMEM) in *err with UNREADABLE. The argument is at the
 * function. */
enum store_qf_state store_qf_verify(int fd, enum store_err *err);

/* "pending", "sent", "bounced", "deferred". */
const char *store_rcpt_state_name(enum store_rcpt_state st);

/* Overwrites the state field at state_off (from store_qf) in the file open on fd. Not synced:
 * the caller batches the syncs. Errors: NOSPACE, IO. */
enum store_err store_qf_set_state(int fd, uint64_t state_off, enum store_rcpt_state st);

#endif
