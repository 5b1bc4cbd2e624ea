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

struct session_cache;

#define LEARN_WINDOW_MS (24LL * 3600 * 1000)

/* Returns 1 if the cache was taught something, 0 if not. */
int learn_from_answer(struct session_cache *c, enum route_id route,
                      long long sender, uint64_t phone, int status,
                      const char *body, size_t len, int64_t now);

#endif
