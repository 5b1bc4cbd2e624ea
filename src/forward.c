/* forward.c - see forward.h. */
#include "forward.h"

#include <event2/http.h>
#include <string.h>
#include <strings.h>

#include "headers.h"
#include "upstream.h"

void
forward_build_call(struct evhttp_request *req, int post,
                   const char *path_query, const char *reqid,
                   const void *body, size_t body_len,
                   struct upstream_call *call)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    memset(call, 0, sizeof(*call));
    call->post = post;
    call->path_query = path_query;
    call->request_id = reqid;
    call->accept = evhttp_find_header(in, "Accept");
    if (post) {
        call->content_type = evhttp_find_header(in, "Content-Type");
        call->idempotency_key = evhttp_find_header(in, "Idempotency-Key");
        call->body = body;
        call->body_len = body_len;
    }
}

void
forward_copy_headers(const struct upstream_response *resp,
                     struct evkeyvalq *out)
{
    const char *conn = NULL;
    for (size_t i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->headers[i].name, "Connection") == 0)
            conn = resp->headers[i].value;
    for (size_t i = 0; i < resp->nheaders; i++) {
        const struct upstream_header *h = &resp->headers[i];
        if (!headers_drop_from_upstream(h->name, conn))
            evhttp_add_header(out, h->name, h->value);
    }
}
