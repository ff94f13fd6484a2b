/* tests/unit/test_store_remote.c — the store side of remote delivery: scanning for pending
 * remote recipients, loading, recording outcomes in place, removal once nothing is pending,
 * listing oldest first, reading a header only, and removal by the administrator. */
#include "unit.h"
#include "tmpdir.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/remote.h"

struct fx {
    char dir[64];
    int dir_fd;
    char seen[4][STORE_ID_LEN + 1];
    size_t n_seen;
};

static const char BODY[] = "Subject: remote\r\n\r\nHello\r\n.. a dot line\r\n";

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    memcpy(f->dir, "/tmp/clearmta-remote-XXXXXX", sizeof "/tmp/clearmta-remote-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char q[128];
    snprintf(q, sizeof q, "%s/queue", f->dir);
    assert_int_equal(mkdir(q, 0700), 0);
    assert_int_equal(store_remote_open_dir(f->dir, &f->dir_fd), STORE_OK);
    assert_true(f->dir_fd >= 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    close(f->dir_fd);
    unit_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* Writes queue file id with the given recipients, as the store would. */
static void put(struct fx *f, const char *id, const struct store_rcpt *r, size_t n)
{
    struct store_envelope env = {.sender = "alice@example.test", .rcpts = r, .n_rcpts = n,
                                 .arrival = 1700000000};
    char *hdr;
    size_t len, size_off;
    assert_int_equal(store_qf_format(&env, id, &hdr, &len, &size_off), STORE_OK);
    store_qf_size_digits(sizeof BODY - 1, hdr + size_off);
    int fd = openat(f->dir_fd, id, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, hdr, len), (ssize_t)len);
    assert_int_equal(write(fd, BODY, sizeof BODY - 1), (ssize_t)(sizeof BODY - 1));
    close(fd);
    free(hdr);
}

static bool exists(struct fx *f, const char *id)
{
    return faccessat(f->dir_fd, id, F_OK, 0) == 0;
}

static const struct store_rcpt MIXED[] = {
    {.address = "bob@example.test", .local_user = "bob"},
    {.address = "carol@remote.example"},
    {.address = "dave@remote.example"},
};
static const char ID1[] = "0000000000000001", ID2[] = "0000000000000002";

static void seen(void *ctx, const char *id)
{
    struct fx *f = ctx;
    assert_true(f->n_seen < 4);
    memcpy(f->seen[f->n_seen++], id, STORE_ID_LEN + 1);
}

static void test_scan_finds_only_pending_remote(void **state)
{
    struct fx *f = *state;
    put(f, ID1, MIXED, 3);
    put(f, ID2, MIXED, 1); /* local only */
    int fd = openat(f->dir_fd, "00000000000000FF", O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "garbage\n\n", 9), 9); /* corrupt: skipped */
    close(fd);
    assert_int_equal(store_remote_scan(f->dir_fd, seen, f), STORE_OK);
    assert_int_equal(f->n_seen, 1);
    assert_string_equal(f->seen[0], ID1);
}

static void test_load_reads_envelope_and_body(void **state)
{
    struct fx *f = *state;
    put(f, ID1, MIXED, 3);
    struct store_remote_msg m;
    bool gone = true;
    assert_int_equal(store_remote_load(f->dir_fd, ID1, &m, &gone), STORE_OK);
    assert_false(gone);
    assert_int_equal(m.qf.env.n_rcpts, 3);
    assert_false(store_remote_pending(&m.qf, 0));
    assert_true(store_remote_pending(&m.qf, 1));
    assert_true(store_remote_pending(&m.qf, 2));
    assert_false(store_remote_pending(&m.qf, 3));
    assert_int_equal(m.body_len, sizeof BODY - 1);
    assert_memory_equal(m.body, BODY, m.body_len);
    store_remote_close(&m);
}

static void test_load_missing_and_bad_ids(void **state)
{
    struct fx *f = *state;
    int fd;
    assert_int_equal(store_remote_open_dir("/nonexistent-clearmta", &fd), STORE_ERR_IO);
    assert_int_equal(fd, -1);
    struct store_remote_msg m;
    bool gone = false;
    assert_int_equal(store_remote_load(f->dir_fd, ID1, &m, &gone), STORE_OK);
    assert_true(gone);
    assert_int_equal(store_remote_load(f->dir_fd, "../etc/passwd", &m, &gone),
                     STORE_ERR_CORRUPT);
    assert_int_equal(store_remote_load(f->dir_fd, "0000000000000001X", &m, &gone),
                     STORE_ERR_CORRUPT);
    /* a file whose header names another id */
    put(f, ID1, MIXED, 3);
    assert_int_equal(renameat(f->dir_fd, ID1, f->dir_fd, ID2), 0);
    assert_int_equal(store_remote_load(f->dir_fd, ID2, &m, &gone), STORE_ERR_CORRUPT);
}

static void test_record_in_place_then_remove(void **state)
{
    struct fx *f = *state;
    put(f, ID1, MIXED, 3);
    struct store_remote_msg m;
    bool gone, removed = true;
    assert_int_equal(store_remote_load(f->dir_fd, ID1, &m, &gone), STORE_OK);
    size_t idx[] = {1, 2};
    enum store_rcpt_state st[] = {STORE_RCPT_SENT, STORE_RCPT_DEFERRED};
    assert_int_equal(store_remote_record(f->dir_fd, &m, idx, st, 2, &removed), STORE_OK);
    assert_false(removed);
    store_remote_close(&m);

    /* on disk: carol sent, dave still pending (deferred is not written) */
    assert_int_equal(store_remote_load(f->dir_fd, ID1, &m, &gone), STORE_OK);
    assert_int_equal(m.qf.state[1], STORE_RCPT_SENT);
    assert_int_equal(m.qf.state[2], STORE_RCPT_PENDING);
    /* the local runner delivers bob meanwhile: written behind our back */
    int fd = openat(f->dir_fd, ID1, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(store_qf_set_state(fd, m.qf.state_off[0], STORE_RCPT_SENT), STORE_OK);
    close(fd);
    size_t last[] = {2};
    enum store_rcpt_state bounced[] = {STORE_RCPT_BOUNCED};
    assert_int_equal(store_remote_record(f->dir_fd, &m, last, bounced, 1, &removed), STORE_OK);
    assert_true(removed);
    assert_false(exists(f, ID1));
    assert_int_equal(m.qf.state[0], STORE_RCPT_SENT); /* refreshed from disk */
    store_remote_close(&m);
}

static void test_record_nothing_removes_a_finished_file(void **state)
{
    struct fx *f = *state;
    put(f, ID1, MIXED, 2); /* bob local, carol remote */
    struct store_remote_msg m;
    bool gone, removed = true;
    assert_int_equal(store_remote_load(f->dir_fd, ID1, &m, &gone), STORE_OK);
    size_t carol[] = {1};
    enum store_rcpt_state sent[] = {STORE_RCPT_SENT};
    assert_int_equal(store_remote_record(f->dir_fd, &m, carol, sent, 1, &removed), STORE_OK);
    assert_false(removed); /* bob is pending */
    assert_int_equal(store_remote_record(f->dir_fd, &m, NULL, NULL, 0, &removed), STORE_OK);
    assert_false(removed);
    /* the local runner delivers bob behind our back */
    int fd = openat(f->dir_fd, ID1, O_RDWR);
    assert_int_equal(store_qf_set_state(fd, m.qf.state_off[0], STORE_RCPT_SENT), STORE_OK);
    close(fd);
    assert_int_equal(store_remote_record(f->dir_fd, &m, NULL, NULL, 0, &removed), STORE_OK);
    assert_true(removed);
    store_remote_close(&m);
    store_remote_close(&m); /* twice is fine */
}

/* No local recipient: the last outcome removes the file without writing its state, and the
 * descriptor goes to the sync thread to be closed there. */
static void test_remote_only_removed_and_closed_by_the_sync_thread(void **state)
{
    struct fx *f = *state;
    put(f, ID1, MIXED + 1, 2); /* carol and dave, both remote */
    struct store_remote_msg m;
    bool gone, removed = true;
    assert_int_equal(store_remote_load(f->dir_fd, ID1, &m, &gone), STORE_OK);
    size_t carol[] = {0}, dave[] = {1};
    enum store_rcpt_state sent[] = {STORE_RCPT_SENT}, bounced[] = {STORE_RCPT_BOUNCED};
    assert_int_equal(store_remote_record(f->dir_fd, &m, carol, sent, 1, &removed), STORE_OK);
    assert_false(removed);
    assert_false(m.removed);
    assert_int_equal(store_remote_record(f->dir_fd, &m, dave, bounced, 1, &removed), STORE_OK);
    assert_true(removed);
    assert_true(m.removed);
    assert_false(exists(f, ID1));
    assert_int_equal(m.qf.state[1], STORE_RCPT_BOUNCED);
    struct store_lazysync *s;
    assert_int_equal(store_lazysync_new(f->dir_fd, NULL, NULL, &s), STORE_OK);
    int fd = m.fd;
    store_remote_close_deferred(&m, s);
    assert_int_equal(m.fd, -1);
    store_lazysync_free(s); /* closes what it was handed */
    assert_true(fcntl(fd, F_GETFD) < 0);
}

static void test_record_rejects_bad_index(void **state)
{
    struct fx *f = *state;
    put(f, ID1, MIXED, 3);
    struct store_remote_msg m;
    bool gone, removed;
    assert_int_equal(store_remote_load(f->dir_fd, ID1, &m, &gone), STORE_OK);
    size_t idx[] = {7};
    enum store_rcpt_state st[] = {STORE_RCPT_SENT};
    assert_int_equal(store_remote_record(f->dir_fd, &m, idx, st, 1, &removed),
                     STORE_ERR_INVALID);
    assert_true(exists(f, ID1));
    store_remote_close(&m);
}

static void test_list_oldest_first_and_peek(void **state)
{
    struct fx *f = *state;
    put(f, ID2, MIXED, 3);
    put(f, ID1, MIXED, 1);
    int fd = openat(f->dir_fd, "not-a-queue-id", O_WRONLY | O_CREAT, 0600);
    close(fd);
    char(*ids)[STORE_ID_LEN + 1] = NULL;
    size_t n = 0;
    assert_int_equal(store_remote_list(f->dir_fd, &ids, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], ID1);
    assert_string_equal(ids[1], ID2);
    free(ids);
    struct store_qf qf;
    bool gone = true;
    assert_int_equal(store_remote_peek(f->dir_fd, ID2, &qf, &gone), STORE_OK);
    assert_false(gone);
    assert_int_equal(qf.env.n_rcpts, 3);
    assert_int_equal(qf.size, sizeof BODY - 1);
    store_qf_free(&qf);
    assert_int_equal(store_remote_peek(f->dir_fd, "00000000000000AA", &qf, &gone), STORE_OK);
    assert_true(gone);
    assert_int_equal(store_remote_peek(f->dir_fd, "../x", &qf, &gone), STORE_ERR_CORRUPT);
}

static void test_list_of_an_empty_queue(void **state)
{
    struct fx *f = *state;
    char(*ids)[STORE_ID_LEN + 1] = NULL;
    size_t n = 7;
    assert_int_equal(store_remote_list(f->dir_fd, &ids, &n), STORE_OK);
    assert_int_equal(n, 0);
    free(ids);
}

static void test_remove_takes_states_from_disk(void **state)
{
    struct fx *f = *state;
    put(f, ID1, MIXED, 3);
    struct store_remote_msg m;
    bool gone;
    assert_int_equal(store_remote_load(f->dir_fd, ID1, &m, &gone), STORE_OK);
    int fd = openat(f->dir_fd, ID1, O_RDWR); /* the local runner delivers bob meanwhile */
    assert_int_equal(store_qf_set_state(fd, m.qf.state_off[0], STORE_RCPT_SENT), STORE_OK);
    close(fd);
    assert_int_equal(store_remote_remove(f->dir_fd, &m), STORE_OK);
    assert_false(exists(f, ID1));
    assert_int_equal(m.qf.state[0], STORE_RCPT_SENT);
    assert_int_equal(m.qf.state[1], STORE_RCPT_PENDING);
    assert_int_equal(store_remote_remove(f->dir_fd, &m), STORE_ERR_IO); /* already gone */
    store_remote_close(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scan_finds_only_pending_remote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_reads_envelope_and_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_missing_and_bad_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_in_place_then_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_nothing_removes_a_finished_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remote_only_removed_and_closed_by_the_sync_thread,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_rejects_bad_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_oldest_first_and_peek, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_of_an_empty_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_takes_states_from_disk, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
