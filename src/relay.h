/* relay.h - the way back: a request whose rate slot came is handed to the
 * upstream, and what comes back is relayed to the caller.
 *
 *   rate slot -> upstream_start(the captured call) -> answer: an upstream
 *   429 pauses the limiter; the cache learns (learn.h); an answer below
 *   500 other than 429 is kept for the caller's Idempotency-Key, anything
 *   else frees it; the caller gets the status, the end-to-end headers and
 *   the body, byte for byte (X-Wagate: upstream).
 *
 * An upstream failure is answered 502 UPSTREAM_UNAVAILABLE, or 504
 * UPSTREAM_TIMEOUT, with "outcome": "not_sent" when no byte of the request
 * left, "unknown" otherwise (SPEC sections 2 and 5). An unknown outcome is
 * kept for the request's Idempotency-Key like an upstream answer and
 * replayed; not_sent frees the key.
 *
 * A keyed request is recorded as sent in the state (state.h) before it
 * leaves; the answer goes to the caller once the state has learned from it
 * and kept it (or freed the key), so that what follows the answer finds it
 * recorded. The pipeline (pipeline.h) decides; this module only carries
 * out. It reads struct exchange's fwd (the call, captured by the
 * pipeline) and claim, and owns its xfer, left, handed, ended and answer
 * fields. */
#ifndef WAGATE_RELAY_H
#define WAGATE_RELAY_H

struct exchange;
struct shaper;

/* The shaper_go of a forwarded request (item is its struct exchange):
 * the rate slot came, ex->fwd goes upstream. ex is answered exactly once,
 * when the upstream answers or fails. */
void relay_forward(void *item);

/* The limiter of ex's route: sends share one, reads have theirs. */
struct shaper *relay_shaper(const struct exchange *ex);

/* A drain gives up on ex, which waits for a state answer, its rate slot or
 * its upstream answer (the halt of ex_defer(), exchange.h): a request that
 * has not left yet is taken back (its state answer cancelled, from the
 * shaper queue, or its transfer cancelled) and never will; one that may
 * have left carries on, and its answer still comes through here. Returns 1 if
 * the request may have reached the upstream (an unknown outcome), 0 if it
 * provably did not. Not from inside a libcurl callback. */
int relay_halt(struct exchange *ex);

#endif
