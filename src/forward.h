/* forward.h - the transparent relay's two rules, as pure helpers: what of
 * a caller's request goes upstream, and what of the upstream's answer
 * comes back.
 *
 * Upstream gets only Authorization (the gateway's key, set by upstream.c),
 * Content-Type, Accept, X-Request-Id, Idempotency-Key and User-Agent; the
 * body is the caller's bytes unchanged. The caller gets the upstream's
 * status, body and end-to-end headers; hop-by-hop ones are dropped. */
#ifndef WAGATE_FORWARD_H
#define WAGATE_FORWARD_H

#include <stddef.h>

#include "upstream.h"

struct evhttp_request;

/* A caller's request as the upstream call it becomes: built once, while
 * the evhttp request is alive, so that a send waiting for a state answer
 * or its rate slot needs nothing of the request (the caller may hang up
 * meanwhile). Every string of call, and its body, points into mem (one
 * allocation, owned); call.on_sent is left NULL for the relay to set. */
struct forward_req {
    struct upstream_call call;
    char *mem;
};

/* Captures req into f. query (without '?', may be NULL) is what goes
 * upstream: the pipeline passes the query rebuilt from the validated
 * values (query.h), never the caller's. A POST carries body (body_len
 * bytes, copied), Content-Type and Idempotency-Key; a GET neither.
 * request_id is copied too (sent as X-Request-Id). */
void forward_capture(struct evhttp_request *req, int post, const char *path,
                     const char *query, const char *body, size_t body_len,
                     const char *request_id, struct forward_req *f);

/* Frees what forward_capture() took; f is then empty (releasing an empty
 * one is fine). */
void forward_release(struct forward_req *f);

/* The upstream's end-to-end headers, in order: fills out[] with pointers
 * into resp (at most max; resp->nheaders always suffices) and returns how
 * many. Computed once per answer: the same set goes to the caller and into
 * a kept answer. */
size_t forward_end_to_end(const struct upstream_response *resp,
                          const struct upstream_header **out, size_t max);

#endif
