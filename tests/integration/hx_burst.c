/* hx_burst.c - see hx_burst.h. */
#include "hx_burst.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"

static size_t
discard(char *d, size_t s, size_t n, void *arg)
{
    (void)d;
    (void)arg;
    return s * n;
}

void
hx_burst_add(struct hx_burst *b, int upto)
{
    for (int i = b->added; i < upto && i < b->n; i++) {
        char url[128];
        snprintf(url, sizeof(url),
                 "http://127.0.0.1:%d/api/user/whatsapp/send-freeform",
                 b->gws[b->gw_of[i]].port);
        curl_easy_setopt(b->e[i], CURLOPT_URL, url);
        curl_multi_add_handle(b->m, b->e[i]);
        b->added_ms[i] = clock_mono_ms();
    }
    b->added = upto < b->n ? upto : b->n;
}

void
hx_burst_init(struct hx_burst *b, int n, int over, const struct proc *gws,
              const char *tag)
{
    ck_assert_int_le(n, HX_BURST_MAX);
    memset(b, 0, sizeof(*b));
    b->n = n;
    b->gws = gws;
    b->m = curl_multi_init();
    b->h = curl_slist_append(NULL, "Content-Type: application/json");
    for (int i = 0; i < n; i++) {
        b->gw_of[i] = i % over;
        snprintf(b->body[i], sizeof(b->body[i]),
                 "{\"sender_id\":12,\"recipient_phone\":\"+1415557%04d\","
                 "\"message\":\"%s %d.\"}",
                 i, tag, i);
        b->e[i] = curl_easy_init();
        curl_easy_setopt(b->e[i], CURLOPT_HTTPHEADER, b->h);
        curl_easy_setopt(b->e[i], CURLOPT_POSTFIELDS, b->body[i]);
        curl_easy_setopt(b->e[i], CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(b->e[i], CURLOPT_TIMEOUT_MS, 40000L);
        curl_easy_setopt(b->e[i], CURLOPT_PRIVATE, (void *)&b->status[i]);
    }
}

void
hx_burst_fire(struct hx_burst *b, int now)
{
    b->fired_ms = clock_mono_ms();
    hx_burst_add(b, now);
}

int
hx_burst_run(struct hx_burst *b, double deadline_ms,
             void (*tick)(void *, double), void *arg)
{
    int running = 1, left = b->n;
    double end = clock_mono_ms() + deadline_ms;
    while (left > 0 && clock_mono_ms() < end) {
        curl_multi_perform(b->m, &running);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(b->m, &q)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *p;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
            int i = (int)((long *)(void *)p - b->status);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
                              &b->status[i]);
            b->answers[i]++;
            b->done_ms[i] = clock_mono_ms();
            left--;
        }
        if (tick != NULL)
            tick(arg, clock_mono_ms() - b->fired_ms);
        if (left > 0)
            curl_multi_poll(b->m, NULL, 0, 10, NULL);
    }
    return left == 0;
}

void
hx_burst_free(struct hx_burst *b)
{
    for (int i = 0; i < b->n; i++) {
        curl_multi_remove_handle(b->m, b->e[i]);
        curl_easy_cleanup(b->e[i]);
    }
    curl_slist_free_all(b->h);
    curl_multi_cleanup(b->m);
}

int
hx_burst_count(const struct hx_burst *b, long status)
{
    int c = 0;
    for (int i = 0; i < b->n; i++)
        c += b->status[i] == status;
    return c;
}
