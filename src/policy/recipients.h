/* policy/recipients.h — is a RCPT TO address one of ours, and which mailbox gets it.
 * RFC 5321 §4.1.2 (quoted local parts), §4.5.1 (postmaster), RFC 6531 (UTF-8 local parts). */
#ifndef CLEARMTA_POLICY_RECIPIENTS_H
#define CLEARMTA_POLICY_RECIPIENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/config.h"

enum policy_rcpt_result {
    POLICY_RCPT_LOCAL,        /* deliver to the mailbox written to out */
    POLICY_RCPT_UNKNOWN_USER, /* a local domain, but no such user (550 5.1.1) */
    POLICY_RCPT_NOT_LOCAL,    /* not one of our domains: a relay decision */
    POLICY_RCPT_LMTP          /* a local domain delivered by LMTP: the delivery agent takes it
                               * to the domain's LMTP server, which has the last word */
};

/* Decides a recipient from the loaded config; pure (no I/O, no allocation).
 * local: the local part as sent, quoted form allowed ("\"bob\"" is bob). domain: the domain or
 * address literal as sent; NULL or "" for the bare <postmaster> of RFC 5321 §4.1.1.3.
 * Local parts and domains compare ASCII case-insensitively; other octets compare exactly.
 * postmaster resolves for every local domain (to mailbox "postmaster" unless the domain is
 * catch-all). A domain with an lmtp line gives POLICY_RCPT_LMTP for any local part, or with
 * users listed for those and postmaster. A local part that would be an unsafe directory name
 * (empty, '/', leading '.', control characters) is POLICY_RCPT_UNKNOWN_USER, as is a result
 * that does not fit in cap.
 * On POLICY_RCPT_LOCAL the mailbox name is written to out (cap >= POLICY_MAILBOX_CAP always
 * suffices); otherwise out is untouched. */
enum policy_rcpt_result policy_rcpt_lookup(const struct policy_config *c, const char *local,
                                           const char *domain, char *out, size_t cap);

/* True when domain (as sent, literal allowed) is one of the configured local domains. */
bool policy_domain_is_local(const struct policy_config *c, const char *domain);

/* The LMTP server of a local domain (as sent, literal allowed), pointing into c; NULL when the
 * domain is not local or its mail goes to Maildir. */
const struct policy_lmtp *policy_domain_lmtp(const struct policy_config *c, const char *domain);

/* Writes the comparison form of a domain into out: ASCII lower case, or for an address literal
 * "[192.0.2.1]" / "[IPv6:2001:db8::1]" in inet_ntop form. Returns false when a literal is not a
 * valid IPv4/IPv6 literal, or the result does not fit in cap. Does not validate domain names. */
bool policy_domain_canonical(const char *domain, char *out, size_t cap);

/* The comparison form of a local part as sent: unquoted (RFC 5321 §4.1.2: "bob" and bob are the
 * same mailbox) and ASCII lower case, NUL-ended in key. False when malformed or it does not fit
 * in cap. */
bool policy_local_part_key(const char *local, char *key, size_t cap, size_t *key_len);

/* True when name (len octets) can be a mailbox directory: non-empty, at most LIMIT_LOCAL_PART
 * octets, no '/', no leading '.', no control characters (< 0x20, 0x7f) and no NUL. */
bool policy_mailbox_name_safe(const char *name, size_t len);

#endif
