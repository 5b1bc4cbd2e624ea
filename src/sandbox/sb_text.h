/* sb_text: pure text helpers of the sandbox (no I/O, no global state).
 *
 * Inputs are borrowed (pointer + length, so embedded NULs are allowed);
 * every returned char * is malloc'd, NUL-terminated and freed by the caller.
 * Times are whole seconds since the Unix epoch, UTC.
 */
#ifndef SB_TEXT_H
#define SB_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Earliest and latest instants the sandbox can print: years 0001..9999. */
#define SB_TIME_MIN INT64_C(-62135596800)
#define SB_TIME_MAX INT64_C(253402300799)

/* E.164 as the upstream checks it: ^\+[1-9][0-9]{1,14}$ */
bool sb_phone_valid(const char *s, size_t len);

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
bool sb_utf8_valid(const char *s, size_t len);
/* Number of code points; an invalid byte counts as one. */
size_t sb_utf8_count(const char *s, size_t len);
/* True when s is empty or only Unicode White_Space code points. */
bool sb_utf8_blank(const char *s, size_t len);
/* Copy of s with each invalid byte replaced by U+FFFD; *outlen = its
 * length. Used to show arbitrary bytes as JSON text. */
char *sb_utf8_sanitize(const char *s, size_t len, size_t *outlen);
/* The length of the longest prefix of s of at most max bytes that does not
 * end inside a UTF-8 sequence, so that cutting valid UTF-8 there leaves
 * valid UTF-8. */
size_t sb_utf8_cut(const char *s, size_t len, size_t max);

/* Whether the NUL-terminated needle (non-empty) occurs in hay[0..len),
 * ASCII letters compared without case. */
bool sb_contains_ci(const char *hay, size_t len, const char *needle);

/* Standard base64 with padding. */
char *sb_base64(const void *data, size_t len);

/* "YYYY-MM-DDTHH:MM:SS+00:00" into buf (at least 26 bytes). Returns 0, or
 * -1 when t is outside [SB_TIME_MIN, SB_TIME_MAX]. */
#define SB_ISO_LEN 26
int sb_iso_format(int64_t t, char *buf, size_t n);
/* Parses YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|±HH:MM|±HHMM] (no zone = UTC) into
 * seconds; fractions are dropped. Returns 0, or -1 on any error. */
int sb_iso_parse(const char *s, int64_t *out);

/* Decimal integer: optional '-', then 1..19 digits, nothing else. 0/-1. */
int sb_parse_int64(const char *s, size_t len, int64_t *out);

/* Percent-decoding of a query component: %XX decoded, '+' becomes a space
 * (so a literal '+' in a phone number is not a '+'), malformed escapes kept
 * as they are. */
char *sb_url_decode(const char *s, size_t len, size_t *outlen);
/* The decoded value of the first `key` in a raw query string (NULL query
 * allowed). Returns NULL when absent; a present but empty value is "". */
char *sb_query_get(const char *query, const char *key, size_t *outlen);

#endif
