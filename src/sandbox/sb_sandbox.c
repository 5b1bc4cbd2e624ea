#include "sb_sandbox.h"
#include "alloc.h"
#include "sb_json.h"
#include "sb_view.h"

#include <stdlib.h>
#include <string.h>

struct sb_sandbox *
sb_sandbox_new(const char *api_key, int64_t balance, unsigned rate_limit)
{
    struct sb_sandbox *sb = xcalloc(1, sizeof(*sb));

    sb->state = sb_state_new(balance);
    sb->rate = sb_rate_new(rate_limit);
    sb->log = sb_reqlog_new();
    sb->api_key = xstrdup(api_key);
    sb->faults = sb_faults_new();
    sb->inbox = sb_inbox_new();
    return sb;
}

void
sb_sandbox_free(struct sb_sandbox *sb)
{
    if (sb == NULL)
        return;
    sb_state_free(sb->state);
    sb_rate_free(sb->rate);
    sb_reqlog_free(sb->log);
    sb_faults_free(sb->faults);
    sb_inbox_free(sb->inbox);
    free(sb->api_key);
    free(sb);
}

void
sb_response_set(struct sb_response *r, int status, char *body)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
    r->status = status;
    r->body = body;
}

void
sb_response_error(struct sb_response *r, int status, const char *error,
                  const char *code)
{
    sb_response_set(r, status, sb_json_error(error, code));
}

void
sb_response_clear(struct sb_response *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

void
sb_sandbox_event(struct sb_sandbox *sb, const char *event, json_object *data)
{
    if (sb->on_event != NULL) {
        const char *text = json_object_to_json_string_ext(
            data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (text == NULL)
            alloc_oom("json_object_to_json_string_ext");
        sb->on_event(sb->event_arg, event, text);
    }
    json_object_put(data);
}

void
sb_sandbox_changed(struct sb_sandbox *sb, const char *event, const char *what)
{
    json_object *o = sb_json_obj();

    sb_json_add(o, "what", sb_json_str(what));
    sb_sandbox_event(sb, event, o);
}

const struct sb_inbox_msg *
sb_sandbox_record(struct sb_sandbox *sb, int64_t sender_id, const char *phone,
                  int64_t at, enum sb_inbox_kind kind, const char *text,
                  size_t text_len, const char *template_name, int status,
                  const char *error_code)
{
    const struct sb_inbox_msg *m =
        sb_inbox_add(sb->inbox, sender_id, phone, at, kind, text, text_len,
                     template_name, status, error_code);
    json_object *o;

    if (m == NULL || sb->on_event == NULL)
        return m;
    o = sb_json_obj();
    sb_json_add(o, "sender_id", sb_json_int(sender_id));
    sb_json_add(o, "recipient_phone", sb_json_str(m->thread->phone));
    sb_json_add(o, "message", sb_view_message(m));
    /* a send accepted spent one: the page's balance follows */
    sb_json_add(o, "balance", sb_json_int(sb_state_balance(sb->state)));
    sb_sandbox_event(sb, "message", o);
    return m;
}
