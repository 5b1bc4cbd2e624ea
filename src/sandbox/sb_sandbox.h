/* sb_sandbox: the whole simulator's state and its transport-free request
 * and response types, shared by the API routes (sb_api.h), the control
 * routes (sb_control.h) and the HTTP glue (sb_http.h).
 *
 * struct sb_sandbox owns every pointer in it; sb_sandbox_free() frees them.
 * struct sb_request only borrows. struct sb_response owns `body`, freed by
 * sb_response_clear().
 */
#ifndef SB_SANDBOX_H
#define SB_SANDBOX_H

#include "sb_fault.h"
#include "sb_inbox.h"
#include "sb_rate.h"
#include "sb_reqlog.h"
#include "sb_state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_LATENCY_MAX_MS 600000u

/* The upstream's exact sentence, shared by the API and control routes. */
#define SB_SENDER_NOT_FOUND_MSG "Sender not found or does not belong to you"

/* Something the inbox page shows changed: event is the SSE event name of
 * docs/inbox-page.md, data its JSON text (both borrowed for the call). */
typedef void (*sb_event_fn)(void *arg, const char *event, const char *data);

struct sb_sandbox {
    struct sb_state *state;
    struct sb_rate *rate; /* the send routes' limiter (one key) */
    struct sb_reqlog *log;
    char *api_key;
    unsigned latency_ms;
    struct sb_faults *faults; /* armed by POST /_sandbox/faults */
    struct sb_inbox *inbox;   /* the threads of the inbox page */
    sb_event_fn on_event;     /* NULL: nobody listens (set by sb_http) */
    void *event_arg;
};

struct sb_request {
    const char *method;        /* "GET", "POST", ... */
    const char *path;          /* raw, without the query */
    const char *query;         /* raw, without '?'; NULL when none */
    const char *authorization; /* first Authorization header or NULL */
    const char *body;          /* may be NULL when body_len is 0 */
    size_t body_len;
};

struct sb_response {
    int status;
    char *body;        /* JSON text, or NULL for no body (204) */
    const char *allow; /* static; the Allow header of a 405, else NULL */
    int retry_after;   /* seconds for a Retry-After header; 0 = none */
};

/* Takes a copy of api_key. */
struct sb_sandbox *sb_sandbox_new(const char *api_key, int64_t balance,
                                  unsigned rate_limit);
void sb_sandbox_free(struct sb_sandbox *sb);

/* Tells the listener (if any) about event; takes over data (a json-c
 * object, freed here). */
struct json_object;
void sb_sandbox_event(struct sb_sandbox *sb, const char *event,
                      struct json_object *data);
/* Event `event` with {"what": what}: "state" for "config", "clock",
 * "faults"; "cleared" for "conversations", "requests". */
void sb_sandbox_changed(struct sb_sandbox *sb, const char *event,
                        const char *what);
/* sb_inbox_add() (same arguments after sb), then the "message" event. */
const struct sb_inbox_msg *
sb_sandbox_record(struct sb_sandbox *sb, int64_t sender_id, const char *phone,
                  int64_t at, enum sb_inbox_kind kind, const char *text,
                  size_t text_len, const char *template_name, int status,
                  const char *error_code);

/* Fills r with status and a malloc'd body (NULL body for 204). */
void sb_response_set(struct sb_response *r, int status, char *body);
/* r with the standard error body. */
void sb_response_error(struct sb_response *r, int status, const char *error,
                       const char *code);
void sb_response_clear(struct sb_response *r);

#endif
