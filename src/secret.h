/* secret.h - the API key: where it is read from, and how a copy dies.
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

/* Wipes the string s (its strlen bytes) and frees it; NULL is a no-op. */
void secret_free(char *s);

#endif
