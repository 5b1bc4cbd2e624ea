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

/* ---- the same reading without json-c, where it is sure to agree ----
 * json_strict_scan() reads an answer with no allocation. Where its verdict
 * is OK the text is one RFC 8259 object in valid UTF-8 with no key twice
 * and no NUL byte, which json-c strict reads to the same members -- except
 * that json-c cuts a key at a \u0000 and refuses nesting past 32: a key
 * holding a NUL, or a document nested deeper than FAST_DEPTH, goes to
 * json-c, as does anything the scan does not find OK. fuzz_learn holds the
 * two readings to the same lessons. */

#define FAST_MAX 2048  /* answers up to this many bytes: scratch on stack */
#define FAST_DEPTH 16  /* well inside json-c's 32 */

struct fast_ss {         /* what session_status holds, as json-c reads it */
    int unsure;          /* a key with a NUL: leave it to json-c */
    int is_open;         /* -1 absent or not a boolean */
    const char *expires, *expired; /* strings, or NULL */
    size_t expires_len, expired_len;
};

struct fast_root {
    int unsure, depth;
    int expired_code;    /* error_code is "SESSION_EXPIRED" */
    const char *ss;      /* session_status, as written, when an object */
    size_t ss_len;
};

static int
key_is(const char *key, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(key, name, n) == 0;
}

static void
fast_root_member(void *arg, const char *key, size_t n,
                 const struct json_strict_value *v)
{
    struct fast_root *r = arg;
    if (memchr(key, '\0', n) != NULL)
        r->unsure = 1;
    if (v->depth + 1 > r->depth)
        r->depth = v->depth + 1;
    if (key_is(key, n, "session_status") && v->type == JSON_STRICT_OBJECT) {
        r->ss = v->raw;
        r->ss_len = v->raw_len;
    } else if (key_is(key, n, "error_code")) {
        r->expired_code = v->type == JSON_STRICT_STRING &&
                          v->str_len == sizeof("SESSION_EXPIRED") - 1 &&
                          memcmp(v->str, "SESSION_EXPIRED", v->str_len) == 0;
    }
}

static void
fast_ss_member(void *arg, const char *key, size_t n,
               const struct json_strict_value *v)
{
    struct fast_ss *ss = arg;
    int str = v->type == JSON_STRICT_STRING;
    if (memchr(key, '\0', n) != NULL)
        ss->unsure = 1;
    if (key_is(key, n, "is_open"))
        ss->is_open = v->type == JSON_STRICT_TRUE    ? 1
                      : v->type == JSON_STRICT_FALSE ? 0
                                                     : -1;
    else if (key_is(key, n, "expires_at")) {
        ss->expires = str ? v->str : NULL;
        ss->expires_len = v->str_len;
    } else if (key_is(key, n, "expired_at")) {
        ss->expired = str ? v->str : NULL;
        ss->expired_len = v->str_len;
    }
}

static int
fast_time(const char *s, size_t n, int64_t *ms)
{
    return s == NULL ? -1 : isotime_parse(s, n, ms);
}

/* status_lesson() of a session_status read by the scan. */
static int
fast_status_lesson(const struct fast_ss *ss, enum cache_source src,
                   struct learn_lesson *l)
{
    int64_t t;
    if (ss->is_open < 0)
        return 0;
    if (ss->is_open) {
        if (fast_time(ss->expires, ss->expires_len, &t) != 0)
            return 0;
        *l = (struct learn_lesson){1, t, 0, src};
        return 1;
    }
    if (fast_time(ss->expired, ss->expired_len, &t) != 0 &&
        fast_time(ss->expires, ss->expires_len, &t) != 0)
        t = CACHE_TIME_UNKNOWN;
    *l = (struct learn_lesson){0, t, 0, src};
    return 1;
}

/* 1 when the answer was read here (*learned says what it taught), 0 when
 * it is json-c's to read. Routes and statuses as in learn_extract. */
static int
fast_extract(enum route_id route, int status, const char *body, size_t len,
             struct learn_lesson *l, int *learned)
{
    char scratch[FAST_MAX];
    struct fast_root r = {0};
    struct fast_ss ss = {0, -1, NULL, NULL, 0, 0};

    if (len > sizeof(scratch) ||
        json_strict_scan(body, len, scratch, fast_root_member, &r) !=
            JSON_STRICT_OK ||
        r.unsure || r.depth > FAST_DEPTH)
        return 0;
    /* the first scan's strings are done with: scratch is free again */
    if (r.ss != NULL &&
        (json_strict_scan(r.ss, r.ss_len, scratch, fast_ss_member, &ss) !=
             JSON_STRICT_OK ||
         ss.unsure))
        return 0;
    *learned = 0;
    if (route == ROUTE_SEND_FREEFORM && status == 200) {
        *learned = r.ss != NULL &&
                   fast_status_lesson(&ss, CACHE_SRC_SEND_FREEFORM, l);
    } else if (route == ROUTE_SEND_FREEFORM && r.expired_code) {
        int64_t t;
        if (r.ss == NULL || fast_time(ss.expired, ss.expired_len, &t) != 0)
            t = CACHE_TIME_UNKNOWN;
        *l = (struct learn_lesson){0, t, 0, CACHE_SRC_SEND_FREEFORM};
        *learned = 1;
    } else if (route == ROUTE_SESSION_STATUS && status == 200) {
        *learned = r.ss != NULL &&
                   fast_status_lesson(&ss, CACHE_SRC_SESSION_STATUS, l);
    }
    return 1;
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
    if (fast_extract(route, status, body, len, l, &learned))
        return learned;
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
