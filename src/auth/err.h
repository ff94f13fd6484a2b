/* auth/err.h — the error enum of the mail authentication module (DKIM, and later SPF and
 * DMARC), from one X-macro list that also gives auth_strerror(). */
#ifndef CLEARMTA_AUTH_ERR_H
#define CLEARMTA_AUTH_ERR_H

#define AUTH_ERRORS(X)                                                             \
    X(AUTH_OK, "ok")                                                               \
    X(AUTH_ERR_NOMEM, "out of memory")                                             \
    X(AUTH_ERR_IO, "cannot read or write the key file")                            \
    X(AUTH_ERR_KEY, "not a usable private key")                                    \
    X(AUTH_ERR_CRYPTO, "signature computation failed")                             \
    X(AUTH_ERR_SYNTAX, "malformed input")                                          \
    X(AUTH_ERR_TOO_BIG, "input over its size limit")                               \
    X(AUTH_ERR_NO_FROM, "no single From: address with a domain")                   \
    X(AUTH_ERR_NO_SIGNER, "no signing key for the From: domain")

enum auth_err {
#define AUTH_ERR_ENUM(name, text) name,
    AUTH_ERRORS(AUTH_ERR_ENUM)
#undef AUTH_ERR_ENUM
};

/* Never NULL; "unknown auth error" for a value outside the enum. */
const char *auth_strerror(enum auth_err err);

#endif
