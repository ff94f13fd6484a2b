/* fuzz/fuzz_spf_record.c — libFuzzer target for the SPF record parser (auth/spf_record.c) and
 * macro expansion (auth/spf_macro.c). Byte 0 picks the output room for expansions. Checks:
 * every term's domain-spec lies inside the record, CIDR lengths are in range, and every
 * domain-spec the parser accepted expands (or does not fit) but is never a syntax error. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/spf_macro.h"
#include "auth/spf_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void expand(const struct auth_spf_term *t, size_t cap)
{
    static const struct auth_spf_macro_values v = {
        .s = "strong-bad@email.example.com", .l = "strong-bad", .o = "email.example.com",
        .d = "email.example.com", .i = "192.0.2.3", .c = "192.0.2.3", .p = "unknown",
        .v = "in-addr", .h = "mx.example.org", .r = "mx.example.net", .t = 1};
    char *out = malloc(cap);
    size_t n = 0;
    bool needs_p = false;
    enum auth_err e = auth_spf_macro_expand(t->spec, t->spec_len, &v, t->kind == AUTH_SPF_EXP,
                                            out, cap, &n, &needs_p);
    CHECK(e == AUTH_OK || e == AUTH_ERR_TOO_BIG);
    CHECK(e != AUTH_OK || n < cap);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = size - 1, cap = (size_t)data[0] * 4 + 1;
    char *rec = malloc(n ? n : 1); /* exact size: ASan sees any read past the end */
    memcpy(rec, data + 1, n);
    struct auth_spf_record r;
    if (auth_spf_record_parse(rec, n, &r) == AUTH_OK) {
        for (size_t i = 0; i < r.n; i++) {
            const struct auth_spf_term *t = &r.terms[i];
            CHECK(t->cidr4 <= 32 && t->cidr6 <= 128);
            if (t->spec != NULL) {
                CHECK(t->spec >= rec && t->spec + t->spec_len <= rec + n);
                expand(t, cap);
            }
        }
        if (r.has_redirect)
            expand(&r.redirect, cap);
        if (r.has_exp)
            expand(&r.exp, cap);
    }
    auth_spf_record_free(&r);
    free(rec);
    return 0;
}
