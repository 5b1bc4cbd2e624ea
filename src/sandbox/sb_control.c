#include "sb_control.h"
#include "alloc.h"
#include "sb_json.h"
#include "sb_text.h"
#include "sb_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*control_fn)(struct sb_sandbox *sb, json_object *body,
                           int64_t mono_ms, struct sb_response *out);
typedef void (*query_fn)(struct sb_sandbox *sb, const char *query,
                         int64_t mono_ms, struct sb_response *out);

struct control_route {
    const char *path, *method, *allow;
    bool has_body; /* a JSON object body is required */
    control_fn fn;
    query_fn qfn; /* instead of fn: a GET read by its query string */
    /* what a success changes, told to the page (docs/inbox-page.md) as
     * event {"what": changes}: a "state" event of "config", "clock" or
     * "faults", a "cleared" one of "conversations" or "requests"; NULL
     * for nothing */
    const char *event, *changes;
};

bool
sb_is_control_path(const char *path)
{
    size_t n = strlen(SB_CONTROL_PREFIX);

    return strncmp(path, SB_CONTROL_PREFIX, n) == 0 &&
           (path[n] == '\0' || path[n] == '/');
}

static void
bad(struct sb_response *out, const char *msg)
{
    sb_response_error(out, 400, msg, "BAD_REQUEST");
}

/* Refuses keys outside `allowed` (NULL-terminated), so a misspelt field in
 * a test fails loudly instead of being ignored. */
static bool
only_keys(json_object *o, const char *const *allowed, struct sb_response *out)
{
    const char *key = sb_json_unknown_key(o, allowed);
    char msg[SB_JSON_UNKNOWN_MSG_LEN];

    if (key == NULL)
        return true;
    sb_json_unknown_msg(msg, sizeof(msg), key);
    bad(out, msg);
    return false;
}

/* An optional integer field in [min, max]; false (answered) when bad. */
static bool
opt_int(json_object *o, const char *key, int64_t min, int64_t max, int64_t *v,
        bool *present, struct sb_response *out)
{
    char msg[128];
    enum sb_field f = sb_json_get_int(o, key, v);

    *present = f == SB_FIELD_OK;
    if (f == SB_FIELD_ABSENT)
        return true;
    if (f == SB_FIELD_OK && *v >= min && *v <= max)
        return true;
    snprintf(msg, sizeof(msg), "%s must be an integer in [%lld, %lld]", key,
             (long long)min, (long long)max);
    bad(out, msg);
    return false;
}

static char *
now_json(struct sb_sandbox *sb, int64_t mono_ms)
{
    json_object *o = sb_json_obj();
    char buf[SB_ISO_LEN];

    if (sb_iso_format(sb_state_now(sb->state, mono_ms), buf, sizeof(buf)))
        sb_json_add(o, "now", NULL);
    else
        sb_json_add(o, "now", sb_json_str(buf));
    return sb_json_take(o);
}

/* ---- POST /_sandbox/inbound ---- */

static bool
inbound_at(json_object *body, int64_t now, int64_t *at, struct sb_response *out)
{
    const char *s;
    size_t len;

    switch (sb_json_get_str(body, "at", &s, &len)) {
    case SB_FIELD_ABSENT:
        *at = now;
        return true;
    case SB_FIELD_OK:
        if (strlen(s) == len && sb_iso_parse(s, at) == 0)
            return true;
        /* fall through */
    default:
        bad(out, "at must be an ISO 8601 time, e.g. 2026-02-24T10:30:00Z");
        return false;
    }
}

static void
inbound_post(struct sb_sandbox *sb, json_object *body, int64_t mono_ms,
             struct sb_response *out)
{
    static const char *const keys[] = {"sender_id", "recipient_phone", "at",
                                       "text", NULL};
    int64_t id, at;
    bool present;
    const char *phone = NULL, *text = NULL;
    size_t len = 0, text_len = 0;

    if (!only_keys(body, keys, out) ||
        !opt_int(body, "sender_id", 1, SB_JSON_INT_MAX, &id, &present, out))
        return;
    if (!present) {
        bad(out, "sender_id is required");
        return;
    }
    if (sb_json_get_str(body, "recipient_phone", &phone, &len) != SB_FIELD_OK ||
        !sb_phone_valid(phone, len)) {
        bad(out, "recipient_phone must be an E.164 string");
        return;
    }
    if (!inbound_at(body, sb_state_now(sb->state, mono_ms), &at, out))
        return;
    if (sb_json_get_str(body, "text", &text, &text_len) ==
            SB_FIELD_WRONG_TYPE ||
        (text != NULL && sb_utf8_count(text, text_len) > 4096)) {
        bad(out, "text must be a string of at most 4096 characters");
        return;
    }
    if (sb_state_sender(sb->state, id) == NULL) {
        sb_response_error(out, 404, SB_SENDER_NOT_FOUND_MSG,
                          "SENDER_NOT_FOUND");
        return;
    }
    sb_state_inbound(sb->state, id, phone, at);
    sb_sandbox_record(sb, id, phone, at, SB_INBOX_INBOUND, text, text_len, NULL,
                      0, NULL);
    sb_response_set(out, 204, NULL);
}

/* ---- /_sandbox/clock ---- */

static void
clock_get(struct sb_sandbox *sb, json_object *body, int64_t mono_ms,
          struct sb_response *out)
{
    (void)body;
    sb_response_set(out, 200, now_json(sb, mono_ms));
}

static void
clock_post(struct sb_sandbox *sb, json_object *body, int64_t mono_ms,
           struct sb_response *out)
{
    static const char *const keys[] = {"advance_s", NULL};
    int64_t secs;
    bool present;

    if (!only_keys(body, keys, out) ||
        !opt_int(body, "advance_s", INT64_MIN + 1, SB_JSON_INT_MAX, &secs,
                 &present, out))
        return;
    if (!present) {
        bad(out, "advance_s is required");
        return;
    }
    if (sb_state_clock_advance(sb->state, secs, mono_ms) != 0) {
        bad(out, "advance_s would move the clock outside years 0001..9999");
        return;
    }
    sb_response_set(out, 200, now_json(sb, mono_ms));
}

/* ---- /_sandbox/config ---- */

static char *
config_json(struct sb_sandbox *sb)
{
    json_object *o = sb_json_obj(), *senders = sb_json_obj();

    sb_json_add(o, "latency_ms", sb_json_int(sb->latency_ms));
    sb_json_add(o, "balance", sb_json_int(sb_state_balance(sb->state)));
    sb_json_add(o, "rate_limit", sb_json_int(sb_rate_limit(sb->rate)));
    for (size_t i = 0; i < sb_state_sender_count(sb->state); i++) {
        const struct sb_sender *s = sb_state_sender_at(sb->state, i);
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)s->id);
        sb_json_add(senders, id, sb_json_str(s->status));
    }
    sb_json_add(o, "sender_status", senders);
    return sb_json_take(o);
}

static void
config_get(struct sb_sandbox *sb, json_object *body, int64_t mono_ms,
           struct sb_response *out)
{
    (void)body;
    (void)mono_ms;
    sb_response_set(out, 200, config_json(sb));
}

/* Checks every entry of {"<sender id>": "<status>"}; applies when `apply`. */
static bool
sender_status(struct sb_sandbox *sb, json_object *map, bool apply,
              struct sb_response *out)
{
    if (map == NULL)
        return true;
    if (!json_object_is_type(map, json_type_object)) {
        bad(out, "sender_status must be an object");
        return false;
    }
    json_object_object_foreach(map, key, val)
    {
        int64_t id;
        const char *st = json_object_get_string(val);
        if (sb_parse_int64(key, strlen(key), &id) != 0 ||
            sb_state_sender(sb->state, id) == NULL) {
            bad(out, "sender_status names an unknown sender");
            return false;
        }
        if (!json_object_is_type(val, json_type_string) ||
            !sb_status_valid(st)) {
            bad(out, "a sender status is 1..31 of [a-z_], e.g. \"offline\"");
            return false;
        }
        if (apply)
            sb_state_set_sender_status(sb->state, id, st);
    }
    return true;
}

static void
config_post(struct sb_sandbox *sb, json_object *body, int64_t mono_ms,
            struct sb_response *out)
{
    static const char *const keys[] = {"latency_ms", "balance", "rate_limit",
                                       "sender_status", NULL};
    int64_t lat, bal, rate;
    bool has_lat, has_bal, has_rate;
    json_object *map = json_object_object_get(body, "sender_status");

    (void)mono_ms;
    /* Validate everything first, so a bad request changes nothing. */
    if (!only_keys(body, keys, out) ||
        !opt_int(body, "latency_ms", 0, SB_LATENCY_MAX_MS, &lat, &has_lat,
                 out) ||
        !opt_int(body, "balance", 0, SB_JSON_INT_MAX, &bal, &has_bal, out) ||
        !opt_int(body, "rate_limit", 0, SB_RATE_MAX, &rate, &has_rate, out) ||
        !sender_status(sb, map, false, out))
        return;
    if (has_lat)
        sb->latency_ms = (unsigned)lat;
    if (has_bal)
        sb_state_set_balance(sb->state, bal);
    if (has_rate)
        sb_rate_set_limit(sb->rate, (unsigned)rate);
    sender_status(sb, map, true, out);
    sb_response_set(out, 200, config_json(sb));
}

/* ---- /_sandbox/faults ---- */

static void
faults_get(struct sb_sandbox *sb, json_object *body, int64_t mono_ms,
           struct sb_response *out)
{
    (void)body;
    (void)mono_ms;
    sb_response_set(out, 200, sb_json_take(sb_faults_json(sb->faults)));
}

static void
faults_post(struct sb_sandbox *sb, json_object *body, int64_t mono_ms,
            struct sb_response *out)
{
    struct sb_fault f;
    const struct sb_fault *armed;
    char err[256];

    (void)mono_ms;
    if (sb_fault_parse(body, &f, err, sizeof(err)) != 0) {
        bad(out, err);
        return;
    }
    armed = sb_faults_arm(sb->faults, &f);
    if (armed == NULL) {
        sb_fault_clear(&f);
        bad(out, "at most 64 faults can be armed at once; DELETE "
                 "/_sandbox/faults clears them");
        return;
    }
    sb_response_set(out, 200, sb_json_take(sb_fault_json(armed)));
}

static void
faults_delete(struct sb_sandbox *sb, json_object *body, int64_t mono_ms,
              struct sb_response *out)
{
    (void)body;
    (void)mono_ms;
    sb_faults_clear(sb->faults);
    sb_response_set(out, 204, NULL);
}

/* Deprecated: POST /_sandbox/fault {"mode","count"}, the single fault of
 * earlier versions, kept so that older tests still run. It replaces every
 * armed fault with {"mode", "times": count}; "none" or count 0 clears. */
static void
fault_post_legacy(struct sb_sandbox *sb, json_object *body, int64_t mono_ms,
                  struct sb_response *out)
{
    static const char *const keys[] = {"mode", "count", NULL};
    static const char *const modes[] = {"close", "garbage", "hang", "none",
                                        NULL};
    const char *mode = NULL;
    size_t i = 0, len;
    int64_t count = 1;
    bool present;
    json_object *spec, *o;
    struct sb_fault f;
    char err[256];

    (void)mono_ms;
    if (!only_keys(body, keys, out))
        return;
    if (sb_json_get_str(body, "mode", &mode, &len) == SB_FIELD_OK)
        while (modes[i] != NULL && strcmp(modes[i], mode) != 0)
            i++;
    if (mode == NULL || modes[i] == NULL) {
        bad(out, "mode must be \"close\", \"garbage\", \"hang\" or \"none\"");
        return;
    }
    if (!opt_int(body, "count", 0, SB_FAULT_TIMES_MAX, &count, &present, out))
        return;
    sb_faults_clear(sb->faults);
    if (strcmp(mode, "none") == 0 || count == 0) {
        mode = "none";
        count = 0;
    } else {
        spec = sb_json_obj();
        sb_json_add(spec, "mode", sb_json_str(mode));
        sb_json_add(spec, "times", sb_json_int(count));
        if (sb_fault_parse(spec, &f, err, sizeof(err)) == 0)
            sb_faults_arm(sb->faults, &f);
        json_object_put(spec);
    }
    o = sb_json_obj();
    sb_json_add(o, "mode", sb_json_str(mode));
    sb_json_add(o, "count", sb_json_int(count));
    sb_response_set(out, 200, sb_json_take(o));
}

/* ---- /_sandbox/requests ---- */

static void
requests_get(struct sb_sandbox *sb, json_object *body, int64_t mono_ms,
             struct sb_response *out)
{
    json_object *o = sb_json_obj(), *list = sb_json_arr();
    size_t n = sb_reqlog_count(sb->log);

    (void)body;
    (void)mono_ms;
    for (size_t i = 0; i < n; i++)
        sb_json_push(list, sb_view_request(sb_reqlog_at(sb->log, i)));
    sb_json_add(o, "count", sb_json_int((int64_t)n));
    sb_json_add(o, "requests", list);
    sb_response_set(out, 200, sb_json_take(o));
}

static void
requests_delete(struct sb_sandbox *sb, json_object *body, int64_t mono_ms,
                struct sb_response *out)
{
    (void)body;
    (void)mono_ms;
    sb_reqlog_clear(sb->log);
    sb_response_set(out, 204, NULL);
}

/* ---- /_sandbox/conversations and /_sandbox/messages (the inbox) ---- */

/* An optional query parameter in [min, max] (default deflt); false and
 * answered when it is not an integer there. */
static bool
query_int(const char *query, const char *key, int64_t min, int64_t max,
          int64_t deflt, int64_t *v, struct sb_response *out)
{
    size_t len;
    char *s = sb_query_get(query, key, &len);
    char msg[128];
    bool ok;

    *v = deflt;
    if (s == NULL)
        return true;
    ok = sb_parse_int64(s, len, v) == 0 && *v >= min && *v <= max;
    free(s);
    if (!ok) {
        snprintf(msg, sizeof(msg), "%s must be an integer in [%lld, %lld]", key,
                 (long long)min, (long long)max);
        bad(out, msg);
    }
    return ok;
}

static json_object *
thread_json(struct sb_sandbox *sb, const struct sb_inbox_thread *t, int64_t now)
{
    json_object *o = sb_json_obj();
    const struct sb_inbox_msg *last;
    bool more;

    sb_json_add(o, "sender_id", sb_json_int(t->sender_id));
    sb_json_add(o, "recipient_phone", sb_json_str(t->phone));
    sb_json_add(o, "messages", sb_json_int((int64_t)t->count));
    sb_json_add(o, "last_at", sb_view_time(t->last_at));
    sb_json_add(o, "window", sb_view_window(sb, t, now));
    if (sb_inbox_messages(sb->inbox, t, 0, 1, &last, &more) == 1)
        sb_json_add(o, "last", sb_view_message(last));
    return o;
}

static void
conversations_get(struct sb_sandbox *sb, const char *query, int64_t mono_ms,
                  struct sb_response *out)
{
    const struct sb_inbox_thread *page[SB_INBOX_PAGE_MAX];
    int64_t offset, limit, now = sb_state_now(sb->state, mono_ms);
    json_object *o, *list;
    size_t n;

    if (!query_int(query, "offset", 0, SB_INBOX_MAX, 0, &offset, out) ||
        !query_int(query, "limit", 1, SB_INBOX_PAGE_MAX, 50, &limit, out))
        return;
    n = sb_inbox_threads(sb->inbox, (size_t)offset, (size_t)limit, page);
    o = sb_json_obj();
    list = sb_json_arr();
    for (size_t i = 0; i < n; i++)
        sb_json_push(list, thread_json(sb, page[i], now));
    sb_json_add(o, "count",
                sb_json_int((int64_t)sb_inbox_thread_count(sb->inbox)));
    sb_json_add(o, "messages", sb_json_int((int64_t)sb_inbox_count(sb->inbox)));
    sb_json_add(o, "offset", sb_json_int(offset));
    sb_json_add(o, "conversations", list);
    sb_response_set(out, 200, sb_json_take(o));
}

static void
conversations_delete(struct sb_sandbox *sb, json_object *body, int64_t mono_ms,
                     struct sb_response *out)
{
    (void)body;
    (void)mono_ms;
    sb_inbox_clear(sb->inbox);
    sb_response_set(out, 204, NULL);
}

/* GET /_sandbox/messages?sender_id=&recipient_phone=&before=&limit= */
static void
messages_get(struct sb_sandbox *sb, const char *query, int64_t mono_ms,
             struct sb_response *out)
{
    const struct sb_inbox_msg *page[SB_INBOX_PAGE_MAX];
    const struct sb_inbox_thread *t;
    int64_t id, before, limit;
    size_t len, n = 0;
    char *phone = sb_query_get(query, "recipient_phone", &len);
    json_object *o, *list;
    bool more = false;

    if (!query_int(query, "sender_id", 1, INT64_MAX, 0, &id, out) ||
        !query_int(query, "before", 0, INT64_MAX, 0, &before, out) ||
        !query_int(query, "limit", 1, SB_INBOX_PAGE_MAX, 100, &limit, out)) {
        free(phone);
        return;
    }
    if (id == 0 || phone == NULL || !sb_phone_valid(phone, len)) {
        bad(out, "sender_id and an E.164 recipient_phone are required");
        free(phone);
        return;
    }
    t = sb_inbox_thread(sb->inbox, id, phone);
    if (t != NULL)
        n = sb_inbox_messages(sb->inbox, t, (uint64_t)before, (size_t)limit,
                              page, &more);
    o = sb_json_obj();
    list = sb_json_arr();
    for (size_t i = 0; i < n; i++)
        sb_json_push(list, sb_view_message(page[i]));
    sb_json_add(o, "sender_id", sb_json_int(id));
    sb_json_add(o, "recipient_phone", sb_json_str(phone));
    sb_json_add(o, "window",
                t ? sb_view_window(sb, t, sb_state_now(sb->state, mono_ms))
                  : NULL);
    sb_json_add(o, "messages", list);
    sb_json_add(o, "more", sb_json_bool(more));
    sb_response_set(out, 200, sb_json_take(o));
    free(phone);
}

/* ---- /_sandbox/senders and /_sandbox/log (the page's panels) ---- */

static void
senders_get(struct sb_sandbox *sb, json_object *body, int64_t mono_ms,
            struct sb_response *out)
{
    json_object *o = sb_json_obj(), *list = sb_json_arr();

    (void)body;
    (void)mono_ms;
    for (size_t i = 0; i < sb_state_sender_count(sb->state); i++) {
        const struct sb_sender *s = sb_state_sender_at(sb->state, i);
        json_object *e = sb_json_obj();
        char name[32], phone[24];
        sb_sender_name(s, name, sizeof(name));
        sb_sender_phone(s, phone, sizeof(phone));
        sb_json_add(e, "id", sb_json_int(s->id));
        sb_json_add(e, "name", sb_json_str(name));
        sb_json_add(e, "phone", sb_json_str(phone));
        sb_json_add(e, "status", sb_json_str(s->status));
        sb_json_push(list, e);
    }
    sb_json_add(o, "senders", list);
    sb_response_set(out, 200, sb_json_take(o));
}

/* Whether e's method, path, status or fault contains q (ASCII case
 * folded). */
static bool
log_matches(const struct sb_reqlog_entry *e, const char *q)
{
    char status[16];
    const char *q_end = strchr(e->uri, '?');
    size_t plen = q_end ? (size_t)(q_end - e->uri) : strlen(e->uri);

    snprintf(status, sizeof(status), "%d", e->status);
    return sb_contains_ci(e->method, strlen(e->method), q) ||
           sb_contains_ci(e->uri, plen, q) ||
           (e->status && sb_contains_ci(status, strlen(status), q)) ||
           (e->fault && sb_contains_ci(e->fault, strlen(e->fault), q));
}

/* GET /_sandbox/log?limit=&before=&q=: newest first, in short. */
static void
log_get(struct sb_sandbox *sb, const char *query, int64_t mono_ms,
        struct sb_response *out)
{
    int64_t limit, before;
    size_t qlen, n = sb_reqlog_count(sb->log), kept = 0;
    char *q;
    json_object *o, *list;
    bool more = false, nothing;

    (void)mono_ms;
    if (!query_int(query, "limit", 1, SB_INBOX_PAGE_MAX, 100, &limit, out) ||
        !query_int(query, "before", 0, INT64_MAX, 0, &before, out))
        return;
    q = sb_query_get(query, "q", &qlen);
    if (q != NULL && qlen == 0) {
        free(q);
        q = NULL; /* no filter */
    }
    /* no method, path, status or fault holds a NUL: such a q keeps none */
    nothing = q != NULL && memchr(q, '\0', qlen) != NULL;
    o = sb_json_obj();
    list = sb_json_arr();
    for (size_t i = nothing ? 0 : n; i-- > 0;) {
        const struct sb_reqlog_entry *e = sb_reqlog_at(sb->log, i);
        if ((before > 0 && e->seq >= (uint64_t)before) ||
            (q != NULL && !log_matches(e, q)))
            continue;
        if (kept == (size_t)limit) {
            more = true;
            break;
        }
        sb_json_push(list, sb_view_log_entry(e));
        kept++;
    }
    sb_json_add(o, "count", sb_json_int((int64_t)n));
    sb_json_add(o, "entries", list);
    sb_json_add(o, "more", sb_json_bool(more));
    sb_response_set(out, 200, sb_json_take(o));
    free(q);
}

/* ---- dispatch ---- */

static const struct control_route routes[] = {
    {"/_sandbox/inbound", "POST", "POST", true, inbound_post, NULL, NULL, NULL},
    {"/_sandbox/clock", "GET", "GET, POST", false, clock_get, NULL, NULL, NULL},
    {"/_sandbox/clock", "POST", "GET, POST", true, clock_post, NULL, "state",
     "clock"},
    {"/_sandbox/config", "GET", "GET, POST", false, config_get, NULL, NULL,
     NULL},
    {"/_sandbox/config", "POST", "GET, POST", true, config_post, NULL, "state",
     "config"},
    {"/_sandbox/senders", "GET", "GET", false, senders_get, NULL, NULL, NULL},
    {"/_sandbox/faults", "GET", "GET, POST, DELETE", false, faults_get, NULL,
     NULL, NULL},
    {"/_sandbox/faults", "POST", "GET, POST, DELETE", true, faults_post, NULL,
     "state", "faults"},
    {"/_sandbox/faults", "DELETE", "GET, POST, DELETE", false, faults_delete,
     NULL, "state", "faults"},
    {"/_sandbox/fault", "POST", "POST", true, fault_post_legacy, NULL, "state",
     "faults"},
    {"/_sandbox/requests", "GET", "GET, DELETE", false, requests_get, NULL,
     NULL, NULL},
    {"/_sandbox/requests", "DELETE", "GET, DELETE", false, requests_delete,
     NULL, "cleared", "requests"},
    {"/_sandbox/log", "GET", "GET", false, NULL, log_get, NULL, NULL},
    {"/_sandbox/conversations", "GET", "GET, DELETE", false, NULL,
     conversations_get, NULL, NULL},
    {"/_sandbox/conversations", "DELETE", "GET, DELETE", false,
     conversations_delete, NULL, "cleared", "conversations"},
    {"/_sandbox/messages", "GET", "GET", false, NULL, messages_get, NULL, NULL},
};

static void
run_route(struct sb_sandbox *sb, const struct control_route *r,
          const struct sb_request *rq, int64_t mono_ms, struct sb_response *out)
{
    json_object *body = NULL;

    if (r->has_body) {
        body = sb_json_parse_object(rq->body, rq->body_len);
        if (body == NULL) {
            sb_response_error(out, 400,
                              "The request body must be a JSON object.",
                              "INVALID_JSON");
            return;
        }
    }
    if (r->qfn != NULL)
        r->qfn(sb, rq->query, mono_ms, out);
    else
        r->fn(sb, body, mono_ms, out);
    json_object_put(body);
    if (r->changes != NULL && out->status >= 200 && out->status < 300)
        sb_sandbox_changed(sb, r->event, r->changes);
}

void
sb_control_handle(struct sb_sandbox *sb, const struct sb_request *rq,
                  int64_t mono_ms, struct sb_response *out)
{
    const struct control_route *path_match = NULL;

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(routes[i].path, rq->path) != 0)
            continue;
        path_match = &routes[i];
        if (strcmp(routes[i].method, rq->method) == 0) {
            run_route(sb, &routes[i], rq, mono_ms, out);
            return;
        }
    }
    if (path_match == NULL) {
        sb_response_error(out, 404, "Not found.", "NOT_FOUND");
        return;
    }
    sb_response_error(out, 405, "Method not allowed.", "METHOD_NOT_ALLOWED");
    out->allow = path_match->allow;
}
