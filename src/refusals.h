/* refusals.h - the refusals the gateway learns from the upstream (SPEC
 * section 4a): a sender offline, a sender not found, the balance empty.
 * A plain data structure: every call takes the current time (ms since the
 * epoch) and the trust periods; nothing here does I/O or reads a clock.
 *
 * What is learned, from a send's answer (either send route):
 *   503 SENDER_OFFLINE (send-freeform), 422 SENDER_OFFLINE (send)
 *                                 -> that sender offline
 *   404 SENDER_NOT_FOUND          -> that sender not found
 *   402 INSUFFICIENT_BALANCE      -> the account's balance empty
 *   2xx                           -> clears that sender's entry and the
 *                                    balance
 * the error_code read from the body (json_strict, as learn.h reads
 * answers), the status as above (the code with another status teaches
 * nothing); a refusal's body over REFUSAL_BODY_MAX bytes, or one that
 * is not one strict JSON object (json_strict_scan: a key twice at any
 * depth, bytes that are not UTF-8, text after it), teaches nothing, and
 * so does a senders list that is not. A 2xx clears whatever its body: the
 * upstream took the send, as SPEC 4a's "any 2xx send" says. From a
 * senders list (GET senders, 200, {"data": [{"id", "status"}, ...]}, at
 * most 1 MiB read):
 * a listed sender whose status is "online" is cleared (both kinds); with
 * ?status=all, a listed sender not "online" is learned offline (with the
 * body of REFUSAL_OFFLINE_BODY unless its entry already holds one from a
 * send, which is kept), and being listed at all clears "not found". An
 * online-only list teaches nothing of the senders it does not list.
 *
 * A sender has at most one entry (the latest lesson wins: offline or not
 * found); the balance is one entry for the account. Each keeps the body
 * of the answer that taught it (<= REFUSAL_BODY_MAX bytes), replayed byte
 * for byte, with the status the upstream gives for that refusal on the
 * route being decided (refusal_status()).
 *
 * Trust: an entry is trusted while now < checked_at + trust[kind], where
 * checked_at is when it was learned or last probed. The periods are given
 * at every call, so a reload applies to the entries already held; a
 * period of 0 turns the kind off: nothing is learned of it and its
 * entries are never trusted (still cleared by a 2xx, still listed).
 * When trust runs out, the next matching send is a probe: it is forwarded,
 * and checked_at becomes now, so that the sends after it keep being
 * answered from the entry until the probe's answer replaces or clears it
 * (the session cache's rule, session_cache.h). A refusal costs at most one
 * upstream call per sender (the balance: per account) per trust period.
 *
 * Bounded: at most max_entries sender entries, fixed size (the body
 * inline); when full, a new sender's lesson evicts the entry whose trust
 * ends first. Not thread-safe. */
#ifndef WAGATE_REFUSALS_H
#define WAGATE_REFUSALS_H

#include <stddef.h>
#include <stdint.h>

#include "route.h"

#define REFUSAL_BODY_MAX 1024

/* The body a senders list teaches "offline" with: the provider's own
 * (upstream/send-freeform.md, 503 Sender Offline). */
#define REFUSAL_OFFLINE_BODY                                                   \
    "{\"success\":false,\"error\":\"Sender is not online. Current status: "    \
    "Offline\",\"error_code\":\"SENDER_OFFLINE\"}"

enum refusal_kind {
    REFUSAL_SENDER_OFFLINE = 0,
    REFUSAL_SENDER_NOT_FOUND,
    REFUSAL_BALANCE,
    REFUSAL_KINDS
};

/* Trust periods in ms, by kind (refusals.sender_offline_s,
 * sender_not_found_s, balance_s; 0 = off). */
struct refusal_trust {
    int64_t ms[REFUSAL_KINDS];
};

/* The lower-case code (X-Wagate's reason, the admin API's and metrics'
 * "kind"): "sender_offline", "sender_not_found", "insufficient_balance";
 * and the upstream's error_code ("SENDER_OFFLINE", ...). */
const char *refusal_reason(enum refusal_kind k);
const char *refusal_code(enum refusal_kind k);

/* The admin API's name of a kind ("sender_offline", "sender_not_found",
 * "balance"), and back: -1 when name is none of them. */
const char *refusal_kind_name(enum refusal_kind k);
int refusal_kind_parse(const char *name);

/* The status the upstream answers the refusal with on route (a send
 * route): offline 503 on send-freeform, 422 on send; not found 404;
 * balance 402. */
int refusal_status(enum refusal_kind k, enum route_id route);

/* ---- what an answer teaches, before it is put anywhere ----
 * The memory store (below) and the Redis backend (state_redis.c) both
 * take their lessons from these, so that they learn the same. Pure; no
 * clock. */

enum refusal_lesson_op {
    REFUSAL_TEACHES_NOTHING = 0,
    REFUSAL_TEACHES_REFUSAL, /* kind (sender, unless the balance), body */
    REFUSAL_TEACHES_CLEAR,   /* a 2xx: the sender's entry and the balance */
};

struct refusal_lesson {
    enum refusal_lesson_op op;
    enum refusal_kind kind;
    const char *body; /* into the answer given (REFUSAL_TEACHES_REFUSAL) */
    size_t len;
};

/* A send's answer (route a send route, anything else teaches nothing).
 * Returns l->op. */
int refusal_extract(enum route_id route, int status, const char *body,
                    size_t len, struct refusal_lesson *l);

/* A senders list's 200 answer: calls cb(arg, sender, online) for each
 * well-formed entry (id an integer >= 1, status a string), in order; all
 * is 1 for a ?status=all list, whose non-online senders cb learns as
 * offline (the caller decides what it keeps). Returns the entries seen,
 * or -1 when the body is not a senders list (nothing called). */
typedef void (*refusal_sender_cb)(void *arg, int64_t sender, int online);
int refusal_senders_extract(const char *body, size_t len, refusal_sender_cb cb,
                            void *arg);

/* ---- the memory store ---- */

enum refusal_decision {
    REFUSAL_FORWARD = 0, /* nothing trusted: on to the session cache */
    REFUSAL_PROBE,       /* trust ran out: this one goes (the ones after
                            it are answered from the entry meanwhile) */
    REFUSAL_ANSWER,      /* trusted: answer *out */
};

/* What a trusted refusal is answered with; body points into the store,
 * valid until the next call that changes it. On REFUSAL_PROBE only kind
 * and status are set (what is probed; body NULL, len 0). */
struct refusal_answer {
    enum refusal_kind kind;
    int status; /* refusal_status(kind, route) */
    const char *body;
    size_t len;
    /* REFUSAL_PROBE: the probe's mark (the entry's checked_at now) and
     * the checked_at it replaced, for refusals_unprobe() */
    int64_t probed_at, was_checked_at;
};

struct refusal_view {
    enum refusal_kind kind;
    int64_t sender; /* 0 for the balance */
    int64_t learned_at;
    int64_t checked_at;    /* learned_at, or the last probe */
    int64_t trusted_until; /* checked_at + trust (may be past) */
    int trusted;           /* now < trusted_until and the kind is on */
};

struct refusal_stats {
    size_t entries; /* sender entries + the balance, if held */
    size_t max_entries;
    uint64_t answers[REFUSAL_KINDS]; /* REFUSAL_ANSWER, by kind */
    uint64_t probes[REFUSAL_KINDS];
    uint64_t learned[REFUSAL_KINDS];
    uint64_t cleared;   /* entries a 2xx or a senders list removed */
    uint64_t evictions; /* entries dropped for room */
};

struct refusals;

/* NULL only if max_entries is 0. Caller frees. */
struct refusals *refusals_new(size_t max_entries);
void refusals_free(struct refusals *r); /* NULL is fine */

/* Decides a send from sender on route (a send route). Order: the
 * sender's entry, then the balance: the first trusted one answers; else
 * the first whose trust ran out (its kind on) is probed. Counts it. */
enum refusal_decision refusals_decide(struct refusals *r, enum route_id route,
                                      int64_t sender, int64_t now,
                                      const struct refusal_trust *t,
                                      struct refusal_answer *out);

/* Learns from a send's answer (refusal_extract) at now. Returns the
 * lesson's op (what was done; REFUSAL_TEACHES_REFUSAL of a kind whose
 * trust is 0 is nothing). */
enum refusal_lesson_op refusals_learn(struct refusals *r, enum route_id route,
                                      int64_t sender, int status,
                                      const char *body, size_t len, int64_t now,
                                      const struct refusal_trust *t);

/* Learns from a senders list's 200 answer (all: it was ?status=all).
 * Returns the entries read, or -1 when the body is not a senders list. */
int refusals_learn_senders(struct refusals *r, int all, const char *body,
                           size_t len, int64_t now,
                           const struct refusal_trust *t);

/* Puts one lesson (a kind and its body, <= REFUSAL_BODY_MAX) for sender
 * (ignored for the balance) learned at learned_at: what the state file
 * and tests use. When full it evicts as the periods of the last call that
 * gave some read the entries (none yet: the oldest checked_at). 0, or -1
 * if the body is too long (or the kind unknown, or a sender kind's sender
 * < 1). */
int refusals_put(struct refusals *r, enum refusal_kind kind, int64_t sender,
                 const char *body, size_t len, int64_t learned_at);

/* A probe that was not spent: its send never reached the upstream (the
 * session cache or the limiter answered it, it was never sent) or the
 * upstream's answer said nothing of the refusal (neither it again nor a
 * 2xx). The entry (the sender's for a sender kind, the balance's) gets
 * back the checked_at the probe replaced, so that the next matching send
 * is the probe: the trust a probe renews is paid for by an answer. Only
 * while the entry is still the one the probe marked (its kind, and its
 * checked_at still probed_at); 0 if put back, -1 if not. */
int refusals_unprobe(struct refusals *r, enum refusal_kind kind,
                     int64_t sender, int64_t probed_at,
                     int64_t was_checked_at);

/* Forgets the sender's entry / the balance; 0 if it was there, -1 if
 * not. */
int refusals_forget_sender(struct refusals *r, int64_t sender);
int refusals_forget_balance(struct refusals *r);

/* Every entry, the balance first then the senders in ascending id, as
 * read at now with t; stops early when cb returns non-zero. */
typedef int (*refusal_view_cb)(void *arg, const struct refusal_view *v);
void refusals_list(const struct refusals *r, int64_t now,
                   const struct refusal_trust *t, refusal_view_cb cb,
                   void *arg);

void refusals_get_stats(const struct refusals *r, struct refusal_stats *s);

#endif
