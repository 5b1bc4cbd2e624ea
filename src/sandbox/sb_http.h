/* sb_http: the sandbox's libevent evhttp server (all I/O lives here).
 *
 * It serves the inbox page (GET /, sb_ui.h) and its event stream
 * (/_sandbox/events, sb_events.h), routes /_sandbox/ requests to
 * sb_control and everything else to
 * sb_api, records API requests in the log, applies the faults sb_fault
 * picks (docs/sandbox-contract.md says what each puts on the wire) and
 * delays answers on timers (never blocking the loop). The caller owns `base` and
 * `sb`, which must outlive the server; sb_http_free() frees the server,
 * drops answers still waiting and closes every connection.
 */
#ifndef SB_HTTP_H
#define SB_HTTP_H

#include "sb_sandbox.h"

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#define SB_IDLE_TIMEOUT_S 60
#define SB_MAX_BODY (1024 * 1024)
#define SB_MAX_HEADERS (64 * 1024)
/* A `hang` fault closes its connection (without an answer) after this at
 * the latest, should the client never leave. */
#define SB_HANG_MAX_MS 600000u

struct sb_http;

/* Binds host:port (port 0 = ephemeral); the page's event streams beat
 * every heartbeat_ms (0: sb_events.h's default). Serves sb as its
 * listener of events (sb->on_event) until sb_http_free(). Returns NULL
 * and fills err on failure. */
struct sb_http *sb_http_new(struct event_base *base, struct sb_sandbox *sb,
                            const char *host, int port, unsigned heartbeat_ms,
                            char *err, size_t errlen);
/* The bound address as "127.0.0.1:PORT" or "[::1]:PORT"; borrowed. */
const char *sb_http_address(const struct sb_http *h);
void sb_http_free(struct sb_http *h);

#endif
