/* check_precheck.c - unit tests for precheck: E.164, UTF-8 counting,
 * White_Space, the strict JSON parser and the field rules of SPEC section 3,
 * plus a bounded fuzz loop. No sockets, no sleeping. */
#include "unit.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "precheck.h"

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define PHONE "+14155551234"
#define MAXC 4096

/* ---- helpers ---- */

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *
fmt(const char *f, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, f);
    int n = vasprintf(&s, f, ap);
    va_end(ap);
    ck_assert_int_ge(n, 0);
    return s;
}

/* unit repeated n times; caller frees */
static char *
repeat(const char *unit, int n)
{
    size_t u = strlen(unit);
    char *s = malloc(u * (size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    for (int i = 0; i < n; i++)
        memcpy(s + u * (size_t)i, unit, u);
    s[u * (size_t)n] = '\0';
    return s;
}

/* s as the contents of a JSON string: '"', '\\' and controls escaped */
static char *
json_escape(const char *s)
{
    char *o = malloc(strlen(s) * 6 + 1), *q = o;
    ck_assert_ptr_nonnull(o);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == '"' || c == '\\')
            q += sprintf(q, "\\u%04x", c);
        else
            *q++ = (char)c;
    }
    *q = '\0';
    return o;
}

static int
check(enum precheck_kind k, const char *body, long long max,
      struct precheck_result *r)
{
    memset(r, 0xA5, sizeof(*r)); /* prove r is always fully written */
    int rc = precheck_body(k, body, strlen(body), max, r);
    ck_assert_int_eq(rc, r->status == 0 ? 0 : -1);
    return rc;
}

static void
assert_ok(enum precheck_kind k, const char *body)
{
    struct precheck_result r;
    int rc = check(k, body, MAXC, &r);
    ck_assert_msg(rc == 0, "%s -> %d %s %s", body, r.status,
                  r.code ? r.code : "-", r.field ? r.field : "-");
    ck_assert_ptr_null(r.code);
    ck_assert_ptr_null(r.sentence);
    ck_assert_ptr_null(r.field);
}

/* field NULL: the verdict must have none */
static void
assert_fail(enum precheck_kind k, const char *body, int status,
            const char *code, const char *field)
{
    struct precheck_result r;
    int rc = check(k, body, MAXC, &r);
    ck_assert_msg(rc == -1 && r.status == status && r.code &&
                      strcmp(r.code, code) == 0,
                  "%.200s -> %d %s, want %d %s", body, r.status,
                  r.code ? r.code : "-", status, code);
    ck_assert_ptr_nonnull(r.sentence);
    ck_assert_int_gt(strlen(r.sentence), 10);
    if (field == NULL)
        ck_assert_msg(r.field == NULL, "%s: field %s", body, r.field);
    else
        ck_assert_msg(r.field && strcmp(r.field, field) == 0,
                      "%s: field %s, want %s", body, r.field ? r.field : "-",
                      field);
}

static void
assert_json(const char *body)
{
    assert_fail(PRECHECK_FREEFORM, body, 400, "INVALID_JSON", NULL);
}

static void
assert_json_n(const char *body, size_t len)
{
    struct precheck_result r;
    memset(&r, 0xA5, sizeof(r));
    ck_assert_int_eq(precheck_body(PRECHECK_FREEFORM, body, len, MAXC, &r), -1);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.code, "INVALID_JSON");
    ck_assert_ptr_null(r.field);
    ck_assert_int_eq(r.sender_id, -1);
    ck_assert_str_eq(r.recipient, "");
}

/* a freeform body around a raw JSON message value */
static char *
ff(const char *message_json)
{
    return fmt("{\"sender_id\":12,\"recipient_phone\":\"" PHONE
               "\",\"message\":%s}",
               message_json);
}

/* a template body with extra members (may be empty) */
static char *
tp(const char *extra)
{
    return fmt("{\"sender_id\":12,\"recipient_phone\":\"" PHONE
               "\",\"template_id\":7%s%s}",
               *extra ? "," : "", extra);
}

/* ---- E.164 ---- */

static const struct {
    const char *s;
    int ok;
} phones[] = {
    {"+12", 1},
    {"+14155551234", 1},
    {"+442071838750", 1},
    {"+123456789012345", 1}, /* 15 digits */
    {"+999999999999999", 1}, /* 15 nines */
    {"+100000000000000", 1}, /* 15 digits, zeros after the first */
    {"+91", 1},
    {"+10", 1},
    {"+1", 0}, /* 1 digit */
    {"+", 0},
    {"", 0},
    {"+1234567890123456", 0}, /* 16 digits */
    {"+01", 0},
    {"+0123456789", 0},
    {"+00", 0},
    {"14155551234", 0}, /* no + */
    {"++14155551234", 0},
    {"+1 4155551234", 0},
    {" +14155551234", 0},
    {"+14155551234 ", 0},
    {"+1-415-555-1234", 0},
    {"+1(415)5551234", 0},
    {"+1.4155551234", 0},
    {"+1415555123a", 0},
    {"+A4155551234", 0},
    {"+14155551234\n", 0}, /* trailing newline */
    {"\n+14155551234", 0},
    {"+14155551234\r", 0},
    {"+\xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93", 0}, /* fullwidth digits */
    {"+\xD9\xA1\xD9\xA2\xD9\xA3", 0},             /* Arabic-Indic digits */
    {"\xEF\xBC\x8B"
     "14155551234",
     0}, /* fullwidth plus */
    {"+1\xC2\xA0"
     "4155551234",
     0}, /* NBSP inside */
    {"+-1415555123", 0},
    {"-14155551234", 0},
    {"+1e5", 0},
    {"00 14155551234", 0},
    {"+1/4155551234", 0}, /* '/' is '0' - 1 */
    {"+1:4155551234", 0}, /* ':' is '9' + 1 */
};

START_TEST(test_phone_table)
{
    const char *s = phones[_i].s;
    ck_assert_msg(precheck_is_e164(s) == phones[_i].ok, "[%s]", s);
    ck_assert_msg((precheck_phone_key(s) != 0) == phones[_i].ok, "[%s]", s);

    /* the same through a body */
    char *esc = json_escape(s);
    char *body = fmt("{\"sender_id\":3,\"recipient_phone\":\"%s\","
                     "\"message\":\"hi\"}",
                     esc);
    struct precheck_result r;
    int rc = check(PRECHECK_FREEFORM, body, MAXC, &r);
    ck_assert_int_eq(r.sender_id, 3);
    if (phones[_i].ok) {
        ck_assert_msg(rc == 0, "[%s] %s", s, r.code);
        ck_assert_str_eq(r.recipient, s);
    } else {
        ck_assert_msg(rc == -1 && strcmp(r.code, "INVALID_PHONE") == 0, "[%s]",
                      s);
        ck_assert_int_eq(r.status, 422);
        ck_assert_str_eq(r.sentence, precheck_invalid_phone_sentence);
        ck_assert_ptr_null(r.field);
        ck_assert_str_eq(r.recipient, "");
    }
    free(esc);
    free(body);
}
END_TEST

START_TEST(test_phone_edges)
{
    ck_assert_int_eq(precheck_is_e164(NULL), 0);
    ck_assert_int_eq(precheck_phone_key(NULL), 0);
    /* much longer than the limit, to prove the bound */
    char *long_phone = fmt("+1%s", "23456789012345678901234567890");
    ck_assert_int_eq(precheck_is_e164(long_phone), 0);
    free(long_phone);
    ck_assert_str_eq(precheck_invalid_phone_sentence,
                     "Invalid phone number format. Use E.164 format "
                     "(e.g., +14155551234).");
    /* an escaped '+' decodes to a valid number; an escaped NUL does not */
    assert_ok(PRECHECK_FREEFORM,
              "{\"sender_id\":1,\"recipient_phone\":\"\\u002B14155551234\","
              "\"message\":\"m\"}");
    assert_fail(PRECHECK_FREEFORM,
                "{\"sender_id\":1,\"recipient_phone\":\"+1415\\u0000\","
                "\"message\":\"m\"}",
                422, "INVALID_PHONE", NULL);
}
END_TEST

START_TEST(test_phone_key)
{
    ck_assert_uint_eq(precheck_phone_key("+14155551234"), 14155551234ULL);
    ck_assert_uint_eq(precheck_phone_key("+12"), 12);
    ck_assert_uint_eq(precheck_phone_key("+999999999999999"),
                      999999999999999ULL);
    ck_assert_uint_eq(precheck_phone_key("14155551234"), 0);
    ck_assert_uint_eq(precheck_phone_key("+012"), 0);

    /* distinct strings, distinct keys: every valid table entry, plus
     * numbers that differ only by trailing zeros */
    static const char *const extra[] = {"+12", "+120", "+1200", "+12000",
                                        "+21", "+102", "+1020"};
    uint64_t keys[64];
    const char *strs[64];
    int n = 0;
    for (int i = 0; i < NELEM(phones); i++) {
        if (phones[i].ok) {
            strs[n] = phones[i].s;
            keys[n++] = precheck_phone_key(phones[i].s);
        }
    }
    for (int i = 0; i < NELEM(extra); i++) {
        int dup = 0;
        for (int j = 0; j < n; j++)
            dup |= strcmp(strs[j], extra[i]) == 0;
        if (!dup) {
            strs[n] = extra[i];
            keys[n++] = precheck_phone_key(extra[i]);
        }
    }
    for (int i = 0; i < n; i++) {
        ck_assert_uint_ne(keys[i], 0);
        for (int j = i + 1; j < n; j++)
            ck_assert_msg(keys[i] != keys[j], "%s %s", strs[i], strs[j]);
    }
}
END_TEST

/* ---- UTF-8 counting ---- */

static const struct {
    const char *s;
    size_t len;
    long long n;
} utf8[] = {
    {"", 0, 0},
    {"abc", 3, 3},
    {"\0", 1, 1},
    {"a\0b", 3, 3},
    {"\x7F", 1, 1},
    {"\xC2\x80", 2, 1},         /* U+0080 */
    {"\xC3\xA9", 2, 1},         /* e acute */
    {"\xDF\xBF", 2, 1},         /* U+07FF */
    {"\xE0\xA0\x80", 3, 1},     /* U+0800 */
    {"\xE2\x82\xAC", 3, 1},     /* euro */
    {"\xED\x9F\xBF", 3, 1},     /* U+D7FF */
    {"\xEE\x80\x80", 3, 1},     /* U+E000 */
    {"\xEF\xBF\xBF", 3, 1},     /* U+FFFF */
    {"\xF0\x90\x80\x80", 4, 1}, /* U+10000 */
    {"\xF0\x9F\x98\x80", 4, 1}, /* emoji */
    {"\xF4\x8F\xBF\xBF", 4, 1}, /* U+10FFFF */
    {"a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z", 11, 5},
    /* invalid */
    {"\xC0\x80", 2, -1},         /* overlong NUL */
    {"\xC1\xBF", 2, -1},         /* overlong */
    {"\xE0\x80\x80", 3, -1},     /* overlong */
    {"\xE0\x9F\xBF", 3, -1},     /* overlong U+07FF */
    {"\xF0\x80\x80\x80", 4, -1}, /* overlong */
    {"\xF0\x8F\xBF\xBF", 4, -1}, /* overlong U+FFFF */
    {"\xFF", 1, -1},
    {"\xFE", 1, -1},
    {"\x80", 1, -1}, /* lone continuation */
    {"\xBF", 1, -1},
    {"a\x80"
     "b",
     3, -1},
    {"\xC3", 1, -1}, /* truncated */
    {"\xE2\x82", 2, -1},
    {"\xF0\x9F\x98", 3, -1},
    {"\xC3(", 2, -1}, /* bad continuation */
    {"\xE2(\xAC", 3, -1},
    {"\xF0\x9F(\x80", 4, -1},
    {"\xED\xA0\x80", 3, -1},             /* UTF-8-encoded high surrogate */
    {"\xED\xBF\xBF", 3, -1},             /* UTF-8-encoded low surrogate */
    {"\xED\xA0\xBD\xED\xB8\x80", 6, -1}, /* CESU-8 pair */
    {"\xF4\x90\x80\x80", 4, -1},         /* above U+10FFFF */
    {"\xF5\x80\x80\x80", 4, -1},
    {"\xF8\x88\x80\x80\x80", 5, -1},
};

START_TEST(test_utf8_count)
{
    ck_assert_msg(precheck_utf8_count(utf8[_i].s, utf8[_i].len) == utf8[_i].n,
                  "entry %d: %lld", _i,
                  precheck_utf8_count(utf8[_i].s, utf8[_i].len));
    /* a raw byte that is not UTF-8 makes the body INVALID_JSON */
    if (utf8[_i].n < 0) {
        char body[256];
        int n = snprintf(body, sizeof(body),
                         "{\"sender_id\":1,\"recipient_phone\":\"" PHONE
                         "\",\"message\":\"x");
        memcpy(body + n, utf8[_i].s, utf8[_i].len);
        memcpy(body + n + utf8[_i].len, "\"}", 2);
        assert_json_n(body, (size_t)n + utf8[_i].len + 2);
        /* and outside a string too */
        memcpy(body, "{}", 2);
        memcpy(body + 2, utf8[_i].s, utf8[_i].len);
        assert_json_n(body, 2 + utf8[_i].len);
    }
}
END_TEST

/* ---- White_Space ---- */

static const char *const spaces[] = {
    "\t",           "\n", "\v", "\f", "\r", " ", "\xC2\x85", /* U+0085 */
    "\xC2\xA0",                                              /* U+00A0 */
    "\xE1\x9A\x80",                                          /* U+1680 */
    "\xE2\x80\x80",                                          /* U+2000 */
    "\xE2\x80\x85",                                          /* U+2005 */
    "\xE2\x80\x8A",                                          /* U+200A */
    "\xE2\x80\xA8",                                          /* U+2028 */
    "\xE2\x80\xA9",                                          /* U+2029 */
    "\xE2\x80\xAF",                                          /* U+202F */
    "\xE2\x81\x9F",                                          /* U+205F */
    "\xE3\x80\x80",                                          /* U+3000 */
};

START_TEST(test_white_space)
{
    char all[256] = "";
    for (int i = 0; i < NELEM(spaces); i++) {
        ck_assert_msg(precheck_has_non_space(spaces[i], strlen(spaces[i])) == 0,
                      "space %d", i);
        strcat(all, spaces[i]);
    }
    ck_assert_int_eq(precheck_has_non_space(all, strlen(all)), 0);
    ck_assert_int_eq(precheck_has_non_space("", 0), 0);
    ck_assert_int_eq(precheck_has_non_space("a", 1), 1);
    ck_assert_int_eq(precheck_has_non_space("  .  ", 5), 1);
    ck_assert_int_eq(precheck_has_non_space("\0", 1), 1);
    /* not White_Space: ZWSP U+200B, U+180E, BOM U+FEFF, U+200C */
    ck_assert_int_eq(precheck_has_non_space("\xE2\x80\x8B", 3), 1);
    ck_assert_int_eq(precheck_has_non_space("\xE1\xA0\x8E", 3), 1);
    ck_assert_int_eq(precheck_has_non_space("\xEF\xBB\xBF", 3), 1);
    ck_assert_int_eq(precheck_has_non_space("\xE2\x80\x8C", 3), 1);
    ck_assert_int_eq(precheck_has_non_space("\x1F", 1), 1);
    /* an invalid byte is not whitespace */
    ck_assert_int_eq(precheck_has_non_space(" \xFF", 2), 1);
}
END_TEST

START_TEST(test_message_whitespace_only)
{
    static const char *const bad[] = {
        "\"\"",
        "\" \"",
        "\"   \\t\\n\\r  \"",
        "\"\\u3000\"",
        "\"\xE3\x80\x80\"",
        "\"\\u00a0\\u00A0\"",
        "\"\xC2\xA0\"",
        "\"\\u2028\\u2029\\u0085\\u000b\\f\"",
        "\"\xE1\x9A\x80\xE2\x80\x80\xE2\x81\x9F\"",
    };
    static const char *const good[] = {
        "\"x\"",
        "\" x \"",
        "\"\\u3000.\\u3000\"",
        "\"\\u200b\"",
        "\"\\u0000\"",
        "\"\xF0\x9F\x98\x80\"",
        "\"\\uD83D\\uDE00\"",
        "\"\\/\"",
    };
    for (int i = 0; i < NELEM(bad); i++) {
        char *b = ff(bad[i]);
        assert_fail(PRECHECK_FREEFORM, b, 422, "VALIDATION_ERROR", "message");
        free(b);
    }
    for (int i = 0; i < NELEM(good); i++) {
        char *b = ff(good[i]);
        assert_ok(PRECHECK_FREEFORM, b);
        free(b);
    }
    /* whitespace-only beats length: nothing to send either way */
    char *sp = repeat(" ", 5000);
    char *m = fmt("\"%s\"", sp);
    char *b = ff(m);
    assert_fail(PRECHECK_FREEFORM, b, 422, "VALIDATION_ERROR", "message");
    free(sp);
    free(m);
    free(b);
}
END_TEST

/* ---- message length ---- */

static void
length_case(const char *unit, int n, long long max, int ok)
{
    char *rep = repeat(unit, n);
    char *m = fmt("\"%s\"", rep);
    char *b = ff(m);
    struct precheck_result r;
    int rc = check(PRECHECK_FREEFORM, b, max, &r);
    if (ok) {
        ck_assert_msg(rc == 0, "%s x%d max %lld: %s", unit, n, max, r.code);
    } else {
        ck_assert_msg(rc == -1, "%s x%d max %lld", unit, n, max);
        ck_assert_int_eq(r.status, 422);
        ck_assert_str_eq(r.code, "MESSAGE_TOO_LONG");
        ck_assert_ptr_null(r.field);
        ck_assert_int_eq(r.length, n);
        ck_assert_int_eq(r.max_length, max);
        ck_assert_str_eq(r.sentence,
                         "The message is longer than the maximum allowed "
                         "length.");
    }
    /* learned despite the failure */
    ck_assert_int_eq(r.sender_id, 12);
    ck_assert_str_eq(r.recipient, PHONE);
    free(rep);
    free(m);
    free(b);
}

START_TEST(test_message_length)
{
    static const char *const units[] = {
        "a",
        "\xC3\xA9",         /* 2 bytes */
        "\xE2\x82\xAC",     /* 3 bytes */
        "\xF0\x9F\x98\x80", /* 4 bytes */
        "\\uD83D\\uDE00",   /* escaped pair: one code point */
        "\\ud83d\\ude00",   /* lower-case hex */
        "\\u00e9",          /* escape of a 2-byte character */
        "\\b",
        "\\\"",
        "\\u0000",
        "\\/",
    };
    for (int i = 0; i < NELEM(units); i++) {
        length_case(units[i], 4096, 4096, 1);
        length_case(units[i], 4097, 4096, 0);
        length_case(units[i], 1, 1, 1);
        length_case(units[i], 2, 1, 0);
    }
    /* a mix: a, e acute, euro, emoji raw and escaped, escapes */
    char *b = ff("\"a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\\uD83D\\uDE00"
                 "\\u20ac\\t\\\\\"");
    struct precheck_result r;
    ck_assert_int_eq(check(PRECHECK_FREEFORM, b, 8, &r), 0);
    ck_assert_int_eq(check(PRECHECK_FREEFORM, b, 7, &r), -1);
    ck_assert_int_eq(r.length, 8);
    ck_assert_int_eq(r.max_length, 7);
    free(b);
    /* the configured maximum is the one applied */
    length_case("x", 10001, 10000, 0);
    length_case("x", 10000, 10000, 1);
}
END_TEST

/* ---- lone surrogates ---- */

START_TEST(test_lone_surrogates)
{
    static const char *const lone[] = {
        "\"\\uD800\"", /* high at end of string */
        "\"\\uDBFF\"",
        "\"\\uDC00\"", /* low alone */
        "\"a\\uDFFFb\"",
        "\"\\uD800\\u0041\"", /* high followed by a non-low escape */
        "\"\\uD83D\\uD83D\"", /* high, high */
        "\"\\uD800x\"",       /* high followed by a character */
        "\"\\uD800\\n\"",
        "\"\\uDE00\\uD83D\"",        /* reversed pair */
        "\"\\uD83D\\uD83D\\uDE00\"", /* lone high, then a pair */
        "\"\\uD83D\\uDE00\\uDE00\"", /* a pair, then a lone low */
    };
    for (int i = 0; i < NELEM(lone); i++) {
        char *b = ff(lone[i]);
        struct precheck_result r;
        assert_fail(PRECHECK_FREEFORM, b, 422, "INVALID_ENCODING", NULL);
        check(PRECHECK_FREEFORM, b, MAXC, &r);
        ck_assert_int_eq(r.sender_id, 12);
        ck_assert_str_eq(r.recipient, PHONE);
        free(b);
    }
    /* anywhere: a key, a nested value, an unknown member, template kind */
    assert_fail(PRECHECK_FREEFORM,
                "{\"\\uD800\":1,\"sender_id\":1,\"recipient_phone\":\"" PHONE
                "\",\"message\":\"m\"}",
                422, "INVALID_ENCODING", NULL);
    assert_fail(PRECHECK_FREEFORM,
                "{\"x\":[{\"y\":[\"\\uDC00\"]}],\"sender_id\":1,"
                "\"recipient_phone\":\"" PHONE "\",\"message\":\"m\"}",
                422, "INVALID_ENCODING", NULL);
    char *t = tp("\"variables\":{\"a\":\"\\uD800\"}");
    assert_fail(PRECHECK_TEMPLATE, t, 422, "INVALID_ENCODING", NULL);
    free(t);
    /* it outranks field checks, even of earlier fields */
    assert_fail(PRECHECK_FREEFORM, "{\"sender_id\":0,\"x\":\"\\uD800\"}", 422,
                "INVALID_ENCODING", NULL);
    /* but a parse error outranks it */
    assert_json("{\"x\":\"\\uD800\",}");
    assert_json("{\"x\":\"\\uD800\",\"x\":1}");
    assert_json("{\"x\":\"\\uD800\\u12\"}");
    /* valid pairs at the range ends */
    assert_ok(PRECHECK_FREEFORM, "{\"sender_id\":1,\"recipient_phone\":\"" PHONE
                                 "\",\"message\":\"\\uD800\\uDC00\\uDBFF\\uDFFF"
                                 "\\uD7FF\\uE000\"}");
}
END_TEST

/* ---- JSON syntax ---- */

static const char *const bad_json[] = {
    "",
    " ",
    "{",
    "}",
    "[]",
    "[{}]",
    "\"x\"",
    "1",
    "null",
    "true",
    "{}{}",
    "{} {}",
    "{}x",
    "{} x",
    "{}\v",
    "{}\f",
    "{},",
    "\xEF\xBB\xBF{}", /* BOM */
    "{}\xC2\xA0",     /* NBSP is not JSON whitespace */
    "\xE3\x80\x80{}",
    "{,}",
    "{\"a\"}",
    "{\"a\":}",
    "{\"a\" 1}",
    "{\"a\":1,}",
    "{\"a\":1 \"b\":2}",
    "{'a':1}",
    "{a:1}",
    "{1:1}",
    "{\"a\":01}",
    "{\"a\":-01}",
    "{\"a\":00}",
    "{\"a\":+1}",
    "{\"a\":1.}",
    "{\"a\":.5}",
    "{\"a\":1e}",
    "{\"a\":1e+}",
    "{\"a\":1.e3}",
    "{\"a\":-}",
    "{\"a\":- 1}",
    "{\"a\":0x10}",
    "{\"a\":NaN}",
    "{\"a\":Infinity}",
    "{\"a\":-Infinity}",
    "{\"a\":tru}",
    "{\"a\":True}",
    "{\"a\":nul}",
    "{\"a\":nulll}",
    "{\"a\":falsex}",
    "{\"a\":\"\t\"}", /* raw control character */
    "{\"a\":\"\n\"}",
    "{\"a\":\"\x1F\"}",
    "{\"a\":\"\\x41\"}",
    "{\"a\":\"\\a\"}",
    "{\"a\":\"\\U0041\"}",
    "{\"a\":\"\\u12\"}",
    "{\"a\":\"\\u12G4\"}",
    "{\"a\":\"\\u\"}",
    "{\"a\":\"\\\"}",
    "{\"a\":\"abc}",
    "{\"a\":\"abc",
    "{\"a\":[1,]}",
    "{\"a\":[,1]}",
    "{\"a\":[1 2]}",
    "{\"a\":[}",
    "{\"a\":{]}",
    "{\"a\":1]",
    "/*c*/{}",
    "{}//",
    "{} /* */",
    "{\"a\":1}\n#",
};

START_TEST(test_bad_json)
{
    assert_json(bad_json[_i]);
}
END_TEST

START_TEST(test_bad_json_bytes)
{
    assert_json_n(NULL, 0);
    assert_json_n("{}", 0);
    assert_json_n("{}\0", 3);
    assert_json_n("\0{}", 3);
    assert_json_n("{\"a\":\"\0\"}", 9);
    /* a truncated length */
    assert_json_n("{\"a\":1}", 6);
}
END_TEST

START_TEST(test_good_json_shapes)
{
    /* everything is well-formed; only the fields decide */
    static const char *const extras[] = {
        "\"n\":[-0, 0, 0.0, -0.5, 1.5e+10, 1E-2, 2e3, "
        "123456789012345678901234]",
        "\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\uFFFF\\u00e9\"",
        "\"deep\":{\"a\":[{\"b\":[[]]},{},[],null,true,false]}",
        "\"\":\"empty key\"",
        "\"del\":\"\x7F\"",
        "\"u\":\"\xF4\x8F\xBF\xBF\"",
    };
    for (int i = 0; i < NELEM(extras); i++) {
        char *b = fmt("{%s,\"sender_id\":1,\"recipient_phone\":\"" PHONE
                      "\",\"message\":\"m\"}",
                      extras[i]);
        assert_ok(PRECHECK_FREEFORM, b);
        free(b);
    }
    /* JSON whitespace around and inside */
    assert_ok(PRECHECK_FREEFORM,
              " \t\r\n{ \"sender_id\" : 1 ,\r\n\t\"recipient_phone\":\"" PHONE
              "\" , \"message\" :\"m\" } \n\t\r ");
    /* escaped key names are the same keys */
    assert_ok(PRECHECK_FREEFORM,
              "{\"sender_\\u0069d\":1,\"recipient\\u005fphone\":\"" PHONE
              "\",\"\\u006dessage\":\"m\"}");
}
END_TEST

START_TEST(test_duplicate_keys)
{
    assert_json("{\"a\":1,\"a\":2}");
    assert_json("{\"a\":1,\"a\":1}");
    assert_json("{\"a\":1,\"b\":2,\"a\":3}");
    assert_json("{\"x\":{\"a\":1,\"a\":1}}");
    assert_json("{\"x\":[1,{\"y\":{\"a\":1,\"b\":{},\"a\":1}}]}");
    assert_json("{\"a\":1,\"\\u0061\":2}"); /* same after decoding */
    assert_json("{\"\\u00e9\":1,\"\xC3\xA9\":2}");
    assert_json("{\"\\uD83D\\uDE00\":1,\"\xF0\x9F\x98\x80\":2}");
    assert_json("{\"\":1,\"\":2}");
    /* a real field twice, both valid */
    assert_json("{\"sender_id\":1,\"sender_id\":1,\"recipient_phone\":\"" PHONE
                "\",\"message\":\"m\"}");
    assert_json("{\"sender_id\":1,\"recipient_phone\":\"" PHONE
                "\",\"message\":\"m\",\"message\":\"m\"}");

    /* not duplicates */
    static const char *const fine[] = {
        "\"x\":{\"a\":1},\"y\":{\"a\":1}", /* siblings */
        "\"a\":{\"a\":{\"a\":1}}",         /* parent and child */
        "\"a\":[{\"a\":1},{\"a\":1}]",
        "\"k\":1,\"kk\":1,\"k\\u0000\":1", /* prefixes, NUL */
        "\"A\":1,\"a\":1",                 /* case matters */
    };
    for (int i = 0; i < NELEM(fine); i++) {
        char *b = fmt("{%s,\"sender_id\":1,\"recipient_phone\":\"" PHONE
                      "\",\"message\":\"m\"}",
                      fine[i]);
        assert_ok(PRECHECK_FREEFORM, b);
        free(b);
    }
}
END_TEST

/* thousands of keys in a 64 KiB-sized body: must stay fast */
START_TEST(test_many_keys)
{
    size_t cap = 200000, n = 0;
    char *b = malloc(cap);
    ck_assert_ptr_nonnull(b);
    n += (size_t)sprintf(b + n, "{\"sender_id\":1,\"recipient_phone\":\"" PHONE
                                "\",\"message\":\"m\",\"v\":{");
    for (int i = 0; i < 6000; i++)
        n += (size_t)sprintf(b + n, "%s\"k%d\":%d", i ? "," : "", i, i);
    strcpy(b + n, "}}");
    assert_ok(PRECHECK_FREEFORM, b);
    /* the same with the first key repeated last */
    strcpy(b + n, ",\"k0\":0}}");
    assert_json(b);
    /* at top level too */
    n = (size_t)sprintf(b, "{\"sender_id\":1,\"recipient_phone\":\"" PHONE
                           "\",\"message\":\"m\"");
    for (int i = 0; i < 6000; i++)
        n += (size_t)sprintf(b + n, ",\"k%d\":\"%d\"", i, i);
    strcpy(b + n, "}");
    assert_ok(PRECHECK_FREEFORM, b);
    strcpy(b + n, ",\"k5999\":1}");
    assert_json(b);
    free(b);
}
END_TEST

START_TEST(test_depth)
{
    /* 64 objects deep parses (the fields then fail); 65 does not */
    char *open = repeat("{\"a\":", 64), *close = repeat("}", 64);
    char *b = fmt("%s1%s", open, close);
    assert_fail(PRECHECK_FREEFORM, b, 422, "VALIDATION_ERROR", "sender_id");
    free(b);
    free(open);
    open = repeat("{\"a\":", 65);
    free(close);
    close = repeat("}", 65);
    b = fmt("%s1%s", open, close);
    assert_json(b);
    free(b);
    free(open);
    free(close);

    /* arrays count too: the top object is level 1 */
    open = repeat("[", 63);
    close = repeat("]", 63);
    b = fmt("{\"x\":%s%s,\"sender_id\":1,\"recipient_phone\":\"" PHONE
            "\",\"message\":\"m\"}",
            open, close);
    assert_ok(PRECHECK_FREEFORM, b);
    free(b);
    free(open);
    free(close);
    open = repeat("[", 64);
    close = repeat("]", 64);
    b = fmt("{\"x\":%s%s,\"sender_id\":1,\"recipient_phone\":\"" PHONE
            "\",\"message\":\"m\"}",
            open, close);
    assert_json(b);
    free(b);
    free(open);
    free(close);

    /* very deep input fails without exhausting the stack */
    open = repeat("[", 200000);
    b = fmt("{\"x\":%s", open);
    assert_json(b);
    free(b);
    free(open);
}
END_TEST

/* ---- field rules ---- */

struct field_case {
    enum precheck_kind kind;
    const char *body;
    int status; /* 0: ok */
    const char *code;
    const char *field;
};

#define FF PRECHECK_FREEFORM
#define TP PRECHECK_TEMPLATE
#define RP "\"recipient_phone\":\"" PHONE "\""
#define VE "VALIDATION_ERROR"

static const struct field_case fields[] = {
    /* freeform */
    {FF, "{\"sender_id\":1," RP ",\"message\":\"m\"}", 0, NULL, NULL},
    {FF, "{\"sender_id\":9223372036854775807," RP ",\"message\":\"m\"}", 0,
     NULL, NULL},
    {FF, "{\"message\":\"m\"," RP ",\"sender_id\":5,\"other\":[1]}", 0, NULL,
     NULL},
    {FF, "{" RP ",\"message\":\"m\"}", 422, VE, "sender_id"},
    {FF, "{\"sender_id\":null," RP ",\"message\":\"m\"}", 422, VE, "sender_id"},
    {FF, "{\"sender_id\":\"12\"," RP ",\"message\":\"m\"}", 422, VE,
     "sender_id"},
    {FF, "{\"sender_id\":1.0," RP ",\"message\":\"m\"}", 422, VE, "sender_id"},
    {FF, "{\"sender_id\":1e2," RP ",\"message\":\"m\"}", 422, VE, "sender_id"},
    {FF, "{\"sender_id\":1E0," RP ",\"message\":\"m\"}", 422, VE, "sender_id"},
    {FF, "{\"sender_id\":0," RP ",\"message\":\"m\"}", 422, VE, "sender_id"},
    {FF, "{\"sender_id\":-0," RP ",\"message\":\"m\"}", 422, VE, "sender_id"},
    {FF, "{\"sender_id\":-3," RP ",\"message\":\"m\"}", 422, VE, "sender_id"},
    {FF, "{\"sender_id\":99999999999999999999," RP ",\"message\":\"m\"}", 422,
     VE, "sender_id"},
    {FF, "{\"sender_id\":9223372036854775808," RP ",\"message\":\"m\"}", 422,
     VE, "sender_id"},
    {FF, "{\"sender_id\":true," RP ",\"message\":\"m\"}", 422, VE, "sender_id"},
    {FF, "{\"sender_id\":[1]," RP ",\"message\":\"m\"}", 422, VE, "sender_id"},
    {FF, "{\"sender_id\":{}," RP ",\"message\":\"m\"}", 422, VE, "sender_id"},
    {FF, "{\"Sender_id\":1," RP ",\"message\":\"m\"}", 422, VE, "sender_id"},
    {FF, "{\"sender_id\":1,\"message\":\"m\"}", 422, VE, "recipient_phone"},
    {FF, "{\"sender_id\":1,\"recipient_phone\":null,\"message\":\"m\"}", 422,
     VE, "recipient_phone"},
    {FF, "{\"sender_id\":1,\"recipient_phone\":14155551234,\"message\":\"m\"}",
     422, VE, "recipient_phone"},
    {FF,
     "{\"sender_id\":1,\"recipient_phone\":[\"" PHONE "\"],"
     "\"message\":\"m\"}",
     422, VE, "recipient_phone"},
    {FF,
     "{\"sender_id\":1,\"recipient_phone\":\"14155551234\","
     "\"message\":\"m\"}",
     422, "INVALID_PHONE", NULL},
    {FF, "{\"sender_id\":1," RP "}", 422, VE, "message"},
    {FF, "{\"sender_id\":1," RP ",\"message\":null}", 422, VE, "message"},
    {FF, "{\"sender_id\":1," RP ",\"message\":5}", 422, VE, "message"},
    {FF, "{\"sender_id\":1," RP ",\"message\":[\"m\"]}", 422, VE, "message"},
    {FF, "{\"sender_id\":1," RP ",\"message\":{}}", 422, VE, "message"},
    {FF, "{\"sender_id\":1," RP ",\"message\":false}", 422, VE, "message"},
    /* order: sender_id, then recipient_phone, then message */
    {FF, "{\"sender_id\":0,\"recipient_phone\":\"bad\"}", 422, VE, "sender_id"},
    {FF, "{\"sender_id\":1,\"recipient_phone\":\"bad\"}", 422, "INVALID_PHONE",
     NULL},
    {FF, "{\"sender_id\":1,\"recipient_phone\":1}", 422, VE, "recipient_phone"},
    {FF, "{}", 422, VE, "sender_id"},
    /* only top-level members count */
    {FF, "{\"x\":{\"sender_id\":1," RP ",\"message\":\"m\"}}", 422, VE,
     "sender_id"},
    {FF, "{\"sender_id\":1,\"x\":{" RP ",\"message\":\"m\"}}", 422, VE,
     "recipient_phone"},
    /* freeform ignores template members */
    {FF,
     "{\"sender_id\":1," RP ",\"message\":\"m\",\"template_id\":\"x\","
     "\"variables\":[]}",
     0, NULL, NULL},

    /* template */
    {TP, "{\"sender_id\":1," RP ",\"template_id\":1}", 0, NULL, NULL},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":9223372036854775807}", 0,
     NULL, NULL},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":1,\"message\":5}", 0, NULL,
     NULL},
    {TP,
     "{\"sender_id\":1," RP ",\"template_id\":1,\"recipient_name\":null,"
     "\"variables\":null}",
     0, NULL, NULL},
    {TP,
     "{\"sender_id\":1," RP ",\"template_id\":1,\"recipient_name\":\"\","
     "\"variables\":{}}",
     0, NULL, NULL},
    {TP,
     "{\"sender_id\":1," RP ",\"template_id\":1,\"recipient_name\":\"Ann\","
     "\"variables\":{\"1\":\"x\",\"2\":2,\"3\":-1.5e3,\"4\":\"\",\"5\":0}}",
     0, NULL, NULL},
    {TP, "{" RP ",\"template_id\":1}", 422, VE, "sender_id"},
    {TP, "{\"sender_id\":\"1\"," RP ",\"template_id\":1}", 422, VE,
     "sender_id"},
    {TP, "{\"sender_id\":1,\"template_id\":1}", 422, VE, "recipient_phone"},
    {TP, "{\"sender_id\":1,\"recipient_phone\":\"+0\",\"template_id\":1}", 422,
     "INVALID_PHONE", NULL},
    {TP, "{\"sender_id\":1," RP "}", 422, VE, "template_id"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":null}", 422, VE,
     "template_id"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":\"1\"}", 422, VE,
     "template_id"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":0}", 422, VE, "template_id"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":-7}", 422, VE, "template_id"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":1.5}", 422, VE,
     "template_id"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":1.0}", 422, VE,
     "template_id"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":1e1}", 422, VE,
     "template_id"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":99999999999999999999}", 422,
     VE, "template_id"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":1,\"recipient_name\":5}", 422,
     VE, "recipient_name"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":1,\"recipient_name\":true}",
     422, VE, "recipient_name"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":1,\"recipient_name\":{}}",
     422, VE, "recipient_name"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":1,\"recipient_name\":[]}",
     422, VE, "recipient_name"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":1,\"variables\":[]}", 422, VE,
     "variables"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":1,\"variables\":[\"a\"]}",
     422, VE, "variables"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":1,\"variables\":\"a\"}", 422,
     VE, "variables"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":1,\"variables\":5}", 422, VE,
     "variables"},
    {TP, "{\"sender_id\":1," RP ",\"template_id\":1,\"variables\":false}", 422,
     VE, "variables"},
    {TP,
     "{\"sender_id\":1," RP ",\"template_id\":1,\"variables\":"
     "{\"a\":\"x\",\"b\":true}}",
     422, VE, "variables"},
    {TP,
     "{\"sender_id\":1," RP ",\"template_id\":1,\"variables\":"
     "{\"a\":false}}",
     422, VE, "variables"},
    {TP,
     "{\"sender_id\":1," RP ",\"template_id\":1,\"variables\":"
     "{\"a\":null}}",
     422, VE, "variables"},
    {TP,
     "{\"sender_id\":1," RP ",\"template_id\":1,\"variables\":"
     "{\"a\":{}}}",
     422, VE, "variables"},
    {TP,
     "{\"sender_id\":1," RP ",\"template_id\":1,\"variables\":"
     "{\"a\":[]}}",
     422, VE, "variables"},
    /* order: template_id before recipient_name before variables */
    {TP, "{\"sender_id\":1," RP ",\"recipient_name\":5,\"variables\":5}", 422,
     VE, "template_id"},
    {TP,
     "{\"sender_id\":1," RP ",\"template_id\":1,\"recipient_name\":5,"
     "\"variables\":5}",
     422, VE, "recipient_name"},
    /* bad JSON is 400 for either kind */
    {TP, "{\"sender_id\":1," RP ",\"template_id\":1,}", 400, "INVALID_JSON",
     NULL},
};

START_TEST(test_fields)
{
    const struct field_case *c = &fields[_i];
    if (c->status == 0)
        assert_ok(c->kind, c->body);
    else
        assert_fail(c->kind, c->body, c->status, c->code, c->field);
}
END_TEST

START_TEST(test_sender_id_value)
{
    struct precheck_result r;
    check(FF, "{\"sender_id\":9223372036854775807," RP ",\"message\":\"m\"}",
          MAXC, &r);
    ck_assert_int_eq(r.sender_id, INT64_MAX);
    check(FF, "{\"sender_id\":1," RP ",\"message\":\"m\"}", MAXC, &r);
    ck_assert_int_eq(r.sender_id, 1);
    ck_assert_int_eq(r.length, 0);
    ck_assert_int_eq(r.max_length, 0);
}
END_TEST

START_TEST(test_recipient_name_length)
{
    static const char *const units[] = {"n", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
                                        "\\uD83D\\uDE00"};
    for (int i = 0; i < NELEM(units); i++) {
        char *n255 = repeat(units[i], 255), *n256 = repeat(units[i], 256);
        char *a = fmt("\"recipient_name\":\"%s\"", n255);
        char *b = fmt("\"recipient_name\":\"%s\"", n256);
        char *ta = tp(a), *tb = tp(b);
        assert_ok(PRECHECK_TEMPLATE, ta);
        assert_fail(PRECHECK_TEMPLATE, tb, 422, VE, "recipient_name");
        free(n255);
        free(n256);
        free(a);
        free(b);
        free(ta);
        free(tb);
    }
}
END_TEST

/* sender_id and recipient are learned whatever fails after the parse */
START_TEST(test_learned_on_failure)
{
    struct precheck_result r;
    char *t;

    check(FF, "{\"sender_id\":12," RP ",\"message\":\"  \"}", MAXC, &r);
    ck_assert_str_eq(r.field, "message");
    ck_assert_int_eq(r.sender_id, 12);
    ck_assert_str_eq(r.recipient, PHONE);

    check(FF, "{\"sender_id\":12," RP "}", MAXC, &r);
    ck_assert_int_eq(r.sender_id, 12);
    ck_assert_str_eq(r.recipient, PHONE);

    check(FF, "{\"sender_id\":12,\"recipient_phone\":\"+0\",\"message\":\"m\"}",
          MAXC, &r);
    ck_assert_str_eq(r.code, "INVALID_PHONE");
    ck_assert_int_eq(r.sender_id, 12);
    ck_assert_str_eq(r.recipient, "");

    check(FF, "{\"sender_id\":\"12\"," RP ",\"message\":\"m\"}", MAXC, &r);
    ck_assert_str_eq(r.field, "sender_id");
    ck_assert_int_eq(r.sender_id, -1);
    ck_assert_str_eq(r.recipient, PHONE);

    check(FF, "{\"sender_id\":12," RP ",\"message\":\"m\",}", MAXC, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_int_eq(r.sender_id, -1);
    ck_assert_str_eq(r.recipient, "");

    t = tp("\"variables\":{\"a\":null}");
    check(TP, t, MAXC, &r);
    ck_assert_str_eq(r.field, "variables");
    ck_assert_int_eq(r.sender_id, 12);
    ck_assert_str_eq(r.recipient, PHONE);
    free(t);

    check(TP, "{\"sender_id\":12," RP ",\"template_id\":0}", MAXC, &r);
    ck_assert_str_eq(r.field, "template_id");
    ck_assert_int_eq(r.sender_id, 12);
    ck_assert_str_eq(r.recipient, PHONE);

    /* and on success */
    t = tp("");
    ck_assert_int_eq(check(TP, t, MAXC, &r), 0);
    ck_assert_int_eq(r.sender_id, 12);
    ck_assert_str_eq(r.recipient, PHONE);
    free(t);
}
END_TEST

/* ---- fuzz: bounded, fixed seed; only "returns, sane verdict" ---- */

static uint32_t
rnd(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

static void
assert_sane(enum precheck_kind k, const char *b, size_t n)
{
    struct precheck_result r;
    memset(&r, 0xA5, sizeof(r));
    int rc = precheck_body(k, b, n, MAXC, &r);
    ck_assert(r.status == 0 || r.status == 400 || r.status == 422);
    ck_assert_int_eq(rc, r.status == 0 ? 0 : -1);
    ck_assert(r.status == 0 ? r.code == NULL : r.code != NULL);
    ck_assert(r.sender_id == -1 || r.sender_id >= 1);
    ck_assert(r.recipient[0] == '\0' || precheck_is_e164(r.recipient));
}

START_TEST(test_fuzz)
{
    static const char seed_body[] =
        "{\"sender_id\":12,\"recipient_phone\":\"+14155551234\","
        "\"template_id\":7,\"recipient_name\":\"Ann \\u00e9\xF0\x9F\x98\x80\","
        "\"message\":\"hi \\uD83D\\uDE00 \\\"x\\\"\",\"variables\":"
        "{\"1\":\"a\",\"2\":-1.5e3,\"3\":0},\"x\":[true,false,null,{}]}";
    static const char alphabet[] = "{}[]\":,\\ u0123456789abcdefABCDEF-+.eE"
                                   "tfnrl\t\n\x80\xC3\xED\xF0\xFF";
    size_t len = sizeof(seed_body) - 1;
    char buf[512];

    assert_ok(PRECHECK_TEMPLATE, seed_body);
    assert_ok(PRECHECK_FREEFORM, seed_body);
    for (size_t n = 0; n < len; n++) {
        struct precheck_result r;
        memcpy(buf, seed_body, n); /* exact length: no terminator help */
        ck_assert_int_eq(precheck_body(PRECHECK_TEMPLATE, buf, n, MAXC, &r),
                         -1);
        ck_assert_int_eq(r.status, 400);
    }

    uint32_t st = 20240521u;
    for (int iter = 0; iter < 10000; iter++) {
        size_t n = len;
        memcpy(buf, seed_body, len);
        int edits = 1 + (int)(rnd(&st) % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = n ? rnd(&st) % n : 0;
            char c = rnd(&st) % 2 ? alphabet[rnd(&st) % (sizeof(alphabet) - 1)]
                                  : (char)(rnd(&st) & 0xFF);
            switch (rnd(&st) % 4) {
            case 0: /* replace */
                if (n)
                    buf[at] = c;
                break;
            case 1: /* insert */
                if (n + 1 < sizeof(buf)) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = c;
                    n++;
                }
                break;
            case 2: /* delete */
                if (n) {
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                }
                break;
            default: /* truncate */
                n = at;
                break;
            }
        }
        assert_sane(iter % 2 ? PRECHECK_FREEFORM : PRECHECK_TEMPLATE, buf, n);
    }
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("precheck");
    TCase *tc;

    tc = tcase_create("phone");
    tcase_add_loop_test(tc, test_phone_table, 0, NELEM(phones));
    tcase_add_test(tc, test_phone_edges);
    tcase_add_test(tc, test_phone_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("unicode");
    tcase_add_loop_test(tc, test_utf8_count, 0, NELEM(utf8));
    tcase_add_test(tc, test_white_space);
    tcase_add_test(tc, test_message_whitespace_only);
    tcase_add_test(tc, test_message_length);
    tcase_add_test(tc, test_lone_surrogates);
    suite_add_tcase(s, tc);

    tc = tcase_create("json");
    tcase_add_loop_test(tc, test_bad_json, 0, NELEM(bad_json));
    tcase_add_test(tc, test_bad_json_bytes);
    tcase_add_test(tc, test_good_json_shapes);
    tcase_add_test(tc, test_duplicate_keys);
    tcase_add_test(tc, test_many_keys);
    tcase_add_test(tc, test_depth);
    suite_add_tcase(s, tc);

    tc = tcase_create("fields");
    tcase_add_loop_test(tc, test_fields, 0, NELEM(fields));
    tcase_add_test(tc, test_sender_id_value);
    tcase_add_test(tc, test_recipient_name_length);
    tcase_add_test(tc, test_learned_on_failure);
    suite_add_tcase(s, tc);

    tc = tcase_create("fuzz");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fuzz);
    suite_add_tcase(s, tc);
    return s;
}
