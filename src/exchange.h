/* exchange.h - one caller request, from arrival to its single answer.
 *
 * Every path through the gateway ends in exactly one ex_reply() (directly
 * or through ex_error()/ex_local()), which sends the answer if the caller
 * is still connected, writes the request's log line and frees the
 * exchange. While an exchange waits on the upstream (ex_defer()), a caller
 * that hangs up is noticed through its connection's watcher (conn.h): the
 * answer is then only logged. The answer to a HEAD request is the GET
 * answer's status and headers, with its Content-Length and no body. */
#ifndef WAGATE_EXCHANGE_H
#define WAGATE_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "decision.h"
#include "forward.h"
#include "precheck.h"
#include "reply.h"
#include "refusals.h"
#include "reqid.h"

struct evbuffer;
struct evhttp_request;
struct conn;
struct json_object;
struct reply_extra;
struct gateway;
struct route_info;
struct config_client;
struct upstream_xfer;
struct state_op;
struct state_claim;

struct exchange {
    TAILQ_ENTRY(exchange) link; /* in the gateway's waitlist while deferred */
    struct gateway *gw;
    struct evhttp_request *req; /* NULL once the caller is gone */
    struct conn *conn; /* the caller's connection (set by the server);
                        * borrowed, NULL once answered or gone */
    const struct route_info *route;
    /* the caller, when clients are configured: client is borrowed from the
     * config in force at arrival and valid only during pipeline_run()'s
     * synchronous steps (a reload may free it before a state answer or a
     * rate slot comes); client_name is the exchange's own copy */
    const struct config_client *client;
    char *client_name;
    const char *method;
    char reqid[REQID_MAX + 1];
    char remote[48];
    double t0_ms;
    struct forward_req fwd; /* the upstream call (forward.h); owned */
    long long sender_id;                  /* -1 when unknown */
    char recipient[PRECHECK_PHONE_MAX + 1]; /* valid E.164 or "" */
    int upstream_status;                  /* -1 when none */
    int deferred;
    int (*halt)(struct exchange *ex); /* set by ex_defer() */
    /* the upstream call, the relay's (relay.h): the running transfer
     * (borrowed from the upstream module, NULL when none runs), whether
     * its request left (the shaper was told), and whether the route's
     * shaper handed it over */
    struct upstream_xfer *xfer;
    int left;
    uint64_t left_ticket; /* the shaper's, for shaper_answered() */
    int handed;
    int ended; /* the transfer ended: its answer is being recorded */
    /* state answers awaited (state.h): handles are the backend's, valid
     * until their callback runs, cancelled if the exchange ends first.
     * op: a pre-check step, marking the key sent, or settling the key;
     * learn_op: learning from the answer (alongside settling) */
    struct state_op *op;
    struct state_op *learn_op;
    struct state_op *refusal_op; /* learning the refusals (alongside) */
    int senders_all; /* GET /senders?status=all: a list of every sender */
    struct json_object *admin_list; /* GET /admin/refusals: the entries
                                       read so far (owned) */
    /* this send is the probe of a learned refusal (SPEC section 4a): the
     * decide's answer (kind and the backend's stamps). Spent once the
     * upstream answered it with that refusal again or a 2xx; an exchange
     * that ends with it unspent puts the entry's trust back
     * (state_refusal_unprobe), so that the next send probes */
    int probing;
    struct refusal_answer probe;
    /* the request's number among the departures (gateway.h), with left:
     * when a 2xx to a send that left after it came first, a refusal in
     * its answer is older news than that 2xx, and teaches nothing */
    uint64_t left_seq;
    /* idempotency: the caller's key, held in flight (owned; NULL when the
     * request has none, or once settled); an exchange that ends holding
     * it frees the key */
    struct state_claim *claim;
    /* the relay's answer while the state records it (relay.h): body is
     * borrowed from the upstream during its callback, owned after
     * (owned); error is the gateway error's row (NULL for an upstream
     * answer), reason its log reason */
    struct {
        int status;
        struct evbuffer *body;
        int owned;
        const struct gw_error_row *error;
        const char *reason;
        int pending; /* state answers still awaited */
    } answer;
};

/* A new exchange for req (borrowed; evhttp owns it). */
struct exchange *ex_new(struct gateway *gw, struct evhttp_request *req);

/* The single exit: sends status and body (borrowed; may be NULL) with the
 * given X-Wagate value, logs with decision and reason (may be NULL), frees
 * ex. */
void ex_reply(struct exchange *ex, int status, struct evbuffer *body,
              const char *xwagate, enum decision decision, const char *reason);

/* Gateway error e (a row of reply.h's table) in the SPEC section 2 shape,
 * with its X-Wagate reason and the headers its flags call for. sentence
 * replaces the row's (one that carries a number), NULL keeps it; extra
 * members may be NULL (borrowed). The body is written straight into the
 * request's own output buffer. Decision: rejected. */
void ex_error(struct exchange *ex, enum gw_error e, const char *sentence,
              const struct reply_extra *extra);

/* Same, with the decision named (e.g. short_circuit, for a window known
 * closed). */
void ex_error_as(struct exchange *ex, enum decision decision, enum gw_error e,
                 const char *sentence, const struct reply_extra *extra);

/* A learned refusal (SPEC section 4a): the upstream's status for it on
 * ex's route, and the body it last gave for it, byte for byte (borrowed),
 * as JSON; X-Wagate: gateway; reason=<refusal_reason(kind)>. Decision:
 * learned_refusal. Counted in wagate_refusal_answers_total. */
void ex_refusal(struct exchange *ex, int kind, int status, const char *body,
                size_t len);

/* A gateway success (health, metrics, admin): X-Wagate: gateway. */
void ex_local(struct exchange *ex, int status, const char *content_type,
              const char *text, size_t len);

/* Marks ex as waiting (for a state answer, its rate slot, the upstream):
 * counted in ex_waiting(), watching for the caller to hang up (ex->req
 * becomes NULL then, and the answer is only logged); again is fine.
 * ex->conn must be set. halt(ex) is how the module ex waits on gives it up
 * at the drain deadline (see ex_cut_off()): it returns 1 if the request
 * may have reached the upstream, 0 if it provably did not and never will.
 * From the first wait on, nothing of ex may point into ex->req. */
void ex_defer(struct exchange *ex, int (*halt)(struct exchange *ex));

/* Answers a waiting exchange 503 SHUTTING_DOWN now (drain deadline) and
 * detaches the caller; the exchange stays in gw->waiting until its upstream
 * call ends or the gateway is freed. A request that has not left yet never
 * will (halt(), see ex_defer()): the body says "outcome": "not_sent" and its
 * Idempotency-Key is free again (a state answer it waited for is
 * cancelled, and will not come). One that may have left carries on: the
 * body says "outcome": "unknown" and its key stays in flight (a real
 * answer that still comes is kept; a state file written when the drain
 * ends keeps it as an unknown outcome). sent(req, arg) runs
 * once the answer is written out. Returns 1 if an answer was queued, 0 if
 * the caller was already gone (the key is handled the same way). */
int ex_cut_off(struct exchange *ex,
               void (*sent)(struct evhttp_request *, void *), void *arg);

/* The caller's namespace for idempotency keys ("" when auth is off). */
const char *ex_idem_caller(const struct exchange *ex);

/* Frees an exchange without answering (gateway teardown only). */
void ex_discard(struct exchange *ex);

/* The gateway's list of waiting exchanges (struct gateway's waiting):
 * created by main.c, freed with every exchange still on it (teardown,
 * after the upstream: nobody is answered). */
struct ex_waitlist *ex_waitlist_new(void);
void ex_waitlist_free(struct ex_waitlist *w);

/* How many exchanges wait (deferred, not yet answered). */
size_t ex_waiting(const struct gateway *gw);

/* idle(arg) runs (from the loop) each time the last waiting exchange
 * completes; NULL stops it. */
void ex_when_idle(struct gateway *gw, void (*idle)(void *), void *arg);

/* ex_cut_off() on every waiting exchange; returns how many answers were
 * queued. */
size_t ex_cut_off_all(struct gateway *gw,
                      void (*sent)(struct evhttp_request *, void *),
                      void *arg);

#endif
