/* state_redis.c - the Redis backend of state.h (SPEC section 11):
 * idempotency keys and the session windows shared by every gateway of
 * one account, over one link (redis_link.h), one Lua script per decision
 * (src/redis/NAME.lua: each script's header is its contract).
 *
 * Keys, below key_base ("<prefix>{<account>}:"):
 *   idem:<hex SHA-256 of caller "\n" key>   a key's record (idem_begin.lua)
 *   fence                                   the fencing counter
 *   win:<sender>:<phone key>                a window (win_learn.lua)
 *   ref:s:<sender>                          a sender's learned refusal
 *   ref:balance                             the account's balance refusal
 *   ref:s                                   the index of the senders that
 *                                           have one (the prelude, ref_*)
 * Caller names and idempotency keys appear only as that digest.
 *
 * Leases, read from the config at each call (a reload applies):
 *   claimed (begin to sent): upstream.max_queue_ms + STATE_REDIS_MARGIN_MS.
 *     After its claim a request waits at most max_queue_ms for its slot
 *     (shaper.h), plus the Redis round trips in between (the window, the
 *     slot, the mark: each at most state.redis.timeout_ms, 250 ms by
 *     default) and the loop's own latency: the 2 s margin covers them. A
 *     lease that runs out anyway costs availability, not safety: the
 *     holder's "sent" then fails and nothing leaves (503).
 *   sent (sent to finish): upstream.timeout_ms + connect_timeout_ms +
 *     STATE_REDIS_MARGIN_MS: the transfer's own bound, a connect retried
 *     once, and the finishing round trip. After it, the key replays an
 *     unknown outcome (the instance died after the send may have left),
 *     kept idempotency.ttl_s.
 *
 * Windows are judged in C by session_cache.h's cache_judge() over the
 * entry and Redis's time (win_get.lua), as the memory cache judges its
 * own; a probe (trust ran out) is claimed by a compare-and-set
 * (win_decide.lua) so that one instance probes. What an answer teaches is
 * learn.h's learn_extract(), as for the memory cache.
 *
 * Learned refusals (SPEC section 4a) are decided in Redis, one script per
 * decision (ref_decide.lua: the answer, or the probe claimed atomically so
 * that one instance probes per trust period); what an answer teaches is
 * refusals.h's refusal_extract() and refusal_senders_extract(), as for
 * the memory store, and the status answered is refusal_status() of the
 * route asked. Each reply carries the entries held, kept in
 * stats.refusal_entries.
 *
 * Degraded mode: a command the link answers UNAVAILABLE (down, slow,
 * dropped), an error reply or a reply that does not decode gives
 * STATE_UNAVAILABLE, counted in struct state_stats.
 *
 * A finish the link could not deliver (Redis down or slower than its
 * timeout) is not forgotten: it is sent again every RETRY_MS while the
 * link is up, for a sent lease. Otherwise a key whose send was never
 * made (its "sent" timed out, or the upstream refused it) would replay
 * an unknown outcome for idempotency.ttl_s, and a kept answer the
 * caller got would be lost to its retries. Sending a finish again is
 * safe: it writes only while its token holds (a finish that ran already
 * left no token). */
#include "state.h"

#include <event2/buffer.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <sys/queue.h>

#include "alloc.h"
#include "clock.h"
#include "config.h"
#include "digest.h"
#include "learn.h"
#include "redis_answer.h"
#include "redis_link.h"
#include "redis_scripts.h"
#include "reply.h"

#define STATE_REDIS_MARGIN_MS 2000
#define TOKEN_MAX 64   /* "<counter>-<now us>" */
#define RETRY_MS 250   /* a finish not delivered is sent again so often */
#define RETRY_MAX 4096 /* finishes waiting to be sent again, at most */

struct state_claim {
    char *key; /* the record's key, in one allocation with the claim */
    char token[TOKEN_MAX];
};

enum op_kind {
    OP_BEGIN,
    OP_SENT,
    OP_FINISH,
    OP_DECIDE,
    OP_LEARN,
    OP_GET,
    OP_FORGET,
    OP_OPEN,
    OP_REF_DECIDE,
    OP_REF_LEARN,
    OP_REF_LIST,
    OP_REF_FORGET,
    OP_REF_UNPROBE,
};

struct redis_state;

struct state_op {
    TAILQ_ENTRY(state_op) link;
    struct redis_state *rs;
    enum op_kind kind;
    int waits; /* someone waits: cb not NULL, not cancelled */
    union {
        state_begin_cb begin;
        state_done_cb done;
        state_window_cb window;
        state_view_cb view;
        state_refusal_cb refusal;
        state_refusal_view_cb refusal_view;
        state_found_cb found;
    } cb;
    void *arg;
    struct rlink_cmd *cmd; /* pending on the link; NULL within its call */
    char *key;             /* begin, finish: the record; decide: the window */
    int64_t recheck_ms;    /* decide, get */
    int probing;           /* decide: the compare-and-set is pending */
    /* refusals: the route decided, the sender, the periods (list) */
    enum route_id route;
    int64_t sender;
    struct refusal_trust trust;
    int answering; /* list: its entries are being given (cancel waits) */
    /* finish: what it sends, to send it again if it is not delivered */
    char token[TOKEN_MAX];
    char *blob; /* keep: the answer; NULL: free */
    size_t blen;
    int64_t retry_until; /* monotonic ms; 0 until a first failure */
};

/* A finish waiting to be sent again (see the top of the file). */
struct retry {
    TAILQ_ENTRY(retry) link;
    char *key, *blob;
    size_t blen;
    char token[TOKEN_MAX];
    int64_t until; /* monotonic ms */
};

struct redis_state {
    struct state st; /* first: a struct state * is a struct redis_state * */
    struct event_base *base;
    struct rlink *link;
    char *key_base;
    const struct config *const *cfg;
    TAILQ_HEAD(, state_op) ops;  /* every op whose reply is awaited */
    TAILQ_HEAD(, retry) retries; /* finishes to send again, oldest first */
    size_t nretries;
    struct event *retry_timer;
    struct state_stats stats;
    /* the answer replayed for a key whose instance stopped after sending:
     * GW_ERR_STOPPED_UNKNOWN's row, as the state file writes it */
    struct state_unknown unknown;
};

static struct redis_state *
rs_of(struct state *st)
{
    return (struct redis_state *)st;
}

/* ---- keys and arguments ---- */

static char *key_of(const struct redis_state *rs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static char *
key_of(const struct redis_state *rs, const char *fmt, ...)
{
    char tail[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tail, sizeof(tail), fmt, ap); /* bounded: digits or hex */
    va_end(ap);
    size_t bl = strlen(rs->key_base), tl = strlen(tail);
    char *k = xmalloc(bl + tl + 1);
    memcpy(k, rs->key_base, bl);
    memcpy(k + bl, tail, tl + 1);
    return k;
}

static void
hex_of(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

/* idem:<hex SHA-256 of caller "\n" key>: a key has no "\n" (visible
 * ASCII), so the pair is never ambiguous. */
static char *
idem_key(const struct redis_state *rs, const char *caller, const char *key)
{
    size_t cl = strlen(caller), kl = strlen(key);
    char *both = xmalloc(cl + kl + 1);
    memcpy(both, caller, cl);
    both[cl] = '\n';
    memcpy(both + cl + 1, key, kl);
    unsigned char d[DIGEST_LEN];
    char hex[2 * DIGEST_LEN + 1];
    digest_sha256(both, cl + 1 + kl, d);
    free(both);
    hex_of(d, DIGEST_LEN, hex);
    return key_of(rs, "idem:%s", hex);
}

static char *
win_key(const struct redis_state *rs, int64_t sender, uint64_t phone)
{
    return key_of(rs, "win:%" PRId64 ":%" PRIu64, sender, phone);
}

static long long
claim_lease_ms(const struct config *c)
{
    return c->max_queue_ms + STATE_REDIS_MARGIN_MS;
}

static long long
sent_lease_ms(const struct config *c)
{
    return c->timeout_ms + c->connect_timeout_ms + STATE_REDIS_MARGIN_MS;
}

static long long
ttl_ms(const struct config *c)
{
    return c->idem_ttl_s > 0 ? c->idem_ttl_s * 1000 : 1;
}

/* Up to 8 arguments, each a C string unless lens says otherwise. */
struct args {
    const char *v[8];
    size_t len[8];
    char num[6][24];
    int n;
};

static void
arg_str(struct args *a, const char *s)
{
    a->v[a->n] = s;
    a->len[a->n++] = strlen(s);
}

static void
arg_bytes(struct args *a, const char *s, size_t n)
{
    a->v[a->n] = s;
    a->len[a->n++] = n;
}

static void
arg_num(struct args *a, int slot, long long v)
{
    snprintf(a->num[slot], sizeof(a->num[slot]), "%lld", v);
    arg_str(a, a->num[slot]);
}

/* ---- ops ---- */

static struct state_op *
op_new(struct redis_state *rs, enum op_kind kind, void *cb, void *arg)
{
    struct state_op *op = xcalloc(1, sizeof(*op));
    op->rs = rs;
    op->kind = kind;
    op->waits = cb != NULL;
    op->arg = arg;
    switch (kind) {
    case OP_BEGIN:
        op->cb.begin = (state_begin_cb)cb;
        break;
    case OP_DECIDE:
        op->cb.window = (state_window_cb)cb;
        break;
    case OP_GET:
        op->cb.view = (state_view_cb)cb;
        break;
    case OP_REF_DECIDE:
        op->cb.refusal = (state_refusal_cb)cb;
        break;
    case OP_REF_LIST:
        op->cb.refusal_view = (state_refusal_view_cb)cb;
        break;
    case OP_REF_FORGET:
        op->cb.found = (state_found_cb)cb;
        break;
    default:
        op->cb.done = (state_done_cb)cb;
        break;
    }
    return op;
}

static void
op_free(struct state_op *op)
{
    free(op->key);
    free(op->blob);
    free(op);
}

/* The op is done with the link: out of the list, then freed. */
static void
op_end(struct state_op *op)
{
    TAILQ_REMOVE(&op->rs->ops, op, link);
    op_free(op);
}

static void on_reply(void *arg, enum rlink_status st, const redisReply *r);

/* Sends script for op: 1 when its reply is awaited, 0 when the link
 * answered within the call (op is gone then: do not touch it). The
 * arguments are copied by the link. */
static int
op_send_argv(struct state_op *op, enum redis_script script, int nkeys,
             int argc, const char *const *argv, const size_t *len)
{
    struct redis_state *rs = op->rs;
    TAILQ_INSERT_TAIL(&rs->ops, op, link);
    op->cmd = NULL;
    struct rlink_cmd *c = rlink_eval(rs->link, (size_t)script, nkeys, argc,
                                     argv, len, on_reply, op);
    if (c == NULL)
        return 0;
    op->cmd = c;
    return 1;
}

static int
op_send(struct state_op *op, enum redis_script script, int nkeys,
        const struct args *a)
{
    return op_send_argv(op, script, nkeys, a->n, a->v, a->len);
}

/* What an operation returns: op while someone awaits its answer. */
static struct state_op *
op_start(struct state_op *op, enum redis_script script, int nkeys,
         const struct args *a)
{
    return op_send(op, script, nkeys, a) && op->waits ? op : NULL;
}

/* ---- reading replies ---- */

static int
reply_int(const redisReply *r, long long *v)
{
    if (r == NULL || r->type != REDIS_REPLY_INTEGER)
        return -1;
    *v = r->integer;
    return 0;
}

/* A decimal integer in s[0..n), all of it. */
static int
parse_ll(const char *s, size_t n, long long *v)
{
    char buf[24];
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    long long x = strtoll(buf, &end, 10);
    if (*end != '\0' || (buf[0] != '-' && (buf[0] < '0' || buf[0] > '9')))
        return -1;
    *v = x;
    return 0;
}

/* A window entry, "<open>:<when or ->:<learned_at>:<source>"
 * (win_learn.lua), into r. 0, or -1 when it is not one. */
static int
parse_entry(const char *s, size_t n, struct cache_record *r)
{
    const char *end = s + n, *f[4];
    size_t fl[4];
    int k = 0;
    const char *p = s;
    while (k < 4) {
        const char *q = memchr(p, ':', (size_t)(end - p));
        if (q == NULL)
            q = end;
        f[k] = p;
        fl[k++] = (size_t)(q - p);
        if (q == end)
            break;
        p = q + 1;
    }
    long long when, learned, src;
    if (k != 4 || p > end || memchr(f[3], ':', fl[3]) != NULL)
        return -1;
    if (fl[0] != 1 || (f[0][0] != '0' && f[0][0] != '1'))
        return -1;
    if (fl[1] == 1 && f[1][0] == '-')
        when = CACHE_TIME_UNKNOWN;
    else if (parse_ll(f[1], fl[1], &when) != 0)
        return -1;
    if (parse_ll(f[2], fl[2], &learned) != 0 ||
        parse_ll(f[3], fl[3], &src) != 0 || src < 0 || src > CACHE_SRC_INBOUND)
        return -1;
    r->open = f[0][0] == '1';
    if (r->open && when == CACHE_TIME_UNKNOWN)
        return -1;
    r->when = when;
    r->learned_at = learned;
    r->source = (enum cache_source)src;
    return 0;
}

/* {now ms, entry or ""[, won]} (win_get.lua, win_decide.lua): 0, 1 when
 * there is an entry (in *e), -1 when the reply is not that. */
static int
read_window(const redisReply *r, size_t want, int64_t *now,
            struct cache_record *e, const char **raw, size_t *rawlen)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != want ||
        r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_STRING)
        return -1;
    *now = r->element[0]->integer;
    *raw = r->element[1]->str;
    *rawlen = r->element[1]->len;
    if (*rawlen == 0)
        return 0;
    return parse_entry(*raw, *rawlen, e) == 0 ? 1 : -1;
}

/* ---- idempotency ---- */

static void free_claim_now(struct redis_state *rs, const char *key,
                           const char *token);

static void
begin_answered(struct state_op *op, enum rlink_status st, const redisReply *r)
{
    struct redis_state *rs = op->rs;
    struct state_idem_verdict v = {STATE_UNAVAILABLE, IDEM_NEW, NULL, NULL};
    struct idem_answer *kept = NULL;
    long long code = -1;
    if (st == RLINK_OK && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        reply_int(r->element[0], &code) == 0) {
        const redisReply *x = r->elements >= 2 ? r->element[1] : NULL;
        int x_str = x != NULL && x->type == REDIS_REPLY_STRING;
        switch (code) {
        case 0: /* claimed */
            if (x_str && x->len > 0 && x->len < TOKEN_MAX) {
                size_t kl = strlen(op->key) + 1;
                struct state_claim *c = xmalloc(sizeof(*c) + kl);
                c->key = (char *)(c + 1);
                memcpy(c->key, op->key, kl);
                memcpy(c->token, x->str, x->len);
                c->token[x->len] = '\0';
                v = (struct state_idem_verdict){STATE_OK, IDEM_NEW, NULL, c};
            }
            break;
        case 1:
            if (x_str && (kept = redis_answer_decode(x->str, x->len)) != NULL)
                v = (struct state_idem_verdict){STATE_OK, IDEM_REPLAY, kept,
                                                NULL};
            break;
        case 2:
            v.status = STATE_OK;
            v.verdict = IDEM_IN_PROGRESS;
            break;
        case 3:
            v.status = STATE_OK;
            v.verdict = IDEM_REUSED;
            break;
        case 4: /* its instance stopped after the send may have left */
            v = (struct state_idem_verdict){STATE_OK, IDEM_REPLAY,
                                            &rs->unknown.answer, NULL};
            rs->stats.idem_unknown++;
            break;
        }
    }
    if (v.status != STATE_OK) {
        rs->stats.idem_unavailable++;
        if (st == RLINK_OK)
            rs->stats.corrupt++;
    }
    if (op->waits) {
        op->cb.begin(op->arg, &v);
    } else if (v.claim != NULL) { /* cancelled: free what it claimed */
        free_claim_now(rs, v.claim->key, v.claim->token);
        free(v.claim);
    }
    free(kept);
}

/* ---- finishes sent again ---- */

static struct state_op *finish_send(struct redis_state *rs, const char *key,
                                    const char *token, const char *blob,
                                    size_t blen, int64_t until,
                                    state_done_cb cb, void *arg);

static void
retry_arm(struct redis_state *rs)
{
    if (!TAILQ_EMPTY(&rs->retries) && !evtimer_pending(rs->retry_timer, NULL)) {
        struct timeval tv = {0, RETRY_MS * 1000};
        evtimer_add(rs->retry_timer, &tv);
    }
}

static void
retry_free(struct redis_state *rs, struct retry *t)
{
    TAILQ_REMOVE(&rs->retries, t, link);
    rs->nretries--;
    free(t->key);
    free(t->blob);
    free(t);
}

/* Keeps what op sent, to send it again later: for a sent lease from its
 * first failure, RETRY_MAX at most (the oldest goes first). */
static void
retry_later(struct redis_state *rs, struct state_op *op)
{
    int64_t now = (int64_t)clock_mono_ms();
    int64_t until = op->retry_until ? op->retry_until
                                    : now + (int64_t)sent_lease_ms(*rs->cfg);
    if (op->key == NULL || now >= until)
        return;
    if (rs->nretries >= RETRY_MAX)
        retry_free(rs, TAILQ_FIRST(&rs->retries));
    struct retry *t = xcalloc(1, sizeof(*t));
    t->key = op->key;
    t->blob = op->blob;
    t->blen = op->blen;
    op->key = op->blob = NULL; /* now the retry's */
    memcpy(t->token, op->token, sizeof(t->token));
    t->until = until;
    TAILQ_INSERT_TAIL(&rs->retries, t, link);
    rs->nretries++;
    retry_arm(rs);
}

/* Sends every finish waiting, if the link is up (one that fails again
 * comes back through retry_later). */
static void
retry_fire(struct redis_state *rs)
{
    if (!rlink_up(rs->link))
        return;
    int64_t now = (int64_t)clock_mono_ms();
    size_t n = rs->nretries; /* the ones failing again go at the end */
    struct retry *t;
    while (n-- > 0 && (t = TAILQ_FIRST(&rs->retries)) != NULL) {
        /* out of the list first: a failure within the call queues anew */
        TAILQ_REMOVE(&rs->retries, t, link);
        rs->nretries--;
        if (now < t->until)
            finish_send(rs, t->key, t->token, t->blob, t->blen, t->until, NULL,
                        NULL);
        free(t->key);
        free(t->blob);
        free(t);
        if (!rlink_up(rs->link))
            break;
    }
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct redis_state *rs = arg;
    (void)fd;
    (void)what;
    retry_fire(rs);
    retry_arm(rs);
}

static void
done_answered(struct state_op *op, enum rlink_status st, const redisReply *r)
{
    struct redis_state *rs = op->rs;
    enum state_status s = STATE_UNAVAILABLE;
    long long held = 0;
    if (st == RLINK_OK && reply_int(r, &held) == 0) {
        s = STATE_OK;
        if (op->kind == OP_SENT || op->kind == OP_FINISH) {
            if (held != 1)
                rs->stats.idem_fenced++;
            if (op->kind == OP_SENT && held != 1)
                s = STATE_UNAVAILABLE; /* the claim is gone: do not send */
        }
    } else {
        int idem = op->kind == OP_SENT || op->kind == OP_FINISH;
        if (idem)
            rs->stats.idem_unavailable++;
        else
            rs->stats.cache_unavailable++;
        if (st == RLINK_OK)
            rs->stats.corrupt++;
        else if (op->kind == OP_FINISH)
            retry_later(rs, op); /* not delivered: again, later */
    }
    if (op->waits)
        op->cb.done(op->arg, s);
}

/* A claim nobody will settle (its begin was cancelled): freed at once,
 * nobody waiting. */
static void
free_claim_now(struct redis_state *rs, const char *key, const char *token)
{
    finish_send(rs, key, token, NULL, 0, 0, NULL, NULL);
}

static struct state_op *
rs_idem_begin(struct state *st, const char *caller, const char *key,
              const unsigned char *hash, state_begin_cb cb, void *arg)
{
    struct redis_state *rs = rs_of(st);
    char fp[2 * IDEM_HASH_LEN + 1];
    hex_of(hash, IDEM_HASH_LEN, fp);
    struct state_op *op = op_new(rs, OP_BEGIN, (void *)cb, arg);
    op->key = idem_key(rs, caller ? caller : "", key);
    char *fence = key_of(rs, "fence");
    struct args a = {0};
    arg_str(&a, op->key);
    arg_str(&a, fence);
    arg_str(&a, fp);
    arg_num(&a, 0, claim_lease_ms(*rs->cfg));
    struct state_op *pending = op_start(op, RS_IDEM_BEGIN, 2, &a);
    free(fence); /* copied by the link */
    return pending;
}

static struct state_op *
rs_idem_sent(struct state *st, struct state_claim *claim, state_done_cb cb,
             void *arg)
{
    struct redis_state *rs = rs_of(st);
    const struct config *c = *rs->cfg;
    struct state_op *op = op_new(rs, OP_SENT, (void *)cb, arg);
    struct args a = {0};
    arg_str(&a, claim->key);
    arg_str(&a, claim->token);
    arg_num(&a, 0, sent_lease_ms(c));
    arg_num(&a, 1, ttl_ms(c));
    return op_start(op, RS_IDEM_SENT, 1, &a);
}

/* The encoding of a for the store; an answer whose headers could not be
 * replayed is kept without them rather than not at all (the message may
 * have been sent: the key must not free). NULL only for a status out of
 * HTTP's range. */
static char *
encode_kept(const struct idem_answer *a, size_t *len)
{
    char *b = redis_answer_encode(a, len);
    if (b == NULL) {
        struct idem_answer bare = *a;
        bare.headers = NULL;
        bare.nheaders = 0;
        b = redis_answer_encode(&bare, len);
    }
    return b;
}

/* idem_finish.lua for (key, token): keeps blob[0..blen) (NULL: frees the
 * key). The op keeps copies of all three, to send them again if the link
 * does not deliver them (until: the deadline of an earlier failure, 0 for
 * none yet). */
static struct state_op *
finish_send(struct redis_state *rs, const char *key, const char *token,
            const char *blob, size_t blen, int64_t until, state_done_cb cb,
            void *arg)
{
    struct state_op *op = op_new(rs, OP_FINISH, (void *)cb, arg);
    op->key = xstrdup(key);
    snprintf(op->token, sizeof(op->token), "%s", token);
    if (blob != NULL) {
        op->blob = xmalloc(blen ? blen : 1);
        memcpy(op->blob, blob, blen);
        op->blen = blen;
    }
    op->retry_until = until;
    struct args a = {0};
    arg_str(&a, op->key);
    arg_str(&a, op->token);
    arg_str(&a, op->blob ? "keep" : "free");
    arg_bytes(&a, op->blob ? op->blob : "", op->blen);
    arg_num(&a, 0, ttl_ms(*rs->cfg));
    return op_start(op, RS_IDEM_FINISH, 1, &a);
}

static struct state_op *
rs_idem_finish(struct state *st, struct state_claim *claim,
               const struct idem_answer *answer, state_done_cb cb, void *arg)
{
    struct redis_state *rs = rs_of(st);
    size_t blen = 0;
    char *blob = answer ? encode_kept(answer, &blen) : NULL;
    /* an answer that cannot be encoded frees the key, as before */
    struct state_op *pending =
        finish_send(rs, claim->key, claim->token, blob, blen, 0, cb, arg);
    free(claim);
    free(blob);
    return pending;
}

static void
rs_claim_drop(struct state *st, struct state_claim *claim)
{
    (void)st;
    free(claim);
}

/* ---- windows ---- */

static void
window_answer(struct state_op *op, const struct state_window *w)
{
    if (w->status != STATE_OK)
        op->rs->stats.cache_unavailable++;
    if (op->waits)
        op->cb.window(op->arg, w);
}

/* Sends the probe's compare-and-set for the entry seen: 1 when it is on
 * its way (op goes on), 0 when the link answered within the call (op is
 * gone: it answered). */
static int
probe(struct state_op *op, const char *seen, size_t seenlen)
{
    struct args a = {0};
    arg_str(&a, op->key);
    arg_bytes(&a, seen, seenlen);
    arg_num(&a, 0, op->recheck_ms);
    op->probing = 1;
    TAILQ_REMOVE(&op->rs->ops, op, link); /* op_send puts it back */
    return op_send(op, RS_WIN_DECIDE, 1, &a);
}

/* 0 when op answered (the caller ends it), 1 when it goes on (the probe
 * is on its way), -1 when it is gone (the probe answered within its
 * call). */
static int
decide_answered(struct state_op *op, enum rlink_status st, const redisReply *r)
{
    struct state_window w = {STATE_UNAVAILABLE, CACHE_FORWARD,
                             CACHE_TIME_UNKNOWN};
    struct cache_record e;
    int64_t now;
    const char *raw;
    size_t rawlen;
    int found = -1;
    if (st == RLINK_OK)
        found = read_window(r, op->probing ? 3 : 2, &now, &e, &raw, &rawlen);
    if (found < 0) {
        if (st == RLINK_OK)
            op->rs->stats.corrupt++;
        window_answer(op, &w);
        return 0;
    }
    w.status = STATE_OK;
    if (op->probing && r->element[2]->type == REDIS_REPLY_INTEGER &&
        r->element[2]->integer == 1) {
        window_answer(op, &w); /* this instance probes: forward */
        return 0;
    }
    enum cache_judgement j = found ? cache_judge(&e, now, op->recheck_ms, NULL)
                                   : CACHE_JUDGED_FORWARD;
    if (j == CACHE_JUDGED_TRUSTED) {
        w.decision = CACHE_SHORT_CIRCUIT;
        w.expired_at = e.when;
    } else if (j == CACHE_JUDGED_PROBE && !op->probing) {
        if (probe(op, raw, rawlen))
            return 1;
        return -1; /* answered within the call: op is gone */
    }
    /* a probe lost to another instance whose entry still reads as a
     * probe (it changed meanwhile): forward, without asking again */
    window_answer(op, &w);
    return 0;
}

static struct state_op *
rs_cache_decide(struct state *st, int64_t sender, uint64_t phone,
                int64_t recheck_ms, state_window_cb cb, void *arg)
{
    struct redis_state *rs = rs_of(st);
    if (recheck_ms <= 0) { /* never short-circuits: nothing to ask */
        struct state_window w = {STATE_OK, CACHE_FORWARD, CACHE_TIME_UNKNOWN};
        cb(arg, &w);
        return NULL;
    }
    struct state_op *op = op_new(rs, OP_DECIDE, (void *)cb, arg);
    op->key = win_key(rs, sender, phone);
    op->recheck_ms = recheck_ms;
    struct args a = {0};
    arg_str(&a, op->key);
    return op_start(op, RS_WIN_GET, 1, &a);
}

static void
get_answered(struct state_op *op, enum rlink_status st, const redisReply *r)
{
    struct state_window_view w = {STATE_UNAVAILABLE, 0, {0}};
    struct cache_record e;
    int64_t now;
    const char *raw;
    size_t rawlen;
    int found = -1;
    if (st == RLINK_OK)
        found = read_window(r, 2, &now, &e, &raw, &rawlen);
    if (found >= 0) {
        w.status = STATE_OK;
        w.found = found;
        if (found)
            cache_judge(&e, now, op->recheck_ms, &w.v);
    } else {
        op->rs->stats.cache_unavailable++;
        if (st == RLINK_OK)
            op->rs->stats.corrupt++;
    }
    if (op->waits)
        op->cb.view(op->arg, &w);
}

static struct state_op *
rs_cache_get(struct state *st, int64_t sender, uint64_t phone,
             int64_t recheck_ms, state_view_cb cb, void *arg)
{
    struct redis_state *rs = rs_of(st);
    struct state_op *op = op_new(rs, OP_GET, (void *)cb, arg);
    op->key = win_key(rs, sender, phone);
    op->recheck_ms = recheck_ms;
    struct args a = {0};
    arg_str(&a, op->key);
    return op_start(op, RS_WIN_GET, 1, &a);
}

/* win_learn.lua for (sender, phone): open until `when` (for_ms > 0: for
 * that long from the moment learned), or closed since `when`. */
static struct state_op *
learn_send(struct redis_state *rs, enum op_kind kind, int64_t sender,
           uint64_t phone, const struct learn_lesson *l, state_done_cb cb,
           void *arg)
{
    struct state_op *op = op_new(rs, kind, (void *)cb, arg);
    op->key = win_key(rs, sender, phone);
    struct args a = {0};
    char when[24];
    if (l->for_ms > 0)
        snprintf(when, sizeof(when), "+%" PRId64, l->for_ms);
    else if (l->when == CACHE_TIME_UNKNOWN)
        when[0] = '\0';
    else
        snprintf(when, sizeof(when), "%" PRId64, l->when);
    arg_str(&a, op->key);
    arg_str(&a, l->open ? "1" : "0");
    arg_str(&a, when);
    arg_num(&a, 0, (long long)l->source);
    long long recheck = (*rs->cfg)->cache_recheck_after_s * 1000;
    arg_num(&a, 1, recheck > 0 ? recheck : 0);
    return op_start(op, RS_WIN_LEARN, 1, &a);
}

static struct state_op *
rs_cache_learn(struct state *st, const struct state_answer *sa,
               state_done_cb cb, void *arg)
{
    struct learn_lesson l;
    if (!learn_extract(sa->route, sa->sender, sa->phone, sa->status, sa->body,
                       sa->len, &l)) {
        if (cb)
            cb(arg, STATE_OK); /* nothing to learn: nothing to ask */
        return NULL;
    }
    return learn_send(rs_of(st), OP_LEARN, sa->sender, sa->phone, &l, cb, arg);
}

static struct state_op *
rs_cache_open(struct state *st, int64_t sender, uint64_t phone,
              int64_t expires_at, int64_t for_ms, state_done_cb cb, void *arg)
{
    /* for_ms is sent as "+N": Redis's TIME, not this gateway's clock */
    struct learn_lesson l = {1, expires_at, for_ms > 0 ? for_ms : 0,
                             CACHE_SRC_INBOUND};
    return learn_send(rs_of(st), OP_OPEN, sender, phone, &l, cb, arg);
}

static struct state_op *
rs_cache_forget(struct state *st, int64_t sender, uint64_t phone,
                state_done_cb cb, void *arg)
{
    struct redis_state *rs = rs_of(st);
    struct state_op *op = op_new(rs, OP_FORGET, (void *)cb, arg);
    op->key = win_key(rs, sender, phone);
    struct args a = {0};
    arg_str(&a, op->key);
    return op_start(op, RS_WIN_FORGET, 1, &a);
}

/* ---- learned refusals ---- */

/* The three keys every ref_ script is given (ref_decide.lua and the
 * others): the sender's entry (ref:s:0, never touched, for an unknown
 * sender), the balance, the index. */
struct ref_keys {
    char *sender, *balance, *index;
};

static void
ref_keys_init(const struct redis_state *rs, int64_t sender, struct ref_keys *k)
{
    k->sender = key_of(rs, "ref:s:%" PRId64, sender >= 1 ? sender : 0);
    k->balance = key_of(rs, "ref:balance");
    k->index = key_of(rs, "ref:s");
}

static void
ref_keys_free(struct ref_keys *k)
{
    free(k->sender);
    free(k->balance);
    free(k->index);
}

static void
ref_keys_args(const struct ref_keys *k, struct args *a)
{
    arg_str(a, k->sender);
    arg_str(a, k->balance);
    arg_str(a, k->index);
}

static long long
ref_trust(const struct refusal_trust *t, enum refusal_kind k)
{
    return t->ms[k] > 0 ? (long long)t->ms[k] : 0;
}

static int
ref_send_route(enum route_id route)
{
    return route == ROUTE_SEND_FREEFORM || route == ROUTE_SEND;
}

/* The store could not be asked (st not RLINK_OK), or its reply did not
 * decode: counted. */
static void
ref_unavailable(struct state_op *op, enum rlink_status st)
{
    op->rs->stats.refusal_unavailable++;
    if (st == RLINK_OK)
        op->rs->stats.corrupt++;
}

/* The entries count a reply ends with (the prelude's ref_count). */
static void
ref_entries(struct redis_state *rs, const redisReply *last)
{
    if (last->type == REDIS_REPLY_INTEGER && last->integer >= 0)
        rs->stats.refusal_entries = last->integer;
}

/* {n, entries} (ref_learn.lua, ref_senders.lua, ref_forget.lua): 0 and
 * n in *n, or -1 when the reply is not that. */
static int
ref_read_pair(struct redis_state *rs, const redisReply *r, long long *n)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        reply_int(r->element[0], n) != 0 ||
        r->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    ref_entries(rs, r->element[1]);
    return 0;
}

/* {code, kind, body, entries} (ref_decide.lua) into d, checked: a kind the
 * sender asked cannot have (a sender kind for an unknown sender), a body
 * too long, or a code or kind out of range is not a reply. */
static int
ref_read_decision(struct state_op *op, const redisReply *r,
                  struct state_refusal *d)
{
    long long code, kind, mark = 0, was = 0;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY ||
        (r->elements != 4 && r->elements != 6) ||
        reply_int(r->element[0], &code) != 0 ||
        reply_int(r->element[1], &kind) != 0 ||
        r->element[2]->type != REDIS_REPLY_STRING ||
        r->element[3]->type != REDIS_REPLY_INTEGER)
        return -1;
    if (code == 0) {
        *d = (struct state_refusal){STATE_OK, REFUSAL_FORWARD, {0}};
        ref_entries(op->rs, r->element[3]);
        return 0;
    }
    const redisReply *body = r->element[2];
    /* a probe carries its mark and the checked_at it replaced */
    if ((code == 2) != (r->elements == 6) ||
        (code == 2 && (reply_int(r->element[4], &mark) != 0 ||
                       reply_int(r->element[5], &was) != 0 || was > mark)))
        return -1;
    if ((code != 1 && code != 2) || kind < 0 || kind >= REFUSAL_KINDS ||
        (kind != REFUSAL_BALANCE && op->sender < 1) ||
        body->len > REFUSAL_BODY_MAX)
        return -1;
    enum refusal_kind k = (enum refusal_kind)kind;
    d->status = STATE_OK;
    d->decision = code == 1 ? REFUSAL_ANSWER : REFUSAL_PROBE;
    /* on a probe too: which kind is probed (the body is the answer's) */
    d->answer = (struct refusal_answer){k, refusal_status(k, op->route), "",
                                        0, mark, was};
    if (code == 1) {
        /* the op's copy: valid during cb, whatever the reply does */
        op->blob = xmalloc(body->len + 1);
        memcpy(op->blob, body->str, body->len);
        op->blob[body->len] = '\0';
        op->blen = body->len;
        d->answer.body = op->blob;
        d->answer.len = op->blen;
    }
    ref_entries(op->rs, r->element[3]);
    return 0;
}

static void
ref_decide_answered(struct state_op *op, enum rlink_status st,
                    const redisReply *r)
{
    struct state_refusal d = {STATE_UNAVAILABLE, REFUSAL_FORWARD, {0}};
    if (st != RLINK_OK || ref_read_decision(op, r, &d) != 0) {
        d = (struct state_refusal){STATE_UNAVAILABLE, REFUSAL_FORWARD, {0}};
        ref_unavailable(op, st);
    }
    if (op->waits)
        op->cb.refusal(op->arg, &d);
}

static struct state_op *
rs_refusal_decide(struct state *st, enum route_id route, int64_t sender,
                  const struct refusal_trust *t, state_refusal_cb cb, void *arg)
{
    struct redis_state *rs = rs_of(st);
    long long ms[REFUSAL_KINDS], any = 0;
    for (int k = 0; k < REFUSAL_KINDS; k++)
        any |= ms[k] = ref_trust(t, (enum refusal_kind)k);
    if (!ref_send_route(route) || any == 0) {
        /* nothing could answer or be probed: nothing to ask */
        struct state_refusal d = {STATE_OK, REFUSAL_FORWARD, {0}};
        cb(arg, &d);
        return NULL;
    }
    struct state_op *op = op_new(rs, OP_REF_DECIDE, (void *)cb, arg);
    op->route = route;
    op->sender = sender >= 1 ? sender : 0;
    struct ref_keys k;
    ref_keys_init(rs, op->sender, &k);
    struct args a = {0};
    ref_keys_args(&k, &a);
    arg_num(&a, 0, (long long)op->sender);
    for (int i = 0; i < REFUSAL_KINDS; i++)
        arg_num(&a, 1 + i, ms[i]);
    struct state_op *pending = op_start(op, RS_REF_DECIDE, 3, &a);
    ref_keys_free(&k); /* copied by the link */
    return pending;
}

static void
ref_learn_answered(struct state_op *op, enum rlink_status st,
                   const redisReply *r)
{
    long long n;
    enum state_status s = STATE_OK;
    /* a learn not answered may have run, or not: nothing else to do */
    if (st != RLINK_OK || ref_read_pair(op->rs, r, &n) != 0) {
        ref_unavailable(op, st);
        s = STATE_UNAVAILABLE;
    }
    if (op->waits)
        op->cb.done(op->arg, s);
}

static struct state_op *
ref_nothing(state_done_cb cb, void *arg)
{
    if (cb)
        cb(arg, STATE_OK); /* nothing to learn: nothing to ask */
    return NULL;
}

/* A senders list's lessons (ref_senders.lua), one per listed sender. */
struct ref_lessons {
    struct ref_lesson {
        int64_t sender;
        char what; /* 'c' online, 'o' offline, 'n' listed */
    } *v;
    size_t n, cap;
    int all, offline_on;
};

/* refusals.c's senders_cb, as lessons for the script to apply. */
static void
ref_lesson_cb(void *arg, int64_t sender, int online)
{
    struct ref_lessons *ls = arg;
    if (ls->n == ls->cap) {
        ls->cap = ls->cap ? 2 * ls->cap : 16;
        ls->v = xrealloc(ls->v, ls->cap * sizeof(*ls->v));
    }
    char what = online ? 'c' : ls->all && ls->offline_on ? 'o' : 'n';
    ls->v[ls->n++] = (struct ref_lesson){sender, what};
}

/* ref_senders.lua: KEYS the balance, the index and each listed sender's
 * entry; ARGV the offline trust, the body a list teaches, the lessons. */
static struct state_op *
ref_send_lessons(struct redis_state *rs, const struct ref_lessons *ls,
                 long long offline_ms, state_done_cb cb, void *arg)
{
    int argc = (int)(4 + 2 * ls->n), nkeys = (int)(2 + ls->n);
    const char **v = xcalloc((size_t)argc, sizeof(*v));
    size_t *len = xcalloc((size_t)argc, sizeof(*len));
    char **owned = xcalloc((size_t)argc, sizeof(*owned));
    char trust[24];
    snprintf(trust, sizeof(trust), "%lld", offline_ms);
    owned[0] = key_of(rs, "ref:balance");
    owned[1] = key_of(rs, "ref:s");
    for (size_t i = 0; i < ls->n; i++) {
        owned[2 + i] = key_of(rs, "ref:s:%" PRId64, ls->v[i].sender);
        owned[4 + ls->n + i] = xmalloc(24);
        snprintf(owned[4 + ls->n + i], 24, "%c%" PRId64, ls->v[i].what,
                 ls->v[i].sender);
    }
    for (int i = 0; i < argc; i++) {
        v[i] = owned[i];
        len[i] = owned[i] ? strlen(owned[i]) : 0;
    }
    v[nkeys] = trust;
    len[nkeys] = strlen(trust);
    v[nkeys + 1] = REFUSAL_OFFLINE_BODY;
    len[nkeys + 1] = sizeof(REFUSAL_OFFLINE_BODY) - 1;
    struct state_op *op = op_new(rs, OP_REF_LEARN, (void *)cb, arg);
    struct state_op *pending =
        op_send_argv(op, RS_REF_SENDERS, nkeys, argc, v, len) && op->waits
            ? op
            : NULL;
    for (int i = 0; i < argc; i++)
        free(owned[i]); /* copied by the link */
    free(owned);
    free(len);
    free(v);
    return pending;
}

/* A senders list (GET senders, 200): refusals.h's
 * refusals_learn_senders(), in Redis. */
static struct state_op *
ref_learn_senders(struct redis_state *rs, const struct state_answer *sa,
                  const struct refusal_trust *t, state_done_cb cb, void *arg)
{
    long long offline_ms = ref_trust(t, REFUSAL_SENDER_OFFLINE);
    struct ref_lessons ls = {NULL, 0, 0, sa->senders_all, offline_ms > 0};
    if (sa->status != 200 ||
        refusal_senders_extract(sa->body, sa->len, ref_lesson_cb, &ls) <= 0) {
        free(ls.v);
        return ref_nothing(cb, arg);
    }
    struct state_op *pending = ref_send_lessons(rs, &ls, offline_ms, cb, arg);
    free(ls.v);
    return pending;
}

static struct state_op *
rs_refusal_learn(struct state *st, const struct state_answer *sa,
                 const struct refusal_trust *t, state_done_cb cb, void *arg)
{
    struct redis_state *rs = rs_of(st);
    if (sa->route == ROUTE_SENDERS)
        return ref_learn_senders(rs, sa, t, cb, arg);
    struct refusal_lesson l;
    refusal_extract(sa->route, sa->status, sa->body, sa->len, &l);
    int put = l.op == REFUSAL_TEACHES_REFUSAL;
    if (l.op == REFUSAL_TEACHES_NOTHING ||
        (put && (ref_trust(t, l.kind) == 0 ||
                 (l.kind != REFUSAL_BALANCE && sa->sender < 1))))
        return ref_nothing(cb, arg); /* off, or of nobody: learns nothing */
    int64_t sender = sa->sender >= 1 ? (int64_t)sa->sender : 0;
    struct state_op *op = op_new(rs, OP_REF_LEARN, (void *)cb, arg);
    struct ref_keys k;
    ref_keys_init(rs, sender, &k);
    struct args a = {0};
    ref_keys_args(&k, &a);
    arg_str(&a, put ? "put" : "clear");
    arg_num(&a, 0, (long long)sender);
    arg_str(&a, put ? refusal_kind_name(l.kind) : "");
    arg_bytes(&a, put ? l.body : "", put ? l.len : 0);
    arg_num(&a, 1, put ? ref_trust(t, l.kind) : 0);
    struct state_op *pending = op_start(op, RS_REF_LEARN, 3, &a);
    ref_keys_free(&k);
    return pending;
}

/* One entry of ref_list.lua's reply, {kind, sender, learned_at,
 * checked_at}, into v as read at now with t. 0, or -1 when it is not
 * one. */
static int
ref_read_view(const redisReply *e, int64_t now, const struct refusal_trust *t,
              struct refusal_view *v)
{
    long long kind, learned, checked, sender;
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 4 ||
        reply_int(e->element[0], &kind) != 0 ||
        e->element[1]->type != REDIS_REPLY_STRING ||
        parse_ll(e->element[1]->str, e->element[1]->len, &sender) != 0 ||
        reply_int(e->element[2], &learned) != 0 ||
        reply_int(e->element[3], &checked) != 0)
        return -1;
    if (kind < 0 || kind >= REFUSAL_KINDS || sender < 0 ||
        (kind == REFUSAL_BALANCE) != (sender == 0))
        return -1;
    int64_t ms = ref_trust(t, (enum refusal_kind)kind);
    *v = (struct refusal_view){
        .kind = (enum refusal_kind)kind,
        .sender = sender,
        .learned_at = learned,
        .checked_at = checked,
        .trusted_until = checked > INT64_MAX - ms ? INT64_MAX : checked + ms,
    };
    v->trusted = ms > 0 && now < v->trusted_until;
    return 0;
}

/* The whole reply checked first: a list is given whole or not at all. */
static int
ref_read_list(const redisReply *r, int64_t *now)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER)
        return -1;
    *now = r->element[0]->integer;
    struct refusal_trust any = {{0}};
    struct refusal_view v;
    for (size_t i = 1; i < r->elements; i++)
        if (ref_read_view(r->element[i], *now, &any, &v) != 0)
            return -1;
    return 0;
}

static void
ref_list_answered(struct state_op *op, enum rlink_status st,
                  const redisReply *r)
{
    int64_t now;
    if (st != RLINK_OK || ref_read_list(r, &now) != 0) {
        ref_unavailable(op, st);
        if (op->waits)
            op->cb.refusal_view(op->arg, STATE_UNAVAILABLE, NULL);
        return;
    }
    op->rs->stats.refusal_entries = (int64_t)r->elements - 1;
    op->answering = 1; /* a cancel from cb stops the list, frees nothing */
    for (size_t i = 1; i < r->elements && op->waits; i++) {
        struct refusal_view v;
        ref_read_view(r->element[i], now, &op->trust, &v);
        op->cb.refusal_view(op->arg, STATE_OK, &v);
    }
    if (op->waits)
        op->cb.refusal_view(op->arg, STATE_OK, NULL);
}

static struct state_op *
rs_refusal_list(struct state *st, const struct refusal_trust *t,
                state_refusal_view_cb cb, void *arg)
{
    struct redis_state *rs = rs_of(st);
    struct state_op *op = op_new(rs, OP_REF_LIST, (void *)cb, arg);
    op->trust = *t;
    struct ref_keys k;
    ref_keys_init(rs, 0, &k);
    struct args a = {0};
    arg_str(&a, k.balance);
    arg_str(&a, k.index);
    struct state_op *pending = op_start(op, RS_REF_LIST, 2, &a);
    ref_keys_free(&k);
    return pending;
}

static void
ref_forget_answered(struct state_op *op, enum rlink_status st,
                    const redisReply *r)
{
    long long found = 0;
    enum state_status s = STATE_OK;
    if (st != RLINK_OK || ref_read_pair(op->rs, r, &found) != 0 ||
        (found != 0 && found != 1)) {
        ref_unavailable(op, st);
        s = STATE_UNAVAILABLE;
        found = 0;
    }
    if (op->waits)
        op->cb.found(op->arg, s, (int)found);
}

static void
ref_unprobe_answered(struct state_op *op, enum rlink_status st,
                     const redisReply *r)
{
    long long n;
    enum state_status s = STATE_OK;
    if (st != RLINK_OK || reply_int(r, &n) != 0 || (n != 0 && n != 1)) {
        ref_unavailable(op, st); /* the next probe waits for the period */
        s = STATE_UNAVAILABLE;
    }
    if (op->waits)
        op->cb.done(op->arg, s);
}

static struct state_op *
rs_refusal_unprobe(struct state *st, int64_t sender,
                   const struct refusal_answer *p, state_done_cb cb, void *arg)
{
    struct redis_state *rs = rs_of(st);
    int balance = p->kind == REFUSAL_BALANCE;
    if ((unsigned)p->kind >= REFUSAL_KINDS || (!balance && sender < 1))
        return ref_nothing(cb, arg);
    struct state_op *op = op_new(rs, OP_REF_UNPROBE, (void *)cb, arg);
    op->sender = balance ? 0 : sender;
    struct ref_keys k;
    ref_keys_init(rs, op->sender, &k);
    struct args a = {0};
    arg_str(&a, balance ? k.balance : k.sender);
    arg_num(&a, 0, (long long)p->kind);
    arg_num(&a, 1, (long long)p->probed_at);
    arg_num(&a, 2, (long long)p->was_checked_at);
    struct state_op *pending = op_start(op, RS_REF_UNPROBE, 1, &a);
    ref_keys_free(&k);
    return pending;
}

static struct state_op *
rs_refusal_forget(struct state *st, int64_t sender, state_found_cb cb,
                  void *arg)
{
    struct redis_state *rs = rs_of(st);
    struct state_op *op = op_new(rs, OP_REF_FORGET, (void *)cb, arg);
    op->sender = sender >= 1 ? sender : 0;
    struct ref_keys k;
    ref_keys_init(rs, op->sender, &k);
    struct args a = {0};
    ref_keys_args(&k, &a);
    arg_num(&a, 0, (long long)op->sender);
    struct state_op *pending = op_start(op, RS_REF_FORGET, 3, &a);
    ref_keys_free(&k);
    return pending;
}

/* ---- the link's answers ---- */

static void
on_reply(void *arg, enum rlink_status st, const redisReply *r)
{
    struct state_op *op = arg;
    op->cmd = NULL;
    switch (op->kind) {
    case OP_BEGIN:
        begin_answered(op, st, r);
        break;
    case OP_DECIDE:
        switch (decide_answered(op, st, r)) {
        case 1:
            return; /* the probe is on its way: op goes on */
        case -1:
            return; /* the probe answered within its call: op is gone */
        default:
            break;
        }
        break;
    case OP_GET:
        get_answered(op, st, r);
        break;
    case OP_REF_DECIDE:
        ref_decide_answered(op, st, r);
        break;
    case OP_REF_LEARN:
        ref_learn_answered(op, st, r);
        break;
    case OP_REF_LIST:
        ref_list_answered(op, st, r);
        break;
    case OP_REF_FORGET:
        ref_forget_answered(op, st, r);
        break;
    case OP_REF_UNPROBE:
        ref_unprobe_answered(op, st, r);
        break;
    default:
        done_answered(op, st, r);
        break;
    }
    op_end(op);
}

/* ---- every operation ---- */

static void
rs_cancel(struct state *st, struct state_op *op)
{
    struct redis_state *rs = rs_of(st);
    op->waits = 0;
    op->arg = NULL;
    if (op->kind == OP_BEGIN)
        return; /* its reply may be a claim, to free: wait for it */
    if (op->answering)
        return; /* from its own callback: the reply's loop ends it */
    if (op->cmd != NULL)
        rlink_cancel(rs->link, op->cmd); /* it may still run in Redis */
    op_end(op);
}

static void
rs_flush(struct state *st, void (*done)(void *arg), void *arg)
{
    /* the finishes waiting to be sent again go now, if they can; bounded
     * by the link's timeout on each command */
    retry_fire(rs_of(st));
    rlink_when_idle(rs_of(st)->link, done, arg);
}

static void
rs_stats(const struct state *st, struct state_stats *s)
{
    *s = ((const struct redis_state *)st)->stats;
}

static void
rs_free(struct state *st)
{
    struct redis_state *rs = rs_of(st);
    struct state_op *op;
    while ((op = TAILQ_FIRST(&rs->ops)) != NULL) {
        if (op->cmd != NULL)
            rlink_cancel(rs->link, op->cmd);
        op_end(op);
    }
    while (!TAILQ_EMPTY(&rs->retries))
        retry_free(rs, TAILQ_FIRST(&rs->retries));
    event_free(rs->retry_timer);
    state_unknown_free(&rs->unknown);
    free(rs->key_base);
    free(rs);
}

static const struct state_backend redis_backend = {
    .idem_begin = rs_idem_begin,
    .idem_sent = rs_idem_sent,
    .idem_finish = rs_idem_finish,
    .claim_drop = rs_claim_drop,
    .cache_decide = rs_cache_decide,
    .cache_learn = rs_cache_learn,
    .cache_get = rs_cache_get,
    .cache_forget = rs_cache_forget,
    .cache_open = rs_cache_open,
    .refusal_decide = rs_refusal_decide,
    .refusal_learn = rs_refusal_learn,
    .refusal_list = rs_refusal_list,
    .refusal_forget = rs_refusal_forget,
    .refusal_unprobe = rs_refusal_unprobe,
    .cancel = rs_cancel,
    .flush = rs_flush,
    .stats = rs_stats,
    .free = rs_free,
};

struct state *
state_redis_new(struct event_base *base, struct rlink *link,
                const char *key_base, const struct config *const *cfg)
{
    struct redis_state *rs = xcalloc(1, sizeof(*rs));
    rs->st.be = &redis_backend;
    rs->base = base;
    rs->link = link;
    rs->key_base = xstrdup(key_base);
    rs->cfg = cfg;
    rs->stats.refusal_entries = -1; /* until a reply says */
    TAILQ_INIT(&rs->ops);
    TAILQ_INIT(&rs->retries);
    rs->retry_timer =
        alloc_check(evtimer_new(base, retry_cb, rs), "evtimer_new");
    state_unknown_init(&rs->unknown);
    return &rs->st;
}
