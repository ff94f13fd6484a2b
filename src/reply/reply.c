/* reply/reply.c — codes.def as C tables with O(1) look-ups, reply formatting (RFC 5321 §4.2.1
 * multi-line replies, RFC 2034 enhanced codes on every line) and a strict parser for the replies
 * of peers. RFC 5321 §4.2, RFC 3463, RFC 2034. */
#include "reply/reply.h"

#include <string.h>

/* ---- tables --------------------------------------------------------------------------- */

const struct reply_basic reply_basic_table[] = {
#define BASIC(code, source, reason, title, meaning, cause, action, admin) \
    {code, source, reason, title, meaning, cause, action, admin},
#include "reply/codes.def"
};
const size_t reply_basic_count = sizeof reply_basic_table / sizeof reply_basic_table[0];

const struct reply_enhanced reply_enhanced_table[] = {
#define ENHANCED(subject, detail, classes, title, source, used_with, reason, meaning, cause,     \
                 action, admin)                                                                \
    {subject, detail, classes, title, source, used_with, reason, meaning, cause, action, admin},
#include "reply/codes.def"
};
const size_t reply_enhanced_count = sizeof reply_enhanced_table / sizeof reply_enhanced_table[0];

const struct reply_row reply_row_table[] = {
#define REPLY(id, code, enhanced, text, when) [id] = {id, #id, code, enhanced, text, when},
#include "reply/codes.def"
};

const struct reply_outcome_row reply_outcome_table[] = {
#define OUTCOME(id, use, cls, subject, detail, when) \
    [id] = {id, #id, REPLY_USE_##use, cls, subject, detail, when},
#include "reply/codes.def"
};

/* Positions of the rows in the tables above, named after their codes. A code listed twice
 * declares the same enumerator twice, so a duplicate row does not compile. */
enum basic_pos {
#define BASIC(code, source, reason, title, meaning, cause, action, admin) BASIC_POS_##code,
#include "reply/codes.def"
    BASIC_POS__COUNT
};
enum enhanced_pos {
#define ENHANCED(subject, detail, classes, title, source, used_with, reason, meaning, cause,     \
                 action, admin)                                                                \
    ENH_POS_##subject##_##detail,
#include "reply/codes.def"
    ENH_POS__COUNT
};

/* Direct indexes built by the compiler: explain looks codes up millions of times, and a
 * constant table needs no initialisation (and no lock) at run time. Entries hold position + 1;
 * 0 means "no row". A detail beyond ENH_DETAIL_LIMIT fails to compile: raise the limit. */
#define BASIC_CODE_LIMIT 600
#define ENH_SUBJECT_LIMIT 8
#define ENH_DETAIL_LIMIT 64
_Static_assert(BASIC_POS__COUNT < 255 && ENH_POS__COUNT < 255, "index entries are 8-bit");

static const unsigned char basic_index[BASIC_CODE_LIMIT] = {
#define BASIC(code, source, reason, title, meaning, cause, action, admin) \
    [code] = BASIC_POS_##code + 1,
#include "reply/codes.def"
};

static const unsigned char enhanced_index[ENH_SUBJECT_LIMIT][ENH_DETAIL_LIMIT] = {
#define ENHANCED(subject, detail, classes, title, source, used_with, reason, meaning, cause,     \
                 action, admin)                                                                \
    [subject][detail] = ENH_POS_##subject##_##detail + 1,
#include "reply/codes.def"
};

const struct reply_basic *reply_basic_find(int code)
{
    if (code < 0 || code >= BASIC_CODE_LIMIT || basic_index[code] == 0)
        return NULL;
    return &reply_basic_table[basic_index[code] - 1];
}

const struct reply_enhanced *reply_enhanced_find(int subject, int detail)
{
    if (subject < 0 || subject >= ENH_SUBJECT_LIMIT || detail < 0 || detail >= ENH_DETAIL_LIMIT)
        return NULL;
    unsigned char pos = enhanced_index[subject][detail];
    return pos == 0 ? NULL : &reply_enhanced_table[pos - 1];
}

const struct reply_row *reply_row_get(enum reply_id id)
{
    if ((int)id < 0 || id >= REPLY__COUNT)
        return NULL;
    return &reply_row_table[id];
}

/* Every outcome's subject.detail is a registered code: naming one that is not fails here. */
static const unsigned char outcome_code_registered[] = {
#define OUTCOME(id, use, cls, subject, detail, when) [id] = ENH_POS_##subject##_##detail + 1,
#include "reply/codes.def"
};
_Static_assert(sizeof outcome_code_registered == OUTCOME__COUNT, "one entry per outcome");

const struct reply_outcome_row *reply_outcome_get(enum reply_outcome id)
{
    if ((int)id < 0 || id >= OUTCOME__COUNT)
        return NULL;
    return &reply_outcome_table[id];
}

struct reply_status reply_outcome_status(enum reply_outcome id)
{
    const struct reply_outcome_row *o = reply_outcome_get(id);
    if (o == NULL)
        return (struct reply_status){0, 0, 0};
    return (struct reply_status){o->cls, o->subject, o->detail};
}

enum reply_outcome reply_outcome_of_class(int cls)
{
    return cls == 2 ? OUTCOME_REMOTE_ACCEPTED
         : cls == 5 ? OUTCOME_REMOTE_PERMANENT
                    : OUTCOME_REMOTE_TRANSIENT;
}

/* ---- classes and digits --------------------------------------------------------------- */

enum reply_class reply_class_of(int code)
{
    if (code < 200 || code > 599)
        return REPLY_CLASS_INVALID;
    static const enum reply_class by_digit[] = {REPLY_CLASS_SUCCESS, REPLY_CLASS_INTERMEDIATE,
                                                REPLY_CLASS_TRANSIENT, REPLY_CLASS_PERMANENT};
    return by_digit[code / 100 - 2];
}

const char *reply_class_name(enum reply_class cls)
{
    switch (cls) {
    case REPLY_CLASS_SUCCESS: return "success";
    case REPLY_CLASS_INTERMEDIATE: return "intermediate";
    case REPLY_CLASS_TRANSIENT: return "transient";
    case REPLY_CLASS_PERMANENT: return "permanent";
    case REPLY_CLASS_INVALID: return "invalid";
    }
    return "invalid";
}

static const char *digit_meaning(const char *const *table, size_t n, int digit)
{
    if (digit < 0 || (size_t)digit >= n)
        return NULL;
    return table[digit];
}

const char *reply_first_digit_meaning(int digit)
{
    static const char *const m[] = {
        NULL,
        NULL,
        "success: the command or the message was accepted",
        "intermediate: the server waits for more input (the message, or the next login step)",
        "transient failure: not done now; the same request may succeed later",
        "permanent failure: not done; repeating the request unchanged will fail again",
    };
    return digit_meaning(m, sizeof m / sizeof m[0], digit);
}

const char *reply_second_digit_meaning(int digit)
{
    static const char *const m[] = {
        "syntax: the command itself (unknown, malformed, not implemented)",
        "information: status or help",
        "connections: the transmission channel",
        NULL,
        NULL,
        "mail system: the mailbox, the message or the receiving system",
    };
    return digit_meaning(m, sizeof m / sizeof m[0], digit);
}

const char *reply_subject_meaning(int subject)
{
    static const char *const m[] = {
        "other or undefined",
        "addressing: the sender's or a recipient's address",
        "mailbox: the recipient's mailbox (full, disabled)",
        "mail system: the receiving system (storage, size limits, configuration)",
        "network and routing: connections, DNS, loops, timeouts",
        "mail delivery protocol: SMTP commands and their syntax",
        "message content or media: format, encoding, conversion",
        "security or policy: authentication, relaying, spam filtering, reputation",
    };
    return digit_meaning(m, sizeof m / sizeof m[0], subject);
}

/* ---- enhanced status codes ------------------------------------------------------------ */

/* One to three digits, no leading zero unless the number is 0 ("01" is refused: it would make
 * 5.1.1 and 5.01.1 two spellings of one code). Returns the digits used, 0 when invalid. */
static size_t parse_number(const char *s, size_t len, int *value)
{
    size_t n = 0;
    int v = 0;
    while (n < len && n < 4 && s[n] >= '0' && s[n] <= '9') {
        v = v * 10 + (s[n] - '0');
        n++;
    }
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
        return 0;
    *value = v;
    return n;
}

bool reply_status_parse(const char *s, size_t len, struct reply_status *st, size_t *used)
{
    if (s == NULL || len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    size_t pos = 2;
    int subject, detail;
    size_t n = parse_number(s + pos, len - pos, &subject);
    if (n == 0)
        return false;
    pos += n;
    if (pos >= len || s[pos] != '.')
        return false;
    pos++;
    n = parse_number(s + pos, len - pos, &detail);
    if (n == 0)
        return false;
    pos += n;
    if (pos < len && s[pos] != ' ' && s[pos] != '\t')
        return false;
    st->cls = s[0] - '0';
    st->subject = subject;
    st->detail = detail;
    if (used != NULL)
        *used = pos;
    return true;
}

/* ---- formatting ----------------------------------------------------------------------- */

/* Output is produced twice: once to measure (out == NULL), once to write, so that a reply
 * that does not fit leaves the buffer untouched. */
struct sink {
    char *out;
    size_t len;
};

static void put(struct sink *s, const char *p, size_t n)
{
    if (s->out != NULL)
        memcpy(s->out + s->len, p, n);
    s->len += n;
}

/* Caller-supplied text: control characters become '?', so no CR or LF can end a line early or
 * smuggle in a reply line of its own. */
static void put_clean(struct sink *s, const char *p, size_t n)
{
    if (s->out != NULL) {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            s->out[s->len + i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
        }
    }
    s->len += n;
}

/* "550-5.1.1 " or "550 " : code, separator, and the enhanced code when it is to be sent. */
static void put_prefix(struct sink *s, const char code[3], bool last, const char *enh,
                       bool soft)
{
    put(s, code, 3);
    put(s, last ? " " : "-", 1);
    if (enh[0] == '\0')
        return;
    if (soft && enh[0] == '5') {
        put(s, "4", 1);
        put(s, enh + 1, strlen(enh + 1));
    } else {
        put(s, enh, strlen(enh));
    }
    put(s, " ", 1);
}

static void put_text(struct sink *s, const char *text, const char *detail)
{
    const char *hole = strstr(text, "{}");
    if (hole == NULL) {
        put(s, text, strlen(text));
        return;
    }
    put(s, text, (size_t)(hole - text));
    if (detail != NULL)
        put_clean(s, detail, strlen(detail));
    put(s, hole + 2, strlen(hole + 2));
}

static void emit(struct sink *s, const struct reply_row *row, const char *detail,
                 const char *const *more, size_t n_more, unsigned flags)
{
    bool soft = (flags & REPLY_FMT_SOFT_BOUNCE) != 0;
    int code = row->code;
    if (soft && code / 100 == 5)
        code -= 100;
    const char digits[3] = {(char)('0' + code / 100), (char)('0' + code / 10 % 10),
                            (char)('0' + code % 10)};
    const char *enh = (flags & REPLY_FMT_ENHANCED) != 0 ? row->enhanced : "";

    put_prefix(s, digits, n_more == 0, enh, soft);
    put_text(s, row->text, detail);
    put(s, "\r\n", 2);
    for (size_t i = 0; i < n_more; i++) {
        put_prefix(s, digits, i + 1 == n_more, enh, soft);
        if (more[i] != NULL)
            put_clean(s, more[i], strlen(more[i]));
        put(s, "\r\n", 2);
    }
}

size_t reply_format(char *out, size_t cap, enum reply_id id, const char *detail,
                    const char *const *more, size_t n_more, unsigned flags)
{
    const struct reply_row *row = reply_row_get(id);
    if (row == NULL || out == NULL || (more == NULL && n_more > 0))
        return 0;
    struct sink measure = {NULL, 0};
    emit(&measure, row, detail, more, n_more, flags);
    if (measure.len > cap)
        return 0;
    struct sink write = {out, 0};
    emit(&write, row, detail, more, n_more, flags);
    return write.len;
}

/* ---- parsing -------------------------------------------------------------------------- */

const char *reply_parse_strerror(enum reply_parse_err err)
{
    switch (err) {
#define X(name, text) \
    case name: return text;
        REPLY_PARSE_ERRORS(X)
#undef X
    }
    return "unknown reply parse error";
}

struct line {
    size_t start; /* first byte of the line */
    size_t end;   /* first byte of the line end (CR or LF) */
    size_t next;  /* first byte after the LF */
};

/* End of the line that starts at `start` for an error report: after its LF, or all of buf. */
static size_t line_stop(const char *buf, size_t len, size_t start)
{
    const char *lf = memchr(buf + start, '\n', len - start);
    return lf == NULL ? len : (size_t)(lf - buf) + 1;
}

/* Finds the line at `start`, at most REPLY_LINE_MAX octets with its CRLF or bare LF. Only the
 * first REPLY_LINE_MAX bytes are ever looked at, so a peer that never sends LF costs little. */
static enum reply_parse_err next_line(const char *buf, size_t len, size_t start, struct line *ln,
                                      struct reply_parsed *out)
{
    size_t avail = len - start;
    size_t limit = avail < REPLY_LINE_MAX ? avail : REPLY_LINE_MAX;
    ln->start = start;
    for (size_t i = 0; i < limit; i++) {
        char c = buf[start + i];
        if (c == '\n') {
            out->bare_lf = true;
            ln->end = start + i;
            ln->next = start + i + 1;
            return REPLY_PARSE_OK;
        }
        if (c == '\r') {
            if (i + 2 > REPLY_LINE_MAX)
                return REPLY_PARSE_LINE_TOO_LONG;
            if (i + 1 == avail)
                return REPLY_PARSE_INCOMPLETE;
            if (buf[start + i + 1] != '\n')
                return REPLY_PARSE_BAD_BYTE;
            ln->end = start + i;
            ln->next = start + i + 2;
            return REPLY_PARSE_OK;
        }
        if (c == '\0')
            return REPLY_PARSE_BAD_BYTE;
    }
    return avail >= REPLY_LINE_MAX ? REPLY_PARSE_LINE_TOO_LONG : REPLY_PARSE_INCOMPLETE;
}

static void append_text(struct reply_parsed *out, const char *p, size_t n)
{
    size_t room = REPLY_TEXT_MAX - 1 - out->text_len;
    if (out->lines > 1) {
        if (room == 0) {
            out->truncated = true;
            return;
        }
        out->text[out->text_len++] = '\n';
        room--;
    }
    if (n > room) {
        n = room;
        out->truncated = true;
    }
    memcpy(out->text + out->text_len, p, n);
    out->text_len += n;
    out->text[out->text_len] = '\0';
}

/* The text of one line after "NNN" and its separator, without an enhanced status code that
 * matches the reply: the first line's status is recorded, later lines repeating it (RFC 2034
 * puts it on every line) lose it too. */
static void take_text(struct reply_parsed *out, const char *p, size_t n)
{
    struct reply_status st;
    size_t used;
    if (reply_status_parse(p, n, &st, &used) && st.cls == out->code / 100) {
        bool first = out->lines == 1;
        if (first)
            out->status = st;
        if (first || (st.cls == out->status.cls && st.subject == out->status.subject &&
                      st.detail == out->status.detail)) {
            while (used < n && (p[used] == ' ' || p[used] == '\t'))
                used++;
            p += used;
            n -= used;
        }
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80)
            out->eight_bit = true;
    append_text(out, p, n);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

enum reply_parse_err reply_parse(const char *buf, size_t len, struct reply_parsed *out,
                                 size_t *consumed)
{
    memset(out, 0, sizeof *out);
    *consumed = 0;
    if (buf == NULL)
        return REPLY_PARSE_INCOMPLETE;
    size_t pos = 0;
    for (;;) {
        struct line ln;
        enum reply_parse_err err = next_line(buf, len, pos, &ln, out);
        if (err == REPLY_PARSE_INCOMPLETE) {
            *consumed = 0;
            return err;
        }
        if (err != REPLY_PARSE_OK) {
            *consumed = line_stop(buf, len, pos);
            return err;
        }
        pos = ln.next;
        *consumed = pos; /* an error below concerns this line */
        const char *p = buf + ln.start;
        size_t n = ln.end - ln.start;
        if (n < 3 || p[0] < '2' || p[0] > '5' || !is_digit(p[1]) || !is_digit(p[2]))
            return REPLY_PARSE_BAD_CODE;
        bool last = n == 3 || p[3] == ' ';
        if (!last && p[3] != '-')
            return REPLY_PARSE_BAD_SEPARATOR;
        int code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
        if (out->lines > 0 && code != out->code)
            return REPLY_PARSE_CODE_MISMATCH;
        out->code = code;
        out->lines++;
        take_text(out, p + (n > 3 ? 4 : 3), n > 3 ? n - 4 : 0);
        if (last)
            return REPLY_PARSE_OK;
        if (out->lines == REPLY_LINES_MAX)
            return REPLY_PARSE_TOO_MANY_LINES;
    }
}
