/* store/queue_file.c — writes and parses the queue file header (format in queue_file.h). The
 * parser reads what is on disk, which anyone with access to the queue may have edited: it is
 * strict, bounded, and re-checks the decoded envelope with the same rules as the writer. */
#include "store/queue_file.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/hex.h"
#include "limits_mta.h"
#include "store/fault.h"

#define QF_MAGIC_LINE "clearmta-queue 1"
#define QF_LOCAL_USER_MAX 255

static const char *const state_names[] = {"pending", "sent", "bounced", "deferred"};
static const char *const ret_names[] = {NULL, "full", "hdrs"};
static const char *const body_names[] = {NULL, "7bit", "8bitmime", "binarymime"};
static const struct {
    unsigned bit;
    const char *name;
} notify_names[] = {
    {STORE_NOTIFY_NEVER, "never"},
    {STORE_NOTIFY_SUCCESS, "success"},
    {STORE_NOTIFY_FAILURE, "failure"},
    {STORE_NOTIFY_DELAY, "delay"},
};
#define N_NOTIFY (sizeof notify_names / sizeof notify_names[0])

const char *store_rcpt_state_name(enum store_rcpt_state st)
{
    if ((size_t)st >= sizeof state_names / sizeof state_names[0])
        return "unknown";
    return state_names[st];
}

/* ---- validation, shared by writer and parser ---- */

static bool is_ctl(unsigned char c) { return c < 0x20 || c == 0x7F; }

static bool field_ok(const char *s)
{
    return s == NULL || strnlen(s, STORE_QF_FIELD_MAX + 1) <= STORE_QF_FIELD_MAX;
}

/* No control characters: an address ends up in a Return-Path header line. */
static bool address_ok(const char *s, bool may_be_empty)
{
    if (s == NULL)
        return false;
    size_t n = strnlen(s, STORE_QF_FIELD_MAX + 1);
    if (n > STORE_QF_FIELD_MAX || (n == 0 && !may_be_empty))
        return false;
    for (size_t i = 0; i < n; i++)
        if (is_ctl((unsigned char)s[i]))
            return false;
    return true;
}

/* The name becomes a path component under the maildir root: no '/', no leading '.' (which
 * also rules out "." and ".." and Maildir++ folders), no control characters. */
static bool local_user_ok(const char *s)
{
    size_t n = strnlen(s, QF_LOCAL_USER_MAX + 1);
    if (n == 0 || n > QF_LOCAL_USER_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || is_ctl((unsigned char)s[i]))
            return false;
    return true;
}

bool store_qf_folder_ok(const char *s)
{
    size_t n = strnlen(s, 66);
    if (n < 2 || n > 65 || s[0] != '.')
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool notify_ok(unsigned v)
{
    unsigned all = STORE_NOTIFY_NEVER | STORE_NOTIFY_SUCCESS | STORE_NOTIFY_FAILURE |
                   STORE_NOTIFY_DELAY;
    if ((v & ~all) != 0)
        return false;
    return (v & STORE_NOTIFY_NEVER) == 0 || v == STORE_NOTIFY_NEVER;
}

enum store_err store_qf_check_envelope(const struct store_envelope *env)
{
    if (!address_ok(env->sender, true) || env->rcpts == NULL || env->n_rcpts == 0 ||
        env->n_rcpts > LIMIT_RECIPIENTS_MAX)
        return STORE_ERR_INVALID;
    if (env->ret < STORE_RET_NONE || env->ret > STORE_RET_HDRS || env->body < STORE_BODY_NONE ||
        env->body > STORE_BODY_BINARYMIME || env->arrival < 0)
        return STORE_ERR_INVALID;
    if (!field_ok(env->envid) || !field_ok(env->client_addr) || !field_ok(env->helo) ||
        !field_ok(env->auth_user) || !field_ok(env->auth_results) ||
        (env->folder != NULL && !store_qf_folder_ok(env->folder)))
        return STORE_ERR_INVALID;
    for (size_t i = 0; i < env->n_rcpts; i++) {
        const struct store_rcpt *r = &env->rcpts[i];
        if (!address_ok(r->address, false) || !notify_ok(r->notify) || !field_ok(r->orcpt))
            return STORE_ERR_INVALID;
        if (r->local_user != NULL && !local_user_ok(r->local_user))
            return STORE_ERR_INVALID;
    }
    return STORE_OK;
}

bool store_qf_valid_id(const char *s, size_t n)
{
    if (n != STORE_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

/* ---- writer ---- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_put(struct sbuf *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap != 0 ? b->cap : 1024;
        while (n > cap - b->len) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        char *np = realloc(b->p, cap);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_str(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static bool needs_escape(unsigned char c) { return c <= 0x20 || c == 0x7F || c == '\\'; }

/* Writes s with every space, control byte and backslash as "\xHH": one value is one token. */
static void sb_esc(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        if (needs_escape(*c)) {
            char e[4] = {'\\', 'x', hex[*c >> 4], hex[*c & 15]};
            sb_put(b, e, sizeof e);
        } else {
            sb_put(b, c, 1);
        }
    }
}

static void sb_line(struct sbuf *b, const char *key, const char *value)
{
    if (value == NULL)
        return;
    sb_str(b, key);
    sb_put(b, " ", 1);
    sb_esc(b, value);
    sb_put(b, "\n", 1);
}

static void sb_notify(struct sbuf *b, unsigned notify)
{
    const char *sep = " notify=";
    for (size_t i = 0; i < N_NOTIFY; i++) {
        if (notify & notify_names[i].bit) {
            sb_str(b, sep);
            sb_str(b, notify_names[i].name);
            sep = ",";
        }
    }
}

static void sb_rcpt(struct sbuf *b, const struct store_rcpt *r)
{
    char state[STORE_QF_STATE_WIDTH + 1];
    memset(state, ' ', sizeof state);
    memcpy(state, state_names[STORE_RCPT_PENDING], strlen(state_names[STORE_RCPT_PENDING]));
    sb_str(b, "rcpt ");
    sb_put(b, state, sizeof state);
    sb_put(b, "<", 1);
    sb_esc(b, r->address);
    sb_put(b, ">", 1);
    if (r->local_user != NULL) {
        sb_str(b, " local=");
        sb_esc(b, r->local_user);
    }
    sb_notify(b, r->notify);
    if (r->orcpt != NULL) {
        sb_str(b, " orcpt=");
        sb_esc(b, r->orcpt);
    }
    sb_put(b, "\n", 1);
}

void store_qf_size_digits(uint64_t size, char out[STORE_QF_SIZE_DIGITS])
{
    for (size_t i = STORE_QF_SIZE_DIGITS; i-- > 0;) {
        out[i] = (char)('0' + size % 10);
        size /= 10;
    }
}

void store_qf_seal(uint64_t size, uint64_t check, char out[STORE_QF_SEAL_LEN])
{
    static const char hex[] = "0123456789ABCDEF";
    store_qf_size_digits(size, out);
    memcpy(out + STORE_QF_SIZE_DIGITS, "\ncheck ", 7);
    char *d = out + STORE_QF_SIZE_DIGITS + 7;
    for (size_t i = STORE_QF_CHECK_DIGITS; i-- > 0; check >>= 4)
        d[i] = hex[check & 15];
}

/* ---- the message hash ---- */

#define HASH_SEED 0x243F6A8885A308D3u
#define HASH_MUL 0x9E3779B97F4A7C15u

static uint64_t hash_word(uint64_t h, const unsigned char w[8])
{
    uint64_t v = 0;
    for (size_t i = 8; i-- > 0;)
        v = v << 8 | w[i]; /* little-endian whatever the host: files move between hosts */
    h = (h ^ v) * HASH_MUL;
    return h ^ (h >> 32);
}

void store_qf_hash_init(struct store_qf_hash *hs)
{
    memset(hs, 0, sizeof *hs);
    hs->h = HASH_SEED;
}

void store_qf_hash_update(struct store_qf_hash *hs, const void *p, size_t n)
{
    const unsigned char *c = p;
    hs->len += n;
    if (hs->n_carry > 0) {
        size_t take = 8 - hs->n_carry < n ? 8 - hs->n_carry : n;
        memcpy(hs->carry + hs->n_carry, c, take);
        hs->n_carry += take;
        c += take;
        n -= take;
        if (hs->n_carry < 8)
            return;
        hs->h = hash_word(hs->h, hs->carry);
        hs->n_carry = 0;
    }
    for (; n >= 8; c += 8, n -= 8)
        hs->h = hash_word(hs->h, c);
    memcpy(hs->carry, c, n);
    hs->n_carry = n;
}

uint64_t store_qf_hash_final(const struct store_qf_hash *hs)
{
    unsigned char last[8] = {0};
    uint64_t h = hs->h;
    if (hs->n_carry > 0) {
        memcpy(last, hs->carry, hs->n_carry);
        h = hash_word(h, last);
    }
    /* The length tells "ab" from "ab\0" (same padded words). */
    for (size_t i = 0; i < 8; i++)
        last[i] = (unsigned char)(hs->len >> (8 * i));
    return hash_word(h * HASH_MUL, last);
}

enum store_err store_qf_format(const struct store_envelope *env, const char *id, char **out,
                               size_t *len, size_t *size_off)
{
    char num[64];
    char seal[STORE_QF_SEAL_LEN];
    struct sbuf b = {0};

    *out = NULL;
    if (store_qf_check_envelope(env) != STORE_OK || !store_qf_valid_id(id, strlen(id)))
        return STORE_ERR_INVALID;
    sb_str(&b, QF_MAGIC_LINE "\nid ");
    sb_str(&b, id);
    /* At most 9 + 19 + 6 bytes: arrival is >= 0 (checked above); the check guards changes. */
    int nn = snprintf(num, sizeof num, "\narrival %" PRId64 "\nsize ", env->arrival);
    if (nn < 0 || (size_t)nn >= sizeof num) {
        free(b.p);
        return STORE_ERR_INVALID;
    }
    sb_str(&b, num);
    *size_off = b.len;
    store_qf_seal(0, 0, seal);
    sb_put(&b, seal, sizeof seal);
    sb_str(&b, "\nsender <");
    sb_esc(&b, env->sender);
    sb_str(&b, ">\n");
    sb_line(&b, "envid", env->envid);
    sb_line(&b, "ret", ret_names[env->ret]);
    sb_line(&b, "body", body_names[env->body]);
    sb_line(&b, "smtputf8", env->smtputf8 ? "yes" : NULL);
    sb_line(&b, "client", env->client_addr);
    sb_line(&b, "helo", env->helo);
    sb_line(&b, "auth", env->auth_user);
    sb_line(&b, "folder", env->folder);
    sb_line(&b, "auth-results", env->auth_results);
    for (size_t i = 0; i < env->n_rcpts; i++)
        sb_rcpt(&b, &env->rcpts[i]);
    sb_put(&b, "\n", 1);
    if (b.oom) {
        free(b.p);
        return STORE_ERR_NOMEM;
    }
    if (b.len > STORE_QF_HEADER_MAX) {
        free(b.p);
        return STORE_ERR_INVALID;
    }
    *out = b.p;
    *len = b.len;
    return STORE_OK;
}

/* ---- parser ---- */

enum {
    SEEN_ID = 1 << 0, SEEN_ARRIVAL = 1 << 1, SEEN_SIZE = 1 << 2, SEEN_SENDER = 1 << 3,
    SEEN_ENVID = 1 << 4, SEEN_RET = 1 << 5, SEEN_BODY = 1 << 6, SEEN_SMTPUTF8 = 1 << 7,
    SEEN_CLIENT = 1 << 8, SEEN_HELO = 1 << 9, SEEN_AUTH = 1 << 10, SEEN_CHECK = 1 << 11,
    SEEN_FOLDER = 1 << 12, SEEN_AUTH_RESULTS = 1 << 13,
};
#define SEEN_REQUIRED (SEEN_ID | SEEN_ARRIVAL | SEEN_SIZE | SEEN_SENDER)

struct qf_parser {
    const char *base;   /* start of the header, for file offsets */
    char *arena;        /* decoded strings */
    size_t arena_len, arena_cap;
    struct store_qf *qf;
    struct store_rcpt *rcpts;
    size_t n_rcpts, rcpt_cap;
    unsigned seen;
};

static bool token_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* Decodes one escaped token into the arena; *out is NUL-terminated. Raw bytes that the writer
 * always escapes, bad escapes, decoded NULs and over-long values are corrupt. */
static bool decode(struct qf_parser *ps, const char *s, size_t n, const char **out)
{
    /* The arena holds n+1 bytes per token at most; checked here, not assumed. */
    if (n + 1 > ps->arena_cap - ps->arena_len)
        return false;
    char *d = ps->arena + ps->arena_len;
    size_t dn = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7F)
            return false;
        if (c == '\\') {
            if (n - i < 4 || s[i + 1] != 'x')
                return false;
            int hi = base_hex_value(s[i + 2]), lo = base_hex_value(s[i + 3]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return false;
            c = (unsigned char)(hi * 16 + lo);
            i += 3;
        }
        if (dn == STORE_QF_FIELD_MAX)
            return false;
        d[dn++] = (char)c;
    }
    d[dn] = '\0';
    ps->arena_len += dn + 1;
    *out = d;
    return true;
}

/* "<escaped>" → decoded address. */
static bool decode_address(struct qf_parser *ps, const char *s, size_t n, const char **out)
{
    if (n < 2 || s[0] != '<' || s[n - 1] != '>')
        return false;
    return decode(ps, s + 1, n - 2, out);
}

static bool parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Exactly STORE_QF_CHECK_DIGITS upper-case hex digits, as the writer makes them. */
static bool parse_hex64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n != STORE_QF_CHECK_DIGITS)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 'a' && s[i] <= 'f')
            return false;
        int d = base_hex_value(s[i]);
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return true;
}

/* Index of word in names[0..count) (NULL entries never match), or -1. */
static int name_index(const char *const *names, size_t count, const char *s, size_t n)
{
    for (size_t i = 0; i < count; i++)
        if (names[i] != NULL && token_is(s, n, names[i]))
            return (int)i;
    return -1;
}

static bool parse_notify(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    size_t i = 0;
    while (i <= n) {
        const char *comma = memchr(s + i, ',', n - i);
        size_t len = comma != NULL ? (size_t)(comma - (s + i)) : n - i;
        size_t k;
        for (k = 0; k < N_NOTIFY; k++)
            if (token_is(s + i, len, notify_names[k].name))
                break;
        if (k == N_NOTIFY || (v & notify_names[k].bit) != 0)
            return false;
        v |= notify_names[k].bit;
        i += len + 1;
    }
    *out = v;
    return notify_ok(v);
}

/* The fixed-width state field: a state name padded with spaces, then one separating space. */
static bool parse_state(const char *s, size_t n, enum store_rcpt_state *out)
{
    if (n < STORE_QF_STATE_WIDTH + 1 || s[STORE_QF_STATE_WIDTH] != ' ')
        return false;
    size_t len = 0;
    while (len < STORE_QF_STATE_WIDTH && s[len] != ' ')
        len++;
    for (size_t i = len; i < STORE_QF_STATE_WIDTH; i++)
        if (s[i] != ' ')
            return false;
    int st = name_index(state_names, sizeof state_names / sizeof state_names[0], s, len);
    if (st < 0)
        return false;
    *out = (enum store_rcpt_state)st;
    return true;
}

/* One "key=value" option of a rcpt line. */
static bool parse_rcpt_option(struct qf_parser *ps, struct store_rcpt *r, unsigned *seen,
                              const char *s, size_t n)
{
    const char *eq = memchr(s, '=', n);
    if (eq == NULL)
        return false;
    size_t klen = (size_t)(eq - s), vlen = n - klen - 1;
    unsigned bit;
    bool ok;
    if (token_is(s, klen, "local")) {
        bit = 1;
        ok = decode(ps, eq + 1, vlen, &r->local_user);
    } else if (token_is(s, klen, "notify")) {
        bit = 2;
        ok = parse_notify(eq + 1, vlen, &r->notify);
    } else if (token_is(s, klen, "orcpt")) {
        bit = 4;
        ok = decode(ps, eq + 1, vlen, &r->orcpt);
    } else {
        return false;
    }
    if (!ok || (*seen & bit) != 0)
        return false;
    *seen |= bit;
    return true;
}

static bool parse_rcpt(struct qf_parser *ps, const char *v, size_t n)
{
    size_t i = ps->n_rcpts;
    struct store_rcpt *r = &ps->rcpts[i];
    enum store_rcpt_state st;
    unsigned seen = 0;

    if (i == ps->rcpt_cap || !parse_state(v, n, &st))
        return false;
    ps->qf->state[i] = st;
    ps->qf->state_off[i] = (uint64_t)(v - ps->base);
    const char *p = v + STORE_QF_STATE_WIDTH + 1, *end = v + n;
    bool first = true;
    while (p <= end) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        size_t len = sp != NULL ? (size_t)(sp - p) : (size_t)(end - p);
        bool ok = first ? decode_address(ps, p, len, &r->address)
                        : parse_rcpt_option(ps, r, &seen, p, len);
        if (!ok)
            return false;
        first = false;
        p += len + 1;
    }
    ps->n_rcpts++;
    return true;
}

static bool parse_enum_line(const char *const *names, size_t count, const char *v, size_t n,
                            int *out)
{
    int i = name_index(names, count, v, n);
    if (i < 0)
        return false;
    *out = i;
    return true;
}

/* One "key value" line (key and value without the separating space). */
static bool parse_line(struct qf_parser *ps, const char *k, size_t kn, const char *v, size_t n)
{
    struct store_qf *qf = ps->qf;
    struct store_envelope *env = &qf->env;
    uint64_t u = 0;
    unsigned bit;
    bool ok;

    if (token_is(k, kn, "rcpt"))
        return parse_rcpt(ps, v, n);
    if (token_is(k, kn, "id")) {
        bit = SEEN_ID;
        ok = store_qf_valid_id(v, n);
        if (ok)
            memcpy(qf->id, v, n);
    } else if (token_is(k, kn, "arrival")) {
        bit = SEEN_ARRIVAL;
        ok = parse_u64(v, n, INT64_MAX, &u);
        env->arrival = (int64_t)u;
    } else if (token_is(k, kn, "size")) {
        bit = SEEN_SIZE;
        ok = parse_u64(v, n, LIMIT_MESSAGE_SIZE_MAX, &qf->size);
        qf->size_off = (size_t)(v - ps->base);
    } else if (token_is(k, kn, "check")) {
        bit = SEEN_CHECK;
        ok = parse_hex64(v, n, &qf->check);
        qf->has_check = true;
    } else if (token_is(k, kn, "sender")) {
        bit = SEEN_SENDER;
        ok = decode_address(ps, v, n, &env->sender);
    } else if (token_is(k, kn, "envid")) {
        bit = SEEN_ENVID;
        ok = decode(ps, v, n, &env->envid);
    } else if (token_is(k, kn, "ret")) {
        bit = SEEN_RET;
        ok = parse_enum_line(ret_names, sizeof ret_names / sizeof ret_names[0], v, n, &env->ret);
    } else if (token_is(k, kn, "body")) {
        bit = SEEN_BODY;
        ok = parse_enum_line(body_names, sizeof body_names / sizeof body_names[0], v, n,
                             &env->body);
    } else if (token_is(k, kn, "smtputf8")) {
        bit = SEEN_SMTPUTF8;
        ok = token_is(v, n, "yes");
        env->smtputf8 = true;
    } else if (token_is(k, kn, "client")) {
        bit = SEEN_CLIENT;
        ok = decode(ps, v, n, &env->client_addr);
    } else if (token_is(k, kn, "helo")) {
        bit = SEEN_HELO;
        ok = decode(ps, v, n, &env->helo);
    } else if (token_is(k, kn, "auth")) {
        bit = SEEN_AUTH;
        ok = decode(ps, v, n, &env->auth_user);
    } else if (token_is(k, kn, "folder")) {
        bit = SEEN_FOLDER;
        ok = decode(ps, v, n, &env->folder) && store_qf_folder_ok(env->folder);
    } else if (token_is(k, kn, "auth-results")) {
        bit = SEEN_AUTH_RESULTS;
        ok = decode(ps, v, n, &env->auth_results);
    } else {
        return false;
    }
    if (!ok || (ps->seen & bit) != 0)
        return false;
    ps->seen |= bit;
    return true;
}

static size_t count_rcpt_lines(const char *p, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i + 5 <= n; i++)
        if ((i == 0 || p[i - 1] == '\n') && memcmp(p + i, "rcpt ", 5) == 0)
            count++;
    return count;
}

/* Walks the lines of p[0..n), which ends with the blank line. */
static bool parse_lines(struct qf_parser *ps, const char *p, size_t n)
{
    size_t pos = 0;
    bool first = true;
    while (pos < n) {
        const char *line = p + pos;
        const char *nl = memchr(line, '\n', n - pos);
        if (nl == NULL)
            return false;
        size_t len = (size_t)(nl - line);
        pos += len + 1;
        if (len == 0)
            return pos == n && !first;
        if (first) {
            if (!token_is(line, len, QF_MAGIC_LINE))
                return false;
            first = false;
            continue;
        }
        const char *sp = memchr(line, ' ', len);
        if (sp == NULL)
            return false;
        size_t kn = (size_t)(sp - line);
        if (!parse_line(ps, line, kn, sp + 1, len - kn - 1))
            return false;
    }
    return false;
}

void store_qf_free(struct store_qf *qf)
{
    free(qf->state);
    free(qf->state_off);
    free(qf->rcpts_);
    free(qf->strings_);
    memset(qf, 0, sizeof *qf);
}

enum store_err store_qf_parse(const char *p, size_t n, struct store_qf *qf)
{
    memset(qf, 0, sizeof *qf);
    if (n < 2 || n > STORE_QF_HEADER_MAX || p[n - 1] != '\n' || p[n - 2] != '\n')
        return STORE_ERR_CORRUPT;
    size_t nr = count_rcpt_lines(p, n);
    if (nr == 0 || nr > LIMIT_RECIPIENTS_MAX)
        return STORE_ERR_CORRUPT;
    qf->rcpts_ = calloc(nr, sizeof *qf->rcpts_);
    qf->state = calloc(nr, sizeof *qf->state);
    qf->state_off = calloc(nr, sizeof *qf->state_off);
    qf->strings_ = malloc(n + 1);
    if (qf->rcpts_ == NULL || qf->state == NULL || qf->state_off == NULL ||
        qf->strings_ == NULL) {
        store_qf_free(qf);
        return STORE_ERR_NOMEM;
    }
    struct qf_parser ps = {.base = p, .arena = qf->strings_, .arena_cap = n + 1, .qf = qf,
                           .rcpts = qf->rcpts_, .rcpt_cap = nr};
    qf->env.rcpts = qf->rcpts_;
    if (!parse_lines(&ps, p, n) || (ps.seen & SEEN_REQUIRED) != SEEN_REQUIRED ||
        ps.n_rcpts != nr) {
        store_qf_free(qf);
        return STORE_ERR_CORRUPT;
    }
    qf->env.n_rcpts = nr;
    qf->header_len = n;
    if (store_qf_check_envelope(&qf->env) != STORE_OK) {
        store_qf_free(qf);
        return STORE_ERR_CORRUPT;
    }
    return STORE_OK;
}

bool store_qf_header_end(const char *p, size_t n, size_t *header_len)
{
    const char *e = memmem(p, n, "\n\n", 2);
    if (e == NULL)
        return false;
    *header_len = (size_t)(e - p) + 2;
    return true;
}

/* Reads from offset 0 until the blank line, doubling the buffer up to STORE_QF_HEADER_MAX.
 * STORE_ERR_CORRUPT with *cut set when the file ends, or a NUL byte comes, before the blank
 * line: the header is not whole on disk. */
static enum store_err read_header(int fd, uint64_t file_size, char **out, size_t *hlen,
                                  bool *cut)
{
    size_t cap = 4096, have = 0;
    char *buf = NULL;
    for (;;) {
        char *nb = realloc(buf, cap);
        if (nb == NULL) {
            free(buf);
            return STORE_ERR_NOMEM;
        }
        buf = nb;
        size_t want = file_size < cap ? (size_t)file_size : cap;
        int e = store_io_pread_all(fd, buf + have, want - have, have);
        if (e != 0) {
            free(buf);
            *cut = e == ENODATA; /* shorter than its size said a moment ago */
            return e == ENODATA ? STORE_ERR_CORRUPT : store_err_from_errno(e);
        }
        size_t from = have > 0 ? have - 1 : 0;
        have = want;
        size_t rel;
        bool whole = store_qf_header_end(buf + from, have - from, &rel);
        size_t end = whole ? from + rel : have;
        if (memchr(buf + from, '\0', end - from) != NULL) {
            free(buf);
            *cut = true;
            return STORE_ERR_CORRUPT;
        }
        if (whole) {
            *out = buf;
            *hlen = end;
            return STORE_OK;
        }
        if (have == file_size || cap >= STORE_QF_HEADER_MAX) {
            free(buf);
            *cut = have == file_size;
            return STORE_ERR_CORRUPT;
        }
        cap *= 2;
    }
}

/* Reads and parses the header; *file_size is the file's length, *cut as read_header's (an
 * empty file is cut too). */
static enum store_err read_parsed(int fd, struct store_qf *out, uint64_t *file_size, bool *cut)
{
    struct stat st;
    char *buf = NULL;
    size_t hlen = 0;

    memset(out, 0, sizeof *out);
    *cut = false;
    if (fstat(fd, &st) != 0)
        return STORE_ERR_IO;
    if (st.st_size <= 0) {
        *cut = true;
        return STORE_ERR_CORRUPT;
    }
    *file_size = (uint64_t)st.st_size;
    enum store_err err = read_header(fd, *file_size, &buf, &hlen, cut);
    if (err != STORE_OK)
        return err;
    err = store_qf_parse(buf, hlen, out);
    free(buf);
    return err;
}

enum store_err store_qf_read(int fd, struct store_qf *out)
{
    uint64_t file_size = 0;
    bool cut;
    enum store_err err = read_parsed(fd, out, &file_size, &cut);
    if (err == STORE_OK && file_size - out->header_len != out->size) {
        store_qf_free(out);
        return STORE_ERR_CORRUPT;
    }
    return err;
}

/* Hashes the message bytes of the file: size bytes from off. */
static enum store_err hash_body(int fd, uint64_t off, uint64_t size, uint64_t *out)
{
    enum { CHUNK = 64 * 1024 };
    struct store_qf_hash hs;
    char *buf = malloc(CHUNK);
    if (buf == NULL)
        return STORE_ERR_NOMEM;
    store_qf_hash_init(&hs);
    int e = 0;
    while (size > 0 && e == 0) {
        size_t n = size < CHUNK ? (size_t)size : CHUNK;
        e = store_io_pread_all(fd, buf, n, off);
        store_qf_hash_update(&hs, buf, n);
        off += n;
        size -= n;
    }
    free(buf);
    *out = store_qf_hash_final(&hs);
    return e == 0 ? STORE_OK : store_err_from_errno(e);
}

/* Which files can never have been acknowledged. The writer (store/queue.c) fills a file in
 * pool/ or tmp/ — header, message, then the seal of size and check in the header — and only
 * then names it in queue/; the 250 waits for the sync that follows:
 *   - syncfs mode renames first and syncs once after: a crash before that sync completes can
 *     leave in queue/ a name whose bytes never all reached the disk — the file shorter than
 *     written, or blocks never written that read as zeros, the header's first page included;
 *   - fdatasync mode syncs the file's data before the rename, so its files in queue/ are
 *     whole; but a start in this mode may find what a crash in syncfs mode left, so the
 *     reading cannot depend on the mode.
 * After the 250 a file is only changed by overwriting its fixed-width recipient states in
 * place with printable bytes (store_qf_set_state): never shortened, never a NUL, never its
 * blank line. So a header that ends or holds a NUL before its blank line, like a size or check
 * that does not match the bytes, comes from a commit that never completed: UNSEALED, and
 * recovery removes it. A whole header that does not parse was written whole by something else
 * (an edit, a bug): UNREADABLE, kept for inspection. */
enum store_qf_state store_qf_verify(int fd, enum store_err *err)
{
    struct store_qf qf;
    uint64_t file_size = 0, sum = 0;
    bool cut;

    *err = STORE_OK;
    enum store_err e = read_parsed(fd, &qf, &file_size, &cut);
    if (e != STORE_OK) {
        if (cut)
            return STORE_QF_UNSEALED;
        if (e != STORE_ERR_CORRUPT)
            *err = e;
        return STORE_QF_UNREADABLE;
    }
    enum store_qf_state res = STORE_QF_COMPLETE;
    if (file_size - qf.header_len != qf.size) {
        res = STORE_QF_UNSEALED;
    } else if (qf.has_check) {
        e = hash_body(fd, qf.header_len, qf.size, &sum);
        if (e != STORE_OK) {
            *err = e;
            res = STORE_QF_UNREADABLE;
        } else if (sum != qf.check) {
            res = STORE_QF_UNSEALED;
        }
    }
    store_qf_free(&qf);
    return res;
}

enum store_err store_qf_set_state(int fd, uint64_t state_off, enum store_rcpt_state st)
{
    char field[STORE_QF_STATE_WIDTH];
    const char *name = store_rcpt_state_name(st);
    memset(field, ' ', sizeof field);
    memcpy(field, name, strlen(name));
    return store_err_from_errno(
        store_io_pwrite_all(STORE_FAULT_QUEUE_UPDATE, fd, field, sizeof field, state_off));
}
