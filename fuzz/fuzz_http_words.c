/* fuzz/fuzz_http_words.c — libFuzzer target for what the console reads of a request itself
 * (server/http_words.c): the input, split at its first two NUL bytes, is a Host header, a
 * Cookie header and a word from a path. Checks: a Host accepted names the local address, the
 * configured name or localhost on loopback; a cookie value found is a part of the header
 * after "name=" and fits; a safe word holds no space, control byte or option dash. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/http_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* The next NUL-ended part of the input (the rest when no NUL is left), as a fresh string. */
static char *part(const uint8_t **p, size_t *left)
{
    const uint8_t *nul = memchr(*p, 0, *left);
    size_t n = nul ? (size_t)(nul - *p) : *left;
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p += nul ? n + 1 : n;
    *left -= nul ? n + 1 : n;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data;
    size_t left = size;
    char *host = part(&p, &left), *cookies = part(&p, &left), *word = part(&p, &left);

    static const char local[] = "127.0.0.1:8025", name[] = "mta.example.org";
    if (http_host_matches(host, local, true, name))
        CHECK(strcasecmp(host, local) == 0 || strncasecmp(host, name, strlen(name)) == 0 ||
              strcasecmp(host, "localhost:8025") == 0);
    CHECK(!http_host_matches(host, local, false, "") || strcasecmp(host, local) == 0);

    char value[33];
    memset(value, 'Z', sizeof value);
    if (http_cookie_value(cookies, "clearmta_csrf", value, sizeof value)) {
        size_t n = strlen(value);
        CHECK(n < sizeof value);
        CHECK(strchr(value, ';') == NULL);
        char *needle = malloc(n + 15);
        if (!needle)
            abort();
        memcpy(needle, "clearmta_csrf=", 14);
        memcpy(needle + 14, value, n + 1);
        CHECK(strstr(cookies, needle) != NULL);
        free(needle);
    }

    if (http_safe_word(word, 64)) {
        CHECK(word[0] != '-' && strlen(word) <= 64);
        for (const char *c = word; *c; c++)
            CHECK(*c > ' ' && *c < 0x7f && *c != '/' && *c != '%');
    }
    free(host);
    free(cookies);
    free(word);
    return 0;
}
