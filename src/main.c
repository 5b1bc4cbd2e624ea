/* main.c - wagate: command line, startup, signals. Everything else lives in
 * the modules; this file only wires them to one event loop. */
#include <curl/curl.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "clock.h"
#include "exchange.h"
#include "gateway.h"
#include "idempotency.h"
#include "redis_link.h"
#include "redis_scripts.h"
#include "refusals.h"
#include "secret.h"
#include "server.h"
#include "session_cache.h"
#include "shaper.h"
#include "state.h"
#include "state_file.h"
#include "upstream.h"
#include "version.h"

#define EXIT_CONFIG 2
/* The learned refusals' bound (SPEC section 4a): senders an account has
 * are few; an entry is ~1 KiB, and the store grows only as they come. */
#define WAGATE_REFUSALS_MAX 4096

struct wagate {
    const char *path; /* the config file, NULL for defaults */
    struct event_base *base;
    struct config cfg;
    struct gateway gw;
    struct upstream *up;
    struct session_cache *cache;
    struct server *srv;
    int stopping;
    int drained;    /* the drain ended: the state file may be written */
    double drain_end_ms; /* clock_mono_ms() when drain_timeout_ms runs out */
    struct event *flush_timer; /* bounds state_flush() by drain_end_ms */
    int state_lock; /* state_file_claim()'s lock, held until exit; -1 */
    /* the shared keys' account, fixed at start (secret_account()): a
     * reload that rotates the API key must not move the keyspace */
    char account[SECRET_ACCOUNT_MAX + 1];
};

static void
usage(FILE *out)
{
    fprintf(out,
            "Usage: wagate [-c FILE] [--check-config]\n"
            "       wagate --help | --version\n"
            "\n"
            "A gateway in front of the Autocalls WhatsApp API: it holds the\n"
            "API key, answers sends that are certain to fail, shapes the\n"
            "request rate and relays everything else byte for byte.\n"
            "\n"
            "  -c, --config FILE   JSON configuration (comments allowed);\n"
            "                      without it every key has its default\n"
            "  -n, --check-config  validate the configuration, print it with\n"
            "                      secrets redacted, say where the API key\n"
            "                      was found, and exit (0 = valid)\n"
            "  -h, --help          this text\n"
            "  -V, --version       the version\n"
            "\n"
            "The API key is read from the environment variable named by\n"
            "upstream.api_key_env (default AUTOCALLS_API_KEY) or from the file\n"
            "upstream.api_key_file; never from the command line.\n"
            "Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the\n"
            "configuration and the API key.\n"
            "See wagate(8) and wagate.json(5).\n");
}

/* Once, from the flush or from its deadline, whichever comes first. */
static void
on_state_flushed(void *arg)
{
    struct wagate *w = arg;
    if (w->drained)
        return;
    w->drained = 1;
    if (w->flush_timer)
        evtimer_del(w->flush_timer);
    event_base_loopexit(w->base, NULL);
}

static void
on_flush_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wagate *w = arg;
    log_msg(LOG_WARN, "drain: the state store did not confirm every write "
                      "within drain_timeout_ms; stopping anyway");
    on_state_flushed(w);
}

/* The callers are answered; what the state was told is recorded last (a
 * key the drain freed stays free in the state file). A shared store that
 * hangs (Redis frozen) is waited for only until the drain's own deadline
 * (plus one round trip, at most 250 ms): what it did not confirm is
 * bounded by its leases, never sent twice. */
static void
on_drained(void *arg)
{
    struct wagate *w = arg;
    /* the callers may have used the whole drain: the writes their ends
     * made still get one round trip's worth, at most 250 ms */
    double grace = (double)w->cfg.redis_timeout_ms;
    double left = w->drain_end_ms - clock_mono_ms();
    grace = grace < 250 ? grace : 250;
    left = left > grace ? left : grace;
    long us = (long)(left * 1000.0);
    struct timeval tv = {us / 1000000, us % 1000000};
    w->flush_timer = evtimer_new(w->base, on_flush_deadline, w);
    if (w->flush_timer == NULL)
        alloc_oom("evtimer_new");
    evtimer_add(w->flush_timer, &tv);
    state_flush(w->gw.state, on_state_flushed, w);
}

static void
on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct wagate *w = arg;
    if (w->stopping)
        return;
    w->stopping = 1;
    w->drain_end_ms = clock_mono_ms() + (double)w->cfg.drain_timeout_ms;
    log_msg(LOG_INFO, "signal %d: draining (%zu in flight, up to %lld ms)",
            (int)sig, ex_waiting(&w->gw), w->cfg.drain_timeout_ms);
    server_drain(w->srv, w->cfg.drain_timeout_ms, on_drained, w);
}

/* A configuration that parses can still be one wagate refuses to run:
 * returns the reason, or NULL. */
static const char *
startup_refusal(const struct config *cfg)
{
    if (cfg->nclients == 0 && !config_all_loopback(cfg))
        return "no clients are configured, so callers are not "
               "authenticated; that is allowed only when every listen "
               "address is loopback";
    /* the state file is the memory backend's: with Redis it would be
     * read at start and never consulted, and written at exit holding
     * nothing a next start may trust */
    if (cfg->state_backend == CONFIG_BACKEND_REDIS && cfg->state_file != NULL)
        return "state.file is for the memory backend only: with "
               "state.backend \"redis\" the state lives in Redis (remove "
               "state.file)";
    return NULL;
}

/* The API key goes in a header: over http:// to another host it crosses
 * the network in clear. Said at start and on every reload, since the
 * running URL keeps needing the warning. */
static void
warn_cleartext(const struct config *cfg)
{
    if (!config_url_cleartext_remote(cfg->upstream_base_url))
        return;
    char *shown = config_redacted_url(cfg->upstream_base_url);
    log_msg(LOG_WARN,
            "upstream.base_url %s is cleartext http:// to a host "
            "that is not loopback: the API key crosses the network "
            "unencrypted; use https://",
            shown);
    free(shown);
}

static void share_limiters(struct wagate *w);

/* Swaps in a validated configuration: every component that copied a
 * value gets the new one; the running config's memory is released. */
static void
apply_config(struct wagate *w, struct config *next, const char *key)
{
    upstream_set_key(w->up, key);
    shaper_configure(w->gw.send_shaper, next->rate_limit_rps,
                     (long)next->rate_limit_burst, next->max_queue_ms);
    shaper_configure(w->gw.read_shaper, next->read_rate_limit_rps, 1,
                     next->max_queue_ms);
    /* a reload is how an operator ends a pause an upstream 429 imposed
     * (besides DELETE /admin/pause): sends go again at once */
    if (shaper_resume(w->gw.send_shaper) | shaper_resume(w->gw.read_shaper))
        log_msg(LOG_INFO, "reload: the pause after an upstream 429 ended");
    if (w->gw.link)
        rlink_set_timeout(w->gw.link, (long)next->redis_timeout_ms);
    cache_set_max_entries(w->cache, (size_t)next->cache_max_entries);
    idem_configure(w->gw.idem, (size_t)next->idem_max_entries,
                   next->idem_ttl_s * 1000);
    log_configure(next->log_level, next->log_format);
    struct config old = w->cfg;
    w->cfg = *next; /* gw.cfg points at w->cfg: same address, new values */
    config_free(&old);
    share_limiters(w); /* state.instances, upstream.timeout_ms */
    server_configure(w->srv);
}

/* A reload that changes nothing: next (parsed or left empty) is released
 * and the running configuration stays. */
static void
reload_rejected(struct config *next, const char *why)
{
    log_msg(LOG_ERROR, "reload rejected, the running configuration stays: %s",
            why);
    config_free(next);
}

/* SIGHUP: re-read the file; a bad one changes nothing. */
static void
on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct wagate *w = arg;
    struct config next;
    char err[512], changed[256];
    char *key = NULL;
    if (w->path == NULL || w->stopping) {
        log_msg(LOG_WARN, "SIGHUP: %s; nothing reloaded",
                w->path ? "draining" : "started without -c");
        return;
    }
    if (config_load(&next, w->path, err, sizeof(err)) != 0) {
        reload_rejected(&next, err);
        return;
    }
    if (config_keep_restart_keys(&next, &w->cfg, changed, sizeof(changed)))
        log_msg(LOG_WARN, "reload: %s changed; these need a restart and "
                "keep their running values", changed);
    const char *refusal = startup_refusal(&next);
    if (refusal != NULL) {
        reload_rejected(&next, refusal);
        return;
    }
    if (secret_read_api_key(&next, &key, err, sizeof(err)) != 0) {
        reload_rejected(&next, err);
        return;
    }
    apply_config(w, &next, key);
    secret_free(key);
    warn_cleartext(&w->cfg);
    log_msg(LOG_INFO, "configuration reloaded from %s", w->path);
}

/* --check-config, with state.backend "redis": where the shared keys go
 * (the account derived from key, NULL when the key was not found) and
 * whether the password file can be read; never the password. */
static void
check_shared_state(const struct config *cfg, const char *key)
{
    char err[512], account[SECRET_ACCOUNT_MAX + 1];
    char *pw = NULL;
    if (cfg->state_backend != CONFIG_BACKEND_REDIS)
        return;
    if (key != NULL || cfg->state_account != NULL) {
        secret_account(cfg, key, account);
        fprintf(stderr, "wagate: shared state in Redis at %s, keys under "
                "%s{%s}: (account %s)\n", cfg->redis_url, cfg->redis_prefix,
                account, cfg->state_account ? "from state.account"
                                            : "derived from the API key");
    } else {
        fprintf(stderr, "wagate: shared state in Redis at %s; the account "
                "will be derived from the API key\n", cfg->redis_url);
    }
    if (secret_read_redis_password(cfg, &pw, err, sizeof(err)) != 0)
        fprintf(stderr, "wagate: warning: %s (wagate will refuse to start "
                "without it)\n", err);
    else if (pw != NULL)
        fprintf(stderr, "wagate: Redis password found in file %s (not "
                "shown)\n", cfg->redis_password_file);
    secret_free(pw);
}

/* --check-config: the file is what is checked (exit 0 when valid); where
 * the key would come from is reported, since a key that exists only where
 * the service runs (a systemd credential) must not fail the check. */
static int
check_config(struct config *cfg)
{
    char err[512];
    char *key = NULL;
    const char *refusal = startup_refusal(cfg);
    if (refusal != NULL) {
        fprintf(stderr, "wagate: %s\n", refusal);
        return EXIT_CONFIG;
    }
    config_print(cfg, stdout);
    if (config_url_cleartext_remote(cfg->upstream_base_url))
        fprintf(stderr,
                "wagate: warning: upstream.base_url is cleartext "
                "http:// to a host that is not loopback: the API key would "
                "cross the network unencrypted\n");
    if (secret_read_api_key(cfg, &key, err, sizeof(err)) != 0) {
        fprintf(stderr, "wagate: configuration valid; warning: %s (wagate "
                "will refuse to start without it)\n", err);
        check_shared_state(cfg, NULL);
        return 0;
    }
    fprintf(stderr, "wagate: configuration valid; API key found in %s %s "
            "(not shown)\n", cfg->api_key_file ? "file" : "environment "
            "variable", cfg->api_key_file ? cfg->api_key_file
                                          : cfg->api_key_env);
    check_shared_state(cfg, key);
    secret_free(key);
    return 0;
}

/* state.file, at start: before the gateway listens, so that no request
 * is decided without what the last run kept. A file that cannot be read
 * as a whole stops the start (see README, "Restarts"): starting without
 * it would send again the retries it would have replayed. */
static int
load_state(struct wagate *w)
{
    const char *path = w->cfg.state_file;
    struct state_counts n;
    char err[512];
    if (path == NULL)
        return 0;
    if (state_file_claim(path, &w->state_lock, err, sizeof(err)) != 0) {
        log_msg(LOG_ERROR, "refusing to start: state file %s: %s", path, err);
        return EXIT_CONFIG;
    }
    int64_t now = clock_wall_ms();
    switch (state_file_load(path, w->gw.idem, w->cache, now,
                            w->cfg.cache_recheck_after_s * 1000, &n, err,
                            sizeof(err))) {
    case STATE_ABSENT:
        log_msg(LOG_INFO, "state file %s does not exist yet; starting empty",
                path);
        return 0;
    case STATE_LOADED:
        log_msg(LOG_INFO, "state file %s loaded: %zu idempotency answers, "
                "%zu session entries (%zu and %zu expired, dropped)", path,
                n.answers, n.entries, n.answers_dropped, n.entries_dropped);
        if (n.written_at > now)
            log_msg(LOG_WARN, "state file %s was written %lld s in the "
                    "future: the wall clock moved back; what it held "
                    "lives at most its TTL from now", path,
                    (long long)((n.written_at - now) / 1000));
        return 0;
    case STATE_REFUSED:
        break;
    }
    log_msg(LOG_ERROR, "refusing to start: state file %s: %s; it may hold "
            "answers whose retries must not be sent again: fix it or move "
            "it aside to start without it", path, err);
    return EXIT_CONFIG;
}

/* state.file, once the drain ended and the loop stopped: blocking I/O is
 * fine here, nothing is being served. */
static int
save_state(struct wagate *w)
{
    const char *path = w->cfg.state_file;
    struct state_counts n;
    char err[512];
    if (path == NULL)
        return 0;
    if (state_file_save(path, w->gw.idem, w->cache, clock_wall_ms(), &n,
                        err, sizeof(err)) != 0) {
        log_msg(LOG_ERROR, "state file %s: saving failed: %s; the next start "
                "may not know the answers and windows kept since the last "
                "save", path, err);
        return EXIT_FAILURE;
    }
    log_msg(LOG_INFO, "state file %s written: %zu idempotency answers (%zu "
            "cut off in flight, kept as unknown outcome), %zu session "
            "entries", path, n.answers, n.unknown, n.entries);
    if (n.answers_dropped > 0)
        log_msg(LOG_WARN, "state file %s: %zu answers over the file's size "
                "limits were left out", path, n.answers_dropped);
    return 0;
}

/* WAGATE_TEST_STATE_DELAY_MS (tests only, documented in state.h): state
 * answers come that many ms late, as from a remote store. 0 when unset;
 * -1 when not a whole number of 0..60000 ms. */
static long
test_state_delay_ms(void)
{
    const char *v = getenv("WAGATE_TEST_STATE_DELAY_MS");
    char *end;
    if (v == NULL || *v == '\0')
        return 0;
    long ms = strtol(v, &end, 10);
    return *end == '\0' && ms >= 0 && ms <= 60000 ? ms : -1;
}

/* state.backend "redis": the link (it starts connecting from the loop;
 * until it is up the gateway serves degraded, SPEC section 11). Before
 * the limiters, which may share it. The password is read here and wiped
 * once the link has its copy. */
/* The limiters' transitions between shared and local mode start when
 * the link flips (shaper.h), however short the drop. */
static void
on_link_change(void *arg, int up)
{
    struct wagate *w = arg;
    (void)up;
    shaper_link_changed(w->gw.send_shaper);
    shaper_link_changed(w->gw.read_shaper);
}

static int
start_link(struct wagate *w)
{
    char err[512];
    char *pw = NULL;
    if (w->cfg.state_backend != CONFIG_BACKEND_REDIS)
        return 0;
    if (secret_read_redis_password(&w->cfg, &pw, err, sizeof(err)) != 0) {
        log_msg(LOG_ERROR, "refusing to start: %s", err);
        return EXIT_CONFIG;
    }
    struct rlink_config lc = {
        .url = w->cfg.redis_url,
        .password = pw,
        .timeout_ms = (long)w->cfg.redis_timeout_ms,
    };
    w->gw.link = rlink_new(w->base, &lc, redis_scripts, RS_COUNT,
                           on_link_change, w, err, sizeof(err));
    secret_free(pw);
    if (w->gw.link == NULL) {
        log_msg(LOG_ERROR, "refusing to start: state.redis.url: %s", err);
        return EXIT_CONFIG;
    }
    return 0;
}

/* state.backend "redis": both limiters share their schedules, their
 * on-the-wire guards and their pauses with every instance of the account
 * (SPEC section 11); while the link is down each keeps rate / instances
 * by itself. Again on a reload (instances, the upstream timeout). */
static void
share_limiters(struct wagate *w)
{
    char key_base[2 * SECRET_ACCOUNT_MAX + 8];
    if (w->gw.link == NULL)
        return;
    snprintf(key_base, sizeof(key_base), "%s{%s}:", w->cfg.redis_prefix,
             w->account);
    struct shaper_share sh = {
        .link = {w->gw.link, rlink_eval, rlink_cancel, rlink_up},
        .key_base = key_base,
        .limiter = "send",
        .instances = (double)w->cfg.state_instances,
        .pending_ms = (double)w->cfg.timeout_ms,
    };
    shaper_share(w->gw.send_shaper, &sh);
    sh.limiter = "read";
    shaper_share(w->gw.read_shaper, &sh);
}

/* The state backend the pipeline and the admin API ask (state.h). */
static int
start_state(struct wagate *w)
{
    char key_base[2 * SECRET_ACCOUNT_MAX + 8];
    long delay = test_state_delay_ms();
    if (delay < 0) {
        log_msg(LOG_ERROR, "WAGATE_TEST_STATE_DELAY_MS must be 0..60000");
        return EXIT_CONFIG;
    }
    if (w->gw.link == NULL) {
        if (delay > 0)
            log_msg(LOG_WARN, "WAGATE_TEST_STATE_DELAY_MS: state answers "
                    "come %ld ms late (for tests only)", delay);
        w->gw.state = state_memory_new(w->base, w->gw.idem, w->cache,
                                       w->gw.refusals, delay);
        log_msg(LOG_INFO, "state: memory backend");
        return 0;
    }
    if (delay > 0)
        log_msg(LOG_WARN, "WAGATE_TEST_STATE_DELAY_MS applies to the memory "
                "backend only: ignored");
    /* the account is a hash tag: every key of one account in one slot */
    snprintf(key_base, sizeof(key_base), "%s{%s}:", w->cfg.redis_prefix,
             w->account);
    w->gw.state = state_redis_new(w->base, w->gw.link, key_base, &w->gw.cfg);
    log_msg(LOG_INFO, "state: redis backend at %s, keys under %s (account "
            "%s, fixed until a restart), %lld instances", w->cfg.redis_url,
            key_base, w->cfg.state_account ? "from state.account"
                                           : "derived from the API key",
            w->cfg.state_instances);
    return 0;
}

static int
start(struct wagate *w)
{
    char err[512];
    char *key = NULL;
    if (secret_read_api_key(&w->cfg, &key, err, sizeof(err)) != 0) {
        log_msg(LOG_ERROR, "%s", err);
        return EXIT_CONFIG;
    }
    struct upstream_opts uo = {
        .base_url = w->cfg.upstream_base_url,
        .ca_file = w->cfg.ca_file,
        .connect_timeout_ms = (long)w->cfg.connect_timeout_ms,
        .timeout_ms = (long)w->cfg.timeout_ms,
        .max_connections = (long)w->cfg.upstream_max_connections,
    };
    w->up = upstream_new(w->base, &uo, err, sizeof(err));
    if (w->up == NULL) {
        secret_free(key);
        log_msg(LOG_ERROR, "%s", err);
        return EXIT_FAILURE;
    }
    upstream_set_key(w->up, key);
    secret_account(&w->cfg, key, w->account);
    secret_free(key);
    warn_cleartext(&w->cfg); /* before "listening on": tests wait for it */
    w->cache = cache_new((size_t)w->cfg.cache_max_entries);
    w->gw.refusals = refusals_new(WAGATE_REFUSALS_MAX);
    int rc = start_link(w);
    if (rc != 0)
        return rc;
    w->gw.base = w->base;
    w->gw.cfg = &w->cfg;
    w->gw.up = w->up;
    w->gw.cache = w->cache;
    w->gw.send_shaper =
        shaper_new(w->base, w->cfg.rate_limit_rps,
                   (long)w->cfg.rate_limit_burst, w->cfg.max_queue_ms);
    w->gw.read_shaper = shaper_new(w->base, w->cfg.read_rate_limit_rps, 1,
                                   w->cfg.max_queue_ms);
    share_limiters(w);
    w->gw.idem = idem_new((size_t)w->cfg.idem_max_entries,
                          w->cfg.idem_ttl_s * 1000);
    rc = start_state(w);
    if (rc != 0)
        return rc;
    w->gw.waiting = ex_waitlist_new();
    rc = load_state(w);
    if (rc != 0)
        return rc;
    w->srv = server_new(&w->gw, err, sizeof(err));
    if (w->srv == NULL || server_listen(w->srv, err, sizeof(err)) != 0) {
        log_msg(LOG_ERROR, "%s", err);
        return EXIT_FAILURE;
    }
    char *shown = config_redacted_url(w->cfg.upstream_base_url);
    log_msg(LOG_INFO, "wagate %s started; upstream %s", WAGATE_VERSION, shown);
    free(shown);
    return 0;
}

static int
run(struct wagate *w)
{
    int rc = EXIT_FAILURE;
    struct event *sigs[3] = {NULL, NULL, NULL};
    /* the changelist folds the add/remove churn of libcurl's pooled sockets
     * and evhttp's read toggling into fewer epoll_ctl calls */
    struct event_config *ec = event_config_new();
    if (ec == NULL)
        alloc_oom("event_config_new");
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (w->base == NULL) {
        log_msg(LOG_ERROR, "cannot create the event loop");
        return EXIT_FAILURE;
    }
    /* before start() logs "listening": a SIGTERM sent as soon as the
     * listener is up must drain, not kill (libevent catches it now and
     * delivers it once the loop runs) */
    sigs[0] = evsignal_new(w->base, SIGTERM, on_stop_signal, w);
    sigs[1] = evsignal_new(w->base, SIGINT, on_stop_signal, w);
    sigs[2] = evsignal_new(w->base, SIGHUP, on_reload_signal, w);
    for (int i = 0; i < 3; i++)
        if (sigs[i] == NULL || evsignal_add(sigs[i], NULL) != 0)
            alloc_oom("evsignal_new");
    rc = start(w);
    if (rc == 0) {
        event_base_dispatch(w->base);
        if (w->drained)
            rc = save_state(w);
        log_msg(LOG_INFO, "stopped");
    }
    /* from here on a second SIGTERM must not kill the teardown (freeing
     * the events restores the default action): keep them blocked until
     * exit */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    for (int i = 0; i < 3; i++)
        if (sigs[i])
            event_free(sigs[i]);
    /* transfers first (their callbacks reference the server), then the
     * server, then the loop */
    if (w->flush_timer)
        event_free(w->flush_timer);
    upstream_free(w->up);
    server_free(w->srv);
    ex_waitlist_free(w->gw.waiting); /* before the state: claims, ops */
    state_free(w->gw.state);
    shaper_free(w->gw.send_shaper);
    shaper_free(w->gw.read_shaper);
    rlink_free(w->gw.link); /* after what sends on it */
    idem_free(w->gw.idem);
    cache_free(w->cache);
    refusals_free(w->gw.refusals);
    event_base_free(w->base);
    if (w->state_lock >= 0)
        close(w->state_lock); /* the state is saved: another may start */
    return rc;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int check = 0, c;
    while ((c = getopt_long(argc, argv, "c:nhV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'n':
            check = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("wagate %s\n", WAGATE_VERSION);
            return 0;
        default:
            usage(stderr);
            return EXIT_CONFIG;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return EXIT_CONFIG;
    }
    struct wagate w;
    memset(&w, 0, sizeof(w));
    w.path = path;
    w.state_lock = -1;
    char err[512];
    if (path == NULL) {
        config_defaults(&w.cfg);
    } else if (config_load(&w.cfg, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "wagate: %s\n", err);
        return EXIT_CONFIG;
    }
    if (check) {
        int rc = check_config(&w.cfg);
        config_free(&w.cfg);
        return rc;
    }
    const char *refusal = startup_refusal(&w.cfg);
    if (refusal != NULL) {
        fprintf(stderr, "wagate: %s: %s\n", path ? path : "(defaults)",
                refusal);
        config_free(&w.cfg);
        return EXIT_CONFIG;
    }
    log_configure(w.cfg.log_level, w.cfg.log_format);
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "wagate: curl_global_init failed\n");
        config_free(&w.cfg);
        return EXIT_FAILURE;
    }
    int rc = run(&w);
    curl_global_cleanup();
    config_free(&w.cfg);
    return rc;
}
