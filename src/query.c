/* query.c - see query.h.
 *
 * Two passes over the raw bytes: the first judges the syntax of the whole
 * string (so a malformed query is 400 wherever the fault is), the second
 * decodes each pair into small bounded buffers and judges it against the
 * spec. Nothing is allocated; the work is linear in the length. */
#include "query.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hex.h"

#define QUERY_MAX_KEYS 2
#define QUERY_VALUE_MAX 32 /* decoded bytes kept of a value; longer is bad */

enum qv_kind { QV_SENDER_ID, QV_PHONE, QV_STATUS };

struct qparam {
    const char *key;
    enum qv_kind kind;
    int required;
    const char *const *values; /* QV_STATUS: the accepted ones, NULL-ended */
    enum gw_error bad;         /* a bad value (reply.h's rows) */
    enum gw_error missing;     /* a required key absent */
};

struct qspec {
    size_t n;
    struct qparam p[QUERY_MAX_KEYS];
};

static const char *const senders_status[] = {"online", "all", NULL};
static const char *const templates_status[] = {"approved", "all", NULL};
static const char *const refusal_kinds[] = {"balance", NULL};

static const struct qspec specs[QUERY_SPEC_COUNT] = {
    [QUERY_NONE] = {0, {{NULL, QV_STATUS, 0, NULL, 0, 0}}},
    [QUERY_SESSION] = {2,
                       {{"sender_id", QV_SENDER_ID, 1, NULL,
                         GW_ERR_QUERY_SENDER_ID, GW_ERR_SENDER_ID_MISSING},
                        {"recipient_phone", QV_PHONE, 1, NULL,
                         GW_ERR_INVALID_PHONE, GW_ERR_RECIPIENT_MISSING}}},
    [QUERY_SENDERS] = {1,
                       {{"status", QV_STATUS, 0, senders_status,
                         GW_ERR_QUERY_SENDERS_STATUS, 0}}},
    [QUERY_TEMPLATES] = {1,
                         {{"status", QV_STATUS, 0, templates_status,
                           GW_ERR_QUERY_TEMPLATES_STATUS, 0}}},
    [QUERY_REFUSALS] = {2,
                        {{"sender_id", QV_SENDER_ID, 0, NULL,
                          GW_ERR_QUERY_SENDER_ID, 0},
                         {"kind", QV_STATUS, 0, refusal_kinds,
                          GW_ERR_QUERY_REFUSAL_KIND, 0}}},
};

/* ---- verdicts ---- */

static void
refuse(struct query_result *r, enum gw_error e, const char *field,
       size_t field_len)
{
    const struct gw_error_row *row = reply_row(e);
    r->error = e;
    r->status = row->status;
    r->code = row->code;
    r->sentence = row->sentence;
    if (field_len > QUERY_FIELD_MAX)
        field_len = QUERY_FIELD_MAX;
    memcpy(r->field, field, field_len);
    r->field[field_len] = '\0';
}

static void
malformed(struct query_result *r, enum gw_error e)
{
    refuse(r, e, "", 0);
}

/* ---- pass 1: syntax ---- */

static int
visible(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

/* Checks the escape at q[i] (a '%') of q[0..len); sets *byte to what it
 * decodes to. */
static int
escape_ok(const char *q, size_t len, size_t i, unsigned char *byte)
{
    if (i + 2 >= len)
        return 0;
    int hi = hex_value(q[i + 1]), lo = hex_value(q[i + 2]);
    if (hi < 0 || lo < 0)
        return 0;
    *byte = (unsigned char)(hi << 4 | lo);
    return 1;
}

/* One pair q[start..end): returns NULL when well-formed, else the row of
 * its refusal. */
static const struct gw_error_row *
pair_syntax(const char *q, size_t start, size_t end)
{
    int in_key = 1;
    if (start == end)
        return reply_row(GW_ERR_QUERY_EMPTY_PARAM);
    if (q[start] == '=')
        return reply_row(GW_ERR_QUERY_EMPTY_NAME);
    for (size_t i = start; i < end; i++) {
        unsigned char c = (unsigned char)q[i], byte = c;
        if (!visible(c))
            return reply_row(GW_ERR_QUERY_BYTE);
        if (c == '=' && in_key) {
            in_key = 0;
            continue;
        }
        if (c == '%') {
            if (!escape_ok(q, end, i, &byte))
                return reply_row(GW_ERR_QUERY_ESCAPE);
            if (byte == 0)
                return reply_row(GW_ERR_QUERY_NUL);
            i += 2;
        } else if (c == '+') {
            byte = ' ';
        }
        if (in_key && !visible(byte))
            return reply_row(GW_ERR_QUERY_NAME_BYTE);
    }
    if (in_key)
        return reply_row(GW_ERR_QUERY_NO_EQUALS);
    return NULL;
}

static int
syntax_ok(const char *q, size_t len, struct query_result *r)
{
    if (len == 0)
        return 1;
    for (size_t start = 0;;) {
        const char *amp = memchr(q + start, '&', len - start);
        size_t end = amp ? (size_t)(amp - q) : len;
        const struct gw_error_row *bad = pair_syntax(q, start, end);
        if (bad != NULL) {
            malformed(r, reply_error_id(bad));
            return 0;
        }
        if (amp == NULL)
            return 1;
        start = end + 1; /* a trailing '&' leaves an empty pair: refused */
    }
}

/* ---- pass 2: the pairs against the spec ---- */

/* Decodes s[0..n) (well-formed: pass 1 judged it) into out, keeping at
 * most cap bytes and a NUL; returns the full decoded length. */
static size_t
decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++, o++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            c = (char)(hex_value(s[i + 1]) << 4 | hex_value(s[i + 2]));
            i += 2;
        }
        if (o < cap)
            out[o] = c;
    }
    out[o < cap ? o : cap] = '\0';
    return o;
}

/* ^[1-9][0-9]{0,18}$ within INT64_MAX; -1 otherwise. */
static long long
sender_value(const char *s, size_t n)
{
    unsigned long long v = 0;
    if (n == 0 || n > 19 || s[0] < '1' || s[0] > '9')
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long long)(s[i] - '0');
    }
    return v > (unsigned long long)INT64_MAX ? -1 : (long long)v;
}

/* Judges one value; fills v. 0 when good. */
static int
value_ok(const struct qparam *p, const char *s, size_t n,
         struct query_values *v)
{
    switch (p->kind) {
    case QV_SENDER_ID:
        v->sender_id = sender_value(s, n);
        return v->sender_id >= 1 ? 0 : -1;
    case QV_PHONE:
        if (n > PRECHECK_PHONE_MAX || strlen(s) != n || !precheck_is_e164(s))
            return -1;
        memcpy(v->recipient, s, n + 1);
        return 0;
    case QV_STATUS:
        for (size_t i = 0; p->values[i] != NULL; i++)
            if (strlen(p->values[i]) == n && memcmp(p->values[i], s, n) == 0) {
                v->status = p->values[i];
                return 0;
            }
        return -1;
    }
    return -1;
}

static const struct qparam *
find_param(const struct qspec *sp, const char *key, size_t klen, size_t *idx)
{
    for (size_t j = 0; j < sp->n; j++)
        if (strlen(sp->p[j].key) == klen &&
            memcmp(sp->p[j].key, key, klen) == 0) {
            *idx = j;
            return &sp->p[j];
        }
    return NULL;
}

/* One well-formed pair pair[0..n). 0 when good. */
static int
judge_pair(const struct qspec *sp, const char *pair, size_t n, int *seen,
           struct query_values *v, struct query_result *r)
{
    char key[QUERY_FIELD_MAX + 1], val[QUERY_VALUE_MAX + 1];
    const char *eq = memchr(pair, '=', n);
    size_t klen = decode(pair, (size_t)(eq - pair), key, QUERY_FIELD_MAX);
    size_t vlen =
        decode(eq + 1, n - (size_t)(eq - pair) - 1, val, QUERY_VALUE_MAX);
    size_t j = 0;
    const struct qparam *p = find_param(sp, key, klen, &j);
    if (p == NULL) {
        refuse(r, GW_ERR_QUERY_UNKNOWN_KEY, key, klen);
        return -1;
    }
    if (seen[j]) {
        refuse(r, GW_ERR_QUERY_REPEATED_KEY, key, klen);
        return -1;
    }
    seen[j] = 1;
    if (vlen <= QUERY_VALUE_MAX && value_ok(p, val, vlen, v) == 0)
        return 0;
    if (p->kind == QV_PHONE) /* INVALID_PHONE names no field */
        refuse(r, p->bad, "", 0);
    else
        refuse(r, p->bad, key, klen);
    return -1;
}

static void
clear_values(struct query_values *v)
{
    v->sender_id = -1;
    v->recipient[0] = '\0';
    v->status = NULL;
}

int
query_parse(enum query_spec spec, const char *q, size_t len,
            struct query_result *r)
{
    const struct qspec *sp = &specs[spec < QUERY_SPEC_COUNT ? spec : 0];
    int seen[QUERY_MAX_KEYS] = {0};
    memset(r, 0, sizeof(*r));
    clear_values(&r->v);
    if (q == NULL)
        len = 0;
    if (!syntax_ok(q, len, r))
        return -1;
    for (size_t start = 0; start < len;) {
        const char *amp = memchr(q + start, '&', len - start);
        size_t end = amp ? (size_t)(amp - q) : len;
        if (judge_pair(sp, q + start, end - start, seen, &r->v, r) != 0) {
            clear_values(&r->v);
            return -1;
        }
        start = end + 1;
    }
    for (size_t j = 0; j < sp->n; j++)
        if (sp->p[j].required && !seen[j]) {
            refuse(r, sp->p[j].missing, sp->p[j].key, strlen(sp->p[j].key));
            clear_values(&r->v);
            return -1;
        }
    return 0;
}

/* ---- the canonical query ---- */

struct out {
    char *buf;
    size_t cap, len;
};

static void
put(struct out *o, char c)
{
    if (o->len + 1 < o->cap)
        o->buf[o->len] = c;
    o->len++;
}

static void
put_str(struct out *o, const char *s)
{
    for (; *s; s++)
        put(o, *s);
}

/* Percent-encodes everything but the unreserved characters (RFC 3986). */
static void
put_encoded(struct out *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || strchr("-._~", c) != NULL) {
            put(o, (char)c);
            continue;
        }
        put(o, '%');
        put(o, hex[c >> 4]);
        put(o, hex[c & 15]);
    }
}

size_t
query_canonical(enum query_spec spec, const struct query_values *v, char *out,
                size_t outlen)
{
    const struct qspec *sp = &specs[spec < QUERY_SPEC_COUNT ? spec : 0];
    struct out o = {out, outlen, 0};
    char num[24];
    for (size_t j = 0; j < sp->n; j++) {
        const struct qparam *p = &sp->p[j];
        const char *val = NULL;
        if (p->kind == QV_SENDER_ID && v->sender_id >= 1) {
            snprintf(num, sizeof(num), "%lld", v->sender_id);
            val = num;
        } else if (p->kind == QV_PHONE && v->recipient[0] != '\0') {
            val = v->recipient;
        } else if (p->kind == QV_STATUS && v->status != NULL) {
            val = v->status;
        }
        if (val == NULL)
            continue;
        if (o.len > 0)
            put(&o, '&');
        put_str(&o, p->key);
        put(&o, '=');
        put_encoded(&o, val);
    }
    if (outlen > 0)
        out[o.len < outlen ? o.len : outlen - 1] = '\0';
    return o.len;
}
