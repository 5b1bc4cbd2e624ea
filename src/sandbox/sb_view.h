/* sb_view: the JSON shapes the control routes and the live events share
 * (docs/sandbox-contract.md, docs/inbox-page.md), built from the pure
 * stores. Each returns a new json_object the caller owns; the arguments
 * are borrowed.
 */
#ifndef SB_VIEW_H
#define SB_VIEW_H

#include "sb_sandbox.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

/* Arbitrary bytes as JSON text (invalid UTF-8 shown as U+FFFD). */
json_object *sb_view_text(const char *s, size_t len);
/* Sandbox seconds as ISO 8601, or JSON null outside years 0001..9999. */
json_object *sb_view_time(int64_t t);
/* A message of a thread: {"id","at","kind","text",...}. */
json_object *sb_view_message(const struct sb_inbox_msg *m);
/* A thread's 24-hour window at sandbox time now. */
json_object *sb_view_window(struct sb_sandbox *sb,
                            const struct sb_inbox_thread *t, int64_t now);
/* A request of the log in full (headers, body, body_b64). */
json_object *sb_view_request(const struct sb_reqlog_entry *e);
/* A request of the log in short: {"seq","method","path","status",
 * "latency_ms" (null until answered),"fault"}. */
json_object *sb_view_log_entry(const struct sb_reqlog_entry *e);

#endif
