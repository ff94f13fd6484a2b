/* reply/explain.h — explains an SMTP reply, a basic or enhanced code, or a bounce/log line
 * holding one: class, retry advice, bounce reason (Sisimai vocabulary), meaning, cause, action.
 * RFC 5321 §4.2, RFC 3463, RFC 3464 (Diagnostic-Code), IANA SMTP Enhanced Status Codes. */
#ifndef CLEARMTA_REPLY_EXPLAIN_H
#define CLEARMTA_REPLY_EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "reply/reason.h"
#include "reply/reply.h"

#define REPLY_EXPLAIN_ERRORS(X)                                                               \
    X(REPLY_EXPLAIN_OK, "ok")                                                                 \
    X(REPLY_EXPLAIN_EMPTY,                                                                    \
      "empty input: give a reply, a code such as 550 or 5.1.1, or a log line")                \
    X(REPLY_EXPLAIN_BINARY, "binary input (NUL or control bytes): not a reply")               \
    X(REPLY_EXPLAIN_NO_CODE,                                                                  \
      "no reply code found: expected a code 200-599 or an enhanced code X.Y.Z (X = 2, 4 or 5)") \
    X(REPLY_EXPLAIN_OUT_OF_RANGE,                                                             \
      "code out of range: reply codes are 200-599; enhanced codes X.Y.Z have X = 2, 4 or 5 "    \
      "and Y = 0-7")

enum reply_explain_err {
#define X(name, text) name,
    REPLY_EXPLAIN_ERRORS(X)
#undef X
};
const char *reply_explain_strerror(enum reply_explain_err err);

/* Remarks about the input; ->notes holds (1u << note) for each that applies. */
#define REPLY_EXPLAIN_NOTES(X)                                                                \
    X(REPLY_NOTE_CLASS_MISMATCH,                                                              \
      "the enhanced code's class disagrees with the basic code's; the basic code decides")    \
    X(REPLY_NOTE_UNREGISTERED_CLASS, "the enhanced code is not registered for this class")   \
    X(REPLY_NOTE_UNKNOWN_CODE, "the basic code is not in the table: explained by its digits") \
    X(REPLY_NOTE_UNKNOWN_ENHANCED,                                                            \
      "the enhanced code is not in the registry: explained by its digits")

enum reply_note {
#define X(name, text) name,
    REPLY_EXPLAIN_NOTES(X)
#undef X
    REPLY_NOTE__COUNT
};
const char *reply_explain_note_text(enum reply_note note); /* NULL out of range */

struct reply_pattern;

/* Where the reason came from. */
enum reply_reason_source {
    REPLY_REASON_FROM_CLASS,    /* only the class was known (or success/intermediate) */
    REPLY_REASON_FROM_BASIC,    /* the basic code's table row */
    REPLY_REASON_FROM_ENHANCED, /* the enhanced code's table row */
    REPLY_REASON_FROM_TEXT      /* a phrase of the reply text (patterns.def) */
};

struct reply_explanation {
    int code;                   /* basic reply code; 0 when the input has none */
    struct reply_status status; /* enhanced status code; status.cls == 0 when none */
    enum reply_class cls;       /* from the basic code, else from the enhanced class digit */
    bool retry;                 /* true for transient failures */
    const char *retry_when;     /* retry advice in words */
    enum reply_reason reason;
    enum reply_reason_source reason_from;
    const char *summary;        /* the reason in a few words */
    const struct reply_pattern *pattern; /* the patterns.def row that decided, or NULL */
    const char *meaning, *cause, *action; /* never NULL */
    const char *admin;          /* what the receiving administrator should check, or NULL */
    const struct reply_basic *basic;       /* table rows; NULL when absent */
    const struct reply_enhanced *enhanced;
    unsigned notes;             /* bits (1u << enum reply_note) */
    const char *text;           /* reply text after the code(s), pointing into the input */
    size_t text_len;
    const char *command;        /* "RCPT TO" from "(in reply to RCPT TO command)", or NULL */
    size_t command_len;
    size_t code_offset;         /* where the code was found in the input */
};

/* Explains input[0..len): a bare code ("503", "5.7.1"), a reply (single or multi-line, lines
 * separated by LF or CRLF), or a line from a bounce or log holding a reply ("host x said: 550
 * 5.1.1 …", "smtp; 550 …", "dsn=4.4.1, status=deferred (…)"). The first reply code 2xx-5xx at
 * a token start is taken, preferring one followed by an enhanced code of the same class, then
 * any enhanced code. The reason comes from the enhanced code's table row, else the basic
 * code's, refined by the phrases of patterns.def found in the whole input.
 * Does no I/O and allocates nothing; every pointer in *out points into the input or static
 * data. Thread-safe. On error *out is zeroed. Errors: REPLY_EXPLAIN_EMPTY (nothing but white
 * space), REPLY_EXPLAIN_BINARY (a NUL or another control byte than TAB, CR, LF),
 * REPLY_EXPLAIN_OUT_OF_RANGE (the input starts with a code-shaped token such as 999, 600 or
 * 7.7.7 and holds no valid code), REPLY_EXPLAIN_NO_CODE. */
enum reply_explain_err reply_explain(const char *input, size_t len, struct reply_explanation *out);

/* Copies the explanation's reply text into buf (cap bytes, NUL-terminated), dropping the
 * continuation prefixes ("550-5.1.1 ") of multi-line replies and joining lines with '\n'.
 * Returns the length written (truncated to cap - 1); 0 when cap is 0. */
size_t reply_explain_text(const struct reply_explanation *ex, char *buf, size_t cap);

/* The phrase table (patterns.def), exported for tests and documentation. */
#define REPLY_PAT_WEAK 0x1u /* only refines a vague code */
#define REPLY_PAT_TEMP 0x2u /* only for transient (4xx) replies */
#define REPLY_PAT_PERM 0x4u /* only for permanent (5xx) replies */

struct reply_pattern {
    enum reply_reason reason;
    unsigned flags;
    const char *phrase; /* lowercase; ' ' matches white space; final '*' = prefix */
    size_t len;
    const char *cause, *action; /* words specific to this phrase, or NULL */
};
extern const struct reply_pattern reply_pattern_table[];
extern const size_t reply_pattern_count;

/* The words for a reason (patterns.def REASON_INFO); NULL fields only for an out-of-range
 * reason. retry_transient may be NULL (general advice applies). */
struct reply_reason_info {
    const char *summary, *cause, *action, *retry_transient;
};
const struct reply_reason_info *reply_reason_info(enum reply_reason reason);

#endif
