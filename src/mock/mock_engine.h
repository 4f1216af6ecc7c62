/* mock_engine.h — the mock LLM's brain: request in, deterministic reply out.
 *
 * Pure (no I/O, no clock except `created`): both the `brigade mock-llm`
 * server and the in-process `mock` provider call it, so the two behave the
 * same. The engine reads an OpenAI chat-completions request, looks for
 * markers in the LAST user message (see docs/api.md, "mock-llm"), and produces a
 * *plan*: what to answer, how many tokens, which fault to inject. Renderers
 * then turn the plan into OpenAI JSON (a whole `chat.completion`, or the
 * `chat.completion.chunk` events of a stream), written directly into a buf —
 * no cJSON trees on the way out, because the mock must be much faster than
 * the gateway it is used to measure.
 *
 * Token counting is deterministic so tests can compute expected costs:
 *   prompt tokens     = Σ over messages (3 + ceil(text_bytes / 4)), where
 *                       text_bytes counts the string content (or the text
 *                       parts of an array content) plus the name and
 *                       arguments of any tool_calls;
 *   completion tokens = number of words of the reply text, or, for a tool
 *                       call, ceil((len(name) + len(arguments)) / 4).
 * The reply text for N tokens is N words taken in order from a fixed word
 * list (mock_word), separated by single spaces. Without [[tokens:N]] a reply
 * is MOCK_DEFAULT_TOKENS words; max_tokens / max_completion_tokens in the
 * request cuts it (finish_reason "length") — unless the fault
 * ignore_max_tokens is on, which answers all N words regardless.
 *
 * "n" (1 to MOCK_MAX_CHOICES, default 1) is honoured as a provider does:
 * that many choices (index 0 … n-1, each the same reply), and usage counts
 * the completion tokens of all of them (n × those of one). A stream sends
 * each choice's chunks in turn, then the usage chunk. */
#ifndef BRIGADE_MOCK_ENGINE_H
#define BRIGADE_MOCK_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/buf.h"

#define MOCK_DEFAULT_TOKENS   16
#define MOCK_MAX_TOKENS       100000    /* [[tokens:N]] upper bound */
#define MOCK_MAX_LATENCY_MS   600000    /* [[latency:MS]] upper bound */
#define MOCK_MAX_TOOL_LOOP    1000      /* [[tool_loop:N]] upper bound */
#define MOCK_SLOW_FIRST_BYTE_MS 3000    /* slow_first_byte delay without [[latency]] */
#define MOCK_QUOTE_MAX        4096      /* bytes of a tool result quoted back */
#define MOCK_MAX_CHOICES      128       /* "n" upper bound */

typedef enum mock_fault {
    MOCK_FAULT_NONE = 0,
    MOCK_FAULT_RATE_LIMIT,      /* 429 + Retry-After: 1 */
    MOCK_FAULT_SERVER_ERROR,    /* 500 */
    MOCK_FAULT_HANG,            /* never answer */
    MOCK_FAULT_TRUNCATE,        /* stream (or body) cut mid-way */
    MOCK_FAULT_MALFORMED,       /* 200 with invalid JSON */
    MOCK_FAULT_SLOW_FIRST_BYTE, /* wait before the headers, then answer */
    MOCK_FAULT_OVERLOADED,      /* Anthropic's 529 overloaded_error; 503 on chat completions */
    MOCK_FAULT_IGNORE_MAX_TOKENS, /* answer in full past max_tokens / max_output_tokens, and
                                   * report the usage of the whole answer (a provider that
                                   * does not honour the output cap) */
    MOCK_FAULT__COUNT
} mock_fault;

const char *mock_fault_name(mock_fault f);
/* Parse a fault name ("rate_limit"…); returns MOCK_FAULT_NONE if unknown. */
mock_fault  mock_fault_parse(const char *s, size_t len);

/* Attempt counts for [[fault:KIND:N]], keyed by a hash of the request body.
 * Bounded (least recently used entry is replaced) and thread-safe. */
#define MOCK_FAULT_TABLE_SIZE 512
typedef struct mock_fault_table {
    pthread_mutex_t mu;
    uint64_t        tick;
    struct { uint64_t key; uint32_t count; uint64_t used; } e[MOCK_FAULT_TABLE_SIZE];
} mock_fault_table;

void     mock_fault_table_init(mock_fault_table *t);
void     mock_fault_table_destroy(mock_fault_table *t);
/* Count one more attempt of `key`; returns the attempt number (1-based). */
uint32_t mock_fault_table_hit(mock_fault_table *t, uint64_t key);
/* The process-wide table the in-process provider shares across loops. */
mock_fault_table *mock_fault_table_global(void);

typedef struct mock_options {
    uint32_t          stream_chunks;  /* content chunks per stream; 0 = one per token */
    mock_fault        forced_fault;   /* from a flag / x-mock-fault; wins over markers */
    mock_fault_table *faults;         /* NULL: [[fault:K:N]] counts are not kept (always fails) */
    bool              gullible;       /* also obey markers in tool results and tool
                                       * descriptions (mock_gullible.c) */
} mock_options;

typedef enum mock_reply { MOCK_REPLY_TEXT, MOCK_REPLY_TOOL_CALL } mock_reply;

typedef struct mock_plan {
    int         status;          /* 200, or 400 with err_message / err_param */
    const char *err_message;
    const char *err_param;       /* may be NULL */

    const char *model;
    bool        stream;
    bool        include_usage;   /* stream_options.include_usage */
    mock_fault  fault;           /* the fault for THIS attempt (NONE if none) */
    bool        has_latency;
    uint32_t    latency_ms;      /* [[latency:MS]] */
    bool        has_tokens;      /* [[tokens:N]] given: stream one chunk per token */

    mock_reply  reply;
    /* text reply: the whole text and the byte offset where each token starts
     * (tok_off[n_tokens] == text_len), so chunks are slices of `text`. */
    const char *text;
    size_t      text_len;
    uint32_t   *tok_off;
    uint32_t    n_tokens;
    /* tool-call reply */
    const char *tool_name;
    const char *tool_args;       /* compact JSON object text */
    size_t      tool_args_len;
    char        tool_call_id[32];

    uint32_t    n_choices;       /* "n": choices in the answer (1 unless asked) */
    uint32_t    n_chunks;        /* content chunks (text) / argument fragments (tool), per choice */
    const char *finish_reason;   /* "stop", "length", "tool_calls" */
    int64_t     prompt_tokens;
    int64_t     completion_tokens;   /* all choices together */

    uint64_t    hash;            /* of the request body */
    uint64_t    call_nonce;      /* per call: makes the ids unique */
    char        id[40];          /* "chatcmpl-<hex>" */
    int64_t     created;         /* unix seconds */
} mock_plan;

/* Build the plan for one request. Strings live in `a` (the plan is valid as
 * long as the arena). Never fails: a bad request gives status 400. */
void mock_plan_make(mock_plan *p, arena *a, const char *body, size_t len,
                    const mock_options *opt);

/* Deterministic counts (see the file comment). */
int64_t     mock_count_text_tokens(size_t bytes);    /* ceil(bytes / 4) */
const char *mock_word(uint32_t i);                   /* i-th word of the reply text */
uint64_t    mock_hash(const char *s, size_t len);    /* FNV-1a 64 */

/* --- rendering (appends to `out`) --- */

/* The whole non-streaming `chat.completion` object. */
void   mock_render_completion(const mock_plan *p, buf *out);
/* Streaming: the number of events (for each choice: role chunk, content or
 * tool chunks, finish chunk; then the usage chunk when include_usage), and
 * event i's JSON payload
 * (without "data: " framing; "[DONE]" is the caller's to send). */
size_t mock_event_count(const mock_plan *p);
void   mock_render_event(const mock_plan *p, size_t i, buf *out);
/* Invalid JSON shaped like the start of a real reply (for the malformed fault). */
void   mock_render_malformed(const mock_plan *p, buf *out);
/* {"error":{"message":…,"type":…,"param":…,"code":…}} */
void   mock_render_error(buf *out, const char *type, const char *code, const char *message,
                         const char *param);
/* The error envelope, status and Retry-After of a rate_limit / server_error
 * fault (or of a 400 plan). Returns the HTTP status. */
int    mock_render_fault_error(const mock_plan *p, buf *out, uint32_t *retry_after_s);
/* Byte offset where tool-argument fragment k (of p->n_chunks) starts, moved
 * back off any UTF-8 continuation byte so no fragment splits a character;
 * k == n_chunks gives the end. Both wire formats stream the arguments in
 * these same fragments. */
size_t mock_frag_at(const mock_plan *p, size_t k);

/* --- Anthropic Messages API (mock_anthropic.c) ---
 *
 * POST /v1/messages gets the same plan as chat completions: the Anthropic
 * request is first rewritten as the OpenAI request it stands for (system →
 * a system message, tool_use blocks → tool_calls with the input as compact
 * JSON arguments, tool_result blocks → tool messages, text blocks → text
 * parts), so markers, faults and the deterministic token counts are those
 * of the OpenAI path; then the plan is rendered in Anthropic's form. */

/* The OpenAI request for an Anthropic one (appended to out). false with
 * *err when the body cannot be read (render as a 400). */
bool   mock_anthropic_request(const char *body, size_t len, buf *out, const char **err);
/* The whole non-streaming `message` object. */
void   mock_render_anthropic_message(const mock_plan *p, buf *out);
/* Streaming: message_start, content_block_start, ping, the deltas,
 * content_block_stop, message_delta, message_stop. Event i is rendered as a
 * whole SSE frame ("event: NAME\ndata: {…}\n\n"); no [DONE] follows. */
size_t mock_anthropic_event_count(const mock_plan *p);
void   mock_render_anthropic_event(const mock_plan *p, size_t i, buf *out);
/* Invalid JSON shaped like the start of a message (body, or one SSE frame). */
void   mock_render_anthropic_malformed(const mock_plan *p, bool stream, buf *out);
/* {"type":"error","error":{"type":…,"message":…}} */
void   mock_render_anthropic_error(buf *out, const char *type, const char *message);
/* The error, status and Retry-After of a rate_limit (429), server_error
 * (500), overloaded (529) fault or a 400 plan. Returns the HTTP status. */
int    mock_render_anthropic_fault_error(const mock_plan *p, buf *out, uint32_t *retry_after_s);

/* --- OpenAI Responses API (mock_responses.c) ---
 *
 * POST /v1/responses gets the same plan as chat completions, from the chat
 * request a Responses request stands for (instructions → a system message,
 * message / function_call / function_call_output items → messages, function
 * tools and text.format in their chat shapes, max_output_tokens →
 * max_completion_tokens); then the plan is rendered as a Response. A
 * previous_response_id is refused: the mock keeps nothing. */

/* The OpenAI chat request for a Responses one (appended to out). false
 * with *err when it cannot be read (render as a 400). */
bool   mock_responses_request(const char *body, size_t len, buf *out, const char **err);
/* The whole non-streaming Response object. */
void   mock_render_responses_object(const mock_plan *p, buf *out);
/* Streaming: response.created, response.in_progress, the output item's
 * events (output_item.added, content_part.added, output_text.delta…,
 * output_text.done, content_part.done, output_item.done — or, for a tool
 * call, function_call_arguments.delta… and .done), then response.completed
 * (response.incomplete when cut by max_output_tokens). Event i is a whole
 * SSE frame; no [DONE] follows. */
size_t mock_responses_event_count(const mock_plan *p);
void   mock_render_responses_event(const mock_plan *p, size_t i, buf *out);

/* --- statistics (GET /mock/stats) --- */

#define MOCK_STATS_MODELS 64
typedef struct mock_stats {
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t streams;
    atomic_uint_fast64_t bad_requests;
    atomic_uint_fast64_t tool_calls;
    atomic_uint_fast64_t faults[MOCK_FAULT__COUNT];
    atomic_uint_fast64_t other_models;    /* past MOCK_STATS_MODELS distinct names */
    pthread_mutex_t      mu;              /* only for adding a model name */
    struct {
        atomic_bool          used;
        char                 name[64];
        atomic_uint_fast64_t count;
    } models[MOCK_STATS_MODELS];
} mock_stats;

void mock_stats_init(mock_stats *s);
void mock_stats_destroy(mock_stats *s);
void mock_stats_record(mock_stats *s, const mock_plan *p);
void mock_stats_render(mock_stats *s, buf *out);

/* --- embeddings (mock_embed.c) --- */

#define MOCK_EMBED_DEFAULT_DIMS 1536     /* OpenAI's text-embedding-3-small */
#define MOCK_EMBED_MAX_DIMS     8192
#define MOCK_EMBED_MAX_INPUTS   2048

/* The unit vector of `dims` floats the mock gives a text (see mock_embed.c). */
void mock_embedding_vector(const char *text, size_t len, uint32_t dims, float *out);
/* An OpenAI embeddings request → its answer (or an OpenAI error) in out;
 * returns the HTTP status (200 or 400), *prompt_tokens the input's tokens. */
int  mock_embeddings(const char *body, size_t len, buf *out, int64_t *prompt_tokens);

/* --- gullible mode (mock_gullible.c) ---
 *
 * A model that falls for prompt injection, for the attack scenarios: with
 * mock_options.gullible, when the user's own marker asks for nothing more
 * (no [[tool:…]], or its call has been answered), the mock makes the first
 * call that untrusted text asks for and the conversation has not made yet
 * (same name and arguments): tool results newest first, then the offered
 * tools' descriptions. Untrusted text asks by `[[tool:NAME {json}]]`, or by
 * `[[on:WORD tool:NAME {json}]]` — a delayed invocation, obeyed only in a
 * turn whose user message contains WORD (case-insensitive). In the JSON
 * arguments, "{{user}}" inside a string stands for the last user message
 * (an injected model forwarding the conversation). See mock_gullible.c for
 * how generously it reads. */

typedef struct mock_injected {
    const char *name;      /* the tool asked for */
    const char *args;      /* its arguments, compact JSON object text */
    const char *trigger;   /* WORD of [[on:WORD …]], or NULL */
} mock_injected;

/* The markers of one untrusted text, in order (at most max; within the
 * text's first 256 KiB and first 64 "[["). `user` is the last user message, for [[on:WORD …]]
 * (those whose WORD it lacks are left out). Malformed ones are skipped. */
size_t mock_injected_markers(const char *text, size_t len, const char *user, size_t ulen, arena *a,
                             mock_injected *out, size_t max);
struct cJSON;
/* The call a gullible model makes next for this request (a parsed chat
 * request), if any. */
bool   mock_gullible_pick(const struct cJSON *root, const char *user, size_t ulen, arena *a,
                          mock_injected *out);

/* --- structured output (mock_schema.c) --- */

/* A minimal JSON instance of `schema` (see mock_schema.c for what is
 * honoured), appended to out; the text has spaces after ':' and ',' so a
 * stream carries it in several chunks. */
void mock_schema_instance(const struct cJSON *schema, buf *out);

#endif
