/* reply/logline.c — delivery lines of mail logs to recipient, outcome, status and reply: the
 * key=value lines of Postfix, Sendmail, clearmta and OpenSMTPD, Exim's "** / == / =>" lines and
 * chasquid's "to=… sent / failed" lines. */
#include "reply/logline.h"

#include <string.h>

/* memmem (glibc, _GNU_SOURCE): a log is read at a million lines a second or so, and the
 * searches for "to=", "status=" … are most of the reading. */
static const char *find(const char *s, size_t n, const char *needle)
{
    return memmem(s, n, needle, strlen(needle));
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The "key=" fields of one line (a key starts the line or follows a space or a comma), found
 * in one pass over its '=' signs instead of one search of the line per key. */
#define LOG_FIELDS_MAX 48
struct fields {
    size_t n;
    struct {
        const char *key; /* the key's first byte; the '=' follows it */
        size_t key_len;
    } f[LOG_FIELDS_MAX];
};

static bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
           c == '-' || c == '.';
}

static void index_fields(const char *s, size_t n, struct fields *x)
{
    x->n = 0;
    const char *end = s + n;
    for (const char *p = s; x->n < LOG_FIELDS_MAX && p < end; p++) {
        p = memchr(p, '=', (size_t)(end - p));
        if (!p)
            break;
        const char *b = p;
        while (b > s && key_char(b[-1]))
            b--;
        if (b == p || (b != s && b[-1] != ' ' && b[-1] != ','))
            continue;
        x->f[x->n].key = b;
        x->f[x->n].key_len = (size_t)(p - b);
        x->n++;
    }
}

/* The value of the first "key=" field (key without its '='): bare up to ", " or space; "<…>",
 * "(…)" and "\"…\"" as written inside. */
static bool field(const struct fields *x, const char *s, size_t n, const char *key,
                  const char **v, size_t *vn)
{
    size_t kn = strlen(key);
    const char *end = s + n;
    for (size_t i = 0; i < x->n; i++) {
        if (x->f[i].key_len != kn || memcmp(x->f[i].key, key, kn) != 0)
            continue;
        const char *q = x->f[i].key + kn + 1;
        if (q < end && (*q == '<' || *q == '"' || *q == '[')) {
            char close = *q == '<' ? '>' : *q == '[' ? ']' : '"';
            const char *c = memchr(q + 1, close, (size_t)(end - q - 1));
            if (!c)
                return false;
            *v = q + 1;
            *vn = (size_t)(c - q - 1);
            return true;
        }
        const char *e = q;
        while (e < end && *e != ',' && *e != ' ')
            e++;
        *v = q;
        *vn = (size_t)(e - q);
        return true;
    }
    return false;
}

static bool has_field(const struct fields *x, const char *key)
{
    size_t kn = strlen(key);
    for (size_t i = 0; i < x->n; i++)
        if (x->f[i].key_len == kn && memcmp(x->f[i].key, key, kn) == 0)
            return true;
    return false;
}

/* The time stamp: ISO "2026-01-02 03:04:05[.fff]" or "2026-01-02T03:04:05…", or syslog's
 * "Jan  2 03:04:05". Returns where the rest of the line starts. */
static size_t stamp(const char *s, size_t n, struct reply_log_entry *e)
{
    if (n >= 19 && is_digit(s[0]) && (s[4] == '-' || s[4] == '/') && s[7] == s[4] &&
        (s[10] == ' ' || s[10] == 'T')) {
        size_t i = 19;
        while (i < n && s[i] != ' ')
            i++;
        if (s[10] == ' ' && i < n && i == 19) {
            /* "2026-01-02 03:04:05 +0000" (Exim with a zone) */
            if (i + 6 <= n && (s[i + 1] == '+' || s[i + 1] == '-') && is_digit(s[i + 2]))
                i += 6;
        }
        e->stamp = s;
        e->stamp_len = i;
        return i;
    }
    if (n >= 15 && s[3] == ' ' && s[9] == ':' && s[12] == ':') {
        e->stamp = s;
        e->stamp_len = 15;
        return 15;
    }
    return 0;
}

/* The token before " to=": "4F1A2B3C4D:" of Postfix, Sendmail and clearmta. */
static void qid_before(const char *s, const char *to, struct reply_log_entry *e)
{
    const char *p = to;
    while (p > s && p[-1] == ' ')
        p--;
    const char *end = p;
    if (end > s && end[-1] == ':')
        end--;
    const char *b = end;
    while (b > s && b[-1] != ' ')
        b--;
    if (end > b && end[-1] != ']') {
        e->queue_id = b;
        e->queue_id_len = (size_t)(end - b);
    }
}

static void explain(struct reply_log_entry *e, const char *dsn, size_t dsn_len)
{
    struct reply_explanation ex;
    /* a reply without a code of its own ("stat=Deferred: Connection refused") is explained
     * with the line's dsn= in front, so that its words still count */
    static _Thread_local char joined[1024];
    if (e->reply_len && reply_explain(e->reply, e->reply_len, &ex) == REPLY_EXPLAIN_OK) {
        e->ex = ex;
        e->explained = true;
        /* the remote reply itself: from its code on, without Postfix's "host … said: " in
         * front and "(in reply to RCPT TO command)" behind it */
        static const char intro[] = "(in reply to ";
        size_t end = e->reply_len;
        if (ex.command && (size_t)(ex.command - e->reply) >= sizeof intro - 1)
            end = (size_t)(ex.command - e->reply) - (sizeof intro - 1);
        while (end > 0 && e->reply[end - 1] == ' ')
            end--;
        if (ex.code && ex.code_offset < end) {
            e->reply += ex.code_offset;
            e->reply_len = end - ex.code_offset;
        }
    } else if (dsn_len && dsn_len + 1 + e->reply_len <= sizeof joined) {
        memcpy(joined, dsn, dsn_len);
        joined[dsn_len] = ' ';
        if (e->reply_len)
            memcpy(joined + dsn_len + 1, e->reply, e->reply_len);
        if (reply_explain(joined, dsn_len + 1 + e->reply_len, &ex) == REPLY_EXPLAIN_OK) {
            e->ex = ex;
            e->explained = true;
        }
    } else if (dsn_len && reply_explain(dsn, dsn_len, &ex) == REPLY_EXPLAIN_OK) {
        e->ex = ex;
        e->explained = true;
    }
    if (dsn_len) {
        size_t used;
        reply_status_parse(dsn, dsn_len, &e->status, &used);
    } else if (e->explained && e->ex.status.cls) {
        e->status = e->ex.status;
    }
    if (e->outcome == REPLY_LOG_DELIVERED) {
        e->reason = "delivered";
    } else if (e->explained) {
        e->reason = reply_reason_name(e->ex.reason);
        if (e->outcome == REPLY_LOG_EXPIRED)
            e->reason = "expired";
    } else {
        e->reason = e->outcome == REPLY_LOG_EXPIRED ? "expired" : "undefined";
    }
    if (!e->status.cls) {
        e->status.cls = e->outcome == REPLY_LOG_DELIVERED ? 2
                        : e->outcome == REPLY_LOG_DEFERRED ? 4 : 5;
        /* the reply's class where it has one of a delivery's (not a 3xx) */
        if (e->explained && (e->ex.code / 100 == 2 || e->ex.code / 100 == 4 ||
                             e->ex.code / 100 == 5))
            e->status.cls = e->ex.code / 100;
    }
}

/* Postfix, Sendmail, clearmta: "QID: to=<r>, relay=…, dsn=X.Y.Z, status=bounced (reply)" or
 * Sendmail's "stat=User unknown". */
static bool keyvalue(const struct fields *x, const char *s, size_t n, struct reply_log_entry *e)
{
    const char *to, *st, *v;
    size_t ton, stn, vn;
    if (!field(x, s, n, "to", &to, &ton))
        return false;
    bool sendmail = false;
    if (!field(x, s, n, "status", &st, &stn)) {
        if (!field(x, s, n, "stat", &st, &stn))
            return false;
        sendmail = true;
    }
    e->recipient = to;
    e->recipient_len = ton;
    qid_before(s, to - (s < to && to[-1] == '<' ? 4 : 3), e);
    if (field(x, s, n, "relay", &v, &vn)) {
        e->relay = v;
        e->relay_len = vn;
    }
    /* the reply: "(…)" after status=, or all of stat= */
    const char *r = st + stn;
    const char *end = s + n;
    if (sendmail) {
        e->reply = st;
        e->reply_len = (size_t)(end - st);
    } else {
        while (r < end && *r == ' ')
            r++;
        if (r < end && *r == '(') {
            const char *close = end;
            while (close > r && close[-1] != ')')
                close--;
            e->reply = r + 1;
            e->reply_len = close > r + 1 ? (size_t)(close - 1 - (r + 1)) : 0;
        }
    }
    if ((stn >= 4 && (memcmp(st, "sent", 4) == 0 || memcmp(st, "Sent", 4) == 0)) ||
        (stn >= 9 && memcmp(st, "delivered", 9) == 0))
        e->outcome = REPLY_LOG_DELIVERED;
    else if (stn >= 8 && (memcmp(st, "deferred", 8) == 0 || memcmp(st, "Deferred", 8) == 0))
        e->outcome = REPLY_LOG_DEFERRED;
    else if (stn >= 7 && memcmp(st, "expired", 7) == 0)
        e->outcome = REPLY_LOG_EXPIRED;
    else
        e->outcome = REPLY_LOG_BOUNCED;
    const char *dsn = NULL;
    size_t dsnn = 0;
    if (field(x, s, n, "dsn", &v, &vn)) {
        dsn = v;
        dsnn = vn;
    }
    if (sendmail && e->outcome == REPLY_LOG_BOUNCED && dsn && dsnn && dsn[0] == '4')
        e->outcome = REPLY_LOG_DEFERRED;
    /* the program's name stands before the queue id: "mx postfix/smtp[1234]: 4F1A2B3C4D:" */
    size_t head = (size_t)(to - s);
    e->mta = find(s, head, "postfix") ? "postfix"
             : sendmail || find(s, head, "sendmail[") ? "sendmail"
                                                       : "clearmta";
    explain(e, dsn, dsnn);
    return true;
}

/* OpenSMTPD: "… mta delivery evpid=… to=<r> … relay=\"…\" … result=\"PermFail\" stat=\"…\"". */
static bool opensmtpd(const struct fields *x, const char *s, size_t n, struct reply_log_entry *e)
{
    const char *to, *res, *st, *v;
    size_t ton, resn, stn, vn;
    if (!find(s, n, " delivery ") || !field(x, s, n, "to", &to, &ton) ||
        !field(x, s, n, "result", &res, &resn))
        return false;
    e->mta = "opensmtpd";
    e->recipient = to;
    e->recipient_len = ton;
    if (field(x, s, n, "relay", &v, &vn)) {
        e->relay = v;
        e->relay_len = vn;
    }
    if (field(x, s, n, "stat", &st, &stn)) {
        e->reply = st;
        e->reply_len = stn;
    }
    /* the session id: the token after "smtpd[pid]: ", or the line's first in the daemon's
     * own output (smtpd -d writes no syslog prefix) */
    const char *p = find(s, n, "]: ");
    p = p ? p + 3 : s;
    {
        const char *q = p;
        while (q < s + n && *q != ' ')
            q++;
        e->queue_id = p;
        e->queue_id_len = (size_t)(q - p);
    }
    e->outcome = resn >= 2 && memcmp(res, "Ok", 2) == 0     ? REPLY_LOG_DELIVERED
                 : resn >= 8 && memcmp(res, "TempFail", 8) == 0 ? REPLY_LOG_DEFERRED
                                                             : REPLY_LOG_BOUNCED;
    explain(e, NULL, 0);
    return true;
}

/* Exim: "2026-01-02 03:04:05 1rABCD-000123-AB ** r@x R=… T=… H=…: SMTP error … 550 …". */
static bool exim(const struct fields *x, const char *s, size_t n, size_t at,
                 struct reply_log_entry *e)
{
    const char *end = s + n;
    const char *p = s + at;
    while (p < end && *p == ' ')
        p++;
    const char *id = p;
    while (p < end && *p != ' ')
        p++;
    size_t idn = (size_t)(p - id);
    /* Exim ids: 6-6-2 (old) or 6-11-4 (new) characters with dashes */
    if (idn < 16 || id[6] != '-')
        return false;
    while (p < end && *p == ' ')
        p++;
    if (end - p < 3 || p[2] != ' ')
        return false;
    if (memcmp(p, "**", 2) == 0)
        e->outcome = REPLY_LOG_BOUNCED;
    else if (memcmp(p, "==", 2) == 0)
        e->outcome = REPLY_LOG_DEFERRED;
    else if (memcmp(p, "=>", 2) == 0 || memcmp(p, "->", 2) == 0)
        e->outcome = REPLY_LOG_DELIVERED;
    else
        return false;
    e->mta = "exim";
    e->queue_id = id;
    e->queue_id_len = idn;
    p += 3;
    const char *r = p;
    while (p < end && *p != ' ' && *p != ':')
        p++;
    e->recipient = r;
    e->recipient_len = (size_t)(p - r);
    const char *v;
    size_t vn;
    if (field(x, s, n, "H", &v, &vn)) {
        e->relay = v;
        e->relay_len = vn;
    }
    /* the reply: after the last field's ": " */
    const char *colon = find(p, (size_t)(end - p), ": ");
    if (colon) {
        e->reply = colon + 2;
        e->reply_len = (size_t)(end - colon - 2);
    }
    if (e->outcome == REPLY_LOG_BOUNCED && e->reply &&
        find(e->reply, e->reply_len, "retry timeout exceeded"))
        e->outcome = REPLY_LOG_EXPIRED;
    explain(e, NULL, 0);
    return true;
}

/* chasquid: "… ID from=s to=r sent", "… to=r failed permanently: ERR", "… failed: ERR". */
static bool chasquid(const char *s, size_t n, struct reply_log_entry *e)
{
    const char *from = find(s, n, " from=");
    const char *to = find(s, n, " to=");
    if (!from || !to || to < from)
        return false;
    const char *end = s + n;
    const char *r = to + 4;
    const char *p = r;
    while (p < end && *p != ' ')
        p++;
    const char *rest = p;
    while (rest < end && *rest == ' ')
        rest++;
    size_t rn = (size_t)(end - rest);
    if (rn >= 4 && memcmp(rest, "sent", 4) == 0)
        e->outcome = REPLY_LOG_DELIVERED;
    else if (rn >= 18 && memcmp(rest, "failed permanently", 18) == 0)
        e->outcome = REPLY_LOG_BOUNCED;
    else if (rn >= 6 && memcmp(rest, "failed", 6) == 0)
        e->outcome = REPLY_LOG_DEFERRED;
    else
        return false;
    e->mta = "chasquid";
    e->recipient = r;
    e->recipient_len = (size_t)(p - r);
    const char *q = from;
    while (q > s && q[-1] != ' ')
        q--;
    e->queue_id = q;
    e->queue_id_len = (size_t)(from - q);
    const char *colon = find(rest, rn, ": ");
    if (colon) {
        e->reply = colon + 2;
        e->reply_len = (size_t)(end - colon - 2);
    }
    explain(e, NULL, 0);
    return true;
}

bool reply_log_parse(const char *line, size_t len, struct reply_log_entry *out)
{
    memset(out, 0, sizeof *out);
    struct fields x;
    index_fields(line, len, &x);
    size_t at = stamp(line, len, out);
    if (has_field(&x, "to")) {
        if (has_field(&x, "result") && opensmtpd(&x, line, len, out))
            return true;
        if (keyvalue(&x, line, len, out))
            return true;
        memset(out, 0, sizeof *out);
        at = stamp(line, len, out);
        if (chasquid(line, len, out))
            return true;
    }
    memset(out, 0, sizeof *out);
    at = stamp(line, len, out);
    if (at && exim(&x, line, len, at, out))
        return true;
    memset(out, 0, sizeof *out);
    return false;
}

const char *reply_log_outcome_name(enum reply_log_outcome o)
{
    switch (o) {
    case REPLY_LOG_DELIVERED:
        return "delivered";
    case REPLY_LOG_DEFERRED:
        return "deferred";
    case REPLY_LOG_BOUNCED:
        return "bounced";
    case REPLY_LOG_EXPIRED:
        return "expired";
    }
    return "bounced";
}
