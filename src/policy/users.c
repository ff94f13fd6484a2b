/* policy/users.c — the AUTH users file: parser with per-line problems, a hash table by login
 * name, crypt_rn(3) verification in constant time, and envelope-sender ownership.
 * RFC 4954, RFC 6409 §6.1. */
#include "policy/users.h"

#include <crypt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/array.h"
#include "base/hash.h"
#include "policy/recipients.h"
#include "smtp/addr.h"

/* One user: name, hash and addresses in one block ("name\0hash\0addr\0addr\0"). */
struct entry {
    char *name; /* the block; lower case */
    const char *hash;
    const char *addrs; /* n_addrs NUL-terminated "local@domain" keys, back to back */
    size_t n_addrs;
    unsigned line;
};

struct policy_users {
    struct entry *entries;
    size_t n, cap;
    size_t *slots; /* open addressing: entry index + 1, 0 = empty; n_slots a power of two */
    size_t n_slots;
};

/* A sender key: local part (unquoted, folded) "@" canonical domain. */
#define KEY_CAP (LIMIT_LOCAL_PART + 1 + LIMIT_DOMAIN + 1)

static char ascii_lower(char ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
}

/* ---- the table ---- */

static size_t hash_name(const char *s)
{
    /* Unseeded: the file is the admin's, not an attacker's. */
    return (size_t)base_fnv1a_str(BASE_FNV1A_OFFSET, s);
}

/* The slot holding name, or the empty slot where it would go. */
static size_t *slot_for(const struct policy_users *u, const char *name)
{
    size_t mask = u->n_slots - 1;
    for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
        size_t *s = &u->slots[i];
        if (*s == 0 || strcmp(u->entries[*s - 1].name, name) == 0)
            return s;
    }
}

/* Keeps the table at most half full so probes stay short and always end. */
static bool grow_slots(struct policy_users *u)
{
    if (u->n_slots != 0 && (u->n + 1) * 2 <= u->n_slots)
        return true;
    size_t n_slots = u->n_slots ? u->n_slots * 2 : 64;
    size_t *slots = calloc(n_slots, sizeof *slots);
    if (slots == NULL)
        return false;
    free(u->slots);
    u->slots = slots;
    u->n_slots = n_slots;
    for (size_t i = 0; i < u->n; i++)
        *slot_for(u, u->entries[i].name) = i + 1;
    return true;
}

static const struct entry *find(const struct policy_users *u, const char *user)
{
    char key[POLICY_USER_NAME_MAX + 1];
    size_t len = strlen(user);
    if (u == NULL || u->n == 0 || len > POLICY_USER_NAME_MAX)
        return NULL;
    for (size_t i = 0; i <= len; i++)
        key[i] = ascii_lower(user[i]);
    size_t s = *slot_for(u, key);
    return s != 0 ? &u->entries[s - 1] : NULL;
}

void policy_users_free(struct policy_users *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->n; i++)
        free(u->entries[i].name);
    free(u->entries);
    free(u->slots);
    free(u);
}

size_t policy_users_count(const struct policy_users *u)
{
    return u != NULL ? u->n : 0;
}

const char *policy_users_name(const struct policy_users *u, const char *user)
{
    const struct entry *e = find(u, user);
    return e != NULL ? e->name : NULL;
}

const char *policy_users_hash(const struct policy_users *u, const char *user)
{
    const struct entry *e = find(u, user);
    return e != NULL ? e->hash : NULL;
}

/* ---- validation ---- */

bool policy_users_valid_name(const char *name, size_t len)
{
    if (len == 0 || len > POLICY_USER_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9');
        if (!alnum && (ch == '\0' || strchr("._-+@", ch) == NULL))
            return false;
    }
    /* A name with '@' is a mailbox and owns it: exactly one '@', something on each side. */
    const char *at = memchr(name, '@', len);
    return at == NULL || (at != name && at != name + len - 1 &&
                          memchr(at + 1, '@', len - (size_t)(at - name) - 1) == NULL);
}

/* Supported crypt(3) kinds and the length of their digest (the text after the last '$'). */
static const struct {
    const char *prefix;
    size_t digest;
} methods[] = {
    {"$y$", 43},  /* yescrypt */
    {"$6$", 86},  /* SHA-512-crypt */
    {"$5$", 43},  /* SHA-256-crypt */
    {"$2b$", 53}, /* bcrypt: 22 salt + 31 digest characters after the cost */
};

/* NULL when hash is usable, else why not (never quoting the hash). */
static const char *hash_problem(const char *hash)
{
    size_t len = strlen(hash), digest = 0;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strncmp(hash, methods[i].prefix, strlen(methods[i].prefix)) == 0)
            digest = methods[i].digest;
    if (digest == 0)
        return "is not a supported crypt(3) hash ($y$ yescrypt, $6$, $5$ or $2b$)";
    if (len >= CRYPT_OUTPUT_SIZE || strspn(hash, "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                 "abcdefghijklmnopqrstuvwxyz$=,") != len)
        return "holds characters no crypt(3) hash has";
    if (strlen(strrchr(hash, '$') + 1) != digest || crypt_checksalt(hash) == CRYPT_SALT_INVALID)
        return "is incomplete or damaged (salt or digest missing; generate it with "
               "clearmta passwd)";
    return NULL;
}

/* local@domain in the users file → its key ("local@domain", both in comparison form), or false
 * when it is not a plain address. Quoted local parts are written unquoted in the file. */
static bool address_key(const char *addr, char *key, size_t cap)
{
    const char *at = strrchr(addr, '@');
    if (at == NULL || at == addr || (size_t)(at - addr) > LIMIT_LOCAL_PART)
        return false;
    size_t llen = (size_t)(at - addr);
    for (size_t i = 0; i < llen; i++) {
        unsigned char ch = (unsigned char)addr[i];
        if (ch <= 0x20 || ch == 0x7f || strchr("\"\\@,:", ch) != NULL)
            return false;
        key[i] = ascii_lower((char)ch);
    }
    key[llen] = '@';
    const char *domain = at + 1;
    return smtp_addr_valid_domain(domain, strlen(domain), true) &&
           policy_domain_canonical(domain, key + llen + 1, cap - llen - 1);
}

/* ---- loading ---- */

struct parse {
    struct policy_users *u;
    policy_users_report_fn *report;
    void *ctx;
    unsigned line;
    size_t problems;
    bool oom;
};

__attribute__((format(printf, 2, 3))) static void problem(struct parse *ps, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    ps->problems++;
    if (ps->report == NULL)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        snprintf(msg, sizeof msg, "(unprintable message)");
    ps->report(ps->ctx, ps->line, msg);
}

/* Splits the comma-separated addresses into keys, back to back in keys (cap bytes). */
static bool parse_addresses(struct parse *ps, char *list, char *keys, size_t cap, size_t *used,
                            size_t *count)
{
    *used = 0;
    *count = 0;
    for (char *a = list, *next; a != NULL; a = next) {
        if (cap - *used < KEY_CAP) {
            problem(ps, "too many addresses on one line");
            return false;
        }
        next = strchr(a, ',');
        if (next != NULL)
            *next++ = '\0';
        if (!address_key(a, keys + *used, cap - *used)) {
            problem(ps, "address %zu is not local@domain (plain local part, domain name or "
                    "address literal)", *count + 1);
            return false;
        }
        *used += strlen(keys + *used) + 1;
        ++*count;
    }
    return true;
}

static bool add_entry(struct parse *ps, const char *name, const char *hash, const char *keys,
                      size_t keys_len, size_t n_keys)
{
    struct policy_users *u = ps->u;
    if (base_array_reserve((void **)&u->entries, &u->cap, u->n + 1, sizeof *u->entries, 16) !=
        BASE_OK)
        return false;
    size_t nlen = strlen(name) + 1, hlen = strlen(hash) + 1;
    char *block = malloc(nlen + hlen + keys_len);
    if (block == NULL || !grow_slots(u)) {
        free(block);
        return false;
    }
    memcpy(block, name, nlen);
    memcpy(block + nlen, hash, hlen);
    memcpy(block + nlen + hlen, keys, keys_len);
    u->entries[u->n] = (struct entry){block, block + nlen, block + nlen + hlen, n_keys, ps->line};
    *slot_for(u, block) = ++u->n;
    return true;
}

static void parse_line(struct parse *ps, char *line)
{
    char keys[POLICY_CONFIG_LINE_MAX * 2]; /* folded keys never outgrow twice the line */
    line += strspn(line, " \t");
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    if (len == 0 || line[0] == '#')
        return;
    char *name = line, *hash = strchr(line, ':');
    char *addrs = hash != NULL ? strchr(hash + 1, ':') : NULL;
    if (hash == NULL || strpbrk(line, " \t") != NULL) {
        problem(ps, "expected USER:HASH or USER:HASH:ADDRESS,... without spaces");
        return;
    }
    *hash++ = '\0';
    if (addrs != NULL)
        *addrs++ = '\0';
    if (!policy_users_valid_name(name, strlen(name))) {
        problem(ps, "user name is not 1-%u letters, digits or . _ - + @ (one '@' inside, for "
                "an address)", POLICY_USER_NAME_MAX);
        return;
    }
    for (char *p = name; *p != '\0'; p++)
        *p = ascii_lower(*p);
    const char *why = hash_problem(hash);
    if (why != NULL) {
        problem(ps, "user %s: password hash %s", name, why);
        return;
    }
    size_t keys_len = 0, n_keys = 0;
    if (addrs != NULL && !parse_addresses(ps, addrs, keys, sizeof keys, &keys_len, &n_keys))
        return;
    const struct entry *dup = find(ps->u, name);
    if (dup != NULL) {
        problem(ps, "user %s is already listed on line %u", name, dup->line);
        return;
    }
    if (!add_entry(ps, name, hash, keys, keys_len, n_keys)) {
        ps->oom = true;
        problem(ps, "out of memory");
    }
}

/* Copies one line into buf (cap bytes) and checks it; false (reported) when it cannot be used. */
static bool take_line(struct parse *ps, const char *s, size_t n, char *buf, size_t cap)
{
    if (n >= cap) {
        problem(ps, "line is longer than %u bytes", POLICY_CONFIG_LINE_MAX);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            problem(ps, "control character 0x%02x in column %zu", ch, i + 1);
            return false;
        }
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    return true;
}

size_t policy_users_load_buffer(const char *data, size_t len, policy_users_report_fn *report,
                                void *ctx, struct policy_users **out)
{
    struct parse ps = {.u = calloc(1, sizeof *ps.u), .report = report, .ctx = ctx};
    char buf[POLICY_CONFIG_LINE_MAX + 1];
    *out = NULL;
    if (ps.u == NULL) {
        problem(&ps, "out of memory");
        return ps.problems;
    }
    for (size_t pos = 0; pos < len && !ps.oom;) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - data) : len, n = end - pos;
        if (ps.line != (unsigned)-1)
            ps.line++;
        if (n > 0 && data[end - 1] == '\r')
            n--;
        if (take_line(&ps, data + pos, n, buf, sizeof buf))
            parse_line(&ps, buf);
        pos = end + 1;
    }
    explicit_bzero(buf, sizeof buf);
    if (ps.oom) {
        policy_users_free(ps.u);
        return ps.problems;
    }
    *out = ps.u;
    return ps.problems;
}

/* ---- verification ---- */

/* Compares the crypt output with the stored hash without an early exit: the time depends on
 * the lengths only (fixed by the method), never on where the first difference is. */
static bool equal_ct(const char *computed, const char *stored)
{
    size_t clen = strlen(computed), n = strlen(stored);
    unsigned diff = clen != n;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)computed[i < clen ? i : 0] ^ (unsigned char)stored[i];
    return diff == 0;
}

enum policy_auth_result policy_users_verify(const struct policy_users *u, const char *user,
                                            const char *pass)
{
    const struct entry *e = find(u, user);
    /* The first user's hash stands in for an unknown user: same method, same cost. */
    const char *setting = e != NULL ? e->hash : (u != NULL && u->n > 0 ? u->entries[0].hash : NULL);
    if (setting == NULL)
        return POLICY_AUTH_BAD; /* no users at all: no timing to hide */
    if (strlen(pass) >= CRYPT_MAX_PASSPHRASE_SIZE)
        return POLICY_AUTH_BAD;
    struct crypt_data *cd = calloc(1, sizeof *cd); /* 32 KiB: too much for a worker's stack */
    if (cd == NULL)
        return POLICY_AUTH_TEMPFAIL;
    const char *got = crypt_rn(pass, setting, cd, sizeof *cd);
    enum policy_auth_result r = POLICY_AUTH_TEMPFAIL;
    if (got != NULL && got[0] != '*')
        r = e != NULL && equal_ct(got, e->hash) ? POLICY_AUTH_OK : POLICY_AUTH_BAD;
    explicit_bzero(cd, sizeof *cd); /* holds the passphrase */
    free(cd);
    return r;
}

/* ---- sender ownership ---- */

/* The sender's key "local@domain": local part unquoted (RFC 5321 §4.1.2) and both parts in the
 * comparison form recipient lookup uses. False when it does not fit or is malformed. */
static bool sender_key(const char *local, const char *domain, char *key, size_t cap)
{
    size_t n;
    if (!policy_local_part_key(local, key, cap > 1 ? cap - 1 : 0, &n) || n == 0)
        return false;
    key[n++] = '@';
    return domain != NULL && domain[0] != '\0' && policy_domain_canonical(domain, key + n, cap - n);
}

bool policy_users_owns_sender(const struct policy_users *u, const struct policy_config *c,
                              const char *user, const char *local, const char *domain)
{
    char key[KEY_CAP];
    if (local == NULL)
        return true;
    const struct entry *e = find(u, user);
    if (e == NULL || !sender_key(local, domain, key, sizeof key))
        return false;
    if (e->n_addrs > 0) {
        const char *a = e->addrs;
        bool owned = false;
        for (size_t i = 0; i < e->n_addrs; i++, a += strlen(a) + 1)
            owned |= strcmp(a, key) == 0;
        return owned;
    }
    if (strchr(e->name, '@') != NULL)
        return strcmp(e->name, key) == 0;
    size_t nlen = strlen(e->name);
    return strncmp(key, e->name, nlen) == 0 && key[nlen] == '@' && c != NULL &&
           policy_domain_is_local(c, domain);
}
