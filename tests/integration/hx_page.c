/* hx_page.c - see hx_page.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* vasprintf */
#endif
#include "hx_page.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static char *__attribute__((format(printf, 1, 0)))
vformat(const char *fmt, va_list ap)
{
    char *s = NULL;
    ck_assert_int_ge(vasprintf(&s, fmt, ap), 0);
    return s;
}

/* The value of expr; fails the test on an exception. */
static json_object *
eval(struct cdp *b, int wait_ms, const char *expr)
{
    json_object *v = NULL;
    int rc = cdp_eval(b, expr, wait_ms, &v);
    ck_assert_msg(rc == 0, "%s", b->err);
    return v;
}

json_object *
hx_js(struct cdp *b, int wait_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *expr = vformat(fmt, ap);
    va_end(ap);
    json_object *v = eval(b, wait_ms, expr);
    free(expr);
    return v;
}

void
hx_js_do(struct cdp *b, int wait_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *expr = vformat(fmt, ap);
    va_end(ap);
    json_object_put(eval(b, wait_ms, expr));
    free(expr);
}

long long
hx_js_int(struct cdp *b, int wait_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *expr = vformat(fmt, ap);
    va_end(ap);
    json_object *v = eval(b, wait_ms, expr);
    ck_assert_msg(v != NULL && (json_object_is_type(v, json_type_int) ||
                                json_object_is_type(v, json_type_double)),
                  "`%.300s` is not a number: %s", expr,
                  v ? json_object_to_json_string(v) : "undefined");
    free(expr);
    long long n = (long long)json_object_get_int64(v);
    json_object_put(v);
    return n;
}

const char *
hx_js_str(struct cdp *b, int wait_ms, int strict, char *out, size_t outlen,
          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *expr = vformat(fmt, ap);
    va_end(ap);
    json_object *v = eval(b, wait_ms, expr);
    int str = v == NULL || json_object_is_type(v, json_type_string);
    ck_assert_msg(str || !strict, "`%.300s` is not a string: %s", expr,
                  json_object_to_json_string(v));
    free(expr);
    snprintf(out, outlen, "%s",
             v == NULL ? ""
             : str     ? json_object_get_string(v)
                       : json_object_to_json_string(v));
    json_object_put(v);
    return out;
}

void
hx_wait_dom(struct cdp *b, int wait_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cond = vformat(fmt, ap);
    va_end(ap);
    int rc = cdp_wait(b, cond, wait_ms);
    free(cond);
    if (rc != 0) {
        char err[sizeof(b->err)], dom[2048];
        snprintf(err, sizeof(err), "%s", b->err);
        hx_js_str(b, wait_ms, 0, dom, sizeof(dom), "%s",
                  "(document.querySelector('#error')||{}).textContent||''");
        ck_abort_msg("%s (#error: \"%s\")", err, dom);
    }
}
