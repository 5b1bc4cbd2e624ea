/* redis_link.c - the asynchronous Redis link (src/redis_link.c) against a
 * real redis-server (hx_redis): replies, the NOSCRIPT fallback, a frozen
 * Redis (timeouts, the breaker, recovery), a restart, passwords, cancel,
 * the idle waiter and freeing at every stage. The test runs its own
 * event_base and drives the link with bounded loops; the link's log lines
 * (stderr) are captured in a file to check what they say and what they
 * never say. */
#include <check.h>
#include <event2/event.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "hx_redis.h"
#include "log.h"
#include "redis_link.h"
#include "redis_scripts.h"

#define TIMEOUT_MS 200
#define SLACK_MS 400
#define PASSWORD "pw-Zq81-never-logged"

/* the test's own scripts: what each returns is easy to check */
enum { S_ECHO, S_INCR, S_COUNT };
static const struct rlink_script scripts[S_COUNT] = {
    [S_ECHO] = {"echo", "return {KEYS[1], ARGV[1]}\n"},
    [S_INCR] = {"incr", "return redis.call('INCR', KEYS[1])\n"},
};

static struct event_base *base;
static struct event *tick; /* wakes the loop so every wait is bounded */
static struct hx_redis rs;
static char logpath[64];
static int saved_stderr = -1;

/* what the callbacks saw */
struct answer {
    int calls;
    enum rlink_status st;
    int type;
    long long integer;
    char str[64];
    size_t len;
    double at; /* clock_mono_ms() of the (last) call */
};

static void
on_answer(void *arg, enum rlink_status st, const struct redisReply *r)
{
    struct answer *a = arg;
    a->calls++;
    a->st = st;
    a->at = clock_mono_ms();
    a->type = r ? r->type : -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        a->integer = r->integer;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING &&
        r->element[1]->len < sizeof(a->str)) {
        memcpy(a->str, r->element[1]->str, r->element[1]->len);
        a->len = r->element[1]->len;
    }
}

static int changes_up, changes_down;

static void
on_change(void *arg, int up)
{
    (void)arg;
    if (up)
        changes_up++;
    else
        changes_down++;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Runs the loop until *flag is nonzero or ms pass. */
static int
run_until(const int *flag, double ms)
{
    double end = clock_mono_ms() + ms;
    while (!*flag && clock_mono_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    return *flag;
}

static void
run_for(double ms)
{
    static const int never = 0;
    run_until(&never, ms);
}

static int
wait_up(struct rlink *l, double ms)
{
    double end = clock_mono_ms() + ms;
    while (!rlink_up(l) && clock_mono_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    return rlink_up(l);
}

static int
wait_down(struct rlink *l, double ms)
{
    double end = clock_mono_ms() + ms;
    while (rlink_up(l) && clock_mono_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    return !rlink_up(l);
}

static struct rlink *
link_to(const char *url, const char *password, const struct rlink_script *tab,
        size_t n)
{
    struct rlink_config cfg = {
        .url = url, .password = password, .timeout_ms = TIMEOUT_MS};
    char err[128];
    struct rlink *l =
        rlink_new(base, &cfg, tab, n, on_change, NULL, err, sizeof(err));
    ck_assert_msg(l != NULL, "rlink_new: %s", err);
    return l;
}

static struct rlink_cmd *
echo(struct rlink *l, const char *key, const char *val, size_t vlen,
     struct answer *a)
{
    const char *argv[] = {key, val};
    size_t len[] = {strlen(key), vlen};
    return rlink_eval(l, S_ECHO, 1, 2, argv, len, on_answer, a);
}

static struct rlink_cmd *
incr(struct rlink *l, const char *key, struct answer *a)
{
    const char *argv[] = {key};
    size_t len[] = {strlen(key)};
    return rlink_eval(l, S_INCR, 1, 1, argv, len, on_answer, a);
}

/* The captured log so far, NUL-terminated, in a static buffer. */
static const char *
logged(void)
{
    static char buf[65536];
    int fd = open(logpath, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : 0;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static size_t
count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void
redis_cmd(const char *cmd)
{
    redisContext *c = hx_redis_connect(&rs);
    ck_assert_ptr_nonnull(c);
    redisReply *r = redisCommand(c, cmd);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_ne(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    redisFree(c);
}

static void
setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 10000};
    event_add(tick, &tv);
    changes_up = changes_down = 0;
    ck_assert_int_eq(hx_redis_start(&rs, 1, NULL), 0);
    /* the link's log lines go to a file of their own */
    snprintf(logpath, sizeof(logpath), "/tmp/wagate-rlink-log-XXXXXX");
    int fd = mkstemp(logpath);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    log_configure(LOG_DEBUG, LOG_FORMAT_TEXT);
}

static void
teardown(void)
{
    if (saved_stderr >= 0) {
        fflush(stderr);
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        saved_stderr = -1;
        /* into the suite's .log, for whoever reads a failure */
        fputs(logged(), stderr);
    }
    unlink(logpath);
    hx_redis_stop(&rs);
    event_free(tick);
    event_base_free(base);
}

/* ---- replies ---- */

START_TEST(eval_answers_with_the_reply)
{
    struct rlink *l = link_to(rs.url, NULL, scripts, S_COUNT);
    ck_assert_int_eq(rlink_up(l), 0); /* connects from the loop */
    ck_assert_int_eq(wait_up(l, 3000), 1);
    ck_assert_int_eq(changes_up, 1);
    struct answer a = {0}, b = {0};
    /* binary-safe, copied before the call returns */
    char val[] = {'a', '\0', 'b'};
    ck_assert_ptr_nonnull(echo(l, "k1", val, sizeof(val), &a));
    memset(val, 'x', sizeof(val));
    ck_assert_ptr_nonnull(incr(l, "counter", &b));
    struct rlink_stats st;
    rlink_get_stats(l, &st);
    ck_assert_uint_eq(st.pending, 2);
    ck_assert_int_eq(run_until(&b.calls, 2000), 1);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.st, RLINK_OK);
    ck_assert_int_eq(a.type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(a.len, 3);
    ck_assert_mem_eq(a.str, "a\0b", 3);
    ck_assert_int_eq(b.st, RLINK_OK);
    ck_assert_int_eq(b.integer, 1);
    ck_assert_int_eq(hx_redis_int(&rs, "GET counter"), 1);
    rlink_get_stats(l, &st);
    ck_assert_uint_eq(st.commands, 2);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.connects, 1);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.noscript, 0);
    ck_assert_ptr_nonnull(strstr(logged(), "state: redis up (url redis://"));
    rlink_free(l);
}
END_TEST

/* A script's own error is the caller's (RLINK_OK, an error reply). */
START_TEST(script_error_is_the_callers)
{
    static const struct rlink_script bad[] = {
        {"boom", "return redis.error_reply('ERR boom')\n"}};
    struct rlink *l = link_to(rs.url, NULL, bad, 1);
    ck_assert_int_eq(wait_up(l, 3000), 1);
    struct answer a = {0};
    ck_assert_ptr_nonnull(rlink_eval(l, 0, 0, 0, NULL, NULL, on_answer, &a));
    ck_assert_int_eq(run_until(&a.calls, 2000), 1);
    ck_assert_int_eq(a.st, RLINK_OK);
    ck_assert_int_eq(a.type, REDIS_REPLY_ERROR);
    ck_assert_int_eq(rlink_up(l), 1);
    rlink_free(l);
}
END_TEST

/* The real table: every script loads (Redis's SHA1 is the one computed
 * here) and each is exactly the prelude then its file's text. */
START_TEST(the_embedded_scripts_load_and_match_their_files)
{
    for (int i = 0; i < RS_COUNT; i++) {
        char *text = hx_redis_script_source(redis_scripts[i].name);
        ck_assert_msg(text != NULL, "cannot read src/redis/%s.lua",
                      redis_scripts[i].name);
        ck_assert_str_eq(redis_scripts[i].source, text);
        free(text);
    }
    struct rlink *l = link_to(rs.url, NULL, redis_scripts, RS_COUNT);
    ck_assert_int_eq(wait_up(l, 3000), 1);
    rlink_free(l);
}
END_TEST

/* SCRIPT FLUSH behind the link's back: EVALSHA says NOSCRIPT, the link
 * resends the call as EVAL and the caller sees only the answer. */
START_TEST(noscript_after_script_flush_still_answers)
{
    struct rlink *l = link_to(rs.url, NULL, scripts, S_COUNT);
    ck_assert_int_eq(wait_up(l, 3000), 1);
    redis_cmd("SCRIPT FLUSH");
    struct answer a = {0}, b = {0};
    ck_assert_ptr_nonnull(incr(l, "n", &a));
    ck_assert_int_eq(run_until(&a.calls, 2000), 1);
    ck_assert_int_eq(a.st, RLINK_OK);
    ck_assert_int_eq(a.type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(a.integer, 1); /* ran once, not twice */
    struct rlink_stats st;
    rlink_get_stats(l, &st);
    ck_assert_uint_eq(st.noscript, 1);
    /* EVAL cached it again: the next call needs no fallback */
    ck_assert_ptr_nonnull(incr(l, "n", &b));
    ck_assert_int_eq(run_until(&b.calls, 2000), 1);
    ck_assert_int_eq(b.integer, 2);
    rlink_get_stats(l, &st);
    ck_assert_uint_eq(st.noscript, 1);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_int_eq(rlink_up(l), 1);
    rlink_free(l);
}
END_TEST

/* ---- a frozen Redis: timeouts, the breaker, recovery ---- */

START_TEST(frozen_redis_times_out_breaks_and_recovers)
{
    struct rlink *l = link_to(rs.url, NULL, scripts, S_COUNT);
    ck_assert_int_eq(wait_up(l, 3000), 1);
    hx_redis_freeze(&rs);
    struct answer a = {0}, b = {0}, c = {0};
    double t0 = clock_mono_ms();
    ck_assert_ptr_nonnull(incr(l, "x", &a));
    run_for(50);
    ck_assert_ptr_nonnull(incr(l, "y", &b));
    ck_assert_int_eq(run_until(&b.calls, TIMEOUT_MS + SLACK_MS + 1000), 1);
    /* the first to time out takes the connection with it: both answered
     * UNAVAILABLE once, within timeout_ms of the first */
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.st, RLINK_UNAVAILABLE);
    ck_assert_int_eq(b.st, RLINK_UNAVAILABLE);
    ck_assert_double_ge(a.at - t0, TIMEOUT_MS - 5);
    ck_assert_double_le(a.at - t0, TIMEOUT_MS + SLACK_MS);
    ck_assert_double_le(b.at - t0, TIMEOUT_MS + SLACK_MS);
    ck_assert_int_eq(rlink_up(l), 0);
    ck_assert_int_eq(changes_down, 1);
    /* the breaker: answered within the call */
    ck_assert_ptr_null(incr(l, "z", &c));
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.st, RLINK_UNAVAILABLE);
    /* reconnecting to the frozen Redis: the kernel accepts, the handshake
     * never answers, the connect times out too */
    run_for(3 * TIMEOUT_MS + 200);
    ck_assert_int_eq(rlink_up(l), 0);
    struct rlink_stats st;
    rlink_get_stats(l, &st);
    ck_assert_uint_ge(st.timeouts, 2);
    ck_assert_uint_eq(st.failed, 3);
    ck_assert_uint_eq(st.downs, 1);
    ck_assert_uint_eq(st.pending, 0);
    hx_redis_thaw(&rs);
    ck_assert_int_eq(wait_up(l, 5000), 1); /* by itself */
    ck_assert_int_eq(changes_up, 2);
    struct answer d = {0};
    ck_assert_ptr_nonnull(incr(l, "w", &d));
    ck_assert_int_eq(run_until(&d.calls, 2000), 1);
    ck_assert_int_eq(d.st, RLINK_OK);
    ck_assert_int_eq(a.calls + b.calls + c.calls, 3); /* never again */
    const char *log = logged();
    ck_assert_uint_eq(count_of(log, "state: redis down: command timed out"), 1);
    ck_assert_uint_eq(count_of(log, "state: redis up"), 2);
    rlink_free(l);
}
END_TEST

/* PINGs Redis has answered so far (INFO commandstats). */
static long
pings_served(void)
{
    redisContext *c = hx_redis_connect(&rs);
    ck_assert_ptr_nonnull(c);
    redisReply *r = redisCommand(c, "INFO commandstats");
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    const char *p = strstr(r->str, "cmdstat_ping:calls=");
    long n = p ? atol(p + strlen("cmdstat_ping:calls=")) : 0;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* An idle link notices a frozen Redis by itself: its health check (a
 * PING every rlink_health_ms() while nothing else is pending) times out
 * and takes it down without any command of the caller's, so that
 * rlink_up() (/readyz, wagate_state_up) does not say "up" meanwhile;
 * thawed, it is up again by itself. */
START_TEST(idle_link_notices_a_freeze_and_the_thaw)
{
    ck_assert_int_eq(rlink_health_ms(TIMEOUT_MS), 1000);
    ck_assert_int_eq(rlink_health_ms(1000), 4000);
    long period = rlink_health_ms(TIMEOUT_MS);
    struct rlink *l = link_to(rs.url, NULL, scripts, S_COUNT);
    ck_assert_int_eq(wait_up(l, 3000), 1);
    /* idle and answered: the PINGs keep it up */
    long before = pings_served();
    double end = clock_mono_ms() + 3 * period;
    while (pings_served() < before + 2 && clock_mono_ms() < end)
        run_for(50);
    ck_assert_int_ge(pings_served(), before + 2);
    ck_assert_int_eq(rlink_up(l), 1);
    ck_assert_int_eq(changes_down, 0);

    hx_redis_freeze(&rs);
    double t0 = clock_mono_ms();
    ck_assert_int_eq(wait_down(l, period + TIMEOUT_MS + SLACK_MS), 1);
    double took = clock_mono_ms() - t0;
    ck_assert_double_ge(took, TIMEOUT_MS - 5); /* a PING's deadline */
    ck_assert_int_eq(changes_down, 1);
    struct rlink_stats st;
    rlink_get_stats(l, &st);
    ck_assert_uint_eq(st.commands, 0); /* the PING is not the caller's */
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_ge(st.timeouts, 1);
    ck_assert_uint_eq(st.downs, 1);
    ck_assert_uint_eq(
        count_of(logged(), "state: redis down: health check timed out"), 1);

    hx_redis_thaw(&rs);
    ck_assert_int_eq(wait_up(l, 5000), 1);
    ck_assert_int_eq(changes_up, 2);
    rlink_get_stats(l, &st);
    ck_assert_uint_eq(st.commands, 0);
    fprintf(stdout, "idle link: down %.0f ms after the freeze (period %ld)\n",
            took, period);
    rlink_free(l);
}
END_TEST

/* A Redis frozen before the link ever connects: never up, and freeing the
 * link while its connect hangs leaks nothing (valgrind). */
START_TEST(free_during_a_hanging_connect)
{
    hx_redis_freeze(&rs);
    struct rlink *l = link_to(rs.url, NULL, scripts, S_COUNT);
    run_for(TIMEOUT_MS / 2);
    ck_assert_int_eq(rlink_up(l), 0);
    rlink_free(l);
    run_for(20);
    hx_redis_thaw(&rs);
}
END_TEST

/* ---- a restarted Redis: empty, the link's connection dropped ---- */

START_TEST(restarted_redis_reconnects_and_reloads)
{
    struct rlink *l = link_to(rs.url, NULL, scripts, S_COUNT);
    ck_assert_int_eq(wait_up(l, 3000), 1);
    ck_assert_int_eq(hx_redis_restart(&rs), 0);
    ck_assert_int_eq(wait_down(l, 3000), 1);
    ck_assert_int_eq(wait_up(l, 5000), 1);
    struct answer a = {0};
    ck_assert_ptr_nonnull(incr(l, "after", &a));
    ck_assert_int_eq(run_until(&a.calls, 2000), 1);
    ck_assert_int_eq(a.st, RLINK_OK);
    ck_assert_int_eq(a.integer, 1);
    struct rlink_stats st;
    rlink_get_stats(l, &st);
    ck_assert_uint_eq(st.connects, 2);
    ck_assert_uint_eq(st.noscript, 0); /* loaded again at the connect */
    ck_assert_int_eq(changes_down, 1);
    rlink_free(l);
}
END_TEST

/* A command in flight when Redis goes away is answered once. */
START_TEST(command_in_flight_when_redis_dies)
{
    static const struct rlink_script slow[] = {
        {"slow", "local t = redis.call('TIME')\n"
                 "local e = t[1] * 1000000 + t[2] + 100000\n"
                 "repeat t = redis.call('TIME') "
                 "until t[1] * 1000000 + t[2] >= e\n"
                 "return 1\n"}};
    struct rlink *l = link_to(rs.url, NULL, slow, 1);
    ck_assert_int_eq(wait_up(l, 3000), 1);
    struct answer a = {0};
    ck_assert_ptr_nonnull(rlink_eval(l, 0, 0, 0, NULL, NULL, on_answer, &a));
    run_for(20);
    ck_assert_int_eq(kill(rs.pid, SIGKILL), 0);
    ck_assert_int_eq(run_until(&a.calls, 2000), 1);
    ck_assert_int_eq(a.st, RLINK_UNAVAILABLE);
    ck_assert_int_eq(wait_down(l, 1000), 1);
    run_for(200);
    ck_assert_int_eq(a.calls, 1);
    rlink_free(l);
}
END_TEST

/* ---- passwords ---- */

START_TEST(password_is_sent_and_never_logged)
{
    hx_redis_stop(&rs);
    ck_assert_int_eq(hx_redis_start(&rs, 0, PASSWORD), 0);
    struct rlink *good = link_to(rs.url, PASSWORD, scripts, S_COUNT);
    struct rlink *wrong = link_to(rs.url, "not-" PASSWORD, scripts, S_COUNT);
    struct rlink *none = link_to(rs.url, NULL, scripts, S_COUNT);
    ck_assert_int_eq(wait_up(good, 3000), 1);
    struct answer a = {0};
    ck_assert_ptr_nonnull(incr(good, "p", &a));
    ck_assert_int_eq(run_until(&a.calls, 2000), 1);
    ck_assert_int_eq(a.st, RLINK_OK);
    /* several attempts each, with backoff: never up */
    run_for(600);
    ck_assert_int_eq(rlink_up(wrong), 0);
    ck_assert_int_eq(rlink_up(none), 0);
    struct rlink_stats st;
    rlink_get_stats(wrong, &st);
    ck_assert_uint_eq(st.connects, 0);
    rlink_free(good);
    rlink_free(wrong);
    rlink_free(none); /* during its backoff */
    const char *log = logged();
    ck_assert_ptr_null(strstr(log, PASSWORD));
    ck_assert_ptr_null(strstr(log, "pw-Zq81"));
    /* the reasons are there, once each at the default level */
    ck_assert_ptr_nonnull(strstr(log, "state: redis down: AUTH"));
    ck_assert_ptr_nonnull(strstr(log, "state: redis down: SCRIPT LOAD"));
}
END_TEST

/* ---- cancel, idle, free ---- */

START_TEST(cancelled_command_never_answers)
{
    struct rlink *l = link_to(rs.url, NULL, scripts, S_COUNT);
    ck_assert_int_eq(wait_up(l, 3000), 1);
    struct answer a = {0}, b = {0};
    struct rlink_cmd *ca = incr(l, "c", &a);
    ck_assert_ptr_nonnull(ca);
    ck_assert_ptr_nonnull(incr(l, "c", &b));
    rlink_cancel(l, ca);
    struct rlink_stats st;
    rlink_get_stats(l, &st);
    ck_assert_uint_eq(st.pending, 1);
    ck_assert_int_eq(run_until(&b.calls, 2000), 1); /* replies in order */
    ck_assert_int_eq(b.integer, 2); /* the cancelled one still ran */
    run_for(50);
    ck_assert_int_eq(a.calls, 0);
    /* cancelled while Redis is frozen: its timeout answers nobody */
    hx_redis_freeze(&rs);
    struct answer c = {0}, d = {0};
    struct rlink_cmd *cc = incr(l, "c", &c);
    ck_assert_ptr_nonnull(cc);
    ck_assert_ptr_nonnull(incr(l, "c", &d));
    rlink_cancel(l, cc);
    ck_assert_int_eq(run_until(&d.calls, TIMEOUT_MS + SLACK_MS), 1);
    ck_assert_int_eq(d.st, RLINK_UNAVAILABLE);
    run_for(50);
    ck_assert_int_eq(c.calls, 0);
    hx_redis_thaw(&rs);
    rlink_free(l);
}
END_TEST

/* One answer cancels another still owed (the drop answers them in turn). */
static struct rlink *cancel_link;
static struct rlink_cmd *cancel_victim;

static void
cancel_other(void *arg, enum rlink_status st, const struct redisReply *r)
{
    on_answer(arg, st, r);
    rlink_cancel(cancel_link, cancel_victim);
}

START_TEST(cancel_from_a_callback_during_a_drop)
{
    struct rlink *l = cancel_link = link_to(rs.url, NULL, scripts, S_COUNT);
    ck_assert_int_eq(wait_up(l, 3000), 1);
    hx_redis_freeze(&rs);
    struct answer a = {0}, b = {0};
    const char *argv[] = {"k"};
    size_t len[] = {1};
    ck_assert_ptr_nonnull(
        rlink_eval(l, S_INCR, 1, 1, argv, len, cancel_other, &a));
    cancel_victim = incr(l, "k", &b);
    ck_assert_ptr_nonnull(cancel_victim);
    ck_assert_int_eq(run_until(&a.calls, TIMEOUT_MS + SLACK_MS), 1);
    run_for(50);
    ck_assert_int_eq(a.st, RLINK_UNAVAILABLE);
    ck_assert_int_eq(b.calls, 0);
    hx_redis_thaw(&rs);
    rlink_free(l);
}
END_TEST

static int idle_calls;
static size_t idle_seen_answers;
static struct answer idle_ans[3];

static void
on_idle(void *arg)
{
    (void)arg;
    idle_calls++;
    idle_seen_answers = 0;
    for (int i = 0; i < 3; i++)
        idle_seen_answers += (size_t)idle_ans[i].calls;
}

START_TEST(when_idle_waits_for_every_pending_command)
{
    struct rlink *l = link_to(rs.url, NULL, scripts, S_COUNT);
    ck_assert_int_eq(wait_up(l, 3000), 1);
    idle_calls = 0;
    rlink_when_idle(l, on_idle, NULL); /* nothing pending: at once */
    ck_assert_int_eq(idle_calls, 1);
    memset(idle_ans, 0, sizeof(idle_ans));
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(incr(l, "i", &idle_ans[i]));
    rlink_when_idle(l, on_idle, NULL);
    ck_assert_int_eq(idle_calls, 1);
    ck_assert_int_eq(run_until(&idle_ans[2].calls, 2000), 1);
    run_for(30);
    ck_assert_int_eq(idle_calls, 2);
    ck_assert_uint_eq(idle_seen_answers, 3);
    rlink_free(l);
}
END_TEST

START_TEST(free_with_commands_pending_runs_no_callback)
{
    struct rlink *l = link_to(rs.url, NULL, scripts, S_COUNT);
    ck_assert_int_eq(wait_up(l, 3000), 1);
    struct answer a[4] = {{0}};
    for (int i = 0; i < 4; i++)
        ck_assert_ptr_nonnull(incr(l, "f", &a[i]));
    rlink_free(l);
    run_for(100);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(a[i].calls, 0);
}
END_TEST

/* rlink_free() from inside a reply callback: the rest go silently. */
static struct rlink *free_link;

static void
free_from_cb(void *arg, enum rlink_status st, const struct redisReply *r)
{
    on_answer(arg, st, r);
    rlink_free(free_link);
}

START_TEST(free_from_inside_a_callback)
{
    struct rlink *l = free_link = link_to(rs.url, NULL, scripts, S_COUNT);
    ck_assert_int_eq(wait_up(l, 3000), 1);
    struct answer a = {0}, b = {0};
    const char *argv[] = {"k"};
    size_t len[] = {1};
    ck_assert_ptr_nonnull(
        rlink_eval(l, S_INCR, 1, 1, argv, len, free_from_cb, &a));
    ck_assert_ptr_nonnull(incr(l, "k", &b));
    ck_assert_int_eq(run_until(&a.calls, 2000), 1);
    run_for(100);
    ck_assert_int_eq(b.calls, 0);
}
END_TEST

/* ... and from inside the answers of a drop (frozen Redis). */
START_TEST(free_from_inside_a_timeout_answer)
{
    struct rlink *l = free_link = link_to(rs.url, NULL, scripts, S_COUNT);
    ck_assert_int_eq(wait_up(l, 3000), 1);
    hx_redis_freeze(&rs);
    struct answer a = {0}, b = {0};
    const char *argv[] = {"k"};
    size_t len[] = {1};
    ck_assert_ptr_nonnull(
        rlink_eval(l, S_INCR, 1, 1, argv, len, free_from_cb, &a));
    ck_assert_ptr_nonnull(incr(l, "k", &b));
    ck_assert_int_eq(run_until(&a.calls, TIMEOUT_MS + SLACK_MS), 1);
    run_for(100);
    ck_assert_int_eq(b.calls, 0);
    hx_redis_thaw(&rs);
}
END_TEST

/* Nothing listens: never up, retried with backoff, freed in backoff. */
START_TEST(no_redis_at_all_then_free_in_backoff)
{
    struct rlink *l =
        link_to("unix:/nonexistent/wagate-test.sock", NULL, scripts, S_COUNT);
    run_for(300);
    ck_assert_int_eq(rlink_up(l), 0);
    struct answer a = {0};
    ck_assert_ptr_null(incr(l, "k", &a));
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.st, RLINK_UNAVAILABLE);
    rlink_free(l);
    const char *log = logged();
    /* one line for the transition, the retries at debug level only */
    ck_assert_uint_eq(count_of(log, "state: redis down: connect"), 1);
    ck_assert_uint_ge(count_of(log, "state: redis still down"), 2);
    ck_assert_int_eq(changes_down, 0); /* never up: no up/down flip */
}
END_TEST

/* redis://host:port/db selects the database. */
START_TEST(url_database_is_selected)
{
    char url[160];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/3", rs.port);
    struct rlink *l = link_to(url, NULL, scripts, S_COUNT);
    ck_assert_int_eq(wait_up(l, 3000), 1);
    struct answer a = {0};
    ck_assert_ptr_nonnull(incr(l, "in3", &a));
    ck_assert_int_eq(run_until(&a.calls, 2000), 1);
    ck_assert_int_eq(a.integer, 1);
    rlink_free(l);
    ck_assert_int_eq(hx_redis_int(&rs, "EXISTS in3"), 0); /* not db 0 */
    redisContext *c = hx_redis_connect(&rs);
    ck_assert_ptr_nonnull(c);
    redisReply *r = redisCommand(c, "SELECT 3");
    freeReplyObject(r);
    r = redisCommand(c, "GET in3");
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    ck_assert_str_eq(r->str, "1");
    freeReplyObject(r);
    redisFree(c);
}
END_TEST

START_TEST(bad_url_refused_at_creation)
{
    struct rlink_config cfg = {.url = "redis://:secret@127.0.0.1",
                               .timeout_ms = 100};
    char err[128] = "";
    ck_assert_ptr_null(
        rlink_new(base, &cfg, scripts, S_COUNT, NULL, NULL, err, sizeof(err)));
    ck_assert_ptr_null(strstr(err, "secret"));
    ck_assert_str_ne(err, "");
    rlink_free(NULL);
}
END_TEST

static Suite *
link_suite(void)
{
    Suite *s = suite_create("redis_link");
    TCase *tc = tcase_create("link");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, eval_answers_with_the_reply);
    tcase_add_test(tc, script_error_is_the_callers);
    tcase_add_test(tc, the_embedded_scripts_load_and_match_their_files);
    tcase_add_test(tc, noscript_after_script_flush_still_answers);
    tcase_add_test(tc, frozen_redis_times_out_breaks_and_recovers);
    tcase_add_test(tc, idle_link_notices_a_freeze_and_the_thaw);
    tcase_add_test(tc, free_during_a_hanging_connect);
    tcase_add_test(tc, restarted_redis_reconnects_and_reloads);
    tcase_add_test(tc, command_in_flight_when_redis_dies);
    tcase_add_test(tc, password_is_sent_and_never_logged);
    tcase_add_test(tc, cancelled_command_never_answers);
    tcase_add_test(tc, cancel_from_a_callback_during_a_drop);
    tcase_add_test(tc, when_idle_waits_for_every_pending_command);
    tcase_add_test(tc, free_with_commands_pending_runs_no_callback);
    tcase_add_test(tc, free_from_inside_a_callback);
    tcase_add_test(tc, free_from_inside_a_timeout_answer);
    tcase_add_test(tc, no_redis_at_all_then_free_in_backoff);
    tcase_add_test(tc, url_database_is_selected);
    tcase_add_test(tc, bad_url_refused_at_creation);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(link_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
