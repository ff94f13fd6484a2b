/* cli/auth.c — `clearmta auth dkim-verify FILE|-` (every DKIM signature of one message),
 * `clearmta auth spf --ip --helo --mail-from` (SPF check_host) and `clearmta auth check`
 * (SPF, DKIM, DMARC and the Authentication-Results value), with --json and --resolver
 * HOST:PORT; DNS through the c-ares resolver on an event loop run until the answers are in.
 * RFC 6376 §6, RFC 8463, RFC 7208, RFC 7489, RFC 8601. */
#include <arpa/nameser.h>
#include <stdarg.h>
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
#include "deliver/resolver.h"
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

struct run {
    struct event_base *base;
    struct auth_dkim_verify *v;
    unsigned pending;
};

struct key_job {
    struct run *run;
    size_t index;
    enum auth_dns_status st; /* the answer, kept for --repeat */
    char *record;
    size_t record_len;
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
    job->st = dns_status(res->outcome);
    if (res->n > 0 && (job->record = malloc(res->lens[0] + 1)) != NULL) {
        memcpy(job->record, res->records[0], res->lens[0]);
        job->record_len = res->lens[0];
    }
    auth_dkim_verify_key_answer(job->run->v, job->index, job->st, res->records, res->lens,
                                res->n);
    if (--job->run->pending == 0)
        event_base_loopbreak(job->run->base);
}

/* Looks up every key the signatures need, at once, and waits for the answers. c-ares doubles
 * the timeout on its second try: 3.3 s + 6.6 s, so an unanswered query gives up after ~10 s.
 * keep (may be NULL) receives the answers, one job per signature, for the caller to free. */
static int look_up_keys(struct auth_dkim_verify *v, const char *server, struct key_job **keep)
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
        jobs[i] = (struct key_job){.run = &run, .index = i};
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
    if (keep != NULL && jobs != NULL) {
        *keep = jobs;
        return rc;
    }
    for (size_t i = 0; jobs && i < n; i++)
        free(jobs[i].record);
    free(jobs);
    return rc;
}

/* --repeat: the cost of verifying msg, its key answers given from memory (no DNS). */
static void repeat_verify(const char *msg, size_t len, const struct key_job *keys, long n)
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
            const char *rec = keys[i].record;
            size_t rl = keys[i].record_len;
            if (auth_dkim_verify_key_query(v, i) != NULL)
                auth_dkim_verify_key_answer(v, i, keys[i].st, &rec, &rl, rec ? 1 : 0);
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
    struct auth_dkim_verify *v = NULL;
    enum auth_err err = auth_dkim_verify_new(msg, len, (int64_t)time(NULL), &v);
    if (err != AUTH_OK) {
        free(msg);
        fprintf(stderr, "clearmta auth dkim-verify: %s\n", auth_strerror(err));
        return 1;
    }
    struct key_job *keys = NULL;
    int rc = look_up_keys(v, server, &keys);
    size_t n = auth_dkim_verify_count(v);
    if (rc == 0 && repeat > 0 && keys != NULL) {
        repeat_verify(msg, len, keys, repeat);
        n = 0; /* the cost line only */
        json = false;
    }
    for (size_t i = 0; keys && i < auth_dkim_verify_count(v); i++)
        free(keys[i].record);
    free(keys);
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
    auth_dkim_verify_free(v);
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

/* Evaluates spf to the end with DNS from server; 0, or 1 with the reason said. */
static int run_spf(struct auth_spf *spf, const char *server)
{
    char err[256] = "out of memory";
    struct spf_run run = {.spf = spf, .base = event_base_new()};
    run.r = run.base ? deliver_resolver_new(run.base, server, 3300, err, sizeof err) : NULL;
    int rc = 0;
    if (run.r == NULL) {
        fprintf(stderr, "clearmta auth: %s\n", err);
        rc = 1;
    } else {
        spf_step(&run);
        event_base_dispatch(run.base);
        const char *name = NULL;
        enum auth_dns_type type;
        if (run.failed || auth_spf_run(run.spf, &name, &type) != AUTH_SPF_DONE) {
            fprintf(stderr, "clearmta auth: out of memory\n");
            rc = 1;
        }
    }
    deliver_resolver_free(run.r);
    if (run.base)
        event_base_free(run.base);
    return rc;
}

static int spf(int argc, char **argv)
{
    struct opts o;
    if (!parse_opts(argc, argv, &o, false)) {
        usage(stderr);
        return 2;
    }
    const char *ip = o.ip, *helo = o.helo, *from = o.from, *server = o.server;
    bool json = o.json;
    struct {
        struct auth_spf *spf;
    } run = {.spf = auth_spf_new(ip, helo, from, NULL, (long long)time(NULL))};
    if (run.spf == NULL) {
        fprintf(stderr, "clearmta auth spf: '%s' is not an IP address\n", ip);
        return 2;
    }
    int rc = run_spf(run.spf, server);
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
    auth_spf_free(run.spf);
    return rc;
}

/* ---- SPF + DKIM + DMARC ---- */

struct dmarc_run {
    struct event_base *base;
    struct deliver_resolver *r;
    struct auth_dmarc *d;
};

static void on_dmarc_answer(void *ctx, const struct deliver_records *res)
{
    struct dmarc_run *run = ctx;
    const char *name = NULL;
    if (auth_dmarc_run(run->d, &name) == AUTH_DMARC_NEED)
        auth_dmarc_answer(run->d, name, dns_status(res->outcome), res->records, res->lens,
                          res->n);
    const char *next = NULL;
    while (auth_dmarc_run(run->d, &next) == AUTH_DMARC_NEED) {
        if (deliver_resolver_lookup_records(run->r, next, ns_t_txt, on_dmarc_answer, run,
                                            NULL) == DELIVER_RESOLVER_OK)
            return;
        auth_dmarc_answer(run->d, next, AUTH_DNS_NXDOMAIN, NULL, NULL, 0);
    }
    event_base_loopbreak(run->base);
}

static int run_dmarc(struct auth_dmarc *d, const char *server)
{
    char err[256] = "out of memory";
    struct dmarc_run run = {.base = event_base_new(), .d = d};
    run.r = run.base ? deliver_resolver_new(run.base, server, 3300, err, sizeof err) : NULL;
    if (run.r == NULL) {
        fprintf(stderr, "clearmta auth: %s\n", err);
        if (run.base)
            event_base_free(run.base);
        return 1;
    }
    const char *name = NULL;
    bool waiting = false;
    while (!waiting && auth_dmarc_run(d, &name) == AUTH_DMARC_NEED) {
        waiting = deliver_resolver_lookup_records(run.r, name, ns_t_txt, on_dmarc_answer, &run,
                                                  NULL) == DELIVER_RESOLVER_OK;
        if (!waiting)
            auth_dmarc_answer(d, name, AUTH_DNS_NXDOMAIN, NULL, NULL, 0);
    }
    if (waiting)
        event_base_dispatch(run.base);
    deliver_resolver_free(run.r);
    event_base_free(run.base);
    return 0;
}

/* Appends to the Authentication-Results value; the parts are ours or checked domains. */
__attribute__((format(printf, 3, 4))) static void ar_add(char *ar, size_t cap,
                                                           const char *fmt, ...)
{
    size_t n = strlen(ar);
    va_list ap;
    va_start(ap, fmt);
    if (n < cap)
        vsnprintf(ar + n, cap - n, fmt, ap);
    va_end(ap);
}

static int check(int argc, char **argv)
{
    struct opts o;
    if (!parse_opts(argc, argv, &o, true)) {
        usage(stderr);
        return 2;
    }
    const char *ip = o.ip, *helo = o.helo, *from = o.from, *server = o.server, *file = o.file;
    bool json = o.json;
    struct auth_spf *spf = auth_spf_new(ip, helo, from, NULL, (long long)time(NULL));
    if (spf == NULL) {
        fprintf(stderr, "clearmta auth check: '%s' is not an IP address\n", ip);
        return 2;
    }
    size_t len = 0;
    char *msg = cli_read_message(file, true, &len);
    struct auth_dkim_verify *v = NULL;
    if (msg == NULL || auth_dkim_verify_new(msg, len, (int64_t)time(NULL), &v) != AUTH_OK) {
        fprintf(stderr, "clearmta auth check: cannot read %s\n", file);
        free(msg);
        auth_spf_free(spf);
        return 1;
    }
    char from_domain[256] = "";
    auth_dkim_from_domain(msg, len, from_domain, sizeof from_domain);
    free(msg);
    auth_dmarc_psl_load();
    int rc = run_spf(spf, server);
    if (rc == 0)
        rc = look_up_keys(v, server, NULL);
    size_t n = auth_dkim_verify_count(v);
    struct auth_dmarc_dkim *dk = calloc(n ? n : 1, sizeof *dk);
    struct auth_dmarc *dm = NULL;
    if (rc == 0 && dk != NULL) {
        for (size_t i = 0; i < n; i++) {
            const struct auth_dkim_sig_result *r = auth_dkim_verify_result(v, i);
            dk[i] = (struct auth_dmarc_dkim){r->domain, r->result == AUTH_DKIM_PASS};
        }
        dm = auth_dmarc_new(from_domain, auth_spf_domain(spf),
                            auth_spf_result(spf) == AUTH_SPF_PASS, dk, n);
        rc = dm ? run_dmarc(dm, server) : 1;
    } else if (dk == NULL) {
        rc = 1;
    }
    if (rc == 0) {
        char host[256] = "localhost", ar[4096];
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        const char *spf_res = auth_spf_result_name(auth_spf_result(spf));
        const char *dmarc_res = auth_dmarc_result_name(auth_dmarc_result(dm));
        /* RFC 8601 §2.7: the method results; smtp.helo when there was no MAIL FROM. */
        snprintf(ar, sizeof ar, "%s", host);
        ar_add(ar, sizeof ar, "; spf=%s %s=%s", spf_res, from[0] ? "smtp.mailfrom" : "smtp.helo",
               auth_spf_domain(spf));
        for (size_t i = 0; i < n; i++) {
            const struct auth_dkim_sig_result *r = auth_dkim_verify_result(v, i);
            ar_add(ar, sizeof ar, "; dkim=%s header.d=%s header.s=%s",
                   auth_dkim_result_name(r->result), r->domain[0] ? r->domain : "unknown",
                   r->selector[0] ? r->selector : "unknown");
        }
        if (n == 0)
            ar_add(ar, sizeof ar, "; dkim=none");
        ar_add(ar, sizeof ar, "; dmarc=%s header.from=%s", dmarc_res,
               from_domain[0] ? from_domain : "unknown");
        const char *policy = auth_dmarc_result(dm) == AUTH_DMARC_NONE
                                 ? ""
                                 : auth_dmarc_policy_name(auth_dmarc_policy(dm));
        if (json) {
            printf("{");
            json_field("spf", spf_res, false);
            printf("\"dkim\": [");
            for (size_t i = 0; i < n; i++) {
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
    auth_dmarc_free(dm);
    free(dk);
    auth_dkim_verify_free(v);
    auth_spf_free(spf);
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
