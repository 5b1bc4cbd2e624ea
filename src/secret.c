/* secret.c - see secret.h. */
#include "secret.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "digest.h"
#include "text.h"

void
secret_free(char *s)
{
    if (s == NULL)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

static char *
strip_dup(const char *s, size_t n)
{
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    return xstrndup(s, n);
}

/* It goes in an Authorization header: visible ASCII, at least one byte. */
static int
key_acceptable(const char *k)
{
    return *k != '\0' && text_visible_ascii(k);
}

/* What a secret file holds for: its key in the config and the words
 * messages start with. */
struct secret_kind {
    const char *key;  /* "upstream.api_key_file" */
    const char *none; /* "no API key" */
};

static const struct secret_kind api_key = {"upstream.api_key_file",
                                           "no API key"};
static const struct secret_kind redis_pw = {"state.redis.password_file",
                                            "no Redis password"};

/* The secret in the file at path (where: its name as messages show it),
 * surrounding whitespace stripped. A NUL would cut it short: refused. */
static int
read_secret_file(const struct secret_kind *kind, const char *path,
                 const char *where, char **out, char *err, size_t errlen)
{
    FILE *f = config_open(path);
    if (f == NULL)
        return text_error(err, errlen, "%s: cannot read %s %s: %s", kind->none,
                          kind->key, where, strerror(errno));
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    const char *why = n == sizeof(buf)               ? "is larger than 4 KiB"
                      : memchr(buf, '\0', n) != NULL ? "holds a NUL byte"
                                                     : NULL;
    if (why == NULL)
        *out = strip_dup(buf, n);
    explicit_bzero(buf, sizeof(buf));
    if (why != NULL)
        return text_error(err, errlen, "%s: %s %s", kind->none, where, why);
    return 0;
}

/* The key from the environment variable name. */
static int
read_key_env(const char *name, const char *where, char **key, char *err,
             size_t errlen)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return text_error(err, errlen,
                          "no API key: environment variable %s "
                          "is not set (or set upstream.api_key_file)",
                          where);
    *key = strip_dup(v, strlen(v));
    return 0;
}

int
secret_read_api_key(const struct config *cfg, char **key, char *err,
                    size_t errlen)
{
    const char *file = cfg->api_key_file;
    char *where = text_escape(file ? file : cfg->api_key_env);
    *key = NULL;
    int rc = file ? read_secret_file(&api_key, file, where, key, err, errlen)
                  : read_key_env(cfg->api_key_env, where, key, err, errlen);
    if (rc == 0 && !key_acceptable(*key)) {
        secret_free(*key);
        *key = NULL;
        rc = text_error(err, errlen,
                        "no API key: the key in %s %s is empty or "
                        "has characters a header cannot carry",
                        file ? "file" : "environment variable", where);
    }
    free(where);
    return rc;
}

int
secret_read_redis_password(const struct config *cfg, char **pw, char *err,
                           size_t errlen)
{
    const char *file = cfg->redis_password_file;
    *pw = NULL;
    if (file == NULL)
        return 0;
    char *where = text_escape(file);
    int rc = read_secret_file(&redis_pw, file, where, pw, err, errlen);
    if (rc == 0 && **pw == '\0') {
        secret_free(*pw);
        *pw = NULL;
        rc = text_error(err, errlen, "%s: the file %s is empty", redis_pw.none,
                        where);
    }
    free(where);
    return rc;
}

void
secret_account(const struct config *cfg, const char *key,
               char out[SECRET_ACCOUNT_MAX + 1])
{
    static const char label[] = "wagate-account\n";
    unsigned char d[DIGEST_LEN];
    if (cfg->state_account != NULL) {
        snprintf(out, SECRET_ACCOUNT_MAX + 1, "%s", cfg->state_account);
        return;
    }
    /* a digest of the key under a label of its own: the name says which
     * key it is without being, or helping to find, the key */
    struct digest_stream *ds = digest_stream_new();
    digest_stream_add(ds, label, sizeof(label) - 1);
    digest_stream_add(ds, key, strlen(key));
    digest_stream_end(ds, d);
    for (size_t i = 0; i < SECRET_ACCOUNT_HEX / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    explicit_bzero(d, sizeof(d));
}
