/* pipeline.h - the pre-check of SPEC section 3 and the forwarding of what
 * passes it, for the routes that reach the upstream.
 *
 *   caller auth (401) -> body size (413) -> Content-Type (415) -> body
 *   fields (precheck.h) -> sender allowed (403) -> session cache
 *   (send-freeform: 403 SESSION_EXPIRED) -> upstream -> learn -> relay.
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

#endif
