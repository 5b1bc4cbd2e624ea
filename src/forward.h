/* forward.h - the transparent relay: what of a caller's request goes
 * upstream, and what of the upstream's answer comes back.
 *
 * Upstream gets only Authorization (the gateway's key, set by upstream.c),
 * Content-Type, Accept, X-Request-Id, Idempotency-Key and User-Agent; the
 * body is the caller's bytes unchanged. The caller gets the upstream's
 * status, body and end-to-end headers; hop-by-hop ones are dropped. */
#ifndef WAGATE_FORWARD_H
#define WAGATE_FORWARD_H

#include <stddef.h>

struct evhttp_request;
struct evkeyvalq;
struct upstream_call;
struct upstream_response;

/* Fills call for the caller's request. path_query, reqid and body are
 * borrowed and must outlive upstream_start(); so must req. */
void forward_build_call(struct evhttp_request *req, int post,
                        const char *path_query, const char *reqid,
                        const void *body, size_t body_len,
                        struct upstream_call *call);

/* Adds the upstream's end-to-end headers to out, in order. */
void forward_copy_headers(const struct upstream_response *resp,
                          struct evkeyvalq *out);

#endif
