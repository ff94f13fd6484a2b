/* cli/control_cmd.c — `clearmta queue …` and `clearmta limits …`: finds the running server's
 * control socket through the configuration (queue_dir), sends the request, prints the answer
 * and exits with the server's status (1 with a clear message when no server runs). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "net/control_client.h"
#include "policy/config.h"

/* These belong in cli/cli.h beside the other subcommands; declared here until it has them. */

/* A queue listing of many messages may take a while to build; beyond this, give up. */
#define CALL_TIMEOUT_MS 60000u

static const char queue_usage[] =
    "usage: clearmta queue [-c FILE] COMMAND [--json]\n"
    "\n"
    "Asks the running server (its control socket in queue_dir) about its queue.\n"
    "\n"
    "  list                       every message: id, age, size, sender; each recipient with\n"
    "                             its state, attempts, next try, last reply and why\n"
    "  show ID                    one message, with the full explanation of each reply\n"
    "  flush [ID|DOMAIN]          try now (all, one message, or one destination domain)\n"
    "  hold ID                    no delivery attempt until released\n"
    "  release ID                 undo hold\n"
    "  delete ID --bounce         remove, telling the sender what was not delivered\n"
    "  delete ID --silent         remove without a notice\n"
    "  status                     queue totals and each destination's concurrency, backoff\n"
    "                             and messages per connection\n"
    "  -c FILE                    the server's configuration (default: the built-in one)\n"
    "  --json                     one JSON object (fields in docs/queue.md)\n"
    "\n"
    "Exit status: 0 done, 1 failed (unknown message, no server running), 2 usage error.\n";

static const char limits_usage[] =
    "usage: clearmta limits [-c FILE] show [USER|IP] [--json]\n"
    "\n"
    "Asks the running server for its limit counters: each counter, its limit, its window\n"
    "and when it frees up; for one submission user or client address, or all.\n"
    "\n"
    "Exit status: 0 done, 1 failed (no server running), 2 usage error.\n";

/* Runs argv (argv[0] the command word) against the server configured by -c. */
static int control_run(const char *name, const char *usage, int argc, char **argv)
{
    const char *conf = NULL;
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "-c") == 0) {
            if (++i == argc) {
                fputs(usage, stderr);
                return 2;
            }
            conf = argv[i];
            continue;
        }
        argv[1 + n++] = argv[i]; /* the rest goes to the server as it is */
    }
    struct policy_config cfg;
    struct policy_problems problems;
    memset(&problems, 0, sizeof problems);
    size_t bad = conf ? policy_config_load(conf, &cfg, &problems)
                      : (policy_config_defaults(&cfg) ? 0 : 1);
    if (bad > 0) {
        for (size_t i = 0; i < problems.count; i++)
            fprintf(stderr, "%s:%u: %s\n", problems.items[i].file, problems.items[i].line,
                    problems.items[i].message);
        fprintf(stderr, "clearmta %s: %zu configuration problem(s)\n", name, bad);
        policy_config_free(&cfg);
        return 1;
    }
    char path[POLICY_PATH_CAP + sizeof NET_CONTROL_SOCKET_NAME + 1];
    snprintf(path, sizeof path, "%s/%s", cfg.queue_dir, NET_CONTROL_SOCKET_NAME);
    policy_config_free(&cfg);
    char err[512];
    fflush(stdout);
    int status = net_control_call(path, 1 + n, argv, STDOUT_FILENO, STDERR_FILENO,
                                  CALL_TIMEOUT_MS, err, sizeof err);
    if (status < 0) {
        fprintf(stderr, "clearmta %s: %s\n", name, err);
        return 1;
    }
    return status;
}

int cli_queue(int argc, char **argv)
{
    return control_run("queue", queue_usage, argc, argv);
}

int cli_limits(int argc, char **argv)
{
    return control_run("limits", limits_usage, argc, argv);
}
