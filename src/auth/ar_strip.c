/* auth/ar_strip.c — the header fields of a message walked one by one (a field is its line and
 * the continuation lines that start with SP or HT), Authentication-Results fields of our own
 * authserv-id cut out with memmove. RFC 8601 §2.2 (syntax), §5 (removal); RFC 5322 §2.2. */
#include "auth/ar_strip.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static const char field_name[] = "authentication-results";

/* The end of the line starting at p: just past its LF, or end. */
static size_t line_end(const char *msg, size_t p, size_t len)
{
    const char *nl = memchr(msg + p, '\n', len - p);
    return nl ? (size_t)(nl - msg) + 1 : len;
}

size_t auth_ar_authserv_id(const char *value, size_t len, char *out, size_t cap)
{
    size_t i = 0, depth = 0, n = 0;
    if (cap == 0)
        return 0;
    /* CFWS: white space, line breaks and (nested, escaped) comments. */
    while (i < len) {
        char c = value[i];
        if (depth > 0 && c == '\\') {
            i += 2;
        } else if (c == '(') {
            depth++;
            i++;
        } else if (depth > 0 && c == ')') {
            depth--;
            i++;
        } else if (depth > 0 || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            i++;
        } else {
            break;
        }
    }
    if (i < len && value[i] == '"') {
        /* a quoted-string (RFC 2045 value): its content, quoted-pairs unescaped, folding
         * dropped; NUL or an unterminated string ends it where it is */
        for (i++; i < len && value[i] != '"' && n + 1 < cap; i++) {
            if (value[i] == '\\' && i + 1 < len)
                i++;
            if (value[i] == '\0')
                break;
            if (value[i] != '\r' && value[i] != '\n')
                out[n++] = value[i];
        }
    } else {
        for (; i < len && n + 1 < cap; i++) {
            unsigned char c = (unsigned char)value[i];
            if (c == ';' || c == '(' || c <= ' ' || c == 0x7f) /* controls (NUL too) end it */
                break;
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    return n;
}

/* True when the field at msg[p..end) is an Authentication-Results field of authserv_id. */
static bool ours(const char *msg, size_t p, size_t end, const char *authserv_id)
{
    size_t name = sizeof field_name - 1;
    if (end - p <= name || strncasecmp(msg + p, field_name, name) != 0)
        return false;
    size_t i = p + name;
    while (i < end && (msg[i] == ' ' || msg[i] == '\t'))
        i++;
    if (i >= end || msg[i] != ':')
        return false;
    char id[256];
    size_t n = auth_ar_authserv_id(msg + i + 1, end - i - 1, id, sizeof id);
    return n > 0 && n < sizeof id - 1 && strcasecmp(id, authserv_id) == 0;
}

size_t auth_ar_strip(char *msg, size_t len, const char *authserv_id, size_t *removed)
{
    size_t p = 0, count = 0;
    while (p < len) {
        if (msg[p] == '\n' || (msg[p] == '\r' && p + 1 < len && msg[p + 1] == '\n'))
            break; /* the blank line: the body follows */
        size_t end = line_end(msg, p, len);
        while (end < len && (msg[end] == ' ' || msg[end] == '\t'))
            end = line_end(msg, end, len);
        if (ours(msg, p, end, authserv_id)) {
            memmove(msg + p, msg + end, len - end);
            len -= end - p;
            count++;
        } else {
            p = end;
        }
    }
    if (removed != NULL)
        *removed = count;
    return len;
}
