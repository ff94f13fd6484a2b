/* tests/unit/test_auth_dmarc.c — DMARC (auth/dmarc.c): record parsing (p=, sp=, adkim, aspf,
 * pct, unknown tags, invalid records), organizational domains from the public suffix list,
 * and the evaluation's look-ups, alignment and policy choice, of one author domain and of
 * several (the strictest failing policy). */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "auth/dmarc.h"

static void test_records(void **state)
{
    (void)state;
    struct auth_dmarc_record r;
    const char *ok = "v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=r; pct=50; "
                     "rua=mailto:a@example.com, mailto:b@example.com; x_new=1";
    assert_int_equal(auth_dmarc_record_parse(ok, strlen(ok), &r), AUTH_OK);
    assert_int_equal(r.p, AUTH_DMARC_P_QUARANTINE);
    assert_int_equal(r.sp, AUTH_DMARC_P_REJECT);
    assert_true(r.strict_dkim);
    assert_false(r.strict_spf);
    assert_int_equal(r.pct, 50);
    assert_string_equal(r.rua, "mailto:a@example.com,mailto:b@example.com");
    const char *bad[] = {"v=DMARC1", "v=DMARC1; p=maybe", "p=none; v=DMARC1", "v=DMARC2; p=none",
                         "v=DMARC1; p=none; p=reject", "v=DMARC1 p=none"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(auth_dmarc_record_parse(bad[i], strlen(bad[i]), &r), AUTH_ERR_SYNTAX);
    const char *odd = "v=DMARC1;p=none;sp=bogus;pct=900";
    assert_int_equal(auth_dmarc_record_parse(odd, strlen(odd), &r), AUTH_OK);
    assert_int_equal(r.sp, AUTH_DMARC_P_UNSET);
    assert_int_equal(r.pct, 100);
    assert_string_equal(auth_dmarc_policy_name(AUTH_DMARC_P_UNSET), "");
    assert_string_equal(auth_dmarc_result_name(AUTH_DMARC_TEMPERROR), "temperror");
}

static void test_org_domains(void **state)
{
    (void)state;
    char org[256];
    auth_dmarc_org_domain("a.b.example.co.uk", org, sizeof org);
    assert_string_equal(org, "example.co.uk");
    auth_dmarc_org_domain("Mail.Example.COM.", org, sizeof org);
    assert_string_equal(org, "example.com");
    auth_dmarc_org_domain("example.com", org, sizeof org);
    assert_string_equal(org, "example.com");
}

static enum auth_dmarc_result run(const char *from, const char *spf_domain, bool spf_pass,
                                  const char *dkim_domain, const char *at_from,
                                  const char *at_org, enum auth_dmarc_policy *policy)
{
    struct auth_dmarc_dkim dk = {dkim_domain, true};
    struct auth_dmarc *d =
        auth_dmarc_new(&from, 1, spf_domain, spf_pass, &dk, dkim_domain ? 1 : 0);
    const char *name;
    unsigned asked = 0;
    while (auth_dmarc_run(d, &name) == AUTH_DMARC_NEED) {
        const char *rec = asked++ == 0 ? at_from : at_org;
        size_t len = rec ? strlen(rec) : 0;
        auth_dmarc_answer(d, name, rec ? AUTH_DNS_OK : AUTH_DNS_NXDOMAIN, &rec, &len,
                          rec ? 1 : 0);
        assert_true(asked <= 2);
    }
    enum auth_dmarc_result r = auth_dmarc_result(d);
    *policy = auth_dmarc_policy(d);
    auth_dmarc_free(d);
    return r;
}

static void test_evaluation(void **state)
{
    (void)state;
    enum auth_dmarc_policy p;
    const char *rec = "v=DMARC1; p=reject; sp=quarantine";
    assert_int_equal(run("example.com", "example.com", true, NULL, rec, NULL, &p),
                     AUTH_DMARC_PASS);
    assert_int_equal(run("example.com", "bounce.example.com", true, NULL, rec, NULL, &p),
                     AUTH_DMARC_PASS);
    assert_int_equal(run("example.com", "example.com", false, "other.example", rec, NULL, &p),
                     AUTH_DMARC_FAIL);
    assert_int_equal(p, AUTH_DMARC_P_REJECT);
    assert_int_equal(run("mail.example.com", "x.example", true, "example.com", NULL, rec, &p),
                     AUTH_DMARC_PASS);
    assert_int_equal(run("mail.example.com", "x.example", false, NULL, NULL, rec, &p),
                     AUTH_DMARC_FAIL);
    assert_int_equal(p, AUTH_DMARC_P_QUARANTINE); /* sp= from the organizational domain */
    assert_int_equal(run("mail.example.com", "x.example", false, NULL, rec, NULL, &p),
                     AUTH_DMARC_FAIL);
    assert_int_equal(p, AUTH_DMARC_P_REJECT); /* its own record: p= */
    const char *strict = "v=DMARC1; p=none; aspf=s; adkim=s";
    assert_int_equal(run("example.com", "mail.example.com", true, "mail.example.com", strict,
                         NULL, &p), AUTH_DMARC_FAIL);
    assert_int_equal(run("example.com", "x.example", false, NULL, NULL, NULL, &p),
                     AUTH_DMARC_NONE);
    assert_int_equal(p, AUTH_DMARC_P_UNSET);
    assert_int_equal(run("", "x.example", true, NULL, NULL, NULL, &p), AUTH_DMARC_PERMERROR);
    const char *example = "example.com";
    struct auth_dmarc *d = auth_dmarc_new(&example, 1, "example.com", true, NULL, 0);
    const char *name;
    assert_int_equal(auth_dmarc_run(d, &name), AUTH_DMARC_NEED);
    assert_string_equal(name, "_dmarc.example.com");
    auth_dmarc_answer(d, name, AUTH_DNS_TEMPFAIL, NULL, NULL, 0);
    assert_int_equal(auth_dmarc_run(d, &name), AUTH_DMARC_DONE);
    assert_int_equal(auth_dmarc_result(d), AUTH_DMARC_TEMPERROR);
    auth_dmarc_free(d);
}

/* The records of a small zone, by look-up name; NULL: no such name. */
static const char *zone(const char *name)
{
    static const char *const z[][2] = {
        {"_dmarc.reject.example", "v=DMARC1; p=reject"},
        {"_dmarc.quar.example", "v=DMARC1; p=quarantine"},
        {"_dmarc.none.example", "v=DMARC1; p=none"},
        {"_dmarc.spf.example", "v=DMARC1; p=reject"},
    };
    for (size_t i = 0; i < sizeof z / sizeof z[0]; i++)
        if (strcmp(name, z[i][0]) == 0)
            return z[i][1];
    return NULL;
}

/* DMARC of several author domains, SPF passing for spf.example only. */
static enum auth_dmarc_result run_authors(const char *const *from, size_t n,
                                          enum auth_dmarc_policy *policy, const char **domain,
                                          unsigned *asked)
{
    static char decisive[256];
    struct auth_dmarc *d = auth_dmarc_new(from, n, "spf.example", true, NULL, 0);
    const char *name;
    *asked = 0;
    while (auth_dmarc_run(d, &name) == AUTH_DMARC_NEED) {
        const char *rec = zone(name);
        size_t len = rec ? strlen(rec) : 0;
        auth_dmarc_answer(d, name, rec ? AUTH_DNS_OK : AUTH_DNS_NXDOMAIN, &rec, &len,
                          rec ? 1 : 0);
        assert_true(++*asked <= 2 * n);
    }
    enum auth_dmarc_result r = auth_dmarc_result(d);
    *policy = auth_dmarc_policy(d);
    snprintf(decisive, sizeof decisive, "%s", auth_dmarc_from_domain(d));
    *domain = decisive;
    auth_dmarc_free(d);
    return r;
}

/* RFC 7489 §6.6.1: every author domain is evaluated; the strictest failing policy applies,
 * whatever the order of the addresses and whether another author passes. */
static void test_several_authors(void **state)
{
    (void)state;
    enum auth_dmarc_policy p;
    const char *dom;
    unsigned asked;
    const char *a[] = {"none.example", "reject.example", "quar.example"};
    assert_int_equal(run_authors(a, 3, &p, &dom, &asked), AUTH_DMARC_FAIL);
    assert_int_equal(p, AUTH_DMARC_P_REJECT);
    assert_string_equal(dom, "reject.example");
    const char *b[] = {"spf.example", "quar.example"}; /* one passes, the other fails */
    assert_int_equal(run_authors(b, 2, &p, &dom, &asked), AUTH_DMARC_FAIL);
    assert_int_equal(p, AUTH_DMARC_P_QUARANTINE);
    assert_string_equal(dom, "quar.example");
    const char *c[] = {"quar.example", "spf.example"};
    assert_int_equal(run_authors(c, 2, &p, &dom, &asked), AUTH_DMARC_FAIL);
    assert_string_equal(dom, "quar.example");
    const char *e[] = {"nothing.example", "spf.example"}; /* no record, pass: pass */
    assert_int_equal(run_authors(e, 2, &p, &dom, &asked), AUTH_DMARC_PASS);
    assert_string_equal(dom, "spf.example");
    /* authors under one organizational domain share its look-up */
    const char *f[] = {"a.reject.example", "b.reject.example"};
    assert_int_equal(run_authors(f, 2, &p, &dom, &asked), AUTH_DMARC_FAIL);
    assert_int_equal(p, AUTH_DMARC_P_REJECT);
    assert_int_equal(asked, 3);
    /* no author at all: permerror (the server refuses such mail itself under enforce) */
    assert_int_equal(run_authors(NULL, 0, &p, &dom, &asked), AUTH_DMARC_PERMERROR);
    assert_int_equal(p, AUTH_DMARC_P_UNSET);
    assert_string_equal(dom, "");
    assert_int_equal(asked, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_org_domains),
        cmocka_unit_test(test_evaluation),
        cmocka_unit_test(test_several_authors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
