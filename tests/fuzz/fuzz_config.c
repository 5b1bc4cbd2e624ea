/* fuzz_config.c - the configuration parser (src/config.h: config_parse).
 *
 * Input: a config file's text (a NUL byte: skipped, config_load refuses
 * those files before parsing).
 *
 * Invariants:
 *   - a refusal leaves cfg empty (and config_free again harmless) and says
 *     why in one line of printable text (config.h: UTF-8 without
 *     controls, separators or bidirectional marks) starting with the file's
 *     name;
 *   - an accepted config is sane: at least one listen address, each with a
 *     host and a port in 0..65535; base_url http(s):// without a trailing
 *     '/'; clients with a name and sender ids >= 1;
 *   - print -> parse round trip: what config_print() writes (the redacted
 *     tokens replaced by distinct SHA-256s, the only thing a reader must
 *     fill in) parses back, and prints exactly the same again; reloading
 *     it over the first (config_keep_restart_keys) sees nothing changed
 *     but a base URL whose userinfo was printed redacted;
 *   - what the file says is what the config holds: no string or key with
 *     U+0000 is accepted (json-c keeps only what comes before it in a key,
 *     and a C string comparison would read "*\u0000x" as "*").
 *
 * The findings of issue 8 A.12 these check (a key echoed raw into an
 * error, "{\"\\n\":{}}"; a listen host never validated, "[[]:3"; a client
 * name "\u0000" taken as "") and a NUL elsewhere in a string or a key
 * ("senders": "*\u0000x", "level": "debug\u0000x", "log\u0000x") are fixed
 * in config.c, and so is a sender id above 2^63 - 1 that json-c clamped
 * to 9223372036854775807 (seed 41); their inputs are seeds.
 */
#include <json-c/json.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

#define FILE_NAME "fuzz.json"

#define STRICT 1 /* every finding is fixed: all are checked */

/* ---- what json-c reads that the file does not say ---- */

/* A NUL in a string (json-c keeps its bytes, get_string_len), or, with
 * clamped set, a sender id json-c had to clamp to INT64_MAX. */
static int
misread_shape(json_object *o, int in_senders, int clamped)
{
    if (json_object_is_type(o, json_type_string))
        return strlen(json_object_get_string(o)) !=
               (size_t)json_object_get_string_len(o);
    if (json_object_is_type(o, json_type_int))
        return clamped && in_senders && json_object_get_int64(o) == INT64_MAX &&
               json_object_get_uint64(o) != (uint64_t)INT64_MAX;
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            if (misread_shape(json_object_array_get_idx(o, i), in_senders,
                              clamped))
                return 1;
        return 0;
    }
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, key, val)
        {
            if (misread_shape(val, strcmp(key, "senders") == 0, clamped))
                return 1;
        }
    }
    return 0;
}

/* t past blanks and comments. */
static const char *
skip_blank(const char *t)
{
    for (;;) {
        while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r')
            t++;
        if (t[0] == '/' && t[1] == '/') {
            while (*t != '\0' && *t != '\n')
                t++;
        } else if (t[0] == '/' && t[1] == '*') {
            const char *end = strstr(t + 2, "*/");
            t = end ? end + 2 : t + strlen(t);
        } else {
            return t;
        }
    }
}

/* A key holding a \u0000 escape (json-c cuts keys there), anywhere in the
 * text, a discarded duplicate too: a small lexer of the lax JSON config.c
 * reads (comments, both quotes). A NUL in a value is found in json-c's
 * tree instead, which keeps it. */
static int
has_nul_key(const char *t)
{
    for (t = skip_blank(t); *t; t = skip_blank(t)) {
        char q = *t++;
        if (q != '"' && q != '\'')
            continue;
        int nul = 0;
        for (; *t && *t != q; t++) {
            if (*t == '\\' && t[1] != '\0') {
                nul |= strncmp(t + 1, "u0000", 5) == 0;
                t++;
            }
        }
        if (*t == q)
            t++;
        if (nul && *skip_blank(t) == ':')
            return 1;
    }
    return 0;
}

/* 1 if the accepted text says something the config cannot hold. */
static int
input_is_misread(const char *text)
{
    json_object *root = json_tokener_parse(text); /* lax, as config.c */
    int r =
        root != NULL && (misread_shape(root, 0, STRICT) || has_nul_key(text));
    json_object_put(root);
    return r;
}

/* ---- helpers ---- */

/* config_print() into a heap string; caller frees. */
static char *
print_config(const struct config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    FUZZ_CHECK(f != NULL, "open_memstream");
    config_print(cfg, f);
    FUZZ_CHECK(fclose(f) == 0, "fclose");
    FUZZ_CHECK(strlen(buf) == len, "config_print wrote a NUL");
    return buf;
}

/* The printed config with each redacted token replaced by a distinct
 * SHA-256 (hex), as an operator would; caller frees. */
static char *
fill_tokens(const char *printed)
{
    json_object *root = json_tokener_parse(printed);
    FUZZ_CHECK(root != NULL && json_object_is_type(root, json_type_object),
               "config_print wrote no JSON object:\n%s", printed);
    json_object *admin, *clients;
    char hex[65];
    if (json_object_object_get_ex(root, "admin", &admin) &&
        json_object_is_type(admin, json_type_object)) {
        json_object *tok;
        if (json_object_object_get_ex(admin, "token_sha256", &tok) &&
            json_object_is_type(tok, json_type_string)) {
            snprintf(hex, sizeof(hex), "%064x", 1u);
            json_object_object_add(admin, "token_sha256",
                                   json_object_new_string(hex));
        }
    }
    if (json_object_object_get_ex(root, "clients", &clients) &&
        json_object_is_type(clients, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(clients); i++) {
            json_object *c = json_object_array_get_idx(clients, i);
            if (!json_object_is_type(c, json_type_object))
                continue;
            snprintf(hex, sizeof(hex), "%064zx", i + 2);
            json_object_object_add(c, "token_sha256",
                                   json_object_new_string(hex));
        }
    }
    char *out = strdup(json_object_to_json_string_ext(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    FUZZ_CHECK(out != NULL, "strdup");
    json_object_put(root);
    return out;
}

static void
check_refusal(struct config *cfg, const char *err, const char *text)
{
    FUZZ_CHECK(cfg->listen == NULL && cfg->nlisten == 0 &&
                   cfg->clients == NULL && cfg->nclients == 0 &&
                   cfg->upstream_base_url == NULL,
               "a refused config is not left empty");
    config_free(cfg); /* again: harmless */
    size_t n = strlen(err);
    FUZZ_CHECK(n > sizeof(FILE_NAME) &&
                   strncmp(err, FILE_NAME, strlen(FILE_NAME)) == 0,
               "error \"%s\"", err);
    FUZZ_CHECK(fuzz_printable_text(err, n),
               "error is not one line of printable text: \"%s\" for %.300s",
               err, text);
}

static void
check_sane(const struct config *cfg)
{
    FUZZ_CHECK(cfg->nlisten >= 1 && cfg->listen != NULL, "no listen address");
    for (size_t i = 0; i < cfg->nlisten; i++)
        FUZZ_CHECK(cfg->listen[i].host && cfg->listen[i].host[0] &&
                       cfg->listen[i].port >= 0 && cfg->listen[i].port <= 65535,
                   "listen[%zu]", i);
    const char *u = cfg->upstream_base_url;
    size_t n = u ? strlen(u) : 0;
    FUZZ_CHECK(
        u &&
            (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) &&
            u[n - 1] != '/',
        "base_url \"%s\"", u ? u : "(null)");
    FUZZ_CHECK(cfg->api_key_env && cfg->api_key_env[0], "api_key_env");
    for (size_t i = 0; i < cfg->nclients; i++) {
        const struct config_client *c = &cfg->clients[i];
        FUZZ_CHECK(c->name != NULL, "client %zu without a name", i);
        FUZZ_CHECK(c->name[0] != '\0', "client %zu: empty name", i);
        FUZZ_CHECK(c->all_senders || c->nsenders == 0 || c->senders,
                   "client %zu senders", i);
        for (size_t j = 0; j < c->nsenders; j++)
            FUZZ_CHECK(c->senders[j] >= 1, "client %zu sender %lld", i,
                       c->senders[j]);
    }
}

static void
check_round_trip(const struct config *cfg)
{
    char *p1 = print_config(cfg);
    char *again = fill_tokens(p1);
    struct config cfg2;
    char err[512] = "";
    int rc = config_parse(&cfg2, again, FILE_NAME, err, sizeof(err));
    FUZZ_CHECK(rc == 0, "what config_print wrote does not parse: %s\n%s", err,
               p1);
    char *p2 = print_config(&cfg2);
    FUZZ_CHECK(strcmp(p1, p2) == 0,
               "printed, parsed and printed again differs:\n%s\n---\n%s", p1,
               p2);
    /* only the base URL's userinfo may differ: it was printed redacted */
    char changed[512];
    char *shown = config_redacted_url(cfg->upstream_base_url);
    int redacted = strcmp(shown, cfg->upstream_base_url) != 0;
    free(shown);
    int n = config_keep_restart_keys(&cfg2, cfg, changed, sizeof(changed));
    FUZZ_CHECK(redacted ? n == 1 && strcmp(changed, "upstream.base_url") == 0
                        : n == 0 && changed[0] == '\0',
               "a reload of the same sees %s", changed);
    (void)config_all_loopback(&cfg2);
    config_free(&cfg2);
    free(p2);
    free(again);
    free(p1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memchr(data, '\0', size) != NULL)
        return 0;
    char *text = malloc(size + 1);
    FUZZ_CHECK(text != NULL, "malloc");
    memcpy(text, data, size);
    text[size] = '\0';

    struct config cfg;
    char err[512];
    memset(err, 0, sizeof(err));
    if (config_parse(&cfg, text, FILE_NAME, err, sizeof(err)) != 0) {
        check_refusal(&cfg, err, text);
    } else {
        FUZZ_CHECK(err[0] == '\0', "success wrote an error: %s", err);
        FUZZ_CHECK(!input_is_misread(text), "accepted what it cannot hold: %s",
                   text);
        check_sane(&cfg);
        check_round_trip(&cfg);
        config_free(&cfg);
    }
    free(text);
    return 0;
}
