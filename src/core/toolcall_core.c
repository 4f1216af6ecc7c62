/* toolcall_core.c — the built-in agent core: the tool-calling loop.
 *
 *   RESUME ──────────────────────────────────────▶ CALL_TOOLS (the pending ones)
 *   START ─▶ CALL_MODEL ─▶ MODEL_REPLY ─┬─ text ───────▶ FINISH
 *                ▲                      └─ tool_calls ─▶ CALL_TOOLS
 *                └───────────── TOOL_RESULTS ◀────────────┘
 *
 * The core only decides; the harness (src/runs/) performs every effect
 * after its own checks (invariant 1, docs/architecture.md). Limits the core enforces
 * itself: max_steps (model calls) and max_tool_calls (tool calls) per run.
 *
 * Memory: a run waiting on the model costs this state plus its messages.
 * Messages that the context policy will never send again (they fell out of
 * the budget, and the tail only grows within a run) are freed from the
 * state as soon as a request is built, so a run holds about one context
 * budget of messages however long the session's history was.
 *
 * Includes: only <cjson/cJSON.h>, standard string/memory/stdlib/stdio
 * headers and core/ headers — no I/O, storage, clocks or randomness
 * (invariant 1, docs/architecture.md; checked by tests/unit/core/test_core_purity.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/step.h"

/* Bounds on what a model may put in a tool call; the reply came from the
 * network, and these strings travel on into traces and tool dispatch. */
#define TOOLCALL_ID_MAX   256
#define TOOLCALL_NAME_MAX 128

typedef enum toolcall_phase {
    TOOLCALL_WAIT_START = 0,
    TOOLCALL_WAIT_MODEL,
    TOOLCALL_WAIT_TOOLS,
    TOOLCALL_DONE,
} toolcall_phase;

typedef struct toolcall_state {
    const step_agent *agent;   /* not owned; outlives the state (step.h) */
    cJSON   *messages;         /* the run's conversation, minus what was trimmed */
    /* oldest messages already freed from `messages`: also the number
     * (step_context_ref) of messages->child, as messages are only ever
     * appended and freed from the front */
    size_t   omitted;
    step_token_cache tokens;   /* messages' estimates, by position in `messages` */
    const cJSON *pending;      /* tool_calls awaiting results (inside `messages`) */
    uint32_t steps;            /* model calls asked for */
    uint32_t tool_calls;       /* tool calls asked for */
    toolcall_phase phase;
} toolcall_state;

static step_effect toolcall_fail(toolcall_state *st, const char *code, const char *fmt,
                                 const char *detail)
{
    step_effect e;
    memset(&e, 0, sizeof(e));
    e.kind = STEP_EFFECT_FAIL;
    e.error_code = code;
    snprintf(e.error_message, sizeof(e.error_message), fmt, detail ? detail : "");
    if (st)
        st->phase = TOOLCALL_DONE;
    return e;
}

static void *toolcall_create(const step_agent *agent)
{
    if (!agent)
        return NULL;
    toolcall_state *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->agent = agent;
    return st;
}

static void toolcall_destroy(void *state)
{
    toolcall_state *st = state;
    if (!st)
        return;
    cJSON_Delete(st->messages);
    step_token_cache_free(&st->tokens);
    free(st);
}

/* Frees the first `count` messages: the context policy has left them out of
 * this request, and within a run it will leave them out of every later one. */
static void toolcall_trim(toolcall_state *st, size_t count)
{
    if (count == 0)
        return;
    cJSON *m = st->messages->child;
    for (size_t i = 0; i < count && m; i++) {
        cJSON *next = m->next;
        cJSON_Delete(cJSON_DetachItemViaPointer(st->messages, m));
        m = next;
    }
    step_token_cache_drop(&st->tokens, count);
    st->omitted += count;
}

static step_effect toolcall_call_model(toolcall_state *st)
{
    const step_agent *a = st->agent;
    if (st->steps >= a->max_steps) {
        char detail[160];
        snprintf(detail, sizeof(detail), "the run reached its limit of %u model calls "
                 "without a final answer", a->max_steps);
        return toolcall_fail(st, "max_steps", "%s", detail);
    }
    if (!a->model || !a->model[0])
        return toolcall_fail(st, "bad_agent", "%s", "the agent has no model");

    size_t dropped = 0, first = 0;
    int64_t tokens = 0;
    cJSON *msgs = step_context_select_ex(a->system_prompt, st->messages, st->omitted,
                                         (int64_t)a->context_tokens, &dropped, &tokens, &first,
                                         &st->tokens);
    if (!msgs)
        return toolcall_fail(st, "out_of_memory", "%s", "out of memory building the request");
    cJSON *req = cJSON_CreateObject();
    int ok = req && cJSON_AddStringToObject(req, "model", a->model);
    if (!ok || !cJSON_AddItemToObject(req, "messages", msgs)) {
        cJSON_Delete(msgs);
        cJSON_Delete(req);
        return toolcall_fail(st, "out_of_memory", "%s", "out of memory building the request");
    }
    /* The tools array is the agent's, shared by all its runs: the request
     * refers to it (step.h: valid while the step_agent is), as it refers
     * to the conversation's messages, instead of copying every tool's
     * schema at every step. */
    if (ok && cJSON_IsArray(a->tools) && a->tools->child) {
        cJSON *tools = cJSON_CreateArrayReference(a->tools->child);
        ok = tools && cJSON_AddItemToObject(req, "tools", tools);
        if (!ok)
            cJSON_Delete(tools);
    }
    if (ok && a->max_output_tokens > 0)
        ok = cJSON_AddNumberToObject(req, "max_tokens", (double)a->max_output_tokens) != NULL;
    if (!ok) {
        cJSON_Delete(req);
        return toolcall_fail(st, "out_of_memory", "%s", "out of memory building the request");
    }

    toolcall_trim(st, first);
    st->steps++;
    st->phase = TOOLCALL_WAIT_MODEL;

    step_effect e;
    memset(&e, 0, sizeof(e));
    e.kind = STEP_EFFECT_CALL_MODEL;
    e.request = req;
    e.context_dropped = dropped;
    e.context_tokens = tokens;
    /* what is left of the conversation is sent, from its first message on */
    size_t kept = (size_t)cJSON_GetArraySize(st->messages);
    e.context = (step_context_ref){.lead = (size_t)cJSON_GetArraySize(msgs) - kept,
                                   .first = st->omitted, .count = kept};
    return e;
}

/* The history an event brings, as the state's conversation: only objects
 * are messages; anything else would be sent to the model as garbage, so it
 * is removed here, once. NULL history: an empty one. NULL on out-of-memory. */
static cJSON *toolcall_take_history(cJSON *history)
{
    if (!history && !(history = cJSON_CreateArray()))
        return NULL;
    cJSON *m = history->child;
    while (m) {
        cJSON *next = m->next;
        if (!cJSON_IsObject(m))
            cJSON_Delete(cJSON_DetachItemViaPointer(history, m));
        m = next;
    }
    return history;
}

/* START: the session's history plus the new user message. */
static step_effect toolcall_on_start(toolcall_state *st, cJSON *history, cJSON *message)
{
    if (!cJSON_IsObject(message) || (history && !cJSON_IsArray(history))) {
        cJSON_Delete(history);
        cJSON_Delete(message);
        return toolcall_fail(st, "bad_event", "%s",
                             "START needs a message object and an optional history array");
    }
    if (!(history = toolcall_take_history(history))) {
        cJSON_Delete(message);
        return toolcall_fail(st, "out_of_memory", "%s", "out of memory");
    }
    st->messages = history;
    cJSON_AddItemToArray(st->messages, message);
    return toolcall_call_model(st);
}

/* Checks a model's tool calls (network input): each an object with a
 * bounded, unique id and a function name; arguments a string ("{}" if
 * missing). Returns NULL when they are fine, else what is wrong. */
static const char *toolcall_check_calls(cJSON *calls)
{
    int i = 0;
    cJSON *call;
    cJSON_ArrayForEach(call, calls) {
        if (!cJSON_IsObject(call))
            return "a tool call is not an object";
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(call, "id");
        if (!cJSON_IsString(id) || !id->valuestring || !id->valuestring[0])
            return "a tool call has no id";
        if (strlen(id->valuestring) > TOOLCALL_ID_MAX)
            return "a tool call id is too long";
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(call, "type");
        if (type && !(cJSON_IsString(type) && strcmp(type->valuestring, "function") == 0))
            return "a tool call has a type other than \"function\"";
        cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        if (!cJSON_IsObject(fn) || !cJSON_IsString(name) || !name->valuestring ||
            !name->valuestring[0])
            return "a tool call has no function name";
        if (strlen(name->valuestring) > TOOLCALL_NAME_MAX)
            return "a tool call's function name is too long";
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        if (args && !cJSON_IsString(args))
            return "a tool call's arguments are not a JSON string";
        /* Results are matched to calls by id: ids must be unique. */
        int j = 0;
        const cJSON *other;
        cJSON_ArrayForEach(other, calls) {
            if (j++ >= i)
                break;
            const cJSON *oid = cJSON_GetObjectItemCaseSensitive(other, "id");
            if (strcmp(oid->valuestring, id->valuestring) == 0)
                return "two tool calls share an id";
        }
        i++;
    }
    /* Normalize only after everything checked, so a bad reply is untouched. */
    cJSON_ArrayForEach(call, calls) {
        if (!cJSON_GetObjectItemCaseSensitive(call, "type") &&
            !cJSON_AddStringToObject(call, "type", "function"))
            return "out of memory";
        cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        if (!cJSON_GetObjectItemCaseSensitive(fn, "arguments") &&
            !cJSON_AddStringToObject(fn, "arguments", "{}"))
            return "out of memory";
    }
    return NULL;
}

/* Makes the reply an assistant message; NULL when fine, else the problem. */
static const char *toolcall_check_reply(cJSON *msg)
{
    cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
    if (role && !(cJSON_IsString(role) && strcmp(role->valuestring, "assistant") == 0))
        return "the reply is not an assistant message";
    if (!role && !cJSON_AddStringToObject(msg, "role", "assistant"))
        return "out of memory";
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (content && !cJSON_IsString(content) && !cJSON_IsNull(content) && !cJSON_IsArray(content))
        return "the reply's content is neither text nor content parts";
    return NULL;
}

static step_effect toolcall_on_reply(toolcall_state *st, cJSON *msg)
{
    if (!cJSON_IsObject(msg)) {
        cJSON_Delete(msg);
        return toolcall_fail(st, "model_error", "%s", "the model's reply is not a message object");
    }
    const char *bad = toolcall_check_reply(msg);
    if (bad) {
        cJSON_Delete(msg);
        return toolcall_fail(st, "model_error", "model reply: %s", bad);
    }
    cJSON *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    if (calls && !cJSON_IsArray(calls) && !cJSON_IsNull(calls)) {
        cJSON_Delete(msg);
        return toolcall_fail(st, "model_error", "%s", "model reply: tool_calls is not an array");
    }
    if (!cJSON_IsArray(calls) || cJSON_GetArraySize(calls) == 0) {
        /* A text answer (possibly empty) ends the run. "tool_calls": [] or
         * null means none; drop it so the stored message is plain. */
        cJSON_DeleteItemFromObjectCaseSensitive(msg, "tool_calls");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
        if (!cJSON_IsString(content) && !cJSON_IsArray(content)) {
            cJSON_DeleteItemFromObjectCaseSensitive(msg, "content");
            if (!cJSON_AddStringToObject(msg, "content", "")) {
                cJSON_Delete(msg);
                return toolcall_fail(st, "out_of_memory", "%s", "out of memory");
            }
        }
        step_effect e;
        memset(&e, 0, sizeof(e));
        e.kind = STEP_EFFECT_FINISH;
        e.message = msg;
        st->phase = TOOLCALL_DONE;
        return e;
    }

    bad = toolcall_check_calls(calls);
    if (bad) {
        cJSON_Delete(msg);
        return toolcall_fail(st, "model_error", "model reply: %s", bad);
    }
    uint32_t asked = (uint32_t)cJSON_GetArraySize(calls);
    /* st->tool_calls never exceeds the limit (checked here), so no wrap. */
    uint32_t left = st->agent->max_tool_calls - st->tool_calls;
    if (asked > left) {
        char detail[200];
        snprintf(detail, sizeof(detail), "the model asked for %u tool calls but only %u of the "
                 "run's limit of %u remain", asked, left, st->agent->max_tool_calls);
        cJSON_Delete(msg);
        return toolcall_fail(st, "max_tool_calls", "%s", detail);
    }
    cJSON *copy = cJSON_Duplicate(calls, 1);
    if (!copy) {
        cJSON_Delete(msg);
        return toolcall_fail(st, "out_of_memory", "%s", "out of memory");
    }
    /* The assistant message stays in the conversation (content included, if
     * any: a reply with both text and calls is a tool step). */
    cJSON_AddItemToArray(st->messages, msg);
    st->pending = calls;
    st->tool_calls += asked;
    st->phase = TOOLCALL_WAIT_TOOLS;

    step_effect e;
    memset(&e, 0, sizeof(e));
    e.kind = STEP_EFFECT_CALL_TOOLS;
    e.tool_calls = copy;
    return e;
}

/* TOOL_RESULTS: one tool message per pending call, in the calls' order. The
 * harness builds these, so a mismatch is a harness bug, reported as such. */
static step_effect toolcall_on_results(toolcall_state *st, cJSON *results)
{
    if (!cJSON_IsArray(results) ||
        cJSON_GetArraySize(results) != cJSON_GetArraySize(st->pending)) {
        cJSON_Delete(results);
        return toolcall_fail(st, "bad_event", "%s",
                             "TOOL_RESULTS must hold one result for each tool call");
    }
    const cJSON *call = st->pending->child;
    cJSON *r;
    cJSON_ArrayForEach(r, results) {
        const char *want = cJSON_GetObjectItemCaseSensitive(call, "id")->valuestring;
        if (!cJSON_IsObject(r)) {
            cJSON_Delete(results);
            return toolcall_fail(st, "bad_event", "tool result for call %s is not an object", want);
        }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(r, "role");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "tool_call_id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(r, "content");
        if (!cJSON_IsString(role) || strcmp(role->valuestring, "tool") != 0 ||
            !cJSON_IsString(id) || strcmp(id->valuestring, want) != 0 ||
            !cJSON_IsString(content)) {
            cJSON_Delete(results);
            return toolcall_fail(st, "bad_event", "tool result for call %s is missing or malformed",
                                 want);
        }
        call = call->next;
    }
    /* Move the results into the conversation without copying them. */
    while (results->child)
        cJSON_AddItemToArray(st->messages, cJSON_DetachItemViaPointer(results, results->child));
    cJSON_Delete(results);
    st->pending = NULL;
    return toolcall_call_model(st);
}

/* RESUME: a new state takes over a paused run — the conversation so far,
 * and the assistant message whose calls were pending, re-emitted. The
 * message is checked like a model's reply: it came back from the store. */
static step_effect toolcall_on_resume(toolcall_state *st, cJSON *history, cJSON *message,
                                      uint32_t steps, uint32_t tool_calls)
{
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(message, "tool_calls");
    if (!cJSON_IsObject(message) || (history && !cJSON_IsArray(history)) ||
        !cJSON_IsArray(calls) || cJSON_GetArraySize(calls) == 0) {
        cJSON_Delete(history);
        cJSON_Delete(message);
        return toolcall_fail(st, "bad_event", "%s", "RESUME needs a history array and an "
                             "assistant message with tool_calls");
    }
    if (steps > st->agent->max_steps || tool_calls > st->agent->max_tool_calls) {
        cJSON_Delete(history);
        cJSON_Delete(message);
        return toolcall_fail(st, "bad_event", "%s", "RESUME: the run had already used more "
                             "than the agent's limits");
    }
    if (!(history = toolcall_take_history(history))) {
        cJSON_Delete(message);
        return toolcall_fail(st, "out_of_memory", "%s", "out of memory");
    }
    st->messages = history;
    st->steps = steps;
    st->tool_calls = tool_calls;
    /* From here on it is the model's reply again, with its checks and its
     * count of tool calls. */
    st->phase = TOOLCALL_WAIT_MODEL;
    return toolcall_on_reply(st, message);
}

static step_effect toolcall_step(void *state, step_event *ev)
{
    toolcall_state *st = state;
    if (!st || !ev)
        return toolcall_fail(st, "bad_event", "%s", "no state or no event");
    /* Take everything the event holds, whatever happens next. */
    cJSON *history = ev->history, *message = ev->message, *results = ev->results;
    ev->history = ev->message = ev->results = NULL;

    if (ev->kind == STEP_EVENT_START && st->phase == TOOLCALL_WAIT_START) {
        cJSON_Delete(results);
        return toolcall_on_start(st, history, message);
    }
    if (ev->kind == STEP_EVENT_RESUME && st->phase == TOOLCALL_WAIT_START) {
        cJSON_Delete(results);
        return toolcall_on_resume(st, history, message, ev->steps, ev->tool_calls);
    }
    if (ev->kind == STEP_EVENT_MODEL_REPLY && st->phase == TOOLCALL_WAIT_MODEL) {
        cJSON_Delete(history);
        cJSON_Delete(results);
        return toolcall_on_reply(st, message);
    }
    if (ev->kind == STEP_EVENT_TOOL_RESULTS && st->phase == TOOLCALL_WAIT_TOOLS) {
        cJSON_Delete(history);
        cJSON_Delete(message);
        return toolcall_on_results(st, results);
    }
    cJSON_Delete(history);
    cJSON_Delete(message);
    cJSON_Delete(results);
    static const char *const phases[] = {"START", "a model reply", "tool results",
                                         "nothing (the run is over)"};
    return toolcall_fail(st, "bad_event", "unexpected event: the core was waiting for %s",
                         phases[st->phase]);
}

const step_core step_core_toolcall = {
    .name = "toolcall",
    .create = toolcall_create,
    .step = toolcall_step,
    .destroy = toolcall_destroy,
};
