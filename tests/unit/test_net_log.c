/* tests/unit/test_net_log.c — the log file (net/log.c): lines appended whole, one line per
 * event whatever control bytes its text holds, and after the file was moved away a reopen
 * writes to a new file of the same name, not the moved one. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/log.h"
#include "tmpdir.h"

static char *slurp(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_reopen_after_rotation(void **state)
{
    (void)state;
    char dir[] = "/tmp/clearmta-log-XXXXXX", path[64], moved[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/clearmta.log", dir);
    snprintf(moved, sizeof moved, "%s/clearmta.log.1", dir);
    char none[256];
    assert_true(net_log_reopen(none, sizeof none)); /* stderr: nothing to reopen */
    assert_true(net_log_open_file(path, err, sizeof err));
    net_log("first %d", 1);
    assert_int_equal(rename(path, moved), 0);
    net_log("second");
    assert_true(net_log_reopen(err, sizeof err));
    net_log("third");
    assert_non_null(strstr(slurp(moved), "clearmta: first 1\n"));
    assert_non_null(strstr(slurp(moved), "clearmta: second\n"));
    assert_null(strstr(slurp(moved), "third"));
    assert_non_null(strstr(slurp(path), "clearmta: third\n"));
    /* A name that cannot be opened again: the old file stays in use. */
    unit_tmpdir_remove(dir);
    assert_false(net_log_reopen(err, sizeof err));
    assert_non_null(strstr(err, "clearmta.log"));
    net_log("still logging");
    char bad[] = "/nonexistent-dir/x.log";
    assert_false(net_log_open_file(bad, err, sizeof err));
}

/* A remote reply of three lines with terminal escapes, logged as it came: one line, no ESC. */
static void test_outside_text_one_line(void **state)
{
    (void)state;
    char dir[] = "/tmp/clearmta-log-XXXXXX", path[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/clearmta.log", dir);
    assert_true(net_log_open_file(path, err, sizeof err));
    net_log("relay: %s; trying the next address",
            "554 first\n2026-12-06T00:00:00.000Z clearmta: FORGED: status=sent\n"
            "\x1b[31mRED\x1b[0m\r\x07");
    net_log_line(NULL, "helo=<\x1b]0;x\x07>");
    const char *text = slurp(path);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
