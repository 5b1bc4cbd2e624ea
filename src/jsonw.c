/* jsonw.c - see jsonw.h. */
#include "jsonw.h"

#include <event2/buffer.h>
#include <string.h>

void
jw_init(struct jw *w, struct evbuffer *out)
{
    w->out = out;
    w->len = 0;
    w->failed = 0;
}

static void
flush(struct jw *w)
{
    if (w->len > 0 && evbuffer_add(w->out, w->buf, w->len) != 0)
        w->failed = 1;
    w->len = 0;
}

void
jw_raw(struct jw *w, const char *s, size_t n)
{
    if (n > sizeof(w->buf) - w->len) {
        flush(w);
        if (n > sizeof(w->buf)) { /* too big to gather: straight through */
            if (evbuffer_add(w->out, s, n) != 0)
                w->failed = 1;
            return;
        }
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void
put(struct jw *w, char c)
{
    if (w->len == sizeof(w->buf))
        flush(w);
    w->buf[w->len++] = c;
}

/* The escape of byte c, or NULL when it goes as it is. */
static const char *
escape_of(unsigned char c, char u[7])
{
    static const char hex[] = "0123456789abcdef";
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    default:
        if (c >= 0x20)
            return NULL;
        memcpy(u, "\\u00", 4);
        u[4] = hex[c >> 4];
        u[5] = hex[c & 15];
        u[6] = '\0';
        return u;
    }
}

void
jw_str(struct jw *w, const char *s)
{
    put(w, '"');
    const char *run = s; /* bytes that go as they are, from here */
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        char u[7];
        const char *e = c ? escape_of(c, u) : NULL;
        if (c != '\0' && e == NULL)
            continue;
        jw_raw(w, run, (size_t)(p - run));
        if (c == '\0')
            break;
        jw_raw(w, e, strlen(e));
        run = p + 1;
    }
    put(w, '"');
}

void
jw_int(struct jw *w, long long v)
{
    char d[24];
    size_t i = sizeof(d);
    /* in unsigned arithmetic, so that LLONG_MIN has a magnitude */
    unsigned long long m = v < 0 ? 0ULL - (unsigned long long)v
                                 : (unsigned long long)v;
    do {
        d[--i] = (char)('0' + m % 10);
        m /= 10;
    } while (m > 0);
    if (v < 0)
        d[--i] = '-';
    jw_raw(w, d + i, sizeof(d) - i);
}

int
jw_end(struct jw *w)
{
    flush(w);
    return w->failed ? -1 : 0;
}
