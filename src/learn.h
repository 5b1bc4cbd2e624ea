/* learn.h - what the gateway learns from the upstream's answers (SPEC
 * section 4, Learning). Pure: an answer in, cache updates out.
 *
 *   send-freeform 200: session_status.is_open / expires_at
 *   send-freeform 403 SESSION_EXPIRED: closed, session_status.expired_at
 *   session-status 200: session_status (is_open, expires_at / expired_at)
 *   send (template) 2xx: open until now + 24 h
 * An answer that does not parse, or lacks what is needed, teaches nothing.
 * Answers are read by json_strict_parse_object(JSON_STRICT_ANSWER): json-c
 * strict, UTF-8 not validated, nothing read after a NUL byte (json_strict.h
 * says why this is kept).
 */
#ifndef WAGATE_LEARN_H
#define WAGATE_LEARN_H

#include <stddef.h>
#include <stdint.h>

#include "route.h"
#include "session_cache.h"

#define LEARN_WINDOW_MS (24LL * 3600 * 1000)

/* What an answer teaches of one window, before it is put anywhere: the
 * memory cache (learn_from_answer) and the Redis backend (state_redis.c)
 * both take it from learn_extract(), so that they learn the same. */
struct learn_lesson {
    int open;                 /* 1 open, 0 closed */
    int64_t when;             /* open: expires_at; closed: expired_at or
                                 CACHE_TIME_UNKNOWN; unused when for_ms */
    int64_t for_ms;           /* > 0: open for that long from the moment
                                 it is learned (a template send), not
                                 until when */
    enum cache_source source; /* session_cache.h */
};

/* 1 and *l when the answer teaches something, 0 when not. Pure; no
 * clock. */
int learn_extract(enum route_id route, long long sender, uint64_t phone,
                  int status, const char *body, size_t len,
                  struct learn_lesson *l);

/* learn_extract(), then the lesson put in c at now. Returns 1 if the
 * cache was taught something, 0 if not. */
int learn_from_answer(struct session_cache *c, enum route_id route,
                      long long sender, uint64_t phone, int status,
                      const char *body, size_t len, int64_t now);

#endif
