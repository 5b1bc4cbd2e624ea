/* hx_burst.h - a burst of sends (POST send-freeform, one distinct
 * recipient each) fired at several gateways at once over one curl multi
 * handle, for the limiter suites: each send goes to the gateway gw_of[i]
 * names, some at once and the rest added later (hx_burst_add), and what
 * each caller got is kept: its status, when it was added and answered,
 * how many times it was answered. Every run is bounded in time. */
#ifndef WAGATE_HX_BURST_H
#define WAGATE_HX_BURST_H

#include <curl/curl.h>

#include "harness.h"

#define HX_BURST_MAX 64

struct hx_burst {
    int n, added;
    const struct proc *gws; /* the gateways gw_of[] counts in */
    CURLM *m;
    CURL *e[HX_BURST_MAX];
    struct curl_slist *h;
    char body[HX_BURST_MAX][160];
    long status[HX_BURST_MAX];
    int answers[HX_BURST_MAX]; /* how many times each was answered */
    int gw_of[HX_BURST_MAX];
    double added_ms[HX_BURST_MAX], done_ms[HX_BURST_MAX];
    double fired_ms;
};

/* n sends (n <= HX_BURST_MAX; recipient +1415557%04d of i, the message
 * "<tag> i."), round-robin over gws[0..over) (the caller may change gw_of
 * of those not added yet). Nothing is sent yet. */
void hx_burst_init(struct hx_burst *b, int n, int over, const struct proc *gws,
                   const char *tag);
/* Starts the clock and adds the first `now` sends. */
void hx_burst_fire(struct hx_burst *b, int now);
/* Adds sends [added, upto) to their gateways' current ports. */
void hx_burst_add(struct hx_burst *b, int upto);
/* Runs until every added send is answered or deadline_ms has passed;
 * tick(arg, ms since fired), if not NULL, about every 10 ms (it may add
 * more). 1 when every send of the burst was answered. */
int hx_burst_run(struct hx_burst *b, double deadline_ms,
                 void (*tick)(void *, double), void *arg);
void hx_burst_free(struct hx_burst *b);
/* How many sends were answered with status. */
int hx_burst_count(const struct hx_burst *b, long status);

#endif
