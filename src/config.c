/* config.c - see config.h. Table-driven: one row per key of SPEC section 8. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "alloc.h"
#include "hex.h"
#include "redis_link.h"
#include "text.h"

enum cfg_type {
    CFG_INT,     /* long long, JSON integer */
    CFG_NUM,     /* double, JSON integer or real */
    CFG_STR,     /* char *, non-empty */
    CFG_NSTR,    /* char *, non-empty or null */
    CFG_SHA256,  /* unsigned char[CONFIG_SHA256_LEN]: 64 hex digits or null */
    CFG_ENUM,    /* an enum (int-sized): one of the row's names */
    CFG_LISTEN,  /* array of "host:port" */
    CFG_CLIENTS, /* array of client objects */
};

/* A row says everything about its key: the type's parser stores the value
 * at off, then the row's check (if any) validates what was stored and may
 * normalise it in place; flags (config.h) say how a reload and
 * config_print() treat it. */
struct cfg_key {
    const char *name;
    enum cfg_type type;
    unsigned flags;
    double min, max;          /* CFG_INT, CFG_NUM */
    double def;               /* CFG_INT, CFG_NUM, CFG_ENUM */
    const char *sdef;         /* CFG_STR, CFG_NSTR, CFG_LISTEN */
    const char *const *names; /* CFG_ENUM: its values, by number */
    size_t nnames;
    const char *why; /* CFG_ENUM: the reason for another value */
    size_t off;
    size_t set_off; /* CFG_SHA256: the int saying it is given */
    const char *(*check)(void *field); /* NULL or the reason */
};

static const char *check_base_url(void *field);
static const char *check_env_name(void *field);
static const char *check_redis_url(void *field);
static const char *check_key_part(void *field);

static const char *const format_names[] = {"json", "text"};
static const char *const backend_names[] = {"memory", "redis"};

_Static_assert(sizeof(enum log_level) == sizeof(int) &&
                   sizeof(enum log_format) == sizeof(int) &&
                   sizeof(enum config_backend) == sizeof(int),
               "CFG_ENUM stores an int");

/* one row per line: the table reads as a table */
/* clang-format off */
#define OFF(f) offsetof(struct config, f)
#define ROW(n, t, f, fl) .name = n, .type = t, .off = OFF(f), .flags = fl
#define INT(n, f, lo, hi, d, fl)                                               \
    {ROW(n, CFG_INT, f, fl), .min = lo, .max = hi, .def = d}
#define NUM(n, f, lo, hi, d)                                                   \
    {ROW(n, CFG_NUM, f, 0), .min = lo, .max = hi, .def = d}
#define STR(n, f, d, fl, chk) {ROW(n, CFG_STR, f, fl), .sdef = d, .check = chk}
#define NSTR(n, f, fl) {ROW(n, CFG_NSTR, f, fl)}
#define NSTRC(n, f, fl, chk) {ROW(n, CFG_NSTR, f, fl), .check = chk}
#define ENUM(n, f, tab, cnt, d, w, fl)                                         \
    {ROW(n, CFG_ENUM, f, fl), .names = tab, .nnames = cnt, .def = d, .why = w}

static const struct cfg_key config_keys[] = {
    {ROW("listen", CFG_LISTEN, listen, CFG_RESTART), .sdef = "127.0.0.1:8080"},
    STR("upstream.base_url", upstream_base_url, "https://app.autocalls.ai",
        CFG_RESTART | CFG_USERINFO, check_base_url),
    STR("upstream.api_key_env", api_key_env, "AUTOCALLS_API_KEY", 0,
        check_env_name),
    NSTR("upstream.api_key_file", api_key_file, 0),
    NSTR("upstream.ca_file", ca_file, CFG_RESTART),
    INT("upstream.connect_timeout_ms", connect_timeout_ms, 1, 600000, 3000,
        CFG_RESTART),
    INT("upstream.timeout_ms", timeout_ms, 1, 3600000, 30000, CFG_RESTART),
    INT("upstream.max_connections", upstream_max_connections, 1, 10000, 16,
        CFG_RESTART),
    NUM("upstream.rate_limit_rps", rate_limit_rps, 0.001, 1e6, 5),
    INT("upstream.rate_limit_burst", rate_limit_burst, 1, 1000000, 1, 0),
    NUM("upstream.read_rate_limit_rps", read_rate_limit_rps, 0, 1e6, 0),
    INT("upstream.max_queue_ms", max_queue_ms, 0, 3600000, 10000, 0),
    INT("upstream.max_pause_ms", max_pause_ms, 0, 3600000, 60000, 0),
    INT("session_cache.max_entries", cache_max_entries, 1, 100000000, 1000000,
        0),
    INT("session_cache.recheck_after_s", cache_recheck_after_s, 0, 604800, 300,
        0),
    INT("idempotency.ttl_s", idem_ttl_s, 1, 2592000, 86400, 0),
    INT("idempotency.max_entries", idem_max_entries, 1, 100000000, 1000000, 0),
    INT("limits.max_body_bytes", max_body_bytes, 1024, 16777216, 65536, 0),
    INT("limits.max_message_chars", max_message_chars, 1, 1000000, 4096, 0),
    INT("limits.client_timeout_ms", client_timeout_ms, 100, 3600000, 15000, 0),
    INT("limits.max_connections", max_connections, 1, 1000000, 10000, 0),
    {ROW("clients", CFG_CLIENTS, clients, CFG_SECRET)},
    {ROW("admin.token_sha256", CFG_SHA256, admin_token_sha256, CFG_SECRET),
     .set_off = OFF(admin_token_set)},
    ENUM("log.level", log_level, log_level_names, LOG_NLEVELS, LOG_INFO,
         "must be one of \"error\", \"warn\", \"info\", \"debug\"", 0),
    ENUM("log.format", log_format, format_names, 2, LOG_FORMAT_JSON,
         "must be \"json\" or \"text\"", 0),
    INT("drain_timeout_ms", drain_timeout_ms, 0, 600000, 10000, 0),
    /* SPEC section 4a: how long a learned refusal is trusted; 0 = off */
    INT("refusals.sender_offline_s", refusal_offline_s, 0, 604800, 30, 0),
    INT("refusals.sender_not_found_s", refusal_not_found_s, 0, 604800, 300, 0),
    INT("refusals.balance_s", refusal_balance_s, 0, 604800, 10, 0),
    /* the backend, where it is and whose keys it holds are fixed at
     * start: a reload cannot move the state of requests in flight (nor,
     * rotating the API key, the derived account: secret.h) */
    ENUM("state.backend", state_backend, backend_names, 2,
         CONFIG_BACKEND_MEMORY, "must be \"memory\" or \"redis\"",
         CFG_RESTART),
    /* the start read the state from this path and claimed it (checked it
     * can be saved there, locked it): a path given by a reload has had
     * neither, and would be written without its lock */
    NSTR("state.file", state_file, CFG_RESTART),
    STR("state.redis.url", redis_url, "redis://127.0.0.1:6379/0", CFG_RESTART,
        check_redis_url),
    NSTR("state.redis.password_file", redis_password_file, CFG_RESTART),
    STR("state.redis.prefix", redis_prefix, "wagate:", CFG_RESTART,
        check_key_part),
    INT("state.redis.timeout_ms", redis_timeout_ms, 1, 60000, 250, 0),
    NSTRC("state.account", state_account, CFG_RESTART, check_key_part),
    INT("state.instances", state_instances, 1, 1000, 1, 0),
};
/* clang-format on */
#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

int
config_key(size_t i, const char **name, unsigned *flags)
{
    if (i >= CONFIG_NKEYS)
        return 0;
    *name = config_keys[i].name;
    *flags = config_keys[i].flags;
    return 1;
}

/* The string v holds, or NULL if v is not a string or holds a NUL: json-c
 * keeps "\u0000" inside a string, where C code would see a shorter one. */
static const char *
json_text(json_object *v)
{
    if (!json_object_is_type(v, json_type_string))
        return NULL;
    const char *s = json_object_get_string(v);
    if (strlen(s) != (size_t)json_object_get_string_len(v))
        return NULL;
    return s;
}

#define AT(cfg, o, T) ((T *)(void *)((char *)(cfg) + (o)))
#define FIELD(cfg, k, T) AT(cfg, (k)->off, T)

static const char *parse_listen_one(const char *s, struct config_listen *out);

void
config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct cfg_key *k = &config_keys[i];
        switch (k->type) {
        case CFG_INT:
            *FIELD(cfg, k, long long) = (long long)k->def;
            break;
        case CFG_NUM:
            *FIELD(cfg, k, double) = k->def;
            break;
        case CFG_STR:
        case CFG_NSTR:
            *FIELD(cfg, k, char *) = k->sdef ? xstrdup(k->sdef) : NULL;
            break;
        case CFG_ENUM:
            *FIELD(cfg, k, int) = (int)k->def;
            break;
        case CFG_LISTEN:
            cfg->listen = xcalloc(1, sizeof(*cfg->listen));
            cfg->nlisten = 1;
            (void)parse_listen_one(k->sdef, &cfg->listen[0]);
            break;
        case CFG_SHA256:
        case CFG_CLIENTS:
            break; /* zeroed: none */
        }
    }
}

static void
free_listen(struct config *cfg)
{
    for (size_t i = 0; i < cfg->nlisten; i++)
        free(cfg->listen[i].host);
    free(cfg->listen);
    cfg->listen = NULL;
    cfg->nlisten = 0;
}

static void
free_clients(struct config *cfg)
{
    for (size_t i = 0; i < cfg->nclients; i++) {
        free(cfg->clients[i].name);
        free(cfg->clients[i].senders);
    }
    free(cfg->clients);
    cfg->clients = NULL;
    cfg->nclients = 0;
}

void
config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct cfg_key *k = &config_keys[i];
        if (k->type == CFG_STR || k->type == CFG_NSTR) {
            free(*FIELD(cfg, k, char *));
            *FIELD(cfg, k, char *) = NULL;
        }
    }
    free_listen(cfg);
    free_clients(cfg);
}

/* ---- value parsers: each returns NULL or a static reason ---- */

static const char *
parse_int(const struct cfg_key *k, json_object *v, long long *out)
{
    static char why[96];
    if (!json_object_is_type(v, json_type_int))
        return "must be an integer";
    errno = 0;
    long long n = json_object_get_int64(v);
    if (errno != 0 || n < (long long)k->min || n > (long long)k->max) {
        snprintf(why, sizeof(why), "must be between %lld and %lld",
                 (long long)k->min, (long long)k->max);
        return why;
    }
    *out = n;
    return NULL;
}

static const char *
parse_num(const struct cfg_key *k, json_object *v, double *out)
{
    static char why[96];
    if (!json_object_is_type(v, json_type_int) &&
        !json_object_is_type(v, json_type_double))
        return "must be a number";
    double d = json_object_get_double(v);
    if (!(d >= k->min && d <= k->max)) {
        snprintf(why, sizeof(why), "must be between %g and %g", k->min,
                 k->max);
        return why;
    }
    *out = d;
    return NULL;
}

static const char *
parse_sha256(json_object *v, unsigned char out[CONFIG_SHA256_LEN])
{
    if (!json_object_is_type(v, json_type_string))
        return "must be a string of 64 hex digits (a SHA-256)";
    const char *s = json_object_get_string(v);
    if (json_object_get_string_len(v) != 2 * CONFIG_SHA256_LEN)
        return "must be 64 hex digits (a SHA-256)";
    for (int i = 0; i < CONFIG_SHA256_LEN; i++) {
        int hi = hex_value((unsigned char)s[2 * i]);
        int lo = hex_value((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return "must be 64 hex digits (a SHA-256)";
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return NULL;
}

static const char *
parse_enum(const struct cfg_key *k, json_object *v, int *out)
{
    const char *s = json_text(v);
    for (size_t i = 0; s != NULL && i < k->nnames; i++) {
        if (strcmp(s, k->names[i]) == 0) {
            *out = (int)i;
            return NULL;
        }
    }
    return k->why;
}

/* A DNS name of RFC 1123 labels (letters, digits, inner '-'; 1 to 63
 * each) whose last label is not all digits (RFC 1123 2.1: it would read
 * as an address). */
static int
dns_name_valid(const char *h)
{
    const char *label = h;
    for (;;) {
        size_t n = strcspn(label, ".");
        int digits = 1;
        if (n == 0 || n > 63 || label[0] == '-' || label[n - 1] == '-')
            return 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)label[i];
            if (!(isascii(c) && (isalnum(c) || c == '-')))
                return 0;
            digits &= isdigit(c) != 0;
        }
        if (label[n] == '\0')
            return !digits;
        label += n + 1;
    }
}

/* An IPv6 address, optionally with a zone ("fe80::1%eth0"). */
static int
ipv6_valid(const char *h)
{
    char addr[INET6_ADDRSTRLEN + 1];
    struct in6_addr a6;
    size_t n = strcspn(h, "%");
    if (n >= sizeof(addr))
        return 0;
    memcpy(addr, h, n);
    addr[n] = '\0';
    if (inet_pton(AF_INET6, addr, &a6) != 1)
        return 0;
    if (h[n] == '\0')
        return 1;
    const char *zone = h + n + 1; /* an interface name or index */
    size_t zn = strlen(zone);
    if (zn == 0 || zn > 15)
        return 0;
    for (; *zone; zone++)
        if (!(isascii((unsigned char)*zone) &&
              (isalnum((unsigned char)*zone) || strchr("_.-", *zone))))
            return 0;
    return 1;
}

/* NULL if h is a host a listener may name: an IPv4 address in four
 * decimal numbers, an IPv6 address (only in brackets), or a DNS name;
 * otherwise the reason. */
static const char *
check_listen_host(const char *h, int bracketed)
{
    struct in_addr a4;
    if (bracketed)
        return ipv6_valid(h) ? NULL
                             : "brackets must hold an IPv6 address, as in "
                               "\"[::1]:8080\"";
    if (inet_pton(AF_INET, h, &a4) == 1)
        return NULL;
    /* inet_aton() reads "127.1", "0x7f000001" or "010.0.0.1" as addresses:
     * a resolver might too, so they are neither addresses nor names */
    if (inet_aton(h, &a4) != 0)
        return "an IPv4 address must be four decimal numbers, as in "
               "\"127.0.0.1:8080\"";
    if (!dns_name_valid(h))
        return "the host must be an IPv4 address, an IPv6 address in "
               "brackets or a DNS name (letters, digits, '-' and '.')";
    return NULL;
}

/* "host:port", "[v6]:port"; the port is required. NULL or the reason. */
static const char *
parse_listen_one(const char *s, struct config_listen *out)
{
    static const char form[] = "must be \"host:port\" (IPv6 as \"[::1]:port\")";
    const char *colon;
    const char *host = s;
    size_t hostlen;
    int bracketed = s[0] == '[';
    if (bracketed) {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return form;
        host = s + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
            return form;
        hostlen = (size_t)(colon - s);
    }
    if (hostlen == 0 || hostlen > 253)
        return form;
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5)
        return form;
    long port = 0;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return form;
        port = port * 10 + (*p - '0');
    }
    if (port > 65535)
        return "the port must be 0 to 65535";
    char *h = xstrndup(host, hostlen);
    const char *why = check_listen_host(h, bracketed);
    if (why != NULL) {
        free(h);
        return why;
    }
    out->host = h;
    out->port = (int)port;
    return NULL;
}

static int
parse_listen(json_object *v, struct config *cfg, const char *file, char *err,
             size_t errlen)
{
    if (!json_object_is_type(v, json_type_array) ||
        json_object_array_length(v) == 0)
        return text_error(err, errlen,
                          "%s: listen: must be a non-empty array of "
                          "\"host:port\" strings",
                          file);
    size_t n = json_object_array_length(v);
    struct config_listen *l = xcalloc(n, sizeof(*l));
    for (size_t i = 0; i < n; i++) {
        const char *e = json_text(json_object_array_get_idx(v, i));
        const char *why =
            e ? parse_listen_one(e, &l[i]) : "must be a \"host:port\" string";
        if (why != NULL) {
            for (size_t j = 0; j < i; j++)
                free(l[j].host);
            free(l);
            return text_error(err, errlen, "%s: listen[%zu]: %s", file, i, why);
        }
    }
    free_listen(cfg);
    cfg->listen = l;
    cfg->nlisten = n;
    return 0;
}

/* upstream.base_url: requests are built on it, and it is echoed. Drops
 * the trailing '/' (paths are appended with their own). */
static const char *
check_base_url(void *field)
{
    char *s = *(char **)field;
    if (!text_visible_ascii(s))
        return "must be visible ASCII without spaces (percent-encode "
               "the rest, write an international host name as xn--)";
    const char *host = strncmp(s, "http://", 7) == 0    ? s + 7
                       : strncmp(s, "https://", 8) == 0 ? s + 8
                                                        : NULL;
    if (host == NULL)
        return "must start with http:// or https://";
    if (*host == '\0' || *host == '/' || *host == '?' || *host == '#')
        return "must name a host";
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
    return NULL;
}

/* upstream.api_key_env: a name getenv() can be asked for. */
static const char *
check_env_name(void *field)
{
    const char *s = *(char **)field;
    if (isdigit((unsigned char)*s))
        return "must be an environment variable name";
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return "must be an environment variable name";
    return NULL;
}

#define XSTR(x) STR_(x)
#define STR_(x) #x

/* state.redis.url: the link's own parser judges it (redis_link.h:
 * redis://host[:port][/db] with an IP address or localhost, or unix:PATH;
 * never a password, which comes from state.redis.password_file). Its
 * reason never echoes the URL. */
static const char *
check_redis_url(void *field)
{
    static char why[160];
    char host[256], err[sizeof(why)];
    int port, db;
    const char *s = *(char **)field;
    if (!text_visible_ascii(s))
        return "must be visible ASCII without spaces";
    if (rlink_parse_url(s, host, sizeof(host), &port, &db, err,
                        sizeof(err)) != 0) {
        snprintf(why, sizeof(why), "%s", err);
        return why;
    }
    return NULL;
}

/* state.redis.prefix and state.account: parts of every shared key. The
 * account is a Redis Cluster hash tag, {<account>}, so no brace may be in
 * either (Redis would take the first {...} it finds); no whitespace or
 * control byte, which redis-cli and the logs would show ambiguously. */
static const char *
check_key_part(void *field)
{
    const char *s = *(char **)field;
    if (s == NULL)
        return NULL; /* state.account null: derived from the API key */
    if (!text_visible_ascii(s))
        return "must be visible ASCII, without whitespace";
    if (strpbrk(s, "{}") != NULL)
        return "must not contain '{' or '}' (the account is a hash tag)";
    if (strlen(s) > CONFIG_ACCOUNT_MAX)
        return "must be at most " XSTR(CONFIG_ACCOUNT_MAX) " characters";
    return NULL;
}

static const char *
parse_string(const struct cfg_key *k, json_object *v, char **dst)
{
    if (v == NULL || json_object_is_type(v, json_type_null)) {
        if (k->type == CFG_STR)
            return "must be a string";
        free(*dst);
        *dst = NULL;
        return NULL;
    }
    if (!json_object_is_type(v, json_type_string))
        return k->type == CFG_STR ? "must be a string"
                                  : "must be a string or null";
    const char *s = json_text(v);
    if (s == NULL)
        return "must not contain NUL";
    if (*s == '\0')
        return "must not be empty";
    /* file names and the rest are echoed in messages and log lines */
    if (!text_printable(s, strlen(s)))
        return "must be UTF-8 text without control characters";
    free(*dst);
    *dst = xstrdup(s);
    return NULL;
}

/* ---- clients ---- */

static const char *
parse_senders(json_object *v, struct config_client *c)
{
    const char *all = json_text(v);
    if (all != NULL && strcmp(all, "*") == 0) {
        c->all_senders = 1;
        return NULL;
    }
    if (!json_object_is_type(v, json_type_array))
        return "must be \"*\" or an array of sender ids";
    size_t n = json_object_array_length(v);
    c->senders = xcalloc(n, sizeof(*c->senders));
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        /* json-c clamps an integer above INT64_MAX to INT64_MAX: refuse
         * it rather than allow a sender nobody named */
        if (!json_object_is_type(e, json_type_int) ||
            json_object_get_int64(e) < 1 ||
            (json_object_get_int64(e) == INT64_MAX &&
             json_object_get_uint64(e) != (uint64_t)INT64_MAX))
            return "sender ids must be integers >= 1";
        c->senders[c->nsenders++] = json_object_get_int64(e);
    }
    return NULL;
}

/* Names appear in log lines and messages: non-empty printable text. */
static const char *
check_client_name(json_object *v)
{
    const char *s = json_text(v);
    if (s == NULL || *s == '\0')
        return "must be a non-empty string";
    size_t n = strlen(s);
    if (s[0] == ' ' || s[n - 1] == ' ')
        return "must not start or end with a space";
    if (!text_printable(s, n))
        return "must be UTF-8 text without control characters";
    return NULL;
}

static int
parse_client(json_object *v, size_t idx, struct config_client *c,
             const char *file, char *err, size_t errlen)
{
    int have_name = 0, have_tok = 0, have_senders = 0;
    if (!json_object_is_type(v, json_type_object))
        return text_error(err, errlen, "%s: clients[%zu]: must be an object",
                          file, idx);
    json_object_object_foreach(v, key, val)
    {
        const char *why = NULL;
        if (strcmp(key, "name") == 0) {
            why = check_client_name(val);
            if (why == NULL) {
                free(c->name);
                c->name = xstrdup(json_object_get_string(val));
            }
            have_name = 1;
        } else if (strcmp(key, "token_sha256") == 0) {
            why = parse_sha256(val, c->token_sha256);
            have_tok = 1;
        } else if (strcmp(key, "senders") == 0) {
            why = parse_senders(val, c);
            have_senders = 1;
        } else {
            why = "unknown key";
        }
        if (why) {
            char *shown = text_escape(key);
            text_error(err, errlen, "%s: clients[%zu].%s: %s", file, idx, shown,
                       why);
            free(shown);
            return -1;
        }
    }
    if (!have_name || !have_tok || !have_senders)
        return text_error(err, errlen,
                          "%s: clients[%zu]: needs \"name\", \"token_sha256\" "
                          "and \"senders\"",
                          file, idx);
    return 0;
}

static int
parse_clients(json_object *v, struct config *cfg, const char *file,
              char *err, size_t errlen)
{
    if (!json_object_is_type(v, json_type_array))
        return text_error(err, errlen, "%s: clients: must be an array", file);
    free_clients(cfg);
    size_t n = json_object_array_length(v);
    cfg->clients = xcalloc(n ? n : 1, sizeof(*cfg->clients));
    for (size_t i = 0; i < n; i++) {
        cfg->nclients = i + 1;
        if (parse_client(json_object_array_get_idx(v, i), i,
                         &cfg->clients[i], file, err, errlen) != 0)
            return -1;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->clients[j].name, cfg->clients[i].name) == 0) {
                char *shown = text_escape(cfg->clients[i].name);
                text_error(err, errlen,
                           "%s: clients[%zu].name: \"%s\" is used twice", file,
                           i, shown);
                free(shown);
                return -1;
            }
            if (memcmp(cfg->clients[j].token_sha256,
                       cfg->clients[i].token_sha256, CONFIG_SHA256_LEN) == 0)
                return text_error(err, errlen,
                                  "%s: clients[%zu].token_sha256: "
                                  "same token as clients[%zu]",
                                  file, i, j);
        }
    }
    return 0;
}

/* ---- the walk ---- */

static const struct cfg_key *
find_key(const char *path)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strcmp(config_keys[i].name, path) == 0)
            return &config_keys[i];
    return NULL;
}

static int
is_section(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strncmp(config_keys[i].name, path, n) == 0 &&
            config_keys[i].name[n] == '.')
            return 1;
    return 0;
}

/* A digest has no null: *set says whether one was given. */
static const char *
parse_optional_sha256(json_object *v, unsigned char *out, int *set)
{
    if (v == NULL || json_object_is_type(v, json_type_null)) {
        *set = 0;
        return NULL;
    }
    const char *why = parse_sha256(v, out);
    *set = why == NULL;
    return why;
}

/* The type stores the value at the row's offset, then the row's check. */
static const char *
parse_leaf(const struct cfg_key *k, json_object *v, struct config *cfg)
{
    const char *why = NULL;
    switch (k->type) {
    case CFG_INT:
        why = parse_int(k, v, FIELD(cfg, k, long long));
        break;
    case CFG_NUM:
        why = parse_num(k, v, FIELD(cfg, k, double));
        break;
    case CFG_STR:
    case CFG_NSTR:
        why = parse_string(k, v, FIELD(cfg, k, char *));
        break;
    case CFG_SHA256:
        why = parse_optional_sha256(v, FIELD(cfg, k, unsigned char),
                                    AT(cfg, k->set_off, int));
        break;
    case CFG_ENUM:
        why = parse_enum(k, v, FIELD(cfg, k, int));
        break;
    case CFG_LISTEN:
    case CFG_CLIENTS:
        return NULL; /* handled by the caller: they report their own paths */
    }
    if (why == NULL && k->check != NULL)
        why = k->check(FIELD(cfg, k, void));
    return why;
}

/* "file: path: why", the path (input text) escaped. */
static int
fail_at(char *err, size_t errlen, const char *file, const char *path,
        const char *why)
{
    char *shown = text_escape(path);
    text_error(err, errlen, "%s: %s: %s", file, shown, why);
    free(shown);
    return -1;
}

static int walk(json_object *obj, const char *prefix, struct config *cfg,
                const char *file, char *err, size_t errlen);

static int
walk_member(const char *path, const char *key, json_object *val,
            struct config *cfg, const char *file, char *err, size_t errlen)
{
    if (strchr(key, '.') != NULL) /* paths are nested objects only */
        return fail_at(err, errlen, file, path,
                       "unknown key (write nested objects, not dotted names)");
    if (is_section(path)) {
        if (!json_object_is_type(val, json_type_object))
            return fail_at(err, errlen, file, path, "must be an object");
        return walk(val, path, cfg, file, err, errlen);
    }
    const struct cfg_key *k = find_key(path);
    if (k == NULL)
        return fail_at(err, errlen, file, path, "unknown key");
    if (k->type == CFG_CLIENTS)
        return parse_clients(val, cfg, file, err, errlen);
    if (k->type == CFG_LISTEN)
        return parse_listen(val, cfg, file, err, errlen);
    const char *why = parse_leaf(k, val, cfg);
    return why ? fail_at(err, errlen, file, path, why) : 0;
}

static int
walk(json_object *obj, const char *prefix, struct config *cfg,
     const char *file, char *err, size_t errlen)
{
    json_object_object_foreach(obj, key, val)
    {
        size_t n = strlen(prefix) + 1 + strlen(key) + 1;
        char *path = xmalloc(n);
        snprintf(path, n, "%s%s%s", prefix, *prefix ? "." : "", key);
        int rc = walk_member(path, key, val, cfg, file, err, errlen);
        free(path);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Past whitespace and comments from t[i]. */
static size_t
skip_blank(const char *t, size_t i)
{
    for (;;) {
        if (isspace((unsigned char)t[i])) {
            i++;
        } else if (t[i] == '/' && t[i + 1] == '/') {
            i += strcspn(t + i, "\n");
        } else if (t[i] == '/' && t[i + 1] == '*') {
            const char *end = strstr(t + i + 2, "*/");
            i = end ? (size_t)(end - t) + 2 : strlen(t);
        } else {
            return i;
        }
    }
}

/* json-c cuts an object key at an escaped NUL ("log\u0000x" reads as
 * "log"), so such a key would act as another one: find it in the text,
 * which json-c has accepted. Its offset, or (size_t)-1. */
static size_t
find_nul_key(const char *t)
{
    size_t i = skip_blank(t, 0);
    while (t[i] != '\0') {
        char q = t[i];
        if (q != '"' && q != '\'') {
            i = skip_blank(t, i + 1);
            continue;
        }
        size_t start = i;
        int nul = 0;
        for (i++; t[i] != '\0' && t[i] != q; i++) {
            if (t[i] == '\\' && t[i + 1] != '\0') {
                nul |= strncmp(t + i + 1, "u0000", 5) == 0;
                i++;
            }
        }
        if (t[i] == q)
            i++;
        i = skip_blank(t, i);
        if (nul && t[i] == ':')
            return start;
    }
    return (size_t)-1;
}

static int
offset_line(const char *text, size_t off)
{
    int line = 1;
    for (size_t i = 0; i < off && text[i]; i++)
        line += text[i] == '\n';
    return line;
}

int
config_parse(struct config *cfg, const char *text, const char *rawname,
             char *err, size_t errlen)
{
    int rc = -1;
    char *name = text_escape(rawname); /* a file name is input too */
    size_t nul_key;
    config_defaults(cfg);
    /* lax mode on purpose: operators may write comments (SPEC section 8) */
    json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        alloc_oom("json_tokener_new");
    size_t len = strlen(text);
    json_object *root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (root == NULL || jerr != json_tokener_success) {
        if (jerr == json_tokener_success || jerr == json_tokener_continue)
            text_error(err, errlen,
                       "%s: the file is not a complete JSON object", name);
        else
            text_error(err, errlen, "%s:%d: %s", name,
                       offset_line(text, json_tokener_get_parse_end(tok)),
                       json_tokener_error_desc(jerr));
        goto done;
    }
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
        if (!isspace((unsigned char)text[i])) {
            text_error(err, errlen, "%s:%d: unexpected text after the object",
                       name, offset_line(text, i));
            goto done;
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        text_error(err, errlen, "%s: the top level must be an object", name);
        goto done;
    }
    nul_key = find_nul_key(text);
    if (nul_key != (size_t)-1) {
        text_error(err, errlen, "%s:%d: an object key contains \\u0000 (NUL)",
                   name, offset_line(text, nul_key));
        goto done;
    }
    rc = walk(root, "", cfg, name, err, errlen);
done:
    free(name);
    json_object_put(root);
    json_tokener_free(tok);
    if (rc != 0)
        config_free(cfg);
    return rc;
}

FILE *
config_open(const char *path)
{
    /* O_NONBLOCK for the open only: a FIFO nobody writes to reads as
     * empty instead of stopping the event loop (SIGHUP), a pipe is still
     * read to its end */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    int fl = fcntl(fd, F_GETFL);
    FILE *f = NULL;
    if (fl >= 0 && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0)
        f = fdopen(fd, "rb");
    if (f == NULL) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

/* The whole of f, up to 16 MiB, as a string in *text (which the caller
 * frees, also on failure). NULL or the reason. */
static const char *
read_text(FILE *f, char **text)
{
    size_t cap = 4096, len = 0, n;
    char *t = xmalloc(cap);
    while ((n = fread(t + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            if (cap >= (1u << 24)) {
                *text = t;
                return "file too large";
            }
            cap *= 2;
            t = xrealloc(t, cap);
        }
    }
    t[len] = '\0';
    *text = t;
    if (ferror(f))
        return "read error";
    return strlen(t) != len ? "file contains a NUL byte" : NULL;
}

int
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    char *text = NULL, *shown;
    const char *why;
    FILE *f = config_open(path);
    if (f == NULL) {
        why = strerror(errno);
        goto fail;
    }
    why = read_text(f, &text);
    fclose(f);
    if (why != NULL)
        goto fail;
    int rc = config_parse(cfg, text, path, err, errlen);
    free(text);
    return rc;
fail:
    free(text);
    config_defaults(cfg); /* left empty, as config_parse() leaves it */
    config_free(cfg);
    shown = text_escape(path);
    text_error(err, errlen, "%s: %s", shown, why);
    free(shown);
    return -1;
}

/* ---- printing ---- */

static json_object *
print_digest(const unsigned char *d, int secret)
{
    char hex[2 * CONFIG_SHA256_LEN + 1];
    if (secret)
        return json_object_new_string("<redacted>");
    for (int i = 0; i < CONFIG_SHA256_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return json_object_new_string(hex);
}

static json_object *
print_listen(const struct config *cfg)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < cfg->nlisten; i++) {
        char buf[300];
        const char *h = cfg->listen[i].host;
        snprintf(buf, sizeof(buf), strchr(h, ':') ? "[%s]:%d" : "%s:%d", h,
                 cfg->listen[i].port);
        json_object_array_add(a, json_object_new_string(buf));
    }
    return a;
}

/* A secret clients row hides each token hash. */
static json_object *
print_clients(const struct config *cfg, int secret)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < cfg->nclients; i++) {
        const struct config_client *c = &cfg->clients[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(c->name));
        json_object_object_add(o, "token_sha256",
                               print_digest(c->token_sha256, secret));
        json_object *s;
        if (c->all_senders) {
            s = json_object_new_string("*");
        } else {
            s = json_object_new_array();
            for (size_t j = 0; j < c->nsenders; j++)
                json_object_array_add(s, json_object_new_int64(c->senders[j]));
        }
        json_object_object_add(o, "senders", s);
        json_object_array_add(a, o);
    }
    return a;
}

static json_object *
print_string(const struct cfg_key *k, const char *s)
{
    if (s == NULL)
        return NULL;
    if (k->flags & CFG_USERINFO) {
        char *shown = config_redacted_url(s);
        json_object *v = json_object_new_string(shown);
        free(shown);
        return v;
    }
    return json_object_new_string(s);
}

/* The value as the file would say it; NULL for JSON null. */
static json_object *
print_plain(const struct config *cfg, const struct cfg_key *k)
{
    switch (k->type) {
    case CFG_INT:
        return json_object_new_int64(*FIELD(cfg, k, const long long));
    case CFG_NUM:
        return json_object_new_double(*FIELD(cfg, k, const double));
    case CFG_STR:
    case CFG_NSTR:
        return print_string(k, *FIELD(cfg, k, char *const));
    case CFG_SHA256:
        return *AT(cfg, k->set_off, const int)
                   ? print_digest(FIELD(cfg, k, const unsigned char), 0)
                   : NULL;
    case CFG_ENUM:
        return json_object_new_string(k->names[*FIELD(cfg, k, const int)]);
    case CFG_LISTEN:
        return print_listen(cfg);
    case CFG_CLIENTS:
        return print_clients(cfg, (k->flags & CFG_SECRET) != 0);
    }
    return NULL;
}

/* What config_print() shows of row k: a secret (but the clients array,
 * which hides only its tokens) as "<redacted>", null staying null. */
static json_object *
print_value(const struct config *cfg, const struct cfg_key *k)
{
    json_object *v = print_plain(cfg, k);
    if (v != NULL && (k->flags & CFG_SECRET) && k->type != CFG_CLIENTS) {
        json_object_put(v);
        v = json_object_new_string("<redacted>");
    }
    return v;
}

/* Adds v under the dotted path, creating section objects on the way. */
static void
put_path(json_object *root, const char *path, json_object *v)
{
    const char *dot = strchr(path, '.');
    if (dot == NULL) {
        json_object_object_add(root, path, v);
        return;
    }
    char sect[64];
    snprintf(sect, sizeof(sect), "%.*s", (int)(dot - path), path);
    json_object *child;
    if (!json_object_object_get_ex(root, sect, &child)) {
        child = json_object_new_object();
        json_object_object_add(root, sect, child);
    }
    put_path(child, dot + 1, v);
}

void
config_print(const struct config *cfg, FILE *out)
{
    json_object *root = json_object_new_object();
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        put_path(root, config_keys[i].name,
                 print_value(cfg, &config_keys[i]));
    fprintf(out, "%s\n",
            json_object_to_json_string_ext(
                root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                          JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
}

static int
host_is_loopback(const char *h)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(h, "localhost") == 0) /* names are case-insensitive */
        return 1;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, h, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

int
config_all_loopback(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->nlisten; i++)
        if (!host_is_loopback(cfg->listen[i].host))
            return 0;
    return 1;
}

/* ---- the upstream URL ---- */

/* The authority of url ("user@host:port" in scheme://user@host:port/...):
 * its start in *auth and its length; 0 when url has no "://". */
static int
url_authority(const char *url, const char **auth, size_t *len)
{
    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return 0;
    *auth = sep + 3;
    *len = strcspn(*auth, "/?#");
    return 1;
}

/* The last '@' in the authority, or NULL: whatever a URL parser makes of
 * an unencoded '@' in a password, everything before this one is hidden. */
static const char *
userinfo_end(const char *auth, size_t len)
{
    for (size_t i = len; i > 0; i--)
        if (auth[i - 1] == '@')
            return auth + i - 1;
    return NULL;
}

char *
config_redacted_url(const char *url)
{
    static const char mark[] = "<redacted>";
    const char *auth, *at;
    size_t len;
    if (!url_authority(url, &auth, &len) ||
        (at = userinfo_end(auth, len)) == NULL)
        return xstrdup(url);
    size_t head = (size_t)(auth - url), tail = strlen(at);
    char *out = xmalloc(head + sizeof(mark) - 1 + tail + 1);
    memcpy(out, url, head);
    memcpy(out + head, mark, sizeof(mark) - 1);
    memcpy(out + head + sizeof(mark) - 1, at, tail + 1);
    return out;
}

int
config_url_cleartext_remote(const char *url)
{
    const char *auth, *at, *host;
    size_t len, hlen;
    char buf[256];
    if (strncasecmp(url, "http://", 7) != 0 || !url_authority(url, &auth, &len))
        return 0;
    if ((at = userinfo_end(auth, len)) != NULL) {
        len -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    if (len > 0 && auth[0] == '[') {
        const char *close = memchr(auth, ']', len);
        if (close == NULL)
            return 1;
        host = auth + 1;
        hlen = (size_t)(close - host);
    } else {
        const char *colon = memchr(auth, ':', len);
        host = auth;
        hlen = colon ? (size_t)(colon - auth) : len;
    }
    if (hlen == 0 || hlen >= sizeof(buf))
        return 1;
    memcpy(buf, host, hlen);
    buf[hlen] = '\0';
    return !host_is_loopback(buf);
}

/* ---- reload ---- */

static int
listen_equal(const struct config *a, const struct config *b)
{
    if (a->nlisten != b->nlisten)
        return 0;
    for (size_t i = 0; i < a->nlisten; i++)
        if (a->listen[i].port != b->listen[i].port ||
            strcmp(a->listen[i].host, b->listen[i].host) != 0)
            return 0;
    return 1;
}

static int
str_equal(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void
note(char *changed, size_t len, const char *name)
{
    size_t used = strlen(changed);
    snprintf(changed + used, len - used, "%s%s", used ? ", " : "", name);
}

/* Gives row k of next its value in running; 1 if that changed it. The
 * types a CFG_RESTART row may have (the table's test covers every row). */
static int
keep_row(const struct cfg_key *k, struct config *next,
         const struct config *running)
{
    switch (k->type) {
    case CFG_INT: {
        long long *n = FIELD(next, k, long long);
        long long r = *FIELD(running, k, const long long);
        int changed = *n != r;
        *n = r;
        return changed;
    }
    case CFG_STR:
    case CFG_NSTR: {
        char **n = FIELD(next, k, char *);
        const char *r = *FIELD(running, k, char *const);
        if (str_equal(*n, r))
            return 0;
        free(*n);
        *n = r ? xstrdup(r) : NULL;
        return 1;
    }
    case CFG_ENUM: {
        int *n = FIELD(next, k, int);
        int r = *FIELD(running, k, const int);
        int changed = *n != r;
        *n = r;
        return changed;
    }
    case CFG_LISTEN:
        if (listen_equal(next, running))
            return 0;
        free_listen(next);
        next->listen = xcalloc(running->nlisten, sizeof(*next->listen));
        for (size_t i = 0; i < running->nlisten; i++) {
            next->listen[i].host = xstrdup(running->listen[i].host);
            next->listen[i].port = running->listen[i].port;
        }
        next->nlisten = running->nlisten;
        return 1;
    default:
        return 0;
    }
}

int
config_keep_restart_keys(struct config *next, const struct config *running,
                         char *changed, size_t changedlen)
{
    int n = 0;
    changed[0] = '\0';
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct cfg_key *k = &config_keys[i];
        if ((k->flags & CFG_RESTART) && keep_row(k, next, running)) {
            note(changed, changedlen, k->name);
            n++;
        }
    }
    return n;
}

void
config_refusal_trust(const struct config *cfg, struct refusal_trust *t)
{
    t->ms[REFUSAL_SENDER_OFFLINE] = cfg->refusal_offline_s * 1000;
    t->ms[REFUSAL_SENDER_NOT_FOUND] = cfg->refusal_not_found_s * 1000;
    t->ms[REFUSAL_BALANCE] = cfg->refusal_balance_s * 1000;
}
