/* config.h - the gateway's configuration: defaults, JSON file, validation.
 *
 * One table (config.c, config_keys[]) lists every key of SPEC section 8 with
 * its type, bounds and default. config_load() reads a JSON file (comments
 * allowed), rejects unknown keys and bad values with "FILE: KEY: reason",
 * and fills a struct config that the caller owns and releases with
 * config_free(). A message is always one line of printable text: what it
 * echoes from the input (file name, key, client name) is escaped as
 * text_escape() does.
 * No string value may hold a NUL (nor a key, which json-c would cut);
 * file names are UTF-8 text without control characters, the base URL is
 * visible ASCII, client names are printable UTF-8 text. The API key is
 * not part of the file: secret.h fetches it from the environment
 * variable or file the config names.
 *
 * Rules that span keys (state.file with state.backend "redis", auth off
 * on a listener that is not loopback) are main.c's: a configuration that
 * parses can still be one wagate refuses to run.
 *
 * Each row of the table carries its own rules: a check function for what
 * its type alone does not say, and flags (below) from which the reload's
 * restart-only list and config_print()'s redaction are derived. */
#ifndef WAGATE_CONFIG_H
#define WAGATE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "digest.h"
#include "log.h"
#include "refusals.h"

#define CONFIG_SHA256_LEN DIGEST_LEN

/* A row's flags. */
enum cfg_flag {
    CFG_RESTART = 1u << 0,  /* a reload keeps the running value (the key
                             * needs a restart); for integer, string and
                             * listen rows */
    CFG_SECRET = 1u << 1,   /* config_print() shows "<redacted>" (null
                             * stays null); the clients array hides each
                             * token_sha256 */
    CFG_USERINFO = 1u << 2, /* a URL: config_print() hides its userinfo as
                             * config_redacted_url() does */
};

/* state.backend */
enum config_backend {
    CONFIG_BACKEND_MEMORY = 0,
    CONFIG_BACKEND_REDIS,
};

#define CONFIG_ACCOUNT_MAX 64 /* bytes of a state.account (and a prefix) */

struct config_listen {
    char *host; /* IPv4 (four decimal numbers), IPv6 (zone allowed, given
                 * in brackets, stored without) or an RFC 1123 DNS name */
    int port;   /* 0 = ephemeral */
};

struct config_client {
    char *name; /* non-empty printable UTF-8, no space at either end */
    unsigned char token_sha256[CONFIG_SHA256_LEN];
    int all_senders;     /* "senders": "*" */
    long long *senders;  /* owned */
    size_t nsenders;
};

struct config {
    struct config_listen *listen; /* owned, nlisten >= 1 */
    size_t nlisten;

    char *upstream_base_url; /* without trailing '/' */
    char *api_key_env;
    char *api_key_file; /* NULL = use api_key_env */
    char *ca_file;      /* NULL = system bundle */
    long long connect_timeout_ms;
    long long timeout_ms;
    long long upstream_max_connections;
    double rate_limit_rps;
    long long rate_limit_burst;
    double read_rate_limit_rps;
    long long max_queue_ms;
    long long max_pause_ms; /* cap on an upstream 429's Retry-After */

    long long cache_max_entries;
    long long cache_recheck_after_s;

    long long idem_ttl_s;
    long long idem_max_entries;

    long long max_body_bytes;
    long long max_message_chars;
    long long client_timeout_ms;
    long long max_connections;

    struct config_client *clients; /* owned */
    size_t nclients;

    int admin_token_set;
    unsigned char admin_token_sha256[CONFIG_SHA256_LEN];

    enum log_level log_level;
    enum log_format log_format;

    long long drain_timeout_ms;

    /* SPEC section 4a: trust periods in seconds, 0 = that kind off */
    long long refusal_offline_s;
    long long refusal_not_found_s;
    long long refusal_balance_s;

    /* SPEC sections 8 and 11: where the state lives */
    enum config_backend state_backend;
    char *state_file;          /* memory backend only; NULL = off */
    char *redis_url;           /* checked by rlink_parse_url() */
    char *redis_password_file; /* NULL: no AUTH; the path, never the
                                * password (secret.h reads it) */
    char *redis_prefix;        /* no '{', '}' or whitespace */
    long long redis_timeout_ms;
    char *state_account;       /* NULL: derived from the API key
                                * (secret_account()); visible ASCII
                                * without '{' or '}', at most
                                * CONFIG_ACCOUNT_MAX bytes */
    long long state_instances; /* degraded mode: rate / instances */
};

/* Fills cfg with every default. cfg is then owned by the caller. */
void config_defaults(struct config *cfg);

/* Reads path into cfg (which need not be initialised). 0 on success; -1
 * with a one-line "path: key: reason" in err and cfg left empty. A FIFO
 * is never waited on to open (nobody writing: it reads empty); a pipe is
 * read to its end. The same holds for the api_key_file. */
int config_load(struct config *cfg, const char *path, char *err,
                size_t errlen);

/* Same as config_load() from a string; name is used in messages. */
int config_parse(struct config *cfg, const char *text, const char *name,
                 char *err, size_t errlen);

void config_free(struct config *cfg);

/* Prints the effective configuration as JSON, the CFG_SECRET and
 * CFG_USERINFO rows redacted (token hashes as "<redacted>", the base URL's
 * userinfo as config_redacted_url() shows it). Otherwise what it prints
 * parses back to the same config. */
void config_print(const struct config *cfg, FILE *out);

/* For a reload: the CFG_RESTART keys (listen, upstream.base_url,
 * upstream.ca_file, upstream.connect_timeout_ms, upstream.timeout_ms,
 * upstream.max_connections, state.backend, state.file, state.redis.url,
 * state.redis.password_file, state.redis.prefix, state.account) keep
 * their running values in
 * next; the names of those that differed are written, comma-separated in
 * table order, into changed. Returns how many differed. */
int config_keep_restart_keys(struct config *next, const struct config *running,
                             char *changed, size_t changedlen);

/* Row i of the table, in the order config_print() writes the keys: its
 * dotted name (static) and flags. 0 past the last row. For whatever must
 * cover every key, such as tests. */
int config_key(size_t i, const char **name, unsigned *flags);

/* 1 if every listen address is loopback (127.0.0.0/8, ::1, localhost in
 * any case). */
int config_all_loopback(const struct config *cfg);

/* url with its userinfo ("user:pass@") shown as "<redacted>@": the form
 * every message, log line and --check-config prints. Everything up to the
 * last '@' of the authority is hidden. A heap string, the caller frees. */
char *config_redacted_url(const char *url);

/* fopen(path, "rb") that never waits in open(2) for a FIFO's writer (on a
 * SIGHUP that would stop the event loop for ever): nobody writing, it
 * reads empty; a pipe (-c <(...)) is still read to its end. NULL and
 * errno on failure. For the config file and the api_key_file. */
FILE *config_open(const char *path);

/* 1 if url is cleartext http:// to a host that is not certainly loopback
 * (127.0.0.0/8 written as four numbers, ::1, localhost): the API key would
 * cross the network unencrypted, so wagate warns. 0 otherwise. */
int config_url_cleartext_remote(const char *url);

/* The refusals.*_s keys as refusals.h's trust periods (ms). */
void config_refusal_trust(const struct config *cfg, struct refusal_trust *t);

#endif
