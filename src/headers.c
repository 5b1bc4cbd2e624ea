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

const struct gw_error_row *
headers_check_framing(const struct evkeyvalq *hdrs)
{
    size_t ncl = headers_count(hdrs, "Content-Length");
    size_t nte = headers_count(hdrs, "Transfer-Encoding");
    if (ncl > 0 && nte > 0)
        return reply_row(GW_ERR_CL_AND_TE);
    if (ncl > 1)
        return reply_row(GW_ERR_TWO_CL);
    if (nte > 1)
        return reply_row(GW_ERR_TWO_TE);
    const char *te = evhttp_find_header(hdrs, "Transfer-Encoding");
    if (te != NULL && strcasecmp(te, "chunked") != 0)
        return reply_row(GW_ERR_TE_NOT_CHUNKED);
    const char *cl = evhttp_find_header(hdrs, "Content-Length");
    if (cl != NULL && !is_decimal(cl))
        return reply_row(GW_ERR_CL_NOT_DECIMAL);
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

/* ---- header names ---- */

int
headers_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
is_token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!headers_is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

const struct gw_error_row *
headers_check_names(const struct evkeyvalq *hdrs)
{
    const struct evkeyval *h;
    TAILQ_FOREACH(h, hdrs, next)
    {
        if (!is_token(h->key))
            return reply_row(GW_ERR_BAD_HEADER_NAME);
    }
    return NULL;
}

/* ---- the request head, byte by byte ---- */

enum { HL_METHOD = 0, HL_TARGET, HL_LINE, HL_NAME, HL_VALUE, HL_DONE };
enum { HW_OTHER = 0, HW_CL, HW_TE, HW_EXPECT, HW_REQID };

void
headers_lex_init(struct headers_lexer *lx, uint64_t max_body)
{
    memset(lx, 0, sizeof(*lx));
    lx->max_body = max_body;
    lx->path_fits = 1;
    lx->path_open = 1;
    lx->minor = -1;
}

static int
refuse(struct headers_lexer *lx, enum gw_error e)
{
    lx->refusal = reply_row(e);
    return -1;
}

/* evhttp 2.1 knows nine methods; any other it answers 501 itself */
static int
method_known(const char *m)
{
    static const char *const known[] = {"GET",   "POST",    "HEAD",
                                        "PUT",   "DELETE",  "OPTIONS",
                                        "TRACE", "CONNECT", "PATCH"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(m, known[i]) == 0)
            return 1;
    return 0;
}

static int
method_byte(struct headers_lexer *lx, unsigned char c)
{
    if (c == ' ') {
        if (lx->len == 0)
            return refuse(lx, GW_ERR_BAD_LINE);
        lx->method_known =
            lx->len <= HEADERS_METHOD_MAX && method_known(lx->method);
        lx->state = HL_TARGET;
        lx->len = 0;
        return 0;
    }
    if (!headers_is_tchar(c))
        return refuse(lx, GW_ERR_BAD_LINE);
    if (lx->len < HEADERS_METHOD_MAX)
        lx->method[lx->len] = (char)c;
    lx->len++; /* past the cap: kept as too long, an unknown method */
    return 0;
}

/* The target is the router's business; the lexer keeps its path (for the
 * log and the 405) and the last word of the line, the version. */
static int
target_byte(struct headers_lexer *lx, unsigned char c)
{
    if (c == '\0')
        return refuse(lx, GW_ERR_BAD_LINE);
    if (lx->path_open) {
        if (c == '?' || c == '#' || c == ' ')
            lx->path_open = 0;
        else if (lx->len < HEADERS_PATH_MAX)
            lx->path[lx->len++] = (char)c;
        else
            lx->path_fits = lx->path_open = 0;
    }
    if (c == ' ') {
        if (lx->words == 0)
            return refuse(lx, GW_ERR_BAD_LINE); /* two spaces after the method */
        if (lx->in_word) {
            memcpy(lx->last, lx->tail, sizeof(lx->tail));
            lx->last_len = lx->tail_len;
            lx->in_word = 0;
        }
        return 0;
    }
    if (!lx->in_word) {
        lx->in_word = 1;
        lx->words++;
        lx->tail_len = 0;
    }
    if (lx->tail_len < sizeof(lx->tail) - 1)
        lx->tail[lx->tail_len] = (char)c;
    lx->tail_len++;
    return 0;
}

static int
request_line_end(struct headers_lexer *lx)
{
    if (lx->in_word) {
        memcpy(lx->last, lx->tail, sizeof(lx->tail));
        lx->last_len = lx->tail_len;
    }
    if (lx->words < 2)
        return refuse(lx, GW_ERR_BAD_LINE);
    const char *v = lx->last;
    if (lx->last_len == 8 && strncmp(v, "HTTP/1.", 7) == 0 &&
        (v[7] == '0' || v[7] == '1')) {
        lx->minor = v[7] - '0';
    } else if (lx->last_len == 8 && strncmp(v, "HTTP/", 5) == 0 &&
               isdigit((unsigned char)v[5]) && v[6] == '.' &&
               isdigit((unsigned char)v[7])) {
        return refuse(lx, GW_ERR_HTTP_VERSION);
    } else {
        return refuse(lx, GW_ERR_BAD_VERSION);
    }
    if (!lx->method_known)
        return refuse(lx, GW_ERR_METHOD_NOT_ALLOWED);
    lx->state = HL_LINE;
    return 0;
}

static int
line_start(struct headers_lexer *lx, unsigned char c)
{
    if (c == ' ' || c == '\t')
        return refuse(lx, GW_ERR_FOLDED_HEADER);
    if (!headers_is_tchar(c))
        return refuse(lx, GW_ERR_BAD_HEADER_NAME);
    lx->name[0] = (char)tolower(c);
    lx->len = 1;
    lx->state = HL_NAME;
    return 0;
}

static int
classify(const struct headers_lexer *lx)
{
    static const struct {
        const char *name;
        int which;
    } kept[] = {{"content-length", HW_CL},
                {"transfer-encoding", HW_TE},
                {"expect", HW_EXPECT},
                {"x-request-id", HW_REQID}};
    if (lx->len >= sizeof(lx->name))
        return HW_OTHER;
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        if (strlen(kept[i].name) == lx->len &&
            memcmp(lx->name, kept[i].name, lx->len) == 0)
            return kept[i].which;
    return HW_OTHER;
}

static int
name_byte(struct headers_lexer *lx, unsigned char c)
{
    if (c == ':') {
        lx->which = classify(lx);
        lx->vlen = 0;
        lx->value_cut = 0;
        lx->lead = 1;
        lx->state = HL_VALUE;
        return 0;
    }
    if (!headers_is_tchar(c))
        return refuse(lx, GW_ERR_BAD_HEADER_NAME);
    if (lx->len < sizeof(lx->name))
        lx->name[lx->len++] = (char)tolower(c);
    return 0;
}

/* Where a kept value is written: the first X-Request-Id straight into
 * request_id, the framing values into value. */
static char *
value_buf(struct headers_lexer *lx, size_t *cap)
{
    if (lx->which == HW_REQID && !lx->reqid_seen) {
        *cap = REQID_MAX;
        return lx->request_id;
    }
    *cap = HEADERS_VALUE_MAX;
    return lx->value;
}

static int
value_byte(struct headers_lexer *lx, unsigned char c)
{
    if (c != '\t' && (c < 0x20 || c == 0x7f))
        return refuse(lx, GW_ERR_BAD_HEADER_VALUE);
    if (lx->which == HW_OTHER)
        return 0;
    /* kept as evhttp keeps it: leading spaces dropped */
    if (lx->lead && c == ' ')
        return 0;
    lx->lead = 0;
    size_t cap;
    char *buf = value_buf(lx, &cap);
    if (lx->vlen < cap)
        buf[lx->vlen++] = (char)c;
    else
        lx->value_cut = 1;
    return 0;
}

static int
is_value(const struct headers_lexer *lx, const char *want)
{
    size_t n = strlen(want);
    return !lx->value_cut && lx->vlen == n &&
           strncasecmp(lx->value, want, n) == 0;
}

static void
value_end(struct headers_lexer *lx)
{
    size_t cap;
    char *buf = value_buf(lx, &cap);
    while (lx->vlen > 0 &&
           (buf[lx->vlen - 1] == ' ' || buf[lx->vlen - 1] == '\t'))
        lx->vlen--;
    buf[lx->vlen] = '\0';
    switch (lx->which) {
    case HW_CL:
        lx->n_cl++;
        if (lx->value_cut || lx->vlen == 0 || lx->vlen > 18)
            lx->cl_bad = 1;
        for (size_t i = 0; i < lx->vlen && !lx->cl_bad; i++) {
            if (!isdigit((unsigned char)lx->value[i]))
                lx->cl_bad = 1;
            else
                lx->content_length =
                    lx->content_length * 10 + (uint64_t)(lx->value[i] - '0');
        }
        break;
    case HW_TE:
        lx->n_te++;
        lx->te_other |= !is_value(lx, "chunked");
        break;
    case HW_EXPECT:
        lx->expect_other |= !is_value(lx, "100-continue");
        break;
    case HW_REQID:
        if (!lx->reqid_seen && lx->value_cut)
            lx->request_id[0] = '\0'; /* too long: a new id is made */
        lx->reqid_seen = 1;
        break;
    }
    lx->state = HL_LINE;
}

/* The blank line: the framing checks of SPEC section 6, and the body
 * rules evhttp applies in ways a gateway must not follow. */
static int
head_end(struct headers_lexer *lx)
{
    if (lx->n_cl > 0 && lx->n_te > 0)
        return refuse(lx, GW_ERR_CL_AND_TE);
    if (lx->n_cl > 1)
        return refuse(lx, GW_ERR_TWO_CL);
    if (lx->n_te > 1)
        return refuse(lx, GW_ERR_TWO_TE);
    if (lx->te_other)
        return refuse(lx, GW_ERR_TE_NOT_CHUNKED);
    if (lx->cl_bad)
        return refuse(lx, GW_ERR_CL_NOT_DECIMAL);
    int body = lx->n_te > 0 || lx->content_length > 0;
    if (body &&
        (strcmp(lx->method, "HEAD") == 0 || strcmp(lx->method, "TRACE") == 0))
        return refuse(lx, GW_ERR_HEAD_WITH_BODY);
    if (lx->content_length > lx->max_body)
        return refuse(lx, GW_ERR_BODY_TOO_LARGE);
    if (body && lx->expect_other && lx->minor == 1)
        return refuse(lx, GW_ERR_EXPECTATION);
    lx->state = HL_DONE;
    return 1;
}

static int
line_end(struct headers_lexer *lx)
{
    switch (lx->state) {
    case HL_TARGET:
        return request_line_end(lx);
    case HL_LINE:
        return head_end(lx);
    case HL_VALUE:
        value_end(lx);
        return 0;
    case HL_NAME:
        return refuse(lx, GW_ERR_BAD_HEADER_NAME);
    default:
        return refuse(lx, GW_ERR_BAD_LINE);
    }
}

/* One byte; 0 to go on, 1 at the end of the head, -1 when refused. A CR is
 * held until the next byte says whether it ends the line. */
static int
lex_byte(struct headers_lexer *lx, unsigned char c)
{
    if (++lx->head_len > HEADERS_HEAD_MAX)
        return refuse(lx, GW_ERR_HEADERS_TOO_LARGE);
    if (lx->cr) {
        lx->cr = 0;
        if (c == '\n')
            return line_end(lx);
        if (lx->state != HL_TARGET) /* evhttp keeps it in the target only */
            return refuse(lx, lx->state == HL_VALUE ? GW_ERR_BAD_HEADER_VALUE
                                               : GW_ERR_BAD_HEADER_NAME);
        target_byte(lx, '\r');
    }
    if (c == '\n')
        return line_end(lx);
    if (c == '\r' && lx->state != HL_METHOD && lx->state != HL_NAME) {
        lx->cr = 1;
        return 0;
    }
    switch (lx->state) {
    case HL_METHOD:
        return method_byte(lx, c);
    case HL_TARGET:
        return target_byte(lx, c);
    case HL_LINE:
        return line_start(lx, c);
    case HL_NAME:
        return name_byte(lx, c);
    default:
        return value_byte(lx, c);
    }
}

enum headers_lex_result
headers_lex(struct headers_lexer *lx, const char *p, size_t n, size_t *used)
{
    *used = 0;
    if (lx->refusal != NULL)
        return HEADERS_LEX_REFUSED;
    if (lx->state == HL_DONE)
        return HEADERS_LEX_DONE;
    for (size_t i = 0; i < n; i++) {
        int r = lex_byte(lx, (unsigned char)p[i]);
        if (r != 0) {
            *used = i + 1;
            return r > 0 ? HEADERS_LEX_DONE : HEADERS_LEX_REFUSED;
        }
    }
    *used = n;
    return HEADERS_LEX_MORE;
}
