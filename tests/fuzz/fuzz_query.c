/* fuzz_query.c - libFuzzer harness for query.c: arbitrary bytes as the
 * query of every route spec. Invariants (abort on a violation):
 *   - a verdict is always one of: accepted (0), 400 or 422, with a code
 *     and a sentence; a 400 names no field; a field is at most
 *     QUERY_FIELD_MAX visible ASCII bytes;
 *   - a refused query leaves no value behind;
 *   - an accepted query was visible ASCII only, and its values are valid:
 *     sender_id -1 or >= 1, recipient "" or E.164, status from the spec
 *     (QUERY_REFUSALS: its kind, "balance");
 *   - its canonical form is bounded (QUERY_CANONICAL_MAX), visible ASCII,
 *     parses again to the same values and rebuilds to itself.
 * ASan catches any read outside data[0..size): the parser is given the
 * length, never a NUL. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "precheck.h"
#include "query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_query: %s:%d: %s\n", __FILE__, __LINE__,     \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

static int
all_visible(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

static int
values_absent(const struct query_values *v)
{
    return v->sender_id == -1 && v->recipient[0] == '\0' && v->status == NULL;
}

static void
check_refusal(const struct query_result *r)
{
    CHECK(r->status == 400 || r->status == 422);
    CHECK(r->code != NULL && r->sentence != NULL);
    size_t fl = strnlen(r->field, sizeof(r->field));
    CHECK(fl <= QUERY_FIELD_MAX);
    CHECK(all_visible(r->field, fl));
    if (r->status == 400)
        CHECK(fl == 0 && strcmp(r->code, "BAD_REQUEST") == 0);
    CHECK(values_absent(&r->v));
}

static void
check_values(enum query_spec spec, const struct query_values *v)
{
    CHECK(v->sender_id == -1 || v->sender_id >= 1);
    CHECK(v->recipient[0] == '\0' || precheck_is_e164(v->recipient));
    if (v->status != NULL && spec == QUERY_REFUSALS)
        CHECK(strcmp(v->status, "balance") == 0);
    else if (v->status != NULL)
        CHECK(strcmp(v->status, "all") == 0 ||
              (spec == QUERY_SENDERS && strcmp(v->status, "online") == 0) ||
              (spec == QUERY_TEMPLATES && strcmp(v->status, "approved") == 0));
    if (spec == QUERY_SESSION)
        CHECK(v->sender_id >= 1 && v->recipient[0] != '\0' &&
              v->status == NULL);
    else if (spec == QUERY_REFUSALS) /* sender_id and kind, both optional */
        CHECK(v->recipient[0] == '\0');
    else
        CHECK(v->sender_id == -1 && v->recipient[0] == '\0');
    if (spec == QUERY_NONE)
        CHECK(values_absent(v));
}

static void
check_spec(enum query_spec spec, const char *q, size_t len)
{
    struct query_result r, again;
    char out[QUERY_CANONICAL_MAX + 1], out2[QUERY_CANONICAL_MAX + 1];
    int rc = query_parse(spec, q, len, &r);
    CHECK(rc == 0 || rc == -1);
    CHECK((rc == 0) == (r.status == 0));
    if (rc != 0) {
        check_refusal(&r);
        return;
    }
    CHECK(r.code == NULL && r.field[0] == '\0');
    CHECK(all_visible(q, len));
    if (spec == QUERY_NONE)
        CHECK(len == 0);
    check_values(spec, &r.v);
    size_t n = query_canonical(spec, &r.v, out, sizeof(out));
    CHECK(n <= QUERY_CANONICAL_MAX && strlen(out) == n);
    CHECK(all_visible(out, n));
    CHECK(query_parse(spec, out, n, &again) == 0);
    CHECK(again.v.sender_id == r.v.sender_id);
    CHECK(strcmp(again.v.recipient, r.v.recipient) == 0);
    CHECK(again.v.status == r.v.status);
    CHECK(query_canonical(spec, &again.v, out2, sizeof(out2)) == n);
    CHECK(memcmp(out, out2, n + 1) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int s = 0; s < QUERY_SPEC_COUNT; s++)
        check_spec((enum query_spec)s, (const char *)data, size);
    return 0;
}
