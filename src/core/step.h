/* step.h — the step interface: how an agent core and the harness talk.
 *
 * invariant 1, docs/architecture.md, complete mediation: an agent core is a step
 * function. Given the run's state and the last event (the user's message,
 * the model's reply, the results of tool calls), it returns the next
 * *effect* it wants — call the model, call tools, finish, fail. The harness
 * (src/runs/) performs the effect only after its own checks (scope, limits;
 * tool permission and argument validation in src/guard/), records it, and
 * feeds the result back as the next event.
 *
 * A core never opens a socket, a file, a credential or the store: it sees
 * JSON in and hands JSON out. Everything in this folder is pure computation
 * (cJSON is the only library it uses), which is what lets later cores be
 * loaded from a shared object or written in Lua behind the same table of
 * functions (`step_core`).
 *
 * Message form: OpenAI chat messages as cJSON objects —
 *   {"role":"system"|"user"|"assistant"|"tool", "content": "…",
 *    "tool_calls":[{"id","type":"function","function":{"name","arguments"}}],
 *    "tool_call_id": "…", "origin": {…}}.
 * `origin` is the harness's provenance of the message (core/origin.h): a
 * core keeps it on the messages it holds and copies it into requests; the
 * harness leaves it out when it writes the request for the model.
 * Ownership: objects handed to the core in an event are the core's to keep
 * (it takes them, and sets the event's pointers to NULL); objects in a
 * returned effect belong to the harness, which frees them with
 * step_effect_clear. The step_agent passed to create() must outlive the state
 * (the core keeps a pointer to it rather than a per-run copy of the tools).
 *
 * Includes: this folder may include only <cjson/cJSON.h>, the C standard
 * library's string/memory/stdlib/stdio (snprintf) headers, the freestanding
 * <stdbool.h>/<stddef.h>/<stdint.h>, and core/ headers — no I/O
 * (tests/unit/core/test_core_purity.c checks it). */
#ifndef BRIGADE_STEP_H
#define BRIGADE_STEP_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the harness tells a core about the agent it runs. */
typedef struct step_agent {
    const char *name;
    const char *model;                /* the model name to put in requests */
    const char *system_prompt;        /* may be NULL */
    const cJSON *tools;               /* OpenAI "tools" array for the model, or NULL */
    uint32_t    max_steps;            /* model calls per run (taken literally: 0 = none) */
    uint32_t    max_tool_calls;       /* tool calls per run (0 = none) */
    uint32_t    max_output_tokens;    /* per model call ("max_tokens"; 0 = omitted) */
    uint32_t    context_tokens;       /* budget of the context sent to the model */
} step_agent;

typedef enum step_event_kind {
    /* The run begins. `history` holds the session's earlier messages (oldest
     * first, complete turns only, system prompt excluded) and `message` the
     * new user message. The array is the core's, but its messages may be
     * references (cJSON_CreateObjectReference) to messages the harness
     * keeps for the session's next runs (runs/history_cache.h): the core
     * may drop them or move them about, never change one in place (no
     * member added, removed or rewritten); to edit one, replace it with
     * step_message_copy. */
    STEP_EVENT_START = 1,
    /* The model answered: `message` is the assistant message (content and/or
     * tool_calls); `output_tokens` what it cost. */
    STEP_EVENT_MODEL_REPLY,
    /* Every tool call of the last effect has a result: `results` is an array
     * of tool messages {"role":"tool","tool_call_id","content"}, one per
     * call, in the order of the calls. */
    STEP_EVENT_TOOL_RESULTS,
    /* The run goes on after a pause (it waited for an approval or for the
     * user's credential, perhaps across a restart of the server), in a new
     * core state: `history` holds the conversation so far (the session's
     * earlier messages and this run's own, its user message included),
     * `message` the assistant message whose tool_calls were pending, and
     * `steps` / `tool_calls` what the run had used before the pause (the
     * pending calls not included). The core re-emits the pending calls as a
     * CALL_TOOLS effect, counting them as it did the first time. */
    STEP_EVENT_RESUME,
} step_event_kind;

typedef struct step_event {
    step_event_kind kind;
    cJSON  *history;                  /* START: array (taken), may be NULL */
    cJSON  *message;                  /* START, MODEL_REPLY: object (taken) */
    cJSON  *results;                  /* TOOL_RESULTS: array (taken) */
    int64_t output_tokens;            /* MODEL_REPLY */
    uint32_t steps, tool_calls;       /* RESUME: used before the pause */
} step_event;

typedef enum step_effect_kind {
    STEP_EFFECT_CALL_MODEL = 1,       /* `request`: an OpenAI chat-completions body */
    STEP_EFFECT_CALL_TOOLS,           /* `tool_calls`: array of OpenAI tool calls */
    STEP_EFFECT_FINISH,               /* `message`: the final assistant message */
    STEP_EFFECT_FAIL,                 /* `error_code` + `error_message` */
} step_effect_kind;

/* Which of a CALL_MODEL request's messages are the conversation's, by
 * number, so the harness can keep what it made of each (the text it sends)
 * from one model call to the next instead of redoing it for the whole
 * conversation at every step. A core numbers the messages of its
 * conversation in the order it takes them, from 0 at START or RESUME; a
 * number is never given to another message in the state's life, and a
 * numbered message is never changed. count 0: the core says nothing (the
 * harness then treats every message as new). */
typedef struct step_context_ref {
    size_t   lead;    /* request messages before the conversation's (the system prompt, the note) */
    uint64_t first;   /* the number of the conversation message at messages[lead] */
    size_t   count;   /* conversation messages from there on, numbered first, first + 1, … */
} step_context_ref;

typedef struct step_effect {
    step_effect_kind kind;
    /* CALL_MODEL: {"model","messages","tools"?,"max_tokens"}. Its messages
     * and its tools array are references to the conversation's messages
     * and the agent's tools (step_context_select): the harness uses the
     * request before the next event and changes none of what they refer to. */
    cJSON *request;
    cJSON *tool_calls;                /* CALL_TOOLS */
    cJSON *message;                   /* FINISH */
    const char *error_code;           /* FAIL: "max_steps", "max_tool_calls", … (static) */
    char   error_message[256];
    /* Bookkeeping the harness reports in traces: */
    size_t context_dropped;           /* messages left out of this request's context */
    int64_t context_tokens;           /* estimated tokens of the request's messages */
    step_context_ref context;         /* CALL_MODEL: the conversation's messages in it */
} step_effect;

/* A core: a table of functions, so other cores (dlopen, Lua) can plug in. */
typedef struct step_core {
    const char *name;
    /* Per-run state. NULL on out-of-memory. */
    void       *(*create)(const step_agent *agent);
    /* Take the event, return the next effect. Never blocks, never does I/O. */
    step_effect (*step)(void *state, step_event *event);
    void        (*destroy)(void *state);
} step_core;

void step_effect_clear(step_effect *e);

/* The built-in core: the tool-calling loop (toolcall_core.c). It asks the
 * model; if the model asks for tools, it returns them as an effect and sends
 * their results back to the model; when the model answers with text, it
 * finishes. It enforces max_steps and max_tool_calls itself (FAIL with
 * code "max_steps" / "max_tool_calls"). */
extern const step_core step_core_toolcall;

/* --- bounded context (context.c), used by cores --- */

/* Rough token count of a message (≈ bytes/4 of its text parts + 4). */
int64_t step_estimate_tokens(const cJSON *message);

/* Choose what of the conversation to send so it fits `budget` tokens.
 * Policy: the system prompt is always kept; then the newest messages are
 * kept, walking back from the end, until the budget is spent; an assistant
 * message with tool_calls is kept or dropped together with all its tool
 * results (never split); the messages of the current turn (from the last
 * user message on, including pending tool results) are always kept, even
 * over budget; what is dropped from the middle is replaced by one system
 * note "[N earlier messages omitted to fit the context]". Messages are
 * sent whole, their `origin` included; the system prompt and the note get
 * origin {"kind":"system","untrusted":false}. Returns a new array (the
 * caller frees it); *dropped and *tokens report what happened. Each kept
 * message in it is a reference to the conversation's message (an object
 * item flagged cJSON_IsReference whose members are the message's own), not
 * a copy — valid while `messages` is unchanged. A reference must not be
 * changed at all (no member added, removed or replaced, no value edited:
 * that would change the conversation); to change a kept message, replace
 * it in the array with a copy (step_message_copy). */
cJSON *step_context_select(const char *system_prompt, const cJSON *messages, int64_t budget,
                           size_t *dropped, int64_t *tokens);

/* A whole, independent copy of a message or of a reference to one (its
 * keys and values its own); NULL on out-of-memory. */
cJSON *step_message_copy(const cJSON *message);

/* The token estimates of a conversation's messages, kept by a caller
 * between its calls of step_context_select_ex so each message is priced
 * once: v[i] is the estimate of the i-th message of `messages`, for i < n.
 * A conversation's messages are never changed, only appended to and freed
 * from the front (step_token_cache_drop, with the same count), so an
 * estimate holds as long as its message. Zeroed: empty. */
typedef struct step_token_cache {
    int64_t *v;
    uint8_t *role;   /* beside each estimate: what the selection reads of its role */
    size_t   n, cap;
} step_token_cache;
/* The first `count` messages were freed: their estimates go too. */
void step_token_cache_drop(step_token_cache *c, size_t count);
void step_token_cache_free(step_token_cache *c);

/* The same, for a caller that has already discarded the oldest `omitted`
 * messages of the conversation (a core trimming its state so a run's memory
 * stays bounded by the context budget): the note counts them too, and
 * *dropped includes them. *first receives the index in `messages` of the
 * first message kept (messages before it will not be sent). NULL on
 * out-of-memory. `dropped`, `tokens` and `first` may be NULL. `cache`
 * (may be NULL) holds the estimates of earlier calls over the same
 * conversation and receives those of the messages added since. */
cJSON *step_context_select_ex(const char *system_prompt, const cJSON *messages, size_t omitted,
                              int64_t budget, size_t *dropped, int64_t *tokens, size_t *first,
                              step_token_cache *cache);

#endif
