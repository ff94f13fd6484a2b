/* net/tls_pair.h — the self-signed pair in <data_dir>/tls, made at first start and loaded
 * without trusting any name in that directory (it may belong to the server's user). */
#ifndef CLEARMTA_NET_TLS_PAIR_H
#define CLEARMTA_NET_TLS_PAIR_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "net/tls.h"

/* Opens <data_dir>/tls (made 0700 if missing; it must not be a symbolic link, must belong to
 * root or owner->uid and no one else may write it), generates cert.pem and key.pem for
 * hostname when one is missing, checks both (regular files with one name, of root or
 * owner->uid, the key 0600, the certificate not writable by others), gives all three to owner
 * when owner->give, and puts the pair into ctx. False with a one-line reason in err. */
bool net_tls_pair_use(SSL_CTX *ctx, const char *data_dir, const char *hostname,
                      const struct net_tls_owner *owner, char *err, size_t errlen);

#endif
