/* cdp.c - see cdp.h. */
#include "cdp.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"

#define START_TIMEOUT_MS 20000
#define CALL_TIMEOUT_MS 10000

static void
nap_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void __attribute__((format(printf, 2, 3)))
set_err(struct cdp *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

const char *
cdp_log_tail(const struct cdp *c)
{
    static char tail[1024];
    char path[96];
    tail[0] = '\0';
    if (c->dir[0] == '\0')
        return tail;
    snprintf(path, sizeof(path), "%s/chromium.log", c->dir);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return tail;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        fseek(f, n > (long)sizeof(tail) - 1 ? n - (long)sizeof(tail) + 1 : 0,
              SEEK_SET);
    }
    size_t got = fread(tail, 1, sizeof(tail) - 1, f);
    tail[got] = '\0';
    fclose(f);
    return tail;
}

/* ---- the process ---- */

static void
child_exec(const char *bin, char *const argv[], int cmd_rd, int ev_wr,
           const char *logpath)
{
    int nul = open("/dev/null", O_RDONLY);
    int log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (nul < 0 || log < 0)
        _exit(126);
    /* above 4 first, so that the dup2s below cannot clobber one another */
    int r = fcntl(cmd_rd, F_DUPFD, 10), w = fcntl(ev_wr, F_DUPFD, 10);
    int n = fcntl(nul, F_DUPFD, 10), l = fcntl(log, F_DUPFD, 10);
    if (r < 0 || w < 0 || n < 0 || l < 0)
        _exit(126);
    if (dup2(n, 0) < 0 || dup2(l, 1) < 0 || dup2(l, 2) < 0 || dup2(r, 3) < 0 ||
        dup2(w, 4) < 0)
        _exit(126);
    if (close_range(5, ~0u, 0) != 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (long fd = 5; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
            close((int)fd);
    }
    setpgid(0, 0); /* its helpers too can be killed as one group */
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(bin, argv);
    dprintf(2, "cannot run %s (set CHROMIUM_BIN): %s\n", bin, strerror(errno));
    _exit(127);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static void
remove_dir(char *dir)
{
    if (dir[0] != '\0')
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    dir[0] = '\0';
}

/* Waits up to timeout_ms for the process; 1 if it is gone (reaped). */
static int
reap(pid_t pid, int timeout_ms)
{
    double end = clock_mono_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return 1;
        if (clock_mono_ms() > end)
            return 0;
        nap_ms(5);
    }
}

/* ---- messages ---- */

/* Writes all of s and its NUL within the deadline. */
static int
send_text(struct cdp *c, const char *s, double deadline)
{
    size_t n = strlen(s) + 1, off = 0;
    while (off < n) {
        int left = (int)(deadline - clock_mono_ms());
        if (left <= 0) {
            set_err(c, "writing to Chromium timed out");
            return -1;
        }
        struct pollfd p = {c->to_fd, POLLOUT, 0};
        int pr = poll(&p, 1, left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t w = write(c->to_fd, s + off, n - off);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            set_err(c, "writing to Chromium: %s", strerror(errno));
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

/* The next whole message (caller frees), or NULL on timeout, EOF, error or
 * a message over CDP_MAX_MESSAGE (c->err says which). */
static char *
read_message(struct cdp *c, double deadline)
{
    for (;;) {
        char *nul = c->len ? memchr(c->buf, '\0', c->len) : NULL;
        if (nul != NULL) {
            size_t mlen = (size_t)(nul - c->buf);
            char *m = malloc(mlen + 1);
            if (m == NULL) {
                set_err(c, "out of memory");
                return NULL;
            }
            memcpy(m, c->buf, mlen + 1);
            memmove(c->buf, nul + 1, c->len - mlen - 1);
            c->len -= mlen + 1;
            return m;
        }
        if (c->len >= CDP_MAX_MESSAGE) {
            set_err(c, "a message from Chromium over %u bytes",
                    CDP_MAX_MESSAGE);
            return NULL;
        }
        int left = (int)(deadline - clock_mono_ms());
        if (left <= 0) {
            set_err(c, "no message from Chromium in time");
            return NULL;
        }
        struct pollfd p = {c->from_fd, POLLIN, 0};
        int pr = poll(&p, 1, left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        if (c->cap - c->len < 65536) {
            size_t cap = c->cap ? c->cap * 2 : 1 << 20;
            if (cap > CDP_MAX_MESSAGE + 65536)
                cap = CDP_MAX_MESSAGE + 65536;
            char *b = realloc(c->buf, cap);
            if (b == NULL) {
                set_err(c, "out of memory");
                return NULL;
            }
            c->buf = b;
            c->cap = cap;
        }
        ssize_t r = read(c->from_fd, c->buf + c->len, c->cap - c->len);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0) {
            set_err(c, "Chromium closed its pipe (%s); its output: %s",
                    r < 0 ? strerror(errno) : "EOF", cdp_log_tail(c));
            return NULL;
        }
        c->len += (size_t)r;
    }
}

static const char *
jstr(json_object *o, const char *key)
{
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) &&
                   json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* Notes an event, if it is the one watched for on our session. */
static void
saw_event(struct cdp *c, json_object *m, const char *method)
{
    const char *sid = jstr(m, "sessionId");
    if (c->watch && strcmp(method, c->watch) == 0 && sid &&
        strcmp(sid, c->session) == 0)
        c->watch_seen = 1;
}

/* Sends method(params) (params taken, may be NULL), on the page's session
 * when on_page, and waits for its reply: *result gets its "result"
 * (caller puts; may be NULL if result is NULL). */
static int
call(struct cdp *c, const char *method, json_object *params, int on_page,
     int timeout_ms, json_object **result)
{
    double deadline = clock_mono_ms() + timeout_ms;
    int id = ++c->next_id;
    json_object *msg = json_object_new_object();
    json_object_object_add(msg, "id", json_object_new_int(id));
    json_object_object_add(msg, "method", json_object_new_string(method));
    json_object_object_add(msg, "params",
                           params ? params : json_object_new_object());
    if (on_page)
        json_object_object_add(msg, "sessionId",
                               json_object_new_string(c->session));
    int rc = send_text(
        c, json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN),
        deadline);
    json_object_put(msg);
    if (rc != 0)
        return -1;
    if (result)
        *result = NULL;
    for (;;) {
        char *text = read_message(c, deadline);
        if (text == NULL) {
            char why[sizeof(c->err)];
            snprintf(why, sizeof(why), "%s", c->err);
            set_err(c, "%s: %s", method, why);
            return -1;
        }
        json_object *m = json_tokener_parse(text);
        free(text);
        if (m == NULL)
            continue; /* not JSON: not ours either */
        json_object *v;
        const char *ev = jstr(m, "method");
        if (ev != NULL) {
            saw_event(c, m, ev);
            json_object_put(m);
            continue;
        }
        if (!json_object_object_get_ex(m, "id", &v) ||
            json_object_get_int(v) != id) {
            json_object_put(m);
            continue; /* an answer to a call given up on */
        }
        if (json_object_object_get_ex(m, "error", &v)) {
            set_err(c, "%s failed: %s", method,
                    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
            json_object_put(m);
            return -1;
        }
        if (result && json_object_object_get_ex(m, "result", &v))
            *result = json_object_get(v);
        json_object_put(m);
        return 0;
    }
}

/* Reads until the watched event has come (0) or the deadline. */
static int
wait_event(struct cdp *c, int timeout_ms)
{
    double deadline = clock_mono_ms() + timeout_ms;
    while (!c->watch_seen) {
        char *text = read_message(c, deadline);
        if (text == NULL) {
            char why[sizeof(c->err)];
            snprintf(why, sizeof(why), "%s", c->err);
            set_err(c, "waiting for %s: %s", c->watch, why);
            return -1;
        }
        json_object *m = json_tokener_parse(text);
        free(text);
        const char *ev = jstr(m, "method");
        if (ev != NULL)
            saw_event(c, m, ev);
        json_object_put(m);
    }
    return 0;
}

/* ---- the API ---- */

static int
spawn(struct cdp *c)
{
    const char *bin = getenv("CHROMIUM_BIN");
    char profile[128], logpath[96];
    int cmd[2], ev[2];
    if (bin == NULL || *bin == '\0')
        bin = "chromium";
    snprintf(c->dir, sizeof(c->dir), "/tmp/wagate-cdp-XXXXXX");
    if (mkdtemp(c->dir) == NULL) {
        set_err(c, "mkdtemp: %s", strerror(errno));
        c->dir[0] = '\0';
        return -1;
    }
    snprintf(profile, sizeof(profile), "--user-data-dir=%s/profile", c->dir);
    snprintf(logpath, sizeof(logpath), "%s/chromium.log", c->dir);
    char *argv[] = {(char *)bin,
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage", /* a small /dev/shm in containers */
                    "--remote-debugging-pipe",
                    profile,
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-extensions",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--metrics-recording-only",
                    "--mute-audio",
                    "--hide-scrollbars",
                    "about:blank",
                    NULL};
    if (pipe2(cmd, O_CLOEXEC) != 0) {
        set_err(c, "pipe: %s", strerror(errno));
        return -1;
    }
    if (pipe2(ev, O_CLOEXEC) != 0) {
        set_err(c, "pipe: %s", strerror(errno));
        close(cmd[0]);
        close(cmd[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0)
        child_exec(bin, argv, cmd[0], ev[1], logpath);
    close(cmd[0]);
    close(ev[1]);
    if (pid < 0) {
        set_err(c, "fork: %s", strerror(errno));
        close(cmd[1]);
        close(ev[0]);
        return -1;
    }
    setpgid(pid, pid); /* also here: no race with a kill of the group */
    c->pid = pid;
    c->to_fd = cmd[1];
    c->from_fd = ev[0];
    fcntl(c->to_fd, F_SETFL, fcntl(c->to_fd, F_GETFL) | O_NONBLOCK);
    fcntl(c->from_fd, F_SETFL, fcntl(c->from_fd, F_GETFL) | O_NONBLOCK);
    return 0;
}

int
cdp_start(struct cdp *c, int width, int height, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->to_fd = c->from_fd = -1;
    /* a write to a Chromium that died must fail, not kill the test */
    signal(SIGPIPE, SIG_IGN);
    json_object *res = NULL, *p;
    if (spawn(c) != 0)
        goto failed;
    p = json_object_new_object();
    json_object_object_add(p, "url", json_object_new_string("about:blank"));
    if (call(c, "Target.createTarget", p, 0, START_TIMEOUT_MS, &res) != 0)
        goto failed;
    const char *tid = jstr(res, "targetId");
    if (tid == NULL) {
        set_err(c, "Target.createTarget: no targetId");
        goto failed;
    }
    snprintf(c->target, sizeof(c->target), "%s", tid);
    json_object_put(res);
    res = NULL;
    p = json_object_new_object();
    json_object_object_add(p, "targetId", json_object_new_string(c->target));
    json_object_object_add(p, "flatten", json_object_new_boolean(1));
    if (call(c, "Target.attachToTarget", p, 0, CALL_TIMEOUT_MS, &res) != 0)
        goto failed;
    const char *sid = jstr(res, "sessionId");
    if (sid == NULL) {
        set_err(c, "Target.attachToTarget: no sessionId");
        goto failed;
    }
    snprintf(c->session, sizeof(c->session), "%s", sid);
    json_object_put(res);
    res = NULL;
    if (call(c, "Page.enable", NULL, 1, CALL_TIMEOUT_MS, NULL) != 0 ||
        cdp_set_size(c, width, height) != 0)
        goto failed;
    return 0;
failed:
    json_object_put(res);
    if (err && errlen)
        snprintf(err, errlen, "%s", c->err);
    {
        char keep[sizeof(c->err)];
        snprintf(keep, sizeof(keep), "%s", c->err);
        cdp_stop(c);
        snprintf(c->err, sizeof(c->err), "%s", keep);
    }
    return -1;
}

int
cdp_set_size(struct cdp *c, int width, int height)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "width", json_object_new_int(width));
    json_object_object_add(p, "height", json_object_new_int(height));
    json_object_object_add(p, "deviceScaleFactor", json_object_new_int(1));
    json_object_object_add(p, "mobile", json_object_new_boolean(0));
    return call(c, "Emulation.setDeviceMetricsOverride", p, 1, CALL_TIMEOUT_MS,
                NULL);
}

int
cdp_navigate(struct cdp *c, const char *url, int timeout_ms)
{
    json_object *p = json_object_new_object(), *res = NULL;
    json_object_object_add(p, "url", json_object_new_string(url));
    c->watch = "Page.loadEventFired";
    c->watch_seen = 0;
    int rc = call(c, "Page.navigate", p, 1, timeout_ms, &res);
    const char *e = rc == 0 ? jstr(res, "errorText") : NULL;
    if (e != NULL && *e != '\0') {
        set_err(c, "Page.navigate %s: %s", url, e);
        rc = -1;
    }
    json_object_put(res);
    if (rc == 0)
        rc = wait_event(c, timeout_ms);
    c->watch = NULL;
    return rc;
}

int
cdp_eval(struct cdp *c, const char *expr, int timeout_ms, json_object **out)
{
    json_object *p = json_object_new_object(), *res = NULL, *v;
    json_object_object_add(p, "expression", json_object_new_string(expr));
    json_object_object_add(p, "awaitPromise", json_object_new_boolean(1));
    json_object_object_add(p, "returnByValue", json_object_new_boolean(1));
    json_object_object_add(p, "timeout", json_object_new_int(timeout_ms));
    *out = NULL;
    if (call(c, "Runtime.evaluate", p, 1, timeout_ms + 1000, &res) != 0)
        return -1;
    if (json_object_object_get_ex(res, "exceptionDetails", &v)) {
        json_object *ex, *d = NULL;
        const char *text = jstr(v, "text");
        if (json_object_object_get_ex(v, "exception", &ex))
            json_object_object_get_ex(ex, "description", &d);
        set_err(c, "exception in `%.300s`: %s %s", expr, text ? text : "",
                d ? json_object_get_string(d) : "");
        json_object_put(res);
        return -1;
    }
    json_object *r;
    if (json_object_object_get_ex(res, "result", &r) &&
        json_object_object_get_ex(r, "value", &v))
        *out = json_object_get(v);
    json_object_put(res);
    return 0;
}

int
cdp_wait(struct cdp *c, const char *js_cond, int timeout_ms)
{
    double end = clock_mono_ms() + timeout_ms;
    char last[512] = "";
    size_t n = strlen(js_cond) + 16;
    char *expr = malloc(n);
    if (expr == NULL) {
        set_err(c, "out of memory");
        return -1;
    }
    snprintf(expr, n, "!!(%s)", js_cond);
    for (;;) {
        json_object *v = NULL;
        int rc = cdp_eval(c, expr, CALL_TIMEOUT_MS, &v);
        int yes = rc == 0 && v != NULL && json_object_get_boolean(v);
        json_object_put(v);
        if (yes) {
            free(expr);
            return 0;
        }
        if (rc != 0) {
            if (c->pid == 0 || strncmp(c->err, "exception", 9) != 0) {
                free(expr);
                return -1; /* the browser itself failed */
            }
            snprintf(last, sizeof(last), "%.500s", c->err);
        }
        if (clock_mono_ms() > end)
            break;
        nap_ms(20);
    }
    set_err(c, "timed out after %d ms waiting for `%.600s`%s%s", timeout_ms,
            js_cond, last[0] ? "; last: " : "", last);
    free(expr);
    return -1;
}

int
cdp_screenshot(struct cdp *c, const char *path)
{
    json_object *p = json_object_new_object(), *res = NULL;
    json_object_object_add(p, "format", json_object_new_string("png"));
    if (call(c, "Page.captureScreenshot", p, 1, 20000, &res) != 0)
        return -1;
    const char *data = jstr(res, "data");
    if (data == NULL) {
        set_err(c, "Page.captureScreenshot: no data");
        json_object_put(res);
        return -1;
    }
    size_t len;
    char *png = b64_decode(data, &len);
    json_object_put(res);
    FILE *f = png ? fopen(path, "wb") : NULL;
    int ok = f && fwrite(png, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = 0;
    free(png);
    if (!ok) {
        set_err(c, "writing %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void
cdp_stop(struct cdp *c)
{
    if (c->pid > 0 && c->to_fd >= 0) {
        /* its reply may not come: the pipe closes as it exits */
        call(c, "Browser.close", NULL, 0, 2000, NULL);
    }
    if (c->to_fd > 2)
        close(c->to_fd);
    if (c->from_fd > 2)
        close(c->from_fd);
    c->to_fd = c->from_fd = -1;
    if (c->pid > 0) {
        if (!reap(c->pid, 5000)) {
            kill(-c->pid, SIGKILL);
            kill(c->pid, SIGKILL);
            waitpid(c->pid, NULL, 0);
        }
        /* helpers it left behind (same group, started by it) */
        kill(-c->pid, SIGKILL);
        c->pid = 0;
    }
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
    remove_dir(c->dir);
}
