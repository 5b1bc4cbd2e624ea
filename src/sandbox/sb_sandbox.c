#include "sb_sandbox.h"
#include "alloc.h"
#include "sb_json.h"

#include <stdlib.h>
#include <string.h>

struct sb_sandbox *
sb_sandbox_new(const char *api_key, int64_t balance, unsigned rate_limit)
{
    struct sb_sandbox *sb = xcalloc(1, sizeof(*sb));

    sb->state = sb_state_new(balance);
    sb->rate = sb_rate_new(rate_limit);
    sb->log = sb_reqlog_new();
    sb->api_key = xstrdup(api_key);
    sb->faults = sb_faults_new();
    sb->inbox = sb_inbox_new();
    return sb;
}

void
sb_sandbox_free(struct sb_sandbox *sb)
{
    if (sb == NULL)
        return;
    sb_state_free(sb->state);
    sb_rate_free(sb->rate);
    sb_reqlog_free(sb->log);
    sb_faults_free(sb->faults);
    sb_inbox_free(sb->inbox);
    free(sb->api_key);
    free(sb);
}

void
sb_response_set(struct sb_response *r, int status, char *body)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
    r->status = status;
    r->body = body;
}

void
sb_response_error(struct sb_response *r, int status, const char *error,
                  const char *code)
{
    sb_response_set(r, status, sb_json_error(error, code));
}

void
sb_response_clear(struct sb_response *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}
