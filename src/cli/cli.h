/* cli/cli.h — the subcommands of the clearmta binary, one file each under src/cli/. */
#ifndef CLEARMTA_CLI_H
#define CLEARMTA_CLI_H

#include <stdbool.h>
#include <stddef.h>

#define CLEARMTA_VERSION "0.1.0"

/* Each returns the process exit status: 0 success, 1 failure, 2 usage error. argv[0] is the
 * subcommand's name. */
int cli_explain(int argc, char **argv);
/* explain --bounce: path is a message, a directory/Maildir, an mbox or "-" (explain_bounce.c). */
#include <stdbool.h>
int cli_explain_bounce(const char *path, bool json);
/* explain --log: delivery lines of a mail log, or a summary of them (explain_log.c). */
int cli_explain_log(const char *path, bool json, bool summary);
int cli_serve(int argc, char **argv);
int cli_check_config(int argc, char **argv);
int cli_docs(int argc, char **argv);
int cli_passwd(int argc, char **argv);
int cli_queue(int argc, char **argv);  /* control_cmd.c */
int cli_limits(int argc, char **argv); /* control_cmd.c */
int cli_dkim(int argc, char **argv);   /* dkim.c */
int cli_auth(int argc, char **argv);   /* auth.c */
int cli_check_domain(int argc, char **argv); /* check_domain.c */

/* message_file.c: the whole of FILE or standard input ("-"), malloc'd; with to_crlf a bare LF
 * becomes CRLF (files on disk often have LF line ends; DKIM works on CRLF lines). NULL when
 * unreadable, out of memory or over 256 MiB. */
char *cli_read_message(const char *path, bool to_crlf, size_t *len);

/* outside_text.c: prints label, the len bytes of s (text from outside: a bounce, a log, an
 * envelope) with control bytes as "\xHH" and each further line indented under the first
 * (reply/safe_text.h), then after, to standard output. */
void cli_print_outside(const char *label, const char *s, size_t len, const char *after);

/* sendmail.c: sendmail(8) and mailq(1) for local programs; exit codes from sysexits.h. */
struct policy_config;
int cli_sendmail(int argc, char **argv);
int cli_mailq(int argc, char **argv);
/* Whether a running server was told of a new maildrop file. */
enum cli_poke {
    CLI_POKE_DONE,      /* it answered: it picks the file up now */
    CLI_POKE_DENIED,    /* the control socket is not this user's: picked up at the next tick */
    CLI_POKE_NO_SERVER, /* none runs: picked up when it starts */
};
/* Drops one message into the maildrop and tells a running server (*poke: how that went). */
int cli_sendmail_drop(const struct policy_config *cfg, const char *sender, char **rcpts,
                      size_t n, const char *msg, size_t len, char *name, size_t namecap,
                      enum cli_poke *poke);
/* sendmail_smtp.c: sendmail -bs, an SMTP dialog on stdin/stdout. */
int cli_sendmail_smtp(const struct policy_config *cfg, bool verbose);

#endif
