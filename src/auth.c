/* auth.c - see auth.h. */
#include "auth.h"

#include <string.h>
#include <strings.h>

#include "config.h"
#include "digest.h"

const char *
auth_bearer_token(const char *h, size_t *len)
{
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    if (n == 0)
        return NULL;
    *len = n;
    return h;
}

const struct config_client *
auth_find_client(const struct config *cfg, const char *authorization)
{
    size_t n;
    const char *tok = auth_bearer_token(authorization, &n);
    if (tok == NULL)
        return NULL;
    unsigned char h[DIGEST_LEN];
    digest_sha256(tok, n, h);
    const struct config_client *found = NULL;
    /* every hash is compared, whichever matches */
    for (size_t i = 0; i < cfg->nclients; i++) {
        int eq = digest_equal(h, cfg->clients[i].token_sha256, DIGEST_LEN);
        if (eq && found == NULL)
            found = &cfg->clients[i];
    }
    return found;
}

int
auth_sender_allowed(const struct config_client *c, long long sender)
{
    if (c->all_senders)
        return 1;
    for (size_t i = 0; i < c->nsenders; i++)
        if (c->senders[i] == sender)
            return 1;
    return 0;
}

int
auth_admin_ok(const struct config *cfg, const char *authorization)
{
    size_t n;
    const char *tok = auth_bearer_token(authorization, &n);
    if (!cfg->admin_token_set || tok == NULL)
        return 0;
    unsigned char h[DIGEST_LEN];
    digest_sha256(tok, n, h);
    return digest_equal(h, cfg->admin_token_sha256, DIGEST_LEN);
}
