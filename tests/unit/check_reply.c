/* check_reply.c - unit tests for reply.c: the gateway's error bodies and
 * reasons. No sockets, no sleeping. */
#include "unit.h"
#include <event2/buffer.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

/* ---- reply ---- */

/* The buffer's content as a heap string; frees the buffer. */
static char *
drain(struct evbuffer *b)
{
    ck_assert_ptr_nonnull(b);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(evbuffer_remove(b, s, n), (int)n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

START_TEST(test_reply_error_body)
{
    char *s =
        drain(reply_error_body("ROUTE_NOT_FOUND", "No such route.", NULL));
    ck_assert_str_eq(s, "{\"success\":false,\"error\":\"No such route.\","
                        "\"error_code\":\"ROUTE_NOT_FOUND\"}");
    free(s);

    /* quotes are escaped, slashes are not */
    s = drain(
        reply_error_body("BAD_REQUEST", "A \"quoted\" a/b \\ word.", NULL));
    ck_assert_str_eq(s, "{\"success\":false,"
                        "\"error\":\"A \\\"quoted\\\" a/b \\\\ word.\","
                        "\"error_code\":\"BAD_REQUEST\"}");
    json_object *o = json_tokener_parse(s);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "error")),
                     "A \"quoted\" a/b \\ word.");
    json_object_put(o);
    free(s);
}
END_TEST

START_TEST(test_reply_error_body_extra)
{
    json_object *extra = json_object_new_object();
    json_object_object_add(extra, "field", json_object_new_string("to"));
    char *s = drain(reply_error_body("VALIDATION_ERROR",
                                     "The to field is required.", extra));
    ck_assert_str_eq(s, "{\"success\":false,"
                        "\"error\":\"The to field is required.\","
                        "\"error_code\":\"VALIDATION_ERROR\","
                        "\"field\":\"to\"}");
    free(s);
    /* extra is borrowed and unchanged */
    ck_assert_int_eq(json_object_object_length(extra), 1);
    ck_assert_str_eq(
        json_object_get_string(json_object_object_get(extra, "field")), "to");
    json_object_put(extra);

    extra = json_object_new_object();
    json_object_object_add(extra, "length", json_object_new_int(5000));
    json_object_object_add(extra, "max_length", json_object_new_int(4096));
    s = drain(reply_error_body("MESSAGE_TOO_LONG", "Too long.", extra));
    ck_assert_str_eq(s, "{\"success\":false,\"error\":\"Too long.\","
                        "\"error_code\":\"MESSAGE_TOO_LONG\","
                        "\"length\":5000,\"max_length\":4096}");
    free(s);
    /* the same extra can be used again */
    s = drain(reply_error_body("MESSAGE_TOO_LONG", "Too long.", extra));
    json_object *o = json_tokener_parse(s);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(json_object_object_length(o), 5);
    ck_assert_int_eq(
        json_object_get_boolean(json_object_object_get(o, "success")), 0);
    ck_assert_int_eq(
        json_object_get_int(json_object_object_get(o, "max_length")), 4096);
    json_object_put(o);
    free(s);
    json_object_put(extra);
}
END_TEST

START_TEST(test_reply_reason)
{
    char out[64];
    reply_reason_header("SESSION_EXPIRED", out, sizeof(out));
    ck_assert_str_eq(out, "gateway; reason=session_expired");
    reply_reason_header("ROUTE_NOT_FOUND", out, sizeof(out));
    ck_assert_str_eq(out, "gateway; reason=route_not_found");
    reply_reason_header("RATE_LIMITED", out, sizeof(out));
    ck_assert_str_eq(out, "gateway; reason=rate_limited");

    reply_reason_token("IDEMPOTENCY_KEY_REUSED", out, sizeof(out));
    ck_assert_str_eq(out, "idempotency_key_reused");

    /* truncation always NUL-terminates */
    memset(out, 'Z', sizeof(out));
    reply_reason_header("SESSION_EXPIRED", out, 10);
    ck_assert_str_eq(out, "gateway; ");
    ck_assert_int_eq(out[10], 'Z');
    memset(out, 'Z', sizeof(out));
    reply_reason_token("SESSION_EXPIRED", out, 5);
    ck_assert_str_eq(out, "sess");
    ck_assert_int_eq(out[5], 'Z');
    memset(out, 'Z', sizeof(out));
    reply_reason_token("SESSION_EXPIRED", out, 0);
    ck_assert_int_eq(out[0], 'Z');
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("reply");
    TCase *tc;

    tc = tcase_create("reply");
    tcase_add_test(tc, test_reply_error_body);
    tcase_add_test(tc, test_reply_error_body_extra);
    tcase_add_test(tc, test_reply_reason);
    suite_add_tcase(s, tc);

    return s;
}
