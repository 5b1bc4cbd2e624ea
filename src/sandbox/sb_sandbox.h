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

struct sb_sandbox {
    struct sb_state *state;
    struct sb_rate *rate; /* the send routes' limiter (one key) */
    struct sb_reqlog *log;
    char *api_key;
    unsigned latency_ms;
    struct sb_faults *faults; /* armed by POST /_sandbox/faults */
    struct sb_inbox *inbox;   /* the threads of the inbox page */
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

/* Fills r with status and a malloc'd body (NULL body for 204). */
void sb_response_set(struct sb_response *r, int status, char *body);
/* r with the standard error body. */
void sb_response_error(struct sb_response *r, int status, const char *error,
                       const char *code);
void sb_response_clear(struct sb_response *r);

#endif
