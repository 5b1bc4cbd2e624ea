/* check_headers.c - unit tests of headers.c: header names, and the request
 * head lexer fed whole, byte by byte and in every two-piece split; which
 * headers are hop-by-hop, the framing check, JSON content types. */
#include "unit.h"
#include <ctype.h>
#include <stdio.h>
#include <sys/queue.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>

#include "headers.h"

#define MAXB 4096

/* Lexes text fed in pieces of step bytes (0 = at once); the result, with
 * *used_total = bytes taken in all. */
static enum headers_lex_result
lex_in_steps(struct headers_lexer *lx, const char *text, size_t len,
             size_t step, size_t *used_total)
{
    headers_lex_init(lx, MAXB);
    size_t off = 0;
    enum headers_lex_result r = HEADERS_LEX_MORE;
    while (off < len) {
        size_t n = step == 0 || len - off < step ? len - off : step, used;
        r = headers_lex(lx, text + off, n, &used);
        off += used;
        if (r != HEADERS_LEX_MORE)
            break;
    }
    *used_total = off;
    return r;
}

/* Same result whatever the pieces: whole, byte by byte, every split. */
static enum headers_lex_result
lex_all_ways(const char *text, struct headers_lexer *out)
{
    size_t len = strlen(text), used0, used;
    enum headers_lex_result r0 = lex_in_steps(out, text, len, 0, &used0);
    struct headers_lexer lx;
    ck_assert_int_eq(lex_in_steps(&lx, text, len, 1, &used), r0);
    ck_assert_uint_eq(used, used0);
    ck_assert_ptr_eq(lx.refusal, out->refusal);
    for (size_t cut = 1; cut < len; cut++) {
        size_t u1, u2 = 0;
        headers_lex_init(&lx, MAXB);
        enum headers_lex_result r = headers_lex(&lx, text, cut, &u1);
        if (r == HEADERS_LEX_MORE)
            r = headers_lex(&lx, text + cut, len - cut, &u2);
        ck_assert_msg(r == r0, "split at %zu", cut);
        ck_assert_uint_eq(u1 + u2, used0);
        ck_assert_ptr_eq(lx.refusal, out->refusal);
    }
    return r0;
}

static void
assert_refused(const char *text, int status, const char *code)
{
    struct headers_lexer lx;
    ck_assert_msg(lex_all_ways(text, &lx) == HEADERS_LEX_REFUSED, "%s", text);
    ck_assert_int_eq(lx.refusal->status, status);
    ck_assert_str_eq(lx.refusal->code, code);
    ck_assert_ptr_nonnull(lx.refusal->sentence);
}

START_TEST(tchar_is_rfc9110)
{
    const char *yes = "!#$%&'*+-.^_`|~09azAZ";
    for (const char *p = yes; *p; p++)
        ck_assert(headers_is_tchar((unsigned char)*p));
    const char *no = " \t\"(),/:;<=>?@[\\]{}\x7f\x01";
    for (const char *p = no; *p; p++)
        ck_assert_msg(!headers_is_tchar((unsigned char)*p), "%02x", *p);
    ck_assert(!headers_is_tchar(0));
    ck_assert(!headers_is_tchar(0x80));
    ck_assert(!headers_is_tchar(0xff));
}
END_TEST

START_TEST(check_names_refuses_what_is_not_a_token)
{
    struct evkeyvalq h;
    TAILQ_INIT(&h);
    evhttp_add_header(&h, "Content-Type", "x");
    evhttp_add_header(&h, "X-A_b.c~1", "x");
    ck_assert_ptr_null(headers_check_names(&h));
    evhttp_add_header(&h, "Content-Length ", "61");
    ck_assert_ptr_nonnull(headers_check_names(&h));
    evhttp_clear_headers(&h);
    static const char *const bad[] = {
        "Transfer-Encoding\t", "", "A B", "a(b)", "x\x01y", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct evkeyval *kv = calloc(1, sizeof(*kv));
        kv->key = strdup(bad[i]);
        kv->value = strdup("v");
        TAILQ_INSERT_TAIL(&h, kv, next);
        ck_assert_msg(headers_check_names(&h) != NULL, "%zu", i);
        evhttp_clear_headers(&h);
    }
}
END_TEST

START_TEST(good_heads_pass_and_say_what_they_hold)
{
    struct headers_lexer lx;
    const char *g = "POST /api/user/whatsapp/send?x=1 HTTP/1.1\r\n"
                    "Host: x\r\nContent-Length:  12 \r\n"
                    "X-Request-Id:   abc-1\t\r\nExpect: 100-Continue\r\n"
                    "X-Obs: caf\xc3\xa9\t!\r\n\r\n{\"a\":1}...";
    ck_assert_int_eq(lex_all_ways(g, &lx), HEADERS_LEX_DONE);
    ck_assert_str_eq(lx.method, "POST");
    ck_assert(lx.method_known);
    ck_assert_str_eq(lx.path, "/api/user/whatsapp/send");
    ck_assert(lx.path_fits);
    ck_assert_int_eq(lx.minor, 1);
    ck_assert_uint_eq(lx.content_length, 12);
    ck_assert_str_eq(lx.request_id, "abc-1");
    ck_assert_uint_eq(lx.head_len, strlen(g) - strlen("{\"a\":1}..."));

    /* bare LF lines, HTTP/1.0, chunked, a CR kept in the target */
    const char *l = "GET /healthz HTTP/1.0\nTransfer-Encoding: Chunked\n\n";
    ck_assert_int_eq(lex_all_ways(l, &lx), HEADERS_LEX_DONE);
    ck_assert_int_eq(lx.minor, 0);
    ck_assert_int_eq(lex_all_ways("GET /a\rb HTTP/1.1\r\n\r\n", &lx),
                     HEADERS_LEX_DONE);
    ck_assert_str_eq(lx.path, "/a\rb");
    /* trailing spaces after the version, as evhttp allows */
    ck_assert_int_eq(lex_all_ways("GET / HTTP/1.1  \r\n\r\n", &lx),
                     HEADERS_LEX_DONE);
    /* an Expect without a body, a HEAD without one, an empty value */
    ck_assert_int_eq(
        lex_all_ways("GET / HTTP/1.1\r\nExpect: x\r\nX-E:\r\n\r\n", &lx),
        HEADERS_LEX_DONE);
    ck_assert_int_eq(
        lex_all_ways("HEAD / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &lx),
        HEADERS_LEX_DONE);
    /* a long path does not fit and is not kept */
    char longp[600] = "GET /";
    memset(longp + 5, 'p', 400);
    strcpy(longp + 405, " HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(lex_all_ways(longp, &lx), HEADERS_LEX_DONE);
    ck_assert(!lx.path_fits);
    /* a too long X-Request-Id is not kept */
    char longid[400] = "GET / HTTP/1.1\r\nX-Request-Id: ";
    memset(longid + strlen(longid), 'i', 200);
    strcat(longid, "\r\n\r\n");
    ck_assert_int_eq(lex_all_ways(longid, &lx), HEADERS_LEX_DONE);
    ck_assert_str_eq(lx.request_id, "");
}
END_TEST

START_TEST(names_that_are_not_tokens_are_refused)
{
    static const char *const names[] = {"Content-Length : 5",
                                        "Content-Length\t: 5",
                                        "Transfer-Encoding : x",
                                        "A B: c",
                                        "a(b): c",
                                        "x\x01y: z",
                                        ": empty",
                                        "No colon",
                                        "caf\xc3\xa9: x",
                                        "Content-Length\r: 5"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char req[256];
        snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n",
                 names[i]);
        assert_refused(req, 400, "BAD_REQUEST");
    }
    /* obs-fold, a control byte or bare CR in a value, a CR line start */
    assert_refused("GET / HTTP/1.1\r\nHost: x\r\n more\r\n\r\n", 400,
                   "BAD_REQUEST");
    assert_refused("GET / HTTP/1.1\r\nHost: x\r\n\tmore\r\n\r\n", 400,
                   "BAD_REQUEST");
    assert_refused("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400, "BAD_REQUEST");
    assert_refused("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", 400, "BAD_REQUEST");
    assert_refused("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 400, "BAD_REQUEST");
    static const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    struct headers_lexer lx;
    size_t used;
    headers_lex_init(&lx, MAXB);
    ck_assert_int_eq(headers_lex(&lx, nul, sizeof(nul) - 1, &used),
                     HEADERS_LEX_REFUSED);
    ck_assert_int_eq(lx.refusal->status, 400);
    assert_refused("GET / HTTP/1.1\r\n\rX: 1\r\n\r\n", 400, "BAD_REQUEST");
}
END_TEST

START_TEST(request_lines_and_versions)
{
    static const struct {
        const char *line;
        int status;
    } c[] = {
        {"GET /x HTTP/1.99", 400},
        {"GET /x HTTP/1.2", 505},
        {"GET /x HTTP/0.9", 505},
        {"GET /x HTTP/2.0", 505},
        {"GET /x HTTP/1.-1", 400},
        {"GET /x http/1.1", 400},
        {"GET /x HTTP/1.1x", 400},
        {"GET /x HTTP/1.1000", 400},
        {"GET /x", 400},
        {"GET", 400},
        {"", 400},
        {"GET  /x HTTP/1.1", 400},
        {" GET /x HTTP/1.1", 400},
        {"G(T /x HTTP/1.1", 400},
        {"GET /x HTTP/1.1\r", 400},
        {"PROPFIND /x HTTP/1.1", 405},
        {"get /x HTTP/1.1", 405},
        {"AVERYVERYLONGMETHODNAME /x HTTP/1.1", 405},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char req[256];
        snprintf(req, sizeof(req), "%s\r\nHost: x\r\n\r\n", c[i].line);
        struct headers_lexer lx;
        ck_assert_msg(lex_all_ways(req, &lx) == HEADERS_LEX_REFUSED, "%s",
                      c[i].line);
        ck_assert_msg(lx.refusal->status == c[i].status, "%s: %d", c[i].line,
                      lx.refusal->status);
    }
    struct headers_lexer lx;
    lex_all_ways("PROPFIND /healthz?a HTTP/1.1\r\n\r\n", &lx);
    ck_assert_ptr_eq(lx.refusal, &headers_unknown_method);
    ck_assert_str_eq(lx.path, "/healthz");
    /* a NUL in the request line */
    size_t used;
    headers_lex_init(&lx, MAXB);
    ck_assert_int_eq(headers_lex(&lx, "GET /\0 HTTP/1.1\r\n\r\n", 20, &used),
                     HEADERS_LEX_REFUSED);
    ck_assert_uint_eq(used, 6);
}
END_TEST

START_TEST(framing_is_checked_at_the_blank_line)
{
    static const struct {
        const char *headers;
        int status;
        const char *code;
    } c[] = {
        {"Content-Length: 4\r\nTransfer-Encoding: chunked", 400, "BAD_REQUEST"},
        {"Content-Length: 2\r\nContent-Length: 2", 400, "BAD_REQUEST"},
        {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", 400,
         "BAD_REQUEST"},
        {"Transfer-Encoding: gzip, chunked", 400, "BAD_REQUEST"},
        {"Transfer-Encoding:\tchunked", 400, "BAD_REQUEST"},
        {"Content-Length: +2", 400, "BAD_REQUEST"},
        {"Content-Length: 2 2", 400, "BAD_REQUEST"},
        {"Content-Length:", 400, "BAD_REQUEST"},
        {"Content-Length: 1234567890123456789", 400, "BAD_REQUEST"},
        {"Content-Length: 4097", 413, "PAYLOAD_TOO_LARGE"},
        {"Expect: 200-ok\r\nContent-Length: 2", 417, "EXPECTATION_FAILED"},
        {"Expect: 100-continue, x\r\nTransfer-Encoding: chunked", 417,
         "EXPECTATION_FAILED"},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char req[512];
        snprintf(req, sizeof(req), "POST /x HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n",
                 c[i].headers);
        assert_refused(req, c[i].status, c[i].code);
    }
    /* a body on HEAD or TRACE would be read as the next request */
    assert_refused("HEAD /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 400,
                   "BAD_REQUEST");
    assert_refused("TRACE /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                   400, "BAD_REQUEST");
    /* an HTTP/1.0 Expect is ignored, as evhttp ignores it */
    struct headers_lexer lx;
    ck_assert_int_eq(lex_all_ways("POST /x HTTP/1.0\r\nExpect: x\r\n"
                                  "Content-Length: 2\r\n\r\n",
                                  &lx),
                     HEADERS_LEX_DONE);
    ck_assert_int_eq(lex_all_ways("POST /x HTTP/1.1\r\nContent-Length: 4096"
                                  "\r\n\r\n",
                                  &lx),
                     HEADERS_LEX_DONE);
}
END_TEST

START_TEST(the_head_is_bounded)
{
    size_t n = HEADERS_HEAD_MAX + 100;
    char *req = malloc(n + 1);
    memcpy(req, "GET / HTTP/1.1\r\nX: ", 19);
    memset(req + 19, 'a', n - 19);
    req[n] = '\0';
    struct headers_lexer lx;
    size_t used;
    ck_assert_int_eq(lex_in_steps(&lx, req, n, 0, &used), HEADERS_LEX_REFUSED);
    ck_assert_int_eq(lx.refusal->status, 431);
    ck_assert_uint_eq(used, HEADERS_HEAD_MAX + 1);
    ck_assert_int_eq(lex_in_steps(&lx, req, n, 7, &used), HEADERS_LEX_REFUSED);
    ck_assert_uint_eq(used, HEADERS_HEAD_MAX + 1);
    /* exactly at the limit passes */
    size_t at = HEADERS_HEAD_MAX;
    memcpy(req + at - 4, "\r\n\r\n", 4);
    ck_assert_int_eq(lex_in_steps(&lx, req, at, 0, &used), HEADERS_LEX_DONE);
    free(req);
    /* once done or refused, nothing more is taken */
    ck_assert_int_eq(headers_lex(&lx, "x", 1, &used), HEADERS_LEX_DONE);
    ck_assert_uint_eq(used, 0);
}
END_TEST

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

Suite *
unit_suite(void)
{
    Suite *s = suite_create("headers");
    TCase *tc = tcase_create("lexer");
    tcase_add_test(tc, tchar_is_rfc9110);
    tcase_add_test(tc, check_names_refuses_what_is_not_a_token);
    tcase_add_test(tc, good_heads_pass_and_say_what_they_hold);
    tcase_add_test(tc, names_that_are_not_tokens_are_refused);
    tcase_add_test(tc, request_lines_and_versions);
    tcase_add_test(tc, framing_is_checked_at_the_blank_line);
    tcase_add_test(tc, the_head_is_bounded);
    suite_add_tcase(s, tc);

    tc = tcase_create("headers");
    tcase_add_loop_test(tc, test_hop_by_hop_any_case, 0, NHOP);
    tcase_add_test(tc, test_end_to_end_headers);
    tcase_add_test(tc, test_drop_from_upstream);
    tcase_add_test(tc, test_framing_ok);
    tcase_add_test(tc, test_framing_bad);
    tcase_add_test(tc, test_headers_count);
    tcase_add_test(tc, test_json_type);
    suite_add_tcase(s, tc);
    return s;
}
