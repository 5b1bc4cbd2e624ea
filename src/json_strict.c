/* json_strict.c - see json_strict.h.
 *
 * The scanner is one recursive-descent pass. UTF-8 is validated where it
 * can occur: inside strings (any byte >= 0x80 elsewhere is a grammar
 * error anyway), so a body is read once. Every string is decoded into the
 * caller's scratch buffer (escapes take at least as many bytes as what
 * they decode to, so a buffer of the input's size is enough); the keys of
 * each open object are kept on a stack and sorted when the object closes,
 * to find a duplicate in O(k log k). */
#include "json_strict.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* ---- UTF-8 ---- */

/* Unicode table 3-7: the second byte's range depends on the first. */
int
json_strict_utf8_next(const unsigned char *s, size_t len, size_t *i,
                      unsigned long *cp)
{
    size_t k = *i;
    unsigned c = s[k];
    unsigned lo = 0x80, hi = 0xBF;
    int n;
    unsigned long v;

    if (c < 0x80) {
        *cp = c;
        *i = k + 1;
        return 0;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 1;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return -1;
    }
    if (len - k - 1 < (size_t)n)
        return -1;
    for (int j = 1; j <= n; j++) {
        unsigned b = s[k + j];
        if (b < lo || b > hi)
            return -1;
        lo = 0x80;
        hi = 0xBF;
        v = (v << 6) | (b & 0x3F);
    }
    *cp = v;
    *i = k + 1 + n;
    return 0;
}

/* ---- the scanner ---- */

struct jkey {
    const char *p;
    size_t n;
};

struct scanner {
    const unsigned char *s;
    size_t len, pos;
    char *dec; /* the caller's scratch: decoded strings */
    size_t dlen;
    struct jkey *keys; /* keys of the open objects, innermost last:
                          inline until more are open at once */
    size_t nkeys, capkeys;
    struct jkey inline_keys[32];
    int lone; /* a lone surrogate escape was seen */
    json_strict_member_fn on_member;
    void *arg;
};

typedef struct json_strict_value jval;

static int scan_value(struct scanner *p, int depth, jval *v);

static int
peek(const struct scanner *p)
{
    return p->pos < p->len ? p->s[p->pos] : -1;
}

static void
skip_ws(struct scanner *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* Reads four hex digits at s[pos..]; -1 if there are not four. */
static long
hex4(const struct scanner *p, size_t pos)
{
    long v = 0;

    if (p->len - pos < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int c = p->s[pos + i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static void
put_cp(struct scanner *p, unsigned long c)
{
    char *o = p->dec + p->dlen;

    if (c < 0x80) {
        o[0] = (char)c;
        p->dlen += 1;
    } else if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        p->dlen += 2;
    } else if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        p->dlen += 3;
    } else {
        o[0] = (char)(0xF0 | (c >> 18));
        o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[3] = (char)(0x80 | (c & 0x3F));
        p->dlen += 4;
    }
}

/* After "\u": the escape (and a low surrogate escape that pairs with it),
 * decoded. A lone surrogate is kept as its WTF-8 form and flagged. */
static int
scan_unicode_escape(struct scanner *p)
{
    long u = hex4(p, p->pos);

    if (u < 0)
        return -1;
    p->pos += 4;
    if (u >= 0xD800 && u <= 0xDBFF) {
        long lo = -1;
        if (p->len - p->pos >= 6 && p->s[p->pos] == '\\' &&
            p->s[p->pos + 1] == 'u')
            lo = hex4(p, p->pos + 2);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            p->pos += 6;
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        } else {
            p->lone = 1;
        }
    } else if (u >= 0xDC00 && u <= 0xDFFF) {
        p->lone = 1;
    }
    put_cp(p, (unsigned long)u);
    return 0;
}

/* After '\\': one escape, decoded. */
static int
scan_escape(struct scanner *p)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    int c = peek(p);
    const char *e;

    p->pos++;
    if (c == 'u')
        return scan_unicode_escape(p);
    if (c <= 0 || (e = strchr(from, c)) == NULL)
        return -1;
    p->dec[p->dlen++] = to[e - from];
    return 0;
}

/* The bytes from p->pos on that a string holds as they are: printable
 * ASCII but '"' and '\\'. Eight at a time while none of a word's bytes
 * is below 0x20, 0x80 or above, '"' or '\\' (the SWAR tests of "Bit
 * Twiddling Hacks", Anderson); a message is mostly such bytes. */
static size_t
plain_run(const struct scanner *p)
{
    const uint64_t ones = 0x0101010101010101ULL, high = ones << 7;
    size_t i = p->pos;
    while (p->len - i >= 8) {
        uint64_t w, q, b;
        memcpy(&w, p->s + i, 8);
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');
        if (((w - ones * 0x20) | (q - ones) | (b - ones) | w) & high)
            break; /* some byte is special (or >= 0x80): bytewise */
        i += 8;
    }
    while (i < p->len) {
        unsigned char c = p->s[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
            break;
        i++;
    }
    return i - p->pos;
}

/* At '"'. */
static int
scan_string(struct scanner *p, jval *v)
{
    size_t d0 = p->dlen;

    v->type = JSON_STRICT_STRING;
    v->str = p->dec + d0;
    v->cps = 0;
    p->pos++;
    for (;;) {
        size_t run = plain_run(p);
        memcpy(p->dec + p->dlen, p->s + p->pos, run);
        p->dlen += run;
        p->pos += run;
        v->cps += (long long)run;
        int c = peek(p);
        if (c < 0x20) /* end of input or a raw control character */
            return -1;
        p->pos++;
        if (c == '"')
            break;
        v->cps++;
        if (c >= 0x80) { /* one UTF-8 sequence, validated and copied */
            size_t at = p->pos - 1, next = at;
            unsigned long cp;
            if (json_strict_utf8_next(p->s, p->len, &next, &cp) < 0)
                return -1;
            memcpy(p->dec + p->dlen, p->s + at, next - at);
            p->dlen += next - at;
            p->pos = next;
        } else if (c != '\\') {
            p->dec[p->dlen++] = (char)c;
        } else if (scan_escape(p) < 0) {
            return -1;
        }
    }
    v->str_len = p->dlen - d0;
    return 0;
}

static void
skip_digits(struct scanner *p)
{
    while (peek(p) >= '0' && peek(p) <= '9')
        p->pos++;
}

/* A fraction or exponent part: at least one digit after the marker. */
static int
scan_digits1(struct scanner *p)
{
    if (!(peek(p) >= '0' && peek(p) <= '9'))
        return -1;
    skip_digits(p);
    return 0;
}

static int
scan_number(struct scanner *p, jval *v)
{
    size_t start = p->pos;

    v->type = JSON_STRICT_NUMBER;
    v->is_int = 1;
    if (peek(p) == '-')
        p->pos++;
    if (peek(p) == '0')
        p->pos++;
    else if (peek(p) >= '1' && peek(p) <= '9')
        skip_digits(p);
    else
        return -1;
    if (peek(p) == '.') {
        v->is_int = 0;
        p->pos++;
        if (scan_digits1(p) < 0)
            return -1;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        v->is_int = 0;
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-')
            p->pos++;
        if (scan_digits1(p) < 0)
            return -1;
    }
    v->num = (const char *)p->s + start;
    v->num_len = p->pos - start;
    return 0;
}

static int
scan_literal(struct scanner *p, const char *word, enum json_strict_type t,
             jval *v)
{
    size_t n = strlen(word);

    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return -1;
    p->pos += n;
    v->type = t;
    return 0;
}

static int
key_cmp(const void *a, const void *b)
{
    const struct jkey *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);

    if (c != 0)
        return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

static int
has_duplicate(struct jkey *k, size_t n)
{
    if (n < 2)
        return 0;
    qsort(k, n, sizeof(*k), key_cmp);
    for (size_t i = 1; i < n; i++) {
        if (key_cmp(&k[i - 1], &k[i]) == 0)
            return 1;
    }
    return 0;
}

static void
push_key(struct scanner *p, const jval *k)
{
    if (p->nkeys == p->capkeys) {
        struct jkey *grown = xmalloc(2 * p->capkeys * sizeof(*p->keys));
        memcpy(grown, p->keys, p->nkeys * sizeof(*p->keys));
        if (p->keys != p->inline_keys)
            free(p->keys);
        p->keys = grown;
        p->capkeys *= 2;
    }
    p->keys[p->nkeys].p = k->str;
    p->keys[p->nkeys].n = k->str_len;
    p->nkeys++;
}

/* One "key": value; a member of the top-level object goes to the callback. */
static int
scan_member(struct scanner *p, int depth, jval *obj)
{
    jval k = {0}, m = {0};

    skip_ws(p);
    if (peek(p) != '"' || scan_string(p, &k) < 0)
        return -1;
    push_key(p, &k);
    skip_ws(p);
    if (peek(p) != ':')
        return -1;
    p->pos++;
    if (scan_value(p, depth + 1, &m) < 0)
        return -1;
    if (m.type != JSON_STRICT_STRING && m.type != JSON_STRICT_NUMBER)
        obj->scalars = 0;
    if (m.depth + 1 > obj->depth)
        obj->depth = m.depth + 1;
    if (depth == 1 && p->on_member != NULL)
        p->on_member(p->arg, k.str, k.str_len, &m);
    return 0;
}

/* At '{'; depth is this object's. */
static int
scan_object(struct scanner *p, int depth, jval *v)
{
    size_t first = p->nkeys;
    int dup;

    v->type = JSON_STRICT_OBJECT;
    v->scalars = 1;
    v->raw = (const char *)p->s + p->pos;
    v->depth = 1;
    p->pos++;
    skip_ws(p);
    if (peek(p) == '}') {
        p->pos++;
        v->raw_len = (size_t)((const char *)p->s + p->pos - v->raw);
        return 0;
    }
    for (;;) {
        if (scan_member(p, depth, v) < 0)
            return -1;
        skip_ws(p);
        if (peek(p) == ',') {
            p->pos++;
        } else if (peek(p) == '}') {
            p->pos++;
            break;
        } else {
            return -1;
        }
    }
    v->raw_len = (size_t)((const char *)p->s + p->pos - v->raw);
    dup = has_duplicate(p->keys + first, p->nkeys - first);
    p->nkeys = first;
    return dup ? -1 : 0;
}

/* At '['; depth is this array's. */
static int
scan_array(struct scanner *p, int depth, jval *v)
{
    v->type = JSON_STRICT_ARRAY;
    v->raw = (const char *)p->s + p->pos;
    v->depth = 1;
    p->pos++;
    skip_ws(p);
    if (peek(p) == ']') {
        p->pos++;
        v->raw_len = (size_t)((const char *)p->s + p->pos - v->raw);
        return 0;
    }
    for (;;) {
        jval m = {0};
        if (scan_value(p, depth + 1, &m) < 0)
            return -1;
        if (m.depth + 1 > v->depth)
            v->depth = m.depth + 1;
        skip_ws(p);
        if (peek(p) == ',') {
            p->pos++;
        } else if (peek(p) == ']') {
            p->pos++;
            v->raw_len = (size_t)((const char *)p->s + p->pos - v->raw);
            return 0;
        } else {
            return -1;
        }
    }
}

/* Skips leading whitespace; a container found here is at depth. */
static int
scan_value(struct scanner *p, int depth, jval *v)
{
    skip_ws(p);
    switch (peek(p)) {
    case '{':
        return depth > JSON_STRICT_MAX_DEPTH ? -1 : scan_object(p, depth, v);
    case '[':
        return depth > JSON_STRICT_MAX_DEPTH ? -1 : scan_array(p, depth, v);
    case '"':
        return scan_string(p, v);
    case 't':
        return scan_literal(p, "true", JSON_STRICT_TRUE, v);
    case 'f':
        return scan_literal(p, "false", JSON_STRICT_FALSE, v);
    case 'n':
        return scan_literal(p, "null", JSON_STRICT_NULL, v);
    default:
        return scan_number(p, v);
    }
}

/* One object, JSON whitespace around it, nothing else. */
static int
scan_document(struct scanner *p)
{
    jval top = {0};

    skip_ws(p);
    if (peek(p) != '{' || scan_value(p, 1, &top) < 0)
        return -1;
    skip_ws(p);
    return p->pos == p->len ? 0 : -1;
}

enum json_strict_verdict
json_strict_scan(const char *s, size_t len, char *scratch,
                 json_strict_member_fn on_member, void *arg)
{
    struct scanner p = {0};
    int rc;

    p.keys = p.inline_keys;
    p.capkeys = sizeof(p.inline_keys) / sizeof(p.inline_keys[0]);
    p.s = (const unsigned char *)s;
    p.len = len;
    p.dec = scratch;
    p.on_member = on_member;
    p.arg = arg;
    rc = scan_document(&p);
    if (p.keys != p.inline_keys)
        free(p.keys);
    if (rc < 0)
        return JSON_STRICT_INVALID;
    return p.lone ? JSON_STRICT_LONE_SURROGATE : JSON_STRICT_OK;
}

/* ---- json-c, strict ---- */

static int
only_json_ws(const char *s, size_t from, size_t len)
{
    for (size_t i = from; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    }
    return 1;
}

json_object *
json_strict_parse_object(const char *s, size_t len, enum json_strict_mode mode)
{
    int flags = JSON_TOKENER_STRICT;
    json_tokener *tok;
    json_object *o;
    int ok;

    if (len == 0 || len > INT_MAX)
        return NULL;
    if (mode == JSON_STRICT_BODY)
        flags |= JSON_TOKENER_VALIDATE_UTF8;
    tok = json_tokener_new();
    if (tok == NULL)
        alloc_oom("json_tokener_new");
    json_tokener_set_flags(tok, flags);
    o = json_tokener_parse_ex(tok, s, (int)len);
    ok = json_tokener_get_error(tok) == json_tokener_success &&
         json_object_is_type(o, json_type_object);
    /* json-c refuses other text after the value, but stops at a NUL */
    if (ok && mode == JSON_STRICT_BODY)
        ok = only_json_ws(s, json_tokener_get_parse_end(tok), len);
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}
