/* cli/explain_json.h — JSON Lines output shared by the explain modes (explain_json.c): each
 * record is built in a line buffer and written with one call. */
#ifndef CLEARMTA_CLI_EXPLAIN_JSON_H
#define CLEARMTA_CLI_EXPLAIN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "reply/explain_json.h"

/* One record being built. Zero-initialise; it grows as needed and is reused. */
struct cli_json {
    char *p;
    size_t len, cap;
    bool failed; /* out of memory: the record is dropped at the flush */
};

/* Raw bytes (punctuation such as "{" or "}\n"). */
void cli_json_grow_raw(struct cli_json *j, const char *s, size_t n);
static inline void cli_json_raw(struct cli_json *j, const char *s, size_t n)
{
    if (j->p && n <= j->cap - j->len) { /* the usual case: the buffer has room */
        __builtin_memcpy(j->p + j->len, s, n);
        j->len += n;
    } else {
        cli_json_grow_raw(j, s, n);
    }
}
#define cli_json_lit(j, lit) cli_json_raw((j), (lit), sizeof(lit) - 1)
/* s[0..n) as a JSON string (reply/json.h escaping). */
void cli_json_string(struct cli_json *j, const char *s, size_t n);
/* A text of the static tables (meaning, cause …): escaped once, then copied. */
void cli_json_static(struct cli_json *j, const char *s);

/* The field writers take the name as a string literal and make ,"name": of it at compile
 * time; comma false leaves the ',' out (the object's first field). */
#define CLI_JSON_KEY(name) ",\"" name "\":", sizeof(",\"" name "\":") - 1
/* [,]"name":"value" with value s[0..n), or null when s is NULL. */
#define cli_json_field(j, name, s, n, comma) cli_json_field_k((j), CLI_JSON_KEY(name), (s), (n), (comma))
void cli_json_field_k(struct cli_json *j, const char *key, size_t key_len, const char *s, size_t n,
                      bool comma);
/* [,]"name":"value" for a NUL-terminated value; static_text: a table text that lives as long
 * as the program (cached by its address); null when s is NULL. */
#define cli_json_text(j, name, s, static_text, comma)                                          \
    cli_json_text_k((j), CLI_JSON_KEY(name), (s), (static_text), (comma))
void cli_json_text_k(struct cli_json *j, const char *key, size_t key_len, const char *s,
                     bool static_text, bool comma);
/* [,]"name":true|false */
#define cli_json_bool(j, name, v, comma) cli_json_bool_k((j), CLI_JSON_KEY(name), (v), (comma))
void cli_json_bool_k(struct cli_json *j, const char *key, size_t key_len, bool v, bool comma);
/* A non-negative integer in decimal. */
void cli_json_uint(struct cli_json *j, unsigned long v);
/* Writes the record to f and empties the buffer; false on a write error or when the record
 * was dropped for want of memory. */
bool cli_json_flush(struct cli_json *j, FILE *f);

/* Where reply/explain_json.h's writers put an explanation's or a bounce recipient's object:
 * appended to j (the table texts through the escaped-once cache), so that one definition of
 * those objects serves the command line and the HTTP console. */
struct reply_json_out cli_json_out(struct cli_json *j);

/* "X.Y.Z" into buf (cap >= 16 holds any); returns its length. */
size_t cli_format_status(int cls, int subject, int detail, char *buf, size_t cap);

#endif
