/* policy/config_listen.c — the listen directive of clearmta.conf(5): kind, ADDRESS:PORT and the
 * AUTH/STARTTLS options of each listener; the console's http_name and http_local_users; and the
 * check that tls_cert and tls_key come together. RFC 6409 (submission), RFC 8314 (submissions). */
#include "policy/config_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* "ADDR:PORT" with ADDR an IPv4 address, "[IPv6]" or "*"; host gets the inet_ntop form. */
static bool parse_listen_addr(const char *text, struct policy_listener *l)
{
    char s[sizeof l->host + 16]; /* "[" host "]:" port; anything longer is not an address */
    size_t len = strlen(text);
    if (len >= sizeof s)
        return false;
    memcpy(s, text, len + 1);
    char *colon, *host = s;
    int af = AF_INET;
    if (s[0] == '[') {
        char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return false;
        *close = '\0';
        host = s + 1;
        colon = close + 1;
        af = AF_INET6;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return false;
        *colon = '\0';
    }
    uint64_t port;
    if (!policy_conf_number(colon + 1, false, &port) || port == 0 || port > 65535)
        return false;
    l->port = (unsigned short)port;
    if (af == AF_INET && strcmp(host, "*") == 0) {
        l->host[0] = '\0';
        return true;
    }
    unsigned char bin[16];
    return inet_pton(af, host, bin) == 1 && inet_ntop(af, bin, l->host, sizeof l->host) != NULL;
}

void policy_listen_kind_defaults(struct policy_listener *l)
{
    l->starttls = l->kind != POLICY_LISTEN_SUBMISSIONS;
    l->auth = l->kind != POLICY_LISTEN_MX;
    l->auth_plaintext = false;
    l->spf_check = POLICY_SPF_INHERIT;
    l->dmarc_check = POLICY_DMARC_INHERIT;
}

/* Applies one option word after the address; false (reported) when it is unknown or does not
 * fit the listener's kind. */
static bool listen_option(struct loader *ld, struct policy_listener *l, const char *opt)
{
    const char *kind = policy_listen_kind_name(l->kind);
    if (strcmp(opt, "no-auth") == 0) {
        l->auth = false;
    } else if (strcmp(opt, "no-starttls") == 0 && l->kind != POLICY_LISTEN_SUBMISSIONS) {
        l->starttls = false;
    } else if (strcmp(opt, "auth-plaintext") == 0 && l->kind == POLICY_LISTEN_SUBMISSION) {
        l->auth_plaintext = true;
    } else if (strncmp(opt, "spf_check=", 10) == 0 || strncmp(opt, "dmarc_check=", 12) == 0) {
        return policy_auth_check_option(ld, l, opt);
    } else if (strcmp(opt, "no-starttls") == 0 || strcmp(opt, "auth-plaintext") == 0) {
        policy_conf_problem(ld, "listen: %s does not apply to %s listeners (%s)", opt, kind,
                l->kind == POLICY_LISTEN_MX ? "they never offer AUTH"
                                            : "they speak TLS from the first byte");
        return false;
    } else {
        policy_conf_problem(ld,
                "listen: unknown option '%s' (auth-plaintext, no-auth, no-starttls, "
                "spf_check=…, dmarc_check=…)",
                policy_conf_show(opt).s);
        return false;
    }
    if (l->auth_plaintext && !l->auth) {
        policy_conf_problem(ld, "listen: auth-plaintext and no-auth contradict each other");
        return false;
    }
    return true;
}

/* The first listen line replaces the embedded default listeners, the console's too. */
static void first_listen(struct loader *ld)
{
    if (!ld->listen_seen) {
        ld->c->n_listeners = 0;
        ld->c->http.port = 0;
    }
    ld->listen_seen = true;
}

/* listen http ADDR:PORT: one console listener, no options. */
static void listen_http(struct loader *ld, const char *addr, struct cursor *cur)
{
    struct policy_listener l;
    if (!parse_listen_addr(addr, &l)) {
        policy_conf_problem(ld,
                "listen: '%s' is not ADDRESS:PORT (IPv4, [IPv6] or *, port 1-65535)",
                policy_conf_show(addr).s);
        return;
    }
    if (policy_conf_token(cur) != NULL) {
        policy_conf_problem(ld, "listen http takes no options");
        return;
    }
    bool seen = ld->listen_seen && ld->c->http.port != 0;
    first_listen(ld);
    if (seen) {
        policy_conf_problem(ld, "listen http: one console listener only");
        return;
    }
    for (size_t i = 0; i < ld->c->n_listeners; i++) {
        const struct policy_listener *o = &ld->c->listeners[i];
        if (o->port == l.port && strcmp(o->host, l.host) == 0) {
            policy_conf_problem(ld, "listen: address already used on line %u", ld->listen_line[i]);
            return;
        }
    }
    memcpy(ld->c->http.host, l.host, sizeof ld->c->http.host);
    ld->c->http.port = l.port;
}

void policy_listen_http_name(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    char *v = policy_conf_one_value(ld, d, cur);
    if (v == NULL)
        return;
    if (!policy_conf_hostname_valid(v) || strlen(v) >= sizeof ld->c->http.name) {
        policy_conf_problem(ld, "http_name '%s' is not a valid host name (letters, digits, "
                "'-', '.')", policy_conf_show(v).s);
        return;
    }
    memcpy(ld->c->http.name, v, strlen(v) + 1);
}

/* The uid of user name from the system's user database; false (reported) when there is none. */
static bool local_user_uid(struct loader *ld, const char *name, uid_t *uid)
{
    long want = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t cap = want > 0 && want < 65536 ? (size_t)want : 16384;
    char *buf = malloc(cap);
    struct passwd pw, *found = NULL;
    int err = buf ? getpwnam_r(name, &pw, buf, cap, &found) : ENOMEM;
    free(buf);
    if (found) {
        *uid = pw.pw_uid;
        return true;
    }
    if (err == 0)
        policy_conf_problem(ld, "http_local_users: no user '%s' on this system",
                policy_conf_show(name).s);
    else
        policy_conf_problem(ld, "http_local_users: cannot look up user '%s': %s",
                policy_conf_show(name).s, strerror(err));
    return false;
}

void policy_listen_http_local_users(struct loader *ld, const struct directive *d,
                                    struct cursor *cur)
{
    (void)d;
    struct policy_http *h = &ld->c->http;
    h->n_local_uids = 0;
    char *name = policy_conf_token(cur);
    if (name == NULL) {
        policy_conf_problem(ld, "http_local_users takes one or more user names");
        return;
    }
    for (; name != NULL; name = policy_conf_token(cur)) {
        uid_t uid;
        if (!policy_conf_user_name_valid(name)) {
            policy_conf_problem(ld, "http_local_users: '%s' is not a user name (at most %u "
                    "letters, digits, '_', '-', '.')", policy_conf_show(name).s,
                    POLICY_RUN_USER_CAP - 1);
        } else if (h->n_local_uids == POLICY_HTTP_LOCAL_USERS_MAX) {
            policy_conf_problem(ld, "http_local_users: more than %u users "
                    "(POLICY_HTTP_LOCAL_USERS_MAX)", POLICY_HTTP_LOCAL_USERS_MAX);
            return;
        } else if (local_user_uid(ld, name, &uid)) {
            h->local_uids[h->n_local_uids++] = uid;
        }
    }
}

void policy_listen_apply(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    (void)d;
    char *kind = policy_conf_token(cur), *addr = policy_conf_token(cur);
    struct policy_listener l;
    if (kind == NULL || addr == NULL) {
        policy_conf_problem(ld,
                "listen takes a kind (mx, submission, submissions), ADDRESS:PORT and "
                "options (auth-plaintext, no-auth, no-starttls, spf_check=…, dmarc_check=…)");
        return;
    }
    if (strcmp(kind, "http") == 0) {
        listen_http(ld, addr, cur);
        return;
    }
    if (strcmp(kind, "mx") == 0) {
        l.kind = POLICY_LISTEN_MX;
    } else if (strcmp(kind, "submission") == 0) {
        l.kind = POLICY_LISTEN_SUBMISSION;
    } else if (strcmp(kind, "submissions") == 0) {
        l.kind = POLICY_LISTEN_SUBMISSIONS;
    } else {
        policy_conf_problem(ld, "listen: unknown kind '%s' (mx, submission or submissions)",
                policy_conf_show(kind).s);
        return;
    }
    if (!parse_listen_addr(addr, &l)) {
        policy_conf_problem(ld,
                "listen: '%s' is not ADDRESS:PORT (IPv4, [IPv6] or *, port 1-65535)",
                policy_conf_show(addr).s);
        return;
    }
    policy_listen_kind_defaults(&l);
    for (char *opt = policy_conf_token(cur); opt != NULL; opt = policy_conf_token(cur))
        if (!listen_option(ld, &l, opt))
            return;
    first_listen(ld);
    for (size_t i = 0; i < ld->c->n_listeners; i++) {
        const struct policy_listener *o = &ld->c->listeners[i];
        if (o->port == l.port && strcmp(o->host, l.host) == 0) {
            policy_conf_problem(ld, "listen: address already used on line %u", ld->listen_line[i]);
            return;
        }
    }
    if (ld->c->n_listeners == POLICY_LISTENERS_MAX) {
        policy_conf_problem(ld, "listen: more than %u listeners (POLICY_LISTENERS_MAX)",
                POLICY_LISTENERS_MAX);
        return;
    }
    ld->listen_line[ld->c->n_listeners] = ld->line;
    ld->c->listeners[ld->c->n_listeners++] = l;
}

/* A certificate without its key (or the reverse) is half a setup: say so, do not guess. */
void policy_listen_finish_tls(struct loader *ld)
{
    /* By line, not value: a line with a bad value has been reported already. */
    bool cert = policy_conf_directive_line(ld, "tls_cert") != 0;
    bool key = policy_conf_directive_line(ld, "tls_key") != 0;
    if (cert == key)
        return;
    ld->line = ld->anchor = policy_conf_directive_line(ld, cert ? "tls_cert" : "tls_key");
    const char *set = cert ? "tls_cert" : "tls_key", *missing = cert ? "tls_key" : "tls_cert";
    policy_conf_problem(ld, "%s is set but %s is not (both or neither: without them a self-signed "
            "certificate is generated)", set, missing);
}

const char *policy_listen_kind_name(enum policy_listen_kind kind)
{
    switch (kind) {
    case POLICY_LISTEN_MX: return "mx";
    case POLICY_LISTEN_SUBMISSION: return "submission";
    case POLICY_LISTEN_SUBMISSIONS: return "submissions";
    }
    return "?";
}
