#include "sb_state.h"
#include "alloc.h"
#include "civil.h"
#include "sb_text.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One (sender, recipient) pair the sandbox has seen. */
struct window {
    int64_t sender_id;
    char *phone;
    int64_t conversation_id;
    char *customer_name;
    bool has_inbound;
    int64_t last_inbound;
    bool had_window;
    int64_t expires_at;
    struct window *next; /* hash chain */
};

struct sb_state {
    struct sb_sender *senders;
    size_t nsenders;
    int64_t balance;
    int64_t clock_base_ms; /* sandbox ms = mono ms + base */
    struct window **buckets;
    size_t nbuckets, nwindows;
    int64_t next_conversation, next_message, next_whatsapp;
};

struct sb_state *
sb_state_new(int64_t balance)
{
    struct sb_state *st = xcalloc(1, sizeof(*st));

    st->balance = balance;
    st->nbuckets = 64;
    st->buckets = xcalloc(st->nbuckets, sizeof(*st->buckets));
    /* Distinct ranges, so that a test mixing up two ids notices. */
    st->next_conversation = 1001;
    st->next_message = 5001;
    st->next_whatsapp = 9001;
    return st;
}

void
sb_state_free(struct sb_state *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->nbuckets; i++) {
        struct window *w = st->buckets[i], *next;
        for (; w != NULL; w = next) {
            next = w->next;
            free(w->phone);
            free(w->customer_name);
            free(w);
        }
    }
    free(st->buckets);
    free(st->senders);
    free(st);
}

/* ---- senders and templates ---- */

bool
sb_status_valid(const char *status)
{
    size_t n = strlen(status);

    if (n == 0 || n > SB_STATUS_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((status[i] < 'a' || status[i] > 'z') && status[i] != '_')
            return false;
    return true;
}

const struct sb_sender *
sb_state_sender(const struct sb_state *st, int64_t id)
{
    for (size_t i = 0; i < st->nsenders; i++)
        if (st->senders[i].id == id)
            return &st->senders[i];
    return NULL;
}

int
sb_state_add_sender(struct sb_state *st, int64_t id, const char *status)
{
    if (id < 1 || id > SB_SENDER_ID_MAX || !sb_status_valid(status) ||
        sb_state_sender(st, id) != NULL)
        return -1;
    st->senders =
        xrealloc(st->senders, (st->nsenders + 1) * sizeof(*st->senders));
    st->senders[st->nsenders].id = id;
    strcpy(st->senders[st->nsenders].status, status);
    st->nsenders++;
    return 0;
}

int
sb_state_set_sender_status(struct sb_state *st, int64_t id, const char *status)
{
    struct sb_sender *s = (struct sb_sender *)sb_state_sender(st, id);

    if (s == NULL || !sb_status_valid(status))
        return -1;
    strcpy(s->status, status);
    return 0;
}

size_t
sb_state_sender_count(const struct sb_state *st)
{
    return st->nsenders;
}

const struct sb_sender *
sb_state_sender_at(const struct sb_state *st, size_t i)
{
    return i < st->nsenders ? &st->senders[i] : NULL;
}

bool
sb_sender_online(const struct sb_sender *s)
{
    return strcmp(s->status, "online") == 0;
}

void
sb_sender_phone(const struct sb_sender *s, char *buf, size_t n)
{
    snprintf(buf, n, "+1415555%04" PRId64, s->id);
}

void
sb_sender_name(const struct sb_sender *s, char *buf, size_t n)
{
    snprintf(buf, n, "Sender %" PRId64, s->id);
}

void
sb_sender_template_at(int64_t sender_id, size_t i, struct sb_template *out)
{
    static const char *const reminder_vars[] = {"customer_name", "date",
                                                "time"};
    static const char *const promo_vars[] = {"customer_name", "discount"};

    memset(out, 0, sizeof(*out));
    out->id = sender_id * 100 + (int64_t)i + 1;
    out->language = "en";
    if (i == 0) {
        out->name = "appointment_reminder";
        out->category = "utility";
        out->status = "approved";
        out->body_text = "Hi {{1}}, this is a reminder of your appointment "
                         "on {{2}} at {{3}}.";
        out->variables = reminder_vars;
        out->nvariables = 3;
    } else {
        out->name = "spring_promotion";
        out->category = "marketing";
        out->status = "pending";
        out->body_text = "Hi {{1}}, enjoy {{2}} off your next visit!";
        out->variables = promo_vars;
        out->nvariables = 2;
    }
}

/* ---- balance and clock ---- */

int64_t
sb_state_balance(const struct sb_state *st)
{
    return st->balance;
}

void
sb_state_set_balance(struct sb_state *st, int64_t balance)
{
    st->balance = balance < 0 ? 0 : balance;
}

void
sb_state_clock_set(struct sb_state *st, int64_t epoch_ms, int64_t mono_ms)
{
    st->clock_base_ms = epoch_ms - mono_ms;
}

int64_t
sb_state_now(const struct sb_state *st, int64_t mono_ms)
{
    return civil_floor_div(mono_ms + st->clock_base_ms, 1000);
}

int
sb_state_clock_advance(struct sb_state *st, int64_t seconds, int64_t mono_ms)
{
    int64_t now = sb_state_now(st, mono_ms);

    /* Compare before adding so that a huge `seconds` cannot overflow. */
    if (seconds > SB_TIME_MAX - now || seconds < SB_TIME_MIN - now)
        return -1;
    st->clock_base_ms += seconds * 1000;
    return 0;
}

/* ---- windows ---- */

static size_t
window_hash(int64_t sender_id, const char *phone)
{
    uint64_t h = 1469598103934665603u ^ (uint64_t)sender_id;

    for (const unsigned char *p = (const unsigned char *)phone; *p; p++)
        h = (h ^ *p) * 1099511628211u;
    return (size_t)h;
}

static struct window *
window_find(const struct sb_state *st, int64_t sender_id, const char *phone)
{
    struct window *w =
        st->buckets[window_hash(sender_id, phone) & (st->nbuckets - 1)];

    for (; w != NULL; w = w->next)
        if (w->sender_id == sender_id && strcmp(w->phone, phone) == 0)
            return w;
    return NULL;
}

static void
windows_grow(struct sb_state *st)
{
    size_t n = st->nbuckets * 2;
    struct window **b = xcalloc(n, sizeof(*b));

    for (size_t i = 0; i < st->nbuckets; i++) {
        struct window *w = st->buckets[i], *next;
        for (; w != NULL; w = next) {
            size_t k = window_hash(w->sender_id, w->phone) & (n - 1);
            next = w->next;
            w->next = b[k];
            b[k] = w;
        }
    }
    free(st->buckets);
    st->buckets = b;
    st->nbuckets = n;
}

/* The pair's record, created (with a new conversation id) on first use. */
static struct window *
window_get(struct sb_state *st, int64_t sender_id, const char *phone)
{
    struct window *w = window_find(st, sender_id, phone);

    if (w != NULL)
        return w;
    if (st->nwindows >= st->nbuckets)
        windows_grow(st);
    w = xcalloc(1, sizeof(*w));
    w->sender_id = sender_id;
    w->phone = xstrdup(phone);
    w->conversation_id = st->next_conversation++;
    size_t k = window_hash(sender_id, phone) & (st->nbuckets - 1);
    w->next = st->buckets[k];
    st->buckets[k] = w;
    st->nwindows++;
    return w;
}

void
sb_state_inbound(struct sb_state *st, int64_t sender_id, const char *phone,
                 int64_t at)
{
    struct window *w = window_get(st, sender_id, phone);

    w->has_inbound = true;
    w->last_inbound = at;
    w->had_window = true;
    w->expires_at = at + SB_WINDOW_S;
}

static struct sb_session
session_of(const struct window *w, int64_t now)
{
    struct sb_session s = {0};

    if (w == NULL)
        return s;
    s.has_conversation = true;
    s.conversation_id = w->conversation_id;
    s.customer_name = w->customer_name;
    s.has_inbound = w->has_inbound;
    s.last_inbound = w->last_inbound;
    s.had_window = w->had_window;
    s.expires_at = w->expires_at;
    s.is_open = w->had_window && now < w->expires_at;
    if (s.is_open)
        s.minutes_remaining = (w->expires_at - now) / 60;
    return s;
}

struct sb_session
sb_state_session(const struct sb_state *st, int64_t sender_id,
                 const char *phone, int64_t now)
{
    return session_of(window_find(st, sender_id, phone), now);
}

/* ---- sends ---- */

static void
new_message(struct sb_state *st, const struct window *w, int64_t now,
            struct sb_sent *out)
{
    st->balance--;
    out->conversation_id = w->conversation_id;
    out->message_id = st->next_message++;
    out->whatsapp_message_id = st->next_whatsapp++;
    snprintf(out->message_sid, sizeof(out->message_sid), "SM%032" PRIx64,
             (uint64_t)out->message_id);
    out->session = session_of(w, now);
}

enum sb_outcome
sb_state_send_freeform(struct sb_state *st, int64_t sender_id,
                       const char *phone, int64_t now, struct sb_sent *out)
{
    const struct sb_sender *s = sb_state_sender(st, sender_id);
    struct window *w;

    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return SB_SENDER_NOT_FOUND;
    if (!sb_sender_online(s))
        return SB_SENDER_OFFLINE;
    w = window_find(st, sender_id, phone);
    out->session = session_of(w, now);
    if (!out->session.is_open)
        return SB_SESSION_EXPIRED;
    if (st->balance <= 0)
        return SB_NO_BALANCE;
    new_message(st, w, now, out);
    return SB_OK;
}

enum sb_outcome
sb_state_send_template(struct sb_state *st, int64_t sender_id,
                       int64_t template_id, const char *phone, const char *name,
                       int64_t now, struct sb_sent *out)
{
    const struct sb_sender *s = sb_state_sender(st, sender_id);
    struct sb_template t;
    struct window *w;

    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return SB_SENDER_NOT_FOUND;
    /* A template belongs to exactly one sender: <sender>*100 + 1..2. */
    if (template_id / 100 != sender_id || template_id % 100 < 1 ||
        template_id % 100 > SB_TEMPLATES_PER_SENDER)
        return SB_TEMPLATE_NOT_FOUND;
    if (!sb_sender_online(s))
        return SB_SENDER_OFFLINE;
    sb_sender_template_at(sender_id, (size_t)(template_id % 100 - 1), &t);
    if (strcmp(t.status, "approved") != 0)
        return SB_TEMPLATE_NOT_APPROVED;
    if (st->balance <= 0)
        return SB_NO_BALANCE;
    w = window_get(st, sender_id, phone);
    w->had_window = true;
    w->expires_at = now + SB_WINDOW_S;
    if (name != NULL) {
        free(w->customer_name);
        w->customer_name = xstrdup(name);
    }
    new_message(st, w, now, out);
    return SB_OK;
}
