/* reply/bounce_reason.c — the reason of one bounced recipient by the conventions of the reason
 * vocabulary (Sisimai's): "unknown user" counts as a missing mailbox only when the status says
 * so (X.1.1) or RCPT TO was refused, else a filter refused the message; a refusal at MAIL FROM is
 * the sender's; a bare refusal of the greeting is a block; a local program's failure (X-Unix) is
 * a mailer error; and providers' documented error codes (Cox, Spectrum, Orange, KDDI/au, Zoho)
 * name the reason themselves. */
#include "reply/bounce_reason.h"

#include <string.h>

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static bool alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Does the lowercase needle occur case-insensitively at s[i..n)? */
static bool iat(const char *s, size_t n, size_t i, const char *needle)
{
    size_t k = 0;
    for (; needle[k]; k++)
        if (i + k >= n || lower((unsigned char)s[i + k]) != (unsigned char)needle[k])
            return false;
    return true;
}

static const char *ifind(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; m && i + m <= n; i++)
        if (iat(s, n, i, needle))
            return s + i;
    return NULL;
}

static bool is(const char *a, const char *b)
{
    return a && strcmp(a, b) == 0;
}

/* ---- the SMTP stage ---------------------------------------------------------------------- */

static const struct {
    const char *word;
    bool exact; /* case and word boundaries matter: an SMTP command in capitals */
    enum reply_bounce_stage stage;
} stage_marks[] = {
    {"HELO", true, REPLY_STAGE_CONNECT},
    {"EHLO", true, REPLY_STAGE_CONNECT},
    {"after initial connection", false, REPLY_STAGE_CONNECT},
    {"refused to talk to me", false, REPLY_STAGE_CONNECT}, /* Postfix: the greeting refused */
    {"MAIL FROM", true, REPLY_STAGE_MAIL},
    {"MAIL From", true, REPLY_STAGE_MAIL},
    {"mail from:", false, REPLY_STAGE_MAIL},
    {"RCPT", true, REPLY_STAGE_RCPT},
    {"rcpt to:", false, REPLY_STAGE_RCPT},
    {"does not like recipient", false, REPLY_STAGE_RCPT}, /* qmail */
    {"DATA", true, REPLY_STAGE_DATA},
    {"end of data", false, REPLY_STAGE_DATA},
    {"after data", false, REPLY_STAGE_DATA},
    {"(state 17)", false, REPLY_STAGE_DATA}, /* Gmail's client: DATA, end of data */
    {"(state 18)", false, REPLY_STAGE_DATA},
};

enum reply_bounce_stage reply_bounce_stage(const char *s, size_t n)
{
    enum reply_bounce_stage stage = REPLY_STAGE_NONE;
    for (size_t i = 0; i < n; i++) {
        for (size_t m = 0; m < sizeof stage_marks / sizeof stage_marks[0]; m++) {
            const char *w = stage_marks[m].word;
            size_t wl = strlen(w);
            if (i + wl > n)
                continue;
            if (stage_marks[m].exact) {
                /* "RCPT_TO" (Yahoo's "[RCPT_TO]") counts; "DATABASE" does not */
                if (memcmp(s + i, w, wl) != 0 || (i > 0 && alnum((unsigned char)s[i - 1])) ||
                    (i + wl < n && alnum((unsigned char)s[i + wl])))
                    continue;
            } else if (!iat(s, n, i, w)) {
                continue;
            }
            stage = stage_marks[m].stage;
        }
    }
    return stage;
}

/* ---- providers' documented codes --------------------------------------------------------- */

/* Does host (or an address's domain) end in one of the space-separated suffixes? */
static bool host_in(const char *host, const char *suffixes)
{
    size_t hn = strlen(host);
    while (hn && (host[hn - 1] == '.' || host[hn - 1] == ' '))
        hn--;
    for (const char *p = suffixes; *p;) {
        const char *e = strchr(p, ' ');
        size_t sl = e ? (size_t)(e - p) : strlen(p);
        if (sl && sl <= hn) {
            size_t k = 0;
            while (k < sl && lower((unsigned char)host[hn - sl + k]) == p[k])
                k++;
            if (k == sl && (sl == hn || host[hn - sl - 1] == '.' || host[hn - sl - 1] == '@'))
                return true;
        }
        p += sl;
        while (*p == ' ')
            p++;
    }
    return false;
}

/* The first word of the remote MTA field ("mx.example.net (TCP|…)" → "mx.example.net"). */
static bool provider_host(const char *remote_mta, const char *recipient, const char *diag,
                          const char *suffixes)
{
    char host[256];
    size_t k = 0;
    while (remote_mta[k] && remote_mta[k] != ' ' && remote_mta[k] != '(' && k + 1 < sizeof host) {
        host[k] = remote_mta[k];
        k++;
    }
    host[k] = '\0';
    if (host[0] && host_in(host, suffixes))
        return true;
    if (host_in(recipient, suffixes))
        return true;
    /* Exim and Postfix name the host in their words: "host smtp.wanadoo.fr [192.0.2.1]" */
    size_t dn = strlen(diag);
    for (const char *h = ifind(diag, dn, "host"); h; h = ifind(h + 1, dn - (size_t)(h + 1 - diag), "host")) {
        const char *w = h + 4;
        if (*w != ' ' && *w != ':')
            continue;
        while (*w == ' ' || *w == ':')
            w++;
        k = 0;
        while (w[k] && w[k] != ' ' && w[k] != '[' && w[k] != ':' && k + 1 < sizeof host) {
            host[k] = w[k];
            k++;
        }
        host[k] = '\0';
        if (host[0] && host_in(host, suffixes))
            return true;
    }
    return false;
}

/* Phrases (lowercase) a provider documents, each naming a reason. */
struct provider_phrase {
    const char *phrase, *reason;
};

/* Cox (cox.net): "AUP#CXBL" codes of its error-code page, then its documented messages. */
static const struct provider_phrase cox_codes[] = {
    {"cxbl", "blocked"},         {"cdrbl", "blocked"},        {"ipbl", "blocked"},
    {"cxdns", "requireptr"},     {"cxsndr", "authfailure"},   {"cxsmtp", "rejected"},
    {"cxcnct", "toomanyconn"},   {"cxmxrt", "toomanyconn"},   {"cxthrt", "securityerror"},
    {"cxmj", "securityerror"},   {"urlbl", "spamdetected"},   {NULL, NULL},
};
static const struct provider_phrase cox_words[] = {
    {"too many bad commands from", "blocked"},
    {"too many invalid recipients", "blocked"},
    {"dns check failure", "requireptr"},
    {"rejected - no rdns", "requireptr"},
    {"esmtp no data before greeting", "policyviolation"},
    {"attachment extension is forbidden", "policyviolation"},
    {"esmtp server temporarily not available", "systemerror"},
    {"too many sessions from", "toomanyconn"},
    {"message threshold exceeded", "toomanyconn"},
    {"recipient rejected", "userunknown"},
    {"sender rejected", "rejected"},
    {NULL, NULL},
};

/* Spectrum (charter.net): "AUP#I-1310" codes by range, from its error-code page. */
static const struct {
    unsigned lo, hi;
    const char *reason;
} spectrum_codes[] = {
    {1000, 1000, "blocked"},         {1010, 1080, "rejected"},       {1090, 1090, "systemerror"},
    {1100, 1150, "requireptr"},      {1160, 1190, "policyviolation"}, {1200, 1250, "blocked"},
    {1260, 1260, "networkerror"},    {1300, 1340, "toomanyconn"},    {1350, 1490, "speeding"},
    {1500, 1520, "rejected"},        {1530, 1530, "mesgtoobig"},     {1540, 1550, "speeding"},
    {1560, 1560, "policyviolation"}, {1580, 1580, "speeding"},
};

/* Orange and La Poste (orange.fr, wanadoo.fr, laposte.net): the three digits ending an
 * "OFR_506", "OFR006_102" or "LPN007_420" label, from their postmaster pages. */
static const struct {
    unsigned code;
    const char *reason;
} orange_codes[] = {
    {101, "blocked"},       {102, "blocked"},      {103, "blocked"},       {104, "toomanyconn"},
    {305, "securityerror"}, {401, "authfailure"},  {402, "securityerror"}, {403, "rejected"},
    {405, "rejected"},      {415, "rejected"},     {416, "userunknown"},   {417, "mailboxfull"},
    {420, "suspend"},       {421, "rejected"},     {426, "suspend"},       {505, "systemerror"},
    {506, "spamdetected"},  {510, "blocked"},      {514, "mesgtoobig"},    {517, "authfailure"},
    {630, "policyviolation"}, {999, "blocked"},
};

/* KDDI au (ezweb.ne.jp, au.com): "550 <addr>: User unknown" is a missing mailbox, the same
 * reply without the address ("550 : User unknown") the recipient's own filter. */
static const struct provider_phrase kddi_words[] = {
    {">: user unknown", "userunknown"},
    {" : user unknown", "filtered"},
    {NULL, NULL},
};

/* Zoho Mail (zoho.com): messages of its documentation. */
static const struct provider_phrase zoho_words[] = {
    {"email rejected per dmarc policy", "authfailure"},
    {"greylisted, try again after some time", "blocked"},
    {"email flagged as spam", "rejected"},
    {"mail rejected by destination domain", "rejected"},
    {"email policy violation detected", "policyviolation"},
    {"temporary system error", "systemerror"},
    {"user does not exist", "userunknown"},
    {" detected by zoho mail", "virusdetected"},
    {NULL, NULL},
};

static const char *phrase_reason(const char *diag, const struct provider_phrase *t)
{
    size_t dn = strlen(diag);
    for (; t->phrase; t++)
        if (ifind(diag, dn, t->phrase))
            return t->reason;
    return NULL;
}

/* The code after the last "aup#" in diag: its letters and digits, lowercased, into out. */
static bool aup_code(const char *diag, char *out, size_t cap)
{
    size_t dn = strlen(diag);
    const char *last = NULL;
    for (const char *p = ifind(diag, dn, "aup#"); p; p = ifind(p + 1, dn - (size_t)(p + 1 - diag), "aup#"))
        last = p;
    if (!last || cap == 0)
        return false;
    size_t k = 0;
    for (const char *p = last + 4; *p && *p != ' ' && k + 1 < cap; p++)
        out[k++] = (char)lower((unsigned char)*p);
    out[k] = '\0';
    return k > 0;
}

static const char *cox_reason(const char *diag)
{
    char code[32];
    if (aup_code(diag, code, sizeof code))
        for (const struct provider_phrase *t = cox_codes; t->phrase; t++)
            if (strncmp(code, t->phrase, strlen(t->phrase)) == 0)
                return t->reason;
    return phrase_reason(diag, cox_words);
}

static const char *spectrum_reason(const char *diag)
{
    char code[32];
    if (!aup_code(diag, code, sizeof code))
        return NULL;
    /* the first run of four digits: "in-1310" → 1310 */
    unsigned v = 0, digits = 0;
    for (const char *p = code; *p && digits < 4; p++) {
        if (*p >= '0' && *p <= '9') {
            v = v * 10 + (unsigned)(*p - '0');
            digits++;
        } else {
            v = 0;
            digits = 0;
        }
    }
    if (digits != 4)
        return NULL;
    for (size_t i = 0; i < sizeof spectrum_codes / sizeof spectrum_codes[0]; i++)
        if (v >= spectrum_codes[i].lo && v <= spectrum_codes[i].hi)
            return spectrum_codes[i].reason;
    return NULL;
}

static const char *orange_reason(const char *diag)
{
    size_t dn = strlen(diag);
    static const char *const labels[] = {"ofr", "lpn", "ouk"};
    for (size_t l = 0; l < sizeof labels / sizeof labels[0]; l++) {
        const char *last = NULL;
        for (const char *p = ifind(diag, dn, labels[l]); p;
             p = ifind(p + 1, dn - (size_t)(p + 1 - diag), labels[l]))
            if (p == diag || !alnum((unsigned char)p[-1]))
                last = p;
        if (!last)
            continue;
        /* the label's token ends with the code: "OFR006_102" → 102 */
        const char *e = last + 3;
        while (*e && (alnum((unsigned char)*e) || *e == '_' || *e == '-'))
            e++;
        if (e - last < 6 || !(e[-1] >= '0' && e[-1] <= '9') || !(e[-2] >= '0' && e[-2] <= '9') ||
            !(e[-3] >= '0' && e[-3] <= '9'))
            continue;
        unsigned v = (unsigned)(e[-3] - '0') * 100 + (unsigned)(e[-2] - '0') * 10 +
                     (unsigned)(e[-1] - '0');
        for (size_t i = 0; i < sizeof orange_codes / sizeof orange_codes[0]; i++)
            if (orange_codes[i].code == v)
                return orange_codes[i].reason;
        return NULL;
    }
    return NULL;
}

const char *reply_bounce_provider_reason(const char *remote_mta, const char *recipient,
                                         const char *diag)
{
    if (!diag[0])
        return NULL;
    if (provider_host(remote_mta, recipient, diag, "cox.net"))
        return cox_reason(diag);
    if (provider_host(remote_mta, recipient, diag, "charter.net"))
        return spectrum_reason(diag);
    if (provider_host(remote_mta, recipient, diag, "orange.fr wanadoo.fr laposte.net"))
        return orange_reason(diag);
    if (provider_host(remote_mta, recipient, diag, "ezweb.ne.jp au.com"))
        return phrase_reason(diag, kddi_words);
    if (provider_host(remote_mta, recipient, diag, "zoho.com zohomail.com"))
        return phrase_reason(diag, zoho_words);
    return NULL;
}

/* ---- the decision ------------------------------------------------------------------------ */

static bool status_is(const char *st, const char *subject_detail)
{
    return st[0] && st[1] == '.' && strcmp(st + 2, subject_detail) == 0;
}

static bool one_of(const char *r, const char *const *names)
{
    for (; *names; names++)
        if (is(r, *names))
            return true;
    return false;
}

/* Reporting MTAs' own words for an address their directory lacks (Exchange, Microsoft 365,
 * Exchange's directory resolver, IMail, Domino, Mimecast, Trend Micro): the MTA looked the address up itself, no SMTP stage involved. */
static const char *const directory_words[] = {
    "recipient name is not recognized",
    "email address wasn't found at the destination domain",
    "email address wasn\xe2\x80\x99t found at the destination domain",
    "email address you entered couldn't be found",
    "remote server returned unknown recipient",
    "invalid final delivery userid",
    "unknown user:",
    "not listed in public name & address book",
    "recipient email address is possibly incorrect",
    "not listed in domino directory",
    "resolver.adr.recipnotfound",
    "resolver.adr.recipientnotfound",
    "check if address is correct",
    NULL,
};

static bool any_in(const char *s, const char *const *words)
{
    size_t n = strlen(s);
    for (; *words; words++)
        if (ifind(s, n, *words))
            return true;
    return false;
}

/* "553 mx.example.com does not exist": a host or domain name (dots, no '@') is what is
 * missing, not a mailbox. */
static bool domain_missing(const char *diag)
{
    size_t dn = strlen(diag);
    for (const char *p = ifind(diag, dn, " does not exist"); p;
         p = ifind(p + 1, dn - (size_t)(p + 1 - diag), " does not exist")) {
        const char *b = p;
        while (b > diag && b[-1] != ' ' && b[-1] != '<' && b[-1] != '"')
            b--;
        bool dot = false, at = false;
        for (const char *q = b; q < p; q++) {
            dot |= *q == '.';
            at |= *q == '@';
        }
        if (dot && !at && p - b > 3 && p[-1] != '.')
            return true;
    }
    return false;
}

/* PowerMTA's bounce categories (X-PowerMTA-BounceCategory, its documented classes). */
static const struct provider_phrase powermta_categories[] = {
    {"bad-mailbox", "userunknown"},        {"bad-domain", "hostunknown"},
    {"inactive-mailbox", "suspend"},       {"quota-issues", "mailboxfull"},
    {"spam-related", "spamdetected"},      {"policy-related", "policyviolation"},
    {"virus-related", "virusdetected"},    {"content-related", "contenterror"},
    {"message-expired", "expired"},        {"no-answer-from-host", "networkerror"},
    {"bad-connection", "networkerror"},    {"routing-errors", "systemerror"},
    {"relaying-issues", "norelaying"},     {"invalid-sender", "rejected"},
    {"bad-configuration", "systemerror"},  {"protocol-errors", "systemerror"},
    {NULL, NULL},
};

const char *reply_bounce_reason(const char *reason, const struct reply_bounce_facts *f)
{
    /* the reporting MTA classed the failure itself */
    for (const struct provider_phrase *c = powermta_categories; f->category && c->phrase; c++)
        if (strcmp(f->category, c->phrase) == 0)
            return c->reason;

    bool from_text = f->ex && f->ex->reason_from == REPLY_REASON_FROM_TEXT;

    /* a local delivery program failed ("Diagnostic-Code: X-Unix; 71"): the mailer */
    static const char *const mailbox_reasons[] = {"mailboxfull", "mesgtoobig", "exceedlimit",
                                                  "userunknown", "suspend", NULL};
    static const char *const transient_reasons[] = {"undefined", "networkerror", NULL};
    if (f->diag_unix && !one_of(reason, mailbox_reasons))
        reason = "mailererror";
    else if (!f->action[0] && !f->status_given && f->ex && f->ex->code / 100 == 4 &&
             one_of(reason, transient_reasons))
        /* a failure report quoting a transient reply of no lasting cause: the queue gave up */
        reason = "expired";
    else if (f->action[0] && is(f->action, "failed") && f->status[0] == '4' &&
             (is(reason, "undefined") || (!from_text && (is(reason, "notaccept") ||
                                                         is(reason, "networkerror")))))
        /* a transient failure reported as final, with no words of its own: the queue gave up */
        reason = "expired";

    /* Gmail's relay numbers the stage of its refused attempts: 17 and 18 are DATA and the end
     * of the message, a refusal of the content by the receiver's filter */
    size_t dn = strlen(f->diag);
    if (ifind(f->diag, dn, "(state 17)") || ifind(f->diag, dn, "(state 18)"))
        return "filtered";
    static const char *const unknown_reasons[] = {"userunknown", "filtered", NULL};
    if (one_of(reason, unknown_reasons) && domain_missing(f->diag))
        reason = "hostunknown";

    /* "unknown user" is a missing mailbox when the status says so, RCPT TO was refused or the
     * reporting MTA's directory lacks it; refused at MAIL FROM it is the sender that is
     * unknown; anywhere else (after DATA, or a report that does not say) a filter refused it */
    if (is(reason, "userunknown") && !status_is(f->status, "1.1") &&
        f->stage != REPLY_STAGE_RCPT && !any_in(f->diag, directory_words))
        reason = f->stage == REPLY_STAGE_MAIL ? "rejected" : "filtered";

    switch (f->stage) {
    case REPLY_STAGE_MAIL: {
        /* refused in answer to MAIL FROM: the sender address, not the recipient, is refused;
         * words naming the client (an IP block list) keep their reason */
        static const char *const sender_reasons[] = {"hostunknown", "undefined",
                                                     "onhold", "filtered", NULL};
        static const char *const code_reasons[] = {"blocked", "securityerror", "systemerror",
                                                   NULL};
        if (one_of(reason, sender_reasons) || (!from_text && one_of(reason, code_reasons)))
            reason = "rejected";
        break;
    }
    case REPLY_STAGE_CONNECT:
        /* refused at the greeting without a word of why ("421 Service not available"): the
         * client is blocked */
        if (is(reason, "undefined") || is(reason, "onhold") ||
            (!from_text && is(reason, "systemerror")))
            reason = "blocked";
        break;
    default:
        break;
    }
    if (is(reason, "undefined") && f->diag[0] && f->status_given)
        /* a report with words and a status that tell no reason: held for a person to judge */
        reason = "onhold";

    const char *p = reply_bounce_provider_reason(f->remote_mta, f->recipient, f->diag);
    return p ? p : reason;
}
