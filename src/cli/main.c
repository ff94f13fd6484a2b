/* cli/main.c — the clearmta binary: dispatches to one subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

/* cli/control_cmd.c; to move to cli/cli.h. */

static int cli_help(int argc, char **argv);
static int cli_version(int argc, char **argv);

static const struct subcommand subcommands[] = {
    {"serve", cli_serve, "run the SMTP server (-c FILE; default configuration without)"},
    {"check-config", cli_check_config, "check a configuration file (-c FILE)"},
    {"explain", cli_explain, "explain an SMTP reply, code or bounce line (--stdin, --json)"},
    {"queue", cli_queue, "the running server's queue: list, show, flush, hold, release, delete, "
                         "status (--json)"},
    {"limits", cli_limits, "the running server's limit counters: show [USER|IP] (--json)"},
    {"passwd", cli_passwd, "add an AUTH user or change a password (USER [FILE])"},
    {"auth", cli_auth, "mail authentication: dkim-verify FILE|-, spf --ip --helo --mail-from, check"},
    {"check-domain", cli_check_domain, "what receivers see of a sending domain: MX, SPF, DKIM, "
                                       "DMARC, PTR (DOMAIN [--ip IP] [--selector S] [-c FILE])"},
    {"dkim", cli_dkim, "DKIM keys: keygen --domain D --selector S [--type rsa|ed25519] --out FILE"},
    {"docs", cli_docs, "print generated documentation (docs replies)"},
    {"sendmail", cli_sendmail, "sendmail(8) for local programs (-t, -i, -f, -F, -bs, -bp, -q)"},
    {"mailq", cli_mailq, "the queue, or the maildrop when the server is not running"},
    {"version", cli_version, "print the version"},
    {"help", cli_help, "print this help"},
};

static int cli_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("usage: clearmta COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        printf("  %-13s %s\n", subcommands[i].name, subcommands[i].summary);
    return 0;
}

static int cli_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("clearmta %s\n", CLEARMTA_VERSION);
    return 0;
}

int main(int argc, char **argv)
{
    /* Installed as sendmail and mailq, the binary is those programs (as Postfix's is). */
    const char *base = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
    base = base ? base + 1 : (argc > 0 && argv[0] ? argv[0] : "");
    if (strcmp(base, "sendmail") == 0)
        return cli_sendmail(argc, argv);
    if (strcmp(base, "mailq") == 0)
        return cli_mailq(argc, argv);
    if (argc < 2) {
        cli_help(0, NULL);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        name = "help";
    if (strcmp(name, "--version") == 0)
        name = "version";
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (strcmp(subcommands[i].name, name) == 0)
            return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "clearmta: unknown command '%s' (try 'clearmta help')\n", argv[1]);
    return 2;
}
