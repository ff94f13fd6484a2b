/* tests/unit/test_store_queue.c — the durable queue: commit only after durable, group commit,
 * injected faults leave nothing behind, recovery, kill -9 at random moments. */
#include "unit.h"
#include "tmpdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/fault.h"
#include "store/queue.h"
#include "store/queue_file.h"

struct fx {
    char dir[64];
    char queue_dir[128];
    char maildir[128];
    struct store_queue *q;
};

struct result {
    int calls;
    enum store_err err;
    char id[STORE_ID_LEN + 1];
};

static const char BODY[] = "Subject: test\r\n\r\nHello\r\n.. not a dot line\r\n";

static const struct store_rcpt BOB = {.address = "bob@example.test", .local_user = "bob"};

static struct store_envelope env_for(const struct store_rcpt *r, size_t n)
{
    struct store_envelope e = {.sender = "alice@example.test", .rcpts = r, .n_rcpts = n,
                               .arrival = (int64_t)time(NULL)};
    return e;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    memcpy(f->dir, "/tmp/clearmta-queue-XXXXXX", sizeof "/tmp/clearmta-queue-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->queue_dir, sizeof f->queue_dir, "%s/var/queue", f->dir);
    snprintf(f->maildir, sizeof f->maildir, "%s/maildir", f->dir);
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

static void open_queue(struct fx *f, bool local, enum store_sync_mode mode)
{
    char err[256];
    struct store_opts o = {.queue_dir = f->queue_dir, .maildir_root = f->maildir,
                           .hostname = "mx.example.test", .deliver_local = local,
                           .sync_mode = mode};
    enum store_err rc = store_queue_open(&o, &f->q, err, sizeof err);
    if (rc != STORE_OK)
        print_error("open: %s\n", err);
    assert_int_equal(rc, STORE_OK);
}

static void reopen(struct fx *f, bool local)
{
    store_queue_close(f->q);
    f->q = NULL;
    open_queue(f, local, STORE_SYNC_SYNCFS);
}

static void on_commit(void *ctx, enum store_err err, const char *id)
{
    struct result *r = ctx;
    r->calls++;
    r->err = err;
    memcpy(r->id, id, STORE_ID_LEN + 1);
}

static int total_calls(const struct result *r, size_t n)
{
    int calls = 0;
    for (size_t i = 0; i < n; i++)
        calls += r[i].calls;
    return calls;
}

/* Runs the loop's side: wait on the event fd, process, until n callbacks ran. */
static void wait_callbacks(struct store_queue *q, const struct result *r, size_t n)
{
    struct pollfd p = {.fd = store_queue_event_fd(q), .events = POLLIN};
    for (int rounds = 0; total_calls(r, n) < (int)n; rounds++) {
        assert_true(rounds < 1000);
        assert_true(poll(&p, 1, 5000) >= 0);
        store_queue_process(q);
    }
    assert_int_equal(total_calls(r, n), (int)n);
}

static size_t count_entries(const char *dir, const char *sub)
{
    char path[256];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    rewind(fp);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static struct store_msg *begin(struct fx *f, const struct store_rcpt *r, size_t n)
{
    struct store_envelope env = env_for(r, n);
    struct store_msg *m = NULL;
    assert_int_equal(store_msg_begin(f->q, &env, &m), STORE_OK);
    assert_non_null(m);
    return m;
}

static void commit_one(struct fx *f, const char *body, size_t len, struct result *r)
{
    struct store_msg *m = begin(f, &BOB, 1);
    assert_int_equal(store_msg_write(m, body, len), STORE_OK);
    store_msg_commit(m, on_commit, r);
    wait_callbacks(f->q, r, 1);
}

static void assert_nothing_left(struct fx *f)
{
    assert_int_equal(count_entries(f->queue_dir, "tmp"), 0);
    assert_int_equal(count_entries(f->queue_dir, "queue"), 0);
}

static uint64_t hash_of(const char *body)
{
    struct store_qf_hash hs;
    store_qf_hash_init(&hs);
    store_qf_hash_update(&hs, body, strlen(body));
    return store_qf_hash_final(&hs);
}

static void test_commit_after_durable(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    open_queue(f, false, STORE_SYNC_SYNCFS);
    struct store_msg *m = begin(f, &BOB, 1);
    char id[STORE_ID_LEN + 1];
    memcpy(id, store_msg_id(m), sizeof id);
    assert_true(store_qf_valid_id(id, strlen(id)));
    assert_int_equal(count_entries(f->queue_dir, "queue"), 0); /* in pool/ or tmp/ until durable */
    assert_int_equal(store_msg_write(m, BODY, 10), STORE_OK);
    assert_int_equal(store_msg_write(m, BODY + 10, sizeof BODY - 11), STORE_OK);
    store_msg_commit(m, on_commit, &r);
    assert_int_equal(r.calls, 0); /* never synchronously */
    wait_callbacks(f->q, &r, 1);
    assert_int_equal(r.err, STORE_OK);
    assert_string_equal(r.id, id);
    assert_int_equal(count_entries(f->queue_dir, "tmp"), 0);
    assert_int_equal(count_entries(f->queue_dir, "queue"), 1);

    char path[256];
    size_t len;
    snprintf(path, sizeof path, "%s/queue/%s", f->queue_dir, id);
    char *data = read_file(path, &len);
    struct store_qf qf;
    size_t hlen;
    assert_true(store_qf_header_end(data, len, &hlen));
    assert_int_equal(store_qf_parse(data, hlen, &qf), STORE_OK);
    assert_int_equal(qf.size, sizeof BODY - 1);
    assert_int_equal(len - hlen, sizeof BODY - 1);
    assert_true(qf.has_check);
    assert_true(qf.check == hash_of(BODY));
    assert_memory_equal(data + hlen, BODY, sizeof BODY - 1);
    assert_string_equal(qf.id, id);
    store_qf_free(&qf);
    free(data);

    struct store_stats st;
    store_queue_stats(f->q, &st);
    assert_int_equal(st.committed, 1);
    assert_int_equal(st.commit_failed, 0);
    assert_int_equal(st.commit_syncs, 1); /* one syncfs: data and directory entry */
}

static void test_group_commit_100(void **state)
{
    struct fx *f = *state;
    enum { N = 100 };
    struct result r[N] = {{0}};
    char ids[N][STORE_ID_LEN + 1];
    open_queue(f, false, STORE_SYNC_SYNCFS);
    struct store_msg *m[N];
    for (size_t i = 0; i < N; i++) {
        m[i] = begin(f, &BOB, 1);
        memcpy(ids[i], store_msg_id(m[i]), sizeof ids[i]);
        assert_int_equal(store_msg_write(m[i], BODY, sizeof BODY - 1), STORE_OK);
        if (i > 0) /* unique and sorting by arrival */
            assert_true(strcmp(ids[i - 1], ids[i]) < 0);
    }
    for (size_t i = 0; i < N; i++)
        store_msg_commit(m[i], on_commit, &r[i]);
    wait_callbacks(f->q, r, N);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(r[i].err, STORE_OK);
        assert_string_equal(r[i].id, ids[i]);
    }
    assert_int_equal(count_entries(f->queue_dir, "queue"), N);
    struct store_stats st;
    store_queue_stats(f->q, &st);
    assert_int_equal(st.committed, N);
    print_message("100 commits: %llu batches, %llu syncs\n",
                  (unsigned long long)st.commit_batches, (unsigned long long)st.commit_syncs);
    assert_true(st.commit_syncs <= 10); /* two per batch; one per message would be 200 */
}

static void test_fdatasync_mode(void **state)
{
    struct fx *f = *state;
    enum { N = 10 };
    struct result r[N] = {{0}};
    open_queue(f, false, STORE_SYNC_FDATASYNC);
    struct store_msg *m[N];
    for (size_t i = 0; i < N; i++) {
        m[i] = begin(f, &BOB, 1);
        assert_int_equal(store_msg_write(m[i], BODY, sizeof BODY - 1), STORE_OK);
    }
    for (size_t i = 0; i < N; i++)
        store_msg_commit(m[i], on_commit, &r[i]);
    wait_callbacks(f->q, r, N);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(r[i].err, STORE_OK);
    struct store_stats st;
    store_queue_stats(f->q, &st);
    assert_int_equal(st.commit_syncs, N + st.commit_batches);
    assert_int_equal(count_entries(f->queue_dir, "queue"), N);
}

/* A message bigger than the write buffer: written through, size patched in the file. */
static void test_large_message(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    size_t n = 300 * 1024;
    char *body = malloc(n);
    assert_non_null(body);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 26);
    open_queue(f, false, STORE_SYNC_SYNCFS);
    struct store_msg *m = begin(f, &BOB, 1);
    size_t off = 0;
    for (size_t chunk = 1; off < n; chunk = chunk * 3 + 1) { /* small and huge writes mixed */
        size_t k = chunk < n - off ? chunk : n - off;
        assert_int_equal(store_msg_write(m, body + off, k), STORE_OK);
        off += k;
    }
    store_msg_commit(m, on_commit, &r);
    wait_callbacks(f->q, &r, 1);
    assert_int_equal(r.err, STORE_OK);
    char path[256];
    snprintf(path, sizeof path, "%s/queue/%s", f->queue_dir, r.id);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct store_qf qf;
    assert_int_equal(store_qf_read(fd, &qf), STORE_OK);
    assert_int_equal(qf.size, n);
    char *back = malloc(n);
    assert_non_null(back);
    assert_int_equal(pread(fd, back, n, (off_t)qf.header_len), (ssize_t)n);
    assert_memory_equal(back, body, n);
    store_qf_free(&qf);
    close(fd);
    free(back);
    free(body);
}

static void test_empty_message(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    open_queue(f, false, STORE_SYNC_SYNCFS);
    commit_one(f, "", 0, &r);
    assert_int_equal(r.err, STORE_OK);
}

static void test_fault_write_enospc(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    open_queue(f, false, STORE_SYNC_SYNCFS);
    assert_int_equal(store_fault_set("write=ENOSPC"), 0);
    commit_one(f, BODY, sizeof BODY - 1, &r); /* buffered: fails at the flush in commit */
    assert_int_equal(r.err, STORE_ERR_NOSPACE);
    assert_nothing_left(f);

    /* A write larger than the buffer fails at once, and the error sticks. */
    static char big[100 * 1024];
    struct store_msg *m = begin(f, &BOB, 1);
    assert_int_equal(store_msg_write(m, big, sizeof big), STORE_ERR_NOSPACE);
    assert_int_equal(store_msg_write(m, "x", 1), STORE_ERR_NOSPACE);
    struct result r2 = {0};
    store_msg_commit(m, on_commit, &r2);
    wait_callbacks(f->q, &r2, 1);
    assert_int_equal(r2.err, STORE_ERR_NOSPACE);
    assert_nothing_left(f);
    struct store_stats st;
    store_queue_stats(f->q, &st);
    assert_int_equal(st.commit_failed, 2);
    assert_int_equal(st.committed, 0);

    assert_int_equal(store_fault_set("write=EDQUOT"), 0);
    struct result r3 = {0};
    commit_one(f, BODY, sizeof BODY - 1, &r3);
    assert_int_equal(r3.err, STORE_ERR_NOSPACE);
    assert_nothing_left(f);
}

static void test_fault_write_nth(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    static char chunk[40 * 1024];
    open_queue(f, false, STORE_SYNC_SYNCFS);
    assert_int_equal(store_fault_set("write=EIO@2"), 0);
    struct store_msg *m = begin(f, &BOB, 1);
    enum store_err last = STORE_OK;
    for (int i = 0; i < 6; i++)
        last = store_msg_write(m, chunk, sizeof chunk);
    assert_int_equal(last, STORE_ERR_IO);
    store_msg_commit(m, on_commit, &r);
    wait_callbacks(f->q, &r, 1);
    assert_int_equal(r.err, STORE_ERR_IO);
    assert_nothing_left(f);
}

static void test_fault_sync_eio(void **state)
{
    struct fx *f = *state;
    struct result r = {0}, r2 = {0};
    open_queue(f, false, STORE_SYNC_SYNCFS);
    assert_int_equal(store_fault_set("sync=EIO@1"), 0);
    commit_one(f, BODY, sizeof BODY - 1, &r);
    assert_int_equal(r.err, STORE_ERR_IO);
    assert_nothing_left(f);
    commit_one(f, BODY, sizeof BODY - 1, &r2); /* only the first sync failed */
    assert_int_equal(r2.err, STORE_OK);
    assert_int_equal(count_entries(f->queue_dir, "queue"), 1);
}

static void test_fault_fdatasync_eio(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    open_queue(f, false, STORE_SYNC_FDATASYNC);
    assert_int_equal(store_fault_set("sync=EIO"), 0);
    commit_one(f, BODY, sizeof BODY - 1, &r);
    assert_int_equal(r.err, STORE_ERR_IO);
    assert_nothing_left(f);
}

/* The data sync succeeds, the directory sync after the rename fails: removed from queue/. */
static void test_fault_dir_sync_eio(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    open_queue(f, false, STORE_SYNC_FDATASYNC);
    assert_int_equal(store_fault_set("sync=EIO@2"), 0);
    commit_one(f, BODY, sizeof BODY - 1, &r);
    assert_int_equal(r.err, STORE_ERR_IO);
    assert_nothing_left(f);
}

static void test_fault_rename_eio(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    open_queue(f, false, STORE_SYNC_SYNCFS);
    assert_int_equal(store_fault_set("rename=EIO"), 0);
    commit_one(f, BODY, sizeof BODY - 1, &r);
    assert_int_equal(r.err, STORE_ERR_IO);
    assert_nothing_left(f);
}

static void test_fault_spec_parsing(void **state)
{
    (void)state;
    assert_int_equal(store_fault_set("write=ENOSPC,sync=EIO@3"), 0);
    assert_int_equal(store_fault_hit(STORE_FAULT_WRITE), ENOSPC);
    assert_int_equal(store_fault_hit(STORE_FAULT_SYNC), 0);
    assert_int_equal(store_fault_hit(STORE_FAULT_SYNC), 0);
    assert_int_equal(store_fault_hit(STORE_FAULT_SYNC), EIO);
    assert_int_equal(store_fault_hit(STORE_FAULT_SYNC), 0);
    assert_int_equal(store_fault_hit(STORE_FAULT_RENAME), 0);
    const char *bad[] = {"write", "write=", "write=EBADF", "nope=EIO", "write=EIO@",
                         "write=EIO@0", "write=EIO@x", "=EIO", "write=EIO@99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(store_fault_set(bad[i]), -1);
        assert_int_equal(store_fault_hit(STORE_FAULT_WRITE), 0); /* nothing half-set */
    }
    assert_int_equal(store_fault_set(""), 0);
    assert_int_equal(store_fault_set(NULL), 0);
}

static void test_abort(void **state)
{
    struct fx *f = *state;
    open_queue(f, false, STORE_SYNC_SYNCFS);
    struct store_msg *m = begin(f, &BOB, 1);
    assert_int_equal(store_msg_write(m, BODY, sizeof BODY - 1), STORE_OK);
    store_msg_abort(m);
    assert_nothing_left(f);
}

static void test_invalid_envelope(void **state)
{
    struct fx *f = *state;
    open_queue(f, false, STORE_SYNC_SYNCFS);
    struct store_rcpt r = {.address = "bob@example.test", .local_user = "../../etc"};
    struct store_envelope env = env_for(&r, 1);
    struct store_msg *m = (struct store_msg *)&r;
    assert_int_equal(store_msg_begin(f->q, &env, &m), STORE_ERR_INVALID);
    assert_null(m);
    env = env_for(&BOB, 1);
    env.sender = "a\r\nX-Evil: 1";
    assert_int_equal(store_msg_begin(f->q, &env, &m), STORE_ERR_INVALID);
    assert_nothing_left(f);
}

static void test_close_runs_callbacks(void **state)
{
    struct fx *f = *state;
    enum { N = 20 };
    struct result r[N] = {{0}};
    open_queue(f, false, STORE_SYNC_SYNCFS);
    for (size_t i = 0; i < N; i++) {
        struct store_msg *m = begin(f, &BOB, 1);
        assert_int_equal(store_msg_write(m, BODY, sizeof BODY - 1), STORE_OK);
        store_msg_commit(m, on_commit, &r[i]);
    }
    store_queue_close(f->q);
    f->q = NULL;
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].err, STORE_OK);
    }
    assert_int_equal(count_entries(f->queue_dir, "queue"), N);
}

static void test_lock_and_free_space(void **state)
{
    struct fx *f = *state;
    char err[256];
    struct store_queue *q2 = NULL;
    open_queue(f, false, STORE_SYNC_SYNCFS);
    struct store_opts o = {.queue_dir = f->queue_dir};
    assert_int_equal(store_queue_open(&o, &q2, err, sizeof err), STORE_ERR_BUSY);
    assert_null(q2);
    assert_non_null(strstr(err, "in use"));
    uint64_t bytes = 0;
    assert_int_equal(store_queue_free_space(f->q, &bytes), STORE_OK);
    assert_true(bytes > 0);
    o.queue_dir = "/proc/clearmta-cannot-exist/queue";
    assert_int_equal(store_queue_open(&o, &q2, err, sizeof err), STORE_ERR_IO);
    assert_null(q2);
}

static void write_raw(const char *dir, const char *sub, const char *name, const char *data)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(data, fp);
    fclose(fp);
}

static void wait_delivered(struct store_queue *q, uint64_t n)
{
    struct store_stats st;
    for (int i = 0; i < 5000; i++) {
        store_queue_stats(q, &st);
        if (st.delivered >= n && st.removed >= n)
            return;
        usleep(2000);
    }
    fail_msg("delivered %llu of %llu", (unsigned long long)st.delivered, (unsigned long long)n);
}

/* A committed message and a partial tmp file at open: the tmp file goes, the message is
 * delivered. */
static void test_recovery(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    open_queue(f, false, STORE_SYNC_SYNCFS);
    commit_one(f, BODY, sizeof BODY - 1, &r);
    assert_int_equal(r.err, STORE_OK);
    /* Messages whose commit never finished, as a crash leaves them. */
    write_raw(f->queue_dir, "tmp", "00000000000000AB", "clearmta-queue 1\nid 00");
    write_raw(f->queue_dir, "tmp", "00000000000000AC", "");
    store_queue_close(f->q);
    f->q = NULL;
    open_queue(f, true, STORE_SYNC_SYNCFS);
    assert_int_equal(count_entries(f->queue_dir, "tmp"), 0);
    wait_delivered(f->q, 1);
    assert_int_equal(count_entries(f->queue_dir, "queue"), 0);
    char bobnew[200];
    snprintf(bobnew, sizeof bobnew, "%s/bob", f->maildir);
    assert_int_equal(count_entries(bobnew, "new"), 1);
}

/* A queue file with the given body whose commit marker says size and check. */
static void write_sealed(struct fx *f, const char *id, const char *body, uint64_t size,
                         uint64_t check)
{
    struct store_envelope env = env_for(&BOB, 1);
    char *hdr, seal[STORE_QF_SEAL_LEN], path[256];
    size_t len, off;
    assert_int_equal(store_qf_format(&env, id, &hdr, &len, &off), STORE_OK);
    store_qf_seal(size, check, seal);
    memcpy(hdr + off, seal, sizeof seal);
    snprintf(path, sizeof path, "%s/queue/%s", f->queue_dir, id);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(hdr, 1, len, fp), len);
    assert_int_equal(fwrite(body, 1, strlen(body), fp), strlen(body));
    fclose(fp);
    free(hdr);
}

/* Files in queue/ whose sync never completed, as a crash leaves them: removed, not delivered;
 * the sealed one is delivered; an unparseable whole header stays. */
static void test_recovery_unsealed(void **state)
{
    struct fx *f = *state;
    const char *body = "Subject: x\r\n\r\nhello\r\n";
    uint64_t n = strlen(body), h = hash_of(body);
    open_queue(f, false, STORE_SYNC_SYNCFS);
    write_sealed(f, "0000000000000A01", body, n, h);             /* complete */
    write_sealed(f, "0000000000000A02", "Subject: x\r\n", n, h); /* truncated */
    write_sealed(f, "0000000000000A03", body, n, h ^ 1);         /* wrong checksum */
    write_sealed(f, "0000000000000A04", body, 0, 0);             /* marker not yet written */
    write_sealed(f, "0000000000000A05", "", 0, 0);               /* empty body, no marker */
    write_sealed(f, "0000000000000A06", "Subject: x\r\n\0\0\0\0", n, h); /* zeros */
    write_raw(f->queue_dir, "queue", "0000000000000A07", "");    /* nothing reached the disk */
    /* cut inside the header; the first page never written (reads as zeros) */
    write_raw(f->queue_dir, "queue", "0000000000000A08",
              "clearmta-queue 1\nid 0000000000000A08\narrival 1\nsize 000");
    write_raw(f->queue_dir, "queue", "0000000000000A09", "");
    char zeros[256];
    snprintf(zeros, sizeof zeros, "%s/queue/0000000000000A09", f->queue_dir);
    assert_int_equal(truncate(zeros, 300), 0);
    /* a whole header that does not parse: no crash makes one; kept for inspection */
    write_raw(f->queue_dir, "queue", "0000000000000A0A", "clearmta-queue 1\nbogus line\n\nhi");
    store_queue_close(f->q);
    f->q = NULL;
    open_queue(f, true, STORE_SYNC_SYNCFS);
    wait_delivered(f->q, 1);
    for (int i = 0; i < 2000 && count_entries(f->queue_dir, "queue") > 1; i++)
        usleep(1000);
    assert_int_equal(count_entries(f->queue_dir, "queue"), 1);
    char kept[256];
    snprintf(kept, sizeof kept, "%s/queue/0000000000000A0A", f->queue_dir);
    assert_int_equal(access(kept, F_OK), 0);
    char bobnew[200];
    snprintf(bobnew, sizeof bobnew, "%s/bob", f->maildir);
    assert_int_equal(count_entries(bobnew, "new"), 1);
}

/* The pool fills in the background; a message takes its file from it; one sync per batch. */
static void test_pool_and_one_sync(void **state)
{
    struct fx *f = *state;
    struct store_stats st;
    open_queue(f, false, STORE_SYNC_SYNCFS);
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s/pool", f->queue_dir);
    size_t pool = 0;
    for (int i = 0; i < 2000 && pool < 64; i++) {
        usleep(1000);
        pool = 0;
        DIR *d = opendir(tmp);
        assert_non_null(d);
        for (struct dirent *de; (de = readdir(d)) != NULL;)
            pool += de->d_name[0] == 'p';
        closedir(d);
    }
    assert_int_equal(pool, 64);
    struct result r[20] = {{0}};
    for (size_t i = 0; i < 20; i++) {
        struct store_msg *m = begin(f, &BOB, 1);
        assert_int_equal(store_msg_write(m, BODY, sizeof BODY - 1), STORE_OK);
        store_msg_commit(m, on_commit, &r[i]);
    }
    wait_callbacks(f->q, r, 20);
    store_queue_stats(f->q, &st);
    assert_int_equal(st.pool_misses, 0);
    assert_int_equal(st.committed, 20);
    /* One syncfs per batch at most: the two sync threads may share one. */
    assert_true(st.commit_syncs >= 1 && st.commit_syncs <= st.commit_batches);
    assert_int_equal(count_entries(f->queue_dir, "queue"), 20);
    assert_int_equal(count_entries(f->queue_dir, "tmp"), 0);
    store_queue_close(f->q);
    f->q = NULL;
    pool = 0;
    DIR *d = opendir(tmp);
    assert_non_null(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        pool += de->d_name[0] != '.';
    closedir(d);
    assert_int_equal(pool, 0); /* close removes the pool */
}

/* New ids sort after every queued one even if the clock is behind them. */
static void test_id_floor_after_restart(void **state)
{
    struct fx *f = *state;
    open_queue(f, false, STORE_SYNC_SYNCFS);
    write_raw(f->queue_dir, "queue", "7000000000000000", "not parsed without local delivery");
    reopen(f, false);
    struct store_msg *m = begin(f, &BOB, 1);
    assert_true(strcmp(store_msg_id(m), "7000000000000000") > 0);
    store_msg_abort(m);
}

/* ---- kill -9 at a random moment ---- */

/* The child commits messages as fast as it can and reports each acknowledged id on the pipe. */
static void crash_child(struct fx *f, int out)
{
    char err[256];
    struct store_opts o = {.queue_dir = f->queue_dir, .maildir_root = f->maildir,
                           .hostname = "mx", .deliver_local = true};
    struct store_queue *q;
    if (store_queue_open(&o, &q, err, sizeof err) != STORE_OK)
        _exit(2);
    enum { INFLIGHT = 8 };
    for (;;) {
        struct result r[INFLIGHT] = {{0}};
        for (size_t i = 0; i < INFLIGHT; i++) {
            struct store_envelope env = env_for(&BOB, 1);
            struct store_msg *m;
            if (store_msg_begin(q, &env, &m) != STORE_OK)
                _exit(3);
            char body[2048];
            int n = snprintf(body, sizeof body, "X-Queue-Id: %s\r\n\r\n", store_msg_id(m));
            memset(body + n, 'x', sizeof body - (size_t)n - 5);
            memcpy(body + sizeof body - 5, "END\r\n", 5);
            store_msg_write(m, body, sizeof body);
            store_msg_commit(m, on_commit, &r[i]);
        }
        struct pollfd p = {.fd = store_queue_event_fd(q), .events = POLLIN};
        while (total_calls(r, INFLIGHT) < INFLIGHT) {
            poll(&p, 1, 1000);
            store_queue_process(q);
        }
        for (size_t i = 0; i < INFLIGHT; i++)
            if (r[i].err == STORE_OK && write(out, r[i].id, STORE_ID_LEN) != STORE_ID_LEN)
                _exit(4);
    }
}

/* Every file in bob/new must be complete: Return-Path, our header, the filler, END. */
static size_t check_maildir(struct fx *f, char (*acked)[STORE_ID_LEN + 1], size_t n_acked)
{
    char path[512];
    snprintf(path, sizeof path, "%s/bob/new", f->maildir);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    bool *seen = calloc(n_acked + 1, 1);
    size_t files = 0;
    assert_non_null(seen);
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.')
            continue;
        files++;
        snprintf(path, sizeof path, "%s/bob/new/%s", f->maildir, de->d_name);
        size_t len;
        char *data = read_file(path, &len);
        const char *rp = "Return-Path: <alice@example.test>\r\nX-Queue-Id: ";
        assert_int_equal(len, strlen("Return-Path: <alice@example.test>\r\n") + 2048);
        assert_memory_equal(data, rp, strlen(rp));
        assert_memory_equal(data + len - 5, "END\r\n", 5);
        for (size_t i = 0; i < n_acked; i++)
            if (memcmp(data + strlen(rp), acked[i], STORE_ID_LEN) == 0)
                seen[i] = true;
        free(data);
    }
    closedir(d);
    for (size_t i = 0; i < n_acked; i++)
        if (!seen[i])
            fail_msg("acknowledged message %s was not delivered", acked[i]);
    free(seen);
    return files;
}

static void test_kill9_recovery(void **state)
{
    struct fx *f = *state;
    enum { ROUNDS = 4, MAX_ACK = 20000 };
    char(*acked)[STORE_ID_LEN + 1] = calloc(MAX_ACK, sizeof *acked);
    size_t n_acked = 0;
    assert_non_null(acked);
    srand((unsigned)time(NULL));
    for (int round = 0; round < ROUNDS; round++) {
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            crash_child(f, pfd[1]);
        }
        close(pfd[1]);
        usleep((useconds_t)(20000 + rand() % 150000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status));
        char id[STORE_ID_LEN];
        while (read(pfd[0], id, sizeof id) == (ssize_t)sizeof id && n_acked < MAX_ACK) {
            memcpy(acked[n_acked], id, STORE_ID_LEN);
            acked[n_acked++][STORE_ID_LEN] = '\0';
        }
        close(pfd[0]);
    }
    /* Restart: everything acknowledged gets delivered, nothing partial appears. */
    open_queue(f, true, STORE_SYNC_SYNCFS);
    size_t files = 0;
    for (int i = 0; i < 5000 && count_entries(f->queue_dir, "queue") > 0; i++)
        usleep(2000);
    assert_int_equal(count_entries(f->queue_dir, "queue"), 0);
    assert_int_equal(count_entries(f->queue_dir, "tmp"), 0);
    files = check_maildir(f, acked, n_acked);
    print_message("kill -9: %zu acknowledged, %zu delivered files\n", n_acked, files);
    assert_true(files >= n_acked);
    free(acked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_after_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_100, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fdatasync_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_write_enospc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_write_nth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_sync_eio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_fdatasync_eio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_dir_sync_eio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_rename_eio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_spec_parsing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_envelope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_runs_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_and_free_space, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_floor_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery_unsealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_and_one_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_recovery, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
