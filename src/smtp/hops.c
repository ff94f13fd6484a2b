/* smtp/hops.c — the Received: field counter. A field name is matched only at the start of a
 * header line, case-insensitively, followed by optional blanks (RFC 5322 §4.5 obsolete syntax)
 * and a colon; continuation lines (starting with a blank) are no fields; the first empty line
 * ends the header section and with it the counting, so a "Received:" in the body never counts.
 * The state is a few integers: nothing of the message is kept, and a split between two inputs
 * changes nothing in the count. */
#include "smtp/hops.h"

#include <limits.h>
#include <string.h>

static const char field_name[] = "received";

enum hops_state {
    LINE_START,   /* at the first octet of a line */
    START_CR,     /* a CR at the start of a line: an LF now ends the header section */
    IN_NAME,      /* the line so far is a prefix of "received" (matched octets) */
    AFTER_NAME,   /* "received" and maybe blanks were read: a colon makes it a field */
    REST_OF_LINE  /* nothing more to see until the next LF */
};

void smtp_hops_init(struct smtp_hops *h)
{
    memset(h, 0, sizeof *h);
    h->state = LINE_START;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* One octet at the start of a line or inside a field name. */
static void name_octet(struct smtp_hops *h, unsigned char c)
{
    switch (h->state) {
    case LINE_START:
        if (c == '\n') {
            h->header_done = true;
        } else if (c == '\r') {
            h->state = START_CR;
        } else {
            h->matched = 0;
            h->state = IN_NAME;
            name_octet(h, c);
        }
        return;
    case START_CR:
        if (c == '\n')
            h->header_done = true;
        else
            h->state = REST_OF_LINE; /* a bare CR: no field name starts with it */
        return;
    case IN_NAME:
        if (lower(c) == (unsigned char)field_name[h->matched]) {
            if (++h->matched == sizeof field_name - 1)
                h->state = AFTER_NAME;
            return;
        }
        break;
    case AFTER_NAME:
        if (c == ' ' || c == '\t')
            return;
        if (c == ':' && h->count < UINT_MAX)
            h->count++;
        break;
    default:
        break;
    }
    h->state = c == '\n' ? LINE_START : REST_OF_LINE;
}

void smtp_hops_feed(struct smtp_hops *h, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && !h->header_done) {
        if (h->state == REST_OF_LINE) {
            const char *lf = memchr(p + i, '\n', n - i);
            if (lf == NULL)
                return;
            i = (size_t)(lf - p) + 1;
            h->state = LINE_START;
            continue;
        }
        name_octet(h, (unsigned char)p[i]);
        i++;
    }
}
