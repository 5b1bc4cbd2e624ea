/* cdp.h - a small Chrome DevTools Protocol client for the browser tests:
 * starts headless Chromium with --remote-debugging-pipe (it reads commands
 * on its fd 3 and writes replies and events on its fd 4, each message one
 * JSON text ended by a NUL byte), opens one page and drives it. Every read
 * from the pipe is bounded by a poll() timeout and every message by
 * CDP_MAX_MESSAGE; replies are matched by id, events not waited for are
 * dropped. On any failure the function returns -1 and c->err says why. */
#ifndef WAGATE_CDP_H
#define WAGATE_CDP_H

#include <json-c/json.h>
#include <stddef.h>
#include <sys/types.h>

#define CDP_MAX_MESSAGE (32u * 1024u * 1024u)

struct cdp {
    pid_t pid;         /* Chromium's (also its process group), 0 if none */
    int to_fd;         /* our end of its fd 3 */
    int from_fd;       /* our end of its fd 4 */
    char dir[64];      /* temp dir: profile/ and chromium.log */
    char session[128]; /* the page's sessionId (flatten mode) */
    char target[128];
    int next_id;
    char *buf; /* bytes read and not yet taken */
    size_t len, cap;
    /* an event waited for: set when one named `watch` for our session
     * arrives, while replies are awaited too */
    const char *watch;
    int watch_seen;
    char err[2048];
};

/* Starts Chromium ($CHROMIUM_BIN, else `chromium` on the PATH), opens a
 * page (about:blank) sized width x height. 0 on success; on failure -1,
 * err (and c->err) says why, and nothing is left running. */
int cdp_start(struct cdp *c, int width, int height, char *err, size_t errlen);

/* Navigates the page and waits (timeout_ms) for its load event. */
int cdp_navigate(struct cdp *c, const char *url, int timeout_ms);

/* Runtime.evaluate {expression, awaitPromise, returnByValue}: *out gets
 * the result's value (caller puts; NULL for undefined or null). An
 * exception thrown is a failure, its text in c->err. */
int cdp_eval(struct cdp *c, const char *expr, int timeout_ms,
             json_object **out);

/* Evaluates js_cond every 20 ms until it is truthy (0) or timeout_ms has
 * passed (-1, with the last value or exception in c->err). An exception
 * counts as not yet. */
int cdp_wait(struct cdp *c, const char *js_cond, int timeout_ms);

/* Page.captureScreenshot (PNG) written to path. */
int cdp_screenshot(struct cdp *c, const char *path);

/* Emulation.setDeviceMetricsOverride: the viewport is width x height. */
int cdp_set_size(struct cdp *c, int width, int height);

/* Browser.close, waits for the exit (5 s), SIGKILL after that (the whole
 * process group), removes the temp dir. Safe to call twice or on a struct
 * whose start failed (zeroed by cdp_start). */
void cdp_stop(struct cdp *c);

/* The tail of Chromium's own output (for a failure message); static. */
const char *cdp_log_tail(const struct cdp *c);

#endif
