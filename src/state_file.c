/* state_file.c - see state_file.h. One writer and one reader of the same
 * little-endian layout; every byte before the end record goes through the
 * running SHA-256, in both directions. */
#include "state_file.h"

#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "digest.h"
#include "idempotency.h"
#include "reply.h"
#include "session_cache.h"
#include "state.h"

#define TAG_END 0
#define TAG_ANSWER 1
#define TAG_ENTRY 2
#define MAGIC_LEN 8

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- writing ---- */

struct writer {
    FILE *f;
    struct digest_stream *d;
    int err; /* errno of the first failure; 0 while all is well */
    int64_t now;
    const struct idem_answer *unknown;
    struct state_counts *n;
};

static void
w_bytes(struct writer *w, const void *p, size_t len)
{
    if (w->err != 0 || len == 0)
        return;
    errno = 0;
    if (fwrite(p, 1, len, w->f) != len) {
        w->err = errno ? errno : EIO;
        return;
    }
    digest_stream_add(w->d, p, len);
}

/* The low `bytes` bytes of v, least significant first. */
static void
w_uint(struct writer *w, uint64_t v, int bytes)
{
    unsigned char b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    w_bytes(w, b, (size_t)bytes);
}

static void
w_str(struct writer *w, const char *s, size_t len)
{
    w_uint(w, len, 4);
    w_bytes(w, s, len);
}

/* What the reader accepts, checked before writing, so that a save never
 * produces a file the next start would refuse. */
static int
answer_fits(const struct idem_record *r, const struct idem_answer *a)
{
    if (strlen(r->caller) > STATE_MAX_CALLER ||
        a->nheaders > STATE_MAX_HEADERS || a->body_len > STATE_MAX_BODY ||
        a->status < 100 || a->status > 999 || !idem_key_valid(r->key))
        return 0;
    size_t bytes = 0;
    for (size_t i = 0; i < a->nheaders; i++) {
        bytes += strlen(a->headers[i].name) + strlen(a->headers[i].value);
        if (bytes > STATE_MAX_HEADER_BYTES)
            return 0;
    }
    return 1;
}

static int
write_answer(void *arg, const struct idem_record *r)
{
    struct writer *w = arg;
    const struct idem_answer *a = r->answer ? r->answer : w->unknown;
    if (!answer_fits(r, a)) {
        w->n->answers_dropped++;
        return 0;
    }
    w_uint(w, TAG_ANSWER, 1);
    w_str(w, r->caller, strlen(r->caller));
    w_str(w, r->key, strlen(r->key));
    w_bytes(w, r->body_hash, IDEM_HASH_LEN);
    w_uint(w, (uint64_t)(r->answer ? r->stored_at : w->now), 8);
    w_uint(w, (uint64_t)a->status, 2);
    w_uint(w, a->nheaders, 4);
    for (size_t i = 0; i < a->nheaders; i++) {
        w_str(w, a->headers[i].name, strlen(a->headers[i].name));
        w_str(w, a->headers[i].value, strlen(a->headers[i].value));
    }
    w_str(w, a->body, a->body_len);
    w->n->answers++;
    if (r->answer == NULL)
        w->n->unknown++;
    return w->err;
}

static int
write_entry(void *arg, const struct cache_record *r)
{
    struct writer *w = arg;
    w_uint(w, TAG_ENTRY, 1);
    w_uint(w, (uint64_t)r->sender, 8);
    w_uint(w, r->phone, 8);
    w_uint(w, (uint64_t)r->when, 8);
    w_uint(w, (uint64_t)r->learned_at, 8);
    w_uint(w, (uint64_t)r->open, 1);
    w_uint(w, (uint64_t)r->source, 1);
    w->n->entries++;
    return w->err;
}

/* The whole file into f; the errno of the first failure, or 0. */
static int
write_all(FILE *f, const struct idem_store *idem,
          const struct session_cache *cache, int64_t now,
          struct state_counts *n)
{
    struct state_unknown u;
    state_unknown_init(&u);
    struct writer w = {f, digest_stream_new(), 0, now, &u.answer, n};
    w_bytes(&w, STATE_FILE_MAGIC, MAGIC_LEN);
    w_uint(&w, STATE_FILE_VERSION, 4);
    w_uint(&w, 0, 4); /* flags */
    w_uint(&w, (uint64_t)now, 8);
    (void)idem_export(idem, write_answer, &w);
    (void)cache_export(cache, write_entry, &w);
    w_uint(&w, TAG_END, 1);
    w_uint(&w, n->answers, 8);
    w_uint(&w, n->entries, 8);
    unsigned char sum[DIGEST_LEN];
    digest_stream_end(w.d, sum);
    if (w.err == 0 && fwrite(sum, 1, sizeof(sum), f) != sizeof(sum))
        w.err = errno ? errno : EIO;
    state_unknown_free(&u);
    return w.err;
}

/* fsync of the directory holding path, so that the rename survives a
 * power cut. */
static int
sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL   ? xstrdup(".")
                : slash == path ? xstrdup("/")
                                : xstrndup(path, (size_t)(slash - path));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Creates and removes a file next to path, as a save would. */
static int
probe_dir(const char *path, char *err, size_t errlen)
{
    size_t n = strlen(path) + sizeof(".XXXXXX");
    char *name = xmalloc(n);
    snprintf(name, n, "%s.XXXXXX", path);
    int fd = mkstemp(name);
    if (fd < 0)
        set_err(err, errlen,
                "cannot create a file next to it (the state could not be "
                "saved there): %s",
                strerror(errno));
    else {
        close(fd);
        unlink(name);
    }
    free(name);
    return fd < 0 ? -1 : 0;
}

/* path + ".lock", opened (never through a symlink) and locked. */
static int
lock_file(const char *path, char *err, size_t errlen)
{
    size_t n = strlen(path) + sizeof(".lock");
    char *name = xmalloc(n);
    struct stat st;
    snprintf(name, n, "%s.lock", path);
    int fd = open(
        name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK,
        0600);
    free(name);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(err, errlen, "cannot open its .lock file: %s",
                fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            set_err(err, errlen,
                    "another wagate is using it (its .lock file is locked)");
        else
            set_err(err, errlen, "cannot lock its .lock file: %s", strerror(e));
        return -1;
    }
    return fd;
}

int
state_file_claim(const char *path, int *lock_fd, char *err, size_t errlen)
{
    *lock_fd = -1;
    if (probe_dir(path, err, errlen) != 0)
        return -1;
    *lock_fd = lock_file(path, err, errlen);
    return *lock_fd < 0 ? -1 : 0;
}

int
state_file_save(const char *path, const struct idem_store *idem,
                const struct session_cache *cache, int64_t now,
                struct state_counts *n, char *err, size_t errlen)
{
    struct state_counts local;
    if (n == NULL)
        n = &local;
    memset(n, 0, sizeof(*n));
    size_t tlen = strlen(path) + sizeof(".XXXXXX");
    char *tmp = xmalloc(tlen);
    snprintf(tmp, tlen, "%s.XXXXXX", path);
    int fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0) {
        set_err(err, errlen, "cannot create a temporary file next to it: %s",
                strerror(errno));
        free(tmp);
        return -1;
    }
    const char *step = "write";
    int e = 0;
    FILE *f = fdopen(fd, "wb");
    if (f == NULL) {
        e = errno;
        close(fd);
    } else {
        e = write_all(f, idem, cache, now, n);
        if (e == 0 && fflush(f) != 0)
            e = errno;
        if (e == 0 && fsync(fileno(f)) != 0) {
            e = errno;
            step = "fsync";
        }
        if (fclose(f) != 0 && e == 0)
            e = errno;
    }
    if (e == 0 && rename(tmp, path) != 0) {
        e = errno;
        step = "rename";
    }
    if (e != 0) {
        set_err(err, errlen, "%s: %s (the previous file, if any, is unchanged)",
                step, strerror(e));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    if (sync_dir(path) != 0) {
        set_err(err, errlen,
                "renamed into place, but its directory could not be synced "
                "(a power cut may undo it): %s",
                strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- reading ---- */

struct reader {
    FILE *f;
    struct digest_stream *d;
    uint64_t off; /* bytes read so far */
    char *buf;    /* one answer's strings and body */
    size_t cap;
    size_t *offs; /* 2 per header: name and value offsets in buf */
    struct idem_header *hdrs;
    char *err;
    size_t errlen;
};

static int r_fail(struct reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
r_fail(struct reader *r, const char *fmt, ...)
{
    va_list ap;
    if (r->errlen == 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(r->err, r->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int
r_bytes(struct reader *r, void *p, size_t len)
{
    if (len == 0)
        return 0;
    size_t got = fread(p, 1, len, r->f);
    if (got != len) {
        if (ferror(r->f))
            return r_fail(r, "read error at byte %llu",
                          (unsigned long long)(r->off + got));
        return r_fail(r, "truncated at byte %llu",
                      (unsigned long long)(r->off + got));
    }
    digest_stream_add(r->d, p, len);
    r->off += len;
    return 0;
}

static int
r_uint(struct reader *r, int bytes, uint64_t *v)
{
    unsigned char b[8];
    if (r_bytes(r, b, (size_t)bytes) != 0)
        return -1;
    *v = 0;
    for (int i = 0; i < bytes; i++)
        *v |= (uint64_t)b[i] << (8 * i);
    return 0;
}

static int
r_int64(struct reader *r, int64_t *v)
{
    uint64_t u;
    if (r_uint(r, 8, &u) != 0)
        return -1;
    memcpy(v, &u, sizeof(*v)); /* two's complement, as written */
    return 0;
}

/* Reads a u32 length (at most max) and that many bytes into buf at
 * *used, NUL-terminated; *used moves past it. A text (every string but
 * the body) may hold no NUL: the stores keep C strings. what names the
 * field in the refusal. */
static int
r_str(struct reader *r, size_t *used, uint64_t max, int text, const char *what,
      uint64_t *len)
{
    uint64_t at = r->off;
    if (r_uint(r, 4, len) != 0)
        return -1;
    if (*len > max)
        return r_fail(r,
                      "corrupt: %s of %llu bytes at byte %llu (at most "
                      "%llu)",
                      what, (unsigned long long)*len, (unsigned long long)at,
                      (unsigned long long)max);
    size_t need = *used + (size_t)*len + 1;
    if (need > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < need)
            cap *= 2;
        r->buf = xrealloc(r->buf, cap);
        r->cap = cap;
    }
    char *p = r->buf + *used;
    if (r_bytes(r, p, (size_t)*len) != 0)
        return -1;
    if (text && memchr(p, '\0', (size_t)*len) != NULL)
        return r_fail(r, "corrupt: %s with a NUL byte at byte %llu", what,
                      (unsigned long long)at);
    p[*len] = '\0';
    *used = need;
    return 0;
}

/* One answer record (its tag already read) into idem. */
static int
read_answer(struct reader *r, struct idem_store *idem, int64_t now,
            struct state_counts *n)
{
    uint64_t at = r->off - 1, len, status, nh, hbytes = 0;
    size_t used = 0, key_off, body_off;
    unsigned char hash[IDEM_HASH_LEN];
    int64_t stored;
    if (r_str(r, &used, STATE_MAX_CALLER, 1, "a caller name", &len) != 0)
        return -1;
    key_off = used;
    if (r_str(r, &used, IDEM_KEY_MAX, 1, "an Idempotency-Key", &len) != 0 ||
        r_bytes(r, hash, sizeof(hash)) != 0 || r_int64(r, &stored) != 0 ||
        r_uint(r, 2, &status) != 0 || r_uint(r, 4, &nh) != 0)
        return -1;
    if (status < 100 || status > 999 || nh > STATE_MAX_HEADERS)
        return r_fail(r,
                      "corrupt: answer at byte %llu (status %llu, %llu "
                      "headers)",
                      (unsigned long long)at, (unsigned long long)status,
                      (unsigned long long)nh);
    for (uint64_t i = 0; i < nh; i++) {
        r->offs[2 * i] = used;
        if (r_str(r, &used, STATE_MAX_HEADER_BYTES - hbytes, 1, "a header name",
                  &len) != 0)
            return -1;
        hbytes += len;
        r->offs[2 * i + 1] = used;
        if (r_str(r, &used, STATE_MAX_HEADER_BYTES - hbytes, 1,
                  "a header value", &len) != 0)
            return -1;
        hbytes += len;
    }
    body_off = used;
    if (r_str(r, &used, STATE_MAX_BODY, 0, "a body", &len) != 0)
        return -1;
    /* buf has stopped moving: the pointers can be taken now */
    for (uint64_t i = 0; i < nh; i++) {
        r->hdrs[i].name = r->buf + r->offs[2 * i];
        r->hdrs[i].value = r->buf + r->offs[2 * i + 1];
    }
    struct idem_answer a = {
        .status = (int)status,
        .headers = nh ? r->hdrs : NULL,
        .nheaders = (size_t)nh,
        .body = r->buf + body_off,
        .body_len = (size_t)len,
    };
    struct idem_record rec = {
        .caller = r->buf,
        .key = r->buf + key_off,
        .body_hash = hash,
        .stored_at = stored,
        .answer = &a,
    };
    int rc = idem_import(idem, &rec, now);
    if (rc < 0)
        return r_fail(r,
                      "corrupt: the answer at byte %llu is not one wagate "
                      "keeps",
                      (unsigned long long)at);
    if (rc == 0)
        n->answers_dropped++;
    return 0;
}

/* One session entry (its tag already read) into cache. */
static int
read_entry(struct reader *r, struct session_cache *cache, int64_t now,
           int64_t recheck_ms, struct state_counts *n)
{
    uint64_t at = r->off - 1, phone, open, source;
    int64_t sender, when, learned;
    if (r_int64(r, &sender) != 0 || r_uint(r, 8, &phone) != 0 ||
        r_int64(r, &when) != 0 || r_int64(r, &learned) != 0 ||
        r_uint(r, 1, &open) != 0 || r_uint(r, 1, &source) != 0)
        return -1;
    struct cache_record rec = {
        .sender = sender,
        .phone = phone,
        .open = (int)open,
        .when = when,
        .learned_at = learned,
        .source = (enum cache_source)source,
    };
    int rc = cache_import(cache, &rec, now, recheck_ms);
    if (rc < 0)
        return r_fail(r,
                      "corrupt: the session entry at byte %llu is not one "
                      "wagate keeps",
                      (unsigned long long)at);
    if (rc == 0)
        n->entries_dropped++;
    return 0;
}

static int
read_header(struct reader *r, struct state_counts *n)
{
    unsigned char magic[MAGIC_LEN];
    uint64_t version, flags;
    size_t got = fread(magic, 1, sizeof(magic), r->f);
    if (ferror(r->f))
        return r_fail(r, "read error at byte 0");
    if (memcmp(magic, STATE_FILE_MAGIC, got) != 0)
        return r_fail(r, "not a wagate state file");
    if (got < sizeof(magic))
        return r_fail(r, "truncated at byte %zu", got);
    digest_stream_add(r->d, magic, sizeof(magic));
    r->off = sizeof(magic);
    if (r_uint(r, 4, &version) != 0)
        return -1;
    if (version != STATE_FILE_VERSION)
        return r_fail(r, "version %llu; this wagate reads version %d",
                      (unsigned long long)version, STATE_FILE_VERSION);
    if (r_uint(r, 4, &flags) != 0 || r_int64(r, &n->written_at) != 0)
        return -1;
    if (flags != 0)
        return r_fail(r, "corrupt: unknown flags %#llx",
                      (unsigned long long)flags);
    return 0;
}

/* The end record: counts, checksum, then nothing. */
static int
read_end(struct reader *r, uint64_t answers, uint64_t entries)
{
    uint64_t na, ne;
    unsigned char want[DIGEST_LEN], got[DIGEST_LEN];
    if (r_uint(r, 8, &na) != 0 || r_uint(r, 8, &ne) != 0)
        return -1;
    digest_stream_end(r->d, want);
    r->d = NULL;
    size_t k = fread(got, 1, sizeof(got), r->f);
    if (k != sizeof(got))
        return r_fail(r, "truncated at byte %llu",
                      (unsigned long long)(r->off + k));
    r->off += sizeof(got);
    if (!digest_equal(want, got, sizeof(got)))
        return r_fail(r, "checksum mismatch (the file is corrupt)");
    if (na != answers || ne != entries)
        return r_fail(r,
                      "corrupt: %llu answers and %llu entries announced, "
                      "%llu and %llu found",
                      (unsigned long long)na, (unsigned long long)ne,
                      (unsigned long long)answers, (unsigned long long)entries);
    if (fgetc(r->f) != EOF)
        return r_fail(r, "corrupt: bytes after the end, at byte %llu",
                      (unsigned long long)r->off);
    return 0;
}

static int
read_all(struct reader *r, struct idem_store *idem, struct session_cache *cache,
         int64_t now, int64_t recheck_ms, struct state_counts *n)
{
    uint64_t answers = 0, entries = 0, tag;
    if (read_header(r, n) != 0)
        return -1;
    for (;;) {
        if (r_uint(r, 1, &tag) != 0)
            return -1;
        if (tag == TAG_END)
            return read_end(r, answers, entries);
        if (tag == TAG_ANSWER) {
            if (read_answer(r, idem, now, n) != 0)
                return -1;
            answers++;
        } else if (tag == TAG_ENTRY) {
            if (read_entry(r, cache, now, recheck_ms, n) != 0)
                return -1;
            entries++;
        } else {
            return r_fail(r, "corrupt: unknown record %llu at byte %llu",
                          (unsigned long long)tag,
                          (unsigned long long)(r->off - 1));
        }
    }
}

enum state_load_result
state_file_load(const char *path, struct idem_store *idem,
                struct session_cache *cache, int64_t now, int64_t recheck_ms,
                struct state_counts *n, char *err, size_t errlen)
{
    struct state_counts local;
    struct stat st;
    if (n == NULL)
        n = &local;
    memset(n, 0, sizeof(*n));
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer, before the loop runs, where not even SIGTERM ends the wait */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT)
        return STATE_ABSENT;
    if (fd < 0) {
        set_err(err, errlen, "cannot open: %s", strerror(errno));
        return STATE_REFUSED;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(err, errlen, "not a regular file");
        close(fd);
        return STATE_REFUSED;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        set_err(err, errlen, "cannot read: %s", strerror(errno));
        close(fd);
        return STATE_REFUSED;
    }
    FILE *f = fdopen(fd, "rb");
    if (f == NULL) {
        set_err(err, errlen, "cannot read: %s", strerror(errno));
        close(fd);
        return STATE_REFUSED;
    }
    struct idem_stats is0, is1;
    struct cache_stats cs0, cs1;
    idem_get_stats(idem, &is0);
    cache_get_stats(cache, &cs0);
    struct reader r = {
        .f = f,
        .d = digest_stream_new(),
        .offs = xcalloc(2 * STATE_MAX_HEADERS, sizeof(size_t)),
        .hdrs = xcalloc(STATE_MAX_HEADERS, sizeof(struct idem_header)),
        .err = err,
        .errlen = errlen,
    };
    int rc = read_all(&r, idem, cache, now, recheck_ms, n);
    digest_stream_free(r.d);
    free(r.buf);
    free(r.offs);
    free(r.hdrs);
    fclose(f);
    if (rc != 0)
        return STATE_REFUSED;
    /* what the stores hold now: evictions for room are not counted in */
    idem_get_stats(idem, &is1);
    cache_get_stats(cache, &cs1);
    n->answers = is1.entries > is0.entries ? is1.entries - is0.entries : 0;
    n->entries = cs1.entries > cs0.entries ? cs1.entries - cs0.entries : 0;
    return STATE_LOADED;
}
