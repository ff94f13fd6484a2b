/* cli/explain.c — `clearmta explain`: explains SMTP replies, codes and bounce/log lines given
 * as arguments or, with --stdin, one per line (multi-line replies grouped); readable blocks
 * or JSON Lines (--json). RFC 8259 (JSON). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cli/cli.h"
#include "cli/explain_json.h"
#include "reply/explain.h"
#include "reply/explain_json.h"

#define TEXT_COPY_MAX 8192 /* reply text shown; longer texts are cut */

struct explain_opts {
    bool json;
    bool from_stdin;
    bool bounce;
    bool log;
    bool summary;
};

static void usage(FILE *f)
{
    fputs("usage: clearmta explain [--json] REPLY...\n"
          "       clearmta explain --stdin [--json] < FILE\n"
          "       clearmta explain --bounce [FILE|DIR|-] [--json]\n"
          "       clearmta explain --log [FILE|-] [--json] [--summary]\n"
          "\n"
          "Explains an SMTP reply, a reply code (503), an enhanced status code (5.7.1) or a\n"
          "bounce or log line holding a reply: class, meaning, likely cause, what to do,\n"
          "whether and when to retry, and the bounce reason (userunknown, mailboxfull, ...).\n"
          "\n"
          "  REPLY...   the arguments joined with spaces are one reply; newlines inside it\n"
          "             separate the lines of a multi-line reply\n"
          "  --stdin    read one reply per line; the lines of a multi-line reply (550-... up to\n"
          "             550 ...) are read together; blank lines are skipped\n"
          "  --bounce   read whole bounce messages (a file, a directory or Maildir, an mbox,\n"
          "             or - for standard input) and explain each recipient; exit 1 when a\n"
          "             message is not a bounce, an auto-reply or a feedback report\n"
          "  --log      read a mail log (Postfix, Sendmail, Exim, OpenSMTPD, chasquid,\n"
          "             clearmta) and explain each delivery line; --summary counts them by\n"
          "             destination and reason and names the top problems\n"
          "  --json     one JSON object per reply (JSON Lines) with the fields code, enhanced,\n"
          "             class, retry, reason, meaning, cause, action (and more)\n"
          "  -h, --help this help\n"
          "\n"
          "Exit status: 0 all explained, 1 some input was not a reply, 2 usage error.\n",
          f);
}

/* ---- output ------------------------------------------------------------------------------ */

struct buf {
    char *p;
    size_t len, cap;
};

static bool buf_append(struct buf *b, const char *s, size_t n)
{
    if (n > SIZE_MAX - b->len - 1)
        return false;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

static struct cli_json record; /* the JSON line being built */


static void print_json(FILE *f, const struct reply_explanation *ex, const char *text,
                       size_t text_len)
{
    struct reply_json_out o = cli_json_out(&record);
    reply_explain_json(&o, ex, text, text_len);
    cli_json_lit(&record, "\n");
    cli_json_flush(&record, f);
}

static void print_json_error(FILE *f, enum reply_explain_err err, unsigned long line,
                             const char *input, size_t len)
{
    struct reply_json_out o = cli_json_out(&record);
    reply_explain_json_error(&o, err, line, input, len);
    cli_json_lit(&record, "\n");
    cli_json_flush(&record, f);
}

static void put_label(FILE *f, const char *label)
{
    size_t n = strlen(label);
    fputs_unlocked(label, f);
    for (; n < 15; n++)
        putc_unlocked(' ', f);
}

static void print_field(FILE *f, const char *label, const char *value)
{
    if (value && value[0]) {
        put_label(f, label);
        fputs_unlocked(value, f);
        putc_unlocked('\n', f);
    }
}

/* For codes the table does not hold: the meaning of each digit. */
static void print_digits(FILE *f, int first, int second, bool enhanced)
{
    const char *a = reply_first_digit_meaning(first);
    const char *b = enhanced ? reply_subject_meaning(second) : reply_second_digit_meaning(second);
    put_label(f, "");
    fprintf(f, "first digit %d: %s; %s %d: %s\n", first, a ? a : "no meaning",
            enhanced ? "subject" : "second digit", second, b ? b : "no defined meaning");
}

static void print_human(FILE *f, const struct reply_explanation *ex, const char *text,
                        size_t text_len)
{
    if (text_len > 0) {
        put_label(f, "Reply text:");
        fwrite_unlocked(text, 1, text_len, f);
        putc_unlocked('\n', f);
    }
    if (ex->code) {
        put_label(f, "Code:");
        fprintf(f, "%d", ex->code);
        fputs_unlocked(", ", f);
        fputs_unlocked(reply_first_digit_meaning(ex->code / 100), f);
        if (ex->basic && ex->basic->title && ex->basic->title[0]) {
            fputs_unlocked(" (", f);
            fputs_unlocked(ex->basic->title, f);
            putc_unlocked(')', f);
        }
        putc_unlocked('\n', f);
        if (!ex->basic)
            print_digits(f, ex->code / 100, ex->code / 10 % 10, false);
    }
    if (ex->status.cls) {
        put_label(f, "Enhanced code:");
        char st[48];
        cli_format_status(ex->status.cls, ex->status.subject, ex->status.detail, st, sizeof st);
        fputs_unlocked(st, f);
        putc_unlocked(' ', f);
        fputs_unlocked(ex->enhanced ? ex->enhanced->title : "(not in the registry)", f);
        putc_unlocked('\n', f);
        if (!ex->enhanced)
            print_digits(f, ex->status.cls, ex->status.subject, true);
    }
    print_field(f, "Class:", reply_class_name(ex->cls));
    put_label(f, "Reason:");
    fputs_unlocked(reply_reason_name(ex->reason), f);
    fputs_unlocked(": ", f);
    fputs_unlocked(ex->summary, f);
    if (ex->pattern) {
        const struct reply_pattern *p = ex->pattern;
        fputs_unlocked(" (the text says \"", f);
        fwrite_unlocked(p->phrase, 1, p->len - (p->phrase[p->len - 1] == '*'), f);
        fputs_unlocked("\")", f);
    }
    putc_unlocked('\n', f);
    print_field(f, "Meaning:", ex->meaning);
    print_field(f, "Likely cause:", ex->cause);
    print_field(f, "What to do:", ex->action);
    print_field(f, "Administrator:", ex->admin);
    put_label(f, "Retry:");
    fputs_unlocked(ex->retry ? "yes: " : "no: ", f);
    fputs_unlocked(ex->retry_when, f);
    putc_unlocked('\n', f);
    if (ex->command) {
        put_label(f, "Stage:");
        fputs_unlocked("in reply to ", f);
        fwrite_unlocked(ex->command, 1, ex->command_len, f);
        putc_unlocked('\n', f);
    }
    for (int n = 0; n < REPLY_NOTE__COUNT; n++)
        if (ex->notes & (1u << n))
            print_field(f, "Note:", reply_explain_note_text((enum reply_note)n));
}

/* Explains one reply and prints it; returns false for bad input. */
static bool explain_one(const struct explain_opts *o, const char *input, size_t len,
                        unsigned long line, bool *first_block)
{
    struct reply_explanation ex;
    enum reply_explain_err err = reply_explain(input, len, &ex);
    if (err != REPLY_EXPLAIN_OK) {
        if (o->json && o->from_stdin)
            print_json_error(stdout, err, line, input, len);
        else if (o->from_stdin)
            fprintf(stderr, "clearmta explain: line %lu: %s\n", line, reply_explain_strerror(err));
        else
            fprintf(stderr, "clearmta explain: %s\n", reply_explain_strerror(err));
        return false;
    }
    static char text[TEXT_COPY_MAX];
    size_t text_len = reply_explain_text(&ex, text, sizeof text);
    if (o->json) {
        print_json(stdout, &ex, text, text_len);
    } else {
        if (!*first_block)
            putc_unlocked('\n', stdout);
        print_human(stdout, &ex, text, text_len);
    }
    *first_block = false;
    return true;
}

/* ---- input ------------------------------------------------------------------------------- */

static int explain_args(const struct explain_opts *o, int argc, char **argv)
{
    struct buf b = {0};
    for (int i = 0; i < argc; i++) {
        if ((i > 0 && !buf_append(&b, " ", 1)) || !buf_append(&b, argv[i], strlen(argv[i]))) {
            fprintf(stderr, "clearmta explain: out of memory\n");
            free(b.p);
            return 1;
        }
    }
    bool first = true;
    bool ok = explain_one(o, b.p ? b.p : "", b.len, 1, &first);
    free(b.p);
    return ok ? 0 : 1;
}

/* "550-" or "550 " or "550" at the start of a line: the code of a reply line, or 0. */
static int line_code(const char *s, size_t len, char *sep)
{
    if (len < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9')
        return 0;
    *sep = len > 3 ? s[3] : ' ';
    if (*sep != '-' && *sep != ' ' && *sep != '\t')
        return 0;
    return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

struct reader {
    const struct explain_opts *o;
    struct buf group;           /* the lines of a multi-line reply read so far */
    int group_code;             /* 0 when no group is open */
    size_t group_lines;
    unsigned long group_line;   /* line number of its first line */
    unsigned long explained, bad;
    bool first_block;
};

static void flush_group(struct reader *r)
{
    if (r->group_code == 0)
        return;
    if (explain_one(r->o, r->group.p, r->group.len, r->group_line, &r->first_block))
        r->explained++;
    else
        r->bad++;
    r->group.len = 0;
    r->group_code = 0;
    r->group_lines = 0;
}

static bool group_add(struct reader *r, const char *s, size_t len)
{
    if ((r->group.len > 0 && !buf_append(&r->group, "\n", 1)) || !buf_append(&r->group, s, len))
        return false;
    r->group_lines++;
    return true;
}

/* One input line: continues or ends an open multi-line reply, opens one, or stands alone. */
static bool take_line(struct reader *r, const char *s, size_t len, unsigned long line)
{
    char sep = ' ';
    int code = line_code(s, len, &sep);
    if (r->group_code != 0) {
        if (code == r->group_code) {
            if (!group_add(r, s, len))
                return false;
            if (sep != '-' || r->group_lines >= REPLY_LINES_MAX)
                flush_group(r);
            return true;
        }
        flush_group(r); /* a reply that never ended: explained as read */
    }
    bool blank = true;
    for (size_t i = 0; i < len && blank; i++)
        blank = s[i] == ' ' || s[i] == '\t';
    if (blank)
        return true;
    if (code != 0 && sep == '-') {
        r->group_code = code;
        r->group_line = line;
        return group_add(r, s, len);
    }
    if (explain_one(r->o, s, len, line, &r->first_block))
        r->explained++;
    else
        r->bad++;
    return true;
}

static int explain_stdin(const struct explain_opts *o)
{
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    struct reader r = {.o = o, .first_block = true};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0;
    bool ok = true;
    while (ok && (n = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)n;
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        ok = take_line(&r, line, len, lineno);
    }
    if (ok)
        flush_group(&r);
    free(line);
    free(r.group.p);
    if (!ok) {
        fprintf(stderr, "clearmta explain: out of memory\n");
        return 1;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "clearmta explain: error reading standard input\n");
        return 1;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "clearmta explain: error writing standard output\n");
        return 1;
    }
    if (r.explained == 0 && r.bad == 0) {
        fprintf(stderr, "clearmta explain: no reply on standard input\n");
        return 1;
    }
    return r.bad ? 1 : 0;
}

int cli_explain(int argc, char **argv)
{
    struct explain_opts o = {0};
    /* Options may stand anywhere before "--"; the other arguments form the reply, in order. */
    int nwords = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (++i < argc)
                argv[1 + nwords++] = argv[i];
            break;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (strcmp(a, "--stdin") == 0) {
            o.from_stdin = true;
        } else if (strcmp(a, "--bounce") == 0) {
            o.bounce = true;
        } else if (strcmp(a, "--log") == 0) {
            o.log = true;
        } else if (strcmp(a, "--summary") == 0) {
            o.summary = true;
        } else if (a[0] == '-' && a[1] != '\0' && (a[1] < '0' || a[1] > '9')) {
            fprintf(stderr, "clearmta explain: unknown option '%s' (try --help; '--' ends "
                            "options)\n", a);
            return 2;
        } else {
            argv[1 + nwords++] = argv[i];
        }
    }
    if (o.from_stdin && nwords > 0) {
        fputs("clearmta explain: give replies either as arguments or with --stdin, not both\n",
              stderr);
        return 2;
    }
    if (o.log) {
        if (nwords > 1 || o.from_stdin || o.bounce) {
            fputs("clearmta explain: --log takes one FILE or -\n", stderr);
            return 2;
        }
        return cli_explain_log(nwords ? argv[1] : "-", o.json, o.summary);
    }
    if (o.summary) {
        fputs("clearmta explain: --summary goes with --log\n", stderr);
        return 2;
    }
    if (o.bounce) {
        if (nwords > 1 || o.from_stdin) {
            fputs("clearmta explain: --bounce takes one FILE, DIR or -\n", stderr);
            return 2;
        }
        return cli_explain_bounce(nwords ? argv[1] : "-", o.json);
    }
    if (o.from_stdin)
        return explain_stdin(&o);
    if (nwords == 0) {
        fprintf(stderr, "clearmta explain: nothing to explain (try --help)\n");
        return 2;
    }
    int rc = explain_args(&o, nwords, argv + 1);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "clearmta explain: error writing standard output\n");
        return 1;
    }
    return rc;
}
