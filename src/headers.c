/* headers.c - see headers.h. */
#include "headers.h"

#include <ctype.h>
#include <sys/queue.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <string.h>
#include <strings.h>

static const char *const hop_by_hop[] = {
    "Connection", "Keep-Alive",        "Proxy-Connection", "TE",
    "Trailer",    "Transfer-Encoding", "Upgrade",          "Proxy-Authenticate",
    "Proxy-Authorization", "Content-Length",
};

int
headers_is_hop_by_hop(const char *name)
{
    for (size_t i = 0; i < sizeof(hop_by_hop) / sizeof(hop_by_hop[0]); i++)
        if (strcasecmp(name, hop_by_hop[i]) == 0)
            return 1;
    return 0;
}

/* 1 if the comma-separated token list contains name. */
static int
list_has_token(const char *list, const char *name)
{
    size_t n = strlen(name);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        if ((size_t)(p - start) == n && strncasecmp(start, name, n) == 0)
            return 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

int
headers_drop_from_upstream(const char *name, const char *connection_value)
{
    if (headers_is_hop_by_hop(name) || strcasecmp(name, "X-Wagate") == 0 ||
        strcasecmp(name, "X-Request-Id") == 0)
        return 1;
    return connection_value != NULL && list_has_token(connection_value, name);
}

size_t
headers_count(const struct evkeyvalq *hdrs, const char *name)
{
    size_t n = 0;
    const struct evkeyval *h;
    TAILQ_FOREACH(h, hdrs, next)
    {
        if (strcasecmp(h->key, name) == 0)
            n++;
    }
    return n;
}

static int
is_decimal(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (!isdigit((unsigned char)*s))
        return 0;
    while (isdigit((unsigned char)*s))
        s++;
    while (*s == ' ' || *s == '\t')
        s++;
    return *s == '\0';
}

const char *
headers_check_framing(const struct evkeyvalq *hdrs)
{
    size_t ncl = headers_count(hdrs, "Content-Length");
    size_t nte = headers_count(hdrs, "Transfer-Encoding");
    if (ncl > 0 && nte > 0)
        return "Both Content-Length and Transfer-Encoding are present.";
    if (ncl > 1)
        return "More than one Content-Length header.";
    if (nte > 1)
        return "More than one Transfer-Encoding header.";
    const char *te = evhttp_find_header(hdrs, "Transfer-Encoding");
    if (te != NULL && strcasecmp(te, "chunked") != 0)
        return "Transfer-Encoding other than chunked.";
    const char *cl = evhttp_find_header(hdrs, "Content-Length");
    if (cl != NULL && !is_decimal(cl))
        return "Content-Length is not a decimal number.";
    return NULL;
}

int
headers_is_json_type(const char *value)
{
    static const char want[] = "application/json";
    if (value == NULL)
        return 0;
    while (*value == ' ' || *value == '\t')
        value++;
    if (strncasecmp(value, want, sizeof(want) - 1) != 0)
        return 0;
    const char *p = value + sizeof(want) - 1;
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == '\0' || *p == ';';
}
