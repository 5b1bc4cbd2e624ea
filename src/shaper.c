/* shaper.c - see shaper.h. */
#include "shaper.h"

#include <ctype.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "ratelimit.h"
#include "redis_scripts.h"

struct shaper;

struct shaper_item {
    TAILQ_ENTRY(shaper_item) link;
    struct shaper *s;
    void *item;
    shaper_go go;
    shaper_refuse refuse;
    double slot_ms;
    double queued_ms;
    /* refused if still waiting then: max(slot, queued + max_queue_ms) +
     * the guard's grace, never before the item ahead of it (so the
     * head's is the earliest) */
    double deadline_ms;
    /* shared mode: the reservation awaited from Redis (in s->reserving) */
    struct rlink_cmd *cmd;
    int in_call;   /* its reply came inside the eval call (see reserve) */
    int answered;  /* ... and this is what it said */
    int no_refuse; /* reserved again after a resume: never refused */
};

/* The guard's ring is as long as a 1-second window may hold; beyond this
 * (a limit set out of the way, 10000/s) it is off. */
#define SHAPER_GUARD_MAX 4096
/* Shared guard: while the window is held by a request still on its way
 * (an unknown end, maybe on another instance), ask again this soon. */
#define SHAPER_ASK_POLL_MS 20.0
/* The shared guard is asked this long before the head's slot. */
#define SHAPER_ASK_LEAD_MS 20.0
/* Asks whose answer was lost (they may have added an entry), dropped
 * once the link answers again; more are left to expire. */
#define SHAPER_ORPHANS 8
/* While the queue waits behind a pause learned from Redis, whether it
 * still holds (another instance may have ended it) is asked this often. */
#define SHAPER_PAUSE_POLL_MS 500.0
/* Departures whose answer may still be reported to Redis. */
#define SHAPER_TRIPS 64
#define SHAPER_MEMBER_MAX 40
/* Departures made without a grant of the shared guard, kept for a
 * window so that a rejoin can tell Redis of them (the local guard's ring
 * holds only its share); more than a window can hold at any rate the
 * guard is on for. */
#define SHAPER_SOLO SHAPER_GUARD_MAX
/* rl_depart's keys: dep, pause, alive, log, hold. */
#define SHAPER_DEP_KEYS 5

/* A hand-over granted by the shared guard, until its request leaves or
 * ends: its member in Redis's departure log. */
struct shaper_member {
    TAILQ_ENTRY(shaper_member) link;
    char id[SHAPER_MEMBER_MAX];
};
TAILQ_HEAD(shaper_members, shaper_member);

struct shaper_remote {
    struct shaper_link link;
    char *k_rl, *k_pause, *k_dep, *k_alive, *k_log, *k_hold; /* owned */
    double instances;
    double pending_ms;
    char nonce[17];
    uint64_t seq;
    struct rlink_cmd *ask; /* in flight */
    char ask_member[SHAPER_MEMBER_MAX];
    int ask_in_call;
    int cutoffs;      /* cut off (cut_off()) with no usable ask answer since */
    double rejoin_at; /* cut off: no "back" before this (local ms) */
    double shared_at; /* when it last began to share (local ms) */
    double ask_at;    /* do not ask before this (local ms) */
    double paused_until; /* learned from Redis (local ms) */
    /* a grant of the shared guard for later: the head goes at permit_at */
    int permit;
    double permit_at;
    struct rlink_cmd *poll; /* "paused" in flight */
    double poll_at;         /* next poll of a pause learned from Redis */
    /* handed over, not left: with a member (granted by Redis) or plain
     * (handed while Redis was unreachable) */
    struct shaper_members members;
    size_t plain;
    struct {
        uint64_t ticket;
        char id[SHAPER_MEMBER_MAX];
    } trips[SHAPER_TRIPS];
    size_t trip_next;
    char orphans[SHAPER_ORPHANS][SHAPER_MEMBER_MAX];
    size_t norphans;
    /* the last reservation or ask got no answer it could use (an error
     * reply: a key tampered with, OOM, READONLY after a failover; or none):
     * the instance is on its own as when the link is down */
    int failing;
    /* the transitions (shaper.h; track_mode()) */
    int seen_up;        /* the link's state when last looked at */
    int was_local;      /* it has run on its own limiter */
    int ever_shared;    /* it has shared once */
    int sharing;        /* Redis's slots and the whole guard */
    double quiet_until; /* went down: no hand-over alone before (local ms) */
    /* presence (shaper.h): the last Redis time received (the stamp its
     * heartbeats carry) and when it came (local ms) */
    long long stamp_us;
    int have_stamp;
    double stamp_at;
    /* the last stamp before the link dropped, for the rejoin's check that
     * Redis kept its log (set at the drop, until a rejoin succeeds) */
    long long prev_us;
    int have_prev;
    struct rlink_cmd *beat; /* "alive" in flight */
    double beat_at;         /* the next heartbeat (or rejoin step) */
    int rejoin;             /* up again, not sharing yet: rejoining */
    struct rlink_cmd *back; /* "back" in flight */
    int back_tries;
    /* departures Redis's log does not hold (a ring, the newest last) */
    struct {
        double bound;
        uint64_t ticket;
    } solo[SHAPER_SOLO];
    size_t solo_next, nsolo;
};

struct shaper {
    struct event_base *base;
    struct rl_guard guard;
    struct event *timer;
    struct rl rl; /* shared mode: the instance's own, at rate/instances */
    int on;       /* rate > 0 */
    double rate;
    long burst;
    double max_queue_ms;
    double grace_ms;
    double last_slot; /* slot of the latest item handed over */
    TAILQ_HEAD(shaper_queue, shaper_item) queue;
    struct shaper_queue reserving; /* shared: awaiting Redis, in order */
    struct shaper_stats st;
    shaper_clock clock; /* NULL: clock_mono_ms() */
    void *clock_ctx;
    double wake_ms; /* when the timer fires; INFINITY when not set */
    struct shaper_remote *remote; /* NULL: memory mode */
    int running;                  /* inside run_due() */
};

static void shaper_arm(struct shaper *s);
static void shaper_arm_at(struct shaper *s, double at);
static double presence_at(const struct shaper *s);

/* Every entry point reads the clock once and passes that now down. */
static double
now_of(const struct shaper *s)
{
    return s->clock != NULL ? s->clock(s->clock_ctx) : clock_mono_ms();
}

static int presence_on(const struct shaper *s);

static size_t
guard_size(double rate, long burst)
{
    double n = ceil(rate + (double)(burst < 1 ? 1 : burst) - 1);
    return rate > 0 && n <= SHAPER_GUARD_MAX ? (size_t)n : 0;
}

/* ---- shared mode: talking to Redis ---- */

static int
remote_up(const struct shaper *s)
{
    return s->remote != NULL && s->remote->link.up(s->remote->link.link);
}

/* Redis's schedule and the whole local guard (not while down, nor
 * during the hold after it: shaper.h). */
static int
sharing(const struct shaper *s)
{
    return s->remote != NULL && s->remote->sharing && remote_up(s);
}

/* The local guard's size: the whole limit while the shared guard holds
 * the line (it counts this instance's departures too), the instance's
 * share of it while Redis is unreachable. */
static size_t
local_guard_size(const struct shaper *s)
{
    size_t n = guard_size(s->rate, s->burst);
    if (s->remote == NULL || n == 0 || (sharing(s) && !s->remote->failing))
        return n;
    size_t share = (size_t)floor((double)n / s->remote->instances);
    return share < 1 ? 1 : share;
}

static void
fit_guard(struct shaper *s)
{
    size_t n = local_guard_size(s);
    if (n != s->guard.n)
        rl_guard_resize(&s->guard, n);
}

/* Local ms by which Redis no longer counts this instance alive: its
 * entry is scored (last stamp) + SHAPER_ALIVE_MS in Redis time, and
 * that stamp was Redis's time before its reply came at stamp_at. */
static double
alive_until(const struct shaper_remote *re, double now)
{
    return re->have_stamp ? fmax(now, re->stamp_at + SHAPER_ALIVE_MS) : now;
}

static void
start_sharing(struct shaper *s)
{
    struct shaper_remote *re = s->remote;
    re->sharing = 1;
    re->rejoin = 0;
    re->have_prev = 0;
    /* Redis answered: a failure before the drop is not this one's */
    re->failing = 0;
    re->beat_at = -INFINITY; /* say it is alive at once */
    re->shared_at = now_of(s);
    if (re->ever_shared || re->was_local) {
        s->st.mode_changes++;
        log_msg(LOG_INFO, "limiter: shared");
    }
    re->ever_shared = 1;
}

/* The link went down (or was found down at the first look), or Redis
 * answers errors (cut_off()): why is the log line. */
static void
went_down(struct shaper *s, double now, const char *why)
{
    struct shaper_remote *re = s->remote;
    /* others count its share free only once its alive entry is gone,
     * and what they granted before that may fill the window ahead:
     * nothing alone before then + a window + cap (shaper.h). Down while
     * rejoining (after a drop or a cut_off(), say errors then the
     * timeout that drops the link, noticed at the next entry point),
     * "then" was when it stopped sharing, and the quiet counted from it
     * stands: since, only its stamps can make it alive (a "back" that
     * may have run extends the quiet in on_back()), not the time the
     * drop happens to be noticed */
    double then = re->rejoin ? -INFINITY : now;
    re->quiet_until =
        fmax(re->quiet_until, alive_until(re, then) + SHAPER_GUARD_WINDOW_MS +
                                  SHAPER_GUARD_CAP_MS);
    re->was_local = 1;
    if (!re->have_prev && re->have_stamp) {
        re->prev_us = re->stamp_us;
        re->have_prev = 1;
    }
    /* a grant outstanding is not used once back (its entry's bound
     * passes, or Redis lost it): its entry is dropped then, and the
     * head asks again */
    if (re->permit) {
        re->permit = 0;
        if (re->norphans < SHAPER_ORPHANS)
            snprintf(re->orphans[re->norphans++], SHAPER_MEMBER_MAX, "%s",
                     re->ask_member);
    }
    if (re->sharing)
        s->st.mode_changes++;
    re->sharing = 0;
    re->rejoin = 0;
    log_msg(LOG_INFO, "%s", why);
}

/* The link is up again: sharing at once when Redis's log holds all the
 * instance ever did (its first connect, nothing sent alone), else after
 * the rejoin (a stamp, then one "back": presence_due()). */
static void
came_up(struct shaper *s, double now)
{
    struct shaper_remote *re = s->remote;
    /* no presence (the guard is off): nothing to tell, no step to take */
    if (!presence_on(s) || (!re->have_stamp && !re->ever_shared &&
                            re->nsolo == 0 && re->plain == 0)) {
        start_sharing(s);
        return;
    }
    re->rejoin = 1;
    re->back_tries = 0;
    re->beat_at = -INFINITY;
    log_msg(LOG_INFO, "limiter: rejoining (%zu departures of its own to tell)",
            re->nsolo + re->plain);
    (void)now;
}

/* The transitions between shared and local mode (shaper.h), noticed
 * from the link's state at each entry point and each failed answer. */
static void
track_mode(struct shaper *s, double now)
{
    struct shaper_remote *re = s->remote;
    if (re == NULL)
        return;
    int up = remote_up(s);
    if (re->seen_up && !up) {
        /* a link that comes back rejoins at once, whatever cut-offs
         * came before (a flap costs a few ms) */
        re->rejoin_at = -INFINITY;
        went_down(s, now, "limiter: local (Redis unreachable)");
    } else if (up && !re->sharing && !re->rejoin)
        came_up(s, now); /* up again, or up at the first look */
    re->seen_up = up;
    fit_guard(s);
}

/* A reservation or an ask got an answer it cannot use while the link
 * stays up: an error reply (BUSY from a long script, READONLY after a
 * failover, OOM) or a reply of the wrong shape. Not sharing is then not
 * enough: the others still count this instance alive until its entry
 * runs out (its last stamp's arrival + SHAPER_ALIVE_MS) and grant the
 * whole window meanwhile, so a departure alone at once (an idle
 * instance's guard is empty) adds to a full one. The same as a drop,
 * then: the quiet before any departure alone, and the rejoin (which
 * tells Redis of the departures made alone) once Redis answers again;
 * its first step is retried every SHAPER_BEAT_MS while the errors last. */
static void
cut_off(struct shaper *s, double now)
{
    struct shaper_remote *re = s->remote;
    if (!sharing(s))
        return; /* down (went_down() ran), rejoining, or not shared */
    if (!presence_on(s))
        return; /* no presence (the guard is off): no one counts it alive,
                   its own limiter gives the slot and that is all */
    s->st.cutoffs++;
    went_down(s, now, "limiter: local (Redis answers errors)");
    track_mode(s, now);
    /* The rejoin waits SHAPER_BEAT_MS, doubled at each cut-off in a row
     * up to SHAPER_CUTOFF_MAX_MS: asks failing while the rejoin succeeds
     * would otherwise cycle at once, round trip after round trip, and
     * never send (each rejoin makes it alive again, so the quiet moves
     * on); waiting longer than the quiet, it sends its share alone. "In
     * a row": shared for less than SHAPER_CUTOFF_MAX_MS since the last
     * rejoin, whichever operation failed (an answer to another one is no
     * sign that the failing one works again). */
    if (now - re->shared_at >= SHAPER_CUTOFF_MAX_MS)
        re->cutoffs = 0;
    double wait =
        SHAPER_BEAT_MS * ldexp(1.0, re->cutoffs < 8 ? re->cutoffs : 8);
    re->cutoffs++;
    re->rejoin_at = now + fmin(wait, SHAPER_CUTOFF_MAX_MS);
    if (re->rejoin)
        re->beat_at = re->rejoin_at;
}

/* When the local guard lets the next one go: while not sharing, the
 * quiet after going down included, and nothing while a rejoin's "back"
 * is on its way (it tells Redis of the departures made alone until it
 * was sent). */
static double
local_until(const struct shaper *s)
{
    double g = rl_guard_until(&s->guard);
    const struct shaper_remote *re = s->remote;
    if (re == NULL || sharing(s))
        return g;
    if (re->back != NULL)
        return INFINITY;
    return re->quiet_until > g ? re->quiet_until : g;
}

/* A command whose answer nobody needs (reports, drops). */
static void
ignore_reply(void *arg, enum rlink_status st, const redisReply *r)
{
    (void)arg;
    (void)st;
    (void)r;
}

/* rl_reserve, rl_pause, rl_resume: the two keys rl and pause first. */
static struct rlink_cmd *
eval_n(struct shaper *s, enum redis_script script, int nkeys,
       const char *const *argv, int argc, rlink_reply_cb cb, void *arg)
{
    struct shaper_remote *re = s->remote;
    size_t small[16], *len = argc <= 16 ? small : xmalloc(argc * sizeof(*len));
    for (int i = 0; i < argc; i++)
        len[i] = strlen(argv[i]);
    struct rlink_cmd *c = re->link.eval(re->link.link, script, nkeys, argc,
                                        argv, len, cb ? cb : ignore_reply, arg);
    if (len != small)
        free(len);
    return c;
}

static struct rlink_cmd *
eval(struct shaper *s, enum redis_script script, const char *const *argv,
     int argc, rlink_reply_cb cb, void *arg)
{
    return eval_n(s, script, 2, argv, argc, cb, arg);
}

/* rl_depart.lua with its keys, then args[0..n) (at most 16). */
static struct rlink_cmd *
depart(struct shaper *s, const char *const *args, int n, rlink_reply_cb cb,
       void *arg)
{
    struct shaper_remote *re = s->remote;
    const char *argv[SHAPER_DEP_KEYS + 16] = {
        re->k_dep, re->k_pause, re->k_alive, re->k_log, re->k_hold};
    for (int i = 0; i < n && i < 16; i++)
        argv[SHAPER_DEP_KEYS + i] = args[i];
    return eval_n(s, RS_RL_DEPART, SHAPER_DEP_KEYS, argv,
                  SHAPER_DEP_KEYS + (n < 16 ? n : 16), cb, arg);
}

/* rl_depart.lua's reports: "left", "done", "drop" of one member. */
static void
report(struct shaper *s, const char *op, const char *member)
{
    char cap[32];
    snprintf(cap, sizeof(cap), "%.0f", SHAPER_GUARD_CAP_MS * 1000.0);
    const char *args[] = {op, member, cap};
    depart(s, args, strcmp(op, "left") == 0 ? 3 : 2, NULL, NULL);
}

static void
drop_orphans(struct shaper *s)
{
    struct shaper_remote *re = s->remote;
    while (re->norphans > 0)
        report(s, "drop", re->orphans[--re->norphans]);
}

static void
new_member(struct shaper_remote *re, char *out)
{
    snprintf(out, SHAPER_MEMBER_MAX, "%s:%llu", re->nonce,
             (unsigned long long)++re->seq);
}

/* Reads {a, b[, c]} of integers; 0 when the reply is not that. */
static int
int_array(const redisReply *r, long long *v, size_t want)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < want)
        return 0;
    for (size_t i = 0; i < want; i++) {
        if (r->element[i]->type != REDIS_REPLY_INTEGER)
            return 0;
        v[i] = r->element[i]->integer;
    }
    return 1;
}

/* Slots come from Redis's schedule: sharing, or rejoining (a few ms:
 * the departures wait for it, the schedule is the account's), though not
 * during the wait before a rejoin after a cut-off (up to
 * SHAPER_CUTOFF_MAX_MS, when the instance sends alone at its share: its
 * own limiter gives those slots, not the account's schedule). */
static int
redis_slots(const struct shaper *s, double now)
{
    const struct shaper_remote *re = s->remote;
    return remote_up(s) &&
           (re->sharing || (re->rejoin && now >= re->rejoin_at));
}

/* The shared guard is asked for the head (send_ask()): while sharing
 * and the limit not out of the way. */
static int
shared_guard_on(const struct shaper *s)
{
    return sharing(s) && guard_size(s->rate, s->burst) != 0;
}

/* ---- the queue ---- */

/* Sets the timer for the head. It reads the clock itself, after whatever
 * callbacks ran, since libevent's timeout is relative. */
static void
shaper_arm(struct shaper *s)
{
    struct shaper_item *head = TAILQ_FIRST(&s->queue);
    /* the next heartbeat (or rejoin step), queue or not */
    double beat = s->remote != NULL ? presence_at(s) : INFINITY;
    if (head == NULL) {
        s->wake_ms = beat;
        if (beat == INFINITY) {
            evtimer_del(s->timer);
            return;
        }
        shaper_arm_at(s, beat);
        return;
    }
    /* the slot, or later while the guard holds (INFINITY: until a request
     * on its way ends, which re-arms; or until the shared guard answers);
     * the deadline in any case */
    double guard = local_until(s);
    double at = head->slot_ms > guard ? head->slot_ms : guard;
    struct shaper_remote *re = s->remote;
    if (shared_guard_on(s)) {
        /* with its grant: at the slot, the guards and the grant's time;
         * asking: its answer re-runs; else when the next ask is due */
        if (re->permit)
            at = fmax(at, re->permit_at);
        else if (re->ask != NULL)
            at = INFINITY;
        else
            at = fmax(re->ask_at,
                      fmax(head->slot_ms, guard) - SHAPER_ASK_LEAD_MS);
    }
    if (remote_up(s) && re->paused_until > -INFINITY && re->poll == NULL &&
        re->poll_at < at)
        at = re->poll_at;
    if (at > head->deadline_ms)
        at = head->deadline_ms;
    if (beat < at)
        at = beat;
    s->wake_ms = at;
    shaper_arm_at(s, at);
}

/* The timer for at (ms on the shaper's clock). */
static void
shaper_arm_at(struct shaper *s, double at)
{
    double wait = at - now_of(s);
    if (wait < 0)
        wait = 0;
    /* round up: a timer that fires early would only re-arm */
    long us = (long)ceil(wait * 1000.0);
    struct timeval tv = {us / 1000000, us % 1000000};
    evtimer_add(s->timer, &tv);
}

/* A deadline no earlier than that of the item ahead (prev, may be NULL):
 * deadlines grow along the queue, even across a reload that shortens
 * max_queue_ms, so only the head's needs a timer. */
static double
deadline_after(const struct shaper_item *prev, double deadline)
{
    return prev != NULL && prev->deadline_ms > deadline ? prev->deadline_ms
                                                        : deadline;
}

/* Slots moved (a pause, its end): no item is refused before its slot. */
static void
deadlines_follow_slots(struct shaper *s)
{
    struct shaper_item *it, *prev = NULL;
    TAILQ_FOREACH(it, &s->queue, link)
    {
        it->deadline_ms = deadline_after(
            prev, fmax(it->deadline_ms, it->slot_ms + s->grace_ms));
        prev = it;
    }
}

/* Puts it in the queue at its slot (after those with the same or an
 * earlier one: shared slots arrive in order, give or take the way of
 * their replies), with its deadline. */
static void
enqueue(struct shaper *s, struct shaper_item *it, double slot)
{
    struct shaper_item *after = TAILQ_LAST(&s->queue, shaper_queue);
    while (after != NULL && after->slot_ms > slot)
        after = TAILQ_PREV(after, shaper_queue, link);
    it->slot_ms = slot;
    double bound = fmax(slot, it->queued_ms + s->max_queue_ms) + s->grace_ms;
    it->deadline_ms = deadline_after(after, bound);
    if (after == NULL)
        TAILQ_INSERT_HEAD(&s->queue, it, link);
    else
        TAILQ_INSERT_AFTER(&s->queue, after, it, link);
    /* the ones behind it may not be refused before it */
    for (struct shaper_item *n = TAILQ_NEXT(it, link); n != NULL;
         n = TAILQ_NEXT(n, link))
        n->deadline_ms =
            deadline_after(TAILQ_PREV(n, shaper_queue, link), n->deadline_ms);
    s->st.depth++;
    s->st.waited++;
}

static void
hand_over(struct shaper *s, double slot, shaper_go go, void *item,
          const char *member)
{
    rl_guard_handed(&s->guard);
    if (s->remote != NULL) {
        if (member != NULL) {
            struct shaper_member *m = xcalloc(1, sizeof(*m));
            snprintf(m->id, sizeof(m->id), "%s", member);
            TAILQ_INSERT_TAIL(&s->remote->members, m, link);
        } else {
            s->remote->plain++;
        }
    }
    s->last_slot = slot;
    go(item);
}

static void send_ask(struct shaper *s, double now);
static void presence_due(struct shaper *s, double now);

/* 1 when the shared guard lets the head go now, with *member its grant
 * (NULL: the shared guard is not in use, the local guard alone decides;
 * a failed ask leaves the instance not sharing, cut_off()).
 * The guard is asked ahead of the head's slot (SHAPER_ASK_LEAD_MS, for the
 * way there and back), so that its grant is there when the slot comes:
 * asked at the slot, every window would start that much later, and the
 * delays would add up along the queue. */
static int
shared_guard_open(struct shaper *s, const struct shaper_item *head, double now,
                  const char **member)
{
    struct shaper_remote *re = s->remote;
    *member = NULL;
    if (!shared_guard_on(s))
        return 1;
    if (!re->permit && re->ask == NULL && now >= re->ask_at &&
        fmax(head->slot_ms, local_until(s)) - now <= SHAPER_ASK_LEAD_MS)
        send_ask(s, now); /* may answer within the call (link down) */
    if (re->permit && now >= re->permit_at) {
        *member = re->ask_member;
        return 1;
    }
    return 0;
}

/* The head goes: its grant (if any) is used up. */
static void
shared_guard_used(struct shaper *s, const char *member)
{
    if (s->remote != NULL && member != NULL)
        s->remote->permit = 0;
}

/* The grant outstanding goes back to the shared guard: its entry counts
 * in every instance's window until its bound (the grant's time +
 * pending_ms), so one left behind holds a place that long, and one used
 * later than its bound lets a request leave that nobody counts. */
static void
shared_grant_give_back(struct shaper *s)
{
    struct shaper_remote *re = s->remote;
    if (re == NULL || !re->permit)
        return;
    re->permit = 0;
    report(s, "drop", re->ask_member);
}

static void resume_queue(struct shaper *s, double now);

static void
on_paused(void *arg, enum rlink_status st, const redisReply *r)
{
    struct shaper *s = arg;
    struct shaper_remote *re = s->remote;
    double now = now_of(s);
    re->poll = NULL;
    re->poll_at = now + SHAPER_PAUSE_POLL_MS;
    if (st != RLINK_OK || r == NULL || r->type != REDIS_REPLY_ARRAY ||
        r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER)
        return;
    long long rest = r->element[0]->integer;
    if (rest > 0) {
        re->paused_until = now + (double)rest / 1000.0;
        return;
    }
    /* ended early by another instance (DELETE /admin/pause): the queue
     * reserves again, as after shaper_resume() */
    re->paused_until = -INFINITY;
    if (s->rl.paused_until > now || !TAILQ_EMPTY(&s->queue))
        resume_queue(s, now);
    if (!s->running)
        shaper_run(s);
}

/* Behind a pause learned from Redis, asks now and then whether it still
 * holds; once it has run out, stops asking. */
static void
poll_pause(struct shaper *s, double now)
{
    struct shaper_remote *re = s->remote;
    if (re->paused_until == -INFINITY || re->poll != NULL || !remote_up(s))
        return;
    if (re->paused_until <= now) {
        re->paused_until = -INFINITY;
        return;
    }
    if (now < re->poll_at)
        return;
    const char *args[] = {"paused"};
    re->poll_at = now + SHAPER_PAUSE_POLL_MS;
    re->poll = depart(s, args, 1, on_paused, s);
}

/* What is due at now: handed over at its slot once the guards allow, or
 * refused at its deadline. */
static void
run_due(struct shaper *s, double now)
{
    struct shaper_item *it;
    s->running = 1;
    track_mode(s, now);
    while ((it = TAILQ_FIRST(&s->queue)) != NULL) {
        const char *member = NULL;
        int open = shared_guard_open(s, it, now, &member);
        int due = open && it->slot_ms <= now && now >= local_until(s);
        if (due)
            shared_guard_used(s, member);
        if (!due && it->deadline_ms > now)
            break;
        TAILQ_REMOVE(&s->queue, it, link);
        s->st.depth--;
        if (!due) {
            /* the guard held it past its bound (requests stuck on their
             * way): answered now, not for as long as the upstream hangs;
             * its slot is in the past, nothing to give back */
            s->st.refused++;
            shaper_refuse refuse = it->refuse;
            void *item = it->item;
            free(it);
            refuse(item, 1);
            continue;
        }
        double waited = now - it->queued_ms;
        s->st.wait_ms_total += waited;
        if (waited > s->st.wait_ms_max)
            s->st.wait_ms_max = waited;
        shaper_go go = it->go;
        void *item = it->item;
        double slot = it->slot_ms;
        free(it);
        hand_over(s, slot, go, item, member); /* may submit more */
    }
    struct shaper_remote *re = s->remote;
    if (TAILQ_EMPTY(&s->queue))
        shared_grant_give_back(s); /* nobody to use it */
    if (re != NULL && !TAILQ_EMPTY(&s->queue))
        poll_pause(s, now);
    if (re != NULL)
        presence_due(s, now);
    s->running = 0;
}

void
shaper_run(struct shaper *s)
{
    run_due(s, now_of(s));
    shaper_arm(s);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    shaper_run(arg);
}

/* ---- the shared guard's answer ---- */

/* A pause learned from Redis (another instance saw the 429): the queue
 * moves behind it as after shaper_pause(). */
static void pause_queue(struct shaper *s, double now, double pause_ms);

static void
on_ask(void *arg, enum rlink_status st, const redisReply *r)
{
    struct shaper *s = arg;
    struct shaper_remote *re = s->remote;
    double now = now_of(s);
    long long v[3];
    re->ask = NULL;
    if (st != RLINK_OK || !int_array(r, v, 3)) {
        /* it may have run: its entry is dropped once the link is back;
         * the head goes on the local guard meanwhile */
        if (re->norphans < SHAPER_ORPHANS)
            snprintf(re->orphans[re->norphans++], SHAPER_MEMBER_MAX, "%s",
                     re->ask_member);
        if (st == RLINK_OK)
            log_msg(LOG_WARN, "rl_depart: unexpected reply (%s)",
                    r && r->type == REDIS_REPLY_ERROR ? r->str : "type");
        re->failing = 1;
        track_mode(s, now);
        /* up still (an error reply, a reply it cannot read): cut off as
         * if down. Either way the head waits for the quiet or the rejoin
         * (no pass to go alone at once: the others may have filled the
         * window, counting this instance alive) */
        cut_off(s, now);
    } else if (v[0] == 1) {
        re->failing = 0;
        /* go then: the head's, or the next head's if it is cancelled */
        re->permit = 1;
        re->permit_at = now + (double)v[1] / 1000.0;
        drop_orphans(s);
        /* asked SHAPER_ASK_LEAD_MS ahead of the head's slot: a head now
         * further away moved behind a pause meanwhile, and asks again */
        struct shaper_item *head = TAILQ_FIRST(&s->queue);
        if (head != NULL &&
            head->slot_ms > re->permit_at + SHAPER_ASK_LEAD_MS + 1)
            shared_grant_give_back(s);
    } else {
        double wait_ms = (double)v[1] / 1000.0;
        re->failing = 0;
        if (v[2] == 2) {
            pause_queue(s, now, wait_ms);
            re->ask_at = now + wait_ms;
        } else {
            re->ask_at = now + (v[2] == 1 && wait_ms > SHAPER_ASK_POLL_MS
                                    ? SHAPER_ASK_POLL_MS
                                    : wait_ms);
        }
        drop_orphans(s);
    }
    if (re->ask_in_call)
        return; /* shared_guard_open() reads what it said */
    if (!s->running)
        shaper_run(s);
}

static void
send_ask(struct shaper *s, double now)
{
    struct shaper_remote *re = s->remote;
    char n[32], window[32], pending[32], inst[32];
    (void)now;
    new_member(re, re->ask_member);
    snprintf(n, sizeof(n), "%zu", guard_size(s->rate, s->burst));
    snprintf(window, sizeof(window), "%.0f", SHAPER_GUARD_WINDOW_MS * 1000.0);
    snprintf(pending, sizeof(pending), "%.0f",
             (re->pending_ms + SHAPER_GUARD_CAP_MS) * 1000.0);
    snprintf(inst, sizeof(inst), "%.0f", floor(re->instances));
    /* "" for now (Redis's TIME); the instances and its id: the room
     * left for those not alive */
    const char *args[] = {"ask", re->ask_member, n,        window, pending,
                          "",    inst,           re->nonce};
    re->ask_in_call = 1;
    re->ask = depart(s, args, 8, on_ask, s);
    re->ask_in_call = 0;
}

/* ---- presence: heartbeats and the rejoin (shaper.h) ---- */

/* A departure made without a grant (or a hand-over of one): kept for a
 * rejoin to tell Redis of it. */
static void
solo_add(struct shaper_remote *re, double bound, uint64_t ticket)
{
    size_t i = re->solo_next++ % SHAPER_SOLO;
    re->solo[i].bound = bound;
    re->solo[i].ticket = ticket;
    if (re->nsolo < SHAPER_SOLO)
        re->nsolo++;
}

/* Its answer came at now: it arrived no later. */
static void
solo_answered(struct shaper_remote *re, uint64_t ticket, double now)
{
    for (size_t k = 0; k < re->nsolo; k++) {
        size_t i = (re->solo_next - 1 - k) % SHAPER_SOLO;
        if (re->solo[i].ticket == ticket) {
            re->solo[i].bound = fmin(re->solo[i].bound, now);
            return;
        }
    }
}

/* Heartbeats (and the rejoin) are for a shaper whose shared guard is in
 * use: on, the limit not out of the way. */
static int
presence_on(const struct shaper *s)
{
    return s->remote != NULL && s->on && guard_size(s->rate, s->burst) != 0;
}

/* When the next heartbeat or rejoin step is due (INFINITY: none, or one
 * on its way, whose answer re-arms). */
static double
presence_at(const struct shaper *s)
{
    const struct shaper_remote *re = s->remote;
    if (!presence_on(s) || !remote_up(s) || re->beat != NULL ||
        re->back != NULL || !(re->sharing || re->rejoin))
        return INFINITY;
    return re->beat_at;
}

static void send_back(struct shaper *s, double now);

/* A command being sent: its callback may run within the call (the link
 * down), which clears the field before the call returns. */
static char in_call_mark;
#define SHAPER_IN_CALL ((struct rlink_cmd *)(void *)&in_call_mark)

/* Redis's time in a reply: the next stamp, received now. */
static void
take_stamp(struct shaper_remote *re, long long t_us, double now)
{
    re->stamp_us = t_us;
    re->have_stamp = 1;
    re->stamp_at = now;
}

static void
on_alive(void *arg, enum rlink_status st, const redisReply *r)
{
    struct shaper *s = arg;
    struct shaper_remote *re = s->remote;
    double now = now_of(s);
    long long v[2];
    re->beat = NULL;
    if (st == RLINK_OK && int_array(r, v, 2)) {
        /* sharing without an entry yet (its first contact): alive with
         * this stamp at once, not a beat later (until then the others
         * leave its share free) */
        if (re->sharing && !re->have_stamp)
            re->beat_at = now;
        take_stamp(re, v[0], now);
        /* a heartbeat of the sharing mode answered after a cut-off is no
         * rejoin step before its wait is over (cut_off()) */
        if (re->rejoin && !re->sharing && remote_up(s) && now >= re->rejoin_at)
            send_back(s, now);
    } else if (st == RLINK_OK) {
        log_msg(LOG_WARN, "rl_depart alive: unexpected reply (%s)",
                r && r->type == REDIS_REPLY_ERROR ? r->str : "type");
    }
    if (!s->running)
        shaper_arm(s);
}

/* A heartbeat ("alive" with the last stamp), or while rejoining the
 * first step ("alive" without one: a stamp to rejoin with). */
static void
send_alive(struct shaper *s, double now)
{
    struct shaper_remote *re = s->remote;
    char stamp[32] = "", alive[32], hold[32];
    if (re->sharing && re->have_stamp)
        snprintf(stamp, sizeof(stamp), "%lld", re->stamp_us);
    snprintf(alive, sizeof(alive), "%.0f", SHAPER_ALIVE_MS * 1000.0);
    snprintf(hold, sizeof(hold), "%.0f",
             (SHAPER_GUARD_WINDOW_MS + SHAPER_GUARD_CAP_MS) * 1000.0);
    const char *args[] = {"alive", re->nonce, stamp, alive, hold};
    re->beat_at = now + SHAPER_BEAT_MS;
    re->beat = SHAPER_IN_CALL;
    struct rlink_cmd *c = depart(s, args, 5, on_alive, s);
    if (re->beat == SHAPER_IN_CALL)
        re->beat = c;
}

static void
on_back(void *arg, enum rlink_status st, const redisReply *r)
{
    struct shaper *s = arg;
    struct shaper_remote *re = s->remote;
    double now = now_of(s);
    long long v[3];
    re->back = NULL;
    if (st == RLINK_OK && int_array(r, v, 3) && v[0] == 1) {
        take_stamp(re, v[1], now);
        /* every departure it made alone is in Redis's log now */
        re->nsolo = 0;
        if (v[2] > 0)
            log_msg(LOG_INFO,
                    "limiter: Redis lost its departure log: no departure"
                    " for %lld ms",
                    (v[2] + 999) / 1000);
        start_sharing(s);
        /* its grant for later (if any: one answered after the cut-off)
         * is stale: ask again */
        shared_grant_give_back(s);
        re->ask_at = -INFINITY;
    } else if (st == RLINK_OK && int_array(r, v, 2) && v[0] == 0 &&
               ++re->back_tries < 3) {
        /* the stamp was too old when it ran: again with the new one */
        take_stamp(re, v[1], now);
        if (remote_up(s))
            send_back(s, now);
    } else {
        if (st == RLINK_OK)
            log_msg(LOG_WARN, "rl_depart back: unexpected reply (%s)",
                    r && r->type == REDIS_REPLY_ERROR ? r->str : "type");
        /* it may have run: the instance counts as alive until its stamp
         * + SHAPER_ALIVE_MS, so nothing alone before a window after */
        re->quiet_until = fmax(re->quiet_until, alive_until(re, now) +
                                                    SHAPER_GUARD_WINDOW_MS +
                                                    SHAPER_GUARD_CAP_MS);
        re->back_tries = 0;
        re->beat_at = now + SHAPER_BEAT_MS; /* the rejoin again then */
    }
    if (!s->running)
        shaper_run(s);
}

/* The rejoin's one step: its stamp, the stamp before the drop (did Redis
 * keep its log?), and what it sent alone within the last window (and the
 * hand-overs not left yet), so that every instance counts them. While it
 * is on its way nothing leaves (local_until()). */
static void
send_back(struct shaper *s, double now)
{
    struct shaper_remote *re = s->remote;
    size_t max = re->nsolo + re->plain;
    int argc = SHAPER_DEP_KEYS + 7 + 2 * (int)max;
    const char **argv = xcalloc((size_t)argc, sizeof(*argv));
    char(*txt)[SHAPER_MEMBER_MAX] = xcalloc(2 * max + 4, sizeof(*txt));
    argv[0] = re->k_dep;
    argv[1] = re->k_pause;
    argv[2] = re->k_alive;
    argv[3] = re->k_log;
    argv[4] = re->k_hold;
    argv[5] = "back";
    argv[6] = re->nonce;
    snprintf(txt[0], SHAPER_MEMBER_MAX, "%lld", re->stamp_us);
    argv[7] = txt[0];
    if (re->have_prev)
        snprintf(txt[1], SHAPER_MEMBER_MAX, "%lld", re->prev_us);
    argv[8] = txt[1];
    snprintf(txt[2], SHAPER_MEMBER_MAX, "%.0f", SHAPER_ALIVE_MS * 1000.0);
    argv[9] = txt[2];
    snprintf(txt[3], SHAPER_MEMBER_MAX, "%.0f",
             (SHAPER_GUARD_WINDOW_MS + SHAPER_GUARD_CAP_MS) * 1000.0);
    argv[10] = txt[3];
    argv[11] = ""; /* Redis's TIME */
    int k = 12;
    size_t t = 4;
    for (size_t j = 0; j < re->nsolo; j++) {
        size_t i = (re->solo_next - 1 - j) % SHAPER_SOLO;
        if (re->solo[i].bound <= now - SHAPER_GUARD_WINDOW_MS)
            continue; /* a window old: can no longer matter */
        char *id = txt[t++];
        new_member(re, id);
        snprintf(txt[t], SHAPER_MEMBER_MAX, "%.0f",
                 ceil((re->solo[i].bound - now) * 1000.0));
        argv[k++] = id;
        argv[k++] = txt[t++];
        /* its answer, when it comes, lowers the entry */
        if (re->solo[i].ticket != 0) {
            size_t x = re->trip_next++ % SHAPER_TRIPS;
            re->trips[x].ticket = re->solo[i].ticket;
            snprintf(re->trips[x].id, SHAPER_MEMBER_MAX, "%s", id);
        }
    }
    for (size_t j = 0; j < re->plain; j++) {
        /* handed over, not left: it may arrive any time until then */
        char *id = txt[t++];
        new_member(re, id);
        snprintf(txt[t], SHAPER_MEMBER_MAX, "%.0f",
                 (re->pending_ms + SHAPER_GUARD_CAP_MS) * 1000.0);
        argv[k++] = id;
        argv[k++] = txt[t++];
    }
    size_t *len = xcalloc((size_t)k, sizeof(*len));
    for (int i = 0; i < k; i++)
        len[i] = strlen(argv[i]);
    re->back = SHAPER_IN_CALL;
    struct rlink_cmd *c = re->link.eval(
        re->link.link, RS_RL_DEPART, SHAPER_DEP_KEYS, k, argv, len, on_back, s);
    if (re->back == SHAPER_IN_CALL)
        re->back = c;
    free(len);
    free(txt);
    free(argv);
}

/* What is due of the heartbeats and the rejoin at now. */
static void
presence_due(struct shaper *s, double now)
{
    if (presence_at(s) > now)
        return;
    send_alive(s, now);
}

/* ---- reservations ---- */

/* T in us, rounded up: n slots never span less than n / rate. */
static void
interval_us(const struct shaper *s, char *out, size_t n)
{
    snprintf(out, n, "%.0f", ceil(1e6 / s->rate));
}

/* The instance's own limiter gives the slot (memory mode; shared mode
 * while Redis is unreachable). 0, or -1 with *retry_s when refused. */
static int
reserve_local(struct shaper *s, double now, int no_refuse, double *slot,
              long *retry_s)
{
    double maxq = no_refuse ? INFINITY : s->max_queue_ms;
    if (rl_reserve(&s->rl, now, maxq, slot) != 0) {
        double ms = rl_retry_after_ms(&s->rl, now, maxq);
        long secs = (long)ceil(ms / 1000.0);
        *retry_s = secs < 1 ? 1 : secs;
        return -1;
    }
    if (s->remote != NULL) {
        s->st.local_slots++;
        s->remote->was_local = 1;
    }
    return 0;
}

/* What a reservation's answer means for it: queued at its slot (0), or
 * refused (-1, *retry_s set). The caller queues or refuses. */
static int
reserved(struct shaper *s, struct shaper_item *it, enum rlink_status st,
         const redisReply *r, double now, long *retry_s)
{
    long long v[3];
    s->remote->failing = 0;
    if (st == RLINK_OK && int_array(r, v, 2) && v[0] == 1 && v[1] >= 0) {
        it->slot_ms = now + (double)v[1] / 1000.0;
        /* behind a pause: learn it (so that its early end is noticed) */
        if (int_array(r, v, 3) && v[2] > 0) {
            double until = now + (double)v[2] / 1000.0;
            if (until > s->remote->paused_until) {
                if (s->remote->paused_until == -INFINITY)
                    s->remote->poll_at = now + SHAPER_PAUSE_POLL_MS;
                s->remote->paused_until = until;
            }
        }
        return 0;
    }
    if (st == RLINK_OK && int_array(r, v, 2) && v[0] == 0) {
        long secs = (long)ceil((double)v[1] / 1000.0);
        *retry_s = secs < 1 ? 1 : secs;
        return -1;
    }
    if (st == RLINK_OK)
        log_msg(LOG_WARN, "rl_reserve: unexpected reply (%s)",
                r && r->type == REDIS_REPLY_ERROR ? r->str : "type");
    /* unreachable (the reservation may have been made: its slot is
     * wasted), or a reply we cannot read: the instance's own limiter,
     * and its own share of the window */
    s->remote->failing = 1;
    track_mode(s, now);
    cut_off(s, now); /* up still: the quiet as if down */
    return reserve_local(s, now, it->no_refuse, &it->slot_ms, retry_s);
}

static void
on_reserved(void *arg, enum rlink_status st, const redisReply *r)
{
    struct shaper_item *it = arg;
    struct shaper *s = it->s;
    double now = now_of(s);
    long retry = 1;
    it->cmd = NULL;
    TAILQ_REMOVE(&s->reserving, it, link);
    s->st.reserving--;
    int rc = reserved(s, it, st, r, now, &retry);
    if (it->in_call) {
        /* inside shaper_submit(): it decides */
        it->answered = rc == 0 ? 1 : -1;
        it->deadline_ms = (double)retry; /* carried back */
        return;
    }
    if (rc != 0) {
        s->st.refused++;
        shaper_refuse refuse = it->refuse;
        void *item = it->item;
        free(it);
        refuse(item, retry);
        return;
    }
    enqueue(s, it, it->slot_ms);
    if (!s->running)
        shaper_run(s);
}

static void
reserve_remote(struct shaper *s, struct shaper_item *it)
{
    char t[32], burst[32], maxq[32];
    interval_us(s, t, sizeof(t));
    snprintf(burst, sizeof(burst), "%ld", s->burst < 1 ? 1 : s->burst);
    if (it->no_refuse)
        snprintf(maxq, sizeof(maxq), "%.0f", 1e15);
    else
        snprintf(maxq, sizeof(maxq), "%.0f", s->max_queue_ms * 1000.0);
    const char *argv[] = {s->remote->k_rl, s->remote->k_pause, t, burst, maxq};
    TAILQ_INSERT_TAIL(&s->reserving, it, link);
    s->st.reserving++;
    it->in_call = 1;
    it->answered = 0;
    it->cmd = eval(s, RS_RL_RESERVE, argv, 5, on_reserved, it);
    it->in_call = 0;
}

/* ---- the public calls ---- */

struct shaper *
shaper_new(struct event_base *base, double rate, long burst,
           long long max_queue_ms)
{
    struct shaper *s = xcalloc(1, sizeof(*s));
    s->base = base;
    TAILQ_INIT(&s->queue);
    TAILQ_INIT(&s->reserving);
    s->timer = evtimer_new(base, on_timer, s);
    if (s->timer == NULL)
        alloc_oom("evtimer_new");
    s->on = rate > 0;
    s->rate = rate;
    s->burst = burst;
    rl_init(&s->rl, s->on ? rate : 1, burst);
    s->max_queue_ms = (double)max_queue_ms;
    s->grace_ms = SHAPER_GUARD_GRACE_MS(max_queue_ms);
    s->last_slot = -INFINITY;
    s->wake_ms = INFINITY;
    rl_guard_init(&s->guard, guard_size(rate, burst), SHAPER_GUARD_WINDOW_MS);
    rl_guard_set_cap(&s->guard, SHAPER_GUARD_CAP_MS);
    return s;
}

/* The instance's own limiter's rate: the whole rate, or its share. */
static double
local_rate(const struct shaper *s)
{
    return s->remote != NULL ? s->rate / s->remote->instances : s->rate;
}

void
shaper_configure(struct shaper *s, double rate, long burst,
                 long long max_queue_ms)
{
    int was_on = s->on;
    s->on = rate > 0;
    s->rate = rate;
    s->burst = burst;
    if (s->on && !was_on)
        rl_init(&s->rl, local_rate(s), burst);
    else if (s->on)
        rl_configure(&s->rl, local_rate(s), burst);
    s->max_queue_ms = (double)max_queue_ms;
    s->grace_ms = SHAPER_GUARD_GRACE_MS(max_queue_ms);
    fit_guard(s);
    shaper_arm(s);
}

void
shaper_share(struct shaper *s, const struct shaper_share *share)
{
    struct shaper_remote *re = s->remote;
    if (re == NULL) {
        re = xcalloc(1, sizeof(*re));
        re->link = share->link;
        size_t n = strlen(share->key_base) + strlen(share->limiter) + 8;
        re->k_rl = xmalloc(n);
        re->k_pause = xmalloc(n);
        re->k_dep = xmalloc(n);
        re->k_alive = xmalloc(n);
        re->k_log = xmalloc(n);
        re->k_hold = xmalloc(n);
        snprintf(re->k_rl, n, "%srl:%s", share->key_base, share->limiter);
        snprintf(re->k_pause, n, "%spause:%s", share->key_base, share->limiter);
        snprintf(re->k_dep, n, "%sdep:%s", share->key_base, share->limiter);
        snprintf(re->k_alive, n, "%salive:%s", share->key_base, share->limiter);
        snprintf(re->k_log, n, "%slog:%s", share->key_base, share->limiter);
        snprintf(re->k_hold, n, "%shold:%s", share->key_base, share->limiter);
        /* a member of the departure log is unique per instance */
        unsigned char r[8] = {0};
        if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
            uint64_t x = (uint64_t)getpid() ^ (uint64_t)clock_wall_ms();
            memcpy(r, &x, sizeof(r));
        }
        for (size_t i = 0; i < sizeof(r); i++)
            snprintf(re->nonce + 2 * i, 3, "%02x", r[i]);
        TAILQ_INIT(&re->members);
        re->ask_at = -INFINITY;
        re->paused_until = -INFINITY;
        re->quiet_until = -INFINITY;
        re->rejoin_at = -INFINITY;
        re->stamp_at = -INFINITY;
        re->beat_at = -INFINITY;
        /* as if up: a link found down at the first look gets the quiet
         * too (other instances may have just filled the window) */
        re->seen_up = 1;
        s->remote = re;
    }
    re->instances = share->instances >= 1 ? share->instances : 1;
    re->pending_ms = share->pending_ms > 0 ? share->pending_ms : 0;
    if (s->on)
        rl_configure(&s->rl, local_rate(s), s->burst);
    fit_guard(s);
}

int
shaper_submit(struct shaper *s, void *item, shaper_go go, shaper_refuse refuse,
              long *retry_after_s)
{
    double now = now_of(s), slot;
    struct shaper_item *it;
    s->st.submitted++;
    if (!s->on) {
        hand_over(s, now, go, item, NULL);
        return 0;
    }
    track_mode(s, now);
    if (redis_slots(s, now)) {
        it = xcalloc(1, sizeof(*it));
        it->s = s;
        it->item = item;
        it->go = go;
        it->refuse = refuse;
        it->queued_ms = now;
        reserve_remote(s, it);
        if (it->answered == 0)
            return 0; /* the usual case: answered from the loop */
        if (it->answered < 0) {
            *retry_after_s = (long)it->deadline_ms;
            s->st.refused++;
            free(it);
            return -1;
        }
        slot = it->slot_ms;
    } else {
        if (reserve_local(s, now, 0, &slot, retry_after_s) != 0) {
            s->st.refused++;
            return -1;
        }
        if (s->remote == NULL && slot <= now && TAILQ_EMPTY(&s->queue) &&
            now >= rl_guard_until(&s->guard)) {
            hand_over(s, slot, go, item, NULL);
            return 0;
        }
        it = xcalloc(1, sizeof(*it));
        it->s = s;
        it->item = item;
        it->go = go;
        it->refuse = refuse;
        it->queued_ms = now;
    }
    enqueue(s, it, slot);
    /* shared mode goes through the timer even when due (the shared
     * guard's answer comes from the loop) */
    if (TAILQ_FIRST(&s->queue) == it)
        shaper_arm(s);
    return 0;
}

/* The oldest hand-over not left yet: a plain one if any (keeping Redis's
 * entries, which then count longer: safe), else the oldest member,
 * whose id is copied to out. 0 when none was Redis's (*plain: it was a
 * plain one). */
static int
take_member(struct shaper_remote *re, char *out, int *plain)
{
    *plain = 0;
    if (re->plain > 0) {
        re->plain--;
        *plain = 1;
        return 0;
    }
    struct shaper_member *m = TAILQ_FIRST(&re->members);
    if (m == NULL)
        return 0;
    TAILQ_REMOVE(&re->members, m, link);
    snprintf(out, SHAPER_MEMBER_MAX, "%s", m->id);
    free(m);
    return 1;
}

uint64_t
shaper_left(struct shaper *s)
{
    double now = now_of(s);
    uint64_t ticket = rl_guard_left(&s->guard, now);
    char id[SHAPER_MEMBER_MAX];
    int plain = 0, member = 0;
    if (s->remote != NULL)
        member = take_member(s->remote, id, &plain);
    if (plain) /* left without a grant: not in Redis's log */
        solo_add(s->remote, now + SHAPER_GUARD_CAP_MS, ticket);
    if (member) {
        report(s, "left", id);
        struct shaper_remote *re = s->remote;
        if (ticket != 0) {
            size_t i = re->trip_next++ % SHAPER_TRIPS;
            re->trips[i].ticket = ticket;
            snprintf(re->trips[i].id, SHAPER_MEMBER_MAX, "%s", id);
        }
    }
    shaper_arm(s);
    return ticket;
}

void
shaper_answered(struct shaper *s, uint64_t ticket)
{
    double now = now_of(s);
    rl_guard_answered(&s->guard, ticket, now);
    struct shaper_remote *re = s->remote;
    if (re != NULL && ticket != 0)
        solo_answered(re, ticket, now);
    for (size_t i = 0; re != NULL && ticket != 0 && i < SHAPER_TRIPS; i++) {
        if (re->trips[i].ticket != ticket)
            continue;
        re->trips[i].ticket = 0;
        report(s, "done", re->trips[i].id);
        break;
    }
    shaper_arm(s);
}

void
shaper_dropped(struct shaper *s)
{
    rl_guard_dropped(&s->guard);
    char id[SHAPER_MEMBER_MAX];
    int plain;
    if (s->remote != NULL && take_member(s->remote, id, &plain))
        report(s, "drop", id);
    shaper_arm(s);
}

int
shaper_cancel(struct shaper *s, void *item)
{
    struct shaper_item *it;
    TAILQ_FOREACH(it, &s->reserving, link)
    {
        if (it->item != item)
            continue;
        /* the reservation may still be made in Redis: its slot is lost */
        s->remote->link.cancel(s->remote->link.link, it->cmd);
        TAILQ_REMOVE(&s->reserving, it, link);
        s->st.reserving--;
        free(it);
        return 1;
    }
    TAILQ_FOREACH(it, &s->queue, link)
    {
        if (it->item != item)
            continue;
        int was_head = it == TAILQ_FIRST(&s->queue);
        TAILQ_REMOVE(&s->queue, it, link);
        s->st.depth--;
        free(it);
        if (TAILQ_EMPTY(&s->queue))
            shared_grant_give_back(s); /* nobody left to use it */
        if (was_head)
            shaper_arm(s);
        return 1;
    }
    return 0;
}

/* The waiting items' slots, in queue order (ascending). */
static double *
queue_slots(const struct shaper *s, size_t *n)
{
    const struct shaper_item *it;
    double *v = xmalloc((s->st.depth ? s->st.depth : 1) * sizeof(*v));
    *n = 0;
    TAILQ_FOREACH(it, &s->queue, link)
    {
        v[(*n)++] = it->slot_ms;
    }
    return v;
}

size_t
shaper_withdraw(struct shaper *s, shaper_match match, shaper_back back,
                void *arg)
{
    struct shaper_queue taken;
    struct shaper_item *it, *next;
    size_t nslots, k = 0, queued = 0;
    TAILQ_INIT(&taken);
    /* still awaiting Redis: no slot yet (its reservation is lost there) */
    for (it = TAILQ_FIRST(&s->reserving); it != NULL; it = next) {
        next = TAILQ_NEXT(it, link);
        if (!match(it->item, arg))
            continue;
        s->remote->link.cancel(s->remote->link.link, it->cmd);
        TAILQ_REMOVE(&s->reserving, it, link);
        s->st.reserving--;
        TAILQ_INSERT_TAIL(&taken, it, link);
    }
    double *slots = queue_slots(s, &nslots);
    for (it = TAILQ_FIRST(&s->queue); it != NULL; it = next) {
        next = TAILQ_NEXT(it, link);
        if (!match(it->item, arg))
            continue;
        TAILQ_REMOVE(&s->queue, it, link);
        s->st.depth--;
        TAILQ_INSERT_TAIL(&taken, it, link);
        queued++;
    }
    /* the ones left move up into the first slots, in order: the instance
     * holds the same slot times (Redis's schedule counts them as its
     * own), fewer items use them; deadlines stay (a subset of a rising
     * sequence still rises, and a slot only moves earlier) */
    TAILQ_FOREACH(it, &s->queue, link)
    {
        it->slot_ms = slots[k++];
    }
    free(slots);
    if (s->remote == NULL)
        rl_release(&s->rl, (int64_t)queued); /* the last ones are free */
    if (TAILQ_EMPTY(&s->queue))
        shared_grant_give_back(s); /* nobody left to use it */
    size_t n = 0;
    while ((it = TAILQ_FIRST(&taken)) != NULL) {
        TAILQ_REMOVE(&taken, it, link);
        void *item = it->item;
        free(it);
        n++;
        back(item, arg);
    }
    shaper_arm(s);
    return n;
}

/* After a pause: the waiting items now beyond the queue bound are a
 * suffix of the queue (slots grow along it). They are refused, newest
 * first, and (memory mode) their slots given back. */
static void
refuse_beyond_bound(struct shaper *s, double now)
{
    int64_t released = 0;
    struct shaper_item *it;
    while ((it = TAILQ_LAST(&s->queue, shaper_queue)) != NULL &&
           it->slot_ms - now > s->max_queue_ms && !it->no_refuse) {
        TAILQ_REMOVE(&s->queue, it, link);
        s->st.depth--;
        s->st.refused++;
        released++;
        long secs = (long)ceil((it->slot_ms - now - s->max_queue_ms) / 1000);
        shaper_refuse refuse = it->refuse;
        void *item = it->item;
        free(it);
        refuse(item, secs < 1 ? 1 : secs);
    }
    /* shared slots are Redis's: a refused one is wasted there */
    if (s->remote == NULL)
        rl_release(&s->rl, released);
}

static void
pause_queue(struct shaper *s, double now, double pause_ms)
{
    struct shaper_item *head = TAILQ_FIRST(&s->queue), *it;
    double delay = rl_pause(&s->rl, now, pause_ms, head ? head->slot_ms : -1);
    if (s->remote != NULL && now + pause_ms > s->remote->paused_until) {
        if (s->remote->paused_until == -INFINITY)
            s->remote->poll_at = now + SHAPER_PAUSE_POLL_MS;
        s->remote->paused_until = now + pause_ms;
    }
    if (delay <= 0)
        return;
    /* the head goes later than it was granted for (maybe later than its
     * entry counts): it asks again then */
    shared_grant_give_back(s);
    TAILQ_FOREACH(it, &s->queue, link)
    {
        it->slot_ms += delay;
    }
    refuse_beyond_bound(s, now);
    deadlines_follow_slots(s);
}

void
shaper_pause(struct shaper *s, double pause_ms)
{
    if (!s->on)
        return;
    double now = now_of(s);
    s->st.pauses++;
    if (s->remote != NULL) {
        /* every instance's: no slot, no departure before its end */
        char us[32];
        snprintf(us, sizeof(us), "%.0f", ceil(pause_ms * 1000.0));
        const char *argv[] = {s->remote->k_rl, s->remote->k_pause, us};
        eval(s, RS_RL_PAUSE, argv, 3, NULL, NULL);
    }
    pause_queue(s, now, pause_ms);
    shaper_arm(s);
}

/* The pause is over early: the waiting items get new slots from now on,
 * in order (every one was accepted once: none is refused now). */
static void
resume_queue(struct shaper *s, double now)
{
    struct shaper_item *it;
    double slot;
    rl_restart(&s->rl, s->last_slot);
    shared_grant_give_back(s); /* a new ask comes */
    if (s->remote != NULL)
        /* an ask answered "paused" waits for the pause's end: now */
        s->remote->ask_at = -INFINITY;
    if (sharing(s)) {
        /* after the resume (one connection: Redis runs the commands in
         * the order sent) */
        while ((it = TAILQ_FIRST(&s->queue)) != NULL) {
            TAILQ_REMOVE(&s->queue, it, link);
            s->st.depth--;
            s->st.waited--;
            it->no_refuse = 1;
            reserve_remote(s, it);
            /* answered within the call (the link just went down): by the
             * instance's own limiter, which does not refuse it */
            if (it->answered > 0)
                enqueue(s, it, it->slot_ms);
        }
        return;
    }
    TAILQ_FOREACH(it, &s->queue, link)
    {
        rl_reserve(&s->rl, now, INFINITY, &slot);
        it->slot_ms = slot;
    }
    deadlines_follow_slots(s);
}

int
shaper_resume(struct shaper *s)
{
    double now = now_of(s);
    if (!s->on)
        return 0;
    int paused = s->rl.paused_until > now ||
                 (s->remote != NULL && s->remote->paused_until > now);
    if (s->remote != NULL) {
        /* every instance's pause ends, whoever asked for it; ours knows
         * only of those it saw */
        const char *argv[] = {s->remote->k_rl, s->remote->k_pause};
        eval(s, RS_RL_RESUME, argv, 2, NULL, NULL);
        s->remote->paused_until = -INFINITY;
        s->remote->ask_at = -INFINITY;
    }
    if (!paused)
        return 0;
    resume_queue(s, now);
    shaper_arm(s);
    return 1;
}

void
shaper_link_changed(struct shaper *s)
{
    if (s == NULL || s->remote == NULL)
        return;
    track_mode(s, now_of(s));
    shaper_arm(s);
}

void
shaper_set_clock(struct shaper *s, shaper_clock clock, void *ctx)
{
    s->clock = clock;
    s->clock_ctx = ctx;
}

double
shaper_next_ms(const struct shaper *s)
{
    return s->wake_ms;
}

void
shaper_get_stats(const struct shaper *s, struct shaper_stats *st)
{
    *st = s->st;
    st->on_the_way = s->guard.pending;
}

void
shaper_free(struct shaper *s)
{
    if (s == NULL)
        return;
    struct shaper_item *it;
    while ((it = TAILQ_FIRST(&s->queue)) != NULL) {
        TAILQ_REMOVE(&s->queue, it, link);
        free(it);
    }
    struct shaper_remote *re = s->remote;
    while ((it = TAILQ_FIRST(&s->reserving)) != NULL) {
        TAILQ_REMOVE(&s->reserving, it, link);
        re->link.cancel(re->link.link, it->cmd);
        free(it);
    }
    if (re != NULL) {
        if (re->ask != NULL)
            re->link.cancel(re->link.link, re->ask);
        if (re->poll != NULL)
            re->link.cancel(re->link.link, re->poll);
        if (re->beat != NULL)
            re->link.cancel(re->link.link, re->beat);
        if (re->back != NULL)
            re->link.cancel(re->link.link, re->back);
        struct shaper_member *m;
        while ((m = TAILQ_FIRST(&re->members)) != NULL) {
            TAILQ_REMOVE(&re->members, m, link);
            free(m);
        }
        free(re->k_rl);
        free(re->k_pause);
        free(re->k_dep);
        free(re->k_alive);
        free(re->k_log);
        free(re->k_hold);
        free(re);
    }
    event_free(s->timer);
    rl_guard_free(&s->guard);
    free(s);
}

/* ---- Retry-After ---- */

static double
cap(double ms, double max_ms)
{
    return ms < max_ms ? ms : max_ms;
}

double
shaper_retry_after_ms(const char *value, time_t now, double default_ms,
                      double max_ms)
{
    if (value == NULL)
        return cap(default_ms, max_ms);
    const char *v = value;
    while (*v == ' ' || *v == '\t')
        v++;
    if (isdigit((unsigned char)*v)) {
        /* delta-seconds: digits only; a huge number saturates at the cap
         * rather than overflowing */
        double secs = 0;
        const char *p = v;
        for (; isdigit((unsigned char)*p); p++)
            secs = secs < 1e12 ? secs * 10 + (*p - '0') : secs;
        while (*p == ' ' || *p == '\t')
            p++;
        return *p == '\0' ? cap(secs * 1000.0, max_ms)
                          : cap(default_ms, max_ms);
    }
    /* an HTTP-date starts with the day name (RFC 9110 section 5.6.7): a
     * sign or any other start is not one, whatever curl_getdate() makes
     * of it */
    if (!isalpha((unsigned char)*v))
        return cap(default_ms, max_ms);
    time_t when = curl_getdate(v, &now);
    if (when == (time_t)-1 || when <= now)
        return cap(default_ms, max_ms);
    return cap((double)(when - now) * 1000.0, max_ms);
}
