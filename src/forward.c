/* forward.c - see forward.h. */
#include "forward.h"

#include <event2/http.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "headers.h"

/* Appends n bytes of s and a NUL at *at; returns where they start. */
static char *
put(char **at, const char *s, size_t n)
{
    char *start = *at;
    if (n)
        memcpy(start, s, n);
    start[n] = '\0';
    *at += n + 1;
    return start;
}

static size_t
len_or_0(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

void
forward_capture(struct evhttp_request *req, int post, const char *path,
                const char *query, const char *body, size_t body_len,
                const char *request_id, struct forward_req *f)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *accept = evhttp_find_header(in, "Accept");
    const char *type = post ? evhttp_find_header(in, "Content-Type") : NULL;
    const char *key = post ? evhttp_find_header(in, "Idempotency-Key") : NULL;
    size_t plen = strlen(path), qlen = query ? strlen(query) + 1 : 0;
    size_t n = plen + qlen + 1 + len_or_0(accept) + len_or_0(type) +
               len_or_0(key) + len_or_0(request_id) + (post ? body_len + 1 : 0);
    memset(f, 0, sizeof(*f));
    f->mem = xmalloc(n);
    char *at = f->mem;
    struct upstream_call *c = &f->call;
    c->post = post;
    /* path and query in one string: "/api/...?q" */
    char *pq = at;
    memcpy(at, path, plen);
    at += plen;
    if (query) {
        *at++ = '?';
        memcpy(at, query, qlen - 1);
        at += qlen - 1;
    }
    *at++ = '\0';
    c->path_query = pq;
    c->accept = accept ? put(&at, accept, strlen(accept)) : NULL;
    c->content_type = type ? put(&at, type, strlen(type)) : NULL;
    c->idempotency_key = key ? put(&at, key, strlen(key)) : NULL;
    c->request_id =
        request_id ? put(&at, request_id, strlen(request_id)) : NULL;
    if (post) {
        c->body = put(&at, body, body_len);
        c->body_len = body_len;
    }
}

void
forward_release(struct forward_req *f)
{
    free(f->mem);
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
