/* deliver/dsn.c — builds delivery status notifications: multipart/report with a plain-words
 * part, message/delivery-status and the returned message or header. RFC 3464, RFC 3461 §4,
 * §6, RFC 6522, RFC 3463 §3, RFC 3834 (Auto-Submitted), RFC 6533 (utf-8 address type). */
#include "deliver/dsn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hex.h"
#include "limits_mta.h"
#include "reply/explain.h"
#include "reply/utf8.h"
#include "store/queue.h"

/* Our prose wraps at 78 columns (RFC 5322 §2.1.1 SHOULD); a single long word (a URL, an
 * address) keeps its line up to the hard limit of 998 octets, where it is split. */
#define WRAP_WIDTH 78
#define LINE_HARD_MAX 998
/* Of a remote reply we keep this much: 100 lines of 512 would make an unreadable report. */
#define DIAG_MAX 8192
/* Single-valued fields (addresses, host names, ENVID) are cut here: far above their limits. */
#define FIELD_MAX 990
#define BOUNDARY_TRIES 16

const char *deliver_dsn_strerror(enum deliver_dsn_err err)
{
    switch (err) {
#define X(name, text) \
    case name:        \
        return text;
        DELIVER_DSN_ERRORS(X)
#undef X
    }
    return "unknown DSN error";
}

const char *deliver_dsn_action_name(enum deliver_dsn_action a)
{
    switch (a) {
    case DELIVER_DSN_FAILED:
        return "failed";
    case DELIVER_DSN_DELAYED:
        return "delayed";
    case DELIVER_DSN_DELIVERED:
        return "delivered";
    case DELIVER_DSN_RELAYED:
        return "relayed";
    case DELIVER_DSN_EXPANDED:
        return "expanded";
    }
    return "unknown";
}

bool deliver_dsn_wanted(unsigned notify, enum deliver_dsn_action a)
{
    if (notify & STORE_NOTIFY_NEVER)
        return false;
    if (notify == 0)
        notify = STORE_NOTIFY_FAILURE | STORE_NOTIFY_DELAY;
    switch (a) {
    case DELIVER_DSN_FAILED:
        return (notify & STORE_NOTIFY_FAILURE) != 0;
    case DELIVER_DSN_DELAYED:
        return (notify & STORE_NOTIFY_DELAY) != 0;
    case DELIVER_DSN_DELIVERED:
    case DELIVER_DSN_RELAYED:
    case DELIVER_DSN_EXPANDED:
        return (notify & STORE_NOTIFY_SUCCESS) != 0;
    }
    return false;
}

/* ---- dates -------------------------------------------------------------------------------- */

void deliver_dsn_format_date(int64_t t, char *buf)
{
    static const char wday[7][4] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char month[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const int64_t last = 253402300799; /* 9999-12-31 23:59:59 */
    t = t < 0 ? 0 : t > last ? last : t;
    int64_t days = t / 86400, secs = t % 86400;
    /* Civil date from days since 1970-01-01 (the proleptic Gregorian calendar, in 400-year
     * eras of 146097 days; March-based years put the leap day last). */
    int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t mday = doy - (153 * mp + 2) / 5 + 1, mon = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (mon <= 2);
    snprintf(buf, DELIVER_DSN_DATE_MAX, "%s, %02d %s %04d %02d:%02d:%02d +0000",
             wday[days % 7], (int)mday, month[mon - 1], (int)year, (int)(secs / 3600),
             (int)(secs / 60 % 60), (int)(secs % 60));
}

/* ---- output buffer ------------------------------------------------------------------------ */

struct out {
    char *p;
    size_t len, cap;
    bool nomem;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->nomem || n == 0)
        return;
    if (n > SIZE_MAX / 2 - o->len) {
        o->nomem = true;
        return;
    }
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->nomem = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

/* Copies s with every line break made CRLF: a lone CR or LF in the original must not reach
 * the report (RFC 5322 §2.3; SMTP would refuse or misread it). */
static void put_crlf(struct out *o, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        bool cr = s[i] == '\r', lf = s[i] == '\n';
        if (!cr && !lf)
            continue;
        if (cr && i + 1 < n && s[i + 1] == '\n') {
            i++;
            continue; /* already CRLF: stays in the run */
        }
        put(o, s + run, i - run);
        put(o, "\r\n", 2);
        run = i + 1;
    }
    put(o, s + run, n - run);
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(struct out *o, const char *fmt, ...)
{
    char buf[512];
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n < 0) {
        o->nomem = true;
    } else if ((size_t)n < sizeof buf) {
        put(o, buf, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (big && vsnprintf(big, (size_t)n + 1, fmt, again) == n)
            put(o, big, (size_t)n);
        else
            o->nomem = true;
        free(big);
    }
    va_end(again);
    va_end(ap);
}

/* ---- cleaning hostile text ---------------------------------------------------------------- */

#define CLEAN_ASCII 0x1u    /* bytes >= 0x80 become '?' (message/delivery-status is ASCII) */
#define CLEAN_NEWLINES 0x2u /* keep CR and LF (a multi-line reply); other controls still go */

/* Copies src into dst (cap >= 1 bytes, NUL-terminated): TAB becomes a space, other control
 * characters (C0, DEL, C1) and invalid UTF-8 become '?', so that nothing from a peer can end a
 * line, a header field or a MIME part. Truncates at a character boundary; returns the length. */
static size_t clean(char *dst, size_t cap, const char *src, size_t len, unsigned flags)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t n = 0, i = 0;
    while (i < len) {
        uint32_t cp = 0;
        size_t k = reply_utf8_char(s + i, len - i, &cp);
        bool newline = (cp == '\r' || cp == '\n') && (flags & CLEAN_NEWLINES);
        bool bad = k == 0 || (k > 1 && (flags & CLEAN_ASCII)) || (cp >= 0x80 && cp < 0xa0) ||
                   ((cp < 0x20 || cp == 0x7f) && cp != '\t' && !newline);
        const char *rep = (const char *)s + i;
        size_t rlen = k;
        if (k == 0)
            k = 1;
        if (bad)
            rep = "?", rlen = 1;
        else if (cp == '\t')
            rep = " ";
        if (n + rlen + 1 > cap)
            break;
        memcpy(dst + n, rep, rlen);
        n += rlen;
        i += k;
    }
    dst[n] = '\0';
    return n;
}

static size_t clean_str(char *dst, size_t cap, const char *src, unsigned flags)
{
    return clean(dst, cap, src ? src : "", src ? strlen(src) : 0, flags);
}

static bool is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* Decodes xtext (RFC 3461 §4: "+HH") for display. A "+HH" that would give a control
 * character, a space or 8-bit byte stays encoded: the field must stay one ASCII line. */
static void xtext_decode(char *dst, size_t cap, const char *src)
{
    char tmp[FIELD_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; src[i] != '\0' && n + 1 < sizeof tmp; i++) {
        int hi = src[i] == '+' && src[i + 1] ? base_hex_value(src[i + 1]) : -1;
        int lo = hi >= 0 && src[i + 2] ? base_hex_value(src[i + 2]) : -1;
        int v = hi * 16 + lo;
        if (hi >= 0 && lo >= 0 && v > 0x20 && v < 0x7f) {
            tmp[n++] = (char)v;
            i += 2;
        } else {
            tmp[n++] = src[i];
        }
    }
    clean(dst, cap, tmp, n, CLEAN_ASCII);
}

/* Bytes of s[0..n) that fit in `room` octets without cutting a UTF-8 character (at least 1). */
static size_t fit(const char *s, size_t n, size_t room)
{
    if (n <= room)
        return n;
    size_t k = room;
    while (k > 1 && ((unsigned char)s[k] & 0xc0) == 0x80)
        k--;
    return k;
}

/* One "Name: value" line. Only a hostile value can be long enough to pass LINE_HARD_MAX
 * (RFC 5322 §2.1.1) with its name, and such a value is cut; fields without white space cannot
 * be folded. */
static void put_field(struct out *o, const char *name, const char *value)
{
    size_t room = LINE_HARD_MAX - strlen(name) - 2;
    puts_(o, name);
    puts_(o, ": ");
    put(o, value, fit(value, strlen(value), room));
    puts_(o, "\r\n");
}

/* An address for message/delivery-status: "rfc822; addr" when ASCII, else RFC 6533's
 * "utf-8; " with utf-8-addr-xtext (code points above ASCII, '+', '=' and '\' as \x{HEX}). */
static void put_address_field(struct out *o, const char *field, const char *addr)
{
    char a[FIELD_MAX + 1], v[LINE_HARD_MAX + 1];
    clean_str(a, sizeof a, addr, 0);
    if (is_ascii(a)) {
        snprintf(v, sizeof v, "rfc822; %s", a);
        put_field(o, field, v);
        return;
    }
    size_t n = (size_t)snprintf(v, sizeof v, "utf-8; ");
    const unsigned char *s = (const unsigned char *)a;
    size_t len = strlen(a);
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t k = reply_utf8_char(s + i, len - i, &cp);
        char enc[16] = {(char)s[i], '\0'};
        if (cp <= 0x20 || cp >= 0x7f || cp == '+' || cp == '=' || cp == '\\')
            snprintf(enc, sizeof enc, "\\x{%02X}", (unsigned)cp);
        size_t el = strlen(enc);
        if (n + el >= sizeof v)
            break;
        memcpy(v + n, enc, el);
        n += el;
        i += k ? k : 1; /* clean() left only valid UTF-8 */
    }
    v[n] = '\0';
    put_field(o, field, v);
}

/* ---- wrapping ----------------------------------------------------------------------------- */

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Display columns of s[0..n): UTF-8 continuation bytes take none. */
static size_t columns(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

/* Writes text as CRLF lines, the first starting with `first`, the others with `cont`. Runs of
 * white space become one space; lines break between words at WRAP_WIDTH columns. For a
 * header field cont is " " (folding, RFC 5322 §2.2.3: unfolding gives the text back). */
static void put_wrapped(struct out *o, const char *first, const char *cont, const char *text,
                        size_t len)
{
    size_t cont_len = strlen(cont);
    puts_(o, first);
    size_t col = columns(first, strlen(first)), octets = strlen(first);
    bool words = false;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_wsp(text[i]))
            i++;
        size_t w = i;
        while (w < len && !is_wsp(text[w]))
            w++;
        if (w == i)
            break;
        size_t wcols = columns(text + i, w - i);
        if (words && col + 1 + wcols > WRAP_WIDTH) {
            puts_(o, "\r\n");
            puts_(o, cont);
            col = octets = cont_len;
        } else if (words) {
            puts_(o, " ");
            col++, octets++;
        }
        while (i < w) { /* a word longer than a line can be: split it */
            size_t room = octets < LINE_HARD_MAX ? LINE_HARD_MAX - octets : 1;
            size_t k = fit(text + i, w - i, room);
            put(o, text + i, k);
            col += columns(text + i, k), octets += k;
            i += k;
            if (i < w) {
                puts_(o, "\r\n");
                puts_(o, cont);
                col = octets = cont_len;
            }
        }
        words = true;
    }
    puts_(o, "\r\n");
}

static void put_prose(struct out *o, const char *indent, const char *text)
{
    put_wrapped(o, indent, indent, text, strlen(text));
}

/* A labelled paragraph: "  Label: text", continued under the label's indent. */
static void put_labelled(struct out *o, const char *label, const char *text)
{
    char first[64];
    snprintf(first, sizeof first, "  %s: ", label);
    put_wrapped(o, first, "    ", text, strlen(text));
}

/* ---- one recipient ------------------------------------------------------------------------ */

struct rcpt_view {
    const struct deliver_dsn_rcpt *r;
    char diag[DIAG_MAX]; /* the reply, cleaned, line breaks kept */
    size_t diag_len;
    char code[24];       /* "5.1.1": explained when no reply is */
    struct reply_explanation ex;
    bool smtp;           /* diag is an SMTP reply: Diagnostic-Code type "smtp" */
};

static bool status_valid(const struct reply_status *s)
{
    return (s->cls == 2 || s->cls == 4 || s->cls == 5) && s->subject >= 0 && s->subject <= 999 &&
           s->detail >= 0 && s->detail <= 999;
}

static int action_class(enum deliver_dsn_action a)
{
    switch (a) {
    case DELIVER_DSN_FAILED:
        return 5;
    case DELIVER_DSN_DELAYED:
        return 4;
    case DELIVER_DSN_DELIVERED:
    case DELIVER_DSN_RELAYED:
    case DELIVER_DSN_EXPANDED:
        return 2;
    }
    return 5;
}

/* Explains the reply (or, without one, the status code) and settles the Status: the caller's,
 * else the reply's enhanced code, else its basic code's class as X.0.0 (RFC 3463 §3), else the
 * action's class. */
static void view_init(struct rcpt_view *v, const struct deliver_dsn_rcpt *r)
{
    memset(v, 0, sizeof *v);
    v->r = r;
    bool explained = false;
    if (r->diagnostic) {
        v->diag_len = clean_str(v->diag, sizeof v->diag, r->diagnostic, CLEAN_NEWLINES);
        explained = reply_explain(v->diag, v->diag_len, &v->ex) == REPLY_EXPLAIN_OK;
        v->smtp = explained && v->ex.code != 0 && v->ex.code_offset == 0;
    }
    /* A report's status: its own, the diagnostic's, else X.0.0 of the reply's or the
     * action's class (RFC 3463 §3). */
    struct reply_status st = reply_outcome_status(reply_outcome_of_class(action_class(r->action)));
    if (status_valid(&r->status))
        st = r->status;
    else if (explained && v->ex.status.cls != 0)
        st = v->ex.status;
    else if (explained && v->ex.code != 0)
        st = reply_outcome_status(reply_outcome_of_class(v->ex.code / 100));
    snprintf(v->code, sizeof v->code, "%d.%d.%d", st.cls, st.subject, st.detail);
    if (!explained && reply_explain(v->code, strlen(v->code), &v->ex) != REPLY_EXPLAIN_OK)
        memset(&v->ex, 0, sizeof v->ex); /* unreachable for a valid status; stay safe */
}

static void put_date_field(struct out *o, const char *field, int64_t t)
{
    char date[DELIVER_DSN_DATE_MAX];
    deliver_dsn_format_date(t, date);
    putf(o, "%s: %s\r\n", field, date);
}

/* The per-recipient fields of message/delivery-status (RFC 3464 §2.3). */
static void put_status_fields(struct out *o, const struct rcpt_view *v)
{
    const struct deliver_dsn_rcpt *r = v->r;
    puts_(o, "\r\n");
    if (r->orcpt) {
        char type[64], addr[FIELD_MAX + 1];
        const char *semi = strchr(r->orcpt, ';');
        size_t tlen = semi ? (size_t)(semi - r->orcpt) : 0;
        if (semi && tlen > 0 && tlen < sizeof type) {
            clean(type, sizeof type, r->orcpt, tlen, CLEAN_ASCII);
            xtext_decode(addr, sizeof addr, semi + 1);
            char value[sizeof type + sizeof addr + 2];
            snprintf(value, sizeof value, "%s; %s", type, addr);
            put_field(o, "Original-Recipient", value);
        }
    }
    put_address_field(o, "Final-Recipient", r->final_recipient);
    putf(o, "Action: %s\r\n", deliver_dsn_action_name(r->action));
    putf(o, "Status: %s\r\n", v->code);
    if (r->remote_mta) {
        char host[FIELD_MAX + 1], value[FIELD_MAX + 8];
        clean_str(host, sizeof host, r->remote_mta, CLEAN_ASCII);
        snprintf(value, sizeof value, "dns; %s", host);
        put_field(o, "Remote-MTA", value);
    }
    if (v->diag_len > 0) {
        /* One line of text: a multi-line reply's continuation prefixes dropped, lines joined. */
        char text[DIAG_MAX], line[DIAG_MAX + 64];
        int n;
        if (v->smtp) {
            reply_explain_text(&v->ex, text, sizeof text);
            char st[24] = "";
            if (v->ex.status.cls != 0)
                snprintf(st, sizeof st, " %d.%d.%d", v->ex.status.cls, v->ex.status.subject,
                         v->ex.status.detail);
            n = snprintf(line, sizeof line, "smtp; %d%s %s", v->ex.code, st, text);
        } else {
            n = snprintf(line, sizeof line, "X-clearmta; %s", v->diag);
        }
        size_t len = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
        char ascii[sizeof line];
        len = clean(ascii, sizeof ascii, line, len, CLEAN_ASCII | CLEAN_NEWLINES);
        put_wrapped(o, "Diagnostic-Code: ", " ", ascii, len);
    }
    if (r->last_attempt != 0)
        put_date_field(o, "Last-Attempt-Date", r->last_attempt);
    if (r->action == DELIVER_DSN_DELAYED && r->will_retry_until != 0)
        put_date_field(o, "Will-Retry-Until", r->will_retry_until);
}

/* What happened, in a few words, after the address. */
static const char *outcome_words(enum deliver_dsn_action a)
{
    switch (a) {
    case DELIVER_DSN_FAILED:
        return "could not be delivered.";
    case DELIVER_DSN_DELAYED:
        return "not delivered yet; clearmta is still trying.";
    case DELIVER_DSN_DELIVERED:
        return "delivered.";
    case DELIVER_DSN_RELAYED:
        return "passed on (relayed).";
    case DELIVER_DSN_EXPANDED:
        return "delivered to an alias or list (expanded).";
    }
    return "";
}

/* Quotes the reply line by line, so the sender sees what the server said, exactly. */
static void put_quoted_reply(struct out *o, const struct rcpt_view *v, const char *reporting_mta)
{
    char who[FIELD_MAX + 64];
    if (v->r->remote_mta) {
        char host[FIELD_MAX + 1];
        clean_str(host, sizeof host, v->r->remote_mta, 0);
        snprintf(who, sizeof who, "The server %s said:", host);
    } else {
        snprintf(who, sizeof who, "The mail system at %s reported:", reporting_mta);
    }
    put_prose(o, "  ", who);
    for (size_t i = 0; i < v->diag_len;) {
        size_t e = i;
        while (e < v->diag_len && v->diag[e] != '\r' && v->diag[e] != '\n')
            e++;
        if (e > i)
            put_wrapped(o, "      ", "        ", v->diag + i, e - i);
        i = e + 1;
    }
}

static void sentence(char *buf, size_t cap, const char *text)
{
    snprintf(buf, cap, "%s", text ? text : "");
    if (buf[0] >= 'a' && buf[0] <= 'z')
        buf[0] = (char)(buf[0] - 'a' + 'A');
    size_t n = strlen(buf);
    if (n > 0 && n + 1 < cap && buf[n - 1] != '.')
        buf[n] = '.', buf[n + 1] = '\0';
}

/* The plain-words paragraph of one recipient. */
static void put_human_rcpt(struct out *o, const struct rcpt_view *v, const char *reporting_mta)
{
    const struct deliver_dsn_rcpt *r = v->r;
    char addr[FIELD_MAX + 1], line[2 * FIELD_MAX];
    clean_str(addr, sizeof addr, r->final_recipient, 0);
    puts_(o, "\r\n");
    snprintf(line, sizeof line, "<%s>: %s", addr, outcome_words(r->action));
    put_prose(o, "", line);
    if (r->action == DELIVER_DSN_FAILED || r->action == DELIVER_DSN_DELAYED) {
        char summary[256];
        sentence(summary, sizeof summary, v->ex.summary);
        put_prose(o, "  ", summary);
        if (v->ex.meaning)
            put_labelled(o, "What it means", v->ex.meaning);
        if (v->ex.cause)
            put_labelled(o, "Likely cause", v->ex.cause);
        if (r->action == DELIVER_DSN_DELAYED) {
            char until[DELIVER_DSN_DATE_MAX] = "";
            if (r->will_retry_until != 0)
                deliver_dsn_format_date(r->will_retry_until, until);
            snprintf(line, sizeof line,
                     "clearmta will keep trying%s%s. You need not send the message again%s",
                     until[0] ? " until " : "", until,
                     deliver_dsn_wanted(r->notify, DELIVER_DSN_FAILED)
                         ? "; if it still fails then, you will get another report."
                         : ".");
            put_labelled(o, "Next", line);
        }
        if (r->action == DELIVER_DSN_FAILED && v->ex.retry)
            put_labelled(o, "Given up", "The failure was temporary, but it lasted longer than "
                                        "clearmta keeps a message, so it stopped trying.");
        if (v->ex.action)
            put_labelled(o, "What you can do", v->ex.action);
    } else if (r->action == DELIVER_DSN_RELAYED) {
        put_prose(o, "  ", "The next server does not send delivery reports, so this is the last "
                           "report about this recipient.");
    } else if (r->action == DELIVER_DSN_EXPANDED) {
        put_prose(o, "  ", "The address forwards to other addresses (an alias or a mailing "
                           "list); the message was passed on to them.");
    }
    if (v->diag_len > 0)
        put_quoted_reply(o, v, reporting_mta);
}

/* ---- the whole report --------------------------------------------------------------------- */

static bool token_ok(const char *s, const char *extra, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (n == max || (!alnum && !strchr(extra, c)))
            return false;
    }
    return n > 0;
}

static bool input_ok(const struct deliver_dsn_input *in)
{
    return in->reporting_mta && token_ok(in->reporting_mta, ".-_[]:", 255) && in->queue_id &&
           token_ok(in->queue_id, "-_", 64) && in->sender && (in->rcpts || in->n_rcpts == 0) &&
           (in->message || in->message_len == 0);
}

static bool has_8bit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

/* The original's header section: up to and including the line break that ends its last field
 * (a message without an empty line is all header). */
static size_t header_length(const char *m, size_t n)
{
    if ((n >= 1 && m[0] == '\n') || (n >= 2 && m[0] == '\r' && m[1] == '\n'))
        return 0; /* an empty header: the message starts with its blank line */
    for (size_t i = 0; i < n; i++) {
        bool blank_next = i + 1 < n && (m[i + 1] == '\n' ||
                                        (m[i + 1] == '\r' && i + 2 < n && m[i + 2] == '\n'));
        if (m[i] == '\n' && blank_next)
            return i + 1;
    }
    return n;
}

struct report {
    const struct deliver_dsn_input *in;
    struct out human, status;
    bool any_failed, any_delayed;
    const char *returned; /* the bytes of the third part, or NULL */
    size_t returned_len;
    bool full;            /* message/rfc822, else text/rfc822-headers */
    bool too_big;         /* RET=FULL asked, but over return_limit */
    char boundary[64];
};

static void choose_return(struct report *rp)
{
    const struct deliver_dsn_input *in = rp->in;
    if (!in->message)
        return;
    bool want_full = in->ret == STORE_RET_FULL && rp->any_failed;
    rp->too_big = want_full && in->return_limit != 0 && in->message_len > in->return_limit;
    rp->full = want_full && !rp->too_big;
    rp->returned = in->message;
    rp->returned_len = rp->full ? in->message_len : header_length(in->message, in->message_len);
}

static void put_intro(struct report *rp)
{
    const struct deliver_dsn_input *in = rp->in;
    struct out *o = &rp->human;
    char line[512], date[DELIVER_DSN_DATE_MAX];
    snprintf(line, sizeof line, "This is the mail system at %s.", in->reporting_mta);
    put_prose(o, "", line);
    puts_(o, "\r\n");
    const char *what;
    if (rp->any_failed)
        what = "Your message could not be delivered to one or more of its recipients. What "
               "happened to each of them, and what you can do, follows.";
    else if (rp->any_delayed)
        what = "Your message has not been delivered yet to one or more of its recipients. "
               "clearmta keeps trying: you need not send it again. Details follow.";
    else
        what = "This is the delivery report you asked for. Details follow.";
    put_prose(o, "", what);
    puts_(o, "\r\n");
    deliver_dsn_format_date(in->arrival, date);
    snprintf(line, sizeof line, "Queue ID %s, received %s.", in->queue_id, date);
    put_prose(o, "", line);
    if (rp->too_big)
        put_prose(o, "", "The message is too large to return in full: only its header is "
                         "attached.");
}

static void put_status_head(struct report *rp)
{
    const struct deliver_dsn_input *in = rp->in;
    struct out *o = &rp->status;
    putf(o, "Reporting-MTA: dns; %s\r\n", in->reporting_mta);
    putf(o, "X-Clearmta-Queue-ID: %s\r\n", in->queue_id);
    if (in->envid && in->envid[0]) {
        char envid[FIELD_MAX + 1];
        xtext_decode(envid, sizeof envid, in->envid);
        put_field(o, "Original-Envelope-Id", envid);
    }
    put_address_field(o, "X-Clearmta-Sender", in->sender);
    put_date_field(o, "Arrival-Date", in->arrival);
}

static bool boundary_free(const struct report *rp, const char *b)
{
    size_t n = strlen(b);
    return !(rp->human.p && memmem(rp->human.p, rp->human.len, b, n)) &&
           !(rp->status.p && memmem(rp->status.p, rp->status.len, b, n)) &&
           !(rp->returned && memmem(rp->returned, rp->returned_len, b, n));
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* RFC 2046 §5.1.1: the boundary must not occur in any part. A random one almost never does;
 * hostile content holding it makes us pick again. */
static bool pick_boundary(struct report *rp, uint64_t seed)
{
    for (int i = 0; i < BOUNDARY_TRIES; i++) {
        snprintf(rp->boundary, sizeof rp->boundary, "=_clearmta_%016llx",
                 (unsigned long long)splitmix64(&seed));
        if (boundary_free(rp, rp->boundary))
            return true;
    }
    return false;
}

static const char *subject_of(const struct report *rp)
{
    if (rp->any_failed)
        return "Undelivered Mail Returned to Sender";
    if (rp->any_delayed)
        return "Delayed Mail (still being retried)";
    return "Successful Mail Delivery Report";
}

static void put_part_head(struct out *o, const char *boundary, const char *type,
                          const char *description, bool eight_bit)
{
    putf(o, "\r\n--%s\r\nContent-Type: %s\r\nContent-Description: %s\r\n", boundary, type,
         description);
    putf(o, "Content-Transfer-Encoding: %s\r\n\r\n", eight_bit ? "8bit" : "7bit");
}

static void assemble(struct report *rp, int64_t now, struct out *o)
{
    const struct deliver_dsn_input *in = rp->in;
    char date[DELIVER_DSN_DATE_MAX], to[FIELD_MAX + 1];
    bool human8 = has_8bit(rp->human.p, rp->human.len);
    bool ret8 = rp->returned && has_8bit(rp->returned, rp->returned_len);
    deliver_dsn_format_date(now, date);
    clean_str(to, sizeof to, in->sender, 0);
    putf(o, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", in->reporting_mta);
    putf(o, "To: <%s>\r\n", to);
    putf(o, "Subject: %s\r\n", subject_of(rp));
    putf(o, "Date: %s\r\n", date);
    putf(o, "Message-ID: <%s.%lld@%s>\r\n", in->queue_id, (long long)now, in->reporting_mta);
    puts_(o, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
    putf(o, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
            " boundary=\"%s\"\r\n", rp->boundary);
    putf(o, "Content-Transfer-Encoding: %s\r\n\r\n", human8 || ret8 ? "8bit" : "7bit");
    puts_(o, "This is a MIME-encapsulated message.\r\n");
    put_part_head(o, rp->boundary, "text/plain; charset=utf-8", "Notification", human8);
    put(o, rp->human.p, rp->human.len);
    put_part_head(o, rp->boundary, "message/delivery-status", "Delivery report", false);
    put(o, rp->status.p, rp->status.len);
    if (rp->returned) {
        put_part_head(o, rp->boundary, rp->full ? "message/rfc822" : "text/rfc822-headers",
                      rp->full ? "Undelivered Message" : "Message header", ret8);
        put_crlf(o, rp->returned, rp->returned_len);
        char last = rp->returned_len > 0 ? rp->returned[rp->returned_len - 1] : '\n';
        if (last != '\n' && last != '\r')
            puts_(o, "\r\n"); /* the delimiter must start a line of its own */
    }
    putf(o, "\r\n--%s--\r\n", rp->boundary);
}

static size_t count_wanted(const struct deliver_dsn_input *in, struct report *rp)
{
    size_t n = 0;
    for (size_t i = 0; i < in->n_rcpts; i++) {
        const struct deliver_dsn_rcpt *r = &in->rcpts[i];
        if (!r->final_recipient || !deliver_dsn_wanted(r->notify, r->action))
            continue;
        n++;
        rp->any_failed |= r->action == DELIVER_DSN_FAILED;
        rp->any_delayed |= r->action == DELIVER_DSN_DELAYED;
    }
    return n;
}

static enum deliver_dsn_err build_parts(struct report *rp)
{
    const struct deliver_dsn_input *in = rp->in;
    struct rcpt_view *v = malloc(sizeof *v);
    if (!v)
        return DELIVER_DSN_ERR_NOMEM;
    put_intro(rp);
    put_status_head(rp);
    for (size_t i = 0; i < in->n_rcpts; i++) {
        const struct deliver_dsn_rcpt *r = &in->rcpts[i];
        if (!r->final_recipient || !deliver_dsn_wanted(r->notify, r->action))
            continue;
        view_init(v, r);
        put_human_rcpt(&rp->human, v, in->reporting_mta);
        put_status_fields(&rp->status, v);
    }
    free(v);
    return rp->human.nomem || rp->status.nomem ? DELIVER_DSN_ERR_NOMEM : DELIVER_DSN_OK;
}

enum deliver_dsn_err deliver_dsn_build(const struct deliver_dsn_input *in, int64_t now,
                                       uint64_t boundary_seed, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (!in || !input_ok(in))
        return DELIVER_DSN_ERR_INVALID;
    if (in->message_len > LIMIT_MESSAGE_SIZE_MAX)
        return DELIVER_DSN_ERR_TOO_BIG; /* no queued message is that large */
    if (in->sender[0] == '\0' || strcmp(in->sender, "<>") == 0)
        return DELIVER_DSN_ERR_NULL_SENDER; /* RFC 5321 §4.5.5: never bounce a bounce */
    struct report rp = {.in = in};
    if (count_wanted(in, &rp) == 0)
        return DELIVER_DSN_ERR_NOTHING_TO_REPORT;
    choose_return(&rp);
    struct out msg = {0};
    enum deliver_dsn_err err = build_parts(&rp);
    if (err == DELIVER_DSN_OK && !pick_boundary(&rp, boundary_seed))
        err = DELIVER_DSN_ERR_BOUNDARY;
    if (err == DELIVER_DSN_OK) {
        assemble(&rp, now, &msg);
        if (msg.nomem)
            err = DELIVER_DSN_ERR_NOMEM;
    }
    free(rp.human.p);
    free(rp.status.p);
    if (err != DELIVER_DSN_OK) {
        free(msg.p);
        return err;
    }
    *out = msg.p;
    *out_len = msg.len;
    return DELIVER_DSN_OK;
}
