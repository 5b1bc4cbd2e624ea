/* pipeline.c - see pipeline.h. */
#include "pipeline.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "auth.h"
#include "config.h"
#include "digest.h"
#include "exchange.h"
#include "forward.h"
#include "gateway.h"
#include "headers.h"
#include "idempotency.h"
#include "metrics.h"
#include "precheck.h"
#include "query.h"
#include "refusals.h"
#include "relay.h"
#include "reply.h"
#include "route.h"
#include "session_cache.h"
#include "shaper.h"
#include "state.h"

/* ---- pre-check steps; each answers and returns -1 on refusal ---- */

static int
check_caller(struct exchange *ex)
{
    const struct config *cfg = ex->gw->cfg;
    if (cfg->nclients == 0)
        return 0; /* auth off: loopback-only, checked at startup */
    const char *h = evhttp_find_header(
        evhttp_request_get_input_headers(ex->req), "Authorization");
    ex->client = auth_find_client(cfg, h);
    if (ex->client != NULL) {
        ex->client_name = xstrdup(ex->client->name);
        return 0;
    }
    ex_error(ex, h ? GW_ERR_TOKEN_UNKNOWN : GW_ERR_TOKEN_MISSING, NULL, NULL);
    return -1;
}

static int
check_body_framing(struct exchange *ex, size_t len)
{
    const struct config *cfg = ex->gw->cfg;
    if (len > (size_t)cfg->max_body_bytes) {
        char sentence[96];
        snprintf(sentence, sizeof(sentence),
                 "The request body is larger than %lld bytes.",
                 cfg->max_body_bytes);
        ex_error(ex, GW_ERR_PAYLOAD_TOO_LARGE, sentence, NULL);
        return -1;
    }
    if (!headers_is_json_type(evhttp_find_header(
            evhttp_request_get_input_headers(ex->req), "Content-Type"))) {
        ex_error(ex, GW_ERR_UNSUPPORTED_MEDIA_TYPE, NULL, NULL);
        return -1;
    }
    return 0;
}

static void
error_with_field(struct exchange *ex, enum gw_error e, const char *field)
{
    struct reply_extra x = {.kind = REPLY_EXTRA_FIELD, .field = field};
    ex_error(ex, e, NULL, &x);
}

static int
check_fields(struct exchange *ex, const char *body, size_t len)
{
    struct precheck_result pr;
    enum precheck_kind kind = ex->route->id == ROUTE_SEND_FREEFORM
                                  ? PRECHECK_FREEFORM
                                  : PRECHECK_TEMPLATE;
    int rc = precheck_body(kind, body, len, ex->gw->cfg->max_message_chars,
                           &pr);
    ex->sender_id = pr.sender_id;
    memcpy(ex->recipient, pr.recipient, sizeof(ex->recipient));
    if (rc == 0) {
        const char *key = evhttp_find_header(
            evhttp_request_get_input_headers(ex->req), "Idempotency-Key");
        if (key == NULL || idem_key_valid(key))
            return 0;
        error_with_field(ex, GW_ERR_IDEMPOTENCY_KEY, "Idempotency-Key");
        return -1;
    }
    if (pr.field) {
        error_with_field(ex, pr.error, pr.field);
        return -1;
    }
    struct reply_extra x = {.kind = REPLY_EXTRA_LENGTHS,
                            .length = pr.length,
                            .max_length = pr.max_length};
    ex_error(ex, pr.error, NULL,
             (reply_row(pr.error)->flags & REPLY_LENGTHS) ? &x : NULL);
    return -1;
}

static int
check_sender(struct exchange *ex)
{
    if (ex->client == NULL || auth_sender_allowed(ex->client, ex->sender_id))
        return 0;
    ex_error(ex, GW_ERR_SENDER_NOT_ALLOWED, NULL, NULL);
    return -1;
}

static void
replay(struct exchange *ex, const struct idem_answer *a)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL || evbuffer_add(b, a->body, a->body_len) != 0)
        alloc_oom("evbuffer");
    if (ex->req != NULL) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(ex->req);
        for (size_t i = 0; i < a->nheaders; i++)
            evhttp_add_header(out, a->headers[i].name, a->headers[i].value);
    }
    ex->upstream_status = a->status;
    ex_reply(ex, a->status, b, "replay", DECISION_REPLAY, NULL);
    evbuffer_free(b);
}

/* ---- the steps that ask the state (state.h) ----
 *
 * Each answers now or later: a step asks, and the answer's callback runs
 * the next step. While an answer is awaited ex is deferred (the drain
 * waits for it, a hang-up is noticed) and needs nothing of the caller's
 * request: the call was captured before the first step. A step must not
 * touch ex after asking, unless the answer is still awaited. */

static void step_refusals(struct exchange *ex);
static void step_session(struct exchange *ex);
static void step_rate_slot(struct exchange *ex);

/* ex awaits op, if it is pending (not NULL: its callback has not run). */
static void
await_state(struct exchange *ex, struct state_op *op)
{
    if (op == NULL)
        return; /* answered: ex may be gone */
    ex->op = op;
    ex_defer(ex, relay_halt);
}

static void
state_unavailable(struct exchange *ex)
{
    if (ex->req != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(ex->req),
                          "Retry-After", "1");
    ex_error(ex, GW_ERR_STATE_UNAVAILABLE, NULL, NULL);
}

static void
on_idem_begun(void *arg, const struct state_idem_verdict *v)
{
    struct exchange *ex = arg;
    ex->op = NULL;
    if (v->status != STATE_OK) {
        state_unavailable(ex); /* a keyed send cannot be made safely */
        return;
    }
    switch (v->verdict) {
    case IDEM_NEW:
        ex->claim = v->claim;
        step_refusals(ex);
        return;
    case IDEM_REPLAY:
        replay(ex, v->answer);
        return;
    case IDEM_IN_PROGRESS:
        ex_error(ex, GW_ERR_IDEMPOTENCY_IN_PROGRESS, NULL, NULL);
        return;
    case IDEM_REUSED:
        ex_error(ex, GW_ERR_IDEMPOTENCY_KEY_REUSED, NULL, NULL);
        return;
    }
}

/* Step 8: a kept answer is replayed before anything below can refuse. */
static void
step_idempotency(struct exchange *ex)
{
    const struct upstream_call *c = &ex->fwd.call;
    unsigned char hash[DIGEST_LEN];
    if (c->idempotency_key == NULL) {
        step_refusals(ex);
        return;
    }
    digest_sha256(c->body, c->body_len, hash);
    await_state(ex, state_idem_begin(ex->gw->state, ex_idem_caller(ex),
                                     c->idempotency_key, hash, on_idem_begun,
                                     ex));
}

static void
on_refusal(void *arg, const struct state_refusal *r)
{
    struct exchange *ex = arg;
    ex->op = NULL;
    /* a store that cannot say is no entry: forward */
    if (r->status == STATE_OK && r->decision == REFUSAL_ANSWER) {
        ex_refusal(ex, r->answer.kind, r->answer.status, r->answer.body,
                   r->answer.len);
        return; /* the key, if any, is freed: nothing was sent */
    }
    if (r->status == STATE_OK && r->decision == REFUSAL_PROBE) {
        ex->probing = 1; /* counted when it leaves (relay.c) */
        ex->probe = r->answer;
    }
    step_session(ex);
}

/* Step 9: a refusal the upstream gave for this sender (or the account)
 * and that is still trusted is answered here, without a rate slot (SPEC
 * section 4a). With every kind off the store is not asked at all. */
static void
step_refusals(struct exchange *ex)
{
    struct refusal_trust t;
    config_refusal_trust(ex->gw->cfg, &t);
    if (t.ms[REFUSAL_SENDER_OFFLINE] <= 0 &&
        t.ms[REFUSAL_SENDER_NOT_FOUND] <= 0 && t.ms[REFUSAL_BALANCE] <= 0) {
        step_session(ex);
        return;
    }
    await_state(ex, state_refusal_decide(ex->gw->state, ex->route->id,
                                         ex->sender_id, &t, on_refusal, ex));
}

static void
on_window(void *arg, const struct state_window *w)
{
    struct exchange *ex = arg;
    ex->op = NULL;
    /* a store that cannot say is no entry: forward */
    if (w->status != STATE_OK || w->decision == CACHE_FORWARD) {
        step_rate_slot(ex);
        return;
    }
    struct reply_extra x = {.kind = REPLY_EXTRA_SESSION,
                            .expired_at = w->expired_at};
    ex_error_as(ex, DECISION_SHORT_CIRCUIT, GW_ERR_SESSION_EXPIRED, NULL, &x);
}

/* Step 10: a window known closed is answered here (send-freeform). */
static void
step_session(struct exchange *ex)
{
    if (ex->route->id != ROUTE_SEND_FREEFORM) {
        step_rate_slot(ex);
        return;
    }
    await_state(ex, state_cache_decide(
                        ex->gw->state, ex->sender_id,
                        precheck_phone_key(ex->recipient),
                        ex->gw->cfg->cache_recheck_after_s * 1000, on_window,
                        ex));
}

static void
rate_limited(void *item, long retry_after_s)
{
    struct exchange *ex = item;
    char secs[24];
    snprintf(secs, sizeof(secs), "%ld", retry_after_s);
    if (ex->req != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(ex->req),
                          "Retry-After", secs);
    ex_error(ex, GW_ERR_RATE_LIMITED, NULL, NULL);
}

/* Step 11: wait for the rate slot (queued, not refused), or 429 when it
 * is further than upstream.max_queue_ms away (now, or after an upstream
 * 429 paused the limiter). Step 12, at the slot, is the relay's. */
static void
step_rate_slot(struct exchange *ex)
{
    long retry;
    ex_defer(ex, relay_halt); /* in flight from here: drain waits for it */
    if (shaper_submit(relay_shaper(ex), ex, relay_forward, rate_limited,
                      &retry) != 0)
        rate_limited(ex, retry);
}

/* ---- the query: only the route's documented keys, rebuilt ---- */

static enum query_spec
route_query_spec(enum route_id id)
{
    switch (id) {
    case ROUTE_SESSION_STATUS:
        return QUERY_SESSION;
    case ROUTE_SENDERS:
        return QUERY_SENDERS;
    case ROUTE_TEMPLATES:
        return QUERY_TEMPLATES;
    default:
        return QUERY_NONE; /* the sends: the upstream reads the body */
    }
}

/* Judges the caller's query (query.h) and writes the one to forward into
 * canon. The sender and recipient a read names are taken from the
 * validated values only, so the allow-list checks, the upstream reads and
 * the cache learns one and the same pair. The templates path needs no
 * rebuilding: route_match() took it byte for byte, undecoded, as
 * prefix + decimal id + suffix, so its id is the one forwarded. */
static int
check_query(struct exchange *ex, const char *path, const char *query,
            char *canon, size_t canonlen)
{
    struct query_result qr;
    enum query_spec spec = route_query_spec(ex->route->id);
    if (query_parse(spec, query, query ? strlen(query) : 0, &qr) != 0) {
        if (qr.field[0] != '\0')
            error_with_field(ex, qr.error, qr.field);
        else
            ex_error(ex, qr.error, NULL, NULL);
        return -1;
    }
    query_canonical(spec, &qr.v, canon, canonlen);
    if (ex->route->id == ROUTE_TEMPLATES)
        ex->sender_id = route_templates_sender(path);
    else if (qr.v.sender_id >= 1)
        ex->sender_id = qr.v.sender_id;
    memcpy(ex->recipient, qr.v.recipient, sizeof(ex->recipient));
    /* only a list of every sender says who is not online */
    ex->senders_all = ex->route->id == ROUTE_SENDERS && qr.v.status != NULL &&
                      strcmp(qr.v.status, "all") == 0;
    return 0;
}

void
pipeline_run(struct exchange *ex, const char *path, const char *query)
{
    char canon[QUERY_CANONICAL_MAX + 1];
    if (check_caller(ex) != 0 ||
        check_query(ex, path, query, canon, sizeof(canon)) != 0)
        return;
    if (ex->route->kind == ROUTE_KIND_READ) {
        if (ex->route->id != ROUTE_SENDERS && check_sender(ex) != 0)
            return;
        /* never the caller's query string: the one rebuilt from what was
         * checked */
        forward_capture(ex->req, 0, path, canon[0] ? canon : NULL, NULL, 0,
                        ex->reqid, &ex->fwd);
        step_rate_slot(ex);
        return;
    }
    struct evbuffer *ib = evhttp_request_get_input_buffer(ex->req);
    size_t len = evbuffer_get_length(ib);
    const char *body = len ? (const char *)evbuffer_pullup(ib, -1) : "";
    if (check_body_framing(ex, len) != 0 || check_fields(ex, body, len) != 0 ||
        check_sender(ex) != 0)
        return;
    /* a send takes no query (check_query refused any): the upstream reads
     * the send from the body, which is what the pre-check judged; from
     * here on the steps read the captured call, not the request */
    forward_capture(ex->req, 1, path, NULL, body, len, ex->reqid, &ex->fwd);
    step_idempotency(ex);
}
