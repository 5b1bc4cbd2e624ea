/* http_method.h - the name of an evhttp request method, as it is written
 * on the request line ("GET", "POST", ...). Used for log lines and the
 * sandbox's request log; no policy (which methods a route takes is the
 * caller's business). */
#ifndef WAGATE_HTTP_METHOD_H
#define WAGATE_HTTP_METHOD_H

#include <event2/http.h>

/* A static string; "?" for a value libevent does not define. */
const char *http_method_name(enum evhttp_cmd_type m);

#endif
