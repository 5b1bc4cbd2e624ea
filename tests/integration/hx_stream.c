/* hx_stream.c - see hx_stream.h. */
#include "hx_stream.h"

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

double
hx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int
hx_connect(int port, int rcvbuf)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    if (rcvbuf > 0)
        ck_assert_int_eq(
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

void
hx_send_all(int fd, const char *s, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);
        ck_assert_int_gt(n, 0);
        off += (size_t)n;
    }
}

void
hx_send_str(int fd, const char *s)
{
    hx_send_all(fd, s, strlen(s));
}

void
hx_stream_attach(struct hx_stream *s, int fd)
{
    s->fd = fd;
    s->len = 0;
    s->eof = 0;
    s->buf[0] = '\0';
}

void
hx_stream_open_req(struct hx_stream *s, int port, int rcvbuf, const char *req)
{
    hx_stream_attach(s, hx_connect(port, rcvbuf));
    hx_send_str(s->fd, req);
}

void
hx_stream_open(struct hx_stream *s, int port, int rcvbuf)
{
    hx_stream_open_req(s, port, rcvbuf, HX_EVENTS_GET);
}

int
hx_stream_wait(struct hx_stream *s, const char *needle, int timeout_ms)
{
    double end = hx_now_ms() + timeout_ms;

    s->buf[s->len] = '\0';
    while (strstr(s->buf, needle) == NULL) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        double left = end - hx_now_ms();
        ssize_t n;
        if (left <= 0 || s->eof || s->len + 1 >= sizeof(s->buf))
            return 0;
        if (poll(&p, 1, (int)left + 1) <= 0)
            continue;
        n = recv(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len, 0);
        if (n <= 0) {
            s->eof = 1;
            return 0;
        }
        s->len += (size_t)n;
        s->buf[s->len] = '\0';
    }
    return 1;
}

void
hx_stream_drain(struct hx_stream *s)
{
    ssize_t n;

    while (!s->eof) {
        if (s->len > 1024) {
            memmove(s->buf, s->buf + s->len - 1024, 1024);
            s->len = 1024;
        }
        n = recv(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len,
                 MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            s->eof = 1;
        if (n <= 0)
            break;
        s->len += (size_t)n;
    }
    s->buf[s->len] = '\0';
}

void
hx_stream_consume(struct hx_stream *s, const char *needle)
{
    char *at = strstr(s->buf, needle);
    size_t cut;

    ck_assert_ptr_nonnull(at);
    cut = (size_t)(at - s->buf) + strlen(needle);
    memmove(s->buf, s->buf + cut, s->len - cut + 1);
    s->len -= cut;
}

long
hx_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}
