/* state_memory.c - the memory backend of state.h: the pure cores
 * idempotency.c, session_cache.c and refusals.c, asked in the same call,
 * on the wall clock.
 *
 * With a delay (tests only) every operation is queued instead, in the
 * order asked, and runs delay_ms later from one timer: it then acts on the
 * store as the same call would have, and answers. A cancelled operation
 * still runs (a remote store may already have run it) without answering;
 * a key it claimed is freed again. Its inputs are copied when queued. */
#include "state.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "alloc.h"
#include "clock.h"
#include "learn.h"

struct state_claim {
    char *caller; /* caller, then key, in one allocation */
    char *key;
};

enum mem_kind {
    MEM_BEGIN,
    MEM_SENT,
    MEM_FINISH,
    MEM_DECIDE,
    MEM_LEARN,
    MEM_GET,
    MEM_FORGET,
    MEM_OPEN,
    MEM_RDECIDE,
    MEM_RLEARN,
    MEM_RLIST,
    MEM_RFORGET,
    MEM_RUNPROBE,
};

struct state_op {
    TAILQ_ENTRY(state_op) link;
    enum mem_kind kind;
    double due_ms; /* monotonic */
    int waits;     /* someone waits for the answer: not NULL, not cancelled */
    union {
        state_begin_cb begin;
        state_done_cb done;
        state_window_cb window;
        state_view_cb view;
        state_refusal_cb refusal;
        state_refusal_view_cb rview;
        state_found_cb found;
    } cb;
    void *arg;
    struct state_claim *claim; /* begin: the one it would make; finish:
                                  the one it consumes */
    unsigned char hash[IDEM_HASH_LEN];
    struct idem_answer *answer; /* finish: a copy, or NULL (free the key) */
    int64_t sender, recheck_ms; /* decide, get, forget, open */
    int64_t expires_at;         /* open */
    int64_t for_ms;             /* open: > 0 from now instead */
    uint64_t phone;
    struct state_answer learn; /* its body is a copy */
    enum route_id route;       /* refusal decide */
    struct refusal_answer probe; /* refusal unprobe */
    struct refusal_trust trust; /* refusal decide, learn, list */
};

struct mem_state {
    struct state st; /* first: a struct state * is a struct mem_state * */
    struct event_base *base;
    struct idem_store *idem;
    struct session_cache *cache;
    struct refusals *refusals; /* NULL: none kept, every send forwarded */
    /* the refusals' clock: the monotonic one, read as wall time from the
     * wall clock seen at start (refusal_now()) */
    int64_t wall0;
    double mono0;
    long delay_ms;
    struct event *timer;
    TAILQ_HEAD(, state_op) queue;
    void (*flushed)(void *arg); /* state_flush() waits for the queue */
    void *flushed_arg;
};

static struct mem_state *
mem_of(struct state *st)
{
    return (struct mem_state *)st;
}

/* ---- claims and copies ---- */

static struct state_claim *
claim_new(const char *caller, const char *key)
{
    size_t cl = strlen(caller) + 1, kl = strlen(key) + 1;
    struct state_claim *c = xmalloc(sizeof(*c) + cl + kl);
    c->caller = (char *)(c + 1);
    c->key = c->caller + cl;
    memcpy(c->caller, caller, cl);
    memcpy(c->key, key, kl);
    return c;
}

/* One allocation: the struct, the header array, then every string and
 * the body. */
static struct idem_answer *
answer_copy(const struct idem_answer *a)
{
    size_t n = sizeof(struct idem_answer) +
               a->nheaders * sizeof(struct idem_header) + a->body_len + 1;
    for (size_t i = 0; i < a->nheaders; i++)
        n += strlen(a->headers[i].name) + strlen(a->headers[i].value) + 2;
    struct idem_answer *c = xmalloc(n);
    struct idem_header *h = (struct idem_header *)(c + 1);
    char *at = (char *)(h + a->nheaders);
    for (size_t i = 0; i < a->nheaders; i++) {
        size_t nl = strlen(a->headers[i].name) + 1;
        size_t vl = strlen(a->headers[i].value) + 1;
        h[i].name = memcpy(at, a->headers[i].name, nl);
        h[i].value = memcpy(at + nl, a->headers[i].value, vl);
        at += nl + vl;
    }
    if (a->body_len)
        memcpy(at, a->body, a->body_len);
    *c = (struct idem_answer){a->status, h, a->nheaders, at, a->body_len};
    return c;
}

/* ---- what each operation does to the store ---- */

static struct state_idem_verdict
do_begin(struct mem_state *m, const char *caller, const char *key,
         const unsigned char *hash)
{
    int64_t now = clock_wall_ms();
    struct state_idem_verdict v = {STATE_OK, IDEM_NEW, NULL, NULL};
    idem_expire(m->idem, now); /* amortised: pops what has expired */
    v.verdict = idem_begin(m->idem, caller, key, hash, now, &v.answer);
    return v;
}

static void
do_finish(struct mem_state *m, struct state_claim *c,
          const struct idem_answer *a)
{
    if (a != NULL)
        idem_complete(m->idem, c->caller, c->key, a, clock_wall_ms());
    else
        idem_abandon(m->idem, c->caller, c->key);
    free(c);
}

static struct state_window
do_decide(struct mem_state *m, int64_t sender, uint64_t phone,
          int64_t recheck_ms)
{
    struct state_window w = {STATE_OK, CACHE_FORWARD, CACHE_TIME_UNKNOWN};
    w.decision = cache_decide(m->cache, sender, phone, clock_wall_ms(),
                              recheck_ms, &w.expired_at);
    return w;
}

static void
do_learn(struct mem_state *m, const struct state_answer *a)
{
    learn_from_answer(m->cache, a->route, a->sender, a->phone, a->status,
                      a->body, a->len, clock_wall_ms());
}

static struct state_window_view
do_get(struct mem_state *m, int64_t sender, uint64_t phone, int64_t recheck_ms)
{
    struct state_window_view w;
    memset(&w, 0, sizeof(w));
    w.status = STATE_OK;
    w.found = cache_get(m->cache, sender, phone, clock_wall_ms(), recheck_ms,
                        &w.v) == 0;
    return w;
}

static void
do_open(struct mem_state *m, int64_t sender, uint64_t phone, int64_t expires_at,
        int64_t for_ms)
{
    int64_t now = clock_wall_ms();
    cache_learn_open(m->cache, sender, phone,
                     for_ms > 0 ? now + for_ms : expires_at, CACHE_SRC_INBOUND,
                     now);
}

/* Now for the refusals: their trust is a duration ("trusted for N s"),
 * so it must not follow a wall clock stepped back or forward (NTP, a VM
 * resumed, date -s): a step back would keep every sender refused that
 * much longer. The times the admin API shows stay wall times, as read at
 * start plus the time elapsed since. */
static int64_t
refusal_now(const struct mem_state *m)
{
    return m->wall0 + (int64_t)(clock_mono_ms() - m->mono0);
}

static struct state_refusal
do_rdecide(struct mem_state *m, enum route_id route, int64_t sender,
           const struct refusal_trust *t)
{
    struct state_refusal r;
    memset(&r, 0, sizeof(r));
    r.status = STATE_OK;
    r.decision = REFUSAL_FORWARD;
    if (m->refusals != NULL)
        r.decision = refusals_decide(m->refusals, route, sender,
                                     refusal_now(m), t, &r.answer);
    return r;
}

/* A send's answer, or a senders list's (only its 200 says who is
 * online). */
static void
do_rlearn(struct mem_state *m, const struct state_answer *a,
          const struct refusal_trust *t)
{
    if (m->refusals == NULL)
        return;
    int64_t now = refusal_now(m);
    if (a->route == ROUTE_SENDERS) {
        if (a->status == 200)
            (void)refusals_learn_senders(m->refusals, a->senders_all, a->body,
                                         a->len, now, t);
        return;
    }
    (void)refusals_learn(m->refusals, a->route, a->sender, a->status, a->body,
                         a->len, now, t);
}

struct rlist_ctx {
    state_refusal_view_cb cb;
    void *arg;
};

static int
rlist_one(void *p, const struct refusal_view *v)
{
    struct rlist_ctx *c = p;
    c->cb(c->arg, STATE_OK, v);
    return 0;
}

static void
do_rlist(struct mem_state *m, const struct refusal_trust *t,
         state_refusal_view_cb cb, void *arg)
{
    struct rlist_ctx c = {cb, arg};
    if (m->refusals != NULL)
        refusals_list(m->refusals, refusal_now(m), t, rlist_one, &c);
    cb(arg, STATE_OK, NULL);
}

static int
do_rforget(struct mem_state *m, int64_t sender)
{
    if (m->refusals == NULL)
        return 0;
    int rc = sender >= 1 ? refusals_forget_sender(m->refusals, sender)
                         : refusals_forget_balance(m->refusals);
    return rc == 0;
}

/* ---- the queue (delay_ms > 0) ---- */

static void
arm(struct mem_state *m)
{
    struct state_op *op = TAILQ_FIRST(&m->queue);
    if (op == NULL)
        return;
    double left = op->due_ms - clock_mono_ms();
    long us = left > 0 ? (long)(left * 1000) : 0;
    struct timeval tv = {us / 1000000, us % 1000000};
    evtimer_add(m->timer, &tv);
}

static struct state_op *
enqueue(struct mem_state *m, enum mem_kind kind, int waits, void *arg)
{
    struct state_op *op = xcalloc(1, sizeof(*op));
    op->kind = kind;
    op->waits = waits;
    op->arg = arg;
    op->due_ms = clock_mono_ms() + (double)m->delay_ms;
    int was_empty = TAILQ_EMPTY(&m->queue);
    TAILQ_INSERT_TAIL(&m->queue, op, link);
    if (was_empty)
        arm(m);
    return op;
}

static void
op_free(struct state_op *op)
{
    free(op->claim);
    free(op->answer);
    free((void *)op->learn.body);
    free(op);
}

/* Acts on the store, then answers unless cancelled (or nobody waits). */
static void
run(struct mem_state *m, struct state_op *op)
{
    int answer = op->waits;
    struct state_idem_verdict v = {STATE_OK, IDEM_NEW, NULL, NULL};
    struct state_window w = {STATE_OK, CACHE_FORWARD, CACHE_TIME_UNKNOWN};
    struct state_window_view view = {STATE_OK, 0, {0}};
    struct state_refusal ref = {STATE_OK, REFUSAL_FORWARD, {0}};
    int found = 0;
    switch (op->kind) {
    case MEM_BEGIN:
        v = do_begin(m, op->claim->caller, op->claim->key, op->hash);
        if (v.verdict != IDEM_NEW)
            break; /* op_free() frees the claim it would have made */
        if (!answer) {
            idem_abandon(m->idem, op->claim->caller, op->claim->key);
            break;
        }
        v.claim = op->claim;
        op->claim = NULL;
        break;
    case MEM_SENT: /* nothing to record: see mem_idem_sent() */
        break;
    case MEM_FINISH:
        do_finish(m, op->claim, op->answer);
        op->claim = NULL;
        break;
    case MEM_DECIDE:
        w = do_decide(m, op->sender, op->phone, op->recheck_ms);
        break;
    case MEM_LEARN:
        do_learn(m, &op->learn);
        break;
    case MEM_GET:
        view = do_get(m, op->sender, op->phone, op->recheck_ms);
        break;
    case MEM_FORGET:
        (void)cache_forget(m->cache, op->sender, op->phone);
        break;
    case MEM_OPEN:
        do_open(m, op->sender, op->phone, op->expires_at, op->for_ms);
        break;
    case MEM_RDECIDE:
        ref = do_rdecide(m, op->route, op->sender, &op->trust);
        break;
    case MEM_RLEARN:
        do_rlearn(m, &op->learn, &op->trust);
        break;
    case MEM_RLIST: /* reads nothing unless someone waits */
        if (answer)
            do_rlist(m, &op->trust, op->cb.rview, op->arg);
        return;
    case MEM_RFORGET:
        found = do_rforget(m, op->sender);
        break;
    case MEM_RUNPROBE:
        if (m->refusals != NULL)
            (void)refusals_unprobe(m->refusals, op->probe.kind, op->sender,
                                   op->probe.probed_at,
                                   op->probe.was_checked_at);
        break;
    }
    if (answer) {
        if (op->kind == MEM_RDECIDE)
            op->cb.refusal(op->arg, &ref);
        else if (op->kind == MEM_RFORGET)
            op->cb.found(op->arg, STATE_OK, found);
        else if (op->kind == MEM_BEGIN)
            op->cb.begin(op->arg, &v);
        else if (op->kind == MEM_DECIDE)
            op->cb.window(op->arg, &w);
        else if (op->kind == MEM_GET)
            op->cb.view(op->arg, &view);
        else
            op->cb.done(op->arg, STATE_OK);
    }
}

static void
on_timer(evutil_socket_t fd, short what, void *p)
{
    (void)fd;
    (void)what;
    struct mem_state *m = p;
    double now = clock_mono_ms();
    struct state_op *op;
    /* what the callbacks queue is due delay_ms from now: not this round */
    while ((op = TAILQ_FIRST(&m->queue)) != NULL && op->due_ms <= now) {
        TAILQ_REMOVE(&m->queue, op, link);
        run(m, op);
        op_free(op);
    }
    arm(m);
    if (TAILQ_EMPTY(&m->queue) && m->flushed != NULL) {
        void (*done)(void *) = m->flushed;
        m->flushed = NULL;
        done(m->flushed_arg);
    }
}

/* ---- the operations ---- */

static struct state_op *
mem_idem_begin(struct state *st, const char *caller, const char *key,
               const unsigned char *hash, state_begin_cb cb, void *arg)
{
    struct mem_state *m = mem_of(st);
    if (m->delay_ms > 0) {
        struct state_op *op = enqueue(m, MEM_BEGIN, 1, arg);
        op->cb.begin = cb;
        op->claim = claim_new(caller, key);
        memcpy(op->hash, hash, IDEM_HASH_LEN);
        return op;
    }
    struct state_idem_verdict v = do_begin(m, caller, key, hash);
    if (v.verdict == IDEM_NEW)
        v.claim = claim_new(caller, key);
    cb(arg, &v);
    return NULL;
}

static struct state_op *
mem_idem_sent(struct state *st, struct state_claim *claim, state_done_cb cb,
              void *arg)
{
    struct mem_state *m = mem_of(st);
    (void)claim; /* the store dies with the process: nothing to record */
    if (m->delay_ms > 0) {
        struct state_op *op = enqueue(m, MEM_SENT, 1, arg);
        op->cb.done = cb;
        return op;
    }
    cb(arg, STATE_OK);
    return NULL;
}

static struct state_op *
mem_idem_finish(struct state *st, struct state_claim *claim,
                const struct idem_answer *answer, state_done_cb cb, void *arg)
{
    struct mem_state *m = mem_of(st);
    if (m->delay_ms > 0) {
        struct state_op *op = enqueue(m, MEM_FINISH, cb != NULL, arg);
        op->cb.done = cb;
        op->claim = claim;
        op->answer = answer ? answer_copy(answer) : NULL;
        return cb ? op : NULL;
    }
    do_finish(m, claim, answer);
    if (cb)
        cb(arg, STATE_OK);
    return NULL;
}

static void
mem_claim_drop(struct state *st, struct state_claim *claim)
{
    (void)st;
    free(claim);
}

static struct state_op *
mem_cache_decide(struct state *st, int64_t sender, uint64_t phone,
                 int64_t recheck_ms, state_window_cb cb, void *arg)
{
    struct mem_state *m = mem_of(st);
    if (m->delay_ms > 0) {
        struct state_op *op = enqueue(m, MEM_DECIDE, 1, arg);
        op->cb.window = cb;
        op->sender = sender;
        op->phone = phone;
        op->recheck_ms = recheck_ms;
        return op;
    }
    struct state_window w = do_decide(m, sender, phone, recheck_ms);
    cb(arg, &w);
    return NULL;
}

/* Queues a lesson of an answer, its body copied (the answer may go). */
static struct state_op *
enqueue_learn(struct mem_state *m, enum mem_kind kind,
              const struct state_answer *a, state_done_cb cb, void *arg)
{
    struct state_op *op = enqueue(m, kind, cb != NULL, arg);
    op->cb.done = cb;
    op->learn = *a;
    char *body = xmalloc(a->len + 1);
    if (a->len)
        memcpy(body, a->body, a->len);
    op->learn.body = body;
    return op;
}

static struct state_op *
mem_cache_learn(struct state *st, const struct state_answer *a,
                state_done_cb cb, void *arg)
{
    struct mem_state *m = mem_of(st);
    if (m->delay_ms > 0) {
        struct state_op *op = enqueue_learn(m, MEM_LEARN, a, cb, arg);
        return cb ? op : NULL;
    }
    do_learn(m, a);
    if (cb)
        cb(arg, STATE_OK);
    return NULL;
}

/* ---- the admin API's window operations ---- */

static struct state_op *
mem_cache_get(struct state *st, int64_t sender, uint64_t phone,
              int64_t recheck_ms, state_view_cb cb, void *arg)
{
    struct mem_state *m = mem_of(st);
    if (m->delay_ms > 0) {
        struct state_op *op = enqueue(m, MEM_GET, 1, arg);
        op->cb.view = cb;
        op->sender = sender;
        op->phone = phone;
        op->recheck_ms = recheck_ms;
        return op;
    }
    struct state_window_view w = do_get(m, sender, phone, recheck_ms);
    cb(arg, &w);
    return NULL;
}

static struct state_op *
mem_cache_forget(struct state *st, int64_t sender, uint64_t phone,
                 state_done_cb cb, void *arg)
{
    struct mem_state *m = mem_of(st);
    if (m->delay_ms > 0) {
        struct state_op *op = enqueue(m, MEM_FORGET, cb != NULL, arg);
        op->cb.done = cb;
        op->sender = sender;
        op->phone = phone;
        return cb ? op : NULL;
    }
    (void)cache_forget(m->cache, sender, phone);
    if (cb)
        cb(arg, STATE_OK);
    return NULL;
}

static struct state_op *
mem_cache_open(struct state *st, int64_t sender, uint64_t phone,
               int64_t expires_at, int64_t for_ms, state_done_cb cb, void *arg)
{
    struct mem_state *m = mem_of(st);
    if (m->delay_ms > 0) {
        struct state_op *op = enqueue(m, MEM_OPEN, cb != NULL, arg);
        op->cb.done = cb;
        op->sender = sender;
        op->phone = phone;
        op->expires_at = expires_at;
        op->for_ms = for_ms;
        return cb ? op : NULL;
    }
    do_open(m, sender, phone, expires_at, for_ms);
    if (cb)
        cb(arg, STATE_OK);
    return NULL;
}

/* ---- the learned refusals ---- */

static struct state_op *
mem_refusal_decide(struct state *st, enum route_id route, int64_t sender,
                   const struct refusal_trust *t, state_refusal_cb cb,
                   void *arg)
{
    struct mem_state *m = mem_of(st);
    if (m->delay_ms > 0) {
        struct state_op *op = enqueue(m, MEM_RDECIDE, 1, arg);
        op->cb.refusal = cb;
        op->route = route;
        op->sender = sender;
        op->trust = *t;
        return op;
    }
    struct state_refusal r = do_rdecide(m, route, sender, t);
    cb(arg, &r);
    return NULL;
}

static struct state_op *
mem_refusal_learn(struct state *st, const struct state_answer *a,
                  const struct refusal_trust *t, state_done_cb cb, void *arg)
{
    struct mem_state *m = mem_of(st);
    if (m->delay_ms > 0) {
        struct state_op *op = enqueue_learn(m, MEM_RLEARN, a, cb, arg);
        op->trust = *t;
        return cb ? op : NULL;
    }
    do_rlearn(m, a, t);
    if (cb)
        cb(arg, STATE_OK);
    return NULL;
}

static struct state_op *
mem_refusal_unprobe(struct state *st, int64_t sender,
                    const struct refusal_answer *p, state_done_cb cb,
                    void *arg)
{
    struct mem_state *m = mem_of(st);
    if (m->delay_ms > 0) {
        struct state_op *op = enqueue(m, MEM_RUNPROBE, cb != NULL, arg);
        op->cb.done = cb;
        op->sender = sender;
        op->probe = *p;
        op->probe.body = NULL; /* a probe has none; nothing borrowed */
        return cb ? op : NULL;
    }
    if (m->refusals != NULL)
        (void)refusals_unprobe(m->refusals, p->kind, sender, p->probed_at,
                               p->was_checked_at);
    if (cb)
        cb(arg, STATE_OK);
    return NULL;
}

static struct state_op *
mem_refusal_list(struct state *st, const struct refusal_trust *t,
                 state_refusal_view_cb cb, void *arg)
{
    struct mem_state *m = mem_of(st);
    if (m->delay_ms > 0) {
        struct state_op *op = enqueue(m, MEM_RLIST, 1, arg);
        op->cb.rview = cb;
        op->trust = *t;
        return op;
    }
    do_rlist(m, t, cb, arg);
    return NULL;
}

static struct state_op *
mem_refusal_forget(struct state *st, int64_t sender, state_found_cb cb,
                   void *arg)
{
    struct mem_state *m = mem_of(st);
    if (m->delay_ms > 0) {
        struct state_op *op = enqueue(m, MEM_RFORGET, cb != NULL, arg);
        op->cb.found = cb;
        op->sender = sender;
        return cb ? op : NULL;
    }
    int found = do_rforget(m, sender);
    if (cb)
        cb(arg, STATE_OK, found);
    return NULL;
}

/* The memory store always answers: nothing falls back. */
static void
mem_stats(const struct state *st, struct state_stats *s)
{
    const struct mem_state *m = (const struct mem_state *)st;
    memset(s, 0, sizeof(*s));
    if (m->refusals != NULL) {
        struct refusal_stats rs;
        refusals_get_stats(m->refusals, &rs);
        s->refusal_entries = (int64_t)rs.entries;
    }
}

static void
mem_cancel(struct state *st, struct state_op *op)
{
    (void)st;
    op->waits = 0; /* it runs at its time, answering nobody */
    op->arg = NULL;
}

static void
mem_flush(struct state *st, void (*done)(void *arg), void *arg)
{
    struct mem_state *m = mem_of(st);
    if (TAILQ_EMPTY(&m->queue)) {
        done(arg);
        return;
    }
    m->flushed = done; /* the queue runs out within a few delays */
    m->flushed_arg = arg;
}

static void
mem_free(struct state *st)
{
    struct mem_state *m = mem_of(st);
    struct state_op *op;
    while ((op = TAILQ_FIRST(&m->queue)) != NULL) {
        TAILQ_REMOVE(&m->queue, op, link);
        op_free(op);
    }
    if (m->timer)
        event_free(m->timer);
    free(m);
}

static const struct state_backend mem_backend = {
    .idem_begin = mem_idem_begin,
    .idem_sent = mem_idem_sent,
    .idem_finish = mem_idem_finish,
    .claim_drop = mem_claim_drop,
    .cache_decide = mem_cache_decide,
    .cache_learn = mem_cache_learn,
    .cache_get = mem_cache_get,
    .cache_forget = mem_cache_forget,
    .cache_open = mem_cache_open,
    .refusal_decide = mem_refusal_decide,
    .refusal_learn = mem_refusal_learn,
    .refusal_unprobe = mem_refusal_unprobe,
    .refusal_list = mem_refusal_list,
    .refusal_forget = mem_refusal_forget,
    .stats = mem_stats,
    .cancel = mem_cancel,
    .flush = mem_flush,
    .free = mem_free,
};

struct state *
state_memory_new(struct event_base *base, struct idem_store *idem,
                 struct session_cache *cache, struct refusals *refusals,
                 long delay_ms)
{
    struct mem_state *m = xcalloc(1, sizeof(*m));
    m->st.be = &mem_backend;
    m->base = base;
    m->idem = idem;
    m->cache = cache;
    m->refusals = refusals;
    m->wall0 = clock_wall_ms();
    m->mono0 = clock_mono_ms();
    m->delay_ms = delay_ms > 0 ? delay_ms : 0;
    TAILQ_INIT(&m->queue);
    if (m->delay_ms > 0) {
        m->timer = evtimer_new(base, on_timer, m);
        if (m->timer == NULL)
            alloc_oom("evtimer_new");
    }
    return &m->st;
}
