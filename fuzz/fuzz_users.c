/* fuzz/fuzz_users.c — libFuzzer target for the AUTH users file parser (from memory), then
 * lookups and sender ownership over whatever table it yields. Never verifies: a fuzzed hash
 * may ask crypt for a billion rounds. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy/users.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ignore(void *ctx, unsigned line, const char *message)
{
    (void)ctx;
    (void)line;
    (void)message;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct policy_users *u = NULL;
    policy_users_load_buffer((const char *)data, size, ignore, NULL, &u);
    /* The input's first bytes double as a user name, local part and domain. */
    char word[300];
    size_t n = size < sizeof word - 1 ? size : sizeof word - 1;
    memcpy(word, data, n);
    word[n] = '\0';
    policy_users_valid_name(word, n);
    const char *name = policy_users_name(u, word);
    char *at = strchr(word, '@');
    const char *domain = at != NULL ? at + 1 : "example.test";
    if (at != NULL)
        *at = '\0';
    policy_users_owns_sender(u, NULL, name != NULL ? name : word, word, domain);
    policy_users_owns_sender(u, NULL, word, NULL, NULL);
    policy_users_free(u);
    return 0;
}
