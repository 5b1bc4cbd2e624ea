/* auth.h - who is calling (SPEC section 2, Callers) and the admin token.
 * Pure functions over the configuration and a header value. */
#ifndef WAGATE_AUTH_H
#define WAGATE_AUTH_H

#include <stddef.h>

struct config;
struct config_client;

/* The client whose token is the Bearer token in authorization (the
 * Authorization header's value, may be NULL), or NULL. The token is hashed
 * and compared with every configured hash in constant time. */
const struct config_client *auth_find_client(const struct config *cfg,
                                             const char *authorization);

/* 1 if client may use sender (always 1 for "senders": "*"). */
int auth_sender_allowed(const struct config_client *client, long long sender);

/* 1 if authorization carries the admin token (admin.token_sha256). */
int auth_admin_ok(const struct config *cfg, const char *authorization);

/* The token part of "Bearer <token>" (scheme case-insensitive), or NULL;
 * *len is its length. Exposed for tests. */
const char *auth_bearer_token(const char *authorization, size_t *len);

#endif
