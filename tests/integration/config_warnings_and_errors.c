/* config_warnings_and_errors.c - the configuration through the real wagate
 * (issue 8, A11 and A12): the cleartext warning at start and on reload,
 * userinfo redacted from --check-config and from the start line, config
 * errors on one printable line. No request is sent: 192.0.2.1 (TEST-NET-1)
 * only appears in a URL and is never contacted. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define PASSWORD "pw-9f3c71"
#define WARNING "is cleartext http://"

static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;

static char *
wagate_bin(void)
{
    char *b = getenv("WAGATE_BIN");
    return b ? b : "./wagate";
}

static int
count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Starts wagate on 127.0.0.1:0 with base_url; conf receives the path. */
static void
start_with_url(struct proc *gw, const char *url, char *conf, size_t n)
{
    char text[512];
    char *env[] = {keyenv, NULL};
    snprintf(text, sizeof(text),
             "{\"listen\": [\"127.0.0.1:0\"], \"upstream\": {\"base_url\": "
             "\"%s\"}, \"drain_timeout_ms\": 1000}\n",
             url);
    write_temp(text, conf, n);
    char *argv[] = {wagate_bin(), "-c", conf, NULL};
    ck_assert_int_eq(proc_start(gw, argv, env), 0);
}

/* SIGHUP, then waits for the n-th "configuration reloaded". */
static void
reload(struct proc *gw, int n)
{
    kill(gw->pid, SIGHUP);
    for (int i = 0; i < 600; i++) { /* at most 3 s, looking every 5 ms */
        char *log = proc_log(gw);
        int seen = count(log, "configuration reloaded");
        free(log);
        if (seen >= n)
            return;
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
    ck_abort_msg("no reload %d", n);
}

START_TEST(cleartext_remote_warns_at_start_and_reload)
{
    struct proc gw;
    char conf[64];
    start_with_url(&gw, "http://alice:" PASSWORD "@192.0.2.1:9/v1", conf,
                   sizeof(conf));
    ck_assert(proc_wait_log(&gw, "started; upstream", 5000));
    char *log = proc_log(&gw);
    ck_assert_int_eq(count(log, WARNING), 1);
    ck_assert_ptr_nonnull(strstr(log, "http://<redacted>@192.0.2.1:9/v1"));
    ck_assert_ptr_nonnull(
        strstr(log, "started; upstream http://<redacted>@192.0.2.1:9/v1"));
    free(log);
    reload(&gw, 1);
    reload(&gw, 2);
    log = proc_log(&gw);
    ck_assert_int_eq(count(log, WARNING), 3);
    ck_assert_ptr_null(strstr(log, PASSWORD));
    ck_assert_ptr_null(strstr(log, "alice"));
    ck_assert_ptr_null(strstr(log, HARNESS_UPSTREAM_KEY));
    free(log);
    ck_assert_int_eq(proc_stop(&gw, 5000), 0);
    unlink(conf);
}
END_TEST

/* the sandbox on loopback (what every other suite uses), https anywhere */
START_TEST(loopback_and_https_do_not_warn)
{
    static const char *const urls[] = {"http://127.0.0.1", "http://localhost",
                                       "http://[::1]", "https://192.0.2.1"};
    struct proc sb, gw;
    ck_assert_int_eq(harness_start_sandbox(&sb, "0", NULL), 0);
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        char url[64], conf[64];
        snprintf(url, sizeof(url), "%s:%d/v1", urls[i], sb.port);
        start_with_url(&gw, url, conf, sizeof(conf));
        /* the warning comes before "listening on": its absence is final */
        reload(&gw, 1);
        char *log = proc_log(&gw);
        ck_assert_msg(strstr(log, WARNING) == NULL, "%s: %s", url, log);
        ck_assert_ptr_nonnull(strstr(log, "started; upstream"));
        free(log);
        ck_assert_int_eq(proc_stop(&gw, 5000), 0);
        unlink(conf);
    }
    ck_assert_int_eq(hx_sandbox_count(sb.port), 0);
    ck_assert_int_eq(proc_stop(&sb, 5000), 0);
}
END_TEST

START_TEST(check_config_redacts_userinfo_and_warns)
{
    char conf[64], out[8192];
    char *env[] = {keyenv, NULL};
    write_temp("{\"upstream\": {\"base_url\": \"http://alice:" PASSWORD
               "@192.0.2.1:9/v1/\"}}",
               conf, sizeof(conf));
    char *argv[] = {wagate_bin(), "--check-config", "-c", conf, NULL};
    ck_assert_int_eq(proc_run(argv, env, out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"http://<redacted>@192.0.2.1:9/v1\""));
    ck_assert_ptr_nonnull(strstr(out, "warning: upstream.base_url " WARNING));
    ck_assert_ptr_null(strstr(out, PASSWORD));
    ck_assert_ptr_null(strstr(out, "alice"));
    unlink(conf);
    write_temp("{\"upstream\": {\"base_url\": \"https://u:" PASSWORD
               "@h.example\"}}",
               conf, sizeof(conf));
    ck_assert_int_eq(proc_run(argv, env, out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"https://<redacted>@h.example\""));
    ck_assert_ptr_null(strstr(out, PASSWORD));
    ck_assert_ptr_null(strstr(out, "cleartext"));
    unlink(conf);
}
END_TEST

/* {"\n":{}} and friends: what wagate prints is one line, no raw escape */
START_TEST(config_error_is_one_printable_line)
{
    static const char *const texts[] = {
        "{\"\\n\\u001b[2J\": {}}",
        "{\"log\": {\"\\r\": 1}}",
        "{\"clients\": [{\"\\n\": 1}]}",
        "{\"log\\u0000\": {}}",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        char conf[64], out[4096];
        write_temp(texts[i], conf, sizeof(conf));
        char *argv[] = {wagate_bin(), "--check-config", "-c", conf, NULL};
        ck_assert_int_eq(proc_run(argv, NULL, out, sizeof(out)), 2);
        size_t n = strlen(out);
        ck_assert_uint_gt(n, 0);
        ck_assert_msg(out[n - 1] == '\n' && strchr(out, '\n') == out + n - 1,
                      "not one line: %s", out);
        for (size_t j = 0; j + 1 < n; j++)
            ck_assert_msg((unsigned char)out[j] >= 0x20 && out[j] != 0x7f,
                          "byte 0x%02x in %s", (unsigned char)out[j], out);
        ck_assert_ptr_nonnull(strstr(out, conf));
        unlink(conf);
    }
}
END_TEST

static Suite *
config_run_suite(void)
{
    Suite *s = suite_create("config_warnings_and_errors");
    TCase *tc = tcase_create("gateway");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, cleartext_remote_warns_at_start_and_reload);
    tcase_add_test(tc, loopback_and_https_do_not_warn);
    tcase_add_test(tc, check_config_redacts_userinfo_and_warns);
    tcase_add_test(tc, config_error_is_one_printable_line);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(config_run_suite());
}
