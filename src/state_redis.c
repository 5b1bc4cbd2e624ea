/* state_redis.c - the Redis backend of state.h (SPEC section 11):
 * idempotency keys and the session windows shared by every gateway of
 * one account, over one link (redis_link.h), one Lua script per decision
 * (src/redis/NAME.lua: each script's header is its contract).
 *
 * Keys, below key_base ("<prefix>{<account>}:"):
 *   idem:<hex SHA-256 of caller "\n" key>   a key's record (idem_begin.lua)
 *   fence                                   the fencing counter
 *   win:<sender>:<phone key>                a window (win_learn.lua)
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
    } cb;
    void *arg;
    struct rlink_cmd *cmd; /* pending on the link; NULL within its call */
    char *key;             /* begin, finish: the record; decide: the window */
    int64_t recheck_ms;    /* decide, get */
    int probing;           /* decide: the compare-and-set is pending */
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

/* Up to 6 arguments, each a C string unless lens says otherwise. */
struct args {
    const char *v[6];
    size_t len[6];
    char num[4][24];
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
op_send(struct state_op *op, enum redis_script script, int nkeys,
        const struct args *a)
{
    struct redis_state *rs = op->rs;
    TAILQ_INSERT_TAIL(&rs->ops, op, link);
    op->cmd = NULL;
    struct rlink_cmd *c = rlink_eval(rs->link, (size_t)script, nkeys, a->n,
                                     a->v, a->len, on_reply, op);
    if (c == NULL)
        return 0;
    op->cmd = c;
    return 1;
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
    TAILQ_INIT(&rs->ops);
    TAILQ_INIT(&rs->retries);
    rs->retry_timer =
        alloc_check(evtimer_new(base, retry_cb, rs), "evtimer_new");
    state_unknown_init(&rs->unknown);
    return &rs->st;
}
