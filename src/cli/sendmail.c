/* cli/sendmail.c — `sendmail` and `mailq` for local programs (cron, PHP mail(), mutt, git
 * send-email): the message goes durably into the maildrop, whether or not the server runs, and
 * the server is told to pick it up. Options as sendmail(8); exit codes from sysexits.h. */
#include <errno.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "cli/cli.h"
#include "net/control.h"
#include "net/control_client.h"
#include "policy/config.h"
#include "server/server.h"
#include "smtp/server_session.h"
#include "smtp/submit.h"
#include "store/maildrop.h"

/* Where an installed clearmta keeps its configuration, read when no -C is given. */
#define DEFAULT_CONFIG "/etc/clearmta/clearmta.conf"
#define POKE_TIMEOUT_MS 2000u

enum mode { MODE_DELIVER, MODE_SMTP, MODE_PRINT, MODE_FLUSH };

struct opts {
    enum mode mode;
    const char *config, *from, *full_name;
    bool read_headers, ignore_dots, verbose;
    char **rcpts; /* arguments after the options */
    size_t n_rcpts;
};

struct rcpt_list {
    char **v;
    size_t n, cap;
    bool overflow;
};

static void add_rcpt(struct rcpt_list *l, const char *addr, size_t len)
{
    if (l->n == LIMIT_RECIPIENTS_MAX || len > LIMIT_PATH) {
        l->overflow = true;
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->overflow = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    char *s = strndup(addr, len);
    if (!s) {
        l->overflow = true;
        return;
    }
    l->v[l->n++] = s;
}

static void on_header_rcpt(void *ctx, const char *addr, size_t len)
{
    add_rcpt(ctx, addr, len);
}

static void free_rcpts(struct rcpt_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static const struct {
    char letter;
    size_t offset;
} value_opts[] = {{'C', offsetof(struct opts, config)},
                  {'f', offsetof(struct opts, from)},
                  {'r', offsetof(struct opts, from)}, /* the old name of -f */
                  {'F', offsetof(struct opts, full_name)}},
  flag_opts[] = {{'t', offsetof(struct opts, read_headers)},
                 {'i', offsetof(struct opts, ignore_dots)},
                 {'v', offsetof(struct opts, verbose)}};

/* Options as sendmail(8) has them: a value attached (-fADDR) or as the next argument; options
 * this sendmail has no use for are ignored, as other sendmail programs ignore them. */
static int parse(int argc, char **argv, struct opts *o)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        char letter = a[1];
        const char *value = NULL;
        if (strchr("CfFrBNORLXhpV", letter) != NULL) { /* options that take a value */
            value = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
            if (!value) {
                fprintf(stderr, "sendmail: option -%c needs a value\n", letter);
                return EX_USAGE;
            }
        }
        for (size_t k = 0; k < sizeof value_opts / sizeof value_opts[0]; k++)
            if (value_opts[k].letter == letter)
                *(const char **)((char *)o + value_opts[k].offset) = value;
        for (size_t k = 0; k < sizeof flag_opts / sizeof flag_opts[0]; k++)
            if (flag_opts[k].letter == letter)
                *(bool *)((char *)o + flag_opts[k].offset) = true;
        switch (letter) {
        case 'q':
            o->mode = MODE_FLUSH;
            break;
        case 'o':
            if (strcmp(a, "-oi") == 0)
                o->ignore_dots = true;
            break;
        case 'b':
            if (strcmp(a, "-bm") == 0)
                o->mode = MODE_DELIVER;
            else if (strcmp(a, "-bs") == 0)
                o->mode = MODE_SMTP;
            else if (strcmp(a, "-bp") == 0)
                o->mode = MODE_PRINT;
            else {
                fprintf(stderr, "sendmail: %s is not supported\n", a);
                return EX_USAGE;
            }
            break;
        default:
            break; /* -B, -N, -O, -R, -V, -X, -L, -h, -p, -e…, -m, -n, -U, … */
        }
    }
    o->rcpts = argv + i;
    o->n_rcpts = (size_t)(argc - i);
    return EX_OK;
}

static int load_config(const char *path, struct policy_config *cfg)
{
    struct policy_problems problems;
    memset(&problems, 0, sizeof problems);
    if (!path && access(DEFAULT_CONFIG, F_OK) == 0)
        path = DEFAULT_CONFIG;
    /* A client load: an ordinary user may not read the AUTH users_file or relayhost
     * passwords, and sendmail has no use for them. */
    size_t bad = path ? policy_config_load_client(path, cfg, &problems)
                      : (policy_config_defaults(cfg) ? 0 : 1);
    if (bad == 0)
        return EX_OK;
    for (size_t i = 0; i < problems.count; i++)
        fprintf(stderr, "%s:%u: %s\n", problems.items[i].file, problems.items[i].line,
                problems.items[i].message);
    fprintf(stderr, "sendmail: %zu configuration problem(s)\n", bad);
    return EX_CONFIG;
}

static int control_path(const struct policy_config *cfg, char *path, size_t cap)
{
    int n = snprintf(path, cap, "%s/%s", cfg->queue_dir, NET_CONTROL_SOCKET_NAME);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Tells a running server to pick up now; when none runs, it does at start. */
static enum cli_poke poke(const struct policy_config *cfg)
{
    char path[POLICY_PATH_CAP + 32], err[256];
    char *argv[] = {"pickup", NULL};
    if (control_path(cfg, path, sizeof path) < 0)
        return CLI_POKE_NO_SERVER;
    int st = net_control_call(path, 1, argv, -1, -1, POKE_TIMEOUT_MS, err, sizeof err);
    return st == 0 ? CLI_POKE_DONE
                   : st == NET_CONTROL_DENIED ? CLI_POKE_DENIED : CLI_POKE_NO_SERVER;
}

/* The control socket is root's and the server's user's: said the same way everywhere. */
static void say_denied(const char *who, const char *what)
{
    fprintf(stderr, "%s: %s needs root or the server's user: the control socket is theirs "
            "alone\n", who, what);
}

/* A bare local name ("root", as cron writes it) is a local user: qualified with the host name
 * when that is a local domain knowing the user, else with the first local domain that knows
 * it, else with the host name (and then refused as unknown or sent on like any address). */
static char *qualify(const struct policy_config *cfg, const char *name)
{
    char box[POLICY_MAILBOX_CAP], out[LIMIT_PATH + 2];
    if (strchr(name, '@') || strcasecmp(name, "postmaster") == 0)
        return strdup(name);
    for (size_t i = 0; i <= cfg->n_domains; i++) {
        const char *domain = i == 0 ? cfg->hostname : cfg->domains[i - 1].name;
        int n = snprintf(out, sizeof out, "%s@%s", name, domain);
        if (n > 0 && (size_t)n < sizeof out &&
            server_pickup_classify(cfg, out, box, sizeof box) == POLICY_RCPT_LOCAL)
            return strdup(out);
    }
    snprintf(out, sizeof out, "%s@%s", name, cfg->hostname);
    return strdup(out);
}

/* Every recipient must be one the server would take: a local user it knows, or elsewhere. */
static int check_rcpts(const struct policy_config *cfg, struct rcpt_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        char *q = qualify(cfg, l->v[i]);
        if (!q)
            return EX_OSERR;
        free(l->v[i]);
        l->v[i] = q;
        char box[POLICY_MAILBOX_CAP];
        if (server_pickup_classify(cfg, q, box, sizeof box) == POLICY_RCPT_UNKNOWN_USER) {
            fprintf(stderr, "sendmail: <%s>: no such user or not a valid address\n", q);
            return EX_NOUSER;
        }
    }
    return EX_OK;
}

static char *read_all(FILE *in, size_t cap, size_t *len, bool *too_big)
{
    size_t size = 0, room = 65536;
    char *buf = malloc(room);
    *too_big = false;
    while (buf) {
        if (size == room) {
            if (room > cap) {
                *too_big = true;
                break;
            }
            char *grown = realloc(buf, room * 2);
            if (!grown)
                break;
            buf = grown;
            room *= 2;
        }
        size_t r = fread(buf + size, 1, room - size, in);
        size += r;
        if (r == 0) {
            *len = size;
            return buf;
        }
    }
    free(buf);
    return NULL;
}

/* The From:, Date: and Message-ID: a message lacks, as sendmail(8) adds them. */
static size_t added_headers(char *out, size_t cap, const struct opts *o, const char *sender,
                            const struct smtp_submit_header_info *info, const char *hostname)
{
    size_t n = 0;
    if (!info->has_from) {
        if (o->full_name && o->full_name[strcspn(o->full_name, "\r\n\"\\")] == '\0')
            n += (size_t)snprintf(out + n, cap - n, "From: %s <%s>\r\n", o->full_name, sender);
        else
            n += (size_t)snprintf(out + n, cap - n, "From: <%s>\r\n", sender);
    }
    if (!info->has_date && n < cap) {
        char date[64];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
        n += (size_t)snprintf(out + n, cap - n, "Date: %s\r\n", date);
    }
    if (!info->has_message_id && n < cap) {
        unsigned char r[12];
        if (getrandom(r, sizeof r, 0) == (ssize_t)sizeof r)
            n += (size_t)snprintf(out + n, cap - n,
                                  "Message-ID: <%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x"
                                  "%02x@%s>\r\n", r[0], r[1], r[2], r[3], r[4], r[5], r[6],
                                  r[7], r[8], r[9], r[10], r[11], hostname);
    }
    return n < cap ? n : 0;
}

static int drop(const struct policy_config *cfg, const struct opts *o, const char *sender,
                struct rcpt_list *l, const char *msg, size_t len)
{
    char name[STORE_MAILDROP_NAME_CAP];
    enum cli_poke how = CLI_POKE_NO_SERVER;
    int rc = cli_sendmail_drop(cfg, sender, l->v, l->n, msg, len, name, sizeof name, &how);
    if (rc != EX_OK || !o->verbose)
        return rc;
    if (how == CLI_POKE_DONE)
        fprintf(stderr, "sendmail: queued as maildrop/%s; the server picks it up now\n", name);
    else if (how == CLI_POKE_DENIED)
        fprintf(stderr, "sendmail: queued as maildrop/%s; the control socket is for root and "
                "the server's user, so the server picks it up from the maildrop within %d "
                "s\n", name, SERVER_PICKUP_INTERVAL_S);
    else
        fprintf(stderr, "sendmail: queued as maildrop/%s; the server is not running: it picks "
                "it up when it starts\n", name);
    return rc;
}

/* The envelope sender: -f, else the invoking user at the host name. "" is <>. */
static int sender_of(const struct policy_config *cfg, const struct opts *o, char *out,
                     size_t cap)
{
    if (o->from) {
        const char *f = o->from;
        size_t n = strlen(f);
        if (n >= 2 && f[0] == '<' && f[n - 1] == '>') {
            f++;
            n -= 2;
        }
        if (n >= cap || (n > 0 && !memchr(f, '@', n))) {
            fprintf(stderr, "sendmail: -f %s: not an address\n", o->from);
            return EX_USAGE;
        }
        memcpy(out, f, n);
        out[n] = '\0';
        return EX_OK;
    }
    struct passwd *pw = getpwuid(getuid());
    const char *user = pw ? pw->pw_name : "nobody";
    size_t u = strlen(user), h = strlen(cfg->hostname);
    if (u + 1 + h >= cap) {
        fprintf(stderr, "sendmail: %s@%s is too long for an address; use -f\n", user,
                cfg->hostname);
        return EX_USAGE;
    }
    memcpy(out, user, u);
    out[u] = '@';
    memcpy(out + u + 1, cfg->hostname, h + 1);
    return EX_OK;
}

static int deliver(const struct policy_config *cfg, const struct opts *o)
{
    char sender[LIMIT_PATH + 1];
    int rc = sender_of(cfg, o, sender, sizeof sender);
    if (rc != EX_OK)
        return rc;
    size_t raw_len = 0, max = (size_t)cfg->max_message_size;
    bool too_big, nul;
    char *raw = read_all(stdin, 2 * max + 2, &raw_len, &too_big);
    if (!raw) {
        fprintf(stderr, "sendmail: %s\n", too_big ? "message too large" : "cannot read input");
        return too_big ? EX_DATAERR : EX_IOERR;
    }
    char *norm = malloc(2 * raw_len + 2), *msg = malloc(2 * raw_len + 2 + 1024);
    struct rcpt_list l = {0};
    rc = EX_OSERR;
    if (!norm || !msg)
        goto out;
    size_t n = smtp_submit_normalize(raw, raw_len, o->ignore_dots, norm, &nul);
    rc = EX_DATAERR;
    if (nul) {
        fprintf(stderr, "sendmail: the message holds NUL bytes\n");
        goto out;
    }
    for (size_t i = 0; i < o->n_rcpts; i++)
        add_rcpt(&l, o->rcpts[i], strlen(o->rcpts[i]));
    struct smtp_submit_header_info info;
    smtp_submit_headers(norm, n, NULL, NULL, msg, &info); /* what is there, first */
    size_t head = added_headers(msg, 1024, o, sender, &info, cfg->hostname);
    n = head + smtp_submit_headers(norm, n, o->read_headers ? on_header_rcpt : NULL, &l,
                                   msg + head, &info);
    if (n > max) {
        fprintf(stderr, "sendmail: message too large (%zu bytes; at most %zu)\n", n, max);
        goto out;
    }
    if (l.overflow) {
        fprintf(stderr, "sendmail: too many or too long recipients\n");
        goto out;
    }
    rc = EX_USAGE;
    if (l.n == 0) {
        fprintf(stderr, "sendmail: no recipients (name them, or use -t)\n");
        goto out;
    }
    rc = check_rcpts(cfg, &l);
    if (rc == EX_OK)
        rc = drop(cfg, o, sender, &l, msg, n);
out:
    free_rcpts(&l);
    free(raw);
    free(norm);
    free(msg);
    return rc;
}

/* mailq: the running server's queue; without one, what waits in the maildrop. */
static int print_queue(const struct policy_config *cfg)
{
    char path[POLICY_PATH_CAP + 32], err[256];
    char *argv[] = {"queue", "list", NULL};
    fflush(stdout);
    int st = control_path(cfg, path, sizeof path) < 0
                 ? -1
                 : net_control_call(path, 2, argv, STDOUT_FILENO, STDERR_FILENO, 60000, err,
                                    sizeof err);
    if (st >= 0)
        return EX_OK;
    if (st == NET_CONTROL_DENIED) { /* the queue holds every user's addresses */
        say_denied("mailq", "listing the queue");
        return EX_NOPERM;
    }
    printf("mailq: the mail server is not running; messages waiting for it to start:\n");
    /* The pickup's own bound: a file any local user left costs no more memory than a message. */
    size_t max_bytes = (size_t)cfg->max_message_size + STORE_MAILDROP_ENVELOPE_MAX;
    int dir = store_maildrop_open_dir(cfg->queue_dir);
    int list = dir >= 0 ? dup(dir) : -1;
    DIR *d = list >= 0 ? fdopendir(list) : NULL;
    size_t count = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        struct store_maildrop_msg m;
        if (!store_maildrop_is_name(de->d_name) ||
            store_maildrop_read(dir, de->d_name, max_bytes, &m, NULL) != STORE_OK)
            continue;
        printf("%s  %zu bytes  from <", de->d_name, m.body_len);
        cli_print_outside("", m.sender, strlen(m.sender), ">\n");
        for (size_t i = 0; i < m.n_rcpts; i++)
            cli_print_outside("    to <", m.rcpts[i], strlen(m.rcpts[i]), ">\n");
        count++;
        store_maildrop_msg_free(&m);
    }
    if (d)
        closedir(d);
    else if (list >= 0)
        close(list);
    if (dir >= 0)
        close(dir);
    printf("%zu message(s) in the maildrop\n", count);
    return EX_OK;
}

static int flush_queue(const struct policy_config *cfg)
{
    char path[POLICY_PATH_CAP + 32], err[256];
    char *argv[] = {"queue", "flush", NULL};
    poke(cfg);
    int st = control_path(cfg, path, sizeof path) < 0
                 ? -1
                 : net_control_call(path, 2, argv, STDOUT_FILENO, STDERR_FILENO, 60000, err,
                                    sizeof err);
    if (st == NET_CONTROL_DENIED) {
        say_denied("sendmail", "-q (flushing the queue)");
        return EX_NOPERM;
    }
    if (st < 0) {
        fprintf(stderr, "sendmail: the mail server is not running: %s\n", err);
        return EX_UNAVAILABLE;
    }
    return st == 0 ? EX_OK : EX_SOFTWARE;
}

/* mailq is sendmail -bp under another name. */
static int run(int argc, char **argv, bool mailq)
{
    struct opts o = {0};
    int rc = parse(argc, argv, &o);
    if (rc != EX_OK)
        return rc;
    if (mailq)
        o.mode = MODE_PRINT;
    struct policy_config cfg;
    rc = load_config(o.config, &cfg);
    if (rc == EX_OK) {
        switch (o.mode) {
        case MODE_DELIVER:
            rc = deliver(&cfg, &o);
            break;
        case MODE_SMTP:
            rc = cli_sendmail_smtp(&cfg, o.verbose);
            break;
        case MODE_PRINT:
            rc = print_queue(&cfg);
            break;
        case MODE_FLUSH:
            rc = flush_queue(&cfg);
            break;
        }
    }
    policy_config_free(&cfg);
    return rc;
}

int cli_sendmail(int argc, char **argv)
{
    return run(argc, argv, false);
}

int cli_mailq(int argc, char **argv)
{
    return run(argc, argv, true);
}

int cli_sendmail_drop(const struct policy_config *cfg, const char *sender, char **rcpts,
                      size_t n, const char *msg, size_t len, char *name, size_t namecap,
                      enum cli_poke *how)
{
    char err[512];
    enum store_err e = store_maildrop_write(cfg->queue_dir, sender, (const char *const *)rcpts,
                                            n, msg, len, name, namecap, err, sizeof err);
    if (e != STORE_OK) {
        fprintf(stderr, "sendmail: %s\n", err);
        return e == STORE_ERR_INVALID ? EX_DATAERR : EX_TEMPFAIL;
    }
    *how = poke(cfg);
    return EX_OK;
}
