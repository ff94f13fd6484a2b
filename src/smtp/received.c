/* smtp/received.c — formats the Received: trace header. RFC 5321 §4.4, RFC 3848, RFC 6531. */
#include <stdio.h>
#include <string.h>

#include "smtp/addr.h"
#include "smtp/received.h"

/* RFC 5321 §4.4: the "from" clause is the client's HELO/EHLO name (an Extended-Domain) with its
 * address in a comment (TCP-info). The session tolerates names that are no domain ("my_host",
 * any printable token, because real clients send them), and written as they are such names
 * break the field: "evil(x" opens a comment (RFC 5322 §3.2.2) that swallows the address, "by",
 * "id", "for" and the ";" before the date (RFC 5322 §3.6.7). So a name goes in as it is only
 * when it is a domain or an IPv4/IPv6 address literal (a general literal, "[tag:…]", may hold
 * "(" or ";"); any other name is "unknown", and what the client said follows the address inside
 * the comment, "(", ")" and "\" as quoted-pairs and anything unprintable as "?": nothing is
 * lost to a reader, and nothing can end the comment early or reach the rest of the field. */
static bool plain_name(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && smtp_addr_valid_domain(name, n, false) && strpbrk(name, "()\\;\"") == NULL;
}

/* " helo=NAME" for the comment: NAME escaped as above, cut to fit cap. */
static void helo_comment(const char *name, char *out, size_t cap)
{
    static const char prefix[] = " helo=";
    if (cap < sizeof prefix)
        return;
    memcpy(out, prefix, sizeof prefix - 1);
    size_t n = sizeof prefix - 1;
    for (const char *p = name; *p != '\0' && n + 3 <= cap; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '(' || c == ')' || c == '\\')
            out[n++] = '\\';
        out[n++] = (c < 0x21 || c > 0x7e) ? '?' : (char)c;
    }
    out[n] = '\0';
}

/* "ESMTP", "ESMTPSA", "UTF8SMTPS", … */
static void protocol_name(const struct smtp_received *r, char *out, size_t cap)
{
    const char *base = r->utf8 ? "UTF8SMTP" : (r->esmtp ? "ESMTP" : "SMTP");
    const char *suffix = r->tls ? (r->auth ? "SA" : "S") : (r->auth ? "A" : "");
    snprintf(out, cap, "%s%s", base, suffix);
}

size_t smtp_received_format(char *out, size_t cap, const struct smtp_received *r)
{
    char proto[16];
    char date[64];
    struct tm tm;
    protocol_name(r, proto, sizeof proto);
    if (!gmtime_r(&r->when, &tm) ||
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0)
        return 0;
    if (r->local) {
        char for_clause[600] = "";
        if (r->for_rcpt && (size_t)snprintf(for_clause, sizeof for_clause, " for <%s>",
                                            r->for_rcpt) >= sizeof for_clause)
            return 0;
        int m = snprintf(out, cap, "Received: by %s (clearmta, from userid %u)\r\n\tid %s%s;"
                                   " %s\r\n", r->hostname, r->local_uid, r->queue_id,
                         for_clause, date);
        return m < 0 || (size_t)m >= cap ? 0 : (size_t)m;
    }
    /* RFC 5321 §4.1.3: an IPv6 address literal is tagged "IPv6:". */
    const char *literal_tag = strchr(r->client_addr, ':') ? "IPv6:" : "";
    bool plain = plain_name(r->helo);
    char said[2 * LIMIT_DOMAIN + 8] = ""; /* every octet of the longest name escaped */
    if (!plain && r->helo[0])
        helo_comment(r->helo, said, sizeof said);
    const char *from = plain ? r->helo : "unknown";
    int n;
    if (r->for_rcpt)
        n = snprintf(out, cap,
                     "Received: from %s ([%s%s]%s)\r\n\tby %s (clearmta) with %s id %s\r\n"
                     "\tfor <%s>; %s\r\n",
                     from, literal_tag, r->client_addr, said, r->hostname, proto, r->queue_id,
                     r->for_rcpt, date);
    else
        n = snprintf(out, cap,
                     "Received: from %s ([%s%s]%s)\r\n\tby %s (clearmta) with %s id %s;\r\n\t%s\r\n",
                     from, literal_tag, r->client_addr, said, r->hostname, proto, r->queue_id,
                     date);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return (size_t)n;
}
