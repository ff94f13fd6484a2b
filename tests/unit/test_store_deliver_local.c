/* tests/unit/test_store_deliver_local.c — the local delivery runner honours `queue hold`: a
 * held message is not delivered to its Maildir until the flag is cleared, without any call
 * into the runner (the release reaches it through the flag file). */
#include "unit.h"
#include "tmpdir.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/flags.h"
#include "store/queue.h"
#include "store/remote.h"

struct fx {
    char dir[64], queue_dir[128], maildir[128];
    struct store_queue *q;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    memcpy(f->dir, "/tmp/clearmta-local-XXXXXX", sizeof "/tmp/clearmta-local-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->queue_dir, sizeof f->queue_dir, "%s/queue", f->dir);
    snprintf(f->maildir, sizeof f->maildir, "%s/maildir", f->dir);
    struct store_opts o = {.queue_dir = f->queue_dir, .maildir_root = f->maildir,
                           .hostname = "mx.example.test", .deliver_local = true,
                           .retry_seconds = 30};
    char err[256];
    assert_int_equal(store_queue_open(&o, &f->q, err, sizeof err), STORE_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_queue_close(f->q);
    unit_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static void committed(void *ctx, enum store_err err, const char *id)
{
    assert_int_equal(err, STORE_OK);
    memcpy(ctx, id, STORE_ID_LEN + 1);
}

static size_t delivered(struct fx *f)
{
    char path[256];
    snprintf(path, sizeof path, "%s/bob/new", f->maildir);
    DIR *d = opendir(path);
    size_t n = 0;
    if (d == NULL)
        return 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static bool wait_delivered(struct fx *f, size_t n, int ms)
{
    for (int waited = 0; waited < ms; waited += 20) {
        if (delivered(f) >= n)
            return true;
        usleep(20000);
    }
    return delivered(f) >= n;
}

static void test_held_message_waits_for_release(void **state)
{
    struct fx *f = *state;
    int queue_fd, flags_fd;
    char top[160];
    snprintf(top, sizeof top, "%s", f->queue_dir);
    assert_int_equal(store_remote_open_dir(top, &queue_fd), STORE_OK);
    assert_int_equal(store_flags_open(queue_fd, &flags_fd), STORE_OK);

    struct store_rcpt r = {.address = "bob@example.test", .local_user = "bob"};
    struct store_envelope env = {.sender = "alice@example.test", .rcpts = &r, .n_rcpts = 1,
                                 .arrival = (int64_t)time(NULL)};
    struct store_msg *m;
    assert_int_equal(store_msg_begin(f->q, &env, &m), STORE_OK);
    char id[STORE_ID_LEN + 1] = "";
    /* held before it is committed, as `queue hold` of a message still waiting would be */
    assert_int_equal(store_flags_set(flags_fd, store_msg_id(m), STORE_FLAG_HOLD, true),
                     STORE_OK);
    static const char body[] = "Subject: held\r\n\r\nwait\r\n";
    assert_int_equal(store_msg_write(m, body, sizeof body - 1), STORE_OK);
    store_msg_commit(m, committed, id);
    struct pollfd p = {.fd = store_queue_event_fd(f->q), .events = POLLIN};
    for (int i = 0; i < 100 && id[0] == '\0'; i++) {
        poll(&p, 1, 50);
        store_queue_process(f->q);
    }
    assert_true(id[0] != '\0');
    assert_false(wait_delivered(f, 1, 1500));
    assert_int_equal(faccessat(queue_fd, id, F_OK, 0), 0);
    assert_int_equal(store_flags_set(flags_fd, id, STORE_FLAG_HOLD, false), STORE_OK);
    assert_true(wait_delivered(f, 1, 5000));
    close(flags_fd);
    close(queue_fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_held_message_waits_for_release, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
