/* reply/explain_json.c — writes explanations and bounce recipients as JSON objects through the
 * caller's output (explain_json.h). */
#include "reply/explain_json.h"

#include <string.h>

struct w {
    const struct reply_json_out *o;
    bool ok;
};

static void raw(struct w *w, const char *s, size_t n)
{
    if (w->ok)
        w->ok = w->o->put(w->o->ctx, s, n);
}

static void raw_str(struct w *w, const char *s)
{
    raw(w, s, strlen(s));
}

static void str(struct w *w, const char *s, size_t n)
{
    if (w->ok)
        w->ok = reply_json_string(s, n, w->o->put, w->o->ctx);
}

/* A text of the static tables, or null. */
static void text(struct w *w, const char *s)
{
    if (!s)
        raw(w, "null", 4);
    else if (w->o->put_static && w->ok)
        w->ok = w->o->put_static(w->o->ctx, s);
    else
        str(w, s, strlen(s));
}

/* ,"name":"value" (or null); the key is made at compile time from the name's literal. */
static void field_k(struct w *w, const char *key, size_t key_len, const char *value)
{
    raw(w, key, key_len);
    text(w, value);
}
#define field(w, name, value) field_k((w), ",\"" name "\":", sizeof(",\"" name "\":") - 1, (value))

/* Decimal digits of v at the end of d[0..cap); returns where they start. */
static size_t digits(unsigned long v, char *d, size_t cap)
{
    size_t at = cap;
    do {
        d[--at] = (char)('0' + v % 10);
        v /= 10;
    } while (v && at > 0);
    return at;
}

static void number(struct w *w, unsigned long v)
{
    char d[24];
    size_t at = digits(v, d, sizeof d);
    raw(w, d + at, sizeof d - at);
}

bool reply_explain_json(const struct reply_json_out *o, const struct reply_explanation *ex,
                        const char *t, size_t text_len)
{
    struct w w = {.o = o, .ok = true};
    raw_str(&w, "{\"code\":");
    if (ex->code)
        number(&w, (unsigned long)ex->code);
    else
        raw_str(&w, "null");
    raw_str(&w, ",\"enhanced\":");
    if (ex->status.cls) {
        raw(&w, "\"", 1);
        number(&w, (unsigned long)ex->status.cls);
        raw(&w, ".", 1);
        number(&w, (unsigned long)ex->status.subject);
        raw(&w, ".", 1);
        number(&w, (unsigned long)ex->status.detail);
        raw(&w, "\"", 1);
    } else {
        raw_str(&w, "null");
    }
    field(&w, "class", reply_class_name(ex->cls));
    raw_str(&w, ex->retry ? ",\"retry\":true" : ",\"retry\":false");
    field(&w, "reason", reply_reason_name(ex->reason));
    field(&w, "meaning", ex->meaning);
    field(&w, "cause", ex->cause);
    field(&w, "action", ex->action);
    field(&w, "retry_when", ex->retry_when);
    field(&w, "summary", ex->summary);
    field(&w, "title", ex->basic ? ex->basic->title : NULL);
    field(&w, "enhanced_title", ex->enhanced ? ex->enhanced->title : NULL);
    field(&w, "admin", ex->admin);
    static const char *const from[] = {"class", "code", "enhanced", "text"};
    field(&w, "reason_from", from[ex->reason_from]);
    field(&w, "matched", ex->pattern ? ex->pattern->phrase : NULL);
    raw_str(&w, ",\"command\":");
    if (ex->command)
        str(&w, ex->command, ex->command_len);
    else
        raw_str(&w, "null");
    raw_str(&w, ",\"text\":");
    str(&w, t, text_len);
    raw_str(&w, ",\"notes\":[");
    bool first = true;
    for (int n = 0; n < REPLY_NOTE__COUNT; n++) {
        if (!(ex->notes & (1u << n)))
            continue;
        if (!first)
            raw(&w, ",", 1);
        text(&w, reply_explain_note_text((enum reply_note)n));
        first = false;
    }
    raw_str(&w, "]}");
    return w.ok;
}

bool reply_explain_json_error(const struct reply_json_out *o, enum reply_explain_err err,
                              unsigned long line, const char *input, size_t len)
{
    struct w w = {.o = o, .ok = true};
    raw_str(&w, "{\"error\":");
    text(&w, reply_explain_strerror(err));
    raw_str(&w, ",\"line\":");
    number(&w, line);
    raw_str(&w, ",\"input\":");
    str(&w, input, len);
    raw(&w, "}", 1);
    return w.ok;
}

static const char *class_of(const struct reply_bounce_rcpt *r)
{
    if (r->status[0] == '2')
        return "success";
    if (r->status[0] == '4')
        return "transient";
    if (r->status[0] == '5')
        return "permanent";
    return NULL;
}

/* ,"name":"value" for a value of the message (escaped each time), or null */
static void value_k(struct w *w, const char *key, size_t key_len, const char *v)
{
    raw(w, key, key_len);
    if (v)
        str(w, v, strlen(v));
    else
        raw(w, "null", 4);
}
#define value(w, name, v) value_k((w), ",\"" name "\":", sizeof(",\"" name "\":") - 1, (v))

bool reply_bounce_json(const struct reply_json_out *o, const char *name,
                       const struct reply_bounce *b, const struct reply_bounce_rcpt *r)
{
    struct w w = {.o = o, .ok = true};
    bool nostatus = b->kind != REPLY_BOUNCE_DSN;
    const struct reply_explanation *ex = r->explained && !nostatus ? &r->ex : NULL;
    raw_str(&w, "{\"file\":");
    str(&w, name, strlen(name));
    value(&w, "kind", reply_bounce_kind_name(b->kind));
    value(&w, "recipient", r->recipient);
    value(&w, "action", r->action);
    value(&w, "status", nostatus ? "" : r->status);
    raw_str(&w, ",\"reply_code\":");
    if (r->reply_code)
        number(&w, (unsigned long)r->reply_code);
    else
        raw_str(&w, "null");
    value(&w, "reply", r->diag);
    value(&w, "reason", r->reason);
    raw_str(&w, r->hard ? ",\"hardbounce\":true" : ",\"hardbounce\":false");
    value(&w, "remote_mta", r->remote_mta[0] ? r->remote_mta : NULL);
    value(&w, "feedback_type", b->feedback_type[0] ? b->feedback_type : NULL);
    value(&w, "message_id", b->message_id);
    value(&w, "subject", b->subject);
    value(&w, "sender", b->sender);
    value(&w, "date", b->date);
    value(&w, "class", nostatus ? NULL : class_of(r));
    raw_str(&w, !nostatus && r->status[0] == '4' ? ",\"retry\":true" : ",\"retry\":false");
    value(&w, "meaning", ex ? ex->meaning : NULL);
    value(&w, "cause", ex ? ex->cause : NULL);
    value(&w, "action_advice", ex ? ex->action : NULL);
    value(&w, "retry_when", ex ? ex->retry_when : NULL);
    raw(&w, "}", 1);
    return w.ok;
}
