/* reply/json.c — the JSON string escaper of json.h: printable ASCII goes out in runs, the rest
 * one character at a time, checked by the project's UTF-8 decoder. */
#include "reply/json.h"

#include "reply/bytes.h"
#include "reply/utf8.h"

bool reply_json_string(const char *s, size_t len, reply_json_put *put, void *ctx)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    bool ok = put(ctx, "\"", 1);
    for (size_t i = 0; ok && i < len;) {
        size_t run = i; /* plain printable ASCII goes out in one copy */
        while (run < len && (reply_byte_class[u[run]] & REPLY_BYTE_JSON_PLAIN))
            run++;
        if (run > i) {
            ok = put(ctx, s + i, run - i);
            i = run;
            continue;
        }
        uint32_t cp = 0;
        size_t n = reply_utf8_char(u + i, len - i, &cp);
        if (u[i] == '"' || u[i] == '\\') {
            char esc[2] = {'\\', (char)u[i]};
            ok = put(ctx, esc, 2);
        } else if (u[i] == '\n') {
            ok = put(ctx, "\\n", 2);
        } else if (u[i] == '\t') {
            ok = put(ctx, "\\t", 2);
        } else if (u[i] < 0x20 || u[i] == 0x7f || (n == 2 && cp <= 0x9f)) {
            /* C0, DEL and C1 (U+0080 to U+009F): no terminal showing the JSON obeys them */
            char esc[6] = {'\\', 'u', '0', '0', hex[(cp >> 4) & 0xf], hex[cp & 0xf]};
            ok = put(ctx, esc, 6);
        } else if (n == 0) {
            ok = put(ctx, "\xef\xbf\xbd", 3); /* U+FFFD for each byte of a broken sequence */
            n = 1;
        } else {
            ok = put(ctx, s + i, n);
        }
        i += n ? n : 1;
    }
    return ok && put(ctx, "\"", 1);
}
