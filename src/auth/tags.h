/* auth/tags.h — the tag=value lists of DKIM-Signature fields and DKIM key records (and of
 * DMARC records): parsing with the positions of each value, look-up by name. RFC 6376 §3.2. */
#ifndef CLEARMTA_AUTH_TAGS_H
#define CLEARMTA_AUTH_TAGS_H

#include <stddef.h>

#include "auth/err.h"

/* More tags than any DKIM or DMARC record defines; a longer list is refused. */
#define AUTH_TAGS_MAX 32u

struct auth_tag {
    const char *name; /* into the parsed text, not NUL-terminated */
    size_t name_len;
    const char *value; /* without the whitespace around it; may hold folding whitespace */
    size_t value_len;
};

struct auth_tags {
    struct auth_tag t[AUTH_TAGS_MAX];
    size_t n;
};

/* Parses text (len bytes, any octets) as tag-spec *(";" tag-spec) [";"]: a name of a letter
 * then letters, digits and '_'; '='; a value of printable ASCII but ';', with folding
 * whitespace (SP, HT, CRLF) allowed inside. Errors: SYNTAX (malformed, a name twice), TOO_BIG
 * (more than AUTH_TAGS_MAX tags). out points into text. */
enum auth_err auth_tags_parse(const char *text, size_t len, struct auth_tags *out);

/* The tag named name (case-sensitive, as RFC 6376 §3.2 says), or NULL. */
const struct auth_tag *auth_tags_get(const struct auth_tags *tags, const char *name);

/* The value of t without any whitespace (base64 values, colon lists), NUL-terminated into out;
 * 0 when it does not fit (cap too small), else its length. An empty value gives 0 too: callers
 * check t->value_len. */
size_t auth_tag_squeeze(const struct auth_tag *t, char *out, size_t cap);

/* True when the value of t is exactly s. */
int auth_tag_is(const struct auth_tag *t, const char *s);

#endif
