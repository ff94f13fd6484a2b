/* tests/unit/test_store_maildir.c — local delivery into Maildirs: byte-exact files with
 * Return-Path, names per the Maildir convention, several recipients, remote recipients kept in
 * the queue, failures deferred and retried, log lines; a Maildir++ folder made on first use. */
#include "unit.h"
#include "tmpdir.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/fault.h"
#include "store/maildir.h"
#include "store/queue.h"
#include "store/queue_file.h"

struct fx {
    char dir[64];
    char queue_dir[128];
    char maildir[128];
    struct store_queue *q;
    pthread_mutex_t mu;
    char log[16384];
    size_t log_len;
};

static const char BODY[] = "From: alice@example.test\r\nSubject: hi\r\n\r\nbody\r\n.\r\nend\r\n";

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    memcpy(f->dir, "/tmp/clearmta-maildir-XXXXXX", sizeof "/tmp/clearmta-maildir-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->queue_dir, sizeof f->queue_dir, "%s/queue", f->dir);
    snprintf(f->maildir, sizeof f->maildir, "%s/mail", f->dir);
    pthread_mutex_init(&f->mu, NULL);
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
    pthread_mutex_destroy(&f->mu);
    free(f);
    return 0;
}

static void log_line(void *ctx, const char *line)
{
    struct fx *f = ctx;
    pthread_mutex_lock(&f->mu);
    size_t n = strlen(line);
    if (n + 2 <= sizeof f->log - f->log_len) {
        memcpy(f->log + f->log_len, line, n);
        f->log_len += n;
        f->log[f->log_len++] = '\n';
        f->log[f->log_len] = '\0';
    }
    pthread_mutex_unlock(&f->mu);
}

static bool log_has(struct fx *f, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB | REG_NEWLINE), 0);
    pthread_mutex_lock(&f->mu);
    bool found = regexec(&re, f->log, 0, NULL, 0) == 0;
    pthread_mutex_unlock(&f->mu);
    regfree(&re);
    return found;
}

static void open_queue_mode(struct fx *f, enum store_sync_mode mode)
{
    char err[256];
    struct store_opts o = {.queue_dir = f->queue_dir, .maildir_root = f->maildir,
                           .hostname = "mx/a:b", .deliver_local = true, .log = log_line,
                           .log_ctx = f, .sync_mode = mode, .retry_seconds = 1};
    enum store_err rc = store_queue_open(&o, &f->q, err, sizeof err);
    if (rc != STORE_OK)
        print_error("open: %s\n", err);
    assert_int_equal(rc, STORE_OK);
}

static void open_queue(struct fx *f) { open_queue_mode(f, STORE_SYNC_SYNCFS); }

struct result {
    int calls;
    enum store_err err;
    char id[STORE_ID_LEN + 1];
};

static void on_commit(void *ctx, enum store_err err, const char *id)
{
    struct result *r = ctx;
    r->calls++;
    r->err = err;
    memcpy(r->id, id, STORE_ID_LEN + 1);
}

/* Commits one message and waits for its callback; returns its id in r. */
static void submit(struct fx *f, const char *sender, const struct store_rcpt *rcpts, size_t n,
                   const char *body, size_t len, struct result *r)
{
    struct store_envelope env = {.sender = sender, .rcpts = rcpts, .n_rcpts = n,
                                 .arrival = (int64_t)time(NULL)};
    struct store_msg *m;
    assert_int_equal(store_msg_begin(f->q, &env, &m), STORE_OK);
    assert_int_equal(store_msg_write(m, body, len), STORE_OK);
    store_msg_commit(m, on_commit, r);
    struct pollfd p = {.fd = store_queue_event_fd(f->q), .events = POLLIN};
    for (int i = 0; r->calls == 0; i++) {
        assert_true(i < 100);
        assert_true(poll(&p, 1, 5000) >= 0);
        store_queue_process(f->q);
    }
    assert_int_equal(r->err, STORE_OK);
}

static struct store_stats wait_stats(struct fx *f, uint64_t delivered, uint64_t deferred,
                                     uint64_t batches)
{
    struct store_stats st;
    for (int i = 0; i < 5000; i++) {
        store_queue_stats(f->q, &st);
        if (st.delivered >= delivered && st.deferred >= deferred &&
            st.deliver_batches >= batches)
            return st;
        usleep(2000);
    }
    fail_msg("delivered %llu deferred %llu batches %llu", (unsigned long long)st.delivered,
             (unsigned long long)st.deferred, (unsigned long long)st.deliver_batches);
    return st;
}

static size_t count_dir(struct fx *f, const char *user, const char *sub)
{
    char path[512];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/%s/%s", f->maildir, user, sub);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static size_t count_queue(struct fx *f)
{
    char path[256];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/queue", f->queue_dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The one file in <user>/new: its name into name (if not NULL), its bytes returned. */
static char *only_new_file(struct fx *f, const char *user, char *name, size_t cap, size_t *len)
{
    char path[1024];
    assert_int_equal(count_dir(f, user, "new"), 1);
    snprintf(path, sizeof path, "%s/%s/new", f->maildir, user);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL && de->d_name[0] == '.')
        ;
    assert_non_null(de);
    snprintf(path, sizeof path, "%s/%s/new/%s", f->maildir, user, de->d_name);
    if (name != NULL)
        snprintf(name, cap, "%s", de->d_name);
    closedir(d);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, fp);
    fclose(fp);
    return buf;
}

static void assert_delivered(struct fx *f, const char *user, const char *return_path,
                             const char *body, size_t body_len)
{
    size_t len;
    char name[1200];
    char *data = only_new_file(f, user, name, sizeof name, &len);
    size_t rp = strlen(return_path);
    assert_int_equal(len, rp + body_len);
    assert_memory_equal(data, return_path, rp);
    assert_memory_equal(data + rp, body, body_len);
    free(data);
    /* <sec>.M<usec>P<pid>Q<n>.<host>,S=<size>; the host "mx/a:b" escaped. */
    regex_t re;
    assert_int_equal(regcomp(&re, "^[0-9]+\\.M[0-9]{6}P[0-9]+Q[0-9]+\\.mx\\\\057a\\\\072b,S=[0-9]+$",
                             REG_EXTENDED | REG_NOSUB), 0);
    if (regexec(&re, name, 0, NULL, 0) != 0)
        fail_msg("bad maildir name %s", name);
    regfree(&re);
    char size[32];
    snprintf(size, sizeof size, ",S=%zu", len);
    assert_non_null(strstr(name, size));
    assert_int_equal(count_dir(f, user, "tmp"), 0);
}

static void test_deliver_byte_exact(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    struct store_rcpt rcpt = {.address = "bob@example.test", .local_user = "bob"};
    open_queue(f);
    submit(f, "alice@example.test", &rcpt, 1, BODY, sizeof BODY - 1, &r);
    struct store_stats st = wait_stats(f, 1, 0, 1);
    for (int i = 0; i < 1000 && st.removed < 1; i++, usleep(2000))
        store_queue_stats(f->q, &st);
    assert_int_equal(st.removed, 1);
    assert_delivered(f, "bob", "Return-Path: <alice@example.test>\r\n", BODY, sizeof BODY - 1);
    assert_int_equal(count_queue(f), 0);
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/bob/cur", f->maildir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    char pattern[256];
    snprintf(pattern, sizeof pattern,
             "^%s: to=<bob@example\\.test>, relay=local, delay=[0-9]+\\.[0-9]{2}, dsn=2\\.0\\.0, "
             "status=sent \\(delivered to maildir\\)$", r.id);
    assert_true(log_has(f, pattern));
}

static void test_multiple_recipients(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    struct store_rcpt rcpts[] = {
        {.address = "bob@example.test", .local_user = "bob"},
        {.address = "carol@example.test", .local_user = "carol"},
        {.address = "postmaster@example.test", .local_user = "postmaster"},
    };
    open_queue(f);
    submit(f, "", rcpts, 3, BODY, sizeof BODY - 1, &r); /* null sender */
    wait_stats(f, 3, 0, 1);
    for (size_t i = 0; i < 3; i++)
        assert_delivered(f, rcpts[i].local_user, "Return-Path: <>\r\n", BODY, sizeof BODY - 1);
    for (int i = 0; i < 1000 && count_queue(f) > 0; i++)
        usleep(2000);
    assert_int_equal(count_queue(f), 0);
}

/* Remote recipients stay queued, pending, for the later delivery agent; the local one is
 * marked sent in place. */
static void test_remote_recipients_stay_queued(void **state)
{
    struct fx *f = *state;
    struct result r1 = {0}, r2 = {0};
    struct store_rcpt remote = {.address = "dave@remote.example"};
    struct store_rcpt mixed[] = {
        {.address = "dave@remote.example"},
        {.address = "bob@example.test", .local_user = "bob"},
    };
    open_queue(f);
    submit(f, "alice@example.test", &remote, 1, BODY, sizeof BODY - 1, &r1);
    submit(f, "alice@example.test", mixed, 2, BODY, sizeof BODY - 1, &r2);
    /* bob is in the later message: once he is delivered, both were handled. */
    struct store_stats st = wait_stats(f, 1, 0, 1);
    store_queue_close(f->q);
    f->q = NULL;
    assert_int_equal(st.removed, 0);
    assert_int_equal(count_queue(f), 2);
    assert_int_equal(count_dir(f, "bob", "new"), 1);

    char path[256];
    snprintf(path, sizeof path, "%s/queue/%s", f->queue_dir, r2.id);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = '\0';
    assert_non_null(strstr(text, "\nrcpt pending  <dave@remote.example>\n"
                                 "rcpt sent     <bob@example.test> local=bob\n\n"));
    /* Reopening does not deliver bob again. */
    open_queue(f);
    wait_stats(f, 0, 0, 1);
    store_queue_close(f->q);
    f->q = NULL;
    assert_int_equal(count_dir(f, "bob", "new"), 1);
    assert_int_equal(count_queue(f), 2);
}

static void test_write_fault_deferred_then_retried(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    struct store_rcpt rcpt = {.address = "bob@example.test", .local_user = "bob"};
    open_queue(f);
    assert_int_equal(store_fault_set("maildir_write=EIO"), 0);
    submit(f, "alice@example.test", &rcpt, 1, BODY, sizeof BODY - 1, &r);
    wait_stats(f, 0, 1, 1);
    assert_int_equal(count_dir(f, "bob", "new"), 0);
    assert_int_equal(count_dir(f, "bob", "tmp"), 0);
    assert_int_equal(count_queue(f), 1);
    char pattern[256];
    snprintf(pattern, sizeof pattern,
             "^%s: to=<bob@example\\.test>, relay=local, delay=[0-9.]+, dsn=4\\.3\\.0, "
             "status=deferred \\(maildir write failed: Input/output error\\)$", r.id);
    assert_true(log_has(f, pattern));
    store_fault_set(NULL);
    wait_stats(f, 1, 1, 2); /* retried after retry_seconds */
    assert_delivered(f, "bob", "Return-Path: <alice@example.test>\r\n", BODY, sizeof BODY - 1);
}

static void check_fault_then_retry(struct fx *f, const char *spec, const char *step)
{
    struct result r = {0};
    struct store_rcpt rcpt = {.address = "bob@example.test", .local_user = "bob"};
    open_queue(f);
    /* A mailbox that exists already, so that the fault hits the delivery, not mkdir. */
    submit(f, "alice@example.test", &rcpt, 1, BODY, sizeof BODY - 1, &r);
    wait_stats(f, 1, 0, 1);
    assert_int_equal(store_fault_set(spec), 0);
    struct result r2 = {0};
    submit(f, "alice@example.test", &rcpt, 1, "second", 6, &r2);
    wait_stats(f, 1, 1, 2);
    char pattern[256];
    snprintf(pattern, sizeof pattern, "^%s: .*dsn=4\\.3\\.0, status=deferred \\(%s", r2.id, step);
    assert_true(log_has(f, pattern));
    assert_int_equal(count_dir(f, "bob", "new"), 1); /* nothing half-delivered */
    assert_int_equal(count_dir(f, "bob", "tmp"), 0);
    wait_stats(f, 2, 1, 3);
    assert_int_equal(count_dir(f, "bob", "new"), 2); /* the retry delivers once */
}

static void test_sync_fault_deferred(void **state)
{
    check_fault_then_retry(*state, "maildir_sync=EIO@1", "maildir sync failed");
}

static void test_rename_fault_deferred(void **state)
{
    check_fault_then_retry(*state, "maildir_rename=EIO@1", "maildir rename failed");
}

/* The new/ directory sync fails after the rename: the file is taken back out of new/. */
static void test_new_dir_sync_fault_deferred(void **state)
{
    check_fault_then_retry(*state, "maildir_sync=EIO@2", "maildir sync failed");
}

static void test_fdatasync_mode_and_large_message(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    struct store_rcpt rcpt = {.address = "bob@example.test", .local_user = "bob"};
    size_t n = 200 * 1024 + 17;
    char *body = malloc(n);
    assert_non_null(body);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)(i * 7 + i / 251);
    open_queue_mode(f, STORE_SYNC_FDATASYNC);
    submit(f, "alice@example.test", &rcpt, 1, body, n, &r);
    wait_stats(f, 1, 0, 1);
    assert_delivered(f, "bob", "Return-Path: <alice@example.test>\r\n", body, n);
    free(body);
}

/* Many messages delivered in a few batches share their syncs. */
static void test_delivery_batches_share_syncs(void **state)
{
    struct fx *f = *state;
    enum { N = 60 };
    struct result r[N];
    struct store_rcpt rcpt = {.address = "bob@example.test", .local_user = "bob"};
    memset(r, 0, sizeof r);
    open_queue(f);
    struct store_msg *m[N];
    for (size_t i = 0; i < N; i++) {
        struct store_envelope env = {.sender = "alice@example.test", .rcpts = &rcpt,
                                     .n_rcpts = 1, .arrival = (int64_t)time(NULL)};
        assert_int_equal(store_msg_begin(f->q, &env, &m[i]), STORE_OK);
        assert_int_equal(store_msg_write(m[i], BODY, sizeof BODY - 1), STORE_OK);
    }
    for (size_t i = 0; i < N; i++)
        store_msg_commit(m[i], on_commit, &r[i]);
    struct store_stats st = wait_stats(f, N, 0, 1);
    /* The callbacks point into this frame: run them all before returning. */
    for (size_t i = 0, rounds = 0; i < N; rounds++) {
        assert_true(rounds < 1000);
        store_queue_process(f->q);
        while (i < N && r[i].calls == 1)
            i++;
        if (i < N)
            usleep(2000);
    }
    for (int i = 0; i < 1000 && st.removed < N; i++, usleep(2000))
        store_queue_stats(f->q, &st);
    print_message("%d deliveries: %llu batches, %llu syncs\n", N,
                  (unsigned long long)st.deliver_batches, (unsigned long long)st.deliver_syncs);
    assert_int_equal(count_dir(f, "bob", "new"), N);
    assert_true(st.deliver_syncs < N);
}

/* A corrupt queue file is left for the administrator; the others are delivered. */
static void test_corrupt_queue_file_left_alone(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    struct store_rcpt rcpt = {.address = "bob@example.test", .local_user = "bob"};
    open_queue(f);
    submit(f, "alice@example.test", &rcpt, 1, BODY, sizeof BODY - 1, &r);
    wait_stats(f, 1, 0, 1);
    store_queue_close(f->q);
    f->q = NULL;
    char path[256];
    snprintf(path, sizeof path, "%s/queue/0000000000000001", f->queue_dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("clearmta-queue 1\nid 0000000000000001\nrcpt pending  <x@y> local=..\n\nbody", fp);
    fclose(fp);
    open_queue(f);
    wait_stats(f, 0, 0, 1);
    assert_true(log_has(f, "^0000000000000001: queue file corrupt"));
    assert_int_equal(count_queue(f), 1);
}

/* The queue file records which recipients were delivered before a crash: only the pending one
 * is delivered on restart. */
static void test_restart_delivers_only_pending(void **state)
{
    struct fx *f = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/queue", f->queue_dir);
    assert_int_equal(store_io_mkdirs(path, 0700), 0);
    snprintf(path, sizeof path, "%s/queue/0000000000000002", f->queue_dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("clearmta-queue 1\nid 0000000000000002\narrival 1\nsize 000000000004\nsender <a@x>\n"
          "rcpt sent     <bob@x> local=bob\nrcpt pending  <carol@x> local=carol\n\nabcd", fp);
    fclose(fp);
    open_queue(f);
    wait_stats(f, 1, 0, 1);
    for (int i = 0; i < 1000 && count_queue(f) > 0; i++)
        usleep(2000);
    assert_int_equal(count_queue(f), 0);
    assert_int_equal(count_dir(f, "bob", "new"), 0);
    assert_delivered(f, "carol", "Return-Path: <a@x>\r\n", "abcd", 4);
}

static void test_maildir_writer_direct(void **state)
{
    struct fx *f = *state;
    struct store_maildir md;
    char src[] = "/tmp/clearmta-src-XXXXXX";
    int sfd = mkstemp(src);
    assert_true(sfd >= 0);
    assert_int_equal(write(sfd, "xxHELLO", 7), 7);
    assert_int_equal(store_maildir_open(&md, f->maildir, "h"), 0);
    struct store_maildir_file a, b;
    assert_int_equal(store_maildir_write(&md, "u", "P:", 2, sfd, 2, 5, &a), 0);
    assert_int_equal(store_maildir_write(&md, "u", "P:", 2, sfd, 2, 5, &b), 0);
    assert_string_not_equal(a.name, b.name); /* unique within one second */
    assert_int_equal(store_maildir_fdatasync(&a), 0);
    assert_int_equal(store_maildir_publish(&md, &a), 0);
    store_maildir_discard(&md, &b);
    assert_int_equal(store_maildir_sync_new(&md, "u"), 0);
    assert_int_equal(count_dir(f, "u", "new"), 1);
    assert_int_equal(count_dir(f, "u", "tmp"), 0);
    /* The source ends early: an error, nothing left behind. */
    assert_int_not_equal(store_maildir_write(&md, "u", "P:", 2, sfd, 2, 50, &b), 0);
    assert_int_equal(count_dir(f, "u", "tmp"), 0);
    store_maildir_close(&md);
    close(sfd);
    unlink(src);
}

/* A Maildir++ folder: the target directory, and a first write that makes the mailbox's
 * Maildir and the folder's (tmp, new, cur) before the file lands in the folder's new/. */
static void test_folder_target(void **state)
{
    struct fx *f = *state;
    char dir[STORE_MAILDIR_DIR_MAX];
    assert_true(store_maildir_target("bob", NULL, dir, sizeof dir));
    assert_string_equal(dir, "bob");
    assert_true(store_maildir_target("bob", "", dir, sizeof dir));
    assert_string_equal(dir, "bob");
    assert_true(store_maildir_target("bob", ".Junk", dir, sizeof dir));
    assert_string_equal(dir, "bob/.Junk");
    assert_false(store_maildir_target("bob", ".Junk", dir, 9));
    struct store_maildir md;
    assert_int_equal(store_maildir_open(&md, f->maildir, "host.example"), 0);
    char src[128];
    snprintf(src, sizeof src, "%s/src", f->dir);
    int fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, BODY, sizeof BODY - 1), (ssize_t)(sizeof BODY - 1));
    struct store_maildir_file mf;
    assert_int_equal(store_maildir_write(&md, "bob/.Junk", "", 0, fd, 0, sizeof BODY - 1, &mf),
                     0);
    assert_int_equal(store_maildir_publish(&md, &mf), 0);
    assert_int_equal(store_maildir_sync_new(&md, "bob/.Junk"), 0);
    close(fd);
    const char *dirs[] = {"bob/tmp", "bob/new", "bob/cur", "bob/.Junk/tmp", "bob/.Junk/new",
                          "bob/.Junk/cur"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char p[256];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", f->maildir, dirs[i]);
        assert_int_equal(stat(p, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
    }
    char p[2048];
    snprintf(p, sizeof p, "%s/bob/.Junk/new/%s", f->maildir, mf.name);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, sizeof BODY - 1);
    store_maildir_close(&md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deliver_byte_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiple_recipients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_recipients_stay_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_fault_deferred_then_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_fault_deferred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_fault_deferred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_dir_sync_fault_deferred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fdatasync_mode_and_large_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_batches_share_syncs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_queue_file_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_delivers_only_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maildir_writer_direct, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
