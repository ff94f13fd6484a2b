/* reply/safe_text.h — outside text (a remote server's reply, a client's EHLO name or address, a
 * bounce's diagnostic or subject) made safe to show: in a log line or on a terminal it can
 * neither start a line of its own nor send a control sequence. One writer for the log and
 * every text output; JSON output has its own escaper (reply/json.h). */
#ifndef CLEARMTA_REPLY_SAFE_TEXT_H
#define CLEARMTA_REPLY_SAFE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Appends n bytes to the caller's output; false when it cannot take them. */
typedef bool reply_safe_put(void *ctx, const char *p, size_t n);

/* Writes the len bytes of s through put: printable ASCII, TAB and well-formed UTF-8 as they
 * are; each LF or CRLF as the string newline (" " keeps a log line one line, "\n      "
 * indents the next line of a multi-line reply); every other C0 control byte (a lone CR too),
 * DEL, the bytes of a C1 control character (U+0080 to U+009F) and every byte of an ill-formed
 * UTF-8 sequence as "\xHH" (two upper-case hex digits). False as soon as put fails. */
bool reply_safe_text(const char *s, size_t len, const char *newline, reply_safe_put *put,
                     void *ctx);

/* The same into out (cap bytes, cap >= 1): as much as fits, never a part of an escape, of a
 * newline string or of a UTF-8 character, NUL-terminated. Returns the length written. */
size_t reply_safe_text_buf(const char *s, size_t len, const char *newline, char *out,
                           size_t cap);

#endif
