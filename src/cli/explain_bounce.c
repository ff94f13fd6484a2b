/* cli/explain_bounce.c — `clearmta explain --bounce [FILE|DIR|-]`: reads one message, a
 * directory or Maildir of them, or an mbox, and explains each recipient of each bounce; text
 * or JSON Lines. RFC 4155 (mbox), RFC 8259 (JSON). */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/explain_json.h"
#include "reply/bounce.h"

/* A bounce's reasons sit in its first kilobytes; what follows a message's first 4 MiB (a large
 * returned attachment) is skipped, so memory stays constant whatever the input. */
#define MESSAGE_MAX (4u * 1024u * 1024u)
#define ARENA_MAX (3u * MESSAGE_MAX)

struct bounce_run {
    bool json;
    char *msg;
    size_t len;
    bool cut;
    char *arena;
    struct reply_bounce *b;
    unsigned long messages, bounces, not_bounces;
};

static struct cli_json record; /* the JSON line being built */

/* Text taken from the bounce, shown safely (cli_print_outside). */
static void print_outside(const char *label, const char *s, const char *after)
{
    cli_print_outside(label, s, strlen(s), after);
}

static void print_rcpt(const char *name, const struct reply_bounce *b,
                       const struct reply_bounce_rcpt *r, bool json)
{
    const struct reply_explanation *ex = r->explained ? &r->ex : NULL;
    if (json) {
        struct reply_json_out o = cli_json_out(&record);
        reply_bounce_json(&o, name, b, r);
        cli_json_lit(&record, "\n");
        cli_json_flush(&record, stdout);
        return;
    }
    print_outside("", name, ": ");
    print_outside("", r->recipient[0] ? r->recipient : "(no address)", "\n");
    if (b->kind == REPLY_BOUNCE_VACATION) {
        printf("  Reason:        vacation: an auto-reply (out of office), not a failure\n");
        return;
    }
    if (b->kind == REPLY_BOUNCE_FEEDBACK) {
        print_outside("  Reason:        feedback: a complaint report (",
                      b->feedback_type[0] ? b->feedback_type : "abuse",
                      ") from the recipient's provider; stop mailing this address\n");
        return;
    }
    print_outside("  Action:        ", r->action, "\n");
    print_outside("  Status:        ", r->status,
                  r->status_given ? "\n" : " (likeliest: the report gives none)\n");
    if (r->diag[0])
        print_outside("  Reply:         ", r->diag, "\n");
    if (r->remote_mta[0])
        print_outside("  Remote MTA:    ", r->remote_mta, "\n");
    printf("  Reason:        %s%s\n", r->reason, r->hard ? " (hard bounce)" : "");
    if (ex) {
        printf("  Meaning:       %s\n  Likely cause:  %s\n  What to do:    %s\n", ex->meaning,
               ex->cause, ex->action);
        printf("  Retry:         %s\n", r->status[0] == '4' ? ex->retry_when : "no");
    }
    if (b->message_id[0] || b->subject[0]) {
        print_outside("  Message:       ", b->message_id, " \"");
        print_outside("", b->subject, "\"\n");
    }
}

static void one_message(struct bounce_run *run, const char *name)
{
    run->messages++;
    enum reply_bounce_kind k = reply_bounce_parse(run->msg, run->len, run->arena, ARENA_MAX,
                                                  run->b);
    if (k == REPLY_BOUNCE_NONE) {
        run->not_bounces++;
        fprintf(stderr, "clearmta explain: %s: not a bounce, auto-reply or feedback report\n",
                name);
        return;
    }
    run->bounces++;
    for (size_t i = 0; i < run->b->nrcpt; i++)
        print_rcpt(name, run->b, &run->b->rcpt[i], run->json);
}

static void msg_add(struct bounce_run *run, const char *p, size_t n)
{
    if (run->len + n > MESSAGE_MAX) {
        n = MESSAGE_MAX - run->len;
        run->cut = true;
    }
    memcpy(run->msg + run->len, p, n);
    run->len += n;
}

/* The first message of an mbox is named as the file (a single message saved with its "From "
 * line is common); the next ones get "#2", "#3" … */
static void mbox_label(char *label, size_t cap, const char *name, unsigned long count)
{
    if (count == 1)
        snprintf(label, cap, "%s", name);
    else
        snprintf(label, cap, "%s#%lu", name, count);
}

/* Reads a stream: one message, or an mbox ("From " lines separate messages). */
static void read_stream(struct bounce_run *run, FILE *f, const char *name)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool mbox = false, first = true;
    unsigned long count = 0;
    char label[512];
    run->len = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        if (first) {
            mbox = n >= 5 && memcmp(line, "From ", 5) == 0;
            first = false;
            if (mbox)
                continue;
        }
        if (mbox && n >= 5 && memcmp(line, "From ", 5) == 0) {
            mbox_label(label, sizeof label, name, ++count);
            one_message(run, label);
            run->len = 0;
            continue;
        }
        /* mboxrd: ">From " was quoted on writing */
        const char *p = line;
        if (mbox && n >= 6 && line[0] == '>' && strncmp(line + 1, "From ", 5) == 0) {
            p++;
            n--;
        }
        msg_add(run, p, (size_t)n);
    }
    free(line);
    if (mbox) {
        mbox_label(label, sizeof label, name, ++count);
        one_message(run, label);
    } else if (run->len > 0) {
        one_message(run, name);
    }
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void read_path(struct bounce_run *run, const char *path, int depth);

static void read_dir(struct bounce_run *run, const char *path, int depth)
{
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "clearmta explain: %s: cannot open\n", path);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **p = realloc(names, nc * sizeof *p);
            if (!p)
                break;
            names = p;
            cap = nc;
        }
        names[n] = strdup(e->d_name);
        if (names[n])
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n; i++) {
        size_t need = strlen(path) + strlen(names[i]) + 2;
        char *full = malloc(need);
        if (full) {
            snprintf(full, need, "%s/%s", path, names[i]);
            read_path(run, full, depth + 1);
            free(full);
        }
        free(names[i]);
    }
    free(names);
}

static void read_path(struct bounce_run *run, const char *path, int depth)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "clearmta explain: %s: no such file\n", path);
        run->not_bounces++;
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        /* a Maildir's tmp/ holds messages still being written */
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (depth < 3 && strcmp(base, "tmp") != 0)
            read_dir(run, path, depth);
        return;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "clearmta explain: %s: cannot open\n", path);
        run->not_bounces++;
        return;
    }
    read_stream(run, f, path);
    fclose(f);
}

int cli_explain_bounce(const char *path, bool json)
{
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    struct bounce_run run = {.json = json};
    run.msg = malloc(MESSAGE_MAX);
    run.arena = malloc(ARENA_MAX);
    run.b = malloc(sizeof *run.b);
    if (!run.msg || !run.arena || !run.b) {
        fprintf(stderr, "clearmta explain: out of memory\n");
        free(run.msg);
        free(run.arena);
        free(run.b);
        return 1;
    }
    if (strcmp(path, "-") == 0)
        read_stream(&run, stdin, "-");
    else
        read_path(&run, path, 0);
    free(run.msg);
    free(run.arena);
    free(run.b);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "clearmta explain: error writing standard output\n");
        return 1;
    }
    if (run.messages == 0) {
        fprintf(stderr, "clearmta explain: no message in %s\n", path);
        return 1;
    }
    return run.not_bounces ? 1 : 0;
}
