/* tests/unit/caps_text.h — the one readable form of struct smtp_client_caps (smtp/ehlo.h) that
 * the EHLO reader's and the client session's transcripts compare against. */
#ifndef CLEARMTA_TEST_CAPS_TEXT_H
#define CLEARMTA_TEST_CAPS_TEXT_H

#include <stdio.h>

#include "smtp/ehlo.h"
#include "unit.h"

/* Each offered extension as " WORD" in a fixed order, e.g. " ESMTP PIPELINING SIZE=10000
 * AUTH=PLAIN RCPTMAX=50"; "" for none (HELO). */
static inline const char *caps_text(const struct smtp_client_caps *k, char *line, size_t cap)
{
    size_t n = 0;
    line[0] = '\0';
#define ADD(...) n += (size_t)snprintf(line + n, cap - n, __VA_ARGS__)
#define FLAG(cond, word) \
    if (cond)            \
    ADD(" %s", word)
    FLAG(k->esmtp, "ESMTP");
    FLAG(k->pipelining, "PIPELINING");
    if (k->has_size)
        ADD(" SIZE=%llu", (unsigned long long)k->size);
    FLAG(k->eightbitmime, "8BITMIME");
    FLAG(k->smtputf8, "SMTPUTF8");
    FLAG(k->dsn, "DSN");
    FLAG(k->chunking, "CHUNKING");
    FLAG(k->enhanced, "ENHANCEDSTATUSCODES");
    FLAG(k->starttls, "STARTTLS");
    FLAG(k->auth_plain, "AUTH=PLAIN");
    FLAG(k->auth_login, "AUTH=LOGIN");
    if (k->rcptmax)
        ADD(" RCPTMAX=%u", k->rcptmax);
    if (k->mailmax)
        ADD(" MAILMAX=%u", k->mailmax);
#undef FLAG
#undef ADD
    assert_true(n < cap);
    return line;
}

#endif
