/* cli/explain_json.c — JSON Lines output shared by the explain modes: each record is built in
 * a growing line buffer and written with one fwrite, and the long texts of the static tables
 * (meaning, cause, what to do) are escaped once and copied afterwards, so that a million lines
 * cost a million copies, not escapes nor a few dozen stdio calls each. RFC 8259. */
#include "cli/explain_json.h"

#include <stdint.h>
#include <string.h>

#include "base/array.h"
#include "reply/json.h"

static bool grow(struct cli_json *j, size_t n)
{
    void *p = j->p;
    if (j->failed || n > SIZE_MAX - j->len ||
        base_array_reserve(&p, &j->cap, j->len + n, 1, 4096) != BASE_OK) {
        j->failed = true;
        return false;
    }
    j->p = p;
    return true;
}

void cli_json_grow_raw(struct cli_json *j, const char *s, size_t n)
{
    if (n && grow(j, n)) {
        memcpy(j->p + j->len, s, n);
        j->len += n;
    }
}

static bool put(void *ctx, const char *p, size_t n)
{
    cli_json_raw(ctx, p, n);
    return !((struct cli_json *)ctx)->failed;
}

void cli_json_string(struct cli_json *j, const char *s, size_t n)
{
    reply_json_string(s, n, put, j);
}

#define JSON_CACHE_SLOTS 2048u /* the tables hold a few hundred texts */
#define JSON_CACHE_PROBES 16u
static struct {
    const char *key;
    struct cli_json json;
} cache[JSON_CACHE_SLOTS];

void cli_json_static(struct cli_json *j, const char *s)
{
    size_t h = ((uintptr_t)s >> 3) & (JSON_CACHE_SLOTS - 1);
    for (size_t probe = 0; probe < JSON_CACHE_PROBES; probe++, h = (h + 1) & (JSON_CACHE_SLOTS - 1)) {
        if (cache[h].key == s) {
            cli_json_raw(j, cache[h].json.p, cache[h].json.len);
            return;
        }
        if (cache[h].key == NULL) {
            cache[h].json.len = 0;
            cache[h].json.failed = false;
            cli_json_string(&cache[h].json, s, strlen(s));
            if (cache[h].json.failed)
                break; /* out of memory: escape it in place below */
            cache[h].key = s;
            cli_json_raw(j, cache[h].json.p, cache[h].json.len);
            return;
        }
    }
    cli_json_string(j, s, strlen(s));
}

static void key(struct cli_json *j, const char *k, size_t kn, bool comma)
{
    cli_json_raw(j, k + !comma, kn - !comma);
}

void cli_json_field_k(struct cli_json *j, const char *k, size_t kn, const char *s, size_t n,
                      bool comma)
{
    key(j, k, kn, comma);
    if (s)
        cli_json_string(j, s, n);
    else
        cli_json_lit(j, "null");
}

void cli_json_text_k(struct cli_json *j, const char *k, size_t kn, const char *s,
                     bool static_text, bool comma)
{
    key(j, k, kn, comma);
    if (!s)
        cli_json_lit(j, "null");
    else if (static_text)
        cli_json_static(j, s);
    else
        cli_json_string(j, s, strlen(s));
}

void cli_json_bool_k(struct cli_json *j, const char *k, size_t kn, bool v, bool comma)
{
    key(j, k, kn, comma);
    if (v)
        cli_json_lit(j, "true");
    else
        cli_json_lit(j, "false");
}

bool cli_json_flush(struct cli_json *j, FILE *f)
{
    bool ok = !j->failed && fwrite_unlocked(j->p, 1, j->len, f) == j->len;
    j->len = 0;
    j->failed = false;
    return ok;
}

/* v in decimal at buf[at..cap - 1); returns the new end. */
static size_t decimal(unsigned long v, char *buf, size_t at, size_t cap)
{
    char d[24];
    size_t n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < sizeof d);
    while (n && at + 1 < cap)
        buf[at++] = d[--n];
    return at;
}

void cli_json_uint(struct cli_json *j, unsigned long v)
{
    char d[24];
    cli_json_raw(j, d, decimal(v, d, 0, sizeof d));
}

size_t cli_format_status(int cls, int subject, int detail, char *buf, size_t cap)
{
    if (cap == 0)
        return 0;
    int parts[3] = {cls, subject, detail};
    size_t at = 0;
    for (int i = 0; i < 3; i++) {
        if (i > 0 && at + 1 < cap)
            buf[at++] = '.';
        at = decimal(parts[i] < 0 ? 0ul : (unsigned long)parts[i], buf, at, cap);
    }
    buf[at] = '\0';
    return at;
}

static bool out_put(void *ctx, const char *p, size_t n)
{
    cli_json_raw(ctx, p, n);
    return true;
}

static bool out_put_static(void *ctx, const char *text)
{
    cli_json_static(ctx, text);
    return true;
}

struct reply_json_out cli_json_out(struct cli_json *j)
{
    return (struct reply_json_out){.put = out_put, .put_static = out_put_static, .ctx = j};
}
