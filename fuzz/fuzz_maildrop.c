/* fuzz/fuzz_maildrop.c — libFuzzer target for the maildrop file parser (store/maildrop.c):
 * the server reads files any local user may write, so every byte is hostile. Parsed
 * addresses and the body must lie inside the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "limits_mta.h"
#include "store/maildrop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    struct store_maildrop_msg m;
    if (store_maildrop_parse(buf, size, &m)) {
        if (m.n_rcpts == 0 || m.n_rcpts > LIMIT_RECIPIENTS_MAX || m.body < buf ||
            m.body + m.body_len != buf + size || strlen(m.sender) > LIMIT_PATH)
            abort();
        for (size_t i = 0; i < m.n_rcpts; i++)
            if (strlen(m.rcpts[i]) == 0 || strlen(m.rcpts[i]) > LIMIT_PATH)
                abort();
        free(m.rcpts);
    }
    free(buf);
    return 0;
}
