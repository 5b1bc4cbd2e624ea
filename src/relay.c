/* relay.c - see relay.h. */
#include "relay.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "config.h"
#include "exchange.h"
#include "forward.h"
#include "gateway.h"
#include "idempotency.h"
#include "metrics.h"
#include "precheck.h"
#include "refusals.h"
#include "reply.h"
#include "route.h"
#include "shaper.h"
#include "state.h"
#include "upstream.h"

#define RELAY_PAUSE_DEFAULT_MS 1000.0
/* end-to-end headers an answer usually has at most: more take the heap */
#define RELAY_HEADERS_ON_STACK 32

struct shaper *
relay_shaper(const struct exchange *ex)
{
    return ex->route->kind == ROUTE_KIND_SEND ? ex->gw->send_shaper
                                              : ex->gw->read_shaper;
}

/* Retry-After of an upstream 429, in ms, at most upstream.max_pause_ms. */
static double
retry_after_ms(const struct exchange *ex, const struct upstream_response *resp)
{
    const char *v = NULL;
    for (size_t i = 0; i < resp->nheaders && v == NULL; i++)
        if (strcasecmp(resp->headers[i].name, "Retry-After") == 0)
            v = resp->headers[i].value;
    return shaper_retry_after_ms(v, time(NULL), RELAY_PAUSE_DEFAULT_MS,
                                 (double)ex->gw->cfg->max_pause_ms);
}

/* ---- recording the answer, then relaying it ----
 *
 * The caller gets the answer once the state recorded it (learned from it,
 * kept it for the key or freed the key): a retry that follows the answer
 * finds it kept, and a send that follows finds what it taught. Until
 * then ex->answer holds it, and ex->answer.pending counts the state
 * answers still awaited. */

static void
answer_recorded(struct exchange *ex)
{
    if (--ex->answer.pending > 0)
        return;
    struct evbuffer *body = ex->answer.body;
    int owned = ex->answer.owned;
    ex->answer.owned = 0; /* ex_reply() frees ex, not the body */
    if (ex->answer.error == NULL) {
        ex_reply(ex, ex->answer.status, body, "upstream", DECISION_FORWARDED,
                 NULL);
    } else {
        char xw[96];
        reply_xwagate(reply_error_id(ex->answer.error), xw, sizeof(xw));
        ex_reply(ex, ex->answer.error->status, body, xw, DECISION_FORWARDED,
                 ex->answer.reason);
    }
    if (owned)
        evbuffer_free(body);
}

static void
on_learned(void *arg, enum state_status status)
{
    struct exchange *ex = arg;
    (void)status; /* a lesson lost is no reason to hold the answer back */
    ex->learn_op = NULL;
    answer_recorded(ex);
}

static void
on_refusal_learned(void *arg, enum state_status status)
{
    struct exchange *ex = arg;
    (void)status; /* as on_learned() */
    ex->refusal_op = NULL;
    answer_recorded(ex);
}

/* ---- a refusal just learned answers the sends queued behind it ---- */

struct refused {
    struct refusal_lesson l;
    int64_t sender; /* the lesson's, for a sender's kind */
};

static int
queued_is_refused(void *item, void *arg)
{
    const struct exchange *q = item;
    const struct refused *r = arg;
    return q->route->kind == ROUTE_KIND_SEND &&
           (r->l.kind == REFUSAL_BALANCE || q->sender_id == r->sender);
}

static void
answer_queued(void *item, void *arg)
{
    struct exchange *q = item;
    const struct refused *r = arg;
    ex_refusal(q, r->l.kind, refusal_status(r->l.kind, q->route->id),
               r->l.body, r->l.len);
}

/* A probe is spent by an answer that says something of its refusal: the
 * refusal again (learned anew) or a 2xx (cleared). Any other answer (a
 * 5xx, a window closed...) leaves the question open, and the exchange's
 * end puts the trust back (exchange.h). */
static void
probe_spent(struct exchange *ex, const struct refusal_lesson *l)
{
    if (ex->probing && (l->op == REFUSAL_TEACHES_CLEAR ||
                        (l->op == REFUSAL_TEACHES_REFUSAL &&
                         l->kind == ex->probe.kind)))
        ex->probing = 0;
}

/* A 2xx says the sender was online and the balance not empty when its
 * send arrived: a refusal that comes later for a send that left before it
 * (a slow answer) is older news, and must not undo it (the newest news
 * wins, as in the session cache). Within this gateway: the departures are
 * numbered, and the newest to leave of the sends answered 2xx is kept. */
static int
refusal_is_older_news(struct exchange *ex, int ok)
{
    struct gateway *gw = ex->gw;
    if (ok) {
        if (ex->left_seq > gw->newest_ok_send)
            gw->newest_ok_send = ex->left_seq;
        return 0;
    }
    return ex->left_seq < gw->newest_ok_send;
}

/* What the store is about to learn, the sends already waiting for a slot
 * are told too: they asked before it was known, and each would take a
 * slot only to get the same answer (SPEC section 4a; a campaign from an
 * offline sender would hold every other caller's sends behind it). The
 * ones left move up into the slots freed (shaper_withdraw). */
static void
withdraw_refused(struct exchange *ex, const struct state_answer *sa,
                 const struct refusal_lesson *l, const struct refusal_trust *t)
{
    struct refused r = {.l = *l, .sender = sa->sender};
    if (r.l.op != REFUSAL_TEACHES_REFUSAL || t->ms[r.l.kind] <= 0 ||
        (r.l.kind != REFUSAL_BALANCE && sa->sender < 1))
        return;
    shaper_withdraw(ex->gw->send_shaper, queued_is_refused, answer_queued, &r);
}

static void
on_settled(void *arg, enum state_status status)
{
    struct exchange *ex = arg;
    (void)status; /* what becomes of the key is the store's (its lease) */
    ex->op = NULL;
    answer_recorded(ex);
}

/* Settles the caller's key: keeps a, or (NULL) frees the key; the answer
 * waits for it. Returns the pending handle, or NULL when it answered
 * already (ex may be gone then). */
static struct state_op *
settle(struct exchange *ex, const struct idem_answer *a)
{
    struct state_claim *c = ex->claim;
    ex->claim = NULL;
    struct state_op *op =
        state_idem_finish(ex->gw->state, c, a, on_settled, ex);
    if (op != NULL)
        ex->op = op;
    return op;
}

/* Keeps an upstream answer below 500 for the caller's key, with its
 * end-to-end headers kept[0..n). A 429 or 5xx frees it: the upstream
 * refused, the send was not made, and a retry must be free to go. */
static struct state_op *
keep_answer(struct exchange *ex, const struct upstream_response *resp,
            const struct upstream_header *const *kept, size_t n,
            const char *body, size_t len)
{
    if (resp->status >= 500 || resp->status == 429)
        return settle(ex, NULL);
    struct idem_header *h = xcalloc(n + 1, sizeof(*h));
    for (size_t i = 0; i < n; i++)
        h[i] = (struct idem_header){kept[i]->name, kept[i]->value};
    struct idem_answer a = {resp->status, h, n, body, len};
    struct state_op *op = settle(ex, &a);
    free(h);
    return op;
}

/* Learns from the answer and settles the key, then relays the answer
 * (its end-to-end headers kept[0..n) are already the caller's). */
static void
record_answer(struct exchange *ex, const struct upstream_response *resp,
              const struct upstream_header *const *kept, size_t n)
{
    size_t len = evbuffer_get_length(resp->body);
    const char *body = len ? (const char *)evbuffer_pullup(resp->body, -1) : "";
    int keyed = ex->claim != NULL;
    struct state_answer sa = {
        .route = ex->route->id,
        .sender = ex->sender_id,
        .phone = precheck_phone_key(ex->recipient),
        .status = resp->status,
        .body = body,
        .len = len,
        .senders_all = ex->senders_all,
    };
    /* the refusals learn from the sends and from a senders list's 200
     * (refusals.h); the other reads teach them nothing: not asked */
    int ok = resp->status >= 200 && resp->status <= 299;
    int teaches = ex->route->kind == ROUTE_KIND_SEND ||
                  (ex->route->id == ROUTE_SENDERS && resp->status == 200);
    if (ex->route->kind == ROUTE_KIND_SEND && ex->left)
        teaches &= !refusal_is_older_news(ex, ok);
    struct refusal_trust t;
    config_refusal_trust(ex->gw->cfg, &t);
    if (ex->route->kind == ROUTE_KIND_SEND) {
        /* what the answer teaches, read once for both */
        struct refusal_lesson l;
        refusal_extract(sa.route, sa.status, sa.body, sa.len, &l);
        probe_spent(ex, &l);
        if (teaches)
            withdraw_refused(ex, &sa, &l, &t);
    }
    ex->answer.status = resp->status;
    ex->answer.body = resp->body; /* borrowed during the upstream's call */
    ex->answer.pending = 1 + teaches + keyed;
    /* after each call, ex is alive only if an answer is still awaited */
    struct state_op *learning =
        state_cache_learn(ex->gw->state, &sa, on_learned, ex);
    if (learning != NULL)
        ex->learn_op = learning;
    struct state_op *refusing =
        teaches ? state_refusal_learn(ex->gw->state, &sa, &t,
                                      on_refusal_learned, ex)
                : NULL;
    if (refusing != NULL)
        ex->refusal_op = refusing;
    struct state_op *keeping =
        keyed ? keep_answer(ex, resp, kept, n, body, len) : NULL;
    if (learning == NULL && refusing == NULL && keeping == NULL)
        return; /* answered */
    /* the body must outlive the upstream's callback: take it */
    struct evbuffer *own = evbuffer_new();
    if (own == NULL || evbuffer_add_buffer(own, resp->body) != 0)
        alloc_oom("evbuffer");
    ex->answer.body = own;
    ex->answer.owned = 1;
}

static void
on_upstream_answer(struct exchange *ex, const struct upstream_response *resp)
{
    const struct upstream_header *stack[RELAY_HEADERS_ON_STACK];
    const struct upstream_header **kept = stack;
    ex->upstream_status = resp->status;
    if (resp->status == 429) {
        metrics_count_upstream_429();
        shaper_pause(relay_shaper(ex), retry_after_ms(ex, resp));
    }
    /* the end-to-end headers, once: for the caller and for the key */
    if (resp->nheaders > RELAY_HEADERS_ON_STACK)
        kept = xcalloc(resp->nheaders, sizeof(*kept));
    size_t n = forward_end_to_end(resp, kept, resp->nheaders);
    if (ex->req != NULL) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(ex->req);
        for (size_t i = 0; i < n; i++)
            evhttp_add_header(out, kept[i]->name, kept[i]->value);
    }
    record_answer(ex, resp, kept, n);
    if (kept != stack)
        free(kept);
}

/* The sentence of a 502/504: what failed, then what the caller may
 * assume. */
static void
failure_sentence(const struct exchange *ex, enum upstream_failure f, int sent,
                 char *out, size_t n)
{
    int len;
    if (f == UPSTREAM_FAIL_TIMEOUT)
        len = snprintf(out, n,
                       "The upstream API did not answer within "
                       "%lld ms.",
                       ex->gw->cfg->timeout_ms);
    else
        len = snprintf(out, n, "The upstream API is unavailable (%s).",
                       upstream_failure_phrase(f));
    const char *then =
        !sent ? " Nothing was sent upstream; the request can be retried."
        : ex->route->kind != ROUTE_KIND_SEND
            ? " The request may have reached the upstream."
        : ex->claim != NULL
            ? " The message may have been sent: do not assume it was "
              "lost. A retry with the same Idempotency-Key gets this answer "
              "again; to risk a duplicate, send with a new key."
            : " The message may have been sent: do not assume it was "
              "lost; sending it again may deliver it twice.";
    if (len > 0 && (size_t)len < n)
        snprintf(out + len, n - (size_t)len, "%s", then);
}

/* 502 or 504 with the outcome (SPEC section 2). An unknown outcome is
 * kept for the key like an upstream answer, so that no retry with it can
 * deliver the message twice; not_sent frees the key. */
static void
answer_failure(struct exchange *ex, enum upstream_failure f, int sent)
{
    enum gw_error e =
        f == UPSTREAM_FAIL_TIMEOUT
            ? (sent ? GW_ERR_UPSTREAM_TIMEOUT_UNKNOWN
                    : GW_ERR_UPSTREAM_TIMEOUT_NOT_SENT)
            : (sent ? GW_ERR_UPSTREAM_UNKNOWN : GW_ERR_UPSTREAM_NOT_SENT);
    const struct gw_error_row *row = reply_row(e);
    char sentence[320];
    failure_sentence(ex, f, sent, sentence, sizeof(sentence));
    struct evbuffer *b = reply_error(e, sentence, NULL);
    if (ex->req != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(ex->req),
                          "Content-Type", "application/json");
    ex->answer.body = b;
    ex->answer.owned = 1;
    ex->answer.error = row;
    ex->answer.reason = upstream_failure_name(f);
    ex->answer.pending = 1;
    if (ex->claim == NULL) {
        answer_recorded(ex);
    } else if (sent) {
        struct idem_header h = {"Content-Type", "application/json"};
        struct idem_answer a = {row->status, &h, 1,
                                (const char *)evbuffer_pullup(b, -1),
                                evbuffer_get_length(b)};
        settle(ex, &a);
    } else {
        settle(ex, NULL);
    }
}

/* The request is about to leave (from inside libcurl): the rate limit
 * counts it now. */
static void
on_sent(void *arg)
{
    struct exchange *ex = arg;
    if (ex->probing && !ex->left) /* a probe counts once it leaves */
        metrics_count_refusal(ex->probe.kind, 1);
    if (!ex->left)
        ex->left_seq = ++ex->gw->departures;
    ex->left = 1;
    ex->left_ticket = shaper_left(relay_shaper(ex));
}

static void
on_upstream(void *arg, const struct upstream_result *res)
{
    struct exchange *ex = arg;
    ex->xfer = NULL;
    ex->ended = 1;
    if (!ex->left)
        shaper_dropped(relay_shaper(ex));
    if (res->failure == UPSTREAM_FAIL_NONE) {
        /* an answer: the request arrived before it (the guard's bound) */
        if (ex->left)
            shaper_answered(relay_shaper(ex), ex->left_ticket);
        metrics_count_upstream(res->resp->total_ms / 1000.0);
        on_upstream_answer(ex, res->resp);
        return;
    }
    metrics_count_upstream_error(res->failure, res->sent);
    answer_failure(ex, res->failure, res->sent);
}

/* ---- the way there ---- */

static void
start(struct exchange *ex)
{
    ex->fwd.call.on_sent = on_sent;
    ex->xfer = upstream_start(ex->gw->up, &ex->fwd.call, on_upstream, ex);
}

/* The key is recorded as sent (state.h): now the request may leave. */
static void
on_marked(void *arg, enum state_status status)
{
    struct exchange *ex = arg;
    ex->op = NULL;
    if (status == STATE_OK) {
        start(ex);
        return;
    }
    /* the no-double-send promise cannot be kept: nothing leaves, and the
     * exchange's end frees the key */
    shaper_dropped(relay_shaper(ex));
    if (ex->req != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(ex->req),
                          "Retry-After", "1");
    ex_error(ex, GW_ERR_STATE_UNAVAILABLE, NULL, NULL);
}

void
relay_forward(void *item)
{
    struct exchange *ex = item;
    ex->handed = 1;
    if (ex->claim == NULL) {
        start(ex);
        return;
    }
    struct state_op *op =
        state_idem_sent(ex->gw->state, ex->claim, on_marked, ex);
    if (op != NULL)
        ex->op = op;
}

int
relay_halt(struct exchange *ex)
{
    if (ex->ended) /* the answer is being recorded: it carries on */
        return ex->left;
    if (ex->op != NULL) { /* a state answer, before anything left */
        state_cancel(ex->gw->state, ex->op);
        ex->op = NULL;
        if (ex->handed)
            shaper_dropped(relay_shaper(ex));
        return 0;
    }
    if (!ex->handed) {
        shaper_cancel(relay_shaper(ex), ex);
        return 0;
    }
    if (ex->xfer == NULL || upstream_xfer_sent(ex->xfer))
        return ex->xfer != NULL;
    upstream_cancel(ex->xfer);
    ex->xfer = NULL;
    shaper_dropped(relay_shaper(ex));
    return 0;
}
