/* exchange.c - see exchange.h. */
#include "exchange.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "config.h"
#include "conn.h"
#include "gateway.h"
#include "http_method.h"
#include "log.h"
#include "metrics.h"
#include "refusals.h"
#include "reply.h"
#include "route.h"
#include "state.h"

struct ex_waitlist {
    TAILQ_HEAD(exchange_list, exchange) list;
    size_t n;
    void (*idle)(void *arg); /* called when the last one completes */
    void *idle_arg;
};

struct ex_waitlist *
ex_waitlist_new(void)
{
    struct ex_waitlist *w = xcalloc(1, sizeof(*w));
    TAILQ_INIT(&w->list);
    return w;
}

void
ex_waitlist_free(struct ex_waitlist *w)
{
    if (w == NULL)
        return;
    w->idle = NULL; /* teardown: nobody to tell */
    while (!TAILQ_EMPTY(&w->list))
        ex_discard(TAILQ_FIRST(&w->list));
    free(w);
}

size_t
ex_waiting(const struct gateway *gw)
{
    return gw->waiting->n;
}

void
ex_when_idle(struct gateway *gw, void (*idle)(void *), void *arg)
{
    gw->waiting->idle = idle;
    gw->waiting->idle_arg = arg;
}

size_t
ex_cut_off_all(struct gateway *gw,
               void (*sent)(struct evhttp_request *, void *), void *arg)
{
    size_t queued = 0;
    struct exchange *ex;
    TAILQ_FOREACH(ex, &gw->waiting->list, link)
    {
        queued += (size_t)ex_cut_off(ex, sent, arg);
    }
    return queued;
}

struct exchange *
ex_new(struct gateway *gw, struct evhttp_request *req)
{
    struct exchange *ex = xcalloc(1, sizeof(*ex));
    ex->gw = gw;
    ex->req = req;
    ex->t0_ms = clock_mono_ms();
    ex->sender_id = -1;
    ex->upstream_status = -1;
    ex->route = route_get(ROUTE_NONE);
    ex->method = http_method_name(evhttp_request_get_command(req));
    reqid_choose(evhttp_find_header(evhttp_request_get_input_headers(req),
                                    "X-Request-Id"),
                 ex->reqid);
    char *addr = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    if (c != NULL)
        evhttp_connection_get_peer(c, &addr, &port);
    snprintf(ex->remote, sizeof(ex->remote), "%s", addr ? addr : "-");
    return ex;
}

/* The caller's namespace for idempotency keys: one for all when auth is
 * off. */
const char *
ex_idem_caller(const struct exchange *ex)
{
    return ex->client_name ? ex->client_name : "";
}

/* A probe that ends unspent gives its trust back (exchange.h). */
static void
ex_unprobe(struct exchange *ex)
{
    if (ex->probing)
        state_refusal_unprobe(ex->gw->state, ex->sender_id, &ex->probe, NULL,
                              NULL);
    ex->probing = 0;
}

/* Frees the key ex holds in flight, if any; nobody waits for it. */
static void
ex_free_key(struct exchange *ex)
{
    if (ex->claim != NULL)
        state_idem_finish(ex->gw->state, ex->claim, NULL, NULL, NULL);
    ex->claim = NULL;
}

static void
ex_free(struct exchange *ex)
{
    struct gateway *gw = ex->gw;
    struct ex_waitlist *w = gw->waiting;
    int last = 0;
    if (ex->conn) /* never let a hang-up call back into a freed exchange */
        conn_watch(ex->conn, NULL, NULL);
    /* nor a state answer (teardown: nothing else ends a waiting one) */
    if (ex->op)
        state_cancel(gw->state, ex->op);
    if (ex->learn_op)
        state_cancel(gw->state, ex->learn_op);
    if (ex->refusal_op)
        state_cancel(gw->state, ex->refusal_op);
    ex_free_key(ex);
    ex_unprobe(ex);
    if (ex->answer.owned)
        evbuffer_free(ex->answer.body);
    if (ex->admin_list != NULL)
        json_object_put(ex->admin_list);
    free(ex->client_name);
    if (ex->deferred) {
        TAILQ_REMOVE(&w->list, ex, link);
        last = --w->n == 0;
    }
    forward_release(&ex->fwd);
    free(ex);
    if (last && w->idle)
        w->idle(w->idle_arg);
}

void
ex_discard(struct exchange *ex)
{
    if (ex->claim != NULL) /* the store goes too */
        state_claim_drop(ex->gw->state, ex->claim);
    ex->claim = NULL;
    ex_free(ex);
}

static void
ex_log(const struct exchange *ex, int status, enum decision decision,
       const char *reason)
{
    struct log_request lr = {
        .request_id = ex->reqid,
        .client = ex->client_name,
        .remote = ex->remote,
        .method = ex->method,
        .route = ex->route->name,
        .decision = decision_name(decision),
        .reason = reason,
        .status = status,
        .upstream_status = ex->upstream_status,
        .latency_ms = clock_mono_ms() - ex->t0_ms,
        .sender_id = ex->sender_id,
        .recipient = ex->recipient[0] ? ex->recipient : NULL,
    };
    log_request(&lr);
}

/* The buffer evhttp sends the answer from: an answer written here is
 * sent without a copy into it (ex_send). NULL once the caller is gone. */
static struct evbuffer *
answer_buffer(struct exchange *ex)
{
    return ex->req ? evhttp_request_get_output_buffer(ex->req) : NULL;
}

/* Sends to the caller if it is still there; forgets the caller after. */
static void
ex_send(struct exchange *ex, int status, struct evbuffer *body,
        const char *xwagate)
{
    if (ex->req == NULL)
        return;
    struct evkeyvalq *out = evhttp_request_get_output_headers(ex->req);
    evhttp_add_header(out, "X-Wagate", xwagate);
    evhttp_add_header(out, "X-Request-Id", ex->reqid);
    struct evbuffer *own = evhttp_request_get_output_buffer(ex->req);
    if (evhttp_request_get_command(ex->req) == EVHTTP_REQ_HEAD) {
        /* evhttp would send a HEAD answer's body: the length only */
        char len[32];
        snprintf(len, sizeof(len), "%zu", body ? evbuffer_get_length(body) : 0);
        evhttp_remove_header(out, "Content-Length");
        evhttp_add_header(out, "Content-Length", len);
        if (body == own)
            evbuffer_drain(own, evbuffer_get_length(own));
        body = NULL;
    }
    if (body == own) /* written in place (answer_buffer) */
        body = NULL;
    struct conn *c = ex->conn;
    if (c)
        conn_watch(c, NULL, NULL);
    evhttp_send_reply(ex->req, status, NULL, body);
    ex->req = NULL;
    ex->conn = NULL;
    if (c)
        conn_write_now(c);
}

void
ex_reply(struct exchange *ex, int status, struct evbuffer *body,
         const char *xwagate, enum decision decision, const char *reason)
{
    if (ex->req == NULL)
        decision = DECISION_CALLER_GONE;
    ex_send(ex, status, body, xwagate);
    ex_log(ex, status, decision, reason);
    metrics_count_request(ex->route->id, decision, status);
    metrics_count_answered();
    ex_free(ex);
}

/* Sets the headers of error e and writes its body where evhttp sends it
 * from; returns that buffer, or NULL once the caller is gone. */
static struct evbuffer *
write_error(struct exchange *ex, enum gw_error e, const char *sentence,
            const struct reply_extra *extra)
{
    struct evbuffer *body = answer_buffer(ex);
    if (body == NULL)
        return NULL;
    struct evkeyvalq *out = evhttp_request_get_output_headers(ex->req);
    evhttp_add_header(out, "Content-Type", "application/json");
    if ((reply_row(e)->flags & REPLY_CLOSE) &&
        evhttp_find_header(out, "Connection") == NULL)
        evhttp_add_header(out, "Connection", "close");
    if (reply_error_to(body, e, sentence, extra) != 0)
        alloc_oom("reply_error_to");
    return body;
}

void
ex_error_as(struct exchange *ex, enum decision decision, enum gw_error e,
            const char *sentence, const struct reply_extra *extra)
{
    char xw[96];
    reply_xwagate(e, xw, sizeof(xw));
    struct evbuffer *body = write_error(ex, e, sentence, extra);
    ex_reply(ex, reply_row(e)->status, body, xw, decision,
             reply_row(e)->reason);
}

void
ex_error(struct exchange *ex, enum gw_error e, const char *sentence,
         const struct reply_extra *extra)
{
    ex_error_as(ex, DECISION_REJECTED, e, sentence, extra);
}

void
ex_refusal(struct exchange *ex, int kind, int status, const char *body,
           size_t len)
{
    char xw[64];
    struct evbuffer *b = answer_buffer(ex);
    if (b != NULL) {
        if (evbuffer_add(b, body, len) != 0)
            alloc_oom("evbuffer");
        evhttp_add_header(evhttp_request_get_output_headers(ex->req),
                          "Content-Type", "application/json");
    }
    snprintf(xw, sizeof(xw), "gateway; reason=%s",
             refusal_reason((enum refusal_kind)kind));
    metrics_count_refusal(kind, 0);
    ex_reply(ex, status, b, xw, DECISION_LEARNED_REFUSAL,
             refusal_reason((enum refusal_kind)kind));
}

void
ex_local(struct exchange *ex, int status, const char *content_type,
         const char *text, size_t len)
{
    struct evbuffer *body = answer_buffer(ex);
    if (body != NULL) {
        if (evbuffer_add(body, text, len) != 0)
            alloc_oom("evbuffer");
        evhttp_add_header(evhttp_request_get_output_headers(ex->req),
                          "Content-Type", content_type);
    }
    ex_reply(ex, status, body, "gateway", DECISION_LOCAL, NULL);
}

static void
on_caller_gone(void *arg)
{
    struct exchange *ex = arg;
    /* evhttp frees the request right after this: forget it, and let the
     * upstream call finish so that its outcome is still logged */
    ex->req = NULL;
    ex->conn = NULL;
}

void
ex_defer(struct exchange *ex, int (*halt)(struct exchange *ex))
{
    struct gateway *gw = ex->gw;
    ex->halt = halt;
    if (ex->deferred)
        return;
    ex->deferred = 1;
    TAILQ_INSERT_TAIL(&gw->waiting->list, ex, link);
    gw->waiting->n++;
    if (ex->conn != NULL)
        conn_watch(ex->conn, on_caller_gone, ex);
}

int
ex_cut_off(struct exchange *ex, void (*sent)(struct evhttp_request *, void *),
           void *arg)
{
    char xw[96];
    int unknown = ex->halt(ex);
    enum gw_error e =
        unknown ? GW_ERR_CUT_OFF_UNKNOWN : GW_ERR_CUT_OFF_NOT_SENT;
    /* unknown: the key stays in flight, so that a state file written when
     * the drain ends keeps it as an unknown outcome (state_file.h) and a
     * real answer that still comes is kept as usual; not_sent: nothing
     * left and nothing will, the key is free for the retry */
    if (!unknown)
        ex_free_key(ex);
    if (ex->req == NULL)
        return 0;
    struct evbuffer *b = write_error(ex, e, NULL, NULL);
    evhttp_request_set_on_complete_cb(ex->req, sent, arg);
    reply_xwagate(e, xw, sizeof(xw));
    ex_send(ex, reply_row(e)->status, b, xw);
    ex_log(ex, reply_row(e)->status, DECISION_CUT_OFF, reply_row(e)->reason);
    metrics_count_request(ex->route->id, DECISION_CUT_OFF,
                          reply_row(e)->status);
    return 1;
}
