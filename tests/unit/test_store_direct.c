/* tests/unit/test_store_direct.c — write once for local mail: an all-local message is in new/
 * of every recipient's Maildir when its commit reports STORE_OK (hard links, byte-exact, size in
 * the name), with no queue file and nothing in tmp/; the queue path when a Maildir is missing or
 * a recipient asks for a success report; failures leave nothing; startup removes our tmp/
 * leftovers and only ours. */
#include "unit.h"
#include "tmpdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/fault.h"
#include "store/maildir.h"
#include "store/queue.h"

struct fx {
    char dir[64];
    char queue_dir[128];
    char maildir[128];
    struct store_queue *q;
};

static const char BODY[] = "From: a@example.test\r\nSubject: once\r\n\r\nwritten once\r\n";
static const char FILE_BYTES[] = "Return-Path: <s@example.org>\r\n"
                                 "From: a@example.test\r\nSubject: once\r\n\r\nwritten once\r\n";

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    memcpy(f->dir, "/tmp/clearmta-direct-XXXXXX", sizeof "/tmp/clearmta-direct-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->queue_dir, sizeof f->queue_dir, "%s/queue", f->dir);
    snprintf(f->maildir, sizeof f->maildir, "%s/mail", f->dir);
    store_fault_set(NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_fault_set(NULL);
    store_queue_close(f->q);
    unit_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static void open_queue_mode(struct fx *f, enum store_sync_mode mode)
{
    char err[256];
    struct store_opts o = {.queue_dir = f->queue_dir, .maildir_root = f->maildir,
                           .hostname = "mx.example.test", .deliver_local = true,
                           .write_once = true, .sync_mode = mode, .retry_seconds = 1};
    enum store_err rc = store_queue_open(&o, &f->q, err, sizeof err);
    if (rc != STORE_OK)
        print_error("open: %s\n", err);
    assert_int_equal(rc, STORE_OK);
}

/* <maildir>/<user>/{tmp,new,cur}, as a first delivery would have made them. */
static void make_maildir(struct fx *f, const char *user)
{
    char p[256];
    assert_true(mkdir(f->maildir, 0700) == 0 || errno == EEXIST);
    snprintf(p, sizeof p, "%s/%s", f->maildir, user);
    assert_int_equal(mkdir(p, 0700), 0);
    for (const char *const *sub = (const char *const[]){"tmp", "new", "cur", NULL}; *sub; sub++) {
        snprintf(p, sizeof p, "%s/%s/%s", f->maildir, user, *sub);
        assert_int_equal(mkdir(p, 0700), 0);
    }
}

struct result {
    int calls;
    enum store_err err;
};

static void on_commit(void *ctx, enum store_err err, const char *id)
{
    (void)id;
    struct result *r = ctx;
    r->calls++;
    r->err = err;
}

/* Commits one message to the users (local mailboxes; NULL: a remote recipient), into their
 * Maildir++ folder (NULL: the inbox), and returns what the commit reported. */
static enum store_err submit_to(struct fx *f, const char *const *users, size_t n,
                                unsigned notify, const char *folder)
{
    struct store_rcpt rcpts[4];
    char addr[4][64];
    for (size_t i = 0; i < n; i++) {
        snprintf(addr[i], sizeof addr[i], "%s@%s", users[i] != NULL ? users[i] : "far",
                 users[i] != NULL ? "example.test" : "remote.example");
        rcpts[i] = (struct store_rcpt){.address = addr[i], .local_user = users[i],
                                       .notify = notify};
    }
    struct store_envelope env = {.sender = "s@example.org", .rcpts = rcpts, .n_rcpts = n,
                                 .arrival = (int64_t)time(NULL), .folder = folder};
    struct store_msg *m;
    enum store_err err = store_msg_begin(f->q, &env, &m);
    if (err != STORE_OK)
        return err;
    assert_int_equal(store_msg_write(m, BODY, sizeof BODY - 1), STORE_OK);
    struct result r = {0};
    store_msg_commit(m, on_commit, &r);
    struct pollfd p = {.fd = store_queue_event_fd(f->q), .events = POLLIN};
    for (int i = 0; r.calls == 0; i++) {
        assert_true(i < 100);
        assert_true(poll(&p, 1, 5000) >= 0);
        store_queue_process(f->q);
    }
    return r.err;
}

static enum store_err submit(struct fx *f, const char *const *users, size_t n, unsigned notify)
{
    return submit_to(f, users, n, notify, NULL);
}

/* Whether a file of the queue's pool/ holds bytes: a message's, left behind. */
static bool pool_holds_data(struct fx *f)
{
    char p[256];
    snprintf(p, sizeof p, "%s/pool", f->queue_dir);
    DIR *d = opendir(p);
    bool found = false;
    for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;) {
        struct stat st;
        found = found || (de->d_name[0] != '.' && fstatat(dirfd(d), de->d_name, &st, 0) == 0 &&
                          st.st_size > 0);
    }
    if (d != NULL)
        closedir(d);
    return found;
}

/* Regular files in <dir>/<sub> (sub under the maildir root, or the queue's "queue"); the name
 * of the last one into name when given. */
static int count_files(const char *dir, const char *sub, char *name, size_t cap)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    DIR *d = opendir(p);
    if (d == NULL)
        return 0;
    int n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.')
            continue;
        n++;
        if (name != NULL)
            snprintf(name, cap, "%s", de->d_name);
    }
    closedir(d);
    return n;
}

/* Until the pool thread made its first files: the message then takes one. */
/* Waits until the pool thread has handed over an empty file (its file in pool/ exists a moment
 * before the queue can take it). */
static void wait_pool(struct fx *f)
{
    struct store_stats s = {0};
    for (int i = 0; i < 3000; i++) {
        store_queue_stats(f->q, &s);
        if (s.pool_ready > 0)
            return;
        usleep(10000);
    }
    fail_msg("the pool thread made no file in 30 s");
}

static void assert_file_bytes(const char *path)
{
    char buf[512];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    assert_int_equal(n, (ssize_t)(sizeof FILE_BYTES - 1));
    assert_memory_equal(buf, FILE_BYTES, sizeof FILE_BYTES - 1);
}

static void written_once_into_new(struct fx *f, enum store_sync_mode mode)
{
    make_maildir(f, "alice");
    make_maildir(f, "bob");
    open_queue_mode(f, mode);
    assert_int_equal(submit(f, (const char *[]){"alice", "bob"}, 2, 0), STORE_OK);
    /* Published before the commit reported: no waiting for a runner. */
    char name_a[256], name_b[256], p[512];
    assert_int_equal(count_files(f->maildir, "alice/new", name_a, sizeof name_a), 1);
    assert_int_equal(count_files(f->maildir, "bob/new", name_b, sizeof name_b), 1);
    assert_string_equal(name_a, name_b);
    char size[32];
    snprintf(size, sizeof size, ",S=%zu", sizeof FILE_BYTES - 1);
    assert_non_null(strstr(name_a, size));
    assert_int_equal(count_files(f->maildir, "alice/tmp", NULL, 0), 0);
    assert_int_equal(count_files(f->maildir, "bob/tmp", NULL, 0), 0);
    assert_int_equal(count_files(f->queue_dir, "queue", NULL, 0), 0);
    snprintf(p, sizeof p, "%s/alice/new/%s", f->maildir, name_a);
    assert_file_bytes(p);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_nlink, 2); /* one file, hard-linked for bob */
    struct store_stats s;
    store_queue_stats(f->q, &s);
    assert_int_equal(s.direct, 1);
    assert_int_equal(s.delivered, 2);
}

static void test_written_once_syncfs(void **state) { written_once_into_new(*state, STORE_SYNC_SYNCFS); }

static void test_written_once_fdatasync(void **state)
{
    written_once_into_new(*state, STORE_SYNC_FDATASYNC);
}

/* Waits until the local runner delivered one recipient, and checks none went the direct way. */
static void assert_delivered_by_the_runner(struct fx *f)
{
    struct store_stats s;
    for (int i = 0; i < 500; i++) {
        store_queue_stats(f->q, &s);
        if (s.delivered >= 1)
            break;
        usleep(10000);
    }
    assert_int_equal(s.direct, 0);
    assert_int_equal(s.delivered, 1);
}

/* A success report needs the queue (its runner sends it): such a message is queued, and
 * still arrives. */
static void test_queue_path_for_a_success_report(void **state)
{
    struct fx *f = *state;
    open_queue_mode(f, STORE_SYNC_SYNCFS);
    make_maildir(f, "dave");
    assert_int_equal(submit(f, (const char *[]){"dave"}, 1, STORE_NOTIFY_SUCCESS), STORE_OK);
    assert_delivered_by_the_runner(f);
    assert_int_equal(count_files(f->maildir, "dave/new", NULL, 0), 1);
}

/* A quarantined message (DMARC) goes straight into each mailbox's .Junk folder, created with
 * the mailbox when missing; nothing reaches the inboxes. */
static void test_written_once_into_a_folder(void **state)
{
    struct fx *f = *state;
    make_maildir(f, "alice");
    open_queue_mode(f, STORE_SYNC_SYNCFS);
    wait_pool(f);
    assert_int_equal(submit_to(f, (const char *[]){"alice", "gina"}, 2, 0, ".Junk"), STORE_OK);
    struct store_stats s;
    store_queue_stats(f->q, &s);
    assert_int_equal(s.direct, 1);
    assert_int_equal(count_files(f->maildir, "alice/.Junk/new", NULL, 0), 1);
    assert_int_equal(count_files(f->maildir, "gina/.Junk/new", NULL, 0), 1);
    assert_int_equal(count_files(f->maildir, "alice/new", NULL, 0), 0);
    assert_int_equal(count_files(f->queue_dir, "queue", NULL, 0), 0);
}

/* Local and remote recipients: the queue file keeps the remote one for the delivery agent,
 * the local runner delivers the local one from it. */
static void test_mixed_recipients_take_the_queue(void **state)
{
    struct fx *f = *state;
    make_maildir(f, "alice");
    open_queue_mode(f, STORE_SYNC_SYNCFS);
    assert_int_equal(submit(f, (const char *[]){"alice", NULL}, 2, 0), STORE_OK);
    assert_delivered_by_the_runner(f);
    assert_int_equal(count_files(f->maildir, "alice/new", NULL, 0), 1);
    assert_int_equal(count_files(f->queue_dir, "queue", NULL, 0), 1); /* the remote part */
}

/* Pool files filled: the message is written into one (no inode made on the caller's thread),
 * which the commit moves into the Maildir it creates for a first delivery. */
static void test_pool_file_into_a_new_maildir(void **state)
{
    struct fx *f = *state;
    open_queue_mode(f, STORE_SYNC_SYNCFS);
    wait_pool(f);
    assert_int_equal(submit(f, (const char *[]){"erin", "frank"}, 2, 0), STORE_OK);
    struct store_stats s;
    store_queue_stats(f->q, &s);
    assert_int_equal(s.direct, 1);
    assert_int_equal(s.pool_misses, 0);
    char name[256], p[512];
    assert_int_equal(count_files(f->maildir, "erin/new", name, sizeof name), 1);
    assert_int_equal(count_files(f->maildir, "frank/new", NULL, 0), 1);
    snprintf(p, sizeof p, "%s/erin/new/%s", f->maildir, name);
    assert_file_bytes(p);
    assert_int_equal(count_files(f->queue_dir, "queue", NULL, 0), 0);
}

/* A failure at any step of the commit leaves nothing in tmp/ or new/ of any recipient, nor
 * in the pool file the message was written into. */
static void check_failure_leaves_nothing(struct fx *f, const char *spec)
{
    make_maildir(f, "alice");
    make_maildir(f, "bob");
    open_queue_mode(f, STORE_SYNC_SYNCFS);
    wait_pool(f);
    assert_int_equal(store_fault_set(spec), 0);
    assert_int_not_equal(submit(f, (const char *[]){"alice", "bob"}, 2, 0), STORE_OK);
    store_fault_set(NULL);
    const char *subs[] = {"alice/tmp", "alice/new", "bob/tmp", "bob/new"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        assert_int_equal(count_files(f->maildir, subs[i], NULL, 0), 0);
    assert_int_equal(count_files(f->queue_dir, "queue", NULL, 0), 0);
    assert_false(pool_holds_data(f));
}

/* The first recipient's file goes from the pool straight into new/: that move fails. */
static void test_move_failure(void **state) { check_failure_leaves_nothing(*state, "rename=EIO"); }

static void test_link_failure(void **state) { check_failure_leaves_nothing(*state, "link=EIO"); }
static void test_data_sync_failure(void **state)
{
    check_failure_leaves_nothing(*state, "sync=EIO@1");
}
/* The second recipient's rename from tmp/ into new/, with the first one's file in new/. */
static void test_rename_failure(void **state)
{
    check_failure_leaves_nothing(*state, "maildir_rename=EIO@1");
}
static void test_new_sync_failure(void **state)
{
    check_failure_leaves_nothing(*state, "sync=EIO@2");
}
static void test_write_failure(void **state)
{
    check_failure_leaves_nothing(*state, "write=ENOSPC");
}

static void plant(struct fx *f, const char *user, const char *name, time_t age)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s/tmp/%s", f->maildir, user, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    struct timespec t[2] = {{.tv_sec = time(NULL) - age}, {.tv_sec = time(NULL) - age}};
    assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
}

static bool exists(struct fx *f, const char *user, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s/tmp/%s", f->maildir, user, name);
    return access(p, F_OK) == 0;
}

/* Startup removes our leftovers of this host, and of any host after 36 hours; never another
 * program's tmp/ file, nor one of another host that may still be writing. */
static void test_startup_removes_only_our_leftovers(void **state)
{
    struct fx *f = *state;
    char p[256];
    make_maildir(f, "alice");
    snprintf(p, sizeof p, "%s/alice/.Junk", f->maildir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/alice/.Junk/tmp", f->maildir);
    assert_int_equal(mkdir(p, 0700), 0);
    plant(f, "alice", "clearmta-1.M1P1Q1.mx.example.test", 60);
    plant(f, "alice", "clearmta-1.M1P1Q2.mx.example.test,S=10", 60);
    plant(f, "alice/.Junk", "clearmta-1.M1P1Q3.mx.example.test", 60);
    plant(f, "alice", "clearmta-1.M1P1Q4.other.example", 60);
    plant(f, "alice", "clearmta-1.M1P1Q5.other.example", 37 * 3600);
    plant(f, "alice", "1.M1P1Q6.mx.example.test", 37 * 3600); /* another MDA's */
    plant(f, "alice", "clearmta-1.M1P1Q7.mx.example.test", -30); /* written after our start */
    open_queue_mode(f, STORE_SYNC_SYNCFS);
    assert_false(exists(f, "alice", "clearmta-1.M1P1Q1.mx.example.test"));
    assert_false(exists(f, "alice", "clearmta-1.M1P1Q2.mx.example.test,S=10"));
    assert_false(exists(f, "alice/.Junk", "clearmta-1.M1P1Q3.mx.example.test"));
    assert_true(exists(f, "alice", "clearmta-1.M1P1Q4.other.example"));
    assert_false(exists(f, "alice", "clearmta-1.M1P1Q5.other.example"));
    assert_true(exists(f, "alice", "1.M1P1Q6.mx.example.test"));
    assert_true(exists(f, "alice", "clearmta-1.M1P1Q7.mx.example.test"));
}

static void test_abort_removes_the_file(void **state)
{
    struct fx *f = *state;
    make_maildir(f, "alice");
    open_queue_mode(f, STORE_SYNC_SYNCFS);
    struct store_rcpt r = {.address = "alice@example.test", .local_user = "alice"};
    struct store_envelope env = {.sender = "", .rcpts = &r, .n_rcpts = 1};
    struct store_msg *m;
    assert_int_equal(store_msg_begin(f->q, &env, &m), STORE_OK);
    assert_int_equal(store_msg_write(m, BODY, sizeof BODY - 1), STORE_OK);
    store_msg_abort(m);
    assert_int_equal(count_files(f->maildir, "alice/tmp", NULL, 0), 0);
    assert_false(pool_holds_data(f));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_written_once_syncfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_written_once_fdatasync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_path_for_a_success_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_file_into_a_new_maildir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_written_once_into_a_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixed_recipients_take_the_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_sync_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_sync_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_startup_removes_only_our_leftovers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_abort_removes_the_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
