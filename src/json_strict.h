/* json_strict.h - the gateway's strict JSON readers (RFC 8259). Pure: no
 * I/O, nothing kept between calls.
 *
 * 1. json_strict_scan(): the one strict scanner of the gateway, for what
 *    json-c cannot report (a key twice in an object, a lone surrogate
 *    escape, where a value's bytes are). It accepts exactly one object:
 *      - UTF-8 per Unicode table 3-7 (no overlong form, no encoded
 *        surrogate, nothing above U+10FFFF, no truncated sequence);
 *      - RFC 8259 grammar: no comment, no trailing comma, numbers as the
 *        RFC writes them ("01", "1.", ".5", "+1", "-" refused), the four
 *        whitespace bytes (space, tab, LF, CR) only, no raw control
 *        character in a string, the three literals in lower case;
 *      - no two keys of one object equal after their escapes are decoded;
 *      - at most JSON_STRICT_MAX_DEPTH nested containers (the top object
 *        counts 1);
 *      - nothing but JSON whitespace after the object.
 *    A \u escape of a lone surrogate is not a grammar error: it is decoded
 *    as its three-byte (WTF-8) form and reported by the verdict, which a
 *    caller ranks below a grammar error.
 *    Top-level members are handed to a callback as each value ends;
 *    deeper values are checked and skipped.
 *
 * 2. json_strict_parse_object(): the one wrapper around json-c's strict
 *    parser, for callers that want a json_object tree.
 *
 * The sandbox keeps its own grammar and wrapper on purpose (an independent
 * oracle, src/sandbox/sb_json.h): do not make it use this module. */
#ifndef WAGATE_JSON_STRICT_H
#define WAGATE_JSON_STRICT_H

#include <stddef.h>

struct json_object;

#define JSON_STRICT_MAX_DEPTH 64 /* containers nested deeper: invalid */

enum json_strict_verdict {
    JSON_STRICT_OK,
    JSON_STRICT_LONE_SURROGATE, /* grammar fine; a \u escape is unpaired */
    JSON_STRICT_INVALID,        /* not one strict object, as above */
};

enum json_strict_type {
    JSON_STRICT_NONE, /* never produced: a caller's "absent" */
    JSON_STRICT_OBJECT,
    JSON_STRICT_ARRAY,
    JSON_STRICT_STRING,
    JSON_STRICT_NUMBER,
    JSON_STRICT_TRUE,
    JSON_STRICT_FALSE,
    JSON_STRICT_NULL,
};

/* A top-level member's value. Pointers are borrowed: str points into the
 * caller's scratch buffer and num into the input, both valid as long as
 * those buffers are. */
struct json_strict_value {
    enum json_strict_type type;
    const char *str; /* STRING: decoded (escapes resolved), UTF-8 or WTF-8
                        for a lone surrogate, not NUL-terminated; may hold
                        NUL bytes from \u0000 */
    size_t str_len;  /* STRING: bytes */
    long long cps;   /* STRING: code points (an escape counts one, a
                        surrogate pair one) */
    const char *num; /* NUMBER: the token as written in the input */
    size_t num_len;  /* NUMBER: bytes */
    int is_int;      /* NUMBER: no fraction, no exponent */
    int scalars;     /* OBJECT: every member value a string or a number */
    const char *raw; /* OBJECT, ARRAY: the value as written in the input,
                        from its bracket to its closing one */
    size_t raw_len;  /* OBJECT, ARRAY: bytes */
    int depth;       /* containers nested in the value, itself included:
                        0 for a scalar, 1 for {} or [1], 2 for [[]] */
};

/* Called once per member of the top-level object, in document order, when
 * its value has been read. key (decoded like a string value, key_len
 * bytes) and v are borrowed as above. The scan may still find the
 * document invalid afterwards (a later byte, or this very key twice):
 * what a callback learned counts only if the verdict is not
 * JSON_STRICT_INVALID. */
typedef void (*json_strict_member_fn)(void *arg, const char *key,
                                      size_t key_len,
                                      const struct json_strict_value *v);

/* Scans s[0..len) (not NUL-terminated; s may be NULL when len is 0).
 * scratch: at least len bytes, owned by the caller, written with the
 * decoded strings (decoding never grows a string). on_member may be NULL.
 * Reads to the end of the input unless it is invalid before: a grammar
 * error outranks every rule a caller checks on the members. */
enum json_strict_verdict json_strict_scan(const char *s, size_t len,
                                          char *scratch,
                                          json_strict_member_fn on_member,
                                          void *arg);

/* Decodes one code point of s[*i..len) (*i < len) with the scanner's UTF-8
 * rules into *cp and advances *i; 0, or -1 (then *i and *cp untouched) at
 * an invalid or truncated sequence. */
int json_strict_utf8_next(const unsigned char *s, size_t len, size_t *i,
                          unsigned long *cp);

/* What json_strict_parse_object() reads. */
enum json_strict_mode {
    /* A body the gateway is sent (the admin API): json-c strict with UTF-8
     * validation, and nothing but JSON whitespace (space, tab, LF, CR)
     * after the object -- not even a NUL byte, where json-c stops. */
    JSON_STRICT_BODY,
    /* An upstream answer (learn.c): json-c strict as learning has always
     * read answers, and no more. json-c itself refuses text after the
     * value, but it stops at a NUL byte, so what follows a NUL is not
     * looked at; and UTF-8 is not validated. Either check would make some
     * answers teach nothing that teach today, and what is learned from
     * the upstream must not change with this module (issue 9 is a
     * refactor); the cache reads only session_status and error_code. */
    JSON_STRICT_ANSWER,
};

/* Parses s[0..len) (not NUL-terminated) per mode. Returns a new object
 * (the caller json_object_put()s it), or NULL if the text does not parse,
 * its value is not an object, or len is 0 or above INT_MAX. Aborts on out
 * of memory (alloc.h). */
struct json_object *json_strict_parse_object(const char *s, size_t len,
                                             enum json_strict_mode mode);

#endif
