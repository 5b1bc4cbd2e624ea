/* log.c - see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_cur_level = LOG_INFO;
static enum log_format log_cur_format = LOG_FORMAT_JSON;

const char *const log_level_names[LOG_NLEVELS] = {"error", "warn", "info",
                                                  "debug"};

/* A bounded line: appends past the end are dropped, never overflow. */
struct log_line {
    char buf[2048];
    size_t len;
};

void
log_configure(enum log_level level, enum log_format format)
{
    log_cur_level = level;
    log_cur_format = format;
}

int
log_enabled(enum log_level level)
{
    return level <= log_cur_level;
}

static void
line_putc(struct log_line *l, char c)
{
    if (l->len + 1 < sizeof(l->buf))
        l->buf[l->len++] = c;
}

static void
line_puts(struct log_line *l, const char *s)
{
    while (*s)
        line_putc(l, *s++);
}

static void
line_printf(struct log_line *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
line_printf(struct log_line *l, const char *fmt, ...)
{
    va_list ap;
    size_t room = sizeof(l->buf) - 1 - l->len;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, room + 1, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n < room ? (size_t)n : room;
}

/* JSON string body: quotes, backslashes and control bytes escaped. */
static void
line_put_escaped(struct log_line *l, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            line_putc(l, '\\');
            line_putc(l, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            line_printf(l, "\\u%04x", c);
        } else {
            line_putc(l, (char)c);
        }
    }
}

static void
line_start(struct log_line *l, enum log_level level)
{
    struct timespec ts;
    struct tm tm;
    char stamp[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    l->len = 0;
    if (log_cur_format == LOG_FORMAT_JSON)
        line_printf(l, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\"", stamp,
                    ts.tv_nsec / 1000000, log_level_names[level]);
    else
        line_printf(l, "%s.%03ldZ %s", stamp, ts.tv_nsec / 1000000,
                    log_level_names[level]);
}

static void
line_field_str(struct log_line *l, const char *key, const char *val)
{
    if (val == NULL)
        return;
    if (log_cur_format == LOG_FORMAT_JSON) {
        line_printf(l, ",\"%s\":\"", key);
        line_put_escaped(l, val);
        line_putc(l, '"');
    } else {
        line_printf(l, " %s=", key);
        /* text format: no quoting needed for our values, but never let a
         * caller-supplied value break the line */
        for (; *val; val++)
            line_putc(l, (*val <= ' ' || *val == 0x7f) ? '_' : *val);
    }
}

static void
line_field_num(struct log_line *l, const char *key, long long val)
{
    if (log_cur_format == LOG_FORMAT_JSON)
        line_printf(l, ",\"%s\":%lld", key, val);
    else
        line_printf(l, " %s=%lld", key, val);
}

static void
line_finish(struct log_line *l)
{
    if (log_cur_format == LOG_FORMAT_JSON) {
        if (l->len + 2 >= sizeof(l->buf))
            l->len = sizeof(l->buf) - 3; /* keep the closing brace */
        line_putc(l, '}');
    }
    l->buf[l->len++] = '\n';
    /* one write: lines stay whole; a failed log write has nowhere to go */
    ssize_t w = write(STDERR_FILENO, l->buf, l->len);
    (void)w;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    struct log_line l;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    line_start(&l, level);
    if (log_cur_format == LOG_FORMAT_JSON) {
        line_field_str(&l, "msg", msg);
    } else {
        line_putc(&l, ' ');
        line_puts(&l, msg);
    }
    line_finish(&l);
}

void
log_request(const struct log_request *r)
{
    if (!log_enabled(LOG_INFO))
        return;
    struct log_line l;
    char masked[32];
    line_start(&l, LOG_INFO);
    if (log_cur_format == LOG_FORMAT_JSON)
        line_field_str(&l, "msg", "request");
    else
        line_puts(&l, " request");
    line_field_str(&l, "request_id", r->request_id);
    line_field_str(&l, "client", r->client);
    line_field_str(&l, "remote", r->remote);
    line_field_str(&l, "method", r->method);
    line_field_str(&l, "route", r->route);
    line_field_str(&l, "decision", r->decision);
    line_field_str(&l, "reason", r->reason);
    line_field_num(&l, "status", r->status);
    if (r->upstream_status >= 0)
        line_field_num(&l, "upstream_status", r->upstream_status);
    if (log_cur_format == LOG_FORMAT_JSON)
        line_printf(&l, ",\"latency_ms\":%.3f", r->latency_ms);
    else
        line_printf(&l, " latency_ms=%.3f", r->latency_ms);
    if (r->sender_id >= 0)
        line_field_num(&l, "sender_id", r->sender_id);
    if (r->recipient != NULL) {
        log_mask_phone(r->recipient, masked, sizeof(masked));
        line_field_str(&l, "recipient", masked);
    }
    line_finish(&l);
}

void
log_mask_phone(const char *phone, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    size_t n = strlen(phone);
    size_t keep_head = n > 7 ? 5 : 0;
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < outlen; i++) {
        int keep = i < keep_head || i + 2 >= n;
        out[o++] = keep ? phone[i] : '*';
    }
    out[o] = '\0';
}
