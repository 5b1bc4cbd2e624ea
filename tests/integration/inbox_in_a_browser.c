/* inbox_in_a_browser.c - the sandbox's inbox page (SPEC 9,
 * docs/inbox-page.md) in headless Chromium, driven over the DevTools
 * protocol (cdp.c): the real wagate in front of the real wagate-sandbox,
 * sends made through the gateway, and every assertion read from the
 * rendered DOM of the page at GET / of the sandbox. Each test starts its
 * own sandbox, gateway and browser; the checked teardown stops all three,
 * also after a failure. The only waits are for events: a "listening" line,
 * a DOM condition (cdp_wait), the sandbox's state. */
#include <check.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cdp.h"
#include "hx_page.h"
#include "clock.h"
#include "harness.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define TEMPLATE "/api/user/whatsapp/send"
#define PHONE_OPEN "+14155550101"
#define PHONE_TPL "+14155550102"
#define PHONE_SHUT "+14155550103"
#define PHONE_X "+14155550104"
#define HELLO "Hello, is my order ready?"
#define READY "Your order is ready for pickup"
#define TPL_TEXT                                                               \
    "Hi Ana, this is a reminder of your appointment on May 3 at 10:00."
#define WAIT_MS 5000
/* the event stream is open (#live is the page's own indicator, not one of
 * docs/inbox-page.md's hooks: without it, ready alone is waited for) */
#define LIVE                                                                   \
    "(l => !l || l.dataset.live === 'true')(document.querySelector('#live'))"

static struct proc sb, gw;
static struct cdp br;
static char gw_conf[64];

/* ---- the three processes ---- */

static void
stop_all(void)
{
    cdp_stop(&br);
    proc_stop(&gw, 5000);
    proc_stop(&sb, 5000);
    if (gw_conf[0] != '\0')
        unlink(gw_conf);
    gw_conf[0] = '\0';
}

/* A checked setup that fails has no teardown: it stops what it started
 * before it fails. */
static void
setup(void)
{
    char err[sizeof(br.err)] = "", url[64];
    memset(&br, 0, sizeof(br));
    if (harness_start_sandbox(&sb, "0", NULL) != 0) {
        stop_all();
        ck_abort_msg("the sandbox did not start");
    }
    /* recheck 0: a window the customer opens through the page is seen by
     * the next send (the gateway is not told of /_sandbox/inbound) */
    if (harness_start_gateway(&gw, sb.port,
                              ",\"session_cache\":{\"recheck_after_s\":0}",
                              gw_conf, sizeof(gw_conf)) != 0) {
        stop_all();
        ck_abort_msg("the gateway did not start");
    }
    if (cdp_start(&br, 1280, 800, err, sizeof(err)) != 0) {
        stop_all();
        ck_abort_msg("chromium: %s", err);
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", sb.port);
    if (cdp_navigate(&br, url, 10000) != 0 ||
        cdp_wait(
            &br,
            "document.body && document.body.dataset.ready === '1' && " LIVE,
            10000) != 0) {
        snprintf(err, sizeof(err), "%s", br.err);
        stop_all();
        ck_abort_msg("the page: %s", err);
    }
}

static void
teardown(void)
{
    cdp_stop(&br);
    int gst = proc_stop(&gw, 5000);
    int sst = proc_stop(&sb, 5000);
    unlink(gw_conf);
    gw_conf[0] = '\0';
    ck_assert_int_eq(gst, 0);
    ck_assert_int_eq(sst, 0); /* it also closed the page's event stream */
}

/* ---- the page ---- */

/* The page's JS, through hx_page.c */
#define js(...) hx_js(&br, WAIT_MS, __VA_ARGS__)
#define js_do(...) hx_js_do(&br, WAIT_MS, __VA_ARGS__)
#define js_int(...) hx_js_int(&br, WAIT_MS, __VA_ARGS__)
#define js_str(out, outlen, ...)                                               \
    hx_js_str(&br, WAIT_MS, 1, out, outlen, __VA_ARGS__)
#define wait_dom(...) hx_wait_dom(&br, WAIT_MS, __VA_ARGS__)

/* A JS string literal for s (caller frees). */
static char *
js_quote(const char *s)
{
    json_object *o = json_object_new_string(s);
    char *q = strdup(json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return q;
}

#define THREAD_SEL "#threads li.thread[data-sender=\"12\"][data-phone=\"%s\"]"

/* Clicks a thread in the list and waits for it to be the open one with
 * at least nmsgs messages. */
static void
open_thread(const char *phone, int nmsgs)
{
    /* found and clicked in one go: the list may be rendered anew between
     * two evaluations */
    wait_dom("(li => li && (li.click(), true))"
             "(document.querySelector('" THREAD_SEL "'))",
             phone);
    wait_dom("(t => t && t.dataset.sender === '12' && "
             "t.dataset.phone === '%s' && "
             "t.querySelectorAll('.msg').length >= %d)"
             "(document.querySelector('#thread'))",
             phone, nmsgs);
}

/* The open thread's messages as "kind|status|error_code|text" lines,
 * sorted (the order on screen is not what is checked here). */
static const char *
thread_lines(char *out, size_t outlen)
{
    return js_str(out, outlen,
                  "[...document.querySelectorAll('#thread .msg')].map(m => "
                  "[m.dataset.kind, m.dataset.status || '', "
                  "m.dataset.errorCode || '', "
                  "(m.querySelector('.msg-text') || {}).textContent]"
                  ".join('|')).sort().join('\\n')");
}

/* ---- the gateway and the sandbox ---- */

static long
gw_send(const char *path, const char *body, struct http_resp *r)
{
    ck_assert_int_eq(harness_post(gw.port, path, body, NULL, r), 0);
    return r->status;
}

static long
freeform(const char *phone, const char *text, struct http_resp *r)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"sender_id\":12,\"recipient_phone\":\"%s\",\"message\":\"%s\"}",
             phone, text);
    return gw_send(FREEFORM, body, r);
}

static void
inbound(const char *phone, const char *text)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"sender_id\":12,\"recipient_phone\":\"%s\",\"text\":\"%s\"}",
             phone, text);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound", body), 204);
}

static const char *
error_code(const struct http_resp *r, char *out, size_t outlen)
{
    json_object *o = json_tokener_parse(r->body), *v;
    snprintf(out, outlen, "%s",
             o && json_object_object_get_ex(o, "error_code", &v)
                 ? json_object_get_string(v)
                 : "");
    json_object_put(o);
    return out;
}

/* GET a control route's JSON (caller puts). */
static json_object *
sandbox_json(const char *path_query)
{
    struct http_resp r;
    ck_assert_int_eq(harness_get(sb.port, "GET", path_query, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    json_object *o = json_tokener_parse(r.body);
    ck_assert_msg(o != NULL, "%s: not JSON: %.200s", path_query, r.body);
    http_free(&r);
    return o;
}

static json_object *
member(json_object *o, const char *key)
{
    json_object *v = NULL;
    ck_assert_msg(json_object_object_get_ex(o, key, &v), "no \"%s\" in %s", key,
                  json_object_to_json_string(o));
    return v;
}

/* The three sends of SPEC 9's first picture: a freeform into an open
 * window, a template, a freeform refused for a closed window. */
static void
send_three(void)
{
    struct http_resp r;
    char code[64];
    inbound(PHONE_OPEN, HELLO);
    ck_assert_int_eq(freeform(PHONE_OPEN, READY, &r), 200);
    http_free(&r);
    ck_assert_int_eq(
        gw_send(TEMPLATE,
                "{\"sender_id\":12,\"template_id\":1201,\"recipient_phone\":"
                "\"" PHONE_TPL "\",\"variables\":{\"1\":\"Ana\",\"2\":\"May "
                "3\",\"3\":\"10:00\"}}",
                &r),
        200);
    http_free(&r);
    ck_assert_int_eq(freeform(PHONE_SHUT, "Are you still there?", &r), 403);
    ck_assert_str_eq(error_code(&r, code, sizeof(code)), "SESSION_EXPIRED");
    http_free(&r);
    /* the page learns of them from its event stream, without a reload */
    wait_dom("document.querySelectorAll('#threads li.thread').length === 3");
}

/* ---- the cases ---- */

/* How many times the page fetched /_sandbox/config. */
#define CONFIG_GETS                                                            \
    "performance.getEntriesByType('resource').filter(e => e.name === "         \
    "location.origin + '/_sandbox/config').length"

START_TEST(three_sends_show_in_their_threads_with_their_status)
{
    char got[4096];
    int renders = js_int("Number(document.body.dataset.renders)");
    int balance = js_int("Number(document.querySelector('#balance').value)");
    int config_gets = js_int(CONFIG_GETS);
    send_three();
    /* newest activity first */
    ck_assert_str_eq(
        js_str(got, sizeof(got),
               "[...document.querySelectorAll('#threads li.thread')]"
               ".map(t => t.dataset.sender + ' ' + t.dataset.phone)"
               ".join(',')"),
        "12 " PHONE_SHUT ",12 " PHONE_TPL ",12 " PHONE_OPEN);
    ck_assert_str_eq(js_str(got, sizeof(got),
                            "document.querySelector('" THREAD_SEL
                            " .thread-last').textContent.trim()",
                            PHONE_TPL),
                     TPL_TEXT);
    ck_assert_msg(js_int("Number(document.body.dataset.renders)") > renders,
                  "body[data-renders] did not change");
    /* the two sends accepted spent one each: the balance follows from the
     * message events, without a fetch of the config */
    wait_dom("Number(document.querySelector('#balance').value) === %d",
             balance - 2);
    ck_assert_int_eq(js_int(CONFIG_GETS), config_gets);

    open_thread(PHONE_OPEN, 2);
    ck_assert_str_eq(thread_lines(got, sizeof(got)),
                     "freeform|200||" READY "\ninbound|||" HELLO);
    ck_assert_str_eq(js_str(got, sizeof(got),
                            "document.querySelector('#window-state')"
                            ".dataset.open"),
                     "true");

    open_thread(PHONE_TPL, 1);
    ck_assert_str_eq(thread_lines(got, sizeof(got)), "template|200||" TPL_TEXT);
    ck_assert_str_eq(js_str(got, sizeof(got),
                            "document.querySelector('#window-state')"
                            ".dataset.open"),
                     "true");

    open_thread(PHONE_SHUT, 1);
    ck_assert_str_eq(thread_lines(got, sizeof(got)),
                     "freeform|403|SESSION_EXPIRED|Are you still there?");
    ck_assert_str_eq(js_str(got, sizeof(got),
                            "document.querySelector('#window-state')"
                            ".dataset.open"),
                     "false");

    /* the request log panel: the three API requests, newest first */
    wait_dom("document.querySelectorAll('#requests tr.req').length === 3");
    ck_assert_str_eq(js_str(got, sizeof(got),
                            "[...document.querySelectorAll('#requests "
                            "tr.req')].map(t => t.dataset.status).join(',')"),
                     "403,200,200");
    /* the page itself asked the API nothing (no /favicon.ico either), and
     * everything it loaded came from the sandbox's control routes */
    ck_assert_int_eq(hx_sandbox_count(sb.port), 3);
    ck_assert_int_ge(js_int("performance.getEntriesByType('resource')"
                            ".filter(e => e.name.startsWith(location.origin + "
                            "'/_sandbox/conversations')).length"),
                     1);
    ck_assert_str_eq(
        js_str(got, sizeof(got),
               "performance.getEntriesByType('resource').map(e => e.name)"
               ".filter(n => !n.startsWith(location.origin + '/_sandbox/'))"
               ".join(' ')"),
        "");
    ck_assert_str_eq(js_str(got, sizeof(got),
                            "document.querySelector('#error').textContent"),
                     "");
}
END_TEST

START_TEST(a_reply_typed_as_the_customer_opens_the_window)
{
    struct http_resp r;
    char got[4096];
    ck_assert_int_eq(freeform(PHONE_SHUT, "Are you still there?", &r), 403);
    http_free(&r);
    open_thread(PHONE_SHUT, 1);
    wait_dom("document.querySelector('#window-state').dataset.open === "
             "'false'");

    json_object_put(js("(t => { t.value = 'Yes, sorry, I am here'; "
                       "t.dispatchEvent(new Event('input', {bubbles: true}));"
                       " })(document.querySelector('#reply-text'))"));
    json_object_put(js("document.querySelector('#reply-send').click()"));
    wait_dom("document.querySelector('#window-state').dataset.open === "
             "'true'");
    wait_dom("document.querySelectorAll('#thread .msg').length === 2");
    ck_assert_str_eq(thread_lines(got, sizeof(got)),
                     "freeform|403|SESSION_EXPIRED|Are you still there?\n"
                     "inbound|||Yes, sorry, I am here");

    /* the page called /_sandbox/inbound: the sandbox keeps the message and
     * the window is open there too */
    json_object *o = sandbox_json("/_sandbox/messages?sender_id=12&"
                                  "recipient_phone=%2B14155550103");
    json_object *msgs = member(o, "messages"), *win = member(o, "window");
    ck_assert_int_eq(json_object_array_length(msgs), 2);
    json_object *last = json_object_array_get_idx(msgs, 0); /* newest */
    ck_assert_str_eq(json_object_get_string(member(last, "kind")), "inbound");
    ck_assert_str_eq(json_object_get_string(member(last, "text")),
                     "Yes, sorry, I am here");
    ck_assert(json_object_get_boolean(member(win, "is_open")));
    json_object_put(o);

    /* and a freeform send through the gateway now goes through */
    ck_assert_int_eq(freeform(PHONE_SHUT, "Great, see you soon", &r), 200);
    http_free(&r);
    wait_dom("document.querySelectorAll('#thread .msg').length === 3");
    ck_assert_ptr_nonnull(strstr(thread_lines(got, sizeof(got)),
                                 "freeform|200||Great, see you soon"));
    ck_assert_str_eq(
        js_str(got, sizeof(got), "document.querySelector('#reply-text').value"),
        "");
}
END_TEST

#define ONLINE_BOX "#senders .sender[data-id=\"%d\"] input.sender-online"

static void
nap_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (bounded) until GET /_sandbox/config shows the sender so. */
static void
wait_sender_status(const char *id, const char *want)
{
    double end = clock_mono_ms() + WAIT_MS;
    char st[64];
    for (;;) {
        json_object *o = sandbox_json("/_sandbox/config");
        snprintf(
            st, sizeof(st), "%s",
            json_object_get_string(member(member(o, "sender_status"), id)));
        json_object_put(o);
        if (strcmp(st, want) == 0 || clock_mono_ms() > end)
            break;
        nap_ms(10);
    }
    ck_assert_str_eq(st, want);
}

START_TEST(switching_a_sender_offline_makes_sends_503)
{
    struct http_resp r;
    char code[64];
    wait_dom("document.querySelectorAll('#senders .sender').length === 3");
    ck_assert_int_eq(
        js_int("+document.querySelector('" ONLINE_BOX "').checked", 12), 1);
    ck_assert_int_eq(
        js_int("+document.querySelector('" ONLINE_BOX "').checked", 13), 0);
    ck_assert_int_eq(
        js_int("+document.querySelector('" ONLINE_BOX "').checked", 14), 1);
    inbound(PHONE_X, "hi");

    json_object_put(js("document.querySelector('" ONLINE_BOX "').click()", 12));
    /* the switch reached the sandbox: its config says so */
    wait_sender_status("12", "offline");
    /* the page shows it, after the state event made it read the senders
     * again */
    wait_dom("!document.querySelector('" ONLINE_BOX "').checked", 12);

    ck_assert_int_eq(freeform(PHONE_X, "Anyone home?", &r), 503);
    ck_assert_str_eq(error_code(&r, code, sizeof(code)), "SENDER_OFFLINE");
    http_free(&r);
    /* the refused send is kept in its thread with its code */
    open_thread(PHONE_X, 2);
    wait_dom("[...document.querySelectorAll('#thread .msg')].some(m => "
             "m.dataset.status === '503' && "
             "m.dataset.errorCode === 'SENDER_OFFLINE')");

    /* and back online from the page */
    json_object_put(js("document.querySelector('" ONLINE_BOX "').click()", 12));
    wait_sender_status("12", "online");
    wait_dom("document.querySelector('" ONLINE_BOX "').checked", 12);
}
END_TEST

START_TEST(an_armed_fault_shows_and_fires)
{
    struct http_resp r;
    char v[64];
    inbound(PHONE_X, "hi");
    json_object_put(
        js("(s => { s.value = 'status'; "
           "s.dispatchEvent(new Event('input', {bubbles: true})); "
           "s.dispatchEvent(new Event('change', {bubbles: true})); })"
           "(document.querySelector('#fault-mode'))"));
    json_object_put(js("['#fault-status', '500', '#fault-times', '1']"
                       ".forEach((x, i, a) => { if (i %% 2) return; "
                       "const e = document.querySelector(x); e.value = a[i+1];"
                       " e.dispatchEvent(new Event('input', {bubbles: true})); "
                       "e.dispatchEvent(new Event('change', {bubbles: true}));"
                       " })"));
    json_object_put(js("document.querySelector('#fault-arm').click()"));
    wait_dom("document.querySelectorAll('#faults .fault').length === 1 && "
             "document.querySelector('#faults .fault').dataset.mode === "
             "'status'");
    json_object *o = sandbox_json("/_sandbox/faults");
    ck_assert_int_eq(json_object_get_int(member(o, "count")), 1);
    json_object *f = json_object_array_get_idx(member(o, "faults"), 0);
    ck_assert_str_eq(json_object_get_string(member(f, "mode")), "status");
    ck_assert_int_eq(json_object_get_int(member(f, "status")), 500);
    ck_assert_int_eq(json_object_get_int(member(f, "times_left")), 1);
    ck_assert(json_object_is_type(member(f, "path"), json_type_null));
    json_object_put(o);

    /* the next send through the gateway meets it: a valid HTTP answer from
     * the provider is relayed as it is */
    ck_assert_int_eq(freeform(PHONE_X, "Faulty?", &r), 500);
    ck_assert_str_eq(http_header(&r, "X-Wagate", v, sizeof(v)), "upstream");
    http_free(&r);
    o = sandbox_json("/_sandbox/log?limit=1");
    json_object *e = json_object_array_get_idx(member(o, "entries"), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(json_object_get_string(member(e, "fault")), "status");
    ck_assert_int_eq(json_object_get_int(member(e, "status")), 500);
    ck_assert_str_eq(json_object_get_string(member(e, "path")), FREEFORM);
    json_object_put(o);
    json_object *reqs = hx_sandbox_requests(sb.port);
    ck_assert_int_eq(json_object_array_length(reqs), 1);
    ck_assert_str_eq(json_object_get_string(
                         member(json_object_array_get_idx(reqs, 0), "fault")),
                     "status");
    json_object_put(reqs);

    /* used up: the list empties; the log panel shows the 500 */
    wait_dom("document.querySelectorAll('#faults .fault').length === 0");
    wait_dom("(t => t && t.dataset.status === '500')"
             "(document.querySelector('#requests tr.req'))");
    o = sandbox_json("/_sandbox/faults");
    ck_assert_int_eq(json_object_get_int(member(o, "count")), 0);
    json_object_put(o);
}
END_TEST

START_TEST(a_hostile_message_renders_as_text)
{
    static const char *const hostile[] = {
        "<img src=x onerror=window.__pwned=1>",
        "<script>window.__pwned=2</script>",
        "<b>bold</b> &amp; &lt;i&gt;",
    };
    struct http_resp r;
    char got[4096], body[512];
    inbound(PHONE_X, "hi");
    for (size_t i = 0; i < 3; i++) {
        char *q = js_quote(hostile[i]); /* also a JSON string */
        snprintf(body, sizeof(body),
                 "{\"sender_id\":12,\"recipient_phone\":\"" PHONE_X
                 "\",\"message\":%s}",
                 q);
        free(q);
        ck_assert_int_eq(gw_send(FREEFORM, body, &r), 200);
        http_free(&r);
    }
    open_thread(PHONE_X, 4);
    for (size_t i = 0; i < 3; i++) {
        char *q = js_quote(hostile[i]);
        ck_assert_msg(js_int("[...document.querySelectorAll('#thread "
                             ".msg-text')].filter(t => t.textContent === "
                             "%s).length",
                             q) == 1,
                      "no .msg-text whose text is %s", q);
        free(q);
    }
    /* nothing of them became an element */
    ck_assert_int_eq(js_int("document.querySelectorAll('#thread img, "
                            "#thread script, #threads img, #threads script, "
                            "#requests img').length"),
                     0);
    ck_assert_int_eq(js_int("[...document.querySelectorAll('#thread *, "
                            "#threads *')].filter(e => e.children.length === 0"
                            " && e.textContent === 'bold').length"),
                     0);
    /* the thread list's last text too (it follows the live events) */
    char *q = js_quote(hostile[2]);
    wait_dom("document.querySelector('" THREAD_SEL
             " .thread-last').textContent.trim() === %s",
             PHONE_X, q);
    free(q);
    ck_assert_str_eq(js_str(got, sizeof(got), "typeof window.__pwned"),
                     "undefined");
}
END_TEST

static void
check_png(const char *path)
{
    struct stat st;
    unsigned char sig[8] = {0};
    ck_assert_msg(stat(path, &st) == 0, "no screenshot at %s", path);
    ck_assert_msg(st.st_size > 10 * 1024, "%s is only %lld bytes", path,
                  (long long)st.st_size);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(sig, 1, 8, f), 8);
    fclose(f);
    ck_assert(memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0);
}

/* No horizontal scrolling at a desktop width and at a phone's. */
static void
assert_fits(int width)
{
    ck_assert_int_eq(cdp_set_size(&br, width, 800), 0);
    wait_dom("window.innerWidth === %d", width);
    /* a frame after the resize, laid out */
    json_object *v = js("new Promise(r => requestAnimationFrame(() => "
                        "r([document.documentElement.scrollWidth, "
                        "window.innerWidth])))");
    int sw = json_object_get_int(json_object_array_get_idx(v, 0));
    int iw = json_object_get_int(json_object_array_get_idx(v, 1));
    json_object_put(v);
    ck_assert_msg(sw <= iw + 1, "at %d px the page is %d px wide", width, sw);
}

START_TEST(readable_at_two_widths_and_its_screenshot)
{
    send_three();
    open_thread(PHONE_OPEN, 2);
    assert_fits(400);
    assert_fits(1280);
    /* everything of case a's state on screen, and painted */
    wait_dom(
        "document.querySelectorAll('#requests tr.req').length === 3 && " LIVE);
    json_object_put(js("new Promise(r => requestAnimationFrame(() => "
                       "requestAnimationFrame(() => r(true))))"));
    /* the README's picture, from this very browser */
    ck_assert_msg(cdp_screenshot(&br, "inbox.png") == 0, "%s", br.err);
    check_png("inbox.png");
    const char *also = getenv("WAGATE_SCREENSHOT");
    if (also != NULL && *also != '\0') {
        ck_assert_msg(cdp_screenshot(&br, also) == 0, "%s", br.err);
        check_png(also);
    }
}
END_TEST

/* ---- the page as served (no browser) ---- */

static void
sandbox_only_setup(void)
{
    ck_assert_int_eq(harness_start_sandbox(&sb, "0", NULL), 0);
}

static void
sandbox_only_teardown(void)
{
    ck_assert_int_eq(proc_stop(&sb, 5000), 0);
}

START_TEST(the_page_is_served_self_contained_and_not_logged)
{
    static const char *const paths[] = {"/", "/_sandbox", "/_sandbox/"};
    static const char *const csp[] = {"default-src 'none'",
                                      "script-src 'unsafe-inline'",
                                      "style-src 'unsafe-inline'",
                                      "connect-src 'self'",
                                      "img-src data:",
                                      "base-uri 'none'",
                                      "form-action 'none'"};
    char *first = NULL;
    for (size_t i = 0; i < 3; i++) {
        struct http_resp r;
        char v[1024];
        ck_assert_int_eq(harness_get(sb.port, "GET", paths[i], NULL, &r), 0);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(http_header(&r, "Content-Type", v, sizeof(v)),
                         "text/html; charset=utf-8");
        ck_assert_str_eq(http_header(&r, "Cache-Control", v, sizeof(v)),
                         "no-store");
        ck_assert_ptr_nonnull(
            http_header(&r, "Content-Security-Policy", v, sizeof(v)));
        for (size_t k = 0; k < sizeof(csp) / sizeof(csp[0]); k++)
            ck_assert_msg(strstr(v, csp[k]) != NULL, "CSP \"%s\" lacks %s", v,
                          csp[k]);
        /* one document, nothing it would load from elsewhere */
        ck_assert_ptr_nonnull(strstr(r.body, "<html"));
        ck_assert_ptr_null(strstr(r.body, "http://"));
        ck_assert_ptr_null(strstr(r.body, "https://"));
        if (first == NULL)
            first = strdup(r.body);
        else
            ck_assert_str_eq(r.body, first);
        http_free(&r);
    }
    free(first);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 0);
}
END_TEST

/* ---- the client itself, on a data: page ---- */

static void
browser_only_teardown(void)
{
    cdp_stop(&br);
}

START_TEST(cdp_client_evaluates_waits_and_reports_exceptions)
{
    char err[1024];
    json_object *v = NULL;
    ck_assert_msg(cdp_start(&br, 640, 480, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(cdp_navigate(&br, "data:text/html,<p id=x>hi</p>", 10000) ==
                      0,
                  "%s", br.err);
    ck_assert_int_eq(
        cdp_eval(&br, "document.getElementById('x').textContent", 2000, &v), 0);
    ck_assert_str_eq(json_object_get_string(v), "hi");
    json_object_put(v);
    ck_assert_int_eq(cdp_eval(&br, "({a: [1, 2], b: null})", 2000, &v), 0);
    ck_assert_str_eq(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
                     "{\"a\":[1,2],\"b\":null}");
    json_object_put(v);
    /* an exception is a failure that says what was thrown */
    ck_assert_int_eq(cdp_eval(&br, "no_such_name.x", 2000, &v), -1);
    ck_assert_ptr_nonnull(strstr(br.err, "no_such_name"));
    /* a promise is awaited; a condition true later is waited for, one
     * never true times out */
    ck_assert_int_eq(cdp_eval(&br,
                              "new Promise(r => setTimeout(() => "
                              "r(document.title = 't'), 50))",
                              2000, &v),
                     0);
    ck_assert_str_eq(json_object_get_string(v), "t");
    json_object_put(v);
    ck_assert_int_eq(
        cdp_eval(&br, "setTimeout(() => document.title = 'u', 50)", 2000, &v),
        0);
    json_object_put(v);
    ck_assert_msg(cdp_wait(&br, "document.title === 'u'", 2000) == 0, "%s",
                  br.err);
    ck_assert_int_eq(cdp_wait(&br, "document.title === 'v'", 100), -1);
    ck_assert_ptr_nonnull(strstr(br.err, "timed out"));
    pid_t pid = br.pid;
    cdp_stop(&br);
    cdp_stop(&br); /* twice is harmless */
    ck_assert_int_eq(br.pid, 0);
    ck_assert_int_eq(kill(pid, 0), -1); /* gone, and reaped */
}
END_TEST

static Suite *
browser_suite(void)
{
    Suite *s = suite_create("inbox_in_a_browser");
    TCase *tc = tcase_create("page");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, three_sends_show_in_their_threads_with_their_status);
    tcase_add_test(tc, a_reply_typed_as_the_customer_opens_the_window);
    tcase_add_test(tc, switching_a_sender_offline_makes_sends_503);
    tcase_add_test(tc, an_armed_fault_shows_and_fires);
    tcase_add_test(tc, a_hostile_message_renders_as_text);
    tcase_add_test(tc, readable_at_two_widths_and_its_screenshot);
    suite_add_tcase(s, tc);
    TCase *t1 = tcase_create("serving");
    tcase_add_checked_fixture(t1, sandbox_only_setup, sandbox_only_teardown);
    tcase_add_test(t1, the_page_is_served_self_contained_and_not_logged);
    suite_add_tcase(s, t1);
    TCase *t2 = tcase_create("cdp");
    tcase_add_checked_fixture(t2, NULL, browser_only_teardown);
    tcase_set_timeout(t2, 30);
    tcase_add_test(t2, cdp_client_evaluates_waits_and_reports_exceptions);
    suite_add_tcase(s, t2);
    return s;
}

int
main(void)
{
    return harness_run_suite(browser_suite());
}
