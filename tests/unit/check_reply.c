/* check_reply.c - unit tests for reply.c: the table of the gateway's
 * errors (every row is well formed, the flags sit on the rows SPEC section
 * 2 names, and the bodies built from rows carry what the flags say), the
 * error bodies and the reasons. No sockets, no sleeping. */
#include "unit.h"
#include <ctype.h>
#include <event2/buffer.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "reply.h"

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

static int
upper_snake(const char *s)
{
    if (s == NULL || !isupper((unsigned char)s[0]))
        return 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '_') {
            if (s[i + 1] == '_' || s[i + 1] == '\0')
                return 0;
        } else if (!isupper((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

START_TEST(test_every_row_is_well_formed)
{
    const struct gw_error_row *r = &reply_errors[_i];
    char lower[64];
    ck_assert_msg(r->status >= 400 && r->status <= 599, "row %d: %d", _i,
                  r->status);
    ck_assert_msg(upper_snake(r->code), "row %d: code %s", _i,
                  r->code ? r->code : "(null)");
    ck_assert_uint_lt(strlen(r->code), sizeof(lower));
    size_t n = 0;
    for (; r->code[n]; n++)
        lower[n] = (char)tolower((unsigned char)r->code[n]);
    lower[n] = '\0';
    ck_assert_ptr_nonnull(r->reason);
    ck_assert_msg(strcmp(r->reason, lower) == 0, "row %d: reason %s for %s", _i,
                  r->reason, r->code);
    ck_assert_ptr_nonnull(r->sentence);
    size_t len = strlen(r->sentence);
    ck_assert_msg(len > 10 && r->sentence[len - 1] == '.',
                  "row %d: sentence \"%s\"", _i, r->sentence);
    ck_assert_uint_eq(r->flags & ~(REPLY_CLOSE | REPLY_LENGTHS |
                                   REPLY_NOT_SENT | REPLY_UNKNOWN),
                      0);
    ck_assert_msg((r->flags & (REPLY_NOT_SENT | REPLY_UNKNOWN)) !=
                      (REPLY_NOT_SENT | REPLY_UNKNOWN),
                  "row %d: both outcomes", _i);
    ck_assert_int_eq(reply_error_id(r), _i);
    ck_assert_ptr_eq(reply_row((enum gw_error)_i), r);
}
END_TEST

/* SPEC section 2: BAD_REQUEST (ambiguous framing, and a malformed query)
 * is answered with Connection: close, and nothing else is. */
START_TEST(test_the_close_flag_is_bad_request)
{
    int closing = 0;
    for (int i = 0; i < GW_ERR_COUNT; i++) {
        const struct gw_error_row *r = &reply_errors[i];
        int bad_request = strcmp(r->code, "BAD_REQUEST") == 0;
        ck_assert_msg(!!(r->flags & REPLY_CLOSE) == bad_request,
                      "row %d (%s): close flag %u", i, r->code, r->flags);
        if (bad_request)
            ck_assert_int_eq(r->status, 400);
        closing += bad_request;
    }
    ck_assert_int_ge(closing, 12); /* the head's checks, the query's */
    ck_assert(reply_row(GW_ERR_CL_AND_TE)->flags & REPLY_CLOSE);
    ck_assert(reply_row(GW_ERR_QUERY_NUL)->flags & REPLY_CLOSE);
    ck_assert(!(reply_row(GW_ERR_INVALID_JSON)->flags & REPLY_CLOSE));
}
END_TEST

/* Every code of SPEC section 2's table is there, with its status, and a
 * code always comes with the same status. */
START_TEST(test_the_spec_codes_and_statuses)
{
    static const struct {
        const char *code;
        int status;
    } spec[] = {
        {"INVALID_JSON", 400},           {"BAD_REQUEST", 400},
        {"UNAUTHORIZED", 401},           {"SESSION_EXPIRED", 403},
        {"SENDER_NOT_ALLOWED", 403},     {"ROUTE_NOT_FOUND", 404},
        {"METHOD_NOT_ALLOWED", 405},     {"IDEMPOTENCY_IN_PROGRESS", 409},
        {"PAYLOAD_TOO_LARGE", 413},      {"UNSUPPORTED_MEDIA_TYPE", 415},
        {"VALIDATION_ERROR", 422},       {"INVALID_PHONE", 422},
        {"MESSAGE_TOO_LONG", 422},       {"INVALID_ENCODING", 422},
        {"IDEMPOTENCY_KEY_REUSED", 422}, {"RATE_LIMITED", 429},
        {"SESSION_NOT_FOUND", 404},      {"UPSTREAM_UNAVAILABLE", 502},
        {"SHUTTING_DOWN", 503},          {"STATE_UNAVAILABLE", 503},
        {"UPSTREAM_TIMEOUT", 504},
    };
    for (size_t s = 0; s < sizeof(spec) / sizeof(spec[0]); s++) {
        int found = 0;
        for (int i = 0; i < GW_ERR_COUNT; i++)
            found += strcmp(reply_errors[i].code, spec[s].code) == 0;
        ck_assert_msg(found > 0, "%s has no row", spec[s].code);
    }
    for (int i = 0; i < GW_ERR_COUNT; i++)
        for (int j = 0; j < GW_ERR_COUNT; j++)
            if (strcmp(reply_errors[i].code, reply_errors[j].code) == 0)
                ck_assert_msg(reply_errors[i].status == reply_errors[j].status,
                              "%s: %d and %d", reply_errors[i].code,
                              reply_errors[i].status, reply_errors[j].status);
    for (size_t s = 0; s < sizeof(spec) / sizeof(spec[0]); s++)
        for (int i = 0; i < GW_ERR_COUNT; i++)
            if (strcmp(reply_errors[i].code, spec[s].code) == 0)
                ck_assert_int_eq(reply_errors[i].status, spec[s].status);
    /* the length extras are MESSAGE_TOO_LONG's alone */
    for (int i = 0; i < GW_ERR_COUNT; i++)
        ck_assert(!!(reply_errors[i].flags & REPLY_LENGTHS) ==
                  (i == GW_ERR_MESSAGE_TOO_LONG));
}
END_TEST

/* The outcome flags put "outcome" after the three members, before the
 * caller's; a sentence given replaces the row's. */
START_TEST(test_bodies_follow_the_row)
{
    char *s = drain(reply_error(GW_ERR_ROUTE_NOT_FOUND, NULL, NULL));
    ck_assert_str_eq(
        s, "{\"success\":false,\"error\":\"No such route: the gateway serves "
           "the provider's WhatsApp API paths only.\","
           "\"error_code\":\"ROUTE_NOT_FOUND\"}");
    free(s);
    s = drain(reply_error(GW_ERR_CUT_OFF_NOT_SENT, NULL, NULL));
    json_object *o = json_tokener_parse(s), *v;
    ck_assert_ptr_nonnull(o);
    ck_assert(json_object_object_get_ex(o, "outcome", &v));
    ck_assert_str_eq(json_object_get_string(v), "not_sent");
    ck_assert(json_object_object_get_ex(o, "error_code", &v));
    ck_assert_str_eq(json_object_get_string(v), "SHUTTING_DOWN");
    json_object_put(o);
    free(s);
    struct reply_extra field = {.kind = REPLY_EXTRA_FIELD, .field = "x"};
    s = drain(reply_error(GW_ERR_UPSTREAM_TIMEOUT_UNKNOWN,
                          "No answer within 5 ms.", &field));
    ck_assert_str_eq(s, "{\"success\":false,\"error\":\"No answer within 5 "
                        "ms.\",\"error_code\":\"UPSTREAM_TIMEOUT\","
                        "\"outcome\":\"unknown\",\"field\":\"x\"}");
    free(s);
    /* the session-expired members, in the upstream's shape */
    struct reply_extra ss = {.kind = REPLY_EXTRA_SESSION,
                             .expired_at = INT64_MIN};
    s = drain(reply_error(GW_ERR_SESSION_EXPIRED, NULL, &ss));
    o = json_tokener_parse(s);
    ck_assert(json_object_object_get_ex(o, "session_status", &v));
    ck_assert(!json_object_object_get_ex(v, "expired_at", NULL));
    json_object_put(o);
    free(s);
    ss.expired_at = 1582626600000LL; /* 2020-02-25T10:30:00Z */
    s = drain(reply_error(GW_ERR_SESSION_EXPIRED, NULL, &ss));
    ck_assert_str_eq(
        s, "{\"success\":false,\"error\":\"The 24-hour messaging window is "
           "closed. Customer must reply first, or use a template message.\","
           "\"error_code\":\"SESSION_EXPIRED\",\"session_status\":{"
           "\"is_open\":false,\"can_send_freeform\":false,"
           "\"requires_template\":true,\"message\":\"Session expired. Send a "
           "template or wait for customer to reply.\","
           "\"expired_at\":\"2020-02-25T10:30:00+00:00\"}}");
    free(s);
    /* an id out of range is the internal error's row, never past the end */
    ck_assert_ptr_eq(reply_row(GW_ERR_COUNT), reply_row(GW_ERR_INTERNAL));
}
END_TEST

/* ---- bodies and reasons ---- */

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
    struct reply_extra x = {.kind = REPLY_EXTRA_FIELD, .field = "to"};
    char *s = drain(reply_error_body("VALIDATION_ERROR",
                                     "The to field is required.", &x));
    ck_assert_str_eq(s, "{\"success\":false,"
                        "\"error\":\"The to field is required.\","
                        "\"error_code\":\"VALIDATION_ERROR\","
                        "\"field\":\"to\"}");
    free(s);

    x = (struct reply_extra){
        .kind = REPLY_EXTRA_LENGTHS, .length = 5000, .max_length = 4096};
    s = drain(reply_error_body("MESSAGE_TOO_LONG", "Too long.", &x));
    ck_assert_str_eq(s, "{\"success\":false,\"error\":\"Too long.\","
                        "\"error_code\":\"MESSAGE_TOO_LONG\","
                        "\"length\":5000,\"max_length\":4096}");
    free(s);
    x.length = -9223372036854775807LL - 1;
    x.max_length = 0;
    s = drain(reply_error_body("MESSAGE_TOO_LONG", "Too long.", &x));
    json_object *o = json_tokener_parse(s);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(json_object_object_length(o), 5);
    ck_assert(json_object_get_int64(json_object_object_get(o, "length")) ==
              x.length);
    ck_assert_int_eq(
        json_object_get_int(json_object_object_get(o, "max_length")), 0);
    json_object_put(o);
    free(s);
}
END_TEST

/* The writer's strings are json-c's (JSON_C_TO_STRING_NOSLASHESCAPE),
 * byte for byte, for every byte; and longer than its own buffer. */
START_TEST(test_reply_escapes_as_json_c)
{
    char all[256 + 2 * JSONW_BUF];
    size_t n = 0;
    for (int c = 1; c < 256; c++)
        all[n++] = (char)c;
    for (int i = 0; i < 2 * JSONW_BUF; i++)
        all[n++] = (char)(i % 2 ? '"' : 'a');
    all[n] = '\0';
    json_object *o = json_object_new_object();
    json_object_object_add(o, "success", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(all));
    json_object_object_add(o, "error_code", json_object_new_string("X\n"));
    const char *want = json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *s = drain(reply_error_body("X\n", all, NULL));
    ck_assert_str_eq(s, want);
    free(s);
    json_object_put(o);
}
END_TEST

START_TEST(test_reply_reason)
{
    char out[64];
    reply_xwagate(GW_ERR_SESSION_EXPIRED, out, sizeof(out));
    ck_assert_str_eq(out, "gateway; reason=session_expired");
    reply_xwagate(GW_ERR_ROUTE_NOT_FOUND, out, sizeof(out));
    ck_assert_str_eq(out, "gateway; reason=route_not_found");
    reply_xwagate(GW_ERR_RATE_LIMITED, out, sizeof(out));
    ck_assert_str_eq(out, "gateway; reason=rate_limited");

    ck_assert_str_eq(reply_row(GW_ERR_IDEMPOTENCY_KEY_REUSED)->reason,
                     "idempotency_key_reused");

    /* truncation always NUL-terminates */
    memset(out, 'Z', sizeof(out));
    reply_xwagate(GW_ERR_SESSION_EXPIRED, out, 10);
    ck_assert_str_eq(out, "gateway; ");
    ck_assert_int_eq(out[10], 'Z');
    memset(out, 'Z', sizeof(out));
    reply_xwagate(GW_ERR_SESSION_EXPIRED, out, 0);
    ck_assert_int_eq(out[0], 'Z');
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("reply");
    TCase *tc = tcase_create("table");
    tcase_add_loop_test(tc, test_every_row_is_well_formed, 0, GW_ERR_COUNT);
    tcase_add_test(tc, test_the_close_flag_is_bad_request);
    tcase_add_test(tc, test_the_spec_codes_and_statuses);
    tcase_add_test(tc, test_bodies_follow_the_row);
    suite_add_tcase(s, tc);

    tc = tcase_create("reply");
    tcase_add_test(tc, test_reply_error_body);
    tcase_add_test(tc, test_reply_error_body_extra);
    tcase_add_test(tc, test_reply_escapes_as_json_c);
    tcase_add_test(tc, test_reply_reason);
    suite_add_tcase(s, tc);
    return s;
}
