/* route.h - the route table of SPEC section 2. Pure: path in, route out.
 *
 * Routing uses the path alone (never the host of an absolute-form target)
 * and matches it byte for byte, undecoded: a path the table does not list is
 * ROUTE_NONE and is never forwarded. */
#ifndef WAGATE_ROUTE_H
#define WAGATE_ROUTE_H

enum route_id {
    ROUTE_NONE = 0,
    ROUTE_SEND_FREEFORM,
    ROUTE_SEND,
    ROUTE_SESSION_STATUS,
    ROUTE_SENDERS,
    ROUTE_TEMPLATES,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_ADMIN,
    ROUTE_COUNT
};

/* How the gateway treats a route. */
enum route_kind {
    ROUTE_KIND_NONE,
    ROUTE_KIND_SEND,  /* POST with a JSON body, forwarded after pre-check */
    ROUTE_KIND_READ,  /* GET, forwarded */
    ROUTE_KIND_LOCAL, /* answered by the gateway */
    ROUTE_KIND_ADMIN, /* admin API */
};

struct route_info {
    enum route_id id;
    const char *name;  /* for logs and metrics, e.g. "send_freeform" */
    enum route_kind kind;
    int methods;       /* evhttp_cmd_type bits; 0 = any (admin) */
    const char *allow; /* the Allow header for a 405 */
};

/* The route for path (without query). Never NULL: ROUTE_NONE's info when
 * nothing matches. */
const struct route_info *route_match(const char *path);

/* The info of a route id. */
const struct route_info *route_get(enum route_id id);

/* For ROUTE_TEMPLATES: the sender id in the path, or -1. */
long long route_templates_sender(const char *path);

#endif
