/* check_review.c - regressions found by the hostile review of issue 9's
 * refactor (behaviour must not change): each test pins what c62cc1f, the
 * commit before the refactor, did.
 *
 * - /metrics lists the registry's families in the order the page had
 *   before the registry (stats.c renders rows by their prom_pos, not in
 *   the /admin/stats order of its table). */
#include <check.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "stats.h"

/* The text of the whole /metrics page for a gateway with no stores. */
static char *
metrics_text(void)
{
    struct gateway gw;
    memset(&gw, 0, sizeof(gw));
    struct evbuffer *b = evbuffer_new();
    ck_assert_ptr_nonnull(b);
    stats_render_metrics(&gw, b);
    size_t n = evbuffer_get_length(b);
    char *text = malloc(n + 1);
    ck_assert_ptr_nonnull(text);
    evbuffer_remove(b, text, n);
    text[n] = '\0';
    evbuffer_free(b);
    return text;
}

/* c62cc1f's metrics_render(), after the labelled families. */
static const char *const families_before[] = {
    "wagate_upstream_rate_limited_total",
    "wagate_rate_limited_total",
    "wagate_queue_depth",
    "wagate_read_queue_depth",
    "wagate_in_flight",
    "wagate_cache_entries",
    "wagate_cache_lookups_total",
    "wagate_cache_hits_total",
    "wagate_cache_short_circuits_total",
    "wagate_idempotency_entries",
    "wagate_idempotency_replays_total",
    "wagate_draining",
    "wagate_metrics_series_dropped_total",
};
#define NBEFORE (sizeof(families_before) / sizeof(families_before[0]))

START_TEST(metrics_families_keep_their_order)
{
    char *text = metrics_text();
    const char *at = strstr(text, "# HELP wagate_upstream_errors_total ");
    ck_assert_ptr_nonnull(at); /* the last labelled family comes first */
    for (size_t i = 0; i < NBEFORE; i++) {
        char head[128];
        snprintf(head, sizeof(head), "# HELP %s ", families_before[i]);
        const char *p = strstr(text, head);
        ck_assert_msg(p != NULL, "missing %s", families_before[i]);
        ck_assert_msg(p > at, "%s comes before %s", families_before[i],
                      i ? families_before[i - 1] : "the labelled families");
        at = p;
    }
    free(text);
}
END_TEST

/* Every row on /metrics has its own place; rows not on it have none. */
START_TEST(metrics_positions_are_a_permutation)
{
    size_t n, nprom = 0;
    const struct stats_row *rows = stats_rows(&n);
    for (size_t i = 0; i < n; i++) {
        if (rows[i].prom == NULL) {
            ck_assert_uint_eq(rows[i].prom_pos, 0);
            continue;
        }
        nprom++;
        ck_assert_msg(rows[i].prom_pos >= 1, "%s has no place", rows[i].prom);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(rows[j].prom == NULL ||
                              rows[j].prom_pos != rows[i].prom_pos,
                          "%s and %s share place %u", rows[j].prom,
                          rows[i].prom, rows[i].prom_pos);
    }
    for (size_t i = 0; i < n; i++)
        if (rows[i].prom != NULL)
            ck_assert_uint_le(rows[i].prom_pos, nprom);
}
END_TEST

static Suite *
review_suite(void)
{
    Suite *s = suite_create("review");
    TCase *tc = tcase_create("stats");
    tcase_add_test(tc, metrics_families_keep_their_order);
    tcase_add_test(tc, metrics_positions_are_a_permutation);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(review_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
