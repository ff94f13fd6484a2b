/* smtp/command.c — parser for one SMTP command line: verb, arguments, MAIL/RCPT paths and ESMTP
 * parameters. RFC 5321 §4.1; RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 3030 CHUNKING/BINARYMIME,
 * RFC 3461 DSN, RFC 6531 SMTPUTF8, RFC 4954 AUTH. */
#include "smtp/command.h"

#include <string.h>
#include <strings.h>

/* uint64_t holds any 19-digit number and some of 20 digits; more can never fit. */
#define UINT64_DIGITS 20

const char *smtp_command_strerror(enum smtp_cmd_err err)
{
    switch (err) {
#define X(name, text) \
    case name:        \
        return text;
        SMTP_COMMAND_ERRORS(X)
#undef X
    }
    return "unknown command error";
}

/* ---- error detail: printable ASCII only, so the session may quote it in a reply ---- */

static void detail_add(struct smtp_command *cmd, const char *s, size_t len)
{
    size_t at = strlen(cmd->err_detail);
    for (size_t i = 0; i < len && at + 1 < sizeof cmd->err_detail; i++) {
        unsigned char ch = (unsigned char)s[i];
        cmd->err_detail[at++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    cmd->err_detail[at] = '\0';
}

/* Records "text" followed by the offending token (sanitised, truncated) and returns err. */
static enum smtp_cmd_err fail(struct smtp_command *cmd, enum smtp_cmd_err err, const char *text,
                              const char *token, size_t token_len)
{
    cmd->err_detail[0] = '\0';
    detail_add(cmd, text, strlen(text));
    detail_add(cmd, token, token_len);
    return err;
}

/* ---- small lexical helpers ---- */

static bool is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alnum(int ch)
{
    return is_digit(ch) || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static bool equals_nocase(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/* 1..20 decimal digits that fit a uint64_t. */
static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > UINT64_DIGITS)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool is_upper_hex(int ch)
{
    return is_digit(ch) || (ch >= 'A' && ch <= 'F');
}

/* RFC 3461 §4: xtext = *(xchar / hexchar); xchar is %d33-126 except "+" and "=", hexchar is
 * "+" and two upper-case hex digits. */
static bool valid_xtext(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '+') {
            if (len - i < 3 || !is_upper_hex(s[i + 1]) || !is_upper_hex(s[i + 2]))
                return false;
            i += 2;
        } else if (ch < 33 || ch > 126 || ch == '=') {
            return false;
        }
    }
    return true;
}

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); also used for ORCPT's addr-type,
 * whose registered names (rfc822, utf-8, x400) all have this form. */
static bool valid_keyword(const char *s, size_t len)
{
    if (len == 0 || !is_alnum(s[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!is_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

/* esmtp-value = 1*(%d33-60 / %d62-126): no "=", space, control or 8-bit octet. */
static bool valid_esmtp_value(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 33 || ch > 126 || ch == '=')
            return false;
    }
    return true;
}

static void copy_value(char *dst, const char *s, size_t len)
{
    memcpy(dst, s, len); /* callers bounded len by the destination size */
    dst[len] = '\0';
}

/* ---- ESMTP parameters of MAIL and RCPT ---- */

struct param {
    const char *keyword;
    size_t keyword_len;
    const char *value; /* NULL when the parameter has no "=" */
    size_t value_len;
};

typedef enum smtp_cmd_err (*param_fn)(struct smtp_command *cmd, unsigned ext,
                                      const struct param *p);

static enum smtp_cmd_err bad_value(struct smtp_command *cmd, const struct param *p)
{
    return fail(cmd, SMTP_CMD_BAD_PARAM_VALUE, "bad value for ", p->keyword, p->keyword_len);
}

static bool value_is(const struct param *p, const char *word)
{
    return equals_nocase(p->value, p->value_len, word);
}

/* RFC 1870 SIZE=digits. */
static enum smtp_cmd_err param_size(struct smtp_command *cmd, unsigned ext, const struct param *p)
{
    (void)ext;
    if (!parse_u64(p->value, p->value_len, &cmd->size))
        return bad_value(cmd, p);
    cmd->has_size = true;
    return SMTP_CMD_OK;
}

/* RFC 6152 BODY=7BIT|8BITMIME, RFC 3030 BODY=BINARYMIME: each only if its extension is offered. */
static enum smtp_cmd_err param_body(struct smtp_command *cmd, unsigned ext, const struct param *p)
{
    static const struct {
        const char *name;
        enum smtp_body body;
        unsigned ext;
    } bodies[] = {
        {"7BIT", SMTP_BODY_7BIT, SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME},
        {"8BITMIME", SMTP_BODY_8BITMIME, SMTP_EXT_8BITMIME},
        {"BINARYMIME", SMTP_BODY_BINARYMIME, SMTP_EXT_BINARYMIME},
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        if (!value_is(p, bodies[i].name))
            continue;
        if (!(ext & bodies[i].ext))
            return fail(cmd, SMTP_CMD_PARAM_UNSUPPORTED, "BODY=", bodies[i].name,
                        strlen(bodies[i].name));
        cmd->body = bodies[i].body;
        return SMTP_CMD_OK;
    }
    return bad_value(cmd, p);
}

/* RFC 6531 §3.4 SMTPUTF8, no value. */
static enum smtp_cmd_err param_smtputf8(struct smtp_command *cmd, unsigned ext,
                                        const struct param *p)
{
    (void)ext;
    if (p->value != NULL)
        return bad_value(cmd, p);
    cmd->smtputf8 = true;
    return SMTP_CMD_OK;
}

/* RFC 3461 §4.3 RET=FULL|HDRS. */
static enum smtp_cmd_err param_ret(struct smtp_command *cmd, unsigned ext, const struct param *p)
{
    (void)ext;
    if (value_is(p, "FULL"))
        cmd->ret = SMTP_RET_FULL;
    else if (value_is(p, "HDRS"))
        cmd->ret = SMTP_RET_HDRS;
    else
        return bad_value(cmd, p);
    return SMTP_CMD_OK;
}

/* RFC 3461 §4.4 ENVID=xtext, at most 100 characters. */
static enum smtp_cmd_err param_envid(struct smtp_command *cmd, unsigned ext, const struct param *p)
{
    (void)ext;
    if (p->value_len > LIMIT_ENVID || !valid_xtext(p->value, p->value_len))
        return bad_value(cmd, p);
    copy_value(cmd->envid, p->value, p->value_len);
    return SMTP_CMD_OK;
}

/* RFC 4954 §5 AUTH=xtext or AUTH=<>. */
static enum smtp_cmd_err param_auth(struct smtp_command *cmd, unsigned ext, const struct param *p)
{
    (void)ext;
    if (p->value_len >= sizeof cmd->auth ||
        !(value_is(p, "<>") || valid_xtext(p->value, p->value_len)))
        return bad_value(cmd, p);
    copy_value(cmd->auth, p->value, p->value_len);
    return SMTP_CMD_OK;
}

/* RFC 3461 §4.1 NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY. */
static enum smtp_cmd_err param_notify(struct smtp_command *cmd, unsigned ext,
                                      const struct param *p)
{
    static const struct {
        const char *name;
        unsigned bit;
    } words[] = {
        {"NEVER", SMTP_NOTIFY_NEVER},
        {"SUCCESS", SMTP_NOTIFY_SUCCESS},
        {"FAILURE", SMTP_NOTIFY_FAILURE},
        {"DELAY", SMTP_NOTIFY_DELAY},
    };
    unsigned bits = 0;
    size_t i = 0;
    (void)ext;
    while (i <= p->value_len) {
        const char *item = p->value + i;
        const char *comma = memchr(item, ',', p->value_len - i);
        size_t item_len = comma ? (size_t)(comma - item) : p->value_len - i;
        unsigned bit = 0;
        for (size_t w = 0; w < sizeof words / sizeof words[0]; w++)
            if (equals_nocase(item, item_len, words[w].name))
                bit = words[w].bit;
        if (bit == 0 || (bits & bit))
            return bad_value(cmd, p);
        bits |= bit;
        i += item_len + 1;
    }
    if ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER)
        return bad_value(cmd, p);
    cmd->notify = bits;
    return SMTP_CMD_OK;
}

/* RFC 3461 §4.2 ORCPT=addr-type ";" xtext, at most 500 characters. */
static enum smtp_cmd_err param_orcpt(struct smtp_command *cmd, unsigned ext,
                                     const struct param *p)
{
    (void)ext;
    const char *semi = memchr(p->value, ';', p->value_len);
    if (semi == NULL || p->value_len > LIMIT_ORCPT)
        return bad_value(cmd, p);
    size_t type_len = (size_t)(semi - p->value);
    size_t addr_len = p->value_len - type_len - 1;
    if (!valid_keyword(p->value, type_len) || addr_len == 0 ||
        !valid_xtext(semi + 1, addr_len))
        return bad_value(cmd, p);
    copy_value(cmd->orcpt, p->value, p->value_len);
    return SMTP_CMD_OK;
}

struct param_row {
    const char *keyword;
    enum smtp_verb verb; /* MAIL or RCPT */
    unsigned ext;        /* known when any of these extensions was offered */
    bool needs_value;
    param_fn parse;
};

static const struct param_row params[] = {
    {"SIZE", SMTP_VERB_MAIL, SMTP_EXT_SIZE, true, param_size},
    {"BODY", SMTP_VERB_MAIL, SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME, true, param_body},
    {"SMTPUTF8", SMTP_VERB_MAIL, SMTP_EXT_SMTPUTF8, false, param_smtputf8},
    {"RET", SMTP_VERB_MAIL, SMTP_EXT_DSN, true, param_ret},
    {"ENVID", SMTP_VERB_MAIL, SMTP_EXT_DSN, true, param_envid},
    {"AUTH", SMTP_VERB_MAIL, SMTP_EXT_AUTH, true, param_auth},
    {"NOTIFY", SMTP_VERB_RCPT, SMTP_EXT_DSN, true, param_notify},
    {"ORCPT", SMTP_VERB_RCPT, SMTP_EXT_DSN, true, param_orcpt},
};

static const struct param_row *param_find(const struct param *p, enum smtp_verb verb,
                                          unsigned ext)
{
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        const struct param_row *row = &params[i];
        if (row->verb == verb && (ext & row->ext) &&
            equals_nocase(p->keyword, p->keyword_len, row->keyword))
            return row;
    }
    return NULL;
}

/* Splits "keyword[=value]" and runs the row's parser; seen catches duplicates. */
static enum smtp_cmd_err parse_param(struct smtp_command *cmd, unsigned ext, const char *s,
                                     size_t len, unsigned *seen)
{
    const char *eq = memchr(s, '=', len);
    struct param p = {s, eq ? (size_t)(eq - s) : len, NULL, 0};
    if (eq != NULL) {
        p.value = eq + 1;
        p.value_len = len - p.keyword_len - 1;
    }
    if (!valid_keyword(p.keyword, p.keyword_len))
        return fail(cmd, SMTP_CMD_SYNTAX, "malformed parameter ", s, len);
    const struct param_row *row = param_find(&p, cmd->verb, ext);
    if (row == NULL)
        return fail(cmd, SMTP_CMD_UNKNOWN_PARAM, "", p.keyword, p.keyword_len);
    unsigned bit = 1u << (row - params);
    if (*seen & bit)
        return fail(cmd, SMTP_CMD_BAD_PARAM_VALUE, "duplicate ", p.keyword, p.keyword_len);
    *seen |= bit;
    if (p.value != NULL ? !valid_esmtp_value(p.value, p.value_len) : row->needs_value)
        return bad_value(cmd, &p);
    return row->parse(cmd, ext, &p);
}

/* Parameters are separated (and may be followed) by one or more spaces. */
static enum smtp_cmd_err parse_params(struct smtp_command *cmd, unsigned ext, const char *s,
                                      size_t len)
{
    unsigned seen = 0;
    size_t i = 0;
    for (;;) {
        while (i < len && s[i] == ' ')
            i++;
        if (i == len)
            return SMTP_CMD_OK;
        size_t start = i;
        while (i < len && s[i] != ' ')
            i++;
        enum smtp_cmd_err err = parse_param(cmd, ext, s + start, i - start, &seen);
        if (err != SMTP_CMD_OK)
            return err;
    }
}

/* ---- verb arguments ---- */

typedef enum smtp_cmd_err (*arg_fn)(struct smtp_command *cmd, unsigned ext);

static enum smtp_cmd_err arg_none(struct smtp_command *cmd, unsigned ext)
{
    (void)ext;
    if (cmd->arg != NULL)
        return fail(cmd, SMTP_CMD_SYNTAX, "no argument allowed", "", 0);
    return SMTP_CMD_OK;
}

static enum smtp_cmd_err arg_optional(struct smtp_command *cmd, unsigned ext)
{
    (void)cmd;
    (void)ext;
    return SMTP_CMD_OK;
}

static enum smtp_cmd_err arg_required(struct smtp_command *cmd, unsigned ext)
{
    (void)ext;
    if (cmd->arg == NULL)
        return fail(cmd, SMTP_CMD_SYNTAX, "argument required", "", 0);
    return SMTP_CMD_OK;
}

/* HELO/EHLO: one Domain or address-literal, ASCII only (RFC 6531 §3.7.1: A-labels). */
static enum smtp_cmd_err arg_domain(struct smtp_command *cmd, unsigned ext)
{
    (void)ext;
    if (cmd->arg == NULL || memchr(cmd->arg, ' ', cmd->arg_len) != NULL)
        return fail(cmd, SMTP_CMD_SYNTAX, "one domain argument required", "", 0);
    if (!smtp_addr_valid_domain(cmd->arg, cmd->arg_len, false))
        return fail(cmd, SMTP_CMD_SYNTAX, "invalid domain ", cmd->arg, cmd->arg_len);
    return SMTP_CMD_OK;
}

/* What differs between MAIL FROM and RCPT TO. */
struct path_kind {
    const char *prefix;
    unsigned flags;        /* SMTP_ADDR_* always used */
    unsigned utf8_ext;     /* ext bit that allows UTF-8 paths */
    enum smtp_cmd_err bad; /* error for a malformed path */
};

static const struct path_kind mail_kind = {"FROM:", SMTP_ADDR_ALLOW_NULL, SMTP_EXT_SMTPUTF8,
                                           SMTP_CMD_BAD_SENDER};
static const struct path_kind rcpt_kind = {"TO:", SMTP_ADDR_ALLOW_POSTMASTER,
                                           SMTP_EXT_UTF8_TRANSACTION, SMTP_CMD_BAD_RECIPIENT};

static enum smtp_cmd_err path_error(struct smtp_command *cmd, const struct path_kind *kind,
                                    enum smtp_addr_err err)
{
    const char *text = smtp_addr_strerror(err);
    return fail(cmd, err == SMTP_ADDR_EIGHT_BIT ? SMTP_CMD_EIGHT_BIT_PATH : kind->bad, text,
                "", 0);
}

/* "FROM:" / "TO:", optional spaces (a common client habit), "<path>", then parameters. MAIL
 * paths may be UTF-8 only with the SMTPUTF8 parameter on the same line, so when SMTPUTF8 is
 * offered the path is parsed allowing UTF-8 and checked against the parameter afterwards. */
static enum smtp_cmd_err arg_path(struct smtp_command *cmd, unsigned ext,
                                  const struct path_kind *kind)
{
    const char *a = cmd->arg;
    size_t n = cmd->arg_len, plen = strlen(kind->prefix);
    if (a == NULL || n < plen || strncasecmp(a, kind->prefix, plen) != 0)
        return fail(cmd, SMTP_CMD_SYNTAX, "expected ", kind->prefix, plen);
    size_t i = plen;
    while (i < n && a[i] == ' ')
        i++;
    if (i == n || a[i] != '<')
        return fail(cmd, kind->bad, "address must be in angle brackets", "", 0);

    unsigned flags = kind->flags | ((ext & kind->utf8_ext) ? SMTP_ADDR_UTF8 : 0);
    size_t used = 0;
    enum smtp_addr_err err = smtp_addr_parse_path(a + i, n - i, flags, &cmd->path, &used);
    if (err != SMTP_ADDR_OK)
        return path_error(cmd, kind, err);
    i += used;
    if (i < n && a[i] != ' ')
        return fail(cmd, kind->bad, "junk after address", "", 0);

    enum smtp_cmd_err perr = parse_params(cmd, ext, a + i, n - i);
    if (perr != SMTP_CMD_OK)
        return perr;
    if (cmd->verb == SMTP_VERB_MAIL && cmd->path.is_utf8 && !cmd->smtputf8)
        return path_error(cmd, kind, SMTP_ADDR_EIGHT_BIT);
    return SMTP_CMD_OK;
}

static enum smtp_cmd_err arg_mail(struct smtp_command *cmd, unsigned ext)
{
    return arg_path(cmd, ext, &mail_kind);
}

static enum smtp_cmd_err arg_rcpt(struct smtp_command *cmd, unsigned ext)
{
    return arg_path(cmd, ext, &rcpt_kind);
}

/* RFC 3030 §2: "BDAT" SP chunk-size [SP "LAST"]. */
static enum smtp_cmd_err arg_bdat(struct smtp_command *cmd, unsigned ext)
{
    const char *a = cmd->arg;
    size_t n = cmd->arg_len, i = 0;
    (void)ext;
    if (a == NULL)
        return fail(cmd, SMTP_CMD_SYNTAX, "chunk size required", "", 0);
    while (i < n && a[i] != ' ')
        i++;
    if (!parse_u64(a, i, &cmd->chunk_size))
        return fail(cmd, SMTP_CMD_SYNTAX, "bad chunk size ", a, i);
    while (i < n && a[i] == ' ')
        i++;
    if (i == n)
        return SMTP_CMD_OK;
    if (!equals_nocase(a + i, n - i, "LAST"))
        return fail(cmd, SMTP_CMD_SYNTAX, "expected LAST, got ", a + i, n - i);
    cmd->last = true;
    return SMTP_CMD_OK;
}

/* ---- verbs ---- */

struct verb_row {
    const char *name;
    enum smtp_verb verb;
    arg_fn parse;
};

/* Known-but-unimplemented verbs parse fine: the session answers them 502. */
static const struct verb_row verbs[] = {
    {"HELO", SMTP_VERB_HELO, arg_domain},   {"EHLO", SMTP_VERB_EHLO, arg_domain},
    {"MAIL", SMTP_VERB_MAIL, arg_mail},     {"RCPT", SMTP_VERB_RCPT, arg_rcpt},
    {"DATA", SMTP_VERB_DATA, arg_none},     {"BDAT", SMTP_VERB_BDAT, arg_bdat},
    {"RSET", SMTP_VERB_RSET, arg_none},     {"NOOP", SMTP_VERB_NOOP, arg_optional},
    {"QUIT", SMTP_VERB_QUIT, arg_none},     {"VRFY", SMTP_VERB_VRFY, arg_required},
    {"EXPN", SMTP_VERB_EXPN, arg_required}, {"HELP", SMTP_VERB_HELP, arg_optional},
    {"STARTTLS", SMTP_VERB_STARTTLS, arg_none}, {"AUTH", SMTP_VERB_AUTH, arg_required},
    {"TURN", SMTP_VERB_TURN, arg_optional}, {"ETRN", SMTP_VERB_ETRN, arg_optional},
    {"ATRN", SMTP_VERB_ATRN, arg_optional}, {"SEND", SMTP_VERB_SEND, arg_optional},
    {"SOML", SMTP_VERB_SOML, arg_optional}, {"SAML", SMTP_VERB_SAML, arg_optional},
};

/* The argument is what follows the verb's spaces, without trailing spaces; NULL when empty. */
static void split_arg(struct smtp_command *cmd, const char *line, size_t len, size_t verb_len)
{
    size_t start = verb_len, end = len;
    while (start < end && line[start] == ' ')
        start++;
    while (end > start && line[end - 1] == ' ')
        end--;
    if (end > start) {
        cmd->arg = line + start;
        cmd->arg_len = end - start;
    }
}

enum smtp_cmd_err smtp_command_parse(const char *line, size_t len, unsigned ext,
                                     struct smtp_command *out)
{
    memset(out, 0, sizeof *out);
    const char *space = memchr(line, ' ', len);
    size_t verb_len = space ? (size_t)(space - line) : len;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        if (!equals_nocase(line, verb_len, verbs[i].name))
            continue;
        out->verb = verbs[i].verb;
        split_arg(out, line, len, verb_len);
        return verbs[i].parse(out, ext);
    }
    return fail(out, SMTP_CMD_UNKNOWN_VERB, "", line, verb_len);
}
