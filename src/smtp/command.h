/* smtp/command.h — parser for one SMTP command line: verb, path, ESMTP parameters.
 * RFC 5321 §4.1, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 3030 CHUNKING/BINARYMIME, RFC 3461 DSN,
 * RFC 6531 SMTPUTF8, RFC 4954 AUTH. */
#ifndef CLEARMTA_SMTP_COMMAND_H
#define CLEARMTA_SMTP_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits_mta.h"
#include "smtp/addr.h"

enum smtp_verb {
    SMTP_VERB_UNKNOWN,
    SMTP_VERB_HELO, SMTP_VERB_EHLO, SMTP_VERB_MAIL, SMTP_VERB_RCPT, SMTP_VERB_DATA,
    SMTP_VERB_BDAT, SMTP_VERB_RSET, SMTP_VERB_NOOP, SMTP_VERB_QUIT, SMTP_VERB_VRFY,
    SMTP_VERB_EXPN, SMTP_VERB_HELP, SMTP_VERB_STARTTLS, SMTP_VERB_AUTH,
    /* known, not implemented: 502 5.5.1 */
    SMTP_VERB_TURN, SMTP_VERB_ETRN, SMTP_VERB_ATRN, SMTP_VERB_SEND, SMTP_VERB_SOML, SMTP_VERB_SAML
};

/* Extensions the session has advertised; parameters of others are unknown (555). */
#define SMTP_EXT_SIZE 0x01u
#define SMTP_EXT_8BITMIME 0x02u
#define SMTP_EXT_SMTPUTF8 0x04u
#define SMTP_EXT_DSN 0x08u
#define SMTP_EXT_CHUNKING 0x10u
#define SMTP_EXT_AUTH 0x20u
#define SMTP_EXT_BINARYMIME 0x40u
/* Not an extension: MAIL of the current transaction had SMTPUTF8, so RCPT paths may be UTF-8. */
#define SMTP_EXT_UTF8_TRANSACTION 0x80u

enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

#define SMTP_NOTIFY_NEVER 0x1u
#define SMTP_NOTIFY_SUCCESS 0x2u
#define SMTP_NOTIFY_FAILURE 0x4u
#define SMTP_NOTIFY_DELAY 0x8u

#define SMTP_COMMAND_ERRORS(X)                                                        \
    X(SMTP_CMD_OK, "ok")                                                              \
    X(SMTP_CMD_UNKNOWN_VERB, "command not recognized")                   /* 500 5.5.2 */ \
    X(SMTP_CMD_NOT_IMPLEMENTED, "command not implemented")               /* 502 5.5.1 */ \
    X(SMTP_CMD_SYNTAX, "syntax error in parameters or arguments")        /* 501 5.5.4 */ \
    X(SMTP_CMD_BAD_SENDER, "bad sender address syntax")                  /* 501 5.1.7 */ \
    X(SMTP_CMD_BAD_RECIPIENT, "bad recipient address syntax")            /* 501 5.1.3 */ \
    X(SMTP_CMD_EIGHT_BIT_PATH, "non-ASCII address without SMTPUTF8")     /* 553 5.6.7 */ \
    X(SMTP_CMD_UNKNOWN_PARAM, "unknown MAIL/RCPT parameter")             /* 555 5.5.4 */ \
    X(SMTP_CMD_PARAM_UNSUPPORTED, "parameter value not supported")       /* 504 5.5.4 */ \
    X(SMTP_CMD_BAD_PARAM_VALUE, "malformed parameter value")             /* 501 5.5.4 */

enum smtp_cmd_err {
#define X(name, text) name,
    SMTP_COMMAND_ERRORS(X)
#undef X
};
const char *smtp_command_strerror(enum smtp_cmd_err err);

struct smtp_command {
    enum smtp_verb verb;
    const char *arg; /* text after the verb and its space(s), trailing spaces dropped, into the
                        caller's line; NULL if none */
    size_t arg_len;

    /* MAIL FROM / RCPT TO */
    struct smtp_path path;
    /* MAIL parameters */
    bool has_size;
    uint64_t size;
    enum smtp_body body;
    bool smtputf8;
    enum smtp_ret ret;
    char envid[LIMIT_ENVID + 1]; /* xtext as sent, "" if none */
    char auth[LIMIT_PATH + 3];   /* AUTH= value as sent (xtext), "" if none */
    /* RCPT parameters */
    unsigned notify;                /* SMTP_NOTIFY_* bits, 0 if absent */
    char orcpt[LIMIT_ORCPT + 1];    /* "rfc822;addr" as sent, "" if none */
    /* BDAT */
    uint64_t chunk_size;
    bool last;

    /* For an error: the offending parameter or a few words on the problem, NUL-ended. */
    char err_detail[64];
};

/* Parses one command line of len bytes (without its CRLF; the caller has checked the length
 * limit and that the line holds no NUL, CR or LF). ext says which extensions were offered; it
 * decides which parameters are known. The line must outlive out (out->arg points into it). */
enum smtp_cmd_err smtp_command_parse(const char *line, size_t len, unsigned ext,
                                     struct smtp_command *out);

#endif
