/* log.h - one line per event on stderr, JSON or text.
 *
 * Every line is built in memory and written with one write(2), so lines from
 * one process never interleave. Nothing here ever receives a message text or
 * an API key: callers pass only the fields listed in struct log_request, and
 * recipients are masked by log_mask_phone() before they reach a line. */
#ifndef WAGATE_LOG_H
#define WAGATE_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };
#define LOG_NLEVELS 4

/* "error", "warn", "info", "debug", indexed by enum log_level: the names
 * log lines show and the config file's log.level takes. */
extern const char *const log_level_names[LOG_NLEVELS];
enum log_format { LOG_FORMAT_JSON = 0, LOG_FORMAT_TEXT };

void log_configure(enum log_level level, enum log_format format);
int log_enabled(enum log_level level);

/* A free-form operational line ("listening", "shutting down", ...). The
 * formatted text must not contain secrets; the caller guarantees it. */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The per-request line of SPEC section 8. Strings are borrowed; NULL or a
 * negative number means "not known" and the field is left out. */
struct log_request {
    const char *request_id;
    const char *client;      /* caller name, or NULL when auth is off */
    const char *remote;      /* peer address */
    const char *method;
    const char *route;       /* route name, e.g. "send_freeform" */
    const char *decision;    /* forwarded, short_circuit, rejected, replay */
    const char *reason;      /* gateway error code, lower case, or NULL */
    int status;              /* what the caller got */
    int upstream_status;     /* what the upstream said, or -1 */
    double latency_ms;       /* arrival to reply */
    long long sender_id;     /* -1 when unknown */
    const char *recipient;   /* raw E.164 text; masked here */
};
void log_request(const struct log_request *r);

/* Writes the masked form of a phone number into out: the first five and last
 * two characters kept, the rest as '*'; seven characters or fewer keep only
 * the last two. Always NUL-terminates; truncates to outlen - 1. */
void log_mask_phone(const char *phone, char *out, size_t outlen);

#endif
