/* sb_rate: the sandbox's per-key sliding-window rate limiter (pure).
 *
 * At most `limit` requests are allowed in any 1000 ms: the limiter keeps the
 * arrival times of the last `limit` allowed requests and admits a new one
 * when fewer than `limit` were allowed, or the oldest of them is at least
 * 1000 ms old. Refused requests are not recorded. `now_ms` is a monotonic
 * clock in milliseconds and must not go backwards.
 *
 * The limiter is owned by its creator and freed with sb_rate_free().
 */
#ifndef SB_RATE_H
#define SB_RATE_H

#include <stdbool.h>
#include <stdint.h>

#define SB_RATE_WINDOW_MS 1000
#define SB_RATE_MAX 100000u

struct sb_rate;

/* limit 0 = no limit. limit is clamped to SB_RATE_MAX. */
struct sb_rate *sb_rate_new(unsigned limit);
void sb_rate_free(struct sb_rate *r);
/* Changes the limit and forgets the history (a fresh window). */
void sb_rate_set_limit(struct sb_rate *r, unsigned limit);
unsigned sb_rate_limit(const struct sb_rate *r);
/* Admits (and records) or refuses one request at now_ms. */
bool sb_rate_allow(struct sb_rate *r, int64_t now_ms);
/* After a refusal: milliseconds until a request would be admitted. */
int64_t sb_rate_wait_ms(const struct sb_rate *r, int64_t now_ms);

#endif
