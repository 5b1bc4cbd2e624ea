#include "sb_view.h"
#include "sb_json.h"
#include "sb_text.h"

#include <stdlib.h>
#include <string.h>

/* Arbitrary bytes as JSON text (invalid UTF-8 shown as U+FFFD). */
json_object *
sb_view_text(const char *s, size_t len)
{
    size_t n;
    char *clean = sb_utf8_sanitize(s, len, &n);
    json_object *o = sb_json_strn(clean, n);

    free(clean);
    return o;
}

json_object *
sb_view_request(const struct sb_reqlog_entry *e)
{
    json_object *o = sb_json_obj(), *headers = sb_json_arr();
    char *b64 = sb_base64(e->body, e->body_len);

    sb_json_add(o, "seq", sb_json_int((int64_t)e->seq));
    sb_json_add(o, "mono_ms", sb_json_int(e->mono_ms));
    sb_json_add(o, "method", sb_json_str(e->method));
    sb_json_add(o, "path", sb_view_text(e->uri, strlen(e->uri)));
    for (size_t i = 0; i < e->nheaders; i++) {
        json_object *pair = sb_json_arr();
        const struct sb_header *h = &e->headers[i];
        sb_json_push(pair, sb_view_text(h->name, strlen(h->name)));
        sb_json_push(pair, sb_view_text(h->value, strlen(h->value)));
        sb_json_push(headers, pair);
    }
    sb_json_add(o, "headers", headers);
    sb_json_add(o, "body", sb_view_text(e->body, e->body_len));
    sb_json_add(o, "body_b64", sb_json_str(b64));
    sb_json_add(o, "status", sb_json_int(e->status));
    sb_json_add(o, "fault", e->fault ? sb_json_str(e->fault) : NULL);
    free(b64);
    return o;
}

json_object *
sb_view_time(int64_t t)
{
    char buf[SB_ISO_LEN];

    return sb_iso_format(t, buf, sizeof(buf)) ? NULL : sb_json_str(buf);
}

static const char *
kind_name(enum sb_inbox_kind k)
{
    return k == SB_INBOX_FREEFORM   ? "freeform"
           : k == SB_INBOX_TEMPLATE ? "template"
                                    : "inbound";
}

json_object *
sb_view_message(const struct sb_inbox_msg *m)
{
    json_object *o = sb_json_obj();

    sb_json_add(o, "id", sb_json_int((int64_t)m->id));
    sb_json_add(o, "at", sb_view_time(m->at));
    sb_json_add(o, "kind", sb_json_str(kind_name(m->kind)));
    sb_json_add(o, "text", m->text ? sb_view_text(m->text, m->text_len) : NULL);
    if (m->kind == SB_INBOX_TEMPLATE)
        sb_json_add(o, "template",
                    m->template_name ? sb_json_str(m->template_name) : NULL);
    if (m->kind != SB_INBOX_INBOUND) {
        sb_json_add(o, "status", sb_json_int(m->status));
        sb_json_add(o, "error_code",
                    m->error_code ? sb_json_str(m->error_code) : NULL);
    }
    return o;
}

json_object *
sb_view_window(struct sb_sandbox *sb, const struct sb_inbox_thread *t,
               int64_t now)
{
    struct sb_session ss =
        sb_state_session(sb->state, t->sender_id, t->phone, now);
    json_object *o = sb_json_obj();

    sb_json_add(o, "is_open", sb_json_bool(ss.is_open));
    sb_json_add(o, "expires_at",
                ss.had_window ? sb_view_time(ss.expires_at) : NULL);
    sb_json_add(o, "minutes_remaining",
                ss.is_open ? sb_json_int(ss.minutes_remaining) : NULL);
    return o;
}

/* The path without its query: the log lists where requests went. */
json_object *
sb_view_log_entry(const struct sb_reqlog_entry *e)
{
    json_object *o = sb_json_obj();
    const char *q = strchr(e->uri, '?');
    size_t plen = q ? (size_t)(q - e->uri) : strlen(e->uri);

    sb_json_add(o, "seq", sb_json_int((int64_t)e->seq));
    sb_json_add(o, "method", sb_json_str(e->method));
    sb_json_add(o, "path", sb_view_text(e->uri, plen));
    sb_json_add(o, "status", e->status ? sb_json_int(e->status) : NULL);
    sb_json_add(o, "latency_ms",
                e->answered_ms ? sb_json_int(e->answered_ms - e->mono_ms)
                               : NULL);
    sb_json_add(o, "fault", e->fault ? sb_json_str(e->fault) : NULL);
    return o;
}
