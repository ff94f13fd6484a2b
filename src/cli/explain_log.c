/* cli/explain_log.c — `clearmta explain --log [FILE|-] [--summary]`: one explained result per
 * delivery line of a mail log, and a summary of the problems by destination and reason, in
 * constant memory whatever the log's size. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cli/cli.h"
#include "cli/explain_json.h"
#include "reply/logline.h"
#include "reply/reason.h"

#define SUMMARY_ROWS 4096 /* distinct (domain, outcome, reason) kept; more are counted apart */
#define SUMMARY_TOP 10

struct summary_row {
    char domain[128];
    enum reply_log_outcome outcome;
    const char *reason;
    const char *cause; /* the reply's own words (a patterns.def row), or NULL */
    unsigned long count;
};

static struct summary_row rows[SUMMARY_ROWS];
static size_t nrows;
static unsigned long others, lines_read, deliveries;

static void print_entry(const struct reply_log_entry *e, bool json, unsigned long lineno)
{
    const struct reply_explanation *ex = e->explained ? &e->ex : NULL;
    char status[32] = "";
    if (e->status.cls)
        cli_format_status(e->status.cls, e->status.subject, e->status.detail, status,
                          sizeof status);
    bool hard = strcmp(e->reason, "userunknown") == 0 || strcmp(e->reason, "hostunknown") == 0 ||
                strcmp(e->reason, "hasmoved") == 0;
    const char *action = e->outcome == REPLY_LOG_DELIVERED  ? "delivered"
                         : e->outcome == REPLY_LOG_DEFERRED ? "delayed"
                                                            : "failed";
    if (json) {
        static struct cli_json record;
        struct cli_json *j = &record;
        cli_json_lit(j, "{\"line\":");
        cli_json_uint(j, lineno);
        cli_json_field(j, "timestamp", e->stamp, e->stamp_len, true);
        cli_json_field(j, "queue_id", e->queue_id, e->queue_id_len, true);
        cli_json_text(j, "mta", e->mta, true, true);
        cli_json_field(j, "recipient", e->recipient, e->recipient_len, true);
        cli_json_text(j, "action", action, true, true);
        cli_json_text(j, "outcome", reply_log_outcome_name(e->outcome), true, true);
        cli_json_text(j, "status", status, false, true);
        cli_json_lit(j, ",\"reply_code\":");
        if (ex && ex->code)
            cli_json_uint(j, (unsigned long)ex->code);
        else
            cli_json_lit(j, "null");
        cli_json_field(j, "reply", e->reply, e->reply_len, true);
        cli_json_text(j, "reason", e->reason, true, true);
        cli_json_bool(j, "hardbounce", hard && e->outcome == REPLY_LOG_BOUNCED, true);
        cli_json_field(j, "remote_mta", e->relay, e->relay_len, true);
        cli_json_text(j, "class", e->status.cls == 2   ? "success"
                                  : e->status.cls == 4 ? "transient"
                                                       : "permanent", true, true);
        cli_json_bool(j, "retry", e->outcome == REPLY_LOG_DEFERRED, true);
        cli_json_text(j, "meaning", ex ? ex->meaning : NULL, true, true);
        cli_json_text(j, "cause", ex ? ex->cause : NULL, true, true);
        cli_json_text(j, "action_advice", ex ? ex->action : NULL, true, true);
        cli_json_lit(j, "}\n");
        cli_json_flush(j, stdout);
        return;
    }
    /* the log's fields are text from outside: shown safely */
    cli_print_outside("", e->stamp ? e->stamp : "", e->stamp_len, " ");
    cli_print_outside("", e->queue_id ? e->queue_id : "", e->queue_id_len, " ");
    cli_print_outside("", e->recipient, e->recipient_len, ": ");
    printf("%s %s (%s)\n", reply_log_outcome_name(e->outcome), status, e->reason);
    if (e->reply_len)
        cli_print_outside("  Reply:         ", e->reply, e->reply_len, "\n");
    if (ex && e->outcome != REPLY_LOG_DELIVERED)
        printf("  Meaning:       %s\n  What to do:    %s\n", ex->meaning, ex->action);
}

static void count(const struct reply_log_entry *e)
{
    const char *at = memchr(e->recipient, '@', e->recipient_len);
    const char *d = at ? at + 1 : "(local)";
    size_t dn = at ? e->recipient_len - (size_t)(at + 1 - e->recipient) : 7;
    if (dn >= sizeof rows[0].domain)
        dn = sizeof rows[0].domain - 1;
    const char *cause = e->explained && e->ex.pattern ? e->ex.pattern->cause : NULL;
    for (size_t i = 0; i < nrows; i++) {
        struct summary_row *r = &rows[i];
        if (r->outcome == e->outcome && r->reason == e->reason && r->cause == cause &&
            strlen(r->domain) == dn &&
            strncasecmp(r->domain, d, dn) == 0) {
            r->count++;
            return;
        }
    }
    if (nrows >= SUMMARY_ROWS) {
        others++;
        return;
    }
    struct summary_row *r = &rows[nrows++];
    memcpy(r->domain, d, dn);
    r->domain[dn] = '\0';
    for (size_t k = 0; k < dn; k++)
        if (r->domain[k] >= 'A' && r->domain[k] <= 'Z')
            r->domain[k] = (char)(r->domain[k] + 32);
    r->outcome = e->outcome;
    r->reason = e->reason;
    r->cause = cause;
    r->count = 1;
}

static int by_count(const void *a, const void *b)
{
    const struct summary_row *x = a, *y = b;
    return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

static void print_summary(bool json)
{
    qsort(rows, nrows, sizeof rows[0], by_count);
    if (json) {
        struct cli_json j = {0};
        cli_json_lit(&j, "{\"summary\":{\"lines\":");
        cli_json_uint(&j, lines_read);
        cli_json_lit(&j, ",\"deliveries\":");
        cli_json_uint(&j, deliveries);
        cli_json_lit(&j, ",\"rows\":[");
        for (size_t i = 0; i < nrows; i++) {
            if (i > 0)
                cli_json_lit(&j, ",");
            cli_json_lit(&j, "{");
            cli_json_text(&j, "domain", rows[i].domain, false, false);
            cli_json_text(&j, "outcome", reply_log_outcome_name(rows[i].outcome), true, true);
            cli_json_text(&j, "reason", rows[i].reason, true, true);
            cli_json_lit(&j, ",\"count\":");
            cli_json_uint(&j, rows[i].count);
            cli_json_lit(&j, "}");
        }
        cli_json_lit(&j, "],\"other\":");
        cli_json_uint(&j, others);
        cli_json_lit(&j, "}}\n");
        cli_json_flush(&j, stdout);
        free(j.p);
        return;
    }
    printf("\nSummary: %lu lines, %lu deliveries\n", lines_read, deliveries);
    size_t shown = 0;
    for (size_t i = 0; i < nrows && shown < SUMMARY_TOP; i++) {
        const struct summary_row *r = &rows[i];
        if (r->outcome == REPLY_LOG_DELIVERED)
            continue;
        enum reply_reason rr;
        const struct reply_reason_info *info =
            reply_reason_from_name(r->reason, &rr) ? reply_reason_info(rr) : NULL;
        printf("  %lu message%s to ", r->count, r->count == 1 ? "" : "s");
        cli_print_outside("", r->domain, strlen(r->domain), " ");
        printf("%s (%s): %s%s\n", reply_log_outcome_name(r->outcome), r->reason,
               r->cause ? r->cause : info ? info->summary : r->reason,
               r->outcome != REPLY_LOG_DEFERRED ? ""
               : r->cause                      ? " The queue retries them."
                                               : "; the queue retries them");
        shown++;
    }
    for (size_t i = 0; i < nrows; i++)
        if (rows[i].outcome == REPLY_LOG_DELIVERED) {
            printf("  %lu message%s to ", rows[i].count, rows[i].count == 1 ? "" : "s");
            cli_print_outside("", rows[i].domain, strlen(rows[i].domain), " delivered\n");
        }
    if (others)
        printf("  %lu more results in other groups\n", others);
}

int cli_explain_log(const char *path, bool json, bool summary)
{
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "clearmta explain: %s: cannot open\n", path);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    struct reply_log_entry e;
    while ((n = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)n;
        lines_read++;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (!reply_log_parse(line, len, &e))
            continue;
        deliveries++;
        if (summary)
            count(&e);
        else
            print_entry(&e, json, lines_read);
    }
    free(line);
    bool read_error = ferror(f);
    if (f != stdin)
        fclose(f);
    if (summary)
        print_summary(json);
    if (fflush(stdout) != 0 || read_error) {
        fprintf(stderr, "clearmta explain: error reading the log or writing the output\n");
        return 1;
    }
    if (deliveries == 0) {
        fprintf(stderr, "clearmta explain: no delivery line in %s\n", path);
        return 1;
    }
    return 0;
}
