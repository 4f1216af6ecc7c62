/* context.c — the bounded context: which messages of a conversation are sent
 * to the model so the request fits the agent's token budget. The policy is
 * stated in step.h and explained, with a worked example, in docs/context.md.
 *
 * Includes: only <cjson/cJSON.h>, standard string/memory/stdlib/stdio
 * headers and core/ headers — no I/O, storage, clocks or randomness
 * (invariant 1, docs/architecture.md; checked by tests/unit/core/test_core_purity.c). */
#include <stdbool.h>
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

/* The text of a message's tool calls that the estimate counts. */
static size_t context_calls_bytes(const cJSON *calls)
{
    size_t bytes = 0;
    const cJSON *call;
    cJSON_ArrayForEach(call, calls) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        bytes += context_str_len(cJSON_GetObjectItemCaseSensitive(call, "id"));
        bytes += context_str_len(cJSON_GetObjectItemCaseSensitive(fn, "name"));
        bytes += context_str_len(cJSON_GetObjectItemCaseSensitive(fn, "arguments"));
    }
    return bytes;
}

int64_t step_estimate_tokens(const cJSON *message)
{
    if (!cJSON_IsObject(message))
        return STEP_TOKENS_PER_MESSAGE;
    /* One walk over the members, not a lookup per counted name: every
     * message of the conversation is priced at every model call. Only the
     * first member of a name counts, as a lookup would find it. */
    size_t bytes = 0;
    bool seen_content = false, seen_calls = false, seen_call_id = false, seen_name = false;
    for (const cJSON *c = message->child; c; c = c->next) {
        const char *k = c->string;
        if (!k || (k[0] != 'c' && k[0] != 't' && k[0] != 'n'))
            continue;   /* role, origin, …: not counted, and no compare */
        if (!seen_content && strcmp(k, "content") == 0) {
            seen_content = true;
            if (cJSON_IsString(c)) {
                bytes += context_str_len(c);
            } else if (cJSON_IsArray(c)) {
                /* Content parts: only text parts count; other kinds (images)
                 * are priced by the provider in ways a byte count cannot guess. */
                const cJSON *part;
                cJSON_ArrayForEach(part, c)
                    bytes += context_str_len(cJSON_GetObjectItemCaseSensitive(part, "text"));
            }
        } else if (!seen_calls && strcmp(k, "tool_calls") == 0) {
            seen_calls = true;
            if (cJSON_IsArray(c))
                bytes += context_calls_bytes(c);
        } else if (!seen_call_id && strcmp(k, "tool_call_id") == 0) {
            seen_call_id = true;
            bytes += context_str_len(c);
        } else if (!seen_name && strcmp(k, "name") == 0) {
            seen_name = true;
            bytes += context_str_len(c);
        }
    }
    return context_bytes_to_tokens(bytes);
}

static const char *context_role(const cJSON *message)
{
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(message, "role");
    return cJSON_IsString(role) && role->valuestring ? role->valuestring : "";
}

/* What the selection asks of a message's role, read once per message
 * (kept in the token cache beside its estimate). */
enum { CONTEXT_ROLE_OTHER, CONTEXT_ROLE_USER, CONTEXT_ROLE_TOOL };

static uint8_t context_role_kind(const cJSON *message)
{
    const char *r = context_role(message);
    return strcmp(r, "user") == 0 ? CONTEXT_ROLE_USER
         : strcmp(r, "tool") == 0 ? CONTEXT_ROLE_TOOL
                                   : CONTEXT_ROLE_OTHER;
}

/* The note's text around its number. The wording is the contract's
 * (step.h), kept even for n == 1 so whoever searches traces or
 * transcripts for it finds every case. */
#define CONTEXT_NOTE_HEAD "["
#define CONTEXT_NOTE_TAIL " earlier messages omitted to fit the context]"

static void context_note_text(char *out, size_t outlen, size_t n)
{
    snprintf(out, outlen, CONTEXT_NOTE_HEAD "%zu" CONTEXT_NOTE_TAIL, n);
}

/* Tokens of the note for `n` omitted messages; 0 when nothing is omitted.
 * Counted, not printed: the walk below prices a note for every group it
 * considers. */
static int64_t context_note_tokens(size_t n)
{
    if (n == 0)
        return 0;
    size_t digits = 1;
    for (size_t v = n; v >= 10; v /= 10)
        digits++;
    return context_bytes_to_tokens(sizeof CONTEXT_NOTE_HEAD - 1 + digits + sizeof CONTEXT_NOTE_TAIL - 1);
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

/* A kept message as the request carries it: a reference to the message
 * (one new item that shares the message's members) rather than a copy. A
 * copy of every kept message at every model call was most of a step's
 * cost on a long conversation: ~20 allocations a message, and a view of
 * its members still ~5 (docs/benchmarks.md). Deleting a reference frees
 * only the reference. It is valid while `messages` is unchanged, and must
 * not be changed itself: its members are the conversation's. Whoever would
 * change a message of the request (a redaction) replaces it in the array
 * with a copy (step_message_copy); the harness leaves `origin` out when it
 * writes the request rather than removing it. */
static cJSON *context_message_ref(const cJSON *m)
{
    if (!cJSON_IsObject(m))
        return cJSON_Duplicate(m, 1);
    return cJSON_CreateObjectReference(m->child);
}

cJSON *step_message_copy(const cJSON *message)
{
    /* cJSON_Duplicate takes a reference's members as its own; it keeps a
     * constant key as it is, so the copy takes its own of those too (a
     * key the harness set with a literal would be fine, but nothing here
     * knows where a key came from) */
    cJSON *copy = cJSON_Duplicate(message, 1);
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
    uint8_t      role;   /* CONTEXT_ROLE_* */
} context_item;

void step_token_cache_drop(step_token_cache *c, size_t count)
{
    if (!c)
        return;
    if (count >= c->n) {
        c->n = 0;
        return;
    }
    memmove(c->v, c->v + count, (c->n - count) * sizeof(*c->v));
    memmove(c->role, c->role + count, (c->n - count) * sizeof(*c->role));
    c->n -= count;
}

void step_token_cache_free(step_token_cache *c)
{
    if (!c)
        return;
    free(c->v);
    free(c->role);
    c->v = NULL;
    c->role = NULL;
    c->n = c->cap = 0;
}

/* Room for n estimates in the cache; false (the cache unused) on
 * out-of-memory. */
static bool context_cache_room(step_token_cache *c, size_t n)
{
    if (n <= c->cap)
        return true;
    size_t cap = c->cap ? c->cap : 16;
    while (cap < n)
        cap *= 2;
    int64_t *v = realloc(c->v, cap * sizeof(*v));
    if (!v)
        return false;
    c->v = v;
    uint8_t *role = realloc(c->role, cap * sizeof(*role));
    if (!role)
        return false;   /* v's larger block is kept; cap unchanged, so both are realloc'd again */
    c->role = role;
    c->cap = cap;
    return true;
}

cJSON *step_context_select_ex(const char *system_prompt, const cJSON *messages, size_t omitted,
                              int64_t budget, size_t *dropped, int64_t *tokens, size_t *first,
                              step_token_cache *cache)
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
        /* priced once a conversation: the cache's estimates first */
        size_t known = 0;
        if (cache && cache->n > n)
            cache->n = 0;          /* not this conversation as it was: priced again */
        if (cache && context_cache_room(cache, n))
            known = cache->n;
        else
            cache = NULL;
        size_t i = 0;
        cJSON_ArrayForEach(m, messages) {
            items[i].msg = m;
            if (i < known) {
                items[i].tokens = cache->v[i];
                items[i].role = cache->role[i];
            } else {
                items[i].tokens = step_estimate_tokens(m);
                items[i].role = context_role_kind(m);
                if (cache) {
                    cache->v[i] = items[i].tokens;
                    cache->role[i] = items[i].role;
                }
            }
            i++;
        }
        if (cache)
            cache->n = n;
    }

    int have_system = system_prompt && system_prompt[0];
    int64_t used = have_system ? context_bytes_to_tokens(strlen(system_prompt)) : 0;

    /* The current turn — from the last user message on — is always sent:
     * without it the model cannot answer what it was asked. */
    size_t start = n;
    for (size_t i = n; i-- > 0;) {
        if (items[i].role == CONTEXT_ROLE_USER) {
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
        while (g > 0 && items[g].role == CONTEXT_ROLE_TOOL)
            g--;
        if (items[g].role == CONTEXT_ROLE_TOOL)
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
        cJSON *ref = context_message_ref(items[i].msg);
        ok = ref && cJSON_AddItemToArray(out, ref);
        if (ok)
            total += items[i].tokens;
        else
            cJSON_Delete(ref);
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
    return step_context_select_ex(system_prompt, messages, 0, budget, dropped, tokens, NULL, NULL);
}
