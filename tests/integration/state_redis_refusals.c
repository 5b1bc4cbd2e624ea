/* state_redis_refusals.c - the learned refusals (SPEC sections 4a and 11)
 * through the Redis backend of state.h (src/state_redis.c), the real link
 * (redis_link.h) and the shipped scripts against a real redis-server
 * (hx_redis), on the test's own event loop: decide, learn (a send's
 * answer, a 2xx, a senders list), list and forget round trips, every
 * answer exactly once, the body byte for byte and the status of the route
 * asked, one probe when trust runs out, what asks nothing answered within
 * the call, cancel, the scripts reloaded after a SCRIPT FLUSH, an error
 * reply (a command the scripts use denied by an ACL) counted corrupt and
 * unavailable, and a
 * frozen Redis: decide forwards with STATE_UNAVAILABLE within the timeout
 * and every refusal operation counts in refusal_unavailable. */
#include <check.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "harness.h"
#include "hx_redis.h"
#include "log.h"
#include "redis_link.h"
#include "redis_scripts.h"
#include "state.h"

#define BASE "wagate:{t}:"
#define TIMEOUT_MS 200
#define TOFF 30000
#define TNF 300000
#define TBAL 10000
#define OFFLINE_503                                                           \
    "{\"success\":false,\"error\":\"Sender is not online\",\r\n"              \
    "\"error_code\":\"SENDER_OFFLINE\"}"
#define NOT_FOUND "{\"success\":false,\"error_code\":\"SENDER_NOT_FOUND\"}"
#define BROKE "{\"success\":false,\"error_code\":\"INSUFFICIENT_BALANCE\"}"

static struct hx_redis rs;
static struct event_base *base;
static struct event *tick;
static struct rlink *link_;
static struct config cfg;
static const struct config *cfgp = &cfg;
static struct state *st;
static redisContext *rc;
static const struct refusal_trust trust = {{TOFF, TNF, TBAL}};

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
    freeReplyObject(redisCommand(rc, "ACL SETUSER default +@all"));
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

#define VIEWS_MAX 16

struct seen {
    int calls;
    struct state_refusal r;
    char body[REFUSAL_BODY_MAX + 1]; /* r.answer.body's copy, from cb */
    enum state_status done;
    int found;
    /* a list: its entries, then its end */
    struct refusal_view v[VIEWS_MAX];
    int nv, ended, stop_after; /* stop_after > 0: cancel from the nth */
    enum state_status end_status;
    struct state_op *op;
};

static void
on_refusal(void *arg, const struct state_refusal *r)
{
    struct seen *s = arg;
    s->calls++;
    s->r = *r;
    if (r->decision == REFUSAL_ANSWER) {
        ck_assert_uint_le(r->answer.len, REFUSAL_BODY_MAX);
        memcpy(s->body, r->answer.body, r->answer.len);
        s->body[r->answer.len] = '\0';
    }
    s->r.answer.body = NULL; /* valid during cb only */
}

static void
on_done(void *arg, enum state_status status)
{
    struct seen *s = arg;
    s->calls++;
    s->done = status;
}

static void
on_found(void *arg, enum state_status status, int found)
{
    struct seen *s = arg;
    s->calls++;
    s->done = status;
    s->found = found;
}

static void
on_view(void *arg, enum state_status status, const struct refusal_view *v)
{
    struct seen *s = arg;
    if (v == NULL) {
        s->calls++;
        s->ended++;
        s->end_status = status;
        return;
    }
    ck_assert_int_eq(status, STATE_OK);
    ck_assert_int_eq(s->ended, 0);
    ck_assert_int_lt(s->nv, VIEWS_MAX);
    s->v[s->nv++] = *v;
    if (s->stop_after > 0 && s->nv == s->stop_after) {
        state_cancel(st, s->op);
        s->calls++; /* what the test waits for */
    }
}

/* Waits for the answer, then a little more: a second call would show. */
static void
settle(const struct seen *s)
{
    ck_assert_msg(run_until(&s->calls, 2000), "no answer");
    int never = 0;
    run_until(&never, 30);
    ck_assert_int_eq(s->calls, 1);
}

static struct seen
decide_on(enum route_id route, int64_t sender)
{
    struct seen s = {0};
    state_refusal_decide(st, route, sender, &trust, on_refusal, &s);
    settle(&s);
    return s;
}

static struct seen
decide(int64_t sender)
{
    return decide_on(ROUTE_SEND_FREEFORM, sender);
}

static void
ck_answers(struct seen s, enum refusal_kind kind, int status, const char *body)
{
    ck_assert_int_eq(s.r.status, STATE_OK);
    ck_assert_int_eq(s.r.decision, REFUSAL_ANSWER);
    ck_assert_int_eq(s.r.answer.kind, kind);
    ck_assert_int_eq(s.r.answer.status, status);
    ck_assert_uint_eq(s.r.answer.len, strlen(body));
    ck_assert_str_eq(s.body, body);
}

static void
ck_forwards(struct seen s)
{
    ck_assert_int_eq(s.r.status, STATE_OK);
    ck_assert_int_eq(s.r.decision, REFUSAL_FORWARD);
}

static enum state_status
learn_with(enum route_id route, long long sender, int status,
           const char *body, int all, const struct refusal_trust *t)
{
    struct seen s = {0};
    struct state_answer sa = {route, sender, 0, status, body, strlen(body),
                              all};
    state_refusal_learn(st, &sa, t, on_done, &s);
    settle(&s);
    return s.done;
}

static enum state_status
learn(enum route_id route, long long sender, int status, const char *body)
{
    return learn_with(route, sender, status, body, 0, &trust);
}

static struct seen
list(void)
{
    struct seen s = {0};
    state_refusal_list(st, &trust, on_view, &s);
    settle(&s);
    ck_assert_int_eq(s.ended, 1);
    return s;
}

static struct seen
forget(int64_t sender)
{
    struct seen s = {0};
    state_refusal_forget(st, sender, on_found, &s);
    settle(&s);
    return s;
}

static struct state_stats
stats(void)
{
    struct state_stats x;
    state_get_stats(st, &x);
    return x;
}

static void
redis_do(const char *cmd)
{
    redisReply *r = redisCommand(rc, cmd);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_ne(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

/* ---- round trips ---- */

START_TEST(decide_learn_list_and_forget_round_trip)
{
    ck_assert_int_eq(stats().refusal_entries, -1); /* not known yet */
    ck_forwards(decide(12));
    ck_assert_int_eq(stats().refusal_entries, 0);
    ck_assert_int_eq(learn(ROUTE_SEND_FREEFORM, 12, 503, OFFLINE_503),
                     STATE_OK);
    ck_assert_int_eq(stats().refusal_entries, 1);
    ck_answers(decide(12), REFUSAL_SENDER_OFFLINE, 503, OFFLINE_503);
    /* the status of the route asked: the template route says 422 */
    ck_answers(decide_on(ROUTE_SEND, 12), REFUSAL_SENDER_OFFLINE, 422,
               OFFLINE_503);
    ck_forwards(decide(13));
    ck_assert_int_eq(learn(ROUTE_SEND, 13, 404, NOT_FOUND), STATE_OK);
    ck_answers(decide(13), REFUSAL_SENDER_NOT_FOUND, 404, NOT_FOUND);
    /* the balance: every sender's */
    ck_assert_int_eq(learn(ROUTE_SEND, 14, 402, BROKE), STATE_OK);
    ck_answers(decide_on(ROUTE_SEND, 99), REFUSAL_BALANCE, 402, BROKE);
    ck_answers(decide(12), REFUSAL_SENDER_OFFLINE, 503, OFFLINE_503);
    ck_assert_int_eq(stats().refusal_entries, 3);

    struct seen l = list();
    ck_assert_int_eq(l.end_status, STATE_OK);
    ck_assert_int_eq(l.nv, 3);
    ck_assert_int_eq(l.v[0].kind, REFUSAL_BALANCE);
    ck_assert_int_eq(l.v[0].sender, 0);
    ck_assert_int_eq(l.v[1].kind, REFUSAL_SENDER_OFFLINE);
    ck_assert_int_eq(l.v[1].sender, 12);
    ck_assert_int_eq(l.v[2].kind, REFUSAL_SENDER_NOT_FOUND);
    ck_assert_int_eq(l.v[2].sender, 13);
    for (int i = 0; i < 3; i++) {
        ck_assert(llabs(l.v[i].learned_at - clock_wall_ms()) < 2000);
        ck_assert(l.v[i].checked_at == l.v[i].learned_at);
        ck_assert(l.v[i].trusted_until ==
                  l.v[i].checked_at + trust.ms[l.v[i].kind]);
        ck_assert_int_eq(l.v[i].trusted, 1);
    }
    /* read with other periods: a kind turned off is listed, not trusted */
    struct seen l2 = {0};
    struct refusal_trust off = {{0, TNF, TBAL}};
    state_refusal_list(st, &off, on_view, &l2);
    settle(&l2);
    ck_assert_int_eq(l2.v[1].trusted, 0);
    ck_assert(l2.v[1].trusted_until == l2.v[1].checked_at);

    struct seen f = forget(12);
    ck_assert_int_eq(f.done, STATE_OK);
    ck_assert_int_eq(f.found, 1);
    ck_assert_int_eq(forget(12).found, 0);
    ck_answers(decide(12), REFUSAL_BALANCE, 402, BROKE);
    ck_assert_int_eq(forget(0).found, 1);
    ck_assert_int_eq(forget(0).found, 0);
    ck_forwards(decide(12));
    l = list();
    ck_assert_int_eq(l.nv, 1);
    ck_assert_int_eq(l.v[0].sender, 13);
    ck_assert_int_eq(stats().refusal_entries, 1);
}
END_TEST

START_TEST(a_2xx_and_a_senders_list_clear_and_teach)
{
    ck_assert_int_eq(learn(ROUTE_SEND_FREEFORM, 12, 503, OFFLINE_503),
                     STATE_OK);
    ck_assert_int_eq(learn(ROUTE_SEND, 13, 404, NOT_FOUND), STATE_OK);
    ck_assert_int_eq(learn(ROUTE_SEND, 13, 402, BROKE), STATE_OK);
    /* 13 learned not found, then the balance: its entry is still there */
    ck_answers(decide(13), REFUSAL_SENDER_NOT_FOUND, 404, NOT_FOUND);
    /* a 2xx from 12: its entry and the balance go, not 13's */
    ck_assert_int_eq(learn(ROUTE_SEND_FREEFORM, 12, 200, "{}"), STATE_OK);
    ck_forwards(decide(12));
    ck_answers(decide(13), REFUSAL_SENDER_NOT_FOUND, 404, NOT_FOUND);
    ck_forwards(decide(14));
    /* a ?status=all list: 12 offline (the provider's body), 13 listed
     * (exists), 14 online */
    static const char senders[] =
        "{\"data\":[{\"id\":12,\"status\":\"offline\"},"
        "{\"id\":13,\"status\":\"offline\"},"
        "{\"id\":14,\"status\":\"online\"}]}";
    ck_assert_int_eq(learn(ROUTE_SEND_FREEFORM, 14, 503, OFFLINE_503),
                     STATE_OK);
    ck_assert_int_eq(learn_with(ROUTE_SENDERS, -1, 200, senders, 1, &trust),
                     STATE_OK);
    ck_answers(decide(12), REFUSAL_SENDER_OFFLINE, 503, REFUSAL_OFFLINE_BODY);
    ck_answers(decide(13), REFUSAL_SENDER_OFFLINE, 503, REFUSAL_OFFLINE_BODY);
    ck_forwards(decide(14));
    /* a send's offline body is kept by the next list */
    ck_assert_int_eq(learn(ROUTE_SEND_FREEFORM, 14, 503, OFFLINE_503),
                     STATE_OK);
    static const char again[] = "{\"data\":[{\"id\":14,\"status\":\"busy\"}]}";
    ck_assert_int_eq(learn_with(ROUTE_SENDERS, -1, 200, again, 1, &trust),
                     STATE_OK);
    ck_answers(decide(14), REFUSAL_SENDER_OFFLINE, 503, OFFLINE_503);
    /* an online-only list teaches nothing of those it does not list */
    static const char online[] = "{\"data\":[{\"id\":12,\"status\":\"online\"}]}";
    ck_assert_int_eq(learn_with(ROUTE_SENDERS, -1, 200, online, 0, &trust),
                     STATE_OK);
    ck_forwards(decide(12));
    ck_answers(decide(13), REFUSAL_SENDER_OFFLINE, 503, REFUSAL_OFFLINE_BODY);
    ck_assert_int_eq(stats().refusal_entries, 2);
    /* and of a sender it lists not online, only that it exists */
    ck_assert_int_eq(learn(ROUTE_SEND, 15, 404, NOT_FOUND), STATE_OK);
    static const char odd[] = "{\"data\":[{\"id\":15,\"status\":\"offline\"},"
                              "{\"id\":16,\"status\":\"offline\"}]}";
    ck_assert_int_eq(learn_with(ROUTE_SENDERS, -1, 200, odd, 0, &trust),
                     STATE_OK);
    ck_forwards(decide(15));
    ck_forwards(decide(16));
    /* as a ?status=all list does with sender_offline off */
    struct refusal_trust off = {{0, TNF, TBAL}};
    ck_assert_int_eq(learn(ROUTE_SEND, 15, 404, NOT_FOUND), STATE_OK);
    ck_assert_int_eq(learn_with(ROUTE_SENDERS, -1, 200, odd, 1, &off),
                     STATE_OK);
    ck_forwards(decide(15));
    ck_forwards(decide(16));
}
END_TEST

START_TEST(what_asks_nothing_answers_within_the_call)
{
    struct seen s = {0};
    struct refusal_trust none = {{0, 0, 0}};
    /* every kind off, or not a send route: nothing can answer */
    ck_assert_ptr_null(state_refusal_decide(st, ROUTE_SEND, 12, &none,
                                            on_refusal, &s));
    ck_assert_int_eq(s.calls, 1);
    ck_forwards(s);
    s = (struct seen){0};
    ck_assert_ptr_null(state_refusal_decide(st, ROUTE_SENDERS, 12, &trust,
                                            on_refusal, &s));
    ck_assert_int_eq(s.calls, 1);
    /* a kind off learns nothing; nor does an answer that is no refusal */
    struct refusal_trust off = {{0, TNF, TBAL}};
    struct state_answer sa = {ROUTE_SEND_FREEFORM, 12, 0, 503, OFFLINE_503,
                              strlen(OFFLINE_503), 0};
    s = (struct seen){0};
    ck_assert_ptr_null(state_refusal_learn(st, &sa, &off, on_done, &s));
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.done, STATE_OK);
    sa.status = 500;
    s = (struct seen){0};
    ck_assert_ptr_null(state_refusal_learn(st, &sa, &trust, on_done, &s));
    ck_assert_int_eq(s.calls, 1);
    /* a sender kind of an unknown sender; a list that is none */
    sa.status = 503;
    sa.sender = -1;
    ck_assert_ptr_null(state_refusal_learn(st, &sa, &trust, NULL, NULL));
    struct state_answer bad = {ROUTE_SENDERS, -1, 0, 200, "[]", 2, 1};
    ck_assert_ptr_null(state_refusal_learn(st, &bad, &trust, NULL, NULL));
    redisReply *r = redisCommand(rc, "DBSIZE");
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    /* a learn nobody waits for still takes effect */
    sa.sender = 12;
    ck_assert_ptr_null(state_refusal_learn(st, &sa, &trust, NULL, NULL));
    /* one connection: the decide runs after it */
    ck_answers(decide(12), REFUSAL_SENDER_OFFLINE, 503, OFFLINE_503);
}
END_TEST

START_TEST(one_probe_when_trust_runs_out)
{
    /* learned long ago: its trust ran out (the TTL is the test's) */
    redis_do("HSET " BASE "ref:s:12 kind sender_not_found learned_at 1000 "
             "checked_at 1000 body " NOT_FOUND);
    redis_do("PEXPIRE " BASE "ref:s:12 100000");
    struct seen s = decide(12);
    ck_assert_int_eq(s.r.status, STATE_OK);
    ck_assert_int_eq(s.r.decision, REFUSAL_PROBE);
    ck_assert_int_eq(s.r.answer.kind, REFUSAL_SENDER_NOT_FOUND);
    /* trusted again from the probe: the next send is answered */
    ck_answers(decide(12), REFUSAL_SENDER_NOT_FOUND, 404, NOT_FOUND);
    struct seen l = list();
    ck_assert_int_eq(l.nv, 1);
    ck_assert(l.v[0].learned_at == 1000);
    ck_assert(llabs(l.v[0].checked_at - clock_wall_ms()) < 2000);
    /* a corrupt entry is none: forwarded, nothing counted unavailable */
    redis_do("HSET " BASE "ref:s:12 checked_at soon");
    ck_forwards(decide(12));
    ck_assert_int_eq(stats().refusal_entries, 1); /* its index member */
    ck_assert_int_eq(list().nv, 0);
    ck_assert_int_eq(stats().refusal_entries, 0); /* as listed */
    struct state_stats x = stats();
    ck_assert_uint_eq(x.refusal_unavailable, 0);
    ck_assert_uint_eq(x.corrupt, 0);
}
END_TEST

START_TEST(cancelled_operations_never_answer)
{
    ck_assert_int_eq(learn(ROUTE_SEND, 12, 402, BROKE), STATE_OK);
    ck_assert_int_eq(learn(ROUTE_SEND, 12, 404, NOT_FOUND), STATE_OK);
    ck_assert_int_eq(learn(ROUTE_SEND, 13, 404, NOT_FOUND), STATE_OK);
    struct seen d = {0};
    struct state_op *op =
        state_refusal_decide(st, ROUTE_SEND, 12, &trust, on_refusal, &d);
    ck_assert_ptr_nonnull(op);
    state_cancel(st, op);
    struct seen f = {0};
    op = state_refusal_forget(st, 13, on_found, &f);
    ck_assert_ptr_nonnull(op);
    state_cancel(st, op);
    /* a list cancelled from its own callback stops there */
    struct seen l = {0};
    l.stop_after = 1; /* of two: the balance, 12 (13's is forgotten) */
    l.op = state_refusal_list(st, &trust, on_view, &l);
    ck_assert_ptr_nonnull(l.op);
    settle(&l);
    ck_assert_int_eq(l.nv, 1);
    ck_assert_int_eq(l.ended, 0);
    int never = 0;
    run_until(&never, 200);
    ck_assert_int_eq(d.calls, 0);
    ck_assert_int_eq(f.calls, 0);
    ck_assert_int_eq(l.ended, 0);
    /* the cancelled forget still took effect: the balance answers 13 */
    ck_answers(decide(13), REFUSAL_BALANCE, 402, BROKE);
}
END_TEST

START_TEST(the_scripts_are_sent_again_after_a_script_flush)
{
    ck_assert_int_eq(learn(ROUTE_SEND, 12, 404, NOT_FOUND), STATE_OK);
    redis_do("SCRIPT FLUSH");
    struct rlink_stats before, after;
    rlink_get_stats(link_, &before);
    ck_answers(decide(12), REFUSAL_SENDER_NOT_FOUND, 404, NOT_FOUND);
    ck_assert_int_eq(forget(12).found, 1);
    rlink_get_stats(link_, &after);
    ck_assert_uint_eq(after.noscript - before.noscript, 2);
    ck_assert_uint_eq(stats().refusal_unavailable, 0);
}
END_TEST

START_TEST(an_error_reply_is_unavailable_and_counted_corrupt)
{
    ck_assert_int_eq(learn(ROUTE_SEND, 12, 404, NOT_FOUND), STATE_OK);
    /* TYPE denied: every ref_ script's first read fails, an error reply */
    redis_do("ACL SETUSER default -type");
    ck_assert_int_eq(learn(ROUTE_SEND, 13, 404, NOT_FOUND), STATE_UNAVAILABLE);
    struct seen d = decide(12);
    ck_assert_int_eq(d.r.status, STATE_UNAVAILABLE);
    ck_assert_int_eq(d.r.decision, REFUSAL_FORWARD);
    struct seen l = list();
    ck_assert_int_eq(l.end_status, STATE_UNAVAILABLE);
    ck_assert_int_eq(l.nv, 0);
    struct seen f = forget(12);
    ck_assert_int_eq(f.done, STATE_UNAVAILABLE);
    struct state_stats x = stats();
    ck_assert_uint_eq(x.corrupt, 4);
    ck_assert_uint_eq(x.refusal_unavailable, 4);
    redis_do("ACL SETUSER default +@all");
    ck_assert(rlink_up(link_)); /* an error reply is no outage */
    ck_answers(decide(12), REFUSAL_SENDER_NOT_FOUND, 404, NOT_FOUND);
}
END_TEST

/* ---- Redis unreachable ---- */

START_TEST(a_frozen_redis_forwards_and_counts_then_recovers)
{
    ck_assert_int_eq(learn(ROUTE_SEND, 12, 404, NOT_FOUND), STATE_OK);
    hx_redis_freeze(&rs);
    struct seen a = {0};
    double t0 = clock_mono_ms();
    state_refusal_decide(st, ROUTE_SEND, 12, &trust, on_refusal, &a);
    settle(&a);
    ck_assert(clock_mono_ms() - t0 < TIMEOUT_MS + 500);
    ck_assert_int_eq(a.r.status, STATE_UNAVAILABLE);
    ck_assert_int_eq(a.r.decision, REFUSAL_FORWARD);
    ck_assert_uint_eq(stats().refusal_unavailable, 1);
    /* the breaker is open: each answered within the call */
    struct seen b = {0};
    ck_assert_ptr_null(
        state_refusal_decide(st, ROUTE_SEND, 12, &trust, on_refusal, &b));
    ck_assert_int_eq(b.calls, 1);
    ck_assert_int_eq(b.r.status, STATE_UNAVAILABLE);
    ck_assert_int_eq(b.r.decision, REFUSAL_FORWARD);
    struct seen c = {0};
    struct state_answer sa = {ROUTE_SEND, 13, 0, 404, NOT_FOUND,
                              strlen(NOT_FOUND), 0};
    ck_assert_ptr_null(state_refusal_learn(st, &sa, &trust, on_done, &c));
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.done, STATE_UNAVAILABLE);
    struct seen l = {0};
    ck_assert_ptr_null(state_refusal_list(st, &trust, on_view, &l));
    ck_assert_int_eq(l.calls, 1);
    ck_assert_int_eq(l.nv, 0);
    ck_assert_int_eq(l.end_status, STATE_UNAVAILABLE);
    struct seen f = {0};
    ck_assert_ptr_null(state_refusal_forget(st, 12, on_found, &f));
    ck_assert_int_eq(f.calls, 1);
    ck_assert_int_eq(f.done, STATE_UNAVAILABLE);
    ck_assert_int_eq(f.found, 0);
    struct state_stats x = stats();
    ck_assert_uint_eq(x.refusal_unavailable, 5);
    ck_assert_uint_eq(x.corrupt, 0);
    ck_assert_uint_eq(x.cache_unavailable, 0);
    ck_assert_uint_eq(x.idem_unavailable, 0);
    hx_redis_thaw(&rs);
    wait_up();
    ck_answers(decide_on(ROUTE_SEND, 12), REFUSAL_SENDER_NOT_FOUND, 404,
               NOT_FOUND);
}
END_TEST

static Suite *
refusals_suite(void)
{
    Suite *s = suite_create("state_redis_refusals");
    TCase *tc = tcase_create("refusals");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, decide_learn_list_and_forget_round_trip);
    tcase_add_test(tc, a_2xx_and_a_senders_list_clear_and_teach);
    tcase_add_test(tc, what_asks_nothing_answers_within_the_call);
    tcase_add_test(tc, one_probe_when_trust_runs_out);
    tcase_add_test(tc, cancelled_operations_never_answer);
    tcase_add_test(tc, the_scripts_are_sent_again_after_a_script_flush);
    tcase_add_test(tc, an_error_reply_is_unavailable_and_counted_corrupt);
    tcase_add_test(tc, a_frozen_redis_forwards_and_counts_then_recovers);
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
    int rc_ = harness_run_suite(refusals_suite());
    hx_redis_stop(&rs);
    return rc_;
}
