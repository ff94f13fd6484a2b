/* reply/reason.h — the bounce reason vocabulary (Sisimai's reason names), used by the reply
 * table's reason column and by explain. "mesgtoobig" is used for oversized messages; newer
 * processors call it "emailtoolarge" (documented in docs/replies.md). */
#ifndef CLEARMTA_REPLY_REASON_H
#define CLEARMTA_REPLY_REASON_H

#define REPLY_REASONS(X)                                                                   \
    X(userunknown) X(mailboxfull) X(mesgtoobig) X(exceedlimit) X(norelaying)              \
    X(securityerror) X(authfailure) X(blocked) X(spamdetected) X(virusdetected)           \
    X(policyviolation) X(rejected) X(filtered) X(hostunknown) X(networkerror)             \
    X(systemerror) X(systemfull) X(toomanyconn) X(speeding) X(expired) X(syntaxerror)     \
    X(notaccept) X(hasmoved) X(contenterror) X(requireptr) X(badreputation)               \
    X(failedstarttls) X(suspend) X(onhold) X(mailererror) X(notcompliantrfc)              \
    X(delivered) X(undefined)

enum reply_reason {
#define X(name) REASON_##name,
    REPLY_REASONS(X)
#undef X
    REASON__COUNT
};

/* "userunknown" for REASON_userunknown; NULL out of range. */
const char *reply_reason_name(enum reply_reason r);
/* Reason by name; returns false when the name is not in the vocabulary. */
#include <stdbool.h>
bool reply_reason_from_name(const char *name, enum reply_reason *out);

#endif
