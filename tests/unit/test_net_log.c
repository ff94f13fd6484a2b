/* tests/unit/test_net_log.c — the log file (net/log.c): lines appended whole, one line per
 * event whatever control bytes its text holds, and after the file was moved away a reopen
 * writes to a new file of the same name, not the moved one; a name planted as a symbolic or
 * hard link, a file of another owner, one others may write and a FIFO are refused at the open
 * and at the reopen, and the file behind is left as it was. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/log.h"
#include "tmpdir.h"

static void test_reopen_after_rotation(void **state)
{
    (void)state;
    char dir[] = "/tmp/clearmta-log-XXXXXX", path[64], moved[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/clearmta.log", dir);
    snprintf(moved, sizeof moved, "%s/clearmta.log.1", dir);
    char none[256];
    assert_true(net_log_reopen(none, sizeof none)); /* stderr: nothing to reopen */
    assert_true(net_log_open_file(path, geteuid(), err, sizeof err));
    net_log("first %d", 1);
    assert_int_equal(rename(path, moved), 0);
    net_log("second");
    assert_true(net_log_reopen(err, sizeof err));
    net_log("third");
    assert_non_null(strstr(unit_file_text(moved), "clearmta: first 1\n"));
    assert_non_null(strstr(unit_file_text(moved), "clearmta: second\n"));
    assert_null(strstr(unit_file_text(moved), "third"));
    assert_non_null(strstr(unit_file_text(path), "clearmta: third\n"));
    /* A name that cannot be opened again: the old file stays in use. */
    unit_tmpdir_remove(dir);
    assert_false(net_log_reopen(err, sizeof err));
    assert_non_null(strstr(err, "clearmta.log"));
    net_log("still logging");
    char bad[] = "/nonexistent-dir/x.log";
    assert_false(net_log_open_file(bad, geteuid(), err, sizeof err));
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* net_log_open_file refuses path with a reason holding part. */
static void expect_open_refused(const char *path, uid_t owner, const char *part)
{
    char err[512];
    if (net_log_open_file(path, owner, err, sizeof err))
        fail_msg("%s accepted; expected a refusal with '%s'", path, part);
    if (strstr(err, part) == NULL)
        fail_msg("'%s' lacks '%s'", err, part);
}

static void test_planted_names_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/clearmta-log-XXXXXX", path[64], victim[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/clearmta.log", dir);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    write_text(victim, "untouched\n");
    assert_int_equal(symlink(victim, path), 0);
    expect_open_refused(path, geteuid(), "symbolic link");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(link(victim, path), 0);
    expect_open_refused(path, geteuid(), "hard links");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkfifo(path, 0600), 0);
    expect_open_refused(path, geteuid(), path);
    assert_int_equal(unlink(path), 0);
    write_text(path, "");
    assert_int_equal(chmod(path, 0646), 0);
    expect_open_refused(path, geteuid(), "writable by others");
    assert_int_equal(chmod(path, 0640), 0);
    /* Neither root's nor the server's user's (as root: given to a third uid). */
    bool root = geteuid() == 0;
    if (root)
        assert_int_equal(chown(path, 4242, 4242), 0);
    expect_open_refused(path, root ? 65534 : geteuid() + 1, "owned by another user");
    if (root)
        assert_int_equal(chown(path, 0, 0), 0);
    net_log("nothing went to the victim");
    assert_string_equal(unit_file_text(victim), "untouched\n");

    /* The same rules when the name is opened again (SIGHUP, SIGUSR1). */
    assert_true(net_log_open_file(path, geteuid(), err, sizeof err));
    net_log("before");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink(victim, path), 0);
    assert_false(net_log_reopen(err, sizeof err));
    assert_non_null(strstr(err, "symbolic link"));
    net_log("after");
    assert_string_equal(unit_file_text(victim), "untouched\n");
    unit_tmpdir_remove(dir);
}

/* A remote reply of three lines with terminal escapes, logged as it came: one line, no ESC. */
static void test_outside_text_one_line(void **state)
{
    (void)state;
    char dir[] = "/tmp/clearmta-log-XXXXXX", path[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/clearmta.log", dir);
    assert_true(net_log_open_file(path, geteuid(), err, sizeof err));
    net_log("relay: %s; trying the next address",
            "554 first\n2026-12-06T00:00:00.000Z clearmta: FORGED: status=sent\n"
            "\x1b[31mRED\x1b[0m\r\x07");
    net_log_line(NULL, "helo=<\x1b]0;x\x07>");
    const char *text = unit_file_text(path);
    assert_non_null(strstr(text, "Z clearmta: relay: 554 first 2026-12-06T00:00:00.000Z "
                                   "clearmta: FORGED: status=sent \\x1B[31mRED\\x1B[0m"
                                   "\\x0D\\x07; trying the next address\n"));
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2);
    assert_non_null(strstr(text, "helo=<\\x1B]0;x\\x07>\n"));
    assert_null(strchr(text, '\x1b'));
    unit_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reopen_after_rotation),
        cmocka_unit_test(test_outside_text_one_line),
        cmocka_unit_test(test_planted_names_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
