/* hx_stream.h - a raw loopback client of the sandbox's event stream (GET
 * /_sandbox/events) for the integration suites: a socket the test reads
 * itself, so that it can also be slow, stuck, half-closed or reset, and
 * the few /proc readings the bounds are checked with. Every wait is
 * bounded; a failed socket call fails the running Check test. */
#ifndef WAGATE_HX_STREAM_H
#define WAGATE_HX_STREAM_H

#include <stddef.h>
#include <sys/types.h>

#define HX_EVENTS_GET                                                          \
    "GET /_sandbox/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"                     \
    "Accept: text/event-stream\r\n\r\n"

/* An open stream: its socket and what has been read of it (NUL-ended). */
struct hx_stream {
    int fd;
    char buf[1 << 17];
    size_t len;
    int eof;
};

/* Monotonic milliseconds. */
double hx_now_ms(void);
/* A connected loopback socket to port; rcvbuf > 0 shrinks its receive
 * buffer first (a client that takes little). */
int hx_connect(int port, int rcvbuf);
/* Writes all of s (len bytes) to fd. */
void hx_send_all(int fd, const char *s, size_t len);
void hx_send_str(int fd, const char *s);

/* Takes over fd as a stream with nothing read yet. */
void hx_stream_attach(struct hx_stream *s, int fd);
/* Connects to port and sends req (HX_EVENTS_GET for a plain stream). */
void hx_stream_open_req(struct hx_stream *s, int port, int rcvbuf,
                        const char *req);
/* The same with HX_EVENTS_GET. */
void hx_stream_open(struct hx_stream *s, int port, int rcvbuf);
/* Reads until needle is in what was read (1), or EOF, a full buffer or
 * timeout (0). */
int hx_stream_wait(struct hx_stream *s, const char *needle, int timeout_ms);
/* Reads whatever has arrived without waiting, keeping only its last 1 KiB
 * (a client that keeps up, without caring for old events). */
void hx_stream_drain(struct hx_stream *s);
/* Forgets what was read up to and including needle's first occurrence
 * (which must be there). */
void hx_stream_consume(struct hx_stream *s, const char *needle);

/* The resident set of pid in KiB (VmRSS). */
long hx_rss_kib(pid_t pid);

#endif
