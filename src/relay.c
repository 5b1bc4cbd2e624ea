/* relay.c - see relay.h. */
#include "relay.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "config.h"
#include "exchange.h"
#include "forward.h"
#include "gateway.h"
#include "idempotency.h"
#include "learn.h"
#include "metrics.h"
#include "precheck.h"
#include "reply.h"
#include "route.h"
#include "shaper.h"
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

/* Settles the caller's key, if it holds one in flight: keeps a, or
 * (NULL) frees the key. */
static void
idem_settle(struct exchange *ex, const struct idem_answer *a)
{
    if (!ex->idem_held)
        return;
    if (a != NULL)
        idem_complete(ex->gw->idem, ex_idem_caller(ex), ex->idem_key, a,
                      clock_wall_ms());
    else
        idem_abandon(ex->gw->idem, ex_idem_caller(ex), ex->idem_key);
    ex->idem_held = 0;
}

/* Keeps an upstream answer below 500 for the caller's key, with its
 * end-to-end headers kept[0..n). A 429 or 5xx frees it: the upstream
 * refused, the send was not made, and a retry must be free to go. */
static void
keep_answer(struct exchange *ex, const struct upstream_response *resp,
            const struct upstream_header *const *kept, size_t n,
            const char *body, size_t len)
{
    if (!ex->idem_held)
        return;
    if (resp->status >= 500 || resp->status == 429) {
        idem_settle(ex, NULL);
        return;
    }
    struct idem_header *h = xcalloc(n + 1, sizeof(*h));
    for (size_t i = 0; i < n; i++)
        h[i] = (struct idem_header){kept[i]->name, kept[i]->value};
    struct idem_answer a = {resp->status, h, n, body, len};
    idem_settle(ex, &a);
    free(h);
}

static void
on_upstream_answer(struct exchange *ex, const struct upstream_response *resp)
{
    struct gateway *gw = ex->gw;
    const struct upstream_header *stack[RELAY_HEADERS_ON_STACK];
    const struct upstream_header **kept = stack;
    ex->upstream_status = resp->status;
    size_t len = evbuffer_get_length(resp->body);
    const char *body = len ? (const char *)evbuffer_pullup(resp->body, -1) : "";
    if (resp->status == 429) {
        metrics_count_upstream_429();
        shaper_pause(relay_shaper(ex), retry_after_ms(ex, resp));
    }
    learn_from_answer(gw->cache, ex->route->id, ex->sender_id,
                      precheck_phone_key(ex->recipient), resp->status, body,
                      len, clock_wall_ms());
    /* the end-to-end headers, once: for the caller and for the key */
    if (resp->nheaders > RELAY_HEADERS_ON_STACK)
        kept = xcalloc(resp->nheaders, sizeof(*kept));
    size_t n = forward_end_to_end(resp, kept, resp->nheaders);
    keep_answer(ex, resp, kept, n, body, len);
    if (ex->req != NULL) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(ex->req);
        for (size_t i = 0; i < n; i++)
            evhttp_add_header(out, kept[i]->name, kept[i]->value);
    }
    if (kept != stack)
        free(kept);
    ex_reply(ex, resp->status, resp->body, "upstream", DECISION_FORWARDED,
             NULL);
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
        : ex->idem_held
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
    int timeout = f == UPSTREAM_FAIL_TIMEOUT;
    int status = timeout ? 504 : 502;
    const char *code = timeout ? "UPSTREAM_TIMEOUT" : "UPSTREAM_UNAVAILABLE";
    char sentence[320], xw[96];
    failure_sentence(ex, f, sent, sentence, sizeof(sentence));
    json_object *extra = json_object_new_object();
    if (extra == NULL)
        alloc_oom("json_object_new_object");
    json_object_object_add(
        extra, "outcome",
        json_object_new_string(sent ? "unknown" : "not_sent"));
    struct evbuffer *b = reply_error_body(code, sentence, extra);
    json_object_put(extra);
    if (sent) {
        struct idem_header h = {"Content-Type", "application/json"};
        struct idem_answer a = {status, &h, 1,
                                (const char *)evbuffer_pullup(b, -1),
                                evbuffer_get_length(b)};
        idem_settle(ex, &a);
    } else {
        idem_settle(ex, NULL);
    }
    if (ex->req != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(ex->req),
                          "Content-Type", "application/json");
    reply_reason_header(code, xw, sizeof(xw));
    ex_reply(ex, status, b, xw, DECISION_FORWARDED, upstream_failure_name(f));
    evbuffer_free(b);
}

/* The request is about to leave (from inside libcurl): the rate limit
 * counts it now. */
static void
on_sent(void *arg)
{
    struct exchange *ex = arg;
    ex->left = 1;
    shaper_left(relay_shaper(ex));
}

static void
on_upstream(void *arg, const struct upstream_result *res)
{
    struct exchange *ex = arg;
    ex->xfer = NULL;
    if (!ex->left)
        shaper_dropped(relay_shaper(ex));
    if (res->failure == UPSTREAM_FAIL_NONE) {
        metrics_count_upstream(res->resp->total_ms / 1000.0);
        on_upstream_answer(ex, res->resp);
        return;
    }
    metrics_count_upstream_error(res->failure, res->sent);
    answer_failure(ex, res->failure, res->sent);
}

void
relay_forward(void *item)
{
    struct exchange *ex = item;
    ex->handed = 1;
    ex->fwd.call.on_sent = on_sent;
    ex->xfer = upstream_start(ex->gw->up, &ex->fwd.call, on_upstream, ex);
}

int
relay_halt(struct exchange *ex)
{
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
