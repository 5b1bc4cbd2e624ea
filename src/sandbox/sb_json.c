#include "sb_json.h"
#include "alloc.h"
#include "sb_text.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- RFC 8259 grammar ----
 * json-c's strict mode still accepts single-quoted keys and raw control
 * characters in strings, which the upstream's decoder refuses; this scanner
 * checks the grammar first. UTF-8 itself is left to the tokener's
 * JSON_TOKENER_VALIDATE_UTF8. */

#define SCAN_MAX_DEPTH 64

struct scan {
    const char *s;
    size_t len, i;
    int depth;
};

static int
peek(const struct scan *sc)
{
    return sc->i < sc->len ? (unsigned char)sc->s[sc->i] : -1;
}

static void
skip_ws(struct scan *sc)
{
    while (peek(sc) == ' ' || peek(sc) == '\t' || peek(sc) == '\n' ||
           peek(sc) == '\r')
        sc->i++;
}

static bool
scan_digits(struct scan *sc)
{
    size_t start = sc->i;

    while (peek(sc) >= '0' && peek(sc) <= '9')
        sc->i++;
    return sc->i > start;
}

static bool
scan_number(struct scan *sc)
{
    if (peek(sc) == '-')
        sc->i++;
    if (peek(sc) == '0')
        sc->i++;
    else if (!scan_digits(sc))
        return false;
    if (peek(sc) == '.') {
        sc->i++;
        if (!scan_digits(sc))
            return false;
    }
    if (peek(sc) == 'e' || peek(sc) == 'E') {
        sc->i++;
        if (peek(sc) == '+' || peek(sc) == '-')
            sc->i++;
        if (!scan_digits(sc))
            return false;
    }
    return true;
}

/* Reads the 4 hex digits after "\u"; -1 when malformed. */
static long
scan_hex4(struct scan *sc)
{
    long v = 0;

    for (int k = 0; k < 4; k++) {
        int c = peek(sc);
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
        sc->i++;
    }
    return v;
}

/* After "\u": a code unit, and a surrogate only as a complete pair. */
static bool
scan_unicode_escape(struct scan *sc)
{
    long hi = scan_hex4(sc), lo;

    if (hi < 0 || (hi >= 0xDC00 && hi <= 0xDFFF))
        return false;
    if (hi < 0xD800 || hi > 0xDBFF)
        return true;
    if (peek(sc) != '\\')
        return false;
    sc->i++;
    if (peek(sc) != 'u')
        return false;
    sc->i++;
    lo = scan_hex4(sc);
    return lo >= 0xDC00 && lo <= 0xDFFF;
}

static bool
scan_string(struct scan *sc)
{
    if (peek(sc) != '"')
        return false;
    sc->i++;
    for (;;) {
        int c = peek(sc);
        if (c < 0x20) /* also the end of input (-1) */
            return false;
        sc->i++;
        if (c == '"')
            return true;
        if (c != '\\')
            continue;
        c = peek(sc);
        sc->i++;
        if (c == 'u') {
            if (!scan_unicode_escape(sc))
                return false;
        } else if (c < 0 || strchr("\"\\/bfnrt", c) == NULL) {
            return false;
        }
    }
}

static bool scan_value(struct scan *sc);

/* Object or array after its opening bracket: members until `close`. */
static bool
scan_members(struct scan *sc, int close, bool keyed)
{
    skip_ws(sc);
    if (peek(sc) == close) {
        sc->i++;
        return true;
    }
    for (;;) {
        if (keyed) {
            if (!scan_string(sc))
                return false;
            skip_ws(sc);
            if (peek(sc) != ':')
                return false;
            sc->i++;
        }
        if (!scan_value(sc))
            return false;
        skip_ws(sc);
        if (peek(sc) == close) {
            sc->i++;
            return true;
        }
        if (peek(sc) != ',')
            return false;
        sc->i++;
        skip_ws(sc);
    }
}

static bool
scan_word(struct scan *sc, const char *w)
{
    size_t n = strlen(w);

    if (sc->len - sc->i < n || memcmp(sc->s + sc->i, w, n) != 0)
        return false;
    sc->i += n;
    return true;
}

static bool
scan_value(struct scan *sc)
{
    bool ok;

    skip_ws(sc);
    switch (peek(sc)) {
    case '{':
    case '[': {
        bool obj = peek(sc) == '{';
        sc->i++;
        if (++sc->depth > SCAN_MAX_DEPTH)
            return false;
        ok = scan_members(sc, obj ? '}' : ']', obj);
        sc->depth--;
        return ok;
    }
    case '"':
        return scan_string(sc);
    case 't':
        return scan_word(sc, "true");
    case 'f':
        return scan_word(sc, "false");
    case 'n':
        return scan_word(sc, "null");
    default:
        return scan_number(sc);
    }
}

bool
sb_json_grammar_ok(const char *s, size_t len)
{
    struct scan sc = {s, len, 0, 0};

    if (!scan_value(&sc))
        return false;
    skip_ws(&sc);
    return sc.i == len;
}

json_object *
sb_json_parse_object(const char *body, size_t len)
{
    json_tokener *tok;
    json_object *o;
    size_t end;
    bool ok;

    if (len == 0 || len > INT_MAX || !sb_json_grammar_ok(body, len))
        return NULL;
    tok = alloc_check(json_tokener_new(), "json_tokener_new");
    json_tokener_set_flags(tok,
                           JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(tok, body, (int)len);
    ok = o != NULL && json_tokener_get_error(tok) == json_tokener_success &&
         json_object_is_type(o, json_type_object);
    end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    /* The tokener stops after the object; only whitespace may follow. */
    for (size_t i = end; ok && i < len; i++)
        ok = body[i] == ' ' || body[i] == '\t' || body[i] == '\n' ||
             body[i] == '\r';
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

json_object *
sb_json_obj(void)
{
    return alloc_check(json_object_new_object(), "json_object_new_object");
}

json_object *
sb_json_arr(void)
{
    return alloc_check(json_object_new_array(), "json_object_new_array");
}

json_object *
sb_json_str(const char *s)
{
    return alloc_check(json_object_new_string(s), "json_object_new_string");
}

json_object *
sb_json_strn(const char *s, size_t len)
{
    if (len > INT_MAX)
        alloc_oom("json string length");
    return alloc_check(json_object_new_string_len(s, (int)len),
                       "json_object_new_string_len");
}

json_object *
sb_json_int(int64_t v)
{
    return alloc_check(json_object_new_int64(v), "json_object_new_int64");
}

json_object *
sb_json_bool(bool v)
{
    return alloc_check(json_object_new_boolean(v), "json_object_new_boolean");
}

void
sb_json_add(json_object *obj, const char *key, json_object *value)
{
    /* json-c only fails here on allocation failure. */
    if (json_object_object_add(obj, key, value) != 0)
        alloc_oom("json_object_object_add");
}

void
sb_json_push(json_object *arr, json_object *value)
{
    if (json_object_array_add(arr, value) != 0)
        alloc_oom("json_object_array_add");
}

char *
sb_json_take(json_object *o)
{
    size_t len;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    char *copy = xmemdup(
        alloc_check((void *)s, "json_object_to_json_string_length"), len);

    json_object_put(o);
    return copy;
}

char *
sb_json_error(const char *error, const char *code)
{
    json_object *o = sb_json_obj();

    sb_json_add(o, "success", sb_json_bool(false));
    sb_json_add(o, "error", sb_json_str(error));
    sb_json_add(o, "error_code", sb_json_str(code));
    return sb_json_take(o);
}

static json_object *
field(json_object *obj, const char *key)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(obj, key, &v))
        return NULL;
    return v; /* NULL for a JSON null too */
}

enum sb_field
sb_json_get_int(json_object *obj, const char *key, int64_t *out)
{
    json_object *v = field(obj, key);

    if (v == NULL)
        return SB_FIELD_ABSENT;
    /* Only a JSON integer: not "12", not 12.0, not true. */
    if (!json_object_is_type(v, json_type_int))
        return SB_FIELD_WRONG_TYPE;
    /* json-c saturates a number past int64 (strtoll's ERANGE is not an
     * error to it; past INT64_MAX it may hold a uint64, read back
     * clamped): the two ends cannot be told from a number out of range,
     * so neither is one. */
    *out = json_object_get_int64(v);
    if (*out == INT64_MAX || *out == INT64_MIN)
        return SB_FIELD_WRONG_TYPE;
    return SB_FIELD_OK;
}

enum sb_field
sb_json_get_str(json_object *obj, const char *key, const char **out,
                size_t *len)
{
    json_object *v = field(obj, key);

    if (v == NULL)
        return SB_FIELD_ABSENT;
    if (!json_object_is_type(v, json_type_string))
        return SB_FIELD_WRONG_TYPE;
    *out = json_object_get_string(v);
    *len = (size_t)json_object_get_string_len(v);
    return SB_FIELD_OK;
}

const char *
sb_json_unknown_key(json_object *obj, const char *const *allowed)
{
    json_object_object_foreach(obj, key, val)
    {
        size_t i = 0;

        (void)val;
        while (allowed[i] != NULL && strcmp(allowed[i], key) != 0)
            i++;
        if (allowed[i] == NULL)
            return key;
    }
    return NULL;
}

#define UNKNOWN_KEY_SHOWN 40

void
sb_json_unknown_msg(char *buf, size_t n, const char *key)
{
    size_t len;
    char *clean = sb_utf8_sanitize(key, strlen(key), &len);
    size_t cut = sb_utf8_cut(clean, len, UNKNOWN_KEY_SHOWN);

    snprintf(buf, n, "unknown field \"%.*s%s\"", (int)cut, clean,
             cut < len ? "..." : "");
    free(clean);
}
