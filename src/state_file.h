/* state_file.h - the memory backend's state across a restart
 * (config state.file): the idempotency store and the session cache are
 * written to one file when a drain ends and read back at start, so that a
 * retry after a restart is replayed instead of sent again, and a learned
 * closed window is still known.
 *
 * Blocking file I/O, on purpose: state_file_save() is called once the
 * event loop has stopped (the drain ended) and state_file_load() before the
 * gateway listens. Neither is ever on a request's path.
 *
 * Atomic: the new state goes to a temporary file in the same directory
 * (mkstemp, mode 0600), is fsync'd, renamed over path, and the directory is
 * fsync'd. path always holds either the previous complete state or the new
 * one; a failed save leaves the previous file as it was.
 *
 * Keys still in flight when the state is saved (the drain deadline cut
 * them off: their message may have left) are written with an
 * unknown-outcome answer, 502 UPSTREAM_UNAVAILABLE with "outcome":
 * "unknown" (SPEC sections 2 and 5), so that their retry after the restart
 * is replayed, never sent again.
 *
 * Format, version 1, every integer little-endian:
 *   header  "WGSTATE\0", u32 version, u32 flags (0), i64 written_at (ms)
 *   records, each a u8 tag:
 *     1 idempotency answer: u32 n + caller, u32 n + key, 32-byte body
 *       SHA-256, i64 stored_at (ms), u16 status, u32 nheaders, then per
 *       header u32 n + name, u32 n + value; u32 n + body
 *     2 session entry: i64 sender, u64 phone, i64 when, i64 learned_at,
 *       u8 open, u8 source (session_cache.h, struct cache_record)
 *   end     u8 tag 0, u64 answers, u64 entries (the counts of records
 *           1 and 2), 32-byte SHA-256 of every byte before it; then EOF.
 *
 * Reading is bounded whatever the file says: every length is checked
 * against the STATE_MAX_* limits below before anything is allocated, and
 * the stores keep at most their max_entries (the oldest answers and least
 * recently used entries go), so a hostile file costs at most what the
 * running gateway could hold. The checksum catches accidents (truncation,
 * bit rot, another program's file); it is not a signature: the directory
 * must be writable only by the gateway (the systemd unit's
 * StateDirectory= is). */
#ifndef WAGATE_STATE_FILE_H
#define WAGATE_STATE_FILE_H

#include <stddef.h>
#include <stdint.h>

struct idem_store;
struct session_cache;

#define STATE_FILE_MAGIC "WGSTATE" /* 8 bytes with its NUL */
#define STATE_FILE_VERSION 1

/* Per answer. The writer skips (and counts) an answer over them, so it
 * never writes a file its reader would refuse. Upstream answers are far
 * below: 64 KiB of headers, 8 MiB of body (upstream.c). */
#define STATE_MAX_CALLER 4096
#define STATE_MAX_HEADERS 1024
#define STATE_MAX_HEADER_BYTES (256u << 10) /* names and values together */
#define STATE_MAX_BODY (16u << 20)

/* The unknown-outcome answer written for keys in flight is reply.h's
 * GW_ERR_STOPPED_UNKNOWN. */

enum state_load_result {
    STATE_LOADED = 0, /* the stores hold what the file held, still valid */
    STATE_ABSENT,     /* no file at path: the stores are untouched */
    STATE_REFUSED,    /* corrupt, truncated, foreign or unreadable */
};

struct state_counts {
    size_t answers;         /* idempotency answers written / kept */
    size_t unknown;         /* save: of those, keys in flight */
    size_t answers_dropped; /* load: expired or repeated; save: too large */
    size_t entries;         /* session entries written / kept */
    size_t entries_dropped; /* load: no longer useful (session_cache.h) */
    int64_t written_at;     /* load: when the file was written (ms) */
};

/* Claims path for this process, before state_file_load(): creates and
 * removes a temporary file next to it, as a save would (so that a missing
 * or read-only directory is found at start, not when the drain ends and
 * everything kept would be lost), then takes an exclusive lock on
 * path + ".lock" (created, mode 0600, never followed if a symlink), so
 * that a second gateway given the same state.file refuses to start rather
 * than overwrite the first one's state. The lock is held while *lock_fd
 * is open, and ends with the process whatever the way (kill -9 too); the
 * lock file stays. 0 and *lock_fd set; -1 and one line in err (without the
 * path), *lock_fd -1. */
int state_file_claim(const char *path, int *lock_fd, char *err, size_t errlen);

/* Writes idem and cache (borrowed, not modified) to path atomically.
 * now (wall ms) is written as written_at and is the stored time of the
 * unknown-outcome answers. 0 and *n filled (n may be NULL); -1 and one
 * line in err (without the path: the caller names it), the temporary file
 * removed and path untouched, unless err says it was renamed into place. */
int state_file_save(const char *path, const struct idem_store *idem,
                    const struct session_cache *cache, int64_t now,
                    struct state_counts *n, char *err, size_t errlen);

/* Reads path into idem and cache (borrowed; normally empty), dropping what
 * has expired at now (wall ms): idem_import() and cache_import() with
 * recheck_ms, so nothing lives longer than its TTL or trust from now on,
 * even if the clock moved back. *n (may be NULL) is filled. On
 * STATE_REFUSED err holds one line saying why ("not a wagate state file",
 * "version 7; this wagate reads version 1", "truncated at byte 812",
 * "checksum mismatch", ...), and the stores may hold part of the file:
 * the caller discards them. */
enum state_load_result
state_file_load(const char *path, struct idem_store *idem,
                struct session_cache *cache, int64_t now, int64_t recheck_ms,
                struct state_counts *n, char *err, size_t errlen);

#endif
