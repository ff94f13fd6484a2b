/* reply/bounce.c — one bounce message to per-recipient results: the RFC 3464 fields when the
 * report has them, else the recipients and replies a plain-text report quotes; auto-replies
 * and feedback reports recognised. RFC 3464 §2.2-2.3, RFC 3834 §5, RFC 5965 §3.1. */
#include "reply/bounce.h"

#include <string.h>

#include "reply/bounce_reason.h"
#include "reply/mime.h"
#include "reply/reason.h"

#define DSN_PARTS_MAX 4
#define TEXT_MAX (64u * 1024u) /* notification text kept: replies sit in its first lines */

struct collect {
    const char *dsn[DSN_PARTS_MAX];
    size_t dsn_len[DSN_PARTS_MAX];
    size_t ndsn;
    const char *feedback;
    size_t feedback_len;
    const char *returned; /* header block of the (first) returned message */
    size_t returned_len;
    char *text; /* notification text: text parts outside the returned message */
    size_t text_len, text_cap;
    bool have_plain;
};

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Case-insensitive search of needle (lowercase) in s[0..n). */
static const char *ifind(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    if (m == 0 || m > n)
        return NULL;
    for (size_t i = 0; i + m <= n; i++) {
        if (lower((unsigned char)s[i]) != (unsigned char)needle[0])
            continue;
        size_t k = 1;
        while (k < m && lower((unsigned char)s[i + k]) == (unsigned char)needle[k])
            k++;
        if (k == m)
            return s + i;
    }
    return NULL;
}

static bool any_of(const char *s, size_t n, const char *const *words)
{
    for (size_t i = 0; words[i]; i++)
        if (ifind(s, n, words[i]))
            return true;
    return false;
}

static void copy_str(char *dst, size_t cap, const char *src, size_t n)
{
    if (cap == 0)
        return;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Appends s to the notification text, HTML tags dropped when html. */
static void text_add(struct collect *c, const char *s, size_t n, bool html)
{
    bool in_tag = false;
    for (size_t i = 0; i < n && c->text_len + 1 < c->text_cap; i++) {
        char ch = s[i];
        if (html) {
            if (ch == '<') {
                in_tag = true;
                /* a line break for block elements keeps the lines apart */
                if (i + 3 < n && (lower((unsigned char)s[i + 1]) == 'b' ||
                                  lower((unsigned char)s[i + 1]) == 'p' ||
                                  lower((unsigned char)s[i + 1]) == 'd' ||
                                  lower((unsigned char)s[i + 1]) == 't' ||
                                  s[i + 1] == '/'))
                    c->text[c->text_len++] = '\n';
                continue;
            }
            if (in_tag) {
                in_tag = ch != '>';
                continue;
            }
            if (ch == '&' && i + 4 < n && memcmp(s + i, "&lt;", 4) == 0) {
                c->text[c->text_len++] = '<';
                i += 3;
                continue;
            }
            if (ch == '&' && i + 4 < n && memcmp(s + i, "&gt;", 4) == 0) {
                c->text[c->text_len++] = '>';
                i += 3;
                continue;
            }
            if (ch == '&' && i + 6 < n && memcmp(s + i, "&nbsp;", 6) == 0) {
                c->text[c->text_len++] = ' ';
                i += 5;
                continue;
            }
        }
        c->text[c->text_len++] = ch;
    }
    if (c->text_len + 1 < c->text_cap)
        c->text[c->text_len++] = '\n';
}

static void on_part(void *ctx, const struct reply_mime_part *p)
{
    struct collect *c = ctx;
    if (p->returned_headers) {
        if (!c->returned) {
            c->returned = p->headers;
            c->returned_len = p->headers_len;
        }
        return;
    }
    if (strcmp(p->type, "message/delivery-status") == 0 ||
        strcmp(p->type, "message/global-delivery-status") == 0) {
        if (c->ndsn < DSN_PARTS_MAX) {
            c->dsn[c->ndsn] = p->body;
            c->dsn_len[c->ndsn++] = p->body_len;
        }
        return;
    }
    if (strcmp(p->type, "message/feedback-report") == 0) {
        c->feedback = p->body;
        c->feedback_len = p->body_len;
        return;
    }
    if (p->in_returned)
        return;
    if (strcmp(p->type, "text/plain") == 0) {
        c->have_plain = true;
        text_add(c, p->body, p->body_len, false);
    } else if (strcmp(p->type, "text/html") == 0 && !c->have_plain) {
        text_add(c, p->body, p->body_len, true);
    }
}

/* ---- addresses --------------------------------------------------------------------------- */

static bool addr_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr(".!#$%&'*+/=?^_`{|}~-", c) != NULL || c >= 0x80;
}

/* An address starting exactly at s[0] (local@domain.tld); its length or 0. */
static size_t addr_at(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && addr_char((unsigned char)s[i]))
        i++;
    if (i == 0 || i >= n || s[i] != '@')
        return 0;
    size_t at = i++;
    size_t dots = 0;
    size_t d0 = i;
    while (i < n && (addr_char((unsigned char)s[i]) || s[i] == '[' || s[i] == ']')) {
        if (s[i] == '.')
            dots++;
        i++;
    }
    while (i > d0 && (s[i - 1] == '.' || s[i - 1] == '-')) {
        i--;
        dots = dots > 0 ? dots - 1 : 0;
    }
    if (i == d0 || at == 0)
        return 0;
    return i;
}

/* The first address anywhere in s[0..n): its start in *off, length returned, 0 when none. */
static size_t addr_find(const char *s, size_t n, size_t *off)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '@')
            continue;
        size_t b = i;
        while (b > 0 && addr_char((unsigned char)s[b - 1]))
            b--;
        size_t m = addr_at(s + b, n - b);
        if (m) {
            *off = b;
            return m;
        }
    }
    return 0;
}

/* Strips "rfc822;" and the angle brackets from an address field value. */
static void clean_addr(const char *v, char *out, size_t cap)
{
    size_t n = strlen(v);
    size_t off;
    size_t m = addr_find(v, n, &off);
    if (m)
        copy_str(out, cap, v + off, m);
    else
        copy_str(out, cap, "", 0);
}

/* ---- RFC 3464 ---------------------------------------------------------------------------- */

/* "smtp; 550 …" → "550 …"; "dns; mx.example" → "mx.example". */
static const char *skip_type(const char *v)
{
    const char *semi = strchr(v, ';');
    if (semi && semi - v < 16) {
        bool word = true;
        for (const char *p = v; p < semi; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '-' || *p == ' '))
                word = false;
        if (word) {
            semi++;
            while (*semi == ' ')
                semi++;
            return semi;
        }
    }
    return v;
}

static struct reply_bounce_rcpt *add_rcpt(struct reply_bounce *b, const char *addr)
{
    for (size_t i = 0; i < b->nrcpt; i++)
        if (strcmp(b->rcpt[i].recipient, addr) == 0)
            return &b->rcpt[i];
    if (b->nrcpt >= REPLY_BOUNCE_RCPT_MAX)
        return NULL;
    struct reply_bounce_rcpt *r = &b->rcpt[b->nrcpt++];
    memset(r, 0, sizeof *r);
    copy_str(r->recipient, sizeof r->recipient, addr, strlen(addr));
    return r;
}

/* A complaint or opt-out about addr: no status, the reason "feedback". */
static void add_feedback(struct reply_bounce *b, const char *addr)
{
    struct reply_bounce_rcpt *r = add_rcpt(b, addr);
    if (r) {
        copy_str(r->action, sizeof r->action, "failed", 6);
        r->reason = "feedback";
    }
}

static void parse_dsn(const char *s, size_t n, struct reply_bounce *b)
{
    char mta[REPLY_BOUNCE_FIELD_MAX] = "";
    size_t i = 0;
    while (i < n) {
        /* one group: up to an empty line */
        size_t start = i;
        size_t end = n;
        while (i < n) {
            const char *nl = memchr(s + i, '\n', n - i);
            size_t e = nl ? (size_t)(nl - s) : n;
            size_t ln = e - i;
            if (ln > 0 && s[e - 1] == '\r')
                ln--;
            i = e < n ? e + 1 : n;
            if (ln == 0) {
                end = e;
                break;
            }
            end = i;
        }
        const char *g = s + start;
        size_t gn = end - start;
        if (gn == 0)
            continue;
        char v[REPLY_BOUNCE_DIAG_MAX], addr[REPLY_BOUNCE_ADDR_MAX];
        addr[0] = '\0';
        if (reply_mime_header(g, gn, "Final-Recipient", v, sizeof v))
            clean_addr(skip_type(v), addr, sizeof addr);
        if (!addr[0] && reply_mime_header(g, gn, "Original-Recipient", v, sizeof v))
            clean_addr(skip_type(v), addr, sizeof addr);
        if (!addr[0]) {
            if (reply_mime_header(g, gn, "Remote-MTA", v, sizeof v))
                copy_str(mta, sizeof mta, skip_type(v), strlen(skip_type(v)));
            continue;
        }
        struct reply_bounce_rcpt *r = add_rcpt(b, addr);
        if (!r)
            return;
        if (reply_mime_header(g, gn, "Action", v, sizeof v)) {
            size_t k = 0;
            while (v[k] && v[k] != ' ' && v[k] != '(' && k + 1 < sizeof r->action) {
                r->action[k] = (char)lower((unsigned char)v[k]);
                k++;
            }
            r->action[k] = '\0';
        }
        if (reply_mime_header(g, gn, "Status", v, sizeof v)) {
            struct reply_status st;
            size_t used;
            if (reply_status_parse(v, strlen(v), &st, &used)) {
                copy_str(r->status, sizeof r->status, v, used);
                r->status_given = true;
            }
        }
        if (reply_mime_header(g, gn, "Diagnostic-Code", v, sizeof v)) {
            const char *d = skip_type(v);
            copy_str(r->diag, sizeof r->diag, d, strlen(d));
            r->diag_unix = ifind(v, (size_t)(d - v), "x-unix") == v;
        }
        if (reply_mime_header(g, gn, "X-PowerMTA-BounceCategory", v, sizeof v))
            copy_str(r->category, sizeof r->category, v, strlen(v));
        if (reply_mime_header(g, gn, "Remote-MTA", v, sizeof v)) {
            const char *d = skip_type(v);
            copy_str(r->remote_mta, sizeof r->remote_mta, d, strlen(d));
        } else {
            copy_str(r->remote_mta, sizeof r->remote_mta, mta, strlen(mta));
        }
    }
}

/* ---- plain-text reports ------------------------------------------------------------------ */

/* Where the notification ends and the returned message starts, as reports word it. */
static bool cut_line(const char *s, size_t n)
{
    static const char *const marks[] = {
        "copy of the message", "original message", "copy of the original", "returned message",
        "message headers follow", "headers of the original", "header of the original",
        "original mail", "undelivered message", "message/rfc822", "message header follows",
        "unsent message", "original header", "copy of your message", "your message reads",
        NULL};
    if (n > 160 || !any_of(s, n, marks))
        return false;
    static const char *const shape[] = {"---", "===", "below", "follow", NULL};
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return any_of(s, n, shape) || (n > 0 && s[n - 1] == ':');
}

/* Labels before a recipient at the start of a line. */
static size_t skip_label(const char *s, size_t n)
{
    static const char *const labels[] = {
        "rcpt to:", "recipient address:", "recipient:", "original-recipient:", "address:",
        "failed recipient:", "addressed to", "could not be delivered to:", "invalid recipient:", "user:",
        "unknown user:", "mailbox:", NULL};
    for (size_t i = 0; labels[i]; i++) {
        size_t m = strlen(labels[i]);
        if (n >= m && ifind(s, m, labels[i]) == s) {
            size_t k = m;
            while (k < n && (s[k] == ' ' || s[k] == '\t'))
                k++;
            return k;
        }
    }
    return 0;
}

/* An address that begins its line (after white space, a label, '<', '"' or a list marker):
 * the shape every plain-text report gives its failed recipients. */
static size_t line_rcpt(const char *s, size_t n, size_t *off)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '*' || s[i] == '-' || s[i] == '>'))
        i++;
    /* Sendmail's "554 <rcpt>... reason": the reply code in front of the address */
    if (i + 4 < n && s[i] >= '2' && s[i] <= '5' && s[i + 1] >= '0' && s[i + 1] <= '9' &&
        s[i + 2] >= '0' && s[i + 2] <= '9' && s[i + 3] == ' ' && s[i + 4] == '<')
        i += 4;
    i += skip_label(s + i, n - i);
    while (i < n && (s[i] == '<' || s[i] == '"' || s[i] == '\'' || s[i] == '(' || s[i] == '['))
        i++;
    size_t m = addr_at(s + i, n - i);
    if (!m)
        return 0;
    *off = i;
    return m;
}

static bool same_addr(const char *a, size_t n, const char *b)
{
    size_t bn = strlen(b);
    if (bn != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

/* Appends s[0..n) to r->diag, joined with a space. */
static void diag_add(struct reply_bounce_rcpt *r, const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t' || *s == ':' || *s == '>' || *s == ',')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    if (n == 0)
        return;
    size_t len = strlen(r->diag);
    if (len + 2 >= sizeof r->diag)
        return;
    if (len > 0)
        r->diag[len++] = ' ';
    size_t m = n < sizeof r->diag - 1 - len ? n : sizeof r->diag - 1 - len;
    memcpy(r->diag + len, s, m);
    r->diag[len + m] = '\0';
}

/* Does the line hold what a reply says: a code or the usual words of a failure? */
static bool failure_words(const char *s, size_t n)
{
    static const char *const words[] = {
        "550", "551", "552", "553", "554", "450", "451", "452", "421", "5.", "4.", "unknown",
        "does not exist", "rejected", "refused", "denied", "full", "quota", "expired",
        "failed", "error", "invalid", "not found", "no such", "unavailable", "blocked",
        "disabled", "timeout", "timed out", "too ", "could not", "couldn't", "unable",
        "not exist", "permission", "not allowed", "reject", "not listed", "exceeded", NULL};
    return any_of(s, n, words);
}

/* The next line of t[0..n) from *i: its start and length without the line end (LF, or CRLF
 * with strip_cr); *i moves past it. False at the end. */
static bool next_line(const char *t, size_t n, size_t *i, bool strip_cr, const char **line,
                      size_t *len)
{
    if (*i >= n)
        return false;
    const char *nl = memchr(t + *i, '\n', n - *i);
    size_t e = nl ? (size_t)(nl - t) : n;
    *line = t + *i;
    *len = e - *i;
    *i = e < n ? e + 1 : n;
    if (strip_cr && *len > 0 && (*line)[*len - 1] == '\r')
        (*len)--;
    return true;
}

/* The lines of the notification (up to the returned message) that say what failed. */
static void failure_lines(const char *t, size_t n, struct reply_bounce_rcpt *r)
{
    size_t i = 0;
    const char *s;
    size_t ln;
    while (next_line(t, n, &i, false, &s, &ln)) {
        if (cut_line(s, ln))
            break;
        if (failure_words(s, ln) && strlen(r->diag) < sizeof r->diag / 2)
            diag_add(r, s, ln);
    }
}

/* Amazon SES and other services send JSON notifications: "emailAddress" per recipient with its
 * "action", "status" and "diagnosticCode"; deliveries list "recipients" and "smtpResponse". */
static size_t json_value(const char *s, size_t n, const char *key, char *out, size_t cap)
{
    const char *k = ifind(s, n, key);
    if (!k)
        return 0;
    const char *p = k + strlen(key);
    const char *end = s + n;
    while (p < end && (*p == '"' || *p == ' ' || *p == ':' || *p == '['))
        p++;
    const char *q = p;
    while (q < end && *q != '"' && *q != '\n')
        q++;
    copy_str(out, cap, p, (size_t)(q - p));
    return (size_t)(q - s);
}

static void parse_json(const char *t, size_t n, struct reply_bounce *b)
{
    char v[REPLY_BOUNCE_DIAG_MAX];
    bool delivery = ifind(t, n, "\"notificationtype\":\"delivery\"") != NULL;
    const char *key = delivery ? "\"recipients\"" : "\"emailaddress\"";
    size_t i = 0;
    while (i < n) {
        size_t used = json_value(t + i, n - i, key, v, sizeof v);
        if (!used)
            break;
        char addr[REPLY_BOUNCE_ADDR_MAX];
        clean_addr(v, addr, sizeof addr);
        size_t from = i;
        i += used;
        if (!addr[0])
            continue;
        struct reply_bounce_rcpt *r = add_rcpt(b, addr);
        if (!r)
            return;
        /* the recipient's own object: up to its closing brace */
        const char *close = memchr(t + from, '}', n - from);
        size_t on = close ? (size_t)(close - (t + from)) : n - from;
        if (delivery) {
            copy_str(r->action, sizeof r->action, "delivered", 9);
            on = n - from;
            if (json_value(t + from, on, "\"smtpresponse\"", v, sizeof v))
                copy_str(r->diag, sizeof r->diag, v, strlen(v));
            continue;
        }
        if (json_value(t + from, on, "\"action\"", v, sizeof v))
            copy_str(r->action, sizeof r->action, v, strlen(v) < 15 ? strlen(v) : 15);
        if (json_value(t + from, on, "\"status\"", v, sizeof v)) {
            struct reply_status st;
            size_t u;
            if (reply_status_parse(v, strlen(v), &st, &u)) {
                copy_str(r->status, sizeof r->status, v, u);
                r->status_given = true;
            }
        }
        if (json_value(t + from, on, "\"diagnosticcode\"", v, sizeof v)) {
            const char *d = skip_type(v);
            copy_str(r->diag, sizeof r->diag, d, strlen(d));
        }
    }
}

static void parse_text(const char *t, size_t n, const char *bounce_to, struct reply_bounce *b)
{
    struct reply_bounce_rcpt *cur = NULL;
    size_t lines_after = 0;
    char global[REPLY_BOUNCE_DIAG_MAX] = ""; /* failure lines seen before any recipient */
    size_t gl = 0;
    size_t i = 0;
    size_t returned_at = n; /* where the returned message starts */
    const char *s;
    size_t ln;
    while (next_line(t, n, &i, true, &s, &ln)) {
        if (cut_line(s, ln)) {
            returned_at = i;
            break;
        }
        size_t off, m = line_rcpt(s, ln, &off);
        if (m && ifind(s, ln, "mailer-daemon@") == NULL) {
            char addr[REPLY_BOUNCE_ADDR_MAX];
            copy_str(addr, sizeof addr, s + off, m);
            struct reply_bounce_rcpt *r = add_rcpt(b, addr);
            if (r) {
                cur = r;
                lines_after = 0;
                size_t rest = off + m;
                while (rest < ln && (s[rest] == '>' || s[rest] == '"' || s[rest] == ')' ||
                                     s[rest] == ']'))
                    rest++;
                diag_add(cur, s + rest, ln - rest);
                /* "Unknown user: rcpt": the words stand before the address */
                if (rest >= ln && failure_words(s, off))
                    diag_add(cur, s, off);
                continue;
            }
        }
        bool blank = true;
        for (size_t k = 0; k < ln && blank; k++)
            blank = s[k] == ' ' || s[k] == '\t';
        if (cur) {
            if (blank) {
                lines_after++;
                continue;
            }
            /* the reply follows its recipient within a few paragraphs */
            if (lines_after < 4 || strlen(cur->diag) == 0 || failure_words(s, ln)) {
                if (strlen(cur->diag) < sizeof cur->diag / 2)
                    diag_add(cur, s, ln);
            }
        } else if (!blank && failure_words(s, ln) && gl + ln + 2 < sizeof global) {
            if (gl > 0)
                global[gl++] = ' ';
            memcpy(global + gl, s, ln);
            gl += ln;
            global[gl] = '\0';
        }
    }
    /* The report's own addressee (the sender) is a recipient only when nobody else is: a
     * message bounced back to its own sender names it. */
    if (b->nrcpt > 1) {
        size_t w = 0;
        for (size_t k = 0; k < b->nrcpt; k++) {
            if (same_addr(b->rcpt[k].recipient, strlen(b->rcpt[k].recipient), bounce_to))
                continue;
            if (w != k)
                b->rcpt[w] = b->rcpt[k];
            w++;
        }
        b->nrcpt = w;
    }
    /* No address begins a line: the first one the words name ("could not deliver your mail
     * to <x>") that is not the report's own addressee. */
    if (b->nrcpt == 0 && gl > 0) {
        size_t j = 0;
        while (j < n) {
            const char *nl2 = memchr(t + j, '\n', n - j);
            size_t e2 = nl2 ? (size_t)(nl2 - t) : n;
            if (cut_line(t + j, e2 - j))
                break;
            size_t off, m = addr_find(t + j, e2 - j, &off);
            if (m && !same_addr(t + j + off, m, bounce_to) &&
                ifind(t + j, e2 - j, "mailer-daemon@") == NULL) {
                char addr[REPLY_BOUNCE_ADDR_MAX];
                copy_str(addr, sizeof addr, t + j + off, m);
                add_rcpt(b, addr);
                break;
            }
            j = e2 < n ? e2 + 1 : n;
        }
    }
    /* Still none: the returned message quoted below the words names it in its To: field. */
    for (size_t j = returned_at; b->nrcpt == 0 && j < n && j - returned_at < 16384;) {
        const char *nl2 = memchr(t + j, '\n', n - j);
        size_t e2 = nl2 ? (size_t)(nl2 - t) : n;
        size_t off, m;
        if (e2 - j > 3 && ifind(t + j, 3, "to:") == t + j &&
            (m = addr_find(t + j, e2 - j, &off)) != 0) {
            char addr[REPLY_BOUNCE_ADDR_MAX];
            copy_str(addr, sizeof addr, t + j + off, m);
            add_rcpt(b, addr);
        }
        j = e2 < n ? e2 + 1 : n;
    }
    /* recipients without words of their own share the report's */
    for (size_t k = 0; k < b->nrcpt; k++)
        if (b->rcpt[k].diag[0] == '\0' || !failure_words(b->rcpt[k].diag, strlen(b->rcpt[k].diag)))
            diag_add(&b->rcpt[k], global, gl);
}

/* A report whose status part has no Diagnostic-Code often quotes the reply in its words
 * ("rcpt@example.org: 550 5.7.26 …" under the address): take them. */
static void text_diag_for(const char *t, size_t n, struct reply_bounce_rcpt *r)
{
    size_t i = 0;
    bool taking = false;
    size_t lines = 0, indent = 0;
    const char *s;
    size_t ln;
    while (next_line(t, n, &i, true, &s, &ln)) {
        if (cut_line(s, ln))
            return;
        size_t off, m = line_rcpt(s, ln, &off);
        size_t in = 0;
        while (in < ln && (s[in] == ' ' || s[in] == '\t'))
            in++;
        if (taking) {
            /* a line indented deeper than the recipient's, or naming the same recipient again,
             * continues its words (Postfix wraps "said: 550\n    <rcpt>... (in reply …)") */
            bool same = m && same_addr(s + off, m, r->recipient);
            if ((m && in <= indent && !same) || ln == 0 || ++lines > 4)
                return;
            diag_add(r, s, ln);
            continue;
        }
        indent = in;
        if (m && same_addr(s + off, m, r->recipient)) {
            size_t rest = off + m;
            while (rest < ln && (s[rest] == '>' || s[rest] == '"' || s[rest] == ')'))
                rest++;
            diag_add(r, s + rest, ln - rest);
            taking = true;
        }
    }
}

/* ---- reasons and codes ------------------------------------------------------------------- */

/* The code that fits a reason best when the report gives none (class digit replaced). */
static const char *reason_status(const char *reason)
{
    static const struct {
        const char *reason, *status;
    } map[] = {
        {"userunknown", "5.1.1"},   {"hostunknown", "5.1.2"},   {"hasmoved", "5.1.6"},
        {"mailboxfull", "5.2.2"},   {"exceedlimit", "5.2.3"},   {"mesgtoobig", "5.3.4"},
        {"suspend", "5.2.1"},       {"filtered", "5.2.1"},      {"norelaying", "5.7.1"},
        {"blocked", "5.7.1"},       {"spamdetected", "5.7.1"},  {"policyviolation", "5.7.1"},
        {"rejected", "5.1.8"},      {"securityerror", "5.7.0"}, {"authfailure", "5.7.1"},
        {"virusdetected", "5.7.1"}, {"expired", "5.4.7"},       {"networkerror", "5.4.4"},
        {"systemerror", "5.3.0"},   {"systemfull", "5.3.1"},    {"notaccept", "5.3.2"},
        {"toomanyconn", "5.4.3"},   {"speeding", "5.7.1"},      {"syntaxerror", "5.5.2"},
        {"contenterror", "5.6.0"},  {"mailererror", "5.3.0"},   {"requireptr", "5.7.25"},
        {"badreputation", "5.7.1"}, {"notcompliantrfc", "5.6.0"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].reason, reason) == 0)
            return map[i].status;
    return "5.0.0";
}

static bool status_vague(const char *st)
{
    size_t n = strlen(st);
    return n >= 4 && st[n - 2] == '.' && st[n - 1] == '0' && st[n - 3] == '0';
}

/* The reply's first words from its code on, lowercased into key (a transcript quotes them). */
static size_t reply_key(const char *diag, char *key, size_t cap)
{
    for (const char *p = diag; p[0] && p[1] && p[2] && p[3]; p++) {
        if (p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
            p[2] <= '9' && (p[3] == ' ' || p[3] == '-') && (p == diag || p[-1] == ' ')) {
            diag = p;
            break;
        }
    }
    size_t dn = strlen(diag);
    if (dn < 8 || cap == 0)
        return 0;
    size_t kn = dn < cap - 1 ? dn : cap - 1;
    for (size_t k = 0; k < kn; k++)
        key[k] = (char)lower((unsigned char)diag[k]);
    key[kn] = '\0';
    return kn;
}

/* Sendmail-style transcripts (">>> RCPT TO:<…>" then "<<< 550 …"): the stage of the command
 * the line quoting this reply answered. A multi-line reply the report cut to its first line
 * ("552-5.7.0 This message was blocked …") is taken whole from the transcript's "<<< " lines. */
static enum reply_bounce_stage transcript_stage(const char *t, size_t n, struct reply_bounce_rcpt *r)
{
    char key[24];
    if (!reply_key(r->diag, key, sizeof key))
        return REPLY_STAGE_NONE;
    enum reply_bounce_stage stage = REPLY_STAGE_NONE;
    size_t i = 0;
    const char *s;
    size_t ln;
    while (next_line(t, n, &i, true, &s, &ln)) {
        if (ln >= 4 && memcmp(s, ">>> ", 4) == 0) {
            stage = reply_bounce_stage(s + 4, ln - 4);
        } else if (ln >= 4 && memcmp(s, "<<< ", 4) == 0 && ifind(s, ln, key)) {
            if (ln > 7 && s[7] == '-') {
                /* "<<< 552-…" continues: replace the cut reply by all its lines */
                r->diag[0] = '\0';
                diag_add(r, s + 4, ln - 4);
                while (next_line(t, n, &i, true, &s, &ln) && ln > 7 && memcmp(s, "<<< ", 4) == 0) {
                    diag_add(r, s + 4, ln - 4);
                    if (s[7] != '-')
                        break;
                }
            }
            return stage;
        }
    }
    return REPLY_STAGE_NONE;
}

static void explain_rcpt(struct reply_bounce_rcpt *r, enum reply_bounce_stage stage)
{
    int cls = 5;
    bool action_given = r->action[0] != '\0';
    if (r->status_given)
        cls = r->status[0] - '0';
    else if (strcmp(r->action, "delayed") == 0)
        cls = 4;
    else if (strcmp(r->action, "delivered") == 0 || strcmp(r->action, "relayed") == 0 ||
             strcmp(r->action, "expanded") == 0)
        cls = 2;
    if (!r->action[0])
        copy_str(r->action, sizeof r->action, cls == 4 ? "delayed" : "failed",
                 cls == 4 ? 7 : 6);

    /* The reply with the report's status in front: explain takes the reply's own code first
     * and falls back on the status when the text holds no code. */
    static _Thread_local char in[REPLY_BOUNCE_DIAG_MAX + 32];
    size_t dn = strlen(r->diag);
    const char *st = r->status_given ? r->status : (cls == 4 ? "4.0.0" : cls == 2 ? "2.0.0" : "5.0.0");
    size_t sn = strlen(st);
    memcpy(in, st, sn);
    in[sn] = ' ';
    memcpy(in + sn + 1, r->diag, dn);
    size_t n = sn + 1 + dn;
    for (size_t k = 0; k < n; k++) {
        /* a diag with control bytes would be refused whole: blank them */
        if ((unsigned char)in[k] < 0x20 && in[k] != '\n' && in[k] != '\t')
            in[k] = ' ';
        /* qmail writes its status as "(#4.4.3)": make the code a token of its own */
        if (in[k] == '#' && k + 1 < n && in[k + 1] >= '2' && in[k + 1] <= '5')
            in[k] = ' ';
    }
    /* The reply alone first, so that its own code decides; the report's status in front of it
     * only when the reply holds no code. */
    struct reply_explanation ex;
    enum reply_explain_err xe = dn ? reply_explain(in + sn + 1, dn, &ex) : REPLY_EXPLAIN_NO_CODE;
    if (xe == REPLY_EXPLAIN_OK)
        sn = 0; /* offsets below are relative to the reply */
    else
        xe = reply_explain(in, n, &ex);
    if (xe == REPLY_EXPLAIN_OK) {
        r->explained = true;
        r->ex = ex;
        r->reason = reply_reason_name(ex.reason);
        /* a transient reply in a report that gives no status: the status is transient too */
        if (!r->status_given && ex.code / 100 == 4 && cls == 5)
            cls = 4;
        /* a 2xx in the words of a failure report ("Size (in bytes): 222") is no success */
        if (cls != 2 && ex.cls == REPLY_CLASS_SUCCESS)
            r->reason = "undefined";
        /* the reply's code decides where it holds one (a DSN's own Status is often 5.0.0) */
        if (ex.code && (sn == 0 || ex.code_offset > sn))
            r->reply_code = ex.code;
        /* the remote reply's own enhanced code is more precise than the reporting MTA's
         * summary of it (Sendmail writes 5.1.1 for a 550 5.7.1 block) */
        bool own = sn == 0 && ex.status.cls == r->status[0] - '0' &&
                   !(ex.status.subject == 0 && ex.status.detail == 0);
        if (ex.status.cls && (!r->status_given || status_vague(r->status) || own)) {
            char buf[16];
            size_t k = 0;
            int parts[3] = {ex.status.cls, ex.status.subject, ex.status.detail};
            for (int p = 0; p < 3; p++) {
                char d[8];
                size_t dl = 0;
                int v = parts[p];
                do {
                    d[dl++] = (char)('0' + v % 10);
                    v /= 10;
                } while (v && dl < sizeof d);
                while (dl && k + 1 < sizeof buf)
                    buf[k++] = d[--dl];
                if (p < 2 && k + 1 < sizeof buf)
                    buf[k++] = '.';
            }
            buf[k] = '\0';
            if (!(ex.status.subject == 0 && ex.status.detail == 0) || !r->status_given) {
                copy_str(r->status, sizeof r->status, buf, k);
            }
        }
    } else {
        r->reason = "undefined";
    }
    const char *dom = strrchr(r->recipient, '@');
    if (cls == 2) {
        r->reason = "delivered";
    } else if (strcmp(r->reason, "undefined") == 0 && dom &&
               strcmp(dom, "@googlegroups.com") == 0) {
        /* Google Groups words its refusals in the poster's language; a group refuses the poster */
        r->reason = "rejected";
    } else {
        struct reply_bounce_facts f = {
            .diag = r->diag, .status = r->status, .action = action_given ? r->action : "",
            .remote_mta = r->remote_mta, .recipient = r->recipient, .stage = stage,
            .diag_unix = r->diag_unix, .status_given = r->status_given,
            .category = r->category,
            .ex = r->explained ? &r->ex : NULL};
        r->reason = reply_bounce_reason(r->reason, &f);
    }
    /* a reason the report's context changed brings the table's words for it: the code's
     * meaning stands, the cause and what to do are the new reason's (patterns.def) */
    enum reply_reason decided;
    if (r->explained && reply_reason_from_name(r->reason, &decided) && decided != r->ex.reason) {
        const struct reply_reason_info *info = reply_reason_info(decided);
        r->ex.reason = decided;
        r->ex.reason_from = REPLY_REASON_FROM_TEXT;
        r->ex.pattern = NULL;
        if (info) {
            r->ex.summary = info->summary;
            r->ex.cause = info->cause;
            r->ex.action = info->action;
        }
    }
    if (!r->status[0] || (status_vague(r->status) && !r->status_given)) {
        const char *rs = reason_status(r->reason);
        copy_str(r->status, sizeof r->status, rs, strlen(rs));
        if (cls == 4)
            r->status[0] = '4';
    }
    r->hard = strcmp(r->reason, "userunknown") == 0 || strcmp(r->reason, "hostunknown") == 0 ||
              strcmp(r->reason, "hasmoved") == 0 ||
              (strcmp(r->reason, "notaccept") == 0 && r->status[0] == '5');
    /* ex points into the static buffer: repoint it at the record's own copy of the diag */
    if (r->explained) {
        r->ex.text = NULL;
        r->ex.text_len = 0;
        r->ex.command = NULL;
        r->ex.command_len = 0;
    }
}

/* ---- kinds ------------------------------------------------------------------------------- */

static bool from_daemon(const char *from)
{
    static const char *const who[] = {"mailer-daemon", "postmaster", "post_master", "mail delivery",
                                      "mail administrator", "mdaemon", "mailerdaemon",
                                      "mail.delivery", "bounce", "nobody@", "root@", NULL};
    return any_of(from, strlen(from), who);
}

static bool subject_bounce(const char *subj)
{
    static const char *const words[] = {
        "undeliver", "delivery status", "delivery fail", "failure notice", "returned mail",
        "mail delivery", "non remis", "nondeliver", "non-deliver", "could not be delivered",
        "returned to sender", "delivery notification", "unzustellbar", "rejected",
        "mail system error", "delivery report", "not delivered", "failed delivery",
        "delivery problem", "warning: could not send", "delayed mail", "error", "bounce",
        "dsn", "fail",
        /* Japanese carriers: "error", "undelivered", "returned" */
        "\xe3\x82\xa8\xe3\x83\xa9\xe3\x83\xbc", "\xe4\xb8\x8d\xe9\x81\x94",
        "\xe8\xbf\x94\xe9\x80\x81", NULL};
    return any_of(subj, strlen(subj), words);
}

static bool subject_autoreply(const char *subj)
{
    static const char *const words[] = {"auto:", "autoreply", "auto-reply", "auto reply",
                                        "automatic reply", "out of office", "out of the office",
                                        "away", "vacation", "abwesenheit", "absence",
                                        "autosvar", "risposta automatica", NULL};
    return any_of(subj, strlen(subj), words);
}

const char *reply_bounce_kind_name(enum reply_bounce_kind kind)
{
    switch (kind) {
    case REPLY_BOUNCE_NONE:
        return "none";
    case REPLY_BOUNCE_DSN:
        return "bounce";
    case REPLY_BOUNCE_VACATION:
        return "vacation";
    case REPLY_BOUNCE_FEEDBACK:
        return "feedback";
    }
    return "none";
}

static void returned_fields(const char *h, size_t hn, struct reply_bounce *b)
{
    char v[REPLY_BOUNCE_FIELD_MAX];
    if (reply_mime_header(h, hn, "Message-ID", v, sizeof v))
        copy_str(b->message_id, sizeof b->message_id, v, strlen(v));
    if (reply_mime_header(h, hn, "Subject", v, sizeof v))
        copy_str(b->subject, sizeof b->subject, v, strlen(v));
    if (reply_mime_header(h, hn, "From", v, sizeof v))
        copy_str(b->sender, sizeof b->sender, v, strlen(v));
    if (reply_mime_header(h, hn, "Date", v, sizeof v))
        copy_str(b->date, sizeof b->date, v, strlen(v));
}

/* The returned message quoted inline after the report's words (no message/rfc822 part). */
static void inline_returned(const char *t, size_t n, struct reply_bounce *b)
{
    const char *p = t;
    while ((p = ifind(p, n - (size_t)(p - t), "message-id:")) != NULL) {
        if (p == t || p[-1] == '\n') {
            /* take the header block around it */
            const char *start = p;
            size_t back = 0;
            while (start > t && back < 4096) {
                start--;
                back++;
            }
            returned_fields(start, (size_t)(t + n - start) < 16384 ? (size_t)(t + n - start) : 16384, b);
            return;
        }
        p++;
    }
}

enum reply_bounce_kind reply_bounce_parse(const char *msg, size_t len, char *arena, size_t cap,
                                          struct reply_bounce *out)
{
    out->kind = REPLY_BOUNCE_NONE;
    out->feedback_type[0] = out->message_id[0] = out->subject[0] = '\0';
    out->sender[0] = out->date[0] = '\0';
    out->nrcpt = 0;

    size_t text_cap = cap / 4 < TEXT_MAX ? cap / 4 : TEXT_MAX;
    struct collect c = {.text = arena, .text_cap = text_cap};
    size_t body_off;
    size_t hn = reply_mime_header_end(msg, len, &body_off);
    reply_mime_walk(msg, len, arena + text_cap, cap - text_cap, on_part, &c);

    char from[REPLY_BOUNCE_FIELD_MAX], subj[REPLY_BOUNCE_FIELD_MAX], to[REPLY_BOUNCE_FIELD_MAX];
    char v[REPLY_BOUNCE_FIELD_MAX], ct[REPLY_BOUNCE_FIELD_MAX];
    reply_mime_header(msg, hn, "From", from, sizeof from);
    reply_mime_header(msg, hn, "Subject", subj, sizeof subj);
    reply_mime_header(msg, hn, "To", v, sizeof v);
    clean_addr(v, to, sizeof to);
    reply_mime_header(msg, hn, "Content-Type", ct, sizeof ct);
    if (c.returned)
        returned_fields(c.returned, c.returned_len, out);

    /* A mail whose subject is "unsubscribe" asks to be taken off the list: an opt-out */
    size_t sl = strlen(subj);
    while (sl > 0 && (subj[sl - 1] == ' ' || subj[sl - 1] == '.'))
        sl--;
    if (sl == 11 && ifind(subj, sl, "unsubscribe") == subj) {
        out->kind = REPLY_BOUNCE_FEEDBACK;
        copy_str(out->feedback_type, sizeof out->feedback_type, "opt-out", 7);
        char addr[REPLY_BOUNCE_ADDR_MAX];
        clean_addr(from, addr, sizeof addr);
        add_feedback(out, addr);
        return out->kind;
    }
    /* Amazon SES complaint notifications */
    if (ifind(c.text, c.text_len < 4096 ? c.text_len : 4096, "\"notificationtype\":\"complaint\"")) {
        out->kind = REPLY_BOUNCE_FEEDBACK;
        size_t used = json_value(c.text, c.text_len, "\"complaintfeedbacktype\"", v, sizeof v);
        copy_str(out->feedback_type, sizeof out->feedback_type, used ? v : "abuse",
                 used ? strlen(v) : 5);
        for (size_t i = 0; i < c.text_len;) {
            size_t u = json_value(c.text + i, c.text_len - i, "\"emailaddress\"", v, sizeof v);
            if (!u)
                break;
            char addr[REPLY_BOUNCE_ADDR_MAX];
            clean_addr(v, addr, sizeof addr);
            if (addr[0])
                add_feedback(out, addr);
            i += u;
        }
        if (out->nrcpt > 0)
            return out->kind;
        out->kind = REPLY_BOUNCE_NONE;
    }
    /* ARF (RFC 5965), or a provider's own complaint report: one record per recipient */
    if (c.feedback || ifind(ct, strlen(ct), "feedback-report") ||
        (!from_daemon(from) && ifind(subj, strlen(subj), "complaint about"))) {
        out->kind = REPLY_BOUNCE_FEEDBACK;
        char addr[REPLY_BOUNCE_ADDR_MAX] = "";
        if (c.feedback) {
            if (reply_mime_header(c.feedback, c.feedback_len, "Feedback-Type", v, sizeof v))
                copy_str(out->feedback_type, sizeof out->feedback_type, v, strlen(v));
            /* one record per Original-Rcpt-To (RFC 5965 §3.2 allows several) */
            const char *f = c.feedback;
            size_t fl = c.feedback_len;
            for (const char *p; (p = ifind(f, fl, "original-rcpt-to:")) != NULL;) {
                size_t off;
                size_t rest = fl - (size_t)(p - f);
                const char *nl = memchr(p, '\n', rest);
                size_t ln = nl ? (size_t)(nl - p) : rest;
                size_t m = addr_find(p, ln, &off);
                if (m && (p == c.feedback || p[-1] == '\n')) {
                    char one[REPLY_BOUNCE_ADDR_MAX];
                    copy_str(one, sizeof one, p + off, m);
                    add_feedback(out, one);
                }
                fl -= (size_t)(p + 1 - f);
                f = p + 1;
            }
            if (out->nrcpt > 0)
                return out->kind;
            if (reply_mime_header(c.feedback, c.feedback_len, "Removal-Recipient", v, sizeof v))
                clean_addr(v, addr, sizeof addr);
        }
        if (!addr[0] && c.returned && reply_mime_header(c.returned, c.returned_len, "To", v, sizeof v))
            clean_addr(v, addr, sizeof addr);
        add_feedback(out, addr);
        return out->kind;
    }

    for (size_t k = 0; k < c.ndsn; k++)
        parse_dsn(c.dsn[k], c.dsn_len[k], out);
    for (size_t k = 0; k < out->nrcpt; k++)
        if (out->rcpt[k].diag[0] == '\0')
            text_diag_for(c.text, c.text_len, &out->rcpt[k]);
    static const char *const body_words[] = {"could not be delivered", "undeliverable",
                                             "delivery has failed", "not be delivered to",
                                             "permanent error", "delivery failed", NULL};
    bool bounce_words = from_daemon(from) || subject_bounce(subj) ||
                        any_of(c.text, c.text_len < 4096 ? c.text_len : 4096, body_words);

    /* Auto-replies (RFC 3834): not a failure, whoever sends them */
    char as[64] = "";
    reply_mime_header(msg, hn, "Auto-Submitted", as, sizeof as);
    bool auto_hdr = (as[0] && ifind(as, strlen(as), "auto-replied")) ||
                    reply_mime_header(msg, hn, "X-Autoreply", v, sizeof v) ||
                    reply_mime_header(msg, hn, "X-Autorespond", v, sizeof v) ||
                    (reply_mime_header(msg, hn, "Precedence", v, sizeof v) &&
                     ifind(v, strlen(v), "auto_reply"));
    if (out->nrcpt == 0 && !from_daemon(from) &&
        (subject_autoreply(subj) || (auto_hdr && !subject_bounce(subj)))) {
        out->kind = REPLY_BOUNCE_VACATION;
        char addr[REPLY_BOUNCE_ADDR_MAX];
        clean_addr(from, addr, sizeof addr);
        struct reply_bounce_rcpt *r = add_rcpt(out, addr);
        if (r) {
            copy_str(r->action, sizeof r->action, "delivered", 9);
            r->reason = "vacation";
            size_t m = c.text_len < 200 ? c.text_len : 200;
            copy_str(r->diag, sizeof r->diag, c.text, m);
        }
        return out->kind;
    }

    if (out->nrcpt == 0 && ifind(c.text, c.text_len < 4096 ? c.text_len : 4096, "notificationtype\\\"")) {
        /* SNS wraps the SES notification as a JSON string: its quotes are escaped */
        static _Thread_local char unesc[TEXT_MAX];
        size_t u = 0;
        for (size_t k = 0; k < c.text_len && u < sizeof unesc; k++)
            if (!(c.text[k] == '\\' && k + 1 < c.text_len && c.text[k + 1] == '"'))
                unesc[u++] = c.text[k];
        parse_json(unesc, u, out);
    }
    if (out->nrcpt == 0 && ifind(c.text, c.text_len < 4096 ? c.text_len : 4096, "\"notificationtype\""))
        parse_json(c.text, c.text_len, out);
    if (out->nrcpt == 0 && (bounce_words || c.ndsn > 0))
        parse_text(c.text, c.text_len, to, out);
    if (out->nrcpt == 0 && bounce_words && c.returned &&
        reply_mime_header(c.returned, c.returned_len, "To", v, sizeof v)) {
        /* the report names no recipient: the returned message's is the one that failed */
        char addr[REPLY_BOUNCE_ADDR_MAX];
        clean_addr(v, addr, sizeof addr);
        struct reply_bounce_rcpt *r = addr[0] ? add_rcpt(out, addr) : NULL;
        if (r)
            failure_lines(c.text, c.text_len, r);
    }
    if (out->nrcpt == 0 && bounce_words) {
        /* last resort: the first address the report's words name, other than its own */
        char self[REPLY_BOUNCE_ADDR_MAX];
        clean_addr(from, self, sizeof self);
        for (size_t j = 0; j < c.text_len;) {
            size_t off, m = addr_find(c.text + j, c.text_len - j, &off);
            if (!m)
                break;
            const char *a = c.text + j + off;
            if (!same_addr(a, m, to) && !same_addr(a, m, self) &&
                ifind(a, m, "mailer-daemon@") == NULL && ifind(a, m, "postmaster@") == NULL) {
                char addr[REPLY_BOUNCE_ADDR_MAX];
                copy_str(addr, sizeof addr, a, m);
                struct reply_bounce_rcpt *r = add_rcpt(out, addr);
                if (r)
                    failure_lines(c.text, c.text_len, r);
                break;
            }
            j += off + m;
        }
    }
    if (out->nrcpt == 0)
        return out->kind;
    if (!c.returned)
        inline_returned(c.text, c.text_len, out);
    out->kind = REPLY_BOUNCE_DSN;
    for (size_t k = 0; k < out->nrcpt; k++) {
        /* line breaks of quoted replies become spaces: one reply per recipient */
        char *d = out->rcpt[k].diag;
        for (size_t j = 0; d[j]; j++)
            if (d[j] == '\n' || d[j] == '\r' || d[j] == '\t')
                d[j] = ' ';
        /* the report's words about this recipient may name the stage the status part omits
         * (Postfix: "(in reply to end of DATA command)") */
        static _Thread_local struct reply_bounce_rcpt words;
        memset(words.recipient, 0, sizeof words.recipient);
        copy_str(words.recipient, sizeof words.recipient, out->rcpt[k].recipient,
                 strlen(out->rcpt[k].recipient));
        words.diag[0] = '\0';
        if (c.ndsn > 0)
            text_diag_for(c.text, c.text_len, &words);
        enum reply_bounce_stage in_transcript = transcript_stage(c.text, c.text_len, &out->rcpt[k]);
        enum reply_bounce_stage stage = reply_bounce_stage(d, strlen(d));
        if (stage == REPLY_STAGE_NONE)
            stage = reply_bounce_stage(words.diag, strlen(words.diag));
        if (stage == REPLY_STAGE_NONE)
            stage = in_transcript;
        /* Exim names a delivery to a program "pipe to |/path …" */
        if (ifind(c.text, c.text_len < 4096 ? c.text_len : 4096, "pipe to |"))
            out->rcpt[k].diag_unix = true;
        explain_rcpt(&out->rcpt[k], stage);
    }
    return out->kind;
}
