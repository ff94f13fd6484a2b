/* tests/unit/test_store_flags.c — durable per-message flags: set, clear, survive reopening,
 * hostile ids refused, forgotten with their message, swept when the message is gone. */
#include "unit.h"
#include "tmpdir.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/flags.h"
#include "store/remote.h"

struct fx {
    char dir[64];
    int queue_fd, flags_fd;
};

static const char ID1[] = "0000000000000001", ID2[] = "0000000000000002";

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    memcpy(f->dir, "/tmp/clearmta-flags-XXXXXX", sizeof "/tmp/clearmta-flags-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char q[128];
    snprintf(q, sizeof q, "%s/queue", f->dir);
    assert_int_equal(mkdir(q, 0700), 0);
    assert_int_equal(store_remote_open_dir(f->dir, &f->queue_fd), STORE_OK);
    assert_int_equal(store_flags_open(f->queue_fd, &f->flags_fd), STORE_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    close(f->flags_fd);
    close(f->queue_fd);
    unit_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static bool file_exists(struct fx *f, const char *rel)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s", f->dir, rel);
    return access(p, F_OK) == 0;
}

static void test_set_get_clear_and_reopen(void **state)
{
    struct fx *f = *state;
    assert_false(store_flags_get(f->flags_fd, ID1, STORE_FLAG_HOLD));
    assert_int_equal(store_flags_set(f->flags_fd, ID1, STORE_FLAG_HOLD, true), STORE_OK);
    assert_int_equal(store_flags_set(f->flags_fd, ID1, STORE_FLAG_HOLD, true), STORE_OK);
    assert_true(file_exists(f, "flags/0000000000000001.hold"));
    assert_false(store_flags_get(f->flags_fd, ID1, STORE_FLAG_WARNED));
    assert_false(store_flags_get(f->flags_fd, ID2, STORE_FLAG_HOLD));
    /* a restart: the directory opened again */
    int again;
    assert_int_equal(store_flags_open(f->queue_fd, &again), STORE_OK);
    assert_true(store_flags_get(again, ID1, STORE_FLAG_HOLD));
    assert_int_equal(store_flags_set(again, ID1, STORE_FLAG_HOLD, false), STORE_OK);
    assert_int_equal(store_flags_set(again, ID1, STORE_FLAG_HOLD, false), STORE_OK);
    close(again);
    assert_false(store_flags_get(f->flags_fd, ID1, STORE_FLAG_HOLD));
}

static void test_hostile_ids_are_refused(void **state)
{
    struct fx *f = *state;
    assert_int_equal(store_flags_set(f->flags_fd, "../queue/x", STORE_FLAG_HOLD, true),
                     STORE_ERR_INVALID);
    assert_int_equal(store_flags_set(f->flags_fd, "000000000000000g", STORE_FLAG_HOLD, true),
                     STORE_ERR_INVALID);
    assert_int_equal(store_flags_set(f->flags_fd, NULL, STORE_FLAG_HOLD, true),
                     STORE_ERR_INVALID);
    assert_false(store_flags_get(f->flags_fd, "../queue", STORE_FLAG_HOLD));
    assert_false(store_flags_get(-1, ID1, STORE_FLAG_HOLD));
    assert_int_equal(store_flags_set(-1, ID1, STORE_FLAG_HOLD, true), STORE_ERR_IO);
}

static void test_forget_and_sweep(void **state)
{
    struct fx *f = *state;
    assert_int_equal(store_flags_set(f->flags_fd, ID1, STORE_FLAG_HOLD, true), STORE_OK);
    assert_int_equal(store_flags_set(f->flags_fd, ID1, STORE_FLAG_WARNED, true), STORE_OK);
    store_flags_forget(f->flags_fd, ID1);
    assert_false(store_flags_get(f->flags_fd, ID1, STORE_FLAG_HOLD));
    assert_false(store_flags_get(f->flags_fd, ID1, STORE_FLAG_WARNED));
    /* ID2 is queued, ID1 is not: only ID2's flag survives the sweep */
    int fd = openat(f->queue_fd, ID2, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(store_flags_set(f->flags_fd, ID1, STORE_FLAG_WARNED, true), STORE_OK);
    assert_int_equal(store_flags_set(f->flags_fd, ID2, STORE_FLAG_WARNED, true), STORE_OK);
    fd = openat(f->flags_fd, "README", O_WRONLY | O_CREAT, 0600); /* not ours: left alone */
    close(fd);
    store_flags_sweep(f->flags_fd, f->queue_fd);
    assert_false(store_flags_get(f->flags_fd, ID1, STORE_FLAG_WARNED));
    assert_true(store_flags_get(f->flags_fd, ID2, STORE_FLAG_WARNED));
    assert_true(file_exists(f, "flags/README"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_set_get_clear_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_ids_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_and_sweep, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
