/* smtp/sasl.c — strict base64 (RFC 4648 §4) and SASL PLAIN (RFC 4616) / LOGIN client messages
 * for the AUTH command (RFC 4954 §4). Buffers holding secrets are wiped with explicit_bzero. */
#include "smtp/sasl.h"
#include "reply/utf8.h"

#include <string.h>
#include <strings.h>

/* A PLAIN message that fills every field of struct smtp_sasl_creds, with its two NULs. */
#define PLAIN_MAX (LIMIT_PATH + LIMIT_PATH + 1023 + 2)

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const char *smtp_sasl_strerror(enum smtp_sasl_err err)
{
    switch (err) {
#define X(name, text) \
    case name:        \
        return text;
        SMTP_SASL_ERRORS(X)
#undef X
    }
    return "unknown SASL error";
}

/* ---- base64 ---- */

/* The 6-bit value of a base64 character, or -1. */
static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

static size_t padding(const char *in, size_t len)
{
    size_t pad = 0;
    while (pad < 2 && pad < len && in[len - 1 - pad] == '=')
        pad++;
    return pad;
}

size_t smtp_base64_decoded_len(const char *in, size_t len)
{
    if (len % 4 != 0)
        return 0;
    return len / 4 * 3 - padding(in, len);
}

/* Decodes one quad; pad is how many of its last characters are '='. */
static bool decode_quad(const char *q, size_t pad, unsigned char *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < 4; i++) {
        int d = i < 4 - pad ? b64_value((unsigned char)q[i]) : 0;
        if (d < 0)
            return false;
        v = v << 6 | (unsigned)d;
    }
    /* Non-canonical: bits the padding hides must be zero (RFC 4648 §3.5 lets decoders reject). */
    if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0))
        return false;
    unsigned char bytes[3] = {(unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
    memcpy(out, bytes, 3 - pad);
    return true;
}

bool smtp_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                        size_t *out_len)
{
    if (len % 4 != 0)
        return false;
    size_t pad = padding(in, len), need = smtp_base64_decoded_len(in, len);
    if (need > cap)
        return false;
    for (size_t i = 0; i < len; i += 4) {
        size_t quad_pad = i + 4 == len ? pad : 0;
        if (!decode_quad(in + i, quad_pad, out + i / 4 * 3))
            return false;
    }
    *out_len = need;
    return true;
}

size_t smtp_base64_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
    if (cap > 0)
        out[0] = '\0';
    if (len > (cap / 4) * 3 || (len + 2) / 3 * 4 >= cap)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        size_t left = len - i;
        unsigned v = (unsigned)in[i] << 16;
        if (left > 1)
            v |= (unsigned)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        out[n++] = alphabet[v >> 18 & 63];
        out[n++] = alphabet[v >> 12 & 63];
        out[n++] = left > 1 ? alphabet[v >> 6 & 63] : '=';
        out[n++] = left > 2 ? alphabet[v & 63] : '=';
    }
    out[n] = '\0';
    return n;
}

/* ---- PLAIN and LOGIN ---- */


/* Copies one field into a NUL-terminated buffer of cap bytes. */
static enum smtp_sasl_err take_field(const unsigned char *s, size_t len, char *out, size_t cap)
{
    if (len >= cap)
        return SMTP_SASL_TOO_LONG;
    memcpy(out, s, len);
    out[len] = '\0';
    return SMTP_SASL_OK;
}

static enum smtp_sasl_err plain_fields(const unsigned char *msg, size_t len,
                                       struct smtp_sasl_creds *out)
{
    const unsigned char *nul1 = memchr(msg, '\0', len);
    if (nul1 == NULL)
        return SMTP_SASL_MALFORMED;
    size_t zlen = (size_t)(nul1 - msg);
    const unsigned char *user = nul1 + 1;
    const unsigned char *nul2 = memchr(user, '\0', len - zlen - 1);
    if (nul2 == NULL)
        return SMTP_SASL_MALFORMED;
    size_t ulen = (size_t)(nul2 - user);
    const unsigned char *pass = nul2 + 1;
    size_t plen = len - zlen - ulen - 2;
    /* A third NUL would sit inside passwd, which RFC 4616 forbids. */
    if (ulen == 0 || plen == 0 || memchr(pass, '\0', plen) != NULL)
        return SMTP_SASL_MALFORMED;
    if (!reply_utf8_valid(msg, zlen) || !reply_utf8_valid(user, ulen) ||
        !reply_utf8_valid(pass, plen))
        return SMTP_SASL_MALFORMED;
    enum smtp_sasl_err err = take_field(msg, zlen, out->authzid, sizeof out->authzid);
    if (err == SMTP_SASL_OK)
        err = take_field(user, ulen, out->user, sizeof out->user);
    if (err == SMTP_SASL_OK)
        err = take_field(pass, plen, out->pass, sizeof out->pass);
    return err;
}

enum smtp_sasl_err smtp_sasl_plain(const unsigned char *msg, size_t len,
                                   struct smtp_sasl_creds *out)
{
    enum smtp_sasl_err err = plain_fields(msg, len, out);
    if (err != SMTP_SASL_OK)
        smtp_sasl_wipe(out);
    return err;
}

/* Decodes a client response (RFC 4954 §4) into buf: "*" cancels, "=" is the empty response. */
static enum smtp_sasl_err decode_response(const char *line, size_t len, unsigned char *buf,
                                          size_t cap, size_t *out_len)
{
    if (len == 1 && line[0] == '*')
        return SMTP_SASL_CANCELLED;
    if (len == 1 && line[0] == '=') {
        *out_len = 0;
        return SMTP_SASL_OK;
    }
    if (len % 4 != 0)
        return SMTP_SASL_BAD_BASE64;
    if (smtp_base64_decoded_len(line, len) > cap)
        return SMTP_SASL_TOO_LONG;
    return smtp_base64_decode(line, len, buf, cap, out_len) ? SMTP_SASL_OK : SMTP_SASL_BAD_BASE64;
}

enum smtp_sasl_err smtp_sasl_plain_response(const char *line, size_t len,
                                            struct smtp_sasl_creds *out)
{
    unsigned char msg[PLAIN_MAX];
    size_t n = 0;
    enum smtp_sasl_err err = decode_response(line, len, msg, sizeof msg, &n);
    if (err == SMTP_SASL_OK)
        err = smtp_sasl_plain(msg, n, out);
    else
        smtp_sasl_wipe(out);
    explicit_bzero(msg, sizeof msg);
    return err;
}

enum smtp_sasl_err smtp_sasl_login_field(const char *line, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    enum smtp_sasl_err err = SMTP_SASL_TOO_LONG;
    if (cap > 0)
        err = decode_response(line, len, (unsigned char *)out, cap - 1, &n);
    if (err == SMTP_SASL_OK && (n == 0 || memchr(out, '\0', n) != NULL))
        err = SMTP_SASL_MALFORMED;
    if (err == SMTP_SASL_OK)
        out[n] = '\0';
    else if (cap > 0)
        explicit_bzero(out, cap);
    return err;
}

bool smtp_sasl_authzid_ok(const struct smtp_sasl_creds *c)
{
    return c->authzid[0] == '\0' || strcasecmp(c->authzid, c->user) == 0;
}

void smtp_sasl_wipe(struct smtp_sasl_creds *c)
{
    explicit_bzero(c, sizeof *c);
}
