/* reply/explain_json.h — the JSON of an explanation and of a bounce's recipient: one object
 * each, as `clearmta explain --json` and `--bounce --json` print them and the HTTP console's
 * /api/explain answers them (field names in docs/explain.md). RFC 8259. */
#ifndef CLEARMTA_REPLY_EXPLAIN_JSON_H
#define CLEARMTA_REPLY_EXPLAIN_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "reply/bounce.h"
#include "reply/explain.h"
#include "reply/json.h"

/* Where the JSON goes: put takes bytes; put_static (optional) writes a text of the static
 * tables as a JSON string, e.g. from a cache of their escaped forms; NULL escapes it each
 * time. */
struct reply_json_out {
    reply_json_put *put;
    bool (*put_static)(void *ctx, const char *text);
    void *ctx;
};

/* {"code":…,"enhanced":…,"class":…,"retry":…,"reason":…,…,"text":…,"notes":[…]} for ex,
 * text[0..text_len) being the reply text (reply_explain_text). No newline after it. */
bool reply_explain_json(const struct reply_json_out *o, const struct reply_explanation *ex,
                        const char *text, size_t text_len);

/* {"error":…,"line":N,"input":…} for input that is no reply. */
bool reply_explain_json_error(const struct reply_json_out *o, enum reply_explain_err err,
                              unsigned long line, const char *input, size_t len);

/* {"file":name,"kind":…,"recipient":…,…} for recipient r of bounce b. */
bool reply_bounce_json(const struct reply_json_out *o, const char *name,
                       const struct reply_bounce *b, const struct reply_bounce_rcpt *r);

#endif
