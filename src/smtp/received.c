/* smtp/received.c — formats the Received: trace header. RFC 5321 §4.4, RFC 3848, RFC 6531. */
#include <stdio.h>
#include <string.h>

#include "smtp/received.h"

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
    int n;
    if (r->for_rcpt)
        n = snprintf(out, cap,
                     "Received: from %s ([%s%s])\r\n\tby %s (clearmta) with %s id %s\r\n"
                     "\tfor <%s>; %s\r\n",
                     r->helo[0] ? r->helo : "unknown", literal_tag, r->client_addr, r->hostname, proto,
                     r->queue_id, r->for_rcpt, date);
    else
        n = snprintf(out, cap,
                     "Received: from %s ([%s%s])\r\n\tby %s (clearmta) with %s id %s;\r\n\t%s\r\n",
                     r->helo[0] ? r->helo : "unknown", literal_tag, r->client_addr, r->hostname, proto,
                     r->queue_id, date);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return (size_t)n;
}
