/* state_across_restarts.c - state.file end to end: what a restart keeps.
 * The real wagate in front of the real sandbox, stopped and started again
 * with the same configuration; the sandbox's request log says what was
 * sent. */
#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "clock.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define PHONE "+14155550123"        /* its window is opened in the sandbox */
#define CLOSED_PHONE "+14155550177" /* never opened: the sandbox says 403 */
#define NSENDS 15

static struct proc sb, gw;
static char conf[64], dir[64], state[96];

/* The gateway with conf, as a restart would start it. */
static int
start_gateway(void)
{
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    char *env[] = {keyenv, NULL};
    const char *bin = getenv("WAGATE_BIN") ? getenv("WAGATE_BIN") : "./wagate";
    char *argv[] = {(char *)bin, "-c", conf, NULL};
    return proc_start(&gw, argv, env);
}

/* Runs the gateway to completion (it is expected to refuse to start):
 * its exit status, its output in out. */
static int
run_gateway(char *out, size_t outlen)
{
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    char *env[] = {keyenv, NULL};
    const char *bin = getenv("WAGATE_BIN") ? getenv("WAGATE_BIN") : "./wagate";
    char *argv[] = {(char *)bin, "-c", conf, NULL};
    return proc_run(argv, env, out, outlen);
}

static void
write_config(const char *extra)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "{\"listen\": [\"127.0.0.1:0\"],\n"
             " \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\",\n"
             "   \"timeout_ms\": 6000, \"connect_timeout_ms\": 500,\n"
             "   \"rate_limit_rps\": 10000, \"rate_limit_burst\": 10000},\n"
             " \"state\": {\"file\": \"%s\"}%s}\n",
             sb.port, state, extra ? extra : "");
    write_temp(text, conf, sizeof(conf));
    ck_assert(conf[0] != '\0');
}

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/wagate-state-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(state, sizeof(state), "%s/state", dir);
    ck_assert_int_eq(harness_start_sandbox(&sb, "0", NULL), 0);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound",
                           "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                           "\"}"),
        204);
    gw.pid = 0;
}

static void
teardown(void)
{
    if (gw.pid > 0)
        proc_stop(&gw, 5000);
    proc_stop(&sb, 5000);
    char lock[128];
    snprintf(lock, sizeof(lock), "%s.lock", state);
    unlink(conf);
    unlink(state);
    unlink(lock);
    rmdir(dir);
}

static long
send_keyed(const char *phone, int i, const char *key, struct http_resp *r)
{
    char body[160], h[300] = "";
    snprintf(body, sizeof(body),
             "{\"sender_id\":12,\"recipient_phone\":\"%s\",\"message\":"
             "\"restart %d\"}",
             phone, i);
    if (key != NULL)
        snprintf(h, sizeof(h), "Idempotency-Key: %s", key);
    const char *hs[] = {h, NULL};
    ck_assert_int_eq(harness_post(gw.port, FREEFORM, body, key ? hs : NULL, r),
                     0);
    return r->status;
}

static const char *
xwagate(const struct http_resp *r, char *buf, size_t n)
{
    const char *v = http_header(r, "X-Wagate", buf, n);
    return v ? v : "";
}

static int
log_has(const char *needle)
{
    char *log = proc_log(&gw);
    int found = log && strstr(log, needle) != NULL;
    free(log);
    return found;
}

static size_t
file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (size_t)st.st_size;
}

/* ---- what a graceful restart keeps ---- */

START_TEST(kept_answers_are_replayed_after_a_graceful_restart)
{
    struct http_resp r;
    char b[128], key[32], *bodies[NSENDS];
    write_config(NULL);
    ck_assert_int_eq(start_gateway(), 0);
    char *first_log = proc_log(&gw);
    for (int i = 0; i < NSENDS; i++) {
        snprintf(key, sizeof(key), "restart-key-%d", i);
        ck_assert_int_eq(send_keyed(PHONE, i, key, &r), 200);
        ck_assert_str_eq(xwagate(&r, b, sizeof(b)), "upstream");
        bodies[i] = strdup(r.body);
        http_free(&r);
    }
    ck_assert_int_eq(hx_sandbox_count(sb.port), NSENDS);

    ck_assert_int_eq(proc_stop(&gw, 5000), 0); /* SIGTERM: graceful */
    ck_assert_int_eq(start_gateway(), 0);
    for (int i = 0; i < NSENDS; i++) {
        snprintf(key, sizeof(key), "restart-key-%d", i);
        ck_assert_int_eq(send_keyed(PHONE, i, key, &r), 200);
        ck_assert_str_eq(xwagate(&r, b, sizeof(b)), "replay");
        ck_assert_str_eq(r.body, bodies[i]);
        http_free(&r);
        free(bodies[i]);
    }
    ck_assert_int_eq(hx_sandbox_count(sb.port),
                     NSENDS); /* nothing sent again */
    /* the same key with another body is still a reuse */
    ck_assert_int_eq(send_keyed(PHONE, 99, "restart-key-0", &r), 422);
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_count(sb.port), NSENDS);
    /* what the operator reads, and a file only the gateway can read */
    ck_assert(log_has("loaded: 15 idempotency answers"));
    ck_assert_ptr_nonnull(strstr(first_log, "does not exist yet"));
    free(first_log);
    struct stat st;
    ck_assert_int_eq(stat(state, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
}
END_TEST

START_TEST(learned_closed_window_survives_a_restart)
{
    struct http_resp r;
    char b[128];
    write_config(NULL);
    ck_assert_int_eq(start_gateway(), 0);
    ck_assert_int_eq(send_keyed(CLOSED_PHONE, 1, NULL, &r), 403);
    ck_assert_str_eq(xwagate(&r, b, sizeof(b)), "upstream");
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 1);

    ck_assert_int_eq(proc_stop(&gw, 5000), 0);
    ck_assert_int_eq(start_gateway(), 0);
    ck_assert_int_eq(send_keyed(CLOSED_PHONE, 2, NULL, &r), 403);
    ck_assert_str_eq(xwagate(&r, b, sizeof(b)),
                     "gateway; reason=session_expired");
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_count(sb.port),
                     1); /* answered by the gateway */
}
END_TEST

static size_t
sink(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* A send whose answer the drain deadline cuts off: its message reached
 * the sandbox, so its outcome is unknown, and after the restart its retry
 * gets that unknown outcome, never a second send. */
START_TEST(key_cut_off_in_flight_is_replayed_as_unknown)
{
    write_config(", \"drain_timeout_ms\": 300");
    ck_assert_int_eq(start_gateway(), 0);
    hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                       "{\"latency_ms\":4000}");
    char url[128], body[160];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, gw.port);
    snprintf(body, sizeof(body),
             "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
             "\",\"message\":\"restart 7\"}");
    struct curl_slist *h =
        curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Idempotency-Key: cut-off-key");
    CURLM *m = curl_multi_init();
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_multi_add_handle(m, e);
    int running = 1;
    double end = clock_mono_ms() + 5000;
    while (hx_sandbox_count(sb.port) < 1 && clock_mono_ms() < end) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    ck_assert_int_eq(hx_sandbox_count(sb.port), 1); /* the message left */
    kill(gw.pid, SIGTERM);
    end = clock_mono_ms() + 8000;
    while (running && clock_mono_ms() < end) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    long st = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
    ck_assert_int_eq(st, 503); /* cut off at the deadline */
    curl_multi_remove_handle(m, e);
    curl_easy_cleanup(e);
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    ck_assert_int_eq(proc_stop(&gw, 5000), 0);
    char *first_log = proc_log(&gw);

    hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                       "{\"latency_ms\":0}");
    ck_assert_int_eq(start_gateway(), 0);
    struct http_resp r;
    char b[128];
    ck_assert_int_eq(send_keyed(PHONE, 7, "cut-off-key", &r), 502);
    ck_assert_str_eq(xwagate(&r, b, sizeof(b)), "replay");
    json_object *o = json_tokener_parse(r.body), *v;
    ck_assert_ptr_nonnull(o);
    ck_assert(json_object_object_get_ex(o, "outcome", &v));
    ck_assert_str_eq(json_object_get_string(v), "unknown");
    ck_assert(json_object_object_get_ex(o, "error_code", &v));
    ck_assert_str_eq(json_object_get_string(v), "UPSTREAM_UNAVAILABLE");
    ck_assert(json_object_object_get_ex(o, "success", &v));
    ck_assert(!json_object_get_boolean(v));
    json_object_put(o);
    ck_assert_ptr_nonnull(http_header(&r, "Content-Type", b, sizeof(b)));
    ck_assert_str_eq(b, "application/json");
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 1); /* never sent twice */
    ck_assert_ptr_nonnull(strstr(first_log, "1 cut off in flight"));
    free(first_log);
}
END_TEST

/* kill -9 writes nothing: what was kept since the last graceful stop is
 * lost (the documented loss window), what that stop wrote is not. */
START_TEST(kill_9_loses_only_what_followed_the_last_graceful_stop)
{
    struct http_resp r;
    char b[128];
    write_config(NULL);
    ck_assert_int_eq(start_gateway(), 0);
    ck_assert_int_eq(send_keyed(PHONE, 1, "before-stop", &r), 200);
    http_free(&r);
    ck_assert_int_eq(proc_stop(&gw, 5000), 0);
    ck_assert_int_eq(start_gateway(), 0);
    ck_assert_int_eq(send_keyed(PHONE, 2, "after-stop", &r), 200);
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 2);
    kill(gw.pid, SIGKILL);
    waitpid(gw.pid, NULL, 0);
    gw.pid = 0;

    ck_assert_int_eq(start_gateway(), 0);
    ck_assert_int_eq(send_keyed(PHONE, 1, "before-stop", &r), 200);
    ck_assert_str_eq(xwagate(&r, b, sizeof(b)), "replay");
    http_free(&r);
    ck_assert_int_eq(send_keyed(PHONE, 2, "after-stop", &r), 200);
    ck_assert_str_eq(xwagate(&r, b, sizeof(b)), "upstream"); /* lost */
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 3);
}
END_TEST

/* ---- a state file that cannot be trusted ---- */

static void
write_bytes(const char *path, const char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static char *
read_bytes(const char *path, size_t *n)
{
    *n = file_size(path);
    char *p = malloc(*n + 1);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

/* The gateway must refuse to start (exit 2) with one line naming the file
 * and why, and leave the file as it was. */
static void
assert_refused(const char *why)
{
    char out[8192], line[1024];
    size_t n0;
    char *before = read_bytes(state, &n0);
    ck_assert_int_eq(run_gateway(out, sizeof(out)), 2);
    snprintf(line, sizeof(line), "refusing to start: state file %s: ", state);
    char *at = strstr(out, line);
    ck_assert_msg(at != NULL, "no refusal line in: %s", out);
    char *eol = strchr(at, '\n');
    ck_assert_ptr_nonnull(eol);
    *eol = '\0';
    ck_assert_msg(strstr(at, why) != NULL, "'%s' not in: %s", why, at);
    ck_assert_ptr_null(strstr(out, "listening on"));
    size_t n1;
    char *after = read_bytes(state, &n1);
    ck_assert_uint_eq(n0, n1);
    ck_assert(memcmp(before, after, n0) == 0);
    free(before);
    free(after);
}

START_TEST(foreign_state_file_refuses_to_start)
{
    write_config(NULL);
    const char *text = "{\"this is\": \"not a wagate state file\"}\n";
    write_bytes(state, text, strlen(text));
    assert_refused("not a wagate state file");
}
END_TEST

START_TEST(damaged_state_file_refuses_to_start)
{
    struct http_resp r;
    write_config(NULL);
    ck_assert_int_eq(start_gateway(), 0);
    ck_assert_int_eq(send_keyed(PHONE, 1, "damaged-key", &r), 200);
    http_free(&r);
    ck_assert_int_eq(send_keyed(CLOSED_PHONE, 2, NULL, &r), 403);
    http_free(&r);
    ck_assert_int_eq(proc_stop(&gw, 5000), 0);
    size_t n;
    char *good = read_bytes(state, &n);
    ck_assert_uint_gt(n, 100);

    write_bytes(state, good, n - 7); /* truncated */
    assert_refused("truncated at byte");
    /* one bit of the last record (a session entry's expiry, 35 bytes long
     * before the 49-byte end record): still well-formed, so only the
     * checksum can tell */
    good[n - 60] ^= 0x20;
    write_bytes(state, good, n);
    assert_refused("checksum mismatch");
    good[n - 60] ^= 0x20;
    good[8] = 9; /* version 9 */
    write_bytes(state, good, n);
    assert_refused("version 9; this wagate reads version 1");
    good[8] = 1;
    write_bytes(state, good, n); /* intact again: it starts and replays */
    ck_assert_int_eq(start_gateway(), 0);
    ck_assert_int_eq(send_keyed(PHONE, 1, "damaged-key", &r), 200);
    char b[64];
    ck_assert_str_eq(xwagate(&r, b, sizeof(b)), "replay");
    http_free(&r);
    free(good);
}
END_TEST

/* ---- a state file the end of the run could not write ---- */

/* Found by attack: the gateway started, served, and only when the drain
 * ended said it could not save: everything kept was lost. */
START_TEST(a_state_directory_that_does_not_exist_refuses_to_start)
{
    char out[8192], line[256];
    snprintf(state, sizeof(state), "%s/missing/state", dir);
    write_config(NULL);
    ck_assert_int_eq(run_gateway(out, sizeof(out)), 2);
    snprintf(line, sizeof(line),
             "refusing to start: state file %s: cannot create a file next "
             "to it",
             state);
    ck_assert_msg(strstr(out, line) != NULL, "no refusal in: %s", out);
    ck_assert_ptr_null(strstr(out, "listening on"));
    snprintf(state, sizeof(state), "%s/state", dir);
}
END_TEST

/* Found by attack: two gateways given one state.file both started, and
 * the one that stopped last overwrote what the other had kept. */
START_TEST(a_second_gateway_on_the_same_state_file_refuses_to_start)
{
    char out[8192], line[256];
    struct http_resp r;
    write_config(NULL);
    ck_assert_int_eq(start_gateway(), 0);
    ck_assert_int_eq(send_keyed(PHONE, 1, "first-gateway", &r), 200);
    http_free(&r);
    ck_assert_int_eq(run_gateway(out, sizeof(out)), 2);
    snprintf(line, sizeof(line),
             "refusing to start: state file %s: another wagate is using it",
             state);
    ck_assert_msg(strstr(out, line) != NULL, "no refusal in: %s", out);
    ck_assert_ptr_null(strstr(out, "listening on"));
    /* the first one's state is saved whole, and the lock ends with it */
    ck_assert_int_eq(proc_stop(&gw, 5000), 0);
    ck_assert_int_eq(start_gateway(), 0);
    ck_assert_int_eq(send_keyed(PHONE, 1, "first-gateway", &r), 200);
    char b[64];
    ck_assert_str_eq(xwagate(&r, b, sizeof(b)), "replay");
    http_free(&r);
}
END_TEST

static Suite *
restart_suite(void)
{
    Suite *s = suite_create("state_across_restarts");
    TCase *tc = tcase_create("restart");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, kept_answers_are_replayed_after_a_graceful_restart);
    tcase_add_test(tc, learned_closed_window_survives_a_restart);
    tcase_add_test(tc, key_cut_off_in_flight_is_replayed_as_unknown);
    tcase_add_test(tc, kill_9_loses_only_what_followed_the_last_graceful_stop);
    tcase_add_test(tc, foreign_state_file_refuses_to_start);
    tcase_add_test(tc, damaged_state_file_refuses_to_start);
    tcase_add_test(tc, a_state_directory_that_does_not_exist_refuses_to_start);
    tcase_add_test(tc,
                   a_second_gateway_on_the_same_state_file_refuses_to_start);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(restart_suite());
}
