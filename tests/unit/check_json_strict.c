/* check_json_strict.c - unit tests for json_strict.h: the strict scanner
 * (verdicts, what the member callback is told, UTF-8 decoding) and the
 * json-c wrapper in both modes, with the two callers that use it (the
 * admin API's body, learning from an answer). No sockets, no sleeping. */
#include "unit.h"
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "gateway.h"
#include "json_strict.h"
#include "learn.h"
#include "precheck.h"
#include "route.h"
#include "session_cache.h"

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define NOW 1767225600000LL /* 2026-01-01T00:00:00Z */
#define PHONE "+14155550123"

/* A text with an explicit length, so that it may hold NUL bytes. */
struct text {
    const char *s;
    size_t len; /* 0: strlen(s) */
};

static size_t
text_len(const struct text *t)
{
    return t->len ? t->len : strlen(t->s);
}

static enum json_strict_verdict
scan(const char *s, size_t len)
{
    char *scratch = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(scratch);
    enum json_strict_verdict v = json_strict_scan(s, len, scratch, NULL, NULL);
    free(scratch);
    return v;
}

/* s nested in n arrays inside the top object: {"a":[[...s...]]} */
static char *
nested(int n, const char *s)
{
    size_t m = strlen(s);
    char *o = malloc(6 + 2 * (size_t)n + m + 2), *q = o;
    ck_assert_ptr_nonnull(o);
    q += sprintf(q, "{\"a\":");
    for (int i = 0; i < n; i++)
        *q++ = '[';
    memcpy(q, s, m);
    q += m;
    for (int i = 0; i < n; i++)
        *q++ = ']';
    *q++ = '}';
    *q = '\0';
    return o;
}

/* ---- verdicts ---- */

static const struct text valid[] = {
    {"{}", 0},
    {" \t\r\n{ \t\r\n} \t\r\n", 0},
    {"{\"a\":1}", 0},
    {"{\"a\":-0,\"b\":0.5,\"c\":1e5,\"d\":1E+5,\"e\":-1.25e-3,\"f\":10}", 0},
    {"{\"a\":true,\"b\":false,\"c\":null}", 0},
    {"{\"a\":[],\"b\":{},\"c\":[1,\"x\",{\"d\":[null]}]}", 0},
    {"{\"\":1}", 0},
    {"{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\"}", 0},
    {"{\"a\":\"\\ud83d\\ude00\"}", 0}, /* a surrogate pair */
    {"{\"a\":\"\\u0000\"}", 0},
    {"{\"a\":\"\x7f\"}", 0},
    {"{\"a\":\"\xc2\x80\xdf\xbf\"}", 0},                     /* 2-byte ends */
    {"{\"a\":\"\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\"}", 0}, /* 3-byte */
    {"{\"a\":\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"}", 0},     /* 4-byte */
    {"{\"a\":1,\"b\":{\"a\":1},\"c\":{\"a\":2}}",
     0}, /* same key, other objects */
    {"{\"a\":{\"b\":1,\"c\":2},\"d\":[{\"b\":1},{\"b\":1}]}", 0},
};

static const struct text invalid[] = {
    {"", 0},
    {" ", 0},
    {"[]", 0},
    {"\"a\"", 0},
    {"1", 0},
    {"null", 0},
    {"{", 0},
    {"{\"a\"", 0},
    {"{\"a\":", 0},
    {"{\"a\":1", 0},
    {"{\"a\":1,}", 0},
    {"{,}", 0},
    {"{\"a\" 1}", 0},
    {"{\"a\":1 \"b\":2}", 0},
    {"{a:1}", 0},
    {"{'a':1}", 0},
    {"{\"a\":[1,]}", 0},
    {"{\"a\":[1 2]}", 0},
    {"{} x", 0},
    {"{}{}", 0},
    {"{},", 0},
    {"{}\f", 0},
    {"{}\v", 0},
    {"\f{}", 0},
    {"{}\0", 3},
    {"{\"a\":1}\0 ", 9},
    {"{/*c*/}", 0},
    {"{}//", 0},
    {"\xef\xbb\xbf{}", 0}, /* a byte order mark */
    {"{\"a\":01}", 0},
    {"{\"a\":-}", 0},
    {"{\"a\":+1}", 0},
    {"{\"a\":.5}", 0},
    {"{\"a\":1.}", 0},
    {"{\"a\":1e}", 0},
    {"{\"a\":1e+}", 0},
    {"{\"a\":0x10}", 0},
    {"{\"a\":Infinity}", 0},
    {"{\"a\":NaN}", 0},
    {"{\"a\":True}", 0},
    {"{\"a\":nul}", 0},
    {"{\"a\":nulls}", 0},
    {"{\"a\":\"\x01\"}", 0},
    {"{\"a\":\"\t\"}", 0},
    {"{\"a\":\"\n\"}", 0},
    {"{\"a\":\"x\0y\"}", 11},
    {"{\"a\":\"\\x\"}", 0},
    {"{\"a\":\"\\\0\"}", 10},
    {"{\"a\":\"\\u12\"}", 0},
    {"{\"a\":\"\\u12G4\"}", 0},
    {"{\"a\":\"\\U0041\"}", 0},
    {"{\"a\":\"abc}", 0},
    {"{\"a\":\"\\", 0},
    {"{\"a\":1,\"a\":2}", 0},
    {"{\"a\":1,\"\\u0061\":2}", 0}, /* equal once decoded */
    {"{\"b\":{\"x\":1,\"y\":2,\"x\":3}}", 0},
    {"{\"b\":[{\"x\":1,\"x\":1}]}", 0},
    {"{\"\":1,\"\":2}", 0},
    {"{\"a\":\"\x80\"}", 0},             /* a lone continuation byte */
    {"{\"a\":\"\xc0\xaf\"}", 0},         /* overlong */
    {"{\"a\":\"\xc1\xbf\"}", 0},         /* overlong */
    {"{\"a\":\"\xe0\x9f\xbf\"}", 0},     /* overlong */
    {"{\"a\":\"\xed\xa0\x80\"}", 0},     /* an encoded surrogate */
    {"{\"a\":\"\xf0\x8f\xbf\xbf\"}", 0}, /* overlong */
    {"{\"a\":\"\xf4\x90\x80\x80\"}", 0}, /* above U+10FFFF */
    {"{\"a\":\"\xf5\x80\x80\x80\"}", 0},
    {"{\"a\":\"\xff\"}", 0},
    {"{\"a\":\"\xe2\x82\"}", 0},    /* truncated, then '"' */
    {"{\"a\":\"\xf0\x9f\x98", 0},   /* truncated at the end */
    {"{\"\xc3\xa9\":\xc3\xa9}", 0}, /* UTF-8 outside a string */
};

START_TEST(test_valid)
{
    const struct text *t = &valid[_i];
    ck_assert_msg(scan(t->s, text_len(t)) == JSON_STRICT_OK, "valid[%d]", _i);
}
END_TEST

START_TEST(test_invalid)
{
    const struct text *t = &invalid[_i];
    ck_assert_msg(scan(t->s, text_len(t)) == JSON_STRICT_INVALID, "invalid[%d]",
                  _i);
}
END_TEST

START_TEST(test_null_input)
{
    ck_assert(json_strict_scan(NULL, 0, NULL, NULL, NULL) ==
              JSON_STRICT_INVALID);
}
END_TEST

static const char *const lone[] = {
    "{\"a\":\"\\ud800\"}",
    "{\"a\":\"\\udfff\"}",
    "{\"a\":\"\\ude00\\ud83d\"}",    /* reversed pair */
    "{\"a\":\"\\ud83dx\"}",          /* high, then not an escape */
    "{\"a\":\"\\ud83d\\u0041\"}",    /* high, then not a low one */
    "{\"a\":\"\\ud83d\\ud83d\"}",    /* two highs */
    "{\"\\udc00\":1}",               /* in a key */
    "{\"a\":[{\"b\":\"\\ud800\"}]}", /* deep inside */
};

START_TEST(test_lone_surrogate)
{
    ck_assert_msg(scan(lone[_i], strlen(lone[_i])) ==
                      JSON_STRICT_LONE_SURROGATE,
                  "lone[%d]", _i);
}
END_TEST

/* A grammar error outranks a lone surrogate seen before it. */
START_TEST(test_invalid_outranks_lone)
{
    const char *s = "{\"a\":\"\\ud800\",}";
    ck_assert(scan(s, strlen(s)) == JSON_STRICT_INVALID);
    s = "{\"a\":\"\\ud800\",\"a\":1}";
    ck_assert(scan(s, strlen(s)) == JSON_STRICT_INVALID);
}
END_TEST

START_TEST(test_depth)
{
    /* the top object is depth 1: 63 arrays inside reach 64 */
    char *s = nested(JSON_STRICT_MAX_DEPTH - 1, "1");
    ck_assert(scan(s, strlen(s)) == JSON_STRICT_OK);
    free(s);
    s = nested(JSON_STRICT_MAX_DEPTH, "1");
    ck_assert(scan(s, strlen(s)) == JSON_STRICT_INVALID);
    free(s);
    s = nested(JSON_STRICT_MAX_DEPTH - 2, "{}");
    ck_assert(scan(s, strlen(s)) == JSON_STRICT_OK);
    free(s);
    s = nested(JSON_STRICT_MAX_DEPTH - 1, "{}");
    ck_assert(scan(s, strlen(s)) == JSON_STRICT_INVALID);
    free(s);
    s = nested(100000, "1"); /* far deeper: refused, no stack overflow */
    ck_assert(scan(s, strlen(s)) == JSON_STRICT_INVALID);
    free(s);
}
END_TEST

/* More keys than the key stack starts with, in nested objects that stay
 * open; a duplicate is found among them, and only within one object. */
START_TEST(test_many_keys)
{
    enum { N = 1000 };
    char *s = malloc(N * 24 + 64), *q = s;
    ck_assert_ptr_nonnull(s);
    q += sprintf(q, "{");
    for (int i = 0; i < N; i++)
        q += sprintf(q, "\"k%d\":%d,", i, i);
    q += sprintf(q, "\"in\":{");
    for (int i = 0; i < N; i++)
        q += sprintf(q, "%s\"k%d\":%d", i ? "," : "", i, i);
    sprintf(q, "}}");
    ck_assert(scan(s, strlen(s)) == JSON_STRICT_OK);
    *q = '\0';                /* drop the two '}' ... */
    strcat(s, ",\"k7\":0}}"); /* ... and repeat a key of the inner object */
    ck_assert(scan(s, strlen(s)) == JSON_STRICT_INVALID);
    free(s);
}
END_TEST

/* ---- what the callback is told ---- */

#define MAX_SEEN 16

struct seen {
    int n;
    char key[MAX_SEEN][32];
    size_t key_len[MAX_SEEN];
    struct json_strict_value v[MAX_SEEN];
};

static void
on_member(void *arg, const char *key, size_t key_len,
          const struct json_strict_value *v)
{
    struct seen *s = arg;
    ck_assert_int_lt(s->n, MAX_SEEN);
    ck_assert_uint_lt(key_len, sizeof(s->key[0]));
    memcpy(s->key[s->n], key, key_len);
    s->key_len[s->n] = key_len;
    s->v[s->n] = *v;
    s->n++;
}

static enum json_strict_verdict
scan_seen(const char *s, char *scratch, struct seen *out)
{
    memset(out, 0, sizeof(*out));
    return json_strict_scan(s, strlen(s), scratch, on_member, out);
}

START_TEST(test_members)
{
    const char *s =
        "{ \"s\" : \"h\\u00e9\\n\\ud83d\\ude00\xe2\x82\xac\", \"n\":-12.5e3,"
        "\"i\":42, \"t\":true, \"f\":false, \"z\":null,"
        "\"o\":{\"x\":\"1\",\"y\":2}, \"p\":{\"x\":[]}, \"a\":[{\"q\":1}],"
        "\"k\\u0065y\":\"\", \"e\":{} }";
    char scratch[512];
    struct seen m;

    ck_assert(scan_seen(s, scratch, &m) == JSON_STRICT_OK);
    ck_assert_int_eq(m.n, 11); /* top level only: not x, y, q */

    ck_assert_str_eq(m.key[0], "s");
    ck_assert_int_eq(m.v[0].type, JSON_STRICT_STRING);
    ck_assert_uint_eq(m.v[0].str_len, 11); /* 1, 2, 1, 4 and 3 bytes */
    ck_assert_mem_eq(m.v[0].str, "h\xc3\xa9\n\xf0\x9f\x98\x80\xe2\x82\xac", 11);
    ck_assert_int_eq(m.v[0].cps, 5);
    ck_assert(m.v[0].str >= scratch && m.v[0].str < scratch + sizeof(scratch));

    ck_assert_int_eq(m.v[1].type, JSON_STRICT_NUMBER);
    ck_assert_uint_eq(m.v[1].num_len, 7);
    ck_assert_mem_eq(m.v[1].num, "-12.5e3", 7);
    ck_assert(m.v[1].num >= s && m.v[1].num < s + strlen(s));
    ck_assert(!m.v[1].is_int);
    ck_assert_int_eq(m.v[2].type, JSON_STRICT_NUMBER);
    ck_assert_mem_eq(m.v[2].num, "42", 2);
    ck_assert(m.v[2].is_int);

    ck_assert_int_eq(m.v[3].type, JSON_STRICT_TRUE);
    ck_assert_int_eq(m.v[4].type, JSON_STRICT_FALSE);
    ck_assert_int_eq(m.v[5].type, JSON_STRICT_NULL);
    ck_assert_int_eq(m.v[6].type, JSON_STRICT_OBJECT);
    ck_assert(m.v[6].scalars);
    ck_assert_int_eq(m.v[7].type, JSON_STRICT_OBJECT);
    ck_assert(!m.v[7].scalars);
    ck_assert_int_eq(m.v[8].type, JSON_STRICT_ARRAY);

    ck_assert_uint_eq(m.key_len[9], 3); /* decoded: "key" */
    ck_assert_mem_eq(m.key[9], "key", 3);
    ck_assert_int_eq(m.v[9].type, JSON_STRICT_STRING);
    ck_assert_uint_eq(m.v[9].str_len, 0);
    ck_assert_int_eq(m.v[9].cps, 0);
    ck_assert_int_eq(m.v[10].type, JSON_STRICT_OBJECT);
    ck_assert(m.v[10].scalars); /* vacuously */
}
END_TEST

/* Containers carry their bytes as written and how deep they nest: the
 * learner rescans a session_status object from its raw span, and keeps
 * json-c's depth limit from the depth. */
START_TEST(test_raw_and_depth)
{
    const char *s = "{\"a\":[ ],\"b\":{ \t},\"c\":[[1],{\"d\":[[]]}],"
                    "\"e\":\"x\",\"f\":{\"g\": {\"h\":1} } }";
    static const struct {
        const char *raw;
        int depth;
    } want[] = {
        {"[ ]", 1},
        {"{ \t}", 1},
        {"[[1],{\"d\":[[]]}]", 4},
        {NULL, 0},
        {"{\"g\": {\"h\":1} }", 2},
    };
    char scratch[256];
    struct seen m;

    ck_assert(scan_seen(s, scratch, &m) == JSON_STRICT_OK);
    ck_assert_int_eq(m.n, NELEM(want));
    for (int i = 0; i < NELEM(want); i++) {
        ck_assert_int_eq(m.v[i].depth, want[i].depth);
        if (want[i].raw == NULL)
            continue;
        ck_assert_uint_eq(m.v[i].raw_len, strlen(want[i].raw));
        ck_assert_mem_eq(m.v[i].raw, want[i].raw, m.v[i].raw_len);
        ck_assert(m.v[i].raw > s && m.v[i].raw < s + strlen(s));
    }
}
END_TEST

/* The scanner reads runs of plain ASCII eight bytes at a time: each byte
 * the runs must stop at, at each offset of a 24-byte string, is seen as
 * the bytewise reader sees it (decoded bytes and code points, or the
 * refusal of a raw control character and of invalid UTF-8). */
START_TEST(test_plain_runs)
{
    static const struct {
        const char *in;  /* put at the offset */
        const char *out; /* decoded, NULL: the document is invalid */
    } special[] = {
        {"\\\"", "\""}, {"\\\\", "\\"}, {"\\n", "\n"}, {"\\u00e9", "\xc3\xa9"},
        {"\xc3\xa9", "\xc3\xa9"}, {"\xe2\x82\xac", "\xe2\x82\xac"},
        {"\x7f", "\x7f"}, {" ", " "}, {"~", "~"}, {"\x1f", NULL},
        {"\t", NULL}, {"\xc3", NULL}, {"\xff", NULL}, {"\x80", NULL},
    };
    for (size_t k = 0; k < sizeof(special) / sizeof(special[0]); k++)
        for (size_t at = 0; at <= 24; at++) {
            char doc[128], want[64], scratch[128];
            char body[48];
            memset(body, 'a', 24);
            body[24] = '\0';
            int n = snprintf(doc, sizeof(doc), "{\"m\":\"%.*s%s%s\"}",
                             (int)at, body, special[k].in, body + at);
            ck_assert(n > 0 && (size_t)n < sizeof(doc));
            struct seen m;
            enum json_strict_verdict v = scan_seen(doc, scratch, &m);
            if (special[k].out == NULL) {
                ck_assert_msg(v == JSON_STRICT_INVALID, "%zu at %zu", k, at);
                continue;
            }
            ck_assert_msg(v == JSON_STRICT_OK, "%zu at %zu", k, at);
            int w = snprintf(want, sizeof(want), "%.*s%s%s", (int)at, body,
                             special[k].out, body + at);
            ck_assert_int_eq(m.n, 1);
            ck_assert_uint_eq(m.v[0].str_len, (size_t)w);
            ck_assert_mem_eq(m.v[0].str, want, (size_t)w);
            ck_assert_int_eq(m.v[0].cps, 25);
        }
}
END_TEST

/* \u0000 decodes to a NUL byte in the value and in the key. */
START_TEST(test_member_nul)
{
    char scratch[64];
    struct seen m;

    ck_assert(scan_seen("{\"a\\u0000b\":\"x\\u0000\"}", scratch, &m) ==
              JSON_STRICT_OK);
    ck_assert_int_eq(m.n, 1);
    ck_assert_uint_eq(m.key_len[0], 3);
    ck_assert_mem_eq(m.key[0], "a\0b", 3);
    ck_assert_uint_eq(m.v[0].str_len, 2);
    ck_assert_mem_eq(m.v[0].str, "x\0", 2);
}
END_TEST

/* A lone surrogate reaches the callback as its three-byte form. */
START_TEST(test_member_lone)
{
    char scratch[64];
    struct seen m;

    ck_assert(scan_seen("{\"a\":\"\\uD800x\"}", scratch, &m) ==
              JSON_STRICT_LONE_SURROGATE);
    ck_assert_int_eq(m.n, 1);
    ck_assert_uint_eq(m.v[0].str_len, 4);
    ck_assert_mem_eq(m.v[0].str, "\xed\xa0\x80x", 4);
    ck_assert_int_eq(m.v[0].cps, 2);
}
END_TEST

/* Members before an error have been told; the verdict says to disregard
 * them. A key twice reaches the callback twice before the verdict. */
START_TEST(test_members_then_invalid)
{
    char scratch[64];
    struct seen m;

    ck_assert(scan_seen("{\"a\":1,\"b\":2,}", scratch, &m) ==
              JSON_STRICT_INVALID);
    ck_assert_int_eq(m.n, 2);
    ck_assert(scan_seen("{\"a\":1,\"a\":2}", scratch, &m) ==
              JSON_STRICT_INVALID);
    ck_assert_int_eq(m.n, 2);
    ck_assert(scan_seen("{\"a\":[1,}", scratch, &m) == JSON_STRICT_INVALID);
    ck_assert_int_eq(m.n, 0);
}
END_TEST

/* A scratch buffer of exactly the input's size is enough even when the
 * strings are most of the input, and nothing past len is read (exact-size
 * heap buffers: ASan and valgrind would see an overrun). */
START_TEST(test_scratch_exact)
{
    const char *bodies[] = {
        "{\"\":\"\"}",
        "{\"abc\":\"def\"}",
        "{\"\xf0\x9f\x98\x80\":\"\xf4\x8f\xbf\xbf\"}",
        "{\"\\ud83d\\ude00\":\"\\uffff\\u0800\\u07ff\\u0080\\u007f\"}",
    };
    for (int i = 0; i < NELEM(bodies); i++) {
        size_t n = strlen(bodies[i]);
        char *body = malloc(n), *scratch = malloc(n);
        ck_assert_ptr_nonnull(body);
        ck_assert_ptr_nonnull(scratch);
        memcpy(body, bodies[i], n); /* no NUL after: the scan must not look */
        struct seen m = {0};
        ck_assert(json_strict_scan(body, n, scratch, on_member, &m) ==
                  JSON_STRICT_OK);
        ck_assert_int_eq(m.n, 1);
        free(body);
        free(scratch);
    }
}
END_TEST

/* ---- UTF-8 ---- */

START_TEST(test_utf8_next)
{
    static const struct {
        const char *s;
        size_t len;
        int rc;
        unsigned long cp;
        size_t adv;
    } t[] = {
        {"A", 1, 0, 0x41, 1},
        {"\x7f", 1, 0, 0x7F, 1},
        {"\xc2\x80", 2, 0, 0x80, 2},
        {"\xdf\xbf", 2, 0, 0x7FF, 2},
        {"\xe0\xa0\x80", 3, 0, 0x800, 3},
        {"\xed\x9f\xbf", 3, 0, 0xD7FF, 3},
        {"\xee\x80\x80", 3, 0, 0xE000, 3},
        {"\xef\xbf\xbf", 3, 0, 0xFFFF, 3},
        {"\xf0\x90\x80\x80", 4, 0, 0x10000, 4},
        {"\xf4\x8f\xbf\xbf", 4, 0, 0x10FFFF, 4},
        {"\xc3\xa9z", 3, 0, 0xE9, 2},
        {"\x80", 1, -1, 0, 0},
        {"\xbf", 1, -1, 0, 0},
        {"\xc0\x80", 2, -1, 0, 0},
        {"\xc1\xbf", 2, -1, 0, 0},
        {"\xc2", 1, -1, 0, 0},
        {"\xc2\x7f", 2, -1, 0, 0},
        {"\xc2\xc0", 2, -1, 0, 0},
        {"\xe0\x9f\xbf", 3, -1, 0, 0},
        {"\xed\xa0\x80", 3, -1, 0, 0},
        {"\xed\xbf\xbf", 3, -1, 0, 0},
        {"\xe1\x80", 2, -1, 0, 0},
        {"\xf0\x8f\xbf\xbf", 4, -1, 0, 0},
        {"\xf4\x90\x80\x80", 4, -1, 0, 0},
        {"\xf5\x80\x80\x80", 4, -1, 0, 0},
        {"\xf0\x9f\x98", 3, -1, 0, 0},
        {"\xfe", 1, -1, 0, 0},
        {"\xff", 1, -1, 0, 0},
    };
    for (int k = 0; k < NELEM(t); k++) {
        size_t i = 0;
        unsigned long cp = 12345;
        int rc = json_strict_utf8_next((const unsigned char *)t[k].s, t[k].len,
                                       &i, &cp);
        ck_assert_msg(rc == t[k].rc, "utf8[%d]", k);
        ck_assert_uint_eq(i, t[k].adv);
        ck_assert_uint_eq(cp, rc == 0 ? t[k].cp : 12345);
    }
}
END_TEST

/* ---- the json-c wrapper ---- */

static int
parses(const struct text *t, enum json_strict_mode mode)
{
    json_object *o = json_strict_parse_object(t->s, text_len(t), mode);
    int ok = o != NULL;
    if (o != NULL)
        ck_assert(json_object_is_type(o, json_type_object));
    json_object_put(o);
    return ok;
}

static const struct {
    struct text t;
    int body, answer; /* 1: an object in that mode */
} wrapped[] = {
    {{"{}", 0}, 1, 1},
    {{" {\"a\":[1,{\"b\":null}]} \t\r\n", 0}, 1, 1},
    {{"{\"a\":1} x", 0}, 0, 0},
    {{"{\"a\":1}{}", 0}, 0, 0},
    {{"{}\f", 0}, 0, 0},
    {{"[]", 0}, 0, 0},
    {{"\"a\"", 0}, 0, 0},
    {{"null", 0}, 0, 0},
    {{"{\"a\":1,}", 0}, 0, 0},
    {{"{\"a\":'x'}", 0}, 0, 0},
    {{"{/*c*/}", 0}, 0, 0},
    {{"{\"a\":1", 0}, 0, 0},
    /* a NUL after the object: json-c stops there */
    {{"{}\0", 3}, 0, 1},
    {{"{} \0 ", 5}, 0, 1},
    {{"{}\0garbage", 10}, 0, 1},
    /* invalid UTF-8 in a string: only the body mode validates */
    {{"{\"a\":\"\xff\"}", 0}, 0, 1},
    {{"{\"a\":\"\xc3\"}", 0}, 0, 1},
    {{"{\"a\":\"\xc3\xa9\"}", 0}, 1, 1},
};

START_TEST(test_wrapper)
{
    ck_assert_msg(parses(&wrapped[_i].t, JSON_STRICT_BODY) == wrapped[_i].body,
                  "body, wrapped[%d]", _i);
    ck_assert_msg(parses(&wrapped[_i].t, JSON_STRICT_ANSWER) ==
                      wrapped[_i].answer,
                  "answer, wrapped[%d]", _i);
}
END_TEST

START_TEST(test_wrapper_empty)
{
    ck_assert_ptr_null(json_strict_parse_object("", 0, JSON_STRICT_BODY));
    ck_assert_ptr_null(json_strict_parse_object(NULL, 0, JSON_STRICT_ANSWER));
}
END_TEST

/* The input need not end with a NUL: only len bytes are read. */
START_TEST(test_wrapper_unterminated)
{
    const char *s = "{\"a\":1}xyz";
    json_object *o = json_strict_parse_object(s, 7, JSON_STRICT_BODY);
    ck_assert_ptr_nonnull(o);
    json_object_put(o);
}
END_TEST

/* ---- the callers ---- */

static struct session_cache *cache;

static void
setup(void)
{
    cache = cache_new(16);
}

static void
teardown(void)
{
    cache_free(cache);
}

static void
inbound(const char *body, size_t len, struct admin_result *r)
{
    struct gateway gw = {.cache = cache};
    struct admin_ctx ctx = {&gw, 300000};
    admin_handle(&ctx, "POST", "/admin/sessions/inbound", NULL, body, len, NOW,
                 r);
}

#define INBOUND "{\"sender_id\":12,\"recipient_phone\":\"" PHONE "\"}"

/* SPEC section 2: anything but whitespace after the object is
 * INVALID_JSON; a NUL byte is not whitespace. */
START_TEST(test_admin_body_nul_after)
{
    struct admin_result r;
    inbound(INBOUND " \n", sizeof(INBOUND " \n") - 1, &r);
    ck_assert_int_eq(r.status, 0); /* accepted: the state is asked next */
    ck_assert_int_eq(r.ask, ADMIN_ASK_OPEN);
    inbound(INBOUND "\0", sizeof(INBOUND "\0") - 1, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.code, "INVALID_JSON");
    inbound(INBOUND " \0\n", sizeof(INBOUND " \0\n") - 1, &r);
    ck_assert_int_eq(r.status, 400);
    inbound(INBOUND "\0x", sizeof(INBOUND "\0x") - 1, &r);
    ck_assert_int_eq(r.status, 400);
}
END_TEST

#define OPEN_ANSWER                                                            \
    "{\"session_status\":{\"is_open\":true,\"expires_at\":"                    \
    "\"2026-01-01T05:00:00Z\"},\"note\":\"\xff\"}"

/* What learning reads is unchanged: bytes json-c does not look at (after
 * a NUL) or does not validate (UTF-8) still let an answer teach. */
START_TEST(test_learn_reads_as_before)
{
    uint64_t ph = precheck_phone_key(PHONE);
    const char a[] = OPEN_ANSWER "\0trailing";
    struct cache_view v;

    ck_assert(learn_from_answer(cache, ROUTE_SESSION_STATUS, 12, ph, 200, a,
                                sizeof(a) - 1, NOW));
    ck_assert_int_eq(cache_get(cache, 12, ph, NOW, 300000, &v), 0);
    ck_assert(v.open);
    ck_assert(!learn_from_answer(cache, ROUTE_SESSION_STATUS, 13, ph, 200,
                                 OPEN_ANSWER " x", sizeof(OPEN_ANSWER " x") - 1,
                                 NOW));
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("json_strict");
    TCase *tc = tcase_create("scan");
    tcase_add_loop_test(tc, test_valid, 0, NELEM(valid));
    tcase_add_loop_test(tc, test_invalid, 0, NELEM(invalid));
    tcase_add_test(tc, test_null_input);
    tcase_add_test(tc, test_plain_runs);
    tcase_add_loop_test(tc, test_lone_surrogate, 0, NELEM(lone));
    tcase_add_test(tc, test_invalid_outranks_lone);
    tcase_add_test(tc, test_depth);
    tcase_add_test(tc, test_many_keys);
    suite_add_tcase(s, tc);

    tc = tcase_create("members");
    tcase_add_test(tc, test_members);
    tcase_add_test(tc, test_raw_and_depth);
    tcase_add_test(tc, test_member_nul);
    tcase_add_test(tc, test_member_lone);
    tcase_add_test(tc, test_members_then_invalid);
    tcase_add_test(tc, test_scratch_exact);
    suite_add_tcase(s, tc);

    tc = tcase_create("utf8");
    tcase_add_test(tc, test_utf8_next);
    suite_add_tcase(s, tc);

    tc = tcase_create("json-c");
    tcase_add_loop_test(tc, test_wrapper, 0, NELEM(wrapped));
    tcase_add_test(tc, test_wrapper_empty);
    tcase_add_test(tc, test_wrapper_unterminated);
    suite_add_tcase(s, tc);

    tc = tcase_create("callers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_admin_body_nul_after);
    tcase_add_test(tc, test_learn_reads_as_before);
    suite_add_tcase(s, tc);
    return s;
}
