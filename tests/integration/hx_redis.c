/* hx_redis.c - see hx_redis.h. */
#include "hx_redis.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"

static void
nap(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* A loopback port free right now (bound, read, closed): redis-server must
 * bind it itself. A race with another suite shows as a failed start,
 * which hx_redis_start() retries on another port. */
static int
pick_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int
spawn(struct hx_redis *r)
{
    const char *bin = getenv("REDIS_SERVER");
    char port[16], log[128];
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(log, sizeof(log), "%s/redis.log", r->dir);
    char *argv[24] = {(char *)(bin ? bin : "redis-server"),
                      "--port",
                      port,
                      "--bind",
                      "127.0.0.1",
                      "--unixsocket",
                      r->sock,
                      "--unixsocketperm",
                      "700",
                      "--save",
                      "",
                      "--appendonly",
                      "no",
                      "--dir",
                      r->dir,
                      "--logfile",
                      log,
                      "--daemonize",
                      "no"};
    size_t n = 19;
    if (r->pass[0]) {
        argv[n++] = "--requirepass";
        argv[n++] = r->pass;
    }
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    r->pid = pid;
    return 0;
}

static int
pings(const struct hx_redis *r)
{
    redisContext *c = hx_redis_connect(r);
    if (c == NULL)
        return 0;
    redisReply *rep = redisCommand(c, "PING");
    int ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return ok;
}

/* Waits for PING, or for the process to exit. */
static int
wait_ready(struct hx_redis *r)
{
    double end = clock_mono_ms() + 10000;
    while (clock_mono_ms() < end) {
        int st;
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            r->pid = 0;
            return -1;
        }
        if (pings(r))
            return 0;
        nap(5);
    }
    return -1;
}

static void
kill_wait(struct hx_redis *r)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, SIGCONT);
    kill(r->pid, SIGTERM);
    double end = clock_mono_ms() + 5000;
    int st;
    while (waitpid(r->pid, &st, WNOHANG) == 0) {
        if (clock_mono_ms() > end) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, &st, 0);
            break;
        }
        nap(5);
    }
    r->pid = 0;
}

static int
start_on(struct hx_redis *r)
{
    if (spawn(r) != 0)
        return -1;
    if (wait_ready(r) == 0)
        return 0;
    kill_wait(r);
    return -1;
}

int
hx_redis_start(struct hx_redis *r, int tcp, const char *password)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "/tmp/wagate-redis-XXXXXX");
    if (mkdtemp(r->dir) == NULL)
        return -1;
    snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", r->dir);
    if (password)
        snprintf(r->pass, sizeof(r->pass), "%s", password);
    for (int attempt = 0; attempt < 5; attempt++) {
        r->port = tcp ? pick_port() : 0;
        if (tcp && r->port <= 0)
            continue;
        if (start_on(r) == 0) {
            if (tcp)
                snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d/0",
                         r->port);
            else
                snprintf(r->url, sizeof(r->url), "unix:%s", r->sock);
            return 0;
        }
        if (!tcp)
            break;
    }
    hx_redis_stop(r);
    return -1;
}

int
hx_redis_restart(struct hx_redis *r)
{
    kill_wait(r);
    unlink(r->sock);
    return start_on(r);
}

void
hx_redis_freeze(struct hx_redis *r)
{
    if (r->pid > 0)
        kill(r->pid, SIGSTOP);
}

void
hx_redis_thaw(struct hx_redis *r)
{
    if (r->pid > 0)
        kill(r->pid, SIGCONT);
}

void
hx_redis_stop(struct hx_redis *r)
{
    kill_wait(r);
    if (r->dir[0]) {
        char path[128];
        unlink(r->sock);
        snprintf(path, sizeof(path), "%s/redis.log", r->dir);
        unlink(path);
        rmdir(r->dir);
        r->dir[0] = '\0';
    }
}

redisContext *
hx_redis_connect(const struct hx_redis *r)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectUnixWithTimeout(r->sock, tv);
    if (c == NULL || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (r->pass[0]) {
        redisReply *rep = redisCommand(c, "AUTH %s", r->pass);
        int ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
        if (rep)
            freeReplyObject(rep);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

long long
hx_redis_int(const struct hx_redis *r, const char *fmt, ...)
{
    redisContext *c = hx_redis_connect(r);
    if (c == NULL)
        return LLONG_MIN;
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    long long v = LLONG_MIN;
    if (rep && rep->type == REDIS_REPLY_INTEGER)
        v = rep->integer;
    else if (rep && rep->type == REDIS_REPLY_STRING)
        v = strtoll(rep->str, NULL, 10);
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return v;
}

/* Appends the lines of path to *buf (*len bytes so far), a final newline
 * added when missing. -1 when it cannot be read. */
static int
append_lines(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t start = *len, cap = *len + 4096;
    *buf = xrealloc(*buf, cap + 2);
    size_t n;
    while ((n = fread(*buf + *len, 1, cap - *len, f)) > 0) {
        *len += n;
        if (*len == cap) {
            cap *= 2;
            *buf = xrealloc(*buf, cap + 2);
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err)
        return -1;
    if (*len > start && (*buf)[*len - 1] != '\n')
        (*buf)[(*len)++] = '\n';
    (*buf)[*len] = '\0';
    return 0;
}

char *
hx_redis_script_source(const char *name)
{
    const char *srcdir = getenv("srcdir") ? getenv("srcdir") : ".";
    char path[512];
    char *buf = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/src/redis/prelude.lua", srcdir);
    if (append_lines(path, &buf, &len) == 0) {
        snprintf(path, sizeof(path), "%s/src/redis/%s.lua", srcdir, name);
        if (append_lines(path, &buf, &len) == 0)
            return buf;
    }
    free(buf);
    return NULL;
}

/* ---- a path of one gateway's own ---- */

static int
path_unix(const char *sock)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

#define PATH_MAX_CONNS 16

/* Copies what one side of pair i sent to the other; 0 when it ended. */
static int
path_copy(int from, int to)
{
    char buf[16384];
    ssize_t r = read(from, buf, sizeof(buf));
    for (ssize_t off = 0; r > 0 && off < r;) {
        ssize_t w = write(to, buf + off, (size_t)(r - off));
        if (w <= 0)
            return 0;
        off += w;
    }
    return r > 0;
}

static void __attribute__((noreturn)) path_loop(int lfd, const char *sock)
{
    int fds[PATH_MAX_CONNS][2];
    int n = 0;
    alarm(180); /* bounded: never outlives the suite */
    for (;;) {
        struct pollfd p[1 + 2 * PATH_MAX_CONNS];
        p[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (int i = 0; i < n; i++) {
            p[1 + 2 * i] = (struct pollfd){.fd = fds[i][0], .events = POLLIN};
            p[2 + 2 * i] = (struct pollfd){.fd = fds[i][1], .events = POLLIN};
        }
        if (poll(p, (nfds_t)(1 + 2 * n), 1000) < 0 && errno != EINTR)
            _exit(1);
        int polled = n;
        for (int i = 0; i < polled && i < n; i++) {
            for (int k = 0; k < 2; k++) {
                if (!(p[1 + 2 * i + k].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                if (!path_copy(fds[i][k], fds[i][1 - k])) {
                    close(fds[i][0]);
                    close(fds[i][1]);
                    fds[i][0] = fds[n - 1][0];
                    fds[i][1] = fds[n - 1][1];
                    n--;
                    polled = 0; /* p[] is stale now: poll again */
                    break;
                }
            }
        }
        if ((p[0].revents & POLLIN) && n < PATH_MAX_CONNS) {
            int c = accept(lfd, NULL, NULL), u = c >= 0 ? path_unix(sock) : -1;
            if (c >= 0 && u >= 0) {
                fds[n][0] = c;
                fds[n][1] = u;
                n++;
            } else {
                if (c >= 0)
                    close(c);
                if (u >= 0)
                    close(u);
            }
        }
    }
}

int
hx_redis_path_start(struct hx_redis_path *p, const struct hx_redis *r)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);

    memset(p, 0, sizeof(*p));
    if (lfd < 0)
        return -1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(lfd, 16) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) != 0) {
        close(lfd);
        return -1;
    }
    p->port = ntohs(a.sin_port);
    snprintf(p->url, sizeof(p->url), "redis://127.0.0.1:%d/0", p->port);
    p->pid = fork();
    if (p->pid == 0) {
        signal(SIGPIPE, SIG_IGN);
        path_loop(lfd, r->sock);
    }
    close(lfd);
    return p->pid > 0 ? 0 : -1;
}

void
hx_redis_path_freeze(struct hx_redis_path *p)
{
    if (p->pid > 0)
        kill(p->pid, SIGSTOP);
}

void
hx_redis_path_thaw(struct hx_redis_path *p)
{
    if (p->pid > 0)
        kill(p->pid, SIGCONT);
}

void
hx_redis_path_stop(struct hx_redis_path *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGCONT);
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

/* ---- commands and a busy Redis ---- */

int
hx_redis_cmd(const struct hx_redis *r, const char *fmt, ...)
{
    redisContext *c = hx_redis_connect(r);
    if (c == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    int type = rep != NULL ? rep->type : -1;
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
        fprintf(stderr, "  (redis: %s)\n", rep->str);
    freeReplyObject(rep);
    redisFree(c);
    return type;
}

int
hx_redis_busy_begin(const struct hx_redis *r, struct hx_redis_busy *b)
{
    int done = 0;
    b->c = NULL;
    if (hx_redis_cmd(r, "CONFIG SET busy-reply-threshold 1") !=
        REDIS_REPLY_STATUS)
        return -1;
    b->c = hx_redis_connect(r);
    if (b->c == NULL ||
        redisAppendCommand(b->c, "EVAL %s 0",
                           "local t = redis.call('TIME') while true do end") !=
            REDIS_OK)
        return -1;
    for (int i = 0; i < 100 && !done; i++)
        if (redisBufferWrite(b->c, &done) != REDIS_OK)
            return -1;
    return done ? 0 : -1;
}

int
hx_redis_busy_end(const struct hx_redis *r, struct hx_redis_busy *b)
{
    int ended = 0;
    if (b->c == NULL)
        return 0;
    /* SCRIPT KILL may come before the script has started */
    for (int i = 0; i < 50 && !ended; i++) {
        hx_redis_cmd(r, "SCRIPT KILL");
        redisReply *rep = NULL;
        if (redisGetReply(b->c, (void **)&rep) == REDIS_OK && rep != NULL)
            ended = 1;
        freeReplyObject(rep);
    }
    hx_redis_busy_drop(b);
    hx_redis_cmd(r, "CONFIG SET busy-reply-threshold 5000");
    return ended ? 0 : -1;
}

void
hx_redis_busy_drop(struct hx_redis_busy *b)
{
    if (b->c != NULL)
        redisFree(b->c);
    b->c = NULL;
}
