/* reply/json.h — JSON strings (RFC 8259) for clearmta's machine-readable output: `explain
 * --json` and the control socket's answers. One escaper, whatever the output goes into. */
#ifndef CLEARMTA_REPLY_JSON_H
#define CLEARMTA_REPLY_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* Appends n bytes to the caller's output; false when it cannot take them. */
typedef bool reply_json_put(void *ctx, const char *p, size_t n);

/* Writes len bytes of s as one quoted JSON string through put: '"' and '\' escaped, LF and
 * TAB as \n and \t, other control characters (DEL and the C1 characters U+0080 to U+009F too)
 * as \u00XX, well-formed UTF-8 kept, every byte of an ill-formed sequence replaced by U+FFFD.
 * False as soon as put fails. */
bool reply_json_string(const char *s, size_t len, reply_json_put *put, void *ctx);

#endif
