/* reqid.h - request ids: accept the caller's when sane, else make one. */
#ifndef WAGATE_REQID_H
#define WAGATE_REQID_H

#include <stddef.h>

#define REQID_MAX 128 /* longest id accepted from a caller */

/* 1 if s is 1..REQID_MAX visible ASCII characters (0x21..0x7e). */
int reqid_valid(const char *s);

/* Writes a new 32-hex-digit id and NUL into out (needs 33 bytes). Ids are
 * random (seeded from getrandom) so that two gateways never collide. */
void reqid_generate(char out[33]);

/* Copies the caller's id into out when valid, else generates one. out must
 * hold REQID_MAX + 1 bytes. */
void reqid_choose(const char *from_caller, char out[REQID_MAX + 1]);

#endif
