/* fuzz/fuzz_dmarc_record.c — libFuzzer target for the DMARC record parser (auth/dmarc.c, tag
 * lists by auth/tags.c) and the evaluation answered with the input. Byte 0 picks the DNS status
 * of the answers. Checks: an accepted record has a policy and pct <= 100; the evaluation ends
 * within its two look-ups and its policy is set exactly when it found a record. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = size - 1;
    char *rec = malloc(n ? n : 1); /* exact size: ASan sees any read past the end */
    memcpy(rec, data + 1, n);
    struct auth_dmarc_record r;
    if (auth_dmarc_record_parse(rec, n, &r) == AUTH_OK) {
        CHECK(r.p != AUTH_DMARC_P_UNSET);
        CHECK(r.pct <= 100);
        CHECK(strlen(r.rua) < sizeof r.rua && strlen(r.ruf) < sizeof r.ruf);
    }
    struct auth_dmarc_dkim dk = {"example.com", data[0] & 1};
    const char *from = "mail.example.com";
    struct auth_dmarc *d = auth_dmarc_new(&from, 1, "example.com", data[0] & 2, &dk, 1);
    const char *name;
    unsigned asked = 0;
    while (auth_dmarc_run(d, &name) == AUTH_DMARC_NEED) {
        CHECK(++asked <= 2);
        const char *p = rec;
        auth_dmarc_answer(d, name, (enum auth_dns_status)(data[0] / 4 % 4), &p, &n, 1);
    }
    enum auth_dmarc_result res = auth_dmarc_result(d);
    CHECK((auth_dmarc_policy(d) != AUTH_DMARC_P_UNSET) ==
          (res == AUTH_DMARC_PASS || res == AUTH_DMARC_FAIL));
    auth_dmarc_free(d);
    free(rec);
    return 0;
}
