/* server/http_api.c — the console's JSON API (docs/console.md): explain a reply, a log line or
 * a whole bounce with the reply table (reply/explain_json.c, as `clearmta explain --json`),
 * the queue and the limits as the control socket's commands answer them (queue_admin.c,
 * limits_show.c, run in process), the traffic of the last hour, and the queue actions, which
 * must carry the session's CSRF token (403 otherwise; GET on an action: 405). */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/control.h"
#include "reply/bounce.h"
#include "reply/explain_json.h"
#include "server/http_internal.h"
#include "server/server.h"

#define EXPLAIN_TEXT_MAX 8192 /* reply text shown back, as `clearmta explain` */
#define ID_MAX 64             /* queue ids and limit subjects taken from a path or query */

static bool buffer_put(void *ctx, const char *p, size_t n)
{
    return evbuffer_add(ctx, p, n) == 0;
}

static bool is_get(struct evhttp_request *req)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    return m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
}

static bool is_post(struct evhttp_request *req)
{
    return evhttp_request_get_command(req) == EVHTTP_REQ_POST;
}

/* ---- explain ----------------------------------------------------------------------------- */

static void explain_text(struct evhttp_request *req, const char *input, size_t len)
{
    struct reply_explanation ex;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        http_send_error(req, 500, "out of memory");
        return;
    }
    struct reply_json_out o = {.put = buffer_put, .ctx = b};
    enum reply_explain_err err = reply_explain(input, len, &ex);
    int code = 200;
    if (err == REPLY_EXPLAIN_OK) {
        static char text[EXPLAIN_TEXT_MAX];
        size_t text_len = reply_explain_text(&ex, text, sizeof text);
        reply_explain_json(&o, &ex, text, text_len);
    } else {
        reply_explain_json_error(&o, err, 1, input, len);
        code = 400;
    }
    evbuffer_add(b, "\n", 1);
    http_send_buffer(req, code, "application/json", b);
    evbuffer_free(b);
}

/* A whole message: each recipient of a bounce, or the text as one reply when it is none. */
static void explain_body(struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *msg = malloc(len + 1);
    char *arena = malloc(3 * len + 1);
    struct reply_bounce *bounce = malloc(sizeof *bounce);
    struct evbuffer *b = evbuffer_new();
    if (!msg || !arena || !bounce || !b || evbuffer_copyout(in, msg, len) != (ev_ssize_t)len) {
        http_send_error(req, 500, "out of memory");
    } else if (reply_bounce_parse(msg, len, arena, 3 * len + 1, bounce) == REPLY_BOUNCE_NONE) {
        msg[len] = '\0';
        explain_text(req, msg, len);
    } else {
        struct reply_json_out o = {.put = buffer_put, .ctx = b};
        evbuffer_add_printf(b, "{\"kind\":\"%s\",\"recipients\":[",
                            bounce->kind == REPLY_BOUNCE_DSN        ? "bounce"
                            : bounce->kind == REPLY_BOUNCE_VACATION ? "vacation"
                                                                     : "feedback");
        for (size_t i = 0; i < bounce->nrcpt; i++) {
            if (i)
                evbuffer_add(b, ",", 1);
            reply_bounce_json(&o, "-", bounce, &bounce->rcpt[i]);
        }
        evbuffer_add(b, "]}\n", 3);
        http_send_buffer(req, 200, "application/json", b);
    }
    if (b)
        evbuffer_free(b);
    free(msg);
    free(arena);
    free(bounce);
}

/* The value of name in the request's query (form-encoded: '+' is a space), or NULL. */
static const char *query_value(struct evhttp_request *req, struct evkeyvalq *params,
                               const char *name)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    params->tqh_first = NULL; /* TAILQ_INIT: evhttp_clear_headers works on it either way */
    params->tqh_last = &params->tqh_first;
    if (!q || evhttp_parse_query_str(q, params) != 0)
        return NULL;
    return evhttp_find_header(params, name);
}

static void api_explain(struct evhttp_request *req)
{
    if (is_post(req)) {
        explain_body(req);
        return;
    }
    struct evkeyvalq params;
    const char *q = query_value(req, &params, "q");
    if (!q || !q[0])
        http_send_error(req, 400, "give the reply to explain as ?q=");
    else
        explain_text(req, q, strlen(q));
    evhttp_clear_headers(&params);
}

/* ---- commands of the control socket ------------------------------------------------------ */

/* The command's answer: its JSON as it is, or its words as {"error":…}. */
static void on_command_done(void *ctx, int status, const char *body, size_t len)
{
    struct evhttp_request *req = ctx;
    if (status == 0) {
        http_send(req, 200, "application/json", body, len);
        return;
    }
    char text[512];
    size_t n = len < sizeof text - 1 ? len : sizeof text - 1;
    memcpy(text, body, n);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
        n--;
    text[n] = '\0';
    http_send_error(req, status == 2 ? 400 : strncmp(text, "no message", 10) == 0 ? 404 : 500,
                    text);
}

static void run_command(struct server_http *h, struct evhttp_request *req, const char *line)
{
    if (!h->srv->control) {
        http_send_error(req, 503, "the control socket is not open (see the server log)");
        return;
    }
    if (!net_control_run(h->srv->control, line, on_command_done, req))
        http_send_error(req, 500, "out of memory");
}

static void api_limits(struct server_http *h, struct evhttp_request *req)
{
    struct evkeyvalq params;
    const char *subject = query_value(req, &params, "subject");
    char line[ID_MAX + 32];
    if (subject && subject[0] && !http_safe_word(subject, ID_MAX)) {
        http_send_error(req, 400, "subject: a user name or an IP address");
    } else {
        if (subject && subject[0])
            snprintf(line, sizeof line, "limits show %s --json", subject);
        else
            snprintf(line, sizeof line, "limits show --json");
        run_command(h, req, line);
    }
    evhttp_clear_headers(&params);
}

/* ---- actions ----------------------------------------------------------------------------- */

/* a and b (HTTP_CSRF_HEX bytes each) are equal, in a time that does not tell where they
 * differ. */
static bool same_token(const char *a, const char *b)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < HTTP_CSRF_HEX; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* The X-CSRF-Token header equals the session cookie and is a token this server issued; every
 * remembered token is compared whole, so the time taken tells nothing of them. */
static bool csrf_ok(struct server_http *h, struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *given = evhttp_find_header(in, "X-CSRF-Token");
    char cookie[HTTP_CSRF_HEX + 1];
    if (!given || strlen(given) != HTTP_CSRF_HEX ||
        !http_cookie_value(evhttp_find_header(in, "Cookie"), "clearmta_csrf", cookie,
                           sizeof cookie) || strlen(cookie) != HTTP_CSRF_HEX ||
        !same_token(given, cookie))
        return false;
    bool known = false;
    for (size_t i = 0; i < HTTP_CSRF_SESSIONS; i++)
        known |= same_token(h->csrf[i], given);
    return known;
}

/* POST /api/queue/ID/hold|release|flush|delete (delete: ?mode=bounce or ?mode=silent). */
static void api_action(struct server_http *h, struct evhttp_request *req, const char *rest)
{
    char id[ID_MAX + 1];
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : 0;
    if (!slash || n == 0 || n > ID_MAX) {
        http_send_error(req, 404, "no such action");
        return;
    }
    memcpy(id, rest, n);
    id[n] = '\0';
    const char *action = slash + 1;
    static const char *const actions[] = {"hold", "release", "flush", "delete"};
    bool known = false;
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        known |= strcmp(action, actions[i]) == 0;
    if (!known || !http_safe_word(id, ID_MAX)) {
        http_send_error(req, 404, "no such action");
        return;
    }
    if (!is_post(req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        http_send_error(req, 405, "actions are POST requests");
        return;
    }
    if (!csrf_ok(h, req)) {
        http_send_error(req, 403, "missing or wrong X-CSRF-Token (reload the console)");
        return;
    }
    char line[ID_MAX + 48];
    if (strcmp(action, "delete") == 0) {
        struct evkeyvalq params;
        const char *mode = query_value(req, &params, "mode");
        bool bounce = mode && strcmp(mode, "bounce") == 0;
        bool silent = mode && strcmp(mode, "silent") == 0;
        evhttp_clear_headers(&params);
        if (!bounce && !silent) {
            http_send_error(req, 400, "delete needs ?mode=bounce or ?mode=silent");
            return;
        }
        snprintf(line, sizeof line, "queue delete %s --%s --json", id, bounce ? "bounce" : "silent");
    } else {
        snprintf(line, sizeof line, "queue %s %s --json", action, id);
    }
    run_command(h, req, line);
}

/* ---- routes ------------------------------------------------------------------------------ */

bool http_api_route(struct server_http *h, struct evhttp_request *req, const char *path)
{
    static const char queue_prefix[] = "/api/queue/";
    if (strncmp(path, queue_prefix, sizeof queue_prefix - 1) == 0) {
        api_action(h, req, path + sizeof queue_prefix - 1);
        return true;
    }
    if (strcmp(path, "/api/explain") == 0) {
        if (is_get(req) || is_post(req))
            api_explain(req);
        else
            http_send_error(req, 405, "GET or POST");
        return true;
    }
    if (!is_get(req)) {
        http_send_error(req, 405, "GET only");
        return true;
    }
    if (strcmp(path, "/api/queue") == 0) {
        run_command(h, req, "queue list --json");
    } else if (strcmp(path, "/api/limits") == 0) {
        api_limits(h, req);
    } else if (strcmp(path, "/api/traffic") == 0) {
        struct evbuffer *b = evbuffer_new();
        if (!b) {
            http_send_error(req, 500, "out of memory");
            return true;
        }
        http_traffic_sample(&h->traffic);
        http_traffic_json(&h->traffic, b);
        http_send_buffer(req, 200, "application/json", b);
        evbuffer_free(b);
    } else {
        http_send_error(req, 404, "no such API");
    }
    return true;
}
