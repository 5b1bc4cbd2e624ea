/* sb_api: the five upstream routes of ../shared/upstream/ (pure: no I/O).
 *
 * sb_api_handle() answers one request as the upstream would, in the order
 * of checks written in docs/sandbox-contract.md, changing the sandbox state
 * (balance, windows, limiter) as a side effect. The request is borrowed;
 * *out must be zeroed or cleared before the call and is filled with a body
 * the caller releases with sb_response_clear().
 */
#ifndef SB_API_H
#define SB_API_H

#include "sb_sandbox.h"

#define SB_MESSAGE_MAX 4096
#define SB_NAME_MAX 255

void sb_api_handle(struct sb_sandbox *sb, const struct sb_request *rq,
                   int64_t mono_ms, struct sb_response *out);

#endif
