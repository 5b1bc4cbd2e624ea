/* state.c - see state.h: the operations, dispatched to the backend. */
#include "state.h"

#include <event2/buffer.h>

#include "reply.h"

struct state_op *
state_idem_begin(struct state *st, const char *caller, const char *key,
                 const unsigned char hash[IDEM_HASH_LEN], state_begin_cb cb,
                 void *arg)
{
    return st->be->idem_begin(st, caller, key, hash, cb, arg);
}

struct state_op *
state_idem_sent(struct state *st, struct state_claim *claim, state_done_cb cb,
                void *arg)
{
    return st->be->idem_sent(st, claim, cb, arg);
}

struct state_op *
state_idem_finish(struct state *st, struct state_claim *claim,
                  const struct idem_answer *answer, state_done_cb cb, void *arg)
{
    return st->be->idem_finish(st, claim, answer, cb, arg);
}

void
state_claim_drop(struct state *st, struct state_claim *claim)
{
    st->be->claim_drop(st, claim);
}

struct state_op *
state_cache_decide(struct state *st, int64_t sender, uint64_t phone,
                   int64_t recheck_ms, state_window_cb cb, void *arg)
{
    return st->be->cache_decide(st, sender, phone, recheck_ms, cb, arg);
}

struct state_op *
state_cache_learn(struct state *st, const struct state_answer *a,
                  state_done_cb cb, void *arg)
{
    return st->be->cache_learn(st, a, cb, arg);
}

void
state_cancel(struct state *st, struct state_op *op)
{
    st->be->cancel(st, op);
}

void
state_flush(struct state *st, void (*done)(void *arg), void *arg)
{
    st->be->flush(st, done, arg);
}

void
state_free(struct state *st)
{
    if (st != NULL)
        st->be->free(st);
}

struct state_op *
state_cache_get(struct state *st, int64_t sender, uint64_t phone,
                int64_t recheck_ms, state_view_cb cb, void *arg)
{
    return st->be->cache_get(st, sender, phone, recheck_ms, cb, arg);
}

struct state_op *
state_cache_forget(struct state *st, int64_t sender, uint64_t phone,
                   state_done_cb cb, void *arg)
{
    return st->be->cache_forget(st, sender, phone, cb, arg);
}

struct state_op *
state_cache_open(struct state *st, int64_t sender, uint64_t phone,
                 int64_t expires_at, int64_t for_ms, state_done_cb cb,
                 void *arg)
{
    return st->be->cache_open(st, sender, phone, expires_at, for_ms, cb, arg);
}

struct state_op *
state_refusal_decide(struct state *st, enum route_id route, int64_t sender,
                     const struct refusal_trust *t, state_refusal_cb cb,
                     void *arg)
{
    if (st->be->refusal_decide == NULL) { /* a backend without them */
        struct state_refusal r = {STATE_OK, REFUSAL_FORWARD, {0}};
        cb(arg, &r);
        return NULL;
    }
    return st->be->refusal_decide(st, route, sender, t, cb, arg);
}

struct state_op *
state_refusal_learn(struct state *st, const struct state_answer *a,
                    const struct refusal_trust *t, state_done_cb cb, void *arg)
{
    if (st->be->refusal_learn == NULL) {
        if (cb)
            cb(arg, STATE_OK);
        return NULL;
    }
    return st->be->refusal_learn(st, a, t, cb, arg);
}

struct state_op *
state_refusal_unprobe(struct state *st, int64_t sender,
                      const struct refusal_answer *p, state_done_cb cb,
                      void *arg)
{
    if (st->be->refusal_unprobe == NULL) {
        if (cb)
            cb(arg, STATE_OK);
        return NULL;
    }
    return st->be->refusal_unprobe(st, sender, p, cb, arg);
}

struct state_op *
state_refusal_list(struct state *st, const struct refusal_trust *t,
                   state_refusal_view_cb cb, void *arg)
{
    if (st->be->refusal_list == NULL) {
        cb(arg, STATE_OK, NULL);
        return NULL;
    }
    return st->be->refusal_list(st, t, cb, arg);
}

struct state_op *
state_refusal_forget(struct state *st, int64_t sender, state_found_cb cb,
                     void *arg)
{
    if (st->be->refusal_forget == NULL) {
        if (cb)
            cb(arg, STATE_OK, 0);
        return NULL;
    }
    return st->be->refusal_forget(st, sender, cb, arg);
}

void
state_get_stats(const struct state *st, struct state_stats *s)
{
    st->be->stats(st, s);
}

void
state_unknown_init(struct state_unknown *u)
{
    u->body = reply_error(GW_ERR_STOPPED_UNKNOWN, NULL, NULL);
    u->header = (struct idem_header){"Content-Type", "application/json"};
    u->answer = (struct idem_answer){
        .status = reply_row(GW_ERR_STOPPED_UNKNOWN)->status,
        .headers = &u->header,
        .nheaders = 1,
        .body = (const char *)evbuffer_pullup(u->body, -1),
        .body_len = evbuffer_get_length(u->body),
    };
}

void
state_unknown_free(struct state_unknown *u)
{
    if (u->body != NULL)
        evbuffer_free(u->body);
    u->body = NULL;
}
