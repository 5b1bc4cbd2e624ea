/* redis_answer.h - an idempotency answer (idempotency.h's struct
 * idem_answer: status, headers, body) as the bytes the Redis backend
 * keeps for a key (idem_finish.lua stores them, idem_begin.lua hands
 * them back; SPEC sections 5 and 11). Pure; binary-safe (a body may hold
 * any byte).
 *
 * Layout, every number a big-endian uint32:
 *   "WGA1" status nheaders { namelen name valuelen value }* bodylen body
 * Decoding is strict: a value that is not exactly one such encoding
 * (truncated, trailing bytes, a status outside 100..599, more than
 * REDIS_ANSWER_MAX_HEADERS headers, a header name empty or holding a
 * byte that is not visible ASCII, a value holding NUL, CR or LF) is
 * refused, so that a corrupt or foreign value is "unavailable", never a
 * crash or a forged answer. */
#ifndef WAGATE_REDIS_ANSWER_H
#define WAGATE_REDIS_ANSWER_H

#include <stddef.h>

#include "idempotency.h"

#define REDIS_ANSWER_MAX_HEADERS 256

/* A new buffer (caller frees) with a's encoding; *len its length. a is
 * borrowed. a's headers are taken as they are (the relay keeps only
 * well-formed ones); one that would not decode makes the call return
 * NULL, so that nothing is kept that could not be replayed. */
char *redis_answer_encode(const struct idem_answer *a, size_t *len);

/* The answer buf[0..len) encodes, in one allocation (caller free()s it;
 * its strings and body are NUL-terminated), or NULL when buf is not one
 * encoding (see above). */
struct idem_answer *redis_answer_decode(const char *buf, size_t len);

#endif
