/* sb_json: json-c helpers for the sandbox's request and response bodies.
 *
 * Builders follow json-c ownership: sb_json_add() steals `value` (also when
 * it is NULL, which json-c stores as null). Every constructor aborts on
 * out-of-memory (see alloc.h), so results are never NULL.
 */
#ifndef SB_JSON_H
#define SB_JSON_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Strict parse (JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8) of a
 * body that must be exactly one JSON object, optionally followed by
 * whitespace. Returns a new object (caller puts it) or NULL. */
json_object *sb_json_parse_object(const char *body, size_t len);
/* True when s is exactly one RFC 8259 JSON text (grammar only; surrogate
 * escapes must pair up). */
bool sb_json_grammar_ok(const char *s, size_t len);

json_object *sb_json_obj(void);
json_object *sb_json_arr(void);
json_object *sb_json_str(const char *s);
json_object *sb_json_strn(const char *s, size_t len);
json_object *sb_json_int(int64_t v);
json_object *sb_json_bool(bool v);
/* Steals value. */
void sb_json_add(json_object *obj, const char *key, json_object *value);
void sb_json_push(json_object *arr, json_object *value);

/* Plain serialisation (no slash escaping) into a malloc'd string the
 * caller frees; puts `o`. */
char *sb_json_take(json_object *o);
/* {"success":false,"error":error,"error_code":code} as a malloc'd string. */
char *sb_json_error(const char *error, const char *code);

/* The first key of obj not in `allowed` (NULL-terminated), borrowed from
 * obj; NULL when every key is allowed. */
const char *sb_json_unknown_key(json_object *obj, const char *const *allowed);
/* 'unknown field "<key>"' into buf (at least SB_JSON_UNKNOWN_MSG_LEN
 * bytes), the key shown up to 40 bytes, cut on a
 * code point boundary with "..." after it, invalid bytes as U+FFFD: the
 * message is always valid UTF-8 (and json-c escapes control bytes). */
#define SB_JSON_UNKNOWN_MSG_LEN 64
void sb_json_unknown_msg(char *buf, size_t n, const char *key);

/* Field readers for validation. They borrow from obj. A JSON null counts as
 * absent. */
/* A JSON integer field: OK (in (INT64_MIN, INT64_MAX): json-c saturates
 * numbers past int64 to its ends, so those count as WRONG_TYPE, as do
 * "12", 12.0 and true), ABSENT or WRONG_TYPE. */
#define SB_JSON_INT_MAX (INT64_MAX - 1)
enum sb_field { SB_FIELD_OK, SB_FIELD_ABSENT, SB_FIELD_WRONG_TYPE };
enum sb_field sb_json_get_int(json_object *obj, const char *key, int64_t *out);
enum sb_field sb_json_get_str(json_object *obj, const char *key,
                              const char **out, size_t *len);

#endif
