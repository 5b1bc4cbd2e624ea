/* check_state.c - the memory backend of state.h, through the interface:
 * answers within the call without a delay, from the loop with one, in the
 * order asked; a cancelled begin frees the key it claimed; a flush waits
 * for what is queued. */
#include "unit.h"
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "idempotency.h"
#include "refusals.h"
#include "session_cache.h"
#include "state.h"

static struct event_base *base;
static struct idem_store *idem;
static struct session_cache *cache;
static struct refusals *refs; /* NULL unless start_refusals() */
static struct state *st;

static void
start_with(long delay_ms, struct refusals *r)
{
    base = event_base_new();
    idem = idem_new(16, 60000);
    cache = cache_new(16);
    refs = r;
    ck_assert_ptr_nonnull(base);
    st = state_memory_new(base, idem, cache, refs, delay_ms);
    ck_assert_ptr_nonnull(st);
}

static void
start(long delay_ms)
{
    start_with(delay_ms, NULL);
}

static void
start_refusals(long delay_ms)
{
    struct refusals *r = refusals_new(8);
    ck_assert_ptr_nonnull(r);
    start_with(delay_ms, r);
}

static void
stop(void)
{
    state_free(st);
    refusals_free(refs);
    refs = NULL;
    idem_free(idem);
    cache_free(cache);
    event_base_free(base);
}

/* What the callbacks saw, in order. */
struct seen {
    int n;
    int order[8];
    struct state_idem_verdict v;
    struct state_window w;
    enum state_status status;
};

static void
on_begin(void *arg, const struct state_idem_verdict *v)
{
    struct seen *s = arg;
    s->order[s->n++ % 8] = 'b';
    s->v = *v;
}

static void
on_done(void *arg, enum state_status status)
{
    struct seen *s = arg;
    s->order[s->n++ % 8] = 'd';
    s->status = status;
}

static void
on_window(void *arg, const struct state_window *w)
{
    struct seen *s = arg;
    s->order[s->n++ % 8] = 'w';
    s->w = *w;
}

static struct state_window_view seen_view;

static void
on_view(void *arg, const struct state_window_view *w)
{
    struct seen *s = arg;
    s->order[s->n++ % 8] = 'g';
    seen_view = *w;
}

static void
on_flushed(void *arg)
{
    *(int *)arg = 1;
}

/* Runs the loop until *n callbacks came (bounded: the loop ends when no
 * timer is left, or after 200 rounds). */
static void
loop_until(const int *n, int want)
{
    for (int i = 0; i < 200 && *n < want; i++)
        if (event_base_loop(base, EVLOOP_ONCE) != 0)
            break;
}

static const unsigned char hash_a[IDEM_HASH_LEN] = {1};
static const unsigned char hash_b[IDEM_HASH_LEN] = {2};

START_TEST(test_memory_answers_within_the_call)
{
    struct seen s = {0};
    start(0);
    ck_assert_ptr_null(state_idem_begin(st, "", "k", hash_a, on_begin, &s));
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(s.v.status, STATE_OK);
    ck_assert_int_eq(s.v.verdict, IDEM_NEW);
    struct state_claim *c = s.v.claim;
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_null(state_idem_begin(st, "", "k", hash_a, on_begin, &s));
    ck_assert_int_eq(s.v.verdict, IDEM_IN_PROGRESS);
    ck_assert_ptr_null(state_idem_begin(st, "", "k", hash_b, on_begin, &s));
    ck_assert_int_eq(s.v.verdict, IDEM_REUSED);
    ck_assert_ptr_null(state_idem_sent(st, c, on_done, &s));
    ck_assert_int_eq(s.n, 4);
    struct idem_header h = {"Content-Type", "application/json"};
    struct idem_answer a = {200, &h, 1, "{}", 2};
    ck_assert_ptr_null(state_idem_finish(st, c, &a, on_done, &s));
    ck_assert_int_eq(s.n, 5);
    ck_assert_ptr_null(state_idem_begin(st, "", "k", hash_a, on_begin, &s));
    ck_assert_int_eq(s.v.verdict, IDEM_REPLAY);
    ck_assert_int_eq(s.v.answer->status, 200);
    ck_assert_str_eq(s.v.answer->headers[0].value, "application/json");
    /* another caller's key is another key */
    ck_assert_ptr_null(state_idem_begin(st, "b", "k", hash_b, on_begin, &s));
    ck_assert_int_eq(s.v.verdict, IDEM_NEW);
    ck_assert_ptr_null(state_idem_finish(st, s.v.claim, NULL, NULL, NULL));
    ck_assert_ptr_null(state_idem_begin(st, "b", "k", hash_a, on_begin, &s));
    ck_assert_int_eq(s.v.verdict, IDEM_NEW); /* freed, so new again */
    state_claim_drop(st, s.v.claim);
    stop();
}
END_TEST

START_TEST(test_memory_cache_decide_and_learn)
{
    struct seen s = {0};
    start(0);
    const char *expired = "{\"success\":false,\"error_code\":"
                          "\"SESSION_EXPIRED\"}";
    struct state_answer a = {
        ROUTE_SEND_FREEFORM, 12, 14155550123ULL, 403, expired,
        strlen(expired),     0};
    ck_assert_ptr_null(
        state_cache_decide(st, 12, 14155550123ULL, 300000, on_window, &s));
    ck_assert_int_eq(s.w.decision, CACHE_FORWARD);
    ck_assert_ptr_null(state_cache_learn(st, &a, on_done, &s));
    ck_assert_ptr_null(
        state_cache_decide(st, 12, 14155550123ULL, 300000, on_window, &s));
    ck_assert_int_eq(s.w.status, STATE_OK);
    ck_assert_int_eq(s.w.decision, CACHE_SHORT_CIRCUIT);
    ck_assert(s.w.expired_at == CACHE_TIME_UNKNOWN);
    ck_assert_int_eq(s.n, 3);
    stop();
}
END_TEST

START_TEST(test_delayed_answers_come_from_the_loop_in_order)
{
    struct seen s = {0};
    int flushed = 0;
    start(5);
    struct state_op *b = state_idem_begin(st, "", "k", hash_a, on_begin, &s);
    ck_assert_ptr_nonnull(b);
    const char *open = "{\"success\":true}";
    struct state_answer a = {ROUTE_SEND,   12, 14155550123ULL, 200, open,
                             strlen(open), 0};
    ck_assert_ptr_nonnull(state_cache_learn(st, &a, on_done, &s));
    ck_assert_ptr_nonnull(
        state_cache_decide(st, 12, 14155550123ULL, 300000, on_window, &s));
    ck_assert_int_eq(s.n, 0); /* nothing within the calls */
    loop_until(&s.n, 3);
    ck_assert_int_eq(s.n, 3);
    ck_assert_int_eq(s.order[0], 'b');
    ck_assert_int_eq(s.order[1], 'd');
    ck_assert_int_eq(s.order[2], 'w');
    ck_assert_int_eq(s.v.verdict, IDEM_NEW);
    ck_assert_int_eq(s.w.decision, CACHE_FORWARD); /* learned open */
    /* a finish nobody waits for still lands; the flush waits for it */
    struct idem_answer kept = {404, NULL, 0, "x", 1};
    ck_assert_ptr_null(state_idem_finish(st, s.v.claim, &kept, NULL, NULL));
    state_flush(st, on_flushed, &flushed);
    ck_assert_int_eq(flushed, 0);
    loop_until(&flushed, 1);
    ck_assert_int_eq(flushed, 1);
    const struct idem_answer *got = NULL;
    ck_assert_int_eq(idem_begin(idem, "", "k", hash_a, 0, &got), IDEM_REPLAY);
    ck_assert_int_eq(got->status, 404);
    stop();
}
END_TEST

START_TEST(test_a_cancelled_begin_frees_its_claim)
{
    struct seen s = {0};
    int flushed = 0;
    start(5);
    struct state_op *b = state_idem_begin(st, "", "k", hash_a, on_begin, &s);
    ck_assert_ptr_nonnull(b);
    state_cancel(st, b);
    state_flush(st, on_flushed, &flushed);
    loop_until(&flushed, 1);
    ck_assert_int_eq(flushed, 1);
    ck_assert_int_eq(s.n, 0); /* it ran, answering nobody */
    struct idem_stats is;
    idem_get_stats(idem, &is);
    ck_assert_uint_eq(is.in_flight, 0);
    /* a flush with nothing queued is done within the call */
    flushed = 0;
    state_flush(st, on_flushed, &flushed);
    ck_assert_int_eq(flushed, 1);
    stop();
}
END_TEST

START_TEST(test_free_drops_what_is_queued)
{
    struct seen s = {0};
    start(1000);
    const char *open = "{\"success\":true}";
    struct state_answer a = {ROUTE_SEND,   12, 14155550123ULL, 200, open,
                             strlen(open), 0};
    ck_assert_ptr_nonnull(state_idem_begin(st, "", "k", hash_a, on_begin, &s));
    ck_assert_ptr_nonnull(
        state_cache_decide(st, 12, 14155550123ULL, 300000, on_window, &s));
    ck_assert_ptr_null(state_cache_learn(st, &a, NULL, NULL));
    stop(); /* no callback, no leak (valgrind, ASan) */
    ck_assert_int_eq(s.n, 0);
}
END_TEST

#define PHONE 14155550123ULL

/* The admin API's window operations (SPEC section 7) act on the cache:
 * open as an inbound event, read it back, forget it. */
START_TEST(test_memory_admin_window_operations)
{
    struct seen s = {0};
    struct state_stats ss;
    memset(&ss, 1, sizeof(ss));
    start(0);
    ck_assert_ptr_null(state_cache_get(st, 12, PHONE, 300000, on_view, &s));
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(seen_view.status, STATE_OK);
    ck_assert_int_eq(seen_view.found, 0);
    int64_t until = clock_wall_ms() + 3600000;
    ck_assert_ptr_null(state_cache_open(st, 12, PHONE, until, 0, on_done, &s));
    ck_assert_int_eq(s.n, 2);
    ck_assert_ptr_null(state_cache_get(st, 12, PHONE, 300000, on_view, &s));
    ck_assert_int_eq(seen_view.found, 1);
    ck_assert_int_eq(seen_view.v.open, 1);
    ck_assert(seen_view.v.expires_at == until);
    ck_assert_int_eq(seen_view.v.source, CACHE_SRC_INBOUND);
    ck_assert_ptr_null(state_cache_forget(st, 12, PHONE, on_done, &s));
    ck_assert_ptr_null(state_cache_get(st, 12, PHONE, 300000, on_view, &s));
    ck_assert_int_eq(seen_view.found, 0);
    /* nobody waits: still done */
    ck_assert_ptr_null(state_cache_open(st, 13, PHONE, until, 0, NULL, NULL));
    ck_assert_int_eq(cache_get(cache, 13, PHONE, 0, 0, &seen_view.v), 0);
    ck_assert_ptr_null(state_cache_forget(st, 13, PHONE, NULL, NULL));
    ck_assert_int_eq(cache_get(cache, 13, PHONE, 0, 0, &seen_view.v), -1);
    ck_assert_int_eq(s.n, 5);
    state_get_stats(st, &ss); /* the memory store never falls back */
    ck_assert_uint_eq(ss.idem_unavailable, 0);
    ck_assert_uint_eq(ss.cache_unavailable, 0);
    stop();
}
END_TEST

/* With a delay they answer from the loop, in the order asked; a
 * cancelled one still acts. */
START_TEST(test_delayed_admin_window_operations)
{
    struct seen s = {0};
    int flushed = 0;
    start(5);
    int64_t until = clock_wall_ms() + 3600000;
    ck_assert_ptr_nonnull(
        state_cache_open(st, 12, PHONE, until, 0, on_done, &s));
    ck_assert_ptr_nonnull(state_cache_get(st, 12, PHONE, 300000, on_view, &s));
    struct state_op *f = state_cache_forget(st, 12, PHONE, on_done, &s);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(s.n, 0);
    ck_assert_int_eq(cache_get(cache, 12, PHONE, 0, 0, &seen_view.v), -1);
    state_cancel(st, f);
    state_flush(st, on_flushed, &flushed);
    loop_until(&flushed, 1);
    ck_assert_int_eq(flushed, 1);
    ck_assert_int_eq(s.n, 2); /* the forget answered nobody */
    ck_assert_int_eq(s.order[0], 'd');
    ck_assert_int_eq(s.order[1], 'g');
    ck_assert_int_eq(seen_view.found, 1); /* read after the open */
    ck_assert_int_eq(cache_get(cache, 12, PHONE, 0, 0, &seen_view.v), -1);
    /* queued ones are dropped with the store, without their callbacks */
    ck_assert_ptr_nonnull(state_cache_get(st, 12, PHONE, 300000, on_view, &s));
    ck_assert_ptr_null(state_cache_open(st, 12, PHONE, until, 0, NULL, NULL));
    stop();
    ck_assert_int_eq(s.n, 2);
}
END_TEST

/* ---- the learned refusals ---- */

static const struct refusal_trust TRUST = {{30000, 300000, 10000}};
static const char OFFLINE[] =
    "{\"success\":false,\"error\":\"Sender is not online\","
    "\"error_code\":\"SENDER_OFFLINE\"}";

static struct state_refusal seen_ref;
static char seen_body[REFUSAL_BODY_MAX + 1];
static int listed, list_ended, seen_found;
static int64_t listed_sender[8];
static enum state_status list_status;

static void
on_refusal(void *arg, const struct state_refusal *r)
{
    struct seen *s = arg;
    s->order[s->n++ % 8] = 'r';
    seen_ref = *r;
    memset(seen_body, 0, sizeof(seen_body));
    if (r->decision == REFUSAL_ANSWER) {
        ck_assert_uint_le(r->answer.len, REFUSAL_BODY_MAX);
        memcpy(seen_body, r->answer.body, r->answer.len); /* valid in cb */
        seen_ref.answer.body = seen_body;
    }
}

static void
on_list(void *arg, enum state_status status, const struct refusal_view *v)
{
    struct seen *s = arg;
    if (v == NULL) {
        s->order[s->n++ % 8] = 'l';
        list_status = status;
        list_ended++;
        return;
    }
    ck_assert_int_eq(list_ended, 0); /* the end comes last */
    listed_sender[listed++ % 8] = v->sender;
}

static void
on_found(void *arg, enum state_status status, int found)
{
    struct seen *s = arg;
    s->order[s->n++ % 8] = 'f';
    ck_assert_int_eq(status, STATE_OK);
    seen_found = found;
}

static struct state_answer
send_answer(enum route_id route, long long sender, int status, const char *b)
{
    return (struct state_answer){route, sender, PHONE, status, b, strlen(b), 0};
}

START_TEST(test_memory_refusal_operations)
{
    struct seen s = {0};
    start_refusals(0);
    listed = list_ended = 0;
    /* nothing learned: forward */
    ck_assert_ptr_null(state_refusal_decide(st, ROUTE_SEND_FREEFORM, 13, &TRUST,
                                            on_refusal, &s));
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(seen_ref.status, STATE_OK);
    ck_assert_int_eq(seen_ref.decision, REFUSAL_FORWARD);
    /* a 503 SENDER_OFFLINE teaches; the template route's status answers */
    struct state_answer a = send_answer(ROUTE_SEND_FREEFORM, 13, 503, OFFLINE);
    ck_assert_ptr_null(state_refusal_learn(st, &a, &TRUST, on_done, &s));
    ck_assert_int_eq(s.n, 2);
    ck_assert_ptr_null(
        state_refusal_decide(st, ROUTE_SEND, 13, &TRUST, on_refusal, &s));
    ck_assert_int_eq(seen_ref.decision, REFUSAL_ANSWER);
    ck_assert_int_eq(seen_ref.answer.kind, REFUSAL_SENDER_OFFLINE);
    ck_assert_int_eq(seen_ref.answer.status, 422);
    ck_assert_uint_eq(seen_ref.answer.len, strlen(OFFLINE));
    ck_assert_str_eq(seen_body, OFFLINE);
    /* another sender is not refused */
    state_refusal_decide(st, ROUTE_SEND_FREEFORM, 12, &TRUST, on_refusal, &s);
    ck_assert_int_eq(seen_ref.decision, REFUSAL_FORWARD);
    /* a senders list (?status=all) showing 13 online clears it */
    struct state_answer l = {ROUTE_SENDERS, -1, 0, 200,
                             "{\"data\":[{\"id\":13,\"status\":\"online\"},"
                             "{\"id\":14,\"status\":\"offline\"}]}",
                             0, 1};
    l.len = strlen(l.body);
    ck_assert_ptr_null(state_refusal_learn(st, &l, &TRUST, NULL, NULL));
    state_refusal_decide(st, ROUTE_SEND_FREEFORM, 13, &TRUST, on_refusal, &s);
    ck_assert_int_eq(seen_ref.decision, REFUSAL_FORWARD);
    state_refusal_decide(st, ROUTE_SEND_FREEFORM, 14, &TRUST, on_refusal, &s);
    ck_assert_int_eq(seen_ref.decision, REFUSAL_ANSWER);
    ck_assert_int_eq(seen_ref.answer.status, 503);
    ck_assert_str_eq(seen_body, REFUSAL_OFFLINE_BODY);
    /* a senders list that is not a 200 teaches nothing */
    l.status = 500;
    l.body = "{\"data\":[{\"id\":14,\"status\":\"online\"}]}";
    l.len = strlen(l.body);
    state_refusal_learn(st, &l, &TRUST, NULL, NULL);
    state_refusal_decide(st, ROUTE_SEND_FREEFORM, 14, &TRUST, on_refusal, &s);
    ck_assert_int_eq(seen_ref.decision, REFUSAL_ANSWER);
    /* the balance, then the list: balance first, senders after */
    a = send_answer(ROUTE_SEND, 12, 402,
                    "{\"error_code\":\"INSUFFICIENT_BALANCE\"}");
    state_refusal_learn(st, &a, &TRUST, NULL, NULL);
    ck_assert_ptr_null(state_refusal_list(st, &TRUST, on_list, &s));
    ck_assert_int_eq(list_ended, 1);
    ck_assert_int_eq(list_status, STATE_OK);
    ck_assert_int_eq(listed, 2);
    ck_assert_int_eq(listed_sender[0], 0);
    ck_assert_int_eq(listed_sender[1], 14);
    struct state_stats ss;
    state_get_stats(st, &ss);
    ck_assert_int_eq(ss.refusal_entries, 2);
    ck_assert_uint_eq(ss.refusal_unavailable, 0);
    /* forget: found, then not */
    ck_assert_ptr_null(state_refusal_forget(st, 0, on_found, &s));
    ck_assert_int_eq(seen_found, 1);
    state_refusal_forget(st, 0, on_found, &s);
    ck_assert_int_eq(seen_found, 0);
    state_refusal_forget(st, 14, on_found, &s);
    ck_assert_int_eq(seen_found, 1);
    state_refusal_decide(st, ROUTE_SEND_FREEFORM, 14, &TRUST, on_refusal, &s);
    ck_assert_int_eq(seen_ref.decision, REFUSAL_FORWARD);
    state_get_stats(st, &ss);
    ck_assert_int_eq(ss.refusal_entries, 0);
    stop();
}
END_TEST

START_TEST(test_delayed_refusal_operations)
{
    struct seen s = {0};
    int flushed = 0;
    start_refusals(5);
    listed = list_ended = 0;
    struct state_answer a = send_answer(ROUTE_SEND_FREEFORM, 13, 503, OFFLINE);
    char *body = strdup(OFFLINE);
    ck_assert_ptr_nonnull(body);
    a.body = body;
    /* learn, decide, list, forget: queued, answered in that order */
    ck_assert_ptr_nonnull(state_refusal_learn(st, &a, &TRUST, on_done, &s));
    memset(body, 'x', strlen(body)); /* the queued copy is its own */
    free(body);
    ck_assert_ptr_nonnull(state_refusal_decide(st, ROUTE_SEND_FREEFORM, 13,
                                               &TRUST, on_refusal, &s));
    ck_assert_ptr_nonnull(state_refusal_list(st, &TRUST, on_list, &s));
    ck_assert_ptr_nonnull(state_refusal_forget(st, 13, on_found, &s));
    ck_assert_int_eq(s.n, 0);
    /* a cancelled decide still answers nobody */
    struct state_op *d =
        state_refusal_decide(st, ROUTE_SEND_FREEFORM, 13, &TRUST, on_refusal, &s);
    state_cancel(st, d);
    state_flush(st, on_flushed, &flushed);
    loop_until(&flushed, 1);
    ck_assert_int_eq(s.n, 4);
    ck_assert_int_eq(s.order[0], 'd');
    ck_assert_int_eq(s.order[1], 'r');
    ck_assert_int_eq(s.order[2], 'l');
    ck_assert_int_eq(s.order[3], 'f');
    ck_assert_int_eq(seen_ref.decision, REFUSAL_ANSWER);
    ck_assert_str_eq(seen_body, OFFLINE);
    ck_assert_int_eq(listed, 1);
    ck_assert_int_eq(listed_sender[0], 13);
    ck_assert_int_eq(seen_found, 1);
    /* queued ones are dropped with the store, without their callbacks */
    ck_assert_ptr_nonnull(state_refusal_list(st, &TRUST, on_list, &s));
    a.body = OFFLINE; /* the first one's buffer is gone */
    ck_assert_ptr_null(state_refusal_learn(st, &a, &TRUST, NULL, NULL));
    stop();
    ck_assert_int_eq(s.n, 4);
}
END_TEST

START_TEST(test_no_refusal_store_forwards)
{
    struct seen s = {0};
    start(0);
    listed = list_ended = 0;
    struct state_answer a = send_answer(ROUTE_SEND_FREEFORM, 13, 503, OFFLINE);
    state_refusal_learn(st, &a, &TRUST, NULL, NULL);
    state_refusal_decide(st, ROUTE_SEND_FREEFORM, 13, &TRUST, on_refusal, &s);
    ck_assert_int_eq(seen_ref.decision, REFUSAL_FORWARD);
    state_refusal_list(st, &TRUST, on_list, &s);
    ck_assert_int_eq(listed, 0);
    ck_assert_int_eq(list_ended, 1);
    state_refusal_forget(st, 13, on_found, &s);
    ck_assert_int_eq(seen_found, 0);
    stop();
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("state");
    TCase *tc = tcase_create("memory");
    tcase_add_test(tc, test_memory_answers_within_the_call);
    tcase_add_test(tc, test_memory_cache_decide_and_learn);
    tcase_add_test(tc, test_delayed_answers_come_from_the_loop_in_order);
    tcase_add_test(tc, test_a_cancelled_begin_frees_its_claim);
    tcase_add_test(tc, test_free_drops_what_is_queued);
    tcase_add_test(tc, test_memory_admin_window_operations);
    tcase_add_test(tc, test_delayed_admin_window_operations);
    tcase_add_test(tc, test_memory_refusal_operations);
    tcase_add_test(tc, test_delayed_refusal_operations);
    tcase_add_test(tc, test_no_refusal_store_forwards);
    suite_add_tcase(s, tc);
    return s;
}
