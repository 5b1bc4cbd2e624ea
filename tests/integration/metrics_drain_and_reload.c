/* metrics_drain_and_reload.c - operations, end to end: metrics, graceful
 * drain, reload, and what the logs may never hold. */
#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "clock.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define ROTATED_KEY "sk-rotated-0b7e1d"
#define SECRET_TEXT "never-log-this-message-41"
#define TOKEN "tok-alpha-1"
#define TOKEN_SHA                                                              \
    "2c9cd19e083cc328828bc58cd2b7b0fd90e13cd97fe502ca8ab1b43d85d21d33"

static struct proc sb, gw;
static char conf[64], keyfile[64];

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void
gateway_config(char *out, size_t n, const char *clients)
{
    snprintf(out, n,
             "{\"listen\": [\"127.0.0.1:0\"],\n"
             " \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\",\n"
             "   \"api_key_file\": \"%s\", \"rate_limit_rps\": 1000,\n"
             "   \"rate_limit_burst\": 1000, \"timeout_ms\": 5000},\n"
             " \"drain_timeout_ms\": 8000%s}\n",
             sb.port, keyfile, clients ? clients : "");
}

static void
setup(void)
{
    char text[1024];
    ck_assert_int_eq(harness_start_sandbox(&sb, "0", NULL), 0);
    write_temp(HARNESS_UPSTREAM_KEY "\n", keyfile, sizeof(keyfile));
    gateway_config(text, sizeof(text), NULL);
    ck_assert_int_eq(harness_start_gateway(&gw, sb.port, NULL, conf,
                                           sizeof(conf)), 0);
    /* the harness's config was a placeholder: restart with ours */
    ck_assert_int_eq(proc_stop(&gw, 5000), 0);
    write_file(conf, text);
    char *argv[] = {getenv("WAGATE_BIN") ? getenv("WAGATE_BIN") : "./wagate",
                    "-c", conf, NULL};
    ck_assert_int_eq(proc_start(&gw, argv, NULL), 0);
}

static void
teardown(void)
{
    /* nothing secret in any line the gateway wrote during the test */
    char *log = proc_log(&gw);
    ck_assert_ptr_null(strstr(log, HARNESS_UPSTREAM_KEY));
    ck_assert_ptr_null(strstr(log, ROTATED_KEY));
    ck_assert_ptr_null(strstr(log, SECRET_TEXT));
    ck_assert_ptr_null(strstr(log, TOKEN "\""));
    free(log);
    int g = proc_stop(&gw, 10000), s = proc_stop(&sb, 5000);
    unlink(conf);
    unlink(keyfile);
    ck_assert_int_eq(g, 0);
    ck_assert_int_eq(s, 0);
}

static void
open_window(const char *phone)
{
    char body[128];
    snprintf(body, sizeof(body),
             "{\"sender_id\":12,\"recipient_phone\":\"%s\"}", phone);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound", body), 204);
}

static long
send_to(const char *phone, const char *const *headers)
{
    char body[200];
    struct http_resp r;
    snprintf(body, sizeof(body),
             "{\"sender_id\":12,\"recipient_phone\":\"%s\",\"message\":\""
             SECRET_TEXT "\"}", phone);
    ck_assert_int_eq(harness_post(gw.port, FREEFORM, body, headers, &r), 0);
    long st = r.status;
    http_free(&r);
    return st;
}

/* The value of one exposition line, or -1 if absent. */
static double
metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return atof(p + n + 1);
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return -1;
}

static char *
scrape(void)
{
    struct http_resp r;
    char ct[128];
    ck_assert_int_eq(harness_get(gw.port, "GET", "/metrics", NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(http_header(&r, "Content-Type", ct, sizeof(ct)),
                     "text/plain; version=0.0.4");
    char *body = strdup(r.body);
    http_free(&r);
    return body;
}

START_TEST(metrics_move_with_each_decision)
{
    open_window("+14155550001");
    ck_assert_int_eq(send_to("+14155550001", NULL), 200); /* forwarded */
    ck_assert_int_eq(send_to("+14155550002", NULL), 403); /* learned closed */
    ck_assert_int_eq(send_to("+14155550002", NULL), 403); /* short-circuit */
    ck_assert_int_eq(send_to("4155550003", NULL), 422);   /* rejected */
    char *m = scrape();
    ck_assert_double_eq(metric(m, "wagate_requests_total{route=\"send_freeform"
                                  "\",decision=\"forwarded\",status=\"200\"}"),
                        1);
    ck_assert_double_eq(metric(m, "wagate_requests_total{route=\"send_freeform"
                                  "\",decision=\"forwarded\",status=\"403\"}"),
                        1);
    ck_assert_double_eq(
        metric(m, "wagate_requests_total{route=\"send_freeform\","
                  "decision=\"short_circuit\",status=\"403\"}"),
        1);
    ck_assert_double_eq(metric(m, "wagate_requests_total{route=\"send_freeform"
                                  "\",decision=\"rejected\",status=\"422\"}"),
                        1);
    ck_assert_double_eq(metric(m, "wagate_upstream_duration_seconds_count"), 2);
    ck_assert_double_eq(
        metric(m, "wagate_upstream_duration_seconds_bucket{le=\"+Inf\"}"), 2);
    ck_assert_double_eq(metric(m, "wagate_cache_short_circuits_total"), 1);
    ck_assert_double_eq(metric(m, "wagate_cache_entries"), 2);
    ck_assert_double_eq(metric(m, "wagate_queue_depth"), 0);
    ck_assert_double_eq(metric(m, "wagate_rate_limited_total"), 0);
    ck_assert_ptr_nonnull(strstr(m, "# TYPE wagate_requests_total counter"));
    ck_assert_ptr_nonnull(
        strstr(m, "# TYPE wagate_upstream_duration_seconds histogram"));
    free(m);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 2);
}
END_TEST

static size_t
sink(char *d, size_t s, size_t n, void *arg)
{
    (void)d;
    (void)arg;
    return s * n;
}

START_TEST(drain_finishes_in_flight_and_refuses_new)
{
    char url[128], phones[5][16], bodies[5][160];
    CURLM *m = curl_multi_init();
    CURL *e[5];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                       "{\"latency_ms\":1500}");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, gw.port);
    for (int i = 0; i < 5; i++) {
        snprintf(phones[i], sizeof(phones[i]), "+1415555%04d", 100 + i);
        open_window(phones[i]);
        snprintf(bodies[i], sizeof(bodies[i]),
                 "{\"sender_id\":12,\"recipient_phone\":\"%s\","
                 "\"message\":\"drain\"}", phones[i]);
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, bodies[i]);
        curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(e[i], CURLOPT_TIMEOUT_MS, 20000L);
        curl_multi_add_handle(m, e[i]);
    }
    /* a kept-alive caller connection, opened before the drain */
    CURL *k = curl_easy_init();
    char kurl[128];
    snprintf(kurl, sizeof(kurl), "http://127.0.0.1:%d/readyz", gw.port);
    curl_easy_setopt(k, CURLOPT_URL, kurl);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, sink);
    ck_assert_int_eq(curl_easy_perform(k), CURLE_OK);
    /* until the sandbox holds all five (an event, not a sleep) */
    int running = 1;
    double end = clock_mono_ms() + 5000;
    while (hx_sandbox_count(sb.port) < 5 && clock_mono_ms() < end) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    ck_assert_int_eq(hx_sandbox_count(sb.port), 5);
    kill(gw.pid, SIGTERM);
    ck_assert(proc_wait_log(&gw, "draining", 3000));
    /* on the kept connection: not ready, and a new send is refused */
    long st = 0;
    ck_assert_int_eq(curl_easy_perform(k), CURLE_OK);
    curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &st);
    ck_assert_int_eq(st, 503);
    curl_easy_setopt(k, CURLOPT_URL, url);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(k, CURLOPT_POSTFIELDS, bodies[0]);
    ck_assert_int_eq(curl_easy_perform(k), CURLE_OK);
    curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &st);
    ck_assert_int_eq(st, 503);
    curl_easy_cleanup(k);
    end = clock_mono_ms() + 10000;
    while (running && clock_mono_ms() < end) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    for (int i = 0; i < 5; i++) {
        curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &st);
        ck_assert_msg(st == 200, "in-flight send %d got %ld", i, st);
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    ck_assert(proc_wait_log(&gw, "\"stopped\"", 5000));
    ck_assert_int_eq(hx_sandbox_count(sb.port),
                     5); /* the refused one never left */
    /* teardown collects the exit status: it must be 0 */
}
END_TEST

START_TEST(reload_adds_a_client_and_rotates_the_key)
{
    char text[1024];
    const char *tok[] = {"Authorization: Bearer " TOKEN, NULL};
    open_window("+14155550009");
    ck_assert_int_eq(send_to("+14155550009", NULL), 200);
    /* new config: a client; new key in the key file */
    gateway_config(text, sizeof(text),
                   ", \"clients\": [{\"name\": \"alpha\", \"token_sha256\": \""
                   TOKEN_SHA "\", \"senders\": \"*\"}]");
    write_file(conf, text);
    write_file(keyfile, "  " ROTATED_KEY "  \n");
    kill(gw.pid, SIGHUP);
    ck_assert(proc_wait_log(&gw, "configuration reloaded", 3000));
    ck_assert_int_eq(send_to("+14155550009", NULL), 401);
    ck_assert_int_eq(send_to("+14155550009", tok), 401); /* sandbox's 401 */
    json_object *reqs = hx_sandbox_requests(sb.port);
    ck_assert_int_eq(json_object_array_length(reqs), 2);
    ck_assert_str_eq(hx_sandbox_req_header(json_object_array_get_idx(reqs, 0),
                                           "Authorization"),
                     "Bearer " HARNESS_UPSTREAM_KEY);
    ck_assert_str_eq(hx_sandbox_req_header(json_object_array_get_idx(reqs, 1),
                                           "Authorization"),
                     "Bearer " ROTATED_KEY);
    json_object_put(reqs);
    /* a broken file is rejected and the gateway keeps serving */
    write_file(keyfile, HARNESS_UPSTREAM_KEY "\n");
    write_file(conf, "{\"listen\": [\"127.0.0.1:0\"], \"bogus\": 1}");
    kill(gw.pid, SIGHUP);
    ck_assert(proc_wait_log(&gw, "reload rejected", 3000));
    ck_assert_int_eq(send_to("+14155550009", tok), 401); /* still the rotated key */
    struct http_resp r;
    ck_assert_int_eq(harness_get(gw.port, "GET", "/healthz", NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
    char *log = proc_log(&gw);
    ck_assert_ptr_nonnull(strstr(log, "bogus"));
    free(log);
}
END_TEST

START_TEST(reload_reports_restart_only_keys)
{
    char text[1024];
    gateway_config(text, sizeof(text), NULL);
    /* same file, another base_url: needs a restart, keeps the old one */
    char *p = strstr(text, "http://127.0.0.1:");
    ck_assert_ptr_nonnull(p);
    memcpy(p, "http://127.0.0.2:", 17);
    write_file(conf, text);
    kill(gw.pid, SIGHUP);
    ck_assert(proc_wait_log(&gw, "configuration reloaded", 3000));
    char *log = proc_log(&gw);
    ck_assert_ptr_nonnull(strstr(log, "upstream.base_url changed"));
    free(log);
    open_window("+14155550010");
    ck_assert_int_eq(send_to("+14155550010", NULL), 200);
}
END_TEST

START_TEST(text_log_format)
{
    char text[1024];
    gateway_config(text, sizeof(text), ", \"log\": {\"format\": \"text\"}");
    write_file(conf, text);
    kill(gw.pid, SIGHUP);
    ck_assert(proc_wait_log(&gw, "configuration reloaded", 3000));
    ck_assert_int_eq(send_to("+14155550011", NULL), 403);
    ck_assert(proc_wait_log(&gw, " info request request_id=", 3000));
    char *log = proc_log(&gw);
    ck_assert_ptr_nonnull(strstr(log, "recipient=+1415*****11"));
    free(log);
}
END_TEST

START_TEST(drain_deadline_answers_503_and_exits)
{
    char text[1024];
    gateway_config(text, sizeof(text), NULL);
    char *p = strstr(text, "\"drain_timeout_ms\": 8000");
    ck_assert_ptr_nonnull(p);
    memcpy(p, "\"drain_timeout_ms\":  300", 24); /* same length */
    write_file(conf, text);
    kill(gw.pid, SIGHUP);
    ck_assert(proc_wait_log(&gw, "configuration reloaded", 3000));
    hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                       "{\"latency_ms\":4000}");
    open_window("+14155550020");
    char url[128], body[160];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, gw.port);
    snprintf(body, sizeof(body), "{\"sender_id\":12,\"recipient_phone\":"
                                 "\"+14155550020\",\"message\":\"late\"}");
    struct curl_slist *h =
        curl_slist_append(NULL, "Content-Type: application/json");
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
    ck_assert_int_eq(hx_sandbox_count(sb.port), 1);
    kill(gw.pid, SIGTERM);
    end = clock_mono_ms() + 8000;
    while (running && clock_mono_ms() < end) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    long st = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
    ck_assert_int_eq(st, 503); /* delivered, not an empty reply */
    curl_multi_remove_handle(m, e);
    curl_easy_cleanup(e);
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    ck_assert(proc_wait_log(&gw, "\"stopped\"", 5000));
    ck_assert(proc_wait_log(&gw, "\"decision\":\"cut_off\"", 100));
}
END_TEST

static Suite *
ops_suite(void)
{
    Suite *s = suite_create("metrics_drain_and_reload");
    TCase *tc = tcase_create("ops");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, metrics_move_with_each_decision);
    tcase_add_test(tc, drain_finishes_in_flight_and_refuses_new);
    tcase_add_test(tc, reload_adds_a_client_and_rotates_the_key);
    tcase_add_test(tc, reload_reports_restart_only_keys);
    tcase_add_test(tc, text_log_format);
    tcase_add_test(tc, drain_deadline_answers_503_and_exits);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(ops_suite());
}
