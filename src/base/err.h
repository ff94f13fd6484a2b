/* base/err.h — the one error enum of base/ and its texts; callers translate it into their own
 * module's errors. errno stays inside base/ (STYLE.md). */
#ifndef CLEARMTA_BASE_ERR_H
#define CLEARMTA_BASE_ERR_H

#define BASE_ERRORS(X)                                                    \
    X(BASE_OK, "ok")                                                      \
    X(BASE_ERR_IO, "write failed")                                        \
    X(BASE_ERR_NOMEM, "out of memory")                                    \
    X(BASE_ERR_INVALID, "invalid arguments")                              \
    X(BASE_ERR_SYSTEM, "cannot create a thread or descriptor")            \
    X(BASE_ERR_FULL, "queue full")                                        \
    X(BASE_ERR_CLOSED, "queue stopped")

enum base_err {
#define BASE_ERR_ENUM(name, text) name,
    BASE_ERRORS(BASE_ERR_ENUM)
#undef BASE_ERR_ENUM
};

/* Never NULL; "unknown base error" for a value outside the enum. */
const char *base_strerror(enum base_err err);

#endif
