/* admin_through_the_state.c - the admin API's session routes ask the state
 * (state.h) and answer when it does: the real wagate, its memory backend
 * answering WAGATE_TEST_STATE_DELAY_MS late as a remote store would (SPEC
 * sections 7 and 11). Each call is answered once, with what it gets
 * without the delay; a caller that hangs up while its answer is awaited
 * costs nothing; a drain cuts off a call that waits for the state, and
 * exits cleanly. */
#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"

#define PHONE "+14155550123"
#define Q "/admin/sessions?sender_id=12&recipient_phone=%2B14155550123"
#define TOKEN_ADMIN "admin-tok-3"
#define ADMIN_HASH                                                             \
    "39eccedf59001412f7e0557d616c46642ef9eecfd34a79bd27c25f73e328b872"

static struct proc gw;
static char conf[64];
static const char *const auth[] = {"Authorization: Bearer " TOKEN_ADMIN, NULL};

static const char *
bin(const char *var, const char *fallback)
{
    const char *v = getenv(var);
    return v && *v ? v : fallback;
}

/* A gateway (no upstream needed: admin calls never go there) whose state
 * answers come delay_ms late. */
static void
gw_start(long delay_ms, long drain_ms)
{
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    char delayenv[64], text[1024];
    snprintf(delayenv, sizeof(delayenv), "WAGATE_TEST_STATE_DELAY_MS=%ld",
             delay_ms);
    char *env[] = {keyenv, delayenv, NULL};
    snprintf(text, sizeof(text),
             "{\"listen\": [\"127.0.0.1:0\"],\n"
             " \"upstream\": {\"base_url\": \"http://127.0.0.1:9\"},\n"
             " \"admin\": {\"token_sha256\": \"" ADMIN_HASH "\"},\n"
             " \"drain_timeout_ms\": %ld}\n",
             drain_ms);
    write_temp(text, conf, sizeof(conf));
    char *argv[] = {(char *)bin("WAGATE_BIN", "./wagate"), "-c", conf, NULL};
    ck_assert_int_eq(proc_start(&gw, argv, env), 0);
    if (delay_ms > 0)
        ck_assert(proc_wait_log(&gw, "WAGATE_TEST_STATE_DELAY_MS", 1000));
}

static void
gw_stop(void)
{
    int rc = gw.pid ? proc_stop(&gw, 5000) : 0;
    unlink(conf);
    ck_assert_int_eq(rc, 0);
}

static const char *
json_str(const char *text, const char *k)
{
    static char out[256];
    json_object *o = json_tokener_parse(text), *v = NULL;
    out[0] = '\0';
    if (o && json_object_object_get_ex(o, k, &v) && v)
        snprintf(out, sizeof(out), "%s",
                 json_object_is_type(v, json_type_string)
                     ? json_object_get_string(v)
                     : json_object_to_json_string(v));
    json_object_put(o);
    return out;
}

/* /admin/stats' upstream.in_flight: requests deferred now. */
static long
in_flight(void)
{
    struct http_resp r;
    long n = -1;
    ck_assert_int_eq(harness_get(gw.port, "GET", "/admin/stats", auth, &r), 0);
    json_object *o = json_tokener_parse(r.body), *u, *v;
    if (o && json_object_object_get_ex(o, "upstream", &u) &&
        json_object_object_get_ex(u, "in_flight", &v))
        n = (long)json_object_get_int64(v);
    json_object_put(o);
    http_free(&r);
    return n;
}

/* Waits (bounded) until want requests are deferred. */
static int
wait_in_flight(long want, int timeout_ms)
{
    double end = clock_mono_ms() + timeout_ms;
    while (clock_mono_ms() < end) {
        if (in_flight() == want)
            return 1;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* A raw GET of the session on a connection of its own, left waiting for
 * its answer; the socket. */
static int
raw_get_session(void)
{
    static const char req[] = "GET " Q " HTTP/1.1\r\nHost: x\r\n"
                              "Authorization: Bearer " TOKEN_ADMIN "\r\n"
                              "Connection: close\r\n\r\n";
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)gw.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
    return fd;
}

/* Reads fd until the peer closes (bounded by timeout_ms). */
static size_t
read_all(int fd, char *out, size_t outlen, int timeout_ms)
{
    size_t n = 0;
    double end = clock_mono_ms() + timeout_ms;
    while (n + 1 < outlen && clock_mono_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t got = read(fd, out + n, outlen - 1 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    out[n] = '\0';
    return n;
}

/* Long enough that what never waits for the state is told apart from what
 * does even on a loaded machine (sanitizers, suites in parallel). */
#define STATE_DELAY_MS 500

START_TEST(session_routes_answer_when_the_state_does)
{
    struct http_resp r;
    gw_start(STATE_DELAY_MS, 10000);
    double t0 = clock_mono_ms();
    ck_assert_int_eq(harness_get(gw.port, "GET", Q, auth, &r), 0);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(json_str(r.body, "error_code"), "SESSION_NOT_FOUND");
    http_free(&r);
    ck_assert(clock_mono_ms() - t0 >= STATE_DELAY_MS); /* the state was asked */
    ck_assert_int_eq(
        harness_post(gw.port, "/admin/sessions/inbound",
                     "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                     "\",\"received_at\":\"2030-01-01T00:00:00Z\"}",
                     auth, &r),
        0);
    ck_assert_int_eq(r.status, 204);
    ck_assert_uint_eq(r.body_len, 0);
    http_free(&r);
    ck_assert_int_eq(harness_get(gw.port, "GET", Q, auth, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(json_str(r.body, "state"), "open");
    ck_assert_str_eq(json_str(r.body, "source"), "inbound");
    ck_assert_str_eq(json_str(r.body, "recipient_phone"), PHONE);
    ck_assert_str_eq(json_str(r.body, "expires_at"),
                     "2030-01-02T00:00:00+00:00");
    http_free(&r);
    ck_assert_int_eq(harness_get(gw.port, "DELETE", Q, auth, &r), 0);
    ck_assert_int_eq(r.status, 204);
    http_free(&r);
    ck_assert_int_eq(harness_get(gw.port, "GET", Q, auth, &r), 0);
    ck_assert_int_eq(r.status, 404);
    http_free(&r);
    /* what the request itself refuses never waits for the state */
    t0 = clock_mono_ms();
    ck_assert_int_eq(
        harness_get(gw.port, "GET", "/admin/sessions?sender_id=12", auth, &r),
        0);
    ck_assert_int_eq(r.status, 422);
    http_free(&r);
    ck_assert(clock_mono_ms() - t0 < STATE_DELAY_MS);
    ck_assert_int_eq(in_flight(), 0);
    gw_stop();
}
END_TEST

/* The caller hangs up while its GET waits for the state: the answer that
 * comes is only logged, and the gateway goes on. */
START_TEST(a_caller_gone_while_the_state_is_asked)
{
    struct http_resp r;
    gw_start(300, 10000);
    int fd = raw_get_session();
    ck_assert(wait_in_flight(1, 3000));
    close(fd);
    ck_assert(wait_in_flight(0, 3000)); /* its answer came and went */
    ck_assert_int_eq(harness_get(gw.port, "GET", Q, auth, &r), 0);
    ck_assert_int_eq(r.status, 404);
    http_free(&r);
    gw_stop();
}
END_TEST

/* A drain whose deadline comes first cuts off a call waiting for the
 * state: 503 SHUTTING_DOWN, then a clean exit. */
START_TEST(a_drain_cuts_off_a_call_waiting_for_the_state)
{
    char out[4096];
    gw_start(3000, 200);
    int fd = raw_get_session();
    ck_assert(wait_in_flight(1, 5000));
    double t0 = clock_mono_ms();
    ck_assert_int_eq(kill(gw.pid, SIGTERM), 0);
    read_all(fd, out, sizeof(out), 5000);
    close(fd);
    ck_assert_msg(strstr(out, " 503 ") != NULL, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "SHUTTING_DOWN"));
    ck_assert(clock_mono_ms() - t0 < 2500); /* not the state's 3 s */
    int rc = proc_stop(&gw, 8000);
    gw.pid = 0;
    ck_assert_int_eq(rc, 0);
    unlink(conf);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("admin_through_the_state");
    TCase *tc = tcase_create("late");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, session_routes_answer_when_the_state_does);
    tcase_add_test(tc, a_caller_gone_while_the_state_is_asked);
    tcase_add_test(tc, a_drain_cuts_off_a_call_waiting_for_the_state);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
