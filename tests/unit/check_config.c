/* check_config.c - unit tests for config.c (SPEC section 8).
 *
 * Pure: no sockets, no sleeping (but for the bounded wait on a child that
 * must not block, in the FIFO test). Files live in /tmp (mkstemp) and are
 * removed. Every successful parse is released with config_free(); the
 * suite runs clean under AddressSanitizer and valgrind with CK_FORK=no. */
#include "unit.h"
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "secret.h"

#define NAME "t.json"

/* 64-hex-digit SHA-256 values used as token hashes */
#define HEX_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define HEX_C "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

#define KEY_ENV "WAGATE_CHECK_API_KEY"

static struct config cfg;
static char err[1024];

/* ---- helpers ---- */

static int
parse(const char *text)
{
    memset(err, 0, sizeof(err));
    return config_parse(&cfg, text, NAME, err, sizeof(err));
}

/* text must parse; the caller later calls config_free(&cfg). */
static void
parse_ok(const char *text)
{
    int rc = parse(text);
    ck_assert_msg(rc == 0, "expected %s to parse, got: %s", text, err);
}

/* {"a": {"b": {"c": value}}} for "a.b.c", {"a": value} for "a". */
static void
nested(char *buf, size_t n, const char *key, const char *value)
{
    size_t used = 0, depth = 0;
    const char *p = key;
    for (;;) {
        size_t len = strcspn(p, ".");
        used += (size_t)snprintf(buf + used, n - used, "{\"%.*s\": ",
                                 (int)len, p);
        ck_assert_uint_lt(used, n);
        depth++;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    used += (size_t)snprintf(buf + used, n - used, "%s", value);
    while (depth-- > 0 && used < n)
        used += (size_t)snprintf(buf + used, n - used, "}");
    ck_assert_uint_lt(used, n);
}

/* cfg must be left empty after a failed parse (config.h contract). */
static void
assert_left_empty(void)
{
    ck_assert_ptr_null(cfg.listen);
    ck_assert_uint_eq(cfg.nlisten, 0);
    ck_assert_ptr_null(cfg.upstream_base_url);
    ck_assert_ptr_null(cfg.api_key_env);
    ck_assert_ptr_null(cfg.api_key_file);
    ck_assert_ptr_null(cfg.ca_file);
    ck_assert_ptr_null(cfg.clients);
    ck_assert_uint_eq(cfg.nclients, 0);
}

/* msg is one line of printable text: no C0 control byte, no DEL, no C1
 * control (U+0080..U+009F as UTF-8), no invalid UTF-8. */
static void
assert_printable_line(const char *msg)
{
    const unsigned char *p = (const unsigned char *)msg;
    while (*p) {
        unsigned char c = *p;
        ck_assert_msg(c >= 0x20 && c != 0x7f, "byte 0x%02x in \"%s\"", c, msg);
        size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        ck_assert_msg(c < 0x80 || c >= 0xc2, "bad lead byte in \"%s\"", msg);
        for (size_t i = 1; i < len; i++)
            ck_assert_msg((p[i] & 0xc0) == 0x80, "bad UTF-8 in \"%s\"", msg);
        ck_assert_msg(!(c == 0xc2 && p[1] < 0xa0), "C1 control in \"%s\"", msg);
        p += len;
    }
}

/* text must be rejected with a message containing NAME and each of the
 * (up to two, NULL = none) expected fragments. */
static void
expect_reject(const char *text, const char *want1, const char *want2)
{
    int rc = parse(text);
    if (rc == 0) {
        config_free(&cfg); /* no leak when this assertion fails */
        ck_abort_msg("expected %s to be rejected", text);
    }
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(strstr(err, NAME) != NULL, "no file name in \"%s\"", err);
    if (want1 != NULL)
        ck_assert_msg(strstr(err, want1) != NULL,
                      "\"%s\" not in \"%s\" (input %s)", want1, err, text);
    if (want2 != NULL)
        ck_assert_msg(strstr(err, want2) != NULL,
                      "\"%s\" not in \"%s\" (input %s)", want2, err, text);
    ck_assert_msg(strchr(err, '\n') == NULL, "message not one line: %s", err);
    assert_printable_line(err);
    assert_left_empty();
    config_free(&cfg); /* already empty: must be harmless */
}

static int
all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

static void
hex_to_bytes(const char *hex, unsigned char out[CONFIG_SHA256_LEN])
{
    for (int i = 0; i < CONFIG_SHA256_LEN; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
}

/* Writes content to a new /tmp file; returns its path (static buffer
 * owned by the caller's copy). */
static void
write_temp(char path[64], const char *content, size_t len)
{
    snprintf(path, 64, "/tmp/wagate-check-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, content, len), (ssize_t)len);
    ck_assert_int_eq(close(fd), 0);
}

/* config_print of cfg into a heap string (caller frees). */
static char *
print_to_string(void)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    config_print(&cfg, f);
    long n = ftell(f);
    ck_assert_int_gt(n, 0);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* ---- defaults ---- */

static void
assert_defaults(const struct config *c)
{
    ck_assert_uint_eq(c->nlisten, 1);
    ck_assert_ptr_nonnull(c->listen);
    ck_assert_str_eq(c->listen[0].host, "127.0.0.1");
    ck_assert_int_eq(c->listen[0].port, 8080);
    ck_assert_str_eq(c->upstream_base_url, "https://app.autocalls.ai");
    ck_assert_str_eq(c->api_key_env, "AUTOCALLS_API_KEY");
    ck_assert_ptr_null(c->api_key_file);
    ck_assert_ptr_null(c->ca_file);
    ck_assert_int_eq(c->connect_timeout_ms, 3000);
    ck_assert_int_eq(c->timeout_ms, 30000);
    ck_assert_int_eq(c->upstream_max_connections, 16);
    ck_assert_double_eq(c->rate_limit_rps, 5.0);
    ck_assert_int_eq(c->rate_limit_burst, 1);
    ck_assert_double_eq(c->read_rate_limit_rps, 0.0);
    ck_assert_int_eq(c->max_queue_ms, 10000);
    ck_assert_int_eq(c->cache_max_entries, 1000000);
    ck_assert_int_eq(c->cache_recheck_after_s, 300);
    ck_assert_int_eq(c->idem_ttl_s, 86400);
    ck_assert_int_eq(c->idem_max_entries, 1000000);
    ck_assert_int_eq(c->max_body_bytes, 65536);
    ck_assert_int_eq(c->max_message_chars, 4096);
    ck_assert_int_eq(c->client_timeout_ms, 15000);
    ck_assert_int_eq(c->max_connections, 10000);
    ck_assert_uint_eq(c->nclients, 0);
    ck_assert_int_eq(c->admin_token_set, 0);
    ck_assert(all_zero(c->admin_token_sha256, CONFIG_SHA256_LEN));
    ck_assert_int_eq(c->log_level, LOG_INFO);
    ck_assert_int_eq(c->log_format, LOG_FORMAT_JSON);
    ck_assert_int_eq(c->drain_timeout_ms, 10000);
    ck_assert_int_eq(c->refusal_offline_s, 30);
    ck_assert_int_eq(c->refusal_not_found_s, 300);
    ck_assert_int_eq(c->refusal_balance_s, 10);
    struct refusal_trust t;
    config_refusal_trust(c, &t);
    ck_assert_int_eq(t.ms[REFUSAL_SENDER_OFFLINE], 30000);
    ck_assert_int_eq(t.ms[REFUSAL_SENDER_NOT_FOUND], 300000);
    ck_assert_int_eq(t.ms[REFUSAL_BALANCE], 10000);
    ck_assert_int_eq(c->max_pause_ms, 60000);
    ck_assert_ptr_null(c->state_file);
    ck_assert_int_eq(c->state_backend, CONFIG_BACKEND_MEMORY);
    ck_assert_str_eq(c->redis_url, "redis://127.0.0.1:6379/0");
    ck_assert_ptr_null(c->redis_password_file);
    ck_assert_str_eq(c->redis_prefix, "wagate:");
    ck_assert_int_eq(c->redis_timeout_ms, 250);
    ck_assert_ptr_null(c->state_account);
    ck_assert_int_eq(c->state_instances, 1);
}

START_TEST(test_defaults)
{
    memset(&cfg, 0x5a, sizeof(cfg)); /* must not need initialising */
    config_defaults(&cfg);
    assert_defaults(&cfg);
    ck_assert_ptr_null(cfg.clients);
    config_free(&cfg);
    ck_assert_ptr_null(cfg.listen);
    ck_assert_ptr_null(cfg.upstream_base_url);
    config_free(&cfg); /* twice is harmless */
    config_free(NULL);
}
END_TEST

START_TEST(test_empty_object_is_defaults)
{
    parse_ok("{}");
    assert_defaults(&cfg);
    config_free(&cfg);
    parse_ok("  \n{ }\n\n");
    assert_defaults(&cfg);
    config_free(&cfg);
    parse_ok("{\"upstream\": {}, \"log\": {}, \"limits\": {}}");
    assert_defaults(&cfg);
    config_free(&cfg);
}
END_TEST

/* ---- every key set ---- */

static const char full_config[] =
    "// wagate test configuration\n"
    "{\n"
    "  /* two listeners */\n"
    "  \"listen\": [\"10.1.2.3:9000\", \"[::1]:9001\"],\n"
    "  \"upstream\": {\n"
    "    \"base_url\": \"http://sandbox.local:8081/v1/\", // trailing /\n"
    "    \"api_key_env\": \"MY_KEY_VAR\",\n"
    "    \"api_key_file\": \"/etc/wagate/key\",\n"
    "    \"ca_file\": \"/etc/ssl/ca.pem\",\n"
    "    \"connect_timeout_ms\": 1500,\n"
    "    \"timeout_ms\": 20000,\n"
    "    \"max_connections\": 32,\n"
    "    \"rate_limit_rps\": 2.5,\n"
    "    \"rate_limit_burst\": 3,\n"
    "    \"read_rate_limit_rps\": 7,\n"
    "    \"max_queue_ms\": 5000\n"
    "  },\n"
    "  \"session_cache\": {\"max_entries\": 5000, \"recheck_after_s\": 60},\n"
    "  \"idempotency\": {\"ttl_s\": 3600, \"max_entries\": 2000},\n"
    "  \"limits\": {\n"
    "    \"max_body_bytes\": 131072, \"max_message_chars\": 2048,\n"
    "    \"client_timeout_ms\": 5000, \"max_connections\": 500\n"
    "  },\n"
    "  \"clients\": [\n"
    "    {\"name\": \"billing\", \"token_sha256\": \"" HEX_A "\",\n"
    "     \"senders\": [12, 34]},\n"
    "    {\"name\": \"ops\", \"token_sha256\": \"" HEX_B "\",\n"
    "     \"senders\": \"*\"}\n"
    "  ],\n"
    "  \"admin\": {\"token_sha256\": \"" HEX_C "\"},\n"
    "  \"log\": {\"level\": \"debug\", \"format\": \"text\"},\n"
    "  /* multi\n     line */\n"
    "  \"drain_timeout_ms\": 2500\n"
    "}\n";

static void
assert_full(const struct config *c)
{
    unsigned char h[CONFIG_SHA256_LEN];
    ck_assert_uint_eq(c->nlisten, 2);
    ck_assert_str_eq(c->listen[0].host, "10.1.2.3");
    ck_assert_int_eq(c->listen[0].port, 9000);
    ck_assert_str_eq(c->listen[1].host, "::1");
    ck_assert_int_eq(c->listen[1].port, 9001);
    ck_assert_str_eq(c->upstream_base_url, "http://sandbox.local:8081/v1");
    ck_assert_str_eq(c->api_key_env, "MY_KEY_VAR");
    ck_assert_str_eq(c->api_key_file, "/etc/wagate/key");
    ck_assert_str_eq(c->ca_file, "/etc/ssl/ca.pem");
    ck_assert_int_eq(c->connect_timeout_ms, 1500);
    ck_assert_int_eq(c->timeout_ms, 20000);
    ck_assert_int_eq(c->upstream_max_connections, 32);
    ck_assert_double_eq(c->rate_limit_rps, 2.5);
    ck_assert_int_eq(c->rate_limit_burst, 3);
    ck_assert_double_eq(c->read_rate_limit_rps, 7.0);
    ck_assert_int_eq(c->max_queue_ms, 5000);
    ck_assert_int_eq(c->cache_max_entries, 5000);
    ck_assert_int_eq(c->cache_recheck_after_s, 60);
    ck_assert_int_eq(c->idem_ttl_s, 3600);
    ck_assert_int_eq(c->idem_max_entries, 2000);
    ck_assert_int_eq(c->max_body_bytes, 131072);
    ck_assert_int_eq(c->max_message_chars, 2048);
    ck_assert_int_eq(c->client_timeout_ms, 5000);
    ck_assert_int_eq(c->max_connections, 500);
    ck_assert_uint_eq(c->nclients, 2);
    ck_assert_str_eq(c->clients[0].name, "billing");
    hex_to_bytes(HEX_A, h);
    ck_assert_mem_eq(c->clients[0].token_sha256, h, CONFIG_SHA256_LEN);
    ck_assert_int_eq(c->clients[0].all_senders, 0);
    ck_assert_uint_eq(c->clients[0].nsenders, 2);
    ck_assert_int_eq(c->clients[0].senders[0], 12);
    ck_assert_int_eq(c->clients[0].senders[1], 34);
    ck_assert_str_eq(c->clients[1].name, "ops");
    hex_to_bytes(HEX_B, h);
    ck_assert_mem_eq(c->clients[1].token_sha256, h, CONFIG_SHA256_LEN);
    ck_assert_int_eq(c->clients[1].all_senders, 1);
    ck_assert_uint_eq(c->clients[1].nsenders, 0);
    ck_assert_int_eq(c->admin_token_set, 1);
    hex_to_bytes(HEX_C, h);
    ck_assert_mem_eq(c->admin_token_sha256, h, CONFIG_SHA256_LEN);
    ck_assert_int_eq(c->log_level, LOG_DEBUG);
    ck_assert_int_eq(c->log_format, LOG_FORMAT_TEXT);
    ck_assert_int_eq(c->drain_timeout_ms, 2500);
}

START_TEST(test_every_key_non_default)
{
    parse_ok(full_config);
    assert_full(&cfg);
    config_free(&cfg);
}
END_TEST

START_TEST(test_load_file)
{
    char path[64];
    write_temp(path, full_config, strlen(full_config));
    int rc = config_load(&cfg, path, err, sizeof(err));
    ck_assert_msg(rc == 0, "config_load: %s", err);
    assert_full(&cfg);
    config_free(&cfg);

    /* errors name the path */
    static const char bad[] = "{\"upstream\": {\"timeout_ms\": 0}}";
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(bad, f);
    fclose(f);
    rc = config_load(&cfg, path, err, sizeof(err));
    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "upstream.timeout_ms"));
    assert_left_empty();

    ck_assert_int_eq(unlink(path), 0);
    rc = config_load(&cfg, path, err, sizeof(err));
    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_nonnull(strstr(err, path));
    assert_left_empty();
}
END_TEST

START_TEST(test_comments)
{
    parse_ok("// line comment\n{ // after brace\n"
             "  \"log\": /* inline */ {\"level\": \"warn\"} /* x */\n}");
    ck_assert_int_eq(cfg.log_level, LOG_WARN);
    config_free(&cfg);
    parse_ok("/* block\n * comment\n */{\"drain_timeout_ms\": 5}");
    ck_assert_int_eq(cfg.drain_timeout_ms, 5);
    config_free(&cfg);
    /* comment syntax inside a string is data, not a comment */
    parse_ok("{\"upstream\": {\"base_url\": \"http://h/*x*/\"}}");
    ck_assert_str_eq(cfg.upstream_base_url, "http://h/*x*");
    config_free(&cfg);
}
END_TEST

/* SPEC section 8 allows comments anywhere, also after the object. */
START_TEST(test_comment_after_object)
{
    parse_ok("{\"drain_timeout_ms\": 7}\n// end of file\n");
    ck_assert_int_eq(cfg.drain_timeout_ms, 7);
    config_free(&cfg);
    parse_ok("{\"drain_timeout_ms\": 8} /* done */\n");
    ck_assert_int_eq(cfg.drain_timeout_ms, 8);
    config_free(&cfg);
}
END_TEST

/* ---- per-key bad values: wrong type and out of range ---- */

#define BIG "1000000000000"

static const struct {
    const char *key;
    const char *value;
} bad_values[] = {
    {"listen", "\"127.0.0.1:8080\""},
    {"listen", "[]"},
    {"listen", "[\"127.0.0.1:65536\"]"},
    {"listen", "[5]"},
    {"upstream.base_url", "5"},
    {"upstream.base_url", "null"},
    {"upstream.base_url", "\"\""},
    {"upstream.base_url", "\"ftp://example.com\""},
    {"upstream.base_url", "\"app.autocalls.ai\""},
    {"upstream.api_key_env", "true"},
    {"upstream.api_key_env", "\"\""},
    {"upstream.api_key_env", "\"MY-KEY\""},
    {"upstream.api_key_env", "\"MY KEY\""},
    {"upstream.api_key_env", "\"$KEY\""},
    {"upstream.api_key_file", "5"},
    {"upstream.api_key_file", "\"\""},
    {"upstream.ca_file", "[]"},
    {"upstream.ca_file", "\"\""},
    {"upstream.connect_timeout_ms", "\"3000\""},
    {"upstream.connect_timeout_ms", "1.5"},
    {"upstream.connect_timeout_ms", "0"},
    {"upstream.connect_timeout_ms", "-1"},
    {"upstream.connect_timeout_ms", BIG},
    {"upstream.timeout_ms", "\"x\""},
    {"upstream.timeout_ms", "0"},
    {"upstream.timeout_ms", BIG},
    {"upstream.max_connections", "true"},
    {"upstream.max_connections", "0"},
    {"upstream.max_connections", BIG},
    {"upstream.rate_limit_rps", "\"5\""},
    {"upstream.rate_limit_rps", "-1"},
    {"upstream.rate_limit_rps", "1e12"},
    {"upstream.rate_limit_burst", "1.5"},
    {"upstream.rate_limit_burst", "0"},
    {"upstream.rate_limit_burst", BIG},
    {"upstream.read_rate_limit_rps", "\"0\""},
    {"upstream.read_rate_limit_rps", "-0.5"},
    {"upstream.read_rate_limit_rps", "1e12"},
    {"upstream.max_queue_ms", "null"},
    {"upstream.max_queue_ms", "-1"},
    {"upstream.max_queue_ms", BIG},
    {"session_cache.max_entries", "{}"},
    {"session_cache.max_entries", "0"},
    {"session_cache.max_entries", BIG},
    {"session_cache.recheck_after_s", "\"300\""},
    {"session_cache.recheck_after_s", "-1"},
    {"session_cache.recheck_after_s", BIG},
    {"idempotency.ttl_s", "[1]"},
    {"idempotency.ttl_s", "0"},
    {"idempotency.ttl_s", BIG},
    {"idempotency.max_entries", "\"1\""},
    {"idempotency.max_entries", "0"},
    {"idempotency.max_entries", BIG},
    {"limits.max_body_bytes", "\"65536\""},
    {"limits.max_body_bytes", "0"},
    {"limits.max_body_bytes", BIG},
    {"limits.max_message_chars", "4096.5"},
    {"limits.max_message_chars", "0"},
    {"limits.max_message_chars", BIG},
    {"limits.client_timeout_ms", "false"},
    {"limits.client_timeout_ms", "0"},
    {"limits.client_timeout_ms", BIG},
    {"limits.max_connections", "\"10\""},
    {"limits.max_connections", "0"},
    {"limits.max_connections", BIG},
    {"clients", "{}"},
    {"clients", "\"*\""},
    {"clients", "[5]"},
    {"clients",
     "[{\"name\": \"\", \"token_sha256\": \"" HEX_A "\", \"senders\": \"*\"}]"},
    {"admin.token_sha256", "5"},
    {"admin.token_sha256", "\"abc\""},
    {"admin.token_sha256", "\"" HEX_A "0\""},
    {"log.level", "3"},
    {"log.level", "\"verbose\""},
    {"log.level", "\"INFO\""},
    {"log.format", "true"},
    {"log.format", "\"xml\""},
    {"drain_timeout_ms", "\"10\""},
    {"drain_timeout_ms", "-1"},
    {"drain_timeout_ms", BIG},
    {"refusals.sender_offline_s", "-1"},
    {"refusals.sender_offline_s", "604801"},
    {"refusals.sender_offline_s", "1.5"},
    {"refusals.sender_not_found_s", "\"300\""},
    {"refusals.sender_not_found_s", "null"},
    {"refusals.balance_s", "true"},
    {"refusals.balance_s", BIG},
    {"upstream.max_pause_ms", "-1"},
    {"upstream.max_pause_ms", "1.5"},
    {"upstream.max_pause_ms", BIG},
    {"state.file", "7"},
    {"state.file", "\"\""},
    {"state.backend", "\"Redis\""},
    {"state.backend", "\"file\""},
    {"state.backend", "null"},
    {"state.backend", "1"},
    {"state.redis.url", "null"},
    {"state.redis.url", "\"\""},
    {"state.redis.url", "\"http://127.0.0.1:6379\""},
    {"state.redis.url", "\"127.0.0.1:6379\""},
    {"state.redis.url", "\"redis://:secret@127.0.0.1:6379/0\""},
    {"state.redis.url", "\"redis://user:secret@h\""},
    {"state.redis.url", "\"redis://\""},
    {"state.redis.url", "\"unix:\""},
    {"state.redis.url", "\"redis://h /0\""},
    {"state.redis.url", "\"redis://redis.internal:6379/0\""},
    {"state.redis.url", "\"redis://127.0.0.1:0/0\""},
    {"state.redis.url", "\"redis://127.0.0.1/x\""},
    {"state.redis.password_file", "\"\""},
    {"state.redis.password_file", "5"},
    {"state.redis.password_file", "\"/pw\\n\""},
    {"state.redis.prefix", "null"},
    {"state.redis.prefix", "\"\""},
    {"state.redis.prefix", "\"wa{gate}:\""},
    {"state.redis.prefix", "\"wa gate:\""},
    {"state.redis.timeout_ms", "0"},
    {"state.redis.timeout_ms", "-5"},
    {"state.redis.timeout_ms", "\"250\""},
    {"state.redis.timeout_ms", "2.5"},
    {"state.redis.timeout_ms", BIG},
    {"state.account", "\"\""},
    {"state.account", "7"},
    {"state.account", "\"team {a}\""},
    {"state.account", "\"team{a\""},
    {"state.account", "\"team}\""},
    {"state.account", "\"team a\""},
    {"state.account", "\"team\\ta\""},
    {"state.account", "\"caf\\u00e9\""},
    {"state.account",
     "\"a123456789b123456789c123456789d123456789e123456789f123456789g1234\""},
    {"state.instances", "0"},
    {"state.instances", "-1"},
    {"state.instances", "1.5"},
    {"state.instances", "\"3\""},
    {"state.instances", BIG},
    /* strings with a NUL, a control byte or invalid UTF-8 */
    {"listen", "[\"127.0.0.1:80\\u0000junk\"]"},
    {"upstream.base_url", "\"http://h/a b\""},
    {"upstream.base_url", "\"http://h/\\n\""},
    {"upstream.base_url", "\"http://h/\\u007f\""},
    {"upstream.base_url", "\"http://h/caf\\u00e9\""},
    {"upstream.base_url", "\"http://h\\u0000/\""},
    {"upstream.api_key_file", "\"/k\\n\""},
    {"upstream.api_key_file", "\"/k\xff\""},
    {"upstream.ca_file", "\"/ca\\u001b[0m\""},
    {"upstream.ca_file", "\"/ca\\u0085\""},
    {"state.file", "\"/s\\t\""},
    {"state.file", "\"/s\xc0\xaf\""},
    {"log.level", "\"info\\u0000x\""},
    {"log.format", "\"json\\u0000\""},
    {"clients", "[{\"name\": \"a\", \"token_sha256\": \"" HEX_A
                "\", \"senders\": \"*\\u0000x\"}]"},
};
#define NBAD ((int)(sizeof(bad_values) / sizeof(bad_values[0])))

/* every key of SPEC section 8 */
static const char *const all_keys[] = {
    "listen",
    "upstream.base_url",
    "upstream.api_key_env",
    "upstream.api_key_file",
    "upstream.ca_file",
    "upstream.connect_timeout_ms",
    "upstream.timeout_ms",
    "upstream.max_connections",
    "upstream.rate_limit_rps",
    "upstream.rate_limit_burst",
    "upstream.read_rate_limit_rps",
    "upstream.max_queue_ms",
    "upstream.max_pause_ms",
    "session_cache.max_entries",
    "session_cache.recheck_after_s",
    "idempotency.ttl_s",
    "idempotency.max_entries",
    "limits.max_body_bytes",
    "limits.max_message_chars",
    "limits.client_timeout_ms",
    "limits.max_connections",
    "clients",
    "admin.token_sha256",
    "log.level",
    "log.format",
    "drain_timeout_ms",
    "refusals.sender_offline_s",
    "refusals.sender_not_found_s",
    "refusals.balance_s",
    "state.backend",
    "state.file",
    "state.redis.url",
    "state.redis.password_file",
    "state.redis.prefix",
    "state.redis.timeout_ms",
    "state.account",
    "state.instances",
};
#define NKEYS ((int)(sizeof(all_keys) / sizeof(all_keys[0])))

START_TEST(test_bad_value)
{
    char text[512];
    nested(text, sizeof(text), bad_values[_i].key, bad_values[_i].value);
    expect_reject(text, bad_values[_i].key, NULL);
}
END_TEST

START_TEST(test_bad_table_covers_every_key)
{
    for (int k = 0; k < NKEYS; k++) {
        int n = 0;
        for (int i = 0; i < NBAD; i++)
            n += strcmp(bad_values[i].key, all_keys[k]) == 0;
        ck_assert_msg(n >= 2, "key %s has %d bad values", all_keys[k], n);
    }
    /* and every key of the table is a key that config accepts */
    for (int i = 0; i < NBAD; i++) {
        int known = 0;
        for (int k = 0; k < NKEYS; k++)
            known |= strcmp(bad_values[i].key, all_keys[k]) == 0;
        ck_assert_msg(known, "%s", bad_values[i].key);
    }
}
END_TEST

/* values that must be accepted for each key (sanity for the table above) */
static const struct {
    const char *key;
    const char *value;
} good_values[] = {
    {"listen", "[\"127.0.0.1:1\"]"},
    {"upstream.base_url", "\"http://127.0.0.1:9\""},
    {"upstream.api_key_env", "\"_KEY_2\""},
    {"upstream.api_key_file", "null"},
    {"upstream.api_key_file", "\"/run/secrets/key\""},
    {"upstream.ca_file", "null"},
    {"upstream.connect_timeout_ms", "1"},
    {"upstream.timeout_ms", "60000"},
    {"upstream.max_connections", "1"},
    {"upstream.rate_limit_rps", "0.5"},
    {"upstream.rate_limit_rps", "20"},
    {"upstream.rate_limit_burst", "10"},
    {"upstream.read_rate_limit_rps", "0"},
    {"upstream.read_rate_limit_rps", "2.5"},
    {"upstream.max_queue_ms", "0"},
    {"session_cache.max_entries", "1"},
    {"session_cache.recheck_after_s", "0"},
    {"idempotency.ttl_s", "1"},
    {"idempotency.max_entries", "1"},
    {"limits.max_body_bytes", "65536"},
    {"limits.max_message_chars", "1"},
    {"limits.client_timeout_ms", "1000"},
    {"limits.max_connections", "1"},
    {"clients", "[]"},
    {"admin.token_sha256", "null"},
    {"log.level", "\"error\""},
    {"log.format", "\"json\""},
    {"drain_timeout_ms", "0"},
    {"refusals.sender_offline_s", "0"},
    {"refusals.sender_not_found_s", "604800"},
    {"refusals.balance_s", "1"},
    {"upstream.max_pause_ms", "0"},
    {"upstream.max_pause_ms", "3600000"},
    {"state.file", "null"},
    {"state.file", "\"/var/lib/wagate/state\""},
    /* paths are text: spaces, quotes, backslashes and UTF-8 are fine */
    {"upstream.api_key_file", "\"/etc/wagate/cl\\u00e9 secr\\u00e8te\""},
    {"upstream.ca_file", "\"/etc/ssl/a \\\"b\\\" \\\\ c.pem\""},
    {"state.file", "\"/var/lib/wagate/\xc3\xa9t\xc3\xa9\""},
    {"upstream.base_url", "\"https://u:p@h.example:1/a%20b?x=1&y=~\""},
    {"state.backend", "\"memory\""},
    {"state.backend", "\"redis\""},
    {"state.redis.url", "\"redis://127.0.0.1\""},
    {"state.redis.url", "\"redis://10.0.0.5:6380/3\""},
    {"state.redis.url", "\"redis://[::1]:6379\""},
    {"state.redis.url", "\"redis://localhost/2\""},
    {"state.redis.url", "\"unix:/run/redis/redis.sock\""},
    {"state.redis.password_file", "null"},
    {"state.redis.password_file", "\"/run/credentials/wagate/redis\""},
    {"state.redis.prefix", "\"wagate:prod:\""},
    {"state.redis.timeout_ms", "1"},
    {"state.redis.timeout_ms", "60000"},
    {"state.account", "null"},
    {"state.account", "\"team-a\""},
    {"state.account",
     "\"a123456789b123456789c123456789d123456789e123456789f123456789g123\""},
    {"state.instances", "1"},
    {"state.instances", "1000"},
};
#define NGOOD ((int)(sizeof(good_values) / sizeof(good_values[0])))

START_TEST(test_good_value)
{
    char text[512];
    nested(text, sizeof(text), good_values[_i].key, good_values[_i].value);
    parse_ok(text);
    config_free(&cfg);
}
END_TEST

/* ---- structure errors ---- */

START_TEST(test_unknown_keys)
{
    expect_reject("{\"bogus\": 1}", "bogus", "unknown");
    expect_reject("{\"upstream\": {\"bogus\": 1}}", "upstream.bogus",
                  "unknown");
    expect_reject("{\"log\": {\"colour\": \"red\"}}", "log.colour", NULL);
    expect_reject("{\"limits\": {\"max_body_bytes\": 2048, \"x\": 1}}",
                  "limits.x", NULL);
    expect_reject("{\"Listen\": [\"127.0.0.1:1\"]}", "Listen", NULL);
    expect_reject("{\"upstream\": {\"base_url\": {\"x\": 1}}}",
                  "upstream.base_url", NULL);
}
END_TEST

START_TEST(test_section_not_object)
{
    expect_reject("{\"upstream\": 5}", "upstream", "object");
    expect_reject("{\"log\": \"info\"}", "log", "object");
    expect_reject("{\"limits\": null}", "limits", "object");
    expect_reject("{\"session_cache\": [1]}", "session_cache", "object");
    expect_reject("{\"admin\": \"" HEX_A "\"}", "admin", "object");
    expect_reject("{\"idempotency\": true}", "idempotency", "object");
}
END_TEST

START_TEST(test_trailing_garbage)
{
    expect_reject("{} x", NAME ":1:", NULL);
    expect_reject("{\"drain_timeout_ms\": 1}\n}\n", NAME ":2:", NULL);
    expect_reject("{}{}", NULL, NULL);
    expect_reject("{}\n\n,", NAME ":3:", NULL);
}
END_TEST

START_TEST(test_top_level_not_object)
{
    expect_reject("[1, 2]", "object", NULL);
    expect_reject("\"text\"", "object", NULL);
    expect_reject("5", "object", NULL);
    expect_reject("null", "object", NULL);
    expect_reject("", NULL, NULL);
    expect_reject("   \n", NULL, NULL);
    expect_reject("// only a comment\n", NULL, NULL);
    expect_reject("{\"listen\": [\"127.0.0.1:1\"]", NULL, NULL); /* cut */
}
END_TEST

START_TEST(test_invalid_json_line)
{
    expect_reject("{\n  \"listen\": [\"127.0.0.1:1\"],\n  \"log\" {}\n}\n",
                  NAME ":3:", NULL);
    expect_reject("{\"a\": ]}", NAME ":1:", NULL);
    expect_reject("{\n\n\n\n  \"upstream\": {\"timeout_ms\": 12x}\n}",
                  NAME ":5:", NULL);
}
END_TEST

/* ---- listen ---- */

START_TEST(test_listen_valid)
{
    parse_ok("{\"listen\": [\"127.0.0.1:8080\"]}");
    ck_assert_uint_eq(cfg.nlisten, 1);
    ck_assert_str_eq(cfg.listen[0].host, "127.0.0.1");
    ck_assert_int_eq(cfg.listen[0].port, 8080);
    config_free(&cfg);

    parse_ok("{\"listen\": [\"[::1]:0\"]}");
    ck_assert_str_eq(cfg.listen[0].host, "::1");
    ck_assert_int_eq(cfg.listen[0].port, 0);
    config_free(&cfg);

    parse_ok("{\"listen\": [\"localhost:1\"]}");
    ck_assert_str_eq(cfg.listen[0].host, "localhost");
    ck_assert_int_eq(cfg.listen[0].port, 1);
    config_free(&cfg);

    /* every kind of host the validator accepts */
    parse_ok("{\"listen\": [\"[fe80::1%eth0]:1\", \"[2001:db8::1]:2\", "
             "\"[::ffff:10.0.0.1]:3\", \"a:4\", \"A-1.b2.example:5\", "
             "\"1and1.com:6\", \"xn--bcher-kva.example:7\", "
             "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
             ".b:8\", \"255.255.255.255:9\"]}");
    ck_assert_uint_eq(cfg.nlisten, 9);
    ck_assert_str_eq(cfg.listen[0].host, "fe80::1%eth0");
    ck_assert_str_eq(cfg.listen[2].host, "::ffff:10.0.0.1");
    ck_assert_str_eq(cfg.listen[4].host, "A-1.b2.example");
    ck_assert_int_eq(cfg.listen[8].port, 9);
    config_free(&cfg);

    parse_ok("{\"listen\": [\"0.0.0.0:65535\", \"[fe80::1]:443\", "
             "\"gw.example.com:80\"]}");
    ck_assert_uint_eq(cfg.nlisten, 3);
    ck_assert_str_eq(cfg.listen[0].host, "0.0.0.0");
    ck_assert_int_eq(cfg.listen[0].port, 65535);
    ck_assert_str_eq(cfg.listen[1].host, "fe80::1");
    ck_assert_int_eq(cfg.listen[1].port, 443);
    ck_assert_str_eq(cfg.listen[2].host, "gw.example.com");
    ck_assert_int_eq(cfg.listen[2].port, 80);
    config_free(&cfg);
}
END_TEST

static const char *const bad_listens[] = {
    "127.0.0.1",       /* no port */
    "127.0.0.1:",      /* empty port */
    "127.0.0.1:65536", /* port too large */
    "127.0.0.1:99999",
    "127.0.0.1:123456",
    "a:b:c",
    "",
    ":8080",  /* no host */
    "::1:80", /* IPv6 without brackets */
    "[::1]",
    "[::1]80",
    "[::1:80",
    "[]:80",
    "127.0.0.1:-1",
    "127.0.0.1:8o",
    "127.0.0.1:+80",
    "127.0.0.1:80 ",
    /* hosts that are none of IPv4, [IPv6], DNS name (found by fuzzing:
     * "[[]:3" was accepted and printed as "[:3", which does not parse) */
    "[[]:3",
    "[a]:1",
    "[127.0.0.1]:80",
    "[gw.example.com]:80",
    "[::1%]:80",
    "[::1%a/b]:80",
    "[:::]:80",
    "[1::2::3]:80",
    "a b:80",
    "a_b:80",
    "-a.example:80",
    "a-.example:80",
    "a..b:80",
    ".a:80",
    "a.:80",
    "1.2.3:80",
    "127.1:80",
    "0x7f000001:80",
    "01.2.3.4:80",
    "256.1.1.1:80",
    "1.2.3.4.5:80",
    "example.123:80",
    "caf\\u00e9.example:80",
    "a\\tb:80",
    "a\\u001bb:80",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b:1",
    /* NUL: the C string would end early and look valid */
    "127.0.0.1:80\\u0000x",
    "[::1]:80\\u0000",
    "h\\u0000:80",
};
#define NBADLISTEN ((int)(sizeof(bad_listens) / sizeof(bad_listens[0])))

START_TEST(test_listen_invalid)
{
    char text[256];
    snprintf(text, sizeof(text), "{\"listen\": [\"%s\"]}", bad_listens[_i]);
    expect_reject(text, "listen", NULL);
    /* a bad entry after a good one: the good one must not leak */
    snprintf(text, sizeof(text), "{\"listen\": [\"127.0.0.1:1\", \"%s\"]}",
             bad_listens[_i]);
    expect_reject(text, "listen", NULL);
}
END_TEST

/* ---- strings ---- */

START_TEST(test_base_url)
{
    parse_ok("{\"upstream\": {\"base_url\": \"https://x.example/\"}}");
    ck_assert_str_eq(cfg.upstream_base_url, "https://x.example");
    config_free(&cfg);
    parse_ok("{\"upstream\": {\"base_url\": \"https://x.example///\"}}");
    ck_assert_str_eq(cfg.upstream_base_url, "https://x.example");
    config_free(&cfg);
    parse_ok("{\"upstream\": {\"base_url\": \"http://127.0.0.1:8081\"}}");
    ck_assert_str_eq(cfg.upstream_base_url, "http://127.0.0.1:8081");
    config_free(&cfg);
    parse_ok("{\"upstream\": {\"base_url\": \"http://h:1/p/q/\"}}");
    ck_assert_str_eq(cfg.upstream_base_url, "http://h:1/p/q");
    config_free(&cfg);
    expect_reject("{\"upstream\": {\"base_url\": \"ws://x\"}}",
                  "upstream.base_url", NULL);
    expect_reject("{\"upstream\": {\"base_url\": \"httpx://x\"}}",
                  "upstream.base_url", NULL);
    expect_reject("{\"upstream\": {\"base_url\": \"//x.example\"}}",
                  "upstream.base_url", NULL);
}
END_TEST

/* A scheme alone is not a URL: stripping '/' would leave "http:". */
START_TEST(test_base_url_needs_host)
{
    expect_reject("{\"upstream\": {\"base_url\": \"http://\"}}",
                  "upstream.base_url", NULL);
    expect_reject("{\"upstream\": {\"base_url\": \"https:///\"}}",
                  "upstream.base_url", NULL);
}
END_TEST

START_TEST(test_api_key_env_name)
{
    parse_ok("{\"upstream\": {\"api_key_env\": \"WAGATE_KEY_1\"}}");
    ck_assert_str_eq(cfg.api_key_env, "WAGATE_KEY_1");
    config_free(&cfg);
    parse_ok("{\"upstream\": {\"api_key_env\": \"lower_case\"}}");
    ck_assert_str_eq(cfg.api_key_env, "lower_case");
    config_free(&cfg);
    expect_reject("{\"upstream\": {\"api_key_env\": \"A=B\"}}",
                  "upstream.api_key_env", NULL);
    expect_reject("{\"upstream\": {\"api_key_env\": \"sk-live-123\"}}",
                  "upstream.api_key_env", NULL);
    expect_reject("{\"upstream\": {\"api_key_env\": \"KEY\\n\"}}",
                  "upstream.api_key_env", NULL);
    expect_reject("{\"upstream\": {\"api_key_env\": null}}",
                  "upstream.api_key_env", NULL);
}
END_TEST

/* POSIX names do not start with a digit; a shell cannot export one. */
START_TEST(test_api_key_env_leading_digit)
{
    expect_reject("{\"upstream\": {\"api_key_env\": \"1ABC\"}}",
                  "upstream.api_key_env", NULL);
}
END_TEST

START_TEST(test_dotted_key_is_unknown)
{
    expect_reject("{\"upstream.base_url\": \"http://x\"}",
                  "upstream.base_url", NULL);
}
END_TEST

START_TEST(test_nullable_strings)
{
    parse_ok("{\"upstream\": {\"api_key_file\": \"/k\", \"ca_file\": "
             "\"/ca.pem\"}}");
    ck_assert_str_eq(cfg.api_key_file, "/k");
    ck_assert_str_eq(cfg.ca_file, "/ca.pem");
    config_free(&cfg);
    parse_ok("{\"upstream\": {\"api_key_file\": null, \"ca_file\": null}}");
    ck_assert_ptr_null(cfg.api_key_file);
    ck_assert_ptr_null(cfg.ca_file);
    config_free(&cfg);
    expect_reject("{\"upstream\": {\"ca_file\": \"a\\u0000b\"}}",
                  "upstream.ca_file", NULL);
}
END_TEST

START_TEST(test_numbers)
{
    parse_ok("{\"upstream\": {\"rate_limit_rps\": 3, "
             "\"read_rate_limit_rps\": 0.25}}");
    ck_assert_double_eq(cfg.rate_limit_rps, 3.0);
    ck_assert_double_eq(cfg.read_rate_limit_rps, 0.25);
    config_free(&cfg);
    /* integers are integers: 5.0 is not accepted where a count is meant */
    expect_reject("{\"upstream\": {\"max_connections\": 5.0}}",
                  "upstream.max_connections", NULL);
    expect_reject("{\"upstream\": {\"timeout_ms\": 99999999999999999999}}",
                  "upstream.timeout_ms", NULL);
    expect_reject("{\"upstream\": {\"timeout_ms\": -99999999999999999999}}",
                  NULL, NULL);
}
END_TEST

/* ---- clients ---- */

/* found by fuzzing: json-c clamps 2^64-1 to INT64_MAX, a sender nobody
 * named; INT64_MAX itself stays a valid id */
START_TEST(test_sender_id_above_int64_refused)
{
    expect_reject("{\"clients\": [{\"name\": \"a\", \"token_sha256\": \""
                  HEX_A "\", \"senders\": [18446744073709551615]}]}",
                  "clients[0].senders", NULL);
    expect_reject("{\"clients\": [{\"name\": \"a\", \"token_sha256\": \""
                  HEX_A "\", \"senders\": [9223372036854775808]}]}",
                  "clients[0].senders", NULL);
    parse_ok("{\"clients\": [{\"name\": \"a\", \"token_sha256\": \"" HEX_A
             "\", \"senders\": [9223372036854775807]}]}");
    ck_assert_int_eq(cfg.clients[0].senders[0], INT64_MAX);
    config_free(&cfg);
}
END_TEST

START_TEST(test_clients_valid)
{
    unsigned char h[CONFIG_SHA256_LEN];
    parse_ok("{\"clients\": [{\"name\": \"billing\", \"token_sha256\": \"" HEX_A
             "\", \"senders\": [7, 123456789012]}]}");
    ck_assert_uint_eq(cfg.nclients, 1);
    ck_assert_str_eq(cfg.clients[0].name, "billing");
    hex_to_bytes(HEX_A, h);
    ck_assert_mem_eq(cfg.clients[0].token_sha256, h, CONFIG_SHA256_LEN);
    ck_assert_int_eq(cfg.clients[0].all_senders, 0);
    ck_assert_uint_eq(cfg.clients[0].nsenders, 2);
    ck_assert_int_eq(cfg.clients[0].senders[0], 7);
    ck_assert_int_eq(cfg.clients[0].senders[1], 123456789012LL);
    config_free(&cfg);

    parse_ok("{\"clients\": [{\"senders\": \"*\", \"name\": \"ops\", "
             "\"token_sha256\": \"" HEX_B "\"}]}");
    ck_assert_uint_eq(cfg.nclients, 1);
    ck_assert_int_eq(cfg.clients[0].all_senders, 1);
    ck_assert_uint_eq(cfg.clients[0].nsenders, 0);
    config_free(&cfg);

    /* upper-case hex is the same hash */
    parse_ok("{\"clients\": [{\"name\": \"u\", \"token_sha256\": "
             "\"FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210FEDCBA987654"
             "3210\", \"senders\": []}]}");
    hex_to_bytes(HEX_B, h);
    ck_assert_mem_eq(cfg.clients[0].token_sha256, h, CONFIG_SHA256_LEN);
    ck_assert_uint_eq(cfg.clients[0].nsenders, 0);
    ck_assert_int_eq(cfg.clients[0].all_senders, 0);
    config_free(&cfg);

    parse_ok("{\"clients\": []}");
    ck_assert_uint_eq(cfg.nclients, 0);
    config_free(&cfg);
}
END_TEST

#define CLIENT(name, tok, senders)                                             \
    "{\"name\": \"" name "\", \"token_sha256\": \"" tok                        \
    "\", \"senders\": " senders "}"

START_TEST(test_clients_invalid)
{
    /* missing fields */
    expect_reject("{\"clients\": [{\"token_sha256\": \"" HEX_A
                  "\", \"senders\": \"*\"}]}",
                  "clients[0]", "name");
    expect_reject("{\"clients\": [{\"name\": \"a\", \"senders\": \"*\"}]}",
                  "clients[0]", "token_sha256");
    expect_reject("{\"clients\": [{\"name\": \"a\", \"token_sha256\": \"" HEX_A
                  "\"}]}",
                  "clients[0]", "senders");
    expect_reject("{\"clients\": [{}]}", "clients[0]", NULL);
    /* unknown key */
    expect_reject("{\"clients\": [{\"name\": \"a\", \"token_sha256\": \"" HEX_A
                  "\", \"senders\": \"*\", \"bogus\": 1}]}",
                  "clients[0].bogus", NULL);
    /* bad hashes */
    expect_reject("{\"clients\": [" CLIENT(
                      "a",
                      "0123456789abcdef0123456789abcdef0123456789abcdef0123"
                      "456789abcde",
                      "\"*\"") "]}",
                  "clients[0].token_sha256", NULL); /* 63 digits */
    expect_reject("{\"clients\": [" CLIENT(
                      "a",
                      "0123456789abcdef0123456789abcdef0123456789abcdef0123"
                      "456789abcdeg",
                      "\"*\"") "]}",
                  "clients[0].token_sha256", NULL); /* 'g' */
    expect_reject("{\"clients\": [" CLIENT(
                      "a",
                      "0123456789abcdef0123456789abcdef0123456789abcdef0123"
                      "456789abcd f",
                      "\"*\"") "]}",
                  "clients[0].token_sha256", NULL); /* space */
    expect_reject("{\"clients\": [{\"name\": \"a\", \"token_sha256\": 5, "
                  "\"senders\": \"*\"}]}",
                  "clients[0].token_sha256", NULL);
    /* bad name and senders */
    expect_reject("{\"clients\": [{\"name\": 5, \"token_sha256\": \"" HEX_A
                  "\", \"senders\": \"*\"}]}",
                  "clients[0].name", NULL);
    expect_reject("{\"clients\": [" CLIENT("a", HEX_A, "\"all\"") "]}",
                  "clients[0].senders", NULL);
    expect_reject("{\"clients\": [" CLIENT("a", HEX_A, "5") "]}",
                  "clients[0].senders", NULL);
    expect_reject("{\"clients\": [" CLIENT("a", HEX_A, "[1, \"2\"]") "]}",
                  "clients[0].senders", NULL);
    expect_reject("{\"clients\": [" CLIENT("a", HEX_A, "[0]") "]}",
                  "clients[0].senders", NULL);
    expect_reject("{\"clients\": [" CLIENT("a", HEX_A, "[1.5]") "]}",
                  "clients[0].senders", NULL);
    /* the second entry is the bad one */
    expect_reject("{\"clients\": [" CLIENT("a", HEX_A, "[1]") ", " CLIENT(
                      "b", HEX_B, "[-3]") "]}",
                  "clients[1].senders", NULL);
    /* duplicates */
    expect_reject("{\"clients\": [" CLIENT("a", HEX_A, "[1]") ", " CLIENT(
                      "a", HEX_B, "[2]") "]}",
                  "clients[1].name", "\"a\"");
    expect_reject("{\"clients\": [" CLIENT("a", HEX_A, "[1]") ", " CLIENT(
                      "b", HEX_A, "[2]") "]}",
                  "clients[1].token_sha256", NULL);
    expect_reject(
        "{\"clients\": [" CLIENT("a", HEX_B, "[1]") ", " CLIENT(
            "b",
            "FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210",
            "[2]") "]}",
        "clients[1].token_sha256", NULL);
}
END_TEST

START_TEST(test_clients_errors_hide_hash)
{
    /* a duplicate-token message must not print the hash */
    expect_reject("{\"clients\": [" CLIENT("a", HEX_A, "[1]") ", " CLIENT(
                      "b", HEX_A, "[2]") "]}",
                  "clients[1]", NULL);
    ck_assert_ptr_null(strstr(err, "0123456789abcdef"));
}
END_TEST

/* ---- admin, log ---- */

START_TEST(test_admin_token)
{
    unsigned char h[CONFIG_SHA256_LEN];
    parse_ok("{\"admin\": {\"token_sha256\": null}}");
    ck_assert_int_eq(cfg.admin_token_set, 0);
    config_free(&cfg);
    parse_ok("{\"admin\": {\"token_sha256\": \"" HEX_C "\"}}");
    ck_assert_int_eq(cfg.admin_token_set, 1);
    hex_to_bytes(HEX_C, h);
    ck_assert_mem_eq(cfg.admin_token_sha256, h, CONFIG_SHA256_LEN);
    config_free(&cfg);
    expect_reject("{\"admin\": {\"token_sha256\": \"\"}}", "admin.token_sha256",
                  NULL);
    expect_reject("{\"admin\": {\"token_sha256\": \"xyz\"}}",
                  "admin.token_sha256", NULL);
    expect_reject("{\"admin\": {\"token_sha256\": \"a1b2c3d4e5f60718293a4b5c6d7"
                  "e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9\"}}",
                  "admin.token_sha256", NULL); /* 63 */
    expect_reject("{\"admin\": {\"token_sha256\": \"a1b2c3d4e5f60718293a4b5c6d7"
                  "e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9z\"}}",
                  "admin.token_sha256", NULL); /* non-hex */
    expect_reject("{\"admin\": {\"token_sha256\": true}}", "admin.token_sha256",
                  NULL);
    expect_reject("{\"admin\": {\"token\": \"x\"}}", "admin.token", NULL);
}
END_TEST

START_TEST(test_log_enums)
{
    static const struct {
        const char *name;
        enum log_level level;
    } levels[] = {{"error", LOG_ERROR},
                  {"warn", LOG_WARN},
                  {"info", LOG_INFO},
                  {"debug", LOG_DEBUG}};
    char text[128];
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        snprintf(text, sizeof(text), "{\"log\": {\"level\": \"%s\"}}",
                 levels[i].name);
        parse_ok(text);
        ck_assert_int_eq(cfg.log_level, levels[i].level);
        config_free(&cfg);
    }
    parse_ok("{\"log\": {\"format\": \"json\"}}");
    ck_assert_int_eq(cfg.log_format, LOG_FORMAT_JSON);
    config_free(&cfg);
    parse_ok("{\"log\": {\"format\": \"text\"}}");
    ck_assert_int_eq(cfg.log_format, LOG_FORMAT_TEXT);
    config_free(&cfg);
    expect_reject("{\"log\": {\"level\": \"warning\"}}", "log.level", NULL);
    expect_reject("{\"log\": {\"level\": \"\"}}", "log.level", NULL);
    expect_reject("{\"log\": {\"level\": null}}", "log.level", NULL);
    expect_reject("{\"log\": {\"format\": \"TEXT\"}}", "log.format", NULL);
    expect_reject("{\"log\": {\"format\": \"logfmt\"}}", "log.format", NULL);
    expect_reject("{\"log\": {\"format\": 1}}", "log.format", NULL);
}
END_TEST

/* ---- the API key ---- */

static void
setup_key_cfg(void)
{
    parse_ok("{\"upstream\": {\"api_key_env\": \"" KEY_ENV "\"}}");
}

START_TEST(test_api_key_env)
{
    char *key = (char *)1;
    setup_key_cfg();

    ck_assert_int_eq(setenv(KEY_ENV, "  sk-live-Abc123 \n\t", 1), 0);
    ck_assert_int_eq(secret_read_api_key(&cfg, &key, err, sizeof(err)), 0);
    ck_assert_str_eq(key, "sk-live-Abc123");
    free(key);

    ck_assert_int_eq(setenv(KEY_ENV, "plain", 1), 0);
    ck_assert_int_eq(secret_read_api_key(&cfg, &key, err, sizeof(err)), 0);
    ck_assert_str_eq(key, "plain");
    free(key);

    /* unset: the message names the variable */
    ck_assert_int_eq(unsetenv(KEY_ENV), 0);
    key = (char *)1;
    ck_assert_int_eq(secret_read_api_key(&cfg, &key, err, sizeof(err)), -1);
    ck_assert_ptr_null(key);
    ck_assert_ptr_nonnull(strstr(err, KEY_ENV));

    /* empty and blank */
    ck_assert_int_eq(setenv(KEY_ENV, "", 1), 0);
    ck_assert_int_eq(secret_read_api_key(&cfg, &key, err, sizeof(err)), -1);
    ck_assert_ptr_null(key);
    ck_assert_ptr_nonnull(strstr(err, KEY_ENV));
    ck_assert_int_eq(setenv(KEY_ENV, " \t\n ", 1), 0);
    ck_assert_int_eq(secret_read_api_key(&cfg, &key, err, sizeof(err)), -1);
    ck_assert_ptr_null(key);
    ck_assert_ptr_nonnull(strstr(err, KEY_ENV));

    /* a key a header cannot carry: refused, and never echoed */
    ck_assert_int_eq(setenv(KEY_ENV, "sk-secret part2", 1), 0);
    ck_assert_int_eq(secret_read_api_key(&cfg, &key, err, sizeof(err)), -1);
    ck_assert_ptr_null(key);
    ck_assert_ptr_null(strstr(err, "sk-secret"));
    ck_assert_ptr_null(strstr(err, "part2"));
    ck_assert_int_eq(setenv(KEY_ENV, "sk-secret\x01x", 1), 0);
    ck_assert_int_eq(secret_read_api_key(&cfg, &key, err, sizeof(err)), -1);
    ck_assert_ptr_null(strstr(err, "sk-secret"));

    ck_assert_int_eq(unsetenv(KEY_ENV), 0);
    config_free(&cfg);
}
END_TEST

START_TEST(test_api_key_file)
{
    char path[64], text[256];
    char *key = NULL;
    static const char content[] = "\n  sk-file-Xyz789  \r\n";
    write_temp(path, content, strlen(content));
    snprintf(text, sizeof(text),
             "{\"upstream\": {\"api_key_file\": \"%s\", "
             "\"api_key_env\": \"" KEY_ENV "\"}}",
             path);

    /* the file wins over the environment */
    ck_assert_int_eq(setenv(KEY_ENV, "sk-env-key", 1), 0);
    parse_ok(text);
    ck_assert_int_eq(secret_read_api_key(&cfg, &key, err, sizeof(err)), 0);
    ck_assert_str_eq(key, "sk-file-Xyz789");
    free(key);
    ck_assert_int_eq(unsetenv(KEY_ENV), 0);

    /* whitespace only: error naming the file, no key */
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(" \n\t\n", f);
    fclose(f);
    key = (char *)1;
    ck_assert_int_eq(secret_read_api_key(&cfg, &key, err, sizeof(err)), -1);
    ck_assert_ptr_null(key);
    ck_assert_ptr_nonnull(strstr(err, path));

    /* a key with an inner space: refused, not echoed */
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("sk-hidden value\n", f);
    fclose(f);
    ck_assert_int_eq(secret_read_api_key(&cfg, &key, err, sizeof(err)), -1);
    ck_assert_ptr_null(key);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_null(strstr(err, "sk-hidden"));
    ck_assert_ptr_null(strstr(err, "value"));

    /* too large: refused, not echoed */
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 600; i++)
        fputs("sk-large", f);
    fclose(f);
    ck_assert_int_eq(secret_read_api_key(&cfg, &key, err, sizeof(err)), -1);
    ck_assert_ptr_null(key);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_null(strstr(err, "sk-large"));

    /* missing: error naming the file */
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(secret_read_api_key(&cfg, &key, err, sizeof(err)), -1);
    ck_assert_ptr_null(key);
    ck_assert_ptr_nonnull(strstr(err, path));
    config_free(&cfg);
}
END_TEST

/* ---- printing ---- */

static json_object *
get_path(json_object *root, const char *a, const char *b)
{
    json_object *v = NULL;
    ck_assert_msg(json_object_object_get_ex(root, a, &v), "no %s", a);
    if (b != NULL) {
        json_object *w = NULL;
        ck_assert_msg(json_object_object_get_ex(v, b, &w), "no %s.%s", a, b);
        v = w;
    }
    return v;
}

START_TEST(test_print_redacts)
{
    parse_ok(full_config);
    char *out = print_to_string();
    json_object *root = json_tokener_parse(out);
    ck_assert_msg(root != NULL, "not JSON: %s", out);
    ck_assert(json_object_is_type(root, json_type_object));

    ck_assert_ptr_nonnull(strstr(out, "<redacted>"));
    static const char *const secrets[] = {HEX_A,
                                          HEX_B,
                                          HEX_C,
                                          "0123456789abcdef",
                                          "fedcba9876543210",
                                          "a1b2c3d4e5f60718"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        ck_assert_msg(strstr(out, secrets[i]) == NULL, "%s printed",
                      secrets[i]);

    ck_assert_str_eq(
        json_object_get_string(get_path(root, "admin", "token_sha256")),
        "<redacted>");
    json_object *clients = get_path(root, "clients", NULL);
    ck_assert_uint_eq(json_object_array_length(clients), 2);
    json_object *c0 = json_object_array_get_idx(clients, 0);
    ck_assert_str_eq(json_object_get_string(get_path(c0, "token_sha256", NULL)),
                     "<redacted>");
    ck_assert_str_eq(json_object_get_string(get_path(c0, "name", NULL)),
                     "billing");
    ck_assert_str_eq(
        json_object_get_string(
            get_path(json_object_array_get_idx(clients, 1), "senders", NULL)),
        "*");
    ck_assert_str_eq(
        json_object_get_string(get_path(root, "upstream", "base_url")),
        "http://sandbox.local:8081/v1");
    ck_assert_int_eq(
        json_object_get_int64(get_path(root, "upstream", "timeout_ms")), 20000);
    ck_assert_str_eq(json_object_get_string(get_path(root, "log", "level")),
                     "debug");
    json_object *listen = get_path(root, "listen", NULL);
    ck_assert_str_eq(
        json_object_get_string(json_object_array_get_idx(listen, 0)),
        "10.1.2.3:9000");
    ck_assert_str_eq(
        json_object_get_string(json_object_array_get_idx(listen, 1)),
        "[::1]:9001");

    json_object_put(root);
    free(out);
    config_free(&cfg);
}
END_TEST

START_TEST(test_print_defaults_round_trip)
{
    config_defaults(&cfg);
    char *out = print_to_string();
    config_free(&cfg);
    json_object *root = json_tokener_parse(out);
    ck_assert_msg(root != NULL, "not JSON: %s", out);
    ck_assert(json_object_is_type(get_path(root, "admin", "token_sha256"),
                                  json_type_null));
    ck_assert(json_object_is_type(get_path(root, "upstream", "api_key_file"),
                                  json_type_null));
    ck_assert_uint_eq(json_object_array_length(get_path(root, "clients", NULL)),
                      0);
    json_object_put(root);
    ck_assert_ptr_null(strstr(out, "<redacted>"));
    /* without secrets, the printed config reads back as the same config */
    int rc = config_parse(&cfg, out, "printed", err, sizeof(err));
    ck_assert_msg(rc == 0, "re-parse: %s\n%s", err, out);
    assert_defaults(&cfg);
    config_free(&cfg);
    free(out);
}
END_TEST

/* ---- loopback ---- */

static const struct {
    const char *listen;
    int loopback;
} loopbacks[] = {
    {"\"127.0.0.1:1\"", 1},
    {"\"127.9.9.9:1\"", 1},
    {"\"[::1]:1\"", 1},
    {"\"localhost:1\"", 1},
    {"\"LocalHost:1\"", 1}, /* DNS names are case-insensitive */
    {"\"127.0.0.1:1\", \"[::1]:2\", \"localhost:3\"", 1},
    {"\"0.0.0.0:1\"", 0},
    {"\"10.0.0.1:1\"", 0},
    {"\"[::]:1\"", 0},
    {"\"127.example.com:1\"", 0},
    {"\"128.0.0.1:1\"", 0},
    {"\"gw.example.com:1\"", 0},
    {"\"127.0.0.1:1\", \"0.0.0.0:2\"", 0},
    {"\"[::1]:1\", \"10.0.0.1:2\"", 0},
};
#define NLOOP ((int)(sizeof(loopbacks) / sizeof(loopbacks[0])))

START_TEST(test_all_loopback)
{
    char text[256];
    snprintf(text, sizeof(text), "{\"listen\": [%s]}", loopbacks[_i].listen);
    parse_ok(text);
    ck_assert_msg(config_all_loopback(&cfg) == loopbacks[_i].loopback, "%s",
                  loopbacks[_i].listen);
    config_free(&cfg);
}
END_TEST

START_TEST(test_default_is_loopback)
{
    config_defaults(&cfg);
    ck_assert_int_eq(config_all_loopback(&cfg), 1);
    config_free(&cfg);
}
END_TEST

/* ---- issue 8, A11: userinfo and cleartext in upstream.base_url ---- */

static const struct {
    const char *url, *shown;
} redactions[] = {
    {"https://app.autocalls.ai", "https://app.autocalls.ai"},
    {"http://127.0.0.1:8081/v1", "http://127.0.0.1:8081/v1"},
    {"https://user:pass@host/x", "https://<redacted>@host/x"},
    {"https://user@host", "https://<redacted>@host"},
    {"http://u:p@[::1]:80/a", "http://<redacted>@[::1]:80/a"},
    {"https://:p@h:1?q=a@b", "https://<redacted>@h:1?q=a@b"},
    /* an '@' left unencoded in the password: everything up to the last
     * '@' of the authority is hidden, whatever a parser would make of it */
    {"https://u:p@ss@h/x", "https://<redacted>@h/x"},
    /* an '@' after the authority is not userinfo */
    {"https://h/p@x", "https://h/p@x"},
    {"https://h?x@y", "https://h?x@y"},
    {"https://h#@y", "https://h#@y"},
    {"no scheme@all", "no scheme@all"},
};
#define NREDACT ((int)(sizeof(redactions) / sizeof(redactions[0])))

START_TEST(test_redacted_url)
{
    char *s = config_redacted_url(redactions[_i].url);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, redactions[_i].shown);
    free(s);
}
END_TEST

/* --check-config prints config_print's output: no password in it */
START_TEST(test_print_redacts_userinfo)
{
    parse_ok("{\"upstream\": {\"base_url\": "
             "\"https://alice:s3cr3t-pw@api.example:8443/v1/\"}}");
    /* the running value keeps the credentials: curl needs them */
    ck_assert_str_eq(cfg.upstream_base_url,
                     "https://alice:s3cr3t-pw@api.example:8443/v1");
    char *out = print_to_string();
    ck_assert_ptr_null(strstr(out, "s3cr3t-pw"));
    ck_assert_ptr_null(strstr(out, "alice"));
    json_object *root = json_tokener_parse(out);
    ck_assert_ptr_nonnull(root);
    json_object *up = NULL, *url = NULL;
    ck_assert(json_object_object_get_ex(root, "upstream", &up));
    ck_assert(json_object_object_get_ex(up, "base_url", &url));
    ck_assert_str_eq(json_object_get_string(url),
                     "https://<redacted>@api.example:8443/v1");
    json_object_put(root);
    free(out);
    config_free(&cfg);
}
END_TEST

static const struct {
    const char *url;
    int warn;
} cleartexts[] = {
    {"https://app.autocalls.ai", 0},
    {"https://192.0.2.1:9", 0},
    {"http://127.0.0.1:9", 0},
    {"http://127.255.1.2/v1", 0},
    {"http://localhost:8081/x", 0},
    {"http://LocalHost", 0},
    {"http://[::1]:80/a", 0},
    {"http://user:pw@127.0.0.1:1", 0},
    {"http://evil.example@127.0.0.1", 0},
    {"http://192.0.2.1:9", 1},
    {"http://app.autocalls.ai", 1},
    {"http://10.0.0.1/v1", 1},
    {"http://0.0.0.0:80", 1},
    {"http://[::]:80", 1},
    {"http://[2001:db8::1]/", 1},
    {"http://128.0.0.1", 1},
    {"http://localhost.example.com", 1},
    {"http://127.0.0.1.nip.io:80", 1},
    {"http://127.0.0.1@evil.example/", 1}, /* the host is evil.example */
    {"http://h?127.0.0.1", 1},
    /* not certainly loopback: warn rather than stay silent */
    {"http://127.1/", 1},
    {"http://2130706433/", 1},
    {"http://[::ffff:127.0.0.1]/", 1},
    {"http://[::1/", 1},
};
#define NCLEAR ((int)(sizeof(cleartexts) / sizeof(cleartexts[0])))

START_TEST(test_cleartext_remote)
{
    ck_assert_msg(config_url_cleartext_remote(cleartexts[_i].url) ==
                      cleartexts[_i].warn,
                  "%s", cleartexts[_i].url);
}
END_TEST

/* ---- issue 8, A12: what an error echoes is one printable line ---- */

/* {"\n":{}} (found by fuzzing) and its relatives: the key is shown
 * escaped, on one line, without the raw bytes */
START_TEST(test_error_escapes_keys)
{
    expect_reject("{\"\\n\":{}}", "\\x0a", "unknown key");
    expect_reject("{\"\n\":{}}", "\\x0a", NULL); /* raw newline in a key */
    expect_reject("{\"\\u001b[31mred\": 1}", "\\x1b[31mred", NULL);
    ck_assert_ptr_null(strchr(err, 0x1b));
    expect_reject("{\"log\": {\"a\\tb\": 1}}", "log.a\\x09b", NULL);
    expect_reject("{\"upstream\": {\"\\r\\n\": 1}}", "upstream.\\x0d\\x0a",
                  NULL);
    expect_reject("{\"a.\\n\": 1}", "a.\\x0a", "dotted");
    expect_reject("{\"\\u0085\\u2028\\u202e\": 1}", "\\xc2\\x85", NULL);
    ck_assert_ptr_null(strstr(err, "\xe2\x80\xa8")); /* U+2028 */
    ck_assert_ptr_null(strstr(err, "\xe2\x80\xae")); /* U+202E */
    expect_reject("{\"\xff\xfe\": 1}", "\\xff\\xfe", NULL);
    expect_reject("{\"q\\\"uote\\\\d\": 1}", "q\\\"uote\\\\d", NULL);
    /* printable UTF-8 is shown as it is */
    expect_reject("{\"caf\\u00e9\": 1}", "caf\xc3\xa9", NULL);
    /* keys inside a client object */
    expect_reject("{\"clients\": [{\"\\n\": 1}]}", "clients[0].\\x0a", NULL);
    /* a long key: cut, still one line */
    char text[4096];
    memset(text, 0, sizeof(text));
    strcpy(text, "{\"");
    for (int i = 0; i < 600; i++)
        strcat(text, "\\n\xc3\xa9");
    strcat(text, "\": 1}");
    memset(err, 0, sizeof(err));
    ck_assert_int_eq(config_parse(&cfg, text, NAME, err, 64), -1);
    ck_assert_uint_lt(strlen(err), 64);
    assert_printable_line(err);
}
END_TEST

/* the file name is echoed in every message: the same rule */
START_TEST(test_error_escapes_file_name)
{
    memset(err, 0, sizeof(err));
    ck_assert_int_eq(
        config_parse(&cfg, "{\"x\": 1}", "evil\n\x1b[2Jname", err, sizeof(err)),
        -1);
    ck_assert_ptr_nonnull(strstr(err, "evil\\x0a\\x1b[2Jname: x: unknown"));
    assert_printable_line(err);
    ck_assert_int_eq(config_parse(&cfg, "{", "evil\nname", err, sizeof(err)),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "evil\\x0aname"));
    assert_printable_line(err);
    ck_assert_int_eq(config_load(&cfg, "/nonexistent/wagate\n\x1b[31m.json",
                                 err, sizeof(err)),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/wagate\\x0a\\x1b[31m"));
    assert_printable_line(err);
    assert_left_empty();
}
END_TEST

/* json-c cuts an object key at an escaped NUL: "log\u0000x" would act as
 * "log" and "\u0000" as "" instead of being unknown keys */
START_TEST(test_key_with_nul)
{
    expect_reject("{\"log\\u0000x\": {\"level\": \"debug\"}}",
                  NAME ":1:", "\\u0000");
    expect_reject("{\n\"upstream\": {\n \"timeout_ms\\u0000\": 5}}",
                  NAME ":3:", NULL);
    expect_reject("{\"\\u0000\": 1}", "\\u0000", NULL);
    expect_reject("{'log\\u0000': {}}", "\\u0000", NULL);
    expect_reject("{\"clients\": [{\"name\\u0000\": \"a\", \"name\": \"b\", "
                  "\"token_sha256\": \"" HEX_A "\", \"senders\": \"*\"}]}",
                  "\\u0000", NULL);
    expect_reject("{\"log\\u0000\" /* c */ // c\n : {}}", "\\u0000", NULL);
    /* a NUL in a value still names its key */
    expect_reject("{\"upstream\": {\"ca_file\": \"a\\u0000b\"}}",
                  "upstream.ca_file", NULL);
    /* no NUL: an escaped backslash, comments and strings that say so */
    parse_ok("{\"log\": {\"level\": \"debug\"}, // \"\\u0000\": 1\n"
             " \"upstream\": {\"ca_file\": \"/x\\\\u0000\"} /* '\\u0000': */}");
    ck_assert_str_eq(cfg.ca_file, "/x\\u0000");
    ck_assert_int_eq(cfg.log_level, LOG_DEBUG);
    config_free(&cfg);
    expect_reject("{\"a\\\\u0000\": 1}", "a\\\\u0000", "unknown key");
}
END_TEST

/* the API key's messages echo upstream.api_key_file */
START_TEST(test_api_key_errors_escape_path)
{
    char *key = NULL;
    config_defaults(&cfg);
    cfg.api_key_file = strdup("/nonexistent/key\n\x1b[31mfile");
    ck_assert_int_eq(secret_read_api_key(&cfg, &key, err, sizeof(err)), -1);
    ck_assert_ptr_null(key);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/key\\x0a\\x1b[31mfile"));
    assert_printable_line(err);
    config_free(&cfg);
}
END_TEST

/* ---- issue 8, A12: client names are printable text ---- */

static const char *const bad_names[] = {
    "",         "\\u0000",      "a\\u0000b",
    "\\u0000a", "\\n",          "a\\tb",
    "a\\rb",    "\\u007f",      "\\u001b[31m",
    "\\u0085",  "\\u009b",      "\\u2028",
    "a\\u2029", "\\u202e",      "\\u2066x",
    "\\u200f",  "\\ufeff",      " ",
    " a",       "a ",           "\xff",
    "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82",
};
#define NBADNAME ((int)(sizeof(bad_names) / sizeof(bad_names[0])))

START_TEST(test_client_name_bad)
{
    char text[512];
    snprintf(text, sizeof(text),
             "{\"clients\": [{\"name\": \"%s\", \"token_sha256\": \"" HEX_A
             "\", \"senders\": \"*\"}]}",
             bad_names[_i]);
    expect_reject(text, "clients[0].name", NULL);
}
END_TEST

static const struct {
    const char *json, *name;
} good_names[] = {
    {"a b", "a b"},
    {"caf\\u00e9", "caf\xc3\xa9"},
    {"\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac"},
    {"\\ud83d\\ude00", "\xf0\x9f\x98\x80"},
    {"a\\\"b\\\\c", "a\"b\\c"},
    {"<redacted>", "<redacted>"},
    {"x\\u00a0y", "x\xc2\xa0y"},
    {"~!@#$%^&*()_+{}|:<>?", "~!@#$%^&*()_+{}|:<>?"},
};
#define NGOODNAME ((int)(sizeof(good_names) / sizeof(good_names[0])))

START_TEST(test_client_name_good)
{
    char text[512];
    snprintf(text, sizeof(text),
             "{\"clients\": [{\"name\": \"%s\", \"token_sha256\": \"" HEX_A
             "\", \"senders\": \"*\"}]}",
             good_names[_i].json);
    parse_ok(text);
    ck_assert_str_eq(cfg.clients[0].name, good_names[_i].name);
    config_free(&cfg);
}
END_TEST

/* a duplicate name is echoed: quotes and backslashes escaped */
START_TEST(test_duplicate_name_escaped)
{
    expect_reject("{\"clients\": [" CLIENT("a\\\"b", HEX_A, "[1]") ", " CLIENT(
                      "a\\\"b", HEX_B, "[2]") "]}",
                  "clients[1].name", "\"a\\\"b\" is used twice");
}
END_TEST

/* ---- issue 8, A12: what config_print prints parses back ---- */

static int
str_same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void
assert_same_config(const struct config *a, const struct config *b)
{
    ck_assert_uint_eq(a->nlisten, b->nlisten);
    for (size_t i = 0; i < a->nlisten; i++) {
        ck_assert_str_eq(a->listen[i].host, b->listen[i].host);
        ck_assert_int_eq(a->listen[i].port, b->listen[i].port);
    }
    ck_assert(str_same(a->upstream_base_url, b->upstream_base_url));
    ck_assert(str_same(a->api_key_env, b->api_key_env));
    ck_assert(str_same(a->api_key_file, b->api_key_file));
    ck_assert(str_same(a->ca_file, b->ca_file));
    ck_assert(str_same(a->state_file, b->state_file));
    ck_assert_int_eq(a->state_backend, b->state_backend);
    ck_assert(str_same(a->redis_url, b->redis_url));
    ck_assert(str_same(a->redis_password_file, b->redis_password_file));
    ck_assert(str_same(a->redis_prefix, b->redis_prefix));
    ck_assert_int_eq(a->redis_timeout_ms, b->redis_timeout_ms);
    ck_assert(str_same(a->state_account, b->state_account));
    ck_assert_int_eq(a->state_instances, b->state_instances);
    ck_assert_int_eq(a->connect_timeout_ms, b->connect_timeout_ms);
    ck_assert_int_eq(a->timeout_ms, b->timeout_ms);
    ck_assert_int_eq(a->upstream_max_connections, b->upstream_max_connections);
    ck_assert(a->rate_limit_rps == b->rate_limit_rps);
    ck_assert_int_eq(a->rate_limit_burst, b->rate_limit_burst);
    ck_assert(a->read_rate_limit_rps == b->read_rate_limit_rps);
    ck_assert_int_eq(a->max_queue_ms, b->max_queue_ms);
    ck_assert_int_eq(a->max_pause_ms, b->max_pause_ms);
    ck_assert_int_eq(a->cache_max_entries, b->cache_max_entries);
    ck_assert_int_eq(a->cache_recheck_after_s, b->cache_recheck_after_s);
    ck_assert_int_eq(a->idem_ttl_s, b->idem_ttl_s);
    ck_assert_int_eq(a->idem_max_entries, b->idem_max_entries);
    ck_assert_int_eq(a->max_body_bytes, b->max_body_bytes);
    ck_assert_int_eq(a->max_message_chars, b->max_message_chars);
    ck_assert_int_eq(a->client_timeout_ms, b->client_timeout_ms);
    ck_assert_int_eq(a->max_connections, b->max_connections);
    ck_assert_uint_eq(a->nclients, b->nclients);
    for (size_t i = 0; i < a->nclients; i++) {
        const struct config_client *x = &a->clients[i], *y = &b->clients[i];
        ck_assert_str_eq(x->name, y->name);
        ck_assert_mem_eq(x->token_sha256, y->token_sha256, CONFIG_SHA256_LEN);
        ck_assert_int_eq(x->all_senders, y->all_senders);
        ck_assert_uint_eq(x->nsenders, y->nsenders);
        for (size_t j = 0; j < x->nsenders; j++)
            ck_assert_int_eq(x->senders[j], y->senders[j]);
    }
    ck_assert_int_eq(a->admin_token_set, b->admin_token_set);
    ck_assert_mem_eq(a->admin_token_sha256, b->admin_token_sha256,
                     CONFIG_SHA256_LEN);
    ck_assert_int_eq(a->log_level, b->log_level);
    ck_assert_int_eq(a->log_format, b->log_format);
    ck_assert_int_eq(a->drain_timeout_ms, b->drain_timeout_ms);
}

static char *
print_config(const struct config *c)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    config_print(c, f);
    long n = ftell(f);
    ck_assert_int_gt(n, 0);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static json_object *
hex_string(const unsigned char h[CONFIG_SHA256_LEN])
{
    char hex[2 * CONFIG_SHA256_LEN + 1];
    for (int i = 0; i < CONFIG_SHA256_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    return json_object_new_string(hex);
}

/* The printed config with the redacted token hashes put back (the test
 * knows them; the printer must not print them), as JSON text. */
static char *
restore_secrets(const struct config *c, const char *printed)
{
    json_object *root = json_tokener_parse(printed);
    ck_assert_msg(root != NULL, "not JSON: %s", printed);
    json_object *clients = NULL, *admin = NULL;
    ck_assert(json_object_object_get_ex(root, "clients", &clients));
    ck_assert_uint_eq(json_object_array_length(clients), c->nclients);
    for (size_t i = 0; i < c->nclients; i++)
        json_object_object_add(json_object_array_get_idx(clients, i),
                               "token_sha256",
                               hex_string(c->clients[i].token_sha256));
    /* the base URL's userinfo is redacted the same way */
    json_object *up = NULL, *url = NULL;
    ck_assert(json_object_object_get_ex(root, "upstream", &up));
    ck_assert(json_object_object_get_ex(up, "base_url", &url));
    char *shown = config_redacted_url(c->upstream_base_url);
    ck_assert_str_eq(json_object_get_string(url), shown);
    free(shown);
    json_object_object_add(up, "base_url",
                           json_object_new_string(c->upstream_base_url));
    if (c->admin_token_set) {
        ck_assert(json_object_object_get_ex(root, "admin", &admin));
        json_object_object_add(admin, "token_sha256",
                               hex_string(c->admin_token_sha256));
    }
    char *text = strdup(json_object_to_json_string(root));
    json_object_put(root);
    return text;
}

/* If text parses, what config_print prints for it parses back to the same
 * configuration, and prints the same. Returns whether text parsed. */
static int
check_round_trip(const char *text)
{
    struct config a, b;
    char e[1024];
    if (config_parse(&a, text, "in", e, sizeof(e)) != 0)
        return 0;
    char *printed = print_config(&a);
    char *again = restore_secrets(&a, printed);
    int rc = config_parse(&b, again, "printed", e, sizeof(e));
    if (rc != 0) {
        config_free(&a);
        ck_abort_msg("%s\nprinted as\n%s\ndoes not parse back: %s", text,
                     printed, e);
    }
    assert_same_config(&a, &b);
    char *printed_b = print_config(&b);
    ck_assert_str_eq(printed, printed_b);
    free(printed_b);
    free(again);
    free(printed);
    config_free(&a);
    config_free(&b);
    return 1;
}

#define GOOD_CLIENT(name, tok)                                                 \
    "{\"name\": \"" name "\", \"token_sha256\": \"" tok                        \
    "\", \"senders\": \"*\"}"

/* configurations that must parse and survive the round trip */
static const char *const round_trips[] = {
    "{}",
    full_config,
    "{\"listen\": [\"[::1]:1\", \"[fe80::1%lo]:2\", \"[2001:db8::1]:0\", "
    "\"0.0.0.0:65535\", \"gw.example.com:80\", \"[::ffff:1.2.3.4]:3\"]}",
    "{\"clients\": [" GOOD_CLIENT(
        "a \\\"quoted\\\" \\\\ name",
        HEX_A) ", " GOOD_CLIENT("caf\\u00e9 \\ud83d\\ude00 \xe6\x97\xa5",
                                HEX_B) ", " GOOD_CLIENT("/slash/ <redacted> "
                                                        "\\u00a0",
                                                        HEX_C) "]}",
    "{\"clients\": [{\"name\": \"n\", \"token_sha256\": \"" HEX_A "\", "
    "\"senders\": [1, 9007199254740993, 9223372036854775807]}, "
    "{\"name\": \"m\", \"token_sha256\": \"" HEX_B "\", \"senders\": []}]}",
    "{\"upstream\": {\"api_key_file\": \"/etc/wagate/cl\\u00e9 \\\"x\\\"\", "
    "\"ca_file\": \"C:\\\\ca.pem\", \"base_url\": "
    "\"https://h.example:8443/a%20b/~x?y=1&z=[2]\"}, "
    "\"state\": {\"file\": \"/var/lib/wagate/\xc3\xa9t\xc3\xa9 state\"}}",
    "{\"upstream\": {\"rate_limit_rps\": 0.1, \"read_rate_limit_rps\": "
    "0.3333333333333333}}",
    "{\"upstream\": {\"rate_limit_rps\": 0.001, \"read_rate_limit_rps\": "
    "1e-5}}",
    "{\"upstream\": {\"rate_limit_rps\": 1000000, \"read_rate_limit_rps\": "
    "123456.789}}",
    /* every integer at its minimum, then at its maximum */
    "{\"upstream\": {\"connect_timeout_ms\": 1, \"timeout_ms\": 1, "
    "\"max_connections\": 1, \"rate_limit_burst\": 1, \"max_queue_ms\": 0, "
    "\"max_pause_ms\": 0}, \"session_cache\": {\"max_entries\": 1, "
    "\"recheck_after_s\": 0}, \"idempotency\": {\"ttl_s\": 1, "
    "\"max_entries\": 1}, \"limits\": {\"max_body_bytes\": 1024, "
    "\"max_message_chars\": 1, \"client_timeout_ms\": 100, "
    "\"max_connections\": 1}, \"drain_timeout_ms\": 0}",
    "{\"upstream\": {\"connect_timeout_ms\": 600000, \"timeout_ms\": 3600000, "
    "\"max_connections\": 10000, \"rate_limit_burst\": 1000000, "
    "\"max_queue_ms\": 3600000, \"max_pause_ms\": 3600000}, "
    "\"session_cache\": {\"max_entries\": 100000000, \"recheck_after_s\": "
    "604800}, \"idempotency\": {\"ttl_s\": 2592000, \"max_entries\": "
    "100000000}, \"limits\": {\"max_body_bytes\": 16777216, "
    "\"max_message_chars\": 1000000, \"client_timeout_ms\": 3600000, "
    "\"max_connections\": 1000000}, \"drain_timeout_ms\": 600000}",
    "{\"admin\": {\"token_sha256\": \"" HEX_C "\"}, \"log\": {\"level\": "
    "\"error\", \"format\": \"text\"}}",
    "{\"log\": {\"level\": \"warn\"}}",
    "{\"upstream\": {\"base_url\": \"https://user:pa%40ss@h.example/v1\"}}",
    "/* comments */ {\"drain_timeout_ms\": 1, // and order\n"
    " \"listen\": [\"localhost:0\"]}",
    "{\"state\": {\"backend\": \"redis\", \"account\": \"t~e_a.m-1\", "
    "\"instances\": 1000, \"redis\": {\"url\": \"redis://[::1]:6380/15\", "
    "\"password_file\": \"/etc/wagate/redis pw\", \"prefix\": \"p:\", "
    "\"timeout_ms\": 60000}}}",
};
#define NROUND ((int)(sizeof(round_trips) / sizeof(round_trips[0])))

START_TEST(test_print_parses_back)
{
    ck_assert_msg(check_round_trip(round_trips[_i]), "%s does not parse",
                  round_trips[_i]);
}
END_TEST

/* inputs the fuzzer found or could find: each may be refused, but if it
 * is accepted its printed form must parse back to the same config */
static const char *const round_trip_fuzz[] = {
    "{\"listen\": [\"[[]:3\"]}",
    "{\"listen\": [\"[a]:1\"]}",
    "{\"listen\": [\"[]]:1\"]}",
    "{\"listen\": [\"[:]:1\"]}",
    "{\"listen\": [\"[a:b]:1\"]}",
    "{\"listen\": [\"a\\\"b:1\"]}",
    "{\"listen\": [\"127.0.0.1:1\\u0000x\"]}",
    "{\"clients\": [" GOOD_CLIENT("\\u0000", HEX_A) "]}",
    "{\"clients\": [" GOOD_CLIENT("\\u0000x", HEX_A) "]}",
    "{\"clients\": [" GOOD_CLIENT("a\\u0000", HEX_A) ", " GOOD_CLIENT(
        "a\\u0000b", HEX_B) "]}",
    "{\"clients\": [{\"name\": \"a\", \"token_sha256\": \"" HEX_A "\", "
    "\"senders\": \"*\\u0000\"}]}",
    "{\"log\": {\"level\": \"info\\u0000x\"}}",
    "{\"upstream\": {\"base_url\": \"http://h\\u0000x\"}}",
};
#define NFUZZ ((int)(sizeof(round_trip_fuzz) / sizeof(round_trip_fuzz[0])))

START_TEST(test_print_parses_back_fuzz)
{
    (void)check_round_trip(round_trip_fuzz[_i]);
}
END_TEST

/* Runs fn in a child; 1 if it exited 0 within 5 s (the suites run with
 * CK_FORK=no, so a call that blocks must be caught here). */
static int
exits_in_time(int (*fn)(const char *), const char *arg)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(fn(arg));
    int status = 0, done = 0;
    for (int i = 0; i < 500 && !done; i++) {
        done = waitpid(pid, &status, WNOHANG) == pid;
        if (!done)
            usleep(10000);
    }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    return done && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int
load_refused(const char *path)
{
    struct config c;
    char e[512];
    return config_load(&c, path, e, sizeof(e)) == -1 &&
                   strstr(e, "not a complete JSON object") != NULL
               ? 0
               : 1;
}

static int
key_refused(const char *path)
{
    struct config c;
    char *key = NULL, e[512];
    config_defaults(&c);
    c.api_key_file = strdup(path);
    int rc = secret_read_api_key(&c, &key, e, sizeof(e));
    free(key);
    config_free(&c);
    return rc == -1 ? 0 : 1;
}

/* Found by attack: a FIFO as the config file (or the key file) blocked
 * open(2) until a writer came: on a SIGHUP, inside the event loop, the
 * gateway stopped answering for good. Nobody writing: it reads empty. A
 * pipe (-c <(...)) is still read to its end. */
START_TEST(test_load_fifo_does_not_wait)
{
    char dir[] = "/tmp/wagate-cfg-XXXXXX", fifo[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_msg(exits_in_time(load_refused, fifo),
                  "config_load() waited on a FIFO");
    ck_assert_msg(exits_in_time(key_refused, fifo),
                  "secret_read_api_key() waited on a FIFO");
    unlink(fifo);
    rmdir(dir);

    int p[2];
    char dev[32];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "{}", 2), 2);
    close(p[1]);
    snprintf(dev, sizeof(dev), "/dev/fd/%d", p[0]);
    ck_assert_int_eq(config_load(&cfg, dev, err, sizeof(err)), 0);
    config_free(&cfg);
    close(p[0]);
}
END_TEST

/* Found by attack: a reload moved state.file to a path the start never
 * claimed (no check that it can be saved there, no lock). */
START_TEST(test_reload_keeps_state_file)
{
    struct config running;
    char changed[256];
    parse_ok("{\"state\": {\"file\": \"/var/lib/wagate/state\"}}");
    running = cfg;
    parse_ok("{\"state\": {\"file\": \"/tmp/elsewhere\"}}");
    ck_assert_int_eq(
        config_keep_restart_keys(&cfg, &running, changed, sizeof(changed)),
        1);
    ck_assert_str_eq(changed, "state.file");
    ck_assert_str_eq(cfg.state_file, "/var/lib/wagate/state");
    config_free(&cfg);
    parse_ok("{}"); /* null is a change too */
    ck_assert_int_eq(
        config_keep_restart_keys(&cfg, &running, changed, sizeof(changed)),
        1);
    ck_assert_str_eq(cfg.state_file, "/var/lib/wagate/state");
    config_free(&cfg);
    config_free(&running);
}
END_TEST

/* ---- the table's flags (derived: every row is covered) ---- */

#define URL_PW "pw-5e0d1c"

/* Every key away from its default: test_every_row_is_changed checks it,
 * so that a new key must be added here and is then covered below. */
static const char every_key_changed[] =
    "{\"listen\": [\"10.1.2.3:9000\"],"
    " \"upstream\": {\"base_url\": \"https://u:" URL_PW "@api.example/v1\","
    " \"api_key_env\": \"MY_KEY_VAR\", \"api_key_file\": \"/etc/wagate/key\","
    " \"ca_file\": \"/etc/ssl/ca.pem\", \"connect_timeout_ms\": 1500,"
    " \"timeout_ms\": 20000, \"max_connections\": 32,"
    " \"rate_limit_rps\": 2.5, \"rate_limit_burst\": 3,"
    " \"read_rate_limit_rps\": 7, \"max_queue_ms\": 5000,"
    " \"max_pause_ms\": 1000},"
    " \"session_cache\": {\"max_entries\": 5000, \"recheck_after_s\": 60},"
    " \"idempotency\": {\"ttl_s\": 3600, \"max_entries\": 2000},"
    " \"limits\": {\"max_body_bytes\": 131072, \"max_message_chars\": 2048,"
    " \"client_timeout_ms\": 5000, \"max_connections\": 500},"
    " \"clients\": [{\"name\": \"billing\", \"token_sha256\": \"" HEX_A "\","
    " \"senders\": [12]}],"
    " \"admin\": {\"token_sha256\": \"" HEX_C "\"},"
    " \"log\": {\"level\": \"debug\", \"format\": \"text\"},"
    " \"drain_timeout_ms\": 2500, \"refusals\": {\"sender_offline_s\": 5,"
    " \"sender_not_found_s\": 0, \"balance_s\": 604800},"
    " \"state\": {\"file\": \"/tmp/wagate-s\","
    " \"backend\": \"redis\", \"account\": \"team-a\", \"instances\": 3,"
    " \"redis\": {\"url\": \"unix:/run/redis.sock\","
    " \"password_file\": \"/run/credentials/redis\", \"prefix\": \"wg:\","
    " \"timeout_ms\": 100}}}";

/* config_print(c) parsed back; the caller puts it. */
static json_object *
printed(const struct config *c)
{
    struct config saved = cfg;
    cfg = *c;
    char *out = print_to_string();
    cfg = saved;
    json_object *root = json_tokener_parse(out);
    ck_assert_msg(root != NULL, "not JSON: %s", out);
    free(out);
    return root;
}

/* The printed value at a dotted path (borrowed from root); JSON null is
 * NULL, a missing key fails the test. */
static json_object *
printed_at(json_object *root, const char *path)
{
    char part[64];
    json_object *v = root;
    while (*path != '\0') {
        size_t n = strcspn(path, ".");
        ck_assert_uint_lt(n, sizeof(part));
        memcpy(part, path, n);
        part[n] = '\0';
        ck_assert_msg(json_object_object_get_ex(v, part, &v), "no %s", part);
        path += n + (path[n] == '.');
    }
    return v;
}

static const char *
shown(json_object *v)
{
    return v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)
             : "null";
}

/* 1 if name is one of the comma-separated names in list. */
static int
listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(list, name); p; p = strstr(p + 1, name))
        if ((p == list || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

START_TEST(test_every_row_is_changed)
{
    struct config def;
    config_defaults(&def);
    parse_ok(every_key_changed);
    json_object *a = printed(&def), *b = printed(&cfg);
    const char *name;
    unsigned flags;
    for (size_t i = 0; config_key(i, &name, &flags); i++)
        ck_assert_msg(!json_object_equal(printed_at(a, name),
                                         printed_at(b, name)),
                      "every_key_changed leaves %s at its default", name);
    json_object_put(a);
    json_object_put(b);
    config_free(&def);
    config_free(&cfg);
}
END_TEST

/* A reload over the defaults with every key changed: exactly the
 * CFG_RESTART rows are reported, in table order, and keep the running
 * value; every other row takes the new one. */
START_TEST(test_restart_rows_are_kept_and_reported)
{
    struct config running;
    char changed[512], want[512] = "";
    config_defaults(&running);
    parse_ok(every_key_changed);
    json_object *before = printed(&cfg), *old = printed(&running);
    int n = config_keep_restart_keys(&cfg, &running, changed, sizeof(changed));
    json_object *after = printed(&cfg);
    const char *name;
    unsigned flags;
    int nrestart = 0;
    for (size_t i = 0; config_key(i, &name, &flags); i++) {
        int restart = (flags & CFG_RESTART) != 0;
        json_object *now = printed_at(after, name);
        json_object *expect = printed_at(restart ? old : before, name);
        ck_assert_msg(json_object_equal(now, expect), "%s: %s after, not %s",
                      name, shown(now), shown(expect));
        ck_assert_msg(listed(changed, name) == restart, "%s %s in \"%s\"",
                      name, restart ? "not" : "is", changed);
        if (restart) {
            nrestart++;
            size_t used = strlen(want);
            snprintf(want + used, sizeof(want) - used, "%s%s",
                     used ? ", " : "", name);
        }
    }
    ck_assert_int_eq(n, nrestart);
    ck_assert_str_eq(changed, want);
    /* a second reload of the same sees nothing */
    ck_assert_int_eq(
        config_keep_restart_keys(&cfg, &running, changed, sizeof(changed)), 0);
    ck_assert_str_eq(changed, "");
    json_object_put(before);
    json_object_put(old);
    json_object_put(after);
    config_free(&running);
    config_free(&cfg);
}
END_TEST

/* Every secret row shows "<redacted>" where its secret was, no other row
 * does, and no secret of every_key_changed is printed anywhere. */
START_TEST(test_secret_rows_are_redacted)
{
    parse_ok(every_key_changed);
    char *out = print_to_string();
    json_object *root = printed(&cfg);
    const char *name;
    unsigned flags;
    for (size_t i = 0; config_key(i, &name, &flags); i++) {
        int secret = (flags & (CFG_SECRET | CFG_USERINFO)) != 0;
        const char *v = shown(printed_at(root, name));
        ck_assert_msg((strstr(v, "<redacted>") != NULL) == secret,
                      "%s printed as %s", name, v);
    }
    static const char *const secrets[] = {HEX_A, HEX_C, "0123456789abcdef",
                                          "a1b2c3d4e5f60718", URL_PW};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        ck_assert_msg(strstr(out, secrets[i]) == NULL, "%s printed in %s",
                      secrets[i], out);
    json_object_put(root);
    free(out);
    config_free(&cfg);
}
END_TEST

/* The flags say what the hand-kept lists said before the table carried
 * them (config.h names the restart-only keys). */
START_TEST(test_flags_are_the_documented_lists)
{
    char restart[512] = "", secret[256] = "", userinfo[256] = "";
    const char *name;
    unsigned flags;
    for (size_t i = 0; config_key(i, &name, &flags); i++) {
        char *lists[] = {restart, secret, userinfo};
        unsigned bits[] = {CFG_RESTART, CFG_SECRET, CFG_USERINFO};
        for (int j = 0; j < 3; j++) {
            if (!(flags & bits[j]))
                continue;
            size_t used = strlen(lists[j]);
            snprintf(lists[j] + used, 256 - used, "%s%s", used ? ", " : "",
                     name);
        }
    }
    ck_assert_str_eq(restart, "listen, upstream.base_url, upstream.ca_file, "
                              "upstream.connect_timeout_ms, "
                              "upstream.timeout_ms, "
                              "upstream.max_connections, state.backend, "
                              "state.file, state.redis.url, "
                              "state.redis.password_file, "
                              "state.redis.prefix, state.account");
    ck_assert_str_eq(secret, "clients, admin.token_sha256");
    ck_assert_str_eq(userinfo, "upstream.base_url");
    ck_assert_int_eq(config_key(1000, &name, &flags), 0);
}
END_TEST

/* The enum rows carry their names and their message. */
START_TEST(test_enum_messages)
{
    expect_reject("{\"log\": {\"level\": \"verbose\"}}", "log.level",
                  "must be one of \"error\", \"warn\", \"info\", \"debug\"");
    expect_reject("{\"log\": {\"format\": \"xml\"}}", "log.format",
                  "must be \"json\" or \"text\"");
    for (int l = LOG_ERROR; l <= LOG_DEBUG; l++) {
        char text[128];
        snprintf(text, sizeof(text), "{\"log\": {\"level\": \"%s\"}}",
                 log_level_names[l]);
        parse_ok(text);
        ck_assert_int_eq(cfg.log_level, l);
        config_free(&cfg);
    }
}
END_TEST

/* The shared-state keys (SPEC sections 8, 11): their messages name the
 * key and the rule, and a URL that carries a password is refused
 * without echoing it. */
START_TEST(test_state_messages)
{
    expect_reject("{\"state\": {\"backend\": \"mysql\"}}", "state.backend",
                  "must be \"memory\" or \"redis\"");
    expect_reject("{\"state\": {\"redis\": {\"url\": "
                  "\"redis://:hunter2@10.0.0.5:6379\"}}}",
                  "state.redis.url", "password_file");
    ck_assert_ptr_null(strstr(err, "hunter2"));
    expect_reject("{\"state\": {\"redis\": {\"url\": \"rediss://h\"}}}",
                  "state.redis.url", "TLS");
    ck_assert_ptr_null(strstr(err, "rediss://h"));
    /* hiredis 0.14 would resolve a name blocking the loop */
    expect_reject("{\"state\": {\"redis\": {\"url\": "
                  "\"redis://redis.internal\"}}}",
                  "state.redis.url", "IP address");
    expect_reject("{\"state\": {\"account\": \"a{b}\"}}", "state.account",
                  "'{'");
    expect_reject("{\"state\": {\"account\": \"a b\"}}", "state.account",
                  "whitespace");
    expect_reject("{\"state\": {\"redis\": {\"prefix\": \"{x}:\"}}}",
                  "state.redis.prefix", "'{'");
    expect_reject("{\"state\": {\"redis\": {\"timeout_ms\": 0}}}",
                  "state.redis.timeout_ms", "between 1 and");
    expect_reject("{\"state\": {\"instances\": 0}}", "state.instances",
                  "between 1 and");
    expect_reject("{\"state\": {\"redis\": 5}}", "state.redis",
                  "must be an object");
    expect_reject("{\"state\": {\"redis\": {\"db\": 1}}}", "state.redis.db",
                  "unknown key");
    /* state.file with the redis backend parses (each key is valid on its
     * own); main.c refuses to run it (tests/integration) */
    parse_ok("{\"state\": {\"backend\": \"redis\", \"file\": \"/s\"}}");
    ck_assert_int_eq(cfg.state_backend, CONFIG_BACKEND_REDIS);
    config_free(&cfg);
}
END_TEST

/* A reload keeps the backend, where it is and whose keys it holds; the
 * timeout and the instance count take their new values. */
START_TEST(test_reload_keeps_state_placement)
{
    struct config running;
    char changed[512];
    parse_ok("{\"state\": {\"backend\": \"redis\", \"account\": \"a\"}}");
    running = cfg;
    parse_ok("{\"state\": {\"account\": \"b\", \"instances\": 2, "
             "\"redis\": {\"timeout_ms\": 50, \"url\": \"unix:/x\"}}}");
    ck_assert_int_eq(
        config_keep_restart_keys(&cfg, &running, changed, sizeof(changed)),
        3);
    ck_assert_str_eq(changed, "state.backend, state.redis.url, state.account");
    ck_assert_int_eq(cfg.state_backend, CONFIG_BACKEND_REDIS);
    ck_assert_str_eq(cfg.state_account, "a");
    ck_assert_str_eq(cfg.redis_url, "redis://127.0.0.1:6379/0");
    ck_assert_int_eq(cfg.redis_timeout_ms, 50);
    ck_assert_int_eq(cfg.state_instances, 2);
    config_free(&cfg);
    config_free(&running);
}
END_TEST

/* config_load's own refusals (before any parsing) leave cfg empty and
 * name the file. */
START_TEST(test_load_refusals)
{
    char path[64];
    write_temp(path, "{}\0{}", 5);
    ck_assert_int_eq(config_load(&cfg, path, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "file contains a NUL byte"));
    assert_left_empty();
    unlink(path);

    ck_assert_int_eq(config_load(&cfg, "/tmp", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "/tmp: read error");
    assert_left_empty();

    write_temp(path, "", 0);
    ck_assert_int_eq(truncate(path, 1 << 24), 0); /* 16 MiB of NULs */
    ck_assert_int_eq(config_load(&cfg, path, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "file too large"));
    assert_left_empty();
    unlink(path);
}
END_TEST

/* ---- secret.h ---- */

START_TEST(test_secret_free)
{
    secret_free(NULL); /* a no-op */
    char *s = strdup("sk-live-to-wipe");
    ck_assert_ptr_nonnull(s);
    secret_free(s); /* freed: ASan and valgrind see no leak */
}
END_TEST

/* state.redis.password_file: read as the API key's file is, stripped;
 * the messages name the file, never what it holds. */
START_TEST(test_redis_password_file)
{
    char path[64], text[256];
    char *pw = (char *)1;
    parse_ok("{}");
    ck_assert_int_eq(secret_read_redis_password(&cfg, &pw, err, sizeof(err)),
                     0);
    ck_assert_ptr_null(pw); /* no file: no AUTH */
    config_free(&cfg);

    static const char content[] = "\n  r3dis-Pa55 word\t\r\n";
    write_temp(path, content, strlen(content));
    snprintf(text, sizeof(text),
             "{\"state\": {\"redis\": {\"password_file\": \"%s\"}}}", path);
    parse_ok(text);
    ck_assert_int_eq(secret_read_redis_password(&cfg, &pw, err, sizeof(err)),
                     0);
    ck_assert_str_eq(pw, "r3dis-Pa55 word"); /* inner space kept */
    secret_free(pw);
    /* the config printed names the file, not the password */
    char *out = print_to_string();
    ck_assert_ptr_nonnull(strstr(out, path));
    ck_assert_ptr_null(strstr(out, "r3dis"));
    free(out);

    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(" \n\t ", f);
    fclose(f);
    pw = (char *)1;
    ck_assert_int_eq(secret_read_redis_password(&cfg, &pw, err, sizeof(err)),
                     -1);
    ck_assert_ptr_null(pw);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "empty"));

    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fwrite("r3dis\0tail", 1, 10, f);
    fclose(f);
    ck_assert_int_eq(secret_read_redis_password(&cfg, &pw, err, sizeof(err)),
                     -1);
    ck_assert_ptr_null(pw);
    ck_assert_ptr_nonnull(strstr(err, "NUL"));
    ck_assert_ptr_null(strstr(err, "r3dis"));

    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(secret_read_redis_password(&cfg, &pw, err, sizeof(err)),
                     -1);
    ck_assert_ptr_null(pw);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "state.redis.password_file"));
    assert_printable_line(err);
    config_free(&cfg);
}
END_TEST

/* state.account: the given name, else a digest of the API key under its
 * own label -- never the key, nor a piece of it. */
START_TEST(test_account_derivation)
{
    char a[SECRET_ACCOUNT_MAX + 1], b[SECRET_ACCOUNT_MAX + 1];
    parse_ok("{}");
    secret_account(&cfg, "sk-live-0123456789", a);
    ck_assert_str_eq(a, "4f5f9c0aff6d206d"); /* SHA-256 of the label and key */
    ck_assert_uint_eq(strlen(a), SECRET_ACCOUNT_HEX);
    secret_account(&cfg, "sk-live-0123456789", b);
    ck_assert_str_eq(a, b); /* stable across starts and instances */
    secret_account(&cfg, "sk-live-0123456780", b);
    ck_assert_str_ne(a, b);
    /* a key made of hex digits is not echoed either */
    secret_account(&cfg, "0123456789abcdef", a);
    ck_assert_str_eq(a, "efae8706b7f86b13");
    ck_assert_ptr_null(strstr("0123456789abcdef", a));
    for (size_t i = 0; a[i]; i++)
        ck_assert(strchr("0123456789abcdef", a[i]) != NULL);
    config_free(&cfg);

    parse_ok("{\"state\": {\"account\": \"team-a\"}}");
    secret_account(&cfg, "sk-live-0123456789", a);
    ck_assert_str_eq(a, "team-a");
    config_free(&cfg);
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc;

    tc = tcase_create("defaults");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_empty_object_is_defaults);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse");
    tcase_add_test(tc, test_every_key_non_default);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_comments);
    tcase_add_test(tc, test_comment_after_object);
    tcase_add_test(tc, test_unknown_keys);
    tcase_add_test(tc, test_section_not_object);
    tcase_add_test(tc, test_trailing_garbage);
    tcase_add_test(tc, test_top_level_not_object);
    tcase_add_test(tc, test_invalid_json_line);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_loop_test(tc, test_bad_value, 0, NBAD);
    tcase_add_test(tc, test_bad_table_covers_every_key);
    tcase_add_loop_test(tc, test_good_value, 0, NGOOD);
    tcase_add_test(tc, test_base_url);
    tcase_add_test(tc, test_base_url_needs_host);
    tcase_add_test(tc, test_api_key_env_name);
    tcase_add_test(tc, test_api_key_env_leading_digit);
    tcase_add_test(tc, test_dotted_key_is_unknown);
    tcase_add_test(tc, test_nullable_strings);
    tcase_add_test(tc, test_numbers);
    tcase_add_test(tc, test_admin_token);
    tcase_add_test(tc, test_log_enums);
    tcase_add_test(tc, test_reload_keeps_state_file);
    tcase_add_test(tc, test_state_messages);
    tcase_add_test(tc, test_reload_keeps_state_placement);
    tcase_add_test(tc, test_load_fifo_does_not_wait);
    suite_add_tcase(s, tc);

    tc = tcase_create("listen");
    tcase_add_test(tc, test_listen_valid);
    tcase_add_loop_test(tc, test_listen_invalid, 0, NBADLISTEN);
    tcase_add_loop_test(tc, test_all_loopback, 0, NLOOP);
    tcase_add_test(tc, test_default_is_loopback);
    suite_add_tcase(s, tc);

    tc = tcase_create("clients");
    tcase_add_test(tc, test_clients_valid);
    tcase_add_test(tc, test_clients_invalid);
    tcase_add_test(tc, test_clients_errors_hide_hash);
    suite_add_tcase(s, tc);

    tc = tcase_create("api_key");
    tcase_add_test(tc, test_api_key_env);
    tcase_add_test(tc, test_api_key_file);
    tcase_add_test(tc, test_secret_free);
    tcase_add_test(tc, test_redis_password_file);
    tcase_add_test(tc, test_account_derivation);
    suite_add_tcase(s, tc);

    tc = tcase_create("table");
    tcase_add_test(tc, test_every_row_is_changed);
    tcase_add_test(tc, test_restart_rows_are_kept_and_reported);
    tcase_add_test(tc, test_secret_rows_are_redacted);
    tcase_add_test(tc, test_flags_are_the_documented_lists);
    tcase_add_test(tc, test_enum_messages);
    tcase_add_test(tc, test_load_refusals);
    suite_add_tcase(s, tc);

    tc = tcase_create("print");
    tcase_add_test(tc, test_print_redacts);
    tcase_add_test(tc, test_print_defaults_round_trip);
    tcase_add_loop_test(tc, test_print_parses_back, 0, NROUND);
    tcase_add_loop_test(tc, test_print_parses_back_fuzz, 0, NFUZZ);
    tcase_add_test(tc, test_print_redacts_userinfo);
    suite_add_tcase(s, tc);

    tc = tcase_create("upstream_url");
    tcase_add_loop_test(tc, test_redacted_url, 0, NREDACT);
    tcase_add_loop_test(tc, test_cleartext_remote, 0, NCLEAR);
    suite_add_tcase(s, tc);

    tc = tcase_create("echo");
    tcase_add_test(tc, test_error_escapes_keys);
    tcase_add_test(tc, test_error_escapes_file_name);
    tcase_add_test(tc, test_key_with_nul);
    tcase_add_test(tc, test_api_key_errors_escape_path);
    tcase_add_test(tc, test_duplicate_name_escaped);
    tcase_add_loop_test(tc, test_client_name_bad, 0, NBADNAME);
    tcase_add_test(tc, test_sender_id_above_int64_refused);
    tcase_add_loop_test(tc, test_client_name_good, 0, NGOODNAME);
    suite_add_tcase(s, tc);

    return s;
}
