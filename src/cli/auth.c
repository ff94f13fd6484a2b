/* cli/auth.c — `clearmta auth dkim-verify FILE|-` (every DKIM signature of one message),
 * `clearmta auth spf --ip --helo --mail-from` (SPF check_host) and `clearmta auth check`
 * (SPF, DKIM, DMARC and the Authentication-Results value), with --json and --resolver
 * HOST:PORT; the checks of deliver/authcheck.c (the server's own) on an event loop run until
 * they are done.
 * RFC 6376 §6, RFC 8463, RFC 7208, RFC 7489, RFC 8601. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/dkim_sign.h"
#include "auth/dkim_verify.h"
#include "auth/dmarc.h"
#include "auth/spf.h"
#include <unistd.h>
#include "cli/cli.h"
#include "deliver/authcheck.h"
#include "reply/json.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: clearmta auth dkim-verify FILE|- [--json] [--resolver HOST:PORT] "
                 "[--repeat N]\n"
                 "       clearmta auth spf --ip IP --helo NAME --mail-from ADDR [--json] "
                 "[--resolver HOST:PORT]\n"
                 "       clearmta auth check --ip IP --helo NAME --mail-from ADDR FILE|- "
                 "[--json] [--resolver HOST:PORT]\n");
}

/* One check through deliver/authcheck.c on an event loop of its own, run until it is done. */
struct check {
    struct event_base *base;
    struct deliver_authcheck *a;
    struct deliver_authcheck_run *run;
};

static void on_checked(void *ctx, struct deliver_authcheck_run *run)
{
    (void)run;
    event_base_loopbreak(ctx);
}

/* c-ares doubles the timeout on its second try: 3.3 s + 6.6 s, so an unanswered query gives
 * up after ~10 s. 0, or 1 with the reason said. */
static int check_open(struct check *c, const char *server)
{
    char err[256] = "out of memory";
    memset(c, 0, sizeof *c);
    c->base = event_base_new();
    c->a = c->base ? deliver_authcheck_new(c->base, server, 3300, err, sizeof err) : NULL;
    c->run = c->a ? deliver_authcheck_run_new(c->a) : NULL;
    if (c->run != NULL)
        return 0;
    fprintf(stderr, "clearmta auth: %s\n", err);
    return 1;
}

static void check_close(struct check *c)
{
    deliver_authcheck_run_free(c->run);
    deliver_authcheck_free(c->a);
    if (c->base)
        event_base_free(c->base);
}

/* SPF of the options' identities (ip not NULL), then (msg not NULL) DKIM and, when dmarc,
 * DMARC of msg. 0, or 1 (2: a bad address) with the reason said. */
static int check_run(struct check *c, const char *ip, const char *helo, const char *from,
                     const char *msg, size_t len, bool dmarc)
{
    enum auth_err err = AUTH_OK;
    if (ip != NULL) {
        err = deliver_authcheck_spf(c->run, ip, helo, from, NULL, on_checked, c->base);
        if (err == AUTH_ERR_SYNTAX) {
            fprintf(stderr, "clearmta auth: '%s' is not an IP address\n", ip);
            return 2;
        }
        if (err == AUTH_OK)
            event_base_dispatch(c->base);
    }
    if (err == AUTH_OK && msg != NULL) {
        err = deliver_authcheck_message(c->run, msg, len, dmarc, on_checked, c->base);
        if (err == AUTH_OK)
            event_base_dispatch(c->base);
    }
    if (err != AUTH_OK)
        fprintf(stderr, "clearmta auth: %s\n", auth_strerror(err));
    return err == AUTH_OK ? 0 : 1;
}

/* --repeat: the cost of verifying msg, its key answers given from memory (no DNS). */
static void repeat_verify(const char *msg, size_t len, const struct deliver_authcheck_run *run,
                          long n)
{
    struct timespec t0, t1;
    size_t sigs = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long k = 0; k < n; k++) {
        struct auth_dkim_verify *v = NULL;
        if (auth_dkim_verify_new(msg, len, (int64_t)time(NULL), &v) != AUTH_OK)
            return;
        sigs = auth_dkim_verify_count(v);
        for (size_t i = 0; i < sigs; i++) {
            enum auth_dns_status st;
            const char *rec;
            size_t rl;
            deliver_authcheck_run_key(run, i, &st, &rec, &rl);
            if (auth_dkim_verify_key_query(v, i) != NULL)
                auth_dkim_verify_key_answer(v, i, st, &rec, &rl, rec ? 1 : 0);
        }
        auth_dkim_verify_free(v);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
    printf("%.1f us per message of %zu bytes with %zu signature(s) (%ld verifications)\n",
           us / (double)n, len, sigs, n);
}

static bool put_stdout(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    return fwrite(p, 1, n, stdout) == n;
}

static void json_field(const char *name, const char *value, bool last)
{
    printf("\"%s\": ", name);
    reply_json_string(value, strlen(value), put_stdout, NULL);
    printf(last ? "}" : ", ");
}

static int dkim_verify(int argc, char **argv)
{
    const char *file = NULL, *server = NULL;
    bool json = false;
    long repeat = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--resolver") == 0 && i + 1 < argc)
            server = argv[++i];
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc &&
                 (repeat = strtol(argv[++i], NULL, 10)) > 0 && repeat <= 10000000)
            continue;
        else if (file == NULL && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0))
            file = argv[i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (file == NULL) {
        usage(stderr);
        return 2;
    }
    size_t len = 0;
    char *msg = cli_read_message(file, true, &len);
    if (msg == NULL) {
        fprintf(stderr, "clearmta auth dkim-verify: cannot read %s\n", file);
        return 1;
    }
    struct check c;
    int rc = check_open(&c, server);
    if (rc == 0)
        rc = check_run(&c, NULL, NULL, NULL, msg, len, false);
    const struct auth_dkim_verify *v = deliver_authcheck_run_dkim(c.run);
    size_t n = rc == 0 ? auth_dkim_verify_count(v) : 0;
    if (rc == 0 && repeat > 0) {
        repeat_verify(msg, len, c.run, repeat);
        n = 0; /* the cost line only */
        json = false;
    }
    free(msg);
    if (json)
        printf("[");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct auth_dkim_sig_result *r = auth_dkim_verify_result(v, i);
        const char *result = auth_dkim_result_name(r->result);
        if (json) {
            printf("%s{", i ? ", " : "");
            json_field("domain", r->domain, false);
            json_field("selector", r->selector, false);
            json_field("algorithm", r->algorithm, false);
            json_field("result", result, false);
            json_field("reason", r->reason ? r->reason : "", true);
        } else {
            printf("%s d=%s s=%s a=%s (%s)\n", result, r->domain[0] ? r->domain : "-",
                   r->selector[0] ? r->selector : "-", r->algorithm[0] ? r->algorithm : "-",
                   r->reason ? r->reason : "");
        }
    }
    if (json)
        printf("]\n");
    check_close(&c);
    return rc;
}

/* ---- SPF ---- */

/* The options of spf and check: all of --ip, --helo, --mail-from; a FILE for check. */
struct opts {
    const char *ip, *helo, *from, *server, *file;
    bool json;
};

static bool parse_opts(int argc, char **argv, struct opts *o, bool want_file)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = strcmp(argv[i], "--ip") == 0          ? &o->ip
                            : strcmp(argv[i], "--helo") == 0      ? &o->helo
                            : strcmp(argv[i], "--mail-from") == 0 ? &o->from
                            : strcmp(argv[i], "--resolver") == 0  ? &o->server
                                                                  : NULL;
        if (strcmp(argv[i], "--json") == 0)
            o->json = true;
        else if (slot != NULL && v != NULL)
            *slot = argv[++i];
        else if (want_file && o->file == NULL && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0))
            o->file = argv[i];
        else
            return false;
    }
    return o->ip && o->helo && o->from && (o->file || !want_file);
}

static int spf(int argc, char **argv)
{
    struct opts o;
    if (!parse_opts(argc, argv, &o, false)) {
        usage(stderr);
        return 2;
    }
    struct check c;
    int rc = check_open(&c, o.server);
    if (rc == 0)
        rc = check_run(&c, o.ip, o.helo, o.from, NULL, 0, false);
    if (rc == 0) {
        const struct auth_spf *run = deliver_authcheck_run_spf(c.run);
        const char *result = auth_spf_result_name(auth_spf_result(run));
        const char *exp = auth_spf_explanation(run);
        if (o.json) {
            printf("{");
            json_field("result", result, false);
            json_field("domain", auth_spf_domain(run), false);
            json_field("explanation", exp, true);
            printf("\n");
        } else {
            printf("%s domain=%s (%s)%s%s\n", result, auth_spf_domain(run),
                   auth_spf_reason(run), exp[0] ? ": " : "", exp);
        }
    }
    check_close(&c);
    return rc;
}

/* ---- SPF + DKIM + DMARC ---- */

static int check(int argc, char **argv)
{
    struct opts o;
    if (!parse_opts(argc, argv, &o, true)) {
        usage(stderr);
        return 2;
    }
    size_t len = 0;
    char *msg = cli_read_message(o.file, true, &len);
    if (msg == NULL) {
        fprintf(stderr, "clearmta auth check: cannot read %s\n", o.file);
        return 1;
    }
    struct check c;
    int rc = check_open(&c, o.server);
    if (rc == 0)
        rc = check_run(&c, o.ip, o.helo, o.from, msg, len, true);
    free(msg);
    if (rc == 0) {
        char host[256] = "localhost", ar[4096];
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        deliver_authcheck_results(c.run, host, ar, sizeof ar);
        const char *spf_res = auth_spf_result_name(auth_spf_result(deliver_authcheck_run_spf(c.run)));
        const struct auth_dmarc *dm = deliver_authcheck_run_dmarc(c.run);
        const struct auth_dkim_verify *v = deliver_authcheck_run_dkim(c.run);
        const char *dmarc_res = auth_dmarc_result_name(auth_dmarc_result(dm));
        const char *policy = auth_dmarc_result(dm) == AUTH_DMARC_NONE
                                 ? ""
                                 : auth_dmarc_policy_name(auth_dmarc_policy(dm));
        if (o.json) {
            printf("{");
            json_field("spf", spf_res, false);
            printf("\"dkim\": [");
            for (size_t i = 0; i < auth_dkim_verify_count(v); i++) {
                const struct auth_dkim_sig_result *r = auth_dkim_verify_result(v, i);
                printf("%s{", i ? ", " : "");
                json_field("domain", r->domain, false);
                json_field("selector", r->selector, false);
                json_field("result", auth_dkim_result_name(r->result), true);
            }
            printf("], ");
            json_field("dmarc", dmarc_res, false);
            json_field("dmarc_policy", policy, false);
            json_field("authentication_results", ar, true);
            printf("\n");
        } else {
            printf("spf=%s dmarc=%s%s%s\nAuthentication-Results: %s\n", spf_res, dmarc_res,
                   policy[0] ? " policy=" : "", policy, ar);
        }
    }
    check_close(&c);
    return rc;
}

int cli_auth(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "dkim-verify") == 0)
        return dkim_verify(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "spf") == 0)
        return spf(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return check(argc - 1, argv + 1);
    usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
    return 2;
}
