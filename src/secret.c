/* secret.c - see secret.h. */
#include "secret.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
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

/* The key from the file at path (where: its name as messages show it). */
static int
read_key_file(const char *path, const char *where, char **key, char *err,
              size_t errlen)
{
    FILE *f = config_open(path);
    if (f == NULL)
        return text_error(err, errlen,
                          "no API key: cannot read upstream.api_key_file "
                          "%s: %s",
                          where, strerror(errno));
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (n == sizeof(buf)) {
        explicit_bzero(buf, sizeof(buf));
        return text_error(err, errlen, "no API key: %s is larger than 4 KiB",
                          where);
    }
    *key = strip_dup(buf, n);
    explicit_bzero(buf, sizeof(buf));
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
    int rc = file ? read_key_file(file, where, key, err, errlen)
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
