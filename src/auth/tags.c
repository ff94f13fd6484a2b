/* auth/tags.c — the tag=value list syntax shared by DKIM signatures and key records and by
 * DMARC records. RFC 6376 §3.2, RFC 7489 §6.4. */
#include "auth/tags.h"

#include <stdbool.h>
#include <string.h>

static bool fws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool name_char(char c)
{
    return alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

/* tval = 0x21-0x3A / 0x3C-0x7E: printable, not ';'. 8-bit octets are refused. */
static bool value_char(char c)
{
    unsigned char u = (unsigned char)c;
    return u >= 0x21 && u <= 0x7e && u != ';';
}

enum auth_err auth_tags_parse(const char *text, size_t len, struct auth_tags *out)
{
    out->n = 0;
    size_t i = 0;
    for (;;) {
        while (i < len && fws(text[i]))
            i++;
        if (i == len)
            return AUTH_OK; /* an empty list, or a final ';' */
        size_t ns = i;
        if (!alpha(text[i]))
            return AUTH_ERR_SYNTAX;
        while (i < len && name_char(text[i]))
            i++;
        size_t ne = i;
        while (i < len && fws(text[i]))
            i++;
        if (i == len || text[i] != '=')
            return AUTH_ERR_SYNTAX;
        i++;
        while (i < len && fws(text[i]))
            i++;
        size_t vs = i, ve = i;
        while (i < len && text[i] != ';') {
            if (value_char(text[i]))
                ve = i + 1;
            else if (!fws(text[i]))
                return AUTH_ERR_SYNTAX;
            i++;
        }
        for (size_t k = 0; k < out->n; k++)
            if (out->t[k].name_len == ne - ns && memcmp(out->t[k].name, text + ns, ne - ns) == 0)
                return AUTH_ERR_SYNTAX; /* §3.2: a tag twice makes the whole list invalid */
        if (out->n == AUTH_TAGS_MAX)
            return AUTH_ERR_TOO_BIG;
        out->t[out->n++] = (struct auth_tag){.name = text + ns, .name_len = ne - ns,
                                             .value = text + vs, .value_len = ve - vs};
        if (i == len)
            return AUTH_OK;
        i++; /* the ';' */
    }
}

const struct auth_tag *auth_tags_get(const struct auth_tags *tags, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < tags->n; i++)
        if (tags->t[i].name_len == n && memcmp(tags->t[i].name, name, n) == 0)
            return &tags->t[i];
    return NULL;
}

size_t auth_tag_squeeze(const struct auth_tag *t, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < t->value_len; i++) {
        if (fws(t->value[i]))
            continue;
        if (o + 1 >= cap)
            return 0;
        out[o++] = t->value[i];
    }
    if (cap > 0)
        out[o] = '\0';
    return o;
}

int auth_tag_is(const struct auth_tag *t, const char *s)
{
    size_t n = strlen(s);
    return t->value_len == n && memcmp(t->value, s, n) == 0;
}
