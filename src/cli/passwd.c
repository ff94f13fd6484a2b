/* cli/passwd.c — `clearmta passwd USER [FILE]`: adds USER to the AUTH users file or changes
 * their password. The password comes from the terminal without echo (twice) or as one line on
 * standard input; the file is rewritten atomically (tmp, fsync, rename), mode 0600. */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "base/array.h"
#include "base/io.h"
#include "cli/cli.h"
#include "policy/config.h"
#include "policy/users.h"

/* The users file next to the default data_dir (DESIGN.md "Defaults"). */
#define DEFAULT_USERS_FILE "./var/clearmta/users"
#define PASS_CAP CRYPT_MAX_PASSPHRASE_SIZE

static void usage(FILE *out)
{
    fprintf(out, "usage: clearmta passwd USER [FILE]\n"
                 "Adds USER to the AUTH users file FILE (default %s) or changes their\n"
                 "password, keeping every other line. The password is read twice without echo\n"
                 "from a terminal, or as one line from standard input.\n",
            DEFAULT_USERS_FILE);
}

/* ---- reading the password ---- */

static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

/* Echo must come back even when the user gives up with ^C. */
static void restore_tty_and_die(int sig)
{
    if (tty_changed)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* One line from standard input through read(2), so no stdio buffer keeps a copy. The line
 * (without LF or CRLF) goes to buf; false with the reason in *why. */
static bool read_secret_line(char *buf, size_t cap, const char **why)
{
    size_t n = 0;
    bool too_long = false;
    for (;;) {
        char ch;
        ssize_t r = read(STDIN_FILENO, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || ch == '\n')
            break;
        if (n + 1 >= cap)
            too_long = true; /* keep reading: the rest of the line must not become a command */
        else
            buf[n++] = ch;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    *why = too_long ? "password too long (at most 511 bytes)"
         : n == 0   ? "empty password"
         : strlen(buf) != n ? "password contains a NUL byte"
                            : NULL;
    return *why == NULL;
}

static bool prompt_secret(const char *prompt, char *buf, size_t cap, const char **why)
{
    struct termios t = saved_tty;
    fputs(prompt, stderr);
    fflush(stderr);
    t.c_lflag &= (tcflag_t)~ECHO;
    t.c_lflag |= ECHONL;
    tty_changed = 1;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
    bool ok = read_secret_line(buf, cap, why);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    tty_changed = 0;
    return ok;
}

/* The new password into pass (PASS_CAP bytes); false after printing why not. */
static bool get_password(char *pass)
{
    const char *why = NULL;
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty) != 0) {
        if (read_secret_line(pass, PASS_CAP, &why))
            return true;
        fprintf(stderr, "clearmta passwd: %s\n", why);
        return false;
    }
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], restore_tty_and_die);
    char again[PASS_CAP];
    bool ok = prompt_secret("New password: ", pass, PASS_CAP, &why) &&
              prompt_secret("Repeat password: ", again, sizeof again, &why);
    if (ok && strcmp(pass, again) != 0) {
        why = "the passwords differ";
        ok = false;
    }
    explicit_bzero(again, sizeof again);
    if (!ok)
        fprintf(stderr, "clearmta passwd: %s\n", why);
    return ok;
}

/* yescrypt at libcrypt's default cost, or SHA-512-crypt where yescrypt is missing. */
static bool make_hash(const char *pass, char *out, size_t cap)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt) == NULL &&
        crypt_gensalt_rn("$6$", 0, NULL, 0, salt, sizeof salt) == NULL)
        return false;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (cd == NULL)
        return false;
    const char *h = crypt_rn(pass, salt, cd, sizeof *cd);
    bool ok = h != NULL && h[0] != '*' && strlen(h) < cap;
    if (ok)
        memcpy(out, h, strlen(h) + 1);
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return ok;
}

/* ---- the file ---- */

struct text {
    char *p;
    size_t len, cap;
};

static bool append(struct text *t, const char *s, size_t n)
{
    if (n > POLICY_CONFIG_FILE_MAX - t->len) {
        errno = EFBIG; /* the server would refuse to load it */
        return false;
    }
    if (base_array_reserve((void **)&t->p, &t->cap, t->len + n, 1, 4096) != BASE_OK) {
        errno = ENOMEM;
        return false;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    return true;
}

/* Reads the current file; a missing file is an empty one. */
static bool read_users(const char *path, struct text *t)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT;
    char buf[65536];
    bool ok;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ok = n == 0;
            break;
        }
        if (!append(t, buf, (size_t)n)) {
            ok = false;
            break;
        }
    }
    close(fd);
    return ok;
}

/* Does this line (len bytes, no LF) give a hash to user? Blank lines and comments do not. */
static bool is_user_line(const char *line, size_t len, const char *user)
{
    size_t i = 0, ulen = strlen(user);
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    return len - i > ulen && line[i + ulen] == ':' && strncasecmp(line + i, user, ulen) == 0;
}

/* The file with user's line replaced (its address list kept) or appended; later lines for the
 * same user are dropped, as the loader would refuse them. *added tells which happened. */
static bool rewrite(const struct text *old, const char *user, const char *hash, struct text *out,
                    bool *added)
{
    bool done = false;
    size_t pos = 0;
    unsigned line = 0;
    while (pos < old->len) {
        const char *s = old->p + pos, *nl = memchr(s, '\n', old->len - pos);
        size_t len = nl != NULL ? (size_t)(nl - s) : old->len - pos, full = len + (nl != NULL);
        line++;
        pos += full;
        if (!is_user_line(s, len, user)) {
            if (!append(out, s, full))
                return false;
            continue;
        }
        if (done) {
            fprintf(stderr, "clearmta passwd: dropped line %u, a second entry for %s\n", line,
                    user);
            continue;
        }
        /* Keep ":addresses" and the line's ending, replace name and hash. */
        const char *colon = memchr(s, ':', len);
        const char *rest = memchr(colon + 1, ':', len - (size_t)(colon + 1 - s));
        const char *end = len > 0 && s[len - 1] == '\r' ? s + len - 1 : s + len;
        const char *tail = rest != NULL ? rest : end;
        if (!append(out, user, strlen(user)) || !append(out, ":", 1) ||
            !append(out, hash, strlen(hash)) || !append(out, tail, (size_t)(s + full - tail)))
            return false;
        done = true;
    }
    *added = !done;
    if (done)
        return true;
    if (out->len > 0 && out->p[out->len - 1] != '\n' && !append(out, "\n", 1))
        return false;
    return append(out, user, strlen(user)) && append(out, ":", 1) &&
           append(out, hash, strlen(hash)) && append(out, "\n", 1);
}

struct warn_ctx {
    const char *path;
};

static void warn_problem(void *ctx, unsigned line, const char *message)
{
    const struct warn_ctx *w = ctx;
    fprintf(stderr, "clearmta passwd: warning: %s:%u: %s\n", w->path, line, message);
}

/* Creates the missing directories above path (mode 0700: they hold password hashes). */
static bool make_parents(const char *path)
{
    char dir[POLICY_PATH_CAP];
    size_t len = strlen(path);
    if (len >= sizeof dir)
        return false;
    memcpy(dir, path, len + 1);
    for (char *p = dir + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return false;
        *p = '/';
    }
    return true;
}

/* tmp → fsync → rename → fsync(dir): the file is either the old one or the new one. */
static bool replace_file(int dir_fd, const char *path, const struct text *t)
{
    char tmp[POLICY_PATH_CAP + 8];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return false;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return false;
    bool ok = fchmod(fd, 0600) == 0 && base_write_all(fd, t->p, t->len) == BASE_OK &&
              fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, path) == 0 && fsync(dir_fd) == 0;
    if (!ok)
        unlink(tmp);
    return ok;
}

/* The directory of path, opened and locked so two runs never lose each other's change. */
static int lock_dir(const char *path)
{
    char dir[POLICY_PATH_CAP];
    const char *slash = strrchr(path, '/');
    size_t len = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
    if (len >= sizeof dir)
        return -1;
    memcpy(dir, slash == NULL ? "." : path, len);
    dir[len] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0 && flock(fd, LOCK_EX) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int update_file(const char *path, const char *user, const char *hash)
{
    struct text old = {0}, out = {0};
    bool added = false;
    const char *step = "cannot create its directory";
    int dir_fd = -1, rc = 1;
    if (!make_parents(path))
        goto done;
    step = "cannot lock its directory";
    if ((dir_fd = lock_dir(path)) < 0)
        goto done;
    step = "cannot read it";
    if (!read_users(path, &old))
        goto done;
    step = "cannot build the new file";
    if (!rewrite(&old, user, hash, &out, &added))
        goto done;
    struct warn_ctx w = {path};
    struct policy_users *check = NULL;
    policy_users_load_buffer(out.p, out.len, warn_problem, &w, &check);
    policy_users_free(check);
    step = "cannot write it";
    if (!replace_file(dir_fd, path, &out))
        goto done;
    printf("clearmta passwd: %s %s in %s\n", added ? "added user" : "changed the password of",
           user, path);
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "clearmta passwd: %s: %s (%s)\n", path, step, strerror(errno));
    if (dir_fd >= 0)
        close(dir_fd); /* releases the lock */
    free(old.p);
    free(out.p);
    return rc;
}

int cli_passwd(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2 || argc > 3) {
        usage(stderr);
        return 2;
    }
    char user[POLICY_USER_NAME_MAX + 1];
    const char *path = argc == 3 ? argv[2] : DEFAULT_USERS_FILE;
    size_t ulen = strlen(argv[1]);
    if (!policy_users_valid_name(argv[1], ulen)) {
        fprintf(stderr, "clearmta passwd: '%s' is not a user name (1-%u letters, digits or "
                        ". _ - + @)\n", argv[1], POLICY_USER_NAME_MAX);
        return 2;
    }
    for (size_t i = 0; i <= ulen; i++) /* names compare without case; store them lower case */
        user[i] = (argv[1][i] >= 'A' && argv[1][i] <= 'Z') ? (char)(argv[1][i] - 'A' + 'a')
                                                          : argv[1][i];
    if (strlen(path) >= POLICY_PATH_CAP) {
        fprintf(stderr, "clearmta passwd: path too long\n");
        return 2;
    }
    char pass[PASS_CAP], hash[CRYPT_OUTPUT_SIZE];
    if (!get_password(pass)) {
        explicit_bzero(pass, sizeof pass);
        return 1;
    }
    bool hashed = make_hash(pass, hash, sizeof hash);
    explicit_bzero(pass, sizeof pass);
    if (!hashed) {
        fprintf(stderr, "clearmta passwd: cannot hash the password (libcrypt failed)\n");
        return 1;
    }
    return update_file(path, user, hash);
}
