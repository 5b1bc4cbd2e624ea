#include "sb_fault.h"
#include "alloc.h"
#include "sb_json.h"
#include "sb_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sb_faults {
    struct sb_fault items[SB_FAULTS_MAX]; /* arming order */
    size_t count;
    uint64_t next_id;
};

static const char *const mode_names[] = {
    [SB_FAULT_RESET] = "reset",         [SB_FAULT_CLOSE] = "close",
    [SB_FAULT_HANG] = "hang",           [SB_FAULT_GARBAGE] = "garbage",
    [SB_FAULT_SLOW] = "slow",           [SB_FAULT_STATUS] = "status",
    [SB_FAULT_DROP_NEXT] = "drop_next",
};
#define NMODES (sizeof(mode_names) / sizeof(mode_names[0]))

struct sb_faults *
sb_faults_new(void)
{
    struct sb_faults *fl = xcalloc(1, sizeof(*fl));

    fl->next_id = 1;
    return fl;
}

void
sb_faults_free(struct sb_faults *fl)
{
    if (fl == NULL)
        return;
    sb_faults_clear(fl);
    free(fl);
}

const char *
sb_fault_mode_name(enum sb_fault_mode m)
{
    return (size_t)m < NMODES ? mode_names[m] : "unknown";
}

void
sb_fault_clear(struct sb_fault *f)
{
    free(f->path);
    free(f->match);
    for (size_t i = 0; i < f->nheaders; i++) {
        free(f->headers[i].name);
        free(f->headers[i].value);
    }
    free(f->headers);
    free(f->body);
    memset(f, 0, sizeof(*f));
}

/* ---- parsing ---- */

/* RFC 9110 tchar. */
static bool
is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
header_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > SB_FAULT_NAME_MAX || strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

/* Visible ASCII, with spaces and tabs only between visible characters. */
static bool
header_value_ok(const char *s, size_t len)
{
    if (len > SB_FAULT_VALUE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool blank = c == ' ' || c == '\t';
        if (blank ? i == 0 || i + 1 == len : c < 0x21 || c > 0x7E)
            return false;
    }
    return true;
}

/* The sandbox frames its answers itself. */
static bool
header_reserved(const char *name)
{
    static const char *const reserved[] = {"Content-Length",
                                           "Transfer-Encoding", "Connection"};

    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return true;
    return false;
}

static int
fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

static int
parse_mode(json_object *body, struct sb_fault *f, char *err, size_t errlen)
{
    const char *s;
    size_t len;

    if (sb_json_get_str(body, "mode", &s, &len) == SB_FIELD_OK)
        for (size_t i = 0; i < NMODES; i++)
            if (strlen(mode_names[i]) == len && strcmp(mode_names[i], s) == 0) {
                f->mode = (enum sb_fault_mode)i;
                return 0;
            }
    return fail(err, errlen,
                "mode must be one of \"reset\", \"close\", \"hang\", "
                "\"garbage\", \"slow\", \"status\", \"drop_next\"");
}

/* An optional integer in [min, max]; *v keeps its default when absent. */
static int
parse_int(json_object *body, const char *key, int64_t min, int64_t max,
          int64_t *v, char *err, size_t errlen)
{
    int64_t x;
    enum sb_field got = sb_json_get_int(body, key, &x);

    if (got == SB_FIELD_ABSENT)
        return 0;
    if (got == SB_FIELD_OK && x >= min && x <= max) {
        *v = x;
        return 0;
    }
    snprintf(err, errlen, "%s must be an integer in [%lld, %lld]", key,
             (long long)min, (long long)max);
    return -1;
}

static int
parse_path(json_object *body, struct sb_fault *f, char *err, size_t errlen)
{
    const char *s;
    size_t len;

    switch (sb_json_get_str(body, "path", &s, &len)) {
    case SB_FIELD_ABSENT:
        return 0;
    case SB_FIELD_OK:
        if (len >= 1 && len <= SB_FAULT_PATH_MAX && s[0] == '/' &&
            strlen(s) == len && strchr(s, '?') == NULL &&
            strncmp(s, "/_sandbox", 9) != 0) {
            f->path = xstrdup(s);
            return 0;
        }
        /* fall through */
    default:
        return fail(err, errlen,
                    "path must be an API path starting with \"/\", without "
                    "a query, at most 1024 bytes (faults never apply to "
                    "/_sandbox routes)");
    }
}

static int
parse_match(json_object *body, struct sb_fault *f, char *err, size_t errlen)
{
    const char *s;
    size_t len;

    switch (sb_json_get_str(body, "match", &s, &len)) {
    case SB_FIELD_ABSENT:
        return 0;
    case SB_FIELD_OK:
        if (len >= 1 && len <= SB_FAULT_MATCH_MAX) {
            f->match = xmemdup(s, len);
            f->match_len = len;
            return 0;
        }
        /* fall through */
    default:
        return fail(err, errlen,
                    "match must be a non-empty string of at most 1024 bytes");
    }
}

static int
parse_headers(json_object *body, struct sb_fault *f, char *err, size_t errlen)
{
    json_object *hs = json_object_object_get(body, "headers");

    if (hs == NULL)
        return 0;
    if (!json_object_is_type(hs, json_type_object) ||
        json_object_object_length(hs) > SB_FAULT_HEADERS_MAX)
        return fail(err, errlen,
                    "headers must be an object of at most 16 "
                    "\"Name\": \"value\" strings");
    f->headers =
        xcalloc((size_t)json_object_object_length(hs), sizeof(*f->headers));
    json_object_object_foreach(hs, name, val)
    {
        const char *v = json_object_get_string(val);
        size_t vlen = (size_t)json_object_get_string_len(val);
        if (!header_name_ok(name, strlen(name)))
            return fail(err, errlen,
                        "a header name must be an HTTP token (RFC 9110) of "
                        "at most 64 bytes");
        if (header_reserved(name)) {
            snprintf(err, errlen, "header %s is set by the sandbox itself",
                     name);
            return -1;
        }
        if (!json_object_is_type(val, json_type_string) ||
            !header_value_ok(v, vlen)) {
            snprintf(err, errlen,
                     "the value of header %s must be a string of visible "
                     "ASCII (spaces inside), at most 1024 bytes",
                     name);
            return -1;
        }
        f->headers[f->nheaders].name = xstrdup(name);
        f->headers[f->nheaders].value = xstrdup(v);
        f->nheaders++;
    }
    return 0;
}

/* A string is sent as it is; an object or array as its JSON text. */
static int
parse_body(json_object *body, struct sb_fault *f, char *err, size_t errlen)
{
    json_object *b = json_object_object_get(body, "body");
    const char *s = NULL;
    size_t len = 0;

    if (b == NULL)
        return 0;
    if (json_object_is_type(b, json_type_string)) {
        s = json_object_get_string(b);
        len = (size_t)json_object_get_string_len(b);
    } else if (json_object_is_type(b, json_type_object) ||
               json_object_is_type(b, json_type_array)) {
        s = json_object_to_json_string_length(
            b, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        alloc_check((void *)s, "json_object_to_json_string_length");
    }
    if (s == NULL || len > SB_FAULT_BODY_MAX)
        return fail(err, errlen,
                    "body must be a string, a JSON object or a JSON array "
                    "of at most 65536 bytes");
    f->body = xmemdup(s, len);
    f->body_len = len;
    return 0;
}

static bool
has(json_object *body, const char *key)
{
    return json_object_object_get_ex(body, key, NULL);
}

static int
parse_status(json_object *body, struct sb_fault *f, char *err, size_t errlen)
{
    int64_t status = 0;

    if (parse_int(body, "status", 200, 599, &status, err, errlen) != 0)
        return -1;
    if (status == 0)
        return fail(err, errlen,
                    "mode \"status\" needs a status, an integer in "
                    "[200, 599]");
    if (parse_headers(body, f, err, errlen) != 0 ||
        parse_body(body, f, err, errlen) != 0)
        return -1;
    f->status = (int)status;
    if ((status == 204 || status == 304) && f->body_len > 0)
        return fail(err, errlen, "a 204 or 304 answer has no body");
    return 0;
}

/* Members that belong to one mode only are refused with the others, so a
 * mistyped mode does not silently lose its settings. */
static int
parse_mode_members(json_object *body, struct sb_fault *f, char *err,
                   size_t errlen)
{
    int64_t delay = SB_FAULT_DELAY_DEFAULT_MS;

    if (f->mode != SB_FAULT_STATUS &&
        (has(body, "status") || has(body, "headers") || has(body, "body")))
        return fail(err, errlen,
                    "status, headers and body are only for mode \"status\"");
    if (f->mode != SB_FAULT_SLOW && has(body, "delay_ms"))
        return fail(err, errlen, "delay_ms is only for mode \"slow\"");
    if (f->mode == SB_FAULT_STATUS)
        return parse_status(body, f, err, errlen);
    if (f->mode == SB_FAULT_SLOW) {
        if (parse_int(body, "delay_ms", 0, SB_FAULT_DELAY_MAX_MS, &delay, err,
                      errlen) != 0)
            return -1;
        f->delay_ms = (unsigned)delay;
    }
    return 0;
}

int
sb_fault_parse(json_object *body, struct sb_fault *out, char *err,
               size_t errlen)
{
    static const char *const keys[] = {"mode",  "path",     "match",
                                       "times", "status",   "headers",
                                       "body",  "delay_ms", NULL};
    const char *unknown = sb_json_unknown_key(body, keys);
    int64_t times = 1;
    struct sb_fault f = {0};

    if (unknown != NULL) {
        char msg[SB_JSON_UNKNOWN_MSG_LEN];
        sb_json_unknown_msg(msg, sizeof(msg), unknown);
        return fail(err, errlen, msg);
    }
    if (parse_mode(body, &f, err, errlen) != 0 ||
        parse_int(body, "times", 1, SB_FAULT_TIMES_MAX, &times, err, errlen) !=
            0 ||
        parse_path(body, &f, err, errlen) != 0 ||
        parse_match(body, &f, err, errlen) != 0 ||
        parse_mode_members(body, &f, err, errlen) != 0) {
        sb_fault_clear(&f);
        return -1;
    }
    f.times = f.times_left = (unsigned)times;
    *out = f;
    return 0;
}

/* ---- the list ---- */

const struct sb_fault *
sb_faults_arm(struct sb_faults *fl, struct sb_fault *f)
{
    struct sb_fault *slot;

    if (fl->count == SB_FAULTS_MAX)
        return NULL;
    slot = &fl->items[fl->count++];
    *slot = *f;
    memset(f, 0, sizeof(*f));
    slot->id = fl->next_id++;
    return slot;
}

void
sb_faults_clear(struct sb_faults *fl)
{
    for (size_t i = 0; i < fl->count; i++)
        sb_fault_clear(&fl->items[i]);
    fl->count = 0;
}

size_t
sb_faults_count(const struct sb_faults *fl)
{
    return fl->count;
}

const struct sb_fault *
sb_faults_at(const struct sb_faults *fl, size_t i)
{
    return i < fl->count ? &fl->items[i] : NULL;
}

static bool
fault_fits(const struct sb_fault *f, const char *path, const char *body,
           size_t body_len, bool reused)
{
    if (f->mode == SB_FAULT_DROP_NEXT && !reused)
        return false;
    if (f->path != NULL && strcmp(f->path, path) != 0)
        return false;
    return f->match == NULL ||
           (body_len > 0 && memmem(body, body_len, f->match, f->match_len));
}

static void
fault_copy(const struct sb_fault *f, struct sb_fault *out)
{
    *out = *f;
    out->path = f->path ? xstrdup(f->path) : NULL;
    out->match = f->match ? xmemdup(f->match, f->match_len) : NULL;
    out->body = f->body ? xmemdup(f->body, f->body_len) : NULL;
    out->headers =
        f->nheaders ? xcalloc(f->nheaders, sizeof(*out->headers)) : NULL;
    for (size_t i = 0; i < f->nheaders; i++) {
        out->headers[i].name = xstrdup(f->headers[i].name);
        out->headers[i].value = xstrdup(f->headers[i].value);
    }
}

bool
sb_faults_take(struct sb_faults *fl, const char *path, const char *body,
               size_t body_len, bool reused, struct sb_fault *out)
{
    for (size_t i = 0; i < fl->count; i++) {
        struct sb_fault *f = &fl->items[i];
        if (!fault_fits(f, path, body, body_len, reused))
            continue;
        fault_copy(f, out);
        out->times_left = --f->times_left;
        if (f->times_left == 0) {
            sb_fault_clear(f);
            memmove(f, f + 1, (fl->count - i - 1) * sizeof(*f));
            fl->count--;
        }
        return true;
    }
    return false;
}

/* ---- JSON ---- */

static json_object *
opt_text(const char *s, size_t len)
{
    size_t n;
    char *clean;
    json_object *o;

    if (s == NULL)
        return NULL;
    clean = sb_utf8_sanitize(s, len, &n);
    o = sb_json_strn(clean, n);
    free(clean);
    return o;
}

json_object *
sb_fault_json(const struct sb_fault *f)
{
    json_object *o = sb_json_obj();

    sb_json_add(o, "id", sb_json_int((int64_t)f->id));
    sb_json_add(o, "mode", sb_json_str(sb_fault_mode_name(f->mode)));
    sb_json_add(o, "path", opt_text(f->path, f->path ? strlen(f->path) : 0));
    sb_json_add(o, "match", opt_text(f->match, f->match_len));
    sb_json_add(o, "times", sb_json_int(f->times));
    sb_json_add(o, "times_left", sb_json_int(f->times_left));
    if (f->mode == SB_FAULT_STATUS) {
        json_object *hs = sb_json_obj();
        for (size_t i = 0; i < f->nheaders; i++)
            sb_json_add(hs, f->headers[i].name,
                        sb_json_str(f->headers[i].value));
        sb_json_add(o, "status", sb_json_int(f->status));
        sb_json_add(o, "headers", hs);
        sb_json_add(o, "body", opt_text(f->body ? f->body : "", f->body_len));
    }
    if (f->mode == SB_FAULT_SLOW)
        sb_json_add(o, "delay_ms", sb_json_int(f->delay_ms));
    return o;
}

json_object *
sb_faults_json(const struct sb_faults *fl)
{
    json_object *o = sb_json_obj(), *list = sb_json_arr();

    for (size_t i = 0; i < fl->count; i++)
        sb_json_push(list, sb_fault_json(&fl->items[i]));
    sb_json_add(o, "count", sb_json_int((int64_t)fl->count));
    sb_json_add(o, "faults", list);
    return o;
}
