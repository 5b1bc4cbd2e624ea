/* secret.h - the API key and the Redis password: where they are read
 * from, how a copy dies, and the account name derived from the key.
 *
 * The key is never in the config file: secret_read_api_key() reads it from
 * the file upstream.api_key_file names (a systemd credential, such as
 * /run/credentials/wagate.service/api-key, is such a file), else from the
 * environment variable upstream.api_key_env names. A message never holds
 * the key, only where it was looked for. Every heap copy of the key is
 * released with secret_free(), which wipes it first. */
#ifndef WAGATE_SECRET_H
#define WAGATE_SECRET_H

#include <stddef.h>

#include "config.h"

/* The key, surrounding whitespace stripped: 0 and a heap string in *key
 * (the caller releases it with secret_free()); -1, *key NULL and a
 * one-line message in err saying where it looked. The file is opened as
 * config_open() does (a FIFO is not waited on) and may hold at most 4 KiB;
 * a key that is empty or has a byte a header cannot carry (not visible
 * ASCII) is refused. */
int secret_read_api_key(const struct config *cfg, char **key, char *err,
                        size_t errlen);

/* The Redis password (SPEC section 11), read from the file
 * state.redis.password_file names as the API key's file is read
 * (surrounding whitespace stripped, at most 4 KiB, no NUL, not empty): 0
 * and a heap string in *pw (secret_free() it), or 0 and *pw NULL when no
 * file is configured; -1, *pw NULL and a one-line message naming the
 * file (never its content) in err. */
int secret_read_redis_password(const struct config *cfg, char **pw, char *err,
                               size_t errlen);

/* The account that names the shared keys (key_base is
 * "<prefix>{<account>}:"): state.account when given, else derived from
 * key, the API key: the first SECRET_ACCOUNT_HEX hex digits of
 * SHA-256("wagate-account\n" + key) -- a name, never the key, from which
 * the key cannot be found (key may be NULL only when state.account is
 * given). Written NUL-terminated into out. The gateway
 * derives it once, at start: a reload that rotates the key keeps the
 * account, so the shared keyspace does not move under running peers. */
#define SECRET_ACCOUNT_MAX CONFIG_ACCOUNT_MAX
#define SECRET_ACCOUNT_HEX 16
void secret_account(const struct config *cfg, const char *key,
                    char out[SECRET_ACCOUNT_MAX + 1]);

/* Wipes the string s (its strlen bytes) and frees it; NULL is a no-op. */
void secret_free(char *s);

#endif
