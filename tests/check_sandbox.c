/* Unit tests of wagate-sandbox's pure core: text helpers, the rate limiter,
 * the request log, the simulated account, and the API and control handlers
 * driven without a network. Time is always passed in, never read. */
#include "sb_api.h"
#include "sb_control.h"
#include "sb_fault.h"
#include "sb_inbox.h"
#include "sb_json.h"
#include "sb_rate.h"
#include "sb_reqlog.h"
#include "sb_sandbox.h"
#include "sb_state.h"
#include "sb_text.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 INT64_C(1771929000) /* 2026-02-24T10:30:00Z */
#define PHONE "+14155550100"
#define KEY "Bearer sandbox-key"

/* ---- text ---- */

START_TEST(phone_table)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"+14155551234", true},
        {"+12", true},
        {"+123456789012345", true},
        {"+1234567890123456", false},
        {"+1", false},
        {"+0123456", false},
        {"14155551234", false},
        {" +14155551234", false},
        {"+1415555 1234", false},
        {"+1-415-555-1234", false},
        {"", false},
        {"+", false},
        {"++14155551234", false},
        {"+1415555123a", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(sb_phone_valid(cases[i].s, strlen(cases[i].s)) ==
                          cases[i].ok,
                      "%s", cases[i].s);
    /* An embedded NUL is not a digit. */
    ck_assert(!sb_phone_valid("+1415\0551234", 11));
}
END_TEST

START_TEST(utf8_counts_code_points)
{
    ck_assert_uint_eq(sb_utf8_count("abc", 3), 3);
    ck_assert_uint_eq(sb_utf8_count("\xC3\xA9", 2), 1);         /* é */
    ck_assert_uint_eq(sb_utf8_count("\xF0\x9F\x98\x80", 4), 1); /* emoji */
    ck_assert_uint_eq(sb_utf8_count("\xE2\x82\xAC!", 4), 2);    /* €! */
    ck_assert(sb_utf8_valid("\xF0\x9F\x98\x80", 4));
    ck_assert(!sb_utf8_valid("\xC0\xAF", 2));         /* overlong */
    ck_assert(!sb_utf8_valid("\xED\xA0\x80", 3));     /* surrogate */
    ck_assert(!sb_utf8_valid("\xF4\x90\x80\x80", 4)); /* > U+10FFFF */
    ck_assert(!sb_utf8_valid("\xE2\x82", 2));         /* truncated */
}
END_TEST

START_TEST(utf8_blank_and_sanitize)
{
    size_t n;
    char *s;

    ck_assert(sb_utf8_blank("", 0));
    ck_assert(sb_utf8_blank(" \t\r\n", 4));
    ck_assert(sb_utf8_blank("\xE3\x80\x80\xC2\xA0", 5)); /* U+3000 U+00A0 */
    ck_assert(!sb_utf8_blank(" x ", 3));
    ck_assert(
        !sb_utf8_blank("\xE2\x80\x8B", 3)); /* U+200B is not White_Space */
    s = sb_utf8_sanitize("a\xFF"
                         "b",
                         3, &n);
    ck_assert_uint_eq(n, 5);
    ck_assert_str_eq(s, "a\xEF\xBF\xBD"
                        "b");
    free(s);
}
END_TEST

START_TEST(base64_vectors)
{
    static const char *const in[] = {"",     "f",     "fo",    "foo",
                                     "foob", "fooba", "foobar"};
    static const char *const out[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *b = sb_base64(in[i], strlen(in[i]));
        ck_assert_str_eq(b, out[i]);
        free(b);
    }
    char *b = sb_base64("\xFF\xFE\x00", 3);
    ck_assert_str_eq(b, "//4A");
    free(b);
}
END_TEST

START_TEST(iso_round_trip)
{
    char buf[SB_ISO_LEN];
    int64_t t;

    ck_assert_int_eq(sb_iso_format(T0, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "2026-02-24T10:30:00+00:00");
    ck_assert_int_eq(sb_iso_format(0, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "1970-01-01T00:00:00+00:00");
    ck_assert_int_eq(sb_iso_format(-1, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "1969-12-31T23:59:59+00:00");
    ck_assert_int_eq(sb_iso_parse("2026-02-24T10:30:00Z", &t), 0);
    ck_assert_int_eq(t, T0);
    ck_assert_int_eq(sb_iso_parse("2026-02-24T12:30:00.123+02:00", &t), 0);
    ck_assert_int_eq(t, T0);
    ck_assert_int_eq(sb_iso_parse("2026-02-24 10:30:00", &t), 0);
    ck_assert_int_eq(t, T0);
    ck_assert_int_eq(sb_iso_parse("2024-02-29T00:00:00Z", &t), 0);
    ck_assert_int_eq(sb_iso_parse("2026-02-29T00:00:00Z", &t), -1);
    ck_assert_int_eq(sb_iso_parse("2026-02-24T10:30Z", &t), -1);
    ck_assert_int_eq(sb_iso_parse("2026-02-24T10:30:00+0200x", &t), -1);
    ck_assert_int_eq(sb_iso_parse("yesterday", &t), -1);
}
END_TEST

START_TEST(query_decoding)
{
    size_t n;
    char *v;

    v = sb_query_get("sender_id=12&recipient_phone=%2B1415", "recipient_phone",
                     &n);
    ck_assert_str_eq(v, "+1415");
    free(v);
    v = sb_query_get("recipient_phone=+1415", "recipient_phone", &n);
    ck_assert_str_eq(v, " 1415"); /* a literal '+' is a space */
    free(v);
    v = sb_query_get("a=1&a=2&b", "b", &n);
    ck_assert_str_eq(v, "");
    free(v);
    v = sb_query_get("a=1&a=2", "a", &n);
    ck_assert_str_eq(v, "1");
    free(v);
    ck_assert_ptr_null(sb_query_get("a=1", "c", &n));
    ck_assert_ptr_null(sb_query_get(NULL, "c", &n));
    v = sb_query_get("x=%zz%4", "x", &n);
    ck_assert_str_eq(v, "%zz%4");
    free(v);
}
END_TEST

START_TEST(int_parsing)
{
    int64_t v;

    ck_assert_int_eq(sb_parse_int64("12", 2, &v), 0);
    ck_assert_int_eq(v, 12);
    ck_assert_int_eq(sb_parse_int64("-9223372036854775808", 20, &v), 0);
    ck_assert_int_eq(v, INT64_MIN);
    ck_assert_int_eq(sb_parse_int64("9223372036854775808", 19, &v), -1);
    ck_assert_int_eq(sb_parse_int64("", 0, &v), -1);
    ck_assert_int_eq(sb_parse_int64("1x", 2, &v), -1);
    ck_assert_int_eq(sb_parse_int64("+1", 2, &v), -1);
}
END_TEST

START_TEST(json_grammar_table)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"{}", true},
        {" {\"a\":[1,-2.5e3,true,false,null,\"x\"]} \n", true},
        {"{\"a\":\"\\ud83d\\ude00\"}", true},
        {"{'a':1}", false},
        {"{\"a\":1,}", false},
        {"{\"a\":01}", false},
        {"{\"a\":1} x", false},
        {"{\"a\":1}{}", false},
        {"{\"a\":\"\\ud83d\"}", false},
        {"{\"a\":\"\\ude00\"}", false},
        {"{\"a\":\"tab\there\"}", false},
        {"{\"a\":NaN}", false},
        {"{\"a\":1.}", false},
        {"{\"a\"}", false},
        {"", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(sb_json_grammar_ok(cases[i].s, strlen(cases[i].s)) ==
                          cases[i].ok,
                      "%s", cases[i].s);
    json_object *o = sb_json_parse_object("[1]", 3);
    ck_assert_ptr_null(o);
    o = sb_json_parse_object("{\"a\":\"\xC3\x28\"}", 10); /* bad UTF-8 */
    ck_assert_ptr_null(o);
    o = sb_json_parse_object("{\"a\":1}  ", 9);
    ck_assert_ptr_nonnull(o);
    json_object_put(o);
}
END_TEST

/* ---- rate limiter ---- */

START_TEST(rate_exactly_n_per_second)
{
    struct sb_rate *r = sb_rate_new(5);

    for (int i = 0; i < 5; i++)
        ck_assert(sb_rate_allow(r, 1000 + i * 100));
    ck_assert(!sb_rate_allow(r, 1400)); /* the 6th within 1000 ms */
    ck_assert(!sb_rate_allow(r, 1999)); /* first slot frees at 2000 */
    ck_assert_int_eq(sb_rate_wait_ms(r, 1999), 1);
    ck_assert(sb_rate_allow(r, 2000));
    ck_assert(!sb_rate_allow(r, 2050));
    ck_assert(sb_rate_allow(r, 2100));
    /* Over any 1000 ms window no more than 5 were allowed. */
    sb_rate_free(r);
}
END_TEST

START_TEST(rate_burst_then_slide)
{
    struct sb_rate *r = sb_rate_new(3);
    int allowed = 0;

    /* One attempt per ms for 3 s: exactly 3 per second. */
    for (int64_t t = 0; t < 3000; t++)
        allowed += sb_rate_allow(r, t);
    ck_assert_int_eq(allowed, 9);
    sb_rate_set_limit(r, 0);
    for (int i = 0; i < 100; i++)
        ck_assert(sb_rate_allow(r, 3000));
    sb_rate_set_limit(r, 1);
    ck_assert(sb_rate_allow(r, 3000));
    ck_assert(!sb_rate_allow(r, 3999));
    ck_assert(sb_rate_allow(r, 4000));
    sb_rate_free(r);
}
END_TEST

/* ---- request log ---- */

START_TEST(reqlog_records)
{
    struct sb_reqlog *log = sb_reqlog_new();
    struct sb_reqlog_entry *e =
        sb_reqlog_add(log, 42, "POST", "/a?b=%2B", "x\0y", 3);
    uint64_t first = e->id;

    sb_reqlog_add_header(e, "Content-Type", "application/json");
    sb_reqlog_add_header(e, "X-A", "1");
    sb_reqlog_add_header(e, "x-a", "2");
    ck_assert_uint_eq(sb_reqlog_count(log), 1);
    ck_assert_uint_eq(e->seq, 1);
    ck_assert_int_eq(e->mono_ms, 42);
    ck_assert_uint_eq(e->body_len, 3);
    ck_assert_int_eq(memcmp(e->body, "x\0y", 3), 0);
    ck_assert_uint_eq(e->nheaders, 3);
    ck_assert_str_eq(e->headers[2].name, "x-a");
    ck_assert_int_eq(e->status, 0);
    ck_assert_ptr_eq(sb_reqlog_set_status(log, first, 200, 45),
                     sb_reqlog_at(log, 0));
    ck_assert_int_eq(sb_reqlog_at(log, 0)->status, 200);
    ck_assert_int_eq(sb_reqlog_at(log, 0)->answered_ms, 45);
    e = sb_reqlog_add(log, 43, "GET", "/b", "", 0);
    ck_assert_uint_eq(e->seq, 2);
    sb_reqlog_clear(log);
    ck_assert_uint_eq(sb_reqlog_count(log), 0);
    e = sb_reqlog_add(log, 44, "GET", "/c", "", 0);
    ck_assert_uint_eq(e->seq, 1);          /* seq restarts after a clear */
    /* a stale id changes nothing */
    ck_assert_ptr_null(sb_reqlog_set_status(log, first, 500, 46));
    ck_assert_int_eq(sb_reqlog_at(log, 0)->status, 0);
    sb_reqlog_free(log);
}
END_TEST

/* ---- state ---- */

static struct sb_state *
new_state(int64_t balance)
{
    struct sb_state *st = sb_state_new(balance);

    ck_assert_int_eq(sb_state_add_sender(st, 12, "online"), 0);
    ck_assert_int_eq(sb_state_add_sender(st, 13, "offline"), 0);
    return st;
}

START_TEST(senders_and_templates)
{
    struct sb_state *st = new_state(10);
    struct sb_template t;
    char buf[32];

    ck_assert_int_eq(sb_state_add_sender(st, 12, "online"), -1);
    ck_assert_int_eq(sb_state_add_sender(st, 0, "online"), -1);
    ck_assert_int_eq(sb_state_add_sender(st, 15, "On"), -1);
    sb_sender_phone(sb_state_sender(st, 12), buf, sizeof(buf));
    ck_assert_str_eq(buf, "+14155550012");
    sb_sender_name(sb_state_sender(st, 13), buf, sizeof(buf));
    ck_assert_str_eq(buf, "Sender 13");
    sb_sender_template_at(12, 0, &t);
    ck_assert_int_eq(t.id, 1201);
    ck_assert_str_eq(t.name, "appointment_reminder");
    ck_assert_str_eq(t.status, "approved");
    ck_assert_uint_eq(t.nvariables, 3);
    sb_sender_template_at(12, 1, &t);
    ck_assert_int_eq(t.id, 1202);
    ck_assert_str_eq(t.status, "pending");
    sb_state_free(st);
}
END_TEST

START_TEST(window_across_clock_moves)
{
    struct sb_state *st = new_state(10);
    struct sb_session s;
    struct sb_sent m;

    sb_state_clock_set(st, T0 * 1000, 0);
    ck_assert_int_eq(sb_state_now(st, 0), T0);
    ck_assert_int_eq(sb_state_now(st, 1999), T0 + 1);
    s = sb_state_session(st, 12, PHONE, T0);
    ck_assert(!s.has_conversation && !s.is_open);
    ck_assert_int_eq(sb_state_send_freeform(st, 12, PHONE, T0, &m),
                     SB_SESSION_EXPIRED);
    ck_assert(!m.session.had_window);

    sb_state_inbound(st, 12, PHONE, T0);
    s = sb_state_session(st, 12, PHONE, T0 + 15 * 60);
    ck_assert(s.has_conversation && s.is_open && s.has_inbound);
    ck_assert_int_eq(s.minutes_remaining, 1425);
    ck_assert_int_eq(s.expires_at, T0 + SB_WINDOW_S);
    /* Another recipient or another sender has no window. */
    ck_assert(!sb_state_session(st, 12, "+14155550101", T0).is_open);
    ck_assert(!sb_state_session(st, 13, PHONE, T0).is_open);

    /* Move the clock: open one second before the end, closed at it. */
    ck_assert_int_eq(sb_state_clock_advance(st, SB_WINDOW_S - 1, 0), 0);
    ck_assert(sb_state_session(st, 12, PHONE, sb_state_now(st, 0)).is_open);
    ck_assert_int_eq(sb_state_clock_advance(st, 1, 0), 0);
    s = sb_state_session(st, 12, PHONE, sb_state_now(st, 0));
    ck_assert(!s.is_open && s.had_window);
    ck_assert_int_eq(
        sb_state_send_freeform(st, 12, PHONE, sb_state_now(st, 0), &m),
        SB_SESSION_EXPIRED);
    ck_assert(m.session.had_window);
    ck_assert_int_eq(m.session.expires_at, T0 + SB_WINDOW_S);

    /* Moving back reopens it; leaving years 1..9999 is refused. */
    ck_assert_int_eq(sb_state_clock_advance(st, -3600, 0), 0);
    ck_assert(sb_state_session(st, 12, PHONE, sb_state_now(st, 0)).is_open);
    ck_assert_int_eq(sb_state_clock_advance(st, INT64_MAX, 0), -1);
    ck_assert_int_eq(sb_state_clock_advance(st, INT64_MIN, 0), -1);
    sb_state_free(st);
}
END_TEST

START_TEST(template_opens_window)
{
    struct sb_state *st = new_state(10);
    struct sb_sent m;
    struct sb_session s;

    ck_assert_int_eq(sb_state_send_template(st, 12, 1201, PHONE, "Ann", T0, &m),
                     SB_OK);
    ck_assert_int_eq(m.conversation_id, 1001);
    ck_assert_str_eq(m.message_sid, "SM00000000000000000000000000001389");
    s = sb_state_session(st, 12, PHONE, T0);
    ck_assert(s.is_open && s.has_conversation && !s.has_inbound);
    ck_assert_int_eq(s.expires_at, T0 + SB_WINDOW_S);
    ck_assert_str_eq(s.customer_name, "Ann");
    ck_assert_int_eq(sb_state_send_freeform(st, 12, PHONE, T0 + 60, &m), SB_OK);
    ck_assert_int_eq(m.conversation_id, 1001);
    ck_assert_int_eq(m.session.minutes_remaining, 1439);
    ck_assert_int_eq(sb_state_balance(st), 8);
    sb_state_free(st);
}
END_TEST

START_TEST(template_order_of_checks)
{
    struct sb_state *st = new_state(1);
    struct sb_sent m;

    ck_assert_int_eq(sb_state_send_template(st, 99, 9901, PHONE, NULL, T0, &m),
                     SB_SENDER_NOT_FOUND);
    ck_assert_int_eq(sb_state_send_template(st, 12, 1301, PHONE, NULL, T0, &m),
                     SB_TEMPLATE_NOT_FOUND);
    ck_assert_int_eq(sb_state_send_template(st, 12, 1203, PHONE, NULL, T0, &m),
                     SB_TEMPLATE_NOT_FOUND);
    ck_assert_int_eq(sb_state_send_template(st, 13, 1302, PHONE, NULL, T0, &m),
                     SB_SENDER_OFFLINE);
    ck_assert_int_eq(sb_state_send_template(st, 12, 1202, PHONE, NULL, T0, &m),
                     SB_TEMPLATE_NOT_APPROVED);
    ck_assert_int_eq(sb_state_send_template(st, 12, 1201, PHONE, NULL, T0, &m),
                     SB_OK);
    ck_assert_int_eq(sb_state_send_template(st, 12, 1201, PHONE, NULL, T0, &m),
                     SB_NO_BALANCE);
    sb_state_free(st);
}
END_TEST

START_TEST(balance_spend_and_402)
{
    struct sb_state *st = new_state(2);
    struct sb_sent m;

    sb_state_inbound(st, 12, PHONE, T0);
    ck_assert_int_eq(sb_state_send_freeform(st, 12, PHONE, T0, &m), SB_OK);
    ck_assert_int_eq(sb_state_send_freeform(st, 12, PHONE, T0, &m), SB_OK);
    ck_assert_int_eq(sb_state_balance(st), 0);
    ck_assert_int_eq(sb_state_send_freeform(st, 12, PHONE, T0, &m),
                     SB_NO_BALANCE);
    ck_assert_int_eq(sb_state_balance(st), 0);
    /* Offline and expired come before the balance. */
    ck_assert_int_eq(sb_state_send_freeform(st, 13, PHONE, T0, &m),
                     SB_SENDER_OFFLINE);
    ck_assert_int_eq(sb_state_send_freeform(st, 12, "+1999", T0, &m),
                     SB_SESSION_EXPIRED);
    sb_state_set_balance(st, 1);
    ck_assert_int_eq(sb_state_send_freeform(st, 12, PHONE, T0, &m), SB_OK);
    ck_assert_int_eq(sb_state_set_sender_status(st, 12, "offline"), 0);
    ck_assert_int_eq(sb_state_send_freeform(st, 12, PHONE, T0, &m),
                     SB_SENDER_OFFLINE);
    sb_state_free(st);
}
END_TEST

START_TEST(many_windows)
{
    struct sb_state *st = new_state(10);
    char phone[32];

    /* Enough pairs to grow the hash table several times. */
    for (int i = 0; i < 5000; i++) {
        snprintf(phone, sizeof(phone), "+1415%07d", i);
        sb_state_inbound(st, 12, phone, T0 + i);
    }
    for (int i = 0; i < 5000; i += 7) {
        snprintf(phone, sizeof(phone), "+1415%07d", i);
        struct sb_session s = sb_state_session(st, 12, phone, T0);
        ck_assert(s.is_open);
        ck_assert_int_eq(s.last_inbound, T0 + i);
        ck_assert_int_eq(s.conversation_id, 1001 + i);
    }
    sb_state_free(st);
}
END_TEST

/* ---- handlers without a network ---- */

struct harness {
    struct sb_sandbox *sb;
    struct sb_response r;
};

static void
harness_init(struct harness *h, unsigned rate)
{
    memset(h, 0, sizeof(*h));
    h->sb = sb_sandbox_new("sandbox-key", 100, rate);
    sb_state_add_sender(h->sb->state, 12, "online");
    sb_state_add_sender(h->sb->state, 13, "offline");
    sb_state_clock_set(h->sb->state, T0 * 1000, 0);
}

static void
harness_done(struct harness *h)
{
    sb_response_clear(&h->r);
    sb_sandbox_free(h->sb);
}

static int
call(struct harness *h, const char *method, const char *path, const char *query,
     const char *auth, const char *body, int64_t mono)
{
    struct sb_request rq = {method, path, query,
                            auth,   body, body ? strlen(body) : 0};

    sb_response_clear(&h->r);
    if (sb_is_control_path(path))
        sb_control_handle(h->sb, &rq, mono, &h->r);
    else
        sb_api_handle(h->sb, &rq, mono, &h->r);
    return h->r.status;
}

static bool
body_has(const struct harness *h, const char *needle)
{
    return h->r.body != NULL && strstr(h->r.body, needle) != NULL;
}

#define FF "/api/user/whatsapp/send-freeform"
#define FF_BODY                                                                \
    "{\"sender_id\":12,\"recipient_phone\":\"" PHONE "\",\"message\":\"hi\"}"

START_TEST(api_order_of_checks)
{
    struct harness h;

    harness_init(&h, 2);
    ck_assert_int_eq(call(&h, "POST", "/nope", NULL, NULL, "", 0), 404);
    ck_assert_int_eq(call(&h, "GET", FF, NULL, NULL, "", 0), 405);
    ck_assert_str_eq(h.r.allow, "POST");
    ck_assert_int_eq(call(&h, "POST", FF, NULL, NULL, "", 0), 401);
    ck_assert_int_eq(call(&h, "POST", FF, NULL, "Bearer wrong", "", 0), 401);
    ck_assert_int_eq(call(&h, "POST", FF, NULL, KEY, "x", 0), 400);
    ck_assert(body_has(&h, "\"INVALID_JSON\""));
    ck_assert_int_eq(call(&h, "POST", FF, NULL, KEY, FF_BODY, 10), 403);
    /* The limiter comes before the body: the 3rd within 1 s is 429. */
    ck_assert_int_eq(call(&h, "POST", FF, NULL, KEY, "x", 20), 429);
    ck_assert_int_eq(h.r.retry_after, 1);
    ck_assert(body_has(&h, "\"RATE_LIMITED\""));
    ck_assert_int_eq(call(&h, "POST", FF, NULL, KEY, "x", 1000), 400);
    harness_done(&h);
}
END_TEST

START_TEST(api_freeform_flow)
{
    struct harness h;

    harness_init(&h, 0);
    ck_assert_int_eq(
        call(&h, "POST", "/_sandbox/inbound", NULL, NULL,
             "{\"sender_id\":12,\"recipient_phone\":\"" PHONE "\"}", 0),
        204);
    ck_assert_int_eq(call(&h, "POST", FF, NULL, KEY, FF_BODY, 0), 200);
    ck_assert(body_has(&h, "\"expires_at\":\"2026-02-25T10:30:00+00:00\""));
    ck_assert(body_has(&h, "\"minutes_remaining\":1440"));
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/clock", NULL, NULL,
                          "{\"advance_s\":86400}", 0),
                     200);
    ck_assert(body_has(&h, "2026-02-25T10:30:00+00:00"));
    ck_assert_int_eq(call(&h, "POST", FF, NULL, KEY, FF_BODY, 0), 403);
    ck_assert(body_has(&h, "\"expired_at\":\"2026-02-25T10:30:00+00:00\""));
    ck_assert_int_eq(call(&h, "GET", "/api/user/whatsapp/session-status",
                          "sender_id=12&recipient_phone=%2B14155550100", KEY,
                          NULL, 0),
                     200);
    ck_assert(body_has(&h, "\"has_conversation\":true"));
    ck_assert(body_has(&h, "\"is_open\":false"));
    ck_assert_int_eq(
        call(&h, "POST", "/_sandbox/config", NULL, NULL, "{\"balance\":0}", 0),
        200);
    ck_assert_int_eq(call(&h, "POST", "/api/user/whatsapp/send", NULL, KEY,
                          "{\"sender_id\":12,\"template_id\":1201,"
                          "\"recipient_phone\":\"" PHONE "\"}",
                          0),
                     402);
    harness_done(&h);
}
END_TEST

START_TEST(api_message_length)
{
    struct harness h;
    /* 4097 emoji written as surrogate-pair escapes: 12 bytes each. */
    size_t n = 4097, cap = n * 12 + 128;
    char *body = malloc(cap);
    size_t o = (size_t)snprintf(body, cap,
                                "{\"sender_id\":12,\"recipient_phone\":\"%s\","
                                "\"message\":\"",
                                PHONE);

    harness_init(&h, 0);
    sb_state_inbound(h.sb->state, 12, PHONE, T0);
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(body + o, cap - o, "\\ud83d\\ude00");
    snprintf(body + o, cap - o, "\"}");
    ck_assert_int_eq(call(&h, "POST", FF, NULL, KEY, body, 0), 422);
    ck_assert(body_has(&h, "may not be greater than 4096 characters."));
    /* One fewer is exactly 4096 code points: accepted. */
    memmove(body + o - 12, body + o, 3);
    ck_assert_int_eq(call(&h, "POST", FF, NULL, KEY, body, 0), 200);
    free(body);
    harness_done(&h);
}
END_TEST

START_TEST(control_routes)
{
    struct harness h;

    harness_init(&h, 5);
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/nope", NULL, NULL, NULL, 0),
                     404);
    ck_assert_int_eq(call(&h, "PUT", "/_sandbox/clock", NULL, NULL, NULL, 0),
                     405);
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/config", NULL, NULL,
                          "{\"latency_ms\":5,\"rate_limit\":-1}", 0),
                     400);
    ck_assert_uint_eq(h.sb->latency_ms, 0); /* nothing applied */
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/config", NULL, NULL,
                          "{\"latency_ms\":5,\"sender_status\":{\"12\":"
                          "\"offline\"}}",
                          0),
                     200);
    ck_assert_uint_eq(h.sb->latency_ms, 5);
    ck_assert(!sb_sender_online(sb_state_sender(h.sb->state, 12)));
    ck_assert_int_eq(
        call(&h, "POST", "/_sandbox/inbound", NULL, NULL,
             "{\"sender_id\":99,\"recipient_phone\":\"" PHONE "\"}", 0),
        404);
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/inbound", NULL, NULL,
                          "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                          "\",\"at\":\"2026-02-23T10:30:00Z\"}",
                          0),
                     204);
    ck_assert(!sb_state_session(h.sb->state, 12, PHONE, T0).is_open);
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/requests", NULL, NULL, NULL, 0),
                     200);
    ck_assert_str_eq(h.r.body, "{\"count\":0,\"requests\":[]}");
    harness_done(&h);
}
END_TEST

/* A strict, UTF-8-validating parse independent of the sandbox's own. */
static bool
strict_utf8_json(const char *s)
{
    json_tokener *tok = json_tokener_new();
    json_object *o;
    bool ok;

    json_tokener_set_flags(tok,
                           JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(tok, s, (int)strlen(s));
    ok = o != NULL && json_tokener_get_error(tok) == json_tokener_success &&
         json_tokener_get_parse_end(tok) == strlen(s);
    json_object_put(o);
    json_tokener_free(tok);
    return ok;
}

/* Issue 8 A12: an unknown key was cut at 40 bytes inside the error, which
 * split a 4-byte emoji that straddled the cut. */
START_TEST(unknown_key_error_is_valid_utf8)
{
    static const char *const routes[] = {"/_sandbox/clock", "/_sandbox/config",
                                         "/_sandbox/inbound"};
    struct harness h;
    char body[128];

    /* 39 ASCII bytes, then U+1F600 across bytes 40..43. */
    snprintf(body, sizeof(body), "{\"%s\xF0\x9F\x98\x80\":1}",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    harness_init(&h, 5);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        ck_assert_int_eq(call(&h, "POST", routes[i], NULL, NULL, body, 0), 400);
        ck_assert_msg(strict_utf8_json(h.r.body), "%s: %s", routes[i],
                      h.r.body);
        ck_assert(body_has(&h, "unknown field"));
    }
    /* Cut on the boundary before the emoji, and says so. */
    ck_assert(body_has(&h, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\\\""));
    /* A short key is shown whole; control bytes come out escaped. */
    ck_assert_int_eq(
        call(&h, "POST", "/_sandbox/clock", NULL, NULL, "{\"a\\nb\":1}", 0),
        400);
    ck_assert(strict_utf8_json(h.r.body));
    ck_assert(body_has(&h, "unknown field \\\"a\\nb\\\""));
    harness_done(&h);
}
END_TEST

START_TEST(utf8_cut_on_boundaries)
{
    const char *s = "ab\xC3\xA9\xF0\x9F\x98\x80";

    ck_assert_uint_eq(sb_utf8_cut(s, 8, 100), 8);
    ck_assert_uint_eq(sb_utf8_cut(s, 8, 8), 8);
    ck_assert_uint_eq(sb_utf8_cut(s, 8, 7), 4);
    ck_assert_uint_eq(sb_utf8_cut(s, 8, 5), 4);
    ck_assert_uint_eq(sb_utf8_cut(s, 8, 4), 4);
    ck_assert_uint_eq(sb_utf8_cut(s, 8, 3), 2);
    ck_assert_uint_eq(sb_utf8_cut(s, 8, 0), 0);
}
END_TEST

/* ---- faults on demand ---- */

START_TEST(faults_validation_table)
{
    static const struct {
        const char *body;
        int status;
        const char *says; /* in the answer */
    } cases[] = {
        {"{\"mode\":\"reset\"}", 200, "\"times_left\":1"},
        {"{\"mode\":\"close\",\"times\":10000}", 200, "\"times\":10000"},
        {"{\"mode\":\"drop_next\",\"path\":\"/api/user/whatsapp/send\"}", 200,
         "\"path\":\"/api/user/whatsapp/send\""},
        {"{\"mode\":\"slow\"}", 200, "\"delay_ms\":10"},
        {"{\"mode\":\"slow\",\"delay_ms\":0}", 200, "\"delay_ms\":0"},
        {"{\"mode\":\"status\",\"status\":500}", 200, "\"body\":\"\""},
        {"{\"mode\":\"status\",\"status\":429,\"headers\":{\"Retry-After\":"
         "\"2\"},\"body\":{\"success\":false}}",
         200, "\"body\":\"{\\\"success\\\":false}\""},
        {"{\"mode\":\"status\",\"status\":204,\"headers\":{\"X-A\":\"a b\"}}",
         200, "\"X-A\":\"a b\""},
        {"{\"mode\":\"hang\",\"match\":\"\\\"message\\\":\\\"x\\\"\"}", 200,
         "\"match\":\"\\\"message\\\":\\\"x\\\"\""},
        /* refusals */
        {"{}", 400, "mode must be one of"},
        {"{\"mode\":\"explode\"}", 400, "mode must be one of"},
        {"{\"mode\":\"RESET\"}", 400, "mode must be one of"},
        {"{\"mode\":1}", 400, "mode must be one of"},
        {"{\"mode\":\"reset\",\"times\":0}", 400, "times must be"},
        {"{\"mode\":\"reset\",\"times\":10001}", 400, "times must be"},
        {"{\"mode\":\"reset\",\"times\":\"2\"}", 400, "times must be"},
        {"{\"mode\":\"reset\",\"count\":2}", 400, "unknown field \\\"count"},
        {"{\"mode\":\"reset\",\"path\":\"api\"}", 400, "path must be"},
        {"{\"mode\":\"reset\",\"path\":\"\"}", 400, "path must be"},
        {"{\"mode\":\"reset\",\"path\":\"/a?b=1\"}", 400, "path must be"},
        {"{\"mode\":\"reset\",\"path\":\"/_sandbox/faults\"}", 400,
         "path must be"},
        {"{\"mode\":\"reset\",\"path\":\"/a\\u0000b\"}", 400, "path must be"},
        {"{\"mode\":\"reset\",\"match\":\"\"}", 400, "match must be"},
        {"{\"mode\":\"reset\",\"match\":5}", 400, "match must be"},
        {"{\"mode\":\"status\"}", 400, "needs a status"},
        {"{\"mode\":\"status\",\"status\":199}", 400, "status must be"},
        {"{\"mode\":\"status\",\"status\":600}", 400, "status must be"},
        {"{\"mode\":\"status\",\"status\":999}", 400, "status must be"},
        {"{\"mode\":\"status\",\"status\":\"429\"}", 400, "status must be"},
        {"{\"mode\":\"status\",\"status\":500,\"headers\":[]}", 400,
         "headers must be"},
        {"{\"mode\":\"status\",\"status\":500,\"headers\":{\"Bad Name\":"
         "\"1\"}}",
         400, "HTTP token"},
        {"{\"mode\":\"status\",\"status\":500,\"headers\":{\"\":\"1\"}}", 400,
         "HTTP token"},
        {"{\"mode\":\"status\",\"status\":500,\"headers\":{\"X\":\"a\\r\\n"
         "Y: b\"}}",
         400, "value of header X"},
        {"{\"mode\":\"status\",\"status\":500,\"headers\":{\"X\":\" a\"}}", 400,
         "value of header X"},
        {"{\"mode\":\"status\",\"status\":500,\"headers\":{\"X\":\"caf\\u00e9"
         "\"}}",
         400, "value of header X"},
        {"{\"mode\":\"status\",\"status\":500,\"headers\":{\"X\":2}}", 400,
         "value of header X"},
        {"{\"mode\":\"status\",\"status\":500,\"headers\":{\"content-length\":"
         "\"3\"}}",
         400, "set by the sandbox"},
        {"{\"mode\":\"status\",\"status\":500,\"body\":5}", 400,
         "body must be"},
        {"{\"mode\":\"status\",\"status\":204,\"body\":\"x\"}", 400, "no body"},
        {"{\"mode\":\"reset\",\"status\":500}", 400, "only for mode"},
        {"{\"mode\":\"slow\",\"body\":\"x\"}", 400, "only for mode"},
        {"{\"mode\":\"status\",\"status\":500,\"delay_ms\":1}", 400,
         "only for mode \\\"slow"},
        {"{\"mode\":\"slow\",\"delay_ms\":10001}", 400, "delay_ms must be"},
        {"[]", 400, "INVALID_JSON"},
    };
    struct harness h;

    harness_init(&h, 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(call(&h, "POST", "/_sandbox/faults", NULL, NULL,
                           cases[i].body, 0) == cases[i].status,
                      "%s -> %d %s", cases[i].body, h.r.status, h.r.body);
        ck_assert_msg(body_has(&h, cases[i].says), "%s -> %s", cases[i].body,
                      h.r.body);
        ck_assert(strict_utf8_json(h.r.body));
        ck_assert(cases[i].status == 200 || body_has(&h, "BAD_REQUEST") ||
                  body_has(&h, "INVALID_JSON"));
    }
    /* Only the valid ones were armed, in order. */
    ck_assert_uint_eq(sb_faults_count(h.sb->faults), 9);
    ck_assert_int_eq(sb_faults_at(h.sb->faults, 0)->mode, SB_FAULT_RESET);
    ck_assert_int_eq(sb_faults_at(h.sb->faults, 8)->mode, SB_FAULT_HANG);
    harness_done(&h);
}
END_TEST

/* A long body: at most 65536 bytes, then refused. */
START_TEST(faults_body_bound)
{
    struct harness h;
    size_t n = SB_FAULT_BODY_MAX + 1, cap = n + 128;
    char *body = malloc(cap);
    int o = snprintf(body, cap,
                     "{\"mode\":\"status\",\"status\":500,"
                     "\"body\":\"");

    memset(body + o, 'x', n);
    snprintf(body + o + n, cap - (size_t)o - n, "\"}");
    harness_init(&h, 0);
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/faults", NULL, NULL, body, 0),
                     400);
    ck_assert(body_has(&h, "body must be"));
    memmove(body + o + n - 1, body + o + n, 3); /* 65536 bytes */
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/faults", NULL, NULL, body, 0),
                     200);
    ck_assert_uint_eq(sb_faults_at(h.sb->faults, 0)->body_len,
                      SB_FAULT_BODY_MAX);
    free(body);
    harness_done(&h);
}
END_TEST

START_TEST(faults_route_shape)
{
    struct harness h;

    harness_init(&h, 0);
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/faults", NULL, NULL, NULL, 0),
                     200);
    ck_assert_str_eq(h.r.body, "{\"count\":0,\"faults\":[]}");
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/faults", NULL, NULL,
                          "{\"mode\":\"status\",\"status\":429,\"times\":2,"
                          "\"path\":\"/api/user/whatsapp/send\","
                          "\"headers\":{\"Retry-After\":\"2\"},"
                          "\"body\":\"{\\\"success\\\":false}\"}",
                          0),
                     200);
    ck_assert_str_eq(h.r.body,
                     "{\"id\":1,\"mode\":\"status\","
                     "\"path\":\"/api/user/whatsapp/send\",\"match\":null,"
                     "\"times\":2,\"times_left\":2,\"status\":429,"
                     "\"headers\":{\"Retry-After\":\"2\"},"
                     "\"body\":\"{\\\"success\\\":false}\"}");
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/faults", NULL, NULL,
                          "{\"mode\":\"slow\",\"delay_ms\":5}", 0),
                     200);
    ck_assert_str_eq(h.r.body, "{\"id\":2,\"mode\":\"slow\",\"path\":null,"
                               "\"match\":null,\"times\":1,\"times_left\":1,"
                               "\"delay_ms\":5}");
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/faults", NULL, NULL, NULL, 0),
                     200);
    ck_assert(body_has(&h, "{\"count\":2,\"faults\":[{\"id\":1,"));
    ck_assert(body_has(&h, "},{\"id\":2,\"mode\":\"slow\""));
    ck_assert_int_eq(call(&h, "PUT", "/_sandbox/faults", NULL, NULL, NULL, 0),
                     405);
    ck_assert_str_eq(h.r.allow, "GET, POST, DELETE");
    ck_assert_int_eq(
        call(&h, "DELETE", "/_sandbox/faults", NULL, NULL, NULL, 0), 204);
    ck_assert_ptr_null(h.r.body);
    ck_assert_uint_eq(sb_faults_count(h.sb->faults), 0);
    /* Ids are never reused. */
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/faults", NULL, NULL,
                          "{\"mode\":\"close\"}", 0),
                     200);
    ck_assert(body_has(&h, "{\"id\":3,"));
    harness_done(&h);
}
END_TEST

START_TEST(faults_bounded_list)
{
    struct harness h;

    harness_init(&h, 0);
    for (int i = 0; i < SB_FAULTS_MAX; i++)
        ck_assert_int_eq(call(&h, "POST", "/_sandbox/faults", NULL, NULL,
                              "{\"mode\":\"close\"}", 0),
                         200);
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/faults", NULL, NULL,
                          "{\"mode\":\"close\"}", 0),
                     400);
    ck_assert(body_has(&h, "at most 64 faults"));
    ck_assert_uint_eq(sb_faults_count(h.sb->faults), SB_FAULTS_MAX);
    ck_assert_int_eq(
        call(&h, "DELETE", "/_sandbox/faults", NULL, NULL, NULL, 0), 204);
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/faults", NULL, NULL,
                          "{\"mode\":\"close\"}", 0),
                     200);
    harness_done(&h);
}
END_TEST

static void
arm(struct sb_faults *fl, const char *json)
{
    json_object *o = sb_json_parse_object(json, strlen(json));
    struct sb_fault f;
    char err[256];

    ck_assert_ptr_nonnull(o);
    ck_assert_msg(sb_fault_parse(o, &f, err, sizeof(err)) == 0, "%s", err);
    ck_assert_ptr_nonnull(sb_faults_arm(fl, &f));
    json_object_put(o);
}

/* The mode taken for (path, body, reused), or -1 when none. */
static int
take(struct sb_faults *fl, const char *path, const char *body, bool reused)
{
    struct sb_fault f;
    int mode;

    if (!sb_faults_take(fl, path, body, strlen(body), reused, &f))
        return -1;
    mode = (int)f.mode;
    sb_fault_clear(&f);
    return mode;
}

START_TEST(faults_matching)
{
    struct sb_faults *fl = sb_faults_new();

    arm(fl, "{\"mode\":\"reset\",\"path\":\"" FF "\",\"match\":\"boom\"}");
    arm(fl, "{\"mode\":\"close\",\"path\":\"" FF "\",\"times\":2}");
    arm(fl, "{\"mode\":\"drop_next\"}");
    arm(fl, "{\"mode\":\"garbage\",\"match\":\"\\u0000\"}");

    /* The path is exact; a body without "boom" skips the first fault. */
    ck_assert_int_eq(take(fl, FF "x", "{}", false), -1);
    ck_assert_int_eq(take(fl, "/api/user/whatsapp/send", "boom", false), -1);
    ck_assert_int_eq(take(fl, FF, "{\"message\":\"boom\"}", false),
                     SB_FAULT_RESET);
    ck_assert_uint_eq(sb_faults_count(fl), 3); /* reset used up */
    ck_assert_int_eq(take(fl, FF, "{\"message\":\"boom\"}", false),
                     SB_FAULT_CLOSE);
    ck_assert_uint_eq(sb_faults_at(fl, 0)->times_left, 1);
    /* drop_next only for a request on a connection already used. */
    ck_assert_int_eq(take(fl, "/other", "", false), -1);
    ck_assert_uint_eq(sb_faults_count(fl), 3);
    /* First match wins: close (still armed for FF) before drop_next. */
    ck_assert_int_eq(take(fl, FF, "", true), SB_FAULT_CLOSE);
    ck_assert_int_eq(take(fl, FF, "", true), SB_FAULT_DROP_NEXT);
    ck_assert_uint_eq(sb_faults_count(fl), 1);
    /* match is a byte substring, NULs included. */
    ck_assert(!sb_faults_take(fl, FF, "ab", 2, false, &(struct sb_fault){0}));
    {
        struct sb_fault f;
        ck_assert(sb_faults_take(fl, FF, "a\0b", 3, false, &f));
        ck_assert_int_eq(f.mode, SB_FAULT_GARBAGE);
        ck_assert_uint_eq(f.times_left, 0);
        sb_fault_clear(&f);
    }
    ck_assert_uint_eq(sb_faults_count(fl), 0);
    ck_assert_int_eq(take(fl, FF, "boom", true), -1);
    sb_faults_free(fl);
}
END_TEST

/* The copy handed out outlives a clear of the list. */
START_TEST(faults_take_copies)
{
    struct sb_faults *fl = sb_faults_new();
    struct sb_fault f;
    json_object *o;

    arm(fl, "{\"mode\":\"status\",\"status\":503,\"times\":3,"
            "\"headers\":{\"Retry-After\":\"7\",\"X-B\":\"b\"},"
            "\"body\":\"down\"}");
    ck_assert(sb_faults_take(fl, "/x", "", 0, false, &f));
    sb_faults_clear(fl);
    ck_assert_int_eq(f.status, 503);
    ck_assert_uint_eq(f.nheaders, 2);
    ck_assert_str_eq(f.headers[0].name, "Retry-After");
    ck_assert_str_eq(f.headers[1].value, "b");
    ck_assert_str_eq(f.body, "down");
    ck_assert_uint_eq(f.times, 3);
    ck_assert_uint_eq(f.times_left, 2);
    o = sb_fault_json(&f);
    ck_assert_str_eq(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
        "{\"id\":1,\"mode\":\"status\",\"path\":null,\"match\":null,"
        "\"times\":3,\"times_left\":2,\"status\":503,\"headers\":{"
        "\"Retry-After\":\"7\",\"X-B\":\"b\"},\"body\":\"down\"}");
    json_object_put(o);
    sb_fault_clear(&f);
    sb_faults_free(fl);
}
END_TEST

START_TEST(faults_legacy_route)
{
    struct harness h;

    harness_init(&h, 0);
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/fault", NULL, NULL,
                          "{\"mode\":\"hang\",\"count\":2}", 0),
                     200);
    ck_assert_str_eq(h.r.body, "{\"mode\":\"hang\",\"count\":2}");
    ck_assert_uint_eq(sb_faults_count(h.sb->faults), 1);
    ck_assert_int_eq(sb_faults_at(h.sb->faults, 0)->mode, SB_FAULT_HANG);
    ck_assert_uint_eq(sb_faults_at(h.sb->faults, 0)->times_left, 2);
    /* It replaces what was armed; "none" clears. */
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/fault", NULL, NULL,
                          "{\"mode\":\"close\"}", 0),
                     200);
    ck_assert_uint_eq(sb_faults_count(h.sb->faults), 1);
    ck_assert_int_eq(sb_faults_at(h.sb->faults, 0)->mode, SB_FAULT_CLOSE);
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/fault", NULL, NULL,
                          "{\"mode\":\"none\"}", 0),
                     200);
    ck_assert_str_eq(h.r.body, "{\"mode\":\"none\",\"count\":0}");
    ck_assert_uint_eq(sb_faults_count(h.sb->faults), 0);
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/fault", NULL, NULL,
                          "{\"mode\":\"explode\"}", 0),
                     400);
    harness_done(&h);
}
END_TEST

/* The request log names the fault that answered an entry. */
START_TEST(reqlog_names_the_fault)
{
    struct harness h;
    struct sb_reqlog_entry *e;

    harness_init(&h, 0);
    e = sb_reqlog_add(h.sb->log, 1, "POST", FF, "{}", 2);
    e->fault = sb_fault_mode_name(SB_FAULT_DROP_NEXT);
    sb_reqlog_add(h.sb->log, 2, "GET", "/x", "", 0);
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/requests", NULL, NULL, NULL, 0),
                     200);
    ck_assert(body_has(&h, "\"status\":0,\"fault\":\"drop_next\"}"));
    ck_assert(body_has(&h, "\"status\":0,\"fault\":null}]}"));
    harness_done(&h);
}
END_TEST

/* ---- the inbox's threads ---- */

static const struct sb_inbox_msg *
add_ff(struct sb_inbox *ib, int64_t sender, const char *phone, const char *t)
{
    return sb_inbox_add(ib, sender, phone, T0, SB_INBOX_FREEFORM, t, strlen(t),
                        NULL, 200, NULL);
}

START_TEST(inbox_threads_and_pages)
{
    struct sb_inbox *ib = sb_inbox_new();
    const struct sb_inbox_thread *th[4];
    const struct sb_inbox_msg *m[8];
    bool more;

    add_ff(ib, 12, PHONE, "one");
    add_ff(ib, 12, "+14155550101", "other");
    add_ff(ib, 12, PHONE, "two");
    add_ff(ib, 13, PHONE, "third sender");
    ck_assert_ptr_null(sb_inbox_add(ib, 12, "+123456789012345678901234567890123",
                                    T0, SB_INBOX_INBOUND, NULL, 0, NULL, 0,
                                    NULL));
    ck_assert_uint_eq(sb_inbox_count(ib), 4);
    ck_assert_uint_eq(sb_inbox_thread_count(ib), 3);
    /* newest activity first */
    ck_assert_uint_eq(sb_inbox_threads(ib, 0, 4, th), 3);
    ck_assert_int_eq(th[0]->sender_id, 13);
    ck_assert_str_eq(th[1]->phone, PHONE);
    ck_assert_uint_eq(th[1]->count, 2);
    ck_assert_str_eq(th[2]->phone, "+14155550101");
    ck_assert_uint_eq(sb_inbox_threads(ib, 2, 4, th), 1);
    ck_assert_uint_eq(sb_inbox_threads(ib, 3, 4, th), 0);
    /* a thread's messages, newest first, paged by id */
    const struct sb_inbox_thread *t = sb_inbox_thread(ib, 12, PHONE);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_null(sb_inbox_thread(ib, 14, PHONE));
    ck_assert_uint_eq(sb_inbox_messages(ib, t, 0, 1, m, &more), 1);
    ck_assert_str_eq(m[0]->text, "two");
    ck_assert(more);
    ck_assert_uint_eq(sb_inbox_messages(ib, t, m[0]->id, 8, m, &more), 1);
    ck_assert_str_eq(m[0]->text, "one");
    ck_assert(!more);
    sb_inbox_clear(ib);
    ck_assert_uint_eq(sb_inbox_thread_count(ib), 0);
    /* ids are never reused, also across a clear */
    ck_assert_uint_eq(add_ff(ib, 12, PHONE, "after")->id, 5);
    sb_inbox_free(ib);
}
END_TEST

START_TEST(inbox_is_bounded)
{
    struct sb_inbox *ib = sb_inbox_new();
    const struct sb_inbox_thread *th[2];
    const struct sb_inbox_msg *m[1];
    bool more;

    add_ff(ib, 12, "+14155550101", "the first, alone in its thread");
    for (int i = 0; i < SB_INBOX_MAX + 9; i++)
        add_ff(ib, 12, PHONE, "x");
    ck_assert_uint_eq(sb_inbox_count(ib), SB_INBOX_MAX);
    /* the oldest went, and its thread with it */
    ck_assert_uint_eq(sb_inbox_thread_count(ib), 1);
    ck_assert_uint_eq(sb_inbox_threads(ib, 0, 2, th), 1);
    ck_assert_uint_eq(th[0]->count, SB_INBOX_MAX);
    ck_assert_uint_eq(th[0]->last_id, SB_INBOX_MAX + 10);
    ck_assert_uint_eq(sb_inbox_messages(ib, th[0], 12, 1, m, &more), 1);
    ck_assert_uint_eq(m[0]->id, 11); /* 2..10 dropped too */
    ck_assert(!more);
    /* a long text is cut on a code point boundary */
    static char big[SB_INBOX_TEXT_MAX + 8];
    memset(big, 'a', sizeof(big));
    memcpy(big + SB_INBOX_TEXT_MAX - 1, "\xc3\xa9", 2);
    const struct sb_inbox_msg *l = sb_inbox_add(
        ib, 12, PHONE, T0, SB_INBOX_FREEFORM, big, sizeof(big), NULL, 200, NULL);
    ck_assert_uint_eq(l->text_len, SB_INBOX_TEXT_MAX - 1);
    sb_inbox_free(ib);
}
END_TEST

START_TEST(inbox_fill_placeholders)
{
    const char *v[] = {"Ann", NULL, "{{1}}"};
    size_t len;
    char *s = sb_inbox_fill("Hi {{1}}, on {{2}} at {{3}} {{4}} {{x}} {{", v, 3,
                            &len);

    ck_assert_str_eq(s, "Hi Ann, on {{2}} at {{1}} {{4}} {{x}} {{");
    ck_assert_uint_eq(len, strlen(s));
    free(s);
}
END_TEST

#define Q_THREAD "sender_id=12&recipient_phone=%2B14155550100"

/* What the page hears: every event the routes tell, in order. */
struct heard {
    char text[8192];
    int n;
};

static void
hear(void *arg, const char *event, const char *data)
{
    struct heard *h = arg;
    size_t len = strlen(h->text);

    snprintf(h->text + len, sizeof(h->text) - len, "%s %s\n", event, data);
    h->n++;
}

START_TEST(routes_tell_the_page_what_changed)
{
    struct harness h;
    struct heard heard = {{0}, 0};

    harness_init(&h, 0);
    h.sb->on_event = hear;
    h.sb->event_arg = &heard;
    ck_assert_int_eq(call(&h, "POST", FF, NULL, KEY, FF_BODY, 0), 403);
    ck_assert_int_eq(call(&h, "POST", FF, NULL, KEY, "x", 0), 400);
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/inbound", NULL, NULL,
                          "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                          "\",\"text\":\"a/b\"}",
                          0),
                     204);
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/config", NULL, NULL,
                          "{\"balance\":-1}", 0),
                     400); /* nothing changed: nothing told */
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/config", NULL, NULL,
                          "{\"balance\":5}", 0),
                     200);
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/clock", NULL, NULL,
                          "{\"advance_s\":1}", 0),
                     200);
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/faults", NULL, NULL,
                          "{\"mode\":\"close\"}", 0),
                     200);
    ck_assert_int_eq(
        call(&h, "DELETE", "/_sandbox/faults", NULL, NULL, NULL, 0), 204);
    ck_assert_int_eq(
        call(&h, "DELETE", "/_sandbox/requests", NULL, NULL, NULL, 0), 204);
    ck_assert_int_eq(
        call(&h, "DELETE", "/_sandbox/conversations", NULL, NULL, NULL, 0),
        204);
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/config", NULL, NULL, NULL, 0),
                     200); /* a read tells nothing */
    ck_assert_int_eq(heard.n, 8);
    ck_assert_str_eq(
        heard.text,
        "message {\"sender_id\":12,\"recipient_phone\":\"" PHONE "\","
        "\"message\":{\"id\":1,\"at\":\"2026-02-24T10:30:00+00:00\","
        "\"kind\":\"freeform\",\"text\":\"hi\",\"status\":403,"
        "\"error_code\":\"SESSION_EXPIRED\"},\"balance\":100}\n"
        "message {\"sender_id\":12,\"recipient_phone\":\"" PHONE "\","
        "\"message\":{\"id\":2,\"at\":\"2026-02-24T10:30:00+00:00\","
        "\"kind\":\"inbound\",\"text\":\"a/b\"},\"balance\":100}\n"
        "state {\"what\":\"config\"}\n"
        "state {\"what\":\"clock\"}\n"
        "state {\"what\":\"faults\"}\n"
        "state {\"what\":\"faults\"}\n"
        "cleared {\"what\":\"requests\"}\n"
        "cleared {\"what\":\"conversations\"}\n");
    harness_done(&h);
}
END_TEST

START_TEST(senders_and_log_routes)
{
    struct harness h;
    struct sb_reqlog_entry *e;

    harness_init(&h, 0);
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/senders", NULL, NULL, NULL, 0),
                     200);
    ck_assert_str_eq(h.r.body,
                     "{\"senders\":[{\"id\":12,\"name\":\"Sender 12\","
                     "\"phone\":\"+14155550012\",\"status\":\"online\"},"
                     "{\"id\":13,\"name\":\"Sender 13\",\"phone\":"
                     "\"+14155550013\",\"status\":\"offline\"}]}");
    e = sb_reqlog_add(h.sb->log, 100, "POST", FF "?x=1", "{}", 2);
    sb_reqlog_set_status(h.sb->log, e->id, 403, 107);
    e = sb_reqlog_add(h.sb->log, 110, "GET", "/api/user/whatsapp/senders", "",
                      0);
    e->fault = "hang"; /* never answered */
    sb_reqlog_add(h.sb->log, 120, "GET", "/x", "", 0);
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/log", NULL, NULL, NULL, 0),
                     200);
    ck_assert_str_eq(
        h.r.body,
        "{\"count\":3,\"entries\":["
        "{\"seq\":3,\"method\":\"GET\",\"path\":\"/x\",\"status\":null,"
        "\"latency_ms\":null,\"fault\":null},"
        "{\"seq\":2,\"method\":\"GET\",\"path\":"
        "\"/api/user/whatsapp/senders\",\"status\":null,"
        "\"latency_ms\":null,\"fault\":\"hang\"},"
        "{\"seq\":1,\"method\":\"POST\",\"path\":"
        "\"/api/user/whatsapp/send-freeform\",\"status\":403,"
        "\"latency_ms\":7,\"fault\":null}],\"more\":false}");
    /* paged, and filtered without case on method, path, status, fault */
    ck_assert_int_eq(
        call(&h, "GET", "/_sandbox/log", "limit=1&before=3", NULL, NULL, 0),
        200);
    ck_assert(body_has(&h, "\"seq\":2,"));
    ck_assert(body_has(&h, "\"more\":true"));
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/log", "q=HAN", NULL, NULL, 0),
                     200);
    ck_assert(body_has(&h, "\"seq\":2,") && !body_has(&h, "\"seq\":1,"));
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/log", "q=403", NULL, NULL, 0),
                     200);
    ck_assert(body_has(&h, "\"seq\":1,") && !body_has(&h, "\"seq\":2,"));
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/log", "q=x%3D1", NULL, NULL, 0),
                     200); /* the query is no part of the path */
    ck_assert(!body_has(&h, "\"seq\""));
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/log", "q=FREE&limit=0", NULL,
                          NULL, 0),
                     400);
    harness_done(&h);
}
END_TEST

START_TEST(inbox_routes)
{
    struct harness h;
    json_object *o, *list, *msg, *v;

    harness_init(&h, 0);
    /* window closed: recorded with its refusal */
    ck_assert_int_eq(call(&h, "POST", FF, NULL, KEY, FF_BODY, 0), 403);
    /* refused before the fields were read: not a message */
    ck_assert_int_eq(call(&h, "POST", FF, NULL, KEY, "x", 0), 400);
    ck_assert_int_eq(
        call(&h, "POST", "/api/user/whatsapp/send", NULL, KEY,
             "{\"sender_id\":12,\"template_id\":1201,\"recipient_phone\":\"" PHONE
             "\",\"variables\":{\"1\":\"Ann\",\"date\":\"May 1\",\"3\":9}}",
             0),
        200);
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/inbound", NULL, NULL,
                          "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                          "\",\"text\":\"<img src=x onerror=alert(1)>\"}",
                          0),
                     204);
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/inbound", NULL, NULL,
                          "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                          "\",\"text\":5}",
                          0),
                     400);
    ck_assert_int_eq(call(&h, "POST", FF, NULL, KEY,
                          "{\"sender_id\":13,\"recipient_phone\":\"" PHONE
                          "\",\"message\":\"to an offline sender\"}",
                          0),
                     503);

    ck_assert_int_eq(call(&h, "GET", "/_sandbox/conversations", NULL, NULL,
                          NULL, 0),
                     200);
    o = json_tokener_parse(h.r.body);
    ck_assert_ptr_nonnull(o);
    ck_assert(json_object_object_get_ex(o, "count", &v));
    ck_assert_int_eq(json_object_get_int(v), 2);
    ck_assert(json_object_object_get_ex(o, "messages", &v));
    ck_assert_int_eq(json_object_get_int(v), 4);
    json_object_object_get_ex(o, "conversations", &list);
    msg = json_object_array_get_idx(list, 0); /* the offline sender's */
    json_object_object_get_ex(msg, "sender_id", &v);
    ck_assert_int_eq(json_object_get_int(v), 13);
    json_object_object_get_ex(msg, "last", &v);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(v, "error_code")),
                     "SENDER_OFFLINE");
    msg = json_object_array_get_idx(list, 1);
    json_object_object_get_ex(msg, "window", &v);
    ck_assert(json_object_get_boolean(json_object_object_get(v, "is_open")));
    json_object_put(o);

    ck_assert_int_eq(
        call(&h, "GET", "/_sandbox/messages", Q_THREAD, NULL, NULL, 0), 200);
    o = json_tokener_parse(h.r.body);
    ck_assert_ptr_nonnull(o);
    json_object_object_get_ex(o, "messages", &list);
    ck_assert_int_eq((int)json_object_array_length(list), 3);
    msg = json_object_array_get_idx(list, 0);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(msg, "kind")),
                     "inbound");
    ck_assert_str_eq(json_object_get_string(json_object_object_get(msg, "text")),
                     "<img src=x onerror=alert(1)>");
    msg = json_object_array_get_idx(list, 1);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(msg, "text")),
                     "Hi Ann, this is a reminder of your appointment on May 1 "
                     "at 9.");
    ck_assert_str_eq(
        json_object_get_string(json_object_object_get(msg, "template")),
        "appointment_reminder");
    msg = json_object_array_get_idx(list, 2);
    ck_assert_int_eq(json_object_get_int(json_object_object_get(msg, "status")),
                     403);
    ck_assert_str_eq(
        json_object_get_string(json_object_object_get(msg, "error_code")),
        "SESSION_EXPIRED");
    json_object_put(o);

    ck_assert_int_eq(call(&h, "GET", "/_sandbox/messages",
                          Q_THREAD "&limit=1", NULL, NULL, 0),
                     200);
    ck_assert(body_has(&h, "\"more\":true"));
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/messages",
                          Q_THREAD "&before=2", NULL, NULL, 0),
                     200);
    ck_assert(body_has(&h, "\"more\":false"));
    ck_assert(body_has(&h, "SESSION_EXPIRED"));
    ck_assert(!body_has(&h, "appointment_reminder"));
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/messages", "sender_id=12",
                          NULL, NULL, 0),
                     400);
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/messages",
                          Q_THREAD "&limit=0", NULL, NULL, 0),
                     400);
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/conversations", "offset=-1",
                          NULL, NULL, 0),
                     400);
    ck_assert_int_eq(call(&h, "POST", "/_sandbox/messages", NULL, NULL, "{}",
                          0),
                     405);
    ck_assert_int_eq(call(&h, "DELETE", "/_sandbox/conversations", NULL, NULL,
                          NULL, 0),
                     204);
    ck_assert_int_eq(call(&h, "GET", "/_sandbox/conversations", NULL, NULL,
                          NULL, 0),
                     200);
    ck_assert(body_has(&h, "\"count\":0"));
    harness_done(&h);
}
END_TEST

static Suite *
sandbox_suite(void)
{
    Suite *s = suite_create("sandbox");
    TCase *text = tcase_create("text");
    TCase *core = tcase_create("core");
    TCase *api = tcase_create("handlers");

    tcase_add_test(text, phone_table);
    tcase_add_test(text, utf8_counts_code_points);
    tcase_add_test(text, utf8_blank_and_sanitize);
    tcase_add_test(text, base64_vectors);
    tcase_add_test(text, iso_round_trip);
    tcase_add_test(text, query_decoding);
    tcase_add_test(text, int_parsing);
    tcase_add_test(text, json_grammar_table);
    tcase_add_test(core, rate_exactly_n_per_second);
    tcase_add_test(core, rate_burst_then_slide);
    tcase_add_test(core, reqlog_records);
    tcase_add_test(core, senders_and_templates);
    tcase_add_test(core, window_across_clock_moves);
    tcase_add_test(core, template_opens_window);
    tcase_add_test(core, template_order_of_checks);
    tcase_add_test(core, balance_spend_and_402);
    tcase_add_test(core, many_windows);
    tcase_add_test(api, api_order_of_checks);
    tcase_add_test(api, api_freeform_flow);
    tcase_add_test(api, api_message_length);
    tcase_add_test(api, control_routes);
    tcase_add_test(api, unknown_key_error_is_valid_utf8);
    tcase_add_test(text, utf8_cut_on_boundaries);
    tcase_add_test(api, faults_validation_table);
    tcase_add_test(api, faults_body_bound);
    tcase_add_test(api, faults_route_shape);
    tcase_add_test(api, faults_bounded_list);
    tcase_add_test(core, faults_matching);
    tcase_add_test(core, faults_take_copies);
    tcase_add_test(api, faults_legacy_route);
    tcase_add_test(api, reqlog_names_the_fault);
    tcase_add_test(core, inbox_threads_and_pages);
    tcase_add_test(core, inbox_is_bounded);
    tcase_add_test(core, inbox_fill_placeholders);
    tcase_add_test(api, inbox_routes);
    tcase_add_test(api, routes_tell_the_page_what_changed);
    tcase_add_test(api, senders_and_log_routes);
    suite_add_tcase(s, text);
    suite_add_tcase(s, core);
    suite_add_tcase(s, api);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(sandbox_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
