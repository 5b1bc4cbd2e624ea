/* precheck.c - see precheck.h.
 *
 * A strict RFC 8259 parser of its own (json-c cannot report duplicate keys
 * or lone surrogates). One pass over the body, which has already been found
 * to be valid UTF-8: every string is decoded into one scratch buffer of the
 * body's size (decoding only shrinks), the keys of each open object are kept
 * on a stack and sorted when the object closes to find a duplicate in
 * O(k log k), and the values of the top-level members this module knows are
 * remembered for the field checks. A lone surrogate escape is decoded as its
 * three-byte (WTF-8) form and only flagged: INVALID_JSON outranks it. */
#include "precheck.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define JSON_MAX_DEPTH 64      /* containers nested deeper: INVALID_JSON */
#define RECIPIENT_NAME_MAX 255 /* code points */

const char precheck_invalid_phone_sentence[] =
    "Invalid phone number format. Use E.164 format (e.g., +14155551234).";

/* ---- verdicts ---- */

struct verdict {
    int status;
    const char *code;
    const char *sentence;
    const char *field;
};

static const struct verdict v_json = {
    400, "INVALID_JSON",
    "The request body must be one JSON object in UTF-8, with no key twice "
    "and nothing but whitespace after it.",
    NULL};
static const struct verdict v_encoding = {
    422, "INVALID_ENCODING",
    "A string in the request body contains an unpaired surrogate escape.",
    NULL};
static const struct verdict v_sender_id = {
    422, "VALIDATION_ERROR", "sender_id must be an integer of at least 1.",
    "sender_id"};
static const struct verdict v_recipient_type = {
    422, "VALIDATION_ERROR", "recipient_phone must be a string.",
    "recipient_phone"};
static const struct verdict v_phone = {422, "INVALID_PHONE",
                                       precheck_invalid_phone_sentence, NULL};
static const struct verdict v_message = {
    422, "VALIDATION_ERROR",
    "message must be a string with at least one non-whitespace character.",
    "message"};
static const struct verdict v_too_long = {
    422, "MESSAGE_TOO_LONG",
    "The message is longer than the maximum allowed length.", NULL};
static const struct verdict v_template_id = {
    422, "VALIDATION_ERROR", "template_id must be an integer of at least 1.",
    "template_id"};
static const struct verdict v_recipient_name = {
    422, "VALIDATION_ERROR",
    "recipient_name must be a string of at most 255 characters.",
    "recipient_name"};
static const struct verdict v_variables = {
    422, "VALIDATION_ERROR",
    "variables must be an object whose values are strings or numbers.",
    "variables"};

static int
refuse(struct precheck_result *r, const struct verdict *v)
{
    r->status = v->status;
    r->code = v->code;
    r->sentence = v->sentence;
    r->field = v->field;
    return -1;
}

/* ---- UTF-8 and Unicode ---- */

/* Decodes one code point of s[*i..len) per Unicode table 3-7 (no overlong
 * form, no surrogate, nothing above U+10FFFF); advances *i. 0 or -1. */
static int
utf8_next(const unsigned char *s, size_t len, size_t *i, unsigned long *cp)
{
    size_t k = *i;
    unsigned c = s[k];
    unsigned lo = 0x80, hi = 0xBF;
    int n;
    unsigned long v;

    if (c < 0x80) {
        *cp = c;
        *i = k + 1;
        return 0;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 1;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return -1;
    }
    if (len - k - 1 < (size_t)n)
        return -1;
    for (int j = 1; j <= n; j++) {
        unsigned b = s[k + j];
        if (b < lo || b > hi)
            return -1;
        lo = 0x80;
        hi = 0xBF;
        v = (v << 6) | (b & 0x3F);
    }
    *cp = v;
    *i = k + 1 + n;
    return 0;
}

long long
precheck_utf8_count(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    long long n = 0;
    size_t i = 0;
    unsigned long cp;

    while (i < len) {
        if (utf8_next(u, len, &i, &cp) < 0)
            return -1;
        n++;
    }
    return n;
}

static int
is_white_space(unsigned long c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* An invalid sequence is not White_Space, so it counts as a character. */
int
precheck_has_non_space(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    unsigned long cp;

    while (i < len) {
        if (utf8_next(u, len, &i, &cp) < 0 || !is_white_space(cp))
            return 1;
    }
    return 0;
}

/* ---- E.164 ---- */

static int
e164_n(const char *s, size_t n)
{
    if (n < 3 || n > PRECHECK_PHONE_MAX || s[0] != '+' || s[1] < '1' ||
        s[1] > '9')
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return 1;
}

int
precheck_is_e164(const char *s)
{
    return s != NULL && e164_n(s, strnlen(s, PRECHECK_PHONE_MAX + 1));
}

uint64_t
precheck_phone_key(const char *s)
{
    uint64_t k = 0;

    if (!precheck_is_e164(s))
        return 0;
    for (s++; *s; s++)
        k = k * 10 + (uint64_t)(*s - '0');
    return k;
}

/* ---- the JSON parser ---- */

enum jtype { J_NONE, J_OBJ, J_ARR, J_STR, J_NUM, J_TRUE, J_FALSE, J_NULL };

struct jval {
    enum jtype type;   /* J_NONE: member absent */
    const char *str;   /* J_STR: decoded, in the parser's buffer */
    size_t str_len;    /* J_STR: bytes */
    long long cps;     /* J_STR: code points */
    size_t start, end; /* J_NUM: the token in the body */
    int is_int;        /* J_NUM: no fraction, no exponent */
    int scalars;       /* J_OBJ: every member value a string or number */
};

struct jkey {
    const char *p;
    size_t n;
};

enum field {
    F_SENDER_ID,
    F_RECIPIENT_PHONE,
    F_MESSAGE,
    F_TEMPLATE_ID,
    F_RECIPIENT_NAME,
    F_VARIABLES,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "sender_id",   "recipient_phone", "message",
    "template_id", "recipient_name",  "variables",
};

struct parser {
    const unsigned char *s;
    size_t len, pos;
    char *dec; /* decoded strings, len bytes */
    size_t dlen;
    struct jkey *keys; /* keys of the open objects, innermost last */
    size_t nkeys, capkeys;
    int lone; /* a lone surrogate escape was seen */
    struct jval fields[F_COUNT];
};

static int parse_value(struct parser *p, int depth, struct jval *v);

static int
peek(const struct parser *p)
{
    return p->pos < p->len ? p->s[p->pos] : -1;
}

static void
skip_ws(struct parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* Reads four hex digits at s[pos..]; -1 if there are not four. */
static long
hex4(const struct parser *p, size_t pos)
{
    long v = 0;

    if (p->len - pos < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int c = p->s[pos + i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static void
put_cp(struct parser *p, unsigned long c)
{
    char *o = p->dec + p->dlen;

    if (c < 0x80) {
        o[0] = (char)c;
        p->dlen += 1;
    } else if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        p->dlen += 2;
    } else if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        p->dlen += 3;
    } else {
        o[0] = (char)(0xF0 | (c >> 18));
        o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[3] = (char)(0x80 | (c & 0x3F));
        p->dlen += 4;
    }
}

/* At '"'. Escapes take at least as many bytes as their decoded form, so the
 * decoded strings of a body never outgrow a buffer of its size. */
static int
parse_string(struct parser *p, struct jval *v)
{
    v->type = J_STR;
    v->str = p->dec + p->dlen;
    v->cps = 0;
    size_t d0 = p->dlen;

    p->pos++;
    for (;;) {
        int c = peek(p);
        if (c < 0x20) /* end of body or a raw control character */
            return -1;
        if (c == '"') {
            p->pos++;
            break;
        }
        v->cps++;
        if (c >= 0x80) { /* valid UTF-8: copy the sequence */
            size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            memcpy(p->dec + p->dlen, p->s + p->pos, n);
            p->dlen += n;
            p->pos += n;
            continue;
        }
        p->pos++;
        if (c != '\\') {
            p->dec[p->dlen++] = (char)c;
            continue;
        }
        c = peek(p);
        p->pos++;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            p->dec[p->dlen++] = (char)c;
            continue;
        case 'b':
            p->dec[p->dlen++] = '\b';
            continue;
        case 'f':
            p->dec[p->dlen++] = '\f';
            continue;
        case 'n':
            p->dec[p->dlen++] = '\n';
            continue;
        case 'r':
            p->dec[p->dlen++] = '\r';
            continue;
        case 't':
            p->dec[p->dlen++] = '\t';
            continue;
        case 'u':
            break;
        default:
            return -1;
        }
        long u = hex4(p, p->pos);
        if (u < 0)
            return -1;
        p->pos += 4;
        if (u >= 0xD800 && u <= 0xDBFF) {
            long lo = -1;
            if (p->len - p->pos >= 6 && p->s[p->pos] == '\\' &&
                p->s[p->pos + 1] == 'u')
                lo = hex4(p, p->pos + 2);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                p->pos += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            } else {
                p->lone = 1;
            }
        } else if (u >= 0xDC00 && u <= 0xDFFF) {
            p->lone = 1;
        }
        put_cp(p, (unsigned long)u);
    }
    v->str_len = p->dlen - d0;
    return 0;
}

static int
parse_number(struct parser *p, struct jval *v)
{
    v->type = J_NUM;
    v->start = p->pos;
    v->is_int = 1;
    if (peek(p) == '-')
        p->pos++;
    if (peek(p) == '0') {
        p->pos++;
    } else if (peek(p) >= '1' && peek(p) <= '9') {
        while (peek(p) >= '0' && peek(p) <= '9')
            p->pos++;
    } else {
        return -1;
    }
    if (peek(p) == '.') {
        v->is_int = 0;
        p->pos++;
        if (!(peek(p) >= '0' && peek(p) <= '9'))
            return -1;
        while (peek(p) >= '0' && peek(p) <= '9')
            p->pos++;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        v->is_int = 0;
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-')
            p->pos++;
        if (!(peek(p) >= '0' && peek(p) <= '9'))
            return -1;
        while (peek(p) >= '0' && peek(p) <= '9')
            p->pos++;
    }
    v->end = p->pos;
    return 0;
}

static int
parse_literal(struct parser *p, const char *word, enum jtype t, struct jval *v)
{
    size_t n = strlen(word);

    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return -1;
    p->pos += n;
    v->type = t;
    return 0;
}

static int
key_cmp(const void *a, const void *b)
{
    const struct jkey *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);

    if (c != 0)
        return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

static int
has_duplicate(struct jkey *k, size_t n)
{
    if (n < 2)
        return 0;
    qsort(k, n, sizeof(*k), key_cmp);
    for (size_t i = 1; i < n; i++) {
        if (key_cmp(&k[i - 1], &k[i]) == 0)
            return 1;
    }
    return 0;
}

static void
push_key(struct parser *p, const struct jval *k)
{
    if (p->nkeys == p->capkeys) {
        p->capkeys = p->capkeys ? p->capkeys * 2 : 32;
        p->keys = xrealloc(p->keys, p->capkeys * sizeof(*p->keys));
    }
    p->keys[p->nkeys].p = k->str;
    p->keys[p->nkeys].n = k->str_len;
    p->nkeys++;
}

static void
record_field(struct parser *p, const struct jval *k, const struct jval *v)
{
    for (int f = 0; f < F_COUNT; f++) {
        if (strlen(field_names[f]) == k->str_len &&
            memcmp(field_names[f], k->str, k->str_len) == 0) {
            p->fields[f] = *v;
            return;
        }
    }
}

/* At '{'; depth is this object's. */
static int
parse_object(struct parser *p, int depth, struct jval *v)
{
    size_t first = p->nkeys;
    int dup;

    v->type = J_OBJ;
    v->scalars = 1;
    p->pos++;
    skip_ws(p);
    if (peek(p) == '}') {
        p->pos++;
        return 0;
    }
    for (;;) {
        struct jval k = {0}, m = {0};
        skip_ws(p);
        if (peek(p) != '"' || parse_string(p, &k) < 0)
            return -1;
        push_key(p, &k);
        skip_ws(p);
        if (peek(p) != ':')
            return -1;
        p->pos++;
        if (parse_value(p, depth + 1, &m) < 0)
            return -1;
        if (m.type != J_STR && m.type != J_NUM)
            v->scalars = 0;
        if (depth == 1)
            record_field(p, &k, &m);
        skip_ws(p);
        if (peek(p) == ',') {
            p->pos++;
        } else if (peek(p) == '}') {
            p->pos++;
            break;
        } else {
            return -1;
        }
    }
    dup = has_duplicate(p->keys + first, p->nkeys - first);
    p->nkeys = first;
    return dup ? -1 : 0;
}

/* At '['; depth is this array's. */
static int
parse_array(struct parser *p, int depth, struct jval *v)
{
    v->type = J_ARR;
    p->pos++;
    skip_ws(p);
    if (peek(p) == ']') {
        p->pos++;
        return 0;
    }
    for (;;) {
        struct jval m = {0};
        if (parse_value(p, depth + 1, &m) < 0)
            return -1;
        skip_ws(p);
        if (peek(p) == ',') {
            p->pos++;
        } else if (peek(p) == ']') {
            p->pos++;
            return 0;
        } else {
            return -1;
        }
    }
}

/* Skips leading whitespace; a container found here is at depth. */
static int
parse_value(struct parser *p, int depth, struct jval *v)
{
    skip_ws(p);
    switch (peek(p)) {
    case '{':
        return depth > JSON_MAX_DEPTH ? -1 : parse_object(p, depth, v);
    case '[':
        return depth > JSON_MAX_DEPTH ? -1 : parse_array(p, depth, v);
    case '"':
        return parse_string(p, v);
    case 't':
        return parse_literal(p, "true", J_TRUE, v);
    case 'f':
        return parse_literal(p, "false", J_FALSE, v);
    case 'n':
        return parse_literal(p, "null", J_NULL, v);
    default:
        return parse_number(p, v);
    }
}

/* One object, JSON whitespace around it, nothing else. */
static int
parse_document(struct parser *p)
{
    struct jval top = {0};

    skip_ws(p);
    if (peek(p) != '{' || parse_value(p, 1, &top) < 0)
        return -1;
    skip_ws(p);
    return p->pos == p->len ? 0 : -1;
}

/* ---- field checks ---- */

/* The value of a JSON integer in [1, LLONG_MAX], else -1. */
static long long
positive_int(const struct parser *p, const struct jval *v)
{
    long long n = 0;

    if (v->type != J_NUM || !v->is_int || p->s[v->start] == '-')
        return -1;
    for (size_t i = v->start; i < v->end; i++) {
        int d = p->s[i] - '0';
        if (n > (LLONG_MAX - d) / 10)
            return -1;
        n = n * 10 + d;
    }
    return n >= 1 ? n : -1;
}

static int
is_phone(const struct jval *v)
{
    return v->type == J_STR && e164_n(v->str, v->str_len);
}

static int
optional(const struct jval *v)
{
    return v->type == J_NONE || v->type == J_NULL;
}

static int
check_fields(enum precheck_kind kind, const struct parser *p,
             long long max_chars, struct precheck_result *r)
{
    const struct jval *f = p->fields;

    if (r->sender_id < 0)
        return refuse(r, &v_sender_id);
    if (f[F_RECIPIENT_PHONE].type != J_STR)
        return refuse(r, &v_recipient_type);
    if (!is_phone(&f[F_RECIPIENT_PHONE]))
        return refuse(r, &v_phone);

    if (kind == PRECHECK_FREEFORM) {
        const struct jval *m = &f[F_MESSAGE];
        if (m->type != J_STR || !precheck_has_non_space(m->str, m->str_len))
            return refuse(r, &v_message);
        if (m->cps > max_chars) {
            r->length = m->cps;
            r->max_length = max_chars;
            return refuse(r, &v_too_long);
        }
        return 0;
    }

    if (positive_int(p, &f[F_TEMPLATE_ID]) < 0)
        return refuse(r, &v_template_id);
    if (!optional(&f[F_RECIPIENT_NAME]) &&
        (f[F_RECIPIENT_NAME].type != J_STR ||
         f[F_RECIPIENT_NAME].cps > RECIPIENT_NAME_MAX))
        return refuse(r, &v_recipient_name);
    if (!optional(&f[F_VARIABLES]) &&
        (f[F_VARIABLES].type != J_OBJ || !f[F_VARIABLES].scalars))
        return refuse(r, &v_variables);
    return 0;
}

int
precheck_body(enum precheck_kind kind, const char *body, size_t len,
              long long max_chars, struct precheck_result *r)
{
    struct parser p;
    int rc = -1;

    memset(r, 0, sizeof(*r));
    r->sender_id = -1;
    if (body == NULL || len == 0 || precheck_utf8_count(body, len) < 0)
        return refuse(r, &v_json);

    memset(&p, 0, sizeof(p));
    p.s = (const unsigned char *)body;
    p.len = len;
    p.dec = xmalloc(len);
    if (parse_document(&p) < 0) {
        refuse(r, &v_json);
        goto out;
    }

    /* learned as soon as the body parses, whatever fails below */
    r->sender_id = positive_int(&p, &p.fields[F_SENDER_ID]);
    if (is_phone(&p.fields[F_RECIPIENT_PHONE])) {
        memcpy(r->recipient, p.fields[F_RECIPIENT_PHONE].str,
               p.fields[F_RECIPIENT_PHONE].str_len);
        r->recipient[p.fields[F_RECIPIENT_PHONE].str_len] = '\0';
    }

    if (p.lone) {
        refuse(r, &v_encoding);
        goto out;
    }
    rc = check_fields(kind, &p, max_chars, r);
out:
    free(p.dec);
    free(p.keys);
    return rc;
}
