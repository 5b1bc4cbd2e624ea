/* caller_wire.c - the caller side of the wire, through the real wagate in
 * front of the real wagate-sandbox, with raw sockets: the connection limit,
 * header names that are not tokens (smuggling), the whole-request client
 * timeout, HEAD on the health routes, the HTTP version, and the gateway's
 * own JSON refusals of malformed request heads. Every test asserts what the
 * caller got and what reached the upstream (the sandbox's request log). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "clock.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define PHONE "+14155550123"
#define VALID_SEND                                                             \
    "{\"sender_id\":12,\"recipient_phone\":\"" PHONE "\",\"message\":\"hi\"}"

static struct proc sb, gw;
static char gw_conf[64];

/* ---- small tools ---- */

static void
nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const char *
bin(const char *var, const char *fallback)
{
    const char *v = getenv(var);
    return v && *v ? v : fallback;
}

/* Starts the sandbox, then a gateway in front of it whose "limits" object
 * holds limits (JSON members, without braces). */
static void
start_pair(const char *limits)
{
    ck_assert_int_eq(harness_start_sandbox(&sb, "0", NULL), 0);
    char text[2048];
    snprintf(text, sizeof(text),
             "{\"listen\": [\"127.0.0.1:0\"],\n"
             " \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\",\n"
             "   \"timeout_ms\": 5000, \"connect_timeout_ms\": 1000,\n"
             "   \"rate_limit_rps\": 10000, \"rate_limit_burst\": 10000},\n"
             " \"limits\": {%s}}\n",
             sb.port, limits);
    write_temp(text, gw_conf, sizeof(gw_conf));
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    char *env[] = {keyenv, NULL};
    char *argv[] = {(char *)bin("WAGATE_BIN", "./wagate"), "-c", gw_conf, NULL};
    ck_assert_int_eq(proc_start(&gw, argv, env), 0);
}

static void
stop_pair(void)
{
    int gst = proc_stop(&gw, 5000);
    int sst = proc_stop(&sb, 5000);
    unlink(gw_conf);
    ck_assert_int_eq(gst, 0);
    ck_assert_int_eq(sst, 0);
}

/* A failed assertion leaves the test early: stop what it started. */
static void
leftovers(void)
{
    if (gw.pid > 0)
        proc_stop(&gw, 2000);
    if (sb.pid > 0)
        proc_stop(&sb, 2000);
    if (gw_conf[0])
        unlink(gw_conf);
}

static void
open_window(void)
{
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound",
                           "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                           "\"}"),
        204);
}

static int
tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Writes all of s; 0, or -1 once the peer is gone (never SIGPIPE). */
static int
send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int
send_str(int fd, const char *s)
{
    return send_all(fd, s, strlen(s));
}

/* Reads what is there within wait_ms into buf at *len (NUL-ended).
 * Returns 1 once the peer closed (EOF or reset), else 0. */
static int
read_for(int fd, char *buf, size_t cap, size_t *len, int wait_ms)
{
    double end = clock_mono_ms() + wait_ms;
    for (;;) {
        int left = (int)(end - clock_mono_ms());
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, left > 0 ? left : 0) <= 0)
            return 0;
        char tmp[4096];
        ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
        if (n <= 0)
            return 1;
        size_t take = (size_t)n;
        if (take > cap - 1 - *len)
            take = cap - 1 - *len;
        memcpy(buf + *len, tmp, take);
        *len += take;
        buf[*len] = '\0';
        if (clock_mono_ms() >= end)
            return 0;
    }
}

/* Reads until the peer closes, at most wait_ms; 1 if it closed. */
static int
read_to_close(int fd, char *buf, size_t cap, int wait_ms)
{
    size_t len = 0;
    buf[0] = '\0';
    double end = clock_mono_ms() + wait_ms;
    while (clock_mono_ms() < end)
        if (read_for(fd, buf, cap, &len, (int)(end - clock_mono_ms()) + 1))
            return 1;
    return 0;
}

static size_t
count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* 1 when buf holds one whole response with a Content-Length body. */
static int
response_complete(const char *buf, size_t len)
{
    const char *end = strstr(buf, "\r\n\r\n");
    if (end == NULL)
        return 0;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    if (cl == NULL || cl > end)
        return 0;
    size_t want = (size_t)atol(cl + 17);
    return len >= (size_t)(end + 4 - buf) + want;
}

/* utime + stime of pid, in clock ticks. */
static long
cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    ck_assert_ptr_nonnull(p);
    long ut = 0, st = 0;
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime(14) stime(15) */
    ck_assert_int_eq(sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                            "%ld %ld",
                            &ut, &st),
                     2);
    return ut + st;
}

static size_t
log_lines(const struct proc *p)
{
    char *log = proc_log(p);
    size_t n = count_of(log, "\n");
    free(log);
    return n;
}

/* ---- A1: limits.max_connections ---- */

#define HELD 20
#define WAITING 80

START_TEST(connection_limit_queues_callers_without_spinning)
{
    start_pair("\"max_connections\": 20, \"client_timeout_ms\": 30000");
    open_window();
    int held[HELD], waiting[WAITING];
    static char got[WAITING][2048];
    size_t glen[WAITING] = {0};
    int answered[WAITING] = {0}, closed[WAITING] = {0};
    const char *probe = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    char send_req[512];
    snprintf(send_req, sizeof(send_req),
             "POST " FREEFORM " HTTP/1.1\r\nHost: x\r\nContent-Type: "
             "application/json\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(VALID_SEND), VALID_SEND);

    /* 20 callers get in and stay (keep-alive) */
    for (int i = 0; i < HELD; i++) {
        char buf[1024];
        size_t len = 0;
        held[i] = tcp_connect(gw.port);
        ck_assert_int_eq(send_str(held[i], probe), 0);
        double end = clock_mono_ms() + 5000;
        while (!response_complete(buf, len) && clock_mono_ms() < end)
            read_for(held[i], buf, sizeof(buf), &len, 50);
        ck_assert_msg(response_complete(buf, len), "held %d: %s", i, buf);
        ck_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    }
    /* 80 more connect (the kernel completes the handshake) and send */
    for (int i = 0; i < WAITING; i++) {
        waiting[i] = tcp_connect(gw.port);
        ck_assert_int_eq(send_str(waiting[i], send_req), 0);
    }
    /* while the 20 stay, none of the 80 is served and the gateway idles:
     * no busy loop, no flood of log lines */
    long cpu0 = cpu_ticks(gw.pid);
    size_t lines0 = log_lines(&gw);
    double end = clock_mono_ms() + 1500;
    while (clock_mono_ms() < end)
        for (int i = 0; i < WAITING; i++) {
            read_for(waiting[i], got[i], sizeof(got[i]), &glen[i], 0);
            ck_assert_msg(glen[i] == 0, "caller %d served over the limit", i);
        }
    long cpu = cpu_ticks(gw.pid) - cpu0;
    size_t lines = log_lines(&gw) - lines0;
    ck_assert_msg(cpu <= 30, "gateway used %ld ticks while callers waited",
                  cpu);
    ck_assert_msg(lines <= 3, "%zu log lines while callers waited", lines);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 0);

    /* 10 leave: exactly 10 of the waiting get in */
    for (int i = 0; i < 10; i++)
        close(held[i]);
    int nans = 0;
    end = clock_mono_ms() + 5000;
    while (nans < 10 && clock_mono_ms() < end)
        for (int i = 0; i < WAITING; i++) {
            if (answered[i])
                continue;
            read_for(waiting[i], got[i], sizeof(got[i]), &glen[i], 0);
            if (response_complete(got[i], glen[i])) {
                answered[i] = 1;
                nans++;
            }
        }
    ck_assert_int_eq(nans, 10);
    end = clock_mono_ms() + 300;
    while (clock_mono_ms() < end)
        for (int i = 0; i < WAITING; i++)
            if (!answered[i]) {
                read_for(waiting[i], got[i], sizeof(got[i]), &glen[i], 0);
                ck_assert_msg(glen[i] == 0, "a 21st caller was served");
            }

    /* everyone else leaves as soon as answered: all 80 are served, never
     * more than 20 connections at once */
    for (int i = 10; i < HELD; i++)
        close(held[i]);
    end = clock_mono_ms() + 20000;
    while (nans < WAITING && clock_mono_ms() < end) {
        int open_served = 0;
        for (int i = 0; i < WAITING; i++) {
            if (answered[i] && !closed[i]) {
                close(waiting[i]);
                closed[i] = 1;
            }
            if (answered[i])
                continue;
            read_for(waiting[i], got[i], sizeof(got[i]), &glen[i], 0);
            if (response_complete(got[i], glen[i])) {
                answered[i] = 1;
                nans++;
                open_served++;
            }
        }
        ck_assert_int_le(open_served, 20);
        nap_ms(2);
    }
    ck_assert_int_eq(nans, WAITING);
    for (int i = 0; i < WAITING; i++) {
        ck_assert_msg(strncmp(got[i], "HTTP/1.1 200", 12) == 0, "%d: %s", i,
                      got[i]);
        ck_assert_ptr_nonnull(strstr(got[i], "X-Wagate: upstream"));
        if (!closed[i])
            close(waiting[i]);
    }
    /* the upstream got each send once, and answered each 200 */
    json_object *reqs = hx_sandbox_requests(sb.port);
    ck_assert_int_eq(json_object_array_length(reqs), WAITING);
    for (size_t i = 0; i < WAITING; i++) {
        json_object *st;
        json_object_object_get_ex(json_object_array_get_idx(reqs, i), "status",
                                  &st);
        ck_assert_int_eq(json_object_get_int(st), 200);
    }
    json_object_put(reqs);
    /* the log: one line per request, a few more, no flood */
    ck_assert_int_le(log_lines(&gw), HELD + WAITING + 12);
    stop_pair();
}
END_TEST

/* With one connection allowed: a new caller gets in (and is answered)
 * within wait_ms, so the last connection's slot was given back. */
static void
assert_slot_free(const char *after, int wait_ms)
{
    char out[4096];
    const char *probe =
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw_exchange(gw.port, probe, strlen(probe), out, sizeof(out), wait_ms);
    ck_assert_msg(strncmp(out, "HTTP/1.1 200", 12) == 0, "no slot after %s: %s",
                  after, out);
}

/* Every way a connection ends gives its slot back. */
START_TEST(every_way_a_connection_ends_frees_its_slot)
{
    start_pair("\"max_connections\": 1, \"client_timeout_ms\": 1000");
    char out[4096];
    /* the caller closes */
    close(tcp_connect(gw.port));
    assert_slot_free("a caller closed", 3000);
    /* idle: evhttp's per-read timeout */
    int fd = tcp_connect(gw.port);
    ck_assert(read_to_close(fd, out, sizeof(out), 4000));
    close(fd);
    assert_slot_free("an idle timeout", 3000);
    /* a request cut off (408) */
    fd = tcp_connect(gw.port);
    ck_assert_int_eq(send_str(fd, "GET /healthz HTTP/1.1\r\n"), 0);
    ck_assert(read_to_close(fd, out, sizeof(out), 4000));
    close(fd);
    ck_assert(strncmp(out, "HTTP/1.1 408", 12) == 0);
    assert_slot_free("a 408", 3000);
    /* a head the gateway refuses (400) */
    const char *bad = "GET /healthz HTTP/1.1\r\nX Y: z\r\n\r\n";
    raw_exchange(gw.port, bad, strlen(bad), out, sizeof(out), 3000);
    ck_assert(strncmp(out, "HTTP/1.1 400", 12) == 0);
    assert_slot_free("a refused head", 3000);
    /* evhttp's own refusal (a chunk extension) */
    const char *ext = "POST " FREEFORM " HTTP/1.1\r\nHost: x\r\n"
                      "Content-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n2;a=b\r\n{}\r\n"
                      "0\r\n\r\n";
    raw_exchange(gw.port, ext, strlen(ext), out, sizeof(out), 3000);
    ck_assert(strncmp(out, "HTTP/1.1 413", 12) == 0);
    assert_slot_free("evhttp's own 413", 3000);
    /* a caller that hangs up while its request waits on the upstream */
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                                        "{\"latency_ms\": 800}"),
                     200);
    fd = tcp_connect(gw.port);
    ck_assert_int_eq(send_str(fd, "GET /api/user/whatsapp/senders HTTP/1.1"
                                  "\r\nHost: x\r\n\r\n"),
                     0);
    double end = clock_mono_ms() + 3000;
    while (hx_sandbox_count(sb.port) < 1 && clock_mono_ms() < end)
        nap_ms(5);
    close(fd);
    /* (evhttp notices the hang-up when the answer is written) */
    assert_slot_free("a hang-up while waiting", 4000);
    stop_pair();
}
END_TEST

/* ---- A4: header names that are not tokens ---- */

#define SMUGGLED                                                               \
    "GET /api/user/whatsapp/senders?SMUGGLED=1 HTTP/1.1\r\n"                   \
    "Host: x\r\n\r\n"

static int
sandbox_saw(const char *needle)
{
    json_object *reqs = hx_sandbox_requests(sb.port);
    int seen = 0;
    for (size_t i = 0; reqs && i < json_object_array_length(reqs); i++)
        if (strstr(
                json_object_to_json_string(json_object_array_get_idx(reqs, i)),
                needle))
            seen = 1;
    json_object_put(reqs);
    return seen;
}

START_TEST(header_names_that_are_not_tokens_are_400_and_nothing_is_smuggled)
{
    start_pair("\"client_timeout_ms\": 2000");
    char cl[64], te[64];
    snprintf(cl, sizeof(cl), "%zu", strlen(SMUGGLED));
    snprintf(te, sizeof(te), "%zx", strlen(SMUGGLED));
    const char *head = "POST " FREEFORM " HTTP/1.1\r\nHost: x\r\n"
                       "Content-Type: application/json\r\n";
    struct {
        const char *framing; /* the bad header line, %s = length */
        int chunked;
    } shapes[] = {
        {"Content-Length : %s\r\n", 0},
        {"Content-Length\t: %s\r\n", 0},
        {"Transfer-Encoding : chunked\r\n", 1},
        {"Transfer-Encoding\t: chunked\r\n", 1},
        {" Content-Length: %s\r\n", 0},            /* obs-fold */
        {"Content\x01Length: %s\r\n", 0},          /* control byte */
        {"Content-Length(x): %s\r\n", 0},          /* separator */
        {"Content-Length\r: %s\r\n", 0},           /* bare CR */
        {"X-Pad: 1\r\nContent Length: %s\r\n", 0}, /* space inside */
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        char req[1024], line[128], out[8192];
        /* the length goes where the shape says %s */
        const char *at = strstr(shapes[i].framing, "%s");
        if (at)
            snprintf(line, sizeof(line), "%.*s%s%s",
                     (int)(at - shapes[i].framing), shapes[i].framing, cl,
                     at + 2);
        else
            snprintf(line, sizeof(line), "%s", shapes[i].framing);
        if (shapes[i].chunked)
            snprintf(req, sizeof(req), "%s%s\r\n%s\r\n%s\r\n0\r\n\r\n", head,
                     line, te, SMUGGLED);
        else
            snprintf(req, sizeof(req), "%s%s\r\n%s", head, line, SMUGGLED);
        int fd = tcp_connect(gw.port);
        ck_assert_int_eq(send_str(fd, req), 0);
        ck_assert_msg(read_to_close(fd, out, sizeof(out), 5000),
                      "shape %zu: connection left open", i);
        close(fd);
        ck_assert_msg(strncmp(out, "HTTP/1.1 400 ", 13) == 0, "shape %zu: %s",
                      i, out);
        ck_assert_msg(count_of(out, "HTTP/1.") == 1,
                      "shape %zu: more than one answer: %s", i, out);
        ck_assert_ptr_nonnull(strstr(out, "Connection: close"));
        ck_assert_ptr_nonnull(strstr(out, "Content-Type: application/json"));
        ck_assert_ptr_nonnull(strstr(out, "\"error_code\":\"BAD_REQUEST\""));
        ck_assert_ptr_nonnull(
            strstr(out, "X-Wagate: gateway; reason=bad_request"));
    }
    ck_assert_int_eq(sandbox_saw("SMUGGLED"), 0);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 0);
    /* a well-formed request on the same gateway still goes through */
    struct http_resp r;
    open_window();
    ck_assert_int_eq(harness_post(gw.port, FREEFORM, VALID_SEND, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 1);
    stop_pair();
}
END_TEST

/* ---- A5: the whole request within limits.client_timeout_ms ---- */

/* Sends head (at once), then trickle one byte every step_ms until the
 * gateway closes (bounded); returns ms from the first byte to the close,
 * or -1 if it never closed. out receives what the gateway said. */
static double
trickle(const char *head, const char *trickle_bytes, int step_ms, char *out,
        size_t outlen)
{
    int fd = tcp_connect(gw.port);
    size_t len = 0;
    out[0] = '\0';
    double t0 = clock_mono_ms();
    ck_assert_int_eq(send_str(fd, head), 0);
    double closed_at = -1;
    for (size_t i = 0; trickle_bytes[i] && i < 60; i++) {
        if (read_for(fd, out, outlen, &len, step_ms)) {
            closed_at = clock_mono_ms();
            break;
        }
        if (send_all(fd, trickle_bytes + i, 1) != 0) {
            read_for(fd, out, outlen, &len, 100);
            closed_at = clock_mono_ms();
            break;
        }
    }
    close(fd);
    return closed_at < 0 ? -1 : closed_at - t0;
}

static void
assert_cut_off(double ms, const char *out, const char *phase)
{
    ck_assert_msg(ms >= 0, "%s: the slow caller was never cut off", phase);
    ck_assert_msg(ms < 2500, "%s: cut off after %.0f ms (limit 1000)", phase,
                  ms);
    ck_assert_msg(ms > 800, "%s: cut off early, after %.0f ms", phase, ms);
    ck_assert_msg(strncmp(out, "HTTP/1.1 408 ", 13) == 0, "%s: %s", phase, out);
    ck_assert_ptr_nonnull(strstr(out, "\"error_code\":\"REQUEST_TIMEOUT\""));
    ck_assert_ptr_nonnull(strstr(out, "Connection: close"));
}

START_TEST(slow_callers_are_cut_off_at_client_timeout)
{
    start_pair("\"client_timeout_ms\": 1000");
    open_window();
    char out[4096];
    static const char slow[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    /* headers: one byte every 200 ms, each read well inside the timeout */
    double ms =
        trickle("POST " FREEFORM " HTTP/1.1\r\nHost: x\r\nX-Slow: ", slow, 200,
                out, sizeof(out));
    assert_cut_off(ms, out, "head");
    /* body: the head at once, then the body byte by byte */
    char head[512];
    snprintf(head, sizeof(head),
             "POST " FREEFORM " HTTP/1.1\r\nHost: x\r\nContent-Type: "
             "application/json\r\nContent-Length: %zu\r\n\r\n",
             strlen(VALID_SEND));
    ms = trickle(head, VALID_SEND, 200, out, sizeof(out));
    assert_cut_off(ms, out, "body");
    /* the request line itself */
    ms = trickle("", "GET /api/user/whatsapp/senders HTTP/1.1\r\nHost: x\r\n",
                 200, out, sizeof(out));
    assert_cut_off(ms, out, "request line");
    /* no trickled request reached the upstream */
    ck_assert_int_eq(hx_sandbox_count(sb.port), 0);
    char *log = proc_log(&gw);
    ck_assert_ptr_nonnull(strstr(log, "request_timeout"));
    free(log);
    stop_pair();
}
END_TEST

START_TEST(each_request_gets_its_own_client_timeout)
{
    start_pair("\"client_timeout_ms\": 1000");
    open_window();
    char req[512], out[8192];
    snprintf(req, sizeof(req),
             "POST " FREEFORM " HTTP/1.1\r\nHost: x\r\nContent-Type: "
             "application/json\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(VALID_SEND), VALID_SEND);
    size_t half = strlen(req) / 2;
    int fd = tcp_connect(gw.port);
    for (int round = 0; round < 3; round++) {
        /* each request comes in two pieces 500 ms apart (within the
         * limit), after 600 ms of keep-alive idleness: over the three
         * requests the connection lives far beyond one client timeout */
        size_t len = 0;
        out[0] = '\0';
        nap_ms(600);
        ck_assert_int_eq(send_all(fd, req, half), 0);
        nap_ms(500);
        ck_assert_int_eq(send_str(fd, req + half), 0);
        double end = clock_mono_ms() + 5000;
        while (!response_complete(out, len) && clock_mono_ms() < end)
            ck_assert_int_eq(read_for(fd, out, sizeof(out), &len, 50), 0);
        ck_assert_msg(strncmp(out, "HTTP/1.1 200", 12) == 0, "round %d: %s",
                      round, out);
    }
    close(fd);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 3);
    stop_pair();
}
END_TEST

/* ---- A11: HEAD on the health routes; the HTTP version ---- */

/* The header block of a raw answer without Date and X-Request-Id, which
 * differ between two answers. */
static void
stable_headers(const char *resp, char *out, size_t outlen)
{
    const char *end = strstr(resp, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    size_t n = 0;
    for (const char *p = resp; p < end;) {
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL || eol > end)
            eol = end;
        if (strncasecmp(p, "Date:", 5) != 0 &&
            strncasecmp(p, "X-Request-Id:", 13) != 0 &&
            n + (size_t)(eol - p) + 2 < outlen) {
            memcpy(out + n, p, (size_t)(eol - p));
            n += (size_t)(eol - p);
            out[n++] = '\n';
        }
        p = eol + 2;
    }
    out[n] = '\0';
}

static void
assert_head_like_get(const char *path)
{
    char req[256], get[4096], head[4096], hget[2048], hhead[2048];
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    raw_exchange(gw.port, req, strlen(req), get, sizeof(get), 3000);
    snprintf(req, sizeof(req),
             "HEAD %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    raw_exchange(gw.port, req, strlen(req), head, sizeof(head), 3000);
    ck_assert_msg(strncmp(get, "HTTP/1.1 ", 9) == 0, "%s", get);
    ck_assert_msg(strncmp(head, get, 12) == 0, "HEAD %s: %s", path, head);
    stable_headers(get, hget, sizeof(hget));
    stable_headers(head, hhead, sizeof(hhead));
    ck_assert_str_eq(hhead, hget);
    /* no body: the answer ends with its header block */
    const char *end = strstr(head, "\r\n\r\n");
    ck_assert_str_eq(end, "\r\n\r\n");
}

START_TEST(head_on_health_routes_answers_like_get_without_body)
{
    start_pair("\"client_timeout_ms\": 5000");
    assert_head_like_get("/healthz");
    assert_head_like_get("/readyz");
    /* two HEADs and a GET pipelined on one connection: three answers, the
     * GET's body the only body */
    char out[8192];
    const char *pipe3 = "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                        "HEAD /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /healthz HTTP/1.1\r\nHost: x\r\n"
                        "Connection: close\r\n\r\n";
    raw_exchange(gw.port, pipe3, strlen(pipe3), out, sizeof(out), 3000);
    ck_assert_uint_eq(count_of(out, "HTTP/1.1 200 "), 3);
    ck_assert_uint_eq(count_of(out, "{\"status\""), 1);
    /* HEAD elsewhere is still 405, and the health routes say they allow it */
    const char *put = "PUT /healthz HTTP/1.1\r\nHost: x\r\nConnection: "
                      "close\r\nContent-Length: 0\r\n\r\n";
    raw_exchange(gw.port, put, strlen(put), out, sizeof(out), 3000);
    ck_assert_msg(strncmp(out, "HTTP/1.1 405", 12) == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "Allow: GET, HEAD\r\n"));
    ck_assert_int_eq(hx_sandbox_count(sb.port), 0);
    stop_pair();
}
END_TEST

START_TEST(readyz_head_says_503_while_draining)
{
    start_pair("\"client_timeout_ms\": 5000");
    /* a request held at the upstream keeps the drain going */
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                                        "{\"latency_ms\": 2500}"),
                     200);
    int slow = tcp_connect(gw.port);
    ck_assert_int_eq(
        send_str(slow, "GET /api/user/whatsapp/senders HTTP/1.1\r\nHost: "
                       "x\r\nConnection: close\r\n\r\n"),
        0);
    int fd = tcp_connect(gw.port);
    char out[4096];
    size_t len = 0;
    ck_assert_int_eq(send_str(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
                     0);
    double end = clock_mono_ms() + 3000;
    while (!response_complete(out, len) && clock_mono_ms() < end)
        read_for(fd, out, sizeof(out), &len, 20);
    ck_assert(response_complete(out, len));
    /* the upstream holds the slow one; then drain */
    end = clock_mono_ms() + 3000;
    while (hx_sandbox_count(sb.port) < 1 && clock_mono_ms() < end)
        nap_ms(5);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 1);
    ck_assert_int_eq(kill(gw.pid, SIGTERM), 0);
    ck_assert(proc_wait_log(&gw, "draining", 3000));
    len = 0;
    out[0] = '\0';
    ck_assert_int_eq(send_str(fd, "HEAD /readyz HTTP/1.1\r\nHost: x\r\n\r\n"),
                     0);
    end = clock_mono_ms() + 3000;
    while (strstr(out, "\r\n\r\n") == NULL && clock_mono_ms() < end)
        read_for(fd, out, sizeof(out), &len, 20);
    ck_assert_msg(strncmp(out, "HTTP/1.1 503 ", 13) == 0, "%s", out);
    ck_assert_str_eq(strstr(out, "\r\n\r\n"), "\r\n\r\n");
    close(fd);
    close(slow);
    stop_pair();
}
END_TEST

START_TEST(http_version_is_never_echoed)
{
    start_pair("\"client_timeout_ms\": 5000");
    static const struct {
        const char *version;
        const char *status; /* what the gateway answers */
    } v[] = {
        {"HTTP/1.99", "HTTP/1.1 400 "}, {"HTTP/1.2", "HTTP/1.1 505 "},
        {"HTTP/0.9", "HTTP/1.1 505 "},  {"HTTP/2.0", "HTTP/1.1 505 "},
        {"HTTP/1.-1", "HTTP/1.1 400 "}, {"HTTP/01.1", "HTTP/1.1 400 "},
        {"http/1.1", "HTTP/1.1 400 "},  {"HTTP/1.1000", "HTTP/1.1 400 "},
        {"HTTP/1.0", "HTTP/1.0 200 "},  {"HTTP/1.1", "HTTP/1.1 200 "},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char req[256], out[4096];
        snprintf(req, sizeof(req),
                 "GET /healthz %s\r\nHost: x\r\nConnection: close\r\n\r\n",
                 v[i].version);
        raw_exchange(gw.port, req, strlen(req), out, sizeof(out), 3000);
        ck_assert_msg(strncmp(out, v[i].status, strlen(v[i].status)) == 0,
                      "%s: %s", v[i].version, out);
        ck_assert_uint_eq(count_of(out, "X-Request-Id:"), 1); /* 1 answer */
        if (v[i].status[9] != '2') {
            /* the caller's version appears nowhere in the answer */
            ck_assert_msg(strstr(out, v[i].version) == NULL, "%s", out);
            ck_assert_ptr_nonnull(strstr(out, "application/json"));
            ck_assert_ptr_nonnull(strstr(out, "Connection: close"));
        }
    }
    stop_pair();
}
END_TEST

/* ---- the gateway's own JSON for request heads evhttp would refuse ---- */

START_TEST(malformed_heads_get_json_refusals)
{
    start_pair("\"client_timeout_ms\": 5000, \"max_body_bytes\": 4096");
    static const struct {
        const char *req;
        const char *status;
        const char *code;
    } c[] = {
        {"POST " FREEFORM " HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
         "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
         "400", "BAD_REQUEST"},
        {"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n", "400", "BAD_REQUEST"},
        {"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", "400",
         "BAD_REQUEST"},
        {"GET /healthz HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n", "400",
         "BAD_REQUEST"},
        {"GET /healthz HTTP/1.1\r\nHost: x\r\nX: \x01\r\n\r\n", "400",
         "BAD_REQUEST"},
        {"\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "400", "BAD_REQUEST"},
        {"POST " FREEFORM " HTTP/1.1\r\nHost: x\r\nContent-Type: "
         "application/json\r\nContent-Length: 99999999\r\n\r\n{}",
         "413", "PAYLOAD_TOO_LARGE"},
        {"POST " FREEFORM " HTTP/1.1\r\nHost: x\r\nContent-Type: "
         "application/json\r\nExpect: something\r\nContent-Length: 2\r\n"
         "\r\n{}",
         "417", "EXPECTATION_FAILED"},
        {"PROPFIND /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "405",
         "METHOD_NOT_ALLOWED"},
        {"PROPFIND /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", "404",
         "ROUTE_NOT_FOUND"},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char out[8192], want[32], code[64];
        raw_exchange(gw.port, c[i].req, strlen(c[i].req), out, sizeof(out),
                     3000);
        snprintf(want, sizeof(want), "HTTP/1.1 %s ", c[i].status);
        snprintf(code, sizeof(code), "\"error_code\":\"%s\"", c[i].code);
        ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "case %zu: %s", i,
                      out);
        ck_assert_msg(strstr(out, code) != NULL, "case %zu: %s", i, out);
        ck_assert_ptr_nonnull(strstr(out, "Content-Type: application/json"));
        ck_assert_ptr_nonnull(strstr(out, "Connection: close"));
        ck_assert_ptr_nonnull(strstr(out, "X-Request-Id: "));
        ck_assert_uint_eq(count_of(out, "HTTP/1."), 1);
    }
    /* a head over 32 KiB */
    size_t big = 40 * 1024;
    char *req = malloc(big + 64), out[4096];
    int n = snprintf(req, big + 64, "GET /healthz HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', big);
    strcpy(req + n + big, "\r\n\r\n");
    raw_exchange(gw.port, req, strlen(req), out, sizeof(out), 3000);
    free(req);
    ck_assert_msg(strncmp(out, "HTTP/1.1 431 ", 13) == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "\"error_code\":\"HEADERS_TOO_LARGE\""));
    ck_assert_int_eq(hx_sandbox_count(sb.port), 0);
    stop_pair();
}
END_TEST

static Suite *
wire_suite(void)
{
    Suite *s = suite_create("caller_wire");
    TCase *tc = tcase_create("raw sockets");
    tcase_set_timeout(tc, 90);
    tcase_add_checked_fixture(tc, NULL, leftovers);
    tcase_add_test(tc, connection_limit_queues_callers_without_spinning);
    tcase_add_test(tc, every_way_a_connection_ends_frees_its_slot);
    tcase_add_test(
        tc, header_names_that_are_not_tokens_are_400_and_nothing_is_smuggled);
    tcase_add_test(tc, slow_callers_are_cut_off_at_client_timeout);
    tcase_add_test(tc, each_request_gets_its_own_client_timeout);
    tcase_add_test(tc, head_on_health_routes_answers_like_get_without_body);
    tcase_add_test(tc, readyz_head_says_503_while_draining);
    tcase_add_test(tc, http_version_is_never_echoed);
    tcase_add_test(tc, malformed_heads_get_json_refusals);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(wire_suite());
}
