/* harness.h - what the integration tests need: start the real binaries on
 * ephemeral loopback ports, talk HTTP to them with libcurl, read the
 * sandbox's request log. Every wait is bounded and waits for an event (a
 * log line, a process exit), polling a few milliseconds at a time. */
#ifndef WAGATE_HARNESS_H
#define WAGATE_HARNESS_H

#include <check.h>
#include <json-c/json.h>
#include <stddef.h>
#include <sys/types.h>

struct proc {
    pid_t pid;
    int port;          /* the port it said it listens on */
    char logpath[64];  /* its stdout and stderr */
};

/* Starts argv[0] with extra environment "NAME=value" entries (NULL-ended,
 * may be NULL), waits up to 10 s for "listening on 127.0.0.1:PORT" in its
 * output. 0 on success; -1 if it exited or never said so. */
int proc_start(struct proc *p, char *const argv[], char *const env[]);

/* Runs argv to completion (at most 10 s) with extra environment entries,
 * its stdout and stderr together in out (NUL-ended, truncated to outlen).
 * Returns its exit status, or -1. */
int proc_run(char *const argv[], char *const env[], char *out, size_t outlen);

/* SIGTERM, then waits up to timeout_ms for the exit; SIGKILL after that.
 * Returns the exit status (0..255), 128+signal if killed, -1 on error. */
int proc_stop(struct proc *p, int timeout_ms);

/* Waits up to timeout_ms for needle in the process output; 1 if seen. */
int proc_wait_log(const struct proc *p, const char *needle, int timeout_ms);

/* The whole output so far (caller frees). */
char *proc_log(const struct proc *p);

struct http_resp {
    long status;
    char *headers; /* raw header block of the final response */
    char *body;
    size_t body_len;
    double total_ms;
    int curl_error; /* CURLcode, 0 when an answer came */
};

/* One request. headers: NULL-ended "Name: value" list, may be NULL. body
 * may be NULL. Returns 0 when an HTTP answer came. Free with http_free. */
int http_do(const char *method, const char *url, const char *const *headers,
            const char *body, size_t body_len, struct http_resp *r);
void http_free(struct http_resp *r);

/* Value of a header of r (first match, case-insensitive), copied into out;
 * NULL if absent. */
const char *http_header(const struct http_resp *r, const char *name,
                        char *out, size_t outlen);

/* Writes raw bytes to 127.0.0.1:port and reads the answer until the peer
 * closes or timeout_ms passes. Returns bytes read into out (NUL-ended). */
size_t raw_exchange(int port, const char *req, size_t len, char *out,
                    size_t outlen, int timeout_ms);

/* A loopback port nothing listens on: bound and kept bound, never
 * listening, for the rest of the process (a connect is refused), so that
 * no suite running in parallel can take it meanwhile. */
int free_port(void);

/* The sandbox's control API (named hx_sandbox_*: sb_* is the sandbox's
 * own namespace, src/sandbox/). */
/* The "requests" array of GET /_sandbox/requests (caller puts it), or
 * NULL. */
json_object *hx_sandbox_requests(int sb_port);
/* Number of recorded requests, or -1. */
int hx_sandbox_count(int sb_port);
/* A control request with a JSON body (may be NULL); the HTTP status. */
int hx_sandbox_control(int sb_port, const char *method, const char *path,
                       const char *json);
/* The sends (POST send-freeform) the sandbox recorded, for the limiter
 * suites: when each arrived (its mono_ms, in order), how many its own
 * limit answered 429 (limited; a fault's status is not its limit's) and
 * how many a fault took. At most HX_SEEN_MAX arrivals are kept. */
#define HX_SEEN_MAX 512
struct hx_seen {
    double t[HX_SEEN_MAX];
    int n;
    int limited;
    int faults;
};
void hx_sandbox_seen(int sb_port, struct hx_seen *s);
/* The most arrivals within any [t, t + 1000 ms); *at (if not NULL) when
 * the first such window began, in ms after the first arrival. */
int hx_worst_window(const struct hx_seen *s, double *at);
/* Opens the window of sender 12 with +1415557%04d for i in [0, n) (an
 * inbound each), then empties the request log: sends to those go. */
void hx_sandbox_open_windows(int sb_port, int n);
/* The value of header name in a recorded request (borrowed), or NULL. */
const char *hx_sandbox_req_header(json_object *req, const char *name);
/* Decodes standard base64 into a new buffer (caller frees); *len set. */
char *b64_decode(const char *in, size_t *len);

/* Writes a temp file with text; returns its path in out. */
void write_temp(const char *text, char *out, size_t outlen);

/* Runs an integration suite with libcurl set up; the process exit status:
 * 0 when every test passed. */
int harness_run_suite(Suite *suite);

/* A scenario of a review suite: its case name (CK_RUN_CASE=name runs it
 * alone), its test, and known: it shows a defect not fixed yet. */
struct hx_case {
    const char *name;
    const TTest *test;
    int known;
};

/* Adds each case to s as a TCase of its own with timeout_s and teardown
 * (NULL for none). A known case is added only with WAGATE_KNOWN_DEFECTS
 * set; otherwise a "SKIP name" line on stderr says it is left out. */
void hx_add_cases(Suite *s, const struct hx_case *cases, size_t n,
                  double timeout_s, void (*teardown)(void));

/* ---- fixtures shared by the integration suites ---- */

#define HARNESS_UPSTREAM_KEY "sk-test-upstream-5f2a9c"

/* Starts $SANDBOX_BIN (or ./wagate-sandbox) on an ephemeral port with the
 * test key and the given --rate-limit; extra args (NULL-ended) appended. */
int harness_start_sandbox(struct proc *p, const char *rate,
                          const char *const *extra);

/* Writes a config for a gateway in front of 127.0.0.1:sb_port (timeouts
 * 1500/500 ms, shaping out of the way at 10000/s, client timeout 1 s, max
 * body 4096) plus extra top-level
 * members (text starting with ',' or NULL), starts $WAGATE_BIN (or
 * ./wagate) with the test key in its environment. conf receives the
 * config's path (the caller unlinks it). */
int harness_start_gateway(struct proc *p, int sb_port, const char *extra,
                          char *conf, size_t conflen);

/* POST a JSON body (Content-Type: application/json plus extra headers,
 * NULL-ended, may be NULL) to 127.0.0.1:port. */
int harness_post(int port, const char *path, const char *body,
                 const char *const *headers, struct http_resp *r);

/* A request with no body to 127.0.0.1:port. */
int harness_get(int port, const char *method, const char *path_query,
                const char *const *headers, struct http_resp *r);

#endif
