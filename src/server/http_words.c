/* server/http_words.c — the few pieces of a request the console reads itself (the rest is
 * evhttp's): whether Host names this server, a cookie's value, and whether a word taken from a
 * path or query may become one argument of a control command. Pure functions, fuzzed by
 * fuzz/fuzz_http_words.c. RFC 9110 §7.2 (Host), RFC 6265 §4.2 (Cookie). */
#include <string.h>
#include <strings.h>

#include "server/http_internal.h"

bool http_host_matches(const char *host, const char *local, bool loopback, const char *name)
{
    if (strcasecmp(host, local) == 0)
        return true;
    const char *port = strrchr(local, ':');
    if (!port)
        return false;
    size_t name_len = strlen(name);
    if (name_len && strncasecmp(host, name, name_len) == 0 &&
        (host[name_len] == '\0' || strcmp(host + name_len, port) == 0))
        return true;
    return loopback && strncasecmp(host, "localhost", 9) == 0 && strcmp(host + 9, port) == 0;
}

bool http_cookie_value(const char *cookies, const char *name, char *out, size_t cap)
{
    size_t name_len = strlen(name);
    for (const char *p = cookies; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        size_t n = strcspn(p, ";");
        if (n > name_len && p[name_len] == '=' && strncmp(p, name, name_len) == 0 &&
            n - name_len - 1 < cap) {
            memcpy(out, p + name_len + 1, n - name_len - 1);
            out[n - name_len - 1] = '\0';
            return true;
        }
        p += n;
    }
    return false;
}

bool http_safe_word(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("@._:+-", s[i])))
            return false;
    return true;
}
