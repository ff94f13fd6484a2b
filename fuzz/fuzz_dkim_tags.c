/* fuzz/fuzz_dkim_tags.c — libFuzzer target for the tag=value parser (auth/tags.c) and the
 * DKIM verifier that uses it (auth/dkim_verify.c). Byte 0 picks what the input is: even, a
 * tag list alone; odd, a whole message whose signatures are checked, each key query answered
 * with the input's tail as its record. Checks: every tag lies inside the input, names are
 * unique, the verifier decides each signature once. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dkim_verify.h"
#include "auth/tags.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = size - 1;
    char *text = malloc(n ? n : 1); /* exact size: ASan sees any read past the end */
    memcpy(text, data + 1, n);
    if (data[0] % 2 == 0) {
        struct auth_tags t;
        if (auth_tags_parse(text, n, &t) == AUTH_OK) {
            CHECK(t.n <= AUTH_TAGS_MAX);
            for (size_t i = 0; i < t.n; i++) {
                CHECK(t.t[i].name >= text && t.t[i].name + t.t[i].name_len <= text + n);
                CHECK(t.t[i].value >= text && t.t[i].value + t.t[i].value_len <= text + n);
                for (size_t j = 0; j < i; j++)
                    CHECK(t.t[j].name_len != t.t[i].name_len ||
                          memcmp(t.t[j].name, t.t[i].name, t.t[i].name_len) != 0);
                char out[64];
                size_t sq = auth_tag_squeeze(&t.t[i], out, sizeof out);
                CHECK(sq < sizeof out);
            }
        }
    } else {
        struct auth_dkim_verify *v = NULL;
        if (auth_dkim_verify_new(text, n, 0, &v) == AUTH_OK) {
            size_t tail = n > 64 ? n - 64 : 0;
            const char *rec = text + tail;
            size_t len = n - tail;
            for (size_t i = 0; i < auth_dkim_verify_count(v); i++) {
                if (auth_dkim_verify_key_query(v, i) != NULL)
                    auth_dkim_verify_key_answer(v, i, (enum auth_dns_status)(data[0] / 2 % 4),
                                                &rec, &len, 1);
                CHECK(auth_dkim_verify_key_query(v, i) == NULL);
                CHECK(auth_dkim_verify_result(v, i) != NULL);
            }
            auth_dkim_verify_free(v);
        }
    }
    free(text);
    return 0;
}
