/* hx_redis.h - a real redis-server for the integration suites: started by
 * the test itself in a temporary directory (never the system service), on
 * a unix socket there and, when asked, on a loopback TCP port, with
 * persistence off (--save '' --appendonly no); stopped by its PID. Plus a
 * blocking hiredis client for the tests' own assertions (tests only: the
 * gateway never blocks on Redis). Every wait is bounded. */
#ifndef WAGATE_HX_REDIS_H
#define WAGATE_HX_REDIS_H

#include <hiredis/hiredis.h>
#include <sys/types.h>

struct hx_redis {
    pid_t pid;
    int port;       /* 0: unix socket only */
    char dir[64];   /* the temporary directory (its log is dir/redis.log) */
    char sock[96];  /* dir/redis.sock */
    char url[128];  /* for state.redis.url: "unix:<sock>" or redis://... */
    char pass[64];  /* requirepass, "" for none */
};

/* Starts redis-server ($REDIS_SERVER, default redis-server) and waits up
 * to 10 s until it answers PING. tcp: also listen on 127.0.0.1 (r->port,
 * and r->url is then redis://127.0.0.1:port/0). password: NULL for none.
 * 0 on success. */
int hx_redis_start(struct hx_redis *r, int tcp, const char *password);

/* Stops it (SIGTERM, SIGKILL after 5 s; a frozen one is thawed first) and
 * starts it again, empty, on the same socket and port. 0 on success. */
int hx_redis_restart(struct hx_redis *r);

/* SIGSTOP / SIGCONT: a Redis that accepts connections but answers
 * nothing, then answers again. */
void hx_redis_freeze(struct hx_redis *r);
void hx_redis_thaw(struct hx_redis *r);

/* Stops it and removes its directory. Safe to call twice. */
void hx_redis_stop(struct hx_redis *r);

/* A blocking client on the unix socket (1 s timeouts), authenticated;
 * NULL on failure. The caller redisFree()s it. */
redisContext *hx_redis_connect(const struct hx_redis *r);

/* One command through a fresh connection, its reply as an integer (an
 * integer reply, or a numeric string); LLONG_MIN on error. */
long long hx_redis_int(const struct hx_redis *r, const char *fmt, ...);

/* One command through a fresh connection: its reply's kind
 * (REDIS_REPLY_*), -1 when no reply came; an error reply is printed. */
int hx_redis_cmd(const struct hx_redis *r, const char *fmt, ...);

/* A Redis busy with a script of the test's own that never ends (read-only,
 * so SCRIPT KILL ends it): with busy-reply-threshold at 1 ms, every other
 * command gets BUSY. begin returns 0 once the script is sent; end kills it
 * (again until its own connection hears that it ended, bounded), puts the
 * threshold back and returns 0 when it ended; drop only closes what is
 * left (a teardown after a failed test). */
struct hx_redis_busy {
    redisContext *c;
};
int hx_redis_busy_begin(const struct hx_redis *r, struct hx_redis_busy *b);
int hx_redis_busy_end(const struct hx_redis *r, struct hx_redis_busy *b);
void hx_redis_busy_drop(struct hx_redis_busy *b);

/* A path to r of one gateway's own, to freeze alone: a forked child
 * forwarding loopback TCP (port, url "redis://127.0.0.1:port/0") to r's
 * unix socket, at most 16 connections, gone after 180 s at the latest.
 * SIGSTOP on it (hx_redis_path_freeze) is a Redis this one gateway cannot
 * reach (it accepts, answers nothing) while the others reach it directly.
 * Start returns 0 on success; stop is safe to call twice. */
struct hx_redis_path {
    pid_t pid;
    int port;
    char url[64];
};
int hx_redis_path_start(struct hx_redis_path *p, const struct hx_redis *r);
void hx_redis_path_freeze(struct hx_redis_path *p);
void hx_redis_path_thaw(struct hx_redis_path *p);
void hx_redis_path_stop(struct hx_redis_path *p);

/* The source the gateway embeds for the script src/redis/<name>.lua, built
 * from the source tree ($srcdir, as make check sets it, else "."): the
 * lines of src/redis/prelude.lua then the script's, each ending in "\n"
 * (scripts/embed-lua.sh's rule). NULL when a file cannot be read; the
 * caller frees it. */
char *hx_redis_script_source(const char *name);

#endif
