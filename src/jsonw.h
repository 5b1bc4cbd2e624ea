/* jsonw.h - writes JSON text into an evbuffer, for the gateway's own
 * answers, without building a tree: the hot answers (a window known
 * closed, an over-length message) are a handful of members, and a json-c
 * tree for each costs a dozen allocations and a serialisation.
 *
 * Bytes gather in the writer's own buffer and go to the evbuffer when it
 * fills and at jw_end(), so an answer is usually one evbuffer_add().
 * Strings are escaped as json-c writes them with
 * JSON_C_TO_STRING_NOSLASHESCAPE ('"', '\\', \b \f \n \r \t, other bytes
 * below 0x20 as \u00xx in lower case; everything else as it is), so that
 * an answer is byte for byte what the json-c builder made. A failed add is
 * sticky: jw_end() reports it. No allocation of its own. */
#ifndef WAGATE_JSONW_H
#define WAGATE_JSONW_H

#include <stddef.h>

struct evbuffer;

#define JSONW_BUF 512

struct jw {
    struct evbuffer *out;
    size_t len;
    int failed;
    char buf[JSONW_BUF];
};

void jw_init(struct jw *w, struct evbuffer *out);

/* n bytes as they are (JSON text the caller vouches for). */
void jw_raw(struct jw *w, const char *s, size_t n);

/* A string literal as it is: jw_lit(w, "{\"a\":"). */
#define jw_lit(w, s) jw_raw((w), (s), sizeof(s) - 1)

/* s (NUL-terminated) as a JSON string, quotes included. */
void jw_str(struct jw *w, const char *s);

/* v in decimal. */
void jw_int(struct jw *w, long long v);

/* Flushes what is gathered. 0, or -1 when an add to the evbuffer failed
 * at any point (the evbuffer then holds a part of the text). */
int jw_end(struct jw *w);

#endif
