/* cli/message_file.c — reads one message from a file or standard input for the commands that
 * take one (dkim sign, auth dkim-verify), optionally making bare LF line ends CRLF. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define MESSAGE_MAX (256u << 20) /* far over any size limit; a larger input is refused */

char *cli_read_message(const char *path, bool to_crlf, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 65536, n = 0;
    char *p = malloc(cap);
    int c, prev = 0;
    while (p != NULL && (c = getc(f)) != EOF) {
        if (n + 2 >= cap) {
            char *q = cap < MESSAGE_MAX ? realloc(p, cap * 2) : NULL;
            if (q == NULL) {
                free(p);
                p = NULL;
                break;
            }
            p = q;
            cap *= 2;
        }
        if (to_crlf && c == '\n' && prev != '\r')
            p[n++] = '\r';
        p[n++] = (char)c;
        prev = c;
    }
    if (f != stdin)
        fclose(f);
    *len = n;
    return p;
}
