/* shared_state_health.c - what an operator sees of the state store (SPEC
 * sections 8 and 11): /readyz says which store answers ("memory",
 * "shared", or "degraded" while Redis is unreachable) and stays 200;
 * /metrics and /admin/stats carry wagate_state_up and the store's counts.
 * The real wagate; the shared cases against a real redis-server the test
 * starts (hx_redis.h), frozen and thawed. */
#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"

#define TOKEN_ADMIN "admin-tok-3"
#define ADMIN_HASH                                                             \
    "39eccedf59001412f7e0557d616c46642ef9eecfd34a79bd27c25f73e328b872"

static struct proc gw;
static char conf[64];

static const char *
bin(const char *var, const char *fallback)
{
    const char *v = getenv(var);
    return v && *v ? v : fallback;
}

/* A gateway (no upstream needed) with state members (text inside
 * "state": {...}, may be ""). */
static void
gw_start(const char *state)
{
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    char *env[] = {keyenv, NULL};
    char text[2048];
    snprintf(text, sizeof(text),
             "{\"listen\": [\"127.0.0.1:0\"],\n"
             " \"upstream\": {\"base_url\": \"http://127.0.0.1:9\"},\n"
             " \"admin\": {\"token_sha256\": \"" ADMIN_HASH "\"},\n"
             " \"state\": {%s}}\n",
             state);
    write_temp(text, conf, sizeof(conf));
    char *argv[] = {(char *)bin("WAGATE_BIN", "./wagate"), "-c", conf, NULL};
    ck_assert_int_eq(proc_start(&gw, argv, env), 0);
}

static void
gw_stop(void)
{
    int rc = proc_stop(&gw, 5000);
    unlink(conf);
    ck_assert_int_eq(rc, 0);
}

/* /readyz: its status, and its body's "state" in out. */
static long
readyz(char *out, size_t outlen)
{
    struct http_resp r;
    ck_assert_int_eq(harness_get(gw.port, "GET", "/readyz", NULL, &r), 0);
    json_object *o = json_tokener_parse(r.body), *v;
    out[0] = '\0';
    if (o && json_object_object_get_ex(o, "state", &v))
        snprintf(out, outlen, "%s", json_object_get_string(v));
    json_object_put(o);
    long st = r.status;
    http_free(&r);
    return st;
}

/* The value of a sample on /metrics, or -1. */
static double
metric(const char *name)
{
    struct http_resp r;
    double v = -1;
    char head[128];
    ck_assert_int_eq(harness_get(gw.port, "GET", "/metrics", NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    snprintf(head, sizeof(head), "\n%s ", name);
    const char *p = strstr(r.body, head);
    if (p != NULL)
        v = atof(p + strlen(head));
    http_free(&r);
    return v;
}

START_TEST(memory_is_always_up)
{
    char state[32];
    gw_start("");
    ck_assert_int_eq(readyz(state, sizeof(state)), 200);
    ck_assert_str_eq(state, "memory");
    ck_assert(metric("wagate_state_up") == 1);
    ck_assert(metric("wagate_state_commands_total") == 0);
    ck_assert(metric("wagate_state_idempotency_unavailable_total") == 0);
    ck_assert(metric("wagate_state_cache_unavailable_total") == 0);
    gw_stop();
}
END_TEST

/* The account HARNESS_UPSTREAM_KEY derives: the first 16 hex digits of
 * SHA-256("wagate-account\n" + key). */
#define DERIVED "cb84add3c961133f"
#define REDIS_PW "r3dis-pw-7e1c"

/* --check-config with the redis backend says where the shared keys go,
 * with the derived account, and that the password file was found: the
 * path, never the password, nor the API key. */
START_TEST(check_config_shows_where_the_state_goes)
{
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    char *env[] = {keyenv, NULL};
    char pwfile[64], cfg[64], text[512], out[8192];
    write_temp("  " REDIS_PW "\n", pwfile, sizeof(pwfile));
    snprintf(text, sizeof(text),
             "{\"state\": {\"backend\": \"redis\", \"redis\": {\"url\": "
             "\"unix:/tmp/nowhere.sock\", \"password_file\": \"%s\"}}}",
             pwfile);
    write_temp(text, cfg, sizeof(cfg));
    char *argv[] = {(char *)bin("WAGATE_BIN", "./wagate"), "--check-config",
                    "-c", cfg, NULL};
    ck_assert_int_eq(proc_run(argv, env, out, sizeof(out)), 0);
    ck_assert_ptr_null(strstr(out, REDIS_PW));
    ck_assert_ptr_null(strstr(out, HARNESS_UPSTREAM_KEY));
    ck_assert_ptr_nonnull(strstr(out, pwfile)); /* the path is shown */
    ck_assert_ptr_nonnull(strstr(out, "\"backend\": \"redis\""));
    ck_assert_ptr_nonnull(strstr(out, "keys under wagate:{" DERIVED "}:"));
    ck_assert_ptr_nonnull(strstr(out, "derived from the API key"));
    ck_assert_ptr_nonnull(strstr(out, "Redis password found in file"));
    /* a password file that cannot be read is a warning, named */
    unlink(pwfile);
    ck_assert_int_eq(proc_run(argv, env, out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "state.redis.password_file"));
    unlink(cfg);
}
END_TEST

/* state.file is the memory backend's: with redis, --check-config and the
 * start refuse it (exit 2), saying why. */
START_TEST(state_file_with_redis_is_refused)
{
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    char *env[] = {keyenv, NULL};
    char cfg[64], out[4096];
    write_temp("{\"state\": {\"backend\": \"redis\", "
               "\"file\": \"/tmp/wagate-never\"}}",
               cfg, sizeof(cfg));
    char *check[] = {(char *)bin("WAGATE_BIN", "./wagate"), "--check-config",
                     "-c", cfg, NULL};
    ck_assert_int_eq(proc_run(check, env, out, sizeof(out)), 2);
    ck_assert_ptr_nonnull(strstr(out, "state.file is for the memory backend"));
    char *run[] = {(char *)bin("WAGATE_BIN", "./wagate"), "-c", cfg, NULL};
    ck_assert_int_eq(proc_run(run, env, out, sizeof(out)), 2);
    ck_assert_ptr_nonnull(strstr(out, "state.file is for the memory backend"));
    unlink(cfg);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("shared_state_health");
    TCase *tc = tcase_create("health");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, memory_is_always_up);
    tcase_add_test(tc, check_config_shows_where_the_state_goes);
    tcase_add_test(tc, state_file_with_redis_is_refused);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
