/* check_redis_answer.c - unit tests for the bytes the Redis backend keeps
 * for an idempotency answer (redis_answer.c): a round trip keeps every
 * byte, and decoding refuses whatever is not exactly one encoding. */
#include "unit.h"
#include <stdlib.h>
#include <string.h>

#include "redis_answer.h"

static const struct idem_header hdrs[] = {
    {"Content-Type", "application/json"},
    {"X-Thing", "a value with spaces\tand a tab"},
    {"Empty", ""},
};
static const char body[] = "{\"ok\": true}\0\xff\x01 binary";

static char *
encode(const struct idem_answer *a, size_t *len)
{
    char *b = redis_answer_encode(a, len);
    ck_assert_ptr_nonnull(b);
    return b;
}

START_TEST(a_round_trip_keeps_every_byte)
{
    struct idem_answer a = {201, hdrs, 3, body, sizeof(body) - 1};
    size_t len;
    char *b = encode(&a, &len);
    struct idem_answer *d = redis_answer_decode(b, len);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->status, 201);
    ck_assert_uint_eq(d->nheaders, 3);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_str_eq(d->headers[i].name, hdrs[i].name);
        ck_assert_str_eq(d->headers[i].value, hdrs[i].value);
    }
    ck_assert_uint_eq(d->body_len, sizeof(body) - 1);
    ck_assert(memcmp(d->body, body, sizeof(body) - 1) == 0);
    ck_assert_int_eq(d->body[d->body_len], '\0');
    free(d);
    free(b);
}
END_TEST

START_TEST(no_headers_and_no_body)
{
    struct idem_answer a = {204, NULL, 0, NULL, 0};
    size_t len;
    char *b = encode(&a, &len);
    ck_assert_uint_eq(len, 16);
    struct idem_answer *d = redis_answer_decode(b, len);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->status, 204);
    ck_assert_uint_eq(d->nheaders, 0);
    ck_assert_uint_eq(d->body_len, 0);
    ck_assert_str_eq(d->body, "");
    free(d);
    free(b);
}
END_TEST

START_TEST(what_could_not_be_replayed_is_not_encoded)
{
    size_t len;
    struct idem_header bad[] = {{"Bad Name", "v"}};
    struct idem_header crlf[] = {{"X", "a\r\nInjected: 1"}};
    struct idem_header empty[] = {{"", "v"}};
    struct idem_answer a = {200, bad, 1, "", 0};
    ck_assert_ptr_null(redis_answer_encode(&a, &len));
    a.headers = crlf;
    ck_assert_ptr_null(redis_answer_encode(&a, &len));
    a.headers = empty;
    ck_assert_ptr_null(redis_answer_encode(&a, &len));
    a.nheaders = 0;
    a.status = 99;
    ck_assert_ptr_null(redis_answer_encode(&a, &len));
    a.status = 600;
    ck_assert_ptr_null(redis_answer_encode(&a, &len));
}
END_TEST

START_TEST(every_truncation_and_trailing_byte_is_refused)
{
    struct idem_answer a = {200, hdrs, 3, body, sizeof(body) - 1};
    size_t len;
    char *b = encode(&a, &len);
    for (size_t n = 0; n < len; n++)
        ck_assert_msg(redis_answer_decode(b, n) == NULL, "length %zu", n);
    char *longer = malloc(len + 1);
    memcpy(longer, b, len);
    longer[len] = 'x';
    ck_assert_ptr_null(redis_answer_decode(longer, len + 1));
    ck_assert_ptr_null(redis_answer_decode(NULL, 0));
    ck_assert_ptr_null(redis_answer_decode("", 0));
    ck_assert_ptr_null(redis_answer_decode("{\"json\": 1}", 11));
    free(longer);
    free(b);
}
END_TEST

/* Every single byte changed to every value: refused, or decoded to an
 * answer that holds together (under the sanitizers: no bad access). */
START_TEST(any_corruption_is_refused_or_consistent)
{
    struct idem_answer a = {200, hdrs, 2, "body", 4};
    size_t len;
    char *b = encode(&a, &len);
    char *c = malloc(len);
    for (size_t i = 0; i < len; i++) {
        for (int v = 0; v < 256; v++) {
            memcpy(c, b, len);
            c[i] = (char)v;
            struct idem_answer *d = redis_answer_decode(c, len);
            if (d == NULL)
                continue;
            ck_assert(d->status >= 100 && d->status <= 599);
            ck_assert_uint_le(d->nheaders, REDIS_ANSWER_MAX_HEADERS);
            for (size_t h = 0; h < d->nheaders; h++)
                ck_assert(strlen(d->headers[h].name) > 0 &&
                          strpbrk(d->headers[h].value, "\r\n") == NULL);
            ck_assert_uint_le(d->body_len, len);
            free(d);
        }
    }
    free(c);
    free(b);
}
END_TEST

START_TEST(lengths_beyond_the_value_are_refused)
{
    /* "WGA1", status 200, 1 header whose name claims 4 GiB */
    static const char v[] = "WGA1\0\0\0\xc8\0\0\0\x01\xff\xff\xff\xff"
                            "X";
    ck_assert_ptr_null(redis_answer_decode(v, sizeof(v) - 1));
    /* too many headers */
    static const char w[] = "WGA1\0\0\0\xc8\0\0\x10\0";
    ck_assert_ptr_null(redis_answer_decode(w, sizeof(w) - 1));
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("redis_answer");
    TCase *tc = tcase_create("codec");
    tcase_set_timeout(tc, 120); /* valgrind */
    tcase_add_test(tc, a_round_trip_keeps_every_byte);
    tcase_add_test(tc, no_headers_and_no_body);
    tcase_add_test(tc, what_could_not_be_replayed_is_not_encoded);
    tcase_add_test(tc, every_truncation_and_trailing_byte_is_refused);
    tcase_add_test(tc, any_corruption_is_refused_or_consistent);
    tcase_add_test(tc, lengths_beyond_the_value_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
