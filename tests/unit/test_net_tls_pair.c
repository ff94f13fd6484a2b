/* tests/unit/test_net_tls_pair.c — the self-signed pair in <data_dir>/tls (net/tls_pair.c):
 * made once and loaded again; a key.pem planted as a symbolic link is replaced, never written
 * through; a tls directory that is a symbolic link, open to others, or holding a linked, hard
 * linked or readable key is refused, and nothing outside it is read or changed. */
#include "unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/tls.h"
#include "tmpdir.h"

static char root[64], data[96], tls[128], key[160], cert[160], victim[160], other[128];

static const char VICTIM_TEXT[] = "a file of someone else\n";

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/clearmta-tlspair-XXXXXX");
    if (mkdtemp(root) == NULL)
        return -1;
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(tls, sizeof tls, "%s/tls", data);
    snprintf(key, sizeof key, "%s/key.pem", tls);
    snprintf(cert, sizeof cert, "%s/cert.pem", tls);
    snprintf(victim, sizeof victim, "%s/victim", root);
    snprintf(other, sizeof other, "%s/other", root);
    FILE *f = fopen(victim, "w");
    if (f == NULL || mkdir(data, 0750) != 0)
        return -1;
    fputs(VICTIM_TEXT, f);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unit_tmpdir_remove(root);
    return 0;
}

/* A context from the pair in data/tls; NULL with the reason in err. */
static SSL_CTX *context(char *err, size_t cap)
{
    return net_tls_context("", "", data, "mx.example.test", NULL, err, cap);
}

static void expect_refused(const char *part)
{
    char err[512];
    SSL_CTX *ctx = context(err, sizeof err);
    if (ctx != NULL) {
        SSL_CTX_free(ctx);
        fail_msg("accepted; expected a refusal with '%s'", part);
    }
    if (strstr(err, part) == NULL)
        fail_msg("'%s' lacks '%s'", err, part);
}

static void test_made_once_then_loaded(void **state)
{
    (void)state;
    char err[512], first[8192];
    SSL_CTX *ctx = context(err, sizeof err);
    if (ctx == NULL)
        fail_msg("%s", err);
    SSL_CTX_free(ctx);
    struct stat st;
    assert_int_equal(stat(tls, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(first, sizeof first, "%s", unit_file_text(key));
    assert_non_null(strstr(first, "PRIVATE KEY"));
    ctx = context(err, sizeof err);
    if (ctx == NULL)
        fail_msg("%s", err);
    SSL_CTX_free(ctx);
    assert_string_equal(unit_file_text(key), first); /* loaded, not made again */
}

/* The server's user removed cert.pem and made key.pem a link to another file: a new pair
 * replaces the link; the file it pointed to is untouched. */
static void test_planted_key_link_is_replaced(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(unlink(cert), 0);
    assert_int_equal(unlink(key), 0);
    assert_int_equal(symlink(victim, key), 0);
    SSL_CTX *ctx = context(err, sizeof err);
    if (ctx == NULL)
        fail_msg("%s", err);
    SSL_CTX_free(ctx);
    assert_string_equal(unit_file_text(victim), VICTIM_TEXT);
    struct stat st;
    assert_int_equal(lstat(key, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    /* With cert.pem present, a linked key is refused rather than read. */
    assert_int_equal(unlink(key), 0);
    assert_int_equal(symlink(victim, key), 0);
    expect_refused("key.pem refused");
    assert_string_equal(unit_file_text(victim), VICTIM_TEXT);
    assert_int_equal(unlink(key), 0);
}

/* tls itself a link to another directory holding a pair: refused, that pair is not read. */
static void test_tls_link_refused(void **state)
{
    (void)state;
    char err[512];
    unit_tmpdir_remove(tls);
    SSL_CTX *ctx = context(err, sizeof err); /* a pair to move away */
    if (ctx == NULL)
        fail_msg("%s", err);
    SSL_CTX_free(ctx);
    assert_int_equal(rename(tls, other), 0);
    assert_int_equal(symlink(other, tls), 0);
    expect_refused("not a symbolic link");
    assert_int_equal(unlink(tls), 0);
    assert_int_equal(rename(other, tls), 0);
}

static void test_open_or_linked_files_refused(void **state)
{
    (void)state;
    char err[512];
    SSL_CTX *ctx = context(err, sizeof err);
    if (ctx == NULL)
        fail_msg("%s", err);
    SSL_CTX_free(ctx);
    assert_int_equal(chmod(tls, 0770), 0);
    expect_refused("group or others may write it");
    assert_int_equal(chmod(tls, 0700), 0);
    assert_int_equal(chmod(key, 0644), 0);
    expect_refused("others may read or write it");
    assert_int_equal(chmod(key, 0600), 0);
    assert_int_equal(chmod(cert, 0666), 0);
    expect_refused("cert.pem refused");
    assert_int_equal(chmod(cert, 0644), 0);
    assert_int_equal(link(key, other), 0);
    expect_refused("hard links");
    assert_int_equal(unlink(other), 0);
    ctx = context(err, sizeof err);
    if (ctx == NULL)
        fail_msg("%s", err);
    SSL_CTX_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_made_once_then_loaded),
        cmocka_unit_test(test_planted_key_link_is_replaced),
        cmocka_unit_test(test_tls_link_refused),
        cmocka_unit_test(test_open_or_linked_files_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
