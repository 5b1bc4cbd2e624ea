/* redis_link.h - one asynchronous connection to Redis on the gateway's
 * libevent loop (hiredis and its libevent adapter), for the shared state
 * of SPEC section 11. Nothing here blocks the loop.
 *
 * hiredis 0.14 has no connect or command timeouts, so the link arms its
 * own: a connect, or any command, that has not answered within
 * timeout_ms counts as "unreachable". The link then drops the connection
 * (every command still pending on it is answered RLINK_UNAVAILABLE) and
 * reconnects from the loop with backoff. A timed-out command may still
 * have run in Redis: callers must treat UNAVAILABLE as "may or may not
 * have taken effect", never as "did not run".
 *
 * Circuit breaker: while the link is down (not connected, or connected
 * but its scripts not loaded yet), a command is answered UNAVAILABLE
 * within the call, without waiting for a timeout, so that a dead Redis
 * adds nothing to a request's latency. Each transition up/down is logged
 * once (log.h: "state: redis up (url ...)", warn "state: redis down:
 * <reason>"; a link that never came up logs its first failure the same
 * way; the retries that follow are debug lines) and an up/down flip is
 * reported to the on_change callback. Reconnects back off from 50 ms,
 * doubling to 2 s, back to 50 ms once up; a connect that has not finished
 * its handshake within timeout_ms counts as failed (a frozen Redis
 * accepts TCP connects in the kernel and answers nothing).
 *
 * Health check: an idle link would not notice a frozen or vanished Redis
 * (no reset: a SIGSTOP, a host gone) until its next command timed out,
 * and rlink_up() would say "up" meanwhile. So while up, every
 * rlink_health_ms(timeout_ms) (max(1 s, 4 x timeout_ms)) with no command
 * of the caller's pending, the link sends a PING of its own; one not
 * answered within timeout_ms (or answered with an error) takes the link
 * down like any command (logged, counted in timeouts). A link with
 * commands pending sends none: their deadlines tell. The PING is not a
 * command of the caller's (not in commands, pending, or rlink_when_idle).
 * Detection of a dead idle link therefore takes at most
 * rlink_health_ms + timeout_ms.
 *
 * Scripts: the link is given the script table at creation (redis_scripts.h).
 * At each connect it authenticates (AUTH, when a password is set),
 * selects the database, and loads every script (SCRIPT LOAD), checking
 * that Redis's SHA1 is the one it computed; only then is it up.
 * rlink_eval() sends EVALSHA; on a NOSCRIPT error (a restarted or
 * failed-over Redis with an empty script cache) it sends the same call
 * once more as EVAL with the script's source, transparently; one
 * deadline (timeout_ms from rlink_eval) covers both.
 *
 * The password is never logged, never put in an error string.
 *
 * Callbacks run from the loop (or within rlink_eval when down) and may
 * call anything here, rlink_free() included. The event_base must outlive
 * the link. hiredis 0.14 would resolve a host name with a blocking
 * getaddrinfo() at each connect, so rlink_parse_url() takes only an IP
 * address, "localhost" (as 127.0.0.1) or a unix socket. */
#ifndef WAGATE_REDIS_LINK_H
#define WAGATE_REDIS_LINK_H

#include <stddef.h>
#include <stdint.h>

/* The longest reconnect backoff (see above): instances that lost the
 * same Redis are all up again within this (plus a handshake) of its
 * return. shaper.h's hold before sharing again is built on it. */
#define RLINK_BACKOFF_MAX_MS 2000

struct event_base;
struct redisReply;
struct rlink;
struct rlink_cmd; /* a pending command; the link's */

/* One Lua script: a name for logs and its source (static storage). */
struct rlink_script {
    const char *name;
    const char *source;
};

struct rlink_config {
    /* "redis://host[:port][/db]" (port 6379, db 0 by default) or
     * "unix:PATH" (db 0); checked by rlink_parse_url() */
    const char *url;
    const char *password; /* NULL: no AUTH; copied, wiped at free */
    long timeout_ms;      /* per connect and per command, > 0 */
};

enum rlink_status {
    RLINK_OK = 0,      /* r is Redis's reply (possibly an error reply) */
    RLINK_UNAVAILABLE, /* no reply: down, timed out, or dropped */
};

/* r is valid during the call only; NULL unless RLINK_OK. An error reply
 * of the script itself (REDIS_REPLY_ERROR other than NOSCRIPT) is
 * RLINK_OK with r->type == REDIS_REPLY_ERROR: the caller decides. */
typedef void (*rlink_reply_cb)(void *arg, enum rlink_status st,
                               const struct redisReply *r);

/* up is 1 when the link just came up, 0 when it just went down (only
 * flips: a link that never came up reports nothing). */
typedef void (*rlink_change_cb)(void *arg, int up);

/* Parses url (pure): 0, or -1 with a reason in err (never the URL's
 * password, which the URL must not carry: "redis://:pw@..." is refused,
 * the password comes from a file). host gets the host or the socket
 * path, port 0 for a socket. */
int rlink_parse_url(const char *url, char *host, size_t hostlen, int *port,
                    int *db, char *err, size_t errlen);

/* Starts connecting at once (from the loop: the call does not wait).
 * scripts (n entries) are borrowed and must outlive the link; the config
 * is copied. NULL with a reason in err when the URL is bad. */
struct rlink *rlink_new(struct event_base *base, const struct rlink_config *cfg,
                        const struct rlink_script *scripts, size_t n,
                        rlink_change_cb on_change, void *change_arg, char *err,
                        size_t errlen);

/* The health check's period for timeout_ms (pure): max(1000, 4 x
 * timeout_ms) ms. */
long rlink_health_ms(long timeout_ms);

/* New timeout (reload); the URL and password are fixed at creation. */
void rlink_set_timeout(struct rlink *l, long timeout_ms);

/* Runs script number `script` (an index into the table) with nkeys keys
 * followed by the other arguments: argv[0..argc) with lengths argvlen
 * (binary-safe; copied before the call returns). cb runs exactly once,
 * unless cancelled: within the call (returning NULL) when the link is
 * down, else later from the loop (returning a handle valid until cb runs
 * or rlink_cancel()). */
struct rlink_cmd *rlink_eval(struct rlink *l, size_t script, int nkeys,
                             int argc, const char *const *argv,
                             const size_t *argvlen, rlink_reply_cb cb,
                             void *arg);

/* cb of c will not run; the command itself may still run in Redis. */
void rlink_cancel(struct rlink *l, struct rlink_cmd *c);

/* 1 while up (connected, authenticated, scripts loaded). */
int rlink_up(const struct rlink *l);

struct rlink_stats {
    uint64_t commands; /* rlink_eval() calls */
    uint64_t failed;   /* answered UNAVAILABLE (down, timeout, drop) */
    uint64_t timeouts; /* commands, connects or health checks that hit
                        * timeout_ms */
    uint64_t noscript; /* EVALSHA answered NOSCRIPT, resent as EVAL */
    uint64_t connects; /* times the link came up */
    uint64_t downs;    /* times it went down */
    size_t pending;    /* commands waiting for their reply now */
};

void rlink_get_stats(const struct rlink *l, struct rlink_stats *st);

/* done(arg) runs once no command is pending (within the call when none
 * is): the drain's wait for what it asked to take effect. Bounded by the
 * commands' timeouts. One waiter at a time; a new call replaces it. */
void rlink_when_idle(struct rlink *l, void (*done)(void *arg), void *arg);

/* Pending commands are dropped without their callbacks (their owners are
 * gone by then); the password is wiped. NULL ok. */
void rlink_free(struct rlink *l);

#endif
