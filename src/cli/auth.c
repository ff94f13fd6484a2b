/* cli/auth.c — `clearmta auth dkim-verify FILE|-` (every DKIM signature of one message) and
 * `clearmta auth spf --ip --helo --mail-from` (SPF check_host), with --json and --resolver
 * HOST:PORT; DNS through the c-ares resolver on an event loop run until the answers are in.
 * RFC 6376 §6, RFC 8463, RFC 7208. */
#include <arpa/nameser.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/dkim_verify.h"
#include "auth/spf.h"
#include "cli/cli.h"
#include "deliver/resolver.h"
#include "reply/json.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: clearmta auth dkim-verify FILE|- [--json] [--resolver HOST:PORT]\n"
                 "       clearmta auth spf --ip IP --helo NAME --mail-from ADDR [--json] "
                 "[--resolver HOST:PORT]\n");
}

struct run {
    struct event_base *base;
    struct auth_dkim_verify *v;
    unsigned pending;
};

struct key_job {
    struct run *run;
    size_t index;
};

static enum auth_dns_status dns_status(enum deliver_dns_outcome o)
{
    switch (o) {
    case DELIVER_DNS_OK: return AUTH_DNS_OK;
    case DELIVER_DNS_NXDOMAIN: return AUTH_DNS_NXDOMAIN;
    case DELIVER_DNS_NO_HOST: return AUTH_DNS_NODATA;
    default: return AUTH_DNS_TEMPFAIL;
    }
}

static void on_key(void *ctx, const struct deliver_records *res)
{
    struct key_job *job = ctx;
    auth_dkim_verify_key_answer(job->run->v, job->index, dns_status(res->outcome), res->records,
                                res->lens, res->n);
    if (--job->run->pending == 0)
        event_base_loopbreak(job->run->base);
}

/* Looks up every key the signatures need, at once, and waits for the answers. c-ares doubles
 * the timeout on its second try: 3.3 s + 6.6 s, so an unanswered query gives up after ~10 s. */
static int look_up_keys(struct auth_dkim_verify *v, const char *server)
{
    size_t n = auth_dkim_verify_count(v);
    struct run run = {.base = event_base_new(), .v = v};
    struct key_job *jobs = calloc(n ? n : 1, sizeof *jobs);
    char err[256] = "out of memory";
    struct deliver_resolver *r =
        run.base && jobs ? deliver_resolver_new(run.base, server, 3300, err, sizeof err) : NULL;
    int rc = 0;
    if (r == NULL) {
        fprintf(stderr, "clearmta auth: %s\n", err);
        rc = 1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *q = auth_dkim_verify_key_query(v, i);
        if (q == NULL)
            continue;
        jobs[i] = (struct key_job){&run, i};
        run.pending++;
        if (deliver_resolver_lookup_records(r, q, ns_t_txt, on_key, &jobs[i], NULL) !=
            DELIVER_RESOLVER_OK) {
            run.pending--;
            auth_dkim_verify_key_answer(v, i, AUTH_DNS_NXDOMAIN, NULL, NULL, 0);
        }
    }
    if (run.pending > 0)
        event_base_dispatch(run.base);
out:
    deliver_resolver_free(r);
    if (run.base)
        event_base_free(run.base);
    free(jobs);
    return rc;
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
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--resolver") == 0 && i + 1 < argc)
            server = argv[++i];
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
    struct auth_dkim_verify *v = NULL;
    enum auth_err err = auth_dkim_verify_new(msg, len, (int64_t)time(NULL), &v);
    free(msg);
    if (err != AUTH_OK) {
        fprintf(stderr, "clearmta auth dkim-verify: %s\n", auth_strerror(err));
        return 1;
    }
    int rc = look_up_keys(v, server);
    size_t n = auth_dkim_verify_count(v);
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
    auth_dkim_verify_free(v);
    return rc;
}

/* ---- SPF ---- */

struct spf_run {
    struct event_base *base;
    struct deliver_resolver *r;
    struct auth_spf *spf;
    bool failed; /* the resolver refused a look-up for want of memory */
};

static void spf_step(struct spf_run *run);

static void on_spf_answer(void *ctx, const struct deliver_records *res)
{
    struct spf_run *run = ctx;
    const char *name = NULL;
    enum auth_dns_type type = AUTH_DNS_TXT;
    /* The name asked is the one the evaluation still needs: ask it again to know it. */
    if (auth_spf_run(run->spf, &name, &type) == AUTH_SPF_NEED)
        auth_spf_answer(run->spf, name, type, dns_status(res->outcome), res->records, res->lens,
                        res->n);
    spf_step(run);
}

/* Runs the evaluation; starts the look-up it needs, or ends the loop when it is done. */
static void spf_step(struct spf_run *run)
{
    const char *name = NULL;
    enum auth_dns_type type = AUTH_DNS_TXT;
    while (auth_spf_run(run->spf, &name, &type) == AUTH_SPF_NEED) {
        enum deliver_resolver_err e =
            deliver_resolver_lookup_records(run->r, name, (int)type, on_spf_answer, run, NULL);
        if (e == DELIVER_RESOLVER_OK)
            return;
        if (e == DELIVER_RESOLVER_ERR_NOMEM) {
            run->failed = true;
            break;
        }
        /* A name DNS cannot carry (a macro made it so): it does not exist. */
        auth_spf_answer(run->spf, name, type, AUTH_DNS_NXDOMAIN, NULL, NULL, 0);
    }
    event_base_loopbreak(run->base);
}

static int spf(int argc, char **argv)
{
    const char *ip = NULL, *helo = NULL, *from = NULL, *server = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--ip") == 0 && v)
            ip = argv[++i];
        else if (strcmp(argv[i], "--helo") == 0 && v)
            helo = argv[++i];
        else if (strcmp(argv[i], "--mail-from") == 0 && v)
            from = argv[++i];
        else if (strcmp(argv[i], "--resolver") == 0 && v)
            server = argv[++i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (ip == NULL || helo == NULL || from == NULL) {
        usage(stderr);
        return 2;
    }
    struct spf_run run = {.spf = auth_spf_new(ip, helo, from, NULL, (long long)time(NULL))};
    if (run.spf == NULL) {
        fprintf(stderr, "clearmta auth spf: '%s' is not an IP address\n", ip);
        return 2;
    }
    char err[256] = "out of memory";
    run.base = event_base_new();
    run.r = run.base ? deliver_resolver_new(run.base, server, 3300, err, sizeof err) : NULL;
    int rc = 0;
    if (run.r == NULL) {
        fprintf(stderr, "clearmta auth spf: %s\n", err);
        rc = 1;
    } else {
        spf_step(&run);
        event_base_dispatch(run.base);
        const char *name = NULL;
        enum auth_dns_type type;
        if (run.failed || auth_spf_run(run.spf, &name, &type) != AUTH_SPF_DONE) {
            fprintf(stderr, "clearmta auth spf: out of memory\n");
            rc = 1;
        }
    }
    if (rc == 0) {
        const char *result = auth_spf_result_name(auth_spf_result(run.spf));
        const char *exp = auth_spf_explanation(run.spf);
        if (json) {
            printf("{");
            json_field("result", result, false);
            json_field("domain", auth_spf_domain(run.spf), false);
            json_field("explanation", exp, true);
            printf("\n");
        } else {
            printf("%s domain=%s (%s)%s%s\n", result, auth_spf_domain(run.spf),
                   auth_spf_reason(run.spf), exp[0] ? ": " : "", exp);
        }
    }
    deliver_resolver_free(run.r);
    if (run.base)
        event_base_free(run.base);
    auth_spf_free(run.spf);
    return rc;
}

int cli_auth(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "dkim-verify") == 0)
        return dkim_verify(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "spf") == 0)
        return spf(argc - 1, argv + 1);
    usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
    return 2;
}
