/* cli/cli.h — the subcommands of the clearmta binary, one file each under src/cli/. */
#ifndef CLEARMTA_CLI_H
#define CLEARMTA_CLI_H

#define CLEARMTA_VERSION "0.1.0"

/* Each returns the process exit status: 0 success, 1 failure, 2 usage error. argv[0] is the
 * subcommand's name. */
int cli_explain(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_check_config(int argc, char **argv);
int cli_docs(int argc, char **argv);
int cli_passwd(int argc, char **argv);
int cli_queue(int argc, char **argv);  /* control_cmd.c */
int cli_limits(int argc, char **argv); /* control_cmd.c */
int cli_dkim(int argc, char **argv);   /* dkim.c */

#endif
