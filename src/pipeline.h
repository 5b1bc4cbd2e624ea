/* pipeline.h - the way out: the pre-check of SPEC section 3, in its
 * order, for the routes that reach the upstream.
 *
 *   caller auth (401) -> query (reads) -> body size (413) -> Content-Type
 *   (415) -> body fields (precheck.h) -> sender allowed (403) ->
 *   idempotency (replay, 409, 422) -> session cache (send-freeform: 403
 *   SESSION_EXPIRED) -> rate slot (429 RATE_LIMITED) -> relay.h
 *
 * Each step that refuses answers the caller itself; what passes every
 * step is handed to the relay (relay.h) at its rate slot, which answers
 * it when the upstream does. Steps 1 (route, method) belong to the
 * server, which calls in here once the route is known to be forwarded. */
#ifndef WAGATE_PIPELINE_H
#define WAGATE_PIPELINE_H

struct exchange;

/* Runs the pre-check on ex and, if it passes, queues it for its rate
 * slot; ex is answered exactly once, now or later. path and query (may be
 * NULL) are the request's, undecoded. */
void pipeline_run(struct exchange *ex, const char *path, const char *query);

#endif
