/* precheck.c - see precheck.h.
 *
 * The SPEC section 3 rules only: the body is read by json_strict.h's
 * scanner, which hands over the top-level members; the values of the six
 * this module knows are remembered (in the scanner's scratch buffer) and
 * judged once the whole body is known to be strict JSON, since
 * INVALID_JSON outranks every field rule. */
#include "precheck.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "json_strict.h"
#include "reply.h"

#define RECIPIENT_NAME_MAX 255 /* code points */

/* ---- verdicts: rows of reply.h's table, with the field they name ---- */

struct verdict {
    enum gw_error error;
    const char *field;
};

static const struct verdict v_json = {GW_ERR_INVALID_JSON, NULL};
static const struct verdict v_encoding = {GW_ERR_INVALID_ENCODING, NULL};
static const struct verdict v_sender_id = {GW_ERR_SENDER_ID, "sender_id"};
static const struct verdict v_recipient_type = {GW_ERR_RECIPIENT_TYPE,
                                                "recipient_phone"};
static const struct verdict v_phone = {GW_ERR_INVALID_PHONE, NULL};
static const struct verdict v_message = {GW_ERR_MESSAGE, "message"};
static const struct verdict v_too_long = {GW_ERR_MESSAGE_TOO_LONG, NULL};
static const struct verdict v_template_id = {GW_ERR_TEMPLATE_ID,
                                             "template_id"};
static const struct verdict v_recipient_name = {GW_ERR_RECIPIENT_NAME,
                                                "recipient_name"};
static const struct verdict v_variables = {GW_ERR_VARIABLES, "variables"};

static int
refuse(struct precheck_result *r, const struct verdict *v)
{
    const struct gw_error_row *row = reply_row(v->error);
    r->error = v->error;
    r->status = row->status;
    r->code = row->code;
    r->sentence = row->sentence;
    r->field = v->field;
    return -1;
}

/* ---- UTF-8 and Unicode ---- */

long long
precheck_utf8_count(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    long long n = 0;
    size_t i = 0;
    unsigned long cp;

    while (i < len) {
        if (json_strict_utf8_next(u, len, &i, &cp) < 0)
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
        if (json_strict_utf8_next(u, len, &i, &cp) < 0 || !is_white_space(cp))
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

/* ---- the members this module knows ---- */

typedef struct json_strict_value jval;

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

/* json_strict_member_fn: keeps the value of a known member (the last one
 * seen; a key twice makes the body invalid anyway). */
static void
record_field(void *arg, const char *key, size_t key_len, const jval *v)
{
    jval *fields = arg;

    for (int f = 0; f < F_COUNT; f++) {
        if (strlen(field_names[f]) == key_len &&
            memcmp(field_names[f], key, key_len) == 0) {
            fields[f] = *v;
            return;
        }
    }
}

/* ---- field checks ---- */

/* The value of a JSON integer in [1, LLONG_MAX], else -1. */
static long long
positive_int(const jval *v)
{
    long long n = 0;

    if (v->type != JSON_STRICT_NUMBER || !v->is_int || v->num[0] == '-')
        return -1;
    for (size_t i = 0; i < v->num_len; i++) {
        int d = v->num[i] - '0';
        if (n > (LLONG_MAX - d) / 10)
            return -1;
        n = n * 10 + d;
    }
    return n >= 1 ? n : -1;
}

static int
is_phone(const jval *v)
{
    return v->type == JSON_STRICT_STRING && e164_n(v->str, v->str_len);
}

static int
optional(const jval *v)
{
    return v->type == JSON_STRICT_NONE || v->type == JSON_STRICT_NULL;
}

static int
check_freeform(const jval *f, long long max_chars, struct precheck_result *r)
{
    const jval *m = &f[F_MESSAGE];

    if (m->type != JSON_STRICT_STRING ||
        !precheck_has_non_space(m->str, m->str_len))
        return refuse(r, &v_message);
    if (m->cps > max_chars) {
        r->length = m->cps;
        r->max_length = max_chars;
        return refuse(r, &v_too_long);
    }
    return 0;
}

static int
check_template(const jval *f, struct precheck_result *r)
{
    const jval *name = &f[F_RECIPIENT_NAME], *vars = &f[F_VARIABLES];

    if (positive_int(&f[F_TEMPLATE_ID]) < 0)
        return refuse(r, &v_template_id);
    if (!optional(name) &&
        (name->type != JSON_STRICT_STRING || name->cps > RECIPIENT_NAME_MAX))
        return refuse(r, &v_recipient_name);
    if (!optional(vars) && (vars->type != JSON_STRICT_OBJECT || !vars->scalars))
        return refuse(r, &v_variables);
    return 0;
}

static int
check_fields(enum precheck_kind kind, const jval *f, long long max_chars,
             struct precheck_result *r)
{
    if (r->sender_id < 0)
        return refuse(r, &v_sender_id);
    if (f[F_RECIPIENT_PHONE].type != JSON_STRICT_STRING)
        return refuse(r, &v_recipient_type);
    if (!is_phone(&f[F_RECIPIENT_PHONE]))
        return refuse(r, &v_phone);
    if (kind == PRECHECK_FREEFORM)
        return check_freeform(f, max_chars, r);
    return check_template(f, r);
}

#define PRECHECK_STACK_SCRATCH 16384 /* bytes */

int
precheck_body(enum precheck_kind kind, const char *body, size_t len,
              long long max_chars, struct precheck_result *r)
{
    jval f[F_COUNT] = {0};
    enum json_strict_verdict jv;
    /* a body of common size decodes on the stack: no allocation per send
     * (16 KiB holds 4096 code points of four bytes each) */
    char stack_scratch[PRECHECK_STACK_SCRATCH];
    char *scratch;
    int rc = -1;

    memset(r, 0, sizeof(*r));
    r->sender_id = -1;
    if (body == NULL || len == 0)
        return refuse(r, &v_json);

    scratch = len <= sizeof(stack_scratch) ? stack_scratch : xmalloc(len);
    jv = json_strict_scan(body, len, scratch, record_field, f);
    if (jv == JSON_STRICT_INVALID) {
        refuse(r, &v_json);
        goto out;
    }

    /* learned as soon as the body parses, whatever fails below */
    r->sender_id = positive_int(&f[F_SENDER_ID]);
    if (is_phone(&f[F_RECIPIENT_PHONE])) {
        memcpy(r->recipient, f[F_RECIPIENT_PHONE].str,
               f[F_RECIPIENT_PHONE].str_len);
        r->recipient[f[F_RECIPIENT_PHONE].str_len] = '\0';
    }

    if (jv == JSON_STRICT_LONE_SURROGATE) {
        refuse(r, &v_encoding);
        goto out;
    }
    rc = check_fields(kind, f, max_chars, r);
out:
    if (scratch != stack_scratch)
        free(scratch);
    return rc;
}
