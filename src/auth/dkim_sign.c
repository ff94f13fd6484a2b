/* auth/dkim_sign.c — DKIM signing: body hash, the signed header fields (From oversigned), the
 * DKIM-Signature field itself, rsa-sha256 or ed25519-sha256; the signing domains by the
 * From: domain (auth/from.c). RFC 6376 §3.5, §3.7, §5; RFC 8463 §3. */
#include "auth/dkim_sign.h"

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/canon.h"
#include "auth/from.h"

/* A growing output buffer; a failed growth is sticky and reported once at the end. */
struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct buf *b, const char *p, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (q == NULL) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void hash_out(void *ctx, const char *p, size_t n)
{
    EVP_DigestUpdate(ctx, p, n);
}

static bool b64(const unsigned char *raw, size_t n, char *out, size_t cap)
{
    if ((n + 2) / 3 * 4 + 1 > cap)
        return false;
    EVP_EncodeBlock((unsigned char *)out, raw, (int)n);
    return true;
}

/* SHA-256 of the relaxed canonical body, base64 (bh=). */
static bool body_hash(const char *body, size_t n, char *out, size_t cap)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned hlen = 0;
    bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    if (ok) {
        struct auth_canon_body cb;
        auth_canon_body_init(&cb, hash_out, md);
        auth_canon_body_feed(&cb, body, n);
        auth_canon_body_finish(&cb);
        ok = EVP_DigestFinal_ex(md, h, &hlen) == 1 && b64(h, hlen, out, cap);
    }
    EVP_MD_CTX_free(md);
    return ok;
}

/* Adds the canonical form of f to the header hash. */
static bool hash_field(EVP_MD_CTX *md, const char *p, size_t len, bool crlf)
{
    char stack[2048];
    char *out = len + 3 <= sizeof stack ? stack : malloc(len + 3);
    if (out == NULL)
        return false;
    size_t n = auth_canon_header(p, len, crlf, out, len + 3);
    bool ok = n > 0 && EVP_DigestUpdate(md, out, n) == 1;
    if (out != stack)
        free(out);
    return ok;
}

static size_t count_named(const struct auth_field *f, size_t n, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += auth_field_is(&f[i], name);
    return c;
}

/* The h= list: every configured name as often as the message has it, From once more. Names
 * are checked as plain field names (printable, no colon) by the caller's configuration. */
static void signed_names(const char *headers, const struct auth_field *f, size_t n,
                         struct buf *h)
{
    char seen[1024] = ":";
    size_t seen_len = 1;
    char list[1024];
    int ln = snprintf(list, sizeof list, "from:%s", headers ? headers : AUTH_DKIM_DEFAULT_HEADERS);
    if (ln < 0 || (size_t)ln >= sizeof list)
        list[sizeof list - 1] = '\0';
    for (char *save = NULL, *name = strtok_r(list, ":", &save); name;
         name = strtok_r(NULL, ":", &save)) {
        size_t nl = strlen(name);
        for (size_t i = 0; i < nl; i++)
            if (name[i] >= 'A' && name[i] <= 'Z')
                name[i] = (char)(name[i] - 'A' + 'a');
        char key[130];
        if (nl == 0 || nl + 3 > sizeof key)
            continue;
        snprintf(key, sizeof key, ":%s:", name);
        if (strstr(seen, key) != NULL || seen_len + nl + 1 >= sizeof seen)
            continue; /* each name once in the list, however often configured */
        memcpy(seen + seen_len, name, nl);
        seen_len += nl;
        seen[seen_len++] = ':';
        seen[seen_len] = '\0';
        size_t times = count_named(f, n, name) + (strcmp(name, "from") == 0);
        for (size_t t = 0; t < times; t++) {
            if (h->len > 0)
                put(h, ":", 1);
            put(h, name, nl);
        }
    }
}

/* The header hash input of §3.7: for each name of h=, the last field of that name not yet
 * used (bottom up); a name with none left adds nothing (how oversigning works). signed_names
 * lists a name's occurrences one after another, so the search for the next of the same name
 * goes on upwards from the last one found: each name costs one pass over the fields, however
 * many fields the message has. */
static bool hash_signed_fields(EVP_MD_CTX *md, const char *hlist, const struct auth_field *f,
                               size_t n, bool *used)
{
    const char *p = hlist, *prev = NULL;
    size_t prev_len = 0, below = n; /* fields [0, below) are left to search for prev's name */
    while (*p) {
        const char *e = strchr(p, ':');
        size_t nl = e ? (size_t)(e - p) : strlen(p);
        char name[128];
        if (nl < sizeof name) {
            memcpy(name, p, nl);
            name[nl] = '\0';
            if (prev == NULL || nl != prev_len || memcmp(prev, p, nl) != 0)
                below = n;
            size_t i = below;
            while (i > 0 && (used[i - 1] || !auth_field_is(&f[i - 1], name)))
                i--;
            below = i > 0 ? i - 1 : 0;
            if (i > 0) {
                used[i - 1] = true;
                if (!hash_field(md, f[i - 1].p, f[i - 1].len, true))
                    return false;
            }
            prev = p;
            prev_len = nl;
        }
        p += nl + (e != NULL);
    }
    return true;
}

/* Appends value to the field, folded before it when the line would pass 76 columns; folds
 * only go where FWS is allowed: after "; " between tags and after a colon of h=. */
static void put_folded(struct buf *b, size_t *col, const char *v, size_t n)
{
    if (*col + n > 76 && *col > 1) {
        put(b, "\r\n\t", 3);
        *col = 1;
    }
    put(b, v, n);
    *col += n;
}

static bool sign_digest(const struct auth_dkim_key *k, const unsigned char *dg, size_t dglen,
                        unsigned char *sig, size_t *siglen)
{
    EVP_PKEY *pkey = auth_dkim_key_pkey(k);
    bool ok = false;
    if (auth_dkim_key_alg(k) == AUTH_DKIM_ED25519_SHA256) {
        /* RFC 8463 §3: PureEdDSA over the SHA-256 hash of the header data. */
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        ok = md != NULL && EVP_DigestSignInit(md, NULL, NULL, NULL, pkey) == 1 &&
             EVP_DigestSign(md, sig, siglen, dg, dglen) == 1;
        EVP_MD_CTX_free(md);
        return ok;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
    ok = ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
         EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
         EVP_PKEY_sign(ctx, sig, siglen, dg, dglen) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

enum auth_err auth_dkim_sign(const struct auth_dkim_signer *s, const char *msg, size_t len,
                             int64_t now, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    size_t n = 0, body = 0;
    auth_fields_split(msg, len, NULL, 0, &n, &body); /* no cap: DATA bounds the header */
    struct auth_field *f = calloc(n ? n : 1, sizeof *f);
    bool *used = calloc(n ? n : 1, sizeof *used);
    struct buf hl = {0}, sig = {0};
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    enum auth_err err = AUTH_ERR_NOMEM;
    if (f == NULL || used == NULL || md == NULL)
        goto done;
    auth_fields_split(msg, len, f, n, &n, &body);
    char bh[64];
    err = AUTH_ERR_CRYPTO;
    if (!body_hash(msg + body, len - body, bh, sizeof bh))
        goto done;
    signed_names(s->headers, f, n, &hl);
    if (hl.oom)
        goto nomem;

    size_t col = 0;
    char tag[512];
    puts_(&sig, "DKIM-Signature: v=1; ");
    col = sig.len;
    snprintf(tag, sizeof tag, "a=%s; ", auth_dkim_alg_name(auth_dkim_key_alg(s->key)));
    put_folded(&sig, &col, tag, strlen(tag));
    put_folded(&sig, &col, "c=relaxed/relaxed; ", 19);
    snprintf(tag, sizeof tag, "d=%s; ", s->domain);
    put_folded(&sig, &col, tag, strlen(tag));
    snprintf(tag, sizeof tag, "s=%s; ", s->selector);
    put_folded(&sig, &col, tag, strlen(tag));
    snprintf(tag, sizeof tag, "t=%lld; ", (long long)now);
    put_folded(&sig, &col, tag, strlen(tag));
    put_folded(&sig, &col, "h=", 2);
    for (const char *p = hl.p; p && *p;) { /* one name (and its colon) at a time */
        const char *e = strchr(p, ':');
        size_t nl = e ? (size_t)(e - p) + 1 : strlen(p);
        put_folded(&sig, &col, p, nl);
        p += nl;
    }
    put_folded(&sig, &col, "; ", 2);
    snprintf(tag, sizeof tag, "bh=%s; ", bh);
    put_folded(&sig, &col, tag, strlen(tag));
    put_folded(&sig, &col, "b=", 2);
    if (sig.oom)
        goto nomem;

    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned dglen = 0;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        !hash_signed_fields(md, hl.p, f, n, used) ||
        !hash_field(md, sig.p, sig.len, false) || EVP_DigestFinal_ex(md, dg, &dglen) != 1)
        goto done;
    unsigned char raw[1024];
    size_t rawlen = sizeof raw;
    if (EVP_PKEY_get_size(auth_dkim_key_pkey(s->key)) > (int)sizeof raw ||
        !sign_digest(s->key, dg, dglen, raw, &rawlen))
        goto done;
    char b[1400];
    if (!b64(raw, rawlen, b, sizeof b))
        goto done;
    for (size_t i = 0, bl = strlen(b); i < bl; i += 64) /* b= may be folded anywhere (FWS) */
        put_folded(&sig, &col, b + i, bl - i < 64 ? bl - i : 64);
    put(&sig, "\r\n", 2);
    if (sig.oom)
        goto nomem;
    *out = sig.p;
    *out_len = sig.len;
    sig.p = NULL;
    err = AUTH_OK;
    goto done;
nomem:
    err = AUTH_ERR_NOMEM;
done:
    EVP_MD_CTX_free(md);
    free(f);
    free(used);
    free(hl.p);
    free(sig.p);
    return err;
}

/* ---- the signing domains --------------------------------------------------------------- */

struct entry {
    char *domain, *selector, *headers;
    struct auth_dkim_key *key;
};

struct auth_dkim_signers {
    struct entry *e;
    size_t n;
};

struct auth_dkim_signers *auth_dkim_signers_new(void)
{
    return calloc(1, sizeof(struct auth_dkim_signers));
}

enum auth_err auth_dkim_signers_add(struct auth_dkim_signers *set, const char *domain,
                                    const char *selector, const char *headers,
                                    struct auth_dkim_key *key)
{
    struct entry e = {.domain = strdup(domain), .selector = strdup(selector),
                      .headers = headers ? strdup(headers) : NULL, .key = key};
    struct entry *ne = realloc(set->e, (set->n + 1) * sizeof *ne);
    if (e.domain == NULL || e.selector == NULL || (headers && e.headers == NULL) || ne == NULL) {
        if (ne != NULL)
            set->e = ne;
        free(e.domain);
        free(e.selector);
        free(e.headers);
        auth_dkim_key_free(key);
        return AUTH_ERR_NOMEM;
    }
    for (char *p = e.domain; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    set->e = ne;
    set->e[set->n++] = e;
    return AUTH_OK;
}

size_t auth_dkim_signers_count(const struct auth_dkim_signers *set)
{
    return set ? set->n : 0;
}

void auth_dkim_signers_free(struct auth_dkim_signers *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++) {
        free(set->e[i].domain);
        free(set->e[i].selector);
        free(set->e[i].headers);
        auth_dkim_key_free(set->e[i].key);
    }
    free(set->e);
    free(set);
}

enum auth_err auth_dkim_signers_sign(const struct auth_dkim_signers *set, const char *msg,
                                     size_t len, int64_t now, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    struct auth_from from;
    auth_from_authors(msg, len, &from);
    if (from.status != AUTH_FROM_OK)
        return AUTH_ERR_NO_FROM;
    for (size_t d = 0; d < from.n; d++) {
        for (size_t i = 0; set && i < set->n; i++) {
            if (strcmp(set->e[i].domain, from.domains[d]) == 0) {
                struct auth_dkim_signer s = {.domain = set->e[i].domain,
                                             .selector = set->e[i].selector,
                                             .headers = set->e[i].headers, .key = set->e[i].key};
                return auth_dkim_sign(&s, msg, len, now, out, out_len);
            }
        }
    }
    return AUTH_ERR_NO_SIGNER;
}
