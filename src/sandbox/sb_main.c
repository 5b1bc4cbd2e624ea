/* wagate-sandbox: a local simulator of the Autocalls WhatsApp REST API.
 * Command line, startup line and signals; the contract is
 * docs/sandbox-contract.md. */
#include "build-config.h" /* autoconf: PACKAGE_VERSION */

#include "alloc.h"
#include "clock.h"
#include "sb_http.h"
#include "sb_sandbox.h"
#include "sb_text.h"

#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_LISTEN "127.0.0.1:8090"
#define DEFAULT_SENDERS "12:online,13:offline,14:online"
#define DEFAULT_KEY "sandbox-key"

struct options {
    char host[256];
    int port;
    const char *api_key;
    const char *senders;
    int64_t balance, rate_limit, latency_ms, heartbeat_ms;
    bool has_start;
    int64_t start;
};

static const char usage_text[] =
    "Usage: wagate-sandbox [OPTION]...\n"
    "A local simulator of the Autocalls WhatsApp REST API, for tests, demos\n"
    "and development without an account.\n"
    "\n"
    "Its inbox page, http://HOST:PORT/ in a browser (default\n"
    "http://127.0.0.1:8090/), shows live every message your services sent\n"
    "as chat threads, with the status answered; reply there as the customer\n"
    "(opens the 24-hour window), switch senders offline, change the balance,\n"
    "move the clock, arm faults, and read the request log.\n"
    "\n"
    "Options:\n"
    "  --listen HOST:PORT    address to serve on (default " DEFAULT_LISTEN
    ");\n"
    "                        port 0 picks a free port\n"
    "  --api-key KEY         the Bearer key accepted (default:\n"
    "                        $SANDBOX_API_KEY, else " DEFAULT_KEY ")\n"
    "  --senders SPEC        senders as ID:STATUS,... (default\n"
    "                        " DEFAULT_SENDERS ")\n"
    "  --balance N           sends the account can pay for (default 1000000)\n"
    "  --rate-limit N        sends per second per key, sliding 1 s window\n"
    "                        (default 5, 0 = off)\n"
    "  --latency-ms N        delay before every API answer (default 0)\n"
    "  --start-time ISO8601  initial value of the sandbox clock (default now)\n"
    "  --events-heartbeat-ms N  a comment on the page's event streams every\n"
    "                        N ms (default 15000, 10..3600000)\n"
    "  --help                show this help and exit\n"
    "  --version             show the version and exit\n"
    "\n"
    "Once listening it prints one line to stdout:\n"
    "  wagate-sandbox listening on HOST:PORT\n"
    "\n"
    "API routes (Authorization: Bearer KEY):\n"
    "  POST /api/user/whatsapp/send-freeform\n"
    "  POST /api/user/whatsapp/send\n"
    "  GET  /api/user/whatsapp/session-status?sender_id=&recipient_phone=\n"
    "  GET  /api/user/whatsapp/senders[?status=online|all]\n"
    "  GET  /api/user/whatsapp/senders/ID/templates[?status=approved|all]\n"
    "Sender ID has phone +1415555<ID padded to 4>, template ID*100+1\n"
    "(approved, appointment_reminder) and ID*100+2 (pending).\n"
    "\n"
    "The page (no auth, not logged):\n"
    "  GET  /                  the inbox page (also /_sandbox/)\n"
    "  GET  /_sandbox/events   its live updates (Server-Sent Events)\n"
    "\n"
    "Control routes (no auth, not logged):\n"
    "  POST /_sandbox/inbound  {\"sender_id\":12,\"recipient_phone\":\"+1...\","
    "\"at\":\"ISO\"?,\"text\":\"...\"?}\n"
    "                          the customer wrote; window open until +24 h\n"
    "  GET|POST /_sandbox/clock  {\"advance_s\":N} moves the sandbox clock\n"
    "  GET|POST /_sandbox/config\n"
    "                          {\"latency_ms\"?,\"balance\"?,\"rate_limit\"?,\n"
    "                          \"sender_status\"?:{\"12\":\"offline\"}}\n"
    "  GET|POST|DELETE /_sandbox/faults  list, arm, clear faults on demand\n"
    "                          (below)\n"
    "  GET|DELETE /_sandbox/requests  list or clear the API requests received\n"
    "  GET  /_sandbox/log?limit=&before=&q=  the same, newest first, in short\n"
    "  GET  /_sandbox/senders  the senders with their names and status\n"
    "  GET|DELETE /_sandbox/conversations?offset=&limit=  the inbox's threads\n"
    "  GET  /_sandbox/messages?sender_id=&recipient_phone=&before=&limit=\n"
    "                          one thread's messages, newest first\n"
    "\n"
    "Faults on demand: POST /_sandbox/faults {\"mode\":M, \"path\"?:P,\n"
    "\"match\"?:S, \"times\"?:N} makes the next N (default 1, at most 10000)\n"
    "API requests whose path is exactly P and whose body contains S "
    "misbehave;\n"
    "up to 64 faults armed at once, the first armed that matches applies.\n"
    "Modes M:\n"
    "  reset      read the request, then TCP RST\n"
    "  close      read the request, close without a response byte\n"
    "  hang       never answer (closed when the client goes, after 600 s\n"
    "             at most, or at exit)\n"
    "  garbage    answer bytes that are not HTTP, then close\n"
    "  slow       the normal answer, one byte every \"delay_ms\" (default 10,\n"
    "             0..10000), then close\n"
    "  status     answer \"status\" (200..599) with "
    "\"headers\"?:{\"Name\":\"v\"}\n"
    "             and \"body\"? (a string, or JSON sent as its text)\n"
    "  drop_next  a request arriving on a kept-alive connection that already\n"
    "             carried an answer: close it without answering (a client\n"
    "             sees its reused connection die)\n"
    "Every request is still recorded in /_sandbox/requests, with \"fault\"\n"
    "naming the mode applied. Faults never apply to /_sandbox routes.\n"
    "  curl -d "
    "'{\"mode\":\"status\",\"status\":429,\"headers\":{\"Retry-After\":\"2\"}}'"
    " \\\n"
    "    127.0.0.1:8090/_sandbox/faults\n"
    "\n"
    "Example:\n"
    "  wagate-sandbox --rate-limit 0 &\n"
    "  curl -s -H 'Authorization: Bearer sandbox-key' \\\n"
    "    127.0.0.1:8090/api/user/whatsapp/senders\n"
    "\n"
    "SIGTERM or SIGINT stops it (exit 0). See wagate-sandbox(1).\n";

static int
usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "wagate-sandbox: %s: '%s'\nTry 'wagate-sandbox --help'.\n",
            msg, arg);
    return -1;
}

/* HOST:PORT or [V6]:PORT. */
static int
parse_listen(const char *arg, struct options *o)
{
    const char *colon = strrchr(arg, ':');
    const char *h = arg;
    size_t hlen;
    int64_t port;

    if (colon == NULL || sb_parse_int64(colon + 1, strlen(colon + 1), &port) ||
        port < 0 || port > 65535)
        return usage_error("--listen wants HOST:PORT", arg);
    hlen = (size_t)(colon - arg);
    if (hlen >= 2 && arg[0] == '[' && arg[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(o->host))
        return usage_error("--listen wants HOST:PORT", arg);
    memcpy(o->host, h, hlen);
    o->host[hlen] = '\0';
    o->port = (int)port;
    return 0;
}

static int
parse_num(const char *name, const char *arg, int64_t max, int64_t *out)
{
    if (sb_parse_int64(arg, strlen(arg), out) != 0 || *out < 0 || *out > max) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s wants an integer in [0, %lld]", name,
                 (long long)max);
        return usage_error(msg, arg);
    }
    return 0;
}

/* ID:STATUS[,ID:STATUS]...; an empty spec means no senders. */
static int
add_senders(struct sb_state *st, const char *spec)
{
    char *copy = xstrdup(spec), *save = NULL;
    int rc = 0;

    for (char *tok = strtok_r(copy, ",", &save); tok != NULL && rc == 0;
         tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        int64_t id;
        if (colon == NULL || sb_parse_int64(tok, (size_t)(colon - tok), &id) ||
            sb_state_add_sender(st, id, colon + 1) != 0)
            rc = usage_error("--senders wants ID:STATUS,... (ID 1..9999999 "
                             "unique, STATUS of [a-z_])",
                             tok);
    }
    free(copy);
    return rc;
}

enum {
    OPT_LISTEN = 256,
    OPT_KEY,
    OPT_SENDERS,
    OPT_BALANCE,
    OPT_RATE,
    OPT_LATENCY,
    OPT_START,
    OPT_HEARTBEAT,
    OPT_HELP,
    OPT_VERSION
};

static int
apply_option(int c, const char *arg, struct options *o)
{
    switch (c) {
    case OPT_LISTEN:
        return parse_listen(arg, o);
    case OPT_KEY:
        o->api_key = arg;
        return arg[0] ? 0 : usage_error("--api-key must not be empty", arg);
    case OPT_SENDERS:
        o->senders = arg;
        return 0;
    case OPT_BALANCE:
        return parse_num("--balance", arg, INT64_MAX, &o->balance);
    case OPT_RATE:
        return parse_num("--rate-limit", arg, SB_RATE_MAX, &o->rate_limit);
    case OPT_LATENCY:
        return parse_num("--latency-ms", arg, SB_LATENCY_MAX_MS,
                         &o->latency_ms);
    case OPT_HEARTBEAT:
        if (parse_num("--events-heartbeat-ms", arg, 3600000, &o->heartbeat_ms))
            return -1;
        return o->heartbeat_ms >= 10
                   ? 0
                   : usage_error("--events-heartbeat-ms wants 10..3600000",
                                 arg);
    case OPT_START:
        o->has_start = true;
        if (sb_iso_parse(arg, &o->start) != 0)
            return usage_error("--start-time wants ISO 8601, e.g. "
                               "2026-02-24T10:30:00Z",
                               arg);
        return 0;
    default:
        fputs("Try 'wagate-sandbox --help'.\n", stderr);
        return -1;
    }
}

/* Returns 0 to run, 1 to exit 0 (help/version), -1 to exit 2. */
static int
parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"api-key", required_argument, NULL, OPT_KEY},
        {"senders", required_argument, NULL, OPT_SENDERS},
        {"balance", required_argument, NULL, OPT_BALANCE},
        {"rate-limit", required_argument, NULL, OPT_RATE},
        {"latency-ms", required_argument, NULL, OPT_LATENCY},
        {"start-time", required_argument, NULL, OPT_START},
        {"events-heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0}};
    int c;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(usage_text, stdout);
            return 1;
        }
        if (c == OPT_VERSION) {
            puts("wagate-sandbox " PACKAGE_VERSION);
            return 1;
        }
        if (apply_option(c, optarg, o) != 0)
            return -1;
    }
    if (optind < argc)
        return usage_error("unexpected argument", argv[optind]);
    return 0;
}

static void
defaults(struct options *o)
{
    const char *env = getenv("SANDBOX_API_KEY");

    memset(o, 0, sizeof(*o));
    parse_listen(DEFAULT_LISTEN, o);
    o->api_key = env && env[0] ? env : DEFAULT_KEY;
    o->senders = DEFAULT_SENDERS;
    o->balance = 1000000;
    o->rate_limit = 5;
}

static struct sb_sandbox *
make_sandbox(const struct options *o)
{
    struct sb_sandbox *sb =
        sb_sandbox_new(o->api_key, o->balance, (unsigned)o->rate_limit);
    int64_t mono = (int64_t)clock_mono_ms();
    int64_t start_ms = o->has_start ? o->start * 1000 : clock_wall_ms();

    sb->latency_ms = (unsigned)o->latency_ms;
    sb_state_clock_set(sb->state, start_ms, mono);
    if (add_senders(sb->state, o->senders) != 0) {
        sb_sandbox_free(sb);
        return NULL;
    }
    return sb;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

/* Serves until SIGTERM/SIGINT. Returns the exit status. */
static int
serve(struct sb_sandbox *sb, const struct options *o)
{
    struct event_base *base = event_base_new();
    struct event *term = NULL, *intr = NULL;
    struct sb_http *h = NULL;
    char err[256];
    int rc = 1;

    if (base == NULL) {
        fputs("wagate-sandbox: cannot create the event loop\n", stderr);
        return 1;
    }
    term = evsignal_new(base, SIGTERM, on_signal, base);
    intr = evsignal_new(base, SIGINT, on_signal, base);
    if (term == NULL || intr == NULL || evsignal_add(term, NULL) != 0 ||
        evsignal_add(intr, NULL) != 0) {
        fputs("wagate-sandbox: cannot watch signals\n", stderr);
        goto done;
    }
    h = sb_http_new(base, sb, o->host, o->port, (unsigned)o->heartbeat_ms, err,
                    sizeof(err));
    if (h == NULL) {
        fprintf(stderr, "wagate-sandbox: %s\n", err);
        goto done;
    }
    printf("wagate-sandbox listening on %s\n", sb_http_address(h));
    fflush(stdout);
    rc = event_base_dispatch(base) < 0 ? 1 : 0;
done:
    sb_http_free(h);
    if (term != NULL)
        event_free(term);
    if (intr != NULL)
        event_free(intr);
    event_base_free(base);
    return rc;
}

int
main(int argc, char **argv)
{
    struct options o;
    struct sb_sandbox *sb;
    int rc;

    /* A client that hangs up must cost a failed write, not the process. */
    signal(SIGPIPE, SIG_IGN);
    defaults(&o);
    rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    sb = make_sandbox(&o);
    if (sb == NULL)
        return 2;
    rc = serve(sb, &o);
    sb_sandbox_free(sb);
    libevent_global_shutdown();
    return rc;
}
