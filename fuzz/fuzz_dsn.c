/* fuzz/fuzz_dsn.c — libFuzzer target for src/deliver/dsn.c (hostile replies, addresses, ORCPT,
 * ENVID and messages must never break the report's lines or MIME structure) and for the
 * reply reading of src/deliver/destination.c.
 * Input: one option byte, then NUL-separated fields: diagnostic, final recipient, ORCPT,
 * remote MTA, sender, ENVID, message. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/destination.h"
#include "deliver/dsn.h"
#include "store/queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

#define FIELDS 7

/* Splits buf at NULs into up to FIELDS strings (copies; missing ones are ""). */
static void split(const char *buf, size_t size, char *fields[FIELDS])
{
    size_t off = 0;
    for (int i = 0; i < FIELDS; i++) {
        size_t end = off;
        while (end < size && buf[end] != '\0')
            end++;
        size_t n = end > off ? end - off : 0;
        fields[i] = malloc(n + 1);
        check(fields[i] != NULL);
        if (n)
            memcpy(fields[i], buf + off, n);
        fields[i][n] = '\0';
        off = end < size ? end + 1 : size;
    }
}

/* Every line ends in CRLF; lines before the returned message stay within 998 octets; the
 * boundary opens each part and closes the report. */
static void check_report(const char *out, size_t len, bool has_message)
{
    check(strlen(out) == len);
    size_t line = 0;
    const char *third = NULL;
    for (size_t i = 0; i < len; i++) {
        if (out[i] == '\r')
            check(i + 1 < len && out[i + 1] == '\n');
        if (out[i] == '\n')
            check(i > 0 && out[i - 1] == '\r');
        line = out[i] == '\n' ? 0 : line + 1;
        check(line <= 999 || third != NULL);
        bool start = i == 0 || out[i - 1] == '\n';
        if (!third && start && (strncmp(out + i, "Content-Description: Message header", 35) == 0 ||
                                strncmp(out + i, "Content-Description: Undelivered Message", 40) == 0))
            third = out + i;
    }
    const char *b = strstr(out, "\r\n boundary=\""); /* our folded Content-Type line */
    check(b != NULL);
    b += 13;
    const char *e = strchr(b, '"');
    check(e != NULL && e > b && e - b < 60);
    char delim[80] = "\r\n--";
    memcpy(delim + 4, b, (size_t)(e - b));
    delim[4 + (e - b)] = '\0';
    size_t n = 0;
    for (const char *p = strstr(out, delim); p; p = strstr(p + 1, delim))
        n++;
    check(n == (has_message ? 4u : 3u));
    size_t dl = strlen(delim);
    check(len > dl + 4 && memcmp(out + len - dl - 4, delim, dl) == 0);
    check(memcmp(out + len - 4, "--\r\n", 4) == 0);
}

static void fuzz_destination(const char *diag)
{
    struct reply_parsed r;
    size_t used = 0;
    if (reply_parse(diag, strlen(diag), &r, &used) != REPLY_PARSE_OK)
        return;
    struct deliver_destination d;
    check(deliver_destination_init(&d, "example.org", &deliver_destination_defaults) ==
          DELIVER_DESTINATION_OK);
    for (unsigned i = 0; i < 8; i++) {
        deliver_destination_on_reply(&d, &r, i, 1000 + i);
        check(d.limit >= 1 && d.limit <= d.cfg.concurrency_max);
    }
    for (const char *p = d.why; *p; p++)
        check((unsigned char)*p >= 0x20 && *p != 0x7f);
    char line[512];
    size_t need = deliver_destination_describe(&d, 1000, line, sizeof line);
    check(need > 0 && strlen(line) == (need < sizeof line ? need : sizeof line - 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    char *f[FIELDS];
    split((const char *)data + 1, size - 1, f);
    static const enum deliver_dsn_action actions[4] = {DELIVER_DSN_FAILED, DELIVER_DSN_DELAYED,
                                                       DELIVER_DSN_DELIVERED,
                                                       DELIVER_DSN_RELAYED};
    struct deliver_dsn_rcpt r[2] = {
        {.final_recipient = f[1], .orcpt = (opt & 0x10) ? f[2] : NULL,
         .notify = (opt & 0x20) ? STORE_NOTIFY_SUCCESS | STORE_NOTIFY_FAILURE : 0,
         .action = actions[opt & 3], .remote_mta = (opt & 0x40) ? f[3] : NULL,
         .diagnostic = f[0], .last_attempt = 1715000000, .will_retry_until = 1715400000},
        {.final_recipient = "second@example.org", .action = DELIVER_DSN_DELAYED,
         .diagnostic = f[0]},
    };
    bool has_message = (opt & 0x80) != 0;
    struct deliver_dsn_input in = {
        .reporting_mta = "mail.example.test", .queue_id = "0123ABCD", .sender = f[4],
        .envid = f[5][0] ? f[5] : NULL, .ret = (opt >> 2) & 3, .arrival = 1714900000,
        .message = has_message ? f[6] : NULL, .message_len = has_message ? strlen(f[6]) : 0,
        .return_limit = (opt & 0x08) ? 64 : 0, .rcpts = r, .n_rcpts = (opt & 0x04) ? 2 : 1,
    };
    char *out = NULL;
    size_t len = 0;
    enum deliver_dsn_err err = deliver_dsn_build(&in, 1715000100, size, &out, &len);
    if (err == DELIVER_DSN_OK)
        check_report(out, len, has_message);
    else
        check(out == NULL && deliver_dsn_strerror(err)[0] != '\0');
    free(out);
    fuzz_destination(f[0]);
    for (int i = 0; i < FIELDS; i++)
        free(f[i]);
    return 0;
}
