/* server/signing.c — DKIM signing of mail submitted after AUTH: the keys of the dkim_sign
 * directives, the message held in memory until its end, then signed and written to the store
 * with its DKIM-Signature in front. RFC 6376 §5. The same hold serves the checks on receipt
 * (receipt.c), which store the message themselves once checked. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/dkim_key.h"
#include "auth/dkim_sign.h"
#include "net/log.h"
#include "server/server.h"

/* All sessions together hold in memory at most this many messages of the size limit: past
 * that, a message checked on receipt gets 451 (try again later) and one to sign is written
 * unsigned, as when memory runs out, instead of many sessions exhausting it. */
#define HELD_MESSAGES_MAX 32u

bool server_signing_open(struct server *srv)
{
    const struct policy_config *cfg = srv->cfg;
    if (cfg->n_dkim_sign == 0)
        return true;
    srv->dkim = auth_dkim_signers_new();
    if (srv->dkim == NULL) {
        net_log("fatal: dkim_sign: out of memory");
        return false;
    }
    for (size_t i = 0; i < cfg->n_dkim_sign; i++) {
        const struct policy_dkim_sign *d = &cfg->dkim_sign[i];
        struct auth_dkim_key *k = NULL;
        enum auth_err err = auth_dkim_key_load(d->key, &k);
        if (err == AUTH_OK && d->algorithm[0] &&
            strcmp(auth_dkim_alg_name(auth_dkim_key_alg(k)), d->algorithm) != 0) {
            net_log("fatal: dkim_sign %s: %s is a %s key, not for algorithm=%s", d->domain,
                    d->key, auth_dkim_alg_keytype(auth_dkim_key_alg(k)), d->algorithm);
            auth_dkim_key_free(k);
            return false;
        }
        if (err == AUTH_OK)
            err = auth_dkim_signers_add(srv->dkim, d->domain, d->selector,
                                        d->headers[0] ? d->headers : NULL, k);
        if (err != AUTH_OK) {
            net_log("fatal: dkim_sign %s: %s: %s", d->domain, d->key, auth_strerror(err));
            return false;
        }
        net_log("dkim: signing mail from %s with selector %s (%s)", d->domain, d->selector,
                auth_dkim_alg_name(auth_dkim_key_alg(k)));
    }
    return true;
}

void server_signing_close(struct server *srv)
{
    auth_dkim_signers_free(srv->dkim);
    srv->dkim = NULL;
}

void server_signing_begin(struct server_conn *c)
{
    server_signing_forget(c);
    c->msg_signing = smtp_server_auth_user(c->session) != NULL &&
                     auth_dkim_signers_count(c->srv->dkim) > 0;
}

/* Writes what is held unsigned and stops holding: a message past the size limit is refused at
 * its end anyway, and the store keeps counting its bytes. */
static enum reply_id give_up(struct server_conn *c)
{
    enum store_err err = store_msg_write(c->msg, c->msg_held.p, c->msg_held.len);
    server_signing_forget(c);
    return err == STORE_OK ? REPLY_OK : (err == STORE_ERR_NOSPACE ? REPLY_DISK_FULL
                                                                   : REPLY_STORE_FAILED);
}

enum reply_id server_signing_write(struct server_conn *c, const char *p, size_t n)
{
    struct server_signing_buf *b = &c->msg_held;
    uint64_t limit = c->srv->cfg->max_message_size + 65536; /* the Received line and slack */
    if (b->len + n > limit) {
        if (c->msg_checking)
            return REPLY_OK; /* refused at its end for its size: nothing more to hold */
        enum reply_id r = give_up(c);
        if (r != REPLY_OK)
            return r;
        enum store_err err = store_msg_write(c->msg, p, n);
        return err == STORE_OK ? REPLY_OK : (err == STORE_ERR_NOSPACE ? REPLY_DISK_FULL
                                                                       : REPLY_STORE_FAILED);
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n)
            cap *= 2;
        size_t *held = &c->srv->held_bytes;
        bool over = *held - b->cap + cap > HELD_MESSAGES_MAX * limit;
        char *q = over ? NULL : realloc(b->p, cap);
        if (over)
            net_log("[%s]: messages held in memory reach %zu bytes: %s", c->addr, *held,
                    c->msg_checking ? "try again later" : "stored unsigned");
        if (q == NULL && c->msg_checking)
            return REPLY_STORE_FAILED; /* nothing stored yet: try again later */
        if (q == NULL)
            return give_up(c) == REPLY_OK ? server_signing_write(c, p, n) : REPLY_STORE_FAILED;
        *held += cap - b->cap;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return REPLY_OK;
}

void server_signing_finish(struct server_conn *c)
{
    if (!c->msg_signing)
        return;
    char *sig = NULL;
    size_t sig_len = 0;
    enum auth_err err = auth_dkim_signers_sign(c->srv->dkim, c->msg_held.p, c->msg_held.len,
                                               (int64_t)time(NULL), &sig, &sig_len);
    if (err == AUTH_OK)
        store_msg_write(c->msg, sig, sig_len); /* errors are sticky: the commit reports them */
    else if (err != AUTH_ERR_NO_SIGNER && err != AUTH_ERR_NO_FROM)
        net_log("dkim: message from [%s] left unsigned: %s", c->addr, auth_strerror(err));
    free(sig);
    store_msg_write(c->msg, c->msg_held.p, c->msg_held.len);
    server_signing_forget(c);
}

void server_signing_forget(struct server_conn *c)
{
    c->srv->held_bytes -= c->msg_held.cap;
    free(c->msg_held.p);
    memset(&c->msg_held, 0, sizeof c->msg_held);
    c->msg_signing = false;
    c->msg_checking = false;
}
