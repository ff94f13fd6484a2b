/* cli/serve.c — `clearmta serve [-c FILE]`: runs the server in the foreground, on the file's
 * configuration or on the embedded defaults. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "server/server.h"
#include "policy/config.h"

static int usage(void)
{
    fprintf(stderr, "usage: clearmta serve [-c FILE]\n");
    return 2;
}

int cli_serve(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else
            return usage();
    }
    struct policy_config cfg;
    struct policy_problems problems;
    memset(&problems, 0, sizeof problems);
    size_t n_problems;
    if (path) {
        n_problems = policy_config_load(path, &cfg, &problems);
    } else {
        n_problems = policy_config_defaults(&cfg) ? 0 : 1;
    }
    if (n_problems > 0) {
        for (size_t i = 0; i < problems.count; i++)
            fprintf(stderr, "%s:%u: %s\n", problems.items[i].file, problems.items[i].line,
                    problems.items[i].message);
        fprintf(stderr, "clearmta: %zu configuration problem(s); not starting\n", n_problems);
        policy_config_free(&cfg);
        return 1;
    }
    int status = server_run_file(path, &cfg);
    policy_config_free(&cfg);
    return status;
}
