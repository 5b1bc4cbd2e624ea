/* state_redis_backend.c - the Redis backend of state.h (src/state_redis.c)
 * through the real link (redis_link.h) and the shipped scripts against a
 * real redis-server (hx_redis), on the test's own event loop: every
 * answer comes exactly once, idempotency's verdicts and replays byte for
 * byte, fencing (a claim taken over sends nothing), the unknown outcome
 * of a key whose instance stopped after sending, corrupt values taken as
 * unavailable, the windows judged as the memory cache judges them (one
 * probe), cancel (a cancelled begin's claim is freed), flush, and a
 * frozen Redis answered STATE_UNAVAILABLE, then recovered. */
#include <check.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "digest.h"
#include "harness.h"
#include "hx_redis.h"
#include "learn.h"
#include "log.h"
#include "redis_link.h"
#include "redis_scripts.h"
#include "state.h"

#define BASE "wagate:{t}:"
#define TIMEOUT_MS 200
#define PHONE 14155550123ULL
#define RECHECK 300000

static struct hx_redis rs;
static struct event_base *base;
static struct event *tick;
static struct rlink *link_;
static struct config cfg;
static const struct config *cfgp = &cfg;
static struct state *st;
static redisContext *rc;

/* ---- the loop ---- */

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Runs the loop until *flag is nonzero or ms pass; returns *flag. */
static int
run_until(const int *flag, int ms)
{
    double end = clock_mono_ms() + ms;
    while (!*flag && clock_mono_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    return *flag;
}

static void
wait_up(void)
{
    double end = clock_mono_ms() + 5000;
    while (!rlink_up(link_) && clock_mono_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    ck_assert(rlink_up(link_));
}

static void
setup(void)
{
    rc = hx_redis_connect(&rs);
    ck_assert_ptr_nonnull(rc);
    freeReplyObject(redisCommand(rc, "FLUSHALL"));
    base = event_base_new();
    tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(tick, &tv);
    config_defaults(&cfg);
    struct rlink_config lc = {rs.url, NULL, TIMEOUT_MS};
    char err[256];
    link_ = rlink_new(base, &lc, redis_scripts, RS_COUNT, NULL, NULL, err,
                      sizeof(err));
    ck_assert_msg(link_ != NULL, "%s", err);
    wait_up();
    st = state_redis_new(base, link_, BASE, &cfgp);
}

static void
teardown(void)
{
    state_free(st);
    rlink_free(link_);
    event_free(tick);
    event_base_free(base);
    config_free(&cfg);
    redisFree(rc);
}

/* ---- what the callbacks saw ---- */

struct seen {
    int calls;
    struct state_idem_verdict v;
    int status; /* idem_answer's, on a replay */
    char body[512];
    size_t body_len;
    char header[128]; /* "name: value" of the first header */
    struct state_window w;
    struct state_window_view view;
    enum state_status done;
};

static void
on_begin(void *arg, const struct state_idem_verdict *v)
{
    struct seen *s = arg;
    s->calls++;
    s->v = *v;
    s->v.answer = NULL;
    if (v->status == STATE_OK && v->verdict == IDEM_REPLAY) {
        s->status = v->answer->status;
        s->body_len = v->answer->body_len < sizeof(s->body)
                          ? v->answer->body_len
                          : sizeof(s->body);
        memcpy(s->body, v->answer->body, s->body_len);
        if (v->answer->nheaders > 0)
            snprintf(s->header, sizeof(s->header), "%s: %s",
                     v->answer->headers[0].name, v->answer->headers[0].value);
    }
}

static void
on_done(void *arg, enum state_status status)
{
    struct seen *s = arg;
    s->calls++;
    s->done = status;
}

static void
on_window(void *arg, const struct state_window *w)
{
    struct seen *s = arg;
    s->calls++;
    s->w = *w;
}

static void
on_view(void *arg, const struct state_window_view *w)
{
    struct seen *s = arg;
    s->calls++;
    s->view = *w;
}

/* Each helper waits for the answer, then a little more: a second call
 * would show in calls. */
static void
settle(const struct seen *s)
{
    ck_assert_msg(run_until(&s->calls, 2000), "no answer");
    int never = 0;
    run_until(&never, 30);
    ck_assert_int_eq(s->calls, 1);
}

static void
hash_of(const char *body, unsigned char h[IDEM_HASH_LEN])
{
    digest_sha256(body, strlen(body), h);
}

static struct seen
begin(const char *key, const char *body)
{
    struct seen s = {0};
    unsigned char h[IDEM_HASH_LEN];
    hash_of(body, h);
    state_idem_begin(st, "svc", key, h, on_begin, &s);
    settle(&s);
    return s;
}

static enum state_status
sent(struct state_claim *c)
{
    struct seen s = {0};
    state_idem_sent(st, c, on_done, &s);
    settle(&s);
    return s.done;
}

static enum state_status
finish(struct state_claim *c, const struct idem_answer *a)
{
    struct seen s = {0};
    state_idem_finish(st, c, a, on_done, &s);
    settle(&s);
    return s.done;
}

static struct state_stats
stats(void)
{
    struct state_stats x;
    state_get_stats(st, &x);
    return x;
}

/* The one idempotency record in Redis (its key is a digest). */
static char *
idem_record_key(void)
{
    redisReply *r = redisCommand(rc, "KEYS %s", BASE "idem:*");
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(r->elements, 1);
    char *k = strdup(r->element[0]->str);
    freeReplyObject(r);
    return k;
}

static void
redis_do(const char *fmt, const char *key, const char *v)
{
    redisReply *r = redisCommand(rc, fmt, key, v);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_ne(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

/* ---- idempotency ---- */

START_TEST(verdicts_and_a_replay_byte_for_byte)
{
    struct seen a = begin("k1", "{\"m\":1}");
    ck_assert_int_eq(a.v.status, STATE_OK);
    ck_assert_int_eq(a.v.verdict, IDEM_NEW);
    ck_assert_ptr_nonnull(a.v.claim);
    /* the caller and key are in Redis only as a digest */
    char *k = idem_record_key();
    ck_assert_ptr_null(strstr(k, "k1"));
    ck_assert_ptr_null(strstr(k, "svc"));
    ck_assert_uint_eq(strlen(k), strlen(BASE "idem:") + 64);
    free(k);

    struct seen b = begin("k1", "{\"m\":1}");
    ck_assert_int_eq(b.v.verdict, IDEM_IN_PROGRESS);
    struct seen c = begin("k1", "{\"m\":2}");
    ck_assert_int_eq(c.v.verdict, IDEM_REUSED);

    ck_assert_int_eq(sent(a.v.claim), STATE_OK);
    static const char body[] = "{\"ok\":true}\0tail";
    struct idem_header h = {"X-Upstream", "yes"};
    struct idem_answer ans = {200, &h, 1, body, sizeof(body) - 1};
    ck_assert_int_eq(finish(a.v.claim, &ans), STATE_OK);

    struct seen d = begin("k1", "{\"m\":1}");
    ck_assert_int_eq(d.v.verdict, IDEM_REPLAY);
    ck_assert_int_eq(d.status, 200);
    ck_assert_str_eq(d.header, "X-Upstream: yes");
    ck_assert_uint_eq(d.body_len, sizeof(body) - 1);
    ck_assert(memcmp(d.body, body, sizeof(body) - 1) == 0);
    ck_assert_int_eq(begin("k1", "{\"m\":2}").v.verdict, IDEM_REUSED);
    /* another caller's same key is another key */
    struct seen o = {0};
    unsigned char hh[IDEM_HASH_LEN];
    hash_of("{\"m\":1}", hh);
    state_idem_begin(st, "other", "k1", hh, on_begin, &o);
    settle(&o);
    ck_assert_int_eq(o.v.verdict, IDEM_NEW);
    state_claim_drop(st, o.v.claim);
}
END_TEST

START_TEST(a_freed_key_is_new_again)
{
    struct seen a = begin("k2", "x");
    ck_assert_int_eq(a.v.verdict, IDEM_NEW);
    ck_assert_int_eq(finish(a.v.claim, NULL), STATE_OK);
    struct seen b = begin("k2", "y");
    ck_assert_int_eq(b.v.verdict, IDEM_NEW);
    /* finish without a callback still takes effect */
    ck_assert_ptr_null(state_idem_finish(st, b.v.claim, NULL, NULL, NULL));
    struct seen c = begin("k2", "z");
    ck_assert_int_eq(c.v.verdict, IDEM_NEW);
    state_claim_drop(st, c.v.claim);
}
END_TEST

static void
on_flushed(void *arg)
{
    ++*(int *)arg;
}

START_TEST(flush_waits_for_what_was_asked)
{
    struct seen a = begin("k3", "x");
    state_idem_finish(st, a.v.claim, NULL, NULL, NULL);
    struct state_answer sa = {ROUTE_SEND, 12, PHONE, 201, "", 0, 0};
    ck_assert_ptr_null(state_cache_learn(st, &sa, NULL, NULL));
    int flushed = 0;
    state_flush(st, on_flushed, &flushed);
    ck_assert(run_until(&flushed, 2000));
    int never = 0;
    run_until(&never, 30);
    ck_assert_int_eq(flushed, 1);
    struct seen b = begin("k3", "y");
    ck_assert_int_eq(b.v.verdict, IDEM_NEW); /* freed */
    state_claim_drop(st, b.v.claim);
    redisReply *r = redisCommand(rc, "EXISTS %s", BASE "win:12:14155550123");
    ck_assert_int_eq(r->integer, 1); /* learned */
    freeReplyObject(r);
}
END_TEST

START_TEST(a_claim_taken_over_sends_and_writes_nothing)
{
    struct seen a = begin("k4", "x");
    char *k = idem_record_key();
    /* its lease ran out and another instance claimed the key */
    redis_do("HSET %s tok %s", k, "999-1");
    ck_assert_int_eq(sent(a.v.claim), STATE_UNAVAILABLE);
    ck_assert_uint_eq(stats().idem_fenced, 1);
    struct idem_answer ans = {200, NULL, 0, "late", 4};
    ck_assert_int_eq(finish(a.v.claim, &ans), STATE_OK);
    ck_assert_uint_eq(stats().idem_fenced, 2);
    redisReply *r = redisCommand(rc, "HGET %s st", k);
    ck_assert_str_eq(r->str, "claimed"); /* the other's, untouched */
    freeReplyObject(r);
    free(k);
}
END_TEST

START_TEST(a_sent_key_whose_instance_stopped_replays_an_unknown_outcome)
{
    struct seen a = begin("k5", "x");
    ck_assert_int_eq(sent(a.v.claim), STATE_OK);
    char *k = idem_record_key();
    redis_do("HSET %s lease %s", k, "1"); /* its sent lease is over */
    struct seen b = begin("k5", "x");
    ck_assert_int_eq(b.v.status, STATE_OK);
    ck_assert_int_eq(b.v.verdict, IDEM_REPLAY);
    ck_assert_int_eq(b.status, 502);
    ck_assert_str_eq(b.header, "Content-Type: application/json");
    b.body[b.body_len < sizeof(b.body) ? b.body_len : sizeof(b.body) - 1] = 0;
    ck_assert_ptr_nonnull(strstr(b.body, "\"outcome\":\"unknown\""));
    ck_assert_ptr_nonnull(strstr(b.body, "UPSTREAM_UNAVAILABLE"));
    ck_assert_ptr_nonnull(strstr(b.body, "stopped"));
    ck_assert_uint_eq(stats().idem_unknown, 1);
    ck_assert_int_eq(begin("k5", "other").v.verdict, IDEM_REUSED);
    state_claim_drop(st, a.v.claim);
    free(k);
}
END_TEST

START_TEST(a_corrupt_answer_is_unavailable)
{
    struct seen a = begin("k6", "x");
    struct idem_answer ans = {200, NULL, 0, "ok", 2};
    ck_assert_int_eq(finish(a.v.claim, &ans), STATE_OK);
    char *k = idem_record_key();
    redis_do("HSET %s ans %s", k, "WGA1garbage");
    struct seen b = begin("k6", "x");
    ck_assert_int_eq(b.v.status, STATE_UNAVAILABLE);
    struct state_stats x = stats();
    ck_assert_uint_eq(x.corrupt, 1);
    ck_assert_uint_eq(x.idem_unavailable, 1);
    free(k);
}
END_TEST

START_TEST(a_cancelled_begin_frees_what_it_claimed)
{
    struct seen a = {0};
    unsigned char h[IDEM_HASH_LEN];
    hash_of("x", h);
    struct state_op *op = state_idem_begin(st, "svc", "k7", h, on_begin, &a);
    ck_assert_ptr_nonnull(op);
    state_cancel(st, op);
    int flushed = 0;
    state_flush(st, on_flushed, &flushed);
    ck_assert(run_until(&flushed, 2000));
    /* the claim's free may follow the flush by one round trip */
    double end = clock_mono_ms() + 2000;
    redisReply *r;
    for (;;) {
        r = redisCommand(rc, "DBSIZE");
        long long n = r->integer;
        freeReplyObject(r);
        r = redisCommand(rc, "KEYS %s", BASE "idem:*");
        size_t left = r->elements;
        freeReplyObject(r);
        (void)n;
        if (left == 0 || clock_mono_ms() > end)
            break;
        event_base_loop(base, EVLOOP_ONCE);
    }
    ck_assert_int_eq(a.calls, 0);
    struct seen b = begin("k7", "x");
    ck_assert_int_eq(b.v.verdict, IDEM_NEW); /* not 409 until the lease */
    state_claim_drop(st, b.v.claim);
    /* a cancelled decide never answers either */
    struct seen d = {0};
    op = state_cache_decide(st, 12, PHONE, RECHECK, on_window, &d);
    ck_assert_ptr_nonnull(op);
    state_cancel(st, op);
    int never = 0;
    run_until(&never, 200);
    ck_assert_int_eq(d.calls, 0);
}
END_TEST

/* ---- windows ---- */

static struct state_window
decide(void)
{
    struct seen s = {0};
    state_cache_decide(st, 12, PHONE, RECHECK, on_window, &s);
    settle(&s);
    return s.w;
}

static struct state_window_view
view(void)
{
    struct seen s = {0};
    state_cache_get(st, 12, PHONE, RECHECK, on_view, &s);
    settle(&s);
    return s.view;
}

static void
learn(int route, int status, const char *body)
{
    struct seen s = {0};
    struct state_answer sa = {route, 12, PHONE, status, body, strlen(body), 0};
    state_cache_learn(st, &sa, on_done, &s);
    settle(&s);
    ck_assert_int_eq(s.done, STATE_OK);
}

START_TEST(a_closed_window_is_shared_judged_and_forgotten)
{
    struct state_window w = decide();
    ck_assert_int_eq(w.status, STATE_OK);
    ck_assert_int_eq(w.decision, CACHE_FORWARD);
    ck_assert_int_eq(view().found, 0);
    learn(ROUTE_SEND_FREEFORM, 403,
          "{\"success\":false,\"error_code\":\"SESSION_EXPIRED\","
          "\"session_status\":{\"is_open\":false,"
          "\"expired_at\":\"2026-01-01T00:00:00Z\"}}");
    w = decide();
    ck_assert_int_eq(w.decision, CACHE_SHORT_CIRCUIT);
    ck_assert(w.expired_at == 1767225600000LL);
    struct state_window_view v = view();
    ck_assert_int_eq(v.status, STATE_OK);
    ck_assert_int_eq(v.found, 1);
    ck_assert_int_eq(v.v.open, 0);
    ck_assert_int_eq(v.v.source, CACHE_SRC_SEND_FREEFORM);
    ck_assert(llabs(v.v.learned_at - clock_wall_ms()) < 2000);
    ck_assert(v.v.trusted_until == v.v.learned_at + RECHECK);
    struct seen f = {0};
    state_cache_forget(st, 12, PHONE, on_done, &f);
    settle(&f);
    ck_assert_int_eq(decide().decision, CACHE_FORWARD);
    ck_assert_int_eq(view().found, 0);
}
END_TEST

START_TEST(open_windows_from_a_template_and_an_inbound_event)
{
    learn(ROUTE_SEND, 201, "{}");
    struct state_window_view v = view();
    ck_assert_int_eq(v.found, 1);
    ck_assert_int_eq(v.v.open, 1);
    ck_assert_int_eq(v.v.source, CACHE_SRC_TEMPLATE);
    ck_assert(v.v.expires_at == v.v.learned_at + LEARN_WINDOW_MS);
    int64_t when = clock_wall_ms() + 3600000;
    struct seen o = {0};
    state_cache_open(st, 12, PHONE, when, 0, on_done, &o);
    settle(&o);
    v = view();
    ck_assert_int_eq(v.v.source, CACHE_SRC_INBOUND);
    ck_assert(v.v.expires_at == when);
    ck_assert_int_eq(decide().decision, CACHE_FORWARD);
    /* what teaches nothing asks nothing */
    struct seen n = {0};
    struct state_answer sa = {ROUTE_SEND_FREEFORM, 12, PHONE, 500, "x", 1, 0};
    ck_assert_ptr_null(state_cache_learn(st, &sa, on_done, &n));
    ck_assert_int_eq(n.calls, 1);
}
END_TEST

START_TEST(one_probe_when_trust_runs_out)
{
    /* closed, learned long ago: its trust ran out */
    redis_do("SET %s %s PX 100000", BASE "win:12:14155550123", "0:-:1000:0");
    struct state_window w = decide();
    ck_assert_int_eq(w.status, STATE_OK);
    ck_assert_int_eq(w.decision, CACHE_FORWARD); /* the probe */
    struct state_window_view v = view();
    ck_assert(llabs(v.v.learned_at - clock_wall_ms()) < 2000);
    /* trusted again from the probe: the next send is answered locally */
    ck_assert_int_eq(decide().decision, CACHE_SHORT_CIRCUIT);
}
END_TEST

START_TEST(a_corrupt_window_is_no_entry)
{
    redis_do("SET %s %s PX 100000", BASE "win:12:14155550123", "1:x:y:z");
    struct state_window w = decide();
    ck_assert_int_eq(w.status, STATE_UNAVAILABLE);
    ck_assert_int_eq(w.decision, CACHE_FORWARD);
    ck_assert_int_eq(view().status, STATE_UNAVAILABLE);
    struct state_stats x = stats();
    ck_assert_uint_eq(x.corrupt, 2);
    ck_assert_uint_eq(x.cache_unavailable, 2);
}
END_TEST

/* ---- Redis unreachable ---- */

START_TEST(a_frozen_redis_is_unavailable_then_recovers)
{
    hx_redis_freeze(&rs);
    struct seen a = {0};
    unsigned char h[IDEM_HASH_LEN];
    hash_of("x", h);
    double t0 = clock_mono_ms();
    state_idem_begin(st, "svc", "k9", h, on_begin, &a);
    settle(&a);
    ck_assert_int_eq(a.v.status, STATE_UNAVAILABLE);
    ck_assert(clock_mono_ms() - t0 < TIMEOUT_MS + 500);
    /* while the link is down: answered within the call */
    struct seen b = {0};
    ck_assert_ptr_null(
        state_cache_decide(st, 12, PHONE, RECHECK, on_window, &b));
    ck_assert_int_eq(b.calls, 1);
    ck_assert_int_eq(b.w.status, STATE_UNAVAILABLE);
    ck_assert_int_eq(b.w.decision, CACHE_FORWARD);
    struct seen c = {0};
    ck_assert_ptr_null(state_cache_forget(st, 12, PHONE, on_done, &c));
    ck_assert_int_eq(c.done, STATE_UNAVAILABLE);
    struct state_stats x = stats();
    ck_assert_uint_eq(x.idem_unavailable, 1);
    ck_assert_uint_eq(x.cache_unavailable, 2);
    ck_assert_uint_eq(x.corrupt, 0);
    hx_redis_thaw(&rs);
    wait_up();
    struct seen d = begin("k9", "x");
    ck_assert_int_ne(d.v.status, STATE_UNAVAILABLE);
    if (d.v.verdict == IDEM_NEW)
        state_claim_drop(st, d.v.claim);
}
END_TEST

static Suite *
backend_suite(void)
{
    Suite *s = suite_create("state_redis_backend");
    TCase *tc = tcase_create("backend");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, verdicts_and_a_replay_byte_for_byte);
    tcase_add_test(tc, a_freed_key_is_new_again);
    tcase_add_test(tc, flush_waits_for_what_was_asked);
    tcase_add_test(tc, a_claim_taken_over_sends_and_writes_nothing);
    tcase_add_test(
        tc, a_sent_key_whose_instance_stopped_replays_an_unknown_outcome);
    tcase_add_test(tc, a_corrupt_answer_is_unavailable);
    tcase_add_test(tc, a_cancelled_begin_frees_what_it_claimed);
    tcase_add_test(tc, a_closed_window_is_shared_judged_and_forgotten);
    tcase_add_test(tc, open_windows_from_a_template_and_an_inbound_event);
    tcase_add_test(tc, one_probe_when_trust_runs_out);
    tcase_add_test(tc, a_corrupt_window_is_no_entry);
    tcase_add_test(tc, a_frozen_redis_is_unavailable_then_recovers);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    log_configure(LOG_ERROR, LOG_FORMAT_TEXT);
    if (hx_redis_start(&rs, 0, NULL) != 0) {
        fprintf(stderr, "redis-server did not start\n");
        return 1;
    }
    int rc_ = harness_run_suite(backend_suite());
    hx_redis_stop(&rs);
    return rc_;
}
