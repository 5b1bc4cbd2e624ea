/* sandbox_fault_modes.c - every fault mode of POST /_sandbox/faults on the
 * wire, against the real wagate-sandbox: raw sockets where the bytes (or
 * their absence) matter, libcurl where a client's reaction does. Each test
 * also checks what the sandbox's request log recorded. */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "clock.h"

#define SENDERS "/api/user/whatsapp/senders"
#define FREEFORM "/api/user/whatsapp/send-freeform"
#define PHONE "+14155550123"
#define AUTH "Authorization: Bearer " HARNESS_UPSTREAM_KEY
#define GET_SENDERS                                                            \
    "GET " SENDERS " HTTP/1.1\r\nHost: 127.0.0.1\r\n" AUTH "\r\n\r\n"

static struct proc sb;

static void
setup(void)
{
    ck_assert_int_eq(harness_start_sandbox(&sb, "0", NULL), 0);
}

static void
teardown(void)
{
    /* Exit 0 also means no leak under the sanitizers (LeakSanitizer would
     * change the exit status). */
    ck_assert_int_eq(proc_stop(&sb, 5000), 0);
}

static void
nap_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void
arm(const char *json)
{
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/faults", json), 200);
}

/* ---- raw sockets ---- */

static int
raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((unsigned short)port)};

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void
raw_send(int fd, const char *s)
{
    size_t n = strlen(s);
    ck_assert_int_eq(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* The length of one complete answer at the start of buf (head plus its
 * Content-Length), or 0 when the head is not complete yet. */
static size_t
answer_len(const char *buf)
{
    const char *end = strstr(buf, "\r\n\r\n"),
               *cl = strstr(buf, "Content-Length: ");

    if (end == NULL || cl == NULL || cl > end)
        return 0;
    return (size_t)(end + 4 - buf) + (size_t)atol(cl + 16);
}

/* What one read loop saw: bytes, how many reads returned some, and how it
 * ended (0 = EOF, an errno, or -1 = timed out with the peer still open). */
struct reading {
    char buf[16384];
    size_t len;
    int reads;
    int end;
};

#define ONE_ANSWER ((size_t)-1)

/* Reads until EOF, an error, `want` bytes (0 = no limit; ONE_ANSWER = one
 * complete answer) or timeout_ms. */
static void
raw_read(int fd, size_t want, int timeout_ms, struct reading *r)
{
    double end = clock_mono_ms() + timeout_ms;

    memset(r, 0, sizeof(*r));
    r->end = -1;
    while (clock_mono_ms() < end && r->len + 1 < sizeof(r->buf)) {
        size_t got = want == ONE_ANSWER ? answer_len(r->buf) : want;
        if (got != 0 && r->len >= got)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0)
            continue;
        ssize_t n = recv(fd, r->buf + r->len, sizeof(r->buf) - r->len - 1, 0);
        if (n < 0) {
            r->end = errno;
            break;
        }
        if (n == 0) {
            r->end = 0;
            break;
        }
        r->len += (size_t)n;
        r->reads++;
    }
    r->buf[r->len] = '\0';
}

/* ---- the request log ---- */

static json_object *
log_entry(json_object *reqs, size_t i)
{
    ck_assert_ptr_nonnull(reqs);
    ck_assert_uint_gt(json_object_array_length(reqs), i);
    return json_object_array_get_idx(reqs, i);
}

static int
entry_int(json_object *e, const char *key)
{
    json_object *v;
    ck_assert(json_object_object_get_ex(e, key, &v));
    return json_object_get_int(v);
}

static const char *
entry_str(json_object *e, const char *key)
{
    json_object *v;
    ck_assert(json_object_object_get_ex(e, key, &v));
    return v == NULL ? NULL : json_object_get_string(v);
}

/* Entry i was answered `status` after fault `fault` (NULL = none). */
static void
assert_logged(size_t i, const char *method, int status, const char *fault)
{
    json_object *reqs = hx_sandbox_requests(sb.port), *e = log_entry(reqs, i);
    const char *f = entry_str(e, "fault");

    ck_assert_str_eq(entry_str(e, "method"), method);
    ck_assert_int_eq(entry_int(e, "status"), status);
    if (fault == NULL)
        ck_assert_msg(f == NULL, "entry %zu: fault %s", i, f);
    else
        ck_assert_msg(f != NULL && strcmp(f, fault) == 0, "entry %zu: %s", i,
                      f ? f : "null");
    json_object_put(reqs);
}

static int
armed_count(void)
{
    char url[128];
    struct http_resp r;
    json_object *o, *n;
    int count = -1;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_sandbox/faults", sb.port);
    ck_assert_int_eq(http_do("GET", url, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    o = json_tokener_parse(r.body);
    if (o != NULL && json_object_object_get_ex(o, "count", &n))
        count = json_object_get_int(n);
    json_object_put(o);
    http_free(&r);
    return count;
}

static int
get_senders(struct http_resp *r)
{
    const char *h[] = {AUTH, NULL};
    return harness_get(sb.port, "GET", SENDERS, h, r);
}

/* ---- reset, close, garbage ---- */

START_TEST(reset_is_a_tcp_rst)
{
    struct reading rd;
    int fd;

    arm("{\"mode\":\"reset\"}");
    fd = raw_connect(sb.port);
    raw_send(fd, GET_SENDERS);
    raw_read(fd, 0, 3000, &rd);
    close(fd);
    ck_assert_uint_eq(rd.len, 0);
    ck_assert_msg(rd.end == ECONNRESET, "ended with %d (%s)", rd.end,
                  rd.end > 0 ? strerror(rd.end) : "eof/timeout");
    assert_logged(0, "GET", 0, "reset");
    ck_assert_int_eq(armed_count(), 0);
}
END_TEST

START_TEST(close_is_an_eof_without_a_byte)
{
    struct reading rd;
    struct http_resp r;
    int fd;

    arm("{\"mode\":\"close\",\"times\":2}");
    fd = raw_connect(sb.port);
    raw_send(fd, GET_SENDERS);
    raw_read(fd, 0, 3000, &rd);
    close(fd);
    ck_assert_uint_eq(rd.len, 0);
    ck_assert_int_eq(rd.end, 0);
    /* libcurl on a fresh connection: "Empty reply from server". */
    ck_assert_int_ne(get_senders(&r), 0);
    ck_assert_int_eq(r.curl_error, CURLE_GOT_NOTHING);
    http_free(&r);
    /* times 2 used up: the third is answered. */
    ck_assert_int_eq(get_senders(&r), 0);
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
    assert_logged(1, "GET", 0, "close");
    assert_logged(2, "GET", 200, NULL);
}
END_TEST

START_TEST(garbage_is_not_http)
{
    struct reading rd;
    struct http_resp r;
    int fd;

    arm("{\"mode\":\"garbage\",\"times\":2}");
    fd = raw_connect(sb.port);
    raw_send(fd, GET_SENDERS);
    raw_read(fd, 0, 3000, &rd);
    close(fd);
    ck_assert_int_eq(rd.end, 0);
    ck_assert_str_eq(rd.buf, "NOT HTTP\r\n\r\n");
    ck_assert_int_ne(get_senders(&r), 0);
    ck_assert_int_eq(r.curl_error, CURLE_UNSUPPORTED_PROTOCOL); /* HTTP/0.9 */
    http_free(&r);
    assert_logged(0, "GET", 0, "garbage");
    assert_logged(1, "GET", 0, "garbage");
}
END_TEST

/* ---- slow ---- */

START_TEST(slow_arrives_byte_by_byte_and_complete)
{
    struct http_resp normal, r;
    struct reading rd;
    size_t want;
    int fd;

    ck_assert_int_eq(get_senders(&normal), 0);
    arm("{\"mode\":\"slow\",\"delay_ms\":1}");
    fd = raw_connect(sb.port);
    raw_send(fd, GET_SENDERS);
    raw_read(fd, 0, 15000, &rd);
    close(fd);
    ck_assert_int_eq(rd.end, 0); /* closed after the last byte */
    want = answer_len(rd.buf);
    ck_assert_uint_gt(want, 0);
    ck_assert_uint_eq(rd.len, want);
    ck_assert(strncmp(rd.buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
    ck_assert_ptr_nonnull(strstr(rd.buf, "\r\nConnection: close\r\n"));
    ck_assert_str_eq(strstr(rd.buf, "\r\n\r\n") + 4, normal.body);
    /* One byte per tick: nearly every byte came in a read of its own. */
    ck_assert_msg(rd.reads > (int)want / 2, "%d reads for %zu bytes", rd.reads,
                  want);
    /* libcurl gets the same answer, whole. */
    arm("{\"mode\":\"slow\",\"delay_ms\":0}");
    ck_assert_int_eq(get_senders(&r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, normal.body);
    http_free(&r);
    http_free(&normal);
    assert_logged(1, "GET", 200, "slow");
    assert_logged(2, "GET", 200, "slow");
}
END_TEST

/* slow processes the request: a send spends balance like any send. */
START_TEST(slow_send_is_processed)
{
    struct http_resp r;
    char body[160];
    const char *h[] = {AUTH, NULL};

    snprintf(body, sizeof(body),
             "{\"sender_id\":12,\"recipient_phone\":\"%s\"}", PHONE);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound", body), 204);
    arm("{\"mode\":\"slow\",\"delay_ms\":0,\"path\":\"" FREEFORM "\"}");
    ck_assert_int_eq(
        harness_post(sb.port, FREEFORM,
                     "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                     "\",\"message\":\"slowly\"}",
                     h, &r),
        0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"success\":true"));
    http_free(&r);
    assert_logged(0, "POST", 200, "slow");
}
END_TEST

/* A client that leaves in the middle of a slow answer ends it. */
START_TEST(slow_client_leaving_ends_it)
{
    struct reading rd;
    struct http_resp r;
    int fd;

    arm("{\"mode\":\"slow\",\"delay_ms\":50}");
    fd = raw_connect(sb.port);
    raw_send(fd, GET_SENDERS);
    raw_read(fd, 3, 3000, &rd);
    ck_assert_uint_eq(rd.len, 3);
    close(fd);
    ck_assert_int_eq(get_senders(&r), 0); /* still serving */
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
    assert_logged(0, "GET", 0, "slow"); /* never completely answered */
}
END_TEST

/* ---- status ---- */

START_TEST(status_429_with_retry_after_then_normal)
{
    struct http_resp r;
    char v[64];
    const char *body = "{\"success\":false,\"error\":\"Too Many Attempts.\","
                       "\"error_code\":\"RATE_LIMITED\"}";
    char spec[512];

    snprintf(spec, sizeof(spec),
             "{\"mode\":\"status\",\"status\":429,\"path\":\"" SENDERS "\","
             "\"headers\":{\"Retry-After\":\"2\"},\"body\":%s}",
             body);
    arm(spec);
    ck_assert_int_eq(get_senders(&r), 0);
    ck_assert_int_eq(r.status, 429);
    ck_assert_str_eq(http_header(&r, "Retry-After", v, sizeof(v)), "2");
    ck_assert_str_eq(http_header(&r, "Content-Type", v, sizeof(v)),
                     "application/json");
    ck_assert_str_eq(r.body, body);
    http_free(&r);
    ck_assert_int_eq(get_senders(&r), 0);
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
    assert_logged(0, "GET", 429, "status");
    assert_logged(1, "GET", 200, NULL);
}
END_TEST

START_TEST(status_500_text_body)
{
    struct http_resp r;
    char v[64];

    arm("{\"mode\":\"status\",\"status\":500,\"body\":\"oops\","
        "\"headers\":{\"Content-Type\":\"text/plain\",\"X-Trace\":\"a b\"}}");
    ck_assert_int_eq(get_senders(&r), 0);
    ck_assert_int_eq(r.status, 500);
    ck_assert_str_eq(r.body, "oops");
    ck_assert_str_eq(http_header(&r, "Content-Type", v, sizeof(v)),
                     "text/plain");
    ck_assert_str_eq(http_header(&r, "X-Trace", v, sizeof(v)), "a b");
    ck_assert_ptr_null(strstr(r.headers, "application/json"));
    http_free(&r);
}
END_TEST

/* ---- hang ---- */

static int
fd_count(pid_t pid)
{
    char path[64];
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    d = opendir(path);
    ck_assert_ptr_nonnull(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* Waits (bounded) until the sandbox holds `want` descriptors. */
static int
wait_fd_count(pid_t pid, int want, int timeout_ms)
{
    double end = clock_mono_ms() + timeout_ms;
    int n;

    while ((n = fd_count(pid)) != want && clock_mono_ms() < end)
        nap_ms(5);
    return n;
}

START_TEST(hang_never_answers_and_frees_on_close)
{
    struct reading rd;
    struct http_resp r;
    int fd, base;

    base = fd_count(sb.pid);
    arm("{\"mode\":\"hang\"}");
    fd = raw_connect(sb.port);
    raw_send(fd, GET_SENDERS);
    /* Synchronise on the log: the request has arrived and is held. */
    for (int i = 0; i < 400 && hx_sandbox_count(sb.port) < 1; i++)
        nap_ms(5);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 1);
    raw_read(fd, 0, 500, &rd);
    ck_assert_uint_eq(rd.len, 0);
    ck_assert_int_eq(rd.end, -1); /* no answer, still open */
    /* The sandbox keeps serving others meanwhile. */
    ck_assert_int_eq(get_senders(&r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert(r.total_ms < 1000);
    http_free(&r);
    ck_assert_int_eq(wait_fd_count(sb.pid, base + 1, 2000), base + 1);
    /* The client leaves: the held connection is freed. */
    close(fd);
    ck_assert_int_eq(wait_fd_count(sb.pid, base, 3000), base);
    assert_logged(0, "GET", 0, "hang");
}
END_TEST

/* Stopping the sandbox while a request hangs: exit 0, nothing leaked. */
START_TEST(hang_is_freed_at_shutdown)
{
    struct proc other;
    int fd;
    const char *extra[] = {"--latency-ms", "0", NULL};

    ck_assert_int_eq(harness_start_sandbox(&other, "0", extra), 0);
    ck_assert_int_eq(hx_sandbox_control(other.port, "POST", "/_sandbox/faults",
                                        "{\"mode\":\"hang\"}"),
                     200);
    fd = raw_connect(other.port);
    raw_send(fd, GET_SENDERS);
    for (int i = 0; i < 400 && hx_sandbox_count(other.port) < 1; i++)
        nap_ms(5);
    ck_assert_int_eq(hx_sandbox_count(other.port), 1);
    ck_assert_int_eq(proc_stop(&other, 5000), 0);
    close(fd);
}
END_TEST

/* ---- drop_next ---- */

struct seen {
    int died; /* libcurl said "Connection died" */
};

static int
on_debug(CURL *e, curl_infotype type, char *data, size_t size, void *arg)
{
    struct seen *s = arg;

    (void)e;
    if (type == CURLINFO_TEXT && size >= 15 &&
        memmem(data, size, "Connection died", 15) != NULL)
        s->died++;
    return 0;
}

static size_t
discard(char *d, size_t size, size_t n, void *arg)
{
    (void)d;
    (void)arg;
    return size * n;
}

static CURL *
easy_for(const char *path, struct seen *s, struct curl_slist *hs)
{
    CURL *e = curl_easy_init();
    char url[256];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", sb.port, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, s);
    return e;
}

/* Two GETs on one easy handle: the second finds its kept-alive connection
 * closed unanswered, and libcurl re-sends it on a fresh one by itself. */
START_TEST(drop_next_makes_libcurl_retry_a_get)
{
    struct seen s = {0};
    struct curl_slist *hs = curl_slist_append(NULL, AUTH);
    CURL *e = easy_for(SENDERS, &s, hs);
    long status = 0, connects = 0;

    ck_assert_int_eq(curl_easy_perform(e), CURLE_OK);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    ck_assert_int_eq(connects, 1);
    arm("{\"mode\":\"drop_next\",\"path\":\"" SENDERS "\"}");
    ck_assert_int_eq(curl_easy_perform(e), CURLE_OK);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(s.died, 1);
    ck_assert_int_eq(connects, 1); /* the retry's fresh connection */
    curl_easy_cleanup(e);
    curl_slist_free_all(hs);
    /* What arrived: the first, the dropped one, the retry. */
    ck_assert_int_eq(hx_sandbox_count(sb.port), 3);
    assert_logged(0, "GET", 200, NULL);
    assert_logged(1, "GET", 0, "drop_next");
    assert_logged(2, "GET", 200, NULL);
    ck_assert_int_eq(armed_count(), 0);
}
END_TEST

/* Only one attempt per transfer, as wagate allows for a POST. */
static int
on_prereq(void *arg, char *ip, char *local_ip, int port, int local_port)
{
    int *attempts = arg;

    (void)ip;
    (void)local_ip;
    (void)port;
    (void)local_port;
    return ++*attempts > 1 ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

/* The gateway's case: a POST on a reused connection that dies; a client
 * that refuses libcurl's second attempt sends the message once. */
START_TEST(drop_next_post_reaches_the_sandbox_once)
{
    struct seen s = {0};
    struct curl_slist *hs = curl_slist_append(NULL, AUTH);
    const char *body = "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                       "\",\"message\":\"only once\"}";
    CURL *e;
    int attempts = 0;
    long status = 0;

    hs = curl_slist_append(hs, "Content-Type: application/json");
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound",
                                        "{\"sender_id\":12,\"recipient_phone\":"
                                        "\"" PHONE "\"}"),
                     204);
    e = easy_for(FREEFORM, &s, hs);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, &attempts);
    ck_assert_int_eq(curl_easy_perform(e), CURLE_OK);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    ck_assert_int_eq(status, 200);
    arm("{\"mode\":\"drop_next\",\"path\":\"" FREEFORM "\",\"match\":\"only "
        "once\"}");
    attempts = 0;
    ck_assert_int_eq(curl_easy_perform(e), CURLE_ABORTED_BY_CALLBACK);
    ck_assert_int_eq(s.died, 1);
    ck_assert_int_eq(attempts, 2);
    curl_easy_cleanup(e);
    curl_slist_free_all(hs);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 2);
    assert_logged(0, "POST", 200, NULL);
    assert_logged(1, "POST", 0, "drop_next");
}
END_TEST

/* On the wire: a fresh connection is served and the fault waits; the next
 * request on that connection gets the connection closed, no byte. */
START_TEST(drop_next_waits_for_a_reused_connection)
{
    struct reading rd;
    size_t want;
    int fd;

    arm("{\"mode\":\"drop_next\"}");
    fd = raw_connect(sb.port);
    raw_send(fd, GET_SENDERS);
    raw_read(fd, ONE_ANSWER, 3000, &rd);
    /* A whole answer, the connection kept open. */
    want = answer_len(rd.buf);
    ck_assert_int_eq(rd.end, -1);
    ck_assert_uint_gt(want, 0);
    ck_assert_uint_eq(rd.len, want);
    ck_assert(strncmp(rd.buf, "HTTP/1.1 200", 12) == 0);
    ck_assert_int_eq(armed_count(), 1); /* still armed */
    raw_send(fd, GET_SENDERS);
    raw_read(fd, 0, 3000, &rd);
    close(fd);
    ck_assert_uint_eq(rd.len, 0);
    ck_assert_int_eq(rd.end, 0);
    assert_logged(0, "GET", 200, NULL);
    assert_logged(1, "GET", 0, "drop_next");
    ck_assert_int_eq(armed_count(), 0);
}
END_TEST

/* ---- matching ---- */

START_TEST(path_and_match_pick_the_requests)
{
    struct http_resp r;
    const char *h[] = {AUTH, NULL};

    arm("{\"mode\":\"close\",\"path\":\"" FREEFORM "\",\"match\":\"boom\"}");
    /* Another path, then the path without the substring: answered. */
    ck_assert_int_eq(get_senders(&r), 0);
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
    ck_assert_int_eq(
        harness_post(sb.port, FREEFORM,
                     "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                     "\",\"message\":\"calm\"}",
                     h, &r),
        0);
    ck_assert_int_eq(r.status, 403); /* no window: the normal answer */
    http_free(&r);
    ck_assert_int_ne(
        harness_post(sb.port, FREEFORM,
                     "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                     "\",\"message\":\"boom\"}",
                     h, &r),
        0);
    ck_assert_int_eq(r.curl_error, CURLE_GOT_NOTHING);
    http_free(&r);
    assert_logged(0, "GET", 200, NULL);
    assert_logged(1, "POST", 403, NULL);
    assert_logged(2, "POST", 0, "close");
}
END_TEST

/* Faults never touch the control routes, so they can always be undone. */
START_TEST(control_routes_are_never_faulted)
{
    struct http_resp r;

    arm("{\"mode\":\"close\",\"times\":5}");
    arm("{\"mode\":\"reset\"}");
    ck_assert_int_eq(armed_count(), 2);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 0);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "DELETE", "/_sandbox/faults", NULL), 204);
    ck_assert_int_eq(armed_count(), 0);
    ck_assert_int_eq(get_senders(&r), 0);
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
}
END_TEST

static Suite *
faults_suite(void)
{
    Suite *s = suite_create("sandbox_fault_modes");
    TCase *tc = tcase_create("wire");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, reset_is_a_tcp_rst);
    tcase_add_test(tc, close_is_an_eof_without_a_byte);
    tcase_add_test(tc, garbage_is_not_http);
    tcase_add_test(tc, slow_arrives_byte_by_byte_and_complete);
    tcase_add_test(tc, slow_send_is_processed);
    tcase_add_test(tc, slow_client_leaving_ends_it);
    tcase_add_test(tc, status_429_with_retry_after_then_normal);
    tcase_add_test(tc, status_500_text_body);
    tcase_add_test(tc, hang_never_answers_and_frees_on_close);
    tcase_add_test(tc, hang_is_freed_at_shutdown);
    tcase_add_test(tc, drop_next_makes_libcurl_retry_a_get);
    tcase_add_test(tc, drop_next_post_reaches_the_sandbox_once);
    tcase_add_test(tc, drop_next_waits_for_a_reused_connection);
    tcase_add_test(tc, path_and_match_pick_the_requests);
    tcase_add_test(tc, control_routes_are_never_faulted);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(faults_suite());
}
