/* sb_inbox: the conversations the inbox page shows (pure: no I/O).
 *
 * Every send the sandbox judged (its sender, recipient and message or
 * template were well formed, whatever it then answered) and every message
 * a customer wrote (POST /_sandbox/inbound) is kept in the thread of its
 * (sender, recipient), in arrival order. At most SB_INBOX_MAX messages are
 * kept in all: beyond, the oldest is dropped, and a thread left without a
 * message is dropped with it, so the inbox's memory is bounded however
 * long the sandbox runs.
 *
 * Everything passed in is copied. The inbox owns its threads and messages;
 * pointers it returns are borrowed and stay valid until the next
 * sb_inbox_add(), sb_inbox_clear() or sb_inbox_free(). Message ids are 1,
 * 2, ... and never reused, also across a clear. Times are sandbox seconds
 * (sb_state_now()).
 */
#ifndef SB_INBOX_H
#define SB_INBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_INBOX_MAX 100000    /* messages kept in all */
#define SB_INBOX_PHONE_MAX 32  /* bytes of a recipient phone */
#define SB_INBOX_TEXT_MAX 8192 /* bytes of a text kept; longer is cut */
#define SB_INBOX_PAGE_MAX 500  /* threads or messages in one page */

enum sb_inbox_kind {
    SB_INBOX_FREEFORM, /* sent through send-freeform */
    SB_INBOX_TEMPLATE, /* sent through send, template filled in */
    SB_INBOX_INBOUND   /* written by the customer */
};

struct sb_inbox_thread;

struct sb_inbox_msg {
    uint64_t id;
    int64_t at;
    enum sb_inbox_kind kind;
    char *text; /* NUL appended; NULL for an inbound message without one */
    size_t text_len;
    char *template_name; /* SB_INBOX_TEMPLATE only, else NULL */
    int status;          /* what the sandbox answered; 0 for inbound */
    char *error_code;    /* for a refused send, else NULL */
    struct sb_inbox_thread *thread;
};

struct sb_inbox_thread {
    int64_t sender_id;
    char phone[SB_INBOX_PHONE_MAX + 1];
    size_t count;     /* messages kept */
    uint64_t last_id; /* its newest message */
    int64_t last_at;
};

struct sb_inbox;

struct sb_inbox *sb_inbox_new(void);
void sb_inbox_free(struct sb_inbox *ib);
void sb_inbox_clear(struct sb_inbox *ib);

/* Appends a message to the thread of (sender_id, phone), creating it.
 * text may be NULL; template_name and error_code may be NULL. Returns the
 * message (borrowed), or NULL when phone is longer than
 * SB_INBOX_PHONE_MAX (nothing kept). */
const struct sb_inbox_msg *sb_inbox_add(struct sb_inbox *ib, int64_t sender_id,
                                        const char *phone, int64_t at,
                                        enum sb_inbox_kind kind,
                                        const char *text, size_t text_len,
                                        const char *template_name, int status,
                                        const char *error_code);

size_t sb_inbox_count(const struct sb_inbox *ib); /* messages kept */
size_t sb_inbox_thread_count(const struct sb_inbox *ib);

/* Threads newest activity first, from `offset`, at most `limit` (capped at
 * SB_INBOX_PAGE_MAX) into out (room for that many). Returns how many. */
size_t sb_inbox_threads(const struct sb_inbox *ib, size_t offset, size_t limit,
                        const struct sb_inbox_thread **out);

/* The thread of (sender_id, phone), or NULL. */
const struct sb_inbox_thread *sb_inbox_thread(const struct sb_inbox *ib,
                                              int64_t sender_id,
                                              const char *phone);

/* A thread's messages older than `before_id` (0: from the newest), newest
 * first, at most `limit` (capped at SB_INBOX_PAGE_MAX) into out. Returns
 * how many; *more tells whether older ones remain. */
size_t sb_inbox_messages(const struct sb_inbox *ib,
                         const struct sb_inbox_thread *t, uint64_t before_id,
                         size_t limit, const struct sb_inbox_msg **out,
                         bool *more);

/* A template's body_text with {{N}} replaced by value N of `values` (1 is
 * the first; NULL or a missing one leaves {{N}} as written), into a
 * malloc'd string of *len bytes. */
char *sb_inbox_fill(const char *body_text, const char *const *values,
                    size_t nvalues, size_t *len);

#endif
