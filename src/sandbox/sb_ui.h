/* sb_ui: the inbox page's bytes, src/sandbox/ui/inbox.html embedded at
 * build time (scripts/embed-file.sh -> sb_ui_inbox.c in the build
 * directory). Served by sb_http on GET / (docs/inbox-page.md). The array
 * has a NUL after its sb_ui_inbox_len bytes.
 */
#ifndef SB_UI_H
#define SB_UI_H

#include <stddef.h>

extern const unsigned char sb_ui_inbox[];
extern const size_t sb_ui_inbox_len;

#endif
