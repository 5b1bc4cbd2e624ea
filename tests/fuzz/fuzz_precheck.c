/* fuzz_precheck.c - the send and send-freeform body pre-check
 * (src/precheck.h).
 *
 * Input: one control byte, then the body. The control byte picks the kind
 * checked first (bit 0: freeform or template) and max_chars (bits 1-3);
 * both kinds are checked, and must agree on what they learn.
 *
 * Invariants, for every input:
 *   - the result is fully written and self-consistent: rc 0 iff status 0;
 *     a refusal has a known code, its status, a sentence, a field iff
 *     VALIDATION_ERROR; sender_id is -1 or >= 1; recipient is "" or E.164;
 *   - on success the fields are valid: sender_id >= 1, recipient E.164 by a
 *     POSIX regex and its phone key spells it back;
 * and against an oracle of a different make, a strict RFC 8259 reader
 * written here (recursive descent, code points, O(k^2) duplicate search;
 * json-c cannot serve: it lets overlong UTF-8, surrogates and "06.0" by):
 *   - INVALID_JSON exactly when the oracle finds the body not one object
 *     of valid UTF-8 JSON, a key twice in an object, or nesting over 64;
 *   - otherwise the verdict, sender_id and recipient are what SPEC section
 *     3's rules give on the oracle's reading of the members. */
#include <limits.h>
#include <regex.h>
#include <string.h>

#include "fuzz.h"
#include "precheck.h"

#define MAX_DEPTH 64 /* precheck.h: deeper nesting is INVALID_JSON */
#define NAME_MAX_CPS 255

static const long long max_chars_table[8] = {1,   2,    5,       16,
                                             255, 4096, 1000000, LLONG_MAX};

/* ---- the oracle's reader ---- */

enum otype { O_NONE, O_OBJ, O_ARR, O_STR, O_NUM, O_LIT, O_NULL };

struct oval {
    enum otype type;
    const uint32_t *cps; /* O_STR: decoded code points (surrogates kept) */
    size_t ncps;
    size_t start, end; /* O_NUM: the token */
    int is_int;        /* O_NUM: no fraction, no exponent */
    int scalars;       /* O_OBJ: every member value a string or number */
};

enum { M_SENDER, M_PHONE, M_MESSAGE, M_TEMPLATE, M_NAME, M_VARS, M_COUNT };
static const char *const member_names[M_COUNT] = {
    "sender_id",   "recipient_phone", "message",
    "template_id", "recipient_name",  "variables",
};

struct reader {
    const unsigned char *s;
    size_t n, p;
    uint32_t *arena; /* decoded strings; never more code points than bytes */
    size_t used;
    int lone; /* a lone surrogate escape */
    struct oval members[M_COUNT];
};

static int read_value(struct reader *r, int depth, struct oval *v);

static void
skip_ws(struct reader *r)
{
    while (r->p < r->n && (r->s[r->p] == ' ' || r->s[r->p] == '\t' ||
                           r->s[r->p] == '\n' || r->s[r->p] == '\r'))
        r->p++;
}

static int
hexdig(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* \uXXXX at r->p (the backslash); -1 if malformed. */
static long
read_u(struct reader *r)
{
    long v = 0;
    if (r->n - r->p < 6 || r->s[r->p] != '\\' || r->s[r->p + 1] != 'u')
        return -1;
    for (int i = 2; i < 6; i++) {
        int d = hexdig(r->s[r->p + i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    r->p += 6;
    return v;
}

/* The body is valid UTF-8 (checked first), so lead bytes tell lengths. */
static uint32_t
read_utf8(struct reader *r)
{
    const unsigned char *u = r->s + r->p;
    size_t k = u[0] < 0x80 ? 1 : u[0] < 0xE0 ? 2 : u[0] < 0xF0 ? 3 : 4;
    uint32_t c = k == 1 ? u[0] : u[0] & (0x7Fu >> k);
    for (size_t j = 1; j < k; j++)
        c = (c << 6) | (u[j] & 0x3Fu);
    r->p += k;
    return c;
}

static int
read_string(struct reader *r, struct oval *v)
{
    v->type = O_STR;
    v->cps = r->arena + r->used;
    v->ncps = 0;
    r->p++; /* '"' */
    for (;;) {
        if (r->p >= r->n || r->s[r->p] < 0x20)
            return -1;
        uint32_t c = r->s[r->p];
        if (c == '"') {
            r->p++;
            break;
        }
        if (c != '\\') {
            c = read_utf8(r);
        } else if (r->p + 1 < r->n && r->s[r->p + 1] == 'u') {
            long u = read_u(r);
            if (u < 0)
                return -1;
            if (u >= 0xD800 && u <= 0xDBFF) {
                size_t at = r->p;
                long lo = read_u(r);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                    r->p = at; /* not a pair: read it on its own */
                    r->lone = 1;
                }
            } else if (u >= 0xDC00 && u <= 0xDFFF) {
                r->lone = 1;
            }
            c = (uint32_t)u;
        } else {
            static const char esc[] = "\"\\/bfnrt", val[] = "\"\\/\b\f\n\r\t";
            const char *e = r->p + 1 < r->n && r->s[r->p + 1]
                                ? strchr(esc, r->s[r->p + 1])
                                : NULL;
            if (e == NULL)
                return -1;
            c = (unsigned char)val[e - esc];
            r->p += 2;
        }
        r->arena[r->used++] = c;
        v->ncps++;
    }
    return 0;
}

static int
digits(struct reader *r)
{
    size_t at = r->p;
    while (r->p < r->n && r->s[r->p] >= '0' && r->s[r->p] <= '9')
        r->p++;
    return r->p > at ? 0 : -1;
}

static int
read_number(struct reader *r, struct oval *v)
{
    v->type = O_NUM;
    v->start = r->p;
    v->is_int = 1;
    if (r->p < r->n && r->s[r->p] == '-')
        r->p++;
    if (r->p < r->n && r->s[r->p] == '0')
        r->p++;
    else if (r->p >= r->n || r->s[r->p] < '1' || r->s[r->p] > '9' ||
             digits(r) < 0)
        return -1;
    if (r->p < r->n && r->s[r->p] == '.') {
        r->p++;
        v->is_int = 0;
        if (digits(r) < 0)
            return -1;
    }
    if (r->p < r->n && (r->s[r->p] == 'e' || r->s[r->p] == 'E')) {
        r->p++;
        v->is_int = 0;
        if (r->p < r->n && (r->s[r->p] == '+' || r->s[r->p] == '-'))
            r->p++;
        if (digits(r) < 0)
            return -1;
    }
    v->end = r->p;
    return 0;
}

static int
same_cps(const struct oval *a, const struct oval *b)
{
    return a->ncps == b->ncps &&
           memcmp(a->cps, b->cps, a->ncps * sizeof(*a->cps)) == 0;
}

static int
cps_is(const struct oval *a, const char *ascii)
{
    size_t n = strlen(ascii);
    if (a->ncps != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (a->cps[i] != (unsigned char)ascii[i])
            return 0;
    return 1;
}

static int
read_object(struct reader *r, int depth, struct oval *v)
{
    size_t cap = 8, nkeys = 0;
    struct oval *keys = malloc(cap * sizeof(*keys));
    int rc = -1;
    FUZZ_CHECK(keys != NULL, "malloc");
    v->type = O_OBJ;
    v->scalars = 1;
    r->p++; /* '{' */
    skip_ws(r);
    if (r->p < r->n && r->s[r->p] == '}') {
        r->p++;
        rc = 0;
        goto out;
    }
    for (;;) {
        struct oval k = {0}, m = {0};
        skip_ws(r);
        if (r->p >= r->n || r->s[r->p] != '"' || read_string(r, &k) < 0)
            goto out;
        for (size_t i = 0; i < nkeys; i++)
            if (same_cps(&keys[i], &k))
                goto out; /* a key twice */
        if (nkeys == cap) {
            cap *= 2;
            keys = realloc(keys, cap * sizeof(*keys));
            FUZZ_CHECK(keys != NULL, "realloc");
        }
        keys[nkeys++] = k;
        skip_ws(r);
        if (r->p >= r->n || r->s[r->p++] != ':')
            goto out;
        if (read_value(r, depth + 1, &m) < 0)
            goto out;
        if (m.type != O_STR && m.type != O_NUM)
            v->scalars = 0;
        for (int f = 0; depth == 1 && f < M_COUNT; f++)
            if (cps_is(&k, member_names[f]))
                r->members[f] = m;
        skip_ws(r);
        if (r->p < r->n && r->s[r->p] == ',') {
            r->p++;
        } else if (r->p < r->n && r->s[r->p] == '}') {
            r->p++;
            rc = 0;
            goto out;
        } else {
            goto out;
        }
    }
out:
    free(keys);
    return rc;
}

static int
read_array(struct reader *r, int depth, struct oval *v)
{
    v->type = O_ARR;
    r->p++; /* '[' */
    skip_ws(r);
    if (r->p < r->n && r->s[r->p] == ']') {
        r->p++;
        return 0;
    }
    for (;;) {
        struct oval m = {0};
        if (read_value(r, depth + 1, &m) < 0)
            return -1;
        skip_ws(r);
        if (r->p < r->n && r->s[r->p] == ',')
            r->p++;
        else if (r->p < r->n && r->s[r->p] == ']')
            return r->p++, 0;
        else
            return -1;
    }
}

static int
read_literal(struct reader *r, const char *w, enum otype t, struct oval *v)
{
    size_t n = strlen(w);
    if (r->n - r->p < n || memcmp(r->s + r->p, w, n) != 0)
        return -1;
    r->p += n;
    v->type = t;
    return 0;
}

/* A container found here is at depth (the top object is at 1). */
static int
read_value(struct reader *r, int depth, struct oval *v)
{
    skip_ws(r);
    if (r->p >= r->n)
        return -1;
    switch (r->s[r->p]) {
    case '{':
        return depth > MAX_DEPTH ? -1 : read_object(r, depth, v);
    case '[':
        return depth > MAX_DEPTH ? -1 : read_array(r, depth, v);
    case '"':
        return read_string(r, v);
    case 't':
        return read_literal(r, "true", O_LIT, v);
    case 'f':
        return read_literal(r, "false", O_LIT, v);
    case 'n':
        return read_literal(r, "null", O_NULL, v);
    default:
        return read_number(r, v);
    }
}

/* 1 if s[0..n) is well-formed UTF-8 (RFC 3629: shortest form, no
 * surrogate, at most U+10FFFF), by value ranges after decoding. */
static int
utf8_valid(const unsigned char *u, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned long c;
        size_t k = fuzz_utf8_next(u + i, n - i, &c);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* 0 if the body is one JSON object precheck must parse; r is filled. */
static int
read_document(struct reader *r, const char *body, size_t len)
{
    struct oval top = {0};
    memset(r, 0, sizeof(*r));
    r->s = (const unsigned char *)body;
    r->n = len;
    r->arena = malloc((len ? len : 1) * sizeof(*r->arena));
    FUZZ_CHECK(r->arena != NULL, "malloc");
    if (len == 0 || !utf8_valid(r->s, len))
        return -1;
    skip_ws(r);
    if (r->p >= r->n || r->s[r->p] != '{' || read_value(r, 1, &top) < 0)
        return -1;
    skip_ws(r);
    return r->p == r->n ? 0 : -1;
}

/* ---- SPEC section 3's rules on the oracle's reading ---- */

struct expect {
    int status; /* 0 = accepted */
    const char *code;
    const char *field;
    long long length; /* MESSAGE_TOO_LONG */
    long long sender_id;
    char recipient[PRECHECK_PHONE_MAX + 1];
};

static int
regex_e164(const char *s)
{
    static regex_t re;
    static int ready;
    if (!ready) {
        FUZZ_CHECK(regcomp(&re, "^\\+[1-9][0-9]{1,14}$",
                           REG_EXTENDED | REG_NOSUB) == 0,
                   "regcomp");
        ready = 1;
    }
    return regexec(&re, s, 0, NULL, 0) == 0;
}

/* A JSON integer in [1, LLONG_MAX], else -1. */
static long long
positive(const struct reader *r, const struct oval *v)
{
    if (v->type != O_NUM || !v->is_int || r->s[v->start] == '-' ||
        v->end - v->start > 19)
        return -1;
    char buf[24];
    memcpy(buf, r->s + v->start, v->end - v->start);
    buf[v->end - v->start] = '\0';
    unsigned long long u = strtoull(buf, NULL, 10);
    return u >= 1 && u <= (unsigned long long)LLONG_MAX ? (long long)u : -1;
}

/* The E.164 string v spells, into out; 0 if it is not one. */
static int
phone_of(const struct oval *v, char out[PRECHECK_PHONE_MAX + 1])
{
    char buf[PRECHECK_PHONE_MAX + 2];
    if (v->type != O_STR || v->ncps > PRECHECK_PHONE_MAX)
        return 0;
    for (size_t i = 0; i < v->ncps; i++) {
        if (v->cps[i] == 0 || v->cps[i] > 0x7F)
            return 0;
        buf[i] = (char)v->cps[i];
    }
    buf[v->ncps] = '\0';
    if (!regex_e164(buf))
        return 0;
    memcpy(out, buf, v->ncps + 1);
    return 1;
}

static int
white_space(uint32_t c) /* Unicode PropList.txt, White_Space=yes */
{
    static const uint32_t ws[][2] = {
        {0x09, 0x0D},     {0x20, 0x20},     {0x85, 0x85},     {0xA0, 0xA0},
        {0x1680, 0x1680}, {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F},
        {0x205F, 0x205F}, {0x3000, 0x3000},
    };
    for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++)
        if (c >= ws[i][0] && c <= ws[i][1])
            return 1;
    return 0;
}

static int
verdict(struct expect *e, int status, const char *code, const char *field)
{
    e->status = status;
    e->code = code;
    e->field = field;
    return -1;
}

static int
oracle(enum precheck_kind kind, const struct reader *r, long long max_chars,
       struct expect *e)
{
    const struct oval *m = r->members;
    memset(e, 0, sizeof(*e));
    e->sender_id = positive(r, &m[M_SENDER]);
    int phone_ok = phone_of(&m[M_PHONE], e->recipient);

    if (r->lone)
        return verdict(e, 422, "INVALID_ENCODING", NULL);
    if (e->sender_id < 0)
        return verdict(e, 422, "VALIDATION_ERROR", "sender_id");
    if (m[M_PHONE].type != O_STR)
        return verdict(e, 422, "VALIDATION_ERROR", "recipient_phone");
    if (!phone_ok)
        return verdict(e, 422, "INVALID_PHONE", NULL);
    if (kind == PRECHECK_FREEFORM) {
        const struct oval *msg = &m[M_MESSAGE];
        size_t non_space = 0;
        for (size_t i = 0; msg->type == O_STR && i < msg->ncps; i++)
            non_space += !white_space(msg->cps[i]);
        if (msg->type != O_STR || non_space == 0)
            return verdict(e, 422, "VALIDATION_ERROR", "message");
        if ((long long)msg->ncps > max_chars) {
            e->length = (long long)msg->ncps;
            return verdict(e, 422, "MESSAGE_TOO_LONG", NULL);
        }
        return 0;
    }
    if (positive(r, &m[M_TEMPLATE]) < 0)
        return verdict(e, 422, "VALIDATION_ERROR", "template_id");
    const struct oval *name = &m[M_NAME], *vars = &m[M_VARS];
    if (name->type != O_NONE && name->type != O_NULL &&
        (name->type != O_STR || name->ncps > NAME_MAX_CPS))
        return verdict(e, 422, "VALIDATION_ERROR", "recipient_name");
    if (vars->type != O_NONE && vars->type != O_NULL &&
        (vars->type != O_OBJ || !vars->scalars))
        return verdict(e, 422, "VALIDATION_ERROR", "variables");
    return 0;
}

/* ---- the checks ---- */

static int
streq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static const char *const codes[] = {
    "INVALID_JSON",  "INVALID_ENCODING", "VALIDATION_ERROR",
    "INVALID_PHONE", "MESSAGE_TOO_LONG",
};

static int
known(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return 1;
    return 0;
}

/* What holds of any result, whatever the body. */
static void
check_shape(enum precheck_kind kind, int rc, const struct precheck_result *r,
            long long max_chars)
{
    FUZZ_CHECK(rc == (r->status == 0 ? 0 : -1), "rc %d status %d", rc,
               r->status);
    FUZZ_CHECK(r->sender_id == -1 || r->sender_id >= 1, "sender_id %lld",
               r->sender_id);
    FUZZ_CHECK(memchr(r->recipient, '\0', sizeof(r->recipient)) != NULL,
               "recipient not terminated");
    FUZZ_CHECK(r->recipient[0] == '\0' || precheck_is_e164(r->recipient),
               "recipient \"%s\"", r->recipient);
    if (rc == 0) {
        FUZZ_CHECK(!r->code && !r->sentence && !r->field && !r->length &&
                       !r->max_length,
                   "success with a verdict");
        FUZZ_CHECK(r->sender_id >= 1, "accepted sender_id %lld", r->sender_id);
        FUZZ_CHECK(regex_e164(r->recipient), "accepted recipient \"%s\"",
                   r->recipient);
        char back[32];
        snprintf(back, sizeof(back), "+%llu",
                 (unsigned long long)precheck_phone_key(r->recipient));
        FUZZ_CHECK(strcmp(back, r->recipient) == 0, "phone key of %s is %s",
                   r->recipient, back);
        return;
    }
    FUZZ_CHECK(known(r->code, codes, sizeof(codes) / sizeof(codes[0])),
               "code %s", r->code ? r->code : "(null)");
    FUZZ_CHECK(r->status == (strcmp(r->code, "INVALID_JSON") == 0 ? 400 : 422),
               "%s with status %d", r->code, r->status);
    FUZZ_CHECK(r->sentence && strlen(r->sentence) > 10 &&
                   fuzz_printable(r->sentence, strlen(r->sentence)),
               "sentence");
    FUZZ_CHECK((r->field != NULL) == (strcmp(r->code, "VALIDATION_ERROR") == 0),
               "%s with field %s", r->code, r->field ? r->field : "(null)");
    FUZZ_CHECK(r->field == NULL || known(r->field, member_names, M_COUNT),
               "field %s", r->field);
    if (strcmp(r->code, "INVALID_PHONE") == 0)
        FUZZ_CHECK(r->sentence == precheck_invalid_phone_sentence,
                   "INVALID_PHONE sentence");
    if (strcmp(r->code, "MESSAGE_TOO_LONG") == 0)
        FUZZ_CHECK(kind == PRECHECK_FREEFORM && r->max_length == max_chars &&
                       r->length > max_chars,
                   "MESSAGE_TOO_LONG %lld > %lld", r->length, r->max_length);
    else
        FUZZ_CHECK(r->length == 0 && r->max_length == 0, "length set");
    if (strcmp(r->code, "INVALID_JSON") == 0)
        FUZZ_CHECK(r->sender_id == -1 && r->recipient[0] == '\0',
                   "INVALID_JSON learned something");
}

static void
check_against(const struct precheck_result *r, const struct expect *e,
              const char *body, size_t len)
{
    int shown = len > 300 ? 300 : (int)len;
    FUZZ_CHECK(r->status == e->status && streq(r->code, e->code) &&
                   streq(r->field, e->field) && r->length == e->length,
               "precheck %d %s %s %lld, oracle %d %s %s %lld: %.*s", r->status,
               r->code ? r->code : "-", r->field ? r->field : "-", r->length,
               e->status, e->code ? e->code : "-", e->field ? e->field : "-",
               e->length, shown, body);
    FUZZ_CHECK(r->sender_id == e->sender_id, "sender_id %lld, oracle %lld",
               r->sender_id, e->sender_id);
    FUZZ_CHECK(strcmp(r->recipient, e->recipient) == 0,
               "recipient \"%s\", oracle \"%s\"", r->recipient, e->recipient);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum precheck_kind kinds[2];
    kinds[0] = (data[0] & 1) ? PRECHECK_TEMPLATE : PRECHECK_FREEFORM;
    kinds[1] =
        kinds[0] == PRECHECK_FREEFORM ? PRECHECK_TEMPLATE : PRECHECK_FREEFORM;
    long long max = max_chars_table[(data[0] >> 1) & 7];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;

    struct precheck_result r[2];
    for (int i = 0; i < 2; i++) {
        memset(&r[i], 0xA5, sizeof(r[i])); /* r must be fully written */
        int rc = precheck_body(kinds[i], body, len, max, &r[i]);
        check_shape(kinds[i], rc, &r[i], max);
    }
    FUZZ_CHECK(r[0].sender_id == r[1].sender_id &&
                   strcmp(r[0].recipient, r[1].recipient) == 0,
               "the two kinds learned differently");

    struct reader rd;
    if (read_document(&rd, body, len) < 0) {
        struct expect e = {400, "INVALID_JSON", NULL, 0, -1, ""};
        for (int i = 0; i < 2; i++)
            check_against(&r[i], &e, body, len);
    } else {
        for (int i = 0; i < 2; i++) {
            struct expect e;
            oracle(kinds[i], &rd, max, &e);
            check_against(&r[i], &e, body, len);
        }
    }
    free(rd.arena);
    return 0;
}
