/* reply.c - see reply.h. */
#include "reply.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <json-c/json.h>
#include <stdio.h>

#include "alloc.h"

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
