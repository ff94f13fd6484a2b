/* smtp/submit.h — what `sendmail` does to a message a local program hands it, before it is
 * queued: line ends made CRLF, the header read for recipients (-t: To, Cc, Bcc; RFC 5322
 * §3.6.3 address lists with groups, comments and quoted strings) and Bcc removed. Pure. */
#ifndef CLEARMTA_SMTP_SUBMIT_H
#define CLEARMTA_SMTP_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>

/* The input of sendmail made into CRLF lines: LF, CRLF and a lone CR each end a line; without
 * ignore_dots a line holding only "." ends the message (sendmail without -i). out must have
 * room for 2 * len + 2 bytes. Returns the length written; *nul is set when the input holds a
 * NUL byte (the message is then refused). The last line always ends with CRLF. */
size_t smtp_submit_normalize(const char *in, size_t len, bool ignore_dots, char *out, bool *nul);

/* Called for each address found in To, Cc and Bcc: addr (not NUL-terminated) as written
 * between angle brackets or as a bare addr-spec, comments and display names removed. */
typedef void smtp_submit_rcpt_fn(void *ctx, const char *addr, size_t len);

struct smtp_submit_header_info {
    bool has_from;        /* a From: field is present */
    bool has_date;        /* a Date: field is present */
    bool has_message_id;  /* a Message-ID: field is present */
    size_t header_len;    /* bytes of the header section in the output, blank line excluded */
};

/* Reads the header section of a CRLF message (msg, len): reports each To/Cc/Bcc address to
 * rcpt (NULL: none wanted) and copies the message to out without its Bcc fields (out has room
 * for len + 2 bytes). Returns the output length. Leading mbox "From " lines (not fields) are
 * dropped. The header ends at the blank line, or at the first line that is neither a field
 * ("Name:" or the obsolete "Name :") nor the continuation of one: a blank line is added there,
 * so a message given without a header keeps its first lines as body. A message of fields only
 * is all header. */
size_t smtp_submit_headers(const char *msg, size_t len, smtp_submit_rcpt_fn *rcpt, void *ctx,
                           char *out, struct smtp_submit_header_info *info);

#endif
