/* check_redis_link.c - unit tests for the pure parts of redis_link.c
 * (rlink_parse_url) and for the script table embedded at build time from
 * src/redis/prelude.lua and src/redis/<name>.lua (scripts/embed-lua.sh). */
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../integration/hx_redis.h" /* hx_redis_script_source() only */
#include "redis_link.h"
#include "redis_scripts.h"

static char host[256], err[128];
static int port, db;

static int
parse(const char *url)
{
    host[0] = err[0] = '\0';
    port = db = -1;
    return rlink_parse_url(url, host, sizeof(host), &port, &db, err,
                           sizeof(err));
}

START_TEST(tcp_urls)
{
    ck_assert_int_eq(parse("redis://127.0.0.1:6380/3"), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 6380);
    ck_assert_int_eq(db, 3);
    ck_assert_int_eq(parse("redis://localhost"), 0);
    ck_assert_str_eq(host, "127.0.0.1"); /* no lookup */
    ck_assert_int_eq(port, 6379);
    ck_assert_int_eq(db, 0);
    ck_assert_int_eq(parse("redis://10.0.0.7:1/"), 0);
    ck_assert_int_eq(port, 1);
    ck_assert_int_eq(db, 0);
    ck_assert_int_eq(parse("redis://10.0.0.7/15"), 0);
    ck_assert_int_eq(port, 6379);
    ck_assert_int_eq(db, 15);
    ck_assert_int_eq(parse("redis://[::1]:7000/2"), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 7000);
    ck_assert_int_eq(db, 2);
    ck_assert_int_eq(parse("redis://[::1]"), 0);
    ck_assert_int_eq(port, 6379);
}
END_TEST

START_TEST(unix_urls)
{
    ck_assert_int_eq(parse("unix:/run/redis/redis.sock"), 0);
    ck_assert_str_eq(host, "/run/redis/redis.sock");
    ck_assert_int_eq(port, 0);
    ck_assert_int_eq(db, 0);
    ck_assert_int_eq(parse("unix:"), -1);
    char longp[200];
    memset(longp, 'a', sizeof(longp));
    memcpy(longp, "unix:/", 6);
    longp[sizeof(longp) - 1] = '\0';
    ck_assert_int_eq(parse(longp), -1); /* past sun_path */
    ck_assert_str_eq(err, "unix: socket path too long");
}
END_TEST

START_TEST(bad_urls)
{
    static const char *const bad[] = {"",
                                      "redis://",
                                      "redis://:6379",
                                      "http://h",
                                      "h:6379",
                                      "rediss://h",
                                      "redis://h:0",
                                      "redis://h:65536",
                                      "redis://h:x",
                                      "redis://h:",
                                      "redis://h/x",
                                      "redis://h/-1",
                                      "redis://h/1/2",
                                      "redis://h/99999999999",
                                      "redis://h?db=1",
                                      "redis://h#x",
                                      "redis://[::1",
                                      "redis://[::1]x",
                                      "redis://a b",
                                      "redis://redis.internal",
                                      "redis://10.0.0.256",
                                      "redis://a:b:c",
                                      "redis://h:6379:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(parse(bad[i]) == -1, "accepted %s", bad[i]);
        ck_assert_msg(err[0] != '\0', "no reason for %s", bad[i]);
    }
    ck_assert_int_eq(
        rlink_parse_url(NULL, host, sizeof(host), &port, &db, err, sizeof(err)),
        -1);
}
END_TEST

/* The password comes from a file: one in the URL is refused, and the
 * reason never repeats it. */
START_TEST(password_in_url_refused_without_echo)
{
    static const char *const urls[] = {"redis://:s3cr3t@h:6379",
                                       "redis://user:s3cr3t@h",
                                       "redis://s3cr3t@h/1"};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        ck_assert_int_eq(parse(urls[i]), -1);
        ck_assert_ptr_null(strstr(err, "s3cr3t"));
        ck_assert_ptr_nonnull(strstr(err, "password_file"));
    }
}
END_TEST

START_TEST(host_too_long_for_the_buffer)
{
    char small[4];
    char small8[8];
    ck_assert_int_eq(rlink_parse_url("redis://1.2.3.45", small8,
                                     sizeof(small8), &port, &db, err,
                                     sizeof(err)),
                     -1);
    ck_assert_int_eq(rlink_parse_url("redis://1.2.3.4", small8, sizeof(small8),
                                     &port, &db, err, sizeof(err)),
                     0);
    ck_assert_str_eq(small8, "1.2.3.4");
    ck_assert_int_eq(rlink_parse_url("redis://abcd", small, sizeof(small),
                                     &port, &db, err, sizeof(err)),
                     -1);
    /* a reason longer than its buffer is cut, still terminated */
    char tiny[5];
    ck_assert_int_eq(rlink_parse_url("ftp://x", host, sizeof(host), &port, &db,
                                     tiny, sizeof(tiny)),
                     -1);
    ck_assert_int_eq(strlen(tiny), 4);
}
END_TEST

/* Every entry of the generated table is there, named after its file, in
 * the enum's order (designated initializers would leave a hole NULL). */
START_TEST(script_table_complete)
{
    static const char *const names[RS_COUNT] = {
        [RS_IDEM_BEGIN] = "idem_begin",   [RS_IDEM_SENT] = "idem_sent",
        [RS_IDEM_FINISH] = "idem_finish", [RS_WIN_LEARN] = "win_learn",
        [RS_WIN_DECIDE] = "win_decide",   [RS_WIN_GET] = "win_get",
        [RS_WIN_FORGET] = "win_forget",   [RS_RL_RESERVE] = "rl_reserve",
        [RS_RL_PAUSE] = "rl_pause",       [RS_RL_RESUME] = "rl_resume",
        [RS_RL_DEPART] = "rl_depart",     [RS_REF_DECIDE] = "ref_decide",
        [RS_REF_LEARN] = "ref_learn",     [RS_REF_SENDERS] = "ref_senders",
        [RS_REF_LIST] = "ref_list",       [RS_REF_FORGET] = "ref_forget",
        [RS_REF_UNPROBE] = "ref_unprobe"};
    for (int i = 0; i < RS_COUNT; i++) {
        ck_assert_ptr_nonnull(redis_scripts[i].name);
        ck_assert_ptr_nonnull(redis_scripts[i].source);
        ck_assert_str_eq(redis_scripts[i].name, names[i]);
        size_t n = strlen(redis_scripts[i].source);
        ck_assert_uint_gt(n, 0);
        /* each line ends in a newline, as in the file */
        ck_assert_int_eq(redis_scripts[i].source[n - 1], '\n');
    }
}
END_TEST

/* Each source is the prelude's lines then its file's, as the tests that
 * run the files build it: what they test is what the gateway loads. */
START_TEST(each_source_is_the_prelude_then_its_file)
{
    for (int i = 0; i < RS_COUNT; i++) {
        char *text = hx_redis_script_source(redis_scripts[i].name);
        ck_assert_msg(text != NULL, "cannot read src/redis/%s.lua",
                      redis_scripts[i].name);
        ck_assert_str_eq(redis_scripts[i].source, text);
        ck_assert_int_eq(strncmp(text, "-- prelude.lua - ", 17), 0);
        free(text);
    }
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("redis_link");
    TCase *tc = tcase_create("url");
    tcase_add_test(tc, tcp_urls);
    tcase_add_test(tc, unix_urls);
    tcase_add_test(tc, bad_urls);
    tcase_add_test(tc, password_in_url_refused_without_echo);
    tcase_add_test(tc, host_too_long_for_the_buffer);
    suite_add_tcase(s, tc);
    tc = tcase_create("scripts");
    tcase_add_test(tc, script_table_complete);
    tcase_add_test(tc, each_source_is_the_prelude_then_its_file);
    suite_add_tcase(s, tc);
    return s;
}
