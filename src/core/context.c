/* context.c — the bounded context: which messages of a conversation are sent
 * to the model so the request fits the agent's token budget. The policy is
 * stated in step.h and explained, with a worked example, in docs/context.md.
 *
 * Includes: only <cjson/cJSON.h>, standard string/memory/stdlib/stdio
 * headers and core/ headers — no I/O, storage, clocks or randomness
 * (invariant 1, docs/architecture.md; checked by tests/unit/core/test_core_purity.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/origin.h"
#include "core/step.h"

/* Per-message overhead in the estimate: role, separators, framing. */
#define STEP_TOKENS_PER_MESSAGE 4

static size_t context_str_len(const cJSON *item)
{
    return (cJSON_IsString(item) && item->valuestring) ? strlen(item->valuestring) : 0;
}

static int64_t context_bytes_to_tokens(size_t bytes)
{
    return (int64_t)((bytes + 3) / 4) + STEP_TOKENS_PER_MESSAGE;
}

int64_t step_estimate_tokens(const cJSON *message)
{
    if (!cJSON_IsObject(message))
        return STEP_TOKENS_PER_MESSAGE;
    size_t bytes = 0;
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(message, "content");
    if (cJSON_IsString(content)) {
        bytes += context_str_len(content);
    } else if (cJSON_IsArray(content)) {
        /* Content parts: only text parts count; other kinds (images) are
         * priced by the provider in ways a byte count cannot guess. */
        const cJSON *part;
        cJSON_ArrayForEach(part, content)
            bytes += context_str_len(cJSON_GetObjectItemCaseSensitive(part, "text"));
    }
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(message, "tool_calls");
    if (cJSON_IsArray(calls)) {
        const cJSON *call;
        cJSON_ArrayForEach(call, calls) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
            bytes += context_str_len(cJSON_GetObjectItemCaseSensitive(call, "id"));
            bytes += context_str_len(cJSON_GetObjectItemCaseSensitive(fn, "name"));
            bytes += context_str_len(cJSON_GetObjectItemCaseSensitive(fn, "arguments"));
        }
    }
    bytes += context_str_len(cJSON_GetObjectItemCaseSensitive(message, "tool_call_id"));
    bytes += context_str_len(cJSON_GetObjectItemCaseSensitive(message, "name"));
    return context_bytes_to_tokens(bytes);
}

static const char *context_role(const cJSON *message)
{
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(message, "role");
    return cJSON_IsString(role) && role->valuestring ? role->valuestring : "";
}

static int context_is_role(const cJSON *message, const char *role)
{
    return strcmp(context_role(message), role) == 0;
}

static void context_note_text(char *out, size_t outlen, size_t n)
{
    /* The wording is the contract's (step.h), kept even for n == 1 so
     * whoever searches traces or transcripts for it finds every case. */
    snprintf(out, outlen, "[%zu earlier messages omitted to fit the context]", n);
}

/* Tokens of the note for `n` omitted messages; 0 when nothing is omitted. */
static int64_t context_note_tokens(size_t n)
{
    if (n == 0)
        return 0;
    char note[96];
    context_note_text(note, sizeof(note), n);
    return context_bytes_to_tokens(strlen(note));
}

/* A message brigade writes into the context (the system prompt, the note of
 * omitted messages): its origin says so (origin.h). */
static cJSON *context_system_message(const char *text)
{
    cJSON *m = cJSON_CreateObject();
    if (!m || !cJSON_AddStringToObject(m, "role", "system") ||
        !cJSON_AddStringToObject(m, "content", text) ||
        !origin_set(m, origin_new(ORIGIN_SYSTEM, false))) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

/* A kept message as the request carries it: a new object whose members
 * refer to the message's own values (strings, arrays, objects) and keys
 * rather than copying them. A copy of every kept message at every model
 * call was most of a step's cost on a long conversation: ~20 allocations
 * a message (docs/benchmarks.md). A view is valid while `messages` is
 * unchanged; deleting it frees only the view. Whoever would change what a
 * view's member refers to (a redaction) works on a copy instead
 * (step_message_copy). */
static cJSON *context_message_view(const cJSON *m)
{
    if (!cJSON_IsObject(m))
        return cJSON_Duplicate(m, 1);
    cJSON *v = cJSON_CreateObject();
    if (!v)
        return NULL;
    for (const cJSON *c = m->child; c; c = c->next) {
        cJSON *r;
        switch (c->type & 0xFF) {
        case cJSON_String: r = cJSON_CreateStringReference(c->valuestring); break;
        case cJSON_Object: r = cJSON_CreateObjectReference(c->child); break;
        case cJSON_Array: r = cJSON_CreateArrayReference(c->child); break;
        default: r = cJSON_Duplicate(c, 0); break;   /* number, bool, null, raw: nothing shared */
        }
        if (!r || !c->string || !cJSON_AddItemToObjectCS(v, c->string, r)) {
            cJSON_Delete(r);
            cJSON_Delete(v);
            return NULL;
        }
    }
    return v;
}

cJSON *step_message_copy(const cJSON *message)
{
    cJSON *copy = cJSON_Duplicate(message, 1);
    /* cJSON_Duplicate keeps a constant key as it is: a view's own keys
     * are the conversation's, so the copy takes its own */
    for (cJSON *c = copy ? copy->child : NULL; c; c = c->next) {
        if (!(c->type & cJSON_StringIsConst) || !c->string)
            continue;
        size_t n = strlen(c->string) + 1;
        char *k = malloc(n);
        if (!k) {
            cJSON_Delete(copy);
            return NULL;
        }
        memcpy(k, c->string, n);
        c->string = k;
        c->type &= ~cJSON_StringIsConst;
    }
    return copy;
}

typedef struct context_item {
    const cJSON *msg;
    int64_t      tokens;
} context_item;

cJSON *step_context_select_ex(const char *system_prompt, const cJSON *messages, size_t omitted,
                              int64_t budget, size_t *dropped, int64_t *tokens, size_t *first)
{
    size_t n = 0;
    const cJSON *m;
    if (cJSON_IsArray(messages))
        cJSON_ArrayForEach(m, messages)
            n++;

    /* One pass to index and price the messages: the walk below goes
     * backwards, which a singly-walked cJSON list cannot do cheaply. The
     * index is freed before returning; only the result is copied. */
    context_item *items = NULL;
    if (n > 0) {
        items = malloc(n * sizeof(*items));
        if (!items)
            return NULL;
        size_t i = 0;
        cJSON_ArrayForEach(m, messages) {
            items[i].msg = m;
            items[i].tokens = step_estimate_tokens(m);
            i++;
        }
    }

    int have_system = system_prompt && system_prompt[0];
    int64_t used = have_system ? context_bytes_to_tokens(strlen(system_prompt)) : 0;

    /* The current turn — from the last user message on — is always sent:
     * without it the model cannot answer what it was asked. */
    size_t start = n;
    for (size_t i = n; i-- > 0;) {
        if (context_is_role(items[i].msg, "user")) {
            start = i;
            break;
        }
    }
    for (size_t i = start; i < n; i++)
        used += items[i].tokens;

    /* Walk back one group at a time. A group is a message with the tool
     * messages that follow it (an assistant's tool_calls and their
     * results), so a call is never sent without its results, nor a result
     * without its call. Tool messages with nothing before them to anchor
     * them are never sent: a tail must not begin with a dangling result. */
    while (start > 0) {
        size_t g = start - 1;
        while (g > 0 && context_is_role(items[g].msg, "tool"))
            g--;
        if (context_is_role(items[g].msg, "tool"))
            break; /* only unanchored tool results remain */
        int64_t gtokens = 0;
        for (size_t i = g; i < start; i++)
            gtokens += items[i].tokens;
        int64_t note = context_note_tokens(omitted + g);
        if (used + gtokens + note > budget)
            break;
        used += gtokens;
        start = g;
    }

    size_t omit = omitted + start;
    cJSON *out = cJSON_CreateArray();
    int64_t total = 0;
    int ok = out != NULL;
    if (ok && have_system) {
        cJSON *sys = context_system_message(system_prompt);
        ok = sys && cJSON_AddItemToArray(out, sys);
        if (ok)
            total += step_estimate_tokens(sys);
        else
            cJSON_Delete(sys);
    }
    if (ok && omit > 0) {
        char text[96];
        context_note_text(text, sizeof(text), omit);
        cJSON *note = context_system_message(text);
        ok = note && cJSON_AddItemToArray(out, note);
        if (ok)
            total += step_estimate_tokens(note);
        else
            cJSON_Delete(note);
    }
    for (size_t i = start; ok && i < n; i++) {
        cJSON *copy = context_message_view(items[i].msg);
        ok = copy && cJSON_AddItemToArray(out, copy);
        if (ok)
            total += items[i].tokens;
        else
            cJSON_Delete(copy);
    }
    free(items);
    if (!ok) {
        cJSON_Delete(out);
        return NULL;
    }
    if (dropped)
        *dropped = omit;
    if (tokens)
        *tokens = total;
    if (first)
        *first = start;
    return out;
}

cJSON *step_context_select(const char *system_prompt, const cJSON *messages, int64_t budget,
                           size_t *dropped, int64_t *tokens)
{
    return step_context_select_ex(system_prompt, messages, 0, budget, dropped, tokens, NULL);
}
