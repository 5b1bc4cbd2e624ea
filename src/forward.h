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
struct upstream_header;
struct upstream_response;

/* What a caller's request sends upstream, captured while the request is
 * alive so that a send waiting for its rate slot needs nothing of it. */
struct forward_req {
    int post;
    char *path_query;      /* "/api/..." plus "?q" when a query is given */
    char *content_type;    /* NULL when absent */
    char *accept;          /* NULL when absent */
    char *idempotency_key; /* NULL when absent */
    char *body;
    size_t body_len;
};

/* Captures req into f (all copies, owned by f). query (without '?', may be
 * NULL) is what goes upstream: the pipeline passes the query rebuilt from
 * the validated values (query.h), never the caller's. */
void forward_capture(struct evhttp_request *req, int post, const char *path,
                     const char *query, const char *body, size_t body_len,
                     struct forward_req *f);
void forward_release(struct forward_req *f);

/* The upstream's end-to-end headers, in order: fills out[] with pointers
 * into resp (at most max; resp->nheaders always suffices) and returns how
 * many. */
size_t forward_end_to_end(const struct upstream_response *resp,
                          const struct upstream_header **out, size_t max);

/* Adds the upstream's end-to-end headers to out, in order. */
void forward_copy_headers(const struct upstream_response *resp,
                          struct evkeyvalq *out);

#endif
