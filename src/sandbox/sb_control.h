/* sb_control: the /_sandbox/ control routes (pure: no I/O).
 *
 * They need no auth and are never recorded in the request log. Same
 * ownership rules as sb_api_handle(): the request is borrowed, *out is
 * filled and released by the caller with sb_response_clear().
 */
#ifndef SB_CONTROL_H
#define SB_CONTROL_H

#include "sb_sandbox.h"

#include <stdbool.h>

#define SB_CONTROL_PREFIX "/_sandbox"

/* True for "/_sandbox" and everything under "/_sandbox/". */
bool sb_is_control_path(const char *path);

void sb_control_handle(struct sb_sandbox *sb, const struct sb_request *rq,
                       int64_t mono_ms, struct sb_response *out);

#endif
