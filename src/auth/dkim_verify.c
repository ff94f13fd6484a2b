/* auth/dkim_verify.c — DKIM verification without I/O: each signature's tags checked, body and
 * header hashes computed with its canonicalisation, then its key record (given by the caller
 * from DNS) checked and the signature verified with OpenSSL. RFC 6376 §3.5, §3.6, §6.1;
 * RFC 8463 §3-4; RFC 8301 §3.1-3.2. */
#include "auth/dkim_verify.h"

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/canon.h"
#include "auth/dkim_sign.h"
#include "auth/tags.h"

struct sig {
    struct auth_dkim_sig_result r;
    bool decided;
    char query[320];
    bool ed25519;
    bool body_ok;
    bool i_exact; /* i= is absent or its domain is d= itself (for a key's t=s) */
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned digest_len;
    unsigned char sig[1024];
    size_t sig_len;
};

struct auth_dkim_verify {
    struct sig s[AUTH_DKIM_SIGS_MAX];
    size_t n;
};

const char *auth_dkim_result_name(enum auth_dkim_result r)
{
    switch (r) {
#define AUTH_DKIM_RESULT_TEXT(name, text) \
    case name:                            \
        return text;
        AUTH_DKIM_RESULTS(AUTH_DKIM_RESULT_TEXT)
#undef AUTH_DKIM_RESULT_TEXT
    }
    return "permerror";
}

static void decide(struct sig *s, enum auth_dkim_result r, const char *reason)
{
    s->decided = true;
    s->r.result = r;
    s->r.reason = reason;
}

/* base64 (whitespace already removed) into out; -1 when malformed or too long. */
static long b64_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap)
        return -1;
    size_t pad = (in[n - 1] == '=') + (in[n - 2] == '=');
    for (size_t i = 0; i < n - pad; i++)
        if (in[i] == '=')
            return -1;
    int got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    return got < 0 ? -1 : (long)((size_t)got - pad);
}

/* A plain domain (letters, digits, '-', '.', '_') of at most cap - 1 octets into out. */
static bool copy_domain(const struct auth_tag *t, char *out, size_t cap)
{
    if (t->value_len == 0 || t->value_len >= cap)
        return false;
    for (size_t i = 0; i < t->value_len; i++) {
        char c = t->value[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
        out[i] = c;
    }
    out[t->value_len] = '\0';
    return true;
}

static void copy_text(const struct auth_tag *t, char *out, size_t cap)
{
    size_t n = t->value_len < cap - 1 ? t->value_len : cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (t->value[i] > ' ' && t->value[i] < 0x7f) ? t->value[i] : '?';
    out[n] = '\0';
}

/* Body hashing with an optional l= cut: counts what the canonicaliser writes. */
struct body_ctx {
    EVP_MD_CTX *md;
    uint64_t left; /* octets still to hash (l=), UINT64_MAX without l= */
    bool cut;      /* l= was given */
};

static void body_out(void *ctx, const char *p, size_t n)
{
    struct body_ctx *b = ctx;
    if (n > b->left)
        n = (size_t)b->left;
    if (n == 0)
        return;
    EVP_DigestUpdate(b->md, p, n);
    b->left -= n;
}

static bool hash_body(const char *body, size_t n, bool relaxed, const EVP_MD *alg,
                      uint64_t limit, bool *too_short, unsigned char *out, unsigned *out_len)
{
    struct body_ctx b = {.md = EVP_MD_CTX_new(), .left = limit};
    bool ok = b.md != NULL && EVP_DigestInit_ex(b.md, alg, NULL) == 1;
    if (ok) {
        struct auth_canon_body cb;
        if (relaxed)
            auth_canon_body_init(&cb, body_out, &b);
        else
            auth_canon_body_init_simple(&cb, body_out, &b);
        auth_canon_body_feed(&cb, body, n);
        auth_canon_body_finish(&cb);
        *too_short = limit != UINT64_MAX && b.left > 0; /* l= longer than the body */
        ok = EVP_DigestFinal_ex(b.md, out, out_len) == 1;
    }
    EVP_MD_CTX_free(b.md);
    return ok;
}

static bool hash_header(EVP_MD_CTX *md, const char *p, size_t len, bool relaxed, bool crlf)
{
    if (!relaxed) {
        if (!crlf && len >= 2 && p[len - 2] == '\r' && p[len - 1] == '\n')
            len -= 2;
        else if (!crlf && len >= 1 && p[len - 1] == '\n')
            len -= 1;
        return EVP_DigestUpdate(md, p, len) == 1;
    }
    char stack[2048];
    char *out = len + 3 <= sizeof stack ? stack : malloc(len + 3);
    if (out == NULL)
        return false;
    size_t n = auth_canon_header(p, len, crlf, out, len + 3);
    if (n > 0 && !crlf && n >= 2 && out[n - 2] == '\r' && out[n - 1] == '\n')
        n -= 2; /* a field whose value ended in a bare fold */
    bool ok = n > 0 && EVP_DigestUpdate(md, out, n) == 1;
    if (out != stack)
        free(out);
    return ok;
}

/* The header hash of §3.7: the h= fields bottom-up, then this signature field with its b=
 * value emptied and no final CRLF. */
static bool hash_headers(struct sig *s, const EVP_MD *alg, bool relaxed, const char *hlist,
                         const struct auth_field *f, size_t n, const struct auth_field *self,
                         const struct auth_tag *b)
{
    bool *used = calloc(n ? n : 1, sizeof *used);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = used != NULL && md != NULL && EVP_DigestInit_ex(md, alg, NULL) == 1;
    for (const char *p = hlist; ok && *p;) {
        const char *e = strchr(p, ':');
        size_t nl = e ? (size_t)(e - p) : strlen(p);
        for (size_t i = n; nl > 0 && i-- > 0;) {
            if (!used[i] && f[i].name_len == nl && strncasecmp(f[i].p, p, nl) == 0) {
                used[i] = true;
                ok = hash_header(md, f[i].p, f[i].len, relaxed, true);
                break;
            }
        }
        p += nl + (e != NULL);
    }
    if (ok) {
        /* b='s value, from after '=' to the next ';' or the end, is taken out (§3.5 b=). */
        size_t start = (size_t)(b->value - self->p), end = start + b->value_len;
        while (start > 0 && self->p[start - 1] != '=')
            start--;
        while (end < self->len && self->p[end] != ';' && self->p[end] != '\r' &&
               self->p[end] != '\n')
            end++;
        char *copy = malloc(self->len);
        ok = copy != NULL;
        if (ok) {
            memcpy(copy, self->p, start);
            memcpy(copy + start, self->p + end, self->len - end);
            ok = hash_header(md, copy, self->len - (end - start), relaxed, false);
            free(copy);
        }
    }
    ok = ok && EVP_DigestFinal_ex(md, s->digest, &s->digest_len) == 1;
    EVP_MD_CTX_free(md);
    free(used);
    return ok;
}

static bool list_has(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ':');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && strncasecmp(p, name, n) == 0)
            return true;
        p += l + (e != NULL);
    }
    return false;
}

/* Everything about signature self that needs no key; decides it when it is broken. */
/* The first base64 characters of b= (whitespace left out), to tell signatures of one domain
 * apart in Authentication-Results (RFC 6008 §4: header.b, at least 8). */
static void copy_b_prefix(const struct auth_tag *t, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < t->value_len && n + 1 < cap; i++) {
        char c = t->value[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '+' || c == '/')
            out[n++] = c;
    }
    out[n] = '\0';
}

static void parse_sig(struct sig *s, const struct auth_field *self, const char *msg, size_t len,
                      size_t body, const struct auth_field *f, size_t n, int64_t now)
{
    const char *v = memchr(self->p, ':', self->len) + 1;
    size_t vl = self->len - (size_t)(v - self->p);
    struct auth_tags tags;
    if (auth_tags_parse(v, vl, &tags) != AUTH_OK)
        return decide(s, AUTH_DKIM_PERMERROR, "malformed signature");
    const struct auth_tag *tv = auth_tags_get(&tags, "v"), *ta = auth_tags_get(&tags, "a"),
                          *tb = auth_tags_get(&tags, "b"), *tbh = auth_tags_get(&tags, "bh"),
                          *td = auth_tags_get(&tags, "d"), *th = auth_tags_get(&tags, "h"),
                          *ts = auth_tags_get(&tags, "s"), *tc = auth_tags_get(&tags, "c"),
                          *ti = auth_tags_get(&tags, "i"), *tl = auth_tags_get(&tags, "l"),
                          *tx = auth_tags_get(&tags, "x");
    if (td != NULL && !copy_domain(td, s->r.domain, sizeof s->r.domain))
        s->r.domain[0] = '\0';
    if (ts != NULL && !copy_domain(ts, s->r.selector, sizeof s->r.selector))
        s->r.selector[0] = '\0';
    if (ta != NULL)
        copy_text(ta, s->r.algorithm, sizeof s->r.algorithm);
    if (tb != NULL)
        copy_b_prefix(tb, s->r.b_prefix, sizeof s->r.b_prefix);
    if (!tv || !ta || !tb || !tbh || !td || !th || !ts)
        return decide(s, AUTH_DKIM_PERMERROR, "a required tag is missing");
    if (!auth_tag_is(tv, "1"))
        return decide(s, AUTH_DKIM_PERMERROR, "unknown signature version");
    if (s->r.domain[0] == '\0' || s->r.selector[0] == '\0')
        return decide(s, AUTH_DKIM_PERMERROR, "malformed d= or s=");
    const EVP_MD *alg = EVP_sha256();
    if (auth_tag_is(ta, "rsa-sha1"))
        return decide(s, AUTH_DKIM_PERMERROR, "rsa-sha1 is not acceptable (RFC 8301)");
    else if (auth_tag_is(ta, "ed25519-sha256"))
        s->ed25519 = true;
    else if (!auth_tag_is(ta, "rsa-sha256"))
        return decide(s, AUTH_DKIM_PERMERROR, "unknown algorithm");
    bool hrelaxed = false, brelaxed = false;
    if (tc != NULL) {
        char c[32];
        if (auth_tag_squeeze(tc, c, sizeof c) == 0)
            return decide(s, AUTH_DKIM_PERMERROR, "unknown canonicalisation");
        char *slash = strchr(c, '/');
        if (slash)
            *slash = '\0';
        const char *hc = c, *bc = slash ? slash + 1 : "simple";
        if ((strcmp(hc, "relaxed") != 0 && strcmp(hc, "simple") != 0) ||
            (strcmp(bc, "relaxed") != 0 && strcmp(bc, "simple") != 0))
            return decide(s, AUTH_DKIM_PERMERROR, "unknown canonicalisation");
        hrelaxed = strcmp(hc, "relaxed") == 0;
        brelaxed = strcmp(bc, "relaxed") == 0;
    }
    char hlist[2048];
    if (auth_tag_squeeze(th, hlist, sizeof hlist) == 0 || !list_has(hlist, "from"))
        return decide(s, AUTH_DKIM_PERMERROR, "From: is not signed");
    s->i_exact = true;
    if (ti != NULL) {
        const char *at = memchr(ti->value, '@', ti->value_len);
        if (at == NULL)
            return decide(s, AUTH_DKIM_PERMERROR, "malformed i=");
        size_t il = ti->value_len - (size_t)(at + 1 - ti->value), dl = strlen(s->r.domain);
        const char *id = at + 1;
        bool same = il == dl && strncasecmp(id, s->r.domain, dl) == 0;
        bool sub = il > dl && id[il - dl - 1] == '.' && strncasecmp(id + il - dl, s->r.domain, dl) == 0;
        if (!same && !sub)
            return decide(s, AUTH_DKIM_PERMERROR, "i= is not within d=");
        s->i_exact = same;
    }
    uint64_t limit = UINT64_MAX;
    if (tl != NULL) {
        limit = 0;
        if (tl->value_len == 0 || tl->value_len > 76)
            return decide(s, AUTH_DKIM_PERMERROR, "malformed l=");
        for (size_t i = 0; i < tl->value_len; i++) {
            if (tl->value[i] < '0' || tl->value[i] > '9')
                return decide(s, AUTH_DKIM_PERMERROR, "malformed l=");
            unsigned d = (unsigned)(tl->value[i] - '0');
            limit = limit > (UINT64_MAX - 1 - d) / 10 ? UINT64_MAX - 1 : limit * 10 + d;
        }
    }
    if (tx != NULL) {
        int64_t x = 0;
        for (size_t i = 0; i < tx->value_len && i < 18; i++) {
            if (tx->value[i] < '0' || tx->value[i] > '9')
                return decide(s, AUTH_DKIM_PERMERROR, "malformed x=");
            x = x * 10 + (tx->value[i] - '0');
        }
        if (x < now)
            return decide(s, AUTH_DKIM_PERMERROR, "signature expired");
    }
    char b64[2048];
    size_t bl = auth_tag_squeeze(tb, b64, sizeof b64);
    long got = b64_decode(b64, bl, s->sig, sizeof s->sig);
    if (got <= 0)
        return decide(s, AUTH_DKIM_PERMERROR, "malformed b=");
    s->sig_len = (size_t)got;
    unsigned char want[EVP_MAX_MD_SIZE], have[EVP_MAX_MD_SIZE];
    bl = auth_tag_squeeze(tbh, b64, sizeof b64);
    got = b64_decode(b64, bl, want, sizeof want);
    unsigned have_len = 0;
    bool too_short = false;
    if (got <= 0)
        return decide(s, AUTH_DKIM_PERMERROR, "malformed bh=");
    if (!hash_body(msg + body, len - body, brelaxed, alg, limit, &too_short, have, &have_len) ||
        !hash_headers(s, alg, hrelaxed, hlist, f, n, self, tb))
        return decide(s, AUTH_DKIM_TEMPERROR, "out of memory");
    s->body_ok = !too_short && (size_t)got == have_len && memcmp(want, have, have_len) == 0;
    int q = snprintf(s->query, sizeof s->query, "%s._domainkey.%s", s->r.selector, s->r.domain);
    if (q < 0 || q > 253)
        return decide(s, AUTH_DKIM_PERMERROR, "key name too long");
    s->r.result = AUTH_DKIM_TEMPERROR;
    s->r.reason = "key not looked up";
}

enum auth_err auth_dkim_verify_new(const char *msg, size_t len, int64_t now,
                                   struct auth_dkim_verify **out)
{
    *out = NULL;
    size_t n = 0, body = 0;
    auth_fields_split(msg, len, NULL, 0, &n, &body);
    if (n > AUTH_DKIM_FIELDS_MAX)
        return AUTH_ERR_TOO_BIG;
    struct auth_field *f = calloc(n ? n : 1, sizeof *f);
    struct auth_dkim_verify *v = calloc(1, sizeof *v);
    if (f == NULL || v == NULL) {
        free(f);
        free(v);
        return AUTH_ERR_NOMEM;
    }
    auth_fields_split(msg, len, f, n, &n, &body);
    for (size_t i = 0; i < n && v->n < AUTH_DKIM_SIGS_MAX; i++)
        if (auth_field_is(&f[i], "dkim-signature"))
            parse_sig(&v->s[v->n++], &f[i], msg, len, body, f, n, now);
    free(f);
    *out = v;
    return AUTH_OK;
}

void auth_dkim_verify_free(struct auth_dkim_verify *v)
{
    free(v);
}

size_t auth_dkim_verify_count(const struct auth_dkim_verify *v)
{
    return v ? v->n : 0;
}

const char *auth_dkim_verify_key_query(const struct auth_dkim_verify *v, size_t i)
{
    return i < v->n && !v->s[i].decided ? v->s[i].query : NULL;
}

const struct auth_dkim_sig_result *auth_dkim_verify_result(const struct auth_dkim_verify *v,
                                                           size_t i)
{
    return i < v->n ? &v->s[i].r : NULL;
}

/* The key record's tags checked against the signature; decides it when they do not fit. */
static EVP_PKEY *key_from_record(struct sig *s, const char *rec, size_t len)
{
    struct auth_tags tags;
    if (auth_tags_parse(rec, len, &tags) != AUTH_OK) {
        decide(s, AUTH_DKIM_PERMERROR, "malformed key record");
        return NULL;
    }
    const struct auth_tag *tv = auth_tags_get(&tags, "v"), *tk = auth_tags_get(&tags, "k"),
                          *tp = auth_tags_get(&tags, "p"), *th = auth_tags_get(&tags, "h"),
                          *ts = auth_tags_get(&tags, "s"), *tt = auth_tags_get(&tags, "t");
    if ((tv != NULL && (!auth_tag_is(tv, "DKIM1") || tags.t[0].name != tv->name)) || tp == NULL) {
        decide(s, AUTH_DKIM_PERMERROR, "malformed key record");
        return NULL;
    }
    bool ed = tk != NULL && auth_tag_is(tk, "ed25519");
    if ((tk != NULL && !ed && !auth_tag_is(tk, "rsa")) || ed != s->ed25519) {
        decide(s, AUTH_DKIM_PERMERROR, "key type does not match the algorithm");
        return NULL;
    }
    char list[256];
    if (th != NULL && (auth_tag_squeeze(th, list, sizeof list) == 0 || !list_has(list, "sha256"))) {
        decide(s, AUTH_DKIM_PERMERROR, "key not for sha256");
        return NULL;
    }
    if (ts != NULL && (auth_tag_squeeze(ts, list, sizeof list) == 0 ||
                       (!list_has(list, "*") && !list_has(list, "email")))) {
        decide(s, AUTH_DKIM_PERMERROR, "key not for email");
        return NULL;
    }
    if (tt != NULL && auth_tag_squeeze(tt, list, sizeof list) > 0 && list_has(list, "s") &&
        !s->i_exact) {
        decide(s, AUTH_DKIM_PERMERROR, "key requires i= to be d= (t=s)");
        return NULL;
    }
    char b64[4096];
    unsigned char raw[3072];
    size_t bl = auth_tag_squeeze(tp, b64, sizeof b64);
    if (tp->value_len == 0) {
        decide(s, AUTH_DKIM_PERMERROR, "key revoked (empty p=)");
        return NULL;
    }
    long rl = b64_decode(b64, bl, raw, sizeof raw);
    EVP_PKEY *pkey = NULL;
    if (rl > 0 && ed) {
        if (rl == 32)
            pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32);
    } else if (rl > 0) {
        const unsigned char *p = raw;
        pkey = d2i_PUBKEY(NULL, &p, rl);
        if (pkey != NULL && EVP_PKEY_id(pkey) != EVP_PKEY_RSA) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
        if (pkey != NULL && EVP_PKEY_bits(pkey) < 1024) {
            EVP_PKEY_free(pkey);
            decide(s, AUTH_DKIM_PERMERROR, "RSA key shorter than 1024 bits (RFC 8301)");
            return NULL;
        }
    }
    if (pkey == NULL)
        decide(s, AUTH_DKIM_PERMERROR, "unusable public key");
    return pkey;
}

static bool signature_verifies(struct sig *s, EVP_PKEY *pkey)
{
    bool ok = false;
    if (s->ed25519) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        ok = md != NULL && EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) == 1 &&
             EVP_DigestVerify(md, s->sig, s->sig_len, s->digest, s->digest_len) == 1;
        EVP_MD_CTX_free(md);
        return ok;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
    ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
         EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
         EVP_PKEY_verify(ctx, s->sig, s->sig_len, s->digest, s->digest_len) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

void auth_dkim_verify_key_answer(struct auth_dkim_verify *v, size_t i, enum auth_dns_status st,
                                 const char *const *records, const size_t *lens, size_t n)
{
    if (i >= v->n || v->s[i].decided)
        return;
    struct sig *s = &v->s[i];
    if (st == AUTH_DNS_TEMPFAIL)
        return decide(s, AUTH_DKIM_TEMPERROR, "key look-up failed for now");
    if (st == AUTH_DNS_NXDOMAIN || st == AUTH_DNS_NODATA || n == 0)
        return decide(s, AUTH_DKIM_PERMERROR, "no key record");
    /* Several records: the first is used (§3.6.2.2 leaves the choice to the verifier). */
    EVP_PKEY *pkey = key_from_record(s, records[0], lens[0]);
    if (pkey == NULL)
        return;
    if (!s->body_ok)
        decide(s, AUTH_DKIM_FAIL, "body hash mismatch");
    else if (!signature_verifies(s, pkey))
        decide(s, AUTH_DKIM_FAIL, "signature does not verify");
    else
        decide(s, AUTH_DKIM_PASS, "good signature");
    EVP_PKEY_free(pkey);
}
