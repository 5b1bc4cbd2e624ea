/* pipeline.h - the pre-check of SPEC section 3 and the forwarding of what
 * passes it, for the routes that reach the upstream.
 *
 *   caller auth (401) -> body size (413) -> Content-Type (415) -> body
 *   fields (precheck.h) -> sender allowed (403) -> session cache
 *   (send-freeform: 403 SESSION_EXPIRED) -> upstream -> learn -> relay.
 *
 * An upstream failure is answered 502 UPSTREAM_UNAVAILABLE, or 504
 * UPSTREAM_TIMEOUT, with "outcome": "not_sent" when no byte of the request
 * left, "unknown" otherwise (SPEC sections 2 and 5). An unknown outcome is
 * kept for the request's Idempotency-Key like an upstream answer and
 * replayed; not_sent frees the key.
 *
 * Steps 1 (route, method) belong to the server, which calls in here once
 * the route is known to be forwarded. */
#ifndef WAGATE_PIPELINE_H
#define WAGATE_PIPELINE_H

struct exchange;

/* Runs the pre-check on ex and, if it passes, forwards it; ex is answered
 * exactly once, now or when the upstream answers. path and query (may be
 * NULL) are the request's, undecoded. */
void pipeline_run(struct exchange *ex, const char *path, const char *query);

/* A drain gives up on ex, which waits for its rate slot or its upstream
 * answer: a request that has not left yet is taken back (from the shaper
 * queue, or its transfer cancelled) and never will; one that may have
 * left carries on, and its answer still comes through the pipeline.
 * Returns 1 if the request may have reached the upstream (an unknown
 * outcome), 0 if it provably did not. Not from inside a libcurl
 * callback. */
int pipeline_halt(struct exchange *ex);

#endif
