/* route.c - see route.h. */
#include "route.h"

#include <event2/http.h>
#include <string.h>

#define API "/api/user/whatsapp"

static const struct route_info route_table[ROUTE_COUNT] = {
    [ROUTE_NONE] = {ROUTE_NONE, "unknown", ROUTE_KIND_NONE, 0, NULL},
    [ROUTE_SEND_FREEFORM] = {ROUTE_SEND_FREEFORM, "send_freeform",
                             ROUTE_KIND_SEND, EVHTTP_REQ_POST, "POST"},
    [ROUTE_SEND] = {ROUTE_SEND, "send", ROUTE_KIND_SEND, EVHTTP_REQ_POST,
                    "POST"},
    [ROUTE_SESSION_STATUS] = {ROUTE_SESSION_STATUS, "session_status",
                              ROUTE_KIND_READ, EVHTTP_REQ_GET, "GET"},
    [ROUTE_SENDERS] = {ROUTE_SENDERS, "senders", ROUTE_KIND_READ,
                       EVHTTP_REQ_GET, "GET"},
    [ROUTE_TEMPLATES] = {ROUTE_TEMPLATES, "templates", ROUTE_KIND_READ,
                         EVHTTP_REQ_GET, "GET"},
    /* HEAD too: load balancers probe with it */
    [ROUTE_HEALTHZ] = {ROUTE_HEALTHZ, "healthz", ROUTE_KIND_LOCAL,
                       EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD"},
    [ROUTE_READYZ] = {ROUTE_READYZ, "readyz", ROUTE_KIND_LOCAL,
                      EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD"},
    [ROUTE_METRICS] = {ROUTE_METRICS, "metrics", ROUTE_KIND_LOCAL,
                       EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD"},
    [ROUTE_ADMIN] = {ROUTE_ADMIN, "admin", ROUTE_KIND_ADMIN, 0, NULL},
};

static const struct {
    const char *path;
    enum route_id id;
} route_exact[] = {
    {API "/send-freeform", ROUTE_SEND_FREEFORM},
    {API "/send", ROUTE_SEND},
    {API "/session-status", ROUTE_SESSION_STATUS},
    {API "/senders", ROUTE_SENDERS},
    {"/healthz", ROUTE_HEALTHZ},
    {"/readyz", ROUTE_READYZ},
    {"/metrics", ROUTE_METRICS},
    {"/admin", ROUTE_ADMIN},
};

long long
route_templates_sender(const char *path)
{
    static const char prefix[] = API "/senders/";
    static const char suffix[] = "/templates";
    if (strncmp(path, prefix, sizeof(prefix) - 1) != 0)
        return -1;
    const char *p = path + sizeof(prefix) - 1;
    long long id = 0;
    int digits = 0;
    /* a sender id is a positive integer that fits: at most 18 digits,
     * written without leading zeros */
    if (*p == '0')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (++digits > 18)
            return -1;
        id = id * 10 + (*p - '0');
    }
    if (digits == 0 || strcmp(p, suffix) != 0)
        return -1;
    return id;
}

const struct route_info *
route_match(const char *path)
{
    for (size_t i = 0; i < sizeof(route_exact) / sizeof(route_exact[0]); i++)
        if (strcmp(path, route_exact[i].path) == 0)
            return &route_table[route_exact[i].id];
    if (strncmp(path, "/admin/", 7) == 0)
        return &route_table[ROUTE_ADMIN];
    if (route_templates_sender(path) >= 0)
        return &route_table[ROUTE_TEMPLATES];
    return &route_table[ROUTE_NONE];
}

const struct route_info *
route_get(enum route_id id)
{
    return &route_table[id < ROUTE_COUNT ? id : ROUTE_NONE];
}
