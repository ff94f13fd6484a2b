/* smtp/submit.c — a local program's message made ready for the queue: CRLF lines, recipients
 * from To/Cc/Bcc (RFC 5322 §3.4 address lists, §3.2.2 folding and comments), Bcc removed. */
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

/* The length of the field name when line starts "Name:" (no space before the colon). */
static size_t field_name(const char *line, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (line[i] == ':')
            return i;
        if ((unsigned char)line[i] <= ' ' || (unsigned char)line[i] >= 0x7f)
            return 0;
    }
    return 0;
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

size_t smtp_submit_headers(const char *msg, size_t len, smtp_submit_rcpt_fn *rcpt, void *ctx,
                           char *out, struct smtp_submit_header_info *info)
{
    memset(info, 0, sizeof *info);
    size_t at = 0, o = 0;
    while (at < len && !(msg[at] == '\r' && at + 1 < len && msg[at + 1] == '\n') &&
           msg[at] != '\n') {
        size_t end = field_end(msg, len, at);
        size_t name = field_name(msg + at, end - at);
        bool bcc = named(msg + at, name, "bcc");
        if (rcpt && (bcc || named(msg + at, name, "to") || named(msg + at, name, "cc")))
            address_list(msg + at + name + 1, end - at - name - 1, rcpt, ctx);
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
