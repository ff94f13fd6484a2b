/* fuzz/fuzz_config.c — libFuzzer target for the clearmta.conf loader (in memory), and the
 * recipient and plan look-ups over whatever config it yields. */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/config.h"
#include "policy/recipients.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A plan found must be one of the config's own. */
static void check_plan(const struct policy_config *c, const struct policy_plan *p)
{
    if (p != NULL && (p < c->plans || p >= c->plans + c->n_plans))
        __builtin_trap();
}

/* The input's first bytes as an IPv4, IPv6 and IPv4-mapped client address. */
static void plan_lookups(const struct policy_config *c, const uint8_t *data, size_t size)
{
    struct sockaddr_in a4 = {.sin_family = AF_INET};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    memcpy(&a4.sin_addr, data, size < 4 ? size : 4);
    memcpy(&a6.sin6_addr, data, size < 16 ? size : 16);
    check_plan(c, policy_plan_for_address(c, (const struct sockaddr *)&a4));
    check_plan(c, policy_plan_for_address(c, (const struct sockaddr *)&a6));
    memset(&a6.sin6_addr, 0, 10);
    memset(a6.sin6_addr.s6_addr + 10, 0xff, 2);
    memcpy(a6.sin6_addr.s6_addr + 12, &a4.sin_addr, 4);
    check_plan(c, policy_plan_for_address(c, (const struct sockaddr *)&a6));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct policy_problems problems;
    struct policy_config c;
    policy_config_load_buffer("fuzz.conf", (const char *)data, size, &c, &problems);

    /* The input's first bytes double as a local part, tried against every domain loaded. */
    char local[POLICY_MAILBOX_CAP + 8], out[POLICY_MAILBOX_CAP];
    size_t n = size < sizeof local - 1 ? size : sizeof local - 1;
    memcpy(local, data, n);
    local[n] = '\0';
    for (size_t i = 0; i < c.n_domains; i++) {
        policy_rcpt_lookup(&c, local, c.domains[i].name, out, sizeof out);
        policy_rcpt_lookup(&c, "postmaster", c.domains[i].name, out, sizeof out);
        for (size_t u = 0; u < c.domains[i].n_users && u < 4; u++)
            policy_rcpt_lookup(&c, c.domains[i].users[u], c.domains[i].name, out, sizeof out);
    }
    policy_rcpt_lookup(&c, local, local, out, sizeof out);
    check_plan(&c, policy_plan_for_user(&c, local));
    for (size_t i = 0; i < c.n_plan_users && i < 4; i++)
        check_plan(&c, policy_plan_for_user(&c, c.plan_users[i].user));
    plan_lookups(&c, data, size);
    policy_config_free(&c);
    return 0;
}
