/* tests/unit/test_store_maildrop.c — the maildrop (store/maildrop.c): a written file reads
 * back the same, is 0644 in a 01733 directory and leaves no temporary file; the parser
 * refuses what is not a maildrop file; the reader refuses links, FIFOs and oversize files. */
#include "unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    assert_int_equal(store_maildrop_read(fd, name, 1 << 20, &m), STORE_OK);
    assert_string_equal(m.sender, "joe@example.org");
    assert_int_equal(m.n_rcpts, 2);
    assert_string_equal(m.rcpts[1], "postmaster");
    assert_int_equal(m.body_len, sizeof body - 1);
    assert_memory_equal(m.body, body, m.body_len);
    assert_int_equal(m.uid, getuid());
    store_maildrop_msg_free(&m);
    /* Too large for the reader's bound. */
    assert_int_equal(store_maildrop_read(fd, name, 10, &m), STORE_ERR_INVALID);
    /* A symbolic link or a second link to the file is not taken. */
    assert_int_equal(symlinkat(name, fd, "Daaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 0);
    assert_int_equal(store_maildrop_read(fd, "Daaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1 << 20, &m),
                     STORE_ERR_CORRUPT);
    assert_int_equal(linkat(fd, name, fd, "Dbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 0), 0);
    assert_int_equal(store_maildrop_read(fd, name, 1 << 20, &m), STORE_ERR_CORRUPT);
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
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
