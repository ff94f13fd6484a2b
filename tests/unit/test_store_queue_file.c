/* tests/unit/test_store_queue_file.c — queue file header: round trips, hostile envelopes,
 * hostile files, in-place state updates. */
#include "unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "limits_mta.h"
#include "store/queue_file.h"

static const char *ID = "0190A1B2C3D4E5F6";

static struct store_envelope base_env(const struct store_rcpt *r, size_t n)
{
    struct store_envelope e = {.sender = "alice@example.test", .rcpts = r, .n_rcpts = n,
                               .arrival = 1717000000};
    return e;
}

static void assert_streq_or_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_env_equal(const struct store_envelope *a, const struct store_envelope *b)
{
    assert_string_equal(a->sender, b->sender);
    assert_int_equal(a->n_rcpts, b->n_rcpts);
    assert_streq_or_null(a->envid, b->envid);
    assert_int_equal(a->ret, b->ret);
    assert_int_equal(a->body, b->body);
    assert_int_equal(a->smtputf8, b->smtputf8);
    assert_streq_or_null(a->client_addr, b->client_addr);
    assert_streq_or_null(a->helo, b->helo);
    assert_streq_or_null(a->auth_user, b->auth_user);
    assert_streq_or_null(a->folder, b->folder);
    assert_streq_or_null(a->auth_results, b->auth_results);
    assert_int_equal(a->arrival, b->arrival);
    for (size_t i = 0; i < a->n_rcpts; i++) {
        assert_string_equal(a->rcpts[i].address, b->rcpts[i].address);
        assert_streq_or_null(a->rcpts[i].local_user, b->rcpts[i].local_user);
        assert_int_equal(a->rcpts[i].notify, b->rcpts[i].notify);
        assert_streq_or_null(a->rcpts[i].orcpt, b->rcpts[i].orcpt);
    }
}

/* Formats env, parses it back, compares; returns the header text (caller frees). */
static char *round_trip(const struct store_envelope *env)
{
    char *hdr;
    size_t len, size_off, hlen;
    struct store_qf qf;
    assert_int_equal(store_qf_format(env, ID, &hdr, &len, &size_off), STORE_OK);
    assert_true(store_qf_header_end(hdr, len, &hlen));
    assert_int_equal(hlen, len);
    assert_int_equal(store_qf_parse(hdr, len, &qf), STORE_OK);
    assert_string_equal(qf.id, ID);
    assert_int_equal(qf.size, 0);
    assert_int_equal(qf.header_len, len);
    assert_int_equal(qf.size_off, size_off);
    assert_memory_equal(hdr + size_off, "000000000000", STORE_QF_SIZE_DIGITS);
    assert_env_equal(env, &qf.env);
    for (size_t i = 0; i < qf.env.n_rcpts; i++) {
        assert_int_equal(qf.state[i], STORE_RCPT_PENDING);
        assert_memory_equal(hdr + qf.state_off[i], "pending  <", 10);
    }
    store_qf_free(&qf);
    char *z = malloc(len + 1);
    assert_non_null(z);
    memcpy(z, hdr, len);
    z[len] = '\0';
    free(hdr);
    return z;
}

static void test_round_trip_minimal(void **state)
{
    (void)state;
    struct store_rcpt r = {.address = "bob@example.test", .local_user = "bob"};
    struct store_envelope env = base_env(&r, 1);
    char *text = round_trip(&env);
    assert_string_equal(text, "clearmta-queue 1\n"
                              "id 0190A1B2C3D4E5F6\n"
                              "arrival 1717000000\n"
                              "size 000000000000\n"
                              "check 0000000000000000\n"
                              "sender <alice@example.test>\n"
                              "rcpt pending  <bob@example.test> local=bob\n"
                              "\n");
    free(text);
}

static void test_round_trip_full(void **state)
{
    (void)state;
    struct store_rcpt r[] = {
        {.address = "bob@example.test", .local_user = "bob",
         .notify = STORE_NOTIFY_SUCCESS | STORE_NOTIFY_FAILURE,
         .orcpt = "rfc822;bob@example.test"},
        {.address = "carol@remote.example", .notify = STORE_NOTIFY_NEVER},
        {.address = "\"d a\\\\ve\"@remote.example", .notify = STORE_NOTIFY_DELAY,
         .orcpt = "utf-8;d\\x+20ave"},
        {.address = "j\xc3\xb6rg@example.test", .local_user = "j\xc3\xb6rg"},
    };
    struct store_envelope env = base_env(r, 4);
    env.sender = "";
    env.envid = "QQ314159";
    env.ret = STORE_RET_HDRS;
    env.body = STORE_BODY_8BITMIME;
    env.smtputf8 = true;
    env.client_addr = "2001:db8::1";
    env.helo = "evil\r\nhelo with spaces\\ and \x01 bytes \x7f";
    env.auth_user = "alice";
    env.folder = ".Junk";
    env.auth_results = "mx.example.test; spf=fail smtp.mailfrom=x.example; dmarc=fail";
    char *text = round_trip(&env);
    assert_non_null(strstr(text, "folder .Junk\n"));
    assert_non_null(strstr(text, "auth-results mx.example.test;\\x20spf=fail"));
    /* No value can break a line or hide a field. */
    assert_non_null(strstr(text, "sender <>\n"));
    assert_non_null(strstr(text, "helo evil\\x0D\\x0Ahelo\\x20with\\x20spaces\\x5C\\x20and"
                                 "\\x20\\x01\\x20bytes\\x20\\x7F\n"));
    assert_non_null(strstr(text, "rcpt pending  <carol@remote.example> notify=never\n"));
    assert_non_null(strstr(text, "notify=success,failure orcpt=rfc822;bob@example.test\n"));
    free(text);
}

static void test_round_trip_empty_values(void **state)
{
    (void)state;
    struct store_rcpt r = {.address = "bob@example.test", .orcpt = ""};
    struct store_envelope env = base_env(&r, 1);
    env.helo = "";
    env.envid = "";
    free(round_trip(&env));
}

static void test_hostile_envelopes_rejected(void **state)
{
    (void)state;
    char *hdr = NULL;
    size_t len, off;
    struct store_rcpt good = {.address = "bob@example.test", .local_user = "bob"};
    struct {
        const char *sender, *address, *local_user;
        unsigned notify;
    } cases[] = {
        {"a\r\nX-Injected: 1@example.test", "bob@example.test", NULL, 0}, /* header injection */
        {"a\n@example.test", "bob@example.test", NULL, 0},
        {"a\x7f@example.test", "bob@example.test", NULL, 0},
        {"alice@example.test", "", NULL, 0},                     /* empty recipient */
        {"alice@example.test", "bob\r@example.test", NULL, 0},
        {"alice@example.test", "bob@example.test", "../etc", 0}, /* path traversal */
        {"alice@example.test", "bob@example.test", "a/b", 0},
        {"alice@example.test", "bob@example.test", ".", 0},
        {"alice@example.test", "bob@example.test", "..", 0},
        {"alice@example.test", "bob@example.test", ".Sent", 0},
        {"alice@example.test", "bob@example.test", "", 0},
        {"alice@example.test", "bob@example.test", "b\tob", 0},
        {"alice@example.test", "bob@example.test", NULL, STORE_NOTIFY_NEVER | STORE_NOTIFY_DELAY},
        {"alice@example.test", "bob@example.test", NULL, 16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct store_rcpt r = {.address = cases[i].address, .local_user = cases[i].local_user,
                               .notify = cases[i].notify};
        struct store_envelope env = base_env(&r, 1);
        env.sender = cases[i].sender;
        assert_int_equal(store_qf_format(&env, ID, &hdr, &len, &off), STORE_ERR_INVALID);
        assert_null(hdr);
    }
    struct store_envelope env = base_env(&good, 1);
    env.ret = 3;
    assert_int_equal(store_qf_format(&env, ID, &hdr, &len, &off), STORE_ERR_INVALID);
    env = base_env(&good, 1);
    env.body = -1;
    assert_int_equal(store_qf_format(&env, ID, &hdr, &len, &off), STORE_ERR_INVALID);
    env = base_env(&good, 0);
    assert_int_equal(store_qf_format(&env, ID, &hdr, &len, &off), STORE_ERR_INVALID);
    env = base_env(&good, LIMIT_RECIPIENTS_MAX + 1);
    assert_int_equal(store_qf_format(&env, ID, &hdr, &len, &off), STORE_ERR_INVALID);
    env = base_env(&good, 1);
    assert_int_equal(store_qf_format(&env, "0190a1b2c3d4e5f6", &hdr, &len, &off),
                     STORE_ERR_INVALID);
    assert_int_equal(store_qf_format(&env, "../../x", &hdr, &len, &off), STORE_ERR_INVALID);
}

static void test_field_length_limit(void **state)
{
    (void)state;
    char *hdr = NULL, *big = malloc(STORE_QF_FIELD_MAX + 2);
    size_t len, off;
    assert_non_null(big);
    memset(big, 'h', STORE_QF_FIELD_MAX + 1);
    big[STORE_QF_FIELD_MAX + 1] = '\0';
    struct store_rcpt r = {.address = "bob@example.test"};
    struct store_envelope env = base_env(&r, 1);
    env.helo = big; /* limit + 1 */
    assert_int_equal(store_qf_format(&env, ID, &hdr, &len, &off), STORE_ERR_INVALID);
    big[STORE_QF_FIELD_MAX] = '\0'; /* limit */
    free(round_trip(&env));
    big[0] = '\\'; /* escaped: longer on disk, same limit decoded */
    free(round_trip(&env));
    free(big);
}

static void test_many_recipients(void **state)
{
    (void)state;
    size_t n = LIMIT_RECIPIENTS_MAX;
    struct store_rcpt *r = calloc(n, sizeof *r);
    assert_non_null(r);
    for (size_t i = 0; i < n; i++) {
        r[i].address = i % 2 ? "bob@example.test" : "carol@remote.example";
        r[i].local_user = i % 2 ? "bob" : NULL;
    }
    struct store_envelope env = base_env(r, n);
    free(round_trip(&env));
    free(r);
}

/* Each must be refused; the comment says what is wrong. */
static void test_folder_names(void **state)
{
    (void)state;
    assert_true(store_qf_folder_ok(".Junk"));
    assert_true(store_qf_folder_ok(".Spam-2_x"));
    const char *bad[] = {"", ".", "Junk", "./Junk", ".Ju/nk", "..", ".Ju nk", ".J\x7f",
                         ".aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (store_qf_folder_ok(bad[i]))
            fail_msg("'%s' taken as a folder", bad[i]);
    struct store_rcpt r = {.address = "bob@example.test", .local_user = "bob"};
    struct store_envelope env = base_env(&r, 1);
    env.folder = "../../etc";
    char *hdr;
    size_t len, off;
    assert_int_equal(store_qf_format(&env, ID, &hdr, &len, &off), STORE_ERR_INVALID);
}

static const char *const corrupt_headers[] = {
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\nfolder ../x\n"
    "rcpt pending  <b@x>\n\n",                                           /* a path as folder */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\nfolder .A\n"
    "folder .B\nrcpt pending  <b@x>\n\n",                               /* folder twice */
    "",
    "\n\n",
    "clearmta-queue 1\n\n",                                              /* nothing required */
    "clearmta-queue 2\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x>\n\n",                                           /* unknown version */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n\n", /* no rcpt */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x>\n",                                             /* no blank line */
    "clearmta-queue 1\nid 0190a1b2c3d4e5f6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x>\n\n",                                           /* lowercase id */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\n"
    "sender <>\nrcpt pending  <b@x>\n\n",                                /* duplicate key */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\nfoo bar\n"
    "rcpt pending  <b@x>\n\n",                                           /* unknown key */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <a\\x0D\\x0Ab@x>\n"
    "rcpt pending  <b@x>\n\n",                                           /* CR LF in sender */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x> local=..\n\n",                                  /* traversal */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x> local=a\\x2Fb\n\n",                             /* escaped '/' */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending <b@x>\n\n",                                            /* state too narrow */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pendingX <b@x>\n\n",                                           /* unknown state */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x> \n\n",                                          /* trailing space */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x>  local=b\n\n",                                  /* double space */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x> local=b local=c\n\n",                           /* duplicate option */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x> notify=never,success\n\n",                      /* NEVER + other */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x> notify=success,success\n\n",
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x> notify=\n\n",
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x> notify=success,\n\n",
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <>\n\n",                                              /* empty recipient */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  b@x\n\n",                                             /* no brackets */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x\\x00>\n\n",                                      /* escaped NUL */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x\\x4>\n\n",                                       /* short escape */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x\\>\n\n",
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x\\y41>\n\n",
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\nhelo a\tb\n"
    "rcpt pending  <b@x>\n\n",                                           /* raw control byte */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\nhelo a b\n"
    "rcpt pending  <b@x>\n\n",                                           /* raw space */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 2147483649\nsender <>\n"
    "rcpt pending  <b@x>\n\n",                                           /* size over bound */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 99999999999999999999\nsize 0\n"
    "sender <>\nrcpt pending  <b@x>\n\n",                                /* overflow */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival -1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x>\n\n",
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\nret none\n"
    "rcpt pending  <b@x>\n\n",
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\nsmtputf8 no\n"
    "rcpt pending  <b@x>\n\n",
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n"
    "rcpt pending  <b@x>\n\nrcpt pending  <c@x>\n\n",                    /* two blank lines */
    "rcpt pending  <b@x>\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\n\n", /* no magic */
    "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 1\nsize 0\nsender <>\nrcpt\n"
    "rcpt pending  <b@x>\n\n",
};

static void test_corrupt_headers(void **state)
{
    (void)state;
    struct store_qf qf;
    for (size_t i = 0; i < sizeof corrupt_headers / sizeof corrupt_headers[0]; i++) {
        const char *h = corrupt_headers[i];
        if (store_qf_parse(h, strlen(h), &qf) != STORE_ERR_CORRUPT) {
            print_error("accepted corrupt header %zu:\n%s", i, h);
            fail();
        }
    }
}

static void test_hand_edited_states(void **state)
{
    (void)state;
    const char *h = "clearmta-queue 1\nid 0190A1B2C3D4E5F6\narrival 5\nsize 7\nsender <>\n"
                    "rcpt sent     <a@x> local=a\nrcpt bounced  <b@y>\nrcpt deferred <c@z>\n"
                    "rcpt pending  <d@x> local=d\n\n";
    struct store_qf qf;
    assert_int_equal(store_qf_parse(h, strlen(h), &qf), STORE_OK);
    assert_int_equal(qf.size, 7);
    assert_int_equal(qf.env.n_rcpts, 4);
    assert_int_equal(qf.state[0], STORE_RCPT_SENT);
    assert_int_equal(qf.state[1], STORE_RCPT_BOUNCED);
    assert_int_equal(qf.state[2], STORE_RCPT_DEFERRED);
    assert_int_equal(qf.state[3], STORE_RCPT_PENDING);
    assert_string_equal(qf.env.sender, "");
    store_qf_free(&qf);
}

static int write_file(char *path, const char *data, size_t n)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    return fd;
}

static void test_read_and_set_state(void **state)
{
    (void)state;
    struct store_rcpt r[] = {{.address = "bob@example.test", .local_user = "bob"},
                             {.address = "carol@remote.example"}};
    struct store_envelope env = base_env(r, 2);
    char *hdr, path[] = "/tmp/clearmta-qf-XXXXXX";
    size_t len, off;
    assert_int_equal(store_qf_format(&env, ID, &hdr, &len, &off), STORE_OK);
    store_qf_size_digits(5, hdr + off);
    int fd = write_file(path, hdr, len);
    assert_int_equal(write(fd, "Hi\r\n.", 5), 5);

    struct store_qf qf;
    assert_int_equal(store_qf_read(fd, &qf), STORE_OK);
    assert_int_equal(qf.size, 5);
    assert_int_equal(qf.header_len, len);
    assert_int_equal(store_qf_set_state(fd, qf.state_off[0], STORE_RCPT_SENT), STORE_OK);
    assert_int_equal(store_qf_set_state(fd, qf.state_off[1], STORE_RCPT_DEFERRED), STORE_OK);
    uint64_t off1 = qf.state_off[1];
    store_qf_free(&qf);

    assert_int_equal(store_qf_read(fd, &qf), STORE_OK);
    assert_int_equal(qf.state[0], STORE_RCPT_SENT);
    assert_int_equal(qf.state[1], STORE_RCPT_DEFERRED);
    store_qf_free(&qf);
    assert_int_equal(store_qf_set_state(fd, off1, STORE_RCPT_PENDING), STORE_OK);
    assert_int_equal(store_qf_read(fd, &qf), STORE_OK);
    assert_int_equal(qf.state[1], STORE_RCPT_PENDING);
    store_qf_free(&qf);

    /* One byte missing or one too many: the file is not what its header says. */
    assert_int_equal(ftruncate(fd, (off_t)(len + 4)), 0);
    assert_int_equal(store_qf_read(fd, &qf), STORE_ERR_CORRUPT);
    assert_int_equal(ftruncate(fd, (off_t)(len + 6)), 0);
    assert_int_equal(store_qf_read(fd, &qf), STORE_ERR_CORRUPT);
    /* Cut inside the header. */
    assert_int_equal(ftruncate(fd, (off_t)(len - 1)), 0);
    assert_int_equal(store_qf_read(fd, &qf), STORE_ERR_CORRUPT);
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(store_qf_read(fd, &qf), STORE_ERR_CORRUPT);
    close(fd);
    unlink(path);
    free(hdr);
}

/* A header far larger than the first read (many recipients) is read in growing steps. */
static void test_read_large_header(void **state)
{
    (void)state;
    size_t n = 2000;
    struct store_rcpt *r = calloc(n, sizeof *r);
    assert_non_null(r);
    for (size_t i = 0; i < n; i++)
        r[i] = (struct store_rcpt){.address = "someone.with.a.long.name@remote.example",
                                   .orcpt = "rfc822;someone.with.a.long.name@remote.example"};
    struct store_envelope env = base_env(r, n);
    char *hdr, path[] = "/tmp/clearmta-qf-XXXXXX";
    size_t len, off;
    assert_int_equal(store_qf_format(&env, ID, &hdr, &len, &off), STORE_OK);
    assert_true(len > 64 * 1024);
    int fd = write_file(path, hdr, len);
    struct store_qf qf;
    assert_int_equal(store_qf_read(fd, &qf), STORE_OK);
    assert_int_equal(qf.env.n_rcpts, n);
    store_qf_free(&qf);
    close(fd);
    unlink(path);
    free(hdr);
    free(r);
}

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(store_rcpt_state_name(STORE_RCPT_PENDING), "pending");
    assert_string_equal(store_rcpt_state_name(STORE_RCPT_DEFERRED), "deferred");
    assert_string_equal(store_rcpt_state_name((enum store_rcpt_state)99), "unknown");
    char d[STORE_QF_SIZE_DIGITS];
    store_qf_size_digits(2147483648u, d);
    assert_memory_equal(d, "002147483648", sizeof d);
}

static void test_valid_id(void **state)
{
    (void)state;
    assert_true(store_qf_valid_id("0123456789ABCDEF", 16));
    assert_false(store_qf_valid_id("0123456789ABCDE", 15));
    assert_false(store_qf_valid_id("0123456789ABCDEG", 16));
    assert_false(store_qf_valid_id("0123456789abcdef", 16));
    assert_false(store_qf_valid_id("../3456789ABCDEF", 16));
}

static uint64_t hash_split(const char *p, size_t n, size_t step)
{
    struct store_qf_hash hs;
    store_qf_hash_init(&hs);
    for (size_t i = 0; i < n; i += step)
        store_qf_hash_update(&hs, p + i, n - i < step ? n - i : step);
    return store_qf_hash_final(&hs);
}

/* Streaming in any chunking gives the one-shot value; zero padding and lengths are told apart. */
static void test_hash(void **state)
{
    (void)state;
    char text[100];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)('a' + i % 26);
    uint64_t whole = hash_split(text, sizeof text, sizeof text);
    for (size_t step = 1; step < 20; step++)
        assert_true(hash_split(text, sizeof text, step) == whole);
    assert_true(hash_split("ab", 2, 2) != hash_split("ab\0", 3, 3));
    assert_true(hash_split("", 0, 1) != 0);
    text[57] ^= 1;
    assert_true(hash_split(text, sizeof text, 7) != whole);
}

static int verify_file(const char *hdr, size_t hlen, const char *body, size_t n)
{
    char path[] = "/tmp/clearmta-qfv-XXXXXX";
    int fd = write_file(path, hdr, hlen);
    assert_int_equal(write(fd, body, n), (ssize_t)n);
    enum store_err err;
    int st = (int)store_qf_verify(fd, &err);
    assert_int_equal(err, STORE_OK);
    close(fd);
    unlink(path);
    return st;
}

/* The commit marker: sealed → complete; truncated, wrong check, unsealed → not acknowledged. */
static void test_verify(void **state)
{
    (void)state;
    struct store_rcpt r = {.address = "bob@example.test", .local_user = "bob"};
    struct store_envelope env = base_env(&r, 1);
    char *hdr, seal[STORE_QF_SEAL_LEN];
    size_t len, off;
    const char body[] = "Subject: hi\r\n\r\nbody\r\n";
    size_t n = sizeof body - 1;
    assert_int_equal(store_qf_format(&env, ID, &hdr, &len, &off), STORE_OK);
    assert_int_equal(verify_file(hdr, len, body, n), STORE_QF_UNSEALED); /* size 0 */
    assert_int_equal(verify_file(hdr, len, "", 0), STORE_QF_UNSEALED);   /* check 0 */
    uint64_t h = hash_split(body, n, n);
    store_qf_seal(n, h, seal);
    memcpy(hdr + off, seal, sizeof seal);
    assert_int_equal(verify_file(hdr, len, body, n), STORE_QF_COMPLETE);
    assert_int_equal(verify_file(hdr, len, body, n - 3), STORE_QF_UNSEALED);
    char torn[sizeof body];
    memcpy(torn, body, sizeof torn);
    memset(torn + 8, 0, 8);
    assert_int_equal(verify_file(hdr, len, torn, n), STORE_QF_UNSEALED);
    store_qf_seal(n, h ^ 0x100, seal);
    memcpy(hdr + off, seal, sizeof seal);
    assert_int_equal(verify_file(hdr, len, body, n), STORE_QF_UNSEALED);
    hdr[0] = 'X'; /* not a queue file: left for an administrator */
    assert_int_equal(verify_file(hdr, len, body, n), STORE_QF_UNREADABLE);
    assert_int_equal(verify_file("", 0, "", 0), STORE_QF_UNSEALED);
    free(hdr);
}

/* A header that is not whole on disk (the file ends, or reads zeros, before its blank line)
 * was never acknowledged; a whole header that does not parse is left for an administrator. */
static void test_verify_cut_header(void **state)
{
    (void)state;
    struct store_rcpt r[500];
    char names[500][32];
    for (size_t i = 0; i < 500; i++) {
        snprintf(names[i], sizeof names[i], "user%zu@example.test", i);
        r[i] = (struct store_rcpt){.address = names[i]};
    }
    struct store_envelope env = base_env(r, 500);
    char *hdr;
    size_t len, off;
    assert_int_equal(store_qf_format(&env, ID, &hdr, &len, &off), STORE_OK);
    assert_true(len > 3 * 4096); /* read in several steps */
    assert_int_equal(verify_file(hdr, 60, "", 0), STORE_QF_UNSEALED);
    assert_int_equal(verify_file(hdr, 4096, "", 0), STORE_QF_UNSEALED);
    assert_int_equal(verify_file(hdr, len - 1, "", 0), STORE_QF_UNSEALED); /* no blank line */
    char *copy = malloc(len);
    assert_non_null(copy);
    memset(copy, 0, len); /* nothing of it reached the disk but its length */
    assert_int_equal(verify_file(copy, len, "body", 4), STORE_QF_UNSEALED);
    memcpy(copy, hdr, len);
    memset(copy, 0, 4096); /* the first page never written */
    assert_int_equal(verify_file(copy, len, "body", 4), STORE_QF_UNSEALED);
    memcpy(copy, hdr, len);
    memset(copy + 8192, 0, 4096); /* a page in the middle of the header */
    assert_int_equal(verify_file(copy, len, "body", 4), STORE_QF_UNSEALED);
    memcpy(copy, hdr, len);
    copy[len - 3] = '\0'; /* the last byte before the blank line */
    assert_int_equal(verify_file(copy, len, "body", 4), STORE_QF_UNSEALED);
    memcpy(copy, hdr, len);
    memcpy(copy + 8192, "rcpt\x01", 5); /* whole, but not a queue file's bytes */
    assert_int_equal(verify_file(copy, len, "body", 4), STORE_QF_UNREADABLE);
    assert_int_equal(verify_file("clearmta-queue 1\nbogus\n\n", 25, "x", 1),
                     STORE_QF_UNREADABLE);
    free(copy);
    free(hdr);
}

/* Fuzz find: a 19-digit arrival once overflowed the formatting buffer and cut the header. */
static void test_large_arrival_round_trips(void **state)
{
    (void)state;
    struct store_rcpt r = {.address = "b@x"};
    struct store_envelope env = base_env(&r, 1);
    env.arrival = INT64_MAX;
    char *hdr;
    size_t len, off, hlen;
    struct store_qf qf;
    assert_int_equal(store_qf_format(&env, ID, &hdr, &len, &off), STORE_OK);
    assert_true(store_qf_header_end(hdr, len, &hlen));
    assert_int_equal(hlen, len);
    assert_int_equal(store_qf_parse(hdr, len, &qf), STORE_OK);
    assert_true(qf.env.arrival == INT64_MAX);
    store_qf_free(&qf);
    free(hdr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_large_arrival_round_trips),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_verify_cut_header),
        cmocka_unit_test(test_round_trip_minimal),
        cmocka_unit_test(test_round_trip_full),
        cmocka_unit_test(test_folder_names),
        cmocka_unit_test(test_round_trip_empty_values),
        cmocka_unit_test(test_hostile_envelopes_rejected),
        cmocka_unit_test(test_field_length_limit),
        cmocka_unit_test(test_many_recipients),
        cmocka_unit_test(test_corrupt_headers),
        cmocka_unit_test(test_hand_edited_states),
        cmocka_unit_test(test_read_and_set_state),
        cmocka_unit_test(test_read_large_header),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_valid_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
