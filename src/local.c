/* local.c - see local.h. */
#include "local.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>

#include "alloc.h"
#include "decision.h"
#include "exchange.h"
#include "gateway.h"
#include "redis_link.h"
#include "route.h"
#include "stats.h"

static void
answer_metrics(struct exchange *ex)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL)
        alloc_oom("evbuffer_new");
    stats_render_metrics(ex->gw, b);
    if (ex->req != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(ex->req),
                          "Content-Type", "text/plain; version=0.0.4");
    ex_reply(ex, 200, b, "gateway", DECISION_LOCAL, NULL);
    evbuffer_free(b);
}

/* What answers the state (SPEC section 11): this gateway's memory, the
 * shared store, or this gateway alone while the shared store is
 * unreachable. */
static const char *
state_mode(const struct gateway *gw)
{
    if (gw->link == NULL)
        return "memory";
    return rlink_up(gw->link) ? "shared" : "degraded";
}

void
local_answer(struct exchange *ex)
{
    struct gateway *gw = ex->gw;
    char text[1024];
    int n;
    switch (ex->route->id) {
    case ROUTE_HEALTHZ:
        n = snprintf(text, sizeof(text), "{\"status\":\"ok\"}");
        ex_local(ex, 200, "application/json", text, (size_t)n);
        return;
    case ROUTE_READYZ:
        n = snprintf(text, sizeof(text), "{\"status\":\"%s\",\"state\":\"%s\"}",
                     gw->draining ? "draining" : "ready", state_mode(gw));
        ex_local(ex, gw->draining ? 503 : 200, "application/json", text,
                 (size_t)n);
        return;
    default:
        answer_metrics(ex);
        return;
    }
}
