/* reply/reply.h — the reply table (codes.def) as C data, reply formatting and parsing of
 * replies received from peers. RFC 5321 §4.2, RFC 3463, RFC 2034. */
#ifndef CLEARMTA_REPLY_H
#define CLEARMTA_REPLY_H

#include <stdbool.h>
#include <stddef.h>

/* The replies clearmta sends, one enum value per REPLY row of codes.def. */
enum reply_id {
#define REPLY(id, code, enhanced, text, when) id,
#include "reply/codes.def"
    REPLY__COUNT
};

/* The delivery outcomes of the agent, one enum value per OUTCOME row of codes.def. */
enum reply_outcome {
#define OUTCOME(id, use, cls, subject, detail, when) id,
#include "reply/codes.def"
    OUTCOME__COUNT
};

/* What an outcome does to its recipient. */
enum reply_outcome_use {
    REPLY_USE_SENT,   /* delivered: 2.x.x */
    REPLY_USE_DEFER,  /* failed for now, tried again: 4.x.x */
    REPLY_USE_BOUNCE, /* failed for good: 5.x.x */
    REPLY_USE_EXPIRE  /* a transient failure given up at the end of the queue lifetime: 4.x.x */
};

/* What a reply code tells the sender to do. */
enum reply_class {
    REPLY_CLASS_SUCCESS,      /* 2xx: done */
    REPLY_CLASS_INTERMEDIATE, /* 3xx: send more input */
    REPLY_CLASS_TRANSIENT,    /* 4xx: failed now, retry later unchanged */
    REPLY_CLASS_PERMANENT,    /* 5xx: failed, change something before trying again */
    REPLY_CLASS_INVALID       /* not a reply code */
};

struct reply_basic {
    int code;
    const char *source; /* defining document, or "non-standard" */
    const char *reason; /* bounce reason name for a failure with this code */
    const char *title, *meaning, *cause, *action, *admin;
};

struct reply_enhanced {
    int subject, detail;
    const char *classes; /* class digits it is registered for, e.g. "45" */
    const char *title;   /* registered title */
    const char *source, *used_with, *reason;
    const char *meaning, *cause, *action, *admin;
};

struct reply_row {
    enum reply_id id;
    const char *name; /* "REPLY_OK" */
    int code;
    const char *enhanced; /* "" when the reply carries none */
    const char *text;     /* may hold one "{}" for the caller's detail */
    const char *when;
};

struct reply_outcome_row {
    enum reply_outcome id;
    const char *name; /* "OUTCOME_NO_CONNECTION" */
    enum reply_outcome_use use;
    int cls, subject, detail; /* the enhanced status code */
    const char *when;
};

/* The tables themselves, in codes.def order, for iteration (docs, tests). */
extern const struct reply_basic reply_basic_table[];
extern const size_t reply_basic_count;
extern const struct reply_enhanced reply_enhanced_table[];
extern const size_t reply_enhanced_count;
extern const struct reply_row reply_row_table[];
extern const struct reply_outcome_row reply_outcome_table[];

/* Look-ups; NULL when absent. Enhanced codes are found by subject and detail: the class digit
 * is checked by the caller against ->classes. */
const struct reply_basic *reply_basic_find(int code);
const struct reply_enhanced *reply_enhanced_find(int subject, int detail);
const struct reply_row *reply_row_get(enum reply_id id);
const struct reply_outcome_row *reply_outcome_get(enum reply_outcome id);

/* Class of a basic code by its first digit; REPLY_CLASS_INVALID outside 200..599. */
enum reply_class reply_class_of(int code);
const char *reply_class_name(enum reply_class cls); /* "success", "transient", … */

/* Plain-words meaning of each digit, for codes not in the table: first digit 2..5 (done, more
 * input needed, transient failure, permanent failure), second digit 0..5 (syntax, information,
 * connections, -, -, mail system), enhanced subject 0..7 (other, address, mailbox, mail system,
 * network/routing, protocol, content, security/policy). NULL for digits with no meaning. */
const char *reply_first_digit_meaning(int digit);
const char *reply_second_digit_meaning(int digit);
const char *reply_subject_meaning(int subject);

/* An enhanced status code X.Y.Z; cls == 0 means "none". */
struct reply_status {
    int cls, subject, detail;
};

/* The enhanced status code of an outcome row; {0} for an id out of range. */
struct reply_status reply_outcome_status(enum reply_outcome id);
/* The outcome of a next hop's reply of class cls (2, 4, 5) that carried no enhanced code:
 * OUTCOME_REMOTE_ACCEPTED, _TRANSIENT or _PERMANENT (RFC 3463 §3: X.0.0). */
enum reply_outcome reply_outcome_of_class(int cls);

/* Parses "X.Y.Z" at the start of s (len bytes): class 2, 4 or 5, subject and detail 0..999
 * without leading zeros beyond one digit, followed by end, space or tab. Returns true and the
 * bytes used; false leaves *st untouched. */
bool reply_status_parse(const char *s, size_t len, struct reply_status *st, size_t *used);

/* Formatting flags. */
#define REPLY_FMT_ENHANCED 0x1u    /* prefix each line with the enhanced code (RFC 2034) */
#define REPLY_FMT_SOFT_BOUNCE 0x2u /* turn 5xx into 4xx and 5.X.Y into 4.X.Y (testing a config) */

/* Appends reply `id` to out as CRLF-terminated line(s): the row's text with "{}" replaced by
 * detail (NULL or "" leaves "{}" out), then each of the n_more extra lines (EHLO keywords,
 * HELP text) as continuation lines "code-…" with the last line "code …". Control characters
 * in detail or extra lines are replaced by '?', so a caller cannot inject a line break.
 * Returns the bytes written, or 0 if cap is too small (then nothing is written). */
size_t reply_format(char *out, size_t cap, enum reply_id id, const char *detail,
                    const char *const *more, size_t n_more, unsigned flags);

/* Parsing replies received from a peer (client side, explain). */
#define REPLY_LINE_MAX 512   /* RFC 5321 §4.5.3.1.5: reply line including CRLF */
#define REPLY_LINES_MAX 100  /* a peer sending more lines is broken or hostile */
#define REPLY_TEXT_MAX 4096  /* joined text kept; longer text is truncated */

#define REPLY_PARSE_ERRORS(X)                                               \
    X(REPLY_PARSE_OK, "ok")                                                 \
    X(REPLY_PARSE_INCOMPLETE, "incomplete reply: more bytes needed")        \
    X(REPLY_PARSE_BAD_CODE, "reply does not start with a 3-digit code 2xx-5xx") \
    X(REPLY_PARSE_BAD_SEPARATOR, "code not followed by space, '-' or end of line") \
    X(REPLY_PARSE_CODE_MISMATCH, "continuation line has a different code")  \
    X(REPLY_PARSE_LINE_TOO_LONG, "reply line longer than 512 octets")       \
    X(REPLY_PARSE_TOO_MANY_LINES, "multi-line reply has too many lines")    \
    X(REPLY_PARSE_BAD_BYTE, "reply holds a NUL or bare CR")

enum reply_parse_err {
#define X(name, text) name,
    REPLY_PARSE_ERRORS(X)
#undef X
};
const char *reply_parse_strerror(enum reply_parse_err err);

struct reply_parsed {
    int code;
    struct reply_status status; /* from the first line; cls 0 when absent */
    size_t lines;
    char text[REPLY_TEXT_MAX]; /* lines' texts without code/status, joined by '\n', NUL-ended */
    size_t text_len;
    bool truncated;  /* text was cut at REPLY_TEXT_MAX */
    bool bare_lf;    /* some line ended in LF without CR (accepted, noted) */
    bool eight_bit;  /* text held bytes >= 0x80 (accepted, noted) */
};

/* Parses one complete reply (single- or multi-line) from buf. On REPLY_PARSE_OK *consumed is
 * the bytes it took. REPLY_PARSE_INCOMPLETE: call again with more bytes. Other errors: the
 * peer is broken; *consumed is the bytes up to and including the offending line. */
enum reply_parse_err reply_parse(const char *buf, size_t len, struct reply_parsed *out,
                                 size_t *consumed);

#endif
