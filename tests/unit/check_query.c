/* check_query.c - unit tests for query.c: every refusal class, the order of
 * refusals, the canonical query, bounds and long inputs, plus a bounded
 * random loop with the invariants the fuzz harness checks. No sockets. */
#include "unit.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define PQ "%2B14155550123"

static int
parse(enum query_spec spec, const char *q, struct query_result *r)
{
    return query_parse(spec, q, q ? strlen(q) : 0, r);
}

/* ---- table: one query, one verdict ---- */

struct qcase {
    enum query_spec spec;
    const char *q;
    int status;       /* 0, 400, 422 */
    const char *code; /* NULL when status is 0 */
    const char *field;
    const char *canonical; /* when status is 0 */
};

static const struct qcase cases[] = {
    /* accepted, and what goes upstream */
    {QUERY_SESSION, "sender_id=12&recipient_phone=" PQ, 0, NULL, "",
     "sender_id=12&recipient_phone=" PQ},
    {QUERY_SESSION, "recipient_phone=%2b14155550123&sender_id=12", 0, NULL, "",
     "sender_id=12&recipient_phone=" PQ},
    {QUERY_SESSION, "%73ender%5Fid=12&recipient_phone=%2B%31%34155550123", 0,
     NULL, "", "sender_id=12&recipient_phone=" PQ},
    {QUERY_SESSION, "sender_id=9223372036854775807&recipient_phone=%2B12", 0,
     NULL, "", "sender_id=9223372036854775807&recipient_phone=%2B12"},
    {QUERY_SESSION, "sender_id=1&recipient_phone=%2B123456789012345", 0, NULL,
     "", "sender_id=1&recipient_phone=%2B123456789012345"},
    {QUERY_SENDERS, "", 0, NULL, "", ""},
    {QUERY_SENDERS, "status=online", 0, NULL, "", "status=online"},
    {QUERY_SENDERS, "status=%61ll", 0, NULL, "", "status=all"},
    {QUERY_TEMPLATES, "status=approved", 0, NULL, "", "status=approved"},
    {QUERY_TEMPLATES, "status=all", 0, NULL, "", "status=all"},
    {QUERY_NONE, "", 0, NULL, "", ""},

    /* 400: raw bytes */
    {QUERY_SESSION, "sender_id=12&recipient_phone=" PQ " ", 400, "BAD_REQUEST",
     "", NULL},
    {QUERY_SESSION, "sender_id=12\r&recipient_phone=" PQ, 400, "BAD_REQUEST",
     "", NULL},
    {QUERY_SESSION, "sender_id=12\n&recipient_phone=" PQ, 400, "BAD_REQUEST",
     "", NULL},
    {QUERY_SESSION, "sender_id=12\t&recipient_phone=" PQ, 400, "BAD_REQUEST",
     "", NULL},
    {QUERY_SESSION, "sender_id=12\x7f&recipient_phone=" PQ, 400, "BAD_REQUEST",
     "", NULL},
    {QUERY_SESSION, "sender_id=12&x=\xc3\xa9&recipient_phone=" PQ, 400,
     "BAD_REQUEST", "", NULL},
    {QUERY_NONE, "\x80", 400, "BAD_REQUEST", "", NULL},
    {QUERY_NONE, "\x01=1", 400, "BAD_REQUEST", "", NULL},
    /* 400: structure */
    {QUERY_SESSION, "sender_id=12&&recipient_phone=" PQ, 400, "BAD_REQUEST", "",
     NULL},
    {QUERY_SESSION, "&sender_id=12&recipient_phone=" PQ, 400, "BAD_REQUEST", "",
     NULL},
    {QUERY_SESSION, "sender_id=12&recipient_phone=" PQ "&", 400, "BAD_REQUEST",
     "", NULL},
    {QUERY_SESSION, "=12&sender_id=12&recipient_phone=" PQ, 400, "BAD_REQUEST",
     "", NULL},
    {QUERY_SESSION, "sender_id=12&recipient_phone", 400, "BAD_REQUEST", "",
     NULL},
    {QUERY_SENDERS, "status", 400, "BAD_REQUEST", "", NULL},
    {QUERY_SENDERS, "&", 400, "BAD_REQUEST", "", NULL},
    {QUERY_SENDERS, "=", 400, "BAD_REQUEST", "", NULL},
    /* 400: escapes */
    {QUERY_SESSION, "sender_id=1%2&recipient_phone=" PQ, 400, "BAD_REQUEST", "",
     NULL},
    {QUERY_SESSION, "sender_id=12&recipient_phone=%2B1%", 400, "BAD_REQUEST",
     "", NULL},
    {QUERY_SESSION, "sender_id=12&recipient_phone=%2B1%4", 400, "BAD_REQUEST",
     "", NULL},
    {QUERY_SESSION, "sender_id=12%zz&recipient_phone=" PQ, 400, "BAD_REQUEST",
     "", NULL},
    {QUERY_SESSION, "sender_id=12%g0&recipient_phone=" PQ, 400, "BAD_REQUEST",
     "", NULL},
    {QUERY_SESSION, "sender_id=12%00&recipient_phone=" PQ, 400, "BAD_REQUEST",
     "", NULL},
    {QUERY_SESSION, "sender_id%00=12&recipient_phone=" PQ, 400, "BAD_REQUEST",
     "", NULL},
    {QUERY_SESSION, "%=1", 400, "BAD_REQUEST", "", NULL},
    /* 400: a key that decodes to what is not visible ASCII */
    {QUERY_SESSION, "sender_id%20=12&recipient_phone=" PQ, 400, "BAD_REQUEST",
     "", NULL},
    {QUERY_SESSION, "sender_id+=12&recipient_phone=" PQ, 400, "BAD_REQUEST", "",
     NULL},
    {QUERY_SESSION, "sender_id%0D=12&recipient_phone=" PQ, 400, "BAD_REQUEST",
     "", NULL},
    {QUERY_SESSION, "sender%C3%A9=12&recipient_phone=" PQ, 400, "BAD_REQUEST",
     "", NULL},
    /* syntax outranks meaning, wherever the fault is */
    {QUERY_SESSION, "foo=1&sender_id=12&recipient_phone=" PQ "&%", 400,
     "BAD_REQUEST", "", NULL},

    /* 422: unknown keys (case-sensitive) */
    {QUERY_SESSION, "sender_id=12&recipient_phone=" PQ "&foo=1", 422,
     "VALIDATION_ERROR", "foo", NULL},
    {QUERY_SESSION, "Sender_id=12&recipient_phone=" PQ, 422, "VALIDATION_ERROR",
     "Sender_id", NULL},
    {QUERY_SESSION, "sender_id=12&recipient_phone=" PQ "&status=all", 422,
     "VALIDATION_ERROR", "status", NULL},
    {QUERY_SENDERS, "sender_id=12", 422, "VALIDATION_ERROR", "sender_id", NULL},
    {QUERY_NONE, "sender_id=14", 422, "VALIDATION_ERROR", "sender_id", NULL},
    {QUERY_NONE, "a%3Db=1", 422, "VALIDATION_ERROR", "a=b", NULL},
    {QUERY_NONE, "%22%5C=1", 422, "VALIDATION_ERROR", "\"\\", NULL},
    /* 422: duplicates, literal and encoded */
    {QUERY_SESSION, "sender%5Fid=14&sender_id=12&recipient_phone=" PQ, 422,
     "VALIDATION_ERROR", "sender_id", NULL},
    {QUERY_SESSION, "sender_id=12&recipient_phone=" PQ "&sender%5fid=14", 422,
     "VALIDATION_ERROR", "sender_id", NULL},
    {QUERY_SESSION, "sender_id=12&sender_id=12&recipient_phone=" PQ, 422,
     "VALIDATION_ERROR", "sender_id", NULL},
    {QUERY_SESSION, "sender_id=12&recipient_phone=" PQ "&recipient_phone=" PQ,
     422, "VALIDATION_ERROR", "recipient_phone", NULL},
    {QUERY_SENDERS, "status=online&status=all", 422, "VALIDATION_ERROR",
     "status", NULL},
    {QUERY_TEMPLATES, "status=all&st%61tus=all", 422, "VALIDATION_ERROR",
     "status", NULL},
    /* the first fault from the left wins */
    {QUERY_SESSION, "foo=1&sender_id=x", 422, "VALIDATION_ERROR", "foo", NULL},
    {QUERY_SESSION, "sender_id=x&foo=1", 422, "VALIDATION_ERROR", "sender_id",
     NULL},
    /* 422: sender_id values */
    {QUERY_SESSION, "sender_id=0&recipient_phone=" PQ, 422, "VALIDATION_ERROR",
     "sender_id", NULL},
    {QUERY_SESSION, "sender_id=012&recipient_phone=" PQ, 422,
     "VALIDATION_ERROR", "sender_id", NULL},
    {QUERY_SESSION, "sender_id=%2B12&recipient_phone=" PQ, 422,
     "VALIDATION_ERROR", "sender_id", NULL},
    {QUERY_SESSION, "sender_id=-12&recipient_phone=" PQ, 422,
     "VALIDATION_ERROR", "sender_id", NULL},
    {QUERY_SESSION, "sender_id=+12&recipient_phone=" PQ, 422,
     "VALIDATION_ERROR", "sender_id", NULL},
    {QUERY_SESSION, "sender_id=12+&recipient_phone=" PQ, 422,
     "VALIDATION_ERROR", "sender_id", NULL},
    {QUERY_SESSION, "sender_id=1.0&recipient_phone=" PQ, 422,
     "VALIDATION_ERROR", "sender_id", NULL},
    {QUERY_SESSION, "sender_id=0x12&recipient_phone=" PQ, 422,
     "VALIDATION_ERROR", "sender_id", NULL},
    {QUERY_SESSION, "sender_id=&recipient_phone=" PQ, 422, "VALIDATION_ERROR",
     "sender_id", NULL},
    {QUERY_SESSION, "sender_id=9223372036854775808&recipient_phone=" PQ, 422,
     "VALIDATION_ERROR", "sender_id", NULL},
    {QUERY_SESSION, "sender_id=99999999999999999999&recipient_phone=" PQ, 422,
     "VALIDATION_ERROR", "sender_id", NULL},
    {QUERY_SESSION, "sender_id=12%0A&recipient_phone=" PQ, 422,
     "VALIDATION_ERROR", "sender_id", NULL},
    /* 422: phones, as a send body's are judged */
    {QUERY_SESSION, "sender_id=12&recipient_phone=+14155550123", 422,
     "INVALID_PHONE", "", NULL},
    {QUERY_SESSION, "sender_id=12&recipient_phone=14155550123", 422,
     "INVALID_PHONE", "", NULL},
    {QUERY_SESSION, "sender_id=12&recipient_phone=", 422, "INVALID_PHONE", "",
     NULL},
    {QUERY_SESSION, "sender_id=12&recipient_phone=%2B0123", 422,
     "INVALID_PHONE", "", NULL},
    {QUERY_SESSION, "sender_id=12&recipient_phone=%2B1", 422, "INVALID_PHONE",
     "", NULL},
    {QUERY_SESSION, "sender_id=12&recipient_phone=%2B1234567890123456", 422,
     "INVALID_PHONE", "", NULL},
    {QUERY_SESSION, "sender_id=12&recipient_phone=" PQ "%0D%0A", 422,
     "INVALID_PHONE", "", NULL},
    {QUERY_SESSION, "sender_id=12&recipient_phone=" PQ "%20", 422,
     "INVALID_PHONE", "", NULL},
    /* 422: status values */
    {QUERY_SENDERS, "status=ALL", 422, "VALIDATION_ERROR", "status", NULL},
    {QUERY_SENDERS, "status=approved", 422, "VALIDATION_ERROR", "status", NULL},
    {QUERY_SENDERS, "status=", 422, "VALIDATION_ERROR", "status", NULL},
    {QUERY_SENDERS, "status=all%20", 422, "VALIDATION_ERROR", "status", NULL},
    {QUERY_TEMPLATES, "status=online", 422, "VALIDATION_ERROR", "status", NULL},
    /* 422: required keys missing, in the spec's order */
    {QUERY_SESSION, "", 422, "VALIDATION_ERROR", "sender_id", NULL},
    {QUERY_SESSION, "recipient_phone=" PQ, 422, "VALIDATION_ERROR", "sender_id",
     NULL},
    {QUERY_SESSION, "sender_id=12", 422, "VALIDATION_ERROR", "recipient_phone",
     NULL},
};

START_TEST(test_cases)
{
    const struct qcase *c = &cases[_i];
    struct query_result r;
    int rc = parse(c->spec, c->q, &r);
    ck_assert_msg(r.status == c->status, "[%d] %s: status %d, want %d", _i,
                  c->q, r.status, c->status);
    ck_assert_int_eq(rc, c->status == 0 ? 0 : -1);
    ck_assert_str_eq(r.field, c->field);
    if (c->status == 0) {
        char out[QUERY_CANONICAL_MAX + 1];
        ck_assert_ptr_null(r.code);
        size_t n = query_canonical(c->spec, &r.v, out, sizeof(out));
        ck_assert_str_eq(out, c->canonical);
        ck_assert_uint_eq(n, strlen(c->canonical));
        return;
    }
    ck_assert_str_eq(r.code, c->code);
    ck_assert_ptr_nonnull(r.sentence);
    ck_assert_int_gt((int)strlen(r.sentence), 10);
    /* nothing of a refused query is usable */
    ck_assert_int_eq(r.v.sender_id, -1);
    ck_assert_str_eq(r.v.recipient, "");
    ck_assert_ptr_null(r.v.status);
}
END_TEST

/* ---- values and canonical output ---- */

START_TEST(test_values)
{
    struct query_result r;
    ck_assert_int_eq(
        parse(QUERY_SESSION, "recipient_phone=%2B14155550123&sender_id=14", &r),
        0);
    ck_assert_int_eq(r.v.sender_id, 14);
    ck_assert_str_eq(r.v.recipient, "+14155550123");
    ck_assert_ptr_null(r.v.status);
    ck_assert_int_eq(parse(QUERY_SENDERS, "status=all", &r), 0);
    ck_assert_str_eq(r.v.status, "all");
    ck_assert_int_eq(r.v.sender_id, -1);
    ck_assert_int_eq(parse(QUERY_SENDERS, NULL, &r), 0);
    ck_assert_ptr_null(r.v.status);
    ck_assert_int_eq(query_parse(QUERY_SENDERS, NULL, 5, &r), 0);
    /* the length is the bound, not a NUL */
    ck_assert_int_eq(query_parse(QUERY_SENDERS, "status=all&junk", 10, &r), 0);
    ck_assert_str_eq(r.v.status, "all");
    /* a raw NUL inside the length is a byte like any other: refused */
    ck_assert_int_eq(query_parse(QUERY_SENDERS, "status=a\0l", 10, &r), -1);
    ck_assert_int_eq(r.status, 400);
}
END_TEST

START_TEST(test_canonical_truncation)
{
    struct query_values v = {9223372036854775807LL, "+123456789012345", NULL};
    char out[QUERY_CANONICAL_MAX + 1], small[8];
    size_t n = query_canonical(QUERY_SESSION, &v, out, sizeof(out));
    ck_assert_uint_eq(n, QUERY_CANONICAL_MAX); /* the bound is exact */
    ck_assert_uint_eq(strlen(out), n);
    ck_assert_uint_eq(query_canonical(QUERY_SESSION, &v, small, sizeof(small)),
                      n);
    ck_assert_str_eq(small, "sender_");
    ck_assert_uint_eq(query_canonical(QUERY_SESSION, &v, NULL, 0), n);
    /* absent values are left out; other specs' values are ignored */
    struct query_values none = {-1, "", NULL};
    ck_assert_uint_eq(query_canonical(QUERY_SESSION, &none, out, sizeof(out)),
                      0);
    ck_assert_str_eq(out, "");
    ck_assert_uint_eq(query_canonical(QUERY_NONE, &v, out, sizeof(out)), 0);
    struct query_values st = {12, "", "all"};
    query_canonical(QUERY_SENDERS, &st, out, sizeof(out));
    ck_assert_str_eq(out, "status=all");
    query_canonical(QUERY_SESSION, &st, out, sizeof(out));
    ck_assert_str_eq(out, "sender_id=12");
}
END_TEST

START_TEST(test_bad_spec_is_none)
{
    struct query_result r;
    ck_assert_int_eq(parse((enum query_spec)99, "status=all", &r), -1);
    ck_assert_str_eq(r.field, "status");
    ck_assert_int_eq(parse((enum query_spec)99, "", &r), 0);
}
END_TEST

/* ---- long inputs ---- */

static char *
repeat(const char *unit, size_t n, const char *tail)
{
    size_t u = strlen(unit), t = strlen(tail);
    char *s = malloc(u * n + t + 1);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    memcpy(s + u * n, tail, t + 1);
    return s;
}

START_TEST(test_long_inputs)
{
    struct query_result r;
    char *s;
    /* a key far longer than any known one: unknown, its field cut */
    s = repeat("k", 100000, "=1");
    ck_assert_int_eq(parse(QUERY_SESSION, s, &r), -1);
    ck_assert_int_eq(r.status, 422);
    ck_assert_uint_eq(strlen(r.field), QUERY_FIELD_MAX);
    ck_assert(strspn(r.field, "k") == QUERY_FIELD_MAX);
    free(s);
    /* a huge value: a bad value, not an overflow */
    s = repeat("1", 100000, "");
    char *q = malloc(strlen(s) + 64);
    sprintf(q, "recipient_phone=%%2B14155550123&sender_id=%s", s);
    ck_assert_int_eq(parse(QUERY_SESSION, q, &r), -1);
    ck_assert_str_eq(r.field, "sender_id");
    sprintf(q, "sender_id=1&recipient_phone=%%2B%s", s);
    ck_assert_int_eq(parse(QUERY_SESSION, q, &r), -1);
    ck_assert_str_eq(r.code, "INVALID_PHONE");
    free(q);
    free(s);
    /* many encoded bytes in a value */
    s = repeat("%41", 50000, "");
    q = malloc(strlen(s) + 16);
    sprintf(q, "status=%s", s);
    ck_assert_int_eq(parse(QUERY_SENDERS, q, &r), -1);
    ck_assert_str_eq(r.field, "status");
    free(q);
    free(s);
    /* many pairs: refused at the second, a malformed tail still wins */
    s = repeat("status=all&", 100000, "status=all");
    ck_assert_int_eq(parse(QUERY_SENDERS, s, &r), -1);
    ck_assert_int_eq(r.status, 422);
    free(s);
    s = repeat("status=all&", 100000, "%");
    ck_assert_int_eq(parse(QUERY_SENDERS, s, &r), -1);
    ck_assert_int_eq(r.status, 400);
    free(s);
    s = repeat("&", 100000, "");
    ck_assert_int_eq(parse(QUERY_SENDERS, s, &r), -1);
    ck_assert_int_eq(r.status, 400);
    free(s);
}
END_TEST

/* ---- invariants over random input (the fuzz harness's, bounded) ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static unsigned
next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 32);
}

static void
check_invariants(enum query_spec spec, const char *q, size_t len)
{
    struct query_result r, again;
    char out[QUERY_CANONICAL_MAX + 1], out2[QUERY_CANONICAL_MAX + 1];
    int rc = query_parse(spec, q, len, &r);
    ck_assert(rc == 0 || rc == -1);
    ck_assert(strlen(r.field) <= QUERY_FIELD_MAX);
    for (const char *p = r.field; *p; p++)
        ck_assert(*p >= 0x21 && *p <= 0x7e);
    if (rc != 0) {
        ck_assert(r.status == 400 || r.status == 422);
        ck_assert_int_eq(r.v.sender_id, -1);
        return;
    }
    size_t n = query_canonical(spec, &r.v, out, sizeof(out));
    ck_assert_uint_le(n, QUERY_CANONICAL_MAX);
    for (size_t i = 0; i < n; i++)
        ck_assert(out[i] >= 0x21 && out[i] <= 0x7e);
    ck_assert_int_eq(query_parse(spec, out, n, &again), 0);
    ck_assert_int_eq(again.v.sender_id, r.v.sender_id);
    ck_assert_str_eq(again.v.recipient, r.v.recipient);
    ck_assert(again.v.status == r.v.status);
    query_canonical(spec, &again.v, out2, sizeof(out2));
    ck_assert_str_eq(out, out2);
}

START_TEST(test_random_invariants)
{
    static const char *const parts[] = {
        "sender_id", "recipient_phone",
        "status",    "=",
        "&",         "%",
        "%2B",       "%5F",
        "%73",       "%00",
        "+",         "12",
        "0",         "all",
        "online",    "approved",
        "1415555",   "%2b1",
        " ",         "\r",
        "\xc3",      "9223372036854775807",
        "x",
    };
    char buf[256];
    for (int iter = 0; iter < 40000; iter++) {
        size_t len = 0;
        int nparts = (int)(next_rand() % 10);
        for (int k = 0; k < nparts; k++) {
            const char *p = parts[next_rand() % NELEM(parts)];
            size_t pl = strlen(p);
            if (len + pl >= sizeof(buf))
                break;
            memcpy(buf + len, p, pl);
            len += pl;
        }
        if (next_rand() % 4 == 0 && len > 0) /* a random byte somewhere */
            buf[next_rand() % len] = (char)(next_rand() & 0xff);
        check_invariants((enum query_spec)(iter % QUERY_SPEC_COUNT), buf, len);
    }
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("query");
    TCase *tc = tcase_create("cases");
    tcase_add_loop_test(tc, test_cases, 0, NELEM(cases));
    tcase_add_test(tc, test_values);
    tcase_add_test(tc, test_canonical_truncation);
    tcase_add_test(tc, test_bad_spec_is_none);
    suite_add_tcase(s, tc);
    tc = tcase_create("bounds");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_long_inputs);
    tcase_add_test(tc, test_random_invariants);
    suite_add_tcase(s, tc);
    return s;
}
