/* server.h - the listener, the routing of each caller request, and the
 * drain.
 *
 * evhttp on the gateway's event loop: listens on every configured address
 * (within the descriptor limit), checks each request's framing, routes it
 * by path (route.h) and method, and hands it to its owner: local.h (health,
 * readiness, metrics), admin.h (the admin API) or pipeline.h (the routes
 * that go upstream). While draining, everything but the local routes gets
 * 503 SHUTTING_DOWN. Every request is answered exactly once, by its owner,
 * through exchange.h. */
#ifndef WAGATE_SERVER_H
#define WAGATE_SERVER_H

#include <stddef.h>

struct gateway;
struct server;

/* gw is borrowed and must outlive the server. */
struct server *server_new(struct gateway *gw, char *err, size_t errlen);

/* Binds every listen address and logs "listening on HOST:PORT" for each
 * (the real port when 0 was asked). 0, or -1 with err filled. */
int server_listen(struct server *s, char *err, size_t errlen);

/* Applies the caller-side limits of gw->cfg again (after a reload):
 * client timeout, body size cap, descriptor limit. */
void server_configure(struct server *s);

/* Stops accepting; new requests on open connections get 503
 * SHUTTING_DOWN; requests in flight finish, or are answered 503 at the
 * drain deadline. done(arg) runs from the loop once nothing is left. */
void server_drain(struct server *s, long long deadline_ms,
                  void (*done)(void *), void *arg);

/* Frees the server and any exchange still waiting (unanswered: call
 * after the drain). NULL is fine. */
void server_free(struct server *s);

#endif
