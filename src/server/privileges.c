/* server/privileges.c — started as root, the server runs as `user` (default clearmta): the
 * account is looked up, its data directories checked (with the exact chown to run) or made,
 * and after the listeners and keys are open every id is dropped for good. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/log.h"
#include "server/server.h"
#include "store/fault.h"

/* Looks name up; false, logged, when it is unknown (the message names it). */
static bool lookup(const char *name, struct server_privileges *p)
{
    char buf[4096];
    struct passwd pw, *res = NULL;
    int e = getpwnam_r(name, &pw, buf, sizeof buf, &res);
    if (res == NULL) {
        net_log("fatal: user %s %s; create it (adduser --system --group %s) or name another "
                "with the user directive", name, e ? strerror(e) : "does not exist", name);
        return false;
    }
    p->uid = pw.pw_uid;
    p->gid = pw.pw_gid;
    snprintf(p->name, sizeof p->name, "%s", name);
    struct group gr, *gres = NULL;
    if (getgrgid_r(p->gid, &gr, buf, sizeof buf, &gres) == 0 && gres != NULL)
        snprintf(p->group, sizeof p->group, "%s", gr.gr_name);
    else
        snprintf(p->group, sizeof p->group, "%u", (unsigned)p->gid);
    return true;
}

static bool owned(const struct server_privileges *p, const char *path, const struct stat *st)
{
    if (st->st_uid == p->uid)
        return true;
    net_log("fatal: %s belongs to uid %u, not to %s (uid %u); run: chown -R %s:%s %s", path,
            (unsigned)st->st_uid, p->name, (unsigned)p->uid, p->name, p->group, path);
    return false;
}

/* A directory, never through a symbolic link at its last component: the user it is checked
 * for may own its parent, and root must not be led elsewhere. */
static int open_dir(const char *dir)
{
    return open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Makes dir for the user: made by path, then given away through a descriptor, and only when
 * the directory opened is root's (the one just made, not one swapped in). */
static bool make_dir_for(const struct server_privileges *p, const char *dir)
{
    int e = store_io_mkdirs(dir, 0750), fd = -1;
    struct stat st;
    if (e == 0 && (fd = open_dir(dir)) < 0)
        e = errno;
    if (e == 0 && fstat(fd, &st) != 0)
        e = errno;
    if (e == 0 && st.st_uid != geteuid())
        e = EPERM;
    if (e == 0 && fchown(fd, p->uid, p->gid) != 0)
        e = errno;
    if (fd >= 0)
        close(fd);
    if (e != 0)
        net_log("fatal: cannot create %s for %s: %s", dir, p->name, strerror(e));
    return e == 0;
}

/* dir and the entries directly in it must belong to the user: a root-owned queue/ or tls/ left
 * by a run as root would make the server fail later, after it dropped the means to fix it.
 * Everything is looked at through the directory's descriptor, never by path. */
static bool check_dir(const struct server_privileges *p, const char *dir)
{
    struct stat st;
    int fd = open_dir(dir);
    if (fd < 0 && errno == ENOENT)
        return make_dir_for(p, dir);
    if (fd < 0) {
        int e = errno; /* a link opened O_DIRECTORY|O_NOFOLLOW fails ENOTDIR or ELOOP */
        bool link = lstat(dir, &st) == 0 && S_ISLNK(st.st_mode);
        net_log("fatal: %s: %s", dir,
                link ? "a symbolic link (name the directory itself)" : strerror(e));
        return false;
    }
    DIR *d = NULL;
    if (fstat(fd, &st) != 0 || !owned(p, dir, &st) || !(d = fdopendir(fd))) {
        close(fd);
        return false;
    }
    bool ok = true;
    struct dirent *de;
    while (ok && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* gone: the store reports what it cannot use */
        if (st.st_uid != p->uid) {
            net_log("fatal: %s/%s belongs to uid %u, not to %s (uid %u); run: chown -R %s:%s %s",
                    dir, de->d_name, (unsigned)st.st_uid, p->name, (unsigned)p->uid, p->name,
                    p->group, dir);
            ok = false;
        }
    }
    closedir(d);
    return ok;
}

/* Runs as whoever started the server: the data directory only has to exist. */
static bool stay(const struct policy_config *cfg)
{
    int e = store_io_mkdirs(cfg->data_dir, 0700);
    if (e != 0)
        net_log("fatal: cannot create %s: %s", cfg->data_dir, strerror(e));
    return e == 0;
}

bool server_privileges_prepare(const struct policy_config *cfg, bool embedded,
                               struct server_privileges *p)
{
    memset(p, 0, sizeof *p);
    if (geteuid() != 0)
        return stay(cfg); /* not root: runs as whoever started it */
    const char *name = cfg->run_user[0] ? cfg->run_user : POLICY_DEFAULT_RUN_USER;
    if (embedded && cfg->run_user[0] == '\0' && getpwnam(name) == NULL) {
        /* `make run` on a machine where clearmta is not installed: a trial on loopback with
         * the embedded defaults, not a service. */
        net_log("warning: running as root on the embedded defaults: no user %s to run as "
                "(make install creates it; a config file names it with the user directive)",
                name);
        return stay(cfg);
    }
    if (!lookup(name, p))
        return false;
    if (p->uid == 0) {
        net_log("warning: user %s is root; the server keeps every privilege", name);
        return stay(cfg);
    }
    p->drop = true;
    return check_dir(p, cfg->data_dir) && check_dir(p, cfg->queue_dir) &&
           check_dir(p, cfg->maildir_root);
}

struct net_tls_owner server_privileges_tls_owner(const struct server_privileges *p)
{
    if (!p->drop)
        return (struct net_tls_owner){.uid = geteuid(), .gid = getegid(), .give = false};
    return (struct net_tls_owner){.uid = p->uid, .gid = p->gid, .give = true};
}

uid_t server_privileges_log_owner(const struct policy_config *cfg)
{
    if (geteuid() != 0)
        return geteuid();
    char buf[4096];
    struct passwd pw, *res = NULL;
    const char *name = cfg->run_user[0] ? cfg->run_user : POLICY_DEFAULT_RUN_USER;
    return getpwnam_r(name, &pw, buf, sizeof buf, &res) == 0 && res ? pw.pw_uid : 0;
}

bool server_privileges_drop(const struct server_privileges *p)
{
    if (!p->drop)
        return true;
    /* Groups first, while still allowed; setres*id sets real, effective and saved ids (and the
     * file-system id with them) in every thread, so nothing can take root back. */
    if (setgroups(0, NULL) != 0 || setresgid(p->gid, p->gid, p->gid) != 0 ||
        setresuid(p->uid, p->uid, p->uid) != 0) {
        net_log("fatal: cannot become %s: %s", p->name, strerror(errno));
        return false;
    }
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != p->uid ||
        eu != p->uid || su != p->uid || rg != p->gid || eg != p->gid || sg != p->gid ||
        setuid(0) == 0) {
        net_log("fatal: the ids did not change to %s", p->name);
        return false;
    }
    net_log("running as %s (uid %u, gid %u)", p->name, (unsigned)p->uid, (unsigned)p->gid);
    return true;
}
