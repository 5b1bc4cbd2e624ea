/* decision.h - what the gateway decided for a request: one enum, one name
 * table. The name is what the log line's "decision" field and the
 * wagate_requests_total{decision=...} label show; nothing compares names. */
#ifndef WAGATE_DECISION_H
#define WAGATE_DECISION_H

enum decision {
    DECISION_FORWARDED = 0, /* went upstream (or failed on the way) */
    DECISION_SHORT_CIRCUIT, /* answered from what the gateway learned */
    DECISION_REJECTED,      /* refused by a pre-check step */
    DECISION_REPLAY,        /* a kept answer for an Idempotency-Key */
    DECISION_LOCAL,         /* health, metrics, admin */
    DECISION_CALLER_GONE,   /* the caller hung up before the answer */
    DECISION_CUT_OFF,       /* answered 503 at the drain deadline */
    DECISION_LEARNED_REFUSAL, /* answered from a learned refusal (4a) */
    DECISION_COUNT
};

/* The decision's name (static), "?" when out of range. */
const char *decision_name(enum decision d);

#endif
