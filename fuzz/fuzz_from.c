/* fuzz/fuzz_from.c — libFuzzer target for the author domains of a message (auth/from.c): the
 * input is a message. Checks: a status that is one of the five; with OK, between one and
 * AUTH_FROM_DOMAINS_MAX distinct domains, each a plain lower-case domain with a dot; without
 * OK, no domain; and the field walk (auth_field_next) finds the fields auth_fields_split does. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/canon.h"
#include "auth/from.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *msg = malloc(size ? size : 1); /* exact size: ASan sees any read past the end */
    memcpy(msg, data, size);
    struct auth_from from;
    auth_from_authors(msg, size, &from);
    CHECK(from.status <= AUTH_FROM_TOO_MANY);
    CHECK(auth_from_status_text(from.status)[0] != '\0');
    CHECK(from.status == AUTH_FROM_OK ? from.n >= 1 && from.n <= AUTH_FROM_DOMAINS_MAX
                                      : from.n <= AUTH_FROM_DOMAINS_MAX);
    for (size_t i = 0; from.status == AUTH_FROM_OK && i < from.n; i++) {
        const char *d = from.domains[i];
        size_t n = strlen(d);
        CHECK(n > 0 && n <= 253 && strchr(d, '.') != NULL && d[0] != '.' && d[n - 1] != '.');
        for (const char *p = d; *p; p++)
            CHECK((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.');
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(from.domains[j], d) != 0);
    }
    struct auth_field fields[16], f;
    size_t nf = 0, body = 0, pos = 0, k = 0;
    auth_fields_split(msg, size, fields, 16, &nf, &body);
    while (auth_field_next(msg, size, &pos, &f)) {
        CHECK(k < nf);
        CHECK(k >= 16 || (fields[k].p == f.p && fields[k].len == f.len &&
                          fields[k].name_len == f.name_len));
        k++;
    }
    CHECK(k == nf && pos == body);
    free(msg);
    return 0;
}
