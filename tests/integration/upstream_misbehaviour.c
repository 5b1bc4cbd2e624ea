/* upstream_misbehaviour.c - what the gateway does when the upstream
 * misbehaves, end to end: the real wagate in front of the real
 * wagate-sandbox (its faults on demand, SPEC section 9) or of a tiny
 * scripted upstream in this file (for what the sandbox cannot say:
 * trailers, invalid HTTP, a listener that goes away between two requests).
 *
 * Each test asserts what the caller got and what the upstream received:
 * 502/504 bodies say "outcome": "not_sent" or "unknown" (SPEC section 2),
 * an unknown outcome is replayed for its Idempotency-Key without a new
 * send, not_sent frees the key (section 5), shaping holds on the wire
 * (section 6), a 429's pause is bounded and can be ended (sections 6, 7). */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "clock.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define PHONE "+14155550123"
#define ADMIN_TOKEN "adm-upstream-7"
#define ADMIN_SHA                                                              \
    "e853326709437fbc88103017f4dffa60b092dd254531afe7b318459de0aaf82f"

static const char *
bin(const char *var, const char *fallback)
{
    const char *v = getenv(var);
    return v && *v ? v : fallback;
}

/* ---- a gateway with the upstream settings a test needs ---- */

struct gw_opts {
    int port;          /* the upstream's */
    long timeout_ms;   /* default 1500 */
    const char *rate;  /* default "10000" */
    const char *burst; /* default "10000" */
    long max_queue_ms; /* default 10000; -1 for 0 */
    long max_pause_ms; /* default 60000 */
    long drain_ms;     /* default 10000 */
    long max_conns;    /* upstream.max_connections; default 16 */
    const char *extra; /* more top-level members, starting with ',' */
};

static char conf[64];

static void
gw_config_text(const struct gw_opts *o, char *out, size_t n)
{
    snprintf(out, n,
             "{\"listen\": [\"127.0.0.1:0\"],\n"
             " \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\",\n"
             "   \"timeout_ms\": %ld, \"connect_timeout_ms\": 500,\n"
             "   \"rate_limit_rps\": %s, \"rate_limit_burst\": %s,\n"
             "   \"max_queue_ms\": %ld, \"max_pause_ms\": %ld,\n"
             "   \"max_connections\": %ld},\n"
             " \"admin\": {\"token_sha256\": \"" ADMIN_SHA "\"},\n"
             " \"limits\": {\"client_timeout_ms\": 5000},\n"
             " \"drain_timeout_ms\": %ld%s}\n",
             o->port, o->timeout_ms ? o->timeout_ms : 1500,
             o->rate ? o->rate : "10000", o->burst ? o->burst : "10000",
             o->max_queue_ms < 0 ? 0
             : o->max_queue_ms   ? o->max_queue_ms
                                 : 10000,
             o->max_pause_ms ? o->max_pause_ms : 60000,
             o->max_conns ? o->max_conns : 16,
             o->drain_ms ? o->drain_ms : 10000, o->extra ? o->extra : "");
}

static void
gw_start(struct proc *p, const struct gw_opts *o)
{
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    char *env[] = {keyenv, NULL};
    char text[2048];
    gw_config_text(o, text, sizeof(text));
    write_temp(text, conf, sizeof(conf));
    char *argv[] = {(char *)bin("WAGATE_BIN", "./wagate"), "-c", conf, NULL};
    ck_assert_int_eq(proc_start(p, argv, env), 0);
}

/* Waits (bounded) for a process that is exiting by itself, without
 * signalling it: a second SIGTERM during its teardown would kill it. */
static int
wait_exit(struct proc *p, int timeout_ms)
{
    double end = clock_mono_ms() + timeout_ms;
    int st;
    while (clock_mono_ms() < end) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static void
gw_stop(struct proc *p)
{
    ck_assert_int_eq(proc_stop(p, 10000), 0);
    unlink(conf);
}

/* A sandbox on a given port (0 = any) with extra arguments. */
static void
sb_start_on(struct proc *p, int port, const char *rate, const char *latency)
{
    char listen[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    char *argv[] = {(char *)bin("SANDBOX_BIN", "./wagate-sandbox"),
                    "--listen",
                    listen,
                    "--api-key",
                    HARNESS_UPSTREAM_KEY,
                    "--rate-limit",
                    (char *)rate,
                    "--latency-ms",
                    (char *)latency,
                    NULL};
    ck_assert_int_eq(proc_start(p, argv, NULL), 0);
}

static void
open_window(int sb_port, const char *phone)
{
    char body[160];
    snprintf(body, sizeof(body),
             "{\"sender_id\":12,\"recipient_phone\":\"%s\"}", phone);
    ck_assert_int_eq(
        hx_sandbox_control(sb_port, "POST", "/_sandbox/inbound", body), 204);
}

static void
send_body(char *out, size_t n, const char *text)
{
    snprintf(out, n,
             "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
             "\",\"message\":\"%s\"}",
             text);
}

/* POST a send, with an Idempotency-Key when key is not NULL. */
static void
post_send(int gw_port, const char *body, const char *key, struct http_resp *r)
{
    char kh[300];
    const char *h[] = {kh, NULL};
    snprintf(kh, sizeof(kh), "Idempotency-Key: %s", key ? key : "");
    ck_assert_int_eq(harness_post(gw_port, FREEFORM, body, key ? h : NULL, r),
                     0);
}

/* The gateway's 502/504 (or 503) with its outcome. */
static void
assert_outcome(const struct http_resp *r, long status, const char *code,
               const char *outcome)
{
    char v[128];
    ck_assert_msg(r->status == status, "status %ld, body %s", r->status,
                  r->body);
    ck_assert_str_eq(http_header(r, "Content-Type", v, sizeof(v)),
                     "application/json");
    char want[96];
    snprintf(want, sizeof(want), "gateway; reason=%s", code);
    for (char *c = want + 16; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    ck_assert_ptr_nonnull(http_header(r, "X-Wagate", v, sizeof(v)));
    if (strcmp(v, "replay") != 0) /* a kept one says so instead */
        ck_assert_str_eq(v, want);
    json_object *o = json_tokener_parse(r->body), *f;
    ck_assert_ptr_nonnull(o);
    ck_assert(json_object_object_get_ex(o, "error_code", &f));
    ck_assert_str_eq(json_object_get_string(f), code);
    ck_assert_msg(json_object_object_get_ex(o, "outcome", &f),
                  "no outcome in %s", r->body);
    ck_assert_str_eq(json_object_get_string(f), outcome);
    ck_assert(json_object_object_get_ex(o, "error", &f));
    const char *sentence = json_object_get_string(f);
    if (strcmp(outcome, "unknown") == 0)
        ck_assert_msg(strstr(sentence, "may have") != NULL, "%s", sentence);
    json_object_put(o);
}

static void
assert_xwagate(const struct http_resp *r, const char *want)
{
    char v[128];
    ck_assert_ptr_nonnull(http_header(r, "X-Wagate", v, sizeof(v)));
    if (strcmp(v, "replay") != 0) /* a kept one says so instead */
        ck_assert_str_eq(v, want);
}

/* Recorded API requests whose body contains needle. */
static int
sb_count_body(int sb_port, const char *needle)
{
    json_object *reqs = hx_sandbox_requests(sb_port), *b;
    int n = 0;
    for (size_t i = 0; reqs && i < json_object_array_length(reqs); i++) {
        json_object *q = json_object_array_get_idx(reqs, i);
        const char *text = json_object_object_get_ex(q, "body", &b)
                               ? json_object_get_string(b)
                               : NULL;
        n += text != NULL && strstr(text, needle) != NULL;
    }
    json_object_put(reqs);
    return n;
}

static char *
scrape(int gw_port)
{
    struct http_resp r;
    ck_assert_int_eq(harness_get(gw_port, "GET", "/metrics", NULL, &r), 0);
    char *body = strdup(r.body);
    http_free(&r);
    return body;
}

static int
admin_call(int gw_port, const char *method, const char *path)
{
    const char *h[] = {"Authorization: Bearer " ADMIN_TOKEN, NULL};
    struct http_resp r;
    ck_assert_int_eq(harness_get(gw_port, method, path, h, &r), 0);
    int st = (int)r.status;
    http_free(&r);
    return st;
}

static int
header_lines(const struct http_resp *r, const char *name)
{
    int n = 0;
    size_t len = strlen(name);
    for (const char *l = r->headers; l && *l;) {
        if (strncasecmp(l, name, len) == 0 && l[len] == ':')
            n++;
        const char *eol = strstr(l, "\r\n");
        l = eol ? eol + 2 : l + strlen(l);
    }
    return n;
}

/* ---- a scripted upstream: a thread on a loopback listener ----
 *
 * Request k (counted over all connections, from 0) gets answers[k] (the
 * last one again beyond the script), written whole; NULL reads the request
 * and closes its connection without a byte. The connection stays open
 * otherwise. With close_listener_after_first the listener closes once the
 * first answer is out: later connects are refused. A \002 in an answer is
 * not sent: the fake waits 50 ms there, so what follows arrives in a later
 * segment. Bounded: every poll is 50 ms, the thread ends on stop or after
 * 30 s. */

#define FAKE_MAX_ANSWERS 16
#define FAKE_MAX_CONNS 16
#define FAKE_BUF 16384

struct fake_conn {
    int fd;
    char buf[FAKE_BUF];
    size_t len;
};

struct fake {
    int lfd, port;
    pthread_t th;
    const char *answers[FAKE_MAX_ANSWERS];
    size_t nanswers;
    int close_listener_after_first;
    struct fake_conn conns[FAKE_MAX_CONNS];
    atomic_int nreq;
    atomic_int nwritten; /* answers written whole */
    atomic_int stop;
};

/* The length of the first complete request in buf, or 0. */
static size_t
fake_request_len(const char *buf, size_t len)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    size_t head = (size_t)(end - buf) + 4, body = 0;
    for (const char *l = buf; l < end;) {
        const char *eol = memmem(l, (size_t)(end - l) + 2, "\r\n", 2);
        if (strncasecmp(l, "Content-Length:", 15) == 0)
            body = (size_t)strtoul(l + 15, NULL, 10);
        l = eol + 2;
    }
    return head + body <= len ? head + body : 0;
}

static void
fake_close(struct fake_conn *c)
{
    close(c->fd);
    c->fd = -1;
    c->len = 0;
}

static void
fake_serve(struct fake *f, struct fake_conn *c)
{
    size_t n;
    while (c->fd >= 0 && (n = fake_request_len(c->buf, c->len)) > 0) {
        memmove(c->buf, c->buf + n, c->len - n);
        c->len -= n;
        int k = atomic_fetch_add(&f->nreq, 1);
        const char *a =
            f->answers[(size_t)k < f->nanswers ? (size_t)k : f->nanswers - 1];
        if (a == NULL) {
            fake_close(c);
            return;
        }
        size_t off = 0, alen = strlen(a);
        while (off < alen) {
            if (a[off] == '\002') {
                struct timespec ts = {0, 50000000};
                nanosleep(&ts, NULL);
                off++;
                continue;
            }
            const char *pause = memchr(a + off, '\002', alen - off);
            size_t part = pause ? (size_t)(pause - (a + off)) : alen - off;
            ssize_t w = send(c->fd, a + off, part, MSG_NOSIGNAL);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        atomic_fetch_add(&f->nwritten, 1);
        if (f->close_listener_after_first && f->lfd >= 0) {
            close(f->lfd);
            f->lfd = -1;
        }
    }
}

static void
fake_accept(struct fake *f)
{
    int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (size_t i = 0; i < FAKE_MAX_CONNS; i++) {
        if (f->conns[i].fd < 0) {
            f->conns[i].fd = fd;
            f->conns[i].len = 0;
            return;
        }
    }
    close(fd);
}

static void *
fake_main(void *arg)
{
    struct fake *f = arg;
    double end = clock_mono_ms() + 30000;
    while (!atomic_load(&f->stop) && clock_mono_ms() < end) {
        struct pollfd p[FAKE_MAX_CONNS + 1];
        p[0] = (struct pollfd){f->lfd, POLLIN, 0};
        for (size_t i = 0; i < FAKE_MAX_CONNS; i++)
            p[i + 1] = (struct pollfd){f->conns[i].fd, POLLIN, 0};
        if (poll(p, FAKE_MAX_CONNS + 1, 50) <= 0)
            continue;
        if (f->lfd >= 0 && (p[0].revents & POLLIN))
            fake_accept(f);
        for (size_t i = 0; i < FAKE_MAX_CONNS; i++) {
            struct fake_conn *c = &f->conns[i];
            if (c->fd < 0 || !(p[i + 1].revents & (POLLIN | POLLHUP)))
                continue;
            ssize_t r = recv(c->fd, c->buf + c->len, FAKE_BUF - c->len, 0);
            if (r <= 0) {
                fake_close(c);
                continue;
            }
            c->len += (size_t)r;
            fake_serve(f, c);
            if (c->fd >= 0 && c->len == FAKE_BUF)
                fake_close(c); /* a request larger than a test sends */
        }
    }
    return NULL;
}

/* answers: NULL-free list of n entries (an entry may be NULL). */
static void
fake_start(struct fake *f, const char *const *answers, size_t n)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < FAKE_MAX_CONNS; i++)
        f->conns[i].fd = -1;
    ck_assert(n >= 1 && n <= FAKE_MAX_ANSWERS);
    for (size_t i = 0; i < n; i++)
        f->answers[i] = answers[i];
    f->nanswers = n;
    /* close-on-exec: a gateway started later must not inherit the
     * listener (it would keep accepting into its backlog once closed) */
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof(a);
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(f->lfd, 16), 0);
    getsockname(f->lfd, (struct sockaddr *)&a, &l);
    f->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void
fake_stop(struct fake *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->th, NULL);
    if (f->lfd >= 0)
        close(f->lfd);
    for (size_t i = 0; i < FAKE_MAX_CONNS; i++)
        if (f->conns[i].fd >= 0)
            close(f->conns[i].fd);
}

#define OK_ANSWER                                                              \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"                    \
    "Content-Length: 16\r\n\r\n{\"success\":true}"

/* ==== B: unknown outcomes ==== */

/* A kept-alive connection dies when the next POST arrives (the sandbox's
 * drop_next): the POST left, so the outcome is unknown and the answer is
 * kept for the key; a refused connect (the sandbox stopped) sends nothing,
 * so the key is free and its retry goes upstream. The sandbox sees each
 * message at most once. */
START_TEST(drop_next_is_unknown_and_refused_is_not_sent)
{
    struct proc sb, gw;
    struct http_resp r, r2;
    char body[200], b2[200];
    sb_start_on(&sb, 0, "0", "0");
    gw_start(&gw, &(struct gw_opts){.port = sb.port});
    open_window(sb.port, PHONE);
    send_body(body, sizeof(body), "warm-up");
    post_send(gw.port, body, NULL, &r); /* opens the kept-alive connection */
    ck_assert_int_eq(r.status, 200);
    http_free(&r);

    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/faults",
                           "{\"mode\":\"drop_next\",\"path\":\"" FREEFORM
                           "\",\"times\":1}"),
        200);
    send_body(body, sizeof(body), "dropped-once");
    post_send(gw.port, body, "key-drop", &r);
    assert_outcome(&r, 502, "UPSTREAM_UNAVAILABLE", "unknown");
    ck_assert_int_le(sb_count_body(sb.port, "dropped-once"), 1);
    /* the same key again: the kept answer, nothing sent */
    post_send(gw.port, body, "key-drop", &r2);
    ck_assert_int_eq(r2.status, 502);
    assert_xwagate(&r2, "replay");
    ck_assert_str_eq(r2.body, r.body);
    ck_assert_int_le(sb_count_body(sb.port, "dropped-once"), 1);
    http_free(&r);
    http_free(&r2);
    char *m = scrape(gw.port);
    ck_assert_ptr_nonnull(strstr(m,
                                 "wagate_upstream_errors_total{kind=\""
                                 "lost_after_send\",outcome=\"unknown\"} 1"));
    free(m);

    /* refused: nothing listens any more */
    int port = sb.port;
    ck_assert_int_eq(proc_stop(&sb, 5000), 0);
    send_body(b2, sizeof(b2), "refused-then-sent");
    post_send(gw.port, b2, "key-refused", &r);
    assert_outcome(&r, 502, "UPSTREAM_UNAVAILABLE", "not_sent");
    http_free(&r);
    m = scrape(gw.port);
    ck_assert_ptr_nonnull(strstr(m, "wagate_upstream_errors_total{kind=\""
                                    "connect_refused\",outcome=\"not_sent\"}"));
    free(m);
    /* the key is free: once the upstream is back, its retry is sent */
    sb_start_on(&sb, port, "0", "0");
    open_window(sb.port, PHONE);
    post_send(gw.port, b2, "key-refused", &r);
    ck_assert_int_eq(r.status, 200);
    assert_xwagate(&r, "upstream");
    http_free(&r);
    ck_assert_int_eq(sb_count_body(sb.port, "refused-then-sent"), 1);
    /* and the unknown one is still replayed, not sent */
    post_send(gw.port, body, "key-drop", &r);
    ck_assert_int_eq(r.status, 502);
    assert_xwagate(&r, "replay");
    http_free(&r);
    ck_assert_int_eq(sb_count_body(sb.port, "dropped-once"), 0);
    gw_stop(&gw);
    ck_assert_int_eq(proc_stop(&sb, 5000), 0);
}
END_TEST

/* The same two failures in one transfer: the kept-alive connection dies
 * after the POST left, and libcurl's fresh connect for its retry is
 * refused. The failure is a refused connect, but the message may have
 * arrived with the first send: unknown, and the upstream saw it once. */
START_TEST(dead_connection_then_refused_reconnect_is_unknown)
{
    const char *script[] = {OK_ANSWER, NULL};
    struct fake f;
    struct proc gw;
    struct http_resp r;
    char body[200];
    fake_start(&f, script, 2);
    f.close_listener_after_first = 1;
    gw_start(&gw, &(struct gw_opts){.port = f.port});
    send_body(body, sizeof(body), "first");
    post_send(gw.port, body, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
    send_body(body, sizeof(body), "second");
    post_send(gw.port, body, "key-dead", &r);
    assert_outcome(&r, 502, "UPSTREAM_UNAVAILABLE", "unknown");
    http_free(&r);
    ck_assert_int_eq(atomic_load(&f.nreq), 2); /* the second arrived once */
    post_send(gw.port, body, "key-dead", &r);
    ck_assert_int_eq(r.status, 502);
    assert_xwagate(&r, "replay");
    http_free(&r);
    ck_assert_int_eq(atomic_load(&f.nreq), 2);
    char *m = scrape(gw.port);
    ck_assert_msg(strstr(m, "wagate_upstream_errors_total{kind=\""
                            "connect_refused\",outcome=\"unknown\"} 1"),
                  "%s", strstr(m, "wagate_upstream_errors_total"));
    free(m);
    gw_stop(&gw);
    fake_stop(&f);
}
END_TEST

/* Every fault after the request was read is an unknown outcome, kept for
 * its key and replayed without a new send; an upstream 5xx frees the key
 * (the upstream refused: nothing was sent). */
START_TEST(faults_after_the_request_left_are_kept_unknown)
{
    static const struct {
        const char *fault, *kind, *code;
        long status;
    } cases[] = {
        {"{\"mode\":\"reset\"}", "reset", "UPSTREAM_UNAVAILABLE", 502},
        {"{\"mode\":\"close\"}", "closed", "UPSTREAM_UNAVAILABLE", 502},
        {"{\"mode\":\"garbage\"}", "invalid_response", "UPSTREAM_UNAVAILABLE",
         502},
        {"{\"mode\":\"hang\"}", "timeout", "UPSTREAM_TIMEOUT", 504},
    };
    struct proc sb, gw;
    struct http_resp r, r2;
    char body[200], key[32], series[160];
    sb_start_on(&sb, 0, "0", "0");
    gw_start(&gw, &(struct gw_opts){.port = sb.port});
    open_window(sb.port, PHONE);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/faults",
                                            cases[i].fault),
                         200);
        snprintf(key, sizeof(key), "fault-%zu", i);
        char text[32];
        snprintf(text, sizeof(text), "fault-msg-%zu", i);
        send_body(body, sizeof(body), text);
        post_send(gw.port, body, key, &r);
        assert_outcome(&r, cases[i].status, cases[i].code, "unknown");
        ck_assert_int_eq(sb_count_body(sb.port, text), 1);
        post_send(gw.port, body, key, &r2);
        ck_assert_int_eq(r2.status, cases[i].status);
        assert_xwagate(&r2, "replay");
        ck_assert_str_eq(r2.body, r.body);
        ck_assert_int_eq(sb_count_body(sb.port, text), 1);
        http_free(&r);
        http_free(&r2);
        char *m = scrape(gw.port);
        snprintf(series, sizeof(series),
                 "wagate_upstream_errors_total{kind=\"%s\","
                 "outcome=\"unknown\"}",
                 cases[i].kind);
        ck_assert_msg(strstr(m, series) != NULL, "no %s", series);
        free(m);
    }
    /* an upstream 500 is relayed and frees the key */
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/faults",
                           "{\"mode\":\"status\",\"status\":500,\"body\":"
                           "{\"success\":false,\"error_code\":\"INTERNAL\"}}"),
        200);
    send_body(body, sizeof(body), "after-500");
    post_send(gw.port, body, "key-500", &r);
    ck_assert_int_eq(r.status, 500);
    assert_xwagate(&r, "upstream");
    http_free(&r);
    post_send(gw.port, body, "key-500", &r);
    ck_assert_int_eq(r.status, 200);
    assert_xwagate(&r, "upstream");
    http_free(&r);
    ck_assert_int_eq(sb_count_body(sb.port, "after-500"), 2);
    gw_stop(&gw);
    ck_assert_int_eq(proc_stop(&sb, 5000), 0);
}
END_TEST

/* The drain's deadline: a send already on its way is cut off with
 * outcome unknown; one still waiting for its rate slot is taken back and
 * never sent (not_sent). */
START_TEST(drain_cut_off_says_the_outcome)
{
    struct proc sb, gw;
    char url[128], ba[200], bb[200], dir[64], state[96], extra[160];
    snprintf(dir, sizeof(dir), "/tmp/wagate-upstream-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(extra, sizeof(extra), ", \"state\": {\"file\": \"%s\"}", state);
    sb_start_on(&sb, 0, "0", "4000");
    struct gw_opts o = {.port = sb.port,
                        .timeout_ms = 10000,
                        .rate = "1",
                        .burst = "1",
                        .drain_ms = 300,
                        .extra = extra};
    gw_start(&gw, &o);
    open_window(sb.port, PHONE);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, gw.port);
    send_body(ba, sizeof(ba), "cut-on-its-way");
    send_body(bb, sizeof(bb), "cut-while-queued");
    struct curl_slist *h[2];
    h[0] = curl_slist_append(NULL, "Content-Type: application/json");
    h[0] = curl_slist_append(h[0], "Idempotency-Key: cut-a");
    h[1] = curl_slist_append(NULL, "Content-Type: application/json");
    h[1] = curl_slist_append(h[1], "Idempotency-Key: cut-b");
    CURLM *m = curl_multi_init();
    CURL *e[2];
    FILE *out[2];
    char *buf[2] = {NULL, NULL};
    size_t blen[2];
    const char *bodies[2] = {ba, bb};
    for (int i = 0; i < 2; i++) {
        out[i] = open_memstream(&buf[i], &blen[i]);
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h[i]);
        curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, bodies[i]);
        curl_easy_setopt(e[i], CURLOPT_WRITEDATA, out[i]);
        curl_easy_setopt(e[i], CURLOPT_TIMEOUT_MS, 10000L);
        curl_multi_add_handle(m, e[i]);
    }
    int running = 1;
    double end = clock_mono_ms() + 5000;
    while (sb_count_body(sb.port, "cut-on-its-way") < 1 && clock_mono_ms() < end) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    ck_assert_int_eq(sb_count_body(sb.port, "cut-on-its-way"), 1);
    kill(gw.pid, SIGTERM);
    end = clock_mono_ms() + 8000;
    while (running && clock_mono_ms() < end) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    const char *want[2] = {"unknown", "not_sent"};
    for (int i = 0; i < 2; i++) {
        long st = 0;
        curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &st);
        fclose(out[i]);
        ck_assert_int_eq(st, 503);
        json_object *j = json_tokener_parse(buf[i]), *f;
        ck_assert_ptr_nonnull(j);
        ck_assert_msg(json_object_object_get_ex(j, "outcome", &f), "%s",
                      buf[i]);
        ck_assert_str_eq(json_object_get_string(f), want[i]);
        json_object_put(j);
        free(buf[i]);
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
        curl_slist_free_all(h[i]);
    }
    curl_multi_cleanup(m);
    ck_assert_int_eq(wait_exit(&gw, 10000), 0);
    unlink(conf);
    ck_assert_int_eq(sb_count_body(sb.port, "cut-while-queued"), 0);

    /* after a restart on the state file: the unknown one is replayed, the
     * one that never left is free to go */
    hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                       "{\"latency_ms\":0}");
    gw_start(&gw, &o);
    struct http_resp r;
    post_send(gw.port, ba, "cut-a", &r);
    assert_outcome(&r, 502, "UPSTREAM_UNAVAILABLE", "unknown");
    assert_xwagate(&r, "replay");
    http_free(&r);
    post_send(gw.port, bb, "cut-b", &r);
    ck_assert_int_eq(r.status, 200);
    assert_xwagate(&r, "upstream");
    http_free(&r);
    ck_assert_int_eq(sb_count_body(sb.port, "cut-on-its-way"), 1);
    ck_assert_int_eq(sb_count_body(sb.port, "cut-while-queued"), 1);
    gw_stop(&gw);
    unlink(state);
    rmdir(dir);
    ck_assert_int_eq(proc_stop(&sb, 5000), 0);
}
END_TEST

/* ==== A6: shaping on the wire, cold pool, slow upstream ==== */

#define NCOLD 20

START_TEST(cold_pool_slow_upstream_keeps_the_limit_on_the_wire)
{
    struct proc sb, gw;
    char url[128], bodies[NCOLD][200];
    sb_start_on(&sb, 0, "5", "1500");
    gw_start(&gw, &(struct gw_opts){.port = sb.port,
                                    .timeout_ms = 10000,
                                    .rate = "5",
                                    .burst = "1"});
    open_window(sb.port, PHONE);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, gw.port);
    struct curl_slist *h =
        curl_slist_append(NULL, "Content-Type: application/json");
    CURLM *m = curl_multi_init();
    CURL *e[NCOLD];
    FILE *devnull = fopen("/dev/null", "w");
    for (int i = 0; i < NCOLD; i++) {
        char text[32];
        snprintf(text, sizeof(text), "cold-%d", i);
        send_body(bodies[i], sizeof(bodies[i]), text);
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, bodies[i]);
        curl_easy_setopt(e[i], CURLOPT_WRITEDATA, devnull);
        curl_easy_setopt(e[i], CURLOPT_TIMEOUT_MS, 20000L);
        curl_multi_add_handle(m, e[i]);
    }
    int running = 1;
    double end = clock_mono_ms() + 20000;
    while (running && clock_mono_ms() < end) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    int ok = 0;
    for (int i = 0; i < NCOLD; i++) {
        long st = 0;
        curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &st);
        ok += st == 200;
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    fclose(devnull);
    /* what the upstream saw: arrival times and its own answers */
    json_object *reqs = hx_sandbox_requests(sb.port), *v;
    ck_assert_ptr_nonnull(reqs);
    size_t n = json_object_array_length(reqs);
    ck_assert_int_eq((int)n, NCOLD);
    int64_t at[NCOLD];
    int refused = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *q = json_object_array_get_idx(reqs, i);
        ck_assert(json_object_object_get_ex(q, "mono_ms", &v));
        at[i] = json_object_get_int64(v);
        ck_assert(json_object_object_get_ex(q, "status", &v));
        refused += json_object_get_int(v) == 429;
    }
    json_object_put(reqs);
    int worst = 0;
    for (size_t i = 0; i < n; i++) {
        int in = 0;
        for (size_t j = 0; j < n; j++)
            in += at[j] >= at[i] && at[j] < at[i] + 1000;
        worst = in > worst ? in : worst;
    }
    ck_assert_msg(worst <= 5, "%d sends in one second on the wire", worst);
    ck_assert_int_eq(refused, 0);
    ck_assert_int_eq(ok, NCOLD);
    gw_stop(&gw);
    ck_assert_int_eq(proc_stop(&sb, 5000), 0);
}
END_TEST

/* ==== A8: trailers are not headers ==== */

START_TEST(trailers_are_dropped_and_not_replayed)
{
    const char *script[] = {
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
        "10\r\n{\"success\":true}\r\n0\r\n"
        "Content-Type: text/evil\r\nSet-Cookie: trailer=1\r\n\r\n"};
    struct fake f;
    struct proc gw;
    struct http_resp r;
    char body[200], v[128];
    fake_start(&f, script, 1);
    gw_start(&gw, &(struct gw_opts){.port = f.port});
    send_body(body, sizeof(body), "trailers");
    for (int round = 0; round < 2; round++) {
        post_send(gw.port, body, "key-trailers", &r);
        ck_assert_int_eq(r.status, 200);
        assert_xwagate(&r, round == 0 ? "upstream" : "replay");
        ck_assert_str_eq(r.body, "{\"success\":true}");
        ck_assert_int_eq(header_lines(&r, "Content-Type"), 1);
        ck_assert_str_eq(http_header(&r, "Content-Type", v, sizeof(v)),
                         "application/json");
        ck_assert_int_eq(header_lines(&r, "Set-Cookie"), 0);
        http_free(&r);
    }
    ck_assert_int_eq(atomic_load(&f.nreq), 1);
    gw_stop(&gw);
    fake_stop(&f);
}
END_TEST

/* ==== A10: an answer that is not valid HTTP is 502, outcome unknown ==== */

START_TEST(invalid_answers_are_502_unknown)
{
    const char *script[] = {
        "HTTP/1.1 999 Weird\r\nContent-Length: 2\r\n\r\nhi",
        "HTTP/1.1 200 OK\r\nBad Name: v\r\nContent-Length: 2\r\n\r\nhi",
        "HTTP/1.1 200 OK\r\nX-Ctl: a\001b\r\nContent-Length: 2\r\n\r\nhi",
        "HTTP/1.1 200 OK\r\nX-Cr: a\rb\r\nContent-Length: 2\r\n\r\nhi",
        "HTTP/1.1 600 Beyond\r\nContent-Length: 2\r\n\r\nhi",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "ZZ\r\nhello\r\n0\r\n\r\n",
        /* no upgrade was asked for */
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
        "Connection: Upgrade\r\n\r\n" OK_ANSWER,
        /* framing that disagrees with itself */
        "HTTP/1.1 200 OK\r\nContent-Length: 16\r\nContent-Length: 17\r\n"
        "\r\n{\"success\":true}",
        /* obsolete folding is valid (RFC 9112 5.2): one space */
        "HTTP/1.1 200 OK\r\nX-Folded: a\r\n   b\r\nContent-Type: "
        "application/json\r\nContent-Length: 2\r\n\r\n{}",
    };
    const size_t ninvalid = 8;
    struct fake f;
    struct proc gw;
    struct http_resp r;
    char body[200], key[32], v[64];
    fake_start(&f, script, sizeof(script) / sizeof(script[0]));
    gw_start(&gw, &(struct gw_opts){.port = f.port});
    for (size_t i = 0; i < ninvalid; i++) {
        snprintf(key, sizeof(key), "invalid-%zu", i);
        send_body(body, sizeof(body), key);
        post_send(gw.port, body, key, &r);
        ck_assert_msg(r.status == 502, "answer %zu: %ld", i, r.status);
        assert_outcome(&r, 502, "UPSTREAM_UNAVAILABLE", "unknown");
        ck_assert_int_eq(header_lines(&r, "Bad Name"), 0);
        http_free(&r);
        ck_assert_int_eq(atomic_load(&f.nreq), (int)i + 1);
    }
    char *m = scrape(gw.port);
    ck_assert_ptr_nonnull(strstr(m,
                                 "wagate_upstream_errors_total{kind=\""
                                 "invalid_response\",outcome=\"unknown\"} 8"));
    ck_assert_ptr_null(strstr(m, "kind=\"reset\""));
    free(m);
    send_body(body, sizeof(body), "folded");
    post_send(gw.port, body, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(http_header(&r, "X-Folded", v, sizeof(v)), "a b");
    http_free(&r);
    gw_stop(&gw);
    fake_stop(&f);
}
END_TEST

/* ==== A9: a 429's pause is bounded, and can be ended ==== */

/* Arms a 429 with this Retry-After, sends into it, and returns the
 * Retry-After the gateway gives the next send (429 RATE_LIMITED: with
 * max_queue_ms 0 a paused limiter refuses at once), or -1. */
static long
pause_with(struct proc *sb, struct proc *gw, const char *retry_after)
{
    char fault[256], body[200], v[32];
    struct http_resp r;
    snprintf(fault, sizeof(fault),
             "{\"mode\":\"status\",\"status\":429,\"headers\":"
             "{\"Retry-After\":\"%s\"},\"body\":{\"success\":false,"
             "\"error_code\":\"RATE_LIMITED\"}}",
             retry_after);
    ck_assert_int_eq(
        hx_sandbox_control(sb->port, "POST", "/_sandbox/faults", fault), 200);
    send_body(body, sizeof(body), "into-the-429");
    post_send(gw->port, body, NULL, &r);
    ck_assert_int_eq(r.status, 429);
    assert_xwagate(&r, "upstream");
    http_free(&r);
    send_body(body, sizeof(body), "while-paused");
    post_send(gw->port, body, NULL, &r);
    long secs = -1;
    if (r.status == 429 && http_header(&r, "Retry-After", v, sizeof(v)))
        secs = atol(v);
    ck_assert_msg(r.status == 429, "status %ld while paused", r.status);
    assert_xwagate(&r, "gateway; reason=rate_limited");
    http_free(&r);
    return secs;
}

static long
send_status(struct proc *gw)
{
    char body[200];
    struct http_resp r;
    send_body(body, sizeof(body), "after-the-pause");
    post_send(gw->port, body, NULL, &r);
    long st = r.status;
    http_free(&r);
    return st;
}

START_TEST(a_429_pause_is_capped_and_can_be_ended)
{
    struct proc sb, gw;
    sb_start_on(&sb, 0, "0", "0");
    /* a paused limiter refuses at once (max_queue_ms 0), so the
     * Retry-After it gives is the pause left */
    gw_start(&gw, &(struct gw_opts){.port = sb.port,
                                    .rate = "5",
                                    .burst = "50",
                                    .max_queue_ms = -1,
                                    .max_pause_ms = 2000});
    open_window(sb.port, PHONE);
    ck_assert_int_eq(send_status(&gw), 200);

    /* a huge delta: capped at max_pause_ms (2 s), not an hour */
    long secs = pause_with(&sb, &gw, "999999999");
    ck_assert_msg(secs >= 1 && secs <= 2, "Retry-After %ld", secs);
    /* DELETE /admin/pause ends it at once */
    ck_assert_int_eq(admin_call(gw.port, "DELETE", "/admin/pause"), 204);
    ck_assert_int_eq(send_status(&gw), 200);
    ck_assert_int_eq(admin_call(gw.port, "GET", "/admin/pause"), 405);

    /* an HTTP date in 2099: capped too; a reload ends it */
    secs = pause_with(&sb, &gw, "Thu, 01 Jan 2099 00:00:00 GMT");
    ck_assert_msg(secs >= 1 && secs <= 2, "Retry-After %ld", secs);
    kill(gw.pid, SIGHUP);
    ck_assert(proc_wait_log(&gw, "configuration reloaded", 3000));
    ck_assert(proc_wait_log(&gw, "pause after an upstream 429 ended", 100));
    ck_assert_int_eq(send_status(&gw), 200);

    /* a date in the past, a negative or garbage value: the 1 s default */
    const char *odd[] = {"Thu, 01 Jan 2004 00:00:00 GMT", "-5", "soon"};
    for (size_t i = 0; i < 3; i++) {
        secs = pause_with(&sb, &gw, odd[i]);
        ck_assert_msg(secs == 1, "%s: Retry-After %ld", odd[i], secs);
        ck_assert_int_eq(admin_call(gw.port, "DELETE", "/admin/pause"), 204);
        ck_assert_int_eq(send_status(&gw), 200);
    }
    gw_stop(&gw);
    ck_assert_int_eq(proc_stop(&sb, 5000), 0);
}
END_TEST

/* ==== an answer longer than its Content-Length ==== */

/* The tail of an answer beyond its Content-Length arrives after the
 * answer was read, on a kept-alive connection. The next request must not
 * get those bytes as its answer (nor the one after it this one's): it
 * goes on a fresh connection, and each caller gets its own answer. */
START_TEST(bytes_beyond_an_answer_never_answer_the_next_request)
{
    const char *script[] = {
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\n\r\n{}\002"
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "Content-Length: 14\r\n\r\n{\"stray\":true}",
        OK_ANSWER};
    struct fake f;
    struct proc gw;
    struct http_resp r;
    char body[200];
    fake_start(&f, script, 2);
    gw_start(&gw, &(struct gw_opts){.port = f.port, .max_conns = 1});
    send_body(body, sizeof(body), "first");
    post_send(gw.port, body, "key-first", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{}");
    http_free(&r);
    /* the stray bytes are on the connection before the next send */
    double end = clock_mono_ms() + 3000;
    while (atomic_load(&f.nwritten) < 1 && clock_mono_ms() < end) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_int_eq(atomic_load(&f.nwritten), 1);
    struct timespec settle = {0, 20000000}; /* loopback delivery */
    nanosleep(&settle, NULL);
    for (int i = 0; i < 2; i++) {
        send_body(body, sizeof(body), i == 0 ? "second" : "third");
        post_send(gw.port, body, i == 0 ? "key-second" : "key-third", &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_msg(strcmp(r.body, "{\"success\":true}") == 0,
                      "send %d got %s", i + 2, r.body);
        assert_xwagate(&r, "upstream");
        http_free(&r);
    }
    ck_assert_int_eq(atomic_load(&f.nreq), 3); /* each sent once */
    gw_stop(&gw);
    fake_stop(&f);
}
END_TEST

/* ==== a hanging upstream behind one connection ==== */

#define NHANG 21

/* Sends that the on-the-wire guard holds (five stuck on their way to an
 * upstream that never answers, behind upstream.max_connections 1) are
 * still answered within max_queue_ms of their arrival plus timeout_ms,
 * each exactly once, and none is sent twice. */
START_TEST(hanging_upstream_one_connection_everyone_answered_in_bound)
{
    struct proc sb, gw;
    char url[128], bodies[NHANG][200];
    const long timeout = 2000, max_queue = 4000;
    sb_start_on(&sb, 0, "0", "0");
    gw_start(&gw, &(struct gw_opts){.port = sb.port,
                                    .timeout_ms = timeout,
                                    .rate = "5",
                                    .burst = "1",
                                    .max_queue_ms = max_queue,
                                    .max_conns = 1});
    open_window(sb.port, PHONE);
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/faults",
                                        "{\"mode\":\"hang\",\"times\":100}"),
                     200);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, gw.port);
    struct curl_slist *h =
        curl_slist_append(NULL, "Content-Type: application/json");
    CURLM *m = curl_multi_init();
    CURL *e[NHANG];
    FILE *devnull = fopen("/dev/null", "w");
    double t0 = clock_mono_ms(), done_at[NHANG];
    for (int i = 0; i < NHANG; i++) {
        char text[32];
        snprintf(text, sizeof(text), "hang-%d", i);
        send_body(bodies[i], sizeof(bodies[i]), text);
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, bodies[i]);
        curl_easy_setopt(e[i], CURLOPT_WRITEDATA, devnull);
        curl_easy_setopt(e[i], CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(e[i], CURLOPT_PRIVATE, (char *)(intptr_t)i);
        curl_multi_add_handle(m, e[i]);
        done_at[i] = -1;
    }
    int running = 1;
    double end = clock_mono_ms() + 30000;
    while (running && clock_mono_ms() < end) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            char *p;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
            done_at[(intptr_t)p] = clock_mono_ms() - t0;
        }
        curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    int answered = 0;
    double worst = 0;
    for (int i = 0; i < NHANG; i++) {
        long st = 0;
        curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &st);
        answered += st == 504 || st == 429;
        worst = done_at[i] > worst ? done_at[i] : worst;
        ck_assert_msg(done_at[i] >= 0, "send %d never answered", i);
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    fclose(devnull);
    ck_assert_int_eq(answered, NHANG);
    ck_assert_msg(worst < (double)(timeout + max_queue) + 750,
                  "the last caller waited %.0f ms", worst);
    for (int i = 0; i < NHANG; i++) {
        char text[32];
        snprintf(text, sizeof(text), "\"hang-%d\"", i);
        ck_assert_int_le(sb_count_body(sb.port, text), 1);
    }
    gw_stop(&gw);
    ck_assert_int_eq(proc_stop(&sb, 5000), 0);
}
END_TEST

static Suite *
upstream_suite(void)
{
    Suite *s = suite_create("upstream_misbehaviour");
    TCase *tc = tcase_create("upstream");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, drop_next_is_unknown_and_refused_is_not_sent);
    tcase_add_test(tc, dead_connection_then_refused_reconnect_is_unknown);
    tcase_add_test(tc, faults_after_the_request_left_are_kept_unknown);
    tcase_add_test(tc, drain_cut_off_says_the_outcome);
    tcase_add_test(tc, cold_pool_slow_upstream_keeps_the_limit_on_the_wire);
    tcase_add_test(tc, trailers_are_dropped_and_not_replayed);
    tcase_add_test(tc, invalid_answers_are_502_unknown);
    tcase_add_test(tc, a_429_pause_is_capped_and_can_be_ended);
    tcase_add_test(tc,
                   hanging_upstream_one_connection_everyone_answered_in_bound);
    tcase_add_test(tc, bytes_beyond_an_answer_never_answer_the_next_request);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(upstream_suite());
}
