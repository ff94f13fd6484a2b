/* smtp/submit.c — a local program's message made ready for the queue: CRLF lines, recipients
 * from To/Cc/Bcc (RFC 5322 §3.4 address lists, §3.2.2 folding and comments), Bcc removed, the
 * header's end found by the fields themselves (§2.1, obsolete "Name :" fields of §4.5 too). */
#include <string.h>
#include <strings.h>

#include "smtp/submit.h"

size_t smtp_submit_normalize(const char *in, size_t len, bool ignore_dots, char *out, bool *nul)
{
    size_t o = 0, line_start = 0;
    *nul = false;
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        if (ch == '\0')
            *nul = true;
        if (ch != '\r' && ch != '\n') {
            out[o++] = ch;
            continue;
        }
        if (ch == '\r' && i + 1 < len && in[i + 1] == '\n')
            i++; /* CRLF is one line end */
        if (!ignore_dots && o - line_start == 1 && out[line_start] == '.')
            return line_start; /* "." alone ends the input, as in sendmail without -i */
        out[o++] = '\r';
        out[o++] = '\n';
        line_start = o;
    }
    if (!ignore_dots && o - line_start == 1 && out[line_start] == '.')
        return line_start;
    if (o > line_start) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    return o;
}

/* Reports the addresses of one unfolded address-list value. */
static void address_list(const char *v, size_t n, smtp_submit_rcpt_fn *rcpt, void *ctx)
{
    char bare[1024];
    size_t nb = 0;
    size_t angle_start = 0, angle_len = 0, angle_open = 0; /* the closed <…>; an open one */
    bool in_quote = false, in_angle = false, have_angle = false, overflow = false;
    unsigned comment = 0;
    for (size_t i = 0; i <= n; i++) {
        char ch = i < n ? v[i] : ',';
        if (in_quote) {
            if (ch == '\\' && i + 1 < n) {
                if (!in_angle && nb + 2 < sizeof bare) {
                    bare[nb++] = ch;
                    bare[nb++] = v[i + 1];
                }
                i++;
                continue;
            }
            if (ch == '"')
                in_quote = false;
            if (!in_angle && nb < sizeof bare)
                bare[nb++] = ch;
            else if (!in_angle)
                overflow = true;
            continue;
        }
        if (comment > 0) {
            if (ch == '\\' && i + 1 < n)
                i++;
            else if (ch == '(')
                comment++;
            else if (ch == ')')
                comment--;
            if (i < n)
                continue;
            comment = 0; /* an unclosed comment ends with the value */
            ch = ',';
        }
        if (in_angle) {
            if (ch == '>') {
                in_angle = false;
                have_angle = true;
                angle_start = angle_open;
                angle_len = i - angle_open;
            } else if (ch == '"') {
                in_quote = true;
            }
            if (i < n)
                continue;
            in_angle = false; /* "<a@b" unclosed at the end: not an address */
            ch = ',';
        }
        switch (ch) {
        case '"':
            in_quote = true;
            if (nb < sizeof bare)
                bare[nb++] = ch;
            break;
        case '(':
            comment = 1;
            break;
        case '<':
            in_angle = true;
            angle_open = i + 1;
            break;
        case ':': /* a group's name ("undisclosed-recipients:") is no address */
            nb = 0;
            overflow = false;
            break;
        case ',':
        case ';':
            if (have_angle && angle_len > 0)
                rcpt(ctx, v + angle_start, angle_len);
            else if (!have_angle && nb > 0 && !overflow)
                rcpt(ctx, bare, nb);
            nb = 0;
            have_angle = overflow = false;
            break;
        case ' ':
        case '\t':
        case '\r':
        case '\n':
            break;
        default:
            if (nb < sizeof bare)
                bare[nb++] = ch;
            else
                overflow = true;
        }
    }
}

/* The length of the field name when line starts a header field: a name of printable US-ASCII
 * but ':' (RFC 5322 §2.2 ftext), then the colon, with spaces or tabs between them allowed
 * (obsolete syntax, §4.5: "Bcc : x" is a Bcc field). *value is where the value starts, past
 * the colon. 0 when the line starts no field. */
static size_t field_name(const char *line, size_t n, size_t *value)
{
    size_t i = 0;
    while (i < n && (unsigned char)line[i] > ' ' && (unsigned char)line[i] < 0x7f &&
           line[i] != ':')
        i++;
    size_t name = i;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (name == 0 || i >= n || line[i] != ':')
        return 0;
    *value = i + 1;
    return name;
}

static bool named(const char *line, size_t name_len, const char *want)
{
    return name_len == strlen(want) && strncasecmp(line, want, name_len) == 0;
}

/* The end of the field starting at at: its line and every continuation line (RFC 5322 §2.2.3). */
static size_t field_end(const char *msg, size_t len, size_t at)
{
    for (;;) {
        const char *nl = memchr(msg + at, '\n', len - at);
        if (!nl)
            return len;
        at = (size_t)(nl - msg) + 1;
        if (at >= len || (msg[at] != ' ' && msg[at] != '\t'))
            return at;
    }
}

static bool blank_line(const char *msg, size_t len, size_t at)
{
    return msg[at] == '\n' || (msg[at] == '\r' && at + 1 < len && msg[at + 1] == '\n');
}

/* Past the "From " lines that open the input (an mbox envelope line, "From sender date", which
 * is no header field: Postfix's sendmail drops them the same way). "From : x" is a field. */
static size_t skip_mbox_from(const char *msg, size_t len)
{
    size_t at = 0, value;
    while (len - at > 5 && memcmp(msg + at, "From ", 5) == 0) {
        const char *nl = memchr(msg + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - msg) + 1 : len;
        if (field_name(msg + at, end - at, &value) > 0)
            break;
        at = end;
    }
    return at;
}

size_t smtp_submit_headers(const char *msg, size_t len, smtp_submit_rcpt_fn *rcpt, void *ctx,
                           char *out, struct smtp_submit_header_info *info)
{
    memset(info, 0, sizeof *info);
    size_t at = skip_mbox_from(msg, len), o = 0;
    while (at < len && !blank_line(msg, len, at)) {
        size_t end = field_end(msg, len, at), value = 0;
        size_t name = field_name(msg + at, end - at, &value);
        if (name == 0) {
            /* Neither a field nor a continuation: the body starts here, without the blank
             * line that separates it from the header (RFC 5322 §2.1, §3.5): add it. */
            info->header_len = o;
            memcpy(out + o, "\r\n", 2);
            memcpy(out + o + 2, msg + at, len - at);
            return o + 2 + len - at;
        }
        bool bcc = named(msg + at, name, "bcc");
        if (rcpt && (bcc || named(msg + at, name, "to") || named(msg + at, name, "cc")))
            address_list(msg + at + value, end - at - value, rcpt, ctx);
        info->has_from |= named(msg + at, name, "from");
        info->has_date |= named(msg + at, name, "date");
        info->has_message_id |= named(msg + at, name, "message-id");
        if (!bcc) {
            memcpy(out + o, msg + at, end - at);
            o += end - at;
        }
        at = end;
    }
    info->header_len = o;
    memcpy(out + o, msg + at, len - at);
    return o + len - at;
}
