/* check_units.c - unit tests for the pure modules: headers, reqid, route,
 * log_mask_phone and reply. No sockets, no sleeping. */
#include <check.h>
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "headers.h"
#include "log.h"
#include "reply.h"
#include "reqid.h"
#include "route.h"

/* ---- headers_is_hop_by_hop ---- */

static const char *const hop_names[] = {
    "Connection",
    "Keep-Alive",
    "Proxy-Connection",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Content-Length",
};
#define NHOP ((int)(sizeof(hop_names) / sizeof(hop_names[0])))

/* mode 0: as is, 1: lower, 2: upper, 3: alternating */
static void
recase(const char *in, char *out, size_t n, int mode)
{
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++) {
        int c = (unsigned char)in[i];
        if (mode == 1 || (mode == 3 && i % 2 == 0))
            c = tolower(c);
        else if (mode == 2 || mode == 3)
            c = toupper(c);
        out[i] = (char)c;
    }
    out[i] = '\0';
}

START_TEST(test_hop_by_hop_any_case)
{
    char name[64];
    for (int mode = 0; mode < 4; mode++) {
        recase(hop_names[_i], name, sizeof(name), mode);
        ck_assert_msg(headers_is_hop_by_hop(name) == 1, "%s", name);
        /* and therefore never relayed from upstream either */
        ck_assert_msg(headers_drop_from_upstream(name, NULL) == 1, "%s", name);
    }
}
END_TEST

START_TEST(test_end_to_end_headers)
{
    static const char *const e2e[] = {
        "Content-Type",
        "X-Foo",
        "Date",
        "Retry-After",
        "Cache-Control",
        "ETag",
        "Location",
        "Server",
        "Connections",
        "Keep-Alive2",
        "T",
        "TE-",
        "",
        "X-Connection",
        "Content-Encoding",
    };
    for (size_t i = 0; i < sizeof(e2e) / sizeof(e2e[0]); i++) {
        ck_assert_msg(headers_is_hop_by_hop(e2e[i]) == 0, "%s", e2e[i]);
        ck_assert_msg(headers_drop_from_upstream(e2e[i], NULL) == 0, "%s",
                      e2e[i]);
    }
}
END_TEST

/* ---- headers_drop_from_upstream ---- */

START_TEST(test_drop_from_upstream)
{
    /* the gateway's own headers */
    ck_assert_int_eq(headers_drop_from_upstream("X-Wagate", NULL), 1);
    ck_assert_int_eq(headers_drop_from_upstream("x-wagate", NULL), 1);
    ck_assert_int_eq(headers_drop_from_upstream("X-Request-Id", NULL), 1);
    ck_assert_int_eq(headers_drop_from_upstream("X-REQUEST-ID", "close"), 1);
    /* names listed in Connection */
    ck_assert_int_eq(headers_drop_from_upstream("X-Foo", "close, X-Foo"), 1);
    ck_assert_int_eq(headers_drop_from_upstream("x-foo", "Close, X-FOO"), 1);
    ck_assert_int_eq(headers_drop_from_upstream("X-Foo", "X-Foo"), 1);
    ck_assert_int_eq(
        headers_drop_from_upstream("X-Bar", " X-Foo ,\tX-Bar , close"), 1);
    ck_assert_int_eq(headers_drop_from_upstream("X-Bar", ",,X-Bar,,"), 1);
    /* not listed */
    ck_assert_int_eq(headers_drop_from_upstream("X-Foo", "X-Foo-Bar"), 0);
    ck_assert_int_eq(headers_drop_from_upstream("X-Foo-Bar", "X-Foo"), 0);
    ck_assert_int_eq(headers_drop_from_upstream("X-Foo", "keep-alive"), 0);
    ck_assert_int_eq(headers_drop_from_upstream("X-Foo", ""), 0);
    ck_assert_int_eq(headers_drop_from_upstream("X-Foo", NULL), 0);
    ck_assert_int_eq(headers_drop_from_upstream("Content-Type", "close"), 0);
    ck_assert_int_eq(headers_drop_from_upstream("X-Request", "X-Request-Id"),
                     0);
}
END_TEST

/* ---- headers_check_framing ---- */

/* Builds a header list from name/value pairs (NULL-terminated), checks its
 * framing and frees it. The result is a row of reply.h's table or NULL. */
static const struct gw_error_row *
framing(const char *const *kv)
{
    struct evkeyvalq h;
    TAILQ_INIT(&h);
    for (; kv[0] != NULL; kv += 2)
        ck_assert_int_eq(evhttp_add_header(&h, kv[0], kv[1]), 0);
    const struct gw_error_row *r = headers_check_framing(&h);
    evhttp_clear_headers(&h);
    return r;
}

#define FRAMING(...) framing((const char *const[]){__VA_ARGS__, NULL})

START_TEST(test_framing_ok)
{
    ck_assert_ptr_null(framing((const char *const[]){NULL}));
    ck_assert_ptr_null(FRAMING("Host", "x"));
    ck_assert_ptr_null(FRAMING("Content-Length", "12"));
    ck_assert_ptr_null(FRAMING("Content-Length", "0"));
    ck_assert_ptr_null(FRAMING("content-length", "65536"));
    ck_assert_ptr_null(FRAMING("Content-Length", " 12 "));
    ck_assert_ptr_null(FRAMING("Transfer-Encoding", "chunked"));
    ck_assert_ptr_null(FRAMING("Transfer-Encoding", "Chunked"));
    ck_assert_ptr_null(FRAMING("transfer-encoding", "CHUNKED"));
    ck_assert_ptr_null(
        FRAMING("Content-Type", "application/json", "Content-Length", "2"));
}
END_TEST

START_TEST(test_framing_bad)
{
    ck_assert_ptr_nonnull(
        FRAMING("Content-Length", "5", "Transfer-Encoding", "chunked"));
    ck_assert_ptr_nonnull(
        FRAMING("Transfer-Encoding", "chunked", "content-length", "5"));
    ck_assert_ptr_nonnull(FRAMING("Transfer-Encoding", "gzip"));
    ck_assert_ptr_nonnull(FRAMING("Transfer-Encoding", "chunked, gzip"));
    ck_assert_ptr_nonnull(FRAMING("Transfer-Encoding", "gzip, chunked"));
    ck_assert_ptr_nonnull(FRAMING("Transfer-Encoding", "identity"));
    ck_assert_ptr_nonnull(FRAMING("Transfer-Encoding", ""));
    ck_assert_ptr_nonnull(FRAMING("Transfer-Encoding", "chunked",
                                  "Transfer-Encoding", "chunked"));
    ck_assert_ptr_nonnull(
        FRAMING("Content-Length", "5", "Content-Length", "5"));
    ck_assert_ptr_nonnull(
        FRAMING("Content-Length", "5", "content-length", "6"));
    ck_assert_ptr_nonnull(FRAMING("Content-Length", "12abc"));
    ck_assert_ptr_nonnull(FRAMING("Content-Length", ""));
    ck_assert_ptr_nonnull(FRAMING("Content-Length", " "));
    ck_assert_ptr_nonnull(FRAMING("Content-Length", "-1"));
    ck_assert_ptr_nonnull(FRAMING("Content-Length", "+1"));
    ck_assert_ptr_nonnull(FRAMING("Content-Length", "0x10"));
    ck_assert_ptr_nonnull(FRAMING("Content-Length", "1 2"));
    ck_assert_ptr_nonnull(FRAMING("Content-Length", "5, 5"));
    ck_assert_ptr_nonnull(FRAMING("Content-Length", "1.0"));
}
END_TEST

START_TEST(test_headers_count)
{
    struct evkeyvalq h;
    TAILQ_INIT(&h);
    ck_assert_uint_eq(headers_count(&h, "X-A"), 0);
    evhttp_add_header(&h, "X-A", "1");
    evhttp_add_header(&h, "x-a", "2");
    evhttp_add_header(&h, "X-B", "3");
    ck_assert_uint_eq(headers_count(&h, "X-A"), 2);
    ck_assert_uint_eq(headers_count(&h, "X-b"), 1);
    ck_assert_uint_eq(headers_count(&h, "X-C"), 0);
    evhttp_clear_headers(&h);
}
END_TEST

/* ---- headers_is_json_type ---- */

START_TEST(test_json_type)
{
    ck_assert_int_eq(headers_is_json_type("application/json"), 1);
    ck_assert_int_eq(headers_is_json_type("application/json; charset=utf-8"),
                     1);
    ck_assert_int_eq(headers_is_json_type("APPLICATION/JSON"), 1);
    ck_assert_int_eq(headers_is_json_type("Application/Json;charset=UTF-8"), 1);
    ck_assert_int_eq(headers_is_json_type("application/json ;q=1"), 1);
    ck_assert_int_eq(headers_is_json_type("application/json;"), 1);
    ck_assert_int_eq(headers_is_json_type(" application/json "), 1);
    ck_assert_int_eq(headers_is_json_type("application/jsonx"), 0);
    ck_assert_int_eq(headers_is_json_type("application/json-patch+json"), 0);
    ck_assert_int_eq(headers_is_json_type("application/json x"), 0);
    ck_assert_int_eq(headers_is_json_type("text/json"), 0);
    ck_assert_int_eq(headers_is_json_type("text/plain"), 0);
    ck_assert_int_eq(headers_is_json_type("application/"), 0);
    ck_assert_int_eq(headers_is_json_type("application/js"), 0);
    ck_assert_int_eq(headers_is_json_type(""), 0);
    ck_assert_int_eq(headers_is_json_type(NULL), 0);
}
END_TEST

/* ---- reqid ---- */

static void
fill(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
}

static int
is_hex32(const char *s)
{
    if (strlen(s) != 32)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

START_TEST(test_reqid_valid)
{
    char buf[256];
    fill(buf, 'a', 1);
    ck_assert_int_eq(reqid_valid(buf), 1);
    fill(buf, 'x', 128);
    ck_assert_int_eq(reqid_valid(buf), 1);
    fill(buf, 'x', 129);
    ck_assert_int_eq(reqid_valid(buf), 0);
    fill(buf, 'x', 200);
    ck_assert_int_eq(reqid_valid(buf), 0);
    ck_assert_int_eq(reqid_valid(""), 0);
    ck_assert_int_eq(reqid_valid(NULL), 0);
    ck_assert_int_eq(reqid_valid("a b"), 0);
    ck_assert_int_eq(reqid_valid(" "), 0);
    ck_assert_int_eq(reqid_valid("abc\t"), 0);
    ck_assert_int_eq(reqid_valid("abc\x7f"), 0);
    ck_assert_int_eq(reqid_valid("\x01"), 0);
    ck_assert_int_eq(reqid_valid("caf\xc3\xa9"), 0);
    ck_assert_int_eq(reqid_valid("\xff"), 0);
    /* every visible ASCII character */
    size_t n = 0;
    for (int c = 0x21; c <= 0x7e; c++)
        buf[n++] = (char)c;
    buf[n] = '\0';
    ck_assert_int_eq(reqid_valid(buf), 1);
    ck_assert_int_eq(reqid_valid("req-123_ABC.x:y/z"), 1);
}
END_TEST

START_TEST(test_reqid_generate)
{
    char a[33], b[33];
    memset(a, 'Z', sizeof(a));
    reqid_generate(a);
    reqid_generate(b);
    ck_assert_msg(is_hex32(a), "%s", a);
    ck_assert_msg(is_hex32(b), "%s", b);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(reqid_valid(a), 1);
    /* no repeats over a run */
    static char seen[64][33];
    for (int i = 0; i < 64; i++) {
        reqid_generate(seen[i]);
        ck_assert(is_hex32(seen[i]));
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(seen[i], seen[j]);
    }
}
END_TEST

START_TEST(test_reqid_choose)
{
    char out[REQID_MAX + 1], in[256];
    reqid_choose("caller-id-42", out);
    ck_assert_str_eq(out, "caller-id-42");
    fill(in, 'q', 128);
    reqid_choose(in, out);
    ck_assert_str_eq(out, in);
    /* invalid: a fresh id instead */
    fill(in, 'q', 129);
    reqid_choose(in, out);
    ck_assert_msg(is_hex32(out), "%s", out);
    reqid_choose("has space", out);
    ck_assert_msg(is_hex32(out), "%s", out);
    reqid_choose("", out);
    ck_assert_msg(is_hex32(out), "%s", out);
    reqid_choose(NULL, out);
    ck_assert_msg(is_hex32(out), "%s", out);
    reqid_choose("bad\r\nX-Injected: 1", out);
    ck_assert_msg(is_hex32(out), "%s", out);
}
END_TEST

/* ---- route ---- */

#define API "/api/user/whatsapp"

static const struct {
    const char *path;
    enum route_id id;
} routes[] = {
    {API "/send-freeform", ROUTE_SEND_FREEFORM},
    {API "/send", ROUTE_SEND},
    {API "/session-status", ROUTE_SESSION_STATUS},
    {API "/senders", ROUTE_SENDERS},
    {API "/senders/12/templates", ROUTE_TEMPLATES},
    {API "/senders/1/templates", ROUTE_TEMPLATES},
    {API "/senders/123456789012345678/templates", ROUTE_TEMPLATES},
    {"/healthz", ROUTE_HEALTHZ},
    {"/readyz", ROUTE_READYZ},
    {"/metrics", ROUTE_METRICS},
    {"/admin", ROUTE_ADMIN},
    {"/admin/", ROUTE_ADMIN},
    {"/admin/sessions", ROUTE_ADMIN},
    {"/admin/sessions/12/+14155550123", ROUTE_ADMIN},
    /* not routes */
    {API "/senders/abc/templates", ROUTE_NONE},
    {API "/senders//templates", ROUTE_NONE},
    {API "/senders/12a/templates", ROUTE_NONE},
    {API "/senders/-1/templates", ROUTE_NONE},
    {API "/senders/+1/templates", ROUTE_NONE},
    {API "/senders/ 1/templates", ROUTE_NONE},
    {API "/senders/1234567890123456789/templates", ROUTE_NONE}, /* 19 */
    {API "/senders/12/templates/", ROUTE_NONE},
    {API "/senders/12/templatesx", ROUTE_NONE},
    {API "/senders/12/Templates", ROUTE_NONE},
    {API "/senders/12", ROUTE_NONE},
    {API "/senders/12/", ROUTE_NONE},
    {API "/senders/", ROUTE_NONE},
    {API "/send/", ROUTE_NONE},
    {API "/send-freeform/", ROUTE_NONE},
    {API "/sendx", ROUTE_NONE},
    {API "/send%2Dfreeform", ROUTE_NONE},
    {API "/./send", ROUTE_NONE},
    {API "//send", ROUTE_NONE},
    {"/API/user/whatsapp/send", ROUTE_NONE},
    {"//api/user/whatsapp/send", ROUTE_NONE},
    {API, ROUTE_NONE},
    {API "/", ROUTE_NONE},
    {"/api/user/whatsapp/session-status/", ROUTE_NONE},
    {"/adminx", ROUTE_NONE},
    {"/admi", ROUTE_NONE},
    {"/Admin", ROUTE_NONE},
    {"/healthz/", ROUTE_NONE},
    {"/metrics.txt", ROUTE_NONE},
    {"/", ROUTE_NONE},
    {"", ROUTE_NONE},
    {"*", ROUTE_NONE},
    {"http://evil.example/api/user/whatsapp/send", ROUTE_NONE},
};
#define NROUTES ((int)(sizeof(routes) / sizeof(routes[0])))

START_TEST(test_route_match)
{
    const struct route_info *r = route_match(routes[_i].path);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->id == routes[_i].id, "%s: got %d, want %d",
                  routes[_i].path, (int)r->id, (int)routes[_i].id);
    ck_assert_ptr_eq(r, route_get(routes[_i].id));
}
END_TEST

START_TEST(test_route_info)
{
    const struct route_info *r = route_match(API "/send-freeform");
    ck_assert_str_eq(r->name, "send_freeform");
    ck_assert_int_eq(r->kind, ROUTE_KIND_SEND);
    ck_assert_int_eq(r->methods, EVHTTP_REQ_POST);
    ck_assert_str_eq(r->allow, "POST");

    r = route_match(API "/send");
    ck_assert_int_eq(r->kind, ROUTE_KIND_SEND);
    ck_assert_str_eq(r->allow, "POST");

    static const char *const reads[] = {API "/session-status", API "/senders",
                                        API "/senders/12/templates"};
    for (size_t i = 0; i < 3; i++) {
        r = route_match(reads[i]);
        ck_assert_int_eq(r->kind, ROUTE_KIND_READ);
        ck_assert_int_eq(r->methods, EVHTTP_REQ_GET);
        ck_assert_str_eq(r->allow, "GET");
    }
    static const char *const locals[] = {"/healthz", "/readyz", "/metrics"};
    for (size_t i = 0; i < 3; i++) {
        r = route_match(locals[i]);
        ck_assert_int_eq(r->kind, ROUTE_KIND_LOCAL);
        ck_assert_int_eq(r->methods, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
        ck_assert_str_eq(r->allow, "GET, HEAD");
    }
    r = route_match("/admin/sessions");
    ck_assert_int_eq(r->kind, ROUTE_KIND_ADMIN);
    ck_assert_int_eq(r->methods, 0);

    r = route_match("/nope");
    ck_assert_int_eq(r->id, ROUTE_NONE);
    ck_assert_int_eq(r->kind, ROUTE_KIND_NONE);
    ck_assert_ptr_nonnull(r->name);

    /* every id has its own name; out-of-range ids fall back to NONE */
    for (int id = 0; id < ROUTE_COUNT; id++) {
        ck_assert_int_eq(route_get((enum route_id)id)->id, id);
        ck_assert_ptr_nonnull(route_get((enum route_id)id)->name);
        for (int j = 0; j < id; j++)
            ck_assert_str_ne(route_get((enum route_id)id)->name,
                             route_get((enum route_id)j)->name);
    }
    ck_assert_int_eq(route_get(ROUTE_COUNT)->id, ROUTE_NONE);
}
END_TEST

START_TEST(test_route_templates_sender)
{
    ck_assert_int_eq(route_templates_sender(API "/senders/12/templates"), 12);
    ck_assert_int_eq(route_templates_sender(API "/senders/1/templates"), 1);
    /* ids are positive and written without leading zeros */
    ck_assert_int_eq(route_templates_sender(API "/senders/0/templates"), -1);
    ck_assert_int_eq(route_templates_sender(API "/senders/007/templates"), -1);
    ck_assert_int_eq(
        route_templates_sender(API "/senders/123456789012345678/templates"),
        123456789012345678LL);
    ck_assert_int_eq(
        route_templates_sender(API "/senders/999999999999999999/templates"),
        999999999999999999LL);
    ck_assert_int_eq(
        route_templates_sender(API "/senders/1234567890123456789/templates"),
        -1);
    ck_assert_int_eq(route_templates_sender(API "/senders/abc/templates"), -1);
    ck_assert_int_eq(route_templates_sender(API "/senders//templates"), -1);
    ck_assert_int_eq(route_templates_sender(API "/senders/12/templates/"), -1);
    ck_assert_int_eq(route_templates_sender(API "/senders/12"), -1);
    ck_assert_int_eq(route_templates_sender(API "/senders"), -1);
    ck_assert_int_eq(route_templates_sender(API "/send"), -1);
    ck_assert_int_eq(route_templates_sender("/admin/12/templates"), -1);
    ck_assert_int_eq(route_templates_sender(""), -1);
}
END_TEST

/* ---- log_mask_phone ---- */

static const struct {
    const char *in;
    const char *out;
} masks[] = {
    {"+14155550123", "+1415*****23"},
    {"+447911123456", "+4479******56"},
    {"+123456789012345", "+1234*********45"},
    {"+12345678", "+1234**78"},
    {"+1234567", "+1234*67"}, /* 8 characters: first five and last two */
    {"1234567", "*****67"},   /* 7 or fewer: only the last two */
    {"+123456", "*****56"},
    {"+12345", "****45"},
    {"123", "*23"},
    {"12", "12"},
    {"1", "1"},
    {"", ""},
};
#define NMASKS ((int)(sizeof(masks) / sizeof(masks[0])))

START_TEST(test_mask_phone)
{
    char out[64];
    memset(out, 'Z', sizeof(out));
    log_mask_phone(masks[_i].in, out, sizeof(out));
    ck_assert_str_eq(out, masks[_i].out);
    /* same length as the input: the mask hides digits, not the length */
    ck_assert_uint_eq(strlen(out), strlen(masks[_i].in));
}
END_TEST

START_TEST(test_mask_phone_truncates)
{
    char out[16];
    memset(out, 'Z', sizeof(out));
    log_mask_phone("+14155550123", out, 6);
    ck_assert_str_eq(out, "+1415");
    for (size_t i = 6; i < sizeof(out); i++)
        ck_assert_int_eq(out[i], 'Z'); /* nothing past outlen */

    memset(out, 'Z', sizeof(out));
    log_mask_phone("+14155550123", out, 8);
    ck_assert_str_eq(out, "+1415**");

    memset(out, 'Z', sizeof(out));
    log_mask_phone("+14155550123", out, 12);
    ck_assert_str_eq(out, "+1415*****2");

    memset(out, 'Z', sizeof(out));
    log_mask_phone("+14155550123", out, 13); /* exactly enough */
    ck_assert_str_eq(out, "+1415*****23");

    memset(out, 'Z', sizeof(out));
    log_mask_phone("+14155550123", out, 1);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(out[1], 'Z');

    memset(out, 'Z', sizeof(out));
    log_mask_phone("1234567", out, 3);
    ck_assert_str_eq(out, "**");

    memset(out, 'Z', sizeof(out));
    log_mask_phone("+14155550123", out, 0); /* nothing written at all */
    ck_assert_int_eq(out[0], 'Z');
}
END_TEST

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

static Suite *
units_suite(void)
{
    Suite *s = suite_create("units");
    TCase *tc;

    tc = tcase_create("headers");
    tcase_add_loop_test(tc, test_hop_by_hop_any_case, 0, NHOP);
    tcase_add_test(tc, test_end_to_end_headers);
    tcase_add_test(tc, test_drop_from_upstream);
    tcase_add_test(tc, test_framing_ok);
    tcase_add_test(tc, test_framing_bad);
    tcase_add_test(tc, test_headers_count);
    tcase_add_test(tc, test_json_type);
    suite_add_tcase(s, tc);

    tc = tcase_create("reqid");
    tcase_add_test(tc, test_reqid_valid);
    tcase_add_test(tc, test_reqid_generate);
    tcase_add_test(tc, test_reqid_choose);
    suite_add_tcase(s, tc);

    tc = tcase_create("route");
    tcase_add_loop_test(tc, test_route_match, 0, NROUTES);
    tcase_add_test(tc, test_route_info);
    tcase_add_test(tc, test_route_templates_sender);
    suite_add_tcase(s, tc);

    tc = tcase_create("mask_phone");
    tcase_add_loop_test(tc, test_mask_phone, 0, NMASKS);
    tcase_add_test(tc, test_mask_phone_truncates);
    suite_add_tcase(s, tc);

    tc = tcase_create("reply");
    tcase_add_test(tc, test_reply_error_body);
    tcase_add_test(tc, test_reply_error_body_extra);
    tcase_add_test(tc, test_reply_reason);
    suite_add_tcase(s, tc);

    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(units_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
