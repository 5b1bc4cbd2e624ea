/* check_refusals.c - unit tests for the learned refusals (refusals.c,
 * SPEC section 4a): what each answer teaches, trust and probes, clearing,
 * bounds, and a seeded random run against a small reference model. */
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refusals.h"
#include "route.h"

#define NOW 1767225600000LL /* 2026-01-01T00:00:00Z */
#define SEC 1000LL
#define FF ROUTE_SEND_FREEFORM
#define TPL ROUTE_SEND

#define OFFLINE_BODY                                                           \
    "{\"success\":false,\"error\":\"Sender is not online. Current status: "    \
    "Offline\",\"error_code\":\"SENDER_OFFLINE\"}"
#define NF_BODY                                                                \
    "{\"success\":false,\"error\":\"Sender not found or does not belong to "   \
    "you\",\"error_code\":\"SENDER_NOT_FOUND\"}"
#define BAL_BODY                                                               \
    "{\"success\":false,\"error\":\"Insufficient balance. Please top up your " \
    "account.\",\"error_code\":\"INSUFFICIENT_BALANCE\"}"
#define OK_BODY "{\"success\":true,\"message_id\":567}"

static struct refusals *r;
/* the defaults of SPEC section 8: 30 s, 300 s, 10 s */
static struct refusal_trust T = {{30 * SEC, 300 * SEC, 10 * SEC}};

static void
setup(void)
{
    r = refusals_new(100);
    T = (struct refusal_trust){{30 * SEC, 300 * SEC, 10 * SEC}};
}

static void
teardown(void)
{
    refusals_free(r);
}

static enum refusal_lesson_op
learn(enum route_id route, int64_t sender, int status, const char *body,
      int64_t now)
{
    return refusals_learn(r, route, sender, status, body, strlen(body), now,
                          &T);
}

static enum refusal_decision
decide(enum route_id route, int64_t sender, int64_t now,
       struct refusal_answer *a)
{
    return refusals_decide(r, route, sender, now, &T, a);
}

static int
senders(int all, const char *body, int64_t now)
{
    return refusals_learn_senders(r, all, body, strlen(body), now, &T);
}

/* Asserts decide answers kind with status and exactly body. */
static void
assert_answers(enum route_id route, int64_t sender, int64_t now,
               enum refusal_kind kind, int status, const char *body, size_t len)
{
    struct refusal_answer a;
    ck_assert_int_eq(decide(route, sender, now, &a), REFUSAL_ANSWER);
    ck_assert_int_eq(a.kind, kind);
    ck_assert_int_eq(a.status, status);
    ck_assert_uint_eq(a.len, len);
    ck_assert(memcmp(a.body, body, len) == 0);
}

static void
assert_answers_str(enum route_id route, int64_t sender, int64_t now,
                   enum refusal_kind kind, int status, const char *body)
{
    assert_answers(route, sender, now, kind, status, body, strlen(body));
}

static void
assert_forwards(enum route_id route, int64_t sender, int64_t now)
{
    struct refusal_answer a;
    ck_assert_int_eq(decide(route, sender, now, &a), REFUSAL_FORWARD);
}

/* A refusal body of exactly n bytes carrying code. */
static char *
body_of_len(const char *code, size_t n)
{
    char pre[128];
    int p =
        snprintf(pre, sizeof(pre),
                 "{\"success\":false,\"error_code\":\"%s\",\"pad\":\"", code);
    ck_assert(p > 0 && (size_t)p + 2 <= n);
    char *b = malloc(n + 1);
    ck_assert_ptr_nonnull(b);
    memcpy(b, pre, (size_t)p);
    memset(b + p, 'a', n - (size_t)p - 2);
    memcpy(b + n - 2, "\"}", 3);
    ck_assert_uint_eq(strlen(b), n);
    return b;
}

struct seen {
    int n;
    struct refusal_view v[16];
    int stop_after; /* 0: never */
};

static int
collect(void *arg, const struct refusal_view *v)
{
    struct seen *s = arg;
    if (s->n < 16)
        s->v[s->n] = *v;
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

static struct seen
list_at(int64_t now)
{
    struct seen s = {0};
    refusals_list(r, now, &T, collect, &s);
    return s;
}

/* ---- names ---- */

START_TEST(test_names)
{
    ck_assert_str_eq(refusal_reason(REFUSAL_SENDER_OFFLINE), "sender_offline");
    ck_assert_str_eq(refusal_reason(REFUSAL_SENDER_NOT_FOUND),
                     "sender_not_found");
    ck_assert_str_eq(refusal_reason(REFUSAL_BALANCE), "insufficient_balance");
    ck_assert_str_eq(refusal_code(REFUSAL_SENDER_OFFLINE), "SENDER_OFFLINE");
    ck_assert_str_eq(refusal_code(REFUSAL_SENDER_NOT_FOUND),
                     "SENDER_NOT_FOUND");
    ck_assert_str_eq(refusal_code(REFUSAL_BALANCE), "INSUFFICIENT_BALANCE");
    ck_assert_str_eq(refusal_kind_name(REFUSAL_BALANCE), "balance");
    for (int k = 0; k < REFUSAL_KINDS; k++)
        ck_assert_int_eq(
            refusal_kind_parse(refusal_kind_name((enum refusal_kind)k)), k);
    ck_assert_int_eq(refusal_kind_parse("insufficient_balance"), -1);
    ck_assert_int_eq(refusal_kind_parse("Balance"), -1);
    ck_assert_int_eq(refusal_kind_parse(""), -1);
    ck_assert_int_eq(refusal_kind_parse(NULL), -1);
}
END_TEST

START_TEST(test_status_per_route)
{
    ck_assert_int_eq(refusal_status(REFUSAL_SENDER_OFFLINE, FF), 503);
    ck_assert_int_eq(refusal_status(REFUSAL_SENDER_OFFLINE, TPL), 422);
    ck_assert_int_eq(refusal_status(REFUSAL_SENDER_NOT_FOUND, FF), 404);
    ck_assert_int_eq(refusal_status(REFUSAL_SENDER_NOT_FOUND, TPL), 404);
    ck_assert_int_eq(refusal_status(REFUSAL_BALANCE, FF), 402);
    ck_assert_int_eq(refusal_status(REFUSAL_BALANCE, TPL), 402);
}
END_TEST

/* ---- what an answer teaches ---- */

static enum refusal_lesson_op
extract(enum route_id route, int status, const char *body,
        struct refusal_lesson *l)
{
    int op = refusal_extract(route, status, body, strlen(body), l);
    ck_assert_int_eq(op, l->op);
    return l->op;
}

START_TEST(test_extract_each_refusal_each_route)
{
    struct refusal_lesson l;
    static const struct {
        enum route_id route;
        int status;
        const char *body;
        enum refusal_kind kind;
    } ok[] = {
        {FF, 503, OFFLINE_BODY, REFUSAL_SENDER_OFFLINE},
        {TPL, 422, OFFLINE_BODY, REFUSAL_SENDER_OFFLINE},
        {FF, 404, NF_BODY, REFUSAL_SENDER_NOT_FOUND},
        {TPL, 404, NF_BODY, REFUSAL_SENDER_NOT_FOUND},
        {FF, 402, BAL_BODY, REFUSAL_BALANCE},
        {TPL, 402, BAL_BODY, REFUSAL_BALANCE},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ck_assert_int_eq(extract(ok[i].route, ok[i].status, ok[i].body, &l),
                         REFUSAL_TEACHES_REFUSAL);
        ck_assert_int_eq(l.kind, ok[i].kind);
        ck_assert_ptr_eq(l.body, ok[i].body);
        ck_assert_uint_eq(l.len, strlen(ok[i].body));
    }
}
END_TEST

START_TEST(test_extract_teaches_nothing)
{
    struct refusal_lesson l;
    static const struct {
        enum route_id route;
        int status;
        const char *body;
    } no[] = {
        {FF, 422, OFFLINE_BODY}, /* the template route's status */
        {TPL, 503, OFFLINE_BODY},
        {FF, 500, OFFLINE_BODY},
        {FF, 404, OFFLINE_BODY},
        {FF, 503, NF_BODY},
        {FF, 403, BAL_BODY},
        {ROUTE_SESSION_STATUS, 402, BAL_BODY}, /* not a send route */
        {ROUTE_SENDERS, 503, OFFLINE_BODY},
        {ROUTE_SENDERS, 200, OK_BODY},
        {FF, 503, ""},
        {FF, 503, "not json"},
        {FF, 503, "{\"error_code\":\"SENDER_OFFLINE\""},
        {FF, 503, "{\"error_code\":\"SENDER_OFFLINE\",}"},
        {FF, 503, "[\"SENDER_OFFLINE\"]"},
        {FF, 503, "\"SENDER_OFFLINE\""},
        {FF, 503, "{\"error_code\":\"sender_offline\"}"},
        {FF, 503, "{\"error_code\":\"SENDER_OFFLINE \"}"},
        {FF, 503, "{\"error_code\":[\"SENDER_OFFLINE\"]}"},
        {FF, 503, "{\"error_code\":null}"},
        {FF, 503, "{\"error\":{\"error_code\":\"SENDER_OFFLINE\"}}"},
        {FF, 503, "{\"error_code\":\"SENDER_OFFLINE\\u0000\"}"},
        {FF, 503, "{\"error_code\":\"SENDER_OFFLINE\"} x"},
        /* not one strict object: json-c would read these, another reader
         * might read them otherwise, so the body is not replayed */
        {FF, 503, "{\"error_code\":\"OTHER\",\"error_code\":\"SENDER_OFFLINE\"}"},
        {FF, 503, "{\"error_code\":\"SENDER_OFFLINE\",\"x\":{\"a\":1,\"a\":2}}"},
        {FF, 503, "{\"error_code\":\"SENDER_OFFLINE\",\"e\":\"\xff\xfe\"}"},
        {FF, 503, "{\"error_code\":\"SENDER_OFFLINE\",\"e\":\"\xc0\xaf\"}"},
        {FF, 503, "{\"error_code\":\"SENDER_OFFLINE\",\"n\":01}"},
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ck_assert_msg(extract(no[i].route, no[i].status, no[i].body, &l) ==
                          REFUSAL_TEACHES_NOTHING,
                      "case %zu", i);
}
END_TEST

START_TEST(test_extract_2xx_clears)
{
    struct refusal_lesson l;
    ck_assert_int_eq(extract(FF, 200, OK_BODY, &l), REFUSAL_TEACHES_CLEAR);
    ck_assert_int_eq(extract(TPL, 201, OK_BODY, &l), REFUSAL_TEACHES_CLEAR);
    ck_assert_int_eq(extract(TPL, 299, "", &l), REFUSAL_TEACHES_CLEAR);
    /* the body does not matter to a 2xx: the upstream took the send */
    ck_assert_int_eq(extract(FF, 200, "garbage", &l), REFUSAL_TEACHES_CLEAR);
    char *big = body_of_len("SENDER_OFFLINE", 4000);
    ck_assert_int_eq(extract(FF, 200, big, &l), REFUSAL_TEACHES_CLEAR);
    free(big);
    ck_assert_int_eq(extract(FF, 300, OK_BODY, &l), REFUSAL_TEACHES_NOTHING);
    ck_assert_int_eq(extract(FF, 199, OK_BODY, &l), REFUSAL_TEACHES_NOTHING);
}
END_TEST

/* ---- learning and deciding ---- */

START_TEST(test_offline_from_freeform)
{
    ck_assert_int_eq(learn(FF, 13, 503, OFFLINE_BODY, NOW),
                     REFUSAL_TEACHES_REFUSAL);
    assert_answers_str(FF, 13, NOW, REFUSAL_SENDER_OFFLINE, 503, OFFLINE_BODY);
    /* the template route's own status, the same body */
    assert_answers_str(TPL, 13, NOW + 1, REFUSAL_SENDER_OFFLINE, 422,
                       OFFLINE_BODY);
    assert_forwards(FF, 12, NOW); /* another sender */
}
END_TEST

START_TEST(test_offline_from_template)
{
    ck_assert_int_eq(learn(TPL, 13, 422, OFFLINE_BODY, NOW),
                     REFUSAL_TEACHES_REFUSAL);
    assert_answers_str(TPL, 13, NOW, REFUSAL_SENDER_OFFLINE, 422, OFFLINE_BODY);
    assert_answers_str(FF, 13, NOW, REFUSAL_SENDER_OFFLINE, 503, OFFLINE_BODY);
}
END_TEST

START_TEST(test_not_found_each_route)
{
    ck_assert_int_eq(learn(FF, 99, 404, NF_BODY, NOW), REFUSAL_TEACHES_REFUSAL);
    ck_assert_int_eq(learn(TPL, 98, 404, NF_BODY, NOW),
                     REFUSAL_TEACHES_REFUSAL);
    for (int64_t s = 98; s <= 99; s++) {
        assert_answers_str(FF, s, NOW, REFUSAL_SENDER_NOT_FOUND, 404, NF_BODY);
        assert_answers_str(TPL, s, NOW, REFUSAL_SENDER_NOT_FOUND, 404, NF_BODY);
    }
    /* 300 s by default */
    assert_answers_str(FF, 99, NOW + 299999, REFUSAL_SENDER_NOT_FOUND, 404,
                       NF_BODY);
    ck_assert_int_eq(decide(FF, 99, NOW + 300 * SEC, NULL), REFUSAL_PROBE);
}
END_TEST

START_TEST(test_balance_each_route_account_wide)
{
    ck_assert_int_eq(learn(FF, 12, 402, BAL_BODY, NOW),
                     REFUSAL_TEACHES_REFUSAL);
    for (int64_t s = 1; s <= 20; s++) {
        assert_answers_str(FF, s, NOW, REFUSAL_BALANCE, 402, BAL_BODY);
        assert_answers_str(TPL, s, NOW, REFUSAL_BALANCE, 402, BAL_BODY);
    }
    ck_assert_int_eq(refusals_forget_balance(r), 0);
    ck_assert_int_eq(learn(TPL, 14, 402, BAL_BODY, NOW),
                     REFUSAL_TEACHES_REFUSAL);
    assert_answers_str(FF, 7, NOW + 9999, REFUSAL_BALANCE, 402, BAL_BODY);
    ck_assert_int_eq(decide(FF, 7, NOW + 10 * SEC, NULL), REFUSAL_PROBE);
}
END_TEST

START_TEST(test_sender_refusals_per_sender)
{
    learn(FF, 13, 503, OFFLINE_BODY, NOW);
    learn(FF, 99, 404, NF_BODY, NOW);
    assert_answers_str(FF, 13, NOW, REFUSAL_SENDER_OFFLINE, 503, OFFLINE_BODY);
    assert_answers_str(FF, 99, NOW, REFUSAL_SENDER_NOT_FOUND, 404, NF_BODY);
    assert_forwards(FF, 12, NOW);
    assert_forwards(TPL, 14, NOW);
    /* the latest lesson wins: one entry per sender */
    learn(TPL, 13, 404, NF_BODY, NOW + 1);
    assert_answers_str(FF, 13, NOW + 2, REFUSAL_SENDER_NOT_FOUND, 404, NF_BODY);
    struct refusal_stats st;
    refusals_get_stats(r, &st);
    ck_assert_uint_eq(st.entries, 2);
}
END_TEST

START_TEST(test_sender_entry_before_balance)
{
    learn(FF, 13, 503, OFFLINE_BODY, NOW);
    learn(FF, 12, 402, BAL_BODY, NOW);
    assert_answers_str(FF, 13, NOW, REFUSAL_SENDER_OFFLINE, 503, OFFLINE_BODY);
    assert_answers_str(FF, 12, NOW, REFUSAL_BALANCE, 402, BAL_BODY);
    /* the balance (10 s) runs out first: 13's entry still answers */
    assert_answers_str(FF, 13, NOW + 15 * SEC, REFUSAL_SENDER_OFFLINE, 503,
                       OFFLINE_BODY);
    /* 13's ran out too: 13 is probed (not the balance) ... */
    ck_assert_int_eq(decide(FF, 13, NOW + 31 * SEC, NULL), REFUSAL_PROBE);
    struct refusal_stats st;
    refusals_get_stats(r, &st);
    ck_assert_uint_eq(st.probes[REFUSAL_SENDER_OFFLINE], 1);
    ck_assert_uint_eq(st.probes[REFUSAL_BALANCE], 0);
    /* ... and the next one from another sender probes the balance */
    ck_assert_int_eq(decide(FF, 12, NOW + 31 * SEC, NULL), REFUSAL_PROBE);
    assert_answers_str(FF, 12, NOW + 31 * SEC, REFUSAL_BALANCE, 402, BAL_BODY);
}
END_TEST

/* A probe that was not spent gives its trust back: the next send is the
 * probe again; once the entry changed, an unprobe does nothing. */
START_TEST(test_unprobe_puts_the_trust_back)
{
    struct refusal_answer a;
    learn(FF, 13, 503, OFFLINE_BODY, NOW);
    ck_assert_int_eq(decide(FF, 13, NOW + 30 * SEC, &a), REFUSAL_PROBE);
    ck_assert_int_eq(a.kind, REFUSAL_SENDER_OFFLINE);
    ck_assert_int_eq(a.probed_at, NOW + 30 * SEC);
    ck_assert_int_eq(a.was_checked_at, NOW);
    ck_assert_int_eq(refusals_unprobe(r, REFUSAL_SENDER_OFFLINE, 13,
                                      a.probed_at, a.was_checked_at),
                     0);
    ck_assert_int_eq(decide(FF, 13, NOW + 30 * SEC + 1, &a), REFUSAL_PROBE);
    /* the wrong kind, sender or mark: nothing */
    ck_assert_int_eq(refusals_unprobe(r, REFUSAL_SENDER_NOT_FOUND, 13,
                                      a.probed_at, a.was_checked_at),
                     -1);
    ck_assert_int_eq(refusals_unprobe(r, REFUSAL_SENDER_OFFLINE, 14,
                                      a.probed_at, a.was_checked_at),
                     -1);
    ck_assert_int_eq(refusals_unprobe(r, REFUSAL_SENDER_OFFLINE, 13,
                                      a.probed_at - 1, a.was_checked_at),
                     -1);
    /* learned again since: the new lesson stands */
    learn(FF, 13, 503, OFFLINE_BODY, NOW + 31 * SEC);
    ck_assert_int_eq(refusals_unprobe(r, REFUSAL_SENDER_OFFLINE, 13,
                                      a.probed_at, a.was_checked_at),
                     -1);
    assert_answers_str(FF, 13, NOW + 32 * SEC, REFUSAL_SENDER_OFFLINE, 503,
                       OFFLINE_BODY);
    /* the balance, likewise */
    learn(TPL, 12, 402, BAL_BODY, NOW);
    ck_assert_int_eq(decide(TPL, 12, NOW + 10 * SEC, &a), REFUSAL_PROBE);
    ck_assert_int_eq(a.kind, REFUSAL_BALANCE);
    ck_assert_int_eq(refusals_unprobe(r, REFUSAL_BALANCE, 12, a.probed_at,
                                      a.was_checked_at),
                     0);
    ck_assert_int_eq(decide(FF, 14, NOW + 10 * SEC, &a), REFUSAL_PROBE);
}
END_TEST

START_TEST(test_trust_expiry_probes_once)
{
    struct refusal_answer a;
    learn(FF, 13, 503, OFFLINE_BODY, NOW);
    assert_answers_str(FF, 13, NOW + 29999, REFUSAL_SENDER_OFFLINE, 503,
                       OFFLINE_BODY);
    /* trust ran out: one probe, and the entry is trusted again from it */
    ck_assert_int_eq(decide(FF, 13, NOW + 30 * SEC, &a), REFUSAL_PROBE);
    assert_answers_str(FF, 13, NOW + 30 * SEC, REFUSAL_SENDER_OFFLINE, 503,
                       OFFLINE_BODY);
    assert_answers_str(TPL, 13, NOW + 59999, REFUSAL_SENDER_OFFLINE, 422,
                       OFFLINE_BODY);
    ck_assert_int_eq(decide(TPL, 13, NOW + 60 * SEC, &a), REFUSAL_PROBE);
    /* the view says when it was learned and when it was probed */
    struct seen s = list_at(NOW + 60 * SEC);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(s.v[0].learned_at, NOW);
    ck_assert_int_eq(s.v[0].checked_at, NOW + 60 * SEC);
    ck_assert_int_eq(s.v[0].trusted_until, NOW + 90 * SEC);
    ck_assert(s.v[0].trusted);
    /* the probe's answer (503 again) re-learns it at its time */
    learn(TPL, 13, 422, OFFLINE_BODY, NOW + 61 * SEC);
    s = list_at(NOW + 61 * SEC);
    ck_assert_int_eq(s.v[0].learned_at, NOW + 61 * SEC);
    struct refusal_stats st;
    refusals_get_stats(r, &st);
    ck_assert_uint_eq(st.probes[REFUSAL_SENDER_OFFLINE], 2);
    ck_assert_uint_eq(st.answers[REFUSAL_SENDER_OFFLINE], 3);
    ck_assert_uint_eq(st.learned[REFUSAL_SENDER_OFFLINE], 2);
}
END_TEST

START_TEST(test_balance_probe_once)
{
    learn(TPL, 12, 402, BAL_BODY, NOW);
    ck_assert_int_eq(decide(FF, 14, NOW + 10 * SEC, NULL), REFUSAL_PROBE);
    /* the sends after the probe, from any sender, are answered */
    assert_answers_str(TPL, 12, NOW + 10 * SEC, REFUSAL_BALANCE, 402, BAL_BODY);
    assert_answers_str(FF, 13, NOW + 19999, REFUSAL_BALANCE, 402, BAL_BODY);
    /* the probe went through: cleared */
    ck_assert_int_eq(learn(FF, 14, 200, OK_BODY, NOW + 11 * SEC),
                     REFUSAL_TEACHES_CLEAR);
    assert_forwards(FF, 13, NOW + 11 * SEC);
}
END_TEST

/* ---- clearing ---- */

START_TEST(test_2xx_clears_sender_and_balance)
{
    learn(FF, 13, 503, OFFLINE_BODY, NOW);
    learn(FF, 99, 404, NF_BODY, NOW);
    learn(FF, 13, 402, BAL_BODY, NOW);
    /* a 2xx from another sender clears the balance, not 13's entry */
    ck_assert_int_eq(learn(TPL, 12, 201, OK_BODY, NOW + 1),
                     REFUSAL_TEACHES_CLEAR);
    assert_answers_str(FF, 13, NOW + 2, REFUSAL_SENDER_OFFLINE, 503,
                       OFFLINE_BODY);
    assert_forwards(FF, 12, NOW + 2);
    /* 13's own 2xx (either route) clears 13's entry */
    ck_assert_int_eq(learn(FF, 13, 200, OK_BODY, NOW + 3),
                     REFUSAL_TEACHES_CLEAR);
    assert_forwards(FF, 13, NOW + 4);
    ck_assert_int_eq(learn(TPL, 99, 200, "", NOW + 5), REFUSAL_TEACHES_CLEAR);
    assert_forwards(TPL, 99, NOW + 6);
    struct refusal_stats st;
    refusals_get_stats(r, &st);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.cleared, 3);
}
END_TEST

START_TEST(test_unparsable_refusal_clears_nothing)
{
    learn(FF, 13, 503, OFFLINE_BODY, NOW);
    ck_assert_int_eq(learn(FF, 13, 503, "<html>oops</html>", NOW + 1),
                     REFUSAL_TEACHES_NOTHING);
    ck_assert_int_eq(learn(FF, 13, 500, "{}", NOW + 1),
                     REFUSAL_TEACHES_NOTHING);
    assert_answers_str(FF, 13, NOW + 2, REFUSAL_SENDER_OFFLINE, 503,
                       OFFLINE_BODY);
    struct seen s = list_at(NOW + 2);
    ck_assert_int_eq(s.v[0].learned_at, NOW);
}
END_TEST

#define LIST_ALL                                                               \
    "{\"success\":true,\"data\":[{\"id\":12,\"status\":\"online\"},"           \
    "{\"id\":13,\"status\":\"offline\"},{\"id\":14,\"status\":\"online\"},"    \
    "{\"id\":15,\"status\":\"pending\"}]}"

START_TEST(test_senders_list_all)
{
    learn(FF, 12, 503, OFFLINE_BODY, NOW);
    learn(FF, 14, 404, NF_BODY, NOW);
    learn(FF, 15, 404, NF_BODY, NOW);
    learn(FF, 77, 404, NF_BODY, NOW);
    learn(FF, 12, 402, BAL_BODY, NOW);
    ck_assert_int_eq(senders(1, LIST_ALL, NOW + SEC), 4);
    /* not online, listed: offline with the provider's body */
    assert_answers_str(FF, 13, NOW + SEC, REFUSAL_SENDER_OFFLINE, 503,
                       REFUSAL_OFFLINE_BODY);
    assert_answers_str(TPL, 15, NOW + SEC, REFUSAL_SENDER_OFFLINE, 422,
                       REFUSAL_OFFLINE_BODY);
    /* not listed: untouched; and a list says nothing of the balance */
    assert_answers_str(FF, 77, NOW + SEC, REFUSAL_SENDER_NOT_FOUND, 404,
                       NF_BODY);
    struct refusal_stats st;
    refusals_get_stats(r, &st);
    ck_assert_uint_eq(st.entries, 4); /* balance, 13, 15, 77 */
    ck_assert_uint_eq(st.cleared, 2);
    ck_assert_uint_eq(st.learned[REFUSAL_SENDER_OFFLINE], 1 + 2);
    struct seen s = list_at(NOW + SEC);
    ck_assert_int_eq(s.v[0].kind, REFUSAL_BALANCE);
    ck_assert_int_eq(s.v[1].sender, 13);
    ck_assert_int_eq(s.v[1].learned_at, NOW + SEC);
    /* 12 and 14, online: cleared */
    ck_assert_int_eq(s.v[2].sender, 15);
    ck_assert_int_eq(s.v[2].kind, REFUSAL_SENDER_OFFLINE);
    ck_assert_int_eq(s.v[3].sender, 77);
    refusals_forget_balance(r);
    assert_forwards(FF, 12, NOW + SEC);
    assert_forwards(FF, 14, NOW + SEC);
}
END_TEST

START_TEST(test_senders_list_keeps_send_body)
{
    const char *own = "{\"success\":false,\"error\":\"Sender is not online. "
                      "Current status: Suspended\",\"error_code\":"
                      "\"SENDER_OFFLINE\"}";
    learn(FF, 13, 503, own, NOW);
    ck_assert_int_eq(senders(1, LIST_ALL, NOW + 20 * SEC), 4);
    /* re-confirmed: trusted again from the list, the send's body kept */
    assert_answers_str(FF, 13, NOW + 45 * SEC, REFUSAL_SENDER_OFFLINE, 503,
                       own);
    struct seen s = list_at(NOW + 45 * SEC);
    ck_assert_int_eq(s.v[0].learned_at, NOW + 20 * SEC);
    /* a later send's body replaces the list's */
    learn(FF, 15, 503, own, NOW + 46 * SEC);
    assert_answers_str(FF, 15, NOW + 46 * SEC, REFUSAL_SENDER_OFFLINE, 503,
                       own);
}
END_TEST

#define LIST_ONLINE                                                            \
    "{\"success\":true,\"data\":[{\"id\":12,\"status\":\"online\"},"           \
    "{\"id\":14,\"status\":\"online\"}]}"

START_TEST(test_senders_list_online_only)
{
    learn(FF, 12, 503, OFFLINE_BODY, NOW);
    learn(FF, 13, 503, OFFLINE_BODY, NOW);
    learn(FF, 14, 404, NF_BODY, NOW);
    learn(FF, 99, 404, NF_BODY, NOW);
    ck_assert_int_eq(senders(0, LIST_ONLINE, NOW + 1), 2);
    assert_forwards(FF, 12, NOW + 2);
    assert_forwards(FF, 14, NOW + 2);
    /* not listed by an online-only list: nothing learned of them */
    assert_answers_str(FF, 13, NOW + 2, REFUSAL_SENDER_OFFLINE, 503,
                       OFFLINE_BODY);
    assert_answers_str(FF, 99, NOW + 2, REFUSAL_SENDER_NOT_FOUND, 404, NF_BODY);
    /* the same list read as ?status=all learns nothing more of 13 either */
    ck_assert_int_eq(senders(1, LIST_ONLINE, NOW + 3), 2);
    struct seen s = list_at(NOW + 3);
    ck_assert_int_eq(s.n, 2);
    ck_assert_int_eq(s.v[0].sender, 13);
    ck_assert_int_eq(s.v[0].learned_at, NOW);
}
END_TEST

START_TEST(test_senders_list_online_only_odd_entry)
{
    /* an online-only list that shows a sender not online: it exists (not
     * found is cleared), but only ?status=all teaches offline */
    learn(FF, 13, 404, NF_BODY, NOW);
    learn(FF, 15, 503, OFFLINE_BODY, NOW);
    ck_assert_int_eq(senders(0,
                             "{\"data\":[{\"id\":13,\"status\":\"offline\"},"
                             "{\"id\":15,\"status\":\"offline\"}]}",
                             NOW + 1),
                     2);
    assert_forwards(FF, 13, NOW + 2);
    struct seen s = list_at(NOW + 2);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(s.v[0].sender, 15);
    ck_assert_int_eq(s.v[0].learned_at, NOW);
}
END_TEST

START_TEST(test_senders_list_malformed)
{
    learn(FF, 12, 503, OFFLINE_BODY, NOW);
    learn(FF, 13, 404, NF_BODY, NOW);
    static const char *bad[] = {
        "",
        "nope",
        "[]",
        "{}",
        "{\"data\":{}}",
        "{\"data\":\"x\"}",
        "{\"data\":null}",
        "{\"data\":[{\"id\":12,\"status\":\"online\"}]",
        "{\"data\":[{\"id\":12,\"status\":\"online\"},]}",
        "{\"data\":[{\"id\":12,\"status\":\"online\"}]} trailing",
        /* a key twice, or bytes not UTF-8: not read at all */
        "{\"data\":[],\"data\":[{\"id\":12,\"status\":\"online\"}]}",
        "{\"data\":[{\"id\":12,\"id\":13,\"status\":\"online\"}]}",
        "{\"data\":[{\"id\":12,\"status\":\"online\",\"n\":\"\xff\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(senders(1, bad[i], NOW + 1) == -1, "case %zu", i);
    /* well-formed lists whose elements are not: skipped one by one */
    ck_assert_int_eq(
        senders(1,
                "{\"data\":[{\"id\":\"12\",\"status\":\"online\"},"
                "{\"id\":12.0,\"status\":\"online\"},"
                "{\"id\":0,\"status\":\"online\"},"
                "{\"id\":-12,\"status\":\"online\"},"
                "{\"id\":12,\"status\":true},"
                "{\"id\":12},{\"status\":\"online\"},12,null,"
                "{\"id\":99999999999999999999,\"status\":\"online\"},"
                "{\"id\":12,\"status\":\"Online\"}]}",
                NOW + 1),
        1);
    /* "Online" is not online: 12 stays offline, re-learned by the list */
    assert_answers_str(FF, 12, NOW + 2, REFUSAL_SENDER_OFFLINE, 503,
                       OFFLINE_BODY);
    ck_assert_int_eq(senders(1, "{\"data\":[]}", NOW + 1), 0);
    assert_answers_str(FF, 13, NOW + 2, REFUSAL_SENDER_NOT_FOUND, 404, NF_BODY);
    ck_assert_int_eq(refusals_learn_senders(r, 1, NULL, 0, NOW, &T), -1);
}
END_TEST

struct got {
    int n;
    int64_t id[8];
    int online[8];
};

static void
got_cb(void *arg, int64_t sender, int online)
{
    struct got *g = arg;
    ck_assert_int_lt(g->n, 8);
    g->id[g->n] = sender;
    g->online[g->n++] = online;
}

START_TEST(test_senders_list_extract_order)
{
    struct got g = {0};
    ck_assert_int_eq(
        refusal_senders_extract(LIST_ALL, strlen(LIST_ALL), got_cb, &g), 4);
    ck_assert_int_eq(g.n, 4);
    int64_t id[] = {12, 13, 14, 15};
    int online[] = {1, 0, 1, 0};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(g.id[i], id[i]);
        ck_assert_int_eq(g.online[i], online[i]);
    }
    ck_assert_int_eq(
        refusal_senders_extract(LIST_ALL, strlen(LIST_ALL), NULL, NULL), 4);
    g.n = 0;
    ck_assert_int_eq(refusal_senders_extract("{}", 2, got_cb, &g), -1);
    ck_assert_int_eq(g.n, 0);
}
END_TEST

/* ---- turning kinds off, reloads ---- */

START_TEST(test_trust_zero_turns_each_off)
{
    static const struct {
        enum route_id route;
        int status;
        const char *body;
        enum refusal_kind kind;
    } c[] = {
        {FF, 503, OFFLINE_BODY, REFUSAL_SENDER_OFFLINE},
        {FF, 404, NF_BODY, REFUSAL_SENDER_NOT_FOUND},
        {FF, 402, BAL_BODY, REFUSAL_BALANCE},
    };
    for (size_t i = 0; i < 3; i++) {
        teardown(); /* a fresh store each; the fixture frees the last */
        setup();
        /* off: nothing learned */
        T.ms[c[i].kind] = 0;
        ck_assert_int_eq(learn(c[i].route, 13, c[i].status, c[i].body, NOW),
                         REFUSAL_TEACHES_NOTHING);
        assert_forwards(FF, 13, NOW);
        struct refusal_stats st;
        refusals_get_stats(r, &st);
        ck_assert_uint_eq(st.entries, 0);
        /* on, learned; then off: held but never trusted, never probed */
        T.ms[c[i].kind] = 30 * SEC;
        learn(c[i].route, 13, c[i].status, c[i].body, NOW);
        T.ms[c[i].kind] = 0;
        assert_forwards(FF, 13, NOW);
        assert_forwards(FF, 13, NOW + 60 * SEC);
        struct seen s = list_at(NOW);
        ck_assert_int_eq(s.n, 1);
        ck_assert(!s.v[0].trusted);
        ck_assert_int_eq(s.v[0].trusted_until, NOW);
        /* the other kinds still work */
        learn(FF, 20, c[i].kind == REFUSAL_SENDER_OFFLINE ? 404 : 503,
              c[i].kind == REFUSAL_SENDER_OFFLINE ? NF_BODY : OFFLINE_BODY,
              NOW);
        struct refusal_answer a;
        ck_assert_int_eq(decide(FF, 20, NOW, &a), REFUSAL_ANSWER);
        /* still cleared by a 2xx */
        learn(FF, 13, 200, OK_BODY, NOW + 1);
        refusals_get_stats(r, &st);
        ck_assert_uint_eq(st.entries, 1);
        ck_assert_uint_eq(st.probes[c[i].kind], 0);
    }
}
END_TEST

START_TEST(test_trust_zero_offline_list_learns_nothing)
{
    T.ms[REFUSAL_SENDER_OFFLINE] = 0;
    learn(FF, 15, 404, NF_BODY, NOW);
    ck_assert_int_eq(senders(1, LIST_ALL, NOW + 1), 4);
    struct seen s = list_at(NOW + 1);
    ck_assert_int_eq(s.n, 0); /* 15's not found cleared; no offline learned */
}
END_TEST

START_TEST(test_reload_applies_to_held)
{
    learn(FF, 13, 503, OFFLINE_BODY, NOW);
    learn(FF, 12, 402, BAL_BODY, NOW);
    /* longer: still trusted past the old 30 s / 10 s */
    T.ms[REFUSAL_SENDER_OFFLINE] = 60 * SEC;
    T.ms[REFUSAL_BALANCE] = 60 * SEC;
    assert_answers_str(FF, 13, NOW + 45 * SEC, REFUSAL_SENDER_OFFLINE, 503,
                       OFFLINE_BODY);
    assert_answers_str(FF, 12, NOW + 45 * SEC, REFUSAL_BALANCE, 402, BAL_BODY);
    struct seen s = list_at(NOW + 45 * SEC);
    ck_assert_int_eq(s.v[0].trusted_until, NOW + 60 * SEC);
    /* shorter: ran out already */
    T.ms[REFUSAL_SENDER_OFFLINE] = 5 * SEC;
    T.ms[REFUSAL_BALANCE] = 5 * SEC;
    s = list_at(NOW + 6 * SEC);
    ck_assert(!s.v[0].trusted && !s.v[1].trusted);
    ck_assert_int_eq(decide(FF, 13, NOW + 6 * SEC, NULL), REFUSAL_PROBE);
    ck_assert_int_eq(decide(FF, 12, NOW + 6 * SEC, NULL), REFUSAL_PROBE);
}
END_TEST

/* ---- bodies ---- */

START_TEST(test_body_bound)
{
    char *b1024 = body_of_len("SENDER_OFFLINE", REFUSAL_BODY_MAX);
    char *b1025 = body_of_len("SENDER_OFFLINE", REFUSAL_BODY_MAX + 1);
    ck_assert_int_eq(learn(FF, 13, 503, b1025, NOW), REFUSAL_TEACHES_NOTHING);
    assert_forwards(FF, 13, NOW);
    ck_assert_int_eq(learn(FF, 13, 503, b1024, NOW), REFUSAL_TEACHES_REFUSAL);
    assert_answers(FF, 13, NOW, REFUSAL_SENDER_OFFLINE, 503, b1024,
                   REFUSAL_BODY_MAX);
    /* a 1025-byte refusal does not replace (or clear) what is held */
    ck_assert_int_eq(learn(FF, 13, 503, b1025, NOW + 1),
                     REFUSAL_TEACHES_NOTHING);
    assert_answers(FF, 13, NOW + 2, REFUSAL_SENDER_OFFLINE, 503, b1024,
                   REFUSAL_BODY_MAX);
    ck_assert_int_eq(
        refusals_put(r, REFUSAL_BALANCE, 0, b1025, REFUSAL_BODY_MAX + 1, NOW),
        -1);
    ck_assert_int_eq(
        refusals_put(r, REFUSAL_BALANCE, 0, b1024, REFUSAL_BODY_MAX, NOW), 0);
    free(b1024);
    free(b1025);
}
END_TEST

START_TEST(test_body_byte_identical)
{
    /* raw UTF-8, escapes kept as written, DEL, and whitespace around the
     * object: every byte comes back */
    static const char body[] =
        " \r\n{\"success\" : false,\n\t\"error\":\"Sender \\\"13\\\" \\u00e9"
        "t\\u00e9 \\ud83d\\ude00 \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 "
        "\\n\\t\\\\ \\/ \x7f\","
        " \"error_code\" : \"SENDER_OFFLINE\" , \"extra\":[1,2.5e3,{}]}\r\n ";
    size_t len = sizeof(body) - 1;
    ck_assert_int_eq(refusals_learn(r, FF, 13, 503, body, len, NOW, &T),
                     REFUSAL_TEACHES_REFUSAL);
    assert_answers(TPL, 13, NOW, REFUSAL_SENDER_OFFLINE, 422, body, len);
    /* and the store's copy is its own: the answer's buffer may go */
    char *copy = malloc(len);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, body, len);
    refusals_learn(r, FF, 14, 503, copy, len, NOW, &T);
    memset(copy, 'x', len);
    free(copy);
    assert_answers(FF, 14, NOW, REFUSAL_SENDER_OFFLINE, 503, body, len);
}
END_TEST

START_TEST(test_body_replaced_by_latest)
{
    const char *b2 = "{\"error_code\":\"SENDER_OFFLINE\",\"n\":2}";
    learn(FF, 13, 503, OFFLINE_BODY, NOW);
    learn(TPL, 13, 422, b2, NOW + 1);
    assert_answers_str(FF, 13, NOW + 1, REFUSAL_SENDER_OFFLINE, 503, b2);
    /* shorter body after a longer: no tail of the old one */
    learn(FF, 13, 503, "{\"error_code\":\"SENDER_OFFLINE\"}", NOW + 2);
    assert_answers_str(FF, 13, NOW + 2, REFUSAL_SENDER_OFFLINE, 503,
                       "{\"error_code\":\"SENDER_OFFLINE\"}");
}
END_TEST

/* ---- bounds ---- */

START_TEST(test_new_and_free)
{
    ck_assert_ptr_null(refusals_new(0));
    refusals_free(NULL);
    struct refusals *one = refusals_new(1);
    struct refusal_stats st;
    refusals_get_stats(one, &st);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.max_entries, 1);
    refusals_free(one);
}
END_TEST

START_TEST(test_eviction_trust_ends_first)
{
    refusals_free(r);
    r = refusals_new(3);
    learn(FF, 1, 404, NF_BODY, NOW);                /* ends NOW + 300 s */
    learn(FF, 2, 503, OFFLINE_BODY, NOW + SEC);     /* ends NOW + 31 s */
    learn(FF, 3, 503, OFFLINE_BODY, NOW + 2 * SEC); /* ends NOW + 32 s */
    learn(FF, 9, 402, BAL_BODY, NOW);               /* not a sender entry */
    learn(FF, 4, 503, OFFLINE_BODY, NOW + 3 * SEC);
    struct refusal_stats st;
    refusals_get_stats(r, &st);
    ck_assert_uint_eq(st.entries, 4); /* 3 senders + the balance */
    ck_assert_uint_eq(st.evictions, 1);
    refusals_forget_balance(r); /* it would answer every send below */
    assert_forwards(FF, 2, NOW + 3 * SEC);
    assert_answers_str(FF, 1, NOW + 3 * SEC, REFUSAL_SENDER_NOT_FOUND, 404,
                       NF_BODY);
    /* re-learning a held sender evicts nobody */
    learn(FF, 3, 404, NF_BODY, NOW + 4 * SEC);
    refusals_get_stats(r, &st);
    ck_assert_uint_eq(st.evictions, 1);
    /* a shorter not-found period makes 1 the first to end */
    T.ms[REFUSAL_SENDER_NOT_FOUND] = 10 * SEC;
    learn(FF, 5, 503, OFFLINE_BODY, NOW + 5 * SEC);
    assert_forwards(FF, 1, NOW + 5 * SEC);
    /* a probe re-trusts: 4 (probed at 40 s) outlives 3 (learned at 4 s,
     * 10 s) and 5 (learned at 5 s, 30 s) */
    ck_assert_int_eq(decide(FF, 4, NOW + 40 * SEC, NULL), REFUSAL_PROBE);
    learn(FF, 6, 503, OFFLINE_BODY, NOW + 41 * SEC);
    assert_forwards(FF, 3, NOW + 41 * SEC);
    learn(FF, 7, 503, OFFLINE_BODY, NOW + 41 * SEC);
    assert_forwards(FF, 5, NOW + 41 * SEC);
    struct seen s = list_at(NOW + 41 * SEC);
    ck_assert_int_eq(s.n, 3);
    ck_assert_int_eq(s.v[0].sender, 4);
    ck_assert_int_eq(s.v[1].sender, 6);
    ck_assert_int_eq(s.v[2].sender, 7);
    refusals_get_stats(r, &st);
    ck_assert_uint_eq(st.evictions, 4);
}
END_TEST

START_TEST(test_max_one)
{
    refusals_free(r);
    r = refusals_new(1);
    learn(FF, 1, 503, OFFLINE_BODY, NOW);
    learn(FF, 2, 404, NF_BODY, NOW + 1);
    assert_forwards(FF, 1, NOW + 1);
    assert_answers_str(FF, 2, NOW + 1, REFUSAL_SENDER_NOT_FOUND, 404, NF_BODY);
    ck_assert_int_eq(refusals_put(r, REFUSAL_SENDER_OFFLINE, 3, "{}", 2, NOW),
                     0);
    assert_forwards(FF, 2, NOW + 1);
    assert_answers_str(FF, 3, NOW + 1, REFUSAL_SENDER_OFFLINE, 503, "{}");
}
END_TEST

START_TEST(test_put_old_lesson_orders_by_time)
{
    /* a lesson put with an older time (the state file) ends sooner than
     * one learned later: it is the one evicted */
    refusals_free(r);
    r = refusals_new(2);
    learn(FF, 1, 503, OFFLINE_BODY, NOW + 10 * SEC);
    ck_assert_int_eq(refusals_put(r, REFUSAL_SENDER_OFFLINE, 2, OFFLINE_BODY,
                                  strlen(OFFLINE_BODY), NOW),
                     0);
    learn(FF, 3, 503, OFFLINE_BODY, NOW + 11 * SEC);
    assert_forwards(FF, 2, NOW + 11 * SEC);
    assert_answers_str(FF, 1, NOW + 11 * SEC, REFUSAL_SENDER_OFFLINE, 503,
                       OFFLINE_BODY);
}
END_TEST

START_TEST(test_put_evicts_by_last_trust)
{
    /* refusals_put has no periods: it reads entries as the last call did */
    refusals_free(r);
    r = refusals_new(2);
    learn(FF, 1, 404, NF_BODY, NOW);
    learn(FF, 2, 503, OFFLINE_BODY, NOW);
    T.ms[REFUSAL_SENDER_NOT_FOUND] = 10 * SEC; /* 1 now ends first */
    assert_forwards(FF, 5, NOW);
    ck_assert_int_eq(
        refusals_put(r, REFUSAL_SENDER_OFFLINE, 3, "{}", 2, NOW + SEC), 0);
    assert_forwards(FF, 1, NOW + SEC);
    assert_answers_str(FF, 2, NOW + SEC, REFUSAL_SENDER_OFFLINE, 503,
                       OFFLINE_BODY);
}
END_TEST

START_TEST(test_growth_and_many)
{
    enum { N = 5000 };
    refusals_free(r);
    r = refusals_new(N);
    for (int64_t s = 1; s <= N; s++)
        learn(s % 2 ? FF : TPL, s * 7919, s % 2 ? 503 : 404,
              s % 2 ? OFFLINE_BODY : NF_BODY, NOW + s);
    struct refusal_stats st;
    refusals_get_stats(r, &st);
    ck_assert_uint_eq(st.entries, N);
    ck_assert_uint_eq(st.evictions, 0);
    for (int64_t s = 1; s <= N; s++) {
        struct refusal_answer a;
        ck_assert_int_eq(decide(FF, s * 7919, NOW + N, &a), REFUSAL_ANSWER);
        ck_assert_int_eq(a.kind, s % 2 ? REFUSAL_SENDER_OFFLINE
                                       : REFUSAL_SENDER_NOT_FOUND);
        assert_forwards(FF, s * 7919 + 1, NOW + N);
    }
    /* one more: the offline sender learned first goes */
    learn(FF, 1, 503, OFFLINE_BODY, NOW + N + 1);
    assert_forwards(FF, 7919, NOW + N + 1);
    for (int64_t s = 2; s <= N; s += 2) /* forget half, reuse their slots */
        ck_assert_int_eq(refusals_forget_sender(r, s * 7919), 0);
    for (int64_t s = 1; s <= N / 2; s++)
        learn(FF, -s + 1000000000, 503, OFFLINE_BODY, NOW + N + 2);
    refusals_get_stats(r, &st);
    ck_assert_uint_eq(st.entries, N);
    ck_assert_uint_eq(st.evictions, 1);
}
END_TEST

/* ---- forget, put, list, stats ---- */

START_TEST(test_forget)
{
    learn(FF, 13, 503, OFFLINE_BODY, NOW);
    learn(FF, 13, 402, BAL_BODY, NOW);
    ck_assert_int_eq(refusals_forget_sender(r, 12), -1);
    ck_assert_int_eq(refusals_forget_sender(r, 0), -1);
    ck_assert_int_eq(refusals_forget_sender(r, 13), 0);
    ck_assert_int_eq(refusals_forget_sender(r, 13), -1);
    assert_answers_str(FF, 13, NOW, REFUSAL_BALANCE, 402, BAL_BODY);
    ck_assert_int_eq(refusals_forget_balance(r), 0);
    ck_assert_int_eq(refusals_forget_balance(r), -1);
    assert_forwards(FF, 13, NOW);
    struct refusal_stats st;
    refusals_get_stats(r, &st);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.cleared, 0); /* forgetting is not clearing */
    /* learnable again */
    learn(FF, 13, 503, OFFLINE_BODY, NOW + 1);
    assert_answers_str(FF, 13, NOW + 1, REFUSAL_SENDER_OFFLINE, 503,
                       OFFLINE_BODY);
}
END_TEST

START_TEST(test_put)
{
    ck_assert_int_eq(refusals_put(r, REFUSAL_SENDER_OFFLINE, 13, OFFLINE_BODY,
                                  strlen(OFFLINE_BODY), NOW - 20 * SEC),
                     0);
    ck_assert_int_eq(refusals_put(r, REFUSAL_BALANCE, 0, "", 0, NOW), 0);
    ck_assert_int_eq(refusals_put(r, REFUSAL_SENDER_OFFLINE, 0, "{}", 2, NOW),
                     -1);
    ck_assert_int_eq(refusals_put(r, REFUSAL_KINDS, 13, "{}", 2, NOW), -1);
    ck_assert_int_eq(refusals_put(r, REFUSAL_SENDER_OFFLINE, 13, NULL, 2, NOW),
                     -1);
    assert_answers_str(FF, 13, NOW, REFUSAL_SENDER_OFFLINE, 503, OFFLINE_BODY);
    /* learned 20 s before: 10 s of its 30 left */
    ck_assert_int_eq(decide(FF, 13, NOW + 10 * SEC, NULL), REFUSAL_PROBE);
    assert_answers_str(FF, 12, NOW + 5 * SEC, REFUSAL_BALANCE, 402, "");
}
END_TEST

START_TEST(test_list_order)
{
    learn(FF, 300, 503, OFFLINE_BODY, NOW);
    learn(FF, 5, 404, NF_BODY, NOW + 1);
    learn(FF, 40, 503, OFFLINE_BODY, NOW + 2);
    learn(FF, 2, 503, OFFLINE_BODY, NOW + 3);
    learn(FF, 40, 402, BAL_BODY, NOW + 4);
    struct seen s = list_at(NOW + 5);
    ck_assert_int_eq(s.n, 5);
    ck_assert_int_eq(s.v[0].kind, REFUSAL_BALANCE);
    ck_assert_int_eq(s.v[0].sender, 0);
    ck_assert_int_eq(s.v[0].learned_at, NOW + 4);
    ck_assert_int_eq(s.v[0].trusted_until, NOW + 4 + 10 * SEC);
    ck_assert(s.v[0].trusted);
    int64_t want[] = {2, 5, 40, 300};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(s.v[i + 1].sender, want[i]);
    ck_assert_int_eq(s.v[2].kind, REFUSAL_SENDER_NOT_FOUND);
    ck_assert_int_eq(s.v[2].trusted_until, NOW + 1 + 300 * SEC);
    /* read later: listed, no longer trusted */
    s = list_at(NOW + 100 * SEC);
    ck_assert(!s.v[0].trusted && !s.v[1].trusted && s.v[2].trusted);
    /* the callback stops it */
    s = (struct seen){.stop_after = 2};
    refusals_list(r, NOW, &T, collect, &s);
    ck_assert_int_eq(s.n, 2);
    s = (struct seen){.stop_after = 1};
    refusals_list(r, NOW, &T, collect, &s);
    ck_assert_int_eq(s.n, 1);
    /* empty */
    refusals_forget_balance(r);
    for (int i = 0; i < 4; i++)
        refusals_forget_sender(r, want[i]);
    s = list_at(NOW);
    ck_assert_int_eq(s.n, 0);
}
END_TEST

START_TEST(test_stats)
{
    learn(FF, 13, 503, OFFLINE_BODY, NOW);
    learn(TPL, 99, 404, NF_BODY, NOW);
    learn(FF, 12, 402, BAL_BODY, NOW);
    learn(FF, 12, 402, BAL_BODY, NOW + 1);
    decide(FF, 13, NOW + 1, NULL);
    decide(FF, 99, NOW + 1, NULL);
    decide(TPL, 99, NOW + 1, NULL);
    decide(FF, 12, NOW + 1, NULL);
    decide(FF, 12, NOW + 11 * SEC, NULL); /* balance probe */
    assert_forwards(ROUTE_SESSION_STATUS, 13, NOW);
    struct refusal_stats st;
    refusals_get_stats(r, &st);
    ck_assert_uint_eq(st.entries, 3);
    ck_assert_uint_eq(st.max_entries, 100);
    ck_assert_uint_eq(st.answers[REFUSAL_SENDER_OFFLINE], 1);
    ck_assert_uint_eq(st.answers[REFUSAL_SENDER_NOT_FOUND], 2);
    ck_assert_uint_eq(st.answers[REFUSAL_BALANCE], 1);
    ck_assert_uint_eq(st.probes[REFUSAL_BALANCE], 1);
    ck_assert_uint_eq(st.learned[REFUSAL_SENDER_OFFLINE], 1);
    ck_assert_uint_eq(st.learned[REFUSAL_SENDER_NOT_FOUND], 1);
    ck_assert_uint_eq(st.learned[REFUSAL_BALANCE], 2);
    ck_assert_uint_eq(st.cleared, 0);
    ck_assert_uint_eq(st.evictions, 0);
}
END_TEST

/* ---- a seeded random run against a reference model ----
 * The model keeps a plain array and scans it; eviction picks the least
 * (end of trust, kind, placement stamp), the order refusals.c's lists
 * keep while time does not go back. */

enum { MAXE = 5, SENDERS = 9, STEPS = 20000 };

struct m_entry {
    int live;
    int kind;
    int64_t learned_at, checked_at;
    uint64_t stamp;
    const char *body;
};

static struct model {
    struct m_entry s[SENDERS + 1]; /* by sender id; [0] the balance */
    uint64_t stamp;
} m;

static const struct {
    enum route_id route;
    int status;
    const char *body;
    int kind; /* -1: teaches nothing, -2: clears */
} answers[] = {
    {FF, 503, OFFLINE_BODY, REFUSAL_SENDER_OFFLINE},
    {TPL, 422, "{\"error_code\":\"SENDER_OFFLINE\",\"t\":1}",
     REFUSAL_SENDER_OFFLINE},
    {FF, 404, NF_BODY, REFUSAL_SENDER_NOT_FOUND},
    {TPL, 404, "{\"error_code\":\"SENDER_NOT_FOUND\",\"t\":1}",
     REFUSAL_SENDER_NOT_FOUND},
    {FF, 402, BAL_BODY, REFUSAL_BALANCE},
    {TPL, 402, "{\"error_code\":\"INSUFFICIENT_BALANCE\",\"t\":1}",
     REFUSAL_BALANCE},
    {FF, 200, OK_BODY, -2},
    {TPL, 201, OK_BODY, -2},
    {FF, 503, "<html>", -1},
    {FF, 422, OFFLINE_BODY, -1},
    {FF, 500, "{}", -1},
};

static int64_t
m_end(const struct m_entry *e)
{
    return e->checked_at + (T.ms[e->kind] > 0 ? T.ms[e->kind] : 0);
}

static int
m_count(void)
{
    int n = 0;
    for (int i = 1; i <= SENDERS; i++)
        n += m.s[i].live;
    return n;
}

static void
m_evict(void)
{
    int v = 0;
    for (int i = 1; i <= SENDERS; i++) {
        const struct m_entry *e = &m.s[i], *b = &m.s[v];
        if (!e->live)
            continue;
        if (v == 0 || m_end(e) < m_end(b) ||
            (m_end(e) == m_end(b) &&
             (e->kind < b->kind ||
              (e->kind == b->kind && e->stamp < b->stamp))))
            v = i;
    }
    m.s[v].live = 0;
}

static void
m_put(int sender, int kind, const char *body, int64_t now)
{
    struct m_entry *e = &m.s[kind == REFUSAL_BALANCE ? 0 : sender];
    if (!e->live && kind != REFUSAL_BALANCE && m_count() >= MAXE)
        m_evict();
    const char *b = body != NULL ? body : e->body; /* NULL: keep it */
    *e = (struct m_entry){1, kind, now, now, ++m.stamp, b};
}

static int
m_trusted(const struct m_entry *e, int64_t now)
{
    return e->live && T.ms[e->kind] > 0 && now < m_end(e);
}

static int
m_expired(const struct m_entry *e, int64_t now)
{
    return e->live && T.ms[e->kind] > 0 && now >= m_end(e);
}

static void
m_learn(int sender, int a, int64_t now)
{
    int k = answers[a].kind;
    if (k == -2) {
        m.s[sender].live = 0;
        m.s[0].live = 0;
    } else if (k >= 0 && T.ms[k] > 0) {
        m_put(sender, k, answers[a].body, now);
    }
}

/* The decision the model expects; *e the entry that answers. */
static enum refusal_decision
m_decide(int sender, int64_t now, struct m_entry **e)
{
    struct m_entry *s = &m.s[sender], *b = &m.s[0];
    *e = NULL;
    if (m_trusted(s, now) || (!m_trusted(b, now) && m_expired(s, now)))
        *e = s;
    else if (m_trusted(b, now) || m_expired(b, now))
        *e = b;
    if (*e == NULL)
        return REFUSAL_FORWARD;
    if (m_trusted(*e, now))
        return REFUSAL_ANSWER;
    (*e)->checked_at = now;
    (*e)->stamp = ++m.stamp;
    return REFUSAL_PROBE;
}

static void
m_senders(int all, const int *st, int64_t now)
{
    for (int i = 1; i <= SENDERS; i++) {
        struct m_entry *e = &m.s[i];
        if (st[i] < 0)
            continue; /* not listed */
        if (st[i] == 1) {
            e->live = 0;
        } else if (all && T.ms[REFUSAL_SENDER_OFFLINE] > 0) {
            int keep = e->live && e->kind == REFUSAL_SENDER_OFFLINE;
            m_put(i, REFUSAL_SENDER_OFFLINE, keep ? NULL : REFUSAL_OFFLINE_BODY,
                  now);
        } else if (e->live && e->kind == REFUSAL_SENDER_NOT_FOUND) {
            e->live = 0;
        }
    }
}

/* A senders list of the listed senders (st[i]: -1 absent, 0 offline,
 * 1 online) in ascending id. */
static void
senders_body(const int *st, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "{\"success\":true,\"data\":[");
    const char *sep = "";
    for (int i = 1; i <= SENDERS; i++) {
        if (st[i] < 0)
            continue;
        n += (size_t)snprintf(buf + n, cap - n,
                              "%s{\"id\":%d,\"status\":\"%s\"}", sep, i,
                              st[i] ? "online" : "offline");
        sep = ",";
    }
    snprintf(buf + n, cap - n, "]}");
}

static void
check_against_model(int64_t now, int step)
{
    struct seen s = list_at(now);
    int want = m_count() + m.s[0].live, j = 0;
    ck_assert_msg(s.n == want, "step %d: %d entries, model %d", step, s.n,
                  want);
    for (int i = 0; i <= SENDERS; i++) {
        const struct m_entry *e = &m.s[i];
        if (!e->live)
            continue;
        ck_assert_msg(s.v[j].sender == i && (int)s.v[j].kind == e->kind &&
                          s.v[j].checked_at == e->checked_at &&
                          s.v[j].learned_at == e->learned_at &&
                          s.v[j].trusted == m_trusted(e, now),
                      "step %d: entry %d differs", step, i);
        j++;
    }
}

static void
random_step(unsigned *seed, int64_t now, int step)
{
    int op = rand_r(seed) % 10, sender = 1 + rand_r(seed) % SENDERS;
    if (op < 4) {
        int a = rand_r(seed) % (int)(sizeof(answers) / sizeof(answers[0]));
        learn(answers[a].route, sender, answers[a].status, answers[a].body,
              now);
        m_learn(sender, a, now);
    } else if (op < 8) {
        enum route_id route = rand_r(seed) % 2 ? FF : TPL;
        struct refusal_answer a;
        struct m_entry *e;
        enum refusal_decision want = m_decide(sender, now, &e);
        enum refusal_decision got = decide(route, sender, now, &a);
        ck_assert_msg(got == want, "step %d: decided %d, model %d", step, got,
                      want);
        if (want == REFUSAL_ANSWER) {
            ck_assert_int_eq(a.kind, e->kind);
            ck_assert_int_eq(a.status, refusal_status(a.kind, route));
            ck_assert_uint_eq(a.len, strlen(e->body));
            ck_assert(memcmp(a.body, e->body, a.len) == 0);
        }
    } else if (op == 8) {
        int st[SENDERS + 1], all = rand_r(seed) % 2;
        char buf[1024];
        for (int i = 1; i <= SENDERS; i++)
            st[i] = rand_r(seed) % 3 - 1;
        senders_body(st, buf, sizeof(buf));
        ck_assert_int_ge(senders(all, buf, now), 0);
        m_senders(all, st, now);
    } else if (rand_r(seed) % 4 == 0) {
        refusals_forget_balance(r);
        m.s[0].live = 0;
    } else {
        refusals_forget_sender(r, sender);
        m.s[sender].live = 0;
    }
}

START_TEST(test_random_against_model)
{
    unsigned seed = 20260101u + (unsigned)_i;
    refusals_free(r);
    r = refusals_new(MAXE);
    memset(&m, 0, sizeof(m));
    int64_t now = NOW;
    for (int step = 0; step < STEPS; step++) {
        now += rand_r(&seed) % 4 == 0 ? rand_r(&seed) % (20 * SEC) : 0;
        if (rand_r(&seed) % 200 == 0) /* a reload, sometimes turning off */
            for (int k = 0; k < REFUSAL_KINDS; k++)
                T.ms[k] =
                    rand_r(&seed) % 4 == 0 ? 0 : (1 + rand_r(&seed) % 60) * SEC;
        random_step(&seed, now, step);
        check_against_model(now, step);
    }
    struct refusal_stats st;
    refusals_get_stats(r, &st);
    ck_assert(st.evictions > 0 && st.probes[REFUSAL_SENDER_OFFLINE] > 0 &&
              st.answers[REFUSAL_BALANCE] > 0);
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("refusals");
    TCase *tc;

    tc = tcase_create("teach");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_status_per_route);
    tcase_add_test(tc, test_extract_each_refusal_each_route);
    tcase_add_test(tc, test_extract_teaches_nothing);
    tcase_add_test(tc, test_extract_2xx_clears);
    tcase_add_test(tc, test_offline_from_freeform);
    tcase_add_test(tc, test_offline_from_template);
    tcase_add_test(tc, test_not_found_each_route);
    tcase_add_test(tc, test_balance_each_route_account_wide);
    tcase_add_test(tc, test_sender_refusals_per_sender);
    tcase_add_test(tc, test_sender_entry_before_balance);
    tcase_add_test(tc, test_trust_expiry_probes_once);
    tcase_add_test(tc, test_unprobe_puts_the_trust_back);
    tcase_add_test(tc, test_balance_probe_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("clear");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_2xx_clears_sender_and_balance);
    tcase_add_test(tc, test_unparsable_refusal_clears_nothing);
    tcase_add_test(tc, test_senders_list_all);
    tcase_add_test(tc, test_senders_list_keeps_send_body);
    tcase_add_test(tc, test_senders_list_online_only);
    tcase_add_test(tc, test_senders_list_online_only_odd_entry);
    tcase_add_test(tc, test_senders_list_malformed);
    tcase_add_test(tc, test_senders_list_extract_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("trust");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_trust_zero_turns_each_off);
    tcase_add_test(tc, test_trust_zero_offline_list_learns_nothing);
    tcase_add_test(tc, test_reload_applies_to_held);
    tcase_add_test(tc, test_body_bound);
    tcase_add_test(tc, test_body_byte_identical);
    tcase_add_test(tc, test_body_replaced_by_latest);
    suite_add_tcase(s, tc);

    tc = tcase_create("store");
    tcase_set_timeout(tc, 120); /* valgrind */
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_new_and_free);
    tcase_add_test(tc, test_eviction_trust_ends_first);
    tcase_add_test(tc, test_max_one);
    tcase_add_test(tc, test_put_old_lesson_orders_by_time);
    tcase_add_test(tc, test_put_evicts_by_last_trust);
    tcase_add_test(tc, test_growth_and_many);
    tcase_add_test(tc, test_forget);
    tcase_add_test(tc, test_put);
    tcase_add_test(tc, test_list_order);
    tcase_add_test(tc, test_stats);
    tcase_add_loop_test(tc, test_random_against_model, 0, 4);
    suite_add_tcase(s, tc);

    return s;
}
