/* reply.c - see reply.h. */
#include "reply.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>

#include "alloc.h"
#include "isotime.h"

struct evbuffer *
reply_error_body(const char *code, const char *sentence,
                 struct json_object *extra)
{
    json_object *o = json_object_new_object();
    if (o == NULL)
        alloc_oom("json_object_new_object");
    json_object_object_add(o, "success", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(sentence));
    json_object_object_add(o, "error_code", json_object_new_string(code));
    if (extra != NULL) {
        json_object_object_foreach(extra, k, v)
        {
            json_object_object_add(o, k, json_object_get(v));
        }
    }
    size_t len;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    struct evbuffer *b = evbuffer_new();
    if (b == NULL || s == NULL || evbuffer_add(b, s, len) != 0)
        alloc_oom("reply_error_body");
    json_object_put(o);
    return b;
}

void
reply_reason_token(const char *code, char *out, size_t outlen)
{
    size_t i = 0;
    if (outlen == 0)
        return;
    for (; code[i] && i + 1 < outlen; i++)
        out[i] = (char)tolower((unsigned char)code[i]);
    out[i] = '\0';
}

void
reply_reason_header(const char *code, char *out, size_t outlen)
{
    char tok[64];
    reply_reason_token(code, tok, sizeof(tok));
    snprintf(out, outlen, "gateway; reason=%s", tok);
}

struct evbuffer *
reply_session_expired_body(long long expired_at)
{
    char when[40];
    json_object *ss = json_object_new_object();
    if (ss == NULL)
        alloc_oom("json_object_new_object");
    json_object_object_add(ss, "is_open", json_object_new_boolean(0));
    json_object_object_add(ss, "can_send_freeform",
                           json_object_new_boolean(0));
    json_object_object_add(ss, "requires_template",
                           json_object_new_boolean(1));
    json_object_object_add(
        ss, "message",
        json_object_new_string(
            "Session expired. Send a template or wait for customer to "
            "reply."));
    if (expired_at != INT64_MIN) {
        isotime_format(expired_at, when, sizeof(when));
        json_object_object_add(ss, "expired_at", json_object_new_string(when));
    }
    json_object *extra = json_object_new_object();
    if (extra == NULL)
        alloc_oom("json_object_new_object");
    json_object_object_add(extra, "session_status", ss);
    struct evbuffer *b = reply_error_body(
        "SESSION_EXPIRED", REPLY_SESSION_EXPIRED_SENTENCE, extra);
    json_object_put(extra);
    return b;
}
