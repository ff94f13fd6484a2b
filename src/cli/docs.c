/* cli/docs.c — `clearmta docs replies`: prints docs/replies.md (Markdown), generated from the
 * reply table src/reply/codes.def, so the documentation cannot drift from what the server sends. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "reply/reply.h"

/* Text from the table is plain words; a few characters would turn into Markdown or HTML
 * ('<' starts a tag, '|' ends a table cell, '*' starts emphasis), so they are escaped. */
static void put_escaped(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        if (strchr("\\`*|<&", *s) != NULL)
            putc('\\', f);
        putc(*s, f);
    }
}

/* A reply text as a code span, so "<CR><LF>" and "{}" show as sent. Inside a table cell only
 * '|' still needs its escape (GitHub Flavored Markdown). */
static void put_code(FILE *f, const char *s)
{
    if (s[0] == '\0' || strchr(s, '`') != NULL) {
        put_escaped(f, s);
        return;
    }
    putc('`', f);
    for (; *s != '\0'; s++) {
        if (*s == '|')
            putc('\\', f);
        putc(*s, f);
    }
    putc('`', f);
}

static void put_item(FILE *f, const char *label, const char *text)
{
    fprintf(f, "- **%s** ", label);
    put_escaped(f, text);
    putc('\n', f);
}

static void print_intro(FILE *f)
{
    fputs("# SMTP replies: what the codes mean\n\n"
          "Generated from src/reply/codes.def by `clearmta docs replies`; do not edit.\n\n"
          "This page explains every SMTP reply code and enhanced status code that clearmta "
          "knows: what it means, what usually causes it, what the sender should do and what "
          "the receiving server's administrator should check. `clearmta explain` prints the "
          "same explanations for a reply or a bounce line.\n\n",
          f);
}

static void print_how_to_read(FILE *f)
{
    char example[REPLY_LINE_MAX];
    size_t n = reply_format(example, sizeof example, REPLY_USER_UNKNOWN, "bob@example.test",
                            NULL, 0, REPLY_FMT_ENHANCED);
    fputs("## How to read a reply\n\n"
          "A reply is a three-digit code, usually an enhanced status code, and a text:\n\n"
          "```\n",
          f);
    fwrite(example, 1, n >= 2 ? n - 2 : 0, f); /* without its CRLF */
    fputs("\n```\n\n"
          "A reply can span several lines; every line but the last has a '-' right after the "
          "code (`250-PIPELINING`), the last one a space.\n\n"
          "### The first digit: did it work?\n\n| Digit | Meaning |\n|---|---|\n",
          f);
    for (int d = 0; d <= 9; d++) {
        const char *m = reply_first_digit_meaning(d);
        if (m != NULL) {
            fprintf(f, "| %dxx | ", d);
            put_escaped(f, m);
            fputs(" |\n", f);
        }
    }
    fputs("\n### The second digit: about what?\n\n| Digit | Meaning |\n|---|---|\n", f);
    for (int d = 0; d <= 9; d++) {
        const char *m = reply_second_digit_meaning(d);
        if (m != NULL) {
            fprintf(f, "| x%dx | ", d);
            put_escaped(f, m);
            fputs(" |\n", f);
        }
    }
    fputs("\nThe third digit only tells codes of the same group apart.\n\n"
          "### The enhanced status code: class.subject.detail\n\n"
          "The enhanced code (RFC 3463, for example 5.1.1) is more precise than the three "
          "digits: read it first. Its class repeats the first digit (2 success, 4 temporary "
          "failure, 5 permanent failure), the subject says which part of mail delivery is "
          "concerned, and the detail names the exact condition.\n\n"
          "| Subject | Meaning |\n|---|---|\n",
          f);
    for (int d = 0; d <= 9; d++) {
        const char *m = reply_subject_meaning(d);
        if (m != NULL) {
            fprintf(f, "| x.%d.x | ", d);
            put_escaped(f, m);
            fputs(" |\n", f);
        }
    }
    putc('\n', f);
}

static void print_replies_sent(FILE *f)
{
    fputs("## When clearmta sends which reply\n\n"
          "`{}` in a text stands for a detail filled in when the reply is sent (an address, a "
          "host name, a queue id).\n\n"
          "| Code | Enhanced | Text | When |\n|---|---|---|---|\n",
          f);
    for (size_t i = 0; i < REPLY__COUNT; i++) {
        const struct reply_row *r = &reply_row_table[i];
        fprintf(f, "| %d | %s | ", r->code, r->enhanced[0] != '\0' ? r->enhanced : "none");
        put_code(f, r->text);
        fputs(" | ", f);
        put_escaped(f, r->when);
        fputs(" |\n", f);
    }
    putc('\n', f);
}

static const char *use_word(enum reply_outcome_use u)
{
    switch (u) {
    case REPLY_USE_SENT:
        return "delivered";
    case REPLY_USE_DEFER:
        return "deferred";
    case REPLY_USE_BOUNCE:
        return "bounced";
    case REPLY_USE_EXPIRE:
        break;
    }
    return "bounced (expired)";
}

static void print_outcomes(FILE *f)
{
    fputs("## Delivery outcomes\n\n"
          "The status the delivery agent records, logs (`dsn=`) and reports in DSNs when the "
          "next hop's reply carries no enhanced code, or when there is no reply at all.\n\n"
          "| Name | Status | Recipient | When |\n|---|---|---|---|\n",
          f);
    for (size_t i = 0; i < OUTCOME__COUNT; i++) {
        const struct reply_outcome_row *o = &reply_outcome_table[i];
        fprintf(f, "| %s | %d.%d.%d | %s | ", o->name, o->cls, o->subject, o->detail,
                use_word(o->use));
        put_escaped(f, o->when);
        fputs(" |\n", f);
    }
    putc('\n', f);
}

static void print_explanation(FILE *f, const char *meaning, const char *cause,
                              const char *action, const char *admin)
{
    put_item(f, "Meaning:", meaning);
    put_item(f, "Likely cause:", cause);
    put_item(f, "What the sender should do:", action);
    put_item(f, "What the receiving administrator should check:", admin);
    putc('\n', f);
}

static void print_basic(FILE *f)
{
    fputs("## Basic reply codes\n\n"
          "Codes marked non-standard are met in real bounces but defined by no standard.\n\n",
          f);
    for (size_t i = 0; i < reply_basic_count; i++) {
        const struct reply_basic *b = &reply_basic_table[i];
        fprintf(f, "### %d ", b->code);
        put_escaped(f, b->title);
        fprintf(f, "\n\nClass: %s (%dxx). Source: ",
                reply_class_name(reply_class_of(b->code)), b->code / 100);
        put_escaped(f, b->source);
        fprintf(f, ". Bounce reason: `%s`.\n\n", b->reason);
        print_explanation(f, b->meaning, b->cause, b->action, b->admin);
    }
}

static void print_enhanced(FILE *f)
{
    fputs("## Enhanced status codes\n\n"
          "Every code of the IANA registry \"SMTP Enhanced Status Codes\", with its registered "
          "title and the classes it is meant for. Some providers use a few codes with another "
          "meaning; the text says so where it is known.\n\n",
          f);
    for (size_t i = 0; i < reply_enhanced_count; i++) {
        const struct reply_enhanced *e = &reply_enhanced_table[i];
        fputs("### ", f);
        for (const char *c = e->classes; *c != '\0'; c++)
            fprintf(f, "%s%c.%d.%d", c == e->classes ? "" : " / ", *c, e->subject, e->detail);
        putc(' ', f);
        put_escaped(f, e->title);
        fputs("\n\nSource: ", f);
        put_escaped(f, e->source);
        fputs(". Used with: ", f);
        put_escaped(f, e->used_with);
        fprintf(f, ". Bounce reason: `%s`.\n\n", e->reason);
        print_explanation(f, e->meaning, e->cause, e->action, e->admin);
    }
}

static void print_reasons(FILE *f)
{
    fputs("## Bounce reasons\n\n"
          "The bounce reason of each code is the category a bounce processor files a failure "
          "under when nothing more specific is known. The names follow Sisimai's vocabulary "
          "(userunknown, mailboxfull, blocked, ...). clearmta uses `mesgtoobig` for oversized "
          "messages where newer processors say `emailtoolarge`.\n",
          f);
}

int cli_docs(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "replies") != 0) {
        fputs("usage: clearmta docs replies\n"
              "  replies  print docs/replies.md, the reply code reference (Markdown)\n",
              stderr);
        return 2;
    }
    print_intro(stdout);
    print_how_to_read(stdout);
    print_replies_sent(stdout);
    print_outcomes(stdout);
    print_basic(stdout);
    print_enhanced(stdout);
    print_reasons(stdout);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fputs("clearmta docs: cannot write the output\n", stderr);
        return 1;
    }
    return 0;
}
