/* learn.c - see learn.h. */
#include "learn.h"

#include <json-c/json.h>
#include <string.h>

#include "isotime.h"
#include "json_strict.h"
#include "session_cache.h"

/* The session_status object of an answer body (borrowed from root). */
static json_object *
session_status(json_object *root)
{
    json_object *ss;
    if (root == NULL || !json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "session_status", &ss) ||
        !json_object_is_type(ss, json_type_object))
        return NULL;
    return ss;
}

/* A timestamp member: 0 and *ms, -1 if absent or unparseable. */
static int
time_member(json_object *o, const char *name, int64_t *ms)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) ||
        !json_object_is_type(v, json_type_string))
        return -1;
    return isotime_parse(json_object_get_string(v),
                         (size_t)json_object_get_string_len(v), ms);
}

static int
bool_member(json_object *o, const char *name, int *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) ||
        !json_object_is_type(v, json_type_boolean))
        return -1;
    *out = json_object_get_boolean(v);
    return 0;
}

/* Reads a session_status object; src says where it came from. */
static int
status_lesson(json_object *ss, enum cache_source src, struct learn_lesson *l)
{
    int open;
    int64_t t;
    if (ss == NULL || bool_member(ss, "is_open", &open) != 0)
        return 0;
    if (open) {
        if (time_member(ss, "expires_at", &t) != 0)
            return 0; /* open, but until when is unknown: keep no guess */
        *l = (struct learn_lesson){1, t, 0, src};
        return 1;
    }
    if (time_member(ss, "expired_at", &t) != 0 &&
        time_member(ss, "expires_at", &t) != 0)
        t = CACHE_TIME_UNKNOWN;
    *l = (struct learn_lesson){0, t, 0, src};
    return 1;
}

static int
is_session_expired(json_object *root)
{
    json_object *v;
    return root && json_object_is_type(root, json_type_object) &&
           json_object_object_get_ex(root, "error_code", &v) &&
           json_object_is_type(v, json_type_string) &&
           json_object_get_string_len(v) == sizeof("SESSION_EXPIRED") - 1 &&
           memcmp(json_object_get_string(v), "SESSION_EXPIRED",
                  sizeof("SESSION_EXPIRED") - 1) == 0; /* a NUL may be in it */
}

int
learn_extract(enum route_id route, long long sender, uint64_t phone, int status,
              const char *body, size_t len, struct learn_lesson *l)
{
    int learned = 0;
    if (sender < 1 || phone == 0)
        return 0;
    if (route == ROUTE_SEND) {
        if (status < 200 || status > 299)
            return 0;
        *l = (struct learn_lesson){1, CACHE_TIME_UNKNOWN, LEARN_WINDOW_MS,
                                   CACHE_SRC_TEMPLATE};
        return 1;
    }
    if (len == 0 || len > (1u << 20) ||
        (status != 200 && !(status == 403 && route == ROUTE_SEND_FREEFORM)))
        return 0;
    json_object *root = json_strict_parse_object(body, len, JSON_STRICT_ANSWER);
    if (route == ROUTE_SEND_FREEFORM && status == 200) {
        learned =
            status_lesson(session_status(root), CACHE_SRC_SEND_FREEFORM, l);
    } else if (route == ROUTE_SEND_FREEFORM && is_session_expired(root)) {
        int64_t t;
        json_object *ss = session_status(root);
        if (ss == NULL || time_member(ss, "expired_at", &t) != 0)
            t = CACHE_TIME_UNKNOWN;
        *l = (struct learn_lesson){0, t, 0, CACHE_SRC_SEND_FREEFORM};
        learned = 1;
    } else if (route == ROUTE_SESSION_STATUS && status == 200) {
        learned =
            status_lesson(session_status(root), CACHE_SRC_SESSION_STATUS, l);
    }
    json_object_put(root);
    return learned;
}

int
learn_from_answer(struct session_cache *c, enum route_id route,
                  long long sender, uint64_t phone, int status,
                  const char *body, size_t len, int64_t now)
{
    struct learn_lesson l;
    if (!learn_extract(route, sender, phone, status, body, len, &l))
        return 0;
    if (l.open)
        cache_learn_open(c, sender, phone,
                         l.for_ms > 0 ? now + l.for_ms : l.when, l.source, now);
    else
        cache_learn_closed(c, sender, phone, l.when, l.source, now);
    return 1;
}
