/* refusals.c - see refusals.h.
 *
 * Layout: the sender entries live in one array addressed by uint32 index
 * (NIL ends every list); it grows by doubling up to max_entries, so that
 * an account with a handful of senders holds a handful of kilobytes.
 * Slots [0, used) have been handed out; a freed slot goes on a free list
 * linked through hnext. A hash index of uint32 chain heads (a power of
 * two of them, at least one per slot) finds a sender in O(1) expected.
 * The balance is one more entry, held outside the array.
 *
 * Eviction wants the entry whose trust ends first, and the trust periods
 * are given at each call. Within one kind every entry has the same
 * period, so the order by checked_at is the order by end of trust: each
 * sender kind keeps its entries in a doubly linked list ascending by
 * checked_at (ties in the order they were placed), and the victim is the
 * earlier-ending of the two heads. Entries are placed at "now", so the
 * sorted insert walking from the tail is O(1) but for a clock that went
 * back or a refusals_put of an old lesson. */
#include "refusals.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hash.h"
#include "json_strict.h"

#define NIL UINT32_MAX
#define MAX_SLOTS (UINT32_MAX - 1)
#define INITIAL_SLOTS 16
/* A senders list larger than this is not read (as learn.c bounds the
 * answers it parses): parsing it would hold the event loop. */
#define SENDERS_LIST_MAX (1u << 20)
#define SENDER_KINDS 2 /* offline, not found: the kinds a sender can hold */

struct refusal_entry {
    int64_t sender; /* 0: the balance */
    int64_t learned_at;
    int64_t checked_at;  /* learned_at, or the last probe */
    uint32_t hnext;      /* hash chain; on the free list: next free slot */
    uint32_t prev, next; /* the kind's list, ascending checked_at */
    uint16_t len;
    uint8_t kind; /* enum refusal_kind */
    char body[REFUSAL_BODY_MAX];
};

struct refusals {
    struct refusal_entry *e;
    uint32_t cap;  /* slots allocated; never above max */
    uint32_t used; /* slots [0, used) have been handed out */
    uint32_t count;
    uint32_t max;
    uint32_t free_head;
    uint32_t head[SENDER_KINDS], tail[SENDER_KINDS];
    uint32_t *buckets;
    uint64_t mask; /* number of buckets - 1 */
    struct refusal_entry balance;
    int has_balance;
    /* The periods of the last call that gave some: refusals_put has none
     * of its own and still has to choose a victim when full. */
    struct refusal_trust last;
    uint64_t answers[REFUSAL_KINDS], probes[REFUSAL_KINDS];
    uint64_t learned[REFUSAL_KINDS];
    uint64_t cleared, evictions;
};

/* ---- names and statuses ---- */

static const char *const reasons[REFUSAL_KINDS] = {
    "sender_offline", "sender_not_found", "insufficient_balance"};
static const char *const codes[REFUSAL_KINDS] = {
    "SENDER_OFFLINE", "SENDER_NOT_FOUND", "INSUFFICIENT_BALANCE"};
static const char *const kind_names[REFUSAL_KINDS] = {
    "sender_offline", "sender_not_found", "balance"};

static int
kind_ok(enum refusal_kind k)
{
    return (unsigned)k < (unsigned)REFUSAL_KINDS;
}

const char *
refusal_reason(enum refusal_kind k)
{
    return kind_ok(k) ? reasons[k] : "unknown";
}

const char *
refusal_code(enum refusal_kind k)
{
    return kind_ok(k) ? codes[k] : "UNKNOWN";
}

const char *
refusal_kind_name(enum refusal_kind k)
{
    return kind_ok(k) ? kind_names[k] : "unknown";
}

int
refusal_kind_parse(const char *name)
{
    for (int k = 0; name != NULL && k < REFUSAL_KINDS; k++)
        if (strcmp(name, kind_names[k]) == 0)
            return k;
    return -1;
}

int
refusal_status(enum refusal_kind k, enum route_id route)
{
    switch (k) {
    case REFUSAL_SENDER_OFFLINE:
        /* the template route says 422 where send-freeform says 503 */
        return route == ROUTE_SEND ? 422 : 503;
    case REFUSAL_SENDER_NOT_FOUND:
        return 404;
    case REFUSAL_BALANCE:
        return 402;
    default:
        return 0;
    }
}

/* ---- what an answer teaches ---- */

static int
is_send_route(enum route_id route)
{
    return route == ROUTE_SEND_FREEFORM || route == ROUTE_SEND;
}

/* A string member equal to s, byte for byte (json-c strings may hold a
 * NUL: compare lengths, not C strings). */
static int
string_member_is(json_object *o, const char *name, const char *s)
{
    json_object *v;
    size_t n = strlen(s);
    return json_object_object_get_ex(o, name, &v) &&
           json_object_is_type(v, json_type_string) &&
           (size_t)json_object_get_string_len(v) == n &&
           memcmp(json_object_get_string(v), s, n) == 0;
}

/* 1 when body is one strict JSON object (json_strict_scan: no key twice
 * at any depth, UTF-8 only, nothing after it). An answer that is not
 * teaches nothing: json-c keeps the last of two "error_code"s where
 * another reader may keep the first, and a body replayed as the
 * upstream's words must be words every reader reads alike. */
static int
strictly_one_object(const char *body, size_t len)
{
    char stack_scratch[REFUSAL_BODY_MAX];
    char *scratch = len <= sizeof(stack_scratch) ? stack_scratch : malloc(len);
    if (scratch == NULL)
        return 0; /* no room to check: learn nothing rather than guess */
    enum json_strict_verdict v = json_strict_scan(body, len, scratch, NULL, NULL);
    if (scratch != stack_scratch)
        free(scratch);
    return v == JSON_STRICT_OK;
}

/* The kind whose error_code the answer carries, or -1. */
static int
code_kind(json_object *root)
{
    for (int k = 0; root != NULL && k < REFUSAL_KINDS; k++)
        if (string_member_is(root, "error_code", codes[k]))
            return k;
    return -1;
}

int
refusal_extract(enum route_id route, int status, const char *body, size_t len,
                struct refusal_lesson *l)
{
    *l = (struct refusal_lesson){REFUSAL_TEACHES_NOTHING, 0, NULL, 0};
    if (!is_send_route(route))
        return l->op;
    if (status >= 200 && status <= 299) {
        /* the upstream took the send: its body cannot make that less so */
        l->op = REFUSAL_TEACHES_CLEAR;
        return l->op;
    }
    if (len == 0 || len > REFUSAL_BODY_MAX)
        return l->op; /* too long to keep: replaying a part would lie */
    if (!strictly_one_object(body, len))
        return l->op;
    json_object *root = json_strict_parse_object(body, len, JSON_STRICT_ANSWER);
    int k = code_kind(root);
    json_object_put(root);
    /* the code alone is not enough: a 422 SENDER_OFFLINE on send-freeform
     * is not what that route says, so it is not the refusal we know */
    if (k < 0 || refusal_status((enum refusal_kind)k, route) != status)
        return l->op;
    *l = (struct refusal_lesson){REFUSAL_TEACHES_REFUSAL, (enum refusal_kind)k,
                                 body, len};
    return l->op;
}

/* One element of a senders list: 1 and its id and whether it is online,
 * or 0 when it is not an object with an integer id >= 1 and a string
 * status. */
static int
sender_entry(json_object *el, int64_t *id, int *online)
{
    json_object *v;
    if (!json_object_is_type(el, json_type_object) ||
        !json_object_object_get_ex(el, "id", &v) ||
        !json_object_is_type(v, json_type_int))
        return 0;
    *id = json_object_get_int64(v);
    if (*id < 1 || *id == INT64_MAX) /* INT64_MAX: json-c's clamp */
        return 0;
    if (!json_object_object_get_ex(el, "status", &v) ||
        !json_object_is_type(v, json_type_string))
        return 0;
    *online = string_member_is(el, "status", "online");
    return 1;
}

int
refusal_senders_extract(const char *body, size_t len, refusal_sender_cb cb,
                        void *arg)
{
    json_object *data;
    if (len == 0 || len > SENDERS_LIST_MAX || !strictly_one_object(body, len))
        return -1;
    json_object *root = json_strict_parse_object(body, len, JSON_STRICT_ANSWER);
    if (root == NULL || !json_object_object_get_ex(root, "data", &data) ||
        !json_object_is_type(data, json_type_array)) {
        json_object_put(root);
        return -1;
    }
    int seen = 0;
    size_t n = json_object_array_length(data);
    for (size_t i = 0; i < n && seen < INT32_MAX; i++) {
        int64_t id;
        int online;
        if (!sender_entry(json_object_array_get_idx(data, i), &id, &online))
            continue; /* a malformed element teaches nothing of anyone */
        if (cb != NULL)
            cb(arg, id, online);
        seen++;
    }
    json_object_put(root);
    return seen;
}

/* ---- trust ---- */

static int64_t
trust_ms(const struct refusal_trust *t, enum refusal_kind k)
{
    return t->ms[k] > 0 ? t->ms[k] : 0;
}

static int64_t
trust_end(const struct refusal_entry *x, const struct refusal_trust *t)
{
    int64_t ms = trust_ms(t, (enum refusal_kind)x->kind);
    return x->checked_at > INT64_MAX - ms ? INT64_MAX : x->checked_at + ms;
}

enum judgement { J_NONE, J_TRUSTED, J_EXPIRED };

/* J_NONE for no entry or a kind turned off: such an entry neither answers
 * nor asks for a probe. */
static enum judgement
judge(const struct refusal_entry *x, int64_t now, const struct refusal_trust *t)
{
    if (x == NULL || trust_ms(t, (enum refusal_kind)x->kind) == 0)
        return J_NONE;
    return now < trust_end(x, t) ? J_TRUSTED : J_EXPIRED;
}

/* ---- the hash index ---- */

static inline uint32_t
bucket_of(const struct refusals *r, int64_t sender)
{
    return (uint32_t)(hash_mix64((uint64_t)sender) & r->mask);
}

static uint32_t
find(const struct refusals *r, int64_t sender)
{
    uint32_t i = r->buckets[bucket_of(r, sender)];
    while (i != NIL && r->e[i].sender != sender)
        i = r->e[i].hnext;
    return i;
}

static void
hash_insert(struct refusals *r, uint32_t i)
{
    uint32_t b = bucket_of(r, r->e[i].sender);
    r->e[i].hnext = r->buckets[b];
    r->buckets[b] = i;
}

static void
hash_remove(struct refusals *r, uint32_t i)
{
    uint32_t *p = &r->buckets[bucket_of(r, r->e[i].sender)];
    while (*p != i)
        p = &r->e[*p].hnext;
    *p = r->e[i].hnext;
}

/* Replaces the index with one of at least n buckets, then re-links every
 * live entry (they are all on one of the kind lists). */
static void
hash_rebuild(struct refusals *r, uint64_t n)
{
    uint64_t nb = 1;
    while (nb < n)
        nb <<= 1;
    free(r->buckets);
    r->buckets = xmalloc((size_t)nb * sizeof(*r->buckets));
    memset(r->buckets, 0xff, (size_t)nb * sizeof(*r->buckets)); /* NIL */
    r->mask = nb - 1;
    for (int k = 0; k < SENDER_KINDS; k++)
        for (uint32_t i = r->head[k]; i != NIL; i = r->e[i].next)
            hash_insert(r, i);
}

/* ---- the kind lists, ascending checked_at ---- */

static void
order_unlink(struct refusals *r, uint32_t i)
{
    struct refusal_entry *x = &r->e[i];
    if (x->prev != NIL)
        r->e[x->prev].next = x->next;
    else
        r->head[x->kind] = x->next;
    if (x->next != NIL)
        r->e[x->next].prev = x->prev;
    else
        r->tail[x->kind] = x->prev;
}

/* After every entry checked no later than it, so equal times keep the
 * order they were placed in. */
static void
order_insert(struct refusals *r, uint32_t i)
{
    struct refusal_entry *x = &r->e[i];
    uint32_t after = r->tail[x->kind];
    while (after != NIL && r->e[after].checked_at > x->checked_at)
        after = r->e[after].prev;
    x->prev = after;
    x->next = after == NIL ? r->head[x->kind] : r->e[after].next;
    if (x->prev != NIL)
        r->e[x->prev].next = i;
    else
        r->head[x->kind] = i;
    if (x->next != NIL)
        r->e[x->next].prev = i;
    else
        r->tail[x->kind] = i;
}

/* ---- slots ---- */

/* Unlinks entry i from the index and its list; the slot is not freed. */
static void
detach(struct refusals *r, uint32_t i)
{
    hash_remove(r, i);
    order_unlink(r, i);
    r->count--;
}

static void
release(struct refusals *r, uint32_t i)
{
    detach(r, i);
    r->e[i].hnext = r->free_head;
    r->free_head = i;
}

/* The entry whose trust ends first: the earlier of the two list heads
 * (a tie goes to "offline", the shorter-lived kind by default). */
static uint32_t
victim(const struct refusals *r, const struct refusal_trust *t)
{
    uint32_t a = r->head[REFUSAL_SENDER_OFFLINE];
    uint32_t b = r->head[REFUSAL_SENDER_NOT_FOUND];
    if (a == NIL || b == NIL)
        return a == NIL ? b : a;
    return trust_end(&r->e[b], t) < trust_end(&r->e[a], t) ? b : a;
}

static void
grow(struct refusals *r)
{
    uint64_t ncap = (uint64_t)r->cap * 2;
    if (ncap > r->max)
        ncap = r->max;
    r->e = xrealloc(r->e, (size_t)ncap * sizeof(*r->e));
    r->cap = (uint32_t)ncap;
    if (ncap > r->mask + 1)
        hash_rebuild(r, ncap);
}

/* A slot for a new sender's entry, evicting one if the store is full.
 * May move the array: no entry pointer survives it. */
static uint32_t
slot_alloc(struct refusals *r, const struct refusal_trust *t)
{
    uint32_t i;
    if (r->count >= r->max) {
        i = victim(r, t);
        detach(r, i);
        r->evictions++;
        return i;
    }
    if (r->free_head != NIL) {
        i = r->free_head;
        r->free_head = r->e[i].hnext;
        return i;
    }
    if (r->used == r->cap)
        grow(r);
    return r->used++;
}

static uint32_t
clamp_max(size_t max_entries)
{
    size_t lim = SIZE_MAX / sizeof(struct refusal_entry);
    if (lim > MAX_SLOTS)
        lim = MAX_SLOTS;
    return (uint32_t)(max_entries > lim ? lim : max_entries);
}

/* ---- putting and clearing entries ---- */

/* Sets x to kind k learned at `at`; body NULL keeps the one it holds. */
static void
fill(struct refusal_entry *x, enum refusal_kind k, const char *body, size_t len,
     int64_t at)
{
    x->kind = (uint8_t)k;
    x->learned_at = x->checked_at = at;
    if (body != NULL) {
        if (len > 0)
            memcpy(x->body, body, len);
        x->len = (uint16_t)len;
    }
}

/* The sender's entry becomes kind k (a sender kind); a new sender may
 * evict another, as t reads them. */
static void
put_sender(struct refusals *r, int64_t sender, enum refusal_kind k,
           const char *body, size_t len, int64_t at,
           const struct refusal_trust *t)
{
    uint32_t i = find(r, sender);
    if (i == NIL) {
        i = slot_alloc(r, t);
        r->e[i].sender = sender;
        hash_insert(r, i);
        r->count++;
    } else {
        order_unlink(r, i);
    }
    fill(&r->e[i], k, body, len, at);
    order_insert(r, i);
}

static void
put_lesson(struct refusals *r, enum refusal_kind k, int64_t sender,
           const char *body, size_t len, int64_t at,
           const struct refusal_trust *t)
{
    if (k == REFUSAL_BALANCE) {
        r->balance.sender = 0;
        fill(&r->balance, k, body, len, at);
        r->has_balance = 1;
    } else {
        put_sender(r, sender, k, body, len, at, t);
    }
}

static void
clear_sender(struct refusals *r, int64_t sender)
{
    uint32_t i = sender >= 1 ? find(r, sender) : NIL;
    if (i != NIL) {
        release(r, i);
        r->cleared++;
    }
}

static void
clear_balance(struct refusals *r)
{
    if (r->has_balance) {
        r->has_balance = 0;
        r->cleared++;
    }
}

/* ---- the interface ---- */

struct refusals *
refusals_new(size_t max_entries)
{
    if (max_entries == 0)
        return NULL;
    struct refusals *r = xcalloc(1, sizeof(*r));
    r->max = clamp_max(max_entries);
    r->cap = r->max < INITIAL_SLOTS ? r->max : INITIAL_SLOTS;
    r->e = xmalloc((size_t)r->cap * sizeof(*r->e));
    r->free_head = NIL;
    for (int k = 0; k < SENDER_KINDS; k++)
        r->head[k] = r->tail[k] = NIL;
    hash_rebuild(r, r->cap);
    return r;
}

void
refusals_free(struct refusals *r)
{
    if (r == NULL)
        return;
    free(r->e);
    free(r->buckets);
    free(r);
}

static enum refusal_decision
answer(struct refusals *r, const struct refusal_entry *x, enum route_id route,
       struct refusal_answer *out)
{
    enum refusal_kind k = (enum refusal_kind)x->kind;
    r->answers[k]++;
    if (out != NULL)
        *out = (struct refusal_answer){k, refusal_status(k, route), x->body,
                                       x->len, 0, 0};
    return REFUSAL_ANSWER;
}

/* This send goes; the entry is trusted again from now, so the sends
 * behind it are answered until the probe's answer is learned. */
static enum refusal_decision
probe(struct refusals *r, uint32_t i, enum route_id route, int64_t now,
      struct refusal_answer *out)
{
    struct refusal_entry *x = i == NIL ? &r->balance : &r->e[i];
    if (out != NULL) /* what is probed: the kind, not an answer */
        *out = (struct refusal_answer){(enum refusal_kind)x->kind,
                                       refusal_status(x->kind, route),
                                       NULL,
                                       0,
                                       now,
                                       x->checked_at};
    if (i != NIL)
        order_unlink(r, i);
    x->checked_at = now;
    if (i != NIL)
        order_insert(r, i);
    r->probes[x->kind]++;
    return REFUSAL_PROBE;
}

enum refusal_decision
refusals_decide(struct refusals *r, enum route_id route, int64_t sender,
                int64_t now, const struct refusal_trust *t,
                struct refusal_answer *out)
{
    r->last = *t;
    if (!is_send_route(route))
        return REFUSAL_FORWARD;
    uint32_t i = sender >= 1 ? find(r, sender) : NIL;
    const struct refusal_entry *s = i != NIL ? &r->e[i] : NULL;
    const struct refusal_entry *b = r->has_balance ? &r->balance : NULL;
    enum judgement js = judge(s, now, t), jb = judge(b, now, t);
    if (js == J_TRUSTED)
        return answer(r, s, route, out);
    if (jb == J_TRUSTED)
        return answer(r, b, route, out);
    if (js == J_EXPIRED)
        return probe(r, i, route, now, out);
    if (jb == J_EXPIRED)
        return probe(r, NIL, route, now, out);
    return REFUSAL_FORWARD;
}

enum refusal_lesson_op
refusals_learn(struct refusals *r, enum route_id route, int64_t sender,
               int status, const char *body, size_t len, int64_t now,
               const struct refusal_trust *t)
{
    struct refusal_lesson l;
    r->last = *t;
    refusal_extract(route, status, body, len, &l);
    if (l.op == REFUSAL_TEACHES_CLEAR) {
        clear_sender(r, sender);
        clear_balance(r);
    } else if (l.op == REFUSAL_TEACHES_REFUSAL) {
        if (trust_ms(t, l.kind) == 0 ||
            (l.kind != REFUSAL_BALANCE && sender < 1))
            return REFUSAL_TEACHES_NOTHING; /* off: learn nothing of it */
        put_lesson(r, l.kind, sender, l.body, l.len, now, t);
        r->learned[l.kind]++;
    }
    return l.op;
}

struct senders_ctx {
    struct refusals *r;
    int all;
    int64_t now;
    const struct refusal_trust *t;
};

/* A listed, non-online sender of a ?status=all list: offline. An entry
 * already offline keeps its body (a send's own words beat ours). */
static void
list_teaches_offline(struct senders_ctx *c, int64_t sender)
{
    uint32_t i = find(c->r, sender);
    int keep = i != NIL && c->r->e[i].kind == REFUSAL_SENDER_OFFLINE;
    put_sender(c->r, sender, REFUSAL_SENDER_OFFLINE,
               keep ? NULL : REFUSAL_OFFLINE_BODY,
               sizeof(REFUSAL_OFFLINE_BODY) - 1, c->now, c->t);
    c->r->learned[REFUSAL_SENDER_OFFLINE]++;
}

static void
senders_cb(void *arg, int64_t sender, int online)
{
    struct senders_ctx *c = arg;
    if (online) {
        clear_sender(c->r, sender); /* online and existing: both kinds */
        return;
    }
    if (c->all && trust_ms(c->t, REFUSAL_SENDER_OFFLINE) > 0) {
        list_teaches_offline(c, sender);
        return;
    }
    /* listed, so it exists, whatever else the list says of it */
    uint32_t i = find(c->r, sender);
    if (i != NIL && c->r->e[i].kind == REFUSAL_SENDER_NOT_FOUND)
        clear_sender(c->r, sender);
}

int
refusals_learn_senders(struct refusals *r, int all, const char *body,
                       size_t len, int64_t now, const struct refusal_trust *t)
{
    struct senders_ctx c = {r, all, now, t};
    r->last = *t;
    return refusal_senders_extract(body, len, senders_cb, &c);
}

int
refusals_put(struct refusals *r, enum refusal_kind kind, int64_t sender,
             const char *body, size_t len, int64_t learned_at)
{
    if (!kind_ok(kind) || len > REFUSAL_BODY_MAX || (len > 0 && body == NULL))
        return -1;
    if (kind != REFUSAL_BALANCE && sender < 1)
        return -1;
    put_lesson(r, kind, sender, body != NULL ? body : "", len, learned_at,
               &r->last);
    return 0;
}

int
refusals_unprobe(struct refusals *r, enum refusal_kind kind, int64_t sender,
                 int64_t probed_at, int64_t was_checked_at)
{
    if (!kind_ok(kind))
        return -1;
    uint32_t i = NIL;
    struct refusal_entry *x = NULL;
    if (kind == REFUSAL_BALANCE) {
        x = r->has_balance ? &r->balance : NULL;
    } else if (sender >= 1 && (i = find(r, sender)) != NIL) {
        x = &r->e[i];
    }
    if (x == NULL || x->kind != kind || x->checked_at != probed_at ||
        was_checked_at > probed_at)
        return -1; /* learned again, cleared or replaced since */
    if (i != NIL)
        order_unlink(r, i);
    x->checked_at = was_checked_at;
    if (i != NIL)
        order_insert(r, i);
    return 0;
}

int
refusals_forget_sender(struct refusals *r, int64_t sender)
{
    uint32_t i = sender >= 1 ? find(r, sender) : NIL;
    if (i == NIL)
        return -1;
    release(r, i);
    return 0;
}

int
refusals_forget_balance(struct refusals *r)
{
    if (!r->has_balance)
        return -1;
    r->has_balance = 0;
    return 0;
}

static struct refusal_view
view_of(const struct refusal_entry *x, int64_t now,
        const struct refusal_trust *t)
{
    return (struct refusal_view){
        .kind = (enum refusal_kind)x->kind,
        .sender = x->sender,
        .learned_at = x->learned_at,
        .checked_at = x->checked_at,
        .trusted_until = trust_end(x, t),
        .trusted = judge(x, now, t) == J_TRUSTED,
    };
}

struct by_sender {
    int64_t sender;
    uint32_t i;
};

static int
by_sender_cmp(const void *a, const void *b)
{
    int64_t x = ((const struct by_sender *)a)->sender;
    int64_t y = ((const struct by_sender *)b)->sender;
    return (x > y) - (x < y);
}

/* The live sender entries ascending by id (the admin API's order; the
 * index keeps none): a new array of r->count, the caller frees. */
static struct by_sender *
sorted_senders(const struct refusals *r)
{
    struct by_sender *v = xmalloc((r->count ? r->count : 1) * sizeof(*v));
    size_t n = 0;
    for (int k = 0; k < SENDER_KINDS; k++)
        for (uint32_t i = r->head[k]; i != NIL; i = r->e[i].next)
            v[n++] = (struct by_sender){r->e[i].sender, i};
    qsort(v, n, sizeof(*v), by_sender_cmp);
    return v;
}

void
refusals_list(const struct refusals *r, int64_t now,
              const struct refusal_trust *t, refusal_view_cb cb, void *arg)
{
    struct refusal_view v;
    if (r->has_balance) {
        v = view_of(&r->balance, now, t);
        if (cb(arg, &v) != 0)
            return;
    }
    struct by_sender *s = sorted_senders(r);
    for (uint32_t n = 0; n < r->count; n++) {
        v = view_of(&r->e[s[n].i], now, t);
        if (cb(arg, &v) != 0)
            break;
    }
    free(s);
}

void
refusals_get_stats(const struct refusals *r, struct refusal_stats *s)
{
    *s = (struct refusal_stats){
        .entries = r->count + (r->has_balance ? 1u : 0u),
        .max_entries = r->max,
        .cleared = r->cleared,
        .evictions = r->evictions,
    };
    for (int k = 0; k < REFUSAL_KINDS; k++) {
        s->answers[k] = r->answers[k];
        s->probes[k] = r->probes[k];
        s->learned[k] = r->learned[k];
    }
}
