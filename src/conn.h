/* conn.h - the caller connections of one evhttp server.
 *
 * libevent 2.1's evhttp neither counts its connections nor bounds a
 * request's total arrival time, and it parses heads a gateway must not
 * trust. This module tracks every caller connection from accept to close,
 * through public hooks only:
 * - evhttp_set_bevcb(): each accepted connection gets a bufferevent made
 *   here, so the module sees it first; the evhttp connection behind it is
 *   learned right after (from the bufferevent's callback argument) and its
 *   close callback is the module's;
 * - evbuffer callbacks on that bufferevent's input and output: every byte
 *   a caller sends reaches the head lexer (headers.h) before evhttp parses
 *   it, and the end of each answer is seen.
 * With them it keeps the count (limits.max_connections: the owner is told
 * when the table is full and when it is not), gives each request
 * limits.client_timeout_ms from its first byte to its last (head and body;
 * time the gateway spends answering does not count), and answers a refused
 * or timed-out head itself with the JSON error of SPEC section 2 and
 * Connection: close, taking the connection from evhttp (which then only
 * frees it).
 *
 * Nothing else may set an evhttp close callback on a caller connection:
 * conn_watch() is the way to hear of a caller that hangs up. */
#ifndef WAGATE_CONN_H
#define WAGATE_CONN_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evhttp;
struct evhttp_request;
struct gw_error_row;
struct conn_table;
struct conn;

struct conn_limits {
    size_t max_conns;            /* callers connected at once */
    long long timeout_ms;        /* a request's first byte to its last */
    uint64_t max_content_length; /* larger: 413 at the end of the head */
};

/* A table for http (borrowed; must outlive the table's use, see
 * conn_table_free). full(arg, 1) runs when the count reaches the limit,
 * full(arg, 0) when it falls below again; the owner stops and resumes
 * accepting. */
struct conn_table *conn_table_new(struct event_base *base, struct evhttp *http,
                                  void (*full)(void *arg, int is_full),
                                  void *arg);

/* New limits (at start and after a reload); l is copied. A lower
 * max_conns never closes a connection, it only delays the next accept. */
void conn_table_configure(struct conn_table *t, const struct conn_limits *l);

/* Connections open now (counted from accept to close). */
size_t conn_table_count(const struct conn_table *t);

/* Teardown, in this order: conn_table_closing(t); evhttp_free(http) (which
 * closes every connection); conn_table_free(t). NULL is fine. */
void conn_table_closing(struct conn_table *t);
void conn_table_free(struct conn_table *t);

/* The connection a complete request arrived on, or NULL (never seen: a
 * bug). Borrowed: valid until the connection closes. */
struct conn *conn_of(struct conn_table *t, struct evhttp_request *req);

/* The server's request callback calls this first: the request is
 * complete and now the gateway's to answer (its clock stops). Returns NULL,
 * or a refusal (a row of reply.h's table) the lexer found but could not
 * answer itself: the server answers it, with Connection: close. */
const struct gw_error_row *conn_request_arrived(struct conn *c);

/* gone(arg) runs once if the caller's connection closes before
 * conn_watch(c, NULL, NULL); one watcher at a time. */
void conn_watch(struct conn *c, void (*gone)(void *arg), void *arg);

/* Just after evhttp_send_reply() on c's request: the answer is written in
 * this pass of the loop instead of after the next epoll_wait reports the
 * socket writable (see conn.c). c may be freed by the time it returns. */
void conn_write_now(struct conn *c);

#endif
