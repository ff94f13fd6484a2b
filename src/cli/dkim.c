/* cli/dkim.c — `clearmta dkim keygen`: a signing key for a domain (PEM, mode 0600) and the DNS
 * TXT record to publish; `clearmta dkim sign`: signs one message (tests, benchmarks).
 * RFC 6376 §3.6, RFC 8463. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/dkim_key.h"
#include "auth/dkim_sign.h"
#include "cli/cli.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: clearmta dkim keygen --domain D --selector S [--type rsa|ed25519] "
                 "--out KEYFILE\n"
                 "       clearmta dkim sign --domain D --selector S --key KEYFILE "
                 "[--headers a:b] [--repeat N] FILE|-\n");
}

/* Zone-file form: the record is longer than one 255-octet string for RSA, so it is printed as
 * several quoted strings, which DNS concatenates. */
static void print_record(const char *domain, const char *selector, const char *rec)
{
    printf("%s._domainkey.%s. IN TXT (", selector, domain);
    for (size_t i = 0, n = strlen(rec); i < n; i += 200)
        printf(" \"%.*s\"", (int)(n - i < 200 ? n - i : 200), rec + i);
    printf(" )\n");
}

static int keygen(const char *domain, const char *selector, const char *type, const char *out)
{
    enum auth_dkim_alg alg;
    if (strcmp(type, "rsa") == 0)
        alg = AUTH_DKIM_RSA_SHA256;
    else if (strcmp(type, "ed25519") == 0)
        alg = AUTH_DKIM_ED25519_SHA256;
    else {
        fprintf(stderr, "clearmta dkim keygen: --type is rsa or ed25519\n");
        return 2;
    }
    struct auth_dkim_key *k = NULL;
    enum auth_err err = auth_dkim_key_generate(alg, out, &k);
    if (err != AUTH_OK) {
        fprintf(stderr, "clearmta dkim keygen: %s: %s\n", out, auth_strerror(err));
        return 1;
    }
    char rec[1024];
    size_t n = auth_dkim_key_record(k, rec, sizeof rec);
    auth_dkim_key_free(k);
    if (n == 0) {
        fprintf(stderr, "clearmta dkim keygen: cannot encode the public key\n");
        return 1;
    }
    fprintf(stderr, "wrote %s (mode 0600); publish this TXT record, then add to the config:\n"
                    "  dkim_sign %s selector=%s key=%s\n",
            out, domain, selector, out);
    print_record(domain, selector, rec);
    return 0;
}

static int sign(const char *domain, const char *selector, const char *keyfile,
                const char *headers, long repeat, const char *file)
{
    struct auth_dkim_key *k = NULL;
    enum auth_err err = auth_dkim_key_load(keyfile, &k);
    if (err != AUTH_OK) {
        fprintf(stderr, "clearmta dkim sign: %s: %s\n", keyfile, auth_strerror(err));
        return 1;
    }
    size_t len = 0;
    char *msg = cli_read_message(file, false, &len);
    if (msg == NULL) {
        fprintf(stderr, "clearmta dkim sign: cannot read %s\n", file);
        auth_dkim_key_free(k);
        return 1;
    }
    struct auth_dkim_signer s = {.domain = domain, .selector = selector, .headers = headers,
                                 .key = k};
    char *hdr = NULL;
    size_t hlen = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < repeat; i++) {
        free(hdr);
        err = auth_dkim_sign(&s, msg, len, (int64_t)time(NULL), &hdr, &hlen);
        if (err != AUTH_OK)
            break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int rc = 0;
    if (err != AUTH_OK) {
        fprintf(stderr, "clearmta dkim sign: %s\n", auth_strerror(err));
        rc = 1;
    } else if (repeat > 1) {
        double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3);
        printf("%s: %.1f us per message of %zu bytes (%ld signatures)\n",
               auth_dkim_alg_name(auth_dkim_key_alg(k)), us / (double)repeat, len, repeat);
    } else {
        fwrite(hdr, 1, hlen, stdout);
        fwrite(msg, 1, len, stdout);
    }
    free(hdr);
    free(msg);
    auth_dkim_key_free(k);
    return rc;
}

int cli_dkim(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1], *domain = NULL, *selector = NULL, *type = "rsa", *out = NULL,
               *key = NULL, *headers = NULL, *file = NULL;
    long repeat = 1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = strcmp(a, "--domain") == 0     ? &domain
                            : strcmp(a, "--selector") == 0 ? &selector
                            : strcmp(a, "--type") == 0     ? &type
                            : strcmp(a, "--out") == 0      ? &out
                            : strcmp(a, "--key") == 0      ? &key
                            : strcmp(a, "--headers") == 0  ? &headers
                                                           : NULL;
        if (strcmp(a, "--repeat") == 0 && v != NULL) {
            repeat = strtol(v, NULL, 10);
            i++;
        } else if (slot != NULL && v != NULL) {
            *slot = v;
            i++;
        } else if (a[0] != '-' || strcmp(a, "-") == 0) {
            file = a;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (domain == NULL || selector == NULL || repeat < 1 || repeat > 10000000) {
        usage(stderr);
        return 2;
    }
    if (strcmp(cmd, "keygen") == 0 && out != NULL)
        return keygen(domain, selector, type, out);
    if (strcmp(cmd, "sign") == 0 && key != NULL && file != NULL)
        return sign(domain, selector, key, headers, repeat, file);
    usage(stderr);
    return 2;
}
