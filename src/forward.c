/* forward.c - see forward.h. */
#include "forward.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "headers.h"
#include "upstream.h"

static char *
dup_header(struct evkeyvalq *in, const char *name)
{
    const char *v = evhttp_find_header(in, name);
    return v ? xstrdup(v) : NULL;
}

void
forward_capture(struct evhttp_request *req, int post, const char *path,
                const char *query, const char *body, size_t body_len,
                struct forward_req *f)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    memset(f, 0, sizeof(*f));
    f->post = post;
    size_t n = strlen(path) + (query ? strlen(query) + 1 : 0) + 1;
    f->path_query = xmalloc(n);
    snprintf(f->path_query, n, "%s%s%s", path, query ? "?" : "",
             query ? query : "");
    f->accept = dup_header(in, "Accept");
    if (post) {
        f->content_type = dup_header(in, "Content-Type");
        f->idempotency_key = dup_header(in, "Idempotency-Key");
        f->body = xmalloc(body_len);
        memcpy(f->body, body, body_len);
        f->body_len = body_len;
    }
}

void
forward_release(struct forward_req *f)
{
    free(f->path_query);
    free(f->content_type);
    free(f->accept);
    free(f->idempotency_key);
    free(f->body);
    memset(f, 0, sizeof(*f));
}

size_t
forward_end_to_end(const struct upstream_response *resp,
                   const struct upstream_header **out, size_t max)
{
    const char *conn = NULL;
    size_t n = 0;
    for (size_t i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->headers[i].name, "Connection") == 0)
            conn = resp->headers[i].value;
    for (size_t i = 0; i < resp->nheaders && n < max; i++)
        if (!headers_drop_from_upstream(resp->headers[i].name, conn))
            out[n++] = &resp->headers[i];
    return n;
}

void
forward_copy_headers(const struct upstream_response *resp,
                     struct evkeyvalq *out)
{
    const struct upstream_header **keep =
        xcalloc(resp->nheaders + 1, sizeof(*keep));
    size_t n = forward_end_to_end(resp, keep, resp->nheaders);
    for (size_t i = 0; i < n; i++)
        evhttp_add_header(out, keep[i]->name, keep[i]->value);
    free(keep);
}
