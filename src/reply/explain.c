/* reply/explain.c — explains a reply, a code or a bounce/log line: finds the code, classifies
 * it, and names the bounce reason from the code tables refined by the phrases of patterns.def.
 * RFC 5321 §4.2, RFC 3463, RFC 3464 (Diagnostic-Code). */
#include "reply/explain.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "reply/bytes.h"

/* ---- the tables --------------------------------------------------------------------------- */

#define ANY 0u
#define WEAK REPLY_PAT_WEAK
#define TEMP REPLY_PAT_TEMP
#define PERM REPLY_PAT_PERM

const struct reply_pattern reply_pattern_table[] = {
#define PATTERN(reason, flags, phrase, cause, action) \
    {REASON_##reason, flags, phrase, sizeof(phrase) - 1, cause, action},
#include "reply/patterns.def"
};
const size_t reply_pattern_count = sizeof reply_pattern_table / sizeof reply_pattern_table[0];

#define PATTERN_COUNT (sizeof reply_pattern_table / sizeof reply_pattern_table[0])
_Static_assert(PATTERN_COUNT < UINT16_MAX, "the phrase index holds row numbers in 16 bits");

static const struct reply_reason_info reason_infos[REASON__COUNT] = {
#define REASON_INFO(reason, summary, cause, action, retry) \
    [REASON_##reason] = {summary, cause, action, retry},
#include "reply/patterns.def"
};

const struct reply_reason_info *reply_reason_info(enum reply_reason reason)
{
    if ((unsigned)reason >= REASON__COUNT)
        return NULL;
    return &reason_infos[reason];
}

const char *reply_explain_strerror(enum reply_explain_err err)
{
    switch (err) {
#define X(name, text) \
    case name:        \
        return text;
        REPLY_EXPLAIN_ERRORS(X)
#undef X
    }
    return "unknown explain error";
}

const char *reply_explain_note_text(enum reply_note note)
{
    switch (note) {
#define X(name, text) \
    case name:        \
        return text;
        REPLY_EXPLAIN_NOTES(X)
#undef X
    case REPLY_NOTE__COUNT:
        break;
    }
    return NULL;
}

static const char RETRY_TRANSIENT[] = "retry later: the sending MTA's queue retries automatically, "
                                      "typically within minutes, for up to about 5 days";
static const char RETRY_PERMANENT[] = "do not retry unchanged: fix the cause first";
static const char RETRY_SUCCESS[] = "no retry needed: the command succeeded";
static const char RETRY_INTERMEDIATE[] =
    "not a failure: send the next part (after 354, the message text ending with <CRLF>.<CRLF>)";

/* ---- bytes -------------------------------------------------------------------------------- */

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool is_space(unsigned char c)
{
    return reply_byte_class[c] & REPLY_BYTE_SPACE;
}

static bool is_digit(unsigned char c)
{
    return reply_byte_class[c] & REPLY_BYTE_DIGIT;
}

static bool is_word(unsigned char c)
{
    return reply_byte_class[c] & REPLY_BYTE_WORD;
}

static const unsigned char *bytes(const char *s)
{
    return (const unsigned char *)s;
}

static enum reply_explain_err check_bytes(const unsigned char *s, size_t len)
{
    unsigned seen = 0, visible = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned c = reply_byte_class[s[i]];
        seen |= c;
        visible |= ~c & REPLY_BYTE_SPACE;
    }
    if (seen & REPLY_BYTE_CONTROL)
        return REPLY_EXPLAIN_BINARY;
    return visible ? REPLY_EXPLAIN_OK : REPLY_EXPLAIN_EMPTY;
}

/* ---- finding the code --------------------------------------------------------------------- */

/* An enhanced code X.Y.Z at s[i], as its own token (a final sentence dot is allowed), with a
 * registered subject 0..7. */
static bool enhanced_at(const unsigned char *s, size_t len, size_t i, struct reply_status *st,
                        size_t *used)
{
    size_t e = i;
    while (e < len && (is_digit(s[e]) || s[e] == '.'))
        e++;
    if (e == i || (e < len && is_word(s[e])))
        return false;
    size_t n = e - i;
    if (s[e - 1] == '.')
        n--;
    struct reply_status tmp;
    size_t u = 0;
    if (!reply_status_parse((const char *)s + i, n, &tmp, &u) || u != n || tmp.subject > 7)
        return false;
    *st = tmp;
    *used = n;
    return true;
}

/* A code may start a token: not inside a word, a number, a dotted address or a date. */
static bool token_start(const unsigned char *s, size_t i)
{
    if (i == 0)
        return true;
    unsigned char p = s[i - 1];
    return !is_word(p) && p != '.' && p != '-' && p != '/' && p != '_' && p != '+';
}

/* Where replies stand in logs and bounces: at a line start, or after "said:", "smtp;",
 * "returned '", "(", "<<<", "=" … */
static bool reply_position(const unsigned char *s, size_t i)
{
    while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
        i--;
    if (i == 0)
        return true;
    return strchr("\n\r:;(\"'<>[", s[i - 1]) != NULL;
}

static bool word_is(const unsigned char *s, size_t len, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == len) {
            size_t k = 0;
            while (k < len && lower(s[k]) == (unsigned char)(*list)[k])
                k++;
            if (k == len)
                return true;
        }
    return false;
}

/* A number that counts something ("port 465", "450 bytes", "limit of 500 recipients") is
 * not a reply code, whatever its digits. */
static bool counts_something(const unsigned char *s, size_t len, size_t i)
{
    static const char *const before[] = {"port", "size", "of", "than", "limit", "max",
                                         "maximum", "over", "after", "within", NULL};
    static const char *const after[] = {"bytes", "byte", "octets", "kb", "mb", "seconds",
                                        "secs", "minutes", "hours", "days", "ms", NULL};
    size_t b = i;
    while (b > 0 && (s[b - 1] == ' ' || s[b - 1] == '\t'))
        b--;
    size_t w = b;
    while (w > 0 && is_word(s[w - 1]))
        w--;
    if (b > w && word_is(s + w, b - w, before))
        return true;
    size_t a = i + 3;
    while (a < len && (s[a] == ' ' || s[a] == '\t'))
        a++;
    size_t e = a;
    while (e < len && is_word(s[e]))
        e++;
    return e > a && word_is(s + a, e - a, after);
}

struct found {
    size_t pos, end; /* the code's offset and the offset after the code(s) */
    int code;        /* 0 for a bare enhanced code */
    struct reply_status st;
    int score;
};

enum {
    SCORE_NONE = -2,
    SCORE_PROSE = -1,        /* a basic code somewhere in prose */
    SCORE_BARE_ENHANCED = 0, /* an enhanced code alone ("dsn=5.1.1") */
    SCORE_BASIC = 1,         /* a basic code where replies stand */
    SCORE_MISMATCH = 2,      /* basic + enhanced of another class */
    SCORE_MATCH = 3          /* basic + enhanced of the same class */
};

/* A basic code 2xx-5xx at s[i] followed by end, white space or '-' (a continuation line), and
 * the enhanced code after it if any. */
static bool basic_at(const unsigned char *s, size_t len, size_t i, struct found *f)
{
    if (i + 3 > len || s[i] < '2' || s[i] > '5' || !is_digit(s[i + 1]) || !is_digit(s[i + 2]))
        return false;
    if (i > 0 && s[i - 1] == '=') /* a log field: size=450, nrcpt=250 */
        return false;
    size_t j = i + 3;
    if (j < len && !is_space(s[j]) && s[j] != '-')
        return false;
    f->pos = i;
    f->end = j;
    f->code = (s[i] - '0') * 100 + (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
    f->st.cls = 0;
    if (j < len && s[j] != '\n' && s[j] != '\r') {
        size_t k = j + 1;
        while (k < len && (s[k] == ' ' || s[k] == '\t'))
            k++;
        if (k < len && s[k] == '#') /* Cisco IronPort: "550 #5.1.0 Address rejected" */
            k++;
        size_t used;
        if (enhanced_at(s, len, k, &f->st, &used))
            f->end = k + used;
    }
    /* "555-1234" is a telephone number, not a continuation line */
    if (j < len && s[j] == '-' && f->st.cls == 0 && j + 1 < len && is_digit(s[j + 1]))
        return false;
    if (f->st.cls != 0)
        f->score = f->st.cls == f->code / 100 ? SCORE_MATCH : SCORE_MISMATCH;
    else if (counts_something(s, len, i))
        return false;
    else
        f->score = reply_position(s, i) ? SCORE_BASIC : SCORE_PROSE;
    return true;
}

/* The best code in the input: the first of the highest score. A basic code without its own
 * enhanced code borrows the first bare enhanced code of the same class ("dsn=5.1.1, … said:
 * 550 User unknown"). */
static bool find_code(const unsigned char *s, size_t len, struct found *best)
{
    struct found bare = {.score = SCORE_NONE};
    best->score = SCORE_NONE;
    for (size_t i = 0; i < len && best->score < SCORE_MATCH; i++) {
        if (!is_digit(s[i]) || !token_start(s, i))
            continue;
        struct found f = {.score = SCORE_NONE};
        size_t used;
        if (basic_at(s, len, i, &f)) {
            if (f.score > best->score)
                *best = f;
        } else if (enhanced_at(s, len, i, &f.st, &used)) {
            f.pos = i;
            f.end = i + used;
            f.code = 0;
            f.score = SCORE_BARE_ENHANCED;
            if (bare.score == SCORE_NONE)
                bare = f;
            if (f.score > best->score)
                *best = f;
        }
    }
    if (best->score == SCORE_NONE)
        return false;
    if (best->code != 0 && best->st.cls == 0 && bare.score != SCORE_NONE &&
        bare.st.cls == best->code / 100)
        best->st = bare.st;
    return true;
}

/* The input starts with a token shaped like a code: three digits, or digits.digits.digits. */
static bool code_shaped(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len && is_space(s[i]))
        i++;
    size_t start = i, dots = 0, run = 0;
    bool ok = true;
    for (; i < len && !is_space(s[i]) && s[i] != '-'; i++) {
        if (is_digit(s[i])) {
            run++;
        } else if (s[i] == '.' && run > 0) {
            dots++;
            run = 0;
        } else {
            ok = false;
        }
    }
    if (!ok || run == 0)
        return false;
    return (dots == 0 && i - start == 3) || dots == 2;
}

/* ---- phrases ------------------------------------------------------------------------------ */

/* Phrases are matched against a normalised copy of the text: lowercase, each run of white
 * space one ' ', the continuation prefixes of multi-line replies ("550-5.1.1 ", also where a
 * bounce joined the lines with spaces) dropped and a typographic apostrophe made '\''. A phrase
 * then matches where its bytes are equal, and its first eight bytes compare in one go. */
#define NORM_MAX (64u * 1024u) /* text looked at for phrases; a reply is far shorter */
#define NORM_PAD 8u

/* Phrases are indexed by their first two bytes, so each text position looks at the few rows
 * that can start there instead of all of them: a day of logs stays a matter of seconds. */
#define BUCKET_COUNT 4096u
static uint16_t bucket_first[BUCKET_COUNT + 1];
static uint16_t bucket_rows[PATTERN_COUNT];
/* The first eight bytes of each row, for a one-compare rejection before the whole compare. A
 * row's signature stops at '*', which matches more than itself. */
static uint64_t row_sig[PATTERN_COUNT], row_mask[PATTERN_COUNT];
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static void row_signature(const struct reply_pattern *p, uint64_t *sig, uint64_t *mask)
{
    unsigned char b[8] = {0}, m[8] = {0};
    for (size_t k = 0; k < 8 && k < p->len && p->phrase[k] != '*'; k++) {
        b[k] = bytes(p->phrase)[k];
        m[k] = 0xff;
    }
    memcpy(sig, b, 8);
    memcpy(mask, m, 8);
}

static unsigned bucket_of(unsigned char a, unsigned char b)
{
    return ((unsigned)a * 31u + (unsigned)b) & (BUCKET_COUNT - 1);
}

/* A row is usable when it starts with a letter or digit followed by a plain byte (not a
 * space, '*' or an apostrophe, which match more than themselves); the unit test checks that
 * all are. */
static bool row_usable(const struct reply_pattern *p)
{
    const unsigned char *ph = bytes(p->phrase);
    return p->len >= 2 && is_word(ph[0]) && ph[0] < 0x80 && ph[1] != ' ' && ph[1] != '*' &&
           ph[1] != '\'';
}

static void index_build(void)
{
    static uint16_t fill[BUCKET_COUNT];
    for (size_t r = 0; r < PATTERN_COUNT; r++) {
        const struct reply_pattern *p = &reply_pattern_table[r];
        row_signature(p, &row_sig[r], &row_mask[r]);
        if (row_usable(p))
            bucket_first[bucket_of(bytes(p->phrase)[0], bytes(p->phrase)[1]) + 1]++;
    }
    for (size_t b = 0; b < BUCKET_COUNT; b++) {
        bucket_first[b + 1] = (uint16_t)(bucket_first[b + 1] + bucket_first[b]);
        fill[b] = bucket_first[b];
    }
    /* Rows enter their bucket in table order, so a bucket is sorted by priority. */
    for (size_t r = 0; r < PATTERN_COUNT; r++) {
        const struct reply_pattern *p = &reply_pattern_table[r];
        if (row_usable(p))
            bucket_rows[fill[bucket_of(bytes(p->phrase)[0], bytes(p->phrase)[1])]++] = (uint16_t)r;
    }
}

/* After white space: skips the continuation prefix of a multi-line reply ("550-5.1.1 ", or
 * "550 5.1.1 " after a line break, or where a bounce joined the lines). */
static size_t skip_continuation(const unsigned char *s, size_t len, size_t j, bool newline)
{
    if (j + 4 > len || s[j] < '2' || s[j] > '5' || !is_digit(s[j + 1]) || !is_digit(s[j + 2]))
        return j;
    if (!(s[j + 3] == '-' || (newline && s[j + 3] == ' ')))
        return j;
    size_t k = j + 4, used;
    struct reply_status st;
    if (enhanced_at(s, len, k, &st, &used))
        k += used;
    else if (s[j + 3] == ' ')
        return j; /* "… \n250 bytes" is text, not a prefix */
    while (k < len && is_space(s[k]))
        k++;
    return k;
}

/* The normalised text of s[0..len) into out (NORM_MAX + NORM_PAD bytes, zero padded); returns
 * its length. */
static size_t normalise(const unsigned char *s, size_t len, unsigned char *out)
{
    size_t n = 0, i = 0;
    while (i < len && n < NORM_MAX) {
        unsigned char c = s[i];
        if (is_space(c)) {
            while (i < len && is_space(s[i]))
                i++;
            /* a prefix after white space, as a phrase reads it across lines */
            i = skip_continuation(s, len, i, true);
            out[n++] = ' ';
        } else if (c == 0xe2 && i + 2 < len && s[i + 1] == 0x80 && s[i + 2] == 0x99) {
            out[n++] = '\'';
            i += 3;
        } else {
            out[n++] = lower(c);
            i++;
        }
    }
    memset(out + n, 0, NORM_PAD);
    return n;
}

static bool phrase_at(const unsigned char *t, size_t tn, size_t i, const struct reply_pattern *p)
{
    const unsigned char *ph = bytes(p->phrase);
    size_t n = p->len;
    bool prefix = ph[n - 1] == '*';
    if (prefix)
        n--;
    if (n > tn - i || memcmp(t + i, ph, n) != 0)
        return false;
    return prefix || !is_word(ph[n - 1]) || i + n >= tn || !is_word(t[i + n]);
}

static bool class_allows(unsigned flags, enum reply_class cls)
{
    if ((flags & REPLY_PAT_TEMP) && cls != REPLY_CLASS_TRANSIENT)
        return false;
    if ((flags & REPLY_PAT_PERM) && cls != REPLY_CLASS_PERMANENT)
        return false;
    return true;
}

/* The best row that matches at word start i of the normalised text, if better than best. */
static size_t try_rows_at(const unsigned char *t, size_t tn, size_t i, enum reply_class cls,
                          size_t best)
{
    if (i + 1 >= tn)
        return best;
    unsigned b = bucket_of(t[i], t[i + 1]);
    uint64_t sig;
    memcpy(&sig, t + i, 8); /* the padding makes eight bytes readable */
    for (size_t k = bucket_first[b]; k < bucket_first[b + 1]; k++) {
        size_t r = bucket_rows[k];
        if (r >= best)
            break;
        if (((sig ^ row_sig[r]) & row_mask[r]) != 0)
            continue;
        const struct reply_pattern *p = &reply_pattern_table[r];
        if (class_allows(p->flags, cls) && phrase_at(t, tn, i, p))
            return r;
    }
    return best;
}

/* The highest-priority (lowest-numbered) row matching anywhere in s, or PATTERN_COUNT.
 * Phrases start with a letter or digit at a word start, so only word starts are tried. Words
 * inside a token holding '@' are addresses, never reasons ("<spam@example.org>"). */
static size_t find_phrase(const unsigned char *s, size_t len, enum reply_class cls)
{
    pthread_once(&index_once, index_build);
    static _Thread_local unsigned char norm[NORM_MAX + NORM_PAD];
    size_t tn = normalise(s, len, norm);
    const unsigned char *t = norm;
    size_t best = PATTERN_COUNT;
    size_t i = 0;
    while (i < tn && best > 0) {
        if (t[i] == ' ') {
            i++;
            continue;
        }
        const unsigned char *sp = memchr(t + i, ' ', tn - i);
        size_t e = sp ? (size_t)(sp - t) : tn;
        if (memchr(t + i, '@', e - i) == NULL) {
            for (size_t w = i; w < e && best > 0;) {
                if (!is_word(t[w])) {
                    w++;
                    continue;
                }
                best = try_rows_at(t, tn, w, cls, best);
                while (w < e && is_word(t[w]))
                    w++;
            }
        }
        i = e;
    }
    return best;
}

/* ---- the reply text ----------------------------------------------------------------------- */

/* Offset of the last case-insensitive occurrence of needle (lowercase, starting with a
 * non-letter) in s, or len. */
static size_t find_last_ci(const unsigned char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle), at = len;
    for (size_t i = 0; i + n <= len; i++) {
        const unsigned char *c = memchr(s + i, needle[0], len - n + 1 - i);
        if (!c)
            break;
        i = (size_t)(c - s);
        size_t k = 0;
        while (k < n && lower(s[i + k]) == (unsigned char)needle[k])
            k++;
        if (k == n)
            at = i;
    }
    return at;
}

/* The text after the code: without leading separators, Postfix's "(in reply to X command)"
 * (kept as ->command) and closing parentheses that the log line opened before the reply. */
static void set_text(const unsigned char *s, size_t len, size_t start, struct reply_explanation *ex)
{
    /* Exchange's "Remote Server returned '550 5.1.1 …'" quotes the reply */
    unsigned char quote = ex->code_offset > 0 ? s[ex->code_offset - 1] : 0;
    while (start < len && (is_space(s[start]) || strchr(",;:", s[start]) != NULL))
        start++;
    size_t end = len;
    static const char intro[] = "(in reply to ";
    size_t q = find_last_ci(s + start, len - start, intro);
    if (q < len - start) {
        size_t c = start + q + sizeof intro - 1, e = c;
        while (e < len && s[e] != ')')
            e++;
        size_t ce = e;
        static const char tail[] = " command";
        if (ce - c >= sizeof tail - 1 &&
            find_last_ci(s + ce - (sizeof tail - 1), sizeof tail - 1, tail) == 0)
            ce -= sizeof tail - 1;
        ex->command = (const char *)s + c;
        ex->command_len = ce - c;
        end = start + q;
    }
    long depth = 0;
    bool counted = false; /* the parentheses are counted only for a text that ends with one */
    for (;;) {
        while (end > start && is_space(s[end - 1]))
            end--;
        if (end > start && s[end - 1] == ')' && !counted) {
            for (size_t i = start; i < end; i++)
                depth += s[i] == '(' ? 1 : s[i] == ')' ? -1 : 0;
            counted = true;
        }
        if (end > start && s[end - 1] == ')' && depth < 0) {
            end--;
            depth++;
            continue;
        }
        if (end > start && (quote == '\'' || quote == '"') && s[end - 1] == quote) {
            end--;
            quote = 0;
            continue;
        }
        break;
    }
    ex->text = (const char *)s + start;
    ex->text_len = end - start;
}

size_t reply_explain_text(const struct reply_explanation *ex, char *buf, size_t cap)
{
    if (cap == 0)
        return 0;
    const unsigned char *s = bytes(ex->text);
    size_t len = ex->text ? ex->text_len : 0, n = 0, i = 0;
    while (i < len && n + 1 < cap) {
        if (!is_space(s[i])) {
            buf[n++] = (char)s[i++];
            continue;
        }
        bool newline = false;
        while (i < len && is_space(s[i]))
            newline |= s[i++] == '\n';
        i = skip_continuation(s, len, i, newline);
        if (i < len)
            buf[n++] = newline ? '\n' : ' ';
    }
    buf[n] = '\0';
    return n;
}

/* ---- putting it together ------------------------------------------------------------------ */

static bool nonempty(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static bool reason_of(const char *name, enum reply_reason *r)
{
    return nonempty(name) && reply_reason_from_name(name, r) && *r != REASON_undefined &&
           *r != REASON_onhold;
}

static enum reply_class class_of_status(int cls)
{
    if (cls == 2)
        return REPLY_CLASS_SUCCESS;
    return cls == 4 ? REPLY_CLASS_TRANSIENT : REPLY_CLASS_PERMANENT;
}

/* A code that says little: no enhanced code, X.Y.0 ("other"), or X.7.1, which servers use for
 * every policy refusal. Weak phrases refine only these. */
static bool code_is_vague(const struct reply_explanation *ex)
{
    if (ex->reason_from != REPLY_REASON_FROM_ENHANCED)
        return true;
    return ex->status.detail == 0 || (ex->status.subject == 7 && ex->status.detail == 1);
}

static void classify(struct reply_explanation *ex, const unsigned char *s, size_t len)
{
    ex->reason = REASON_undefined;
    ex->reason_from = REPLY_REASON_FROM_CLASS;
    if (ex->cls == REPLY_CLASS_SUCCESS) {
        ex->reason = REASON_delivered;
        return;
    }
    if (ex->cls != REPLY_CLASS_TRANSIENT && ex->cls != REPLY_CLASS_PERMANENT)
        return;
    if (ex->enhanced && reason_of(ex->enhanced->reason, &ex->reason))
        ex->reason_from = REPLY_REASON_FROM_ENHANCED;
    else if (ex->basic && reason_of(ex->basic->reason, &ex->reason))
        ex->reason_from = REPLY_REASON_FROM_BASIC;
    size_t row = find_phrase(s, len, ex->cls);
    if (row == PATTERN_COUNT)
        return;
    const struct reply_pattern *p = &reply_pattern_table[row];
    if ((p->flags & REPLY_PAT_WEAK) && !code_is_vague(ex))
        return;
    ex->pattern = p;
    if (p->reason != ex->reason) {
        ex->reason = p->reason;
        ex->reason_from = REPLY_REASON_FROM_TEXT;
    }
}

/* Meaning, cause, action and admin: the enhanced row when it is specific, else the basic row,
 * else the reason's words. A reason found in the text brings its own cause and action. */
static void describe(struct reply_explanation *ex)
{
    const struct reply_reason_info *info = &reason_infos[ex->reason];
    const struct reply_basic *b = ex->basic;
    const struct reply_enhanced *e = ex->enhanced;
    bool e_first = e && (ex->status.detail != 0 || !b);
    const char *m1 = e_first ? e->meaning : b ? b->meaning : NULL;
    const char *m2 = e_first ? (b ? b->meaning : NULL) : e ? e->meaning : NULL;
    const char *c1 = e_first ? e->cause : b ? b->cause : NULL;
    const char *a1 = e_first ? e->action : b ? b->action : NULL;
    const char *d1 = e_first ? e->admin : b ? b->admin : NULL;
    const char *d2 = e_first ? (b ? b->admin : NULL) : e ? e->admin : NULL;
    int digit = ex->code ? ex->code / 100 : ex->status.cls;

    ex->summary = info->summary;
    ex->meaning = nonempty(m1) ? m1 : nonempty(m2) ? m2 : reply_first_digit_meaning(digit);
    if (!nonempty(ex->meaning))
        ex->meaning = info->summary;
    /* the phrase's own words first, then the table's unless the text changed the reason */
    bool own = ex->reason_from == REPLY_REASON_FROM_TEXT;
    const char *pc = ex->pattern ? ex->pattern->cause : NULL;
    const char *pa = ex->pattern ? ex->pattern->action : NULL;
    ex->cause = nonempty(pc) ? pc : (!own && nonempty(c1)) ? c1 : info->cause;
    ex->action = nonempty(pa) ? pa : (!own && nonempty(a1)) ? a1 : info->action;
    ex->admin = nonempty(d1) ? d1 : nonempty(d2) ? d2 : NULL;
}

static void advise_retry(struct reply_explanation *ex)
{
    switch (ex->cls) {
    case REPLY_CLASS_SUCCESS:
        ex->retry_when = RETRY_SUCCESS;
        break;
    case REPLY_CLASS_INTERMEDIATE:
        ex->retry_when = RETRY_INTERMEDIATE;
        break;
    case REPLY_CLASS_TRANSIENT:
        ex->retry = true;
        ex->retry_when = reason_infos[ex->reason].retry_transient;
        if (!nonempty(ex->retry_when))
            ex->retry_when = RETRY_TRANSIENT;
        break;
    case REPLY_CLASS_PERMANENT:
    case REPLY_CLASS_INVALID:
        ex->retry_when = RETRY_PERMANENT;
        break;
    }
}

static void look_up(struct reply_explanation *ex)
{
    if (ex->code != 0) {
        ex->cls = reply_class_of(ex->code);
        ex->basic = reply_basic_find(ex->code);
        if (!ex->basic)
            ex->notes |= 1u << REPLY_NOTE_UNKNOWN_CODE;
    } else {
        ex->cls = class_of_status(ex->status.cls);
    }
    if (ex->status.cls == 0)
        return;
    if (ex->code != 0 && ex->status.cls != ex->code / 100)
        ex->notes |= 1u << REPLY_NOTE_CLASS_MISMATCH;
    ex->enhanced = reply_enhanced_find(ex->status.subject, ex->status.detail);
    if (!ex->enhanced)
        ex->notes |= 1u << REPLY_NOTE_UNKNOWN_ENHANCED;
    else if (!ex->enhanced->classes || !strchr(ex->enhanced->classes, '0' + ex->status.cls))
        ex->notes |= 1u << REPLY_NOTE_UNREGISTERED_CLASS;
}

enum reply_explain_err reply_explain(const char *input, size_t len, struct reply_explanation *out)
{
    memset(out, 0, sizeof *out);
    if (!input)
        return REPLY_EXPLAIN_EMPTY;
    const unsigned char *s = bytes(input);
    enum reply_explain_err err = check_bytes(s, len);
    if (err != REPLY_EXPLAIN_OK)
        return err;
    struct found f = {.score = SCORE_NONE};
    if (!find_code(s, len, &f))
        return code_shaped(s, len) ? REPLY_EXPLAIN_OUT_OF_RANGE : REPLY_EXPLAIN_NO_CODE;
    out->code = f.code;
    out->status = f.st;
    out->code_offset = f.pos;
    look_up(out);
    set_text(s, len, f.end, out);
    classify(out, s, len);
    describe(out);
    advise_retry(out);
    return REPLY_EXPLAIN_OK;
}
