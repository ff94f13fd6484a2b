/* fuzz/fuzz_config.c — libFuzzer target for the clearmta.conf loader (in memory) and the
 * recipient lookup over whatever config it yields. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy/config.h"
#include "policy/recipients.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct policy_problems problems;
    struct policy_config c;
    policy_config_load_buffer("fuzz.conf", (const char *)data, size, &c, &problems);

    /* The input's first bytes double as a local part, tried against every domain loaded. */
    char local[POLICY_MAILBOX_CAP + 8], out[POLICY_MAILBOX_CAP];
    size_t n = size < sizeof local - 1 ? size : sizeof local - 1;
    memcpy(local, data, n);
    local[n] = '\0';
    for (size_t i = 0; i < c.n_domains; i++) {
        policy_rcpt_lookup(&c, local, c.domains[i].name, out, sizeof out);
        policy_rcpt_lookup(&c, "postmaster", c.domains[i].name, out, sizeof out);
        for (size_t u = 0; u < c.domains[i].n_users && u < 4; u++)
            policy_rcpt_lookup(&c, c.domains[i].users[u], c.domains[i].name, out, sizeof out);
    }
    policy_rcpt_lookup(&c, local, local, out, sizeof out);
    policy_config_free(&c);
    return 0;
}
