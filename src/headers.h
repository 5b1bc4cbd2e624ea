/* headers.h - which headers cross the gateway, and request framing.
 *
 * Pure functions over header names and evhttp header lists; no I/O. */
#ifndef WAGATE_HEADERS_H
#define WAGATE_HEADERS_H

#include <stddef.h>

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
 * acceptable, else a static sentence saying what is ambiguous (both
 * Content-Length and Transfer-Encoding, a Transfer-Encoding other than
 * "chunked", more than one Content-Length, a Content-Length that is not a
 * plain decimal number). */
const char *headers_check_framing(const struct evkeyvalq *hdrs);

/* 1 if the Content-Type value is application/json, parameters allowed. */
int headers_is_json_type(const char *value);

/* Number of headers with this name (case-insensitive). */
size_t headers_count(const struct evkeyvalq *hdrs, const char *name);

#endif
