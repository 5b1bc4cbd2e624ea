#include "sb_api.h"
#include "alloc.h"
#include "sb_json.h"
#include "sb_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define API_PREFIX "/api/user/whatsapp/"

enum route { R_NONE, R_FREEFORM, R_SEND, R_SESSION, R_SENDERS, R_TEMPLATES };

/* A validation failure: the message of a 422 VALIDATION_ERROR. */
struct verr {
    char msg[160];
};

/* ---- routing and auth ---- */

/* For R_TEMPLATES, *seg and *seglen give the raw {senderId} segment. */
static enum route
match_route(const char *path, const char **seg, size_t *seglen)
{
    static const char tail[] = "/templates";
    size_t plen = strlen(API_PREFIX);

    if (strncmp(path, API_PREFIX, plen) != 0)
        return R_NONE;
    path += plen;
    if (strcmp(path, "send-freeform") == 0)
        return R_FREEFORM;
    if (strcmp(path, "send") == 0)
        return R_SEND;
    if (strcmp(path, "session-status") == 0)
        return R_SESSION;
    if (strcmp(path, "senders") == 0)
        return R_SENDERS;
    if (strncmp(path, "senders/", 8) != 0)
        return R_NONE;
    path += 8;
    const char *slash = strchr(path, '/');
    if (slash == NULL || slash == path || strcmp(slash, tail) != 0)
        return R_NONE;
    *seg = path;
    *seglen = (size_t)(slash - path);
    return R_TEMPLATES;
}

static bool
is_send(enum route r)
{
    return r == R_FREEFORM || r == R_SEND;
}

/* Send routes take POST; the others GET (and HEAD, as any GET route). */
static bool
method_allowed(enum route r, const char *method)
{
    if (is_send(r))
        return strcmp(method, "POST") == 0;
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* "Bearer <key>", scheme case-insensitive; key compared in constant time
 * so the sandbox does not teach anyone bad habits. */
static bool
authorized(const char *key, const char *header)
{
    size_t klen = strlen(key), hlen;
    unsigned char diff = 0;

    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
        return false;
    header += 7;
    while (*header == ' ')
        header++;
    hlen = strlen(header);
    while (hlen > 0 && (header[hlen - 1] == ' ' || header[hlen - 1] == '\t'))
        hlen--;
    if (hlen != klen || klen == 0)
        return false;
    for (size_t i = 0; i < klen; i++)
        diff |= (unsigned char)(key[i] ^ header[i]);
    return diff == 0;
}

/* ---- field validation (Laravel's sentences) ---- */

static bool
want_id(json_object *o, const char *key, const char *label, int64_t *out,
        struct verr *e)
{
    switch (sb_json_get_int(o, key, out)) {
    case SB_FIELD_ABSENT:
        snprintf(e->msg, sizeof(e->msg), "The %s field is required.", label);
        return false;
    case SB_FIELD_WRONG_TYPE:
        snprintf(e->msg, sizeof(e->msg), "The %s must be an integer.", label);
        return false;
    default:
        break;
    }
    if (*out < 1) {
        snprintf(e->msg, sizeof(e->msg), "The %s must be at least 1.", label);
        return false;
    }
    return true;
}

/* A string of 1..max code points that is not only white space (Laravel
 * trims strings and then finds a blank one missing). */
static bool
want_str(json_object *o, const char *key, const char *label, size_t max,
         const char **s, size_t *len, struct verr *e)
{
    switch (sb_json_get_str(o, key, s, len)) {
    case SB_FIELD_ABSENT:
        snprintf(e->msg, sizeof(e->msg), "The %s field is required.", label);
        return false;
    case SB_FIELD_WRONG_TYPE:
        snprintf(e->msg, sizeof(e->msg), "The %s must be a string.", label);
        return false;
    default:
        break;
    }
    if (sb_utf8_blank(*s, *len)) {
        snprintf(e->msg, sizeof(e->msg), "The %s field is required.", label);
        return false;
    }
    if (max > 0 && sb_utf8_count(*s, *len) > max) {
        snprintf(e->msg, sizeof(e->msg),
                 "The %s may not be greater than %zu characters.", label, max);
        return false;
    }
    return true;
}

/* Optional recipient_name: NULL when absent, null or blank. */
static bool
want_name(json_object *o, const char **name, struct verr *e)
{
    size_t len = 0;

    switch (sb_json_get_str(o, "recipient_name", name, &len)) {
    case SB_FIELD_ABSENT:
        *name = NULL;
        return true;
    case SB_FIELD_WRONG_TYPE:
        snprintf(e->msg, sizeof(e->msg),
                 "The recipient name must be a string.");
        return false;
    default:
        break;
    }
    if (sb_utf8_blank(*name, len)) {
        *name = NULL;
        return true;
    }
    if (sb_utf8_count(*name, len) > SB_NAME_MAX) {
        snprintf(e->msg, sizeof(e->msg),
                 "The recipient name may not be greater than %d characters.",
                 SB_NAME_MAX);
        return false;
    }
    return true;
}

/* Optional variables: an object of strings or numbers. */
static bool
want_variables(json_object *o, struct verr *e)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(o, "variables", &v) || v == NULL)
        return true;
    if (!json_object_is_type(v, json_type_object)) {
        snprintf(e->msg, sizeof(e->msg), "The variables must be an object.");
        return false;
    }
    json_object_object_foreach(v, key, val)
    {
        (void)key;
        if (!json_object_is_type(val, json_type_string) &&
            !json_object_is_type(val, json_type_int) &&
            !json_object_is_type(val, json_type_double)) {
            snprintf(e->msg, sizeof(e->msg),
                     "Each of the variables must be a string or a number.");
            return false;
        }
    }
    return true;
}

/* ---- response bodies ---- */

static json_object *
iso_json(int64_t t)
{
    char buf[SB_ISO_LEN];

    if (sb_iso_format(t, buf, sizeof(buf)) != 0)
        return NULL; /* out of printable range: null */
    return sb_json_str(buf);
}

static json_object *
session_json(const struct sb_session *s)
{
    json_object *o = sb_json_obj();
    char msg[128];

    sb_json_add(o, "is_open", sb_json_bool(s->is_open));
    sb_json_add(o, "can_send_freeform", sb_json_bool(s->is_open));
    sb_json_add(o, "requires_template", sb_json_bool(!s->is_open));
    if (!s->is_open) {
        sb_json_add(o, "message",
                    sb_json_str("Session expired. Send a template or wait "
                                "for customer to reply."));
        if (s->had_window)
            sb_json_add(o, "expired_at", iso_json(s->expires_at));
        return o;
    }
    snprintf(msg, sizeof(msg),
             "Session open (%d hr %d min remaining). Unlimited free-form "
             "messages allowed.",
             (int)(s->minutes_remaining / 60),
             (int)(s->minutes_remaining % 60));
    sb_json_add(o, "message", sb_json_str(msg));
    sb_json_add(o, "minutes_remaining", sb_json_int(s->minutes_remaining));
    sb_json_add(o, "expires_at", iso_json(s->expires_at));
    return o;
}

static json_object *
sent_json(const struct sb_sent *m)
{
    json_object *o = sb_json_obj();

    sb_json_add(o, "success", sb_json_bool(true));
    sb_json_add(o, "conversation_id", sb_json_int(m->conversation_id));
    sb_json_add(o, "message_id", sb_json_int(m->message_id));
    sb_json_add(o, "whatsapp_message_id", sb_json_int(m->whatsapp_message_id));
    sb_json_add(o, "message_sid", sb_json_str(m->message_sid));
    return o;
}

/* ---- outcomes shared by both send routes ---- */

static void
status_error(struct sb_response *out, int status, const char *prefix,
             const char *value, const char *code)
{
    char msg[96];

    snprintf(msg, sizeof(msg), "%s%s", prefix, value);
    /* The upstream shows the status capitalised: "Offline". */
    size_t at = strlen(prefix);
    if (msg[at] >= 'a' && msg[at] <= 'z')
        msg[at] = (char)(msg[at] - 'a' + 'A');
    sb_response_error(out, status, msg, code);
}

static void
expired(struct sb_response *out, const struct sb_session *s)
{
    json_object *o = sb_json_obj();

    sb_json_add(o, "success", sb_json_bool(false));
    sb_json_add(o, "error",
                sb_json_str("The 24-hour messaging window is closed. Customer "
                            "must reply first, or use a template message."));
    sb_json_add(o, "error_code", sb_json_str("SESSION_EXPIRED"));
    sb_json_add(o, "session_status", session_json(s));
    sb_response_set(out, 403, sb_json_take(o));
}

/* The error_code of each refusal of sb_state's send functions. */
static const char *
outcome_code(enum sb_outcome oc)
{
    switch (oc) {
    case SB_OK:
        return NULL;
    case SB_SENDER_NOT_FOUND:
        return "SENDER_NOT_FOUND";
    case SB_TEMPLATE_NOT_FOUND:
        return "TEMPLATE_NOT_FOUND";
    case SB_SENDER_OFFLINE:
        return "SENDER_OFFLINE";
    case SB_TEMPLATE_NOT_APPROVED:
        return "TEMPLATE_NOT_APPROVED";
    case SB_SESSION_EXPIRED:
        return "SESSION_EXPIRED";
    default:
        return "INSUFFICIENT_BALANCE";
    }
}

/* Errors of sb_state's send functions; offline_status is 503 for
 * send-freeform and 422 for send. */
static void
outcome_error(struct sb_sandbox *sb, enum sb_outcome oc, int64_t sender_id,
              int offline_status, const struct sb_sent *m,
              struct sb_response *out)
{
    const struct sb_sender *s = sb_state_sender(sb->state, sender_id);

    switch (oc) {
    case SB_SENDER_NOT_FOUND:
        sb_response_error(out, 404, SB_SENDER_NOT_FOUND_MSG, outcome_code(oc));
        break;
    case SB_TEMPLATE_NOT_FOUND:
        sb_response_error(out, 404,
                          "Template not found or does not belong to this "
                          "sender",
                          outcome_code(oc));
        break;
    case SB_SENDER_OFFLINE:
        status_error(out, offline_status,
                     "Sender is not online. Current status: ", s->status,
                     outcome_code(oc));
        break;
    case SB_TEMPLATE_NOT_APPROVED:
        sb_response_error(out, 422,
                          "Template is not approved. Current status: pending",
                          outcome_code(oc));
        break;
    case SB_SESSION_EXPIRED:
        expired(out, &m->session);
        break;
    default:
        sb_response_error(out, 402,
                          "Insufficient balance. Please top up your account.",
                          outcome_code(oc));
        break;
    }
}

static void
invalid_phone(struct sb_response *out)
{
    sb_response_error(out, 422,
                      "Invalid phone number format. Use E.164 format (e.g., "
                      "+14155551234).",
                      "INVALID_PHONE");
}

/* ---- POST send-freeform ---- */

struct freeform_req {
    int64_t sender_id;
    const char *phone, *message;
    size_t phone_len, message_len;
};

static bool
freeform_fields(json_object *o, struct freeform_req *f, struct verr *e)
{
    return want_id(o, "sender_id", "sender id", &f->sender_id, e) &&
           want_str(o, "recipient_phone", "recipient phone", 0, &f->phone,
                    &f->phone_len, e) &&
           want_str(o, "message", "message", SB_MESSAGE_MAX, &f->message,
                    &f->message_len, e);
}

static void
freeform_ok(const struct sb_sent *m, struct sb_response *out)
{
    json_object *o = sent_json(m);

    sb_json_add(o, "session_status", session_json(&m->session));
    sb_response_set(out, 200, sb_json_take(o));
}

static void
handle_freeform(struct sb_sandbox *sb, json_object *body, int64_t now,
                struct sb_response *out)
{
    struct freeform_req f = {0};
    struct verr e;
    struct sb_sent m;
    enum sb_outcome oc;

    if (!freeform_fields(body, &f, &e)) {
        sb_response_error(out, 422, e.msg, "VALIDATION_ERROR");
        return;
    }
    if (!sb_phone_valid(f.phone, f.phone_len)) {
        invalid_phone(out);
        return;
    }
    oc = sb_state_send_freeform(sb->state, f.sender_id, f.phone, now, &m);
    if (oc == SB_OK)
        freeform_ok(&m, out);
    else
        outcome_error(sb, oc, f.sender_id, 503, &m, out);
    sb_sandbox_record(sb, f.sender_id, f.phone, now, SB_INBOX_FREEFORM,
                 f.message, f.message_len, NULL, out->status, outcome_code(oc));
}

/* ---- POST send (template) ---- */

struct template_req {
    int64_t sender_id, template_id;
    const char *phone, *name;
    size_t phone_len;
};

static bool
template_fields(json_object *o, struct template_req *t, struct verr *e)
{
    return want_id(o, "sender_id", "sender id", &t->sender_id, e) &&
           want_id(o, "template_id", "template id", &t->template_id, e) &&
           want_str(o, "recipient_phone", "recipient phone", 0, &t->phone,
                    &t->phone_len, e) &&
           want_name(o, &t->name, e) && want_variables(o, e);
}

/* Records a template send in its thread: the template's text with the
 * variables filled in (by number, "1", or by the template's names), or no
 * text when the template is not the sender's. */
static void
template_record(struct sb_sandbox *sb, json_object *body,
                const struct template_req *t, int64_t now, enum sb_outcome oc,
                int status)
{
    struct sb_template tp;
    const char *values[8] = {0};
    json_object *vars = NULL, *v;
    char *text = NULL;
    size_t len = 0;
    int64_t i = t->template_id - t->sender_id * 100 - 1;

    if (i >= 0 && i < SB_TEMPLATES_PER_SENDER) {
        sb_sender_template_at(t->sender_id, (size_t)i, &tp);
        json_object_object_get_ex(body, "variables", &vars);
        for (size_t k = 0; k < tp.nvariables && k < 8 && vars != NULL; k++) {
            char num[8];
            snprintf(num, sizeof(num), "%zu", k + 1);
            if (json_object_object_get_ex(vars, num, &v) ||
                json_object_object_get_ex(vars, tp.variables[k], &v))
                values[k] = json_object_get_string(v);
        }
        text = sb_inbox_fill(tp.body_text, values, tp.nvariables, &len);
    }
    sb_sandbox_record(sb, t->sender_id, t->phone, now, SB_INBOX_TEMPLATE,
                 text, len, text ? tp.name : NULL, status, outcome_code(oc));
    free(text);
}

static void
handle_send(struct sb_sandbox *sb, json_object *body, int64_t now,
            struct sb_response *out)
{
    struct template_req t = {0};
    struct verr e;
    struct sb_sent m;
    enum sb_outcome oc;

    if (!template_fields(body, &t, &e)) {
        sb_response_error(out, 422, e.msg, "VALIDATION_ERROR");
        return;
    }
    if (!sb_phone_valid(t.phone, t.phone_len)) {
        invalid_phone(out);
        return;
    }
    oc = sb_state_send_template(sb->state, t.sender_id, t.template_id, t.phone,
                                t.name, now, &m);
    if (oc != SB_OK) {
        outcome_error(sb, oc, t.sender_id, 422, &m, out);
    } else {
        json_object *o = sent_json(&m);
        sb_json_add(o, "status", sb_json_str("queued"));
        sb_response_set(out, 200, sb_json_take(o));
    }
    template_record(sb, body, &t, now, oc, out->status);
}

/* The two send routes: limiter, then one JSON object, then the route. */
static void
handle_post(struct sb_sandbox *sb, enum route r, const struct sb_request *rq,
            int64_t mono_ms, struct sb_response *out)
{
    json_object *body;
    int64_t now = sb_state_now(sb->state, mono_ms);

    if (!sb_rate_allow(sb->rate, mono_ms)) {
        int64_t wait = sb_rate_wait_ms(sb->rate, mono_ms);
        sb_response_error(out, 429, "Too Many Attempts.", "RATE_LIMITED");
        out->retry_after = (int)((wait + 999) / 1000);
        if (out->retry_after < 1)
            out->retry_after = 1;
        return;
    }
    body = sb_json_parse_object(rq->body, rq->body_len);
    if (body == NULL) {
        sb_response_error(out, 400, "The request body must be a JSON object.",
                          "INVALID_JSON");
        return;
    }
    if (r == R_FREEFORM)
        handle_freeform(sb, body, now, out);
    else
        handle_send(sb, body, now, out);
    json_object_put(body);
}

/* ---- GET session-status ---- */

/* A required query parameter; sets e and returns NULL when absent/blank. */
static char *
want_param(const char *query, const char *key, const char *label, size_t *len,
           struct verr *e)
{
    char *v = sb_query_get(query, key, len);

    if (v == NULL || sb_utf8_blank(v, *len)) {
        snprintf(e->msg, sizeof(e->msg), "The %s field is required.", label);
        free(v);
        return NULL;
    }
    return v;
}

static bool
want_param_id(const char *query, int64_t *id, struct verr *e)
{
    size_t len;
    char *v = want_param(query, "sender_id", "sender id", &len, e);
    bool ok;

    if (v == NULL)
        return false;
    ok = sb_parse_int64(v, len, id) == 0;
    free(v);
    if (!ok)
        snprintf(e->msg, sizeof(e->msg), "The sender id must be an integer.");
    else if (*id < 1)
        snprintf(e->msg, sizeof(e->msg), "The sender id must be at least 1.");
    return ok && *id >= 1;
}

static void
session_ok(const struct sb_session *s, struct sb_response *out)
{
    json_object *o = sb_json_obj();

    sb_json_add(o, "success", sb_json_bool(true));
    sb_json_add(o, "has_conversation", sb_json_bool(s->has_conversation));
    if (s->has_conversation) {
        sb_json_add(o, "conversation_id", sb_json_int(s->conversation_id));
        sb_json_add(o, "customer_name",
                    s->customer_name ? sb_json_str(s->customer_name) : NULL);
        sb_json_add(o, "last_customer_message_at",
                    s->has_inbound ? iso_json(s->last_inbound) : NULL);
    }
    sb_json_add(o, "session_status", session_json(s));
    sb_response_set(out, 200, sb_json_take(o));
}

static void
handle_session(struct sb_sandbox *sb, const char *query, int64_t now,
               struct sb_response *out)
{
    struct verr e;
    int64_t id;
    size_t len = 0;
    char *phone = NULL;

    if (!want_param_id(query, &id, &e) ||
        (phone = want_param(query, "recipient_phone", "recipient phone", &len,
                            &e)) == NULL) {
        sb_response_error(out, 422, e.msg, "VALIDATION_ERROR");
        return;
    }
    if (!sb_phone_valid(phone, len))
        invalid_phone(out);
    else if (sb_state_sender(sb->state, id) == NULL)
        outcome_error(sb, SB_SENDER_NOT_FOUND, id, 0, NULL, out);
    else {
        struct sb_session s = sb_state_session(sb->state, id, phone, now);
        session_ok(&s, out);
    }
    free(phone);
}

/* ---- GET senders, GET senders/{id}/templates ---- */

/* ?status=: absent or `deflt` → false, "all" → true, else -1. */
static int
want_all(const char *query, const char *deflt)
{
    size_t len;
    char *v = sb_query_get(query, "status", &len);
    int all = -1;

    if (v == NULL || strcmp(v, deflt) == 0)
        all = 0;
    else if (strcmp(v, "all") == 0)
        all = 1;
    free(v);
    return all;
}

static json_object *
sender_json(const struct sb_sender *s)
{
    json_object *o = sb_json_obj();
    char buf[32];

    sb_json_add(o, "id", sb_json_int(s->id));
    sb_sender_phone(s, buf, sizeof(buf));
    sb_json_add(o, "phone_number", sb_json_str(buf));
    sb_sender_name(s, buf, sizeof(buf));
    sb_json_add(o, "display_name", sb_json_str(buf));
    sb_json_add(o, "status", sb_json_str(s->status));
    sb_json_add(o, "quality_rating", sb_json_str("GREEN"));
    sb_json_add(o, "messaging_limit", sb_json_int(10000));
    sb_json_add(o, "messaging_limit_formatted", sb_json_str("10,000 / 24hr"));
    return o;
}

static void
handle_senders(struct sb_sandbox *sb, const char *query,
               struct sb_response *out)
{
    int all = want_all(query, "online");
    json_object *o, *data;

    if (all < 0) {
        sb_response_error(out, 422, "The selected status is invalid.",
                          "VALIDATION_ERROR");
        return;
    }
    o = sb_json_obj();
    data = sb_json_arr();
    for (size_t i = 0; i < sb_state_sender_count(sb->state); i++) {
        const struct sb_sender *s = sb_state_sender_at(sb->state, i);
        if (all || sb_sender_online(s))
            sb_json_push(data, sender_json(s));
    }
    sb_json_add(o, "data", data);
    sb_response_set(out, 200, sb_json_take(o));
}

static json_object *
template_json(const struct sb_template *t)
{
    json_object *o = sb_json_obj(), *vars = sb_json_arr();

    sb_json_add(o, "id", sb_json_int(t->id));
    sb_json_add(o, "name", sb_json_str(t->name));
    sb_json_add(o, "language", sb_json_str(t->language));
    sb_json_add(o, "category", sb_json_str(t->category));
    sb_json_add(o, "status", sb_json_str(t->status));
    sb_json_add(o, "body_text", sb_json_str(t->body_text));
    for (size_t i = 0; i < t->nvariables; i++)
        sb_json_push(vars, sb_json_str(t->variables[i]));
    sb_json_add(o, "variables", vars);
    sb_json_add(o, "has_variables", sb_json_bool(t->nvariables > 0));
    return o;
}

static void
handle_templates(struct sb_sandbox *sb, const char *seg, size_t seglen,
                 const char *query, struct sb_response *out)
{
    int64_t id;
    int all;
    json_object *o, *data;

    if (sb_parse_int64(seg, seglen, &id) != 0 ||
        sb_state_sender(sb->state, id) == NULL) {
        outcome_error(sb, SB_SENDER_NOT_FOUND, 0, 0, NULL, out);
        return;
    }
    if ((all = want_all(query, "approved")) < 0) {
        sb_response_error(out, 422, "The selected status is invalid.",
                          "VALIDATION_ERROR");
        return;
    }
    o = sb_json_obj();
    data = sb_json_arr();
    for (size_t i = 0; i < SB_TEMPLATES_PER_SENDER; i++) {
        struct sb_template t;
        sb_sender_template_at(id, i, &t);
        if (all || strcmp(t.status, "approved") == 0)
            sb_json_push(data, template_json(&t));
    }
    sb_json_add(o, "data", data);
    sb_response_set(out, 200, sb_json_take(o));
}

/* ---- entry point ---- */

static void
method_not_allowed(enum route r, const char *method, struct sb_response *out)
{
    const char *allow = is_send(r) ? "POST" : "GET, HEAD";
    char msg[128];

    snprintf(msg, sizeof(msg),
             "The %.16s method is not supported for this route. Supported "
             "methods: %s.",
             method, allow);
    sb_response_error(out, 405, msg, "METHOD_NOT_ALLOWED");
    out->allow = allow;
}

void
sb_api_handle(struct sb_sandbox *sb, const struct sb_request *rq,
              int64_t mono_ms, struct sb_response *out)
{
    const char *seg = NULL;
    size_t seglen = 0;
    enum route r = match_route(rq->path, &seg, &seglen);

    if (r == R_NONE)
        sb_response_error(out, 404, "Not found.", "NOT_FOUND");
    else if (!method_allowed(r, rq->method))
        method_not_allowed(r, rq->method, out);
    else if (!authorized(sb->api_key, rq->authorization))
        sb_response_error(out, 401, "Unauthenticated.", "UNAUTHORIZED");
    else if (is_send(r))
        handle_post(sb, r, rq, mono_ms, out);
    else if (r == R_SESSION)
        handle_session(sb, rq->query, sb_state_now(sb->state, mono_ms), out);
    else if (r == R_SENDERS)
        handle_senders(sb, rq->query, out);
    else
        handle_templates(sb, seg, seglen, rq->query, out);
}
