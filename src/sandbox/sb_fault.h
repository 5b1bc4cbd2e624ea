/* sb_fault: faults on demand (pure: no I/O).
 *
 * A fault is armed by POST /_sandbox/faults and makes the next `times`
 * matching API requests misbehave; docs/sandbox-contract.md gives the wire
 * behaviour of each mode, sb_http.c applies them. This module only parses
 * and validates the control body, keeps the bounded list in arming order,
 * picks the fault for a request and renders the list as JSON.
 *
 * Ownership: struct sb_fault owns its strings and headers and is released
 * with sb_fault_clear(). The list owns its faults; sb_faults_arm() steals
 * one. sb_faults_take() gives the caller its own copy of the fault applied.
 * Mode names are static strings.
 */
#ifndef SB_FAULT_H
#define SB_FAULT_H

#include "sb_reqlog.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_FAULTS_MAX 64         /* armed at once */
#define SB_FAULT_TIMES_MAX 10000 /* "times" of one fault */
#define SB_FAULT_PATH_MAX 1024   /* bytes of "path" */
#define SB_FAULT_MATCH_MAX 1024  /* bytes of "match" */
#define SB_FAULT_HEADERS_MAX 16  /* "headers" of a status fault */
#define SB_FAULT_NAME_MAX 64     /* bytes of a header name */
#define SB_FAULT_VALUE_MAX 1024  /* bytes of a header value */
#define SB_FAULT_BODY_MAX 65536  /* bytes of a status fault's body */
#define SB_FAULT_DELAY_MAX_MS 10000
#define SB_FAULT_DELAY_DEFAULT_MS 10

enum sb_fault_mode {
    SB_FAULT_RESET,    /* read the request, then TCP RST */
    SB_FAULT_CLOSE,    /* read the request, close without a byte */
    SB_FAULT_HANG,     /* read the request, never answer */
    SB_FAULT_GARBAGE,  /* answer bytes that are not HTTP, then close */
    SB_FAULT_SLOW,     /* the normal answer, one byte per delay_ms */
    SB_FAULT_STATUS,   /* a given status, headers and body */
    SB_FAULT_DROP_NEXT /* a request on a reused connection: close unread */
};

struct sb_fault {
    uint64_t id; /* 1, 2, ... in arming order; never reused */
    enum sb_fault_mode mode;
    char *path;  /* exact request path (no query); NULL = any API path */
    char *match; /* substring of the body (bytes); NULL = any body */
    size_t match_len;
    unsigned times, times_left;
    /* SB_FAULT_STATUS */
    int status;
    struct sb_header *headers; /* names are RFC 9110 tokens */
    size_t nheaders;
    char *body; /* NUL appended; may contain NULs */
    size_t body_len;
    /* SB_FAULT_SLOW */
    unsigned delay_ms;
};

struct sb_faults;

struct sb_faults *sb_faults_new(void);
void sb_faults_free(struct sb_faults *fl);

const char *sb_fault_mode_name(enum sb_fault_mode m);
void sb_fault_clear(struct sb_fault *f);

/* Validates a POST /_sandbox/faults body (borrowed) into *out (id 0,
 * times_left = times). Returns 0, or -1 with a one-line reason in err
 * (valid UTF-8, at most errlen - 1 bytes) and *out left empty. */
int sb_fault_parse(json_object *body, struct sb_fault *out, char *err,
                   size_t errlen);

/* Appends *f (stolen, then zeroed) and gives it the next id; returns the
 * armed fault (borrowed). NULL when SB_FAULTS_MAX are armed (*f kept). */
const struct sb_fault *sb_faults_arm(struct sb_faults *fl, struct sb_fault *f);
void sb_faults_clear(struct sb_faults *fl);
size_t sb_faults_count(const struct sb_faults *fl);
const struct sb_fault *sb_faults_at(const struct sb_faults *fl, size_t i);

/* Picks the fault for one API request: the first armed fault, in arming
 * order, whose path equals `path`, whose match occurs in the body and, for
 * drop_next, only when `reused` (the request arrived on a connection that
 * already carried an answer). Uses one of its times (a fault with none
 * left is removed) and copies it into *out for the caller (cleared with
 * sb_fault_clear()). False, *out untouched, when no fault applies. */
bool sb_faults_take(struct sb_faults *fl, const char *path, const char *body,
                    size_t body_len, bool reused, struct sb_fault *out);

/* {"id","mode","path","match","times","times_left"} plus "status",
 * "headers", "body" for a status fault and "delay_ms" for a slow one;
 * a new object. */
json_object *sb_fault_json(const struct sb_fault *f);
/* {"count":N,"faults":[...]}: a new object. */
json_object *sb_faults_json(const struct sb_faults *fl);

#endif
