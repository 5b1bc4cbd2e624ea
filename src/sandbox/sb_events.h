/* sb_events: the live updates of the inbox page, Server-Sent Events on
 * GET /_sandbox/events (docs/inbox-page.md), on the sandbox's own loop.
 *
 * A client's stream begins with `retry: 1000` and a hello event; then
 * every event published reaches every client, and a `: hb` comment goes
 * out each heartbeat so that a client gone is noticed. Memory is bounded
 * per client and in all: a client with more than SB_EVENTS_BACKLOG bytes
 * not yet taken by its socket is disconnected (EventSource reconnects and
 * the page reloads what it shows), and beyond SB_EVENTS_CLIENTS clients a
 * new one is answered 503.
 *
 * The hub owns its clients' requests and connections: sb_events_free()
 * closes them (call it before evhttp_free()).
 */
#ifndef SB_EVENTS_H
#define SB_EVENTS_H

#include <event2/event.h>
#include <event2/http.h>
#include <stddef.h>

#define SB_EVENTS_BACKLOG (256 * 1024)
#define SB_EVENTS_CLIENTS 64
#define SB_EVENTS_HEARTBEAT_MS 15000u

struct sb_events;

/* heartbeat_ms 0 = SB_EVENTS_HEARTBEAT_MS. */
struct sb_events *sb_events_new(struct event_base *base, unsigned heartbeat_ms);
void sb_events_free(struct sb_events *ev);

/* Takes req (a GET of /_sandbox/events) and answers it: the stream with
 * hello's data (JSON text) as its first event, or 503 when full. Returns
 * 0 when the stream began, -1 when req was refused (answered). */
int sb_events_attach(struct sb_events *ev, struct evhttp_request *req,
                     const char *hello);

/* One event to every client: `event: <name>` and `data: <data>` (one line
 * of JSON text). */
void sb_events_publish(struct sb_events *ev, const char *name,
                       const char *data);

size_t sb_events_clients(const struct sb_events *ev);
/* Clients disconnected for falling behind, since the start. */
size_t sb_events_dropped(const struct sb_events *ev);

#endif
