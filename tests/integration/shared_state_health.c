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
#include "hx_redis.h"

#define TOKEN_ADMIN "admin-tok-3"
#define ADMIN_HASH                                                             \
    "39eccedf59001412f7e0557d616c46642ef9eecfd34a79bd27c25f73e328b872"

static struct proc gw;
static char conf[64];
static struct hx_redis rs;
static const char *const auth[] = {"Authorization: Bearer " TOKEN_ADMIN, NULL};

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

/* ---- with a real Redis ---- */

#define ACCOUNT_KEYS "wagate:{" DERIVED "}:*"
#define Q "/admin/sessions?sender_id=12&recipient_phone=%2B14155550123"
#define PHONE "+14155550123"

/* Waits (bounded) until /readyz says state; 1 if it did. */
static int
wait_state(const char *want, int timeout_ms)
{
    char state[32];
    double end = clock_mono_ms() + timeout_ms;
    while (clock_mono_ms() < end) {
        if (readyz(state, sizeof(state)) == 200 && strcmp(state, want) == 0)
            return 1;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* How many keys of the derived account Redis holds, besides the send
 * limiter's presence (alive:send, log:send: written by every instance
 * that shares, from its first connect on; shaper.h). */
static long
account_keys(void)
{
    redisContext *c = hx_redis_connect(&rs);
    ck_assert_ptr_nonnull(c);
    redisReply *r = redisCommand(c, "KEYS %s", ACCOUNT_KEYS);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    long n = 0;
    for (size_t i = 0; i < r->elements; i++)
        n += strstr(r->element[i]->str, "}:alive:send") == NULL &&
             strstr(r->element[i]->str, "}:log:send") == NULL;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* Long enough that the breaker's answer "at once" is told apart from a
 * command's timeout even on a loaded machine. */
#define REDIS_TIMEOUT_MS 300

static void
redis_gw_start(const char *extra)
{
    char state[512];
    snprintf(state, sizeof(state),
             "\"backend\": \"redis\", \"instances\": 2, \"redis\": "
             "{\"url\": \"%s\", \"timeout_ms\": %d%s}",
             rs.url, REDIS_TIMEOUT_MS, extra ? extra : "");
    gw_start(state);
}

/* Shared while Redis answers; degraded (still ready) once a command finds
 * it frozen; shared again after it thaws, without a restart. The keys
 * are the derived account's. */
START_TEST(shared_degraded_and_back)
{
    struct http_resp r;
    char state[32];
    ck_assert_int_eq(hx_redis_start(&rs, 0, NULL), 0);
    redis_gw_start(NULL);
    ck_assert(proc_wait_log(&gw, "keys under wagate:{" DERIVED "}:", 1000));
    ck_assert(wait_state("shared", 5000));
    ck_assert(metric("wagate_state_up") == 1);
    /* the admin calls act on the shared store, under the account's keys */
    ck_assert_int_eq(account_keys(), 0);
    ck_assert_int_eq(
        harness_post(gw.port, "/admin/sessions/inbound",
                     "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                     "\",\"received_at\":\"2030-01-01T00:00:00Z\"}",
                     auth, &r),
        0);
    ck_assert_int_eq(r.status, 204);
    http_free(&r);
    ck_assert_int_ge(account_keys(), 1);
    ck_assert_int_eq(harness_get(gw.port, "GET", Q, auth, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"source\":\"inbound\""));
    http_free(&r);
    double commands = metric("wagate_state_commands_total");
    ck_assert(commands >= 2);

    /* frozen: the next command times out, the link goes down */
    hx_redis_freeze(&rs);
    ck_assert_int_eq(harness_get(gw.port, "GET", Q, auth, &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_ptr_nonnull(strstr(r.body, "STATE_UNAVAILABLE"));
    char ra[16];
    ck_assert_ptr_nonnull(http_header(&r, "Retry-After", ra, sizeof(ra)));
    http_free(&r);
    ck_assert_int_eq(readyz(state, sizeof(state)), 200);
    ck_assert_str_eq(state, "degraded");
    ck_assert(metric("wagate_state_up") == 0);
    ck_assert(metric("wagate_state_timeouts_total") >= 1);
    ck_assert(metric("wagate_state_failures_total") >= 1);
    /* while down, the breaker answers at once */
    double t0 = clock_mono_ms();
    ck_assert_int_eq(harness_get(gw.port, "GET", Q, auth, &r), 0);
    ck_assert_int_eq(r.status, 503);
    http_free(&r);
    ck_assert(clock_mono_ms() - t0 < REDIS_TIMEOUT_MS);

    /* thawed: back to shared by itself */
    hx_redis_thaw(&rs);
    ck_assert(wait_state("shared", 10000));
    ck_assert(metric("wagate_state_up") == 1);
    ck_assert(metric("wagate_state_reconnects_total") >= 1);
    ck_assert_int_eq(harness_get(gw.port, "GET", Q, auth, &r), 0);
    ck_assert_int_eq(r.status, 200); /* what Redis held is still there */
    http_free(&r);
    gw_stop();
    hx_redis_stop(&rs);
}
END_TEST

#define RPW "redis-pw-Kx93-never-logged"

/* The password from state.redis.password_file authenticates; a wrong one
 * leaves the gateway degraded; neither is ever in its log. */
START_TEST(password_from_its_file)
{
    char pwfile[64], extra[128];
    ck_assert_int_eq(hx_redis_start(&rs, 0, RPW), 0);
    write_temp("\n" RPW "  \n", pwfile, sizeof(pwfile));
    snprintf(extra, sizeof(extra), ", \"password_file\": \"%s\"", pwfile);
    redis_gw_start(extra);
    ck_assert(wait_state("shared", 5000));
    char *log = proc_log(&gw);
    ck_assert_ptr_null(strstr(log, RPW));
    ck_assert_ptr_null(strstr(log, HARNESS_UPSTREAM_KEY));
    free(log);
    gw_stop();

    FILE *f = fopen(pwfile, "w"); /* the same file, another password */
    ck_assert_ptr_nonnull(f);
    fputs("wrong-" RPW, f);
    fclose(f);
    redis_gw_start(extra);
    ck_assert(proc_wait_log(&gw, "state: redis down", 5000));
    char state[32];
    ck_assert_int_eq(readyz(state, sizeof(state)), 200);
    ck_assert_str_eq(state, "degraded");
    log = proc_log(&gw);
    ck_assert_ptr_null(strstr(log, RPW));
    free(log);
    gw_stop();
    unlink(pwfile);

    /* a password file that cannot be read stops the start */
    char cfg[64], out[4096], text[512];
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    char *env[] = {keyenv, NULL};
    snprintf(text, sizeof(text),
             "{\"listen\": [\"127.0.0.1:0\"], \"state\": {\"backend\": "
             "\"redis\", \"redis\": {\"url\": \"%s\", \"password_file\": "
             "\"%s\"}}}",
             rs.url, pwfile);
    write_temp(text, cfg, sizeof(cfg));
    char *argv[] = {(char *)bin("WAGATE_BIN", "./wagate"), "-c", cfg, NULL};
    ck_assert_int_eq(proc_run(argv, env, out, sizeof(out)), 2);
    ck_assert_ptr_nonnull(strstr(out, "state.redis.password_file"));
    unlink(cfg);
    hx_redis_stop(&rs);
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
    tcase_add_test(tc, shared_degraded_and_back);
    tcase_add_test(tc, password_from_its_file);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
