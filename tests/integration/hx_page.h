/* hx_page.h - the browser suites' side of a page driven over cdp.c, as
 * Check assertions: a JS expression built printf-style is evaluated (each
 * evaluation bounded by wait_ms) and its value taken as JSON, a number or
 * a string; an exception or a value of the wrong kind fails the running
 * test, and so does a DOM condition that does not hold within wait_ms
 * (the message then carries the page's #error text). */
#ifndef WAGATE_HX_PAGE_H
#define WAGATE_HX_PAGE_H

#include <json-c/json.h>
#include <stddef.h>

#include "cdp.h"

/* The value (the caller puts it; NULL for undefined). */
json_object *hx_js(struct cdp *b, int wait_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Evaluated for its effect. */
void hx_js_do(struct cdp *b, int wait_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A number. */
long long hx_js_int(struct cdp *b, int wait_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A string copied into out ("" for null or undefined); strict: any other
 * kind fails the test, else it is copied as its JSON text. */
const char *hx_js_str(struct cdp *b, int wait_ms, int strict, char *out,
                      size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Waits until the condition holds. */
void hx_wait_dom(struct cdp *b, int wait_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
