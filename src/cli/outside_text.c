/* cli/outside_text.c — prints text that came from outside (a bounce, a mail log, a maildrop
 * envelope) to standard output as reply/safe_text.h shows it: no control byte reaches the
 * terminal, each further line indented under the first. */
#include <stdio.h>

#include "cli/cli.h"
#include "reply/safe_text.h"

#define FIELD_INDENT "                 " /* the width of "  Reason:        " */

static bool stdout_put(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    return fwrite(p, 1, n, stdout) == n;
}

void cli_print_outside(const char *label, const char *s, size_t len, const char *after)
{
    fputs(label, stdout);
    reply_safe_text(s, len, "\n" FIELD_INDENT, stdout_put, NULL);
    fputs(after, stdout);
}
