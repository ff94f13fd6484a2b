/* tests/unit/test_store_maildrop.c — the maildrop (store/maildrop.c): a written file reads
 * back the same, is 0644 in a 01733 directory and leaves no temporary file; the parser
 * refuses what is not a maildrop file; the reader refuses links, FIFOs, sockets and oversize
 * files, and a file with no maildrop first line after reading that line only; a set-aside
 * settles a file even when its bad- name is taken; the writer follows no symbolic link. */
#include "unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "limits_mta.h"
#include "store/maildrop.h"
#include "tmpdir.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/clearmta-maildrop-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unit_tmpdir_remove(dir);
    return 0;
}

static void test_write_then_read(void **state)
{
    (void)state;
    const char *rcpts[] = {"alice@example.test", "postmaster"};
    const char body[] = "Subject: x\r\n\r\nbody\r\n";
    char name[STORE_MAILDROP_NAME_CAP], err[256];
    assert_int_equal(store_maildrop_write(dir, "joe@example.org", rcpts, 2, body,
                                          sizeof body - 1, name, sizeof name, err, sizeof err),
                     STORE_OK);
    assert_true(store_maildrop_is_name(name));
    int fd = store_maildrop_open_dir(dir);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_mode & 07777, 01733);
    assert_int_equal(fstatat(fd, name, &st, 0), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    struct store_maildrop_msg m;
    assert_int_equal(store_maildrop_read(fd, name, 1 << 20, &m, NULL), STORE_OK);
    assert_string_equal(m.sender, "joe@example.org");
    assert_int_equal(m.n_rcpts, 2);
    assert_string_equal(m.rcpts[1], "postmaster");
    assert_int_equal(m.body_len, sizeof body - 1);
    assert_memory_equal(m.body, body, m.body_len);
    assert_int_equal(m.uid, getuid());
    store_maildrop_msg_free(&m);
    /* Too large for the reader's bound. */
    assert_int_equal(store_maildrop_read(fd, name, 10, &m, NULL), STORE_ERR_INVALID);
    /* A symbolic link or a second link to the file is not taken. */
    assert_int_equal(symlinkat(name, fd, "Daaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 0);
    assert_int_equal(store_maildrop_read(fd, "Daaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1 << 20, &m, NULL),
                     STORE_ERR_CORRUPT);
    assert_int_equal(linkat(fd, name, fd, "Dbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 0), 0);
    assert_int_equal(store_maildrop_read(fd, name, 1 << 20, &m, NULL), STORE_ERR_CORRUPT);
    close(fd);
}

static void test_write_refuses_bad_addresses(void **state)
{
    (void)state;
    const char *bad[] = {"a b@example.test", "<a@b>", "a\n@b", ""};
    char name[STORE_MAILDROP_NAME_CAP], err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(store_maildrop_write(dir, "x@y", &bad[i], 1, "", 0, name, sizeof name,
                                              err, sizeof err),
                         STORE_ERR_INVALID);
    const char *ok = "a@b";
    assert_int_equal(store_maildrop_write(dir, "x y", &ok, 1, "", 0, name, sizeof name, err,
                                          sizeof err),
                     STORE_ERR_INVALID);
    assert_int_equal(store_maildrop_write(dir, "x@y", &ok, 0, "", 0, name, sizeof name, err,
                                          sizeof err),
                     STORE_ERR_INVALID);
}

#define JUNK "D0000000000000000000000000000000a"
#define JUNK2 "D0000000000000000000000000000000b"

/* A maildrop with one message (its name in name), opened; then a file junk of size bytes. */
static int drop_message_and_junk(char *name, const char *junk, off_t size)
{
    const char *ok = "a@b";
    char err[256];
    assert_int_equal(store_maildrop_write(dir, "", &ok, 1, "", 0, name, STORE_MAILDROP_NAME_CAP,
                                          err, sizeof err),
                     STORE_OK);
    int fd = store_maildrop_open_dir(dir);
    assert_true(fd >= 0);
    int f = openat(fd, junk, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(f >= 0);
    assert_int_equal(ftruncate(f, size), 0);
    close(f);
    return fd;
}

/* A sparse file of 16 MiB that is no maildrop file costs its first line, not its size; a
 * Unix socket with a maildrop name (open: ENXIO) and a directory are not maildrop files. */
static void test_read_refuses_junk_cheaply(void **state)
{
    (void)state;
    char name[STORE_MAILDROP_NAME_CAP];
    int fd = drop_message_and_junk(name, JUNK, 16 << 20);
    struct store_maildrop_msg m;
    size_t cost = 99;
    assert_int_equal(store_maildrop_read(fd, JUNK, 32 << 20, &m, &cost), STORE_ERR_CORRUPT);
    assert_true(cost <= 32);
    assert_int_equal(store_maildrop_read(fd, name, 1 << 20, &m, &cost), STORE_OK);
    assert_true(cost > 20);
    store_maildrop_msg_free(&m);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s/maildrop/%s", dir, JUNK2);
    assert_int_equal(bind(s, (struct sockaddr *)&sun, sizeof sun), 0);
    close(s);
    assert_int_equal(store_maildrop_read(fd, JUNK2, 1 << 20, &m, &cost), STORE_ERR_CORRUPT);
    assert_int_equal(unlinkat(fd, JUNK2, 0), 0);
    assert_int_equal(mkdirat(fd, JUNK2, 0700), 0);
    assert_int_equal(store_maildrop_read(fd, JUNK2, 1 << 20, &m, &cost), STORE_ERR_CORRUPT);
    close(fd);
}

/* Set aside under bad-NAME; when that name is taken (a directory there), the file goes. */
static void test_set_aside_settles_once(void **state)
{
    (void)state;
    char name[STORE_MAILDROP_NAME_CAP], kept[64];
    int fd = drop_message_and_junk(name, JUNK, 0);
    assert_true(store_maildrop_set_aside(fd, JUNK, kept, sizeof kept));
    assert_string_equal(kept, "bad-" JUNK);
    struct stat st;
    assert_int_equal(fstatat(fd, "bad-" JUNK, &st, 0), 0);
    /* The bad- name taken by a directory, an empty one as another user may make: removed. */
    assert_int_equal(mkdirat(fd, "bad-" JUNK2, 0700), 0);
    int f = openat(fd, JUNK2, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(f >= 0);
    close(f);
    assert_true(store_maildrop_set_aside(fd, JUNK2, kept, sizeof kept));
    assert_string_equal(kept, "");
    assert_int_not_equal(fstatat(fd, JUNK2, &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(fstatat(fd, "bad-" JUNK2, &st, 0), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* A directory with a maildrop name whose bad- name is taken too: removed when empty. */
    assert_int_equal(mkdirat(fd, JUNK2, 0700), 0);
    assert_true(store_maildrop_set_aside(fd, JUNK2, kept, sizeof kept));
    assert_int_not_equal(fstatat(fd, JUNK2, &st, AT_SYMLINK_NOFOLLOW), 0);
    close(fd);
}

/* queue_dir/maildrop or queue_dir itself a symbolic link to another directory: nothing is
 * written there and the directory's mode stays as it was. */
static void test_write_follows_no_link(void **state)
{
    (void)state;
    char target[128], queue[128], link[160];
    snprintf(target, sizeof target, "%s/target", dir);
    snprintf(queue, sizeof queue, "%s/queue", dir);
    snprintf(link, sizeof link, "%s/maildrop", queue);
    assert_int_equal(mkdir(target, 0755), 0);
    assert_int_equal(mkdir(queue, 0711), 0);
    assert_int_equal(symlink(target, link), 0);
    const char *ok = "a@b";
    char name[STORE_MAILDROP_NAME_CAP], err[256];
    assert_int_equal(store_maildrop_write(queue, "", &ok, 1, "x", 1, name, sizeof name, err,
                                          sizeof err),
                     STORE_ERR_IO);
    assert_true(store_maildrop_open_dir(queue) < 0);
    char linked_queue[160];
    snprintf(linked_queue, sizeof linked_queue, "%s/linked-queue", dir);
    assert_int_equal(symlink(target, linked_queue), 0);
    assert_int_equal(store_maildrop_write(linked_queue, "", &ok, 1, "x", 1, name, sizeof name,
                                          err, sizeof err),
                     STORE_ERR_IO);
    struct stat st;
    assert_int_equal(stat(target, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    assert_int_equal(st.st_nlink, 2); /* no maildrop/ made in it */
    int t = open(target, O_RDONLY | O_DIRECTORY);
    assert_true(t >= 0);
    assert_int_not_equal(fstatat(t, name, &st, 0), 0);
    close(t);
}

static bool parses(const char *text)
{
    char *buf = strdup(text);
    struct store_maildrop_msg m;
    bool ok = store_maildrop_parse(buf, strlen(buf), &m);
    if (ok)
        free(m.rcpts);
    free(buf);
    return ok;
}

static void test_parse(void **state)
{
    (void)state;
    assert_true(parses("clearmta-maildrop 1\nS <>\nR <a@b>\n\n"));
    assert_true(parses("clearmta-maildrop 1\nS <x@y>\nR <a@b>\nR <c@d>\n\nbody"));
    assert_false(parses("clearmta-maildrop 2\nS <>\nR <a@b>\n\n"));
    assert_false(parses("clearmta-maildrop 1\nR <a@b>\nS <>\n\n"));     /* R before S */
    assert_false(parses("clearmta-maildrop 1\nS <>\nS <>\nR <a@b>\n\n")); /* two S */
    assert_false(parses("clearmta-maildrop 1\nS <>\n\n"));               /* no R */
    assert_false(parses("clearmta-maildrop 1\nS <>\nR <a@b>\n"));        /* no blank line */
    assert_false(parses("clearmta-maildrop 1\nS <>\nR <>\n\n"));         /* empty R */
    assert_false(parses("clearmta-maildrop 1\nS <>\nR a@b\n\n"));        /* no brackets */
    assert_false(parses("clearmta-maildrop 1\nS <>\nR <a\tb>\n\n"));
    assert_false(parses("clearmta-maildrop 1\nS <>\nX <a@b>\n\n"));
    /* LIMIT_PATH octets pass, one more does not. */
    char line[LIMIT_PATH + 64];
    char addr[LIMIT_PATH + 2];
    memset(addr, 'a', LIMIT_PATH + 1);
    addr[LIMIT_PATH + 1] = '\0';
    snprintf(line, sizeof line, "clearmta-maildrop 1\nS <>\nR <%s>\n\n", addr);
    assert_false(parses(line));
    addr[LIMIT_PATH] = '\0';
    snprintf(line, sizeof line, "clearmta-maildrop 1\nS <>\nR <%s>\n\n", addr);
    assert_true(parses(line));
}

static void test_names(void **state)
{
    (void)state;
    assert_true(store_maildrop_is_name("D0123456789abcdef0123456789abcdef"));
    assert_false(store_maildrop_is_name("t0123456789abcdef0123456789abcdef"));
    assert_false(store_maildrop_is_name("D0123456789ABCDEF0123456789abcdef"));
    assert_false(store_maildrop_is_name("D0123"));
    assert_false(store_maildrop_is_name("bad-D0123456789abcdef0123456789abcdef"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_then_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_refuses_bad_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_refuses_junk_cheaply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_aside_settles_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_follows_no_link, setup, teardown),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
