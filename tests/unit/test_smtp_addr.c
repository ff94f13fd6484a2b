/* tests/unit/test_smtp_addr.c — table-driven tests of the RFC 5321/6531 path and domain parser
 * (src/smtp/addr.c): valid paths, limits at −1/at/+1, malformed and hostile input. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "smtp/addr.h"

#define NUL_OK SMTP_ADDR_ALLOW_NULL
#define PM SMTP_ADDR_ALLOW_POSTMASTER
#define U8 SMTP_ADDR_UTF8

struct path_case {
    const char *in;
    unsigned flags;
    enum smtp_addr_err want;
    const char *mailbox; /* expected mailbox on SMTP_ADDR_OK */
    size_t used;         /* expected bytes consumed; 0 means the whole input */
};

static const struct path_case path_cases[] = {
    /* valid */
    {"<a@b>", 0, SMTP_ADDR_OK, "a@b", 0},
    {"<user@example.test>", 0, SMTP_ADDR_OK, "user@example.test", 0},
    {"<First.Last@Sub.Example.TEST>", 0, SMTP_ADDR_OK, "First.Last@Sub.Example.TEST", 0},
    {"<!#$%&'*+-/=?^_`{|}~@x.y>", 0, SMTP_ADDR_OK, "!#$%&'*+-/=?^_`{|}~@x.y", 0},
    {"<a.b.c@d>", 0, SMTP_ADDR_OK, "a.b.c@d", 0},
    {"<u@xn--bcher-kva.example>", 0, SMTP_ADDR_OK, "u@xn--bcher-kva.example", 0},
    {"<u@a-b--c.d>", 0, SMTP_ADDR_OK, "u@a-b--c.d", 0},
    {"<u@1.2.3.4>", 0, SMTP_ADDR_OK, "u@1.2.3.4", 0},
    {"<u@0>", 0, SMTP_ADDR_OK, "u@0", 0},
    {"<\"quoted string\"@x>", 0, SMTP_ADDR_OK, "\"quoted string\"@x", 0},
    {"<\"a\\\"b\"@x>", 0, SMTP_ADDR_OK, "\"a\\\"b\"@x", 0},
    {"<\"a\\\\\"@x>", 0, SMTP_ADDR_OK, "\"a\\\\\"@x", 0},
    {"<\"\"@x>", 0, SMTP_ADDR_OK, "\"\"@x", 0},
    {"<\"a@b>c\"@x>", 0, SMTP_ADDR_OK, "\"a@b>c\"@x", 0},
    {"<\"a..b.\"@x>", 0, SMTP_ADDR_OK, "\"a..b.\"@x", 0},
    {"<\"~ !#\"@x>", 0, SMTP_ADDR_OK, "\"~ !#\"@x", 0},
    {"<u@[192.0.2.1]>", 0, SMTP_ADDR_OK, "u@[192.0.2.1]", 0},
    {"<u@[0.0.0.0]>", 0, SMTP_ADDR_OK, "u@[0.0.0.0]", 0},
    {"<u@[255.255.255.255]>", 0, SMTP_ADDR_OK, "u@[255.255.255.255]", 0},
    {"<u@[IPv6:2001:db8::1]>", 0, SMTP_ADDR_OK, "u@[IPv6:2001:db8::1]", 0},
    {"<u@[IPv6:::1]>", 0, SMTP_ADDR_OK, "u@[IPv6:::1]", 0},
    {"<u@[IPv6:::]>", 0, SMTP_ADDR_OK, "u@[IPv6:::]", 0},
    {"<u@[ipv6:::ffff:192.0.2.1]>", 0, SMTP_ADDR_OK, "u@[ipv6:::ffff:192.0.2.1]", 0},
    {"<u@[IPv6:1:2:3:4:5:6:7:8]>", 0, SMTP_ADDR_OK, "u@[IPv6:1:2:3:4:5:6:7:8]", 0},
    {"<u@[x-tag:any~thing]>", 0, SMTP_ADDR_OK, "u@[x-tag:any~thing]", 0},
    {"<@a,@b:u@d>", 0, SMTP_ADDR_OK, "u@d", 0},
    {"<@a.example:u@d>", 0, SMTP_ADDR_OK, "u@d", 0},
    {"<u@d> SIZE=10", 0, SMTP_ADDR_OK, "u@d", 5},
    {"<a@b>>", 0, SMTP_ADDR_OK, "a@b", 5},
    {"<>", NUL_OK, SMTP_ADDR_OK, "", 0},
    {"<> trailing", NUL_OK, SMTP_ADDR_OK, "", 2},
    {"<postmaster>", PM, SMTP_ADDR_OK, "postmaster", 0},
    {"<PostMaster>", PM, SMTP_ADDR_OK, "postmaster", 0},
    {"<Postmaster@example.test>", PM, SMTP_ADDR_OK, "Postmaster@example.test", 0},
    {"<postmaster@x>", 0, SMTP_ADDR_OK, "postmaster@x", 0},
    /* UTF-8 with SMTPUTF8 (RFC 6531) */
    {"<\xC3\xBC@x>", U8, SMTP_ADDR_OK, "\xC3\xBC@x", 0},
    {"<\xE7\x94\xA8\xE6\x88\xB7@\xE4\xBE\x8B\xE5\xAD\x90.\xE6\xB5\x8B\xE8\xAF\x95>", U8,
     SMTP_ADDR_OK, "\xE7\x94\xA8\xE6\x88\xB7@\xE4\xBE\x8B\xE5\xAD\x90.\xE6\xB5\x8B\xE8\xAF\x95", 0},
    {"<\"\xC3\xBC x\"@x>", U8, SMTP_ADDR_OK, "\"\xC3\xBC x\"@x", 0},
    {"<\xF0\x9F\x98\x80@x>", U8, SMTP_ADDR_OK, "\xF0\x9F\x98\x80@x", 0},
    {"<\xF4\x8F\xBF\xBF@x>", U8, SMTP_ADDR_OK, "\xF4\x8F\xBF\xBF@x", 0},
    {"<\xEF\xBF\xBD@x>", U8, SMTP_ADDR_OK, "\xEF\xBF\xBD@x", 0},
    {"<\xC2\x80@x>", U8, SMTP_ADDR_OK, "\xC2\x80@x", 0},
    {"<u@\xC3\xBC-x.de>", U8, SMTP_ADDR_OK, "u@\xC3\xBC-x.de", 0},
    {"<@\xC3\xBC.de:u@x>", U8, SMTP_ADDR_OK, "u@x", 0},

    /* malformed */
    {"", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"a@b", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {" <a@b>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"@", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@b", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@b ", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"< a@b>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@b >", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<<>>", NUL_OK, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<<a@b>>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<@>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<@b>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@b@c>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@b.>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@.b>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@b..c>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<.a@b>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a.@b>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a..b@c>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@-b.c>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@b-.c>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@b.-c>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@b_c.d>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a b@c>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a(b)@c>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a,b@c>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a\x01@b>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@b\x7f>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@b\t>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a\\b@c>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    /* null path and postmaster */
    {"<>", 0, SMTP_ADDR_NULL_NOT_ALLOWED, NULL, 0},
    {"<>", PM, SMTP_ADDR_NULL_NOT_ALLOWED, NULL, 0},
    {"<postmaster>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<postmaster>", NUL_OK, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<postmasters>", PM, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<\"postmaster\">", PM, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<@a:postmaster>", PM, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<postmaster", PM, SMTP_ADDR_SYNTAX, NULL, 0},
    /* quoted strings */
    {"<\"abc@x>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<\"abc", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<\"abc\\", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<\"abc\\\"@x>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<\"a\\\x01\"@x>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<\"a\x01\"@x>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<\"a\t\"@x>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<\"a\x7f\"@x>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<\"a\"b@x>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a\"b\"@x>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<\"a\".b@x>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    /* address literals */
    {"<a@[>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[1.2.3.4>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[1.2.3.256]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[1.2.3]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[1.2.3.4.5]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[1.2.3.]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[.1.2.3]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[1..2.3]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[01.2.3.4]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[1.2.3.04]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[1.2.3.0004]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[1.2.3.1000]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[1.2.3.a]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[1.2.3.4]x>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@x.[1.2.3.4]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[IPv6:1.2.3.4]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[IPv6:::1::2]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[IPv6:12345::]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[IPv6:gg::]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[IPv6:]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[IPv6:::ffff:1.2.3.256]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[IPv6:::1%eth0]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[IPv6:0000:0000:0000:0000:0000:ffff:255.255.255.255x]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[-x:abc]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[x-:abc]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[:abc]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[tag:]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[a[b]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[a\\b]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[1.2.3.4 ]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[\xC3\xBC:x]>", U8, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<a@[\xC3\xBC:x]>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    /* source routes */
    {"<@a,u@d>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<@a u@d>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<@:u@d>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<@a,@b u@d>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<@a.:u@d>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<@a,:u@d>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<@[1.2.3.4]:u@d>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<@a:>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<@a:@b>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<@a>", 0, SMTP_ADDR_SYNTAX, NULL, 0},
    {"<@a:<>>", NUL_OK, SMTP_ADDR_SYNTAX, NULL, 0},
    /* 8-bit without SMTPUTF8 */
    {"<\xC3\xBC@x>", 0, SMTP_ADDR_EIGHT_BIT, NULL, 0},
    {"<u@\xC3\xBC.x>", 0, SMTP_ADDR_EIGHT_BIT, NULL, 0},
    {"<\"\xC3\xBC\"@x>", 0, SMTP_ADDR_EIGHT_BIT, NULL, 0},
    {"<\xC0\xAF@x>", 0, SMTP_ADDR_EIGHT_BIT, NULL, 0},
    {"<\xFF@x>", 0, SMTP_ADDR_EIGHT_BIT, NULL, 0},
    {"<@\xC3\xBC:u@x>", 0, SMTP_ADDR_EIGHT_BIT, NULL, 0},
    /* invalid UTF-8 with SMTPUTF8 */
    {"<\xC0\xAF@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},       /* overlong "/" */
    {"<\xC1\xBF@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},       /* overlong */
    {"<\xE0\x80\xAF@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},   /* overlong 3-byte */
    {"<\xE0\x9F\xBF@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},   /* overlong U+07FF */
    {"<\xF0\x8F\xBF\xBF@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0}, /* overlong U+FFFF */
    {"<\xED\xA0\x80@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},   /* surrogate U+D800 */
    {"<\xED\xBF\xBF@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},   /* surrogate U+DFFF */
    {"<\xF4\x90\x80\x80@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0}, /* U+110000 */
    {"<\xF5\x80\x80\x80@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},
    {"<\xF8\x88\x80\x80\x80@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},
    {"<\x80@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},
    {"<\xBF@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},
    {"<\xFF@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},
    {"<\xFE@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},
    {"<\xC3@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},           /* truncated */
    {"<\xE4\xBE@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},       /* truncated */
    {"<\xF0\x9F\x98@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},   /* truncated */
    {"<a\xC3", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},             /* truncated at the end */
    {"<u@x\xC0\xAF>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},
    {"<\"\xC0\xAF\"@x>", U8, SMTP_ADDR_BAD_UTF8, NULL, 0},
    {"<\"\\\xC3\xBC\"@x>", U8, SMTP_ADDR_SYNTAX, NULL, 0},    /* quoted-pair is ASCII only */
};

/* Shows input bytes readably in failure messages. */
static void show(const char *s, size_t len, char *out, size_t cap)
{
    size_t at = 0;
    for (size_t i = 0; i < len && at + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f)
            out[at++] = (char)ch;
        else
            at += (size_t)snprintf(out + at, cap - at, "\\x%02X", ch);
    }
    out[at] = '\0';
}

/* Runs one case, checks the result and the invariants of a parsed path; returns 1 on
 * failure after printing why. */
static int run_path(const char *in, size_t len, unsigned flags, enum smtp_addr_err want,
                    const char *mailbox, size_t want_used)
{
    struct smtp_path path;
    size_t used = 12345;
    char shown[400];
    enum smtp_addr_err got = smtp_addr_parse_path(in, len, flags, &path, &used);

    show(in, len, shown, sizeof shown);
    if (got != want) {
        print_error("path \"%s\" flags %u: got %s, want %s\n", shown, flags,
                    smtp_addr_strerror(got), smtp_addr_strerror(want));
        return 1;
    }
    if (got != SMTP_ADDR_OK)
        return used == 12345 ? 0 : (print_error("\"%s\": used changed on error\n", shown), 1);
    if (want_used == 0)
        want_used = len;
    if (used != want_used || in[used - 1] != '>') {
        print_error("\"%s\": used %zu, want %zu\n", shown, used, want_used);
        return 1;
    }
    if (mailbox != NULL && strcmp(path.mailbox, mailbox) != 0) {
        print_error("\"%s\": mailbox \"%s\", want \"%s\"\n", shown, path.mailbox, mailbox);
        return 1;
    }
    if (path.mailbox_len != strlen(path.mailbox) || path.local_len != strlen(path.local) ||
        path.domain_len != strlen(path.domain) || path.mailbox_len > LIMIT_PATH) {
        print_error("\"%s\": inconsistent lengths\n", shown);
        return 1;
    }
    return 0;
}

static void test_path_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof path_cases / sizeof path_cases[0]; i++) {
        const struct path_case *c = &path_cases[i];
        failures += run_path(c->in, strlen(c->in), c->flags, c->want, c->mailbox, c->used);
    }
    assert_int_equal(failures, 0);
}

/* Fills buf with a domain of exactly n octets: 63-octet labels, never a trailing dot. */
static void make_domain(char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = i % 64 == 63 ? '.' : 'a';
    if (n >= 2 && buf[n - 1] == '.') {
        buf[n - 2] = '.';
        buf[n - 1] = 'a';
    }
    buf[n] = '\0';
}

/* Builds prefix + n copies of fill + suffix into buf; returns the length. */
static size_t build(char *buf, size_t cap, const char *prefix, char fill, size_t n,
                    const char *suffix)
{
    size_t p = strlen(prefix), s = strlen(suffix);
    assert_true(p + n + s < cap);
    memcpy(buf, prefix, p);
    memset(buf + p, fill, n);
    memcpy(buf + p + n, suffix, s + 1);
    return p + n + s;
}

static void test_path_limits(void **state)
{
    (void)state;
    static char buf[20000], dom[400];
    int failures = 0;
    /* "<" local "@example.test>": the whole path is at most LIMIT_PATH octets. */
    const size_t frame = strlen("<@example.test>");
    for (size_t local = LIMIT_PATH - frame - 1; local <= LIMIT_PATH - frame + 1; local++) {
        size_t len = build(buf, sizeof buf, "<", 'l', local, "@example.test>");
        failures += run_path(buf, len, 0, len <= LIMIT_PATH ? SMTP_ADDR_OK : SMTP_ADDR_TOO_LONG,
                             NULL, 0);
    }
    /* The same with a quoted local part and with a source route counted in. */
    size_t len = build(buf, sizeof buf, "<\"", ' ', LIMIT_PATH - 8, "\"@x.y>");
    failures += run_path(buf, len, 0, SMTP_ADDR_OK, NULL, 0);
    len = build(buf, sizeof buf, "<\"", ' ', LIMIT_PATH - 7, "\"@x.y>");
    failures += run_path(buf, len, 0, SMTP_ADDR_TOO_LONG, NULL, 0);
    len = build(buf, sizeof buf, "<@", 'r', 60, ":u@x>");
    failures += run_path(buf, len, 0, SMTP_ADDR_OK, "u@x", 0);
    make_domain(dom, 250);
    len = (size_t)snprintf(buf, sizeof buf, "<@%s:u@x>", dom);
    failures += run_path(buf, len, 0, SMTP_ADDR_TOO_LONG, NULL, 0);
    /* Labels: 62, 63 octets fine, 64 too long. */
    for (size_t label = 62; label <= 64; label++) {
        len = build(buf, sizeof buf, "<u@", 'd', label, ".test>");
        failures += run_path(buf, len, 0, label <= 63 ? SMTP_ADDR_OK : SMTP_ADDR_TOO_LONG,
                             NULL, 0);
    }
    /* A domain over 255 octets fails as a domain, before the path limit. */
    make_domain(dom, LIMIT_DOMAIN + 1);
    len = (size_t)snprintf(buf, sizeof buf, "<u@%s>", dom);
    failures += run_path(buf, len, 0, SMTP_ADDR_TOO_LONG, NULL, 0);
    /* Very long tokens. */
    len = build(buf, sizeof buf, "<", 'a', 10000, "@x>");
    failures += run_path(buf, len, 0, SMTP_ADDR_TOO_LONG, NULL, 0);
    len = build(buf, sizeof buf, "<", 'a', 10000, "");
    failures += run_path(buf, len, 0, SMTP_ADDR_SYNTAX, NULL, 0);
    len = build(buf, sizeof buf, "<u@", 'a', 10000, ">");
    failures += run_path(buf, len, 0, SMTP_ADDR_TOO_LONG, NULL, 0);
    len = build(buf, sizeof buf, "<u@[", '1', 10000, "]>");
    failures += run_path(buf, len, 0, SMTP_ADDR_SYNTAX, NULL, 0);
    len = build(buf, sizeof buf, "<u@[x:", 'a', 300, "]>");
    failures += run_path(buf, len, 0, SMTP_ADDR_TOO_LONG, NULL, 0);
    len = build(buf, sizeof buf, "<\"", 'q', 10000, "\"@x>");
    failures += run_path(buf, len, 0, SMTP_ADDR_TOO_LONG, NULL, 0);
    len = build(buf, sizeof buf, "<", '.', 10000, "@x>");
    failures += run_path(buf, len, 0, SMTP_ADDR_SYNTAX, NULL, 0);
    assert_int_equal(failures, 0);
}

static void test_path_fields(void **state)
{
    (void)state;
    struct smtp_path p;
    size_t used;
    const char *s;

    s = "<@relay.example:\"John Doe\"@[IPv6:2001:db8::1]>";
    assert_int_equal(smtp_addr_parse_path(s, strlen(s), 0, &p, &used), SMTP_ADDR_OK);
    assert_string_equal(p.local, "\"John Doe\"");
    assert_string_equal(p.domain, "[IPv6:2001:db8::1]");
    assert_string_equal(p.mailbox, "\"John Doe\"@[IPv6:2001:db8::1]");
    assert_true(p.domain_literal);
    assert_false(p.is_null || p.is_postmaster || p.is_utf8);

    s = "<>";
    assert_int_equal(smtp_addr_parse_path(s, 2, NUL_OK, &p, &used), SMTP_ADDR_OK);
    assert_true(p.is_null);
    assert_int_equal(p.mailbox_len, 0);
    assert_string_equal(p.mailbox, "");

    s = "<POSTMASTER>";
    assert_int_equal(smtp_addr_parse_path(s, strlen(s), PM, &p, &used), SMTP_ADDR_OK);
    assert_true(p.is_postmaster);
    assert_string_equal(p.local, "POSTMASTER");
    assert_string_equal(p.domain, "");
    assert_string_equal(p.mailbox, "postmaster");

    s = "<Postmaster@example.test>";
    assert_int_equal(smtp_addr_parse_path(s, strlen(s), PM, &p, &used), SMTP_ADDR_OK);
    assert_false(p.is_postmaster);

    s = "<\xC3\xBC@example.test>";
    assert_int_equal(smtp_addr_parse_path(s, strlen(s), U8, &p, &used), SMTP_ADDR_OK);
    assert_true(p.is_utf8);
    assert_false(p.domain_literal);
    s = "<u@ex\xC3\xA4mple.test>";
    assert_int_equal(smtp_addr_parse_path(s, strlen(s), U8, &p, &used), SMTP_ADDR_OK);
    assert_true(p.is_utf8);
    s = "<u@example.test>";
    assert_int_equal(smtp_addr_parse_path(s, strlen(s), U8, &p, &used), SMTP_ADDR_OK);
    assert_false(p.is_utf8);

    /* The parser never reads past len: the '>' just beyond it does not count. */
    s = "<a@b>";
    assert_int_equal(smtp_addr_parse_path(s, 4, 0, &p, &used), SMTP_ADDR_SYNTAX);
    assert_int_equal(smtp_addr_parse_path(s, 1, 0, &p, &used), SMTP_ADDR_SYNTAX);
    assert_int_equal(smtp_addr_parse_path(s, 0, 0, &p, &used), SMTP_ADDR_SYNTAX);
    s = "<>";
    assert_int_equal(smtp_addr_parse_path(s, 1, NUL_OK, &p, &used), SMTP_ADDR_SYNTAX);
}

struct domain_case {
    const char *in;
    bool utf8;
    bool want;
};

static const struct domain_case domain_cases[] = {
    {"example.test", false, true},
    {"localhost", false, true},
    {"mail-1.Example.TEST", false, true},
    {"1.2.3.4", false, true},
    {"xn--bcher-kva.example", false, true},
    {"[192.0.2.1]", false, true},
    {"[IPv6:::1]", false, true},
    {"[IPv6:2001:db8::192.0.2.1]", false, true},
    {"[x-tag:stuff]", false, true},
    {"\xC3\xBC.test", true, true},
    {"", false, false},
    {".", false, false},
    {"a.", false, false},
    {".a", false, false},
    {"a..b", false, false},
    {"a_b", false, false},
    {"my_host.example", false, false},
    {"a b", false, false},
    {"a\t", false, false},
    {"-a", false, false},
    {"a-", false, false},
    {"a.-b", false, false},
    {"[1.2.3.4", false, false},
    {"[1.2.3.4]x", false, false},
    {"[1.2.3.4].", false, false},
    {"[1.2.3.256]", false, false},
    {"[IPv6:::1::]", false, false},
    {"[]", false, false},
    {"[", false, false},
    {"]", false, false},
    {"a@b", false, false},
    {"<a>", false, false},
    {"\xC3\xBC.test", false, false},
    {"\xC0\xAF.test", true, false},
    {"\xED\xA0\x80.test", true, false},
    {"\xC3", true, false},
};

static void test_valid_domain(void **state)
{
    (void)state;
    int failures = 0;
    char shown[200];
    for (size_t i = 0; i < sizeof domain_cases / sizeof domain_cases[0]; i++) {
        const struct domain_case *c = &domain_cases[i];
        if (smtp_addr_valid_domain(c->in, strlen(c->in), c->utf8) != c->want) {
            show(c->in, strlen(c->in), shown, sizeof shown);
            print_error("domain \"%s\" utf8 %d: want %d\n", shown, c->utf8, c->want);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_valid_domain_limits(void **state)
{
    (void)state;
    static char buf[1000];
    for (size_t n = LIMIT_DOMAIN - 1; n <= LIMIT_DOMAIN + 1; n++) {
        make_domain(buf, n);
        assert_int_equal(smtp_addr_valid_domain(buf, n, false), n <= LIMIT_DOMAIN);
    }
    for (size_t label = 62; label <= 64; label++) {
        size_t len = build(buf, sizeof buf, "", 'h', label, ".test");
        assert_int_equal(smtp_addr_valid_domain(buf, len, false), label <= 63);
    }
    size_t len = build(buf, sizeof buf, "[x:", 'a', LIMIT_DOMAIN - 4, "]");
    assert_true(smtp_addr_valid_domain(buf, len, false));
    len = build(buf, sizeof buf, "[x:", 'a', LIMIT_DOMAIN - 3, "]");
    assert_false(smtp_addr_valid_domain(buf, len, false));
    /* len bounds the input: "a.b" seen as "a." is invalid. */
    assert_false(smtp_addr_valid_domain("a.b", 2, false));
    assert_true(smtp_addr_valid_domain("a.b", 1, false));
}

static void test_strerror(void **state)
{
    (void)state;
    const enum smtp_addr_err all[] = {SMTP_ADDR_OK,         SMTP_ADDR_SYNTAX,
                                      SMTP_ADDR_TOO_LONG,   SMTP_ADDR_EIGHT_BIT,
                                      SMTP_ADDR_BAD_UTF8,   SMTP_ADDR_NULL_NOT_ALLOWED};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *text = smtp_addr_strerror(all[i]);
        assert_non_null(text);
        assert_true(strlen(text) > 0);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(text, smtp_addr_strerror(all[j]));
    }
}

/* Duplicate recipients: domain without case, local part exact once unquoted. */
static void test_same_mailbox(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        bool same;
    } cases[] = {
        {"alice@example.test", "alice@example.test", true},
        {"alice@example.test", "alice@EXAMPLE.Test", true},
        {"alice@example.test", "\"alice\"@example.test", true},
        {"\"alice\"@example.test", "\"al\\ice\"@Example.TEST", true},
        {"\"a@b\"@example.test", "\"a@b\"@example.test", true},
        {"\"a b\"@example.test", "\"a\\ b\"@example.test", true},
        {"postmaster", "PostMaster", true},
        {"alice@example.test", "ALICE@example.test", false}, /* a local part may be case-sensitive */
        {"alice@example.test", "alice@example.org", false},
        {"alice@example.test", "alice2@example.test", false},
        {"alice2@example.test", "alice@example.test", false},
        {"\"alice\"@example.test", "\"alice \"@example.test", false},
        {"\"\\\"\"@example.test", "\"\\\"\"@example.test", true},
        {"\"\\\"\"@example.test", "\"\\\\\"@example.test", false},
        {"\"a\"b@example.test", "ab@example.test", false}, /* not one quoted string */
        {"alice@example.test", "postmaster", false},
        {"@example.test", "\"\"@example.test", true},
        {"[192.0.2.1]", "alice@[192.0.2.1]", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (smtp_addr_same_mailbox(cases[i].a, cases[i].b) != cases[i].same ||
            smtp_addr_same_mailbox(cases[i].b, cases[i].a) != cases[i].same)
            fail_msg("case %zu: %s vs %s", i, cases[i].a, cases[i].b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_table),   cmocka_unit_test(test_path_limits),
        cmocka_unit_test(test_path_fields),  cmocka_unit_test(test_valid_domain),
        cmocka_unit_test(test_valid_domain_limits), cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_same_mailbox),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
