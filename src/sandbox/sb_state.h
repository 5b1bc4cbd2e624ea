/* sb_state: the simulated account (pure: no I/O; time is an argument).
 *
 * Holds the senders and their templates, the balance, one 24-hour window per
 * (sender, recipient) and the sandbox clock. The send functions apply the
 * upstream's business rules in its order of checks; request validation
 * (JSON, E.164) is the caller's job and happens before.
 *
 * Times `now`/`at` are sandbox seconds since the epoch (see
 * sb_state_now()); `mono_ms` is a monotonic clock in milliseconds.
 * Strings passed in are copied. Pointers returned (senders, session
 * customer_name) are borrowed and stay valid until the next call that
 * changes the state.
 */
#ifndef SB_STATE_H
#define SB_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_WINDOW_S 86400
#define SB_SENDER_ID_MAX 9999999
#define SB_STATUS_MAX 31
#define SB_TEMPLATES_PER_SENDER 2

struct sb_sender {
    int64_t id;
    char status[SB_STATUS_MAX + 1]; /* "online", "offline", ... */
};

/* Templates are derived from the sender id: <id>*100+1 is approved
 * (appointment_reminder, 3 variables), <id>*100+2 is pending. Static data. */
struct sb_template {
    int64_t id;
    const char *name, *language, *category, *status, *body_text;
    const char *const *variables;
    size_t nvariables;
};

struct sb_session {
    bool has_conversation; /* a window or a message ever existed */
    int64_t conversation_id;
    const char *customer_name; /* borrowed; NULL when unknown */
    bool has_inbound;          /* the customer ever wrote */
    int64_t last_inbound;
    bool had_window; /* a window was ever opened */
    int64_t expires_at;
    bool is_open;
    int64_t minutes_remaining; /* whole minutes, when open */
};

struct sb_sent {
    int64_t conversation_id, message_id, whatsapp_message_id;
    char message_sid[35]; /* "SM" + 32 hex digits */
    struct sb_session session;
};

enum sb_outcome {
    SB_OK,
    SB_SENDER_NOT_FOUND,
    SB_TEMPLATE_NOT_FOUND,
    SB_SENDER_OFFLINE,
    SB_TEMPLATE_NOT_APPROVED,
    SB_SESSION_EXPIRED,
    SB_NO_BALANCE,
};

struct sb_state;

struct sb_state *sb_state_new(int64_t balance);
void sb_state_free(struct sb_state *st);

/* A status is 1..SB_STATUS_MAX of [a-z_]. */
bool sb_status_valid(const char *status);
/* Returns -1 for an id outside 1..SB_SENDER_ID_MAX, a bad status or a
 * duplicate id. */
int sb_state_add_sender(struct sb_state *st, int64_t id, const char *status);
int sb_state_set_sender_status(struct sb_state *st, int64_t id,
                               const char *status);
size_t sb_state_sender_count(const struct sb_state *st);
const struct sb_sender *sb_state_sender_at(const struct sb_state *st, size_t i);
const struct sb_sender *sb_state_sender(const struct sb_state *st, int64_t id);
bool sb_sender_online(const struct sb_sender *s);
/* "+1415555" + id padded to 4 digits; buf of at least 24 bytes. */
void sb_sender_phone(const struct sb_sender *s, char *buf, size_t n);
/* "Sender <id>"; buf of at least 32 bytes. */
void sb_sender_name(const struct sb_sender *s, char *buf, size_t n);
/* The i-th (0-based, < SB_TEMPLATES_PER_SENDER) template of a sender. */
void sb_sender_template_at(int64_t sender_id, size_t i,
                           struct sb_template *out);

int64_t sb_state_balance(const struct sb_state *st);
void sb_state_set_balance(struct sb_state *st, int64_t balance);

/* The sandbox clock runs with the monotonic clock from the value set here.
 */
void sb_state_clock_set(struct sb_state *st, int64_t epoch_ms, int64_t mono_ms);
int64_t sb_state_now(const struct sb_state *st, int64_t mono_ms);
/* Moves the clock by `seconds` (may be negative). -1, unchanged, when the
 * result would leave years 0001..9999. */
int sb_state_clock_advance(struct sb_state *st, int64_t seconds,
                           int64_t mono_ms);

/* The customer wrote at `at`: the window is open until at + 24 h. */
void sb_state_inbound(struct sb_state *st, int64_t sender_id, const char *phone,
                      int64_t at);
struct sb_session sb_state_session(const struct sb_state *st, int64_t sender_id,
                                   const char *phone, int64_t now);

/* Checks, in order: sender exists, online, window open, balance. On SB_OK
 * spends 1 and fills *out; on SB_SESSION_EXPIRED fills out->session. */
enum sb_outcome sb_state_send_freeform(struct sb_state *st, int64_t sender_id,
                                       const char *phone, int64_t now,
                                       struct sb_sent *out);
/* Checks, in order: sender exists, template is the sender's, sender
 * online, template approved, balance. On SB_OK spends 1, opens the window
 * until now + 24 h, remembers `name` (may be NULL) as the customer's name
 * and fills *out. */
enum sb_outcome sb_state_send_template(struct sb_state *st, int64_t sender_id,
                                       int64_t template_id, const char *phone,
                                       const char *name, int64_t now,
                                       struct sb_sent *out);

#endif
