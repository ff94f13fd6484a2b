/* fuzz/fuzz_command.c — libFuzzer target for the command-line parser (src/smtp/command.c). The
 * first byte picks the SMTP_EXT_* bits, the rest is one command line; results are checked. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/command.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_command(const char *line, size_t len, const struct smtp_command *c,
                          enum smtp_cmd_err err)
{
    size_t n = strnlen(c->err_detail, sizeof c->err_detail);
    if (n == sizeof c->err_detail || (err == SMTP_CMD_OK && n != 0))
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)c->err_detail[i] < 0x20 || (unsigned char)c->err_detail[i] > 0x7e)
            abort();
    if (c->arg != NULL && (c->arg < line || c->arg_len == 0 || c->arg + c->arg_len > line + len))
        abort();
    if (err != SMTP_CMD_OK)
        return;
    if (strlen(c->envid) > LIMIT_ENVID || strlen(c->orcpt) > LIMIT_ORCPT ||
        strlen(c->auth) >= sizeof c->auth || c->path.mailbox_len > LIMIT_PATH)
        abort();
    if (c->path.is_utf8 && c->verb == SMTP_VERB_MAIL && !c->smtputf8)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static struct smtp_command cmd;
    const char *line = (const char *)data + 1;
    size_t len = size - 1;
    enum smtp_cmd_err err = smtp_command_parse(line, len, data[0], &cmd);
    check_command(line, len, &cmd, err);
    return 0;
}
