/* policy/plan_check.h — which plan limits apply to a client, the counter keys of plans,
 * greylisting and session rates, and the reply that refuses over a limit, with its text.
 * Pure: no I/O; the caller gives the time and makes the counters calls (server/limits.c). */
#ifndef CLEARMTA_POLICY_PLAN_CHECK_H
#define CLEARMTA_POLICY_PLAN_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "policy/config.h"
#include "reply/reply.h"

struct sockaddr;

/* A user name, or a network as "[192.0.2.0/24]" / "[2001:db8::/48]" (brackets: never a user). */
#define POLICY_ACCOUNT_CAP (LIMIT_PATH + 1)

/* Who is counted: an authenticated submission user, or the plan_network an MX client is in. */
struct policy_account {
    const struct policy_plan *plan; /* NULL: no plan, nothing is counted */
    char name[POLICY_ACCOUNT_CAP];  /* lower case */
};

/* The account of an authenticated user: its plan_user plan, else default_plan. a->plan is NULL
 * when the user has none (or the name does not fit). */
void policy_account_for_user(const struct policy_config *c, const char *user,
                             struct policy_account *a);

/* The account of an MX client address (sockaddr_in or sockaddr_in6; IPv4-mapped counts as
 * IPv4): the longest plan_network holding it, named by that network. a->plan NULL: none. */
void policy_account_for_address(const struct policy_config *c, const struct sockaddr *sa,
                                struct policy_account *a);

/* The counter key of one limit of an account: "plan:msg|rcpt|bytes:<window>:<account>".
 * Returns its length, or 0 when it does not fit in cap (or POLICY_COUNTERS_KEY_MAX). */
size_t policy_plan_key(char *out, size_t cap, const struct policy_plan_limit *l,
                       const char *account);

/* The limit in words: "Hourly limit of 1000 messages", "Daily limit of 1 recipient",
 * "Limit of 50 bytes per 60 seconds". Returns the length (0: cap too small). */
size_t policy_plan_limit_words(char *out, size_t cap, const struct policy_plan_limit *l);

/* The refusal of a request over limit l of plan p, retry_after_ms from the counters: the reply
 * row (messages, bytes: 451 4.7.1; recipients: 452 4.5.3; over=permanent: 550 5.7.1) and, in
 * detail, its text: "Hourly limit of 1000 messages for plan trial reached; try again after
 * 14:05 UTC". The time is now + retry_after rounded up to the minute, with the date when it is
 * not within the next 24 hours. */
enum reply_id policy_plan_refusal(const struct policy_plan *p, const struct policy_plan_limit *l,
                                  uint64_t retry_after_ms, time_t now, char *detail, size_t cap);

/* The client network as text ("192.0.2.0/24", "2001:db8::/64"), prefix bits given per family.
 * Returns the length (0: not an IP address, or cap too small). */
size_t policy_network_text(char *out, size_t cap, const struct sockaddr *sa, unsigned v4_prefix,
                           unsigned v6_prefix);

/* The greylisting key "grey:<client network>:<sender>:<recipient>", lower case (sender "" for
 * the null sender). Returns the length, 0 when it does not fit POLICY_COUNTERS_KEY_MAX. */
size_t policy_greylist_key(char *out, size_t cap, const struct policy_greylist_config *g,
                           const struct sockaddr *sa, const char *sender, const char *rcpt);

/* Seconds a triplet first seen age_ms ago must still wait (at least 1), 0 when it may pass. */
unsigned policy_greylist_wait(const struct policy_greylist_config *g, uint64_t age_ms);

/* The key of the sessions-per-minute counter: "sess:<ip>", an IPv6 client by its /64. */
size_t policy_session_key(char *out, size_t cap, const struct sockaddr *sa);

/* Parses a numeric IPv4 or IPv6 address into ss (an IPv4-mapped IPv6 address as IPv4).
 * False when text is not one. */
struct sockaddr_storage;
bool policy_parse_address(const char *text, struct sockaddr_storage *ss);

#endif
