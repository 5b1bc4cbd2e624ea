#include "sb_events.h"
#include "alloc.h"
#include "sb_json.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A write that makes no progress for this long ends the stream (the
 * backlog bound usually comes first). */
#define WRITE_STALL_S 60

struct client {
    struct sb_events *hub;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct client *prev, *next;
};

struct sb_events {
    struct event *beat;
    struct evbuffer *scratch;
    struct client *clients;
    size_t n, dropped;
};

static void
unlink_client(struct client *c)
{
    struct sb_events *ev = c->hub;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        ev->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    ev->n--;
    free(c);
}

/* The connection went away (the client left, a write failed or stalled,
 * or evhttp_free): evhttp detached the unfinished request from it in the
 * first cases, which then is ours to free. */
static void
on_close(struct evhttp_connection *evcon, void *arg)
{
    struct client *c = arg;

    (void)evcon;
    if (evhttp_request_get_connection(c->req) == NULL)
        evhttp_request_free(c->req);
    unlink_client(c);
}

/* Ends c's stream ourselves: freeing the connection frees its request. */
static void
drop(struct client *c)
{
    struct evhttp_connection *evcon = c->evcon;

    evhttp_connection_set_closecb(evcon, NULL, NULL);
    unlink_client(c);
    evhttp_connection_free(evcon);
}

static size_t
backlog(const struct client *c)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);

    return evbuffer_get_length(bufferevent_get_output(bev));
}

/* Sends text to c, or drops c when it is too far behind. */
static void
send_text(struct client *c, const char *text, size_t len)
{
    struct evbuffer *b = c->hub->scratch;

    if (backlog(c) + len > SB_EVENTS_BACKLOG) {
        c->hub->dropped++;
        drop(c);
        return;
    }
    if (evbuffer_add(b, text, len) != 0)
        alloc_oom("evbuffer_add");
    evhttp_send_reply_chunk(c->req, b);
    evbuffer_drain(b, evbuffer_get_length(b));
}

static void
broadcast(struct sb_events *ev, const char *text, size_t len)
{
    struct client *c = ev->clients, *next;

    for (; c != NULL; c = next) {
        next = c->next; /* send_text may free c */
        send_text(c, text, len);
    }
}

static void
on_beat(evutil_socket_t fd, short what, void *arg)
{
    static const char hb[] = ": hb\n\n";

    (void)fd;
    (void)what;
    broadcast(arg, hb, sizeof(hb) - 1);
}

struct sb_events *
sb_events_new(struct event_base *base, unsigned heartbeat_ms)
{
    struct sb_events *ev = xcalloc(1, sizeof(*ev));
    unsigned ms = heartbeat_ms ? heartbeat_ms : SB_EVENTS_HEARTBEAT_MS;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    ev->scratch = alloc_check(evbuffer_new(), "evbuffer_new");
    ev->beat =
        alloc_check(event_new(base, -1, EV_PERSIST, on_beat, ev), "event_new");
    if (event_add(ev->beat, &tv) != 0)
        alloc_oom("event_add");
    return ev;
}

void
sb_events_free(struct sb_events *ev)
{
    if (ev == NULL)
        return;
    while (ev->clients != NULL)
        drop(ev->clients);
    event_free(ev->beat);
    evbuffer_free(ev->scratch);
    free(ev);
}

static void
refuse(struct evhttp_request *req)
{
    struct evbuffer *body = alloc_check(evbuffer_new(), "evbuffer_new");
    char *text = sb_json_error("Too many event streams are open; close one.",
                               "TOO_MANY_STREAMS");

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After",
                      "5");
    if (evbuffer_add(body, text, strlen(text)) != 0)
        alloc_oom("evbuffer_add");
    evhttp_send_reply(req, 503, "Service Unavailable", body);
    evbuffer_free(body);
    free(text);
}

/* The stream holds its connection until one side closes it. Over
 * HTTP/1.0 (no chunked framing) a request's "Connection: keep-alive"
 * would make evhttp frame the reply as a persistent one, with
 * Content-Length: 0 (it reads keep-alive from the request's header,
 * evhttp_make_header_response), so that wish goes before the reply
 * starts; over HTTP/1.1 it changes nothing. */
static void
stream_holds_connection(struct evhttp_request *req)
{
    struct evkeyvalq *ih = evhttp_request_get_input_headers(req);
    const char *conn = evhttp_find_header(ih, "Connection");

    if (conn != NULL && strncasecmp(conn, "keep-alive", 10) == 0)
        evhttp_remove_header(ih, "Connection");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Connection",
                      "close");
}

int
sb_events_attach(struct sb_events *ev, struct evhttp_request *req,
                 const char *hello)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    struct timeval stall = {WRITE_STALL_S, 0};
    struct bufferevent *bev;
    struct client *c;
    char *first;
    int n;

    if (ev->n >= SB_EVENTS_CLIENTS) {
        refuse(req);
        return -1;
    }
    c = xcalloc(1, sizeof(*c));
    c->hub = ev;
    c->req = req;
    c->evcon = evhttp_request_get_connection(req);
    c->next = ev->clients;
    if (ev->clients != NULL)
        ev->clients->prev = c;
    ev->clients = c;
    ev->n++;
    evhttp_add_header(oh, "Content-Type", "text/event-stream");
    evhttp_add_header(oh, "Cache-Control", "no-store");
    stream_holds_connection(req);
    evhttp_send_reply_start(req, 200, "OK");
    /* The stream never reads: no read timeout (evhttp's would end it each
     * minute), and at most a little of what a client sends is buffered. */
    bev = evhttp_connection_get_bufferevent(c->evcon);
    bufferevent_set_timeouts(bev, NULL, &stall);
    bufferevent_setwatermark(bev, EV_READ, 0, 4096);
    evhttp_connection_set_closecb(c->evcon, on_close, c);
    n = asprintf(&first, "retry: 1000\nevent: hello\ndata: %s\n\n", hello);
    if (n < 0)
        alloc_oom("asprintf");
    send_text(c, first, (size_t)n);
    free(first);
    return 0;
}

void
sb_events_publish(struct sb_events *ev, const char *name, const char *data)
{
    char *text;
    int n;

    if (ev->clients == NULL)
        return;
    n = asprintf(&text, "event: %s\ndata: %s\n\n", name, data);
    if (n < 0)
        alloc_oom("asprintf");
    broadcast(ev, text, (size_t)n);
    free(text);
}

size_t
sb_events_clients(const struct sb_events *ev)
{
    return ev->n;
}

size_t
sb_events_dropped(const struct sb_events *ev)
{
    return ev->dropped;
}
