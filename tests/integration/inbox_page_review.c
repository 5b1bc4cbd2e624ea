/* inbox_page_review.c - a hostile review of the sandbox's inbox page
 * (SPEC 9, docs/inbox-page.md, src/sandbox/ui/inbox.html) from the
 * browser's side, in headless Chromium driven over the DevTools protocol
 * (cdp.c), against the real wagate-sandbox (no gateway: the API is called
 * with the sandbox's key): hostile strings everywhere the page shows caller
 * input, volume (2,000 threads, a 5,000-message thread, a 1,000-entry log),
 * live-update races (a restart, a clear, the clock, a burst while a snapshot
 * is in flight), the forms with odd values, and the CSP.
 *
 * A case marked known = 1 in cases[] shows a defect not fixed yet and is
 * skipped unless WAGATE_KNOWN_DEFECTS=1 (WAGATE_REVIEW_ONLY=NAME runs one
 * case). Found, and fixed since: Enter twice in the reply box sends twice
 * (reply_twice); a render re-enables Send mid-flight and the answer erases the
 * next draft (reply_busy); integers past 2^53 are rounded by the page
 * (balance_2_53) and past int64 saturated by the sandbox (int64_overflow); a
 * number field typed wrong arms a fault with the default times
 * (fault_bad_input); a live message trims the older messages being read
 * (older_then_live); a later threads page past the end after a restart ("0-50
 * of 3", restart_page2); the log filter folds case unlike the sandbox
 * (filter_fold). The only waits are for events: a "listening" line, a DOM
 * condition (cdp_wait), an answer. */
#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cdp.h"
#include "hx_page.h"
#include "clock.h"
#include "harness.h"

#define KEY_HEADER "Authorization: Bearer " HARNESS_UPSTREAM_KEY
#define FREEFORM "/api/user/whatsapp/send-freeform"
#define TEMPLATE "/api/user/whatsapp/send"
#define PHONE_X "+14155550104"
#define PHONE_X_ENC "%2B14155550104"
#define PHONE_X_ENC_FMT "%%2B14155550104" /* in a format */
#define PHONE_TPL "+14155550102"
#define WAIT_MS 8000
#define LIVE "document.querySelector('#live').dataset.live === 'true'"
#define READY "document.body && document.body.dataset.ready === '1' && " LIVE

static struct proc sb;
static struct cdp br;

/* ---- fixtures ---- */

static void
start_sandbox(const char *listen)
{
    const char *extra[] = {"--listen", listen, NULL};
    ck_assert_int_eq(harness_start_sandbox(&sb, "0", listen ? extra : NULL), 0);
}

static void
setup(void)
{
    char err[sizeof(br.err)] = "";
    memset(&br, 0, sizeof(br));
    memset(&sb, 0, sizeof(sb));
    start_sandbox(NULL);
    if (cdp_start(&br, 1280, 800, err, sizeof(err)) != 0) {
        proc_stop(&sb, 5000);
        ck_abort_msg("chromium: %s", err);
    }
}

static void
teardown(void)
{
    cdp_stop(&br);
    if (sb.pid > 0)
        ck_assert_int_eq(proc_stop(&sb, 5000), 0);
    sb.pid = 0;
}

static void
sandbox_only_setup(void)
{
    memset(&sb, 0, sizeof(sb));
    start_sandbox(NULL);
}

static void
sandbox_only_teardown(void)
{
    if (sb.pid > 0)
        ck_assert_int_eq(proc_stop(&sb, 5000), 0);
    sb.pid = 0;
}

/* ---- the page ---- */

/* The page's JS, through hx_page.c */
#define js(...) hx_js(&br, WAIT_MS, __VA_ARGS__)
#define js_do(...) hx_js_do(&br, WAIT_MS, __VA_ARGS__)
#define js_int(...) hx_js_int(&br, WAIT_MS, __VA_ARGS__)
#define js_str(out, outlen, ...)                                               \
    hx_js_str(&br, WAIT_MS, 0, out, outlen, __VA_ARGS__)
#define wait_dom(...) hx_wait_dom(&br, WAIT_MS, __VA_ARGS__)

static void
open_page(const char *hash)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s", sb.port,
             hash ? hash : "");
    ck_assert_msg(cdp_navigate(&br, url, 10000) == 0, "%s", br.err);
    wait_dom(READY);
}

#define THREAD_SEL "#threads li.thread[data-sender=\"12\"][data-phone=\"%s\"]"

static void
open_thread(const char *phone, int nmsgs)
{
    wait_dom("(li => li && (li.click(), true))"
             "(document.querySelector('" THREAD_SEL "'))",
             phone);
    wait_dom("(t => t && t.dataset.phone === '%s' && "
             "t.querySelectorAll('.msg').length >= %d)"
             "(document.querySelector('#thread'))",
             phone, nmsgs);
}

/* Sets a form field as a user would (value, then input and change). */
static void
set_field(const char *sel, const char *value)
{
    js_do("(e => { e.value = %s; "
          "e.dispatchEvent(new Event('input', {bubbles: true})); "
          "e.dispatchEvent(new Event('change', {bubbles: true})); })"
          "(document.querySelector('%s'))",
          value, sel);
}

/* Counts the page's fetches to a route and their answers:
 * window.__calls[route], window.__done[route]. */
#define SPY_FETCH                                                              \
    "(() => { if (window.__spy) return; window.__spy = 1; "                    \
    "window.__calls = {}; window.__done = {}; const f = window.fetch; "        \
    "window.fetch = (u, i) => { const k = ((i && i.method) || 'GET') + ' ' + " \
    "String(u).split('?')[0]; window.__calls[k] = (window.__calls[k] || 0) "   \
    "+ 1; return f(u, i).finally(() => { window.__done[k] = "                  \
    "(window.__done[k] || 0) + 1; }); }; })()"

/* ---- the sandbox ---- */

static long
sb_call(const char *method, const char *path, const char *body, int key,
        struct http_resp *r)
{
    const char *hdr[] = {KEY_HEADER, NULL};
    if (body != NULL)
        ck_assert_int_eq(harness_post(sb.port, path, body, key ? hdr : NULL, r),
                         0);
    else
        ck_assert_int_eq(
            harness_get(sb.port, method, path, key ? hdr : NULL, r), 0);
    return r->status;
}

static json_object *
sandbox_json(const char *path_query)
{
    struct http_resp r;
    ck_assert_int_eq(sb_call("GET", path_query, NULL, 0, &r), 200);
    json_object *o = json_tokener_parse(r.body);
    ck_assert_msg(o != NULL, "%s: not JSON: %.200s", path_query, r.body);
    http_free(&r);
    return o;
}

static json_object *
member(json_object *o, const char *key)
{
    json_object *v = NULL;
    ck_assert_msg(json_object_object_get_ex(o, key, &v), "no \"%s\" in %.300s",
                  key, json_object_to_json_string(o));
    return v;
}

static long long
sandbox_int(const char *path_query, const char *key)
{
    json_object *o = sandbox_json(path_query);
    long long v = (long long)json_object_get_int64(member(o, key));
    json_object_put(o);
    return v;
}

static void
inbound(const char *phone, const char *text_json)
{
    char body[8192];
    snprintf(body, sizeof(body),
             "{\"sender_id\":12,\"recipient_phone\":\"%s\"%s%s}", phone,
             text_json ? ",\"text\":" : "", text_json ? text_json : "");
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound", body), 204);
}

/* Many requests on one kept-alive connection (fast seeding). */
struct bulk {
    CURL *c;
    struct curl_slist *h;
    char url[128];
};

static size_t
discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static void
bulk_open(struct bulk *b, int key)
{
    b->c = curl_easy_init();
    ck_assert_ptr_nonnull(b->c);
    b->h = curl_slist_append(NULL, "Content-Type: application/json");
    if (key)
        b->h = curl_slist_append(b->h, KEY_HEADER);
    curl_easy_setopt(b->c, CURLOPT_HTTPHEADER, b->h);
    curl_easy_setopt(b->c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(b->c, CURLOPT_TIMEOUT_MS, 5000L);
}

static long
bulk_do(struct bulk *b, const char *path, const char *body)
{
    long st = 0;
    snprintf(b->url, sizeof(b->url), "http://127.0.0.1:%d%s", sb.port, path);
    curl_easy_setopt(b->c, CURLOPT_URL, b->url);
    if (body != NULL) {
        curl_easy_setopt(b->c, CURLOPT_POSTFIELDS, body);
    } else {
        curl_easy_setopt(b->c, CURLOPT_HTTPGET, 1L);
    }
    ck_assert_int_eq(curl_easy_perform(b->c), CURLE_OK);
    curl_easy_getinfo(b->c, CURLINFO_RESPONSE_CODE, &st);
    return st;
}

static void
bulk_close(struct bulk *b)
{
    curl_slist_free_all(b->h);
    curl_easy_cleanup(b->c);
}

/* n inbound messages: into one thread (phone) or n threads (phone NULL). */
static void
seed_inbound(int n, const char *phone, const char *prefix)
{
    struct bulk b;
    char body[256];
    bulk_open(&b, 0);
    for (int i = 0; i < n; i++) {
        char ph[32];
        if (phone == NULL)
            snprintf(ph, sizeof(ph), "+1415600%04d", i);
        snprintf(body, sizeof(body),
                 "{\"sender_id\":12,\"recipient_phone\":\"%s\","
                 "\"text\":\"%s %d\"}",
                 phone ? phone : ph, prefix, i);
        ck_assert_int_eq(bulk_do(&b, "/_sandbox/inbound", body), 204);
    }
    bulk_close(&b);
}

/* n freeform sends into PHONE_X's thread (its window open). */
static void
seed_freeform(int n, const char *prefix)
{
    struct bulk b;
    char body[256];
    bulk_open(&b, 1);
    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof(body),
                 "{\"sender_id\":12,\"recipient_phone\":\"" PHONE_X
                 "\",\"message\":\"%s %d\"}",
                 prefix, i);
        ck_assert_int_eq(bulk_do(&b, FREEFORM, body), 200);
    }
    bulk_close(&b);
}

/* ---- 1. escaping ---- */

/* Each JS literal is what the page must show, as text. */
static const char *const hostile_js[] = {
    "'<img src=x onerror=window.__pwned=1>'",
    "'</script><script>window.__pwned=2</script>'",
    "'\"\\'><svg onload=window.__pwned=3>'",
    "'javascript:window.__pwned=4'",
    "'a\\u2028b\\u2029c'",
    "'\\u202Eevil\\u202C <b>rtl</b>'",
    "'nul\\u0000byte'",
    "'\\u{1F600}\\u{1D11E} astral'",
};
#define NHOSTILE (sizeof(hostile_js) / sizeof(hostile_js[0]))

/* No script ran, no element came from data. */
static void
assert_nothing_injected(void)
{
    char got[256];
    ck_assert_str_eq(js_str(got, sizeof(got), "typeof window.__pwned"),
                     "undefined");
    ck_assert_int_eq(js_int("document.querySelectorAll('script').length"), 1);
    ck_assert_int_eq(js_int("document.querySelectorAll('img, svg, iframe, "
                            "object, embed, a, b, math, video, audio').length"),
                     0);
}

static void
assert_fits(int width)
{
    ck_assert_int_eq(cdp_set_size(&br, width, 800), 0);
    wait_dom("window.innerWidth === %d", width);
    json_object *v = js("new Promise(r => requestAnimationFrame(() => "
                        "r([document.documentElement.scrollWidth, "
                        "window.innerWidth])))");
    int sw = json_object_get_int(json_object_array_get_idx(v, 0));
    int iw = json_object_get_int(json_object_array_get_idx(v, 1));
    json_object_put(v);
    ck_assert_msg(sw <= iw + 1, "at %d px the page is %d px wide", width, sw);
}

START_TEST(hostile_strings_render_as_text_everywhere)
{
    struct http_resp r;
    char body[8192], got[4096];
    /* each hostile string, as the customer and as a freeform send */
    static const char *const hostile_json[] = {
        "\"<img src=x onerror=window.__pwned=1>\"",
        "\"</script><script>window.__pwned=2</script>\"",
        "\"\\\"'><svg onload=window.__pwned=3>\"",
        "\"javascript:window.__pwned=4\"",
        "\"a\\u2028b\\u2029c\"",
        "\"\\u202Eevil\\u202C <b>rtl</b>\"",
        "\"nul\\u0000byte\"",
        "\"\\ud83d\\ude00\\ud834\\udd1e astral\"",
    };
    for (size_t i = 0; i < NHOSTILE; i++) {
        inbound(PHONE_X, hostile_json[i]);
        snprintf(body, sizeof(body),
                 "{\"sender_id\":12,\"recipient_phone\":\"" PHONE_X
                 "\",\"message\":%s}",
                 hostile_json[i]);
        ck_assert_int_eq(sb_call("POST", FREEFORM, body, 1, &r), 200);
        http_free(&r);
    }
    /* a 4,096-character word, and invalid UTF-8 bytes in the JSON sent */
    char word[4200] = "\"";
    memset(word + 1, 'W', 4096);
    strcpy(word + 4097, "\"");
    inbound(PHONE_X, word);
    /* invalid UTF-8 in the JSON is refused, never shown */
    ck_assert_int_eq(sb_call("POST", FREEFORM,
                             "{\"sender_id\":12,\"recipient_phone\":\"" PHONE_X
                             "\",\"message\":\"bad\xff\xfe<i>utf8</i>\xc3\"}",
                             1, &r),
                     400);
    http_free(&r);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound",
                           "{\"sender_id\":12,\"recipient_phone\":\"" PHONE_X
                           "\",\"text\":\"bad\xff\xfe\"}"),
        400);
    /* a template whose variables are hostile, one a 100,000-char word (the
     * sandbox keeps the first 8,192 bytes of a text: SB_INBOX_TEXT_MAX) */
    size_t big = 100000;
    char *tb = malloc(big + 512);
    ck_assert_ptr_nonnull(tb);
    int n = snprintf(tb, 512,
                     "{\"sender_id\":12,\"template_id\":1201,"
                     "\"recipient_phone\":\"" PHONE_TPL "\",\"variables\":{"
                     "\"1\":\"<img src=x onerror=window.__pwned=5>\","
                     "\"3\":\"</script>\",\"2\":\"");
    memset(tb + n, 'L', big);
    strcpy(tb + n + big, "\"}}");
    ck_assert_int_eq(sb_call("POST", TEMPLATE, tb, 1, &r), 200);
    http_free(&r);
    free(tb);
    /* request paths: markup, and one long segment without '/' */
    char out[4096];
    raw_exchange(sb.port,
                 "GET /<svg/onload=window.__pwned=6>/</script>?x=<b> "
                 "HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                 strlen("GET /<svg/onload=window.__pwned=6>/</script>?x=<b> "
                        "HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: "
                        "close\r\n\r\n"),
                 out, sizeof(out), 3000);
    char longreq[4096];
    int m = snprintf(longreq, sizeof(longreq), "GET /");
    memset(longreq + m, 'P', 3000);
    snprintf(longreq + m + 3000, sizeof(longreq) - (size_t)m - 3000,
             " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    raw_exchange(sb.port, longreq, strlen(longreq), out, sizeof(out), 3000);
    static const char badpath[] = "GET /bad\xff\xfe/x HTTP/1.1\r\nHost: "
                                  "127.0.0.1\r\nConnection: close\r\n\r\n";
    raw_exchange(sb.port, badpath, strlen(badpath), out, sizeof(out), 3000);
    /* a fault with a hostile match, armed through the API */
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/faults",
                           "{\"mode\":\"status\",\"status\":500,\"match\":"
                           "\"<img src=x onerror=window.__pwned=7>\"}"),
        200);

    /* a hostile hash names the thread to reopen */
    open_page("#t=12:%3Cimg%20src%3Dx%20onerror%3Dwindow.__pwned%3D8%3E");
    wait_dom("document.querySelector('#thread-title').textContent"
             ".startsWith('<img src=x')");
    assert_nothing_injected();

    open_thread(PHONE_X, 2 * (int)NHOSTILE + 1);
    for (size_t i = 0; i < NHOSTILE; i++)
        ck_assert_msg(js_int("[...document.querySelectorAll('#thread "
                             ".msg-text')].filter(t => t.textContent === "
                             "%s).length",
                             hostile_js[i]) == 2,
                      "not twice as text: %s", hostile_js[i]);
    ck_assert_int_eq(js_int("[...document.querySelectorAll('#thread "
                            ".msg-text')].filter(t => t.textContent === "
                            "'W'.repeat(4096)).length"),
                     1);
    /* the thread list's last text, the log's paths, the fault */
    wait_dom("document.querySelector('" THREAD_SEL
             "  .thread-last').textContent === 'W'.repeat(4096)",
             PHONE_X);
    wait_dom("[...document.querySelectorAll('#requests td.path')].some(t => "
             "t.textContent === '/bad\\uFFFD\\uFFFD/x')");
    wait_dom("[...document.querySelectorAll('#requests td.path')].some(t => "
             "t.textContent === '/<svg/onload=window.__pwned=6>/</script>')");
    wait_dom("[...document.querySelectorAll('#requests td.path')].some(t => "
             "t.textContent === '/' + 'P'.repeat(3000))");
    wait_dom("document.querySelector('#faults .fault').textContent"
             ".includes('<img src=x onerror=window.__pwned=7>')");
    assert_nothing_injected();
    assert_fits(400);
    assert_fits(1280);

    open_thread(PHONE_TPL, 1);
    ck_assert_int_eq(
        js_int("(t => t.startsWith('Hi <img src=x onerror=window.__pwned=5>,')"
               " && t.endsWith('L'.repeat(8000)) ? 1 : 0)("
               "document.querySelector('#thread .msg-text').textContent)"),
        1);
    ck_assert_str_eq(
        js_str(got, sizeof(got),
               "document.querySelector('#thread .msg-head').textContent"),
        "#18 · template appointment_reminder");
    assert_nothing_injected();
    assert_fits(400);
    assert_fits(1280);
}
END_TEST

/* ---- 4. the forms ---- */

/* Enter pressed twice in the reply box before the first answer: one
 * message, as the Send button (disabled while busy) would send. */
START_TEST(reply_enter_twice_sends_one_message)
{
    inbound(PHONE_X, "\"hi\"");
    open_page(NULL);
    open_thread(PHONE_X, 1);
    js_do(SPY_FETCH);
    set_field("#reply-text", "'once'");
    js_do("(t => { for (let i = 0; i < 2; i++) t.dispatchEvent(new "
          "KeyboardEvent('keydown', {key: 'Enter', bubbles: true})); })"
          "(document.querySelector('#reply-text'))");
    long long posts = js_int("window.__calls['POST /_sandbox/inbound'] || 0");
    /* every call answered, the box emptied */
    wait_dom("(window.__done['POST /_sandbox/inbound'] || 0) === %lld && "
             "document.querySelector('#reply-text').value === ''",
             posts);
    json_object *o = sandbox_json(
        "/_sandbox/messages?sender_id=12&recipient_phone=" PHONE_X_ENC);
    size_t n = json_object_array_length(member(o, "messages"));
    json_object_put(o);
    ck_assert_msg(posts == 1 && n == 2,
                  "Enter twice: %lld POSTs to /_sandbox/inbound, %zu messages "
                  "in the thread (1 and 2 expected)",
                  posts, n);
}
END_TEST

/* While the reply is on its way (its POST held back by the test): a render
 * caused by something else does not re-enable Send, and a draft typed
 * meanwhile is not erased when the answer comes. */
START_TEST(a_reply_in_flight_stays_busy_and_keeps_the_next_draft)
{
    inbound(PHONE_X, "\"hi\"");
    open_page(NULL);
    open_thread(PHONE_X, 1);
    js_do("(() => { const f = window.fetch; window.__release = null; "
          "window.fetch = (u, i) => String(u).startsWith('/_sandbox/inbound') "
          "? new Promise(r => { window.__release = () => r(f(u, i)); }) : "
          "f(u, i); })()");
    set_field("#reply-text", "'first'");
    js_do("document.querySelector('#reply-send').click()");
    wait_dom("typeof window.__release === 'function'");
    ck_assert_int_eq(
        js_int("document.querySelector('#reply-send').disabled ? 1 : 0"), 1);
    /* another change re-renders the thread (the senders are read again) */
    long long senders = js_int("performance.getEntriesByType('resource')"
                               ".filter(e => e.name.endsWith('/_sandbox/"
                               "senders')).length");
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                                        "{\"balance\":5}"),
                     200);
    wait_dom("performance.getEntriesByType('resource').filter(e => "
             "e.name.endsWith('/_sandbox/senders')).length > %lld",
             senders);
    long long renders = js_int("Number(document.body.dataset.renders)");
    wait_dom("Number(document.body.dataset.renders) > %lld", renders);
    long long busy =
        js_int("document.querySelector('#reply-send').disabled ? 1 : 0");
    /* the next draft, typed while the first is on its way */
    set_field("#reply-text", "'second draft'");
    js_do("window.__release()");
    wait_dom("[...document.querySelectorAll('#thread .msg-text')].some(t => "
             "t.textContent === 'first') && "
             "!document.querySelector('#reply-send').disabled");
    char draft[128];
    js_str(draft, sizeof(draft), "document.querySelector('#reply-text').value");
    ck_assert_msg(busy == 1 && strcmp(draft, "second draft") == 0,
                  "while the reply was in flight Send was %s after a render; "
                  "the draft typed meanwhile is now \"%s\"",
                  busy ? "still disabled" : "enabled again", draft);
}
END_TEST

/* The value a user typed reaches the sandbox exactly, or an error says it
 * cannot: no silent rounding past 2^53, no saturation to INT64_MAX. */
START_TEST(balance_beyond_safe_integers_is_exact_or_refused)
{
    static const char *const values[] = {"'9007199254740993'",
                                         "'100000000000000000000'"};
    static const long long exact[] = {9007199254740993LL, -1};
    open_page(NULL);
    js_do(SPY_FETCH);
    for (size_t i = 0; i < 2; i++) {
        long long before = sandbox_int("/_sandbox/config", "balance");
        long long calls = js_int("window.__done['POST /_sandbox/config'] || 0");
        js_do("document.querySelector('#error').textContent = ''");
        set_field("#balance", values[i]);
        js_do("document.querySelector('#balance-save').click()");
        wait_dom("document.querySelector('#error').textContent !== '' || "
                 "(window.__done['POST /_sandbox/config'] || 0) > %lld",
                 calls);
        char err[512];
        js_str(err, sizeof(err),
               "document.querySelector('#error').textContent");
        long long after = sandbox_int("/_sandbox/config", "balance");
        ck_assert_msg((err[0] != '\0' && after == before) ||
                          (exact[i] >= 0 && after == exact[i]),
                      "typed %s: the sandbox's balance is %lld (was %lld), "
                      "#error \"%s\"",
                      values[i], after, before, err);
    }
}
END_TEST

/* The sandbox itself: an integer beyond int64 is not taken as INT64_MAX. */
START_TEST(the_sandbox_refuses_integers_beyond_int64)
{
    static const char *const bodies[] = {
        "{\"balance\":100000000000000000000}",
        "{\"balance\":18446744073709551615}",
        "{\"balance\":9223372036854775808}",
    };
    for (size_t i = 0; i < 3; i++) {
        int st =
            hx_sandbox_control(sb.port, "POST", "/_sandbox/config", bodies[i]);
        long long bal = sandbox_int("/_sandbox/config", "balance");
        ck_assert_msg(st == 400, "%s answered %d, the balance is now %lld",
                      bodies[i], st, bal);
    }
}
END_TEST

struct odd {
    const char *prep;   /* JS run first (may be NULL) */
    const char *field;  /* selector */
    const char *value;  /* JS literal */
    const char *button; /* selector clicked */
};

START_TEST(odd_form_values_show_an_error_and_change_nothing)
{
    static const struct odd odd[] = {
        {NULL, "#balance", "''", "#balance-save"},
        {NULL, "#balance", "'-5'", "#balance-save"},
        {NULL, "#balance", "'abc'", "#balance-save"},
        {NULL, "#balance", "' 12 '", "#balance-save"},
        {NULL, "#balance", "'1.5'", "#balance-save"},
        {NULL, "#balance", "'1e3'", "#balance-save"},
        {NULL, "#clock-advance", "''", "#clock-advance-go"},
        {NULL, "#clock-advance", "'abc'", "#clock-advance-go"},
        {NULL, "#clock-advance", "'2.5'", "#clock-advance-go"},
        {NULL, "#clock-advance", "'999999999999'", "#clock-advance-go"},
        {NULL, "#fault-times", "'0'", "#fault-arm"},
        {NULL, "#fault-times", "'-1'", "#fault-arm"},
        {NULL, "#fault-times", "'1.5'", "#fault-arm"},
        {NULL, "#fault-times", "'10001'", "#fault-arm"},
        {NULL, "#fault-path", "'no-slash'", "#fault-arm"},
        {NULL, "#fault-path", "'/api/x?q=1'", "#fault-arm"},
        {NULL, "#fault-path", "'/_sandbox/config'", "#fault-arm"},
        {"(s => { s.value = 'status'; s.dispatchEvent(new Event('change')); "
         "})(document.querySelector('#fault-mode'))",
         "#fault-status", "'99'", "#fault-arm"},
        {NULL, "#fault-status", "''", "#fault-arm"},
        {NULL, "#fault-status", "'700'", "#fault-arm"},
    };
    char err[512];
    open_page(NULL);
    long long balance = sandbox_int("/_sandbox/config", "balance");
    json_object *c0 = sandbox_json("/_sandbox/clock");
    char clock0[64];
    snprintf(clock0, sizeof(clock0), "%s",
             json_object_get_string(member(c0, "now")));
    json_object_put(c0);
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        js_do("document.querySelector('#error').textContent = ''");
        if (odd[i].prep)
            js_do("%s", odd[i].prep);
        /* the other fields valid */
        set_field("#fault-times", "'1'");
        set_field("#fault-path", "''");
        set_field("#fault-status", "'500'");
        set_field(odd[i].field, odd[i].value);
        js_do("document.querySelector('%s').click()", odd[i].button);
        int rc = cdp_wait(&br,
                          "document.querySelector('#error').textContent "
                          "!== ''",
                          WAIT_MS);
        ck_assert_msg(rc == 0, "%s = %s: no error shown", odd[i].field,
                      odd[i].value);
        js_str(err, sizeof(err),
               "document.querySelector('#error').textContent");
        ck_assert_msg(
            strstr(err, "→ 400") != NULL || strstr(err, "whole number") != NULL,
            "%s = %s: #error \"%s\"", odd[i].field, odd[i].value, err);
        /* nothing stuck disabled */
        ck_assert_int_eq(js_int("document.querySelectorAll('.col-panels "
                                "button:disabled, .col-panels "
                                "input:disabled').length"),
                         0);
    }
    ck_assert_int_eq(sandbox_int("/_sandbox/config", "balance"), balance);
    ck_assert_int_eq(sandbox_int("/_sandbox/faults", "count"), 0);
    json_object *c1 = sandbox_json("/_sandbox/clock");
    /* not moved by more than the test's own run time */
    ck_assert_int_eq(
        strncmp(json_object_get_string(member(c1, "now")), clock0, 13), 0);
    json_object_put(c1);
}
END_TEST

/* "1-" typed in the fault's times: the number input's value is "" (its
 * validity.badInput set), and the page must say so instead of arming the
 * fault with the sandbox's default times. */
START_TEST(fault_times_typed_wrong_arms_nothing)
{
    open_page(NULL);
    js_do("(e => { e.focus(); e.select(); "
          "document.execCommand('insertText', false, '1-'); })"
          "(document.querySelector('#fault-times'))");
    /* what a user typing "1-" gets (the precondition of the case) */
    ck_assert_int_eq(js_int("(e => e.validity.badInput && e.value === '' ? 1 "
                            ": 0)(document.querySelector('#fault-times'))"),
                     1);
    js_do(SPY_FETCH);
    js_do("document.querySelector('#fault-arm').click()");
    wait_dom("document.querySelector('#error').textContent !== '' || "
             "(window.__done['POST /_sandbox/faults'] || 0) > 0");
    char err[512];
    js_str(err, sizeof(err), "document.querySelector('#error').textContent");
    long long armed = sandbox_int("/_sandbox/faults", "count");
    ck_assert_msg(armed == 0 && err[0] != '\0',
                  "times \"1-\": %lld fault(s) armed, #error \"%s\"", armed,
                  err);
}
END_TEST

/* ---- 2. volume ---- */

#define THREADS_NOW                                                            \
    "[...document.querySelectorAll('#threads li.thread')]"                     \
    ".map(t => t.dataset.phone).join(',')"

static void
server_threads(long off, char *out, size_t outlen)
{
    char q[96];
    snprintf(q, sizeof(q), "/_sandbox/conversations?offset=%ld&limit=50", off);
    json_object *o = sandbox_json(q), *list = member(o, "conversations");
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        const char *p = json_object_get_string(
            member(json_object_array_get_idx(list, i), "recipient_phone"));
        len +=
            (size_t)snprintf(out + len, outlen - len, "%s%s", i ? "," : "", p);
        ck_assert_uint_lt(len, outlen);
    }
    json_object_put(o);
}

START_TEST(two_thousand_threads_page_as_the_server_counts)
{
    char got[4096], want[4096];
    seed_inbound(2000, NULL, "t");
    open_page(NULL);
    wait_dom("document.querySelector('#threads-count').textContent === "
             "'1–50 of 2000'");
    server_threads(0, want, sizeof(want));
    ck_assert_str_eq(js_str(got, sizeof(got), THREADS_NOW), want);
    ck_assert_int_eq(js_int("document.querySelector('#threads-prev').disabled"
                            " ? 1 : 0"),
                     1);
    for (int p = 1; p < 40; p++) {
        js_do("document.querySelector('#threads-next').click()");
        wait_dom("document.querySelector('#threads-count').textContent === "
                 "'%d–%d of 2000'",
                 p * 50 + 1, p * 50 + 50);
    }
    server_threads(1950, want, sizeof(want));
    wait_dom("(" THREADS_NOW ") === '%s'", want);
    ck_assert_int_eq(js_int("document.querySelector('#threads-next').disabled"
                            " ? 1 : 0"),
                     1);
    /* bounded: one page of threads in the DOM */
    ck_assert_int_le(js_int("document.getElementsByTagName('*').length"), 1500);
}
END_TEST

#define MSG_IDS                                                                \
    "[...document.querySelectorAll('#messages .msg')].map(m => "               \
    "Number(m.dataset.id))"

/* Clicks "older" until the thread shows at least n messages. */
static void
page_back_to(int n)
{
    for (int k = 0; k < 60; k++) {
        long long have = js_int(MSG_IDS ".length");
        if (have >= n)
            return;
        wait_dom("(b => b && !b.closest('[hidden]') && (b.click(), true))"
                 "(document.querySelector('#messages-older'))");
        wait_dom(MSG_IDS ".length > %lld", have);
    }
    ck_abort_msg("older: fewer than %d messages after 60 pages", n);
}

START_TEST(a_five_thousand_message_thread_pages_back_as_the_server_has_it)
{
    seed_inbound(5000, PHONE_X, "m");
    open_page("#t=12:" PHONE_X_ENC);
    wait_dom(MSG_IDS ".length === 100");
    /* only a page rendered */
    ck_assert_int_le(js_int("document.getElementsByTagName('*').length"), 1500);
    ck_assert_int_eq(
        js_int("(i => i[0] === 4901 && i[99] === 5000 ? 1 : 0)(" MSG_IDS ")"),
        1);
    page_back_to(900);
    /* contiguous, in order, no duplicates, the texts the server holds */
    ck_assert_int_eq(js_int("(i => i.every((v, k) => v === 4101 + k) && "
                            "i.length === 900 ? 1 : 0)(" MSG_IDS ")"),
                     1);
    ck_assert_int_eq(
        js_int("[...document.querySelectorAll('#messages .msg')].every(m => "
               "m.querySelector('.msg-text').textContent === 'm ' + "
               "(Number(m.dataset.id) - 1)) ? 1 : 0"),
        1);
    ck_assert_int_eq(
        js_int("(e => e.getBoundingClientRect().width)(document.querySelector("
               "'#older-wrap')) > 0 ? 1 : 0"),
        1);
}
END_TEST

/* A user who paged back and reads old messages at the top keeps them when
 * a live message arrives at the bottom. */
START_TEST(a_live_message_does_not_drop_the_older_ones_being_read)
{
    seed_inbound(1200, PHONE_X, "m");
    open_page("#t=12:" PHONE_X_ENC);
    wait_dom(MSG_IDS ".length === 100");
    page_back_to(1001);
    long long first = js_int(MSG_IDS "[0]");
    js_do("document.querySelector('#thread-scroll').scrollTop = 0");
    inbound(PHONE_X, "\"live one\"");
    wait_dom("[...document.querySelectorAll('#messages .msg-text')].some(t =>"
             " t.textContent === 'live one')");
    ck_assert_msg(js_int("document.querySelector('#messages "
                         ".msg[data-id=\"%lld\"]') ? 1 : 0",
                         first) == 1,
                  "message #%lld (on screen, at the top) was dropped by a live "
                  "message: the thread now starts at #%lld",
                  first, js_int(MSG_IDS "[0]"));
}
END_TEST

START_TEST(a_thousand_entry_log_pages_as_the_server_has_it)
{
    struct bulk b;
    bulk_open(&b, 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(bulk_do(&b, "/api/user/whatsapp/senders", NULL), 401);
    bulk_close(&b);
    open_page(NULL);
    wait_dom("document.querySelectorAll('#requests tr.req').length === 100");
    for (int k = 0; k < 9; k++) {
        wait_dom("(b => !b.hidden && (b.click(), true))"
                 "(document.querySelector('#requests-more'))");
        wait_dom("document.querySelectorAll('#requests tr.req').length === %d",
                 100 * (k + 2));
    }
    wait_dom("document.querySelector('#requests-more').hidden");
    ck_assert_int_eq(
        js_int("[...document.querySelectorAll('#requests tr.req')].every((r, "
               "k) => Number(r.dataset.seq) === 1000 - k && r.dataset.status "
               "=== '401') ? 1 : 0"),
        1);
    ck_assert_int_eq(sandbox_int("/_sandbox/log?limit=1", "count"), 1000);
    /* the filter keeps what the sandbox keeps */
    set_field("#requests-filter", "'/senders'");
    wait_dom("document.querySelectorAll('#requests tr.req').length === 100 "
             "&& !document.querySelector('#requests-more').hidden");
    set_field("#requests-filter", "'nothing-matches'");
    wait_dom("document.querySelectorAll('#requests tr.req').length === 0");
}
END_TEST

/* ---- 3. live-update races ---- */

static void
restart_sandbox(void)
{
    char listen[32];
    int port = sb.port;
    ck_assert_int_eq(proc_stop(&sb, 5000), 0);
    sb.pid = 0;
    wait_dom("document.querySelector('#live').dataset.live === 'false'");
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    start_sandbox(listen);
    ck_assert_int_eq(sb.port, port);
}

START_TEST(a_restart_while_open_shows_the_new_state_only)
{
    struct bulk b;
    inbound(PHONE_X, "\"before 1\"");
    inbound(PHONE_X, "\"before 2\"");
    inbound(PHONE_TPL, "\"before other\"");
    bulk_open(&b, 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(bulk_do(&b, "/api/user/whatsapp/senders", NULL), 401);
    bulk_close(&b);
    open_page(NULL);
    open_thread(PHONE_X, 2);
    wait_dom("document.querySelectorAll('#requests tr.req').length === 3");
    js_do("document.body.dataset.marker = document.body.dataset.renders");

    restart_sandbox();
    /* the new sandbox's message #1 has the id the old one's had */
    inbound(PHONE_X, "\"after 1\"");
    wait_dom(LIVE);
    wait_dom("[...document.querySelectorAll('#thread .msg-text')].map(t => "
             "t.textContent).join('|') === 'after 1'");
    wait_dom("document.querySelectorAll('#threads li.thread').length === 1 && "
             "document.querySelector('#threads-count').textContent === '1–1 of "
             "1'");
    wait_dom("document.querySelectorAll('#requests tr.req').length === 0");
    /* and what comes next is shown once */
    inbound(PHONE_X, "\"after 2\"");
    wait_dom("[...document.querySelectorAll('#thread .msg-text')].map(t => "
             "t.textContent).join('|') === 'after 1|after 2'");
    ck_assert_int_eq(js_int("[...document.querySelectorAll('#thread .msg')]"
                            ".map(m => m.dataset.id).join(',') === '1,2' ? 1 : "
                            "0"),
                     1);
}
END_TEST

/* On the second page of threads, the sandbox restarts with fewer: the page
 * shows threads that exist and a count that adds up, not "0–50 of 3". */
START_TEST(a_restart_with_fewer_threads_while_on_a_later_page)
{
    char got[256];
    seed_inbound(60, NULL, "t");
    open_page(NULL);
    js_do("document.querySelector('#threads-next').click()");
    wait_dom("document.querySelector('#threads-count').textContent === '51–60 "
             "of 60'");
    restart_sandbox();
    seed_inbound(3, NULL, "again");
    wait_dom(LIVE);
    /* the page reloaded its state: it knows of the 3 */
    wait_dom("document.querySelector('#threads-count').textContent.endsWith("
             "' of 3')");
    js_str(got, sizeof(got),
           "document.querySelector('#threads-count').textContent + ' | ' + "
           "document.querySelectorAll('#threads li.thread').length");
    ck_assert_msg(strcmp(got, "1–3 of 3 | 3") == 0,
                  "after the restart the thread list shows \"%s\"", got);
}
END_TEST

START_TEST(moving_the_clock_closes_the_open_threads_window)
{
    inbound(PHONE_X, "\"hi\"");
    open_page(NULL);
    open_thread(PHONE_X, 1);
    wait_dom("document.querySelector('#window-state').dataset.open === 'true'");
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/clock",
                                        "{\"advance_s\":86401}"),
                     200);
    wait_dom(
        "document.querySelector('#window-state').dataset.open === 'false'");
    wait_dom("!document.querySelector('" THREAD_SEL " .dot.open')", PHONE_X);
    /* back in time: open again, from the page's box */
    set_field("#clock-advance", "'-86401'");
    js_do("document.querySelector('#clock-advance-go').click()");
    wait_dom("document.querySelector('#window-state').dataset.open === 'true'");
    wait_dom("document.querySelector('" THREAD_SEL " .dot.open')", PHONE_X);
    ck_assert_int_eq(
        js_int("document.querySelector('#error').textContent.length"), 0);
}
END_TEST

/* The open thread's ids and the log's seqs, once settled, are exactly the
 * server's. */
static void
assert_thread_as_server(void)
{
    json_object *o = sandbox_json(
        "/_sandbox/messages?sender_id=12&recipient_phone=" PHONE_X_ENC
        "&limit=1");
    json_object *ms = member(o, "messages");
    long long last = json_object_array_length(ms)
                         ? (long long)json_object_get_int64(
                               member(json_object_array_get_idx(ms, 0), "id"))
                         : -1;
    json_object_put(o);
    if (last < 0) {
        wait_dom(MSG_IDS ".length === 0");
        return;
    }
    wait_dom("(i => i.length && i[i.length - 1] === %lld)(" MSG_IDS ")", last);
    /* settled: every fetch of the page answered, and rendered */
    wait_dom("Object.keys(window.__calls).every(k => window.__calls[k] === "
             "window.__done[k]) && !renderQueued");
    char q[160], got[16384], want[16384];
    js_str(got, sizeof(got), MSG_IDS ".join(',')");
    long long first = atoll(got);
    size_t len = 0;
    want[0] = '\0';
    /* the server's ids from first to last, in pages of 500 */
    long long before = last + 1;
    for (int k = 0; k < 20; k++) {
        snprintf(
            q, sizeof(q),
            "/_sandbox/messages?sender_id=12&recipient_phone=" PHONE_X_ENC_FMT
            "&limit=500&before=%lld",
            before);
        o = sandbox_json(q);
        ms = member(o, "messages");
        size_t n = json_object_array_length(ms);
        int done = n == 0;
        for (size_t i = 0; i < n; i++) {
            long long id = (long long)json_object_get_int64(
                member(json_object_array_get_idx(ms, i), "id"));
            before = id;
            if (id < first) {
                done = 1;
                break;
            }
            char num[32];
            int w = snprintf(num, sizeof(num), "%lld", id);
            ck_assert_uint_lt(len + (size_t)w + 2, sizeof(want));
            memmove(want + w + (len ? 1 : 0), want, len + 1);
            memcpy(want, num, (size_t)w);
            if (len)
                want[w] = ',';
            len += (size_t)w + (len ? 1 : 0);
        }
        json_object_put(o);
        if (done)
            break;
    }
    ck_assert_str_eq(got, want);
}

static void
assert_log_as_server(void)
{
    char got[8192], want[8192];
    size_t len = 0;
    json_object *o = sandbox_json("/_sandbox/log?limit=100");
    json_object *es = member(o, "entries");
    want[0] = '\0';
    for (size_t i = 0; i < json_object_array_length(es); i++)
        len += (size_t)snprintf(
            want + len, sizeof(want) - len, "%s%lld:%lld", i ? "," : "",
            (long long)json_object_get_int64(
                member(json_object_array_get_idx(es, i), "seq")),
            (long long)json_object_get_int64(
                member(json_object_array_get_idx(es, i), "status")));
    json_object_put(o);
    /* settled: the newest row in place */
    const char *comma = strchr(want, ',');
    char head[64];
    snprintf(head, sizeof(head), "%.*s",
             (int)(comma ? (size_t)(comma - want) : strlen(want)), want);
    wait_dom("[...document.querySelectorAll('#requests tr.req')].slice(0, 1)"
             ".map(r => r.dataset.seq + ':' + r.dataset.status).join(',') "
             "=== '%s'",
             head);
    ck_assert_str_eq(
        js_str(got, sizeof(got),
               "[...document.querySelectorAll('#requests tr.req')].map(r => "
               "r.dataset.seq + ':' + r.dataset.status).join(',')"),
        want);
}

START_TEST(a_burst_while_snapshots_are_in_flight_matches_the_server)
{
    inbound(PHONE_X, "\"open the window\"");
    open_page(NULL);
    open_thread(PHONE_X, 1);
    js_do(SPY_FETCH);
    /* every snapshot asked for again, then 300 sends while they fly */
    for (int round = 0; round < 3; round++) {
        js_do("loadAll()");
        seed_freeform(100, "burst");
    }
    assert_thread_as_server();
    assert_log_as_server();
    /* the thread's count in the list */
    wait_dom("document.querySelector('" THREAD_SEL
             " .thread-meta').textContent.includes('301 msg')",
             PHONE_X);
}
END_TEST

START_TEST(clearing_while_events_stream_leaves_what_the_server_has)
{
    inbound(PHONE_X, "\"open the window\"");
    open_page(NULL);
    open_thread(PHONE_X, 1);
    js_do(SPY_FETCH);
    seed_freeform(100, "before");
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "DELETE", "/_sandbox/conversations", NULL),
        204);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "DELETE", "/_sandbox/requests", NULL), 204);
    inbound(PHONE_X, "\"reopen\"");
    seed_freeform(50, "after");
    assert_thread_as_server();
    assert_log_as_server();
    ck_assert_int_eq(js_int("[...document.querySelectorAll('#thread "
                            ".msg-text')].filter(t => t.textContent."
                            "startsWith('before')).length"),
                     0);
    wait_dom("document.querySelector('#threads-count').textContent === '1–1 of "
             "1'");
}
END_TEST

/* The log's filter applied to a live row as the sandbox applies it: a path
 * with a non-ASCII capital the sandbox does not fold. */
START_TEST(the_log_filter_keeps_live_rows_the_server_keeps)
{
    char out[2048];
    static const char upper[] = "GET /caf\xc3\x89 HTTP/1.1\r\nHost: "
                                "127.0.0.1\r\nConnection: close\r\n\r\n";
    static const char lower[] = "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: "
                                "127.0.0.1\r\nConnection: close\r\n\r\n";
    open_page(NULL);
    set_field("#requests-filter", "'\\u00e9'");
    js_do(SPY_FETCH);
    /* the filtered snapshot taken (empty) */
    wait_dom("(window.__done['GET /_sandbox/log'] || 0) >= 1 || "
             "performance.getEntriesByType('resource').some(e => "
             "e.name.includes('q=%%C3%%A9'))");
    wait_dom("document.querySelectorAll('#requests tr.req').length === 0");
    raw_exchange(sb.port, upper, strlen(upper), out, sizeof(out), 3000);
    raw_exchange(sb.port, lower, strlen(lower), out, sizeof(out), 3000);
    /* the second row shown: the first one's event was handled before */
    wait_dom("document.querySelector('#requests tr.req[data-seq=\"2\"]')");
    json_object *o = sandbox_json("/_sandbox/log?q=%C3%A9");
    size_t server = json_object_array_length(member(o, "entries"));
    json_object_put(o);
    long long shown = js_int("document.querySelectorAll('#requests "
                             "tr.req').length");
    ck_assert_msg(shown == (long long)server,
                  "filter \"\\u00e9\": the page shows %lld rows, the sandbox "
                  "keeps %zu",
                  shown, server);
}
END_TEST

/* ---- 5. CSP ---- */

START_TEST(the_csp_on_get_and_head_and_no_request_elsewhere)
{
    static const char *const reqs[] = {
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        "HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    };
    char got[256];
    static char out[1 << 17];
    for (size_t i = 0; i < 2; i++) {
        size_t n = raw_exchange(sb.port, reqs[i], strlen(reqs[i]), out,
                                sizeof(out), 3000);
        char *end = strstr(out, "\r\n\r\n");
        ck_assert_msg(n > 0 && end != NULL, "%.20s: no answer", reqs[i]);
        *end = '\0';
        ck_assert_msg(strncmp(out, "HTTP/1.1 200", 12) == 0, "%s", out);
        ck_assert_msg(strstr(out, "\r\nContent-Security-Policy: default-src "
                                  "'none'; ") != NULL,
                      "%.5s / has no CSP: %s", reqs[i], out);
        ck_assert_ptr_nonnull(strstr(out, "frame-ancestors 'none'"));
        ck_assert_ptr_nonnull(strstr(out, "connect-src 'self'"));
        ck_assert_ptr_nonnull(
            strstr(out, "\r\nX-Content-Type-Options: nosniff"));
        /* HEAD: no body after the headers */
        if (i == 1)
            ck_assert_uint_eq(n, (size_t)(end - out) + 4);
    }
    inbound(PHONE_X, "\"hi\"");
    open_page(NULL);
    open_thread(PHONE_X, 1);
    /* every request the page made went to its origin */
    ck_assert_str_eq(
        js_str(got, sizeof(got),
               "performance.getEntriesByType('resource').filter(e => "
               "!e.name.startsWith(location.origin + '/_sandbox/')).map(e => "
               "e.name).join(' ')"),
        "");
    /* and the header is enforced: an element injected by hand loads
     * nothing, even from the origin */
    ck_assert_str_eq(
        js_str(got, sizeof(got),
               "new Promise(r => { document.addEventListener("
               "'securitypolicyviolation', e => r(e.violatedDirective), "
               "{once: true}); const i = document.createElement('img'); "
               "i.src = location.origin + '/x.png'; "
               "document.body.appendChild(i); })"),
        "img-src");
    ck_assert_str_eq(
        js_str(
            got, sizeof(got),
            "new Promise(r => { document.addEventListener("
            "'securitypolicyviolation', e => r(e.violatedDirective), "
            "{once: true}); fetch('http://127.0.0.2:9/').catch(() => 0); })"),
        "connect-src");
}
END_TEST

/* ---- the suite ---- */

static Suite *
review_suite(void)
{
    Suite *s = suite_create("inbox_page_review");
    const struct {
        const char *name;
        const TTest *test;
        int browser, known;
    } cases[] = {
        {"hostile", hostile_strings_render_as_text_everywhere, 1, 0},
        {"reply_twice", reply_enter_twice_sends_one_message, 1, 0},
        {"reply_busy", a_reply_in_flight_stays_busy_and_keeps_the_next_draft, 1,
         0},
        {"balance_2_53", balance_beyond_safe_integers_is_exact_or_refused, 1,
         0},
        {"int64_overflow", the_sandbox_refuses_integers_beyond_int64, 0, 0},
        {"odd_forms", odd_form_values_show_an_error_and_change_nothing, 1, 0},
        {"fault_bad_input", fault_times_typed_wrong_arms_nothing, 1, 0},
        {"threads_2000", two_thousand_threads_page_as_the_server_counts, 1, 0},
        {"thread_5000",
         a_five_thousand_message_thread_pages_back_as_the_server_has_it, 1, 0},
        {"older_then_live",
         a_live_message_does_not_drop_the_older_ones_being_read, 1, 0},
        {"log_1000", a_thousand_entry_log_pages_as_the_server_has_it, 1, 0},
        {"restart", a_restart_while_open_shows_the_new_state_only, 1, 0},
        {"restart_page2", a_restart_with_fewer_threads_while_on_a_later_page, 1,
         0},
        {"clock", moving_the_clock_closes_the_open_threads_window, 1, 0},
        {"burst", a_burst_while_snapshots_are_in_flight_matches_the_server, 1,
         0},
        {"clear", clearing_while_events_stream_leaves_what_the_server_has, 1,
         0},
        {"filter_fold", the_log_filter_keeps_live_rows_the_server_keeps, 1, 0},
        {"csp", the_csp_on_get_and_head_and_no_request_elsewhere, 1, 0},
    };
    const char *only = getenv("WAGATE_REVIEW_ONLY");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (only != NULL && strcmp(only, cases[i].name) != 0)
            continue;
        if (cases[i].known && getenv("WAGATE_KNOWN_DEFECTS") == NULL) {
            fprintf(stderr, "SKIP %s (known defect; WAGATE_KNOWN_DEFECTS=1)\n",
                    cases[i].name);
            continue;
        }
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 60);
        if (cases[i].browser)
            tcase_add_checked_fixture(tc, setup, teardown);
        else
            tcase_add_checked_fixture(tc, sandbox_only_setup,
                                      sandbox_only_teardown);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int
main(void)
{
    return harness_run_suite(review_suite());
}
