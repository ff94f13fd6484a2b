/* tests/unit/test_deliver_destination.c — adaptive per-destination state as sequences of
 * events (replies, connect failures, time) and the state after each, plus the bounded table. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "deliver/destination.h"

/* 2024-05-07 11:59:03 UTC: a 60 s backoff ends at 12:00:03. */
static const int64_t T0 = 1715083143;

static struct reply_parsed reply(const char *raw)
{
    struct reply_parsed r;
    size_t used = 0;
    assert_int_equal(reply_parse(raw, strlen(raw), &r, &used), REPLY_PARSE_OK);
    return r;
}

static enum deliver_signal feed(struct deliver_destination *d, const char *raw,
                                unsigned conn_messages, int64_t now)
{
    struct reply_parsed r = reply(raw);
    return deliver_destination_on_reply(d, &r, conn_messages, now);
}

static struct deliver_destination fresh(const struct deliver_destination_config *cfg)
{
    struct deliver_destination d;
    assert_int_equal(deliver_destination_init(&d, "Example.ORG", cfg), DELIVER_DESTINATION_OK);
    return d;
}

static void test_init(void **state)
{
    (void)state;
    struct deliver_destination d = fresh(&deliver_destination_defaults);
    assert_string_equal(d.name, "example.org");
    assert_int_equal(d.limit, 5);
    assert_int_equal(d.cfg.concurrency_max, 20);
    assert_int_equal(d.in_use, 0);
    assert_int_equal(d.per_conn, 0);
    assert_int_equal(d.backoff_until, 0);

    assert_int_equal(deliver_destination_init(&d, "", &deliver_destination_defaults),
                     DELIVER_DESTINATION_ERR_NAME);
    assert_int_equal(deliver_destination_init(&d, NULL, &deliver_destination_defaults),
                     DELIVER_DESTINATION_ERR_NAME);
    assert_int_equal(deliver_destination_init(&d, "a b", &deliver_destination_defaults),
                     DELIVER_DESTINATION_ERR_NAME);
    assert_int_equal(deliver_destination_init(&d, "a\r\nb", &deliver_destination_defaults),
                     DELIVER_DESTINATION_ERR_NAME);
    char name[DELIVER_DESTINATION_NAME_MAX + 2];
    memset(name, 'a', sizeof name);
    name[DELIVER_DESTINATION_NAME_MAX] = '\0'; /* at the limit */
    assert_int_equal(deliver_destination_init(&d, name, &deliver_destination_defaults),
                     DELIVER_DESTINATION_OK);
    name[DELIVER_DESTINATION_NAME_MAX] = 'a'; /* one over */
    name[DELIVER_DESTINATION_NAME_MAX + 1] = '\0';
    assert_int_equal(deliver_destination_init(&d, name, &deliver_destination_defaults),
                     DELIVER_DESTINATION_ERR_NAME);
    assert_int_equal(deliver_destination_init(&d, "[2001:db8::1]:2525",
                                              &deliver_destination_defaults),
                     DELIVER_DESTINATION_OK);

    struct deliver_destination_config bad = deliver_destination_defaults;
    bad.concurrency_start = 21;
    assert_int_equal(deliver_destination_init(&d, "x", &bad), DELIVER_DESTINATION_ERR_CONFIG);
    bad = deliver_destination_defaults;
    bad.grow_after = 0;
    assert_int_equal(deliver_destination_init(&d, "x", &bad), DELIVER_DESTINATION_ERR_CONFIG);
    bad = deliver_destination_defaults;
    bad.backoff_max_s = 10;
    assert_int_equal(deliver_destination_init(&d, "x", &bad), DELIVER_DESTINATION_ERR_CONFIG);
    assert_int_equal(deliver_destination_init(&d, "x", NULL), DELIVER_DESTINATION_ERR_CONFIG);
}

static void test_acquire_release(void **state)
{
    (void)state;
    struct deliver_destination d = fresh(&deliver_destination_defaults);
    for (int i = 0; i < 5; i++)
        assert_true(deliver_destination_acquire(&d, T0));
    assert_false(deliver_destination_may_connect(&d, T0));
    assert_false(deliver_destination_acquire(&d, T0));
    assert_int_equal(d.in_use, 5);
    deliver_destination_release(&d);
    assert_true(deliver_destination_may_connect(&d, T0));
    for (int i = 0; i < 10; i++)
        deliver_destination_release(&d); /* never below zero */
    assert_int_equal(d.in_use, 0);
    assert_true(deliver_destination_may_send(&d, 1000000)); /* unlimited */
}

static void test_421_halves(void **state)
{
    (void)state;
    struct deliver_destination d = fresh(&deliver_destination_defaults);
    assert_int_equal(feed(&d, "421 4.7.0 Too many connections from your IP\r\n", 0, T0),
                     DELIVER_SIGNAL_THROTTLE);
    assert_int_equal(d.limit, 2);
    assert_int_equal(d.backoff_until, T0 + 60);
    assert_string_equal(d.why, "421 4.7.0 Too many connections from your IP");
    assert_false(deliver_destination_may_connect(&d, T0 + 59));
    assert_true(deliver_destination_may_connect(&d, T0 + 60));
    /* 421 whatever its words: the server closes the connection */
    assert_int_equal(feed(&d, "421 mx.example.org Service not available\r\n", 3, T0 + 60),
                     DELIVER_SIGNAL_THROTTLE);
    assert_int_equal(d.limit, 1);
    assert_int_equal(d.backoff_until, T0 + 60 + 120);
    assert_int_equal(d.per_conn, 0); /* no volume words: no per-connection cap */
    assert_int_equal(feed(&d, "421 4.3.2 System shutting down\r\n", 0, T0 + 200),
                     DELIVER_SIGNAL_THROTTLE);
    assert_int_equal(d.limit, 1); /* never below one */
    assert_int_equal(d.backoff_until, T0 + 200 + 240);
}

static void test_rate_limit_replies(void **state)
{
    (void)state;
    const char *throttling[] = {
        "451 4.7.1 Rate limited, try again later\r\n",
        "450 4.7.1 Too many messages from your domain, slow down\r\n",
        "452 4.3.1 Insufficient system storage\r\n",
        "550 5.4.5 Daily user sending quota exceeded\r\n",
        "452 4.7.0 Too many concurrent SMTP connections\r\n",
        "451-4.7.28 Our system has detected an unusual rate of\r\n451 4.7.28 mail: throttled\r\n",
    };
    for (size_t i = 0; i < sizeof throttling / sizeof throttling[0]; i++) {
        struct deliver_destination d = fresh(&deliver_destination_defaults);
        assert_int_equal(feed(&d, throttling[i], 0, T0), DELIVER_SIGNAL_THROTTLE);
        assert_int_equal(d.limit, 2);
        assert_int_equal(d.backoff_until, T0 + 60);
    }
    const char *neutral[] = {
        "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown\r\n",
        "452 4.5.3 Too many recipients\r\n",       /* one transaction's limit */
        "452 Too many recipients received\r\n",    /* RFC 5321 §4.5.3.1.10 */
        "552 5.2.3 Message exceeds the recipient's size limit\r\n",
        "552 5.3.4 Message size exceeds fixed limit\r\n",
        "554 5.7.1 Message rejected as spam\r\n",
        "450 4.2.0 Mailbox busy\r\n",
        "354 End data with <CR><LF>.<CR><LF>\r\n",
    };
    for (size_t i = 0; i < sizeof neutral / sizeof neutral[0]; i++) {
        struct deliver_destination d = fresh(&deliver_destination_defaults);
        assert_int_equal(feed(&d, neutral[i], 4, T0), DELIVER_SIGNAL_NONE);
        assert_int_equal(d.limit, 5);
        assert_int_equal(d.backoff_until, 0);
        assert_int_equal(d.per_conn, 0);
    }
}

static void test_growth(void **state)
{
    (void)state;
    struct deliver_destination d = fresh(&deliver_destination_defaults);
    for (int i = 0; i < 9; i++)
        assert_int_equal(feed(&d, "250 2.0.0 Ok: queued as X\r\n", (unsigned)i, T0),
                         DELIVER_SIGNAL_SUCCESS);
    assert_int_equal(d.limit, 5);
    feed(&d, "250 2.0.0 Ok\r\n", 9, T0);
    assert_int_equal(d.limit, 6); /* +1 per 10 delivered */
    for (int i = 0; i < 1000; i++)
        feed(&d, "250 ok\r\n", 0, T0);
    assert_int_equal(d.limit, 20); /* capped at the maximum */

    /* after a halving, growth starts counting again */
    feed(&d, "421 4.7.0 too many connections\r\n", 0, T0);
    assert_int_equal(d.limit, 10);
    for (int i = 0; i < 25; i++)
        feed(&d, "250 ok\r\n", 0, T0);
    assert_int_equal(d.limit, 12);
}

static void test_connect_failures_back_off(void **state)
{
    (void)state;
    struct deliver_destination d = fresh(&deliver_destination_defaults);
    const int64_t waits[] = {60, 120, 240, 480, 960, 960, 960};
    int64_t now = T0;
    for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++) {
        deliver_destination_on_connect_failed(&d, "Connection refused", now);
        assert_int_equal(d.backoff_until, now + waits[i]);
        assert_int_equal(d.failures, i + 1);
        assert_false(deliver_destination_may_connect(&d, now + waits[i] - 1));
        now += waits[i];
        assert_true(deliver_destination_may_connect(&d, now));
    }
    assert_int_equal(d.limit, 1);
    assert_string_equal(d.why, "connect failed: Connection refused");
    /* a delivered message resets the doubling */
    feed(&d, "250 ok\r\n", 0, now);
    assert_int_equal(d.failures, 0);
    deliver_destination_on_connect_failed(&d, NULL, now);
    assert_int_equal(d.backoff_until, now + 60);
    assert_string_equal(d.why, "connect failed");

    /* the fast settings scale the same sequence down */
    struct deliver_destination f = fresh(&deliver_destination_fast);
    const int64_t fast[] = {1, 2, 4, 8, 8};
    for (size_t i = 0; i < 5; i++) {
        deliver_destination_on_connect_failed(&f, "timeout", T0);
        assert_int_equal(f.backoff_until, T0 + fast[i]);
    }
}

static void test_too_many_messages_caps_connection(void **state)
{
    (void)state;
    struct deliver_destination d = fresh(&deliver_destination_defaults);
    assert_int_equal(feed(&d, "421 4.7.0 Too many messages, closing connection\r\n", 10, T0),
                     DELIVER_SIGNAL_THROTTLE);
    assert_int_equal(d.per_conn, 10);
    assert_true(deliver_destination_may_send(&d, 9));
    assert_false(deliver_destination_may_send(&d, 10));
    /* a lower count lowers the cap; a higher one keeps it */
    feed(&d, "451 4.7.1 Rate limit exceeded\r\n", 4, T0 + 100);
    assert_int_equal(d.per_conn, 4);
    feed(&d, "451 4.7.1 Rate limit exceeded\r\n", 8, T0 + 400);
    assert_int_equal(d.per_conn, 4);
    /* refused at the first message: no cap can be learned */
    struct deliver_destination e = fresh(&deliver_destination_defaults);
    feed(&e, "451 4.7.1 Rate limit exceeded\r\n", 0, T0);
    assert_int_equal(e.per_conn, 0);
    /* a configured cap is the starting point */
    struct deliver_destination_config cfg = deliver_destination_defaults;
    cfg.messages_per_connection = 50;
    struct deliver_destination c = fresh(&cfg);
    assert_int_equal(c.per_conn, 50);
    feed(&c, "421 4.7.0 Too many messages, closing connection\r\n", 60, T0);
    assert_int_equal(c.per_conn, 50);
    feed(&c, "421 4.7.0 Too many messages, closing connection\r\n", 20, T0);
    assert_int_equal(c.per_conn, 20);
}

static void test_describe(void **state)
{
    (void)state;
    struct deliver_destination d = fresh(&deliver_destination_defaults);
    char buf[512];
    size_t n = deliver_destination_describe(&d, T0, buf, sizeof buf);
    assert_string_equal(buf, "example.org: concurrency 5/20 (0 open), messages per connection "
                             "unlimited");
    assert_int_equal(n, strlen(buf));

    assert_true(deliver_destination_acquire(&d, T0));
    feed(&d, "421 4.7.0 Too many connections\r\n", 10, T0);
    deliver_destination_describe(&d, T0, buf, sizeof buf);
    assert_string_equal(buf, "example.org: concurrency 2/20 (1 open), backoff until 12:00:03 "
                             "(421 4.7.0 Too many connections), messages per connection 10");
    /* the backoff is shown only while it runs */
    deliver_destination_describe(&d, T0 + 60, buf, sizeof buf);
    assert_string_equal(buf, "example.org: concurrency 2/20 (1 open), messages per connection 10");

    /* truncation returns the length needed, like snprintf */
    char small[16];
    size_t need = deliver_destination_describe(&d, T0 + 60, small, sizeof small);
    assert_int_equal(need, strlen(buf));
    assert_string_equal(small, "example.org: co");
    assert_int_equal(deliver_destination_describe(&d, T0 + 60, NULL, 0), need);
}

static void test_hostile_reply_text(void **state)
{
    (void)state;
    struct deliver_destination d = fresh(&deliver_destination_defaults);
    struct reply_parsed r = reply("421-4.7.0 Too many connections\x1b[2J\r\n421 4.7.0 second\r\n");
    assert_int_equal(deliver_destination_on_reply(&d, &r, 0, T0), DELIVER_SIGNAL_THROTTLE);
    assert_null(strchr(d.why, '\x1b'));
    assert_null(strchr(d.why, '\n'));
    assert_string_equal(d.why, "421 4.7.0 Too many connections [2J");
    /* a reply far longer than the display keeps the display bounded */
    char raw[600];
    memcpy(raw, "421 4.7.0 ", 10);
    memset(raw + 10, 'x', 490);
    memcpy(raw + 500, "\r\n", 3);
    feed(&d, raw, 0, T0);
    assert_int_equal(strlen(d.why), DELIVER_DESTINATION_WHY_MAX);
}

static void test_table(void **state)
{
    (void)state;
    struct deliver_destination_table *t = NULL;
    assert_int_equal(deliver_destination_table_new(&deliver_destination_defaults, 0, &t),
                     DELIVER_DESTINATION_ERR_CONFIG);
    assert_int_equal(deliver_destination_table_new(&deliver_destination_defaults,
                                                   DELIVER_DESTINATION_TABLE_MAX + 1, &t),
                     DELIVER_DESTINATION_ERR_CONFIG);
    assert_int_equal(deliver_destination_table_new(&deliver_destination_defaults, 3, &t),
                     DELIVER_DESTINATION_OK);
    struct deliver_destination *a, *b, *c, *x;
    assert_int_equal(deliver_destination_table_get(t, "a.example", T0, &a),
                     DELIVER_DESTINATION_OK);
    assert_int_equal(deliver_destination_table_get(t, "B.example", T0 + 1, &b),
                     DELIVER_DESTINATION_OK);
    assert_int_equal(deliver_destination_table_get(t, "c.example", T0 + 2, &c),
                     DELIVER_DESTINATION_OK);
    assert_int_equal(deliver_destination_table_count(t), 3);
    assert_int_equal(deliver_destination_table_get(t, "A.EXAMPLE", T0 + 3, &x),
                     DELIVER_DESTINATION_OK);
    assert_ptr_equal(x, a); /* names are case-insensitive */
    assert_ptr_equal(deliver_destination_table_find(t, "b.example"), b);
    assert_null(deliver_destination_table_find(t, "d.example"));
    assert_int_equal(deliver_destination_table_get(t, "bad name", T0, &x),
                     DELIVER_DESTINATION_ERR_NAME);
    assert_null(x);

    /* iteration sees each once */
    size_t cursor = 0, seen = 0;
    const struct deliver_destination *it;
    while ((it = deliver_destination_table_next(t, &cursor)) != NULL)
        seen++;
    assert_int_equal(seen, 3);

    /* full: the least recently used idle destination (b; a was used at T0+3) makes room */
    assert_true(deliver_destination_acquire(c, T0));
    assert_int_equal(deliver_destination_table_get(t, "d.example", T0 + 4, &x),
                     DELIVER_DESTINATION_OK);
    assert_null(deliver_destination_table_find(t, "b.example"));
    assert_non_null(deliver_destination_table_find(t, "a.example"));
    assert_non_null(deliver_destination_table_find(t, "c.example"));
    assert_int_equal(deliver_destination_table_count(t), 3);

    /* nothing idle: c has a connection, a and d back off */
    deliver_destination_on_connect_failed(deliver_destination_table_find(t, "a.example"), NULL,
                                          T0 + 5);
    deliver_destination_on_connect_failed(deliver_destination_table_find(t, "d.example"), NULL,
                                          T0 + 5);
    assert_int_equal(deliver_destination_table_get(t, "e.example", T0 + 6, &x),
                     DELIVER_DESTINATION_ERR_FULL);
    /* once a backoff is over, that destination can be evicted */
    assert_int_equal(deliver_destination_table_get(t, "e.example", T0 + 65, &x),
                     DELIVER_DESTINATION_OK);
    assert_string_equal(x->name, "e.example");
    assert_int_equal(x->limit, 5); /* a new destination starts afresh */
    assert_int_equal(deliver_destination_table_count(t), 3);
    /* a destination with deliveries waiting for it stays, though it holds no connection */
    x->waiting = 1;
    assert_int_equal(deliver_destination_table_get(t, "f.example", T0 + 66, &x),
                     DELIVER_DESTINATION_OK);
    assert_int_equal(deliver_destination_table_get(t, "g.example", T0 + 67, &x),
                     DELIVER_DESTINATION_OK);
    assert_non_null(deliver_destination_table_find(t, "e.example"));
    assert_null(deliver_destination_table_find(t, "f.example"));
    deliver_destination_table_free(t);
    deliver_destination_table_free(NULL);
}

static void test_table_many(void **state)
{
    (void)state;
    struct deliver_destination_table *t = NULL;
    assert_int_equal(deliver_destination_table_new(&deliver_destination_defaults, 1000, &t),
                     DELIVER_DESTINATION_OK);
    char name[64];
    for (int i = 0; i < 3000; i++) {
        struct deliver_destination *d;
        snprintf(name, sizeof name, "host%d.example:25", i);
        assert_int_equal(deliver_destination_table_get(t, name, T0 + i, &d),
                         DELIVER_DESTINATION_OK);
        assert_string_equal(d->name, name);
    }
    assert_int_equal(deliver_destination_table_count(t), 1000);
    for (int i = 2000; i < 3000; i++) {
        snprintf(name, sizeof name, "HOST%d.example:25", i);
        assert_non_null(deliver_destination_table_find(t, name));
    }
    snprintf(name, sizeof name, "host%d.example:25", 1999);
    assert_null(deliver_destination_table_find(t, name));
    deliver_destination_table_free(t);
}

static void test_strerror(void **state)
{
    (void)state;
    for (int e = DELIVER_DESTINATION_OK; e <= DELIVER_DESTINATION_ERR_NOMEM; e++)
        assert_non_null(deliver_destination_strerror((enum deliver_destination_err)e));
    assert_string_equal(deliver_destination_strerror((enum deliver_destination_err)77),
                        "unknown destination error");
}

/* The outage and its end, as an operator sees it: connections refused back the destination
 * off and give their slots back; a flush ends the backoff at once without forgetting the
 * limit; the first connection that works resets the failures; every slot comes back. */
static void test_backoff_flush_success_slots(void **state)
{
    (void)state;
    struct deliver_destination d = fresh(&deliver_destination_defaults);
    int64_t now = T0;
    for (int i = 0; i < 3; i++) /* three connections at once ... */
        assert_true(deliver_destination_acquire(&d, now));
    assert_int_equal(d.in_use, 3);
    for (int i = 0; i < 3; i++) { /* ... all refused */
        deliver_destination_on_connect_failed(&d, "Connection refused", now);
        deliver_destination_release(&d);
    }
    assert_int_equal(d.in_use, 0);
    assert_int_equal(d.failures, 3);
    assert_int_equal(d.limit, 1);
    assert_true(d.backoff_until > now);
    assert_false(deliver_destination_may_connect(&d, now + 60));
    assert_string_equal(d.why, "connect failed: Connection refused");

    deliver_destination_resume(&d); /* queue flush */
    assert_int_equal(d.backoff_until, 0);
    assert_string_equal(d.why, "");
    assert_int_equal(d.limit, 1); /* what it learned stays */
    assert_true(deliver_destination_acquire(&d, now + 1));
    assert_false(deliver_destination_acquire(&d, now + 1)); /* the limit holds after a flush */
    deliver_destination_on_connected(&d);
    assert_int_equal(d.failures, 0);
    assert_int_equal(d.limit, 5); /* an outage is not load: back to the starting concurrency */
    assert_int_equal(feed(&d, "250 2.0.0 Ok\r\n", 0, now + 1), DELIVER_SIGNAL_SUCCESS);
    deliver_destination_release(&d);
    assert_int_equal(d.in_use, 0);
    assert_true(deliver_destination_may_connect(&d, now + 1));

    /* A backoff from a failure after the flush is not lifted by the flush before it, and a
     * working connection ends it. */
    deliver_destination_on_connect_failed(&d, "Connection refused", now + 2);
    assert_false(deliver_destination_may_connect(&d, now + 3));
    deliver_destination_on_connected(&d);
    assert_true(deliver_destination_may_connect(&d, now + 3));

    /* Load is not an outage: a throttled destination that answers keeps its lowered limit. */
    struct deliver_destination t = fresh(&deliver_destination_defaults);
    feed(&t, "421 4.7.0 Too many connections\r\n", 0, now);
    unsigned lowered = t.limit;
    assert_true(lowered < t.cfg.concurrency_start);
    deliver_destination_on_connected(&t);
    assert_int_equal(t.limit, lowered);

    /* A backoff ends by itself when its time is up. */
    deliver_destination_on_connect_failed(&d, NULL, now + 4);
    assert_false(deliver_destination_may_connect(&d, d.backoff_until - 1));
    assert_true(deliver_destination_may_connect(&d, d.backoff_until));
}

/* queue flush with no target: every destination of the table resumes. */
static void test_table_resume_all(void **state)
{
    (void)state;
    struct deliver_destination_table *t = NULL;
    assert_int_equal(deliver_destination_table_new(&deliver_destination_defaults, 4, &t),
                     DELIVER_DESTINATION_OK);
    struct deliver_destination *a = NULL, *b = NULL;
    assert_int_equal(deliver_destination_table_get(t, "a.example", T0, &a),
                     DELIVER_DESTINATION_OK);
    assert_int_equal(deliver_destination_table_get(t, "b.example", T0, &b),
                     DELIVER_DESTINATION_OK);
    deliver_destination_on_connect_failed(a, "timeout", T0);
    deliver_destination_on_connect_failed(b, "timeout", T0);
    deliver_destination_table_resume_all(t);
    assert_true(deliver_destination_may_connect(a, T0));
    assert_true(deliver_destination_may_connect(b, T0));
    deliver_destination_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_acquire_release),
        cmocka_unit_test(test_421_halves),
        cmocka_unit_test(test_rate_limit_replies),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_connect_failures_back_off),
        cmocka_unit_test(test_too_many_messages_caps_connection),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_hostile_reply_text),
        cmocka_unit_test(test_backoff_flush_success_slots),
        cmocka_unit_test(test_table_resume_all),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_table_many),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
