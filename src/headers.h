/* headers.h - which headers cross the gateway, request framing, and the
 * request head as it arrives on the wire.
 *
 * Pure functions over header names, evhttp header lists and raw bytes; no
 * I/O. */
#ifndef WAGATE_HEADERS_H
#define WAGATE_HEADERS_H

#include <stddef.h>
#include <stdint.h>

#include "reply.h"
#include "reqid.h"

struct evkeyvalq;

/* 1 if name is hop-by-hop (RFC 9110 section 7.6.1 and the legacy ones), or
 * a framing header the gateway recomputes (Content-Length,
 * Transfer-Encoding): never relayed in either direction. */
int headers_is_hop_by_hop(const char *name);

/* 1 if a response header from upstream must not reach the caller: the
 * hop-by-hop set, the names listed in the response's own Connection header
 * (connection_value may be NULL), and the headers the gateway sets itself
 * (X-Wagate, X-Request-Id). */
int headers_drop_from_upstream(const char *name, const char *connection_value);

/* Checks a request's framing (GUIDE.md, evhttp pitfalls): returns NULL when
 * acceptable, else the 400 row (reply.h) saying what is ambiguous (both
 * Content-Length and Transfer-Encoding, a Transfer-Encoding other than
 * "chunked", more than one Content-Length, a Content-Length that is not a
 * plain decimal number). */
const struct gw_error_row *headers_check_framing(const struct evkeyvalq *hdrs);

/* Checks that every header name is an RFC 9110 token (1 or more of
 * !#$%&'*+-.^_`|~, digits, letters): NULL when they all are, else the 400
 * row (reply.h). evhttp keeps "Content-Length " (space before the colon) as a
 * name of its own and does not see it as framing. */
const struct gw_error_row *headers_check_names(const struct evkeyvalq *hdrs);

/* 1 if c is an RFC 9110 tchar. */
int headers_is_tchar(unsigned char c);

/* 1 if the Content-Type value is application/json, parameters allowed. */
int headers_is_json_type(const char *value);

/* Number of headers with this name (case-insensitive). */
size_t headers_count(const struct evkeyvalq *hdrs, const char *name);

/* ---- the request head, byte by byte ----
 *
 * The server feeds each request's bytes to a lexer before evhttp parses
 * them, so that it can refuse, with its own JSON answer, a head that evhttp
 * would misread or refuse with an HTML page. The lexer splits lines as
 * evhttp does (a line ends at LF, one CR before it dropped) and accepts
 * only what evhttp reads the same way:
 * - request line: METHOD SP target SP version; the method a token, the
 *   version exactly HTTP/1.0 or HTTP/1.1 (another HTTP/D.D is 505, any
 *   other text 400), no NUL; the target is left to the router;
 * - header lines: a token, a colon, a value of visible bytes, SP, HTAB or
 *   obs-text; no line folding, no control byte, no bare CR;
 * - at the end of the head, framing: not both Content-Length and
 *   Transfer-Encoding, at most one of each, Transfer-Encoding exactly
 *   "chunked", Content-Length a decimal number no larger than the cap, no
 *   body on HEAD or TRACE (evhttp would read it as the next request), and
 *   no Expect other than 100-continue on a request with a body;
 * - the head (request line to blank line) at most HEADERS_HEAD_MAX bytes. */

#define HEADERS_HEAD_MAX (32 * 1024)
#define HEADERS_METHOD_MAX 15
#define HEADERS_PATH_MAX 127 /* longer paths are no route of ours */
#define HEADERS_VALUE_MAX 31 /* framing values kept for the checks */

/* A refused head is answered with a row of reply.h's table (static,
 * never freed). The refusal of a method evhttp does not know (it would
 * answer 501) is 405's row: the server answers 405 on a known path, 404
 * elsewhere. */
#define headers_unknown_method (reply_errors[GW_ERR_METHOD_NOT_ALLOWED])

enum headers_lex_result {
    HEADERS_LEX_MORE,    /* all bytes taken; the head goes on */
    HEADERS_LEX_DONE,    /* the head ended and passed every check */
    HEADERS_LEX_REFUSED, /* lx->refusal says why; feed no more */
};

struct headers_lexer {
    /* what the head said, valid as far as it has been read */
    char method[HEADERS_METHOD_MAX + 1]; /* "" until read; cut if longer */
    int method_known;                    /* one of evhttp's nine methods */
    char path[HEADERS_PATH_MAX + 1];     /* target up to ? or #, if it fit */
    int path_fits;
    int minor;                      /* 0 or 1 once the line is read */
    char request_id[REQID_MAX + 1]; /* X-Request-Id, if it fit */
    uint64_t content_length;
    size_t head_len;                       /* bytes of the head so far */
    const struct gw_error_row *refusal; /* set on HEADERS_LEX_REFUSED */
    /* private */
    uint64_t max_body;
    int state, cr, lead, words, in_word, path_open, which, value_cut;
    int n_cl, n_te, cl_bad, te_other, expect_other, reqid_seen;
    size_t len, vlen, tail_len, last_len;
    char tail[16], last[16];
    char name[24];
    char value[HEADERS_VALUE_MAX + 1]; /* (X-Request-Id: in request_id) */
};

/* Starts a new request head; bodies over max_body (Content-Length) are
 * refused 413 at the end of the head. */
void headers_lex_init(struct headers_lexer *lx, uint64_t max_body);

/* Feeds n more bytes. *used receives how many belong to the head (all of
 * them on MORE; up to the blank line's LF on DONE; up to the offending
 * byte on REFUSED). */
enum headers_lex_result headers_lex(struct headers_lexer *lx, const char *p,
                                    size_t n, size_t *used);

#endif
