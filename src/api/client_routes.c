/* client_routes.c — the routes of the client APIs that are a chat
 * completion, or an embedding, underneath: POST /v1/messages (Anthropic
 * Messages), POST /v1/completions (legacy text completions) and POST
 * /v1/embeddings. Each checks and translates its request (messages.h,
 * completions.h, embeddings.h: pure) and hands it to the gateway's one
 * governed path (gateway.h) — scope, limits, budgets by reservation, fair
 * queue, resilience, traces, usage — with a dialect for its answer.
 *
 * /v1/messages answers as an Anthropic `message` or event stream; its
 * errors are in Anthropic's shape and it takes x-api-key as the
 * credential (api_core.c, the route's API_ROUTE_ANTHROPIC flag). An
 * embeddings call is reserved on the input's estimate (an embedding model
 * has no output), settled and charged on the provider's usage; its answer
 * (floats or base64) goes back as it came, with the model named as the
 * client did. */
#include "api/completions.h"
#include "api/embeddings.h"
#include "api/gateway.h"
#include "api/messages.h"

#include <stdlib.h>

#include "util/xalloc.h"

/* ---- POST /v1/messages ---- */

static char *messages_dialect_answer(void *state, const char *json, size_t len, size_t *out_len)
{
    (void)state;
    return messages_answer(json, len, out_len);
}

static void messages_dialect_event(void *state, const char *json, size_t len, buf *out)
{
    messages_stream_chunk(state, json, len, out);
}

static void messages_dialect_end(void *state, bool ok, int status, const char *type,
                                 const char *code, const char *message, buf *out)
{
    (void)type;
    (void)code;
    messages_stream_end(state, ok, status, message, out);
}

static const gateway_dialect messages_dialect = {
    messages_dialect_answer, messages_dialect_event, messages_dialect_end, free,
};

void api_messages(api_ctx *ctx)
{
    chat_request cr;
    if (!gateway_read_request(ctx, messages_request_parse, &cr)) return;
    messages_stream *s = xmalloc(sizeof *s);
    messages_stream_init(s);
    gateway_run(ctx, &cr, &messages_dialect, s);
}

/* ---- POST /v1/completions ---- */

typedef struct completions_state {
    bool wants_usage;
} completions_state;

static char *comp_dialect_answer(void *state, const char *json, size_t len, size_t *out_len)
{
    (void)state;
    return completions_answer(json, len, out_len);
}

static void comp_dialect_event(void *state, const char *json, size_t len, buf *out)
{
    completions_stream_chunk(((completions_state *)state)->wants_usage, json, len, out);
}

static void comp_dialect_end(void *state, bool ok, int status, const char *type, const char *code,
                             const char *message, buf *out)
{
    (void)state;
    (void)status;
    gateway_openai_stream_end(ok, type, code, message, out);
}

static const gateway_dialect completions_dialect = {
    comp_dialect_answer, comp_dialect_event, comp_dialect_end, free,
};

void api_completions(api_ctx *ctx)
{
    chat_request cr;
    if (!gateway_read_request(ctx, completions_request_parse, &cr)) return;
    completions_state *s = xmalloc(sizeof *s);
    s->wants_usage = cr.client_wants_usage;
    gateway_run(ctx, &cr, &completions_dialect, s);
}

/* ---- POST /v1/embeddings ---- */

void api_embeddings(api_ctx *ctx)
{
    chat_request cr;
    if (!gateway_read_request(ctx, embeddings_request_parse, &cr)) return;
    gateway_run(ctx, &cr, NULL, NULL);
}
