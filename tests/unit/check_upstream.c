/* check_upstream.c - unit tests for upstream.c's reading of an answer's
 * header lines (upstream_parse_header): status lines, fields, folding,
 * odd whitespace, control bytes, bounds. Every line is parsed from a heap
 * copy of exactly its length, so a read past it is an error under ASan
 * and valgrind. No sockets. What spans lines (1xx blocks, Content-Length
 * fields that disagree, trailers, the size cap) is tested end to end in
 * tests/integration/upstream_misbehaviour.c. */
#include "unit.h"
#include <stdlib.h>
#include <string.h>

#include "upstream.h"

static enum upstream_header_kind
parse_n(const char *text, size_t len, struct upstream_header_line *h)
{
    char *line = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(line);
    memcpy(line, text, len);
    enum upstream_header_kind k = upstream_parse_header(line, len, h);
    /* what h points to is the line: report offsets before freeing it */
    if (h->name != NULL)
        h->name = text + (h->name - line);
    if (h->value != NULL)
        h->value = text + (h->value - line);
    free(line);
    return k;
}

static enum upstream_header_kind
parse(const char *text, struct upstream_header_line *h)
{
    return parse_n(text, strlen(text), h);
}

static void
expect_field(const char *text, const char *name, const char *value)
{
    struct upstream_header_line h;
    ck_assert_msg(parse(text, &h) == UPSTREAM_HDR_FIELD, "%s", text);
    ck_assert_msg(h.name_len == strlen(name) &&
                      memcmp(h.name, name, h.name_len) == 0,
                  "%s: name %.*s", text, (int)h.name_len, h.name);
    ck_assert_msg(h.value_len == strlen(value) &&
                      memcmp(h.value, value, h.value_len) == 0,
                  "%s: value [%.*s]", text, (int)h.value_len, h.value);
}

static void
expect_invalid_n(const char *text, size_t len)
{
    struct upstream_header_line h;
    ck_assert_msg(parse_n(text, len, &h) == UPSTREAM_HDR_INVALID,
                  "[%.*s] accepted", (int)len, text);
}

static void
expect_invalid(const char *text)
{
    expect_invalid_n(text, strlen(text));
}

/* ---- status lines ---- */

START_TEST(status_lines_give_their_three_digits)
{
    static const struct {
        const char *line;
        int status;
    } ok[] = {
        {"HTTP/1.1 200 OK\r\n", 200},
        {"HTTP/2 200 \r\n", 200},  /* libcurl's HTTP/2 status line */
        {"HTTP/1.1 204\r\n", 204}, /* no reason phrase */
        {"HTTP/1.1 100 Continue\r\n", 100},
        {"HTTP/1.0 429 Too Many Requests\r\n", 429},
        {"HTTP/1.1 599 x\n", 599},
        /* any three digits: the range is checked when the answer ends */
        {"HTTP/1.1 999 Weird\r\n", 999},
        {"HTTP/1.1 000 Zero", 0},
        /* a status line wherever it comes: a 1xx block is followed by the
         * final one */
        {"HTTP/1.1 103 Early Hints\r\n", 103},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct upstream_header_line h;
        ck_assert_msg(parse(ok[i].line, &h) == UPSTREAM_HDR_STATUS, "%s",
                      ok[i].line);
        ck_assert_int_eq(h.status, ok[i].status);
        ck_assert_ptr_null(h.name);
    }
}
END_TEST

START_TEST(bad_status_lines_and_101_are_invalid)
{
    static const char *const bad[] = {
        "HTTP/1.1 101 Switching Protocols\r\n", /* no upgrade was asked for */
        "HTTP/1.1 20 OK\r\n",
        "HTTP/1.1 2000 OK\r\n",
        "HTTP/1.1 2x0 OK\r\n",
        "HTTP/1.1 200OK\r\n",
        "HTTP/1.1 200\tOK\r\n",
        "HTTP/1.1  200 OK\r\n",
        "HTTP/1.1 -20 OK\r\n",
        "HTTP/1.1\r\n",
        "HTTP/1.1 \r\n",
        "HTTP/1.1 20\r\n",
        "HTTP/",
        /* not a status line, and no colon either */
        "http/1.1 200 OK\r\n",
        "HTTP 200 OK\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_invalid(bad[i]);
    /* the version is not read: "HTTP/", a space, three digits */
    struct upstream_header_line h;
    ck_assert_int_eq(parse("HTTP/ 200", &h), UPSTREAM_HDR_STATUS);
    ck_assert_int_eq(h.status, 200);
}
END_TEST

/* ---- the blank line ---- */

START_TEST(the_blank_line_ends_a_block)
{
    struct upstream_header_line h;
    ck_assert_int_eq(parse("\r\n", &h), UPSTREAM_HDR_END);
    ck_assert_int_eq(parse("\n", &h), UPSTREAM_HDR_END);
    ck_assert_int_eq(parse("\r", &h), UPSTREAM_HDR_END);
    ck_assert_int_eq(parse("\r\n\r\n", &h), UPSTREAM_HDR_END);
    ck_assert_int_eq(parse_n("", 0, &h), UPSTREAM_HDR_END);
    /* whitespace is not blank: a continuation of nothing in particular */
    ck_assert_int_eq(parse(" \r\n", &h), UPSTREAM_HDR_FOLD);
    ck_assert_uint_eq(h.value_len, 0);
}
END_TEST

/* ---- fields ---- */

START_TEST(fields_split_at_the_first_colon_without_ows)
{
    expect_field("Content-Type: application/json\r\n", "Content-Type",
                 "application/json");
    expect_field("Content-Length: 16\r\n", "Content-Length", "16");
    expect_field("X-A:   spaced\t \r\n", "X-A", "spaced");
    expect_field("X-B:\r\n", "X-B", "");
    expect_field("X-B2: \t \r\n", "X-B2", "");
    expect_field("X-C:a", "X-C", "a"); /* no line end */
    expect_field("X-D: a  b\tc\r\n", "X-D", "a  b\tc");
    expect_field("X-E: a\r\r\n", "X-E", "a"); /* CRs at the end go */
    expect_field("X-F: a\n", "X-F", "a");
    expect_field("X-G: caf\xc3\xa9 \xff\r\n", "X-G", "caf\xc3\xa9 \xff");
    expect_field("X-H: a:b: c\r\n", "X-H", "a:b: c");
    expect_field("x-lower: v\r\n", "x-lower", "v");
    expect_field("!#$%&'*+-.^_`|~09azAZ: tchars\r\n", "!#$%&'*+-.^_`|~09azAZ",
                 "tchars");
    /* a date holds colons and commas */
    expect_field("Retry-After: Thu, 01 Jan 2026 00:00:10 GMT\r\n",
                 "Retry-After", "Thu, 01 Jan 2026 00:00:10 GMT");
    expect_field("Retry-After:  120 \r\n", "Retry-After", "120");
    expect_field("retry-after:0\r\n", "retry-after", "0");
}
END_TEST

/* Reading a line is not relaying it: hop-by-hop fields are fields like
 * any other here; forward.c leaves them out of what the caller gets. */
START_TEST(hop_by_hop_fields_are_read_like_any_other)
{
    expect_field("Connection: close\r\n", "Connection", "close");
    expect_field("Keep-Alive: timeout=5, max=100\r\n", "Keep-Alive",
                 "timeout=5, max=100");
    expect_field("Transfer-Encoding: chunked\r\n", "Transfer-Encoding",
                 "chunked");
    expect_field("Trailer: X-Checksum\r\n", "Trailer", "X-Checksum");
    expect_field("Upgrade: h2c\r\n", "Upgrade", "h2c");
    expect_field("Proxy-Authenticate: Basic\r\n", "Proxy-Authenticate",
                 "Basic");
}
END_TEST

START_TEST(names_that_are_not_tokens_are_invalid)
{
    expect_invalid("Bad Name: v\r\n");
    expect_invalid("Bad\tName: v\r\n");
    expect_invalid("Name : v\r\n"); /* no whitespace before the colon */
    expect_invalid("Name\t: v\r\n");
    expect_invalid(": v\r\n");
    expect_invalid(":\r\n");
    expect_invalid("NoColon\r\n");
    expect_invalid("NoColon");
    expect_invalid("(paren): v\r\n");
    expect_invalid("a/b: v\r\n");
    expect_invalid("a@b: v\r\n");
    expect_invalid("a\"b: v\r\n");
    expect_invalid("caf\xc3\xa9: v\r\n");
    expect_invalid("A\x7f: v\r\n");
    expect_invalid_n("A\0B: v\r\n", 8);
    expect_invalid("\rX: v\r\n");
}
END_TEST

START_TEST(control_bytes_in_values_are_invalid)
{
    expect_invalid("X: a\rb\r\n"); /* a bare CR inside */
    expect_invalid("X: a\nb\r\n");
    expect_invalid("X: a\x01\r\n");
    expect_invalid("X: \x1f\r\n");
    expect_invalid("X: a\x7f\r\n");
    expect_invalid("X: \x1b[31m\r\n");
    expect_invalid_n("X: a\0b\r\n", 8);
    expect_invalid_n("X: ab\0\r\n", 8);
    /* HTAB is the one control byte a value may hold */
    expect_field("X: a\tb\r\n", "X", "a\tb");
}
END_TEST

/* ---- obsolete line folding ---- */

START_TEST(continuation_lines_are_folds_without_ows)
{
    struct upstream_header_line h;
    ck_assert_int_eq(parse("   b\r\n", &h), UPSTREAM_HDR_FOLD);
    ck_assert(h.value_len == 1 && h.value[0] == 'b');
    ck_assert_ptr_null(h.name);
    ck_assert_int_eq(parse("\t more  words \t\r\n", &h), UPSTREAM_HDR_FOLD);
    ck_assert(h.value_len == 11 && memcmp(h.value, "more  words", 11) == 0);
    ck_assert_int_eq(parse(" Name: not a field\r\n", &h), UPSTREAM_HDR_FOLD);
    ck_assert(h.value_len == 17 &&
              memcmp(h.value, "Name: not a field", 17) == 0);
    expect_invalid(" a\x01\r\n");
    expect_invalid("\ta\rb\r\n");
    expect_invalid_n(" a\0\r\n", 5);
}
END_TEST

/* ---- bounds ---- */

/* Every prefix of a valid block's lines is read within its length:
 * under ASan or valgrind a read past the copy would fail the test. */
START_TEST(every_prefix_is_read_within_its_length)
{
    static const char *const lines[] = {
        "HTTP/1.1 200 OK\r\n",
        "Content-Type: application/json\r\n",
        "Retry-After: Thu, 01 Jan 2026 00:00:10 GMT\r\n",
        "   folded value\t\r\n",
        "X: a\tb\r\n",
        "\r\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        size_t n = strlen(lines[i]);
        for (size_t k = 0; k <= n; k++) {
            struct upstream_header_line h;
            enum upstream_header_kind kind = parse_n(lines[i], k, &h);
            ck_assert(kind >= UPSTREAM_HDR_STATUS &&
                      kind <= UPSTREAM_HDR_INVALID);
            if (h.name != NULL)
                ck_assert(h.name + h.name_len <= lines[i] + k);
            if (h.value != NULL)
                ck_assert(h.value + h.value_len <= lines[i] + k);
        }
    }
}
END_TEST

START_TEST(long_lines_are_read_whole)
{
    size_t n = 64 * 1024;
    char *line = malloc(n + 16);
    ck_assert_ptr_nonnull(line);
    memcpy(line, "X-Long: ", 8);
    memset(line + 8, 'v', n);
    memcpy(line + 8 + n, "\r\n", 2);
    struct upstream_header_line h;
    ck_assert_int_eq(parse_n(line, n + 10, &h), UPSTREAM_HDR_FIELD);
    ck_assert_uint_eq(h.value_len, n);
    ck_assert_uint_eq(h.name_len, 6);
    /* a long name is a name */
    memset(line, 'N', n);
    memcpy(line + n, ": v\r\n", 5);
    ck_assert_int_eq(parse_n(line, n + 5, &h), UPSTREAM_HDR_FIELD);
    ck_assert_uint_eq(h.name_len, n);
    /* and a long line with no colon is not a field */
    ck_assert_int_eq(parse_n(line, n, &h), UPSTREAM_HDR_INVALID);
    free(line);
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("upstream");
    TCase *tc = tcase_create("header_lines");
    tcase_add_test(tc, status_lines_give_their_three_digits);
    tcase_add_test(tc, bad_status_lines_and_101_are_invalid);
    tcase_add_test(tc, the_blank_line_ends_a_block);
    tcase_add_test(tc, fields_split_at_the_first_colon_without_ows);
    tcase_add_test(tc, hop_by_hop_fields_are_read_like_any_other);
    tcase_add_test(tc, names_that_are_not_tokens_are_invalid);
    tcase_add_test(tc, control_bytes_in_values_are_invalid);
    tcase_add_test(tc, continuation_lines_are_folds_without_ows);
    tcase_add_test(tc, every_prefix_is_read_within_its_length);
    tcase_add_test(tc, long_lines_are_read_whole);
    suite_add_tcase(s, tc);
    return s;
}
